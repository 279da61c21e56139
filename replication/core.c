/* core.c - Raft core lifecycle, message dispatch and shared helpers. */
/*
 * rep_step() first validates a message from a peer (never trusting it),
 * then lets election.c settle the term (rep_step_term), then dispatches by
 * role and type. Outgoing messages are queued by rep_send(); entries they
 * carry are kept as index ranges and only turned into pointers into the
 * log when rep_ready() hands them out, so the log may grow meanwhile.
 * Randomness is a splitmix64 generator seeded by the caller.
 */
#include <string.h>

#include "raft_int.h"

void rep_config_init(struct rep_config *cfg, uint64_t id)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = id;
	cfg->election_ticks = 10;
	cfg->heartbeat_ticks = 1;
	cfg->seed = id;
	cfg->msg_entries_max = 1024;
	cfg->msg_bytes_max = 1u << 20;
	cfg->inflight_max = 256;
	cfg->uncommitted_entries_max = 65536;
	cfg->pre_vote = 1;
	cfg->check_quorum = 1;
}

uint64_t rep_rand(struct rep *r)
{
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int check_config(const struct rep_config *c, char *errmsg)
{
	if (c->id == REP_NONE)
		return lora_errf(LORA_EINVAL, errmsg, "node id must be >= 1");
	if (c->n_voters > REP_MEMBERS_MAX)
		return lora_errf(LORA_EINVAL, errmsg, "%u voters > %d",
		                 c->n_voters, REP_MEMBERS_MAX);
	/* The vote lease (election_ticks - 1) must outlast one lost
	 * heartbeat, and the timeout spread (election_ticks / 2) must be at
	 * least 2 ticks, or every node times out together (both hold from
	 * 2 * heartbeat_ticks + 2 on, as heartbeat_ticks >= 1). */
	if (c->heartbeat_ticks == 0 ||
	    c->election_ticks < 2 * c->heartbeat_ticks + 2)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "election_ticks %u must be >= 2 * "
		                 "heartbeat_ticks + 2 = %u (heartbeat_ticks "
		                 ">= 1)",
		                 c->election_ticks, 2 * c->heartbeat_ticks + 2);
	if (c->inflight_max == 0 || c->inflight_max > REP_INFLIGHT_MAX)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "inflight_max must be in 1..%d",
		                 REP_INFLIGHT_MAX);
	if (c->msg_entries_max == 0 || c->msg_bytes_max == 0 ||
	    c->uncommitted_entries_max == 0)
		return lora_errf(LORA_EINVAL, errmsg, "zero message limits");
	for (uint32_t i = 0; i < c->n_voters; i++)
		if (c->voters[i] == REP_NONE)
			return lora_errf(LORA_EINVAL, errmsg, "voter id 0");
	return 0;
}

static int check_restore(const struct rep_restore *rs, char *errmsg)
{
	const struct rep_snapshot_meta *s = &rs->snap;
	if (rs->hs.term > REP_TERM_MAX)
		return lora_errf(
		    LORA_ECORRUPT, errmsg,
		    "stored term %llu is beyond the largest a "
		    "cluster reaches (%llu): a forged message set "
		    "it; remove this node and add it back as a new "
		    "member",
		    (unsigned long long)rs->hs.term,
		    (unsigned long long)REP_TERM_MAX);
	if (s->n_voters > REP_MEMBERS_MAX ||
	    s->n_learners > REP_MEMBERS_MAX - s->n_voters)
		return lora_errf(LORA_ECORRUPT, errmsg,
		                 "snapshot conf too big");
	for (size_t i = 0; i < rs->n_entries; i++) {
		const struct rep_entry *e = &rs->entries[i];
		if (e->index != s->index + 1 + i)
			return lora_errf(LORA_ECORRUPT, errmsg,
			                 "entry %zu has index %llu", i,
			                 (unsigned long long)e->index);
		uint64_t prev = i ? rs->entries[i - 1].term : s->term;
		if (e->term < prev || e->term > rs->hs.term)
			return lora_errf(LORA_ECORRUPT, errmsg,
			                 "entry %llu has term %llu",
			                 (unsigned long long)e->index,
			                 (unsigned long long)e->term);
	}
	uint64_t last = s->index + rs->n_entries;
	/* The commit index may be persisted lazily (it only moves forward
	 * and is re-learned from the leader), so it may lag `applied`. */
	if (rs->hs.commit > last || rs->applied > last ||
	    rs->applied < s->index)
		return lora_errf(
		    LORA_ECORRUPT, errmsg,
		    "need snap %llu <= applied %llu <= last and commit %llu "
		    "<= last %llu",
		    (unsigned long long)s->index,
		    (unsigned long long)rs->applied,
		    (unsigned long long)rs->hs.commit,
		    (unsigned long long)last);
	return 0;
}

static int restore(struct rep *r, const struct rep_restore *rs, char *errmsg)
{
	int rv = check_restore(rs, errmsg);
	if (rv != 0)
		return rv;
	r->term = rs->hs.term;
	r->vote = rs->hs.vote;
	log_reset(&r->log, rs->snap.index, rs->snap.term);
	r->log.applied = rs->applied;
	rv = log_append(&r->log, rs->entries, rs->n_entries);
	if (rv != 0)
		return lora_errf(rv, errmsg, "restore log: out of memory");
	r->log.stable = log_last(&r->log);
	uint64_t commit =
	    rs->hs.commit > rs->applied ? rs->hs.commit : rs->applied;
	r->log.commit = commit;
	if (rs->snap.index > 0 || rs->snap.n_voters > 0) {
		rep_conf_from_meta(&r->conf, &rs->snap);
		r->snap_meta = rs->snap;
	}
	rep_apply_conf_changes(r, rs->snap.index + 1, commit);
	return 0;
}

int rep_new(const struct rep_config *cfg, const struct rep_restore *rs,
            struct rep **out, char *errmsg)
{
	int rv = check_config(cfg, errmsg);
	if (rv != 0)
		return rv;
	struct rep *r = lora_calloc(1, sizeof(*r));
	if (r == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "rep_new: out of memory");
	r->cfg = *cfg;
	r->id = cfg->id;
	r->rng = cfg->seed ^ (cfg->id * 0x2545f4914f6cdd1dull);
	r->prs = lora_calloc(REP_MEMBERS_MAX, sizeof(*r->prs));
	r->infl_mem = lora_calloc((size_t)REP_MEMBERS_MAX * cfg->inflight_max,
	                          sizeof(uint64_t));
	if (!r->prs || !r->infl_mem) {
		rv = lora_errf(LORA_ENOMEM, errmsg, "rep_new: out of memory");
		goto err_free;
	}
	r->conf.n_voters = cfg->n_voters;
	memcpy(r->conf.voters, cfg->voters, sizeof(cfg->voters));
	rep_conf_to_meta(&r->conf, &r->snap_meta);
	if (rs != NULL) {
		rv = restore(r, rs, errmsg);
		if (rv != 0)
			goto err_free;
	}
	rep_sync_progress(r);
	rep_become_follower(r, r->term, REP_NONE);
	r->prev_hs = (struct rep_hard_state){r->term, r->vote, r->log.commit};
	r->prev_ss = (struct rep_soft_state){REP_NONE, REP_FOLLOWER};
	*out = r;
	return 0;
err_free:
	rep_free(r);
	return rv;
}

void rep_free(struct rep *r)
{
	if (r == NULL)
		return;
	log_free(&r->log);
	lora_free(r->prs);
	lora_free(r->infl_mem);
	lora_free(r->reads);
	lora_free(r->waiting);
	lora_free(r->ready_reads);
	lora_free(r->q);
	lora_free(r->out);
	lora_free(r);
}

/* ---- helpers ------------------------------------------------------------ */

void rep_msg_init(struct rep_msg *m, uint32_t type, uint64_t to, uint64_t term)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->to = to;
	m->term = term;
}

void rep_send_ents(struct rep *r, const struct rep_msg *m, uint64_t lo,
                   uint64_t hi)
{
	LORA_ASSERT(m->to != r->id && m->to != REP_NONE);
	if (r->nq >= REP_MSGS_QUEUE_MAX)
		return; /* behaves like a dropped message */
	if (r->nq == r->capq) {
		size_t cap = r->capq ? r->capq * 2 : 16;
		struct rep_omsg *q = lora_realloc(r->q, cap * sizeof(*q));
		if (q == NULL)
			return; /* out of memory: dropped, Raft retries */
		r->q = q;
		r->capq = cap;
	}
	struct rep_omsg *o = &r->q[r->nq++];
	o->m = *m;
	o->m.from = r->id;
	o->m.entries = NULL;
	o->m.n_entries = 0;
	o->lo = lo;
	o->hi = hi;
}

void rep_send(struct rep *r, const struct rep_msg *m)
{
	rep_send_ents(r, m, 1, 0);
}

int rep_pr_slot(const struct rep *r, uint64_t id)
{
	for (uint32_t i = 0; i < r->n_prs; i++)
		if (r->prs[i].id == id)
			return (int)i;
	return -1;
}

struct rep_progress *rep_pr(struct rep *r, uint64_t id)
{
	int i = rep_pr_slot(r, id);
	return i < 0 ? NULL : &r->prs[i];
}

int rep_is_voter(const struct rep *r, uint64_t id)
{
	for (uint32_t i = 0; i < r->conf.n_voters; i++)
		if (r->conf.voters[i] == id)
			return 1;
	return 0;
}

int rep_quorum(const struct rep *r)
{
	return (int)r->conf.n_voters / 2 + 1;
}

int rep_mask_quorum(const struct rep *r, uint32_t mask)
{
	int n = 0;
	for (uint32_t i = 0; i < r->n_prs; i++)
		if ((mask >> i) & 1u && r->prs[i].voter)
			n++;
	return r->conf.n_voters > 0 && n >= rep_quorum(r);
}
