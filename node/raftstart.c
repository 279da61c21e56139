/* raftstart.c - restoring the state and the Raft core from disk, members,
 * published status.
 *
 * Start-up never deletes a state it cannot prove superseded, and never
 * serves a state that is behind what the node's own metadata says it held:
 * snapshot.meta and the raft log's first index say up to which index the
 * entries exist only in state/ (or a checkpoint). A state/ below that
 * (missing, or rolled back by a crash) is replaced by the newest local
 * checkpoint that covers the index, and the log replays from there; with no
 * such checkpoint the node refuses to start and says how to recover.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "node_int.h"
#include "thread.h"

#define NODE_META_FILE      "snapshot.meta"
#define NODE_MEMBERS_FILE   "members"
#define NODE_META_BYTES_MAX 4096
#define NODE_RESTORE_TERM   1 /* term recorded for a restored backup's index */

/* Writes data to dir/name atomically (temp file, fsync, rename, fsync of
 * dir). */
static int write_file_atomic(const char *dir, const char *name,
                             const void *data, size_t len)
{
	char tmp[NODE_PATH_BYTES_MAX + 64], dst[NODE_PATH_BYTES_MAX + 64];
	snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
	snprintf(dst, sizeof dst, "%s/%s", dir, name);
	FILE *f = fopen(tmp, "wb");
	if (f == NULL)
		return LORA_EIO;
	int ok = fwrite(data, 1, len, f) == len;
	ok = fflush(f) == 0 && ok;
	ok = fsync(fileno(f)) == 0 && ok;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, dst) != 0 || sto_fsync_path(dir) != 0)
		return LORA_EIO; /* the rename is durable once dir is synced */
	return 0;
}

int node_meta_save(struct lnode *n, const struct rep_snapshot_meta *m)
{
	Lora__SnapshotMeta pb;
	Lora__ConfState conf;
	node_meta_to_pb(m, &pb, &conf);
	uint8_t buf[NODE_META_BYTES_MAX];
	size_t len = lora__snapshot_meta__get_packed_size(&pb);
	if (len > sizeof buf)
		return LORA_ELIMIT;
	lora__snapshot_meta__pack(&pb, buf);
	int rc = write_file_atomic(n->cfg.data_dir, NODE_META_FILE, buf, len);
	if (rc)
		LOG_ERROR("cannot save %s/%s", n->cfg.data_dir, NODE_META_FILE);
	return rc;
}

int node_meta_load(struct lnode *n, struct rep_snapshot_meta *m)
{
	memset(m, 0, sizeof *m);
	char path[NODE_PATH_BYTES_MAX + 64];
	snprintf(path, sizeof path, "%s/%s", n->cfg.data_dir, NODE_META_FILE);
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return LORA_ENOTFOUND;
	uint8_t buf[NODE_META_BYTES_MAX];
	size_t len = fread(buf, 1, sizeof buf, f);
	fclose(f);
	Lora__SnapshotMeta *pb =
	    lora__snapshot_meta__unpack(&lora_pb_allocator, len, buf);
	if (pb == NULL)
		return LORA_ECORRUPT;
	int rc = node_meta_from_pb(pb, m);
	lora__snapshot_meta__free_unpacked(pb, &lora_pb_allocator);
	return rc;
}

/* ---- the state at start-up
 * ----------------------------------------------------------- */

#define NODE_COPY_BUF_BYTES (1u << 20)

/* Copies one file (hard link for immutable SST files). */
static int copy_file(const char *src, const char *dst, const char *name,
                     uint8_t *buf)
{
	char a[NODE_PATH_BYTES_MAX * 2], b[NODE_PATH_BYTES_MAX * 2];
	snprintf(a, sizeof a, "%s/%s", src, name);
	snprintf(b, sizeof b, "%s/%s", dst, name);
	size_t nl = strlen(name);
	if (nl > 4 && strcmp(name + nl - 4, ".sst") == 0 && link(a, b) == 0)
		return 0;
	int in = open(a, O_RDONLY | O_CLOEXEC);
	int out = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = in < 0 || out < 0 ? LORA_EIO : 0;
	ssize_t k;
	while (rc == 0 && (k = read(in, buf, NODE_COPY_BUF_BYTES)) != 0)
		if (k < 0 || write(out, buf, (size_t)k) != k)
			rc = LORA_EIO;
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0)
		rc = LORA_EIO;
	return rc;
}

/* A copy of checkpoint dir src at dst (which must not exist), for an
 * install: the checkpoint itself stays as it was. */
static int copy_checkpoint(const char *src, const char *dst, char *errmsg)
{
	if (mkdir(dst, 0755) != 0)
		return lora_errf(LORA_EIO, errmsg, "create %s: %s", dst,
		                 strerror(errno));
	DIR *d = opendir(src);
	uint8_t *buf = lora_malloc(NODE_COPY_BUF_BYTES);
	int rc = d && buf ? 0 : LORA_EIO;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)))
		if (de->d_name[0] != '.')
			rc = copy_file(src, dst, de->d_name, buf);
	if (d)
		closedir(d);
	lora_free(buf);
	if (rc)
		return lora_errf(rc, errmsg, "copy %s to %s: %s", src, dst,
		                 strerror(errno));
	return 0;
}

/* The index up to which entries exist only in state/: what snapshot.meta
 * records and what the raft log dropped. n->raft->log is open. */
static uint64_t state_needed(struct lnode *n, uint64_t *meta_index)
{
	struct rep_snapshot_meta m;
	*meta_index = node_meta_load(n, &m) == 0 ? m.index : 0;
	uint64_t first = sto_log_first_index(n->raft->log);
	uint64_t need = first > 0 ? first - 1 : 0;
	return need > *meta_index ? need : *meta_index;
}

static int refuse_start(struct lnode *n, uint64_t need, uint64_t meta_index,
                        int have, uint64_t applied, char *errmsg)
{
	char ck[NODE_PATH_BYTES_MAX + 64];
	uint64_t ci = 0;
	if (node_checkpoint_latest(n, ck, sizeof ck, &ci) != 0)
		snprintf(ck, sizeof ck, "none");
	char st[64] = "missing";
	if (have)
		snprintf(st, sizeof st, "at applied index %llu",
		         (unsigned long long)applied);
	LOG_ERROR("%s is %s, but the raft log starts after index %llu "
	          "(snapshot.meta: %llu): entries up to %llu exist only in a "
	          "state or a checkpoint, and no local checkpoint covers them "
	          "(newest: %s). To recover, with the node stopped: copy a "
	          "checkpoint at index %llu or later (another node's "
	          "checkpoints/<index>, or a backup) to %s/checkpoints/<its "
	          "index in 20 digits> and start the node again (it restores "
	          "it and replays the log); or remove this member "
	          "(/cluster/remove), delete the whole data directory %s and "
	          "add the node back as a new member with --join",
	          n->state_dir, st, (unsigned long long)need,
	          (unsigned long long)meta_index, (unsigned long long)need, ck,
	          (unsigned long long)need, n->cfg.data_dir, n->cfg.data_dir);
	return lora_errf(LORA_ECORRUPT, errmsg,
	                 "state/ is %s but the raft log starts after index "
	                 "%llu: refusing to start rather than serve a graph "
	                 "without acknowledged writes (recovery steps in the "
	                 "log line above; docs/operations.md, \"A state behind "
	                 "its log\")",
	                 st, (unsigned long long)need);
}

/* state/ (missing, or at applied < need) replaced by a copy of the newest
 * local checkpoint when that covers need, through the same install steps
 * as a snapshot (the state it replaces is superseded: it is behind the
 * checkpoint, and the log holds every entry after the checkpoint). */
static int restore_checkpoint(struct lnode *n, uint64_t need,
                              uint64_t meta_index, int have, uint64_t applied,
                              char *errmsg)
{
	char ck[NODE_PATH_BYTES_MAX + 64], staged[NODE_PATH_BYTES_MAX + 64];
	uint64_t ci;
	if (node_checkpoint_latest(n, ck, sizeof ck, &ci) != 0 || ci < need)
		return refuse_start(n, need, meta_index, have, applied, errmsg);
	snprintf(staged, sizeof staged, "%s/%s", n->cfg.data_dir,
	         NODE_SNAP_STAGING);
	struct sto_install_info info;
	int rc = copy_checkpoint(ck, staged, errmsg);
	if (rc == 0)
		rc = sto_install_prepare(staged, &info, errmsg);
	if (rc == 0 && info.applied < need)
		rc = lora_errf(LORA_ECORRUPT, errmsg,
		               "checkpoint %s holds applied index %llu", ck,
		               (unsigned long long)info.applied);
	if (rc == 0)
		rc = sto_install_swap(n->cfg.data_dir, NODE_SNAP_STAGING, &info,
		                      &n->store, errmsg);
	if (rc == 0)
		rc = sto_install_done(n->cfg.data_dir, errmsg);
	if (rc)
		return lora_errwrap(rc, errmsg, "restore checkpoint %s", ck);
	char st[64] = "missing";
	if (have)
		snprintf(st, sizeof st, "at applied index %llu",
		         (unsigned long long)applied);
	LOG_WARN("%s was %s, below index %llu the raft log starts after: "
	         "restored checkpoint %s (applied index %llu); the log "
	         "replays from there",
	         n->state_dir, st, (unsigned long long)need, ck,
	         (unsigned long long)info.applied);
	return 0;
}

/* Opens state/ and checks it is not behind the log. */
static int open_checked(struct lnode *n, char *errmsg)
{
	uint64_t meta_index, need = state_needed(n, &meta_index);
	struct stat st;
	int have = stat(n->state_dir, &st) == 0;
	uint64_t applied = 0;
	if (have || need == 0) {
		int rc = sto_open(n->state_dir, NULL, &n->store, errmsg);
		if (rc)
			return rc;
		applied = sto_applied_index(n->store);
	}
	if (applied >= need)
		return 0;
	if (n->store)
		sto_close(n->store);
	n->store = NULL;
	return restore_checkpoint(n, need, meta_index, have, applied, errmsg);
}

/* An install the recovery finished: the node's own step again. */
static int finish_install(struct lnode *n, const struct sto_install_info *i,
                          char *errmsg)
{
	struct rep_snapshot_meta m;
	int rc = 0;
	if (i->extra_len > 0) { /* a snapshot (a checkpoint restore: none) */
		rc = node_snapshot_meta_unpack(i, &m);
		if (rc)
			return lora_errf(rc, errmsg, "install marker meta");
		rc = node_snapshot_adopt(n, &m, errmsg);
	}
	if (rc == 0)
		rc = sto_install_done(n->cfg.data_dir, errmsg);
	if (rc == 0)
		LOG_WARN("finished an interrupted state install (applied index "
		         "%llu)",
		         (unsigned long long)i->applied);
	return rc;
}

int node_state_open(struct lnode *n, char *errmsg)
{
	struct sto_install_recovery r;
	int rc = sto_install_recover(n->cfg.data_dir, &r, errmsg);
	if (rc)
		return lora_errwrap(rc, errmsg, "interrupted state install");
	if (r.kept[0])
		LOG_WARN(
		    "%s/state.old was there without an install marker (not "
		    "from an install this node can account for): kept as "
		    "%s/%s, not used; remove it once you no longer need it",
		    n->cfg.data_dir, n->cfg.data_dir, r.kept);
	if (r.outcome == STO_INSTALL_BACK)
		LOG_WARN("an interrupted state install was rolled back: the "
		         "state is the one before it");
	char staged[NODE_PATH_BYTES_MAX + 64];
	snprintf(staged, sizeof staged, "%s/%s", n->cfg.data_dir,
	         NODE_SNAP_STAGING);
	sto_rm_rf(staged); /* no install under way: a partial copy */
	rc = sto_log_open(n->log_dir, &n->raft->log, errmsg);
	if (rc)
		return rc;
	if (r.outcome == STO_INSTALL_FORWARD)
		rc = finish_install(n, &r.info, errmsg);
	if (rc == 0)
		rc = open_checked(n, errmsg);
	sto_log_close(n->raft->log);
	n->raft->log = NULL;
	return rc;
}

/* ---- members
 * ------------------------------------------------------------------ */

void node_members_save(struct lnode *n)
{
	struct lora_buf b = {0};
	pthread_mutex_lock(&n->status_mu);
	for (int i = 0; i < n->n_members; i++)
		lora_buf_printf(
		    &b, "%llu %s %s\n", (unsigned long long)n->members[i].id,
		    n->members[i].peer_addr,
		    n->members[i].http_addr[0] ? n->members[i].http_addr : "-");
	pthread_mutex_unlock(&n->status_mu);
	if (lora_buf_error(&b)) /* never a file missing members */
		LOG_ERROR("cannot save the members file: out of memory");
	else if (write_file_atomic(n->cfg.data_dir, NODE_MEMBERS_FILE,
	                           b.data ? b.data : "", b.len) != 0)
		LOG_ERROR("cannot save the members file");
	lora_buf_free(&b);
}

static struct node_member *member_slot(struct lnode *n, uint64_t id)
{
	for (int i = 0; i < n->n_members; i++)
		if (n->members[i].id == id)
			return &n->members[i];
	if (n->n_members >= NODE_PEERS_MAX)
		return NULL;
	struct node_member *m = &n->members[n->n_members++];
	memset(m, 0, sizeof *m);
	m->id = id;
	return m;
}

/* Members: configured peers, then what the members file remembers. */
static void members_load(struct lnode *n)
{
	for (int i = 0; i < n->cfg.n_peers; i++) {
		struct node_member *m = member_slot(n, n->cfg.peers[i].id);
		if (m)
			snprintf(m->peer_addr, sizeof m->peer_addr, "%s",
			         n->cfg.peers[i].addr);
	}
	struct node_member *self = member_slot(n, n->cfg.id);
	if (self) {
		snprintf(self->peer_addr, sizeof self->peer_addr, "%s",
		         n->cfg.peer_addr);
		snprintf(self->http_addr, sizeof self->http_addr, "%s",
		         n->cfg.http_addr);
		snprintf(self->client_addr, sizeof self->client_addr, "%s",
		         n->cfg.client_addr);
	}
	char path[NODE_PATH_BYTES_MAX + 64];
	snprintf(path, sizeof path, "%s/%s", n->cfg.data_dir,
	         NODE_MEMBERS_FILE);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	char line[512], peer[NODE_ADDR_BYTES_MAX], http[NODE_ADDR_BYTES_MAX];
	unsigned long long id;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%llu %127s %127s", &id, peer, http) == 3 &&
		    id != n->cfg.id) {
			struct node_member *m = member_slot(n, id);
			if (m == NULL)
				break;
			snprintf(m->peer_addr, sizeof m->peer_addr, "%s", peer);
			if (strcmp(http, "-") != 0)
				snprintf(m->http_addr, sizeof m->http_addr,
				         "%s", http);
		}
	fclose(f);
}

int node_member_get(struct lnode *n, uint64_t id, struct node_member *out)
{
	int rc = LORA_ENOTFOUND;
	pthread_mutex_lock(&n->status_mu);
	for (int i = 0; i < n->n_members; i++)
		if (n->members[i].id == id) {
			*out = n->members[i];
			rc = 0;
		}
	pthread_mutex_unlock(&n->status_mu);
	return rc;
}

void node_status_get(struct lnode *n, struct rep_status *st)
{
	pthread_mutex_lock(&n->status_mu);
	*st = n->rs;
	pthread_mutex_unlock(&n->status_mu);
}

uint64_t node_leader_id(struct lnode *n)
{
	pthread_mutex_lock(&n->status_mu);
	uint64_t l = n->rs.leader;
	pthread_mutex_unlock(&n->status_mu);
	return l;
}

uint64_t node_status_seq(struct lnode *n)
{
	pthread_mutex_lock(&n->status_mu);
	uint64_t seq = n->status_seq;
	pthread_mutex_unlock(&n->status_mu);
	return seq;
}

int node_status_wait(struct lnode *n, uint64_t seen, uint64_t deadline_ms)
{
	int rc = 0;
	pthread_mutex_lock(&n->status_mu);
	while (n->status_seq == seen && !atomic_load(&n->stopping) && rc == 0)
		rc = node_cond_wait_until(&n->status_cond, &n->status_mu,
		                          deadline_ms);
	if (n->status_seq != seen)
		rc = 0;
	else if (atomic_load(&n->stopping))
		rc = LORA_ECLOSED;
	pthread_mutex_unlock(&n->status_mu);
	return rc;
}

int node_is_leader(struct lnode *n)
{
	pthread_mutex_lock(&n->status_mu);
	int l = n->rs.role == REP_LEADER;
	pthread_mutex_unlock(&n->status_mu);
	return l;
}

/* ---- restore
 * ------------------------------------------------------------------ */

/* Reads the whole stored log (first..last] into *out (free with
 * sto_log_entries_free semantics: one array per read, merged here). */
static int load_entries(struct lnode *n, struct rep_entry **out, size_t *cnt,
                        char *errmsg)
{
	uint64_t first = sto_log_first_index(n->raft->log);
	uint64_t last = sto_log_last_index(n->raft->log);
	*out = NULL;
	*cnt = 0;
	if (last < first)
		return 0;
	size_t total = (size_t)(last - first + 1);
	struct rep_entry *all = lora_calloc(total, sizeof *all);
	if (all == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	size_t got = 0;
	while (got < total) {
		struct sto_log_entry *es;
		size_t k;
		int rc = sto_log_entries(n->raft->log, first + got, last + 1,
		                         STO_LOG_READ_BYTES_MAX, &es, &k);
		if (rc || k == 0) {
			for (size_t i = 0; i < got; i++)
				lora_free(all[i].data);
			lora_free(all);
			return lora_errf(rc ? rc : LORA_ECORRUPT, errmsg,
			                 "read raft log at %llu",
			                 (unsigned long long)(first + got));
		}
		for (size_t i = 0; i < k; i++) {
			all[got + i] = (struct rep_entry){
			    es[i].index, es[i].term, es[i].type, es[i].data,
			    es[i].len};
			es[i].data = NULL; /* moved */
		}
		sto_log_entries_free(es, k);
		got += k;
	}
	*out = all;
	*cnt = total;
	return 0;
}

static void free_entries(struct rep_entry *e, size_t cnt)
{
	for (size_t i = 0; i < cnt; i++)
		lora_free(e[i].data);
	lora_free(e);
}

_Static_assert(NODE_HEARTBEAT_MS_MIN >= NODE_TICKS_PER_HEARTBEAT,
               "a tick is at least 1 ms");

static void fill_config(struct lnode *n, struct rep_config *rc)
{
	rep_config_init(rc, n->cfg.id);
	if (!n->cfg.join)
		for (int i = 0; i < n->cfg.n_peers && i < REP_MEMBERS_MAX; i++)
			rc->voters[rc->n_voters++] = n->cfg.peers[i].id;
	/* A tick is half a heartbeat period: the election timeout and the
	 * vote lease fall on that grid, so a drawn timeout fires within half
	 * a heartbeat of the time it names (with election 300 ms and
	 * heartbeat 50 ms: 12 ticks of 25 ms, timeouts in [300, 450) ms).
	 * node_config_validate keeps election_ms >= 3 heartbeats, which the
	 * core needs (rep_new refuses fewer than 2 heartbeats + 2 ticks). */
	n->raft->tick_ms = n->cfg.heartbeat_ms / NODE_TICKS_PER_HEARTBEAT;
	rc->election_ticks = n->cfg.election_ms / (uint32_t)n->raft->tick_ms;
	rc->heartbeat_ticks = NODE_TICKS_PER_HEARTBEAT;
	rc->seed = lora_now_ns() ^ (n->cfg.id * 0x9e3779b97f4a7c15ull);
}

/*
 * A state/ restored from a backup next to an empty raftlog/: the state's
 * applied index becomes the compaction point (term NODE_RESTORE_TERM, the
 * configured voters), so Raft continues after it instead of replaying
 * indexes the state already holds. Every node restored from the same
 * backup derives the same point.
 */
static int adopt_restored_state(struct lnode *n, char *errmsg)
{
	struct rep_snapshot_meta m;
	uint64_t applied = sto_applied_index(n->store);
	if (applied == 0 || sto_log_last_index(n->raft->log) != 0 ||
	    node_meta_load(n, &m) != LORA_ENOTFOUND)
		return 0;
	memset(&m, 0, sizeof m);
	m.index = applied;
	m.term = NODE_RESTORE_TERM;
	for (int i = 0; i < n->cfg.n_peers && i < REP_MEMBERS_MAX; i++)
		m.voters[m.n_voters++] = n->cfg.peers[i].id;
	int rc = sto_log_compact(n->raft->log, m.index, m.term, errmsg);
	if (rc)
		return lora_errwrap(rc, errmsg, "adopt restored state");
	rc = node_meta_save(n, &m);
	if (rc)
		return lora_errf(rc, errmsg, "save snapshot meta");
	LOG_INFO("state at index %llu without a raft log (restored backup): "
	         "raft continues after it",
	         (unsigned long long)applied);
	return 0;
}

/*
 * Versions before sto_log_save wrote a Ready's entries and its hard state
 * in two synced writes: a kill between them left entries of a term T above
 * the stored term, which rep_new refuses ("entry I has term T"). The lost
 * hard state was the one of that same Ready (any later term came in a
 * later Ready, never written), so the node was in term T: it led T (its
 * vote was its own) or followed T's leader. Term T with the node's own
 * vote is safe in both cases: it grants no vote in T to anyone. Saved
 * before the core starts.
 */
static int repair_hard_state(struct lnode *n, struct sto_hard_state *hs,
                             const struct rep_entry *ents, size_t cnt,
                             char *errmsg)
{
	uint64_t top = 0;
	for (size_t i = 0; i < cnt; i++)
		if (ents[i].term > top)
			top = ents[i].term;
	if (top <= hs->term)
		return 0;
	LOG_WARN("the raft log holds entries of term %llu but the stored "
	         "term is %llu (an older version killed between its log and "
	         "hard state writes): term set to %llu, voted for itself",
	         (unsigned long long)top, (unsigned long long)hs->term,
	         (unsigned long long)top);
	hs->term = top;
	hs->vote = n->cfg.id;
	int rc = sto_log_set_hard_state(n->raft->log, hs, errmsg);
	return rc ? lora_errwrap(rc, errmsg, "repair hard state") : 0;
}

/* Fills rs from disk. Entries in *ents must be freed by the caller. */
static int restore_state(struct lnode *n, struct rep_restore *rs,
                         struct rep_entry **ents, size_t *cnt, char *errmsg)
{
	struct sto_hard_state hs;
	int rc = sto_log_hard_state(n->raft->log, &hs);
	if (rc)
		return lora_errf(rc, errmsg, "read hard state");
	rc = adopt_restored_state(n, errmsg);
	if (rc)
		return rc;
	rc = load_entries(n, ents, cnt, errmsg);
	if (rc == 0)
		rc = repair_hard_state(n, &hs, *ents, *cnt, errmsg);
	if (rc)
		return rc;
	memset(rs, 0, sizeof *rs);
	if (node_meta_load(n, &rs->snap) != 0) {
		memset(&rs->snap, 0, sizeof rs->snap);
		uint64_t first = sto_log_first_index(n->raft->log);
		rs->snap.index = first > 0 ? first - 1 : 0;
		if (rs->snap.index > 0)
			sto_log_term(n->raft->log, rs->snap.index,
			             &rs->snap.term);
	}
	uint64_t last = sto_log_last_index(n->raft->log);
	uint64_t applied = sto_applied_index(n->store);
	if (applied > last)
		applied = last; /* checkpoint newer than the log: re-apply */
	if (applied < rs->snap.index)
		applied = rs->snap.index;
	if (hs.commit < applied)
		hs.commit = applied;
	if (hs.commit > last)
		hs.commit = last;
	rs->hs = (struct rep_hard_state){hs.term, hs.vote, hs.commit};
	rs->entries = *ents;
	rs->n_entries = *cnt;
	rs->applied = applied;
	n->raft->snap_meta = rs->snap;
	n->raft->last_persisted_term = hs.term;
	n->raft->last_persisted_vote = hs.vote;
	LOG_INFO("restored: term %llu, log (%llu, %llu], commit %llu, "
	         "applied %llu",
	         (unsigned long long)hs.term,
	         (unsigned long long)rs->snap.index, (unsigned long long)last,
	         (unsigned long long)hs.commit, (unsigned long long)applied);
	return 0;
}

int node_raft_start(struct lnode *n, char *errmsg)
{
	n->raft->priv = node_raft_priv_new();
	if (n->raft->priv == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	members_load(n);
	int rc = sto_log_open(n->log_dir, &n->raft->log, errmsg);
	if (rc)
		return rc;
	struct rep_restore rs;
	struct rep_entry *ents = NULL;
	size_t cnt = 0;
	rc = restore_state(n, &rs, &ents, &cnt, errmsg);
	if (rc)
		return rc;
	struct rep_config rcfg;
	fill_config(n, &rcfg);
	rc = rep_new(&rcfg, &rs, &n->raft->rep, errmsg);
	free_entries(ents, cnt);
	if (rc)
		return lora_errwrap(rc, errmsg, "raft");
	node_applied_reset(n, sto_applied_index(n->store));
	for (int i = 0; n->transport && i < n->n_members; i++)
		node_transport_set_peer(n->transport, n->members[i].id,
		                        n->members[i].peer_addr, NULL);
	rep_status(n->raft->rep, &n->rs);
	rc = node_thread_start(&n->raft->thread, node_raft_main, n, "raft loop",
	                       errmsg);
	n->raft->running = rc == 0;
	return rc;
}

int node_raft_new(struct node_raft **out)
{
	struct node_raft *r = lora_calloc(1, sizeof *r);
	if (r == NULL)
		return LORA_ENOMEM;
	if (nq_init(&r->inbox, NODE_INBOX_ITEMS_MAX) != 0) {
		lora_free(r);
		return LORA_EINTERNAL;
	}
	/* writer-preferring: change streams reading the log must not keep
	 * the raft loop from reopening it */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(
	    &ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&r->log_rw, &ra);
	pthread_rwlockattr_destroy(&ra);
	*out = r;
	return 0;
}

void node_raft_free(struct node_raft *r)
{
	if (r == NULL)
		return;
	LORA_ASSERT(!r->running && r->rep == NULL && r->log == NULL);
	nq_destroy(&r->inbox);
	pthread_rwlock_destroy(&r->log_rw);
	lora_free(r);
}

void node_raft_stop(struct lnode *n)
{
	if (n->raft == NULL)
		return;
	nq_close(&n->raft->inbox); /* wakes the loop; later calls refused */
	if (n->raft->running)
		pthread_join(n->raft->thread, NULL);
	n->raft->running = 0;
	node_raft_close_inbox(n); /* a loop that never ran left them */
	rep_free(n->raft->rep);
	n->raft->rep = NULL;
	pthread_rwlock_wrlock(&n->raft->log_rw);
	sto_log_close(n->raft->log);
	n->raft->log = NULL;
	pthread_rwlock_unlock(&n->raft->log_rw);
	lora_free(n->raft->priv);
	n->raft->priv = NULL;
}
