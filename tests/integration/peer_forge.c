/* peer_forge.c - test tool: a hostile peer that speaks lorad's peer protocol.
 *
 *   peer_forge ADDR SRC_IP CMD ARGS...
 *
 * connects from SRC_IP (its own address, as a stranger on the network
 * would) to the peer port ADDR (host:port), sends the dialer's hello, then:
 *
 *   heartbeat FRAME_FROM MSG_FROM TO TERM
 *        a Raft heartbeat (commit 0) in a frame that names FRAME_FROM as
 *        its sender while the message names MSG_FROM
 *   append FROM TO TERM INDEX LOG_TERM
 *        an append of one entry at INDEX + 1 (term TERM) that creates a
 *        node labelled Injected, with commit INDEX + 1
 *   chunk FROM TERM INDEX FILE BYTES LAST
 *        a SnapshotChunk of snapshot INDEX (voters 1, 2, 3), file FILE at
 *        offset 0, BYTES bytes of "garbage\n" repeated, last = LAST (0/1)
 *   gossip FROM PEER_ADDR
 *        a gossip frame in which node FROM says its peer address is
 *        PEER_ADDR
 *   huge FROM BYTES HOLD_MS
 *        announces a frame of the largest length allowed, sends BYTES of
 *        it, then keeps the connection HOLD_MS
 *   conns N HOLD_MS
 *        opens N connections (each with the hello) and holds them HOLD_MS;
 *        prints how many were still open at the end
 *
 * Every frame is [be64 length][kind][be64 sender][payload]
 * (node/transport.h). Exits 0 when everything was written.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lora.h"
#include "lora_pb.h"

#define FORGE_KIND_RAFT      1
#define FORGE_KIND_SNAPSHOT  2
#define FORGE_KIND_INFO      3
#define FORGE_FRAME_MAX      (72ull << 20) /* NODE_PEER_MSG_BYTES_MAX */
#define FORGE_CONNS_MAX      256
#define FORGE_LINGER_MS      300
#define FORGE_INJECTED_ID    987654321
#define FORGE_SEND_TIMEOUT_S 20

static const uint8_t hello[8] = {0, 'S', 'P', 0, 0, 0x50, 0, 0};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int dial(const char *addr, const char *src)
{
	char host[128];
	snprintf(host, sizeof host, "%s", addr);
	char *colon = strrchr(host, ':');
	if (colon == NULL)
		return -1;
	*colon = '\0';
	struct sockaddr_in to = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)atoi(colon + 1))};
	struct sockaddr_in from = {.sin_family = AF_INET};
	if (inet_pton(AF_INET, host, &to.sin_addr) != 1 ||
	    inet_pton(AF_INET, src, &from.sin_addr) != 1)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	/* a node that stops reading without closing must not hang the test */
	struct timeval tv = {FORGE_SEND_TIMEOUT_S, 0};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (bind(fd, (struct sockaddr *)&from, sizeof from) != 0 ||
	    connect(fd, (struct sockaddr *)&to, sizeof to) != 0 ||
	    write(fd, hello, sizeof hello) != (ssize_t)sizeof hello) {
		close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;
	while (len > 0) {
		ssize_t k = write(fd, b, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		b += k;
		len -= (size_t)k;
	}
	return 0;
}

static int send_frame(int fd, int kind, uint64_t from, const uint8_t *payload,
                      size_t len)
{
	uint8_t head[17];
	lora_put_be64(head, 9 + len);
	head[8] = (uint8_t)kind;
	lora_put_be64(head + 9, from);
	return write_all(fd, head, sizeof head) || write_all(fd, payload, len)
	           ? -1
	           : 0;
}

/* Packs m and sends it as a Raft frame from frame_from. */
static int send_raft(int fd, uint64_t frame_from, const Lora__RaftMessage *m)
{
	size_t len = lora__raft_message__get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return -1;
	lora__raft_message__pack(m, buf);
	int rc = send_frame(fd, FORGE_KIND_RAFT, frame_from, buf, len);
	free(buf);
	return rc;
}

static uint64_t num(const char *s)
{
	return strtoull(s, NULL, 10);
}

static int cmd_heartbeat(int fd, char **a)
{
	Lora__RaftMessage m = LORA__RAFT_MESSAGE__INIT;
	m.type = 7; /* REP_MSG_HEARTBEAT */
	m.from = num(a[1]);
	m.to = num(a[2]);
	m.term = num(a[3]);
	return send_raft(fd, num(a[0]), &m);
}

/* The entry's data: a MutationBatch creating (:Injected {id}). */
static int cmd_append(int fd, char **a)
{
	char *labels[] = {"Injected"};
	Lora__CreateNode cn = LORA__CREATE_NODE__INIT;
	cn.id = FORGE_INJECTED_ID;
	cn.n_labels = 1;
	cn.labels = labels;
	Lora__Mutation mu = LORA__MUTATION__INIT;
	mu.op_case = LORA__MUTATION__OP_CREATE_NODE;
	mu.create_node = &cn;
	Lora__Mutation *mus[] = {&mu};
	Lora__MutationBatch b = LORA__MUTATION_BATCH__INIT;
	b.n_mutations = 1;
	b.mutations = mus;
	uint8_t data[256];
	size_t dlen = lora__mutation_batch__get_packed_size(&b);
	if (dlen > sizeof data)
		return -1;
	lora__mutation_batch__pack(&b, data);
	Lora__Entry e = LORA__ENTRY__INIT;
	e.index = num(a[3]) + 1;
	e.term = num(a[2]);
	e.type = LORA__ENTRY_TYPE__ENTRY_NORMAL;
	e.data.data = data;
	e.data.len = dlen;
	Lora__Entry *es[] = {&e};
	Lora__RaftMessage m = LORA__RAFT_MESSAGE__INIT;
	m.type = 1; /* REP_MSG_APP */
	m.from = num(a[0]);
	m.to = num(a[1]);
	m.term = num(a[2]);
	m.index = num(a[3]);
	m.log_term = num(a[4]);
	m.commit = e.index;
	m.n_entries = 1;
	m.entries = es;
	return send_raft(fd, m.from, &m);
}

static int cmd_chunk(int fd, char **a)
{
	uint64_t voters[3] = {1, 2, 3};
	Lora__ConfState conf = LORA__CONF_STATE__INIT;
	conf.n_voters = 3;
	conf.voters = voters;
	Lora__SnapshotMeta meta = LORA__SNAPSHOT_META__INIT;
	meta.index = num(a[2]);
	meta.term = 1;
	meta.conf = &conf;
	size_t bytes = (size_t)num(a[4]);
	uint8_t *data = malloc(bytes ? bytes : 1);
	if (data == NULL)
		return -1;
	for (size_t i = 0; i < bytes; i++)
		data[i] = (uint8_t) "garbage\n"[i % 8];
	Lora__SnapshotChunk c = LORA__SNAPSHOT_CHUNK__INIT;
	c.meta = &meta;
	c.file = a[3];
	c.data.data = data;
	c.data.len = bytes;
	c.last_of_file = 1;
	c.last = num(a[5]) != 0;
	c.term = num(a[1]);
	size_t len = lora__snapshot_chunk__get_packed_size(&c);
	uint8_t *buf = malloc(len);
	int rc = -1;
	if (buf != NULL) {
		lora__snapshot_chunk__pack(&c, buf);
		rc = send_frame(fd, FORGE_KIND_SNAPSHOT, num(a[0]), buf, len);
	}
	free(buf);
	free(data);
	return rc;
}

static int cmd_gossip(int fd, char **a)
{
	char text[512];
	int n = snprintf(text, sizeof text,
	                 "%s %s 127.0.0.254:4747 127.0.0.254:4748 leader "
	                 "999 999 999",
	                 a[0], a[1]);
	return send_frame(fd, FORGE_KIND_INFO, num(a[0]), (uint8_t *)text,
	                  (size_t)n);
}

static int cmd_huge(int fd, char **a)
{
	uint8_t head[17];
	lora_put_be64(head, FORGE_FRAME_MAX);
	head[8] = FORGE_KIND_RAFT;
	lora_put_be64(head + 9, num(a[0]));
	if (write_all(fd, head, sizeof head) != 0)
		return -1;
	size_t left = (size_t)num(a[1]);
	static uint8_t zeros[1 << 16];
	while (left > 0) {
		size_t k = left < sizeof zeros ? left : sizeof zeros;
		if (write_all(fd, zeros, k) != 0)
			return 0; /* the node closed it: fine, that is a refusal
			           */
		left -= k;
	}
	sleep_ms((long)num(a[2]));
	return 0;
}

/* 1 while the peer has not closed fd. */
static int still_open(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint8_t b[64];
	while (poll(&p, 1, 0) == 1) {
		ssize_t k = recv(fd, b, sizeof b, MSG_DONTWAIT);
		if (k <= 0)
			return 0;
	}
	return 1;
}

static int cmd_conns(const char *addr, const char *src, char **a)
{
	int n = (int)num(a[0]);
	if (n > FORGE_CONNS_MAX)
		n = FORGE_CONNS_MAX;
	int fds[FORGE_CONNS_MAX];
	for (int i = 0; i < n; i++)
		fds[i] = dial(addr, src);
	sleep_ms((long)num(a[1]));
	int open_n = 0;
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) {
			open_n += still_open(fds[i]);
			close(fds[i]);
		}
	printf("%d\n", open_n);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int args;
		int (*fn)(int, char **);
	} cmds[] = {{"heartbeat", 4, cmd_heartbeat},
	            {"append", 5, cmd_append},
	            {"chunk", 6, cmd_chunk},
	            {"gossip", 2, cmd_gossip},
	            {"huge", 3, cmd_huge}};
	if (argc >= 6 && !strcmp(argv[3], "conns"))
		return cmd_conns(argv[1], argv[2], argv + 4);
	for (size_t i = 0; argc >= 4 && i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(argv[3], cmds[i].name) != 0)
			continue;
		if (argc != 4 + cmds[i].args)
			break;
		int fd = dial(argv[1], argv[2]);
		if (fd < 0) {
			fprintf(stderr, "connect %s from %s: %s\n", argv[1],
			        argv[2], strerror(errno));
			return 1;
		}
		int rc = cmds[i].fn(fd, argv + 4);
		sleep_ms(FORGE_LINGER_MS);
		close(fd);
		if (rc != 0)
			fprintf(stderr, "%s: send failed\n", argv[3]);
		return rc ? 1 : 0;
	}
	fprintf(stderr,
	        "usage: %s ADDR SRC_IP heartbeat|append|chunk|gossip|huge|"
	        "conns ARGS... (see the source)\n",
	        argv[0]);
	return 2;
}
