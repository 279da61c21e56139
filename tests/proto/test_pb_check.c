/* test_pb_check.c - value nesting limits on wire bytes and in memory
 * (lora_pb_check, lora_value_depth, lora_batch_depth). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lora_pb.h"
#include "wire_build.h"

TCase *pb_check_tcase(void);

/* An exact-size heap copy, so that ASan sees any read past the end. */
static uint8_t *w_copy(const struct wire *w, size_t *len)
{
	*len = wb_len(w);
	uint8_t *b = malloc(*len ? *len : 1);
	ck_assert_ptr_nonnull(b);
	memcpy(b, wb_data(w), *len);
	return b;
}

static int check_wire(const struct wire *w, enum lora_pb_kind kind, int max)
{
	size_t len;
	uint8_t *b = w_copy(w, &len);
	int rc = lora_pb_check(kind, b, len, max);
	free(b);
	return rc;
}

/* ---- tests ------------------------------------------------------------- */

/* Every shape and envelope: at the limit passes, one past is refused. */
START_TEST(wire_depth_at_and_past_the_limit)
{
	const int max = LORA_VALUE_DEPTH_MAX;
	for (int kind = 0; kind < LORA_PB_KINDS; kind++)
		for (int s = WB_LIST; s <= WB_MIXED; s++) {
			/* a ValueMap envelope is a map: one level itself */
			int in = max - (kind == LORA_PB_VALUE_MAP);
			struct wire w;
			wb_value(&w, (enum wb_shape)s, in);
			wb_envelope(&w, (enum lora_pb_kind)kind);
			ck_assert_msg(check_wire(&w, kind, max) == 0,
			              "kind %d shape %d at the limit", kind, s);
			wb_free(&w);
			wb_value(&w, (enum wb_shape)s, in + 1);
			wb_envelope(&w, (enum lora_pb_kind)kind);
			ck_assert_msg(check_wire(&w, kind, max) == LORA_ELIMIT,
			              "kind %d shape %d past the limit", kind,
			              s);
			wb_free(&w);
		}
}
END_TEST

/* The bytes that overflowed the stack in protobuf-c: refused at once. */
START_TEST(wire_depth_20000_is_refused_without_recursion)
{
	struct wire w;
	wb_value(&w, WB_LIST, 20000);
	wb_envelope(&w, LORA_PB_REQUEST);
	ck_assert_int_eq(check_wire(&w, LORA_PB_REQUEST, LORA_VALUE_DEPTH_MAX),
	                 LORA_ELIMIT);
	ck_assert_int_eq(check_wire(&w, LORA_PB_REQUEST, LORA_RESULT_DEPTH_MAX),
	                 LORA_ELIMIT);
	wb_free(&w);
}
END_TEST

/* What passes unpacks, and the decoded value has the depth counted on the
 * wire. */
START_TEST(wire_depth_matches_decoded_depth)
{
	for (int s = WB_LIST; s <= WB_MIXED; s++)
		for (int d = 0; d <= LORA_VALUE_DEPTH_MAX; d += 7) {
			struct wire w;
			wb_value(&w, (enum wb_shape)s, d);
			size_t len;
			uint8_t *b = w_copy(&w, &len);
			ck_assert_int_eq(
			    lora_pb_check(LORA_PB_VALUE, b, len, d), 0);
			if (d > 0)
				ck_assert_int_eq(
				    lora_pb_check(LORA_PB_VALUE, b, len, d - 1),
				    LORA_ELIMIT);
			Lora__Value *v =
			    lora__value__unpack(&lora_pb_allocator, len, b);
			ck_assert_ptr_nonnull(v);
			ck_assert_int_eq(lora_value_depth(v, d), d);
			if (d > 0)
				ck_assert_int_eq(lora_value_depth(v, d - 1), d);
			lora__value__free_unpacked(v, &lora_pb_allocator);
			free(b);
			wb_free(&w);
		}
}
END_TEST

/* Malformed bytes: an error, and never a read past the end (every prefix
 * of a valid message is checked from an exact-size buffer). */
START_TEST(wire_malformed_bytes_are_refused)
{
	struct wire w;
	wb_value(&w, WB_MIXED, 9);
	wb_envelope(&w, LORA_PB_MUTATION_BATCH);
	size_t len;
	uint8_t *full = w_copy(&w, &len);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *b = malloc(cut ? cut : 1);
		memcpy(b, full, cut);
		int rc = lora_pb_check(LORA_PB_MUTATION_BATCH, b, cut, 64);
		ck_assert(rc == 0 || rc == LORA_ECORRUPT);
		if (rc == 0) { /* a prefix can be whole fields */
			Lora__MutationBatch *m = lora__mutation_batch__unpack(
			    &lora_pb_allocator, cut, b);
			if (m)
				lora__mutation_batch__free_unpacked(
				    m, &lora_pb_allocator);
		}
		free(b);
	}
	free(full);
	wb_free(&w);

	static const struct {
		const char *what;
		uint8_t b[12];
		size_t n;
	} bad[] = {
	    {"length past the end", {7 << 3 | 2, 5, 1 << 3 | 2, 0}, 4},
	    {"child longer than parent",
	     {7 << 3 | 2, 2, 1 << 3 | 2, 3, 0, 0, 0},
	     7},
	    {"field number 0", {0 << 3 | 0, 1}, 2},
	    {"start group", {1 << 3 | 3, 0}, 2},
	    {"end group", {1 << 3 | 4}, 1},
	    {"wire type 6", {1 << 3 | 6, 0}, 2},
	    {"list as a varint", {7 << 3 | 0, 1}, 2},
	    {"truncated fixed64", {4 << 3 | 1, 0, 0, 0}, 4},
	    {"truncated fixed32", {4 << 3 | 5, 0, 0}, 3},
	    {"varint past 64 bits",
	     {3 << 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	      0x7f},
	     11},
	    {"truncated tag", {0x80}, 1},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint8_t *b = malloc(bad[i].n);
		memcpy(b, bad[i].b, bad[i].n);
		ck_assert_msg(lora_pb_check(LORA_PB_VALUE, b, bad[i].n, 64) ==
		                  LORA_ECORRUPT,
		              "%s", bad[i].what);
		free(b);
	}
	/* Well-formed: unknown fields of every wire type, strings, bytes,
	 * vectors and temporals are skipped whole. */
	const uint8_t ok[] = {
	    14 << 3 | 0, 0x81, 0x01,                         /* varint */
	    15 << 3 | 1, 1,    2,          3, 4, 5, 6, 7, 8, /* i64 */
	    0x85,        0x01, 1,          2, 3, 4,          /* field 16, i32 */
	    9 << 3 | 2,  2,    1 << 3 | 0, 1,                /* vector */
	    5 << 3 | 2,  1,    'x'};                         /* string */
	ck_assert_int_eq(lora_pb_check(LORA_PB_VALUE, ok, sizeof ok, 0), 0);
	ck_assert_int_eq(lora_pb_check(LORA_PB_VALUE, NULL, 0, 0), 0);
	/* found by fuzz_pb_check: a ValueMap, even empty, is a map */
	ck_assert_int_eq(lora_pb_check(LORA_PB_VALUE_MAP, NULL, 0, 0),
	                 LORA_ELIMIT);
	ck_assert_int_eq(lora_pb_check(LORA_PB_VALUE_MAP, NULL, 0, 1), 0);
}
END_TEST

/* A value built in memory (as the engine builds one) 20,000 deep: the
 * depth walk stops past its limit instead of following it down. */
START_TEST(memory_depth_stops_past_the_limit)
{
	enum { DEEP = 20000 };
	Lora__Value *vals = calloc(DEEP + 1, sizeof *vals);
	Lora__ValueList *lists = calloc(DEEP, sizeof *lists);
	Lora__Value **items = calloc(DEEP, sizeof *items);
	for (int i = 0; i <= DEEP; i++)
		lora__value__init(&vals[i]);
	for (int i = 0; i < DEEP; i++) {
		lora__value_list__init(&lists[i]);
		items[i] = &vals[i + 1];
		lists[i].items = &items[i];
		lists[i].n_items = 1;
		vals[i].kind_case = LORA__VALUE__KIND_LIST_VALUE;
		vals[i].list_value = &lists[i];
	}
	ck_assert_int_eq(lora_value_depth(&vals[0], LORA_VALUE_DEPTH_MAX),
	                 LORA_VALUE_DEPTH_MAX + 1);
	ck_assert_int_eq(lora_value_depth(&vals[DEEP - LORA_VALUE_DEPTH_MAX],
	                                  LORA_VALUE_DEPTH_MAX),
	                 LORA_VALUE_DEPTH_MAX);
	ck_assert_int_eq(lora_value_depth(NULL, 0), 0);

	/* A batch carrying it as a property, a set property or an edge's. */
	Lora__Property prop = LORA__PROPERTY__INIT, *props[] = {&prop};
	prop.key = "p";
	prop.value = &vals[0];
	Lora__CreateNode cn = LORA__CREATE_NODE__INIT;
	Lora__CreateEdge ce = LORA__CREATE_EDGE__INIT;
	Lora__SetProperty sp = LORA__SET_PROPERTY__INIT;
	Lora__Mutation m = LORA__MUTATION__INIT, *ms[] = {&m};
	Lora__MutationBatch b = LORA__MUTATION_BATCH__INIT;
	b.mutations = ms;
	b.n_mutations = 1;
	ck_assert_int_eq(lora_batch_depth(&b, 64), 0); /* op not set */
	cn.properties = props;
	cn.n_properties = 1;
	m.op_case = LORA__MUTATION__OP_CREATE_NODE;
	m.create_node = &cn;
	ck_assert_int_eq(lora_batch_depth(&b, 64), 65);
	prop.value = &vals[DEEP - 3];
	ck_assert_int_eq(lora_batch_depth(&b, 64), 3);
	ce.properties = props;
	ce.n_properties = 1;
	m.op_case = LORA__MUTATION__OP_CREATE_EDGE;
	m.create_edge = &ce;
	ck_assert_int_eq(lora_batch_depth(&b, 64), 3);
	sp.value = &vals[0];
	m.op_case = LORA__MUTATION__OP_SET_PROPERTY;
	m.set_property = &sp;
	ck_assert_int_eq(lora_batch_depth(&b, 64), 65);

	/* the old values the change stream shows count as well */
	sp.value = &vals[DEEP];
	sp.old_value = &vals[0];
	ck_assert_int_eq(lora_batch_depth(&b, 64), 65);
	Lora__RemoveProperty rp = LORA__REMOVE_PROPERTY__INIT;
	rp.old_value = &vals[0];
	m.op_case = LORA__MUTATION__OP_REMOVE_PROPERTY;
	m.remove_property = &rp;
	ck_assert_int_eq(lora_batch_depth(&b, 64), 65);
	Lora__OldEntity old = LORA__OLD_ENTITY__INIT;
	prop.value = &vals[0];
	old.properties = props;
	old.n_properties = 1;
	Lora__DeleteNode dn = LORA__DELETE_NODE__INIT;
	Lora__DeleteEdge de = LORA__DELETE_EDGE__INIT;
	m.op_case = LORA__MUTATION__OP_DELETE_NODE;
	m.delete_node = &dn;
	ck_assert_int_eq(lora_batch_depth(&b, 64), 0); /* none kept */
	dn.old = &old;
	ck_assert_int_eq(lora_batch_depth(&b, 64), 65);
	m.op_case = LORA__MUTATION__OP_DELETE_EDGE;
	m.delete_edge = &de;
	de.old = &old;
	ck_assert_int_eq(lora_batch_depth(&b, 64), 65);
	/* and on the wire: a deleted edge's old property 100 deep */
	prop.value = &vals[DEEP - 100];
	size_t len = lora__mutation_batch__get_packed_size(&b);
	uint8_t *wire = malloc(len);
	lora__mutation_batch__pack(&b, wire);
	ck_assert_int_eq(lora_pb_check(LORA_PB_MUTATION_BATCH, wire, len, 64),
	                 LORA_ELIMIT);
	ck_assert_int_eq(lora_pb_check(LORA_PB_MUTATION_BATCH, wire, len, 100),
	                 0);
	free(wire);
	free(vals);
	free(lists);
	free(items);
}
END_TEST

TCase *pb_check_tcase(void)
{
	TCase *tc = tcase_create("nesting");
	tcase_add_test(tc, wire_depth_at_and_past_the_limit);
	tcase_add_test(tc, wire_depth_20000_is_refused_without_recursion);
	tcase_add_test(tc, wire_depth_matches_decoded_depth);
	tcase_add_test(tc, wire_malformed_bytes_are_refused);
	tcase_add_test(tc, memory_depth_stops_past_the_limit);
	return tc;
}
