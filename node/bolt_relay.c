/*
 * bolt_relay.c - a write transaction begun on a follower runs on the
 * leader: the follower's session opens a Bolt connection to the leader's
 * Bolt port and relays the transaction's messages and their answers.
 *
 * Why Bolt to Bolt: the transaction is the leader's own Bolt transaction
 * (txn.c behind it, as for a client of the leader), and the answers are
 * passed on as the leader encoded them (same version, same values), so
 * nothing is translated twice. The relay connection speaks the client's
 * version, logs in with the credentials the client gave at HELLO / LOGON
 * (the leader checks them and the user's role again), and uses TLS with
 * the cluster's CA when bolt_tls is on (the leader's certificate must name
 * lora-node-<id>, as the HTTP proxy checks).
 *
 * The relay's HELLO names it (BOLT_RELAY_AGENT): a node that is not the
 * leader answers a BEGIN on such a connection NotALeader instead of
 * relaying it again (two nodes that each take the other for the leader
 * during an election would otherwise relay in a loop), and the follower
 * turns that into a retryable DatabaseUnavailable.
 *
 * From the BEGIN to the end of the transaction every request but RESET
 * and GOODBYE goes to the leader as it came (re-chunked) and every answer
 * up to the request's summary (SUCCESS, FAILURE, IGNORED; RECORDs before
 * it) comes back to the client. The transaction ends at a COMMIT or
 * ROLLBACK answer, a FAILURE (the leader's connection is RESET and the
 * client's session is FAILED here), a RESET, the client leaving or idling
 * (the relay connection is RESET or closed: the leader rolls back), or
 * the leader going away:
 *   - before a request went out (found closed when it is about to be
 *     sent, or the send fails): nothing of the transaction was committed,
 *     so the client gets Neo.TransientError.General.DatabaseUnavailable
 *     and a driver's managed transaction retries (from the BEGIN, which
 *     then finds the new leader);
 *   - after COMMIT went out, before its answer: it may have committed,
 *     Neo.DatabaseError.Transaction.TransactionCommitFailed (not retried;
 *     a tx_metadata.requestId makes a retry safe).
 *
 * Bounds: one answer message is at most BOLT_MESSAGE_BYTES_MAX, each
 * answer comes within BOLT_RELAY_ANSWER_MS, connecting and logging in
 * within BOLT_RELAY_CONNECT_MS. Everything runs on the session's own
 * thread (non-blocking socket, poll with deadlines), so no other session
 * waits on it. The connection stays with the session after the
 * transaction (a pool of one per client connection: a driver's pooled
 * connection keeps its relay, and the leader checks the password once);
 * it is dropped when the leader changes, it is found closed, at LOGOFF /
 * LOGON, and with the session.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "bolt_int.h"
#include "log.h"
#include "tls.h"
#include "transport.h"

struct bolt_relay {
	int fd;
	struct node_tls_conn *tls;
	uint64_t leader;    /* the node it talks to */
	struct lora_buf in; /* one answer, unchunked */
};

/* the client side of TLS to the leaders' Bolt ports: made on first use,
 * kept until exit (as proxy.c's) */
static pthread_mutex_t relay_tls_mu = PTHREAD_MUTEX_INITIALIZER;
static struct node_tls_ctx *relay_tls_ctx;

static struct node_tls_ctx *relay_tls_client(struct lnode *n)
{
	pthread_mutex_lock(&relay_tls_mu);
	if (relay_tls_ctx == NULL) {
		struct node_tls trust =
		    node_tls_member_trust(&n->cfg.bolt_tls, n->cfg.peer_tls.ca);
		char err[LORA_ERRMSG_BYTES];
		if (node_tls_ctx_new(&trust, 0, &relay_tls_ctx, err) != 0)
			LOG_WARN("bolt relay: %s", err);
	}
	pthread_mutex_unlock(&relay_tls_mu);
	return relay_tls_ctx;
}

static void relay_free(struct bolt_relay *r)
{
	if (r == NULL)
		return;
	if (r->tls)
		node_tls_close_notify(r->tls);
	node_tls_conn_free(r->tls);
	if (r->fd >= 0)
		close(r->fd);
	lora_buf_free(&r->in);
	lora_free(r);
}

/* ---- bytes, with deadlines --------------------------------------------------
 */

/* Waits for events on r's socket until deadline_ms: 0, or LORA_ETIMEOUT /
 * LORA_ECLOSED. */
static int relay_wait(struct bolt_relay *r, short events, uint64_t deadline_ms)
{
	for (;;) {
		uint64_t now = lora_now_ms();
		if (now >= deadline_ms)
			return LORA_ETIMEOUT;
		struct pollfd p = {.fd = r->fd, .events = events};
		int k = poll(&p, 1, (int)(deadline_ms - now));
		if (k > 0)
			return 0;
		if (k < 0 && errno != EINTR)
			return LORA_ECLOSED;
	}
}

static int relay_send(struct bolt_relay *r, const void *p, size_t len,
                      uint64_t deadline_ms)
{
	size_t off = 0;
	while (off < len || (r->tls && node_tls_flush(r->tls) != 0)) {
		ssize_t k = -1;
		if (off < len)
			k = r->tls
			        ? node_tls_send(r->tls, (const char *)p + off,
			                        len - off)
			        : send(r->fd, (const char *)p + off, len - off,
			               MSG_NOSIGNAL);
		if (k > 0) {
			off += (size_t)k;
			continue;
		}
		if (off < len && k == 0)
			return LORA_ECLOSED;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return LORA_ECLOSED;
		short ev = r->tls ? (short)node_tls_wants(r->tls) : POLLOUT;
		if (relay_wait(r, ev, deadline_ms))
			return LORA_ECLOSED;
	}
	return 0;
}

static int relay_read(struct bolt_relay *r, uint8_t *p, size_t len,
                      uint64_t deadline_ms)
{
	size_t got = 0;
	while (got < len) {
		ssize_t k = r->tls ? node_tls_recv(r->tls, p + got, len - got)
		                   : recv(r->fd, p + got, len - got, 0);
		if (k > 0) {
			got += (size_t)k;
			continue;
		}
		if (k == 0 || (errno != EAGAIN && errno != EINTR))
			return LORA_ECLOSED;
		if (errno == EINTR)
			continue;
		short ev = r->tls ? (short)node_tls_wants(r->tls) : POLLIN;
		int rc = relay_wait(r, ev, deadline_ms);
		if (rc)
			return rc;
	}
	return 0;
}

/* One answer into r->in: 0, LORA_ECLOSED, LORA_ETIMEOUT or LORA_ELIMIT. */
static int relay_read_msg(struct bolt_relay *r, uint64_t deadline_ms)
{
	static _Thread_local uint8_t chunk[0xFFFF];
	lora_buf_reset(&r->in);
	for (uint32_t chunks = 0;;) {
		uint8_t h[2];
		int rc = relay_read(r, h, 2, deadline_ms);
		if (rc)
			return rc;
		size_t k = ((size_t)h[0] << 8) | h[1];
		if (k == 0 && r->in.len == 0)
			continue; /* a keep-alive */
		if (k == 0)
			return r->in.len >= 2 ? 0 : LORA_ECORRUPT;
		if (++chunks > BOLT_CHUNKS_MAX ||
		    r->in.len + k > BOLT_MESSAGE_BYTES_MAX)
			return LORA_ELIMIT;
		if ((rc = relay_read(r, chunk, k, deadline_ms)) != 0)
			return rc;
		if (lora_buf_append(&r->in, chunk, k))
			return LORA_ENOMEM;
	}
}

/* Sends one message (len bytes, unchunked) as chunks. */
static int relay_send_msg(struct bolt_relay *r, const uint8_t *p, size_t len,
                          uint64_t deadline_ms)
{
	struct lora_buf out = {0};
	int rc = 0;
	for (size_t off = 0; off < len && rc == 0;) {
		size_t k = len - off > 0xFFFF ? 0xFFFF : len - off;
		uint8_t h[2] = {(uint8_t)(k >> 8), (uint8_t)k};
		rc = lora_buf_append(&out, h, 2);
		if (rc == 0)
			rc = lora_buf_append(&out, p + off, k);
		off += k;
	}
	if (rc == 0)
		rc = lora_buf_append(&out, "\0\0", 2);
	if (rc == 0)
		rc = relay_send(r, out.data, out.len, deadline_ms);
	if (out.data) /* it may hold the credentials (LOGON) */
		sodium_memzero(out.data, out.cap);
	lora_buf_free(&out);
	return rc;
}

/* 1 when the leader closed r (or sent something unasked) while it was
 * idle between requests: the leader went away before the next request. */
static int relay_closed(struct bolt_relay *r)
{
	if (r->tls && node_tls_pending(r->tls))
		return 1;
	struct pollfd p = {.fd = r->fd, .events = POLLIN};
	return poll(&p, 1, 0) != 0;
}

/* The tag of the answer in r->in. */
static uint8_t answer_tag(const struct bolt_relay *r)
{
	return (uint8_t)r->in.data[1];
}

/* ---- opening: connect, TLS, handshake, HELLO / LOGON
 * ---------------------------------------------------------------------------
 */

static int relay_connect(struct bolt_relay *r, const char *addr)
{
	struct addrinfo *ai;
	if (node_addr_resolve(addr, 0, &ai) != 0)
		return LORA_EUNAVAILABLE;
	r->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = r->fd < 0 ? LORA_EUNAVAILABLE : 0;
	if (rc == 0) {
		/* a blocking connect bounded by the send timeout, then
		 * non-blocking for the deadlines of every read and write */
		struct timeval tv = {.tv_sec = BOLT_RELAY_CONNECT_MS / 1000,
		                     .tv_usec =
		                         BOLT_RELAY_CONNECT_MS % 1000 * 1000};
		int one = 1;
		setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(r->fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
		    fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK) !=
		        0)
			rc = LORA_EUNAVAILABLE;
	}
	freeaddrinfo(ai);
	return rc;
}

static int relay_tls(struct lnode *n, struct bolt_relay *r,
                     uint64_t deadline_ms)
{
	struct node_tls_ctx *ctx = relay_tls_client(n);
	char name[64];
	snprintf(name, sizeof name, NODE_TLS_PEER_NAME_FMT,
	         (unsigned long long)r->leader);
	if (ctx == NULL || node_tls_conn_new(ctx, r->fd, name, &r->tls) != 0)
		return LORA_EUNAVAILABLE;
	while (node_tls_handshake(r->tls) != 0) {
		if (errno != EAGAIN ||
		    relay_wait(r, (short)node_tls_wants(r->tls), deadline_ms)) {
			char why[128] = "timed out";
			if (errno != EAGAIN)
				node_tls_error(r->tls, why, sizeof why);
			LOG_WARN("bolt relay: TLS to node %llu: %s",
			         (unsigned long long)r->leader, why);
			return LORA_EUNAVAILABLE;
		}
	}
	return 0;
}

/* The credentials the client logged in with, as a map's entries. */
static int put_auth(struct bolt_conn *c, struct lora_buf *b)
{
	int rc = ps_put_str(b, "scheme");
	if (rc == 0)
		rc = ps_put_str(b, c->auth_scheme);
	if (rc == 0 && strcmp(c->auth_scheme, "none") != 0) {
		rc = ps_put_str(b, "principal");
		if (rc == 0)
			rc = ps_put_str(b, c->user);
		if (rc == 0)
			rc = ps_put_str(b, "credentials");
		if (rc == 0)
			rc = ps_put_str(b, c->auth_credentials);
	}
	return rc;
}

/* HELLO (with the credentials before 5.1, then LOGON), into b. */
static int put_hello(struct bolt_conn *c, struct lora_buf *b, int logon)
{
	int v51 = c->version >= BOLT_V(5, 1);
	int basic = strcmp(c->auth_scheme, "none") != 0;
	int utc = c->version == BOLT_V(4, 4) && c->enc.utc_datetime;
	if (logon)
		return ps_put_struct_header(b, BOLT_LOGON, 1) ||
		               ps_put_map_header(b, basic ? 3 : 1) ||
		               put_auth(c, b)
		           ? LORA_ENOMEM
		           : 0;
	uint32_t n = 1 + (v51 ? 0 : basic ? 3 : 1) + (utc ? 1 : 0);
	int rc = ps_put_struct_header(b, BOLT_HELLO, 1) ||
	         ps_put_map_header(b, n) || ps_put_str(b, "user_agent") ||
	         ps_put_str(b, BOLT_RELAY_AGENT);
	if (rc == 0 && !v51)
		rc = put_auth(c, b);
	if (rc == 0 && utc)
		rc = ps_put_str(b, "patch_bolt") || ps_put_list_header(b, 1) ||
		     ps_put_str(b, "utc");
	return rc ? LORA_ENOMEM : 0;
}

/* Handshake and login on a connected r: 0; LORA_EUNAVAILABLE (no
 * answer, out of shape); LORA_EUNAUTHORIZED with the leader's FAILURE in
 * r->in. */
static int relay_login(struct bolt_conn *c, struct bolt_relay *r,
                       uint64_t deadline_ms)
{
	/* the magic, then one proposal: exactly the client's version */
	uint8_t hs[20] = {0x60, 0x60, 0xB0, 0x17};
	hs[6] = (uint8_t)(c->version & 0xFF);
	hs[7] = (uint8_t)(c->version >> 8);
	uint8_t ans[4];
	if (relay_send(r, hs, sizeof hs, deadline_ms) ||
	    relay_read(r, ans, 4, deadline_ms) || memcmp(ans, hs + 4, 4) != 0)
		return LORA_EUNAVAILABLE;
	for (int step = 0; step < 1 + (c->version >= BOLT_V(5, 1)); step++) {
		struct lora_buf b = {0};
		int rc = put_hello(c, &b, step);
		if (rc == 0)
			rc = relay_send_msg(r, (const uint8_t *)b.data, b.len,
			                    deadline_ms);
		if (b.data)
			sodium_memzero(b.data, b.cap);
		lora_buf_free(&b);
		if (rc == 0)
			rc = relay_read_msg(r, deadline_ms);
		if (rc)
			return LORA_EUNAVAILABLE;
		if (answer_tag(r) == BOLT_FAILURE)
			return LORA_EUNAUTHORIZED;
		if (answer_tag(r) != BOLT_SUCCESS)
			return LORA_EUNAVAILABLE;
	}
	return 0;
}

/* A new relay to leader `to` at its Bolt address. */
static int relay_open(struct bolt_conn *c, uint64_t to, const char *addr,
                      struct bolt_relay **out)
{
	struct bolt_relay *r = lora_calloc(1, sizeof *r);
	if (r == NULL)
		return LORA_ENOMEM;
	r->fd = -1;
	r->leader = to;
	uint64_t until = lora_now_ms() + BOLT_RELAY_CONNECT_MS;
	int rc = relay_connect(r, addr);
	if (rc == 0 && c->n->cfg.bolt_tls.mode != NODE_TLS_OFF)
		rc = relay_tls(c->n, r, until);
	if (rc == 0)
		rc = relay_login(c, r, until);
	*out = r;
	return rc;
}

/* ---- the transaction --------------------------------------------------------
 */

/* The leader's id and Bolt address: 0, or LORA_EUNAVAILABLE. */
static int leader_addr(struct lnode *n, uint64_t *id, char *addr, size_t bytes)
{
	*id = node_leader_id(n);
	addr[0] = '\0';
	pthread_mutex_lock(&n->status_mu);
	for (int i = 0; i < n->n_members && *id; i++)
		if (n->members[i].id == *id)
			snprintf(addr, bytes, "%s", n->members[i].bolt_addr);
	pthread_mutex_unlock(&n->status_mu);
	return *id && *id != n->cfg.id && addr[0] ? 0 : LORA_EUNAVAILABLE;
}

/* Passes the answer in r->in to the client. */
static int pass_answer(struct bolt_conn *c, struct bolt_relay *r)
{
	lora_buf_reset(&c->msg);
	int rc = lora_buf_append(&c->msg, r->in.data, r->in.len);
	return rc ? rc : bolt_send_msg(c);
}

/* The FAILURE in r->in, passed on (its code and message), or `lora_err`
 * when it does not decode. */
static int pass_failure(struct bolt_conn *c, struct bolt_relay *r, int lora_err,
                        const char *why)
{
	struct ps_dec d = {0};
	struct ps_message m;
	char err[LORA_ERRMSG_BYTES];
	if (ps_decode_message((const uint8_t *)r->in.data, r->in.len, &d, &m,
	                      err) != 0)
		return bolt_fail(c, lora_err, why);
	const Lora__Value *meta = m.n_fields ? m.fields[0] : NULL;
	const Lora__Value *code = ps_map_get(meta, "code");
	const Lora__Value *msg = ps_map_get(meta, "message");
	int ok = code && code->kind_case == LORA__VALUE__KIND_STRING_VALUE &&
	         msg && msg->kind_case == LORA__VALUE__KIND_STRING_VALUE;
	int rc;
	if (ok &&
	    !strcmp(code->string_value, "Neo.ClientError.Cluster.NotALeader"))
		/* it stepped down since: nothing began, begin again (a
		 * bolt:// driver retries a transient error, not this) */
		rc =
		    bolt_fail(c, LORA_EUNAVAILABLE,
		              "the leader stepped down: retry the transaction");
	else if (ok)
		rc =
		    bolt_send_failure(c, code->string_value, msg->string_value);
	else
		rc = bolt_fail(c, lora_err, why);
	ps_message_free(&m);
	return rc;
}

/* Ends the relayed transaction: RESET on the leader's connection (it
 * rolls back there); the connection is dropped when that fails. */
void bolt_relay_end(struct bolt_conn *c)
{
	struct bolt_relay *r = c->relay;
	c->relay_tx = 0;
	if (r == NULL)
		return;
	static const uint8_t reset[2] = {0xB0, BOLT_RESET};
	uint64_t until = lora_now_ms() + BOLT_RELAY_CONNECT_MS;
	int rc = relay_send_msg(r, reset, sizeof reset, until);
	/* answers to the request before, if any, then the RESET's */
	while (rc == 0 && (rc = relay_read_msg(r, until)) == 0 &&
	       answer_tag(r) != BOLT_SUCCESS)
		if (answer_tag(r) != BOLT_RECORD)
			rc = LORA_ECORRUPT;
	if (rc) {
		relay_free(r);
		c->relay = NULL;
	}
}

void bolt_relay_free(struct bolt_conn *c)
{
	relay_free(c->relay);
	c->relay = NULL;
	c->relay_tx = 0;
}

void bolt_relay_logout(struct bolt_conn *c)
{
	bolt_relay_free(c);
	sodium_memzero(c->auth_credentials, sizeof c->auth_credentials);
	c->auth_scheme[0] = '\0';
}

/* A logged-in relay to the leader in c->relay, reusing the session's one
 * when it still talks to the leader: 0, or a FAILURE was sent. */
static int relay_get(struct bolt_conn *c, int *failed)
{
	char addr[NODE_ADDR_BYTES_MAX];
	uint64_t to;
	*failed = 1;
	if (leader_addr(c->n, &to, addr, sizeof addr) != 0)
		return bolt_fail(
		    c, LORA_EUNAVAILABLE,
		    "no leader is known for this write transaction "
		    "(an election is going on): retry");
	if (c->relay && (c->relay->leader != to || relay_closed(c->relay)))
		bolt_relay_free(c);
	if (c->relay) {
		*failed = 0;
		return 0;
	}
	struct bolt_relay *r = NULL;
	int rc = relay_open(c, to, addr, &r);
	if (rc == LORA_EUNAUTHORIZED) {
		rc = pass_failure(c, r, LORA_EUNAUTHORIZED,
		                  "the leader refused the credentials");
		relay_free(r);
		return rc;
	}
	if (rc) {
		relay_free(r);
		char m[LORA_ERRMSG_BYTES];
		snprintf(m, sizeof m,
		         "cannot reach the leader (node %llu, Bolt %s) for "
		         "this write transaction: retry",
		         (unsigned long long)to, addr);
		return bolt_fail(c, LORA_EUNAVAILABLE, m);
	}
	c->relay = r;
	*failed = 0;
	return 0;
}

/* Sends the request in c->req to the leader (unless `sent`: it went
 * already) and passes the answers on up to its summary; the
 * transaction's state follows them. */
static int relay_exchange(struct bolt_conn *c, uint8_t tag, int sent)
{
	struct bolt_relay *r = c->relay;
	uint64_t until = lora_now_ms() + BOLT_RELAY_ANSWER_MS;
	int rc = 0;
	if (sent)
		;
	else if (relay_closed(r))
		rc = LORA_ECLOSED;
	else if ((rc = relay_send_msg(r, c->req, c->req_len, until)) == 0)
		sent = 1;
	while (rc == 0) {
		until = lora_now_ms() + BOLT_RELAY_ANSWER_MS;
		if ((rc = relay_read_msg(r, until)) != 0)
			break;
		uint8_t t = answer_tag(r);
		if (t == BOLT_FAILURE || t == BOLT_IGNORED) {
			c->relay_tx = 0;
			rc = t == BOLT_FAILURE
			         ? pass_failure(c, r, LORA_EINTERNAL,
			                        "the leader failed")
			         : bolt_fail(c, LORA_EINTERNAL,
			                     "the leader ignored the request");
			bolt_relay_end(c); /* the leader's side: RESET */
			c->state = BOLT_S_FAILED;
			return rc;
		}
		if ((rc = pass_answer(c, r)) != 0)
			return rc; /* the client went away */
		if (t != BOLT_SUCCESS)
			continue; /* RECORD */
		if (tag == BOLT_COMMIT || tag == BOLT_ROLLBACK) {
			c->relay_tx = 0;
			c->state = BOLT_S_READY;
		} else if (tag == BOLT_BEGIN) {
			c->relay_tx = 1;
			c->state = BOLT_S_TX;
		}
		return 0;
	}
	/* the leader went away (or took too long): its side rolls back
	 * when the connection closes */
	bolt_relay_free(c);
	c->state = BOLT_S_FAILED;
	if (sent && tag == BOLT_COMMIT)
		return bolt_fail(c, LORA_EUNKNOWN_OUTCOME,
		                 "the connection to the leader was lost during "
		                 "COMMIT: the transaction may have committed");
	char m[LORA_ERRMSG_BYTES];
	snprintf(m, sizeof m,
	         "the connection to the leader was lost (%s) inside the "
	         "transaction: it was rolled back, retry it",
	         lora_strerror(rc));
	return bolt_fail(c, LORA_EUNAVAILABLE, m);
}

int bolt_relay_begin(struct bolt_conn *c)
{
	int failed = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		int reused = c->relay != NULL;
		int rc = relay_get(c, &failed);
		if (failed)
			return rc;
		struct bolt_relay *r = c->relay;
		uint64_t until = lora_now_ms() + BOLT_RELAY_ANSWER_MS;
		if (relay_send_msg(r, c->req, c->req_len, until) != 0 &&
		    reused) {
			bolt_relay_free(c); /* gone while idle: a new one */
			continue;
		}
		c->results_epoch = bolt_server_epoch(c);
		c->tx_failed_closed = c->tx_expired = 0;
		c->relay_tx = 1; /* sent: the leader may have begun it */
		return relay_exchange(c, BOLT_BEGIN, 1);
	}
	return bolt_fail(c, LORA_EUNAVAILABLE,
	                 "cannot reach the leader for this write transaction: "
	                 "retry");
}

int bolt_relay_request(struct bolt_conn *c, uint8_t tag)
{
	assert(c->relay_tx && c->relay);
	return relay_exchange(c, tag, 0);
}
