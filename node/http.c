/*
 * http.c - the HTTP API (nng_http_server + jansson), LoraDB-compatible.
 *
 * nng calls a handler on its own threads; the handler only queues the
 * request, and NODE_HTTP_WORKERS threads of ours answer it (a write may
 * wait for commit, a read for a bookmark), then complete nng's aio.
 * Errors have one shape: {"error":{"code","message","category"}} with the
 * status of lora_err_http_status(). nng does not read request bodies here
 * (it would answer a too-large one with its own 400): a worker reads the
 * body itself, so a body above NODE_HTTP_BODY_BYTES_MAX gets 413 LORA_LIMIT
 * (read and dropped first, up to NODE_HTTP_DRAIN_BYTES_MAX, so the client
 * sees the answer), and a catch-all route answers unknown endpoints with a
 * JSON 404 (405 for a known path with another method). nng's own error
 * pages (malformed HTTP) carry the same JSON, with nng's text/html type.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "http_int.h"
#include "json.h"
#include "log.h"
#include "node_int.h"

#define NODE_HTTP_WORKERS   32
#define NODE_HTTP_QUEUE_MAX 4096
#define NODE_HTTP_DRAIN_BYTES_MAX                                              \
	(64u << 20) /* too-large body read+dropped                             \
	             */
#define NODE_HTTP_DRAIN_CHUNK_BYTES (64u << 10)
#define NODE_HTTP_BODY_READ_MS      30000 /* whole body, then the conn closes */

struct http_job {
	struct http_job *next;
	nng_aio *aio;
	nng_http_req *req;
	const struct node_route *route;
};

struct node_http {
	nng_http_server *server;
	pthread_t threads[NODE_HTTP_WORKERS];
	int n_threads;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct http_job *head, *tail;
	size_t qlen;
	int stopping;
	struct lnode *n;
};

/* ---- replies
 * ------------------------------------------------------------------ */

/* close: ask nng to close the connection after this answer (a request
 * body was left unread on it). */
static void reply_res(nng_aio *aio, int status, const char *ctype,
                      const char *body, size_t len, const char *bookmark,
                      const char *location, int close)
{
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_http_res_set_status(res, (uint16_t)status);
	if (status == 413) /* nng 1.5 has no reason text for it */
		nng_http_res_set_reason(res, "Payload Too Large");
	nng_http_res_set_header(res, "Content-Type", ctype);
	if (bookmark && bookmark[0])
		nng_http_res_set_header(res, "X-Lora-Bookmark", bookmark);
	if (location)
		nng_http_res_set_header(res, "Location", location);
	if (close)
		nng_http_res_set_header(res, "Connection", "close");
	nng_http_res_copy_data(res, body, len);
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

void node_http_reply(nng_aio *aio, int status, const char *ctype,
                     const char *body, size_t len, const char *bookmark,
                     const char *location)
{
	reply_res(aio, status, ctype, body, len, bookmark, location, 0);
}

void node_http_reply_json(nng_aio *aio, int status, json_t *j,
                          const char *bookmark, const char *location)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (s == NULL) {
		static const char oom[] = "{\"error\":{\"code\":\"LORA_"
		                          "INTERNAL\",\"message\":\"out of "
		                          "memory\",\"category\":\"server\"}}";
		node_http_reply(aio, 500, "application/json", oom,
		                sizeof oom - 1, NULL, NULL);
	} else {
		node_http_reply(aio, status, "application/json", s, strlen(s),
		                bookmark, location);
	}
	free(s);
	json_decref(j);
}

json_t *node_http_error_json(int code, const char *msg, uint32_t line,
                             uint32_t column)
{
	json_t *e = json_pack("{s:s,s:s,s:s}", "code", lora_err_code(code),
	                      "message", msg ? msg : lora_strerror(code),
	                      "category", lora_err_category(code));
	if (e && line > 0)
		json_object_set_new(e, "position",
		                    json_pack("{s:i,s:i}", "line", (int)line,
		                              "column", (int)column));
	return json_pack("{s:o*}", "error", e);
}

void node_http_reply_error(nng_aio *aio, int code, const char *msg)
{
	node_http_reply_json(aio, lora_err_http_status(code),
	                     node_http_error_json(code, msg, 0, 0), NULL, NULL);
}

/* An error answer after which nng closes the connection. */
static void reply_error_close(nng_aio *aio, int code, const char *msg)
{
	json_t *j = node_http_error_json(code, msg, 0, 0);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (s == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	reply_res(aio, lora_err_http_status(code), "application/json", s,
	          strlen(s), NULL, NULL, 1);
	free(s);
}

/* ---- request bodies
 * ---------------------------------------------------------- */

/* Reads len bytes of body into buf (len > 0); nng error or 0. */
static int conn_read(nng_http_conn *conn, void *buf, size_t len)
{
	nng_aio *raio;
	int rv = nng_aio_alloc(&raio, NULL, NULL);
	if (rv != 0)
		return rv;
	nng_iov iov = {.iov_buf = buf, .iov_len = len};
	nng_aio_set_iov(raio, 1, &iov);
	nng_aio_set_timeout(raio, NODE_HTTP_BODY_READ_MS);
	nng_http_conn_read_all(conn, raio);
	nng_aio_wait(raio);
	rv = nng_aio_result(raio);
	nng_aio_free(raio);
	return rv;
}

/* A body above the limit: read and drop it (when not huge) so the client,
 * still sending, gets the 413 instead of a reset connection. */
static void refuse_body(nng_aio *aio, nng_http_conn *conn, uint64_t len)
{
	char msg[LORA_ERRMSG_BYTES];
	snprintf(msg, sizeof msg,
	         "request body of %llu bytes is larger than the limit of %u "
	         "bytes",
	         (unsigned long long)len, (unsigned)NODE_HTTP_BODY_BYTES_MAX);
	uint8_t *scratch = len <= NODE_HTTP_DRAIN_BYTES_MAX
	                       ? lora_malloc(NODE_HTTP_DRAIN_CHUNK_BYTES)
	                       : NULL;
	int rv = scratch ? 0 : -1;
	for (uint64_t left = len; rv == 0 && left > 0;) {
		size_t k = left < NODE_HTTP_DRAIN_CHUNK_BYTES
		               ? (size_t)left
		               : NODE_HTTP_DRAIN_CHUNK_BYTES;
		rv = conn_read(conn, scratch, k);
		left -= k;
	}
	lora_free(scratch);
	if (rv == 0)
		node_http_reply_error(aio, LORA_ELIMIT, msg);
	else if (rv > 0)
		nng_aio_finish(aio, rv); /* the client went away: hard close */
	else
		reply_error_close(aio, LORA_ELIMIT, msg);
}

/* Reads the request body into req (nng leaves it on the connection).
 * 0: read (or none); -1: answered with an error, the job is done. */
static int take_body(nng_aio *aio, nng_http_req *req)
{
	const char *te = nng_http_req_get_header(req, "Transfer-Encoding");
	const char *cl = nng_http_req_get_header(req, "Content-Length");
	if (te != NULL) {
		reply_error_close(aio, LORA_EINVAL,
		                  "chunked request bodies are not supported: "
		                  "send a Content-Length");
		return -1;
	}
	if (cl == NULL)
		return 0;
	char *end;
	errno = 0;
	unsigned long long len = strtoull(cl, &end, 10);
	if (end == cl || *end != '\0' || errno != 0 || cl[0] == '-') {
		reply_error_close(aio, LORA_EINVAL, "malformed Content-Length");
		return -1;
	}
	nng_http_conn *conn = nng_aio_get_input(aio, 2);
	if (len > NODE_HTTP_BODY_BYTES_MAX) {
		refuse_body(aio, conn, len);
		return -1;
	}
	if (len == 0)
		return 0;
	void *buf = lora_malloc(len);
	if (buf == NULL) {
		reply_error_close(aio, LORA_ENOMEM, NULL);
		return -1;
	}
	int rv = conn_read(conn, buf, len);
	if (rv == 0 && nng_http_req_copy_data(req, buf, len) != 0)
		rv = NNG_ENOMEM;
	lora_free(buf);
	if (rv != 0) {
		nng_aio_finish(aio, rv); /* short body or no memory: close */
		return -1;
	}
	return 0;
}

/* ---- unknown endpoints
 * ------------------------------------------------------- */

/* The catch-all route: nng hands it every request no route takes. */
static int h_unknown(struct lnode *n, nng_aio *aio, nng_http_req *req,
                     const struct node_route *route)
{
	(void)route;
	const char *uri = nng_http_req_get_uri(req);
	const char *method = nng_http_req_get_method(req);
	size_t plen = strcspn(uri, "?#");
	const struct node_route *known = NULL;
	for (const struct node_route *r = node_routes; r->path; r++) {
		if (strlen(r->path) != plen || strncmp(uri, r->path, plen))
			continue;
		known = r;
		/* nng maps HEAD to GET only when no route takes all methods */
		if (!strcmp(method, "HEAD") && !strcmp(r->method, "GET"))
			return r->fn(n, aio, req, r);
	}
	char msg[LORA_ERRMSG_BYTES];
	if (known) {
		snprintf(msg, sizeof msg, "%s %.*s: method not allowed, use %s",
		         method, (int)(plen > 200 ? 200 : plen), uri,
		         known->method);
		node_http_reply_json(
		    aio, 405, node_http_error_json(LORA_EINVAL, msg, 0, 0),
		    NULL, NULL);
	} else {
		snprintf(msg, sizeof msg, "unknown endpoint %s %.*s", method,
		         (int)(plen > 200 ? 200 : plen), uri);
		node_http_reply_error(aio, LORA_ENOTFOUND, msg);
	}
	return 0;
}

static struct node_route route_unknown = {NULL,      "/", "unknown",
                                          h_unknown, 0,   NULL};

/* ---- the job queue
 * ------------------------------------------------------------- */

static void on_request(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	const struct node_route *route = nng_http_handler_get_data(h);
	struct node_http *hs = route->http;
	struct http_job *job = lora_calloc(1, sizeof *job);
	if (job == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	job->aio = aio;
	job->req = nng_aio_get_input(aio, 0);
	job->route = route;
	pthread_mutex_lock(&hs->mu);
	int full = hs->qlen >= NODE_HTTP_QUEUE_MAX || hs->stopping;
	if (!full) {
		if (hs->tail)
			hs->tail->next = job;
		else
			hs->head = job;
		hs->tail = job;
		hs->qlen++;
		pthread_cond_signal(&hs->cond);
	}
	pthread_mutex_unlock(&hs->mu);
	if (full) {
		lora_free(job);
		reply_error_close(aio, LORA_EUNAVAILABLE,
		                  "server busy or stopping: not executed");
	}
}

static void *http_main(void *arg)
{
	struct node_http *hs = arg;
	for (;;) {
		pthread_mutex_lock(&hs->mu);
		while (hs->head == NULL && !hs->stopping)
			pthread_cond_wait(&hs->cond, &hs->mu);
		struct http_job *job = hs->head;
		if (job) {
			hs->head = job->next;
			if (hs->head == NULL)
				hs->tail = NULL;
			hs->qlen--;
		}
		pthread_mutex_unlock(&hs->mu);
		if (job == NULL)
			break;
		uint64_t t0 = lora_now_ns();
		int ok = take_body(job->aio, job->req) == 0 &&
		         job->route->fn(hs->n, job->aio, job->req, job->route);
		node_metrics_request(hs->n, job->route->name, ok,
		                     lora_now_ns() - t0);
		lora_free(job);
	}
	return NULL;
}

/* ---- server
 * ------------------------------------------------------------------------ */

static const char page_404[] =
    "{\"error\":{\"code\":\"LORA_NOT_FOUND\",\"message\":\"unknown "
    "endpoint\",\"category\":\"client\"}}";
static const char page_405[] =
    "{\"error\":{\"code\":\"LORA_INVALID\",\"message\":\"method not allowed "
    "on this endpoint\",\"category\":\"client\"}}";
static const char page_400[] =
    "{\"error\":{\"code\":\"LORA_INVALID\",\"message\":\"malformed HTTP "
    "request\",\"category\":\"client\"}}";

static int add_route(struct node_http *hs, struct node_route *r)
{
	nng_http_handler *h;
	r->http = hs;
	int rv = nng_http_handler_alloc(&h, r->path, on_request);
	if (rv == 0)
		rv = nng_http_handler_set_method(h, r->method);
	if (rv == 0 && r->method == NULL) /* the catch-all */
		rv = nng_http_handler_set_tree(h);
	if (rv == 0) /* take_body reads it */
		rv = nng_http_handler_collect_body(h, false, 0);
	if (rv == 0)
		rv = nng_http_handler_set_data(h, r, NULL);
	if (rv == 0)
		rv = nng_http_server_add_handler(hs->server, h);
	return rv;
}

int node_http_start(struct lnode *n, char *errmsg)
{
	struct node_http *hs = lora_calloc(1, sizeof *hs);
	if (hs == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	hs->n = n;
	pthread_mutex_init(&hs->mu, NULL);
	pthread_cond_init(&hs->cond, NULL);
	n->http = hs;
	char urls[NODE_ADDR_BYTES_MAX + 16];
	snprintf(urls, sizeof urls, "http://%s", n->cfg.http_addr);
	nng_url *url;
	int rv = nng_url_parse(&url, urls);
	if (rv == 0) {
		rv = nng_http_server_hold(&hs->server, url);
		nng_url_free(url);
	}
	for (struct node_route *r = node_routes; rv == 0 && r->path; r++)
		rv = add_route(hs, r);
	if (rv == 0)
		rv = add_route(hs, &route_unknown);
	if (rv == 0) {
		nng_http_server_set_error_page(hs->server, 404, page_404);
		nng_http_server_set_error_page(hs->server, 405, page_405);
		nng_http_server_set_error_page(hs->server, 400, page_400);
		rv = nng_http_server_start(hs->server);
	}
	if (rv != 0)
		return lora_errf(LORA_EIO, errmsg, "http server on %s: %s",
		                 urls, nng_strerror(rv));
	for (int i = 0; i < NODE_HTTP_WORKERS; i++)
		if (pthread_create(&hs->threads[i], NULL, http_main, hs) == 0)
			hs->n_threads++;
	return 0;
}

void node_http_stop(struct lnode *n)
{
	struct node_http *hs = n->http;
	if (hs == NULL)
		return;
	if (hs->server)
		nng_http_server_stop(hs->server);
	pthread_mutex_lock(&hs->mu);
	hs->stopping = 1;
	pthread_cond_broadcast(&hs->cond);
	pthread_mutex_unlock(&hs->mu);
	for (int i = 0; i < hs->n_threads; i++)
		pthread_join(hs->threads[i], NULL);
	for (struct http_job *j = hs->head, *nx; j; j = nx) {
		nx = j->next;
		nng_aio_finish(j->aio, NNG_ECLOSED);
		lora_free(j);
	}
	if (hs->server)
		nng_http_server_release(hs->server);
	pthread_mutex_destroy(&hs->mu);
	pthread_cond_destroy(&hs->cond);
	lora_free(hs);
	n->http = NULL;
}
