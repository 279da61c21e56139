/* bench_query.c - query engine latency on a generated social graph:
 * N people (default 100,000) with id, name, city, age and a 128-dimension
 * float32 vector, 10*N random KNOWS edges. Prints the median latency of
 * point lookup by indexed property, 2-hop friends-of-friends count, count
 * grouped by city, shortestPath between two people and vector top-10;
 * then the time per row of one write statement that creates an edge per
 * row between two people found by indexed id (UNWIND $pairs ... MATCH ...
 * CREATE) at 1k, 10k and 100k rows, with the overlay's ops per row.
 * Before that, CONTAINS / ENDS WITH on the names by a label scan and
 * through a TEXT index (its build time too).
 *
 * usage: bench_query [people] [seed]   (run from a Release build)
 * Environment, for profiling: BENCH_QUERY_DB=dir keeps the loaded store in
 * dir and reuses it when run again with the same people count (the random
 * state after the load is kept with it, so the queries are the same);
 * BENCH_QUERY_ONLY=text runs only the lines whose name contains text;
 * BENCH_QUERY_REPS=n multiplies the repetitions; BENCH_UNWIND_ROWS=n runs
 * only the UNWIND statement of n rows (1000, 10000 or 100000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qint.h" /* g_ops_total */
#include "query.h"

#define DIMS                128
#define EDGES_PER_PERSON    10
#define BATCH_MUTATIONS_MAX 20000
#define CITIES              50

static struct sto_store *st;
static uint64_t applied;
static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* a batch under construction: arrays of mutations with their payloads */
struct bb {
	Lora__MutationBatch b;
	Lora__Mutation **m;
	size_t n;
};

static void flush(struct bb *bb)
{
	if (!bb->n)
		return;
	bb->b.n_mutations = bb->n;
	bb->b.mutations = bb->m;
	char em[LORA_ERRMSG_BYTES];
	int rc = sto_apply(st, ++applied, &bb->b, em);
	if (rc) {
		fprintf(stderr, "apply: %s\n", em);
		exit(1);
	}
	for (size_t i = 0; i < bb->n; i++) {
		Lora__Mutation *m = bb->m[i];
		if (m->op_case == LORA__MUTATION__OP_CREATE_NODE) {
			Lora__CreateNode *cn = m->create_node;
			for (size_t k = 0; k < cn->n_properties; k++) {
				Lora__Value *v = cn->properties[k]->value;
				if (v->kind_case ==
				    LORA__VALUE__KIND_VECTOR_VALUE) {
					free(v->vector_value->f32);
					free(v->vector_value);
				}
				if (v->kind_case ==
				    LORA__VALUE__KIND_STRING_VALUE)
					free(v->string_value);
				free(v);
				free(cn->properties[k]);
			}
			free(cn->properties);
			free(cn);
		} else {
			free(m->create_edge);
		}
		free(m);
	}
	bb->n = 0;
}

static void push(struct bb *bb, Lora__Mutation *m)
{
	bb->m[bb->n++] = m;
	if (bb->n == BATCH_MUTATIONS_MAX)
		flush(bb);
}

static Lora__Property *prop(const char *k, Lora__Value *v)
{
	Lora__Property *p = calloc(1, sizeof(*p));
	lora__property__init(p);
	p->key = (char *)k;
	p->value = v;
	return p;
}

static Lora__Value *ival(int64_t i)
{
	Lora__Value *v = calloc(1, sizeof(*v));
	lora__value__init(v);
	v->kind_case = LORA__VALUE__KIND_INT_VALUE;
	v->int_value = i;
	return v;
}

static Lora__Value *sval(const char *s)
{
	Lora__Value *v = calloc(1, sizeof(*v));
	lora__value__init(v);
	v->kind_case = LORA__VALUE__KIND_STRING_VALUE;
	v->string_value = strdup(s);
	return v;
}

static Lora__Value *vecval(void)
{
	Lora__Value *v = calloc(1, sizeof(*v));
	lora__value__init(v);
	Lora__Vector *x = calloc(1, sizeof(*x));
	lora__vector__init(x);
	x->coord_type = LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT32;
	x->dimension = DIMS;
	x->n_f32 = DIMS;
	x->f32 = malloc(sizeof(float) * DIMS);
	for (int i = 0; i < DIMS; i++)
		x->f32[i] = (float)((double)(rnd() % 2000) / 1000.0 - 1.0);
	v->kind_case = LORA__VALUE__KIND_VECTOR_VALUE;
	v->vector_value = x;
	return v;
}

static void person(struct bb *bb, uint64_t id)
{
	static char *labels[] = {"Person"};
	char name[32], city[32];
	snprintf(name, sizeof name, "p%llu", (unsigned long long)id);
	snprintf(city, sizeof city, "city%llu",
	         (unsigned long long)(rnd() % CITIES));
	Lora__CreateNode *cn = calloc(1, sizeof(*cn));
	lora__create_node__init(cn);
	cn->id = id;
	cn->n_labels = 1;
	cn->labels = labels;
	cn->n_properties = 5;
	cn->properties = calloc(5, sizeof(Lora__Property *));
	cn->properties[0] = prop("id", ival((int64_t)id));
	cn->properties[1] = prop("name", sval(name));
	cn->properties[2] = prop("city", sval(city));
	cn->properties[3] = prop("age", ival((int64_t)(18 + rnd() % 60)));
	cn->properties[4] = prop("emb", vecval());
	Lora__Mutation *m = calloc(1, sizeof(*m));
	lora__mutation__init(m);
	m->op_case = LORA__MUTATION__OP_CREATE_NODE;
	m->create_node = cn;
	push(bb, m);
}

static void knows(struct bb *bb, uint64_t id, uint64_t a, uint64_t b)
{
	Lora__CreateEdge *ce = calloc(1, sizeof(*ce));
	lora__create_edge__init(ce);
	ce->id = id;
	ce->type = "KNOWS";
	ce->from_id = a;
	ce->to_id = b;
	Lora__Mutation *m = calloc(1, sizeof(*m));
	lora__mutation__init(m);
	m->op_case = LORA__MUTATION__OP_CREATE_EDGE;
	m->create_edge = ce;
	push(bb, m);
}

/* the most memory one statement of run() held (qry_cursor_mem_peak) */
static uint64_t run_peak;

/* runs q once with $a, $b (ints) and $q (vector list); returns ns */
static uint64_t run(const char *q, int64_t a, int64_t b, int show)
{
	Lora__Value va = LORA__VALUE__INIT, vb = LORA__VALUE__INIT,
	            vq = LORA__VALUE__INIT;
	va.kind_case = vb.kind_case = LORA__VALUE__KIND_INT_VALUE;
	va.int_value = a;
	vb.int_value = b;
	Lora__Value items[DIMS], *ip[DIMS];
	for (int i = 0; i < DIMS; i++) {
		lora__value__init(&items[i]);
		items[i].kind_case = LORA__VALUE__KIND_FLOAT_VALUE;
		items[i].float_value = (double)(rnd() % 2000) / 1000.0 - 1.0;
		ip[i] = &items[i];
	}
	Lora__ValueList l = LORA__VALUE_LIST__INIT;
	l.n_items = DIMS;
	l.items = ip;
	vq.kind_case = LORA__VALUE__KIND_LIST_VALUE;
	vq.list_value = &l;
	Lora__MapEntry ea = LORA__MAP_ENTRY__INIT, eb = LORA__MAP_ENTRY__INIT,
	               eq = LORA__MAP_ENTRY__INIT;
	ea.key = "a";
	ea.value = &va;
	eb.key = "b";
	eb.value = &vb;
	eq.key = "q";
	eq.value = &vq;
	Lora__MapEntry *es[] = {&ea, &eb, &eq};
	Lora__ValueMap pm = LORA__VALUE_MAP__INIT;
	pm.n_entries = 3;
	pm.entries = es;
	struct sto_view *v;
	sto_view_open(st, &v);
	struct qry_request req = {0};
	qry_limits_init(&req.limits);
	req.query = q;
	req.params = &pm;
	req.view = v;
	uint64_t t0 = lora_now_ns();
	struct qry_cursor *c;
	struct qry_error err;
	int rc = qry_open(&req, &c, &err);
	if (rc) {
		fprintf(stderr, "%s: %s\n", q, err.message);
		exit(1);
	}
	size_t rows = 0;
	for (;;) {
		const Lora__Value *const *row;
		int done;
		if (qry_cursor_next(c, &row, &done, &err)) {
			fprintf(stderr, "%s: %s\n", q, err.message);
			exit(1);
		}
		if (done)
			break;
		if (show && rows < 3) {
			struct lora_buf bf = {0};
			qry_value_format(row[0], &bf);
			printf("    row: %s\n", bf.data);
			lora_buf_free(&bf);
		}
		rows++;
	}
	uint64_t dt = lora_now_ns() - t0;
	if (qry_cursor_mem_peak(c) > run_peak)
		run_peak = qry_cursor_mem_peak(c);
	qry_cursor_free(c);
	sto_view_close(v);
	return dt;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* the calling thread's CPU time: the statements run on it, while RocksDB
 * compacts on others */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *only;
static int rep_mul = 1;

static void measure(const char *name, const char *q, int reps, int n)
{
	if (only && !strstr(name, only))
		return;
	reps *= rep_mul;
	uint64_t *t = calloc((size_t)reps * 2, sizeof(uint64_t)),
	         *cpu = t + reps;
	run_peak = 0;
	for (int i = 0; i < reps; i++) {
		uint64_t c0 = thread_cpu_ns();
		t[i] = run(q, (int64_t)(rnd() % (uint64_t)n),
		           (int64_t)(rnd() % (uint64_t)n), i == 0);
		cpu[i] = thread_cpu_ns() - c0;
	}
	qsort(t, (size_t)reps, sizeof(uint64_t), cmp_u64);
	qsort(cpu, (size_t)reps, sizeof(uint64_t), cmp_u64);
	printf("%-28s median %10.3f ms  (min %.3f, max %.3f, %d runs; thread "
	       "CPU median %.3f ms; statement memory peak %.1f MiB)\n",
	       name, (double)t[reps / 2] / 1e6, (double)t[0] / 1e6,
	       (double)t[reps - 1] / 1e6, reps, (double)cpu[reps / 2] / 1e6,
	       (double)run_peak / (1 << 20));
	free(t);
}

/* Sets age of person id (a write: a new generation of the node side, so
 * the next exact vector query rebuilds its vector column) */
static void touch(uint64_t id)
{
	Lora__SetProperty sp = LORA__SET_PROPERTY__INIT;
	sp.entity = LORA__ENTITY_KIND__ENTITY_NODE;
	sp.id = id;
	sp.key = "age";
	Lora__Value v = LORA__VALUE__INIT;
	v.kind_case = LORA__VALUE__KIND_INT_VALUE;
	v.int_value = (int64_t)(18 + rnd() % 60);
	sp.value = &v;
	Lora__Mutation m = LORA__MUTATION__INIT, *mp = &m;
	m.op_case = LORA__MUTATION__OP_SET_PROPERTY;
	m.set_property = &sp;
	Lora__MutationBatch b = LORA__MUTATION_BATCH__INIT;
	b.n_mutations = 1;
	b.mutations = &mp;
	char em[LORA_ERRMSG_BYTES];
	if (sto_apply(st, sto_applied_index(st) + 1, &b, em)) {
		fprintf(stderr, "apply: %s\n", em);
		exit(1);
	}
}

/* measure() with a write before each run (read-after-write: every run
 * rebuilds what a generation of the node side keeps); the write is not
 * timed */
static void measure_after_write(const char *name, const char *q, int reps,
                                int n)
{
	if (only && !strstr(name, only))
		return;
	reps *= rep_mul;
	uint64_t *t = calloc((size_t)reps * 2, sizeof(uint64_t)),
	         *cpu = t + reps;
	for (int i = 0; i < reps; i++) {
		touch(rnd() % (uint64_t)n);
		uint64_t c0 = thread_cpu_ns();
		t[i] = run(q, 0, 0, 0);
		cpu[i] = thread_cpu_ns() - c0;
	}
	qsort(t, (size_t)reps, sizeof(uint64_t), cmp_u64);
	qsort(cpu, (size_t)reps, sizeof(uint64_t), cmp_u64);
	struct sto_memory m;
	sto_memory(st, &m);
	printf("%-28s median %10.3f ms  (min %.3f, max %.3f, %d runs; thread "
	       "CPU median %.3f ms; block cache %.1f MiB)\n",
	       name, (double)t[reps / 2] / 1e6, (double)t[0] / 1e6,
	       (double)t[reps - 1] / 1e6, reps, (double)cpu[reps / 2] / 1e6,
	       (double)m.block_cache / 1048576.0);
	free(t);
}

/* One statement creating an edge per pair (rows pairs of random people,
 * given as $pairs), executed but not applied; returns its wall time, adds
 * its CPU time to *cpu and its overlay ops to *ops. */
static uint64_t run_unwind(int rows, int n, uint64_t *cpu, uint64_t *ops)
{
	Lora__Value *ints = calloc((size_t)rows * 2, sizeof(Lora__Value));
	Lora__Value **ip = calloc((size_t)rows * 2, sizeof(Lora__Value *));
	Lora__Value *pairs = calloc((size_t)rows, sizeof(Lora__Value));
	Lora__Value **pp = calloc((size_t)rows, sizeof(Lora__Value *));
	Lora__ValueList *pl = calloc((size_t)rows, sizeof(Lora__ValueList));
	for (int i = 0; i < rows; i++) {
		for (int k = 0; k < 2; k++) {
			Lora__Value *v = &ints[2 * i + k];
			lora__value__init(v);
			v->kind_case = LORA__VALUE__KIND_INT_VALUE;
			v->int_value = (int64_t)(rnd() % (uint64_t)n);
			ip[2 * i + k] = v;
		}
		lora__value_list__init(&pl[i]);
		pl[i].n_items = 2;
		pl[i].items = &ip[2 * i];
		lora__value__init(&pairs[i]);
		pairs[i].kind_case = LORA__VALUE__KIND_LIST_VALUE;
		pairs[i].list_value = &pl[i];
		pp[i] = &pairs[i];
	}
	Lora__ValueList all = LORA__VALUE_LIST__INIT;
	all.n_items = (size_t)rows;
	all.items = pp;
	Lora__Value va = LORA__VALUE__INIT;
	va.kind_case = LORA__VALUE__KIND_LIST_VALUE;
	va.list_value = &all;
	Lora__MapEntry e = LORA__MAP_ENTRY__INIT, *es[] = {&e};
	e.key = "pairs";
	e.value = &va;
	Lora__ValueMap pm = LORA__VALUE_MAP__INIT;
	pm.n_entries = 1;
	pm.entries = es;
	struct sto_view *v;
	sto_view_open(st, &v);
	struct qry_request req = {0};
	qry_limits_init(&req.limits);
	req.query = "UNWIND $pairs AS pr "
	            "MATCH (a:Person {id: pr[0]}), (b:Person {id: pr[1]}) "
	            "CREATE (a)-[:BENCH]->(b)";
	req.params = &pm;
	req.view = v;
	uint64_t ops0 = g_ops_total(), t0 = lora_now_ns(), c0 = cpu_ns();
	struct qry_cursor *c;
	struct qry_error err;
	if (qry_open(&req, &c, &err)) {
		fprintf(stderr, "%s: %s\n", req.query, err.message);
		exit(1);
	}
	uint64_t dt = lora_now_ns() - t0;
	*cpu += cpu_ns() - c0;
	const Lora__MutationBatch *b = qry_cursor_batch(c);
	if (!b || b->n_mutations != (size_t)rows) {
		fprintf(stderr, "%s: %zu edges for %d rows\n", req.query,
		        b ? b->n_mutations : 0, rows);
		exit(1);
	}
	qry_cursor_free(c);
	sto_view_close(v);
	*ops += g_ops_total() - ops0;
	free(ints);
	free(ip);
	free(pairs);
	free(pp);
	free(pl);
	return dt;
}

/* the median of reps runs of run_unwind, per row */
static void measure_unwind(int rows, int n, int reps)
{
	uint64_t t[5], cpu = 0, ops = 0;
	for (int i = 0; i < reps; i++)
		t[i] = run_unwind(rows, n, &cpu, &ops);
	qsort(t, (size_t)reps, sizeof(uint64_t), cmp_u64);
	double per = (double)reps * rows;
	printf("UNWIND %6d pairs, MATCH 2 by id, CREATE edge: median %7.2f "
	       "us/row wall, %7.2f us/row CPU, %.2f ops/row (%d runs)\n",
	       rows, (double)t[reps / 2] / 1e3 / rows, (double)cpu / 1e3 / per,
	       (double)ops / per, reps);
}

static void ddl(const char *q)
{
	struct sto_view *v;
	sto_view_open(st, &v);
	struct qry_request req = {0};
	qry_limits_init(&req.limits);
	req.query = q;
	req.view = v;
	struct qry_cursor *c;
	struct qry_error err;
	if (qry_open(&req, &c, &err)) {
		fprintf(stderr, "%s: %s\n", q, err.message);
		exit(1);
	}
	char em[LORA_ERRMSG_BYTES];
	if (qry_cursor_batch(c) &&
	    sto_apply(st, ++applied, qry_cursor_batch(c), em)) {
		fprintf(stderr, "%s: %s\n", q, em);
		exit(1);
	}
	qry_cursor_free(c);
	sto_view_close(v);
}

static int bench(int n, const char *dir, int owned);

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100000;
	rng = argc > 2 ? strtoull(argv[2], NULL, 10) : 88172645463325252ull;
	printf("bench_query: %d people, %d KNOWS edges, seed %llu\n", n,
	       n * EDGES_PER_PERSON, (unsigned long long)rng);
	only = getenv("BENCH_QUERY_ONLY");
	if (getenv("BENCH_QUERY_REPS"))
		rep_mul = atoi(getenv("BENCH_QUERY_REPS"));
	if (rep_mul < 1)
		rep_mul = 1;
	char tmpdir[] = "/tmp/bench_query_XXXXXX", state[512];
	const char *dir = getenv("BENCH_QUERY_DB");
	if (!dir && !mkdtemp(tmpdir))
		return 1;
	if (!dir)
		dir = tmpdir;
	snprintf(state, sizeof state, "%s/bench_query.state", dir);
	int kept_n = 0;
	unsigned long long kept_rng = 0;
	FILE *sf = fopen(state, "r");
	int reuse =
	    sf && fscanf(sf, "%d %llu", &kept_n, &kept_rng) == 2 && kept_n == n;
	if (sf)
		fclose(sf);
	char em[LORA_ERRMSG_BYTES];
	if (sto_open(dir, NULL, &st, em)) {
		fprintf(stderr, "open: %s\n", em);
		return 1;
	}
	if (reuse) {
		rng = kept_rng;
		printf("load: reused %s\n", dir);
		return bench(n, dir, dir == tmpdir);
	}
	ddl("CREATE INDEX person_id FOR (p:Person) ON (p.id)");
	ddl("CREATE VECTOR INDEX person_vec FOR (p:Person) ON (p.emb) OPTIONS "
	    "{indexConfig: {`vector.dimensions`: 128, "
	    "`vector.similarity_function`: 'cosine'}}");
	uint64_t t0 = lora_now_ns();
	struct bb bb = {0};
	bb.m = calloc(BATCH_MUTATIONS_MAX, sizeof(Lora__Mutation *));
	lora__mutation_batch__init(&bb.b);
	for (int i = 0; i < n; i++)
		person(&bb, (uint64_t)i);
	flush(&bb);
	for (uint64_t e = 0; e < (uint64_t)n * EDGES_PER_PERSON; e++)
		knows(&bb, e, rnd() % (uint64_t)n, rnd() % (uint64_t)n);
	flush(&bb);
	free(bb.m);
	printf("load: %.1f s\n", (double)(lora_now_ns() - t0) / 1e9);
	if (dir != tmpdir && (sf = fopen(state, "w")) != NULL) {
		fprintf(sf, "%d %llu\n", n, (unsigned long long)rng);
		fclose(sf);
	}
	return bench(n, dir, dir == tmpdir);
}

/* the measured statements, on the loaded store; removes dir when owned */
/* CONTAINS and ENDS WITH on the names (p0 .. pN-1) by a label scan, then
 * through a TEXT index built for them (and dropped again, so a kept store
 * stays as loaded). */
static void text_lines(int n)
{
	static const char *const q[] = {
	    "MATCH (p:Person) WHERE p.name CONTAINS '4321' RETURN count(*)",
	    "MATCH (p:Person) WHERE p.name ENDS WITH '999' RETURN count(*)"};
	if (only && !strstr("text: CONTAINS, ENDS WITH, index", only))
		return;
	measure("text: CONTAINS, label scan", q[0], 5, n);
	measure("text: ENDS WITH, label scan", q[1], 5, n);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	ddl("CREATE TEXT INDEX person_name_text FOR (p:Person) ON (p.name)");
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%-28s %10.3f ms\n", "text: TEXT index build",
	       (double)(b.tv_sec - a.tv_sec) * 1e3 +
	           (double)(b.tv_nsec - a.tv_nsec) / 1e6);
	measure("text: CONTAINS, text index", q[0], 51, n);
	measure("text: ENDS WITH, text index", q[1], 51, n);
	ddl("DROP INDEX person_name_text");
}

static int bench(int n, const char *dir, int owned)
{

	measure("point lookup (index)",
	        "MATCH (p:Person {id: $a}) RETURN p.name", 201, n);
	measure("2-hop friends-of-friends",
	        "MATCH (p:Person {id: $a})-[:KNOWS]->()-[:KNOWS]->(f) "
	        "RETURN count(DISTINCT f)",
	        51, n);
	measure("count by city (all people)",
	        "MATCH (p:Person) RETURN p.city, count(*)", 5, n);
	measure("shortestPath",
	        "MATCH (a:Person {id: $a}), (b:Person {id: $b}) "
	        "MATCH p = shortestPath((a)-[:KNOWS*..6]-(b)) "
	        "RETURN length(p)",
	        21, n);
	measure("vector top-10",
	        "CALL db.index.vector.queryNodes('person_vec', 10, $q) "
	        "YIELD node, score RETURN node.id, score",
	        11, n);
	/* after the lines above, so their parameters stay the same */
	measure("label scan + 1-hop count",
	        "MATCH (p:Person)-[:KNOWS]->(f) RETURN count(*)", 5, n);
	measure("label scan + age filter",
	        "MATCH (p:Person) WHERE p.age = 30 RETURN count(*)", 5, n);
	measure("label scan + 1-hop property",
	        "MATCH (p:Person)-[:KNOWS]->(f) RETURN max(f.age + p.age)", 3,
	        n);
	/* whole-graph reads that load what they look at: each end node's
	 * labels, each node's keys (their memory is bounded by the graph
	 * cache's room, QRY_READ_CACHE_BYTES, since 2026-12-08) */
	measure("label scan + 1-hop labelled",
	        "MATCH (p:Person)-[:KNOWS]->(f:Person) RETURN count(*)", 3, n);
	measure("label scan + keys",
	        "MATCH (p:Person) RETURN sum(size(keys(p)))", 3, n);
	/* the ORDER BY form of the vector top-10 (the exact answer) */
	measure("vector top-10, ORDER BY",
	        "MATCH (p:Person) RETURN p.id AS id, "
	        "vector.similarity.cosine(p.emb, $q) AS score "
	        "ORDER BY score DESC LIMIT 10",
	        11, n);
	/* the same, each after a write: the column is rebuilt every time */
	measure_after_write("vector ORDER BY after write",
	                    "MATCH (p:Person) RETURN p.id AS id, "
	                    "vector.similarity.cosine(p.emb, $q) AS score "
	                    "ORDER BY score DESC LIMIT 10",
	                    11, n);
	text_lines(n);
	if (only && !strstr("UNWIND", only)) {
		sto_close(st);
		return 0;
	}
	run_unwind(1000, n, &(uint64_t){0}, &(uint64_t){0}); /* warm up */
	const char *only_rows = getenv("BENCH_UNWIND_ROWS");
	for (int rows = 1000; rows <= 100000; rows *= 10)
		if (!only_rows || atoi(only_rows) == rows)
			measure_unwind(rows, n, rows < 100000 ? 5 : 3);
	sto_close(st);
	if (!owned)
		return 0;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
