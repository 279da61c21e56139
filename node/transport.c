/* transport.c - peer transport: length-prefixed frames on nng byte streams. */
#include "transport.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "config.h"
#include "log.h"
#include "lora.h"

/*
 * Why streams and not push0/pull0 sockets: an SP socket passes each message
 * through several nng task queues (pipe callbacks, socket queue, our aio),
 * each waking a thread, which costs more CPU than the message itself on a
 * small VM. Here a send is one nng_stream_send of every frame buffered for
 * that peer, and a receive is one nng_stream_recv of as many bytes as the
 * socket holds, parsed into frames and delivered on that same callback.
 *
 * TLS (peer_tls): the streams stay plain tcp:// and the bytes are wrapped
 * here with mbedtls on memory buffers (tls_peer.c): a batch of frames is
 * encrypted into records straight into the buffer the one stream send
 * takes, and the bytes one receive brings are decrypted and parsed on that
 * same callback; the handshake is stepped by the same callbacks. nng's
 * tls+tcp would add a task-queue hand-off to every send and receive (the
 * wire is the same: TLS 1.2, then the hello and frames inside).
 *
 * Locking: t->mu guards the peer table (lookups by senders, set/remove);
 * each peer's pc->mu guards its stream, buffers and aios' arming; t->in_mu
 * guards the inbound connection lists. Order: t->mu before pc->mu. An aio
 * is only armed under its owner's mutex after checking `closing`, and
 * closers set `closing` first, then close the stream and nng_aio_stop every
 * aio, so no callback runs (or is armed) once an object is freed.
 */

#define PEER_HELLO_BYTES        8
#define PEER_BACKOFF_MIN_MS     50
#define PEER_BACKOFF_MAX_MS     100
#define PEER_RECVBUF_BYTES      (64u << 10)  /* kept per inbound stream */
#define PEER_SENDBUF_KEEP_BYTES (256u << 10) /* kept after a big batch */
#define PEER_PROBE_BYTES        16           /* reads on our outgoing stream */
#define PEER_WAIT_SLICE_MS      20 /* send_wait re-checks at least this often */
#define PEER_CONNS_IN_MAX       64 /* inbound streams open at once */
/* inbound streams from one remote address: every other member may run on
 * one host (each dials from its peer address, once, twice while it
 * redials), but one address cannot take every PEER_CONNS_IN_MAX place */
#define PEER_CONNS_PER_HOST_MAX (NODE_PEERS_MAX + 4)
#define PEER_HELLO_TIMEOUT_MS   5000 /* for an inbound stream's hello */
/* An inbound stream silent this long is closed (a live peer gossips every
 * NODE_GOSSIP_MS): a crashed or cut-off peer's old stream must not hold
 * one of the PEER_CONNS_IN_MAX places for good. */
#define PEER_IDLE_TIMEOUT_MS 15000
#define PEER_IN_WARN_MS      1000 /* at most one inbound warning per */
/*
 * Liveness (node_transport_set_silent_ms): a peer we heard nothing from
 * for silent_ms is lost; our stream to it is closed and redialed, and its
 * stream to us is closed (it then redials). A dial that is not answered
 * within silent_ms / 4 (a SYN dropped by a partition would otherwise wait
 * in the kernel's retransmission backoff, 1 s, 3 s, ...) is abandoned and
 * tried afresh, so a healed link carries frames again within about
 * PEER_BACKOFF_MAX_MS + silent_ms / 4. Peer sockets also get
 * TCP_USER_TIMEOUT (2 x silent_ms) and keepalive probes, so the kernel
 * itself never keeps a connection whose bytes go unacknowledged.
 */
#define PEER_SILENT_MS_DEFAULT 15000
#define PEER_DIAL_MS_MIN       100
#define PEER_WATCH_MS          50 /* the side thread checks peers this often */

/* nng's SP-over-TCP headers: dialer push v0, listener pull v0 */
static const uint8_t hello_push[PEER_HELLO_BYTES] = {0, 'S',  'P', 0,
                                                     0, 0x50, 0,   0};
static const uint8_t hello_pull[PEER_HELLO_BYTES] = {0, 'S',  'P', 0,
                                                     0, 0x51, 0,   0};

struct byte_buf {
	uint8_t *data;
	size_t len, cap;
};

/* One outgoing stream to a peer. */
struct peer_out {
	struct node_transport *t;
	uint64_t id;
	char addr[NODE_ADDR_BYTES_MAX];
	pthread_mutex_t mu;
	nng_stream_dialer *dialer;
	nng_aio *dial_aio, *sleep_aio, *send_aio, *probe_aio;
	nng_stream *stream; /* NULL while dialing or backing off */
	int connected;      /* stream up and accepting frames */
	int closing;        /* peer_free started: arm nothing */
	int stream_ops;     /* send/probe operations on stream in flight */
	int sending;        /* send_aio busy with `fly` */
	int warned;         /* connection loss logged, not yet reconnected */
	int tls_warned;     /* a refused TLS handshake logged, likewise */
	int backoff_ms;
	uint64_t rx_ms;   /* last heard from (peers_watch); 0: never */
	uint64_t up_ms;   /* when the current stream connected (lora_now_ms) */
	uint64_t dial_ms; /* when the dial in flight started; 0: none */
	int answered;     /* the peer's listener sent its hello */
	/* peer TLS: the stream's session (NULL without TLS, or while not
	 * connected) and the records it made that wait for the next send */
	struct node_tls_mem *tls;
	struct byte_buf wire;
	struct byte_buf pend; /* frames waiting for the next batch */
	size_t pend_frames;
	/* of those, NODE_FRAME_FWD / _ANS: their own budget, not Raft's */
	size_t pend_fwd_frames, pend_fwd_bytes;
	struct byte_buf fly; /* the batch in flight, sent up to fly_off */
	size_t fly_off;
	uint8_t probe[PEER_PROBE_BYTES];
	size_t probe_len; /* bytes of the listener's hello read so far */
};

/* One inbound stream (from a peer, or a stray connection). */
struct conn_in {
	struct node_transport *t;
	struct conn_in *next;
	nng_stream *stream;
	nng_aio *aio;
	int closing;    /* claimed by stop_recv: arm nothing */
	int state;      /* CONN_HELLO, CONN_REPLY, CONN_FRAMES */
	uint64_t from;  /* sender id of its last frame (0: none yet) */
	uint64_t rx_ms; /* when it last brought bytes (lora_now_ms) */
	struct byte_buf buf;
	size_t counted;  /* buf.cap as counted in t->in_bytes */
	uint64_t sender; /* sender id of its first frame (0: none yet) */
	char remote[64];
	/* peer TLS: the session, the node its verified certificate names,
	 * records waiting to be sent (handshake flights, the hello reply) and
	 * whether the aio is sending them; the hello must come by hello_ms */
	struct node_tls_mem *tls;
	uint64_t cert_id;
	struct byte_buf out;
	size_t out_off;
	int tx;
	uint64_t hello_ms;
};

enum { CONN_HELLO, CONN_REPLY, CONN_FRAMES };

/* A non-Raft frame waiting for the side thread. */
struct side_item {
	int kind;
	uint64_t from;
	uint8_t *payload; /* owned */
	size_t len;
};

struct node_transport {
	uint64_t self;
	struct node_tls tls; /* peer_tls: mode off means no TLS */
	/* with peer TLS: contexts of inbound (mutual) and outbound sessions */
	struct node_tls_ctx *tls_srv, *tls_cli;
	atomic_int idle_ms;   /* inbound stream silence limit */
	atomic_int silent_ms; /* a peer heard from less recently is lost */
	char self_host[NODE_ADDR_BYTES_MAX];
	node_transport_recv_fn fn;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t room; /* signalled when a peer's buffer drains */
	int room_waiters;
	struct peer_out *peers[NODE_PEERS_MAX];
	nng_stream_listener *listener;
	nng_aio *accept_aio;
	pthread_mutex_t in_mu;
	int recv_stopped;
	struct conn_in *live, *dead; /* dead: closed, freed by a reaper */
	int live_count;
	/* receive buffer bytes of all inbound streams together, at most
	 * NODE_PEER_RECV_BYTES_MAX */
	atomic_size_t in_bytes;
	int full_warned;     /* accept_cb's: the refusal is logged */
	nng_time in_warn_at; /* last inbound-stream warning (in_mu) */
	/* frames other than Raft messages (snapshot chunks write files,
	 * gossip may redial a peer): handled by a thread of ours, never on
	 * nng's callback thread */
	pthread_t side;
	int side_started, side_stop;
	int side_reap; /* a conn died: the side thread frees the dead */
	pthread_mutex_t side_mu;
	pthread_cond_t side_cond;
	struct side_item side_q[NODE_PEER_SIDE_QUEUE_MAX];
	size_t side_head, side_len;
};

int node_addr_resolve(const char *addr, int passive, struct addrinfo **out)
{
	char host[NODE_ADDR_BYTES_MAX];
	node_addr_host(addr, host, sizeof host);
	const char *colon = strrchr(addr, ':');
	if (colon == NULL)
		return -1;
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = passive ? AI_PASSIVE : 0};
	int any = passive && (host[0] == '\0' || !strcmp(host, "*"));
	return getaddrinfo(any ? NULL : host, colon + 1, &hints, out) == 0 ? 0
	                                                                   : -1;
}

void node_addr_host(const char *addr, char *out, size_t out_bytes)
{
	snprintf(out, out_bytes, "%s", addr);
	char *colon = strrchr(out, ':');
	if (colon)
		*colon = '\0';
}

/* Makes room for `need` bytes in b (b->len + need <= cap). */
static int buf_reserve(struct byte_buf *b, size_t need)
{
	if (b->len + need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap * 2 : PEER_RECVBUF_BYTES;
	if (cap < b->len + need) /* a big frame: just its size */
		cap = b->len + need;
	uint8_t *p = lora_realloc(b->data, cap);
	if (p == NULL)
		return LORA_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

/* Frees b's memory when it grew past keep_bytes and is empty again. */
static void buf_shrink(struct byte_buf *b, size_t keep_bytes)
{
	if (b->len == 0 && b->cap > keep_bytes) {
		lora_free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
}

static void buf_free(struct byte_buf *b)
{
	lora_free(b->data);
	memset(b, 0, sizeof *b);
}

static void stream_remote(nng_stream *s, char *out, size_t out_bytes)
{
	nng_sockaddr sa;
	snprintf(out, out_bytes, "?");
	if (nng_stream_get_addr(s, NNG_OPT_REMADDR, &sa) != 0 ||
	    sa.s_family != NNG_AF_INET)
		return;
	char ip[INET_ADDRSTRLEN];
	struct in_addr ia = {.s_addr = sa.s_in.sa_addr};
	inet_ntop(AF_INET, &ia, ip, sizeof ip);
	snprintf(out, out_bytes, "%s:%u", ip, ntohs(sa.s_in.sa_port));
}

/* ---- socket options ---------------------------------------------------- */

/* 1 when fd is the TCP socket from la to ra (IPv4). */
static int fd_is(int fd, const struct sockaddr_in *la,
                 const struct sockaddr_in *ra)
{
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	if (getsockname(fd, (struct sockaddr *)&a, &al) != 0 ||
	    a.sin_family != AF_INET || a.sin_port != la->sin_port ||
	    a.sin_addr.s_addr != la->sin_addr.s_addr)
		return 0;
	al = sizeof a;
	return getpeername(fd, (struct sockaddr *)&a, &al) == 0 &&
	       a.sin_port == ra->sin_port &&
	       a.sin_addr.s_addr == ra->sin_addr.s_addr;
}

/*
 * The descriptor of stream s, or -1. nng 1.5 hands out no descriptor and
 * has no option for TCP_USER_TIMEOUT or keepalive timing (nng issue 874),
 * so it is found among this process's open descriptors by the
 * connection's two addresses, which no other socket of ours shares. Runs
 * once per connection.
 */
static int stream_fd(nng_stream *s)
{
	nng_sockaddr l, r;
	if (nng_stream_get_addr(s, NNG_OPT_LOCADDR, &l) != 0 ||
	    nng_stream_get_addr(s, NNG_OPT_REMADDR, &r) != 0 ||
	    l.s_family != NNG_AF_INET || r.s_family != NNG_AF_INET)
		return -1;
	struct sockaddr_in la = {.sin_family = AF_INET,
	                         .sin_port = l.s_in.sa_port,
	                         .sin_addr.s_addr = l.s_in.sa_addr};
	struct sockaddr_in ra = {.sin_family = AF_INET,
	                         .sin_port = r.s_in.sa_port,
	                         .sin_addr.s_addr = r.s_in.sa_addr};
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int found = -1;
	struct dirent *e;
	while (found < 0 && (e = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end == '\0' && end != e->d_name && fd != dirfd(d) &&
		    fd_is((int)fd, &la, &ra))
			found = (int)fd;
	}
	closedir(d);
	return found;
}

/* TCP_USER_TIMEOUT and keepalive on a peer stream (best effort). */
static void stream_tune(struct node_transport *t, nng_stream *s)
{
	int fd = stream_fd(s);
	if (fd < 0)
		return;
	int silent = atomic_load(&t->silent_ms);
	unsigned user_ms = 2u * (unsigned)silent;
	int one = 1, idle_s = (silent + 999) / 1000, cnt = 2;
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof user_ms);
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle_s, sizeof idle_s);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

/* ---- receiving --------------------------------------------------------- */

/* Whether an inbound stream's trouble may be logged now: a flood of bad
 * connections gives one line per PEER_IN_WARN_MS. */
static int in_warn_ok(struct node_transport *t)
{
	pthread_mutex_lock(&t->in_mu);
	nng_time now = nng_clock();
	int ok = t->in_warn_at == 0 || now - t->in_warn_at >= PEER_IN_WARN_MS;
	if (ok)
		t->in_warn_at = now;
	pthread_mutex_unlock(&t->in_mu);
	return ok;
}

/* Queues a non-Raft frame for the side thread (dropped when the queue is
 * full: snapshots are resent, gossip repeats). */
static void side_post(struct node_transport *t, int kind, uint64_t from,
                      const uint8_t *payload, size_t len)
{
	uint8_t *copy = lora_malloc(len ? len : 1);
	if (copy == NULL)
		return;
	memcpy(copy, payload, len);
	pthread_mutex_lock(&t->side_mu);
	int full = t->side_len >= NODE_PEER_SIDE_QUEUE_MAX || t->side_stop;
	if (!full) {
		t->side_q[(t->side_head + t->side_len++) %
		          NODE_PEER_SIDE_QUEUE_MAX] =
		    (struct side_item){kind, from, copy, len};
		pthread_cond_signal(&t->side_cond);
	}
	pthread_mutex_unlock(&t->side_mu);
	if (full)
		lora_free(copy);
}

static void reap_dead(struct node_transport *t);
static void peers_watch(struct node_transport *t);

static void *side_main(void *arg)
{
	struct node_transport *t = arg;
	pthread_setname_np(pthread_self(), "lora-peer-side");
	uint64_t watched = lora_now_ms();
	pthread_mutex_lock(&t->side_mu);
	for (;;) {
		while (t->side_len == 0 && !t->side_stop && !t->side_reap &&
		       lora_now_ms() - watched < PEER_WATCH_MS) {
			struct timespec ts;
			lora_deadline_after(&ts, PEER_WATCH_MS);
			pthread_cond_timedwait(&t->side_cond, &t->side_mu, &ts);
		}
		if (t->side_reap) {
			/* A closed stream keeps its socket (and the bytes a
			 * peer is still pushing at it, which then blocks)
			 * until freed: free it now, not at the next accept. */
			t->side_reap = 0;
			pthread_mutex_unlock(&t->side_mu);
			reap_dead(t);
			pthread_mutex_lock(&t->side_mu);
			continue;
		}
		if (t->side_len == 0 && t->side_stop)
			break;
		if (lora_now_ms() - watched >= PEER_WATCH_MS) {
			pthread_mutex_unlock(&t->side_mu);
			peers_watch(t);
			watched = lora_now_ms();
			pthread_mutex_lock(&t->side_mu);
			continue;
		}
		struct side_item it = t->side_q[t->side_head];
		t->side_head = (t->side_head + 1) % NODE_PEER_SIDE_QUEUE_MAX;
		t->side_len--;
		pthread_mutex_unlock(&t->side_mu);
		t->fn(t->arg, it.kind, it.from, it.payload, it.len);
		lora_free(it.payload);
		pthread_mutex_lock(&t->side_mu);
	}
	pthread_mutex_unlock(&t->side_mu);
	return NULL;
}

/* One complete frame (kind, sender, payload): Raft and passed-on write
 * frames go to fn right here, on nng's callback thread; others to the
 * side thread. */
static void deliver(struct node_transport *t, const uint8_t *p, size_t len)
{
	int kind = p[0];
	uint64_t from = lora_get_be64(p + 1);
	p += NODE_PEER_HEADER_BYTES;
	len -= NODE_PEER_HEADER_BYTES;
	if (kind == NODE_FRAME_RAFT || kind == NODE_FRAME_FWD ||
	    kind == NODE_FRAME_FWD_ANS) /* no hand-off: short work */
		t->fn(t->arg, kind, from, p, len);
	else
		side_post(t, kind, from, p, len);
}

/*
 * Makes room for `need` more bytes in c->buf, counting its capacity in
 * t->in_bytes: 0, or -1 when that would pass NODE_PEER_RECV_BYTES_MAX (all
 * inbound streams together) or memory is short. A frame's buffer grows by
 * doubling as its bytes arrive, never to the length a peer merely
 * announces, so memory follows what was received.
 */
static int conn_reserve(struct conn_in *c, size_t need)
{
	struct byte_buf *b = &c->buf;
	if (b->len + need <= b->cap)
		return 0;
	size_t cap = b->len + need; /* conn_parse asks at most doubling */
	if (cap < PEER_RECVBUF_BYTES)
		cap = PEER_RECVBUF_BYTES;
	size_t grow = cap - c->counted;
	size_t total = atomic_fetch_add(&c->t->in_bytes, grow) + grow;
	if (total > NODE_PEER_RECV_BYTES_MAX) {
		atomic_fetch_sub(&c->t->in_bytes, grow);
		return -1;
	}
	uint8_t *p = lora_realloc(b->data, cap);
	if (p == NULL) {
		atomic_fetch_sub(&c->t->in_bytes, grow);
		return -1;
	}
	b->data = p;
	b->cap = cap;
	c->counted = cap;
	return 0;
}

/* Frees c->buf and uncounts it. */
static void conn_buf_free(struct conn_in *c)
{
	atomic_fetch_sub(&c->t->in_bytes, c->counted);
	c->counted = 0;
	buf_free(&c->buf);
}

/* Shrinks c->buf back to PEER_RECVBUF_BYTES once a big frame is gone. */
static void conn_buf_shrink(struct conn_in *c)
{
	struct byte_buf *b = &c->buf;
	if (b->cap <= PEER_RECVBUF_BYTES || b->len >= PEER_RECVBUF_BYTES)
		return;
	uint8_t *p = lora_realloc(b->data, PEER_RECVBUF_BYTES);
	if (p == NULL)
		return;
	b->data = p;
	b->cap = PEER_RECVBUF_BYTES;
	atomic_fetch_sub(&c->t->in_bytes, c->counted - b->cap);
	c->counted = b->cap;
}

/* With peer TLS, the first frame's sender must be the node the stream's
 * certificate names (verified in the handshake, tls_peer.c): a member
 * holding its own certificate cannot speak for another (0: fine). */
static int conn_identity_ok(struct conn_in *c, uint64_t from)
{
	uint64_t id = c->cert_id;
	if (c->tls == NULL)
		return 0;
	if (id != 0 && id == from)
		return 0;
	if (in_warn_ok(c->t))
		LOG_WARN("peer stream from %s: frames from node %llu over a "
		         "certificate naming %s%llu, closing it",
		         c->remote, (unsigned long long)from,
		         id ? "node " : "no node, ", (unsigned long long)id);
	return -1;
}

/* Every frame of one inbound stream names the same sender: a stream
 * that speaks for two nodes is closed (0: fine). */
static int conn_sender_ok(struct conn_in *c, const uint8_t *frame)
{
	uint64_t from = lora_get_be64(frame + 1);
	if (c->sender == 0 && conn_identity_ok(c, from) != 0)
		return -1;
	if (c->sender == 0)
		c->sender = from;
	if (from == c->sender)
		return 0;
	if (in_warn_ok(c->t))
		LOG_WARN("peer stream from %s: frames from node %llu, then "
		         "from node %llu, closing it",
		         c->remote, (unsigned long long)c->sender,
		         (unsigned long long)from);
	return -1;
}

/*
 * Delivers every complete frame in c->buf and keeps the partial tail.
 * Returns 0, or -1 when the stream is garbled (a length out of bounds) or
 * a big frame's buffer cannot be had. The buffer grows to hold the frame
 * in progress and shrinks back to PEER_RECVBUF_BYTES after it.
 */
static int conn_parse(struct conn_in *c)
{
	struct byte_buf *b = &c->buf;
	size_t off = 0;
	int rc = 0;
	while (b->len - off >= NODE_PEER_LEN_BYTES) {
		uint64_t flen = lora_get_be64(b->data + off);
		if (flen < NODE_PEER_HEADER_BYTES ||
		    flen > NODE_PEER_MSG_BYTES_MAX) {
			if (in_warn_ok(c->t))
				LOG_WARN("peer stream from %s: frame length "
				         "%llu out of bounds, closing it",
				         c->remote, (unsigned long long)flen);
			return -1;
		}
		size_t whole = NODE_PEER_LEN_BYTES + (size_t)flen;
		if (b->len - off < whole) {
			memmove(b->data, b->data + off, b->len - off);
			b->len -= off;
			off = 0;
			size_t more = whole - b->len;
			size_t step = b->cap > PEER_RECVBUF_BYTES
			                  ? b->cap
			                  : PEER_RECVBUF_BYTES;
			rc = conn_reserve(c, more < step ? more : step);
			if (rc != 0 && in_warn_ok(c->t))
				LOG_WARN("peer stream from %s: no room for a "
				         "%zu-byte frame (%u MiB for all peer "
				         "streams), closing it",
				         c->remote, whole,
				         NODE_PEER_RECV_BYTES_MAX >> 20);
			return rc ? -1 : 0;
		}
		const uint8_t *frame = b->data + off + NODE_PEER_LEN_BYTES;
		if (conn_sender_ok(c, frame) != 0)
			return -1;
		__atomic_store_n(&c->from, lora_get_be64(frame + 1),
		                 __ATOMIC_RELAXED);
		deliver(c->t, frame, flen);
		off += whole;
	}
	memmove(b->data, b->data + off, b->len - off);
	b->len -= off;
	conn_buf_shrink(c);
	return 0;
}

/* conn_arm with TLS: sends the records waiting in c->out, else receives
 * ciphertext (until the hello, within hello_ms of the accept). */
static int conn_arm_tls(struct conn_in *c)
{
	nng_iov iov;
	int idle = atomic_load(&c->t->idle_ms);
	c->tx = c->out.len > c->out_off;
	if (c->tx) {
		iov.iov_buf = c->out.data + c->out_off;
		iov.iov_len = c->out.len - c->out_off;
		nng_aio_set_iov(c->aio, 1, &iov);
		nng_aio_set_timeout(c->aio, idle);
		nng_stream_send(c->stream, c->aio);
		return 0;
	}
	iov.iov_buf = node_tls_mem_in_room(c->tls, &iov.iov_len);
	if (iov.iov_len == 0)
		return -1;
	if (c->state == CONN_HELLO) {
		uint64_t now = lora_now_ms();
		idle = now < c->hello_ms ? (int)(c->hello_ms - now) : 1;
	}
	nng_aio_set_iov(c->aio, 1, &iov);
	nng_aio_set_timeout(c->aio, idle);
	nng_stream_recv(c->stream, c->aio);
	return 0;
}

/* Arms the next operation of c (under t->in_mu); 0, or -1 if c is closing.
 */
static int conn_arm(struct conn_in *c)
{
	if (c->closing || c->t->recv_stopped)
		return -1;
	if (c->tls != NULL)
		return conn_arm_tls(c);
	nng_iov iov;
	if (c->state == CONN_REPLY) {
		iov.iov_buf = (void *)hello_pull;
		iov.iov_len = PEER_HELLO_BYTES;
		nng_aio_set_iov(c->aio, 1, &iov);
		nng_stream_send(c->stream, c->aio);
		return 0;
	}
	if (conn_reserve(c, 1) != 0)
		return -1;
	iov.iov_buf = c->buf.data + c->buf.len;
	iov.iov_len = c->buf.cap - c->buf.len;
	nng_aio_set_iov(c->aio, 1, &iov);
	nng_aio_set_timeout(c->aio, c->state == CONN_HELLO
	                                ? PEER_HELLO_TIMEOUT_MS
	                                : atomic_load(&c->t->idle_ms));
	nng_stream_recv(c->stream, c->aio);
	return 0;
}

/* c is done: closed here, moved to the dead list (freed by a reaper,
 * since an aio cannot be freed from its own callback). */
static void conn_kill(struct conn_in *c)
{
	struct node_transport *t = c->t;
	nng_stream_close(c->stream);
	conn_buf_free(c);
	pthread_mutex_lock(&t->in_mu);
	if (!c->closing) { /* else stop_recv owns it */
		struct conn_in **pp = &t->live;
		while (*pp != NULL && *pp != c)
			pp = &(*pp)->next;
		if (*pp == c) {
			*pp = c->next;
			t->live_count--;
		}
		c->next = t->dead;
		t->dead = c;
	}
	pthread_mutex_unlock(&t->in_mu);
	pthread_mutex_lock(&t->side_mu);
	t->side_reap = 1;
	pthread_cond_signal(&t->side_cond);
	pthread_mutex_unlock(&t->side_mu);
}

/* Logs (rate-limited) a connection that did not open with the hello. */
static int conn_no_hello(struct conn_in *c)
{
	if (in_warn_ok(c->t))
		LOG_WARN("peer listener: connection from %s did not "
		         "open with the peer hello, closing it",
		         c->remote);
	return -1;
}

/* Checks the dialer's hello (first bytes read): 0 when good, 1 when more
 * bytes are needed, -1 (logged) when it is not the hello. */
static int conn_hello(struct conn_in *c)
{
	if (c->buf.len < PEER_HELLO_BYTES)
		return memcmp(c->buf.data, hello_push, c->buf.len)
		           ? conn_no_hello(c)
		           : 1;
	if (memcmp(c->buf.data, hello_push, PEER_HELLO_BYTES) != 0)
		return conn_no_hello(c);
	c->buf.len -= PEER_HELLO_BYTES;
	memmove(c->buf.data, c->buf.data + PEER_HELLO_BYTES, c->buf.len);
	c->state = CONN_REPLY;
	return 0;
}

/* Appends records of c's TLS session to c->out (tls_peer.c's sink). */
static int conn_sink(void *arg, const uint8_t *p, size_t n)
{
	struct conn_in *c = arg;
	if (buf_reserve(&c->out, n) != 0)
		return LORA_ENOMEM;
	memcpy(c->out.data + c->out.len, p, n);
	c->out.len += n;
	return 0;
}

/* Plaintext bytes just added to c->buf under TLS: the hello (answered
 * inside TLS at once), then frames. 0, or -1 to close. */
static int conn_plain(struct conn_in *c)
{
	if (c->state == CONN_HELLO) {
		int h = conn_hello(c);
		if (h != 0)
			return h < 0 ? -1 : 0;
		if (node_tls_mem_write(c->tls, hello_pull, PEER_HELLO_BYTES))
			return -1;
		c->state = CONN_FRAMES;
	}
	return conn_parse(c);
}

/* Decrypts every record c's session holds into c->buf, handling the
 * plaintext as it comes. 0, or -1 to close. */
static int conn_decrypt(struct conn_in *c)
{
	for (;;) {
		if (conn_reserve(c, 1) != 0)
			return -1;
		size_t got;
		struct byte_buf *b = &c->buf;
		if (node_tls_mem_read(c->tls, b->data + b->len, b->cap - b->len,
		                      &got) != 0)
			return -1;
		if (got == 0)
			return 0;
		b->len += got;
		if (conn_plain(c) != 0)
			return -1;
	}
}

/* conn_step with TLS: n bytes were sent (c->tx) or received. */
static int conn_step_tls(struct conn_in *c, size_t n)
{
	if (c->tx) {
		c->out_off += n;
		if (c->out_off == c->out.len) {
			c->out.len = c->out_off = 0;
			buf_shrink(&c->out, PEER_HELLO_BYTES);
		}
		return 0;
	}
	node_tls_mem_in_put(c->tls, n);
	if (!node_tls_mem_done(c->tls)) {
		int rc = node_tls_mem_handshake(c->tls);
		if (rc == LORA_ETIMEOUT)
			return 0;
		if (rc != 0) {
			char why[128];
			node_tls_mem_error(c->tls, why, sizeof why);
			if (in_warn_ok(c->t))
				LOG_WARN("peer listener: TLS handshake with %s "
				         "refused: %s (a peer needs a "
				         "certificate from the peer CA)",
				         c->remote, why);
			return -1;
		}
		c->cert_id = node_tls_mem_peer_id(c->tls);
	}
	return conn_decrypt(c);
}

/* Moves c one step on after its aio completed with rv; 0 to re-arm. */
static int conn_step(struct conn_in *c, int rv)
{
	if (rv != 0)
		return -1;
	if (c->tls != NULL) {
		if (!c->tx)
			__atomic_store_n(&c->rx_ms, lora_now_ms(),
			                 __ATOMIC_RELAXED);
		return conn_step_tls(c, nng_aio_count(c->aio));
	}
	size_t n = nng_aio_count(c->aio);
	__atomic_store_n(&c->rx_ms, lora_now_ms(), __ATOMIC_RELAXED);
	if (c->state == CONN_REPLY) {
		if (n < PEER_HELLO_BYTES) /* short: drop it, the peer redials */
			return -1;
		c->state = CONN_FRAMES;
		return conn_parse(c);
	}
	c->buf.len += n;
	if (c->state == CONN_HELLO) {
		int h = conn_hello(c);
		return h < 0 ? -1 : 0;
	}
	return conn_parse(c);
}

static void conn_cb(void *arg)
{
	struct conn_in *c = arg;
	int rv = nng_aio_result(c->aio);
	if (conn_step(c, rv) == 0) {
		pthread_mutex_lock(&c->t->in_mu);
		int armed = conn_arm(c) == 0;
		pthread_mutex_unlock(&c->t->in_mu);
		if (armed)
			return;
	}
	if (rv == NNG_ETIMEDOUT && c->state == CONN_HELLO) {
		if (in_warn_ok(c->t))
			LOG_WARN(
			    "peer listener: no hello from %s within %d ms, "
			    "closing it",
			    c->remote, PEER_HELLO_TIMEOUT_MS);
	} else if (rv != 0 && rv != NNG_ECLOSED && rv != NNG_ECANCELED)
		LOG_DEBUG("peer stream from %s: %s", c->remote,
		          nng_strerror(rv));
	conn_kill(c);
}

/* Frees a conn no callback can touch any more (its aio is stopped here). */
static void conn_free(struct conn_in *c)
{
	nng_stream_close(c->stream);
	nng_aio_free(c->aio); /* stops it: waits for a running callback */
	nng_stream_free(c->stream);
	conn_buf_free(c);
	node_tls_mem_free(c->tls);
	buf_free(&c->out);
	lora_free(c);
}

static void reap_dead(struct node_transport *t)
{
	pthread_mutex_lock(&t->in_mu);
	struct conn_in *d = t->dead;
	t->dead = NULL;
	pthread_mutex_unlock(&t->in_mu);
	while (d != NULL) {
		struct conn_in *next = d->next;
		conn_free(d);
		d = next;
	}
}

/* A new inbound stream s: reads the hello, then frames. */
static void conn_start(struct node_transport *t, nng_stream *s)
{
	struct conn_in *c = lora_calloc(1, sizeof *c);
	if (c == NULL || nng_aio_alloc(&c->aio, conn_cb, c) != 0) {
		LOG_WARN("peer listener: out of memory, dropping a connection");
		lora_free(c);
		nng_stream_free(s);
		return;
	}
	stream_tune(t, s);
	c->t = t;
	c->stream = s;
	c->state = CONN_HELLO;
	c->rx_ms = lora_now_ms();
	c->hello_ms = c->rx_ms + PEER_HELLO_TIMEOUT_MS;
	stream_remote(s, c->remote, sizeof c->remote);
	if (t->tls_srv != NULL &&
	    node_tls_mem_new(t->tls_srv, NULL, conn_sink, c, &c->tls) != 0) {
		LOG_WARN("peer listener: out of memory, dropping a connection");
		nng_aio_free(c->aio);
		lora_free(c);
		nng_stream_free(s);
		return;
	}
	pthread_mutex_lock(&t->in_mu);
	c->next = t->live;
	t->live = c;
	t->live_count++;
	int armed = conn_arm(c) == 0;
	pthread_mutex_unlock(&t->in_mu);
	if (!armed)
		conn_kill(c);
}

/* 1 when addresses "ip:port" a and b have the same ip. */
static int same_host(const char *a, const char *b)
{
	const char *ca = strrchr(a, ':'), *cb = strrchr(b, ':');
	size_t la = ca ? (size_t)(ca - a) : strlen(a);
	size_t lb = cb ? (size_t)(cb - b) : strlen(b);
	return la == lb && memcmp(a, b, la) == 0;
}

/* Whether one more inbound stream may open from `remote`: at most
 * PEER_CONNS_IN_MAX in all (warned once per full spell) and
 * PEER_CONNS_PER_HOST_MAX from one address (warned at most once per
 * PEER_IN_WARN_MS). */
static int conn_room(struct node_transport *t, const char *remote)
{
	pthread_mutex_lock(&t->in_mu);
	int room = t->live_count < PEER_CONNS_IN_MAX;
	int same = 0;
	for (struct conn_in *c = t->live; c != NULL; c = c->next)
		same += same_host(c->remote, remote);
	pthread_mutex_unlock(&t->in_mu);
	if (!room && !t->full_warned)
		LOG_WARN("peer listener: %d connections open, refusing more",
		         PEER_CONNS_IN_MAX);
	t->full_warned = !room; /* only accept_cb touches it */
	if (room && same >= PEER_CONNS_PER_HOST_MAX) {
		if (in_warn_ok(t))
			LOG_WARN("peer listener: %d connections open from the "
			         "address of %s, refusing more from it",
			         PEER_CONNS_PER_HOST_MAX, remote);
		return 0;
	}
	return room;
}

static void accept_cb(void *arg)
{
	struct node_transport *t = arg;
	reap_dead(t);
	int rv = nng_aio_result(t->accept_aio);
	if (rv == 0) {
		nng_stream *s = nng_aio_get_output(t->accept_aio, 0);
		char remote[64];
		stream_remote(s, remote, sizeof remote);
		if (conn_room(t, remote))
			conn_start(t, s);
		else
			nng_stream_free(s);
	} else if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
		return;
	} else {
		LOG_WARN("peer listener: accept: %s", nng_strerror(rv));
	}
	pthread_mutex_lock(&t->in_mu);
	if (!t->recv_stopped)
		nng_stream_listener_accept(t->listener, t->accept_aio);
	pthread_mutex_unlock(&t->in_mu);
}

/* Pops one conn (live first) for stop_recv, marked closing; or NULL. */
static struct conn_in *conn_claim(struct node_transport *t)
{
	pthread_mutex_lock(&t->in_mu);
	struct conn_in *c = t->live;
	if (c != NULL) {
		t->live = c->next;
		t->live_count--;
		c->closing = 1;
	} else if ((c = t->dead) != NULL) {
		t->dead = c->next;
	}
	pthread_mutex_unlock(&t->in_mu);
	return c;
}

static void side_stop(struct node_transport *t)
{
	pthread_mutex_lock(&t->side_mu);
	t->side_stop = 1;
	pthread_cond_broadcast(&t->side_cond);
	pthread_mutex_unlock(&t->side_mu);
	if (t->side_started)
		pthread_join(t->side, NULL);
	t->side_started = 0;
	while (t->side_len > 0) {
		lora_free(t->side_q[t->side_head].payload);
		t->side_head = (t->side_head + 1) % NODE_PEER_SIDE_QUEUE_MAX;
		t->side_len--;
	}
}

void node_transport_stop_recv(struct node_transport *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->in_mu);
	int was = t->recv_stopped;
	t->recv_stopped = 1;
	pthread_mutex_unlock(&t->in_mu);
	if (was)
		return;
	if (t->listener != NULL)
		nng_stream_listener_close(t->listener);
	nng_aio_stop(t->accept_aio); /* waits for a running accept_cb */
	struct conn_in *c;
	while ((c = conn_claim(t)) != NULL)
		conn_free(c);
	side_stop(t);
}

/* Mutual TLS contexts: inbound peers must present a certificate that
 * chains to the peer CA; outbound, the same, and it must name the id
 * dialed (NODE_TLS_PEER_NAME_FMT, set per session). */
static int transport_tls(struct node_transport *t, char *errmsg)
{
	int rc = node_tls_ctx_new_peer(&t->tls, 1, &t->tls_srv, errmsg);
	if (rc == 0)
		rc = node_tls_ctx_new_peer(&t->tls, 0, &t->tls_cli, errmsg);
	return rc ? lora_errwrap(rc, errmsg, "peer tls") : 0;
}

int node_transport_open(uint64_t self_id, const char *listen_addr,
                        const struct node_tls *tls, node_transport_recv_fn fn,
                        void *arg, struct node_transport **out, char *errmsg)
{
	struct node_transport *t = lora_calloc(1, sizeof *t);
	if (t == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	t->self = self_id;
	atomic_store(&t->idle_ms, PEER_IDLE_TIMEOUT_MS);
	atomic_store(&t->silent_ms, PEER_SILENT_MS_DEFAULT);
	t->fn = fn;
	t->arg = arg;
	node_addr_host(listen_addr, t->self_host, sizeof t->self_host);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->room, NULL);
	pthread_mutex_init(&t->in_mu, NULL);
	pthread_mutex_init(&t->side_mu, NULL);
	pthread_cond_init(&t->side_cond, NULL);
	if (tls != NULL)
		t->tls = *tls;
	char url[NODE_ADDR_BYTES_MAX + 16];
	snprintf(url, sizeof url, "tcp://%s", listen_addr);
	if (t->tls.mode != NODE_TLS_OFF && transport_tls(t, errmsg) != 0) {
		t->recv_stopped = 1;
		node_transport_close(t);
		return LORA_ECONFIG;
	}
	int rv = nng_stream_listener_alloc(&t->listener, url);
	if (rv == 0)
		nng_stream_listener_set_bool(t->listener, NNG_OPT_TCP_NODELAY,
		                             true);
	if (rv == 0)
		rv = nng_stream_listener_listen(t->listener);
	if (rv == 0)
		rv = nng_aio_alloc(&t->accept_aio, accept_cb, t);
	if (rv != 0) {
		lora_errf(LORA_EIO, errmsg, "listen %s: %s", url,
		          nng_strerror(rv));
		t->recv_stopped = 1;
		node_transport_close(t);
		return LORA_EIO;
	}
	t->side_started = pthread_create(&t->side, NULL, side_main, t) == 0;
	nng_stream_listener_accept(t->listener, t->accept_aio);
	*out = t;
	return 0;
}

/* ---- sending ----------------------------------------------------------- */

/* Starts (or continues) the batch in pc->fly; pc->mu held. */
static void peer_send_fly(struct peer_out *pc)
{
	nng_iov iov = {.iov_buf = pc->fly.data + pc->fly_off,
	               .iov_len = pc->fly.len - pc->fly_off};
	nng_aio_set_iov(pc->send_aio, 1, &iov);
	pc->sending = 1;
	pc->stream_ops++;
	nng_stream_send(pc->stream, pc->send_aio);
}

static void peer_lost(struct peer_out *pc, int rv);

/* Swaps *next (the bytes to send) into flight and sends them; pc->mu
 * held, nothing in flight. */
static void peer_fly(struct peer_out *pc, struct byte_buf *next)
{
	struct byte_buf b = pc->fly;
	b.len = 0;
	buf_shrink(&b, PEER_SENDBUF_KEEP_BYTES);
	pc->fly = *next;
	pc->fly_off = 0;
	*next = b;
	peer_send_fly(pc);
}

/* Appends records of pc's TLS session to pc->wire (tls_peer.c's sink). */
static int wire_sink(void *arg, const uint8_t *p, size_t n)
{
	struct byte_buf *b = arg;
	if (buf_reserve(b, n) != 0)
		return LORA_ENOMEM;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

/* Moves the pending frames into flight when nothing is; with TLS they
 * are encrypted (once the handshake is done) behind any handshake records
 * waiting in pc->wire, and wire leaves. The transport's TLS mode decides,
 * never the session: with TLS on and no session, nothing leaves (the
 * stream is dropped), so a frame never goes out in cleartext. pc->mu
 * held. */
static void peer_kick(struct peer_out *pc)
{
	if (pc->sending || !pc->connected)
		return;
	if (pc->t->tls_cli == NULL) {
		if (pc->pend.len > 0)
			peer_fly(pc, &pc->pend);
	} else if (pc->tls == NULL) {
		LOG_ERROR("peer %llu (%s): no TLS session on a TLS stream",
		          (unsigned long long)pc->id, pc->addr);
		peer_lost(pc, NNG_ECRYPTO);
		return;
	} else {
		if (pc->pend.len > 0 && node_tls_mem_done(pc->tls)) {
			int rc = node_tls_mem_write(pc->tls, pc->pend.data,
			                            pc->pend.len);
			pc->pend.len = 0;
			buf_shrink(&pc->pend, PEER_SENDBUF_KEEP_BYTES);
			if (rc != 0) {
				peer_lost(pc, NNG_ENOMEM);
				return;
			}
		}
		if (pc->wire.len > 0)
			peer_fly(pc, &pc->wire);
	}
	if (pc->pend.len == 0)
		pc->pend_frames = pc->pend_fwd_frames = pc->pend_fwd_bytes = 0;
}

/* Arms the backoff timer before the next dial; pc->mu held. */
static void peer_backoff(struct peer_out *pc)
{
	if (pc->closing)
		return;
	nng_sleep_aio(pc->backoff_ms, pc->sleep_aio);
	pc->backoff_ms *= 2;
	if (pc->backoff_ms > PEER_BACKOFF_MAX_MS)
		pc->backoff_ms = PEER_BACKOFF_MAX_MS;
}

static void peer_warn(struct peer_out *pc, const char *what, int rv)
{
	int tls = rv == NNG_EPEERAUTH || rv == NNG_ECRYPTO;
	if ((tls ? pc->tls_warned : pc->warned) || pc->closing)
		return;
	if (tls)
		pc->tls_warned = 1; /* logged even when the peer was down */
	else
		pc->warned = 1;
	if (tls)
		LOG_WARN("peer %llu (%s): TLS handshake refused: %s (its "
		         "certificate must chain to the peer CA and name "
		         "\"" NODE_TLS_PEER_NAME_FMT "\")",
		         (unsigned long long)pc->id, pc->addr, nng_strerror(rv),
		         (unsigned long long)pc->id);
	else
		LOG_WARN("peer %llu (%s): %s: %s; redialing every <= %d ms",
		         (unsigned long long)pc->id, pc->addr, what,
		         nng_strerror(rv), PEER_BACKOFF_MAX_MS);
}

/* The stream failed (rv): closes it; once no operation is left on it, it
 * is freed, buffered frames dropped and a redial scheduled; pc->mu held. */
static void peer_lost(struct peer_out *pc, int rv)
{
	if (pc->stream == NULL)
		return;
	if (pc->connected)
		peer_warn(pc, "connection lost", rv);
	pc->connected = 0;
	nng_stream_close(pc->stream);
	if (pc->stream_ops > 0)
		return;
	nng_stream_free(pc->stream);
	pc->stream = NULL;
	pc->sending = 0;
	pc->pend.len = 0;
	pc->pend_frames = pc->pend_fwd_frames = pc->pend_fwd_bytes = 0;
	pc->fly.len = pc->fly_off = 0;
	pc->wire.len = 0;
	buf_shrink(&pc->pend, PEER_SENDBUF_KEEP_BYTES);
	buf_shrink(&pc->fly, PEER_SENDBUF_KEEP_BYTES);
	buf_shrink(&pc->wire, PEER_SENDBUF_KEEP_BYTES);
	node_tls_mem_free(pc->tls);
	pc->tls = NULL;
	peer_backoff(pc);
}

static void room_signal(struct node_transport *t)
{
	if (__atomic_load_n(&t->room_waiters, __ATOMIC_ACQUIRE) == 0)
		return; /* a waiter re-checks every PEER_WAIT_SLICE_MS anyway */
	pthread_mutex_lock(&t->mu);
	if (t->room_waiters > 0)
		pthread_cond_broadcast(&t->room);
	pthread_mutex_unlock(&t->mu);
}

static void send_cb(void *arg)
{
	struct peer_out *pc = arg;
	int rv = nng_aio_result(pc->send_aio);
	pthread_mutex_lock(&pc->mu);
	pc->stream_ops--;
	pc->sending = 0;
	if (rv != 0 || pc->closing || !pc->connected) {
		peer_lost(pc, rv ? rv : NNG_ECLOSED);
		pthread_mutex_unlock(&pc->mu);
		return;
	}
	pc->fly_off += nng_aio_count(pc->send_aio);
	if (pc->fly_off < pc->fly.len) {
		peer_send_fly(pc); /* a partial send: the rest */
		pthread_mutex_unlock(&pc->mu);
		return;
	}
	pc->fly.len = pc->fly_off = 0;
	peer_kick(pc);
	pthread_mutex_unlock(&pc->mu);
	room_signal(pc->t);
}

/* Reads on our outgoing stream: first the listener's hello, then nothing
 * is expected, so any completion means the stream is gone. pc->mu held. */
static void peer_probe(struct peer_out *pc)
{
	nng_iov iov = {.iov_buf = pc->probe + pc->probe_len,
	               .iov_len = PEER_HELLO_BYTES - pc->probe_len};
	if (pc->probe_len == PEER_HELLO_BYTES)
		iov = (nng_iov){.iov_buf = pc->probe,
		                .iov_len = PEER_PROBE_BYTES};
	if (pc->tls != NULL) /* ciphertext, decrypted by probe_tls */
		iov.iov_buf = node_tls_mem_in_room(pc->tls, &iov.iov_len);
	if (iov.iov_len == 0) { /* 32 KiB of records nobody should send */
		peer_lost(pc, NNG_EPROTO);
		return;
	}
	nng_aio_set_iov(pc->probe_aio, 1, &iov);
	pc->stream_ops++;
	nng_stream_recv(pc->stream, pc->probe_aio);
}

/* The peer's listener answered with its whole hello: the connection
 * counts as made (a listener that accepts and closes at once must not
 * reset the redial backoff). pc->mu held. */
static void peer_answered(struct peer_out *pc)
{
	pc->answered = 1;
	pc->backoff_ms = PEER_BACKOFF_MIN_MS;
	if (pc->warned)
		LOG_INFO("peer %llu (%s): connected again",
		         (unsigned long long)pc->id, pc->addr);
	pc->warned = pc->tls_warned = 0;
}

/* n bytes of the listener's answer arrived at pc->probe + probe_len
 * (plaintext): 0 to read on, else the stream is to be dropped (anything
 * after the hello, or a hello that is not one). pc->mu held. */
static int probe_bytes(struct peer_out *pc, size_t n)
{
	if (n == 0)
		return 0;
	if (pc->probe_len == PEER_HELLO_BYTES)
		return -1; /* nothing is expected after the hello */
	pc->probe_len += n;
	if (memcmp(pc->probe, hello_pull, pc->probe_len) == 0) {
		if (pc->probe_len == PEER_HELLO_BYTES)
			peer_answered(pc);
		return 0;
	}
	LOG_WARN("peer %llu (%s): not a peer listener, closing",
	         (unsigned long long)pc->id, pc->addr);
	return -1;
}

/* n bytes of ciphertext arrived: steps the handshake (sending what it
 * makes; once done, the frames waiting) and decrypts the answer into
 * pc->probe, *plain bytes of it. 0, or an nng error. pc->mu held. */
static int probe_tls(struct peer_out *pc, size_t n, size_t *plain)
{
	*plain = 0;
	node_tls_mem_in_put(pc->tls, n);
	int done = node_tls_mem_done(pc->tls);
	int rc = node_tls_mem_handshake(pc->tls);
	if (rc != 0 && rc != LORA_ETIMEOUT) {
		char why[128];
		node_tls_mem_error(pc->tls, why, sizeof why);
		LOG_DEBUG("peer %llu (%s): TLS handshake: %s",
		          (unsigned long long)pc->id, pc->addr, why);
		return rc == LORA_EUNAUTHORIZED ? NNG_EPEERAUTH : NNG_ECRYPTO;
	}
	/* mbedtls checked that the certificate names lora-node-<id> somewhere
	 * (or in its CN); like the listener, the dialer wants it to name
	 * that node alone, in its one DNS subjectAltName */
	if (rc == 0 && !done && node_tls_mem_peer_id(pc->tls) != pc->id) {
		LOG_DEBUG("peer %llu (%s): its certificate does not name it "
		          "alone (one DNS subjectAltName)",
		          (unsigned long long)pc->id, pc->addr);
		return NNG_EPEERAUTH;
	}
	if (rc != 0 || !done)
		peer_kick(pc); /* a flight of the handshake, or the frames */
	if (rc != 0 || !pc->connected)
		return 0;
	uint8_t *dst = pc->probe + pc->probe_len;
	size_t room = PEER_HELLO_BYTES - pc->probe_len;
	if (room == 0) {
		dst = pc->probe;
		room = PEER_PROBE_BYTES;
	}
	return node_tls_mem_read(pc->tls, dst, room, plain) ? NNG_ECLOSED : 0;
}

static void probe_cb(void *arg)
{
	struct peer_out *pc = arg;
	int rv = nng_aio_result(pc->probe_aio);
	pthread_mutex_lock(&pc->mu);
	pc->stream_ops--;
	if (rv == 0 && !pc->closing && pc->connected) {
		size_t n = nng_aio_count(pc->probe_aio);
		if (pc->tls != NULL)
			rv = probe_tls(pc, n, &n);
		if (rv == 0 && pc->connected && probe_bytes(pc, n) == 0) {
			peer_probe(pc);
			pthread_mutex_unlock(&pc->mu);
			return;
		}
	}
	peer_lost(pc, rv ? rv : NNG_EPROTO);
	pthread_mutex_unlock(&pc->mu);
}

#ifdef LORA_TEST_HOOKS
static atomic_int test_no_tls_session;

void node_transport_test_no_tls_session(int on)
{
	atomic_store(&test_no_tls_session, on);
}
#endif

/* A TLS session for pc's fresh stream, its ClientHello in pc->wire: the
 * peer's certificate must name pc->id. pc->mu held. */
static int peer_tls_start(struct peer_out *pc)
{
#ifdef LORA_TEST_HOOKS
	if (atomic_load(&test_no_tls_session))
		return 0; /* pc->tls stays NULL: peer_kick must refuse */
#endif
	char name[64];
	snprintf(name, sizeof name, NODE_TLS_PEER_NAME_FMT,
	         (unsigned long long)pc->id);
	int rc = node_tls_mem_new(pc->t->tls_cli, name, wire_sink, &pc->wire,
	                          &pc->tls);
	if (rc == 0 && node_tls_mem_handshake(pc->tls) != LORA_ETIMEOUT)
		rc = LORA_ENOMEM; /* a client's first step only writes */
	return rc;
}

/* A fresh stream: it carries the hello first (inside TLS with peer TLS,
 * after the handshake), then frames. pc->mu held. */
static void peer_connected(struct peer_out *pc, nng_stream *s)
{
	stream_tune(pc->t, s);
	pc->stream = s;
	pc->connected = 1;
	pc->answered = 0;
	pc->up_ms = lora_now_ms();
	pc->probe_len = 0;
	LORA_ASSERT(pc->pend.len == 0 && pc->fly.len == 0);
	LORA_ASSERT(pc->wire.len == 0 && pc->tls == NULL);
	if (buf_reserve(&pc->pend, PEER_HELLO_BYTES) != 0 ||
	    (pc->t->tls_cli != NULL && peer_tls_start(pc) != 0)) {
		peer_lost(pc, NNG_ENOMEM);
		return;
	}
	memcpy(pc->pend.data, hello_push, PEER_HELLO_BYTES);
	pc->pend.len = PEER_HELLO_BYTES;
	peer_kick(pc);
	if (pc->connected) /* peer_kick may have dropped the stream */
		peer_probe(pc);
}

static void dial_cb(void *arg)
{
	struct peer_out *pc = arg;
	int rv = nng_aio_result(pc->dial_aio);
	pthread_mutex_lock(&pc->mu);
	pc->dial_ms = 0;
	if (rv == 0 && pc->closing)
		nng_stream_free(nng_aio_get_output(pc->dial_aio, 0));
	else if (rv == 0)
		peer_connected(pc, nng_aio_get_output(pc->dial_aio, 0));
	else if (!pc->closing) {
		peer_warn(pc, "cannot connect", rv);
		peer_backoff(pc);
	}
	pthread_mutex_unlock(&pc->mu);
}

/* Dials once, abandoning an unanswered attempt after a quarter of the
 * silence limit (see PEER_SILENT_MS_DEFAULT); pc->mu held. */
static void peer_dial(struct peer_out *pc)
{
	int ms = atomic_load(&pc->t->silent_ms) / 4;
	nng_aio_set_timeout(pc->dial_aio,
	                    ms > PEER_DIAL_MS_MIN ? ms : PEER_DIAL_MS_MIN);
	pc->dial_ms = lora_now_ms();
	nng_stream_dialer_dial(pc->dialer, pc->dial_aio);
}

static void sleep_cb(void *arg)
{
	struct peer_out *pc = arg;
	pthread_mutex_lock(&pc->mu);
	if (!pc->closing && nng_aio_result(pc->sleep_aio) == 0)
		peer_dial(pc);
	pthread_mutex_unlock(&pc->mu);
}

/* Sets the dialer's local address to this node's host, port 0. */
static void dialer_set_local(struct node_transport *t, nng_stream_dialer *d)
{
	struct in_addr ia;
	if (inet_pton(AF_INET, t->self_host, &ia) != 1)
		return; /* a host name: let the OS choose */
	nng_sockaddr sa;
	memset(&sa, 0, sizeof sa);
	sa.s_in.sa_family = NNG_AF_INET;
	sa.s_in.sa_addr = ia.s_addr;
	sa.s_in.sa_port = 0;
	int rv = nng_stream_dialer_set_addr(d, NNG_OPT_LOCADDR, &sa);
	if (rv != 0)
		LOG_WARN("peer dialer: cannot set local address %s: %s",
		         t->self_host, nng_strerror(rv));
}

/* Stops every callback of pc, then frees it (no lock held). */
static void peer_free(struct peer_out *pc)
{
	if (pc == NULL)
		return;
	pthread_mutex_lock(&pc->mu);
	pc->closing = 1;
	if (pc->stream != NULL)
		nng_stream_close(pc->stream);
	pthread_mutex_unlock(&pc->mu);
	if (pc->dialer != NULL)
		nng_stream_dialer_close(pc->dialer);
	nng_aio_stop(pc->sleep_aio); /* each waits for its running callback */
	nng_aio_stop(pc->dial_aio);
	nng_aio_stop(pc->send_aio);
	nng_aio_stop(pc->probe_aio);
	if (pc->stream != NULL)
		nng_stream_free(pc->stream);
	if (pc->dialer != NULL)
		nng_stream_dialer_free(pc->dialer);
	nng_aio_free(pc->sleep_aio);
	nng_aio_free(pc->dial_aio);
	nng_aio_free(pc->send_aio);
	nng_aio_free(pc->probe_aio);
	buf_free(&pc->pend);
	buf_free(&pc->fly);
	buf_free(&pc->wire);
	node_tls_mem_free(pc->tls);
	pthread_mutex_destroy(&pc->mu);
	lora_free(pc);
}

static int peer_aios(struct peer_out *pc)
{
	int rv = nng_aio_alloc(&pc->dial_aio, dial_cb, pc);
	if (rv == 0)
		rv = nng_aio_alloc(&pc->sleep_aio, sleep_cb, pc);
	if (rv == 0)
		rv = nng_aio_alloc(&pc->send_aio, send_cb, pc);
	if (rv == 0)
		rv = nng_aio_alloc(&pc->probe_aio, probe_cb, pc);
	return rv;
}

/* A new peer dialing addr in the background; *out, or an error. */
static int peer_new(struct node_transport *t, uint64_t id, const char *addr,
                    struct peer_out **out, char *errmsg)
{
	struct peer_out *pc = lora_calloc(1, sizeof *pc);
	if (pc == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	pthread_mutex_init(&pc->mu, NULL);
	pc->t = t;
	pc->id = id;
	pc->backoff_ms = PEER_BACKOFF_MIN_MS;
	snprintf(pc->addr, sizeof pc->addr, "%s", addr);
	char url[NODE_ADDR_BYTES_MAX + 16];
	snprintf(url, sizeof url, "tcp://%s", addr);
	int rv = peer_aios(pc);
	if (rv == 0)
		rv = nng_stream_dialer_alloc(&pc->dialer, url);
	if (rv != 0) {
		peer_free(pc);
		return lora_errf(LORA_EIO, errmsg, "dial %s: %s", url,
		                 nng_strerror(rv));
	}
	nng_stream_dialer_set_bool(pc->dialer, NNG_OPT_TCP_NODELAY, true);
	dialer_set_local(t, pc->dialer);
	pthread_mutex_lock(&pc->mu);
	peer_dial(pc);
	pthread_mutex_unlock(&pc->mu);
	*out = pc;
	return 0;
}

/* Index of peer id in t->peers, or -1; t->mu held. */
static int peer_find(struct node_transport *t, uint64_t id)
{
	for (int i = 0; i < NODE_PEERS_MAX; i++)
		if (t->peers[i] != NULL && t->peers[i]->id == id)
			return i;
	return -1;
}

void node_transport_close(struct node_transport *t)
{
	if (t == NULL)
		return;
	node_transport_stop_recv(t);
	for (int i = 0; i < NODE_PEERS_MAX; i++) {
		peer_free(t->peers[i]);
		t->peers[i] = NULL;
	}
	reap_dead(t);
	nng_aio_free(t->accept_aio);
	if (t->listener != NULL)
		nng_stream_listener_free(t->listener);
	side_stop(t);
	node_tls_ctx_free(t->tls_srv);
	node_tls_ctx_free(t->tls_cli);
	pthread_cond_destroy(&t->side_cond);
	pthread_mutex_destroy(&t->side_mu);
	pthread_mutex_destroy(&t->in_mu);
	pthread_cond_destroy(&t->room);
	pthread_mutex_destroy(&t->mu);
	lora_free(t);
}

int node_transport_set_peer(struct node_transport *t, uint64_t id,
                            const char *addr, char *errmsg)
{
	if (id == t->self)
		return 0;
	pthread_mutex_lock(&t->mu);
	int i = peer_find(t, id);
	if (i >= 0 && strcmp(t->peers[i]->addr, addr) == 0) {
		pthread_mutex_unlock(&t->mu);
		return 0;
	}
	struct peer_out *old = i >= 0 ? t->peers[i] : NULL;
	for (int j = 0; i < 0 && j < NODE_PEERS_MAX; j++)
		if (t->peers[j] == NULL)
			i = j;
	struct peer_out *pc = NULL;
	int rc = i < 0 ? lora_errf(LORA_ELIMIT, errmsg, "more than %d peers",
	                           NODE_PEERS_MAX)
	               : peer_new(t, id, addr, &pc, errmsg);
	if (i >= 0)
		t->peers[i] = pc;
	pthread_mutex_unlock(&t->mu);
	peer_free(old); /* outside t->mu: its callbacks may signal room */
	return rc;
}

void node_transport_remove_peer(struct node_transport *t, uint64_t id)
{
	pthread_mutex_lock(&t->mu);
	int i = peer_find(t, id);
	struct peer_out *pc = i >= 0 ? t->peers[i] : NULL;
	if (i >= 0)
		t->peers[i] = NULL;
	pthread_mutex_unlock(&t->mu);
	peer_free(pc);
}

/* Appends one frame to pc's buffer and starts a batch if none is in
 * flight; LORA_EUNAVAILABLE when not connected or full. pc->mu held. */
static int peer_append(struct peer_out *pc, uint64_t self, int kind,
                       const void *payload, size_t len)
{
	size_t whole = NODE_PEER_LEN_BYTES + NODE_PEER_HEADER_BYTES + len;
	int fwd = kind == NODE_FRAME_FWD || kind == NODE_FRAME_FWD_ANS;
	/* passed-on writes and their answers queue beside the Raft frames
	 * within a budget of their own, so a burst of them never pushes
	 * AppendEntries or heartbeats out */
	size_t frames =
	    fwd ? pc->pend_fwd_frames : pc->pend_frames - pc->pend_fwd_frames;
	size_t bytes =
	    fwd ? pc->pend_fwd_bytes : pc->pend.len - pc->pend_fwd_bytes;
	size_t frames_max =
	    fwd ? NODE_PEER_FWD_SENDBUF_MSGS : NODE_PEER_SENDBUF_MSGS;
	size_t bytes_max =
	    fwd ? NODE_PEER_FWD_SENDBUF_BYTES_MAX : NODE_PEER_SENDBUF_BYTES_MAX;
	if (!pc->connected || pc->closing || frames >= frames_max ||
	    (bytes > 0 && bytes + whole > bytes_max))
		return LORA_EUNAVAILABLE;
	if (buf_reserve(&pc->pend, whole) != 0)
		return LORA_ENOMEM;
	uint8_t *p = pc->pend.data + pc->pend.len;
	lora_put_be64(p, NODE_PEER_HEADER_BYTES + len);
	p[NODE_PEER_LEN_BYTES] = (uint8_t)kind;
	lora_put_be64(p + NODE_PEER_LEN_BYTES + 1, self);
	if (len)
		memcpy(p + NODE_PEER_LEN_BYTES + NODE_PEER_HEADER_BYTES,
		       payload, len);
	pc->pend.len += whole;
	pc->pend_frames++;
	if (fwd) {
		pc->pend_fwd_frames++;
		pc->pend_fwd_bytes += whole;
	}
	peer_kick(pc);
	return 0;
}

/* One try at sending; t->mu held. */
static int send_try(struct node_transport *t, uint64_t to, int kind,
                    const void *payload, size_t len)
{
	int i = peer_find(t, to);
	if (i < 0)
		return LORA_EUNAVAILABLE;
	struct peer_out *pc = t->peers[i];
	pthread_mutex_lock(&pc->mu);
	int rc = peer_append(pc, t->self, kind, payload, len);
	pthread_mutex_unlock(&pc->mu);
	return rc;
}

void node_transport_set_idle_ms(struct node_transport *t, int ms)
{
	atomic_store(&t->idle_ms, ms > 0 ? ms : PEER_IDLE_TIMEOUT_MS);
}

void node_transport_set_silent_ms(struct node_transport *t, int ms)
{
	if (ms <= 0)
		ms = PEER_SILENT_MS_DEFAULT;
	atomic_store(&t->silent_ms, ms);
	atomic_store(&t->idle_ms, ms);
}

/* The latest time each peer's stream to us brought bytes. */
struct heard {
	uint64_t id, rx_ms;
};

static int heard_collect(struct node_transport *t, struct heard *h, int max)
{
	int n = 0;
	pthread_mutex_lock(&t->in_mu);
	for (struct conn_in *c = t->live; c != NULL && n < max; c = c->next) {
		uint64_t from = __atomic_load_n(&c->from, __ATOMIC_RELAXED);
		if (from != 0)
			h[n++] = (struct heard){
			    from, __atomic_load_n(&c->rx_ms, __ATOMIC_RELAXED)};
	}
	pthread_mutex_unlock(&t->in_mu);
	return n;
}

/*
 * Side thread, every PEER_WATCH_MS: a peer we once heard from but not for
 * silent_ms, while our stream to it has been up that long, is lost: the
 * stream is closed and redialed (peer_lost). (A peer that never spoke to
 * us, e.g. one that does not know our address yet, is left alone.) Its
 * stream to us closes by the same limit on its own (idle_ms).
 */
static void peers_watch(struct node_transport *t)
{
	struct heard h[PEER_CONNS_IN_MAX];
	int nh = heard_collect(t, h, PEER_CONNS_IN_MAX);
	uint64_t now = lora_now_ms();
	uint64_t silent = (uint64_t)atomic_load(&t->silent_ms);
	uint64_t dial_max =
	    silent / 4 > PEER_DIAL_MS_MIN ? silent / 4 : PEER_DIAL_MS_MIN;
	pthread_mutex_lock(&t->mu);
	for (int i = 0; i < NODE_PEERS_MAX; i++) {
		struct peer_out *pc = t->peers[i];
		if (pc == NULL)
			continue;
		pthread_mutex_lock(&pc->mu);
		int stuck = pc->dial_ms != 0 && now - pc->dial_ms >= dial_max;
		pthread_mutex_unlock(&pc->mu);
		/* the kernel retransmits an unanswered SYN after 1 s: a dial
		 * aio timeout alone does not always end it, so it is
		 * cancelled here and dial_cb redials (t->mu keeps pc) */
		if (stuck)
			nng_aio_cancel(pc->dial_aio);
		pthread_mutex_lock(&pc->mu);
		for (int k = 0; k < nh; k++)
			if (h[k].id == pc->id && h[k].rx_ms > pc->rx_ms)
				pc->rx_ms = h[k].rx_ms;
		/* a connection whose listener never sent its hello (a
		 * stopped process, a path that went black) is given up as
		 * soon as an unanswered dial would be */
		int mute = !pc->answered && now - pc->up_ms >= dial_max;
		if (pc->connected && !pc->closing &&
		    (mute || (pc->rx_ms != 0 && now - pc->up_ms >= silent &&
		              now - pc->rx_ms >= silent))) {
			if (mute) /* every few dials while it lasts */
				LOG_DEBUG("peer %llu (%s): no hello within "
				          "%llu ms, redialing",
				          (unsigned long long)pc->id, pc->addr,
				          (unsigned long long)dial_max);
			else
				LOG_INFO("peer %llu (%s): silent for %llu ms, "
				         "closing our stream and redialing",
				         (unsigned long long)pc->id, pc->addr,
				         (unsigned long long)(now - pc->rx_ms));
			peer_lost(pc, NNG_ETIMEDOUT);
		}
		pthread_mutex_unlock(&pc->mu);
	}
	pthread_mutex_unlock(&t->mu);
}

int node_transport_send(struct node_transport *t, uint64_t to, int kind,
                        const void *payload, size_t len)
{
	if (len > NODE_PEER_MSG_BYTES_MAX - NODE_PEER_HEADER_BYTES)
		return LORA_ELIMIT;
	pthread_mutex_lock(&t->mu);
	int rc = send_try(t, to, kind, payload, len);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

int node_transport_send_wait(struct node_transport *t, uint64_t to, int kind,
                             const void *payload, size_t len, int timeout_ms)
{
	if (len > NODE_PEER_MSG_BYTES_MAX - NODE_PEER_HEADER_BYTES)
		return LORA_ELIMIT;
	nng_time end =
	    nng_clock() + (nng_time)(timeout_ms > 0 ? timeout_ms : 0);
	pthread_mutex_lock(&t->mu);
	int rc;
	while ((rc = send_try(t, to, kind, payload, len)) ==
	       LORA_EUNAVAILABLE) {
		nng_time now = nng_clock();
		if (now >= end)
			break;
		/* a slice: a (re)connect does not signal room */
		int ms = (int)(end - now);
		struct timespec ts;
		lora_deadline_after(
		    &ts, ms < PEER_WAIT_SLICE_MS ? ms : PEER_WAIT_SLICE_MS);
		__atomic_add_fetch(&t->room_waiters, 1, __ATOMIC_RELEASE);
		pthread_cond_timedwait(&t->room, &t->mu, &ts);
		__atomic_sub_fetch(&t->room_waiters, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}
