/*
 * applier.h - the apply loop (apply.c): committed entries go into the state
 * store in log order (sto_apply), request ids are remembered for
 * de-duplication, waiters on the applied index are woken, and checkpoints
 * are taken every checkpoint_entries applied entries.
 *
 * struct lnode owns one (n->apply): node_applier_new before the raft loop
 * starts (it hands entries over from then on), node_apply_start /
 * node_apply_stop for the thread, node_applier_free last. Every stop and
 * free is safe after a failed or missing start.
 */
#ifndef LORA_NODE_APPLIER_H
#define LORA_NODE_APPLIER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "lora_pb.h"
#include "queue.h"
#include "raft.h"
#include "storage.h"

struct lnode;
struct node_dedup;

/*
 * A cached free-space reading of one directory, for the disk guard.
 * statvfs walks the path on every call (costly, and it ran once per log
 * append and per apply); a reading is reused while it is younger than
 * NODE_SPACE_FRESH_MS and what we wrote since leaves more than
 * NODE_SPACE_SLACK_BYTES above the reserve (other writers on the disk:
 * compactions, other nodes). Near the reserve every call reads. One
 * thread per instance.
 */
#define NODE_SPACE_FRESH_MS    250
#define NODE_SPACE_SLACK_BYTES (256u << 20)
struct node_space {
	uint64_t avail;   /* bytes free at the last reading */
	uint64_t spent;   /* bytes we wrote since (an estimate) */
	uint64_t read_ms; /* when read; 0: never */
};

struct node_applier {
	pthread_t thread;
	int running; /* thread started: node_apply_stop joins it */
	/* committed entries not yet applied (NODE_APPLY_QUEUE_ENTRIES_MAX),
	 * taken items stay busy until applied (node_apply_drain) */
	struct nqueue q;
	pthread_mutex_t mu;           /* dedup, and applied_cond's mutex */
	pthread_cond_t applied_cond;  /* applied moved (CLOCK_MONOTONIC) */
	atomic_uint_fast64_t applied; /* the state store's index, published */
	struct node_dedup *dedup;     /* request ids applied (mu), owned */
	/* apply thread; the raft loop sets it at an install (drained) */
	uint64_t last_ckpt_index;
	struct node_space space; /* disk guard of state/ (apply thread) */
};

/* 0 with *out (the queue and conditions made, the dedup table empty), or
 * LORA_ENOMEM / LORA_EINTERNAL. */
int node_applier_new(struct node_applier **out);
/* After node_apply_stop; frees entries still queued. NULL is fine. */
void node_applier_free(struct node_applier *a);

/* 0, or an error with errmsg (the thread did not start: node_apply_stop
 * is still safe). */
int node_apply_start(struct lnode *n, char *errmsg);
/* Closes the queue (the raft loop's hand-over returns LORA_ECLOSED), wakes
 * every waiter and joins the thread. */
void node_apply_stop(struct lnode *n);
/* Hands committed entries to the apply loop (copies them; blocks while
 * the queue is full, and retries while memory runs out: a committed entry
 * is never dropped). 0, or LORA_ECLOSED once the node stops. */
int node_apply_enqueue(struct lnode *n, const struct rep_entry *e, size_t cnt);
/*
 * The MutationBatch of a log entry's bytes, checked before protobuf-c
 * (which recurses without a limit) sees them. 0 with *out (free with
 * lora__mutation_batch__free_unpacked); LORA_ELIMIT for a value nested
 * deeper than LORA_VALUE_DEPTH_MAX or LORA_ECORRUPT for bytes that do not
 * decode or would decode to more than LORA_PB_DECODED_BYTES_MAX(len) bytes
 * (lora_pb.h), with a message: every node decides these alike from the bytes,
 * and rejects the entry whole. LORA_ENOMEM when memory ran out: try again.
 */
int node_batch_decode(const uint8_t *data, size_t len,
                      Lora__MutationBatch **out, char *errmsg);
/* node_batch_decode with protobuf-c's pieces taken from the arena ar (the
 * apply loop): then *out is dropped with the arena, never with
 * free_unpacked. Both decide alike from the bytes (a batch that would
 * decode to more than LORA_PB_DECODED_BYTES_MAX(len) bytes is
 * LORA_ECORRUPT). */
int node_batch_decode_in(const uint8_t *data, size_t len,
                         struct lora_pb_arena *ar, Lora__MutationBatch **out,
                         char *errmsg);
/* The highest entry applied to the state store. */
uint64_t node_applied_index(struct lnode *n);
/* The store was replaced (start-up, a snapshot install): publishes its
 * index and wakes the waiters. Not while the apply loop applies. */
void node_applied_reset(struct lnode *n, uint64_t index);
/* Waits until applied >= index: 0, LORA_ETIMEOUT, or LORA_ECLOSED when
 * the node stops first. */
int node_wait_applied(struct lnode *n, uint64_t index, int timeout_ms);
/* Waits until every queued entry is applied (before a snapshot install):
 * 0, or LORA_ECLOSED when the node stops first. */
int node_apply_drain(struct lnode *n);
/* Request id lookup: 1 and *index when the id was applied (in memory, or
 * recorded in st, a store the caller holds; st may be NULL). */
int node_dedup_lookup(struct lnode *n, struct sto_store *st, const char *rid,
                      uint64_t *index, int *rc);
/* Checkpoint now (admin); out path is lora_malloc'ed. */
int node_checkpoint_now(struct lnode *n, uint64_t *index, char **path,
                        char *errmsg);

#endif
