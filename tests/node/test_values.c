/* test_values.c - values where the node decodes or copies them: log entries
 * for apply (node_batch_decode), result copies (node_value_dup) and JSON
 * (node_json_to_params, node_json_from_value, node_json_row), at the
 * nesting limit, past it, and 20,000 deep. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "node_int.h"
#include "wire_build.h"

#define DEEP 20000

/* ---- log entries -------------------------------------------------------- */

static int decode(const struct wire *w, size_t len, Lora__MutationBatch **b,
                  char *msg)
{
	uint8_t *copy = malloc(len ? len : 1); /* exact size, for ASan */
	memcpy(copy, wb_data(w), len);
	int rc = node_batch_decode(copy, len, b, msg);
	free(copy);
	return rc;
}

START_TEST(batch_decode_bounds_depth)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	Lora__MutationBatch *b;
	struct wire w;
	wb_value(&w, WB_LIST, LORA_VALUE_DEPTH_MAX);
	wb_envelope(&w, LORA_PB_MUTATION_BATCH);
	ck_assert_int_eq(decode(&w, wb_len(&w), &b, msg), 0);
	ck_assert_uint_eq(b->n_mutations, 1);
	ck_assert_int_eq(lora_batch_depth(b, LORA_VALUE_DEPTH_MAX),
	                 LORA_VALUE_DEPTH_MAX);
	lora__mutation_batch__free_unpacked(b, &lora_pb_allocator);
	/* every prefix: refused as corrupt or decoded, never a crash */
	for (size_t cut = 0; cut < wb_len(&w); cut++) {
		int rc = decode(&w, cut, &b, msg);
		ck_assert(rc == 0 || rc == LORA_ECORRUPT);
		if (b)
			lora__mutation_batch__free_unpacked(b,
			                                    &lora_pb_allocator);
	}
	wb_free(&w);

	long past[] = {LORA_VALUE_DEPTH_MAX + 1, DEEP};
	for (int i = 0; i < 2; i++) {
		wb_value(&w, WB_MIXED, past[i]);
		wb_envelope(&w, LORA_PB_MUTATION_BATCH);
		ck_assert_int_eq(decode(&w, wb_len(&w), &b, msg), LORA_ELIMIT);
		ck_assert_ptr_null(b);
		ck_assert_ptr_nonnull(strstr(msg, "deeper than 64"));
		wb_free(&w);
	}
}
END_TEST

/* protobuf-c answers NULL for bad bytes and for no memory alike: only bad
 * bytes may reject an entry (every node decides them alike); no memory
 * must say so, or one node would skip an entry the others apply. */
START_TEST(batch_decode_tells_no_memory_from_bad_bytes)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	Lora__MutationBatch *b;
	struct wire w;
	wb_value(&w, WB_MAP, 3);
	wb_envelope(&w, LORA_PB_MUTATION_BATCH);
	lora_alloc_fail_after(0, 1);
	ck_assert_int_eq(decode(&w, wb_len(&w), &b, msg), LORA_ENOMEM);
	lora_alloc_fail_after(-1, 0);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(decode(&w, wb_len(&w), &b, msg), 0);
	lora__mutation_batch__free_unpacked(b, &lora_pb_allocator);
	wb_free(&w);

	/* Well-formed wire bytes protobuf-c still refuses: a packed double
	 * array of 3 bytes in a SetVector's vector. */
	memset(&w, 0, sizeof w);
	const uint8_t f64[] = {4 << 3 | 2, 3, 0, 0, 0}; /* Vector.f64 */
	wb_prepend(&w, f64, sizeof f64);
	wb_wrap(&w, 4); /* SetVector.vector */
	wb_wrap(&w, 9); /* Mutation.set_vector */
	wb_wrap(&w, 1); /* MutationBatch.mutations */
	ck_assert_int_eq(decode(&w, wb_len(&w), &b, msg), LORA_ECORRUPT);
	ck_assert_ptr_null(b);
	wb_free(&w);
}
END_TEST

/* The same with the apply loop's arena: a failure inside it (a block, a
 * piece of its own) is no memory even when a malloc right after it would
 * succeed, as is each single failure over the whole decode; the old test
 * (a 1-byte malloc after protobuf-c's NULL) called these bad bytes, and
 * that node applied an empty batch where the others applied the real one. */
START_TEST(batch_decode_in_arena_tells_no_memory)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	Lora__MutationBatch *b;
	struct wire w;
	wb_value(&w, WB_MAP, 3);
	wb_envelope(&w, LORA_PB_MUTATION_BATCH);
	struct lora_pb_arena ar;
	lora_pb_arena_init(&ar);
	unsigned long before = lora_alloc_count();
	ck_assert_int_eq(
	    node_batch_decode_in(wb_data(&w), wb_len(&w), &ar, &b, msg), 0);
	long allocs = (long)(lora_alloc_count() - before);
	ck_assert_int_ge(allocs, 1);
	lora_pb_arena_free(&ar);
	for (long i = 0; i < allocs; i++) {
		lora_alloc_fail_after(i, 0); /* that one only */
		int rc =
		    node_batch_decode_in(wb_data(&w), wb_len(&w), &ar, &b, msg);
		lora_alloc_fail_after(-1, 0);
		ck_assert_int_eq(rc, LORA_ENOMEM);
		ck_assert_ptr_null(b);
		lora_pb_arena_free(&ar);
	}
	/* and with the malloc allocator: each single failure */
	before = lora_alloc_count();
	ck_assert_int_eq(decode(&w, wb_len(&w), &b, msg), 0);
	allocs = (long)(lora_alloc_count() - before); /* copy: malloc */
	lora__mutation_batch__free_unpacked(b, &lora_pb_allocator);
	for (long i = 0; i < allocs; i++) {
		uint8_t *copy = malloc(wb_len(&w));
		memcpy(copy, wb_data(&w), wb_len(&w));
		lora_alloc_fail_after(i, 0);
		int rc = node_batch_decode(copy, wb_len(&w), &b, msg);
		lora_alloc_fail_after(-1, 0);
		free(copy);
		ck_assert_int_eq(rc, LORA_ENOMEM);
		ck_assert_ptr_null(b);
	}
	wb_free(&w);
}
END_TEST

/* A batch whose one SetVector repeats its singular `vector` field n times,
 * each with k doubles: protobuf-c merges them, copying k, 2k, ... nk
 * doubles. */
static void repeated_vector_batch(struct wire *w, size_t n, size_t k)
{
	memset(w, 0, sizeof *w);
	size_t vlen = 2 + 8 * k; /* Vector.f64 (4), packed */
	ck_assert_uint_lt(8 * k, 128);
	ck_assert_uint_lt(vlen, 128);
	uint8_t *one = calloc(2 + vlen, 1);
	one[0] = 4 << 3 | 2; /* SetVector.vector */
	one[1] = (uint8_t)vlen;
	one[2] = 4 << 3 | 2;
	one[3] = (uint8_t)(8 * k);
	for (size_t i = 0; i < n; i++)
		wb_prepend(w, one, 2 + vlen);
	free(one);
	wb_wrap(w, 9); /* Mutation.set_vector */
	wb_wrap(w, 1); /* MutationBatch.mutations */
}

/* Merged repeats grow the decoded batch with the square of their count:
 * 2,000 repeats of 8 doubles (136 KB) would take 128 MB, 1 MB of them
 * about 4 GB, on every node and at every replay. Past
 * LORA_PB_DECODED_BYTES_MAX(len) the entry is refused as corrupt, with
 * either allocator (every node alike); a few repeats still decode. */
START_TEST(batch_decode_caps_merged_repeats)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	Lora__MutationBatch *b;
	struct wire w;
	repeated_vector_batch(&w, 3, 8);
	ck_assert_int_eq(decode(&w, wb_len(&w), &b, msg), 0);
	ck_assert_uint_eq(b->mutations[0]->set_vector->vector->n_f64, 24);
	lora__mutation_batch__free_unpacked(b, &lora_pb_allocator);
	wb_free(&w);

	repeated_vector_batch(&w, 2000, 8);
	ck_assert_int_eq(decode(&w, wb_len(&w), &b, msg), LORA_ECORRUPT);
	ck_assert_ptr_null(b);
	ck_assert_ptr_nonnull(strstr(msg, "decodes to more than"));
	struct lora_pb_arena ar;
	lora_pb_arena_init(&ar);
	ck_assert_int_eq(
	    node_batch_decode_in(wb_data(&w), wb_len(&w), &ar, &b, msg),
	    LORA_ECORRUPT);
	ck_assert_ptr_null(b);
	ck_assert_uint_le(ar.meter.used_bytes,
	                  LORA_PB_DECODED_BYTES_MAX(wb_len(&w)));
	lora_pb_arena_free(&ar);
	wb_free(&w);
}
END_TEST

/* ---- result copies ------------------------------------------------------ */

/* A list value nested depth deep, built in memory as the engine builds
 * one (lora_malloc'd: free with lora__value__free_unpacked, which recurses:
 * only for shallow ones). */
struct chain {
	Lora__Value *vals;
	Lora__ValueList *lists;
	Lora__Value **items;
};

static Lora__Value *chain_new(struct chain *c, int depth)
{
	c->vals = calloc((size_t)depth + 1, sizeof *c->vals);
	c->lists = calloc((size_t)depth + 1, sizeof *c->lists);
	c->items = calloc((size_t)depth + 1, sizeof *c->items);
	for (int i = 0; i <= depth; i++)
		lora__value__init(&c->vals[i]);
	for (int i = 0; i < depth; i++) {
		lora__value_list__init(&c->lists[i]);
		c->items[i] = &c->vals[i + 1];
		c->lists[i].items = &c->items[i];
		c->lists[i].n_items = 1;
		c->vals[i].kind_case = LORA__VALUE__KIND_LIST_VALUE;
		c->vals[i].list_value = &c->lists[i];
	}
	c->vals[depth].kind_case = LORA__VALUE__KIND_INT_VALUE;
	c->vals[depth].int_value = 1;
	return &c->vals[0];
}

static void chain_free(struct chain *c)
{
	free(c->vals);
	free(c->lists);
	free(c->items);
}

START_TEST(value_dup_bounds_depth)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	struct chain c;
	Lora__Value *out, *v = chain_new(&c, DEEP);
	/* was: a stack overflow in protobuf-c under node_value_dup */
	ck_assert_int_eq(node_value_dup(v, LORA_RESULT_DEPTH_MAX, &out, msg),
	                 LORA_ELIMIT);
	ck_assert_ptr_null(out);
	ck_assert_ptr_nonnull(strstr(msg, "deeper than 130"));
	v = &c.vals[DEEP - LORA_RESULT_DEPTH_MAX];
	ck_assert_int_eq(node_value_dup(v, LORA_RESULT_DEPTH_MAX, &out, msg),
	                 0);
	ck_assert_int_eq(lora_value_depth(out, LORA_RESULT_DEPTH_MAX),
	                 LORA_RESULT_DEPTH_MAX);
	lora__value__free_unpacked(out, &lora_pb_allocator);
	ck_assert_int_eq(node_value_dup(NULL, 0, &out, msg), 0);
	ck_assert_int_eq(out->kind_case, LORA__VALUE__KIND__NOT_SET);
	lora__value__free_unpacked(out, &lora_pb_allocator);

	/* a response row with such a value: an error on the response */
	Lora__Response *r = node_resp_new();
	const Lora__Value *row[] = {&c.vals[DEEP - 3], &c.vals[0]};
	ck_assert_int_eq(node_resp_add_row(r, row, 2), LORA_ELIMIT);
	ck_assert_ptr_nonnull(r->error);
	ck_assert_str_eq(r->error->code, "LORA_LIMIT");
	ck_assert_ptr_nonnull(strstr(r->error->message, "result column 2"));
	lora__response__free_unpacked(r, &lora_pb_allocator);

	/* JSON encoding stops too (NULL) instead of recursing 20,000 deep */
	json_t *j = node_json_from_value(&c.vals[0]);
	ck_assert_ptr_null(j);
	j = node_json_from_value(&c.vals[DEEP - 2]);
	ck_assert_ptr_nonnull(j);
	char *txt = json_dumps(j, JSON_COMPACT);
	ck_assert_str_eq(txt, "[[1]]");
	free(txt);
	json_decref(j);
	chain_free(&c);
}
END_TEST

/* A row whose value nests one level past LORA_RESULT_DEPTH_MAX, as a
 * streamed HTTP read renders it: the row fails with the write path's
 * error (413 LORA_LIMIT, or the "error" member once rows went out). It
 * used to come back without that column: {"one": 1} for a two-column row,
 * and with rowArrays the next column's value read as this one's. */
START_TEST(json_row_fails_on_a_value_too_deep)
{
	char msg[LORA_ERRMSG_BYTES] = "", want[LORA_ERRMSG_BYTES];
	struct chain c;
	chain_new(&c, LORA_RESULT_DEPTH_MAX + 1);
	Lora__Value one = LORA__VALUE__INIT;
	one.kind_case = LORA__VALUE__KIND_INT_VALUE;
	one.int_value = 1;
	const Lora__Value *row[] = {&one, &c.vals[0], &one};
	const char *cols[] = {"one", "v", "two"};
	Lora__Response *r = node_resp_new();
	ck_assert_int_eq(node_resp_add_row(r, row, 3), LORA_ELIMIT);
	snprintf(want, sizeof want, "%s", r->error->message);
	lora__response__free_unpacked(r, &lora_pb_allocator);
	ck_assert_str_eq(want, "result column 2: value nested deeper than 130 "
	                       "lists, maps, nodes and relationships (the "
	                       "value depth limit)");
	json_t *j = json_true();
	ck_assert_int_eq(node_json_row(row, cols, 3, &j, msg), LORA_ELIMIT);
	ck_assert_ptr_null(j);
	ck_assert_str_eq(msg, want);
	j = json_true();
	ck_assert_int_eq(node_json_row(row, NULL, 3, &j, msg), LORA_ELIMIT);
	ck_assert_ptr_null(j);
	ck_assert_str_eq(msg, want);

	/* at the limit: the whole row */
	row[1] = &c.vals[1];
	ck_assert_int_eq(node_json_row(row, NULL, 3, &j, msg), 0);
	ck_assert_uint_eq(json_array_size(j), 3);
	ck_assert_int_eq(json_integer_value(json_array_get(j, 2)), 1);
	json_decref(j);
	ck_assert_int_eq(node_json_row(row, cols, 3, &j, msg), 0);
	ck_assert_uint_eq(json_object_size(j), 3);
	json_decref(j);
	chain_free(&c);
}
END_TEST

/* Out of memory while a value renders (a NaN goes out as its text, in a
 * buffer of lora_malloc): the row fails, no column is left out. */
START_TEST(json_row_fails_on_no_memory)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	Lora__Value one = LORA__VALUE__INIT, nan = LORA__VALUE__INIT;
	one.kind_case = LORA__VALUE__KIND_INT_VALUE;
	one.int_value = 1;
	nan.kind_case = LORA__VALUE__KIND_FLOAT_VALUE;
	nan.float_value = NAN;
	const Lora__Value *row[] = {&one, &nan};
	const char *cols[] = {"one", "x"};
	json_t *j;
	ck_assert_int_eq(node_json_row(row, cols, 2, &j, msg), 0);
	char *txt = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	ck_assert_str_eq(txt, "{\"one\":1,\"x\":\"NaN\"}");
	free(txt);
	json_decref(j);
	for (int arrays = 0; arrays < 2; arrays++) {
		j = json_true();
		lora_alloc_fail_after(0, 1);
		int rc = node_json_row(row, arrays ? NULL : cols, 2, &j, msg);
		lora_alloc_fail_after(-1, 0);
		ck_assert_int_eq(rc, LORA_ENOMEM);
		ck_assert_ptr_null(j);
		ck_assert_str_eq(msg, "result column 2: out of memory");
	}
}
END_TEST

/* ---- JSON parameters ---------------------------------------------------- */

/* {"p": <depth arrays (or objects) around 1>} */
static json_t *nested_params(int depth, int objects)
{
	size_t n = (size_t)depth * 6 + 16;
	char *s = malloc(n), *e = s;
	e += sprintf(e, "{\"p\":");
	for (int i = 0; i < depth; i++)
		e += sprintf(e, objects ? "{\"k\":" : "[");
	e += sprintf(e, "1");
	for (int i = 0; i < depth; i++)
		*e++ = objects ? '}' : ']';
	strcpy(e, "}");
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);
	free(s);
	return j;
}

START_TEST(json_params_bound_depth)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	for (int objects = 0; objects < 2; objects++) {
		Lora__ValueMap *m;
		json_t *j = nested_params(LORA_VALUE_DEPTH_MAX, objects);
		ck_assert_int_eq(node_json_to_params(j, &m, msg), 0);
		ck_assert_int_eq(lora_value_depth(m->entries[0]->value, 64),
		                 LORA_VALUE_DEPTH_MAX);
		lora__value_map__free_unpacked(m, &lora_pb_allocator);
		json_decref(j);
		j = nested_params(LORA_VALUE_DEPTH_MAX + 1, objects);
		ck_assert_int_eq(node_json_to_params(j, &m, msg), LORA_EPARAMS);
		ck_assert_ptr_null(m);
		ck_assert_ptr_nonnull(strstr(msg, "deeper than 64"));
		json_decref(j);
	}
}
END_TEST

/* The vector parameter {"kind": "vector", <obj>} through
 * node_json_to_params: its code, and the vector in *out when it is 0. */
static int vector_obj_param(const char *obj, char *msg, Lora__Vector **out)
{
	char s[512];
	snprintf(s, sizeof s, "{\"v\":{\"kind\":\"vector\",%s}}", obj);
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);
	ck_assert_msg(j != NULL, "%s", s);
	Lora__ValueMap *m = NULL;
	int rc = node_json_to_params(j, &m, msg);
	json_decref(j);
	*out = NULL;
	if (rc == 0) {
		*out = m->entries[0]->value->vector_value;
		m->entries[0]->value->vector_value = NULL;
		m->entries[0]->value->kind_case = LORA__VALUE__KIND__NOT_SET;
		lora__value_map__free_unpacked(m, &lora_pb_allocator);
	} else {
		ck_assert_ptr_null(m);
	}
	return rc;
}

static int vector_param(const char *type, const char *values, char *msg,
                        Lora__Vector **out)
{
	char o[256];
	snprintf(o, sizeof o, "\"coordinateType\":\"%s\",\"values\":[%s]", type,
	         values);
	return vector_obj_param(o, msg, out);
}

/* (int64_t) of 1e300 is undefined behaviour: it became INT64_MIN. */
START_TEST(json_vector_values_must_fit)
{
	static const struct {
		const char *type, *values;
		int rc;
	} cases[] = {
	    {"INTEGER64", "1e300", LORA_EPARAMS},
	    {"INTEGER64", "-1e300", LORA_EPARAMS},
	    {"INTEGER64", "9223372036854775808.0", LORA_EPARAMS},
	    {"INTEGER64", "2.5", LORA_EPARAMS},
	    {"INTEGER8", "1e19", LORA_EPARAMS},
	    {"FLOAT32", "1e300", LORA_EPARAMS},
	    {"FLOAT32", "-1e39", LORA_EPARAMS},
	    {"INTEGER64", "-9223372036854775808.0, 9223372036854775807", 0},
	    {"INTEGER64", "3.0, -4", 0},
	    {"FLOAT32", "1.5, 3e38", 0},
	    {"FLOAT64", "1e300", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char msg[LORA_ERRMSG_BYTES] = "";
		Lora__Vector *v;
		int rc = vector_param(cases[i].type, cases[i].values, msg, &v);
		ck_assert_msg(rc == cases[i].rc, "%s [%s]: %d (%s)",
		              cases[i].type, cases[i].values, rc, msg);
		if (v)
			lora__vector__free_unpacked(v, &lora_pb_allocator);
	}
	char msg[LORA_ERRMSG_BYTES];
	Lora__Vector *v;
	ck_assert_int_eq(
	    vector_param("INTEGER64", "-9223372036854775808.0, 3.0", msg, &v),
	    0);
	ck_assert_int_eq(v->ints[0], INT64_MIN);
	ck_assert_int_eq(v->ints[1], 3);
	lora__vector__free_unpacked(v, &lora_pb_allocator);
	ck_assert_int_eq(vector_param("FLOAT32", "1.5", msg, &v), 0);
	ck_assert(v->n_f32 == 1 && v->f32[0] == 1.5f);
	lora__vector__free_unpacked(v, &lora_pb_allocator);
}
END_TEST

/* A vector parameter given as "base64": each coordinate's little-endian
 * bytes in turn, decoded exactly; anything else is LORA_EPARAMS. */
START_TEST(json_vector_base64)
{
	char msg[LORA_ERRMSG_BYTES];
	Lora__Vector *v;
	/* FLOAT32 1.5, -2.0 */
	ck_assert_int_eq(
	    vector_obj_param("\"coordinateType\":\"FLOAT32\","
	                     "\"dimension\":2,\"base64\":\"AADAPwAAAMA=\"",
	                     msg, &v),
	    0);
	ck_assert(v->coord_type == 1 && v->dimension == 2 && v->n_f32 == 2);
	ck_assert(v->f32[0] == 1.5f && v->f32[1] == -2.0f);
	lora__vector__free_unpacked(v, &lora_pb_allocator);
	/* FLOAT64 (the default type) 0.25 */
	ck_assert_int_eq(
	    vector_obj_param("\"base64\":\"AAAAAAAA0D8=\"", msg, &v), 0);
	ck_assert(v->coord_type == 0 && v->n_f64 == 1 && v->f64[0] == 0.25);
	lora__vector__free_unpacked(v, &lora_pb_allocator);
	/* narrow integers are sign-extended: INTEGER8 -1, 5; INTEGER16 -2,
	 * 300; INTEGER32 -70000; INTEGER64 INT64_MIN */
	static const struct {
		const char *type, *b64;
		size_t n;
		int64_t first, second;
	} ints[] = {{"INTEGER8", "/wU=", 2, -1, 5},
	            {"INTEGER16", "/v8sAQ==", 2, -2, 300},
	            {"INTEGER32", "kO7+/w==", 1, -70000, 0},
	            {"INTEGER64", "AAAAAAAAAIA=", 1, INT64_MIN, 0}};
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		char o[128];
		snprintf(o, sizeof o,
		         "\"coordinateType\":\"%s\",\"base64\":\"%s\"",
		         ints[i].type, ints[i].b64);
		ck_assert_int_eq(vector_obj_param(o, msg, &v), 0);
		ck_assert_msg(
		    v->n_ints == ints[i].n && v->ints[0] == ints[i].first &&
		        (ints[i].n < 2 || v->ints[1] == ints[i].second),
		    "%s", ints[i].type);
		lora__vector__free_unpacked(v, &lora_pb_allocator);
	}
	static const struct {
		const char *obj, *why;
	} bad[] = {
	    {"\"coordinateType\":\"FLOAT32\",\"base64\":\"@@@@\"", "not valid"},
	    {"\"coordinateType\":\"FLOAT32\",\"base64\":\"AQID\"",
	     "not a whole number"},
	    {"\"coordinateType\":\"FLOAT32\",\"base64\":\"AADAfw==\"",
	     "not a finite"},
	    {"\"coordinateType\":\"FLOAT32\",\"base64\":\"AACAfw==\"",
	     "not a finite"},
	    {"\"coordinateType\":\"FLOAT32\",\"dimension\":3,"
	     "\"base64\":\"AADAPwAAAMA=\"",
	     "\"dimension\" says 3"},
	    {"\"base64\":\"AAAAAAAA0D8=\",\"values\":[1]", "both"},
	    {"\"base64\":12", "must be a string"},
	    /* 6 characters without padding: not 4.5 bytes read on */
	    {"\"coordinateType\":\"INTEGER8\",\"base64\":\"AAAAAA\"",
	     "not valid base64"},
	    {"\"dimension\":\"2\",\"values\":[1,2]", "must be an integer"},
	    {"\"dimension\":3,\"values\":[1,2]", "\"dimension\" says 3"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		msg[0] = 0;
		ck_assert_int_eq(vector_obj_param(bad[i].obj, msg, &v),
		                 LORA_EPARAMS);
		ck_assert_msg(strstr(msg, bad[i].why) != NULL, "%s: %s",
		              bad[i].obj, msg);
	}
}
END_TEST

/* points leave as {"kind": "point", "srid", "crs", "x", "y"[, "z"]} */
START_TEST(json_points)
{
	Lora__Point pt = LORA__POINT__INIT;
	Lora__Value v = LORA__VALUE__INIT;
	v.kind_case = LORA__VALUE__KIND_POINT_VALUE;
	v.point_value = &pt;
	pt.srid = 4979;
	pt.x = 12.5;
	pt.y = -45.25;
	pt.z = 100;
	json_t *j = node_json_from_value(&v);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	ck_assert_str_eq(s, "{\"crs\":\"wgs-84-3d\",\"kind\":\"point\","
	                    "\"srid\":4979,\"x\":12.5,\"y\":-45.25,"
	                    "\"z\":100.0}");
	free(s);
	/* the output form reads back as a point parameter */
	Lora__Value *back = NULL;
	char msg[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(node_json_to_value(j, &back, 0, msg), 0);
	ck_assert_int_eq(back->kind_case, LORA__VALUE__KIND_POINT_VALUE);
	ck_assert(back->point_value->srid == 4979 &&
	          back->point_value->z == 100 &&
	          back->point_value->y == -45.25);
	lora__value__free_unpacked(back, &lora_pb_allocator);
	json_decref(j);
	json_t *bad =
	    json_pack("{s:s,s:i,s:f}", "kind", "point", "srid", 4326, "x", 1.0);
	ck_assert_int_eq(node_json_to_value(bad, &back, 0, msg), LORA_EPARAMS);
	ck_assert_ptr_null(back);
	json_decref(bad);
	pt.srid = 7203;
	j = node_json_from_value(&v);
	s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	ck_assert_str_eq(s, "{\"crs\":\"cartesian\",\"kind\":\"point\","
	                    "\"srid\":7203,\"x\":12.5,\"y\":-45.25}");
	free(s);
	json_decref(j);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("node values");
	TCase *tc = tcase_create("depth");
	tcase_add_test(tc, batch_decode_bounds_depth);
	tcase_add_test(tc, batch_decode_tells_no_memory_from_bad_bytes);
	tcase_add_test(tc, batch_decode_in_arena_tells_no_memory);
	tcase_add_test(tc, batch_decode_caps_merged_repeats);
	tcase_add_test(tc, value_dup_bounds_depth);
	tcase_add_test(tc, json_row_fails_on_a_value_too_deep);
	tcase_add_test(tc, json_row_fails_on_no_memory);
	tcase_add_test(tc, json_params_bound_depth);
	tcase_add_test(tc, json_vector_values_must_fit);
	tcase_add_test(tc, json_vector_base64);
	tcase_add_test(tc, json_points);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
