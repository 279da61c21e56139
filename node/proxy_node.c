/*
 * proxy_node.c - the node's side of the HTTP proxy (proxy.h): what the
 * proxy learns of the node (the leader and its HTTP address from the
 * published status and the members, the status change wait, when the
 * leader was last heard from, the identity line, metrics) and its TLS
 * client context, made when the node opens.
 */
#include <stdio.h>

#include "http_int.h"
#include "log.h"
#include "proxy.h"
#include "tls.h"

_Static_assert(NODE_PROXY_SELF == NODE_FORWARD_SELF,
               "the proxy's 'this node leads' is the forwarders'");
_Static_assert(NODE_PROXY_IDENT_BYTES == NODE_HTTP_IDENT_BYTES,
               "the proxy has room for the identity line");

static uint64_t px_leader(void *arg, char *addr, size_t size)
{
	struct lnode *n = arg;
	uint64_t id = node_leader_id(n);
	struct node_member m;
	if (addr != NULL && size > 0) {
		addr[0] = '\0';
		if (id != 0 && node_member_get(n, id, &m) == 0)
			snprintf(addr, size, "%s", m.http_addr);
	}
	return id;
}

static uint64_t px_leader_seq(void *arg)
{
	return node_status_seq(arg);
}

static int px_leader_wait(void *arg, uint64_t seen, uint64_t deadline_ms)
{
	return node_status_wait(arg, seen, deadline_ms);
}

static uint64_t px_heard(void *arg, uint64_t leader, uint64_t since)
{
	return node_leader_heard(arg, leader, since);
}

static int px_stopping(void *arg)
{
	struct lnode *n = arg;
	return atomic_load(&n->stopping);
}

static void px_ident(void *arg, const struct node_http_ex *x, char *out,
                     size_t size)
{
	node_http_ident_line(arg, x, out, size);
}

static void px_answered(void *arg, const char *api, int ok, uint64_t ns)
{
	node_metrics_request(arg, api, ok, ns);
}

/* http_tls on: the client side of TLS to the leaders' HTTP ports (their
 * certificates must chain to http_tls_ca, or the peer CA, and name
 * lora-node-<id>); NULL (said in the log) when it cannot be made: then
 * every passed-on write finds no leader to take it. */
static struct node_tls_ctx *tls_client(struct lnode *n)
{
	struct node_tls trust =
	    node_tls_member_trust(&n->cfg.http_tls, n->cfg.peer_tls.ca);
	struct node_tls_ctx *ctx = NULL;
	char err[LORA_ERRMSG_BYTES];
	if (node_tls_ctx_new(&trust, 0, &ctx, err) != 0)
		LOG_WARN("http proxy: %s", err);
	return ctx;
}

int node_http_proxy_open(struct lnode *n, char *errmsg)
{
	struct node_proxy_cfg cfg = {
	    .self_id = n->cfg.id,
	    .silent_ms = n->cfg.election_ms,
	    .tls = n->cfg.http_tls.mode != NODE_TLS_OFF,
	    .reply_bytes_max = NODE_PEER_MSG_BYTES_MAX,
	    .batch_max = (int)n->cfg.proxy_batch_max,
	    .batch_inflight = (int)n->cfg.proxy_batch_inflight,
	    .time_ms = n->cfg.statement_time_ms,
	};
	const struct node_proxy_ops ops = {.arg = n,
	                                   .leader = px_leader,
	                                   .leader_seq = px_leader_seq,
	                                   .leader_wait = px_leader_wait,
	                                   .heard = px_heard,
	                                   .stopping = px_stopping,
	                                   .ident = px_ident,
	                                   .answered = px_answered};
	if (cfg.tls)
		cfg.tls_ctx = tls_client(n);
	int rc = node_proxy_new(&cfg, &ops, &n->proxy);
	if (rc != 0) {
		node_tls_ctx_free(cfg.tls_ctx);
		return lora_errf(rc, errmsg, "cannot make the HTTP proxy");
	}
	return 0;
}
