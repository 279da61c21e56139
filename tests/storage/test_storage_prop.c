/* test_storage_prop.c - sto_view_node_prop and sto_view_node_prop_ref: one
 * property read from the stored record without decoding the rest, through
 * the view's forward-moving nodes iterator. */
#include <check.h>
#include <math.h>

#include "stoInt.h"
#include "sto_fixture.h"
#include "sto_testing.h"

#define NODE LORA__ENTITY_KIND__ENTITY_NODE

static Lora__Value *v_list2(int64_t a, int64_t b)
{
	Lora__Value *v = v_new();
	Lora__ValueList *l = lora_malloc(sizeof(*l));
	lora__value_list__init(l);
	l->items = lora_malloc(2 * sizeof(*l->items));
	l->items[0] = v_int(a);
	l->items[1] = v_int(b);
	l->n_items = 2;
	v->kind_case = LORA__VALUE__KIND_LIST_VALUE;
	v->list_value = l;
	return v;
}

/* Nodes 1..N: "i" = id * -7, "s" = "s<id>", "f" = id / 4.0, "b" = id odd;
 * every third has a vector "emb", every fifth a list "l". */
#define N 300

static void load(void)
{
	Lora__MutationBatch *b = batch_new();
	for (uint64_t id = 1; id <= N; id++) {
		char s[32];
		snprintf(s, sizeof s, "s%llu", (unsigned long long)id);
		add_create_node(b, id, "P", 4, "i", v_int(-7 * (int64_t)id),
		                "s", v_str(s), "f", v_float((double)id / 4),
		                "b", v_bool(id & 1));
		if (id % 3 == 0) {
			float xs[2] = {(float)id, 1};
			add_set_vector(b, NODE, id, "emb", vec_f32(2, xs));
		}
		if (id % 5 == 0)
			add_set_prop(b, NODE, id, "l", v_list2(1, (int64_t)id));
	}
	ck_assert_int_eq(apply(b), 0);
}

/* Checks every property of node id through both calls. */
static void check_node(struct sto_view *v, uint64_t id)
{
	struct sto_prop_ref r;
	Lora__Value *x;
	char s[32];
	snprintf(s, sizeof s, "s%llu", (unsigned long long)id);
	ck_assert_int_eq(sto_view_node_prop_ref(v, id, "i", &r), 0);
	ck_assert_int_eq(r.kind, STO_REF_INT);
	ck_assert_int_eq(r.i, -7 * (int64_t)id);
	ck_assert_int_eq(sto_view_node_prop_ref(v, id, "s", &r), 0);
	ck_assert_int_eq(r.kind, STO_REF_STRING);
	ck_assert_uint_eq(r.slen, strlen(s));
	ck_assert(!memcmp(r.s, s, r.slen));
	ck_assert_int_eq(sto_view_node_prop_ref(v, id, "f", &r), 0);
	ck_assert_int_eq(r.kind, STO_REF_FLOAT);
	ck_assert(r.d == (double)id / 4);
	ck_assert_int_eq(sto_view_node_prop_ref(v, id, "b", &r), 0);
	ck_assert_int_eq(r.kind, STO_REF_BOOL);
	ck_assert_int_eq(r.b, (int)(id & 1));
	ck_assert_int_eq(sto_view_node_prop_ref(v, id, "nope", &r), 0);
	ck_assert_int_eq(r.kind, STO_REF_ABSENT);
	ck_assert_int_eq(sto_view_node_prop_ref(v, id, "emb", &r), 0);
	/* a vector: OTHER, or F32 once the view reads from the column of
	 * all nodes' "emb" (after STO_VCOL_PROP_READS reads) */
	if (id % 3)
		ck_assert_int_eq(r.kind, STO_REF_ABSENT);
	else if (r.kind == STO_REF_F32)
		ck_assert(r.dim == 2 && r.f32[0] == (float)id &&
		          r.f32[r.f32_stride] == 1);
	else
		ck_assert_int_eq(r.kind, STO_REF_OTHER);
	ck_assert_int_eq(sto_view_node_prop_ref(v, id, "l", &r), 0);
	ck_assert_int_eq(r.kind, id % 5 ? STO_REF_ABSENT : STO_REF_OTHER);

	ck_assert_int_eq(sto_view_node_prop(v, id, "s", &x), 0);
	ck_assert_int_eq(x->kind_case, LORA__VALUE__KIND_STRING_VALUE);
	ck_assert_str_eq(x->string_value, s);
	lora__value__free_unpacked(x, &lora_pb_allocator);
	ck_assert_int_eq(sto_view_node_prop(v, id, "emb", &x), 0);
	if (id % 3) {
		ck_assert_ptr_null(x);
	} else {
		ck_assert_int_eq(x->kind_case, LORA__VALUE__KIND_VECTOR_VALUE);
		ck_assert_uint_eq(x->vector_value->dimension, 2);
		ck_assert(x->vector_value->f32[0] == (float)id);
		lora__value__free_unpacked(x, &lora_pb_allocator);
	}
	ck_assert_int_eq(sto_view_node_prop(v, id, "l", &x), 0);
	if (id % 5) {
		ck_assert_ptr_null(x);
	} else {
		ck_assert_int_eq(x->kind_case, LORA__VALUE__KIND_LIST_VALUE);
		ck_assert_int_eq(x->list_value->items[1]->int_value,
		                 (int64_t)id);
		lora__value__free_unpacked(x, &lora_pb_allocator);
	}
	ck_assert_int_eq(sto_view_node_prop(v, id, "nope", &x), 0);
	ck_assert_ptr_null(x);
}

START_TEST(present_absent_vector_in_any_order)
{
	load();
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	unsigned seed = (unsigned)lora_now_ns();
	if (getenv("LORA_SEED"))
		seed = (unsigned)strtoul(getenv("LORA_SEED"), NULL, 10);
	printf("present_absent_vector_in_any_order: LORA_SEED=%u\n", seed);
	srand(seed);
	for (uint64_t id = 1; id <= N; id++) /* forward, the scan order */
		check_node(v, id);
	for (int id = N; id >= 1; id -= 7) /* backward: seeks */
		check_node(v, (uint64_t)id);
	for (int i = 0; i < 500; i++) /* jumps both ways, near and far */
		check_node(v, 1 + (uint64_t)rand() % N);
	struct sto_prop_ref r;
	Lora__Value *x = (Lora__Value *)&r;
	ck_assert_int_eq(sto_view_node_prop_ref(v, 0, "i", &r), LORA_ENOTFOUND);
	ck_assert_int_eq(sto_view_node_prop_ref(v, N + 1, "i", &r),
	                 LORA_ENOTFOUND);
	ck_assert_int_eq(sto_view_node_prop(v, N + 5, "i", &x), LORA_ENOTFOUND);
	ck_assert_ptr_null(x);
	check_node(v, N); /* after running off the end */
	sto_view_close(v);
}
END_TEST

START_TEST(a_view_keeps_its_snapshot)
{
	load();
	struct sto_view *old;
	ck_assert_int_eq(sto_view_open(st, &old), 0);
	struct sto_prop_ref r;
	ck_assert_int_eq(sto_view_node_prop_ref(old, 10, "i", &r), 0);
	Lora__MutationBatch *b = batch_new();
	add_set_prop(b, NODE, 11, "i", v_int(42));
	add_set_prop(b, NODE, 12, "new_key", v_str("x"));
	add_delete_node(b, 13, 1);
	ck_assert_int_eq(apply(b), 0);
	check_node(old, 11);
	check_node(old, 13);
	ck_assert_int_eq(sto_view_node_prop_ref(old, 12, "new_key", &r), 0);
	ck_assert_int_eq(r.kind, STO_REF_ABSENT);
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_node_prop_ref(v, 11, "i", &r), 0);
	ck_assert_int_eq(r.i, 42);
	ck_assert_int_eq(sto_view_node_prop_ref(v, 12, "new_key", &r), 0);
	ck_assert_int_eq(r.kind, STO_REF_STRING);
	ck_assert_int_eq(sto_view_node_prop_ref(v, 13, "i", &r),
	                 LORA_ENOTFOUND);
	sto_view_close(v);
	sto_view_close(old);
}
END_TEST

/* Plants bytes as node 1000's record; both calls must say ECORRUPT. */
static void expect_corrupt(const void *p, size_t n, const char *key)
{
	uint8_t k[8];
	lora_put_be64(k, 1000);
	ck_assert_int_eq(sto_testing_put_raw(st, "nodes", k, 8, p, n), 0);
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	struct sto_prop_ref r;
	Lora__Value *x = NULL;
	ck_assert_int_eq(sto_view_node_prop_ref(v, 1000, key, &r),
	                 LORA_ECORRUPT);
	ck_assert_int_eq(sto_view_node_prop(v, 1000, key, &x), LORA_ECORRUPT);
	ck_assert_ptr_null(x);
	check_node(v, 7); /* the view still works */
	sto_view_close(v);
}

START_TEST(corrupt_bytes_give_ecorrupt)
{
	load();
	/* A valid record: label P, props i = 5 then s = "abc" (packed). */
	uint32_t lab = (uint32_t)sto_tok_find(st, STO_TOK_LABEL, "P", 1);
	uint32_t ki = (uint32_t)sto_tok_find(st, STO_TOK_KEY, "i", 1);
	uint32_t ks = (uint32_t)sto_tok_find(st, STO_TOK_KEY, "s", 1);
	struct sto_rec rec = {0};
	struct lora_buf out = {0};
	const uint8_t vi[] = {0x18, 0x0a};             /* int_value 5 */
	const uint8_t vs[] = {0x2a, 3, 'a', 'b', 'c'}; /* string "abc" */
	ck_assert_int_eq(sto_rec_add_label(&rec, lab), 0);
	ck_assert_int_eq(sto_rec_set_prop(&rec, ki, vi, sizeof vi), 0);
	ck_assert_int_eq(sto_rec_set_prop(&rec, ks, vs, sizeof vs), 0);
	ck_assert_int_eq(sto_rec_encode(&rec, 0, &out), 0);
	const uint8_t *p = (const uint8_t *)out.data;
	/* the valid record reads back */
	uint8_t k[8];
	lora_put_be64(k, 1000);
	ck_assert_int_eq(sto_testing_put_raw(st, "nodes", k, 8, p, out.len), 0);
	struct sto_view *v;
	struct sto_prop_ref r;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_node_prop_ref(v, 1000, "s", &r), 0);
	ck_assert_int_eq(r.kind, STO_REF_STRING);
	ck_assert_int_eq(sto_view_node_prop_ref(v, 1000, "i", &r), 0);
	ck_assert_int_eq(r.i, 5);
	sto_view_close(v);
	/* every truncation, asking for the last property or an absent one */
	for (size_t n = 0; n < out.len; n++) {
		expect_corrupt(p, n, "s");
		expect_corrupt(p, n, "b");
	}
	uint8_t bad[64];
	memcpy(bad, p, out.len);
	bad[0] = 'r'; /* wrong magic */
	expect_corrupt(bad, out.len, "s");
	memcpy(bad, p, out.len);
	bad[out.len] = 0; /* trailing byte */
	expect_corrupt(bad, out.len + 1, "b");
	/* oversized varints for the label count */
	const uint8_t big[] = {'n',  0xff, 0xff, 0xff, 0xff, 0xff,
	                       0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	expect_corrupt(big, sizeof big, "s");
	/* value bytes that do not decode: an unterminated tag, a string
	 * longer than its bytes */
	const uint8_t junk[] = {0xff, 0xff, 0xff};
	const uint8_t longs[] = {0x2a, 9, 'a'};
	ck_assert_int_eq(sto_rec_set_prop(&rec, ks, junk, sizeof junk), 0);
	ck_assert_int_eq(sto_rec_encode(&rec, 0, &out), 0);
	expect_corrupt(out.data, out.len, "s");
	ck_assert_int_eq(sto_rec_set_prop(&rec, ks, longs, sizeof longs), 0);
	ck_assert_int_eq(sto_rec_encode(&rec, 0, &out), 0);
	expect_corrupt(out.data, out.len, "s");
	lora_buf_free(&out);
	sto_rec_free(&rec);
}
END_TEST

static Suite *prop_suite(void)
{
	Suite *s = suite_create("storage_prop");
	TCase *t = tcase_create("prop");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, present_absent_vector_in_any_order);
	tcase_add_test(t, a_view_keeps_its_snapshot);
	tcase_add_test(t, corrupt_bytes_give_ecorrupt);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(prop_suite());
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
