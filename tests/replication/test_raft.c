/* test_raft.c - step-by-step scenarios for each Raft rule the core follows. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct rep_msg mk(uint32_t type, uint64_t from, uint64_t to,
                         uint64_t term)
{
	struct rep_msg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.from = from;
	m.to = to;
	m.term = term;
	return m;
}

/* Entries with the given terms starting at index `first`. */
static struct rep_entry ents_buf[16];
static const struct rep_entry *ents(uint64_t first, int n, const uint64_t *t)
{
	for (int i = 0; i < n; i++) {
		memset(&ents_buf[i], 0, sizeof(ents_buf[i]));
		ents_buf[i].index = first + (uint64_t)i;
		ents_buf[i].term = t[i];
	}
	return ents_buf;
}

/* ---- Figure 2: rules for all servers ------------------------------------ */

START_TEST(higher_term_makes_anyone_follower)
{
	struct tc *c = tc_new(3, 0, 0);
	tc_elect(c, 1);
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	uint64_t t = tc_term(c, 1);
	struct rep_msg m = mk(REP_MSG_HEARTBEAT, 2, 1, t + 5);
	ck_assert_int_eq(tc_step(c, &m), 0);
	ck_assert_uint_eq(tc_role(c, 1), REP_FOLLOWER);
	ck_assert_uint_eq(tc_term(c, 1), t + 5);
	ck_assert_uint_eq(tc_leader(c, 1), 2);
	tc_free(c);
}
END_TEST

START_TEST(committed_entries_are_applied_in_order)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	for (uint64_t v = 1; v <= 5; v++)
		ck_assert_int_eq(tc_propose(c, 1, v), 0);
	tc_stabilize(c);
	tc_tick(c, 1, 2); /* heartbeat carries the final commit */
	tc_stabilize(c);
	for (int i = 1; i <= 3; i++) {
		ck_assert_uint_eq(tc_commit(c, i), 6); /* no-op + 5 */
		ck_assert_uint_eq(c->applied_n[i], 6);
		ck_assert_uint_eq(c->applied_last[i], 6);
	}
	tc_free(c);
}
END_TEST

/* ---- Figure 2: RequestVote receiver ------------------------------------- */

START_TEST(vote_rejected_for_stale_term)
{
	struct tc *c = tc_new(3, 0, 0);
	tc_elect(c, 1);
	uint64_t t = tc_term(c, 2);
	tc_clear(c);
	struct rep_msg m = mk(REP_MSG_VOTE, 3, 2, t - 1);
	tc_step(c, &m);
	tc_drain(c, 2);
	ck_assert_int_eq(tc_count(c, REP_MSG_VOTE_RESP, 3), 0);
	ck_assert_uint_eq(tc_term(c, 2), t);
	tc_free(c);
}
END_TEST

START_TEST(one_vote_per_term_persisted_before_reply)
{
	struct tc *c = tc_new(3, 0, 0);
	struct rep_msg m = mk(REP_MSG_VOTE, 2, 1, 1);
	tc_step(c, &m);
	struct rep_ready rd;
	ck_assert(rep_has_ready(c->r[1]));
	rep_ready(c->r[1], &rd);
	/* The grant and the vote it depends on come in the same Ready: the
	 * caller persists rd.hs before sending rd.msgs. */
	ck_assert(rd.has_hard_state);
	ck_assert_uint_eq(rd.hs.term, 1);
	ck_assert_uint_eq(rd.hs.vote, 2);
	ck_assert_uint_eq(rd.n_msgs, 1);
	ck_assert_uint_eq(rd.msgs[0].type, REP_MSG_VOTE_RESP);
	ck_assert_int_eq(rd.msgs[0].reject, 0);
	rep_advance(c->r[1], &rd);
	m = mk(REP_MSG_VOTE, 3, 1, 1);
	tc_step(c, &m);
	rep_ready(c->r[1], &rd);
	ck_assert_uint_eq(rd.n_msgs, 1);
	ck_assert_int_eq(rd.msgs[0].reject, 1);
	rep_advance(c->r[1], &rd);
	tc_free(c);
}
END_TEST

START_TEST(vote_requires_up_to_date_log)
{
	struct tc *c = tc_new(3, 0, 0);
	uint64_t t[] = {1, 1};
	struct rep_msg a = mk(REP_MSG_APP, 2, 1, 1);
	a.entries = ents(1, 2, t);
	a.n_entries = 2;
	ck_assert_int_eq(tc_step(c, &a), 0);
	tc_drain(c, 1);
	tc_clear(c);
	/* Candidate 3's log ends at (1, term 1): shorter, rejected. */
	struct rep_msg v = mk(REP_MSG_VOTE, 3, 1, 2);
	v.index = 1;
	v.log_term = 1;
	tc_step(c, &v);
	tc_drain(c, 1);
	struct tc_msg r;
	ck_assert(tc_take(c, REP_MSG_VOTE_RESP, 3, &r));
	ck_assert_int_eq(r.m.reject, 1);
	/* Same length but a higher last term wins. */
	v.index = 1;
	v.log_term = 2;
	v.from = 2;
	tc_step(c, &v);
	tc_drain(c, 1);
	ck_assert(tc_take(c, REP_MSG_VOTE_RESP, 2, &r));
	ck_assert_int_eq(r.m.reject, 0);
	tc_free(c);
}
END_TEST

/* ---- Figure 2: AppendEntries receiver ----------------------------------- */

START_TEST(append_from_stale_term_rejected)
{
	struct tc *c = tc_new(3, 1, 1);
	struct rep_msg h = mk(REP_MSG_HEARTBEAT, 2, 1, 3);
	tc_step(c, &h);
	tc_drain(c, 1);
	tc_clear(c);
	uint64_t t[] = {2};
	struct rep_msg a = mk(REP_MSG_APP, 3, 1, 2);
	a.entries = ents(1, 1, t);
	a.n_entries = 1;
	tc_step(c, &a);
	tc_drain(c, 1);
	ck_assert_uint_eq(tc_last(c, 1), 0);
	struct tc_msg r;
	ck_assert(tc_take(c, REP_MSG_APP_RESP, 3, &r));
	ck_assert_uint_eq(r.m.term, 3); /* tells the stale leader */
	tc_free(c);
}
END_TEST

START_TEST(append_without_matching_prev_rejected_with_hint)
{
	struct tc *c = tc_new(3, 0, 0);
	uint64_t t[] = {1, 1, 1};
	struct rep_msg a = mk(REP_MSG_APP, 2, 1, 1);
	a.entries = ents(1, 3, t);
	a.n_entries = 3;
	tc_step(c, &a);
	tc_drain(c, 1);
	tc_clear(c);
	uint64_t t2[] = {3};
	a = mk(REP_MSG_APP, 3, 1, 3);
	a.index = 10;
	a.log_term = 3;
	a.entries = ents(11, 1, t2);
	a.n_entries = 1;
	tc_step(c, &a);
	tc_drain(c, 1);
	struct tc_msg r;
	ck_assert(tc_take(c, REP_MSG_APP_RESP, 3, &r));
	ck_assert_int_eq(r.m.reject, 1);
	ck_assert_uint_eq(r.m.reject_hint, 3); /* our last index */
	ck_assert_uint_eq(r.m.hint_term, 1);
	ck_assert_uint_eq(tc_last(c, 1), 3);
	tc_free(c);
}
END_TEST

START_TEST(append_conflict_truncates_and_appends)
{
	struct tc *c = tc_new(3, 0, 0);
	uint64_t t[] = {1, 1, 1};
	struct rep_msg a = mk(REP_MSG_APP, 2, 1, 1);
	a.entries = ents(1, 3, t);
	a.n_entries = 3;
	tc_step(c, &a);
	tc_drain(c, 1);
	uint64_t t2[] = {2};
	a = mk(REP_MSG_APP, 3, 1, 2);
	a.index = 1;
	a.log_term = 1;
	a.entries = ents(2, 1, t2);
	a.n_entries = 1;
	tc_step(c, &a);
	struct rep_ready rd;
	rep_ready(c->r[1], &rd);
	/* Entry 2 is rewritten and 3 is gone: the Ready restarts at 2. */
	ck_assert_uint_eq(rd.n_entries, 1);
	ck_assert_uint_eq(rd.entries[0].index, 2);
	ck_assert_uint_eq(rd.entries[0].term, 2);
	rep_advance(c->r[1], &rd);
	ck_assert_uint_eq(tc_last(c, 1), 2);
	tc_free(c);
}
END_TEST

START_TEST(append_commit_is_min_of_leader_commit_and_last_new)
{
	struct tc *c = tc_new(3, 0, 0);
	uint64_t t[] = {1, 1, 1, 1};
	struct rep_msg a = mk(REP_MSG_APP, 2, 1, 1);
	a.entries = ents(1, 2, t);
	a.n_entries = 2;
	a.commit = 4;
	tc_step(c, &a);
	ck_assert_uint_eq(tc_commit(c, 1), 2);
	tc_free(c);
}
END_TEST

START_TEST(append_never_rewrites_committed_entries)
{
	struct tc *c = tc_new(3, 0, 0);
	uint64_t t[] = {1, 1};
	struct rep_msg a = mk(REP_MSG_APP, 2, 1, 1);
	a.entries = ents(1, 2, t);
	a.n_entries = 2;
	a.commit = 2;
	tc_step(c, &a);
	tc_drain(c, 1);
	uint64_t t2[] = {2, 2};
	a = mk(REP_MSG_APP, 3, 1, 2);
	a.index = 2; /* prev (2, term 2) does not match: rejected */
	a.log_term = 2;
	a.entries = ents(3, 1, t2);
	a.n_entries = 1;
	tc_step(c, &a);
	ck_assert_uint_eq(tc_commit(c, 1), 2);
	ck_assert_uint_eq(tc_last(c, 1), 2);
	tc_free(c);
}
END_TEST

/* ---- Figure 2: followers, candidates, leaders --------------------------- */

START_TEST(election_timeout_starts_election)
{
	struct tc *c = tc_new(3, 0, 0);
	tc_tick(c, 1, 20); /* randomised timeout is in [10, 20) */
	ck_assert_uint_eq(tc_role(c, 1), REP_CANDIDATE);
	ck_assert_uint_eq(tc_term(c, 1), 1);
	ck_assert_uint_eq(c->hs[1].vote, 1);
	ck_assert_int_eq(tc_count(c, REP_MSG_VOTE, 2), 1);
	ck_assert_int_eq(tc_count(c, REP_MSG_VOTE, 3), 1);
	tc_free(c);
}
END_TEST

START_TEST(candidate_with_majority_leads_and_appends_noop)
{
	struct tc *c = tc_new(3, 0, 0);
	tc_tick(c, 1, 20);
	struct tc_msg v;
	ck_assert(tc_take(c, REP_MSG_VOTE, 2, &v));
	tc_step(c, &v.m);
	tc_drain(c, 2);
	struct tc_msg g;
	ck_assert(tc_take(c, REP_MSG_VOTE_RESP, 1, &g));
	tc_step(c, &g.m);
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	ck_assert_uint_eq(tc_last(c, 1), 1);
	tc_drain(c, 1);
	ck_assert_int_ge(tc_count(c, REP_MSG_APP, 2), 1);
	tc_free(c);
}
END_TEST

START_TEST(candidate_steps_down_for_leader_of_same_term)
{
	struct tc *c = tc_new(3, 0, 0);
	tc_tick(c, 1, 20);
	uint64_t t = tc_term(c, 1);
	struct rep_msg a = mk(REP_MSG_APP, 2, 1, t);
	tc_step(c, &a);
	ck_assert_uint_eq(tc_role(c, 1), REP_FOLLOWER);
	ck_assert_uint_eq(tc_leader(c, 1), 2);
	tc_free(c);
}
END_TEST

START_TEST(leader_sends_heartbeats)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	tc_clear(c);
	tc_tick(c, 1, 1);
	ck_assert_int_eq(tc_count(c, REP_MSG_HEARTBEAT, 2), 1);
	ck_assert_int_eq(tc_count(c, REP_MSG_HEARTBEAT, 3), 1);
	tc_free(c);
}
END_TEST

/* Figure 8: an old-term entry on a majority is not committed by counting. */
START_TEST(leader_commits_only_entries_of_its_term)
{
	struct tc *c = tc_new(3, 0, 0);
	/* Node 1 holds (1, t1), (2, t2); it becomes leader in term 3. */
	uint64_t t[] = {1, 2};
	struct rep_msg a = mk(REP_MSG_APP, 2, 1, 2);
	a.entries = ents(1, 2, t);
	a.n_entries = 2;
	tc_step(c, &a);
	tc_drain(c, 1);
	tc_clear(c);
	tc_tick(c, 1, 20);
	ck_assert_uint_eq(tc_term(c, 1), 3);
	struct rep_msg g = mk(REP_MSG_VOTE_RESP, 2, 1, 3);
	tc_step(c, &g);
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	tc_drain(c, 1);
	/* Follower 2 acknowledges only index 2 (term 2): no commit. */
	struct rep_msg r = mk(REP_MSG_APP_RESP, 2, 1, 3);
	r.index = 2;
	tc_step(c, &r);
	ck_assert_uint_eq(tc_commit(c, 1), 0);
	/* Once it holds the term-3 no-op (index 3), all three commit. */
	r.index = 3;
	tc_step(c, &r);
	ck_assert_uint_eq(tc_commit(c, 1), 3);
	tc_free(c);
}
END_TEST

START_TEST(follower_refuses_proposal_with_leader_hint)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 2);
	uint64_t leader = 0;
	uint8_t b[1] = {7};
	ck_assert_int_eq(rep_propose(c->r[1], b, 1, NULL, NULL, &leader),
	                 LORA_ENOTLEADER);
	ck_assert_uint_eq(leader, 2);
	tc_free(c);
}
END_TEST

START_TEST(fast_backtracking_skips_a_term_per_round_trip)
{
	struct tc *c = tc_new(3, 0, 0);
	/* Node 1 got 20 entries of term 1 from leader 3, now gone. */
	uint64_t t1[10];
	for (int i = 0; i < 10; i++)
		t1[i] = 1;
	for (uint64_t at = 1; at <= 11; at += 10) {
		struct rep_msg a = mk(REP_MSG_APP, 3, 1, 1);
		a.index = at - 1;
		a.log_term = at == 1 ? 0 : 1;
		a.entries = ents(at, 10, t1);
		a.n_entries = 10;
		ck_assert_int_eq(tc_step(c, &a), 0);
	}
	tc_drain(c, 1);
	tc_clear(c);
	tc_tick(c, 1, 20);
	struct rep_msg g = mk(REP_MSG_VOTE_RESP, 2, 1, 2);
	tc_step(c, &g);
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	tc_drain(c, 1);
	struct tc_msg a, r;
	ck_assert(tc_take(c, REP_MSG_APP, 2, &a));
	ck_assert_uint_eq(a.m.index, 20); /* optimistic first probe */
	tc_step(c, &a.m);
	tc_msg_free(&a);
	tc_drain(c, 2);
	ck_assert(tc_take(c, REP_MSG_APP_RESP, 1, &r));
	ck_assert_int_eq(r.m.reject, 1);
	ck_assert_uint_eq(r.m.reject_hint, 0); /* empty log */
	tc_step(c, &r.m);
	tc_drain(c, 1);
	/* One round trip later the leader probes at 0, not at 19. */
	ck_assert(tc_take(c, REP_MSG_APP, 2, &a));
	ck_assert_uint_eq(a.m.index, 0);
	ck_assert_uint_eq(a.m.n_entries, 21);
	tc_msg_free(&a);
	tc_free(c);
}
END_TEST

/* ---- thesis: pre-vote, check-quorum, transfer, ReadIndex ----------------- */

START_TEST(prevote_does_not_bump_term_of_partitioned_node)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	uint64_t t = tc_term(c, 1);
	c->cut[3] = 1;
	tc_tick(c, 3, 100); /* keeps timing out alone */
	ck_assert_uint_eq(tc_term(c, 3), t);
	ck_assert_uint_eq(tc_role(c, 3), REP_PRE_CANDIDATE);
	c->cut[3] = 0;
	tc_tick(c, 1, 2);
	tc_stabilize(c);
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	ck_assert_uint_eq(tc_term(c, 1), t);
	ck_assert_uint_eq(tc_leader(c, 3), 1);
	tc_free(c);
}
END_TEST

/* Partitions node 3 and lets it time out alone for `ticks` ticks while the
 * leader 1 keeps node 2 in its lease; returns node 3's term. */
static uint64_t partition_node_3(struct tc *c, int ticks)
{
	c->cut[3] = 1;
	for (int k = 0; k < ticks; k++) {
		tc_tick(c, 3, 1);
		if (k % 5 == 0) {
			tc_tick(c, 1, 1);
			tc_stabilize(c);
		}
	}
	tc_clear(c);
	c->cut[3] = 0;
	return tc_term(c, 3);
}

/* Ticks node 3 (rejoined) until its election timer fires, then delivers
 * what it sent before anything from the leader. */
static void rejoined_node_3_campaigns(struct tc *c)
{
	uint32_t before = tc_role(c, 3);
	int sent = 0;
	for (int k = 0; k < 40 && !sent; k++) {
		tc_tick(c, 3, 1);
		sent = tc_count(c, REP_MSG_VOTE, 0) +
		       tc_count(c, REP_MSG_PREVOTE, 0);
	}
	ck_assert_msg(sent > 0, "node 3 (role %u) never campaigned", before);
	tc_stabilize(c);
}

/* The node that timed out alone comes back with a higher term: without
 * pre-vote and check-quorum it deposes a working leader. */
START_TEST(without_prevote_rejoining_node_disrupts)
{
	struct tc *c = tc_new(3, 0, 0);
	tc_elect(c, 1);
	uint64_t t = tc_term(c, 1);
	uint64_t t3 = partition_node_3(c, 60);
	ck_assert_uint_gt(t3, t + 1);
	rejoined_node_3_campaigns(c);
	ck_assert_uint_gt(tc_term(c, 1), t3);
	ck_assert_uint_eq(tc_role(c, 1), REP_FOLLOWER);
	ck_assert_uint_eq(tc_role(c, 3), REP_LEADER);
	ck_assert_uint_eq(tc_leader(c, 2), 3);
	tc_free(c);
}
END_TEST

/* The same node with pre-vote and check-quorum: its term never moved, and
 * as its log is as long as anyone's only the leader's lease stops it: its
 * pre-votes are ignored, and it rejoins as a follower of the same leader in
 * the same term, and takes the next entry. */
START_TEST(prevote_rejoining_node_does_not_disrupt)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	uint64_t t = tc_term(c, 1);
	uint64_t t3 = partition_node_3(c, 60);
	ck_assert_uint_eq(tc_last(c, 3), tc_last(c, 1));
	ck_assert_uint_eq(t3, t);
	ck_assert_uint_eq(tc_role(c, 3), REP_PRE_CANDIDATE);
	rejoined_node_3_campaigns(c);
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	ck_assert_uint_eq(tc_term(c, 1), t);
	ck_assert_uint_eq(tc_term(c, 2), t);
	ck_assert_uint_eq(tc_leader(c, 2), 1);
	tc_tick(c, 1, 1); /* the next heartbeat brings node 3 back */
	tc_stabilize(c);
	ck_assert_int_eq(tc_propose(c, 1, 7), 0);
	tc_stabilize(c);
	tc_tick(c, 1, 1);
	tc_stabilize(c);
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	ck_assert_uint_eq(tc_term(c, 3), t);
	ck_assert_uint_eq(tc_role(c, 3), REP_FOLLOWER);
	ck_assert_uint_eq(tc_leader(c, 3), 1);
	ck_assert_uint_eq(tc_commit(c, 3), tc_commit(c, 1));
	ck_assert_uint_eq(tc_last(c, 3), tc_last(c, 1));
	tc_free(c);
}
END_TEST

START_TEST(check_quorum_leader_steps_down_alone)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	c->cut[1] = 1;
	/* The window slides: it steps down exactly one election timeout
	 * (10 ticks) after it last heard from a quorum, not at the end of
	 * the next check period (up to two timeouts). */
	tc_tick(c, 1, 9);
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	tc_tick(c, 1, 1);
	ck_assert_uint_eq(tc_role(c, 1), REP_FOLLOWER);
	ck_assert_uint_eq(tc_leader(c, 1), REP_NONE);
	tc_tick(c, 1, 25); /* cut off, it never leads again */
	ck_assert_uint_ne(tc_role(c, 1), REP_LEADER);
	tc_free(c);
}
END_TEST

START_TEST(check_quorum_lease_ignores_votes)
{
	struct tc *c = tc_new(3, 0, 1);
	tc_elect(c, 1);
	uint64_t t = tc_term(c, 2);
	tc_clear(c);
	struct rep_msg v = mk(REP_MSG_VOTE, 3, 2, t + 1);
	v.index = 100;
	v.log_term = t;
	tc_step(c, &v);
	tc_drain(c, 2);
	ck_assert_uint_eq(tc_term(c, 2), t); /* ignored inside the lease */
	ck_assert_int_eq(tc_count(c, REP_MSG_VOTE_RESP, 3), 0);
	tc_free(c);
}
END_TEST

static void three_voters(struct rep_config *cfg, uint32_t election_ticks,
                         uint32_t heartbeat_ticks)
{
	rep_config_init(cfg, 1);
	cfg->election_ticks = election_ticks;
	cfg->heartbeat_ticks = heartbeat_ticks;
	cfg->n_voters = 3;
	cfg->voters[0] = 1;
	cfg->voters[1] = 2;
	cfg->voters[2] = 3;
}

/* The smallest and largest number of ticks a lone follower waits before
 * campaigning, over seeds 1..200 (which cover both ends of the range). */
static void timeout_range(uint32_t election_ticks, uint32_t heartbeat_ticks,
                          uint32_t *lo, uint32_t *hi)
{
	*lo = UINT32_MAX;
	*hi = 0;
	for (uint64_t seed = 1; seed <= 200; seed++) {
		struct rep_config cfg;
		three_voters(&cfg, election_ticks, heartbeat_ticks);
		cfg.seed = seed;
		struct rep *r;
		char err[LORA_ERRMSG_BYTES];
		ck_assert_int_eq(rep_new(&cfg, NULL, &r, err), 0);
		uint32_t ticks = 0;
		struct rep_status st;
		do {
			rep_tick(r);
			ticks++;
			rep_status(r, &st);
		} while (st.role == REP_FOLLOWER && ticks < 100);
		rep_free(r);
		*lo = ticks < *lo ? ticks : *lo;
		*hi = ticks > *hi ? ticks : *hi;
	}
}

/* A follower's timeout is drawn in [T, 1.5 T) ticks: what clients wait
 * for a new leader after the old one died is bounded by the top of it. */
START_TEST(election_timeout_drawn_below_one_and_a_half)
{
	uint32_t lo, hi;
	timeout_range(10, 1, &lo, &hi);
	ck_assert_uint_eq(lo, 10);
	ck_assert_uint_eq(hi, 14);
	/* the smallest timeout accepted still spreads over 2 ticks, so two
	 * followers' timers can fall apart */
	timeout_range(4, 1, &lo, &hi);
	ck_assert_uint_eq(lo, 4);
	ck_assert_uint_eq(hi, 5);
	timeout_range(6, 2, &lo, &hi);
	ck_assert_uint_eq(lo, 6);
	ck_assert_uint_eq(hi, 8);
}
END_TEST

/* rep_new refuses an election timeout under 2 heartbeats + 2 ticks: below
 * it the vote lease (T - 1 ticks) lapses when one heartbeat is lost, and
 * under 4 ticks the timeout spread (T / 2) is 1, so every node times out
 * after exactly T ticks. */
START_TEST(config_refuses_election_below_two_heartbeats_plus_two)
{
	static const uint32_t refused[][2] = {{3, 1}, {2, 1}, {5, 2},
	                                      {4, 2}, {7, 3}, {10, 0}};
	static const uint32_t accepted[][2] = {{4, 1}, {6, 2}, {8, 3}};
	char err[LORA_ERRMSG_BYTES];
	struct rep_config cfg;
	struct rep *r = NULL;
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		three_voters(&cfg, refused[i][0], refused[i][1]);
		err[0] = '\0';
		ck_assert_msg(rep_new(&cfg, NULL, &r, err) == LORA_EINVAL,
		              "election %u heartbeat %u accepted",
		              refused[i][0], refused[i][1]);
		ck_assert_msg(strstr(err, "election_ticks") != NULL, "%s", err);
	}
	for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
		three_voters(&cfg, accepted[i][0], accepted[i][1]);
		ck_assert_msg(rep_new(&cfg, NULL, &r, err) == 0, "%s", err);
		rep_free(r);
	}
}
END_TEST

/* The vote lease ends one tick before the smallest election timeout: a
 * follower whose ticks fall just after the pre-candidate's has counted
 * T - 1 ticks when that pre-vote arrives, and grants it; one tick earlier
 * (a leader heard more recently) it still ignores it. */
static int prevote_answer(int ticks_since_leader, int *rejected)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	uint64_t t = tc_term(c, 2);
	tc_clear(c);
	tc_tick(c, 2, ticks_since_leader);
	ck_assert_uint_eq(tc_role(c, 2), REP_FOLLOWER);
	tc_clear(c);
	struct rep_msg v = mk(REP_MSG_PREVOTE, 3, 2, t + 1);
	v.index = tc_last(c, 3);
	v.log_term = t;
	tc_step(c, &v);
	tc_drain(c, 2);
	struct tc_msg resp;
	int answered = tc_take(c, REP_MSG_PREVOTE_RESP, 3, &resp);
	if (answered) {
		*rejected = resp.m.reject;
		tc_msg_free(&resp);
	}
	tc_free(c);
	return answered;
}

/* A leader never leaves its own lease: at the last tick of its check
 * period (election_elapsed = T - 1) it still ignores a pre-vote, and does
 * not count the candidate as heard from for check-quorum. */
static void prevote_at_end_of_check_period(int node2_answers)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	uint64_t t = tc_term(c, 1);
	for (int k = 0; k < 9; k++) { /* node 3 never answers heartbeats */
		tc_tick(c, 1, 1);
		c->cut[2] = !node2_answers;
		c->cut[3] = 1;
		tc_stabilize(c);
		c->cut[2] = c->cut[3] = 0;
	}
	tc_clear(c);
	struct rep_msg v = mk(REP_MSG_PREVOTE, 3, 1, t + 1);
	v.index = tc_last(c, 1);
	v.log_term = t;
	tc_step(c, &v);
	tc_drain(c, 1);
	ck_assert_int_eq(tc_count(c, REP_MSG_PREVOTE_RESP, 3), 0);
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	ck_assert_uint_eq(tc_term(c, 1), t);
	/* the end of the check period: with node 2 heard it keeps leading;
	 * without, the ignored pre-vote from node 3 does not make a quorum */
	c->cut[2] = c->cut[3] = 1;
	tc_tick(c, 1, 1);
	uint32_t want = node2_answers ? REP_LEADER : REP_FOLLOWER;
	ck_assert_uint_eq(tc_role(c, 1), want);
	ck_assert_uint_eq(tc_term(c, 1), t);
	tc_free(c);
}

START_TEST(leader_ignores_prevote_at_end_of_check_period)
{
	prevote_at_end_of_check_period(1);
	prevote_at_end_of_check_period(0);
}
END_TEST

START_TEST(prevote_granted_one_tick_before_the_timeout)
{
	int rejected = -1;
	ck_assert_int_eq(prevote_answer(9, &rejected), 1);
	ck_assert_int_eq(rejected, 0);
	ck_assert_int_eq(prevote_answer(8, &rejected), 0);
}
END_TEST

START_TEST(leadership_transfer_with_timeout_now)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	ck_assert_int_eq(tc_propose(c, 1, 9), 0);
	tc_stabilize(c);
	ck_assert_int_eq(rep_transfer_leader(c->r[1], 3), 0);
	uint8_t b[1] = {1};
	ck_assert_int_eq(rep_propose(c->r[1], b, 1, NULL, NULL, NULL),
	                 LORA_EUNAVAILABLE);
	tc_stabilize(c);
	ck_assert_uint_eq(tc_role(c, 3), REP_LEADER);
	ck_assert_uint_eq(tc_role(c, 1), REP_FOLLOWER);
	ck_assert_uint_eq(tc_leader(c, 2), 3);
	ck_assert_int_eq(rep_transfer_leader(c->r[1], 2), LORA_ENOTLEADER);
	tc_free(c);
}
END_TEST

START_TEST(read_index_on_leader_needs_heartbeat_quorum)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	uint64_t commit = tc_commit(c, 1);
	tc_clear(c);
	ck_assert_int_eq(rep_read_index(c->r[1], "r1", 2), 0);
	tc_drain(c, 1);
	ck_assert_int_eq(c->n_reads[1], 0); /* not before the round */
	ck_assert_int_eq(tc_count(c, REP_MSG_HEARTBEAT, 0), 2);
	struct tc_msg h;
	ck_assert(tc_take(c, REP_MSG_HEARTBEAT, 2, &h));
	ck_assert_uint_eq(h.m.context_len, 2);
	tc_step(c, &h.m);
	tc_drain(c, 2);
	struct tc_msg r;
	ck_assert(tc_take(c, REP_MSG_HEARTBEAT_RESP, 1, &r));
	tc_step(c, &r.m);
	tc_drain(c, 1);
	ck_assert_int_eq(c->n_reads[1], 1);
	ck_assert_uint_eq(c->reads[1][0].index, commit);
	ck_assert_int_eq(memcmp(c->reads[1][0].ctx, "r1", 2), 0);
	tc_free(c);
}
END_TEST

START_TEST(read_index_forwarded_by_follower)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	ck_assert_int_eq(rep_read_index(c->r[2], "f", 1), 0);
	tc_stabilize(c);
	ck_assert_int_eq(c->n_reads[2], 1);
	ck_assert_uint_eq(c->reads[2][0].index, tc_commit(c, 1));
	tc_free(c);
}
END_TEST

START_TEST(read_index_waits_for_first_commit_in_term)
{
	struct tc *c = tc_new(3, 0, 0);
	tc_tick(c, 1, 20);
	struct rep_msg g = mk(REP_MSG_VOTE_RESP, 2, 1, tc_term(c, 1));
	tc_step(c, &g);
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	ck_assert_int_eq(rep_read_index(c->r[1], "x", 1), 0);
	tc_drain(c, 1);
	ck_assert_int_eq(tc_count(c, REP_MSG_HEARTBEAT, 0), 0);
	tc_stabilize(c); /* no-op commits, then the heartbeat round */
	ck_assert_int_eq(c->n_reads[1], 1);
	ck_assert_uint_ge(c->reads[1][0].index, 1);
	ck_assert_int_eq(rep_read_index(c->r[3], "", 0), LORA_EINVAL);
	tc_free(c);
}
END_TEST

/* ---- snapshots, membership, restart, bad input --------------------------- */

START_TEST(lagging_follower_gets_snapshot)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	c->cut[3] = 1;
	for (uint64_t v = 1; v <= 20; v++)
		ck_assert_int_eq(tc_propose(c, 1, v), 0);
	tc_stabilize(c);
	ck_assert_uint_eq(tc_commit(c, 1), 21);
	ck_assert_int_eq(rep_compact(c->r[1], 15), 0);
	ck_assert_int_eq(rep_compact(c->r[1], 15), LORA_EINVAL);
	struct rep_snapshot_meta meta;
	rep_compaction_meta(c->r[1], &meta);
	ck_assert_uint_eq(meta.index, 15);
	ck_assert_uint_eq(meta.n_voters, 3);
	c->cut[3] = 0;
	for (int k = 0; k < 6; k++) {
		tc_tick(c, 1, 1);
		tc_stabilize(c);
	}
	ck_assert_int_eq(c->snapshots[3], 1);
	ck_assert_uint_eq(tc_last(c, 3), 21);
	ck_assert_uint_eq(tc_commit(c, 3), 21);
	tc_free(c);
}
END_TEST

START_TEST(wiped_follower_is_caught_up_from_scratch)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	for (uint64_t v = 1; v <= 20; v++)
		ck_assert_int_eq(tc_propose(c, 1, v), 0);
	tc_stabilize(c);
	ck_assert_uint_eq(tc_last(c, 3), 21);
	ck_assert_int_eq(rep_compact(c->r[1], 15), 0);
	/* Node 3 loses its data directory and comes back empty. */
	rep_free(c->r[3]);
	c->r[3] = NULL;
	memset(&c->hs[3], 0, sizeof(c->hs[3]));
	tc_add_node(c, 3);
	for (uint64_t v = 21; v <= 25; v++)
		ck_assert_int_eq(tc_propose(c, 1, v), 0);
	for (int k = 0; k < 10; k++) {
		tc_tick(c, 1, 1);
		tc_stabilize(c);
	}
	ck_assert_int_eq(c->snapshots[3], 1);
	ck_assert_uint_eq(tc_last(c, 3), tc_last(c, 1));
	ck_assert_uint_eq(tc_commit(c, 3), tc_commit(c, 1));
	tc_free(c);
}
END_TEST

START_TEST(no_snapshot_to_silent_follower_and_no_busy_ready)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	c->cut[3] = 1;
	for (int k = 0; k < 12; k++) { /* a check-quorum round: 3 is not */
		tc_tick(c, 1, 1);      /* recently active, 2 answers */
		tc_stabilize(c);
	}
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	for (uint64_t v = 1; v <= 20; v++)
		ck_assert_int_eq(tc_propose(c, 1, v), 0);
	tc_stabilize(c);
	ck_assert_int_eq(rep_compact(c->r[1], 15), 0);
	rep_report_unreachable(c->r[1], 3); /* back to probing from 2 */
	tc_drain(c, 1);
	ck_assert(!rep_has_ready(c->r[1]));
	c->cut[3] = 0;
	for (int k = 0; k < 6; k++) {
		tc_tick(c, 1, 1);
		tc_stabilize(c);
	}
	ck_assert_int_eq(c->snapshots[3], 1);
	ck_assert_uint_eq(tc_commit(c, 3), tc_commit(c, 1));
	tc_free(c);
}
END_TEST

START_TEST(membership_add_learner_promote_remove)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	tc_add_node(c, 4);
	uint64_t idx = 0;
	ck_assert_int_eq(rep_propose_conf_change(c->r[1], REP_CONF_ADD_LEARNER,
	                                         4, "127.0.0.4", 9, NULL, &idx,
	                                         NULL),
	                 0);
	/* One change at a time. */
	ck_assert_int_eq(rep_propose_conf_change(c->r[1], REP_CONF_REMOVE, 3,
	                                         NULL, 0, NULL, NULL, NULL),
	                 LORA_EUNAVAILABLE);
	tc_stabilize(c);
	for (int k = 0; k < 4; k++) {
		tc_tick(c, 1, 1);
		tc_stabilize(c);
	}
	struct rep_status st;
	rep_status(c->r[4], &st);
	ck_assert_int_eq(st.learner, 1);
	ck_assert_uint_eq(st.commit, idx);
	rep_status(c->r[1], &st);
	ck_assert_uint_eq(st.n_peers, 4);
	ck_assert_int_eq(rep_propose_conf_change(c->r[1], REP_CONF_PROMOTE, 4,
	                                         NULL, 0, NULL, NULL, NULL),
	                 0);
	tc_stabilize(c);
	tc_tick(c, 1, 1);
	tc_stabilize(c);
	rep_status(c->r[4], &st);
	ck_assert_int_eq(st.learner, 0);
	/* The leader removes itself and steps down once that commits. */
	ck_assert_int_eq(rep_propose_conf_change(c->r[1], REP_CONF_REMOVE, 1,
	                                         NULL, 0, NULL, NULL, NULL),
	                 0);
	tc_stabilize(c);
	ck_assert_uint_ne(tc_role(c, 1), REP_LEADER);
	tc_free(c);
}
END_TEST

/* A leader that removes itself tells the others the removal committed
 * before it steps down: otherwise they still count it as a voter (it holds
 * the longest log and never campaigns), and with 2 of 3 voters left none
 * of them can win an election (simulator seed 16906). */
START_TEST(leader_removing_itself_sends_the_commit_before_stepping_down)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	uint64_t index = 0;
	ck_assert_int_eq(rep_propose_conf_change(c->r[1], REP_CONF_REMOVE, 1,
	                                         NULL, 0, NULL, &index, NULL),
	                 0);
	tc_stabilize(c); /* no tick: only what the removal itself sends */
	ck_assert_uint_eq(tc_role(c, 1), REP_FOLLOWER);
	for (int i = 2; i <= 3; i++)
		ck_assert_uint_ge(tc_commit(c, i), index);
	c->cut[1] = 1;
	tc_tick(c, 3, 9); /* out of the lease of node 1's last message */
	tc_elect(c, 2);   /* node 2 wins with node 3 alone */
	ck_assert_uint_eq(tc_leader(c, 3), 2);
	tc_free(c);
}
END_TEST

START_TEST(conf_change_encoding_round_trips_and_rejects_garbage)
{
	struct tc *c = tc_new(1, 1, 1);
	tc_elect(c, 1);
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	ck_assert_int_eq(rep_propose_conf_change(c->r[1], REP_CONF_ADD_LEARNER,
	                                         9, "addr", 4, NULL, NULL,
	                                         NULL),
	                 0);
	struct rep_ready rd;
	rep_ready(c->r[1], &rd);
	ck_assert_uint_eq(rd.n_entries, 1);
	struct rep_conf_change cc;
	ck_assert_int_eq(
	    rep_conf_change_decode(rd.entries[0].data, rd.entries[0].len, &cc),
	    0);
	ck_assert_uint_eq(cc.type, REP_CONF_ADD_LEARNER);
	ck_assert_uint_eq(cc.node_id, 9);
	ck_assert_uint_eq(cc.ctx_len, 4);
	ck_assert_int_eq(memcmp(cc.ctx, "addr", 4), 0);
	ck_assert_int_eq(rep_conf_change_decode(rd.entries[0].data, 3, &cc),
	                 LORA_ECORRUPT);
	rep_advance(c->r[1], &rd);
	tc_free(c);
}
END_TEST

START_TEST(restart_from_persisted_state)
{
	struct rep_config cfg;
	rep_config_init(&cfg, 1);
	cfg.n_voters = 3;
	for (int i = 0; i < 3; i++)
		cfg.voters[i] = (uint64_t)i + 1;
	struct rep_entry e[2] = {{1, 1, REP_ENTRY_NORMAL, NULL, 0},
	                         {2, 2, REP_ENTRY_NORMAL, NULL, 0}};
	struct rep_restore rs = {0};
	rs.hs = (struct rep_hard_state){2, 3, 1};
	rs.entries = e;
	rs.n_entries = 2;
	rs.applied = 0;
	struct rep *r;
	char msg[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(rep_new(&cfg, &rs, &r, msg), 0);
	struct rep_status st;
	rep_status(r, &st);
	ck_assert_uint_eq(st.term, 2);
	ck_assert_uint_eq(st.vote, 3);
	ck_assert_uint_eq(st.last_index, 2);
	struct rep_ready rd;
	rep_ready(r, &rd);
	ck_assert_uint_eq(rd.n_committed, 1); /* re-applies entry 1 */
	ck_assert_int_eq(rd.has_hard_state, 0);
	rep_advance(r, &rd);
	rep_free(r);
	/* A commit index persisted lazily may lag what was applied. */
	rs.hs.commit = 0;
	rs.applied = 2;
	ck_assert_int_eq(rep_new(&cfg, &rs, &r, msg), 0);
	rep_status(r, &st);
	ck_assert_uint_eq(st.commit, 2);
	ck_assert_uint_eq(st.applied, 2);
	rep_free(r);
	rs.applied = 0;
	/* Inconsistent state from disk is an error, not a crash. */
	rs.hs.commit = 5;
	ck_assert_int_eq(rep_new(&cfg, &rs, &r, msg), LORA_ECORRUPT);
	e[1].index = 7;
	rs.hs.commit = 1;
	ck_assert_int_eq(rep_new(&cfg, &rs, &r, msg), LORA_ECORRUPT);
}
END_TEST

START_TEST(malformed_messages_are_refused)
{
	struct tc *c = tc_new(3, 1, 1);
	struct rep_msg m = mk(99, 2, 1, 1);
	ck_assert_int_eq(tc_step(c, &m), LORA_EINVAL);
	m = mk(REP_MSG_APP, 2, 5, 1); /* not for us */
	ck_assert_int_eq(rep_step(c->r[1], &m), LORA_EINVAL);
	m = mk(REP_MSG_APP, 2, 1, 1);
	uint64_t t[] = {1, 1};
	m.entries = ents(1, 2, t);
	m.n_entries = 2;
	ents_buf[1].index = 5; /* gap */
	ck_assert_int_eq(tc_step(c, &m), LORA_EINVAL);
	m = mk(REP_MSG_HEARTBEAT, 2, 1, 1);
	m.context_len = REP_CONTEXT_BYTES_MAX + 1;
	ck_assert_int_eq(tc_step(c, &m), LORA_EINVAL);
	m = mk(REP_MSG_SNAPSHOT, 2, 1, 1);
	m.snapshot.index = 10;
	m.snapshot.term = 1;
	m.snapshot.n_voters = REP_MEMBERS_MAX;
	m.snapshot.n_learners = 1; /* more members than the core holds */
	ck_assert_int_eq(tc_step(c, &m), LORA_EINVAL);
	ck_assert_uint_eq(tc_last(c, 1), 0);
	tc_free(c);
}
END_TEST

/* ---- hostile peers: refused, never obeyed, never a crash ---------------- */

START_TEST(non_member_messages_are_refused)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	uint64_t term = tc_term(c, 2);
	/* A heartbeat from id 99 with a far higher term moved the term and
	 * the leader before. */
	struct rep_msg m = mk(REP_MSG_HEARTBEAT, 99, 2, term + 100);
	ck_assert_int_eq(tc_step(c, &m), LORA_EINVAL);
	ck_assert_uint_eq(rep_refusal(c->r[2]), REP_REFUSE_NOT_MEMBER);
	ck_assert_str_eq(rep_refusal_name(rep_refusal(c->r[2])), "not-member");
	ck_assert_uint_eq(tc_term(c, 2), term);
	ck_assert_uint_eq(tc_leader(c, 2), 1);
	/* An append from 99 would have put an entry in the log. */
	uint64_t last = tc_last(c, 2);
	uint64_t t[] = {term};
	m = mk(REP_MSG_APP, 99, 2, term);
	m.index = last;
	m.log_term = term;
	m.entries = ents(last + 1, 1, t);
	m.n_entries = 1;
	m.commit = last + 1;
	ck_assert_int_eq(tc_step(c, &m), LORA_EINVAL);
	ck_assert_uint_eq(tc_last(c, 2), last);
	/* Votes and read requests from 99 are refused too. */
	m = mk(REP_MSG_VOTE, 99, 2, term + 1);
	m.index = last;
	m.log_term = term;
	ck_assert_int_eq(tc_step(c, &m), LORA_EINVAL);
	m = mk(REP_MSG_READ_INDEX, 99, 1, 0);
	m.context_len = 1;
	ck_assert_int_eq(tc_step(c, &m), LORA_EINVAL);
	/* A member is still heard, and the refusal is cleared. */
	m = mk(REP_MSG_HEARTBEAT, 1, 2, term);
	ck_assert_int_eq(tc_step(c, &m), 0);
	ck_assert_uint_eq(rep_refusal(c->r[2]), REP_REFUSE_NONE);
	tc_free(c);
}
END_TEST

START_TEST(term_beyond_max_is_refused_and_never_wraps)
{
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	uint64_t term = tc_term(c, 2);
	struct rep_msg m = mk(REP_MSG_HEARTBEAT, 1, 2, UINT64_MAX);
	ck_assert_int_eq(tc_step(c, &m), LORA_EINVAL);
	ck_assert_uint_eq(rep_refusal(c->r[2]), REP_REFUSE_TERM);
	ck_assert_uint_eq(tc_term(c, 2), term);
	m = mk(REP_MSG_VOTE, 3, 2, REP_TERM_MAX + 1);
	ck_assert_int_eq(tc_step(c, &m), LORA_EINVAL);
	/* A jump no run of elections makes is refused too: a (forged)
	 * term at the limit would stop every election for good. */
	m = mk(REP_MSG_HEARTBEAT, 1, 2, REP_TERM_MAX);
	ck_assert_int_eq(tc_step(c, &m), LORA_EINVAL);
	ck_assert_uint_eq(rep_refusal(c->r[2]), REP_REFUSE_TERM);
	ck_assert_uint_eq(tc_term(c, 2), term);
	m = mk(REP_MSG_HEARTBEAT, 1, 2, term + REP_TERM_JUMP_MAX + 1);
	ck_assert_int_eq(tc_step(c, &m), LORA_EINVAL);
	ck_assert_uint_eq(tc_term(c, 2), term);
	m = mk(REP_MSG_HEARTBEAT, 1, 2, term + REP_TERM_JUMP_MAX);
	ck_assert_int_eq(tc_step(c, &m), 0);
	ck_assert_uint_eq(tc_term(c, 2), term + REP_TERM_JUMP_MAX);
	/* A node whose disk holds a term beyond the limit refuses to start
	 * with a message instead of aborting at its next election. */
	struct rep_config cfg;
	rep_config_init(&cfg, 1);
	cfg.n_voters = 1;
	cfg.voters[0] = 1;
	struct rep_restore rs;
	memset(&rs, 0, sizeof(rs));
	rs.hs.term = UINT64_MAX;
	struct rep *r = NULL;
	char msg[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(rep_new(&cfg, &rs, &r, msg), LORA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(msg, "stored term"));
	tc_free(c);
}
END_TEST

START_TEST(caught_up_follower_wiped_is_caught_up_again)
{
	/* The follower acknowledged everything (match == last), then lost
	 * its log while the leader could not reach it (so the leader probes
	 * it from match + 1): its rejection is at match, not above it. With
	 * `rejected > match` the leader re-sent the same probe forever. */
	struct tc *c = tc_new(3, 1, 1);
	tc_elect(c, 1);
	for (uint64_t v = 1; v <= 10; v++)
		ck_assert_int_eq(tc_propose(c, 1, v), 0);
	tc_stabilize(c);
	uint64_t last = tc_last(c, 1);
	ck_assert_uint_eq(tc_last(c, 3), last);
	ck_assert_int_eq(rep_compact(c->r[1], last), 0);
	rep_free(c->r[3]);
	c->r[3] = NULL;
	memset(&c->hs[3], 0, sizeof(c->hs[3]));
	rep_report_unreachable(c->r[1], 3);
	tc_add_node(c, 3);
	ck_assert_int_eq(tc_propose(c, 1, 11), 0);
	for (int k = 0; k < 10; k++) {
		tc_tick(c, 1, 1);
		tc_stabilize(c);
	}
	ck_assert_int_eq(c->snapshots[3], 1);
	ck_assert_uint_eq(tc_last(c, 3), tc_last(c, 1));
	ck_assert_uint_eq(tc_commit(c, 3), tc_commit(c, 1));
	tc_free(c);
}
END_TEST

START_TEST(batching_respects_message_limits)
{
	struct tc *c = tc_new(3, 1, 1);
	c->cfg[1].msg_entries_max = 4; /* only affects new cores: rebuild */
	rep_free(c->r[1]);
	char msg[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(rep_new(&c->cfg[1], NULL, &c->r[1], msg), 0);
	tc_elect(c, 1);
	ck_assert_uint_eq(tc_role(c, 1), REP_LEADER);
	tc_clear(c);
	for (uint64_t v = 1; v <= 10; v++)
		ck_assert_int_eq(tc_propose(c, 1, v), 0);
	tc_drain(c, 1);
	for (int i = 0; i < c->nq; i++)
		ck_assert_uint_le(c->q[i].m.n_entries, 4);
	ck_assert_int_ge(tc_count(c, REP_MSG_APP, 2), 3);
	tc_free(c);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("raft");
	TCase *f2 = tcase_create("figure2");
	tcase_add_test(f2, higher_term_makes_anyone_follower);
	tcase_add_test(f2, committed_entries_are_applied_in_order);
	tcase_add_test(f2, vote_rejected_for_stale_term);
	tcase_add_test(f2, one_vote_per_term_persisted_before_reply);
	tcase_add_test(f2, vote_requires_up_to_date_log);
	tcase_add_test(f2, append_from_stale_term_rejected);
	tcase_add_test(f2, append_without_matching_prev_rejected_with_hint);
	tcase_add_test(f2, append_conflict_truncates_and_appends);
	tcase_add_test(f2, append_commit_is_min_of_leader_commit_and_last_new);
	tcase_add_test(f2, append_never_rewrites_committed_entries);
	tcase_add_test(f2, election_timeout_starts_election);
	tcase_add_test(f2,
	               config_refuses_election_below_two_heartbeats_plus_two);
	tcase_add_test(f2, candidate_with_majority_leads_and_appends_noop);
	tcase_add_test(f2, candidate_steps_down_for_leader_of_same_term);
	tcase_add_test(f2, leader_sends_heartbeats);
	tcase_add_test(f2, leader_commits_only_entries_of_its_term);
	tcase_add_test(f2, follower_refuses_proposal_with_leader_hint);
	tcase_add_test(f2, fast_backtracking_skips_a_term_per_round_trip);
	suite_add_tcase(s, f2);
	TCase *th = tcase_create("thesis");
	tcase_add_test(th, prevote_does_not_bump_term_of_partitioned_node);
	tcase_add_test(th, without_prevote_rejoining_node_disrupts);
	tcase_add_test(th, prevote_rejoining_node_does_not_disrupt);
	tcase_add_test(th, check_quorum_leader_steps_down_alone);
	tcase_add_test(th, check_quorum_lease_ignores_votes);
	tcase_add_test(th, election_timeout_drawn_below_one_and_a_half);
	tcase_add_test(th, prevote_granted_one_tick_before_the_timeout);
	tcase_add_test(th, leader_ignores_prevote_at_end_of_check_period);
	tcase_add_test(th, leadership_transfer_with_timeout_now);
	tcase_add_test(th, read_index_on_leader_needs_heartbeat_quorum);
	tcase_add_test(th, read_index_forwarded_by_follower);
	tcase_add_test(th, read_index_waits_for_first_commit_in_term);
	suite_add_tcase(s, th);
	TCase *ops = tcase_create("operations");
	tcase_add_test(ops, lagging_follower_gets_snapshot);
	tcase_add_test(ops, no_snapshot_to_silent_follower_and_no_busy_ready);
	tcase_add_test(ops, membership_add_learner_promote_remove);
	tcase_add_test(
	    ops, leader_removing_itself_sends_the_commit_before_stepping_down);
	tcase_add_test(ops,
	               conf_change_encoding_round_trips_and_rejects_garbage);
	tcase_add_test(ops, restart_from_persisted_state);
	tcase_add_test(ops, malformed_messages_are_refused);
	tcase_add_test(ops, wiped_follower_is_caught_up_from_scratch);
	tcase_add_test(ops, batching_respects_message_limits);
	tcase_add_test(ops, non_member_messages_are_refused);
	tcase_add_test(ops, term_beyond_max_is_refused_and_never_wraps);
	tcase_add_test(ops, caught_up_follower_wiped_is_caught_up_again);
	suite_add_tcase(s, ops);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
