/*
 * exec.c - running one statement for a client: routing (a write goes to the
 * writer on the leader, is forwarded to the leader from a follower, or is
 * answered with the leader's address when the client asked for a redirect),
 * read consistency (local, bookmark, linearizable), and cursors. User
 * statements go to auth.c; a statement the caller's role does not allow is
 * refused here (LORA_FORBIDDEN) before it runs or is forwarded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "node_int.h"

struct node_cursor {
	struct lnode *n;
	struct sto_view *view;
	struct qry_cursor *qc;
	size_t ncols;
	uint64_t deadline_ms; /* the statement's time limit (0: none) */
	int api;              /* enum node_api: whose rows they are */
};

/* ---- responses -------------------------------------------------------------
 */

Lora__Response *node_resp_new(void)
{
	Lora__Response *r = lora_malloc(sizeof *r);
	if (r)
		lora__response__init(r);
	return r;
}

void node_resp_error(Lora__Response *r, int code, const char *msg,
                     uint32_t line, uint32_t column)
{
	if (r->error)
		lora__error__free_unpacked(r->error, &lora_pb_allocator);
	r->error = lora_malloc(sizeof *r->error);
	if (r->error == NULL)
		return;
	lora__error__init(r->error);
	r->error->code = lora_strdup(lora_err_code(code));
	r->error->message = lora_strdup(msg ? msg : lora_strerror(code));
	r->error->category = lora_strdup(lora_err_category(code));
	r->error->line = line;
	r->error->column = column;
	if (!r->error->code || !r->error->message || !r->error->category) {
		lora__error__free_unpacked(r->error, &lora_pb_allocator);
		r->error = NULL;
	}
}

int node_value_dup(const Lora__Value *v, int depth_max, Lora__Value **out,
                   char *errmsg)
{
	*out = NULL;
	Lora__Value null = LORA__VALUE__INIT;
	if (v == NULL)
		v = &null;
	/* protobuf-c packs and unpacks recursively: bound it first. */
	int rc = lora_value_depth_check(v, depth_max, errmsg);
	if (rc)
		return rc;
	size_t len = lora__value__get_packed_size(v);
	uint8_t stackbuf[256];
	uint8_t *buf = len <= sizeof stackbuf ? stackbuf : lora_malloc(len);
	if (buf == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	lora__value__pack(v, buf);
	*out = lora__value__unpack(&lora_pb_allocator, len, buf);
	if (buf != stackbuf)
		lora_free(buf);
	return *out ? 0 : lora_errf(LORA_ENOMEM, errmsg, "out of memory");
}

int node_resp_add_row(Lora__Response *r, const Lora__Value *const *vals,
                      size_t n)
{
	if (r->rows == NULL ||
	    (r->n_rows >= 16 && (r->n_rows & (r->n_rows - 1)) == 0)) {
		size_t cap = r->rows ? r->n_rows * 2 : 16;
		Lora__Row **rows = lora_realloc(r->rows, cap * sizeof *rows);
		if (rows == NULL)
			return LORA_ENOMEM;
		r->rows = rows;
	}
	Lora__Row *row = lora_malloc(sizeof *row);
	if (row == NULL)
		return LORA_ENOMEM;
	lora__row__init(row);
	row->values = lora_calloc(n ? n : 1, sizeof *row->values);
	if (row->values == NULL) {
		lora_free(row);
		return LORA_ENOMEM;
	}
	r->rows[r->n_rows++] = row;
	for (size_t i = 0; i < n; i++) {
		char msg[LORA_ERRMSG_BYTES];
		int rc = node_value_dup(vals[i], LORA_RESULT_DEPTH_MAX,
		                        &row->values[i], msg);
		if (rc) {
			lora_errwrap(rc, msg, "result column %zu", i + 1);
			node_resp_error(r, rc, msg, 0, 0);
			return rc;
		}
		row->n_values++;
	}
	return 0;
}

int node_resp_set_columns(Lora__Response *r, const char *const *names, size_t n)
{
	r->columns = lora_calloc(n ? n : 1, sizeof(char *));
	if (r->columns == NULL)
		return LORA_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r->columns[i] = lora_strdup(names[i]);
		if (r->columns[i] == NULL)
			return LORA_ENOMEM;
		r->n_columns++;
	}
	return 0;
}

void node_resp_set_bookmark(Lora__Response *r, uint64_t index)
{
	char b[24];
	snprintf(b, sizeof b, "%llu", (unsigned long long)index);
	if (r->bookmark && r->bookmark[0])
		lora_free(r->bookmark);
	r->bookmark = lora_strdup(b);
}

int node_err_from_code(const char *code)
{
	for (int e = 1; e < LORA_ERR_COUNT; e++)
		if (code && !strcmp(lora_err_code(e), code))
			return e;
	return LORA_EINTERNAL;
}

/* ---- reads ------------------------------------------------------------------
 */

uint64_t node_statement_time_ms(const struct lnode *n,
                                const struct node_exec_req *req)
{
	return lora_min_limit(n->cfg.statement_time_ms
	                          ? n->cfg.statement_time_ms
	                          : NODE_STATEMENT_TIME_MS_MAX,
	                      req->time_ms_max);
}

void node_qry_limits(struct lnode *n, const struct node_exec_req *req,
                     struct qry_limits *l)
{
	qry_limits_init(l);
	l->mem_bytes_max = n->cfg.statement_memory_bytes;
	l->time_ms_max = node_statement_time_ms(n, req);
	l->mem_bytes_max = lora_min_limit(l->mem_bytes_max, req->mem_bytes_max);
	l->shared = &n->qry_budget;
	l->old_values = n->cfg.cdc_old_values != 0;
}

void node_qry_limits_until(struct qry_limits *l, uint64_t end_ms)
{
	uint64_t now = lora_now_ms(), left = end_ms > now ? end_ms - now : 1;
	l->time_ms_max = lora_min_limit(l->time_ms_max, left);
}

#ifdef LORA_TEST_HOOKS
void node_slow_testing(const char *query)
{
	const char *e = getenv("LORA_SLOW_TESTING");
	if (e && atoi(e) > 0 && query && strstr(query, "slow-testing"))
		usleep((useconds_t)atoi(e) * 1000);
}
#endif

int node_is_write(struct lnode *n, const struct node_exec_req *req,
                  const char *query, int *is_write, struct qry_error *err)
{
	static const struct node_exec_req none;
	struct qry_limits l;
	node_qry_limits(n, req ? req : &none, &l);
	return qry_is_write_lim(query, &l, is_write, err);
}

void node_cursor_free(struct lnode *n, struct node_cursor *c)
{
	if (c == NULL)
		return;
	qry_cursor_free(c->qc);
	sto_view_close(c->view);
	node_store_release(n);
	node_metrics_statements_open(n, -1);
	lora_free(c);
}

size_t node_cursor_columns(struct node_cursor *c, const char *const **names)
{
	return qry_cursor_columns(c->qc, names);
}

uint64_t node_cursor_bookmark(const struct node_cursor *c)
{
	return sto_view_applied_index(c->view);
}

uint64_t node_cursor_deadline_ms(const struct node_cursor *c)
{
	return c->deadline_ms;
}

int node_cursor_next(struct node_cursor *c, const Lora__Value *const **row,
                     int *done, struct qry_error *err)
{
	return qry_cursor_next(c->qc, row, done, err);
}

int node_resp_set_plan(Lora__Response *resp, const Lora__Value *plan)
{
	if (plan == NULL || resp->plan != NULL)
		return 0;
	char msg[LORA_ERRMSG_BYTES];
	int rc = node_value_dup(plan, LORA_RESULT_DEPTH_MAX, &resp->plan, msg);
	if (rc)
		node_resp_error(resp, rc, msg, 0, 0);
	return rc;
}

const Lora__Value *node_cursor_plan(struct node_cursor *c)
{
	return qry_cursor_plan(c->qc);
}

int node_cursor_charge(struct node_cursor *c, uint64_t n, struct qry_error *err)
{
	return qry_cursor_charge(c->qc, n, err);
}

int node_cursor_fetch(struct node_cursor *c, uint32_t batch_rows,
                      Lora__Response *resp)
{
	struct qry_error err = {0};
	resp->has_more = 0;
	int rc = 0;
	uint32_t k = 0;
	for (; batch_rows == 0 || k < batch_rows; k++) {
		const Lora__Value *const *row;
		int done = 0;
		rc = qry_cursor_next(c->qc, &row, &done, &err);
		if (rc) {
			node_resp_error(resp, rc, err.code ? err.message : NULL,
			                err.line, err.column);
			break;
		}
		if (done)
			break;
		rc = node_resp_add_row(resp, row, c->ncols);
		if (rc) {
			if (resp->error == NULL)
				node_resp_error(resp, rc, NULL, 0, 0);
			break;
		}
	}
	if (rc == 0 && batch_rows && k == batch_rows)
		resp->has_more = 1;
	if (rc == 0 && !resp->has_more)
		rc = node_resp_set_plan(resp, qry_cursor_plan(c->qc));
	node_metrics_rows_streamed(c->n, c->api, k);
	return rc;
}

/* Waits for the read point the consistency level asks for. */
static int read_barrier(struct lnode *n, const struct node_exec_req *req,
                        char *msg)
{
	if (req->consistency == LORA__CONSISTENCY__CONSISTENCY_BOOKMARK &&
	    req->bookmark > 0) {
		if (node_wait_applied(n, req->bookmark, NODE_WAIT_TIMEOUT_MS))
			return lora_errf(
			    LORA_ETIMEOUT, msg,
			    "this node has not applied bookmark %llu "
			    "within %d ms",
			    (unsigned long long)req->bookmark,
			    NODE_WAIT_TIMEOUT_MS);
	} else if (req->consistency ==
	           LORA__CONSISTENCY__CONSISTENCY_LINEARIZABLE) {
		uint64_t idx = 0;
		int rc = node_raft_read_index(n, &idx, NODE_WAIT_TIMEOUT_MS);
		if (rc)
			return lora_errf(
			    rc == LORA_ETIMEOUT ? rc : LORA_EUNAVAILABLE, msg,
			    "linearizable read: %s",
			    rc == LORA_ETIMEOUT
			        ? "no leader confirmed the read in time"
			        : "no leader known");
		if (node_wait_applied(n, idx, NODE_WAIT_TIMEOUT_MS))
			return lora_errf(LORA_ETIMEOUT, msg,
			                 "read index %llu not applied in time",
			                 (unsigned long long)idx);
	}
	return 0;
}

int node_read_open(struct lnode *n, const struct node_exec_req *req, int api,
                   struct node_cursor **out, struct qry_error *err)
{
	*out = NULL;
	memset(err, 0, sizeof *err);
	int rc = read_barrier(n, req, err->message);
	if (rc)
		return err->code = rc;
	struct node_cursor *c = lora_calloc(1, sizeof *c);
	if (c == NULL)
		return err->code = lora_errf(LORA_ENOMEM, err->message,
		                             "out of memory");
	struct sto_store *s = node_store_acquire(n);
	if (sto_view_open(s, &c->view) != 0) {
		node_store_release(n);
		lora_free(c);
		return err->code = lora_errf(LORA_EIO, err->message,
		                             "cannot open a read view");
	}
	char import_dir[NODE_PATH_BYTES_MAX];
	node_config_import_dir(&n->cfg, import_dir, sizeof import_dir);
	c->n = n;
	c->api = api;
	node_metrics_statements_open(n, 1);
	struct qry_request q = {.query = req->query,
	                        .params = req->params,
	                        .view = c->view,
	                        .mode = req->mode,
	                        .read_only = req->mode != QRY_EXPLAIN,
	                        .import_dir = import_dir};
	node_qry_limits(n, req, &q.limits);
	q.limits.gone = req->client_gone;
	q.limits.gone_arg = req->client_gone_arg;
	if (q.limits.time_ms_max)
		c->deadline_ms = lora_now_ms() + q.limits.time_ms_max;
	if (qry_open(&q, &c->qc, err) != 0) {
		if (err->code == 0)
			err->code = LORA_EINTERNAL;
		node_cursor_free(n, c);
		return err->code;
	}
	const char *const *names;
	c->ncols = qry_cursor_columns(c->qc, &names);
	*out = c;
	return 0;
}

static void exec_read(struct lnode *n, const struct node_exec_req *req,
                      Lora__Response *resp, Lora__Value **plan,
                      struct node_cursor **cursor)
{
	struct qry_error err;
	struct node_cursor *c;
	if (node_read_open(n, req, cursor ? NODE_API_NATIVE : NODE_API_HTTP, &c,
	                   &err) != 0) {
		node_resp_error(resp, err.code, err.message, err.line,
		                err.column);
		return;
	}
	const char *const *names;
	size_t ncols = node_cursor_columns(c, &names);
	node_resp_set_columns(resp, names, ncols);
	node_resp_set_bookmark(resp, sto_view_applied_index(c->view));
	int rc = node_cursor_fetch(c, cursor ? req->batch_rows : 0, resp);
	if (rc == 0 && plan && qry_cursor_plan(c->qc)) {
		char msg[LORA_ERRMSG_BYTES];
		rc = node_value_dup(qry_cursor_plan(c->qc),
		                    LORA_RESULT_DEPTH_MAX, plan, msg);
		if (rc)
			node_resp_error(resp, rc, msg, 0, 0);
	}
	if (rc == 0 && resp->has_more && cursor) {
		*cursor = c;
		return;
	}
	resp->has_more = 0;
	node_cursor_free(n, c);
}

/* ---- writes
 * ------------------------------------------------------------------ */

static void not_leader(struct lnode *n, Lora__Response *resp, const char *why,
                       int code)
{
	uint64_t leader = node_leader_id(n);
	struct node_member m;
	char msg[LORA_ERRMSG_BYTES];
	if (leader && node_member_get(n, leader, &m) == 0 && m.client_addr[0]) {
		snprintf(msg, sizeof msg, "%s; the leader is node %llu", why,
		         (unsigned long long)leader);
		resp->leader_address = lora_strdup(m.client_addr);
	} else {
		snprintf(msg, sizeof msg, "%s; no leader known", why);
	}
	node_resp_error(resp, code, msg, 0, 0);
}

int node_exec_allowed(struct lnode *n, const struct node_exec_req *req,
                      int is_write, char *msg)
{
	if (req->role == NODE_ROLE_NONE)
		return lora_errf(LORA_EFORBIDDEN, msg,
		                 "user '%s' has no role (or must change its "
		                 "password first: ALTER CURRENT USER SET "
		                 "PASSWORD FROM ... TO ...)",
		                 req->user);
	if (is_write && req->mode != QRY_EXPLAIN &&
	    req->role < NODE_ROLE_WRITER)
		return lora_errf(LORA_EFORBIDDEN, msg,
		                 "writing needs the writer role (user '%s' has "
		                 "%s)",
		                 req->user, node_role_name(req->role));
	int files = 0;
	struct qry_limits l;
	node_qry_limits(n, req, &l);
	struct qry_error qe = {0};
	int prc = req->role < NODE_ROLE_WRITER && req->query &&
	                  req->mode != QRY_EXPLAIN
	              ? qry_loads_csv_lim(req->query, &l, &files, &qe)
	              : 0;
	/* the budget, for now: refused rather than let through unchecked
	 * (other parse errors are the statement's own, reported by its
	 * parse) */
	if (prc == LORA_EMEMORY)
		return lora_errf(prc, msg, "%s", qe.message);
	if (prc == 0 && files)
		return lora_errf(
		    LORA_EFORBIDDEN, msg,
		    "LOAD CSV reads the import directory: it needs "
		    "the writer role (user '%s' has %s)",
		    req->user, node_role_name(req->role));
	return 0;
}

void node_exec(struct lnode *n, const struct node_exec_req *req,
               Lora__Response **resp_out, Lora__Value **plan,
               struct node_cursor **cursor)
{
	if (plan)
		*plan = NULL;
	if (cursor)
		*cursor = NULL;
	if (req->batch == NULL && node_auth_user_stmt(n, req, resp_out))
		return;
	Lora__Response *resp = node_resp_new();
	*resp_out = resp;
	if (resp == NULL)
		return;
	int is_write = req->kind == NODE_STMT_WRITE;
	struct qry_error err = {0};
	if (req->kind == NODE_STMT_UNKNOWN &&
	    node_is_write(n, req, req->query, &is_write, &err) != 0) {
		node_resp_error(resp, err.code ? err.code : LORA_EPARSE,
		                err.message, err.line, err.column);
		return;
	}
	char msg[LORA_ERRMSG_BYTES];
	int arc = node_exec_allowed(n, req, is_write, msg);
	if (arc != 0) {
		node_resp_error(resp, arc, msg, 0, 0);
		return;
	}
	if (!is_write || req->mode == QRY_EXPLAIN) {
		exec_read(n, req, resp, plan, cursor);
		return;
	}
	if (req->redirect && !node_is_leader(n)) {
		not_leader(n, resp, "this node is not the leader",
		           LORA_ENOTLEADER);
		return;
	}
	if (req->forwarded && !node_is_leader(n)) {
		not_leader(
		    n, resp,
		    "this node is not the leader any more: not executed, "
		    "retry",
		    LORA_EUNAVAILABLE);
		return;
	}
	Lora__Response *fwd = NULL;
	int rc =
	    node_is_leader(n) ? NODE_FORWARD_SELF : node_forward(n, req, &fwd);
	if (rc == NODE_FORWARD_SELF) {
		node_write(n, req, resp);
	} else if (fwd == NULL) {
		not_leader(n, resp, "cannot reach the leader: not executed",
		           LORA_EUNAVAILABLE);
	} else {
		lora__response__free_unpacked(resp, &lora_pb_allocator);
		*resp_out = fwd;
	}
}
