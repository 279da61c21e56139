/*
 * http_node.c - the node's HTTP API on the server of http.h: finds each
 * request's route (node_routes, http_api.c), authorizes it (http_auth.c),
 * runs the route's fast part on the I/O thread and the rest on a worker,
 * counts it in the metrics, and starts and stops the server with the node.
 *
 * The server knows nothing of the node; what a route needs to know about
 * its request beyond the bytes (the route, who asks) lives in the
 * server's per-request room (struct api_req), zeroed before each request.
 */
#include <string.h>

#include "http_int.h"

/* The handler's room in each request (node_http_req_ctx). */
struct api_req {
	const struct node_route *route;
	int authorized; /* who is set */
	struct node_identity who;
};

static struct api_req *api_req(const struct node_http_ex *x)
{
	return node_http_req_ctx(x);
}

void node_http_set_identity(struct node_http_ex *x,
                            const struct node_identity *who)
{
	struct api_req *q = api_req(x);
	q->who = *who;
	q->authorized = 1;
}

const struct node_identity *node_http_identity(const struct node_http_ex *x)
{
	return &api_req(x)->who;
}

void node_http_reply_unauthorized(struct node_http_ex *x, const char *msg)
{
	node_http_extra_head(x, "WWW-Authenticate: Basic realm=\"lora\", "
	                        "Bearer realm=\"lora\"\r\n");
	node_http_reply_error(x, LORA_EUNAUTHORIZED, msg);
}

/* Whether a route's path matches the request's (plen bytes of uri): the
 * same, or for a path ending in a slash and a star (http_tx.c's /tx/{id}),
 * anything longer that starts with it less the star. */
static int path_match(const char *path, const char *uri, size_t plen)
{
	size_t len = strlen(path);
	if (len >= 2 && !strcmp(path + len - 2, "/*"))
		return plen >= len && !strncmp(path, uri, len - 1);
	return len == plen && !strncmp(path, uri, plen);
}

/* The route for method and uri; NULL with *status 404 (unknown path) or
 * 405 (known path, other method). */
static const struct node_route *route_find(const char *method, const char *uri,
                                           int *status)
{
	size_t plen = strcspn(uri, "?");
	int path_seen = 0;
	for (const struct node_route *r = node_routes; r->path; r++) {
		if (!path_match(r->path, uri, plen))
			continue;
		path_seen = 1;
		if (!strcmp(r->method, method))
			return r;
	}
	*status = path_seen ? 405 : 404;
	return NULL;
}

/* Sets q->route: 0, or 1 when x was answered 404 / 405. */
static int route_lookup(struct node_http_ex *x, struct api_req *q)
{
	int status = 0;
	q->route = route_find(node_http_method(x), node_http_uri(x), &status);
	if (q->route)
		return 0;
	node_http_reply_json(
	    x, status,
	    node_http_error_json(status == 404 ? LORA_ENOTFOUND : LORA_EINVAL,
	                         status == 404
	                             ? "unknown endpoint"
	                             : "method not allowed on this endpoint",
	                         0, 0),
	    NULL, NULL);
	return 1;
}

/* The I/O thread (or a worker that read the request on a connection it
 * had just answered): the route, a cached authorization (a password not
 * checked lately costs argon2id: on a worker) and the route's fast part. */
static int api_io(void *arg, struct node_http_ex *x)
{
	struct lnode *n = arg;
	struct api_req *q = api_req(x);
	if (route_lookup(x, q))
		return NODE_HTTP_ANSWERED;
	int au = node_http_authorize(n, x, q->route, 1);
	if (au == NODE_AUTH_LATER)
		return NODE_HTTP_TO_WORKER;
	if (au != 0)
		return NODE_HTTP_ANSWERED; /* 401 or 403 */
	const struct node_route *r = q->route;
	if (r->fast == NULL)
		return NODE_HTTP_TO_WORKER;
	uint64_t t0 = lora_now_ns();
	int ok = r->fast(n, x, r);
	if (ok == NODE_ROUTE_ASYNC)
		return NODE_HTTP_HANDED_ON;
	if (ok == NODE_ROUTE_WORKER && !node_http_replied(x))
		return NODE_HTTP_TO_WORKER;
	if (ok == NODE_ROUTE_IO && !node_http_replied(x))
		return NODE_HTTP_TO_IO;
	node_metrics_request(n, r->name, ok, lora_now_ns() - t0);
	return NODE_HTTP_ANSWERED;
}

/* A worker: the route (pipelined requests come here first), then the
 * authorization a password needs, then the route itself. */
static int api_work(void *arg, struct node_http_ex *x)
{
	struct lnode *n = arg;
	struct api_req *q = api_req(x);
	if (q->route == NULL && route_lookup(x, q))
		return NODE_HTTP_ANSWERED;
	uint64_t t0 = lora_now_ns();
	const struct node_route *r = q->route;
	if (!q->authorized && node_http_authorize(n, x, r, 0) != 0) {
		node_metrics_request(n, r->name, 0, lora_now_ns() - t0);
		return NODE_HTTP_ANSWERED; /* 401 or 403 */
	}
	int ok = r->fn(n, x, r);
	if (ok == NODE_ROUTE_ASYNC)
		return NODE_HTTP_HANDED_ON;
	node_metrics_request(n, r->name, ok, lora_now_ns() - t0);
	return NODE_HTTP_ANSWERED;
}

static void api_tick(void *arg)
{
	struct lnode *n = arg;
	node_proxy_tick(n->proxy);
}

static void api_flush(void *arg)
{
	struct lnode *n = arg;
	node_proxy_flush(n->proxy);
}

/* A streamed read holds the store: a checkpoint install waiting for it
 * must not wait for a slow reader, nor a stopping node. */
static int api_stopping(void *arg)
{
	struct lnode *n = arg;
	return atomic_load(&n->stopping) ||
	       __atomic_load_n(&n->store_swapping, __ATOMIC_RELAXED);
}

static void api_stopped(void *arg)
{
	struct lnode *n = arg;
	node_proxy_drop(n->proxy);
	node_http_tx_reap(n); /* stopping: rolls back every open one */
}

int node_http_start(struct lnode *n, char *errmsg)
{
	const struct node_http_cfg cfg = {.addr = n->cfg.http_addr,
	                                  .tls = &n->cfg.http_tls,
	                                  .pending_per_source =
	                                      n->cfg.pending_per_source,
	                                  .pending_until_known = 1};
	const struct node_http_ops ops = {.arg = n,
	                                  .io = api_io,
	                                  .work = api_work,
	                                  .tick = api_tick,
	                                  .flush = api_flush,
	                                  .stopping = api_stopping,
	                                  .stopped = api_stopped,
	                                  .ctx_bytes = sizeof(struct api_req)};
	return node_http_open(&cfg, &ops, &n->http, errmsg);
}

void node_http_stop(struct lnode *n)
{
	node_http_close(n->http);
	n->http = NULL;
}
