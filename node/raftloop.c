/*
 * raftloop.c - the thread that owns the Raft core and the log store.
 *
 * Everything reaches the core through the inbox: peer messages from the
 * transport thread, and calls (propose, conf change, read index, transfer,
 * compact, snapshot reports) from other threads, each answered through a
 * struct node_call. The loop follows raft.h's order: install snapshot,
 * persist entries + hard state with sync, send, hand committed entries to
 * the apply loop, serve reads, advance.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "node_int.h"
#include "peerfwd.h"
#include "thread.h"

#define NODE_PROMOTE_LAG_ENTRIES                                               \
	64 /* learner this close to commit: promote                            \
	    */
/* learners checked every 5 heartbeats: 250 ms by default (10 heartbeats
 * before the tick became half a heartbeat) */
#define NODE_PROMOTE_EVERY_TICKS (5 * NODE_TICKS_PER_HEARTBEAT)
#define NODE_COMMIT_PERSIST_MS   1000 /* commit-only hard state writes */
#define NODE_PERSIST_RETRY_MS    100  /* after a failed synced write */
#define NODE_READY_ROUNDS_MAX    64   /* Ready rounds per loop turn */
/* A ReadIndex waits this many election timeouts for a leader to ask. */
#define NODE_READ_NO_LEADER_ELECTIONS 3

enum item_kind {
	IT_MSG,
	IT_PROPOSE,
	IT_CONF,
	IT_READ,
	IT_TRANSFER,
	IT_COMPACT,
	IT_SNAP_REPORT,
	IT_SNAP_STAGED,
};

struct node_inbox_item {
	struct nq_link link; /* first: the inbox's link is the item */
	int kind;
	struct rep_msg msg;
	Lora__RaftMessage *pb;
	struct rep_entry *ents;
	const uint8_t *data; /* propose: borrowed, caller waits */
	size_t len;
	uint32_t conf_type;
	uint64_t id;
	char ctx[REP_CONF_CONTEXT_BYTES_MAX];
	uint64_t index;
	uint64_t expect_term; /* propose: only while leading in this term */
	int ok;
	struct node_call *call;
};

struct pending_read {
	uint64_t ctx_id;
	uint64_t start_ms;
	uint64_t asked_ms; /* last handed to the core; 0: no leader then */
	struct node_call *call;
};

struct node_raft_priv {
	struct pending_read reads[REP_READS_PENDING_MAX];
	size_t n_reads;
	uint64_t next_read_id;
	uint64_t ticks;
	uint32_t last_role;
	uint64_t last_leader;
	int reask; /* the leader changed: ask it for the pending reads */
	uint64_t lead_term; /* the term this node last led in */
	/* Snapshot senders' reports (node_raft_snapshot_report), one slot
	 * per peer (to 0: free), under reports_mu: the one thing the loop's
	 * private state shares with other threads. A report lost here would
	 * leave the peer in the core's snapshot state for good, so it takes
	 * neither an allocation nor inbox room. */
	pthread_mutex_t reports_mu;
	struct snap_report {
		uint64_t to;
		int ok;
	} reports[NODE_PEERS_MAX];
	atomic_ulong reports_handled; /* node_raft_snapshot_reports_handled */
};

struct node_raft_priv *node_raft_priv_new(void)
{
	struct node_raft_priv *p = lora_calloc(1, sizeof *p);
	if (p) {
		p->last_role = REP_FOLLOWER;
		/* default attributes: cannot fail on Linux, needs no destroy */
		pthread_mutex_init(&p->reports_mu, NULL);
	}
	return p;
}

/* ---- calls ------------------------------------------------------------------
 */

void node_call_init(struct node_call *c)
{
	memset(c, 0, sizeof *c);
	pthread_mutex_init(&c->mu, NULL);
	/* CLOCK_MONOTONIC: a wall clock change cannot stretch a timed wait;
	 * with a default attribute this does not fail on Linux */
	int rc = node_cond_init(&c->cond);
	LORA_ASSERT(rc == 0);
}

void node_call_destroy(struct node_call *c)
{
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cond);
}

void node_call_finish(struct node_call *c, int rc, uint64_t index,
                      uint64_t term)
{
	pthread_mutex_lock(&c->mu);
	c->rc = rc;
	c->index = index;
	c->term = term;
	c->done = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->mu);
}

int node_call_wait(struct node_call *c, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0
	                        ? NODE_DEADLINE_NONE
	                        : lora_now_ms() + (uint64_t)timeout_ms;
	pthread_mutex_lock(&c->mu);
	int rc = 0;
	while (!c->done && rc == 0)
		rc = node_cond_wait_until(&c->cond, &c->mu, deadline);
	if (c->done)
		rc = c->rc;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* ---- inbox
 * ------------------------------------------------------------------- */

static void (*_Atomic post_hook)(void); /* node_raft_set_post_hook */

void node_raft_set_post_hook(void (*hook)(void))
{
	atomic_store(&post_hook, hook);
}

/* wake: signal the loop; a message that changes nothing at once may wait
 * for the loop's next turn (at the latest its next tick). The look at
 * stopping only saves a push: a push after the loop's end is refused by
 * the closed inbox. */
static int inbox_post_wake(struct lnode *n, struct node_inbox_item *it,
                           int wake)
{
	if (atomic_load(&n->stopping))
		return LORA_ECLOSED;
	void (*hook)(void) =
	    atomic_load_explicit(&post_hook, memory_order_relaxed);
	if (hook)
		hook();
	return wake ? nq_push(&n->raft->inbox, &it->link, NQ_NOW)
	            : nq_push_lazy(&n->raft->inbox, &it->link);
}

static int inbox_post(struct lnode *n, struct node_inbox_item *it)
{
	return inbox_post_wake(n, it, 1);
}

/*
 * An accepting append answer at or below the commit index the loop
 * published cannot commit anything: the quorum was reached by an earlier
 * one (with three nodes, the second follower's answer). Waking the raft
 * loop for it costs a context switch per entry, so it waits for the next
 * turn; it only updates that follower's progress.
 */
static int urgent(struct lnode *n, const struct rep_msg *m)
{
	/* index 0: a node telling a deposed leader about a newer term */
	return m->type != REP_MSG_APP_RESP || m->reject || m->index == 0 ||
	       m->index > atomic_load(&n->commit);
}

static void item_free(struct node_inbox_item *it)
{
	node_raft_msg_release(it->pb, it->ents);
	lora_free(it);
}

void node_raft_on_frame(void *arg, int kind, uint64_t from,
                        const uint8_t *payload, size_t len)
{
	struct lnode *n = arg;
	if (kind == NODE_FRAME_INFO) {
		node_gossip_on_frame(n, from, payload, len);
		return;
	}
	if (kind == NODE_FRAME_SNAPSHOT) {
		node_snapshot_on_chunk(n, from, payload, len);
		return;
	}
	if (kind == NODE_FRAME_FWD || kind == NODE_FRAME_FWD_ANS) {
		node_pfwd_on_frame(n, kind, from, payload, len);
		return;
	}
	if (kind != NODE_FRAME_RAFT)
		return;
	struct node_inbox_item *it = lora_calloc(1, sizeof *it);
	if (it == NULL)
		return;
	it->kind = IT_MSG;
	if (node_raft_msg_unpack(payload, len, &it->msg, &it->pb, &it->ents) !=
	    0) {
		LOG_WARN("dropping undecodable raft message from %llu",
		         (unsigned long long)from);
		lora_free(it);
		return;
	}
	if (it->msg.from != from) {
		/* A frame names its sender, and so does the message inside:
		 * a peer speaking for another node is refused. */
		node_peer_refused(from, "raft-sender",
		                  "%s message claims to come from node %llu",
		                  rep_msg_type_name(it->msg.type),
		                  (unsigned long long)it->msg.from);
		item_free(it);
		return;
	}
	if (it->msg.to != n->cfg.id ||
	    inbox_post_wake(n, it, urgent(n, &it->msg)) != 0)
		item_free(it);
}

/* rep_step refused m (LORA_EINVAL): log why, once per peer and kind. */
static void step_refused(struct lnode *n, const struct rep_msg *m)
{
	uint32_t why = rep_refusal(n->raft->rep);
	char kind[32];
	snprintf(kind, sizeof kind, "raft-%s", rep_refusal_name(why));
	if (why == REP_REFUSE_TERM)
		node_peer_refused(m->from, kind,
		                  "%s with term %llu, beyond the largest "
		                  "accepted (%llu)",
		                  rep_msg_type_name(m->type),
		                  (unsigned long long)m->term,
		                  (unsigned long long)REP_TERM_MAX);
	else if (why == REP_REFUSE_NOT_MEMBER)
		node_peer_refused(m->from, kind,
		                  "%s (term %llu) from a node that is not a "
		                  "member of the configuration",
		                  rep_msg_type_name(m->type),
		                  (unsigned long long)m->term);
	else
		node_peer_refused(m->from, kind, "malformed %s (term %llu)",
		                  rep_msg_type_name(m->type),
		                  (unsigned long long)m->term);
}

/* Posts it and waits for the raft loop's answer. */
static int call_raft(struct lnode *n, struct node_inbox_item *it,
                     struct node_call *call)
{
	node_call_init(call);
	it->call = call;
	int rc = inbox_post(n, it);
	if (rc) {
		node_call_destroy(call);
		/* closed: the node is stopping, the call was not handled */
		return rc == LORA_ECLOSED ? LORA_EUNAVAILABLE : rc;
	}
	rc = node_call_wait(call, -1);
	node_call_destroy(call);
	return rc;
}

/* Raft loop only: whether this node leads in term `term` right now. */
static int leads_in(struct lnode *n, uint64_t term)
{
	struct rep_status st;
	rep_status(n->raft->rep, &st);
	return st.role == REP_LEADER && st.term == term;
}

int node_raft_propose(struct lnode *n, const uint8_t *data, size_t len,
                      uint64_t expect_term, uint64_t *term, uint64_t *index,
                      uint64_t *leader)
{
	struct node_inbox_item it = {.kind = IT_PROPOSE,
	                             .data = data,
	                             .len = len,
	                             .expect_term = expect_term};
	struct node_call call;
	int rc = call_raft(n, &it, &call);
	*term = call.term;
	*index = call.index;
	*leader = call.leader;
	return rc;
}

int node_raft_conf_change(struct lnode *n, uint32_t type, uint64_t id,
                          const char *ctx, uint64_t *index, char *errmsg)
{
	struct node_inbox_item it = {
	    .kind = IT_CONF, .conf_type = type, .id = id};
	if (ctx)
		snprintf(it.ctx, sizeof it.ctx, "%s", ctx);
	struct node_call call;
	int rc = call_raft(n, &it, &call);
	*index = call.index;
	if (rc)
		lora_errf(rc, errmsg, "%s",
		          call.errmsg[0] ? call.errmsg : lora_strerror(rc));
	return rc;
}

int node_raft_read_index(struct lnode *n, uint64_t *index, int timeout_ms)
{
	(void)timeout_ms; /* the raft loop expires reads itself */
	struct node_inbox_item it = {.kind = IT_READ};
	struct node_call call;
	int rc = call_raft(n, &it, &call);
	*index = call.index;
	return rc;
}

int node_raft_transfer(struct lnode *n, uint64_t to, char *errmsg)
{
	struct node_inbox_item it = {.kind = IT_TRANSFER, .id = to};
	struct node_call call;
	int rc = call_raft(n, &it, &call);
	if (rc)
		lora_errf(rc, errmsg, "%s",
		          call.errmsg[0] ? call.errmsg : lora_strerror(rc));
	return rc;
}

/* Fire-and-forget items are heap-allocated and freed by the loop: 0, or
 * an error when it was dropped (no memory, the inbox full or closed). */
static int post_async(struct lnode *n, int kind, uint64_t id, uint64_t index,
                      int ok, const struct rep_msg *msg)
{
	struct node_inbox_item *it = lora_calloc(1, sizeof *it);
	if (it == NULL)
		return LORA_ENOMEM;
	it->kind = kind;
	it->id = id;
	it->index = index;
	it->ok = ok;
	if (msg)
		it->msg = *msg;
	int rc = inbox_post(n, it);
	if (rc != 0)
		lora_free(it);
	return rc;
}

void node_raft_compact(struct lnode *n, uint64_t ckpt_index)
{
	/* dropped: the next checkpoint compacts */
	(void)post_async(n, IT_COMPACT, 0, ckpt_index, 0, NULL);
}

/* Keeps (to, ok) in the table: 1, or 0 when it is full of other peers'
 * reports (ids of removed members: the table has a slot per member). */
static int report_keep(struct node_raft_priv *p, uint64_t to, int ok)
{
	int slot = -1;
	pthread_mutex_lock(&p->reports_mu);
	for (int i = 0; i < NODE_PEERS_MAX; i++) {
		if (p->reports[i].to == to) {
			slot = i; /* a newer report for to replaces the older */
			break;
		}
		if (p->reports[i].to == 0 && slot < 0)
			slot = i;
	}
	if (slot >= 0)
		p->reports[slot] = (struct snap_report){to, ok};
	pthread_mutex_unlock(&p->reports_mu);
	return slot >= 0;
}

void node_raft_snapshot_report(struct lnode *n, uint64_t to, int ok)
{
	LORA_ASSERT(to != 0);
	if (report_keep(n->raft->priv, to, ok)) {
		nq_kick(&n->raft->inbox); /* the loop's next turn takes it */
		return;
	}
	LOG_WARN("snapshot report for node %llu: the report table is full; "
	         "posting it instead",
	         (unsigned long long)to);
	int rc = post_async(n, IT_SNAP_REPORT, to, 0, ok, NULL);
	if (rc != 0 && rc != LORA_ECLOSED)
		LOG_ERROR("snapshot report for node %llu lost (%s): the "
		          "leader sends it no entries until it leads again",
		          (unsigned long long)to, lora_strerror(rc));
}

uint64_t node_raft_snapshot_reports_handled(struct lnode *n)
{
	return atomic_load(&n->raft->priv->reports_handled);
}

/* Raft loop: hands the table's reports to the core and empties it. */
static void reports_take(struct lnode *n)
{
	struct node_raft_priv *p = n->raft->priv;
	struct snap_report got[NODE_PEERS_MAX];
	int k = 0;
	pthread_mutex_lock(&p->reports_mu);
	for (int i = 0; i < NODE_PEERS_MAX; i++)
		if (p->reports[i].to != 0) {
			got[k++] = p->reports[i];
			p->reports[i].to = 0;
		}
	pthread_mutex_unlock(&p->reports_mu);
	for (int i = 0; i < k; i++) {
		rep_report_snapshot(n->raft->rep, got[i].to, got[i].ok);
		atomic_fetch_add(&p->reports_handled, 1);
	}
}

void node_raft_snapshot_staged(struct lnode *n,
                               const struct rep_snapshot_meta *meta,
                               uint64_t from, uint64_t term)
{
	struct rep_msg m;
	memset(&m, 0, sizeof m);
	m.type = REP_MSG_SNAPSHOT;
	m.from = from;
	m.to = n->cfg.id;
	m.term = term;
	m.snapshot = *meta;
	/* dropped: this node's log stays behind the leader's compaction
	 * point, so the leader's next probe is refused and it sends the
	 * snapshot again */
	(void)post_async(n, IT_SNAP_STAGED, from, meta->index, 1, &m);
}

/* ---- handling items
 * ----------------------------------------------------------- */

static void handle_read(struct lnode *n, struct node_inbox_item *it)
{
	struct node_raft_priv *p = n->raft->priv;
	if (p->n_reads >= REP_READS_PENDING_MAX) {
		node_call_finish(it->call, LORA_ELIMIT, 0, 0);
		return;
	}
	uint8_t ctx[8];
	uint64_t id = ++p->next_read_id;
	lora_put_be64(ctx, id);
	int rc = rep_read_index(n->raft->rep, ctx, sizeof ctx);
	if (rc && rc != LORA_ENOTLEADER) {
		node_call_finish(it->call, rc, 0, 0);
		return;
	}
	/* no leader known (an election): asked again once there is one,
	 * given up after NODE_READ_NO_LEADER_ELECTIONS timeouts */
	uint64_t now = lora_now_ms();
	p->reads[p->n_reads++] =
	    (struct pending_read){id, now, rc ? 0 : now, it->call};
}

static void handle_conf(struct lnode *n, struct node_inbox_item *it)
{
	uint64_t term = 0, index = 0, leader = 0;
	int rc = rep_propose_conf_change(n->raft->rep, it->conf_type, it->id,
	                                 it->ctx, strlen(it->ctx), &term,
	                                 &index, &leader);
	it->call->leader = leader;
	node_call_finish(it->call, rc, index, term);
}

static void handle_compact(struct lnode *n, uint64_t ckpt_index)
{
	uint64_t keep = n->cfg.log_keep_entries;
	uint64_t target = ckpt_index > keep ? ckpt_index - keep : 0;
	if (target <= n->raft->snap_meta.index)
		return;
	uint64_t term = 0;
	if (sto_log_term(n->raft->log, target, &term) != 0)
		return;
	if (rep_compact(n->raft->rep, target) != 0)
		return;
	char err[LORA_ERRMSG_BYTES];
	if (sto_log_compact(n->raft->log, target, term, err) != 0) {
		LOG_ERROR("compact log at %llu: %s", (unsigned long long)target,
		          err);
		return;
	}
	struct rep_status st;
	rep_status(n->raft->rep, &st);
	struct rep_snapshot_meta m = {.index = target, .term = term};
	for (uint32_t i = 0; i < st.n_peers; i++) {
		if (st.peers[i].voter)
			m.voters[m.n_voters++] = st.peers[i].id;
		else
			m.learners[m.n_learners++] = st.peers[i].id;
	}
	n->raft->snap_meta = m;
	node_meta_save(n, &m);
	LOG_INFO("log compacted up to %llu (checkpoint %llu)",
	         (unsigned long long)target, (unsigned long long)ckpt_index);
}

static void handle_item(struct lnode *n, struct node_inbox_item *it)
{
	uint64_t term = 0, index = 0, leader = 0;
	int rc;
	switch (it->kind) {
	case IT_MSG:
		if (it->msg.type == REP_MSG_APP ||
		    it->msg.type == REP_MSG_HEARTBEAT) {
			atomic_store(&n->leader_heard_id, it->msg.from);
			atomic_store(&n->leader_heard_ms, lora_now_ms());
		}
		/* fall through */
	case IT_SNAP_STAGED:
		rc = rep_step(n->raft->rep, &it->msg);
		if (rc == LORA_EINVAL)
			step_refused(n, &it->msg);
		else if (rc)
			LOG_WARN("step %s: %s", rep_msg_type_name(it->msg.type),
			         lora_strerror(rc));
		item_free(it);
		return;
	case IT_PROPOSE:
		if (it->expect_term && !leads_in(n, it->expect_term)) {
			node_call_finish(it->call, LORA_EUNAVAILABLE, 0, 0);
			return;
		}
		rc = rep_propose(n->raft->rep, it->data, it->len, &term, &index,
		                 &leader);
		it->call->leader = leader;
		node_call_finish(it->call, rc, index, term);
		return;
	case IT_CONF:
		handle_conf(n, it);
		return;
	case IT_READ:
		handle_read(n, it);
		return;
	case IT_TRANSFER:
		rc = rep_transfer_leader(n->raft->rep, it->id);
		node_call_finish(it->call, rc, 0, 0);
		return;
	case IT_COMPACT:
		handle_compact(n, it->index);
		break;
	case IT_SNAP_REPORT:
		rep_report_snapshot(n->raft->rep, it->id, it->ok);
		atomic_fetch_add(&n->raft->priv->reports_handled, 1);
		break;
	}
	lora_free(it);
}

/* ---- ready
 * -------------------------------------------------------------------- */

/* appends stop below this much free disk */
#define NODE_PERSIST_RESERVE_BYTES (16u << 20)

/*
 * The disk guard: appends stop (as if the disk were full, LORA_ENOSPC)
 * while less than NODE_PERSIST_RESERVE_BYTES plus the batch is free, so
 * RocksDB itself seldom meets a full disk (its recovery from one is
 * fragile: see persist_backoff). 0 when there is room.
 */
static int persist_room(struct lnode *n, uint64_t bytes, char *err)
{
	return node_space_check(&n->raft->log_space, n->log_dir,
	                        NODE_PERSIST_RESERVE_BYTES, bytes, err);
}

/*
 * While a synced write fails, callers waiting on the raft loop (writes,
 * membership changes, ReadIndex, transfers) would wait until it succeeds:
 * they are answered now instead. A proposal not yet handed to the core was
 * not executed: it gets `code` (LORA_ENOSPC: HTTP 507) so the client knows
 * why and may retry; the rest, and ReadIndex requests the core holds, get
 * LORA_UNAVAILABLE. Peer messages stay.
 */
static int is_peer_msg(struct nq_link *l, void *arg)
{
	(void)arg;
	return ((struct node_inbox_item *)l)->call == NULL;
}

static void persist_fail_calls(struct lnode *n, int code)
{
	size_t cnt;
	struct node_inbox_item *failed = (struct node_inbox_item *)nq_remove_if(
	    &n->raft->inbox, is_peer_msg, NULL, &cnt);
	for (struct node_inbox_item *it = failed, *nx; it; it = nx) {
		/* caller-owned: gone once finished */
		nx = (struct node_inbox_item *)it->link.next;
		int rc = it->kind == IT_PROPOSE || it->kind == IT_CONF
		             ? code
		             : LORA_EUNAVAILABLE;
		snprintf(it->call->errmsg, sizeof it->call->errmsg,
		         "the raft log write on this node fails (%s): not "
		         "executed; retry, or send it to another node",
		         lora_strerror(code));
		node_call_finish(it->call, rc, 0, 0);
	}
	struct node_raft_priv *p = n->raft->priv; /* ReadIndex already asked */
	for (size_t j = 0; j < p->n_reads; j++)
		node_call_finish(p->reads[j].call, LORA_EUNAVAILABLE, 0, 0);
	p->n_reads = 0;
}

/*
 * After a failed synced write (disk full, I/O error): waits and lets the
 * caller retry, logging once a second. The promise a vote or an ack makes
 * cannot be kept without the write, so Raft stalls on this node (others
 * elect a leader) while it keeps serving local reads; calls waiting on the
 * loop are answered with an error (persist_fail_calls). A RocksDB write
 * that failed leaves the log's WAL writer unusable (later writes fail
 * again, or abort where RocksDB keeps its assertions), so the log is
 * reopened before the retry. -1 when stopping.
 */
static int persist_backoff(struct lnode *n, const char *what, int code,
                           const char *err, int reopen, uint64_t *logged_ms)
{
	uint64_t now = lora_now_ms();
	if (now - *logged_ms >= 1000) {
		LOG_ERROR("%s failed: %s; retrying (raft stalls on this node, "
		          "local reads go on)",
		          what, err);
		*logged_ms = now;
	}
	for (;;) {
		persist_fail_calls(n, code);
		if (atomic_load(&n->stopping))
			return -1;
		/* a failed synced write (disk full, I/O error): nothing
		 * signals that it would now succeed, so a timed pause */
		usleep(NODE_PERSIST_RETRY_MS * 1000);
		if (!reopen)
			return 0;
		char oerr[LORA_ERRMSG_BYTES];
		if (persist_room(n, 0, oerr) != 0)
			continue; /* reopening writes too: wait for room */
		pthread_rwlock_wrlock(&n->raft->log_rw);
		sto_log_close(n->raft->log);
		n->raft->log = NULL;
		int orc = sto_log_open(n->log_dir, &n->raft->log, oerr);
		pthread_rwlock_unlock(&n->raft->log_rw);
		if (orc == 0)
			return 0;
		if (lora_now_ms() - *logged_ms >= 1000) {
			LOG_ERROR("reopening the raft log failed: %s", oerr);
			*logged_ms = lora_now_ms();
		}
	}
}

#ifdef LORA_TEST_HOOKS
/*
 * Test hook (LORA_TEST_HOOKS), LORA_TEST_PERSIST_CRASH=k: the process
 * _exit()s with STO_INSTALL_CRASH_EXIT right after the raft log write
 * that carries the entries of a Ready starting a new term or vote (a
 * single node electing itself: its no-op entry), as a kill -9 landing
 * there would. k = 1: that write as it is made (entries and hard state
 * together); k = 2: the entries alone, as versions before sto_log_save
 * left them when killed before their second write (the hard state).
 */
static int persist_crash_mode(void)
{
	const char *e = getenv("LORA_TEST_PERSIST_CRASH");
	return e ? atoi(e) : 0;
}
#else
static int persist_crash_mode(void)
{
	return 0;
}
#endif

/* The Ready's entries, and hs when not NULL, in one synced write. */
static int persist_entries(struct lnode *n, const struct rep_ready *rd,
                           const struct sto_hard_state *hs)
{
	char err[LORA_ERRMSG_BYTES];
	struct sto_log_entry *es = lora_calloc(rd->n_entries, sizeof *es);
	uint64_t logged = 0;
	while (es == NULL) {
		if (persist_backoff(n, "raft log append", LORA_ENOMEM,
		                    "out of memory", 0, &logged))
			return -1;
		es = lora_calloc(rd->n_entries, sizeof *es);
	}
	for (size_t i = 0; i < rd->n_entries; i++)
		es[i] = (struct sto_log_entry){
		    rd->entries[i].index, rd->entries[i].term,
		    rd->entries[i].type, rd->entries[i].data,
		    rd->entries[i].len};
	uint64_t bytes = 0;
	for (size_t i = 0; i < rd->n_entries; i++)
		bytes += rd->entries[i].len;
	int rc;
	for (;;) {
		int wrote = 0;
		rc = persist_room(n, bytes, err);
		if (rc == 0) {
			wrote = 1;
			rc = sto_log_save(n->raft->log, es, rd->n_entries, hs,
			                  err);
		}
		if (rc == 0)
			break;
		if (persist_backoff(n, "raft log append", rc, err, wrote,
		                    &logged)) {
			rc = -1;
			break;
		}
	}
	lora_free(es);
	return rc;
}

/*
 * Step 2 of raft.h's loop; -1 when the node stops before it succeeded.
 * A changed term or vote is written in the same synced write as the
 * Ready's entries, never after them: entries of a term the stored hard
 * state has not reached yet make the next start refuse the log (and a
 * node that lost its vote could vote twice in a term). The commit index
 * alone is written lazily, at most every NODE_COMMIT_PERSIST_MS, unless it
 * can ride along with entries for free.
 */
static int persist(struct lnode *n, const struct rep_ready *rd)
{
	char err[LORA_ERRMSG_BYTES];
	uint64_t now = lora_now_ms();
	int must = rd->has_hard_state &&
	           (rd->hs.term != n->raft->last_persisted_term ||
	            rd->hs.vote != n->raft->last_persisted_vote);
	int write_hs =
	    rd->has_hard_state &&
	    (must || rd->n_entries ||
	     now - n->raft->persisted_commit_ms >= NODE_COMMIT_PERSIST_MS);
	struct sto_hard_state hs = {rd->hs.term, rd->hs.vote, rd->hs.commit};
	int crash = must ? persist_crash_mode() : 0;
	if (rd->n_entries) {
		int with_hs = write_hs && crash != 2;
		if (persist_entries(n, rd, with_hs ? &hs : NULL) != 0)
			return -1;
		if (crash == 1 || crash == 2)
			_exit(STO_INSTALL_CRASH_EXIT);
	} else if (write_hs) {
		uint64_t logged = 0;
		int rc;
		while ((rc = sto_log_set_hard_state(n->raft->log, &hs, err)) !=
		       0)
			if (persist_backoff(n, "raft hard state write", rc, err,
			                    1, &logged))
				return -1;
	}
	if (!write_hs)
		return 0;
	n->raft->last_persisted_term = rd->hs.term;
	n->raft->last_persisted_vote = rd->hs.vote;
	n->raft->persisted_commit_ms = now;
	return 0;
}

/* Messages a leader sends that do not depend on its own log write. */
static int leader_only(uint32_t type)
{
	return type == REP_MSG_APP || type == REP_MSG_HEARTBEAT ||
	       type == REP_MSG_SNAPSHOT || type == REP_MSG_TIMEOUT_NOW;
}

/*
 * Messages a later one of the same Ready makes redundant, to save a frame
 * (and its answer) per peer and round: an append without entries that
 * only moves the commit index when another append to that peer carries
 * entries (which then carries the highest commit: it is the leader's own,
 * and the follower never commits past what it stores), and an accepting
 * append answer followed by a higher one (answers are cumulative).
 * *commit receives the commit index m should carry.
 */
static int redundant(const struct rep_ready *rd, size_t i, uint64_t *commit)
{
	const struct rep_msg *m = &rd->msgs[i];
	int app = m->type == REP_MSG_APP, resp = m->type == REP_MSG_APP_RESP;
	*commit = m->commit;
	if ((!app && !resp) || (resp && m->reject))
		return 0;
	int carried = 0;
	for (size_t j = 0; j < rd->n_msgs; j++) {
		const struct rep_msg *o = &rd->msgs[j];
		if (j == i || o->type != m->type || o->to != m->to ||
		    o->term != m->term)
			continue;
		if (resp && !o->reject && o->index > m->index)
			return 1;
		if (app && o->n_entries > 0)
			carried = 1;
		if (app && o->commit > *commit)
			*commit = o->commit;
	}
	return app && carried && m->n_entries == 0;
}

/* Sends the messages of rd whose leader_only() equals `early`. */
/* A frame to peer `to`: through the transport, or the test's network. */
static int raft_send(struct lnode *n, uint64_t to, const uint8_t *buf,
                     size_t len)
{
	const struct node_raft_net *net = &n->raft->net;
	if (net->send)
		return net->send(net->arg, n->cfg.id, to, NODE_FRAME_RAFT, buf,
		                 len);
	return node_transport_send(n->transport, to, NODE_FRAME_RAFT, buf, len);
}

static void send_msgs(struct lnode *n, const struct rep_ready *rd, int early)
{
	for (size_t i = 0; i < rd->n_msgs; i++) {
		const struct rep_msg *m = &rd->msgs[i];
		if (leader_only(m->type) != early)
			continue;
		uint64_t commit;
		if (redundant(rd, i, &commit))
			continue;
		struct rep_msg raised;
		if (commit != m->commit) {
			raised = *m;
			raised.commit = commit;
			m = &raised;
		}
		if (m->type == REP_MSG_SNAPSHOT) {
			node_snapshot_send(n, m->to, &m->snapshot);
			continue;
		}
		uint8_t *buf;
		size_t len;
		if (node_raft_msg_pack(m, &buf, &len) != 0)
			continue;
		if (raft_send(n, m->to, buf, len) != 0 &&
		    m->type == REP_MSG_APP)
			rep_report_unreachable(n->raft->rep, m->to);
		lora_free(buf);
	}
}

/* A committed membership change: learn or forget the node's address. */
static void conf_committed(struct lnode *n, const struct rep_entry *e)
{
	struct rep_conf_change cc;
	if (rep_conf_change_decode(e->data, e->len, &cc) != 0)
		return;
	char ctx[REP_CONF_CONTEXT_BYTES_MAX + 1] = {0};
	size_t l = cc.ctx_len < REP_CONF_CONTEXT_BYTES_MAX
	               ? cc.ctx_len
	               : REP_CONF_CONTEXT_BYTES_MAX;
	if (l)
		memcpy(ctx, cc.ctx, l);
	LOG_INFO("membership: %s node %llu (%s) at index %llu",
	         cc.type == REP_CONF_ADD_LEARNER ? "add learner"
	         : cc.type == REP_CONF_PROMOTE   ? "promote"
	                                         : "remove",
	         (unsigned long long)cc.node_id, ctx,
	         (unsigned long long)e->index);
	pthread_mutex_lock(&n->status_mu);
	int found = -1;
	for (int i = 0; i < n->n_members; i++)
		if (n->members[i].id == cc.node_id)
			found = i;
	if (cc.type == REP_CONF_ADD_LEARNER && cc.ctx_len > 0) {
		if (found < 0 && n->n_members < NODE_PEERS_MAX) {
			found = n->n_members++;
			memset(&n->members[found], 0, sizeof n->members[found]);
		}
		if (found >= 0) {
			struct node_member *m = &n->members[found];
			m->id = cc.node_id;
			char *sp = strchr(ctx, ' ');
			if (sp) {
				*sp = '\0';
				if (strcmp(sp + 1, "-") != 0)
					snprintf(m->http_addr,
					         sizeof m->http_addr, "%.127s",
					         sp + 1);
			}
			snprintf(m->peer_addr, sizeof m->peer_addr, "%.127s",
			         ctx);
			if (n->transport) /* (none: a test's network) */
				node_transport_set_peer(n->transport, m->id,
				                        m->peer_addr, NULL);
		}
	} else if (cc.type == REP_CONF_REMOVE && found >= 0) {
		n->members[found] = n->members[--n->n_members];
		if (cc.node_id != n->cfg.id && n->transport)
			node_transport_remove_peer(n->transport, cc.node_id);
	}
	pthread_mutex_unlock(&n->status_mu);
	node_members_save(n);
}

static void serve_reads(struct lnode *n, const struct rep_ready *rd)
{
	struct node_raft_priv *p = n->raft->priv;
	for (size_t i = 0; i < rd->n_reads; i++) {
		if (rd->reads[i].ctx_len != 8)
			continue;
		uint64_t id = lora_get_be64(rd->reads[i].ctx);
		for (size_t j = 0; j < p->n_reads; j++)
			if (p->reads[j].ctx_id == id) {
				node_call_finish(p->reads[j].call, 0,
				                 rd->reads[i].index, 0);
				p->reads[j] = p->reads[--p->n_reads];
				break;
			}
	}
}

static void soft_state_changed(struct lnode *n, const struct rep_ready *rd)
{
	struct node_raft_priv *p = n->raft->priv;
	if (rd->soft.role == p->last_role && rd->soft.leader == p->last_leader)
		return;
	LOG_INFO("raft: role %s, leader %llu", rep_role_name(rd->soft.role),
	         (unsigned long long)rd->soft.leader);
	int was_leader = p->last_role == REP_LEADER;
	int is_leader = rd->soft.role == REP_LEADER;
	p->reask = p->last_leader != rd->soft.leader;
	p->last_role = rd->soft.role;
	p->last_leader = rd->soft.leader;
	if (was_leader != is_leader)
		node_writer_role_changed(n, is_leader);
	struct rep_status st;
	rep_status(n->raft->rep, &st);
	if (is_leader)
		p->lead_term = st.term;
	/* No leader in the same term: check-quorum cut this node off, no one
	 * can be asked. Its proposals may still commit elsewhere
	 * (UNKNOWN_OUTCOME), its reads were not served (UNAVAILABLE): both
	 * answered now. (After a newer term, a transfer or an election
	 * elsewhere, what it proposed may still commit here and is answered
	 * when applied.) */
	if (was_leader && rd->soft.leader == REP_NONE &&
	    st.term == p->lead_term) {
		LOG_WARN("raft: lost contact with a quorum, stepped down");
		node_writer_stepped_down(n);
		for (size_t j = 0; j < p->n_reads; j++)
			node_call_finish(p->reads[j].call, LORA_EUNAVAILABLE, 0,
			                 0);
		p->n_reads = 0;
	}
}

/*
 * Hands the pending reads to the core again: after a leader change (the
 * core dropped what it held, and a follower's request to a silent leader
 * is lost) at once, else every election timeout (a request or its answer
 * may be dropped). The context is the same, so whichever answer comes
 * first serves the read. Outside a Ready round only.
 */
static void reads_reask(struct lnode *n, int all)
{
	struct node_raft_priv *p = n->raft->priv;
	uint64_t now = lora_now_ms();
	for (size_t j = 0; j < p->n_reads; j++) {
		struct pending_read *r = &p->reads[j];
		if (!all && r->asked_ms != 0 &&
		    now - r->asked_ms < n->cfg.election_ms)
			continue;
		uint8_t ctx[8];
		lora_put_be64(ctx, r->ctx_id);
		r->asked_ms = rep_read_index(n->raft->rep, ctx, sizeof ctx) == 0
		                  ? now
		                  : 0;
	}
}

/* One Ready round; returns 0 when the core had nothing to do after all. */
static int handle_ready(struct lnode *n)
{
	struct rep_ready rd;
	rep_ready(n->raft->rep, &rd);
	int work = rd.has_snapshot || rd.n_entries || rd.n_msgs ||
	           rd.n_committed || rd.n_reads || rd.has_hard_state ||
	           rd.has_soft_state;
	if (rd.has_snapshot) {
		char err[LORA_ERRMSG_BYTES];
		if (node_snapshot_install(n, &rd.snapshot, err) != 0) {
			LOG_ERROR("snapshot install failed: %s; stopping", err);
			_Exit(70);
		}
		n->raft->snap_meta = rd.snapshot;
	}
	/* Appends go out while the leader's own copy is being synced (the
	 * core counts it only after rep_advance); votes and acks wait. */
	send_msgs(n, &rd, 1);
	/* Committed entries are durable since an earlier Ready (raft.h):
	 * they go to the apply loop without waiting for this Ready's sync. */
	for (size_t i = 0; i < rd.n_committed; i++)
		if (rd.committed[i].type == REP_ENTRY_CONF_CHANGE)
			conf_committed(n, &rd.committed[i]);
	if (rd.n_committed &&
	    node_apply_enqueue(n, rd.committed, rd.n_committed) != 0)
		return 0; /* stopping: the apply queue is closed */
	if (persist(n, &rd) != 0)
		return 0; /* stopping: never advance past an unwritten Ready */
	send_msgs(n, &rd, 0);
	serve_reads(n, &rd);
	int became_leader = 0;
	if (rd.has_soft_state) {
		became_leader = rd.soft.role == REP_LEADER &&
		                n->raft->priv->last_role != REP_LEADER;
		soft_state_changed(n, &rd);
	}
	rep_advance(n->raft->rep, &rd);
	if (n->raft->priv->reask) {
		n->raft->priv->reask = 0;
		reads_reask(n, 1);
	}
	struct rep_status st;
	rep_status(n->raft->rep, &st);
	pthread_mutex_lock(&n->status_mu);
	int changed = st.role != n->rs.role || st.leader != n->rs.leader ||
	              st.term != n->rs.term;
	if (changed) {
		n->status_seq++;
		pthread_cond_broadcast(&n->status_cond);
	}
	n->rs = st;
	if (became_leader) {
		n->lead_barrier = st.last_index;
		n->leader_since_ms = lora_now_ms();
	}
	pthread_mutex_unlock(&n->status_mu);
	if (changed) {
		/* a served transaction checks its leadership; native passed-on
		 * writes (forward.c) look for the new leader */
		node_tx_wake(n);
		node_forward_leader_changed();
		node_proxy_kick(n->proxy); /* and HTTP ones (proxy.h) */
	}
	atomic_store(&n->commit, st.commit);
	return work;
}

/* ---- ticks
 * ---------------------------------------------------------------------- */

static void expire_reads(struct lnode *n)
{
	struct node_raft_priv *p = n->raft->priv;
	uint64_t now = lora_now_ms();
	uint64_t no_leader_ms =
	    (uint64_t)n->cfg.election_ms * NODE_READ_NO_LEADER_ELECTIONS;
	for (size_t j = 0; j < p->n_reads;) {
		struct pending_read *r = &p->reads[j];
		int rc = now - r->start_ms > NODE_WAIT_TIMEOUT_MS
		             ? LORA_ETIMEOUT
		         : r->asked_ms == 0 && now - r->start_ms > no_leader_ms
		             ? LORA_EUNAVAILABLE
		             : 0;
		if (rc) {
			node_call_finish(r->call, rc, 0, 0);
			p->reads[j] = p->reads[--p->n_reads];
		} else {
			j++;
		}
	}
}

/* Leader: promote learners that have caught up. */
static void promote_learners(struct lnode *n)
{
	struct rep_status st;
	rep_status(n->raft->rep, &st);
	if (st.role != REP_LEADER)
		return;
	for (uint32_t i = 0; i < st.n_peers; i++) {
		const struct rep_peer_status *ps = &st.peers[i];
		if (ps->voter || ps->state != REP_PROGRESS_REPLICATE ||
		    ps->match + NODE_PROMOTE_LAG_ENTRIES < st.commit)
			continue;
		uint64_t t, idx, l;
		if (rep_propose_conf_change(n->raft->rep, REP_CONF_PROMOTE,
		                            ps->id, NULL, 0, &t, &idx, &l) == 0)
			LOG_INFO("promoting learner %llu (match %llu)",
			         (unsigned long long)ps->id,
			         (unsigned long long)ps->match);
		return; /* one change at a time */
	}
}

static void on_tick(struct lnode *n)
{
	rep_tick(n->raft->rep);
	n->raft->priv->ticks++;
	expire_reads(n);
	reads_reask(n, 0);
	if (n->raft->priv->ticks % NODE_PROMOTE_EVERY_TICKS == 0)
		promote_learners(n);
}

/* ---- the loop
 * ------------------------------------------------------------------- */

/* Everything in the inbox, waiting for the first item until next_tick
 * (lora_now_ms; 0: not at all) or until the inbox is closed. */
static struct node_inbox_item *inbox_take(struct lnode *n, uint64_t next_tick)
{
	size_t cnt;
	struct nq_link *list =
	    nq_take_done(&n->raft->inbox, SIZE_MAX,
	                 atomic_load(&n->stopping) ? NQ_NOW : next_tick, &cnt);
	return (struct node_inbox_item *)list;
}

static void fail_item(struct node_inbox_item *it)
{
	if (it->call) {
		node_call_finish(it->call, LORA_EUNAVAILABLE, 0, 0);
		return; /* caller-owned */
	}
	item_free(it);
}

void node_raft_close_inbox(struct lnode *n)
{
	/* Closed under the queue's lock: a push from now on is refused
	 * there, so the take below sees every item that got in. */
	nq_close(&n->raft->inbox);
	size_t cnt;
	struct nq_link *list =
	    nq_take_done(&n->raft->inbox, SIZE_MAX, NQ_NOW, &cnt);
	while (list) {
		struct nq_link *next = list->next;
		fail_item((struct node_inbox_item *)list);
		list = next;
	}
}

void *node_raft_main(void *arg)
{
	struct lnode *n = arg;
	pthread_setname_np(pthread_self(), "lora-raft");
	uint64_t next_tick = lora_now_ms() + n->raft->tick_ms;
	while (!atomic_load(&n->stopping)) {
		struct node_inbox_item *list = inbox_take(n, next_tick);
		while (list) {
			struct node_inbox_item *next =
			    (struct node_inbox_item *)list->link.next;
			handle_item(n, list);
			list = next;
		}
		reports_take(n);
		uint64_t now = lora_now_ms();
		if (now >= next_tick) {
			on_tick(n);
			next_tick += n->raft->tick_ms;
			if (next_tick + n->raft->tick_ms < now)
				next_tick = now + n->raft->tick_ms;
		}
		/* rep_has_ready can stay true with nothing to hand out (a
		 * follower that needs a snapshot but is down): never spin. */
		for (int k = 0;
		     k < NODE_READY_ROUNDS_MAX && rep_has_ready(n->raft->rep);
		     k++)
			if (!handle_ready(n))
				break;
	}
	/* Answer everyone still waiting, and refuse whoever comes later (a
	 * caller that saw stopping == 0 just before it was set). */
	node_raft_close_inbox(n);
	for (size_t j = 0; j < n->raft->priv->n_reads; j++)
		node_call_finish(n->raft->priv->reads[j].call,
		                 LORA_EUNAVAILABLE, 0, 0);
	n->raft->priv->n_reads = 0;
	return NULL;
}
