/*
 * fuzz_graph.h - runs Cypher on a small graph for the fuzz targets
 * (fuzz_cypher.c, fuzz_native.c), under tight limits.
 */
#ifndef LORA_FUZZ_GRAPH_H
#define LORA_FUZZ_GRAPH_H

#include "lora_pb.h"

#define FZ_ROWS_MAX      10000       /* rows any operator may keep */
#define FZ_TIME_MS_MAX   500         /* per statement */
#define FZ_MEM_BYTES_MAX (32u << 20) /* per statement */
#define FZ_MUTATIONS_MAX 10000
#define FZ_PULL_ROWS_MAX 1000 /* rows read from a cursor */

/*
 * Parses query (NUL-terminated) once with qry_parse, then checks, plans
 * and runs that tree (qry_request.stmt) with params (may be NULL) on the
 * graph (created at the first call in the in-memory store, never written
 * afterwards: a write statement's batch is checked, not applied, and IN
 * TRANSACTIONS has no commit_chunk). Aborts when the engine breaks its
 * contract: an error without a code or message, LORA_EINTERNAL, a row
 * value deeper than LORA_RESULT_DEPTH_MAX, a batch that a node could not
 * decode, or a batch from a statement that qry_stmt_is_write calls a read
 * or that has IN TRANSACTIONS.
 */
void fz_query(const char *query, const Lora__ValueMap *params);

#endif
