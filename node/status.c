/*
 * status.c - gossip between nodes and the /cluster/status document.
 *
 * Every NODE_GOSSIP_MS each node tells every member its addresses, role,
 * term and indexes in one small text frame; /cluster/status on any node
 * shows its own numbers and the last ones heard from each peer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "node_int.h"

#define NODE_GOSSIP_MS        100
#define NODE_GOSSIP_BYTES_MAX 1024

static const char *role_name(const struct rep_status *st)
{
	if (st->learner)
		return "learner";
	switch (st->role) {
	case REP_LEADER:
		return "leader";
	case REP_CANDIDATE:
	case REP_PRE_CANDIDATE:
		return "candidate";
	default:
		return "follower";
	}
}

static void gossip_once(struct lnode *n)
{
	struct rep_status st;
	node_status_get(n, &st);
	char buf[NODE_GOSSIP_BYTES_MAX];
	int len =
	    snprintf(buf, sizeof buf,
	             "%" PRIu64 " %s %s %s %s %" PRIu64 " %" PRIu64 " %" PRIu64,
	             n->cfg.id, n->cfg.peer_addr, n->cfg.http_addr,
	             n->cfg.client_addr, role_name(&st), st.term, st.commit,
	             (uint64_t)atomic_load(&n->applied));
	if (len <= 0 || (size_t)len >= sizeof buf)
		return;
	uint64_t ids[NODE_PEERS_MAX];
	int k = 0;
	pthread_mutex_lock(&n->status_mu);
	for (int i = 0; i < n->n_members; i++)
		if (n->members[i].id != n->cfg.id)
			ids[k++] = n->members[i].id;
	pthread_mutex_unlock(&n->status_mu);
	for (int i = 0; i < k; i++)
		node_transport_send(n->transport, ids[i], NODE_FRAME_INFO, buf,
		                    (size_t)len);
}

/* the widths in node_gossip_parse's format */
_Static_assert(NODE_ADDR_BYTES_MAX == 128, "gossip: %127s fields");

int node_gossip_parse(const uint8_t *p, size_t len, struct node_gossip *g)
{
	char buf[NODE_GOSSIP_BYTES_MAX];
	if (len >= sizeof buf)
		return LORA_ECORRUPT;
	memcpy(buf, p, len);
	buf[len] = '\0';
	unsigned long long id, term, commit, applied;
	if (sscanf(buf, "%llu %127s %127s %127s %15s %llu %llu %llu", &id,
	           g->peer, g->http, g->client, g->role, &term, &commit,
	           &applied) != 8)
		return LORA_ECORRUPT;
	g->id = id;
	g->term = term;
	g->commit = commit;
	g->applied = applied;
	return 0;
}

void node_gossip_on_frame(struct lnode *n, uint64_t from, const uint8_t *p,
                          size_t len)
{
	struct node_gossip g;
	if (from == 0 || from == n->cfg.id ||
	    node_gossip_parse(p, len, &g) != 0 || g.id != from)
		return;
	int is_new = 0;
	pthread_mutex_lock(&n->status_mu);
	struct node_member *m = NULL;
	for (int i = 0; i < n->n_members; i++)
		if (n->members[i].id == g.id)
			m = &n->members[i];
	if (m == NULL && n->n_members < NODE_PEERS_MAX) {
		m = &n->members[n->n_members++];
		memset(m, 0, sizeof *m);
		m->id = g.id;
		is_new = 1;
	}
	if (m) {
		is_new |= strcmp(m->peer_addr, g.peer) != 0;
		snprintf(m->peer_addr, sizeof m->peer_addr, "%s", g.peer);
		snprintf(m->http_addr, sizeof m->http_addr, "%s", g.http);
		snprintf(m->client_addr, sizeof m->client_addr, "%s", g.client);
		snprintf(m->role, sizeof m->role, "%s", g.role);
		m->term = g.term;
		m->commit = g.commit;
		m->applied = g.applied;
		m->last_info_ms = lora_now_ms();
	}
	pthread_mutex_unlock(&n->status_mu);
	if (is_new) {
		node_transport_set_peer(n->transport, g.id, g.peer, NULL);
		node_members_save(n);
	}
}

static void *gossip_main(void *arg)
{
	struct lnode *n = arg;
	pthread_setname_np(pthread_self(), "lora-gossip");
	pthread_mutex_lock(&n->gossip_mu);
	while (!atomic_load(&n->stopping)) {
		pthread_mutex_unlock(&n->gossip_mu);
		gossip_once(n);
		node_native_reap(n);
		pthread_mutex_lock(&n->gossip_mu);
		struct timespec ts;
		lora_deadline_after(&ts, NODE_GOSSIP_MS);
		if (!atomic_load(&n->stopping))
			pthread_cond_timedwait(&n->gossip_cond, &n->gossip_mu,
			                       &ts);
	}
	pthread_mutex_unlock(&n->gossip_mu);
	return NULL;
}

int node_gossip_start(struct lnode *n)
{
	return pthread_create(&n->gossip_thread, NULL, gossip_main, n)
	           ? LORA_EINTERNAL
	           : 0;
}

void node_gossip_stop(struct lnode *n)
{
	pthread_mutex_lock(&n->gossip_mu);
	pthread_cond_broadcast(&n->gossip_cond);
	pthread_mutex_unlock(&n->gossip_mu);
	pthread_join(n->gossip_thread, NULL);
}

/* One entry of "nodes" for member id (status_mu held). */
static json_t *node_entry(struct lnode *n, const struct rep_status *st,
                          uint64_t id, int voter)
{
	uint64_t now = lora_now_ms();
	if (id == n->cfg.id)
		return json_pack(
		    "{s:I,s:s,s:s,s:I,s:I,s:I,s:I}", "id", (json_int_t)id,
		    "address", n->cfg.http_addr, "role", role_name(st), "term",
		    (json_int_t)st->term, "commitIndex", (json_int_t)st->commit,
		    "appliedIndex", (json_int_t)atomic_load(&n->applied),
		    "lastContactMs", (json_int_t)0);
	const struct node_member *m = NULL;
	for (int i = 0; i < n->n_members; i++)
		if (n->members[i].id == id)
			m = &n->members[i];
	const char *role = voter ? "follower" : "learner";
	json_t *contact = json_null();
	if (m && m->last_info_ms) {
		role = m->role;
		contact = json_integer((json_int_t)(now - m->last_info_ms));
	}
	return json_pack("{s:I,s:s,s:s,s:I,s:I,s:I,s:o}", "id", (json_int_t)id,
	                 "address", m ? m->http_addr : "", "role", role, "term",
	                 (json_int_t)(m ? m->term : 0), "commitIndex",
	                 (json_int_t)(m ? m->commit : 0), "appliedIndex",
	                 (json_int_t)(m ? m->applied : 0), "lastContactMs",
	                 contact);
}

char *node_status_json(struct lnode *n)
{
	struct rep_status st;
	pthread_mutex_lock(&n->status_mu);
	st = n->rs;
	json_t *nodes = json_array();
	int self_listed = 0;
	for (uint32_t i = 0; nodes && i < st.n_peers; i++) {
		json_array_append_new(nodes, node_entry(n, &st, st.peers[i].id,
		                                        st.peers[i].voter));
		self_listed |= st.peers[i].id == n->cfg.id;
	}
	if (!self_listed && nodes)
		json_array_append_new(nodes, node_entry(n, &st, n->cfg.id, 0));
	pthread_mutex_unlock(&n->status_mu);
	json_t *o = json_pack("{s:o,s:I,s:I,s:o*}", "leader",
	                      st.leader ? json_integer((json_int_t)st.leader)
	                                : json_null(),
	                      "term", (json_int_t)st.term, "self",
	                      (json_int_t)n->cfg.id, "nodes", nodes);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	char *out = s ? lora_strdup(s) : NULL;
	free(s);
	return out;
}
