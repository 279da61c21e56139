/*
 * http.c - the HTTP API (nng_http_server + jansson), LoraDB-compatible.
 *
 * nng calls a handler on its own threads; the handler only queues the
 * request, and NODE_HTTP_WORKERS threads of ours answer it (a write may
 * wait for commit, a read for a bookmark), then complete nng's aio.
 * Errors have one shape: {"error":{"code","message","category"}} with the
 * status of lora_err_http_status(); bodies above NODE_HTTP_BODY_BYTES_MAX
 * and unknown endpoints get the same shape from nng's error pages.
 */
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

void node_http_reply(nng_aio *aio, int status, const char *ctype,
                     const char *body, size_t len, const char *bookmark,
                     const char *location)
{
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_http_res_set_status(res, (uint16_t)status);
	nng_http_res_set_header(res, "Content-Type", ctype);
	if (bookmark && bookmark[0])
		nng_http_res_set_header(res, "X-Lora-Bookmark", bookmark);
	if (location)
		nng_http_res_set_header(res, "Location", location);
	nng_http_res_copy_data(res, body, len);
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
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
		node_http_reply_error(aio, LORA_EUNAVAILABLE,
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
		int ok = job->route->fn(hs->n, job->aio, job->req, job->route);
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
    "request or body too large\",\"category\":\"client\"}}";
static const char page_413[] =
    "{\"error\":{\"code\":\"LORA_LIMIT\",\"message\":\"request body larger "
    "than the limit\",\"category\":\"client\"}}";

static int add_route(struct node_http *hs, struct node_route *r)
{
	nng_http_handler *h;
	r->http = hs;
	int rv = nng_http_handler_alloc(&h, r->path, on_request);
	if (rv == 0)
		rv = nng_http_handler_set_method(h, r->method);
	if (rv == 0)
		rv = nng_http_handler_collect_body(
		    h, true,
		    strcmp(r->method, "POST") ? 0 : NODE_HTTP_BODY_BYTES_MAX);
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
	if (rv == 0) {
		nng_http_server_set_error_page(hs->server, 404, page_404);
		nng_http_server_set_error_page(hs->server, 405, page_405);
		nng_http_server_set_error_page(hs->server, 400, page_400);
		nng_http_server_set_error_page(hs->server, 413, page_413);
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
