/* harness.c - in-process cluster driver for the Raft unit tests. */
#include "harness.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static void boot(struct tc *c, uint64_t id, int n_voters, int pv, int cq)
{
	struct rep_config *cfg = &c->cfg[id];
	rep_config_init(cfg, id);
	cfg->n_voters = (uint32_t)n_voters;
	for (int k = 0; k < n_voters; k++)
		cfg->voters[k] = (uint64_t)k + 1;
	cfg->pre_vote = pv;
	cfg->check_quorum = cq;
	cfg->seed = 42 + id;
	char msg[LORA_ERRMSG_BYTES];
	if (rep_new(cfg, NULL, &c->r[id], msg) != 0)
		abort();
}

struct tc *tc_new(int n, int pre_vote, int check_quorum)
{
	struct tc *c = calloc(1, sizeof(*c));
	c->n = n;
	for (int i = 1; i <= n; i++)
		boot(c, (uint64_t)i, n, pre_vote, check_quorum);
	return c;
}

void tc_add_node(struct tc *c, uint64_t id)
{
	boot(c, id, (int)c->cfg[1].n_voters, c->cfg[1].pre_vote,
	     c->cfg[1].check_quorum);
	if ((int)id > c->n)
		c->n = (int)id;
}

void tc_msg_free(struct tc_msg *m)
{
	for (size_t i = 0; i < m->m.n_entries; i++)
		free(m->ents[i].data);
	free(m->ents);
	m->ents = NULL;
}

void tc_clear(struct tc *c)
{
	for (int i = 0; i < c->nq; i++)
		tc_msg_free(&c->q[i]);
	c->nq = 0;
}

void tc_free(struct tc *c)
{
	tc_clear(c);
	for (int i = 1; i <= TC_NODES_MAX; i++)
		rep_free(c->r[i]);
	free(c);
}

static void enqueue(struct tc *c, const struct rep_msg *m)
{
	if (c->nq == TC_QUEUE_MAX || c->cut[m->from] || c->cut[m->to])
		return;
	struct tc_msg *t = &c->q[c->nq++];
	t->m = *m;
	t->ents = NULL;
	if (m->n_entries > 0) {
		t->ents = calloc(m->n_entries, sizeof(*t->ents));
		for (size_t i = 0; i < m->n_entries; i++) {
			t->ents[i] = m->entries[i];
			if (m->entries[i].len) {
				t->ents[i].data = malloc(m->entries[i].len);
				memcpy(t->ents[i].data, m->entries[i].data,
				       m->entries[i].len);
			}
		}
	}
	t->m.entries = t->ents;
}

void tc_drain(struct tc *c, int i)
{
	while (c->r[i] != NULL && rep_has_ready(c->r[i])) {
		struct rep_ready rd;
		rep_ready(c->r[i], &rd);
		if (rd.has_snapshot)
			c->snapshots[i]++;
		if (rd.has_hard_state)
			c->hs[i] = rd.hs;
		for (size_t k = 0; k < rd.n_msgs; k++)
			enqueue(c, &rd.msgs[k]);
		for (size_t k = 0; k < rd.n_committed; k++) {
			c->applied_n[i]++;
			c->applied_last[i] = rd.committed[k].index;
		}
		for (size_t k = 0; k < rd.n_reads && c->n_reads[i] < 8; k++)
			c->reads[i][c->n_reads[i]++] = rd.reads[k];
		rep_advance(c->r[i], &rd);
	}
}

int tc_step(struct tc *c, const struct rep_msg *m)
{
	if (c->r[m->to] == NULL)
		return 0;
	return rep_step(c->r[m->to], m);
}

void tc_stabilize(struct tc *c)
{
	for (int iter = 0; iter < 100000; iter++) {
		for (int i = 1; i <= c->n; i++)
			tc_drain(c, i);
		if (c->nq == 0)
			return;
		struct tc_msg m = c->q[0];
		memmove(c->q, c->q + 1, (size_t)(c->nq - 1) * sizeof(c->q[0]));
		c->nq--;
		if (!c->cut[m.m.to] && !c->cut[m.m.from]) {
			if (m.m.type == REP_MSG_SNAPSHOT) {
				tc_step(c, &m.m);
				rep_report_snapshot(c->r[m.m.from], m.m.to, 1);
			} else {
				tc_step(c, &m.m);
			}
		}
		tc_msg_free(&m);
	}
}

void tc_tick(struct tc *c, int i, int t)
{
	for (int k = 0; k < t; k++) {
		rep_tick(c->r[i]);
		tc_drain(c, i);
	}
}

void tc_elect(struct tc *c, int i)
{
	int ticks = 0;
	while (tc_role(c, i) != REP_PRE_CANDIDATE &&
	       tc_role(c, i) != REP_CANDIDATE && ticks++ < 100)
		tc_tick(c, i, 1);
	tc_stabilize(c);
	/* Every test that starts from an elected leader relies on this. */
	ck_assert_msg(
	    tc_role(c, i) == REP_LEADER,
	    "tc_elect: node %d is not leader after %d ticks (role %u)", i,
	    ticks, (unsigned)tc_role(c, i));
	for (int k = 1; k <= c->n; k++)
		if (c->r[k] != NULL && !c->cut[k])
			ck_assert_msg(tc_leader(c, k) == (uint64_t)i,
			              "tc_elect: node %d follows %llu, not %d",
			              k, (unsigned long long)tc_leader(c, k),
			              i);
}

int tc_count(const struct tc *c, uint32_t type, uint64_t to)
{
	int n = 0;
	for (int i = 0; i < c->nq; i++)
		if ((type == 0 || c->q[i].m.type == type) &&
		    (to == 0 || c->q[i].m.to == to))
			n++;
	return n;
}

int tc_take(struct tc *c, uint32_t type, uint64_t to, struct tc_msg *out)
{
	for (int i = 0; i < c->nq; i++) {
		if ((type == 0 || c->q[i].m.type == type) &&
		    (to == 0 || c->q[i].m.to == to)) {
			*out = c->q[i];
			memmove(c->q + i, c->q + i + 1,
			        (size_t)(c->nq - i - 1) * sizeof(c->q[0]));
			c->nq--;
			return 1;
		}
	}
	return 0;
}

static struct rep_status st_of(struct tc *c, int i)
{
	struct rep_status st;
	rep_status(c->r[i], &st);
	return st;
}

uint32_t tc_role(struct tc *c, int i)
{
	return st_of(c, i).role;
}
uint64_t tc_term(struct tc *c, int i)
{
	return st_of(c, i).term;
}
uint64_t tc_commit(struct tc *c, int i)
{
	return st_of(c, i).commit;
}
uint64_t tc_last(struct tc *c, int i)
{
	return st_of(c, i).last_index;
}
uint64_t tc_leader(struct tc *c, int i)
{
	return st_of(c, i).leader;
}

int tc_propose(struct tc *c, int i, uint64_t v)
{
	uint8_t b[8];
	lora_put_be64(b, v);
	return rep_propose(c->r[i], b, sizeof(b), NULL, NULL, NULL);
}
