/* gen_graph.c - writes the benchmark social graph as CSV: people.csv and
 * knows.csv, deterministic for a seed. Standalone (libc only), so that
 * any benchmark script can build it on the spot:
 *
 *   cc -O2 -o gen_graph tests/bench/gen_graph.c
 *   ./gen_graph [--people N] [--edges M] [--dims D] [--seed S] [--out DIR]
 *
 * Defaults: 100,000 people, 1,000,000 edges, 128 dimensions, seed 42,
 * the current directory. Layout (neo4j-admin / lora-import headers; a
 * loader that takes columns by position, such as Kuzu's COPY FROM with
 * header=true, can read the same files):
 *
 *   people.csv  id:ID,name,age:int,city,emb:vector(128)
 *               0,Person 0,37,City 12,"[0.123456,-0.654321,...]"
 *     id    0..N-1, in order
 *     name  "Person <id>"
 *     age   uniform 18..90
 *     city  "City 00".."City 49", uniform
 *     emb   D coordinates, each k/10^6 for k uniform in [-10^6, 10^6],
 *           written with exactly 6 decimals, quoted (it holds commas)
 *
 *   knows.csv   :START_ID,:END_ID
 *               12,4567
 *     M rows, both ends uniform over 0..N-1 (self-loops and repeated
 *     pairs may occur), in generation order; the relationship type is
 *     given to the loader (lora-import --relationships=KNOWS).
 *
 * Random numbers: splitmix64 seeded with S; people first (age, city, then
 * the D coordinates of each person in turn), then the edges (start, end).
 * The same arguments give byte-identical files on every machine.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CITIES 50

static uint64_t state;

static uint64_t next_u64(void)
{
	uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) (n small: the modulo bias is below 2^-40). */
static uint64_t below(uint64_t n)
{
	return next_u64() % n;
}

static char *put_uint(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* k / 10^6 with exactly six decimals, k in [-10^6, 10^6]. */
static char *put_coord(char *p, int64_t k)
{
	if (k < 0) {
		*p++ = '-';
		k = -k;
	}
	*p++ = (char)('0' + k / 1000000);
	*p++ = '.';
	int64_t f = k % 1000000;
	for (int64_t d = 100000; d; d /= 10) {
		*p++ = (char)('0' + f / d);
		f %= d;
	}
	return p;
}

static FILE *open_out(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "gen_graph: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	return f;
}

static void close_out(FILE *f, const char *name)
{
	if (fflush(f) != 0 || ferror(f) || fclose(f) != 0) {
		fprintf(stderr, "gen_graph: writing %s failed\n", name);
		exit(1);
	}
}

static void people(const char *dir, uint64_t n, unsigned dims)
{
	FILE *f = open_out(dir, "people.csv");
	fprintf(f, "id:ID,name,age:int,city,emb:vector(%u)\n", dims);
	char *line = malloc(64 + (size_t)dims * 10);
	if (!line) {
		fprintf(stderr, "gen_graph: out of memory\n");
		exit(1);
	}
	for (uint64_t i = 0; i < n; i++) {
		char *p = line;
		uint64_t age = 18 + below(73), city = below(CITIES);
		p = put_uint(p, i);
		memcpy(p, ",Person ", 8);
		p = put_uint(p + 8, i);
		*p++ = ',';
		p = put_uint(p, age);
		memcpy(p, ",City ", 6);
		p += 6;
		*p++ = (char)('0' + city / 10);
		*p++ = (char)('0' + city % 10);
		memcpy(p, ",\"[", 3);
		p += 3;
		for (unsigned d = 0; d < dims; d++) {
			if (d)
				*p++ = ',';
			p = put_coord(p, (int64_t)below(2000001) - 1000000);
		}
		memcpy(p, "]\"\n", 3);
		p += 3;
		fwrite(line, 1, (size_t)(p - line), f);
	}
	free(line);
	close_out(f, "people.csv");
}

static void knows(const char *dir, uint64_t n, uint64_t m)
{
	FILE *f = open_out(dir, "knows.csv");
	fputs(":START_ID,:END_ID\n", f);
	char line[64];
	for (uint64_t i = 0; i < m; i++) {
		char *p = put_uint(line, below(n));
		*p++ = ',';
		p = put_uint(p, below(n));
		*p++ = '\n';
		fwrite(line, 1, (size_t)(p - line), f);
	}
	close_out(f, "knows.csv");
}

static uint64_t num_arg(const char *opt, const char *v)
{
	char *end;
	errno = 0;
	unsigned long long x = v ? strtoull(v, &end, 10) : 0;
	if (!v || *end || errno) {
		fprintf(stderr, "gen_graph: %s needs a number\n", opt);
		exit(2);
	}
	return x;
}

int main(int argc, char **argv)
{
	uint64_t n = 100000, m = 1000000, seed = 42, dims = 128;
	const char *dir = ".";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--people"))
			n = num_arg(a, v);
		else if (!strcmp(a, "--edges"))
			m = num_arg(a, v);
		else if (!strcmp(a, "--dims"))
			dims = num_arg(a, v);
		else if (!strcmp(a, "--seed"))
			seed = num_arg(a, v);
		else if (!strcmp(a, "--out") && v)
			dir = v;
		else {
			fprintf(stderr,
			        "usage: gen_graph [--people N] [--edges M] "
			        "[--dims D] [--seed S] [--out DIR]\n");
			return 2;
		}
		i++;
	}
	if (n == 0 || dims == 0 || dims > 4096) {
		fprintf(stderr, "gen_graph: need people >= 1, 1 <= dims <= "
		                "4096\n");
		return 2;
	}
	state = seed;
	people(dir, n, (unsigned)dims);
	knows(dir, n, m);
	fprintf(stderr,
	        "gen_graph: %llu people, %llu edges, %llu dims, seed %llu "
	        "in %s\n",
	        (unsigned long long)n, (unsigned long long)m,
	        (unsigned long long)dims, (unsigned long long)seed, dir);
	return 0;
}
