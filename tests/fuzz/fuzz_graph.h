/*
 * fuzz_graph.h - runs Cypher on a small graph for the fuzz targets
 * (fuzz_cypher.c, fuzz_native.c), under tight limits (which fuzz_seek.c
 * shares).
 */
#ifndef LORA_FUZZ_GRAPH_H
#define LORA_FUZZ_GRAPH_H

#include "lora_pb.h"

#define FZ_ROWS_MAX      10000       /* rows any operator may keep */
#define FZ_TIME_MS_MAX   500         /* per statement */
#define FZ_MEM_BYTES_MAX (32u << 20) /* per statement */
#define FZ_MUTATIONS_MAX 10000
#define FZ_PULL_ROWS_MAX 1000 /* rows read from a cursor */

struct qry_limits;
struct qry_error;

/* The limits above (rows, time, memory, mutations), the rest defaults. */
void fz_limits(struct qry_limits *l);

/* Aborts unless e says what and why: a code in range other than
 * LORA_EINTERNAL (a bug) and a message. */
void fz_check_error(const struct qry_error *e, const char *query);

/*
 * Runs query (NUL-terminated) with params (may be NULL) on the graph
 * (created at the first call in the in-memory store, never written
 * afterwards: a write statement's batch is checked, not applied, and IN
 * TRANSACTIONS has no commit_chunk), as a node would: about half the
 * inputs (by a hash of the text, so an input always takes the same way)
 * ask qry_is_write (again when it parses, as the leader does: then from
 * its kept answers) and open the text, as node/ does today; the others
 * qry_parse once, ask the statement and open its tree (qry_request.stmt),
 * and must get the same answer from qry_is_write. A text that does not
 * parse is opened too. Aborts when the engine breaks its contract: an
 * error without a code or message, LORA_EINTERNAL, qry_open failing
 * otherwise than the parse did (code, line, column) or opening a text
 * that does not parse, qry_is_write differing from the parsed statement
 * or from its own first answer, a row value deeper than
 * LORA_RESULT_DEPTH_MAX, a batch that a node could not decode, a batch
 * from a statement said to read or that has IN TRANSACTIONS, or a store
 * that was written. A write statement (whose text calls nothing that
 * varies from run to run) also runs twice more from its text, its leading
 * clauses streaming and then draining (qry_testing_eager_all): the same
 * batch and rows, or only the draining run out of memory, time or rows.
 */
void fz_query(const char *query, const Lora__ValueMap *params);

#endif
