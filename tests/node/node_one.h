/*
 * node_one.h - a one-node cluster inside a test process, shared by the
 * node/ tests that need a whole node (test_waits.c, test_node_faults.c).
 * Included once per test file; the file gives the address and ports.
 */
#ifndef LORA_TEST_NODE_ONE_H
#define LORA_TEST_NODE_ONE_H

#include <check.h>
#include <stdio.h>

#include "lora.h"
#include "node_int.h"

#define NODE_ONE_LEADER_MS 20000 /* for a leader: generous, machine shared */

/* A config for node 1 alone at host: peers on peer_port, HTTP on
 * http_port, native on http_port + 1; Bolt and authentication off; data in
 * dir (the caller made it). Fails the test when it does not validate. */
static inline void node_one_config(struct node_config *c, const char *host,
                                   int peer_port, int http_port,
                                   const char *dir)
{
	char err[LORA_ERRMSG_BYTES], peers[64];
	node_config_defaults(c);
	c->id = 1;
	snprintf(c->data_dir, sizeof c->data_dir, "%s", dir);
	snprintf(c->peer_addr, sizeof c->peer_addr, "%s:%d", host, peer_port);
	snprintf(c->http_addr, sizeof c->http_addr, "%s:%d", host, http_port);
	snprintf(c->client_addr, sizeof c->client_addr, "%s:%d", host,
	         http_port + 1);
	ck_assert_int_eq(node_config_set(c, "bolt_addr", "off", err), 0);
	ck_assert_int_eq(node_config_set(c, "auth", "off", err), 0);
	snprintf(peers, sizeof peers, "1@%s:%d", host, peer_port);
	ck_assert_int_eq(node_config_parse_peers(c, peers, err), 0);
	ck_assert_msg(node_config_validate(c, err) == 0, "config: %s", err);
}

/* Opens the node of c and, when wait_leader, waits (woken by each role or
 * leader change) until it leads; fails the test otherwise. */
static inline struct lnode *node_one_open(const struct node_config *c,
                                          int wait_leader)
{
	struct lnode *n = NULL;
	char err[LORA_ERRMSG_BYTES] = "";
	int rc = lnode_open(c, &n, err);
	ck_assert_msg(rc == 0, "lnode_open: %s", err);
	if (!wait_leader)
		return n;
	uint64_t deadline = lora_now_ms() + NODE_ONE_LEADER_MS;
	for (;;) {
		uint64_t seq = node_status_seq(n);
		if (node_is_leader(n) ||
		    node_status_wait(n, seq, deadline) != 0)
			break;
	}
	ck_assert_msg(node_is_leader(n), "no leader within %d ms",
	              NODE_ONE_LEADER_MS);
	return n;
}

#endif
