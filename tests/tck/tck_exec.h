/*
 * tck_exec.h - runs one expanded TCK scenario against the real engine
 * (query.h) on a real store (storage.h) and judges its Then steps.
 *
 * The caller hands in an open store whose graph is empty: a new store, or
 * one emptied with tck_state_wipe() after the previous scenario (opening a
 * RocksDB store costs a few hundred milliseconds under AddressSanitizer,
 * too much to pay 2,700 times).
 */
#ifndef TCK_EXEC_H
#define TCK_EXEC_H

#include "lora.h"
#include "storage.h"
#include "tck_feature.h"

/* Per-statement engine deadline; the runner kills a scenario later. */
#define TCK_QUERY_TIME_MS_MAX 12000
/* Rows one statement may return before the runner gives up on it. */
#define TCK_ROWS_MAX 100000
/* Bytes of verbose detail kept per scenario. */
#define TCK_DETAIL_BYTES_MAX (32u << 10)

enum tck_outcome {
	TCK_PASS = 0,
	TCK_FAIL = 1,
	TCK_SKIP = 2,
};

struct tck_result {
	enum tck_outcome outcome;
	struct lora_buf reason; /* one line, empty on PASS */
	struct lora_buf detail; /* verbose: query, expected, actual, error */
};

struct tck_env {
	struct sto_store *store;  /* open and empty (tck_state_wipe) */
	const char *feature_path; /* where to look for graphs/ upwards */
	const char *graphs_dir;   /* --graphs, or NULL to search */
};

/* Runs s; fills res (the caller frees res->reason / res->detail with
 * lora_buf_free). Returns 0, or an error code for a runner failure that
 * is also described in res->reason. */
int tck_run_scenario(const struct tck_scenario *s, const struct tck_env *env,
                     struct tck_result *res);

/* 1 when the TCK error type (SyntaxError, TypeError, ...) accepts the
 * engine's enum lora_err code; the mapping is in docs/conformance.md. */
int tck_error_matches(const char *tck_type, int code);

#endif /* TCK_EXEC_H */
