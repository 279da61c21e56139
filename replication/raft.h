/*
 * raft.h - Raft consensus as a pure state machine (library lora_replication).
 *
 * The core does no I/O, owns no thread, reads no clock and draws no random
 * number of its own (its election jitter comes from a small generator seeded
 * by the caller). It is driven the way etcd-io/raft's RawNode is:
 *
 *   inputs   rep_tick()            one logical clock tick
 *            rep_step(msg)         a message that arrived from a peer
 *            rep_propose(...)      a client write (leader only)
 *            rep_propose_conf_change, rep_read_index, rep_transfer_leader,
 *            rep_report_unreachable, rep_report_snapshot, rep_compact
 *   outputs  rep_ready(&rd)        what to persist, send and apply now
 *            rep_advance(&rd)      "I did all of it"
 *
 * ---- The caller's loop (the order is part of the contract) ---------------
 *
 *   for (;;) {
 *       feed inputs: rep_tick() every tick, rep_step() per message, ...
 *       if (!rep_has_ready(r)) continue;
 *       rep_ready(r, &rd);
 *       1. if rd.has_snapshot: install the checkpoint that came with the
 *          snapshot message (see "Snapshots"), drop every log entry and
 *          record the compaction point (rd.snapshot.index, .term);
 *       2. write rd.entries to the log (rd.entries[0].index may be <= the
 *          stored last index: replace the stored suffix from there) and
 *          rd.hs when rd.has_hard_state, DURABLY (fsync) - one write;
 *       3. send rd.msgs. Messages of type REP_MSG_APP, REP_MSG_HEARTBEAT,
 *          REP_MSG_SNAPSHOT and REP_MSG_TIMEOUT_NOW are only ever sent by a
 *          leader and do not depend on its own write: they MAY be sent
 *          before or in parallel with step 2 (thesis 10.2.1). Every other
 *          message (votes, responses, forwarded reads) MUST wait until the
 *          write of step 2 is durable: a vote or an append acknowledgement
 *          promises that the term, vote and entries survive a crash;
 *       4. apply rd.committed in order (entries are only handed out for
 *          applying once they are durable locally) and serve rd.reads
 *          (a read at index i may be answered once applied >= i);
 *       5. rep_advance(r, &rd).
 *   }
 *
 * Between rep_ready() and rep_advance() the caller must not call any other
 * rep_* function except rep_status(). The leader counts its own copy of an
 * entry towards the commit quorum only after rep_advance() says it is
 * durable, so committing never depends on an unwritten local copy.
 *
 * ---- Ownership ----------------------------------------------------------
 *
 * Every pointer inside a struct rep_ready (entries, msgs and their entries,
 * committed, reads) is owned by the core and stays valid until rep_advance()
 * or rep_free(), whichever comes first. Inputs (messages given to
 * rep_step(), proposal data, restore entries, contexts) are borrowed for the
 * duration of the call: the core copies what it keeps.
 *
 * ---- Membership ----------------------------------------------------------
 *
 * A configuration is a set of voters and a set of learners (non-voters that
 * receive the log). Changes are one at a time: add a learner, promote a
 * learner to voter, remove a node. A configuration change takes effect on a
 * node WHEN THE NODE LEARNS THAT ITS ENTRY IS COMMITTED (the etcd rule, not
 * the thesis's "when appended"), so a truncated uncommitted change never
 * needs to be rolled back. To keep that safe the leader accepts a new change
 * only after (a) it has committed an entry of its own term and (b) the
 * previous change is committed (otherwise LORA_EUNAVAILABLE: retry later).
 * New nodes join as learners and are promoted once caught up. A node that
 * is not a voter never campaigns; a leader that removes itself steps down
 * when the removal commits.
 *
 * Conf-change entries carry a small binary encoding made by the core (see
 * rep_conf_change_decode): the caller stores those bytes opaquely and reads
 * the node's address back from them when it applies the entry.
 *
 * ---- Snapshots -----------------------------------------------------------
 *
 * The caller takes a checkpoint of its applied state and calls
 * rep_compact(index): the core forgets entries <= index. When a follower
 * needs a forgotten entry, the leader's Ready contains a REP_MSG_SNAPSHOT
 * message with only the metadata (index, term, configuration). The caller
 * does not send that struct as is: it streams the checkpoint to the follower
 * and, when done, calls rep_report_snapshot(to, ok). The follower's caller
 * stages the received checkpoint and then hands the snapshot message to
 * rep_step(); if the core accepts it, the next Ready has has_snapshot set
 * (install the staged checkpoint then, step 1 above); otherwise discard it.
 *
 * ---- Restart -------------------------------------------------------------
 *
 * rep_new() takes the durable state: hard state, compaction point
 * (snapshot metadata), the log entries after it and the applied index of
 * the state machine. Committed entries after `applied` are handed out again
 * for applying. The core keeps every entry since the last compaction in
 * memory, so the caller should compact regularly.
 *
 * Errors: functions return 0 or an enum lora_err code (proto/lora.h).
 * Malformed input from a peer or from disk gives an error, never a crash;
 * broken preconditions on the caller's side are LORA_ASSERTed.
 */
#ifndef LORA_RAFT_H
#define LORA_RAFT_H

#include <stddef.h>
#include <stdint.h>

#include "lora.h"

/* ---- limits --------------------------------------------------------------
 */

#define REP_MEMBERS_MAX             16 /* voters + learners in one config */
#define REP_CONTEXT_BYTES_MAX       64 /* read-index / message context */
#define REP_ENTRY_BYTES_MAX         (64u << 20) /* data of one log entry */
#define REP_MSG_ENTRIES_MAX         65536 /* entries in one incoming message */
#define REP_READS_PENDING_MAX       4096  /* read-index requests in flight */
#define REP_READY_APPLY_ENTRIES_MAX 4096  /* committed entries per Ready */
#define REP_INFLIGHT_MAX            1024  /* cap on config.inflight_max */
#define REP_NONE                    0     /* "no node": node ids are >= 1 */
/* Highest term the core accepts from a peer or from disk. Elections add 1
 * at a time, so no real cluster gets near it; a forged term beyond it is
 * refused, so term + 1 can never wrap (one packet used to brick a node). */
#define REP_TERM_MAX (UINT64_MAX - (UINT64_C(1) << 32))
/* A message may raise the term by at most this much at once (terms grow
 * by one per election; pre-vote keeps an isolated node's term down). */
#define REP_TERM_JUMP_MAX (UINT64_C(1) << 20)

/* ---- plain data ----------------------------------------------------------
 */

/* Values match proto/raft.proto's EntryType. */
enum rep_entry_type {
	REP_ENTRY_NORMAL = 0,      /* data is opaque (empty: leader no-op) */
	REP_ENTRY_CONF_CHANGE = 1, /* data from rep_propose_conf_change */
};

/* One log entry. Same fields as storage.h's struct sto_log_entry. */
struct rep_entry {
	uint64_t index;
	uint64_t term;
	uint32_t type; /* enum rep_entry_type */
	uint8_t *data; /* owner: see the struct holding the entry */
	size_t len;
};

/* Persistent state; written with sync before the messages that follow. */
struct rep_hard_state {
	uint64_t term;
	uint64_t vote; /* REP_NONE or the node voted for in `term` */
	uint64_t commit;
};

/* A configuration and the point of the log it belongs to. */
struct rep_snapshot_meta {
	uint64_t index; /* last entry covered (0: no snapshot) */
	uint64_t term;  /* its term */
	uint32_t n_voters;
	uint32_t n_learners;
	uint64_t voters[REP_MEMBERS_MAX];
	uint64_t learners[REP_MEMBERS_MAX];
};

/* Message types. Values are stable: RaftMessage.type on the wire. */
enum rep_msg_type {
	REP_MSG_APP = 1,             /* AppendEntries */
	REP_MSG_APP_RESP = 2,        /* its answer */
	REP_MSG_VOTE = 3,            /* RequestVote */
	REP_MSG_VOTE_RESP = 4,       /* its answer */
	REP_MSG_PREVOTE = 5,         /* pre-vote probe (term not bumped) */
	REP_MSG_PREVOTE_RESP = 6,    /* its answer */
	REP_MSG_HEARTBEAT = 7,       /* leader keep-alive, carries commit */
	REP_MSG_HEARTBEAT_RESP = 8,  /* its answer (echoes context) */
	REP_MSG_SNAPSHOT = 9,        /* install snapshot (metadata only) */
	REP_MSG_TIMEOUT_NOW = 10,    /* leadership transfer: campaign now */
	REP_MSG_READ_INDEX = 11,     /* follower -> leader read request */
	REP_MSG_READ_INDEX_RESP = 12 /* leader -> follower: index to wait for */
};
#define REP_MSG_TYPE_MAX 12

/*
 * One Raft message. Field meanings per type (etcd-io/raft conventions):
 *   APP:        index/log_term = entry before `entries`; commit
 *   APP_RESP:   index = last matching index (accept) or the rejected
 *               index (reject), reject_hint/hint_term = the follower's
 *               suggested probe point and the term there (fast backtracking)
 *   VOTE/PREVOTE: index/log_term = candidate's last entry; context
 *               "transfer" when it campaigns on TimeoutNow
 *   HEARTBEAT:  commit; context = read-index round being confirmed
 *   SNAPSHOT:   snapshot (index, term, configuration)
 *   READ_INDEX: context; READ_INDEX_RESP: index + context
 * Ownership: in a Ready, entries point into the core (valid until
 * rep_advance); given to rep_step, everything is borrowed.
 */
struct rep_msg {
	uint32_t type; /* enum rep_msg_type */
	uint64_t from;
	uint64_t to;
	uint64_t term;
	uint64_t log_term;
	uint64_t index;
	const struct rep_entry *entries;
	size_t n_entries;
	uint64_t commit;
	int reject;
	uint64_t reject_hint;
	uint64_t hint_term;
	uint32_t context_len;
	uint8_t context[REP_CONTEXT_BYTES_MAX];
	struct rep_snapshot_meta snapshot;
};

enum rep_role {
	REP_FOLLOWER = 0,
	REP_PRE_CANDIDATE = 1,
	REP_CANDIDATE = 2,
	REP_LEADER = 3,
};

/* Volatile state worth telling the caller about when it changes. */
struct rep_soft_state {
	uint64_t leader; /* REP_NONE when unknown */
	uint32_t role;   /* enum rep_role */
};

/* A confirmed read: once applied >= index, a read for ctx is linearizable. */
struct rep_read_state {
	uint64_t index;
	uint32_t ctx_len;
	uint8_t ctx[REP_CONTEXT_BYTES_MAX];
};

/* What the caller must do now; see the loop at the top of this file. */
struct rep_ready {
	int has_soft_state;
	struct rep_soft_state soft;
	int has_hard_state;
	struct rep_hard_state hs;
	int has_snapshot; /* follower: install this snapshot first */
	struct rep_snapshot_meta snapshot;
	const struct rep_entry *entries; /* to persist, consecutive indexes */
	size_t n_entries;
	const struct rep_msg *msgs; /* to send, each to msgs[i].to */
	size_t n_msgs;
	const struct rep_entry *committed; /* to apply, in order */
	size_t n_committed;
	const struct rep_read_state *reads; /* confirmed reads */
	size_t n_reads;
};

/* ---- configuration -------------------------------------------------------
 */

struct rep_config {
	uint64_t id; /* this node, >= 1 */
	/* Initial voters, used when the restored compaction point carries no
	 * configuration (a brand-new cluster). Every founding member must be
	 * given the same list. A node joining later gets n_voters = 0. */
	uint32_t n_voters;
	uint64_t voters[REP_MEMBERS_MAX];
	uint32_t election_ticks;  /* base election timeout; randomised in
	                           * [election_ticks, 1.5*election_ticks)
	                           * (10); votes are ignored for
	                           * election_ticks - 1 after hearing from a
	                           * leader (check_quorum) */
	uint32_t heartbeat_ticks; /* leader heartbeat period (1); rep_new
	                           * refuses election_ticks <
	                           * 2 * heartbeat_ticks + 2 */
	uint64_t seed;            /* seeds the core's own PRNG (any value) */
	uint32_t msg_entries_max; /* entries per append message (1024) */
	size_t msg_bytes_max;     /* entry data bytes per append msg (1 MiB);
	                           * a single larger entry still goes alone */
	uint32_t
	    inflight_max; /* append messages in flight per follower
	                   * in replicate state (256, <= REP_INFLIGHT_MAX) */
	uint64_t uncommitted_entries_max; /* leader refuses proposals beyond
	                                   * this many uncommitted entries
	                                   * (65536) with LORA_ELIMIT */
	int pre_vote;     /* pre-vote before a real election (1) */
	int check_quorum; /* leader steps down without quorum contact for an
	                   * election timeout; votes are ignored while a leader
	                   * is known to be alive (1) */
};

/* Fills cfg with the defaults noted above for node `id` (no voters). */
void rep_config_init(struct rep_config *cfg, uint64_t id);

/* Durable state handed to rep_new on restart. All pointers borrowed. */
struct rep_restore {
	struct rep_hard_state hs;
	struct rep_snapshot_meta snap;   /* compaction point (index 0: none) */
	const struct rep_entry *entries; /* (snap.index, last], consecutive */
	size_t n_entries;
	uint64_t applied; /* last index applied by the state machine,
	                   * snap.index <= applied <= last entry; hs.commit
	                   * may lag it (a lazily persisted commit index is
	                   * fine: the core uses max(hs.commit, applied)) */
};

/* ---- lifecycle -----------------------------------------------------------
 */

struct rep; /* opaque core */

/*
 * Creates a core. rs NULL (or all zero) means a brand-new node. On success
 * *out is owned by the caller: rep_free(). Errors: LORA_EINVAL for a bad
 * config, LORA_ECORRUPT for inconsistent restored state (message in errmsg,
 * a LORA_ERRMSG_BYTES buffer or NULL), LORA_ENOMEM.
 */
int rep_new(const struct rep_config *cfg, const struct rep_restore *rs,
            struct rep **out, char *errmsg);
void rep_free(struct rep *r);

/* ---- inputs --------------------------------------------------------------
 */

/* Advances the logical clock by one tick (elections, heartbeats,
 * check-quorum). */
void rep_tick(struct rep *r);

/*
 * Feeds a message received from a peer (m->to must be this node). m is
 * borrowed. LORA_EINVAL when the message is refused and ignored; then
 * rep_refusal() says why: malformed (unknown type, bad entry indexes,
 * oversized fields), a term beyond REP_TERM_MAX, or a sender that is not a
 * member. A sender is a member when it is a voter or learner of this node's
 * configuration, or is added by a conf change in its uncommitted log; a
 * node whose configuration is still empty (started to join) takes messages
 * from anyone until the leader's snapshot or log gives it one.
 * LORA_ENOMEM possible.
 */
int rep_step(struct rep *r, const struct rep_msg *m);

enum rep_refusal {
	REP_REFUSE_NONE = 0,       /* the last rep_step took its message */
	REP_REFUSE_MALFORMED = 1,  /* fields out of range or inconsistent */
	REP_REFUSE_TERM = 2,       /* a term beyond REP_TERM_MAX */
	REP_REFUSE_NOT_MEMBER = 3, /* the sender is not in the configuration */
};
/* Why the last rep_step returned LORA_EINVAL (enum rep_refusal). */
uint32_t rep_refusal(const struct rep *r);
/* "malformed", "term-overflow", "not-member", "none". Static, never NULL. */
const char *rep_refusal_name(uint32_t refusal);

/*
 * Proposes a normal entry (data borrowed, copied). On success the entry
 * will be at (*term, *index) if it commits; if a different entry commits at
 * that index the proposal was lost. Errors: LORA_ENOTLEADER (*leader = the
 * leader's id or REP_NONE), LORA_EUNAVAILABLE (leadership transfer in
 * progress: retry), LORA_ELIMIT (too many uncommitted entries or data
 * larger than REP_ENTRY_BYTES_MAX). term, index and leader may be NULL.
 */
int rep_propose(struct rep *r, const void *data, size_t len, uint64_t *term,
                uint64_t *index, uint64_t *leader);

enum rep_conf_type {
	REP_CONF_ADD_LEARNER = 0, /* values match raft.proto ConfChangeType */
	REP_CONF_PROMOTE = 1,
	REP_CONF_REMOVE = 2,
};

/* Longest context (e.g. the peer address) carried by a conf change. */
#define REP_CONF_CONTEXT_BYTES_MAX 256

/*
 * Proposes one membership change; ctx (borrowed, may be NULL) is carried
 * opaquely, e.g. the new node's address. Errors as rep_propose plus
 * LORA_EINVAL (adding a member, promoting a non-learner, removing a
 * non-member, or leaving no voter), LORA_ELIMIT (REP_MEMBERS_MAX), and
 * LORA_EUNAVAILABLE while the previous change or the leader's first entry
 * of its term is not committed.
 */
int rep_propose_conf_change(struct rep *r, uint32_t type, uint64_t node_id,
                            const void *ctx, size_t ctx_len, uint64_t *term,
                            uint64_t *index, uint64_t *leader);

/* A decoded conf-change entry; ctx points into the entry's data. */
struct rep_conf_change {
	uint32_t type; /* enum rep_conf_type */
	uint64_t node_id;
	const uint8_t *ctx;
	size_t ctx_len;
};

/* Decodes a REP_ENTRY_CONF_CHANGE entry's data. LORA_ECORRUPT if bad. */
int rep_conf_change_decode(const uint8_t *data, size_t len,
                           struct rep_conf_change *out);

/*
 * Asks for a linearizable read point identified by ctx (borrowed,
 * 1..REP_CONTEXT_BYTES_MAX bytes, unique per request). The answer comes as
 * a rep_read_state in a later Ready. On the leader the read waits for the
 * leader's first commit in its term, then for a heartbeat round acked by a
 * quorum; a follower forwards it to the leader. A request may be lost
 * (leader change, dropped message): the caller times out and retries.
 * Errors: LORA_ENOTLEADER when no leader is known, LORA_ELIMIT when
 * REP_READS_PENDING_MAX requests are already waiting, LORA_EINVAL.
 */
int rep_read_index(struct rep *r, const void *ctx, size_t ctx_len);

/*
 * Leader only: hands leadership to voter `to`. The leader stops accepting
 * proposals, brings `to` up to date and sends it TimeoutNow; the transfer
 * is abandoned after an election timeout. LORA_ENOTLEADER, LORA_EINVAL
 * (unknown or non-voter `to`).
 */
int rep_transfer_leader(struct rep *r, uint64_t to);

/* The transport could not reach `id`: the leader slows down to probing. */
void rep_report_unreachable(struct rep *r, uint64_t id);

/* The leader's caller finished streaming a snapshot to `id` (ok = 1) or
 * gave up (ok = 0). */
void rep_report_snapshot(struct rep *r, uint64_t id, int ok);

/*
 * The caller has a durable checkpoint of the state up to `index` (which
 * must be applied): the core drops entries <= index from memory and will
 * send snapshots to followers that need them. LORA_EINVAL when index is
 * beyond the applied index or not after the current compaction point.
 */
int rep_compact(struct rep *r, uint64_t index);

/*
 * The current compaction point: index, term and the configuration at that
 * index. Store it beside the checkpoint; it is rep_restore.snap on restart.
 */
void rep_compaction_meta(const struct rep *r, struct rep_snapshot_meta *out);

/* ---- outputs -------------------------------------------------------------
 */

/* 1 when rep_ready would return something to do. */
int rep_has_ready(const struct rep *r);

/* Fills rd (see the loop at the top). Pointers valid until rep_advance. */
void rep_ready(struct rep *r, struct rep_ready *rd);

/* The caller persisted, sent and applied everything in rd. */
void rep_advance(struct rep *r, const struct rep_ready *rd);

/* ---- status --------------------------------------------------------------
 */

enum rep_progress_state {
	REP_PROGRESS_PROBE = 0, /* one append at a time, finding the match */
	REP_PROGRESS_REPLICATE = 1, /* streaming, pipelined */
	REP_PROGRESS_SNAPSHOT = 2,  /* waiting for a snapshot install */
};

struct rep_peer_status {
	uint64_t id;
	int voter;      /* 0: learner */
	uint64_t match; /* leader's view (0 when not leader) */
	uint64_t next;
	uint32_t state; /* enum rep_progress_state */
	uint32_t inflight;
	uint64_t last_contact_ticks; /* ticks since the leader heard from it */
};

struct rep_status {
	uint64_t id;
	uint32_t role; /* enum rep_role */
	int learner;   /* this node is a learner (or not yet a member) */
	uint64_t term;
	uint64_t vote;
	uint64_t leader;
	uint64_t commit;
	uint64_t applied;
	uint64_t last_index;
	uint64_t snapshot_index;     /* compaction point */
	uint64_t last_contact_ticks; /* follower: ticks since the leader was
	                              * heard from; leader: 0 */
	uint64_t transferee;         /* leadership transfer target or 0 */
	uint32_t n_peers;            /* whole configuration, self included */
	struct rep_peer_status peers[REP_MEMBERS_MAX];
};

void rep_status(const struct rep *r, struct rep_status *st);

/* Names for logs and status pages. Static strings, never NULL. */
const char *rep_role_name(uint32_t role);
const char *rep_msg_type_name(uint32_t type);

#endif /* LORA_RAFT_H */
