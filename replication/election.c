/* election.c - terms, votes, pre-vote, check-quorum and leadership transfer. */
/*
 * Roles follow the thesis (chapter 3 and 9):
 *   - a follower or candidate whose randomised timeout expires starts a
 *     pre-vote round (term + 1 offered, own term unchanged) when pre_vote is
 *     on, and a real election (term + 1, vote for itself) once a quorum
 *     would vote for it;
 *   - with check_quorum, a node that heard from a live leader within the
 *     minimum election timeout ignores (pre-)vote requests, so a partitioned
 *     node rejoining cannot depose a healthy leader; and a leader that did
 *     not hear from a quorum within the last election timeout steps down
 *     (checked every tick, see quorum_heard);
 *   - TimeoutNow makes the transfer target campaign at once, with a
 *     "transfer" context that lets voters bypass the lease check.
 * The vote and term are part of the hard state: every reply that depends on
 * them sits in the Ready's messages, which go out only after the caller
 * persisted that hard state.
 */
#include <string.h>

#include "raft_int.h"

static const char transfer_ctx[] = "transfer";

/*
 * A follower's timeout is drawn in [T, 1.5 T) ticks (T = election_ticks),
 * not etcd's [T, 2 T): the spread only has to separate the followers'
 * timers by more than a vote round trip (pre-vote makes a split vote cost
 * one more timeout, never safety), and the top of the range is what a
 * client waits for a new leader after the leader dies. Raft's safety never
 * depends on timing (linearizable reads use ReadIndex, never a lease).
 */
void rep_reset_timeout(struct rep *r)
{
	uint32_t et = r->cfg.election_ticks;
	uint32_t spread = et / 2;
	LORA_ASSERT(spread >= 2); /* check_config: et >= 4 */
	r->randomized_timeout = et + (uint32_t)(rep_rand(r) % spread);
}

/*
 * The vote lease: for this many ticks after hearing from the leader a node
 * ignores (pre-)vote requests (check-quorum), so a node that rejoins after
 * a partition cannot depose a leader that is alive. One tick below the
 * smallest election timeout: the first follower to time out counts its T
 * ticks on its own clock, whose ticks fall up to one tick apart from the
 * other followers'; with a lease of a full T they would still be inside it
 * and ignore its pre-vote, and the election would wait for a second timer.
 * A live leader's heartbeats come every heartbeat_ticks ticks, and
 * check_config requires T >= 2 * heartbeat_ticks + 2, so the lease still
 * covers it when one heartbeat is lost. It protects liveness only: no read is
 * served on the strength of it.
 */
static int in_lease(const struct rep *r)
{
	if (r->leader == REP_NONE)
		return 0;
	/* A leader is its own live leader: it always ignores them (its
	 * election_elapsed counts its check period, not silence). */
	return r->role == REP_LEADER ||
	       r->election_elapsed < r->cfg.election_ticks - 1;
}

void rep_abort_transfer(struct rep *r)
{
	r->transferee = REP_NONE;
}

static void reset(struct rep *r, uint64_t term)
{
	if (r->term != term) {
		LORA_ASSERT(term > r->term);
		r->term = term;
		r->vote = REP_NONE;
	}
	r->leader = REP_NONE;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	r->votes_granted = 0;
	r->votes_rejected = 0;
	rep_reset_timeout(r);
	rep_abort_transfer(r);
	rep_reads_clear(r);
}

void rep_become_follower(struct rep *r, uint64_t term, uint64_t leader)
{
	reset(r, term);
	r->role = REP_FOLLOWER;
	r->leader = leader;
	if (leader != REP_NONE)
		r->ticks_since_leader = 0;
}

static void become_pre_candidate(struct rep *r)
{
	LORA_ASSERT(r->role != REP_LEADER);
	r->role = REP_PRE_CANDIDATE;
	r->votes_granted = 0;
	r->votes_rejected = 0;
	r->leader = REP_NONE;
	/* The term does not change: a pre-vote must not disturb anyone. */
}

static void become_candidate(struct rep *r)
{
	LORA_ASSERT(r->role != REP_LEADER);
	reset(r, r->term + 1);
	r->vote = r->id;
	r->role = REP_CANDIDATE;
}

void rep_become_leader(struct rep *r)
{
	LORA_ASSERT(r->role == REP_CANDIDATE);
	reset(r, r->term);
	r->role = REP_LEADER;
	r->leader = r->id;
	uint64_t last = log_last(&r->log);
	for (uint32_t i = 0; i < r->n_prs; i++) {
		pr_reset(&r->prs[i], last + 1);
		r->prs[i].recent_active = 1;
		if (r->prs[i].id == r->id) {
			r->prs[i].match = r->log.stable;
			pr_become_replicate(&r->prs[i]);
		}
	}
	/* The no-op entry commits the entries of previous terms (fig. 8) and
	 * gates membership changes and read-index until it commits. */
	int rv = log_append_new(&r->log, r->term, REP_ENTRY_NORMAL, NULL, 0);
	LORA_ASSERT(rv == 0); /* no data: cannot fail but for the array */
	r->pending_conf_index = log_last(&r->log);
}

static void tally(struct rep *r, uint64_t from, int granted)
{
	int slot = rep_pr_slot(r, from);
	if (slot < 0 || !r->prs[slot].voter)
		return;
	if (granted)
		r->votes_granted |= 1u << slot;
	else
		r->votes_rejected |= 1u << slot;
}

void rep_campaign(struct rep *r, int pre, int transfer)
{
	uint32_t type;
	uint64_t term;
	if (pre) {
		become_pre_candidate(r);
		type = REP_MSG_PREVOTE;
		term = r->term + 1;
	} else {
		become_candidate(r);
		type = REP_MSG_VOTE;
		term = r->term;
	}
	tally(r, r->id, 1);
	if (rep_mask_quorum(r, r->votes_granted)) {
		if (pre)
			rep_campaign(r, 0, transfer);
		else
			rep_become_leader(r);
		return;
	}
	for (uint32_t i = 0; i < r->n_prs; i++) {
		if (!r->prs[i].voter || r->prs[i].id == r->id)
			continue;
		struct rep_msg m;
		rep_msg_init(&m, type, r->prs[i].id, term);
		m.index = log_last(&r->log);
		m.log_term = log_last_term(&r->log);
		if (transfer) {
			m.context_len = sizeof(transfer_ctx) - 1;
			memcpy(m.context, transfer_ctx, m.context_len);
		}
		rep_send(r, &m);
	}
}

/* A voter campaigns, unless its term is at the limit: no term after it
 * would be accepted (and term + 1 must never wrap). */
static int promotable(const struct rep *r)
{
	return rep_is_voter(r, r->id) && r->term < REP_TERM_MAX;
}

void rep_tick_election(struct rep *r)
{
	r->election_elapsed++;
	if (promotable(r) && r->election_elapsed >= r->randomized_timeout) {
		r->election_elapsed = 0;
		rep_campaign(r, r->cfg.pre_vote, 0);
	}
}

/*
 * Check-quorum, as a sliding window: the leader steps down as soon as
 * fewer than a quorum of voters (itself included) were heard from within
 * the last election timeout. Checking only at the end of each election
 * period (etcd's way) lets a cut-off leader go on for up to two timeouts,
 * answering nobody; this way it knows after one and its caller can answer
 * the work it holds at once.
 */
static int quorum_heard(const struct rep *r)
{
	uint32_t heard = 0;
	for (uint32_t i = 0; i < r->n_prs; i++)
		if (r->prs[i].id == r->id ||
		    r->prs[i].idle_ticks < r->cfg.election_ticks)
			heard |= 1u << i;
	return rep_mask_quorum(r, heard);
}

void rep_tick_leader(struct rep *r)
{
	LORA_ASSERT(r->role == REP_LEADER);
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	if (r->cfg.check_quorum && !quorum_heard(r)) {
		rep_become_follower(r, r->term, REP_NONE);
		return;
	}
	if (r->election_elapsed >= r->cfg.election_ticks) {
		r->election_elapsed = 0;
		/* recent_active: "heard from during the last period", which
		 * decides whether a snapshot is worth sending */
		for (uint32_t i = 0; r->cfg.check_quorum && i < r->n_prs; i++)
			r->prs[i].recent_active = 0;
		rep_abort_transfer(r);
	}
	if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
		r->heartbeat_elapsed = 0;
		rep_bcast_heartbeat(r, NULL, 0);
	}
}

static int is_transfer(const struct rep_msg *m)
{
	return m->context_len == sizeof(transfer_ctx) - 1 &&
	       memcmp(m->context, transfer_ctx, m->context_len) == 0;
}

static void reply_stale(struct rep *r, const struct rep_msg *m)
{
	struct rep_msg resp;
	if (m->type == REP_MSG_APP || m->type == REP_MSG_HEARTBEAT) {
		/* Tells a deposed leader (e.g. one that was partitioned) about
		 * the newer term so it steps down; without it pre-vote and
		 * check-quorum could leave it stranded. */
		if (r->cfg.check_quorum || r->cfg.pre_vote) {
			rep_msg_init(&resp, REP_MSG_APP_RESP, m->from, r->term);
			rep_send(r, &resp);
		}
	} else if (m->type == REP_MSG_PREVOTE) {
		rep_msg_init(&resp, REP_MSG_PREVOTE_RESP, m->from, r->term);
		resp.reject = 1;
		rep_send(r, &resp);
	}
}

/*
 * Settles the term carried by m. Returns 0 when m is fully handled (or
 * ignored), 1 when the role-specific handling should go on.
 */
int rep_step_term(struct rep *r, const struct rep_msg *m)
{
	int vote_req = m->type == REP_MSG_VOTE || m->type == REP_MSG_PREVOTE;
	if (m->term > r->term) {
		if (vote_req && r->cfg.check_quorum && !is_transfer(m) &&
		    in_lease(r))
			return 0; /* inside the leader's lease: ignore */
		if (m->type == REP_MSG_PREVOTE)
			return 1; /* never changes our term */
		if (m->type == REP_MSG_PREVOTE_RESP && !m->reject)
			return 1; /* our own future term, granted */
		int from_leader = m->type == REP_MSG_APP ||
		                  m->type == REP_MSG_HEARTBEAT ||
		                  m->type == REP_MSG_SNAPSHOT;
		rep_become_follower(r, m->term,
		                    from_leader ? m->from : REP_NONE);
		return 1;
	}
	if (m->term < r->term) {
		reply_stale(r, m);
		return 0;
	}
	return 1;
}

void rep_handle_vote(struct rep *r, const struct rep_msg *m)
{
	int pre = m->type == REP_MSG_PREVOTE;
	int can_vote = r->vote == m->from ||
	               (r->vote == REP_NONE && r->leader == REP_NONE) ||
	               (pre && m->term > r->term);
	struct rep_msg resp;
	uint32_t type = pre ? REP_MSG_PREVOTE_RESP : REP_MSG_VOTE_RESP;
	if (can_vote && log_up_to_date(&r->log, m->index, m->log_term)) {
		/* Answer with the candidate's term, as etcd does: a pre-vote
		 * grant must match the term the pre-candidate offered. */
		rep_msg_init(&resp, type, m->from, m->term);
		if (!pre) {
			r->election_elapsed = 0;
			r->vote = m->from;
		}
	} else {
		rep_msg_init(&resp, type, m->from, r->term);
		resp.reject = 1;
	}
	rep_send(r, &resp);
}

void rep_handle_vote_resp(struct rep *r, const struct rep_msg *m)
{
	int pre = m->type == REP_MSG_PREVOTE_RESP;
	if ((pre && r->role != REP_PRE_CANDIDATE) ||
	    (!pre && r->role != REP_CANDIDATE))
		return;
	tally(r, m->from, !m->reject);
	if (rep_mask_quorum(r, r->votes_granted)) {
		if (pre)
			rep_campaign(r, 0, 0);
		else
			rep_become_leader(r);
	} else if (rep_mask_quorum(r, r->votes_rejected)) {
		rep_become_follower(r, r->term, REP_NONE);
	}
}

void rep_handle_timeout_now(struct rep *r, const struct rep_msg *m)
{
	(void)m;
	if (!promotable(r))
		return;
	rep_campaign(r, 0, 1);
}
