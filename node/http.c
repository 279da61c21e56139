/*
 * http.c - the HTTP API (nng_http_server + jansson), LoraDB-compatible.
 *
 * nng calls a handler on its own threads; the handler only queues the
 * request, and NODE_HTTP_WORKERS threads of ours answer it (a write may
 * wait for commit, a read for a bookmark), then complete nng's aio.
 * Errors have one shape: {"error":{"code","message","category"}} with the
 * status of lora_err_http_status(). nng does not read request bodies here
 * (it would answer a too-large one with its own 400): on_request reads the
 * body itself, asynchronously, before the job is queued for a worker, so a
 * body above NODE_HTTP_BODY_BYTES_MAX gets 413 LORA_LIMIT
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
#define NODE_HTTP_BODY_READ_MS      30000 /* a body (a piece, dropping one) */

struct http_job {
	struct http_job *next;
	nng_aio *aio;
	nng_http_req *req;
	const struct node_route *route;
	struct node_http *hs;
	/* reading the body (nng leaves it on the connection) */
	nng_aio *body_aio; /* owned; reaped when the read is over */
	uint8_t *buf;      /* owned: the body (req points at it), or scratch */
	uint64_t len;      /* Content-Length */
	uint64_t left;     /* too large: bytes still to drop, else 0 */
	int refuse;        /* too large: drop it, then answer 413 */
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
	int reading; /* body reads in flight: stop waits for them */
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

static int enqueue(struct node_http *hs, struct http_job *job);

/* Starts reading the next k bytes of the body into job->buf. */
static void body_read(struct http_job *job, size_t k)
{
	nng_http_conn *conn = nng_aio_get_input(job->aio, 2);
	nng_iov iov = {.iov_buf = job->buf, .iov_len = k};
	nng_aio_set_iov(job->body_aio, 1, &iov);
	nng_aio_set_timeout(job->body_aio, NODE_HTTP_BODY_READ_MS);
	nng_http_conn_read_all(conn, job->body_aio);
}

static void refuse_msg(const struct http_job *job, char *msg)
{
	snprintf(msg, LORA_ERRMSG_BYTES,
	         "request body of %llu bytes is larger than the limit of %u "
	         "bytes",
	         (unsigned long long)job->len,
	         (unsigned)NODE_HTTP_BODY_BYTES_MAX);
}

static void job_free(struct http_job *job)
{
	lora_free(job->buf);
	lora_free(job);
}

/* A piece of the body arrived (or the read failed / timed out). */
static void on_body(void *arg)
{
	struct http_job *job = arg;
	int rv = nng_aio_result(job->body_aio);
	if (rv == 0 && job->refuse && job->left > 0) {
		job->left -= nng_aio_count(job->body_aio);
		if (job->left > 0) {
			body_read(job, job->left < NODE_HTTP_DRAIN_CHUNK_BYTES
			                   ? (size_t)job->left
			                   : NODE_HTTP_DRAIN_CHUNK_BYTES);
			return;
		}
	}
	nng_aio *aio = job->aio, *baio = job->body_aio;
	struct node_http *hs = job->hs;
	/* the body stays in job->buf (freed with the job, after the route) */
	if (rv == 0 && !job->refuse &&
	    nng_http_req_set_data(job->req, job->buf, job->len) != 0)
		rv = NNG_ENOMEM;
	char msg[LORA_ERRMSG_BYTES];
	refuse_msg(job, msg);
	int refuse = job->refuse;
	if (rv != 0 || refuse) {
		lora_free(job->buf);
		job->buf = NULL;
	}
	job->body_aio = NULL;
	if (rv != 0 || refuse)
		lora_free(job);
	if (rv != 0) /* short body, client gone, no memory: close */
		nng_aio_finish(aio, rv);
	else if (refuse)
		node_http_reply_error(aio, LORA_ELIMIT, msg);
	else
		enqueue(hs, job); /* a worker may free it at once */
	nng_aio_reap(baio);       /* we are its callback: no nng_aio_free */
	pthread_mutex_lock(&hs->mu);
	hs->reading--; /* last touch of hs: node_http_stop waits for it */
	pthread_cond_broadcast(&hs->cond);
	pthread_mutex_unlock(&hs->mu);
}

/* The body's length from the headers into job->len: 0, or an error code
 * with msg (LORA_ERRMSG_BYTES). */
static int body_check(struct http_job *job, char *msg)
{
	const char *te = nng_http_req_get_header(job->req, "Transfer-Encoding");
	const char *cl = nng_http_req_get_header(job->req, "Content-Length");
	if (te != NULL) {
		snprintf(msg, LORA_ERRMSG_BYTES,
		         "chunked request bodies are not supported: send a "
		         "Content-Length");
		return LORA_EINVAL;
	}
	if (cl == NULL)
		return 0;
	char *end;
	errno = 0;
	job->len = strtoull(cl, &end, 10);
	if (end == cl || *end != '\0' || errno != 0 || cl[0] == '-') {
		snprintf(msg, LORA_ERRMSG_BYTES, "malformed Content-Length");
		return LORA_EINVAL;
	}
	if (job->len > NODE_HTTP_DRAIN_BYTES_MAX) { /* too much to drop */
		refuse_msg(job, msg);
		return LORA_ELIMIT;
	}
	return 0;
}

/* Starts the asynchronous read of a body of job->len > 0 bytes. */
static int body_start(struct http_job *job, char *msg)
{
	job->refuse = job->len > NODE_HTTP_BODY_BYTES_MAX;
	job->left = job->refuse ? job->len : 0;
	size_t k = job->refuse ? NODE_HTTP_DRAIN_CHUNK_BYTES : (size_t)job->len;
	job->buf = lora_malloc(k);
	if (job->buf == NULL ||
	    nng_aio_alloc(&job->body_aio, on_body, job) != 0) {
		snprintf(msg, LORA_ERRMSG_BYTES, "out of memory");
		return LORA_ENOMEM;
	}
	pthread_mutex_lock(&job->hs->mu);
	int stopping = job->hs->stopping;
	job->hs->reading += !stopping;
	pthread_mutex_unlock(&job->hs->mu);
	if (stopping) {
		snprintf(msg, LORA_ERRMSG_BYTES, "node stopping: not executed");
		return LORA_EUNAVAILABLE;
	}
	body_read(job, job->len < k ? (size_t)job->len : k);
	return 0;
}

/*
 * Looks at the body nng left on the connection: none (the job is queued),
 * one to read or to refuse, read asynchronously (no worker waits on a slow
 * client). Errors answer with the connection closed and free the job.
 */
static void body_begin(struct http_job *job)
{
	char msg[LORA_ERRMSG_BYTES];
	int code = body_check(job, msg);
	if (code == 0 && job->len == 0) {
		enqueue(job->hs, job);
		return;
	}
	if (code == 0 && (code = body_start(job, msg)) == 0)
		return;
	nng_aio *aio = job->aio;
	if (job->body_aio)
		nng_aio_free(job->body_aio);
	job_free(job);
	reply_error_close(aio, code, msg);
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

/* Queues a job for the workers; when full or stopping, answers it and
 * frees it (-1). */
static int enqueue(struct node_http *hs, struct http_job *job)
{
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
	if (!full)
		return 0;
	nng_aio *aio = job->aio;
	job_free(job);
	reply_error_close(aio, LORA_EUNAVAILABLE,
	                  "server busy or stopping: not executed");
	return -1;
}

static void on_request(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	const struct node_route *route = nng_http_handler_get_data(h);
	struct http_job *job = lora_calloc(1, sizeof *job);
	if (job == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	job->aio = aio;
	job->req = nng_aio_get_input(aio, 0);
	job->route = route;
	job->hs = route->http;
	body_begin(job);
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
		int ok = job->route->fn(hs->n, job->aio, job->req, job->route);
		node_metrics_request(hs->n, job->route->name, ok,
		                     lora_now_ns() - t0);
		job_free(job);
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
	if (rv == 0) /* body_begin reads it */
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
	/* body reads end with an error once their connection closed */
	while (hs->reading > 0)
		pthread_cond_wait(&hs->cond, &hs->mu);
	pthread_mutex_unlock(&hs->mu);
	for (int i = 0; i < hs->n_threads; i++)
		pthread_join(hs->threads[i], NULL);
	for (struct http_job *j = hs->head, *nx; j; j = nx) {
		nx = j->next;
		nng_aio_finish(j->aio, NNG_ECLOSED);
		job_free(j);
	}
	if (hs->server)
		nng_http_server_release(hs->server);
	pthread_mutex_destroy(&hs->mu);
	pthread_cond_destroy(&hs->cond);
	lora_free(hs);
	n->http = NULL;
}
