/* replication.c - AppendEntries, heartbeats and the commit rule. */
/*
 * Leader side: rep_send_append() builds one append for a follower from its
 * progress, bounded by msg_entries_max and msg_bytes_max, or falls back to
 * a snapshot when the entries before `next` were compacted. Proposals do
 * not send anything by themselves: the leader flushes appends when the
 * caller asks for a Ready, so every proposal made between two Readies
 * travels in one message per follower (batching for free).
 *
 * Follower side: rep_handle_append() implements Figure 2's receiver rules
 * 1-5, answering a mismatch with a hint (the last index whose term is <= the
 * leader's log_term at the probe point) so the leader skips a whole term of
 * conflicting entries per round trip instead of one entry.
 *
 * Commit: the leader commits index N only if a quorum of voters store N
 * and N's term is the current term (Figure 2, "Rules for servers"). Its own
 * copy counts only once durable (log.stable).
 */
#include <string.h>

#include "raft_int.h"

static uint64_t batch_end(const struct rep *r, uint64_t lo)
{
	uint64_t last = log_last(&r->log);
	uint64_t hi = lo + r->cfg.msg_entries_max - 1;
	if (hi > last)
		hi = last;
	size_t bytes = 0;
	for (uint64_t i = lo; i <= hi; i++) {
		bytes += log_at(&r->log, i)->len;
		if (bytes > r->cfg.msg_bytes_max && i > lo)
			return i - 1;
	}
	return hi;
}

int rep_send_append(struct rep *r, struct rep_progress *pr, int send_empty)
{
	LORA_ASSERT(r->role == REP_LEADER);
	if (pr->id == r->id || pr_is_paused(pr, r->cfg.inflight_max))
		return 0;
	uint64_t prev = pr->next - 1;
	uint64_t last = log_last(&r->log);
	if (prev < r->log.snap_index)
		return rep_send_snapshot(r, pr);
	if (pr->next > last && !send_empty)
		return 0;
	struct rep_msg m;
	rep_msg_init(&m, REP_MSG_APP, pr->id, r->term);
	m.index = prev;
	m.log_term = log_term(&r->log, prev);
	m.commit = r->log.commit;
	uint64_t hi = pr->next <= last ? batch_end(r, pr->next) : prev;
	m.n_entries = (size_t)(hi - prev);
	rep_send_ents(r, &m, pr->next, hi);
	if (hi > prev) {
		if (pr->state == REP_PROGRESS_REPLICATE) {
			pr->next = hi + 1;
			pr_infl_add(pr, hi, r->cfg.inflight_max);
		} else {
			pr->probe_sent = 1;
		}
	} else if (pr->state == REP_PROGRESS_PROBE) {
		pr->probe_sent = 1;
	}
	return 1;
}

void rep_bcast_append(struct rep *r)
{
	if (r->role != REP_LEADER)
		return;
	for (uint32_t i = 0; i < r->n_prs; i++)
		rep_send_append(r, &r->prs[i], 1);
}

void rep_bcast_heartbeat(struct rep *r, const uint8_t *ctx, uint32_t len)
{
	LORA_ASSERT(r->role == REP_LEADER && len <= REP_CONTEXT_BYTES_MAX);
	if (ctx == NULL && r->n_reads > 0) {
		/* Keep confirming the newest read round until it completes. */
		ctx = r->reads[r->n_reads - 1].ctx;
		len = r->reads[r->n_reads - 1].ctx_len;
	}
	for (uint32_t i = 0; i < r->n_prs; i++) {
		struct rep_progress *pr = &r->prs[i];
		if (pr->id == r->id)
			continue;
		struct rep_msg m;
		rep_msg_init(&m, REP_MSG_HEARTBEAT, pr->id, r->term);
		/* Never tell a follower to commit past what it stores. */
		m.commit =
		    pr->match < r->log.commit ? pr->match : r->log.commit;
		if (len > 0)
			memcpy(m.context, ctx, len);
		m.context_len = len;
		rep_send(r, &m);
	}
}

void rep_commit_to(struct rep *r, uint64_t idx)
{
	if (idx <= r->log.commit)
		return;
	LORA_ASSERT(idx <= log_last(&r->log));
	uint64_t old = r->log.commit;
	r->log.commit = idx;
	rep_apply_conf_changes(r, old + 1, idx);
}

static void sort_desc(uint64_t *a, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		uint64_t v = a[i];
		uint32_t j = i;
		for (; j > 0 && a[j - 1] < v; j--)
			a[j] = a[j - 1];
		a[j] = v;
	}
}

int rep_maybe_commit(struct rep *r)
{
	uint64_t m[REP_MEMBERS_MAX];
	uint32_t n = 0;
	for (uint32_t i = 0; i < r->n_prs; i++) {
		if (!r->prs[i].voter)
			continue;
		m[n++] =
		    r->prs[i].id == r->id ? r->log.stable : r->prs[i].match;
	}
	if (n == 0)
		return 0;
	sort_desc(m, n);
	uint64_t idx = m[rep_quorum(r) - 1];
	/* Only an entry of the current term commits by counting replicas. */
	if (idx <= r->log.commit || log_term(&r->log, idx) != r->term)
		return 0;
	int first_in_term = log_term(&r->log, r->log.commit) != r->term;
	rep_commit_to(r, idx);
	if (first_in_term)
		rep_reads_on_commit_in_term(r);
	return 1;
}

static void reply_append(struct rep *r, const struct rep_msg *m, uint64_t idx)
{
	struct rep_msg resp;
	rep_msg_init(&resp, REP_MSG_APP_RESP, m->from, r->term);
	resp.index = idx;
	rep_send(r, &resp);
}

static void reject_append(struct rep *r, const struct rep_msg *m)
{
	struct rep_msg resp;
	rep_msg_init(&resp, REP_MSG_APP_RESP, m->from, r->term);
	resp.index = m->index;
	resp.reject = 1;
	uint64_t hint =
	    m->index < log_last(&r->log) ? m->index : log_last(&r->log);
	hint = log_find_conflict_by_term(&r->log, hint, m->log_term);
	resp.reject_hint = hint;
	resp.hint_term = log_term(&r->log, hint);
	rep_send(r, &resp);
}

/* Receiver rules 2-5 of Figure 2's AppendEntries. */
int rep_handle_append(struct rep *r, const struct rep_msg *m)
{
	if (m->index < r->log.commit) {
		reply_append(r, m, r->log.commit);
		return 0;
	}
	if (!log_match(&r->log, m->index, m->log_term)) {
		reject_append(r, m);
		return 0;
	}
	size_t i = 0;
	for (; i < m->n_entries; i++) {
		const struct rep_entry *e = &m->entries[i];
		if (!log_match(&r->log, e->index, e->term))
			break;
	}
	if (i < m->n_entries) {
		uint64_t conflict = m->entries[i].index;
		if (conflict <= r->log.commit)
			return LORA_EINVAL; /* would rewrite a committed entry
			                     */
		if (conflict <= log_last(&r->log))
			log_truncate(&r->log, conflict);
		int rv = log_append(&r->log, m->entries + i, m->n_entries - i);
		if (rv != 0)
			return rv;
	}
	uint64_t last_new = m->index + m->n_entries;
	rep_commit_to(r, m->commit < last_new ? m->commit : last_new);
	reply_append(r, m, last_new);
	return 0;
}

static void append_rejected(struct rep *r, struct rep_progress *pr,
                            const struct rep_msg *m)
{
	uint64_t hint = m->reject_hint;
	if (m->hint_term > 0)
		hint = log_find_conflict_by_term(&r->log, hint, m->hint_term);
	if (pr_maybe_decr_to(pr, m->index, hint)) {
		if (pr->state == REP_PROGRESS_REPLICATE)
			pr_become_probe(pr);
		rep_send_append(r, pr, 1);
	}
}

void rep_handle_append_resp(struct rep *r, const struct rep_msg *m)
{
	struct rep_progress *pr = rep_pr(r, m->from);
	if (pr == NULL)
		return;
	if (m->reject) {
		append_rejected(r, pr, m);
		return;
	}
	if (m->index > log_last(&r->log))
		return; /* nonsense from a confused peer */
	int was_paused = pr_is_paused(pr, r->cfg.inflight_max);
	if (!pr_maybe_update(pr, m->index))
		return;
	if (pr->state == REP_PROGRESS_PROBE)
		pr_become_replicate(pr);
	else if (pr->state == REP_PROGRESS_SNAPSHOT &&
	         pr->match >= pr->pending_snapshot)
		pr_become_probe(pr);
	else if (pr->state == REP_PROGRESS_REPLICATE)
		pr_infl_free_to(pr, m->index);
	int committed = rep_maybe_commit(r);
	if (r->role != REP_LEADER)
		return; /* the commit removed us from the configuration */
	if (committed)
		rep_bcast_append(r);
	else if (was_paused)
		rep_send_append(r, pr, 0);
	while (rep_send_append(r, pr, 0))
		;
	if (m->from == r->transferee && pr->match == log_last(&r->log)) {
		struct rep_msg tn;
		rep_msg_init(&tn, REP_MSG_TIMEOUT_NOW, m->from, r->term);
		rep_send(r, &tn);
	}
}

void rep_handle_heartbeat(struct rep *r, const struct rep_msg *m)
{
	if (m->commit <= log_last(&r->log))
		rep_commit_to(r, m->commit);
	struct rep_msg resp;
	rep_msg_init(&resp, REP_MSG_HEARTBEAT_RESP, m->from, r->term);
	resp.context_len = m->context_len;
	memcpy(resp.context, m->context, m->context_len);
	rep_send(r, &resp);
}

void rep_handle_heartbeat_resp(struct rep *r, const struct rep_msg *m)
{
	struct rep_progress *pr = rep_pr(r, m->from);
	if (pr == NULL)
		return;
	pr->probe_sent = 0;
	if (pr->state == REP_PROGRESS_REPLICATE &&
	    pr->infl_count >= r->cfg.inflight_max)
		pr_infl_free_first(pr);
	if (pr->match < log_last(&r->log))
		rep_send_append(r, pr, 1);
	if (m->context_len > 0)
		rep_reads_on_heartbeat_resp(r, m);
}
