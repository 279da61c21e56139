/* sim_net.c - the simulated network: delay, loss, duplication, partitions. */
/*
 * Every message is deep-copied when sent and given a delivery step
 * (now + 1 .. now + delay_max), which also reorders them; a few stragglers
 * arrive tens of steps late, after leadership may have changed. Loss and
 * partitions are decided when sent and again when due. A snapshot message
 * carries a copy of the sender's checkpoint (its applied values up to the
 * snapshot index); when it is delivered or lost, the sender's core hears
 * about it through rep_report_snapshot, as the daemon's streamer would.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void msg_free(struct sim_msg *sm)
{
	for (size_t i = 0; i < sm->m.n_entries; i++)
		free(sm->ents[i].data);
	free(sm->ents);
	free(sm->snap_sm);
}

static void copy_msg(struct sim_msg *dst, const struct rep_msg *m)
{
	memset(dst, 0, sizeof(*dst));
	dst->m = *m;
	if (m->n_entries == 0) {
		dst->m.entries = NULL;
		return;
	}
	dst->ents = calloc(m->n_entries, sizeof(*dst->ents));
	for (size_t i = 0; i < m->n_entries; i++) {
		dst->ents[i] = m->entries[i];
		if (m->entries[i].len > 0) {
			dst->ents[i].data = malloc(m->entries[i].len);
			memcpy(dst->ents[i].data, m->entries[i].data,
			       m->entries[i].len);
		}
	}
	dst->m.entries = dst->ents;
}

static struct sim_msg *net_push(struct sim *s)
{
	if (s->n_net == s->cap_net) {
		s->cap_net = s->cap_net ? s->cap_net * 2 : 256;
		s->net = realloc(s->net, s->cap_net * sizeof(*s->net));
	}
	return &s->net[s->n_net++];
}

static int lost(struct sim *s, uint64_t from, uint64_t to)
{
	if (s->blocked[from][to])
		return 1;
	return !s->calm && sim_below(s, 100) < s->drop_pct;
}

void sim_net_send(struct sim *s, struct sim_node *from, const struct rep_msg *m)
{
	int snap = m->type == REP_MSG_SNAPSHOT;
	if (s->n_net >= SIM_INFLIGHT_MSGS_MAX ||
	    (!snap && lost(s, m->from, m->to)))
		return;
	int copies =
	    (!snap && !s->calm && sim_below(s, 100) < s->dup_pct) ? 2 : 1;
	for (int c = 0; c < copies; c++) {
		struct sim_msg *sm = net_push(s);
		copy_msg(sm, m);
		sm->due = s->now + 1 + sim_below(s, s->delay_max);
		if (!s->calm && sim_chance_pm(s, s->straggle_pm))
			sm->due += 10 + sim_below(s, 50); /* a straggler */
		if (snap) {
			uint64_t n = m->snapshot.index;
			if (n > from->sm_n)
				sim_fail(s,
				         "node %llu snapshot %llu beyond "
				         "applied %llu",
				         (unsigned long long)from->id,
				         (unsigned long long)n,
				         (unsigned long long)from->sm_n);
			n = n > from->sm_n ? from->sm_n : n;
			sm->snap_sm = malloc((n + 1) * sizeof(uint64_t));
			memcpy(sm->snap_sm, from->sm, n * sizeof(uint64_t));
			sm->snap_n = n;
		}
	}
}

static void deliver_one(struct sim *s, struct sim_msg *sm)
{
	struct sim_node *to = sim_node_by_id(s, sm->m.to);
	struct sim_node *from = sim_node_by_id(s, sm->m.from);
	int snap = sm->m.type == REP_MSG_SNAPSHOT;
	int ok = to != NULL && to->up && !lost(s, sm->m.from, sm->m.to);
	if (ok) {
		if (snap)
			sim_node_stage_snapshot(to, sm->snap_sm, sm->snap_n);
		int rv = rep_step(to->r, &sm->m);
		/* A node that left the configuration (or whose addition this
		 * node has not seen yet) is not heard: that is a loss. */
		int refused = 0;
		if (rv == LORA_EINVAL &&
		    rep_refusal(to->r) == REP_REFUSE_NOT_MEMBER) {
			rv = 0;
			refused = 1;
			s->refused_non_member++;
			if (sm->m.type == REP_MSG_APP ||
			    sm->m.type == REP_MSG_HEARTBEAT ||
			    sm->m.type == REP_MSG_SNAPSHOT)
				s->refused_leader_msgs++;
		}
		struct rep_status st;
		rep_status(to->r, &st);
		if (rv == 0 && !refused && st.term == sm->m.term &&
		    sm->m.from <= SIM_NODES_MAX)
			to->heard[sm->m.from] = s->now;
		if (rv != 0 && rv != LORA_ENOMEM)
			sim_fail(s, "node %llu refused %s from %llu: %s",
			         (unsigned long long)to->id,
			         rep_msg_type_name(sm->m.type),
			         (unsigned long long)sm->m.from,
			         lora_strerror(rv));
	}
	if (snap && from != NULL && from->up)
		rep_report_snapshot(from->r, sm->m.to, ok);
}

void sim_net_deliver(struct sim *s)
{
	size_t keep = 0;
	size_t n = s->n_net;
	if (n == 0)
		return;
	/* Messages sent while delivering land after n: leave them alone. */
	for (size_t i = 0; i < n; i++) {
		if (s->net[i].due > s->now) {
			s->net[keep++] = s->net[i];
			continue;
		}
		struct sim_msg sm = s->net[i];
		deliver_one(s, &sm);
		msg_free(&sm);
	}
	if (s->n_net > n)
		memmove(s->net + keep, s->net + n,
		        (s->n_net - n) * sizeof(*s->net));
	s->n_net = keep + (s->n_net - n);
}

void sim_net_free(struct sim *s)
{
	for (size_t i = 0; i < s->n_net; i++)
		msg_free(&s->net[i]);
	free(s->net);
	s->net = NULL;
	s->n_net = s->cap_net = 0;
}
