/*
 * status.h - the published status of a node and the gossip thread
 * (status.c): every NODE_GOSSIP_MS the thread shares this node's addresses
 * and indexes with its peers (for /cluster/status and the Bolt routing
 * table), closes idle native cursors and ends expired tokens.
 *
 * struct lnode owns one gossiper (n->gossip): node_gossiper_new with the
 * node, node_gossip_start / node_gossip_stop for the thread,
 * node_gossiper_free last. Stop and free are safe after a failed or
 * missing start.
 */
#ifndef LORA_NODE_STATUS_H
#define LORA_NODE_STATUS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct lnode;

struct node_gossiper {
	pthread_t thread;
	int running;         /* thread started: node_gossip_stop joins it */
	pthread_mutex_t mu;  /* stop */
	pthread_cond_t cond; /* stop asked (CLOCK_MONOTONIC) */
	int stop;
};

/* 0 with *out, or LORA_ENOMEM / LORA_EINTERNAL. */
int node_gossiper_new(struct node_gossiper **out);
/* After node_gossip_stop. NULL is fine. */
void node_gossiper_free(struct node_gossiper *g);
/* 0, or LORA_EINTERNAL with errmsg (the thread did not start). */
int node_gossip_start(struct lnode *n, char *errmsg);
/* Wakes the thread at once and joins it. */
void node_gossip_stop(struct lnode *n);

/* One gossip frame's text, "id peer http client role term commit
 * applied [bolt]" (pure: node_gossip_on_frame's decoding, fuzzed). 0, or
 * LORA_ECORRUPT for text that does not read so. */
struct node_gossip {
	uint64_t id, term, commit, applied;
	char peer[NODE_ADDR_BYTES_MAX], http[NODE_ADDR_BYTES_MAX],
	    client[NODE_ADDR_BYTES_MAX], bolt[NODE_ADDR_BYTES_MAX];
	char role[16];
};
int node_gossip_parse(const uint8_t *p, size_t len, struct node_gossip *g);
/* Transport thread: a gossip frame from peer `from`. */
void node_gossip_on_frame(struct lnode *n, uint64_t from, const uint8_t *p,
                          size_t len);
/* The /cluster/status JSON ({"leader", "term", "self", "nodes": [{"id",
 * "address", "role", "term", "commitIndex", "appliedIndex",
 * "lastContactMs"}]}); lora_free the result. NULL: out of memory. */
char *node_status_json(struct lnode *n);

#endif
