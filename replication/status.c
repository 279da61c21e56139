/* status.c - read-only views of the core for status pages and tests. */
#include <string.h>

#include "raft_int.h"

void rep_status(const struct rep *r, struct rep_status *st)
{
	memset(st, 0, sizeof(*st));
	st->id = r->id;
	st->role = r->role;
	st->learner = !rep_is_voter(r, r->id);
	st->term = r->term;
	st->vote = r->vote;
	st->leader = r->leader;
	st->commit = r->log.commit;
	st->applied = r->log.applied;
	st->last_index = log_last(&r->log);
	st->snapshot_index = r->log.snap_index;
	st->last_contact_ticks =
	    r->role == REP_LEADER ? 0 : r->ticks_since_leader;
	st->transferee = r->transferee;
	st->n_peers = r->n_prs;
	for (uint32_t i = 0; i < r->n_prs; i++) {
		const struct rep_progress *pr = &r->prs[i];
		struct rep_peer_status *ps = &st->peers[i];
		ps->id = pr->id;
		ps->voter = pr->voter;
		if (r->role != REP_LEADER)
			continue;
		ps->match = pr->id == r->id ? r->log.stable : pr->match;
		ps->next = pr->next;
		ps->state = pr->state;
		ps->inflight = pr->infl_count;
		ps->last_contact_ticks = pr->id == r->id ? 0 : pr->idle_ticks;
	}
}

const char *rep_role_name(uint32_t role)
{
	static const char *names[] = {"follower", "pre-candidate", "candidate",
	                              "leader"};
	return role <= REP_LEADER ? names[role] : "unknown";
}

const char *rep_msg_type_name(uint32_t type)
{
	static const char *names[] = {
	    "none",           "app",      "app-resp",     "vote",
	    "vote-resp",      "prevote",  "prevote-resp", "heartbeat",
	    "hb-resp",        "snapshot", "timeout-now",  "read-index",
	    "read-index-resp"};
	return type <= REP_MSG_TYPE_MAX ? names[type] : "unknown";
}
