/*
 * native.c - the native client protocol: nng rep0 on client_addr, one
 * proto Request per message, one Response back (proto/client.proto).
 * With authentication on, an AuthRequest (the handshake) binds a user to
 * the connection (nng pipe) first; anything else before it is refused,
 * except a write another member forwards with the cluster secret as proof
 * (auth.h). Cursors are named by 16 random bytes and only the connection
 * that opened one may fetch or close it.
 * NODE_NATIVE_WORKERS threads each own an nng context, so that many
 * requests (including writes waiting for commit) run at once. Read results
 * beyond the first batch stay in a cursor (its statement paused between
 * fetches), freed when the client closes it or reads it to the end, when
 * the connection that opened it goes away, or after cursor_idle_ms
 * (NODE_CURSOR_IDLE_MS by default) without a fetch.
 * With authentication on, a connection that has not authenticated (a
 * handshake, or a member's forwarded write) is pending: it is closed
 * after auth_timeout_ms, and at most pending_per_source of them from one
 * source address and native_pending_max in all are kept (more are closed
 * as they come), so silent or failing connections cannot hold the
 * NODE_NATIVE_CONNS_MAX places. Each refusal is logged at most once per
 * source per NODE_SOURCE_LOG_MS (source.h). A connection that has carried
 * a member's forwarded write (with the cluster secret as proof) is no
 * longer pending: members keep their connection to the leader open idle
 * between writes, and authenticate per request. The exemption is the
 * connection's own, never its source address's: another connection from
 * a member's host (or its /64) is held to the deadline and caps as any.
 * nng 1.5.2 can stop the listener's accept loop for good after some
 * connection errors; a watchdog replaces it then (see "the listener's
 * watchdog" below).
 * Explicit transactions (BeginRequest, RunRequest.tx, CommitRequest,
 * RollbackRequest) live in http_tx.c's table with the HTTP ones, bound to
 * the user; a statement in one answers every row at once, and they roll
 * back when the connection that began them goes away.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <sodium.h>

#include "log.h"
#include "node_int.h"
#include "source.h"
#include "thread.h"

#define NODE_NATIVE_WORKERS       32
#define NODE_NATIVE_MSG_BYTES_MAX (16u << 20) /* one request */
#define NODE_CURSORS_MAX          1024
#define NODE_BATCH_ROWS_MAX       100000
/* connections that went away lately, for a cursor made while its
 * connection closed */
#define NODE_GONE_PIPES_MAX 256
/* authenticated connections (the handshake binds a user to an nng pipe) */
#define NODE_NATIVE_SESSIONS_MAX 4096
/* open connections (nng pipes, TLS ~70 KB each): more are closed as they
 * come, so a flood cannot take the process's descriptors or memory */
#define NODE_NATIVE_CONNS_MAX 1024
#define NODE_NATIVE_WARN_MS   10000 /* one "full" line per */
#define NODE_CURSOR_KEY_BYTES 16    /* 128 random bits */

/* A cursor is named by 16 random bytes and bound to the connection and
 * the user that opened it: another connection cannot fetch or close it
 * even with the name, nor the same connection authenticated again as
 * another user. */
struct cursor_slot {
	uint64_t id; /* non-zero: slot in use */
	uint8_t key[NODE_CURSOR_KEY_BYTES];
	struct node_cursor *c;
	uint64_t last_used_ms;
	int busy;
	uint32_t pipe; /* the connection that opened it (nng pipe id) */
	char user[NODE_USER_BYTES_MAX + 1]; /* and the user it was then */
	int gone; /* that connection closed while busy: free at give */
};

/* An open connection (nng pipe) and whether it has shown who it is. */
struct native_conn {
	nng_pipe pipe; /* id 0: slot free */
	struct node_source src;
	uint64_t added_ms;
	int authed;  /* authenticated, or auth off: no deadline */
	int closing; /* closed for its deadline, not yet removed */
};

struct native_session {
	uint32_t pipe; /* 0: free */
	struct node_identity who;
};

#define NODE_NATIVE_READY_WAIT_MS 2000 /* for workers to post a receive */

struct node_native {
	nng_socket sock;
	pthread_t threads[NODE_NATIVE_WORKERS];
	int n_threads;
	/* workers past opening their context (posted a receive, or gave
	 * up): node_native_stop closes the socket only after all are (mu;
	 * ready_cond, CLOCK_MONOTONIC, is broadcast with each) */
	int ready;
	pthread_cond_t ready_cond;
	pthread_mutex_t mu;
	struct cursor_slot cursors[NODE_CURSORS_MAX];
	uint64_t next_cursor_id;
	uint32_t gone_pipes[NODE_GONE_PIPES_MAX]; /* ring (mu) */
	unsigned n_gone;
	struct native_session sessions[NODE_NATIVE_SESSIONS_MAX]; /* (mu) */
	struct native_conn conns[NODE_NATIVE_CONNS_MAX]; /* open (mu) */
	int conns_cap;         /* NODE_NATIVE_CONNS_MAX */
	uint64_t full_warn_ms; /* last "full" line (mu) */
	/* pending connections (not authenticated), auth on only */
	int auth_on;
	uint32_t auth_timeout_ms, pending_per_source, pending_max;
	struct node_source_log refused_log; /* per source (mu) */
	/* the listener and its watchdog (gossip thread; listener_watch) */
	nng_listener lst;
	char url[NODE_ADDR_BYTES_MAX + 16];
	uint64_t added;      /* connections nng handed over (mu) */
	uint64_t errs_seen;  /* its "other" + "canceled" counts, last seen */
	uint64_t watched_ms; /* when last looked at */
	int lst_open;        /* lst is open (else: retried, retry_ms) */
	uint64_t retry_ms, retry_at_ms;   /* the next reopen: pause, when */
	uint64_t replaced_ms;             /* the last replacement */
	char last_err[LORA_ERRMSG_BYTES]; /* the last reopen's failure */
	int probing; /* a dial of our own port is under way */
	nng_socket probe;
	atomic_int probe_up; /* its side has its connection */
	uint64_t probe_added, probe_until, probe_up_ms;
	int probe_fails;      /* "stopped" verdicts in a row */
	int undecided;        /* probes in a row that decided nothing */
	int watch_off;        /* nng keeps no statistics */
	atomic_int listening; /* the start opened lst: the watch may begin */
};

/* Tests: the connection cap of nodes started from now on. */
static int native_conns_cap = NODE_NATIVE_CONNS_MAX;

void node_native_test_conns_cap(int conns)
{
	native_conns_cap = conns > 0 && conns < NODE_NATIVE_CONNS_MAX
	                       ? conns
	                       : NODE_NATIVE_CONNS_MAX;
}

/* The connection of the request this native worker thread is answering
 * (its nng pipe id; 0: none), for the cursor it may open. */
static _Thread_local uint32_t req_pipe;
/* The user that request comes from ("" before it is known). */
static _Thread_local char req_user[NODE_USER_BYTES_MAX + 1];

/* ---- cursors
 * ----------------------------------------------------------------- */

/* Frees slot s (nv->mu held). */
static void slot_free(struct lnode *n, struct cursor_slot *s)
{
	node_cursor_free(n, s->c);
	memset(s, 0, sizeof *s);
}

static void reap_pending(struct node_native *nv);
static void listener_watch(struct lnode *n, struct node_native *nv);

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
	reap_pending(nv);
	listener_watch(n, nv);
}

/* Where pipe p comes from (unknown, matching no other source, when nng
 * cannot tell). */
static void pipe_source(nng_pipe p, struct node_source *src)
{
	nng_sockaddr sa;
	node_source_unknown(src);
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET)
		node_source_set(src, &sa.s_in.sa_addr, 4);
	else if (sa.s_family == NNG_AF_INET6)
		node_source_set(src, sa.s_in6.sa_addr, 16);
}

enum { PLACED = 0, REFUSED_FULL, REFUSED_PENDING, REFUSED_SOURCE, TIMED_OUT };

/* A slot for pipe p from src, or why not (nv->mu held). With auth on a
 * new connection is pending: counted against the per-source and total
 * caps of pending connections. */
static int conn_place(struct node_native *nv, nng_pipe p,
                      const struct node_source *src, uint64_t now)
{
	int free_at = -1;
	uint32_t pending = 0, same = 0;
	for (int i = 0; i < nv->conns_cap; i++) {
		const struct native_conn *c = &nv->conns[i];
		if (nng_pipe_id(c->pipe) <= 0) {
			if (free_at < 0)
				free_at = i;
		} else if (!c->authed && !c->closing) {
			pending++;
			same += node_source_eq(&c->src, src);
		}
	}
	if (free_at < 0)
		return REFUSED_FULL;
	if (!nv->auth_on) {
		nv->conns[free_at] = (struct native_conn){
		    .pipe = p, .src = *src, .added_ms = now, .authed = 1};
		return PLACED;
	}
	if (pending >= nv->pending_max)
		return REFUSED_PENDING;
	if (same >= nv->pending_per_source)
		return REFUSED_SOURCE;
	nv->conns[free_at] =
	    (struct native_conn){.pipe = p, .src = *src, .added_ms = now};
	return PLACED;
}

/* Logs a refused or timed-out connection from src, at most once per
 * source per NODE_SOURCE_LOG_MS, the "full" line once per
 * NODE_NATIVE_WARN_MS (nv->mu held: the text goes to line). 1 when line
 * is to be logged. */
static int refusal_line(struct node_native *nv, int why,
                        const struct node_source *src, uint64_t now, char *line,
                        size_t bytes)
{
	char from[NODE_SOURCE_TEXT_BYTES], reason[128];
	uint64_t quiet = 0;
	if (why == REFUSED_FULL) {
		if (now - nv->full_warn_ms < NODE_NATIVE_WARN_MS)
			return 0;
		nv->full_warn_ms = now;
		snprintf(line, bytes,
		         "native: %d connections open, closing new ones (at "
		         "most one line every %d s)",
		         nv->conns_cap, NODE_NATIVE_WARN_MS / 1000);
		return 1;
	}
	if (!node_source_log_due(&nv->refused_log, src, now, &quiet))
		return 0;
	node_source_text(src, from, sizeof from);
	if (why == TIMED_OUT)
		snprintf(reason, sizeof reason,
		         "not authenticated within auth_timeout_ms (%u)",
		         nv->auth_timeout_ms);
	else if (why == REFUSED_SOURCE)
		snprintf(reason, sizeof reason,
		         "new, and pending_per_source (%u) unauthenticated "
		         "connections from there are open",
		         nv->pending_per_source);
	else
		snprintf(reason, sizeof reason,
		         "new, and native_pending_max (%u) unauthenticated "
		         "connections are open",
		         nv->pending_max);
	snprintf(line, bytes,
	         "native: closed a connection from %s: %s (%llu more "
	         "closed from there since its last line; at most one line "
	         "per source every %d s)",
	         from, reason, (unsigned long long)quiet,
	         NODE_SOURCE_LOG_MS / 1000);
	return 1;
}

/* nng's pipe callback before a new connection is used: beyond a cap it
 * is closed (and never counted: its removal finds no slot). */
static void pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct lnode *n = arg;
	struct node_native *nv = n->native;
	struct node_source src;
	char line[384];
	(void)ev;
	pipe_source(p, &src);
	uint64_t now = lora_now_ms();
	pthread_mutex_lock(&nv->mu);
	nv->added++;
	int why = conn_place(nv, p, &src, now);
	int say = why != PLACED &&
	          refusal_line(nv, why, &src, now, line, sizeof line);
	pthread_mutex_unlock(&nv->mu);
	if (say)
		LOG_WARN("%s", line);
	if (why != PLACED)
		nng_pipe_close(p);
}

/* Marks this thread's connection as authenticated (nv->mu held). */
static void conn_authed(struct node_native *nv)
{
	for (int i = 0; req_pipe && i < nv->conns_cap; i++)
		if ((uint32_t)nng_pipe_id(nv->conns[i].pipe) == req_pipe)
			nv->conns[i].authed = 1;
}

/* This thread's connection carried a member's request with a valid
 * cluster-secret proof: it, and only it, is no longer pending (nv->mu
 * held). Its source address earns nothing: a neighbour of a member on
 * the same host or /64 is held to the deadline and caps as any. */
static void conn_member(struct node_native *nv)
{
	conn_authed(nv);
}

/* Closes pending connections older than auth_timeout_ms (gossip thread;
 * not under nv->mu: nng calls pipe_removed, which takes it). */
static void reap_pending(struct node_native *nv)
{
	enum { BATCH = 64 };
	nng_pipe late[BATCH];
	char lines[BATCH][384];
	int n_late = 0, n_lines = 0;
	uint64_t now = lora_now_ms();
	pthread_mutex_lock(&nv->mu);
	for (int i = 0; nv->auth_on && i < nv->conns_cap && n_late < BATCH;
	     i++) {
		struct native_conn *c = &nv->conns[i];
		if (nng_pipe_id(c->pipe) <= 0 || c->authed || c->closing ||
		    now - c->added_ms < nv->auth_timeout_ms)
			continue;
		c->closing = 1;
		late[n_late++] = c->pipe;
		n_lines += refusal_line(nv, TIMED_OUT, &c->src, now,
		                        lines[n_lines], sizeof lines[0]);
	}
	pthread_mutex_unlock(&nv->mu);
	for (int i = 0; i < n_lines; i++)
		LOG_WARN("%s", lines[i]);
	for (int i = 0; i < n_late; i++)
		nng_pipe_close(late[i]);
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
	for (int i = 0; i < nv->conns_cap; i++)
		if ((uint32_t)nng_pipe_id(nv->conns[i].pipe) == id)
			memset(&nv->conns[i], 0, sizeof nv->conns[i]);
	nv->gone_pipes[nv->n_gone++ % NODE_GONE_PIPES_MAX] = id;
	for (int i = 0; i < NODE_NATIVE_SESSIONS_MAX; i++)
		if (nv->sessions[i].pipe == id)
			memset(&nv->sessions[i], 0, sizeof nv->sessions[i]);
	node_xtx_connection_gone(n, id); /* its transactions roll back */
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

/* Keeps c for the client of this thread's request: its id (and its
 * random key in key), 0 when there is no room (c is still the caller's),
 * or 0 with c freed when that client is already gone (*gone set). */
static uint64_t cursor_put(struct lnode *n, struct node_cursor *c, int *gone,
                           uint8_t *key)
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
			*s = (struct cursor_slot){.id = id,
			                          .c = c,
			                          .last_used_ms = now,
			                          .pipe = req_pipe};
			snprintf(s->user, sizeof s->user, "%s", req_user);
			randombytes_buf(s->key, sizeof s->key);
			memcpy(key, s->key, sizeof s->key);
		}
	}
	pthread_mutex_unlock(&nv->mu);
	return id;
}

/* Takes the cursor named key out for use (busy), when this thread's
 * connection opened it; NULL otherwise. *id: its slot id. */
static struct node_cursor *
cursor_take(struct lnode *n, const ProtobufCBinaryData *key, uint64_t *id)
{
	struct node_native *nv = n->native;
	struct node_cursor *c = NULL;
	if (key->len != NODE_CURSOR_KEY_BYTES)
		return NULL;
	pthread_mutex_lock(&nv->mu);
	for (int i = 0; i < NODE_CURSORS_MAX && c == NULL; i++) {
		struct cursor_slot *s = &nv->cursors[i];
		if (s->id && !s->busy && s->pipe == req_pipe &&
		    sodium_memcmp(s->key, key->data, sizeof s->key) == 0 &&
		    !strcmp(s->user, req_user)) {
			s->busy = 1;
			c = s->c;
			*id = s->id;
		}
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

/* query.h's client_gone for a read this worker runs (qry_limits.gone):
 * the connection that asked went away (its pipe was removed). A cursor's
 * later fetch runs on the worker answering that same connection, so the
 * thread's pipe is still the one to ask about. */
static int native_gone(void *arg)
{
	struct lnode *n = arg;
	uint32_t pipe = req_pipe;
	if (pipe == 0)
		return 0;
	pthread_mutex_lock(&n->native->mu);
	int gone = pipe_gone(n->native, pipe);
	pthread_mutex_unlock(&n->native->mu);
	return gone;
}

/* A read the engine stopped because its connection went away
 * (native_gone) before it had a cursor: counted, as HTTP and Bolt count
 * theirs (a cursor's is counted when its connection is removed). */
static void count_gone(struct lnode *n, const Lora__Response *resp)
{
	if (resp && resp->error && resp->error->code &&
	    !strcmp(resp->error->code, lora_err_code(LORA_ECLOSED)) &&
	    native_gone(n))
		node_metrics_client_gone(n, NODE_API_NATIVE);
}

static void handle_run(struct lnode *n, const Lora__RunRequest *run,
                       const struct node_identity *who, int peer,
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
	if (run->mode > QRY_PROFILE) {
		lora_free(es);
		lora_free(ep);
		if ((*resp = node_resp_new()) != NULL)
			node_resp_error(*resp, LORA_EINVAL,
			                "RunRequest.mode must be 0 (run), 1 "
			                "(explain) or 2 (profile)",
			                0, 0);
		return;
	}
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
	    .mode = (enum qry_mode)run->mode,
	    .batch_rows = rows,
	    .mem_bytes_max = run->memory_bytes,
	    .time_ms_max = run->time_ms,
	    .role = who->role,
	    .peer_checked = peer,
	    /* reads only (node_read_open): a read stops when its
	     * connection goes away, also inside one operator */
	    .client_gone = native_gone,
	    .client_gone_arg = n,
	};
	snprintf(req.user, sizeof req.user, "%s", who->user);
	struct node_cursor *c = NULL;
	uint64_t t0 = lora_now_ns();
	if (run->tx && run->tx[0]) { /* in a transaction: every row at once */
		if ((*resp = node_resp_new()) != NULL)
			node_xtx_run(n, run->tx, who, &req, *resp);
	} else {
		node_exec(n, &req, resp, NULL, rows ? &c : NULL);
	}
	if (*resp)
		node_metrics_request(n, "native", (*resp)->error == NULL,
		                     lora_now_ns() - t0);
	count_gone(n, *resp);
	int gone = 0;
	uint8_t *key = c && *resp ? lora_malloc(NODE_CURSOR_KEY_BYTES) : NULL;
	if (c && key) {
		uint64_t id = cursor_put(n, c, &gone, key);
		if (id == 0 && !gone)
			node_cursor_free(n, c);
		if (id == 0) {
			lora_free(key);
			(*resp)->has_more = 0;
			node_resp_error(*resp, LORA_ELIMIT,
			                "too many open cursors", 0, 0);
		} else {
			(*resp)->cursor.data = key;
			(*resp)->cursor.len = NODE_CURSOR_KEY_BYTES;
		}
	} else if (c) {
		if (*resp) {
			(*resp)->has_more = 0;
			node_resp_error(*resp, LORA_ENOMEM, NULL, 0, 0);
		}
		node_cursor_free(n, c);
	}
	lora_free(es);
	lora_free(ep);
}

static void handle_fetch(struct lnode *n, const ProtobufCBinaryData *key,
                         uint32_t rows, Lora__Response *resp)
{
	uint64_t id = 0;
	struct node_cursor *c = cursor_take(n, key, &id);
	if (c == NULL) {
		node_resp_error(resp, LORA_ENOTFOUND,
		                "no such cursor on this connection (closed, "
		                "exhausted, idle too long, or opened by "
		                "another connection)",
		                0, 0);
		return;
	}
	if (rows == 0)
		rows = NODE_BATCH_ROWS_DEFAULT;
	if (rows > NODE_BATCH_ROWS_MAX)
		rows = NODE_BATCH_ROWS_MAX;
	/* a fetch the engine stopped because the connection went away was
	 * counted with its cursor when the connection was removed */
	int rc = node_cursor_fetch(c, rows, resp);
	int keep = rc == 0 && resp->has_more;
	if (keep && (resp->cursor.data = lora_malloc(key->len)) != NULL) {
		memcpy(resp->cursor.data, key->data, key->len);
		resp->cursor.len = key->len;
	}
	cursor_give(n, id, keep);
}

/* BeginRequest: a write transaction only on the leader (else
 * LORA_NOT_LEADER with its address, which the client follows). */
static void handle_begin(struct lnode *n, const Lora__BeginRequest *b,
                         const struct node_identity *who, Lora__Response *resp)
{
	char msg[LORA_ERRMSG_BYTES], id[NODE_XTX_ID_BYTES];
	struct node_member m;
	uint64_t leader = node_leader_id(n);
	if (!b->read_only && !node_is_leader(n)) {
		if (leader && node_member_get(n, leader, &m) == 0 &&
		    m.client_addr[0])
			resp->leader_address = lora_strdup(m.client_addr);
		node_resp_error(resp, LORA_ENOTLEADER,
		                "write transactions run on the leader", 0, 0);
		return;
	}
	struct node_xtx_opts o = {b->read_only, b->timeout_ms, b->memory_bytes,
	                          parse_bookmark(b->bookmark)};
	uint32_t timeout_ms = 0;
	int rc = node_xtx_begin(n, who, &o, req_pipe, id, &timeout_ms, msg);
	if (rc) {
		node_resp_error(resp, rc, msg, 0, 0);
		return;
	}
	/* the client went away before the begin set its connection: nobody
	 * would end it (node_xtx_connection_gone came too early) */
	pthread_mutex_lock(&n->native->mu);
	int gone = req_pipe && pipe_gone(n->native, req_pipe);
	pthread_mutex_unlock(&n->native->mu);
	if (gone) {
		uint64_t index = 0;
		node_xtx_end(n, id, who, 0, &index, msg);
		node_resp_error(resp, LORA_EUNAVAILABLE,
		                "the connection went away: rolled back", 0, 0);
		return;
	}
	resp->tx = lora_strdup(id);
	resp->tx_timeout_ms = timeout_ms;
}

static void handle_end(struct lnode *n, const char *tx, int commit,
                       const struct node_identity *who, Lora__Response *resp)
{
	char msg[LORA_ERRMSG_BYTES];
	uint64_t index = 0;
	int rc = node_xtx_end(n, tx ? tx : "", who, commit, &index, msg);
	if (rc)
		node_resp_error(resp, rc, msg, 0, 0);
	else if (commit)
		node_resp_set_bookmark(resp, index);
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

/* The identity bound to this thread's connection; 0 when it has one. */
static int session_get(struct lnode *n, struct node_identity *who)
{
	struct node_native *nv = n->native;
	int rc = LORA_ENOTFOUND;
	pthread_mutex_lock(&nv->mu);
	for (int i = 0; req_pipe && i < NODE_NATIVE_SESSIONS_MAX; i++)
		if (nv->sessions[i].pipe == req_pipe) {
			*who = nv->sessions[i].who;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&nv->mu);
	return rc;
}

static int session_put(struct lnode *n, const struct node_identity *who)
{
	struct node_native *nv = n->native;
	int rc = LORA_ELIMIT, free_at = -1;
	pthread_mutex_lock(&nv->mu);
	for (int i = 0; i < NODE_NATIVE_SESSIONS_MAX; i++) {
		if (nv->sessions[i].pipe == req_pipe)
			free_at = i; /* authenticates again: replaced */
		else if (nv->sessions[i].pipe == 0 && free_at < 0)
			free_at = i;
	}
	if (free_at >= 0 && req_pipe && !pipe_gone(nv, req_pipe)) {
		nv->sessions[free_at].pipe = req_pipe;
		nv->sessions[free_at].who = *who;
		conn_authed(nv);
		rc = 0;
	}
	pthread_mutex_unlock(&nv->mu);
	return rc;
}

/* The handshake: a password or a token binds a user to the connection. */
static void handle_auth(struct lnode *n, const Lora__AuthRequest *a,
                        Lora__Response *resp)
{
	struct node_identity who;
	int rc =
	    a->token && a->token[0]
	        ? node_auth_token_check(n, a->token, 0, &who)
	        : node_auth_password(n, a->user ? a->user : "",
	                             a->password ? a->password : "", 0, &who);
	if (rc == LORA_EUNAUTHORIZED) {
		node_auth_log_failure(n, "native", a->user);
		node_resp_error(resp, rc, "wrong user name, password or token",
		                0, 0);
		return;
	}
	if (rc == 0)
		rc = session_put(n, &who);
	if (rc) {
		node_resp_error(resp, rc, "cannot authenticate now", 0, 0);
		return;
	}
	resp->user = lora_strdup(who.user);
	resp->role = lora_strdup(node_role_name(who.role));
}

/* A member's hello (forward.c, right after it dials): the proof alone,
 * no query and no user; it only marks the connection as a member's. */
static int native_hello(const Lora__RunRequest *run)
{
	return (run->query == NULL || run->query[0] == '\0') &&
	       (run->as_user == NULL || run->as_user[0] == '\0');
}

/*
 * Who sends req: the connection's handshake, or, for a write a member
 * forwards (a RunRequest with peer_proof), the user that member checked
 * with the lower of the role it claims and the user's role here. 0 (*peer
 * set for the latter), LORA_EUNAUTHORIZED, LORA_EUNAVAILABLE (a leader
 * still without the bootstrap a member's proof comes from, after a
 * bounded wait), LORA_ELIMIT (too many such waits already) or
 * LORA_ETIMEOUT (the user store is busy with a snapshot).
 */
static int identify(struct lnode *n, const Lora__Request *req,
                    struct node_identity *who, int *peer)
{
	*peer = 0;
	memset(who, 0, sizeof *who);
	const Lora__RunRequest *run =
	    req->kind_case == LORA__REQUEST__KIND_RUN ? req->run : NULL;
	if (run && run->peer_proof.len) {
		/* a leader that has not applied the bootstrap a member's proof
		 * comes from waits for it (a worker thread), then says "retry"
		 * (LORA_EUNAVAILABLE), never "wrong password" */
		int prc = node_auth_peer_check_wait(n, run->peer_proof.data,
		                                    run->peer_proof.len, 0);
		if (prc == LORA_EUNAUTHORIZED)
			node_auth_log_failure(n, "forwarded", run->as_user);
		if (prc)
			return prc;
		snprintf(who->user, sizeof who->user, "%s",
		         run->as_user ? run->as_user : "");
		if (native_hello(run)) {
			pthread_mutex_lock(&n->native->mu);
			conn_member(n->native);
			pthread_mutex_unlock(&n->native->mu);
			who->role = NODE_ROLE_NONE;
			*peer = 1;
			return 0;
		}
		int claimed = run->as_role <= NODE_ROLE_ADMIN
		                  ? (int)run->as_role
		                  : NODE_ROLE_NONE;
		/* the lower of the role the member read and the user's role
		 * here now: a demotion or DROP USER the member has not
		 * applied yet takes effect at once */
		int now_role = NODE_ROLE_NONE;
		pthread_mutex_lock(&n->native->mu);
		conn_member(n->native);
		pthread_mutex_unlock(&n->native->mu);
		int rc = node_auth_current_role(n, who->user, &now_role);
		if (rc)
			return rc;
		who->role = claimed < now_role ? claimed : now_role;
		*peer = 1;
		return 0;
	}
	if (!node_auth_enabled(n)) {
		who->role = NODE_ROLE_ADMIN;
		return 0;
	}
	if (session_get(n, who) != 0)
		return LORA_EUNAUTHORIZED;
	/* the password was checked at the handshake; the role is read now,
	 * so a revoked role or a dropped user takes effect at once */
	return who->user[0] &&
	               node_auth_current_role(n, who->user, &who->role) != 0
	           ? LORA_EUNAUTHORIZED
	           : 0;
}

static Lora__Response *handle(struct lnode *n, const uint8_t *p, size_t len)
{
	int code, peer = 0;
	char msg[LORA_ERRMSG_BYTES];
	Lora__Request *req = node_native_decode(p, len, &code, msg);
	Lora__Response *resp = NULL;
	struct node_identity who = {.role = NODE_ROLE_NONE};
	int idrc = req && req->kind_case != LORA__REQUEST__KIND_AUTH
	               ? identify(n, req, &who, &peer)
	               : 0;
	int unauth = idrc != 0;
	snprintf(req_user, sizeof req_user, "%s", unauth ? "" : who.user);
	if (req && !unauth && req->kind_case == LORA__REQUEST__KIND_RUN &&
	    req->run && peer && native_hello(req->run)) {
		resp = node_resp_new(); /* nothing to run: an empty answer */
	} else if (req && !unauth &&
	           req->kind_case == LORA__REQUEST__KIND_RUN && req->run) {
		handle_run(n, req->run, &who, peer, &resp);
	} else if ((resp = node_resp_new()) == NULL) {
		/* out of memory: no answer */
	} else if (req == NULL) {
		node_resp_error(resp, code, msg, 0, 0);
	} else if (req->kind_case == LORA__REQUEST__KIND_AUTH && req->auth) {
		handle_auth(n, req->auth, resp);
	} else if (idrc == LORA_ELIMIT) {
		node_resp_error(resp, LORA_EUNAVAILABLE,
		                NODE_AUTH_SECRET_CROWDED_MSG, 0, 0);
	} else if (idrc == LORA_EUNAVAILABLE) {
		node_resp_error(
		    resp, LORA_EUNAVAILABLE,
		    "this leader has not applied the cluster's auth "
		    "bootstrap yet: not executed, retry",
		    0, 0);
	} else if (idrc == LORA_ETIMEOUT) {
		node_resp_error(resp, LORA_EUNAVAILABLE,
		                "the user store cannot be read now (a snapshot "
		                "is being installed): not executed, retry",
		                0, 0);
	} else if (unauth) {
		node_resp_error(resp, LORA_EUNAUTHORIZED,
		                "authenticate first: send an AuthRequest on "
		                "this connection",
		                0, 0);
	} else if (req->kind_case == LORA__REQUEST__KIND_FETCH && req->fetch) {
		handle_fetch(n, &req->fetch->cursor, req->fetch->batch_rows,
		             resp);
	} else if (req->kind_case == LORA__REQUEST__KIND_CLOSE && req->close) {
		uint64_t id = 0;
		if (cursor_take(n, &req->close->cursor, &id))
			cursor_give(n, id, 0);
	} else if (req->kind_case == LORA__REQUEST__KIND_BEGIN && req->begin) {
		handle_begin(n, req->begin, &who, resp);
	} else if (req->kind_case == LORA__REQUEST__KIND_COMMIT &&
	           req->commit) {
		handle_end(n, req->commit->tx, 1, &who, resp);
	} else if (req->kind_case == LORA__REQUEST__KIND_ROLLBACK &&
	           req->rollback) {
		handle_end(n, req->rollback->tx, 0, &who, resp);
	} else if (req->kind_case == LORA__REQUEST__KIND_CHANGES &&
	           req->changes) {
		if (who.role < NODE_ROLE_READER)
			node_resp_error(
			    resp, LORA_EFORBIDDEN,
			    "the change stream needs the reader role", 0, 0);
		else
			node_cdc_poll(n, req->changes, resp);
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

/* This worker is past opening its context (worker_main). */
static void worker_ready(struct node_native *nv)
{
	pthread_mutex_lock(&nv->mu);
	nv->ready++;
	pthread_cond_broadcast(&nv->ready_cond);
	pthread_mutex_unlock(&nv->mu);
}

static void *native_main(void *arg)
{
	struct lnode *n = arg;
	pthread_setname_np(pthread_self(), "lora-native");
	nng_ctx ctx;
	nng_aio *aio;
	int first = 1;
	if (nng_ctx_open(&ctx, n->native->sock) != 0) {
		worker_ready(n->native);
		return NULL;
	}
	if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
		nng_ctx_close(ctx);
		worker_ready(n->native);
		return NULL;
	}
	for (;;) {
		nng_ctx_recv(ctx, aio);
		if (first) {
			first = 0;
			worker_ready(n->native);
		}
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

/* TLS on the native listener: clients verify our certificate; a client
 * certificate is not asked for (users authenticate in the handshake). */
static int listener_tls(nng_listener l, const struct node_tls *tls,
                        char *errmsg)
{
	nng_tls_config *cfg;
	int rc = node_tls_nng_config(tls, 1, 0, NULL, &cfg, errmsg);
	if (rc)
		return rc;
	int rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
	nng_tls_config_free(cfg); /* the listener holds its own reference */
	if (rv)
		return lora_errf(LORA_ECONFIG, errmsg, "native tls: %s",
		                 nng_strerror(rv));
	return 0;
}

/* Opens nv's listener on nv->url (TLS when the native port has it). */
static int listener_open(struct lnode *n, struct node_native *nv, char *errmsg)
{
	nng_listener l;
	int rv = nng_listener_create(&l, nv->sock, nv->url);
	if (rv == 0 && n->cfg.native_tls.mode != NODE_TLS_OFF) {
		int rc = listener_tls(l, &n->cfg.native_tls, errmsg);
		if (rc) {
			nng_listener_close(l);
			return rc;
		}
	}
	if (rv == 0 && (rv = nng_listener_start(l, 0)) != 0)
		nng_listener_close(l);
	if (rv != 0)
		return lora_errf(LORA_EIO, errmsg, "listen %s: %s", nv->url,
		                 nng_strerror(rv));
	nv->lst = l;
	return 0;
}

/* ---- the listener's watchdog
 * nng 1.5.2 ends a listener's accept loop for good when a new
 * connection's negotiation fails with NNG_ECLOSED or NNG_ECANCELED: it
 * takes them to mean that the listener itself was closed (nng issue
 * 1518, fixed in 1.6.0). tls_engine.c gives neither for what a peer
 * does, but nng's own TCP layer still can (a write that meets the reset
 * of a peer that had sent FIN is EPIPE, which nng calls NNG_ECLOSED).
 * The port then still completes TCP and TLS handshakes and nng's own
 * negotiation, but hands no connection to the node: to every new client,
 * the node never answers.
 *
 * nng counts both errors in the listener's statistics ("other",
 * "canceled") before its loop stops. When those counts moved, the node
 * dials the address its listener is bound to (a wildcard as loopback),
 * without checking the certificate. The verdict "stopped" needs the
 * probe's own side to have its connection (so nng negotiated it) and the
 * node to have been handed none for NODE_NATIVE_HANDOVER_MS after that,
 * NODE_NATIVE_PROBE_TRIES times in a row; a probe that never connects
 * (a firewall, a flood, load) decides nothing. Then the listener is
 * replaced, which closes the connections it held; at most once per
 * NODE_NATIVE_REPLACE_MS. All of it runs on the gossip thread
 * (node_native_reap) and never waits for the network. */
#define NODE_NATIVE_WATCH_MS    2000 /* statistics read at most every */
#define NODE_NATIVE_PROBE_MS    5000 /* for the probe to connect */
#define NODE_NATIVE_HANDOVER_MS 2000 /* for nng to hand its side over */
#define NODE_NATIVE_PROBE_TRIES 2
#define NODE_NATIVE_REPLACE_MS  10000 /* between replacements, at least */
#define NODE_NATIVE_RETRY_MS    60000 /* the most between reopen tries */

/* The errors of listener l that can end its accept loop, so far: 0, or
 * NNG_ENOTSUP (nng keeps no statistics), NNG_ENOENT (not registered yet)
 * or another error of nng_stats_get. nng 1.5.2's nng_stat_find_listener
 * compares the id only on the node it is given (nng issue 1577, fixed in
 * 1.6.0): from the root it returns the first "listener" anywhere, such
 * as a pipe's, so each top-level scope is asked about itself. */
static int listener_errors(nng_listener l, uint64_t *out)
{
	nng_stat *all, *st = NULL;
	int rv = nng_stats_get(&all);
	if (rv != 0)
		return rv;
	for (nng_stat *c = nng_stat_child(all); c && !st; c = nng_stat_next(c))
		if (nng_stat_find_listener(c, l) == c)
			st = c;
	nng_stat *other = st ? nng_stat_find(st, "other") : NULL;
	nng_stat *canceled = st ? nng_stat_find(st, "canceled") : NULL;
	rv = other && canceled ? 0 : NNG_ENOENT;
	if (rv == 0)
		*out = nng_stat_value(other) + nng_stat_value(canceled);
	nng_stats_free(all);
	return rv;
}

/* The URL of the address lst is bound to, numeric (client_addr is not
 * resolved again); with `dial`, a wildcard as loopback. */
static int bound_url(struct lnode *n, nng_listener lst, int dial, char *url,
                     size_t bytes)
{
	nng_sockaddr sa;
	char host[INET6_ADDRSTRLEN] = "";
	int rv = nng_listener_get_addr(lst, NNG_OPT_LOCADDR, &sa);
	if (rv != 0)
		return rv;
	const char *scheme =
	    n->cfg.native_tls.mode != NODE_TLS_OFF ? "tls+tcp" : "tcp";
	if (sa.s_family == NNG_AF_INET) {
		uint32_t a = sa.s_in.sa_addr;
		if (a == 0 && dial)
			a = htonl(INADDR_LOOPBACK);
		inet_ntop(AF_INET, &a, host, sizeof host);
		snprintf(url, bytes, "%s://%s:%u", scheme, host,
		         ntohs(sa.s_in.sa_port));
	} else if (sa.s_family == NNG_AF_INET6) {
		static const uint8_t any[16];
		uint8_t a[16];
		memcpy(a, sa.s_in6.sa_addr, 16);
		if (memcmp(a, any, 16) == 0 && dial)
			a[15] = 1; /* ::1 */
		inet_ntop(AF_INET6, a, host, sizeof host);
		snprintf(url, bytes, "%s://[%s]:%u", scheme, host,
		         ntohs(sa.s_in6.sa_port));
	} else {
		return NNG_ENOTSUP;
	}
	return 0;
}

/* The probe's side has its connection (nng's callback). */
static void probe_pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct node_native *nv = arg;
	(void)p;
	(void)ev;
	atomic_store(&nv->probe_up, 1);
}

/* A client TLS configuration that checks nothing: only nng's handover of
 * the connection is looked for, not who answers. */
static int probe_tls(nng_dialer d)
{
	nng_tls_config *cfg;
	if (node_tls_engine_register() != 0)
		return NNG_ENOTSUP;
	int rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT);
	if (rv != 0)
		return rv;
	rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE);
	if (rv == 0)
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
	nng_tls_config_free(cfg); /* the dialer keeps its own reference */
	return rv;
}

/* Dials our own native port from a socket of its own. */
static int probe_start(struct lnode *n, struct node_native *nv, uint64_t now)
{
	char url[NODE_ADDR_BYTES_MAX + 64];
	nng_dialer d;
	int rv = bound_url(n, nv->lst, 1, url, sizeof url);
	if (rv == 0)
		rv = nng_req0_open(&nv->probe);
	if (rv != 0)
		return rv;
	atomic_store(&nv->probe_up, 0);
	rv = nng_pipe_notify(nv->probe, NNG_PIPE_EV_ADD_POST, probe_pipe_added,
	                     nv);
	if (rv == 0)
		rv = nng_dialer_create(&d, nv->probe, url);
	if (rv == 0 && n->cfg.native_tls.mode != NODE_TLS_OFF)
		rv = probe_tls(d);
	pthread_mutex_lock(&nv->mu);
	nv->probe_added = nv->added;
	pthread_mutex_unlock(&nv->mu);
	if (rv == 0)
		rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	if (rv != 0) {
		nng_close(nv->probe);
		return rv;
	}
	nv->probe_until = now + NODE_NATIVE_PROBE_MS;
	nv->probe_up_ms = 0;
	nv->probing = 1;
	return 0;
}

/* The listener handed over nothing to our probes: a new one in its place.
 * When that fails the port is closed: tried again at later looks, with a
 * growing pause, logged at each change of the reason. */
static void listener_replace(struct lnode *n, struct node_native *nv,
                             uint64_t now)
{
	char err[LORA_ERRMSG_BYTES];
	if (nv->lst_open) {
		nng_listener_close(nv->lst);
		nv->lst_open = 0;
		nv->replaced_ms = now;
		LOG_WARN("native: the listener on %s handed over no new "
		         "connection to %d dials of this node's own, for %d ms "
		         "after each connected; starting it again (its "
		         "connections are closed; nng 1.5.2 stops accepting "
		         "after some connection errors)",
		         nv->url, NODE_NATIVE_PROBE_TRIES,
		         NODE_NATIVE_HANDOVER_MS);
	}
	if (listener_open(n, nv, err) == 0) {
		nv->lst_open = 1;
		nv->errs_seen = 0;
		nv->retry_ms = 0;
		nv->last_err[0] = '\0';
		LOG_WARN("native: the listener on %s was started again",
		         nv->url);
		return;
	}
	if (strcmp(err, nv->last_err) != 0) {
		LOG_ERROR("native: the listener on %s cannot be started "
		          "again; the native port is closed until it can: %s",
		          nv->url, err);
		snprintf(nv->last_err, sizeof nv->last_err, "%s", err);
	}
	nv->retry_ms = nv->retry_ms ? nv->retry_ms * 2 : NODE_NATIVE_WATCH_MS;
	if (nv->retry_ms > NODE_NATIVE_RETRY_MS)
		nv->retry_ms = NODE_NATIVE_RETRY_MS;
	nv->retry_at_ms = now + nv->retry_ms;
}

/* A probe that decided nothing (it could not start, or never connected):
 * probed again at the next look; said once in NODE_NATIVE_UNDECIDED
 * such probes in a row, since the watchdog cannot work meanwhile. */
#define NODE_NATIVE_UNDECIDED 5
static void probe_undecided(struct node_native *nv, const char *why)
{
	nv->errs_seen = UINT64_MAX;
	if (++nv->undecided == NODE_NATIVE_UNDECIDED)
		LOG_WARN("native: %d dials of the listener's own address in a "
		         "row decided nothing (%s): the watchdog of %s cannot "
		         "tell whether nng still accepts",
		         NODE_NATIVE_UNDECIDED, why, nv->url);
}

/* A probe under way: alive when a connection was handed over since it
 * started; "stopped" when its own side connected NODE_NATIVE_HANDOVER_MS
 * ago and none was; nothing learnt when it never connected. */
static void probe_check(struct lnode *n, struct node_native *nv, uint64_t now)
{
	pthread_mutex_lock(&nv->mu);
	int came = nv->added != nv->probe_added;
	pthread_mutex_unlock(&nv->mu);
	if (!came && atomic_load(&nv->probe_up) && nv->probe_up_ms == 0)
		nv->probe_up_ms = now;
	int stopped = !came && nv->probe_up_ms &&
	              now - nv->probe_up_ms >= NODE_NATIVE_HANDOVER_MS;
	if (!came && !stopped && now < nv->probe_until)
		return;
	nng_close(nv->probe);
	nv->probing = 0;
	nv->watched_ms = now;
	if (!stopped) {
		nv->probe_fails = 0;
		if (came)
			nv->undecided = 0;
		else
			probe_undecided(nv, "it never connected");
		return;
	}
	nv->undecided = 0;
	if (++nv->probe_fails < NODE_NATIVE_PROBE_TRIES) {
		int rv = probe_start(n, nv, now);
		if (rv != 0) {
			nv->probe_fails = 0;
			probe_undecided(nv, nng_strerror(rv));
		}
		return;
	}
	nv->probe_fails = 0;
	if (now - nv->replaced_ms >= NODE_NATIVE_REPLACE_MS)
		listener_replace(n, nv, now);
	else /* too soon after the last one: probed again later */
		nv->errs_seen = UINT64_MAX;
}

static void listener_watch(struct lnode *n, struct node_native *nv)
{
	uint64_t now = lora_now_ms(), errs = 0;
	if (nv->watch_off || !atomic_load(&nv->listening))
		return;
	if (nv->probing) {
		probe_check(n, nv, now);
		return;
	}
	if (!nv->lst_open) {
		if (now >= nv->retry_at_ms)
			listener_replace(n, nv, now);
		return;
	}
	if (now - nv->watched_ms < NODE_NATIVE_WATCH_MS)
		return;
	nv->watched_ms = now;
	int rv = listener_errors(nv->lst, &errs);
	if (rv == NNG_ENOTSUP) {
		nv->watch_off = 1;
		LOG_WARN("native: nng keeps no statistics: the listener is not "
		         "watched");
	}
	if (rv != 0 || errs == nv->errs_seen)
		return; /* (not registered yet: the next look) */
	nv->errs_seen = errs;
	rv = probe_start(n, nv, now);
	if (rv != 0) /* (a stopped loop's counts move no more) */
		probe_undecided(nv, nng_strerror(rv));
}

int node_native_start(struct lnode *n, char *errmsg)
{
	struct node_native *nv = lora_calloc(1, sizeof *nv);
	if (nv == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	if (node_cond_init(&nv->ready_cond) != 0) {
		lora_free(nv);
		return lora_errf(LORA_EINTERNAL, errmsg,
		                 "native: cannot make a condition");
	}
	pthread_mutex_init(&nv->mu, NULL);
	nv->conns_cap = native_conns_cap;
	nv->auth_on = node_auth_enabled(n);
	nv->auth_timeout_ms = n->cfg.auth_timeout_ms;
	nv->pending_per_source = n->cfg.pending_per_source;
	nv->pending_max = n->cfg.native_pending_max;
	n->native = nv;
	node_tls_url(&n->cfg.native_tls, n->cfg.client_addr, nv->url,
	             sizeof nv->url);
	int rv = nng_rep0_open(&nv->sock);
	if (rv == 0)
		rv = nng_socket_set_size(nv->sock, NNG_OPT_RECVMAXSZ,
		                         NODE_NATIVE_MSG_BYTES_MAX);
	if (rv == 0)
		rv = nng_pipe_notify(nv->sock, NNG_PIPE_EV_REM_POST,
		                     pipe_removed, n);
	if (rv == 0)
		rv = nng_pipe_notify(nv->sock, NNG_PIPE_EV_ADD_PRE, pipe_added,
		                     n);
	if (rv != 0)
		return lora_errf(LORA_EIO, errmsg, "native socket: %s",
		                 nng_strerror(rv));
	rv = listener_open(n, nv, errmsg);
	if (rv)
		return rv;
	/* a reopen binds the same address without resolving a name */
	char bound[sizeof nv->url];
	if (bound_url(n, nv->lst, 0, bound, sizeof bound) == 0)
		snprintf(nv->url, sizeof nv->url, "%s", bound);
	nv->lst_open = 1;
	atomic_store(&nv->listening, 1);
	/* a server without its workers fails the start (node_native_stop
	 * joins those that started) */
	int rc = 0;
	for (int i = 0; rc == 0 && i < NODE_NATIVE_WORKERS; i++) {
		rc = node_thread_start(&nv->threads[i], native_main, n,
		                       "native worker", errmsg);
		nv->n_threads += rc == 0;
	}
	return rc;
}

void node_native_stop(struct lnode *n)
{
	struct node_native *nv = n->native;
	if (nv == NULL)
		return;
	/* nng_close while a worker is between opening its context and its
	 * first receive could wait for good (seen when a later worker's
	 * start failed right after: node_faults hung in nng_close); each
	 * worker signals when it is past that step */
	uint64_t until = lora_now_ms() + NODE_NATIVE_READY_WAIT_MS;
	pthread_mutex_lock(&nv->mu);
	while (nv->ready < nv->n_threads &&
	       node_cond_wait_until(&nv->ready_cond, &nv->mu, until) == 0)
		;
	pthread_mutex_unlock(&nv->mu);
	if (nv->probing)
		nng_close(nv->probe);
	nng_close(nv->sock);
	for (int i = 0; i < nv->n_threads; i++)
		pthread_join(nv->threads[i], NULL);
	/* node_http_stop swept before these workers stopped: a transaction
	 * they began since then is rolled back now (stopping: every one) */
	node_http_tx_reap(n);
	for (int i = 0; i < NODE_CURSORS_MAX; i++)
		if (nv->cursors[i].id)
			node_cursor_free(n, nv->cursors[i].c);
	pthread_mutex_destroy(&nv->mu);
	pthread_cond_destroy(&nv->ready_cond);
	lora_free(nv);
	n->native = NULL;
}
