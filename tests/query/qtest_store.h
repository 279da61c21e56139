/*
 * qtest_store.h - the store fixture the query tests share: a real RocksDB
 * store in a temporary directory (the store at <dir>/db; a test may put
 * other files in dir), opened by setup() and removed by teardown(), and
 * `applied`, the index the test's own sto_apply calls count from.
 * Included once per test program (the state is static).
 */
#ifndef LORA_QTEST_STORE_H
#define LORA_QTEST_STORE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "query.h"

static char dir[256];
static struct sto_store *st;
static uint64_t applied;

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/lora-qtest-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char db[300], em[LORA_ERRMSG_BYTES];
	snprintf(db, sizeof db, "%s/db", dir);
	ck_assert_int_eq(sto_open(db, NULL, &st, em), 0);
	applied = 0;
}

static void teardown(void)
{
	sto_close(st);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

#endif /* LORA_QTEST_STORE_H */
