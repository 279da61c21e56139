/*
 * http_tx.c - explicit transactions over HTTP (docs/transactions.md):
 *
 *   POST   /tx                 begin (and run the body's statements)
 *   POST   /tx/{id}            run statements in it
 *   POST   /tx/{id}/commit     run the body's statements, then commit
 *   DELETE /tx/{id}            roll back (POST /tx/{id}/rollback too)
 *
 * A write transaction (the default) is txn.c's: it holds the leader's
 * writer from begin to end. A read transaction ("mode": "read") reads one
 * view of this node's applied state, on any node, and takes no writer.
 *
 * Open transactions live in one table of NODE_HTTP_TX_MAX slots, named by
 * a 128-bit random id (32 hex digits) and bound to the user who began
 * them: another user's request for it is refused. One request at a time
 * works on a slot (busy); the others are refused at once. A slot without
 * a request for its idle limit, or older than NODE_TX_LIFE_MS_MAX (read
 * ones too: a read view holds up a checkpoint install), is rolled back by
 * the reaper (the gossip thread, node_http_tx_reap) or by the next
 * request that finds it. The
 * native protocol's transactions live in the same table (node_xtx_*, for
 * native.c), also tied to their connection: when it goes away they roll
 * back (node_xtx_connection_gone marks them expired for the reaper).
 *
 * On a follower a write transaction's every request is passed to the
 * leader's HTTP API (proxy.c) as it came, so a client keeps talking to
 * the node it chose; an id this node does not hold is passed on too. A
 * DELETE is passed on as POST /tx/{id}/rollback (the proxy speaks POST).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "http_int.h"
#include "json.h"
#include "log.h"

#define NODE_HTTP_TX_MAX            256 /* open transactions per node */
#define NODE_HTTP_TX_ID_BYTES       16  /* 128 random bits */
#define NODE_HTTP_TX_HEX_BYTES      (2 * NODE_HTTP_TX_ID_BYTES + 1)
#define NODE_HTTP_TX_STATEMENTS_MAX 256 /* in one request */
#define NODE_HTTP_TX_PATH_BYTES     80

_Static_assert(NODE_HTTP_TX_HEX_BYTES == NODE_XTX_ID_BYTES, "one id size");

enum { HTX_FREE = 0, HTX_OPEN };

struct htx {
	int state;
	int busy; /* a request works on it (without htx_mu) */
	int write;
	/* read: its view goes (a checkpoint install); set on every open
	 * slot, write ones ignore it */
	atomic_int dropped;
	struct lnode *n;
	char id[NODE_HTTP_TX_HEX_BYTES];
	char user[NODE_USER_BYTES_MAX + 1];
	uint32_t idle_ms;
	uint64_t expires_ms;
	uint64_t life_end_ms; /* begin + NODE_TX_LIFE_MS_MAX: ends then */
	uint64_t mem_bytes_max;
	/* the native connection that began it (0: HTTP): when it goes away
	 * the transaction is rolled back (node_xtx_connection_gone) */
	uint64_t conn;
	int orphan;          /* that connection went away while a request ran */
	struct node_tx *wtx; /* write */
	struct sto_view *view; /* read: holds the store too */
};

static pthread_mutex_t htx_mu = PTHREAD_MUTEX_INITIALIZER;
static struct htx htxs[NODE_HTTP_TX_MAX];

/* What a slot held, taken out of the table to be ended without htx_mu. */
struct htx_end {
	struct lnode *n;
	struct node_tx *wtx;
	struct sto_view *view;
};

static void htx_take(struct htx *h, struct htx_end *e)
{
	*e = (struct htx_end){h->n, h->wtx, h->view};
	memset(h, 0, sizeof *h);
}

/* Rolls back what e holds (no lock held). */
static void htx_finish(struct htx_end *e)
{
	if (e->wtx)
		node_tx_rollback(e->wtx);
	if (e->view) {
		sto_view_close(e->view);
		node_store_release(e->n);
	}
}

void node_http_tx_reap(struct lnode *n)
{
	struct htx_end ends[16];
	for (;;) {
		size_t k = 0;
		uint64_t now = lora_now_ms();
		int stopping = atomic_load(&n->stopping);
		pthread_mutex_lock(&htx_mu);
		for (int i = 0; i < NODE_HTTP_TX_MAX && k < 16; i++) {
			struct htx *h = &htxs[i];
			if (h->state == HTX_OPEN && h->n == n && !h->busy &&
			    (stopping || now >= h->expires_ms))
				htx_take(h, &ends[k++]);
		}
		pthread_mutex_unlock(&htx_mu);
		for (size_t i = 0; i < k; i++)
			htx_finish(&ends[i]);
		if (k < 16)
			return;
	}
}

void node_http_tx_close_reads(struct lnode *n)
{
	struct htx_end ends[NODE_HTTP_TX_MAX];
	size_t k = 0;
	pthread_mutex_lock(&htx_mu);
	for (int i = 0; i < NODE_HTTP_TX_MAX; i++) {
		struct htx *h = &htxs[i];
		if (h->state != HTX_OPEN || h->n != n)
			continue;
		/* every open slot, busy or not, with a view or not: a read
		 * begin between node_store_acquire and setting h->view sees
		 * it after opening the view (htx_open) */
		atomic_store(&h->dropped, 1);
		if (h->busy || h->view == NULL)
			continue; /* its request lets go when it ends */
		ends[k++] = (struct htx_end){n, NULL, h->view};
		h->view = NULL;
	}
	pthread_mutex_unlock(&htx_mu);
	for (size_t i = 0; i < k; i++)
		htx_finish(&ends[i]);
}

/* ---- the table ---------------------------------------------------------- */

/* A free slot, marked busy and open, for user and the native connection
 * conn (0: HTTP; set under htx_mu, which node_xtx_connection_gone reads
 * it under); NULL when all are taken. */
static struct htx *htx_alloc(struct lnode *n, const char *user, uint64_t conn)
{
	uint8_t raw[NODE_HTTP_TX_ID_BYTES];
	randombytes_buf(raw, sizeof raw);
	pthread_mutex_lock(&htx_mu);
	struct htx *h = NULL;
	for (int i = 0; i < NODE_HTTP_TX_MAX && h == NULL; i++)
		if (htxs[i].state == HTX_FREE)
			h = &htxs[i];
	if (h) {
		memset(h, 0, sizeof *h);
		h->state = HTX_OPEN;
		h->busy = 1;
		h->n = n;
		h->conn = conn;
		h->life_end_ms = lora_now_ms() + node_tx_life_ms();
		sodium_bin2hex(h->id, sizeof h->id, raw, sizeof raw);
		snprintf(h->user, sizeof h->user, "%s", user);
	}
	pthread_mutex_unlock(&htx_mu);
	return h;
}

/* Lets go of h after a request: ended (freed, what it held rolled back
 * unless taken already) or kept with a new expiry. */
static void htx_release(struct htx *h, int ended)
{
	struct htx_end e = {0};
	pthread_mutex_lock(&htx_mu);
	h->busy = 0;
	if (atomic_load(&h->dropped) && h->view && !ended) {
		e = (struct htx_end){h->n, NULL, h->view};
		h->view = NULL;
	}
	if (ended)
		htx_take(h, &e);
	else {
		uint64_t idle_end = lora_now_ms() + h->idle_ms;
		h->expires_ms = h->orphan                   ? 0
		                : idle_end < h->life_end_ms ? idle_end
		                                            : h->life_end_ms;
	}
	pthread_mutex_unlock(&htx_mu);
	htx_finish(&e);
}

void node_xtx_connection_gone(struct lnode *n, uint64_t conn)
{
	pthread_mutex_lock(&htx_mu);
	for (int i = 0; conn && i < NODE_HTTP_TX_MAX; i++) {
		struct htx *h = &htxs[i];
		if (h->state != HTX_OPEN || h->n != n || h->conn != conn)
			continue;
		h->orphan = 1;     /* a running request: expires when it ends */
		h->expires_ms = 0; /* the reaper rolls it back */
	}
	pthread_mutex_unlock(&htx_mu);
}

/*
 * The slot named id for user: 0 with *out (busy: the caller's until
 * htx_release), LORA_ENOTFOUND (not here), LORA_EFORBIDDEN (another
 * user's), LORA_EINVAL (a request of it is running) or LORA_ETIMEOUT (it
 * expired: rolled back now).
 */
static int htx_find(struct lnode *n, const char *id, const char *user,
                    struct htx **out)
{
	struct htx_end e = {0};
	int rc = LORA_ENOTFOUND;
	pthread_mutex_lock(&htx_mu);
	for (int i = 0; i < NODE_HTTP_TX_MAX; i++) {
		struct htx *h = &htxs[i];
		if (h->state != HTX_OPEN || h->n != n ||
		    sodium_memcmp(h->id, id, NODE_HTTP_TX_HEX_BYTES) != 0)
			continue;
		if (strcmp(h->user, user) != 0)
			rc = LORA_EFORBIDDEN;
		else if (h->busy)
			rc = LORA_EINVAL;
		else if (lora_now_ms() >= h->expires_ms) {
			htx_take(h, &e);
			rc = LORA_ETIMEOUT;
		} else {
			h->busy = 1;
			*out = h;
			rc = 0;
		}
		break;
	}
	pthread_mutex_unlock(&htx_mu);
	htx_finish(&e);
	return rc;
}

/* ---- statements ---------------------------------------------------------- */

static int body_u64(json_t *j, const char *name, uint64_t *out, char *msg)
{
	json_t *v = json_object_get(j, name);
	if (v == NULL)
		return 0;
	char *end = NULL;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	const char *t = json_string_value(v);
	if (t && *t >= '0' && *t <= '9')
		*out = strtoull(t, &end, 10);
	if (end && *end == '\0')
		return 0;
	return lora_errf(LORA_EINVAL, msg, "\"%s\" must be a number", name);
}

int node_http_tx_body(const char *data, size_t len, struct node_tx_body *b,
                      char *msg)
{
	static const char *const fields[] = {
	    "statements", "mode",   "timeoutMs", "memoryBytes",
	    "bookmark",   "format", NULL};
	memset(b, 0, sizeof *b);
	json_error_t je;
	b->j = len ? json_loadb(data, len, JSON_REJECT_DUPLICATES, &je)
	           : json_object();
	if (b->j == NULL)
		return lora_errf(LORA_EINVAL, msg, "malformed JSON body: %s",
		                 je.text);
	if (!json_is_object(b->j))
		return lora_errf(LORA_EINVAL, msg,
		                 "the body must be a JSON object");
	const char *key;
	json_t *v;
	json_object_foreach(b->j, key, v)
	{
		int ok = 0;
		for (const char *const *f = fields; *f; f++)
			ok |= !strcmp(*f, key);
		if (!ok)
			return lora_errf(LORA_EINVAL, msg,
			                 "unknown field \"%.200s\"", key);
	}
	b->stmts = json_object_get(b->j, "statements");
	const char *mode = json_string_value(json_object_get(b->j, "mode"));
	const char *fmt = json_string_value(json_object_get(b->j, "format"));
	if ((b->stmts && !json_is_array(b->stmts)) ||
	    json_array_size(b->stmts) > NODE_HTTP_TX_STATEMENTS_MAX)
		return lora_errf(LORA_EINVAL, msg,
		                 "\"statements\" must be an array of at most "
		                 "%d statements",
		                 NODE_HTTP_TX_STATEMENTS_MAX);
	if ((json_object_get(b->j, "mode") && mode == NULL) ||
	    (mode && strcmp(mode, "read") && strcmp(mode, "write")))
		return lora_errf(LORA_EINVAL, msg,
		                 "\"mode\" is \"read\" or \"write\"");
	if ((json_object_get(b->j, "format") && fmt == NULL) ||
	    (fmt && strcmp(fmt, "rows") && strcmp(fmt, "rowArrays")))
		return lora_errf(LORA_EINVAL, msg,
		                 "\"format\" is \"rows\" or \"rowArrays\"");
	b->read = mode && !strcmp(mode, "read");
	b->row_arrays = fmt && !strcmp(fmt, "rowArrays");
	uint64_t t = 0;
	int rc = body_u64(b->j, "timeoutMs", &t, msg);
	if (rc == 0)
		rc = body_u64(b->j, "memoryBytes", &b->mem_bytes_max, msg);
	if (rc == 0)
		rc = body_u64(b->j, "bookmark", &b->bookmark, msg);
	if (rc == 0 && t > NODE_TX_IDLE_MS_MAX)
		rc = lora_errf(LORA_EINVAL, msg,
		               "\"timeoutMs\" is at most %d (ms)",
		               NODE_TX_IDLE_MS_MAX);
	b->timeout_ms = (uint32_t)t;
	return rc;
}

/* One statement of a read transaction over its view, into resp. A
 * client that leaves stops it (req->client_gone: LORA_ECLOSED), also
 * inside one operator. */
static void run_read(struct htx *h, const struct node_exec_req *req,
                     Lora__Response *resp)
{
	char import_dir[NODE_PATH_BYTES_MAX];
	node_config_import_dir(&h->n->cfg, import_dir, sizeof import_dir);
	struct qry_request q = {.query = req->query,
	                        .params = req->params,
	                        .view = h->view,
	                        .read_only = 1,
	                        .explicit_tx = 1,
	                        .import_dir = import_dir};
	node_qry_limits(h->n, req, &q.limits);
	node_qry_limits_until(&q.limits, h->life_end_ms);
	q.limits.gone = req->client_gone;
	q.limits.gone_arg = req->client_gone_arg;
	struct qry_error err = {0};
	struct qry_cursor *c = NULL;
	int rc = qry_open(&q, &c, &err);
	if (rc == 0)
		rc = node_tx_rows(c, resp, &err);
	if (rc && resp->error == NULL)
		node_resp_error(resp, rc, err.code ? err.message : NULL,
		                err.line, err.column);
	if (c)
		qry_cursor_free(c);
}

/* A statement's {"columns", "rows"} in *out; 0, or the error (with msg)
 * of a value node_json_row cannot render. */
static int result_json(const Lora__Response *r, int row_arrays, json_t **out,
                       char *msg)
{
	json_t *o = json_object(), *cols = json_array(), *rows = json_array();
	int bad = json_object_set_new(o, "columns", cols);
	bad |= json_object_set_new(o, "rows", rows);
	int rc = bad ? lora_errf(LORA_ENOMEM, msg, "out of memory") : 0;
	for (size_t i = 0; rc == 0 && i < r->n_columns; i++)
		if (json_array_append_new(cols, json_string(r->columns[i])))
			rc = lora_errf(LORA_ENOMEM, msg, "out of memory");
	for (size_t i = 0; rc == 0 && i < r->n_rows; i++) {
		const Lora__Row *row = r->rows[i];
		size_t n =
		    row->n_values < r->n_columns ? row->n_values : r->n_columns;
		json_t *v;
		rc = node_json_row((const Lora__Value *const *)row->values,
		                   row_arrays ? NULL
		                              : (const char *const *)r->columns,
		                   n, &v, msg);
		if (rc == 0 && json_array_append_new(rows, v))
			rc = lora_errf(LORA_ENOMEM, msg, "out of memory");
	}
	if (rc) {
		json_decref(o);
		o = NULL;
	}
	*out = o;
	return rc;
}

int node_http_tx_stmt(const struct node_tx_body *b, size_t i,
                      struct node_exec_req *req, Lora__ValueMap **params,
                      char *msg)
{
	json_t *s = json_array_get(b->stmts, i);
	*params = NULL;
	json_t *q = json_object_get(s, "statement");
	if (q == NULL)
		q = json_object_get(s, "query");
	if (!json_is_object(s) || !json_is_string(q))
		return lora_errf(LORA_EINVAL, msg,
		                 "each statement is an object with "
		                 "\"statement\" (a string)");
	json_t *p = json_object_get(s, "parameters");
	if (p == NULL)
		p = json_object_get(s, "params");
	req->query = json_string_value(q);
	int rc = node_json_to_params(p, params, msg);
	req->params = *params;
	return rc;
}

/* One statement in h into resp: 0, or the code of the error resp holds
 * (the transaction has ended then: the caller lets go of it). */
static int htx_run_one(struct htx *h, const struct node_exec_req *req,
                       Lora__Response *resp)
{
	if (!h->write && atomic_load(&h->dropped)) {
		node_resp_error(resp, LORA_EUNAVAILABLE,
		                "the read view was dropped for a checkpoint "
		                "install: begin again",
		                0, 0);
		return LORA_EUNAVAILABLE;
	}
	/* the rules on what a role may run hold inside a transaction too
	 * (LOAD CSV needs the writer role even to read: a reader read the
	 * import directory through a read transaction) */
	char msg[LORA_ERRMSG_BYTES];
	int arc = node_exec_allowed(h->n, req, 0, msg);
	if (arc != 0) {
		node_resp_error(resp, arc, msg, 0, 0);
		return arc;
	}
	if (h->write)
		node_tx_run(h->wtx, req, resp);
	else
		run_read(h, req, resp);
	return resp->error ? node_err_from_code(resp->error->code) : 0;
}

/*
 * Runs the body's statements in h, appending each result to results.
 * 0, or the first failure's code with *err (an error JSON, the caller's):
 * the statements after it do not run and the transaction has ended (the
 * caller rolls back what is left). LORA_ECLOSED: the client x left
 * during a read (the caller drops the connection).
 */
static int run_statements(struct node_http_ex *x, struct htx *h,
                          const struct node_tx_body *b,
                          const struct node_identity *who, json_t *results,
                          json_t **err)
{
	for (size_t i = 0; i < json_array_size(b->stmts); i++) {
		char msg[LORA_ERRMSG_BYTES];
		struct node_exec_req req = {.mode = QRY_RUN,
		                            .role = who->role,
		                            .mem_bytes_max = h->mem_bytes_max,
		                            .time_ms_max = b->time_ms,
		                            .client_gone = node_http_gone,
		                            .client_gone_arg = x};
		snprintf(req.user, sizeof req.user, "%s", who->user);
		Lora__ValueMap *params = NULL;
		json_t *res;
		int rc = node_http_tx_stmt(b, i, &req, &params, msg);
		Lora__Response *resp = rc ? NULL : node_resp_new();
		if (rc == 0 && resp == NULL)
			rc = lora_errf(LORA_ENOMEM, msg, "out of memory");
		if (rc == 0 && (rc = htx_run_one(h, &req, resp)) != 0)
			*err = node_http_error_json(rc, resp->error->message,
			                            resp->error->line,
			                            resp->error->column);
		else if (rc == 0 && (rc = result_json(resp, b->row_arrays, &res,
		                                      msg)) == 0)
			json_array_append_new(results, res);
		else
			*err = node_http_error_json(rc, msg, 0, 0);
		if (resp)
			lora__response__free_unpacked(resp, &lora_pb_allocator);
		if (params)
			lora__value_map__free_unpacked(params,
			                               &lora_pb_allocator);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- answers ------------------------------------------------------------ */

/* The answer for a transaction still open: id, where to go on, expiry. */
static json_t *open_json(const struct htx *h, json_t *results)
{
	char path[NODE_HTTP_TX_PATH_BYTES], commit[NODE_HTTP_TX_PATH_BYTES];
	snprintf(path, sizeof path, "/tx/%s", h->id);
	snprintf(commit, sizeof commit, "/tx/%s/commit", h->id);
	/* when it expires without a request (wall clock, ms since 1970):
	 * the answer goes out as the idle time starts */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t expires = (uint64_t)now.tv_sec * 1000u +
	                   (uint64_t)now.tv_nsec / 1000000u + h->idle_ms;
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:o}", "id", h->id, "mode",
	                 h->write ? "write" : "read", "commit", commit,
	                 "timeoutMs", (json_int_t)h->idle_ms, "expiresMs",
	                 (json_int_t)expires, "tx", path, "results", results);
}

/* A failed statement (or commit): err's status, the results before it,
 * and "rolledBack": true -- but false for LORA_EUNKNOWN_OUTCOME: that
 * commit may still have committed (docs/transactions.md), and a client
 * told "rolled back" would run it again. Consumes err and results. A
 * client that left (LORA_ECLOSED from a read) gets nothing: its
 * connection is dropped and counted. */
static void reply_failed(struct lnode *n, struct node_http_ex *x, int code,
                         json_t *err, json_t *results)
{
	if (code == LORA_ECLOSED && node_http_client_gone(x)) {
		json_decref(err);
		json_decref(results);
		node_http_abort(x);
		node_metrics_client_gone(n, NODE_API_HTTP);
		return;
	}
	json_object_set_new(err, "results", results);
	json_object_set_new(err, "rolledBack",
	                    json_boolean(code != LORA_EUNKNOWN_OUTCOME));
	node_http_reply_json(x, lora_err_http_status(code), err, NULL, NULL);
}

/* ---- begin -------------------------------------------------------------- */

/* A write begin waits (up to NODE_TX_BEGIN_WAIT_MS) for the writer on an
 * HTTP or native worker: at most this many at once, so that waiting
 * begins never take every worker; more are refused at once. */
#define NODE_HTTP_TX_BEGIN_WAITERS_MAX 8
static atomic_int begin_waiters;

static int begin_write(struct lnode *n, struct htx *h, uint64_t mem_bytes_max,
                       char *msg)
{
	int rc;
	if (atomic_fetch_add(&begin_waiters, 1) >=
	    NODE_HTTP_TX_BEGIN_WAITERS_MAX)
		rc = lora_errf(LORA_EUNAVAILABLE, msg,
		               "%d transactions already wait for the writer: "
		               "not begun, retry",
		               NODE_HTTP_TX_BEGIN_WAITERS_MAX);
	else
		rc = node_tx_begin(n, h->idle_ms, mem_bytes_max, &h->wtx, msg);
	atomic_fetch_sub(&begin_waiters, 1);
	return rc;
}

/* Opens what h needs (the writer or a read view); 0 or an error in msg. */
static int htx_open(struct lnode *n, struct htx *h,
                    const struct node_xtx_opts *b,
                    const struct node_identity *who, char *msg)
{
	h->write = !b->read;
	h->idle_ms = b->timeout_ms ? b->timeout_ms : NODE_TX_IDLE_MS;
	h->mem_bytes_max = b->mem_bytes_max;
	if (h->write) {
		if (who->role < NODE_ROLE_WRITER)
			return lora_errf(LORA_EFORBIDDEN, msg,
			                 "a write transaction needs the writer "
			                 "role (begin it with \"mode\": "
			                 "\"read\" to read)");
		return begin_write(n, h, b->mem_bytes_max, msg);
	}
	if (who->role < NODE_ROLE_READER)
		return lora_errf(LORA_EFORBIDDEN, msg,
		                 "a read transaction needs the reader role");
	if (b->bookmark &&
	    node_wait_applied(n, b->bookmark, NODE_WAIT_TIMEOUT_MS) != 0)
		return lora_errf(LORA_ETIMEOUT, msg,
		                 "this node has not applied bookmark %llu "
		                 "within %d ms",
		                 (unsigned long long)b->bookmark,
		                 NODE_WAIT_TIMEOUT_MS);
	struct sto_store *st = node_store_acquire(n);
	if (sto_view_open(st, &h->view) != 0) {
		node_store_release(n);
		h->view = NULL;
		return lora_errf(LORA_EIO, msg, "cannot open a read view");
	}
	if (atomic_load(&h->dropped)) /* a checkpoint install began */
		return lora_errf(LORA_EUNAVAILABLE, msg,
		                 "a checkpoint install began as the read "
		                 "view opened: begin again");
	return 0;
}

static int tx_begin(struct lnode *n, struct node_http_ex *x,
                    const struct node_tx_body *b,
                    const struct node_identity *who)
{
	char msg[LORA_ERRMSG_BYTES];
	struct htx *h = htx_alloc(n, who->user, 0);
	if (h == NULL) {
		node_http_reply_error(x, LORA_ELIMIT,
		                      "too many open transactions "
		                      "(NODE_HTTP_TX_MAX): retry later");
		return 0;
	}
	struct node_xtx_opts o = {b->read, b->timeout_ms, b->mem_bytes_max,
	                          b->bookmark};
	int rc = htx_open(n, h, &o, who, msg);
	if (rc) {
		htx_release(h, 1);
		node_http_reply_error(x, rc, msg);
		return 0;
	}
	json_t *results = json_array(), *err = NULL;
	rc = run_statements(x, h, b, who, results, &err);
	if (rc) {
		htx_release(h, 1);
		reply_failed(n, x, rc, err, results);
		return 0;
	}
	char loc[NODE_HTTP_TX_PATH_BYTES];
	snprintf(loc, sizeof loc, "/tx/%s", h->id);
	json_t *j = open_json(h, results);
	htx_release(h, 0);
	node_http_reply_json(x, 201, j, NULL, loc);
	return 1;
}

/* ---- run, commit, rollback ---------------------------------------------- */

/* Commits h (busy; the caller then lets go of it): a write one through
 * txn.c, a read one answers its view's index. 0 or an error in msg. */
static int htx_commit(struct htx *h, uint64_t *index, char *msg)
{
	*index = 0;
	if (h->write) {
		struct node_tx *t = h->wtx;
		h->wtx = NULL;
		return node_tx_commit(t, index, msg);
	}
	if (h->view == NULL) /* dropped while idle (node_http_tx_close_reads) */
		return lora_errf(LORA_EUNAVAILABLE, msg,
		                 "the read view was dropped for a checkpoint "
		                 "install: begin again");
	*index = sto_view_applied_index(h->view);
	return 0;
}

static int tx_commit(struct node_http_ex *x, struct htx *h, json_t *results)
{
	struct lnode *n = h->n;
	char msg[LORA_ERRMSG_BYTES], bm[24];
	uint64_t index = 0;
	int rc = htx_commit(h, &index, msg);
	htx_release(h, 1);
	if (rc) {
		reply_failed(n, x, rc, node_http_error_json(rc, msg, 0, 0),
		             results);
		return 0;
	}
	snprintf(bm, sizeof bm, "%llu", (unsigned long long)index);
	node_http_reply_json(
	    x, 200, json_pack("{s:o,s:s}", "results", results, "bookmark", bm),
	    bm, NULL);
	return 1;
}

static int tx_on(struct node_http_ex *x, struct htx *h, enum node_tx_op op,
                 const struct node_tx_body *b, const struct node_identity *who)
{
	json_t *results = json_array(), *err = NULL;
	if (op == NODE_TX_ROLLBACK) {
		htx_release(h, 1);
		node_http_reply_json(
		    x, 200,
		    json_pack("{s:o,s:b}", "results", results, "rolledBack", 1),
		    NULL, NULL);
		return 1;
	}
	struct lnode *n = h->n;
	int rc = run_statements(x, h, b, who, results, &err);
	if (rc) {
		htx_release(h, 1);
		reply_failed(n, x, rc, err, results);
		return 0;
	}
	if (op == NODE_TX_COMMIT)
		return tx_commit(x, h, results);
	json_t *j = open_json(h, results);
	htx_release(h, 0);
	node_http_reply_json(x, 200, j, NULL, NULL);
	return 1;
}

/* ---- the same for the native protocol (node_int.h) ---------------------- */

static const char *find_msg(int rc)
{
	switch (rc) {
	case LORA_ENOTFOUND:
		return "no such transaction here (it ended, expired and was "
		       "cleaned up, or was begun on a leader that stepped "
		       "down): begin again";
	case LORA_EFORBIDDEN:
		return "the transaction belongs to another user";
	case LORA_EINVAL:
		return "another request of this transaction is running";
	default:
		return "the transaction expired (no request within its "
		       "timeout, or older than NODE_TX_LIFE_MS_MAX) and was "
		       "rolled back: begin again";
	}
}

int node_xtx_begin(struct lnode *n, const struct node_identity *who,
                   const struct node_xtx_opts *o, uint64_t conn, char *id,
                   uint32_t *timeout_ms, char *msg)
{
	struct htx *h = htx_alloc(n, who->user, conn);
	if (h == NULL)
		return lora_errf(LORA_ELIMIT, msg,
		                 "too many open transactions "
		                 "(NODE_HTTP_TX_MAX): retry later");
	int rc = htx_open(n, h, o, who, msg);
	if (rc == 0) {
		memcpy(id, h->id, NODE_XTX_ID_BYTES);
		*timeout_ms = h->idle_ms;
	}
	htx_release(h, rc != 0);
	return rc;
}

void node_xtx_run(struct lnode *n, const char *id,
                  const struct node_identity *who,
                  const struct node_exec_req *req, Lora__Response *resp)
{
	struct htx *h = NULL;
	int rc = strlen(id) == NODE_XTX_ID_BYTES - 1
	             ? htx_find(n, id, who->user, &h)
	             : LORA_ENOTFOUND;
	if (rc) {
		node_resp_error(resp, rc, find_msg(rc), 0, 0);
		return;
	}
	struct node_exec_req r = *req;
	r.mem_bytes_max = h->mem_bytes_max;
	rc = htx_run_one(h, &r, resp);
	htx_release(h, rc != 0);
}

int node_xtx_end(struct lnode *n, const char *id,
                 const struct node_identity *who, int commit, uint64_t *index,
                 char *msg)
{
	struct htx *h = NULL;
	int rc = strlen(id) == NODE_XTX_ID_BYTES - 1
	             ? htx_find(n, id, who->user, &h)
	             : LORA_ENOTFOUND;
	*index = 0;
	if (rc)
		return lora_errf(rc, msg, "%s", find_msg(rc));
	if (commit)
		rc = htx_commit(h, index, msg);
	htx_release(h, 1);
	return rc;
}

/* ---- the route ---------------------------------------------------------- */

int node_http_tx_target(const char *method, const char *uri, char *id,
                        enum node_tx_op *op)
{
	size_t plen = strcspn(uri, "?");
	if (plen < 4 || strncmp(uri, "/tx/", 4) != 0)
		return -1;
	const char *p = uri + 4;
	size_t idlen = strcspn(p, "/?");
	if (idlen != NODE_HTTP_TX_HEX_BYTES - 1 ||
	    strspn(p, "0123456789abcdef") < idlen)
		return -1; /* (it goes into a request line when passed on) */
	memcpy(id, p, idlen);
	id[idlen] = '\0';
	const char *rest = p + idlen;
	size_t rlen = (size_t)(uri + plen - rest);
	if (!strcmp(method, "DELETE"))
		*op = NODE_TX_ROLLBACK;
	else if (rlen == 0)
		*op = NODE_TX_RUN;
	else if (rlen == 7 && !strncmp(rest, "/commit", 7))
		*op = NODE_TX_COMMIT;
	else if (rlen == 9 && !strncmp(rest, "/rollback", 9))
		*op = NODE_TX_ROLLBACK;
	else
		return -1;
	return !strcmp(method, "DELETE") && rlen != 0 ? -1 : 0;
}

/* Passes the request on to the leader; 1 when answered (by it or with an
 * error), 0 when this node leads now. */
/* Passes the request to the leader. The follower waits as long as the
 * leader may take: for the writer (a begin), then each statement of the
 * body up to its time limit. It waited 12 s, while the leader ran on and
 * kept the statement's writes in the transaction: a client told to retry
 * ran them twice. */
static int to_leader(struct lnode *n, struct node_http_ex *x, const char *path,
                     const struct node_tx_body *b)
{
	const char *data;
	size_t len;
	node_http_body(x, &data, &len);
	size_t stmts = json_array_size(b->stmts);
	uint64_t wait_ms =
	    NODE_FORWARD_WAIT_MS + NODE_TX_BEGIN_WAIT_MS +
	    (uint64_t)(stmts ? stmts : 1) * n->cfg.statement_time_ms;
	if (wait_ms > NODE_TX_FORWARD_WAIT_MS_MAX)
		wait_ms = NODE_TX_FORWARD_WAIT_MS_MAX;
	return node_proxy_write(n->proxy, x, path, data, len, 0, wait_ms) !=
	       NODE_FORWARD_SELF;
}

int node_http_tx_route(struct lnode *n, struct node_http_ex *x,
                       const struct node_route *r)
{
	const char *uri = node_http_uri(x);
	const struct node_identity *who = node_http_identity(x);
	const char *data;
	size_t len;
	char msg[LORA_ERRMSG_BYTES];
	node_http_body(x, &data, &len);
	struct node_tx_body b;
	int rc = node_http_tx_body(data, len, &b, msg);
	if (rc) {
		json_decref(b.j);
		node_http_reply_error(x, rc, msg);
		return 0;
	}
	b.time_ms = node_http_time_ms(x);
	int ok = 0;
	if (!strcmp(r->path, "/tx")) { /* begin */
		if (!b.read && !node_is_leader(n) && !node_http_forwarded(x) &&
		    to_leader(n, x, "/tx", &b))
			ok = 1;
		else
			ok = tx_begin(n, x, &b, who);
		json_decref(b.j);
		return ok;
	}
	char id[NODE_HTTP_TX_HEX_BYTES], path[NODE_HTTP_TX_PATH_BYTES];
	enum node_tx_op op;
	if (node_http_tx_target(r->method, uri, id, &op) != 0) {
		json_decref(b.j);
		node_http_reply_error(x, LORA_ENOTFOUND,
		                      "no such endpoint: /tx/{id}, "
		                      "/tx/{id}/commit, /tx/{id}/rollback");
		return 0;
	}
	struct htx *h = NULL;
	rc = htx_find(n, id, who->user, &h);
	snprintf(path, sizeof path, "/tx/%s%s", id,
	         op == NODE_TX_COMMIT     ? "/commit"
	         : op == NODE_TX_ROLLBACK ? "/rollback"
	                                  : "");
	if (rc == 0)
		ok = tx_on(x, h, op, &b, who);
	else if (rc == LORA_ENOTFOUND && !node_is_leader(n) &&
	         !node_http_forwarded(x) && to_leader(n, x, path, &b))
		ok = 1;
	else
		node_http_reply_error(x, rc, find_msg(rc));
	json_decref(b.j);
	return ok;
}
