/*
 * peerfwd.c - writes a follower passes to the leader over the peer channel
 * (the contract and the frames: peerfwd.h).
 *
 * Follower: a job per write, in a table indexed by its id; the answer
 * frame finds it there and calls the caller's callback on the transport
 * thread. Everything that depends on time or on a leader change (resend,
 * silence, deadlines, retries while no leader takes it) is done by one
 * watcher thread that sleeps on the node's status condition until the
 * earliest deadline of the table, so a write in flight costs no wake-up
 * of its own. Leader: the transport thread queues the frame for one
 * server thread, which checks it and hands it to the writer
 * (node_write_async); its callback packs the answer and queues it on the
 * peer stream back.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "node_int.h"
#include "peerfwd.h"
#include "thread.h"
#include "transport.h"

#define PFWD_ID_BYTES 8

struct node_pfwd_job {
	struct lnode *n;
	uint64_t id;
	uint8_t *frame; /* [id][Request]: lora_malloc */
	size_t len;
	uint64_t to;    /* the leader it is sent to and awaited from; 0: none */
	int resend;     /* node_may_resend */
	int doubt;      /* an earlier copy went unanswered: may have run */
	int started;    /* node_pfwd_go ran: the watcher's from then on */
	uint64_t heard; /* node_forward_check's state */
	uint64_t end_ms, send_until_ms, retry_ms;
	node_pfwd_fn fn;
	void *arg;
};

/* One node's follower side (n->pfwd, made on first use). */
struct node_pfwd {
	struct lnode *n;
	pthread_mutex_t mu;
	struct node_pfwd_job *jobs[NODE_PFWD_PENDING_MAX]; /* id % max */
	int closed; /* node_pfwd_stop: no new jobs */
	size_t n_jobs;
	uint64_t next_id;
	pthread_t watcher;
	/* leader: peers' writes waiting for the server thread, a ring */
	pthread_t server;
	pthread_mutex_t serve_mu;
	pthread_cond_t serve_cond;
	struct pf_frame *q; /* NODE_PFWD_QUEUE_MAX: lora_malloc */
	size_t q_head, q_len, q_bytes;
	int serve_stop;
	/* leader, test hook LORA_PFWD_HOLD_ANSWER_TESTING: the answer held
	 * back until the next one (mu) */
	struct pf_serve *held;
	/* under n->status_mu: the watcher's wait */
	int stop, kick;
	uint64_t wake_ms; /* its deadline while it waits, 0 while it works */
};

/* A peer's NODE_FRAME_FWD waiting for the server thread. */
struct pf_frame {
	uint64_t from;
	uint8_t *p; /* lora_malloc */
	size_t len;
};

static pthread_mutex_t pf_init_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int pf_serving; /* the leader's writes from peers, all nodes */

static void *watcher_main(void *arg);
static void *server_main(void *arg);
static void serve_free(struct pf_serve *s);

static void pf_destroy(struct node_pfwd *pf)
{
	if (pf->held)
		serve_free(pf->held);
	pthread_mutex_destroy(&pf->mu);
	pthread_mutex_destroy(&pf->serve_mu);
	pthread_cond_destroy(&pf->serve_cond);
	lora_free(pf->q);
	lora_free(pf);
}

/* The watcher and the server thread; 0, or -1 with neither running. */
static int pf_threads_start(struct node_pfwd *pf)
{
	if (node_thread_start(&pf->watcher, watcher_main, pf,
	                      "peer-forward watcher", NULL) != 0)
		return -1;
	if (node_thread_start(&pf->server, server_main, pf,
	                      "peer-forward server", NULL) == 0)
		return 0;
	pthread_mutex_lock(&pf->n->status_mu);
	pf->stop = 1;
	pthread_cond_broadcast(&pf->n->status_cond);
	pthread_mutex_unlock(&pf->n->status_mu);
	pthread_join(pf->watcher, NULL);
	return -1;
}

static struct node_pfwd *pf_get(struct lnode *n)
{
	struct node_pfwd *pf = __atomic_load_n(&n->pfwd, __ATOMIC_ACQUIRE);
	if (pf != NULL || atomic_load(&n->stopping))
		return pf;
	pthread_mutex_lock(&pf_init_mu);
	pf = n->pfwd;
	if (pf == NULL && (pf = lora_calloc(1, sizeof *pf)) != NULL) {
		pthread_mutex_init(&pf->mu, NULL);
		pthread_mutex_init(&pf->serve_mu, NULL);
		pthread_cond_init(&pf->serve_cond, NULL);
		pf->q = lora_calloc(NODE_PFWD_QUEUE_MAX, sizeof *pf->q);
		pf->n = n;
		/* random per process: an answer to a job of an earlier run
		 * of this node (sent before it restarted, committed after)
		 * must not find a job of this one */
		if (sodium_init() < 0)
			pf->next_id = lora_now_ns();
		else
			randombytes_buf(&pf->next_id, sizeof pf->next_id);
		if (pf->q == NULL || pf_threads_start(pf) != 0) {
			pf_destroy(pf);
			pf = NULL;
		} else {
			__atomic_store_n(&n->pfwd, pf, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&pf_init_mu);
	return pf;
}

/* ---- follower: jobs ---------------------------------------------------- */

/* Ends j (taken out of the table): fn gets rc and resp, or an error
 * answer with code and msg made here. */
static void job_finish(struct node_pfwd_job *j, int rc, int code,
                       const char *msg, Lora__Response *resp)
{
	if (rc == 0 && resp == NULL) {
		resp = node_resp_new();
		if (resp)
			node_resp_error(resp, code, msg, 0, 0);
	}
	if (rc == 0 && resp == NULL)
		rc = NODE_FORWARD_SELF; /* out of memory: the caller's way */
	j->fn(j->arg, rc, resp);
	lora_free(j->frame);
	lora_free(j);
}

static void job_unlink(struct node_pfwd *pf, struct node_pfwd_job *j)
{
	size_t s = j->id % NODE_PFWD_PENDING_MAX;
	if (pf->jobs[s] == j) {
		pf->jobs[s] = NULL;
		pf->n_jobs--;
	}
}

/* Under pf->mu: sends j to the current leader if another node (not
 * `avoid`, which just refused it) leads; else tries again after
 * NODE_PFWD_RETRY_MS. 1 when this node leads (j should run here). */
static int job_send(struct node_pfwd_job *j, uint64_t now, uint64_t avoid)
{
	struct lnode *n = j->n;
	uint64_t leader = node_leader_id(n);
	if (leader == n->cfg.id)
		return 1;
	if (leader != 0 && leader != avoid &&
	    node_transport_send(n->transport, leader, NODE_FRAME_FWD, j->frame,
	                        j->len) == 0) {
		j->to = leader;
		j->heard = now;
		return 0;
	}
	j->retry_ms = now + NODE_PFWD_RETRY_MS;
	return 0;
}

/* Wakes the watcher when due_ms is before the deadline it sleeps to. */
static void watcher_kick(struct lnode *n, struct node_pfwd *pf, uint64_t due)
{
	pthread_mutex_lock(&n->status_mu);
	if (pf->wake_ms == 0 || due < pf->wake_ms) {
		pf->kick = 1;
		pthread_cond_broadcast(&n->status_cond);
	}
	pthread_mutex_unlock(&n->status_mu);
}

struct node_pfwd_job *node_pfwd_new(struct lnode *n,
                                    const struct node_exec_req *req, int resend,
                                    uint64_t wait_ms, node_pfwd_fn fn,
                                    void *arg)
{
	uint64_t leader = node_leader_id(n);
	uint8_t proof[STO_SECRET_BYTES_MAX];
	size_t plen;
	if (leader == 0 || leader == n->cfg.id || n->transport == NULL ||
	    (node_auth_enabled(n) &&
	     node_auth_peer_proof(n, 1, proof, &plen) != 0))
		return NULL; /* the other ways wait for those */
	struct node_pfwd *pf = pf_get(n);
	struct node_pfwd_job *j = pf ? lora_calloc(1, sizeof *j) : NULL;
	size_t len = 0;
	if (j)
		j->frame = node_forward_pack(n, req, PFWD_ID_BYTES, &len);
	if (j == NULL || j->frame == NULL ||
	    len > NODE_PFWD_REQUEST_BYTES_MAX) {
		if (j)
			lora_free(j->frame);
		lora_free(j);
		return NULL;
	}
	*j = (struct node_pfwd_job){.n = n,
	                            .frame = j->frame,
	                            .len = PFWD_ID_BYTES + len,
	                            .resend = resend,
	                            .end_ms = wait_ms, /* until go */
	                            .fn = fn,
	                            .arg = arg};
	pthread_mutex_lock(&pf->mu);
	for (size_t k = 0;
	     k < NODE_PFWD_PENDING_MAX && j->id == 0 && !pf->closed; k++) {
		uint64_t id = pf->next_id++;
		if (id != 0 && pf->jobs[id % NODE_PFWD_PENDING_MAX] == NULL)
			j->id = id;
	}
	if (j->id != 0) {
		pf->jobs[j->id % NODE_PFWD_PENDING_MAX] = j;
		pf->n_jobs++;
	}
	pthread_mutex_unlock(&pf->mu);
	if (j->id == 0) { /* NODE_PFWD_PENDING_MAX waiting */
		lora_free(j->frame);
		lora_free(j);
		return NULL;
	}
	lora_put_be64(j->frame, j->id);
	return j;
}

void node_pfwd_go(struct node_pfwd_job *j)
{
	struct lnode *n = j->n;
	struct node_pfwd *pf = n->pfwd;
	uint64_t now = lora_now_ms();
	pthread_mutex_lock(&pf->mu);
	j->end_ms = now + j->end_ms; /* the wait node_pfwd_new was given */
	j->send_until_ms = now + NODE_PFWD_SEND_MS;
	j->started = 1;
	if (!pf->closed)
		(void)job_send(j, now, 0);
	int sent = j->to != 0;
	uint64_t j_end = j->end_ms;
	if (!sent)
		job_unlink(pf, j);
	pthread_mutex_unlock(&pf->mu); /* j may be answered and gone now */
	if (!sent) { /* nothing sent: the caller's way (which also runs it
		      * here when this node leads) */
		job_finish(j, NODE_FORWARD_SELF, 0, NULL, NULL);
		return;
	}
	/* its deadline (or, without a requestId, its leader's silence) may
	 * be the earliest: the watcher may sleep with no deadline at all */
	uint64_t due = now + n->cfg.election_ms;
	watcher_kick(n, pf, j_end < due ? j_end : due);
}

/* ---- follower: answers and the watcher ------------------------------- */

/* The leader's answer to job id from `from`. An answer LORA_UNAVAILABLE
 * (the leader did not run it) is sent again to whoever leads, until
 * j->send_until_ms; after a copy in doubt it speaks only for its own
 * attempt, so the write ends LORA_UNKNOWN_OUTCOME. */
static void on_answer(struct lnode *n, uint64_t from, const uint8_t *p,
                      size_t len)
{
	struct node_pfwd *pf = __atomic_load_n(&n->pfwd, __ATOMIC_ACQUIRE);
	if (pf == NULL || len < PFWD_ID_BYTES)
		return;
	uint64_t id = lora_get_be64(p);
	p += PFWD_ID_BYTES;
	len -= PFWD_ID_BYTES;
	/* a peer's bytes: bounded before protobuf-c recurses */
	Lora__Response *r =
	    lora_pb_check(LORA_PB_RESPONSE, p, len, LORA_RESULT_DEPTH_MAX)
	        ? NULL
	        : lora__response__unpack(&lora_pb_allocator, len, p);
	int unavailable =
	    r && r->error &&
	    node_err_from_code(r->error->code) == LORA_EUNAVAILABLE;
	uint64_t now = lora_now_ms();
	pthread_mutex_lock(&pf->mu);
	struct node_pfwd_job *j = pf->jobs[id % NODE_PFWD_PENDING_MAX];
	if (j == NULL || j->id != id || j->to != from) {
		/* late (the write was sent elsewhere since) or not ours */
		pthread_mutex_unlock(&pf->mu);
		if (r)
			lora__response__free_unpacked(r, &lora_pb_allocator);
		return;
	}
	if (unavailable && now < j->send_until_ms) {
		j->to = 0; /* not run there: to whoever leads now */
		int self = job_send(j, now, from);
		if (self)
			job_unlink(pf, j);
		pthread_mutex_unlock(&pf->mu);
		lora__response__free_unpacked(r, &lora_pb_allocator);
		if (self)
			job_finish(j, NODE_FORWARD_SELF, 0, NULL, NULL);
		else
			watcher_kick(n, pf, now + NODE_PFWD_RETRY_MS);
		return;
	}
	job_unlink(pf, j);
	pthread_mutex_unlock(&pf->mu);
	if (r == NULL)
		job_finish(j, 0, LORA_EUNKNOWN_OUTCOME,
		           "the leader's answer could not be read: the write "
		           "may have committed; retry with the same requestId",
		           NULL);
	else if (unavailable && j->doubt) {
		lora__response__free_unpacked(r, &lora_pb_allocator);
		job_finish(j, 0, LORA_EUNKNOWN_OUTCOME,
		           "no leader answered in time: the write may have "
		           "committed; retry with the same requestId",
		           NULL);
	} else
		job_finish(j, 0, 0, NULL, r);
}

/* What the watcher does with a job now. */
enum { ACT_WAIT, ACT_SELF, ACT_UNAVAILABLE, ACT_LATE, ACT_SILENT, ACT_STOP };

/* Under pf->mu: j's next step at now (sending it when it is due), and in
 * *due when to look at it again. */
static int job_step(struct node_pfwd_job *j, uint64_t now, int stopping,
                    uint64_t *due)
{
	struct lnode *n = j->n;
	*due = UINT64_MAX;
	if (!j->started)
		return ACT_WAIT; /* node_pfwd_go's */
	if (stopping)
		return ACT_STOP;
	if (j->to == 0) { /* not sent now: to whoever leads */
		if (now >= j->send_until_ms)
			return j->doubt ? ACT_LATE : ACT_UNAVAILABLE;
		if (now >= j->retry_ms && job_send(j, now, 0))
			return ACT_SELF;
		if (j->to == 0) {
			*due = j->retry_ms < j->send_until_ms
			           ? j->retry_ms
			           : j->send_until_ms;
			return ACT_WAIT;
		}
	}
	if (now >= j->end_ms)
		return ACT_LATE;
	int v = node_forward_check(n, j->to, j->resend, &j->heard);
	if (v == NODE_WAIT_GIVE_UP)
		return ACT_SILENT;
	if (v == NODE_WAIT_RESEND) { /* a new leader: the copy is in doubt */
		j->doubt = 1;
		j->to = 0;
		j->send_until_ms = j->end_ms;
		return job_step(j, now, stopping, due);
	}
	*due = j->end_ms;
	if (!j->resend && j->heard + n->cfg.election_ms < *due)
		*due = j->heard + n->cfg.election_ms;
	return ACT_WAIT;
}

static void job_act(struct node_pfwd_job *j, int act)
{
	switch (act) {
	case ACT_SELF:
		job_finish(j, NODE_FORWARD_SELF, 0, NULL, NULL);
		break;
	case ACT_UNAVAILABLE:
		job_finish(j, 0, LORA_EUNAVAILABLE,
		           "cannot reach the leader: not executed, retry",
		           NULL);
		break;
	case ACT_LATE:
		job_finish(j, 0, LORA_EUNKNOWN_OUTCOME,
		           "no leader answered in time: the write may have "
		           "committed; retry with the same requestId",
		           NULL);
		break;
	case ACT_SILENT:
		job_finish(j, 0, LORA_EUNKNOWN_OUTCOME,
		           "the leader went silent before it answered: the "
		           "write may have committed; retry with the same "
		           "requestId",
		           NULL);
		break;
	default: /* ACT_STOP */
		job_finish(j, 0,
		           j->to || j->doubt ? LORA_EUNKNOWN_OUTCOME
		                             : LORA_EUNAVAILABLE,
		           j->to || j->doubt
		               ? "the node is stopping: the write may have "
		                 "committed; retry with the same requestId"
		               : "the node is stopping: not executed, retry",
		           NULL);
	}
}

/* One pass over the table: the jobs that end are taken out and ended
 * (outside pf->mu); the earliest due time of the rest. */
static uint64_t watcher_pass(struct node_pfwd *pf, int stopping)
{
	enum { END_BATCH = 64 };
	struct node_pfwd_job *end[END_BATCH];
	int acts[END_BATCH];
	uint64_t wake = UINT64_MAX, now = lora_now_ms();
	size_t k = 0;
	pthread_mutex_lock(&pf->mu);
	for (size_t s = 0; s < NODE_PFWD_PENDING_MAX && pf->n_jobs > 0; s++) {
		struct node_pfwd_job *j = pf->jobs[s];
		uint64_t due = now;
		if (j == NULL)
			continue;
		int act =
		    k < END_BATCH ? job_step(j, now, stopping, &due) : ACT_WAIT;
		if (k == END_BATCH)
			due = now; /* the next pass, at once */
		if (act == ACT_WAIT) {
			wake = due < wake ? due : wake;
			continue;
		}
		job_unlink(pf, j);
		end[k] = j;
		acts[k++] = act;
	}
	pthread_mutex_unlock(&pf->mu);
	for (size_t i = 0; i < k; i++)
		job_act(end[i], acts[i]);
	return wake;
}

static void *watcher_main(void *arg)
{
	struct node_pfwd *pf = arg;
	struct lnode *n = pf->n;
	for (;;) {
		pthread_mutex_lock(&n->status_mu);
		uint64_t seq = n->status_seq;
		pf->kick = 0;
		pf->wake_ms = 0;
		int stop = pf->stop;
		pthread_mutex_unlock(&n->status_mu);
		if (stop)
			break;
		uint64_t wake = watcher_pass(pf, 0);
		pthread_mutex_lock(&n->status_mu);
		pf->wake_ms = wake ? wake : 1;
		while (n->status_seq == seq && !pf->kick && !pf->stop &&
		       lora_now_ms() < wake)
			if (node_cond_wait_until(&n->status_cond, &n->status_mu,
			                         wake) != 0)
				break;
		pthread_mutex_unlock(&n->status_mu);
	}
	return NULL;
}

void node_pfwd_stop(struct lnode *n)
{
	pthread_mutex_lock(&pf_init_mu);
	struct node_pfwd *pf = n->pfwd;
	pthread_mutex_unlock(&pf_init_mu);
	if (pf == NULL)
		return;
	pthread_mutex_lock(&pf->mu);
	pf->closed = 1;
	pthread_mutex_unlock(&pf->mu);
	pthread_mutex_lock(&n->status_mu);
	pf->stop = 1;
	pthread_cond_broadcast(&n->status_cond);
	pthread_mutex_unlock(&n->status_mu);
	pthread_join(pf->watcher, NULL);
	pthread_mutex_lock(&pf->serve_mu);
	pf->serve_stop = 1;
	pthread_cond_broadcast(&pf->serve_cond);
	pthread_mutex_unlock(&pf->serve_mu);
	pthread_join(pf->server, NULL);
	for (;;) { /* a job between node_pfwd_new and _go ends in _go */
		(void)watcher_pass(pf, 1);
		pthread_mutex_lock(&pf->mu);
		size_t left = pf->n_jobs;
		pthread_mutex_unlock(&pf->mu);
		if (left == 0)
			break;
		sched_yield();
	}
}

void node_pfwd_free(struct lnode *n)
{
	struct node_pfwd *pf = n->pfwd;
	if (pf == NULL)
		return;
	n->pfwd = NULL;
	pf_destroy(pf);
}

/* ---- leader: serving a peer's write ---------------------------------- */

/* A write a peer passed here, while the writer has it. */
struct pf_serve {
	struct lnode *n;
	uint64_t from, id;
	Lora__Request *rq; /* owns the strings req points into */
	Lora__ValueMap params;
	Lora__MapEntry *es, **ep;
	struct node_exec_req req;
	Lora__Response *r;
};

/* Test hook: LORA_TEST_PFWD_DROP_ANSWER=N makes this process drop the
 * Nth answer it would send (1-based), as a full or reconnecting stream
 * does (tests/integration/peer_forward.sh). 1 when this one is dropped. */
static int test_drop_answer(void)
{
	static atomic_long left = -1; /* answers until the dropped one */
	long v = atomic_load(&left);
	if (v < 0) {
		const char *e = getenv("LORA_TEST_PFWD_DROP_ANSWER");
		long want = e ? strtol(e, NULL, 10) : 0;
		atomic_compare_exchange_strong(&left, &v, want > 0 ? want : 0);
	}
	v = atomic_load(&left);
	while (v > 0 && !atomic_compare_exchange_weak(&left, &v, v - 1))
		;
	return v == 1;
}

/* Queues r as the answer to job id of peer `to` (dropped, like any peer
 * frame, when its stream is gone or full: the follower's wait ends it). */
static void serve_answer(struct lnode *n, uint64_t to, uint64_t id,
                         Lora__Response *r)
{
	size_t len = lora__response__get_packed_size(r);
	if (len > NODE_PEER_MSG_BYTES_MAX - NODE_PEER_HEADER_BYTES -
	              PFWD_ID_BYTES &&
	    r->error == NULL && r->n_rows > 0) {
		/* committed: say so with the bookmark, the rows left out
		 * (has_more with no cursor: peerfwd.h), never an error a
		 * client would retry */
		size_t n_rows = r->n_rows;
		Lora__Row **rows = r->rows;
		protobuf_c_boolean more = r->has_more;
		r->n_rows = 0;
		r->rows = NULL;
		r->has_more = 1;
		serve_answer(n, to, id, r);
		r->n_rows = n_rows;
		r->rows = rows;
		r->has_more = more;
		return;
	}
	if (len >
	    NODE_PEER_MSG_BYTES_MAX - NODE_PEER_HEADER_BYTES - PFWD_ID_BYTES) {
		char msg[LORA_ERRMSG_BYTES];
		snprintf(msg, sizeof msg,
		         "the answer (%zu bytes) is too large to pass on: the "
		         "write %s; ask the leader",
		         len, r->error ? "failed" : "committed");
		Lora__Response *e = node_resp_new();
		if (e == NULL)
			return;
		node_resp_error(e, LORA_ELIMIT, msg, 0, 0);
		serve_answer(n, to, id, e);
		lora__response__free_unpacked(e, &lora_pb_allocator);
		return;
	}
	if (test_drop_answer()) {
		LOG_WARN("forwarded write %llu: answer dropped (test hook)",
		         (unsigned long long)id);
		return;
	}
	uint8_t *b = lora_malloc(PFWD_ID_BYTES + len);
	if (b == NULL)
		return;
	lora_put_be64(b, id);
	lora__response__pack(r, b + PFWD_ID_BYTES);
	if (node_transport_send(n->transport, to, NODE_FRAME_FWD_ANS, b,
	                        PFWD_ID_BYTES + len) != 0)
		LOG_DEBUG("forwarded write %llu: no room to answer node %llu",
		          (unsigned long long)id, (unsigned long long)to);
	lora_free(b);
}

static void serve_error(struct lnode *n, uint64_t to, uint64_t id, int code,
                        const char *msg)
{
	Lora__Response *r = node_resp_new();
	if (r == NULL)
		return;
	node_resp_error(r, code, msg, 0, 0);
	serve_answer(n, to, id, r);
	lora__response__free_unpacked(r, &lora_pb_allocator);
}

static void serve_free(struct pf_serve *s)
{
	if (s->r)
		lora__response__free_unpacked(s->r, &lora_pb_allocator);
	if (s->rq)
		lora__request__free_unpacked(s->rq, &lora_pb_allocator);
	lora_free(s->es);
	lora_free(s->ep);
	lora_free(s);
	atomic_fetch_sub(&pf_serving, 1);
}

#ifdef LORA_TEST_HOOKS
/*
 * Test hooks (compiled with the CMake option LORA_TEST_HOOKS, on by
 * default; never set in production), read from the environment once:
 *   LORA_PFWD_HOLD_ANSWER_TESTING=1: the leader holds back the answer to
 *     the first write it serves for a peer until it has executed the next
 *     one, then sends the first answer right before the second (a late
 *     answer, as one sent before a follower restarted and delivered
 *     after: tests/integration/peer_forward_stale.sh).
 */
static long env_testing(const char *name, long *cache)
{
	long v = __atomic_load_n(cache, __ATOMIC_RELAXED);
	if (v < 0) {
		const char *e = getenv(name);
		v = e ? strtol(e, NULL, 10) : 0;
		__atomic_store_n(cache, v, __ATOMIC_RELAXED);
	}
	return v;
}

/* 1 when s is held back (the caller leaves it); a held answer before it
 * is sent (and freed) first. */
static int hold_answer_testing(struct pf_serve *s)
{
	static long want = -1, served_n;
	if (env_testing("LORA_PFWD_HOLD_ANSWER_TESTING", &want) != 1)
		return 0;
	struct node_pfwd *pf = __atomic_load_n(&s->n->pfwd, __ATOMIC_ACQUIRE);
	pthread_mutex_lock(&pf->mu);
	int hold = served_n++ == 0;
	struct pf_serve *held = pf->held;
	pf->held = hold ? s : NULL;
	pthread_mutex_unlock(&pf->mu);
	if (hold)
		LOG_WARN("forwarded write %llu: answer held back until the "
		         "next one (test hook)",
		         (unsigned long long)s->id);
	if (held) {
		serve_answer(held->n, held->from, held->id, held->r);
		serve_free(held);
	}
	return hold;
}
#else
static int hold_answer_testing(struct pf_serve *s)
{
	(void)s;
	return 0;
}
#endif

static void served(void *arg, int rc)
{
	struct pf_serve *s = arg;
	(void)rc; /* the answer is in s->r */
	if (hold_answer_testing(s))
		return;
	serve_answer(s->n, s->from, s->id, s->r);
	serve_free(s);
}

/* Who asks, from the request a member packed (node_forward_pack): 0, or
 * the code to refuse it with (msg set). */
static int serve_identity(struct lnode *n, const Lora__RunRequest *run,
                          struct node_exec_req *req, const char **msg)
{
	if (!node_auth_enabled(n)) {
		req->role = NODE_ROLE_ADMIN;
		return 0;
	}
	int rc = run->peer_proof.len
	             ? node_auth_peer_check(n, run->peer_proof.data,
	                                    run->peer_proof.len, 1)
	             : LORA_EUNAUTHORIZED;
	if (rc == LORA_ETIMEOUT) {
		*msg = "the leader cannot check the cluster secret now (a "
		       "snapshot is being installed): not executed, retry";
		return LORA_EUNAVAILABLE;
	}
	if (rc != 0) {
		node_auth_log_failure(n, "forwarded", run->as_user);
		*msg = "a forwarded write without the cluster secret";
		return LORA_EUNAUTHORIZED;
	}
	snprintf(req->user, sizeof req->user, "%s",
	         run->as_user ? run->as_user : "");
	/* the lower of the role the follower read and the one the leader
	 * holds now: a revoke or DROP USER the follower has not applied yet
	 * (or its login cache still holds) takes effect here */
	int now_role = NODE_ROLE_NONE;
	rc = node_auth_current_role(n, req->user, &now_role);
	if (rc == LORA_ETIMEOUT) {
		*msg = "the leader cannot read the user now (a snapshot is "
		       "being installed): not executed, retry";
		return LORA_EUNAVAILABLE;
	}
	if (rc != 0) {
		*msg = "the user no longer exists";
		return LORA_EUNAUTHORIZED;
	}
	int claimed = run->as_role <= NODE_ROLE_ADMIN ? (int)run->as_role
	                                              : NODE_ROLE_NONE;
	req->role = claimed < now_role ? claimed : now_role;
	req->peer_checked = 1;
	return 0;
}

/* s->rq's statement as s->req (params borrowed from s->rq): 0, or the
 * code to refuse it with (msg set). */
static int serve_req(struct lnode *n, struct pf_serve *s, const char **msg,
                     char *buf)
{
	const Lora__RunRequest *run =
	    s->rq->kind_case == LORA__REQUEST__KIND_RUN ? s->rq->run : NULL;
	if (run == NULL || (run->tx && run->tx[0]) || run->mode != QRY_RUN) {
		*msg = "a forwarded write is one statement run outside "
		       "transactions";
		return LORA_EINVAL;
	}
	s->es = lora_calloc(run->n_params + 1, sizeof *s->es);
	s->ep = lora_calloc(run->n_params + 1, sizeof *s->ep);
	if (s->es == NULL || s->ep == NULL)
		return LORA_ENOMEM;
	for (size_t i = 0; i < run->n_params; i++) {
		lora__map_entry__init(&s->es[i]);
		s->es[i].key = run->params[i]->name;
		s->es[i].value = run->params[i]->value;
		s->ep[i] = &s->es[i];
	}
	s->params.entries = s->ep;
	s->params.n_entries = run->n_params;
	s->req = (struct node_exec_req){
	    .query = run->query,
	    .params = &s->params,
	    .consistency = run->consistency,
	    .request_id = run->request_id,
	    .forwarded = 1,
	    .mode = QRY_RUN,
	    .kind = NODE_STMT_WRITE,
	    .mem_bytes_max = run->memory_bytes,
	    .time_ms_max = run->time_ms,
	};
	int rc = serve_identity(n, run, &s->req, msg);
	if (rc)
		return rc;
	int is_write = 0;
	struct qry_error qe = {0};
	int prc = run->query
	              ? node_is_write(n, &s->req, run->query, &is_write, &qe)
	              : LORA_EINVAL;
	if (prc == LORA_EMEMORY) { /* the budget, for now: not the text */
		snprintf(buf, LORA_ERRMSG_BYTES, "%s", qe.message);
		*msg = buf;
		return prc;
	}
	if (prc || !is_write) {
		*msg = "a forwarded statement must be a write that parses";
		return LORA_EINVAL;
	}
	int arc = node_exec_allowed(n, &s->req, 1, buf);
	if (arc != 0) {
		*msg = buf;
		return arc;
	}
	return 0;
}

/* Server thread: one peer's NODE_FRAME_FWD (len >= PFWD_ID_BYTES). */
static void serve_frame(struct lnode *n, uint64_t from, const uint8_t *p,
                        size_t len)
{
	struct node_member m;
	if (node_member_get(n, from, &m) != 0) {
		node_peer_refused(from, "forward",
		                  "a forwarded write from a node that is not a "
		                  "member");
		return;
	}
	uint64_t id = lora_get_be64(p);
	char buf[LORA_ERRMSG_BYTES] = "";
	const char *msg = buf;
	int code = 0;
	if (!node_is_leader(n))
		return serve_error(n, from, id, LORA_EUNAVAILABLE,
		                   "this node is not the leader any more: not "
		                   "executed, retry");
	if (atomic_fetch_add(&pf_serving, 1) >= NODE_PFWD_SERVING_MAX) {
		atomic_fetch_sub(&pf_serving, 1);
		return serve_error(n, from, id, LORA_EUNAVAILABLE,
		                   "the leader is busy with forwarded writes: "
		                   "not executed, retry");
	}
	struct pf_serve *s = lora_calloc(1, sizeof *s);
	if (s == NULL) {
		atomic_fetch_sub(&pf_serving, 1);
		return serve_error(n, from, id, LORA_ENOMEM, NULL);
	}
	*s = (struct pf_serve){.n = n, .from = from, .id = id};
	s->rq = node_native_decode(p + PFWD_ID_BYTES, len - PFWD_ID_BYTES,
	                           &code, buf);
	if (s->rq && (code = serve_req(n, s, &msg, buf)) == 0 &&
	    (s->r = node_resp_new()) == NULL)
		code = LORA_ENOMEM;
	if (s->rq == NULL || code != 0) {
		serve_error(n, from, id, code, msg);
		serve_free(s);
		return;
	}
	node_write_async(n, &s->req, s->r, served, s);
}

static void *server_main(void *arg)
{
	struct node_pfwd *pf = arg;
	pthread_mutex_lock(&pf->serve_mu);
	for (;;) {
		while (pf->q_len == 0 && !pf->serve_stop)
			pthread_cond_wait(&pf->serve_cond, &pf->serve_mu);
		if (pf->q_len == 0)
			break;
		struct pf_frame f = pf->q[pf->q_head];
		pf->q_head = (pf->q_head + 1) % NODE_PFWD_QUEUE_MAX;
		pf->q_len--;
		pf->q_bytes -= f.len;
		int stop = pf->serve_stop;
		pthread_mutex_unlock(&pf->serve_mu);
		if (!stop) /* at stop: dropped, the follower's wait ends it */
			serve_frame(pf->n, f.from, f.p, f.len);
		lora_free(f.p);
		pthread_mutex_lock(&pf->serve_mu);
	}
	pthread_mutex_unlock(&pf->serve_mu);
	return NULL;
}

/* Transport thread: queues a peer's write for the server thread, so the
 * thread that delivers Raft frames decodes and parses nothing; over
 * NODE_PFWD_QUEUE_MAX frames or NODE_PFWD_QUEUE_BYTES_MAX it is refused
 * LORA_UNAVAILABLE at once (not executed: the follower sends it again or
 * takes the HTTP way). */
static void on_request(struct lnode *n, uint64_t from, const uint8_t *p,
                       size_t len)
{
	if (len < PFWD_ID_BYTES) {
		node_peer_refused(from, "forward",
		                  "a forwarded write without an id");
		return;
	}
	struct node_pfwd *pf = pf_get(n);
	uint8_t *copy = pf ? lora_malloc(len) : NULL;
	int queued = 0;
	if (copy) {
		memcpy(copy, p, len);
		pthread_mutex_lock(&pf->serve_mu);
		if (!pf->serve_stop && pf->q_len < NODE_PFWD_QUEUE_MAX &&
		    (pf->q_len == 0 ||
		     pf->q_bytes + len <= NODE_PFWD_QUEUE_BYTES_MAX)) {
			pf->q[(pf->q_head + pf->q_len++) %
			      NODE_PFWD_QUEUE_MAX] =
			    (struct pf_frame){from, copy, len};
			pf->q_bytes += len;
			queued = 1;
			pthread_cond_signal(&pf->serve_cond);
		}
		pthread_mutex_unlock(&pf->serve_mu);
	}
	if (queued)
		return;
	lora_free(copy);
	serve_error(n, from, lora_get_be64(p), LORA_EUNAVAILABLE,
	            "the leader is busy with forwarded writes: not executed, "
	            "retry");
}

void node_pfwd_on_frame(struct lnode *n, int kind, uint64_t from,
                        const uint8_t *payload, size_t len)
{
	if (kind == NODE_FRAME_FWD)
		on_request(n, from, payload, len);
	else
		on_answer(n, from, payload, len);
}
