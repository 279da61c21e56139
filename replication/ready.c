/* ready.c - the Ready/advance handshake between the core and its caller. */
/*
 * rep_ready() reports everything that changed since the last rep_advance():
 * the hard and soft state (compared with what was last reported), the
 * entries after `stable` (to persist), the queued messages (their entry
 * ranges turned into pointers into the log now), the committed entries
 * that are durable locally and not yet applied, and confirmed reads.
 * Nothing in the core changes until rep_advance(), so those pointers stay
 * valid. The leader flushes its pending appends here: proposals made since
 * the last Ready go out together, one message per follower.
 */
#include <string.h>

#include "raft_int.h"

/* 1 when rep_send_append(pr, 0) would queue something. */
static int wants_append(const struct rep *r, const struct rep_progress *pr)
{
	if (pr->id == r->id || pr_is_paused(pr, r->cfg.inflight_max))
		return 0;
	if (pr->next - 1 < r->log.snap_index)
		return pr->recent_active; /* a snapshot, if it looks alive */
	return pr->next <= log_last(&r->log);
}

static int need_flush(const struct rep *r)
{
	if (r->role != REP_LEADER)
		return 0;
	for (uint32_t i = 0; i < r->n_prs; i++)
		if (wants_append(r, &r->prs[i]))
			return 1;
	return 0;
}

static uint64_t apply_hi(const struct rep *r)
{
	uint64_t hi =
	    r->log.commit < r->log.stable ? r->log.commit : r->log.stable;
	if (hi > r->log.applied + REP_READY_APPLY_ENTRIES_MAX)
		hi = r->log.applied + REP_READY_APPLY_ENTRIES_MAX;
	return hi;
}

int rep_has_ready(const struct rep *r)
{
	const struct rep_hard_state *p = &r->prev_hs;
	if (p->term != r->term || p->vote != r->vote ||
	    p->commit != r->log.commit)
		return 1;
	if (r->prev_ss.leader != r->leader || r->prev_ss.role != r->role)
		return 1;
	return r->has_pending_snap || r->nq > 0 || r->n_ready_reads > 0 ||
	       r->log.stable < log_last(&r->log) ||
	       r->log.applied < apply_hi(r) || need_flush(r);
}

static int materialise(struct rep *r, struct rep_msg *out,
                       const struct rep_omsg *o)
{
	*out = o->m;
	if (o->lo > o->hi)
		return 1;
	const struct rep_log *l = &r->log;
	if (r->role != REP_LEADER || o->m.term != r->term ||
	    o->lo <= l->snap_index || o->hi > log_last(l) ||
	    log_term(l, o->lo - 1) != o->m.log_term)
		return 0; /* the entries are gone: drop, Raft retries */
	out->entries = log_at(l, o->lo);
	out->n_entries = (size_t)(o->hi - o->lo + 1);
	return 1;
}

static void fill_msgs(struct rep *r, struct rep_ready *rd)
{
	if (r->nq > r->cap_out) {
		struct rep_msg *o = lora_realloc(r->out, r->nq * sizeof(*o));
		if (o == NULL) {
			r->nq = 0; /* out of memory: drop them all */
			return;
		}
		r->out = o;
		r->cap_out = r->nq;
	}
	size_t n = 0;
	for (size_t i = 0; i < r->nq; i++)
		n += (size_t)materialise(r, &r->out[n], &r->q[i]);
	rd->msgs = r->out;
	rd->n_msgs = n;
}

void rep_ready(struct rep *r, struct rep_ready *rd)
{
	memset(rd, 0, sizeof(*rd));
	if (r->role == REP_LEADER)
		for (uint32_t i = 0; i < r->n_prs; i++)
			while (wants_append(r, &r->prs[i]) &&
			       rep_send_append(r, &r->prs[i], 0))
				;
	rd->soft = (struct rep_soft_state){r->leader, r->role};
	rd->has_soft_state =
	    r->prev_ss.leader != r->leader || r->prev_ss.role != r->role;
	rd->hs = (struct rep_hard_state){r->term, r->vote, r->log.commit};
	rd->has_hard_state = memcmp(&rd->hs, &r->prev_hs, sizeof(rd->hs)) != 0;
	r->prev_ss = rd->soft;
	r->prev_hs = rd->hs;
	if (r->has_pending_snap) {
		rd->has_snapshot = 1;
		rd->snapshot = r->pending_snap;
	}
	uint64_t last = log_last(&r->log);
	if (r->log.stable < last) {
		rd->entries = log_at(&r->log, r->log.stable + 1);
		rd->n_entries = (size_t)(last - r->log.stable);
	}
	uint64_t hi = apply_hi(r);
	if (r->log.applied < hi) {
		rd->committed = log_at(&r->log, r->log.applied + 1);
		rd->n_committed = (size_t)(hi - r->log.applied);
	}
	fill_msgs(r, rd);
	rd->reads = r->ready_reads;
	rd->n_reads = r->n_ready_reads;
}

void rep_advance(struct rep *r, const struct rep_ready *rd)
{
	r->nq = 0;
	r->n_ready_reads = 0;
	if (rd->has_snapshot)
		r->has_pending_snap = 0;
	if (rd->n_committed > 0) {
		uint64_t a = rd->committed[rd->n_committed - 1].index;
		LORA_ASSERT(a > r->log.applied);
		r->log.applied = a;
	}
	if (rd->n_entries > 0) {
		uint64_t s = rd->entries[rd->n_entries - 1].index;
		LORA_ASSERT(s == log_last(&r->log));
		r->log.stable = s;
		struct rep_progress *self = rep_pr(r, r->id);
		if (self != NULL && r->role == REP_LEADER) {
			self->match = s;
			self->next = s + 1;
			if (rep_maybe_commit(r))
				rep_bcast_append(r);
		}
	}
}
