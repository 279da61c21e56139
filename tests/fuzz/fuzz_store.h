/*
 * fuzz_store.h - a store in a temporary directory that a fuzz target keeps
 * across inputs (opening RocksDB per input would leave a few hundred inputs
 * a second), removed at exit. Included once per target.
 *
 * The directory is /dev/shm/lora-fuzz-<pid>-XXXXXX when there is a /dev/shm
 * (the WAL is written on every apply), else the same in /tmp. A crash or
 * sanitizer abort skips the removal at exit: scripts/fuzz.sh removes such
 * directories once their pid is gone.
 *
 * A store written for long gets slow: every overwrite and delete stays in
 * the memtable as a version that reads and scans step over, until a flush
 * and compaction. fz_store_recycle replaces it by a new empty one (a few
 * milliseconds) once FZ_STORE_APPLIES_MAX entries went in; fuzz_apply
 * calls it between inputs (each input starts from an empty graph anyway).
 * No gain from it was measurable on the loaded machine it was written on
 * (README.md, Speed).
 */
#ifndef LORA_FUZZ_STORE_H
#define LORA_FUZZ_STORE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "storage.h"

static struct sto_store *fz_st;
static char fz_dir[64];
static uint64_t fz_index; /* the last index applied */
static int fz_atexit;     /* fz_store_remove registered */

#define FZ_STORE_APPLIES_MAX 4000 /* entries before fz_store_recycle */

static void fz_store_remove(void)
{
	if (fz_st)
		sto_close(fz_st);
	fz_st = NULL;
	sto_rm_rf(fz_dir);
}

/* The store, opened at the first call. */
static struct sto_store *fz_store(void)
{
	if (fz_st)
		return fz_st;
	char db[128], em[LORA_ERRMSG_BYTES];
	/* named by pid: scripts/fuzz.sh removes the stores of processes
	 * that are gone (a crash or a sanitizer abort skips atexit) */
	snprintf(fz_dir, sizeof fz_dir, "/dev/shm/lora-fuzz-%ld-XXXXXX",
	         (long)getpid());
	if (mkdtemp(fz_dir) == NULL) {
		snprintf(fz_dir, sizeof fz_dir, "/tmp/lora-fuzz-%ld-XXXXXX",
		         (long)getpid());
		if (mkdtemp(fz_dir) == NULL)
			abort();
	}
	snprintf(db, sizeof db, "%s/state", fz_dir);
	struct sto_options o;
	sto_options_init(&o);
	o.block_cache_bytes = 8u << 20;
	if (sto_open(db, &o, &fz_st, em) != 0) {
		fprintf(stderr, "fuzz store: %s\n", em);
		abort();
	}
	fz_index = sto_applied_index(fz_st);
	if (!fz_atexit)
		atexit(fz_store_remove);
	fz_atexit = 1;
	return fz_st;
}

/* A new empty store in place of one that took FZ_STORE_APPLIES_MAX
 * entries (1), or nothing (0). */
static inline int fz_store_recycle(void)
{
	if (fz_st == NULL || fz_index < FZ_STORE_APPLIES_MAX)
		return 0;
	fz_store_remove();
	fz_store();
	return 1;
}

/* Applies b as the next index: sto_apply's answer. */
static int fz_apply(const Lora__MutationBatch *b, char *em)
{
	return sto_apply(fz_store(), ++fz_index, b, em);
}

#endif
