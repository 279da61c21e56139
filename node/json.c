/* json.c - conversions between LoraDB values (protobuf) and JSON. */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/base64.h>

#include "query.h"

/* Encoding recurses once per list, map, node or relationship: a value
 * deeper than LORA_RESULT_DEPTH_MAX gives NULL, as does running out of
 * memory, never a part of the value (node_json_row turns that NULL into
 * the row's error). `depth` counts the levels around a value. */
static json_t *from_value(const Lora__Value *v, int depth);

static json_t *entries_obj(Lora__MapEntry **e, size_t n, int depth)
{
	if (depth > LORA_RESULT_DEPTH_MAX)
		return NULL;
	json_t *o = json_object();
	for (size_t i = 0; o && i < n; i++) {
		json_t *x = from_value(e[i]->value, depth);
		if (x == NULL ||
		    json_object_set_new(o, e[i]->key ? e[i]->key : "", x)) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static json_t *node_obj(const Lora__NodeValue *n, int depth)
{
	json_t *props = entries_obj(n->properties, n->n_properties, depth + 1);
	if (props == NULL)
		return NULL;
	json_t *labels = json_array();
	for (size_t i = 0; labels && i < n->n_labels; i++)
		json_array_append_new(labels, json_string(n->labels[i]));
	return json_pack("{s:I,s:s,s:o*,s:o}", "id", (json_int_t)n->id, "kind",
	                 "node", "labels", labels, "properties", props);
}

static json_t *rel_obj(const Lora__RelValue *r, int depth)
{
	json_t *props = entries_obj(r->properties, r->n_properties, depth + 1);
	if (props == NULL)
		return NULL;
	return json_pack("{s:I,s:s,s:I,s:I,s:s,s:o}", "id", (json_int_t)r->id,
	                 "kind", "relationship", "startId",
	                 (json_int_t)r->start_id, "endId",
	                 (json_int_t)r->end_id, "type", r->type ? r->type : "",
	                 "properties", props);
}

/* Appends x to array a; when either is NULL or that fails, frees both
 * (json_array_append_new takes x even when it fails) and gives NULL. */
static json_t *append(json_t *a, json_t *x)
{
	if (a == NULL || x == NULL || json_array_append_new(a, x) != 0) {
		if (a == NULL)
			json_decref(x);
		json_decref(a);
		return NULL;
	}
	return a;
}

static const char *coord_names[] = {"FLOAT64",   "FLOAT32",   "INTEGER64",
                                    "INTEGER32", "INTEGER16", "INTEGER8"};

static json_t *vector_obj(const Lora__Vector *v)
{
	json_t *vals = json_array();
	for (size_t i = 0; vals && i < v->n_f64; i++)
		json_array_append_new(vals, json_real(v->f64[i]));
	for (size_t i = 0; vals && i < v->n_f32; i++)
		json_array_append_new(vals, json_real(v->f32[i]));
	for (size_t i = 0; vals && i < v->n_ints; i++)
		json_array_append_new(vals, json_integer(v->ints[i]));
	unsigned ct = (unsigned)v->coord_type;
	return json_pack("{s:s,s:I,s:s,s:o*}", "kind", "vector", "dimension",
	                 (json_int_t)v->dimension, "coordinateType",
	                 ct < 6 ? coord_names[ct] : "UNKNOWN", "values", vals);
}

/* {"kind": "point", "srid": 7203, "crs": "cartesian", "x": 1.0, "y": 2.0}
 * ("z" too in 3-D) */
static json_t *point_obj(const Lora__Point *p)
{
	int d3 = p->srid == 9157 || p->srid == 4979;
	const char *crs = p->srid == 7203   ? "cartesian"
	                  : p->srid == 9157 ? "cartesian-3d"
	                  : p->srid == 4326 ? "wgs-84"
	                  : p->srid == 4979 ? "wgs-84-3d"
	                                    : "unknown";
	json_t *o =
	    json_pack("{s:s,s:I,s:s,s:f,s:f}", "kind", "point", "srid",
	              (json_int_t)p->srid, "crs", crs, "x", p->x, "y", p->y);
	if (o && d3 && json_object_set_new(o, "z", json_real(p->z))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *path_obj(const Lora__PathValue *p, int depth)
{
	json_t *ns = json_array(), *rs = json_array();
	for (size_t i = 0; ns && i < p->n_nodes; i++)
		ns = append(ns, node_obj(p->nodes[i], depth));
	for (size_t i = 0; rs && i < p->n_rels; i++)
		rs = append(rs, rel_obj(p->rels[i], depth));
	if (ns == NULL || rs == NULL) {
		json_decref(ns);
		json_decref(rs);
		return NULL;
	}
	return json_pack("{s:s,s:o,s:o}", "kind", "path", "nodes", ns,
	                 "relationships", rs);
}

static json_t *formatted(const Lora__Value *v)
{
	struct lora_buf b = {0};
	json_t *j = NULL;
	if (qry_value_format(v, &b) == 0)
		j = json_stringn(b.data ? b.data : "", b.len);
	lora_buf_free(&b);
	return j;
}

json_t *node_json_from_value(const Lora__Value *v)
{
	return from_value(v, 0);
}

int node_json_row(const Lora__Value *const *vals, const char *const *cols,
                  size_t n, json_t **out, char *errmsg)
{
	json_t *o = cols ? json_object() : json_array();
	for (size_t k = 0; o && k < n; k++) {
		json_t *v = from_value(vals[k], 0);
		if (v == NULL) {
			json_decref(o);
			*out = NULL;
			/* tell the depth limit from no memory, as the copy
			 * of a row would (node_value_dup) */
			int rc = lora_value_depth_check(
			    vals[k], LORA_RESULT_DEPTH_MAX, errmsg);
			if (rc == 0)
				rc = lora_errf(LORA_ENOMEM, errmsg,
				               "out of memory");
			return lora_errwrap(rc, errmsg, "result column %zu",
			                    k + 1);
		}
		if ((cols ? json_object_set_new(o, cols[k], v)
		          : json_array_append_new(o, v)) != 0) {
			json_decref(o);
			o = NULL;
		}
	}
	*out = o;
	return o ? 0 : lora_errf(LORA_ENOMEM, errmsg, "out of memory");
}

static json_t *from_value(const Lora__Value *v, int depth)
{
	if (v == NULL)
		return json_null();
	switch (v->kind_case) {
	case LORA__VALUE__KIND_BOOL_VALUE:
		return json_boolean(v->bool_value);
	case LORA__VALUE__KIND_INT_VALUE:
		return json_integer(v->int_value);
	case LORA__VALUE__KIND_FLOAT_VALUE:
		if (isnan(v->float_value) || isinf(v->float_value))
			return formatted(v);
		return json_real(v->float_value);
	case LORA__VALUE__KIND_STRING_VALUE:
		return json_string(v->string_value ? v->string_value : "");
	case LORA__VALUE__KIND_BYTES_VALUE: {
		json_t *a = json_array();
		for (size_t i = 0; a && i < v->bytes_value.len; i++)
			json_array_append_new(
			    a, json_integer(v->bytes_value.data[i]));
		return a;
	}
	case LORA__VALUE__KIND_LIST_VALUE: {
		if (depth >= LORA_RESULT_DEPTH_MAX)
			return NULL;
		json_t *a = json_array();
		const Lora__ValueList *l = v->list_value;
		for (size_t i = 0; a && l && i < l->n_items; i++)
			a = append(a, from_value(l->items[i], depth + 1));
		return a;
	}
	case LORA__VALUE__KIND_MAP_VALUE:
		return v->map_value
		           ? entries_obj(v->map_value->entries,
		                         v->map_value->n_entries, depth + 1)
		           : json_object();
	case LORA__VALUE__KIND_VECTOR_VALUE:
		return vector_obj(v->vector_value);
	case LORA__VALUE__KIND_TEMPORAL_VALUE:
		return formatted(v);
	case LORA__VALUE__KIND_POINT_VALUE: {
		json_t *o = point_obj(v->point_value);
		return o ? o : formatted(v); /* NaN or infinite coordinates */
	}
	case LORA__VALUE__KIND_NODE_VALUE:
		return node_obj(v->node_value, depth);
	case LORA__VALUE__KIND_REL_VALUE:
		return rel_obj(v->rel_value, depth);
	case LORA__VALUE__KIND_PATH_VALUE:
		return path_obj(v->path_value, depth);
	default:
		return json_null();
	}
}

/* ---- JSON to values ---------------------------------------------------- */

static Lora__Value *value_new(void)
{
	Lora__Value *v = lora_malloc(sizeof *v);
	if (v)
		lora__value__init(v);
	return v;
}

/* 2^63: doubles in [-2^63, 2^63) convert to int64_t exactly. */
#define JSON_INT64_BOUND 9223372036854775808.0

/* Coordinate i of a vector of coordinate type `type` into arr. Every
 * conversion is checked: casting a double outside the target's range is
 * undefined behaviour in C. */
static int vector_coord(const json_t *x, int type, size_t i, void *arr,
                        char *errmsg)
{
	if (!json_is_number(x))
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "vector values must be numbers");
	double d = json_number_value(x);
	if (type == 0) {
		((double *)arr)[i] = d;
	} else if (type == 1) {
		/* below 2^128 - 2^103 a double rounds to FLT_MAX at most */
		if (fabs(d) >= 0x1.ffffffp127)
			return lora_errf(LORA_EPARAMS, errmsg,
			                 "vector value %zu (%g) is out of the "
			                 "FLOAT32 range",
			                 i, d);
		((float *)arr)[i] = (float)d;
	} else if (json_is_integer(x)) {
		((int64_t *)arr)[i] = json_integer_value(x);
	} else if (d >= -JSON_INT64_BOUND && d < JSON_INT64_BOUND &&
	           d == floor(d)) {
		((int64_t *)arr)[i] = (int64_t)d;
	} else {
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "vector value %zu (%g) is not an integer in "
		                 "the INTEGER64 range",
		                 i, d);
	}
	return 0;
}

/* Hands vec the n coordinates arr of coordinate type `type` (taken). */
static void vector_take_coords(Lora__Vector *vec, int type, void *arr, size_t n)
{
	if (type == 0)
		vec->f64 = arr, vec->n_f64 = n;
	else if (type == 1)
		vec->f32 = arr, vec->n_f32 = n;
	else
		vec->ints = arr, vec->n_ints = n;
}

/* Bytes per coordinate of each coordinate type (coord_names' order). */
static const size_t coord_bytes[] = {8, 4, 8, 4, 2, 1};

/* The coordinates of a vector given as "base64": the little-endian bytes
 * of each coordinate in turn (a FLOAT32 vector is 4 bytes a coordinate,
 * as numpy's tobytes() or a JavaScript Float32Array's buffer on every
 * common machine). jansson reads the body as one string and mbedtls
 * decodes it, so a 128-d vector costs a few hundred bytes of copying
 * instead of 128 numbers read one by one (docs/node.md, "Values"). */
static int vector_from_base64(const json_t *b64, int type, Lora__Vector *vec,
                              char *errmsg)
{
	const char *s = json_string_value(b64);
	size_t slen = json_string_length(b64), nbytes = 0;
	if (s == NULL)
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "vector \"base64\" must be a string");
	/* the decoded size first, then the bytes: a string that is not
	 * base64 fails either call */
	int rc = mbedtls_base64_decode(NULL, 0, &nbytes,
	                               (const unsigned char *)s, slen);
	if (rc != 0 && rc != MBEDTLS_ERR_BASE64_BUFFER_TOO_SMALL)
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "vector \"base64\" is not valid base64");
	size_t w = coord_bytes[type], n = nbytes / w;
	if (nbytes % w)
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "vector \"base64\" holds %zu bytes, not a "
		                 "whole number of %s coordinates (%zu bytes "
		                 "each)",
		                 nbytes, coord_names[type], w);
	unsigned char *raw = lora_malloc(nbytes ? nbytes : 1);
	if (raw == NULL)
		return LORA_ENOMEM;
	size_t got = 0;
	if (mbedtls_base64_decode(raw, nbytes ? nbytes : 1, &got,
	                          (const unsigned char *)s, slen) != 0 ||
	    got != nbytes) {
		lora_free(raw);
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "vector \"base64\" is not valid base64");
	}
	size_t elem = type == 0   ? sizeof(double)
	              : type == 1 ? sizeof(float)
	                          : sizeof(int64_t);
	void *arr = lora_calloc(n ? n : 1, elem);
	if (arr == NULL) {
		lora_free(raw);
		return LORA_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t u = 0;
		for (size_t b = 0; b < w; b++)
			u |= (uint64_t)raw[i * w + b] << (8 * b);
		if (type == 0 || type == 1) {
			double d;
			if (type == 0) {
				memcpy(&d, &u, sizeof d);
				((double *)arr)[i] = d;
			} else {
				uint32_t u32 = (uint32_t)u;
				float f;
				memcpy(&f, &u32, sizeof f);
				((float *)arr)[i] = f;
				d = f;
			}
			if (!isfinite(d)) {
				lora_free(raw);
				lora_free(arr);
				return lora_errf(
				    LORA_EPARAMS, errmsg,
				    "vector value %zu is not a finite "
				    "number",
				    i);
			}
		} else {
			/* two's complement of 8 * w bits, sign-extended
			 * without shifting a negative value */
			int64_t sx;
			if (w == 8) {
				memcpy(&sx, &u, sizeof sx);
			} else {
				uint64_t sign = 1ull << (8 * w - 1);
				sx = u & sign
				         ? (int64_t)(u - sign) - (int64_t)sign
				         : (int64_t)u;
			}
			((int64_t *)arr)[i] = sx;
		}
	}
	lora_free(raw);
	vec->dimension = (uint32_t)n;
	vector_take_coords(vec, type, arr, n);
	return 0;
}

static int vector_from_json(const json_t *j, Lora__Value *v, char *errmsg)
{
	const json_t *vals = json_object_get(j, "values");
	const json_t *b64 = json_object_get(j, "base64");
	const json_t *dim = json_object_get(j, "dimension");
	const char *ct =
	    json_string_value(json_object_get(j, "coordinateType"));
	if (!json_is_array(vals) && b64 == NULL)
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "vector parameter needs a \"values\" array "
		                 "or a \"base64\" string");
	if (vals && b64)
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "vector parameter has both \"values\" and "
		                 "\"base64\"");
	if (dim && !json_is_integer(dim))
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "vector \"dimension\" must be an integer");
	int type = 0;
	if (ct) {
		type = -1;
		for (int i = 0; i < 6; i++)
			if (!strcmp(ct, coord_names[i]))
				type = i;
		if (type < 0)
			return lora_errf(LORA_EPARAMS, errmsg,
			                 "unknown coordinateType '%s'", ct);
	}
	Lora__Vector *vec = lora_malloc(sizeof *vec);
	if (vec == NULL)
		return LORA_ENOMEM;
	lora__vector__init(vec);
	v->kind_case = LORA__VALUE__KIND_VECTOR_VALUE;
	v->vector_value = vec;
	vec->coord_type = (Lora__VectorCoordType)type;
	if (b64) {
		int rc = vector_from_base64(b64, type, vec, errmsg);
		if (rc == 0 && dim &&
		    json_integer_value(dim) != (json_int_t)vec->dimension)
			rc = lora_errf(
			    LORA_EPARAMS, errmsg,
			    "vector \"base64\" holds %u coordinates, "
			    "\"dimension\" says %" JSON_INTEGER_FORMAT,
			    vec->dimension, json_integer_value(dim));
		return rc;
	}
	size_t n = json_array_size(vals);
	if (dim && json_integer_value(dim) != (json_int_t)n)
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "vector \"values\" holds %zu coordinates, "
		                 "\"dimension\" says %" JSON_INTEGER_FORMAT,
		                 n, json_integer_value(dim));
	vec->dimension = (uint32_t)n;
	size_t elem = type == 0   ? sizeof(double)
	              : type == 1 ? sizeof(float)
	                          : sizeof(int64_t);
	void *arr = lora_calloc(n ? n : 1, elem);
	if (arr == NULL)
		return LORA_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int rc =
		    vector_coord(json_array_get(vals, i), type, i, arr, errmsg);
		if (rc)
			return lora_free(arr), rc;
	}
	vector_take_coords(vec, type, arr, n);
	return 0;
}

/* A list or map opened inside `depth` others: refused past the limit
 * (conversion recurses once per level). */
static int depth_check(int depth, char *errmsg)
{
	if (depth + 1 > LORA_VALUE_DEPTH_MAX)
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "parameter nested deeper than %d lists and "
		                 "maps (the value depth limit)",
		                 LORA_VALUE_DEPTH_MAX);
	return 0;
}

/* items inside `depth` lists and maps, this one included */
static int list_from_json(const json_t *j, Lora__Value *v, int depth,
                          char *errmsg)
{
	size_t n = json_array_size(j);
	Lora__ValueList *l = lora_malloc(sizeof *l);
	if (l == NULL)
		return LORA_ENOMEM;
	lora__value_list__init(l);
	v->kind_case = LORA__VALUE__KIND_LIST_VALUE;
	v->list_value = l;
	l->items = lora_calloc(n ? n : 1, sizeof *l->items);
	if (l->items == NULL)
		return LORA_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int rc = node_json_to_value(json_array_get(j, i), &l->items[i],
		                            depth, errmsg);
		if (rc)
			return rc;
		l->n_items++;
	}
	return 0;
}

/* entries' values inside `depth` lists and maps, this one included (0 for
 * the parameters object) */
static int map_from_json(const json_t *j, Lora__ValueMap *m, int depth,
                         char *errmsg)
{
	size_t n = json_object_size(j);
	m->entries = lora_calloc(n ? n : 1, sizeof *m->entries);
	if (m->entries == NULL)
		return LORA_ENOMEM;
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)j, key, val)
	{
		Lora__MapEntry *e = lora_malloc(sizeof *e);
		if (e == NULL)
			return LORA_ENOMEM;
		lora__map_entry__init(e);
		m->entries[m->n_entries++] = e;
		e->key = lora_strdup(key);
		if (e->key == NULL)
			return LORA_ENOMEM;
		int rc = node_json_to_value(val, &e->value, depth, errmsg);
		if (rc)
			return rc;
	}
	return 0;
}

/* {"kind": "point", "srid": S, "x": X, "y": Y[, "z": Z]}: the output form
 * read back (srid 7203 / 4326 with x and y, 9157 / 4979 with z too) */
static int point_from_json(const json_t *j, Lora__Value *v, char *errmsg)
{
	const json_t *sj = json_object_get(j, "srid");
	json_int_t srid = json_is_integer(sj) ? json_integer_value(sj) : 0;
	int d3 = srid == 9157 || srid == 4979;
	const char *xyz[3] = {"x", "y", "z"};
	double c[3] = {0, 0, 0};
	if (!d3 && srid != 7203 && srid != 4326)
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "point parameter needs \"srid\" 7203, 4326, "
		                 "9157 or 4979");
	for (int i = 0; i < (d3 ? 3 : 2); i++) {
		const json_t *x = json_object_get(j, xyz[i]);
		if (!json_is_number(x))
			return lora_errf(
			    LORA_EPARAMS, errmsg,
			    "point parameter needs a number \"%s\"", xyz[i]);
		c[i] = json_number_value(x);
	}
	Lora__Point *p = lora_malloc(sizeof *p);
	if (p == NULL)
		return LORA_ENOMEM;
	lora__point__init(p);
	p->srid = (uint32_t)srid;
	p->x = c[0], p->y = c[1], p->z = c[2];
	v->kind_case = LORA__VALUE__KIND_POINT_VALUE;
	v->point_value = p;
	return 0;
}

static int fill_value(const json_t *j, Lora__Value *v, int depth, char *errmsg)
{
	switch (json_typeof(j)) {
	case JSON_NULL:
		v->kind_case = LORA__VALUE__KIND_NULL_VALUE;
		v->null_value = 1;
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
		v->kind_case = LORA__VALUE__KIND_BOOL_VALUE;
		v->bool_value = json_is_true(j);
		return 0;
	case JSON_INTEGER:
		v->kind_case = LORA__VALUE__KIND_INT_VALUE;
		v->int_value = json_integer_value(j);
		return 0;
	case JSON_REAL:
		v->kind_case = LORA__VALUE__KIND_FLOAT_VALUE;
		v->float_value = json_real_value(j);
		return 0;
	case JSON_STRING:
		v->kind_case = LORA__VALUE__KIND_STRING_VALUE;
		v->string_value =
		    lora_strndup(json_string_value(j), json_string_length(j));
		return v->string_value ? 0 : LORA_ENOMEM;
	case JSON_ARRAY:
		if (depth_check(depth, errmsg))
			return LORA_EPARAMS;
		return list_from_json(j, v, depth + 1, errmsg);
	case JSON_OBJECT: {
		const char *kind =
		    json_string_value(json_object_get(j, "kind"));
		if (kind && !strcmp(kind, "vector"))
			return vector_from_json(j, v, errmsg);
		if (kind && !strcmp(kind, "point"))
			return point_from_json(j, v, errmsg);
		if (depth_check(depth, errmsg))
			return LORA_EPARAMS;
		Lora__ValueMap *m = lora_malloc(sizeof *m);
		if (m == NULL)
			return LORA_ENOMEM;
		lora__value_map__init(m);
		v->kind_case = LORA__VALUE__KIND_MAP_VALUE;
		v->map_value = m;
		return map_from_json(j, m, depth + 1, errmsg);
	}
	}
	return lora_errf(LORA_EPARAMS, errmsg, "unsupported JSON value");
}

int node_json_to_value(const json_t *j, Lora__Value **out, int depth,
                       char *errmsg)
{
	*out = NULL;
	Lora__Value *v = value_new();
	if (v == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	int rc = fill_value(j, v, depth, errmsg);
	if (rc) {
		lora__value__free_unpacked(v, &lora_pb_allocator);
		return rc == LORA_ENOMEM
		           ? lora_errf(rc, errmsg, "out of memory")
		           : rc;
	}
	*out = v;
	return 0;
}

int node_json_to_params(const json_t *obj, Lora__ValueMap **out, char *errmsg)
{
	*out = NULL;
	if (obj != NULL && !json_is_null(obj) && !json_is_object(obj))
		return lora_errf(LORA_EPARAMS, errmsg,
		                 "\"params\" must be an object");
	Lora__ValueMap *m = lora_malloc(sizeof *m);
	if (m == NULL)
		return LORA_ENOMEM;
	lora__value_map__init(m);
	int rc = 0;
	if (json_is_object(obj))
		rc = map_from_json(obj, m, 0, errmsg);
	if (rc) {
		lora__value_map__free_unpacked(m, &lora_pb_allocator);
		return rc;
	}
	*out = m;
	return 0;
}

/* ---- graph format -------------------------------------------------------- */

int node_json_graph_init(struct node_json_graph *g)
{
	g->nodes = json_array();
	g->rels = json_array();
	g->seen_n = json_object();
	g->seen_r = json_object();
	g->bytes = 0;
	if (!g->nodes || !g->rels || !g->seen_n || !g->seen_r) {
		node_json_graph_free(g);
		return LORA_ENOMEM;
	}
	return 0;
}

/* jansson's objects take about twice their compact text, and the entry
 * in the seen set and the object's own headers the rest */
static uint64_t graph_entry_bytes(const json_t *o)
{
	return 2 * (uint64_t)json_dumpb(o, NULL, 0, JSON_COMPACT) +
	       NODE_JSON_GRAPH_ENTRY_BYTES;
}

static void graph_add_node(struct node_json_graph *g, const Lora__NodeValue *n)
{
	char key[24];
	snprintf(key, sizeof key, "%" PRIu64, n->id);
	if (json_object_get(g->seen_n, key))
		return;
	json_object_set_new(g->seen_n, key, json_true());
	json_t *o = node_obj(n, 0);
	g->bytes += graph_entry_bytes(o);
	json_array_append_new(g->nodes, o);
}

static void graph_add_rel(struct node_json_graph *g, const Lora__RelValue *r)
{
	char key[24];
	snprintf(key, sizeof key, "%" PRIu64, r->id);
	if (json_object_get(g->seen_r, key))
		return;
	json_object_set_new(g->seen_r, key, json_true());
	json_t *o = rel_obj(r, 0);
	g->bytes += graph_entry_bytes(o);
	json_array_append_new(g->rels, o);
}

/* Recurses once per list or map, up to LORA_RESULT_DEPTH_MAX. */
static void graph_add(struct node_json_graph *g, const Lora__Value *v,
                      int depth)
{
	if (v == NULL || depth > LORA_RESULT_DEPTH_MAX)
		return;
	if (v->kind_case == LORA__VALUE__KIND_NODE_VALUE) {
		graph_add_node(g, v->node_value);
	} else if (v->kind_case == LORA__VALUE__KIND_REL_VALUE) {
		graph_add_rel(g, v->rel_value);
	} else if (v->kind_case == LORA__VALUE__KIND_PATH_VALUE) {
		for (size_t i = 0; i < v->path_value->n_nodes; i++)
			graph_add_node(g, v->path_value->nodes[i]);
		for (size_t i = 0; i < v->path_value->n_rels; i++)
			graph_add_rel(g, v->path_value->rels[i]);
	} else if (v->kind_case == LORA__VALUE__KIND_LIST_VALUE &&
	           v->list_value) {
		for (size_t i = 0; i < v->list_value->n_items; i++)
			graph_add(g, v->list_value->items[i], depth + 1);
	} else if (v->kind_case == LORA__VALUE__KIND_MAP_VALUE &&
	           v->map_value) {
		for (size_t i = 0; i < v->map_value->n_entries; i++)
			graph_add(g, v->map_value->entries[i]->value,
			          depth + 1);
	}
}

void node_json_graph_add(struct node_json_graph *g, const Lora__Value *v)
{
	graph_add(g, v, 0);
}

json_t *node_json_graph_take(struct node_json_graph *g)
{
	json_t *o =
	    json_pack("{s:o,s:o}", "nodes", g->nodes, "relationships", g->rels);
	g->nodes = g->rels = NULL;
	node_json_graph_free(g);
	return o;
}

void node_json_graph_free(struct node_json_graph *g)
{
	json_decref(g->nodes);
	json_decref(g->rels);
	json_decref(g->seen_n);
	json_decref(g->seen_r);
	memset(g, 0, sizeof *g);
}
