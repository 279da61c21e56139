/*
 * proxy.c - a follower passes an HTTP write to the leader's HTTP API over a
 * kept-alive connection and relays the leader's answer unchanged.
 *
 * This is the HTTP twin of forward.c (which carries native-protocol writes
 * over nng): a plain socket write and one blocking read per request, so a
 * forwarded write costs the follower no thread hand-offs. The request is
 * marked X-Lora-Forwarded so the receiver never passes it on again. Until
 * the request is written, nothing was executed (LORA_UNAVAILABLE after
 * NODE_PROXY_SEND_MS of finding no leader). Once written, a write with a
 * requestId is written again to a new leader as soon as one is known
 * before the answer came (dedupe applies it once); one without answers
 * LORA_UNKNOWN_OUTCOME once its leader was silent for an election timeout
 * (node_forward_check in forward.c), or when the connection breaks.
 *
 * With http_tls on, the connections to leaders are TLS (node/tls_conn.c):
 * the leader's certificate must chain to http_tls_ca (or the peer CA) and
 * name lora-node-<leader id>; a connection is dialed and its handshake
 * done on a worker (exchange) or, for a resend, on a dial thread of its
 * own (never the I/O thread: dial_async), bounded by
 * NODE_PROXY_HANDSHAKE_MS; the I/O thread's reads drain what TLS holds.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "http_int.h"
#include "log.h"
#include "thread.h"

#define NODE_PROXY_SEND_MS 3000 /* until a leader takes it */
#define NODE_PROXY_CONNECT_MS                                                  \
	200 /* an unanswered SYN is retried by the kernel only after 1 s:      \
	     * a fresh attempt (to whoever leads then) comes sooner */
#define NODE_PROXY_POLL_MS         10 /* leader-change checks while waiting */
#define NODE_PROXY_RETRY_MS        50 /* no leader took it, none new */
#define NODE_PROXY_IDLE_MS         30000 /* pooled connections older: dropped */
#define NODE_PROXY_POOL_MAX        256   /* idle connections kept */
#define NODE_PROXY_HEAD_BYTES      4096
#define NODE_PROXY_REPLY_BYTES_MAX NODE_PEER_MSG_BYTES_MAX

/* A connection to a leader: a socket, in TLS when http_tls is on. */
struct pfd {
	int fd; /* -1: none */
	struct node_tls_conn *tls;
};

struct pconn {
	struct pfd c;
	char addr[NODE_ADDR_BYTES_MAX];
	uint64_t idle_since_ms;
};

/* http_tls on: the client side of TLS to the leaders' HTTP ports (their
 * certificates must chain to http_tls_ca, or the peer CA, and name
 * lora-node-<id>); made on first use, kept until exit. */
static pthread_mutex_t tls_mu = PTHREAD_MUTEX_INITIALIZER;
static struct node_tls_ctx *tls_ctx;
#define NODE_PROXY_HANDSHAKE_MS 2000

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pconn pool[NODE_PROXY_POOL_MAX];
static int n_pool;

/* ---- connections
 * -------------------------------------------------------------- */

static int dial(const char *addr);

static void pfd_close(struct pfd c)
{
	if (c.fd < 0)
		return;
	node_tls_conn_free(c.tls);
	close(c.fd);
}

static struct node_tls_ctx *tls_client(struct lnode *n)
{
	pthread_mutex_lock(&tls_mu);
	if (tls_ctx == NULL) {
		struct node_tls trust = n->cfg.http_tls;
		char err[LORA_ERRMSG_BYTES];
		if (trust.ca[0] == '\0')
			snprintf(trust.ca, sizeof trust.ca, "%s",
			         n->cfg.peer_tls.ca);
		if (node_tls_ctx_new(&trust, 0, &tls_ctx, err) != 0)
			LOG_WARN("http proxy: %s", err);
	}
	pthread_mutex_unlock(&tls_mu);
	return tls_ctx;
}

/* The TLS handshake with leader `to` on fd (blocking, bounded). */
static int dial_tls(struct lnode *n, int fd, uint64_t to,
                    struct node_tls_conn **out)
{
	struct node_tls_ctx *ctx = tls_client(n);
	char name[64];
	snprintf(name, sizeof name, NODE_TLS_PEER_NAME_FMT,
	         (unsigned long long)to);
	if (ctx == NULL || node_tls_conn_new(ctx, fd, name, out) != 0)
		return -1;
	uint64_t until = lora_now_ms() + NODE_PROXY_HANDSHAKE_MS;
	while (node_tls_handshake(*out) != 0) {
		uint64_t now = lora_now_ms();
		struct pollfd p = {.fd = fd, .events = node_tls_wants(*out)};
		if (errno != EAGAIN || now >= until ||
		    poll(&p, 1, (int)(until - now)) < 0) {
			char why[128];
			node_tls_error(*out, why, sizeof why);
			LOG_WARN("http proxy: TLS to node %llu: %s",
			         (unsigned long long)to,
			         errno == EAGAIN ? "timed out" : why);
			node_tls_conn_free(*out);
			*out = NULL;
			return -1;
		}
	}
	return 0;
}

/* A new connection to leader `to` at addr (TLS when http_tls is on). */
static struct pfd dial_to(struct lnode *n, const char *addr, uint64_t to)
{
	struct pfd c = {.fd = dial(addr), .tls = NULL};
	if (c.fd >= 0 && n->cfg.http_tls.mode != NODE_TLS_OFF &&
	    dial_tls(n, c.fd, to, &c.tls) != 0) {
		close(c.fd);
		c.fd = -1;
	}
	return c;
}

static int dial(const char *addr)
{
	struct addrinfo *ai;
	if (node_addr_resolve(addr, 0, &ai) != 0)
		return -1;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		struct timeval tv = {.tv_sec = NODE_PROXY_CONNECT_MS / 1000,
		                     .tv_usec =
		                         NODE_PROXY_CONNECT_MS % 1000 * 1000};
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	return fd;
}

/* An idle pooled connection to addr, or fd -1. */
static struct pfd conn_pooled(const char *addr)
{
	uint64_t now = lora_now_ms();
	struct pfd c = {.fd = -1};
	pthread_mutex_lock(&pool_mu);
	for (int i = n_pool - 1; i >= 0 && c.fd < 0; i--) {
		if (strcmp(pool[i].addr, addr) ||
		    now - pool[i].idle_since_ms > NODE_PROXY_IDLE_MS)
			continue;
		c = pool[i].c;
		pool[i] = pool[--n_pool];
	}
	pthread_mutex_unlock(&pool_mu);
	return c;
}

/* A pooled connection to addr (*reused set), or a new one; fd -1 if
 * none. */
static struct pfd conn_get(struct lnode *n, const char *addr, uint64_t to,
                           int *reused)
{
	struct pfd c = conn_pooled(addr);
	*reused = c.fd >= 0;
	return c.fd >= 0 ? c : dial_to(n, addr, to);
}

static void conn_put(const char *addr, struct pfd c)
{
	uint64_t now = lora_now_ms();
	struct pfd stale[NODE_PROXY_POOL_MAX];
	int ns = 0;
	pthread_mutex_lock(&pool_mu);
	for (int i = 0; i < n_pool;)
		if (now - pool[i].idle_since_ms > NODE_PROXY_IDLE_MS) {
			stale[ns++] = pool[i].c;
			pool[i] = pool[--n_pool];
		} else {
			i++;
		}
	if (n_pool < NODE_PROXY_POOL_MAX) {
		pool[n_pool].c = c;
		snprintf(pool[n_pool].addr, sizeof pool[n_pool].addr, "%s",
		         addr);
		pool[n_pool++].idle_since_ms = now;
		c.fd = -1;
	}
	pthread_mutex_unlock(&pool_mu);
	for (int i = 0; i < ns; i++)
		pfd_close(stale[i]);
	pfd_close(c);
}

/* ---- dials off the HTTP I/O thread
 * ------------------------------------------- */

/* A resend that finds no idle connection to the new leader must not dial
 * on the HTTP I/O thread (a connect and a TLS handshake would stall every
 * client of this node): a thread of its own dials and pools the
 * connection, and the I/O thread's next node_proxy_tick takes it. At most
 * NODE_PROXY_DIALS_MAX at once, one per address. */
#define NODE_PROXY_DIALS_MAX 4
static pthread_mutex_t dial_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dial_cond = PTHREAD_COND_INITIALIZER;
static char dialing[NODE_PROXY_DIALS_MAX][NODE_ADDR_BYTES_MAX]; /* "": free */
static int n_dials;

struct dial_job {
	struct lnode *n;
	uint64_t to;
	int slot;
};

static void *dial_main(void *arg)
{
	struct dial_job *d = arg;
	struct pfd c = dial_to(d->n, dialing[d->slot], d->to);
	if (c.fd >= 0)
		conn_put(dialing[d->slot], c);
	pthread_mutex_lock(&dial_mu);
	dialing[d->slot][0] = '\0';
	n_dials--;
	pthread_cond_broadcast(&dial_cond);
	pthread_mutex_unlock(&dial_mu);
	lora_free(d);
	return NULL;
}

/* Starts a dial of leader `to` at addr unless one runs already. */
static void dial_async(struct lnode *n, const char *addr, uint64_t to)
{
	int slot = -1;
	pthread_mutex_lock(&dial_mu);
	for (int i = 0; i < NODE_PROXY_DIALS_MAX; i++) {
		if (!strcmp(dialing[i], addr)) {
			slot = -1;
			break;
		}
		if (dialing[i][0] == '\0' && slot < 0)
			slot = i;
	}
	struct dial_job *d = slot >= 0 ? lora_calloc(1, sizeof *d) : NULL;
	if (d) {
		*d = (struct dial_job){n, to, slot};
		snprintf(dialing[slot], sizeof dialing[slot], "%s", addr);
		n_dials++;
	}
	pthread_mutex_unlock(&dial_mu);
	pthread_t t;
	if (d == NULL)
		return;
	if (node_thread_start(&t, dial_main, d, "proxy dial", NULL) == 0) {
		pthread_detach(t);
		return;
	}
	pthread_mutex_lock(&dial_mu);
	dialing[slot][0] = '\0';
	n_dials--;
	pthread_cond_broadcast(&dial_cond);
	pthread_mutex_unlock(&dial_mu);
	lora_free(d);
}

void node_proxy_close_all(void)
{
	pthread_mutex_lock(&dial_mu); /* dials end within their bounds */
	while (n_dials > 0)
		pthread_cond_wait(&dial_cond, &dial_mu);
	pthread_mutex_unlock(&dial_mu);
	pthread_mutex_lock(&pool_mu);
	for (int i = 0; i < n_pool; i++)
		pfd_close(pool[i].c);
	n_pool = 0;
	pthread_mutex_unlock(&pool_mu);
}

/* ---- one exchange
 * ------------------------------------------------------------- */

struct preply {
	int status;
	char ctype[128], bookmark[32], location[NODE_ADDR_BYTES_MAX + 16];
	char *body; /* lora_malloc'ed */
	size_t body_len;
	int close; /* Connection: close */
};

/* A wait for leader `to`'s answer (node_forward_check's state). */
struct pwait {
	uint64_t to, heard;
	int resend;
	int hold; /* NODE_PROXY_HOLD_UNAVAILABLE: keep such an answer back */
	int why;  /* NODE_WAIT_* that ended it */
};

/*
 * Reads up to cap bytes into buf (at least one), waiting in
 * NODE_PROXY_POLL_MS steps until deadline_ms; gives up early when the
 * write should be sent elsewhere or its leader went silent (w->why).
 * Returns the count, or -1.
 */
static ssize_t recv_some(struct lnode *n, struct pfd c, struct pwait *w,
                         char *buf, size_t cap, uint64_t deadline_ms)
{
	for (;;) {
		if (c.tls && node_tls_pending(c.tls)) { /* not on the socket */
			ssize_t r = node_tls_recv(c.tls, buf, cap);
			if (r > 0)
				return r;
			if (r == 0 || errno != EAGAIN)
				return -1;
		}
		struct pollfd p = {.fd = c.fd,
		                   .events =
		                       c.tls ? node_tls_wants(c.tls) : POLLIN};
		int pr = poll(&p, 1, NODE_PROXY_POLL_MS);
		if (pr > 0 && c.tls) {
			ssize_t r = node_tls_recv(c.tls, buf, cap);
			if (r > 0)
				return r;
			if (r == 0 || errno != EAGAIN)
				return -1;
			continue;
		}
		if (pr > 0) {
			ssize_t r = recv(c.fd, buf, cap, 0);
			if (r < 0 && errno == EINTR)
				continue;
			return r > 0 ? r : -1;
		}
		if (pr < 0 && errno != EINTR)
			return -1;
		if (lora_now_ms() >= deadline_ms || atomic_load(&n->stopping))
			return -1;
		w->why = node_forward_check(n, w->to, w->resend, &w->heard);
		if (w->why != NODE_WAIT_ON)
			return -1;
	}
}

/* Parses the answer's head in head[0..hlen); fills r; -1 if malformed. */
static int parse_head(char *head, struct preply *r, size_t *clen)
{
	char *line = strstr(head, "\r\n");
	if (strncmp(head, "HTTP/1.", 7) || line == NULL ||
	    sscanf(head + 8, " %d", &r->status) != 1 || r->status < 200 ||
	    r->status > 599)
		return -1;
	*clen = 0;
	int have_len = 0;
	for (char *p = line + 2; *p && strncmp(p, "\r\n", 2);) {
		char *eol = strstr(p, "\r\n");
		if (eol == NULL)
			return -1;
		*eol = '\0';
		char *v = strchr(p, ':');
		if (v) {
			*v++ = '\0';
			v += strspn(v, " \t");
			if (!strcasecmp(p, "Content-Length")) {
				if (v[strspn(v, "0123456789")] != '\0' ||
				    !v[0] || strlen(v) > 12)
					return -1;
				*clen = strtoull(v, NULL, 10);
				have_len = 1;
			} else if (!strcasecmp(p, "Content-Type")) {
				snprintf(r->ctype, sizeof r->ctype, "%s", v);
			} else if (!strcasecmp(p, "X-Lora-Bookmark")) {
				snprintf(r->bookmark, sizeof r->bookmark, "%s",
				         v);
			} else if (!strcasecmp(p, "Connection")) {
				r->close = strcasestr(v, "close") != NULL;
			} else if (!strcasecmp(p, "Location")) {
				snprintf(r->location, sizeof r->location, "%s",
				         v);
			}
		}
		p = eol + 2;
	}
	return have_len && *clen <= NODE_PROXY_REPLY_BYTES_MAX ? 0 : -1;
}

/* Reads one answer from fd; 0 or -1 (connection unusable). */
static int read_reply(struct lnode *n, struct pfd fd, struct pwait *w,
                      struct preply *r, uint64_t deadline)
{
	char head[NODE_PROXY_HEAD_BYTES + 1];
	size_t hl = 0;
	char *end = NULL;
	while (end == NULL) {
		if (hl == NODE_PROXY_HEAD_BYTES)
			return -1;
		ssize_t got = recv_some(n, fd, w, head + hl,
		                        NODE_PROXY_HEAD_BYTES - hl, deadline);
		if (got < 0)
			return -1;
		hl += (size_t)got;
		head[hl] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	size_t hbytes = (size_t)(end - head) + 4, clen;
	if (parse_head(head, r, &clen) != 0)
		return -1;
	r->body = lora_malloc(clen ? clen : 1);
	if (r->body == NULL || hl - hbytes > clen)
		return -1;
	memcpy(r->body, head + hbytes, hl - hbytes);
	for (r->body_len = hl - hbytes; r->body_len < clen;) {
		ssize_t got = recv_some(n, fd, w, r->body + r->body_len,
		                        clen - r->body_len, deadline);
		if (got < 0)
			return -1;
		r->body_len += (size_t)got;
	}
	return 0;
}

/* Writes the request; with `now`, only what the socket takes at once
 * (-1 if not all of it). */
/* The request's bytes in TLS: blocking, bounded by NODE_PROXY_SEND_MS
 * (plaintext sockets here block on their own), or with `now` only what
 * goes at once (-1 if not all of it: the connection must be closed). */
static int send_tls(struct node_tls_conn *tls, int fd, struct iovec *iov,
                    int cnt, int now)
{
	uint64_t until = lora_now_ms() + NODE_PROXY_SEND_MS;
	while (cnt > 0 || node_tls_flush(tls) != 0) {
		ssize_t w = cnt > 0 ? node_tls_sendv(tls, iov, cnt) : -1;
		if (w > 0) {
			while (cnt > 0 && (size_t)w >= iov->iov_len) {
				w -= (ssize_t)iov->iov_len;
				iov++;
				cnt--;
			}
			if (cnt > 0) {
				iov->iov_base = (char *)iov->iov_base + w;
				iov->iov_len -= (size_t)w;
			}
			continue;
		}
		uint64_t t = lora_now_ms();
		struct pollfd p = {.fd = fd, .events = node_tls_wants(tls)};
		if (now || errno != EAGAIN || t >= until ||
		    poll(&p, 1, (int)(until - t)) < 0)
			return -1;
	}
	return 0;
}

static int send_request(struct pfd c, const char *path, const char *body,
                        size_t len, int hops, const char *ident, int now)
{
	int fd = c.fd;
	char head[NODE_HTTP_IDENT_BYTES + 512];
	int hl = snprintf(head, sizeof head,
	                  "POST %s HTTP/1.1\r\nHost: lora\r\n"
	                  "Content-Type: application/json\r\n%s"
	                  "X-Lora-Forwarded: %d\r\nContent-Length: %zu\r\n\r\n",
	                  path, ident, hops, len);
	if (hl < 0 || (size_t)hl >= sizeof head)
		return -1; /* a path this long is not ours to pass on */
	struct iovec iov[2] = {{head, (size_t)hl}, {(void *)body, len}};
	if (c.tls)
		return send_tls(c.tls, fd, iov, 2, now);
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	size_t total = (size_t)hl + len;
	while (total > 0) {
		ssize_t w =
		    sendmsg(fd, &mh, MSG_NOSIGNAL | (now ? MSG_DONTWAIT : 0));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		total -= (size_t)w;
		while (mh.msg_iovlen > 0 && (size_t)w >= mh.msg_iov->iov_len) {
			w -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen > 0) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + w;
			mh.msg_iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* A pooled connection the leader closed meanwhile reads as EOF at once. */
static int conn_dead(struct pfd c)
{
	struct pollfd p = {.fd = c.fd, .events = POLLIN};
	return poll(&p, 1, 0) != 0;
}

/* A leader's 503 LORA_UNAVAILABLE: it did not execute the write. */
static int reply_unavailable(const struct preply *r)
{
	static const char code[] = "\"code\":\"LORA_UNAVAILABLE\"";
	return r->status == 503 && r->body &&
	       memmem(r->body, r->body_len, code, sizeof code - 1) != NULL;
}

/* Sends the request to w->to at addr and relays its answer: 0 answered,
 * -1 not sent (nothing executed), LORA_EUNKNOWN_OUTCOME sent, no answer
 * (w->why NODE_WAIT_RESEND: send it to the new leader), NODE_PROXY_HELD
 * answered LORA_UNAVAILABLE with w->hold (not relayed). */
static int exchange(struct lnode *n, struct node_http_ex *x, struct pwait *w,
                    const char *addr, const char *path, const char *body,
                    size_t len, uint64_t deadline)
{
	int reused;
	struct pfd fd = conn_get(n, addr, w->to, &reused);
	if (fd.fd >= 0 && reused && conn_dead(fd)) {
		pfd_close(fd);
		fd = dial_to(n, addr, w->to);
	}
	if (fd.fd < 0)
		return -1;
	char ident[NODE_HTTP_IDENT_BYTES]; /* who asks (http_int.h) */
	node_http_ident_line(n, x, ident, sizeof ident);
	if (send_request(fd, path, body, len, node_http_forwarded(x) + 1, ident,
	                 0) != 0) {
		pfd_close(fd); /* an incomplete request is never executed */
		return -1;
	}
	struct preply r = {0};
	w->heard = lora_now_ms();
	w->why = NODE_WAIT_GIVE_UP;
	int rc = read_reply(n, fd, w, &r, deadline);
	int held = rc == 0 && w->hold && reply_unavailable(&r);
	if (rc == 0 && !held) {
		node_http_reply(x, r.status,
		                r.ctype[0] ? r.ctype : "application/json",
		                r.body, r.body_len, r.bookmark,
		                r.location[0] ? r.location : NULL);
	}
	if (rc == 0 && !r.close)
		conn_put(addr, fd);
	else
		pfd_close(fd);
	lora_free(r.body);
	if (held)
		return NODE_PROXY_HELD;
	return rc == 0 ? 0 : LORA_EUNKNOWN_OUTCOME;
}

int node_proxy_write(struct lnode *n, struct node_http_ex *x, const char *path,
                     const char *body, size_t len, int flags)
{
	int resend = (flags & NODE_PROXY_RESEND) != 0;
	uint64_t end = lora_now_ms() + node_forward_wait_ms(body, len);
	uint64_t deadline = lora_now_ms() + NODE_PROXY_SEND_MS;
	int sent = 0;
	while (lora_now_ms() < deadline && !atomic_load(&n->stopping)) {
		uint64_t seq = node_status_seq(n);
		uint64_t leader = node_leader_id(n);
		struct node_member m;
		if (leader == n->cfg.id)
			return NODE_FORWARD_SELF;
		int rc = -1;
		struct pwait w = {
		    .to = leader,
		    .resend = resend,
		    /* after an attempt in doubt, a leader's UNAVAILABLE
		     * speaks for its own attempt only: never relayed */
		    .hold = sent || (flags & NODE_PROXY_HOLD_UNAVAILABLE)};
		if (leader != 0 && node_member_get(n, leader, &m) == 0 &&
		    m.http_addr[0] != '\0')
			rc = exchange(n, x, &w, m.http_addr, path, body, len,
			              end);
		if (rc == 0 || (rc == NODE_PROXY_HELD && !sent))
			return rc;
		/* held after an attempt in doubt: sent again (dedupe) */
		if (rc == LORA_EUNKNOWN_OUTCOME && resend) {
			sent = 1; /* the new leader gets it, dedupe applies */
			deadline = end; /* it once */
			if (w.why == NODE_WAIT_RESEND)
				continue;
		} else if (rc == LORA_EUNKNOWN_OUTCOME) {
			node_http_reply_error(
			    x, rc,
			    "the leader went silent before it answered: the "
			    "write may have committed; retry with the same "
			    "requestId");
			return rc;
		}
		/* woken by a leader change, else tried again after the pause */
		node_status_wait(n, seq, lora_now_ms() + NODE_PROXY_RETRY_MS);
	}
	if (sent) {
		node_http_reply_error(
		    x, LORA_EUNKNOWN_OUTCOME,
		    "no leader answered in time: the write may have "
		    "committed; retry with the same requestId");
		return LORA_EUNKNOWN_OUTCOME;
	}
	node_http_reply_error(x, LORA_EUNAVAILABLE,
	                      "cannot reach the leader: not executed, retry");
	return LORA_EUNAVAILABLE;
}

/* ---- without a waiting thread (HTTP I/O thread)
 * ------------------------------- */

#define NODE_PROXY_READ_BYTES (16u << 10)

/*
 * A connection to a leader owned by the HTTP I/O thread. It is registered
 * with epoll once, level-triggered, for its whole life, and stays between
 * the writes it carries (idle): a passed-on write then costs no epoll_ctl.
 * Only the I/O thread touches upconns (and node_proxy_drop after it
 * stopped). A closed one is only marked dead: an event of the same epoll
 * batch may still name it; node_proxy_tick frees it.
 */
struct upconn {
	struct node_http_watch w;  /* first; w.fd: the connection */
	struct node_tls_conn *tls; /* http_tls: its TLS (owned) */
	struct lnode *n;
	char addr[NODE_ADDR_BYTES_MAX];
	uint64_t idle_since_ms;
	struct pjob *job; /* NULL: idle */
	int dead;
	struct upconn *next; /* upconns */
};

/* A passed-on write whose answer the HTTP I/O thread reads. */
struct pjob {
	struct upconn *uc;
	struct lnode *n;
	struct node_http_ex *x;
	uint64_t to;
	const char *api; /* metrics label */
	uint64_t t0_ns, deadline_ms;
	uint64_t heard;   /* node_forward_check's state */
	int resend;       /* carries a requestId: follows the leader */
	const char *path; /* borrowed: the route's */
	char *buf;        /* the answer so far (lora_malloc) */
	size_t len, cap;
	struct pjob *next; /* jobs (jobs_mu) */
};

static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pjob *jobs;
static struct upconn *upconns; /* links: jobs_mu (one I/O thread per node) */

static void upconn_close(struct upconn *uc)
{
	if (!uc->dead) {
		node_tls_conn_free(uc->tls);
		uc->tls = NULL;
		close(uc->w.fd); /* leaves the epoll set with it */
	}
	uc->dead = 1;
	uc->job = NULL;
}

/* Frees dead upconns of n (all of them: `all`) and closes idle ones
 * unused for NODE_PROXY_IDLE_MS. */
static void upconns_sweep(struct lnode *n, int all)
{
	uint64_t now = lora_now_ms();
	pthread_mutex_lock(&jobs_mu);
	for (struct upconn **pp = &upconns; *pp;) {
		struct upconn *uc = *pp;
		if (uc->n == n && uc->job == NULL &&
		    (all || now - uc->idle_since_ms > NODE_PROXY_IDLE_MS))
			upconn_close(uc);
		if (uc->n != n || !uc->dead) {
			pp = &uc->next;
			continue;
		}
		*pp = uc->next;
		lora_free(uc);
	}
	pthread_mutex_unlock(&jobs_mu);
}

static void job_readable(struct pjob *j);

static void upconn_event(struct node_http_watch *w)
{
	struct upconn *uc = (struct upconn *)w;
	if (uc->dead)
		return;
	if (uc->job)
		job_readable(uc->job);
	else
		upconn_close(uc); /* idle: closed by the leader, or garbage */
}

/* An idle connection of n to addr: one of the I/O thread's, or one taken
 * from the shared pool and registered; NULL when there is none. */
static struct upconn *upconn_take(struct lnode *n, struct node_http_ex *x,
                                  const char *addr, uint64_t to, int may_dial)
{
	uint64_t now = lora_now_ms();
	struct upconn *found = NULL;
	pthread_mutex_lock(&jobs_mu);
	for (struct upconn *uc = upconns; uc && !found; uc = uc->next)
		if (uc->n == n && !uc->dead && uc->job == NULL &&
		    now - uc->idle_since_ms <= NODE_PROXY_IDLE_MS &&
		    strcmp(uc->addr, addr) == 0)
			found = uc;
	pthread_mutex_unlock(&jobs_mu);
	if (found)
		return found;
	struct pfd c = conn_pooled(addr);
	if (c.fd < 0 && may_dial) /* a resend: pooled for the next tick */
		dial_async(n, addr, to);
	if (c.fd < 0)
		return NULL;
	int fd = c.fd;
	struct upconn *uc = lora_calloc(1, sizeof *uc);
	if (uc == NULL) {
		pfd_close(c);
		return NULL;
	}
	uc->tls = c.tls;
	uc->n = n;
	snprintf(uc->addr, sizeof uc->addr, "%s", addr);
	node_http_watch_init(&uc->w, x, fd, upconn_event);
	if (node_http_watch_add(&uc->w) != 0) {
		pfd_close(c);
		lora_free(uc);
		return NULL;
	}
	pthread_mutex_lock(&jobs_mu);
	uc->next = upconns;
	upconns = uc;
	pthread_mutex_unlock(&jobs_mu);
	return uc;
}

static void job_unlink(struct pjob *j)
{
	pthread_mutex_lock(&jobs_mu);
	for (struct pjob **pp = &jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	pthread_mutex_unlock(&jobs_mu);
}

/* After x was answered: the connection stays for the next write (keep)
 * or is closed, and x goes on. */
static void job_end(struct pjob *j, int keep, int ok)
{
	job_unlink(j);
	struct upconn *uc = j->uc;
	if (uc != NULL) { /* NULL: between two leaders */
		uc->job = NULL;
		uc->idle_since_ms = lora_now_ms();
		if (!keep)
			upconn_close(uc);
	}
	node_metrics_request(j->n, j->api, ok, lora_now_ns() - j->t0_ns);
	struct node_http_ex *x = j->x;
	lora_free(j->buf);
	lora_free(j);
	node_http_async_done(x);
}

static void job_lost(struct pjob *j, const char *why)
{
	char msg[LORA_ERRMSG_BYTES];
	snprintf(msg, sizeof msg,
	         "the leader did not answer (%s): the write may have "
	         "committed; retry with the same requestId",
	         why);
	node_http_reply_error(j->x, LORA_EUNKNOWN_OUTCOME, msg);
	job_end(j, 0, 0);
}

/* 1: a whole answer is in j->buf (r filled, body borrowed); 0: more to
 * come; -1: not an answer we can relay. */
static int job_parse(struct pjob *j, struct preply *r)
{
	char *end = j->len >= 4 ? memmem(j->buf, j->len, "\r\n\r\n", 4) : NULL;
	if (end == NULL)
		return j->len > NODE_PROXY_HEAD_BYTES ? -1 : 0;
	size_t hb = (size_t)(end - j->buf) + 4, clen;
	char head[NODE_PROXY_HEAD_BYTES + 1];
	if (hb > NODE_PROXY_HEAD_BYTES)
		return -1;
	memcpy(head, j->buf, hb);
	head[hb] = '\0';
	if (parse_head(head, r, &clen) != 0 || j->len > hb + clen)
		return -1;
	if (j->len < hb + clen)
		return 0;
	r->body = j->buf + hb;
	r->body_len = clen;
	return 1;
}

/* Reads once what arrived (the connection is level-triggered: more
 * comes as another event; TLS is read until it has nothing left, since
 * it may hold bytes the socket no longer shows): 0, or -1 on a closed
 * (*eof) or broken connection. */
static int job_read(struct pjob *j, int *eof)
{
	for (;;) {
		if (j->cap - j->len < NODE_PROXY_READ_BYTES) {
			size_t cap =
			    j->cap ? 2 * j->cap : NODE_PROXY_READ_BYTES;
			if (cap > NODE_PROXY_REPLY_BYTES_MAX + (64u << 10))
				return -1;
			char *nb = lora_realloc(j->buf, cap);
			if (nb == NULL)
				return -1;
			j->buf = nb;
			j->cap = cap;
		}
		ssize_t r;
		do
			r = j->uc->tls
			        ? node_tls_recv(j->uc->tls, j->buf + j->len,
			                        j->cap - j->len)
			        : recv(j->uc->w.fd, j->buf + j->len,
			               j->cap - j->len, MSG_DONTWAIT);
		while (r < 0 && errno == EINTR);
		if (r > 0) {
			j->len += (size_t)r;
			if (j->uc->tls && node_tls_pending(j->uc->tls))
				continue;
			return 0;
		}
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		*eof = r == 0;
		return -1;
	}
}

static void job_readable(struct pjob *j)
{
	int eof = 0;
	int rd = job_read(j, &eof);
	struct preply r = {0};
	int pr = job_parse(j, &r);
	if (pr == 1) {
		node_http_reply(j->x, r.status,
		                r.ctype[0] ? r.ctype : "application/json",
		                r.body, r.body_len, r.bookmark,
		                r.location[0] ? r.location : NULL);
		job_end(j, rd == 0 && !r.close, r.status == 200);
	} else if (pr < 0) {
		job_lost(j, "malformed answer");
	} else if (rd != 0) {
		job_lost(j, eof ? "connection closed" : "connection broken");
	}
}

/* Writes j's request to the current leader on a connection the I/O thread
 * watches (for a resend without one, a dial starts on its own thread:
 * dial_async); 0, or -1 when it was not written
 * (nothing executed). */
static int job_send(struct pjob *j, int may_dial)
{
	struct lnode *n = j->n;
	uint64_t leader = node_leader_id(n);
	struct node_member m;
	if (leader == 0 || leader == n->cfg.id ||
	    node_member_get(n, leader, &m) != 0 || m.http_addr[0] == '\0')
		return -1;
	struct upconn *uc = upconn_take(n, j->x, m.http_addr, leader, may_dial);
	if (uc == NULL)
		return -1;
	const char *body;
	size_t len;
	node_http_body(j->x, &body, &len);
	char ident[NODE_HTTP_IDENT_BYTES]; /* who asks (http_int.h) */
	node_http_ident_line(n, j->x, ident, sizeof ident);
	struct pfd c = {.fd = uc->w.fd, .tls = uc->tls};
	if (conn_dead(c) ||
	    send_request(c, j->path, body, len, node_http_forwarded(j->x) + 1,
	                 ident, 1) != 0) {
		upconn_close(uc); /* an incomplete request is never executed */
		return -1;
	}
	j->uc = uc;
	uc->job = j;
	j->to = leader;
	j->heard = lora_now_ms();
	j->len = 0;
	return 0;
}

int node_proxy_start(struct lnode *n, struct node_http_ex *x, const char *path,
                     const char *api, const char *body, size_t len, int resend)
{
	(void)body;
	(void)len; /* job_send takes them from x again */
	struct pjob *j = lora_calloc(1, sizeof *j);
	if (j == NULL)
		return -1;
	j->n = n;
	j->x = x;
	j->path = path;
	j->resend = resend;
	if (job_send(j, 0) != 0) {
		lora_free(j);
		return -1;
	}
	j->api = api;
	j->t0_ns = lora_now_ns();
	j->deadline_ms = lora_now_ms() + node_forward_wait_ms(body, len);
	node_http_async(x);
	pthread_mutex_lock(&jobs_mu);
	j->next = jobs;
	jobs = j;
	pthread_mutex_unlock(&jobs_mu);
	return 0;
}

/* This node became the leader while j waited: its route runs again on a
 * worker and finds the writer (a requestId write: dedupe applies it once). */
static void job_rerun(struct pjob *j)
{
	job_unlink(j);
	struct node_http_ex *x = j->x;
	lora_free(j->buf);
	lora_free(j);
	node_http_async_rerun(x, NULL, NULL);
}

/* What the tick does with a job (node_proxy_tick). */
enum { JOB_WAIT, JOB_RESEND, JOB_SILENT, JOB_LATE, JOB_STOP };

static int job_verdict(struct pjob *j, uint64_t now, int stopping)
{
	if (stopping)
		return JOB_STOP;
	if (now >= j->deadline_ms)
		return JOB_LATE;
	if (j->uc == NULL)
		return JOB_RESEND; /* waiting for a leader to take it */
	int v = node_forward_check(j->n, j->to, j->resend, &j->heard);
	return v == NODE_WAIT_RESEND    ? JOB_RESEND
	       : v == NODE_WAIT_GIVE_UP ? JOB_SILENT
	                                : JOB_WAIT;
}

/* Jobs of n that need the tick: *why per job (job_verdict). */
static size_t jobs_due(struct lnode *n, struct pjob **out, int *why, size_t max)
{
	uint64_t now = lora_now_ms();
	int stopping = atomic_load(&n->stopping);
	size_t k = 0;
	pthread_mutex_lock(&jobs_mu);
	for (struct pjob *j = jobs; j && k < max; j = j->next) {
		if (j->n != n)
			continue;
		int v = job_verdict(j, now, stopping);
		if (v != JOB_WAIT) {
			out[k] = j;
			why[k++] = v;
		}
	}
	pthread_mutex_unlock(&jobs_mu);
	return k;
}

void node_proxy_tick(struct lnode *n)
{
	enum { DUE_BATCH = 64 };
	struct pjob *due[DUE_BATCH];
	int why[DUE_BATCH];
	size_t k = jobs_due(n, due, why, DUE_BATCH);
	for (size_t i = 0; i < k; i++) {
		struct pjob *j = due[i];
		if (why[i] == JOB_RESEND) {
			/* the old leader's answer, if any, is not waited for */
			if (j->uc != NULL)
				upconn_close(j->uc);
			j->uc = NULL;
			if (node_leader_id(n) == n->cfg.id) {
				job_rerun(j); /* this node leads now */
				continue;
			}
			(void)job_send(j, 1); /* else again at the next tick */
			continue;
		}
		job_lost(j, why[i] == JOB_STOP     ? "node stopping"
		            : why[i] == JOB_SILENT ? "it went silent"
		                                   : "no answer in time");
	}
	upconns_sweep(n, 0);
}

void node_proxy_drop(struct lnode *n)
{
	pthread_mutex_lock(&jobs_mu);
	for (struct pjob **pp = &jobs; *pp;) {
		struct pjob *j = *pp;
		if (j->n != n) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		if (j->uc != NULL)
			j->uc->job = NULL;
		lora_free(j->buf);
		lora_free(j);
	}
	pthread_mutex_unlock(&jobs_mu);
	upconns_sweep(n, 1);
}
