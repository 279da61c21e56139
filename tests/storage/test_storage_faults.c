/* test_storage_faults.c - corrupt bytes on disk and allocation failure on
 * the apply path: errors, never crashes, never partial state. */
#include <check.h>
#include <time.h>

#include "sto_helpers.h"
#include "sto_testing.h"

#define NODE LORA__ENTITY_KIND__ENTITY_NODE
#define EDGE LORA__ENTITY_KIND__ENTITY_EDGE

static char *dir;
static char statedir[512];
static struct sto_store *st;

static void setup(void)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	dir = tmpdir_new();
	path_join(statedir, sizeof(statedir), dir, "state");
	ck_assert_int_eq(sto_open(statedir, NULL, &st, msg), 0);
}

static void teardown(void)
{
	sto_close(st);
	st = NULL;
	tmpdir_free(dir);
}

static int apply_to(struct sto_store *s, Lora__MutationBatch *b)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	return sto_apply(s, sto_applied_index(s) + 1, b, msg);
}

static void base_graph(struct sto_store *s)
{
	float xs[2] = {1, 2};
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "A", 2, "k", v_int(1), "s", v_str("x"));
	add_create_node(b, 2, "A,B", 1, "k", v_int(2));
	add_create_node(b, 3, "B", 1, "v", v_vec(2, xs));
	add_create_edge(b, 1, "R", 1, 2, 1, "w", v_float(1.5));
	add_create_edge(b, 2, "R", 2, 3, 0);
	add_create_index(b, "a_k", LORA__INDEX_KIND__INDEX_UNIQUE, "A", "k", 0);
	add_create_index(b, "b_k", LORA__INDEX_KIND__INDEX_RANGE, "B", "k", 0);
	ck_assert_int_eq(apply_to(s, b), 0);
	batch_free(b);
}

/* ---- corrupt bytes
 * ----------------------------------------------------------- */

START_TEST(corrupt_records_give_errors)
{
	base_graph(st);
	uint8_t k[16];
	struct sto_view *v;
	Lora__NodeValue *n;
	Lora__RelValue *r;
	Lora__Vector *vec;
	char msg[LORA_ERRMSG_BYTES], d[STO_DIGEST_HEX_BYTES];

	lora_put_be64(k, 1);
	ck_assert_int_eq(sto_testing_put_raw(st, "nodes", k, 8, "garbage", 7),
	                 0);
	k[0] = 'E';
	lora_put_be64(k + 1, 2);
	ck_assert_int_eq(sto_testing_put_raw(st, "edges", k, 9, "\x72\xff", 2),
	                 0);
	k[0] = NODE;
	lora_put_be64(k + 1, 3);
	lora_put_be32(k + 9, 2); /* tokens: k 0, s 1, v 2 */
	ck_assert_int_eq(
	    sto_testing_put_raw(st, "vectors", k, 13, "\xff\xff\xff", 3), 0);
	/* A node record whose property bytes are not a Value. */
	lora_put_be64(k, 2);
	ck_assert_int_eq(
	    sto_testing_put_raw(st, "nodes", k, 8,
	                        "n\x01\x00\x00\x01\x00\x02\xff\xff", 9),
	    0);

	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_node(v, 1, &n), LORA_ECORRUPT);
	ck_assert_int_eq(sto_view_node(v, 2, &n), LORA_ECORRUPT);
	ck_assert_int_eq(sto_view_edge(v, 2, &r), LORA_ECORRUPT);
	ck_assert_int_eq(sto_view_vector(v, NODE, 3, "v", &vec), LORA_ECORRUPT);
	struct sto_iter *it;
	struct sto_item item;
	int done, rv = 0;
	ck_assert_int_eq(sto_view_scan_edges(v, &it), 0);
	while (!(rv = sto_iter_next(it, &item, &done)) && !done)
		;
	ck_assert_int_eq(rv, LORA_ECORRUPT);
	sto_iter_free(it);
	sto_view_close(v);
	ck_assert_int_eq(sto_digest(st, d, msg), LORA_ECORRUPT);

	/* Applying on top of a corrupt record fails and writes nothing. */
	uint64_t before = sto_applied_index(st);
	Lora__MutationBatch *b = batch_new();
	add_set_prop(b, NODE, 1, "k", v_int(7));
	ck_assert_int_eq(apply_to(st, b), LORA_ECORRUPT);
	ck_assert_int_eq(sto_apply(st, before + 1, b, NULL), LORA_ECORRUPT);
	batch_free(b);
	ck_assert_uint_eq(sto_applied_index(st), before);

	/* Keys of the wrong shape. */
	ck_assert_int_eq(sto_testing_put_raw(st, "nodes", "abc", 3, "", 0), 0);
	/* An adjacency chunk key of the wrong length (only the digest sees
	 * it) and a chunk value that does not decode. */
	uint8_t adj[13];
	lora_put_be64(adj, 3);
	adj[8] = 'O';
	lora_put_be32(adj + 9, 0);
	ck_assert_int_eq(sto_testing_put_raw(st, "adjacency", adj, 10, "", 0),
	                 0);
	ck_assert_int_eq(sto_testing_put_raw(st, "adjacency", adj, 13, "A", 1),
	                 0);
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_scan_nodes(v, &it), 0);
	while (!(rv = sto_iter_next(it, &item, &done)) && !done)
		;
	ck_assert_int_eq(rv, LORA_ECORRUPT);
	sto_iter_free(it);
	ck_assert_int_eq(sto_view_scan_adjacent(v, 3, STO_OUT, NULL, &it), 0);
	ck_assert_int_eq(sto_iter_next(it, &item, &done), LORA_ECORRUPT);
	sto_iter_free(it);
	sto_view_close(v);
}
END_TEST

START_TEST(corrupt_meta_fails_open)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	base_graph(st);
	ck_assert_int_eq(sto_testing_put_raw(st, "meta", "a", 1, "xyz", 3), 0);
	sto_close(st);
	st = NULL;
	ck_assert_int_eq(sto_open(statedir, NULL, &st, msg), LORA_ECORRUPT);
	ck_assert(strlen(msg) > 0);
	st = NULL;
}
END_TEST

START_TEST(garbage_directory_fails_open)
{
	char msg[LORA_ERRMSG_BYTES] = "", p[600];
	sto_close(st);
	st = NULL;
	FILE *f = fopen(path_join(p, sizeof(p), statedir, "CURRENT"), "w");
	ck_assert_ptr_nonnull(f);
	fputs("MANIFEST-999999\n", f);
	fclose(f);
	ck_assert_int_ne(sto_open(statedir, NULL, &st, msg), 0);
	ck_assert(strlen(msg) > 0);
	st = NULL;
	struct sto_options o;
	sto_options_init(&o);
	o.create_if_missing = 0;
	ck_assert_int_ne(
	    sto_open(path_join(p, sizeof(p), dir, "none"), &o, &st, msg), 0);
	st = NULL;
}
END_TEST

START_TEST(fuzzed_records_never_crash)
{
	base_graph(st);
	unsigned seed = (unsigned)time(NULL);
	if (getenv("LORA_SEED"))
		seed = (unsigned)strtoul(getenv("LORA_SEED"), NULL, 10);
	printf(
	    "fuzzed_records_never_crash: seed %u (LORA_SEED=%u replays it)\n",
	    seed, seed);
	fflush(stdout);
	srand(seed);
	/* A valid record to mutate: node 1's bytes as written by apply. */
	const uint8_t good[] = {'n',  1,    0,    0, 2,    0,    3,
	                        0x18, 0x02, 0x02, 1, 0x2a, 0x01, 'x'};
	for (int round = 0; round < 300; round++) {
		uint8_t rec[sizeof(good)];
		memcpy(rec, good, sizeof(good));
		size_t len = 1 + (size_t)rand() % sizeof(good);
		for (int f = rand() % 4; f >= 0; f--)
			rec[rand() % len] ^= (uint8_t)(1 + rand() % 255);
		uint8_t k[8];
		lora_put_be64(k, 1);
		ck_assert_int_eq(
		    sto_testing_put_raw(st, "nodes", k, 8, rec, len), 0);
		struct sto_view *v;
		Lora__NodeValue *n;
		ck_assert_int_eq(sto_view_open(st, &v), 0);
		int rv = sto_view_node(v, 1, &n);
		ck_assert_msg(rv == 0 || rv == LORA_ECORRUPT,
		              "seed %u round %d: rv %d", seed, round, rv);
		if (!rv)
			lora__node_value__free_unpacked(n, &lora_pb_allocator);
		sto_view_close(v);
	}
}
END_TEST

/* ---- allocation failure
 * ---------------------------------------------------------- */

static Lora__MutationBatch *every_kind_batch(void)
{
	float xs[3] = {1, 2, 3};
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 10, "A,New", 2, "k", v_int(10), "nk", v_str("n"));
	add_set_prop(b, NODE, 1, "k", v_int(11));
	add_set_prop(b, NODE, 10, "vec", v_vec(3, xs));
	add_label(b, 2, "C", 1);
	add_label(b, 2, "B", 0);
	add_remove_prop(b, NODE, 1, "s");
	add_create_edge(b, 7, "T", 10, 1, 1, "p", v_bool(1));
	add_set_prop(b, EDGE, 7, "q", v_int(1));
	add_delete_edge(b, 1);
	add_set_vector(b, NODE, 1, "emb", vec_f32(3, xs));
	add_remove_vector(b, NODE, 3, "v");
	add_delete_node(b, 3, 1);
	add_create_index(b, "c_k", LORA__INDEX_KIND__INDEX_RANGE, "C", "k", 0);
	add_drop_index(b, "b_k", 0);
	return b;
}

/* Injects a failure at every allocation of one apply; returns how many
 * points were tried. */
static int fail_every_allocation(int sticky)
{
	char before[STO_DIGEST_HEX_BYTES], after[STO_DIGEST_HEX_BYTES];
	char msg[LORA_ERRMSG_BYTES];
	Lora__MutationBatch *b = every_kind_batch();
	ck_assert_int_eq(sto_digest(st, before, msg), 0);
	uint64_t idx = sto_applied_index(st);
	int n;
	for (n = 0; n < 100000; n++) {
		lora_alloc_fail_after(n, sticky);
		int rv = sto_apply(st, idx + 1, b, msg);
		lora_alloc_fail_after(-1, 0);
		if (rv == 0)
			break;
		ck_assert_msg(rv == LORA_ENOMEM, "n=%d: %s: %s", n,
		              lora_err_code(rv), msg);
		ck_assert_uint_eq(sto_applied_index(st), idx);
		ck_assert_int_eq(sto_digest(st, after, msg), 0);
		ck_assert_str_eq(before, after);
	}
	batch_free(b);
	return n;
}

START_TEST(allocation_failure_leaves_store_unchanged)
{
	char msg[LORA_ERRMSG_BYTES], p[512];
	base_graph(st);
	int n = fail_every_allocation(1);
	printf("allocation failure: %d failure points on the apply path\n", n);
	ck_assert_int_gt(n, 20);
	/* After the failures, the store equals one that never saw them. */
	struct sto_store *ref;
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof(p), dir, "ref"), NULL, &ref, msg), 0);
	base_graph(ref);
	Lora__MutationBatch *b = every_kind_batch();
	ck_assert_int_eq(apply_to(ref, b), 0);
	batch_free(b);
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	ck_assert_int_eq(sto_digest(st, d1, msg), 0);
	ck_assert_int_eq(sto_digest(ref, d2, msg), 0);
	ck_assert_str_eq(d1, d2);
	sto_close(ref);
}
END_TEST

/* A fresh copy of the pristine store st, through a checkpoint. */
static struct sto_store *work_copy(int round)
{
	char msg[LORA_ERRMSG_BYTES], p[512], name[32];
	struct sto_store *w;
	snprintf(name, sizeof(name), "work%d", round);
	path_join(p, sizeof(p), dir, name);
	ck_assert_int_eq(sto_checkpoint(st, p, NULL, msg), 0);
	ck_assert_int_eq(sto_open(p, NULL, &w, msg), 0);
	return w;
}

START_TEST(single_allocation_failures_leave_store_unchanged)
{
	char msg[LORA_ERRMSG_BYTES], before[STO_DIGEST_HEX_BYTES];
	char want[STO_DIGEST_HEX_BYTES], got[STO_DIGEST_HEX_BYTES];
	base_graph(st);
	ck_assert_int_eq(sto_digest(st, before, msg), 0);
	Lora__MutationBatch *b = every_kind_batch();
	/* How many allocations a clean apply makes, and its result. */
	int round = 0;
	struct sto_store *w = work_copy(round++);
	unsigned long a0 = lora_alloc_count();
	ck_assert_int_eq(sto_apply(w, 2, b, msg), 0);
	long total = (long)(lora_alloc_count() - a0);
	ck_assert_int_eq(sto_digest(w, want, msg), 0);
	sto_close(w);
	w = work_copy(round++);
	/* One failure at a time: either an error and no change, or a
	 * success (a retried allocation) with the full result. */
	for (long n = 0; n <= total; n++) {
		lora_alloc_fail_after(n, 0);
		int rv = sto_apply(w, 2, b, msg);
		lora_alloc_fail_after(-1, 0);
		ck_assert_int_eq(sto_digest(w, got, msg), 0);
		if (rv == 0) {
			ck_assert_str_eq(got, want);
			sto_close(w);
			w = work_copy(round++);
			continue;
		}
		ck_assert_msg(rv == LORA_ENOMEM, "n=%ld: %s: %s", n,
		              lora_err_code(rv), msg);
		ck_assert_uint_eq(sto_applied_index(w), 1);
		ck_assert_str_eq(got, before);
	}
	printf("single failures: %ld allocation points, %d successes\n", total,
	       round - 2);
	sto_close(w);
	batch_free(b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("storage_faults");
	TCase *t = tcase_create("faults");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, corrupt_records_give_errors);
	tcase_add_test(t, corrupt_meta_fails_open);
	tcase_add_test(t, garbage_directory_fails_open);
	tcase_add_test(t, fuzzed_records_never_crash);
	tcase_add_test(t, allocation_failure_leaves_store_unchanged);
	tcase_add_test(t, single_allocation_failures_leave_store_unchanged);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
