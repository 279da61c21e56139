/*
 * node.c - starting and stopping a node: data directory layout
 * (<data_dir>/state, raftlog, checkpoints), the threads in dependency order,
 * and a graceful stop that hands leadership over first.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "http_int.h"
#include "log.h"
#include "node_int.h"
#include "peerfwd.h"
#include "thread.h"

#define NODE_SHUTDOWN_TRANSFER_MS 2000

struct sto_store *node_store_acquire(struct lnode *n)
{
	pthread_mutex_lock(&n->store_mu);
	while (n->store_swapping)
		pthread_cond_wait(&n->store_cond, &n->store_mu);
	n->store_readers++;
	struct sto_store *s = n->store;
	pthread_mutex_unlock(&n->store_mu);
	return s;
}

struct sto_store *node_store_try_acquire(struct lnode *n)
{
	pthread_mutex_lock(&n->store_mu);
	struct sto_store *s = n->store_swapping ? NULL : n->store;
	if (s)
		n->store_readers++;
	pthread_mutex_unlock(&n->store_mu);
	return s;
}

void node_store_release(struct lnode *n)
{
	pthread_mutex_lock(&n->store_mu);
	n->store_readers--;
	if (n->store_readers == 0)
		pthread_cond_broadcast(&n->store_cond);
	pthread_mutex_unlock(&n->store_mu);
}

void node_store_close_exclusive(struct lnode *n)
{
	node_bolt_close_cursors(n); /* its idle results hold readers */
	node_http_tx_close_reads(n);
	pthread_mutex_lock(&n->store_mu);
	n->store_swapping = 1;
	while (n->store_readers > 0)
		pthread_cond_wait(&n->store_cond, &n->store_mu);
	sto_close(n->store);
	n->store = NULL;
}

void node_store_exclusive_end(struct lnode *n)
{
	n->store_swapping = 0;
	pthread_cond_broadcast(&n->store_cond);
	pthread_mutex_unlock(&n->store_mu);
}

int node_space_check(struct node_space *sp, const char *dir, uint64_t reserve,
                     uint64_t bytes, char *err)
{
	uint64_t now = lora_now_ms();
	uint64_t need = reserve + bytes + sp->spent;
	if (sp->read_ms == 0 || now - sp->read_ms >= NODE_SPACE_FRESH_MS ||
	    sp->avail < need + NODE_SPACE_SLACK_BYTES) {
		struct statvfs sv;
		if (statvfs(dir, &sv) != 0) {
			sp->read_ms = 0;
			return 0; /* unknown: let the write tell */
		}
		sp->avail = (uint64_t)sv.f_bavail * sv.f_frsize;
		sp->spent = 0;
		sp->read_ms = now;
		need = reserve + bytes;
	}
	if (sp->avail >= need) {
		sp->spent += bytes;
		return 0;
	}
	return lora_errf(LORA_ENOSPC, err,
	                 "%s: %llu bytes free, below the reserve of %llu bytes "
	                 "plus %llu to write",
	                 dir, (unsigned long long)(sp->avail - sp->spent),
	                 (unsigned long long)reserve,
	                 (unsigned long long)bytes);
}

static int make_dir_mode(const char *path, mode_t mode, char *errmsg)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return lora_errf(LORA_EIO, errmsg, "create %s: %s", path,
		                 strerror(errno));
	return 0;
}

static int make_dir(const char *path, char *errmsg)
{
	return make_dir_mode(path, 0755, errmsg);
}

/* The data directory holds the whole database: only its owner may enter
 * it (0700), also when it existed with a looser mode (said in the log). */
static int make_private_dir(const char *path, char *errmsg)
{
	int rc = make_dir_mode(path, 0700, errmsg);
	struct stat st;
	if (rc == 0 && stat(path, &st) == 0 && (st.st_mode & 0077) != 0) {
		if (chmod(path, 0700) != 0)
			return lora_errf(LORA_EIO, errmsg, "chmod 0700 %s: %s",
			                 path, strerror(errno));
		LOG_WARN("data directory %s had mode %04o: set to 0700", path,
		         (unsigned)(st.st_mode & 07777));
	}
	return rc;
}

/* mkdir -p for data_dir, then its three subdirectories. */
static int make_layout(struct lnode *n, char *errmsg)
{
	char path[NODE_PATH_BYTES_MAX];
	snprintf(path, sizeof path, "%s", n->cfg.data_dir);
	for (char *p = path + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			int rc = make_dir(path, errmsg);
			*p = '/';
			if (rc)
				return rc;
		}
	int rc = make_private_dir(path, errmsg);
	snprintf(n->state_dir, sizeof n->state_dir, "%s/state",
	         n->cfg.data_dir);
	snprintf(n->log_dir, sizeof n->log_dir, "%s/raftlog", n->cfg.data_dir);
	snprintf(n->ckpt_dir, sizeof n->ckpt_dir, "%s/checkpoints",
	         n->cfg.data_dir);
	if (rc == 0)
		rc = make_dir_mode(n->ckpt_dir, 0700, errmsg);
	/* An interrupted snapshot install is node_state_open's. */
	return rc;
}

/* 0, or LORA_EINTERNAL (nothing left to destroy) when the queues or the
 * monotonic conditions cannot be made. */
static int init_sync(struct lnode *n)
{
	if (node_cond_init(&n->status_cond) != 0)
		return LORA_EINTERNAL;
	pthread_mutex_init(&n->store_mu, NULL);
	pthread_cond_init(&n->store_cond, NULL);
	pthread_mutex_init(&n->status_mu, NULL);
	pthread_mutex_init(&n->tx_mu, NULL);
	return 0;
}

static void destroy_sync(struct lnode *n)
{
	pthread_mutex_destroy(&n->store_mu);
	pthread_cond_destroy(&n->store_cond);
	pthread_mutex_destroy(&n->status_mu);
	pthread_cond_destroy(&n->status_cond);
	pthread_mutex_destroy(&n->tx_mu);
}

static void stop_all(struct lnode *n);

/* What every node opens first: the node, its components (the gossiper
 * when gossip), its directories, metrics and the state store. 0 with *out;
 * else the code with errmsg, and *out to stop_all (NULL when nothing was
 * made). */
static int open_base(const struct node_config *cfg, int gossip,
                     struct lnode **out, char *errmsg)
{
	*out = NULL;
	struct lnode *n = lora_calloc(1, sizeof *n);
	if (n == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	n->cfg = *cfg;
	qry_budget_init(&n->qry_budget, cfg->query_memory_bytes);
	if (init_sync(n) != 0) {
		lora_free(n);
		return lora_errf(LORA_EINTERNAL, errmsg,
		                 "cannot make the node's queues");
	}
	*out = n;
	int rc = node_raft_new(&n->raft); /* start-up reads the log */
	if (rc == 0)
		rc = node_applier_new(&n->apply);
	if (rc == 0 && gossip)
		rc = node_gossiper_new(&n->gossip);
	if (rc)
		lora_errf(rc, errmsg, "cannot make the node's components");
	if (rc == 0)
		rc = make_layout(n, errmsg);
	if (rc == 0)
		rc = node_metrics_new(&n->metrics);
	if (rc == 0)
		rc = node_state_open(n, errmsg);
	return rc;
}

int lnode_open(const struct node_config *cfg, struct lnode **out, char *errmsg)
{
	struct lnode *n;
	int rc = open_base(cfg, 1, &n, errmsg);
	if (n == NULL)
		return rc;
	if (rc == 0)
		rc = node_auth_open(n, errmsg);
	if (rc == 0)
		rc = node_transport_open(cfg->id, cfg->peer_addr,
		                         &cfg->peer_tls, node_raft_on_frame, n,
		                         &n->transport, errmsg);
	if (rc == 0) /* a peer silent this long is redialed (transport.h) */
		node_transport_set_silent_ms(n->transport,
		                             2 * (int)cfg->election_ms);
	if (rc == 0) /* before the raft loop: it kicks the proxy's waits */
		rc = node_http_proxy_open(n, errmsg);
	/* a component that cannot start its thread fails the start: the
	 * node never runs with one missing */
	if (rc == 0)
		rc = node_raft_start(n, errmsg);
	if (rc == 0)
		rc = node_apply_start(n, errmsg);
	if (rc == 0)
		rc = node_writer_start(n, errmsg);
	if (rc == 0)
		rc = node_gossip_start(n, errmsg);
	if (rc == 0)
		rc = node_native_start(n, errmsg);
	if (rc == 0)
		rc = node_http_start(n, errmsg);
	if (rc == 0)
		rc = node_bolt_start(n, errmsg); /* stopped beside native */
	if (rc) {
		stop_all(n);
		return rc;
	}
	*out = n;
	return 0;
}

int lnode_open_apply_only(const struct node_config *cfg, struct lnode **out,
                          char *errmsg)
{
	struct lnode *n;
	int rc = open_base(cfg, 0, &n, errmsg);
	if (n == NULL)
		return rc;
	if (rc == 0)
		node_applied_reset(n, sto_applied_index(n->store));
	if (rc == 0)
		rc = node_apply_start(n, errmsg);
	if (rc) {
		stop_all(n);
		return rc;
	}
	*out = n;
	return 0;
}

int lnode_open_raft_only(const struct node_config *cfg,
                         const struct node_raft_net *net, struct lnode **out,
                         char *errmsg)
{
	LORA_ASSERT(net->send);
	struct lnode *n;
	int rc = open_base(cfg, 0, &n, errmsg);
	if (n == NULL)
		return rc;
	if (rc == 0) {
		n->raft->net = *net;
		rc = node_raft_start(n, errmsg);
	}
	if (rc == 0)
		rc = node_apply_start(n, errmsg);
	if (rc) {
		stop_all(n);
		return rc;
	}
	*out = n;
	return 0;
}

/* Leader: hand leadership to the most up-to-date voter, wait a little. */
static void transfer_away(struct lnode *n)
{
	struct rep_status st;
	node_status_get(n, &st);
	if (st.role != REP_LEADER)
		return;
	uint64_t best = 0, match = 0;
	for (uint32_t i = 0; i < st.n_peers; i++)
		if (st.peers[i].voter && st.peers[i].id != n->cfg.id &&
		    (best == 0 || st.peers[i].match > match)) {
			best = st.peers[i].id;
			match = st.peers[i].match;
		}
	char msg[LORA_ERRMSG_BYTES];
	if (best == 0 || node_raft_transfer(n, best, msg) != 0)
		return;
	LOG_INFO("shutdown: handing leadership to node %llu",
	         (unsigned long long)best);
	uint64_t deadline = lora_now_ms() + NODE_SHUTDOWN_TRANSFER_MS;
	for (;;) {
		uint64_t seq = node_status_seq(n);
		if (!node_is_leader(n) ||
		    node_status_wait(n, seq, deadline) != 0)
			break;
	}
}

/* Stops what runs and frees the node; every stop is safe for a part that
 * never started (a failed lnode_open). */
static void stop_all(struct lnode *n)
{
	atomic_store(&n->stopping, 1);
	pthread_mutex_lock(&n->status_mu); /* node_status_wait: stopping */
	pthread_cond_broadcast(&n->status_cond);
	pthread_mutex_unlock(&n->status_mu);
	node_tx_wake(n);           /* a served transaction ends at once */
	node_proxy_kick(n->proxy); /* a passed-on write stops waiting */
	/* the raft loop may wait for room in the apply queue */
	if (n->apply)
		nq_close(&n->apply->q);
	node_raft_stop(n);
	node_transport_stop_recv(n->transport);
	node_pfwd_stop(n); /* answers its waiting writes */
	node_apply_stop(n);
	node_writer_stop(n);
	node_gossip_stop(n);
	node_http_stop(n);
	node_native_stop(n);
	node_bolt_stop(n);
	node_writer_free(n);
	node_pfwd_free(n);
	node_snapshot_cleanup(n);
	node_forward_close_all();
	node_proxy_free(n->proxy); /* after the HTTP server: no caller left */
	node_transport_close(n->transport);
	if (n->store)
		sto_close(n->store);
	node_auth_close(n);
	node_metrics_free(n->metrics);
	node_applier_free(n->apply);
	node_gossiper_free(n->gossip);
	node_raft_free(n->raft);
	destroy_sync(n);
	lora_free(n);
}

void lnode_close(struct lnode *n)
{
	if (n == NULL)
		return;
	transfer_away(n);
	stop_all(n);
}
