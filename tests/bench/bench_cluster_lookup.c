/*
 * bench_cluster_lookup.c - point-lookup latency over the native protocol
 * (the C client), for tests/bench/bench_protocols.sh:
 *
 *   bench_cluster_lookup ADDRESS COUNT KEYS
 *
 * Runs COUNT times, one after another, MATCH (p:P {id: $id}) RETURN p.name
 * with a random id in [0, KEYS) (seed from LORA_SEED, printed) on the node
 * at ADDRESS (route any: that node answers), and prints one line:
 * "native lookups=N p50_us=.. p99_us=.. mean_us=..". Credentials from
 * LORA_USER / LORA_PASSWORD.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lora_client.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr,
		        "usage: bench_cluster_lookup ADDRESS COUNT KEYS\n");
		return 2;
	}
	long count = atol(argv[2]), keys = atol(argv[3]);
	const char *s = getenv("LORA_SEED");
	unsigned seed = s ? (unsigned)atol(s) : (unsigned)time(NULL);
	fprintf(stderr, "LORA_SEED=%u\n", seed);
	srand(seed);
	struct lora_client_opts o = {.addresses = argv[1],
	                             .route = LORA_ROUTE_ANY};
	struct lora_client *c = NULL;
	struct lora_client_error e = {0};
	if (count <= 0 || keys <= 0 || lora_client_open(&c, &o, &e) != 0) {
		fprintf(stderr, "cannot open: %s\n", e.message);
		return 1;
	}
	uint64_t *lat = calloc((size_t)count, sizeof *lat);
	int rv = lat ? 0 : 1;
	for (long i = 0; rv == 0 && i < count; i++) {
		Lora__Value *v = lora_value_int(rand() % keys);
		Lora__Param *p = lora_param_new("id", v);
		struct lora_query q = {
		    .query = "MATCH (p:P {id: $id}) RETURN p.name AS name",
		    .params = &p,
		    .n_params = 1};
		struct lora_result *r = NULL;
		uint64_t t0 = now_ns();
		rv = lora_client_run(c, &q, &r, &e);
		Lora__Value *const *row = NULL;
		if (rv == 0)
			rv = lora_result_next(r, &row, &e);
		lat[i] = now_ns() - t0;
		if (rv == 0 && row == NULL)
			rv = 1; /* the key must exist */
		lora_result_free(r);
		lora_param_free(p);
	}
	if (rv == 0) {
		qsort(lat, (size_t)count, sizeof *lat, cmp_u64);
		uint64_t sum = 0;
		for (long i = 0; i < count; i++)
			sum += lat[i];
		printf("native lookups=%ld p50_us=%.0f p99_us=%.0f "
		       "mean_us=%.0f\n",
		       count, lat[count / 2] / 1e3, lat[count * 99 / 100] / 1e3,
		       sum / 1e3 / count);
	} else {
		fprintf(stderr, "lookup failed: %s\n", e.message);
	}
	free(lat);
	lora_client_close(c);
	lora_client_library_fini();
	return rv ? 1 : 0;
}
