/*
 * http.c - the HTTP/1.1 server (http.h): sockets, framing and threads, for
 * a handler that knows the routes (the node's: http_node.c).
 *
 * One epoll thread accepts connections, reads and parses requests and
 * gives each complete one to the handler's io callback, which answers it
 * at once, hands it to another thread, or sends it to one of the worker
 * threads (ops.work: a write waits for commit there, a read for its
 * bookmark), which writes the answer straight to the socket. A worker
 * that answered waits a moment for the connection's next request and
 * gives that to ops.io itself (conn_linger). A connection
 * belongs to exactly one thread at a time: EPOLLONESHOT disarms it while a
 * worker has it, and the worker re-arms it (or closes it) when the answer is
 * out. Keep-alive is the default for HTTP/1.1; pipelined requests are answered
 * in order.
 *
 * A worker may also stream an answer (node_http_stream_*: chunked, as a
 * read's rows are pulled): it owns the connection until the last chunk,
 * waits for a slow reader with a bounded amount in flight, and learns
 * that the client left from a failed send or a reset socket.
 *
 * Every error has one shape, {"error":{"code","message","category"}}, with
 * the status of lora_err_http_status(). The server's own: malformed
 * requests 400, bodies above the configured limit (NODE_HTTP_BODY_BYTES_MAX
 * at most) 413 (the connection is closed: the body is not read), a full
 * worker queue 503, a request its handler left unanswered 500. Only
 * Content-Length bodies are accepted (chunked uploads get 411). Unknown
 * endpoints (404) and wrong methods (405) are the handler's.
 *
 * Limits on connections: conns_max open in all (more are closed as they
 * come); a connection that has not yet sent a complete request (in its
 * TLS handshake, or silent) is pending, and with pending_until_known (the
 * node's server) one that has sent only requests nobody vouched for
 * (answered 401, or open endpoints) still is, until the handler calls
 * node_http_known; one source address (an IPv6 /64) may hold at most
 * pending_per_source of them, so a flood of silent or unauthenticated
 * keep-alive connections from one host cannot take every place (a new
 * one shuts down the oldest of them, so that source's real clients still
 * get in; a new one refused as conns_max are open shuts down none);
 * TLS handshakes end
 * within NODE_HTTP_HANDSHAKE_MS, at most NODE_HTTP_HANDSHAKES_MAX pending.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "http.h"
#include "http_parse.h"
#include "log.h"
#include "lora.h"
#include "source.h"
#include "thread.h"
#include "tls.h"
#include "transport.h"

#define NODE_HTTP_READ_BYTES      (16u << 10) /* one recv */
#define NODE_HTTP_IDLE_MS         120000      /* keep-alive connection idle */
#define NODE_HTTP_REQUEST_MS      30000 /* a started request must arrive */
#define NODE_HTTP_SLICE_MS        100 /* a streamed answer's waits: stop checks */
#define NODE_HTTP_STOP_GRACE_MS   1000 /* ... and their last bytes at a stop */
#define NODE_HTTP_EVENTS_MAX      64
#define NODE_HTTP_BACKLOG         512
#define NODE_HTTP_EMFILE_PAUSE_MS 10
/* TLS (http_tls): a handshake (in optional mode: the first byte too) must
 * end within this, and at most this many are pending at once (each costs
 * the epoll thread a signature); at the cap a new connection closes the
 * oldest pending one, so silent sockets cannot lock clients out */
#define NODE_HTTP_HANDSHAKE_MS   3000
#define NODE_HTTP_HANDSHAKES_MAX 256
#define NODE_HTTP_TLS_WARN_MS    1000  /* one handshake failure line per */
#define NODE_HTTP_FULL_WARN_MS   10000 /* one "full" line per */

struct node_http_ex {
	int kind; /* HTTP_KIND_CONN (epoll data of a connection) */
	struct node_http *hs;
	int fd;
	struct node_tls_conn *tls; /* NULL: plaintext (or not known yet) */
	int tls_state;             /* HTTP_TLS_* */
	int evicted;  /* pending, shut down for a newer connection (mu) */
	int tls_held; /* TLS holds answer bytes a worker must flush */
	uint64_t accept_ms;
	struct node_source src; /* the client's address (set at accept) */
	atomic_int served;      /* not pending: a complete request came (or,
	                         * pending_until_known, node_http_known) */
	struct node_http_ex *prev, *next; /* all connections (hs->mu) */
	struct node_http_ex *qnext;       /* worker queue (hs->mu) */
	char *buf;                        /* bytes read, not yet consumed */
	size_t len, cap;
	int busy;          /* a worker has it (hs->mu) */
	int draining;      /* answered an error: discard input, then close */
	int eof;           /* the client stopped sending (half-close) */
	uint64_t last_ms;  /* last activity (hs->mu) */
	uint64_t start_ms; /* first byte of a partial request; 0: none */
	int continue_sent; /* "100 Continue" sent for this request */
	int fin_probed;    /* node_http_client_gone sent its probe */
	uint64_t ready_ms; /* the request was complete (its parse) */
	/* the request being read: its head is parsed once need is set */
	size_t need;       /* head + body bytes; 0: head not complete yet */
	size_t head_bytes; /* request line + headers + blank line */
	size_t uri_off;
	int expect; /* Expect: 100-continue */
	/* the parsed request (pointers into buf, NUL-terminated) */
	size_t req_bytes; /* head + body */
	const char *method, *uri;
	const char *body;
	size_t body_len;
	int keep_alive;
	int http10;    /* HTTP/1.0: keep-alive only when asked, and said */
	int forwarded; /* X-Lora-Forwarded: hops from other nodes (0: none) */
	uint64_t time_ms; /* X-Lora-Time-Ms (0: none) */
	/* Authorization and X-Lora-Identity values (offsets into buf while
	 * the request is read; 0: absent), pointers once parsed */
	size_t authz_off, ident_off;
	const char *authz, *ident;
	const char *extra_head; /* node_http_extra_head */
	void *ctx;              /* the handler's (ops.ctx_bytes), after x */
	/* the answer */
	int replied, broken;
	int async; /* answered from another thread (node_http_async) */
	char *out; /* unsent rest of an async answer (lora_malloc) */
	size_t out_len;
	int resume; /* queued again: RESUME_FLUSH or RESUME_SERVE */
	uint64_t stream_deadline_ms; /* a streamed answer: its send waits */
	void *stash; /* left by the route's fast part for its worker */
	void (*stash_free)(void *);
	/* a request inside another (node_http_child_new; never in epoll):
	 * the answer is kept here, and done runs where
	 * node_http_async_done would */
	struct node_http_child *child;
	_Alignas(max_align_t) unsigned char memo[NODE_HTTP_MEMO_BYTES];
};

struct node_http_child {
	void (*done)(struct node_http_ex *c, void *arg);
	void *arg;
	int status; /* 0: not answered, or node_http_child_untaken */
	char *body; /* lora_malloc */
	size_t body_len;
	char bookmark[32];
};

enum { RESUME_NONE, RESUME_FLUSH, RESUME_SERVE };

enum { HTTP_KIND_CONN = 1, HTTP_KIND_WATCH = 2 };

/* A connection's TLS: plaintext, deciding by the first byte (optional),
 * in the handshake, or ready (TLS or plaintext by x->tls). */
enum { HTTP_TLS_READY = 0, HTTP_TLS_SNIFF, HTTP_TLS_HANDSHAKE };

struct node_http {
	struct node_http_ops ops;
	int workers;
	size_t queue_max, conns_max, body_bytes_max, pending_per_source;
	int pending_until_known;
	int lfd, efd, wakefd;
	pthread_t io_thread;
	int io_started;
	pthread_t threads[NODE_HTTP_WORKERS_MAX];
	int n_threads;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct node_http_ex *conns; /* all connections */
	size_t n_conns;
	size_t n_evicted; /* of them, shut down and not yet closed (mu) */
	struct node_http_ex *head, *tail; /* requests for the workers */
	size_t qlen;
	/* workers waiting on a connection (conn_linger): at most
	 * linger_max at once, for linger_us; enqueue writes linger_fd once
	 * (linger_kicked) when a request would wait for a worker (qlen >
	 * idle) while any waits, ending every wait, and the last to stop
	 * waiting drains it (all under mu) */
	int linger_max, linger_us, lingering, linger_kicked;
	int idle; /* workers waiting for a request (mu) */
	int linger_fd;
	void (*linger_hook)(void *); /* cfg's (tests) */
	void *linger_hook_arg;
	atomic_uint_fast64_t lingered; /* requests they read */
	/* requests a worker read that only the I/O thread may serve
	 * (NODE_HTTP_TO_IO), for it to take after wakefd (mu) */
	struct node_http_ex *to_io, *to_io_tail;
	size_t n_to_io;
	struct node_tls_ctx *tls; /* http_tls not off: the server context */
	int tls_mode;
	size_t handshakes;      /* connections before HTTP_TLS_READY (mu) */
	uint64_t tls_warn_ms;   /* last handshake failure logged (epoll) */
	uint64_t full_warn_ms;  /* last "connections open" line (epoll) */
	uint64_t evict_warn_ms; /* last "handshakes pending" line (epoll) */
	size_t evicted_since;   /* handshakes evicted since that line (epoll) */
	struct node_source_log source_log; /* per-source refusals (epoll) */
	atomic_int stopping; /* set under mu (workers wait on cond) */
};

/* ---- answers
 * ------------------------------------------------------------------ */

static const char *reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 307:
		return "Temporary Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 422:
		return "Unprocessable Entity";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 507:
		return "Insufficient Storage";
	default:
		return "Status";
	}
}

/* sendmsg of iov[0..cnt) on x (non-blocking), in TLS when x has it
 * (records gathered by node_tls_sendv); dontwait adds MSG_DONTWAIT. */
static ssize_t conn_sendv(struct node_http_ex *x, struct iovec *iov, int cnt,
                          int dontwait)
{
	if (x->tls == NULL) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
		return sendmsg(x->fd, &mh,
		               MSG_NOSIGNAL | (dontwait ? MSG_DONTWAIT : 0));
	}
	return node_tls_sendv(x->tls, iov, cnt);
}

static ssize_t conn_recv(struct node_http_ex *x, void *buf, size_t len)
{
	return x->tls ? node_tls_recv(x->tls, buf, len)
	              : recv(x->fd, buf, len, 0);
}

/* Answer bytes not yet on the socket: in x->out, or held by TLS. */
static int out_pending(const struct node_http_ex *x)
{
	return x->out_len > 0 || x->tls_held;
}

/* Drops the first `sent` bytes of iov[0..*cnt); returns the new start. */
static struct iovec *iov_advance(struct iovec *iov, int *cnt, size_t sent)
{
	while (*cnt > 0 && sent >= iov->iov_len) {
		sent -= iov->iov_len;
		iov++;
		(*cnt)--;
	}
	if (*cnt > 0) {
		iov->iov_base = (char *)iov->iov_base + sent;
		iov->iov_len -= sent;
	}
	return iov;
}

/*
 * Writes all of iov to fd (non-blocking), waiting for room while the
 * client does not read: at most NODE_HTTP_SEND_MS without progress, and
 * never past deadline_ms (0: none). With `stop` set, the wait also ends
 * NODE_HTTP_STOP_GRACE_MS after the server or the node began to stop
 * (checked every NODE_HTTP_SLICE_MS; the grace lets a streamed answer's
 * closing error leave). 0, or LORA_ECLOSED (the client reset or closed
 * the connection), LORA_ETIMEOUT (too slow) or LORA_EUNAVAILABLE
 * (stopping).
 */
static int send_wait(struct node_http_ex *x, struct iovec *iov, int cnt,
                     uint64_t deadline_ms, int stop)
{
	struct node_http *hs = x->hs;
	uint64_t idle_until = lora_now_ms() + NODE_HTTP_SEND_MS;
	uint64_t stop_until = 0;
	while (cnt > 0 || (x->tls && node_tls_flush(x->tls) != 0)) {
		if (cnt == 0 && errno != EAGAIN)
			return LORA_ECLOSED;
		ssize_t w = cnt ? conn_sendv(x, iov, cnt, 0) : -1;
		if (w < 0 && errno == EINTR)
			continue;
		if (w >= 0) {
			iov = iov_advance(iov, &cnt, (size_t)w);
			idle_until = lora_now_ms() + NODE_HTTP_SEND_MS;
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return LORA_ECLOSED; /* EPIPE, ECONNRESET, ... */
		uint64_t now = lora_now_ms();
		uint64_t until = idle_until;
		if (deadline_ms && deadline_ms < until)
			until = deadline_ms;
		if (now >= until)
			return LORA_ETIMEOUT;
		/* a streamed read holds the store: a checkpoint install
		 * waiting for it must not wait for a slow reader */
		if (stop && stop_until == 0 &&
		    (atomic_load(&hs->stopping) ||
		     (hs->ops.stopping && hs->ops.stopping(hs->ops.arg))))
			stop_until = now + NODE_HTTP_STOP_GRACE_MS;
		if (stop_until && now >= stop_until)
			return LORA_EUNAVAILABLE;
		uint64_t wait = until - now;
		if (stop && wait > NODE_HTTP_SLICE_MS)
			wait = NODE_HTTP_SLICE_MS;
		struct pollfd p = {.fd = x->fd,
		                   .events = x->tls ? node_tls_wants(x->tls)
		                                    : POLLOUT};
		int pr = poll(&p, 1, (int)wait);
		if (pr > 0 && (p.revents & (POLLERR | POLLHUP)))
			return LORA_ECLOSED;
	}
	return 0;
}

/* A whole answer: it must be out within NODE_HTTP_SEND_MS. */
static int send_all(struct node_http_ex *x, struct iovec *iov, int cnt)
{
	return send_wait(x, iov, cnt, lora_now_ms() + NODE_HTTP_SEND_MS, 0) == 0
	           ? 0
	           : -1;
}

/* Off the workers, an answer never waits for the client: what the socket
 * does not take at once is kept in x->out for a worker to send. */
static void send_or_keep(struct node_http_ex *x, struct iovec *iov, int cnt)
{
	size_t total = 0, sent = 0;
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	ssize_t w;
	do
		w = conn_sendv(x, iov, cnt, 1);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		x->broken = 1;
		return;
	}
	sent = w > 0 ? (size_t)w : 0;
	if (x->tls && node_tls_flush(x->tls) != 0)
		x->tls_held = 1; /* a worker flushes it (RESUME_FLUSH) */
	if (sent == total)
		return;
	x->out = lora_malloc(total - sent);
	if (x->out == NULL) {
		x->broken = 1;
		return;
	}
	for (int i = 0; i < cnt; i++) {
		size_t skip = sent < iov[i].iov_len ? sent : iov[i].iov_len;
		memcpy(x->out + x->out_len, (char *)iov[i].iov_base + skip,
		       iov[i].iov_len - skip);
		x->out_len += iov[i].iov_len - skip;
		sent -= skip;
	}
}

/* The status line and headers of an answer into head (size bytes);
 * `framing` is its Content-Length or Transfer-Encoding line. Its length,
 * or -1 when it does not fit. */
static int format_head(const struct node_http_ex *x, char *head, size_t size,
                       int status, const char *ctype, const char *framing,
                       const char *bookmark, const char *location)
{
	int hl = snprintf(head, size,
	                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	                  "%s%s%s%s%s%s%s%s%s\r\n",
	                  status, reason(status), ctype, framing,
	                  x->extra_head ? x->extra_head : "",
	                  bookmark && bookmark[0] ? "X-Lora-Bookmark: " : "",
	                  bookmark && bookmark[0] ? bookmark : "",
	                  bookmark && bookmark[0] ? "\r\n" : "",
	                  location ? "Location: " : "",
	                  location ? location : "", location ? "\r\n" : "",
	                  !x->keep_alive ? "Connection: close\r\n"
	                  : x->http10    ? "Connection: keep-alive\r\n"
	                                 : "");
	return hl < 0 || (size_t)hl >= size ? -1 : hl;
}

/* A child's answer, kept for its batch (only the status, the body and
 * the bookmark travel back: the batch route answers JSON only). */
static void child_keep(struct node_http_ex *x, int status, const char *body,
                       size_t len, const char *bookmark)
{
	struct node_http_child *c = x->child;
	c->body = lora_malloc(len ? len : 1);
	if (c->body == NULL) { /* node_http_child_answer: an error */
		c->status = 500;
		return;
	}
	memcpy(c->body, body, len);
	c->body_len = len;
	c->status = status;
	snprintf(c->bookmark, sizeof c->bookmark, "%s",
	         bookmark ? bookmark : "");
}

void node_http_reply(struct node_http_ex *x, int status, const char *ctype,
                     const char *body, size_t len, const char *bookmark,
                     const char *location)
{
	LORA_ASSERT(!x->replied);
	x->replied = 1;
	if (x->child) {
		child_keep(x, status, body, len, bookmark);
		return;
	}
	char head[1024], framing[48];
	snprintf(framing, sizeof framing, "Content-Length: %zu\r\n", len);
	int hl = format_head(x, head, sizeof head, status, ctype, framing,
	                     bookmark, location);
	if (hl < 0) {
		x->broken = 1;
		return;
	}
	struct iovec iov[2] = {{head, (size_t)hl}, {(void *)body, len}};
	if (x->async)
		send_or_keep(x, iov, len ? 2 : 1);
	else if (send_all(x, iov, len ? 2 : 1) != 0)
		x->broken = 1;
}

/* ---- streamed answers
 * ------------------------------------------------------------ */

/* One chunk (or, for HTTP/1.0, the bytes as they are) after `pre` (the
 * head, or NULL), and the last-chunk marker when `last`. */
static int stream_send(struct node_http_ex *x, const char *pre, size_t pre_len,
                       const char *data, size_t len, int last)
{
	static const char crlf[] = "\r\n", end[] = "0\r\n\r\n";
	char size_line[24];
	struct iovec iov[5];
	int cnt = 0;
	if (pre_len)
		iov[cnt++] = (struct iovec){(void *)pre, pre_len};
	if (x->http10) {
		if (len)
			iov[cnt++] = (struct iovec){(void *)data, len};
	} else {
		if (len) {
			int sl = snprintf(size_line, sizeof size_line,
			                  "%zx\r\n", len);
			iov[cnt++] = (struct iovec){size_line, (size_t)sl};
			iov[cnt++] = (struct iovec){(void *)data, len};
			iov[cnt++] = (struct iovec){(void *)crlf, 2};
		}
		if (last)
			iov[cnt++] =
			    (struct iovec){(void *)end, sizeof end - 1};
	}
	int rc = cnt ? send_wait(x, iov, cnt, x->stream_deadline_ms, 1) : 0;
	if (rc)
		x->broken = 1;
	return rc;
}

int node_http_stream_start(struct node_http_ex *x, int status,
                           const char *ctype, const char *bookmark,
                           uint64_t deadline_ms, const char *data, size_t len)
{
	LORA_ASSERT(!x->replied && !x->async);
	x->replied = 1;
	x->stream_deadline_ms = deadline_ms;
	if (x->http10)
		x->keep_alive = 0; /* no chunks: the body ends at the close */
	char head[1024];
	int hl = format_head(x, head, sizeof head, status, ctype,
	                     x->http10 ? "" : "Transfer-Encoding: chunked\r\n",
	                     bookmark, NULL);
	if (hl < 0) {
		x->broken = 1;
		return LORA_EINTERNAL;
	}
	return stream_send(x, head, (size_t)hl, data, len, 0);
}

int node_http_stream_write(struct node_http_ex *x, const char *data, size_t len)
{
	LORA_ASSERT(x->replied);
	return x->broken ? LORA_ECLOSED : stream_send(x, NULL, 0, data, len, 0);
}

int node_http_stream_end(struct node_http_ex *x, const char *data, size_t len)
{
	LORA_ASSERT(x->replied);
	return x->broken ? LORA_ECLOSED : stream_send(x, NULL, 0, data, len, 1);
}

void node_http_abort(struct node_http_ex *x)
{
	x->broken = 1;
}

int node_http_gone(void *x)
{
	return node_http_client_gone(x);
}

int node_http_client_gone(struct node_http_ex *x)
{
	if (x->broken)
		return 1;
	struct pollfd p = {.fd = x->fd, .events = POLLRDHUP | POLLOUT};
	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLERR | POLLHUP))
		return 1;
	/* A FIN alone is not enough: the client may have half-closed after
	 * sending its request and still read the answer. When the answer
	 * has not begun NODE_HTTP_PROBE_MS after the request came, an
	 * interim "100 Continue" tells the two apart: an HTTP/1.1 client
	 * must take any number of 1xx answers before the final one (RFC
	 * 9110, 15.2), and a client that closed its socket answers the bytes
	 * with a reset, which the next check sees (POLLERR). Once the answer
	 * began, its own bytes do that. Sent whole or not at all: only with
	 * room on the socket and nothing of an earlier answer waiting. */
	if ((p.revents & POLLRDHUP) && (p.revents & POLLOUT) && !x->replied &&
	    !x->http10 && !x->fin_probed && !out_pending(x) &&
	    lora_now_ms() - x->ready_ms >= NODE_HTTP_PROBE_MS) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		struct iovec iov = {(void *)cont, sizeof cont - 1};
		x->fin_probed = 1;
		if (send_all(x, &iov, 1) != 0) {
			x->broken = 1;
			return 1;
		}
	}
	return 0;
}

void node_http_reply_json(struct node_http_ex *x, int status, json_t *j,
                          const char *bookmark, const char *location)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (s == NULL) {
		static const char oom[] = "{\"error\":{\"code\":\"LORA_"
		                          "INTERNAL\",\"message\":\"out of "
		                          "memory\",\"category\":\"server\"}}";
		node_http_reply(x, 500, "application/json", oom, sizeof oom - 1,
		                NULL, NULL);
	} else {
		node_http_reply(x, status, "application/json", s, strlen(s),
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

void node_http_reply_error(struct node_http_ex *x, int code, const char *msg)
{
	node_http_reply_json(x, lora_err_http_status(code),
	                     node_http_error_json(code, msg, 0, 0), NULL, NULL);
}

/* An error answer with an explicit status (protocol-level errors). */
static void reply_status(struct node_http_ex *x, int status, int code,
                         const char *msg)
{
	node_http_reply_json(x, status, node_http_error_json(code, msg, 0, 0),
	                     NULL, NULL);
}

void node_http_body(const struct node_http_ex *x, const char **data,
                    size_t *len)
{
	*data = x->body;
	*len = x->body_len;
}

const char *node_http_authz(const struct node_http_ex *x)
{
	return x->authz;
}

const char *node_http_ident(const struct node_http_ex *x)
{
	return x->ident;
}

void *node_http_conn_memo(struct node_http_ex *x)
{
	return x->memo;
}

/* The server whose I/O thread this is (io_main sets it), else NULL. */
static _Thread_local const struct node_http *io_thread_of;

int node_http_on_io_thread(const struct node_http_ex *x)
{
	return io_thread_of != NULL && io_thread_of == x->hs;
}

void node_http_known(struct node_http_ex *x)
{
	atomic_store_explicit(&x->served, 1, memory_order_relaxed);
}

const char *node_http_method(const struct node_http_ex *x)
{
	return x->method;
}

const char *node_http_uri(const struct node_http_ex *x)
{
	return x->uri;
}

void *node_http_req_ctx(const struct node_http_ex *x)
{
	return x->ctx;
}

int node_http_replied(const struct node_http_ex *x)
{
	return x->replied;
}

void node_http_extra_head(struct node_http_ex *x, const char *lines)
{
	x->extra_head = lines;
}

int node_http_forwarded(const struct node_http_ex *x)
{
	return x->forwarded;
}

uint64_t node_http_time_ms(const struct node_http_ex *x)
{
	return x->time_ms;
}

void node_http_stash(struct node_http_ex *x, void *p, void (*free_fn)(void *))
{
	LORA_ASSERT(x->stash == NULL);
	x->stash = p;
	x->stash_free = free_fn;
}

void *node_http_unstash(struct node_http_ex *x)
{
	void *p = x->stash;
	x->stash = NULL;
	return p;
}

static void stash_drop(struct node_http_ex *x)
{
	if (x->stash)
		x->stash_free(x->stash);
	x->stash = NULL;
}

/* ---- connections
 * -------------------------------------------------------------- */

static void conn_close(struct node_http *hs, struct node_http_ex *x)
{
	pthread_mutex_lock(&hs->mu);
	if (x->prev)
		x->prev->next = x->next;
	else
		hs->conns = x->next;
	if (x->next)
		x->next->prev = x->prev;
	hs->n_conns--;
	hs->n_evicted -= x->evicted != 0;
	if (x->tls_state != HTTP_TLS_READY && !x->evicted)
		hs->handshakes--;
	pthread_mutex_unlock(&hs->mu);
	epoll_ctl(hs->efd, EPOLL_CTL_DEL, x->fd, NULL);
	if (x->tls && x->tls_state == HTTP_TLS_READY && !x->broken)
		node_tls_close_notify(x->tls);
	node_tls_conn_free(x->tls);
	close(x->fd);
	stash_drop(x);
	/* what it read may hold credentials (Authorization, X-Lora-Identity);
	 * a draining connection read over the whole buffer */
	if (x->buf)
		sodium_memzero(x->buf, x->draining ? x->cap : x->len);
	lora_free(x->buf);
	lora_free(x->out);
	sodium_memzero(x->memo, sizeof x->memo);
	lora_free(x);
}

/* Hands the connection back to the epoll thread. Under hs->mu so that
 * the reaper never sees it idle before it is armed. */
static void conn_arm_for(struct node_http *hs, struct node_http_ex *x,
                         uint32_t events)
{
	struct epoll_event ev = {.events = events | EPOLLRDHUP | EPOLLONESHOT,
	                         .data.ptr = x};
	pthread_mutex_lock(&hs->mu);
	int rc = epoll_ctl(hs->efd, EPOLL_CTL_MOD, x->fd, &ev);
	if (rc == 0) {
		x->busy = 0;
		x->last_ms = lora_now_ms();
	}
	pthread_mutex_unlock(&hs->mu);
	if (rc != 0)
		conn_close(hs, x);
}

static void conn_arm(struct node_http *hs, struct node_http_ex *x)
{
	conn_arm_for(hs, x, EPOLLIN);
}

/* A new connection's TLS state from the listener's mode (hs->mu held). */
static int conn_tls_init(struct node_http *hs, struct node_http_ex *x, int fd)
{
	if (hs->tls_mode == NODE_TLS_OFF)
		return 0;
	if (hs->tls_mode == NODE_TLS_REQUIRED &&
	    node_tls_conn_new(hs->tls, fd, NULL, &x->tls) != 0)
		return LORA_ENOMEM;
	x->tls_state = hs->tls_mode == NODE_TLS_REQUIRED ? HTTP_TLS_HANDSHAKE
	                                                 : HTTP_TLS_SNIFF;
	hs->handshakes++;
	return 0;
}

/* At the handshake cap: shuts down the oldest pending handshake that is
 * not already going (hs->mu held; epoll thread, which alone drives
 * handshakes). Its socket then reports the end of the stream and the
 * epoll thread closes it as any failed handshake: closing it here could
 * free a connection with an event still waiting in this epoll round.
 * 0 when one was shut down, else -1. */
static void evict(struct node_http *hs, struct node_http_ex *x)
{
	x->evicted = 1;
	hs->n_evicted++;
	shutdown(x->fd, SHUT_RDWR);
	if (x->tls_state != HTTP_TLS_READY)
		hs->handshakes--; /* counted out now; conn_close skips it */
}

static int evict_oldest_handshake(struct node_http *hs)
{
	struct node_http_ex *old = NULL;
	for (struct node_http_ex *x = hs->conns; x; x = x->next)
		if (x->tls_state != HTTP_TLS_READY && !x->busy && !x->evicted &&
		    (old == NULL || x->accept_ms <= old->accept_ms))
			old = x;
	if (old == NULL)
		return -1;
	evict(hs, old);
	hs->evicted_since++;
	return 0;
}

/* Rate-limited lines about a full listener (epoll thread). */
static void accept_warn(struct node_http *hs, int conns_full)
{
	uint64_t now = lora_now_ms();
	if (conns_full && now - hs->full_warn_ms >= NODE_HTTP_FULL_WARN_MS) {
		hs->full_warn_ms = now;
		LOG_WARN("http: %zu connections open, refusing more (at most "
		         "one line every %d s)",
		         hs->conns_max, NODE_HTTP_FULL_WARN_MS / 1000);
	}
	if (!conns_full && hs->evicted_since &&
	    now - hs->evict_warn_ms >= NODE_HTTP_FULL_WARN_MS) {
		hs->evict_warn_ms = now;
		LOG_WARN(
		    "http: %d TLS handshakes pending: closed the oldest "
		    "for newer connections (%zu times since the last line, "
		    "at most one every %d s)",
		    NODE_HTTP_HANDSHAKES_MAX, hs->evicted_since,
		    NODE_HTTP_FULL_WARN_MS / 1000);
		hs->evicted_since = 0;
	}
}

/* A connection with the handler's room after it (aligned for any type). */
static struct node_http_ex *conn_alloc(const struct node_http *hs)
{
	const size_t align = _Alignof(max_align_t);
	size_t off = (sizeof(struct node_http_ex) + align - 1) / align * align;
	struct node_http_ex *x = lora_calloc(1, off + hs->ops.ctx_bytes);
	if (x)
		x->ctx = (char *)x + off;
	return x;
}

/* A connection is pending until its first complete request (or, with
 * pending_until_known, until node_http_known). */
static int pending(const struct node_http_ex *x)
{
	return !atomic_load_explicit(&x->served, memory_order_relaxed) &&
	       !x->evicted && !x->busy;
}

/* The oldest of src's pending connections when src holds
 * pending_per_source of them (a new one shuts it down as
 * evict_oldest_handshake does), else NULL (hs->mu held; epoll thread).
 * (The list is newest first: among connections of the same millisecond
 * the last one seen is the oldest.) */
static struct node_http_ex *pending_over(struct node_http *hs,
                                         const struct node_source *src)
{
	size_t k = 0;
	struct node_http_ex *old = NULL;
	for (struct node_http_ex *x = hs->conns; x; x = x->next)
		if (pending(x) && node_source_eq(&x->src, src)) {
			k++;
			if (old == NULL || x->accept_ms <= old->accept_ms)
				old = x;
		}
	return k >= hs->pending_per_source ? old : NULL;
}

/* One line per source per NODE_SOURCE_LOG_MS about its connections shut
 * down for newer ones (epoll thread). */
static void source_warn(struct node_http *hs, const struct node_source *src)
{
	uint64_t quiet = 0;
	char from[NODE_SOURCE_TEXT_BYTES];
	if (!node_source_log_due(&hs->source_log, src, lora_now_ms(), &quiet))
		return;
	node_source_text(src, from, sizeof from);
	LOG_WARN("http: closed the oldest of %zu connections from %s "
	         "without %s for a new one "
	         "(pending_per_source; %llu more closed since its last "
	         "line, at most one line per source every %d s)",
	         hs->pending_per_source, from,
	         hs->pending_until_known ? "an authenticated request"
	                                 : "a complete request",
	         (unsigned long long)quiet, NODE_SOURCE_LOG_MS / 1000);
}

/* Adds x (fd, from x->src) to the connections: 0 (*evicted set when an
 * older pending connection from its source was shut down for it), or
 * LORA_ELIMIT (too many open) / LORA_ENOMEM, then the caller closes fd. */
static int conn_add(struct node_http *hs, struct node_http_ex *x, int fd,
                    int *evicted)
{
	pthread_mutex_lock(&hs->mu);
	struct node_http_ex *old = pending_over(hs, &x->src);
	/* the shut down ones are closed in this epoll round: not counted,
	 * nor the one this connection would shut down; and only a connection
	 * that is then taken shuts one down */
	int rc = hs->n_conns - hs->n_evicted - (old != NULL) >= hs->conns_max
	             ? LORA_ELIMIT
	             : 0;
	if (rc == 0 && hs->tls_mode != NODE_TLS_OFF &&
	    hs->handshakes >= NODE_HTTP_HANDSHAKES_MAX)
		(void)evict_oldest_handshake(hs);
	if (rc == 0 && conn_tls_init(hs, x, fd) != 0)
		rc = LORA_ENOMEM;
	*evicted = rc == 0 && old != NULL;
	if (*evicted)
		evict(hs, old);
	if (rc == 0) {
		x->kind = HTTP_KIND_CONN;
		x->hs = hs;
		x->fd = fd;
		x->last_ms = x->accept_ms = lora_now_ms();
		x->next = hs->conns;
		if (hs->conns)
			hs->conns->prev = x;
		hs->conns = x;
		hs->n_conns++;
	}
	pthread_mutex_unlock(&hs->mu);
	return rc;
}

static void conn_accept(struct node_http *hs)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t sl = sizeof sa;
		memset(&sa, 0, sizeof sa);
		int fd = accept4(hs->lfd, (struct sockaddr *)&sa, &sl,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			/* out of descriptors: the listening socket stays
			 * readable; pause instead of spinning on it */
			LOG_WARN("http: accept: %s", strerror(errno));
			usleep(NODE_HTTP_EMFILE_PAUSE_MS * 1000);
		}
		if (fd < 0)
			return;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct node_http_ex *x = conn_alloc(hs);
		if (x)
			node_source_from_sockaddr(&x->src, &sa);
		int evicted = 0;
		int rc = x ? conn_add(hs, x, fd, &evicted) : LORA_ENOMEM;
		accept_warn(hs, rc == LORA_ELIMIT);
		if (evicted)
			source_warn(hs, &x->src);
		if (rc != 0) {
			lora_free(x);
			close(fd);
			continue;
		}
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP |
		                                   EPOLLONESHOT,
		                         .data.ptr = x};
		if (epoll_ctl(hs->efd, EPOLL_CTL_ADD, fd, &ev) != 0)
			conn_close(hs, x);
	}
}

/* ---- parsing
 * ------------------------------------------------------------------ */

/* The request at the start of x->buf: NODE_HTTP_MORE (needs more bytes),
 * NODE_HTTP_DONE (x->method, uri, body, req_bytes set) or NODE_HTTP_ERROR
 * (e set). The head is parsed once (http_parse.c; x->need set); the body
 * may arrive later, and buf may move meanwhile, so the pointers are set
 * from offsets at the end. */
static int parse_request(struct node_http_ex *x, struct node_http_perr *e)
{
	if (x->need == 0) {
		struct node_http_head h;
		int rc =
		    node_http_parse_head(x->buf, x->len, x->hs->body_bytes_max,
		                         NODE_FORWARD_HOPS_MAX, &h, e);
		if (rc != NODE_HTTP_DONE)
			return rc;
		x->head_bytes = h.head_bytes;
		x->uri_off = h.uri_off;
		x->keep_alive = h.keep_alive;
		x->http10 = h.http10;
		x->forwarded = h.forwarded;
		x->time_ms = h.time_ms;
		x->expect = h.expect;
		x->authz_off = h.authz_off;
		x->ident_off = h.ident_off;
		x->need = h.head_bytes + h.body_bytes;
	}
	if (x->len < x->need) {
		if (x->expect && !x->continue_sent) {
			static const char cont[] =
			    "HTTP/1.1 100 Continue\r\n\r\n";
			x->continue_sent = 1; /* a client that does not read
			                       * this sends the body anyway */
			struct iovec iov = {(void *)cont, sizeof cont - 1};
			ssize_t w = conn_sendv(x, &iov, 1, 1);
			(void)w; /* TLS flushes it before the answer */
		}
		return NODE_HTTP_MORE;
	}
	x->method = x->buf;
	x->uri = x->buf + x->uri_off;
	x->body = x->buf + x->head_bytes;
	x->body_len = x->need - x->head_bytes;
	x->req_bytes = x->need;
	x->ready_ms = lora_now_ms();
	x->authz = x->authz_off ? x->buf + x->authz_off : NULL;
	x->ident = x->ident_off ? x->buf + x->ident_off : NULL;
	return NODE_HTTP_DONE;
}

/* ---- serving
 * ------------------------------------------------------------------ */

/* Makes an eventfd readable (its counter stays above 0 until read). */
static void efd_poke(int fd)
{
	uint64_t one = 1;
	ssize_t w = write(fd, &one, sizeof one);
	(void)w;
}

/* Empties an eventfd efd_poke made readable. */
static void efd_drain(int fd)
{
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof v);
	(void)r;
}

/* Ends every worker's wait on a connection (conn_linger), once until the
 * last of them drains linger_fd (hs->mu held). */
static void linger_kick(struct node_http *hs)
{
	if (hs->lingering > 0 && !hs->linger_kicked) {
		efd_poke(hs->linger_fd);
		hs->linger_kicked = 1;
	}
}

/* x at the end of the list head..tail (linked by qnext) of *n. */
static void fifo_push(struct node_http_ex **head, struct node_http_ex **tail,
                      size_t *n, struct node_http_ex *x)
{
	x->qnext = NULL;
	if (*tail)
		(*tail)->qnext = x;
	else
		*head = x;
	*tail = x;
	(*n)++;
}

/* force: a connection that must go on (an answer being sent) is queued
 * even above NODE_HTTP_QUEUE_MAX. */
static int enqueue(struct node_http *hs, struct node_http_ex *x, int force)
{
	pthread_mutex_lock(&hs->mu);
	int full = (!force && hs->qlen >= hs->queue_max) || hs->stopping;
	if (!full) {
		x->busy = 1;
		fifo_push(&hs->head, &hs->tail, &hs->qlen, x);
		pthread_cond_signal(&hs->cond);
		if (hs->qlen > (size_t)hs->idle)
			linger_kick(hs); /* it would wait for a worker */
	}
	pthread_mutex_unlock(&hs->mu);
	return full ? -1 : 0;
}

/* Runs the handler on a worker; 1 when it handed x to another thread. */
static int run_work(struct node_http *hs, struct node_http_ex *x)
{
	if (hs->ops.work(hs->ops.arg, x) == NODE_HTTP_HANDED_ON)
		return 1;
	if (!x->replied && !x->broken)
		reply_status(x, 500, LORA_EINTERNAL,
		             "the request got no answer");
	return 0;
}

/* After conn_next's move: wipes what is left past x->len of the request
 * just served (old_len bytes before): its head may carry Authorization
 * or X-Lora-Identity and its body a password (CREATE USER, ALTER USER),
 * and when requests were left behind it these are their old copies. */
static void conn_wipe_stale(struct node_http_ex *x, size_t old_len)
{
	if (old_len > x->len)
		sodium_memzero(x->buf + x->len, old_len - x->len);
}

/* After an answer: drops the request's bytes; -1 when the connection was
 * closed (Connection: close, or the answer could not be sent). */
static int conn_next(struct node_http *hs, struct node_http_ex *x)
{
	if (!x->keep_alive || x->broken) {
		conn_close(hs, x);
		return -1;
	}
	stash_drop(x);
	size_t old_len = x->len;
	memmove(x->buf, x->buf + x->req_bytes, x->len - x->req_bytes);
	x->len -= x->req_bytes;
	conn_wipe_stale(x, old_len);
	x->need = x->req_bytes = 0;
	x->continue_sent = x->fin_probed = x->replied = 0;
	x->start_ms = 0;
	x->extra_head = NULL;
	x->authz = x->ident = NULL;
	memset(x->ctx, 0, hs->ops.ctx_bytes);
	return 0;
}

/* Answers a protocol error and closes after the client stops sending (the
 * body is not read: closing at once could reset the answer away). */
static void conn_refuse(struct node_http *hs, struct node_http_ex *x,
                        const struct node_http_perr *e, int worker)
{
	x->keep_alive = 0;
	x->async = !worker; /* the epoll thread never waits for a client */
	reply_status(x, e->status, e->code, e->msg);
	x->async = 0;
	lora_free(x->out); /* what did not fit: the client is not reading */
	x->out = NULL;
	x->out_len = 0;
	if (x->broken || shutdown(x->fd, SHUT_WR) != 0) {
		conn_close(hs, x);
		return;
	}
	x->draining = 1;
	x->len = 0;
	conn_arm(hs, x);
}

/* A request the server will not run (queue full, or stopping): 503.
 * async: sent without waiting (what the socket does not take is
 * dropped), from the I/O thread or at the end of a stop. */
static void reply_not_run(struct node_http_ex *x, int async)
{
	x->async = async;
	reply_status(x, 503, LORA_EUNAVAILABLE,
	             "server busy or stopping: not executed");
	x->async = 0;
}

/* The I/O thread's part of a parsed request (ops.io, which must not
 * block: its answers never wait for the client): 1 when x was handed on. */
static int serve_io(struct node_http *hs, struct node_http_ex *x)
{
	pthread_mutex_lock(&hs->mu);
	x->busy = 1; /* the reaper must leave it alone from here */
	pthread_mutex_unlock(&hs->mu);
	x->async = 1;
	int rc = hs->ops.io(hs->ops.arg, x);
	if (rc == NODE_HTTP_HANDED_ON)
		return 1;
	x->async = 0;
	LORA_ASSERT(rc == NODE_HTTP_ANSWERED || rc == NODE_HTTP_TO_WORKER);
	if (rc == NODE_HTTP_ANSWERED && !out_pending(x))
		return 0;
	/* what the socket did not take goes out from a worker */
	x->resume = rc == NODE_HTTP_ANSWERED ? RESUME_FLUSH : RESUME_NONE;
	if (enqueue(hs, x, rc == NODE_HTTP_ANSWERED) == 0)
		return 1;
	x->resume = RESUME_NONE;
	if (rc == NODE_HTTP_TO_WORKER)
		reply_not_run(x, 1);
	if (out_pending(x)) {
		x->broken = 1; /* the rest of the answer cannot be sent */
		lora_free(x->out);
		x->out = NULL;
		x->out_len = 0;
	}
	return 0;
}

/* A worker sends what an answer left unsent (x->out, or bytes TLS held). */
static void flush_out(struct node_http_ex *x)
{
	struct iovec iov = {x->out, x->out_len};
	if (send_all(x, &iov, x->out_len ? 1 : 0) != 0)
		x->broken = 1;
	x->tls_held = 0;
	lora_free(x->out);
	x->out = NULL;
	x->out_len = 0;
}

/* Gives x, holding a request a worker read, to the epoll thread to serve
 * (hs->to_io, then wakefd): 1. When the server stops (the epoll thread
 * may not take it) the request is answered 503 here instead: 0. */
static int send_to_io(struct node_http *hs, struct node_http_ex *x)
{
	pthread_mutex_lock(&hs->mu);
	int stopping = atomic_load(&hs->stopping);
	if (!stopping)
		fifo_push(&hs->to_io, &hs->to_io_tail, &hs->n_to_io, x);
	pthread_mutex_unlock(&hs->mu);
	if (!stopping) {
		efd_poke(hs->wakefd);
		return 1;
	}
	x->keep_alive = 0; /* the connection ends with the server */
	reply_not_run(x, 0);
	return 0;
}

/* A request a lingering worker read (conn_linger): routed as the epoll
 * thread routes it (a leader's write goes to the writer, and so on), what
 * would wait for a worker runs here, and what only the epoll thread may
 * do goes back to it (hs->to_io). 1 when x was handed on. */
static int serve_here(struct node_http *hs, struct node_http_ex *x)
{
	x->async = 1;
	int rc = hs->ops.io(hs->ops.arg, x);
	if (rc == NODE_HTTP_HANDED_ON)
		return 1;
	x->async = 0;
	if (rc == NODE_HTTP_TO_IO) {
		/* parsed again from x->buf (x->need) by the epoll thread;
		 * nothing of this attempt is kept */
		LORA_ASSERT(!x->replied);
		stash_drop(x);
		memset(x->ctx, 0, hs->ops.ctx_bytes);
		x->extra_head = NULL;
		x->fin_probed = 0;
		return send_to_io(hs, x);
	}
	LORA_ASSERT(rc == NODE_HTTP_ANSWERED || rc == NODE_HTTP_TO_WORKER);
	if (rc == NODE_HTTP_TO_WORKER)
		return run_work(hs, x);
	if (out_pending(x))
		flush_out(x);
	return 0;
}

static void conn_serve(struct node_http *hs, struct node_http_ex *x,
                       int worker);

/* The epoll thread: serves the requests workers sent back (serve_here). */
static void serve_to_io(struct node_http *hs)
{
	efd_drain(hs->wakefd);
	pthread_mutex_lock(&hs->mu);
	struct node_http_ex *x = hs->to_io; /* oldest first */
	hs->to_io = hs->to_io_tail = NULL;
	hs->n_to_io = 0;
	pthread_mutex_unlock(&hs->mu);
	while (x) {
		struct node_http_ex *nx = x->qnext;
		x->qnext = NULL;
		conn_serve(hs, x, 0);
		x = nx;
	}
}

static int conn_fill(struct node_http *hs, struct node_http_ex *x);

/*
 * A worker that answered a request keeps its connection for up to
 * linger_us (NODE_HTTP_LINGER_US), waiting for the client's next one
 * itself: a client whose requests workers answer (reads), sending one
 * after another, then costs one thread wake-up per request, not two (the
 * epoll thread's, then a worker's). At most linger_max workers wait at
 * once (a quarter of the pool; none in a pool under 4), and none starts
 * while a request would wait for a worker (qlen > idle). Such a request
 * queued meanwhile ends every wait (linger_fd), and a request read while
 * one waits for a worker goes to the epoll thread (send_to_io), which
 * routes it as if it had read it. 1 when a request's bytes were read
 * into x->buf (serve it here), 0 when none arrived (the caller hands the
 * connection back to epoll), -1 when x was closed or sent to the epoll
 * thread.
 */
static int conn_linger(struct node_http *hs, struct node_http_ex *x)
{
	if (x->len > 0 || x->eof ||
	    (x->tls != NULL && node_tls_pending(x->tls)))
		return 0;
	pthread_mutex_lock(&hs->mu);
	int ok = hs->qlen <= (size_t)hs->idle &&
	         hs->lingering < hs->linger_max && !hs->linger_kicked &&
	         !atomic_load(&hs->stopping);
	if (ok)
		hs->lingering++;
	pthread_mutex_unlock(&hs->mu);
	if (!ok)
		return 0;
	if (hs->linger_hook)
		hs->linger_hook(hs->linger_hook_arg);
	struct pollfd p[2] = {{.fd = x->fd, .events = POLLIN | POLLRDHUP},
	                      {.fd = hs->linger_fd, .events = POLLIN}};
	struct timespec ts = {hs->linger_us / 1000000,
	                      (long)(hs->linger_us % 1000000) * 1000L};
	int r = ppoll(p, 2, &ts, NULL);
	int got = r > 0 && p[0].revents != 0;
	pthread_mutex_lock(&hs->mu);
	if (--hs->lingering == 0 && hs->linger_kicked) {
		efd_drain(hs->linger_fd);
		hs->linger_kicked = 0;
	}
	int queued = hs->qlen > (size_t)hs->idle;
	pthread_mutex_unlock(&hs->mu);
	/* at a stop, unread bytes stay unread (as on connections the epoll
	 * thread no longer reads) */
	if (!got || atomic_load(&hs->stopping))
		return 0;
	if (conn_fill(hs, x) != 0)
		return -1;
	if (x->len == 0)
		return 0;
	if (queued) {
		/* requests wait for a worker: this one goes behind them,
		 * routed by the epoll thread as if it had read it */
		if (send_to_io(hs, x) == 0)
			conn_close(hs, x); /* answered 503: the server stops */
		return -1;
	}
	return 1;
}

/*
 * Serves the requests in x->buf until one needs more bytes (the connection
 * goes back to epoll), one goes to the workers (epoll thread only), or the
 * connection closes. Workers run the routes themselves, and a worker waits
 * a little for the next request (conn_linger).
 */
static void conn_serve(struct node_http *hs, struct node_http_ex *x, int worker)
{
	int here = 0; /* a request conn_linger read */
	for (;;) {
		struct node_http_perr e;
		int rc = parse_request(x, &e);
		if (rc == NODE_HTTP_MORE && x->eof) {
			conn_close(hs, x); /* it will never be complete */
			return;
		}
		if (rc == NODE_HTTP_MORE && worker) {
			int l = conn_linger(hs, x);
			if (l < 0)
				return;
			if (l > 0) {
				here = 1;
				continue;
			}
		}
		if (rc == NODE_HTTP_MORE) {
			if (x->len > 0 && x->start_ms == 0)
				x->start_ms = lora_now_ms();
			conn_arm(hs, x);
			return;
		}
		if (rc == NODE_HTTP_ERROR) {
			conn_refuse(hs, x, &e, worker);
			return;
		}
		x->start_ms = 0;
		if (!hs->pending_until_known &&
		    !atomic_load_explicit(&x->served, memory_order_relaxed))
			atomic_store_explicit(&x->served, 1,
			                      memory_order_relaxed);
		if (x->eof)
			x->keep_alive = 0;
		if (here)
			atomic_fetch_add(&hs->lingered, 1);
		if (!worker ? serve_io(hs, x)
		    : here  ? serve_here(hs, x)
		            : run_work(hs, x))
			return;
		here = 0;
		if (conn_next(hs, x) != 0)
			return;
	}
}

static void tls_refused(struct node_http *hs, struct node_http_ex *x)
{
	uint64_t now = lora_now_ms();
	if (now - hs->tls_warn_ms < NODE_HTTP_TLS_WARN_MS)
		return;
	hs->tls_warn_ms = now;
	char why[128], peer[64] = "?";
	node_tls_error(x->tls, why, sizeof why);
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	if (getpeername(x->fd, (struct sockaddr *)&a, &al) == 0 &&
	    a.sin_family == AF_INET)
		inet_ntop(AF_INET, &a.sin_addr, peer, sizeof peer);
	LOG_WARN("http: TLS handshake with %s refused: %s (at most one line "
	         "a second)",
	         peer, why);
}

/* The connection's first byte tells TLS from plaintext (optional):
 * 0 decided, 1 waiting (armed again) or closed. */
static int conn_sniff(struct node_http *hs, struct node_http_ex *x)
{
	unsigned char b;
	ssize_t r = recv(x->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (r < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		conn_arm(hs, x);
		return 1;
	}
	if (r <= 0) {
		conn_close(hs, x);
		return 1;
	}
	if (b == NODE_TLS_RECORD_HANDSHAKE) {
		if (node_tls_conn_new(hs->tls, x->fd, NULL, &x->tls) != 0) {
			conn_close(hs, x);
			return 1;
		}
		x->tls_state = HTTP_TLS_HANDSHAKE;
		return 0;
	}
	pthread_mutex_lock(&hs->mu);
	x->tls_state = HTTP_TLS_READY; /* plaintext */
	hs->handshakes--;
	pthread_mutex_unlock(&hs->mu);
	return 0;
}

/* Drives the sniff and the handshake (epoll thread): 0 when the
 * connection is ready for requests, 1 when it waits (armed for what TLS
 * wants) or was closed. */
static int conn_tls_step(struct node_http *hs, struct node_http_ex *x)
{
	if (x->evicted) { /* shut down for a newer connection */
		conn_close(hs, x);
		return 1;
	}
	if (x->tls_state == HTTP_TLS_SNIFF && conn_sniff(hs, x) != 0)
		return 1;
	if (x->tls_state == HTTP_TLS_READY)
		return 0;
	if (node_tls_handshake(x->tls) != 0) {
		if (errno == EAGAIN) {
			conn_arm_for(hs, x,
			             node_tls_wants(x->tls) == POLLOUT
			                 ? EPOLLOUT
			                 : EPOLLIN);
			return 1;
		}
		tls_refused(hs, x);
		conn_close(hs, x);
		return 1;
	}
	pthread_mutex_lock(&hs->mu);
	x->tls_state = HTTP_TLS_READY;
	hs->handshakes--;
	pthread_mutex_unlock(&hs->mu);
	return 0;
}

/* x->buf moved to cap bytes, the old one wiped (it may hold credentials)
 * and freed; NULL when out of memory (x->buf unchanged). */
static char *conn_grow(struct node_http_ex *x, size_t cap)
{
	char *nb = lora_malloc(cap);
	if (nb == NULL || x->buf == NULL)
		return nb;
	memcpy(nb, x->buf, x->len);
	sodium_memzero(x->buf, x->cap);
	lora_free(x->buf);
	return nb;
}

/* Reads what arrived into x->buf: 0, or -1 when the connection was closed. */
static int conn_fill(struct node_http *hs, struct node_http_ex *x)
{
	const size_t limit = NODE_HTTP_HEADER_BYTES_MAX +
	                     NODE_HTTP_BODY_BYTES_MAX + NODE_HTTP_READ_BYTES;
	while (x->len < limit) {
		if (x->cap - x->len < NODE_HTTP_READ_BYTES) {
			size_t cap = x->cap ? 2 * x->cap : NODE_HTTP_READ_BYTES;
			while (cap - x->len < NODE_HTTP_READ_BYTES)
				cap *= 2;
			char *nb = conn_grow(x, cap);
			if (nb == NULL) {
				conn_close(hs, x);
				return -1;
			}
			x->buf = nb;
			x->cap = cap;
		}
		size_t room = x->draining ? x->cap : x->cap - x->len;
		ssize_t r =
		    conn_recv(x, x->draining ? x->buf : x->buf + x->len, room);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r == 0 && x->len > 0 && !x->draining) {
			x->eof = 1; /* half-closed: answer what it sent */
			break;
		}
		if (r <= 0) {
			conn_close(hs, x);
			return -1;
		}
		if (!x->draining)
			x->len += (size_t)r;
		x->last_ms = lora_now_ms();
		if ((size_t)r < room &&
		    (x->tls == NULL || !node_tls_pending(x->tls)))
			break; /* (TLS may hold bytes the socket does not show)
			        */
	}
	return 0;
}

/* The epoll thread: reads what arrived, then serves it. */
static void conn_readable(struct node_http *hs, struct node_http_ex *x)
{
	if (x->tls_state != HTTP_TLS_READY && conn_tls_step(hs, x) != 0)
		return;
	if (conn_fill(hs, x) != 0)
		return;
	if (x->draining)
		conn_arm(hs, x);
	else
		conn_serve(hs, x, 0);
}

/* ---- threads
 * ------------------------------------------------------------------ */

static void *worker_main(void *arg)
{
	struct node_http *hs = arg;
	pthread_setname_np(pthread_self(), "lora-http");
	for (;;) {
		pthread_mutex_lock(&hs->mu);
		while (hs->head == NULL && !hs->stopping) {
			hs->idle++;
			pthread_cond_wait(&hs->cond, &hs->mu);
			hs->idle--;
		}
		struct node_http_ex *x = hs->head;
		if (x) {
			hs->head = x->qnext;
			if (hs->head == NULL)
				hs->tail = NULL;
			hs->qlen--;
		}
		pthread_mutex_unlock(&hs->mu);
		if (x == NULL)
			break;
		int resume = x->resume;
		x->resume = RESUME_NONE;
		if (resume == RESUME_FLUSH)
			flush_out(x);
		if (resume == RESUME_NONE && run_work(hs, x))
			continue;
		if (resume == RESUME_SERVE || conn_next(hs, x) == 0)
			conn_serve(hs, x, 1);
	}
	return NULL;
}

void node_http_watch_init(struct node_http_watch *w, struct node_http_ex *x,
                          int fd, void (*fn)(struct node_http_watch *))
{
	w->kind = HTTP_KIND_WATCH;
	w->hs = x->hs;
	w->fd = fd;
	w->fn = fn;
}

int node_http_watch_add(struct node_http_watch *w)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = w};
	return epoll_ctl(w->hs->efd, EPOLL_CTL_ADD, w->fd, &ev);
}

void node_http_async(struct node_http_ex *x)
{
	x->async = 1;
}

void node_http_async_done(struct node_http_ex *x)
{
	struct node_http *hs = x->hs;
	x->async = 0;
	if (x->child) {
		x->child->done(x, x->child->arg);
		return;
	}
	if (!out_pending(x)) {
		if (conn_next(hs, x) != 0)
			return;
		if (x->len == 0) {
			conn_arm(hs, x);
			return;
		}
		x->resume = RESUME_SERVE;
	} else {
		x->resume = RESUME_FLUSH;
	}
	if (enqueue(hs, x, 1) != 0)
		conn_close(hs, x); /* stopping */
}

void node_http_async_rerun(struct node_http_ex *x, void *stash,
                           void (*free_fn)(void *))
{
	LORA_ASSERT(x->child == NULL); /* a batch's: node_http_child_untaken */
	x->async = 0;
	node_http_stash(x, stash, free_fn);
	x->resume = RESUME_NONE;
	if (enqueue(x->hs, x, 1) != 0)
		conn_close(x->hs, x); /* stopping: the stash goes with it */
}

/* ---- requests inside another request (a batch)
 * ------------------------------------------------ */

struct node_http_ex *
node_http_child_new(struct node_http_ex *parent,
                    const struct node_http_child_req *r,
                    void (*done)(struct node_http_ex *, void *), void *arg)
{
	struct node_http_ex *x = conn_alloc(parent->hs);
	struct node_http_child *c = x ? lora_calloc(1, sizeof *c) : NULL;
	size_t ul = strlen(r->uri), al = r->authz ? r->authz_len : 0,
	       il = r->ident ? r->ident_len : 0;
	char *buf = c ? lora_malloc(ul + al + il + r->body_len + 4) : NULL;
	if (buf == NULL) {
		lora_free(c);
		lora_free(x);
		return NULL;
	}
	x->hs = parent->hs;
	x->fd = -1;
	x->src = parent->src;
	atomic_store(&x->served, 1);
	x->buf = buf;
	x->cap = ul + al + il + r->body_len + 4;
	char *at = buf;
	x->uri = memcpy(at, r->uri, ul + 1);
	at += ul + 1;
	x->authz = r->authz && al ? memcpy(at, r->authz, al) : NULL;
	at[al] = '\0';
	at += al + 1;
	x->ident = r->ident && il ? memcpy(at, r->ident, il) : NULL;
	at[il] = '\0';
	at += il + 1;
	x->body = at;
	if (r->body_len)
		memcpy(at, r->body, r->body_len);
	at[r->body_len] = '\0';
	x->body_len = r->body_len;
	x->method = "POST";
	x->keep_alive = 1;
	x->forwarded = r->forwarded;
	x->time_ms = parent->time_ms; /* the batch's X-Lora-Time-Ms */
	/* the batch's connection memo, read only: a member's identity line
	 * checked for the batch is taken for each of its writes */
	memcpy(x->memo, parent->memo, sizeof x->memo);
	c->done = done;
	c->arg = arg;
	x->child = c;
	return x;
}

int node_http_child_answer(const struct node_http_ex *x, const char **body,
                           size_t *len, const char **bookmark)
{
	const struct node_http_child *c = x->child;
	static const char oom[] = "{\"error\":{\"code\":\"LORA_INTERNAL\","
	                          "\"message\":\"out of memory\",\"category\":"
	                          "\"server\"}}";
	*body = c->body ? c->body : c->status ? oom : "";
	*len = c->body ? c->body_len : c->status ? sizeof oom - 1 : 0;
	*bookmark = c->bookmark;
	return x->replied ? c->status : 0;
}

void node_http_child_untaken(struct node_http_ex *x)
{
	LORA_ASSERT(x->child && !x->replied);
	x->replied = 1; /* status 0: the batch says "send it alone" */
}

int node_http_is_child(const struct node_http_ex *x)
{
	return x->child != NULL;
}

void node_http_child_free(struct node_http_ex *x)
{
	if (x == NULL)
		return;
	stash_drop(x);
	lora_free(x->child->body);
	lora_free(x->child);
	sodium_memzero(x->buf, x->cap); /* its credentials */
	lora_free(x->buf);
	lora_free(x);
}

/* Closes idle connections, requests that take too long to arrive and
 * drained error connections (epoll thread). */
static void reap(struct node_http *hs)
{
	enum { REAP_BATCH = 64, DRAIN_MS = 2000 };
	struct node_http_ex *victims[REAP_BATCH];
	size_t nv = 0;
	uint64_t now = lora_now_ms();
	pthread_mutex_lock(&hs->mu);
	for (struct node_http_ex *x = hs->conns; x && nv < REAP_BATCH;
	     x = x->next) {
		if (x->busy)
			continue;
		if ((x->draining && now - x->last_ms > DRAIN_MS) ||
		    (x->tls_state != HTTP_TLS_READY &&
		     now - x->accept_ms > NODE_HTTP_HANDSHAKE_MS) ||
		    (x->start_ms && now - x->start_ms > NODE_HTTP_REQUEST_MS) ||
		    now - x->last_ms > NODE_HTTP_IDLE_MS)
			victims[nv++] = x;
	}
	pthread_mutex_unlock(&hs->mu);
	for (size_t i = 0; i < nv; i++)
		conn_close(hs, victims[i]);
}

static void *io_main(void *arg)
{
	struct node_http *hs = arg;
	pthread_setname_np(pthread_self(), "lora-http-io");
	io_thread_of = hs;
	struct epoll_event evs[NODE_HTTP_EVENTS_MAX];
	uint64_t next_reap = lora_now_ms() + 1000;
	uint64_t next_tick = lora_now_ms() + NODE_HTTP_TICK_MS;
	for (;;) {
		int cnt = epoll_wait(hs->efd, evs, NODE_HTTP_EVENTS_MAX,
		                     NODE_HTTP_TICK_MS);
		if (atomic_load(&hs->stopping))
			break; /* no lock: an answering thread may hold mu */
		for (int i = 0; i < cnt; i++) {
			void *p = evs[i].data.ptr;
			if (p == &hs->lfd)
				conn_accept(hs);
			else if (p == &hs->wakefd)
				serve_to_io(hs);
			else if (*(int *)p == HTTP_KIND_WATCH)
				((struct node_http_watch *)p)->fn(p);
			else
				conn_readable(hs, p);
		}
		if (cnt > 0 && hs->ops.flush)
			hs->ops.flush(hs->ops.arg);
		uint64_t now = lora_now_ms();
		if (now >= next_tick) {
			if (hs->ops.tick)
				hs->ops.tick(hs->ops.arg);
			next_tick = now + NODE_HTTP_TICK_MS;
		}
		if (now >= next_reap) {
			reap(hs);
			next_reap = lora_now_ms() + 1000;
		}
	}
	return NULL;
}

/* ---- start / stop
 * ------------------------------------------------------------- */

/* A listening socket on "host:port". */
static int listen_on(const char *addr, int *out)
{
	struct addrinfo *ai;
	if (node_addr_resolve(addr, 1, &ai) != 0)
		return EADDRNOTAVAIL;
	int fd = socket(ai->ai_family,
	                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, err = 0;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) ||
	    listen(fd, NODE_HTTP_BACKLOG))
		err = errno;
	freeaddrinfo(ai);
	if (err && fd >= 0)
		close(fd);
	if (!err)
		*out = fd;
	return err;
}

static int watch(struct node_http *hs, int fd, void *tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
	return epoll_ctl(hs->efd, EPOLL_CTL_ADD, fd, &ev);
}

/* Limits from cfg: a zero takes the default, and none goes above it. */
static void take_limits(struct node_http *hs, const struct node_http_cfg *cfg)
{
	hs->workers = cfg->workers > 0 && cfg->workers < NODE_HTTP_WORKERS_MAX
	                  ? cfg->workers
	                  : NODE_HTTP_WORKERS_MAX;
#define LIMIT(v, max) ((v) > 0 && (v) < (max) ? (v) : (max))
	hs->queue_max = LIMIT(cfg->queue_max, NODE_HTTP_QUEUE_MAX);
	hs->conns_max = LIMIT(cfg->conns_max, NODE_HTTP_CONNS_MAX);
	hs->body_bytes_max =
	    LIMIT(cfg->body_bytes_max, (size_t)NODE_HTTP_BODY_BYTES_MAX);
	hs->pending_per_source = cfg->pending_per_source > 0
	                             ? cfg->pending_per_source
	                             : NODE_HTTP_PENDING_PER_SOURCE;
	hs->pending_until_known = cfg->pending_until_known;
	hs->linger_max = hs->workers / 4;
	hs->linger_us = cfg->linger_us > 0 && cfg->linger_us <= 1000000
	                    ? (int)cfg->linger_us
	                    : NODE_HTTP_LINGER_US;
	hs->linger_hook = cfg->linger_hook;
	hs->linger_hook_arg = cfg->linger_hook_arg;
#undef LIMIT
}

/* The listener, the epoll set and the threads of a new hs. */
static int server_start(struct node_http *hs, const char *addr, char *errmsg)
{
	int err = listen_on(addr, &hs->lfd);
	if (err == 0 &&
	    ((hs->efd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	     (hs->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	     (hs->linger_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	     watch(hs, hs->lfd, &hs->lfd) ||
	     watch(hs, hs->wakefd, &hs->wakefd)))
		err = errno;
	if (err)
		return lora_errf(LORA_EIO, errmsg, "http server on %s: %s",
		                 addr, strerror(err));
	/* a server without its threads fails the start (node_http_close
	 * joins those that started) */
	int rc =
	    node_thread_start(&hs->io_thread, io_main, hs, "http io", errmsg);
	hs->io_started = rc == 0;
	for (int i = 0; rc == 0 && i < hs->workers; i++) {
		rc = node_thread_start(&hs->threads[i], worker_main, hs,
		                       "http worker", errmsg);
		hs->n_threads += rc == 0;
	}
	return rc;
}

int node_http_open(const struct node_http_cfg *cfg,
                   const struct node_http_ops *ops, struct node_http **out,
                   char *errmsg)
{
	LORA_ASSERT(ops->io && ops->work);
	*out = NULL;
	struct node_http *hs = lora_calloc(1, sizeof *hs);
	if (hs == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	hs->ops = *ops;
	take_limits(hs, cfg);
	hs->lfd = hs->efd = hs->wakefd = hs->linger_fd = -1;
	pthread_mutex_init(&hs->mu, NULL);
	pthread_cond_init(&hs->cond, NULL);
	hs->tls_mode = cfg->tls ? cfg->tls->mode : NODE_TLS_OFF;
	int rc = 0;
	if (hs->tls_mode != NODE_TLS_OFF) {
		rc = node_tls_ctx_new(cfg->tls, 1, &hs->tls, errmsg);
		if (rc)
			rc = lora_errwrap(rc, errmsg, "http_tls");
	}
	if (rc == 0)
		rc = server_start(hs, cfg->addr, errmsg);
	if (rc) {
		node_http_close(hs); /* joins the threads that started */
		return rc;
	}
	__atomic_store_n(out, hs, __ATOMIC_RELEASE); /* read by /metrics */
	return 0;
}

void node_http_close(struct node_http *hs)
{
	if (hs == NULL)
		return;
	pthread_mutex_lock(&hs->mu);
	hs->stopping = 1;
	pthread_cond_broadcast(&hs->cond);
	linger_kick(hs);
	pthread_mutex_unlock(&hs->mu);
	if (hs->wakefd >= 0)
		efd_poke(hs->wakefd);
	if (hs->io_started)
		pthread_join(hs->io_thread, NULL);
	for (int i = 0; i < hs->n_threads; i++)
		pthread_join(hs->threads[i], NULL);
	/* requests sent back to the epoll thread it did not take: every
	 * request read gets an answer */
	while (hs->to_io) {
		struct node_http_ex *x = hs->to_io;
		hs->to_io = x->qnext;
		x->qnext = NULL;
		x->keep_alive = 0;
		reply_not_run(x, 1);
	}
	hs->to_io_tail = NULL;
	hs->n_to_io = 0;
	if (hs->ops.stopped)
		hs->ops.stopped(hs->ops.arg);
	while (hs->conns)
		conn_close(hs, hs->conns); /* none is queued: workers drained */
	if (hs->lfd >= 0)
		close(hs->lfd);
	if (hs->wakefd >= 0)
		close(hs->wakefd);
	if (hs->linger_fd >= 0)
		close(hs->linger_fd);
	if (hs->efd >= 0)
		close(hs->efd);
	node_tls_ctx_free(hs->tls);
	pthread_mutex_destroy(&hs->mu);
	pthread_cond_destroy(&hs->cond);
	lora_free(hs);
}

int node_http_closing(const struct node_http *hs)
{
	return atomic_load(&hs->stopping);
}

int node_http_port(const struct node_http *hs)
{
	struct sockaddr_storage a;
	socklen_t al = sizeof a;
	if (getsockname(hs->lfd, (struct sockaddr *)&a, &al) != 0)
		return -1;
	if (a.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
	return ntohs(((struct sockaddr_in *)&a)->sin_port);
}

void node_http_stats(struct node_http *hs, struct node_http_stats *s)
{
	pthread_mutex_lock(&hs->mu);
	s->conns = hs->n_conns;
	s->queued = hs->qlen;
	s->lingered = atomic_load(&hs->lingered);
	s->lingering = (size_t)hs->lingering;
	s->to_io = hs->n_to_io;
	pthread_mutex_unlock(&hs->mu);
}
