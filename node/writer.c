/*
 * writer.c - the leader's single writer and group commit.
 *
 * Write statements queue here. The writer takes everything queued (up to
 * NODE_WRITE_GROUP_MAX), executes the statements one after another on a
 * read view plus the batches it proposed that are not applied yet plus the
 * batches of the statements before it in the group, and proposes their
 * mutations as ONE log entry. A statement that fails is answered at once
 * and leaves nothing behind. Each statement is answered when the entry is
 * applied locally: success when the applied entry at that index has the
 * proposal's term; LORA_UNAVAILABLE when another entry took the index (the
 * write certainly did not happen); LORA_UNKNOWN_OUTCOME when nothing is
 * known after NODE_WRITE_TIMEOUT_MS.
 *
 * A group stops taking statements once its batches pack to more than
 * NODE_GROUP_BYTES_SOFT (the rest wait for the next group), and a single
 * statement may make at most NODE_BATCH_BYTES_MAX: the entry always fits
 * REP_ENTRY_BYTES_MAX.
 *
 * A statement with CALL { ... } IN TRANSACTIONS runs alone (exec_intx):
 * after the batches proposed before it are applied, it runs on a view of
 * the stored graph, and each chunk is proposed as its own entry as soon as
 * it ran, while the next runs over the view with the chunks in flight laid
 * over it (at most QRY_CHUNKS_IN_FLIGHT; the oldest is waited for until
 * applied here before another is proposed). A chunk proposed while another
 * is in flight names it (MutationBatch.after_index): apply refuses it when
 * it refused that one. The writer is the statement's while it runs: no
 * other write interleaves with its chunks.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "node_int.h"
#include "thread.h"

struct wreq {
	struct nq_link link; /* first: the writer queue's link is the item */
	struct wreq *next;   /* proposal list, or completions to run */
	const struct node_exec_req *req; /* caller's, valid until fn ran */
	Lora__Response *resp;            /* caller's */
	node_write_done_fn fn;
	void *arg;
	int rc;
	int dup;            /* retried request id: answer bookmark only */
	int intx_committed; /* an IN TRANSACTIONS chunk of it committed */
	/* when it was queued: the statement's time limit counts from then,
	 * so that a follower's wait (node_forward_wait_ms), which counts
	 * from its sending, outlasts the queue and the run together */
	uint64_t queued_ms;
};

/* Completions collected under wr->mu, run after it is released (they may
 * write to a socket). */
struct wdone {
	struct wreq *head;
};

/* ---- answering -------------------------------------------------------------
 */

static void wreq_complete(struct wreq *w)
{
	w->fn(w->arg, w->rc);
	lora_free(w);
}

/* Completes w now (later == NULL) or after the lock (later). */
static void wreq_settle(struct wreq *w, int rc, struct wdone *later)
{
	w->rc = rc;
	if (later) {
		w->next = later->head;
		later->head = w;
	} else {
		wreq_complete(w);
	}
}

static void wdone_run(struct wdone *d)
{
	for (struct wreq *w = d->head, *nx; w; w = nx) {
		nx = w->next;
		wreq_complete(w);
	}
	d->head = NULL;
}

static void wreq_fail(struct wreq *w, int code, const char *msg,
                      struct wdone *later)
{
	/* LORA_UNAVAILABLE tells "not executed, run it again" (the HTTP
	 * reroute and drivers do): never after a chunk committed */
	char m[LORA_ERRMSG_BYTES];
	if (code == LORA_EUNAVAILABLE && w->intx_committed) {
		code = LORA_EUNKNOWN_OUTCOME;
		snprintf(m, sizeof m,
		         "the statement's end was not recorded (%.200s), when "
		         "CALL { ... } IN TRANSACTIONS chunks of it may have "
		         "committed (any that did stay committed): do not run "
		         "it again blindly",
		         msg ? msg : lora_strerror(LORA_EUNAVAILABLE));
		msg = m;
	}
	node_resp_error(w->resp, code, msg ? msg : lora_strerror(code), 0, 0);
	wreq_settle(w, code, later);
}

static void wreq_done(struct wreq *w, uint64_t index, struct wdone *later)
{
	node_resp_set_bookmark(w->resp, index);
	wreq_settle(w, 0, later);
}

/* Resolves proposal p against the entry applied at its index (mu held). */
static void resolve(struct proposal *p, const struct applied_rec *a,
                    struct wdone *later)
{
	for (struct wreq *w = p->reqs, *next; w; w = next) {
		next = w->next;
		if (a->term != p->term)
			wreq_fail(
			    w, LORA_EUNAVAILABLE,
			    "leadership changed before the write committed; "
			    "it was not executed: retry",
			    later);
		else if (a->rc != 0)
			wreq_fail(w, a->rc, a->errmsg, later);
		else
			wreq_done(w, p->index, later);
	}
	p->reqs = NULL;
}

static void prop_remove(struct node_writer *wr, size_t i)
{
	if (wr->props[i].batch)
		lora__mutation_batch__free_unpacked(wr->props[i].batch,
		                                    &lora_pb_allocator);
	wr->props[i] = wr->props[--wr->n_props];
}

void nwr_answer(struct wreq *w, int code, const char *msg, uint64_t index)
{
	if (code)
		wreq_fail(w, code, msg, NULL);
	else
		wreq_done(w, index, NULL);
}

void node_writer_applied(struct lnode *n, uint64_t index, uint64_t term, int rc,
                         const char *errmsg)
{
	if (n->writer)
		nwr_applied(n->writer, index, term, rc, errmsg);
}

void nwr_applied(struct node_writer *wr, uint64_t index, uint64_t term, int rc,
                 const char *errmsg)
{
	pthread_mutex_lock(&wr->mu);
	pthread_cond_broadcast(&wr->applied_cond);
	struct applied_rec *a = &wr->ring[index % NODE_APPLIED_RING];
	a->index = index;
	a->term = term;
	a->rc = rc;
	snprintf(a->errmsg, sizeof a->errmsg, "%s", rc ? errmsg : "");
	struct wdone later = {NULL};
	for (size_t i = 0; i < wr->n_props; i++) {
		struct proposal *p = &wr->props[i];
		if (p->dead)
			continue;
		if (p->index == index)
			resolve(p, a, &later);
		if (p->index <= index) {
			for (struct wreq *w = p->reqs, *nx; w; w = nx) {
				nx = w->next; /* passed without a match */
				wreq_fail(w, LORA_EUNKNOWN_OUTCOME, NULL,
				          &later);
			}
			p->reqs = NULL;
			p->dead = 1;
		}
	}
	pthread_mutex_unlock(&wr->mu);
	wdone_run(&later);
}

void node_writer_role_changed(struct lnode *n, int leader)
{
	struct node_writer *wr = n->writer;
	if (wr == NULL)
		return;
	/* wakes the writer: its queued writes now fail or run in the new
	 * term; earlier terms' batches are freed by prune (entries still
	 * resolve via apply, overwritten, or time out) */
	nq_kick(&wr->q);
	(void)leader;
}

void nwr_fail_waiting(struct node_writer *wr, const char *msg)
{
	struct wdone later = {NULL};
	pthread_mutex_lock(&wr->mu);
	for (size_t i = 0; i < wr->n_props; i++) {
		struct proposal *p = &wr->props[i];
		for (struct wreq *w = p->reqs, *nx; w; w = nx) {
			nx = w->next;
			wreq_fail(w, LORA_EUNKNOWN_OUTCOME, msg, &later);
		}
		p->reqs = NULL;
	}
	pthread_mutex_unlock(&wr->mu);
	wdone_run(&later);
}

void node_writer_stepped_down(struct lnode *n)
{
	struct node_writer *wr = n->writer;
	if (wr == NULL)
		return;
	nwr_fail_waiting(wr, "this node lost contact with a quorum and "
	                     "stepped down: the write may still commit; "
	                     "retry with the same requestId");
	nq_kick(&wr->q);
}

uint64_t nwr_next_expiry_ms(struct node_writer *wr)
{
	uint64_t next = NQ_FOREVER;
	pthread_mutex_lock(&wr->mu);
	for (size_t i = 0; i < wr->n_props; i++) {
		const struct proposal *p = &wr->props[i];
		if (p->reqs && p->start_ms + NODE_WRITE_TIMEOUT_MS < next)
			next = p->start_ms + NODE_WRITE_TIMEOUT_MS;
	}
	pthread_mutex_unlock(&wr->mu);
	return next;
}

void nwr_expire(struct node_writer *wr, uint64_t now)
{
	struct wdone later = {NULL};
	pthread_mutex_lock(&wr->mu);
	for (size_t i = 0; i < wr->n_props; i++) {
		struct proposal *p = &wr->props[i];
		if (p->reqs == NULL ||
		    now - p->start_ms < NODE_WRITE_TIMEOUT_MS)
			continue;
		for (struct wreq *w = p->reqs, *nx; w; w = nx) {
			nx = w->next;
			wreq_fail(
			    w, LORA_EUNKNOWN_OUTCOME,
			    "no answer in time: the write may still commit; "
			    "retry with the same requestId",
			    &later);
		}
		p->reqs = NULL;
	}
	pthread_mutex_unlock(&wr->mu);
	wdone_run(&later);
}

/* ---- executing a group
 * ---------------------------------------------------------- */

struct group {
	struct wreq *w[NODE_WRITE_GROUP_MAX];
	struct qry_cursor *cur[NODE_WRITE_GROUP_MAX];
	const Lora__MutationBatch
	    *batches[NODE_PENDING_PROPOSALS_MAX + NODE_WRITE_GROUP_MAX];
	size_t n, n_pending, n_batches;
	size_t bytes;      /* packed size of the group's own batches */
	struct wreq *dups; /* carry the request id of one of w[]: its answer */
};

/* A statement of this group already carries w's request id: w waits for
 * that one's entry instead of running again. */
static int dup_in_group(struct group *g, struct wreq *w)
{
	const char *rid = w->req->request_id;
	if (rid == NULL || rid[0] == '\0')
		return 0;
	for (size_t i = 0; i < g->n; i++) {
		const char *o = g->w[i]->req->request_id;
		if (o && !strcmp(o, rid)) {
			w->dup = 1;
			w->next = g->dups;
			g->dups = w;
			return 1;
		}
	}
	return 0;
}

/* Attaches w to an in-flight proposal carrying the same request id. */
static int attach_inflight(struct node_writer *wr, struct wreq *w)
{
	const char *rid = w->req->request_id;
	for (size_t i = 0; i < wr->n_props; i++) {
		struct proposal *p = &wr->props[i];
		/* reqs may be empty: answered UNKNOWN_OUTCOME, still in flight
		 */
		if (p->batch == NULL || p->dead)
			continue;
		for (size_t k = 0; k < p->batch->n_request_ids; k++)
			if (!strcmp(p->batch->request_ids[k], rid)) {
				w->dup = 1;
				w->next = p->reqs;
				p->reqs = w;
				return 1;
			}
	}
	return 0;
}

/* Answers a retried request id; 1 when w was answered or attached. */
static int dedup(struct lnode *n, struct sto_store *st, struct wreq *w)
{
	const char *rid = w->req->request_id;
	if (rid == NULL || rid[0] == '\0')
		return 0;
	uint64_t index;
	int rc;
	if (node_dedup_lookup(n, st, rid, &index, &rc)) {
		if (rc)
			wreq_fail(w, rc,
			          "the earlier attempt of this requestId "
			          "was rejected",
			          NULL);
		else
			wreq_done(w, index, NULL);
		return 1;
	}
	pthread_mutex_lock(&n->writer->mu);
	int attached = attach_inflight(n->writer, w);
	pthread_mutex_unlock(&n->writer->mu);
	return attached;
}

/* The statement's columns and rows into w's response. */
static int take_rows(struct wreq *w, struct qry_cursor *c,
                     struct qry_error *err)
{
	const char *const *names;
	size_t nc = qry_cursor_columns(c, &names);
	int rc = node_resp_set_columns(w->resp, names, nc);
	for (int done = 0; rc == 0;) {
		const Lora__Value *const *row;
		rc = qry_cursor_next(c, &row, &done, err);
		if (rc || done)
			break;
		rc = node_resp_add_row(w->resp, row, nc);
	}
	/* PROFILE of a write: the plan travels in the response (also back
	 * through a forwarding follower) */
	return rc ? rc : node_resp_set_plan(w->resp, qry_cursor_plan(c));
}

int node_batch_too_deep(const Lora__MutationBatch *b, char *msg)
{
	if (lora_batch_depth(b, LORA_VALUE_DEPTH_MAX) <= LORA_VALUE_DEPTH_MAX)
		return 0;
	return lora_errf(LORA_ELIMIT, msg,
	                 "a property value nests deeper than %d lists and "
	                 "maps (the value depth limit)",
	                 LORA_VALUE_DEPTH_MAX);
}

/* 1 (msg set) when req's role may not make b's mutations: any for a
 * role below writer, index DDL below admin. */
int node_batch_forbidden(const struct node_exec_req *req,
                         const Lora__MutationBatch *b, char *msg)
{
	for (size_t i = 0; i < b->n_mutations; i++) {
		int op = b->mutations[i]->op_case;
		int ddl = op == LORA__MUTATION__OP_CREATE_INDEX ||
		          op == LORA__MUTATION__OP_DROP_INDEX;
		int need = ddl ? NODE_ROLE_ADMIN : NODE_ROLE_WRITER;
		if (req->role < need) {
			lora_errf(LORA_EFORBIDDEN, msg,
			          "%s needs the %s role (user '%s' has %s)",
			          ddl ? "index and constraint DDL" : "writing",
			          node_role_name(need), req->user,
			          node_role_name(req->role));
			return 1;
		}
	}
	return 0;
}

/* Refuses w, whose time limit ran out before it started. */
static void too_late(struct lnode *n, struct wreq *w)
{
	char m[LORA_ERRMSG_BYTES];
	snprintf(m, sizeof m,
	         "the statement's time limit of %llu ms ran out while it "
	         "waited for the writer; it was not executed",
	         (unsigned long long)node_statement_time_ms(n, w->req));
	wreq_fail(w, LORA_ETIMEOUT, m, NULL);
}

/* Runs one statement of the group; keeps its cursor when it wrote. */
static void run_one(struct lnode *n, struct sto_view *view, struct group *g,
                    struct wreq *w)
{
	char import_dir[NODE_PATH_BYTES_MAX];
	node_config_import_dir(&n->cfg, import_dir, sizeof import_dir);
	struct qry_request q = {
	    .query = w->req->query,
	    .params = w->req->params,
	    .view = view,
	    .pending = g->batches,
	    .n_pending = g->n_batches,
	    .mode = w->req->mode,
	    .read_only = 0,
	    .import_dir = import_dir,
	    .batch_bytes_max = NODE_BATCH_BYTES_MAX,
	};
	node_qry_limits(n, w->req, &q.limits);
	q.limits.time_from_ms = w->queued_ms;
	struct qry_error err = {0};
	struct qry_cursor *c = NULL;
	/* the limit counts from the queueing: a write that waited past it
	 * is refused unexecuted (a short one reaches no time check of the
	 * engine, and would commit long after a follower that passed it on
	 * stopped waiting: node_forward_wait_ms). User changes too (the
	 * auth bootstrap is proposed again every 2 s). */
	if (lora_now_ms() >= w->queued_ms + node_statement_time_ms(n, w->req)) {
		too_late(n, w);
		return;
	}
	if (w->req->batch) { /* decided already (auth.c): proposed as is */
		g->bytes += lora_batch_packed_size(w->req->batch);
		g->batches[g->n_batches++] = w->req->batch;
		g->w[g->n] = w;
		g->cur[g->n++] = NULL;
		return;
	}
#ifdef LORA_TEST_HOOKS
	node_slow_testing(w->req->query);
#endif
	if (qry_open(&q, &c, &err) != 0) {
		node_resp_error(w->resp, err.code, err.message, err.line,
		                err.column);
		wreq_settle(w, err.code, NULL);
		return;
	}
	int rc = take_rows(w, c, &err);
	const Lora__MutationBatch *b = qry_cursor_batch(c);
	if (rc == 0 && b && node_batch_forbidden(w->req, b, err.message)) {
		rc = LORA_EFORBIDDEN;
		node_resp_error(w->resp, rc, err.message, 0, 0);
	}
	/* Never propose what apply would refuse on every node. */
	char deep[LORA_ERRMSG_BYTES];
	if (rc == 0 && b && (rc = node_batch_too_deep(b, deep)) != 0)
		node_resp_error(w->resp, rc, deep, 0, 0);
	if (rc) {
		if (w->resp->error == NULL) /* add_row may have said more */
			node_resp_error(w->resp, rc,
			                err.code ? err.message
			                         : lora_strerror(rc),
			                err.line, err.column);
		wreq_settle(w, rc, NULL);
		qry_cursor_free(c);
	} else if (b == NULL || (b->n_mutations == 0)) {
		wreq_done(w, sto_view_applied_index(view), NULL);
		qry_cursor_free(c);
	} else {
		g->bytes += lora_batch_packed_size(b);
		g->batches[g->n_batches++] = b;
		g->w[g->n] = w;
		g->cur[g->n++] = c;
	}
}

/* The group's statements as one packed MutationBatch (lora_free). */
static uint8_t *pack_group(struct group *g, size_t *len)
{
	size_t nm = 0, nr = 0;
	for (size_t i = g->n_pending; i < g->n_batches; i++)
		nm += g->batches[i]->n_mutations;
	Lora__MutationBatch all = LORA__MUTATION_BATCH__INIT;
	all.mutations = lora_calloc(nm ? nm : 1, sizeof *all.mutations);
	all.request_ids = lora_calloc(g->n ? g->n : 1, sizeof(char *));
	uint8_t *buf = NULL;
	if (all.mutations && all.request_ids) {
		for (size_t i = g->n_pending; i < g->n_batches; i++)
			for (size_t k = 0; k < g->batches[i]->n_mutations; k++)
				all.mutations[all.n_mutations++] =
				    g->batches[i]->mutations[k];
		for (size_t i = 0; i < g->n; i++) {
			const char *rid = g->w[i]->req->request_id;
			if (rid && rid[0])
				all.request_ids[nr++] = (char *)rid;
		}
		all.n_request_ids = nr;
		*len = lora_batch_packed_size(&all);
		buf = lora_malloc(*len ? *len : 1);
		if (buf)
			lora_batch_pack_exact(&all, buf, *len);
	}
	lora_free(all.mutations);
	lora_free(all.request_ids);
	return buf;
}

static void group_fail(struct group *g, int code, const char *msg)
{
	for (size_t i = 0; i < g->n; i++)
		wreq_fail(g->w[i], code, msg, NULL);
	for (struct wreq *w = g->dups, *nx; w; w = nx) {
		nx = w->next;
		wreq_fail(w, code, msg, NULL);
	}
	g->dups = NULL;
}

/* Registers the proposal with its batch (taken), or resolves it right
 * away if already applied. propose_group made sure there is room. */
static void track_list(struct node_writer *wr, struct wreq *reqs,
                       uint64_t index, uint64_t term,
                       Lora__MutationBatch *batch)
{
	struct wdone later = {NULL};
	pthread_mutex_lock(&wr->mu);
	struct proposal p = {index, term, lora_now_ms(), NULL, reqs, 0};
	struct applied_rec *a = &wr->ring[index % NODE_APPLIED_RING];
	LORA_ASSERT(wr->n_props < NODE_PENDING_PROPOSALS_MAX);
	if (a->index == index) {
		resolve(&p, a, &later);
		lora__mutation_batch__free_unpacked(batch, &lora_pb_allocator);
	} else {
		p.batch = batch;
		wr->props[wr->n_props++] = p;
	}
	pthread_mutex_unlock(&wr->mu);
	wdone_run(&later);
}

void nwr_track(struct node_writer *wr, struct wreq **ws, size_t cnt,
               uint64_t index, uint64_t term, Lora__MutationBatch *batch)
{
	struct wreq *reqs = NULL;
	for (size_t i = 0; i < cnt; i++) {
		ws[i]->next = reqs;
		reqs = ws[i];
	}
	track_list(wr, reqs, index, term, batch);
}

int nwr_has_room(struct node_writer *wr)
{
	pthread_mutex_lock(&wr->mu);
	int room = wr->n_props < NODE_PENDING_PROPOSALS_MAX;
	pthread_mutex_unlock(&wr->mu);
	return room;
}

static void register_proposal(struct node_writer *wr, struct group *g,
                              uint64_t index, uint64_t term,
                              Lora__MutationBatch *batch)
{
	struct wreq *reqs = NULL;
	for (size_t i = 0; i < g->n; i++) {
		g->w[i]->next = reqs;
		reqs = g->w[i];
	}
	for (struct wreq *w = g->dups, *nx; w; w = nx) {
		nx = w->next;
		w->next = reqs;
		reqs = w;
	}
	g->dups = NULL;
	track_list(wr, reqs, index, term, batch);
}

static void propose_group(struct lnode *n, struct group *g, uint8_t *buf,
                          size_t len)
{
	/* Every proposed batch must stay listed until applied: the next
	 * group runs over it. With the table full, or no memory for the
	 * copy, nothing is proposed (the writes were not executed). */
	struct node_writer *wr = n->writer;
	int full = !nwr_has_room(wr);
	Lora__MutationBatch *pb =
	    full ? NULL
	         : lora__mutation_batch__unpack(&lora_pb_allocator, len, buf);
	if (pb == NULL) {
		group_fail(g, LORA_EUNAVAILABLE,
		           full ? "too many writes waiting for the log; the "
		                  "write was not executed: retry"
		                : "out of memory; the write was not executed: "
		                  "retry");
		return;
	}
	uint64_t term = 0, index = 0, leader = 0;
	int rc =
	    node_raft_propose(n, buf, len, wr->term, &term, &index, &leader);
	if (rc) {
		lora__mutation_batch__free_unpacked(pb, &lora_pb_allocator);
		if (rc == LORA_ENOTLEADER || rc == LORA_EUNAVAILABLE ||
		    rc == LORA_ECLOSED)
			group_fail(g, LORA_EUNAVAILABLE,
			           "this node stopped being the leader; the "
			           "write was not executed: retry");
		else
			group_fail(g, rc, NULL);
		return;
	}
	register_proposal(wr, g, index, term, pb);
}

/* Puts ws back at the head of the queue, in order (a full group). */
static void requeue_front(struct node_writer *wr, struct wreq **ws, size_t cnt)
{
	if (cnt == 0)
		return;
	for (size_t i = 0; i < cnt; i++)
		ws[i]->link.next = i + 1 < cnt ? &ws[i + 1]->link : NULL;
	nq_push_front(&wr->q, &ws[0]->link, cnt);
}

static void exec_group(struct lnode *n, struct wreq **ws, size_t cnt)
{
	struct node_writer *wr = n->writer;
	struct group *g = lora_calloc(1, sizeof *g);
	if (g == NULL) {
		for (size_t i = 0; i < cnt; i++)
			wreq_fail(ws[i], LORA_ENOMEM, NULL, NULL);
		return;
	}
	struct sto_store *s = node_store_acquire(n);
	struct sto_view *view = NULL;
	int vrc = sto_view_open(s, &view);
	if (vrc != 0) {
		node_store_release(n);
		for (size_t i = 0; i < cnt; i++)
			wreq_fail(ws[i], vrc, "cannot open a read view", NULL);
		lora_free(g);
		return;
	}
	uint64_t a = sto_view_applied_index(view);
	pthread_mutex_lock(&wr->mu);
	/* Every batch this leader proposed in this term above the view, in
	 * log order (indexes may have gaps: no-ops and membership changes sit
	 * between them). Entries of earlier terms are at or below the lead
	 * barrier, so applied in the view; an earlier term's proposal that
	 * is still listed may have been overwritten and is never pending. */
	for (uint64_t prev = a;;) {
		size_t best = wr->n_props;
		for (size_t k = 0; k < wr->n_props; k++)
			if (wr->props[k].index > prev && wr->props[k].batch &&
			    wr->props[k].term == wr->term &&
			    (best == wr->n_props ||
			     wr->props[k].index < wr->props[best].index))
				best = k;
		if (best == wr->n_props)
			break;
		g->batches[g->n_batches++] = wr->props[best].batch;
		prev = wr->props[best].index;
	}
	g->n_pending = g->n_batches;
	/* The pending batches stay alive: only this thread frees them. */
	pthread_mutex_unlock(&wr->mu);
	for (size_t i = 0; i < cnt; i++) {
		if (g->bytes > NODE_GROUP_BYTES_SOFT) {
			requeue_front(wr, ws + i, cnt - i);
			break;
		}
		if (!dedup(n, s, ws[i]) && !dup_in_group(g, ws[i]))
			run_one(n, view, g, ws[i]);
	}
	size_t len = 0;
	uint8_t *buf = g->n ? pack_group(g, &len) : NULL;
	for (size_t i = 0; i < g->n; i++)
		qry_cursor_free(g->cur[i]);
	sto_view_close(view);
	node_store_release(n);
	if (g->n && buf == NULL)
		group_fail(g, LORA_ENOMEM, NULL);
	else if (g->n)
		propose_group(n, g, buf, len);
	lora_free(buf);
	lora_free(g);
}

/* ---- CALL { ... } IN TRANSACTIONS ------------------------------------ */

/* One statement's chunks. The store is held while a view is open, and
 * given back around each proposal (never held across a raft call). */
/* How long past the statement's deadline an IN TRANSACTIONS chunk that
 * was proposed is waited for (intx_fly_wait). */
#define NODE_INTX_LAND_GRACE_MS 5000

struct intx {
	struct lnode *n;
	struct sto_store *st;  /* held, or NULL */
	struct sto_view *view; /* the statement's view, or NULL */
	uint64_t deadline_ms;
	uint64_t last_index; /* entry of the last chunk committed */
	/* the chunks proposed and not yet waited for (intx_propose), oldest
	 * first: their entries and packed bytes (kept for keep_unresolved) */
	struct intx_flight {
		uint64_t index, term;
		uint8_t *buf;
		size_t len;
		size_t changes; /* its mutations */
	} fly[QRY_CHUNKS_IN_FLIGHT];
	size_t nfly;
	uint64_t end_ms; /* the statement's own deadline (exec_intx) */
	/* progress (cfg.progress_ms): the start, the last line's time (0:
	 * none yet), and the chunks and mutations applied so far */
	uint64_t t0_ms, log_at_ms, chunks, changes;
	/* a chunk of the statement was refused, or its entry taken by
	 * another term: the chunks proposed after it cannot commit (apply
	 * refuses them, or the log drops them), and answer this at once */
	int doomed;
	char doomed_why[LORA_ERRMSG_BYTES];
	/* the statement's request (its role bounds what a chunk may hold),
	 * or NULL when the caller checked (txn.c) */
	const struct node_exec_req *req;
};

static void intx_let_go(struct intx *x)
{
	if (x->view)
		sto_view_close(x->view);
	x->view = NULL;
	if (x->st)
		node_store_release(x->n);
	x->st = NULL;
}

/* Waits until the entry at index is applied here: 0 when it was ours. */
static int intx_wait(struct intx *x, uint64_t index, uint64_t term,
                     struct qry_error *err)
{
	struct node_writer *wr = x->n->writer;
	int rc = LORA_EUNKNOWN_OUTCOME;
	pthread_mutex_lock(&wr->mu);
	for (;;) {
		struct applied_rec *a = &wr->ring[index % NODE_APPLIED_RING];
		if (a->index == index) {
			rc = a->term != term ? LORA_EUNAVAILABLE : a->rc;
			if (a->term != term)
				lora_errf(rc, err->message,
				          "leadership changed before the chunk "
				          "committed; it was not executed");
			else if (rc)
				snprintf(err->message, sizeof err->message,
				         "%s", a->errmsg);
			break;
		}
		uint64_t now = lora_now_ms();
		if (a->index > index || now >= x->deadline_ms || wr->closing ||
		    atomic_load(&x->n->stopping)) {
			lora_errf(
			    rc, err->message,
			    "no answer in time for a chunk (the "
			    "statement's time limit ran out while it was "
			    "committing, or the node is stopping): it may "
			    "still commit");
			break;
		}
		/* woken by every applied entry and by nwr_close */
		struct timespec ts;
		uint64_t left = x->deadline_ms - now;
		lora_deadline_after(&ts, left < INT_MAX ? (int)left : INT_MAX);
		pthread_cond_timedwait(&wr->applied_cond, &wr->mu, &ts);
	}
	pthread_mutex_unlock(&wr->mu);
	return err->code = rc;
}

/* An entry proposed without a waiting request whose answer was not seen
 * in time: kept among the pending proposals until it resolves (the table
 * had room when it was proposed; only the writer thread adds). */
static void keep_unresolved(struct node_writer *wr, uint64_t index,
                            uint64_t term, const uint8_t *buf, size_t len)
{
	Lora__MutationBatch *pb =
	    lora__mutation_batch__unpack(&lora_pb_allocator, len, buf);
	pthread_mutex_lock(&wr->mu);
	struct applied_rec *a = &wr->ring[index % NODE_APPLIED_RING];
	if (pb && a->index != index &&
	    wr->n_props < NODE_PENDING_PROPOSALS_MAX) {
		struct proposal p = {index, term, lora_now_ms(), pb, NULL, 0};
		wr->props[wr->n_props++] = p;
		pb = NULL;
	}
	pthread_mutex_unlock(&wr->mu);
	if (pb)
		lora__mutation_batch__free_unpacked(pb, &lora_pb_allocator);
}

/* b packed into a new buffer (lora_free), or NULL (out of memory). */
static uint8_t *pack_batch(const Lora__MutationBatch *b, size_t *len,
                           struct qry_error *err)
{
	*len = lora_batch_packed_size(b);
	uint8_t *buf = lora_malloc(*len ? *len : 1);
	if (buf == NULL)
		lora_errf(err->code = LORA_ENOMEM, err->message,
		          "out of memory");
	else
		lora_batch_pack_exact(b, buf, *len);
	return buf;
}

/* Proposes the packed batch buf (taken) in the writer's term and waits
 * until it is applied here (x->deadline_ms): 0 with *index. */
static int propose_wait(struct intx *x, uint8_t *buf, size_t len,
                        uint64_t *index_out, struct qry_error *err);
static int propose_only(struct intx *x, uint8_t *buf, size_t len,
                        uint64_t *index, uint64_t *term, struct qry_error *err);

/* query.h's propose_chunk: b proposed in the writer's term, not waited
 * for (the engine runs the next chunk meanwhile); intx_land waits. */
static int intx_open_view(struct intx *x, struct sto_view **nv,
                          struct qry_error *err);

static int intx_propose(void *arg, const Lora__MutationBatch *b,
                        const uint8_t *packed, size_t len, struct sto_view **nv,
                        uint64_t *index_out, struct qry_error *err)
{
	struct intx *x = arg;
	LORA_ASSERT(x->nfly < QRY_CHUNKS_IN_FLIGHT);
#ifdef LORA_TEST_HOOKS
	if (x->req)
		node_slow_testing(x->req->query);
#endif
	if (x->req && node_batch_forbidden(x->req, b, err->message))
		return err->code = LORA_EFORBIDDEN; /* DDL needs admin */
	/* never propose what apply would refuse on every node */
	if (node_batch_too_deep(b, err->message))
		return err->code = LORA_ELIMIT;
	/* kept until the chunk lands (x->fly): the engine's bytes are
	 * borrowed for the call. A chunk proposed while another is in
	 * flight names that one's entry (MutationBatch.after_index, the
	 * batch's last field, appended): every node refuses it when it
	 * refused that one, so it never commits without it. */
	uint64_t after = x->nfly ? x->fly[x->nfly - 1].index : 0;
	uint8_t *buf = lora_malloc(len + LORA_BATCH_AFTER_INDEX_BYTES_MAX);
	if (buf == NULL)
		return err->code = lora_errf(LORA_ENOMEM, err->message,
		                             "out of memory");
	if (len)
		memcpy(buf, packed, len);
	if (after)
		len += lora_batch_put_after_index(buf + len, after);
	/* never call into Raft holding the store: a snapshot install
	 * waits for it on the raft loop */
	intx_let_go(x);
	uint64_t index = 0, term = 0;
	if (propose_only(x, buf, len, &index, &term, err) != 0)
		return err->code;
	x->fly[x->nfly++] =
	    (struct intx_flight){index, term, buf, len, b->n_mutations};
	*index_out = index;
	if (intx_open_view(x, nv, err) != 0) {
		char why[LORA_ERRMSG_BYTES];
		snprintf(why, sizeof why, "%s", err->message);
		return err->code = lora_errf(
		           LORA_EUNKNOWN_OUTCOME, err->message,
		           "the chunk was proposed, but no view could be "
		           "opened after it: %.200s",
		           why);
	}
	return 0;
}

/* A new view of the store for the statement (x->st, x->view). */
static int intx_open_view(struct intx *x, struct sto_view **nv,
                          struct qry_error *err)
{
	x->st = node_store_acquire(x->n);
	int vrc = sto_view_open(x->st, &x->view);
	if (vrc != 0) {
		node_store_release(x->n);
		x->st = NULL;
		return err->code = lora_errf(vrc, err->message,
		                             "cannot open a read view");
	}
	*nv = x->view;
	return 0;
}

/* Whether rc, a chunk's answer from intx_wait, settles its fate on
 * every node: another term took its entry (LORA_EUNAVAILABLE), or apply
 * refused it and recorded that (the codes of an invalid batch). Not the
 * codes of a node that stopped while its disk failed (apply gave up
 * without a record: the entry commits elsewhere), nor a lost answer. */
static int intx_fate_known(int rc)
{
	switch (rc) {
	case LORA_EIO:
	case LORA_ENOSPC:
	case LORA_ENOMEM:
	case LORA_ECLOSED:
	case LORA_EINTERNAL:
	case LORA_EUNKNOWN_OUTCOME:
		return 0;
	default:
		return 1;
	}
}

/* The statement's progress line on the leader, so that an operator sees
 * a long load move: when a chunk lands cfg.progress_ms or more after the
 * last line (or the start), and at the end (end: 1, rc its answer) when
 * the statement ran that long. */
static void intx_progress(struct intx *x, int end, int rc)
{
	uint64_t every = x->n->cfg.progress_ms, now = lora_now_ms();
	uint64_t ms = now > x->t0_ms ? now - x->t0_ms : 1;
	uint64_t since = now > x->log_at_ms ? now - x->log_at_ms : 0;
	if (every == 0 || (end || !x->log_at_ms ? ms : since) < every)
		return;
	x->log_at_ms = now;
	LOG_INFO("IN TRANSACTIONS %s%s: %llu transactions committed (%llu "
	         "changes) in %.1f s, %llu changes/s; the last at entry %llu",
	         !end ? "running"
	         : rc ? "stopped by "
	              : "done",
	         end && rc ? lora_err_code(rc) : "",
	         (unsigned long long)x->chunks, (unsigned long long)x->changes,
	         (double)ms / 1000,
	         (unsigned long long)(x->changes * 1000 / ms),
	         (unsigned long long)x->last_index);
}

/* Waits for the oldest chunk intx_propose proposed: 0 when it was
 * applied here (then x->last_index is its entry, and it counts in the
 * progress line, intx_progress); else its fate is
 * unknown and it is listed as pending (keep_unresolved), as propose_wait
 * does. */
static int intx_fly_wait(struct intx *x, struct qry_error *err)
{
	if (x->nfly == 0)
		return 0;
	struct intx_flight f = x->fly[0];
	x->nfly--;
	memmove(&x->fly[0], &x->fly[1], x->nfly * sizeof f);
	if (x->doomed) {
		lora_free(f.buf);
		snprintf(err->message, sizeof err->message, "%s",
		         x->doomed_why);
		return err->code = x->doomed;
	}
	/* the chunks already proposed get NODE_INTX_LAND_GRACE_MS past the
	 * statement's deadline to be applied, one grace for them all, so
	 * that a statement that ran out of time still knows whether they
	 * committed */
	x->deadline_ms = x->end_ms + NODE_INTX_LAND_GRACE_MS;
	int rc = intx_wait(x, f.index, f.term, err);
	if (rc && rc != LORA_EUNKNOWN_OUTCOME && !intx_fate_known(rc)) {
		char why[LORA_ERRMSG_BYTES];
		snprintf(why, sizeof why, "%s", err->message);
		rc = lora_errf(LORA_EUNKNOWN_OUTCOME, err->message,
		               "this node could not apply the chunk (%.300s): "
		               "it may still commit",
		               why);
	}
	if (rc == LORA_EUNKNOWN_OUTCOME) {
		keep_unresolved(x->n->writer, f.index, f.term, f.buf, f.len);
	} else if (rc != 0) {
		x->doomed = rc == LORA_EUNAVAILABLE ? rc : LORA_EINVAL;
		snprintf(x->doomed_why, sizeof x->doomed_why, "%s",
		         rc == LORA_EUNAVAILABLE
		             ? "leadership changed before the transaction "
		               "before it committed; it was not executed"
		             : "the transaction before it was refused, so it "
		               "was refused too");
	} else {
		x->last_index = f.index;
		x->chunks++;
		x->changes += f.changes;
		intx_progress(x, 0, 0);
	}
	lora_free(f.buf);
	return err->code = rc;
}

/* query.h's wait_chunk: the oldest chunk in flight applied here, and a
 * view that sees it (closing the one before). */
static int intx_land(void *arg, struct sto_view **nv, int *landed,
                     struct qry_error *err)
{
	struct intx *x = arg;
	intx_let_go(x); /* the engine reads its old view no more */
	if (intx_fly_wait(x, err) != 0)
		return err->code;
	*landed = 1;
	return intx_open_view(x, nv, err);
}

int node_writer_commit(struct lnode *n, const Lora__MutationBatch *b,
                       uint64_t *index, struct qry_error *err)
{
	struct intx x = {.n = n,
	                 .deadline_ms = lora_now_ms() + NODE_WRITE_TIMEOUT_MS};
	size_t len;
	uint8_t *buf = pack_batch(b, &len, err);
	return buf ? propose_wait(&x, buf, len, index, err) : err->code;
}

/* Proposes the packed batch buf in the writer's term: 0 with its entry,
 * else buf is freed and err says why (nothing was proposed). */
static int propose_only(struct intx *x, uint8_t *buf, size_t len,
                        uint64_t *index, uint64_t *term, struct qry_error *err)
{
	struct node_writer *wr = x->n->writer;
	pthread_mutex_lock(&wr->mu);
	int full = wr->n_props >= NODE_PENDING_PROPOSALS_MAX;
	pthread_mutex_unlock(&wr->mu);
	uint64_t leader = 0;
	int rc = full ? LORA_EUNAVAILABLE
	              : node_raft_propose(x->n, buf, len, wr->term, term, index,
	                                  &leader);
	if (rc) {
		lora_free(buf);
		return err->code = lora_errf(
		           LORA_EUNAVAILABLE, err->message,
		           "the chunk was not proposed (%s)",
		           full ? "too many writes waiting for the log"
		                : lora_err_code(rc));
	}
	return 0;
}

static int propose_wait(struct intx *x, uint8_t *buf, size_t len,
                        uint64_t *index_out, struct qry_error *err)
{
	struct node_writer *wr = x->n->writer;
	uint64_t term = 0, index = 0;
	if (propose_only(x, buf, len, &index, &term, err) != 0)
		return err->code;
	if (intx_wait(x, index, term, err) != 0) {
		/* its fate is unknown: listed as pending, so the next group
		 * runs over it instead of reusing its ids */
		keep_unresolved(wr, index, term, buf, len);
		lora_free(buf);
		return err->code;
	}
	lora_free(buf);
	*index_out = index;
	return 0;
}

/* The batches proposed before are applied (the statement's first chunk
 * reads the stored graph only): 0, or not in time. */
static int intx_wait_pending(struct lnode *n, uint64_t wait_ms);
int node_writer_drain(struct lnode *n)
{
	return intx_wait_pending(n, NODE_WAIT_TIMEOUT_MS);
}

static int intx_wait_pending(struct lnode *n, uint64_t wait_ms)
{
	struct node_writer *wr = n->writer;
	uint64_t last = 0;
	pthread_mutex_lock(&wr->mu);
	/* this term's proposals only: an earlier term's entry is at or below
	 * the lead barrier, or was overwritten and may never be reached */
	for (size_t i = 0; i < wr->n_props; i++)
		if (!wr->props[i].dead && wr->props[i].term == wr->term &&
		    wr->props[i].index > last)
			last = wr->props[i].index;
	pthread_mutex_unlock(&wr->mu);
	return last ? node_wait_applied(n, last, (int)wait_ms) : 0;
}

/* Answers w once its statement ran: with a request id, through an empty
 * entry that records it (a retry of a statement that ended is answered,
 * not run again); else at once. */
static void intx_answer(struct lnode *n, struct wreq *w, uint64_t index)
{
	const char *rid = w->req->request_id;
	if (rid == NULL || rid[0] == '\0') {
		wreq_done(w, index, NULL);
		return;
	}
	struct group *g = lora_calloc(1, sizeof *g);
	size_t len = 0;
	uint8_t *buf = NULL;
	if (g) {
		g->w[g->n++] = w;
		buf = pack_group(g, &len);
	}
	if (buf)
		propose_group(n, g, buf, len);
	else
		wreq_fail(w, LORA_ENOMEM, NULL, NULL);
	lora_free(buf);
	lora_free(g);
}

static void exec_intx(struct lnode *n, struct wreq *w)
{
	/* the time limit counts from the queueing (wreq.queued_ms); a
	 * statement that waited past it is refused with LORA_ETIMEOUT, not
	 * LORA_UNAVAILABLE, on which a node would queue it again afresh */
	uint64_t now = lora_now_ms(),
	         end = w->queued_ms + node_statement_time_ms(n, w->req);
	uint64_t wait = end <= now ? 0 : end - now;
	/* the wait had its 10 s, and the deadline did not cut it */
	int full = wait > NODE_WAIT_TIMEOUT_MS;
	if (full)
		wait = NODE_WAIT_TIMEOUT_MS;
	int late = !wait || intx_wait_pending(n, wait) != 0;
	if (late && full) {
		wreq_fail(w, LORA_EUNAVAILABLE,
		          "earlier writes did not apply in time; the statement "
		          "was not executed: retry",
		          NULL);
		return;
	}
	struct intx x = {.n = n,
	                 .st = node_store_acquire(n),
	                 .req = w->req,
	                 .t0_ms = lora_now_ms()};
	/* a retried request id is answered (its first attempt may have
	 * ended, or be in flight, while this one waited) before one that
	 * starts too late is refused. Attached to its first attempt's record
	 * entry, it shares that attempt's fate: chunks may have committed,
	 * so losing the entry answers UNKNOWN_OUTCOME, never "not executed:
	 * retry" (which would run the load again). */
	w->intx_committed = 1;
	if (dedup(n, x.st, w)) {
		intx_let_go(&x);
		return;
	}
	w->intx_committed = 0;
	if (late || lora_now_ms() >= end) {
		intx_let_go(&x);
		too_late(n, w);
		return;
	}
	int vrc = sto_view_open(x.st, &x.view);
	if (vrc != 0) {
		intx_let_go(&x);
		wreq_fail(w, vrc, "cannot open a read view", NULL);
		return;
	}
	char import_dir[NODE_PATH_BYTES_MAX];
	node_config_import_dir(&n->cfg, import_dir, sizeof import_dir);
	struct qry_request q = {
	    .query = w->req->query,
	    .params = w->req->params,
	    .view = x.view,
	    .mode = w->req->mode,
	    .import_dir = import_dir,
	    .batch_bytes_max = NODE_BATCH_BYTES_MAX,
	    .propose_chunk = intx_propose,
	    .wait_chunk = intx_land,
	    .commit_arg = &x,
	};
	node_qry_limits(n, w->req, &q.limits);
	q.limits.time_from_ms = w->queued_ms;
	x.deadline_ms = x.end_ms = end;
	uint64_t index = sto_view_applied_index(x.view);
	struct qry_error err = {0};
	struct qry_cursor *c = NULL;
	int rc = qry_open(&q, &c, &err);
	if (rc == 0)
		rc = take_rows(w, c, &err);
	qry_cursor_free(c);
	intx_let_go(&x);
	/* a statement that failed while chunks were in flight (an error in
	 * its input: the engine waits for them on a chunk's own error):
	 * their fate, so that "committed" below is exact */
	int unknown = 0;
	while (x.nfly) {
		struct qry_error fe = {0};
		unknown |= intx_fly_wait(&x, &fe) == LORA_EUNKNOWN_OUTCOME;
	}
	if (unknown && rc != 0 && w->resp->error == NULL) {
		/* it may still commit: the answer must not say "not
		 * executed" */
		char msg[LORA_ERRMSG_BYTES];
		snprintf(msg, sizeof msg,
		         "%.300s (and a transaction of the statement was in "
		         "flight with no known outcome: it may still commit)",
		         err.code ? err.message : lora_strerror(rc));
		rc = err.code = LORA_EUNKNOWN_OUTCOME;
		snprintf(err.message, sizeof err.message, "%s", msg);
	}
	if (x.last_index)
		index = x.last_index;
	w->intx_committed = x.last_index != 0;
	if (rc == LORA_EUNAVAILABLE && !w->intx_committed &&
	    lora_now_ms() >= end) {
		/* its first chunk could not commit (leadership moved, the
		 * log was full) and its time ran out: requeued, it would
		 * start afresh past the time the node that passed it on
		 * waits for it */
		char msg[LORA_ERRMSG_BYTES];
		snprintf(msg, sizeof msg,
		         "the statement's time limit of %llu ms ran out before "
		         "its first transaction could commit (leadership moved "
		         "or the log was full); it was not executed",
		         (unsigned long long)node_statement_time_ms(n, w->req));
		rc = err.code = LORA_ETIMEOUT;
		node_resp_error(w->resp, rc, msg, 0, 0);
	}
	if (rc == LORA_EUNAVAILABLE && w->intx_committed) {
		/* a later chunk was refused: the statement ran in part, and
		 * running it again would apply the committed chunks twice */
		char msg[LORA_ERRMSG_BYTES];
		snprintf(msg, sizeof msg,
		         "a transaction of the statement could not commit "
		         "after earlier ones did (they stay committed); it is "
		         "not run again: %.380s",
		         w->resp->error ? w->resp->error->message
		                        : err.message);
		rc = err.code = LORA_EUNKNOWN_OUTCOME;
		node_resp_error(w->resp, rc, msg, err.line, err.column);
	}
	intx_progress(&x, 1, rc);
	if (rc) {
		node_resp_set_bookmark(w->resp, index);
		if (w->resp->error == NULL)
			node_resp_error(w->resp, rc,
			                err.code ? err.message
			                         : lora_strerror(rc),
			                err.line, err.column);
		wreq_settle(w, rc, NULL);
		return;
	}
	intx_answer(n, w, index);
}

uint64_t node_forward_wait_ms(const struct lnode *n, uint64_t time_ms)
{
	uint64_t s = n->cfg.statement_time_ms ? n->cfg.statement_time_ms
	                                      : NODE_STATEMENT_TIME_MS_MAX;
	return NODE_FORWARD_WAIT_MS + lora_min_limit(s, time_ms) + s +
	       NODE_INTX_LAND_GRACE_MS;
}

int node_may_resend(const char *request_id, const char *bytes, size_t len)
{
	return request_id && request_id[0] &&
	       !lora_says_transactions(bytes, len);
}

/* Whether w has CALL { ... } IN TRANSACTIONS (a cheap look first; the
 * parse under the statement's limits and the node's budget). */
static int is_intx(struct lnode *n, const struct wreq *w)
{
	int yes = 0;
	if (strcasestr(w->req->query, "TRANSACTIONS") == NULL)
		return 0;
	struct qry_limits l;
	node_qry_limits(n, w->req, &l);
	qry_in_transactions_lim(w->req->query, &l, &yes, NULL);
	return yes;
}

/* Writer thread only: frees proposals that are applied or void. */
static void prune(struct node_writer *wr)
{
	pthread_mutex_lock(&wr->mu);
	for (size_t i = 0; i < wr->n_props;) {
		struct proposal *p = &wr->props[i];
		/* only this term's batches are ever pending (exec_group): the
		 * others are freed; this term's stay, since the next group runs
		 * over them (dropping one made it reuse its ids) */
		if (p->batch && p->term != wr->term) {
			lora__mutation_batch__free_unpacked(p->batch,
			                                    &lora_pb_allocator);
			p->batch = NULL;
		}
		if (p->dead || (p->batch == NULL && p->reqs == NULL))
			prop_remove(wr, i);
		else
			i++;
	}
	pthread_mutex_unlock(&wr->mu);
}

size_t nwr_take(struct node_writer *wr, struct wreq **ws, size_t max,
                uint64_t deadline_ms)
{
	LORA_ASSERT(max <= NODE_WRITE_GROUP_MAX);
	uint64_t expiry = nwr_next_expiry_ms(wr);
	size_t cnt = 0;
	struct nq_link *l = nq_take_done(
	    &wr->q, max, expiry < deadline_ms ? expiry : deadline_ms, &cnt);
	for (size_t i = 0; l; l = l->next)
		ws[i++] = (struct wreq *)l;
	return cnt;
}

/* Leader ready to execute: its first entry of the term is applied. */
static int leader_ready(struct lnode *n)
{
	pthread_mutex_lock(&n->status_mu);
	int leader = n->rs.role == REP_LEADER;
	uint64_t barrier = n->lead_barrier;
	n->writer->term = n->rs.term;
	pthread_mutex_unlock(&n->status_mu);
	if (!leader)
		return LORA_EUNAVAILABLE;
	if (node_wait_applied(n, barrier, NODE_WAIT_TIMEOUT_MS) != 0)
		return LORA_EUNAVAILABLE;
	return 0;
}

/* Build steps proposed and not yet applied on the leader: one, so that a
 * user write, executed at once, waits behind at most one step in the log
 * (~0.1 s at 128-d; two doubled that wait, and a loaded ASan run of
 * integration_vector_build saw a write time out behind two steps of
 * ef_construction 1024). The next step is proposed within
 * NODE_BUILD_POLL_MS of the leader applying one; the followers, which do
 * the same work, receive it while still applying theirs. */
#define NODE_BUILD_STEPS_AHEAD 1
/* How often the writer looks at the apply while steps are in flight and
 * no write comes: a step takes ~100 ms, so this wastes no step. */
#define NODE_BUILD_POLL_MS 5

/* The empty entries proposed for a build (writer thread only). */
struct build_pace {
	uint64_t idx[NODE_BUILD_STEPS_AHEAD]; /* in flight, oldest first */
	size_t n;
	struct nwr_build_watch watch;
};

uint64_t nwr_last_waiting(struct node_writer *wr)
{
	uint64_t last = 0;
	pthread_mutex_lock(&wr->mu);
	for (size_t i = 0; i < wr->n_props; i++)
		if (!wr->props[i].dead && wr->props[i].index > last)
			last = wr->props[i].index;
	pthread_mutex_unlock(&wr->mu);
	return last;
}

int nwr_build_stalled(struct nwr_build_watch *w, uint64_t pos, size_t applied,
                      int *warn)
{
	*warn = 0;
	if (!w->seen || pos != w->pos) {
		*w = (struct nwr_build_watch){.pos = pos, .seen = 1};
		return 0;
	}
	w->still += applied;
	if (w->still < NODE_BUILD_STALL_STEPS)
		return 0;
	*warn = !w->stalled;
	w->stalled = 1;
	return 1;
}

/* 1 when the build has not moved over NODE_BUILD_STALL_STEPS of the
 * writer's applied build entries (k more of them were applied): warned
 * once, and no more empty entries until it moves. */
static int build_stuck(struct build_pace *bp, struct sto_store *st, size_t k)
{
	int warn;
	int stuck =
	    nwr_build_stalled(&bp->watch, sto_hnsw_build_pos(st), k, &warn);
	if (warn)
		LOG_WARN("vector index build: its cursor did not move over "
		         "%d applied build steps; no more empty build entries "
		         "are proposed until it moves (see the apply errors)",
		         NODE_BUILD_STALL_STEPS);
	return stuck;
}

/* A vector index whose graph is being built (storage/hnsw_store.c) takes
 * one build step with every applied entry: while the leader has nothing
 * else to write, it proposes empty batches, up to NODE_BUILD_STEPS_AHEAD
 * not yet applied here, without waiting for them (a write that comes in
 * meanwhile is executed and proposed at once, behind that step), so a
 * build also proceeds on an idle cluster. 1 while a build is under way (the
 * writer then polls its queue every NODE_BUILD_POLL_MS to propose the next
 * step). */
static int propose_build_steps(struct lnode *n, struct build_pace *bp)
{
	uint64_t applied = node_applied_index(n);
	size_t k = 0;
	while (k < bp->n && bp->idx[k] <= applied)
		k++;
	memmove(bp->idx, bp->idx + k, (bp->n - k) * sizeof bp->idx[0]);
	bp->n -= k;
	struct sto_store *st = node_store_try_acquire(n);
	int pop = st && sto_hnsw_populating(st);
	int stuck = pop && build_stuck(bp, st, k);
	if (st)
		node_store_release(n);
	if (stuck)
		return 0;
	if (!pop || leader_ready(n) != 0) {
		bp->n = 0;
		return 0;
	}
	static const uint8_t empty[1]; /* an empty batch packs to 0 bytes */
	while (bp->n < NODE_BUILD_STEPS_AHEAD) {
		uint64_t term = 0, index = 0, leader = 0;
		int rc = node_raft_propose(n, empty, 0, n->writer->term, &term,
		                           &index, &leader);
		if (rc) {
			LOG_DEBUG("vector index build step: %s",
			          lora_err_code(rc));
			break;
		}
		bp->idx[bp->n++] = index;
	}
	return 1;
}

static void *writer_main(void *arg)
{
	struct lnode *n = arg;
	pthread_setname_np(pthread_self(), "lora-writer");
	struct wreq *ws[NODE_WRITE_GROUP_MAX];
	struct build_pace bp;
	memset(&bp, 0, sizeof bp);
	int building = 0;
	while (!atomic_load(&n->stopping)) {
		prune(n->writer);
		nwr_expire(n->writer, lora_now_ms());
		/* during a build, look at its steps again soon; else wait
		 * for a write, a proposal's expiry or NODE_WRITER_IDLE_MS */
		uint64_t until =
		    lora_now_ms() +
		    (building ? NODE_BUILD_POLL_MS : NODE_WRITER_IDLE_MS);
		size_t cnt =
		    nwr_take(n->writer, ws, NODE_WRITE_GROUP_MAX, until);
		if (cnt == 0) {
			/* while its own entries are in flight, one may start
			 * a build: keep looking (not just once) */
			building =
			    propose_build_steps(n, &bp) ||
			    nwr_last_waiting(n->writer) > node_applied_index(n);
			continue;
		}
		/* these writes may start a build (CREATE VECTOR INDEX): the
		 * next idle wait is short, and sees */
		building = 1;
		if (leader_ready(n) != 0) {
			for (size_t i = 0; i < cnt; i++)
				wreq_fail(
				    ws[i], LORA_EUNAVAILABLE,
				    "not the leader (any more): the write was "
				    "not executed, retry",
				    NULL);
			continue;
		}
		/* a statement IN TRANSACTIONS, an explicit transaction
		 * (txn.c) and a decided batch (a user change apply may still
		 * refuse: it must not take other statements down with it) run
		 * alone; order is kept */
		size_t k = 0;
		while (k < cnt && !is_intx(n, ws[k]) && !ws[k]->req->tx &&
		       !ws[k]->req->batch)
			k++;
		if (k == 0 && ws[0]->req->tx) {
			requeue_front(n->writer, ws + 1, cnt - 1);
			node_tx_serve(n, ws[0]->req);
			wreq_settle(ws[0], 0, NULL);
		} else if (k == 0 && ws[0]->req->batch) {
			requeue_front(n->writer, ws + 1, cnt - 1);
			exec_group(n, ws, 1);
		} else if (k == 0) {
			requeue_front(n->writer, ws + 1, cnt - 1);
			exec_intx(n, ws[0]);
		} else {
			requeue_front(n->writer, ws + k, cnt - k);
			exec_group(n, ws, k);
		}
	}
	return NULL;
}

void nwr_submit(struct node_writer *wr, const struct node_exec_req *req,
                Lora__Response *resp, node_write_done_fn fn, void *arg)
{
	struct wreq *w = lora_calloc(1, sizeof *w);
	if (w == NULL) {
		node_resp_error(resp, LORA_ENOMEM, "out of memory", 0, 0);
		fn(arg, LORA_ENOMEM);
		return;
	}
	*w = (struct wreq){.req = req,
	                   .resp = resp,
	                   .fn = fn,
	                   .arg = arg,
	                   .queued_ms = lora_now_ms()};
	int rc = nq_push(&wr->q, &w->link, NQ_NOW);
	if (rc)
		wreq_fail(w, LORA_EUNAVAILABLE,
		          rc == LORA_ELIMIT ? "write queue full: not executed"
		                            : "node stopping: not executed",
		          NULL);
}

void node_write_async(struct lnode *n, const struct node_exec_req *req,
                      Lora__Response *resp, node_write_done_fn fn, void *arg)
{
	struct node_writer *wr = n->writer;
	if (wr == NULL || atomic_load(&n->stopping)) {
		node_resp_error(resp, LORA_EUNAVAILABLE,
		                "node stopping: not executed", 0, 0);
		fn(arg, LORA_EUNAVAILABLE);
		return;
	}
	nwr_submit(wr, req, resp, fn, arg);
}

static void write_waited(void *arg, int rc)
{
	node_call_finish(arg, rc, 0, 0);
}

void node_write(struct lnode *n, const struct node_exec_req *req,
                Lora__Response *resp)
{
	struct node_call call;
	node_call_init(&call);
	node_write_async(n, req, resp, write_waited, &call);
	node_call_wait(&call, -1);
	node_call_destroy(&call);
}

int nwr_init(struct node_writer *wr, char *errmsg)
{
	memset(wr, 0, sizeof *wr);
	if (nq_init(&wr->q, NODE_WRITE_QUEUE_MAX) != 0)
		return lora_errf(LORA_EINTERNAL, errmsg,
		                 "cannot make the write queue");
	pthread_mutex_init(&wr->mu, NULL);
	pthread_cond_init(&wr->applied_cond, NULL);
	return 0;
}

void nwr_destroy(struct node_writer *wr)
{
	pthread_mutex_destroy(&wr->mu);
	pthread_cond_destroy(&wr->applied_cond);
	nq_destroy(&wr->q);
}

void nwr_close(struct node_writer *wr)
{
	pthread_mutex_lock(&wr->mu);
	wr->closing = 1;
	pthread_cond_broadcast(&wr->applied_cond);
	pthread_mutex_unlock(&wr->mu);
	nq_close(&wr->q); /* refuses new writes, wakes a nwr_take */
}

void nwr_answer_left(struct node_writer *wr)
{
	struct wdone later = {NULL};
	size_t cnt;
	struct nq_link *l = nq_take(&wr->q, SIZE_MAX, NQ_NOW, &cnt);
	nq_done(&wr->q, cnt);
	pthread_mutex_lock(&wr->mu);
	for (struct nq_link *nx; l; l = nx) {
		nx = l->next;
		wreq_fail((struct wreq *)l, LORA_EUNAVAILABLE,
		          "node stopping: not executed", &later);
	}
	for (size_t i = 0; i < wr->n_props; i++)
		for (struct wreq *w = wr->props[i].reqs, *nx; w; w = nx) {
			nx = w->next;
			wreq_fail(w, LORA_EUNKNOWN_OUTCOME,
			          "node stopping before the answer", &later);
		}
	while (wr->n_props)
		prop_remove(wr, 0);
	pthread_mutex_unlock(&wr->mu);
	wdone_run(&later);
}

int node_writer_start(struct lnode *n, char *errmsg)
{
	struct node_writer *wr = lora_calloc(1, sizeof *wr);
	if (wr == NULL)
		return lora_errf(LORA_ENOMEM, errmsg,
		                 "out of memory for the writer");
	int rc = nwr_init(wr, errmsg);
	if (rc) {
		lora_free(wr);
		return rc;
	}
	n->writer = wr;
	rc = node_thread_start(&wr->thread, writer_main, n, "writer", errmsg);
	wr->running = rc == 0;
	return rc;
}

/* After the raft and apply loops stopped: fails whoever still waits. */
void node_writer_stop(struct lnode *n)
{
	struct node_writer *wr = n->writer;
	if (wr == NULL)
		return;
	nwr_close(wr);
	if (wr->running)
		pthread_join(wr->thread, NULL);
	wr->running = 0;
	nwr_answer_left(wr);
}

/* After the HTTP and native servers stopped (they may still call
 * node_write_async until then, which refuses once stopped). */
void node_writer_free(struct lnode *n)
{
	struct node_writer *wr = n->writer;
	if (wr == NULL)
		return;
	n->writer = NULL;
	nwr_destroy(wr);
	lora_free(wr);
}
