/* test_proxy.c - the HTTP proxy of node/proxy.h alone, over real sockets on
 * 127.1.110.1: a follower's front (an HTTP server of http.h whose handler
 * passes every request on with node_proxy_write, or node_proxy_start on
 * the I/O thread) and two leader stubs (HTTP servers answering as the
 * leaders 2 and 3), with a leader the test sets. A passed-on write is
 * answered and its connection reused; a leader change mid-request sends
 * a write with a requestId to the new leader and keeps one without
 * waiting for its own; the new leader's 503 LORA_UNAVAILABLE to a resend
 * is not relayed; a leader that never answers gives
 * LORA_UNKNOWN_OUTCOME at the deadline, a silent one after silent_ms; a
 * pooled connection the leader closed is dialed again; an answer past the
 * limit is not relayed; concurrent writes stay within the pool's cap; a
 * waiting write wakes for its answer, not on a period; with TLS, the
 * leader's certificate must name it (certificates from
 * deploy/gen-certs.sh). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "batch.h"
#include "config.h"
#include "http.h"
#include "lora.h"
#include "proxy.h"
#include "thread.h"
#include "tls.h"

#define T_ADDR       "127.1.110.1"
#define T_WAIT_MS    10000       /* generous: the machine is shared */
#define T_DELAY_MS   300         /* /delay: the stub answers this much later */
#define T_REPLY_MAX  1024        /* the proxy's reply_bytes_max here */
#define T_LARGE      (40u << 10) /* /large's answer */
#define T_RESP_BYTES (64u << 10)
#define T_SELF       1 /* the follower's id; the stubs are 2 and 3 */

/* ---- the world the proxy sees (its ops) and the leader stubs --------- */

struct stub {
	uint64_t id;
	struct node_http *hs;
	int port;
	int entered, served; /* requests that arrived / were answered */
	int last_hops;       /* X-Lora-Forwarded of the last one */
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* node_cond_init: monotonic */
	uint64_t leader, seq;
	int fresh;    /* heard: the leader was just heard from (else never) */
	int stopping; /* ops.stopping */
	int gate;     /* /slow answers once it opens */
	int started;  /* writes the front started on its I/O thread */
	struct stub stubs[2];
	struct node_proxy *p;
	uint64_t wait_ms; /* the front's answer deadline */
	int tls;          /* TLS between the proxy and the stubs */
	int cert_of[2];   /* with tls: whose certificate stubs 2 and 3 show */
	struct node_tls stub_tls[2];
	/* batches (batch.h): the route batched (NULL: none) and requests in
	 * flight; `hold` keeps a batch holding a "hold" write at leader 2
	 * until it opens; refuse_batch: the stubs answer batches 404 (1) or
	 * 503 (2) */
	int batch; /* the front passes /a/b writes with NODE_PROXY_BATCH */
	size_t reply_max; /* the proxy's reply_bytes_max (0: T_REPLY_MAX) */
	int batch_inflight;
	uint64_t retry_ms; /* the proxy's retry_ms (0: 20) */
	int hold, refuse_batch;
	int batches; /* batch requests the stubs answered */
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cert_of = {2, 3}};

static char certdir[64]; /* ca, node2, node3 */

static void certs_make(void)
{
	snprintf(certdir, sizeof certdir, "/tmp/lora-proxy-test.XXXXXX");
	if (mkdtemp(certdir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	char cmd[512];
	snprintf(cmd, sizeof cmd,
	         "%s/deploy/gen-certs.sh %s 2@" T_ADDR " 3@" T_ADDR
	         " >/dev/null",
	         LORA_SOURCE_DIR, certdir);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_proxy: deploy/gen-certs.sh failed\n");
		exit(1);
	}
}

static void certs_remove(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", certdir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_proxy: cannot remove %s\n", certdir);
}

/* TLS settings with the CA, and node id's files (id 0: none). */
static struct node_tls tls_of(int id)
{
	struct node_tls t = {.mode = NODE_TLS_REQUIRED};
	snprintf(t.ca, sizeof t.ca, "%s/ca.pem", certdir);
	if (id) {
		snprintf(t.cert, sizeof t.cert, "%s/node%d.pem", certdir, id);
		snprintf(t.key, sizeof t.key, "%s/node%d.key", certdir, id);
	}
	return t;
}

static struct stub *stub_of(uint64_t id)
{
	return id >= 2 && id <= 3 ? &g.stubs[id - 2] : NULL;
}

static uint64_t o_leader(void *arg, char *addr, size_t size)
{
	(void)arg;
	pthread_mutex_lock(&g.mu);
	uint64_t id = g.leader;
	struct stub *s = stub_of(id);
	if (addr != NULL && size > 0)
		snprintf(addr, size, "%s", "");
	if (addr != NULL && s != NULL)
		snprintf(addr, size, T_ADDR ":%d", s->port);
	pthread_mutex_unlock(&g.mu);
	return id;
}

static uint64_t o_seq(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&g.mu);
	uint64_t s = g.seq;
	pthread_mutex_unlock(&g.mu);
	return s;
}

static int o_wait(void *arg, uint64_t seen, uint64_t deadline_ms)
{
	(void)arg;
	int rc = 0;
	pthread_mutex_lock(&g.mu);
	while (g.seq == seen && !g.stopping && rc == 0)
		rc = node_cond_wait_until(&g.cond, &g.mu, deadline_ms);
	pthread_mutex_unlock(&g.mu);
	return rc;
}

static uint64_t o_heard(void *arg, uint64_t leader, uint64_t since)
{
	(void)arg;
	(void)leader;
	pthread_mutex_lock(&g.mu);
	int fresh = g.fresh;
	pthread_mutex_unlock(&g.mu);
	return fresh ? lora_now_ms() : since;
}

/* Each write's identity line names its body: "u-<body>". */
static void o_ident(void *arg, const struct node_http_ex *x, char *out,
                    size_t size)
{
	(void)arg;
	const char *b;
	size_t len;
	node_http_body(x, &b, &len);
	snprintf(out, size, "X-Lora-Identity: 2 ab u-%.*s\r\n", (int)len, b);
}

static int o_stopping(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&g.mu);
	int s = g.stopping;
	pthread_mutex_unlock(&g.mu);
	return s;
}

/* As the raft loop does: publish, then kick the waiting writes. */
static void set_leader(uint64_t id)
{
	pthread_mutex_lock(&g.mu);
	g.leader = id;
	g.seq++;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.mu);
	node_proxy_kick(g.p);
}

/* /slow: answered once the gate opens (at leader 2; leader 3 answers at
 * once); /u503: leader 3 answers 503 LORA_UNAVAILABLE ("not executed");
 * /delay: T_DELAY_MS after it came;
 * /big: a body of 4 * T_REPLY_MAX bytes; /fit: T_REPLY_MAX bytes; else at
 * once. Every other body: "leader <id> hops <n> <uri> <body>". */
static int stub_batch(struct stub *s, struct node_http_ex *x);

static int stub_work(void *arg, struct node_http_ex *x)
{
	struct stub *s = arg;
	const char *uri = node_http_uri(x), *body;
	size_t len;
	node_http_body(x, &body, &len);
	if (!strcmp(uri, NODE_BATCH_PATH))
		return stub_batch(s, x);
	uint64_t t0 = lora_now_ms(), until = t0 + T_WAIT_MS;
	pthread_mutex_lock(&g.mu);
	s->entered++;
	s->last_hops = node_http_forwarded(x);
	pthread_cond_broadcast(&g.cond);
	if (strstr(uri, "/delay"))
		until = t0 + T_DELAY_MS;
	int slow = (strstr(uri, "/slow") || memmem(body, len, "gate", 4)) &&
	           s->id == 2;
	while ((slow && !g.gate) || strstr(uri, "/delay"))
		if (node_cond_wait_until(&g.cond, &g.mu, until) != 0)
			break;
	s->served++;
	pthread_mutex_unlock(&g.mu);
	if (strstr(uri, "/u503") && s->id == 3) {
		node_http_reply_error(
		    x, LORA_EUNAVAILABLE,
		    "not the leader yet: not executed, retry");
		return NODE_HTTP_ANSWERED;
	}
	if (strstr(uri, "/large")) { /* T_LARGE bytes of 'l' */
		char *l = malloc(T_LARGE);
		ck_assert_ptr_nonnull(l);
		memset(l, 'l', T_LARGE);
		node_http_reply(x, 200, "text/plain", l, T_LARGE, NULL, NULL);
		free(l);
		return NODE_HTTP_ANSWERED;
	}
	static char big[4 * T_REPLY_MAX];
	if (strstr(uri, "/big") || strstr(uri, "/fit")) {
		memset(big, 'b', sizeof big);
		size_t n = strstr(uri, "/big") ? sizeof big : T_REPLY_MAX;
		node_http_reply(x, 200, "text/plain", big, n, NULL, NULL);
		return NODE_HTTP_ANSWERED;
	}
	char out[512];
	int n = snprintf(out, sizeof out, "leader %llu hops %d %s %.*s",
	                 (unsigned long long)s->id, node_http_forwarded(x), uri,
	                 (int)len, body);
	node_http_reply(x, 200, "text/plain", out, (size_t)n, "b7", NULL);
	return NODE_HTTP_ANSWERED;
}

/* A batch: each write answered "leader <id> batch <n> hops <h> <body>",
 * but "untaken" (status 0: sent again alone) and, at leader 3, "u503"
 * (503 LORA_UNAVAILABLE); at leader 2 the whole batch waits for g.hold
 * while a write says "hold". With g.refuse_batch all 404 (1) or 503
 * (2). */
static int stub_batch(struct stub *s, struct node_http_ex *x)
{
	const char *body;
	size_t len, n = 0;
	node_http_body(x, &body, &len);
	struct node_batch_req q[NODE_BATCH_MAX];
	int ok = node_batch_reqs(body, len, q, NODE_BATCH_MAX, &n) == 0;
	int held = 0;
	for (size_t i = 0; ok && i < n; i++)
		held |= memmem(q[i].body, q[i].body_len, "hold", 4) != NULL;
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	pthread_mutex_lock(&g.mu);
	s->entered++;
	s->last_hops = node_http_forwarded(x);
	pthread_cond_broadcast(&g.cond);
	while (held && s->id == 2 && !g.hold)
		if (node_cond_wait_until(&g.cond, &g.mu, until) != 0)
			break;
	s->served++;
	g.batches++;
	int refuse = g.refuse_batch;
	pthread_mutex_unlock(&g.mu);
	int brk = 0, garbage = 0; /* "brk": no answer; "garbage": a bad one */
	for (size_t i = 0; ok && i < n; i++) {
		brk |= memmem(q[i].body, q[i].body_len, "brk", 3) != NULL;
		garbage |=
		    memmem(q[i].body, q[i].body_len, "garbage", 7) != NULL;
	}
	if (brk) {
		node_http_abort(x);
		return NODE_HTTP_ANSWERED;
	}
	if (garbage) {
		node_http_reply(x, 200, NODE_BATCH_CTYPE, "LB1 9\n", 6, NULL,
		                NULL);
		return NODE_HTTP_ANSWERED;
	}
	if (refuse || !ok) {
		node_http_reply_error(x,
		                      refuse == 2 ? LORA_EUNAVAILABLE
		                      : refuse    ? LORA_ENOTFOUND
		                                  : LORA_EINVAL,
		                      "no batches here");
		return NODE_HTTP_ANSWERED;
	}
	struct lora_buf out = {0};
	node_batch_put_head(&out, n);
	for (size_t i = 0; i < n; i++) {
		char one[512];
		static const char u503[] =
		    "{\"error\":{\"code\":\"LORA_UNAVAILABLE\"}}";
		struct node_batch_ans a = {.status = 200,
		                           .bookmark = "b8",
		                           .bookmark_len = 2,
		                           .body = one};
		if (memmem(q[i].body, q[i].body_len, "untaken", 7)) {
			a = (struct node_batch_ans){0};
		} else if (memmem(q[i].body, q[i].body_len, "u503", 4) &&
		           s->id == 3) {
			a = (struct node_batch_ans){.status = 503,
			                            .body = u503,
			                            .body_len =
			                                sizeof u503 - 1};
		} else {
			int w = snprintf(
			    one, sizeof one,
			    "leader %llu batch %zu hops %d %.*s as %.*s",
			    (unsigned long long)s->id, n, q[i].hops,
			    (int)q[i].body_len, q[i].body, (int)q[i].ident_len,
			    q[i].ident);
			a.body_len = (size_t)w;
		}
		node_batch_put_ans(&out, &a);
	}
	ck_assert(!lora_buf_error(&out));
	node_http_reply(x, 200, NODE_BATCH_CTYPE, out.data, out.len, NULL,
	                NULL);
	lora_buf_free(&out);
	return NODE_HTTP_ANSWERED;
}

static int stub_io(void *arg, struct node_http_ex *x)
{
	(void)arg;
	(void)x;
	return NODE_HTTP_TO_WORKER;
}

/* Opens stub id on port (0: any). */
static void stub_open(uint64_t id, int port)
{
	struct stub *s = stub_of(id);
	char addr[64];
	snprintf(addr, sizeof addr, T_ADDR ":%d", port);
	struct node_tls *tls = &g.stub_tls[id - 2];
	*tls = g.tls ? tls_of(g.cert_of[id - 2]) : (struct node_tls){0};
	const struct node_http_cfg cfg = {
	    .addr = addr, .tls = g.tls ? tls : NULL, .workers = 16};
	const struct node_http_ops ops = {
	    .arg = s, .io = stub_io, .work = stub_work};
	char err[256] = "";
	s->id = id;
	int rc = node_http_open(&cfg, &ops, &s->hs, err);
	ck_assert_msg(rc == 0, "stub %llu: %s", (unsigned long long)id, err);
	s->port = node_http_port(s->hs);
}

static void stub_close(uint64_t id)
{
	struct stub *s = stub_of(id);
	pthread_mutex_lock(&g.mu);
	g.gate = 1; /* /slow answers: the workers end */
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.mu);
	node_http_close(s->hs);
	s->hs = NULL;
}

static int stub_get(uint64_t id, int *field)
{
	(void)id;
	pthread_mutex_lock(&g.mu);
	int v = *field;
	pthread_mutex_unlock(&g.mu);
	return v;
}

/* Waits until stub id has had at least n requests arrive. */
static void wait_entered(uint64_t id, int n)
{
	struct stub *s = stub_of(id);
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	pthread_mutex_lock(&g.mu);
	while (s->entered < n &&
	       node_cond_wait_until(&g.cond, &g.mu, until) == 0)
		;
	int e = s->entered;
	pthread_mutex_unlock(&g.mu);
	ck_assert_int_ge(e, n);
}

/* ---- the follower's front -------------------------------------------- */

/* /a/...: started on the I/O thread when a pooled connection is idle. */
static int front_io(void *arg, struct node_http_ex *x)
{
	(void)arg;
	const char *uri = node_http_uri(x);
	if (strncmp(uri, "/a/", 3) != 0)
		return NODE_HTTP_TO_WORKER;
	if (!node_http_on_io_thread(x)) /* node_proxy_start: I/O thread */
		return NODE_HTTP_TO_IO;
	int flags = (strstr(uri, "rid") ? NODE_PROXY_RESEND : 0) |
	            (g.batch ? NODE_PROXY_BATCH : 0);
	if (!strncmp(uri, "/a/b", 4) && /* the batched route */
	    node_proxy_start(g.p, x, "/a/b", "test", flags, g.wait_ms) == 0) {
		pthread_mutex_lock(&g.mu);
		g.started++;
		pthread_cond_broadcast(&g.cond);
		pthread_mutex_unlock(&g.mu);
		return NODE_HTTP_HANDED_ON;
	}
	static const char *paths[] = {"/a/ok", "/a/slow?rid",
	                              "/a/slow/u503?rid",
	                              "/a/large"}; /* outlive x */
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
		if (strcmp(uri, paths[i]) == 0 &&
		    node_proxy_start(g.p, x, paths[i], "test",
		                     strstr(uri, "rid") != NULL,
		                     g.wait_ms) == 0) {
			pthread_mutex_lock(&g.mu);
			g.started++;
			pthread_mutex_unlock(&g.mu);
			return NODE_HTTP_HANDED_ON;
		}
	return NODE_HTTP_TO_WORKER;
}

/* A URI holding "rid" carries a requestId (NODE_PROXY_RESEND). */
static int front_work(void *arg, struct node_http_ex *x)
{
	(void)arg;
	const char *uri = node_http_uri(x), *body;
	size_t len;
	node_http_body(x, &body, &len);
	int flags = strstr(uri, "rid") ? NODE_PROXY_RESEND : 0;
	int rc = node_proxy_write(g.p, x, uri, body, len, flags, g.wait_ms);
	if (rc == NODE_PROXY_SELF)
		node_http_reply(x, 200, "text/plain", "self", 4, NULL, NULL);
	return NODE_HTTP_ANSWERED;
}

static void front_tick(void *arg)
{
	(void)arg;
	node_proxy_tick(g.p);
}

static void front_flush(void *arg)
{
	(void)arg;
	node_proxy_flush(g.p);
}

static void front_stopped(void *arg)
{
	(void)arg;
	node_proxy_drop(g.p);
}

static struct node_http *front;

/* The proxy (pool_max, silent_ms), the stubs and the front; leader 2. */
static void world_open(int pool_max, uint32_t silent_ms, uint64_t wait_ms)
{
	pthread_mutex_lock(&g.mu);
	g.leader = 2;
	g.fresh = 1;
	g.stopping = 0;
	g.gate = 0;
	g.started = 0;
	g.hold = 0;
	g.batches = 0;
	g.wait_ms = wait_ms;
	memset(g.stubs, 0, sizeof g.stubs);
	pthread_mutex_unlock(&g.mu);
	struct node_proxy_cfg cfg = {
	    .self_id = T_SELF,
	    .silent_ms = silent_ms,
	    .send_ms = 2000,
	    .retry_ms = g.retry_ms ? g.retry_ms : 20,
	    .pool_max = pool_max,
	    .reply_bytes_max = g.reply_max ? g.reply_max : T_REPLY_MAX,
	    .batch_inflight = g.batch_inflight};
	const struct node_proxy_ops ops = {.leader = o_leader,
	                                   .leader_seq = o_seq,
	                                   .leader_wait = o_wait,
	                                   .heard = o_heard,
	                                   .ident = o_ident,
	                                   .stopping = o_stopping};
	char err[256] = "";
	if (g.tls) { /* the client side: the CA only */
		struct node_tls t = tls_of(0);
		cfg.tls = 1;
		ck_assert_msg(node_tls_ctx_new(&t, 0, &cfg.tls_ctx, err) == 0,
		              "%s", err);
	}
	ck_assert_int_eq(node_proxy_new(&cfg, &ops, &g.p), 0);
	stub_open(2, 0);
	stub_open(3, 0);
	const struct node_http_cfg fcfg = {.addr = T_ADDR ":0", .workers = 16};
	const struct node_http_ops fops = {.io = front_io,
	                                   .work = front_work,
	                                   .tick = front_tick,
	                                   .flush = front_flush,
	                                   .stopped = front_stopped};
	ck_assert_msg(node_http_open(&fcfg, &fops, &front, err) == 0, "%s",
	              err);
}

static void world_close(void)
{
	stub_close(2);
	stub_close(3);
	node_http_close(front);
	node_proxy_free(g.p);
	g.p = NULL;
	g.batch = 0; /* set by a test before world_open */
	g.reply_max = 0;
	g.batch_inflight = 0;
	g.retry_ms = 0;
}

/* ---- a client of the front -------------------------------------------- */

struct client {
	int fd;
	char buf[T_RESP_BYTES];
	size_t len;
};

static void c_open(struct client *c)
{
	memset(c, 0, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(c->fd, 0);
	struct timeval tv = {T_WAIT_MS / 1000, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(node_http_port(front))};
	inet_pton(AF_INET, T_ADDR, &a.sin_addr);
	ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
}

static void c_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
}

static void c_post(struct client *c, const char *uri, const char *body)
{
	char req[512];
	int n = snprintf(req, sizeof req,
	                 "POST %s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
	                 uri, strlen(body), body);
	ck_assert_int_eq(send(c->fd, req, (size_t)n, MSG_NOSIGNAL), n);
}

/* One answer: its status and its body (NUL-terminated, cut to size). */
static int c_answer(struct client *c, char *body, size_t size)
{
	char *end;
	while ((end = strstr(c->buf, "\r\n\r\n")) == NULL) {
		ssize_t r =
		    recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
		ck_assert_msg(r > 0, "no answer: %zd", r);
		c->len += (size_t)r;
		c->buf[c->len] = 0;
	}
	int status = atoi(c->buf + 9);
	const char *cl = strcasestr(c->buf, "Content-Length: ");
	ck_assert_ptr_nonnull(cl);
	size_t blen = strtoul(cl + 16, NULL, 10);
	size_t head = (size_t)(end - c->buf) + 4;
	while (c->len < head + blen) {
		ssize_t r =
		    recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
		ck_assert_int_gt(r, 0);
		c->len += (size_t)r;
	}
	size_t keep = blen < size - 1 ? blen : size - 1;
	memcpy(body, c->buf + head, keep);
	body[keep] = 0;
	memmove(c->buf, c->buf + head + blen, c->len - head - blen);
	c->len -= head + blen;
	c->buf[c->len] = 0;
	return status;
}

/* Posts and reads the answer on a connection of its own. */
static int post(const char *uri, const char *body, char *out, size_t size)
{
	struct client *c = malloc(sizeof *c);
	ck_assert_ptr_nonnull(c);
	c_open(c);
	c_post(c, uri, body);
	int st = c_answer(c, out, size);
	c_close(c);
	free(c);
	return st;
}

static struct node_proxy_stats stats(void)
{
	struct node_proxy_stats s;
	node_proxy_stats(g.p, &s);
	return s;
}

/* Waits until the pool holds n connections (a worker pools its connection
 * just after the answer left). */
static void wait_pooled(int n)
{
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	while (stats().pooled != n) {
		ck_assert_msg(lora_now_ms() < until, "pooled %d, not %d",
		              stats().pooled, n);
		usleep(1000);
	}
}

/* Waits until a waiting write has woken more than w0 times in all. */
static void wait_wakeups(uint64_t w0)
{
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	while (stats().wakeups <= w0) {
		ck_assert_msg(lora_now_ms() < until, "no wake-up after %llu",
		              (unsigned long long)w0);
		usleep(1000);
	}
}

/* ---- the tests ------------------------------------------------------- */

START_TEST(passed_on_write_answered_on_a_reused_connection)
{
	world_open(0, 60000, 5000);
	char body[1024];
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(post("/w/ok", "abc", body, sizeof body), 200);
		ck_assert_str_eq(body, "leader 2 hops 1 /w/ok abc");
		wait_pooled(1); /* pooled just after the answer left */
	}
	struct node_proxy_stats s = stats();
	ck_assert_uint_eq(s.sent, 3);
	ck_assert_uint_eq(s.dials, 1); /* one connection carried all three */
	ck_assert_uint_eq(s.reused, 2);
	wait_pooled(1);
	struct node_http_stats hs;
	node_http_stats(g.stubs[0].hs, &hs);
	ck_assert_uint_eq(hs.conns, 1);
	/* on the I/O thread, on that same connection */
	ck_assert_int_eq(post("/a/ok", "xy", body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 2 hops 1 /a/ok xy");
	ck_assert_uint_eq(stats().dials, 1);
	/* this node leads: not passed on */
	set_leader(T_SELF);
	ck_assert_int_eq(post("/w/ok", "abc", body, sizeof body), 200);
	ck_assert_str_eq(body, "self");
	world_close();
}
END_TEST

START_TEST(leader_change_resends_only_a_write_with_a_request_id)
{
	world_open(0, 60000, 8000);
	char body[1024];
	/* with a requestId: sent again to the new leader at once */
	struct client c;
	c_open(&c);
	c_post(&c, "/w/slow?rid", "r1");
	wait_entered(2, 1);
	uint64_t t0 = lora_now_ms();
	set_leader(3);
	ck_assert_int_eq(c_answer(&c, body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 3 hops 1 /w/slow?rid r1");
	ck_assert_uint_lt(lora_now_ms() - t0, T_WAIT_MS / 2);
	ck_assert_int_eq(stub_get(3, &g.stubs[1].entered), 1);
	/* without one: never sent twice; its own leader's answer comes. The
	 * gate opens only once the waiting write woke for the change (its
	 * only wake-up before the answer), so it saw leader 3 first */
	set_leader(2);
	c_post(&c, "/w/slow", "n1");
	wait_entered(2, 2);
	uint64_t w0 = stats().wakeups;
	set_leader(3);
	wait_wakeups(w0);
	pthread_mutex_lock(&g.mu);
	g.gate = 1;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.mu);
	ck_assert_int_eq(c_answer(&c, body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 2 hops 1 /w/slow n1");
	ck_assert_int_eq(stub_get(3, &g.stubs[1].entered), 1); /* r1 only */
	c_close(&c);
	world_close();
}
END_TEST

START_TEST(leader_change_resends_a_started_write)
{
	world_open(0, 60000, 8000);
	char body[1024];
	/* a first write leaves a pooled connection to leader 2 */
	ck_assert_int_eq(post("/w/ok", "", body, sizeof body), 200);
	wait_pooled(1);
	struct client c;
	c_open(&c);
	c_post(&c, "/a/slow?rid", "s1"); /* on the I/O thread */
	wait_entered(2, 2);
	set_leader(3); /* the tick sends it on, dialing 3 off the I/O thread */
	ck_assert_int_eq(c_answer(&c, body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 3 hops 1 /a/slow?rid s1");
	c_close(&c);
	world_close();
}
END_TEST

/* A write with a requestId waits at leader 2 (uri: on a worker, /w/, or
 * on the I/O thread, /a/), the leader changes, and leader 3 answers the
 * resend 503 LORA_UNAVAILABLE: that speaks for the resend only (leader 2
 * may have committed the first), so it is never relayed; the write is
 * sent again until the deadline answers LORA_UNKNOWN_OUTCOME. */
static void unavailable_after_resend(const char *uri, int on_io)
{
	enum { WAIT_MS = 1500 };
	world_open(0, 60000, WAIT_MS);
	char body[1024];
	/* a pooled connection to leader 2, for node_proxy_start */
	ck_assert_int_eq(post("/w/ok", "", body, sizeof body), 200);
	wait_pooled(1);
	struct client c;
	c_open(&c);
	uint64_t t0 = lora_now_ms();
	c_post(&c, uri, "h1");
	wait_entered(2, 2);
	set_leader(3);
	int st = c_answer(&c, body, sizeof body);
	uint64_t took = lora_now_ms() - t0;
	ck_assert_msg(st == lora_err_http_status(LORA_EUNKNOWN_OUTCOME),
	              "%s: %d %s", uri, st, body);
	ck_assert_msg(strstr(body, "LORA_UNKNOWN_OUTCOME") != NULL, "%s: %s",
	              uri, body);
	ck_assert_uint_ge(took, WAIT_MS);
	ck_assert_uint_lt(took, WAIT_MS + 2000);
	ck_assert_int_eq(stub_get(0, &g.started), on_io); /* the way taken */
	/* leader 3 was asked, and asked again after its 503 */
	ck_assert_int_ge(stub_get(3, &g.stubs[1].entered), 2);
	c_close(&c);
	world_close();
}

START_TEST(unavailable_after_a_resend_is_not_relayed)
{
	unavailable_after_resend("/w/slow/u503?rid", 0);
	unavailable_after_resend("/a/slow/u503?rid", 1);
}
END_TEST

START_TEST(unanswered_write_gives_unknown_outcome_at_the_deadline)
{
	enum { WAIT_MS = 600, SILENT_MS = 400 };
	char body[1024];
	/* heard from all along: the request's deadline ends it */
	world_open(0, 60000, WAIT_MS);
	uint64_t t0 = lora_now_ms();
	int st = post("/w/slow", "u1", body, sizeof body);
	uint64_t took = lora_now_ms() - t0;
	ck_assert_int_eq(st, lora_err_http_status(LORA_EUNKNOWN_OUTCOME));
	ck_assert_ptr_nonnull(strstr(body, "LORA_UNKNOWN_OUTCOME"));
	ck_assert_uint_ge(took, WAIT_MS);
	ck_assert_uint_lt(took, WAIT_MS + 2000);
	world_close();
	/* a leader never heard from after the send: silent_ms ends it */
	world_open(0, SILENT_MS, 8000);
	pthread_mutex_lock(&g.mu);
	g.fresh = 0;
	pthread_mutex_unlock(&g.mu);
	t0 = lora_now_ms();
	st = post("/w/slow", "u2", body, sizeof body);
	took = lora_now_ms() - t0;
	ck_assert_int_eq(st, lora_err_http_status(LORA_EUNKNOWN_OUTCOME));
	ck_assert_ptr_nonnull(strstr(body, "went silent"));
	ck_assert_uint_ge(took, SILENT_MS);
	ck_assert_uint_lt(took, SILENT_MS + 2000);
	/* no leader at all: not executed, LORA_UNAVAILABLE after send_ms */
	set_leader(0);
	st = post("/w/ok", "u3", body, sizeof body);
	ck_assert_msg(st == lora_err_http_status(LORA_EUNAVAILABLE), "%d %s",
	              st, body);
	ck_assert_ptr_nonnull(strstr(body, "LORA_UNAVAILABLE"));
	world_close();
}
END_TEST

START_TEST(a_waiting_write_wakes_for_its_answer_not_on_a_period)
{
	world_open(0, 60000, 5000);
	char body[1024];
	ck_assert_int_eq(post("/w/ok", "", body, sizeof body), 200);
	uint64_t w0 = stats().wakeups, t0 = lora_now_ms();
	ck_assert_int_eq(post("/w/delay", "d1", body, sizeof body), 200);
	uint64_t took = lora_now_ms() - t0, woke = stats().wakeups - w0;
	printf("proxy: a %llu ms wait woke %llu times\n",
	       (unsigned long long)took, (unsigned long long)woke);
	ck_assert_uint_ge(took, T_DELAY_MS);
	ck_assert_uint_le(woke, 2); /* the answer (head and body, perhaps) */
	/* a leader change wakes it once more, and it waits on */
	struct client c;
	c_open(&c);
	w0 = stats().wakeups;
	c_post(&c, "/w/delay", "d2");
	wait_entered(2, 3);
	set_leader(2);
	ck_assert_int_eq(c_answer(&c, body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 2 hops 1 /w/delay d2");
	ck_assert_uint_le(stats().wakeups - w0, 3);
	/* the stop wakes it and ends it */
	w0 = stats().wakeups;
	c_post(&c, "/w/slow", "d3");
	wait_entered(2, 4);
	t0 = lora_now_ms();
	pthread_mutex_lock(&g.mu);
	g.stopping = 1;
	pthread_mutex_unlock(&g.mu);
	node_proxy_kick(g.p);
	ck_assert_int_eq(c_answer(&c, body, sizeof body),
	                 lora_err_http_status(LORA_EUNKNOWN_OUTCOME));
	ck_assert_uint_lt(lora_now_ms() - t0, T_WAIT_MS / 2);
	ck_assert_uint_le(stats().wakeups - w0, 2);
	c_close(&c);
	world_close();
}
END_TEST

START_TEST(pooled_connection_the_leader_closed_is_dialed_again)
{
	world_open(0, 60000, 5000);
	char body[1024];
	ck_assert_int_eq(post("/w/ok", "1", body, sizeof body), 200);
	wait_pooled(1);
	/* the leader restarts on its port: the pooled connection is dead */
	int port = g.stubs[0].port;
	stub_close(2);
	stub_open(2, port);
	ck_assert_int_eq(post("/w/ok", "2", body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 2 hops 1 /w/ok 2");
	struct node_proxy_stats s = stats();
	ck_assert_uint_eq(s.dials, 2);
	ck_assert_uint_eq(s.reused, 0);
	world_close();
}
END_TEST

START_TEST(answer_past_the_limit_is_not_relayed)
{
	world_open(0, 60000, 5000);
	char body[8192];
	ck_assert_int_eq(post("/w/fit", "", body, sizeof body), 200);
	ck_assert_uint_eq(strlen(body), T_REPLY_MAX);
	wait_pooled(1);
	ck_assert_int_eq(post("/w/big", "", body, sizeof body),
	                 lora_err_http_status(LORA_EUNKNOWN_OUTCOME));
	ck_assert_ptr_nonnull(strstr(body, "LORA_UNKNOWN_OUTCOME"));
	/* /big came on /fit's connection, closed after it */
	ck_assert_uint_eq(stats().dials, 1);
	ck_assert_int_eq(stats().pooled, 0);
	world_close();
}
END_TEST

/* An answer larger than the I/O thread's first read buffer (which then
 * grows, and is freed after the answer) is relayed whole, and its
 * connection carries the next write. */
START_TEST(large_answer_relayed_whole_from_the_io_thread)
{
	g.reply_max = 64u << 10;
	world_open(0, 60000, 5000);
	char *body = malloc(T_RESP_BYTES);
	ck_assert_ptr_nonnull(body);
	ck_assert_int_eq(post("/w/ok", "", body, T_RESP_BYTES), 200);
	wait_pooled(1);
	ck_assert_int_eq(post("/a/large", "", body, T_RESP_BYTES), 200);
	ck_assert_uint_eq(strlen(body), T_LARGE);
	ck_assert_uint_eq(strspn(body, "l"), T_LARGE);
	ck_assert_int_eq(stub_get(0, &g.started), 1); /* on the I/O thread */
	ck_assert_int_eq(post("/a/ok", "x", body, T_RESP_BYTES), 200);
	ck_assert_str_eq(body, "leader 2 hops 1 /a/ok x");
	ck_assert_uint_eq(stats().dials, 1);
	free(body);
	world_close();
}
END_TEST

START_TEST(tls_to_the_leader_checks_its_name)
{
	pthread_mutex_lock(&g.mu);
	g.tls = 1;
	g.cert_of[1] = 2; /* stub 3 shows node 2's certificate */
	pthread_mutex_unlock(&g.mu);
	world_open(0, 60000, 5000);
	char body[1024];
	ck_assert_int_eq(post("/w/ok", "t1", body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 2 hops 1 /w/ok t1");
	wait_pooled(1);
	ck_assert_int_eq(post("/w/ok", "t2", body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 2 hops 1 /w/ok t2");
	wait_pooled(1);
	ck_assert_int_eq(post("/a/ok", "t3", body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 2 hops 1 /a/ok t3");
	struct node_proxy_stats s = stats();
	ck_assert_uint_eq(s.dials, 1); /* one handshake for the three */
	ck_assert_uint_eq(s.reused, 2);
	/* a leader whose certificate names another node: never sent */
	set_leader(3);
	ck_assert_int_eq(post("/w/ok", "t4", body, sizeof body),
	                 lora_err_http_status(LORA_EUNAVAILABLE));
	ck_assert_ptr_nonnull(strstr(body, "LORA_UNAVAILABLE"));
	ck_assert_int_eq(stub_get(3, &g.stubs[1].entered), 0);
	world_close();
}
END_TEST

struct par {
	pthread_t t;
	int i, status;
	char body[256];
};

static void *par_main(void *arg)
{
	struct par *q = arg;
	char b[16];
	snprintf(b, sizeof b, "p%d", q->i);
	q->status = post("/w/slow", b, q->body, sizeof q->body);
	return NULL;
}

START_TEST(concurrent_writes_within_the_pool_cap)
{
	enum { POOL = 4, N = 10 };
	world_open(POOL, 60000, 8000);
	static struct par q[N];
	for (int i = 0; i < N; i++) {
		q[i].i = i;
		ck_assert_int_eq(pthread_create(&q[i].t, NULL, par_main, &q[i]),
		                 0);
	}
	wait_entered(2, N); /* all in flight at once, each on its own */
	pthread_mutex_lock(&g.mu);
	g.gate = 1;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.mu);
	for (int i = 0; i < N; i++) {
		pthread_join(q[i].t, NULL);
		char want[64];
		snprintf(want, sizeof want, "leader 2 hops 1 /w/slow p%d", i);
		ck_assert_int_eq(q[i].status, 200);
		ck_assert_str_eq(q[i].body, want);
	}
	ck_assert_uint_eq(stats().dials, N);
	wait_pooled(POOL); /* the rest were closed */
	/* the leader holds only the pooled ones open */
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	struct node_http_stats hs;
	for (node_http_stats(g.stubs[0].hs, &hs); hs.conns != POOL;
	     node_http_stats(g.stubs[0].hs, &hs)) {
		ck_assert_msg(lora_now_ms() < until, "leader conns %zu",
		              hs.conns);
		usleep(1000);
	}
	/* POOL more at once: each on a pooled connection, none dialed */
	pthread_mutex_lock(&g.mu);
	g.gate = 0;
	pthread_mutex_unlock(&g.mu);
	for (int i = 0; i < POOL; i++)
		ck_assert_int_eq(pthread_create(&q[i].t, NULL, par_main, &q[i]),
		                 0);
	wait_entered(2, N + POOL);
	pthread_mutex_lock(&g.mu);
	g.gate = 1;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.mu);
	for (int i = 0; i < POOL; i++) {
		pthread_join(q[i].t, NULL);
		ck_assert_int_eq(q[i].status, 200);
	}
	struct node_proxy_stats s = stats();
	ck_assert_uint_eq(s.dials, N);
	ck_assert_uint_eq(s.reused, POOL);
	world_close();
}
END_TEST

/* ---- batches (batch.h) ------------------------------------------------ */

/* Waits until the front has started n writes on its I/O thread. */
static void wait_started(int n)
{
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	pthread_mutex_lock(&g.mu);
	while (g.started < n &&
	       node_cond_wait_until(&g.cond, &g.mu, until) == 0)
		;
	int st = g.started;
	pthread_mutex_unlock(&g.mu);
	ck_assert_int_ge(st, n);
}

static void gate_open(int *which)
{
	pthread_mutex_lock(&g.mu);
	*which = 1;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.mu);
}

/* One request in flight to the leader (a write held at the gate), three
 * more started meanwhile; with a pooled connection to leader 2. */
static void batch_world(struct client *c, const char *const *uris,
                        const char *const *bodies)
{
	g.batch = 1;
	g.batch_inflight = 1;
	world_open(0, 60000, 8000);
	char body[1024];
	ck_assert_int_eq(post("/w/ok", "", body, sizeof body), 200);
	wait_pooled(1);
	for (int i = 0; i < 4; i++) {
		c_open(&c[i]);
		c_post(&c[i], uris[i], bodies[i]);
		if (i == 0)
			wait_entered(2, 2); /* the held one is in flight */
	}
	wait_started(4);
}

START_TEST(writes_started_meanwhile_go_as_one_batch)
{
	struct client c[4];
	const char *uris[] = {"/a/b", "/a/b", "/a/b?rid", "/a/b"};
	const char *bodies[] = {"gate", "w1", "w2", "untaken"};
	batch_world(c, uris, bodies);
	ck_assert_uint_eq(stats().batches, 0); /* queued behind the first */
	gate_open(&g.gate);
	char body[1024];
	ck_assert_int_eq(c_answer(&c[0], body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 2 hops 1 /a/b gate");
	ck_assert_int_eq(c_answer(&c[1], body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 2 batch 3 hops 1 w1 as 2 ab u-w1");
	ck_assert_int_eq(c_answer(&c[2], body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 2 batch 3 hops 1 w2 as 2 ab u-w2");
	/* left untaken by the leader: sent again on its own */
	ck_assert_int_eq(c_answer(&c[3], body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 2 hops 1 /a/b untaken");
	struct node_proxy_stats st = stats();
	ck_assert_uint_eq(st.batches, 1);
	ck_assert_uint_eq(st.batched, 3);
	ck_assert_uint_eq(st.batch_refused, 0);
	for (int i = 0; i < 4; i++)
		c_close(&c[i]);
	world_close();
}
END_TEST

/* A leader that answers a batch with anything but 200 ran none of it
 * (an older leader without NODE_BATCH_PATH: 404): each write goes alone. */
START_TEST(batch_refused_whole_sends_each_write_alone)
{
	pthread_mutex_lock(&g.mu);
	g.refuse_batch = 1;
	pthread_mutex_unlock(&g.mu);
	struct client c[4];
	const char *uris[] = {"/a/b", "/a/b", "/a/b", "/a/b?rid"};
	const char *bodies[] = {"gate", "r1", "r2", "r3"};
	batch_world(c, uris, bodies);
	gate_open(&g.gate);
	char body[1024];
	for (int i = 0; i < 4; i++) { /* alone: on the I/O thread's connection
		                       * or, with none idle, on a worker's */
		ck_assert_int_eq(c_answer(&c[i], body, sizeof body), 200);
		ck_assert_msg(
		    !strncmp(body, "leader 2 hops 1 /a/b", 20) &&
		        !strcmp(body + strlen(body) - strlen(bodies[i]),
		                bodies[i]),
		    "%s", body);
	}
	struct node_proxy_stats st = stats();
	ck_assert_uint_eq(st.batches, 1);
	ck_assert_uint_eq(st.batch_refused, 1);
	ck_assert_int_eq(st.batching_off, 2); /* a lasting refusal */
	/* that leader gets no batch again: three more at once go alone */
	struct client d[3];
	for (int i = 0; i < 3; i++) {
		c_open(&d[i]);
		c_post(&d[i], "/a/b", "again");
	}
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(c_answer(&d[i], body, sizeof body), 200);
		ck_assert_str_eq(body, "leader 2 hops 1 /a/b again");
		c_close(&d[i]);
	}
	ck_assert_uint_eq(stats().batches, 1);
	/* the gauge follows the leader: off while node 2 leads, whoever
	 * led in between */
	set_leader(3);
	ck_assert_int_eq(stats().batching_off, 0);
	set_leader(2);
	ck_assert_int_eq(stats().batching_off, 2);
	pthread_mutex_lock(&g.mu);
	g.refuse_batch = 0;
	pthread_mutex_unlock(&g.mu);
	for (int i = 0; i < 4; i++)
		c_close(&c[i]);
	world_close();
}
END_TEST

/* Four writes, the first held, the other three then sent as one batch
 * that leader 2 refuses for the moment (503): each is answered alone. */
static void refused_for_now(void)
{
	pthread_mutex_lock(&g.mu);
	g.refuse_batch = 2;
	pthread_mutex_unlock(&g.mu);
	struct client c[4];
	const char *uris[] = {"/a/b", "/a/b", "/a/b", "/a/b"};
	const char *bodies[] = {"gate", "r1", "r2", "r3"};
	batch_world(c, uris, bodies);
	gate_open(&g.gate);
	char body[1024];
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(c_answer(&c[i], body, sizeof body), 200);
		ck_assert_msg(!strncmp(body, "leader 2 hops 1 /a/b", 20), "%s",
		              body);
		c_close(&c[i]);
	}
	ck_assert_uint_eq(stats().batch_refused, 1);
}

/* A refusal for the moment turns batches to that leader off for a wait
 * (retry_ms for the first), and only while it leads. */
START_TEST(batch_refused_for_now_gauge)
{
	g.retry_ms = 1500;
	uint64_t t0 = lora_now_ms();
	refused_for_now();
	struct node_proxy_stats st[3];
	st[0] = stats();
	set_leader(3);
	st[1] = stats();
	set_leader(2);
	st[2] = stats();
	/* unless the machine was too slow to look within the wait */
	if (lora_now_ms() - t0 < 1400) {
		ck_assert_int_eq(st[0].batching_off, 1);
		ck_assert_int_eq(st[2].batching_off, 1);
	}
	ck_assert_int_eq(st[1].batching_off, 0);
	usleep(1600 * 1000); /* the wait is over */
	ck_assert_int_eq(stats().batching_off, 0);
	pthread_mutex_lock(&g.mu);
	g.refuse_batch = 0;
	pthread_mutex_unlock(&g.mu);
	world_close();
}
END_TEST

/* A batch refused whole for the moment (503: busy, stopping): each write
 * goes alone, and once a short wait is over the next writes started
 * meanwhile go as a batch again. */
START_TEST(batch_refused_for_now_keeps_batching)
{
	refused_for_now();
	ck_assert_uint_eq(stats().batches, 1);
	struct client c[4];
	char body[1024];
	/* after the wait (retry_ms, 20 ms, for a first refusal), the
	 * leader takes batches again: three started behind a held write go
	 * as one */
	usleep(50 * 1000);
	ck_assert_int_eq(stats().batching_off, 0);
	pthread_mutex_lock(&g.mu);
	g.refuse_batch = 0;
	g.gate = 0;
	g.started = 0;
	int entered = stub_of(2)->entered;
	pthread_mutex_unlock(&g.mu);
	for (int i = 0; i < 4; i++) {
		c_open(&c[i]);
		c_post(&c[i], "/a/b", i ? "again" : "gate");
		if (i == 0) /* the held one is in flight */
			wait_entered(2, entered + 1);
	}
	wait_started(4);
	gate_open(&g.gate);
	ck_assert_int_eq(c_answer(&c[0], body, sizeof body), 200);
	for (int i = 1; i < 4; i++) {
		ck_assert_int_eq(c_answer(&c[i], body, sizeof body), 200);
		ck_assert_str_eq(
		    body, "leader 2 batch 3 hops 1 again as 2 ab u-again");
		c_close(&c[i]);
	}
	c_close(&c[0]);
	ck_assert_uint_eq(stats().batches, 2);
	world_close();
}
END_TEST

/* A batch waits at leader 2 and the leader changes: its write with a
 * requestId is sent to leader 3 alone and answered from there; the one
 * without keeps waiting for leader 2, whose late answer reaches it (and
 * only it: the resent write's place in that answer is dropped). */
START_TEST(leader_change_mid_batch_moves_only_the_request_id_write)
{
	struct client c[4];
	const char *uris[] = {"/a/b", "/a/b?rid", "/a/b", "/a/b"};
	const char *bodies[] = {"gate", "hold-r", "hold-n", "n2"};
	batch_world(c, uris, bodies);
	gate_open(&g.gate);
	char body[1024];
	ck_assert_int_eq(c_answer(&c[0], body, sizeof body), 200);
	wait_entered(2, 3); /* the batch of three, held */
	set_leader(3);
	ck_assert_int_eq(c_answer(&c[1], body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 3 hops 1 /a/b hold-r");
	gate_open(&g.hold);
	ck_assert_int_eq(c_answer(&c[2], body, sizeof body), 200);
	ck_assert_str_eq(body,
	                 "leader 2 batch 3 hops 1 hold-n as 2 ab u-hold-n");
	ck_assert_int_eq(c_answer(&c[3], body, sizeof body), 200);
	ck_assert_str_eq(body, "leader 2 batch 3 hops 1 n2 as 2 ab u-n2");
	for (int i = 0; i < 4; i++)
		c_close(&c[i]);
	world_close();
}
END_TEST

/* One answer on c: status and an error code in its body. */
static void expect_error(struct client *c, int status, const char *code)
{
	char body[1024];
	int st = c_answer(c, body, sizeof body);
	ck_assert_msg(st == status && strstr(body, code), "%d %s", st, body);
}

/* A batch whose connection breaks, or whose 200 answer cannot be read:
 * each of its writes may have run, so each answers LORA_UNKNOWN_OUTCOME,
 * and none is sent again (not even the one with a requestId: its
 * leader did not change). */
static void batch_lost(const char *poison)
{
	struct client c[4];
	const char *uris[] = {"/a/b", "/a/b?rid", "/a/b", "/a/b"};
	const char *bodies[] = {"gate", poison, "n1", "n2"};
	batch_world(c, uris, bodies);
	gate_open(&g.gate);
	char body[1024];
	ck_assert_int_eq(c_answer(&c[0], body, sizeof body), 200);
	for (int i = 1; i < 4; i++)
		expect_error(&c[i], 503, "LORA_UNKNOWN_OUTCOME");
	/* the warm-up, the held write and the batch; nothing at leader 3 */
	ck_assert_int_eq(stub_get(2, &g.stubs[0].entered), 3);
	ck_assert_int_eq(stub_get(3, &g.stubs[1].entered), 0);
	ck_assert_uint_eq(stats().batches, 1);
	for (int i = 0; i < 4; i++)
		c_close(&c[i]);
	world_close();
}

START_TEST(batch_connection_broken_gives_unknown_outcome)
{
	batch_lost("brk");
}
END_TEST

START_TEST(batch_answer_unreadable_gives_unknown_outcome)
{
	batch_lost("garbage");
}
END_TEST

/* Writes still queued at their deadline were never sent: "not executed"
 * (LORA_UNAVAILABLE); the one in flight may have run (UNKNOWN_OUTCOME). */
START_TEST(queued_write_past_its_deadline_was_not_executed)
{
	g.batch = 1;
	g.batch_inflight = 1;
	world_open(0, 60000, 500);
	char body[1024];
	ck_assert_int_eq(post("/w/ok", "", body, sizeof body), 200);
	wait_pooled(1);
	struct client c[4];
	const char *bodies[] = {"gate", "q1", "q2", "q3"};
	for (int i = 0; i < 4; i++) {
		c_open(&c[i]);
		c_post(&c[i], "/a/b", bodies[i]);
		if (i == 0)
			wait_entered(2, 2);
	}
	wait_started(4);
	expect_error(&c[0], 503, "LORA_UNKNOWN_OUTCOME");
	for (int i = 1; i < 4; i++)
		expect_error(&c[i], 503, "LORA_UNAVAILABLE");
	ck_assert_uint_eq(stats().batches, 0);
	gate_open(&g.gate);
	for (int i = 0; i < 4; i++)
		c_close(&c[i]);
	world_close();
}
END_TEST

/* The wire format: what is put is read back; anything cut, extra or out
 * of range is refused whole. */
START_TEST(batch_format_round_trips_and_refuses_garbage)
{
	struct lora_buf b = {0};
	node_batch_put_head(&b, 2);
	struct node_batch_req r0 = {.hops = 1,
	                            .ident = "2 ab u",
	                            .ident_len = 6,
	                            .body = "{\"q\":1}",
	                            .body_len = 7};
	struct node_batch_req r1 = {
	    .hops = 2, .authz = "Basic x", .authz_len = 7};
	node_batch_put_req(&b, &r0);
	node_batch_put_req(&b, &r1);
	ck_assert(!lora_buf_error(&b));
	struct node_batch_req q[4];
	size_t n = 0;
	ck_assert_int_eq(node_batch_reqs(b.data, b.len, q, 4, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(q[0].hops, 1);
	ck_assert_uint_eq(q[0].ident_len, 6);
	ck_assert(!memcmp(q[0].ident, "2 ab u", 6));
	ck_assert_uint_eq(q[0].authz_len, 0);
	ck_assert(!memcmp(q[0].body, "{\"q\":1}", 7));
	ck_assert_int_eq(q[1].hops, 2);
	ck_assert(!memcmp(q[1].authz, "Basic x", 7));
	ck_assert_uint_eq(q[1].body_len, 0);
	/* more entries than room; every cut; a byte after the end */
	ck_assert_int_eq(node_batch_reqs(b.data, b.len, q, 1, &n), -1);
	for (size_t cut = 0; cut < b.len; cut++)
		ck_assert_int_eq(node_batch_reqs(b.data, cut, q, 4, &n), -1);
	ck_assert_int_eq(lora_buf_putc(&b, 'x'), 0);
	ck_assert_int_eq(node_batch_reqs(b.data, b.len, q, 4, &n), -1);
	static const char *bad[] = {"LB1 0\n",
	                            "LB2 1\n0 0 0 0\n",
	                            "LB1 1\n0 0 0 0\n",
	                            "LB1 1\n3 0 0 0\n",
	                            "LB1 1\n1 0 0 99999999999\n",
	                            "LB1 1\n1 0 0 -1\n",
	                            "LB1 1\n1  0 0 0\n",
	                            "LB1 01\n1 0 0 0\n"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_msg(
		    node_batch_reqs(bad[i], strlen(bad[i]), q, 4, &n) == -1,
		    "%s", bad[i]);
	lora_buf_reset(&b);
	node_batch_put_head(&b, 2);
	struct node_batch_ans a0 = {.status = 200,
	                            .bookmark = "17",
	                            .bookmark_len = 2,
	                            .body = "{}",
	                            .body_len = 2};
	struct node_batch_ans a1 = {0};
	node_batch_put_ans(&b, &a0);
	node_batch_put_ans(&b, &a1);
	struct node_batch_ans a[2];
	ck_assert_int_eq(node_batch_answers(b.data, b.len, a, 2, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(a[0].status, 200);
	ck_assert(!memcmp(a[0].bookmark, "17", 2) && a[0].body_len == 2);
	ck_assert_int_eq(a[1].status, 0);
	static const char *badans[] = {"LB1 1\n199 0 0\n", "LB1 1\n600 0 0\n",
	                               "LB1 1\n200 5 0\nab"};
	for (size_t i = 0; i < sizeof badans / sizeof *badans; i++)
		ck_assert_int_eq(
		    node_batch_answers(badans[i], strlen(badans[i]), a, 2, &n),
		    -1);
	lora_buf_free(&b);
}
END_TEST

/* The node's settings for batches: defaults, and out of range refused. */
START_TEST(batch_settings_in_range)
{
	struct node_config c;
	char err[LORA_ERRMSG_BYTES];
	node_config_defaults(&c);
	ck_assert_uint_eq(c.proxy_batch_max, NODE_BATCH_MAX);
	ck_assert_uint_eq(c.proxy_batch_inflight, 4);
	ck_assert_int_eq(node_config_set(&c, "proxy_batch_max", "1", err), 0);
	ck_assert_uint_eq(c.proxy_batch_max, 1);
	ck_assert_int_eq(node_config_set(&c, "proxy_batch_inflight", "64", err),
	                 0);
	static const char *bad[][2] = {{"proxy_batch_max", "0"},
	                               {"proxy_batch_max", "33"},
	                               {"proxy_batch_inflight", "0"},
	                               {"proxy_batch_inflight", "65"},
	                               {"proxy_batch_max", "x"}};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_int_eq(node_config_set(&c, bad[i][0], bad[i][1], err),
		                 LORA_ECONFIG);
	ck_assert_uint_eq(c.proxy_batch_max, 1);
}
END_TEST

int main(void)
{
	if (node_cond_init(&g.cond) != 0)
		return EXIT_FAILURE;
	certs_make();
	Suite *s = suite_create("node_proxy");
	TCase *t = tcase_create("proxy");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, passed_on_write_answered_on_a_reused_connection);
	tcase_add_test(t, leader_change_resends_only_a_write_with_a_request_id);
	tcase_add_test(t, leader_change_resends_a_started_write);
	tcase_add_test(t, unavailable_after_a_resend_is_not_relayed);
	tcase_add_test(t,
	               unanswered_write_gives_unknown_outcome_at_the_deadline);
	tcase_add_test(t, a_waiting_write_wakes_for_its_answer_not_on_a_period);
	tcase_add_test(t, pooled_connection_the_leader_closed_is_dialed_again);
	tcase_add_test(t, answer_past_the_limit_is_not_relayed);
	tcase_add_test(t, concurrent_writes_within_the_pool_cap);
	tcase_add_test(t, tls_to_the_leader_checks_its_name);
	tcase_add_test(t, large_answer_relayed_whole_from_the_io_thread);
	tcase_add_test(t, writes_started_meanwhile_go_as_one_batch);
	tcase_add_test(t, batch_refused_whole_sends_each_write_alone);
	tcase_add_test(t, batch_refused_for_now_keeps_batching);
	tcase_add_test(t, batch_refused_for_now_gauge);
	tcase_add_test(t,
	               leader_change_mid_batch_moves_only_the_request_id_write);
	tcase_add_test(t, batch_format_round_trips_and_refuses_garbage);
	tcase_add_test(t, batch_settings_in_range);
	tcase_add_test(t, batch_connection_broken_gives_unknown_outcome);
	tcase_add_test(t, batch_answer_unreadable_gives_unknown_outcome);
	tcase_add_test(t, queued_write_past_its_deadline_was_not_executed);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	certs_remove();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
