/*
 * proxy.c - a follower passes an HTTP write to the leader's HTTP API over a
 * kept-alive connection and relays the leader's answer unchanged.
 *
 * This is the HTTP twin of forward.c (which carries native-protocol writes
 * over nng): a plain socket write and one blocking read per request, so a
 * forwarded write costs the follower no thread hand-offs. The request is
 * marked X-Lora-Forwarded so the receiver never passes it on again. The
 * rules on sending again and on unknown outcomes are in proxy.h; the
 * proxy knows the node only through struct node_proxy_ops.
 *
 * A request waiting on a worker sleeps in poll(2) on its connection and on
 * an eventfd of its own (struct pwaiter), which node_proxy_kick writes on
 * a leader change and at the stop; the poll's timeout is the request's
 * deadline or, for a write that must not be resent, the moment its leader
 * would have been silent for silent_ms. So it wakes for a reason, never
 * on a period.
 *
 * With TLS on, the connections to leaders are TLS (node/tls_conn.c):
 * the leader's certificate must chain to the client context's CA and
 * name lora-node-<leader id>; a connection is dialed and its handshake
 * done on a worker (exchange) or, for a resend, on a dial thread of its
 * own (never the I/O thread: dial_async), bounded by handshake_ms; the
 * I/O thread's reads drain what TLS holds.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

#include "batch.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "lora.h"
#include "proxy.h"
#include "thread.h"
#include "tls.h"
#include "transport.h"

#define NODE_PROXY_HEAD_BYTES 4096 /* an answer's head */
#define NODE_PROXY_READ_BYTES (16u << 10)
/* Dials off the I/O thread at once (dial_async), one per address. */
#define NODE_PROXY_DIALS_MAX 4
/* a batch's request bytes (bodies and identity lines; more go in the next
 * one): what a fresh connection's send buffer takes at once, as a write
 * sent alone from the I/O thread (at most NODE_HTTP_FAST_BODY_BYTES_MAX) */
#define NODE_PROXY_BATCH_BYTES (60u << 10)

/* A connection to a leader: a socket, in TLS when cfg.tls is on. */
struct pfd {
	int fd; /* -1: none */
	struct node_tls_conn *tls;
};

struct pconn {
	struct pfd c;
	char addr[NODE_ADDR_BYTES_MAX];
	uint64_t idle_since_ms;
};

/* A request waiting on a worker: node_proxy_kick writes efd. */
struct pwaiter {
	int efd; /* -1: none could be made (then waits in retry_ms steps) */
	struct pwaiter *next;
};

struct pjob;
struct upconn;

struct node_proxy {
	struct node_proxy_cfg cfg;
	struct node_proxy_ops ops;

	pthread_mutex_t pool_mu; /* idle connections (pool_max) */
	struct pconn *pool;
	int n_pool;

	pthread_mutex_t dial_mu; /* dial_async's threads */
	pthread_cond_t dial_cond;
	char dialing[NODE_PROXY_DIALS_MAX][NODE_ADDR_BYTES_MAX]; /* "": free */
	int n_dials;

	/* writes started on the I/O thread and its connections; links
	 * under jobs_mu (one I/O thread) */
	pthread_mutex_t jobs_mu;
	struct pjob *jobs;
	struct upconn *upconns;
	struct pjob *outq, *outq_tail; /* queued, not sent (I/O thread) */
	/* written by the I/O thread under off_mu (node_proxy_stats reads
	 * the pair), read there without it */
	uint64_t nobatch_leader;     /* refused a batch whole: sent alone */
	uint64_t nobatch_until_ms;   /* ... until then (0: for good) */
	uint64_t nobatch_backoff_ms; /* the last transient refusal's wait */

	pthread_mutex_t wait_mu; /* requests waiting on workers */
	struct pwaiter *waiters;

	atomic_uint_fast64_t dials, reused, sent, wakeups, kicks;
	atomic_uint_fast64_t batches, batched, batch_refused;
	pthread_mutex_t off_mu; /* nobatch_leader, nobatch_until_ms */
};

int node_proxy_verdict(uint64_t leader, uint64_t to, int resend,
                       uint64_t heard_ms, uint64_t now_ms, uint64_t silent_ms)
{
	if (resend)
		return leader != 0 && leader != to ? NODE_WAIT_RESEND
		                                   : NODE_WAIT_ON;
	return now_ms - heard_ms >= silent_ms ? NODE_WAIT_GIVE_UP
	                                      : NODE_WAIT_ON;
}

/* node_proxy_verdict for leader `to` now; *heard: kept by the caller,
 * starts at the send time. */
static int check(struct node_proxy *p, uint64_t to, int resend, uint64_t *heard)
{
	uint64_t leader = 0;
	if (resend)
		leader = p->ops.leader(p->ops.arg, NULL, 0);
	else
		*heard = p->ops.heard(p->ops.arg, to, *heard);
	return node_proxy_verdict(leader, to, resend, *heard, lora_now_ms(),
	                          p->cfg.silent_ms);
}

static int stopping(struct node_proxy *p)
{
	return p->ops.stopping(p->ops.arg);
}

/* The leader now: its id (this node's: NODE_PROXY_SELF's case) and its
 * HTTP address into addr ("" unknown). */
static uint64_t leader_now(struct node_proxy *p, char *addr)
{
	addr[0] = '\0';
	return p->ops.leader(p->ops.arg, addr, NODE_ADDR_BYTES_MAX);
}

static void ident_line(struct node_proxy *p, const struct node_http_ex *x,
                       char *out, size_t size)
{
	out[0] = '\0';
	if (p->ops.ident)
		p->ops.ident(p->ops.arg, x, out, size);
}

/* ---- connections
 * -------------------------------------------------------------- */

static void pfd_close(struct pfd c)
{
	if (c.fd < 0)
		return;
	node_tls_conn_free(c.tls);
	close(c.fd);
}

/* The TLS handshake with leader `to` on fd (blocking, bounded). */
static int dial_tls(struct node_proxy *p, int fd, uint64_t to,
                    struct node_tls_conn **out)
{
	char name[64];
	snprintf(name, sizeof name, NODE_TLS_PEER_NAME_FMT,
	         (unsigned long long)to);
	if (p->cfg.tls_ctx == NULL ||
	    node_tls_conn_new(p->cfg.tls_ctx, fd, name, out) != 0)
		return -1;
	uint64_t until = lora_now_ms() + p->cfg.handshake_ms;
	while (node_tls_handshake(*out) != 0) {
		uint64_t now = lora_now_ms();
		struct pollfd pf = {.fd = fd, .events = node_tls_wants(*out)};
		if (errno != EAGAIN || now >= until ||
		    poll(&pf, 1, (int)(until - now)) < 0) {
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

static int dial(struct node_proxy *p, const char *addr)
{
	struct addrinfo *ai;
	if (node_addr_resolve(addr, 0, &ai) != 0)
		return -1;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		uint32_t ms = p->cfg.connect_ms;
		struct timeval tv = {.tv_sec = ms / 1000,
		                     .tv_usec = ms % 1000 * 1000};
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

/* A new connection to leader `to` at addr (TLS when cfg.tls is on). */
static struct pfd dial_to(struct node_proxy *p, const char *addr, uint64_t to)
{
	struct pfd c = {.fd = dial(p, addr), .tls = NULL};
	if (c.fd >= 0 && p->cfg.tls && dial_tls(p, c.fd, to, &c.tls) != 0) {
		close(c.fd);
		c.fd = -1;
	}
	if (c.fd >= 0)
		atomic_fetch_add(&p->dials, 1);
	return c;
}

/* An idle pooled connection to addr, or fd -1. */
static struct pfd conn_pooled(struct node_proxy *p, const char *addr)
{
	uint64_t now = lora_now_ms();
	struct pfd c = {.fd = -1};
	pthread_mutex_lock(&p->pool_mu);
	for (int i = p->n_pool - 1; i >= 0 && c.fd < 0; i--) {
		if (strcmp(p->pool[i].addr, addr) ||
		    now - p->pool[i].idle_since_ms > p->cfg.idle_ms)
			continue;
		c = p->pool[i].c;
		p->pool[i] = p->pool[--p->n_pool];
	}
	pthread_mutex_unlock(&p->pool_mu);
	return c;
}

/* A pooled connection to addr (*reused set), or a new one; fd -1 if
 * none. */
static struct pfd conn_get(struct node_proxy *p, const char *addr, uint64_t to,
                           int *reused)
{
	struct pfd c = conn_pooled(p, addr);
	*reused = c.fd >= 0;
	return c.fd >= 0 ? c : dial_to(p, addr, to);
}

/* Pools c (closed when the pool is full); closes connections idle past
 * idle_ms. */
static void conn_put(struct node_proxy *p, const char *addr, struct pfd c)
{
	uint64_t now = lora_now_ms();
	enum { STALE_MAX = 64 }; /* closed per call; the rest next time */
	struct pfd stale[STALE_MAX];
	int ns = 0;
	pthread_mutex_lock(&p->pool_mu);
	for (int i = 0; i < p->n_pool && ns < STALE_MAX;)
		if (now - p->pool[i].idle_since_ms > p->cfg.idle_ms) {
			stale[ns++] = p->pool[i].c;
			p->pool[i] = p->pool[--p->n_pool];
		} else {
			i++;
		}
	if (p->n_pool < p->cfg.pool_max) {
		struct pconn *pc = &p->pool[p->n_pool++];
		pc->c = c;
		snprintf(pc->addr, sizeof pc->addr, "%s", addr);
		pc->idle_since_ms = now;
		c.fd = -1;
	}
	pthread_mutex_unlock(&p->pool_mu);
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
struct dial_job {
	struct node_proxy *p;
	uint64_t to;
	int slot;
};

static void dial_end(struct node_proxy *p, int slot)
{
	pthread_mutex_lock(&p->dial_mu);
	p->dialing[slot][0] = '\0';
	p->n_dials--;
	pthread_cond_broadcast(&p->dial_cond);
	pthread_mutex_unlock(&p->dial_mu);
}

static void *dial_main(void *arg)
{
	struct dial_job *d = arg;
	struct node_proxy *p = d->p;
	struct pfd c = dial_to(p, p->dialing[d->slot], d->to);
	if (c.fd >= 0)
		conn_put(p, p->dialing[d->slot], c);
	dial_end(p, d->slot);
	lora_free(d);
	return NULL;
}

/* Starts a dial of leader `to` at addr unless one runs already. */
static void dial_async(struct node_proxy *p, const char *addr, uint64_t to)
{
	int slot = -1;
	pthread_mutex_lock(&p->dial_mu);
	for (int i = 0; i < NODE_PROXY_DIALS_MAX; i++) {
		if (!strcmp(p->dialing[i], addr)) {
			slot = -1;
			break;
		}
		if (p->dialing[i][0] == '\0' && slot < 0)
			slot = i;
	}
	struct dial_job *d = slot >= 0 ? lora_calloc(1, sizeof *d) : NULL;
	if (d) {
		*d = (struct dial_job){p, to, slot};
		snprintf(p->dialing[slot], sizeof p->dialing[slot], "%s", addr);
		p->n_dials++;
	}
	pthread_mutex_unlock(&p->dial_mu);
	pthread_t t;
	if (d == NULL)
		return;
	if (node_thread_start(&t, dial_main, d, "proxy dial", NULL) == 0) {
		pthread_detach(t);
		return;
	}
	dial_end(p, slot);
	lora_free(d);
}

/* ---- one exchange on a worker
 * ------------------------------------------------- */

struct preply {
	int status;
	char ctype[128], bookmark[32], location[NODE_ADDR_BYTES_MAX + 16];
	char *body; /* lora_malloc'ed */
	size_t body_len;
	int close; /* Connection: close */
};

/* A wait for leader `to`'s answer (node_proxy_verdict's state). */
struct pwait {
	uint64_t to, heard;
	int resend;
	int hold; /* NODE_PROXY_HOLD_UNAVAILABLE: keep such an answer back */
	int why;  /* NODE_WAIT_* that ended it */
	int efd;  /* the request's pwaiter's, or -1 */
};

static void waiter_add(struct node_proxy *p, struct pwaiter *wt)
{
	wt->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wt->efd < 0)
		return;
	pthread_mutex_lock(&p->wait_mu);
	wt->next = p->waiters;
	p->waiters = wt;
	pthread_mutex_unlock(&p->wait_mu);
}

static void waiter_remove(struct node_proxy *p, struct pwaiter *wt)
{
	if (wt->efd < 0)
		return;
	pthread_mutex_lock(&p->wait_mu);
	for (struct pwaiter **pp = &p->waiters; *pp; pp = &(*pp)->next)
		if (*pp == wt) {
			*pp = wt->next;
			break;
		}
	pthread_mutex_unlock(&p->wait_mu);
	close(wt->efd);
}

void node_proxy_kick(struct node_proxy *p)
{
	if (p == NULL)
		return;
	atomic_fetch_add(&p->kicks, 1);
	uint64_t one = 1;
	pthread_mutex_lock(&p->wait_mu);
	for (struct pwaiter *wt = p->waiters; wt; wt = wt->next)
		if (write(wt->efd, &one, sizeof one) < 0 && errno != EAGAIN)
			LOG_WARN("http proxy: wake a waiting write: %s",
			         strerror(errno));
	pthread_mutex_unlock(&p->wait_mu);
}

/* When the wait for w's answer must look again without an event: its
 * deadline or, for a write that is not resent, the moment its leader
 * will have been silent for silent_ms (unless heard from meanwhile);
 * without an eventfd, retry_ms from now at the latest. */
static uint64_t wait_until(struct node_proxy *p, struct pwait *w,
                           uint64_t deadline_ms)
{
	uint64_t until = deadline_ms;
	if (!w->resend) {
		w->heard = p->ops.heard(p->ops.arg, w->to, w->heard);
		if (w->heard + p->cfg.silent_ms < until)
			until = w->heard + p->cfg.silent_ms;
	}
	uint64_t step = lora_now_ms() + p->cfg.retry_ms;
	return w->efd < 0 && step < until ? step : until;
}

/* One read on c now that poll said so: the count, 0 to wait again (TLS
 * needs more), or -1. */
static ssize_t recv_ready(struct pfd c, char *buf, size_t cap)
{
	if (c.tls) {
		ssize_t r = node_tls_recv(c.tls, buf, cap);
		if (r > 0)
			return r;
		return r < 0 && errno == EAGAIN ? 0 : -1;
	}
	ssize_t r = recv(c.fd, buf, cap, 0);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	return r > 0 ? r : -1;
}

/*
 * Reads up to cap bytes into buf (at least one), sleeping until the
 * answer, a kick (leader change, stop) or wait_until; gives up early when
 * the write should be sent elsewhere or its leader went silent (w->why),
 * at deadline_ms, or when the node stops. Returns the count, or -1.
 */
static ssize_t recv_some(struct node_proxy *p, struct pfd c, struct pwait *w,
                         char *buf, size_t cap, uint64_t deadline_ms)
{
	for (;;) {
		if (c.tls && node_tls_pending(c.tls)) { /* not on the socket */
			ssize_t r = recv_ready(c, buf, cap);
			if (r != 0)
				return r;
		}
		uint64_t until = wait_until(p, w, deadline_ms);
		uint64_t now = lora_now_ms();
		uint64_t ms = until > now ? until - now : 0;
		struct pollfd pf[2] = {
		    {.fd = c.fd,
		     .events = c.tls ? node_tls_wants(c.tls) : POLLIN},
		    {.fd = w->efd, .events = POLLIN}};
		int pr = poll(pf, w->efd >= 0 ? 2 : 1,
		              ms > INT_MAX ? INT_MAX : (int)ms);
		atomic_fetch_add(&p->wakeups, 1);
		if (pr < 0 && errno != EINTR)
			return -1;
		if (pr > 0 && pf[0].revents) {
			ssize_t r = recv_ready(c, buf, cap);
			if (r != 0)
				return r;
			continue;
		}
		uint64_t kicked;
		if (pr > 0 && (pf[1].revents & POLLIN) &&
		    read(w->efd, &kicked, sizeof kicked) < 0 && errno != EAGAIN)
			return -1;
		if (lora_now_ms() >= deadline_ms || stopping(p))
			return -1;
		w->why = check(p, w->to, w->resend, &w->heard);
		if (w->why != NODE_WAIT_ON)
			return -1;
	}
}

/* Parses the answer's head in head[0..hlen); fills r; -1 if malformed
 * or its body is longer than max. */
static int parse_head(char *head, struct preply *r, size_t *clen, size_t max)
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
	return have_len && *clen <= max ? 0 : -1;
}

/* Reads one answer from c; 0 or -1 (connection unusable). */
static int read_reply(struct node_proxy *p, struct pfd c, struct pwait *w,
                      struct preply *r, uint64_t deadline)
{
	char head[NODE_PROXY_HEAD_BYTES + 1];
	size_t hl = 0;
	char *end = NULL;
	while (end == NULL) {
		if (hl == NODE_PROXY_HEAD_BYTES)
			return -1;
		ssize_t got = recv_some(p, c, w, head + hl,
		                        NODE_PROXY_HEAD_BYTES - hl, deadline);
		if (got < 0)
			return -1;
		hl += (size_t)got;
		head[hl] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	size_t hbytes = (size_t)(end - head) + 4, clen;
	if (parse_head(head, r, &clen, p->cfg.reply_bytes_max) != 0)
		return -1;
	r->body = lora_malloc(clen ? clen : 1);
	if (r->body == NULL || hl - hbytes > clen)
		return -1;
	memcpy(r->body, head + hbytes, hl - hbytes);
	for (r->body_len = hl - hbytes; r->body_len < clen;) {
		ssize_t got = recv_some(p, c, w, r->body + r->body_len,
		                        clen - r->body_len, deadline);
		if (got < 0)
			return -1;
		r->body_len += (size_t)got;
	}
	return 0;
}

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

/* The time limit passed on with x: this node's, or the lower one x came
 * with (a client's header, or a node that passed it here). */
static uint64_t time_for(const struct node_proxy *p,
                         const struct node_http_ex *x)
{
	return lora_min_limit(p->cfg.time_ms, node_http_time_ms(x));
}

static int send_request(struct pfd c, const char *path, const char *body,
                        size_t len, int hops, const char *ident,
                        uint64_t time_ms, int now)
{
	int fd = c.fd;
	char head[NODE_PROXY_IDENT_BYTES + 512], tl[48] = "";
	if (time_ms)
		snprintf(tl, sizeof tl, "X-Lora-Time-Ms: %llu\r\n",
		         (unsigned long long)time_ms);
	int hl = snprintf(head, sizeof head,
	                  "POST %s HTTP/1.1\r\nHost: lora\r\n"
	                  "Content-Type: application/json\r\n%s%s"
	                  "X-Lora-Forwarded: %d\r\nContent-Length: %zu\r\n\r\n",
	                  path, ident, tl, hops, len);
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
	struct pollfd pf = {.fd = c.fd, .events = POLLIN};
	return poll(&pf, 1, 0) != 0;
}

/* A leader's 503 LORA_UNAVAILABLE: it did not execute the write. */
static int reply_unavailable(const struct preply *r)
{
	static const char code[] = "\"code\":\"LORA_UNAVAILABLE\"";
	return r->status == 503 && r->body &&
	       memmem(r->body, r->body_len, code, sizeof code - 1) != NULL;
}

/* Relays r into x. */
static void relay(struct node_http_ex *x, const struct preply *r)
{
	node_http_reply(
	    x, r->status, r->ctype[0] ? r->ctype : "application/json", r->body,
	    r->body_len, r->bookmark, r->location[0] ? r->location : NULL);
}

/* Sends the request to w->to at addr and relays its answer: 0 answered,
 * -1 not sent (nothing executed), LORA_EUNKNOWN_OUTCOME sent, no answer
 * (w->why NODE_WAIT_RESEND: send it to the new leader), NODE_PROXY_HELD
 * answered LORA_UNAVAILABLE with w->hold (not relayed). */
static int exchange(struct node_proxy *p, struct node_http_ex *x,
                    struct pwait *w, const char *addr, const char *path,
                    const char *body, size_t len, uint64_t deadline)
{
	int reused;
	struct pfd fd = conn_get(p, addr, w->to, &reused);
	if (fd.fd >= 0 && reused && conn_dead(fd)) {
		pfd_close(fd);
		reused = 0;
		fd = dial_to(p, addr, w->to);
	}
	if (fd.fd < 0)
		return -1;
	char ident[NODE_PROXY_IDENT_BYTES]; /* who asks */
	ident_line(p, x, ident, sizeof ident);
	if (send_request(fd, path, body, len, node_http_forwarded(x) + 1, ident,
	                 time_for(p, x), 0) != 0) {
		pfd_close(fd); /* an incomplete request is never executed */
		return -1;
	}
	atomic_fetch_add(&p->sent, 1);
	if (reused)
		atomic_fetch_add(&p->reused, 1);
	struct preply r = {0};
	w->heard = lora_now_ms();
	w->why = NODE_WAIT_GIVE_UP;
	int rc = read_reply(p, fd, w, &r, deadline);
	int held = rc == 0 && w->hold && reply_unavailable(&r);
	if (rc == 0 && !held)
		relay(x, &r);
	if (rc == 0 && !r.close)
		conn_put(p, addr, fd);
	else
		pfd_close(fd);
	lora_free(r.body);
	if (held)
		return NODE_PROXY_HELD;
	return rc == 0 ? 0 : LORA_EUNKNOWN_OUTCOME;
}

int node_proxy_write(struct node_proxy *p, struct node_http_ex *x,
                     const char *path, const char *body, size_t len, int flags,
                     uint64_t wait_ms)
{
	int resend = (flags & NODE_PROXY_RESEND) != 0;
	uint64_t end = lora_now_ms() + wait_ms;
	uint64_t deadline = lora_now_ms() + p->cfg.send_ms;
	int sent = 0, rc = -1;
	struct pwaiter wt;
	waiter_add(p, &wt);
	while (lora_now_ms() < deadline && !stopping(p)) {
		uint64_t seq = p->ops.leader_seq(p->ops.arg);
		char addr[NODE_ADDR_BYTES_MAX];
		uint64_t leader = leader_now(p, addr);
		if (leader == p->cfg.self_id) {
			rc = NODE_PROXY_SELF;
			goto out;
		}
		rc = -1;
		struct pwait w = {
		    .to = leader,
		    .resend = resend,
		    .efd = wt.efd,
		    /* after an attempt in doubt, a leader's UNAVAILABLE
		     * speaks for its own attempt only: never relayed */
		    .hold = sent || (flags & NODE_PROXY_HOLD_UNAVAILABLE)};
		if (leader != 0 && addr[0] != '\0')
			rc = exchange(p, x, &w, addr, path, body, len, end);
		if (rc == 0 || (rc == NODE_PROXY_HELD && !sent))
			goto out;
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
			goto out;
		}
		/* woken by a leader change, else tried again after the pause */
		p->ops.leader_wait(p->ops.arg, seq,
		                   lora_now_ms() + p->cfg.retry_ms);
	}
	if (sent) {
		rc = LORA_EUNKNOWN_OUTCOME;
		node_http_reply_error(
		    x, rc,
		    "no leader answered in time: the write may have "
		    "committed; retry with the same requestId");
	} else {
		rc = LORA_EUNAVAILABLE;
		node_http_reply_error(
		    x, rc, "cannot reach the leader: not executed, retry");
	}
out:
	waiter_remove(p, &wt);
	return rc;
}

/* ---- without a waiting thread (HTTP I/O thread)
 * ------------------------------- */

/*
 * A connection to a leader owned by the HTTP I/O thread. It is registered
 * with epoll once, level-triggered, for its whole life, and stays between
 * the requests it carries (idle): a passed-on write then costs no
 * epoll_ctl. Only the I/O thread touches upconns (and node_proxy_drop
 * after it stopped). A closed one is only marked dead: an event of the
 * same epoll batch may still name it; node_proxy_tick frees it.
 *
 * It carries one request at a time: one write, or a batch of them
 * (batch.h). Each write it carries has a slot; a write that stops
 * waiting for this answer (sent again to a new leader, or answered
 * "unknown outcome" as its leader went silent) leaves its slot empty,
 * and once every slot is empty the answer is not waited for.
 */
struct upconn {
	struct node_http_watch w;  /* first; w.fd: the connection */
	struct node_tls_conn *tls; /* TLS on: its TLS (owned) */
	struct node_proxy *p;
	char addr[NODE_ADDR_BYTES_MAX];
	uint64_t leader; /* whom the request in flight went to */
	uint64_t idle_since_ms;
	int batch;      /* the request in flight is a batch */
	size_t n_slots; /* writes in the request in flight; 0: idle */
	size_t n_live;  /* slots still waiting for it */
	struct pjob *slots[NODE_BATCH_MAX];
	char *buf; /* the answer so far (lora_malloc) */
	size_t len, cap;
	int dead;
	struct upconn *next; /* p->upconns */
};

/* A passed-on write the HTTP I/O thread answers. */
struct pjob {
	struct upconn *uc; /* the connection its answer comes on, or NULL */
	size_t slot;       /* its place there */
	struct node_proxy *p;
	struct node_http_ex *x;
	uint64_t to;
	const char *api; /* metrics label */
	uint64_t t0_ns, deadline_ms;
	uint64_t heard; /* node_proxy_verdict's state */
	int resend;     /* carries a requestId: follows the leader */
	/* sent again after an attempt in doubt: a 503 LORA_UNAVAILABLE
	 * then speaks for the last attempt only and is not relayed (proxy.h);
	 * the write is sent again from retry_at_ms on */
	int resent;
	uint64_t retry_at_ms;
	int queued;        /* in p->outq: not sent, or left untaken (not run) */
	int alone;         /* sent on its own (a leader left it untaken) */
	const char *path;  /* borrowed: the route's */
	struct pjob *next; /* p->jobs (jobs_mu) */
	struct pjob *qnext; /* p->outq */
};

static void upconn_close(struct upconn *uc)
{
	if (!uc->dead) {
		node_tls_conn_free(uc->tls);
		uc->tls = NULL;
		close(uc->w.fd); /* leaves the epoll set with it */
	}
	uc->dead = 1;
	uc->n_slots = uc->n_live = 0;
}

/* Frees dead upconns (all of them: `all`) and closes idle ones unused for
 * idle_ms. */
static void upconns_sweep(struct node_proxy *p, int all)
{
	uint64_t now = lora_now_ms();
	pthread_mutex_lock(&p->jobs_mu);
	for (struct upconn **pp = &p->upconns; *pp;) {
		struct upconn *uc = *pp;
		if (uc->n_slots == 0 &&
		    (all || now - uc->idle_since_ms > p->cfg.idle_ms))
			upconn_close(uc);
		if (!uc->dead) {
			pp = &uc->next;
			continue;
		}
		*pp = uc->next;
		lora_free(uc->buf);
		lora_free(uc);
	}
	pthread_mutex_unlock(&p->jobs_mu);
}

static void upconn_readable(struct upconn *uc);

static void upconn_event(struct node_http_watch *w)
{
	struct upconn *uc = (struct upconn *)w;
	if (uc->dead)
		return;
	if (uc->n_slots > 0)
		upconn_readable(uc);
	else
		upconn_close(uc); /* idle: closed by the leader, or garbage */
}

/* An idle I/O-thread connection to addr, or NULL. */
static struct upconn *upconn_idle(struct node_proxy *p, const char *addr)
{
	uint64_t now = lora_now_ms();
	struct upconn *found = NULL;
	pthread_mutex_lock(&p->jobs_mu);
	for (struct upconn *uc = p->upconns; uc && !found; uc = uc->next)
		if (!uc->dead && uc->n_slots == 0 &&
		    now - uc->idle_since_ms <= p->cfg.idle_ms &&
		    strcmp(uc->addr, addr) == 0)
			found = uc;
	pthread_mutex_unlock(&p->jobs_mu);
	return found;
}

/* Requests in flight to addr on the I/O thread's connections. */
static int upconns_busy(struct node_proxy *p, const char *addr)
{
	int busy = 0;
	pthread_mutex_lock(&p->jobs_mu);
	for (struct upconn *uc = p->upconns; uc; uc = uc->next)
		busy +=
		    !uc->dead && uc->n_live > 0 && strcmp(uc->addr, addr) == 0;
	pthread_mutex_unlock(&p->jobs_mu);
	return busy;
}

/* An idle connection to addr: one of the I/O thread's, or one taken from
 * the shared pool and registered; NULL when there is none. */
static struct upconn *upconn_take(struct node_proxy *p, struct node_http_ex *x,
                                  const char *addr, uint64_t to, int may_dial)
{
	struct upconn *uc = upconn_idle(p, addr);
	if (uc)
		return uc;
	struct pfd c = conn_pooled(p, addr);
	if (c.fd < 0 && may_dial) /* a resend: pooled for the next tick */
		dial_async(p, addr, to);
	if (c.fd < 0)
		return NULL;
	if ((uc = lora_calloc(1, sizeof *uc)) == NULL) {
		pfd_close(c);
		return NULL;
	}
	uc->tls = c.tls;
	uc->p = p;
	snprintf(uc->addr, sizeof uc->addr, "%s", addr);
	node_http_watch_init(&uc->w, x, c.fd, upconn_event);
	if (node_http_watch_add(&uc->w) != 0) {
		pfd_close(c);
		lora_free(uc);
		return NULL;
	}
	pthread_mutex_lock(&p->jobs_mu);
	uc->next = p->upconns;
	p->upconns = uc;
	pthread_mutex_unlock(&p->jobs_mu);
	return uc;
}

/* j stops waiting for its connection's answer; once no write waits for
 * it, the connection is closed (the answer is not read). */
static void job_detach(struct pjob *j)
{
	struct upconn *uc = j->uc;
	if (uc == NULL)
		return;
	uc->slots[j->slot] = NULL;
	j->uc = NULL;
	if (--uc->n_live == 0)
		upconn_close(uc);
}

/* The answer on uc was read whole: it is idle again (keep), or closed. */
static void upconn_release(struct upconn *uc, int keep)
{
	uc->n_slots = uc->n_live = 0;
	uc->len = 0;
	if (uc->cap > 2 * NODE_PROXY_READ_BYTES) { /* a large answer's room */
		lora_free(uc->buf);
		uc->buf = NULL;
		uc->cap = 0;
	}
	uc->idle_since_ms = lora_now_ms();
	if (!keep)
		upconn_close(uc);
}

static void job_unlink(struct pjob *j)
{
	struct node_proxy *p = j->p;
	pthread_mutex_lock(&p->jobs_mu);
	for (struct pjob **pp = &p->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	pthread_mutex_unlock(&p->jobs_mu);
}

/* x was answered (j holds no connection): x goes on. */
static void job_end(struct pjob *j, int ok)
{
	job_unlink(j);
	struct node_proxy *p = j->p;
	if (p->ops.answered)
		p->ops.answered(p->ops.arg, j->api, ok,
		                lora_now_ns() - j->t0_ns);
	struct node_http_ex *x = j->x;
	lora_free(j);
	node_http_async_done(x);
}

static void job_lost(struct pjob *j, const char *why)
{
	char msg[LORA_ERRMSG_BYTES];
	job_detach(j);
	if (j->queued) { /* never sent: nothing ran */
		snprintf(msg, sizeof msg, "not executed (%s): retry", why);
		node_http_reply_error(j->x, LORA_EUNAVAILABLE, msg);
	} else {
		snprintf(msg, sizeof msg,
		         "the leader did not answer (%s): the write may have "
		         "committed; retry with the same requestId",
		         why);
		node_http_reply_error(j->x, LORA_EUNKNOWN_OUTCOME, msg);
	}
	job_end(j, 0);
}

/* 1: a whole answer is in uc->buf (r filled, body borrowed); 0: more to
 * come; -1: not an answer we can relay. */
static int upconn_parse(struct upconn *uc, struct preply *r)
{
	char *end =
	    uc->len >= 4 ? memmem(uc->buf, uc->len, "\r\n\r\n", 4) : NULL;
	if (end == NULL)
		return uc->len > NODE_PROXY_HEAD_BYTES ? -1 : 0;
	size_t hb = (size_t)(end - uc->buf) + 4, clen;
	char head[NODE_PROXY_HEAD_BYTES + 1];
	if (hb > NODE_PROXY_HEAD_BYTES)
		return -1;
	memcpy(head, uc->buf, hb);
	head[hb] = '\0';
	if (parse_head(head, r, &clen, uc->p->cfg.reply_bytes_max) != 0 ||
	    uc->len > hb + clen)
		return -1;
	if (uc->len < hb + clen)
		return 0;
	r->body = uc->buf + hb;
	r->body_len = clen;
	return 1;
}

/* Room for NODE_PROXY_READ_BYTES more in uc->buf: 0, or -1 past the
 * answer's limit (or out of memory). */
static int upconn_room(struct upconn *uc)
{
	if (uc->cap - uc->len >= NODE_PROXY_READ_BYTES)
		return 0;
	size_t cap = uc->cap ? 2 * uc->cap : NODE_PROXY_READ_BYTES;
	size_t most = uc->p->cfg.reply_bytes_max + NODE_PROXY_HEAD_BYTES +
	              NODE_PROXY_READ_BYTES;
	if (cap > most)
		cap = most; /* an answer of exactly the limit still fits */
	if (cap <= uc->cap)
		return -1;
	char *nb = lora_realloc(uc->buf, cap);
	if (nb == NULL)
		return -1;
	uc->buf = nb;
	uc->cap = cap;
	return 0;
}

/* Reads once what arrived (the connection is level-triggered: more
 * comes as another event; TLS is read until it has nothing left, since
 * it may hold bytes the socket no longer shows): 0, or -1 on a closed
 * (*eof) or broken connection. */
static int upconn_read(struct upconn *uc, int *eof)
{
	for (;;) {
		if (upconn_room(uc) != 0)
			return -1;
		ssize_t r;
		do
			r = uc->tls ? node_tls_recv(uc->tls, uc->buf + uc->len,
			                            uc->cap - uc->len)
			            : recv(uc->w.fd, uc->buf + uc->len,
			                   uc->cap - uc->len, MSG_DONTWAIT);
		while (r < 0 && errno == EINTR);
		if (r > 0) {
			uc->len += (size_t)r;
			if (uc->tls && node_tls_pending(uc->tls))
				continue;
			return 0;
		}
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		*eof = r == 0;
		return -1;
	}
}

/* A resent job's 503 LORA_UNAVAILABLE: not relayed (an earlier attempt
 * may have committed); the tick sends the write again after retry_ms,
 * and its deadline answers LORA_UNKNOWN_OUTCOME. */
static void job_hold(struct pjob *j)
{
	j->retry_at_ms = lora_now_ms() + j->p->cfg.retry_ms;
}

/* j's own answer r (detached from its connection): relayed, or held. */
static void job_answer(struct pjob *j, const struct preply *r)
{
	if (j->resent && reply_unavailable(r)) {
		job_hold(j);
		return;
	}
	relay(j->x, r);
	job_end(j, r->status == 200);
}

static int job_send(struct pjob *j, int may_dial);
static void job_rerun(struct pjob *j);

/* A write a leader left untaken (nothing of it ran): back at the head of
 * the queue, to be sent on its own (node_proxy_flush). */
static void job_alone(struct pjob *j)
{
	struct node_proxy *p = j->p;
	j->alone = 1;
	j->queued = 1;
	j->qnext = p->outq;
	p->outq = j;
	if (p->outq_tail == NULL)
		p->outq_tail = j;
}

/* Statuses of a batch refused whole that say the moment or the first
 * write was wrong, not that this leader takes no batches: 401 and 403
 * (the batch goes with its first write's identity line: a user dropped
 * there, or a client's own credentials while this node has no proof of
 * the cluster secret yet), 408, 429 and 5xx (busy, stopping, out of
 * memory). */
static int batch_refusal_transient(int status)
{
	return status == 401 || status == 403 || status == 408 ||
	       status == 429 || status >= 500;
}

/* The longest wait before batches go to a leader that refused the last
 * one for the moment. */
#define NODE_PROXY_NOBATCH_MAX_MS 10000

/* Whether writes to leader go alone for now. */
static int batches_off(const struct node_proxy *p, uint64_t leader)
{
	return leader == p->nobatch_leader &&
	       (p->nobatch_until_ms == 0 ||
	        lora_now_ms() < p->nobatch_until_ms);
}

/* A batch to leader refused whole: for good, or (transient) for a wait
 * that doubles from retry_ms up to NODE_PROXY_NOBATCH_MAX_MS with each
 * refusal in a row, so a leader that keeps refusing (overloaded, or a
 * secret that does not match) gets one wasted batch per wait, not one per
 * burst of writes. Batches that were in flight together count once: a
 * refusal during the wait leaves it as it is, and so does a transient
 * refusal after a lasting one. */
static void batches_refused(struct node_proxy *p, uint64_t leader,
                            int transient)
{
	atomic_fetch_add(&p->batch_refused, 1);
	uint64_t until = 0; /* for good */
	if (transient) {
		if (batches_off(p, leader))
			return;
		if (leader != p->nobatch_leader) /* a new one starts afresh */
			p->nobatch_backoff_ms = 0;
		uint64_t w = p->nobatch_backoff_ms ? 2 * p->nobatch_backoff_ms
		                                   : p->cfg.retry_ms;
		p->nobatch_backoff_ms = w < NODE_PROXY_NOBATCH_MAX_MS
		                            ? w
		                            : NODE_PROXY_NOBATCH_MAX_MS;
		until = lora_now_ms() + p->nobatch_backoff_ms;
	}
	pthread_mutex_lock(&p->off_mu);
	p->nobatch_leader = leader;
	p->nobatch_until_ms = until;
	pthread_mutex_unlock(&p->off_mu);
}

/* A batch's answer r on uc: each write's own answer relayed (or held,
 * or sent alone when not taken). A batch refused whole (any status but
 * 200: nothing of it ran, as an older leader without NODE_BATCH_PATH
 * answers 404) sends each write alone, and that leader gets no more
 * batches: for good, or for a while when the refusal was transient
 * (batches_refused). */
static void upconn_batch_answered(struct upconn *uc, const struct preply *r,
                                  int keep)
{
	struct node_batch_ans ans[NODE_BATCH_MAX];
	size_t n = 0;
	int whole = r->status == 200;
	int ok = whole && !strcmp(r->ctype, NODE_BATCH_CTYPE) &&
	         node_batch_answers(r->body, r->body_len, ans, NODE_BATCH_MAX,
	                            &n) == 0 &&
	         n == uc->n_slots;
	struct pjob *alone[NODE_BATCH_MAX];
	size_t n_alone = 0;
	for (size_t i = 0; i < uc->n_slots; i++) {
		struct pjob *j = uc->slots[i];
		if (j == NULL)
			continue;
		uc->slots[i] = NULL;
		j->uc = NULL;
		if (!whole || (ok && ans[i].status == 0)) {
			alone[n_alone++] = j;
			continue;
		}
		if (!ok) {
			job_lost(j, "malformed answer");
			continue;
		}
		struct preply one = {.status = ans[i].status,
		                     .body = (char *)ans[i].body,
		                     .body_len = ans[i].body_len};
		snprintf(one.bookmark, sizeof one.bookmark, "%.*s",
		         (int)ans[i].bookmark_len,
		         ans[i].bookmark ? ans[i].bookmark : "");
		job_answer(j, &one);
	}
	if (!whole)
		batches_refused(uc->p, uc->leader,
		                batch_refusal_transient(r->status));
	else if (ok)
		uc->p->nobatch_backoff_ms = 0;
	upconn_release(uc, keep && (ok || !whole));
	for (size_t i = n_alone; i-- > 0;) /* each to the head: in order */
		job_alone(alone[i]);
}

/* The answer on uc is whole: its writes are answered. */
static void upconn_answered(struct upconn *uc, struct preply *r, int keep)
{
	if (uc->batch) {
		upconn_batch_answered(uc, r, keep);
		return;
	}
	struct pjob *j = uc->slots[0];
	uc->slots[0] = NULL;
	if (j) {
		j->uc = NULL;
		job_answer(j, r); /* before the release: r is in uc->buf */
	}
	upconn_release(uc, keep);
}

/* Every write still on uc is lost with it. */
static void upconn_fail(struct upconn *uc, const char *why)
{
	for (size_t i = 0; i < uc->n_slots; i++)
		if (uc->slots[i] != NULL)
			job_lost(uc->slots[i], why); /* the last closes uc */
	upconn_close(uc);
}

static void upconn_readable(struct upconn *uc)
{
	struct node_proxy *p = uc->p;
	int eof = 0;
	int rd = upconn_read(uc, &eof);
	struct preply r = {0};
	int pr = upconn_parse(uc, &r);
	if (pr == 1)
		upconn_answered(uc, &r, rd == 0 && !r.close);
	else if (pr < 0)
		upconn_fail(uc, "malformed answer");
	else if (rd != 0)
		upconn_fail(uc,
		            eof ? "connection closed" : "connection broken");
	if (pr != 0 || rd != 0)
		node_proxy_flush(p); /* a request fewer in flight */
}

/* Puts n writes (j[0..n)) on uc as their request went out. */
static void upconn_carry(struct upconn *uc, struct pjob **j, size_t n,
                         uint64_t leader, int batch)
{
	uc->batch = batch;
	uc->leader = leader;
	uc->n_slots = uc->n_live = n;
	uc->len = 0;
	for (size_t i = 0; i < n; i++) {
		uc->slots[i] = j[i];
		j[i]->uc = uc;
		j[i]->slot = i;
		j[i]->to = leader;
		j[i]->heard = lora_now_ms();
		j[i]->queued = 0;
	}
}

/* Writes j's request to the current leader on a connection the I/O thread
 * watches (for a resend without one, a dial starts on its own thread:
 * dial_async); 0, or -1 when it was not written (nothing executed). */
static int job_send(struct pjob *j, int may_dial)
{
	struct node_proxy *p = j->p;
	char addr[NODE_ADDR_BYTES_MAX];
	uint64_t leader = leader_now(p, addr);
	if (leader == 0 || leader == p->cfg.self_id || addr[0] == '\0')
		return -1;
	struct upconn *uc = upconn_take(p, j->x, addr, leader, may_dial);
	if (uc == NULL)
		return -1;
	const char *body;
	size_t len;
	node_http_body(j->x, &body, &len);
	char ident[NODE_PROXY_IDENT_BYTES]; /* who asks */
	ident_line(p, j->x, ident, sizeof ident);
	struct pfd c = {.fd = uc->w.fd, .tls = uc->tls};
	if (conn_dead(c) ||
	    send_request(c, j->path, body, len, node_http_forwarded(j->x) + 1,
	                 ident, time_for(p, j->x), 1) != 0) {
		upconn_close(uc); /* an incomplete request is never executed */
		return -1;
	}
	atomic_fetch_add(&p->sent, 1);
	atomic_fetch_add(&p->reused, 1);
	upconn_carry(uc, &j, 1, leader, 0);
	return 0;
}

/* An identity line (ident_line's) as the batch carries it: the value of
 * Authorization or of X-Lora-Identity. */
static void batch_ident(const char *line, struct node_batch_req *q)
{
	static const char az[] = "Authorization: ", id[] = "X-Lora-Identity: ";
	size_t len = strcspn(line, "\r\n");
	if (!strncmp(line, az, sizeof az - 1)) {
		q->authz = line + sizeof az - 1;
		q->authz_len = len - (sizeof az - 1);
	} else if (!strncmp(line, id, sizeof id - 1)) {
		q->ident = line + sizeof id - 1;
		q->ident_len = len - (sizeof id - 1);
	}
}

/* Writes n queued writes to leader at addr as one batch; 0, or -1 when
 * it was not written (nothing executed). */
static int batch_send(struct node_proxy *p, struct pjob **j, size_t n,
                      const char *addr, uint64_t leader)
{
	struct upconn *uc = upconn_take(p, j[0]->x, addr, leader, 1);
	if (uc == NULL)
		return -1;
	struct lora_buf body = {0};
	char first[NODE_PROXY_IDENT_BYTES], ident[NODE_PROXY_IDENT_BYTES];
	node_batch_put_head(&body, n);
	for (size_t i = 0; i < n; i++) {
		struct node_batch_req q = {
		    .hops = node_http_forwarded(j[i]->x) + 1};
		ident_line(p, j[i]->x, i ? ident : first, sizeof ident);
		batch_ident(i ? ident : first, &q);
		node_http_body(j[i]->x, &q.body, &q.body_len);
		node_batch_put_req(&body, &q);
	}
	struct pfd c = {.fd = uc->w.fd, .tls = uc->tls};
	int rc = -1;
	if (!lora_buf_error(&body) && !conn_dead(c))
		/* the node's own limit: the batch header holds for every
		 * write of it, and a write with a lower limit of its own is
		 * never batched (h_query_fast) */
		rc = send_request(c, NODE_BATCH_PATH, body.data, body.len, 1,
		                  first, p->cfg.time_ms, 1);
	if (body.data) /* it holds every write's credentials */
		sodium_memzero(body.data, body.len);
	lora_buf_free(&body);
	if (rc != 0) {
		upconn_close(uc); /* an incomplete request is never executed */
		return -1;
	}
	atomic_fetch_add(&p->sent, 1);
	atomic_fetch_add(&p->reused, 1);
	atomic_fetch_add(&p->batches, 1);
	atomic_fetch_add(&p->batched, n);
	upconn_carry(uc, j, n, leader, 1);
	return 0;
}

/* The first queued write, taken out of p->outq. */
static struct pjob *outq_pop(struct node_proxy *p)
{
	struct pjob *j = p->outq;
	if (j) {
		p->outq = j->qnext;
		if (p->outq == NULL)
			p->outq_tail = NULL;
		j->qnext = NULL;
	}
	return j;
}

/* The request bytes of j in a batch: its body and its identity line. */
static size_t batch_bytes(const struct pjob *j)
{
	const char *b;
	size_t len;
	node_http_body(j->x, &b, &len);
	return len + NODE_PROXY_IDENT_BYTES / 16 + 32;
}

void node_proxy_flush(struct node_proxy *p)
{
	if (p == NULL || p->outq == NULL || stopping(p))
		return; /* stopping: the tick answers them "not executed" */
	char addr[NODE_ADDR_BYTES_MAX];
	uint64_t leader = leader_now(p, addr);
	if (leader == 0 || leader == p->cfg.self_id || addr[0] == '\0') {
		struct pjob *j;
		while ((j = outq_pop(p)) != NULL)
			job_rerun(j); /* a worker waits for one, or runs it */
		return;
	}
	/* a leader that refused a batch: each write alone, at once, as
	 * without batches */
	int alone = batches_off(p, leader);
	int busy = upconns_busy(p, addr);
	while (p->outq && (alone || busy < p->cfg.batch_inflight)) {
		struct pjob *j[NODE_BATCH_MAX];
		size_t n = 0, bytes = 0;
		while (p->outq && n < (size_t)p->cfg.batch_max) {
			struct pjob *q = p->outq;
			if (n > 0 &&
			    (alone || q->alone ||
			     bytes + batch_bytes(q) > NODE_PROXY_BATCH_BYTES))
				break;
			bytes += batch_bytes(q);
			j[n++] = outq_pop(p);
			if (alone || q->alone)
				break;
		}
		/* without an idle connection a dial starts (dial_async), for
		 * the writes after these */
		int rc = n == 1 ? job_send(j[0], 1)
		                : batch_send(p, j, n, addr, leader);
		if (rc != 0)
			for (size_t i = 0; i < n; i++)
				job_rerun(j[i]); /* not run: a worker's */
		busy++;
	}
}

int node_proxy_start(struct node_proxy *p, struct node_http_ex *x,
                     const char *path, const char *api, int flags,
                     uint64_t wait_ms)
{
	struct pjob *j = lora_calloc(1, sizeof *j);
	if (j == NULL)
		return -1;
	j->p = p;
	j->x = x;
	j->path = path;
	j->resend = (flags & NODE_PROXY_RESEND) != 0;
	char addr[NODE_ADDR_BYTES_MAX];
	uint64_t leader = leader_now(p, addr);
	if ((flags & NODE_PROXY_BATCH) && p->cfg.batch_max > 1 &&
	    !batches_off(p, leader)) {
		if (leader == 0 || leader == p->cfg.self_id ||
		    addr[0] == '\0') {
			lora_free(j);
			return -1;
		}
		j->queued = 1; /* node_proxy_flush sends it */
		if (p->outq_tail)
			p->outq_tail->qnext = j;
		else
			p->outq = j;
		p->outq_tail = j;
	} else if (job_send(j, 0) != 0) {
		lora_free(j);
		return -1;
	}
	j->api = api;
	j->t0_ns = lora_now_ns();
	j->deadline_ms = lora_now_ms() + wait_ms;
	node_http_async(x);
	pthread_mutex_lock(&p->jobs_mu);
	j->next = p->jobs;
	p->jobs = j;
	pthread_mutex_unlock(&p->jobs_mu);
	return 0;
}

/* This node became the leader while j waited, or j could not be sent
 * from here (never sent, or left untaken): its route runs again on a
 * worker (a requestId write: dedupe applies it once). */
static void job_rerun(struct pjob *j)
{
	job_detach(j);
	job_unlink(j);
	struct node_http_ex *x = j->x;
	lora_free(j);
	node_http_async_rerun(x, NULL, NULL);
}

/* What the tick does with a job (node_proxy_tick). */
enum { JOB_WAIT, JOB_RESEND, JOB_SILENT, JOB_LATE, JOB_STOP };

static int job_verdict(struct pjob *j, uint64_t now, int stop)
{
	if (stop)
		return JOB_STOP;
	if (now >= j->deadline_ms)
		return JOB_LATE;
	if (j->queued) /* node_proxy_flush sends it */
		return JOB_WAIT;
	if (j->uc == NULL) /* waiting for a leader to take it */
		return now >= j->retry_at_ms ? JOB_RESEND : JOB_WAIT;
	int v = check(j->p, j->to, j->resend, &j->heard);
	return v == NODE_WAIT_RESEND    ? JOB_RESEND
	       : v == NODE_WAIT_GIVE_UP ? JOB_SILENT
	                                : JOB_WAIT;
}

/* Jobs that need the tick: *why per job (job_verdict). */
static size_t jobs_due(struct node_proxy *p, struct pjob **out, int *why,
                       size_t max)
{
	uint64_t now = lora_now_ms();
	int stop = stopping(p);
	size_t k = 0;
	pthread_mutex_lock(&p->jobs_mu);
	for (struct pjob *j = p->jobs; j && k < max; j = j->next) {
		int v = job_verdict(j, now, stop);
		if (v != JOB_WAIT) {
			out[k] = j;
			why[k++] = v;
		}
	}
	pthread_mutex_unlock(&p->jobs_mu);
	return k;
}

/* Takes a queued job out of p->outq (it is answered or run elsewhere). */
static void outq_remove(struct node_proxy *p, struct pjob *j)
{
	struct pjob *prev = NULL;
	for (struct pjob *q = p->outq; q; prev = q, q = q->qnext)
		if (q == j) {
			if (prev)
				prev->qnext = q->qnext;
			else
				p->outq = q->qnext;
			if (p->outq_tail == q)
				p->outq_tail = prev;
			q->qnext = NULL;
			return;
		}
}

void node_proxy_tick(struct node_proxy *p)
{
	if (p == NULL)
		return;
	enum { DUE_BATCH = 64 };
	struct pjob *due[DUE_BATCH];
	int why[DUE_BATCH];
	size_t k = jobs_due(p, due, why, DUE_BATCH);
	for (size_t i = 0; i < k; i++) {
		struct pjob *j = due[i];
		if (j->queued)
			outq_remove(p, j);
		if (why[i] == JOB_RESEND) {
			if (j->uc != NULL)
				j->resent = 1; /* the attempt is in doubt */
			/* the old leader's answer, if any, is not waited for */
			job_detach(j);
			if (p->ops.leader(p->ops.arg, NULL, 0) ==
			    p->cfg.self_id) {
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
	upconns_sweep(p, 0);
	node_proxy_flush(p);
}

void node_proxy_drop(struct node_proxy *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->jobs_mu);
	while (p->jobs) {
		struct pjob *j = p->jobs;
		p->jobs = j->next;
		if (j->uc != NULL)
			j->uc->slots[j->slot] = NULL;
		lora_free(j);
	}
	p->outq = p->outq_tail = NULL;
	for (struct upconn *uc = p->upconns; uc; uc = uc->next)
		uc->n_slots = uc->n_live = 0;
	pthread_mutex_unlock(&p->jobs_mu);
	upconns_sweep(p, 1);
}

/* ---- lifecycle
 * ---------------------------------------------------------------- */

static void cfg_defaults(struct node_proxy_cfg *c)
{
	c->send_ms = c->send_ms ? c->send_ms : NODE_PROXY_SEND_MS;
	c->connect_ms = c->connect_ms ? c->connect_ms : NODE_PROXY_CONNECT_MS;
	c->handshake_ms =
	    c->handshake_ms ? c->handshake_ms : NODE_PROXY_HANDSHAKE_MS;
	c->retry_ms = c->retry_ms ? c->retry_ms : NODE_PROXY_RETRY_MS;
	c->idle_ms = c->idle_ms ? c->idle_ms : NODE_PROXY_IDLE_MS;
	if (c->pool_max <= 0 || c->pool_max > NODE_PROXY_POOL_MAX)
		c->pool_max = NODE_PROXY_POOL_MAX;
	if (c->batch_max <= 0 || c->batch_max > NODE_BATCH_MAX)
		c->batch_max = NODE_BATCH_MAX;
	if (c->batch_inflight <= 0)
		c->batch_inflight = NODE_PROXY_BATCH_INFLIGHT;
	if (c->reply_bytes_max == 0 ||
	    c->reply_bytes_max > NODE_PROXY_REPLY_BYTES_MAX)
		c->reply_bytes_max = NODE_PROXY_REPLY_BYTES_MAX;
}

int node_proxy_new(const struct node_proxy_cfg *cfg,
                   const struct node_proxy_ops *ops, struct node_proxy **out)
{
	LORA_ASSERT(ops->leader && ops->leader_seq && ops->leader_wait &&
	            ops->heard && ops->stopping);
	*out = NULL;
	struct node_proxy *p = lora_calloc(1, sizeof *p);
	if (p == NULL)
		return LORA_ENOMEM;
	p->cfg = *cfg;
	p->ops = *ops;
	cfg_defaults(&p->cfg);
	p->pool = lora_calloc((size_t)p->cfg.pool_max, sizeof *p->pool);
	if (p->pool == NULL) {
		lora_free(p);
		return LORA_ENOMEM;
	}
	if (pthread_cond_init(&p->dial_cond, NULL) != 0) {
		lora_free(p->pool);
		lora_free(p);
		return LORA_EINTERNAL;
	}
	pthread_mutex_init(&p->pool_mu, NULL);
	pthread_mutex_init(&p->off_mu, NULL);
	pthread_mutex_init(&p->dial_mu, NULL);
	pthread_mutex_init(&p->jobs_mu, NULL);
	pthread_mutex_init(&p->wait_mu, NULL);
	*out = p;
	return 0;
}

void node_proxy_free(struct node_proxy *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->dial_mu); /* dials end within their bounds */
	while (p->n_dials > 0)
		pthread_cond_wait(&p->dial_cond, &p->dial_mu);
	pthread_mutex_unlock(&p->dial_mu);
	for (int i = 0; i < p->n_pool; i++)
		pfd_close(p->pool[i].c);
	LORA_ASSERT(p->jobs == NULL && p->waiters == NULL);
	upconns_sweep(p, 1);
	node_tls_ctx_free(p->cfg.tls_ctx);
	pthread_mutex_destroy(&p->pool_mu);
	pthread_mutex_destroy(&p->off_mu);
	pthread_mutex_destroy(&p->dial_mu);
	pthread_cond_destroy(&p->dial_cond);
	pthread_mutex_destroy(&p->jobs_mu);
	pthread_mutex_destroy(&p->wait_mu);
	lora_free(p->pool);
	lora_free(p);
}

void node_proxy_stats(struct node_proxy *p, struct node_proxy_stats *s)
{
	s->dials = atomic_load(&p->dials);
	s->reused = atomic_load(&p->reused);
	s->sent = atomic_load(&p->sent);
	s->wakeups = atomic_load(&p->wakeups);
	s->kicks = atomic_load(&p->kicks);
	s->batches = atomic_load(&p->batches);
	s->batched = atomic_load(&p->batched);
	s->batch_refused = atomic_load(&p->batch_refused);
	pthread_mutex_lock(&p->off_mu);
	uint64_t off = p->nobatch_leader, until = p->nobatch_until_ms;
	pthread_mutex_unlock(&p->off_mu);
	s->batching_off = 0;
	if (off && off == p->ops.leader(p->ops.arg, NULL, 0))
		s->batching_off = until == 0              ? 2
		                  : lora_now_ms() < until ? 1
		                                          : 0;
	pthread_mutex_lock(&p->pool_mu);
	s->pooled = p->n_pool;
	pthread_mutex_unlock(&p->pool_mu);
}
