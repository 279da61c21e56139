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

/* no background flush or compaction (which would move the vectors to new
 * files and drop the old files' cached blocks) between the measurements */
static void idle(void)
{
	ck_assert_int_eq(sto_testing_wait_idle(st, lora_now_ms() + 30000), 0);
}

static uint64_t block_cache(void)
{
	struct sto_memory m;
	sto_memory(st, &m);
	return m.block_cache;
}

/* 3,000 nodes P with a 16-d float32 vector "emb" (about 200 KB of
 * vectors), compacted into SST files */
static void load_p16(void)
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
	idle();
}

/* a write that changes a node (a new generation of the node side) */
static void touch_node(uint64_t id, int64_t i)
{
	Lora__MutationBatch *b = batch_new();
	add_set_prop(b, NODE, id, "i", v_int(i));
	ck_assert_int_eq(apply(b), 0);
	idle();
}

/* Builds the column of P.emb in a new view (after the counts and label
 * reads, so only the scan's blocks change the block cache); its block
 * cache growth, bytes */
static uint64_t column_build_cache_growth(size_t want_n)
{
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	uint64_t n;
	ck_assert_int_eq(sto_view_count_nodes(v, "P", &n), 0);
	ck_assert_int_eq(sto_view_count_nodes(v, NULL, &n), 0);
	uint64_t before = block_cache();
	struct sto_vcol_ref c;
	ck_assert_int_eq(sto_view_vector_column(v, "P", "emb", &c), 0);
	ck_assert_uint_eq(c.n, want_n);
	uint64_t after = block_cache();
	sto_view_close(v);
	return after - before;
}

/* Building a column the first time is a one-off read: the vectors'
 * blocks stay out of the block cache (the column serves them
 * afterwards), whereas a plain scan of the same vectors puts them there;
 * sto_memory shows the column's bytes. */
START_TEST(a_column_build_leaves_the_block_cache_alone)
{
	load_p16();
	uint64_t grew = column_build_cache_growth(3000);
	struct sto_memory m;
	sto_memory(st, &m);
	ck_assert_uint_gt(m.vector_columns, 3000 * 16 * sizeof(float));
	uint64_t after = block_cache();
	plain_vector_scan("P");
	uint64_t plain = block_cache();
	ck_assert_msg(grew < 16384 && plain - after > 100000,
	              "block cache +%llu by the column, +%llu by a plain scan",
	              (unsigned long long)grew,
	              (unsigned long long)(plain - after));
}
END_TEST

/* After a write every query rebuilds the column: one that is small next
 * to the block cache (200 KB of 128 MiB) fills the cache on its rebuild,
 * so the rebuilds after that read the vectors from the cache. */
START_TEST(a_small_column_rebuilt_after_a_write_fills_the_cache)
{
	load_p16();
	uint64_t first = column_build_cache_growth(3000);
	touch_node(1, -1);
	uint64_t second = column_build_cache_growth(3000);
	touch_node(2, -2);
	uint64_t third = column_build_cache_growth(3000);
	ck_assert_msg(first < 16384 && second > 100000 && third < 16384,
	              "block cache +%llu, +%llu, +%llu by three builds",
	              (unsigned long long)first, (unsigned long long)second,
	              (unsigned long long)third);
}
END_TEST

/* A column that is a large share of the block cache (200 KB of 512 KiB)
 * leaves the cache alone on its rebuilds too. */
START_TEST(a_large_column_rebuilt_leaves_the_cache_alone)
{
	char msg[LORA_ERRMSG_BYTES] = "", p[512];
	sto_close(st);
	struct sto_options o;
	sto_options_init(&o);
	o.block_cache_bytes = (size_t)512 << 10;
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof(p), dir, "state"), &o, &st, msg), 0);
	load_p16();
	uint64_t first = column_build_cache_growth(3000);
	touch_node(1, -1);
	uint64_t second = column_build_cache_growth(3000);
	ck_assert_msg(first < 16384 && second < 16384,
	              "block cache +%llu, +%llu by two builds",
	              (unsigned long long)first, (unsigned long long)second);
}
END_TEST

/* A burst of large column builds (each past STO_VCOL_TRIM_BYTES, one per
 * write) asks for a malloc trim after each, and the process trims once:
 * the others fall within 10 s of it and are counted as skipped. */
START_TEST(a_burst_of_column_builds_trims_once)
{
	enum { DIM = 128, NODES = 34000, PER_BATCH = 2000 };
	for (uint64_t id0 = 1; id0 <= NODES; id0 += PER_BATCH) {
		Lora__MutationBatch *b = batch_new();
		for (uint64_t id = id0; id < id0 + PER_BATCH; id++) {
			add_create_node(b, id, "P", 1, "i", v_int((int64_t)id));
			float xs[DIM];
			for (int d = 0; d < DIM; d++)
				xs[d] = (float)((id * 31 + (uint64_t)d) % 97);
			add_set_vector(b, NODE, id, "emb", vec_f32(DIM, xs));
		}
		ck_assert_int_eq(apply(b), 0);
	}
	struct lora_mem_process a, z;
	lora_mem_process(&a);
	for (int k = 0; k < 3; k++) {
		touch_node(1, -k);
		struct sto_view *v;
		ck_assert_int_eq(sto_view_open(st, &v), 0);
		struct sto_vcol_ref c;
		ck_assert_int_eq(sto_view_vector_column(v, "P", "emb", &c), 0);
		ck_assert_uint_eq(c.n, NODES);
		sto_view_close(v);
	}
	struct sto_memory m;
	sto_memory(st, &m);
	ck_assert_uint_ge(m.vector_columns, STO_VCOL_TRIM_BYTES);
	lora_mem_process(&z);
	ck_assert_msg(z.trims - a.trims == 1 &&
	                  z.trims_skipped - a.trims_skipped == 2,
	              "three builds: %llu trims, %llu skipped",
	              (unsigned long long)(z.trims - a.trims),
	              (unsigned long long)(z.trims_skipped - a.trims_skipped));
}
END_TEST

/* sto_memory's memtables_max is the most the memtables can hold: every
 * column family's write buffer (64 MiB, the adjacency's 256 MiB) times the
 * buffers it keeps (two: one filling while one is flushed) */
START_TEST(memtables_max_is_the_write_buffers)
{
	struct sto_memory m;
	sto_memory(st, &m);
	ck_assert_uint_eq(
	    m.memtables_max,
	    2 * ((uint64_t)(STO_CF_COUNT - 1) * (64u << 20) + (256u << 20)));
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
	tcase_add_test(t, a_small_column_rebuilt_after_a_write_fills_the_cache);
	tcase_add_test(t, a_large_column_rebuilt_leaves_the_cache_alone);
	tcase_add_test(t, a_burst_of_column_builds_trims_once);
	tcase_add_test(t, memtables_max_is_the_write_buffers);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ncache_suite());
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
