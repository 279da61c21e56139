/* sim_check.c - the safety properties checked after every simulated step. */
/*
 * Properties (Raft paper, Figure 3), checked incrementally so that a run of
 * thousands of steps stays cheap:
 *   - election safety: at most one leader per term (leader_of[term]);
 *   - leader append-only: a leader's last index never goes back within its
 *     term and its Readies never rewrite a stored entry (sim_node.c);
 *   - log matching: each stored entry gets a chained hash of the whole log
 *     up to it; two entries with the same (index, term) anywhere, ever,
 *     must have the same chained hash, i.e. identical logs up to there;
 *   - leader completeness: a node that becomes leader in term T holds every
 *     entry some node saw committed while in a term below T;
 *   - state machine safety: one value per applied index across all nodes,
 *     and a commit index is never re-pointed at a different entry;
 *   - commit and apply indexes never go back (also across restarts);
 *   - a node in term T never discards an entry of term T (sim_node.c): only
 *     T's leader makes such entries and it never rewrites them.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

uint64_t sim_dlog_last(const struct sim_dlog *l)
{
	return l->snap.index + l->n;
}

uint64_t sim_dlog_chain(const struct sim_dlog *l, uint64_t idx)
{
	if (idx == l->snap.index)
		return l->snap_chain;
	return l->chain[idx - l->snap.index - 1];
}

static void grow(uint64_t **a, size_t *cap, size_t need)
{
	if (need < *cap)
		return;
	size_t n = *cap ? *cap : 256;
	while (n <= need)
		n *= 2;
	*a = realloc(*a, n * sizeof(uint64_t));
	memset(*a + *cap, 0, (n - *cap) * sizeof(uint64_t));
	*cap = n;
}

static void grow_idx(struct sim *s, uint64_t idx)
{
	size_t cap = s->cap_idx;
	grow(&s->cchain, &cap, idx);
	cap = s->cap_idx;
	grow(&s->applied, &cap, idx);
	s->cap_idx = cap;
}

static void grow_term(struct sim *s, uint64_t term)
{
	size_t cap = s->cap_terms;
	grow(&s->leader_of, &cap, term);
	cap = s->cap_terms;
	grow(&s->cmax, &cap, term);
	s->cap_terms = cap;
}

/* Open-addressing table (index, term) -> chain; 3 words per slot. */
static uint64_t *ht_slot(struct sim *s, uint64_t idx, uint64_t term)
{
	size_t mask = s->ht_cap - 1;
	size_t h = (size_t)sim_mix(idx, term) & mask;
	for (;;) {
		uint64_t *e = &s->ht[h * 3];
		if ((e[0] == idx && e[1] == term) || e[0] == 0)
			return e;
		h = (h + 1) & mask;
	}
}

static void ht_grow(struct sim *s)
{
	size_t old_cap = s->ht_cap;
	uint64_t *old = s->ht;
	s->ht_cap = old_cap ? old_cap * 2 : 4096;
	s->ht = calloc(s->ht_cap * 3, sizeof(uint64_t));
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i * 3] == 0)
			continue;
		uint64_t *e = ht_slot(s, old[i * 3], old[i * 3 + 1]);
		memcpy(e, &old[i * 3], 3 * sizeof(uint64_t));
	}
	free(old);
}

void sim_check_entries(struct sim *s, struct sim_node *n, size_t first)
{
	for (size_t i = first; i < n->log.n; i++) {
		if ((s->ht_n + 1) * 2 > s->ht_cap)
			ht_grow(s);
		const struct rep_entry *e = &n->log.e[i];
		uint64_t *slot = ht_slot(s, e->index, e->term);
		if (slot[0] == 0) {
			slot[0] = e->index;
			slot[1] = e->term;
			slot[2] = n->log.chain[i];
			s->ht_n++;
		} else if (slot[2] != n->log.chain[i]) {
			sim_fail(s,
			         "log matching: node %llu entry (%llu, term "
			         "%llu) differs from another log's",
			         (unsigned long long)n->id,
			         (unsigned long long)e->index,
			         (unsigned long long)e->term);
		}
	}
}

void sim_check_commit(struct sim *s, struct sim_node *n, uint64_t commit)
{
	if (commit < n->last_commit)
		sim_fail(s, "node %llu commit went back %llu -> %llu",
		         (unsigned long long)n->id,
		         (unsigned long long)n->last_commit,
		         (unsigned long long)commit);
	n->last_commit = commit;
	if (commit > sim_dlog_last(&n->log)) {
		sim_fail(s, "node %llu commit %llu beyond its log",
		         (unsigned long long)n->id, (unsigned long long)commit);
		return;
	}
	grow_idx(s, commit);
	grow_term(s, n->hs.term);
	if (s->cmax[n->hs.term] < commit)
		s->cmax[n->hs.term] = commit;
	uint64_t from = n->log.snap.index;
	for (uint64_t i = commit; i >= from && i > 0; i--) {
		uint64_t c = sim_dlog_chain(&n->log, i);
		if (i > s->gcommit) {
			s->cchain[i] = c;
			continue;
		}
		if (s->cchain[i] != c)
			sim_fail(s,
			         "node %llu committed a different entry at "
			         "%llu",
			         (unsigned long long)n->id,
			         (unsigned long long)i);
		break; /* chained: the prefix below matches too */
	}
	if (commit > s->gcommit) {
		s->gcommit = commit;
		s->commits_seen++;
	}
}

void sim_check_apply(struct sim *s, struct sim_node *n, uint64_t idx,
                     uint64_t value)
{
	grow_idx(s, idx);
	if (s->applied[idx] == 0)
		s->applied[idx] = value;
	else if (s->applied[idx] != value)
		sim_fail(s, "node %llu applied a different entry at %llu",
		         (unsigned long long)n->id, (unsigned long long)idx);
	if (idx > n->last_applied)
		n->last_applied = idx;
}

void sim_check_new_leader(struct sim *s, struct sim_node *n, uint64_t term)
{
	uint64_t need = 0;
	grow_term(s, term);
	for (uint64_t t = 0; t < term; t++)
		if (s->cmax[t] > need)
			need = s->cmax[t];
	if (need > sim_dlog_last(&n->log)) {
		sim_fail(s,
		         "leader completeness: node %llu leads term %llu "
		         "without committed entry %llu",
		         (unsigned long long)n->id, (unsigned long long)term,
		         (unsigned long long)need);
		return;
	}
	if (need >= n->log.snap.index &&
	    sim_dlog_chain(&n->log, need) != s->cchain[need])
		sim_fail(s,
		         "leader completeness: node %llu leads term %llu "
		         "with a different entry %llu",
		         (unsigned long long)n->id, (unsigned long long)term,
		         (unsigned long long)need);
}

/*
 * Check-quorum: a leader that heard nothing of its term from a quorum of
 * voters (itself counted) for more than an election timeout (12 ticks,
 * one step each, plus one for the order of delivery and tick) must have
 * stepped down.
 */
#define SIM_CQ_TICKS_MAX 13
static void check_quorum(struct sim *s, struct sim_node *n,
                         const struct rep_status *st)
{
	if (n->cq_term != st->term) {
		n->cq_term = st->term;
		n->cq_since = s->now;
	}
	uint32_t voters = 0, heard = 0;
	for (uint32_t i = 0; i < st->n_peers; i++) {
		uint64_t id = st->peers[i].id;
		if (!st->peers[i].voter)
			continue;
		voters++;
		uint64_t at = id <= SIM_NODES_MAX ? n->heard[id] : 0;
		if (at < n->cq_since)
			at = n->cq_since;
		if (id == n->id || s->now - at <= SIM_CQ_TICKS_MAX)
			heard++;
	}
	if (voters > 0 && heard < voters / 2 + 1)
		sim_fail(s,
		         "check-quorum: node %llu still leads term %llu having "
		         "heard from %u of %u voters within %d ticks",
		         (unsigned long long)n->id,
		         (unsigned long long)st->term, heard, voters,
		         SIM_CQ_TICKS_MAX);
}

void sim_check_step(struct sim *s)
{
	for (uint32_t i = 0; i < s->n_slots; i++) {
		struct sim_node *n = &s->nodes[i];
		if (!n->up)
			continue;
		struct rep_status st;
		rep_status(n->r, &st);
		if (st.commit < n->last_commit)
			sim_fail(s, "node %llu commit went back",
			         (unsigned long long)n->id);
		if (st.role != REP_LEADER)
			continue;
		grow_term(s, st.term);
		if (s->leader_of[st.term] == 0)
			s->leader_of[st.term] = n->id;
		else if (s->leader_of[st.term] != n->id)
			sim_fail(s, "two leaders in term %llu: %llu and %llu",
			         (unsigned long long)st.term,
			         (unsigned long long)s->leader_of[st.term],
			         (unsigned long long)n->id);
		if (n->leader_term == st.term && st.last_index < n->lead_last)
			sim_fail(s, "leader %llu log shrank",
			         (unsigned long long)n->id);
		n->lead_last = st.last_index;
		check_quorum(s, n, &st);
	}
}

void sim_check_free(struct sim *s)
{
	free(s->leader_of);
	free(s->cmax);
	free(s->cchain);
	free(s->applied);
	free(s->ht);
}
