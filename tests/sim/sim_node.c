/* sim_node.c - one simulated node: durable state, boot, crash, Ready loop. */
/*
 * The node keeps what a real daemon keeps on disk: the hard state, the log
 * after its compaction point, and its state machine (the applied values).
 * Booting builds a core from exactly that. Processing a Ready follows the
 * order documented in raft.h: the leader-only messages go out first, then
 * (maybe) the node crashes before its write, then the write, the other
 * messages, the applies and rep_advance.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* Crash inside a Ready, between the early sends and the write. */
#define SIM_CRASH_IN_READY_PM 3

struct sim_node *sim_node_by_id(struct sim *s, uint64_t id)
{
	for (uint32_t i = 0; i < s->n_slots; i++)
		if (s->nodes[i].exists && s->nodes[i].id == id)
			return &s->nodes[i];
	return NULL;
}

int sim_node_boot(struct sim *s, struct sim_node *n)
{
	struct rep_config cfg;
	rep_config_init(&cfg, n->id);
	cfg.n_voters = s->o.voters;
	for (uint32_t i = 0; i < s->o.voters; i++)
		cfg.voters[i] = i + 1;
	cfg.election_ticks = 12;
	cfg.heartbeat_ticks = 2;
	cfg.seed = sim_rand(s);
	static const uint32_t batch[] = {1, 1, 2, 4, 8, 64};
	cfg.msg_entries_max = batch[sim_below(s, 6)];
	static const uint32_t window[] = {1, 2, 4, 64};
	cfg.inflight_max = window[sim_below(s, 4)];
	struct rep_restore rs = {0};
	rs.hs = n->hs;
	rs.snap = n->log.snap;
	rs.entries = n->log.e;
	rs.n_entries = n->log.n;
	rs.applied = n->sm_n;
	char msg[LORA_ERRMSG_BYTES];
	int rv = rep_new(&cfg, &rs, &n->r, msg);
	if (rv != 0) {
		sim_fail(s, "node %llu restart: %s", (unsigned long long)n->id,
		         msg);
		return rv;
	}
	n->up = 1;
	n->boots++;
	n->leader_term = 0;
	return 0;
}

void sim_node_crash(struct sim *s, struct sim_node *n)
{
	if (!n->up)
		return;
	rep_free(n->r);
	n->r = NULL;
	n->up = 0;
	s->crashes++;
}

void sim_node_stage_snapshot(struct sim_node *n, const uint64_t *sm,
                             uint64_t len)
{
	free(n->staged[SIM_STAGED_MAX - 1]);
	memmove(n->staged + 1, n->staged,
	        (SIM_STAGED_MAX - 1) * sizeof(n->staged[0]));
	memmove(n->staged_n + 1, n->staged_n,
	        (SIM_STAGED_MAX - 1) * sizeof(n->staged_n[0]));
	n->staged[0] = malloc((len + 1) * sizeof(uint64_t));
	memcpy(n->staged[0], sm, len * sizeof(uint64_t));
	n->staged_n[0] = len;
}

static void dlog_truncate(struct sim_dlog *l, uint64_t from)
{
	while (l->n > 0 && l->e[l->n - 1].index >= from) {
		free(l->e[l->n - 1].data);
		l->n--;
	}
}

static void dlog_append(struct sim_dlog *l, const struct rep_entry *e)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->e = realloc(l->e, l->cap * sizeof(*l->e));
		l->chain = realloc(l->chain, l->cap * sizeof(*l->chain));
	}
	uint64_t prev = l->n ? l->chain[l->n - 1] : l->snap_chain;
	l->e[l->n] = *e;
	if (e->len > 0) {
		l->e[l->n].data = malloc(e->len);
		memcpy(l->e[l->n].data, e->data, e->len);
	}
	l->chain[l->n] = sim_mix(prev, sim_entry_hash(e));
	l->n++;
}

static void install_snapshot(struct sim *s, struct sim_node *n,
                             const struct rep_snapshot_meta *meta)
{
	if (meta->index > s->gcommit) {
		sim_fail(s, "node %llu installs snapshot %llu past commit %llu",
		         (unsigned long long)n->id,
		         (unsigned long long)meta->index,
		         (unsigned long long)s->gcommit);
		return;
	}
	int k = 0;
	while (k < SIM_STAGED_MAX &&
	       (n->staged[k] == NULL || n->staged_n[k] != meta->index))
		k++;
	if (k == SIM_STAGED_MAX) {
		sim_fail(s, "node %llu: snapshot %llu was never staged",
		         (unsigned long long)n->id,
		         (unsigned long long)meta->index);
		return;
	}
	dlog_truncate(&n->log, 0);
	n->log.snap = *meta;
	n->log.snap_chain = s->cchain[meta->index];
	free(n->sm);
	n->sm = n->staged[k];
	n->sm_n = n->sm_cap = meta->index;
	n->staged[k] = NULL;
	for (int i = 0; i < SIM_STAGED_MAX; i++) {
		free(n->staged[i]);
		n->staged[i] = NULL;
		n->staged_n[i] = 0;
	}
	for (uint64_t i = 1; i <= meta->index; i++)
		sim_check_apply(s, n, i, n->sm[i - 1]);
	s->snaps_installed++;
}

/*
 * Only a leader of term T creates entries of term T and it never rewrites
 * them, so a node in term T may discard entries of older terms only.
 */
static void check_truncation(struct sim *s, struct sim_node *n, uint64_t first,
                             uint64_t term)
{
	for (size_t k = n->log.n; k > 0 && n->log.e[k - 1].index >= first;
	     k--) {
		const struct rep_entry *e = &n->log.e[k - 1];
		if (e->term >= term)
			sim_fail(s,
			         "node %llu in term %llu discards entry "
			         "(%llu, term %llu)",
			         (unsigned long long)n->id,
			         (unsigned long long)term,
			         (unsigned long long)e->index,
			         (unsigned long long)e->term);
	}
}

static void persist(struct sim *s, struct sim_node *n,
                    const struct rep_ready *rd)
{
	if (rd->has_snapshot)
		install_snapshot(s, n, &rd->snapshot);
	if (rd->n_entries > 0) {
		uint64_t first = rd->entries[0].index;
		if (n->leader_term != 0 && n->leader_term == rd->hs.term &&
		    rd->soft.role == REP_LEADER &&
		    first <= sim_dlog_last(&n->log))
			sim_fail(s, "leader %llu overwrote its entry %llu",
			         (unsigned long long)n->id,
			         (unsigned long long)first);
		if (first <= n->log.snap.index) {
			sim_fail(s,
			         "node %llu persists entry %llu below its "
			         "compaction point",
			         (unsigned long long)n->id,
			         (unsigned long long)first);
			return;
		}
		check_truncation(s, n, first, rd->hs.term);
		dlog_truncate(&n->log, first);
		size_t at = n->log.n;
		for (size_t i = 0; i < rd->n_entries; i++)
			dlog_append(&n->log, &rd->entries[i]);
		sim_check_entries(s, n, at);
	}
	if (rd->has_hard_state) {
		if (rd->hs.term < n->hs.term)
			sim_fail(s, "node %llu term went back",
			         (unsigned long long)n->id);
		n->hs = rd->hs;
		sim_check_commit(s, n, rd->hs.commit);
	}
}

static int early(uint32_t type)
{
	return type == REP_MSG_APP || type == REP_MSG_HEARTBEAT ||
	       type == REP_MSG_SNAPSHOT || type == REP_MSG_TIMEOUT_NOW;
}

static void apply(struct sim *s, struct sim_node *n, const struct rep_ready *rd)
{
	for (size_t i = 0; i < rd->n_committed; i++) {
		const struct rep_entry *e = &rd->committed[i];
		if (e->index != n->sm_n + 1 || e->index > n->hs.commit) {
			sim_fail(s,
			         "node %llu applies %llu after %llu "
			         "(commit %llu)",
			         (unsigned long long)n->id,
			         (unsigned long long)e->index,
			         (unsigned long long)n->sm_n,
			         (unsigned long long)n->hs.commit);
			return;
		}
		if (n->sm_n == n->sm_cap) {
			n->sm_cap = n->sm_cap ? n->sm_cap * 2 : 64;
			n->sm = realloc(n->sm, n->sm_cap * sizeof(uint64_t));
		}
		uint64_t v = sim_entry_hash(e);
		n->sm[n->sm_n++] = v;
		sim_check_apply(s, n, e->index, v);
	}
}

static void serve_reads(struct sim *s, struct sim_node *n,
                        const struct rep_ready *rd)
{
	for (size_t i = 0; i < rd->n_reads; i++) {
		for (uint32_t k = 0; k < s->n_reads; k++) {
			struct sim_read *q = &s->reads[k];
			if (q->node != n->id ||
			    rd->reads[i].ctx_len != sizeof(q->ctx) ||
			    memcmp(q->ctx, rd->reads[i].ctx, sizeof(q->ctx)))
				continue;
			if (rd->reads[i].index < q->min_index)
				sim_fail(s,
				         "read on %llu at index %llu misses "
				         "commit %llu",
				         (unsigned long long)n->id,
				         (unsigned long long)rd->reads[i].index,
				         (unsigned long long)q->min_index);
			s->reads[k] = s->reads[--s->n_reads];
			s->reads_done++;
			break;
		}
	}
}

/* One Ready: returns 0 if the node crashed in the middle. */
static int one_ready(struct sim *s, struct sim_node *n)
{
	struct rep_ready rd;
	rep_ready(n->r, &rd);
	int new_leader =
	    rd.soft.role == REP_LEADER && n->leader_term != rd.hs.term;
	if (new_leader && !s->calm &&
	    sim_below(s, 100) < s->new_leader_crash_pct) {
		/* Its first entry is written but reaches nobody. */
		persist(s, n, &rd);
		sim_node_crash(s, n);
		return 0;
	}
	for (size_t i = 0; i < rd.n_msgs; i++)
		if (early(rd.msgs[i].type))
			sim_net_send(s, n, &rd.msgs[i]);
	uint32_t crash_pm = SIM_CRASH_IN_READY_PM;
	if (rd.has_hard_state &&
	    (rd.hs.term != n->hs.term || rd.hs.vote != n->hs.vote))
		crash_pm = s->vote_crash_pm; /* the interesting moments */
	if (!s->calm && sim_chance_pm(s, crash_pm)) {
		sim_node_crash(s, n);
		return 0;
	}
	persist(s, n, &rd);
	for (size_t i = 0; i < rd.n_msgs; i++)
		if (!early(rd.msgs[i].type))
			sim_net_send(s, n, &rd.msgs[i]);
	apply(s, n, &rd);
	serve_reads(s, n, &rd);
	if (new_leader) {
		sim_check_new_leader(s, n, rd.hs.term);
		n->leader_term = rd.hs.term;
		n->lead_last = 0;
	}
	rep_advance(n->r, &rd);
	return 1;
}

void sim_node_ready(struct sim *s, struct sim_node *n)
{
	for (int i = 0; i < 16 && n->up && rep_has_ready(n->r); i++)
		if (!one_ready(s, n))
			return;
}

void sim_node_free(struct sim_node *n)
{
	if (n->r != NULL)
		rep_free(n->r);
	dlog_truncate(&n->log, 0);
	free(n->log.e);
	free(n->log.chain);
	free(n->sm);
	for (int i = 0; i < SIM_STAGED_MAX; i++)
		free(n->staged[i]);
	memset(n, 0, sizeof(*n));
}
