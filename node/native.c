/*
 * native.c - the native client protocol: nng rep0 on client_addr, one
 * proto Request per message, one Response back (proto/client.proto).
 * NODE_NATIVE_WORKERS threads each own an nng context, so that many
 * requests (including writes waiting for commit) run at once. Read results
 * beyond the first batch stay in a cursor (its statement paused between
 * fetches), freed when the client closes it or reads it to the end, when
 * the connection that opened it goes away, or after cursor_idle_ms
 * (NODE_CURSOR_IDLE_MS by default) without a fetch.
 */
#include <stdio.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "log.h"
#include "node_int.h"

#define NODE_NATIVE_WORKERS       32
#define NODE_NATIVE_MSG_BYTES_MAX (16u << 20) /* one request */
#define NODE_CURSORS_MAX          1024
#define NODE_BATCH_ROWS_MAX       100000
/* connections that went away lately, for a cursor made while its
 * connection closed */
#define NODE_GONE_PIPES_MAX 256

struct cursor_slot {
	uint64_t id;
	struct node_cursor *c;
	uint64_t last_used_ms;
	int busy;
	uint32_t pipe; /* the connection that opened it (nng pipe id) */
	int gone;      /* that connection closed while busy: free at give */
};

struct node_native {
	nng_socket sock;
	pthread_t threads[NODE_NATIVE_WORKERS];
	int n_threads;
	pthread_mutex_t mu;
	struct cursor_slot cursors[NODE_CURSORS_MAX];
	uint64_t next_cursor_id;
	uint32_t gone_pipes[NODE_GONE_PIPES_MAX]; /* ring (mu) */
	unsigned n_gone;
};

/* The connection of the request this native worker thread is answering
 * (its nng pipe id; 0: none), for the cursor it may open. */
static _Thread_local uint32_t req_pipe;

/* ---- cursors
 * ----------------------------------------------------------------- */

/* Frees slot s (nv->mu held). */
static void slot_free(struct lnode *n, struct cursor_slot *s)
{
	node_cursor_free(n, s->c);
	memset(s, 0, sizeof *s);
}

void node_native_reap(struct lnode *n)
{
	struct node_native *nv = n->native;
	if (nv == NULL)
		return;
	uint64_t now = lora_now_ms();
	pthread_mutex_lock(&nv->mu);
	for (int i = 0; i < NODE_CURSORS_MAX; i++) {
		struct cursor_slot *s = &nv->cursors[i];
		if (s->id && !s->busy &&
		    now - s->last_used_ms > n->cfg.cursor_idle_ms) {
			slot_free(n, s);
			node_metrics_cursor_idle(n);
		}
	}
	pthread_mutex_unlock(&nv->mu);
}

/* nng's pipe callback: the client's connection went away; its cursors
 * are freed (a busy one when its fetch ends). */
static void pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct lnode *n = arg;
	struct node_native *nv = n->native;
	uint32_t id = (uint32_t)nng_pipe_id(p);
	(void)ev;
	pthread_mutex_lock(&nv->mu);
	nv->gone_pipes[nv->n_gone++ % NODE_GONE_PIPES_MAX] = id;
	for (int i = 0; i < NODE_CURSORS_MAX; i++) {
		struct cursor_slot *s = &nv->cursors[i];
		if (s->id == 0 || s->pipe != id)
			continue;
		node_metrics_client_gone(n, NODE_API_NATIVE);
		if (s->busy)
			s->gone = 1;
		else
			slot_free(n, s);
	}
	pthread_mutex_unlock(&nv->mu);
}

static int pipe_gone(const struct node_native *nv, uint32_t pipe)
{
	unsigned k =
	    nv->n_gone < NODE_GONE_PIPES_MAX ? nv->n_gone : NODE_GONE_PIPES_MAX;
	for (unsigned i = 0; i < k; i++)
		if (nv->gone_pipes[i] == pipe)
			return 1;
	return 0;
}

/* Keeps c for the client of this thread's request: its id, 0 when there
 * is no room (c is still the caller's), or 0 with c freed when that
 * client is already gone (*gone set). */
static uint64_t cursor_put(struct lnode *n, struct node_cursor *c, int *gone)
{
	struct node_native *nv = n->native;
	uint64_t now = lora_now_ms(), id = 0;
	*gone = 0;
	pthread_mutex_lock(&nv->mu);
	if (req_pipe && pipe_gone(nv, req_pipe)) {
		*gone = 1;
		node_cursor_free(n, c);
		node_metrics_client_gone(n, NODE_API_NATIVE);
	}
	for (int i = 0; i < NODE_CURSORS_MAX && id == 0 && !*gone; i++) {
		struct cursor_slot *s = &nv->cursors[i];
		if (s->id == 0) {
			id = ++nv->next_cursor_id;
			*s = (struct cursor_slot){id, c, now, 0, req_pipe, 0};
		}
	}
	pthread_mutex_unlock(&nv->mu);
	return id;
}

/* Takes cursor id out for use (busy); NULL when unknown. */
static struct node_cursor *cursor_take(struct lnode *n, uint64_t id)
{
	struct node_native *nv = n->native;
	struct node_cursor *c = NULL;
	pthread_mutex_lock(&nv->mu);
	for (int i = 0; i < NODE_CURSORS_MAX; i++)
		if (nv->cursors[i].id == id && !nv->cursors[i].busy) {
			nv->cursors[i].busy = 1;
			c = nv->cursors[i].c;
		}
	pthread_mutex_unlock(&nv->mu);
	return c;
}

/* Gives it back (keep) or forgets it (freeing the cursor). */
static void cursor_give(struct lnode *n, uint64_t id, int keep)
{
	struct node_native *nv = n->native;
	pthread_mutex_lock(&nv->mu);
	for (int i = 0; i < NODE_CURSORS_MAX; i++) {
		struct cursor_slot *s = &nv->cursors[i];
		if (s->id != id)
			continue;
		s->busy = 0;
		s->last_used_ms = lora_now_ms();
		if (!keep || s->gone)
			slot_free(n, s);
	}
	pthread_mutex_unlock(&nv->mu);
}

void node_native_close_cursors(struct lnode *n)
{
	struct node_native *nv = n->native;
	if (nv == NULL)
		return;
	pthread_mutex_lock(&nv->mu);
	for (int i = 0; i < NODE_CURSORS_MAX; i++) {
		struct cursor_slot *s = &nv->cursors[i];
		if (s->id && !s->busy)
			slot_free(n, s);
	}
	pthread_mutex_unlock(&nv->mu);
}

/* ---- requests
 * ---------------------------------------------------------------- */

static uint64_t parse_bookmark(const char *b)
{
	unsigned long long v = 0;
	if (b && sscanf(b, "%llu", &v) != 1)
		v = 0;
	return v;
}

static void handle_run(struct lnode *n, const Lora__RunRequest *run,
                       Lora__Response **resp)
{
	Lora__ValueMap params = LORA__VALUE_MAP__INIT;
	Lora__MapEntry *es = lora_calloc(run->n_params + 1, sizeof *es);
	Lora__MapEntry **ep = lora_calloc(run->n_params + 1, sizeof *ep);
	if (es == NULL || ep == NULL) {
		lora_free(es);
		lora_free(ep);
		*resp = NULL;
		return;
	}
	for (size_t i = 0; i < run->n_params; i++) {
		lora__map_entry__init(&es[i]);
		es[i].key = run->params[i]->name;
		es[i].value = run->params[i]->value;
		ep[i] = &es[i];
	}
	params.entries = ep;
	params.n_entries = run->n_params;
	uint32_t rows =
	    run->batch_rows ? run->batch_rows : NODE_BATCH_ROWS_DEFAULT;
	int forwarded = run->batch_rows == NODE_FORWARD_ALL_ROWS;
	if (forwarded)
		rows = 0;
	else if (rows > NODE_BATCH_ROWS_MAX)
		rows = NODE_BATCH_ROWS_MAX;
	struct node_exec_req req = {
	    .query = run->query,
	    .params = &params,
	    .consistency = run->consistency,
	    .bookmark = parse_bookmark(run->bookmark),
	    .request_id = run->request_id,
	    .redirect = run->redirect,
	    .forwarded = forwarded,
	    .mode = QRY_RUN,
	    .batch_rows = rows,
	    .mem_bytes_max = run->memory_bytes,
	};
	struct node_cursor *c = NULL;
	uint64_t t0 = lora_now_ns();
	node_exec(n, &req, resp, NULL, rows ? &c : NULL);
	if (*resp)
		node_metrics_request(n, "native", (*resp)->error == NULL,
		                     lora_now_ns() - t0);
	int gone = 0;
	if (c && *resp) {
		(*resp)->cursor_id = cursor_put(n, c, &gone);
		if ((*resp)->cursor_id == 0 && !gone)
			node_cursor_free(n, c);
		if ((*resp)->cursor_id == 0) {
			(*resp)->has_more = 0;
			node_resp_error(*resp, LORA_ELIMIT,
			                "too many open cursors", 0, 0);
		}
	} else if (c) {
		node_cursor_free(n, c);
	}
	lora_free(es);
	lora_free(ep);
}

static void handle_fetch(struct lnode *n, uint64_t id, uint32_t rows,
                         Lora__Response *resp)
{
	struct node_cursor *c = cursor_take(n, id);
	if (c == NULL) {
		node_resp_error(
		    resp, LORA_ENOTFOUND,
		    "no such cursor (closed, exhausted or idle too long)", 0,
		    0);
		return;
	}
	if (rows == 0)
		rows = NODE_BATCH_ROWS_DEFAULT;
	if (rows > NODE_BATCH_ROWS_MAX)
		rows = NODE_BATCH_ROWS_MAX;
	int rc = node_cursor_fetch(c, rows, resp);
	int keep = rc == 0 && resp->has_more;
	if (keep)
		resp->cursor_id = id;
	cursor_give(n, id, keep);
}

/* protobuf-c unpacks recursively: the bytes are checked first. */
Lora__Request *node_native_decode(const uint8_t *p, size_t len, int *code,
                                  char *msg)
{
	int rc = lora_pb_check(LORA_PB_REQUEST, p, len, LORA_VALUE_DEPTH_MAX);
	if (rc == LORA_ELIMIT) {
		*code = lora_errf(LORA_EPARAMS, msg,
		                  "a parameter value nests deeper than %d "
		                  "lists, maps, nodes and relationships (the "
		                  "value depth limit)",
		                  LORA_VALUE_DEPTH_MAX);
		return NULL;
	}
	*code = lora_errf(LORA_EINVAL, msg, "request does not decode");
	return rc ? NULL : lora__request__unpack(&lora_pb_allocator, len, p);
}

static Lora__Response *handle(struct lnode *n, const uint8_t *p, size_t len)
{
	int code;
	char msg[LORA_ERRMSG_BYTES];
	Lora__Request *req = node_native_decode(p, len, &code, msg);
	Lora__Response *resp = NULL;
	if (req && req->kind_case == LORA__REQUEST__KIND_RUN && req->run) {
		handle_run(n, req->run, &resp);
	} else if ((resp = node_resp_new()) == NULL) {
		/* out of memory: no answer */
	} else if (req == NULL) {
		node_resp_error(resp, code, msg, 0, 0);
	} else if (req->kind_case == LORA__REQUEST__KIND_FETCH && req->fetch) {
		handle_fetch(n, req->fetch->cursor_id, req->fetch->batch_rows,
		             resp);
	} else if (req->kind_case == LORA__REQUEST__KIND_CLOSE && req->close) {
		if (cursor_take(n, req->close->cursor_id))
			cursor_give(n, req->close->cursor_id, 0);
	} else if (req->kind_case == LORA__REQUEST__KIND_STATUS) {
		char *js = node_status_json(n);
		resp->status_json = js ? js : lora_strdup("{}");
	} else {
		node_resp_error(resp, LORA_EINVAL, "empty or unknown request",
		                0, 0);
	}
	if (req)
		lora__request__free_unpacked(req, &lora_pb_allocator);
	return resp;
}

static void *native_main(void *arg)
{
	struct lnode *n = arg;
	pthread_setname_np(pthread_self(), "lora-native");
	nng_ctx ctx;
	nng_aio *aio;
	if (nng_ctx_open(&ctx, n->native->sock) != 0)
		return NULL;
	if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
		nng_ctx_close(ctx);
		return NULL;
	}
	for (;;) {
		nng_ctx_recv(ctx, aio);
		nng_aio_wait(aio);
		int rv = nng_aio_result(aio);
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			break;
		if (rv != 0)
			continue;
		nng_msg *msg = nng_aio_get_msg(aio);
		int pipe = nng_pipe_id(nng_msg_get_pipe(msg));
		req_pipe = pipe > 0 ? (uint32_t)pipe : 0;
		Lora__Response *resp =
		    handle(n, nng_msg_body(msg), nng_msg_len(msg));
		req_pipe = 0;
		nng_msg_free(msg);
		if (resp == NULL)
			continue;
		size_t len = lora__response__get_packed_size(resp);
		nng_msg *out;
		if (nng_msg_alloc(&out, len) == 0) {
			lora__response__pack(resp, nng_msg_body(out));
			nng_aio_set_msg(aio, out);
			nng_ctx_send(ctx, aio);
			nng_aio_wait(aio);
			if (nng_aio_result(aio) != 0)
				nng_msg_free(nng_aio_get_msg(aio));
		}
		lora__response__free_unpacked(resp, &lora_pb_allocator);
	}
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	return NULL;
}

int node_native_start(struct lnode *n, char *errmsg)
{
	struct node_native *nv = lora_calloc(1, sizeof *nv);
	if (nv == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	pthread_mutex_init(&nv->mu, NULL);
	n->native = nv;
	char url[NODE_ADDR_BYTES_MAX + 16];
	snprintf(url, sizeof url, "tcp://%s", n->cfg.client_addr);
	int rv = nng_rep0_open(&nv->sock);
	if (rv == 0)
		rv = nng_socket_set_size(nv->sock, NNG_OPT_RECVMAXSZ,
		                         NODE_NATIVE_MSG_BYTES_MAX);
	if (rv == 0)
		rv = nng_pipe_notify(nv->sock, NNG_PIPE_EV_REM_POST,
		                     pipe_removed, n);
	if (rv == 0)
		rv = nng_listen(nv->sock, url, NULL, 0);
	if (rv != 0)
		return lora_errf(LORA_EIO, errmsg, "listen %s: %s", url,
		                 nng_strerror(rv));
	for (int i = 0; i < NODE_NATIVE_WORKERS; i++)
		if (pthread_create(&nv->threads[i], NULL, native_main, n) == 0)
			nv->n_threads++;
	return 0;
}

void node_native_stop(struct lnode *n)
{
	struct node_native *nv = n->native;
	if (nv == NULL)
		return;
	nng_close(nv->sock);
	for (int i = 0; i < nv->n_threads; i++)
		pthread_join(nv->threads[i], NULL);
	for (int i = 0; i < NODE_CURSORS_MAX; i++)
		if (nv->cursors[i].id)
			node_cursor_free(n, nv->cursors[i].c);
	pthread_mutex_destroy(&nv->mu);
	lora_free(nv);
	n->native = NULL;
}
