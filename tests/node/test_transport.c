/* test_transport.c - the peer transport with real nng streams on loopback
 * (127.0.46.x): order, integrity, big and oversize frames, a peer down and
 * back, garbage connections, the wire format, close with frames in flight;
 * and with peer TLS (certificates from deploy/gen-certs.sh): order,
 * integrity and big frames through TLS, a node holding another node's
 * certificate refused both ways, a dialer refusing a certificate that
 * names its peer among others or only in its CN, a plaintext dialer
 * refused, and no byte in clear from a dialer whose handshake never
 * completes or (test hook) that has no TLS session. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lora.h"
#include "tls.h"
#include "transport.h"

#define T_PORT        "5046"
#define T_SENDERS_MAX 4
#define T_FRAMES      3000
#define T_FRAME_MAX   4096
#define T_BIG_BYTES   (8u << 20)
#define T_WAIT_MS     5000
#define T_PING_SEQ    UINT64_MAX
#define T_IDLE_CONNS  80 /* more than the listener keeps open (64) */
#define T_LANES       4  /* flood lanes: seq >> 48 names the sending thread */
#define T_FLOOD_MAX   (1u << 21) /* frames one flood thread may send */
#define T_INFO_EVERY  100
/* certificates from the CA that name node 3 not alone (node<N>.pem) */
#define T_CERT_3_AND_2 32 /* DNS lora-node-3 and lora-node-2 */
#define T_CERT_CN_3    33 /* CN lora-node-3, no subjectAltName */

static unsigned seed;
/* peer TLS for open_node (the "tls" case): certificates of nodes 1-4 */
static int use_tls;
static char cert_dir[64];

/* The sequence numbers one flood lane delivered, in arrival order. */
struct lane_log {
	uint64_t *seq; /* owned, freed by rec_free */
	size_t n, cap;
};

/* What one transport received. */
struct rec {
	pthread_mutex_t mu;
	uint64_t next_seq[T_SENDERS_MAX + 1];  /* per sender, raft frames */
	uint64_t next_info[T_SENDERS_MAX + 1]; /* per sender, info frames */
	unsigned long frames, info_frames, bad;
	size_t big_len, max_len; /* max_len: of the counted frames */
	int big_ok;
	struct lane_log lane[T_LANES]; /* flood frames (lane 1..3) */
};

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
}

static void rec_free(struct rec *r)
{
	for (int i = 0; i < T_LANES; i++)
		free(r->lane[i].seq);
	memset(r->lane, 0, sizeof r->lane);
}

static void lane_add(struct lane_log *l, uint64_t seq)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1024;
		uint64_t *p = realloc(l->seq, cap * sizeof *p);
		if (p == NULL)
			abort();
		l->seq = p, l->cap = cap;
	}
	l->seq[l->n++] = seq;
}

/* Frames one lane delivered so far, and the highest sequence among them. */
static size_t lane_count(struct rec *r, int lane, uint64_t *max_seq)
{
	pthread_mutex_lock(&r->mu);
	size_t n = r->lane[lane].n;
	uint64_t m = 0;
	for (size_t i = 0; i < n; i++)
		if ((r->lane[lane].seq[i] & 0xffffffffffffull) >= m)
			m = r->lane[lane].seq[i] & 0xffffffffffffull;
	pthread_mutex_unlock(&r->mu);
	if (max_seq != NULL)
		*max_seq = m;
	return n;
}

static uint8_t pattern(uint64_t from, uint64_t seq, size_t i)
{
	return (uint8_t)(from * 31 + seq * 7 + i);
}

/* A payload: [be64 seq][pattern bytes]. */
static void fill(uint8_t *p, size_t len, uint64_t from, uint64_t seq)
{
	lora_put_be64(p, seq);
	for (size_t i = 8; i < len; i++)
		p[i] = pattern(from, seq, i);
}

static int intact(const uint8_t *p, size_t len, uint64_t from, uint64_t seq)
{
	for (size_t i = 8; i < len; i++)
		if (p[i] != pattern(from, seq, i))
			return 0;
	return 1;
}

static void on_frame(void *arg, int kind, uint64_t from, const uint8_t *p,
                     size_t len)
{
	struct rec *r = arg;
	pthread_mutex_lock(&r->mu);
	if (len < 8 || from == 0 || from > T_SENDERS_MAX) {
		r->bad++;
	} else if (kind == NODE_FRAME_INFO) {
		/* in order among themselves, from each sender */
		if (lora_get_be64(p) < r->next_info[from])
			r->bad++;
		r->next_info[from] = lora_get_be64(p) + 1;
		r->info_frames++;
	} else if (lora_get_be64(p) == T_PING_SEQ) {
		/* connection probes */
	} else if ((lora_get_be64(p) >> 48) != 0) {
		uint64_t seq = lora_get_be64(p), lane = seq >> 48;
		if (lane >= T_LANES || !intact(p, len, from, seq))
			r->bad++;
		else
			lane_add(&r->lane[lane], seq);
	} else if (len >= T_BIG_BYTES / 2) {
		r->big_len = len;
		r->big_ok = intact(p, len, from, lora_get_be64(p));
	} else {
		uint64_t seq = lora_get_be64(p);
		/* gaps are counted by the callers; never back or twice */
		if (seq < r->next_seq[from] || !intact(p, len, from, seq))
			r->bad++;
		r->next_seq[from] = seq + 1;
		r->frames++;
		if (len > r->max_len)
			r->max_len = len;
	}
	pthread_mutex_unlock(&r->mu);
}

static void addr_of(int node, char *out, size_t n)
{
	snprintf(out, n, "127.0.46.%d:%s", node, T_PORT);
}

/* Peer TLS settings with the certificate of node cert_of. */
static struct node_tls tls_of(int cert_of)
{
	struct node_tls t = {.mode = NODE_TLS_REQUIRED};
	snprintf(t.ca, sizeof t.ca, "%s/ca.pem", cert_dir);
	snprintf(t.cert, sizeof t.cert, "%s/node%d.pem", cert_dir, cert_of);
	snprintf(t.key, sizeof t.key, "%s/node%d.key", cert_dir, cert_of);
	return t;
}

/* Node `node`, with peer TLS (when use_tls) on the certificate of node
 * cert_of. */
static struct node_transport *open_as(int node, int cert_of, struct rec *r)
{
	char addr[64], err[256] = "";
	addr_of(node, addr, sizeof addr);
	struct node_transport *t = NULL;
	struct node_tls tls = tls_of(cert_of);
	int rc = node_transport_open(
	    (uint64_t)node, addr, use_tls ? &tls : NULL, on_frame, r, &t, err);
	ck_assert_msg(rc == 0, "open %s: %s", addr, err);
	return t;
}

static struct node_transport *open_node(int node, struct rec *r)
{
	return open_as(node, node, r);
}

static void peer(struct node_transport *t, int node)
{
	char addr[64], err[256] = "";
	addr_of(node, addr, sizeof addr);
	ck_assert_int_eq(node_transport_set_peer(t, (uint64_t)node, addr, err),
	                 0);
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Waits until a probe frame to `to` is accepted (the stream is up). */
static int ping(struct node_transport *t, uint64_t to, int timeout_ms)
{
	uint8_t p[8];
	lora_put_be64(p, T_PING_SEQ);
	return node_transport_send_wait(t, to, NODE_FRAME_RAFT, p, sizeof p,
	                                timeout_ms);
}

/* Waits up to timeout_ms until r has `frames` frames and, unless from is
 * 0, sender from's next sequence number is at least next. */
static int wait_until(struct rec *r, unsigned long frames, uint64_t from,
                      uint64_t next, int timeout_ms)
{
	long end = now_ms() + timeout_ms;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		int ok = r->frames >= frames &&
		         (from == 0 || r->next_seq[from] >= next);
		pthread_mutex_unlock(&r->mu);
		if (ok)
			return 1;
		if (now_ms() > end)
			return 0;
		sleep_ms(5);
	}
}

static int wait_for(struct rec *r, unsigned long frames, uint64_t from,
                    uint64_t next)
{
	return wait_until(r, frames, from, next, T_WAIT_MS);
}

static int wait_for_ms(struct rec *r, unsigned long frames, int timeout_ms)
{
	return wait_until(r, frames, 0, 0, timeout_ms);
}

struct sender {
	struct node_transport *t;
	uint64_t self, to;
	unsigned seed;
	int failed;
	int info_sent;     /* info frames the transport accepted */
	int stop;          /* flood: set by the test (atomic) */
	uint64_t tries;    /* flood: send calls made (atomic) */
	uint8_t *accepted; /* flood: [i] = 1 if frame i was accepted */
};

/* Sends T_FRAMES frames of random sizes (send_wait: none is dropped). */
static void *sender_main(void *arg)
{
	struct sender *s = arg;
	uint8_t *p = malloc(T_FRAME_MAX);
	for (uint64_t seq = 0; seq < T_FRAMES && p; seq++) {
		size_t len = 8 + (size_t)rand_r(&s->seed) % (T_FRAME_MAX - 8);
		fill(p, len, s->self, seq);
		if (node_transport_send_wait(s->t, s->to, NODE_FRAME_RAFT, p,
		                             len, T_WAIT_MS) != 0)
			s->failed++;
		/* info frames may be dropped (never blocks): count those that
		 * were accepted, the stream is up so all of them must arrive */
		if (seq % T_INFO_EVERY == 0)
			s->info_sent +=
			    node_transport_send(s->t, s->to, NODE_FRAME_INFO, p,
			                        8) == 0;
	}
	free(p);
	return NULL;
}

START_TEST(frames_in_order_intact)
{
	struct rec ra, rb, rc;
	rec_init(&ra), rec_init(&rb), rec_init(&rc);
	struct node_transport *a = open_node(1, &ra), *b = open_node(2, &rb),
	                      *c = open_node(3, &rc);
	peer(b, 1), peer(c, 1);
	ck_assert_int_eq(ping(b, 1, T_WAIT_MS), 0);
	ck_assert_int_eq(ping(c, 1, T_WAIT_MS), 0);
	struct sender sb = {.t = b, .self = 2, .to = 1, .seed = seed},
	              sc = {.t = c, .self = 3, .to = 1, .seed = seed + 1};
	pthread_t tb, tc;
	pthread_create(&tb, NULL, sender_main, &sb);
	pthread_create(&tc, NULL, sender_main, &sc);
	pthread_join(tb, NULL);
	pthread_join(tc, NULL);
	ck_assert_int_eq(sb.failed + sc.failed, 0);
	ck_assert(wait_for(&ra, 2 * T_FRAMES, 0, 0));
	/* every info frame accepted arrives too (on the side thread) */
	unsigned long info = (unsigned long)(sb.info_sent + sc.info_sent);
	long end = now_ms() + T_WAIT_MS;
	for (;;) {
		pthread_mutex_lock(&ra.mu);
		int done = ra.info_frames >= info;
		pthread_mutex_unlock(&ra.mu);
		if (done || now_ms() > end)
			break;
		sleep_ms(5);
	}
	pthread_mutex_lock(&ra.mu);
	/* each sender's frames exactly once, in order (bad counts a frame
	 * that goes back or repeats), intact */
	ck_assert_uint_eq(ra.bad, 0);
	ck_assert_uint_eq(ra.frames, 2 * T_FRAMES);
	ck_assert_uint_eq(ra.next_seq[2], T_FRAMES);
	ck_assert_uint_eq(ra.next_seq[3], T_FRAMES);
	ck_assert_uint_eq(ra.info_frames, info);
	ck_assert_uint_gt(info, 0);
	pthread_mutex_unlock(&ra.mu);
	node_transport_close(b), node_transport_close(c);
	node_transport_close(a);
}
END_TEST

START_TEST(big_frame_and_oversize)
{
	struct rec ra, rb;
	rec_init(&ra), rec_init(&rb);
	struct node_transport *a = open_node(1, &ra), *b = open_node(2, &rb);
	peer(b, 1);
	ck_assert_int_eq(ping(b, 1, T_WAIT_MS), 0);
	uint8_t *big = malloc(T_BIG_BYTES);
	ck_assert_ptr_nonnull(big);
	fill(big, T_BIG_BYTES, 2, 77);
	ck_assert_int_eq(node_transport_send_wait(b, 1, NODE_FRAME_RAFT, big,
	                                          T_BIG_BYTES, T_WAIT_MS),
	                 0);
	/* refused before a byte is read: len alone is over the limit */
	ck_assert_int_eq(node_transport_send(b, 1, NODE_FRAME_RAFT, big,
	                                     NODE_PEER_MSG_BYTES_MAX),
	                 LORA_ELIMIT);
	ck_assert_int_eq(node_transport_send_wait(b, 1, NODE_FRAME_RAFT, big,
	                                          NODE_PEER_MSG_BYTES_MAX, 10),
	                 LORA_ELIMIT);
	fill(big, 100, 2, 0); /* small frames still flow after the big one */
	ck_assert_int_eq(node_transport_send_wait(b, 1, NODE_FRAME_RAFT, big,
	                                          100, T_WAIT_MS),
	                 0);
	ck_assert(wait_for(&ra, 1, 2, 1));
	pthread_mutex_lock(&ra.mu);
	ck_assert_uint_eq(ra.big_len, T_BIG_BYTES);
	ck_assert(ra.big_ok);
	ck_assert_uint_eq(ra.bad, 0);
	pthread_mutex_unlock(&ra.mu);
	free(big);
	node_transport_close(b);
	node_transport_close(a);
}
END_TEST

/* Sends seq..seq+n-1 from 2 to 1 without waiting; returns how many were
 * accepted (all must be, on a connected peer with room). */
static int send_burst(struct node_transport *b, uint64_t seq, int n)
{
	uint8_t p[64];
	int ok = 0;
	for (int i = 0; i < n; i++) {
		fill(p, sizeof p, 2, seq + (uint64_t)i);
		ok += node_transport_send(b, 1, NODE_FRAME_RAFT, p, sizeof p) ==
		      0;
	}
	return ok;
}

START_TEST(peer_down_then_back)
{
	struct rec ra, rb;
	rec_init(&ra), rec_init(&rb);
	struct node_transport *b = open_node(2, &rb);
	peer(b, 1); /* node 1 is not up */
	uint8_t p[64];
	fill(p, sizeof p, 2, 0);
	long t0 = now_ms();
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(
		    node_transport_send(b, 1, NODE_FRAME_RAFT, p, sizeof p),
		    LORA_EUNAVAILABLE);
	ck_assert_int_lt(now_ms() - t0, 500);
	ck_assert_int_eq(ping(b, 1, 100), LORA_EUNAVAILABLE);
	ck_assert_int_eq(node_transport_send(b, 7, NODE_FRAME_RAFT, p, 8),
	                 LORA_EUNAVAILABLE); /* unknown peer */
	/* Not a wait for something: node 1 stays down long enough for the
	 * dialer's backoff to reach its longest (500 ms), which the reconnect
	 * below must survive. */
	sleep_ms(700);
	struct node_transport *a = open_node(1, &ra);
	ck_assert_int_eq(ping(b, 1, 2000), 0); /* reconnected by itself */
	ck_assert_int_eq(send_burst(b, 0, 100), 100);
	ck_assert(wait_for(&ra, 100, 2, 100));
	/* node 1 goes away and comes back: sends fail, then resume */
	node_transport_close(a);
	long end = now_ms() + T_WAIT_MS;
	while (ping(b, 1, 0) == 0 && now_ms() < end)
		sleep_ms(5);
	ck_assert_int_eq(ping(b, 1, 0), LORA_EUNAVAILABLE);
	rec_init(&ra);
	a = open_node(1, &ra);
	ck_assert_int_eq(ping(b, 1, 2000), 0);
	ra.next_seq[2] = 500;
	ck_assert_int_eq(send_burst(b, 500, 100), 100);
	ck_assert(wait_for(&ra, 100, 2, 600));
	ck_assert_uint_eq(ra.bad, 0);
	node_transport_close(b);
	node_transport_close(a);
}
END_TEST

/* A raw TCP connection to node's peer port from 127.0.46.9. */
static int raw_connect(int node)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.46.9", &sa.sin_addr);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	char ip[32];
	snprintf(ip, sizeof ip, "127.0.46.%d", node);
	inet_pton(AF_INET, ip, &sa.sin_addr);
	sa.sin_port = htons((uint16_t)atoi(T_PORT));
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

/* Reads until EOF (1), or 0 when the peer keeps it open past timeout. */
static int raw_closed(int fd, int timeout_ms)
{
	long end = now_ms() + timeout_ms;
	char buf[256];
	while (now_ms() < end) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 1;
	}
	return 0;
}

static const uint8_t push_hello[8] = {0, 'S', 'P', 0, 0, 0x50, 0, 0};

START_TEST(garbage_closes_only_that_connection)
{
	struct rec ra, rb;
	rec_init(&ra), rec_init(&rb);
	struct node_transport *a = open_node(1, &ra), *b = open_node(2, &rb);
	peer(b, 1);
	ck_assert_int_eq(ping(b, 1, T_WAIT_MS), 0);
	int g1 = raw_connect(1); /* not a peer hello */
	const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	ck_assert_int_eq(send(g1, junk, sizeof junk - 1, 0), sizeof junk - 1);
	int g2 = raw_connect(1); /* a hello, then a length over the limit */
	uint8_t over[16];
	memcpy(over, push_hello, 8);
	lora_put_be64(over + 8, (uint64_t)NODE_PEER_MSG_BYTES_MAX + 1);
	ck_assert_int_eq(send(g2, over, sizeof over, 0), sizeof over);
	int g3 =
	    raw_connect(1); /* a hello, then a frame shorter than a header */
	uint8_t tiny[8 + 8 + 3] = {0};
	memcpy(tiny, push_hello, 8);
	lora_put_be64(tiny + 8, 3);
	ck_assert_int_eq(send(g3, tiny, sizeof tiny, 0), sizeof tiny);
	ck_assert(raw_closed(g1, T_WAIT_MS));
	ck_assert(raw_closed(g2, T_WAIT_MS));
	ck_assert(raw_closed(g3, T_WAIT_MS));
	close(g1), close(g2), close(g3);
	ck_assert_int_eq(send_burst(b, 0, 50), 50); /* b's stream still up */
	ck_assert(wait_for(&ra, 50, 2, 50));
	/* idle strays past the listener's limit are refused, b unharmed */
	int idle[T_IDLE_CONNS], refused = 0;
	for (int i = 0; i < T_IDLE_CONNS; i++)
		idle[i] = raw_connect(1);
	for (int i = T_IDLE_CONNS - 8; i < T_IDLE_CONNS; i++)
		refused += raw_closed(idle[i], 300);
	ck_assert_int_gt(refused, 0);
	ck_assert(raw_closed(idle[0], 7000)); /* no hello within 5 s */
	for (int i = 0; i < T_IDLE_CONNS; i++)
		close(idle[i]);
	ck_assert_int_eq(send_burst(b, 50, 50), 50);
	ck_assert(wait_for(&ra, 100, 2, 100));
	ck_assert_uint_eq(ra.bad, 0);
	node_transport_close(b);
	node_transport_close(a);
}
END_TEST

/* A stream that said hello and then fell silent (a crashed or cut-off
 * peer, a stray client) is closed after the idle limit, so such streams
 * cannot fill the listener's places for good; a live peer reconnects. */
START_TEST(silent_stream_is_closed)
{
	struct rec ra, rb;
	rec_init(&ra), rec_init(&rb);
	struct node_transport *a = open_node(1, &ra), *b = open_node(2, &rb);
	node_transport_set_idle_ms(a, 500);
	int s = raw_connect(1);
	ck_assert_int_eq(send(s, push_hello, 8, 0), 8);
	ck_assert(!raw_closed(s, 200)); /* accepted, and open for now */
	ck_assert(raw_closed(s, 3000));
	close(s);
	peer(b, 1);
	ck_assert_int_eq(ping(b, 1, T_WAIT_MS), 0);
	ck_assert_uint_eq(ra.bad, 0);
	node_transport_close(b);
	node_transport_close(a);
}
END_TEST

/* The bytes on the wire are nng's push0 over TCP: a raw client speaking it
 * is understood, and our dialer opens with the push hello from its own
 * host (NNG_OPT_LOCADDR). */
START_TEST(wire_format_and_local_address)
{
	struct rec ra;
	rec_init(&ra);
	struct node_transport *a = open_node(1, &ra);
	int fd = raw_connect(1);
	uint8_t out[8 + 8 + 9 + 16];
	memcpy(out, push_hello, 8);
	lora_put_be64(out + 8, 9 + 16);
	out[16] = NODE_FRAME_RAFT;
	lora_put_be64(out + 17, 4);
	fill(out + 25, 16, 4, 0);
	ck_assert_int_eq(send(fd, out, sizeof out, 0), sizeof out);
	uint8_t reply[8];
	ck_assert_int_eq(recv(fd, reply, 8, MSG_WAITALL), 8);
	ck_assert_int_eq(reply[5], 0x51); /* pull v0 */
	ck_assert(wait_for(&ra, 1, 4, 1));
	close(fd);
	/* a listener of ours on 127.0.46.9 sees node 1 dial from 127.0.46.1 */
	int l = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)atoi(T_PORT))};
	inet_pton(AF_INET, "127.0.46.9", &sa.sin_addr);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(listen(l, 4), 0);
	char err[256];
	ck_assert_int_eq(
	    node_transport_set_peer(a, 9, "127.0.46.9:" T_PORT, err), 0);
	socklen_t sl = sizeof sa;
	int c = accept(l, (struct sockaddr *)&sa, &sl);
	ck_assert_int_ge(c, 0);
	char ip[32];
	inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
	ck_assert_str_eq(ip, "127.0.46.1");
	uint8_t hello[8];
	ck_assert_int_eq(recv(c, hello, 8, MSG_WAITALL), 8);
	ck_assert_mem_eq(hello, push_hello, 8);
	close(c), close(l);
	node_transport_close(a);
}
END_TEST

/* Floods peer s->to on lane s->to (seq = lane << 48 | i) until told to
 * stop, noting which frames the transport accepted. */
static void *flood_main(void *arg)
{
	struct sender *s = arg;
	uint8_t p[512];
	uint64_t lane = s->to << 48;
	for (uint64_t i = 0;
	     i < T_FLOOD_MAX && !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
	     i++) {
		fill(p, sizeof p, s->self, lane | i);
		int rc = node_transport_send(s->t, s->to, NODE_FRAME_RAFT, p,
		                             sizeof p);
		s->accepted[i] = rc == 0;
		__atomic_store_n(&s->tries, i + 1, __ATOMIC_RELEASE);
		if (rc != 0)
			sched_yield(); /* buffer full or peer away */
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Checks what one lane delivered at one receiver against what its sender
 * had accepted: no frame twice, none that was refused, in order unless
 * `sorted` (then sorted first), and no accepted frame missing between
 * two delivered ones except at stream changes: at most runs_max runs. */
static void check_lane(struct rec *r, int lane, const struct sender *s,
                       int sorted, int runs_max, const char *what)
{
	struct lane_log *l = &r->lane[lane];
	if (sorted && l->n > 1)
		qsort(l->seq, l->n, sizeof l->seq[0], cmp_u64);
	uint64_t tries = __atomic_load_n(&s->tries, __ATOMIC_ACQUIRE);
	int runs = l->n > 0;
	for (size_t k = 0; k < l->n; k++) {
		uint64_t i = l->seq[k] & 0xffffffffffffull;
		ck_assert_msg(i < tries && s->accepted[i],
		              "%s: frame %llu delivered but never accepted",
		              what, (unsigned long long)i);
		if (k == 0)
			continue;
		uint64_t prev = l->seq[k - 1] & 0xffffffffffffull;
		ck_assert_msg(i > prev, "%s: frame %llu after %llu", what,
		              (unsigned long long)i, (unsigned long long)prev);
		for (uint64_t j = prev + 1; j < i; j++)
			if (s->accepted[j]) {
				runs++;
				break;
			}
	}
	ck_assert_msg(runs <= runs_max,
	              "%s: %zu frames in %d runs with accepted frames missing "
	              "between them (at most %d streams)",
	              what, l->n, runs, runs_max);
}

/* Waits until lane `lane` delivered a frame numbered at least `from` at
 * r (the stream carries frames sent now). */
static int wait_lane(struct rec *r, int lane, uint64_t from)
{
	long end = now_ms() + T_WAIT_MS;
	uint64_t max = 0;
	while (lane_count(r, lane, &max) == 0 || max < from) {
		if (now_ms() > end)
			return 0;
		sleep_ms(5);
	}
	return 1;
}

/* Floods a peer from two threads while the peer table changes under them
 * and the transports close: no crash, no leak, no use after free; and on
 * every stream the frames accepted arrive intact, in order, each once,
 * with no gap but where a stream ended (a move, a removal, a close). */
START_TEST(close_with_frames_in_flight)
{
	struct rec ra, rb, rc;
	rec_init(&ra), rec_init(&rb), rec_init(&rc);
	struct node_transport *a = open_node(1, &ra), *b = open_node(2, &rb),
	                      *c = open_node(3, &rc);
	peer(a, 2), peer(a, 3), peer(b, 1);
	ck_assert_int_eq(ping(a, 2, T_WAIT_MS), 0);
	ck_assert_int_eq(ping(a, 3, T_WAIT_MS), 0);
	struct sender s2 = {.t = a, .self = 1, .to = 2},
	              s3 = {.t = a, .self = 1, .to = 3};
	s2.accepted = calloc(T_FLOOD_MAX, 1);
	s3.accepted = calloc(T_FLOOD_MAX, 1);
	ck_assert(s2.accepted != NULL && s3.accepted != NULL);
	pthread_t t2, t3;
	pthread_create(&t2, NULL, flood_main, &s2);
	pthread_create(&t3, NULL, flood_main, &s3);
	ck_assert(wait_lane(&rb, 2, 100)); /* both streams flowing */
	ck_assert(wait_lane(&rc, 3, 100));
	char err[256];
	node_transport_set_peer(a, 2, "127.0.46.3:" T_PORT, err); /* move */
	uint64_t moved = __atomic_load_n(&s2.tries, __ATOMIC_ACQUIRE);
	node_transport_remove_peer(a, 3);
	peer(a, 3);
	uint64_t readded = __atomic_load_n(&s3.tries, __ATOMIC_ACQUIRE);
	ck_assert(wait_lane(&rc, 2, moved));   /* lane 2 now reaches c */
	ck_assert(wait_lane(&rc, 3, readded)); /* and lane 3 again */
	uint64_t closing = __atomic_load_n(&s2.tries, __ATOMIC_ACQUIRE);
	node_transport_close(c);         /* a's streams to it break mid-send */
	long end = now_ms() + T_WAIT_MS; /* a keeps sending into the break */
	while (__atomic_load_n(&s2.tries, __ATOMIC_ACQUIRE) < closing + 1000 &&
	       now_ms() < end)
		sleep_ms(5);
	__atomic_store_n(&s2.stop, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&s3.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t2, NULL);
	pthread_join(t3, NULL);
	uint8_t p[64];
	fill(p, sizeof p, 2, 0);
	node_transport_send(b, 1, NODE_FRAME_RAFT, p, sizeof p);
	node_transport_close(a); /* with frames in flight both ways */
	node_transport_close(b);
	printf("close_with_frames_in_flight: lane 2 %zu at node 2, %zu at node "
	       "3; lane 3 %zu at node 3\n",
	       rb.lane[2].n, rc.lane[2].n, rc.lane[3].n);
	ck_assert_uint_eq(ra.bad + rb.bad + rc.bad, 0);
	/* b: lane 2 up to the move, one stream */
	check_lane(&rb, 2, &s2, 0, 1, "lane 2 at node 2");
	/* c: lane 2 after the move, one stream; lane 3 on the stream before
	 * the removal and the one after (which may overlap in delivery) */
	check_lane(&rc, 2, &s2, 0, 1, "lane 2 at node 3");
	check_lane(&rc, 3, &s3, 1, 2, "lane 3 at node 3");
	ck_assert_uint_eq(rb.lane[3].n + rc.lane[1].n + rb.lane[1].n, 0);
	free(s2.accepted), free(s3.accepted);
	rec_free(&ra), rec_free(&rb), rec_free(&rc);
}
END_TEST

/* Allocation failures (lora_alloc_fail_after) on both sides: the send is
 * refused or the receiving stream closes, nothing crashes or leaks, and
 * frames flow again once memory is back. */
START_TEST(out_of_memory_then_recovery)
{
	struct rec ra, rb;
	rec_init(&ra), rec_init(&rb);
	struct node_transport *a = open_node(1, &ra), *b = open_node(2, &rb);
	peer(b, 1);
	ck_assert_int_eq(ping(b, 1, T_WAIT_MS), 0);
	size_t big = 4 * T_FRAME_MAX * 64; /* past both sides' buffers */
	uint8_t *p = malloc(big);
	fill(p, big, 2, 0);
	lora_alloc_fail_after(0, 1);
	int rc = node_transport_send(b, 1, NODE_FRAME_RAFT, p, big);
	lora_alloc_fail_after(-1, 0);
	ck_assert_int_eq(rc, LORA_ENOMEM);
	/* the sender's buffer grows (allocation 1), the receiver's cannot
	 * (allocation 2): that stream closes, the frame is lost */
	lora_alloc_fail_after(1, 0);
	ck_assert_int_eq(node_transport_send(b, 1, NODE_FRAME_RAFT, p, big), 0);
	/* frames accepted before node 2 saw the close are lost too: retry */
	long end = now_ms() + T_WAIT_MS;
	uint64_t seq = 1;
	while (!wait_for_ms(&ra, 1, 10) && now_ms() < end) {
		fill(p, 64, 2, seq);
		seq += node_transport_send(b, 1, NODE_FRAME_RAFT, p, 64) == 0;
	}
	lora_alloc_fail_after(-1, 0);
	pthread_mutex_lock(&ra.mu);
	ck_assert_uint_ge(ra.frames, 1);
	ck_assert_uint_eq(ra.bad, 0);
	ck_assert_uint_lt(ra.max_len, big); /* the big frame was lost */
	pthread_mutex_unlock(&ra.mu);
	free(p);
	node_transport_close(b);
	node_transport_close(a);
}
END_TEST

/* Sends a frame (seq 0, 1, ...) from self to `to` every 10 ms for ms
 * milliseconds, whether or not the stream is up (a dialer whose stream
 * is refused keeps trying: its frames must never arrive). */
static void send_for(struct node_transport *t, uint64_t self, uint64_t to,
                     int ms)
{
	uint8_t p[64];
	for (uint64_t seq = 0; seq < (uint64_t)ms / 10; seq++) {
		fill(p, sizeof p, self, seq);
		(void)node_transport_send(t, to, NODE_FRAME_RAFT, p, sizeof p);
		sleep_ms(10);
	}
}

/* With peer TLS: node 3 holding node 2's certificate can neither be
 * dialed as node 3 (its certificate names 2) nor send frames as node 3
 * (its stream's certificate names 2); node 2 itself gets through. */
START_TEST(tls_impostor_refused)
{
	struct rec ra, rb, rc;
	rec_init(&ra), rec_init(&rb), rec_init(&rc);
	struct node_transport *a = open_node(1, &ra), *b = open_node(2, &rb),
	                      *c = open_as(3, 2, &rc);
	peer(a, 3), peer(b, 1), peer(c, 1);
	ck_assert_int_eq(ping(b, 1, T_WAIT_MS), 0);
	ck_assert_int_eq(send_burst(b, 0, 10), 10);
	ck_assert(wait_for(&ra, 10, 2, 10));
	/* c's handshake with 1 passes (its certificate is from the CA) but
	 * its frames, naming node 3, close the stream; 1 dialing "node 3"
	 * meets a certificate naming 2 and never gets a stream up */
	send_for(c, 3, 1, 500);
	send_for(a, 1, 3, 500);
	pthread_mutex_lock(&ra.mu);
	ck_assert_uint_eq(ra.next_seq[3], 0);
	ck_assert_uint_eq(ra.frames, 10);
	ck_assert_uint_eq(ra.bad, 0);
	pthread_mutex_unlock(&ra.mu);
	pthread_mutex_lock(&rc.mu);
	ck_assert_uint_eq(rc.frames, 0);
	ck_assert_uint_eq(rc.bad, 0);
	pthread_mutex_unlock(&rc.mu);
	node_transport_close(c), node_transport_close(b);
	node_transport_close(a);
}
END_TEST

/* With peer TLS: node 3 shows a certificate from the CA that mbedtls's
 * name check accepts for "lora-node-3" but that does not name node 3
 * alone in its one DNS subjectAltName (T_CERT_3_AND_2: names 3 and 2;
 * T_CERT_CN_3: CN lora-node-3, no subjectAltName). The listener would
 * refuse such a dialer; node 2 dialing node 3 refuses it too, and its
 * frames never reach 3, while node 1 gets them. */
START_TEST(tls_dial_wants_the_one_name)
{
	static const int certs[] = {T_CERT_CN_3, T_CERT_3_AND_2};
	for (size_t i = 0; i < sizeof certs / sizeof *certs; i++) {
		struct rec ra, rb, rc;
		rec_init(&ra), rec_init(&rb), rec_init(&rc);
		struct node_transport *a = open_node(1, &ra),
		                      *b = open_node(2, &rb),
		                      *c = open_as(3, certs[i], &rc);
		peer(b, 1), peer(b, 3);
		ck_assert_int_eq(ping(b, 1, T_WAIT_MS), 0); /* the control */
		ck_assert_int_eq(send_burst(b, 0, 10), 10);
		ck_assert(wait_for(&ra, 10, 2, 10));
		send_for(b, 2, 3, 500);
		pthread_mutex_lock(&rc.mu);
		ck_assert_msg(rc.frames == 0, "cert %d: %lu frames reached 3",
		              certs[i], rc.frames);
		ck_assert_uint_eq(rc.bad, 0);
		pthread_mutex_unlock(&rc.mu);
		node_transport_close(c), node_transport_close(b);
		node_transport_close(a);
	}
}
END_TEST

/* A plaintext transport cannot reach a TLS one, nor the other way. */
START_TEST(tls_plaintext_refused)
{
	struct rec ra, rb, rc;
	rec_init(&ra), rec_init(&rb), rec_init(&rc);
	struct node_transport *a = open_node(1, &ra), *c = open_node(3, &rc);
	use_tls = 0;
	struct node_transport *b = open_node(2, &rb);
	use_tls = 1;
	peer(b, 1), peer(a, 2), peer(c, 1);
	ck_assert_int_eq(ping(c, 1, T_WAIT_MS), 0); /* TLS to TLS is fine */
	send_for(b, 2, 1, 500);
	send_for(a, 1, 2, 500);
	pthread_mutex_lock(&ra.mu);
	ck_assert_uint_eq(ra.next_seq[2], 0);
	ck_assert_uint_eq(ra.bad, 0);
	pthread_mutex_unlock(&ra.mu);
	pthread_mutex_lock(&rb.mu);
	ck_assert_uint_eq(rb.frames + rb.bad, 0);
	pthread_mutex_unlock(&rb.mu);
	node_transport_close(b), node_transport_close(c);
	node_transport_close(a);
}
END_TEST

/* A raw listener of the test's on 127.0.46.9 (the address of "node 9"). */
static int raw_listen(void)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)atoi(T_PORT))};
	inet_pton(AF_INET, "127.0.46.9", &sa.sin_addr);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(listen(l, 16), 0);
	return l;
}

/* What node 1 wrote on one accepted stream: its bytes, and whether it
 * closed the stream. */
struct raw_seen {
	uint8_t b[1 << 16];
	size_t len;
	int closed;
};

/* Accepts one stream on l, then reads what arrives on it for up to ms (or
 * until it closes), sending node 1's transport t a frame to node 9 every
 * 10 ms meanwhile. */
static void raw_watch(int l, struct node_transport *t, int ms,
                      struct raw_seen *out)
{
	memset(out, 0, sizeof *out);
	struct pollfd lp = {.fd = l, .events = POLLIN};
	ck_assert_msg(poll(&lp, 1, T_WAIT_MS) == 1, "node 1 never dialed");
	int c = accept(l, NULL, NULL);
	ck_assert_int_ge(c, 0);
	uint8_t p[64];
	long end = now_ms() + ms;
	for (uint64_t seq = 0; now_ms() < end && !out->closed; seq++) {
		fill(p, sizeof p, 1, seq);
		(void)node_transport_send(t, 9, NODE_FRAME_RAFT, p, sizeof p);
		struct pollfd pfd = {.fd = c, .events = POLLIN};
		if (poll(&pfd, 1, 10) <= 0)
			continue;
		ssize_t n = recv(c, out->b + out->len, sizeof out->b - out->len,
		                 MSG_DONTWAIT);
		if (n > 0)
			out->len += (size_t)n;
		else if (n == 0 || errno == ECONNRESET)
			out->closed = 1;
	}
	close(c);
}

/* Whether the bytes hold the push hello or any frame node 1 sent in
 * clear (its payload pattern, seq 0). */
static int raw_has_plaintext(const struct raw_seen *s)
{
	uint8_t p[64];
	fill(p, sizeof p, 1, 0);
	return memmem(s->b, s->len, push_hello, 8) != NULL ||
	       memmem(s->b, s->len, p, 16) != NULL;
}

/* With peer TLS, a listener that never answers the ClientHello (the
 * handshake never completes): node 1 writes the TLS record of its
 * ClientHello and nothing else, never its hello or its frames in clear,
 * however many frames wait for that peer. */
START_TEST(tls_unfinished_handshake_sends_no_plaintext)
{
	struct rec ra;
	rec_init(&ra);
	struct node_transport *a = open_node(1, &ra);
	int l = raw_listen();
	peer(a, 9);
	static struct raw_seen seen; /* 64 KiB: not on the stack */
	struct raw_seen *s = &seen;
	raw_watch(l, a, 500, s);
	ck_assert_msg(s->len > 0, "node 1 wrote nothing at all");
	ck_assert_int_eq(s->b[0], 0x16); /* a TLS handshake record */
	ck_assert_msg(!raw_has_plaintext(s), "plaintext in %zu bytes", s->len);
	close(l);
	node_transport_close(a);
}
END_TEST

#ifdef LORA_TEST_HOOKS
/* With peer TLS, a stream that has no TLS session (the test hook
 * node_transport_test_no_tls_session: as if its start had failed without
 * saying so): node 1 sends nothing on it, neither in clear nor otherwise,
 * and closes it; with the hook off its next stream starts a handshake. */
START_TEST(tls_no_session_sends_nothing)
{
	struct rec ra;
	rec_init(&ra);
	node_transport_test_no_tls_session(1);
	struct node_transport *a = open_node(1, &ra);
	int l = raw_listen();
	peer(a, 9);
	static struct raw_seen seen; /* 64 KiB: not on the stack */
	struct raw_seen *s = &seen;
	raw_watch(l, a, T_WAIT_MS, s);
	ck_assert_msg(s->len == 0, "%zu bytes sent without a TLS session%s",
	              s->len, raw_has_plaintext(s) ? ", in clear" : "");
	ck_assert_msg(s->closed, "the stream without a session stayed open");
	node_transport_test_no_tls_session(0);
	raw_watch(l, a, 500, s); /* the control: a redial, with a session */
	ck_assert_msg(s->len > 0 && s->b[0] == 0x16,
	              "no ClientHello once the session starts (%zu bytes)",
	              s->len);
	close(l);
	node_transport_close(a);
}
END_TEST
#endif

static void tls_on(void)
{
	use_tls = 1;
}

static void tls_off(void)
{
	use_tls = 0;
}

static Suite *transport_suite(void)
{
	Suite *s = suite_create("transport");
	TCase *tc = tcase_create("streams");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, frames_in_order_intact);
	tcase_add_test(tc, big_frame_and_oversize);
	tcase_add_test(tc, peer_down_then_back);
	tcase_add_test(tc, garbage_closes_only_that_connection);
	tcase_add_test(tc, silent_stream_is_closed);
	tcase_add_test(tc, wire_format_and_local_address);
	tcase_add_test(tc, close_with_frames_in_flight);
	tcase_add_test(tc, out_of_memory_then_recovery);
	suite_add_tcase(s, tc);
	TCase *tt = tcase_create("tls");
	tcase_set_timeout(tt, 60);
	tcase_add_checked_fixture(tt, tls_on, tls_off);
	tcase_add_test(tt, frames_in_order_intact);
	tcase_add_test(tt, big_frame_and_oversize);
	tcase_add_test(tt, peer_down_then_back);
	tcase_add_test(tt, tls_impostor_refused);
	tcase_add_test(tt, tls_dial_wants_the_one_name);
	tcase_add_test(tt, tls_plaintext_refused);
	tcase_add_test(tt, tls_unfinished_handshake_sends_no_plaintext);
#ifdef LORA_TEST_HOOKS
	tcase_add_test(tt, tls_no_session_sends_nothing);
#endif
	suite_add_tcase(s, tt);
	return s;
}

/* node<n>.pem/.key in cert_dir, signed by its CA, CN lora-node-3 and,
 * when san is not NULL, that subjectAltName (as deploy/gen-certs.sh
 * makes them otherwise): 0, or -1. */
static int cert_make(int n, const char *san)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
	         "cd %s && printf '%%s\\n' basicConstraints=CA:FALSE "
	         "keyUsage=critical,digitalSignature,keyEncipherment "
	         "extendedKeyUsage=serverAuth,clientAuth %s%s >ext%d && "
	         "openssl req -newkey ec -pkeyopt "
	         "ec_paramgen_curve:prime256v1 -nodes -keyout node%d.key "
	         "-out node%d.csr -subj /CN=lora-node-3 2>/dev/null && "
	         "openssl x509 -req -in node%d.csr -CA ca.pem -CAkey ca.key "
	         "-CAcreateserial -days 1 -extfile ext%d -out node%d.pem "
	         "2>/dev/null && rm -f ext%d node%d.csr",
	         cert_dir, san ? "subjectAltName=" : "", san ? san : "", n, n,
	         n, n, n, n, n, n);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const char *env = getenv("LORA_SEED");
	seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
	printf("test_transport: seed %u (LORA_SEED=%u replays it)\n", seed,
	       seed);
	fflush(stdout);
	snprintf(cert_dir, sizeof cert_dir, "/tmp/lora-transport-tls.XXXXXX");
	if (mkdtemp(cert_dir) == NULL)
		return 1;
	char cmd[512];
	snprintf(cmd, sizeof cmd,
	         "%s/deploy/gen-certs.sh %s 1@127.0.46.1 2@127.0.46.2 "
	         "3@127.0.46.3 4@127.0.46.4 >/dev/null",
	         LORA_SOURCE_DIR, cert_dir);
	if (system(cmd) != 0 ||
	    cert_make(T_CERT_3_AND_2, "DNS:lora-node-3,DNS:lora-node-2") != 0 ||
	    cert_make(T_CERT_CN_3, NULL) != 0) {
		fprintf(stderr, "test_transport: making certificates failed\n");
		return 1;
	}
	SRunner *sr = srunner_create(transport_suite());
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	snprintf(cmd, sizeof cmd, "rm -rf %s", cert_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_transport: cannot remove %s\n", cert_dir);
	return failed ? 1 : 0;
}
