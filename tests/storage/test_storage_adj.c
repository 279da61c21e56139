/* test_storage_adj.c - the packed adjacency chunks: supernodes across chunk
 * boundaries, history-independent digests, rejected batches, corrupt chunk
 * bytes and the storage format marker. */
#include <check.h>
#include <dirent.h>
#include <stdlib.h>
#include <time.h>

#include "stoInt.h"
#include "sto_helpers.h"
#include "sto_testing.h"

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
	int rv = sto_apply(s, sto_applied_index(s) + 1, b, msg);
	if (rv)
		fprintf(stderr, "  (expected?) apply: %s: %s\n",
		        lora_err_code(rv), msg);
	batch_free(b);
	return rv;
}

/* ---- a model of the graph -------------------------------------------------
 */

#define MODEL_NODES     12
#define MODEL_EDGES_MAX 4096

struct model {
	int live[MODEL_EDGES_MAX];
	uint64_t from[MODEL_EDGES_MAX], to[MODEL_EDGES_MAX];
	int type[MODEL_EDGES_MAX]; /* 0: "A", 1: "B" */
	uint64_t next;             /* next edge id */
};

static const char *const types[2] = {"A", "B"};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Sorted edge ids of a scan of s; checks every item's fields. */
static size_t scan(struct sto_store *s, const struct model *m, uint64_t node,
                   enum sto_dir dir, const char *type, uint64_t *ids)
{
	struct sto_view *v;
	struct sto_iter *it;
	ck_assert_int_eq(sto_view_open(s, &v), 0);
	ck_assert_int_eq(sto_view_scan_adjacent(v, node, dir, type, &it), 0);
	size_t n = 0;
	int done, rv;
	struct sto_item item;
	while (!(rv = sto_iter_next(it, &item, &done)) && !done) {
		uint64_t e = item.edge_id;
		ck_assert_uint_lt(e, MODEL_EDGES_MAX);
		ck_assert(m->live[e]);
		ck_assert_uint_eq(item.node_id, node);
		ck_assert_str_eq(item.type, types[m->type[e]]);
		uint64_t here = item.outgoing ? m->from[e] : m->to[e];
		uint64_t there = item.outgoing ? m->to[e] : m->from[e];
		ck_assert_uint_eq(here, node);
		ck_assert_uint_eq(item.other_id, there);
		ck_assert_uint_lt(n, MODEL_EDGES_MAX * 2);
		ids[n++] = e;
	}
	ck_assert_int_eq(rv, 0);
	sto_iter_free(it);
	sto_view_close(v);
	qsort(ids, n, sizeof(*ids), cmp_u64);
	return n;
}

/* What scan should return, sorted. */
static size_t expect(const struct model *m, uint64_t node, enum sto_dir dir,
                     int type, uint64_t *ids)
{
	size_t n = 0;
	for (uint64_t e = 0; e < m->next; e++) {
		if (!m->live[e] || (type >= 0 && m->type[e] != type))
			continue;
		if ((dir & STO_OUT) && m->from[e] == node)
			ids[n++] = e;
		if ((dir & STO_IN) && m->to[e] == node)
			ids[n++] = e;
	}
	qsort(ids, n, sizeof(*ids), cmp_u64);
	return n;
}

static void check_model(struct sto_store *s, const struct model *m)
{
	static uint64_t got[MODEL_EDGES_MAX * 2], want[MODEL_EDGES_MAX * 2];
	for (uint64_t node = 1; node <= MODEL_NODES; node++) {
		for (int d = STO_OUT; d <= STO_BOTH; d++) {
			for (int t = -1; t < 2; t++) {
				size_t n = scan(s, m, node, (enum sto_dir)d,
				                t < 0 ? NULL : types[t], got);
				size_t k =
				    expect(m, node, (enum sto_dir)d, t, want);
				ck_assert_uint_eq(n, k);
				for (size_t i = 0; i < n; i++)
					ck_assert_uint_eq(got[i], want[i]);
			}
		}
	}
}

/* Node 1 is the supernode; others are picked at random. */
static void model_add(struct model *m, Lora__MutationBatch *b)
{
	uint64_t e = m->next++;
	ck_assert_uint_lt(e, MODEL_EDGES_MAX);
	uint64_t other = 1 + (uint64_t)(rand() % MODEL_NODES);
	int r = rand() % 10;
	m->from[e] = r < 5 ? 1 : other;
	m->to[e] = r < 5 ? other : r < 9 ? 1 : other;
	m->type[e] = rand() % 2;
	m->live[e] = 1;
	add_create_edge(b, e, types[m->type[e]], m->from[e], m->to[e], 0);
}

/* A random live edge, or 0 when there is none. */
static uint64_t model_pick(const struct model *m)
{
	for (int tries = 0; tries < 100000; tries++) {
		uint64_t e = 1 + (uint64_t)rand() % (m->next - 1);
		if (m->live[e])
			return e;
	}
	return 0;
}

static void digest_of(struct sto_store *s, char out[STO_DIGEST_HEX_BYTES])
{
	char msg[LORA_ERRMSG_BYTES] = "";
	ck_assert_int_eq(sto_digest(s, out, msg), 0);
}

/* A second store holding only the model's live edges, created in
 * descending id order: same graph, different chunk layout. */
static struct sto_store *rebuild(const struct model *m, const char *name)
{
	char msg[LORA_ERRMSG_BYTES] = "", p[512];
	struct sto_store *s;
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof(p), dir, name), NULL, &s, msg), 0);
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= MODEL_NODES; i++)
		add_create_node(b, i, "N", 0);
	for (uint64_t e = m->next; e-- > 1;)
		if (m->live[e])
			add_create_edge(b, e, types[m->type[e]], m->from[e],
			                m->to[e], 0);
	ck_assert_int_eq(apply_to(s, b), 0);
	return s;
}

/* The test's seed: LORA_SEED, else the time; printed to rerun a failure. */
static unsigned test_seed(const char *test)
{
	unsigned seed = (unsigned)time(NULL);
	if (getenv("LORA_SEED"))
		seed = (unsigned)strtoul(getenv("LORA_SEED"), NULL, 10);
	fprintf(stderr, "%s: seed %u\n", test, seed);
	return seed;
}

/* One batch into st: the nodes and 1,200 edges, about 660 out of node 1
 * and 540 into it (three chunks each way), the batch reading its own
 * chunks; m describes them. */
static void supernode_graph(struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->next = 1;
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= MODEL_NODES; i++)
		add_create_node(b, i, "N", 0);
	for (int i = 0; i < 1200; i++)
		model_add(m, b);
	ck_assert_int_eq(apply_to(st, b), 0);
}

START_TEST(supernode_across_chunks)
{
	unsigned seed = test_seed("supernode_across_chunks");
	srand(seed);
	static struct model m;
	supernode_graph(&m);
	Lora__MutationBatch *b;
	check_model(st, &m);
	/* Rounds of deletions and creations, some in the same batch and some
	 * deleting an edge the batch created. */
	for (int round = 0; round < 8; round++) {
		b = batch_new();
		for (int i = 0; i < 60; i++) {
			int r = rand() % 4;
			uint64_t e = model_pick(&m);
			if (r < 2 && e) {
				m.live[e] = 0;
				add_delete_edge(b, e);
			} else if (r == 2 || !e) {
				model_add(&m, b);
			} else {
				model_add(&m, b);
				m.live[m.next - 1] = 0;
				add_delete_edge(b, m.next - 1);
			}
		}
		ck_assert_int_eq(apply_to(st, b), 0);
		check_model(st, &m);
	}
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	struct sto_store *s2 = rebuild(&m, "rebuilt");
	check_model(s2, &m);
	digest_of(st, d1);
	digest_of(s2, d2);
	ck_assert_str_eq(d1, d2);
	/* Detach delete of the supernode, on both stores. */
	for (uint64_t e = 1; e < m.next; e++)
		if (m.from[e] == 1 || m.to[e] == 1)
			m.live[e] = 0;
	b = batch_new();
	add_delete_node(b, 1, 1);
	ck_assert_int_eq(apply_to(st, b), 0);
	b = batch_new();
	add_delete_node(b, 1, 1);
	ck_assert_int_eq(apply_to(s2, b), 0);
	check_model(st, &m);
	digest_of(st, d1);
	digest_of(s2, d2);
	ck_assert_str_eq(d1, d2);
	sto_close(s2);
	/* An adjacency that disagrees with the records changes the digest:
	 * plant an extra entry (type token 0, other node 3, edge 4000). */
	uint8_t k[STO_ADJ_KEY_BYTES];
	sto_key_adj(k, 12, STO_K_OUT, 0);
	ck_assert_int_eq(sto_testing_put_raw(st, "adjacency", k, sizeof(k),
	                                     "A\x01\x01\x00\x03\xa0\x1f", 7),
	                 0);
	digest_of(st, d2);
	ck_assert_str_ne(d1, d2);
}
END_TEST

/* ---- batching changes nothing ----------------------------------------------
 * The same mutations applied as a few large batches (chunks staged in
 * memory, records and vectors written past the indexed batch when a batch
 * only creates) and one mutation per batch leave the same bytes in every
 * graph column family, range-index entries included. */

#define SAME_NODES 40
#define SAME_OPS   3000

static const char *const same_cfs[] = {"nodes", "edges", "vectors", "index",
                                       "adjacency"};

/* Op i of the workload (seeded): creations of nodes (with a vector, a
 * repeated vector key on some), edges (two thirds on node 1, so its lists
 * span chunks), deletions of live edges, some of them created by the same
 * batch, and one detach delete. */
static void same_op(Lora__MutationBatch *b, int i, int descending,
                    struct model *m)
{
	if (i < SAME_NODES) {
		uint64_t id =
		    descending ? SAME_NODES - (uint64_t)i : 1 + (uint64_t)i;
		float x[3] = {(float)id, 1, 2}, y[3] = {0, (float)id, 5};
		if (id % 7)
			add_create_node(b, id, "N", 2, "emb", v_vec(3, x),
			                "name", v_str("n"));
		else /* the second value wins */
			add_create_node(b, id, "N", 2, "emb", v_vec(3, x),
			                "emb", v_vec(3, y));
		return;
	}
	uint64_t e = m->next > 1 ? model_pick(m) : 0;
	int r = rand() % 10;
	if (i == SAME_OPS - 1) {
		add_delete_node(b, 2, 1);
		for (uint64_t k = 1; k < m->next; k++)
			if (m->from[k] == 2 || m->to[k] == 2)
				m->live[k] = 0;
	} else if (r < 3 && e) {
		m->live[e] = 0;
		add_delete_edge(b, e);
	} else {
		uint64_t id = m->next++;
		uint64_t other = 1 + (uint64_t)(rand() % SAME_NODES);
		m->from[id] = r < 6 ? 1 : other;
		m->to[id] = r < 6 ? other : 1 + (uint64_t)(rand() % SAME_NODES);
		m->type[id] = rand() % 2;
		m->live[id] = 1;
		add_create_edge(b, id, types[m->type[id]], m->from[id],
		                m->to[id], 1, "w", v_int(i));
	}
}

/* Applies the workload to s, batch_ops mutations per batch. */
static void same_run(struct sto_store *s, unsigned seed, int batch_ops,
                     int descending, struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->next = 1;
	srand(seed);
	/* a range index on the nodes' names: its entries come from both
	 * paths */
	Lora__MutationBatch *b = batch_new();
	add_create_index(b, "n_name", LORA__INDEX_KIND__INDEX_RANGE, "N",
	                 "name", 0);
	ck_assert_int_eq(apply_to(s, b), 0);
	b = batch_new();
	for (int i = 0; i < SAME_OPS; i++) {
		same_op(b, i, descending, m);
		if (b->n_mutations == (size_t)batch_ops || i == SAME_OPS - 1 ||
		    i == SAME_NODES - 1) {
			ck_assert_int_eq(apply_to(s, b), 0);
			b = batch_new();
		}
	}
	batch_free(b);
}

START_TEST(batching_changes_no_byte)
{
	unsigned seed = test_seed("batching_changes_no_byte");
	static struct model m1, m2;
	char msg[LORA_ERRMSG_BYTES] = "", p[512];
	struct sto_store *s2;
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof(p), dir, "one"), NULL, &s2, msg), 0);
	/* st: nodes in one descending batch (the general path), then 500
	 * mutations a batch; s2: one mutation a batch, nodes ascending. */
	same_run(st, seed, 500, 1, &m1);
	same_run(s2, seed, 1, 0, &m2);
	ck_assert_uint_eq(m1.next, m2.next);
	ck_assert_uint_gt(m1.next, 1000);
	for (size_t i = 0; i < sizeof(same_cfs) / sizeof(same_cfs[0]); i++) {
		struct lora_buf a = {0}, c = {0};
		ck_assert_int_eq(sto_testing_dump_raw(st, same_cfs[i], &a), 0);
		ck_assert_int_eq(sto_testing_dump_raw(s2, same_cfs[i], &c), 0);
		if (a.len != c.len || memcmp(a.data, c.data, a.len))
			ck_abort_msg("column family %s differs (%zu, %zu "
			             "bytes)",
			             same_cfs[i], a.len, c.len);
		lora_buf_free(&a);
		lora_buf_free(&c);
	}
	check_model(st, &m1);
	/* A repeated vector key: one vector, the second value. */
	struct sto_view *v;
	Lora__NodeValue *n = NULL;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_node(v, 7, &n), 0);
	ck_assert_ptr_nonnull(n);
	const Lora__Value *emb = node_prop(n, "emb");
	ck_assert_ptr_nonnull(emb);
	ck_assert_int_eq(emb->kind_case, LORA__VALUE__KIND_VECTOR_VALUE);
	ck_assert_uint_eq(emb->vector_value->n_f32, 3);
	ck_assert_float_eq(emb->vector_value->f32[1], 7.0f);
	lora__node_value__free_unpacked(n, &lora_pb_allocator);
	sto_view_close(v);
	sto_close(s2);
}
END_TEST

/* The adjacency CF's memtable is a hash on the node id: whole-CF scans
 * (the digest, raw dumps) must see every list while it still sits there,
 * and see the same after the flush to a table file. */
START_TEST(memtable_lists_scan_whole)
{
	unsigned seed = test_seed("memtable_lists_scan_whole");
	static struct model m;
	char msg[LORA_ERRMSG_BYTES] = "";
	same_run(st, seed, 500, 0, &m);
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	struct lora_buf a = {0}, c = {0};
	digest_of(st, d1);
	ck_assert_int_eq(sto_testing_dump_raw(st, "adjacency", &a), 0);
	size_t keys = 0;
	for (size_t off = 0; off + 8 <= a.len; keys++)
		off += 8 + lora_get_be32((uint8_t *)a.data + off) +
		       lora_get_be32((uint8_t *)a.data + off + 4);
	/* every node of the workload has a list in some direction */
	ck_assert_uint_ge(keys, SAME_NODES / 2);
	ck_assert_int_eq(sto_compact(st, msg), 0);
	digest_of(st, d2);
	ck_assert_str_eq(d1, d2);
	ck_assert_int_eq(sto_testing_dump_raw(st, "adjacency", &c), 0);
	ck_assert_uint_eq(a.len, c.len);
	ck_assert(!memcmp(a.data, c.data, a.len));
	lora_buf_free(&a);
	lora_buf_free(&c);
	check_model(st, &m);
}
END_TEST

/* The adjacency CF's memtable as RocksDB recorded it in the store's
 * OPTIONS file: hash-linked lists of 2^20 buckets, without the bucket
 * histogram every flush and digest would otherwise build under a mutex
 * (log_when_flash, on with RocksDB's C setter). */
START_TEST(adjacency_memtable_options)
{
	DIR *d = opendir(statedir);
	ck_assert_ptr_nonnull(d);
	char name[600] = "";
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (!strncmp(e->d_name, "OPTIONS-", 8) &&
		    strcmp(e->d_name, name) > 0) /* the newest */
			snprintf(name, sizeof name, "%s", e->d_name);
	closedir(d);
	ck_assert_msg(name[0], "no OPTIONS file in %s", statedir);
	char p[1200];
	FILE *f = fopen(path_join(p, sizeof p, statedir, name), "r");
	ck_assert_ptr_nonnull(f);
	static char text[1 << 20];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	const char *cf = strstr(text, "[CFOptions \"adjacency\"]");
	ck_assert_ptr_nonnull(cf);
	const char *end = strstr(cf + 1, "[CFOptions");
	const char *mf = strstr(cf, "memtable_factory=");
	ck_assert_msg(mf && (!end || mf < end), "no memtable_factory");
	const char *eol = strchr(mf, '\n');
	ck_assert_ptr_nonnull(eol);
	char line[512];
	snprintf(line, sizeof line, "%.*s", (int)(eol - mf), mf);
	ck_assert_msg(strstr(line, "HashLinkListRepFactory"), "%s", line);
	ck_assert_msg(strstr(line, "bucket_count=1048576"), "%s", line);
	ck_assert_msg(strstr(line, "log_when_flash=false"), "%s", line);
}
END_TEST

/* Applies b, which must be rejected with `code`, and checks that the
 * store's digest did not move. */
static void rejected_as(Lora__MutationBatch *b, int code)
{
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	digest_of(st, d1);
	ck_assert_int_eq(apply_to(st, b), code);
	digest_of(st, d2);
	ck_assert_str_eq(d1, d2);
}

/* Batches that only create write their records past the indexed batch:
 * every check a creation makes still sees what it saw before. */
START_TEST(only_creates_keeps_checks)
{
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= 3; i++)
		add_create_node(b, i, "A", 1, "k", v_int((int64_t)i));
	ck_assert_int_eq(apply_to(st, b), 0);
	b = batch_new(); /* new nodes and an edge between them */
	add_create_node(b, 10, "A", 1, "k", v_int(10));
	add_create_node(b, 11, "A", 1, "k", v_int(11));
	add_create_edge(b, 1, "R", 10, 11, 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	b = batch_new(); /* an end created only after the edge */
	add_create_edge(b, 2, "R", 1, 12, 0);
	add_create_node(b, 12, "A", 0);
	rejected_as(b, LORA_ENOTFOUND);
	b = batch_new(); /* one edge id twice in a batch */
	add_create_edge(b, 5, "R", 1, 2, 0);
	add_create_edge(b, 5, "R", 2, 3, 0);
	rejected_as(b, LORA_EEXIST);
	b = batch_new(); /* one node id twice in a batch */
	add_create_node(b, 20, "A", 0);
	add_create_node(b, 20, "A", 0);
	rejected_as(b, LORA_EEXIST);
	b = batch_new(); /* ids the store has, ascending after them */
	add_create_node(b, 3, "A", 0);
	add_create_node(b, 30, "A", 0);
	rejected_as(b, LORA_EEXIST);
	b = batch_new();
	add_create_edge(b, 1, "R", 1, 2, 0);
	add_create_edge(b, 7, "R", 1, 2, 0);
	rejected_as(b, LORA_EEXIST);
	/* With a node constraint the batch's nodes are read back to check
	 * it: a node without the property is refused by the constraint. */
	b = batch_new();
	add_create_index(b, "a_k", LORA__INDEX_KIND__INDEX_EXISTS, "A", "k", 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	b = batch_new();
	add_create_node(b, 40, "A", 1, "k", v_int(40));
	add_create_node(b, 41, "A", 0);
	rejected_as(b, LORA_ECONSTRAINT);
	b = batch_new();
	add_create_node(b, 40, "A", 1, "k", v_int(40));
	ck_assert_int_eq(apply_to(st, b), 0);
	struct sto_view *v;
	Lora__NodeValue *n = NULL;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_node(v, 40, &n), 0);
	ck_assert_int_eq(node_prop(n, "k")->int_value, 40);
	lora__node_value__free_unpacked(n, &lora_pb_allocator);
	ck_assert_int_eq(sto_view_node(v, 41, &n), LORA_ENOTFOUND);
	ck_assert_int_eq(sto_view_node(v, 12, &n), LORA_ENOTFOUND);
	sto_view_close(v);
}
END_TEST

START_TEST(rejected_batch_leaves_chunks)
{
	static struct model m;
	memset(&m, 0, sizeof(m));
	m.next = 1;
	srand(7);
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= MODEL_NODES; i++)
		add_create_node(b, i, "N", 0);
	for (int i = 0; i < 300; i++)
		model_add(&m, b);
	ck_assert_int_eq(apply_to(st, b), 0);
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	digest_of(st, d1);
	/* 300 more edges and deletions, then an edge to a missing node. */
	struct model scratch = m;
	b = batch_new();
	for (int i = 0; i < 300; i++)
		model_add(&scratch, b);
	for (uint64_t e = 1; e < 200; e += 3)
		add_delete_edge(b, e);
	add_create_edge(b, scratch.next, "A", 1, 999, 0);
	ck_assert_int_eq(apply_to(st, b), LORA_ENOTFOUND);
	digest_of(st, d2);
	ck_assert_str_eq(d1, d2);
	check_model(st, &m);
	/* Deleting a node with edges without detach is refused. */
	b = batch_new();
	add_delete_node(b, 1, 0);
	ck_assert_int_eq(apply_to(st, b), LORA_ECONSTRAINT);
	check_model(st, &m);
}
END_TEST

/* apply looks an edge's end up only when its list in that direction is
 * empty (a list with entries proves the node): every missing end is still
 * refused, whichever lists the other end has, and leaves nothing. */
static void refused_unchanged(Lora__MutationBatch *b)
{
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	digest_of(st, d1);
	ck_assert_int_eq(apply_to(st, b), LORA_ENOTFOUND);
	digest_of(st, d2);
	ck_assert_str_eq(d1, d2);
}

START_TEST(edge_ends_must_exist)
{
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= 3; i++)
		add_create_node(b, i, "N", 0);
	add_create_edge(b, 1, "A", 1, 2, 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	/* 1 has outgoing entries, 2 incoming ones */
	b = batch_new();
	add_create_edge(b, 2, "A", 1, 999, 0);
	refused_unchanged(b);
	b = batch_new();
	add_create_edge(b, 2, "A", 999, 2, 0);
	refused_unchanged(b);
	b = batch_new();
	add_create_edge(b, 2, "A", 77, 77, 0);
	refused_unchanged(b);
	/* a node deleted earlier in the same batch is gone for the edge */
	b = batch_new();
	add_delete_node(b, 1, 1);
	add_create_edge(b, 2, "A", 1, 2, 0);
	refused_unchanged(b);
	b = batch_new();
	add_delete_node(b, 2, 1);
	add_create_edge(b, 2, "A", 1, 2, 0);
	refused_unchanged(b);
	/* ends with no list in the edge's direction, and a self-loop */
	b = batch_new();
	add_create_edge(b, 2, "A", 2, 1, 0);
	add_create_edge(b, 3, "A", 3, 3, 0);
	add_create_edge(b, 4, "A", 1, 2, 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	static struct model m;
	memset(&m, 0, sizeof(m));
	m.next = 5;
	uint64_t ends[5][2] = {{0, 0}, {1, 2}, {2, 1}, {3, 3}, {1, 2}};
	for (int e = 1; e <= 4; e++) {
		m.live[e] = 1;
		m.from[e] = ends[e][0];
		m.to[e] = ends[e][1];
	}
	check_model(st, &m);
}
END_TEST

/* The store remembers nodes it created or found as edge ends so that a
 * load's edges skip the read; a delete, a rejected batch or a write past
 * apply must not leave a node remembered that is gone. */
START_TEST(known_nodes_follow_deletes)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= 4; i++)
		add_create_node(b, i, "N", 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	/* deleted in a later batch (3 has no list in any direction) */
	b = batch_new();
	add_delete_node(b, 3, 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	b = batch_new();
	add_create_edge(b, 1, "A", 3, 4, 0);
	refused_unchanged(b);
	/* created and deleted in one batch */
	b = batch_new();
	add_create_node(b, 5, "N", 0);
	add_delete_node(b, 5, 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	b = batch_new();
	add_create_edge(b, 1, "A", 5, 4, 0);
	refused_unchanged(b);
	/* created by a batch that was rejected */
	b = batch_new();
	add_create_node(b, 6, "N", 0);
	add_create_edge(b, 1, "A", 6, 999, 0);
	refused_unchanged(b);
	b = batch_new();
	add_create_edge(b, 1, "A", 6, 4, 0);
	refused_unchanged(b);
	/* a rejected delete leaves the node, remembered or not */
	b = batch_new();
	add_delete_node(b, 1, 0);
	add_create_edge(b, 1, "A", 2, 999, 0);
	refused_unchanged(b);
	/* an edge to a node found by a read, then the same node removed
	 * behind apply's back */
	b = batch_new();
	add_create_node(b, 7, "N", 0);
	add_create_edge(b, 1, "A", 1, 2, 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	uint8_t k[8];
	lora_put_be64(k, 7);
	ck_assert_int_eq(sto_testing_del_raw(st, "nodes", k, 8), 0);
	b = batch_new();
	add_create_edge(b, 2, "A", 7, 4, 0);
	refused_unchanged(b);
	/* after a reopen nothing is remembered: reads decide */
	sto_close(st);
	ck_assert_int_eq(sto_open(statedir, NULL, &st, msg), 0);
	b = batch_new();
	add_create_edge(b, 2, "A", 4, 1, 0);
	add_create_edge(b, 3, "A", 2, 4, 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	b = batch_new();
	add_create_edge(b, 4, "A", 3, 1, 0);
	refused_unchanged(b);
}
END_TEST

/* ---- corrupt chunk bytes --------------------------------------------------
 */

static void chunk_key(uint8_t k[STO_ADJ_KEY_BYTES], uint64_t node, uint32_t no)
{
	sto_key_adj(k, node, STO_K_OUT, no);
}

/* Scanning node 1 gives LORA_ECORRUPT, and so does (when apply is set)
 * applying an edge from it, which then writes nothing. */
static void expect_corrupt(const char *what, int apply)
{
	struct sto_view *v;
	struct sto_iter *it;
	struct sto_item item;
	int done, rv;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_scan_adjacent(v, 1, STO_BOTH, NULL, &it), 0);
	while (!(rv = sto_iter_next(it, &item, &done)) && !done)
		;
	ck_assert_msg(rv == LORA_ECORRUPT, "%s: scan gave %d", what, rv);
	/* The error ended the scan. */
	ck_assert_int_eq(sto_iter_next(it, &item, &done), 0);
	ck_assert_int_eq(done, 1);
	sto_iter_free(it);
	sto_view_close(v);
	if (!apply)
		return;
	/* twice: what apply read of a corrupt chunk (an empty value too)
	 * must not answer the next batch from its chunk cache */
	for (int i = 0; i < 2; i++) {
		uint64_t before = sto_applied_index(st);
		Lora__MutationBatch *b = batch_new();
		add_create_edge(b, 500, "A", 1, 2, 0);
		rv = apply_to(st, b);
		ck_assert_msg(rv == LORA_ECORRUPT, "%s: apply %d gave %d", what,
		              i, rv);
		ck_assert_uint_eq(sto_applied_index(st), before);
	}
}

START_TEST(corrupt_chunks_give_errors)
{
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "N", 0);
	add_create_node(b, 2, "N", 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	uint8_t k[STO_ADJ_KEY_BYTES];
	chunk_key(k, 1, 0);
	/* A valid chunk 0 with five entries, cut at every length. */
	struct lora_buf good = {0};
	lora_buf_putc(&good, STO_ADJ_CHUNK0_MAGIC);
	sto_put_uvarint(&good, 1);
	sto_put_uvarint(&good, 5);
	for (uint64_t i = 0; i < 5; i++) {
		sto_put_uvarint(&good, 0);
		sto_put_uvarint(&good, 2);
		sto_put_uvarint(&good, 1000 + i * 300);
	}
	for (size_t len = 0; len < good.len; len++) {
		char what[64];
		snprintf(what, sizeof(what), "truncated to %zu bytes", len);
		ck_assert_int_eq(sto_testing_put_raw(st, "adjacency", k,
		                                     sizeof(k), good.data, len),
		                 0);
		expect_corrupt(what, 1);
	}
	static const struct {
		const char *what;
		const char *bytes;
		size_t len;
	} bad[] = {
	    {"wrong magic", "C\x01\x01\x00\x02\x05", 6},
	    {"zero chunks", "A\x00\x01\x00\x02\x05", 6},
	    {"bytes after the entries", "A\x01\x01\x00\x02\x05\x07", 7},
	    {"too many entries", "A\x01\xff\x7f\x00\x02\x05", 7},
	    {"type over 32 bits", "A\x01\x01\xff\xff\xff\xff\x7f\x02\x05", 10},
	    {"varint too long",
	     "A\x01\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x05",
	     16},
	    {"unknown type token", "A\x01\x01\x09\x02\x05", 6},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(sto_testing_put_raw(st, "adjacency", k,
		                                     sizeof(k), bad[i].bytes,
		                                     bad[i].len),
		                 0);
		/* The apply path does not look up type names. */
		expect_corrupt(bad[i].what, i < 6);
		char d[STO_DIGEST_HEX_BYTES], msg[LORA_ERRMSG_BYTES];
		ck_assert_int_eq(sto_digest(st, d, msg), LORA_ECORRUPT);
	}
	/* Chunk 0 announces two chunks; chunk 1 is missing. */
	ck_assert_int_eq(sto_testing_put_raw(st, "adjacency", k, sizeof(k),
	                                     "A\x02\x01\x00\x02\x05", 6),
	                 0);
	expect_corrupt("missing chunk 1", 1);
	/* Chunk 1 present but with chunk 0's magic. */
	chunk_key(k, 1, 1);
	ck_assert_int_eq(sto_testing_put_raw(st, "adjacency", k, sizeof(k),
	                                     "A\x01\x01\x00\x02\x05", 6),
	                 0);
	expect_corrupt("chunk 1 with chunk 0's header", 1);
	lora_buf_free(&good);
}
END_TEST

/* ---- format marker --------------------------------------------------------
 */

START_TEST(old_format_is_refused)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "N", 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	sto_close(st);
	st = NULL;
	/* Reopening a current store works. */
	ck_assert_int_eq(sto_open(statedir, NULL, &st, msg), 0);
	/* A store without the marker (written before it existed). */
	char fk = STO_META_FORMAT;
	ck_assert_int_eq(sto_testing_del_raw(st, "meta", &fk, 1), 0);
	sto_close(st);
	st = NULL;
	ck_assert_int_eq(sto_open(statedir, NULL, &st, msg), LORA_EINVAL);
	ck_assert_ptr_ne(strstr(msg, "format 1"), NULL);
	ck_assert_ptr_eq(st, NULL);
	/* A marker of another version. */
	char p[512];
	struct sto_store *s2;
	path_join(p, sizeof(p), dir, "other");
	ck_assert_int_eq(sto_open(p, NULL, &s2, msg), 0);
	ck_assert_int_eq(
	    sto_testing_put_raw(s2, "meta", &fk, 1, "\x00\x00\x00\x07", 4), 0);
	sto_close(s2);
	ck_assert_int_eq(sto_open(p, NULL, &s2, msg), LORA_EINVAL);
	ck_assert_ptr_ne(strstr(msg, "format 7"), NULL);
}
END_TEST

/* ---- apply's chunk cache ---------------------------------------------------
 * Batches of creations (some of 16 or more edges, read by one MultiGet,
 * some fewer, read one by one) and deletions, every fourth batch rejected
 * after it changed chunks: each batch builds on the chunks the cache
 * gives it, so a cache holding a rejected batch's chunks, or missing a
 * committed one's, shows as a wrong scan. */
static void cache_rounds(struct sto_store *s, struct model *m, int rounds)
{
	for (int round = 0; round < rounds; round++) {
		struct model scratch = *m;
		int reject = round % 4 == 3;
		struct model *to = reject ? &scratch : m;
		Lora__MutationBatch *b = batch_new();
		int n = round % 2 ? 40 : 5;
		for (int i = 0; i < n; i++) {
			uint64_t e = model_pick(to);
			if (i % 3 == 2 && e) {
				to->live[e] = 0;
				add_delete_edge(b, e);
			} else {
				model_add(to, b);
			}
		}
		if (reject) /* an edge to a node that does not exist */
			add_create_edge(b, scratch.next++, "A", 2, 999, 0);
		ck_assert_int_eq(apply_to(s, b), reject ? LORA_ENOTFOUND : 0);
		check_model(s, m);
	}
}

static void cache_stats(struct sto_store *s, struct sto_adjc_stats *a)
{
	sto_adjc_stats(s->adjc, a);
}

START_TEST(chunk_cache_follows_commits)
{
	static struct model m;
	memset(&m, 0, sizeof(m));
	m.next = 1;
	srand(11);
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= MODEL_NODES; i++)
		add_create_node(b, i, "N", 0);
	for (int i = 0; i < 40; i++)
		model_add(&m, b);
	ck_assert_int_eq(apply_to(st, b), 0);
	struct sto_adjc_stats a0, a1;
	cache_stats(st, &a0);
	ck_assert_uint_gt(a0.entries, 0);
	/* The chunks batch 1 wrote are cached: 40 more edges between the
	 * same pairs read none from the store. */
	b = batch_new();
	for (uint64_t e = 1; e <= 40; e++) {
		uint64_t f = m.next++;
		m.from[f] = m.from[e];
		m.to[f] = m.to[e];
		m.type[f] = m.type[e];
		m.live[f] = 1;
		add_create_edge(b, f, types[m.type[f]], m.from[f], m.to[f], 0);
	}
	ck_assert_int_eq(apply_to(st, b), 0);
	cache_stats(st, &a1);
	ck_assert_uint_eq(a1.misses, a0.misses);
	ck_assert_uint_gt(a1.hits, a0.hits);
	check_model(st, &m);
	cache_rounds(st, &m, 24);
	/* A detach delete of the supernode, then edges to it again. */
	for (uint64_t e = 1; e < m.next; e++)
		if (m.from[e] == 1 || m.to[e] == 1)
			m.live[e] = 0;
	b = batch_new();
	add_delete_node(b, 1, 1);
	add_create_node(b, 1, "N", 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	check_model(st, &m);
	cache_rounds(st, &m, 8);
	/* The same graph as a store that never cached anything. */
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	struct sto_store *s2 = rebuild(&m, "rebuilt");
	digest_of(st, d1);
	digest_of(s2, d2);
	ck_assert_str_eq(d1, d2);
	sto_close(s2);
}
END_TEST

/* A cache too small for the graph's chunks evicts, stays within its
 * budget, and the store stays right. */
START_TEST(chunk_cache_small_budget)
{
	char msg[LORA_ERRMSG_BYTES] = "", p[512];
	struct sto_options o;
	sto_options_init(&o);
	o.adj_cache_bytes = 8192 + 1024; /* the table and a few entries */
	struct sto_store *s;
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof(p), dir, "small"), &o, &s, msg), 0);
	static struct model m;
	memset(&m, 0, sizeof(m));
	m.next = 1;
	srand(12);
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= MODEL_NODES; i++)
		add_create_node(b, i, "N", 0);
	for (int i = 0; i < 300; i++) /* node 1's chunks: ~1 KB */
		model_add(&m, b);
	ck_assert_int_eq(apply_to(s, b), 0);
	cache_rounds(s, &m, 24);
	struct sto_adjc_stats a;
	cache_stats(s, &a);
	ck_assert_uint_le(a.bytes, a.budget);
	ck_assert_uint_gt(a.evictions, 0);
	ck_assert_uint_gt(a.hits, 0);
	sto_close(s);
}
END_TEST

/* The cache alone against a model: random puts, drops and gets over few
 * keys (long probe runs, evictions moving entries back), a get answers
 * the last value put or nothing, never an older one. */
START_TEST(chunk_cache_never_stale)
{
	enum { KEYS = 3000, OPS = 200000 };
	static uint32_t ver[KEYS];  /* 0: dropped or never put */
	static uint8_t empty[KEYS]; /* the last put said "no key" */
	memset(ver, 0, sizeof ver);
	/* _i 0: the first table kept about half full by evictions; 1: room
	 * for every key, so the table doubles with entries in it */
	struct sto_adjc *a = sto_adjc_new(_i ? (size_t)1 << 20 : 8192 + 72000);
	ck_assert_ptr_nonnull(a);
	srand(13);
	for (int i = 0; i < OPS; i++) {
		int k = rand() % KEYS, op = rand() % 8;
		uint64_t node = (uint64_t)(k / 4);
		char dir = k % 2 ? STO_K_IN : STO_K_OUT;
		uint32_t no = (uint32_t)(k / 2 % 2);
		const char *v;
		size_t len;
		char want[160];
		if (op < 4) {
			ver[k] = (uint32_t)i + 1;
			empty[k] = rand() % 5 == 0;
			/* 3 to ~140 bytes: values outgrow their entry's room */
			size_t n =
			    (size_t)snprintf(want, sizeof want, "%d:%u:%0*d", k,
			                     ver[k], (int)(ver[k] % 128), 0);
			sto_adjc_put(a, node, dir, no, want, empty[k] ? 0 : n);
		} else if (op == 4) {
			ver[k] = 0;
			sto_adjc_drop(a, node, dir, no);
		}
		if (op == 4 || !sto_adjc_get(a, node, dir, no, &v, &len))
			continue;
		/* a hit: the last value put, exactly */
		ck_assert_uint_ne(ver[k], 0);
		size_t n = (size_t)snprintf(want, sizeof want, "%d:%u:%0*d", k,
		                            ver[k], (int)(ver[k] % 128), 0);
		ck_assert_uint_eq(len, empty[k] ? 0 : n);
		ck_assert_int_eq(memcmp(v, want, len), 0);
	}
	for (int k = 0; k < KEYS; k++) { /* dropped keys stay dropped */
		const char *v;
		size_t len;
		if (!ver[k])
			ck_assert_int_eq(
			    sto_adjc_get(a, (uint64_t)(k / 4),
			                 k % 2 ? STO_K_IN : STO_K_OUT,
			                 (uint32_t)(k / 2 % 2), &v, &len),
			    0);
	}
	struct sto_adjc_stats st_;
	sto_adjc_stats(a, &st_);
	ck_assert_uint_le(st_.bytes, st_.budget);
	if (_i)
		ck_assert_uint_gt(st_.entries, 1024); /* it grew */
	else
		ck_assert_uint_gt(st_.evictions, 1000);
	ck_assert_uint_gt(st_.hits, 1000);
	/* every key dropped: only the table's bytes are left */
	for (int k = 0; k < KEYS; k++)
		sto_adjc_drop(a, (uint64_t)(k / 4),
		              k % 2 ? STO_K_IN : STO_K_OUT,
		              (uint32_t)(k / 2 % 2));
	sto_adjc_stats(a, &st_);
	ck_assert_uint_eq(st_.entries, 0);
	ck_assert_uint_eq(st_.bytes, st_.slots * sizeof(void *));
	sto_adjc_free(a);
}
END_TEST

/* ---- hints (review s21-a F10)
 * A batch of at least ADJ_PREFETCH_EDGES_MIN (16) new relationships reads
 * the lists of their ends before it runs and hands each creation where
 * those lists are staged (apply_adj.c). */

/* The model's edges at node die (DETACH DELETE). */
static void model_detach(struct model *m, uint64_t node)
{
	for (uint64_t e = 1; e < m->next; e++)
		if (m->from[e] == node || m->to[e] == node)
			m->live[e] = 0;
}

/* One batch deletes the supernode with its lists, creates it again and
 * gives it 300 new relationships (out, in and self-loops), every 7th
 * deleted again in the same batch: no hint may outlive the lists the
 * detach emptied. */
START_TEST(hints_survive_detach_and_recreate)
{
	unsigned seed = test_seed("hints_survive_detach_and_recreate");
	srand(seed);
	static struct model m;
	supernode_graph(&m);
	Lora__MutationBatch *b;
	for (int round = 0; round < 4; round++) {
		b = batch_new();
		for (int i = 0; i < 20; i++)
			model_add(&m, b);
		for (int i = 0; i < 30; i++) {
			uint64_t e = model_pick(&m);
			if (e) {
				m.live[e] = 0;
				add_delete_edge(b, e);
			}
		}
		add_delete_node(b, 1, 1);
		model_detach(&m, 1);
		add_create_node(b, 1, "N", 0);
		for (int i = 0; i < 300; i++) {
			uint64_t e = m.next++,
			         other = 2 + (uint64_t)(rand() % 11);
			ck_assert_uint_lt(e, MODEL_EDGES_MAX);
			m.from[e] = i % 3 == 1 ? other : 1;
			m.to[e] = i % 3 == 0 ? other : 1;
			m.type[e] = rand() % 2;
			m.live[e] = 1;
			add_create_edge(b, e, types[m.type[e]], m.from[e],
			                m.to[e], 0);
			if (i % 7 == 6) {
				m.live[e] = 0;
				add_delete_edge(b, e);
			}
		}
		ck_assert_int_eq(apply_to(st, b), 0);
		check_model(st, &m);
	}
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	struct sto_store *s2 = rebuild(&m, "rebuilt");
	digest_of(st, d1);
	digest_of(s2, d2);
	ck_assert_str_eq(d1, d2);
	sto_close(s2);
}
END_TEST

/* A malformed mutation among the creations of a batch that takes hints
 * (a NULL mutation, or a creation without its message) rejects the batch
 * with LORA_EINVAL and leaves nothing of it. */
START_TEST(hinted_batch_with_malformed_mutation)
{
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= MODEL_NODES; i++)
		add_create_node(b, i, "N", 0);
	for (uint64_t e = 1; e <= 40; e++) /* lists on every node */
		add_create_edge(b, e, "A", 1 + e % MODEL_NODES,
		                1 + (e * 5) % MODEL_NODES, 0);
	ck_assert_int_eq(apply_to(st, b), 0);
	for (int shape = 0; shape < 2; shape++) {
		char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES],
		    msg[LORA_ERRMSG_BYTES] = "";
		digest_of(st, d1);
		b = batch_new();
		for (uint64_t e = 100; e < 130; e++)
			add_create_edge(b, e, "B", 1 + e % MODEL_NODES,
			                1 + (e * 7) % MODEL_NODES, 0);
		Lora__Mutation *m17 = b->mutations[17];
		if (shape == 0) { /* no mutation at all */
			b->mutations[17] = NULL;
		} else { /* a creation without its message */
			lora__create_edge__free_unpacked(m17->create_edge,
			                                 &lora_pb_allocator);
			m17->create_edge = NULL;
		}
		ck_assert_int_eq(
		    sto_apply(st, sto_applied_index(st) + 1, b, msg),
		    LORA_EINVAL);
		b->mutations[17] = m17;
		batch_free(b);
		digest_of(st, d2);
		ck_assert_str_eq(d1, d2);
	}
	/* and the next batch applies */
	b = batch_new();
	for (uint64_t e = 200; e < 220; e++)
		add_create_edge(b, e, "B", 1, 1 + e % MODEL_NODES, 0);
	ck_assert_int_eq(apply_to(st, b), 0);
}
END_TEST

/* 16 new relationships take hints, 15 do not: the same relationships as
 * one batch of 16, or as 15 and then 1, leave the same adjacency bytes. */
START_TEST(hint_threshold_changes_no_byte)
{
	char msg[LORA_ERRMSG_BYTES] = "", p[512];
	struct sto_store *s2;
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof(p), dir, "two"), NULL, &s2, msg), 0);
	struct sto_store *both[2] = {st, s2};
	for (int k = 0; k < 2; k++) {
		Lora__MutationBatch *b = batch_new();
		for (uint64_t i = 1; i <= MODEL_NODES; i++)
			add_create_node(b, i, "N", 0);
		for (uint64_t e = 1; e <= 700; e++) /* node 1: chunks */
			add_create_edge(b, e, "A", e % 3 ? 1 : 2,
			                1 + e % MODEL_NODES, 0);
		ck_assert_int_eq(apply_to(both[k], b), 0);
	}
	Lora__MutationBatch *b = batch_new(), *b15 = batch_new(),
	                    *b1 = batch_new();
	for (uint64_t e = 701; e <= 716; e++) {
		uint64_t from = e % 2 ? 1 : 1 + e % MODEL_NODES, to = e % 5 + 1;
		add_create_edge(b, e, "B", from, to, 0);
		add_create_edge(e < 716 ? b15 : b1, e, "B", from, to, 0);
	}
	ck_assert_int_eq(apply_to(st, b), 0);
	ck_assert_int_eq(apply_to(s2, b15), 0);
	ck_assert_int_eq(apply_to(s2, b1), 0);
	struct lora_buf x = {0}, y = {0};
	ck_assert_int_eq(sto_testing_dump_raw(st, "adjacency", &x), 0);
	ck_assert_int_eq(sto_testing_dump_raw(s2, "adjacency", &y), 0);
	ck_assert_uint_gt(x.len, 0);
	ck_assert(x.len == y.len && !memcmp(x.data, y.data, x.len));
	lora_buf_free(&x);
	lora_buf_free(&y);
	sto_close(s2);
}
END_TEST

static Suite *adj_suite(void)
{
	Suite *s = suite_create("storage_adjacency");
	TCase *t = tcase_create("adjacency");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 240);
	tcase_add_test(t, supernode_across_chunks);
	tcase_add_test(t, batching_changes_no_byte);
	tcase_add_test(t, memtable_lists_scan_whole);
	tcase_add_test(t, adjacency_memtable_options);
	tcase_add_test(t, only_creates_keeps_checks);
	tcase_add_test(t, rejected_batch_leaves_chunks);
	tcase_add_test(t, edge_ends_must_exist);
	tcase_add_test(t, known_nodes_follow_deletes);
	tcase_add_test(t, corrupt_chunks_give_errors);
	tcase_add_test(t, old_format_is_refused);
	tcase_add_test(t, chunk_cache_follows_commits);
	tcase_add_test(t, chunk_cache_small_budget);
	tcase_add_loop_test(t, chunk_cache_never_stale, 0, 2);
	tcase_add_test(t, hints_survive_detach_and_recreate);
	tcase_add_test(t, hinted_batch_with_malformed_mutation);
	tcase_add_test(t, hint_threshold_changes_no_byte);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(adj_suite());
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
