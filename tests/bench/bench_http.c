/* bench_http.c - wrk-style HTTP write load generator (epoll, plain sockets).
 *
 * Single-statement writes against LoraDB (POST /query) or etcd (POST
 * /v3/kv/put) from N closed-loop clients, each a keep-alive HTTP/1.1
 * connection with one request outstanding, spread over the given endpoints
 * (client i starts on endpoint i % n); prints writes/s, p50 and p99 latency,
 * and the generator's own CPU per write (gen_cpu_us_per_write: what the
 * load costs the machine it shares with the servers).
 *
 *   bench_http --mode lora|etcd --endpoints h:p,h:p,... [--clients N]
 *              [--duration-ms MS] [--acked FILE] [--prefix P] [--threads T]
 *              [--ca FILE] [--query CYPHER] [--warm 0|1] [--ready FILE]
 *              [--go FILE]
 *
 * The measured window starts once every client is connected and has had
 * one write acknowledged (--warm 1, the default): the TCP connects, the
 * TLS handshakes (--ca), the servers' first check of the credentials and
 * the followers' first connections to the leader happen before it, and
 * neither the warm-up writes, their time nor the generator's CPU for them
 * count. (Before 2026-12-05 14:00 UTC the clock started before the
 * connects: --warm 0 does that, and is what a caller that times events
 * from the program's start wants: bench_faults.sh, bench_cluster.sh's
 * failover run.) Clients whose warm-up write is still not acknowledged
 * after 30 s are left out of the window: window_clients= says how many
 * were in it (clients= is how many were asked for).
 *
 * --ready FILE: "warm" is written to FILE (a FIFO, say) when the warm-up
 * is over (with --warm 0: at once), for a caller that samples the servers'
 * CPU over the window (bench_cluster.sh). With --go FILE as well (a FIFO
 * the caller holds open), the window starts only once a line can be read
 * from it: the caller samples, then writes "go". No line within 30 s, or
 * the FIFO's writer gone, ends the run with status 1 and no figures.
 *
 * --query: LoraDB writes of this statement instead of CREATE (:Bench ...),
 * with $k (the request's key, a string) and $n (a number unique to the
 * request), e.g. 'MATCH (u:U {i: $n % 1000}) SET u.v = $k'.
 * --ca: https, the servers' certificates verified against FILE (TLS with
 * mbedtls through node/tls_conn.c; with --warm 0 a connection's
 * handshake is part of its first write's latency).
 *
 * All clients run on T threads (default 1), each an epoll loop over its
 * share of non-blocking sockets: the generator takes CPU from the servers
 * it measures, and on this VM every thread hand-off and syscall is costly,
 * so a write costs one send, one recv and a share of one epoll_wait.
 *
 * A failed write (status other than 200, lost connection, malformed or
 * oversized response, no answer within 5 s) counts one error, closes the
 * connection and is retried after 10 ms on the next endpoint with the same
 * key (LoraDB: the same requestId, so it is applied once); latency counts
 * from the first attempt, and retries stop at the end of the run. With
 * --acked, every acknowledgement (the warm-up's too) is written to FILE as
 * "ack_wall_ms attempt_wall_ms" (when the successful attempt started), for
 * measuring the time from a leader kill to the first write sent after it
 * and acknowledged.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lora.h"
#include "tls.h" /* node/tls_conn.c: TLS over our own sockets (--ca) */

#define BENCH_CLIENTS_MAX     512
#define BENCH_THREADS_MAX     16
#define BENCH_ENDPOINTS_MAX   8
#define BENCH_SAMPLES_MAX     (1u << 22) /* latency samples per thread */
#define BENCH_BODY_BYTES      512
#define BENCH_REQ_BYTES       1024
#define BENCH_RESP_BYTES_MAX  (64 * 1024)
#define BENCH_EVENTS_MAX      64
#define BENCH_CALL_TIMEOUT_NS (5000 * 1000000ull)
#define BENCH_RETRY_NS        (10 * 1000000ull)
#define BENCH_WAIT_MAX_MS     1000
#define BENCH_WARM_MAX_NS     (30000 * 1000000ull) /* warm-up at most */
#define BENCH_GO_WAIT_MAX_MS  30000 /* --go: wait for the line at most */

struct bench {
	int etcd;
	char endpoints[BENCH_ENDPOINTS_MAX][64];
	struct sockaddr_storage addr[BENCH_ENDPOINTS_MAX];
	socklen_t addr_len[BENCH_ENDPOINTS_MAX];
	int n_endpoints;
	int clients;
	int threads;
	long duration_ms;
	uint64_t end_ns;
	const char *prefix;
	/* --query: the LoraDB statement (JSON-safe text, no quotes), with $k
	 * the request's key and $n a number unique to the request; NULL:
	 * CREATE (:Bench {k: $k}) */
	const char *query;
	/* "Authorization: ...\r\n" from BENCH_AUTHORIZATION (LoraDB with
	 * authentication on), or "" */
	char authz[512];
	FILE *acked;
	pthread_mutex_t mu;       /* guards acked */
	struct node_tls_ctx *tls; /* --ca FILE: https (LoraDB only) */
	int warm;                 /* --warm: window after one write each */
	const char *ready;        /* --ready FILE, or NULL */
	const char *go;           /* --go FILE, or NULL */
	int no_go;                /* --go: no line came; the run is void */
	pthread_barrier_t bar;    /* the workers meet at the window's start */
	/* the workers wait here until main has started them all (gate 1) or
	 * given up after a failed pthread_create (gate -1: they return) */
	pthread_mutex_t gate_mu;
	pthread_cond_t gate_cv;
	int gate;
	uint64_t start_ms;    /* the program's start */
	uint64_t warm_end_ms; /* the warm-up's end (before --go's wait) */
	uint64_t t0_ms;       /* the window's start */
	double cpu0_us;       /* the process's CPU then */
};

enum conn_state {
	C_WAIT,       /* closed, retrying at timer_ns */
	C_CONNECTING, /* non-blocking connect in progress */
	C_HANDSHAKE,  /* TLS handshake in progress (--ca) */
	C_SEND,       /* request partly sent, waiting for EPOLLOUT */
	C_RECV,       /* request sent, reading the response */
	C_READY,      /* warm-up write acknowledged: waits for the window */
	C_DONE,       /* run over, closed */
};

struct conn {
	int fd;
	struct node_tls_conn *tls; /* NULL: plaintext */
	enum conn_state state;
	uint32_t ev_mask;  /* events registered with epoll */
	int idx;           /* client number */
	int ep;            /* endpoint of the current attempt */
	long seq;          /* number of the current key */
	uint64_t t0_ns;    /* first attempt of the current key */
	uint64_t timer_ns; /* attempt deadline, or retry time in C_WAIT */
	uint64_t attempt_wall_ms;
	size_t out_len, out_off, in_len;
	char out[BENCH_REQ_BYTES];
	char in[BENCH_RESP_BYTES_MAX];
};

struct worker {
	pthread_t th;
	struct bench *b;
	int epfd;
	struct conn *conns; /* borrowed slice of the array main owns */
	int n, active;      /* conns, conns not C_DONE */
	int warming;        /* before the window: warm-up writes */
	int warm_left;      /* conns whose warm-up write is not answered */
	int in_window;      /* conns that entered the window */
	uint64_t next_timer_ns;
	uint32_t *lat_us; /* BENCH_SAMPLES_MAX, owned */
	size_t n_lat, acks;
	long errors, warm_errors;
};

struct resp {
	int status;
	int close;     /* Connection: close */
	int until_eof; /* no length: the body ends with the connection */
};

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void b64(const char *in, char *out)
{
	static const char t[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
	    "yz0123456789+/";
	size_t n = strlen(in), o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = 0;
}

static void make_body(const struct bench *b, const char *key, long n,
                      char *body)
{
	if (b->etcd) {
		char k[128], v[128];
		b64(key, k);
		b64("v", v);
		snprintf(body, BENCH_BODY_BYTES,
		         "{\"key\": \"%s\", \"value\": \"%s\"}", k, v);
	} else {
		snprintf(body, BENCH_BODY_BYTES,
		         "{\"query\": \"%s\", \"params\": "
		         "{\"k\": \"%s\", \"n\": %ld}, \"requestId\": \"%s\"}",
		         b->query ? b->query : "CREATE (:Bench {k: $k})", key,
		         n, key);
	}
}

/* Writes the request for the conn's current key and endpoint to c->out. */
static void make_request(const struct bench *b, struct conn *c)
{
	char key[96], body[BENCH_BODY_BYTES];
	snprintf(key, sizeof(key), "%s-%d-%ld", b->prefix, c->idx, c->seq);
	make_body(b, key, c->seq * BENCH_CLIENTS_MAX + c->idx, body);
	int n = snprintf(c->out, sizeof(c->out),
	                 "POST %s HTTP/1.1\r\nHost: %s\r\n%s"
	                 "Content-Type: application/json\r\n"
	                 "Content-Length: %zu\r\n\r\n%s",
	                 b->etcd ? "/v3/kv/put" : "/query", b->endpoints[c->ep],
	                 b->authz, strlen(body), body);
	c->out_len = n < 0 || (size_t)n >= sizeof(c->out) ? 0 : (size_t)n;
}

/* ---- response parsing: re-parsed from the start as bytes arrive ---- */

/* Length of a chunked body at p (through the trailer's empty line), 0 if
 * incomplete, -1 if malformed. */
static long chunked_len(const char *p, size_t n)
{
	size_t off = 0;
	for (;;) {
		const char *eol = memmem(p + off, n - off, "\r\n", 2);
		if (eol == NULL)
			return 0;
		size_t sz = 0, digits = 0;
		for (const char *q = p + off; q < eol; q++, digits++) {
			int d = *q >= '0' && *q <= '9'   ? *q - '0'
			        : *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
			        : *q >= 'A' && *q <= 'F' ? *q - 'A' + 10
			                                 : -1;
			if (d < 0)
				break; /* a chunk extension follows */
			sz = sz * 16 + (size_t)d;
			if (sz > BENCH_RESP_BYTES_MAX)
				return -1;
		}
		if (digits == 0)
			return -1;
		off = (size_t)(eol - p) + 2;
		if (sz == 0)
			break;
		if (n - off < sz + 2)
			return 0;
		if (memcmp(p + off + sz, "\r\n", 2) != 0)
			return -1;
		off += sz + 2;
	}
	for (;;) { /* trailer fields, then an empty line */
		const char *eol = memmem(p + off, n - off, "\r\n", 2);
		if (eol == NULL)
			return 0;
		size_t len = (size_t)(eol - (p + off));
		off += len + 2;
		if (len == 0)
			return (long)off;
	}
}

/* Reads the header lines in [p, end): sets *cl (-1 if absent), *chunked and
 * r->close. Returns -1 on a malformed Content-Length. */
static int parse_headers(const char *p, const char *end, long *cl, int *chunked,
                         struct resp *r)
{
	*cl = -1, *chunked = 0;
	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		const char *le = eol ? eol : end;
		const char *colon = memchr(p, ':', (size_t)(le - p));
		if (colon) {
			size_t nl = (size_t)(colon - p);
			char v[128];
			const char *vp = colon + 1;
			while (vp < le && (*vp == ' ' || *vp == '\t'))
				vp++;
			snprintf(v, sizeof(v), "%.*s", (int)(le - vp), vp);
			if (nl == 14 && !strncasecmp(p, "content-length", nl)) {
				char *e;
				*cl = strtol(v, &e, 10);
				if (e == v || *cl < 0)
					return -1;
			} else if (nl == 17 &&
			           !strncasecmp(p, "transfer-encoding", nl)) {
				*chunked = strcasestr(v, "chunked") != NULL;
			} else if (nl == 10 &&
			           !strncasecmp(p, "connection", nl)) {
				r->close = strcasestr(v, "close") != NULL;
			}
		}
		p = le + 2;
	}
	return 0;
}

/* Parses the response at the start of buf: its length once complete, 0 if
 * more bytes are needed, -1 if malformed. */
static long resp_parse(const char *buf, size_t len, struct resp *r)
{
	memset(r, 0, sizeof(*r));
	const char *he = memmem(buf, len, "\r\n\r\n", 4);
	if (he == NULL)
		return 0;
	if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		r->status = r->status * 10 + (buf[i] - '0');
	}
	const char *first_eol = memmem(buf, len, "\r\n", 2);
	long cl;
	int chunked;
	if (parse_headers(first_eol + 2, he + 2, &cl, &chunked, r))
		return -1;
	size_t hl = (size_t)(he - buf) + 4;
	if (r->status < 200 || r->status == 204 || r->status == 304)
		return (long)hl;
	if (chunked) {
		long bl = chunked_len(buf + hl, len - hl);
		return bl <= 0 ? bl : (long)hl + bl;
	}
	if (cl >= 0)
		return len - hl >= (size_t)cl ? (long)hl + cl : 0;
	r->until_eof = 1;
	return 0;
}

/* ---- connections ---- */

static void timer_set(struct worker *w, struct conn *c, uint64_t at_ns)
{
	c->timer_ns = at_ns;
	if (at_ns < w->next_timer_ns)
		w->next_timer_ns = at_ns;
}

static int conn_watch(struct worker *w, struct conn *c, uint32_t mask)
{
	if (mask == c->ev_mask)
		return 0;
	struct epoll_event ev = {.events = mask, .data.ptr = c};
	c->ev_mask = mask;
	return epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_close(struct conn *c)
{
	node_tls_conn_free(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->ev_mask = 0;
	c->in_len = 0;
}

static void conn_finish(struct worker *w, struct conn *c)
{
	conn_close(c);
	if (w->warming && c->state != C_READY)
		w->warm_left--; /* gave up warming: not in the window */
	c->state = C_DONE;
	w->active--;
}

static void conn_fail(struct worker *w, struct conn *c, uint64_t now)
{
	w->errors++;
	conn_close(c);
	c->ep = (c->ep + 1) % w->b->n_endpoints;
	if (now >= w->b->end_ns) {
		conn_finish(w, c);
		return;
	}
	c->state = C_WAIT;
	timer_set(w, c, now + BENCH_RETRY_NS);
}

/* Sends what is left of the request; waits for EPOLLOUT if the socket is
 * full. */
static ssize_t conn_write(struct conn *c, const char *p, size_t len)
{
	return c->tls ? node_tls_send(c->tls, p, len)
	              : send(c->fd, p, len, MSG_NOSIGNAL);
}

static void conn_send(struct worker *w, struct conn *c, uint64_t now)
{
	while (c->out_off < c->out_len ||
	       (c->tls && node_tls_flush(c->tls) != 0)) {
		ssize_t n = c->out_off < c->out_len
		                ? conn_write(c, c->out + c->out_off,
		                             c->out_len - c->out_off)
		                : -1;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			c->state = C_SEND;
			if (conn_watch(w, c, EPOLLIN | EPOLLOUT))
				conn_fail(w, c, now);
			return;
		}
		if (n <= 0) {
			conn_fail(w, c, now);
			return;
		}
		c->out_off += (size_t)n;
	}
	c->state = C_RECV;
	if (conn_watch(w, c, EPOLLIN))
		conn_fail(w, c, now);
}

static void conn_handshake(struct worker *w, struct conn *c, uint64_t now);

/* Starts a non-blocking connect to c->ep: 0 if it completed, 1 if in
 * progress, -1 on failure. */
static int conn_connect(struct worker *w, struct conn *c)
{
	const struct bench *b = w->b;
	c->fd = socket(b->addr[c->ep].ss_family,
	               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc = connect(c->fd, (const struct sockaddr *)&b->addr[c->ep],
	                 b->addr_len[c->ep]);
	if (rc < 0 && errno != EINPROGRESS)
		return -1;
	c->ev_mask = rc == 0 ? EPOLLIN : EPOLLOUT;
	struct epoll_event ev = {.events = c->ev_mask, .data.ptr = c};
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev))
		return -1;
	return rc == 0 ? 0 : 1;
}

/* One attempt at the current key, on a kept-alive or a new connection. */
static void conn_attempt(struct worker *w, struct conn *c, uint64_t now)
{
	c->attempt_wall_ms = w->b->acked ? wall_ms() : 0;
	make_request(w->b, c);
	c->out_off = 0;
	c->in_len = 0;
	timer_set(w, c, now + BENCH_CALL_TIMEOUT_NS);
	if (c->out_len == 0) { /* request did not fit: not sendable */
		conn_fail(w, c, now);
		return;
	}
	if (c->fd >= 0) {
		conn_send(w, c, now);
		return;
	}
	int rc = conn_connect(w, c);
	if (rc < 0)
		conn_fail(w, c, now);
	else if (rc == 0 && w->b->tls)
		conn_handshake(w, c, now);
	else if (rc == 0)
		conn_send(w, c, now);
	else
		c->state = C_CONNECTING;
}

/* Moves to the next key, or ends the client when the run is over. */
static void conn_next(struct worker *w, struct conn *c, uint64_t now)
{
	if (now >= w->b->end_ns) {
		conn_finish(w, c);
		return;
	}
	c->seq++;
	c->t0_ns = now;
	conn_attempt(w, c, now);
}

/* --acked: one line per acknowledgement, warm-up writes included. */
static void conn_log_ack(struct worker *w, const struct conn *c)
{
	if (w->b->acked == NULL)
		return;
	pthread_mutex_lock(&w->b->mu);
	fprintf(w->b->acked, "%llu %llu\n", (unsigned long long)wall_ms(),
	        (unsigned long long)c->attempt_wall_ms);
	pthread_mutex_unlock(&w->b->mu);
}

/* An acknowledgement in the window: counted, its latency kept. */
static void conn_ack(struct worker *w, struct conn *c, uint64_t now)
{
	uint64_t us = (now - c->t0_ns) / 1000;
	w->acks++;
	if (w->n_lat < BENCH_SAMPLES_MAX)
		w->lat_us[w->n_lat++] =
		    us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* A whole response of `len` bytes is at the start of c->in. */
static void conn_response(struct worker *w, struct conn *c,
                          const struct resp *r, size_t len, uint64_t now)
{
	if (r->status != 200) {
		conn_fail(w, c, now);
		return;
	}
	conn_log_ack(w, c);
	if (!w->warming)
		conn_ack(w, c, now);
	if (r->close || r->until_eof) {
		conn_close(c);
	} else {
		memmove(c->in, c->in + len, c->in_len - len);
		c->in_len -= len;
	}
	if (w->warming) { /* the window starts when all are here */
		c->state = C_READY;
		c->timer_ns = UINT64_MAX;
		w->warm_left--;
		return;
	}
	conn_next(w, c, now);
}

/* TLS handshake steps after the TCP connect (--ca). */
static void conn_handshake(struct worker *w, struct conn *c, uint64_t now)
{
	if (c->tls == NULL &&
	    node_tls_conn_new(w->b->tls, c->fd, NULL, &c->tls) != 0) {
		conn_fail(w, c, now);
		return;
	}
	if (node_tls_handshake(c->tls) == 0) {
		conn_send(w, c, now);
		return;
	}
	c->state = C_HANDSHAKE;
	if (errno != EAGAIN ||
	    conn_watch(w, c,
	               node_tls_wants(c->tls) == POLLOUT ? EPOLLOUT : EPOLLIN))
		conn_fail(w, c, now);
}

static void conn_read(struct worker *w, struct conn *c, uint64_t now)
{
	struct resp r;
	ssize_t n = c->tls ? node_tls_recv(c->tls, c->in + c->in_len,
	                                   sizeof(c->in) - c->in_len)
	                   : recv(c->fd, c->in + c->in_len,
	                          sizeof(c->in) - c->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		conn_fail(w, c, now);
		return;
	}
	if (n == 0) { /* EOF: completes only a body without a length */
		long len = resp_parse(c->in, c->in_len, &r);
		if (len == 0 && r.until_eof)
			conn_response(w, c, &r, c->in_len, now);
		else
			conn_fail(w, c, now);
		return;
	}
	c->in_len += (size_t)n;
	long len = resp_parse(c->in, c->in_len, &r);
	if (len < 0 || (len == 0 && c->in_len == sizeof(c->in)))
		conn_fail(w, c, now);
	else if (len > 0)
		conn_response(w, c, &r, (size_t)len, now);
	else if (c->tls && node_tls_pending(c->tls))
		conn_read(w, c, now); /* held by TLS: epoll would not say */
}

static void conn_event(struct worker *w, struct conn *c, uint32_t ev,
                       uint64_t now)
{
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) || err)
			conn_fail(w, c, now);
		else if (w->b->tls)
			conn_handshake(w, c, now);
		else
			conn_send(w, c, now);
	} else if (c->state == C_HANDSHAKE) {
		conn_handshake(w, c, now);
	} else if (c->state == C_SEND && (ev & EPOLLOUT)) {
		conn_send(w, c, now);
	} else if (c->state == C_RECV || c->state == C_SEND) {
		conn_read(w, c, now); /* data, EOF or a socket error */
	} else if (c->state == C_READY) {
		conn_close(c); /* closed by the server: the window reconnects */
	}
}

/* ---- worker loop ---- */

static void worker_timers(struct worker *w, uint64_t now)
{
	w->next_timer_ns = UINT64_MAX;
	for (int i = 0; i < w->n; i++) {
		struct conn *c = &w->conns[i];
		if (c->state != C_DONE && now >= c->timer_ns) {
			if (c->state != C_WAIT)
				conn_fail(w, c, now); /* attempt timed out */
			else if (now >= w->b->end_ns)
				conn_finish(w, c);
			else
				conn_attempt(w, c, now);
		}
		if (c->state != C_DONE && c->timer_ns < w->next_timer_ns)
			w->next_timer_ns = c->timer_ns;
	}
}

static int worker_wait_ms(const struct worker *w, uint64_t now)
{
	if (w->next_timer_ns <= now)
		return 0;
	uint64_t ms = (w->next_timer_ns - now + 999999) / 1000000;
	return ms > BENCH_WAIT_MAX_MS ? BENCH_WAIT_MAX_MS : (int)ms;
}

/* The epoll loop until no conn is active or, warming, none is left to
 * warm. */
static void worker_loop(struct worker *w)
{
	struct epoll_event ev[BENCH_EVENTS_MAX];
	uint64_t now = lora_now_ns();
	while (w->active > 0 && (!w->warming || w->warm_left > 0)) {
		int n = epoll_wait(w->epfd, ev, BENCH_EVENTS_MAX,
		                   worker_wait_ms(w, now));
		if (n < 0 && errno != EINTR)
			break;
		now = lora_now_ns();
		for (int i = 0; i < n; i++)
			conn_event(w, ev[i].data.ptr, ev[i].events, now);
		if (now >= w->next_timer_ns)
			worker_timers(w, now);
	}
}

static double cpu_now_us(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* --go: 0 once a line could be read from FILE within
 * BENCH_GO_WAIT_MAX_MS, -1 if none came, its writer is gone or it cannot
 * be opened. */
static int wait_go(const char *path)
{
	/* O_NONBLOCK: the open does not wait for a writer */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	uint64_t deadline = lora_now_ms() + BENCH_GO_WAIT_MAX_MS;
	int rc = -1;
	for (uint64_t now; (now = lora_now_ms()) < deadline;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int n = poll(&p, 1, (int)(deadline - now));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		char line[16];
		ssize_t r = read(fd, line, sizeof line);
		if (r > 0)
			rc = 0;
		if (r >= 0 || (errno != EAGAIN && errno != EINTR))
			break; /* a line, or EOF: the writer is gone */
	}
	close(fd);
	return rc;
}

/* The warm-up is over: --ready told and --go waited for, then the window
 * starts: its clock and the CPU then. Without a go, b->no_go and every
 * client ends at once. */
static void window_start(struct bench *b)
{
	b->warm_end_ms = lora_now_ms();
	FILE *f = b->ready ? fopen(b->ready, "w") : NULL;
	if (f) {
		fputs("warm\n", f);
		fclose(f);
	}
	if (b->go && wait_go(b->go) != 0) {
		b->no_go = 1;
		b->end_ns = 0;
		return;
	}
	b->t0_ms = lora_now_ms();
	b->end_ns = lora_now_ns() + (uint64_t)b->duration_ms * 1000000u;
	b->cpu0_us = cpu_now_us();
}

/* With --warm: one write per conn, then all workers meet and the window
 * starts with what was set up. */
static void worker_warm(struct worker *w)
{
	struct bench *b = w->b;
	w->warming = 1;
	w->warm_left = w->n;
	uint64_t now = lora_now_ns();
	for (int i = 0; i < w->n; i++)
		conn_next(w, &w->conns[i], now);
	worker_loop(w);
	if (pthread_barrier_wait(&b->bar) == PTHREAD_BARRIER_SERIAL_THREAD)
		window_start(b);
	pthread_barrier_wait(&b->bar);
	w->warming = 0;
	w->warm_errors = w->errors;
	w->errors = 0;
	now = lora_now_ns();
	w->next_timer_ns = UINT64_MAX;
	for (int i = 0; i < w->n; i++) {
		struct conn *c = &w->conns[i];
		w->in_window += c->state == C_READY;
		if (c->state == C_READY)
			conn_next(w, c, now);
		else if (c->state != C_DONE) /* warm-up ran out: not in it */
			conn_finish(w, c);
	}
}

/* Workers wait for main's verdict: 1 all threads started, -1 give up. */
static int gate_wait(struct bench *b)
{
	pthread_mutex_lock(&b->gate_mu);
	while (b->gate == 0)
		pthread_cond_wait(&b->gate_cv, &b->gate_mu);
	int g = b->gate;
	pthread_mutex_unlock(&b->gate_mu);
	return g;
}

static void gate_open(struct bench *b, int g)
{
	pthread_mutex_lock(&b->gate_mu);
	b->gate = g;
	pthread_cond_broadcast(&b->gate_cv);
	pthread_mutex_unlock(&b->gate_mu);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	if (gate_wait(w->b) < 0)
		return NULL; /* not all threads started: no run */
	if (w->b->warm) {
		worker_warm(w);
	} else {
		uint64_t now = lora_now_ns();
		w->in_window = w->n;
		for (int i = 0; i < w->n; i++)
			conn_next(w, &w->conns[i], now);
	}
	worker_loop(w);
	for (int i = 0; i < w->n; i++)
		conn_close(&w->conns[i]);
	return NULL;
}

/* ---- setup and report ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void report(const struct bench *b, const struct worker *ws,
                   uint64_t elapsed_ms)
{
	size_t total = 0, n_lat = 0, k = 0;
	long errors = 0, warm_errors = 0;
	int in_window = 0;
	for (int i = 0; i < b->threads; i++) {
		total += ws[i].acks, n_lat += ws[i].n_lat;
		in_window += ws[i].in_window;
		errors += ws[i].errors;
		warm_errors += ws[i].warm_errors;
	}
	uint32_t *all = calloc(n_lat ? n_lat : 1, sizeof(uint32_t));
	for (int i = 0; all && i < b->threads; i++) {
		memcpy(all + k, ws[i].lat_us, ws[i].n_lat * sizeof(uint32_t));
		k += ws[i].n_lat;
	}
	double p50 = 0, p99 = 0;
	if (all && n_lat) {
		qsort(all, n_lat, sizeof(uint32_t), cmp_u32);
		p50 = all[n_lat / 2] / 1000.0;
		p99 = all[n_lat * 99 / 100] / 1000.0;
	}
	free(all);
	double cpu_us = cpu_now_us() - b->cpu0_us;
	if (in_window < b->clients)
		fprintf(stderr,
		        "bench_http: only %d of %d clients in the window (the "
		        "others' warm-up write failed for 30 s)\n",
		        in_window, b->clients);
	printf("system=%s clients=%d window_clients=%d writes=%zu errors=%ld "
	       "seconds=%.1f writes_per_s=%.0f p50_ms=%.2f p99_ms=%.2f "
	       "gen_cpu_us_per_write=%.1f warm=%d warm_ms=%llu "
	       "warm_errors=%ld warm_cpu_ms=%.0f\n",
	       b->etcd ? "etcd" : "lora", b->clients, in_window, total, errors,
	       elapsed_ms / 1000.0,
	       elapsed_ms ? total * 1000.0 / (double)elapsed_ms : 0.0, p50, p99,
	       total ? cpu_us / (double)total : 0.0, b->warm,
	       (unsigned long long)(b->warm_end_ms - b->start_ms), warm_errors,
	       b->cpu0_us / 1000.0);
}

/* Splits "host:port" and resolves it once, before the run. */
static int resolve(struct bench *b, int i)
{
	char host[64];
	snprintf(host, sizeof(host), "%s", b->endpoints[i]);
	char *colon = strrchr(host, ':');
	if (colon == NULL)
		return -1;
	*colon = 0;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &ai) || ai == NULL)
		return -1;
	memcpy(&b->addr[i], ai->ai_addr, ai->ai_addrlen);
	b->addr_len[i] = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int parse_endpoints(struct bench *b, const char *eps)
{
	for (const char *p = eps; *p && b->n_endpoints < BENCH_ENDPOINTS_MAX;) {
		size_t len = strcspn(p, ",");
		snprintf(b->endpoints[b->n_endpoints], 64, "%.*s", (int)len, p);
		if (resolve(b, b->n_endpoints++)) {
			fprintf(stderr, "bench_http: cannot resolve %.*s\n",
			        (int)len, p);
			return -1;
		}
		p += len + (p[len] == ',');
	}
	return b->n_endpoints ? 0 : -1;
}

static int parse(int argc, char **argv, struct bench *b)
{
	const char *eps = NULL, *acked = NULL;
	b->clients = 1, b->threads = 1, b->duration_ms = 10000, b->prefix = "b";
	b->warm = 1;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--mode"))
			b->etcd = !strcmp(argv[i + 1], "etcd");
		else if (!strcmp(argv[i], "--endpoints"))
			eps = argv[i + 1];
		else if (!strcmp(argv[i], "--clients"))
			b->clients = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--duration-ms"))
			b->duration_ms = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--acked"))
			acked = argv[i + 1];
		else if (!strcmp(argv[i], "--prefix"))
			b->prefix = argv[i + 1];
		else if (!strcmp(argv[i], "--query"))
			b->query = argv[i + 1];
		else if (!strcmp(argv[i], "--threads"))
			b->threads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--warm"))
			b->warm = atoi(argv[i + 1]) != 0;
		else if (!strcmp(argv[i], "--ready"))
			b->ready = argv[i + 1];
		else if (!strcmp(argv[i], "--go"))
			b->go = argv[i + 1];
		else if (!strcmp(argv[i], "--ca")) {
			struct node_tls t = {.mode = NODE_TLS_REQUIRED};
			char err[LORA_ERRMSG_BYTES];
			snprintf(t.ca, sizeof t.ca, "%s", argv[i + 1]);
			if (node_tls_ctx_new(&t, 0, &b->tls, err) != 0) {
				fprintf(stderr, "bench_http: %s\n", err);
				return -1;
			}
		} else
			return -1;
	}
	if (eps == NULL || b->clients < 1 || b->clients > BENCH_CLIENTS_MAX ||
	    b->threads < 1 || b->threads > BENCH_THREADS_MAX ||
	    parse_endpoints(b, eps))
		return -1;
	if (b->threads > b->clients)
		b->threads = b->clients;
	if (acked && (b->acked = fopen(acked, "w")) == NULL)
		return -1;
	return 0;
}

/* Gives worker t the clients [t*n/T, (t+1)*n/T). */
static int workers_init(struct bench *b, struct worker *ws, struct conn *conns)
{
	for (int i = 0; i < b->clients; i++) {
		/* conns is calloc'd: only the fields that are not zero, so
		 * that the untouched receive buffers stay unmapped */
		conns[i].fd = -1;
		conns[i].idx = i;
		conns[i].ep = i % b->n_endpoints;
		conns[i].seq = -1;
	}
	for (int t = 0; t < b->threads; t++) {
		struct worker *w = &ws[t];
		int lo = t * b->clients / b->threads;
		int hi = (t + 1) * b->clients / b->threads;
		*w = (struct worker){.b = b,
		                     .conns = conns + lo,
		                     .n = hi - lo,
		                     .active = hi - lo,
		                     .next_timer_ns = UINT64_MAX};
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->lat_us = malloc(BENCH_SAMPLES_MAX * sizeof(uint32_t));
		if (w->epfd < 0 || w->lat_us == NULL)
			return -1;
	}
	return 0;
}

static void workers_free(struct bench *b, struct worker *ws)
{
	for (int t = 0; t < b->threads; t++) {
		if (ws[t].epfd > 0)
			close(ws[t].epfd);
		free(ws[t].lat_us);
	}
}

int main(int argc, char **argv)
{
	struct bench b = {.mu = PTHREAD_MUTEX_INITIALIZER,
	                  .gate_mu = PTHREAD_MUTEX_INITIALIZER,
	                  .gate_cv = PTHREAD_COND_INITIALIZER,
	                  .start_ms = lora_now_ms()};
	if (parse(argc, argv, &b)) {
		fprintf(stderr,
		        "usage: bench_http --mode lora|etcd --endpoints "
		        "h:p,... [--clients N] [--duration-ms MS] "
		        "[--acked FILE] [--prefix P] [--threads T] [--ca FILE] "
		        "[--query CYPHER] [--warm 0|1] [--ready FILE] "
		        "[--go FILE]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	const char *az = getenv("BENCH_AUTHORIZATION");
	if (az && !b.etcd &&
	    (size_t)snprintf(b.authz, sizeof b.authz, "Authorization: %s\r\n",
	                     az) >= sizeof b.authz)
		b.authz[0] = '\0';
	struct worker *ws = calloc((size_t)b.threads, sizeof(*ws));
	struct conn *conns = calloc((size_t)b.clients, sizeof(*conns));
	int rc = ws && conns ? workers_init(&b, ws, conns) : -1;
	if (rc == 0 && b.warm) { /* warm-up's end; window_start sets the rest */
		b.end_ns = lora_now_ns() + BENCH_WARM_MAX_NS;
		rc = pthread_barrier_init(&b.bar, NULL, (unsigned)b.threads);
	} else if (rc == 0) {
		window_start(&b);
	}
	int started = 0;
	while (rc == 0 && started < b.threads &&
	       pthread_create(&ws[started].th, NULL, worker_main,
	                      &ws[started]) == 0)
		started++;
	/* the barrier counts every thread: if one did not start, none runs */
	int all = rc == 0 && started == b.threads;
	gate_open(&b, all ? 1 : -1);
	for (int t = 0; t < started; t++)
		pthread_join(ws[t].th, NULL);
	if (all && !b.no_go)
		report(&b, ws, lora_now_ms() - b.t0_ms);
	else if (all)
		fprintf(stderr,
		        "bench_http: no line on %s (none within %d ms, or "
		        "its writer gone): no figures\n",
		        b.go, BENCH_GO_WAIT_MAX_MS);
	else
		fprintf(stderr,
		        "bench_http: out of memory or threads (%d of %d "
		        "threads started)\n",
		        started, b.threads);
	if (rc == 0 && b.warm)
		pthread_barrier_destroy(&b.bar);
	if (ws)
		workers_free(&b, ws);
	free(ws);
	free(conns);
	if (b.acked)
		fclose(b.acked);
	return all && !b.no_go ? 0 : 1;
}
