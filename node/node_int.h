/*
 * node_int.h - private to node/: the running node and the calls between its
 * threads.
 *
 * Threads and what they own:
 *   raft loop   the Raft core (struct rep) and the log store (sto_log);
 *               everything else talks to it through call items in its
 *               inbox (node_raft_call) and peer messages.
 *   apply loop  sto_apply on the state store, in log order; wakes waiters.
 *   writer      executes queued write statements on the leader and
 *               proposes their mutation batches (group commit).
 *   workers     HTTP and native requests (reads run right there).
 *   transport   receives peer frames and feeds the raft inbox.
 *   gossip      shares addresses and indexes with peers for /cluster/status.
 */
#ifndef LORA_NODE_INT_H
#define LORA_NODE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "applier.h"
#include "auth.h"
#include "config.h"
#include "lora.h"
#include "lora_pb.h"
#include "proxy.h"
#include "query.h"
#include "queue.h"
#include "raft.h"
#include "raftloop.h"
#include "snapshot.h"
#include "status.h"
#include "storage.h"
#include "transport.h"
#include "writer.h"

/* ---- limits ----------------------------------------------------------------
 */

#define NODE_INBOX_ITEMS_MAX 65536 /* raft loop inbox */
#define NODE_APPLY_QUEUE_ENTRIES_MAX                                           \
	16384                            /* committed entries not yet applied */
#define NODE_WAIT_TIMEOUT_MS      10000  /* bookmark / read-index waits */
#define NODE_DEDUP_ENTRIES_MAX    100000 /* remembered request ids */
#define NODE_REQUEST_ID_BYTES_MAX 256
#define NODE_BATCH_ROWS_DEFAULT   1000 /* native protocol first batch */
#define NODE_FORWARD_ALL_ROWS                                                  \
	0xffffffffu /* batch_rows of a forwarded write                         \
	             */
#define NODE_CHECKPOINTS_KEPT 2
/* The largest packed MutationBatch one statement (or one chunk of CALL {
 * } IN TRANSACTIONS) may make: one log entry (REP_ENTRY_BYTES_MAX) less
 * headroom for the other statements of its group and their request ids.
 * Larger is LORA_ELIMIT before anything is proposed. */
#define NODE_ENTRY_HEADROOM_BYTES (4u << 20)
#define NODE_BATCH_BYTES_MAX      (REP_ENTRY_BYTES_MAX - NODE_ENTRY_HEADROOM_BYTES)
/* A group takes no more statements once its batches pack to more than
 * this: with one more of at most NODE_BATCH_BYTES_MAX it still fits. */
#define NODE_GROUP_BYTES_SOFT (2u << 20)

/* ---- a one-shot rendezvous between two threads -----------------------------
 */

struct node_call {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int done;
	int rc;
	char errmsg[LORA_ERRMSG_BYTES];
	uint64_t index, term, leader; /* results, per call kind */
};
void node_call_init(struct node_call *c);
void node_call_destroy(struct node_call *c);
void node_call_finish(struct node_call *c, int rc, uint64_t index,
                      uint64_t term);
/* Waits until finished (its rc) or timeout_ms passed (LORA_ETIMEOUT;
 * < 0: no limit), on the CLOCK_MONOTONIC clock. */
int node_call_wait(struct node_call *c, int timeout_ms);

/* ---- members known to this node ---------------------------------------------
 */

/* struct node_member: status.h */

/* ---- the node
 * ---------------------------------------------------------------- */

struct node_inbox_item;
struct node_writer;
struct node_snap_recv;
struct node_metrics;
struct node_native;
struct node_http;
struct node_bolt;
struct node_exec_req;
struct node_raft_priv;

struct lnode {
	struct node_config cfg;
	char state_dir[NODE_PATH_BYTES_MAX + 16];
	char log_dir[NODE_PATH_BYTES_MAX + 16];
	char ckpt_dir[NODE_PATH_BYTES_MAX + 16];
	atomic_int stopping;

	/* state store; swapped when a snapshot is installed */
	struct sto_store *store;
	pthread_mutex_t store_mu;
	pthread_cond_t store_cond;
	int store_readers;
	int store_swapping;

	struct node_raft *raft; /* the raft loop (raftloop.h); owned */
	/* writes passed to the leader over the peer channel (peerfwd.h);
	 * made on first use, freed by node_pfwd_free */
	struct node_pfwd *pfwd;

	/* published raft state (status_mu) */
	pthread_mutex_t status_mu;
	struct rep_status rs;
	/* status_seq counts changes of rs's role, leader or term; status_cond
	 * (CLOCK_MONOTONIC) is broadcast with each (node_status_wait) */
	uint64_t status_seq;
	pthread_cond_t status_cond;
	uint64_t lead_barrier; /* leader: writes wait for applied >= this */
	/* the explicit transaction the writer serves now, for node_tx_wake
	 * (txn.c; tx_mu, taken before the transaction's own mutex) */
	pthread_mutex_t tx_mu;
	struct node_tx *tx_served;
	/* follower: who last sent us a leader's message (append, heartbeat,
	 * snapshot) and when (lora_now_ms); set by the raft loop, read by
	 * the forwarders to notice a silent leader (node_leader_heard) */
	atomic_uint_fast64_t leader_heard_id, leader_heard_ms;
	uint64_t leader_since_ms;

	/* members: addresses of everyone in the configuration (status_mu) */
	struct node_member members[NODE_PEERS_MAX];
	int n_members;

	/* the commit index the raft loop published last (read lock-free) */
	atomic_uint_fast64_t commit;

	/* apply loop (applier.h): owned, made before the raft loop starts */
	struct node_applier *apply;

	/* memory of running statements, shared by all of them
	 * (query_memory_bytes); every cursor opened in node/ charges it */
	struct qry_budget qry_budget;

	struct node_writer *writer;
	struct node_transport *transport;
	struct node_snap_recv *snap_recv;
	struct node_metrics *metrics;
	struct node_native *native;
	struct node_http *http;
	/* follower's HTTP writes to the leader (proxy.h): owned, made before
	 * the raft loop starts (it kicks the waiting writes on a change) */
	struct node_proxy *proxy;
	struct node_bolt *bolt;
	struct node_auth *auth; /* users, tokens (auth.c) */

	struct node_gossiper *gossip; /* status.h; owned */
};

/* ---- lifecycle (node.c)
 * ------------------------------------------------------ */

int lnode_open(const struct node_config *cfg, struct lnode **out, char *errmsg);
/* For tests of the apply loop alone: the directories, the state store and
 * the apply loop, no raft loop, transport, writer or servers; entries come
 * in through node_apply_enqueue. Closed with lnode_close. */
int lnode_open_apply_only(const struct node_config *cfg, struct lnode **out,
                          char *errmsg);
/* For tests of the raft loop without a transport: lnode_open_apply_only
 * plus the raft loop, whose frames go through net (copied; its arg must
 * outlive the node) and come in through node_raft_on_frame(n, ...). No
 * writer, gossip or servers; snapshots cannot be sent. */
int lnode_open_raft_only(const struct node_config *cfg,
                         const struct node_raft_net *net, struct lnode **out,
                         char *errmsg);
/* Graceful: transfers leadership when leader, then stops all threads. */
void lnode_close(struct lnode *n);

/* Holds the state store for reading (views); never across a raft call. */
struct sto_store *node_store_acquire(struct lnode *n);
void node_store_release(struct lnode *n);
/* The same without waiting: NULL (nothing to release) while the store is
 * being swapped (a snapshot install). */
struct sto_store *node_store_try_acquire(struct lnode *n);
/* Waits until no reader holds the store, closes it and keeps everyone
 * out (n->store is NULL, store_mu held) until node_store_exclusive_end;
 * the caller sets n->store to the store it opened meanwhile. */
void node_store_close_exclusive(struct lnode *n);
void node_store_exclusive_end(struct lnode *n);
/* The disk guard: 0 when dir has at least reserve + bytes free (or statvfs
 * cannot tell), else LORA_ENOSPC with a message naming dir. Counts bytes
 * as written when it answers 0. */
int node_space_check(struct node_space *sp, const char *dir, uint64_t reserve,
                     uint64_t bytes, char *err);

/* ---- raft loop (raftloop.c)
 * --------------------------------------------------- */

/* the raft loop's calls: raftloop.h */

/* raftconv.c */
int node_raft_msg_pack(const struct rep_msg *m, uint8_t **out, size_t *len);
int node_raft_msg_unpack(const uint8_t *p, size_t len, struct rep_msg *m,
                         Lora__RaftMessage **pb_out,
                         struct rep_entry **ents_out);
void node_raft_msg_release(Lora__RaftMessage *pb, struct rep_entry *ents);

/* Snapshot of the published status. */
void node_status_get(struct lnode *n, struct rep_status *st);
uint64_t node_leader_id(struct lnode *n);
/* The count of role, leader or term changes published so far. */
uint64_t node_status_seq(struct lnode *n);
/* Waits until that count differs from seen (taken with node_status_seq
 * before looking at the status) or deadline_ms (lora_now_ms time): 0 when
 * it changed, LORA_ETIMEOUT, or LORA_ECLOSED once the node stops. */
int node_status_wait(struct lnode *n, uint64_t seen, uint64_t deadline_ms);
int node_is_leader(struct lnode *n);
/* Copies member id's record; 0 when found. */
int node_member_get(struct lnode *n, uint64_t id, struct node_member *out);
void node_members_save(struct lnode *n);

/* ---- apply loop: applier.h (apply.c) */

/* ---- writes: writer.h (writer.c); what followers ask about them: */

/* How long a follower waits for the leader's answer to a write it passed
 * on (forward.c, proxy.c, the peer channel): NODE_FORWARD_WAIT_MS + T + S
 * + NODE_INTX_LAND_GRACE_MS, S being this node's statement_time_ms (the
 * most any write may take, on nodes configured alike) and T the lower
 * limit passed on with the write (time_ms, 0: none). The leader refuses
 * a write that reaches its writer past its T, counted from when it was
 * queued for the writer (unexecuted: whenever that answer comes, nothing
 * commits); otherwise the write runs by then and within its T, and its
 * answer waits for the rest of its group or proxy batch (writes queued
 * before it started, each running for at most S) and then at most
 * NODE_WRITE_TIMEOUT_MS for the commit; a load runs alone, its chunks in
 * flight landing within NODE_INTX_LAND_GRACE_MS past its T. That leaves a
 * plain write 7 s for the time it spends on this node before it is sent
 * and on the leader before its writer's queue. Not covered: a write that
 * waits longer before the queue (in this node's proxy queue behind
 * batches in flight, or on the leader for a free native or HTTP worker
 * while its writer is held, as native writes hold a worker until
 * answered): its clock starts late, and it may commit after this node
 * answered LORA_UNKNOWN_OUTCOME, as before. Until 2026-12-07 it was 12 s for
 * a write without IN TRANSACTIONS (review s23-a F6, s24-a F2: a write
 * running longer answered LORA_UNKNOWN_OUTCOME while the leader went on
 * and committed it). A leader change, a connection to the leader that
 * breaks, and the leader's silence (node_forward_check) end the wait at
 * once. */
#define NODE_FORWARD_WAIT_MS (NODE_WRITE_TIMEOUT_MS + 2000)
uint64_t node_forward_wait_ms(const struct lnode *n, uint64_t time_ms);
/* Whether a follower may send a write it passed on to a new leader again:
 * it has a request id (dedupe applies it once) and is not CALL { } IN
 * TRANSACTIONS (its committed chunks carry no request id: run again,
 * they would apply twice; such a write answers UNKNOWN_OUTCOME). */
int node_may_resend(const char *request_id, const char *bytes, size_t len);

/* ---- explicit write transactions (txn.c) ------------------------------------
 */

#define NODE_TX_IDLE_MS     10000 /* between requests, by default */
#define NODE_TX_IDLE_MS_MAX 60000 /* what a client may ask for */
/* a write transaction holds the writer (every other write waits): it
 * ends this long after the writer took it up, however busy */
#define NODE_TX_LIFE_MS_MAX   60000
#define NODE_TX_BEGIN_WAIT_MS 10000 /* for the writer (other transactions) */
/* The life limit every explicit transaction gets (HTTP, native, Bolt; read
 * ones too): NODE_TX_LIFE_MS_MAX, or with the test hook
 * LORA_TX_LIFE_MS_TESTING=MS (compiled with LORA_TEST_HOOKS) a shorter
 * one, so that a test reaches it without waiting a minute. */
uint64_t node_tx_life_ms(void);
/* the longest a follower waits for the leader's answer to a /tx request
 * it passed on (http_tx.c to_leader: otherwise the begin wait and each
 * statement's time limit): a transaction ends NODE_TX_LIFE_MS_MAX after
 * its begin, checked between statements, and a statement of it ends with
 * that life too (node_qry_limits_until), so no answer comes later than
 * its life after the begin wait; the last 60 s are a margin */
#define NODE_TX_FORWARD_WAIT_MS_MAX                                            \
	(NODE_FORWARD_WAIT_MS + NODE_TX_BEGIN_WAIT_MS + NODE_TX_LIFE_MS_MAX +  \
	 60000u)

/*
 * Leader only. Begins a write transaction: queued like a write, it is
 * begun once the writer reaches it; from then on the writer executes
 * nothing else until it ends (serializable). 0 with *out, or
 * LORA_EUNAVAILABLE (not leader, busy writer: retry) with errmsg.
 * idle_ms (0: NODE_TX_IDLE_MS, at most NODE_TX_IDLE_MS_MAX): without a
 * request for that long the transaction rolls back. mem_bytes_max (0:
 * the node's statement_memory_bytes; never above it) is the transaction's
 * memory budget: the writes it keeps until COMMIT plus the statement
 * running; past it a statement fails with LORA_EMEMORY (and the
 * transaction rolls back).
 */
struct node_tx;
int node_tx_begin(struct lnode *n, uint32_t idle_ms, uint64_t mem_bytes_max,
                  struct node_tx **out, char *errmsg);
/* Runs a statement in it: resp (caller's) gets columns and rows, or an
 * error, after which the transaction has rolled back. */
void node_tx_run(struct node_tx *t, const struct node_exec_req *req,
                 Lora__Response *resp);
/* Commits (one log entry, waited for until applied here): 0 with *index;
 * else the code and errmsg. Both end t (the caller lets go of it). */
int node_tx_commit(struct node_tx *t, uint64_t *index, char *errmsg);
void node_tx_rollback(struct node_tx *t);
/* A statement in a transaction answers its rows all at once (kept until
 * read): at most this many rows, and at most this many bytes of them
 * (packed), else LORA_ELIMIT. */
#define NODE_TX_ROWS_MAX  100000
#define NODE_TX_BYTES_MAX (8 * 1024 * 1024)
/* Every row of cursor c into resp (columns first): 0, or the error (err
 * filled when the statement said why). */
int node_tx_rows(struct qry_cursor *c, Lora__Response *resp,
                 struct qry_error *err);
/* Writer thread: serves the transaction req carries until it ends. */
void node_tx_serve(struct lnode *n, const struct node_exec_req *req);
/* Wakes the transaction being served, to look again at its leadership
 * and at the node stopping: the raft loop after publishing a change of
 * role, leader or term, and the node's stop. */
void node_tx_wake(struct lnode *n);
/* For tests: 1 once t ended; wake-ups of served transactions' waits for
 * a command since the process started. */
int node_tx_ended(struct node_tx *t);
unsigned long node_tx_test_waits(void);

/* ---- executing requests (exec.c)
 * ------------------------------------------------ */

struct node_exec_req {
	const char *query;            /* borrowed */
	const Lora__ValueMap *params; /* borrowed, may be NULL */
	int consistency;              /* Lora__Consistency */
	uint64_t bookmark;
	const char *request_id; /* borrowed, may be NULL */
	int redirect;
	int forwarded; /* came from another node */
	enum qry_mode mode;
	uint32_t batch_rows; /* 0: all rows */
	int kind; /* NODE_STMT_*: what the caller already parsed it to be */
	/* lowers the statement's memory limit (statement_memory_bytes);
	 * 0: the node's limit. Never raises it. */
	uint64_t mem_bytes_max;
	/* lowers the statement's time limit (statement_time_ms); 0: the
	 * node's limit. Never raises it. */
	uint64_t time_ms_max;
	/* set only on the write that carries a transaction to the writer
	 * (txn.c): the writer serves it alone (node_tx_serve) */
	struct node_tx *tx;
	/* who asks (auth.h): checked by the server that took the request,
	 * or carried by a forwarding member that proved it is one
	 * (peer_checked). role NODE_ROLE_NONE may run nothing. */
	char user[NODE_USER_BYTES_MAX + 1];
	int role;
	int peer_checked;
	/* A write decided already (the system keyspace: auth.c), proposed
	 * as it is instead of running query; borrowed like query. */
	const Lora__MutationBatch *batch;
	/* reads only (node_read_open and Bolt's explicit-transaction reads
	 * copy them into the statement's limits; writes never ask): whether
	 * the client left, asked while the statement runs
	 * (qry_limits.gone); NULL: never asked */
	int (*client_gone)(void *arg);
	void *client_gone_arg;
};
enum { NODE_STMT_UNKNOWN = 0, NODE_STMT_READ, NODE_STMT_WRITE };

/* Who reads a cursor's rows (metrics labels). */
enum node_api {
	NODE_API_HTTP = 0,
	NODE_API_NATIVE,
	NODE_API_BOLT,
	NODE_API_COUNT
};

/* The limits of a statement run for req: the defaults, the node's
 * statement_memory_bytes lowered by req->mem_bytes_max, and the node's
 * shared budget (which outlives every cursor). */
void node_qry_limits(struct lnode *n, const struct node_exec_req *req,
                     struct qry_limits *l);
/* The time limit of a statement run for req: the node's
 * statement_time_ms lowered by req->time_ms_max. */
uint64_t node_statement_time_ms(const struct lnode *n,
                                const struct node_exec_req *req);
/* Lowers l's time limit to what is left until end_ms (at least 1 ms): a
 * statement of an explicit transaction ends with the transaction's life
 * (node_tx_life_ms), which the waits of a follower relaying it and of
 * Bolt's relay count on, whatever statement_time_ms says. */
void node_qry_limits_until(struct qry_limits *l, uint64_t end_ms);
#ifdef LORA_TEST_HOOKS
/* Test hook LORA_SLOW_TESTING=MS (compiled with LORA_TEST_HOOKS): a
 * statement whose text holds the comment slow-testing waits MS before
 * each statement of a write transaction runs (txn.c) and before
 * each of its IN TRANSACTIONS chunks is proposed (writer.c), as a long
 * statement does: tests/integration/http_tx.sh and intx.sh (how long a
 * follower waits for the leader's answer). */
void node_slow_testing(const char *query);
#endif

/* qry_is_write under the node's limits for req (NULL: no request's own):
 * the routing parse of a statement is bounded by the statement's memory
 * limit and charged to the node's query budget. */
int node_is_write(struct lnode *n, const struct node_exec_req *req,
                  const char *query, int *is_write, struct qry_error *err);

/* A live read cursor left over after the first batch (native protocol). */
struct node_cursor;

/*
 * Runs one statement (a user statement through node_auth_user_stmt; any
 * other as req->role allows: node_exec_allowed). *resp (always set unless
 * LORA_ENOMEM) is a Response:
 * free with lora__response__free_unpacked(resp, &lora_pb_allocator).
 * *plan (may be NULL) receives a copy of the EXPLAIN/PROFILE plan.
 * *cursor (may be NULL) receives the cursor when rows remain.
 */
void node_exec(struct lnode *n, const struct node_exec_req *req,
               Lora__Response **resp, Lora__Value **plan,
               struct node_cursor **cursor);
/* Whether req's role may run a statement that writes (is_write) or
 * reads: 0, or LORA_EFORBIDDEN with msg. Index DDL (admin) is checked by
 * the writer, which sees the statement's mutations. */
int node_exec_allowed(struct lnode *n, const struct node_exec_req *req,
                      int is_write, char *msg);
/* 1 (msg set, LORA_EFORBIDDEN) when req's role may not make b's
 * mutations: any below writer, index and constraint DDL below admin. */
int node_batch_forbidden(const struct node_exec_req *req,
                         const Lora__MutationBatch *b, char *msg);
/* LORA_ELIMIT (msg set) when a property value of b nests deeper than
 * LORA_VALUE_DEPTH_MAX, which apply refuses on every node: never
 * proposed. Else 0. */
int node_batch_too_deep(const Lora__MutationBatch *b, char *msg);
/* Next batch from a cursor into resp (rows, has_more). */
int node_cursor_fetch(struct node_cursor *c, uint32_t batch_rows,
                      Lora__Response *resp);
/* Frees the cursor and its statement (and gives back its memory). */
void node_cursor_free(struct lnode *n, struct node_cursor *c);

/*
 * Opens a read statement for the caller to pull rows from, after the wait
 * its consistency level asks for: 0 and *out (node_cursor_free), or an
 * error code with err filled (message, position). The cursor holds a
 * read view and the state store until freed; api labels its rows in the
 * metrics. Pull with node_cursor_next (qry_cursor_next's contract: rows
 * are borrowed until the next call).
 */
int node_read_open(struct lnode *n, const struct node_exec_req *req, int api,
                   struct node_cursor **out, struct qry_error *err);
int node_cursor_next(struct node_cursor *c, const Lora__Value *const **row,
                     int *done, struct qry_error *err);
/* Column names, borrowed until node_cursor_free. */
size_t node_cursor_columns(struct node_cursor *c, const char *const **names);
/* The applied index the statement reads (its answer's bookmark). */
uint64_t node_cursor_bookmark(const struct node_cursor *c);
/* When the statement's time limit ends (lora_now_ms clock; 0: never). */
uint64_t node_cursor_deadline_ms(const struct node_cursor *c);
/* PROFILE: the plan (complete once every row was read); borrowed. */
const Lora__Value *node_cursor_plan(struct node_cursor *c);
/* Charges n bytes the caller holds for the statement's answer to its
 * memory limits (qry_cursor_charge); 0, or LORA_EMEMORY with err set. */
int node_cursor_charge(struct node_cursor *c, uint64_t n,
                       struct qry_error *err);
/* A copy of plan (borrowed; NULL: nothing) into resp->plan unless it has
 * one; an error is also set on resp. */
int node_resp_set_plan(Lora__Response *resp, const Lora__Value *plan);

/* Response helpers. */
Lora__Response *node_resp_new(void);
void node_resp_error(Lora__Response *r, int code, const char *msg,
                     uint32_t line, uint32_t column);
/* Appends a row of copies of vals. On failure (LORA_ENOMEM, or LORA_ELIMIT
 * for a value nested deeper than LORA_RESULT_DEPTH_MAX) returns the code,
 * having set r's error when it could say more than the code. */
int node_resp_add_row(Lora__Response *r, const Lora__Value *const *vals,
                      size_t n);
int node_resp_set_columns(Lora__Response *r, const char *const *names,
                          size_t n);
void node_resp_set_bookmark(Lora__Response *r, uint64_t index);
/* A deep copy of v (NULL: a null) in *out, freed with
 * lora__value__free_unpacked. protobuf-c copies recursively, so a value
 * nested deeper than depth_max (see lora_value_depth) is refused with
 * LORA_ELIMIT and a message in errmsg; LORA_ENOMEM otherwise. */
int node_value_dup(const Lora__Value *v, int depth_max, Lora__Value **out,
                   char *errmsg);
/* The error code enum from a wire code string (LORA_EINTERNAL if unknown). */
int node_err_from_code(const char *code);

/* Forwards a write to the leader's native port (forward.c). Returns 0
 * with *resp, an error (with *resp when the leader may have executed it),
 * or NODE_FORWARD_SELF when this node became the leader meanwhile. */
#define NODE_FORWARD_SELF (-1)
/* When this node last heard from `leader` as the leader (lora_now_ms), or
 * `since` when it has not heard from it after that. Forwarders call it
 * while they wait for `leader`'s answer: once it exceeds election_ms the
 * leader went silent (forward.c). */
uint64_t node_leader_heard(struct lnode *n, uint64_t leader, uint64_t since);
/* What a forwarder waiting for leader `to`'s answer does now: wait on, or
 * (resend: the write was not sent or carries a requestId, so dedupe makes
 * a second copy harmless) send it again to a new leader as soon as one is
 * known, or (not resend) give up with UNKNOWN_OUTCOME once `to` was silent
 * for an election timeout. *heard: kept by the caller, starts at the send
 * time. */
/* NODE_WAIT_*: proxy.h (node_proxy_verdict decides) */
int node_forward_check(struct lnode *n, uint64_t to, int resend,
                       uint64_t *heard);
/* req as a packed native Request (a RunRequest marked as forwarded,
 * carrying the identity this node checked and, with auth on, the cluster
 * secret that proves this node is a member: docs/security.md) after head
 * bytes left for the caller; *len: the Request's bytes. NULL when out of
 * memory; else free with lora_free. */
uint8_t *node_forward_pack(struct lnode *n, const struct node_exec_req *req,
                           size_t head, size_t *len);
int node_forward(struct lnode *n, const struct node_exec_req *req,
                 Lora__Response **resp);
void node_forward_close_all(void);
/* Where forward.c dials the leader's native port (to_addr) from: 1 and
 * *out (an IPv4 address in network byte order, as in_addr.s_addr) when
 * from the IPv4 host of client_addr; 0 when from where the OS
 * chooses, with why (why_bytes) saying why unless that is the norm (a
 * host name, IPv6 or 0.0.0.0 as client_addr): the leader's address is not
 * IPv4 (a bound IPv4 socket cannot reach it), or client_addr's host does
 * not bind here. */
int node_forward_local(const char *client_addr, const char *to_addr,
                       uint32_t *out, char *why, size_t why_bytes);
/* The raft loop saw the leader or term change (called without status_mu
 * held): wakes every forwarded write awaiting its answer (forward.c). */
void node_forward_leader_changed(void);

/* ---- status, gossip, metrics (status.c, metrics.c)
 * ------------------------------- */

/* status and gossip: status.h */

int node_metrics_new(struct node_metrics **out);
void node_metrics_free(struct node_metrics *m);
void node_metrics_request(struct lnode *n, const char *api, int ok,
                          uint64_t ns);
void node_metrics_checkpoint(struct lnode *n, uint64_t ns);
/* Rows handed to clients from read cursors (api: enum node_api). */
void node_metrics_rows_streamed(struct lnode *n, int api, uint64_t rows);
/* A statement stopped because its client left (closed the connection or
 * dropped the native cursor's connection). */
void node_metrics_client_gone(struct lnode *n, int api);
/* A native cursor closed after NODE_CURSOR_IDLE_MS without a fetch. */
void node_metrics_cursor_idle(struct lnode *n);
/* Read statements with an open cursor: +1 when opened, -1 when freed. */
void node_metrics_statements_open(struct lnode *n, int delta);
/* Prometheus text; lora_free the result. */
char *node_metrics_text(struct lnode *n);

/* ---- servers (http.c, native.c)
 * -------------------------------------------------- */

int node_http_start(struct lnode *n, char *errmsg);
void node_http_stop(struct lnode *n);
int node_native_start(struct lnode *n, char *errmsg);
void node_native_stop(struct lnode *n);
/* The native port's upkeep (gossip thread, every NODE_GOSSIP_MS; never
 * waits for the network): closes cursors idle for cursor_idle_ms and
 * pending connections past auth_timeout_ms, and runs the listener's
 * watchdog (native.c: replaces a listener whose accept loop nng
 * stopped). */
void node_native_reap(struct lnode *n);
/* Tests: at most conns native connections for nodes started from now on
 * (default and most NODE_NATIVE_CONNS_MAX, 1024). */
void node_native_test_conns_cap(int conns);
/* Closes every open cursor (before a snapshot install). */
void node_native_close_cursors(struct lnode *n);
/*
 * Explicit transactions named by id (http_tx.c keeps them: POST /tx and
 * the native protocol's BeginRequest share the table). A write one is
 * node_tx_begin's (leader only); a read one holds one read view of this
 * node. who (borrowed) is the user it is bound to: another user's request
 * is LORA_EFORBIDDEN. A request for an unknown id is LORA_ENOTFOUND, for
 * one whose other request is running LORA_EINVAL, for an expired one
 * LORA_ETIMEOUT.
 */
#define NODE_XTX_ID_BYTES 33 /* 32 hex digits (128 random bits) and NUL */
struct node_xtx_opts {
	int read;
	uint32_t timeout_ms;    /* idle limit; 0: NODE_TX_IDLE_MS */
	uint64_t mem_bytes_max; /* 0: the node's statement_memory_bytes */
	uint64_t bookmark;      /* read: waited for first */
};
/* 0 with id (NODE_XTX_ID_BYTES) and *timeout_ms, or an error in msg.
 * conn (0: none) names the connection it belongs to: see
 * node_xtx_connection_gone. */
int node_xtx_begin(struct lnode *n, const struct node_identity *who,
                   const struct node_xtx_opts *o, uint64_t conn, char *id,
                   uint32_t *timeout_ms, char *msg);
/* Connection conn went away: its transactions are rolled back (by the
 * reaper, within NODE_GOSSIP_MS; never blocks: nng's pipe callback). */
void node_xtx_connection_gone(struct lnode *n, uint64_t conn);
/* One statement in it: resp (caller's) gets rows or the error, after
 * which the transaction has ended (rolled back). */
void node_xtx_run(struct lnode *n, const char *id,
                  const struct node_identity *who,
                  const struct node_exec_req *req, Lora__Response *resp);
/* Commits (0 with *index: its bookmark) or rolls back; ends it. */
int node_xtx_end(struct lnode *n, const char *id,
                 const struct node_identity *who, int commit, uint64_t *index,
                 char *msg);
/* HTTP transactions (http_tx.c): rolls back those past their idle limit
 * (all of them once the node stops; gossip thread, and node_http_stop). */
void node_http_tx_reap(struct lnode *n);
/* Drops the read views of HTTP read transactions (they hold the store):
 * before a snapshot install. Their next request is LORA_UNAVAILABLE. */
void node_http_tx_close_reads(struct lnode *n);
/* Bolt (bolt.c, bolt_session.c): listens on the effective bolt_addr
 * (none when it is "off"). */
int node_bolt_start(struct lnode *n, char *errmsg);
void node_bolt_stop(struct lnode *n);
/* Asks every Bolt connection to drop its results and read transaction
 * (they hold the store) within BOLT_POLL_MS: before a snapshot install. */
void node_bolt_close_cursors(struct lnode *n);

/* ---- refused peer traffic (peerguard.c)
 * ------------------------------------------------------------------------ */

#define NODE_REFUSAL_LOG_MS 60000 /* one line per (peer, kind) per */
/* Counts and logs (LOG_WARN, rate limited per (peer, kind): see
 * peerguard.c) a frame refused from `peer`; kind names what was refused
 * ("raft-heartbeat", "snapshot-chunk", "gossip", ...). Thread-safe. */
void node_peer_refused(uint64_t peer, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Frames refused since the process started. */
uint64_t node_peer_refused_total(void);
/* HTTP requests whose credentials the connection's memo accepted without
 * a check (http_auth.c), since the process started (all its nodes). */
uint64_t node_http_auth_memo_hits_total(void);

/* The native protocol's ChangesRequest (cdc.c): the events after its
 * bookmark into resp (events, event_index, bookmark: where to go on), or
 * LORA_ENOTFOUND (compacted) / LORA_EINVAL in resp's error. */
void node_cdc_poll(struct lnode *n, const Lora__ChangesRequest *q,
                   Lora__Response *resp);

/* Decodes a native request (its bytes checked by lora_pb_check at
 * LORA_VALUE_DEPTH_MAX first: protobuf-c unpacks recursively). NULL with
 * *code (LORA_EPARAMS past the depth limit, else LORA_EINVAL) and a
 * message when refused; else free with lora__request__free_unpacked. */
Lora__Request *node_native_decode(const uint8_t *p, size_t len, int *code,
                                  char *msg);

/* ---- snapshots (snapshot.c)
 * ------------------------------------------------------- */

/* The rest of snapshot.c: snapshot.h. */

/* Start-up, before the raft core: finishes or rolls back an interrupted
 * state install, refuses (or restores the newest local checkpoint) when
 * state/ is missing or behind what snapshot.meta and the raft log say it
 * holds, and opens n->store. raftstart.c. */
int node_state_open(struct lnode *n, char *errmsg);

/* Newest checkpoint directory and its index; 0 when found. */
int node_checkpoint_latest(struct lnode *n, char *dir, size_t dir_bytes,
                           uint64_t *index);

/* Conversions between rep_snapshot_meta and its proto / file form. */
int node_meta_save(struct lnode *n, const struct rep_snapshot_meta *m);
int node_meta_load(struct lnode *n, struct rep_snapshot_meta *m);
void node_meta_to_pb(const struct rep_snapshot_meta *m, Lora__SnapshotMeta *pb,
                     Lora__ConfState *conf);
int node_meta_from_pb(const Lora__SnapshotMeta *pb,
                      struct rep_snapshot_meta *m);

#endif
