/*
 * writer.h - the leader's single writer and group commit (writer.c).
 *
 * Write statements from the HTTP, native and Bolt workers queue here
 * (node_write_async). The writer thread takes up to NODE_WRITE_GROUP_MAX of
 * them at a time, executes them one after another on one read view and
 * proposes their batches as ONE log entry; the apply loop reports every
 * applied entry (node_writer_applied) and each statement is answered from
 * it: success when the entry at the proposal's index has its term,
 * LORA_EUNAVAILABLE when another entry took the index, the entry's error
 * when apply refused it (every statement of the entry), and
 * LORA_EUNKNOWN_OUTCOME after NODE_WRITE_TIMEOUT_MS without an answer.
 *
 * struct lnode owns one (n->writer): node_writer_start after the raft and
 * apply loops started, node_writer_stop after they stopped (it fails
 * whoever still waits), node_writer_free after the servers stopped. Every
 * stop and free is safe after a failed or missing start.
 *
 * The nwr_* calls are the group commit's bookkeeping alone, without a node:
 * the queue of submitted writes and the table of proposals waiting for
 * their entry (tests/node/test_writer.c drives them from several threads).
 * Nothing in them polls: the writer thread waits on the queue until a write
 * arrives, the node stops, or the first waiting proposal expires.
 */
#ifndef LORA_NODE_WRITER_H
#define LORA_NODE_WRITER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "lora.h"
#include "lora_pb.h"
#include "query.h"
#include "queue.h"

#define NODE_WRITE_QUEUE_MAX       4096  /* write statements waiting */
#define NODE_WRITE_GROUP_MAX       256   /* statements in one proposal */
#define NODE_WRITE_TIMEOUT_MS      10000 /* until UNKNOWN_OUTCOME */
#define NODE_PENDING_PROPOSALS_MAX 1024  /* proposed, not yet applied */
/* an idle writer wakes this often: to step a vector index build that
 * began (an empty entry; back to back while one runs) and to free the
 * batches of proposals applied since its last write */
#define NODE_WRITER_IDLE_MS 1000
#define NODE_APPLIED_RING   4096 /* recent (index, term, rc) kept */

struct lnode;
struct node_exec_req;

/* fn(arg, rc) runs exactly once when a write's response is final. */
typedef void (*node_write_done_fn)(void *arg, int rc);

/* One submitted write (writer.c); the writer's from nwr_submit until
 * its fn ran, then freed. */
struct wreq;

struct proposal {
	uint64_t index, term;
	uint64_t start_ms;
	Lora__MutationBatch *batch; /* owned; NULL once not needed as pending */
	struct wreq *reqs;          /* waiting for the entry (next-linked) */
	int dead; /* applied (or passed): the writer thread frees it */
};

struct applied_rec {
	uint64_t index, term;
	int rc;
	char errmsg[LORA_ERRMSG_BYTES];
};

struct node_writer {
	pthread_t thread;
	pthread_mutex_t mu;          /* props, ring, term (writer's reads) */
	pthread_cond_t applied_cond; /* an entry applied, or closing */
	struct nqueue q;             /* of struct wreq, NODE_WRITE_QUEUE_MAX */
	struct proposal props[NODE_PENDING_PROPOSALS_MAX];
	size_t n_props;
	struct applied_rec ring[NODE_APPLIED_RING];
	uint64_t term; /* writer thread: the term leader_ready saw */
	int running;   /* thread started: node_writer_stop joins it */
	int closing;   /* nwr_close ran: waits on applied_cond end (mu) */
};

/* ---- the bookkeeping alone --------------------------------------------- */

/* The queue and locks made, no proposal: 0 or LORA_EINTERNAL. */
int nwr_init(struct node_writer *wr, char *errmsg);
/* After nwr_close and the last nwr_take: nothing may wait any more. */
void nwr_destroy(struct node_writer *wr);
/* Queues a write (req and resp stay the caller's and valid until fn ran);
 * refused at once (fn runs on the caller's thread with LORA_EUNAVAILABLE,
 * resp holds the error) when the queue is full or closed. */
void nwr_submit(struct node_writer *wr, const struct node_exec_req *req,
                Lora__Response *resp, node_write_done_fn fn, void *arg);
/* Takes up to max (at most NODE_WRITE_GROUP_MAX) queued writes into ws, in
 * order, waiting until deadline_ms (NQ_FOREVER: no deadline), the next
 * waiting proposal's expiry, nq_kick or nwr_close for the first: how many. */
size_t nwr_take(struct node_writer *wr, struct wreq **ws, size_t max,
                uint64_t deadline_ms);
/* Answers a taken write at once: code 0 (a bookmark at index) or an error
 * (msg NULL: the code's text). */
void nwr_answer(struct wreq *w, int code, const char *msg, uint64_t index);
/* Lists ws[0..cnt) as proposal (index, term), its batch taken (may be
 * NULL); resolved at once when the entry was applied already. The table
 * must have room (nwr_has_room). */
void nwr_track(struct node_writer *wr, struct wreq **ws, size_t cnt,
               uint64_t index, uint64_t term, Lora__MutationBatch *batch);
int nwr_has_room(struct node_writer *wr);
/* Entry index of term was applied with rc (errmsg when rc): answers the
 * proposal at index, and UNKNOWN_OUTCOME to any listed below it. */
void nwr_applied(struct node_writer *wr, uint64_t index, uint64_t term, int rc,
                 const char *errmsg);
/* Answers UNKNOWN_OUTCOME to proposals waiting NODE_WRITE_TIMEOUT_MS by
 * now_ms; nwr_next_expiry_ms: when the next does (NQ_FOREVER: none). */
void nwr_expire(struct node_writer *wr, uint64_t now_ms);
uint64_t nwr_next_expiry_ms(struct node_writer *wr);
/* The highest index of a listed proposal not yet applied (or passed): 0
 * when none. The writer keeps looking for a build to step while its own
 * entries are in flight (one of them may be a CREATE VECTOR INDEX). */
uint64_t nwr_last_waiting(struct node_writer *wr);

/* Steps of a vector index build that apply without moving its cursor
 * before the writer stops proposing empty build entries (a step that
 * cannot progress would otherwise be re-proposed, fsync'd and replicated
 * forever). */
#define NODE_BUILD_STALL_STEPS 64

/* The writer's watch on a build's progress (writer thread only). */
struct nwr_build_watch {
	uint64_t pos;   /* sto_hnsw_build_pos as last seen */
	uint64_t still; /* build entries applied since pos last moved */
	int seen;       /* pos was read once */
	int stalled;    /* warned: no empty build entry proposed */
};
/* Records that `applied` more of the writer's build entries were applied
 * and the build is at pos: 1 while the writer must not propose (pos has
 * not moved over NODE_BUILD_STALL_STEPS of them; any move resumes). *warn
 * is 1 only on the call that stalls it, so the warning is logged once. */
int nwr_build_stalled(struct nwr_build_watch *w, uint64_t pos, size_t applied,
                      int *warn);

/* Every listed proposal's writes answered UNKNOWN_OUTCOME with msg. */
void nwr_fail_waiting(struct node_writer *wr, const char *msg);
/* Refuses new writes and wakes every wait (nwr_take, the writer's waits
 * for an entry); nwr_answer_left, once nothing takes any more, answers
 * what is still queued (UNAVAILABLE) and listed (UNKNOWN_OUTCOME). */
void nwr_close(struct node_writer *wr);
void nwr_answer_left(struct node_writer *wr);

/* ---- the node's writer ------------------------------------------------- */

int node_writer_start(struct lnode *n, char *errmsg);
/* Fails what waits and refuses new writes; node_writer_free after the
 * servers stopped. */
void node_writer_stop(struct lnode *n);
void node_writer_free(struct lnode *n);
/* Leader: executes a write statement and waits until it is applied (or
 * failed). resp (caller's) receives columns, rows, bookmark or error. */
void node_write(struct lnode *n, const struct node_exec_req *req,
                Lora__Response *resp);
/* The same without waiting: fn(arg, rc) runs exactly once when resp is
 * final, on the writer or apply thread (or on the caller's, when the write
 * is refused at once), never under a lock of the writer. req and resp stay
 * the caller's and must stay valid until then. */
void node_write_async(struct lnode *n, const struct node_exec_req *req,
                      Lora__Response *resp, node_write_done_fn fn, void *arg);
/* Apply loop: entry `index` of `term` was applied with result rc. */
void node_writer_applied(struct lnode *n, uint64_t index, uint64_t term, int rc,
                         const char *errmsg);
/* Leadership lost or gained: fail queued writes when lost. */
void node_writer_role_changed(struct lnode *n, int leader);
/* The leader stepped down with no leader known (check-quorum): every
 * proposed write still waiting is answered UNKNOWN_OUTCOME now. */
void node_writer_stepped_down(struct lnode *n);

/* Writer thread (txn.c uses them): waits until this term's proposals are
 * applied (0, or LORA_ETIMEOUT); proposes b as one entry in the writer's
 * term and waits until it is applied here: 0 with *index,
 * LORA_EUNAVAILABLE (certainly not applied) or LORA_EUNKNOWN_OUTCOME,
 * with err->message. */
int node_writer_drain(struct lnode *n);
int node_writer_commit(struct lnode *n, const Lora__MutationBatch *b,
                       uint64_t *index, struct qry_error *err);

#endif
