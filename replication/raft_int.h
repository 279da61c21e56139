/*
 * raft_int.h - private state of the Raft core, shared by the replication .c
 * files.
 *
 * struct rep is one node's whole Raft state: the in-memory log since the
 * last compaction (log.c), the configuration and per-peer progress
 * (membership.c, progress.c), the election state (election.c), the
 * outgoing message queue and the Ready bookkeeping (ready.c), and pending
 * read-index rounds (readindex.c). Nothing here is visible to callers.
 */
#ifndef LORA_RAFT_INT_H
#define LORA_RAFT_INT_H

#include "raft.h"

/* Outgoing messages queued between two Readies. */
#define REP_MSGS_QUEUE_MAX 65536
/* Reads queued on a new leader until it commits an entry of its term. */
#define REP_READS_WAITING_MAX REP_READS_PENDING_MAX

/* ---- log.c ---------------------------------------------------------------
 */

/*
 * Entries (snap_index, snap_index + len] live in ents[off .. off + len);
 * their data lives in refcounted blocks (blk[], same indexes): one block
 * per proposal, one per received batch. stable: last index the caller made
 * durable.
 */
struct rep_log {
	struct rep_entry *ents;
	uint32_t **blk; /* per entry: refcounted block holding its data */
	size_t off, len, cap;
	uint64_t snap_index, snap_term;
	uint64_t stable;
	uint64_t commit;
	uint64_t applied;
};

void log_free(struct rep_log *l);
uint64_t log_last(const struct rep_log *l);
uint64_t log_last_term(const struct rep_log *l);
/* Term of idx; 0 when idx is compacted away (below snap) or beyond last. */
uint64_t log_term(const struct rep_log *l, uint64_t idx);
int log_has(const struct rep_log *l, uint64_t idx); /* snap <= idx <= last */
/* Entry idx, which must be in (snap_index, last]. */
const struct rep_entry *log_at(const struct rep_log *l, uint64_t idx);
/* 1 when the log holds an entry idx with term `term`. */
int log_match(const struct rep_log *l, uint64_t idx, uint64_t term);
/* Appends copies of n entries; ents[0].index must be last + 1. */
int log_append(struct rep_log *l, const struct rep_entry *ents, size_t n);
/* Appends one new entry at last + 1 taking a copy of data. */
int log_append_new(struct rep_log *l, uint64_t term, uint32_t type,
                   const void *data, size_t len);
/* Drops entries >= from (from > commit). */
void log_truncate(struct rep_log *l, uint64_t from);
/* Drops entries <= idx (idx <= last). */
void log_compact(struct rep_log *l, uint64_t idx);
/* Drops everything; the log restarts after (idx, term). */
void log_reset(struct rep_log *l, uint64_t idx, uint64_t term);
/* Largest i <= idx whose term is <= term (fast backtracking). */
uint64_t log_find_conflict_by_term(const struct rep_log *l, uint64_t idx,
                                   uint64_t term);
/* 1 when a log ending at (idx, term) is at least as up to date. */
int log_up_to_date(const struct rep_log *l, uint64_t idx, uint64_t term);

/* ---- progress.c ----------------------------------------------------------
 */

struct rep_progress {
	uint64_t id;
	int voter;
	uint64_t match, next;
	uint32_t state; /* enum rep_progress_state */
	int probe_sent; /* probe: an append is out, wait */
	uint64_t pending_snapshot;
	int recent_active;   /* heard from since the last quorum check */
	uint64_t idle_ticks; /* ticks since last heard from */
	/* in-flight appends (last index of each), a ring */
	uint32_t infl_start, infl_count;
	uint32_t infl_cap; /* ring slots: the config's inflight_max */
	uint64_t *infl;    /* infl_cap slots in rep.infl_mem */
};

void pr_reset(struct rep_progress *pr, uint64_t next);
void pr_become_probe(struct rep_progress *pr);
void pr_become_replicate(struct rep_progress *pr);
void pr_become_snapshot(struct rep_progress *pr, uint64_t snap_index);
int pr_maybe_update(struct rep_progress *pr, uint64_t idx);
int pr_maybe_decr_to(struct rep_progress *pr, uint64_t rejected,
                     uint64_t match_hint);
int pr_is_paused(const struct rep_progress *pr, uint32_t inflight_max);
void pr_infl_add(struct rep_progress *pr, uint64_t last, uint32_t max);
void pr_infl_free_to(struct rep_progress *pr, uint64_t idx);
void pr_infl_free_first(struct rep_progress *pr);

/* ---- membership.c --------------------------------------------------------
 */

struct rep_conf {
	uint32_t n_voters, n_learners;
	uint64_t voters[REP_MEMBERS_MAX];
	uint64_t learners[REP_MEMBERS_MAX];
};

/* ---- readindex.c ---------------------------------------------------------
 */

struct rep_read_req {
	uint64_t from;  /* requester: self or a follower */
	uint64_t index; /* commit index when the request arrived */
	uint32_t acks;  /* bit i: prs[i] acknowledged */
	uint32_t ctx_len;
	uint8_t ctx[REP_CONTEXT_BYTES_MAX];
};

/* ---- the core ------------------------------------------------------------
 */

struct rep_omsg {
	struct rep_msg m;
	uint64_t lo, hi; /* entries [lo, hi] of the log, none when lo > hi */
};

struct rep {
	struct rep_config cfg;
	uint64_t id;
	uint64_t rng;

	/* persistent */
	uint64_t term, vote;
	struct rep_log log;

	/* volatile */
	uint32_t role;
	uint64_t leader;
	uint32_t election_elapsed;
	uint32_t heartbeat_elapsed;
	uint32_t randomized_timeout;
	uint64_t ticks_since_leader;
	uint32_t votes_granted, votes_rejected; /* bit per prs slot */
	uint64_t transferee;
	uint64_t pending_conf_index;
	uint32_t refusal; /* enum rep_refusal of the last rep_step */

	struct rep_conf conf;
	uint32_t n_prs;
	struct rep_progress *prs; /* REP_MEMBERS_MAX slots */
	uint64_t *infl_mem;       /* REP_MEMBERS_MAX * cfg.inflight_max */

	/* read index */
	struct rep_read_req *reads; /* pending rounds, FIFO */
	uint32_t n_reads, cap_reads;
	struct rep_read_req *waiting; /* before the first commit in term */
	uint32_t n_waiting, cap_waiting;
	struct rep_read_state *ready_reads;
	uint32_t n_ready_reads, cap_ready_reads;

	/* outputs */
	struct rep_omsg *q;
	size_t nq, capq;
	struct rep_msg *out; /* materialised in rep_ready */
	size_t cap_out;
	struct rep_hard_state prev_hs;
	struct rep_soft_state prev_ss;
	int has_pending_snap;
	struct rep_snapshot_meta pending_snap;
	struct rep_snapshot_meta snap_meta; /* compaction point + conf */
};

/* core.c */
uint64_t rep_rand(struct rep *r);
void rep_send(struct rep *r, const struct rep_msg *m);
void rep_send_ents(struct rep *r, const struct rep_msg *m, uint64_t lo,
                   uint64_t hi);
void rep_msg_init(struct rep_msg *m, uint32_t type, uint64_t to, uint64_t term);
struct rep_progress *rep_pr(struct rep *r, uint64_t id);
int rep_pr_slot(const struct rep *r, uint64_t id);
int rep_is_voter(const struct rep *r, uint64_t id);
int rep_quorum(const struct rep *r); /* voters / 2 + 1 */
/* 1 when the voters in mask (bit per prs slot) form a quorum. */
int rep_mask_quorum(const struct rep *r, uint32_t mask);

/* election.c */
void rep_become_follower(struct rep *r, uint64_t term, uint64_t leader);
void rep_become_leader(struct rep *r);
void rep_campaign(struct rep *r, int pre, int transfer);
void rep_tick_election(struct rep *r);
void rep_tick_leader(struct rep *r);
void rep_handle_vote(struct rep *r, const struct rep_msg *m);
void rep_handle_vote_resp(struct rep *r, const struct rep_msg *m);
int rep_step_term(struct rep *r, const struct rep_msg *m);
void rep_reset_timeout(struct rep *r);
void rep_abort_transfer(struct rep *r);
void rep_handle_timeout_now(struct rep *r, const struct rep_msg *m);

/* replication.c */
/* 1 when a message (append or snapshot) was queued for pr. */
int rep_send_append(struct rep *r, struct rep_progress *pr, int send_empty);
void rep_bcast_append(struct rep *r);
void rep_bcast_heartbeat(struct rep *r, const uint8_t *ctx, uint32_t len);
int rep_handle_append(struct rep *r, const struct rep_msg *m);
void rep_handle_append_resp(struct rep *r, const struct rep_msg *m);
void rep_handle_heartbeat(struct rep *r, const struct rep_msg *m);
void rep_handle_heartbeat_resp(struct rep *r, const struct rep_msg *m);
int rep_maybe_commit(struct rep *r);
void rep_commit_to(struct rep *r, uint64_t idx);

/* membership.c */
int conf_has(const struct rep_conf *c, uint64_t id);
/* 1 when id may send to this node (see rep_step in raft.h). */
int rep_is_member_or_joining(const struct rep *r, uint64_t id);
int conf_apply(struct rep_conf *c, const uint8_t *data, size_t len);
void rep_conf_to_meta(const struct rep_conf *c, struct rep_snapshot_meta *m);
void rep_conf_from_meta(struct rep_conf *c, const struct rep_snapshot_meta *m);
int rep_conf_at(const struct rep *r, uint64_t idx, struct rep_conf *out);
void rep_sync_progress(struct rep *r);
void rep_apply_conf_changes(struct rep *r, uint64_t from, uint64_t to);
int rep_conf_encode(uint32_t type, uint64_t node_id, const void *ctx,
                    size_t ctx_len, uint8_t **out, size_t *len);

/* snapshot.c */
/* 1 when a snapshot message was queued (pr now in snapshot state). */
int rep_send_snapshot(struct rep *r, struct rep_progress *pr);
void rep_handle_snapshot(struct rep *r, const struct rep_msg *m);

/* readindex.c */
void rep_reads_clear(struct rep *r);
void rep_reads_on_commit_in_term(struct rep *r);
void rep_reads_on_heartbeat_resp(struct rep *r, const struct rep_msg *m);
void rep_handle_read_index(struct rep *r, const struct rep_msg *m);
void rep_handle_read_index_resp(struct rep *r, const struct rep_msg *m);

#endif /* LORA_RAFT_INT_H */
