/*
 * harness.h - a tiny in-process cluster for step-by-step Raft unit tests.
 *
 * Nodes are indexed 1..n (their ids). The harness plays the daemon: it
 * takes each Ready, "persists" it (keeps the hard state and counts entries),
 * queues the messages (deep copies) and advances. Tests then deliver queued
 * messages one by one or all at once, and inspect cores with rep_status.
 * All memory is owned by the struct tc and freed by tc_free().
 */
#ifndef LORA_TEST_RAFT_HARNESS_H
#define LORA_TEST_RAFT_HARNESS_H

#include "raft.h"

#define TC_NODES_MAX 6
#define TC_QUEUE_MAX 4096

struct tc_msg {
	struct rep_msg m;
	struct rep_entry *ents; /* owned copies */
};

struct tc {
	int n;
	struct rep *r[TC_NODES_MAX + 1];
	struct rep_config cfg[TC_NODES_MAX + 1];
	int cut[TC_NODES_MAX + 1]; /* isolated: its messages are dropped */
	struct rep_hard_state hs[TC_NODES_MAX + 1];
	uint64_t applied_n[TC_NODES_MAX + 1];
	uint64_t applied_last[TC_NODES_MAX + 1];
	struct rep_read_state reads[TC_NODES_MAX + 1][8];
	int n_reads[TC_NODES_MAX + 1];
	int snapshots[TC_NODES_MAX + 1]; /* snapshots installed */
	struct tc_msg q[TC_QUEUE_MAX];
	int nq;
};

/* n founding voters; pre_vote / check_quorum as given. */
struct tc *tc_new(int n, int pre_vote, int check_quorum);
/* Adds node id (not a founding voter) booted fresh; returns its index. */
void tc_add_node(struct tc *c, uint64_t id);
void tc_free(struct tc *c);
/* Takes every pending Ready of node i into the queue. */
void tc_drain(struct tc *c, int i);
/* Delivers queued messages (and the Readies they cause) until quiet. */
void tc_stabilize(struct tc *c);
/* Ticks node i t times, draining after each tick. */
void tc_tick(struct tc *c, int i, int t);
/* Makes node i leader (ticks it to an election, then stabilizes); fails the
 * running Check test unless i leads and every reachable node follows it. */
void tc_elect(struct tc *c, int i);
/* Number of queued messages of `type` (0: any) to `to` (0: any). */
int tc_count(const struct tc *c, uint32_t type, uint64_t to);
/* Removes the first queued message of `type` to `to` into *out (1) or 0. */
int tc_take(struct tc *c, uint32_t type, uint64_t to, struct tc_msg *out);
void tc_msg_free(struct tc_msg *m);
/* Drops all queued messages. */
void tc_clear(struct tc *c);
/* Steps node to with m (borrowed) and returns rep_step's result. */
int tc_step(struct tc *c, const struct rep_msg *m);
/* Shortcuts on rep_status. */
uint32_t tc_role(struct tc *c, int i);
uint64_t tc_term(struct tc *c, int i);
uint64_t tc_commit(struct tc *c, int i);
uint64_t tc_last(struct tc *c, int i);
uint64_t tc_leader(struct tc *c, int i);
/* Proposes an 8-byte value v on node i; returns rep_propose's result. */
int tc_propose(struct tc *c, int i, uint64_t v);

#endif
