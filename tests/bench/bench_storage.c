/* bench_storage.c - storage throughput: node creations applied per second
 * (1,000,000 in batches of 1,000), then random adjacency reads on a graph
 * of 100,000 nodes and 1,000,000 edges, and the on-disk size.
 *
 * `bench_storage [dir] requests`: 300,000 entries (BENCH_REQ_ENTRIES) of
 * one node and one request id each (the ids of the last 100,000 entries
 * are kept, the default window), applies/s per 25,000 entries: once the window
 * is full every entry drops the ids of the one that left it, and that must cost
 * the same at the end as at the start.
 *
 * BENCH_BATCH_EDGES: edges per applied batch (default 1,000; an IN
 * TRANSACTIONS chunk of n rows is one batch of n edges). BENCH_READS:
 * adjacency reads per kind (default 1,000,000).
 *
 * Usage: bench_storage [dir] [create|adjacency|reads|requests] (dir
 * default: a fresh directory under /tmp, removed at the end; no mode:
 * creations and adjacency; "reads" reuses the graph a previous run left
 * in dir). Run it from a Release build. */
#include <sys/stat.h>
#include <time.h>

#include "../storage/sto_helpers.h"

#define CREATE_NODES 1000000
#define BATCH_NODES  1000
#define GRAPH_NODES  100000
#define GRAPH_EDGES  1000000
#define BATCH_EDGES  1000
#define ADJ_READS    1000000
#define REQ_ENTRIES  300000 /* BENCH_REQ_ENTRIES overrides */
#define REQ_STEP     25000

static uint64_t rng = 0x5eed;
static long adj_reads = ADJ_READS; /* BENCH_READS overrides, for tuning */
/* edges per applied batch (BENCH_BATCH_EDGES overrides: an IN TRANSACTIONS
 * chunk of that many rows, OF n ROWS, is one batch) */
static uint64_t batch_edges = BATCH_EDGES;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* CPU time of this thread: the machine may be shared, so rates are also
 * given per CPU-second of the thread doing the work ("on one core"). */
static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t apply_cpu_ns; /* summed by timed_apply */

static off_t du_total;

static int du_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)p, (void)f;
	if (flag == FTW_F)
		du_total += sb->st_size;
	return 0;
}

static double du_mib(const char *path)
{
	du_total = 0;
	nftw(path, du_one, 16, FTW_PHYS);
	return (double)du_total / (1 << 20);
}

static void die(const char *what, int rv, const char *msg)
{
	fprintf(stderr, "%s: %s: %s\n", what, lora_err_code(rv), msg);
	exit(1);
}

static struct sto_store *open_store(const char *dir, const char *name)
{
	char p[600], msg[LORA_ERRMSG_BYTES] = "";
	struct sto_store *s;
	int rv = sto_open(path_join(p, sizeof(p), dir, name), NULL, &s, msg);
	if (rv)
		die("open", rv, msg);
	return s;
}

/* Applies batch b as the next entry; returns the nanoseconds it took. */
static uint64_t timed_apply(struct sto_store *s, Lora__MutationBatch *b)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	uint64_t t0 = lora_now_ns(), c0 = cpu_ns();
	int rv = sto_apply(s, sto_applied_index(s) + 1, b, msg);
	uint64_t dt = lora_now_ns() - t0;
	apply_cpu_ns += cpu_ns() - c0;
	if (rv)
		die("apply", rv, msg);
	batch_free(b);
	return dt;
}

static Lora__MutationBatch *node_batch(uint64_t first, size_t n)
{
	Lora__MutationBatch *b = batch_new();
	char name[32];
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "person-%llu",
		         (unsigned long long)(first + i));
		add_create_node(b, first + i, "Person", 2, "name", v_str(name),
		                "age", v_int((int64_t)(rnd() % 100)));
	}
	return b;
}

static void bench_creations(const char *dir)
{
	struct sto_store *s = open_store(dir, "create");
	uint64_t ns = 0, wall0 = lora_now_ns();
	apply_cpu_ns = 0;
	for (uint64_t id = 1; id <= CREATE_NODES; id += BATCH_NODES)
		ns += timed_apply(s, node_batch(id, BATCH_NODES));
	double wall = (double)(lora_now_ns() - wall0) / 1e9;
	printf("node creations: %d in batches of %d: %.0f nodes/s applied "
	       "(wall: apply %.2f s, %.2f s with batch building), %.0f "
	       "nodes per CPU-second of the applying thread\n",
	       CREATE_NODES, BATCH_NODES, CREATE_NODES / (ns / 1e9), ns / 1e9,
	       wall, CREATE_NODES / (apply_cpu_ns / 1e9));
	sto_close(s);
	char p[600];
	printf("on-disk size after %d nodes: %.1f MiB\n", CREATE_NODES,
	       du_mib(path_join(p, sizeof(p), dir, "create")));
}

static void build_graph(struct sto_store *s)
{
	static const char *types[] = {"KNOWS", "LIKES", "FOLLOWS", "WORKS"};
	uint64_t ns = 0;
	for (uint64_t id = 1; id <= GRAPH_NODES; id += BATCH_NODES)
		ns += timed_apply(s, node_batch(id, BATCH_NODES));
	uint64_t ens = 0;
	apply_cpu_ns = 0;
	for (uint64_t id = 1; id <= GRAPH_EDGES; id += batch_edges) {
		Lora__MutationBatch *b = batch_new();
		for (uint64_t i = 0; i < batch_edges; i++)
			add_create_edge(b, id + i, types[rnd() % 4],
			                1 + rnd() % GRAPH_NODES,
			                1 + rnd() % GRAPH_NODES, 1, "w",
			                v_int((int64_t)i));
		ens += timed_apply(s, b);
	}
	printf("graph: %d nodes (%.0f nodes/s), %d edges in batches of %llu "
	       "(%.0f edges/s applied, %.0f per CPU-second)\n",
	       GRAPH_NODES, GRAPH_NODES / (ns / 1e9), GRAPH_EDGES,
	       (unsigned long long)batch_edges, GRAPH_EDGES / (ens / 1e9),
	       GRAPH_EDGES / (apply_cpu_ns / 1e9));
}

/* ADJ_READS reads of the adjacency of random nodes; returns items seen. */
static uint64_t adjacency_reads(struct sto_store *s, enum sto_dir dir,
                                const char *type, double *secs, double *cpu)
{
	struct sto_view *v;
	if (sto_view_open(s, &v))
		die("view", LORA_EIO, "");
	uint64_t items = 0, t0 = lora_now_ns(), c0 = cpu_ns();
	for (long i = 0; i < adj_reads; i++) {
		struct sto_iter *it;
		struct sto_item item;
		int done = 0, rv;
		rv = sto_view_scan_adjacent(v, 1 + rnd() % GRAPH_NODES, dir,
		                            type, &it);
		while (!rv && !(rv = sto_iter_next(it, &item, &done)) && !done)
			items++;
		if (rv)
			die("adjacency", rv, "");
		sto_iter_free(it);
	}
	*secs = (double)(lora_now_ns() - t0) / 1e9;
	*cpu = (double)(cpu_ns() - c0) / 1e9;
	sto_view_close(v);
	return items;
}

static void bench_adjacency(const char *dir, int build)
{
	struct sto_store *s = open_store(dir, "graph");
	if (build)
		build_graph(s);
	static const struct {
		enum sto_dir dir;
		const char *type, *what;
	} runs[] = {{STO_OUT, NULL, "outgoing, any type"},
	            {STO_BOTH, NULL, "both directions"},
	            {STO_OUT, "KNOWS", "outgoing, one type"}};
	for (size_t r = 0; r < 2 * sizeof(runs) / sizeof(runs[0]); r++) {
		size_t k = r % (sizeof(runs) / sizeof(runs[0]));
		if (k == 0 && r > 0) {
			char msg[LORA_ERRMSG_BYTES] = "";
			uint64_t t0 = lora_now_ns();
			int rv = sto_compact(s, msg);
			if (rv)
				die("compact", rv, msg);
			printf("sto_compact: %.2f s\n",
			       (double)(lora_now_ns() - t0) / 1e9);
		}
		double secs, cpu;
		uint64_t items =
		    adjacency_reads(s, runs[k].dir, runs[k].type, &secs, &cpu);
		printf("adjacency reads (%s%s): %ld in %.2f s: %.0f reads/s "
		       "(%.0f per CPU-second), %.0f edges/s (%.1f edges per "
		       "read)\n",
		       runs[k].what, r == k ? "" : ", compacted", adj_reads,
		       secs, adj_reads / secs, adj_reads / cpu, items / secs,
		       (double)items / adj_reads);
	}
	sto_close(s);
	char p[600];
	printf("on-disk size of the graph: %.1f MiB\n",
	       du_mib(path_join(p, sizeof(p), dir, "graph")));
}

/* Entries of one node and one request id each, after those the store
 * holds already (a dir used before continues). */
static void bench_requests(const char *dir)
{
	struct sto_store *s = open_store(dir, "requests");
	uint64_t entries = getenv("BENCH_REQ_ENTRIES")
	                       ? strtoull(getenv("BENCH_REQ_ENTRIES"), NULL, 10)
	                       : REQ_ENTRIES;
	char rid[32];
	uint64_t ns = 0;
	apply_cpu_ns = 0;
	uint64_t base = sto_applied_index(s);
	for (uint64_t i = 1; i <= entries; i++) {
		Lora__MutationBatch *b = batch_new();
		add_create_node(b, base + i, "R", 0);
		snprintf(rid, sizeof rid, "req-%llu",
		         (unsigned long long)(base + i));
		b->request_ids = lora_malloc(sizeof(char *));
		b->request_ids[0] = lora_malloc(strlen(rid) + 1);
		strcpy(b->request_ids[0], rid);
		b->n_request_ids = 1;
		ns += timed_apply(s, b);
		if (i % REQ_STEP == 0) {
			printf("request ids: entries %llu-%llu: %.0f applies/s "
			       "(%.0f per CPU-second)\n",
			       (unsigned long long)(i - REQ_STEP + 1),
			       (unsigned long long)i, REQ_STEP / (ns / 1e9),
			       REQ_STEP / (apply_cpu_ns / 1e9));
			ns = 0;
			apply_cpu_ns = 0;
		}
	}
	sto_close(s);
}

int main(int argc, char **argv)
{
	const char *only = argc > 2 ? argv[2] : "";
	if (getenv("BENCH_READS"))
		adj_reads = atol(getenv("BENCH_READS"));
	if (getenv("BENCH_BATCH_EDGES") &&
	    strtoull(getenv("BENCH_BATCH_EDGES"), NULL, 10) > 0)
		batch_edges = strtoull(getenv("BENCH_BATCH_EDGES"), NULL, 10);
	char *tmp = argc > 1 && argv[1][0] ? NULL : tmpdir_new();
	const char *dir = tmp ? tmp : argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("bench_storage: data in %s\n", dir);
	if (!only[0] || !strcmp(only, "create"))
		bench_creations(dir);
	if (!strcmp(only, "requests"))
		bench_requests(dir);
	else if (strcmp(only, "create"))
		bench_adjacency(dir, strcmp(only, "reads") != 0);
	if (tmp)
		tmpdir_free(tmp);
	return 0;
}
