/* bench_raft.c - proposals committed per second by 3 in-process Raft cores. */
/*
 * Measures the cost of the core itself: a 3-voter cluster in one process,
 * zero network latency, persistence a no-op. The leader takes `batch`
 * proposals of `bytes` bytes, then every Ready is processed and its
 * messages stepped straight into their targets until the cluster is quiet.
 * Reported: entries committed and applied on the leader per second. Logs
 * are compacted as they are applied, as the daemon does after checkpoints.
 *
 * usage: bench_raft [entries] [batch] [bytes]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft.h"

#define NODES 3

static struct rep *r[NODES + 1];
static uint64_t applied[NODES + 1];

static void pump(void)
{
	int busy = 1;
	while (busy) {
		busy = 0;
		for (int i = 1; i <= NODES; i++) {
			if (!rep_has_ready(r[i]))
				continue;
			busy = 1;
			struct rep_ready rd;
			rep_ready(r[i], &rd);
			for (size_t k = 0; k < rd.n_msgs; k++)
				(void)rep_step(r[rd.msgs[k].to], &rd.msgs[k]);
			if (rd.n_committed > 0)
				applied[i] =
				    rd.committed[rd.n_committed - 1].index;
			rep_advance(r[i], &rd);
		}
	}
}

static void boot(void)
{
	for (int i = 1; i <= NODES; i++) {
		struct rep_config cfg;
		rep_config_init(&cfg, (uint64_t)i);
		cfg.n_voters = NODES;
		for (int k = 0; k < NODES; k++)
			cfg.voters[k] = (uint64_t)k + 1;
		char msg[LORA_ERRMSG_BYTES];
		if (rep_new(&cfg, NULL, &r[i], msg) != 0) {
			fprintf(stderr, "rep_new: %s\n", msg);
			exit(1);
		}
	}
	while (1) { /* tick node 1 until it leads */
		struct rep_status st;
		rep_status(r[1], &st);
		if (st.role == REP_LEADER)
			break;
		rep_tick(r[1]);
		pump();
	}
}

static double clock_s(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Rates over wall time and over this process's CPU time (the machine may
 * be shared: the CPU-time rate is the cost of the core itself). */
struct rate {
	double wall, cpu;
};

static struct rate run(uint64_t entries, uint64_t batch, size_t bytes)
{
	boot();
	uint8_t *data = calloc(1, bytes + 1);
	uint64_t start_index = applied[1];
	double t0 = clock_s(CLOCK_MONOTONIC);
	double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	uint64_t done = 0;
	while (done < entries) {
		for (uint64_t k = 0; k < batch; k++) {
			memcpy(data, &done,
			       sizeof(done) < bytes ? sizeof(done) : bytes);
			if (rep_propose(r[1], data, bytes, NULL, NULL, NULL) !=
			    0)
				break;
		}
		pump();
		done = applied[1] - start_index;
		for (int i = 1; i <= NODES; i++)
			if (applied[i] > 4096)
				(void)rep_compact(r[i], applied[i] - 1024);
	}
	double secs = clock_s(CLOCK_MONOTONIC) - t0;
	double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	free(data);
	for (int i = 1; i <= NODES; i++) {
		rep_free(r[i]);
		applied[i] = 0;
	}
	return (struct rate){(double)done / secs, (double)done / cpu};
}

int main(int argc, char **argv)
{
	uint64_t entries = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
	uint64_t batch = argc > 2 ? strtoull(argv[2], NULL, 10) : 1024;
	size_t bytes = argc > 3 ? strtoull(argv[3], NULL, 10) : 64;
	struct rate r1 = run(entries, batch, bytes);
	printf("raft 3 nodes, %zu-byte entries, %llu proposals per Ready: "
	       "%.0f entries/s committed (%.0f per CPU second)\n",
	       bytes, (unsigned long long)batch, r1.wall, r1.cpu);
	struct rate r2 = run(entries / 20, 1, bytes);
	printf("raft 3 nodes, %zu-byte entries, 1 proposal per Ready: "
	       "%.0f entries/s committed (%.0f per CPU second)\n",
	       bytes, r2.wall, r2.cpu);
	return 0;
}
