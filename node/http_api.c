/* http_api.c - the HTTP endpoints: queries, cluster and admin operations. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "http_int.h"
#include "json.h"
#include "log.h"
#include "peerfwd.h"

#define NODE_TRANSFER_WAIT_MS 5000
#define NODE_DIGEST_WAIT_MS   10000
#define NODE_COPY_CHUNK_BYTES (1u << 20)
#define NODE_REROUTE_MS       3000 /* a write refused as leadership moves */
#define NODE_REROUTE_POLL_MS  20

/* ---- request bodies
 * ---------------------------------------------------------- */

/* Parses the JSON body; on failure answers and returns NULL. */
static json_t *body_json(struct node_http_ex *x, int allow_empty)
{
	const char *data;
	size_t len;
	node_http_body(x, &data, &len);
	if (len == 0 && allow_empty)
		return json_object();
	json_error_t je;
	json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		char msg[LORA_ERRMSG_BYTES];
		snprintf(msg, sizeof msg,
		         "malformed JSON body: %s (line %d, column %d)",
		         je.text, je.line, je.column);
		node_http_reply_error(x, LORA_EINVAL, msg);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		node_http_reply_error(x, LORA_EINVAL,
		                      "the body must be a JSON object");
		return NULL;
	}
	return j;
}

/* Rejects fields not in allowed (NULL-terminated); 0 when fine. */
static int check_fields(struct node_http_ex *x, json_t *j,
                        const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach(j, key, v)
	{
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			ok |= !strcmp(*a, key);
		if (!ok) {
			char msg[LORA_ERRMSG_BYTES];
			snprintf(msg, sizeof msg, "unknown field \"%.200s\"",
			         key);
			node_http_reply_error(x, LORA_EINVAL, msg);
			return -1;
		}
	}
	return 0;
}

static int field_u64(json_t *j, const char *name, uint64_t *out)
{
	json_t *v = json_object_get(j, name);
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		char *end;
		errno = 0;
		unsigned long long x = strtoull(json_string_value(v), &end, 10);
		if (errno == 0 && *end == '\0' && json_string_length(v) > 0) {
			*out = x;
			return 0;
		}
	}
	return v == NULL ? LORA_ENOTFOUND : LORA_EINVAL;
}

/* ---- /query, /explain, /profile
 * ------------------------------------------------ */

enum fmt { FMT_ROWS, FMT_ROW_ARRAYS, FMT_GRAPH, FMT_COMBINED };

struct query_body {
	const char *query;
	Lora__ValueMap *params;
	enum fmt fmt;
	struct node_exec_req req;
};

static int parse_consistency(const char *s, int *out)
{
	if (s == NULL || !strcmp(s, "local"))
		*out = LORA__CONSISTENCY__CONSISTENCY_LOCAL;
	else if (!strcmp(s, "bookmark"))
		*out = LORA__CONSISTENCY__CONSISTENCY_BOOKMARK;
	else if (!strcmp(s, "linearizable"))
		*out = LORA__CONSISTENCY__CONSISTENCY_LINEARIZABLE;
	else
		return -1;
	return 0;
}

static int parse_format(const char *s, enum fmt *out)
{
	static const char *names[] = {"rows", "rowArrays", "graph", "combined"};
	if (s == NULL) {
		*out = FMT_ROWS;
		return 0;
	}
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum fmt)i;
			return 0;
		}
	return -1;
}

/* Fills qb from j; answers and returns -1 on a bad field. */
static int parse_query_body(struct node_http_ex *x, json_t *j,
                            struct query_body *qb)
{
	static const char *const fields[] = {
	    "query",       "params",   "parameters", "format",
	    "consistency", "bookmark", "requestId",  "redirect",
	    "memoryBytes", "timeMs",   NULL};
	if (check_fields(x, j, fields))
		return -1;
	char msg[LORA_ERRMSG_BYTES];
	qb->query = json_string_value(json_object_get(j, "query"));
	if (qb->query == NULL) {
		node_http_reply_error(x, LORA_EINVAL,
		                      "\"query\" (a string) is required");
		return -1;
	}
	const char *fmt = json_string_value(json_object_get(j, "format"));
	const char *cons = json_string_value(json_object_get(j, "consistency"));
	json_t *rid = json_object_get(j, "requestId");
	json_t *redirect = json_object_get(j, "redirect");
	if ((json_object_get(j, "format") && parse_format(fmt, &qb->fmt)) ||
	    (json_object_get(j, "consistency") &&
	     parse_consistency(cons, &qb->req.consistency)) ||
	    (rid && (!json_is_string(rid) ||
	             json_string_length(rid) > NODE_REQUEST_ID_BYTES_MAX)) ||
	    (redirect && !json_is_boolean(redirect))) {
		node_http_reply_error(
		    x, LORA_EINVAL,
		    "bad value for format, consistency, requestId "
		    "or redirect");
		return -1;
	}
	if (parse_format(fmt, &qb->fmt) != 0)
		qb->fmt = FMT_ROWS;
	parse_consistency(cons, &qb->req.consistency);
	if (json_object_get(j, "bookmark") &&
	    field_u64(j, "bookmark", &qb->req.bookmark) != 0) {
		node_http_reply_error(
		    x, LORA_EINVAL,
		    "\"bookmark\" must be a number or its string");
		return -1;
	}
	if (json_object_get(j, "memoryBytes") &&
	    (field_u64(j, "memoryBytes", &qb->req.mem_bytes_max) != 0 ||
	     qb->req.mem_bytes_max == 0)) {
		node_http_reply_error(
		    x, LORA_EINVAL,
		    "\"memoryBytes\" must be a positive number "
		    "of bytes");
		return -1;
	}
	if (json_object_get(j, "timeMs") &&
	    (field_u64(j, "timeMs", &qb->req.time_ms_max) != 0 ||
	     qb->req.time_ms_max == 0)) {
		node_http_reply_error(x, LORA_EINVAL,
		                      "\"timeMs\" must be a positive number of "
		                      "milliseconds");
		return -1;
	}
	/* a follower that passed the write on waits as long as its own
	 * limit allows (X-Lora-Time-Ms): the statement stops before that */
	qb->req.time_ms_max =
	    lora_min_limit(qb->req.time_ms_max, node_http_time_ms(x));
	if (qb->req.bookmark &&
	    qb->req.consistency == LORA__CONSISTENCY__CONSISTENCY_LOCAL)
		qb->req.consistency = LORA__CONSISTENCY__CONSISTENCY_BOOKMARK;
	json_t *params = json_object_get(j, "params");
	if (params == NULL)
		params = json_object_get(j, "parameters");
	int rc = node_json_to_params(params, &qb->params, msg);
	if (rc) {
		node_http_reply_error(x, rc, msg);
		return -1;
	}
	qb->req.query = qb->query;
	qb->req.params = qb->params;
	qb->req.request_id = rid ? json_string_value(rid) : NULL;
	qb->req.redirect = json_is_true(redirect);
	return 0;
}

/* The rows, or NULL when one cannot be rendered: out of memory only, as
 * these rows were copied within LORA_RESULT_DEPTH_MAX (node_resp_add_row,
 * or lora_pb_check on a peer's answer). */
static json_t *rows_json(const Lora__Response *r, enum fmt fmt)
{
	json_t *rows = json_array();
	for (size_t i = 0; rows && i < r->n_rows; i++) {
		const Lora__Row *row = r->rows[i];
		size_t n =
		    row->n_values < r->n_columns ? row->n_values : r->n_columns;
		json_t *o;
		if (node_json_row((const Lora__Value *const *)row->values,
		                  fmt == FMT_ROW_ARRAYS
		                      ? NULL
		                      : (const char *const *)r->columns,
		                  n, &o, NULL) != 0 ||
		    json_array_append_new(rows, o) != 0) {
			json_decref(rows);
			rows = NULL;
		}
	}
	return rows;
}

static json_t *graph_json(const Lora__Response *r)
{
	struct node_json_graph g;
	if (node_json_graph_init(&g) != 0)
		return NULL;
	for (size_t i = 0; i < r->n_rows; i++)
		for (size_t k = 0; k < r->rows[i]->n_values; k++)
			node_json_graph_add(&g, r->rows[i]->values[k]);
	return node_json_graph_take(&g);
}

static json_t *result_json(const Lora__Response *r, enum fmt fmt,
                           Lora__Value *plan, int mode)
{
	json_t *cols = json_array();
	for (size_t i = 0; cols && i < r->n_columns; i++)
		json_array_append_new(cols, json_string(r->columns[i]));
	json_t *o = json_object();
	if (o == NULL)
		return NULL;
	if (mode != QRY_EXPLAIN) {
		json_object_set_new(o, "columns", cols);
		if (fmt != FMT_GRAPH &&
		    json_object_set_new(o, "rows", rows_json(r, fmt)) != 0) {
			json_decref(o); /* an answer without its rows: none */
			return NULL;
		}
		if (fmt == FMT_GRAPH || fmt == FMT_COMBINED)
			json_object_set_new(o, "graph", graph_json(r));
	} else {
		json_decref(cols);
	}
	if (mode != QRY_RUN)
		json_object_set_new(o, "plan", node_json_from_value(plan));
	json_object_set_new(o, "bookmark",
	                    json_string(r->bookmark ? r->bookmark : "0"));
	return o;
}

/* An error answer; NOT_LEADER carries the leader's HTTP address. */
static void reply_resp_error(struct lnode *n, struct node_http_ex *x,
                             const Lora__Response *r)
{
	int code = node_err_from_code(r->error->code);
	json_t *j = node_http_error_json(code, r->error->message,
	                                 r->error->line, r->error->column);
	if (code != LORA_ENOTLEADER) {
		node_http_reply_json(x, lora_err_http_status(code), j, NULL,
		                     NULL);
		return;
	}
	struct node_member m;
	uint64_t leader = node_leader_id(n);
	char url[NODE_ADDR_BYTES_MAX + 16] = "";
	if (leader && node_member_get(n, leader, &m) == 0 && m.http_addr[0])
		snprintf(url, sizeof url, "%s://%s",
		         n->cfg.http_tls.mode == NODE_TLS_OFF ? "http"
		                                              : "https",
		         m.http_addr);
	json_object_set_new(j, "leader",
	                    url[0] ? json_string(url) : json_null());
	node_http_reply_json(x, url[0] ? 307 : 503, j, NULL,
	                     url[0] ? url : NULL);
}

static void query_body_free(struct query_body *qb)
{
	if (qb->params)
		lora__value_map__free_unpacked(qb->params, &lora_pb_allocator);
}

/* Where a /query, /explain or /profile statement runs. */
enum run_where {
	RUN_HERE,    /* node_exec on this worker: reads, errors, redirects */
	RUN_PROXY,   /* a follower's write: the leader's HTTP API answers */
	RUN_WRITER,  /* the leader's write: answered by the writer, async */
	RUN_REROUTE, /* a write the writer refused as leadership moved */
};

/* Also notes in qb->req.kind what the statement is, so that node_exec
 * does not parse it again (a statement that does not parse is left to
 * node_exec, which answers with the error's position). */
static enum run_where run_where(struct lnode *n, const struct node_route *route,
                                struct query_body *qb)
{
	int is_write = 0;
	struct qry_error err = {0};
	if (node_is_write(n, &qb->req, qb->query, &is_write, &err) != 0)
		return RUN_HERE;
	qb->req.kind = is_write ? NODE_STMT_WRITE : NODE_STMT_READ;
	if (route->mode == QRY_EXPLAIN || !is_write)
		return RUN_HERE;
	if (node_is_leader(n))
		return route->mode == QRY_RUN ? RUN_WRITER : RUN_HERE;
	if (qb->req.redirect)
		return RUN_HERE;
	if (!qb->req.forwarded)
		return RUN_PROXY;
	/* passed here by a node that took this one for the leader */
	return qb->req.forwarded < NODE_FORWARD_HOPS_MAX &&
	               route->mode == QRY_RUN
	           ? RUN_REROUTE
	           : RUN_HERE;
}

/* A follower's write goes to the leader as it came (flags: NODE_PROXY_*);
 * 0 when answered, NODE_FORWARD_SELF when this node leads now and runs it
 * itself, NODE_PROXY_HELD when the leader refused it with LORA_UNAVAILABLE
 * and the refusal was held back (x unanswered). */
static int proxy_write(struct lnode *n, struct node_http_ex *x,
                       const struct node_route *route, int flags)
{
	const char *body;
	size_t len;
	node_http_body(x, &body, &len);
	int rc =
	    node_proxy_write(n->proxy, x, route->path, body, len, flags,
	                     node_forward_wait_ms(n, node_http_time_ms(x)));
	return rc == NODE_FORWARD_SELF || rc == NODE_PROXY_HELD ? rc : 0;
}

/* A leader's write in flight: everything its answer needs. */
struct http_write {
	struct lnode *n;
	struct node_http_ex *x;
	const struct node_route *route;
	json_t *j; /* owns the strings qb points into */
	struct query_body qb;
	Lora__Response *r;
	uint64_t t0_ns;
};

/* A /query body parsed, and where it runs. */
struct prepared {
	json_t *j; /* owns the strings qb points into */
	struct query_body qb;
	enum run_where where;
	int peer_tried; /* RUN_PROXY went the peer way once (peer_write) */
};

/* The write carries a requestId and is not IN TRANSACTIONS: a forwarder
 * may send it again (node_may_resend). */
static int has_rid(const struct prepared *pp)
{
	const char *q = pp->qb.req.query;
	return node_may_resend(pp->qb.req.request_id, q, q ? strlen(q) : 0);
}

static void prepared_free(void *p)
{
	struct prepared *pp = p;
	query_body_free(&pp->qb);
	json_decref(pp->j);
	lora_free(pp);
}

/*
 * A write this node's writer refused because leadership is moving (a
 * transfer in progress, or the node stopped leading between routing the
 * write and running it: LORA_UNAVAILABLE, certainly not executed) is run
 * again on a worker (reroute_write), unless the client asked for
 * redirects or other nodes passed it on NODE_FORWARD_HOPS_MAX times
 * already. 1 when handed on (hw's request moved, x no longer ours).
 */
static int write_reroute(struct http_write *hw)
{
	const Lora__Response *r = hw->r;
	if (node_err_from_code(r->error->code) != LORA_EUNAVAILABLE ||
	    hw->qb.req.redirect ||
	    hw->qb.req.forwarded >= NODE_FORWARD_HOPS_MAX)
		return 0;
	struct prepared *pp = lora_calloc(1, sizeof *pp);
	if (pp == NULL)
		return 0;
	*pp = (struct prepared){hw->j, hw->qb, RUN_REROUTE, 0};
	hw->j = NULL;
	memset(&hw->qb, 0, sizeof hw->qb);
	node_http_async_rerun(hw->x, pp, prepared_free);
	return 1;
}

static void write_answered(void *arg, int rc)
{
	struct http_write *hw = arg;
	Lora__Response *r = hw->r;
	(void)rc;
	if (r->error && node_http_is_child(hw->x) &&
	    node_err_from_code(r->error->code) == LORA_EUNAVAILABLE) {
		/* certainly not executed: its sender sends it alone */
		node_http_child_untaken(hw->x);
		node_http_async_done(hw->x);
	} else if (r->error && write_reroute(hw)) {
		/* answered by a worker */
	} else {
		if (r->error)
			reply_resp_error(hw->n, hw->x, r);
		else
			node_http_reply_json(
			    hw->x, 200,
			    result_json(r, hw->qb.fmt, NULL, QRY_RUN),
			    r->bookmark, NULL);
		node_metrics_request(hw->n, hw->route->name, r->error == NULL,
		                     lora_now_ns() - hw->t0_ns);
		node_http_async_done(hw->x);
	}
	lora__response__free_unpacked(r, &lora_pb_allocator);
	query_body_free(&hw->qb);
	json_decref(hw->j);
	lora_free(hw);
}

/* Hands the write to the writer, which answers it when it is applied
 * (no worker waits for it); takes j and qb. -1 (nothing taken) on OOM. */
static int write_async(struct lnode *n, struct node_http_ex *x,
                       const struct node_route *route, json_t *j,
                       const struct query_body *qb)
{
	struct http_write *hw = lora_calloc(1, sizeof *hw);
	Lora__Response *r = hw ? node_resp_new() : NULL;
	if (r == NULL) {
		lora_free(hw);
		return -1;
	}
	*hw = (struct http_write){n, x, route, j, *qb, r, lora_now_ns()};
	node_http_async(x);
	node_write_async(n, &hw->qb.req, r, write_answered, hw);
	return 0;
}

/* A follower's write passed to the leader over the peer channel
 * (peerfwd.h), answered here from the leader's Response as the leader's
 * own HTTP API answers it (write_answered). */
struct peer_write {
	struct lnode *n;
	struct node_http_ex *x;
	const struct node_route *route;
	struct prepared *pp;
	uint64_t t0_ns;
};

/* The leader's result; has_more without a cursor: the write committed
 * but its rows were too large to pass back (peerfwd.h), said by
 * "rowsOmitted": true beside the bookmark. */
static json_t *peer_result_json(struct peer_write *pw, const Lora__Response *r)
{
	json_t *o = result_json(r, pw->pp->qb.fmt, NULL, QRY_RUN);
	if (o && r->has_more && r->cursor.len == 0)
		json_object_set_new(o, "rowsOmitted", json_true());
	return o;
}

static void peer_answered(void *arg, int rc, Lora__Response *r)
{
	struct peer_write *pw = arg;
	if (rc != 0) { /* not sent, or this node leads now: h_query runs it */
		node_http_async_rerun(pw->x, pw->pp, prepared_free);
	} else {
		if (r->error)
			reply_resp_error(pw->n, pw->x, r);
		else
			node_http_reply_json(pw->x, 200,
			                     peer_result_json(pw, r),
			                     r->bookmark, NULL);
		node_metrics_request(pw->n, pw->route->name, r->error == NULL,
		                     lora_now_ns() - pw->t0_ns);
		node_http_async_done(pw->x);
		prepared_free(pw->pp);
	}
	if (r)
		lora__response__free_unpacked(r, &lora_pb_allocator);
	lora_free(pw);
}

/* RUN_PROXY over the peer channel: 0 when handed on (pp taken, x async),
 * -1 when it must go the HTTP way (nothing taken). */
static int peer_write(struct lnode *n, struct node_http_ex *x,
                      const struct node_route *route, struct prepared *pp)
{
	struct peer_write *pw =
	    n->cfg.peer_forward && route->mode == QRY_RUN && !pp->peer_tried
	        ? lora_calloc(1, sizeof *pw)
	        : NULL;
	struct node_pfwd_job *j =
	    pw ? node_pfwd_new(n, &pp->qb.req, has_rid(pp),
	                       node_forward_wait_ms(n, pp->qb.req.time_ms_max),
	                       peer_answered, pw)
	       : NULL;
	if (j == NULL) {
		lora_free(pw);
		return -1;
	}
	*pw = (struct peer_write){n, x, route, pp, lora_now_ns()};
	pp->peer_tried = 1; /* a rerun goes the HTTP way */
	node_http_async(x);
	node_pfwd_go(j);
	return 0;
}

/* Parses the body; NULL when answered (an error) or out of memory. */
static struct prepared *prepare(struct lnode *n, struct node_http_ex *x,
                                const struct node_route *route)
{
	struct prepared *pp = lora_calloc(1, sizeof *pp);
	if (pp == NULL) {
		node_http_reply_error(x, LORA_ENOMEM, NULL);
		return NULL;
	}
	pp->j = body_json(x, 0);
	pp->qb.req.mode = (enum qry_mode)route->mode;
	if (pp->j == NULL || parse_query_body(x, pp->j, &pp->qb) != 0) {
		prepared_free(pp);
		return NULL;
	}
	pp->qb.req.forwarded = node_http_forwarded(x);
	const struct node_identity *who = node_http_identity(x);
	pp->qb.req.role = who->role;
	pp->qb.req.peer_checked = node_http_ident(x) != NULL;
	snprintf(pp->qb.req.user, sizeof pp->qb.req.user, "%s", who->user);
	pp->where = run_where(n, route, &pp->qb);
	char msg[LORA_ERRMSG_BYTES];
	int arc =
	    pp->qb.req.kind == NODE_STMT_UNKNOWN
	        ? 0
	        : node_exec_allowed(n, &pp->qb.req,
	                            pp->qb.req.kind == NODE_STMT_WRITE, msg);
	if (arc != 0) {
		node_http_reply_error(x, arc, msg);
		prepared_free(pp);
		return NULL;
	}
	return pp;
}

/*
 * On the HTTP thread that read the request: a leader's write goes straight
 * to the writer (no worker is involved at all); anything else is parsed
 * here, left with the request, and run by a worker.
 */
static int h_query_fast(struct lnode *n, struct node_http_ex *x,
                        const struct node_route *route)
{
	const char *body;
	size_t len;
	node_http_body(x, &body, &len);
	if (len > NODE_HTTP_FAST_BODY_BYTES_MAX)
		return NODE_ROUTE_WORKER;
	struct prepared *pp = prepare(n, x, route);
	if (pp == NULL)
		return 0;
	if (pp->where == RUN_WRITER &&
	    write_async(n, x, route, pp->j, &pp->qb) == 0) {
		lora_free(pp); /* its contents went with the write */
		return NODE_ROUTE_ASYNC;
	}
	if (pp->where == RUN_PROXY && peer_write(n, x, route, pp) == 0)
		return NODE_ROUTE_ASYNC;
	int intx = lora_says_transactions(body, len);
	uint64_t wait_ms = node_forward_wait_ms(n, pp->qb.req.time_ms_max);
	/* a write with its own time limit (header or body) goes alone: a
	 * batch's answer waits for its slowest write, which the wait for a
	 * lower limit does not cover */
	int flags = (has_rid(pp) ? NODE_PROXY_RESEND : 0) |
	            (intx || pp->qb.req.time_ms_max ? 0 : NODE_PROXY_BATCH);
	if (pp->where == RUN_PROXY && !node_http_on_io_thread(x)) {
		prepared_free(pp); /* the I/O thread parses it again */
		return NODE_ROUTE_IO;
	}
	if (pp->where == RUN_PROXY &&
	    node_proxy_start(n->proxy, x, route->path, route->name, flags,
	                     wait_ms) == 0) {
		prepared_free(pp);
		return NODE_ROUTE_ASYNC;
	}
	node_http_stash(x, pp, prepared_free);
	return NODE_ROUTE_WORKER;
}

/* ---- streamed read answers
 * ------------------------------------------------------ */

/*
 * A read's rows go out as the worker pulls them from the cursor: the JSON
 * document (the same one result_json builds) is written into `out`, and
 * once it holds NODE_HTTP_CHUNK_BYTES, or rows have waited
 * NODE_HTTP_FLUSH_MS, it leaves as one chunk of a chunked answer. An
 * answer that is complete before that is sent whole with a Content-Length
 * (most answers: no extra cost for small reads). The worker pulls no
 * further rows while a chunk waits for the client, so a slow reader holds
 * one chunk plus the kernel's socket buffer. Once a chunk went out the
 * status is 200 for good: a later error ends the document with an "error"
 * member instead of "bookmark". The graph format needs every row before
 * its first byte and is always sent whole.
 */
#define NODE_HTTP_CHUNK_BYTES (64u << 10)
#define NODE_HTTP_FLUSH_MS    100

struct rstream {
	struct lnode *n;
	struct node_http_ex *x;
	struct node_cursor *c;
	enum fmt fmt;
	int mode;
	const char *const *cols;
	size_t ncols;
	struct lora_buf out;      /* JSON not sent yet */
	struct node_json_graph g; /* graph, combined: the rows' entities */
	int graph;                /* g initialised */
	uint64_t g_charged;       /* g.bytes charged to the statement */
	int started;              /* the head went out: status 200 for good */
	uint64_t rows, unsent;    /* rows pulled; those in out */
	uint64_t flush_ms;        /* rows in out must leave by then */
	uint64_t check_ms;        /* next look at the client and the node */
	char bookmark[24];
};

static int buf_dump_cb(const char *p, size_t len, void *arg)
{
	return lora_buf_append(arg, p, len) == 0 ? 0 : -1;
}

/* Appends j (consumed; NULL: out of memory) as compact JSON. */
static int rs_put_json(struct rstream *rs, json_t *j)
{
	int rc =
	    j && json_dump_callback(j, buf_dump_cb, &rs->out, JSON_COMPACT) == 0
	        ? 0
	        : LORA_ENOMEM;
	json_decref(j);
	return rc;
}

static int rs_head(struct rstream *rs)
{
	json_t *cols = json_array();
	for (size_t i = 0; cols && i < rs->ncols; i++)
		json_array_append_new(cols, json_string(rs->cols[i]));
	int rc = lora_buf_puts(&rs->out, "{\"columns\":");
	if (rc == 0)
		rc = rs_put_json(rs, cols);
	if (rc == 0 && rs->fmt != FMT_GRAPH)
		rc = lora_buf_puts(&rs->out, ",\"rows\":[");
	if (rc == 0 && (rs->fmt == FMT_GRAPH || rs->fmt == FMT_COMBINED)) {
		rc = node_json_graph_init(&rs->g) ? LORA_ENOMEM : 0;
		rs->graph = rc == 0;
	}
	return rc;
}

/* Appends a row; 0, or the error (err set) of a value that cannot be
 * rendered: the answer fails rather than leave the column out. */
static int rs_row(struct rstream *rs, const Lora__Value *const *row,
                  struct qry_error *err)
{
	int rc = 0;
	if (rs->fmt != FMT_GRAPH) {
		json_t *o;
		rc = node_json_row(row,
		                   rs->fmt == FMT_ROW_ARRAYS ? NULL : rs->cols,
		                   rs->ncols, &o, err->message);
		if (rc) {
			err->code = rc;
			return rc;
		}
		if (rs->rows > 0)
			rc = lora_buf_putc(&rs->out, ',');
		if (rc == 0)
			rc = rs_put_json(rs, o);
		else
			json_decref(o);
	}
	for (size_t k = 0; rs->graph && k < rs->ncols; k++)
		node_json_graph_add(&rs->g, row[k]);
	/* the graph is sent at the end: what it holds until then counts
	 * against the statement's memory limits like the engine's own */
	if (rc == 0 && rs->graph && rs->g.bytes > rs->g_charged) {
		rc =
		    node_cursor_charge(rs->c, rs->g.bytes - rs->g_charged, err);
		if (rc == 0)
			rs->g_charged = rs->g.bytes;
		else {
			size_t k = strnlen(err->message, sizeof err->message);
			snprintf(err->message + k, sizeof err->message - k,
			         " (the nodes and relationships of the graph "
			         "format, kept until the answer ends; "
			         "\"format\":\"rows\" streams them)");
		}
	}
	if (rs->unsent++ == 0)
		rs->flush_ms = lora_now_ms() + NODE_HTTP_FLUSH_MS;
	rs->rows++;
	return rc;
}

/* Sends what out holds as the next chunk (the first with the head). */
static int rs_flush(struct rstream *rs, int last)
{
	struct node_http_ex *x = rs->x;
	int rc;
	if (!rs->started)
		rc = node_http_stream_start(
		    x, 200, "application/json", rs->bookmark,
		    node_cursor_deadline_ms(rs->c), rs->out.data, rs->out.len);
	else if (last)
		rc = node_http_stream_end(x, rs->out.data, rs->out.len);
	else
		rc = node_http_stream_write(x, rs->out.data, rs->out.len);
	rs->started = 1;
	if (rc == 0)
		node_metrics_rows_streamed(rs->n, NODE_API_HTTP, rs->unsent);
	rs->unsent = 0;
	lora_buf_reset(&rs->out);
	return rc;
}

/* Whether out must leave now. */
static int rs_due(const struct rstream *rs, uint64_t now)
{
	if (rs->fmt == FMT_GRAPH || rs->unsent == 0)
		return 0;
	return rs->out.len >= NODE_HTTP_CHUNK_BYTES || now >= rs->flush_ms;
}

/* The end of the document: the graph, the plan and the bookmark, or the
 * error (err set) that stopped it. */
static int rs_tail(struct rstream *rs, const struct qry_error *err)
{
	int rc = rs->fmt != FMT_GRAPH ? lora_buf_putc(&rs->out, ']') : 0;
	if (err && err->code) {
		json_t *j = node_http_error_json(
		    err->code, err->message[0] ? err->message : NULL, err->line,
		    err->column);
		json_t *e = json_incref(json_object_get(j, "error"));
		json_decref(j);
		if (rc == 0)
			rc = lora_buf_puts(&rs->out, ",\"error\":");
		if (rc == 0)
			rc = rs_put_json(rs, e);
		else
			json_decref(e);
		return rc ? rc : lora_buf_putc(&rs->out, '}');
	}
	if (rc == 0 && rs->graph) {
		rc = lora_buf_puts(&rs->out, ",\"graph\":");
		rs->graph = 0;
		if (rc == 0)
			rc = rs_put_json(rs, node_json_graph_take(&rs->g));
	}
	if (rc == 0 && rs->mode != QRY_RUN) {
		rc = lora_buf_puts(&rs->out, ",\"plan\":");
		if (rc == 0)
			rc = rs_put_json(
			    rs, node_json_from_value(node_cursor_plan(rs->c)));
	}
	if (rc == 0)
		rc = lora_buf_printf(&rs->out, ",\"bookmark\":\"%s\"}",
		                     rs->bookmark);
	return rc;
}

/* Why the statement must stop before its end, between two rows: the
 * node stops, or its state store is being replaced. */
static int rs_stop_reason(struct lnode *n, struct qry_error *err)
{
	if (atomic_load(&n->stopping))
		return err->code = lora_errf(
		           LORA_EUNAVAILABLE, err->message,
		           "this node is stopping: the answer is incomplete, "
		           "run the statement again");
	if (__atomic_load_n(&n->store_swapping, __ATOMIC_RELAXED))
		return err->code = lora_errf(
		           LORA_EUNAVAILABLE, err->message,
		           "this node is installing a checkpoint: the answer "
		           "is incomplete, run the statement again");
	return 0;
}

/* Pulls rows and sends chunks until the end, an error (err), or a send
 * that failed (returned: the connection is gone or hopeless). */
static int rs_pump(struct rstream *rs, struct qry_error *err)
{
	int rc = rs_head(rs);
	for (;;) {
		if (rc) {
			if (err->code == 0) /* else rs_row said why */
				err->code = lora_errf(rc, err->message,
				                      "out of memory");
			return 0;
		}
		const Lora__Value *const *row;
		int done = 0;
		if (node_cursor_next(rs->c, &row, &done, err) != 0 || done)
			return 0;
		rc = rs_row(rs, row, err);
		uint64_t now = lora_now_ms();
		if (rc == 0 && now >= rs->check_ms) {
			/* every NODE_HTTP_FLUSH_MS, and never per row: a
			 * client that left, a node that stops */
			rs->check_ms = now + NODE_HTTP_FLUSH_MS;
			if (node_http_client_gone(rs->x))
				return LORA_ECLOSED;
			if (rs_stop_reason(rs->n, err) != 0)
				return 0;
		}
		if (rc == 0 && rs_due(rs, now) && (rc = rs_flush(rs, 0)) != 0)
			return rc;
	}
}

static void rs_free(struct rstream *rs)
{
	if (rs->graph)
		node_json_graph_free(&rs->g);
	lora_buf_free(&rs->out);
	node_cursor_free(rs->n, rs->c);
}

static void reply_qry_error(struct node_http_ex *x, const struct qry_error *e)
{
	node_http_reply_json(
	    x, lora_err_http_status(e->code),
	    node_http_error_json(e->code, e->message[0] ? e->message : NULL,
	                         e->line, e->column),
	    NULL, NULL);
}

/* After the last row (or an error in err): the rest of the answer. 0, or
 * the error of a send that failed. */
static int rs_finish(struct rstream *rs, struct qry_error *err)
{
	if (err->code && !rs->started) {
		reply_qry_error(rs->x, err);
		return 0;
	}
	if (rs_tail(rs, err) != 0) {
		err->code = LORA_ENOMEM;
		if (!rs->started) {
			node_http_reply_error(rs->x, LORA_ENOMEM, NULL);
			return 0;
		}
		/* the document cannot be ended: the connection is closed
		 * without the last chunk, so the client sees it cut */
		return LORA_ENOMEM;
	}
	if (rs->started)
		return rs_flush(rs, 1);
	node_metrics_rows_streamed(rs->n, NODE_API_HTTP, rs->unsent);
	node_http_reply(rs->x, 200, "application/json", rs->out.data,
	                rs->out.len, rs->bookmark, NULL);
	return 0;
}

/* Runs a read statement here, streaming its answer; 1 when it succeeded.
 * A client that leaves stops it (counted in the metrics). */
static int stream_read(struct lnode *n, struct node_http_ex *x,
                       const struct node_route *route, struct prepared *pp)
{
	struct qry_error err;
	struct rstream rs = {
	    .n = n, .x = x, .fmt = pp->qb.fmt, .mode = route->mode};
	/* also inside one operator, before any row is out (an aggregation) */
	pp->qb.req.client_gone = node_http_gone;
	pp->qb.req.client_gone_arg = x;
	if (node_read_open(n, &pp->qb.req, NODE_API_HTTP, &rs.c, &err)) {
		if (err.code == LORA_ECLOSED) {
			node_http_abort(x);
			node_metrics_client_gone(n, NODE_API_HTTP);
		} else {
			reply_qry_error(x, &err);
		}
		return 0;
	}
	rs.ncols = node_cursor_columns(rs.c, &rs.cols);
	rs.check_ms = lora_now_ms() + NODE_HTTP_FLUSH_MS;
	snprintf(rs.bookmark, sizeof rs.bookmark, "%llu",
	         (unsigned long long)node_cursor_bookmark(rs.c));
	int sent_rc = rs_pump(&rs, &err);
	if (sent_rc == 0 && err.code == LORA_ECLOSED)
		sent_rc = LORA_ECLOSED; /* the engine saw the client leave */
	if (sent_rc == 0)
		sent_rc = rs_finish(&rs, &err);
	if (sent_rc) {
		node_http_abort(x);
		if (sent_rc == LORA_ECLOSED)
			node_metrics_client_gone(n, NODE_API_HTTP);
		else
			LOG_WARN("http: a streamed answer stopped after %llu "
			         "rows: %s",
			         (unsigned long long)rs.rows,
			         lora_strerror(sent_rc));
	}
	rs_free(&rs);
	return sent_rc == 0 && err.code == 0;
}

/* Runs the statement on this node (a write through the writer, waiting)
 * and answers; 1 when it succeeded. *unavailable: refused with
 * LORA_UNAVAILABLE (then nothing was answered when `quiet`). */
static int exec_reply(struct lnode *n, struct node_http_ex *x,
                      const struct node_route *route, struct prepared *pp,
                      int quiet, int *unavailable)
{
	if (pp->qb.req.kind == NODE_STMT_READ && route->mode != QRY_EXPLAIN) {
		*unavailable = 0;
		return stream_read(n, x, route, pp);
	}
	Lora__Response *r = NULL;
	Lora__Value *plan = NULL;
	node_exec(n, &pp->qb.req, &r, route->mode != QRY_RUN ? &plan : NULL,
	          NULL);
	int ok = r && r->error == NULL;
	*unavailable = r && r->error &&
	               node_err_from_code(r->error->code) == LORA_EUNAVAILABLE;
	if (r == NULL)
		node_http_reply_error(x, LORA_ENOMEM, NULL);
	else if (r->error && !(quiet && *unavailable))
		reply_resp_error(n, x, r);
	else if (!r->error)
		node_http_reply_json(x, 200,
		                     result_json(r, pp->qb.fmt,
		                                 plan ? plan : r->plan,
		                                 route->mode),
		                     r->bookmark, NULL);
	if (r)
		lora__response__free_unpacked(r, &lora_pb_allocator);
	if (plan)
		lora__value__free_unpacked(plan, &lora_pb_allocator);
	return ok;
}

/*
 * RUN_REROUTE: for up to NODE_REROUTE_MS the write goes to whoever leads
 * (passed on when another node does, run here when this one does again),
 * retried while it is refused with LORA_UNAVAILABLE (never executed), here
 * or by the node it was passed to (which may have passed it on as often
 * as allowed: this node's time decides, not the hops left).
 */
static int reroute_write(struct lnode *n, struct node_http_ex *x,
                         const struct node_route *route, struct prepared *pp)
{
	uint64_t deadline = lora_now_ms() + NODE_REROUTE_MS;
	for (;;) {
		uint64_t seq = node_status_seq(n);
		int last =
		    lora_now_ms() >= deadline || atomic_load(&n->stopping);
		int rc =
		    node_is_leader(n)
		        ? NODE_FORWARD_SELF
		        : proxy_write(
		              n, x, route,
		              (has_rid(pp) ? NODE_PROXY_RESEND : 0) |
		                  (last ? 0 : NODE_PROXY_HOLD_UNAVAILABLE));
		if (rc == 0)
			return 1; /* answered by the leader */
		int unavailable = 1, ok = 0;
		if (rc == NODE_FORWARD_SELF)
			ok = exec_reply(n, x, route, pp, !last, &unavailable);
		if (ok || !unavailable || last)
			return ok;
		/* a leader change is what usually ends the refusal: woken
		 * by it, else tried again after the pause */
		node_status_wait(n, seq, lora_now_ms() + NODE_REROUTE_POLL_MS);
	}
}

static int h_query(struct lnode *n, struct node_http_ex *x,
                   const struct node_route *route)
{
	struct prepared *pp = node_http_unstash(x);
	if (pp == NULL && (pp = prepare(n, x, route)) == NULL)
		return 0;
	if (pp->where == RUN_WRITER &&
	    write_async(n, x, route, pp->j, &pp->qb) == 0) {
		lora_free(pp);
		return NODE_ROUTE_ASYNC;
	}
	int ok, unavailable;
	const char *body;
	size_t len;
	node_http_body(x, &body, &len);
	if (pp->where == RUN_PROXY && peer_write(n, x, route, pp) == 0)
		return NODE_ROUTE_ASYNC;
	if (pp->where == RUN_PROXY &&
	    proxy_write(n, x, route, has_rid(pp) ? NODE_PROXY_RESEND : 0) == 0)
		ok = 1;
	else if (pp->where == RUN_REROUTE)
		ok = reroute_write(n, x, route, pp);
	else
		ok = exec_reply(n, x, route, pp, 0, &unavailable);
	prepared_free(pp);
	return ok;
}

/* ---- a follower's batch of passed-on writes (batch.h)
 * ------------------------------------------ */

/* A batch being answered: one reference per write in flight, and the
 * route's own until it has started them all. */
struct http_batch {
	struct node_http_ex *x;
	size_t count;
	atomic_size_t left;
	struct node_http_ex *kids[NODE_BATCH_MAX]; /* NULL: not taken */
};

/* Every write answered: the batch's answer, in the writes' order. */
static void batch_answer(struct http_batch *b)
{
	struct lora_buf out = {0};
	node_batch_put_head(&out, b->count);
	for (size_t i = 0; i < b->count; i++) {
		struct node_batch_ans a = {0};
		if (b->kids[i] != NULL)
			a.status = node_http_child_answer(
			    b->kids[i], &a.body, &a.body_len, &a.bookmark);
		a.bookmark_len = a.bookmark ? strlen(a.bookmark) : 0;
		node_batch_put_ans(&out, &a);
		node_http_child_free(b->kids[i]);
	}
	/* 200 in any case: the writes ran, so a status the follower takes
	 * for "nothing ran" must not come now; an empty body (out of
	 * memory) answers each LORA_UNKNOWN_OUTCOME there */
	int oom = lora_buf_error(&out);
	node_http_reply(b->x, 200, NODE_BATCH_CTYPE, oom ? "" : out.data,
	                oom ? 0 : out.len, NULL, NULL);
	lora_buf_free(&out);
	node_http_async_done(b->x);
	lora_free(b);
}

static void batch_put(struct http_batch *b)
{
	if (atomic_fetch_sub(&b->left, 1) == 1)
		batch_answer(b);
}

static void batch_kid_done(struct node_http_ex *kid, void *arg)
{
	(void)kid;
	batch_put(arg);
}

/* Runs one write of a batch as the leader runs a /query write (exactly
 * what h_query_fast does for RUN_WRITER); anything that would need a
 * worker, another hop or a password check is left untaken, for its
 * sender to send alone. 1 when handed to the writer (kid answers
 * later), 0 when answered now. */
static int batch_run(struct lnode *n, struct node_http_ex *kid,
                     const struct node_route *qr)
{
	int au = node_http_authorize(n, kid, qr, 1);
	if (au == NODE_AUTH_LATER) {
		node_http_child_untaken(kid);
		return 0;
	}
	if (au != 0)
		return 0; /* 401 or 403 */
	const char *body;
	size_t len;
	node_http_body(kid, &body, &len);
	if (len > NODE_HTTP_FAST_BODY_BYTES_MAX || !node_is_leader(n)) {
		node_http_child_untaken(kid);
		return 0;
	}
	struct prepared *pp = prepare(n, kid, qr);
	if (pp == NULL)
		return 0; /* answered: a malformed body, a forbidden write */
	if (pp->where == RUN_WRITER &&
	    write_async(n, kid, qr, pp->j, &pp->qb) == 0) {
		lora_free(pp);
		return 1;
	}
	prepared_free(pp);
	node_http_child_untaken(kid);
	return 0;
}

/*
 * POST /query/batch: only from another member (X-Lora-Forwarded, and
 * with authentication on its identity line, checked for the batch and
 * again for each write, whose identities may differ). The body is
 * decoded whole before anything runs, so a malformed one runs nothing.
 */
static int h_batch(struct lnode *n, struct node_http_ex *x,
                   const struct node_route *route)
{
	(void)route;
	const char *data;
	size_t len, count;
	node_http_body(x, &data, &len);
	struct node_batch_req reqs[NODE_BATCH_MAX];
	if (!node_http_forwarded(x) ||
	    (node_auth_enabled(n) && node_http_ident(x) == NULL)) {
		node_http_reply_error(x, LORA_EFORBIDDEN,
		                      "batches come only from other members");
		return 0;
	}
	if (node_batch_reqs(data, len, reqs, NODE_BATCH_MAX, &count) != 0) {
		node_http_reply_error(x, LORA_EINVAL, "malformed batch");
		return 0;
	}
	const struct node_route *qr = &node_routes[1];
	LORA_ASSERT(!strcmp(qr->path, "/query") && qr->fast == h_query_fast);
	struct http_batch *b = lora_calloc(1, sizeof *b);
	if (b == NULL) {
		node_http_reply_error(x, LORA_ENOMEM, NULL);
		return 0;
	}
	b->x = x;
	b->count = count;
	atomic_init(&b->left, count + 1);
	node_http_async(x);
	for (size_t i = 0; i < count; i++) {
		const struct node_http_child_req cr = {
		    .uri = qr->path,
		    .authz = reqs[i].authz_len ? reqs[i].authz : NULL,
		    .ident = reqs[i].ident_len ? reqs[i].ident : NULL,
		    .body = reqs[i].body,
		    .authz_len = reqs[i].authz_len,
		    .ident_len = reqs[i].ident_len,
		    .body_len = reqs[i].body_len,
		    .forwarded = reqs[i].hops};
		b->kids[i] = node_http_child_new(x, &cr, batch_kid_done, b);
		/* none made (memory): not taken */
		if (b->kids[i] == NULL || batch_run(n, b->kids[i], qr) == 0)
			batch_put(b);
	}
	batch_put(b);
	return NODE_ROUTE_ASYNC;
}

/* ---- simple endpoints
 * ---------------------------------------------------------- */

static int h_health(struct lnode *n, struct node_http_ex *x,
                    const struct node_route *r)
{
	(void)n, (void)r;
	node_http_reply_json(x, 200, json_pack("{s:s}", "status", "ok"), NULL,
	                     NULL);
	return 1;
}

static int h_status(struct lnode *n, struct node_http_ex *x,
                    const struct node_route *r)
{
	(void)r;
	char *s = node_status_json(n);
	if (s == NULL) {
		node_http_reply_error(x, LORA_ENOMEM, NULL);
		return 0;
	}
	node_http_reply(x, 200, "application/json", s, strlen(s), NULL, NULL);
	lora_free(s);
	return 1;
}

static int h_metrics(struct lnode *n, struct node_http_ex *x,
                     const struct node_route *r)
{
	(void)r;
	char *s = node_metrics_text(n);
	if (s == NULL) {
		node_http_reply_error(x, LORA_ENOMEM, NULL);
		return 0;
	}
	node_http_reply(x, 200, "text/plain; version=0.0.4", s, strlen(s), NULL,
	                NULL);
	lora_free(s);
	return 1;
}

/* Answers "not the leader" for admin calls that must run on it. */
/* Membership and transfer run on the leader: a follower passes the
 * request on (answered: -1), unless it came from another node. 0: run it
 * here. */
static int need_leader(struct lnode *n, struct node_http_ex *x)
{
	if (node_is_leader(n))
		return 0;
	if (!node_http_forwarded(x)) {
		const char *body;
		size_t len;
		node_http_body(x, &body, &len);
		return node_proxy_write(n->proxy, x, node_http_uri(x), body,
		                        len, 0, NODE_FORWARD_WAIT_MS) ==
		               NODE_FORWARD_SELF
		           ? 0
		           : -1;
	}
	Lora__Response r = LORA__RESPONSE__INIT;
	Lora__Error e = LORA__ERROR__INIT;
	e.code = (char *)lora_err_code(LORA_ENOTLEADER);
	e.message = "this operation runs on the leader";
	r.error = &e;
	reply_resp_error(n, x, &r);
	return -1;
}

/* Waits until `to` leads, deadline_ms passes or the node stops, woken by
 * each change of role, leader or term the raft loop publishes. */
static void leader_wait(struct lnode *n, uint64_t to, uint64_t deadline_ms)
{
	for (;;) {
		uint64_t seq = node_status_seq(n); /* before the look */
		if (node_leader_id(n) == to ||
		    node_status_wait(n, seq, deadline_ms) != 0)
			return;
	}
}

static int h_transfer(struct lnode *n, struct node_http_ex *x,
                      const struct node_route *r)
{
	(void)r;
	static const char *const fields[] = {"to", NULL};
	json_t *j = body_json(x, 1);
	if (j == NULL)
		return 0;
	int ok = 0;
	uint64_t to = 0;
	char msg[LORA_ERRMSG_BYTES];
	if (check_fields(x, j, fields) || need_leader(n, x)) {
		json_decref(j);
		return 0;
	}
	if (field_u64(j, "to", &to) == LORA_EINVAL) {
		node_http_reply_error(x, LORA_EINVAL,
		                      "\"to\" must be a node id");
	} else {
		if (to == 0) {
			struct rep_status st;
			node_status_get(n, &st);
			for (uint32_t i = 0; i < st.n_peers && to == 0; i++)
				if (st.peers[i].voter &&
				    st.peers[i].id != n->cfg.id)
					to = st.peers[i].id;
		}
		int rc = to ? node_raft_transfer(n, to, msg)
		            : lora_errf(LORA_EINVAL, msg, "no other voter");
		if (rc == 0)
			leader_wait(n, to,
			            lora_now_ms() + NODE_TRANSFER_WAIT_MS);
		if (rc == 0 && node_leader_id(n) != to)
			rc =
			    lora_errf(LORA_ETIMEOUT, msg,
			              "leadership did not move to %llu in time",
			              (unsigned long long)to);
		if (rc)
			node_http_reply_error(x, rc, msg);
		else
			node_http_reply_json(
			    x, 200,
			    json_pack("{s:I}", "leader", (json_int_t)to), NULL,
			    NULL);
		ok = rc == 0;
	}
	json_decref(j);
	return ok;
}

static int h_add(struct lnode *n, struct node_http_ex *x,
                 const struct node_route *r)
{
	(void)r;
	static const char *const fields[] = {"id", "peer", "http", NULL};
	json_t *j = body_json(x, 0);
	if (j == NULL)
		return 0;
	uint64_t id = 0, index = 0;
	const char *peer = json_string_value(json_object_get(j, "peer"));
	const char *http = json_string_value(json_object_get(j, "http"));
	char msg[LORA_ERRMSG_BYTES], ctx[REP_CONF_CONTEXT_BYTES_MAX];
	int ok = 0;
	if (check_fields(x, j, fields) || need_leader(n, x)) {
		json_decref(j);
		return 0;
	}
	if (field_u64(j, "id", &id) || id == 0 || peer == NULL ||
	    strchr(peer, ' ') || (http && strchr(http, ' ')) ||
	    strlen(peer) + (http ? strlen(http) : 1) + 2 > sizeof ctx) {
		node_http_reply_error(
		    x, LORA_EINVAL,
		    "need {\"id\": N, \"peer\": \"host:port\", "
		    "\"http\": \"host:port\"}");
	} else {
		snprintf(ctx, sizeof ctx, "%s %s", peer, http ? http : "-");
		int rc = node_raft_conf_change(n, REP_CONF_ADD_LEARNER, id, ctx,
		                               &index, msg);
		if (rc)
			node_http_reply_error(x, rc, msg);
		else
			node_http_reply_json(x, 200,
			                     json_pack("{s:I,s:I,s:s}", "id",
			                               (json_int_t)id, "index",
			                               (json_int_t)index,
			                               "role", "learner"),
			                     NULL, NULL);
		ok = rc == 0;
	}
	json_decref(j);
	return ok;
}

static int h_remove(struct lnode *n, struct node_http_ex *x,
                    const struct node_route *r)
{
	(void)r;
	static const char *const fields[] = {"id", NULL};
	json_t *j = body_json(x, 0);
	if (j == NULL)
		return 0;
	uint64_t id = 0, index = 0;
	char msg[LORA_ERRMSG_BYTES];
	int ok = 0;
	if (check_fields(x, j, fields) || need_leader(n, x)) {
		json_decref(j);
		return 0;
	}
	if (field_u64(j, "id", &id) || id == 0) {
		node_http_reply_error(x, LORA_EINVAL, "need {\"id\": N}");
	} else if (id == n->cfg.id) {
		/* A leader removing itself can commit the removal and step
		 * down before the others learn of the commit; then no
		 * candidate can win (docs/raft.md, Membership). */
		snprintf(msg, sizeof msg,
		         "node %llu is the leader: move leadership first "
		         "(POST /cluster/transfer {} or {\"to\": N}), then "
		         "remove it",
		         (unsigned long long)id);
		node_http_reply_error(x, LORA_EINVAL, msg);
	} else {
		int rc = node_raft_conf_change(n, REP_CONF_REMOVE, id, NULL,
		                               &index, msg);
		if (rc)
			node_http_reply_error(x, rc, msg);
		else
			node_http_reply_json(x, 200,
			                     json_pack("{s:I,s:I}", "id",
			                               (json_int_t)id, "index",
			                               (json_int_t)index),
			                     NULL, NULL);
		ok = rc == 0;
	}
	json_decref(j);
	return ok;
}

/* ---- admin
 * ---------------------------------------------------------------------- */

/* Copies one file into new file b (mode 0600, fsynced). */
static int copy_file(const char *a, const char *b, char *buf, char *msg)
{
	int fd = open(b, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *in = fopen(a, "rb"), *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (out == NULL && fd >= 0)
		close(fd);
	size_t k;
	while (in && out && (k = fread(buf, 1, NODE_COPY_CHUNK_BYTES, in)) > 0)
		if (fwrite(buf, 1, k, out) != k)
			break;
	int rc = 0;
	if (!in || !out || ferror(in) || fflush(out) || fsync(fileno(out)))
		rc = lora_errf(LORA_EIO, msg, "copy %s to %s failed", a, b);
	if (in)
		fclose(in);
	if (out)
		fclose(out);
	return rc;
}

/* Copies the files of checkpoint dir src (flat) into new directory dst
 * (mode 0700, files 0600: a backup is the whole database). */
static int copy_dir(const char *src, const char *dst, char *msg)
{
	if (mkdir(dst, 0700) != 0)
		return lora_errf(errno == EEXIST ? LORA_EEXIST : LORA_EIO, msg,
		                 "create %s: %s", dst, strerror(errno));
	DIR *d = opendir(src);
	if (d == NULL)
		return lora_errf(LORA_EIO, msg, "open %s: %s", src,
		                 strerror(errno));
	struct dirent *de;
	int rc = 0;
	char *buf = lora_malloc(NODE_COPY_CHUNK_BYTES);
	if (buf == NULL)
		rc = LORA_ENOMEM;
	while (rc == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char a[NODE_PATH_BYTES_MAX * 2], b[NODE_PATH_BYTES_MAX * 2];
		snprintf(a, sizeof a, "%s/%s", src, de->d_name);
		snprintf(b, sizeof b, "%s/%s", dst, de->d_name);
		rc = copy_file(a, b, buf, msg);
	}
	lora_free(buf);
	closedir(d);
	return rc;
}

#define NODE_BACKUP_NAME_BYTES_MAX 255

/*
 * A backup is named, never placed: the request's "backup" is one path
 * component (letters, digits, '.', '-', '_'; not starting with '.'), and
 * the copy goes to <backup_dir>/<name>, the configured directory, created
 * 0700 when missing. Fills path (bytes long) or gives LORA_EINVAL.
 */
static int backup_path(struct lnode *n, const char *name, char *path,
                       size_t bytes, char *msg)
{
	size_t len = strlen(name);
	int ok = len > 0 && len <= NODE_BACKUP_NAME_BYTES_MAX && name[0] != '.';
	for (size_t i = 0; ok && i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		ok = isalnum(ch) || ch == '.' || ch == '-' || ch == '_';
	}
	if (!ok)
		return lora_errf(
		    LORA_EINVAL, msg,
		    "\"backup\" is a name (letters, digits, '.', "
		    "'-', '_', not starting with '.', at most %d "
		    "bytes), not a path: the backup goes under the "
		    "node's backup_dir",
		    NODE_BACKUP_NAME_BYTES_MAX);
	char dir[NODE_PATH_BYTES_MAX];
	node_config_backup_dir(&n->cfg, dir, sizeof dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return lora_errf(LORA_EIO, msg, "create backup_dir %s: %s", dir,
		                 strerror(errno));
	if ((size_t)snprintf(path, bytes, "%s/%s", dir, name) >= bytes)
		return lora_errf(LORA_EINVAL, msg, "backup path too long");
	return 0;
}

static int h_checkpoint(struct lnode *n, struct node_http_ex *x,
                        const struct node_route *r)
{
	(void)r;
	static const char *const fields[] = {"backup", NULL};
	json_t *j = body_json(x, 1);
	if (j == NULL)
		return 0;
	if (check_fields(x, j, fields)) {
		json_decref(j);
		return 0;
	}
	const char *name = json_string_value(json_object_get(j, "backup"));
	char msg[LORA_ERRMSG_BYTES],
	    backup[NODE_PATH_BYTES_MAX + NODE_BACKUP_NAME_BYTES_MAX + 2];
	uint64_t index = 0;
	char *path = NULL;
	int rc = 0;
	if (json_object_get(j, "backup"))
		rc = name == NULL
		         ? lora_errf(LORA_EINVAL, msg,
		                     "\"backup\" must be a string (a name)")
		         : backup_path(n, name, backup, sizeof backup, msg);
	if (rc == 0)
		rc = node_checkpoint_now(n, &index, &path, msg);
	if (rc == 0 && name)
		rc = copy_dir(path, backup, msg);
	if (rc)
		node_http_reply_error(x, rc, msg);
	else
		node_http_reply_json(x, 200,
		                     json_pack("{s:I,s:s,s:s*}", "index",
		                               (json_int_t)index, "path", path,
		                               "backup", name ? backup : NULL),
		                     NULL, NULL);
	lora_free(path);
	json_decref(j);
	return rc == 0;
}

static int h_digest(struct lnode *n, struct node_http_ex *x,
                    const struct node_route *r)
{
	(void)r;
	const char *uri = node_http_uri(x);
	const char *q = strstr(uri, "index=");
	uint64_t want = 0;
	if (q)
		want = strtoull(q + 6, NULL, 10);
	if (want && node_wait_applied(n, want, NODE_DIGEST_WAIT_MS) != 0) {
		node_http_reply_error(x, LORA_ETIMEOUT,
		                      "index not applied on this node in time");
		return 0;
	}
	char hex[STO_DIGEST_HEX_BYTES], sys[STO_DIGEST_HEX_BYTES];
	char msg[LORA_ERRMSG_BYTES];
	struct sto_store *s = node_store_acquire(n);
	uint64_t applied = sto_applied_index(s);
	char hn[STO_HNSW_DIGEST_HEX_BYTES] = "";
	int rc = sto_digest(s, hex, msg);
	if (rc == 0)
		rc = sto_digest_system(s, sys, msg);
	if (rc == 0 && strstr(uri, "hnsw=1")) /* graph bytes: tests */
		rc = sto_hnsw_digest(s, hn);
	node_store_release(n);
	if (rc) {
		node_http_reply_error(x, rc, msg);
		return 0;
	}
	node_http_reply_json(x, 200,
	                     json_pack("{s:I,s:s,s:s,s:s}", "appliedIndex",
	                               (json_int_t)applied, "digest", hex,
	                               "systemDigest", sys, "hnswDigest", hn),
	                     NULL, NULL);
	return 1;
}

struct node_route node_routes[] = {
    {"GET", "/health", "health", h_health, 0, NULL, NULL},
    {"POST", "/query", "query", h_query, QRY_RUN, NULL, h_query_fast},
    {"POST", NODE_BATCH_PATH, "batch", h_batch, QRY_RUN, NULL, h_batch},
    {"POST", "/explain", "explain", h_query, QRY_EXPLAIN, NULL, NULL},
    {"POST", "/profile", "profile", h_query, QRY_PROFILE, NULL, NULL},
    {"GET", "/cluster/status", "status", h_status, 0, NULL, NULL},
    {"POST", "/cluster/transfer", "transfer", h_transfer, 0, NULL, NULL},
    {"POST", "/cluster/add", "add", h_add, 0, NULL, NULL},
    {"POST", "/cluster/remove", "remove", h_remove, 0, NULL, NULL},
    {"POST", "/admin/checkpoint", "checkpoint", h_checkpoint, 0, NULL, NULL},
    {"GET", "/admin/digest", "digest", h_digest, 0, NULL, NULL},
    {"GET", "/metrics", "metrics", h_metrics, 0, NULL, NULL},
    {"GET", "/changes", "changes", node_changes_route, 0, NULL, NULL},
    {"POST", "/auth/token", "token", node_http_token, 0, NULL, NULL},
    {"POST", "/tx", "tx", node_http_tx_route, 0, NULL, NULL},
    {"POST", "/tx/*", "tx", node_http_tx_route, 0, NULL, NULL},
    {"DELETE", "/tx/*", "tx", node_http_tx_route, 0, NULL, NULL},
    {NULL, NULL, NULL, NULL, 0, NULL, NULL},
};
