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
 * runs once after such work, never per request.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lora.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static _Atomic uint64_t trims, trimmed;

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

uint64_t lora_mem_trim(void)
{
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

void lora_mem_process(struct lora_mem_process *out)
{
	memset(out, 0, sizeof *out);
	out->resident = lora_mem_resident();
	struct mallinfo2 mi = mallinfo2();
	out->in_use = mi.uordblks + mi.hblkhd;
	out->free = mi.fordblks;
	out->mmapped = mi.hblkhd;
	out->arenas = count_arenas();
	out->trims = atomic_load(&trims);
	out->trimmed = atomic_load(&trimmed);
}
