/* fuzz_graph.c - Cypher on a small graph for the fuzz targets (see
 * fuzz_graph.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_graph.h"
#include "fuzz_store.h"
#include "query.h"

static const char *graph_text =
    "CREATE (a:Person {name: 'Ann', age: 30, tags: ['x', 'y']})"
    "-[:KNOWS {since: 2001}]->(b:Person:Admin {name: 'Bob', age: 25.5}),"
    " (b)-[:LIKES]->(c:City {name: 'Oslo', at: date('2020-01-02'),"
    " v: [0.5, 1.5]}), (a)-[:LIKES {w: -1}]->(c),"
    " (c)-[:SELF]->(c), (:Empty)";

static void fail(const char *what, const struct qry_error *e, const char *query)
{
	fprintf(stderr, "fuzz_graph: %s: %d %s\nquery: %s\n", what,
	        e ? e->code : 0, e ? e->message : "", query);
	abort();
}

static void limits(struct qry_limits *l)
{
	qry_limits_init(l);
	l->rows_max = FZ_ROWS_MAX;
	l->time_ms_max = FZ_TIME_MS_MAX;
	l->mem_bytes_max = FZ_MEM_BYTES_MAX;
	l->mutations_max = FZ_MUTATIONS_MAX;
}

/* An error must say what and why; LORA_EINTERNAL is a bug. */
static void check_error(const struct qry_error *e, const char *query)
{
	if (e->code <= 0 || e->code >= LORA_ERR_COUNT ||
	    e->code == LORA_EINTERNAL || e->message[0] == '\0')
		fail("bad error", e, query);
}

/* What a node would log: the batch packs into bytes it decodes. */
static void check_batch(const Lora__MutationBatch *b, const char *query)
{
	size_t len = lora__mutation_batch__get_packed_size(b);
	uint8_t *p = malloc(len ? len : 1);
	lora__mutation_batch__pack(b, p);
	if (lora_pb_check(LORA_PB_MUTATION_BATCH, len ? p : NULL, len,
	                  LORA_VALUE_DEPTH_MAX) != 0)
		fail("a batch the log would refuse", NULL, query);
	free(p);
}

static void graph_create(void)
{
	struct sto_view *v;
	struct qry_request req = {0};
	struct qry_cursor *c;
	struct qry_error e;
	if (sto_view_open(fz_store(), &v))
		abort();
	req.query = graph_text;
	req.view = v;
	qry_limits_init(&req.limits);
	if (qry_open(&req, &c, &e))
		fail("graph", &e, graph_text);
	char em[LORA_ERRMSG_BYTES];
	if (fz_apply(qry_cursor_batch(c), em)) {
		fprintf(stderr, "graph: %s\n", em);
		abort();
	}
	qry_cursor_free(c);
	sto_view_close(v);
}

static void pull(struct qry_cursor *c, const char *query)
{
	for (int i = 0; i < FZ_PULL_ROWS_MAX; i++) {
		const Lora__Value *const *row;
		int done = 0;
		struct qry_error e = {0};
		if (qry_cursor_next(c, &row, &done, &e)) {
			check_error(&e, query);
			return;
		}
		if (done)
			return;
		const char *const *names;
		size_t n = qry_cursor_columns(c, &names);
		for (size_t k = 0; k < n; k++)
			if (lora_value_depth(row[k], LORA_RESULT_DEPTH_MAX) >
			    LORA_RESULT_DEPTH_MAX)
				fail("a row value past the result depth", NULL,
				     query);
	}
}

/*
 * One parse, as a node that asks before it opens: the statement's kind
 * (qry_is_write, qry_in_transactions, qry_loads_csv answer from the same
 * tree) and then its run from that tree (qry_request.stmt).
 */
void fz_query(const char *query, const Lora__ValueMap *params)
{
	static int created;
	if (!created) {
		graph_create();
		created = 1;
	}
	struct qry_error e = {0};
	struct qry_request req = {0};
	limits(&req.limits);
	struct qry_stmt *s = NULL;
	if (qry_parse(query, &req.limits, &s, &e)) {
		/* qry_open would parse the same text under the same limits */
		check_error(&e, query);
		return;
	}
	struct sto_view *v;
	if (sto_view_open(fz_store(), &v))
		abort();
	req.query = query;
	req.stmt = s;
	req.params = params;
	req.view = v;
	struct qry_cursor *c = NULL;
	memset(&e, 0, sizeof e);
	if (qry_open(&req, &c, &e)) {
		check_error(&e, query);
	} else {
		const Lora__MutationBatch *b = qry_cursor_batch(c);
		/* a node routes a statement by its kind: a "read" that
		 * writes would run on a follower */
		if (b && !qry_stmt_is_write(s))
			fail("a batch from a statement said to read", NULL,
			     query);
		/* IN TRANSACTIONS commits as it runs, here with no
		 * commit_chunk: it may not leave a batch (query.h) */
		if (b && qry_stmt_in_transactions(s))
			fail("a batch from IN TRANSACTIONS", NULL, query);
		if (b)
			check_batch(b, query);
		pull(c, query);
		qry_cursor_free(c);
	}
	sto_view_close(v);
	qry_stmt_free(s);
	/* the graph is the same for every input (README.md, Replay): no
	 * statement wrote to the store (the engine never does, query.h) */
	if (sto_applied_index(fz_store()) != fz_index)
		fail("the store was written", NULL, query);
}
