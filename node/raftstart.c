/* raftstart.c - restoring the Raft core from disk, members, published status.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "node_int.h"

#define NODE_META_FILE      "snapshot.meta"
#define NODE_MEMBERS_FILE   "members"
#define NODE_META_BYTES_MAX 4096
#define NODE_RESTORE_TERM   1 /* term recorded for a restored backup's index */

/* Writes data to dir/name atomically (temp file, fsync, rename). */
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
	if (!ok || rename(tmp, dst) != 0)
		return LORA_EIO;
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
	if (write_file_atomic(n->cfg.data_dir, NODE_MEMBERS_FILE,
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
	uint64_t first = sto_log_first_index(n->log);
	uint64_t last = sto_log_last_index(n->log);
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
		int rc = sto_log_entries(n->log, first + got, last + 1,
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

static void fill_config(struct lnode *n, struct rep_config *rc)
{
	rep_config_init(rc, n->cfg.id);
	if (!n->cfg.join)
		for (int i = 0; i < n->cfg.n_peers && i < REP_MEMBERS_MAX; i++)
			rc->voters[rc->n_voters++] = n->cfg.peers[i].id;
	n->tick_ms = n->cfg.heartbeat_ms;
	uint32_t et = n->cfg.election_ms / n->cfg.heartbeat_ms;
	rc->election_ticks = et < 2 ? 2 : et;
	rc->heartbeat_ticks = 1;
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
	if (applied == 0 || sto_log_last_index(n->log) != 0 ||
	    node_meta_load(n, &m) != LORA_ENOTFOUND)
		return 0;
	memset(&m, 0, sizeof m);
	m.index = applied;
	m.term = NODE_RESTORE_TERM;
	for (int i = 0; i < n->cfg.n_peers && i < REP_MEMBERS_MAX; i++)
		m.voters[m.n_voters++] = n->cfg.peers[i].id;
	int rc = sto_log_compact(n->log, m.index, m.term, errmsg);
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

/* Fills rs from disk. Entries in *ents must be freed by the caller. */
static int restore_state(struct lnode *n, struct rep_restore *rs,
                         struct rep_entry **ents, size_t *cnt, char *errmsg)
{
	struct sto_hard_state hs;
	int rc = sto_log_hard_state(n->log, &hs);
	if (rc)
		return lora_errf(rc, errmsg, "read hard state");
	rc = adopt_restored_state(n, errmsg);
	if (rc)
		return rc;
	rc = load_entries(n, ents, cnt, errmsg);
	if (rc)
		return rc;
	memset(rs, 0, sizeof *rs);
	if (node_meta_load(n, &rs->snap) != 0) {
		memset(&rs->snap, 0, sizeof rs->snap);
		uint64_t first = sto_log_first_index(n->log);
		rs->snap.index = first > 0 ? first - 1 : 0;
		if (rs->snap.index > 0)
			sto_log_term(n->log, rs->snap.index, &rs->snap.term);
	}
	uint64_t last = sto_log_last_index(n->log);
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
	n->snap_meta = rs->snap;
	n->last_persisted_term = hs.term;
	n->last_persisted_vote = hs.vote;
	LOG_INFO("restored: term %llu, log (%llu, %llu], commit %llu, "
	         "applied %llu",
	         (unsigned long long)hs.term,
	         (unsigned long long)rs->snap.index, (unsigned long long)last,
	         (unsigned long long)hs.commit, (unsigned long long)applied);
	return 0;
}

int node_raft_start(struct lnode *n, char *errmsg)
{
	n->raftp = node_raft_priv_new();
	if (n->raftp == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	members_load(n);
	int rc = sto_log_open(n->log_dir, &n->log, errmsg);
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
	rc = rep_new(&rcfg, &rs, &n->rep, errmsg);
	free_entries(ents, cnt);
	if (rc)
		return lora_errwrap(rc, errmsg, "raft");
	atomic_store(&n->applied, sto_applied_index(n->store));
	for (int i = 0; i < n->n_members; i++)
		node_transport_set_peer(n->transport, n->members[i].id,
		                        n->members[i].peer_addr, NULL);
	rep_status(n->rep, &n->rs);
	if (pthread_create(&n->raft_thread, NULL, node_raft_main, n) != 0)
		return lora_errf(LORA_EINTERNAL, errmsg, "cannot start thread");
	return 0;
}

void node_raft_stop(struct lnode *n)
{
	if (n->rep == NULL)
		return;
	pthread_mutex_lock(&n->inbox_mu);
	pthread_cond_broadcast(&n->inbox_cond);
	pthread_mutex_unlock(&n->inbox_mu);
	pthread_join(n->raft_thread, NULL);
	rep_free(n->rep);
	n->rep = NULL;
	sto_log_close(n->log);
	n->log = NULL;
	lora_free(n->raftp);
	n->raftp = NULL;
}
