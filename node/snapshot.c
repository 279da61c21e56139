/*
 * snapshot.c - shipping a checkpoint to a follower that is too far behind.
 *
 * Leader: when the core asks for a snapshot to `to`, a thread streams the
 * newest checkpoint directory file by file in SnapshotChunk frames of
 * NODE_SNAP_CHUNK_BYTES, then reports to the core. Follower: chunks are
 * written into <data>/snapshot-staging; after the last one the snapshot
 * message goes to the core, and when the core's Ready says so the raft
 * loop swaps the staged directory in for state/ (node_snapshot_install)
 * with storage's crash-atomic install (storage/install.c: fsynced staged
 * files, an INSTALLING marker that carries the snapshot meta, renames
 * each followed by a directory fsync, verification of the new state's
 * applied index and digest, and only then removal of the old state). A
 * crash anywhere in it is finished or rolled back at the next start
 * (raftstart.c, node_state_open).
 * Every chunk carries the sending leader's term: a follower takes chunks
 * only from the node it knows as the leader of exactly that term (a deposed
 * leader still streaming, a non-member, or a node merely claiming to lead
 * are refused and logged), and hands a staged snapshot to the core at that
 * term. Staging is bounded (files in order from offset 0, NODE_SNAP_FILES_MAX
 * files, cfg.snapshot_bytes_max bytes, the disk guard) and the staged copy
 * is opened and verified (applied index, digest) before the core hears of
 * it, so a garbage checkpoint is refused instead of failing the install.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "node_int.h"
#include "thread.h"

#define NODE_SNAP_SEND_WAIT_MS 5000

/* The node's receiving side and its senders. */
struct node_snap_recv {
	pthread_mutex_t mu;
	struct nsnap_stager st;           /* mu */
	uint64_t sending[NODE_PEERS_MAX]; /* peers being sent to */
	pthread_cond_t idle; /* a sender finished (CLOCK_MONOTONIC) */
};

static pthread_mutex_t snap_init_mu = PTHREAD_MUTEX_INITIALIZER;

static struct node_snap_recv *snap_state(struct lnode *n)
{
	pthread_mutex_lock(&snap_init_mu);
	if (n->snap_recv == NULL) {
		struct node_snap_recv *s = lora_calloc(1, sizeof *s);
		if (s && node_cond_init(&s->idle) != 0) {
			lora_free(s);
			s = NULL;
		}
		if (s) {
			pthread_mutex_init(&s->mu, NULL);
			nsnap_stager_init(&s->st, n->cfg.data_dir,
			                  n->cfg.snapshot_bytes_max);
		}
		n->snap_recv = s;
	}
	pthread_mutex_unlock(&snap_init_mu);
	return n->snap_recv;
}

void nsnap_stager_init(struct nsnap_stager *s, const char *data_dir,
                       uint64_t bytes_max)
{
	memset(s, 0, sizeof *s);
	snprintf(s->data_dir, sizeof s->data_dir, "%s", data_dir);
	s->bytes_max = bytes_max;
}

void nsnap_staging_dir(const struct nsnap_stager *s, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", s->data_dir, NODE_SNAP_STAGING);
}

int node_checkpoint_latest(struct lnode *n, char *dir, size_t dir_bytes,
                           uint64_t *index)
{
	DIR *d = opendir(n->ckpt_dir);
	if (d == NULL)
		return LORA_ENOTFOUND;
	uint64_t best = 0;
	int found = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		unsigned long long v = strtoull(de->d_name, &end, 10);
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9' &&
		    *end == '\0' && (!found || v > best)) {
			best = v;
			found = 1;
		}
	}
	closedir(d);
	if (!found)
		return LORA_ENOTFOUND;
	snprintf(dir, dir_bytes, "%s/%020llu", n->ckpt_dir,
	         (unsigned long long)best);
	*index = best;
	return 0;
}

/* ---- sending
 * ----------------------------------------------------------------- */

struct send_job {
	struct lnode *n;
	uint64_t to;
	uint64_t term; /* ours, as leader, when the core asked */
	struct rep_snapshot_meta meta;
};

static int send_chunk(struct lnode *n, uint64_t to, Lora__SnapshotChunk *c)
{
	size_t len = lora__snapshot_chunk__get_packed_size(c);
	uint8_t *buf = lora_malloc(len);
	if (buf == NULL)
		return LORA_ENOMEM;
	lora__snapshot_chunk__pack(c, buf);
	int rc = node_transport_send_wait(n->transport, to, NODE_FRAME_SNAPSHOT,
	                                  buf, len, NODE_SNAP_SEND_WAIT_MS);
	lora_free(buf);
	return rc;
}

/* Streams one file; `last` marks the final file of the checkpoint. */
static int send_file(struct lnode *n, struct send_job *j, const char *dir,
                     const char *name, int last, uint8_t *buf)
{
	char path[NODE_PATH_BYTES_MAX * 2];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return LORA_EIO;
	Lora__SnapshotMeta meta;
	Lora__ConfState conf;
	node_meta_to_pb(&j->meta, &meta, &conf);
	uint64_t off = 0;
	int rc = 0;
	for (;;) {
		size_t k = fread(buf, 1, NODE_SNAP_CHUNK_BYTES, f);
		int eof = k < NODE_SNAP_CHUNK_BYTES;
		Lora__SnapshotChunk c = LORA__SNAPSHOT_CHUNK__INIT;
		c.meta = &meta;
		c.file = (char *)name;
		c.offset = off;
		c.data.data = buf;
		c.data.len = k;
		c.last_of_file = eof;
		c.last = eof && last;
		c.term = j->term;
		rc = ferror(f) ? LORA_EIO : send_chunk(n, j->to, &c);
		if (atomic_load(&n->stopping))
			rc = LORA_ECLOSED;
		off += k;
		if (rc || eof)
			break;
	}
	fclose(f);
	return rc;
}

static int send_checkpoint(struct send_job *j)
{
	char dir[NODE_PATH_BYTES_MAX + 64];
	uint64_t idx;
	if (node_checkpoint_latest(j->n, dir, sizeof dir, &idx) != 0 ||
	    idx < j->meta.index)
		return LORA_ENOTFOUND;
	DIR *d = opendir(dir);
	if (d == NULL)
		return LORA_EIO;
	char **names = lora_calloc(NODE_SNAP_FILES_MAX, sizeof *names);
	size_t k = 0;
	struct dirent *de;
	while (names && (de = readdir(d)) && k < NODE_SNAP_FILES_MAX)
		if (de->d_name[0] != '.')
			names[k++] = lora_strdup(de->d_name);
	closedir(d);
	uint8_t *buf = lora_malloc(NODE_SNAP_CHUNK_BYTES);
	int rc = names && buf ? 0 : LORA_ENOMEM;
	for (size_t i = 0; rc == 0 && i < k; i++)
		rc = names[i]
		         ? send_file(j->n, j, dir, names[i], i + 1 == k, buf)
		         : LORA_ENOMEM;
	LOG_INFO("snapshot %llu (checkpoint %llu, %zu files) to node %llu: %s",
	         (unsigned long long)j->meta.index, (unsigned long long)idx, k,
	         (unsigned long long)j->to, rc ? lora_strerror(rc) : "sent");
	for (size_t i = 0; names && i < k; i++)
		lora_free(names[i]);
	lora_free(names);
	lora_free(buf);
	return rc;
}

static void *send_main(void *arg)
{
	struct send_job *j = arg;
	pthread_setname_np(pthread_self(), "lora-snapsend");
	int rc = send_checkpoint(j);
	struct lnode *n = j->n;
	uint64_t to = j->to;
	lora_free(j);
	/* The slot is free before the core hears of the end: the core may ask
	 * for the next snapshot to `to` at once, and node_snapshot_send must
	 * not find this sender still busy (a request dropped then left the
	 * core waiting for a report that never came, and `to` behind for
	 * good: integration_snapshot_install_crash). */
	struct node_snap_recv *s = snap_state(n);
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < NODE_PEERS_MAX; i++)
		if (s->sending[i] == to)
			s->sending[i] = 0;
	node_raft_snapshot_report(n, to, rc == 0);
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

void node_snapshot_send(struct lnode *n, uint64_t to,
                        const struct rep_snapshot_meta *meta)
{
	struct node_snap_recv *s = snap_state(n);
	struct send_job *j = lora_calloc(1, sizeof *j);
	struct rep_status st; /* called on the raft loop: the core is ours */
	rep_status(n->raft->rep, &st);
	if (s == NULL || j == NULL || st.role != REP_LEADER) {
		lora_free(j);
		rep_report_snapshot(n->raft->rep, to, 0);
		return;
	}
	*j = (struct send_job){n, to, st.term, *meta};
	pthread_mutex_lock(&s->mu);
	int busy = 0, slot = -1;
	for (int i = 0; i < NODE_PEERS_MAX; i++) {
		busy |= s->sending[i] == to;
		if (s->sending[i] == 0 && slot < 0)
			slot = i;
	}
	if (!busy && slot >= 0)
		s->sending[slot] = to;
	pthread_mutex_unlock(&s->mu);
	pthread_t t;
	if (busy || slot < 0) {
		/* not sent: the core asks again (after a heartbeat) rather than
		 * wait for a report of this request */
		lora_free(j);
		rep_report_snapshot(n->raft->rep, to, 0);
		return;
	}
	char err[LORA_ERRMSG_BYTES];
	if (node_thread_start(&t, send_main, j, "snapshot sender", err) != 0) {
		LOG_ERROR("snapshot to %llu: %s; the raft loop retries",
		          (unsigned long long)to, err);
		pthread_mutex_lock(&s->mu);
		s->sending[slot] = 0;
		pthread_mutex_unlock(&s->mu);
		lora_free(j);
		rep_report_snapshot(n->raft->rep, to, 0);
		return;
	}
	pthread_detach(t);
}

/* ---- receiving
 * ---------------------------------------------------------------- */

static int name_ok(const char *name)
{
	size_t len = strlen(name);
	return len > 0 && len <= NODE_SNAP_FILE_NAME_BYTES_MAX &&
	       strchr(name, '/') == NULL && name[0] != '.';
}

/* Writes one chunk into the staging directory. */
static int stage_chunk(struct nsnap_stager *s, const Lora__SnapshotChunk *c)
{
	char dir[NODE_PATH_BYTES_MAX + 64], path[NODE_PATH_BYTES_MAX * 2];
	nsnap_staging_dir(s, dir, sizeof dir);
	snprintf(path, sizeof path, "%s/%s", dir, c->file);
	FILE *f = fopen(path, c->offset == 0 ? "wb" : "r+b");
	if (f == NULL)
		return LORA_EIO;
	int ok = fseek(f, (long)c->offset, SEEK_SET) == 0 &&
	         fwrite(c->data.data, 1, c->data.len, f) == c->data.len;
	if (c->last_of_file)
		ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
	ok = fclose(f) == 0 && ok;
	return ok ? 0 : LORA_EIO;
}

/* A chunk of a snapshot we may start now. */
static int chunk_begin(struct nsnap_stager *s, uint64_t from,
                       const Lora__SnapshotChunk *c)
{
	int first = c->offset == 0 && (s->index != c->meta->index ||
	                               s->from != from || s->broken);
	if (!first)
		return s->broken ? -1 : 0;
	char dir[NODE_PATH_BYTES_MAX + 64];
	nsnap_staging_dir(s, dir, sizeof dir);
	if (s->index != c->meta->index || s->from != from) {
		sto_rm_rf(dir);
		if (mkdir(dir, 0700) != 0)
			return -1;
		LOG_INFO("receiving snapshot %llu from node %llu",
		         (unsigned long long)c->meta->index,
		         (unsigned long long)from);
	}
	s->index = c->meta->index;
	s->from = from;
	s->broken = 0;
	s->file[0] = '\0';
	s->file_off = s->bytes = s->files = 0;
	return 0;
}

/* A chunk is taken only from the node this node knows as the leader of
 * the chunk's term (a deposed leader still streaming, a non-member or a
 * node that just claims to lead are refused). 1 when refused. */
static int chunk_refused(struct lnode *n, uint64_t from,
                         const Lora__SnapshotChunk *c)
{
	struct rep_status st;
	node_status_get(n, &st);
	if (c->term != 0 && c->term == st.term && st.leader == from &&
	    from != n->cfg.id)
		return 0;
	node_peer_refused(from, "snapshot-chunk",
	                  "snapshot %llu chunk %s at term %llu: the leader "
	                  "known here is node %llu at term %llu",
	                  (unsigned long long)c->meta->index, c->file,
	                  (unsigned long long)c->term,
	                  (unsigned long long)st.leader,
	                  (unsigned long long)st.term);
	return 1;
}

/* Drops what was staged of the snapshot in progress. */
static void chunk_abandon(struct nsnap_stager *s)
{
	char dir[NODE_PATH_BYTES_MAX + 64];
	nsnap_staging_dir(s, dir, sizeof dir);
	sto_rm_rf(dir);
	s->broken = 1;
	s->index = 0;
}

/*
 * Bounds of one chunk of the snapshot being staged: files
 * arrive one after another, each from offset 0 with no gap or overlap,
 * at most NODE_SNAP_FILES_MAX files and s->bytes_max bytes in
 * all, and only while the disk keeps NODE_SNAP_RESERVE_BYTES free. 0, or
 * -1 after logging the refusal and dropping the staged part.
 */
static int chunk_bounds(struct nsnap_stager *s, uint64_t from,
                        const Lora__SnapshotChunk *c)
{
	char why[LORA_ERRMSG_BYTES] = "";
	uint64_t len = c->data.len;
	if (c->offset == 0) {
		if (++s->files > NODE_SNAP_FILES_MAX)
			snprintf(why, sizeof why, "more than %d files",
			         NODE_SNAP_FILES_MAX);
		snprintf(s->file, sizeof s->file, "%s", c->file);
		s->file_off = 0;
	} else if (strcmp(s->file, c->file) != 0 || c->offset != s->file_off) {
		snprintf(why, sizeof why,
		         "chunk of %s at offset %llu out of order", c->file,
		         (unsigned long long)c->offset);
	}
	if (!why[0] && len > s->bytes_max - s->bytes)
		snprintf(why, sizeof why,
		         "more than snapshot_bytes_max (%llu bytes)",
		         (unsigned long long)s->bytes_max);
	if (!why[0])
		node_space_check(&s->space, s->data_dir,
		                 NODE_SNAP_RESERVE_BYTES, len, why);
	if (!why[0]) {
		s->bytes += len;
		s->file_off += len;
		return 0;
	}
	node_peer_refused(from, "snapshot-bounds", "snapshot %llu: %s",
	                  (unsigned long long)c->meta->index, why);
	chunk_abandon(s);
	return -1;
}

/*
 * The whole snapshot is staged: opens the copy and reads its applied
 * index and digest (sto_install_prepare, which also fsyncs it) before the
 * raft core hears of it, so a garbage checkpoint is refused here instead of
 * failing the install after the core dropped its log.
 */
static int staged_verify(struct nsnap_stager *s, uint64_t from,
                         const struct rep_snapshot_meta *m)
{
	char dir[NODE_PATH_BYTES_MAX + 64], err[LORA_ERRMSG_BYTES];
	nsnap_staging_dir(s, dir, sizeof dir);
	int rc = sto_install_prepare(dir, &s->info, err);
	if (rc == 0 && s->info.applied < m->index)
		rc = lora_errf(LORA_ECORRUPT, err,
		               "it holds applied index %llu, below the "
		               "snapshot's %llu",
		               (unsigned long long)s->info.applied,
		               (unsigned long long)m->index);
	if (rc == 0)
		return 0;
	node_peer_refused(from, "snapshot-verify",
	                  "staged snapshot %llu does not verify: %s",
	                  (unsigned long long)m->index, err);
	chunk_abandon(s);
	return -1;
}

int node_snapshot_chunk_decode(const uint8_t *p, size_t len,
                               Lora__SnapshotChunk **out)
{
	Lora__SnapshotChunk *c =
	    lora__snapshot_chunk__unpack(&lora_pb_allocator, len, p);
	*out = NULL;
	if (c == NULL || c->meta == NULL || c->file == NULL ||
	    !name_ok(c->file)) {
		if (c)
			lora__snapshot_chunk__free_unpacked(c,
			                                    &lora_pb_allocator);
		return LORA_ECORRUPT;
	}
	*out = c;
	return 0;
}

void node_snapshot_on_chunk(struct lnode *n, uint64_t from, const uint8_t *p,
                            size_t len)
{
	struct node_snap_recv *s = snap_state(n);
	Lora__SnapshotChunk *c = NULL;
	struct rep_snapshot_meta meta;
	if (s == NULL || node_snapshot_chunk_decode(p, len, &c) != 0 ||
	    node_meta_from_pb(c->meta, &meta) != 0) {
		if (c)
			lora__snapshot_chunk__free_unpacked(c,
			                                    &lora_pb_allocator);
		node_peer_refused(from, "snapshot-chunk", "malformed");
		return;
	}
	if (chunk_refused(n, from, c)) {
		lora__snapshot_chunk__free_unpacked(c, &lora_pb_allocator);
		return;
	}
	pthread_mutex_lock(&s->mu);
	enum nsnap_result r =
	    nsnap_stage(&s->st, from, c, &meta, lora_now_ms());
	uint64_t applied = s->st.info.applied;
	pthread_mutex_unlock(&s->mu);
	if (r == NSNAP_STAGED)
		LOG_INFO("snapshot %llu staged and verified (applied index "
		         "%llu)",
		         (unsigned long long)meta.index,
		         (unsigned long long)applied);
	if (r == NSNAP_STAGED || r == NSNAP_AGAIN)
		node_raft_snapshot_staged(n, &meta, from, c->term);
	lora__snapshot_chunk__free_unpacked(c, &lora_pb_allocator);
}

enum nsnap_result nsnap_stage(struct nsnap_stager *s, uint64_t from,
                              const Lora__SnapshotChunk *c,
                              const struct rep_snapshot_meta *m,
                              uint64_t now_ms)
{
	if (s->staged && c->meta->index <= s->staged)
		/* Already staged: a resend only repeats the hand-over. */
		return c->last && c->meta->index == s->staged ? NSNAP_AGAIN
		                                              : NSNAP_IGNORED;
	if (s->staged && now_ms - s->staged_ms < NODE_SNAP_STAGED_HOLD_MS)
		/* The raft loop may be installing the staged one right now:
		 * staging a newer one would wipe its files first (the install
		 * then failed and the node exited). Its chunks are dropped;
		 * the leader sends it again if this node is still behind. */
		return NSNAP_IGNORED;
	s->staged = 0; /* one never installed: a newer one replaces it */
	int rc = chunk_begin(s, from, c);
	if (rc == 0 && (s->index != c->meta->index || s->from != from))
		rc = -1; /* a chunk of a snapshot we are not staging */
	if (rc == 0)
		rc = chunk_bounds(s, from, c);
	if (rc == 0 && stage_chunk(s, c) != 0) {
		LOG_ERROR("cannot stage snapshot chunk %s", c->file);
		s->broken = 1;
		rc = -1;
	}
	if (rc)
		return NSNAP_REFUSED;
	if (!c->last)
		return NSNAP_TAKEN;
	if (staged_verify(s, from, m) != 0)
		return NSNAP_REFUSED;
	s->index = 0; /* the next start begins afresh */
	s->staged = m->index;
	s->staged_ms = now_ms;
	return NSNAP_STAGED;
}

/* The snapshot meta packed into the install marker, so that a start-up
 * that finishes an interrupted install can redo node_snapshot_adopt. */
static int meta_pack(const struct rep_snapshot_meta *m,
                     struct sto_install_info *info, char *errmsg)
{
	Lora__SnapshotMeta pb;
	Lora__ConfState conf;
	node_meta_to_pb(m, &pb, &conf);
	size_t len = lora__snapshot_meta__get_packed_size(&pb);
	if (len > sizeof info->extra)
		return lora_errf(LORA_ELIMIT, errmsg,
		                 "snapshot meta of %zu bytes", len);
	info->extra_len = lora__snapshot_meta__pack(&pb, info->extra);
	return 0;
}

int node_snapshot_meta_unpack(const struct sto_install_info *info,
                              struct rep_snapshot_meta *m)
{
	Lora__SnapshotMeta *pb = lora__snapshot_meta__unpack(
	    &lora_pb_allocator, info->extra_len, info->extra);
	if (pb == NULL)
		return LORA_ECORRUPT;
	int rc = node_meta_from_pb(pb, m);
	lora__snapshot_meta__free_unpacked(pb, &lora_pb_allocator);
	return rc;
}

int node_snapshot_adopt(struct lnode *n, const struct rep_snapshot_meta *m,
                        char *errmsg)
{
	uint64_t first = sto_log_first_index(n->raft->log);
	int rc = sto_log_truncate_suffix(n->raft->log, first, errmsg);
	if (rc == 0)
		rc = sto_log_compact(n->raft->log, m->index, m->term, errmsg);
	if (rc)
		return lora_errwrap(rc, errmsg, "drop log after snapshot");
	rc = node_meta_save(n, m);
	if (rc)
		return lora_errf(rc, errmsg, "save %s/snapshot.meta",
		                 n->cfg.data_dir);
	sto_install_crash_point(6);
	return 0;
}

/* Swaps the staged checkpoint in for state/ (storage/install.c: marker,
 * renames, verify), with the store closed meanwhile. The staged copy was
 * verified and fsynced when its last chunk arrived (staged_verify) and
 * nothing wrote to it since (s->mu is held). On an error the old state is
 * back and open again. */
static int swap_store(struct lnode *n, const struct rep_snapshot_meta *m,
                      char *errmsg)
{
	struct sto_install_info info = n->snap_recv->st.info;
	int rc = 0;
	if (info.applied < m->index)
		rc =
		    lora_errf(LORA_ECORRUPT, errmsg,
		              "the staged checkpoint is at applied index %llu, "
		              "below the snapshot's %llu",
		              (unsigned long long)info.applied,
		              (unsigned long long)m->index);
	if (rc == 0)
		rc = meta_pack(m, &info, errmsg);
	if (rc)
		return rc;
	node_store_close_exclusive(n);
	struct sto_store *s = NULL;
	rc = sto_install_swap(n->cfg.data_dir, NODE_SNAP_STAGING, &info, &s,
	                      errmsg);
	if (rc && sto_open(n->state_dir, NULL, &s, NULL) != 0)
		s = NULL; /* the raft loop stops the node on this error */
	n->store = s;
	node_store_exclusive_end(n);
	return rc;
}

int node_snapshot_install(struct lnode *n, const struct rep_snapshot_meta *m,
                          char *errmsg)
{
	/* LORA_ECLOSED: stopping, the apply loop is gone or going; the
	 * install goes on as before (its steps are crash-safe) */
	(void)node_apply_drain(n);
	node_native_close_cursors(n);
	struct node_snap_recv *s = snap_state(n);
	if (s == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	pthread_mutex_lock(&s->mu); /* no chunk writes while swapping */
	int rc = s->st.staged == m->index
	             ? swap_store(n, m, errmsg)
	             : lora_errf(LORA_EINTERNAL, errmsg,
	                         "snapshot %llu accepted but %llu is staged",
	                         (unsigned long long)m->index,
	                         (unsigned long long)s->st.staged);
	s->st.staged = 0;
	pthread_mutex_unlock(&s->mu);
	if (rc == 0)
		rc = node_snapshot_adopt(n, m, errmsg);
	if (rc == 0)
		rc = sto_install_done(n->cfg.data_dir, errmsg);
	if (rc)
		return rc;
	node_applied_reset(n, sto_applied_index(n->store));
	LOG_INFO("installed snapshot %llu (state at %llu)",
	         (unsigned long long)m->index,
	         (unsigned long long)node_applied_index(n));
	return 0;
}

/* Senders stop within one chunk once the node is stopping; they use n, so
 * they are waited for, however long, saying so every second. */
#define NODE_SNAP_STOP_LOG_MS 1000

void node_snapshot_cleanup(struct lnode *n)
{
	struct node_snap_recv *s = n->snap_recv;
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		int busy = 0;
		for (int i = 0; i < NODE_PEERS_MAX; i++)
			busy |= s->sending[i] != 0;
		if (!busy)
			break;
		if (node_cond_wait_until(&s->idle, &s->mu,
		                         lora_now_ms() +
		                             NODE_SNAP_STOP_LOG_MS) != 0)
			LOG_WARN("stopping: waiting for snapshot senders");
	}
	pthread_mutex_unlock(&s->mu);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->mu);
	lora_free(s);
	n->snap_recv = NULL;
}
