/* test_storage_hnsw_rel.c - HNSW graphs of relationship vector indexes
 * (storage/hnsw_store.c): recall@10 against an exact ranking after
 * creates, deletes (one by one and by DETACH DELETE of an end node),
 * vector changes and removals; relationships of other types and node
 * vectors of the same key stay out; a background build over existing
 * relationships with a restart in the middle gives byte-equal graphs; a
 * checkpoint carries the graph. The vectors come from a seed: set
 * LORA_SEED to replay a run. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "hnswInt.h"
#include "sto_fixture.h"
#include "sto_testing.h"

#define NODE    LORA__ENTITY_KIND__ENTITY_NODE
#define EDGE    LORA__ENTITY_KIND__ENTITY_EDGE
#define DIM     24
#define N       3000 /* relationships; every third is of type OTHER */
#define NODES   200
#define K       10
#define QUERIES 40
#define EF      64

static uint64_t seed, rng;
static float (*vecs)[DIM];
static uint8_t *alive; /* a SIM relationship with a vector */

static double rnd(void) /* [0, 1) */
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(rng >> 11) / 9007199254740992.0;
}

/* vector of id, drawn around one of 16 centres */
static void make_vec(float *x, uint64_t id)
{
	uint64_t keep = rng;
	rng = seed ^ (id * 0x9e3779b97f4a7c15ull);
	int c = (int)(rnd() * 16);
	for (int d = 0; d < DIM; d++)
		x[d] = (float)(sin((double)(c * DIM + d)) +
		               0.15 * (2 * rnd() - 1));
	rng = keep;
}

static int is_sim(uint64_t id)
{
	return id % 3 != 2;
}

/* the ends of relationship id */
static uint64_t from_of(uint64_t id)
{
	return id % NODES;
}
static uint64_t to_of(uint64_t id)
{
	return (id * 7 + 3) % NODES;
}

static void fill(void)
{
	vecs = calloc(N, sizeof *vecs);
	alive = calloc(N, 1);
	for (uint64_t id = 0; id < N; id++) {
		make_vec(vecs[id], id);
		alive[id] = (uint8_t)is_sim(id);
	}
}

static void unfill(void)
{
	free(vecs);
	free(alive);
}

static void on(struct sto_store *s, Lora__MutationBatch *b)
{
	struct sto_store *was = st;
	st = s;
	ck_assert_int_eq(apply(b), 0);
	st = was;
}

/* NODES nodes :P, each with a vector v too (a node index must not see
 * them in a relationship index of the same key) */
static void add_nodes(struct sto_store *s)
{
	Lora__MutationBatch *b = batch_new();
	for (uint64_t id = 0; id < NODES; id++) {
		float x[DIM];
		make_vec(x, 50 * N + id);
		add_create_node(b, id, "P", 1, "v", v_vec(DIM, x));
	}
	on(s, b);
}

/* relationships first..last-1, SIM or OTHER, each with vector v */
static void add_edges(struct sto_store *s, uint64_t first, uint64_t last)
{
	for (uint64_t i = first; i < last; i += 500) {
		Lora__MutationBatch *b = batch_new();
		for (uint64_t id = i; id < last && id < i + 500; id++)
			add_create_edge(b, id, is_sim(id) ? "SIM" : "OTHER",
			                from_of(id), to_of(id), 1, "v",
			                v_vec(DIM, vecs[id]));
		on(s, b);
	}
}

static void create_vindex(struct sto_store *s, const char *name, int entity,
                          const char *label)
{
	Lora__MutationBatch *b = batch_new();
	add_create_index(b, name, LORA__INDEX_KIND__INDEX_VECTOR, label, "v",
	                 0);
	Lora__CreateIndex *ci = b->mutations[0]->create_index;
	ci->entity = (Lora__EntityKind)entity;
	ci->vector_dimensions = DIM;
	ci->vector_similarity = lora_strdup("cosine");
	on(s, b);
}

/* Empty batches until no graph of s is being built: how many it took. */
static int build_steps(struct sto_store *s)
{
	int k = 0;
	for (; sto_hnsw_populating(s); k++) {
		ck_assert_int_lt(k, 1000);
		on(s, batch_new());
	}
	return k;
}

static double score_of(const float *x, const double *q)
{
	double dp = 0, nn = 0, qq = 0;
	for (int d = 0; d < DIM; d++) {
		dp += x[d] * q[d];
		nn += (double)x[d] * x[d];
		qq += q[d] * q[d];
	}
	return (1 + dp / (sqrt(nn) * sqrt(qq))) / 2;
}

/* the exact top K of the live SIM relationships */
static void exact_top(const double *q, uint64_t *top)
{
	double best[K];
	for (int i = 0; i < K; i++)
		best[i] = -1, top[i] = UINT64_MAX;
	for (uint64_t id = 0; id < N; id++) {
		if (!alive[id])
			continue;
		double s = score_of(vecs[id], q);
		int j = K - 1;
		if (s <= best[j])
			continue;
		while (j > 0 && s > best[j - 1]) {
			best[j] = best[j - 1];
			top[j] = top[j - 1];
			j--;
		}
		best[j] = s;
		top[j] = id;
	}
}

/* mean recall@K of graph "remb" over QUERIES queries; every hit must be
 * a live SIM relationship */
static double recall(struct sto_store *s)
{
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(s, &v), 0);
	size_t hit = 0;
	for (int t = 0; t < QUERIES; t++) {
		double q[DIM], qn = 0;
		float qf[DIM];
		make_vec(qf, 100 * N + (uint64_t)t);
		for (int d = 0; d < DIM; d++)
			q[d] = qf[d], qn += q[d] * q[d];
		uint64_t top[K];
		exact_top(q, top);
		struct sto_vhit out[EF];
		size_t n, count;
		ck_assert_int_eq(sto_view_vector_search(v, "remb", q, DIM,
		                                        sqrt(qn), EF, out, &n,
		                                        &count),
		                 0);
		for (size_t i = 0; i < n; i++)
			ck_assert_msg(out[i].id < N && alive[out[i].id],
			              "relationship %llu found",
			              (unsigned long long)out[i].id);
		for (int i = 0; i < K; i++)
			for (size_t j = 0; j < K && j < n; j++)
				hit += out[j].id == top[i];
	}
	sto_view_close(v);
	return (double)hit / (QUERIES * K);
}

/* the number of entries in graph `name` (it must answer) */
static size_t graph_count(struct sto_store *s, const char *name)
{
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(s, &v), 0);
	double q[DIM] = {1};
	struct sto_vhit out[1];
	size_t n, count;
	ck_assert_int_eq(
	    sto_view_vector_search(v, name, q, DIM, 1, 1, out, &n, &count), 0);
	sto_view_close(v);
	return count;
}

static size_t n_alive(void)
{
	size_t n = 0;
	for (uint64_t id = 0; id < N; id++)
		n += alive[id];
	return n;
}

/* deletes some relationships, moves others' vectors, removes some
 * vectors, turns a vector into a string, DETACH DELETEs node 5 (whose
 * relationships leave the graph with it), and writes vectors on OTHER
 * relationships and on nodes (which stay out) */
static void churn(struct sto_store *s)
{
	Lora__MutationBatch *b = batch_new();
	for (uint64_t id = 0; id < N; id++) {
		if (from_of(id) == 5 || to_of(id) == 5)
			continue;
		if (id % 7 == 0) {
			add_delete_edge(b, id);
			alive[id] = 0;
		} else if (id % 7 == 1) {
			make_vec(vecs[id], id + 7 * N);
			add_set_vector(b, EDGE, id, "v",
			               vec_f32(DIM, vecs[id]));
		} else if (id % 7 == 3) {
			add_remove_prop(b, EDGE, id, "v");
			alive[id] = 0;
		} else if (id % 7 == 4 && id % 2) {
			add_set_prop(b, EDGE, id, "v", v_str("no vector"));
			alive[id] = 0;
		}
	}
	add_delete_node(b, 5, 1);
	for (uint64_t id = 0; id < N; id++)
		if (from_of(id) == 5 || to_of(id) == 5)
			alive[id] = 0;
	on(s, b);
}

START_TEST(rel_recall_after_writes)
{
	fill();
	struct sto_store *s = st;
	add_nodes(s);
	create_vindex(s, "remb", EDGE, "SIM"); /* empty: ONLINE at once */
	create_vindex(s, "nemb", NODE, "P");   /* the nodes' own index */
	build_steps(s);
	add_edges(s, 0, N); /* the graph grows batch by batch */
	ck_assert_uint_eq(graph_count(s, "remb"), n_alive());
	ck_assert_uint_eq(graph_count(s, "nemb"), NODES);
	double r1 = recall(s);
	churn(s);
	ck_assert_uint_eq(graph_count(s, "remb"), n_alive());
	ck_assert_uint_eq(graph_count(s, "nemb"), NODES - 1);
	double r2 = recall(s);
	printf("seed %llu: relationships: recall@10 %.3f, after writes "
	       "%.3f\n",
	       (unsigned long long)seed, r1, r2);
	unfill();
	ck_assert_msg(r1 >= 0.95 && r2 >= 0.95, "recall %.3f %.3f (seed %llu)",
	              r1, r2, (unsigned long long)seed);
}
END_TEST

static struct sto_store *open_at(const char *name)
{
	char p[512], msg[LORA_ERRMSG_BYTES] = "";
	struct sto_store *s;
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof p, dir, name), NULL, &s, msg), 0);
	return s;
}

static void dump(struct sto_store *s, struct lora_buf *b)
{
	lora_buf_reset(b);
	ck_assert_int_eq(sto_testing_dump_raw(s, "hnsw", b), 0);
	ck_assert_uint_gt(b->len, 0);
}

static void progress(struct sto_store *s, int *pop, double *pct)
{
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(s, &v), 0);
	ck_assert_int_eq(sto_view_index_progress(v, "remb", pop, pct), 0);
	sto_view_close(v);
}

/* An index over existing relationships is POPULATING (searches told to
 * scan) while empty batches take its steps, with writes in between; then
 * ONLINE with good recall. A second store fed the same batches and
 * reopened in the middle holds the same bytes; so does a checkpoint,
 * which answers alike. */
START_TEST(rel_background_build)
{
	fill();
	struct sto_store *b2 = open_at("second");
	add_nodes(st);
	add_nodes(b2);
	add_edges(st, 0, N);
	add_edges(b2, 0, N);
	create_vindex(st, "remb", EDGE, "SIM");
	create_vindex(b2, "remb", EDGE, "SIM");
	int pop;
	double pct;
	progress(st, &pop, &pct);
	ck_assert(pop && pct == 0.0);
	struct sto_view *v;
	double q[DIM] = {1};
	struct sto_vhit out[8];
	size_t n, count;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(
	    sto_view_vector_search(v, "remb", q, DIM, 1, 8, out, &n, &count),
	    LORA_ENOTFOUND);
	sto_view_close(v);
	on(st, batch_new()); /* one step: 1,024 of the 2,000 */
	on(b2, batch_new());
	progress(st, &pop, &pct);
	ck_assert_msg(pop && pct > 45 && pct < 55, "%d %.1f", pop, pct);
	sto_close(b2);
	b2 = open_at("second"); /* a restart in the middle of the build */
	ck_assert(sto_hnsw_populating(b2));
	churn(st);
	churn(b2);
	int k1 = build_steps(st), k2 = build_steps(b2);
	ck_assert_int_eq(k1, k2);
	progress(st, &pop, &pct);
	ck_assert(!pop && pct == 100.0);
	ck_assert_uint_eq(graph_count(st, "remb"), n_alive());
	struct lora_buf x = {0}, y = {0};
	dump(st, &x);
	dump(b2, &y);
	ck_assert(x.len == y.len && !memcmp(x.data, y.data, x.len));
	char p[512], msg[LORA_ERRMSG_BYTES] = "";
	uint64_t idx;
	ck_assert_int_eq(
	    sto_checkpoint(st, path_join(p, sizeof p, dir, "ck"), &idx, msg),
	    0);
	struct sto_store *c = open_at("ck");
	dump(c, &y);
	ck_assert(x.len == y.len && !memcmp(x.data, y.data, x.len));
	double r1 = recall(st), r2 = recall(c);
	printf("seed %llu: relationships, background build (%d steps): "
	       "recall@10 %.3f, checkpoint %.3f\n",
	       (unsigned long long)seed, k1 + 1, r1, r2);
	ck_assert(r1 == r2);
	sto_close(c);
	sto_close(b2);
	lora_buf_free(&x);
	lora_buf_free(&y);
	unfill();
	ck_assert_msg(r1 >= 0.95, "recall %.3f (seed %llu)", r1,
	              (unsigned long long)seed);
}
END_TEST

/* A view older than a batch that only created relationships is told to
 * scan (the graph holds relationships its snapshot lacks); dropping a
 * relationship index removes its graph keys. */
START_TEST(rel_stale_view_and_drop)
{
	fill();
	add_nodes(st);
	create_vindex(st, "remb", EDGE, "SIM");
	add_edges(st, 0, 600);
	ck_assert_uint_gt(graph_count(st, "remb"), 0);
	struct sto_view *old;
	ck_assert_int_eq(sto_view_open(st, &old), 0);
	add_edges(st, 600, 700);
	double q[DIM] = {1};
	struct sto_vhit out[8];
	size_t n, count;
	ck_assert_int_eq(
	    sto_view_vector_search(old, "remb", q, DIM, 1, 8, out, &n, &count),
	    LORA_ENOTFOUND);
	sto_view_close(old);
	ck_assert_uint_eq(graph_count(st, "remb"), 467); /* SIM of 0..699 */
	Lora__MutationBatch *b = batch_new();
	add_drop_index(b, "remb", 0);
	on(st, b);
	struct lora_buf x = {0};
	ck_assert_int_eq(sto_testing_dump_raw(st, "hnsw", &x), 0);
	ck_assert_uint_eq(x.len, 0);
	lora_buf_free(&x);
	unfill();
}
END_TEST

/* A corrupt relationship record met by a build step stops the apply of
 * the batch the step rides on: nothing of the user's write in it is
 * written, the applied index stays, the error names the record (the node
 * stops, as for any corrupt record), and the batch is not consumed as a
 * rejection on this replica alone. */
START_TEST(rel_build_corrupt_record_stops_apply)
{
	fill();
	add_nodes(st);
	add_edges(st, 0, 600);
	create_vindex(st, "remb", EDGE, "SIM");
	ck_assert(sto_hnsw_populating(st));
	uint8_t k[9];
	k[0] = 'E';
	lora_put_be64(k + 1, 10);
	ck_assert_int_eq(sto_testing_put_raw(st, "edges", k, 9, "\x72\xff", 2),
	                 0);
	uint64_t before = sto_applied_index(st);
	Lora__MutationBatch *b = batch_new();
	add_set_prop(b, NODE, 1, "k", v_int(7));
	char msg[LORA_ERRMSG_BYTES] = "";
	ck_assert_int_eq(sto_apply(st, before + 1, b, msg), LORA_ECORRUPT);
	batch_free(b);
	ck_assert_msg(strstr(msg, "edge 10: corrupt record") &&
	                  strstr(msg, "remb"),
	              "%s", msg);
	ck_assert_uint_eq(sto_applied_index(st), before);
	ck_assert(sto_hnsw_populating(st));
	struct sto_view *v;
	Lora__Value *val = NULL;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_node_prop(v, 1, "k", &val), 0);
	ck_assert_ptr_null(val); /* the user's write is not in */
	sto_view_close(v);
	unfill();
}
END_TEST

/* Items of a raw relationship vector scan of type t, key v, with the
 * given deadline: *rv the error that ended it (0 at the end). */
static size_t scan_rel(const char *t, uint64_t deadline_ms, int *rv)
{
	struct sto_view *v;
	struct sto_iter *it;
	struct sto_item item;
	int done = 0;
	size_t n = 0;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_scan_rel_vectors_raw(v, t, "v", &it), 0);
	sto_iter_set_deadline(it, deadline_ms);
	while (!(*rv = sto_iter_next(it, &item, &done)) && !done)
		n++;
	sto_iter_free(it);
	sto_view_close(v);
	return n;
}

/* The exact scan of a rare relationship type walks every relationship
 * vector inside one sto_iter_next: a deadline stops it there
 * (LORA_ETIMEOUT), so the statement time limit holds. */
START_TEST(rel_scan_deadline)
{
	fill();
	add_nodes(st);
	add_edges(st, 0, N);
	Lora__MutationBatch *b = batch_new();
	add_create_edge(b, N, "RARE", 1, 2, 1, "v", v_vec(DIM, vecs[0]));
	on(st, b);
	int rv;
	ck_assert_uint_eq(scan_rel("RARE", 0, &rv), 1);
	ck_assert_int_eq(rv, 0);
	ck_assert_uint_eq(scan_rel("RARE", lora_now_ms() + 600000, &rv), 1);
	ck_assert_int_eq(rv, 0);
	ck_assert_uint_eq(scan_rel("RARE", 1, &rv), 0); /* long past */
	ck_assert_int_eq(rv, LORA_ETIMEOUT);
	size_t n = scan_rel("SIM", 1, &rv);
	ck_assert_int_eq(rv, LORA_ETIMEOUT);
	ck_assert_uint_lt(n, STO_ITER_CHECK_KEYS);
	unfill();
}
END_TEST

static Suite *rel_suite(void)
{
	Suite *s = suite_create("storage_hnsw_rel");
	TCase *t = tcase_create("hnsw_rel");
	tcase_set_timeout(t, 300);
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, rel_recall_after_writes);
	tcase_add_test(t, rel_background_build);
	tcase_add_test(t, rel_stale_view_and_drop);
	tcase_add_test(t, rel_build_corrupt_record_stops_apply);
	tcase_add_test(t, rel_scan_deadline);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	const char *e = getenv("LORA_SEED");
	seed = e ? strtoull(e, NULL, 10) : (uint64_t)time(NULL);
	rng = seed;
	printf("LORA_SEED=%llu\n", (unsigned long long)seed);
	SRunner *sr = srunner_create(rel_suite());
	srunner_set_fork_status(sr, CK_NOFORK);
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
