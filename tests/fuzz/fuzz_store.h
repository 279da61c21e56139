/*
 * fuzz_store.h - a store that a fuzz target keeps across inputs (opening
 * RocksDB per input would leave a few hundred inputs a second). Included
 * once per target.
 *
 * The store lives in RocksDB's in-memory Env (sto_options.mem_env): still
 * real RocksDB (memtables, write batches, column families, flushes and
 * compactions), but no file is written, synced or removed, so nothing is
 * left behind when a target crashes, and opening a new store is cheap
 * (README.md, Speed). Its writes skip the write-ahead log
 * (sto_options.wal_off): a store that is gone at close has nothing to
 * recover, and the log's appends were ~4% of the target's CPU.
 *
 * A store written for long gets slow: every overwrite and delete stays in
 * the memtable as a version that reads and scans step over, until a flush
 * and compaction. fz_store_recycle flushes and compacts it (sto_compact,
 * ~25 ms under ASan) once FZ_STORE_APPLIES_MAX entries went in since the
 * last time; fuzz_apply calls it between inputs, after emptying the
 * graph, so the compaction drops every tombstone. Closing and opening a
 * new store costs ~100 ms under ASan (most of it RocksDB writing and
 * parsing its OPTIONS file through ASan's malloc), so it happens only
 * every FZ_STORE_REPLACE_MAX entries: what a compaction keeps (the
 * interned label, key and type names, users and tokens, id counters,
 * meta, the store's caches) is thereby bounded, and an input's outcome
 * depends on at most that many entries before it (README.md, Replay).
 */
#ifndef LORA_FUZZ_STORE_H
#define LORA_FUZZ_STORE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "storage.h"

static struct sto_store *fz_st;
static uint64_t fz_index; /* the last index applied */
static int fz_atexit;     /* fz_store_remove registered */

/* Entries between two compactions by fz_store_recycle, and between two
 * replacements of the store by a new, empty one. CTest's
 * fuzz_apply_recycle_replay sets both small (and FZ_STORE_CHECK) so that
 * a replay of the seeds goes through both many times. */
#ifndef FZ_STORE_APPLIES_MAX
#define FZ_STORE_APPLIES_MAX 4000
#endif
#ifndef FZ_STORE_REPLACE_MAX
#define FZ_STORE_REPLACE_MAX 100000
#endif

#ifdef FZ_STORE_CHECK
static unsigned fz_compactions, fz_replacements;
/* at exit: a replay that never compacted or replaced tested neither */
static void fz_store_check(void)
{
	fprintf(stderr, "fuzz store: %u compactions, %u replacements\n",
	        fz_compactions, fz_replacements);
	if (!fz_compactions || !fz_replacements)
		abort();
}
#define FZ_STORE_COUNT(c) ((c)++)
#else
#define FZ_STORE_COUNT(c) ((void)0)
#endif

static void fz_store_remove(void)
{
	if (fz_st)
		sto_close(fz_st); /* frees the in-memory Env and its files */
	fz_st = NULL;
}

/* The store, opened at the first call. */
static struct sto_store *fz_store(void)
{
	if (fz_st)
		return fz_st;
	char em[LORA_ERRMSG_BYTES];
	struct sto_options o;
	sto_options_init(&o);
	o.block_cache_bytes = 8u << 20;
	o.mem_env = 1;
	o.wal_off = 1; /* a store gone at close needs no log to recover */
	/* apply's chunk cache: its table and 1 KiB beside it, room for about
	 * twelve small chunks, so that inputs evict and read chunks back
	 * (the 8 nodes' 16 lists do not fit) */
	o.adj_cache_bytes = 8192 + 1024;
	/* a path in the in-memory Env only: nothing on disk */
	if (sto_open("/lora-fuzz/state", &o, &fz_st, em) != 0) {
		fprintf(stderr, "fuzz store: %s\n", em);
		abort();
	}
	fz_index = sto_applied_index(fz_st);
	if (!fz_atexit) {
		atexit(fz_store_remove);
#ifdef FZ_STORE_CHECK
		atexit(fz_store_check);
#endif
	}
	fz_atexit = 1;
	return fz_st;
}

/* Between inputs, the graph empty. Once FZ_STORE_REPLACE_MAX entries
 * went in since the store was opened: it is closed and a new, empty one
 * opened (2). Else once FZ_STORE_APPLIES_MAX went in since the last
 * compaction: flushed and compacted (1). Else nothing (0). */
static inline int fz_store_recycle(void)
{
	static uint64_t at, opened; /* fz_index then (of this store) */
	if (fz_st == NULL)
		return 0;
	if (fz_index - opened >= FZ_STORE_REPLACE_MAX) {
		fz_store_remove();
		fz_store();
		if (fz_index != 0) { /* a new store has applied nothing */
			fprintf(stderr, "fuzz store: not new, index %llu\n",
			        (unsigned long long)fz_index);
			abort();
		}
		at = opened = fz_index;
		FZ_STORE_COUNT(fz_replacements);
		return 2;
	}
	if (fz_index - at < FZ_STORE_APPLIES_MAX)
		return 0;
	char em[LORA_ERRMSG_BYTES];
	if (sto_compact(fz_st, em)) {
		fprintf(stderr, "fuzz store: %s\n", em);
		abort();
	}
	at = fz_index;
	FZ_STORE_COUNT(fz_compactions);
	return 1;
}

/* Applies b as the next index: sto_apply's answer. */
static int fz_apply(const Lora__MutationBatch *b, char *em)
{
	return sto_apply(fz_store(), ++fz_index, b, em);
}

#endif
