/*
 * transport.h - peer transport on nng's byte-stream API (tcp://): every
 * node listens on its peer address and opens one outgoing stream per peer,
 * dialed from this node's own host (NNG_OPT_LOCADDR), so a fault test can
 * cut a node off by address.
 *
 * Wire format: the bytes of nng's SP-over-TCP with push0/pull0, so old and
 * new nodes (and tests/integration/snap_chunk_send) still talk: the dialer
 * opens with an 8-byte hello (0 'S' 'P' 0, protocol 0x0050 = push v0, 0 0),
 * the listener answers with the pull v0 header (0x0051); then each frame is
 * [8-byte big-endian length][1 byte kind][8 bytes sender id][payload].
 * A bad hello, a length over NODE_PEER_MSG_BYTES_MAX or under the header,
 * a stream whose frames name two different senders, or a frame that would
 * take the receive buffers of all inbound streams past
 * NODE_PEER_RECV_BYTES_MAX closes that connection (LOG_WARN, at most one
 * line a second), never the process. A frame's buffer grows as its bytes
 * arrive, not to the length announced. At most 64 inbound streams are
 * open, and NODE_PEERS_MAX + 4 (20) from one remote address. With peer TLS
 * the stream carries the same bytes inside mutual TLS 1.2 (what nng's
 * tls+tcp:// speaks), done here on plain tcp:// streams with mbedtls on
 * memory buffers (tls_peer.c): the handshake and the hello must end within
 * 5 s of the accept, a dial accepts only a certificate naming the peer id
 * dialed and no other (its one DNS subjectAltName lora-node-<id>, as the
 * listener wants: node_tls_crt_id), and the sender of an inbound stream's
 * frames must be the node its certificate names, else the stream is closed.
 * Without TLS the sender id is bound to the first frame of its stream only: the
 * receiver checks what it can (node/raftloop.c, status.c, snapshot.c;
 * docs/security.md).
 *
 * Sends never block: a frame is copied into the peer's bounded send buffer
 * (NODE_PEER_SENDBUF_MSGS frames, NODE_PEER_SENDBUF_BYTES_MAX bytes) and
 * everything buffered leaves in one stream send; when the peer is not
 * connected or the buffer is full the frame is dropped (Raft retries).
 * Dialers reconnect by themselves (50 ms backoff doubling to 100 ms), and
 * drop a connection to a peer gone silent (node_transport_set_silent_ms).
 */
#ifndef LORA_NODE_TRANSPORT_H
#define LORA_NODE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#define NODE_PEER_SIDE_QUEUE_MAX 1024        /* non-Raft frames waiting */
#define NODE_PEER_MSG_BYTES_MAX  (72u << 20) /* one frame, > one log entry */
#define NODE_PEER_SENDBUF_MSGS   256         /* queued frames per peer */
#define NODE_PEER_SENDBUF_BYTES_MAX                                            \
	(8u << 20) /* queued bytes per peer (a                                 \
	              lone frame may exceed it) */
/* NODE_FRAME_FWD and NODE_FRAME_FWD_ANS frames queue per peer within a
 * budget of their own, beside the one above (which counts only the other
 * frames, so passed-on writes never push Raft frames out; a lone frame
 * may exceed the bytes): more are refused LORA_EUNAVAILABLE, and a
 * follower then takes the HTTP or native way (peerfwd.h) */
#define NODE_PEER_FWD_SENDBUF_MSGS      64
#define NODE_PEER_FWD_SENDBUF_BYTES_MAX (4u << 20)
/* receive buffers of all inbound peer streams together: room for two
 * largest frames at once; a stream that would pass it is closed */
#define NODE_PEER_RECV_BYTES_MAX (160u << 20)
#define NODE_PEER_HEADER_BYTES   9
#define NODE_PEER_LEN_BYTES      8 /* the length before each frame */

enum node_frame_kind {
	NODE_FRAME_RAFT = 1,     /* proto RaftMessage */
	NODE_FRAME_SNAPSHOT = 2, /* proto SnapshotChunk */
	NODE_FRAME_INFO = 3,     /* gossip text, see status.c */
	NODE_FRAME_SNAP_ACK = 4, /* 8-byte snapshot index + 1 byte ok */
	NODE_FRAME_FWD = 5,      /* a passed-on write (peerfwd.h) */
	NODE_FRAME_FWD_ANS = 6,  /* its answer */
};

struct node_transport;

/* Raft and FWD frames: called on an nng thread; frames from one connection (one
 * peer) one at a time in arrival order, frames from different peers may be
 * delivered concurrently, so fn must be thread-safe for them. Other frames:
 * on the transport's side thread, one at a time, in arrival order among
 * themselves. payload borrowed for the call. */
typedef void (*node_transport_recv_fn)(void *arg, int kind, uint64_t from,
                                       const uint8_t *payload, size_t len);

struct node_tls;
/* Listens on host:port. tls (borrowed, copied; NULL or mode off: no
 * TLS) makes the listener and every dialer use mutual TLS (tls.h):
 * inbound peers must present a certificate from tls->ca, and a dial to
 * peer id accepts only a certificate naming "lora-node-<id>". On success
 * *out: node_transport_close(). */
int node_transport_open(uint64_t self_id, const char *listen_addr,
                        const struct node_tls *tls, node_transport_recv_fn fn,
                        void *arg, struct node_transport **out, char *errmsg);
/* Stops receiving: no frame is delivered after it returns (waits for a
 * running callback and the side thread). Idempotent. */
void node_transport_stop_recv(struct node_transport *t);
/* Stops receiving, closes sockets. */
void node_transport_close(struct node_transport *t);

/* Adds (or re-addresses) peer id; dialing starts in the background. */
int node_transport_set_peer(struct node_transport *t, uint64_t id,
                            const char *addr, char *errmsg);
void node_transport_remove_peer(struct node_transport *t, uint64_t id);

/* An inbound stream silent for ms is closed (default 15 s; a live peer
 * gossips every 100 ms). For tests; applies to receives armed after it. */
void node_transport_set_idle_ms(struct node_transport *t, int ms);

/* A peer that sent nothing for ms is lost: our stream to it is closed and
 * redialed and its stream to us closed; dials unanswered for ms / 4 are
 * retried afresh; peer sockets get TCP_USER_TIMEOUT 2 x ms and keepalive
 * (default 15 s; lorad sets 2 x election_ms). Also the inbound limit of
 * node_transport_set_idle_ms. */
void node_transport_set_silent_ms(struct node_transport *t, int ms);

/* Sends a frame (payload copied; never blocks): 0 when queued,
 * LORA_EUNAVAILABLE when dropped (peer unknown, not connected or its buffer
 * full), LORA_ELIMIT when header + payload exceed NODE_PEER_MSG_BYTES_MAX,
 * LORA_ENOMEM. */
int node_transport_send(struct node_transport *t, uint64_t to, int kind,
                        const void *payload, size_t len);

/* Like node_transport_send but waits up to timeout_ms for the peer to be
 * connected and have room (used for snapshot chunks, which must not be
 * dropped silently). */
int node_transport_send_wait(struct node_transport *t, uint64_t to, int kind,
                             const void *payload, size_t len, int timeout_ms);

#ifdef LORA_TEST_HOOKS
/* Tests (compiled with LORA_TEST_HOOKS only): while on is 1, a fresh
 * outgoing stream of a transport with peer TLS gets no TLS session, as if
 * its start had silently failed; such a stream must be dropped with
 * nothing sent on it, never written in clear. */
void node_transport_test_no_tls_session(int on);
#endif

/* Host part of host:port into out (out_bytes long). */
void node_addr_host(const char *addr, char *out, size_t out_bytes);
struct addrinfo;
/* getaddrinfo for TCP "host:port"; passive: for listening (host "" or
 * "*" is any address). 0 with *out (freeaddrinfo it), or -1. */
int node_addr_resolve(const char *addr, int passive, struct addrinfo **out);

#endif
