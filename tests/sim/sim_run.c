/* sim_run.c - one seeded simulation run: faults, client, liveness phases. */
/*
 * A run alternates chaos and calm. Each block of SIM_BLOCK_STEPS steps
 * starts with chaos (loss, duplication, partitions, crashes, leader
 * isolation, membership changes, compactions, transfers) and ends with
 * SIM_CALM_STEPS of calm: every partition heals, every node restarts, the
 * network stops losing messages, and a leader must be elected and a fresh
 * proposal must commit within that window (liveness).
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define SIM_BLOCK_STEPS 1000
#define SIM_CALM_STEPS  300

static struct sim_node *find_leader(struct sim *s)
{
	struct sim_node *best = NULL;
	uint64_t best_term = 0;
	for (uint32_t i = 0; i < s->n_slots; i++) {
		struct sim_node *n = &s->nodes[i];
		if (!n->up)
			continue;
		struct rep_status st;
		rep_status(n->r, &st);
		if (st.role == REP_LEADER && st.term >= best_term) {
			best = n;
			best_term = st.term;
		}
	}
	return best;
}

static struct sim_node *random_node(struct sim *s, int up)
{
	uint32_t cand[SIM_NODES_MAX], n = 0;
	for (uint32_t i = 0; i < s->n_slots; i++)
		if (s->nodes[i].exists && s->nodes[i].up == up)
			cand[n++] = i;
	return n ? &s->nodes[cand[sim_below(s, n)]] : NULL;
}

static void heal(struct sim *s)
{
	memset(s->blocked, 0, sizeof(s->blocked));
}

static void partition(struct sim *s, int one_way)
{
	heal(s);
	uint32_t mask = (uint32_t)sim_rand(s);
	for (uint32_t a = 0; a < s->n_slots; a++)
		for (uint32_t b = 0; b < s->n_slots; b++) {
			if (((mask >> a) & 1) == ((mask >> b) & 1))
				continue;
			if (one_way && ((mask >> a) & 1))
				continue;
			s->blocked[s->nodes[a].id][s->nodes[b].id] = 1;
		}
}

static void isolate(struct sim *s, struct sim_node *n)
{
	for (uint32_t i = 0; i <= SIM_NODES_MAX; i++) {
		s->blocked[n->id][i] = 1;
		s->blocked[i][n->id] = 1;
	}
}

/* An id no simulated node ever has: a stranger on the network. */
#define SIM_STRANGER_ID 100

/*
 * A hostile peer: a forged message straight into a live node's core. A
 * stranger's heartbeat with a far higher term, its append of an entry, its
 * vote request, or a member's message with a term beyond REP_TERM_MAX must
 * all be refused (LORA_EINVAL, with the matching rep_refusal) and change
 * nothing: term, leader and log stay as they were. A node whose
 * configuration is still empty (added, waiting for the leader) takes
 * messages from anyone by design and is skipped.
 */
static void forge(struct sim *s)
{
	struct sim_node *n = random_node(s, 1);
	if (n == NULL)
		return;
	struct rep_status st;
	rep_status(n->r, &st);
	if (st.n_peers == 0)
		return;
	uint32_t kind = (uint32_t)sim_below(s, 4);
	struct rep_msg m;
	memset(&m, 0, sizeof(m));
	m.from = SIM_STRANGER_ID + sim_below(s, 50);
	m.to = n->id;
	m.term = st.term + 1 + sim_below(s, 100);
	struct rep_entry e = {.index = st.last_index + 1, .term = m.term};
	uint32_t want = REP_REFUSE_NOT_MEMBER;
	switch (kind) {
	case 0:
		m.type = REP_MSG_HEARTBEAT;
		m.commit = st.last_index + 1000;
		break;
	case 1:
		m.type = REP_MSG_APP;
		m.index = st.last_index;
		m.log_term = 0;
		m.entries = &e;
		m.n_entries = 1;
		m.commit = e.index;
		break;
	case 2:
		m.type = REP_MSG_VOTE;
		m.index = st.last_index + 1000;
		m.log_term = m.term;
		break;
	default:
		m.type = REP_MSG_HEARTBEAT;
		m.from = st.peers[sim_below(s, st.n_peers)].id;
		if (m.from == n->id)
			return;
		m.term = REP_TERM_MAX + 1 + sim_below(s, 1000);
		want = REP_REFUSE_TERM;
		break;
	}
	int rv = rep_step(n->r, &m);
	struct rep_status after;
	rep_status(n->r, &after);
	if (rv != LORA_EINVAL || rep_refusal(n->r) != want ||
	    after.term != st.term || after.leader != st.leader ||
	    after.last_index != st.last_index)
		sim_fail(s,
		         "node %llu took a forged %s from %llu at term %llu: "
		         "rv %d, refusal %s, term %llu -> %llu, last %llu -> "
		         "%llu",
		         (unsigned long long)n->id, rep_msg_type_name(m.type),
		         (unsigned long long)m.from, (unsigned long long)m.term,
		         rv, rep_refusal_name(rep_refusal(n->r)),
		         (unsigned long long)st.term,
		         (unsigned long long)after.term,
		         (unsigned long long)st.last_index,
		         (unsigned long long)after.last_index);
}

static void fault(struct sim *s)
{
	struct sim_node *n;
	switch (sim_below(s, 9)) {
	case 8:
		forge(s);
		break;
	case 0:
		if ((n = random_node(s, 1)) != NULL)
			sim_node_crash(s, n);
		break;
	case 7:
		if ((n = find_leader(s)) != NULL)
			sim_node_crash(s, n);
		break;
	case 1:
	case 2:
		if ((n = random_node(s, 0)) != NULL)
			sim_node_boot(s, n);
		break;
	case 3:
		partition(s, 0);
		break;
	case 4:
		partition(s, 1);
		break;
	case 5:
		if ((n = find_leader(s)) != NULL)
			isolate(s, n);
		break;
	default:
		heal(s);
		break;
	}
}

static void propose(struct sim *s)
{
	struct sim_node *n = random_node(s, 1);
	if (n == NULL)
		return;
	uint8_t v[8];
	lora_put_be64(v, ++s->next_value);
	uint64_t leader = 0;
	int rv = rep_propose(n->r, v, sizeof(v), NULL, NULL, &leader);
	if (rv == LORA_ENOTLEADER && leader != 0) {
		struct sim_node *l = sim_node_by_id(s, leader);
		if (l != NULL && l->up)
			rv = rep_propose(l->r, v, sizeof(v), NULL, NULL, NULL);
	}
	if (rv == 0)
		s->proposals++;
}

/* Any node that believes it leads, stale or not (NULL if none). */
static struct sim_node *random_leader(struct sim *s)
{
	uint32_t cand[SIM_NODES_MAX], n = 0;
	for (uint32_t i = 0; i < s->n_slots; i++) {
		if (!s->nodes[i].up)
			continue;
		struct rep_status st;
		rep_status(s->nodes[i].r, &st);
		if (st.role == REP_LEADER)
			cand[n++] = i;
	}
	return n ? &s->nodes[cand[sim_below(s, n)]] : NULL;
}

static void read_index(struct sim *s)
{
	/* Half the reads go to a node that thinks it leads: a deposed
	 * leader must not answer from its stale commit index. */
	struct sim_node *n = sim_below(s, 2) ? random_leader(s) : NULL;
	if (n == NULL)
		n = random_node(s, 1);
	if (n == NULL)
		return;
	if (s->n_reads == 64)
		s->reads[sim_below(s, 64)] = s->reads[--s->n_reads];
	struct sim_read *q = &s->reads[s->n_reads];
	memset(q, 0, sizeof(*q));
	lora_put_be64(q->ctx, s->now);
	lora_put_be64(q->ctx + 8, sim_rand(s));
	q->node = n->id;
	q->min_index = s->gcommit;
	if (rep_read_index(n->r, q->ctx, sizeof(q->ctx)) == 0)
		s->n_reads++;
}

static void add_node(struct sim *s, struct sim_node *l)
{
	if (s->n_slots == SIM_NODES_MAX)
		return;
	struct sim_node *n = &s->nodes[s->n_slots];
	uint64_t id = s->n_slots + 1;
	char addr[32];
	int len = snprintf(addr, sizeof(addr), "127.0.0.%llu:4749",
	                   (unsigned long long)id);
	if (rep_propose_conf_change(l->r, REP_CONF_ADD_LEARNER, id, addr,
	                            (size_t)len, NULL, NULL, NULL) != 0)
		return;
	s->n_slots++;
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->exists = 1;
	sim_node_boot(s, n);
	s->conf_changes++;
}

static void change_membership(struct sim *s)
{
	struct sim_node *l = find_leader(s);
	if (l == NULL)
		return;
	struct rep_status st;
	rep_status(l->r, &st);
	uint32_t voters = 0;
	for (uint32_t i = 0; i < st.n_peers; i++) {
		const struct rep_peer_status *p = &st.peers[i];
		voters += (uint32_t)p->voter;
		if (!p->voter && p->match + 5 >= st.last_index) {
			if (rep_propose_conf_change(l->r, REP_CONF_PROMOTE,
			                            p->id, NULL, 0, NULL, NULL,
			                            NULL) == 0)
				s->conf_changes++;
			return;
		}
	}
	if (st.n_peers < 5 && sim_below(s, 2)) {
		add_node(s, l);
	} else if (voters > 3) {
		uint64_t victim = st.peers[sim_below(s, st.n_peers)].id;
		if (rep_propose_conf_change(l->r, REP_CONF_REMOVE, victim, NULL,
		                            0, NULL, NULL, NULL) == 0)
			s->conf_changes++;
	}
}

static void compact(struct sim *s, struct sim_node *n)
{
	struct rep_status st;
	rep_status(n->r, &st);
	uint64_t keep = sim_below(s, 30);
	if (st.applied <= keep)
		return;
	uint64_t idx = st.applied - keep;
	if (idx <= st.snapshot_index || rep_compact(n->r, idx) != 0)
		return;
	struct sim_dlog *l = &n->log;
	uint64_t chain = sim_dlog_chain(l, idx);
	size_t drop = (size_t)(idx - l->snap.index);
	for (size_t i = 0; i < drop; i++)
		free(l->e[i].data);
	memmove(l->e, l->e + drop, (l->n - drop) * sizeof(*l->e));
	memmove(l->chain, l->chain + drop, (l->n - drop) * sizeof(uint64_t));
	l->n -= drop;
	rep_compaction_meta(n->r, &l->snap);
	l->snap_chain = chain;
}

static void client(struct sim *s)
{
	if (sim_chance_pm(s, 300))
		propose(s);
	if (sim_chance_pm(s, 100))
		read_index(s);
	if (!s->calm && sim_chance_pm(s, 6))
		change_membership(s);
	if (!s->calm && sim_chance_pm(s, 3)) {
		struct sim_node *l = find_leader(s);
		struct sim_node *t = random_node(s, 1);
		if (l != NULL && t != NULL)
			(void)rep_transfer_leader(l->r, t->id);
	}
	for (uint32_t i = 0; i < s->n_slots; i++)
		if (s->nodes[i].up && sim_chance_pm(s, 20))
			compact(s, &s->nodes[i]);
}

static void process_readies(struct sim *s)
{
	for (uint32_t i = 0; i < s->n_slots; i++)
		if (s->nodes[i].up)
			sim_node_ready(s, &s->nodes[i]);
}

/* Liveness: after calm starts, a leader commits a fresh proposal. */
struct live {
	uint64_t start, term, index, value_hash;
	int done;
};

static void liveness(struct sim *s, struct live *lv)
{
	if (lv->done)
		return;
	if (lv->index != 0 && lv->index < s->cap_idx &&
	    s->applied[lv->index] == lv->value_hash) {
		lv->done = 1;
		return;
	}
	struct sim_node *l = find_leader(s);
	struct rep_status st;
	if (l != NULL)
		rep_status(l->r, &st);
	if (l != NULL && (lv->index == 0 || st.term != lv->term)) {
		uint8_t v[8];
		lora_put_be64(v, ++s->next_value);
		struct rep_entry e = {0};
		if (rep_propose(l->r, v, sizeof(v), &e.term, &e.index, NULL) ==
		    0) {
			e.data = v;
			e.len = sizeof(v);
			lv->term = e.term;
			lv->index = e.index;
			lv->value_hash = sim_entry_hash(&e);
		}
	}
	if (s->now - lv->start >= SIM_CALM_STEPS - 1)
		sim_fail(s,
		         "liveness: no leader committed a new proposal "
		         "within %d steps of healing",
		         SIM_CALM_STEPS);
}

static void calm_down(struct sim *s, struct live *lv)
{
	s->calm = 1;
	heal(s);
	for (uint32_t i = 0; i < s->n_slots; i++)
		if (s->nodes[i].exists && !s->nodes[i].up)
			sim_node_boot(s, &s->nodes[i]);
	memset(lv, 0, sizeof(*lv));
	lv->start = s->now;
}

static void setup(struct sim *s, const struct sim_opts *o)
{
	memset(s, 0, sizeof(*s));
	s->o = *o;
	s->rng = o->seed * 0x9e3779b97f4a7c15ull + 1;
	static const uint32_t drops[] = {0, 1, 5, 15};
	s->drop_pct = drops[sim_below(s, 4)];
	s->dup_pct = (uint32_t)sim_below(s, 2) * 3;
	s->delay_max = 1 + (uint32_t)sim_below(s, 3);
	/* One seed in four is stormy: faults every few steps. */
	s->fault_pm = sim_below(s, 4) == 0 ? 40 + (uint32_t)sim_below(s, 80)
	                                   : 5 + (uint32_t)sim_below(s, 20);
	s->straggle_pm = (uint32_t)sim_below(s, 4) * 15;
	static const uint32_t new_leader_crash[] = {0, 20, 50};
	s->new_leader_crash_pct = new_leader_crash[sim_below(s, 3)];
	static const uint32_t vote_crash[] = {3, 20, 60};
	s->vote_crash_pm = vote_crash[sim_below(s, 3)];
	s->n_slots = o->voters;
	for (uint32_t i = 0; i < o->voters; i++) {
		s->nodes[i].id = i + 1;
		s->nodes[i].exists = 1;
		sim_node_boot(s, &s->nodes[i]);
	}
}

int sim_run(const struct sim_opts *o, char *failure, size_t len)
{
	struct sim *s = malloc(sizeof(*s));
	setup(s, o);
	struct live lv = {0};
	for (uint32_t step = 0; step < o->steps && !s->failed; step++) {
		s->now = step;
		uint32_t phase = step % SIM_BLOCK_STEPS;
		int calm_phase = phase >= SIM_BLOCK_STEPS - SIM_CALM_STEPS ||
		                 step + SIM_CALM_STEPS >= o->steps;
		if (calm_phase && !s->calm)
			calm_down(s, &lv);
		else if (!calm_phase)
			s->calm = 0;
		sim_net_deliver(s);
		for (uint32_t i = 0; i < s->n_slots; i++)
			if (s->nodes[i].up)
				rep_tick(s->nodes[i].r);
		if (!s->calm && sim_chance_pm(s, s->fault_pm))
			fault(s);
		client(s);
		process_readies(s);
		sim_check_step(s);
		if (s->calm)
			liveness(s, &lv);
	}
	int failed = s->failed;
	uint32_t voters = 0, learners = 0;
	struct sim_node *l = failed ? NULL : find_leader(s);
	if (l != NULL) {
		struct rep_status st;
		rep_status(l->r, &st);
		for (uint32_t i = 0; i < st.n_peers; i++)
			*(st.peers[i].voter ? &voters : &learners) += 1;
	}
	if (failed)
		snprintf(failure, len, "%s", s->failure);
	else
		snprintf(failure, len,
		         "commit %llu, %llu proposals, %llu snapshots, %llu "
		         "conf changes, %llu reads, %llu crashes, %llu "
		         "refused from non-members (%llu from a leader); ends "
		         "with %u voters + %u learners of %u nodes",
		         (unsigned long long)s->gcommit,
		         (unsigned long long)s->proposals,
		         (unsigned long long)s->snaps_installed,
		         (unsigned long long)s->conf_changes,
		         (unsigned long long)s->reads_done,
		         (unsigned long long)s->crashes,
		         (unsigned long long)s->refused_non_member,
		         (unsigned long long)s->refused_leader_msgs, voters,
		         learners, s->n_slots);
	for (uint32_t i = 0; i < SIM_NODES_MAX; i++)
		sim_node_free(&s->nodes[i]);
	sim_net_free(s);
	sim_check_free(s);
	free(s);
	return failed;
}
