/*
 * qtest_store.h - the store fixture the query tests share: a real RocksDB
 * store in a temporary directory (the store at <dir>/db; a test may put
 * other files in dir), opened by setup() and removed by teardown(), and
 * `applied`, the index the test's own sto_apply calls count from, and
 * qtest_run, which runs a statement over it.
 * Included once per test program (the state is static).
 */
#ifndef LORA_QTEST_STORE_H
#define LORA_QTEST_STORE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query.h"

static char dir[256];
static struct sto_store *st;
static uint64_t applied;

/* Each test's directory lies in one made when the program starts and
 * removed when it ends: Check runs a test in a child that exits at a
 * failed assertion, before teardown, and its directory went nowhere. */
static char qtest_root[64];
static pid_t qtest_root_pid;

static void qtest_root_remove(void)
{
	if (getpid() != qtest_root_pid) /* a test's child exiting */
		return;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", qtest_root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", qtest_root);
}

__attribute__((constructor)) static void qtest_root_make(void)
{
	snprintf(qtest_root, sizeof qtest_root, "/tmp/lora-qtest-XXXXXX");
	if (!mkdtemp(qtest_root)) {
		perror("mkdtemp");
		abort();
	}
	qtest_root_pid = getpid();
	atexit(qtest_root_remove);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "%s/t-XXXXXX", qtest_root);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char db[300], em[LORA_ERRMSG_BYTES];
	snprintf(db, sizeof db, "%s/db", dir);
	ck_assert_int_eq(sto_open(db, NULL, &st, em), 0);
	applied = 0;
}

static void teardown(void)
{
	sto_close(st);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* What qtest_run gives: the code and error, the rows rendered (columns
 * joined by '|', a line per row, after a line of column names with
 * opts.header) and the plan rendered, when there is one, and how many
 * mutations the statement's batch held. */
struct qtest_result {
	int code;
	struct qry_error err;
	char text[16384];
	char plan[4096];
	size_t nmut;
};

/* How qtest_run_opts runs a statement; all optional. */
struct qtest_opts {
	const struct qry_limits *lim;       /* NULL: the defaults */
	const Lora__MutationBatch *pending; /* run over this batch */
	int header;                         /* a line of column names */
};

static inline void qtest_render(struct qry_cursor *cur, int header,
                                struct qtest_result *r)
{
	struct lora_buf b = {0};
	const char *const *names;
	size_t n = qry_cursor_columns(cur, &names);
	for (size_t i = 0; header && i < n; i++)
		lora_buf_printf(&b, "%s%s", i ? "|" : "", names[i]);
	if (header)
		lora_buf_putc(&b, '\n');
	for (;;) {
		const Lora__Value *const *row;
		int done;
		r->code = qry_cursor_next(cur, &row, &done, &r->err);
		if (r->code || done)
			break;
		n = qry_cursor_columns(cur, &names);
		for (size_t i = 0; i < n; i++) {
			if (i)
				lora_buf_putc(&b, '|');
			ck_assert_int_eq(qry_value_format(row[i], &b), 0);
		}
		lora_buf_putc(&b, '\n');
	}
	snprintf(r->text, sizeof r->text, "%s", b.data ? b.data : "");
	lora_buf_free(&b);
	const Lora__Value *plan = qry_cursor_plan(cur);
	if (plan) {
		struct lora_buf pb = {0};
		qry_value_format(plan, &pb);
		snprintf(r->plan, sizeof r->plan, "%s", pb.data);
		lora_buf_free(&pb);
	}
}

/* Runs q (params may be NULL) in mode over the store, and over
 * o->pending when set; renders its rows and plan into r; applies what q
 * wrote as the next entry (never with a pending batch). */
static inline void qtest_run_opts(const char *q, const Lora__ValueMap *params,
                                  int mode, const struct qtest_opts *o,
                                  struct qtest_result *r)
{
	memset(r, 0, sizeof *r);
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	struct qry_request req = {0};
	req.query = q;
	req.params = params;
	req.view = v;
	req.mode = mode;
	if (o->pending) {
		req.pending = &o->pending;
		req.n_pending = 1;
	}
	if (o->lim)
		req.limits = *o->lim;
	else
		qry_limits_init(&req.limits);
	struct qry_cursor *cur = NULL;
	r->code = qry_open(&req, &cur, &r->err);
	if (!r->code) {
		qtest_render(cur, o->header, r);
		const Lora__MutationBatch *batch = qry_cursor_batch(cur);
		if (batch && !r->code && !o->pending) {
			r->nmut = batch->n_mutations;
			r->code =
			    sto_apply(st, ++applied, batch, r->err.message);
			r->err.code = r->code;
		}
		qry_cursor_free(cur);
	}
	sto_view_close(v);
}

/* qtest_run_opts without a header line or limits */
static inline void qtest_run(const char *q, const Lora__ValueMap *params,
                             int mode, const Lora__MutationBatch *pending,
                             struct qtest_result *r)
{
	struct qtest_opts o = {.pending = pending};
	qtest_run_opts(q, params, mode, &o, r);
}

/* A write proposed but not applied, to run statements over as a pending
 * batch: qtest_pending_open runs q over the store and keeps its batch in
 * p->batch (q must write); qtest_pending_close frees it. */
struct qtest_pending {
	struct sto_view *v;
	struct qry_cursor *cur;
	const Lora__MutationBatch *batch;
};

static inline void qtest_pending_open(const char *q, struct qtest_pending *p)
{
	ck_assert_int_eq(sto_view_open(st, &p->v), 0);
	struct qry_request req = {0};
	req.query = q;
	req.view = p->v;
	qry_limits_init(&req.limits);
	struct qry_error err;
	p->cur = NULL;
	ck_assert_int_eq(qry_open(&req, &p->cur, &err), 0);
	p->batch = qry_cursor_batch(p->cur);
	ck_assert_ptr_nonnull(p->batch);
}

static inline void qtest_pending_close(struct qtest_pending *p)
{
	qry_cursor_free(p->cur);
	sto_view_close(p->v);
}

#endif /* LORA_QTEST_STORE_H */
