/*
 * lora_client.h - the C client library of LoraDB: talks the native protocol
 * (proto/client.proto over nng req/rep on tcp) to a cluster of lorad nodes.
 *
 * What it does for the caller:
 *   - keeps one connection per node address (reconnecting by itself);
 *   - sends each query to the leader it knows, learning the leader from the
 *     LORA_NOT_LEADER hints that nodes answer (leader routing), or pins every
 *     query to the first reachable node (LORA_ROUTE_ANY);
 *   - gives each logical query a request id and retries it through a
 *     failover with the SAME id, so a write is applied at most once:
 *       LORA_UNAVAILABLE / LORA_NOT_LEADER / no connection before sending:
 *         certainly not executed, retried on another node;
 *       LORA_UNKNOWN_OUTCOME / connection lost or timeout after sending:
 *         may have committed, retried with the same id (the leader remembers
 *         recent ids and answers the retry without applying it twice);
 *     until the retry budget (retry_budget_ms) is spent. A statement
 *     holding the word TRANSACTIONS (CALL { ... } IN TRANSACTIONS: its
 *     chunks carry no request id) is never sent again once it may have
 *     run, and waits as long as the node may run it
 *     (LORA_CLIENT_LOAD_TIME_MS_DEFAULT);
 *   - puts a timeout on every call (call_timeout_ms per round trip);
 *   - streams results in batches through cursors (fetch / close);
 *   - remembers the newest bookmark it has seen, for read-your-writes reads
 *     with LORA_CONSISTENCY_BOOKMARK on any node;
 *   - authenticates every connection (the handshake: an AuthRequest with
 *     the user and password of the options or of LORA_USER / LORA_PASSWORD)
 *     before its first request, again after nng reconnected it.
 *
 * Threads: a struct lora_client and its results are used by one thread at a
 * time. Open one client per thread for concurrent load.
 *
 * Ownership: every pointer argument is borrowed for the duration of the call
 * unless said otherwise. Every object returned through an out-parameter is
 * owned by the caller and freed with the function named beside it.
 * Errors: functions return 0 or an enum lora_err code (proto/lora.h) and
 * fill a caller-provided struct lora_client_error when it is not NULL.
 */
#ifndef LORA_CLIENT_H
#define LORA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "lora.h"
#include "lora_pb.h"

/* Named limits. */
#define LORA_CLIENT_NODES_MAX          16  /* addresses in one client */
#define LORA_CLIENT_ADDR_BYTES         128 /* one "host:port" */
#define LORA_CLIENT_REQUEST_ID_BYTES   64  /* generated request ids */
#define LORA_CLIENT_BOOKMARK_BYTES     32  /* a bookmark (decimal index) */
#define LORA_CLIENT_MSG_BYTES_MAX      (64u << 20) /* one response message */
#define LORA_CLIENT_CODE_BYTES         40          /* a wire error code */
#define LORA_CLIENT_USER_BYTES_MAX     128         /* a user name */
#define LORA_CLIENT_PASSWORD_BYTES_MAX 1024        /* a password */
#define LORA_CLIENT_CURSOR_BYTES       16          /* a server's cursor name */
#define LORA_CLIENT_TX_ID_BYTES        33 /* a transaction id and its NUL */
/* A transaction's requests wait at least this long for their answer
 * (call_timeout_ms when longer): a BEGIN waits on the server up to 10 s
 * for the writer, a COMMIT up to 10 s for its apply. */
#define LORA_CLIENT_TX_CALL_MS_MIN 15000
/* A statement holding the word TRANSACTIONS (CALL { ... } IN
 * TRANSACTIONS) is sent once, with its time_ms or else the nodes' default
 * statement_time_ms as its limit, and waited for that long plus the
 * margin (a follower's wait for the leader, 12 s, and 3 s more) when
 * that is longer than call_timeout_ms. */
#define LORA_CLIENT_LOAD_TIME_MS_DEFAULT 60000
#define LORA_CLIENT_LOAD_MARGIN_MS       15000

#define LORA_CLIENT_CA_PATH_BYTES_MAX 1024 /* the CA file's path */
/* Defaults for struct lora_client_opts fields left at 0. */
#define LORA_CLIENT_CALL_TIMEOUT_MS_DEFAULT 5000
#define LORA_CLIENT_RETRY_BUDGET_MS_DEFAULT 15000
#define LORA_CLIENT_BACKOFF_MS_MIN_DEFAULT  10
#define LORA_CLIENT_BACKOFF_MS_MAX_DEFAULT  500
/* The local cluster of deploy/local (native protocol port 4748). */
#define LORA_CLIENT_ADDRESSES_DEFAULT                                          \
	"127.0.0.1:4748,127.0.0.2:4748,127.0.0.3:4748"

enum lora_route {
	LORA_ROUTE_LEADER = 0, /* send to the leader; follow NOT_LEADER hints */
	LORA_ROUTE_ANY = 1,    /* first reachable node; it forwards writes */
};

enum lora_consistency {
	LORA_CONSISTENCY_LOCAL = 0,
	LORA_CONSISTENCY_BOOKMARK = 1,
	LORA_CONSISTENCY_LINEARIZABLE = 2,
};

struct lora_client_opts {
	/* Comma-separated "host:port" list (tcp:// prefix optional). NULL:
	 * LORA_CLIENT_ADDRESSES_DEFAULT. Borrowed during open only. */
	const char *addresses;
	enum lora_route route;
	int call_timeout_ms; /* one request/response round trip */
	int retry_budget_ms; /* all attempts of one logical call; < 0: none */
	int backoff_ms_min;  /* first wait between attempts */
	int backoff_ms_max;  /* cap of the exponential backoff */
	uint64_t seed;       /* for request ids and jitter; 0: random */
	/* Credentials for the handshake on every connection (auth on).
	 * NULL: the environment LORA_USER / LORA_PASSWORD; no user at all:
	 * no handshake (a node with auth = off). Copied at open. */
	const char *user;
	const char *password;
	/* TLS (nng tls+tcp) to every node: on when tls is set or a CA is
	 * given. ca: PEM file of the CA the nodes' certificates chain to;
	 * NULL: the environment LORA_CA. A node's certificate must also name
	 * the host of its address. Borrowed during open only. */
	int tls;
	const char *ca;
};

/* An error as the server (or the client itself) reported it. */
struct lora_client_error {
	int err;                           /* enum lora_err */
	char code[LORA_CLIENT_CODE_BYTES]; /* wire code, e.g. "LORA_PARSE" */
	char message[LORA_ERRMSG_BYTES];
	uint32_t line, column; /* query errors; 0 when unknown */
	int attempts;          /* requests sent for this call */
};

struct lora_client;
struct lora_result;

/* One query. Only `query` is required. */
struct lora_query {
	const char *query;
	/* Parameters: borrowed array of borrowed pointers. */
	Lora__Param *const *params;
	size_t n_params;
	enum lora_consistency consistency;
	/* For LORA_CONSISTENCY_BOOKMARK; NULL: the newest bookmark this client
	 * has seen. */
	const char *bookmark;
	/* NULL: the client generates one per call (retries reuse it). */
	const char *request_id;
	uint32_t batch_rows; /* rows per batch; 0: server default */
	/* 0 run, 1 explain (the plan only), 2 profile (run, then the plan
	 * with rows and time per operator): lora_result_plan */
	int mode;
	/* Lowers the statement's time limit on the node (RunRequest.time_ms;
	 * 0: the node's statement_time_ms, except for a statement holding
	 * the word TRANSACTIONS: LORA_CLIENT_LOAD_TIME_MS_DEFAULT). */
	uint64_t time_ms;
};

/*
 * Parses a comma-separated address list into out[0..*n) (each
 * "tcp://host:port"). Returns LORA_EINVAL on an empty list, an entry without
 * a port, a port outside 1..65535, or more than max entries.
 */
int lora_client_parse_addresses(const char *list,
                                char out[][LORA_CLIENT_ADDR_BYTES], size_t max,
                                size_t *n, char *errmsg);

/*
 * Opens a client; no request is sent yet (connections are dialed in the
 * background). *out is freed with lora_client_close. opts may be NULL.
 */
int lora_client_open(struct lora_client **out,
                     const struct lora_client_opts *opts,
                     struct lora_client_error *e);
void lora_client_close(struct lora_client *c);
/* Once, at the end of a program, after every client is closed: waits for
 * the transport's background work to finish and frees it (so that leak
 * checkers see a clean exit). No client call may follow. */
void lora_client_library_fini(void);

/*
 * Runs a query. On success *out holds the columns and the first batch of
 * rows (free with lora_result_free, which also closes an open cursor).
 */
int lora_client_run(struct lora_client *c, const struct lora_query *q,
                    struct lora_result **out, struct lora_client_error *e);

/*
 * Asks a node for the cluster status: *json_out is the /cluster/status JSON
 * (free with lora_free). Tries the nodes in turn.
 */
int lora_client_status(struct lora_client *c, char **json_out,
                       struct lora_client_error *e);

/* The newest bookmark seen ("" before any); valid until the next call. */
const char *lora_client_bookmark(const struct lora_client *c);
/* "host:port" of the node believed to be leader, or NULL when unknown. */
const char *lora_client_leader(const struct lora_client *c);
/* Number of node addresses and the i-th one ("tcp://host:port"). */
size_t lora_client_node_count(const struct lora_client *c);
const char *lora_client_node_address(const struct lora_client *c, size_t i);

/* ---- results ----------------------------------------------------------- */

size_t lora_result_columns(const struct lora_result *r);
/* Column name i; borrowed from r. */
const char *lora_result_column(const struct lora_result *r, size_t i);
/*
 * Next row: *row points at values[0..lora_result_columns) borrowed from r,
 * valid until the next call on r. Fetches the next batch when needed.
 * Returns 0 with *row = NULL at the end, or an error.
 */
int lora_result_next(struct lora_result *r, Lora__Value *const **row,
                     struct lora_client_error *e);
/* The bookmark of the answer (the applied or written index). Borrowed. */
const char *lora_result_bookmark(const struct lora_result *r);
/* Address of the node that answered. Borrowed. */
const char *lora_result_node(const struct lora_result *r);
/* Requests sent for the run (1 without retries). */
int lora_result_attempts(const struct lora_result *r);
/* lora_now_ms() when the attempt that succeeded was sent. */
uint64_t lora_result_sent_ms(const struct lora_result *r);
/* The CA file the client's TLS trusts (borrowed from c), NULL without
 * TLS; the shell's admin commands use it for https. */
const char *lora_client_ca(const struct lora_client *c);
/* The credentials the client authenticates with (user "" when none);
 * borrowed until lora_client_close (the shell's admin calls use them). */
void lora_client_credentials(const struct lora_client *c, const char **user,
                             const char **password);

/* EXPLAIN / PROFILE (lora_query.mode, or the statement's prefix): the
 * plan, a map {operator, details, children[, rows, time_ns]}, once
 * lora_result_next has returned the end; NULL before, or without a plan.
 * Borrowed from r. */
const Lora__Value *lora_result_plan(const struct lora_result *r);

/* Closes an open cursor and frees r. NULL is a no-op. */
void lora_result_free(struct lora_result *r);

/* ---- explicit transactions (docs/transactions.md) ----------------------- */

struct lora_tx;
/*
 * Begins a transaction. A write one runs on the leader (found and retried
 * as a write is, while no leader answers or the leader's writer is held
 * by another transaction past the server's wait: LORA_UNAVAILABLE) and
 * holds the cluster's writer until it ends; a read one (read_only) reads
 * one view of the node it began on. timeout_ms: the idle limit (0: the
 * server's, 10 s; at most 60 s). *out ends with lora_tx_commit or
 * lora_tx_rollback. Every later call of it goes to the same node, once.
 */
int lora_tx_begin(struct lora_client *c, int read_only, uint32_t timeout_ms,
                  struct lora_tx **out, struct lora_client_error *e);
/*
 * Runs q's query and parameters in t (its other fields are ignored):
 * *out holds every row (lora_result_free). After an error the transaction
 * has rolled back on the server: only lora_tx_rollback (to free t) is
 * left.
 */
int lora_tx_run(struct lora_tx *t, const struct lora_query *q,
                struct lora_result **out, struct lora_client_error *e);
/*
 * Commits and frees t. 0: committed, the client's bookmark is the
 * commit's. LORA_UNAVAILABLE or LORA_TIMEOUT: rolled back (nothing was
 * written): run the transaction again. LORA_UNKNOWN_OUTCOME: the
 * connection failed after the commit was sent, or the server proposed it
 * and no quorum answered in time: it may have committed (never rolled
 * back for sure): look before running it again.
 */
int lora_tx_commit(struct lora_tx *t, struct lora_client_error *e);
/* Rolls back (when still open) and frees t. NULL is a no-op. */
void lora_tx_rollback(struct lora_tx *t);
/* The transaction's id (32 hex digits); borrowed from t. */
const char *lora_tx_id(const struct lora_tx *t);

/* ---- the change stream (docs/changes.md) -------------------------------- */

struct lora_changes_opts {
	/* A bookmark: the events committed after it. NULL or "": from now. */
	const char *from;
	uint64_t until; /* return after this log index; 0: never */
	/* Comma-separated labels / relationship types to keep (NULL: all). */
	const char *labels;
	const char *types;
};
/*
 * Called once per event, in log order: the event as GET /changes sends it
 * (a JSON object, borrowed for the call) and its log index. Non-zero
 * stops lora_client_changes (which then returns 0).
 */
typedef int (*lora_change_fn)(void *arg, uint64_t index, const char *json);
/*
 * Follows the change stream from o->from on any node (the first that
 * answers: every node serves it), polling; after a lost connection or a
 * node that fails it goes on from another node after the last event it
 * handed to fn, so each event is given once and in order (ids are log
 * indexes). Returns 0 after until or when fn stopped it; else the error:
 * LORA_NOT_FOUND when the log no longer holds o->from (compacted: start
 * from a backup), LORA_UNAVAILABLE when no node answered within the retry
 * budget.
 */
int lora_client_changes(struct lora_client *c,
                        const struct lora_changes_opts *o, lora_change_fn fn,
                        void *arg, struct lora_client_error *e);

/* ---- retry policy (exposed for tests and tools) ------------------------ */

enum lora_retry {
	LORA_RETRY_NO = 0,      /* final answer: report it */
	LORA_RETRY_SAFE = 1,    /* certainly not executed: retry anywhere */
	LORA_RETRY_SAME_ID = 2, /* may have executed: retry with the same id */
};

/*
 * What to do after an attempt failed with err. `sent` says whether the
 * request left this client (a connection lost or a timeout after sending
 * means the outcome is unknown).
 */
enum lora_retry lora_retry_classify(int err, int sent);

/*
 * Wait before attempt number `attempt` (1 = first retry): exponential from
 * min_ms doubling up to max_ms, with jitter in [half, full] drawn from
 * *seed (advanced). Deterministic for a given seed.
 */
int lora_retry_backoff_ms(int attempt, int min_ms, int max_ms, uint64_t *seed);

/* enum lora_err for a wire code ("LORA_PARSE" -> LORA_EPARSE);
 * LORA_EINTERNAL for an unknown code. */
int lora_err_from_code(const char *code);

/* ---- values ------------------------------------------------------------ */

/*
 * Constructors for parameter values: returned Lora__Value trees are owned by
 * the caller and freed with lora_value_free (NULL on allocation failure).
 * lora_value_list / lora_value_map take ownership of the item arrays' values
 * on success only.
 */
Lora__Value *lora_value_null(void);
Lora__Value *lora_value_bool(int b);
Lora__Value *lora_value_int(int64_t i);
Lora__Value *lora_value_float(double d);
Lora__Value *lora_value_string(const char *s);
Lora__Value *lora_value_list(Lora__Value **items, size_t n);
Lora__Value *lora_value_map(const char *const *keys, Lora__Value **values,
                            size_t n);
void lora_value_free(Lora__Value *v);

/* A parameter (name copied, value taken on success); free with
 * lora_param_free. NULL on allocation failure (v is then still the
 * caller's). */
Lora__Param *lora_param_new(const char *name, Lora__Value *v);
void lora_param_free(Lora__Param *p);

/* Depth limit when printing nested values. */
#define LORA_VALUE_DEPTH_MAX 64

/*
 * Appends a Cypher-like text for v to b: null, true, 42, 1.5, "text",
 * [1, 2], {k: 1}, (:Label {k: 1}), [:TYPE {k: 1}], dates and times as ISO
 * strings, durations as ISO 8601 periods. Returns 0 or LORA_ENOMEM.
 */
int lora_value_format(struct lora_buf *b, const Lora__Value *v);

#endif /* LORA_CLIENT_H */
