/*
 * apply.c - the apply loop: committed entries go into the state store in log
 * order (sto_apply), request ids are remembered for de-duplication, write
 * waiters and applied-index waiters are woken, and checkpoints are taken
 * every checkpoint_entries applied entries.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "node_int.h"
#include "thread.h"

#define NODE_APPLY_RETRY_MS 100
/* Applies wait while less than this is free on the state disk; a failed
 * store is reopened once it is free again. */
#define NODE_APPLY_RESERVE_BYTES (8u << 20)
#define NODE_DEDUP_BUCKETS       (2 * NODE_DEDUP_ENTRIES_MAX)

struct node_apply_item {
	struct nq_link link; /* first: the queue's link is the item */
	struct rep_entry e;  /* data owned */
};

/* ---- request-id table: a bounded FIFO with a hash index --------------------
 */

struct dedup_slot {
	char *id; /* owned; NULL when free */
	uint64_t index;
	int rc;
	int32_t next; /* chain in bucket, -1 ends */
};

struct node_dedup {
	struct dedup_slot slots[NODE_DEDUP_ENTRIES_MAX];
	int32_t buckets[NODE_DEDUP_BUCKETS];
	size_t head; /* next slot to (re)use */
};

static uint32_t hash_str(const char *s)
{
	return lora_hash32(s, strlen(s));
}

static struct node_dedup *dedup_new(void)
{
	struct node_dedup *d = lora_calloc(1, sizeof *d);
	if (d)
		for (size_t i = 0; i < NODE_DEDUP_BUCKETS; i++)
			d->buckets[i] = -1;
	return d;
}

static void dedup_free(struct node_dedup *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < NODE_DEDUP_ENTRIES_MAX; i++)
		lora_free(d->slots[i].id);
	lora_free(d);
}

static void dedup_unlink(struct node_dedup *d, int32_t s)
{
	int32_t *pp =
	    &d->buckets[hash_str(d->slots[s].id) % NODE_DEDUP_BUCKETS];
	while (*pp != -1 && *pp != s)
		pp = &d->slots[*pp].next;
	if (*pp == s)
		*pp = d->slots[s].next;
	lora_free(d->slots[s].id);
	d->slots[s].id = NULL;
}

static int32_t dedup_find(struct node_dedup *d, const char *id)
{
	int32_t s = d->buckets[hash_str(id) % NODE_DEDUP_BUCKETS];
	while (s != -1 && strcmp(d->slots[s].id, id) != 0)
		s = d->slots[s].next;
	return s;
}

static void dedup_add(struct node_dedup *d, const char *id, uint64_t index,
                      int rc)
{
	if (id[0] == '\0' || dedup_find(d, id) != -1)
		return;
	int32_t s = (int32_t)d->head;
	d->head = (d->head + 1) % NODE_DEDUP_ENTRIES_MAX;
	if (d->slots[s].id)
		dedup_unlink(d, s);
	d->slots[s].id = lora_strdup(id);
	if (d->slots[s].id == NULL)
		return;
	d->slots[s].index = index;
	d->slots[s].rc = rc;
	uint32_t b = hash_str(id) % NODE_DEDUP_BUCKETS;
	d->slots[s].next = d->buckets[b];
	d->buckets[b] = s;
}

int node_dedup_lookup(struct lnode *n, struct sto_store *st, const char *rid,
                      uint64_t *index, int *rc)
{
	pthread_mutex_lock(&n->apply->mu);
	int32_t s = dedup_find(n->apply->dedup, rid);
	if (s != -1) {
		*index = n->apply->dedup->slots[s].index;
		*rc = n->apply->dedup->slots[s].rc;
	}
	pthread_mutex_unlock(&n->apply->mu);
	if (s != -1)
		return 1;
	/* Applied before this process started (or elsewhere, arriving with
	 * a checkpoint): the state store keeps the ids of recent entries. */
	int found = st && sto_request_index(st, rid, index) == 0;
	if (found)
		*rc = 0;
	return found;
}

/* ---- queue ------------------------------------------------------------------
 */

/*
 * The pause before retrying what failed for a reason nothing signals the
 * end of: memory that ran out, a disk write or store open that failed, a
 * disk with too little room. The only sleep of the apply loop.
 */
static void retry_pause(void)
{
	struct timespec ts = {0, NODE_APPLY_RETRY_MS * 1000000L};
	nanosleep(&ts, NULL);
}

/* A copy of e, or NULL when memory ran out. */
static struct node_apply_item *item_new(const struct rep_entry *e)
{
	struct node_apply_item *it = lora_calloc(1, sizeof *it);
	if (it == NULL)
		return NULL;
	it->e = *e;
	it->e.data = NULL;
	if (e->len && (it->e.data = lora_malloc(e->len)) == NULL) {
		lora_free(it);
		return NULL;
	}
	if (e->len)
		memcpy(it->e.data, e->data, e->len);
	return it;
}

static void item_free(struct node_apply_item *it)
{
	lora_free(it->e.data);
	lora_free(it);
}

/*
 * A committed entry must reach the store: when memory runs out the copy is
 * retried until it succeeds or the node stops. Nothing signals that memory
 * was freed, so this is a timed sleep, logged once a second.
 */
static struct node_apply_item *item_new_retrying(struct lnode *n,
                                                 const struct rep_entry *e)
{
	uint64_t logged = 0;
	struct node_apply_item *it;
	while ((it = item_new(e)) == NULL && !atomic_load(&n->stopping)) {
		if (lora_now_ms() - logged >= 1000) {
			LOG_ERROR("apply queue: out of memory copying entry "
			          "%llu; retrying",
			          (unsigned long long)e->index);
			logged = lora_now_ms();
		}
		retry_pause();
	}
	return it;
}

int node_apply_enqueue(struct lnode *n, const struct rep_entry *e, size_t cnt)
{
	for (size_t i = 0; i < cnt; i++) {
		struct node_apply_item *it = item_new_retrying(n, &e[i]);
		if (it == NULL)
			return LORA_ECLOSED; /* stopping */
		/* waits for room: the apply loop makes it, or the queue is
		 * closed when the node stops */
		int rc = nq_push(&n->apply->q, &it->link, NQ_FOREVER);
		if (rc) {
			item_free(it);
			return rc;
		}
	}
	return 0;
}

int node_wait_applied(struct lnode *n, uint64_t index, int timeout_ms)
{
	if (atomic_load(&n->apply->applied) >= index)
		return 0;
	uint64_t deadline = lora_now_ms() + (uint64_t)(timeout_ms);
	int rc = 0;
	pthread_mutex_lock(&n->apply->mu);
	while (atomic_load(&n->apply->applied) < index &&
	       !atomic_load(&n->stopping) && rc == 0)
		rc = node_cond_wait_until(&n->apply->applied_cond,
		                          &n->apply->mu, deadline);
	if (atomic_load(&n->apply->applied) >= index)
		rc = 0;
	else if (rc == 0)
		rc = LORA_ECLOSED;
	pthread_mutex_unlock(&n->apply->mu);
	return rc;
}

int node_apply_drain(struct lnode *n)
{
	return nq_drain(&n->apply->q, NQ_FOREVER);
}

/* ---- applying
 * ------------------------------------------------------------------ */

/*
 * A RocksDB write that failed (disk full) leaves the store's WAL writer
 * unusable: later writes fail again, or abort where RocksDB keeps its
 * assertions. Once the disk has NODE_APPLY_RESERVE_BYTES free again the
 * store is reopened (readers wait meanwhile; until then they read the old
 * handle, which still serves reads). 0 when reopened.
 */
/* The disk guard (raftloop.c's persist_room has a larger reserve, so the
 * log stops first): 0 when the state disk has room for an apply. */
static int apply_room(struct lnode *n, uint64_t bytes, char *err)
{
	return node_space_check(&n->apply->space, n->state_dir,
	                        NODE_APPLY_RESERVE_BYTES, bytes, err);
}

static int apply_failed(int rc)
{
	return rc == LORA_EIO || rc == LORA_ENOSPC;
}

static int reopen_store(struct lnode *n)
{
	struct statvfs sv;
	if (statvfs(n->state_dir, &sv) != 0 ||
	    (uint64_t)sv.f_bavail * sv.f_frsize < NODE_APPLY_RESERVE_BYTES)
		return -1;
	node_native_close_cursors(n);
	node_store_close_exclusive(n);
	char err[LORA_ERRMSG_BYTES];
	int rc;
	while ((rc = sto_open(n->state_dir, NULL, &n->store, err)) != 0 &&
	       !atomic_load(&n->stopping)) {
		LOG_ERROR("reopening the state store failed: %s; retrying",
		          err);
		retry_pause();
	}
	node_store_exclusive_end(n);
	if (rc == 0)
		LOG_INFO("state store reopened after a failed write");
	return rc;
}

/* sto_apply, retried through I/O failures and a full disk until it
 * sticks or we stop; the store's answer (0, or the batch's rejection).
 * With refused (the entry's bytes were refused before a batch could be
 * made), the rejection is recorded instead (sto_apply_refused), so that a
 * chunk proposed over this entry is refused too (after_index). */
static int apply_retrying(struct lnode *n, const struct rep_entry *e,
                          const Lora__MutationBatch *batch, int refused,
                          char *err)
{
	int broken = 0;
	uint64_t logged = 0;
	for (;;) {
		if (broken && atomic_load(&n->stopping))
			return lora_errf(LORA_ECLOSED, err, "stopping");
		if (broken && reopen_store(n) != 0) {
			retry_pause();
			continue;
		}
		int rc = apply_room(n, e->len, err);
		if (rc == 0) { /* room: write */
			struct sto_store *s = node_store_acquire(n);
			rc = refused
			         ? sto_apply_refused(s, e->index, refused, err)
			         : sto_apply(s, e->index, batch, err);
			int advanced = sto_applied_index(s) >= e->index;
			node_store_release(n);
			if (rc == 0 || advanced)
				return rc;
			if (rc == LORA_ECORRUPT) {
				/* the store is not where the log says (a gap):
				 * retrying cannot help; start-up restores from
				 * a checkpoint or refuses with the recovery
				 * steps */
				LOG_ERROR("apply %llu: %s; stopping",
				          (unsigned long long)e->index, err);
				_Exit(70);
			}
			broken = apply_failed(rc);
		}
		if (atomic_load(&n->stopping))
			return rc;
		if (lora_now_ms() - logged >= 1000) {
			LOG_ERROR("apply %llu failed: %s; retrying",
			          (unsigned long long)e->index, err);
			logged = lora_now_ms();
		}
		retry_pause();
	}
}

/* Decodes with al, whose allocations m meters: the meter, not protobuf-c's
 * NULL, tells no memory (wait) from bytes every node refuses. */
static int batch_decode_metered(const uint8_t *data, size_t len,
                                ProtobufCAllocator *al, struct lora_pb_meter *m,
                                Lora__MutationBatch **out, char *errmsg)
{
	*out = NULL;
	int rc = lora_pb_check(LORA_PB_MUTATION_BATCH, data, len,
	                       LORA_VALUE_DEPTH_MAX);
	if (rc == LORA_ELIMIT)
		return lora_errf(rc, errmsg,
		                 "a property value nests deeper than %d lists "
		                 "and maps (the value depth limit)",
		                 LORA_VALUE_DEPTH_MAX);
	if (rc == 0) {
		lora_pb_meter_reset(m, LORA_PB_DECODED_BYTES_MAX(len));
		*out = lora__mutation_batch__unpack(al, len, data);
		if (*out)
			return 0;
		/* a failure below the cap: the cap was not reached, so
		 * this node cannot tell yet what the others decided */
		if (m->failed)
			return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
		if (m->over_cap)
			return lora_errf(LORA_ECORRUPT, errmsg,
			                 "mutation batch of %zu bytes decodes "
			                 "to more than %zu bytes",
			                 len, LORA_PB_DECODED_BYTES_MAX(len));
	}
	return lora_errf(LORA_ECORRUPT, errmsg,
	                 "mutation batch does not decode");
}

int node_batch_decode(const uint8_t *data, size_t len,
                      Lora__MutationBatch **out, char *errmsg)
{
	struct lora_pb_metered a;
	lora_pb_metered_init(&a, 0);
	return batch_decode_metered(data, len, &a.alloc, &a.meter, out, errmsg);
}

int node_batch_decode_in(const uint8_t *data, size_t len,
                         struct lora_pb_arena *ar, Lora__MutationBatch **out,
                         char *errmsg)
{
	return batch_decode_metered(data, len, &ar->alloc, &ar->meter, out,
	                            errmsg);
}

/* The entry's batch (*batch NULL for an empty entry); waits out a lack of
 * memory. Refused bytes: an error, the same on every node. */
static int decode_entry(struct lnode *n, const struct rep_entry *e,
                        struct lora_pb_arena *ar, Lora__MutationBatch **batch,
                        char *err)
{
	*batch = NULL;
	if (e->type != REP_ENTRY_NORMAL || e->len == 0)
		return 0;
	int rc;
	while ((rc = node_batch_decode_in(e->data, e->len, ar, batch, err)) ==
	           LORA_ENOMEM &&
	       !atomic_load(&n->stopping)) {
		lora_pb_arena_free(ar);
		retry_pause();
	}
	if (rc && rc != LORA_ENOMEM)
		LOG_ERROR("entry %llu rejected: %s",
		          (unsigned long long)e->index, err);
	return rc;
}

/* Applies one entry; retries I/O failures until it sticks or we stop. An
 * entry whose batch is refused still takes its index (the rejection is
 * recorded in its place) and its writer learns why. */
static void apply_one(struct lnode *n, const struct rep_entry *e)
{
	Lora__MutationBatch empty = LORA__MUTATION_BATCH__INIT;
	Lora__MutationBatch *batch = NULL;
	char err[LORA_ERRMSG_BYTES] = "";
	/* the decoded batch lives in ar: one block per 64 KiB of it instead
	 * of a malloc and a free per field */
	struct lora_pb_arena ar;
	lora_pb_arena_init(&ar);
	int refused = decode_entry(n, e, &ar, &batch, err);
	if (refused == LORA_ENOMEM) {
		lora_pb_arena_free(&ar);
		return; /* stopping */
	}
	char aerr[LORA_ERRMSG_BYTES] = "";
	int rc = apply_retrying(n, e, batch ? batch : &empty, refused, aerr);
	if (rc && !refused)
		LOG_INFO("entry %llu rejected: %s",
		         (unsigned long long)e->index, aerr);
	if (!refused || rc != refused)
		memcpy(err, aerr, sizeof err);
	if (batch) {
		pthread_mutex_lock(&n->apply->mu);
		for (size_t i = 0; i < batch->n_request_ids; i++)
			dedup_add(n->apply->dedup, batch->request_ids[i],
			          e->index, rc);
		pthread_mutex_unlock(&n->apply->mu);
	}
	lora_pb_arena_free(&ar);
	pthread_mutex_lock(&n->apply->mu);
	/* Never backwards: after a snapshot install the store may be ahead
	 * of the entries replayed on top of it. */
	if (e->index > atomic_load(&n->apply->applied))
		atomic_store(&n->apply->applied, e->index);
	pthread_cond_broadcast(&n->apply->applied_cond);
	pthread_mutex_unlock(&n->apply->mu);
	node_writer_applied(n, e->index, e->term, rc, err);
}

/* Deletes all but the newest NODE_CHECKPOINTS_KEPT checkpoints. */
static void prune_checkpoints(struct lnode *n)
{
	DIR *d = opendir(n->ckpt_dir);
	if (d == NULL)
		return;
	uint64_t idx[64];
	size_t k = 0;
	struct dirent *de;
	while ((de = readdir(d)) && k < 64) {
		char *end;
		unsigned long long v = strtoull(de->d_name, &end, 10);
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9' &&
		    *end == '\0')
			idx[k++] = v;
	}
	closedir(d);
	for (size_t i = 0; i < k; i++) {
		size_t newer = 0;
		for (size_t j = 0; j < k; j++)
			newer += idx[j] > idx[i];
		if (newer >= NODE_CHECKPOINTS_KEPT) {
			char p[NODE_PATH_BYTES_MAX + 64];
			snprintf(p, sizeof p, "%s/%020llu", n->ckpt_dir,
			         (unsigned long long)idx[i]);
			sto_rm_rf(p);
		}
	}
}

static pthread_mutex_t ckpt_mu = PTHREAD_MUTEX_INITIALIZER;

int node_checkpoint_now(struct lnode *n, uint64_t *index, char **path,
                        char *errmsg)
{
	pthread_mutex_lock(&ckpt_mu);
	uint64_t t0 = lora_now_ns();
	char tmp[NODE_PATH_BYTES_MAX + 64], dst[NODE_PATH_BYTES_MAX + 64];
	snprintf(tmp, sizeof tmp, "%s/tmp-%llu", n->ckpt_dir,
	         (unsigned long long)t0);
	struct sto_store *s = node_store_acquire(n);
	uint64_t idx = 0;
	int rc = sto_checkpoint(s, tmp, &idx, errmsg);
	node_store_release(n);
	if (rc == 0) {
		snprintf(dst, sizeof dst, "%s/%020llu", n->ckpt_dir,
		         (unsigned long long)idx);
		struct stat st;
		if (stat(dst, &st) == 0)
			sto_rm_rf(tmp); /* same state already checkpointed */
		else if (rename(tmp, dst) != 0 ||
		         sto_fsync_path(n->ckpt_dir) != 0)
			rc =
			    lora_errf(LORA_EIO, errmsg, "rename checkpoint: %s",
			              strerror(errno));
	} else {
		sto_rm_rf(tmp);
	}
	if (rc == 0) {
		n->apply->last_ckpt_index = idx;
		prune_checkpoints(n);
		node_metrics_checkpoint(n, lora_now_ns() - t0);
		LOG_INFO("checkpoint at %llu in %.1f ms",
		         (unsigned long long)idx,
		         (double)(lora_now_ns() - t0) / 1e6);
		*index = idx;
		if (path)
			*path = lora_strdup(dst);
	}
	pthread_mutex_unlock(&ckpt_mu);
	if (rc == 0)
		node_raft_compact(n, idx);
	return rc;
}

static void maybe_checkpoint(struct lnode *n)
{
	uint64_t applied = atomic_load(&n->apply->applied);
	if (applied < n->apply->last_ckpt_index + n->cfg.checkpoint_entries)
		return;
	uint64_t idx;
	char err[LORA_ERRMSG_BYTES];
	if (node_checkpoint_now(n, &idx, NULL, err) != 0) {
		LOG_ERROR("checkpoint failed: %s", err);
		n->apply->last_ckpt_index = applied; /* try again later */
	}
}

#ifdef LORA_TEST_HOOKS
/* Test hook LORA_APPLY_LAG_TESTING=MS (compiled with the CMake option
 * LORA_TEST_HOOKS): while this node leads and has not applied the auth
 * bootstrap, its apply loop waits MS before each entry, as a leader whose
 * apply thread is behind its followers' at the cluster's first start
 * (tests/integration/auth_apply_lag.sh). Read once, by the one apply
 * thread. */
static void apply_lag_testing(struct lnode *n)
{
	static int ms = -1;
	if (ms < 0) {
		const char *e = getenv("LORA_APPLY_LAG_TESTING");
		ms = e && atoi(e) > 0 ? atoi(e) : 0;
	}
	uint8_t proof[STO_SECRET_BYTES_MAX];
	size_t len = 0;
	if (ms == 0 || !node_is_leader(n))
		return;
	if (node_auth_peer_proof(n, 1, proof, &len) == 0) {
		ms = 0; /* bootstrapped: no more lag */
		return;
	}
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}
#else
static void apply_lag_testing(struct lnode *n)
{
	(void)n;
}
#endif

static void *apply_main(void *arg)
{
	struct lnode *n = arg;
	pthread_setname_np(pthread_self(), "lora-apply");
	for (;;) {
		size_t cnt;
		struct nq_link *list =
		    nq_take(&n->apply->q, SIZE_MAX, NQ_FOREVER, &cnt);
		if (list == NULL)
			break; /* closed and empty */
		/* Items stay busy until applied, so drain waits for them. */
		while (list) {
			struct node_apply_item *it =
			    (struct node_apply_item *)list;
			list = list->next;
			if (!atomic_load(&n->stopping)) {
				apply_lag_testing(n);
				apply_one(n, &it->e);
			}
			item_free(it);
			nq_done(&n->apply->q, 1);
		}
		if (atomic_load(&n->stopping))
			break;
		maybe_checkpoint(n);
	}
	return NULL;
}

int node_apply_start(struct lnode *n, char *errmsg)
{
	uint64_t ck;
	char dir[NODE_PATH_BYTES_MAX + 64];
	if (node_checkpoint_latest(n, dir, sizeof dir, &ck) == 0)
		n->apply->last_ckpt_index = ck;
	else
		n->apply->last_ckpt_index = atomic_load(&n->apply->applied);
	int rc = node_thread_start(&n->apply->thread, apply_main, n,
	                           "apply loop", errmsg);
	n->apply->running = rc == 0;
	return rc;
}

void node_apply_stop(struct lnode *n)
{
	struct node_applier *a = n->apply;
	if (a == NULL)
		return;
	nq_close(&a->q);
	pthread_mutex_lock(&a->mu);
	pthread_cond_broadcast(&a->applied_cond);
	pthread_mutex_unlock(&a->mu);
	if (a->running)
		pthread_join(a->thread, NULL);
	a->running = 0;
}

int node_applier_new(struct node_applier **out)
{
	struct node_applier *a = lora_calloc(1, sizeof *a);
	if (a == NULL)
		return LORA_ENOMEM;
	a->dedup = dedup_new();
	if (a->dedup == NULL) {
		lora_free(a);
		return LORA_ENOMEM;
	}
	if (nq_init(&a->q, NODE_APPLY_QUEUE_ENTRIES_MAX) != 0)
		goto no_q;
	if (node_cond_init(&a->applied_cond) != 0)
		goto no_cond;
	pthread_mutex_init(&a->mu, NULL);
	*out = a;
	return 0;
no_cond:
	nq_destroy(&a->q);
no_q:
	dedup_free(a->dedup);
	lora_free(a);
	return LORA_EINTERNAL;
}

void node_applier_free(struct node_applier *a)
{
	if (a == NULL)
		return;
	LORA_ASSERT(!a->running);
	size_t cnt;
	struct nq_link *list = nq_take(&a->q, SIZE_MAX, NQ_NOW, &cnt);
	while (list) {
		struct node_apply_item *it = (struct node_apply_item *)list;
		list = list->next;
		item_free(it);
	}
	nq_done(&a->q, cnt);
	nq_destroy(&a->q);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->applied_cond);
	dedup_free(a->dedup);
	lora_free(a);
}

uint64_t node_applied_index(struct lnode *n)
{
	return atomic_load(&n->apply->applied);
}

void node_applied_reset(struct lnode *n, uint64_t index)
{
	struct node_applier *a = n->apply;
	pthread_mutex_lock(&a->mu);
	atomic_store(&a->applied, index);
	a->last_ckpt_index = index;
	pthread_cond_broadcast(&a->applied_cond);
	pthread_mutex_unlock(&a->mu);
}
