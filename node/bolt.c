/*
 * bolt.c - the Bolt server: a TCP listener on bolt_addr (port 7687 by
 * default), the handshake, and the chunked message framing; the messages
 * themselves are bolt_session.c's.
 *
 * One thread per connection, at most bolt_connections_max of them (one
 * more is refused at accept). A connection thread reads one request
 * (chunks up to a zero-size chunk, at most BOLT_MESSAGE_BYTES_MAX bytes
 * in BOLT_CHUNKS_MAX chunks), hands it to the session and sends the
 * buffered answers before it blocks to read again, so pipelined requests
 * (RUN + PULL) are answered in one send. Statements run on this thread:
 * a write waits for its commit here, a PULL streams rows from the
 * executor's cursor as the socket takes them.
 *
 * Open results hold a read view (and the state store). They are dropped
 * after cursor_idle_ms without a request, and when a snapshot is about
 * to replace the store (node_bolt_close_cursors bumps an epoch which
 * every connection with open results checks every BOLT_POLL_MS).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bolt_int.h"
#include "log.h"
#include "thread.h"

struct node_bolt {
	struct lnode *n;
	int lfd;
	pthread_t accept_thread;
	int accept_started;
	pthread_mutex_t mu;
	pthread_cond_t cond; /* a connection ended */
	struct bolt_conn **conns;
	int n_conns, conns_max;
	uint64_t next_id;
	_Atomic uint64_t epoch;
	atomic_int stopping;
	struct node_tls_ctx *tls; /* bolt_tls not off: the server context */
	int tls_mode;
	uint64_t tls_warn_ms; /* last refused handshake logged (mu) */
};

#define BOLT_HANDSHAKE_MS 10000 /* TLS, and telling TLS from plaintext */
#define BOLT_TLS_WARN_MS  1000  /* one refused handshake line per */

uint64_t bolt_server_epoch(const struct bolt_conn *c)
{
	return atomic_load(&c->server->epoch);
}

/* ---- sending -------------------------------------------------------------
 */

/* Waits until TLS can go on (what it wants), at most until deadline_ms:
 * 0, or LORA_ETIMEOUT / LORA_ECLOSED. */
static int tls_wait(struct bolt_conn *c, uint64_t deadline_ms)
{
	if (errno != EAGAIN)
		return LORA_ECLOSED;
	uint64_t now = lora_now_ms();
	if (now >= deadline_ms)
		return LORA_ETIMEOUT;
	struct pollfd p = {.fd = c->fd, .events = node_tls_wants(c->tls)};
	return poll(&p, 1, (int)(deadline_ms - now)) < 0 && errno != EINTR
	           ? LORA_ECLOSED
	           : 0;
}

static int flush_tls(struct bolt_conn *c)
{
	uint64_t until = lora_now_ms() + BOLT_SEND_TIMEOUT_MS;
	size_t off = 0;
	while (off < c->out.len || node_tls_flush(c->tls) != 0) {
		ssize_t k = off < c->out.len
		                ? node_tls_send(c->tls, c->out.data + off,
		                                c->out.len - off)
		                : -1;
		if (k > 0)
			off += (size_t)k;
		else if (tls_wait(c, until) != 0)
			return LORA_ECLOSED;
	}
	lora_buf_reset(&c->out);
	return 0;
}

int bolt_flush(struct bolt_conn *c)
{
	if (c->tls)
		return flush_tls(c);
	size_t off = 0;
	while (off < c->out.len) {
		ssize_t k = send(c->fd, c->out.data + off, c->out.len - off,
		                 MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return LORA_ECLOSED;
		off += (size_t)k;
	}
	lora_buf_reset(&c->out);
	return 0;
}

int bolt_send_msg(struct bolt_conn *c)
{
	size_t off = 0;
	int rc = 0;
	while (off < c->msg.len && rc == 0) {
		size_t k = c->msg.len - off;
		if (k > 0xFFFF)
			k = 0xFFFF;
		uint8_t h[2] = {(uint8_t)(k >> 8), (uint8_t)k};
		rc = lora_buf_append(&c->out, h, 2);
		if (rc == 0)
			rc = lora_buf_append(&c->out, c->msg.data + off, k);
		off += k;
	}
	if (rc == 0)
		rc = lora_buf_append(&c->out, "\0\0", 2);
	lora_buf_reset(&c->msg);
	if (rc == 0 && c->out.len >= BOLT_FLUSH_BYTES)
		rc = bolt_flush(c);
	return rc;
}

/* ---- reading ---------------------------------------------------------------
 */

/* Reads exactly len bytes. While results are open, wakes every
 * BOLT_POLL_MS to drop them when idle too long or when the server asks.
 * LORA_ECLOSED when the peer went away, LORA_ETIMEOUT past deadline_ms
 * (0: none). */
static int read_full(struct bolt_conn *c, uint8_t *p, size_t len,
                     uint64_t deadline_ms)
{
	size_t got = 0;
	while (got < len) {
		int wait = -1;
		if (c->n_results || c->tx_view || c->wtx || c->relay_tx) {
			wait = BOLT_POLL_MS;
			uint64_t now = lora_now_ms();
			bolt_session_expire(c, now);
			if (bolt_server_epoch(c) != c->results_epoch)
				bolt_session_drop(
				    c, "closed: a snapshot replaced this "
				       "node's state; run it again");
			else if (now - c->last_use_ms >
			         c->n->cfg.cursor_idle_ms)
				bolt_session_drop(
				    c, "closed after cursor_idle_ms without "
				       "a request");
		}
		if (deadline_ms) {
			uint64_t now = lora_now_ms();
			if (now >= deadline_ms)
				return LORA_ETIMEOUT;
			if (wait < 0 || deadline_ms - now < (uint64_t)wait)
				wait = (int)(deadline_ms - now);
		}
		if (c->tls &&
		    node_tls_pending(c->tls)) { /* not on the socket */
			ssize_t k = node_tls_recv(c->tls, p + got, len - got);
			if (k > 0) {
				got += (size_t)k;
				continue;
			}
			if (k == 0 || errno != EAGAIN)
				return LORA_ECLOSED;
		}
		struct pollfd pfd = {.fd = c->fd,
		                     .events = c->tls ? node_tls_wants(c->tls)
		                                      : POLLIN};
		int pr = poll(&pfd, 1, wait);
		if (pr < 0 && errno != EINTR)
			return LORA_ECLOSED;
		if (pr <= 0)
			continue;
		ssize_t k = c->tls ? node_tls_recv(c->tls, p + got, len - got)
		                   : recv(c->fd, p + got, len - got, 0);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			return LORA_ECLOSED;
		got += (size_t)k;
	}
	return 0;
}

/* One request into *msg (reset first). Zero-size chunks before a
 * message are keep-alives (NOOP). LORA_ELIMIT past the limits. */
static int read_message(struct bolt_conn *c, struct lora_buf *msg)
{
	lora_buf_reset(msg);
	uint32_t chunks = 0;
	uint8_t chunk[0xFFFF];
	/* before a login: a small request, soon, or the connection goes (a
	 * connection slot and 16 MiB decoded cost nothing to an attacker);
	 * after it, an idle connection goes after BOLT_IDLE_MS */
	int login = c->state == BOLT_S_CONNECTED || c->state == BOLT_S_AUTH;
	size_t max =
	    login ? BOLT_LOGIN_MESSAGE_BYTES_MAX : BOLT_MESSAGE_BYTES_MAX;
	uint64_t deadline =
	    lora_now_ms() + (login ? BOLT_LOGIN_MS : BOLT_IDLE_MS);
	for (;;) {
		uint8_t h[2];
		if (c->out.len && bolt_flush(c))
			return LORA_ECLOSED;
		int rc = read_full(c, h, 2,
		                   c->n_results || c->tx_view || c->wtx ||
		                           c->relay_tx
		                       ? 0
		                       : deadline);
		if (rc)
			return rc;
		size_t k = ((size_t)h[0] << 8) | h[1];
		if (k == 0 && msg->len == 0)
			continue;
		if (k == 0)
			return 0;
		if (++chunks > BOLT_CHUNKS_MAX || msg->len + k > max)
			return LORA_ELIMIT;
		if ((rc = read_full(c, chunk, k, deadline)) != 0)
			return rc;
		if (lora_buf_append(msg, chunk, k))
			return LORA_ENOMEM;
	}
}

/* ---- handshake -------------------------------------------------------------
 */

static int version_supported(int major, int minor)
{
	return (major == 5 && minor >= 0 && minor <= 4) ||
	       (major == 4 && minor == 4);
}

/*
 * The version for four proposals of 4 bytes each: {0, range, minor,
 * major}, meaning major.minor down to major.(minor - range). The first
 * proposal with a version we speak wins, with its highest such minor.
 * 0: none (a manifest-style proposal, 0x000001FF, is passed over).
 */
int bolt_handshake_pick(const uint8_t *v)
{
	for (int i = 0; i < 4; i++) {
		const uint8_t *p = v + 4 * i;
		int range = p[1], minor = p[2], major = p[3];
		for (int m = minor; m >= 0 && m >= minor - range; m--)
			if (version_supported(major, m))
				return BOLT_V(major, m);
	}
	return 0;
}

static int handshake(struct bolt_conn *c)
{
	uint8_t h[20];
	int rc = read_full(c, h, sizeof h, lora_now_ms() + BOLT_HANDSHAKE_MS);
	if (rc)
		return rc;
	static const uint8_t magic[4] = {0x60, 0x60, 0xB0, 0x17};
	if (memcmp(h, magic, 4) != 0)
		return LORA_ECORRUPT;
	int v = bolt_handshake_pick(h + 4);
	uint8_t ans[4] = {0, 0, (uint8_t)(v & 0xFF), (uint8_t)(v >> 8)};
	if (lora_buf_append(&c->out, ans, 4) || bolt_flush(c))
		return LORA_ECLOSED;
	if (v == 0)
		return LORA_EINVAL;
	c->version = v;
	c->enc.element_ids = v >= BOLT_V(5, 0);
	c->enc.utc_datetime = v >= BOLT_V(5, 0);
	return 0;
}

/* ---- connections -----------------------------------------------------------
 */

/* A refused TLS handshake, logged at most once per BOLT_TLS_WARN_MS. */
static void tls_refused(struct bolt_conn *c, int rc)
{
	struct node_bolt *b = c->server;
	uint64_t now = lora_now_ms();
	pthread_mutex_lock(&b->mu);
	int log = now - b->tls_warn_ms >= BOLT_TLS_WARN_MS;
	if (log)
		b->tls_warn_ms = now;
	pthread_mutex_unlock(&b->mu);
	char why[128] = "timed out";
	if (rc != LORA_ETIMEOUT)
		node_tls_error(c->tls, why, sizeof why);
	if (log)
		LOG_WARN("bolt: TLS handshake on connection %llu refused: %s "
		         "(at most one line a second)",
		         (unsigned long long)c->id, why);
}

/* TLS for c when bolt_tls asks for it (optional: when the first byte is
 * a TLS handshake record): 0, or an error (c is closed then). */
static int tls_start(struct bolt_conn *c)
{
	struct node_bolt *b = c->server;
	uint64_t until = lora_now_ms() + BOLT_HANDSHAKE_MS;
	if (b->tls_mode == NODE_TLS_OFF)
		return 0;
	if (b->tls_mode == NODE_TLS_OPTIONAL) {
		unsigned char first;
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		if (poll(&p, 1, BOLT_HANDSHAKE_MS) <= 0 ||
		    recv(c->fd, &first, 1, MSG_PEEK) != 1)
			return LORA_ECLOSED;
		if (first != NODE_TLS_RECORD_HANDSHAKE)
			return 0; /* plaintext */
	}
	if (node_tls_conn_new(b->tls, c->fd, NULL, &c->tls) != 0)
		return LORA_ENOMEM;
	while (node_tls_handshake(c->tls) != 0) {
		int rc = tls_wait(c, until);
		if (rc) {
			tls_refused(c, rc);
			return rc;
		}
	}
	return 0;
}

static void conn_serve(struct bolt_conn *c)
{
	struct lora_buf in = {0};
	int rc = tls_start(c);
	if (rc)
		return;
	rc = handshake(c);
	if (rc == 0)
		LOG_DEBUG("bolt: connection %llu speaks %d.%d",
		          (unsigned long long)c->id, c->version >> 8,
		          c->version & 0xFF);
	while (rc == 0 && !atomic_load(&c->server->stopping)) {
		rc = read_message(c, &in);
		if (rc == LORA_ELIMIT) {
			/* the request was not read to its end: answer and
			 * close, the stream cannot be resynchronised */
			char m[128];
			snprintf(m, sizeof m,
			         "request over %u bytes or %u chunks",
			         BOLT_MESSAGE_BYTES_MAX, BOLT_CHUNKS_MAX);
			LOG_WARN("bolt: connection %llu: %s",
			         (unsigned long long)c->id, m);
			break;
		}
		if (rc)
			break;
		c->last_use_ms = lora_now_ms();
		rc = bolt_session_handle(c, (const uint8_t *)in.data, in.len);
	}
	bolt_flush(c);
	if (rc == LORA_ECLOSED && !atomic_load(&c->server->stopping))
		bolt_session_client_left(c);
	bolt_session_drop(c, NULL);
	bolt_relay_logout(c); /* the leader rolls back what was relayed */
	lora_buf_free(&in);
}

static void *conn_main(void *arg)
{
	struct bolt_conn *c = arg;
	struct node_bolt *b = c->server;
	pthread_setname_np(pthread_self(), "lora-bolt");
	conn_serve(c);
	pthread_mutex_lock(&b->mu);
	for (int i = 0; i < b->n_conns; i++)
		if (b->conns[i] == c)
			b->conns[i] = b->conns[--b->n_conns];
	if (c->tls)
		node_tls_close_notify(c->tls);
	node_tls_conn_free(c->tls);
	close(c->fd);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->mu);
	lora_buf_free(&c->out);
	lora_buf_free(&c->msg);
	lora_free(c);
	return NULL;
}

/* Registers and starts a connection; closes fd when it cannot. */
static void conn_start(struct node_bolt *b, int fd)
{
	struct bolt_conn *c = lora_calloc(1, sizeof *c);
	pthread_mutex_lock(&b->mu);
	int room = b->n_conns < b->conns_max && !atomic_load(&b->stopping);
	if (c == NULL || !room) {
		pthread_mutex_unlock(&b->mu);
		if (c && !room)
			LOG_WARN("bolt: connection refused: %d open "
			         "(bolt_connections_max)",
			         b->n_conns);
		lora_free(c);
		close(fd);
		return;
	}
	c->n = b->n;
	c->server = b;
	c->fd = fd;
	c->id = ++b->next_id;
	c->last_use_ms = lora_now_ms();
	b->conns[b->n_conns++] = c;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int err = pthread_create(&t, &at, conn_main, c);
	pthread_attr_destroy(&at);
	if (err) {
		b->conns[--b->n_conns] = NULL;
		pthread_mutex_unlock(&b->mu);
		close(fd);
		lora_free(c);
		return;
	}
	pthread_mutex_unlock(&b->mu);
}

static void *accept_main(void *arg)
{
	struct node_bolt *b = arg;
	pthread_setname_np(pthread_self(), "lora-bolt-acc");
	while (!atomic_load(&b->stopping)) {
		int fd = accept(b->lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EMFILE || errno == ENFILE)
				continue;
			break;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct timeval tv = {.tv_sec = BOLT_SEND_TIMEOUT_MS / 1000};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		conn_start(b, fd);
	}
	return NULL;
}

/* ---- the server
 * --------------------------------------------------------------
 */

static int listen_on(const char *addr, int *out, char *errmsg)
{
	char host[NODE_ADDR_BYTES_MAX];
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || colon == addr ||
	    (size_t)(colon - addr) >= sizeof host)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "bolt_addr %s: expected host:port", addr);
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE},
	                *ai = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || ai == NULL)
		return lora_errf(LORA_ECONFIG, errmsg,
		                 "bolt_addr %s: cannot resolve", addr);
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	int err = fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	          listen(fd, 128) != 0;
	freeaddrinfo(ai);
	if (err) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return lora_errf(LORA_EIO, errmsg, "listen bolt %s: %s", addr,
		                 strerror(e));
	}
	*out = fd;
	return 0;
}

int node_bolt_start(struct lnode *n, char *errmsg)
{
	char addr[NODE_ADDR_BYTES_MAX];
	node_config_bolt_addr(&n->cfg, addr, sizeof addr);
	if (addr[0] == '\0')
		return 0; /* bolt_addr = off */
	struct node_bolt *b = lora_calloc(1, sizeof *b);
	if (b == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	b->n = n;
	b->conns_max = n->cfg.bolt_connections_max
	                   ? (int)n->cfg.bolt_connections_max
	                   : BOLT_CONNECTIONS_DEFAULT;
	b->conns = lora_calloc((size_t)b->conns_max + 1, sizeof *b->conns);
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cond, NULL);
	n->bolt = b;
	b->tls_mode = n->cfg.bolt_tls.mode;
	int rc = b->conns ? 0 : lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	if (rc == 0 && b->tls_mode != NODE_TLS_OFF)
		rc = node_tls_ctx_new(&n->cfg.bolt_tls, 1, &b->tls, errmsg);
	if (rc == 0)
		rc = listen_on(addr, &b->lfd, errmsg);
	if (rc) {
		b->lfd = -1;
		return rc;
	}
	rc = node_thread_start(&b->accept_thread, accept_main, b, "bolt accept",
	                       errmsg);
	b->accept_started = rc == 0;
	return rc;
}

void node_bolt_stop(struct lnode *n)
{
	struct node_bolt *b = n->bolt;
	if (b == NULL)
		return;
	atomic_store(&b->stopping, 1);
	if (b->lfd >= 0)
		shutdown(b->lfd, SHUT_RDWR);
	if (b->accept_started)
		pthread_join(b->accept_thread, NULL);
	if (b->lfd >= 0)
		close(b->lfd);
	pthread_mutex_lock(&b->mu);
	for (int i = 0; i < b->n_conns; i++)
		shutdown(b->conns[i]->fd, SHUT_RDWR);
	while (b->n_conns > 0)
		pthread_cond_wait(&b->cond, &b->mu);
	pthread_mutex_unlock(&b->mu);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cond);
	node_tls_ctx_free(b->tls);
	lora_free(b->conns);
	lora_free(b);
	n->bolt = NULL;
}

void node_bolt_close_cursors(struct lnode *n)
{
	if (n->bolt)
		atomic_fetch_add(&n->bolt->epoch, 1);
}
