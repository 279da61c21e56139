/*
 * raftloop.h - the raft loop (raftloop.c, raftstart.c): the thread that
 * owns the Raft core and the log store. Everything reaches the core
 * through its inbox (a struct nqueue of calls and peer messages); the loop
 * persists, sends, hands committed entries to the apply loop (applier.h)
 * and publishes the status (node_status_get, node_status_wait).
 *
 * struct lnode owns one (n->raft): node_raft_new first (start-up reads and
 * repairs the log through it), node_raft_start / node_raft_stop for the
 * core and the thread, node_raft_free last.
 */
#ifndef LORA_NODE_RAFTLOOP_H
#define LORA_NODE_RAFTLOOP_H

#include <pthread.h>
#include <stdint.h>

#include "applier.h"
#include "queue.h"
#include "raft.h"
#include "storage.h"

struct lnode;
struct node_raft_priv;

/* Where the loop's frames go when not through the node's transport:
 * tests put an in-memory network here (lnode_open_raft_only). send
 * returns 0, or an error when the frame cannot go (an append is then
 * reported unreachable). Called from the raft loop thread. */
struct node_raft_net {
	void *arg;
	int (*send)(void *arg, uint64_t from, uint64_t to, int kind,
	            const uint8_t *buf, size_t len);
};

/* Raft ticks per heartbeat period (raftstart.c fill_config). */
#define NODE_TICKS_PER_HEARTBEAT 2

struct node_raft {
	struct rep *rep; /* the core: the raft loop's (start/stop around) */
	/* the raft loop's; others read it (the change stream) only holding
	 * log_rw shared, which the raft loop holds exclusive to reopen it */
	struct sto_log *log;
	pthread_rwlock_t log_rw;
	pthread_t thread;
	int running; /* thread started: node_raft_stop joins it */
	struct nqueue
	    inbox; /* of struct node_inbox_item, NODE_INBOX_ITEMS_MAX */
	uint64_t last_persisted_term, last_persisted_vote;
	uint64_t persisted_commit_ms;
	struct rep_snapshot_meta snap_meta; /* compaction point */
	struct node_raft_priv *priv;        /* the loop's private state */
	uint64_t tick_ms; /* heartbeat_ms / NODE_TICKS_PER_HEARTBEAT */
	struct node_space log_space; /* disk guard of the log directory */
	struct node_raft_net net;    /* send NULL: the node's transport */
};

/* 0 with *out (the inbox made, no core yet), or LORA_ENOMEM /
 * LORA_EINTERNAL. */
int node_raft_new(struct node_raft **out);
/* After node_raft_stop; NULL is fine. */
void node_raft_free(struct node_raft *r);
/* Restores the core from the log and starts the thread: 0, or an error
 * with errmsg (node_raft_stop is still safe). */
int node_raft_start(struct lnode *n, char *errmsg);
void *node_raft_main(void *arg);
struct node_raft_priv *node_raft_priv_new(void);
/* Closes the inbox (calls get LORA_EUNAVAILABLE), joins the thread, frees
 * the core and closes the log. */
void node_raft_stop(struct lnode *n);
/* Closes the inbox and fails what it holds: calls waiting on an answer
 * get LORA_EUNAVAILABLE, messages are freed; a push from then on is
 * refused at once (the same). The raft loop's last act, and
 * node_raft_stop's after the join; idempotent. */
void node_raft_close_inbox(struct lnode *n);
/* For tests: hook (NULL: none) runs in every post to the inbox between
 * its look at `stopping` and its push, so a test can hold a caller in
 * that gap while the loop stops. */
void node_raft_set_post_hook(void (*hook)(void));
/* From the transport thread: a frame for the raft loop. */
void node_raft_on_frame(void *arg, int kind, uint64_t from,
                        const uint8_t *payload, size_t len);

/* Synchronous requests to the raft loop. Return 0 or lora_err. */
/* expect_term (0: any): refused with LORA_EUNAVAILABLE, nothing appended,
 * unless this node leads in that term. A writer that executed a statement
 * while leading in term T proposes with T: after a leadership change
 * between execution and proposal (another leader may have written in
 * between), its ids and reads are stale. */
int node_raft_propose(struct lnode *n, const uint8_t *data, size_t len,
                      uint64_t expect_term, uint64_t *term, uint64_t *index,
                      uint64_t *leader);
int node_raft_conf_change(struct lnode *n, uint32_t type, uint64_t id,
                          const char *ctx, uint64_t *index, char *errmsg);
int node_raft_read_index(struct lnode *n, uint64_t *index, int timeout_ms);
int node_raft_transfer(struct lnode *n, uint64_t to, char *errmsg);
void node_raft_compact(struct lnode *n, uint64_t ckpt_index);
/* Snapshot streaming done (leader side). Never lost: it goes into a
 * fixed table of one report per peer (no allocation, no inbox room) that
 * the loop empties every turn; only a table full of other peers' reports
 * falls back to an inbox item (and, if that fails too, logs the loss). */
void node_raft_snapshot_report(struct lnode *n, uint64_t to, int ok);
/* For tests: snapshot reports the loop handed to the core so far. */
uint64_t node_raft_snapshot_reports_handled(struct lnode *n);
/* Follower side: a staged checkpoint for meta is ready to install. */
void node_raft_snapshot_staged(struct lnode *n,
                               const struct rep_snapshot_meta *meta,
                               uint64_t from, uint64_t term);

#endif
