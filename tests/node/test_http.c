/* test_http.c - the HTTP server of node/http.h alone, with a handler of the
 * test's own, over real sockets on 127.1.50.1: pipelined requests answered
 * in order, a slow client holding nobody up, oversize heads and bodies
 * refused with their status, the connection cap, the per-source cap on
 * connections without a request (from 127.1.50.2-3), a saturated worker pool
 * answering 503, a stop answering every request it had read, a worker
 * waiting on its connection for the next request, and child
 * requests (a batch's) keeping their answers for their parent, answered
 * from the I/O thread and from another thread. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http.h"
#include "http_parse.h"
#include "lora.h"

#define T_ADDR       "127.1.50.1"
#define T_WAIT_MS    10000 /* generous: the machine is shared */
#define T_BODY_MAX   1024  /* the servers' body_bytes_max */
#define T_RESP_BYTES (64u << 10)

/* ---- the handler ---------------------------------------------------------
 * /fast/...: answered on the I/O thread; /known/... too, and it tells the
 * server who sent it (node_http_known, as the node does for an
 * authenticated request). /block/...: on a worker, once the
 * gate opens; /hold/...: on a worker, once hold_open is set. Anything
 * else: on a worker at once. Every answer's body is
 * "<method> <uri> <body bytes>". */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int open;         /* the gate */
	int entered;      /* /block requests waiting at the gate */
	int worked;       /* requests ops.work ran */
	int stopped_runs; /* ops.stopped calls */
	int to_io; /* /io requests a worker sent back to the I/O thread */
	int io_in, io_open;  /* /fast/gate: entered, may go on */
	int held, hold_open; /* /hold/...: on a worker until hold_open */
	char order[256]; /* the URIs ops.work ran and "~" per wait, in turn */
	char io_order[256]; /* ops.io's: "<uri>@io " or "<uri>@worker " */
	/* the next wait's linger_hook stops until hook_go (hook_in) */
	int hook_armed, hook_in, hook_go;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void answer(struct node_http_ex *x)
{
	const char *body;
	size_t len;
	node_http_body(x, &body, &len);
	char out[512];
	int n = snprintf(out, sizeof out, "%s %s %zu", node_http_method(x),
	                 node_http_uri(x), len);
	node_http_reply(x, 200, "text/plain", out, (size_t)n, NULL, NULL);
}

/* ---- /kids: a request carrying three children (node_http_child_new) -----
 * Kid a is answered at once, kid b on a thread of its own after
 * node_http_async, kid c left untaken; the parent answers once all three
 * are done: "<status> <body> <bookmark>|" per kid. */
struct kids {
	struct node_http_ex *x, *kid[3];
	int left; /* under g.mu */
};

static void kids_answer(struct kids *k)
{
	char out[512];
	size_t n = 0;
	for (int i = 0; i < 3; i++) {
		const char *body, *bm;
		size_t len;
		int st = node_http_child_answer(k->kid[i], &body, &len, &bm);
		n += (size_t)snprintf(out + n, sizeof out - n, "%d %.*s %s|",
		                      st, (int)len, body, bm);
		node_http_child_free(k->kid[i]);
	}
	node_http_reply(k->x, 200, "text/plain", out, n, NULL, NULL);
	struct node_http_ex *x = k->x;
	free(k);
	node_http_async_done(x);
}

static void kid_put(struct kids *k)
{
	pthread_mutex_lock(&g.mu);
	int last = --k->left == 0;
	pthread_mutex_unlock(&g.mu);
	if (last)
		kids_answer(k);
}

static void kid_done(struct node_http_ex *kid, void *arg)
{
	(void)kid;
	kid_put(arg);
}

/* "<ident or authz>:<hops>:<body>" */
static void kid_reply(struct node_http_ex *kid, int status, const char *bm)
{
	const char *body, *who = node_http_ident(kid);
	size_t len;
	node_http_body(kid, &body, &len);
	char out[128];
	int n = snprintf(out, sizeof out, "%s:%d:%.*s",
	                 who ? who : node_http_authz(kid),
	                 node_http_forwarded(kid), (int)len, body);
	node_http_reply(kid, status, "text/plain", out, (size_t)n, bm, NULL);
}

static void *kid_thread(void *arg)
{
	struct node_http_ex *kid = arg;
	kid_reply(kid, 202, NULL);
	node_http_async_done(kid); /* may answer the parent, here */
	return NULL;
}

static int kids_io(struct node_http_ex *x)
{
	struct kids *k = calloc(1, sizeof *k);
	ck_assert_ptr_nonnull(k);
	k->x = x;
	k->left = 4; /* three kids and this function */
	node_http_async(x);
	const struct node_http_child_req r[3] = {
	    {.uri = "/k",
	     .ident = "id-a",
	     .ident_len = 4,
	     .body = "a",
	     .body_len = 1,
	     .forwarded = 1},
	    {.uri = "/k",
	     .authz = "az-b",
	     .authz_len = 4,
	     .body = "bb",
	     .body_len = 2,
	     .forwarded = 2},
	    {.uri = "/k", .body = "", .forwarded = 1}};
	for (int i = 0; i < 3; i++) {
		k->kid[i] = node_http_child_new(x, &r[i], kid_done, k);
		ck_assert_ptr_nonnull(k->kid[i]);
		ck_assert(node_http_is_child(k->kid[i]));
	}
	kid_reply(k->kid[0], 201, "7");
	kid_put(k);
	node_http_async(k->kid[1]);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, kid_thread, k->kid[1]), 0);
	pthread_detach(t);
	node_http_child_untaken(k->kid[2]);
	kid_put(k);
	kid_put(k); /* this function's */
	return NODE_HTTP_HANDED_ON;
}

/* /fast/gate: waits (at most T_WAIT_MS) until the test opens io_open. */
static void io_gate_wait(void)
{
	pthread_mutex_lock(&g.mu);
	g.io_in = 1;
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	while (!g.io_open && lora_now_ms() < until) {
		pthread_mutex_unlock(&g.mu);
		usleep(1000);
		pthread_mutex_lock(&g.mu);
	}
	pthread_mutex_unlock(&g.mu);
}

static int t_io(void *arg, struct node_http_ex *x)
{
	(void)arg;
	if (strcmp(node_http_uri(x), "/kids") == 0)
		return kids_io(x);
	char name[16] = "";
	pthread_getname_np(pthread_self(), name, sizeof name);
	int on_io = strcmp(name, "lora-http-io") == 0;
	/* the server's own word agrees with the thread's name */
	ck_assert_int_eq(node_http_on_io_thread(x), on_io);
	pthread_mutex_lock(&g.mu);
	size_t o = strlen(g.io_order);
	snprintf(g.io_order + o, sizeof g.io_order - o, "%s@%s ",
	         node_http_uri(x), on_io ? "io" : "worker");
	pthread_mutex_unlock(&g.mu);
	if (strncmp(node_http_uri(x), "/io/", 4) == 0) {
		/* only the I/O thread may answer it: sent back there from a
		 * worker that read it */
		if (!on_io) {
			pthread_mutex_lock(&g.mu);
			g.to_io++;
			pthread_mutex_unlock(&g.mu);
			return NODE_HTTP_TO_IO;
		}
	} else if (strcmp(node_http_uri(x), "/fast/gate") == 0)
		io_gate_wait(); /* holds the I/O thread (when on it) */
	else if (strncmp(node_http_uri(x), "/known/", 7) == 0)
		node_http_known(x); /* as the node's after a valid login */
	else if (strncmp(node_http_uri(x), "/fast/", 6) != 0)
		return NODE_HTTP_TO_WORKER;
	answer(x);
	return NODE_HTTP_ANSWERED;
}

/* Waits (g.mu held) until *flag is set, at most T_WAIT_MS. */
static void g_wait_for(int *flag)
{
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	while (!*flag && lora_now_ms() < until) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&g.cond, &g.mu, &ts);
	}
}

/* linger_hook: every wait adds "~ " to g.order; the first after
 * hook_armed stops until hook_go */
static void t_linger_hook(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&g.mu);
	size_t o = strlen(g.order);
	snprintf(g.order + o, sizeof g.order - o, "~ ");
	if (g.hook_armed) {
		g.hook_armed = 0;
		g.hook_in = 1;
		pthread_cond_broadcast(&g.cond);
		g_wait_for(&g.hook_go);
	}
	pthread_mutex_unlock(&g.mu);
}

static int t_work(void *arg, struct node_http_ex *x)
{
	(void)arg;
	pthread_mutex_lock(&g.mu);
	g.worked++;
	size_t o = strlen(g.order);
	snprintf(g.order + o, sizeof g.order - o, "%s ", node_http_uri(x));
	if (strncmp(node_http_uri(x), "/hold/", 6) == 0) {
		g.held++;
		g_wait_for(&g.hold_open);
	}
	if (strncmp(node_http_uri(x), "/block/", 7) == 0) {
		g.entered++;
		pthread_cond_broadcast(&g.cond);
		g_wait_for(&g.open);
	}
	pthread_mutex_unlock(&g.mu);
	answer(x);
	return NODE_HTTP_ANSWERED;
}

static void t_stopped(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&g.mu);
	g.stopped_runs++;
	pthread_mutex_unlock(&g.mu);
}

static void gate_open(void)
{
	pthread_mutex_lock(&g.mu);
	g.open = 1;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.mu);
}

static int g_get(int *field)
{
	pthread_mutex_lock(&g.mu);
	int v = *field;
	pthread_mutex_unlock(&g.mu);
	return v;
}

static unsigned t_linger_us; /* the next server's linger_us (0: default) */
static int t_hook;           /* 1: the next server has t_linger_hook */

static struct node_http *server_known(int workers, size_t queue_max,
                                      size_t conns_max, size_t per_source,
                                      int until_known)
{
	const struct node_http_cfg cfg = {.addr = T_ADDR ":0",
	                                  .workers = workers,
	                                  .queue_max = queue_max,
	                                  .conns_max = conns_max,
	                                  .body_bytes_max = T_BODY_MAX,
	                                  .pending_per_source = per_source,
	                                  .pending_until_known = until_known,
	                                  .linger_us = t_linger_us,
	                                  .linger_hook =
	                                      t_hook ? t_linger_hook : NULL};
	const struct node_http_ops ops = {
	    .io = t_io, .work = t_work, .stopped = t_stopped};
	struct node_http *hs;
	char err[256] = "";
	int rc = node_http_open(&cfg, &ops, &hs, err);
	ck_assert_msg(rc == 0, "open: %s", err);
	return hs;
}

static struct node_http *server_ps(int workers, size_t queue_max,
                                   size_t conns_max, size_t per_source)
{
	return server_known(workers, queue_max, conns_max, per_source, 0);
}

static struct node_http *server(int workers, size_t queue_max, size_t conns_max)
{
	return server_ps(workers, queue_max, conns_max, 0);
}

/* Waits until the server holds at least conns connections and queued
 * requests (0: any), or fails after T_WAIT_MS. */
static void wait_stats(struct node_http *hs, size_t conns, size_t queued)
{
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	struct node_http_stats s;
	for (;;) {
		node_http_stats(hs, &s);
		if (s.conns >= conns && s.queued >= queued)
			return;
		ck_assert_msg(lora_now_ms() < until,
		              "waited for %zu conns / %zu queued: %zu / %zu",
		              conns, queued, s.conns, s.queued);
		usleep(1000);
	}
}

static void wait_entered(int n)
{
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	pthread_mutex_lock(&g.mu);
	while (g.entered < n && lora_now_ms() < until) {
		pthread_mutex_unlock(&g.mu);
		usleep(1000);
		pthread_mutex_lock(&g.mu);
	}
	int e = g.entered;
	pthread_mutex_unlock(&g.mu);
	ck_assert_int_ge(e, n);
}

/* ---- a client ------------------------------------------------------------ */

struct client {
	int fd;
	char buf[T_RESP_BYTES];
	size_t len;
};

/* A connection from source address src (NULL: the kernel's choice). */
static void c_open_from(struct client *c, struct node_http *hs, const char *src)
{
	memset(c, 0, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(c->fd, 0);
	if (src) {
		struct sockaddr_in l = {.sin_family = AF_INET};
		inet_pton(AF_INET, src, &l.sin_addr);
		ck_assert_int_eq(bind(c->fd, (struct sockaddr *)&l, sizeof l),
		                 0);
	}
	struct timeval tv = {T_WAIT_MS / 1000, 0};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(node_http_port(hs))};
	inet_pton(AF_INET, T_ADDR, &a.sin_addr);
	ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
}

static void c_open(struct client *c, struct node_http *hs)
{
	c_open_from(c, hs, NULL);
}

static void c_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void c_send(struct client *c, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t w = send(c->fd, s, len, MSG_NOSIGNAL);
		ck_assert_int_gt(w, 0);
		s += w;
		len -= (size_t)w;
	}
}

static void c_sends(struct client *c, const char *s)
{
	c_send(c, s, strlen(s));
}

/* One more recv into c->buf: its result (0 at the end, -1 on error). */
static ssize_t c_fill(struct client *c)
{
	ck_assert_uint_lt(c->len, sizeof c->buf - 1);
	ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
	if (r > 0)
		c->len += (size_t)r;
	c->buf[c->len] = 0;
	return r;
}

/* Reads one answer (Content-Length framed): its status, its body into
 * body (NUL-terminated); -1 when the connection ended first. */
static int c_answer(struct client *c, char *body, size_t size)
{
	char *end;
	while ((end = strstr(c->buf, "\r\n\r\n")) == NULL)
		if (c_fill(c) <= 0)
			return -1;
	int status = atoi(c->buf + 9);
	const char *cl = strcasestr(c->buf, "Content-Length: ");
	ck_assert_msg(cl && cl < end, "no Content-Length: %s", c->buf);
	size_t blen = strtoul(cl + 16, NULL, 10);
	size_t head = (size_t)(end - c->buf) + 4;
	while (c->len < head + blen)
		if (c_fill(c) <= 0)
			return -1;
	ck_assert_uint_lt(blen, size);
	memcpy(body, c->buf + head, blen);
	body[blen] = 0;
	memmove(c->buf, c->buf + head + blen, c->len - head - blen);
	c->len -= head + blen;
	c->buf[c->len] = 0;
	return status;
}

/* 1 when the server closed the connection (after any bytes left). */
static int c_closed(struct client *c)
{
	for (;;) {
		ssize_t r = c_fill(c);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return 1;
		if (r < 0)
			return 0; /* timed out: still open */
	}
}

static void get(struct client *c, const char *uri)
{
	char req[256];
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", uri);
	c_sends(c, req);
}

static void expect_answer(struct client *c, int status, const char *body)
{
	char got[1024];
	int st = c_answer(c, got, sizeof got);
	ck_assert_int_eq(st, status);
	if (body)
		ck_assert_str_eq(got, body);
}

/* ---- the tests ------------------------------------------------------------
 */

/* X-Lora-Time-Ms: 1 to 18 digits and blanks, else 400 (strtoull would
 * take a sign, a vertical tab or 2^64 - 5); no header is 0. */
START_TEST(time_header_parsed_strictly)
{
	static const struct {
		const char *v;
		unsigned long long want; /* 0: refused */
	} cases[] = {
	    {"250", 250}, {"250  ", 250},
	    {"7\t", 7},   {"999999999999999999", 999999999999999999ULL},
	    {"0", 0},     {"", 0},
	    {"+5", 0},    {"-5", 0},
	    {"\v5", 0},   {"5x", 0},
	    {"5 5", 0},   {"1234567890123456789", 0},
	};
	for (size_t i = 0; i <= sizeof cases / sizeof cases[0]; i++) {
		int last = i == sizeof cases / sizeof cases[0];
		char buf[256];
		int n = snprintf(buf, sizeof buf,
		                 "POST /query HTTP/1.1\r\n%s%s%s"
		                 "Content-Length: 0\r\n\r\n",
		                 last ? "" : "X-Lora-Time-Ms: ",
		                 last ? "" : cases[i].v, last ? "" : "\r\n");
		struct node_http_head h;
		struct node_http_perr e = {0};
		int rc = node_http_parse_head(buf, (size_t)n, 1024, 2, &h, &e);
		if (last || cases[i].want) {
			ck_assert_int_eq(rc, NODE_HTTP_DONE);
			ck_assert_uint_eq(h.time_ms, last ? 0 : cases[i].want);
		} else {
			ck_assert_msg(rc == NODE_HTTP_ERROR && e.status == 400,
			              "'%s': %d %d", cases[i].v, rc, e.status);
		}
	}
}
END_TEST

START_TEST(pipelined_requests_answered_in_order)
{
	struct node_http *hs = server(4, 0, 0);
	struct client c;
	c_open(&c, hs);
	/* one write: I/O-thread and worker answers interleaved, and the
	 * worker reading on into the requests behind its own */
	c_sends(&c, "GET /fast/1 HTTP/1.1\r\n\r\n"
	            "POST /w/2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
	            "GET /fast/3 HTTP/1.1\r\n\r\n"
	            "GET /w/4 HTTP/1.1\r\n\r\n"
	            "POST /fast/5 HTTP/1.1\r\nContent-Length: 2\r\n\r\nxy");
	expect_answer(&c, 200, "GET /fast/1 0");
	expect_answer(&c, 200, "POST /w/2 3");
	expect_answer(&c, 200, "GET /fast/3 0");
	expect_answer(&c, 200, "GET /w/4 0");
	expect_answer(&c, 200, "POST /fast/5 2");
	/* and the connection stays open for more */
	get(&c, "/w/6");
	expect_answer(&c, 200, "GET /w/6 0");
	c_close(&c);
	node_http_close(hs);
	ck_assert_int_eq(g.stopped_runs, 1);
}
END_TEST

/* Children keep their answers for their parent, from any thread; the
 * parent's connection goes on after it (the request pipelined behind). */
START_TEST(children_answer_inside_their_parent)
{
	struct node_http *hs = server(2, 0, 0);
	struct client c;
	c_open(&c, hs);
	c_sends(&c, "POST /kids HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
	            "GET /fast/after HTTP/1.1\r\n\r\n");
	expect_answer(&c, 200, "201 id-a:1:a 7|202 az-b:2:bb |0  |");
	expect_answer(&c, 200, "GET /fast/after 0");
	c_close(&c);
	node_http_close(hs);
}
END_TEST

START_TEST(slow_client_holds_nobody_up)
{
	struct node_http *hs = server(1, 0, 0);
	struct client slow, quick;
	c_open(&slow, hs);
	c_open(&quick, hs);
	/* the head one byte per send, then half the body */
	const char *head = "POST /w/slow HTTP/1.1\r\nContent-Length: 6\r\n\r\n";
	for (const char *p = head; *p; p++)
		c_send(&slow, p, 1);
	c_sends(&slow, "abc");
	wait_stats(hs, 2, 0);
	/* the one worker is free: the partial request is not on it */
	for (int i = 0; i < 3; i++) {
		get(&quick, "/w/quick");
		expect_answer(&quick, 200, "GET /w/quick 0");
	}
	ck_assert_int_eq(g_get(&g.worked), 3);
	c_sends(&slow, "def");
	expect_answer(&slow, 200, "POST /w/slow 6");
	c_close(&slow);
	c_close(&quick);
	node_http_close(hs);
}
END_TEST

START_TEST(oversize_heads_and_bodies_refused)
{
	struct node_http *hs = server(2, 0, 0);
	char body[1024];
	/* a head past NODE_HTTP_HEADER_BYTES_MAX (16 KiB): 400, closed */
	struct client c;
	c_open(&c, hs);
	c_sends(&c, "GET /w/big HTTP/1.1\r\nX-Pad: ");
	static char pad[20000];
	memset(pad, 'a', sizeof pad);
	c_send(&c, pad, sizeof pad);
	ck_assert_int_eq(c_answer(&c, body, sizeof body), 400);
	ck_assert_ptr_nonnull(strstr(body, "request headers too large"));
	ck_assert(c_closed(&c));
	c_close(&c);
	/* a Content-Length above body_bytes_max: 413 before any body byte */
	c_open(&c, hs);
	c_sends(&c, "POST /w/big HTTP/1.1\r\nContent-Length: 1025\r\n\r\n");
	ck_assert_int_eq(c_answer(&c, body, sizeof body), 413);
	ck_assert_ptr_nonnull(strstr(body, "LORA_"));
	ck_assert(c_closed(&c));
	c_close(&c);
	/* chunked uploads: 411 */
	c_open(&c, hs);
	c_sends(&c,
	        "POST /w/ch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	ck_assert_int_eq(c_answer(&c, body, sizeof body), 411);
	c_close(&c);
	ck_assert_int_eq(g_get(&g.worked), 0); /* none reached the handler */
	/* exactly the limit is served */
	c_open(&c, hs);
	c_sends(&c, "POST /w/max HTTP/1.1\r\nContent-Length: 1024\r\n\r\n");
	c_send(&c, pad, 1024);
	expect_answer(&c, 200, "POST /w/max 1024");
	c_close(&c);
	node_http_close(hs);
}
END_TEST

START_TEST(connection_cap_closes_the_extra_ones)
{
	enum { CAP = 3 };
	struct node_http *hs = server(2, 0, CAP);
	static struct client c[CAP + 1];
	for (int i = 0; i < CAP; i++) {
		c_open(&c[i], hs);
		get(&c[i], "/fast/in");
		expect_answer(&c[i], 200, "GET /fast/in 0");
	}
	/* one more: accepted by the kernel, closed by the server unanswered */
	c_open(&c[CAP], hs);
	static const char over[] = "GET /fast/over HTTP/1.1\r\n\r\n";
	/* (the send may already meet the server's close) */
	ssize_t w = send(c[CAP].fd, over, sizeof over - 1, MSG_NOSIGNAL);
	(void)w;
	ck_assert(c_closed(&c[CAP]));
	ck_assert_uint_eq(c[CAP].len, 0);
	c_close(&c[CAP]);
	struct node_http_stats s;
	node_http_stats(hs, &s);
	ck_assert_uint_eq(s.conns, CAP);
	/* one leaves: room for a new one */
	c_close(&c[0]);
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	do {
		node_http_stats(hs, &s);
		ck_assert(lora_now_ms() < until);
		usleep(1000);
	} while (s.conns != CAP - 1);
	c_open(&c[0], hs);
	get(&c[0], "/fast/again");
	expect_answer(&c[0], 200, "GET /fast/again 0");
	for (int i = 0; i < CAP; i++)
		c_close(&c[i]);
	node_http_close(hs);
}
END_TEST

/* One source opens the connection cap's worth of silent connections (a
 * handshake flood): it keeps only pending_per_source of them, each new one
 * shutting down its oldest, so another source is still answered, and so
 * is the flooding source's newest connection (a real client behind the
 * same address); a connection that sent a request no longer counts.
 * Without the per-source cap the flood takes every place and the other
 * source's connection is closed unanswered. */
START_TEST(silent_flood_from_one_source_leaves_room)
{
	enum { CAP = 8, PER_SOURCE = 3 };
	struct node_http *hs = server_ps(2, 0, CAP, PER_SOURCE);
	static struct client a[CAP + 1], b;
	for (int i = 0; i < CAP; i++)
		c_open_from(&a[i], hs, "127.1.50.2");
	/* another source, accepted after them, is answered */
	c_open_from(&b, hs, "127.1.50.3");
	get(&b, "/fast/other");
	expect_answer(&b, 200, "GET /fast/other 0");
	/* the flood's oldest were shut down, its newest is served */
	ck_assert(c_closed(&a[0]));
	get(&a[CAP - 1], "/fast/newest");
	expect_answer(&a[CAP - 1], 200, "GET /fast/newest 0");
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	struct node_http_stats s;
	do { /* a[CAP - 3], a[CAP - 2], a[CAP - 1] and b */
		node_http_stats(hs, &s);
		ck_assert_msg(lora_now_ms() < until, "%zu connections",
		              s.conns);
		usleep(1000);
	} while (s.conns != PER_SOURCE + 1);
	/* a[CAP - 1] is no longer pending: a new one evicts nobody */
	c_open_from(&a[CAP], hs, "127.1.50.2");
	get(&a[CAP], "/fast/again");
	expect_answer(&a[CAP], 200, "GET /fast/again 0");
	get(&a[CAP - 2], "/fast/kept");
	expect_answer(&a[CAP - 2], 200, "GET /fast/kept 0");
	for (int i = 0; i <= CAP; i++)
		c_close(&a[i]);
	c_close(&b);
	node_http_close(hs);
}
END_TEST

/* With pending_until_known (the node's server), one source opens the
 * connection cap's worth of keep-alive connections, each answered but
 * never vouched for (a 401 at the node): they stay pending, so it keeps
 * only pending_per_source of them, each new one shutting down its oldest,
 * and another source is still served. A connection vouched for
 * (/known/, an authenticated request) is never shut down for a newer one.
 * Counted as served after any complete request (pending_until_known 0),
 * the one source holds every place and the other's connection is closed
 * unanswered. */
START_TEST(unauthenticated_keepalive_from_one_source_leaves_room)
{
	enum { CAP = 8, PER_SOURCE = 3 };
	struct node_http *hs = server_known(2, 0, CAP, PER_SOURCE, 1);
	static struct client a[CAP], k, b;
	char uri[64];
	c_open_from(&k, hs, "127.1.50.2");
	get(&k, "/known/login");
	expect_answer(&k, 200, "GET /known/login 0");
	for (int i = 0; i < CAP - 1; i++) { /* with k: every place */
		c_open_from(&a[i], hs, "127.1.50.2");
		snprintf(uri, sizeof uri, "/fast/401-%d", i);
		get(&a[i], uri);
		snprintf(uri, sizeof uri, "GET /fast/401-%d 0", i);
		expect_answer(&a[i], 200, uri);
	}
	/* another source, accepted after them, is answered */
	c_open_from(&b, hs, "127.1.50.3");
	get(&b, "/fast/other");
	expect_answer(&b, 200, "GET /fast/other 0");
	/* the oldest unvouched ones were shut down, the newest is served */
	ck_assert(c_closed(&a[0]));
	get(&a[CAP - 2], "/fast/newest");
	expect_answer(&a[CAP - 2], 200, "GET /fast/newest 0");
	/* the vouched-for one outlived them all */
	get(&k, "/fast/kept");
	expect_answer(&k, 200, "GET /fast/kept 0");
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	struct node_http_stats s;
	do { /* k, a[CAP - 4 .. CAP - 2] and b */
		node_http_stats(hs, &s);
		ck_assert_msg(lora_now_ms() < until, "%zu connections",
		              s.conns);
		usleep(1000);
	} while (s.conns != PER_SOURCE + 2);
	for (int i = 0; i < CAP; i++)
		c_close(&a[i]);
	c_close(&k);
	c_close(&b);
	node_http_close(hs);
}
END_TEST

START_TEST(saturated_workers_answer_503)
{
	struct node_http *hs = server(1, 1, 0);
	struct client a, b, c;
	c_open(&a, hs);
	c_open(&b, hs);
	c_open(&c, hs);
	get(&a, "/block/a");
	wait_entered(1); /* the one worker is taken */
	get(&b, "/block/b");
	wait_stats(hs, 3, 1); /* the one queue place is taken */
	get(&c, "/w/c");
	char body[1024];
	ck_assert_int_eq(c_answer(&c, body, sizeof body), 503);
	ck_assert_ptr_nonnull(strstr(body, "LORA_UNAVAILABLE"));
	/* the connection goes on, and the I/O thread still answers */
	get(&c, "/fast/c");
	expect_answer(&c, 200, "GET /fast/c 0");
	gate_open();
	expect_answer(&a, 200, "GET /block/a 0");
	expect_answer(&b, 200, "GET /block/b 0");
	get(&c, "/w/c2");
	expect_answer(&c, 200, "GET /w/c2 0");
	c_close(&a);
	c_close(&b);
	c_close(&c);
	node_http_close(hs);
}
END_TEST

static uint64_t lingered(struct node_http *hs)
{
	struct node_http_stats s;
	node_http_stats(hs, &s);
	return s.lingered;
}

/* Waits until the server holds at most conns connections. */
static void wait_conns_at_most(struct node_http *hs, size_t conns)
{
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	struct node_http_stats s;
	for (;;) {
		node_http_stats(hs, &s);
		if (s.conns <= conns)
			return;
		ck_assert_msg(lora_now_ms() < until,
		              "waited for at most %zu conns: %zu", conns,
		              s.conns);
		usleep(1000);
	}
}

static void *closer_main(void *arg);

/* Waits until exactly n workers wait on a connection. */
static void wait_lingering(struct node_http *hs, size_t n)
{
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	struct node_http_stats st;
	for (;;) {
		node_http_stats(hs, &st);
		if (st.lingering == n)
			return;
		ck_assert_msg(lora_now_ms() < until,
		              "waited for %zu waiting workers: %zu", n,
		              st.lingering);
		usleep(200);
	}
}

/* A worker that answered waits a moment on the connection for the next
 * request and serves it itself (one thread wake-up per request instead
 * of two): whatever that request is, it is routed as the I/O thread
 * routes it, and a client that leaves or half-closes meanwhile is handled
 * as on the I/O thread. */
START_TEST(worker_waits_for_the_next_request)
{
	struct node_http *hs = server(4, 0, 0); /* one of 4 may wait */
	struct client c;
	c_open(&c, hs);
	char want[64];
	for (int i = 0; i < 50; i++) {
		snprintf(want, sizeof want, "/w/%d", i);
		get(&c, want);
		snprintf(want, sizeof want, "GET /w/%d 0", i);
		expect_answer(&c, 200, want);
	}
	/* a closed loop of requests: a worker read most of them (loose: a
	 * slow machine can miss the wait now and then) */
	ck_assert_uint_ge(lingered(hs), 10);
	/* each kind of request, right after a worker's answer: the I/O
	 * thread's own (/fast), a request handed on (/kids answers from
	 * another thread), a worker's, a body in two parts */
	uint64_t before = lingered(hs);
	get(&c, "/fast/a");
	expect_answer(&c, 200, "GET /fast/a 0");
	get(&c, "/w/b");
	expect_answer(&c, 200, "GET /w/b 0");
	c_sends(&c, "POST /kids HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	expect_answer(&c, 200, "201 id-a:1:a 7|202 az-b:2:bb |0  |");
	get(&c, "/w/c");
	expect_answer(&c, 200, "GET /w/c 0");
	c_sends(&c, "POST /w/d HTTP/1.1\r\nContent-Length: 3\r\n\r\n");
	usleep(20000); /* past the wait: the rest arrives through epoll */
	c_sends(&c, "abc");
	expect_answer(&c, 200, "POST /w/d 3");
	get(&c, "/w/e");
	expect_answer(&c, 200, "GET /w/e 0");
	ck_assert_uint_gt(lingered(hs), before);
	/* what only the I/O thread may do goes back to it (t_io checks
	 * the thread by its name), each right after a worker's answer */
	for (int i = 0; i < 10; i++) {
		get(&c, "/w/before-io");
		expect_answer(&c, 200, "GET /w/before-io 0");
		c_sends(&c,
		        "POST /io/x HTTP/1.1\r\nContent-Length: 2\r\n\r\nab");
		expect_answer(&c, 200, "POST /io/x 2");
	}
	ck_assert_int_ge(g_get(&g.to_io), 1); /* loose, as above */
	/* half-closed right after its request: answered, then closed */
	get(&c, "/w/last");
	shutdown(c.fd, SHUT_WR);
	expect_answer(&c, 200, "GET /w/last 0");
	ck_assert(c_closed(&c));
	c_close(&c);
	wait_conns_at_most(hs, 0);
	/* a client that leaves while a worker waits on it */
	for (int i = 0; i < 20; i++) {
		c_open(&c, hs);
		get(&c, "/w/gone");
		expect_answer(&c, 200, "GET /w/gone 0");
		c_close(&c);
	}
	wait_conns_at_most(hs, 0);
	ck_assert_int_eq(g_get(&g.worked), 50 + 4 + 10 + 1 + 20);
	node_http_close(hs);
	/* pools under 4 workers never wait: their one worker is not kept
	 * from another client */
	hs = server(2, 0, 0);
	c_open(&c, hs);
	for (int i = 0; i < 5; i++) {
		get(&c, "/w/x");
		expect_answer(&c, 200, "GET /w/x 0");
	}
	ck_assert_uint_eq(lingered(hs), 0);
	c_close(&c);
	node_http_close(hs);
}
END_TEST

/* A request an idle worker takes leaves a waiting worker waiting; one
 * that would wait for a worker ends every wait at once, and so does a
 * stop; a request sent back to
 * the I/O thread that the stop leaves there is answered 503 (not closed
 * unanswered). Waits of 1 s, so that only the end of a wait, not its time
 * running out, can answer quickly. */
/* Three of four workers held at the gate (/block/k on k[0..2]), and
 * let go. */
static void hold_three(struct node_http *hs, struct client k[3])
{
	for (int i = 0; i < 3; i++) {
		c_open(&k[i], hs);
		get(&k[i], "/block/k");
	}
	wait_entered(3);
}

static void release_three(struct client k[3])
{
	gate_open();
	for (int i = 0; i < 3; i++) {
		expect_answer(&k[i], 200, "GET /block/k 0");
		c_close(&k[i]);
	}
}

/* One of g's strings, copied under g.mu (its size: 256). */
static void g_copy(char *out, const char *field)
{
	_Static_assert(sizeof g.order == sizeof g.io_order, "g_copy's size");
	pthread_mutex_lock(&g.mu);
	memcpy(out, field, sizeof g.order);
	pthread_mutex_unlock(&g.mu);
}

START_TEST(waiting_worker_gives_way)
{
	t_linger_us = 1000000;
	struct node_http *hs = server(4, 0, 0); /* one of 4 may wait */
	static struct client k[3], a, b;
	c_open(&a, hs);
	c_open(&b, hs);
	/* with idle workers, another client's request does not end a wait:
	 * an idle worker takes it, and a's next request is read by the
	 * worker waiting on a */
	get(&a, "/w/a0");
	expect_answer(&a, 200, "GET /w/a0 0");
	wait_lingering(hs, 1);
	uint64_t l0 = lingered(hs);
	get(&b, "/w/b0");
	expect_answer(&b, 200, "GET /w/b0 0");
	get(&a, "/w/a1");
	expect_answer(&a, 200, "GET /w/a1 0");
	ck_assert_uint_eq(lingered(hs), l0 + 1);
	hold_three(hs, k);
	get(&a, "/w/a");
	expect_answer(&a, 200, "GET /w/a 0");
	wait_lingering(hs, 1); /* the fourth waits on a */
	/* b's request ends that wait: answered long before the wait's 1 s */
	uint64_t t0 = lora_now_ms();
	get(&b, "/w/b");
	expect_answer(&b, 200, "GET /w/b 0");
	uint64_t took = lora_now_ms() - t0;
	ck_assert_msg(took < 500, "b waited %llu ms for a waiting worker",
	              (unsigned long long)took);
	release_three(k);
	c_close(&b);
	wait_lingering(hs, 0);
	/* a request sent back to the I/O thread while it is held, then a
	 * stop: answered 503 */
	get(&a, "/w/a2");
	expect_answer(&a, 200, "GET /w/a2 0");
	wait_lingering(hs, 1); /* a worker waits on a */
	c_open(&b, hs);
	get(&b, "/fast/gate"); /* the I/O thread is held */
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	while (!g_get(&g.io_in)) {
		ck_assert(lora_now_ms() < until);
		usleep(1000);
	}
	c_sends(&a, "POST /io/stop HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	struct node_http_stats st;
	for (node_http_stats(hs, &st); st.to_io < 1; node_http_stats(hs, &st)) {
		ck_assert(lora_now_ms() < until);
		usleep(1000);
	}
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, closer_main, hs), 0);
	while (!node_http_closing(hs)) {
		ck_assert(lora_now_ms() < until);
		usleep(1000);
	}
	pthread_mutex_lock(&g.mu);
	g.io_open = 1;
	pthread_mutex_unlock(&g.mu);
	expect_answer(&b, 200, "GET /fast/gate 0");
	char body[1024];
	ck_assert_int_eq(c_answer(&a, body, sizeof body), 503);
	ck_assert_ptr_nonnull(strstr(body, "not executed"));
	ck_assert_int_eq(g_get(&g.to_io), 1);
	pthread_join(t, NULL);
	c_close(&a);
	c_close(&b);
	/* a stop ends a worker's wait at once (not after its 1 s) */
	hs = server(4, 0, 0);
	c_open(&a, hs);
	get(&a, "/w/a3");
	expect_answer(&a, 200, "GET /w/a3 0");
	wait_lingering(hs, 1);
	t0 = lora_now_ms();
	node_http_close(hs);
	took = lora_now_ms() - t0;
	ck_assert_msg(took < 500,
	              "the stop waited %llu ms for a waiting worker",
	              (unsigned long long)took);
	c_close(&a);
}
END_TEST

static void *closer_main(void *arg)
{
	node_http_close(arg);
	return NULL;
}

static void g_set(int *flag)
{
	pthread_mutex_lock(&g.mu);
	*flag = 1;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.mu);
}

/* Waits until *flag is at least n, at most T_WAIT_MS. */
static void g_wait_ge(int *flag, int n)
{
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	while (g_get(flag) < n) {
		ck_assert(lora_now_ms() < until);
		usleep(500);
	}
}

/* A worker that answered while a request waits for a worker does not
 * wait on its connection: it takes that request at once (the hook marks
 * each wait that starts). */
START_TEST(no_wait_while_a_request_waits_for_a_worker)
{
	t_linger_us = 1000000;
	t_hook = 1;
	struct node_http *hs = server(4, 0, 0); /* one of 4 may wait */
	static struct client k[3], a, b;
	hold_three(hs, k);
	c_open(&a, hs);
	c_open(&b, hs);
	get(&a, "/hold/a"); /* the fourth */
	g_wait_ge(&g.held, 1);
	get(&b, "/w/b"); /* waits for a worker */
	wait_stats(hs, 0, 1);
	g_set(&g.hold_open);
	expect_answer(&a, 200, "GET /hold/a 0");
	expect_answer(&b, 200, "GET /w/b 0");
	char order[sizeof g.order];
	g_copy(order, g.order);
	/* b ran before any wait started (a wait on a would have held it
	 * for its 1 s) */
	const char *pb = strstr(order, "/w/b "), *pw = strchr(order, '~');
	ck_assert_msg(pb && (!pw || pb < pw), "ran and waited in the order: %s",
	              order);
	release_three(k);
	c_close(&a);
	c_close(&b);
	node_http_close(hs);
}
END_TEST

/* A request a waiting worker reads while another waits for a worker goes
 * behind that one (through the I/O thread), not ahead of it. The hook
 * holds the worker at its wait until both are there. */
START_TEST(read_while_others_wait_goes_behind_them)
{
	t_linger_us = 1000000;
	t_hook = 1;
	struct node_http *hs = server(4, 0, 0);
	static struct client k[3], a, b;
	hold_three(hs, k);
	c_open(&a, hs);
	c_open(&b, hs);
	g_set(&g.hook_armed);
	get(&a, "/w/a1");
	expect_answer(&a, 200, "GET /w/a1 0");
	g_wait_ge(&g.hook_in, 1); /* the fourth is about to wait on a */
	get(&a, "/w/a2");         /* there when it waits */
	get(&b, "/w/b");          /* and this waits for a worker */
	wait_stats(hs, 0, 1);
	g_set(&g.hook_go);
	expect_answer(&b, 200, "GET /w/b 0");
	expect_answer(&a, 200, "GET /w/a2 0");
	char order[sizeof g.order], io[sizeof g.io_order];
	g_copy(order, g.order);
	g_copy(io, g.io_order);
	const char *pb = strstr(order, "/w/b "), *pa = strstr(order, "/w/a2 ");
	ck_assert_msg(pb && pa && pb < pa, "ran in the order: %s", order);
	/* the worker read a2 and gave it to the I/O thread to route */
	ck_assert_msg(strstr(io, "/w/a2@io "), "routed: %s", io);
	release_three(k);
	c_close(&a);
	c_close(&b);
	node_http_close(hs);
}
END_TEST

START_TEST(stop_answers_every_request_in_flight)
{
	enum { WORKERS = 2, QUEUED = 3, N = WORKERS + QUEUED };
	struct node_http *hs = server(WORKERS, 8, 0);
	static struct client c[N];
	for (int i = 0; i < N; i++)
		c_open(&c[i], hs);
	for (int i = 0; i < WORKERS; i++)
		get(&c[i], "/block/run");
	wait_entered(WORKERS);
	for (int i = WORKERS; i < N; i++)
		get(&c[i], "/block/queued");
	wait_stats(hs, N, QUEUED);
	/* stop while they run and wait: the workers finish them all */
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, closer_main, hs), 0);
	uint64_t until = lora_now_ms() + T_WAIT_MS;
	while (!node_http_closing(hs)) {
		ck_assert(lora_now_ms() < until);
		sched_yield();
	}
	gate_open();
	for (int i = 0; i < N; i++)
		expect_answer(&c[i], 200,
		              i < WORKERS ? "GET /block/run 0"
		                          : "GET /block/queued 0");
	pthread_join(t, NULL);
	ck_assert_int_eq(g.stopped_runs, 1);
	for (int i = 0; i < N; i++) {
		ck_assert(c_closed(&c[i]));
		c_close(&c[i]);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("node_http");
	TCase *t = tcase_create("http");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, time_header_parsed_strictly);
	tcase_add_test(t, pipelined_requests_answered_in_order);
	tcase_add_test(t, children_answer_inside_their_parent);
	tcase_add_test(t, slow_client_holds_nobody_up);
	tcase_add_test(t, oversize_heads_and_bodies_refused);
	tcase_add_test(t, connection_cap_closes_the_extra_ones);
	tcase_add_test(t, silent_flood_from_one_source_leaves_room);
	tcase_add_test(t,
	               unauthenticated_keepalive_from_one_source_leaves_room);
	tcase_add_test(t, saturated_workers_answer_503);
	tcase_add_test(t, stop_answers_every_request_in_flight);
	tcase_add_test(t, worker_waits_for_the_next_request);
	tcase_add_test(t, waiting_worker_gives_way);
	tcase_add_test(t, no_wait_while_a_request_waits_for_a_worker);
	tcase_add_test(t, read_while_others_wait_goes_behind_them);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
