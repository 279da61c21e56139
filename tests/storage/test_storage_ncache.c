/* test_storage_ncache.c - the in-memory copies of the node side
 * (storage/ncache.c): the node table that a complete walk of
 * sto_view_next_node builds and later views read instead of RocksDB, and
 * the vector columns of sto_view_vector_column. Each answers as the
 * RocksDB path does, a view keeps the state of its snapshot, and a batch
 * that changes nodes or vectors makes later views stop using the copy. */
#include <check.h>
#include <math.h>

#include "stoInt.h"
#include "sto_fixture.h"
#include "sto_testing.h"

#define NODE LORA__ENTITY_KIND__ENTITY_NODE

/* Nodes 1..N, label P ("i" = id, "s" = a string), every fourth also Q,
 * every third a vector "emb" = (id, -id, 0.5); 3 nodes R with a vector;
 * two edges. */
#define N 300

static void load(void)
{
	Lora__MutationBatch *b = batch_new();
	char s[32];
	for (uint64_t id = 1; id <= N + 3; id++) {
		const char *l = id > N ? "R" : id % 4 ? "P" : "P,Q";
		snprintf(s, sizeof s, "s%llu", (unsigned long long)(id % 7));
		add_create_node(b, id, l, 2, "i", v_int((int64_t)id), "s",
		                v_str(s));
		if (id % 3 == 0 || id > N) {
			float xs[3] = {(float)id, -(float)id, 0.5f};
			add_set_vector(b, NODE, id, "emb", vec_f32(3, xs));
		}
	}
	add_create_edge(b, 1, "K", 1, 2, 0);
	ck_assert_int_eq(apply(b), 0);
}

/* Walks label (NULL: all) from the first node to the end, reading "i" of
 * each node as it goes; the ids into ids, the values checked. */
static size_t walk(struct sto_view *v, const char *label, uint64_t *ids)
{
	uint64_t id, from = 0;
	size_t n = 0;
	int rv;
	while ((rv = sto_view_next_node(v, label, from, &id)) == 0) {
		struct sto_prop_ref r;
		ck_assert_int_eq(sto_view_node_prop_ref(v, id, "i", &r), 0);
		ck_assert_int_eq(r.kind, STO_REF_INT);
		ck_assert_int_eq(r.i, (int64_t)id);
		ids[n++] = id;
		from = id + 1;
	}
	ck_assert_int_eq(rv, LORA_ENOTFOUND);
	return n;
}

/* ids of a label scan through the label index */
static size_t label_ids(struct sto_view *v, const char *label, uint64_t *ids)
{
	struct sto_iter *it;
	struct sto_item item;
	int done = 0;
	size_t n = 0;
	ck_assert_int_eq(label ? sto_view_scan_label(v, label, &it)
	                       : sto_view_scan_nodes(v, &it),
	                 0);
	while (!sto_iter_next(it, &item, &done) && !done)
		ids[n++] = item.node_id;
	sto_iter_free(it);
	return n;
}

static int64_t prop_i(struct sto_view *v, uint64_t id)
{
	struct sto_prop_ref r;
	int rv = sto_view_node_prop_ref(v, id, "i", &r);
	if (rv)
		return -rv;
	return r.kind == STO_REF_INT ? r.i : -1000;
}

START_TEST(node_table_answers_as_rocksdb)
{
	load();
	static uint64_t want[N + 8], got[N + 8];
	struct sto_view *a, *b;
	ck_assert_int_eq(sto_view_open(st, &a), 0);
	ck_assert_ptr_null(a->ntab);
	/* the first complete walk builds the table and switches to it */
	ck_assert_uint_eq(walk(a, "P", got), N);
	ck_assert_ptr_nonnull(a->ntab);
	ck_assert_uint_eq(sto_ntab_count(a->ntab), N + 3);
	/* a later view reads the table from its first call on */
	ck_assert_int_eq(sto_view_open(st, &b), 0);
	const char *labels[] = {"P", "Q", "R", NULL};
	for (int l = 0; l < 4; l++) {
		size_t n = label_ids(b, labels[l], want);
		ck_assert_uint_eq(walk(b, labels[l], got), n);
		ck_assert_ptr_nonnull(b->ntab);
		for (size_t i = 0; i < n; i++)
			ck_assert_uint_eq(got[i], want[i]);
	}
	/* point reads: any node, in any order; absent ones and keys */
	for (int64_t id = N + 3; id >= 1; id -= 7)
		ck_assert_int_eq(prop_i(b, (uint64_t)id), id);
	ck_assert_int_eq(prop_i(b, N + 50), -LORA_ENOTFOUND);
	ck_assert_int_eq(prop_i(b, 0), -LORA_ENOTFOUND);
	struct sto_prop_ref r;
	ck_assert_int_eq(sto_view_node_prop_ref(b, 5, "s", &r), 0);
	ck_assert_int_eq(r.kind, STO_REF_STRING);
	ck_assert_int_eq((int)r.slen, 2);
	ck_assert(!memcmp(r.s, "s5", 2));
	ck_assert_int_eq(sto_view_node_prop_ref(b, 5, "nope", &r), 0);
	ck_assert_int_eq(r.kind, STO_REF_ABSENT);
	ck_assert_int_eq(sto_view_node_prop_ref(b, 3, "emb", &r), 0);
	ck_assert_int_eq(r.kind, STO_REF_OTHER); /* a vector */
	uint64_t id;
	ck_assert_int_eq(sto_view_next_node(b, "Q", 9, &id), 0);
	ck_assert_uint_eq(id, 12);
	ck_assert_int_eq(sto_view_next_node(b, NULL, UINT64_MAX, &id),
	                 LORA_ENOTFOUND);
	sto_view_close(a);
	sto_view_close(b);
}
END_TEST

START_TEST(a_scan_stopped_early_builds_nothing)
{
	load();
	struct sto_view *v;
	uint64_t id, from = 0;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	for (int k = 0; k < 10; k++) {
		ck_assert_int_eq(sto_view_next_node(v, "P", from, &id), 0);
		from = id + 1;
	}
	/* a jump: not one walk any more */
	ck_assert_int_eq(sto_view_next_node(v, "P", 200, &id), 0);
	while (sto_view_next_node(v, "P", id + 1, &id) == 0)
		;
	ck_assert_ptr_null(v->ntab);
	uint64_t gen = v->ngen;
	sto_view_close(v);
	ck_assert_ptr_null(sto_ntab_get(st, gen));
}
END_TEST

/* A view keeps its snapshot's nodes; a batch that changes nodes makes
 * later views read RocksDB (and build anew); one that only adds edges
 * does not. */
START_TEST(writes_make_the_table_stale)
{
	static uint64_t ids[N + 8];
	load();
	struct sto_view *old, *v;
	ck_assert_int_eq(sto_view_open(st, &old), 0);
	ck_assert_uint_eq(walk(old, NULL, ids), N + 3);
	ck_assert_ptr_nonnull(old->ntab);
	uint64_t gen = old->ngen;

	Lora__MutationBatch *b = batch_new();
	add_create_edge(b, 2, "K", 2, 3, 0);
	ck_assert_int_eq(apply(b), 0);
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_uint_eq(v->ngen, gen);
	ck_assert_int_eq(prop_i(v, 7), 7);
	ck_assert_ptr_nonnull(v->ntab);
	sto_view_close(v);

	b = batch_new();
	add_set_prop(b, NODE, 7, "i", v_int(-7));
	add_create_node(b, N + 10, "P", 1, "i", v_int(N + 10));
	add_delete_node(b, 9, 0);
	ck_assert_int_eq(apply(b), 0);
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_uint_ne(v->ngen, gen);
	ck_assert_int_eq(prop_i(v, 7), -7);
	ck_assert_int_eq(prop_i(v, 9), -LORA_ENOTFOUND);
	ck_assert_int_eq(prop_i(v, N + 10), N + 10);
	ck_assert_ptr_null(v->ntab);
	uint64_t id, from = 0;
	size_t n = 0, seen_new = 0;
	while (sto_view_next_node(v, "P", from, &id) == 0) {
		ck_assert_uint_ne(id, 9);
		seen_new += id == N + 10;
		from = id + 1;
		n++;
	}
	ck_assert_uint_eq(n, N);
	ck_assert_uint_eq(seen_new, 1);
	ck_assert_ptr_nonnull(v->ntab); /* the new generation's */
	/* the old view still reads its own snapshot, from its table */
	ck_assert_int_eq(prop_i(old, 7), 7);
	ck_assert_int_eq(prop_i(old, 9), 9);
	ck_assert_int_eq(prop_i(old, N + 10), -LORA_ENOTFOUND);
	sto_view_close(old);
	sto_view_close(v);

	/* raw writes (tests planting corrupt records) count as well */
	uint8_t k[8];
	const uint8_t bad[] = {'n', 3, 1};
	lora_put_be64(k, 5);
	ck_assert_int_eq(sto_testing_put_raw(st, "nodes", k, 8, bad, 3), 0);
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_ptr_null(v->ntab);
	int rv;
	for (from = 0; (rv = sto_view_next_node(v, "P", from, &id)) == 0;)
		from = id + 1;
	ck_assert_int_eq(rv, LORA_ECORRUPT);
	ck_assert_uint_eq(from, 5); /* 1..4 were handed out */
	sto_view_close(v);
}
END_TEST

/* the column against the raw scan of the same view */
static void column_is_the_scan(struct sto_view *v, const char *label,
                               size_t want)
{
	struct sto_vcol_ref c;
	ck_assert_int_eq(sto_view_vector_column(v, label, "emb", &c), 0);
	ck_assert_uint_eq(c.n, want);
	ck_assert_uint_eq(c.dim, 3);
	struct sto_iter *it;
	struct sto_item item;
	int done = 0;
	size_t n = 0;
	ck_assert_int_eq(sto_view_scan_vectors_raw(v, label, "emb", &it), 0);
	while (!sto_iter_next(it, &item, &done) && !done) {
		struct sto_vec_ref r;
		float f[3];
		ck_assert_int_eq(
		    sto_vector_ref(item.vec_bytes, item.vec_len, &r), 0);
		sto_vec_f32(&r, f);
		ck_assert_uint_lt(n, c.n);
		ck_assert_uint_eq(c.ids[n], item.node_id);
		float g[3];
		sto_vcol_row(&c, n, g);
		ck_assert(!memcmp(g, f, sizeof f));
		/* the layout: blocks of STO_VCOL_BLOCK, coordinate-major */
		size_t b = n / STO_VCOL_BLOCK * STO_VCOL_BLOCK * 3;
		ck_assert(c.rows[b + 2 * STO_VCOL_BLOCK + n % STO_VCOL_BLOCK] ==
		          f[2]);
		double s = 0;
		for (int i = 0; i < 3; i++)
			s += (double)f[i] * f[i];
		ck_assert(c.sumsq[n] == s);
		n++;
	}
	sto_iter_free(it);
	ck_assert_uint_eq(n, want);
}

START_TEST(vector_columns_are_the_scan)
{
	load();
	struct sto_view *v, *w;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	column_is_the_scan(v, "P", N / 3);
	column_is_the_scan(v, "R", 3);
	column_is_the_scan(v, NULL, N / 3 + 3);
	column_is_the_scan(v, "P", N / 3); /* the view's own, again */
	struct sto_vcol_ref c, c2;
	ck_assert_int_eq(sto_view_vector_column(v, "Nope", "emb", &c),
	                 LORA_ENOTFOUND);
	/* shared: a later view of the same state gets the same copy */
	ck_assert_int_eq(sto_view_vector_column(v, "Q", "emb", &c), 0);
	ck_assert_int_eq(sto_view_open(st, &w), 0);
	ck_assert_int_eq(sto_view_vector_column(w, "Q", "emb", &c2), 0);
	ck_assert_ptr_eq(c.rows, c2.rows);
	sto_view_close(w);

	/* a changed vector: new views see it, the old one keeps its own */
	Lora__MutationBatch *b = batch_new();
	float xs[3] = {1, 2, 3};
	add_set_vector(b, NODE, 12, "emb", vec_f32(3, xs));
	ck_assert_int_eq(apply(b), 0);
	ck_assert_int_eq(sto_view_open(st, &w), 0);
	column_is_the_scan(w, "Q", N / 12);
	ck_assert_int_eq(sto_view_vector_column(w, "Q", "emb", &c2), 0);
	float g[3];
	sto_vcol_row(&c2, 0, g);
	ck_assert(g[0] == 1 && g[2] == 3 && c2.ids[0] == 12);
	sto_vcol_row(&c, 0, g);
	ck_assert(g[0] == 12 && c.ids[0] == 12);
	sto_view_close(w);
	sto_view_close(v);

	/* not all float32 of one dimension: no column, the caller scans */
	b = batch_new();
	Lora__Vector *d = vec_f32(3, xs);
	lora_free(d->f32);
	d->n_f32 = 0;
	d->f32 = NULL;
	d->coord_type = LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT64;
	d->n_f64 = 3;
	d->f64 = lora_malloc(3 * sizeof(double));
	d->f64[0] = d->f64[1] = d->f64[2] = 1;
	add_set_vector(b, NODE, N + 1, "emb", d);
	ck_assert_int_eq(apply(b), 0);
	ck_assert_int_eq(sto_view_open(st, &w), 0);
	ck_assert_int_eq(sto_view_vector_column(w, "R", "emb", &c),
	                 LORA_ENOTFOUND);
	ck_assert_int_eq(sto_view_vector_column(w, "R", "emb", &c),
	                 LORA_ENOTFOUND);
	column_is_the_scan(w, "Q", N / 12); /* other labels still can */
	sto_view_close(w);
}
END_TEST

/* scans the vectors of label with a plain scan (the blocks go into the
 * block cache as any query's reads do) */
static void plain_vector_scan(const char *label)
{
	struct sto_view *v;
	struct sto_iter *it;
	struct sto_item item;
	int done = 0;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_scan_vectors_raw(v, label, "emb", &it), 0);
	while (!sto_iter_next(it, &item, &done) && !done)
		;
	sto_iter_free(it);
	sto_view_close(v);
}

static uint64_t block_cache(void)
{
	struct sto_memory m;
	sto_memory(st, &m);
	return m.block_cache;
}

/* Building a column is a one-off read: the vectors' blocks stay out of
 * the block cache (the column serves them afterwards), whereas a plain
 * scan of the same vectors puts them there; sto_memory shows the
 * column's bytes. */
START_TEST(a_column_build_leaves_the_block_cache_alone)
{
	Lora__MutationBatch *b = batch_new();
	for (uint64_t id = 1; id <= 3000; id++) {
		add_create_node(b, id, "P", 1, "i", v_int((int64_t)id));
		float xs[16];
		for (int d = 0; d < 16; d++)
			xs[d] = (float)(id * 31 + (uint64_t)d * 7 % 1000);
		add_set_vector(b, NODE, id, "emb", vec_f32(16, xs));
	}
	ck_assert_int_eq(apply(b), 0);
	char em[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(sto_compact(st, em), 0); /* into SST files */
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	uint64_t n;
	/* the reads besides the scan (counts, the label index) first */
	ck_assert_int_eq(sto_view_count_nodes(v, "P", &n), 0);
	ck_assert_int_eq(sto_view_count_nodes(v, NULL, &n), 0);
	uint64_t before = block_cache();
	struct sto_vcol_ref c;
	ck_assert_int_eq(sto_view_vector_column(v, "P", "emb", &c), 0);
	ck_assert_uint_eq(c.n, 3000);
	uint64_t after = block_cache();
	struct sto_memory m;
	sto_memory(st, &m);
	ck_assert_uint_gt(m.vector_columns, 3000 * 16 * sizeof(float));
	sto_view_close(v);
	plain_vector_scan("P");
	uint64_t plain = block_cache();
	/* 3,000 x 16 float32 (about 200 KB of vectors) */
	ck_assert_msg(after - before < 16384 && plain - after > 100000,
	              "block cache %llu before, %llu after the column, %llu "
	              "after a plain scan",
	              (unsigned long long)before, (unsigned long long)after,
	              (unsigned long long)plain);
}
END_TEST

static Suite *ncache_suite(void)
{
	Suite *s = suite_create("storage_ncache");
	TCase *t = tcase_create("ncache");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, node_table_answers_as_rocksdb);
	tcase_add_test(t, a_scan_stopped_early_builds_nothing);
	tcase_add_test(t, writes_make_the_table_stale);
	tcase_add_test(t, vector_columns_are_the_scan);
	tcase_add_test(t, a_column_build_leaves_the_block_cache_alone);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ncache_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
