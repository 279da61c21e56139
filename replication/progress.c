/* progress.c - the leader's view of one follower: probe/replicate/snapshot. */
/*
 * As in etcd-io/raft, a follower is in one of three states:
 *   probe      the leader does not know where the logs match; it sends one
 *              append at a time (probe_sent) and walks `next` back on
 *              rejections using the follower's conflict hint;
 *   replicate  the logs match up to `match`; appends are pipelined, each
 *              recorded in a ring of in-flight last indexes bounded by the
 *              config's inflight_max, freed as acknowledgements arrive;
 *   snapshot   the entries the follower needs were compacted away: nothing
 *              is sent until the caller reports the snapshot's fate.
 */
#include <string.h>

#include "raft_int.h"

void pr_reset(struct rep_progress *pr, uint64_t next)
{
	uint64_t id = pr->id;
	int voter = pr->voter;
	uint64_t *infl = pr->infl;
	uint32_t infl_cap = pr->infl_cap;
	memset(pr, 0, sizeof(*pr));
	pr->infl_cap = infl_cap;
	pr->id = id;
	pr->voter = voter;
	pr->infl = infl;
	pr->next = next;
	pr->state = REP_PROGRESS_PROBE;
}

static void pr_infl_reset(struct rep_progress *pr)
{
	pr->infl_start = 0;
	pr->infl_count = 0;
}

void pr_become_probe(struct rep_progress *pr)
{
	if (pr->state == REP_PROGRESS_SNAPSHOT) {
		uint64_t ps = pr->pending_snapshot;
		pr->next = (pr->match + 1 > ps + 1) ? pr->match + 1 : ps + 1;
	} else {
		pr->next = pr->match + 1;
	}
	pr->state = REP_PROGRESS_PROBE;
	pr->probe_sent = 0;
	pr->pending_snapshot = 0;
	pr_infl_reset(pr);
}

void pr_become_replicate(struct rep_progress *pr)
{
	pr->state = REP_PROGRESS_REPLICATE;
	pr->next = pr->match + 1;
	pr->probe_sent = 0;
	pr->pending_snapshot = 0;
	pr_infl_reset(pr);
}

void pr_become_snapshot(struct rep_progress *pr, uint64_t snap_index)
{
	pr->state = REP_PROGRESS_SNAPSHOT;
	pr->pending_snapshot = snap_index;
	pr->probe_sent = 0;
	pr_infl_reset(pr);
}

/* An acknowledgement up to idx: 1 when it moved match forward. */
int pr_maybe_update(struct rep_progress *pr, uint64_t idx)
{
	int updated = 0;
	if (pr->match < idx) {
		pr->match = idx;
		updated = 1;
		pr->probe_sent = 0;
	}
	if (pr->next < idx + 1)
		pr->next = idx + 1;
	return updated;
}

/* A rejection of the append after `rejected`: 1 when next moved back. */
int pr_maybe_decr_to(struct rep_progress *pr, uint64_t rejected,
                     uint64_t match_hint)
{
	if (rejected >= pr->match && match_hint < pr->match) {
		/*
		 * The follower now holds less than it once acknowledged: it
		 * lost its log (its data directory was wiped). Left alone,
		 * `next` could never go below match + 1 and the follower would
		 * be stuck; start over from what it has instead. A rejection
		 * AT match counts too: a follower that had acknowledged
		 * everything and is probed from match + 1 rejects exactly
		 * there (test caught_up_follower_wiped_is_caught_up_again: with
		 * `>` the same probe went back and forth for ever). At worst a
		 * reordered stale rejection lowers match, which costs a probe,
		 * never safety: commit never goes back.
		 */
		pr->match = match_hint;
		pr_become_probe(pr);
		pr->next = match_hint + 1;
		return 1;
	}
	if (pr->state == REP_PROGRESS_REPLICATE) {
		if (rejected <= pr->match)
			return 0; /* stale */
		pr->next = pr->match + 1;
		return 1;
	}
	if (pr->next - 1 != rejected)
		return 0; /* not the probe we are waiting for */
	uint64_t next = rejected < match_hint + 1 ? rejected : match_hint + 1;
	if (next < pr->match + 1)
		next = pr->match + 1;
	pr->next = next;
	pr->probe_sent = 0;
	return 1;
}

int pr_is_paused(const struct rep_progress *pr, uint32_t inflight_max)
{
	switch (pr->state) {
	case REP_PROGRESS_PROBE:
		return pr->probe_sent;
	case REP_PROGRESS_REPLICATE:
		return pr->infl_count >= inflight_max;
	default:
		return 1;
	}
}

void pr_infl_add(struct rep_progress *pr, uint64_t last, uint32_t max)
{
	LORA_ASSERT(pr->infl_count < max && max <= pr->infl_cap);
	uint32_t slot = (pr->infl_start + pr->infl_count) % pr->infl_cap;
	pr->infl[slot] = last;
	pr->infl_count++;
}

void pr_infl_free_to(struct rep_progress *pr, uint64_t idx)
{
	while (pr->infl_count > 0 && pr->infl[pr->infl_start] <= idx) {
		pr->infl_start = (pr->infl_start + 1) % pr->infl_cap;
		pr->infl_count--;
	}
}

void pr_infl_free_first(struct rep_progress *pr)
{
	if (pr->infl_count == 0)
		return;
	pr->infl_start = (pr->infl_start + 1) % pr->infl_cap;
	pr->infl_count--;
}
