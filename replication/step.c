/* step.c - the core's inputs: messages, ticks, proposals, transfers. */
#include <string.h>

#include "raft_int.h"

/* Peer bytes are never trusted: anything malformed is refused here. */
static int validate_entries(const struct rep_msg *m)
{
	if (m->n_entries > REP_MSG_ENTRIES_MAX)
		return LORA_EINVAL;
	if (m->n_entries > 0 && (m->entries == NULL || m->type != REP_MSG_APP))
		return LORA_EINVAL;
	uint64_t prev_term = m->log_term;
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct rep_entry *e = &m->entries[i];
		if (e->index != m->index + 1 + i || e->term < prev_term ||
		    e->term > m->term || e->len > REP_ENTRY_BYTES_MAX ||
		    (e->len > 0 && e->data == NULL) ||
		    e->type > REP_ENTRY_CONF_CHANGE)
			return LORA_EINVAL;
		prev_term = e->term;
	}
	return 0;
}

static int validate(struct rep *r, const struct rep_msg *m)
{
	r->refusal = REP_REFUSE_MALFORMED;
	if (m->type < REP_MSG_APP || m->type > REP_MSG_TYPE_MAX)
		return LORA_EINVAL;
	if (m->from == REP_NONE || m->from == r->id || m->to != r->id)
		return LORA_EINVAL;
	if (m->context_len > REP_CONTEXT_BYTES_MAX ||
	    m->snapshot.n_voters > REP_MEMBERS_MAX ||
	    m->snapshot.n_learners > REP_MEMBERS_MAX - m->snapshot.n_voters)
		return LORA_EINVAL;
	if (m->term == 0 && m->type != REP_MSG_READ_INDEX)
		return LORA_EINVAL;
	if (m->type == REP_MSG_APP && m->n_entries > 0 &&
	    m->index > UINT64_MAX - REP_MSG_ENTRIES_MAX)
		return LORA_EINVAL;
	int rv = validate_entries(m);
	if (rv != 0)
		return rv;
	/* Entry and snapshot terms are <= m->term (checked where used). */
	/* beyond the limit, or a jump no run of elections makes (a forged
	 * message would otherwise stop every election: no node campaigns
	 * at the limit); a node with no term yet takes any */
	if (m->term > REP_TERM_MAX || (r->term > 0 && m->term > r->term &&
	                               m->term - r->term > REP_TERM_JUMP_MAX)) {
		r->refusal = REP_REFUSE_TERM;
		return LORA_EINVAL;
	}
	if (!rep_is_member_or_joining(r, m->from)) {
		r->refusal = REP_REFUSE_NOT_MEMBER;
		return LORA_EINVAL;
	}
	r->refusal = REP_REFUSE_NONE;
	return 0;
}

uint32_t rep_refusal(const struct rep *r)
{
	return r->refusal;
}

const char *rep_refusal_name(uint32_t refusal)
{
	switch (refusal) {
	case REP_REFUSE_MALFORMED:
		return "malformed";
	case REP_REFUSE_TERM:
		return "term-overflow";
	case REP_REFUSE_NOT_MEMBER:
		return "not-member";
	default:
		return "none";
	}
}

static void note_leader(struct rep *r, uint64_t from)
{
	if (r->role != REP_FOLLOWER)
		rep_become_follower(r, r->term, from);
	r->leader = from;
	r->election_elapsed = 0;
	r->ticks_since_leader = 0;
}

static int step_leader(struct rep *r, const struct rep_msg *m)
{
	switch (m->type) {
	case REP_MSG_APP_RESP:
		rep_handle_append_resp(r, m);
		break;
	case REP_MSG_HEARTBEAT_RESP:
		rep_handle_heartbeat_resp(r, m);
		break;
	case REP_MSG_READ_INDEX:
		rep_handle_read_index(r, m);
		break;
	default:
		break; /* stale or misdirected: ignore */
	}
	return 0;
}

static int step_other(struct rep *r, const struct rep_msg *m)
{
	switch (m->type) {
	case REP_MSG_APP:
		note_leader(r, m->from);
		return rep_handle_append(r, m);
	case REP_MSG_HEARTBEAT:
		note_leader(r, m->from);
		rep_handle_heartbeat(r, m);
		return 0;
	case REP_MSG_SNAPSHOT:
		note_leader(r, m->from);
		rep_handle_snapshot(r, m);
		return 0;
	case REP_MSG_TIMEOUT_NOW:
		rep_handle_timeout_now(r, m);
		return 0;
	case REP_MSG_READ_INDEX_RESP:
		rep_handle_read_index_resp(r, m);
		return 0;
	default:
		return 0;
	}
}

static int step(struct rep *r, const struct rep_msg *m);

int rep_step(struct rep *r, const struct rep_msg *m)
{
	int rv = step(r, m);
	if (rv == LORA_EINVAL && r->refusal == REP_REFUSE_NONE)
		r->refusal = REP_REFUSE_MALFORMED; /* e.g. rewriting a commit */
	return rv;
}

static int step(struct rep *r, const struct rep_msg *m)
{
	int rv = validate(r, m);
	if (rv != 0)
		return rv;
	if (m->type == REP_MSG_READ_INDEX && m->term == 0) {
		if (r->role == REP_LEADER)
			rep_handle_read_index(r, m);
		return 0;
	}
	if (!rep_step_term(r, m))
		return 0;
	int slot = rep_pr_slot(r, m->from);
	if (slot >= 0 && r->role == REP_LEADER) {
		r->prs[slot].recent_active = 1;
		r->prs[slot].idle_ticks = 0;
	}
	switch (m->type) {
	case REP_MSG_VOTE:
	case REP_MSG_PREVOTE:
		rep_handle_vote(r, m);
		return 0;
	case REP_MSG_VOTE_RESP:
	case REP_MSG_PREVOTE_RESP:
		rep_handle_vote_resp(r, m);
		return 0;
	default:
		break;
	}
	if (r->role == REP_LEADER)
		return step_leader(r, m);
	return step_other(r, m);
}

void rep_tick(struct rep *r)
{
	for (uint32_t i = 0; i < r->n_prs; i++)
		r->prs[i].idle_ticks++;
	r->ticks_since_leader++;
	if (r->role == REP_LEADER)
		rep_tick_leader(r);
	else
		rep_tick_election(r);
}

static int not_leader(const struct rep *r, uint64_t *leader)
{
	if (leader != NULL)
		*leader = r->leader;
	return LORA_ENOTLEADER;
}

static int append_local(struct rep *r, uint32_t type, const void *data,
                        size_t len, uint64_t *term, uint64_t *index)
{
	int rv = log_append_new(&r->log, r->term, type, data, len);
	if (rv != 0)
		return rv;
	if (term != NULL)
		*term = r->term;
	if (index != NULL)
		*index = log_last(&r->log);
	return 0;
}

int rep_propose(struct rep *r, const void *data, size_t len, uint64_t *term,
                uint64_t *index, uint64_t *leader)
{
	if (leader != NULL)
		*leader = r->leader;
	if (r->role != REP_LEADER)
		return not_leader(r, leader);
	if (r->transferee != REP_NONE)
		return LORA_EUNAVAILABLE;
	if (len > REP_ENTRY_BYTES_MAX ||
	    log_last(&r->log) - r->log.commit >= r->cfg.uncommitted_entries_max)
		return LORA_ELIMIT;
	return append_local(r, REP_ENTRY_NORMAL, data, len, term, index);
}

static int check_conf_change(const struct rep *r, uint32_t type, uint64_t id)
{
	const struct rep_conf *c = &r->conf;
	int voter = rep_is_voter(r, id);
	int member = conf_has(c, id);
	switch (type) {
	case REP_CONF_ADD_LEARNER:
		if (id == REP_NONE || member)
			return LORA_EINVAL;
		if (c->n_voters + c->n_learners >= REP_MEMBERS_MAX)
			return LORA_ELIMIT;
		return 0;
	case REP_CONF_PROMOTE:
		return member && !voter ? 0 : LORA_EINVAL;
	case REP_CONF_REMOVE:
		if (!member || (voter && c->n_voters == 1))
			return LORA_EINVAL;
		return 0;
	default:
		return LORA_EINVAL;
	}
}

int rep_propose_conf_change(struct rep *r, uint32_t type, uint64_t node_id,
                            const void *ctx, size_t ctx_len, uint64_t *term,
                            uint64_t *index, uint64_t *leader)
{
	if (leader != NULL)
		*leader = r->leader;
	if (r->role != REP_LEADER)
		return not_leader(r, leader);
	if (r->transferee != REP_NONE)
		return LORA_EUNAVAILABLE;
	if (ctx_len > REP_CONF_CONTEXT_BYTES_MAX)
		return LORA_ELIMIT;
	int rv = check_conf_change(r, type, node_id);
	if (rv != 0)
		return rv;
	if (r->pending_conf_index > r->log.commit ||
	    log_term(&r->log, r->log.commit) != r->term)
		return LORA_EUNAVAILABLE;
	uint8_t *data;
	size_t len;
	rv = rep_conf_encode(type, node_id, ctx, ctx_len, &data, &len);
	if (rv != 0)
		return rv;
	rv = append_local(r, REP_ENTRY_CONF_CHANGE, data, len, term, index);
	lora_free(data);
	if (rv == 0)
		r->pending_conf_index = log_last(&r->log);
	return rv;
}

int rep_transfer_leader(struct rep *r, uint64_t to)
{
	if (r->role != REP_LEADER)
		return LORA_ENOTLEADER;
	if (!rep_is_voter(r, to))
		return LORA_EINVAL;
	if (to == r->id || r->transferee == to)
		return 0;
	r->transferee = to;
	r->election_elapsed = 0;
	struct rep_progress *pr = rep_pr(r, to);
	LORA_ASSERT(pr != NULL);
	if (pr->match == log_last(&r->log)) {
		struct rep_msg m;
		rep_msg_init(&m, REP_MSG_TIMEOUT_NOW, to, r->term);
		rep_send(r, &m);
	} else {
		rep_send_append(r, pr, 1);
	}
	return 0;
}

void rep_report_unreachable(struct rep *r, uint64_t id)
{
	struct rep_progress *pr = rep_pr(r, id);
	if (r->role != REP_LEADER || pr == NULL || id == r->id)
		return;
	if (pr->state == REP_PROGRESS_REPLICATE)
		pr_become_probe(pr);
}
