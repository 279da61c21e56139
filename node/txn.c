/*
 * txn.c - explicit write transactions on the leader (Bolt BEGIN in write
 * mode, HTTP POST /tx and the native BeginRequest through http_tx.c;
 * docs/transactions.md).
 *
 * A transaction is the writer's while it lasts: BEGIN queues it like a
 * write, and when the writer reaches it (after the writes queued before
 * it, and once its own earlier proposals are applied) the writer thread
 * serves the transaction alone until it ends: no other write executes in
 * between, so the transaction is serializable. Its statements run on one
 * read view of the applied state with the transaction's own earlier
 * batches laid over it (query.h's pending batches): reads see the
 * transaction's writes, nobody else does. COMMIT proposes every batch as
 * ONE log entry and waits until it is applied here; a failed statement,
 * ROLLBACK, an idle gap over the transaction's idle limit, or losing the
 * client rolls back, and nothing was ever proposed.
 *
 * Statements are carried between the client's thread and the writer's
 * through the transaction (mutex + condition): one command at a time, the
 * client waits for its answer. The struct is shared: freed by whichever
 * side lets go last.
 *
 * Every wait here is on the transaction's condition until a deadline
 * (CLOCK_MONOTONIC), woken by what it waits for: a command, the writer
 * taking it up or ending it, and, for the transaction being served, the
 * raft loop publishing a change of role or term and the node stopping
 * (node_tx_wake). Nothing wakes on a period.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "node_int.h"
#include "thread.h"

enum { TX_QUEUED = 0, TX_ACTIVE, TX_ENDED };
enum { CMD_NONE = 0, CMD_RUN, CMD_COMMIT, CMD_ROLLBACK };

/* Wake-ups of a served transaction's wait for a command (for tests:
 * node_tx_test_waits). */
static atomic_ulong tx_waits;

struct node_tx {
	struct lnode *n;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int refs;
	int state;
	int end_rc; /* why it ended (0: committed or rolled back) */
	char end_msg[LORA_ERRMSG_BYTES];
	uint32_t idle_ms;
	/* the transaction's memory budget: its kept batches plus the
	 * statement running (0: no limit but NODE_BATCH_BYTES_MAX) */
	uint64_t mem_bytes_max;
	uint64_t served_ms; /* when the writer took it up (tx_loop) */
	uint64_t term;      /* the leader's term then */
	/* the command in flight */
	int cmd;
	int cmd_done;
	const struct node_exec_req *cmd_req;
	Lora__Response *cmd_resp;
	uint64_t commit_index;
	/* the queued write that carries the transaction to the writer */
	struct node_exec_req wreq;
	Lora__Response *wresp;
	/* writer thread only */
	Lora__MutationBatch **batches;
	size_t n_batches, cap_batches;
	size_t bytes;
};

static void tx_unref(struct node_tx *t)
{
	pthread_mutex_lock(&t->mu);
	int last = --t->refs == 0;
	pthread_mutex_unlock(&t->mu);
	if (!last)
		return;
	if (t->wresp)
		lora__response__free_unpacked(t->wresp, &lora_pb_allocator);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cond);
	lora_free(t);
}

/* Ends t (mu held) with rc and a message. */
static void tx_end_locked(struct node_tx *t, int rc, const char *msg)
{
	if (t->state == TX_ENDED)
		return;
	t->state = TX_ENDED;
	t->end_rc = rc;
	snprintf(t->end_msg, sizeof t->end_msg, "%s", msg ? msg : "");
	pthread_cond_broadcast(&t->cond);
}

/* node_write_async's completion: the writer let go of the transaction
 * (or never took it: refused at once). */
static void tx_released(void *arg, int rc)
{
	struct node_tx *t = arg;
	pthread_mutex_lock(&t->mu);
	if (t->state != TX_ENDED)
		tx_end_locked(t, rc ? rc : LORA_EUNAVAILABLE,
		              t->wresp && t->wresp->error
		                  ? t->wresp->error->message
		                  : "the writer did not take the transaction");
	pthread_mutex_unlock(&t->mu);
	tx_unref(t);
}

int node_tx_begin(struct lnode *n, uint32_t idle_ms, uint64_t mem_bytes_max,
                  struct node_tx **out, char *errmsg)
{
	*out = NULL;
	struct node_tx *t = lora_calloc(1, sizeof *t);
	Lora__Response *r = node_resp_new();
	if (t == NULL || r == NULL) {
		lora_free(t);
		if (r)
			lora__response__free_unpacked(r, &lora_pb_allocator);
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	}
	pthread_mutex_init(&t->mu, NULL);
	if (node_cond_init(&t->cond) != 0) {
		pthread_mutex_destroy(&t->mu);
		lora_free(t);
		lora__response__free_unpacked(r, &lora_pb_allocator);
		return lora_errf(LORA_EINTERNAL, errmsg,
		                 "cannot make a condition");
	}
	t->n = n;
	t->refs = 2; /* the client and the writer */
	t->idle_ms = idle_ms ? idle_ms : NODE_TX_IDLE_MS;
	if (t->idle_ms > NODE_TX_IDLE_MS_MAX)
		t->idle_ms = NODE_TX_IDLE_MS_MAX;
	t->mem_bytes_max = n->cfg.statement_memory_bytes;
	if (mem_bytes_max &&
	    (t->mem_bytes_max == 0 || mem_bytes_max < t->mem_bytes_max))
		t->mem_bytes_max = mem_bytes_max;
	t->wresp = r;
	t->wreq = (struct node_exec_req){
	    .query = "", .kind = NODE_STMT_WRITE, .tx = t};
	node_write_async(n, &t->wreq, t->wresp, tx_released, t);
	uint64_t deadline = lora_now_ms() + NODE_TX_BEGIN_WAIT_MS;
	pthread_mutex_lock(&t->mu);
	while (t->state == TX_QUEUED &&
	       node_cond_wait_until(&t->cond, &t->mu, deadline) == 0)
		;
	int rc = 0;
	if (t->state == TX_QUEUED) {
		/* still queued: the writer ends it as soon as it gets there */
		t->cmd = CMD_ROLLBACK;
		rc = lora_errf(LORA_EUNAVAILABLE, errmsg,
		               "the writer was busy for %d ms (other "
		               "transactions): not begun, retry",
		               NODE_TX_BEGIN_WAIT_MS);
	} else if (t->state == TX_ENDED) {
		rc = lora_errf(t->end_rc ? t->end_rc : LORA_EUNAVAILABLE,
		               errmsg, "transaction not begun: %s", t->end_msg);
	}
	pthread_mutex_unlock(&t->mu);
	if (rc) {
		tx_unref(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* Client side: hands cmd to the writer and waits for its answer. */
static int tx_call(struct node_tx *t, int cmd, const struct node_exec_req *req,
                   Lora__Response *resp, char *errmsg)
{
	pthread_mutex_lock(&t->mu);
	if (t->state == TX_ENDED) {
		int rc = t->end_rc ? t->end_rc : LORA_EINVAL;
		lora_errf(rc, errmsg, "the transaction has ended: %s",
		          t->end_msg[0] ? t->end_msg : "rolled back");
		pthread_mutex_unlock(&t->mu);
		return rc;
	}
	t->cmd = cmd;
	t->cmd_req = req;
	t->cmd_resp = resp;
	t->cmd_done = 0;
	pthread_cond_broadcast(&t->cond);
	while (!t->cmd_done && t->state != TX_ENDED)
		pthread_cond_wait(&t->cond, &t->mu);
	int rc = 0;
	if (!t->cmd_done) {
		rc = t->end_rc ? t->end_rc : LORA_EUNAVAILABLE;
		lora_errf(rc, errmsg, "%s", t->end_msg);
	} else if (cmd == CMD_COMMIT && t->end_rc) {
		rc = t->end_rc;
		lora_errf(rc, errmsg, "%s", t->end_msg);
	}
	t->cmd = CMD_NONE;
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void node_tx_run(struct node_tx *t, const struct node_exec_req *req,
                 Lora__Response *resp)
{
	char msg[LORA_ERRMSG_BYTES];
	int rc = tx_call(t, CMD_RUN, req, resp, msg);
	if (rc && resp->error == NULL)
		node_resp_error(resp, rc, msg, 0, 0);
}

int node_tx_commit(struct node_tx *t, uint64_t *index, char *errmsg)
{
	int rc = tx_call(t, CMD_COMMIT, NULL, NULL, errmsg);
	*index = t->commit_index;
	tx_unref(t);
	return rc;
}

void node_tx_rollback(struct node_tx *t)
{
	char msg[LORA_ERRMSG_BYTES];
	tx_call(t, CMD_ROLLBACK, NULL, NULL, msg);
	tx_unref(t);
}

int node_tx_rows(struct qry_cursor *c, Lora__Response *resp,
                 struct qry_error *err)
{
	const char *const *names;
	size_t nc = qry_cursor_columns(c, &names), bytes = 0;
	int rc = node_resp_set_columns(resp, names, nc);
	for (int done = 0; rc == 0 && !done;) {
		const Lora__Value *const *row;
		rc = qry_cursor_next(c, &row, &done, err);
		if (rc == 0 && !done && resp->n_rows == NODE_TX_ROWS_MAX)
			rc = err->code = lora_errf(
			    LORA_ELIMIT, err->message,
			    "a statement in a transaction answers at most %d "
			    "rows (all at once): add a LIMIT, or read outside "
			    "the transaction (streamed)",
			    NODE_TX_ROWS_MAX);
		else if (rc == 0 && !done)
			rc = node_resp_add_row(resp, row, nc);
		if (rc == 0 && !done)
			bytes += lora__row__get_packed_size(
			    resp->rows[resp->n_rows - 1]);
		if (rc == 0 && bytes > NODE_TX_BYTES_MAX)
			rc = err->code = lora_errf(
			    LORA_ELIMIT, err->message,
			    "a statement in a transaction answers at most %d "
			    "bytes of rows (all at once): add a LIMIT, return "
			    "less, or read outside the transaction (streamed)",
			    NODE_TX_BYTES_MAX);
	}
	return rc;
}

/* ---- the writer's side -------------------------------------------------- */

static int node_tx_keep_batch(struct node_tx *t, const Lora__MutationBatch *b,
                              struct qry_error *err);

/* Runs one statement over the view and the transaction's batches; keeps
 * the batch it made. 0, or an error (in resp) that ends the transaction. */
static int tx_exec(struct node_tx *t, struct sto_view *view,
                   const struct node_exec_req *req, Lora__Response *resp)
{
#ifdef LORA_TEST_HOOKS
	node_slow_testing(req->query);
#endif
	struct lnode *n = t->n;
	char import_dir[NODE_PATH_BYTES_MAX];
	node_config_import_dir(&n->cfg, import_dir, sizeof import_dir);
	struct qry_request q = {
	    .query = req->query,
	    .params = req->params,
	    .view = view,
	    .pending = (const Lora__MutationBatch *const *)t->batches,
	    .n_pending = t->n_batches,
	    .mode = req->mode,
	    .explicit_tx = 1,
	    .import_dir = import_dir,
	    .batch_bytes_max = NODE_BATCH_BYTES_MAX - t->bytes,
	};
	node_qry_limits(n, req, &q.limits);
	node_qry_limits_until(&q.limits, t->served_ms + node_tx_life_ms());
	if (t->mem_bytes_max) /* what the kept batches left of the budget */
		q.limits.mem_bytes_max = t->bytes < t->mem_bytes_max
		                             ? t->mem_bytes_max - t->bytes
		                             : 1;
	struct qry_error err = {0};
	struct qry_cursor *c = NULL;
	int rc = qry_open(&q, &c, &err);
	if (rc == 0)
		rc = node_tx_rows(c, resp, &err);
	const Lora__MutationBatch *b = rc ? NULL : qry_cursor_batch(c);
	if (b && b->n_mutations) {
		if (node_batch_forbidden(req, b, err.message))
			rc = err.code = LORA_EFORBIDDEN;
		else if (node_batch_too_deep(b, err.message))
			rc = err.code = LORA_ELIMIT;
		else
			rc = node_tx_keep_batch(t, b, &err);
	}
	if (rc && resp->error == NULL)
		node_resp_error(resp, rc, err.code ? err.message : NULL,
		                err.line, err.column);
	if (c)
		qry_cursor_free(c);
	return rc;
}

/* Keeps a copy of b among the transaction's batches (the statement's
 * cursor owns b). */
static int node_tx_keep_batch(struct node_tx *t, const Lora__MutationBatch *b,
                              struct qry_error *err)
{
	size_t len = lora_batch_packed_size(b);
	if (t->mem_bytes_max && t->bytes + len > t->mem_bytes_max)
		return err->code = lora_errf(
		           LORA_EMEMORY, err->message,
		           "the transaction's writes hold more than %llu bytes "
		           "(its memory budget)",
		           (unsigned long long)t->mem_bytes_max);
	if (t->bytes + len > NODE_BATCH_BYTES_MAX)
		return err->code = lora_errf(
		           LORA_ELIMIT, err->message,
		           "the transaction's writes pack to more than %u "
		           "bytes (one log entry)",
		           (unsigned)NODE_BATCH_BYTES_MAX);
	if (t->n_batches == t->cap_batches) {
		size_t cap = t->cap_batches ? 2 * t->cap_batches : 8;
		void *p = lora_realloc(t->batches, cap * sizeof *t->batches);
		if (p == NULL)
			return err->code = LORA_ENOMEM;
		t->batches = p;
		t->cap_batches = cap;
	}
	uint8_t *buf = lora_malloc(len ? len : 1);
	if (buf == NULL)
		return err->code = LORA_ENOMEM;
	lora_batch_pack_exact(b, buf, len);
	Lora__MutationBatch *copy =
	    lora__mutation_batch__unpack(&lora_pb_allocator, len, buf);
	lora_free(buf);
	if (copy == NULL)
		return err->code = LORA_ENOMEM;
	t->batches[t->n_batches++] = copy;
	t->bytes += len;
	return 0;
}

/* Every batch as one (borrowing their mutations): lora_free .mutations. */
static int tx_merge(struct node_tx *t, Lora__MutationBatch *all)
{
	size_t nm = 0;
	for (size_t i = 0; i < t->n_batches; i++)
		nm += t->batches[i]->n_mutations;
	lora__mutation_batch__init(all);
	all->mutations = lora_calloc(nm ? nm : 1, sizeof *all->mutations);
	if (all->mutations == NULL)
		return LORA_ENOMEM;
	for (size_t i = 0; i < t->n_batches; i++)
		for (size_t k = 0; k < t->batches[i]->n_mutations; k++)
			all->mutations[all->n_mutations++] =
			    t->batches[i]->mutations[k];
	return 0;
}

/* A transaction has no requestId to retry with: the writer's message for
 * an unknown outcome would mislead. */
static const char tx_unknown_msg[] =
    "the commit's outcome is unknown (no quorum answered in time, or this "
    "node stepped down): it may have committed; read before running the "
    "transaction again";

/* The view goes before the wait: a store swap waiting for its readers
 * must not hold up the apply of this very entry. */
static void tx_commit_now(struct node_tx *t, struct sto_view **view,
                          struct sto_store **st)
{
	struct qry_error err = {0};
	int rc = 0;
	uint64_t index = sto_view_applied_index(*view);
	sto_view_close(*view);
	node_store_release(t->n);
	*view = NULL;
	*st = NULL;
	if (t->n_batches) {
		Lora__MutationBatch all;
		rc = tx_merge(t, &all);
		if (rc == 0)
			rc = node_writer_commit(t->n, &all, &index, &err);
		lora_free(all.mutations);
	}
	pthread_mutex_lock(&t->mu);
	t->commit_index = index;
	t->cmd_done = 1;
	tx_end_locked(t, rc,
	              rc == LORA_EUNKNOWN_OUTCOME ? tx_unknown_msg
	              : rc                        ? err.message
	                                          : "committed");
	pthread_mutex_unlock(&t->mu);
}

/* The longest a transaction lives from its start: NODE_TX_LIFE_MS_MAX, or
 * LORA_TX_LIFE_MS_TESTING below it in a test build. */
uint64_t node_tx_life_ms(void)
{
#ifdef LORA_TEST_HOOKS
	const char *e = getenv("LORA_TX_LIFE_MS_TESTING");
	if (e && atol(e) > 0 && atol(e) < NODE_TX_LIFE_MS_MAX)
		return (uint64_t)atol(e);
#endif
	return NODE_TX_LIFE_MS_MAX;
}

/* Whether this node still leads in the term the transaction began in. */
static int tx_still_leads(struct node_tx *t)
{
	struct rep_status st;
	node_status_get(t->n, &st);
	return st.role == REP_LEADER && st.term == t->term;
}

/* Waits for the client's next command (mu held): CMD_NONE (with *why)
 * when the idle limit or the whole-transaction limit passed, leadership
 * was lost (its writes could not commit: end it now, not at COMMIT), or
 * the node stops. */
static int tx_wait_cmd(struct node_tx *t, const char **why)
{
	uint64_t deadline = lora_now_ms() + t->idle_ms;
	uint64_t life_end = t->served_ms + node_tx_life_ms();
	*why = "no request within the transaction's idle limit";
	if (life_end < deadline)
		deadline = life_end;
	while (t->cmd == CMD_NONE || t->cmd_done) {
		if (lora_now_ms() >= life_end)
			*why = "the transaction lasted its longest "
			       "(NODE_TX_LIFE_MS_MAX)";
		if (!tx_still_leads(t)) {
			*why = "this node stopped leading: retry on the new "
			       "leader";
			return CMD_NONE;
		}
		if (lora_now_ms() >= deadline || atomic_load(&t->n->stopping))
			return CMD_NONE;
		/* woken by a command, node_tx_wake or the deadline */
		(void)node_cond_wait_until(&t->cond, &t->mu, deadline);
		atomic_fetch_add(&tx_waits, 1);
	}
	return t->cmd;
}

unsigned long node_tx_test_waits(void)
{
	return atomic_load(&tx_waits);
}

int node_tx_ended(struct node_tx *t)
{
	pthread_mutex_lock(&t->mu);
	int ended = t->state == TX_ENDED;
	pthread_mutex_unlock(&t->mu);
	return ended;
}

/* The transaction the writer serves now (n->tx_mu held both ways). */
static void tx_served(struct lnode *n, struct node_tx *t)
{
	pthread_mutex_lock(&n->tx_mu);
	n->tx_served = t;
	pthread_mutex_unlock(&n->tx_mu);
}

void node_tx_wake(struct lnode *n)
{
	pthread_mutex_lock(&n->tx_mu);
	struct node_tx *t = n->tx_served;
	if (t) { /* alive: the writer holds it until tx_served(n, NULL) */
		pthread_mutex_lock(&t->mu);
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->mu);
	}
	pthread_mutex_unlock(&n->tx_mu);
}

static void tx_loop(struct node_tx *t, struct sto_view **view,
                    struct sto_store **st)
{
	pthread_mutex_lock(&t->mu);
	struct rep_status rs;
	node_status_get(t->n, &rs);
	t->served_ms = lora_now_ms();
	t->term = rs.term;
	for (;;) {
		const char *why;
		int cmd = tx_wait_cmd(t, &why);
		if (cmd == CMD_NONE) {
			char m[160];
			snprintf(m, sizeof m, "rolled back: %s", why);
			tx_end_locked(t,
			              tx_still_leads(t) ? LORA_ETIMEOUT
			                                : LORA_EUNAVAILABLE,
			              m);
			break;
		}
		if (cmd == CMD_ROLLBACK) {
			t->cmd_done = 1;
			tx_end_locked(t, 0, "rolled back");
			break;
		}
		pthread_mutex_unlock(&t->mu);
		if (cmd == CMD_COMMIT) {
			tx_commit_now(t, view, st);
			return;
		}
		int rc = tx_exec(t, *view, t->cmd_req, t->cmd_resp);
		pthread_mutex_lock(&t->mu);
		t->cmd_done = 1;
		pthread_cond_broadcast(&t->cond);
		if (rc) {
			tx_end_locked(t, rc,
			              "rolled back: a statement in it failed");
			break;
		}
	}
	pthread_mutex_unlock(&t->mu);
}

void node_tx_serve(struct lnode *n, const struct node_exec_req *req)
{
	struct node_tx *t = req->tx;
	struct sto_view *view = NULL;
	struct sto_store *st = NULL;
	int rc = node_writer_drain(n);
	if (rc == 0) {
		st = node_store_acquire(n);
		if (sto_view_open(st, &view) != 0)
			rc = LORA_EIO;
	}
	pthread_mutex_lock(&t->mu);
	if (rc)
		tx_end_locked(t, LORA_EUNAVAILABLE,
		              "earlier writes did not apply in time");
	else if (t->cmd == CMD_ROLLBACK) /* BEGIN gave up waiting */
		tx_end_locked(t, LORA_EUNAVAILABLE, "not begun");
	else
		t->state = TX_ACTIVE;
	pthread_cond_broadcast(&t->cond);
	int active = t->state == TX_ACTIVE;
	pthread_mutex_unlock(&t->mu);
	if (active) {
		tx_served(n, t);
		tx_loop(t, &view, &st);
		tx_served(n, NULL);
	}
	if (view)
		sto_view_close(view);
	if (st)
		node_store_release(n);
	for (size_t i = 0; i < t->n_batches; i++)
		lora__mutation_batch__free_unpacked(t->batches[i],
		                                    &lora_pb_allocator);
	lora_free(t->batches);
	t->batches = NULL;
	t->n_batches = 0;
}
