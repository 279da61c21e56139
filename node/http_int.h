/* http_int.h - private to the node's HTTP API (http_node.c, http_api.c,
 * http_tx.c, http_auth.c, proxy_node.c, cdc.c): routes on top of the
 * server of http.h. */
#ifndef LORA_NODE_HTTP_INT_H
#define LORA_NODE_HTTP_INT_H

#include <jansson.h>

#include "http.h"
#include "node_int.h"

/* bodies up to this size may be parsed on the HTTP I/O thread */
#define NODE_HTTP_FAST_BODY_BYTES_MAX (64u << 10)

struct node_route;

/* Answers the request (exactly one node_http_reply* call); returns 1 on
 * success (for metrics), or NODE_ROUTE_ASYNC after node_http_async when
 * another thread answers (the route must not touch x after handing it on). */
#define NODE_ROUTE_ASYNC 2
/* From a route's `fast` part: not answered, run `fn` on a worker. */
#define NODE_ROUTE_WORKER 3
/* From a route's `fast` part on a worker (node_http_on_io_thread 0): not
 * answered, run it again on the I/O thread (what only that thread may
 * do: node_proxy_start). Nothing of the request may be kept. */
#define NODE_ROUTE_IO 4
typedef int (*node_route_fn)(struct lnode *n, struct node_http_ex *x,
                             const struct node_route *r);

struct node_route {
	const char *method;
	const char *path;
	const char *name; /* metrics label */
	node_route_fn fn;
	int mode; /* /query, /explain, /profile: enum qry_mode */
	struct node_http *http;
	/* Optional: runs first, on the HTTP I/O thread (or on a worker that
	 * read the request itself: node_http_on_io_thread), and must not block.
	 * Answers (0/1), hands x on (NODE_ROUTE_ASYNC), or leaves it to fn on
	 * a worker (NODE_ROUTE_WORKER). Its answers never block either. */
	node_route_fn fast;
};

/* GET /changes: the change stream (cdc.c). */
int node_changes_route(struct lnode *n, struct node_http_ex *x,
                       const struct node_route *r);

/* POST /tx, POST /tx/{id}[/commit|/rollback], DELETE /tx/{id}: explicit
 * transactions (http_tx.c). */
int node_http_tx_route(struct lnode *n, struct node_http_ex *x,
                       const struct node_route *r);

/* The parts of a /tx request (http_tx.c; pure functions, fuzzed by
 * fuzz_http_tx). A body: its statements and options, borrowed from j. */
struct node_tx_body {
	json_t *j;     /* the parsed body: json_decref it (also on error) */
	json_t *stmts; /* array, may be NULL */
	int read;      /* "mode": "read" */
	int row_arrays;
	uint32_t timeout_ms; /* at most NODE_TX_IDLE_MS_MAX */
	uint64_t mem_bytes_max;
	uint64_t bookmark;
	/* X-Lora-Time-Ms of the request (0: none): lowers each statement's
	 * time limit (a follower passing statements on sends its own) */
	uint64_t time_ms;
};
/* An empty body is no statements. 0, or LORA_EINVAL with msg. */
int node_http_tx_body(const char *data, size_t len, struct node_tx_body *b,
                      char *msg);
/* Statement i of b into req->query and req->params (borrowed from b, and
 * *params: lora__value_map__free_unpacked it, also on error). 0, or the
 * error (LORA_EINVAL, LORA_EPARAMS, ...) with msg. */
int node_http_tx_stmt(const struct node_tx_body *b, size_t i,
                      struct node_exec_req *req, Lora__ValueMap **params,
                      char *msg);
enum node_tx_op { NODE_TX_RUN = 0, NODE_TX_COMMIT, NODE_TX_ROLLBACK };
/* "/tx/ID", "/tx/ID/commit", "/tx/ID/rollback" (query string ignored),
 * DELETE only on "/tx/ID": 0 with id (NODE_XTX_ID_BYTES) and *op, or -1. */
int node_http_tx_target(const char *method, const char *uri, char *id,
                        enum node_tx_op *op);

/* NULL-path terminated table (http_api.c). */
extern struct node_route node_routes[];

/* A write refused as leadership moved is passed on again only below
 * NODE_FORWARD_HOPS_MAX (http.h) hops. */

/* A follower's writes go to the leader's HTTP API through n->proxy
 * (proxy.h; node_proxy_write on a worker, node_proxy_start on the I/O
 * thread, node_proxy_tick every tick, node_proxy_drop once it stopped),
 * made by node_http_proxy_open (proxy_node.c: the node's side) and freed
 * with node_proxy_free. */
int node_http_proxy_open(struct lnode *n, char *errmsg);

/* ---- who asks (http_auth.c) ----------------------------------------------
 *
 * Every request but /health (and /metrics with metrics_auth = off) is
 * authenticated before its route runs: Basic (user:password), Bearer (a
 * token from POST /auth/token), or, from another member passing a request
 * on, X-Lora-Identity (the role and user it checked, with the cluster
 * secret as proof). The route's own needs (admin for the /cluster/ changes
 * and /admin/ endpoints) are checked there too; statements are checked by role
 * where they are parsed (http_api.c, exec.c, the writer).
 */
/* node_http_authorize with cache_only: a password must be hashed first
 * (on a worker: argon2id is too slow for the I/O thread). */
#define NODE_AUTH_LATER 2
/* 0: authorized (node_http_identity set); 1: answered (401 or 403);
 * NODE_AUTH_LATER. */
int node_http_authorize(struct lnode *n, struct node_http_ex *x,
                        const struct node_route *r, int cache_only);
/* Who asks, once authorized (http_node.c keeps it with the request). */
void node_http_set_identity(struct node_http_ex *x,
                            const struct node_identity *who);
const struct node_identity *node_http_identity(const struct node_http_ex *x);
/* 401 with WWW-Authenticate. */
void node_http_reply_unauthorized(struct node_http_ex *x, const char *msg);
/* The X-Lora-Identity header line (with its CRLF) a member adds when it
 * passes x on to the leader, into out (NODE_HTTP_IDENT_BYTES); "" when
 * authentication is off. Before this node has the cluster secret: the
 * caller's own Authorization line, for the leader to check. */
#define NODE_HTTP_IDENT_BYTES 3072
void node_http_ident_line(struct lnode *n, const struct node_http_ex *x,
                          char *out, size_t size);
/* POST /auth/token: a bearer token for the caller. */
int node_http_token(struct lnode *n, struct node_http_ex *x,
                    const struct node_route *r);

#endif
