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
 *
 * What needs no node is a pure function of a state (tests/node/
 * test_status.c): a gossip frame's text both ways, what a frame does to
 * the members (node_gossip_merge), and the /cluster/status document
 * (node_status_doc); the node takes status_mu around them.
 */
#ifndef LORA_NODE_STATUS_H
#define LORA_NODE_STATUS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "raft.h"

struct lnode;

/* A member known to this node (n->members, under n->status_mu). */
struct node_member {
	uint64_t id;
	char peer_addr[NODE_ADDR_BYTES_MAX];
	char http_addr[NODE_ADDR_BYTES_MAX];   /* from gossip or add */
	char client_addr[NODE_ADDR_BYTES_MAX]; /* from gossip */
	char bolt_addr[NODE_ADDR_BYTES_MAX];   /* from gossip; "" unknown */
	/* last gossip from it */
	uint64_t last_info_ms;
	char role[16];
	uint64_t term, commit, applied;
};

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
/* The text node_gossip_parse reads, into buf (size bytes): its length, or
 * -1 when it does not fit. bolt "" is written "-". Pure. */
#define NODE_GOSSIP_BYTES_MAX 1024
int node_gossip_format(const struct node_gossip *g, char *buf, size_t size);

/* The role a node shows for its own status: "leader", "candidate",
 * "follower" or "learner". Static. */
const char *node_status_role(const struct rep_status *st);

/*
 * What a gossip frame g does to the members (pure: node_gossip_on_frame
 * takes status_mu around it). Gossip is status, never membership: it is
 * taken only from a member of the configuration rs (any sender while rs
 * is still empty: joining), and it creates an entry only for a member of
 * a non-empty rs that members lacks (added while this node caught up from
 * a snapshot), while fewer than members_max are held. Addresses are
 * learnt only when still unknown; the numbers, role and now_ms are taken.
 */
enum node_gossip_merged {
	NODE_GOSSIP_NOT_MEMBER = 0, /* refused: not in rs */
	NODE_GOSSIP_NO_ENTRY,       /* refused: a member with no entry here */
	NODE_GOSSIP_TAKEN,          /* numbers taken */
	NODE_GOSSIP_MOVED,          /* taken, but it claims other addresses
	                             * than those known (which are kept) */
	NODE_GOSSIP_CREATED         /* an entry made for it */
};
int node_gossip_merge(const struct node_gossip *g, const struct rep_status *rs,
                      struct node_member *members, int *n_members,
                      int members_max, uint64_t now_ms);

/* What /cluster/status shows: borrowed pointers, valid for the call. */
struct node_status_view {
	uint64_t self;         /* this node's id */
	const char *self_http; /* its HTTP address */
	const struct rep_status *rs;
	uint64_t applied; /* this node's applied index */
	const struct node_member *members;
	int n_members;
	uint64_t now_ms; /* for lastContactMs */
};
/* The /cluster/status document of v (pure; node_status_json). NULL: out
 * of memory. */
json_t *node_status_doc(const struct node_status_view *v);
/* Transport thread: a gossip frame from peer `from`. */
void node_gossip_on_frame(struct lnode *n, uint64_t from, const uint8_t *p,
                          size_t len);
/* The /cluster/status JSON ({"leader", "term", "self", "nodes": [{"id",
 * "address", "role", "term", "commitIndex", "appliedIndex",
 * "lastContactMs"}]}); lora_free the result. NULL: out of memory. */
char *node_status_json(struct lnode *n);

#endif
