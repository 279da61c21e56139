/*
 * query.h - the Cypher engine: text in, rows out, and for a write statement
 * a mutation batch for the replicated log.
 *
 * A statement runs against a storage read view (struct sto_view) plus an
 * optional list of pending mutation batches: batches the leader has
 * proposed but not yet applied. The engine sees the view with those
 * batches laid over it, in order, so queued writes can be executed back to
 * back while earlier ones commit (group commit).
 *
 * The engine never writes to storage. A write statement produces a
 * Lora__MutationBatch (qry_cursor_batch); the caller proposes it through
 * Raft or, in-process (tests, benchmarks, the TCK runner), applies it with
 * sto_apply(). Ids of created nodes and edges are chosen here, above every
 * id in the view and the pending batches, so they are decided once.
 *
 * Read statements stream: qry_cursor_next pulls rows lazily from the view,
 * which must stay open until qry_cursor_free. Write statements run to the
 * end inside qry_open (a failing statement leaves no batch behind), then
 * hand out their rows.
 *
 * Threads: a cursor belongs to one thread at a time; separate cursors may
 * run in parallel on separate views.
 */
#ifndef LORA_QUERY_H
#define LORA_QUERY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lora.h"
#include "lora_pb.h"
#include "storage.h"

/* ---- limits (defaults; a request may lower or raise them) -------------- */

#define QRY_QUERY_BYTES_MAX   (1u << 20)  /* query text */
#define QRY_NESTING_DEPTH_MAX 256         /* expression / clause nesting */
#define QRY_ROWS_MAX          10000000ull /* rows any operator may keep */
#define QRY_TIME_MS_DEFAULT   60000       /* per statement */
#define QRY_MUTATIONS_MAX                                                      \
	1000000                            /* mutations in one statement (one  \
	                                    * chunk of IN TRANSACTIONS) */
#define QRY_MEM_BYTES_DEFAULT (1ull << 30) /* per statement */
#define QRY_VALUE_DEPTH_MAX   LORA_VALUE_DEPTH_MAX
/* relationships one statement's variable-length and quantified patterns
 * may traverse (LORA_ELIMIT "PathExpansionLimit" past it) */
#define QRY_PATH_EXPANSIONS_MAX 10000000ull
/* the graph cache's size up to which the nodes and relationships a read
 * looks at (a pattern's checks, properties, answers) enter it; past it,
 * or past an eighth of the statement's limit, they are read for the row
 * and dropped with it (graph.c g_cache_room) */
#define QRY_READ_CACHE_BYTES (16u << 20)

/* Vector index queries (db.index.vector.queryNodes / queryRelationships)
 * of this process answered from the HNSW graph and by the exact scan
 * ({exact: true}, a small or POPULATING index, a view the graph does not
 * fit, a WHERE that needs half the index): GET /metrics. */
void qry_vector_search_counts(uint64_t *graph, uint64_t *exact);

/*
 * A memory budget shared by every statement of a process (the node's
 * `query_memory_bytes`): each statement charges what it allocates to its
 * own limit and to this budget, and gives it back when its cursor is
 * freed. Thread-safe. A statement that would take the shared budget past
 * max_bytes stops with LORA_EMEMORY; the others keep running.
 */
struct qry_budget {
	_Atomic uint64_t used_bytes;
	uint64_t max_bytes;       /* 0: unlimited */
	_Atomic uint64_t refused; /* statements stopped by this budget */
};

void qry_budget_init(struct qry_budget *b, uint64_t max_bytes);

struct qry_limits {
	uint32_t nesting_depth_max;
	uint64_t rows_max;
	uint64_t time_ms_max; /* 0: no deadline */
	/* the limit's clock started this early (lora_now_ms time; 0: when
	 * the statement opens): time it waited counts against time_ms_max */
	uint64_t time_from_ms;
	uint64_t mutations_max;
	uint64_t mem_bytes_max;       /* this statement; 0: no limit */
	uint64_t path_expansions_max; /* 0: QRY_PATH_EXPANSIONS_MAX */
	struct qry_budget *shared;    /* borrowed, may be NULL; must outlive the
	                               * cursor */
	/* not a limit, but set for every statement alike: 1 makes the
	 * mutations carry what they replace (SetProperty/RemoveProperty
	 * old_value, DeleteNode/DeleteEdge old), for the change stream */
	uint8_t old_values;
	/* Whether the client that asked left (NULL: never asked). Asked at
	 * most every QRY_GONE_CHECK_MS while the statement runs, on the
	 * thread running it, also inside one operator (an aggregation that
	 * has no row out yet); nonzero stops it with LORA_ECLOSED. gone_arg
	 * must outlive the cursor. */
	int (*gone)(void *gone_arg);
	void *gone_arg;
};

/* How often a running statement asks qry_limits.gone. */
#define QRY_GONE_CHECK_MS 100

/* Fills l with the defaults above (shared NULL). */
void qry_limits_init(struct qry_limits *l);

/* What a statement too big for one transaction is told to do instead
 * (appended to the LORA_ELIMIT message of the mutation limit and of a
 * node's log entry size limit). */
#define QRY_TOO_BIG_HINT                                                       \
	": split it with CALL { ... } IN TRANSACTIONS, or LOAD CSV with "      \
	"CALL { ... } IN TRANSACTIONS, which commit every n rows"

/* ---- errors ------------------------------------------------------------ */

struct qry_error {
	int code;                        /* enum lora_err, 0 when none */
	char message[LORA_ERRMSG_BYTES]; /* readable sentence */
	uint32_t line, column;           /* 1-based; 0 when not positional */
	char excerpt[LORA_ERRMSG_BYTES]; /* parse errors: line + caret, or "" */
};

/* ---- running a statement ----------------------------------------------- */

enum qry_mode {
	QRY_RUN = 0,
	QRY_EXPLAIN = 1, /* plan only, no rows, no effects */
	QRY_PROFILE = 2, /* run and count rows and time per operator */
};

struct qry_stmt;

/* IN TRANSACTIONS chunks proposed and not yet landed at once (see
 * propose_chunk): one more runs meanwhile. */
#define QRY_CHUNKS_IN_FLIGHT 2

struct qry_request {
	const char *query; /* borrowed, NUL-terminated */
	/* Borrowed, may be NULL: query already parsed by qry_parse (from
	 * this same pointer, with the same nesting_depth_max). qry_open then
	 * takes its tree instead of parsing the text again, so what runs is
	 * the tree the caller asked qry_stmt_is_write and friends about. A
	 * statement is opened once: one already opened, or parsed from
	 * another pointer (even an equal text) or under another nesting
	 * limit, is LORA_EINVAL, never a parse of query in its place (a
	 * refused statement is not spent). The caller still frees it with
	 * qry_stmt_free. */
	struct qry_stmt *stmt;
	const Lora__ValueMap *params; /* borrowed; NULL for none */
	struct sto_view *view;        /* borrowed; must outlive the cursor */
	const Lora__MutationBatch *const *pending; /* borrowed, may be NULL */
	size_t n_pending;
	enum qry_mode mode;
	int read_only; /* 1: a write is LORA_EREADONLY */
	/* 1: a statement of an explicit transaction, where CALL { ... } IN
	 * TRANSACTIONS (which commits by itself) is LORA_EINVAL */
	int explicit_tx;
	struct qry_limits limits; /* qry_limits_init() for defaults */
	/* LOAD CSV reads file:/// URLs below this directory only (copied at
	 * open; NULL: LOAD CSV is refused with LORA_EINVAL) */
	const char *import_dir;
	/*
	 * CALL { ... } IN TRANSACTIONS: each chunk's batch (borrowed for the
	 * call) goes here; the callback makes it durable (proposes it, waits
	 * until it is applied) and returns 0 with a read view that sees it
	 * in *new_view, or an error code with err->message.
	 *
	 * Views: from the moment it is called the engine no longer uses its
	 * current view (req->view, or the one the previous call returned), so
	 * the callback may close that one. The view a successful call returns
	 * becomes the statement's: it must stay open until qry_cursor_free
	 * (row values are read from it), then the caller closes it. After a
	 * failed call the engine uses no view.
	 *
	 * Such a statement runs inside qry_open like any write, with
	 * n_pending 0 (else LORA_EINTERNAL): commits happen during qry_open,
	 * and qry_cursor_batch is NULL afterwards. NULL: a statement with IN
	 * TRANSACTIONS that writes fails with LORA_EINVAL before committing.
	 */
	/* The largest packed batch one transaction may make (a node: what
	 * fits one log entry); larger is LORA_ELIMIT before anything is
	 * committed. 0: no limit. */
	size_t batch_bytes_max;
	int (*commit_chunk)(void *arg, const Lora__MutationBatch *b,
	                    struct sto_view **new_view, struct qry_error *err);
	/*
	 * Optional, both or neither (then commit_chunk is not called): the
	 * next chunks run while earlier ones commit, QRY_CHUNKS_IN_FLIGHT
	 * of them at most. propose_chunk makes b (borrowed for the call, as
	 * is packed: b's protobuf encoding, packed_len bytes, so that the
	 * callback need not pack it again) durable without waiting for it
	 * (proposes it) and returns 0 with its log entry in *index and a new
	 * view in *new_view, or an error as commit_chunk. A chunk proposed
	 * while another is in flight must be refused wherever the one
	 * before it is (a node proposes it with MutationBatch.after_index,
	 * which apply checks). Views as for commit_chunk: the callback may
	 * close the engine's view from the call on (a node gives its store
	 * back while it proposes, since a call into Raft must never hold
	 * it), and the new one may or may not see chunks in flight yet (the
	 * engine lays the batch of each one whose entry the view's applied
	 * index has not reached over it). wait_chunk waits until the oldest
	 * chunk in flight is applied and returns 0 with a view that sees it
	 * in *new_view, or an error (LORA_EUNKNOWN_OUTCOME: it may still
	 * commit). An error with *landed set says the chunk was applied but
	 * no view could be opened after it: the engine counts the chunk and
	 * stops with that error. A chunk that lands proves that the ones before
	 * it committed (the log keeps their order), so the engine counts a
	 * chunk whose answer was lost once a later one lands. The engine
	 * calls wait_chunk once for each successful propose_chunk, in
	 * order. A statement that fails for another
	 * reason may end without calling it: the caller then waits for the
	 * chunks still in flight.
	 */
	int (*propose_chunk)(void *arg, const Lora__MutationBatch *b,
	                     const uint8_t *packed, size_t packed_len,
	                     struct sto_view **new_view, uint64_t *index,
	                     struct qry_error *err);
	int (*wait_chunk)(void *arg, struct sto_view **new_view, int *landed,
	                  struct qry_error *err);
	void *commit_arg;
};

struct qry_cursor;

/*
 * Parses, checks, plans and opens the statement. On success *out is the
 * caller's (qry_cursor_free). On failure err says why and *out is NULL.
 */
int qry_open(const struct qry_request *req, struct qry_cursor **out,
             struct qry_error *err);
void qry_cursor_free(struct qry_cursor *c);

/* Column names, as written in the query (`a.name`, or the alias).
 * Borrowed: valid until qry_cursor_free. */
size_t qry_cursor_columns(struct qry_cursor *c, const char *const **names);

/*
 * Next row: *done = 1 at the end, else *row points at
 * qry_cursor_columns() values, borrowed until the next call. Values may be
 * nodes, relationships and paths (Lora__NodeValue ... inside Lora__Value).
 */
int qry_cursor_next(struct qry_cursor *c, const Lora__Value *const **row,
                    int *done, struct qry_error *err);

/* The statement's mutations, or NULL for a statement that wrote nothing.
 * Borrowed until qry_cursor_free. Available right after qry_open. */
const Lora__MutationBatch *qry_cursor_batch(struct qry_cursor *c);
/* The most memory the statement has held at once so far, in bytes, as
 * charged to its limit (for benchmarks and diagnostics). */
uint64_t qry_cursor_mem_peak(const struct qry_cursor *c);

/*
 * EXPLAIN / PROFILE: the plan as a Value map {operator, details, children:
 * [...]} plus, for PROFILE once all rows were read, rows and time_ns per
 * operator. Borrowed until qry_cursor_free; NULL for QRY_RUN.
 */
const Lora__Value *qry_cursor_plan(struct qry_cursor *c);
/* Charges n bytes that the caller holds for the cursor's rows (the HTTP
 * graph format's document of every entity) to the statement's memory
 * limit and the shared budget, as the engine charges its own memory;
 * given back when the cursor is freed. 0, or LORA_EMEMORY with err set
 * (nothing charged; the cursor stays usable). */
int qry_cursor_charge(struct qry_cursor *c, uint64_t n, struct qry_error *err);

/*
 * A parsed statement: one parse answers qry_stmt_is_write,
 * qry_stmt_in_transactions and qry_stmt_loads_csv, and qry_open takes its
 * tree (qry_request.stmt), so a caller that asks before opening parses
 * the text once instead of up to four times.
 */

/*
 * Parses query (NUL-terminated, borrowed: it must outlive *out) under
 * lim's nesting depth and memory limits (NULL: qry_limits_init's; the
 * shared budget is not charged until qry_open). On success *out is the
 * caller's (qry_stmt_free); on failure err says why (syntax errors with
 * line and column) and *out is NULL.
 */
int qry_parse(const char *query, const struct qry_limits *lim,
              struct qry_stmt **out, struct qry_error *err);
void qry_stmt_free(struct qry_stmt *s);
/* What qry_is_write, qry_in_transactions and qry_loads_csv answer for the
 * statement's text. */
int qry_stmt_is_write(const struct qry_stmt *s);
int qry_stmt_in_transactions(const struct qry_stmt *s);
int qry_stmt_loads_csv(const struct qry_stmt *s);

/*
 * Whether `query` would write (CREATE, MERGE, SET, DELETE, REMOVE, index
 * DDL, ...), without running it: nodes use it to route writes to the
 * leader. Syntax errors are reported through err.
 */
int qry_is_write(const char *query, int *is_write, struct qry_error *err);
/* The same under lim (NULL: qry_limits_init's): the parse is bounded by
 * its memory limit and charged to its shared budget while it runs
 * (LORA_EMEMORY past either), as the statement's own parse is. */
int qry_is_write_lim(const char *query, const struct qry_limits *lim,
                     int *is_write, struct qry_error *err);

/* Whether `query` has CALL { ... } IN TRANSACTIONS (parse only): such a
 * statement commits as it runs, so a writer runs it alone (query.h's
 * commit_chunk). */
int qry_in_transactions(const char *query, int *yes, struct qry_error *err);
/* The same under lim, as qry_is_write_lim. */
int qry_in_transactions_lim(const char *query, const struct qry_limits *lim,
                            int *yes, struct qry_error *err);
/* Whether `query` reads files with LOAD CSV (parse only): that needs the
 * writer role even when the statement writes nothing. */
int qry_loads_csv(const char *query, int *yes, struct qry_error *err);
/* The same under lim, as qry_is_write_lim. */
int qry_loads_csv_lim(const char *query, const struct qry_limits *lim, int *yes,
                      struct qry_error *err);

/* Appends the Cypher string form of v (toString semantics; temporal
 * values as ISO 8601) to out. */
int qry_value_format(const Lora__Value *v, struct lora_buf *out);

/* The UTC offset of the named zone (system zoneinfo) at `seconds` from
 * 1970, counted in UTC (local 0) or in the zone's wall-clock time (local
 * 1). LORA_EINVAL for an unknown zone. Thread-safe. */
int qry_zone_offset(const char *zone, int64_t seconds, int local,
                    int32_t *offset_seconds);

/* ---- procedures defined by a table (tests, the TCK) --------------------- */

/*
 * Registers a procedure whose behaviour is a fixed table, as the TCK's
 * "there exists a procedure" step describes. `signature` is the TCK text,
 * e.g. "test.my.proc(name :: STRING?, id :: INTEGER?) :: (city :: STRING?)"
 * (a procedure with no outputs ends in ":: VOID"). Each row is a Value map
 * holding the input and the output columns by name; a call yields the
 * outputs of the rows whose inputs equal the arguments. Both arguments are
 * copied. Registering a name again replaces it. Process-wide; not
 * thread-safe against running queries.
 */
int qry_proc_register_table(const char *signature,
                            const Lora__ValueMap *const *rows, size_t n_rows,
                            struct qry_error *err);

/* Forgets every table procedure. */
void qry_proc_clear(void);

/* For tests (the fuzz targets' differential check): while on, every clause
 * of a write statement drains before the next, as before its leading
 * clauses that read no graph were let stream (pipe.c, graph_free).
 * Process-wide. */
void qry_testing_eager_all(int on);

#endif /* LORA_QUERY_H */
