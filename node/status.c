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
#include "thread.h"

#define NODE_GOSSIP_MS 100

const char *node_status_role(const struct rep_status *st)
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

int node_gossip_format(const struct node_gossip *g, char *buf, size_t size)
{
	int len = snprintf(buf, size,
	                   "%" PRIu64 " %s %s %s %s %" PRIu64 " %" PRIu64
	                   " %" PRIu64 " %s",
	                   g->id, g->peer, g->http, g->client, g->role, g->term,
	                   g->commit, g->applied, g->bolt[0] ? g->bolt : "-");
	return len <= 0 || (size_t)len >= size ? -1 : len;
}

static void gossip_once(struct lnode *n)
{
	struct rep_status st;
	node_status_get(n, &st);
	struct node_gossip g;
	g.id = n->cfg.id;
	snprintf(g.peer, sizeof g.peer, "%s", n->cfg.peer_addr);
	snprintf(g.http, sizeof g.http, "%s", n->cfg.http_addr);
	snprintf(g.client, sizeof g.client, "%s", n->cfg.client_addr);
	snprintf(g.role, sizeof g.role, "%s", node_status_role(&st));
	node_config_bolt_addr(&n->cfg, g.bolt, sizeof g.bolt);
	g.term = st.term;
	g.commit = st.commit;
	g.applied = node_applied_index(n);
	char buf[NODE_GOSSIP_BYTES_MAX];
	int len = node_gossip_format(&g, buf, sizeof buf);
	if (len < 0)
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

/* 1 when id is a voter or learner in rs (or rs is still empty:
 * joining). */
static int gossip_from_member(const struct rep_status *rs, uint64_t id)
{
	int ok = rs->n_peers == 0;
	for (uint32_t i = 0; i < rs->n_peers; i++)
		ok |= rs->peers[i].id == id;
	return ok;
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
	/* the Bolt address (9th) is "-" when off; older nodes omit it */
	int k = sscanf(buf, "%llu %127s %127s %127s %15s %llu %llu %llu %127s",
	               &id, g->peer, g->http, g->client, g->role, &term,
	               &commit, &applied, g->bolt);
	if (k < 8)
		return LORA_ECORRUPT;
	if (k < 9 || !strcmp(g->bolt, "-"))
		g->bolt[0] = '\0';
	g->id = id;
	g->term = term;
	g->commit = commit;
	g->applied = applied;
	return 0;
}

/* Sets an address that is still empty; 1 when gossip claims another one
 * than the address known (which is kept). */
static int fill_addr(char *dst, size_t bytes, const char *claimed)
{
	if (dst[0] == '\0') {
		snprintf(dst, bytes, "%s", claimed);
		return 0;
	}
	return strcmp(dst, claimed) != 0;
}

/* The numbers and role of g into m, and the addresses m lacks: 1 when
 * g claims others than those known. */
static int member_take(struct node_member *m, const struct node_gossip *g,
                       uint64_t now_ms)
{
	int moved =
	    fill_addr(m->peer_addr, sizeof m->peer_addr, g->peer) |
	    fill_addr(m->http_addr, sizeof m->http_addr, g->http) |
	    fill_addr(m->client_addr, sizeof m->client_addr, g->client) |
	    (g->bolt[0] &&
	     fill_addr(m->bolt_addr, sizeof m->bolt_addr, g->bolt));
	snprintf(m->role, sizeof m->role, "%s", g->role);
	m->term = g->term;
	m->commit = g->commit;
	m->applied = g->applied;
	m->last_info_ms = now_ms;
	return moved;
}

/*
 * Gossip is status, never membership: it is taken only from a member of
 * the configuration, and it creates an entry only for a member this node
 * lacks one for (below). Addresses are learnt from it only when still unknown
 * (peer addresses come from the peers setting, committed membership
 * changes and the members file; HTTP and client addresses from the first
 * gossip or the add request): writes and admin calls are passed to the
 * leader's HTTP and client addresses, so a frame that merely claims to
 * come from a member must not redirect them. It updates the numbers.
 */
int node_gossip_merge(const struct node_gossip *g, const struct rep_status *rs,
                      struct node_member *members, int *n_members,
                      int members_max, uint64_t now_ms)
{
	if (!gossip_from_member(rs, g->id))
		return NODE_GOSSIP_NOT_MEMBER;
	int moved = 0, known = 0;
	for (int i = 0; i < *n_members; i++) {
		if (members[i].id != g->id)
			continue;
		known = 1;
		moved = member_take(&members[i], g, now_ms);
	}
	if (known)
		return moved ? NODE_GOSSIP_MOVED : NODE_GOSSIP_TAKEN;
	/* A member of the (non-empty) configuration this node has no entry
	 * for: one added while this node caught up from a snapshot, which
	 * carries ids but no addresses. Without its address this node could
	 * never answer its votes. A stranger (not in the configuration) or
	 * gossip to a node with no configuration yet never gets here. */
	if (rs->n_peers == 0 || *n_members >= members_max)
		return NODE_GOSSIP_NO_ENTRY;
	struct node_member *m = &members[(*n_members)++];
	memset(m, 0, sizeof *m);
	m->id = g->id;
	(void)member_take(m, g, now_ms);
	m->term = m->commit = m->applied = 0; /* as before: addresses only */
	return NODE_GOSSIP_CREATED;
}

void node_gossip_on_frame(struct lnode *n, uint64_t from, const uint8_t *p,
                          size_t len)
{
	struct node_gossip g;
	if (from == 0 || from == n->cfg.id) {
		node_peer_refused(from, "gossip", "%zu bytes from id %llu", len,
		                  (unsigned long long)from);
		return;
	}
	if (node_gossip_parse(p, len, &g) != 0 || g.id != from) {
		node_peer_refused(from, "gossip",
		                  "malformed, or naming another node");
		return;
	}
	pthread_mutex_lock(&n->status_mu);
	int rc = node_gossip_merge(&g, &n->rs, n->members, &n->n_members,
	                           NODE_PEERS_MAX, lora_now_ms());
	pthread_mutex_unlock(&n->status_mu);
	if (rc == NODE_GOSSIP_NOT_MEMBER) {
		node_peer_refused(from, "gossip", "not a member");
	} else if (rc == NODE_GOSSIP_CREATED) {
		LOG_INFO("member %llu learnt from its gossip (peer %s)",
		         (unsigned long long)g.id, g.peer);
		node_transport_set_peer(n->transport, g.id, g.peer, NULL);
		node_members_save(n);
	} else if (rc == NODE_GOSSIP_NO_ENTRY) {
		node_peer_refused(from, "gossip",
		                  "a member with no address known here");
	} else if (rc == NODE_GOSSIP_MOVED) {
		node_peer_refused(
		    from, "gossip-address",
		    "claims addresses %s %s %s; kept the ones known "
		    "(change them by removing and adding the node)",
		    g.peer, g.http, g.client);
	}
}

static void *gossip_main(void *arg)
{
	struct lnode *n = arg;
	struct node_gossiper *g = n->gossip;
	pthread_setname_np(pthread_self(), "lora-gossip");
	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		pthread_mutex_unlock(&g->mu);
		gossip_once(n);
		node_native_reap(n);
		node_http_tx_reap(n);
		node_auth_tick(n);
		pthread_mutex_lock(&g->mu);
		/* the next round; woken early only by node_gossip_stop */
		uint64_t next = lora_now_ms() + NODE_GOSSIP_MS;
		while (!g->stop &&
		       node_cond_wait_until(&g->cond, &g->mu, next) == 0)
			;
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

int node_gossiper_new(struct node_gossiper **out)
{
	struct node_gossiper *g = lora_calloc(1, sizeof *g);
	if (g == NULL)
		return LORA_ENOMEM;
	if (node_cond_init(&g->cond) != 0) {
		lora_free(g);
		return LORA_EINTERNAL;
	}
	pthread_mutex_init(&g->mu, NULL);
	*out = g;
	return 0;
}

void node_gossiper_free(struct node_gossiper *g)
{
	if (g == NULL)
		return;
	LORA_ASSERT(!g->running);
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cond);
	lora_free(g);
}

int node_gossip_start(struct lnode *n, char *errmsg)
{
	struct node_gossiper *g = n->gossip;
	int rc =
	    node_thread_start(&g->thread, gossip_main, n, "gossip", errmsg);
	g->running = rc == 0;
	return rc;
}

void node_gossip_stop(struct lnode *n)
{
	struct node_gossiper *g = n->gossip;
	if (g == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = 1;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->mu);
	if (g->running)
		pthread_join(g->thread, NULL);
	g->running = 0;
}

/* One entry of "nodes" for member id. */
static json_t *node_entry(const struct node_status_view *v, uint64_t id,
                          int voter)
{
	const struct rep_status *st = v->rs;
	if (id == v->self)
		return json_pack(
		    "{s:I,s:s,s:s,s:I,s:I,s:I,s:I}", "id", (json_int_t)id,
		    "address", v->self_http, "role", node_status_role(st),
		    "term", (json_int_t)st->term, "commitIndex",
		    (json_int_t)st->commit, "appliedIndex",
		    (json_int_t)v->applied, "lastContactMs", (json_int_t)0);
	const struct node_member *m = NULL;
	for (int i = 0; i < v->n_members; i++)
		if (v->members[i].id == id)
			m = &v->members[i];
	const char *role = voter ? "follower" : "learner";
	json_t *contact = json_null();
	if (m && m->last_info_ms) {
		role = m->role;
		contact =
		    json_integer((json_int_t)(v->now_ms - m->last_info_ms));
	}
	return json_pack("{s:I,s:s,s:s,s:I,s:I,s:I,s:o}", "id", (json_int_t)id,
	                 "address", m ? m->http_addr : "", "role", role, "term",
	                 (json_int_t)(m ? m->term : 0), "commitIndex",
	                 (json_int_t)(m ? m->commit : 0), "appliedIndex",
	                 (json_int_t)(m ? m->applied : 0), "lastContactMs",
	                 contact);
}

json_t *node_status_doc(const struct node_status_view *v)
{
	const struct rep_status *st = v->rs;
	json_t *nodes = json_array();
	int self_listed = 0;
	for (uint32_t i = 0; nodes && i < st->n_peers; i++) {
		json_array_append_new(
		    nodes, node_entry(v, st->peers[i].id, st->peers[i].voter));
		self_listed |= st->peers[i].id == v->self;
	}
	if (!self_listed && nodes)
		json_array_append_new(nodes, node_entry(v, v->self, 0));
	return json_pack("{s:o,s:I,s:I,s:o*}", "leader",
	                 st->leader ? json_integer((json_int_t)st->leader)
	                            : json_null(),
	                 "term", (json_int_t)st->term, "self",
	                 (json_int_t)v->self, "nodes", nodes);
}

char *node_status_json(struct lnode *n)
{
	pthread_mutex_lock(&n->status_mu);
	const struct node_status_view v = {.self = n->cfg.id,
	                                   .self_http = n->cfg.http_addr,
	                                   .rs = &n->rs,
	                                   .applied = node_applied_index(n),
	                                   .members = n->members,
	                                   .n_members = n->n_members,
	                                   .now_ms = lora_now_ms()};
	json_t *o = node_status_doc(&v);
	pthread_mutex_unlock(&n->status_mu);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	char *out = s ? lora_strdup(s) : NULL;
	free(s);
	return out;
}
