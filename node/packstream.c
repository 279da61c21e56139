/*
 * packstream.c - PackStream v1 encoding and decoding of LoraDB values
 * (see packstream.h for the contract).
 *
 * Markers: one byte, whose high nibble carries the size of tiny strings,
 * lists, maps and structures (0x80, 0x90, 0xA0, 0xB0) and whose other
 * values name a type with a big-endian size or value after it. Integers
 * take the smallest form that holds them, as the spec asks of an encoder
 * (a decoder accepts any form).
 *
 * Temporal structures and what LoraDB keeps (Temporal in value.proto):
 *   Date 'D' {days}                   epoch_days
 *   LocalTime 't' {nanos}             nanos_of_day
 *   Time 'T' {nanos, offset}          nanos_of_day (local), offset_seconds
 *   LocalDateTime 'd' {secs, nanos}   epoch_days + nanos_of_day
 *   DateTime 'I' {utc secs, nanos, offset}      zoned values keep their
 *   DateTimeZoneId 'i' {utc secs, nanos, zone}  LOCAL date and time, so
 *   (4.4: 'F' / 'f' with local seconds)         'I'/'i' subtract the offset
 *   Duration 'E' {months, days, secs, nanos}
 *
 * Points: Point2D 'X' {srid, x, y} and Point3D 'Y' {srid, x, y, z}, both
 * ways (Point in value.proto).
 *
 * Nesting is counted as lora_value_depth counts it (proto/lora_pb.h), both
 * ways: lists and maps (a node or relationship is the map of its
 * properties, a path adds nothing) up to PS_DEPTH_MAX, so [[1]] is 2 deep
 * and a scalar inside 64 lists passes. `depth` below is the number of
 * levels around the value at hand; a list or map found at PS_DEPTH_MAX
 * would be one too many. A message's own maps (RUN's parameters, HELLO's
 * extra) are no level of the values in them, as HTTP's "params" object is
 * not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packstream.h"

#define NS      1000000000LL
#define DAY_SEC 86400LL

/* ---- encoding ---------------------------------------------------------- */

static int put_u8(struct lora_buf *b, uint8_t v)
{
	return lora_buf_append(b, &v, 1);
}

static int put_be(struct lora_buf *b, uint8_t marker, uint64_t v, int bytes)
{
	uint8_t t[9];
	t[0] = marker;
	for (int i = 0; i < bytes; i++)
		t[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	return lora_buf_append(b, t, (size_t)bytes + 1);
}

int ps_put_null(struct lora_buf *b)
{
	return put_u8(b, 0xC0);
}

int ps_put_bool(struct lora_buf *b, int v)
{
	return put_u8(b, v ? 0xC3 : 0xC2);
}

int ps_put_int(struct lora_buf *b, int64_t v)
{
	if (v >= -16 && v <= 127)
		return put_u8(b, (uint8_t)(int8_t)v);
	if (v >= INT8_MIN && v <= INT8_MAX)
		return put_be(b, 0xC8, (uint64_t)v, 1);
	if (v >= INT16_MIN && v <= INT16_MAX)
		return put_be(b, 0xC9, (uint64_t)v, 2);
	if (v >= INT32_MIN && v <= INT32_MAX)
		return put_be(b, 0xCA, (uint64_t)v, 4);
	return put_be(b, 0xCB, (uint64_t)v, 8);
}

int ps_put_float(struct lora_buf *b, double v)
{
	uint64_t bits;
	memcpy(&bits, &v, sizeof bits);
	return put_be(b, 0xC1, bits, 8);
}

/* A size after a marker: tiny (in the marker), 8, 16 or 32 bits. */
static int put_sized(struct lora_buf *b, uint8_t tiny, uint8_t m8, uint32_t n)
{
	if (tiny && n < 16)
		return put_u8(b, (uint8_t)(tiny | n));
	if (n <= UINT8_MAX)
		return put_be(b, m8, n, 1);
	if (n <= UINT16_MAX)
		return put_be(b, (uint8_t)(m8 + 1), n, 2);
	return put_be(b, (uint8_t)(m8 + 2), n, 4);
}

int ps_put_string(struct lora_buf *b, const char *s, size_t len)
{
	if (len > UINT32_MAX)
		return LORA_ELIMIT;
	int rc = put_sized(b, 0x80, 0xD0, (uint32_t)len);
	return rc ? rc : lora_buf_append(b, s, len);
}

int ps_put_str(struct lora_buf *b, const char *s)
{
	return ps_put_string(b, s ? s : "", s ? strlen(s) : 0);
}

int ps_put_bytes(struct lora_buf *b, const uint8_t *p, size_t len)
{
	if (len > UINT32_MAX)
		return LORA_ELIMIT;
	int rc = put_sized(b, 0, 0xCC, (uint32_t)len);
	return rc ? rc : lora_buf_append(b, p, len);
}

int ps_put_list_header(struct lora_buf *b, uint32_t n)
{
	return put_sized(b, 0x90, 0xD4, n);
}

int ps_put_map_header(struct lora_buf *b, uint32_t n)
{
	return put_sized(b, 0xA0, 0xD8, n);
}

int ps_put_struct_header(struct lora_buf *b, uint8_t tag, uint8_t n_fields)
{
	LORA_ASSERT(n_fields < 16);
	uint8_t t[2] = {(uint8_t)(0xB0 | n_fields), tag};
	return lora_buf_append(b, t, 2);
}

static int put_value(struct lora_buf *b, const Lora__Value *v,
                     const struct ps_enc *e, int depth);

/* A map, or a node's or relationship's properties: one level. */
static int put_props(struct lora_buf *b, Lora__MapEntry *const *es, size_t n,
                     const struct ps_enc *e, int depth)
{
	if (depth >= PS_DEPTH_MAX || n > UINT32_MAX)
		return LORA_ELIMIT;
	int rc = ps_put_map_header(b, (uint32_t)n);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = ps_put_str(b, es[i]->key);
		if (rc == 0)
			rc = put_value(b, es[i]->value, e, depth + 1);
	}
	return rc;
}

/* Element ids are the decimal id: opaque to drivers, stable, and the
 * same for a node and every relationship that names it. */
static int put_element_id(struct lora_buf *b, uint64_t id)
{
	char s[24];
	int len = snprintf(s, sizeof s, "%llu", (unsigned long long)id);
	return ps_put_string(b, s, (size_t)len);
}

static int put_node(struct lora_buf *b, const Lora__NodeValue *nv,
                    const struct ps_enc *e, int depth)
{
	int rc = ps_put_struct_header(b, 'N', e->element_ids ? 4 : 3);
	if (rc == 0)
		rc = ps_put_int(b, (int64_t)nv->id);
	if (rc == 0)
		rc = ps_put_list_header(b, (uint32_t)nv->n_labels);
	for (size_t i = 0; i < nv->n_labels && rc == 0; i++)
		rc = ps_put_str(b, nv->labels[i]);
	if (rc == 0)
		rc = put_props(b, nv->properties, nv->n_properties, e, depth);
	if (rc == 0 && e->element_ids)
		rc = put_element_id(b, nv->id);
	return rc;
}

static int put_rel(struct lora_buf *b, const Lora__RelValue *r,
                   const struct ps_enc *e, int depth, int bound)
{
	uint8_t nf =
	    bound ? (e->element_ids ? 8 : 5) : (e->element_ids ? 4 : 3);
	int rc = ps_put_struct_header(b, bound ? 'R' : 'r', nf);
	if (rc == 0)
		rc = ps_put_int(b, (int64_t)r->id);
	if (rc == 0 && bound)
		rc = ps_put_int(b, (int64_t)r->start_id);
	if (rc == 0 && bound)
		rc = ps_put_int(b, (int64_t)r->end_id);
	if (rc == 0)
		rc = ps_put_str(b, r->type);
	if (rc == 0)
		rc = put_props(b, r->properties, r->n_properties, e, depth);
	if (rc == 0 && e->element_ids)
		rc = put_element_id(b, r->id);
	if (rc == 0 && e->element_ids && bound)
		rc = put_element_id(b, r->start_id);
	if (rc == 0 && e->element_ids && bound)
		rc = put_element_id(b, r->end_id);
	return rc;
}

/* Path {nodes, rels, indices}: the path's nodes and relationships in
 * order (repeats allowed), indices alternating the 1-based relationship
 * (negative when walked against its direction) and node. */
static int put_path(struct lora_buf *b, const Lora__PathValue *p,
                    const struct ps_enc *e, int depth)
{
	if (p->n_nodes != p->n_rels + 1 || p->n_nodes > INT32_MAX)
		return LORA_EINVAL;
	int rc = ps_put_struct_header(b, 'P', 3);
	if (rc == 0)
		rc = ps_put_list_header(b, (uint32_t)p->n_nodes);
	for (size_t i = 0; i < p->n_nodes && rc == 0; i++)
		rc = put_node(b, p->nodes[i], e, depth);
	if (rc == 0)
		rc = ps_put_list_header(b, (uint32_t)p->n_rels);
	for (size_t i = 0; i < p->n_rels && rc == 0; i++)
		rc = put_rel(b, p->rels[i], e, depth, 0);
	if (rc == 0)
		rc = ps_put_list_header(b, (uint32_t)(2 * p->n_rels));
	for (size_t i = 0; i < p->n_rels && rc == 0; i++) {
		int64_t ri = (int64_t)i + 1;
		if (p->rels[i]->start_id != p->nodes[i]->id)
			ri = -ri;
		rc = ps_put_int(b, ri);
		if (rc == 0)
			rc = ps_put_int(b, (int64_t)i + 1);
	}
	return rc;
}

static int put_temporal(struct lora_buf *b, const Lora__Temporal *t,
                        const struct ps_enc *e)
{
	int64_t secs = t->epoch_days * DAY_SEC + t->nanos_of_day / NS;
	int64_t nanos = t->nanos_of_day % NS;
	int rc;
	switch (t->kind) {
	case LORA__TEMPORAL_KIND__TEMPORAL_DATE:
		rc = ps_put_struct_header(b, 'D', 1);
		return rc ? rc : ps_put_int(b, t->epoch_days);
	case LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_TIME:
		rc = ps_put_struct_header(b, 't', 1);
		return rc ? rc : ps_put_int(b, t->nanos_of_day);
	case LORA__TEMPORAL_KIND__TEMPORAL_TIME:
		rc = ps_put_struct_header(b, 'T', 2);
		if (rc == 0)
			rc = ps_put_int(b, t->nanos_of_day);
		return rc ? rc : ps_put_int(b, t->offset_seconds);
	case LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_DATETIME:
		rc = ps_put_struct_header(b, 'd', 2);
		if (rc == 0)
			rc = ps_put_int(b, secs);
		return rc ? rc : ps_put_int(b, nanos);
	case LORA__TEMPORAL_KIND__TEMPORAL_DATETIME: {
		int named = t->zone && t->zone[0];
		uint8_t tag = named ? (e->utc_datetime ? 'i' : 'f')
		                    : (e->utc_datetime ? 'I' : 'F');
		rc = ps_put_struct_header(b, tag, 3);
		if (rc == 0)
			rc = ps_put_int(b, e->utc_datetime
			                       ? secs - t->offset_seconds
			                       : secs);
		if (rc == 0)
			rc = ps_put_int(b, nanos);
		if (rc == 0)
			rc = named ? ps_put_str(b, t->zone)
			           : ps_put_int(b, t->offset_seconds);
		return rc;
	}
	case LORA__TEMPORAL_KIND__TEMPORAL_DURATION:
		rc = ps_put_struct_header(b, 'E', 4);
		if (rc == 0)
			rc = ps_put_int(b, t->months);
		if (rc == 0)
			rc = ps_put_int(b, t->days);
		if (rc == 0)
			rc = ps_put_int(b, t->seconds);
		return rc ? rc : ps_put_int(b, t->nanos);
	default:
		return LORA_EINVAL;
	}
}

static int put_point(struct lora_buf *b, const Lora__Point *p)
{
	int d3 = p->srid == 9157 || p->srid == 4979;
	int rc = ps_put_struct_header(b, d3 ? 'Y' : 'X', d3 ? 4 : 3);
	if (rc == 0)
		rc = ps_put_int(b, p->srid);
	if (rc == 0)
		rc = ps_put_float(b, p->x);
	if (rc == 0)
		rc = ps_put_float(b, p->y);
	if (rc == 0 && d3)
		rc = ps_put_float(b, p->z);
	return rc;
}

/* Vectors go out as lists of floats, whatever their coordinate type. */
static int put_vector(struct lora_buf *b, const Lora__Vector *v)
{
	size_t n = v->n_f64 ? v->n_f64 : v->n_f32 ? v->n_f32 : v->n_ints;
	if (n > UINT32_MAX)
		return LORA_ELIMIT;
	int rc = ps_put_list_header(b, (uint32_t)n);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = ps_put_float(b, v->n_f64   ? v->f64[i]
		                     : v->n_f32 ? (double)v->f32[i]
		                                : (double)v->ints[i]);
	return rc;
}

static int put_value(struct lora_buf *b, const Lora__Value *v,
                     const struct ps_enc *e, int depth)
{
	if (v == NULL)
		return ps_put_null(b);
	int rc;
	switch (v->kind_case) {
	case LORA__VALUE__KIND_BOOL_VALUE:
		return ps_put_bool(b, v->bool_value);
	case LORA__VALUE__KIND_INT_VALUE:
		return ps_put_int(b, v->int_value);
	case LORA__VALUE__KIND_FLOAT_VALUE:
		return ps_put_float(b, v->float_value);
	case LORA__VALUE__KIND_STRING_VALUE:
		return ps_put_str(b, v->string_value);
	case LORA__VALUE__KIND_BYTES_VALUE:
		return ps_put_bytes(b, v->bytes_value.data, v->bytes_value.len);
	case LORA__VALUE__KIND_LIST_VALUE:
		if (depth >= PS_DEPTH_MAX ||
		    v->list_value->n_items > UINT32_MAX)
			return LORA_ELIMIT;
		rc = ps_put_list_header(b, (uint32_t)v->list_value->n_items);
		for (size_t i = 0; i < v->list_value->n_items && rc == 0; i++)
			rc =
			    put_value(b, v->list_value->items[i], e, depth + 1);
		return rc;
	case LORA__VALUE__KIND_MAP_VALUE:
		return put_props(b, v->map_value->entries,
		                 v->map_value->n_entries, e, depth);
	case LORA__VALUE__KIND_VECTOR_VALUE:
		return put_vector(b, v->vector_value);
	case LORA__VALUE__KIND_TEMPORAL_VALUE:
		return put_temporal(b, v->temporal_value, e);
	case LORA__VALUE__KIND_POINT_VALUE:
		return put_point(b, v->point_value);
	case LORA__VALUE__KIND_NODE_VALUE:
		return put_node(b, v->node_value, e, depth);
	case LORA__VALUE__KIND_REL_VALUE:
		return put_rel(b, v->rel_value, e, depth, 1);
	case LORA__VALUE__KIND_PATH_VALUE:
		return put_path(b, v->path_value, e, depth);
	default:
		return ps_put_null(b);
	}
}

int ps_put_value(struct lora_buf *b, const Lora__Value *v,
                 const struct ps_enc *e)
{
	return put_value(b, v, e, 0);
}

/* ---- decoding ---------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t len, pos;
	size_t values;
	const struct ps_dec *d;
	char *err;
};

static int corrupt(struct rd *r, const char *what)
{
	return lora_errf(LORA_ECORRUPT, r->err, "PackStream: %s at byte %zu",
	                 what, r->pos);
}

static int take(struct rd *r, size_t n, const uint8_t **out)
{
	if (r->len - r->pos < n)
		return corrupt(r, "message ends inside a value");
	*out = r->p + r->pos;
	r->pos += n;
	return 0;
}

static int take_be(struct rd *r, int bytes, uint64_t *v)
{
	const uint8_t *q = NULL;
	int rc = take(r, (size_t)bytes, &q);
	if (rc)
		return rc;
	*v = 0;
	for (int i = 0; i < bytes; i++)
		*v = (*v << 8) | q[i];
	return 0;
}

/* Whether s[0..n) is well-formed UTF-8 without NUL bytes (values are C
 * strings in LoraDB). */
static int utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		int k = c < 0x80             ? 0
		        : (c & 0xE0) == 0xC0 ? 1
		        : (c & 0xF0) == 0xE0 ? 2
		        : (c & 0xF8) == 0xF0 ? 3
		                             : -1;
		if (c == 0 || k < 0 || n - i <= (size_t)k)
			return 0;
		uint32_t cp = k == 0 ? c : c & (0x3F >> k);
		for (int j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
		if (cp < min[k] || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += (size_t)k + 1;
	}
	return 1;
}

static Lora__Value *new_value(struct rd *r, int kind)
{
	if (++r->values > PS_VALUES_MAX) {
		lora_errf(LORA_ELIMIT, r->err,
		          "PackStream: more than %u values in one message",
		          PS_VALUES_MAX);
		return NULL;
	}
	Lora__Value *v = lora_malloc(sizeof *v);
	if (v == NULL) {
		lora_errf(LORA_ENOMEM, r->err, "out of memory");
		return NULL;
	}
	lora__value__init(v);
	v->kind_case = kind;
	return v;
}

static void free_value(Lora__Value *v)
{
	if (v)
		lora__value__free_unpacked(v, &lora_pb_allocator);
}

/* The size that follows a marker of 8, 16 or 32 bits (marker m8 + 0..2). */
static int read_size(struct rd *r, uint8_t marker, uint8_t m8, uint32_t *n)
{
	uint64_t v;
	int rc = take_be(r, 1 << (marker - m8), &v);
	*n = (uint32_t)v;
	return rc;
}

static int read_value(struct rd *r, int depth, Lora__Value **out);

static int too_deep(struct rd *r)
{
	return lora_errf(LORA_ELIMIT, r->err,
	                 "PackStream: value nested deeper than %d lists and "
	                 "maps",
	                 PS_DEPTH_MAX);
}

static int read_string_body(struct rd *r, uint32_t n, char **out)
{
	const uint8_t *q = NULL;
	int rc = take(r, n, &q);
	if (rc)
		return rc;
	if (!utf8_ok(q, n))
		return corrupt(r, "string is not UTF-8 (or holds a NUL)");
	*out = lora_strndup((const char *)q, n);
	return *out ? 0 : lora_errf(LORA_ENOMEM, r->err, "out of memory");
}

static int read_list(struct rd *r, uint32_t n, int depth, Lora__Value *v)
{
	if (depth >= PS_DEPTH_MAX)
		return too_deep(r);
	/* each item takes a byte at least: a count larger than what is left
	 * is refused before anything is allocated */
	if (n > r->len - r->pos)
		return corrupt(r, "list longer than the message");
	v->list_value = lora_malloc(sizeof *v->list_value);
	if (v->list_value == NULL)
		return lora_errf(LORA_ENOMEM, r->err, "out of memory");
	lora__value_list__init(v->list_value);
	v->list_value->items = lora_calloc(n ? n : 1, sizeof(Lora__Value *));
	if (v->list_value->items == NULL)
		return lora_errf(LORA_ENOMEM, r->err, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		int rc = read_value(r, depth + 1, &v->list_value->items[i]);
		if (rc)
			return rc;
		v->list_value->n_items++;
	}
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	const Lora__MapEntry *x = *(Lora__MapEntry *const *)a;
	const Lora__MapEntry *y = *(Lora__MapEntry *const *)b;
	return strcmp(x->key, y->key);
}

/* Keys are unique in LoraDB maps: a repeated key is refused. */
static int check_unique_keys(struct rd *r, const Lora__ValueMap *m)
{
	if (m->n_entries < 2)
		return 0;
	Lora__MapEntry **s = lora_malloc(m->n_entries * sizeof *s);
	if (s == NULL)
		return lora_errf(LORA_ENOMEM, r->err, "out of memory");
	memcpy(s, m->entries, m->n_entries * sizeof *s);
	qsort(s, m->n_entries, sizeof *s, key_cmp);
	int rc = 0;
	for (size_t i = 1; i < m->n_entries && rc == 0; i++)
		if (!strcmp(s[i - 1]->key, s[i]->key))
			rc = lora_errf(LORA_ECORRUPT, r->err,
			               "PackStream: map key \"%.64s\" repeated",
			               s[i]->key);
	lora_free(s);
	return rc;
}

static int read_map(struct rd *r, uint32_t n, int depth, Lora__Value *v)
{
	if (depth >= PS_DEPTH_MAX)
		return too_deep(r);
	if (n > (r->len - r->pos) / 2)
		return corrupt(r, "map longer than the message");
	Lora__ValueMap *m = v->map_value = lora_malloc(sizeof *m);
	if (m == NULL)
		return lora_errf(LORA_ENOMEM, r->err, "out of memory");
	lora__value_map__init(m);
	m->entries = lora_calloc(n ? n : 1, sizeof *m->entries);
	if (m->entries == NULL)
		return lora_errf(LORA_ENOMEM, r->err, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		Lora__MapEntry *e = lora_malloc(sizeof *e);
		if (e == NULL)
			return lora_errf(LORA_ENOMEM, r->err, "out of memory");
		lora__map_entry__init(e);
		m->entries[m->n_entries++] = e;
		Lora__Value *k = NULL;
		int rc = read_value(r, depth + 1, &k);
		if (rc == 0 && k->kind_case != LORA__VALUE__KIND_STRING_VALUE)
			rc = corrupt(r, "map key is not a string");
		if (rc == 0) {
			e->key = k->string_value;
			k->kind_case = LORA__VALUE__KIND__NOT_SET;
		}
		free_value(k);
		if (rc == 0)
			rc = read_value(r, depth + 1, &e->value);
		if (rc)
			return rc;
	}
	return check_unique_keys(r, m);
}

/* Bolt's temporal structures as parameters (see the top of the file). */
#define PS_DAYS_MAX   1000000000000LL /* beyond Cypher's years, not overflow */
#define PS_OFFSET_MAX (18 * 3600)

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int temporal_fields(struct rd *r, uint8_t tag, Lora__Value *const *f,
                           uint32_t nf)
{
	static const struct {
		uint8_t tag, n;
		const char *types; /* i: integer, s: string */
	} shapes[] = {{'D', 1, "i"},   {'t', 1, "i"},   {'T', 2, "ii"},
	              {'d', 2, "ii"},  {'I', 3, "iii"}, {'F', 3, "iii"},
	              {'i', 3, "iis"}, {'f', 3, "iis"}, {'E', 4, "iiii"}};
	int k = -1;
	for (int i = 0; i < (int)(sizeof shapes / sizeof shapes[0]); i++)
		if (shapes[i].tag == tag)
			k = i;
	if (k < 0)
		return lora_errf(LORA_EINVAL, r->err,
		                 "PackStream: structure 0x%02X is not a value "
		                 "this server takes (graph values cannot be "
		                 "parameters)",
		                 tag);
	if (nf != shapes[k].n)
		return corrupt(r,
		               "temporal structure has the wrong field count");
	for (uint32_t i = 0; i < nf; i++)
		if (f[i]->kind_case != (shapes[k].types[i] == 'i'
		                            ? LORA__VALUE__KIND_INT_VALUE
		                            : LORA__VALUE__KIND_STRING_VALUE))
			return corrupt(r, "temporal structure field of the "
			                  "wrong type");
	return 0;
}

/* Local seconds and nanos into epoch_days + nanos_of_day. */
static int set_local(struct rd *r, Lora__Temporal *t, int64_t secs,
                     int64_t nanos)
{
	if (nanos < 0 || nanos >= NS)
		return corrupt(r, "nanoseconds out of range");
	int64_t days = floor_div(secs, DAY_SEC);
	if (days > PS_DAYS_MAX || days < -PS_DAYS_MAX)
		return corrupt(r, "date out of range");
	t->epoch_days = days;
	t->nanos_of_day = (secs - days * DAY_SEC) * NS + nanos;
	return 0;
}

static int set_datetime(struct rd *r, uint8_t tag, Lora__Value *const *f,
                        Lora__Temporal *t)
{
	int64_t secs = f[0]->int_value;
	int utc = tag == 'I' || tag == 'i';
	int32_t off;
	if (tag == 'I' || tag == 'F') {
		if (f[2]->int_value > PS_OFFSET_MAX ||
		    f[2]->int_value < -PS_OFFSET_MAX)
			return corrupt(r, "UTC offset out of range");
		off = (int32_t)f[2]->int_value;
	} else {
		if (r->d == NULL || r->d->zone == NULL ||
		    r->d->zone(f[2]->string_value, secs, !utc, &off) != 0)
			return lora_errf(LORA_EINVAL, r->err,
			                 "unknown time zone %.64s",
			                 f[2]->string_value);
		t->zone = lora_strdup(f[2]->string_value);
		if (t->zone == NULL)
			return lora_errf(LORA_ENOMEM, r->err, "out of memory");
	}
	if (secs > PS_DAYS_MAX * DAY_SEC || secs < -PS_DAYS_MAX * DAY_SEC)
		return corrupt(r, "date out of range");
	t->kind = LORA__TEMPORAL_KIND__TEMPORAL_DATETIME;
	t->offset_seconds = off;
	return set_local(r, t, utc ? secs + off : secs, f[1]->int_value);
}

static int set_temporal(struct rd *r, uint8_t tag, Lora__Value *const *f,
                        Lora__Temporal *t)
{
	int64_t a = f[0]->int_value;
	switch (tag) {
	case 'D':
		if (a > PS_DAYS_MAX || a < -PS_DAYS_MAX)
			return corrupt(r, "date out of range");
		t->kind = LORA__TEMPORAL_KIND__TEMPORAL_DATE;
		t->epoch_days = a;
		return 0;
	case 't':
	case 'T':
		if (a < 0 || a >= DAY_SEC * NS)
			return corrupt(r, "time of day out of range");
		t->kind = tag == 't' ? LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_TIME
		                     : LORA__TEMPORAL_KIND__TEMPORAL_TIME;
		t->nanos_of_day = a;
		if (tag == 'T' && (f[1]->int_value > PS_OFFSET_MAX ||
		                   f[1]->int_value < -PS_OFFSET_MAX))
			return corrupt(r, "UTC offset out of range");
		if (tag == 'T')
			t->offset_seconds = (int32_t)f[1]->int_value;
		return 0;
	case 'd':
		if (a > PS_DAYS_MAX * DAY_SEC || a < -PS_DAYS_MAX * DAY_SEC)
			return corrupt(r, "date out of range");
		t->kind = LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_DATETIME;
		return set_local(r, t, a, f[1]->int_value);
	case 'E': {
		/* nanos into [0, 1e9), the rest carried into seconds */
		int64_t ns = f[3]->int_value, s = f[2]->int_value;
		int64_t q = ns / NS, rem = ns % NS;
		if (rem < 0) {
			rem += NS;
			q--;
		}
		if (__builtin_add_overflow(s, q, &s))
			return corrupt(r, "duration out of range");
		t->kind = LORA__TEMPORAL_KIND__TEMPORAL_DURATION;
		t->months = a;
		t->days = f[1]->int_value;
		t->seconds = s;
		t->nanos = (int32_t)rem;
		return 0;
	}
	default:
		return set_datetime(r, tag, f, t);
	}
}

/* Point2D 'X' {srid, x, y} or Point3D 'Y' {srid, x, y, z} into a value;
 * the srid must be one LoraDB knows (7203, 9157, 4326, 4979) and match
 * the dimension. */
static int make_point(struct rd *r, uint8_t tag, Lora__Value *const *f,
                      uint32_t nf, Lora__Value **out)
{
	uint32_t want = tag == 'X' ? 3 : 4;
	if (nf != want)
		return corrupt(r, "point structure has the wrong field count");
	if (f[0]->kind_case != LORA__VALUE__KIND_INT_VALUE)
		return corrupt(r, "point srid must be an integer");
	double c[3] = {0, 0, 0};
	for (uint32_t i = 1; i < nf; i++) {
		if (f[i]->kind_case == LORA__VALUE__KIND_FLOAT_VALUE)
			c[i - 1] = f[i]->float_value;
		else if (f[i]->kind_case == LORA__VALUE__KIND_INT_VALUE)
			c[i - 1] = (double)f[i]->int_value;
		else
			return corrupt(r, "point coordinate must be a number");
	}
	int64_t srid = f[0]->int_value;
	int d3 = srid == 9157 || srid == 4979;
	if ((srid != 7203 && srid != 4326 && !d3) || d3 != (tag == 'Y'))
		return lora_errf(LORA_EINVAL, r->err,
		                 "PackStream: point srid %lld is not one of "
		                 "7203, 4326 (2-D), 9157, 4979 (3-D)",
		                 (long long)srid);
	Lora__Value *v = new_value(r, LORA__VALUE__KIND_POINT_VALUE);
	if (v == NULL)
		return r->values > PS_VALUES_MAX ? LORA_ELIMIT : LORA_ENOMEM;
	if ((v->point_value = lora_malloc(sizeof(Lora__Point))) == NULL) {
		free_value(v);
		return lora_errf(LORA_ENOMEM, r->err, "out of memory");
	}
	lora__point__init(v->point_value);
	v->point_value->srid = (uint32_t)srid;
	v->point_value->x = c[0];
	v->point_value->y = c[1];
	v->point_value->z = c[2];
	*out = v;
	return 0;
}

/* A structure inside a value: read its fields, then make the temporal or
 * the point. Either is a leaf, so one may sit inside PS_DEPTH_MAX lists;
 * its fields are read a level further in, which refuses a list, map or
 * structure among them there and bounds structures inside structures. */
static int read_struct_value(struct rd *r, uint32_t nf, int depth,
                             Lora__Value **out)
{
	if (depth > PS_DEPTH_MAX)
		return too_deep(r);
	const uint8_t *q = NULL;
	int rc = take(r, 1, &q);
	if (rc)
		return rc;
	uint8_t tag = q[0];
	Lora__Value *f[15] = {0};
	uint32_t got = 0;
	for (; got < nf && rc == 0; got++)
		rc = read_value(r, depth + 1, &f[got]);
	if (rc == 0 && (tag == 'X' || tag == 'Y')) {
		rc = make_point(r, tag, f, nf, out);
		for (uint32_t i = 0; i < got; i++)
			free_value(f[i]);
		return rc;
	}
	if (rc == 0)
		rc = temporal_fields(r, tag, f, nf);
	Lora__Value *v = NULL;
	if (rc == 0 &&
	    (v = new_value(r, LORA__VALUE__KIND_TEMPORAL_VALUE)) == NULL)
		rc = r->values > PS_VALUES_MAX ? LORA_ELIMIT : LORA_ENOMEM;
	if (rc == 0 &&
	    (v->temporal_value = lora_malloc(sizeof(Lora__Temporal))) == NULL)
		rc = lora_errf(LORA_ENOMEM, r->err, "out of memory");
	if (rc == 0) {
		lora__temporal__init(v->temporal_value);
		rc = set_temporal(r, tag, f, v->temporal_value);
	}
	for (uint32_t i = 0; i < got; i++)
		free_value(f[i]);
	if (rc) {
		free_value(v);
		return rc;
	}
	*out = v;
	return 0;
}

/* Reads the value whose marker byte is mk into a new *out. */
static int read_marked(struct rd *r, uint8_t mk, int depth, Lora__Value **out)
{
	uint64_t u;
	uint32_t n;
	int rc = 0;
	Lora__Value *v = NULL;
	if (mk < 0x80 || mk >= 0xF0) { /* tiny int */
		if ((v = new_value(r, LORA__VALUE__KIND_INT_VALUE)))
			v->int_value = (int8_t)mk;
	} else if (mk >= 0xC8 && mk <= 0xCB) {
		int bytes = 1 << (mk - 0xC8);
		if ((rc = take_be(r, bytes, &u)) == 0 &&
		    (v = new_value(r, LORA__VALUE__KIND_INT_VALUE))) {
			int sh = 64 - 8 * bytes;
			v->int_value =
			    sh ? (int64_t)(u << sh) >> sh : (int64_t)u;
		}
	} else if (mk == 0xC0) {
		if ((v = new_value(r, LORA__VALUE__KIND_NULL_VALUE)))
			v->null_value = 1;
	} else if (mk == 0xC2 || mk == 0xC3) {
		if ((v = new_value(r, LORA__VALUE__KIND_BOOL_VALUE)))
			v->bool_value = mk == 0xC3;
	} else if (mk == 0xC1) {
		if ((rc = take_be(r, 8, &u)) == 0 &&
		    (v = new_value(r, LORA__VALUE__KIND_FLOAT_VALUE)))
			memcpy(&v->float_value, &u, sizeof u);
	} else if ((mk & 0xF0) == 0x80 || (mk >= 0xD0 && mk <= 0xD2)) {
		n = mk & 0x0F;
		if (mk >= 0xD0)
			rc = read_size(r, mk, 0xD0, &n);
		if (rc == 0 &&
		    (v = new_value(r, LORA__VALUE__KIND_STRING_VALUE)))
			rc = read_string_body(r, n, &v->string_value);
	} else if (mk >= 0xCC && mk <= 0xCE) {
		const uint8_t *q = NULL;
		if ((rc = read_size(r, mk, 0xCC, &n)) == 0 &&
		    (rc = take(r, n, &q)) == 0 &&
		    (v = new_value(r, LORA__VALUE__KIND_BYTES_VALUE))) {
			v->bytes_value.data = lora_malloc(n ? n : 1);
			if (v->bytes_value.data == NULL)
				rc = lora_errf(LORA_ENOMEM, r->err,
				               "out of memory");
			else
				memcpy(v->bytes_value.data, q, n);
			v->bytes_value.len = rc ? 0 : n;
		}
	} else if ((mk & 0xF0) == 0x90 || (mk >= 0xD4 && mk <= 0xD6)) {
		n = mk & 0x0F;
		if (mk >= 0xD4)
			rc = read_size(r, mk, 0xD4, &n);
		if (rc == 0 && (v = new_value(r, LORA__VALUE__KIND_LIST_VALUE)))
			rc = read_list(r, n, depth, v);
	} else if ((mk & 0xF0) == 0xA0 || (mk >= 0xD8 && mk <= 0xDA)) {
		n = mk & 0x0F;
		if (mk >= 0xD8)
			rc = read_size(r, mk, 0xD8, &n);
		if (rc == 0 && (v = new_value(r, LORA__VALUE__KIND_MAP_VALUE)))
			rc = read_map(r, n, depth, v);
	} else if ((mk & 0xF0) == 0xB0) {
		return read_struct_value(r, mk & 0x0F, depth, out);
	} else {
		return corrupt(r, "unknown marker");
	}
	if (v == NULL && rc == 0)
		rc = r->values > PS_VALUES_MAX ? LORA_ELIMIT : LORA_ENOMEM;
	if (rc) {
		free_value(v);
		return rc;
	}
	*out = v;
	return 0;
}

static int read_value(struct rd *r, int depth, Lora__Value **out)
{
	*out = NULL;
	const uint8_t *q = NULL;
	int rc = take(r, 1, &q);
	return rc ? rc : read_marked(r, q[0], depth, out);
}

int ps_decode_value(const uint8_t *p, size_t len, const struct ps_dec *d,
                    Lora__Value **out, char *errmsg)
{
	struct rd r = {.p = p, .len = len, .d = d, .err = errmsg};
	int rc = read_value(&r, 0, out);
	if (rc == 0 && r.pos != len) {
		free_value(*out);
		*out = NULL;
		rc = corrupt(&r, "bytes after the value");
	}
	return rc;
}

int ps_decode_message(const uint8_t *p, size_t len, const struct ps_dec *d,
                      struct ps_message *m, char *errmsg)
{
	struct rd r = {.p = p, .len = len, .d = d, .err = errmsg};
	memset(m, 0, sizeof *m);
	const uint8_t *q = NULL;
	int rc = take(&r, 2, &q);
	if (rc)
		return rc;
	if ((q[0] & 0xF0) != 0xB0)
		return corrupt(&r, "a message is not a structure");
	m->tag = q[1];
	uint32_t nf = q[0] & 0x0F;
	if (nf > PS_MESSAGE_FIELDS_MAX)
		return corrupt(&r, "too many message fields");
	for (uint32_t i = 0; i < nf && rc == 0; i++) {
		/* a map field is the message's own, not a level of the values
		 * in it: its entries are read as values at the top */
		int map =
		    r.pos < len && ((p[r.pos] & 0xF0) == 0xA0 ||
		                    (p[r.pos] >= 0xD8 && p[r.pos] <= 0xDA));
		rc = read_value(&r, map ? -1 : 0, &m->fields[i]);
		if (rc == 0)
			m->n_fields++;
	}
	if (rc == 0 && r.pos != len)
		rc = corrupt(&r, "bytes after the message");
	if (rc)
		ps_message_free(m);
	return rc;
}

void ps_message_free(struct ps_message *m)
{
	for (uint32_t i = 0; i < m->n_fields; i++)
		free_value(m->fields[i]);
	memset(m, 0, sizeof *m);
}

const Lora__Value *ps_map_get(const Lora__Value *map, const char *key)
{
	if (map == NULL || map->kind_case != LORA__VALUE__KIND_MAP_VALUE)
		return NULL;
	for (size_t i = 0; i < map->map_value->n_entries; i++)
		if (!strcmp(map->map_value->entries[i]->key, key))
			return map->map_value->entries[i]->value;
	return NULL;
}
