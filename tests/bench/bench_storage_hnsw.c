/* bench_storage_hnsw.c - the HNSW graph alone (storage/hnsw.c), no
 * RocksDB, no cluster: CPU time per insert and per search, recall@10
 * against a brute-force ranking, memory. CPU time (not wall time) so that
 * a shared machine does not blur the figures.
 *
 * usage: bench_storage_hnsw [N (100000)] [clustered|random] [ef (100)]
 *        [ef_construction (100)]
 * Data: 128-d; clustered = 100 centres uniform in [-1, 1), Gaussian noise
 * of sd 0.1 per coordinate; random = uniform in [-1, 1). Queries are drawn
 * as the data is. Cosine, m 16, ef_construction 100 unless given. LORA_SEED
 * sets the seed (printed). The graph's hash (every node's lists) is printed:
 * the same for builds that take the same decisions. LORA_HNSW_KERNEL=sse or
 * avx2 forces the distance kernel. LORA_BENCH_FLUSH=B flushes the changed
 * lists every B inserts, as the apply of a batch of B vectors does (its
 * CPU counts in the inserts), and prints the rows and bytes written per
 * insert; the graph hash is then that of the last flush only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hnswInt.h"

#define DIMS    128
#define QUERIES 200
#define K       10

static uint64_t rng;

static double rnd(void)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static double cpu_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void draw(float *x, int clustered, float (*centres)[DIMS])
{
	const float *c = centres[(int)(rnd() * 100)];
	for (int d = 0; d < DIMS; d++) {
		double g =
		    sqrt(-2 * log(rnd() + 1e-300)) * cos(2 * M_PI * rnd());
		x[d] = clustered ? (float)(c[d] + 0.1 * g)
		                 : (float)(2 * rnd() - 1);
	}
}

/* FNV-1a over every node's encoded lists (hnsw_flush, ascending id):
 * equal hashes for graphs built by two versions or kernels show that
 * they took the same decisions */
static int put_hash(void *arg, uint64_t id, const uint8_t *val, size_t len)
{
	uint64_t *h = arg;
	*h = (*h ^ id) * 1099511628211ull;
	for (size_t i = 0; i < len; i++)
		*h = (*h ^ val[i]) * 1099511628211ull;
	return 0;
}

/* rows and value bytes an apply would write (LORA_BENCH_FLUSH) */
struct flush_count {
	size_t rows, bytes;
};

static int put_count(void *arg, uint64_t id, const uint8_t *val, size_t len)
{
	struct flush_count *c = arg;
	(void)id;
	(void)val;
	c->rows++;
	c->bytes += len;
	return 0;
}

static int del_none(void *arg, uint64_t id)
{
	(void)arg;
	(void)id;
	return 0;
}

/* the process's peak resident memory in MB (VmHWM), -1 when unknown:
 * growing the arrays may hold the old and the new block at once */
static double peak_mb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	double kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmHWM:", 6))
			kb = strtod(line + 6, NULL);
	if (f)
		fclose(f);
	return kb < 0 ? -1 : kb / 1024;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
	int clustered = argc < 3 || strcmp(argv[2], "random");
	size_t ef = argc > 3 ? strtoull(argv[3], NULL, 10) : 100;
	uint32_t efc = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10) : 100;
	if (!efc || efc > HNSW_EFC_MAX)
		return 2;
	const char *e = getenv("LORA_SEED");
	uint64_t seed = e ? strtoull(e, NULL, 10) : 42;
	rng = seed;
	const char *kn = getenv("LORA_HNSW_KERNEL");
	if (kn && hnsw_kernel_force(!strcmp(kn, "sse")    ? HNSW_KERNEL_SSE
	                            : !strcmp(kn, "avx2") ? HNSW_KERNEL_AVX2
	                                                  : HNSW_KERNEL_AUTO))
		return 1;
	float(*centres)[DIMS] = malloc(sizeof *centres * 100);
	float(*v)[DIMS] = malloc(sizeof *v * n);
	struct hnsw_graph *g = hnsw_new("vec", DIMS, HNSW_COSINE, 16, efc);
	struct hnsw_cand *out = malloc(sizeof *out * ef);
	double *lat = malloc(sizeof *lat * QUERIES);
	if (!centres || !v || !g || !out || !lat)
		return 1;
	for (int c = 0; c < 100; c++)
		for (int d = 0; d < DIMS; d++)
			centres[c][d] = (float)(2 * rnd() - 1);
	for (size_t i = 0; i < n; i++)
		draw(v[i], clustered, centres);
	const char *fe = getenv("LORA_BENCH_FLUSH");
	size_t every = fe ? strtoull(fe, NULL, 10) : 0;
	struct flush_count fc = {0, 0};
	double t0 = cpu_s();
	for (size_t i = 0; i < n; i++) {
		if (hnsw_insert(g, i, v[i]))
			return 1;
		if (every && (i + 1) % every == 0 &&
		    hnsw_flush(g, put_count, del_none, &fc))
			return 1;
	}
	double ins = cpu_s() - t0;
	if (every)
		printf("flush every %zu inserts: %.1f rows, %.0f value bytes "
		       "per insert\n",
		       every, (double)fc.rows / n, (double)fc.bytes / n);
	size_t hit = 0;
	for (int t = 0; t < QUERIES; t++) {
		float qf[DIMS];
		double q[DIMS], qn = 0, best[K];
		uint64_t top[K];
		draw(qf, clustered, centres);
		for (int d = 0; d < DIMS; d++)
			q[d] = qf[d], qn += q[d] * q[d];
		size_t k;
		t0 = cpu_s();
		hnsw_search(g, q, ef, out, &k);
		lat[t] = (cpu_s() - t0) * 1e6;
		for (int j = 0; j < K; j++)
			best[j] = -2, top[j] = UINT64_MAX;
		for (size_t i = 0; i < n; i++) {
			double dp = 0, nn = 0;
			for (int d = 0; d < DIMS; d++)
				dp += v[i][d] * q[d],
				    nn += (double)v[i][d] * v[i][d];
			double s = dp / sqrt(nn * qn);
			int j = K - 1;
			if (s <= best[j])
				continue;
			for (; j > 0 && s > best[j - 1]; j--)
				best[j] = best[j - 1], top[j] = top[j - 1];
			best[j] = s, top[j] = i;
		}
		for (int j = 0; j < K; j++)
			for (size_t x = 0; x < K && x < k; x++)
				hit += out[x].id == top[j];
	}
	qsort(lat, QUERIES, sizeof *lat, dcmp);
	uint64_t gh = 14695981039346656037ull;
	if (hnsw_flush(g, put_hash, del_none, &gh))
		return 1;
	printf("kernel %s\n", hnsw_kernel_get(HNSW_KERNEL_AUTO)->name);
	printf(
	    "seed %llu, %zu x %d-d %s, m 16, ef_construction %u, ef %zu:\n"
	    "  inserts: %.0f per CPU-second (%.1f µs each)\n"
	    "  search: median %.0f µs of CPU, recall@10 %.3f\n"
	    "  memory: %.1f MB (peak resident %.1f MB), graph hash %016llx\n",
	    (unsigned long long)seed, n, DIMS,
	    clustered ? "clustered" : "random", efc, ef, n / ins, ins / n * 1e6,
	    lat[QUERIES / 2], (double)hit / (K * QUERIES), hnsw_bytes(g) / 1e6,
	    peak_mb(), (unsigned long long)gh);
	hnsw_free(g);
	free(centres);
	free(v);
	free(out);
	free(lat);
	return 0;
}
