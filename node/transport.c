/* transport.c - nng push/pull peer transport for Raft messages. */
#include "transport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "config.h"
#include "log.h"
#include "lora.h"

struct peer_conn {
	uint64_t id;
	char addr[NODE_ADDR_BYTES_MAX];
	nng_socket sock;
	int open;
};

struct node_transport {
	uint64_t self;
	char self_host[NODE_ADDR_BYTES_MAX];
	nng_socket pull;
	nng_aio *raio; /* the receive in flight (its callback handles it) */
	node_transport_recv_fn fn;
	void *arg;
	pthread_mutex_t mu;
	/* frames other than Raft messages (snapshot chunks write files,
	 * gossip may redial a peer): handled by a thread of ours, never on
	 * nng's callback thread */
	pthread_t side;
	int side_started, side_stop;
	pthread_mutex_t side_mu;
	pthread_cond_t side_cond;
	nng_msg *side_q[NODE_PEER_SIDE_QUEUE_MAX];
	size_t side_head, side_len;
	struct peer_conn peers[NODE_PEERS_MAX];
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

/*
 * A frame arrived: handed to fn right on nng's thread (no thread of ours
 * in between: raft frames go straight to the raft loop's inbox), then the
 * next receive is armed.
 */
static void deliver(struct node_transport *t, nng_msg *msg)
{
	size_t len = nng_msg_len(msg);
	const uint8_t *p = nng_msg_body(msg);
	if (len >= NODE_PEER_HEADER_BYTES)
		t->fn(t->arg, p[0], lora_get_be64(p + 1),
		      p + NODE_PEER_HEADER_BYTES, len - NODE_PEER_HEADER_BYTES);
	nng_msg_free(msg);
}

/* Queues a non-Raft frame for the side thread (dropped when the queue is
 * full: snapshots are resent, gossip repeats). */
static void side_post(struct node_transport *t, nng_msg *msg)
{
	pthread_mutex_lock(&t->side_mu);
	int full = t->side_len >= NODE_PEER_SIDE_QUEUE_MAX || t->side_stop;
	if (!full) {
		t->side_q[(t->side_head + t->side_len++) %
		          NODE_PEER_SIDE_QUEUE_MAX] = msg;
		pthread_cond_signal(&t->side_cond);
	}
	pthread_mutex_unlock(&t->side_mu);
	if (full)
		nng_msg_free(msg);
}

static void *side_main(void *arg)
{
	struct node_transport *t = arg;
	pthread_setname_np(pthread_self(), "lora-peer-side");
	pthread_mutex_lock(&t->side_mu);
	for (;;) {
		while (t->side_len == 0 && !t->side_stop)
			pthread_cond_wait(&t->side_cond, &t->side_mu);
		if (t->side_len == 0)
			break;
		nng_msg *msg = t->side_q[t->side_head];
		t->side_head = (t->side_head + 1) % NODE_PEER_SIDE_QUEUE_MAX;
		t->side_len--;
		pthread_mutex_unlock(&t->side_mu);
		deliver(t, msg);
		pthread_mutex_lock(&t->side_mu);
	}
	pthread_mutex_unlock(&t->side_mu);
	return NULL;
}

static void on_recv(void *arg)
{
	struct node_transport *t = arg;
	int rv = nng_aio_result(t->raio);
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (rv == 0) {
		nng_msg *msg = nng_aio_get_msg(t->raio);
		const uint8_t *p = nng_msg_body(msg);
		if (nng_msg_len(msg) > 0 && p[0] != NODE_FRAME_RAFT)
			side_post(t, msg);
		else
			deliver(t, msg);
	}
	nng_recv_aio(t->pull, t->raio);
}

void node_transport_stop_recv(struct node_transport *t)
{
	if (t == NULL || t->raio == NULL)
		return;
	nng_close(t->pull);
	nng_aio_stop(t->raio); /* waits for a running callback */
	nng_aio_free(t->raio);
	t->raio = NULL;
	pthread_mutex_lock(&t->side_mu);
	t->side_stop = 1;
	pthread_cond_broadcast(&t->side_cond);
	pthread_mutex_unlock(&t->side_mu);
	if (t->side_started)
		pthread_join(t->side, NULL);
	t->side_started = 0;
	while (t->side_len > 0) {
		nng_msg_free(t->side_q[t->side_head]);
		t->side_head = (t->side_head + 1) % NODE_PEER_SIDE_QUEUE_MAX;
		t->side_len--;
	}
}

int node_transport_open(uint64_t self_id, const char *listen_addr,
                        node_transport_recv_fn fn, void *arg,
                        struct node_transport **out, char *errmsg)
{
	struct node_transport *t = lora_calloc(1, sizeof *t);
	if (t == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	t->self = self_id;
	t->fn = fn;
	t->arg = arg;
	node_addr_host(listen_addr, t->self_host, sizeof t->self_host);
	pthread_mutex_init(&t->mu, NULL);
	pthread_mutex_init(&t->side_mu, NULL);
	pthread_cond_init(&t->side_cond, NULL);
	char url[NODE_ADDR_BYTES_MAX + 16];
	snprintf(url, sizeof url, "tcp://%s", listen_addr);
	int rv = nng_pull0_open(&t->pull);
	if (rv == 0)
		rv = nng_socket_set_size(t->pull, NNG_OPT_RECVMAXSZ,
		                         NODE_PEER_MSG_BYTES_MAX);
	if (rv == 0)
		rv = nng_socket_set_int(t->pull, NNG_OPT_RECVBUF, 1024);
	if (rv == 0)
		rv = nng_listen(t->pull, url, NULL, 0);
	if (rv == 0)
		rv = nng_aio_alloc(&t->raio, on_recv, t);
	if (rv != 0) {
		lora_errf(LORA_EIO, errmsg, "listen %s: %s", url,
		          nng_strerror(rv));
		nng_close(t->pull);
		pthread_mutex_destroy(&t->mu);
		lora_free(t);
		return LORA_EIO;
	}
	t->side_started = pthread_create(&t->side, NULL, side_main, t) == 0;
	nng_recv_aio(t->pull, t->raio);
	*out = t;
	return 0;
}

static void peer_close(struct peer_conn *pc)
{
	if (pc->open)
		nng_close(pc->sock);
	memset(pc, 0, sizeof *pc);
}

void node_transport_close(struct node_transport *t)
{
	if (t == NULL)
		return;
	node_transport_stop_recv(t);
	for (int i = 0; i < NODE_PEERS_MAX; i++)
		peer_close(&t->peers[i]);
	pthread_mutex_destroy(&t->mu);
	lora_free(t);
}

/* Sets the dialer's local address to this node's host, port 0. */
static void dialer_set_local(struct node_transport *t, nng_dialer d)
{
	struct in_addr ia;
	if (inet_pton(AF_INET, t->self_host, &ia) != 1)
		return; /* a host name: let the OS choose */
	nng_sockaddr sa;
	memset(&sa, 0, sizeof sa);
	sa.s_in.sa_family = NNG_AF_INET;
	sa.s_in.sa_addr = ia.s_addr;
	sa.s_in.sa_port = 0;
	int rv = nng_dialer_set_addr(d, NNG_OPT_LOCADDR, &sa);
	if (rv != 0)
		LOG_WARN("peer dialer: cannot set local address %s: %s",
		         t->self_host, nng_strerror(rv));
}

static int peer_open(struct node_transport *t, struct peer_conn *pc,
                     char *errmsg)
{
	char url[NODE_ADDR_BYTES_MAX + 16];
	snprintf(url, sizeof url, "tcp://%s", pc->addr);
	nng_dialer d;
	int rv = nng_push0_open(&pc->sock);
	if (rv != 0)
		return lora_errf(LORA_EIO, errmsg, "push socket: %s",
		                 nng_strerror(rv));
	pc->open = 1;
	nng_socket_set_int(pc->sock, NNG_OPT_SENDBUF, NODE_PEER_SENDBUF_MSGS);
	nng_socket_set_ms(pc->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(pc->sock, NNG_OPT_RECONNMAXT, 500);
	rv = nng_dialer_create(&d, pc->sock, url);
	if (rv == 0) {
		dialer_set_local(t, d);
		rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	}
	if (rv != 0)
		return lora_errf(LORA_EIO, errmsg, "dial %s: %s", url,
		                 nng_strerror(rv));
	return 0;
}

int node_transport_set_peer(struct node_transport *t, uint64_t id,
                            const char *addr, char *errmsg)
{
	if (id == t->self)
		return 0;
	pthread_mutex_lock(&t->mu);
	struct peer_conn *slot = NULL;
	for (int i = 0; i < NODE_PEERS_MAX; i++)
		if (t->peers[i].id == id)
			slot = &t->peers[i];
	if (slot && strcmp(slot->addr, addr) == 0) {
		pthread_mutex_unlock(&t->mu);
		return 0;
	}
	if (slot)
		peer_close(slot);
	for (int i = 0; slot == NULL && i < NODE_PEERS_MAX; i++)
		if (t->peers[i].id == 0)
			slot = &t->peers[i];
	int rc = 0;
	if (slot == NULL) {
		rc = lora_errf(LORA_ELIMIT, errmsg, "more than %d peers",
		               NODE_PEERS_MAX);
	} else {
		slot->id = id;
		snprintf(slot->addr, sizeof slot->addr, "%s", addr);
		rc = peer_open(t, slot, errmsg);
		if (rc)
			peer_close(slot);
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void node_transport_remove_peer(struct node_transport *t, uint64_t id)
{
	pthread_mutex_lock(&t->mu);
	for (int i = 0; i < NODE_PEERS_MAX; i++)
		if (t->peers[i].id == id)
			peer_close(&t->peers[i]);
	pthread_mutex_unlock(&t->mu);
}

static int send_frame(struct node_transport *t, uint64_t to, int kind,
                      const void *payload, size_t len, int timeout_ms)
{
	if (len + NODE_PEER_HEADER_BYTES > NODE_PEER_MSG_BYTES_MAX)
		return LORA_ELIMIT;
	nng_msg *msg;
	if (nng_msg_alloc(&msg, len + NODE_PEER_HEADER_BYTES) != 0)
		return LORA_ENOMEM;
	uint8_t *p = nng_msg_body(msg);
	p[0] = (uint8_t)kind;
	lora_put_be64(p + 1, t->self);
	if (len)
		memcpy(p + NODE_PEER_HEADER_BYTES, payload, len);
	int rc = LORA_EUNAVAILABLE;
	pthread_mutex_lock(&t->mu);
	nng_socket sock = NNG_SOCKET_INITIALIZER;
	for (int i = 0; i < NODE_PEERS_MAX; i++)
		if (t->peers[i].id == to && t->peers[i].open)
			sock = t->peers[i].sock;
	pthread_mutex_unlock(&t->mu);
	if (nng_socket_id(sock) > 0) {
		int rv;
		if (timeout_ms > 0) {
			nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, timeout_ms);
			rv = nng_sendmsg(sock, msg, 0);
		} else {
			rv = nng_sendmsg(sock, msg, NNG_FLAG_NONBLOCK);
		}
		if (rv == 0)
			return 0;
	}
	nng_msg_free(msg);
	return rc;
}

int node_transport_send(struct node_transport *t, uint64_t to, int kind,
                        const void *payload, size_t len)
{
	return send_frame(t, to, kind, payload, len, 0);
}

int node_transport_send_wait(struct node_transport *t, uint64_t to, int kind,
                             const void *payload, size_t len, int timeout_ms)
{
	return send_frame(t, to, kind, payload, len,
	                  timeout_ms > 0 ? timeout_ms : 1);
}
