/* mem.c - the process's memory as glibc malloc and the kernel see it: the
 * figures /metrics shows, and the trim after large one-off work.
 *
 * Why a trim: glibc keeps memory a program frees in its arenas' free lists
 * (and, off the main arena, in heaps it only shrinks from the top), so a
 * node that built a big result, a vector graph or an import once stays at
 * that peak resident set until the same sizes are asked for again.
 * malloc_trim(0) returns every whole free page of every arena to the
 * kernel (MADV_DONTNEED), which is what an operator reading RSS expects
 * after the work is done. It costs a walk of the free lists under each
 * arena's lock (about a millisecond per hundred MiB of free memory), so it
 * runs once after such work, never per request, and at most once per
 * LORA_MEM_TRIM_INTERVAL_MS in the process: a burst of such work (a vector
 * column rebuilt by every query while writes come in) would otherwise
 * trim after each piece and fault the same pages straight back in. A
 * skipped trim is counted; what it would have given back stays in malloc
 * for the next piece of work, or for the next trim.
 *
 * The malloc figures (mallinfo2, and malloc_info for the arena count)
 * also walk every arena under its lock, so /metrics reads them at most
 * once per LORA_MEM_FIGURES_MS; the resident set (one read of
 * /proc/self/statm) is always current.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lora.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LORA_MEM_TRIM_INTERVAL_MS 10000 /* least time between two trims */
#define LORA_MEM_FIGURES_MS       10000 /* malloc's figures kept this long */

static _Atomic uint64_t trims, trimmed, trims_skipped, figure_reads;
static _Atomic int64_t last_trim_ms = -1; /* -1: none yet */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t lora_mem_resident(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long long size = 0, res = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Whether this call may trim now: the first to claim the slot after the
 * interval does, every other call in it is counted as skipped. */
static int trim_claim(void)
{
	int64_t now = now_ms();
	int64_t last = atomic_load(&last_trim_ms);
	if ((last < 0 || now - last >= LORA_MEM_TRIM_INTERVAL_MS) &&
	    atomic_compare_exchange_strong(&last_trim_ms, &last, now))
		return 1;
	atomic_fetch_add(&trims_skipped, 1);
	return 0;
}

uint64_t lora_mem_trim(void)
{
	if (!trim_claim())
		return 0;
	uint64_t before = lora_mem_resident();
	malloc_trim(0);
	uint64_t after = lora_mem_resident();
	uint64_t d = before > after ? before - after : 0;
	atomic_fetch_add(&trims, 1);
	atomic_fetch_add(&trimmed, d);
	return d;
}

/* Arenas in malloc_info's report: one <heap nr="..."> element each. */
static unsigned count_arenas(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return 0;
	int rv = malloc_info(0, f);
	fclose(f);
	unsigned n = 0;
	for (const char *p = text; !rv && p && (p = strstr(p, "<heap nr="));
	     p++)
		n++;
	free(text); /* open_memstream's buffer is libc's */
	return n;
}

/* malloc's figures as last read, and when (guarded by figures_mu) */
static pthread_mutex_t figures_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lora_mem_process figures;
static int64_t figures_ms = -1; /* -1: never read */

void lora_mem_process(struct lora_mem_process *out)
{
	int64_t now = now_ms();
	pthread_mutex_lock(&figures_mu);
	if (figures_ms < 0 || now - figures_ms >= LORA_MEM_FIGURES_MS) {
		struct mallinfo2 mi = mallinfo2();
		figures.in_use = mi.uordblks + mi.hblkhd;
		figures.free = mi.fordblks;
		figures.mmapped = mi.hblkhd;
		figures.arenas = count_arenas();
		figures_ms = now;
		atomic_fetch_add(&figure_reads, 1);
	}
	*out = figures;
	pthread_mutex_unlock(&figures_mu);
	out->resident = lora_mem_resident();
	out->trims = atomic_load(&trims);
	out->trimmed = atomic_load(&trimmed);
	out->trims_skipped = atomic_load(&trims_skipped);
	out->figure_reads = atomic_load(&figure_reads);
}
