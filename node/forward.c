/*
 * forward.c - a follower passes a write to the leader's native port (nng
 * req/rep) and relays the answer. A request that could not be handed to a
 * connection in time was certainly not executed (LORA_UNAVAILABLE). Once
 * sent, a write with a requestId follows the leadership: when another node
 * is known to lead before the answer came, it is sent there again (the new
 * leader applies every entry of earlier terms before it executes anything,
 * and then finds the id if the first copy committed). A write without one
 * answers LORA_UNKNOWN_OUTCOME as soon as the leader it went to has been
 * silent for an election timeout (node_forward_check). With
 * authentication on, each new connection first carries a hello (the
 * cluster-secret proof alone), so the leader does not hold that idle
 * connection to its authentication deadline (native.c). Connections are
 * dialed from this node's own host (of its native address) when that is an
 * IPv4 address of this machine and the leader's is IPv4 too; else from
 * where the OS chooses. A socket whose dialer has had no connection for
 * NODE_FORWARD_REDIAL_MS when a request waits gets a new dialer
 * (fwd_redial: nng 1.5.2 can stop a dialer for good).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <sodium.h>

#include "log.h"
#include "node_int.h"
#include "thread.h"

#define NODE_FORWARD_SEND_MS   3000 /* until a connection takes it */
#define NODE_FORWARD_RETRY_MS  50
#define NODE_FORWARD_CONNS_MAX NODE_PEERS_MAX

/* A dialer without a connection this long (since it started, or since
 * its last connection went) when a request waits for one is replaced
 * (fwd_redial; nng dials again every NODE_FORWARD_RETRY_MS to 500 ms),
 * the wait doubled after each replacement that no connection came of (a
 * slow link's dial is not cut short for good), up to */
#define NODE_FORWARD_REDIAL_MS     1000
#define NODE_FORWARD_REDIAL_MAX_MS 30000

struct fwd_conn {
	char addr[NODE_ADDR_BYTES_MAX];
	nng_socket sock;
	uint64_t id;        /* the member whose native port it dials */
	nng_dialer dialer;  /* (fwd_mu) */
	uint64_t dialed_ms; /* when it was started (fwd_mu) */
	uint64_t wait_ms;   /* before the next replacement (fwd_mu) */
	int redial_said;    /* logged since its last connection (fwd_mu) */
	/* nng's pipe callbacks (arg: this entry; they take no lock) */
	atomic_int pipes;         /* connections up */
	atomic_int came;          /* one came since fwd_redial looked */
	_Atomic uint64_t down_ms; /* when the last one went */
};

static pthread_mutex_t fwd_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fwd_conn fwd_conns[NODE_FORWARD_CONNS_MAX];
static int n_fwd;

/* TLS on a dialer to member id's native port (when ours has TLS, the
 * cluster's have it): its certificate must chain to our native CA (or the
 * peer CA) and name it "lora-node-<id>". */
static int fwd_tls(struct lnode *n, nng_dialer d, uint64_t id)
{
	struct node_tls trust =
	    node_tls_member_trust(&n->cfg.native_tls, n->cfg.peer_tls.ca);
	char name[64], err[LORA_ERRMSG_BYTES];
	snprintf(name, sizeof name, NODE_TLS_PEER_NAME_FMT,
	         (unsigned long long)id);
	nng_tls_config *cfg;
	int rc = node_tls_nng_config(&trust, 0, 1, name, &cfg, err);
	if (rc) {
		LOG_WARN("forward to node %llu: %s", (unsigned long long)id,
		         err);
		return rc;
	}
	int rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
	nng_tls_config_free(cfg);
	return rv ? LORA_EIO : 0;
}

/* 1 when a TCP socket binds to ia, port 0 (an address of this machine);
 * 0 with errno set when not. */
static int fwd_bindable(const struct in_addr *ia)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr = *ia};
	int ok = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
	int e = errno;
	close(fd);
	errno = e;
	return ok;
}

int node_forward_local(const char *client_addr, const char *to_addr,
                       uint32_t *out, char *why, size_t why_bytes)
{
	char host[NODE_ADDR_BYTES_MAX], to[NODE_ADDR_BYTES_MAX];
	struct in_addr ia, ta;
	why[0] = '\0';
	node_addr_host(client_addr, host, sizeof host);
	if (inet_pton(AF_INET, host, &ia) != 1 || ia.s_addr == INADDR_ANY)
		return 0; /* a host name, IPv6 or 0.0.0.0: the OS chooses */
	node_addr_host(to_addr, to, sizeof to);
	if (inet_pton(AF_INET, to, &ta) != 1)
		snprintf(why, why_bytes,
		         "the leader's native address %s is not an IPv4 "
		         "address",
		         to_addr);
	else if (((ntohl(ia.s_addr) >> 24) == 127) !=
	         ((ntohl(ta.s_addr) >> 24) == 127))
		snprintf(why, why_bytes,
		         "%s and the leader's native address %s are not both "
		         "loopback or both not",
		         host, to_addr);
	else if (!fwd_bindable(&ia))
		snprintf(why, why_bytes, "cannot bind to %s: %s", host,
		         strerror(errno));
	*out = ia.s_addr;
	return why[0] == '\0';
}

/* The dialer's local address: the host of this node's own native
 * address (client_addr: the network the leader's native port is on), port
 * 0, as the peer transport dials from its peer host (transport.c), so
 * that a member tells this node's connections from a client's on the same
 * machine in its logs. Only where it cannot break the dial
 * (node_forward_local); else the OS chooses, logged once per process. */
static void fwd_local(struct lnode *n, nng_dialer d, const char *to_addr)
{
	static atomic_int told;
	char why[NODE_ADDR_BYTES_MAX * 2 + 64];
	nng_sockaddr sa;
	memset(&sa, 0, sizeof sa);
	uint32_t ia;
	if (!node_forward_local(n->cfg.client_addr, to_addr, &ia, why,
	                        sizeof why)) {
		if (why[0] && !atomic_exchange(&told, 1))
			LOG_WARN("forward: %s; native connections to the "
			         "leader are dialed from an address the OS "
			         "chooses",
			         why);
		return;
	}
	sa.s_in.sa_family = NNG_AF_INET;
	sa.s_in.sa_addr = ia;
	int rv = nng_dialer_set_addr(d, NNG_OPT_LOCADDR, &sa);
	if (rv != 0)
		LOG_WARN("forward: cannot dial from %s: %s", n->cfg.client_addr,
		         nng_strerror(rv));
}

/* A hello on its way (fwd_pipe_added). */
struct fwd_hello {
	nng_aio *aio;
};

/* The hello's send ended: its message back if never handed over. */
static void hello_sent(void *arg)
{
	struct fwd_hello *h = arg;
	if (nng_aio_result(h->aio) != 0)
		nng_msg_free(nng_aio_get_msg(h->aio));
	nng_aio_reap(h->aio); /* freed off this callback */
	lora_free(h);
}

/* The hello: a RunRequest with only the cluster-secret proof (no query,
 * no user), as native.c knows it. NULL when there is no secret yet. */
static nng_msg *hello_msg(struct lnode *n)
{
	Lora__RunRequest run = LORA__RUN_REQUEST__INIT;
	uint8_t proof[STO_SECRET_BYTES_MAX];
	size_t plen = 0;
	if (node_auth_peer_proof(n, 1, proof, &plen) != 0)
		return NULL;
	run.peer_proof.data = proof;
	run.peer_proof.len = plen;
	run.query = "";
	run.as_user = "";
	Lora__Request r = LORA__REQUEST__INIT;
	r.kind_case = LORA__REQUEST__KIND_RUN;
	r.run = &run;
	size_t len = lora__request__get_packed_size(&r);
	nng_msg *msg = NULL;
	if (nng_msg_alloc(&msg, len) == 0)
		lora__request__pack(&r, nng_msg_body(msg));
	sodium_memzero(proof, sizeof proof);
	return msg;
}

/* A connection of c's socket is up (ADD_PRE) or gone (REM_POST): nng
 * calls REM_POST for every connection it called ADD_PRE for, even one
 * closed before ADD_POST, so the count stays exact. */
static void fwd_pipe_pre(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct fwd_conn *c = arg;
	(void)p;
	(void)ev;
	atomic_fetch_add(&c->pipes, 1);
	atomic_store(&c->came, 1);
}

static void fwd_pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct fwd_conn *c = arg;
	(void)p;
	(void)ev;
	if (atomic_fetch_sub(&c->pipes, 1) == 1)
		atomic_store(&c->down_ms, lora_now_ms());
}

/* nng's callback on a new connection to a member's native port: a hello
 * (hello_msg), so that the member counts this connection (only it) as a
 * member's at once and does not hold it to its authentication deadline
 * (native.c) while no write comes (after a redial, or on the socket to a
 * former leader); without it such an idle connection would be closed and
 * redialed every auth_timeout_ms. Sent on the socket's own context, which
 * forwarded writes never use (a newer hello replaces an older one); its
 * answer is not awaited. */
static void fwd_pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct lnode *n = arg;
	(void)ev;
	if (!node_auth_enabled(n))
		return;              /* no deadline */
	nng_msg *msg = hello_msg(n); /* no secret yet: the first write's */
	struct fwd_hello *h = msg ? lora_calloc(1, sizeof *h) : NULL;
	if (h == NULL || nng_aio_alloc(&h->aio, hello_sent, h) != 0) {
		lora_free(h);
		nng_msg_free(msg);
		return;
	}
	nng_aio_set_msg(h->aio, msg);
	nng_aio_set_timeout(h->aio, NODE_FORWARD_SEND_MS);
	nng_send_aio(nng_pipe_socket(p), h->aio);
}

/* The entry for addr, or NULL (fwd_mu held). */
static struct fwd_conn *fwd_find(const char *addr)
{
	for (int i = 0; i < n_fwd; i++)
		if (strcmp(fwd_conns[i].addr, addr) == 0)
			return &fwd_conns[i];
	return NULL;
}

/* Starts a dialer of c's socket to its member's native port: from our
 * host (fwd_local), with TLS when our native port has it (fwd_mu held). */
static int fwd_dial(struct lnode *n, struct fwd_conn *c)
{
	char url[NODE_ADDR_BYTES_MAX + 16];
	nng_dialer d;
	node_tls_url(&n->cfg.native_tls, c->addr, url, sizeof url);
	if (nng_dialer_create(&d, c->sock, url) != 0)
		return LORA_EIO;
	fwd_local(n, d, c->addr);
	if ((n->cfg.native_tls.mode != NODE_TLS_OFF &&
	     fwd_tls(n, d, c->id) != 0) ||
	    nng_dialer_start(d, NNG_FLAG_NONBLOCK) != 0) {
		nng_dialer_close(d);
		return LORA_EIO;
	}
	c->dialer = d;
	c->dialed_ms = lora_now_ms();
	return 0;
}

/*
 * A request for addr's socket found no connection to take it: when it has
 * had none for NODE_FORWARD_REDIAL_MS (since its dialer started, or since
 * its last connection went), that dialer is replaced. nng 1.5.2 stops a dialer
 * for good when a new connection's negotiation fails with NNG_ECLOSED (nng
 * issue 1518), which its TCP layer gives for a write that meets the leader's
 * reset; this node's native writes to that leader would then fail until a
 * restart. A dialer that still dials (the leader is down) loses nothing: it has
 * no connection either, and the wait doubles while none comes. A connection
 * that comes up between the check and the close goes with the old dialer: a
 * request handed to it in that moment answers LORA_UNKNOWN_OUTCOME (or is
 * resent, with a requestId).
 */
static void fwd_redial(struct lnode *n, const char *addr)
{
	nng_dialer old = NNG_DIALER_INITIALIZER;
	pthread_mutex_lock(&fwd_mu);
	uint64_t now = lora_now_ms(); /* (after others' replacements) */
	struct fwd_conn *c = fwd_find(addr);
	if (c && atomic_exchange(&c->came, 0)) {
		c->wait_ms = NODE_FORWARD_REDIAL_MS;
		c->redial_said = 0;
	}
	uint64_t since = c ? atomic_load(&c->down_ms) : 0;
	if (c && since < c->dialed_ms)
		since = c->dialed_ms;
	if (c == NULL || atomic_load(&c->pipes) > 0 || since > now ||
	    now - since < c->wait_ms) {
		pthread_mutex_unlock(&fwd_mu);
		return;
	}
	nng_dialer was = c->dialer;
	if (fwd_dial(n, c) != 0) {
		c->dialed_ms = now; /* the old one kept; later again */
	} else {
		old = was;
		if (!c->redial_said) /* once until a connection comes */
			LOG_INFO("forward: no connection to node %llu's native "
			         "port (%s) for %llu ms; dialing it afresh",
			         (unsigned long long)c->id, addr,
			         (unsigned long long)(now - since));
		c->redial_said = 1;
		c->wait_ms = c->wait_ms * 2 < NODE_FORWARD_REDIAL_MAX_MS
		                 ? c->wait_ms * 2
		                 : NODE_FORWARD_REDIAL_MAX_MS;
	}
	pthread_mutex_unlock(&fwd_mu);
	if (nng_dialer_id(old) > 0)
		nng_dialer_close(old);
}

#ifdef LORA_TEST_HOOKS
/* Test hook (compiled with LORA_TEST_HOOKS), LORA_FWD_DIALER_STOP_TESTING=1
 * in lorad's environment: once the first write this node passed on is
 * answered, the dialer of that connection is closed, which leaves the
 * socket as nng 1.5.2 leaves one whose dialer it stopped (no connection,
 * none dialed again), so that a test sees fwd_redial dial afresh
 * (integration_native_hostile). */
static void fwd_test_stop(const char *addr)
{
	static atomic_int done;
	if (atomic_exchange(&done, 1))
		return; /* the first answered write only */
	const char *e = getenv("LORA_FWD_DIALER_STOP_TESTING");
	if (e == NULL || strcmp(e, "1") != 0)
		return;
	nng_dialer d = NNG_DIALER_INITIALIZER;
	pthread_mutex_lock(&fwd_mu);
	struct fwd_conn *c = fwd_find(addr);
	if (c)
		d = c->dialer;
	pthread_mutex_unlock(&fwd_mu);
	if (nng_dialer_id(d) > 0)
		nng_dialer_close(d);
}
#else
static void fwd_test_stop(const char *addr)
{
	(void)addr;
}
#endif

/* A req socket dialing addr (member id's native port), created on first
 * use and kept. */
static int fwd_socket(struct lnode *n, uint64_t id, const char *addr,
                      nng_socket *out)
{
	pthread_mutex_lock(&fwd_mu);
	struct fwd_conn *found = fwd_find(addr);
	if (found) {
		*out = found->sock;
		pthread_mutex_unlock(&fwd_mu);
		return 0;
	}
	int rc = LORA_ELIMIT;
	if (n_fwd < NODE_FORWARD_CONNS_MAX) {
		struct fwd_conn *c = &fwd_conns[n_fwd];
		rc = nng_req0_open(&c->sock) ? LORA_EIO : 0;
		if (rc == 0) {
			snprintf(c->addr, sizeof c->addr, "%s", addr);
			c->id = id;
			c->redial_said = 0;
			c->wait_ms = NODE_FORWARD_REDIAL_MS;
			atomic_store(&c->pipes, 0);
			atomic_store(&c->came, 0);
			atomic_store(&c->down_ms, 0);
			nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME,
			                  NNG_DURATION_INFINITE);
			nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 50);
			nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 500);
			nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ,
			                    NODE_PEER_MSG_BYTES_MAX);
			if (nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_PRE,
			                    fwd_pipe_pre, c) != 0 ||
			    nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST,
			                    fwd_pipe_added, n) != 0 ||
			    nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST,
			                    fwd_pipe_removed, c) != 0 ||
			    fwd_dial(n, c) != 0) {
				nng_close(c->sock);
				rc = LORA_EIO;
			}
		}
		if (rc == 0) {
			*out = c->sock;
			n_fwd++;
		}
	}
	pthread_mutex_unlock(&fwd_mu);
	return rc;
}

void node_forward_close_all(void)
{
	pthread_mutex_lock(&fwd_mu);
	for (int i = 0; i < n_fwd; i++)
		nng_close(fwd_conns[i].sock);
	n_fwd = 0;
	pthread_mutex_unlock(&fwd_mu);
}

uint8_t *node_forward_pack(struct lnode *n, const struct node_exec_req *req,
                           size_t head, size_t *len)
{
	Lora__RunRequest run = LORA__RUN_REQUEST__INIT;
	uint8_t proof[STO_SECRET_BYTES_MAX];
	size_t plen = 0;
	if (node_auth_enabled(n) &&
	    node_auth_peer_proof(n, 0, proof, &plen) == 0) {
		run.peer_proof.data = proof;
		run.peer_proof.len = plen;
		run.as_user = (char *)req->user;
		run.as_role = (uint32_t)req->role;
	}
	run.query = (char *)req->query;
	run.mode = (uint32_t)req->mode;
	run.consistency = (Lora__Consistency)req->consistency;
	run.request_id = req->request_id ? (char *)req->request_id : "";
	run.batch_rows = NODE_FORWARD_ALL_ROWS;
	/* the client's lower limits hold on the leader too, and the time
	 * limit is this node's at most: the leader stops the statement
	 * before this node stops waiting for it (node_forward_wait_ms) */
	run.memory_bytes = req->mem_bytes_max;
	run.time_ms = node_statement_time_ms(n, req);
	size_t np = req->params ? req->params->n_entries : 0;
	Lora__Param *ps = lora_calloc(np ? np : 1, sizeof *ps);
	Lora__Param **pp = lora_calloc(np ? np : 1, sizeof *pp);
	uint8_t *out = NULL;
	if (ps && pp) {
		for (size_t i = 0; i < np; i++) {
			lora__param__init(&ps[i]);
			ps[i].name = req->params->entries[i]->key;
			ps[i].value = req->params->entries[i]->value;
			pp[i] = &ps[i];
		}
		run.params = pp;
		run.n_params = np;
		Lora__Request r = LORA__REQUEST__INIT;
		r.kind_case = LORA__REQUEST__KIND_RUN;
		r.run = &run;
		*len = lora__request__get_packed_size(&r);
		if ((out = lora_malloc(head + *len)) != NULL)
			lora__request__pack(&r, out + head);
	}
	lora_free(ps);
	lora_free(pp);
	sodium_memzero(proof, sizeof proof);
	return out;
}

/* req as an nng message (node_forward_pack). */
static nng_msg *pack_request(struct lnode *n, const struct node_exec_req *req)
{
	size_t len;
	uint8_t *b = node_forward_pack(n, req, 0, &len);
	nng_msg *msg = NULL;
	if (b && nng_msg_alloc(&msg, len) == 0)
		memcpy(nng_msg_body(msg), b, len);
	lora_free(b);
	return msg;
}

/* Completion flag of the forwarding aio (its callback sets it), and
 * `kicked`, set by a leader change (node_forward_leader_changed): the
 * waiter sleeps on cond until one of them or its deadline. */
struct fwd_wait {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* node_cond_init: CLOCK_MONOTONIC */
	int done, kicked;
	struct fwd_wait *next; /* waits (waits_mu) */
};

/* Every round trip in progress, for node_forward_leader_changed. */
static pthread_mutex_t waits_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fwd_wait *waits;

static void fwd_done(void *arg)
{
	struct fwd_wait *w = arg;
	pthread_mutex_lock(&w->mu);
	w->done = 1;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

void node_forward_leader_changed(void)
{
	pthread_mutex_lock(&waits_mu);
	for (struct fwd_wait *w = waits; w; w = w->next) {
		pthread_mutex_lock(&w->mu);
		w->kicked = 1;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->mu);
	}
	pthread_mutex_unlock(&waits_mu);
}

static int wait_init(struct fwd_wait *w)
{
	memset(w, 0, sizeof *w);
	pthread_mutex_init(&w->mu, NULL);
	if (node_cond_init(&w->cond) != 0) {
		pthread_mutex_destroy(&w->mu);
		return -1;
	}
	pthread_mutex_lock(&waits_mu);
	w->next = waits;
	waits = w;
	pthread_mutex_unlock(&waits_mu);
	return 0;
}

static void wait_destroy(struct fwd_wait *w)
{
	pthread_mutex_lock(&waits_mu);
	for (struct fwd_wait **pp = &waits; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	pthread_mutex_unlock(&waits_mu);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cond);
}

uint64_t node_leader_heard(struct lnode *n, uint64_t leader, uint64_t since)
{
	if (atomic_load(&n->leader_heard_id) != leader)
		return since;
	uint64_t at = atomic_load(&n->leader_heard_ms);
	return at > since ? at : since;
}

int node_forward_check(struct lnode *n, uint64_t to, int resend,
                       uint64_t *heard)
{
	uint64_t leader = 0;
	if (resend)
		leader = node_leader_id(n);
	else
		*heard = node_leader_heard(n, to, *heard);
	return node_proxy_verdict(leader, to, resend, *heard, lora_now_ms(),
	                          n->cfg.election_ms);
}

/*
 * Receives the answer to a request handed to leader `to`, until end_ms:
 * 0 with *reply, or the node_forward_check verdict that stopped the wait
 * (NODE_WAIT_GIVE_UP also when the connection failed or time ran out).
 */
static int await_reply(struct lnode *n, uint64_t to, nng_ctx ctx, nng_aio *aio,
                       struct fwd_wait *w, int resend, uint64_t end_ms,
                       nng_msg **reply)
{
	pthread_mutex_lock(&w->mu);
	w->done = 0;
	pthread_mutex_unlock(&w->mu);
	uint64_t now = lora_now_ms(), heard = now;
	nng_aio_set_timeout(aio,
	                    end_ms > now ? (nng_duration)(end_ms - now) : 1);
	nng_ctx_recv(ctx, aio);
	int why = NODE_WAIT_GIVE_UP;
	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		/* until the answer, a leader change (kicked) or, without
		 * resend, the moment `to` has been silent for an election */
		uint64_t until = end_ms;
		if (!resend) {
			heard = node_leader_heard(n, to, heard);
			if (heard + n->cfg.election_ms < until)
				until = heard + n->cfg.election_ms;
		}
		if (!w->kicked)
			node_cond_wait_until(&w->cond, &w->mu, until);
		w->kicked = 0;
		int v = node_forward_check(n, to, resend, &heard);
		if (!w->done && v != NODE_WAIT_ON) {
			why = v;
			pthread_mutex_unlock(&w->mu);
			nng_aio_cancel(aio);
			pthread_mutex_lock(&w->mu);
			break;
		}
	}
	pthread_mutex_unlock(&w->mu);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0)
		return why;
	*reply = nng_aio_get_msg(aio);
	return 0;
}

/*
 * Sends msg to the current leader's native port and waits for the answer.
 * While no connection takes the request it is retried every
 * NODE_FORWARD_RETRY_MS, following leader changes; with `resend` it is
 * also sent again to a new leader after it was sent (await_reply).
 * *self_leader is set (and msg freed) when this node became the leader
 * meanwhile and may run it. 0, LORA_EUNAVAILABLE (never sent) or
 * LORA_EUNKNOWN_OUTCOME.
 */
static int round_trip(struct lnode *n, nng_msg *msg, int resend,
                      uint64_t wait_ms, nng_msg **reply, int *self_leader)
{
	uint64_t end = lora_now_ms() + wait_ms;
	uint64_t deadline = lora_now_ms() + NODE_FORWARD_SEND_MS;
	nng_aio *aio;
	struct fwd_wait w;
	if (wait_init(&w) != 0) {
		nng_msg_free(msg);
		return LORA_EUNAVAILABLE;
	}
	if (nng_aio_alloc(&aio, fwd_done, &w) != 0) {
		nng_msg_free(msg);
		wait_destroy(&w);
		return LORA_EUNAVAILABLE;
	}
	int rc = LORA_EUNAVAILABLE;
	while (lora_now_ms() < deadline && !atomic_load(&n->stopping)) {
		uint64_t seq = node_status_seq(n);
		uint64_t leader = node_leader_id(n);
		struct node_member m;
		nng_socket sock;
		nng_ctx ctx;
		if (leader == n->cfg.id) {
			*self_leader = 1;
			break;
		}
		if (leader == 0 || node_member_get(n, leader, &m) != 0 ||
		    m.client_addr[0] == '\0' ||
		    fwd_socket(n, leader, m.client_addr, &sock) != 0 ||
		    nng_ctx_open(&ctx, sock) != 0) {
			/* until a leader (another one) is known; a connection
			 * that failed is tried again after the pause */
			node_status_wait(n, seq,
			                 lora_now_ms() + NODE_FORWARD_RETRY_MS);
			continue;
		}
		nng_msg *copy;
		if (nng_msg_dup(&copy, msg) != 0) {
			nng_ctx_close(ctx);
			break;
		}
		nng_aio_set_msg(aio, copy);
		nng_aio_set_timeout(aio, NODE_FORWARD_RETRY_MS);
		nng_ctx_send(ctx, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) == 0) {
			int why = await_reply(n, leader, ctx, aio, &w, resend,
			                      end, reply);
			nng_ctx_close(ctx);
			if (why == 0)
				fwd_test_stop(m.client_addr);
			rc = why == 0 ? 0 : LORA_EUNKNOWN_OUTCOME;
			if (why == 0 || !resend)
				break;
			/* sent: resends follow the leader until the end */
			deadline = end;
			if (why != NODE_WAIT_RESEND) /* lost: not too fast */
				node_status_wait(n, seq,
				                 lora_now_ms() +
				                     NODE_FORWARD_RETRY_MS);
			continue;
		}
		nng_msg_free(nng_aio_get_msg(aio)); /* never handed over */
		nng_ctx_close(ctx);
		fwd_redial(n, m.client_addr);
	}
	nng_aio_free(aio);
	wait_destroy(&w);
	nng_msg_free(msg);
	return rc;
}

int node_forward(struct lnode *n, const struct node_exec_req *req,
                 Lora__Response **resp)
{
	*resp = NULL;
	/* Right after the cluster started, the bootstrap entry carrying the
	 * cluster secret may not be applied here yet: wait a little for it
	 * (without it the leader would refuse the write as unauthenticated). */
	uint8_t proof[STO_SECRET_BYTES_MAX];
	size_t plen;
	uint64_t until = lora_now_ms() + NODE_FORWARD_SEND_MS;
	while (node_auth_enabled(n) &&
	       node_auth_peer_proof(n, 0, proof, &plen) != 0 &&
	       lora_now_ms() < until && !atomic_load(&n->stopping))
		node_wait_applied(n, node_applied_index(n) + 1,
		                  NODE_FORWARD_RETRY_MS); /* it comes applied */
	sodium_memzero(proof, sizeof proof);
	nng_msg *msg = pack_request(n, req);
	if (msg == NULL)
		return LORA_ENOMEM;
	nng_msg *reply = NULL;
	int self_leader = 0;
	int resend =
	    node_may_resend(req->request_id, req->query, strlen(req->query));
	int rc =
	    round_trip(n, msg, resend,
	               node_forward_wait_ms(n, node_statement_time_ms(n, req)),
	               &reply, &self_leader);
	if (self_leader)
		return NODE_FORWARD_SELF;
	if (rc == LORA_EUNAVAILABLE)
		return rc;
	Lora__Response *r = node_resp_new();
	if (r == NULL) {
		nng_msg_free(reply);
		return LORA_ENOMEM;
	}
	if (rc == 0) {
		/* a peer's bytes: bounded before protobuf-c recurses */
		Lora__Response *got =
		    lora_pb_check(LORA_PB_RESPONSE, nng_msg_body(reply),
		                  nng_msg_len(reply), LORA_RESULT_DEPTH_MAX)
		        ? NULL
		        : lora__response__unpack(&lora_pb_allocator,
		                                 nng_msg_len(reply),
		                                 nng_msg_body(reply));
		nng_msg_free(reply);
		if (got) {
			lora__response__free_unpacked(r, &lora_pb_allocator);
			*resp = got;
			return 0;
		}
		rc = LORA_EUNKNOWN_OUTCOME;
	}
	uint64_t leader = node_leader_id(n);
	struct node_member m;
	if (leader != 0 && leader != n->cfg.id &&
	    node_member_get(n, leader, &m) == 0 && m.client_addr[0])
		r->leader_address = lora_strdup(m.client_addr); /* a hint */
	node_resp_error(r, rc,
	                "the leader went silent before it answered: the "
	                "write may have committed; retry with the same "
	                "requestId",
	                0, 0);
	*resp = r;
	return rc;
}
