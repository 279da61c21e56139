/* membership.c - configurations, conf-change entries and peer progress. */
/*
 * One change at a time (add learner, promote, remove), each carried by a
 * REP_ENTRY_CONF_CHANGE entry whose data the core encodes itself:
 *
 *   "LC" | version 1 | type u8 | node_id be64 | ctx_len be16 | ctx
 *
 * A change takes effect on a node when that node learns the entry is
 * committed (rep_commit_to -> rep_apply_conf_changes), never when it is
 * merely appended, so truncating an uncommitted suffix never has to undo a
 * configuration. The configuration at any index is the one in the
 * compaction point's metadata plus the changes committed after it
 * (rep_conf_at), which is what a snapshot sent to a follower carries.
 * A change that no longer makes sense when it commits (e.g. removing a
 * node already gone) is a no-op on every node alike.
 */
#include <string.h>

#include "raft_int.h"

#define CONF_HEADER_BYTES 14

int conf_has(const struct rep_conf *c, uint64_t id)
{
	for (uint32_t i = 0; i < c->n_voters; i++)
		if (c->voters[i] == id)
			return 1;
	for (uint32_t i = 0; i < c->n_learners; i++)
		if (c->learners[i] == id)
			return 1;
	return 0;
}

/*
 * Members send; so may a node whose addition is appended but not yet known
 * committed here (the leader that added it may already count on it). The
 * scan of the uncommitted suffix runs only for a sender that is not in the
 * configuration, and is bounded by uncommitted_entries_max.
 */
int rep_is_member_or_joining(const struct rep *r, uint64_t id)
{
	const struct rep_conf *c = &r->conf;
	if (c->n_voters + c->n_learners == 0 || conf_has(c, id))
		return 1;
	uint64_t last = log_last(&r->log);
	for (uint64_t i = r->log.commit + 1; i <= last; i++) {
		const struct rep_entry *e = log_at(&r->log, i);
		struct rep_conf_change cc;
		if (e->type == REP_ENTRY_CONF_CHANGE &&
		    rep_conf_change_decode(e->data, e->len, &cc) == 0 &&
		    cc.type == REP_CONF_ADD_LEARNER && cc.node_id == id)
			return 1;
	}
	return 0;
}

int rep_conf_encode(uint32_t type, uint64_t node_id, const void *ctx,
                    size_t ctx_len, uint8_t **out, size_t *len)
{
	LORA_ASSERT(ctx_len <= REP_CONF_CONTEXT_BYTES_MAX);
	uint8_t *p = lora_malloc(CONF_HEADER_BYTES + ctx_len);
	if (p == NULL)
		return LORA_ENOMEM;
	p[0] = 'L';
	p[1] = 'C';
	p[2] = 1;
	p[3] = (uint8_t)type;
	lora_put_be64(p + 4, node_id);
	p[12] = (uint8_t)(ctx_len >> 8);
	p[13] = (uint8_t)ctx_len;
	if (ctx_len > 0)
		memcpy(p + CONF_HEADER_BYTES, ctx, ctx_len);
	*out = p;
	*len = CONF_HEADER_BYTES + ctx_len;
	return 0;
}

int rep_conf_change_decode(const uint8_t *data, size_t len,
                           struct rep_conf_change *out)
{
	if (len < CONF_HEADER_BYTES || data[0] != 'L' || data[1] != 'C' ||
	    data[2] != 1 || data[3] > REP_CONF_REMOVE)
		return LORA_ECORRUPT;
	size_t ctx_len = ((size_t)data[12] << 8) | data[13];
	if (len != CONF_HEADER_BYTES + ctx_len)
		return LORA_ECORRUPT;
	out->type = data[3];
	out->node_id = lora_get_be64(data + 4);
	out->ctx = ctx_len ? data + CONF_HEADER_BYTES : NULL;
	out->ctx_len = ctx_len;
	if (out->node_id == REP_NONE)
		return LORA_ECORRUPT;
	return 0;
}

static void id_remove(uint64_t *ids, uint32_t *n, uint64_t id)
{
	for (uint32_t i = 0; i < *n; i++) {
		if (ids[i] == id) {
			ids[i] = ids[*n - 1];
			(*n)--;
			return;
		}
	}
}

/* Applies one encoded change to c; 0 when it changed c. */
int conf_apply(struct rep_conf *c, const uint8_t *data, size_t len)
{
	struct rep_conf_change cc;
	if (rep_conf_change_decode(data, len, &cc) != 0)
		return LORA_ECORRUPT;
	int member = conf_has(c, cc.node_id);
	uint32_t total = c->n_voters + c->n_learners;
	switch (cc.type) {
	case REP_CONF_ADD_LEARNER:
		if (member || total >= REP_MEMBERS_MAX)
			return LORA_EINVAL;
		c->learners[c->n_learners++] = cc.node_id;
		return 0;
	case REP_CONF_PROMOTE: {
		uint32_t before = c->n_learners;
		id_remove(c->learners, &c->n_learners, cc.node_id);
		if (before == c->n_learners)
			return LORA_EINVAL;
		c->voters[c->n_voters++] = cc.node_id;
		return 0;
	}
	default:
		if (!member)
			return LORA_EINVAL;
		if (c->n_voters == 1 && c->voters[0] == cc.node_id)
			return LORA_EINVAL; /* never leave zero voters */
		id_remove(c->voters, &c->n_voters, cc.node_id);
		id_remove(c->learners, &c->n_learners, cc.node_id);
		return 0;
	}
}

void rep_conf_to_meta(const struct rep_conf *c, struct rep_snapshot_meta *m)
{
	m->n_voters = c->n_voters;
	m->n_learners = c->n_learners;
	memcpy(m->voters, c->voters, sizeof(m->voters));
	memcpy(m->learners, c->learners, sizeof(m->learners));
}

void rep_conf_from_meta(struct rep_conf *c, const struct rep_snapshot_meta *m)
{
	LORA_ASSERT(m->n_voters <= REP_MEMBERS_MAX &&
	            m->n_learners <= REP_MEMBERS_MAX - m->n_voters);
	c->n_voters = m->n_voters;
	c->n_learners = m->n_learners;
	memcpy(c->voters, m->voters, sizeof(c->voters));
	memcpy(c->learners, m->learners, sizeof(c->learners));
}

int rep_conf_at(const struct rep *r, uint64_t idx, struct rep_conf *out)
{
	if (idx < r->log.snap_index || idx > r->log.commit)
		return LORA_EINVAL;
	rep_conf_from_meta(out, &r->snap_meta);
	for (uint64_t i = r->log.snap_index + 1; i <= idx; i++) {
		const struct rep_entry *e = log_at(&r->log, i);
		if (e->type == REP_ENTRY_CONF_CHANGE)
			(void)conf_apply(out, e->data, e->len);
	}
	return 0;
}

/* Gives every progress without an in-flight ring a free one. */
static void assign_rings(struct rep *r)
{
	for (uint32_t i = 0; i < r->n_prs; i++) {
		if (r->prs[i].infl != NULL)
			continue;
		for (uint32_t b = 0; b < REP_MEMBERS_MAX; b++) {
			uint64_t *ring =
			    r->infl_mem + (size_t)b * r->cfg.inflight_max;
			uint32_t k = 0;
			while (k < r->n_prs && r->prs[k].infl != ring)
				k++;
			if (k == r->n_prs) {
				r->prs[i].infl = ring;
				r->prs[i].infl_cap = r->cfg.inflight_max;
				break;
			}
		}
		LORA_ASSERT(r->prs[i].infl != NULL);
	}
}

/* Makes prs[] mirror conf: keeps known peers, adds new ones. */
void rep_sync_progress(struct rep *r)
{
	struct rep_progress keep[REP_MEMBERS_MAX];
	uint32_t n_old = r->n_prs;
	memcpy(keep, r->prs, n_old * sizeof(*keep));
	r->n_prs = 0;
	for (int pass = 0; pass < 2; pass++) {
		const uint64_t *ids = pass ? r->conf.learners : r->conf.voters;
		uint32_t n = pass ? r->conf.n_learners : r->conf.n_voters;
		for (uint32_t i = 0; i < n; i++) {
			struct rep_progress *pr = &r->prs[r->n_prs++];
			uint32_t j = 0;
			while (j < n_old && keep[j].id != ids[i])
				j++;
			if (j < n_old) {
				*pr = keep[j];
			} else {
				memset(pr, 0, sizeof(*pr));
				pr->id = ids[i];
				pr_reset(pr, log_last(&r->log) + 1);
				pr->recent_active = 1;
				/* not heard from yet: check-quorum must not
				 * count a member that never answered */
				pr->idle_ticks = r->cfg.election_ticks;
			}
			pr->voter = !pass;
		}
	}
	assign_rings(r);
}

/* Committed entries [from, to] just became known: adopt their changes. */
void rep_apply_conf_changes(struct rep *r, uint64_t from, uint64_t to)
{
	int changed = 0;
	for (uint64_t i = from; i <= to; i++) {
		const struct rep_entry *e = log_at(&r->log, i);
		if (e->type == REP_ENTRY_CONF_CHANGE &&
		    conf_apply(&r->conf, e->data, e->len) == 0)
			changed = 1;
	}
	if (!changed)
		return;
	rep_sync_progress(r);
	if (r->transferee != REP_NONE && !rep_is_voter(r, r->transferee))
		rep_abort_transfer(r);
	if (r->role == REP_LEADER && !rep_is_voter(r, r->id)) {
		/* Tell the others the removal committed before stepping
		 * down: until they learn it they still count this node as
		 * a voter, which holds the longest log and, no longer a
		 * voter itself, never campaigns (simulator seed 16906). */
		rep_bcast_append(r);
		rep_bcast_heartbeat(r, NULL, 0);
		rep_become_follower(r, r->term, REP_NONE);
		return;
	}
	if (r->role == REP_LEADER && rep_maybe_commit(r))
		rep_bcast_append(r);
}
