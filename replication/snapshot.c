/* snapshot.c - log compaction and snapshot transfer to lagging followers. */
/*
 * The caller checkpoints its applied state and calls rep_compact(index);
 * the core then remembers only (index, term, configuration at index) of
 * what it dropped. A follower whose `next` falls at or before that point
 * is moved to the snapshot state and sent a REP_MSG_SNAPSHOT carrying the
 * metadata; the caller streams the checkpoint and reports the outcome with
 * rep_report_snapshot(). A follower accepts a snapshot only when it is
 * ahead of its commit index and its log does not already contain the
 * snapshot's last entry; accepting drops its whole log.
 */
#include <string.h>

#include "raft_int.h"

int rep_compact(struct rep *r, uint64_t index)
{
	if (index <= r->log.snap_index || index > r->log.applied ||
	    index > r->log.stable)
		return LORA_EINVAL;
	struct rep_conf c;
	int rv = rep_conf_at(r, index, &c);
	if (rv != 0)
		return rv;
	r->snap_meta.index = index;
	r->snap_meta.term = log_term(&r->log, index);
	rep_conf_to_meta(&c, &r->snap_meta);
	log_compact(&r->log, index);
	return 0;
}

int rep_send_snapshot(struct rep *r, struct rep_progress *pr)
{
	LORA_ASSERT(r->role == REP_LEADER && r->log.snap_index > 0);
	if (!pr->recent_active)
		return 0; /* do not stream a checkpoint to a node that is down
		           */
	struct rep_msg m;
	rep_msg_init(&m, REP_MSG_SNAPSHOT, pr->id, r->term);
	m.snapshot = r->snap_meta;
	m.commit = r->log.commit;
	pr_become_snapshot(pr, r->snap_meta.index);
	rep_send(r, &m);
	return 1;
}

static void ack(struct rep *r, const struct rep_msg *m, uint64_t idx)
{
	struct rep_msg resp;
	rep_msg_init(&resp, REP_MSG_APP_RESP, m->from, r->term);
	resp.index = idx;
	rep_send(r, &resp);
}

void rep_handle_snapshot(struct rep *r, const struct rep_msg *m)
{
	const struct rep_snapshot_meta *s = &m->snapshot;
	if (s->index <= r->log.commit) {
		ack(r, m, r->log.commit);
		return;
	}
	if (s->term == 0 || s->term > m->term || s->n_voters == 0)
		return; /* malformed: ignore */
	if (log_match(&r->log, s->index, s->term)) {
		/* We hold the entry already: just fast-forward commit. */
		rep_commit_to(r, s->index);
		ack(r, m, r->log.commit);
		return;
	}
	log_reset(&r->log, s->index, s->term);
	r->snap_meta = *s;
	rep_conf_from_meta(&r->conf, s);
	rep_sync_progress(r);
	r->pending_snap = *s;
	r->has_pending_snap = 1;
	ack(r, m, s->index);
}

void rep_report_snapshot(struct rep *r, uint64_t id, int ok)
{
	struct rep_progress *pr = rep_pr(r, id);
	if (r->role != REP_LEADER || pr == NULL ||
	    pr->state != REP_PROGRESS_SNAPSHOT)
		return;
	if (!ok)
		pr->pending_snapshot = 0;
	pr_become_probe(pr);
	/* Wait for the follower's answer (or a heartbeat) before probing. */
	pr->probe_sent = 1;
}

void rep_compaction_meta(const struct rep *r, struct rep_snapshot_meta *out)
{
	*out = r->snap_meta;
	out->index = r->log.snap_index;
	out->term = r->log.snap_term;
}
