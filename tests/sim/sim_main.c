/* sim_main.c - command line of the Raft simulator (CTest default and soak). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

static void usage(const char *argv0)
{
	fprintf(stderr,
	        "usage: %s [--seeds N] [--steps N] [--seed-start N] "
	        "[--nodes 3|5|0] [--seed N] [--stop] [-v]\n"
	        "  --nodes 0 (default) alternates 3 and 5 founding voters\n"
	        "  --seed N runs that one seed (reproduces a failure)\n"
	        "  --stop ends at the first failing seed\n",
	        argv0);
	exit(2);
}

static uint64_t num(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc)
		usage(argv[0]);
	return strtoull(argv[++*i], NULL, 10);
}

int main(int argc, char **argv)
{
	uint64_t seeds = 100, steps = 5000, start = 1, nodes = 0;
	int verbose = 0, stop = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seeds"))
			seeds = num(argc, argv, &i);
		else if (!strcmp(argv[i], "--steps"))
			steps = num(argc, argv, &i);
		else if (!strcmp(argv[i], "--seed-start"))
			start = num(argc, argv, &i);
		else if (!strcmp(argv[i], "--seed")) {
			start = num(argc, argv, &i);
			seeds = 1;
		} else if (!strcmp(argv[i], "--nodes"))
			nodes = num(argc, argv, &i);
		else if (!strcmp(argv[i], "--stop"))
			stop = 1;
		else if (!strcmp(argv[i], "-v"))
			verbose = 1;
		else
			usage(argv[0]);
	}
	unsigned failures = 0;
	uint64_t ran = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t seed = start; seed < start + seeds; seed++) {
		if (stop && failures > 0)
			break;
		ran++;
		struct sim_opts o = {0};
		o.seed = seed;
		o.steps = (uint32_t)steps;
		o.voters = nodes ? (uint32_t)nodes : (seed % 2 ? 3 : 5);
		o.verbose = verbose;
		char msg[512];
		if (sim_run(&o, msg, sizeof(msg))) {
			failures++;
			printf("FAIL seed %llu (%u nodes, %llu steps): %s\n"
			       "  reproduce: %s --seed %llu --steps %llu "
			       "--nodes %u\n",
			       (unsigned long long)seed, o.voters,
			       (unsigned long long)steps, msg, argv[0],
			       (unsigned long long)seed,
			       (unsigned long long)steps, o.voters);
			fflush(stdout);
		} else if (verbose || seeds == 1) {
			printf("seed %llu ok: %s\n", (unsigned long long)seed,
			       msg);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) +
	              (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%llu seeds x %llu steps from seed %llu: %u failed (%.1f s)\n",
	       (unsigned long long)ran, (unsigned long long)steps,
	       (unsigned long long)start, failures, secs);
	return failures ? 1 : 0;
}
