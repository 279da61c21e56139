/* client.c - connections, leader routing, retries and cursors of the client.
 *
 * Each node address gets one nng req0 socket with a background dialer that
 * reconnects by itself. Pipe notifications keep a count of live connections
 * per node, so that a dead node is skipped without waiting for a timeout,
 * and a request in flight on a connection that drops is aborted at once
 * (its outcome is then unknown and the retry reuses the request id).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "lora_client.h"

/* How long a call waits for a first connection to a node before trying
 * another one. */
#define CONNECT_WAIT_MS 300
/* Reconnect interval bounds of the background dialers. */
#define RECONNECT_MS_MIN 20
#define RECONNECT_MS_MAX 250

struct node {
	char url[LORA_CLIENT_ADDR_BYTES];
	nng_socket sock;
	nng_dialer dialer;
	nng_aio *aio;
	atomic_int pipes;     /* live connections */
	atomic_int in_flight; /* a request is waiting on aio */
	atomic_int pipe_gen;  /* connections made so far */
	int authed_gen;       /* pipe_gen when the handshake succeeded */
	int opened;
};

struct lora_client {
	struct node nodes[LORA_CLIENT_NODES_MAX];
	size_t n;
	int leader; /* index of the known leader, -1 when unknown */
	int cur;    /* next node to try when the leader is unknown */
	struct lora_client_opts o;
	uint64_t rng;
	uint64_t id_prefix;
	uint64_t id_counter;
	char bookmark[LORA_CLIENT_BOOKMARK_BYTES];
	/* credentials for the handshake ("" user: none) */
	char user[LORA_CLIENT_USER_BYTES_MAX + 1];
	char password[LORA_CLIENT_PASSWORD_BYTES_MAX + 1];
	char ca[LORA_CLIENT_CA_PATH_BYTES_MAX]; /* "": no TLS */
};

struct lora_result {
	struct lora_client *c;
	int node;
	Lora__Response *resp;
	size_t row;
	uint8_t cursor[LORA_CLIENT_CURSOR_BYTES];
	size_t cursor_len; /* 0: no cursor */
	int has_more;
	uint32_t batch_rows;
	int attempts;
	uint64_t sent_ms;
	char bookmark[LORA_CLIENT_BOOKMARK_BYTES];
};

static void set_error(struct lora_client_error *e, int err, const char *code,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(struct lora_client_error *e, int err, const char *code,
                      const char *fmt, ...)
{
	if (e == NULL)
		return;
	e->err = err;
	snprintf(e->code, sizeof(e->code), "%s",
	         code ? code : lora_err_code(err));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	e->line = e->column = 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- connections ------------------------------------------------------- */

static void pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p, (void)ev;
	struct node *n = arg;
	atomic_fetch_add(&n->pipe_gen, 1);
	atomic_fetch_add(&n->pipes, 1);
}

static void pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p, (void)ev;
	struct node *n = arg;
	atomic_fetch_sub(&n->pipes, 1);
	/* The reply cannot come over a connection that is gone: stop waiting
	 * instead of sitting out the timeout. */
	if (atomic_load(&n->in_flight))
		nng_aio_abort(n->aio, NNG_ECONNRESET);
}

/* TLS on n's dialer: the node's certificate must chain to ca and name
 * the host of n's address. */
static int node_tls(struct node *n, const char *ca, char *errmsg)
{
	char host[LORA_CLIENT_ADDR_BYTES];
	snprintf(host, sizeof host, "%s", n->url + strlen("tcp://"));
	char *colon = strrchr(host, ':');
	if (colon)
		*colon = '\0';
	nng_tls_config *cfg;
	int rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT);
	if (rv)
		return lora_errf(LORA_EIO, errmsg, "tls: %s", nng_strerror(rv));
	rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	if (rv == 0)
		rv = nng_tls_config_server_name(cfg, host);
	int bad_ca = rv == 0 && (rv = nng_tls_config_ca_file(cfg, ca)) != 0;
	if (rv == 0)
		rv = nng_dialer_set_ptr(n->dialer, NNG_OPT_TLS_CONFIG, cfg);
	nng_tls_config_free(cfg); /* the dialer holds its own reference */
	if (rv)
		return lora_errf(bad_ca ? LORA_EINVAL : LORA_EIO, errmsg,
		                 "tls: %s%s%s", bad_ca ? "CA file " : "",
		                 bad_ca ? ca : "", nng_strerror(rv));
	return 0;
}

static int node_open(struct node *n, const char *ca, char *errmsg)
{
	int rv = nng_req0_open(&n->sock);
	if (rv)
		return lora_errf(LORA_EIO, errmsg, "nng req socket: %s",
		                 nng_strerror(rv));
	n->opened = 1;
	n->authed_gen = -1;
	/* Retries are ours (with request ids), not nng's. */
	nng_socket_set_ms(n->sock, NNG_OPT_REQ_RESENDTIME,
	                  NNG_DURATION_INFINITE);
	nng_socket_set_size(n->sock, NNG_OPT_RECVMAXSZ,
	                    LORA_CLIENT_MSG_BYTES_MAX);
	nng_pipe_notify(n->sock, NNG_PIPE_EV_ADD_POST, pipe_added, n);
	nng_pipe_notify(n->sock, NNG_PIPE_EV_REM_POST, pipe_removed, n);
	char url[LORA_CLIENT_ADDR_BYTES + 8];
	snprintf(url, sizeof url, "%s%s", ca ? "tls+" : "", n->url);
	rv = nng_aio_alloc(&n->aio, NULL, NULL);
	if (rv == 0)
		rv = nng_dialer_create(&n->dialer, n->sock, url);
	if (rv)
		return lora_errf(LORA_EIO, errmsg, "%s: %s", n->url,
		                 nng_strerror(rv));
	nng_dialer_set_ms(n->dialer, NNG_OPT_RECONNMINT, RECONNECT_MS_MIN);
	nng_dialer_set_ms(n->dialer, NNG_OPT_RECONNMAXT, RECONNECT_MS_MAX);
	nng_dialer_set_bool(n->dialer, NNG_OPT_TCP_NODELAY, true);
	if (ca != NULL && (rv = node_tls(n, ca, errmsg)) != 0)
		return rv;
	rv = nng_dialer_start(n->dialer, NNG_FLAG_NONBLOCK);
	if (rv)
		return lora_errf(LORA_EIO, errmsg, "dial %s: %s", n->url,
		                 nng_strerror(rv));
	return 0;
}

static void node_close(struct node *n)
{
	if (n->opened)
		nng_close(n->sock); /* aborts pending operations */
	if (n->aio)
		nng_aio_free(n->aio);
	n->opened = 0;
	n->aio = NULL;
}

static uint64_t random_seed(void)
{
	uint64_t s = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
			s = 0;
		close(fd);
	}
	return s ^ lora_now_ns() ^ ((uint64_t)getpid() << 32);
}

static void opts_defaults(struct lora_client_opts *o)
{
	if (o->call_timeout_ms <= 0)
		o->call_timeout_ms = LORA_CLIENT_CALL_TIMEOUT_MS_DEFAULT;
	if (o->retry_budget_ms == 0)
		o->retry_budget_ms = LORA_CLIENT_RETRY_BUDGET_MS_DEFAULT;
	if (o->backoff_ms_min <= 0)
		o->backoff_ms_min = LORA_CLIENT_BACKOFF_MS_MIN_DEFAULT;
	if (o->backoff_ms_max <= 0)
		o->backoff_ms_max = LORA_CLIENT_BACKOFF_MS_MAX_DEFAULT;
	if (o->seed == 0)
		o->seed = random_seed();
}

int lora_client_open(struct lora_client **out,
                     const struct lora_client_opts *opts,
                     struct lora_client_error *e)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	struct lora_client *c = lora_calloc(1, sizeof(*c));
	if (c == NULL) {
		set_error(e, LORA_ENOMEM, NULL, "out of memory");
		return LORA_ENOMEM;
	}
	if (opts)
		c->o = *opts;
	opts_defaults(&c->o);
	const char *user = c->o.user ? c->o.user : getenv("LORA_USER");
	const char *pw =
	    c->o.password ? c->o.password : getenv("LORA_PASSWORD");
	if (user && strlen(user) <= LORA_CLIENT_USER_BYTES_MAX &&
	    (pw == NULL || strlen(pw) <= LORA_CLIENT_PASSWORD_BYTES_MAX)) {
		snprintf(c->user, sizeof c->user, "%s", user);
		snprintf(c->password, sizeof c->password, "%s", pw ? pw : "");
	}
	c->o.user = c->o.password = NULL; /* borrowed during open only */
	c->leader = -1;
	c->rng = c->o.seed;
	c->id_prefix = c->o.seed * 0x9E3779B97F4A7C15ull;
	const char *list =
	    c->o.addresses ? c->o.addresses : LORA_CLIENT_ADDRESSES_DEFAULT;
	char urls[LORA_CLIENT_NODES_MAX][LORA_CLIENT_ADDR_BYTES];
	int rv = lora_client_parse_addresses(list, urls, LORA_CLIENT_NODES_MAX,
	                                     &c->n, msg);
	const char *ca = c->o.ca ? c->o.ca : getenv("LORA_CA");
	if (ca != NULL && ca[0] == '\0')
		ca = NULL;
	if (rv == 0 && c->o.tls && ca == NULL)
		rv = lora_errf(LORA_EINVAL, msg,
		               "tls: needs a CA file (--ca or LORA_CA)");
	if (rv == 0 && ca != NULL && strlen(ca) >= sizeof c->ca)
		rv = lora_errf(LORA_EINVAL, msg, "tls: CA path too long");
	if (rv == 0 && ca != NULL)
		snprintf(c->ca, sizeof c->ca, "%s", ca);
	for (size_t i = 0; rv == 0 && i < c->n; i++) {
		memcpy(c->nodes[i].url, urls[i], sizeof(urls[i]));
		rv = node_open(&c->nodes[i], ca, msg);
	}
	c->o.addresses = c->o.ca = NULL; /* borrowed during open only */
	if (rv) {
		set_error(e, rv, NULL, "%s", msg);
		lora_client_close(c);
		return rv;
	}
	*out = c;
	return 0;
}

const char *lora_client_ca(const struct lora_client *c)
{
	return c->ca[0] ? c->ca : NULL;
}

void lora_client_credentials(const struct lora_client *c, const char **user,
                             const char **password)
{
	*user = c->user;
	*password = c->password;
}

void lora_client_library_fini(void)
{
	nng_fini();
}

void lora_client_close(struct lora_client *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		node_close(&c->nodes[i]);
	memset(c->password, 0, sizeof c->password);
	lora_free(c);
}

/* Index of url in the node list, adding it when there is room; -1 if not. */
static int node_index(struct lora_client *c, const char *hostport)
{
	char url[LORA_CLIENT_ADDR_BYTES];
	size_t n = 0;
	char one[1][LORA_CLIENT_ADDR_BYTES];
	if (lora_client_parse_addresses(hostport, one, 1, &n, NULL))
		return -1;
	memcpy(url, one[0], sizeof(url));
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->nodes[i].url, url) == 0)
			return (int)i;
	}
	if (c->n == LORA_CLIENT_NODES_MAX)
		return -1;
	struct node *nd = &c->nodes[c->n];
	memset(nd, 0, sizeof(*nd));
	memcpy(nd->url, url, sizeof(url));
	if (node_open(nd, c->ca[0] ? c->ca : NULL, NULL)) {
		node_close(nd);
		return -1;
	}
	return (int)c->n++;
}

/* Waits up to wait_ms for node i to have a connection. */
static int node_connected(struct lora_client *c, int i, int wait_ms)
{
	struct node *n = &c->nodes[i];
	for (int waited = 0; atomic_load(&n->pipes) <= 0; waited += 5) {
		if (waited >= wait_ms)
			return 0;
		sleep_ms(5);
	}
	return 1;
}

/* ---- one round trip ---------------------------------------------------- */

static int wait_aio(struct node *n)
{
	atomic_store(&n->in_flight, 1);
	nng_aio_wait(n->aio);
	atomic_store(&n->in_flight, 0);
	return nng_aio_result(n->aio);
}

static int transport_err(int nrv)
{
	return nrv == NNG_ETIMEDOUT ? LORA_ETIMEOUT : LORA_ECLOSED;
}

/*
 * Sends req to node i and waits for the response. *sent tells whether the
 * request may have reached the node. On 0, *out is the decoded response
 * (free with lora__response__free_unpacked).
 */
static int node_call_once(struct lora_client *c, int i,
                          const Lora__Request *req, Lora__Response **out,
                          int *sent, struct lora_client_error *e)
{
	struct node *n = &c->nodes[i];
	*sent = 0;
	if (!node_connected(c, i, CONNECT_WAIT_MS)) {
		set_error(e, LORA_ECLOSED, NULL, "%s: not connected", n->url);
		return LORA_ECLOSED;
	}
	nng_msg *m = NULL;
	size_t len = lora__request__get_packed_size(req);
	if (nng_msg_alloc(&m, len)) {
		set_error(e, LORA_ENOMEM, NULL, "out of memory");
		return LORA_ENOMEM;
	}
	lora__request__pack(req, nng_msg_body(m));
	nng_aio_set_timeout(n->aio, c->o.call_timeout_ms);
	nng_aio_set_msg(n->aio, m);
	nng_send_aio(n->sock, n->aio);
	int nrv = wait_aio(n);
	if (nrv) {
		nng_msg_free(m); /* still ours when the send failed */
		set_error(e, LORA_ECLOSED, NULL, "%s: send: %s", n->url,
		          nng_strerror(nrv));
		return LORA_ECLOSED;
	}
	*sent = 1;
	nng_recv_aio(n->sock, n->aio);
	nrv = wait_aio(n);
	if (nrv) {
		set_error(e, transport_err(nrv), NULL, "%s: receive: %s",
		          n->url, nng_strerror(nrv));
		return transport_err(nrv);
	}
	m = nng_aio_get_msg(n->aio);
	/* protobuf-c recurses once per level: bound it first */
	*out = lora_pb_check(LORA_PB_RESPONSE, nng_msg_body(m), nng_msg_len(m),
	                     LORA_RESULT_DEPTH_MAX)
	           ? NULL
	           : lora__response__unpack(&lora_pb_allocator, nng_msg_len(m),
	                                    nng_msg_body(m));
	nng_msg_free(m);
	if (*out == NULL) {
		set_error(e, LORA_ECORRUPT, NULL, "%s: undecodable response",
		          n->url);
		return LORA_ECORRUPT;
	}
	return 0;
}

/* The handshake on node i's connection, when the client has
 * credentials and this connection has not seen them yet. */
static int node_auth(struct lora_client *c, int i, struct lora_client_error *e)
{
	struct node *n = &c->nodes[i];
	int gen = atomic_load(&n->pipe_gen);
	if (c->user[0] == '\0' || n->authed_gen == gen)
		return 0;
	Lora__AuthRequest a = LORA__AUTH_REQUEST__INIT;
	a.user = c->user;
	a.password = c->password;
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_AUTH;
	req.auth = &a;
	Lora__Response *r = NULL;
	int sent;
	int rv = node_call_once(c, i, &req, &r, &sent, e);
	if (rv)
		return rv;
	if (r->error) {
		rv = lora_err_from_code(r->error->code);
		set_error(e, rv ? rv : LORA_EUNAUTHORIZED, r->error->code,
		          "%s: %s", n->url, r->error->message);
		rv = rv ? rv : LORA_EUNAUTHORIZED;
	} else {
		n->authed_gen = gen;
	}
	lora__response__free_unpacked(r, &lora_pb_allocator);
	return rv;
}

/*
 * node_call_once after the handshake. A connection that was replaced
 * between the handshake and the request (nng redials by itself) is
 * refused before anything runs: authenticated again and sent once more.
 */
static int node_call(struct lora_client *c, int i, const Lora__Request *req,
                     Lora__Response **out, int *sent,
                     struct lora_client_error *e)
{
	for (int attempt = 0;; attempt++) {
		*sent = 0;
		int rv = node_auth(c, i, e);
		if (rv)
			return rv;
		rv = node_call_once(c, i, req, out, sent, e);
		if (rv || (*out)->error == NULL || attempt == 2 ||
		    lora_err_from_code((*out)->error->code) !=
		        LORA_EUNAUTHORIZED ||
		    strncmp((*out)->error->message, "authenticate first", 18))
			return rv;
		lora__response__free_unpacked(*out, &lora_pb_allocator);
		*out = NULL;
		c->nodes[i].authed_gen = -1;
	}
}

/* Copies an Error message into e; returns its enum lora_err. */
static int response_error(const Lora__Error *er, struct lora_client_error *e)
{
	int err = lora_err_from_code(er->code);
	if (err == LORA_OK)
		err = LORA_EINTERNAL;
	set_error(e, err, er->code, "%s", er->message);
	if (e) {
		e->line = er->line;
		e->column = er->column;
	}
	return err;
}

static void note_bookmark(struct lora_client *c, const char *bm)
{
	if (bm == NULL || bm[0] == 0)
		return;
	char *end = NULL;
	unsigned long long nv = strtoull(bm, &end, 10);
	unsigned long long ov = strtoull(c->bookmark, NULL, 10);
	if (*end == 0 && c->bookmark[0] && nv <= ov)
		return; /* keep the newest */
	snprintf(c->bookmark, sizeof(c->bookmark), "%s", bm);
}

/* ---- routing and retries ----------------------------------------------- */

static int pick_node(struct lora_client *c)
{
	/* A known leader gets its chance even while (re)connecting:
	 * node_call waits a little for the connection. */
	if (c->leader >= 0)
		return c->leader;
	for (size_t k = 0; k < c->n; k++) {
		int i = (int)(((size_t)c->cur + k) % c->n);
		if (atomic_load(&c->nodes[i].pipes) > 0)
			return c->cur = i;
	}
	return c->cur; /* nobody connected yet: node_call waits a little */
}

/* Learns from a NOT_LEADER answer; returns 1 when a new leader is known. */
static int follow_hint(struct lora_client *c, int asked, const char *hint)
{
	int i = hint && hint[0] ? node_index(c, hint) : -1;
	if (i >= 0 && i != asked) {
		c->leader = i;
		return 1;
	}
	c->leader = -1;
	c->cur = (asked + 1) % (int)c->n;
	return 0;
}

static void next_request_id(struct lora_client *c, char *out, size_t size)
{
	snprintf(out, size, "%016" PRIx64 "-%" PRIu64, c->id_prefix,
	         ++c->id_counter);
}

/* Turns the last failure of a call whose retries ran out into its answer
 * (once: a statement never sent again, see call_state). */
static int give_up(int rv, int sent_ever, int once, struct lora_client_error *e)
{
	enum lora_retry r = lora_retry_classify(rv, sent_ever);
	if (rv == LORA_EUNKNOWN_OUTCOME || r == LORA_RETRY_SAME_ID) {
		char m[LORA_ERRMSG_BYTES];
		snprintf(m, sizeof(m), "%s", e ? e->message : "");
		set_error(e, LORA_EUNKNOWN_OUTCOME, NULL,
		          once ? "outcome unknown, not sent again (a CALL { "
		                 "... } IN TRANSACTIONS statement's chunks "
		                 "are not deduplicated by its request id: "
		                 "look at what it wrote before running it "
		                 "again): %s"
		               : "retries exhausted, outcome unknown (retry "
		                 "with the same request id): %s",
		          m);
		return LORA_EUNKNOWN_OUTCOME;
	}
	if (r == LORA_RETRY_SAFE) {
		char m[LORA_ERRMSG_BYTES];
		snprintf(m, sizeof(m), "%s", e ? e->message : "");
		set_error(e, LORA_EUNAVAILABLE, NULL,
		          "no leader reachable, not executed: %s", m);
		return LORA_EUNAVAILABLE;
	}
	return rv;
}

struct call_state {
	uint64_t deadline_ms;
	int attempts;
	int sent_ever;
	uint64_t sent_ms; /* when the last attempt was sent */
	/* in: once it may have run, never sent again (a CALL { ... } IN
	 * TRANSACTIONS statement: the chunks it committed carry no request
	 * id, so a second run would write them again; nodes do the same) */
	int once;
};

/*
 * Decides after a failed attempt at node i whether to try again; sleeps the
 * backoff when needed. Returns 1 to retry.
 */
static int should_retry(struct lora_client *c, struct call_state *st, int i,
                        int rv, int sent, const char *hint)
{
	enum lora_retry r = lora_retry_classify(rv, sent);
	if (r == LORA_RETRY_NO || (st->once && r == LORA_RETRY_SAME_ID))
		return 0;
	if (c->o.retry_budget_ms < 0 || lora_now_ms() >= st->deadline_ms)
		return 0;
	if (rv == LORA_ENOTLEADER && follow_hint(c, i, hint))
		return 1; /* go straight to the new leader */
	/* Any other retryable answer that names another node as the leader
	 * (a follower whose leader went silent, a deposed leader): the
	 * retry, with the same request id, goes there now, no backoff. */
	int named =
	    rv != LORA_ENOTLEADER && hint && hint[0] ? node_index(c, hint) : -1;
	if (named >= 0 && named != i) {
		c->leader = named;
		return 1;
	}
	if (rv != LORA_ENOTLEADER) {
		if (c->leader == i)
			c->leader = -1;
		c->cur = (i + 1) % (int)c->n;
	}
	int ms = lora_retry_backoff_ms(st->attempts, c->o.backoff_ms_min,
	                               c->o.backoff_ms_max, &c->rng);
	uint64_t left = st->deadline_ms - lora_now_ms();
	sleep_ms((uint64_t)ms < left ? ms : (int)left);
	return 1;
}

/*
 * Sends req until a final answer, following the retry policy. On 0, *out is
 * the response and *node the index of the node that answered.
 */
static int call_retrying(struct lora_client *c, const Lora__Request *req,
                         Lora__Response **out, int *node,
                         struct call_state *stp, struct lora_client_error *e)
{
	struct call_state st = {.once = stp ? stp->once : 0};
	st.deadline_ms =
	    lora_now_ms() +
	    (uint64_t)(c->o.retry_budget_ms > 0 ? c->o.retry_budget_ms : 0);
	for (;;) {
		int i = pick_node(c), sent = 0;
		Lora__Response *resp = NULL;
		st.sent_ms = lora_now_ms();
		int rv = node_call(c, i, req, &resp, &sent, e);
		st.attempts++;
		st.sent_ever |= sent;
		char hint[LORA_CLIENT_ADDR_BYTES] = "";
		/* the node's own error, not the transport's */
		int answered = 0;
		if (rv == 0 && resp->error) {
			rv = response_error(resp->error, e);
			snprintf(hint, sizeof(hint), "%s",
			         resp->leader_address);
			lora__response__free_unpacked(resp, &lora_pb_allocator);
			resp = NULL;
			answered = 1;
		}
		if (e)
			e->attempts = st.attempts;
		/* An IN TRANSACTIONS statement the node stopped at its time
		 * limit ran, and keeps the chunks it committed: its
		 * LORA_TIMEOUT is the answer. (Other statements keep the
		 * retry: a node also answers LORA_TIMEOUT for a read it never
		 * ran, waiting for a bookmark or a leader's confirmation.) */
		if (answered && st.once && rv == LORA_ETIMEOUT)
			return rv;
		if (rv == 0) {
			*out = resp;
			*node = i;
			if (stp)
				*stp = st;
			return 0;
		}
		if (!should_retry(c, &st, i, rv, sent, hint))
			return give_up(rv, st.sent_ever, st.once, e);
	}
}

/* ---- public calls ------------------------------------------------------ */

static Lora__Consistency wire_consistency(enum lora_consistency k)
{
	switch (k) {
	case LORA_CONSISTENCY_BOOKMARK:
		return LORA__CONSISTENCY__CONSISTENCY_BOOKMARK;
	case LORA_CONSISTENCY_LINEARIZABLE:
		return LORA__CONSISTENCY__CONSISTENCY_LINEARIZABLE;
	default:
		return LORA__CONSISTENCY__CONSISTENCY_LOCAL;
	}
}

/* The cursor name of resp (rows remain while it has one). */
static void take_cursor(struct lora_result *r, const Lora__Response *resp)
{
	int ok = resp->has_more && resp->cursor.len > 0 &&
	         resp->cursor.len <= sizeof r->cursor;
	if (ok) {
		memcpy(r->cursor, resp->cursor.data, resp->cursor.len);
		r->cursor_len = resp->cursor.len;
	}
	r->has_more = ok;
}

static int result_new(struct lora_client *c, Lora__Response *resp, int node,
                      uint32_t batch_rows, struct lora_result **out)
{
	struct lora_result *r = lora_calloc(1, sizeof(*r));
	if (r == NULL) {
		lora__response__free_unpacked(resp, &lora_pb_allocator);
		return LORA_ENOMEM;
	}
	r->c = c;
	r->node = node;
	r->resp = resp;
	take_cursor(r, resp);
	r->batch_rows = batch_rows;
	snprintf(r->bookmark, sizeof(r->bookmark), "%s", resp->bookmark);
	note_bookmark(c, resp->bookmark);
	*out = r;
	return 0;
}

int lora_client_run(struct lora_client *c, const struct lora_query *q,
                    struct lora_result **out, struct lora_client_error *e)
{
	LORA_ASSERT(c != NULL && q != NULL && out != NULL);
	if (q->query == NULL) {
		set_error(e, LORA_EINVAL, NULL, "no query text");
		return LORA_EINVAL;
	}
	char id[LORA_CLIENT_REQUEST_ID_BYTES];
	if (q->request_id)
		snprintf(id, sizeof(id), "%s", q->request_id);
	else
		next_request_id(c, id, sizeof(id));
	Lora__RunRequest run = LORA__RUN_REQUEST__INIT;
	run.query = (char *)q->query;
	run.params = (Lora__Param **)q->params;
	run.n_params = q->n_params;
	run.consistency = wire_consistency(q->consistency);
	const char *bm = q->bookmark ? q->bookmark : c->bookmark;
	if (q->consistency == LORA_CONSISTENCY_BOOKMARK)
		run.bookmark = (char *)bm;
	run.request_id = id;
	run.batch_rows = q->batch_rows;
	run.mode = q->mode > 0 && q->mode <= 2 ? (uint32_t)q->mode : 0;
	run.time_ms = q->time_ms;
	run.redirect = c->o.route == LORA_ROUTE_LEADER;
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_RUN;
	req.run = &run;
	Lora__Response *resp = NULL;
	int node = 0;
	struct call_state st = {
	    .once = lora_says_transactions(q->query, strlen(q->query))};
	/* sent once: it carries a limit (the nodes' default unless given,
	 * so that the node stops it first) and the call waits that long */
	int keep = c->o.call_timeout_ms;
	if (st.once) {
		if (!run.time_ms)
			run.time_ms = LORA_CLIENT_LOAD_TIME_MS_DEFAULT;
		uint64_t w =
		    run.time_ms < INT32_MAX - LORA_CLIENT_LOAD_MARGIN_MS
		        ? run.time_ms + LORA_CLIENT_LOAD_MARGIN_MS
		        : INT32_MAX;
		if ((uint64_t)c->o.call_timeout_ms < w)
			c->o.call_timeout_ms = (int)w;
	}
	int rv = call_retrying(c, &req, &resp, &node, &st, e);
	c->o.call_timeout_ms = keep;
	if (rv)
		return rv;
	rv = result_new(c, resp, node, q->batch_rows, out);
	if (rv) {
		set_error(e, rv, NULL, "out of memory");
		return rv;
	}
	(*out)->attempts = st.attempts;
	(*out)->sent_ms = st.sent_ms;
	return 0;
}

int lora_client_status(struct lora_client *c, char **json_out,
                       struct lora_client_error *e)
{
	Lora__StatusRequest sr = LORA__STATUS_REQUEST__INIT;
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_STATUS;
	req.status = &sr;
	Lora__Response *resp = NULL;
	int node = 0;
	int rv = call_retrying(c, &req, &resp, &node, NULL, e);
	if (rv)
		return rv;
	*json_out = lora_strdup(resp->status_json);
	lora__response__free_unpacked(resp, &lora_pb_allocator);
	if (*json_out == NULL) {
		set_error(e, LORA_ENOMEM, NULL, "out of memory");
		return LORA_ENOMEM;
	}
	return 0;
}

const char *lora_client_bookmark(const struct lora_client *c)
{
	return c->bookmark;
}

const char *lora_client_leader(const struct lora_client *c)
{
	if (c->leader < 0)
		return NULL;
	return c->nodes[c->leader].url + strlen("tcp://");
}

size_t lora_client_node_count(const struct lora_client *c)
{
	return c->n;
}

const char *lora_client_node_address(const struct lora_client *c, size_t i)
{
	return i < c->n ? c->nodes[i].url : NULL;
}

/* ---- results ----------------------------------------------------------- */

size_t lora_result_columns(const struct lora_result *r)
{
	return r->resp->n_columns;
}

const char *lora_result_column(const struct lora_result *r, size_t i)
{
	return i < r->resp->n_columns ? r->resp->columns[i] : NULL;
}

const char *lora_result_bookmark(const struct lora_result *r)
{
	return r->bookmark;
}

const char *lora_result_node(const struct lora_result *r)
{
	return r->c->nodes[r->node].url + strlen("tcp://");
}

int lora_result_attempts(const struct lora_result *r)
{
	return r->attempts;
}

uint64_t lora_result_sent_ms(const struct lora_result *r)
{
	return r->sent_ms;
}

/* Replaces the current batch with the next one from the cursor's node. */
static int fetch_batch(struct lora_result *r, struct lora_client_error *e)
{
	Lora__FetchRequest fr = LORA__FETCH_REQUEST__INIT;
	fr.cursor.data = r->cursor;
	fr.cursor.len = r->cursor_len;
	fr.batch_rows = r->batch_rows;
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_FETCH;
	req.fetch = &fr;
	Lora__Response *resp = NULL;
	int sent = 0;
	/* No retry: the cursor lives on that node only. */
	int rv = node_call(r->c, r->node, &req, &resp, &sent, e);
	if (rv == 0 && resp->error) {
		rv = response_error(resp->error, e);
		lora__response__free_unpacked(resp, &lora_pb_allocator);
	}
	if (rv) {
		r->has_more = 0;
		return rv;
	}
	lora__response__free_unpacked(r->resp, &lora_pb_allocator);
	r->resp = resp;
	r->row = 0;
	take_cursor(r, resp);
	return 0;
}

int lora_result_next(struct lora_result *r, Lora__Value *const **row,
                     struct lora_client_error *e)
{
	*row = NULL;
	while (r->row >= r->resp->n_rows) {
		if (!r->has_more)
			return 0;
		int rv = fetch_batch(r, e);
		if (rv)
			return rv;
	}
	Lora__Row *rw = r->resp->rows[r->row++];
	if (rw->n_values < r->resp->n_columns) {
		set_error(e, LORA_ECORRUPT, NULL,
		          "row with %zu values for %zu columns", rw->n_values,
		          r->resp->n_columns);
		return LORA_ECORRUPT;
	}
	*row = rw->values;
	return 0;
}

const Lora__Value *lora_result_plan(const struct lora_result *r)
{
	return r->has_more || r->row < r->resp->n_rows ? NULL : r->resp->plan;
}

void lora_result_free(struct lora_result *r)
{
	if (r == NULL)
		return;
	if (r->has_more && r->cursor_len) {
		Lora__CloseRequest cr = LORA__CLOSE_REQUEST__INIT;
		cr.cursor.data = r->cursor;
		cr.cursor.len = r->cursor_len;
		Lora__Request req = LORA__REQUEST__INIT;
		req.kind_case = LORA__REQUEST__KIND_CLOSE;
		req.close = &cr;
		Lora__Response *resp = NULL;
		int sent = 0;
		if (node_call(r->c, r->node, &req, &resp, &sent, NULL) == 0)
			lora__response__free_unpacked(resp, &lora_pb_allocator);
	}
	lora__response__free_unpacked(r->resp, &lora_pb_allocator);
	lora_free(r);
}

/* ---- explicit transactions --------------------------------------------- */

struct lora_tx {
	struct lora_client *c;
	int node; /* every request of it goes there */
	char id[LORA_CLIENT_TX_ID_BYTES];
};

/* Raises c's call timeout to LORA_CLIENT_TX_CALL_MS_MIN; returns the
 * value to put back. */
static int tx_timeout_raise(struct lora_client *c)
{
	int keep = c->o.call_timeout_ms;
	if (c->o.call_timeout_ms < LORA_CLIENT_TX_CALL_MS_MIN)
		c->o.call_timeout_ms = LORA_CLIENT_TX_CALL_MS_MIN;
	return keep;
}

int lora_tx_begin(struct lora_client *c, int read_only, uint32_t timeout_ms,
                  struct lora_tx **out, struct lora_client_error *e)
{
	LORA_ASSERT(c != NULL && out != NULL);
	*out = NULL;
	Lora__BeginRequest b = LORA__BEGIN_REQUEST__INIT;
	b.read_only = read_only != 0;
	b.timeout_ms = timeout_ms;
	if (read_only && c->bookmark[0])
		b.bookmark = c->bookmark; /* read what this client wrote */
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_BEGIN;
	req.begin = &b;
	Lora__Response *resp = NULL;
	int node = 0, keep = tx_timeout_raise(c);
	int rv = call_retrying(c, &req, &resp, &node, NULL, e);
	c->o.call_timeout_ms = keep;
	if (rv)
		return rv;
	struct lora_tx *t = lora_calloc(1, sizeof(*t));
	if (t == NULL || resp->tx == NULL ||
	    strlen(resp->tx) >= sizeof(t->id)) {
		rv = t ? LORA_ECORRUPT : LORA_ENOMEM;
		set_error(e, rv, NULL, "no transaction id in the answer");
		lora_free(t);
		lora__response__free_unpacked(resp, &lora_pb_allocator);
		return rv;
	}
	t->c = c;
	t->node = node;
	snprintf(t->id, sizeof(t->id), "%s", resp->tx);
	lora__response__free_unpacked(resp, &lora_pb_allocator);
	*out = t;
	return 0;
}

/* Sends req to t's node once: 0 with *out, or the error (a response's
 * error included; *sent says whether it may have arrived). */
static int tx_call(struct lora_tx *t, const Lora__Request *req,
                   Lora__Response **out, int *sent, struct lora_client_error *e)
{
	Lora__Response *resp = NULL;
	int keep = tx_timeout_raise(t->c);
	int rv = node_call(t->c, t->node, req, &resp, sent, e);
	t->c->o.call_timeout_ms = keep;
	if (rv == 0 && resp->error) {
		rv = response_error(resp->error, e);
		lora__response__free_unpacked(resp, &lora_pb_allocator);
		resp = NULL;
	}
	*out = resp;
	return rv;
}

int lora_tx_run(struct lora_tx *t, const struct lora_query *q,
                struct lora_result **out, struct lora_client_error *e)
{
	LORA_ASSERT(t != NULL && q != NULL && out != NULL);
	if (q->query == NULL) {
		set_error(e, LORA_EINVAL, NULL, "no query text");
		return LORA_EINVAL;
	}
	Lora__RunRequest run = LORA__RUN_REQUEST__INIT;
	run.query = (char *)q->query;
	run.params = (Lora__Param **)q->params;
	run.n_params = q->n_params;
	run.tx = t->id;
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_RUN;
	req.run = &run;
	Lora__Response *resp = NULL;
	int sent = 0;
	int rv = tx_call(t, &req, &resp, &sent, e);
	if (rv)
		return rv;
	rv = result_new(t->c, resp, t->node, 0, out);
	if (rv)
		set_error(e, rv, NULL, "out of memory");
	return rv;
}

/* Commit (1) or rollback (0) of t; frees t. */
static int tx_end(struct lora_tx *t, int commit, struct lora_client_error *e)
{
	Lora__CommitRequest cr = LORA__COMMIT_REQUEST__INIT;
	Lora__RollbackRequest rr = LORA__ROLLBACK_REQUEST__INIT;
	Lora__Request req = LORA__REQUEST__INIT;
	if (commit) {
		cr.tx = t->id;
		req.kind_case = LORA__REQUEST__KIND_COMMIT;
		req.commit = &cr;
	} else {
		rr.tx = t->id;
		req.kind_case = LORA__REQUEST__KIND_ROLLBACK;
		req.rollback = &rr;
	}
	Lora__Response *resp = NULL;
	int sent = 0;
	int rv = tx_call(t, &req, &resp, &sent, e);
	if (commit && sent && (rv == LORA_ECLOSED || rv == LORA_ETIMEOUT)) {
		char m[LORA_ERRMSG_BYTES];
		snprintf(m, sizeof(m), "%s", e ? e->message : "");
		set_error(e, LORA_EUNKNOWN_OUTCOME, NULL,
		          "the commit was sent, its answer lost: %s", m);
		rv = LORA_EUNKNOWN_OUTCOME;
	}
	if (rv == 0) {
		note_bookmark(t->c, resp->bookmark);
		lora__response__free_unpacked(resp, &lora_pb_allocator);
	}
	lora_free(t);
	return rv;
}

int lora_tx_commit(struct lora_tx *t, struct lora_client_error *e)
{
	LORA_ASSERT(t != NULL);
	return tx_end(t, 1, e);
}

void lora_tx_rollback(struct lora_tx *t)
{
	if (t)
		tx_end(t, 0, NULL);
}

const char *lora_tx_id(const struct lora_tx *t)
{
	return t->id;
}

/* ---- the change stream ------------------------------------------------- */

#define CHANGES_WAIT_MS 5000 /* a poll waits on the server for an event */

/* Splits a comma-separated list into out (lora_strdup'ed pieces, freed
 * with names_free); 0 or LORA_ENOMEM. */
static int names_split(const char *list, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ",");
		char **grown = lora_realloc(*out, (*n + 1) * sizeof(char *));
		if (grown == NULL)
			return LORA_ENOMEM;
		*out = grown;
		char *s = lora_malloc(len + 1);
		if (s == NULL)
			return LORA_ENOMEM;
		memcpy(s, p, len);
		s[len] = 0;
		(*out)[(*n)++] = s;
		p += len + (p[len] == ',');
	}
	return 0;
}

static void names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lora_free(v[i]);
	lora_free(v);
}

/* Hands resp's events after *from to fn; 1 when fn said stop or until
 * was reached. */
static int changes_deliver(const Lora__Response *resp, uint64_t until,
                           uint64_t *from, lora_change_fn fn, void *arg)
{
	for (size_t i = 0; i < resp->n_events && i < resp->n_event_index; i++) {
		uint64_t ix = resp->event_index[i];
		if (ix <= *from)
			continue; /* seen before a reconnect */
		*from = ix;
		if (fn(arg, ix, resp->events[i]))
			return 1;
	}
	uint64_t bm = strtoull(resp->bookmark ? resp->bookmark : "", NULL, 10);
	if (bm > *from)
		*from = bm;
	return until && *from >= until;
}

int lora_client_changes(struct lora_client *c,
                        const struct lora_changes_opts *o, lora_change_fn fn,
                        void *arg, struct lora_client_error *e)
{
	LORA_ASSERT(c != NULL && o != NULL && fn != NULL);
	Lora__ChangesRequest q = LORA__CHANGES_REQUEST__INIT;
	int rv = names_split(o->labels, &q.labels, &q.n_labels);
	if (rv == 0)
		rv = names_split(o->types, &q.types, &q.n_types);
	char from[LORA_CLIENT_BOOKMARK_BYTES],
	    until[LORA_CLIENT_BOOKMARK_BYTES];
	snprintf(from, sizeof(from), "%s", o->from ? o->from : "");
	snprintf(until, sizeof(until), "%" PRIu64, o->until);
	q.until = o->until ? until : (char *)"";
	q.wait_ms = CHANGES_WAIT_MS;
	uint64_t at = strtoull(from, NULL, 10);
	int keep = c->o.call_timeout_ms;
	if (c->o.call_timeout_ms < CHANGES_WAIT_MS + 5000)
		c->o.call_timeout_ms = CHANGES_WAIT_MS + 5000;
	for (int stop = 0; rv == 0 && !stop;) {
		q.from = from;
		Lora__Request req = LORA__REQUEST__INIT;
		req.kind_case = LORA__REQUEST__KIND_CHANGES;
		req.changes = &q;
		Lora__Response *resp = NULL;
		int node = 0;
		rv = call_retrying(c, &req, &resp, &node, NULL, e);
		if (rv)
			break;
		stop = changes_deliver(resp, o->until, &at, fn, arg);
		snprintf(from, sizeof(from), "%" PRIu64, at);
		lora__response__free_unpacked(resp, &lora_pb_allocator);
	}
	if (rv == LORA_ENOMEM)
		set_error(e, rv, NULL, "out of memory");
	c->o.call_timeout_ms = keep;
	names_free(q.labels, q.n_labels);
	names_free(q.types, q.n_types);
	return rv;
}
