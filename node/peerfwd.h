/*
 * peerfwd.h - a follower passes a write to the leader over the peer
 * channel (node/transport.c) instead of a connection of its own to the
 * leader's HTTP or native port. Used for HTTP /query writes when the
 * node's peer_forward is on (off by default: each frame costs nng thread
 * hand-offs worth more CPU than the HTTP proxy's TLS records on the epoll
 * thread; docs/benchmarks.md "TLS, third round").
 *
 * The peer stream is already open, long-lived and, with peer TLS, mutually
 * authenticated; its frames are batched with the Raft traffic, so a
 * passed-on write costs no TLS records and no thread of its own. Frames:
 * NODE_FRAME_FWD [8-byte big-endian id][a native Request, as forward.c
 * packs it: the caller's user and role, and the cluster secret as proof
 * when auth is on] to the leader, NODE_FRAME_FWD_ANS [id][Response] back.
 * Ids start at a random 64-bit value in each process, so an answer the
 * leader sends after the follower restarted finds no job of the new run.
 * An answer too large for one frame after the write committed is sent
 * without its rows, with has_more set and no cursor (HTTP says
 * "rowsOmitted": true beside the bookmark).
 *
 * The leader's transport thread only queues the frame (at most
 * NODE_PFWD_QUEUE_MAX frames and NODE_PFWD_QUEUE_BYTES_MAX bytes, more are
 * refused LORA_UNAVAILABLE); its peer-forward server thread decodes it and
 * checks the sender is a member, the proof (auth on), that it
 * still leads (else LORA_UNAVAILABLE: not executed), and the caller's role
 * (node_exec_allowed; the lower of the role the follower sent and the
 * user's role on the leader now, node_auth_current_role) before the
 * writer runs the write (node_write_async);
 * at most NODE_PFWD_SERVING_MAX such writes are in its writer at once (more
 * are refused LORA_UNAVAILABLE, "busy").
 *
 * The follower's semantics are those of proxy.c and forward.c: an answer
 * LORA_UNAVAILABLE (certainly not executed) is sent again to whoever leads
 * until NODE_FORWARD_SEND_MS; once sent, a write that may be resent
 * (node_may_resend: a requestId) follows a leader change, and one that may
 * not answers LORA_UNKNOWN_OUTCOME once its leader was silent for an
 * election timeout (node_forward_check); LORA_UNKNOWN_OUTCOME too when no
 * answer came within the wait the caller gives (an answer lost on a full
 * or reconnecting stream ends this way; test hook: the environment
 * variable LORA_TEST_PFWD_DROP_ANSWER=N makes a leader drop its Nth
 * answer). No thread polls: one
 * watcher thread per node waits on the node's status condition (woken by
 * any leader or term change) with the earliest deadline of the writes in
 * flight, and answers wake nothing but the caller's callback.
 */
#ifndef LORA_NODE_PEERFWD_H
#define LORA_NODE_PEERFWD_H

#include <stddef.h>
#include <stdint.h>

#include "client.pb-c.h"

#define NODE_PFWD_PENDING_MAX 1024 /* this node's writes awaiting answers */
#define NODE_PFWD_SERVING_MAX 4096 /* the leader's writes from peers */
#define NODE_PFWD_RETRY_MS    50   /* unsent: tried again this often */
#define NODE_PFWD_SEND_MS     3000 /* until a leader takes it */
/* the leader's peers' writes waiting for its server thread (frames, and
 * their bytes; a lone frame may exceed them): more are refused
 * LORA_UNAVAILABLE */
#define NODE_PFWD_QUEUE_MAX       256
#define NODE_PFWD_QUEUE_BYTES_MAX (16u << 20)
/* NODE_FRAME_FWD's request bytes at most: larger writes take the HTTP or
 * native path (a frame must stay far below NODE_PEER_MSG_BYTES_MAX) */
#define NODE_PFWD_REQUEST_BYTES_MAX (1u << 20)

struct lnode;
struct node_exec_req;
struct node_pfwd_job;

/* The outcome, called exactly once, on a transport, watcher or the
 * caller's thread, never under a lock of peerfwd: rc 0 with resp (the
 * leader's answer, or an error answer LORA_UNAVAILABLE /
 * LORA_UNKNOWN_OUTCOME made here), or NODE_FORWARD_SELF with resp NULL
 * when this node leads now or the first send failed (the caller runs the
 * write another way: nothing was executed unless a copy was sent with a
 * requestId, which dedupe then finds). resp is the callee's: free it with
 * lora__response__free_unpacked(resp, &lora_pb_allocator). */
typedef void (*node_pfwd_fn)(void *arg, int rc, Lora__Response *resp);

/* A write req (borrowed for the call: packed now) to pass to the current
 * leader, waiting up to wait_ms for its answer once sent; resend: it may
 * be sent again (node_may_resend). NULL when it cannot go this way (no
 * other leader known, auth's proof not applied yet, too large, too many
 * waiting, out of memory): nothing was taken. Else node_pfwd_go. */
struct node_pfwd_job *node_pfwd_new(struct lnode *n,
                                    const struct node_exec_req *req, int resend,
                                    uint64_t wait_ms, node_pfwd_fn fn,
                                    void *arg);
/* Sends j; fn reports the outcome (j is peerfwd's from here on). */
void node_pfwd_go(struct node_pfwd_job *j);

/* Transport thread: a NODE_FRAME_FWD or NODE_FRAME_FWD_ANS frame from
 * peer `from` (payload borrowed for the call). */
void node_pfwd_on_frame(struct lnode *n, int kind, uint64_t from,
                        const uint8_t *payload, size_t len);

/* Node stop, after the transport stopped receiving and before the HTTP
 * server stops: every write still waiting is answered (LORA_UNAVAILABLE
 * when never sent, else LORA_UNKNOWN_OUTCOME) and the watcher ends. */
void node_pfwd_stop(struct lnode *n);
/* After every server stopped: frees what node_pfwd_stop left. */
void node_pfwd_free(struct lnode *n);

#endif
