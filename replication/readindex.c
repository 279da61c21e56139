/* readindex.c - linearizable reads without writing to the log (ReadIndex). */
/*
 * Thesis section 6.4: the leader notes its commit index when a read
 * arrives, confirms it is still leader by a heartbeat round acknowledged by
 * a quorum, and then the read may be served once the state machine has
 * applied that index. A new leader does not know the latest commit index
 * until it commits an entry of its own term, so reads wait for that first
 * (`waiting`). Rounds are FIFO: a quorum acknowledging the heartbeat sent
 * for request i confirms every request queued before it too. Followers
 * forward requests to the leader and get the index back. Pending requests
 * are dropped on any role change: the caller times out and retries.
 */
#include <string.h>

#include "raft_int.h"

/* Grows *arr (elements of `size` bytes) to hold need; LORA_ELIMIT past
 * REP_READS_PENDING_MAX. */
static int grow(void **arr, uint32_t *cap, uint32_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	if (need > REP_READS_PENDING_MAX)
		return LORA_ELIMIT;
	uint32_t n = *cap ? *cap * 2 : 8;
	if (n > REP_READS_PENDING_MAX)
		n = REP_READS_PENDING_MAX;
	void *p = lora_realloc(*arr, n * size);
	if (p == NULL)
		return LORA_ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

void rep_reads_clear(struct rep *r)
{
	r->n_reads = 0;
	r->n_waiting = 0;
}

static void deliver(struct rep *r, uint64_t from, uint64_t index,
                    const uint8_t *ctx, uint32_t len)
{
	if (from == r->id) {
		if (grow((void **)&r->ready_reads, &r->cap_ready_reads,
		         r->n_ready_reads + 1, sizeof(*r->ready_reads)) != 0)
			return; /* lost; the caller times out */
		struct rep_read_state *rs = &r->ready_reads[r->n_ready_reads++];
		rs->index = index;
		rs->ctx_len = len;
		memcpy(rs->ctx, ctx, len);
		return;
	}
	struct rep_msg m;
	rep_msg_init(&m, REP_MSG_READ_INDEX_RESP, from, r->term);
	m.index = index;
	m.context_len = len;
	memcpy(m.context, ctx, len);
	rep_send(r, &m);
}

static int leader_read(struct rep *r, uint64_t from, const uint8_t *ctx,
                       uint32_t len)
{
	LORA_ASSERT(r->role == REP_LEADER);
	if (log_term(&r->log, r->log.commit) != r->term) {
		int rv = grow((void **)&r->waiting, &r->cap_waiting,
		              r->n_waiting + 1, sizeof(*r->waiting));
		if (rv != 0)
			return rv;
		struct rep_read_req *w = &r->waiting[r->n_waiting++];
		w->from = from;
		w->ctx_len = len;
		memcpy(w->ctx, ctx, len);
		return 0;
	}
	int self = rep_pr_slot(r, r->id);
	uint32_t self_bit = self >= 0 ? 1u << self : 0;
	if (rep_mask_quorum(r, self_bit)) {
		deliver(r, from, r->log.commit, ctx, len);
		return 0;
	}
	int rv = grow((void **)&r->reads, &r->cap_reads, r->n_reads + 1,
	              sizeof(*r->reads));
	if (rv != 0)
		return rv;
	struct rep_read_req *q = &r->reads[r->n_reads++];
	q->from = from;
	q->index = r->log.commit;
	q->acks = self_bit;
	q->ctx_len = len;
	memcpy(q->ctx, ctx, len);
	rep_bcast_heartbeat(r, ctx, len);
	return 0;
}

int rep_read_index(struct rep *r, const void *ctx, size_t ctx_len)
{
	if (ctx_len == 0 || ctx_len > REP_CONTEXT_BYTES_MAX || ctx == NULL)
		return LORA_EINVAL;
	if (r->role == REP_LEADER)
		return leader_read(r, r->id, ctx, (uint32_t)ctx_len);
	if (r->leader == REP_NONE)
		return LORA_ENOTLEADER;
	struct rep_msg m;
	rep_msg_init(&m, REP_MSG_READ_INDEX, r->leader, 0);
	m.context_len = (uint32_t)ctx_len;
	memcpy(m.context, ctx, ctx_len);
	rep_send(r, &m);
	return 0;
}

void rep_reads_on_commit_in_term(struct rep *r)
{
	uint32_t n = r->n_waiting;
	r->n_waiting = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct rep_read_req w = r->waiting[i];
		(void)leader_read(r, w.from, w.ctx, w.ctx_len);
	}
}

void rep_reads_on_heartbeat_resp(struct rep *r, const struct rep_msg *m)
{
	int slot = rep_pr_slot(r, m->from);
	if (slot < 0)
		return;
	uint32_t i = 0;
	while (i < r->n_reads &&
	       (r->reads[i].ctx_len != m->context_len ||
	        memcmp(r->reads[i].ctx, m->context, m->context_len) != 0))
		i++;
	if (i == r->n_reads)
		return;
	r->reads[i].acks |= 1u << slot;
	if (!rep_mask_quorum(r, r->reads[i].acks))
		return;
	for (uint32_t k = 0; k <= i; k++)
		deliver(r, r->reads[k].from, r->reads[k].index, r->reads[k].ctx,
		        r->reads[k].ctx_len);
	r->n_reads -= i + 1;
	memmove(r->reads, r->reads + i + 1, r->n_reads * sizeof(*r->reads));
}

void rep_handle_read_index(struct rep *r, const struct rep_msg *m)
{
	if (m->context_len == 0)
		return;
	(void)leader_read(r, m->from, m->context, m->context_len);
}

void rep_handle_read_index_resp(struct rep *r, const struct rep_msg *m)
{
	if (m->context_len == 0 ||
	    grow((void **)&r->ready_reads, &r->cap_ready_reads,
	         r->n_ready_reads + 1, sizeof(*r->ready_reads)) != 0)
		return;
	struct rep_read_state *rs = &r->ready_reads[r->n_ready_reads++];
	rs->index = m->index;
	rs->ctx_len = m->context_len;
	memcpy(rs->ctx, m->context, m->context_len);
}
