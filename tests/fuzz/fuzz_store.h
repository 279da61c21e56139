/*
 * fuzz_store.h - a store in a temporary directory that a fuzz target keeps
 * for the whole process (opening RocksDB per input would leave a few
 * hundred inputs a second), removed at exit. Included once per target.
 */
#ifndef LORA_FUZZ_STORE_H
#define LORA_FUZZ_STORE_H

#include <stdio.h>
#include <stdlib.h>

#include "storage.h"

static struct sto_store *fz_st;
static char fz_dir[64];
static uint64_t fz_index; /* the last index applied */

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
	snprintf(fz_dir, sizeof fz_dir, "/tmp/lora-fuzz-XXXXXX");
	if (mkdtemp(fz_dir) == NULL)
		abort();
	snprintf(db, sizeof db, "%s/state", fz_dir);
	struct sto_options o;
	sto_options_init(&o);
	o.block_cache_bytes = 8u << 20;
	if (sto_open(db, &o, &fz_st, em) != 0) {
		fprintf(stderr, "fuzz store: %s\n", em);
		abort();
	}
	fz_index = sto_applied_index(fz_st);
	atexit(fz_store_remove);
	return fz_st;
}

/* Applies b as the next index: sto_apply's answer. */
static int fz_apply(const Lora__MutationBatch *b, char *em)
{
	return sto_apply(fz_store(), ++fz_index, b, em);
}

#endif
