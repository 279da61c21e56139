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

void fz_limits(struct qry_limits *l)
{
	qry_limits_init(l);
	l->rows_max = FZ_ROWS_MAX;
	l->time_ms_max = FZ_TIME_MS_MAX;
	l->mem_bytes_max = FZ_MEM_BYTES_MAX;
	l->mutations_max = FZ_MUTATIONS_MAX;
}

void fz_check_error(const struct qry_error *e, const char *query)
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
			fz_check_error(&e, query);
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

/* Whether this input opens from its text, as node/ does today
 * (qry_is_write, then qry_open parsing the text), or from its parsed
 * statement (qry_parse, then qry_request.stmt): about half the inputs
 * each, the same way every time an input runs (a crash replays). */
static int from_text(const char *query)
{
	return (int)(lora_hash32(query, strlen(query)) & 1);
}

/* Two answers about one text must be one: the same error code and
 * position, or, when both parsed, the same kind. */
static void same_answer(const char *what, int code_a, const struct qry_error *a,
                        int code_b, const struct qry_error *b,
                        const char *query)
{
	if (code_a != code_b ||
	    (code_a && (a->line != b->line || a->column != b->column))) {
		fprintf(stderr, "fuzz_graph: %s: %d %u:%u %s / %d %u:%u %s\n",
		        what, code_a, a->line, a->column, a->message, code_b,
		        b->line, b->column, b->message);
		fail(what, NULL, query);
	}
}

/* The kind the text answers: qry_parse under the fuzz limits (then
 * qry_is_write, whose answers for short texts are kept, must agree) or,
 * from the text, qry_is_write (asked again when it parses, as a leader
 * does). *s is the statement or NULL. */
static int ask_kind(const char *query, int text, const struct qry_limits *l,
                    struct qry_stmt **s, int *w, struct qry_error *e)
{
	*s = NULL;
	*w = 0;
	if (text) {
		int code = qry_is_write(query, w, e);
		if (code) {
			fz_check_error(e, query);
			return code;
		}
		/* the leader asks again: a short text's answer is then the
		 * one qry_is_write kept */
		struct qry_error le = {0};
		int lw = 0;
		if (qry_is_write(query, &lw, &le) || lw != *w)
			fail("qry_is_write asked again differs", &le, query);
		return 0;
	}
	int code = qry_parse(query, l, s, e);
	if (code) {
		/* qry_open's error must be this one (fz_query); the text way
		 * compares qry_is_write's errors with qry_open's */
		fz_check_error(e, query);
		return code;
	}
	*w = qry_stmt_is_write(*s);
	struct qry_error we = {0};
	int w2 = 0;
	if (qry_is_write(query, &w2, &we) || w2 != *w)
		fail("qry_is_write and qry_stmt_is_write differ", &we, query);
	return 0;
}

/* A statement that opened: what a node would route and log. */
static void check_opened(struct qry_cursor *c, const struct qry_stmt *s, int w,
                         const char *query)
{
	const Lora__MutationBatch *b = qry_cursor_batch(c);
	/* a node routes a statement by its kind: a "read" that writes would
	 * run on a follower */
	if (b && !w)
		fail("a batch from a statement said to read", NULL, query);
	/* IN TRANSACTIONS commits as it runs, here with no commit_chunk: it
	 * may not leave a batch (query.h); from the text, a node asks only
	 * when the text names it */
	int t = 0;
	if (b && s)
		t = qry_stmt_in_transactions(s);
	else if (b && strcasestr(query, "TRANSACTIONS") &&
	         qry_in_transactions(query, &t, NULL))
		fail("a batch from a statement that does not parse", NULL,
		     query);
	if (b && t)
		fail("a batch from IN TRANSACTIONS", NULL, query);
	if (b)
		check_batch(b, query);
	pull(c, query);
}

/* Whether the text may call a function whose answer changes from one run
 * to the next (then two runs are not compared). */
static int varies(const char *query)
{
	static const char *const names[] = {"rand", "uuid", "time", "date"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcasestr(query, names[i]))
			return 1;
	return 0;
}

/* qry_open of query (or of s, its parsed statement, when not NULL) on a
 * new view of the graph (*v, for the caller to close), under the fuzz
 * limits. */
static int open_on_graph(const char *query, struct qry_stmt *s,
                         const Lora__ValueMap *params, struct sto_view **v,
                         struct qry_cursor **c, struct qry_error *e)
{
	struct qry_request req = {0};
	fz_limits(&req.limits);
	if (sto_view_open(fz_store(), v))
		abort();
	req.query = query;
	req.stmt = s;
	req.params = params;
	req.view = *v;
	*c = NULL;
	return qry_open(&req, c, e);
}

/* Opens the text and lays out what it did in out: the batch's bytes,
 * then every row's values (packed). Its code. */
static int run_bytes(const char *query, const Lora__ValueMap *params,
                     struct lora_buf *out)
{
	struct sto_view *v;
	struct qry_cursor *c;
	struct qry_error e = {0};
	int code = open_on_graph(query, NULL, params, &v, &c, &e);
	const Lora__MutationBatch *b = code ? NULL : qry_cursor_batch(c);
	if (b) {
		size_t n = lora__mutation_batch__get_packed_size(b);
		if (lora_buf_reserve(out, n))
			abort();
		out->len += lora__mutation_batch__pack(b, (uint8_t *)out->data +
		                                              out->len);
	}
	for (int i = 0; !code && i < FZ_PULL_ROWS_MAX; i++) {
		const Lora__Value *const *row;
		const char *const *names;
		int done = 0;
		code = qry_cursor_next(c, &row, &done, &e);
		if (code || done)
			break;
		size_t nc = qry_cursor_columns(c, &names);
		for (size_t k = 0; k < nc; k++) {
			size_t n = lora__value__get_packed_size(row[k]);
			if (lora_buf_reserve(out, n + 1))
				abort();
			out->len += lora__value__pack(
			    row[k], (uint8_t *)out->data + out->len);
			lora_buf_putc(out, '|');
		}
	}
	qry_cursor_free(c);
	sto_view_close(v);
	return code;
}

/* A write statement's leading clauses that read no graph stream (pipe.c,
 * graph_free): it must write and answer what it did when every clause
 * drained before the next (qry_testing_eager_all). Only LIMIT may make the
 * streaming run do less: it may succeed where the draining one ran out of
 * memory, time or rows, never the other way round. */
static void same_as_eager(const char *query, const Lora__ValueMap *params)
{
	if (varies(query))
		return;
	struct lora_buf lazy = {0}, eager = {0};
	int lc = run_bytes(query, params, &lazy);
	qry_testing_eager_all(1);
	int ec = run_bytes(query, params, &eager);
	qry_testing_eager_all(0);
	int res =
	    ec == LORA_EMEMORY || ec == LORA_ETIMEOUT || ec == LORA_ELIMIT;
	if (!lc && !ec &&
	    (lazy.len != eager.len ||
	     (lazy.len && memcmp(lazy.data, eager.data, lazy.len))))
		fail("a write streaming its leading clauses differs from "
		     "draining them",
		     NULL, query);
	if (!lc && ec && !res)
		fail("a write fails only when its leading clauses drain", NULL,
		     query);
	if (lc && !ec && lc != LORA_ETIMEOUT)
		fail("a write fails only when its leading clauses stream", NULL,
		     query);
	lora_buf_free(&lazy);
	lora_buf_free(&eager);
}

/*
 * As a node: the statement's kind first (qry_is_write from the text, or
 * the parsed statement's answers), then qry_open from the text or from
 * that statement's tree (qry_request.stmt). A text that does not parse is
 * opened too (from the text): qry_open must fail with the same error.
 */
void fz_query(const char *query, const Lora__ValueMap *params)
{
	static int created;
	if (!created) {
		graph_create();
		created = 1;
	}
	struct qry_limits l;
	fz_limits(&l);
	struct qry_error pe = {0};
	struct qry_stmt *s;
	int w;
	int pcode = ask_kind(query, from_text(query), &l, &s, &w, &pe);
	struct sto_view *v;
	struct qry_cursor *c;
	struct qry_error e = {0};
	int code = open_on_graph(query, s, params, &v, &c, &e);
	if (code)
		fz_check_error(&e, query);
	/* qry_open parses the text under the fuzz limits, tighter in memory
	 * than qry_is_write's */
	if (pcode && !(code == LORA_ELIMIT && pcode != LORA_ELIMIT))
		same_answer("qry_open and the parse differ", pcode, &pe, code,
		            &e, query);
	if (!code) {
		if (pcode)
			fail("opened a statement that does not parse", NULL,
			     query);
		check_opened(c, s, w, query);
		qry_cursor_free(c);
		if (w)
			same_as_eager(query, params);
	}
	sto_view_close(v);
	qry_stmt_free(s);
	/* the graph is the same for every input (README.md, Replay): no
	 * statement wrote to the store (the engine never does, query.h) */
	if (sto_applied_index(fz_store()) != fz_index)
		fail("the store was written", NULL, query);
}
