/*
 * sto_fixture.h - the store fixture the storage unit tests share: a store
 * at <dir>/state in a new temporary directory, opened by setup() and
 * removed with its directory by teardown(). Included once per test
 * program (the state is static).
 */
#ifndef LORA_STO_FIXTURE_H
#define LORA_STO_FIXTURE_H

#include <check.h>

#include "sto_helpers.h"

static char *dir;
static struct sto_store *st;

static void setup(void)
{
	char msg[LORA_ERRMSG_BYTES] = "", p[512];
	dir = tmpdir_new();
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof(p), dir, "state"), NULL, &st, msg), 0);
}

static void teardown(void)
{
	sto_close(st);
	st = NULL;
	tmpdir_free(dir);
}

/* Applies b to st as the next index; returns the error code (printed,
 * as a refusal may be what the test expects). Frees b. */
static inline int apply(Lora__MutationBatch *b)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	int rv = sto_apply(st, sto_applied_index(st) + 1, b, msg);
	if (rv)
		fprintf(stderr, "  (expected?) apply: %s: %s\n",
		        lora_err_code(rv), msg);
	batch_free(b);
	return rv;
}

#endif /* LORA_STO_FIXTURE_H */
