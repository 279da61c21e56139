/*
 * sim.h - deterministic simulator for the Raft core (tests/sim).
 *
 * One run = one seed: a cluster of cores (3 or 5 founding voters, spare
 * slots for nodes added later) driven step by step. Each step the network
 * delivers the messages that are due, every live node ticks, a client may
 * propose or read, a fault may strike, every node processes its Readies the
 * way the daemon does (early leader sends, durable write, other sends,
 * apply, advance) and then the safety checks run. Everything random comes
 * from one splitmix64 stream seeded by the run's seed, so a seed replays
 * exactly. Memory: every pointer in these structs is owned by the struct
 * holding it and freed by sim_free().
 */
#ifndef LORA_SIM_H
#define LORA_SIM_H

#include <stdint.h>
#include <stdio.h>

#include "raft.h"

#define SIM_NODES_MAX         8     /* founding + later-added node slots */
#define SIM_DELAY_STEPS_MAX   8     /* longest network delay */
#define SIM_INFLIGHT_MSGS_MAX 20000 /* messages in the network at once */
#define SIM_STAGED_MAX        4     /* checkpoints staged per node */

/* Which deliberately broken behaviours the driver emulates (tests only). */
struct sim_opts {
	uint64_t seed;
	uint32_t steps;
	uint32_t voters; /* founding voters: 3 or 5 */
	int verbose;     /* print a trace of events */
};

/* What the durable log store of one node holds. */
struct sim_dlog {
	struct rep_entry *e; /* entries (snap.index, ...], data owned */
	uint64_t *chain;     /* chained hash of the log up to each entry */
	size_t n, cap;
	struct rep_snapshot_meta snap;
	uint64_t snap_chain;
};

struct sim_node {
	uint64_t id;
	int exists; /* slot in use (founding or added) */
	int up;     /* running (core allocated) */
	struct rep *r;
	uint32_t boots;
	/* durable */
	struct rep_hard_state hs;
	struct sim_dlog log;
	uint64_t *sm; /* applied values, sm[i-1] for index i */
	uint64_t sm_n, sm_cap;
	/* bookkeeping for checks */
	uint64_t last_commit, last_applied;
	uint64_t leader_term; /* term in which it last reported leadership */
	/* checkpoints staged by snapshot messages, until one is installed */
	uint64_t staged_n[SIM_STAGED_MAX];
	uint64_t *staged[SIM_STAGED_MAX];
	uint64_t lead_last; /* last index while leader in leader_term */
	/* check-quorum: when each peer's message of our term last arrived,
	 * and since when we lead in cq_term */
	uint64_t heard[SIM_NODES_MAX + 1];
	uint64_t cq_term, cq_since;
};

struct sim_msg {
	struct rep_msg m; /* entries point to `ents`, owned */
	struct rep_entry *ents;
	uint64_t *snap_sm; /* checkpoint streamed with a snapshot, owned */
	uint64_t snap_n;
	uint64_t due;
};

struct sim_read {
	uint8_t ctx[16];
	uint64_t node;
	uint64_t min_index; /* commit known anywhere when it was issued */
};

struct sim {
	struct sim_opts o;
	uint64_t rng;
	uint64_t now;
	struct sim_node nodes[SIM_NODES_MAX];
	uint32_t n_slots; /* slots ever used */
	/* network */
	struct sim_msg *net;
	size_t n_net, cap_net;
	uint8_t blocked[SIM_NODES_MAX + 1][SIM_NODES_MAX + 1]; /* [from][to] */
	uint32_t drop_pct, dup_pct, delay_max;
	uint32_t straggle_pm; /* per mille of messages delayed 10..59 steps */
	uint32_t crash_pm, fault_pm;   /* per mille per step */
	uint32_t new_leader_crash_pct; /* crash a new leader after its write */
	uint32_t
	    vote_crash_pm; /* crash inside a Ready that changes term/vote */
	int calm;          /* faults off (liveness phase) */
	/* global knowledge for checks */
	uint64_t *leader_of; /* leader id per term */
	size_t cap_terms;
	uint64_t *cchain; /* committed chain hash per index (1-based) */
	uint64_t *cmax;   /* per term: highest commit a node of that term saw */
	uint64_t *applied; /* value applied at each index */
	uint64_t gcommit, cap_idx;
	struct sim_read reads[64];
	uint32_t n_reads;
	uint64_t next_value;
	/* hash table (index, term) -> chain hash */
	uint64_t *ht;
	size_t ht_cap, ht_n;
	/* stats */
	uint64_t proposals, commits_seen, snaps_installed, conf_changes,
	    reads_done, crashes, elections;
	/* messages refused because their sender is not a member (of them,
	 * leader messages: appends, heartbeats, snapshots) */
	uint64_t refused_non_member, refused_leader_msgs;
	char failure[512];
	int failed;
};

/* sim_core.c */
uint64_t sim_rand(struct sim *s);
uint64_t sim_below(struct sim *s, uint64_t n);
int sim_chance_pm(struct sim *s, uint32_t per_mille);
void sim_fail(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
uint64_t sim_mix(uint64_t h, uint64_t v);
uint64_t sim_entry_hash(const struct rep_entry *e);

/* sim_net.c */
void sim_net_send(struct sim *s, struct sim_node *from,
                  const struct rep_msg *m);
void sim_net_deliver(struct sim *s);
void sim_net_free(struct sim *s);

/* sim_node.c */
int sim_node_boot(struct sim *s, struct sim_node *n);
void sim_node_crash(struct sim *s, struct sim_node *n);
void sim_node_ready(struct sim *s, struct sim_node *n);
void sim_node_free(struct sim_node *n);
struct sim_node *sim_node_by_id(struct sim *s, uint64_t id);
void sim_node_stage_snapshot(struct sim_node *n, const uint64_t *sm,
                             uint64_t len);

/* sim_check.c */
void sim_check_entries(struct sim *s, struct sim_node *n, size_t first);
void sim_check_commit(struct sim *s, struct sim_node *n, uint64_t commit);
void sim_check_apply(struct sim *s, struct sim_node *n, uint64_t idx,
                     uint64_t value);
void sim_check_step(struct sim *s);
void sim_check_new_leader(struct sim *s, struct sim_node *n, uint64_t term);
uint64_t sim_dlog_chain(const struct sim_dlog *l, uint64_t idx);
uint64_t sim_dlog_last(const struct sim_dlog *l);
void sim_check_free(struct sim *s);

/* sim_run.c */
int sim_run(const struct sim_opts *o, char *failure, size_t len);

#endif /* LORA_SIM_H */
