/*
 * cli.h - the pieces of the `lora` shell and the `lora-load` tool that can be
 * tested without a server: command-line options, statement splitting,
 * parameters given as JSON text, aligned tables and the cluster status
 * table. Links lora_client and jansson.
 *
 * Ownership: pointer arguments are borrowed for the call. Structures are
 * zero-initialised by the caller and own what they accumulate until their
 * _free function.
 */
#ifndef LORA_CLI_H
#define LORA_CLI_H

#include <jansson.h>
#include <stddef.h>

#include "lora_client.h"

/* Named limits. */
#define LORA_CLI_STATEMENT_BYTES_MAX (1u << 20) /* one Cypher statement */
#define LORA_CLI_PARAMS_MAX          256        /* :param entries */
#define LORA_CLI_TABLE_COLUMNS_MAX   256
#define LORA_CLI_TABLE_ROWS_MAX      100000 /* rows shown; more are counted */
#define LORA_CLI_CELL_BYTES_MAX      4096   /* longer cells are cut */

/* ---- options of the shell ---------------------------------------------- */

/* --format: how the shell prints rows */
enum lora_format {
	LORA_FORMAT_TABLE, /* aligned columns with borders (the default) */
	LORA_FORMAT_PLAIN, /* tab-separated, header first */
	LORA_FORMAT_JSON,  /* one JSON object per row (JSON lines) */
	LORA_FORMAT_CSV,   /* RFC 4180, header first, null as an empty field */
};

struct lora_shell_opts {
	const char *addresses; /* borrowed from argv; NULL: default list */
	const char *file;      /* -f FILE: run the statements of a file */
	const char *command;   /* -c TEXT: run these statements */
	int timeout_ms;        /* --timeout MS per call */
	int route_any;    /* --no-route: talk to the first reachable node */
	int consistency;  /* enum lora_consistency from --consistency */
	int quiet;        /* -q: no timing lines or banner */
	int format;       /* enum lora_format from --format */
	const char *user; /* -u NAME (NULL: LORA_USER) */
	const char
	    *password;  /* --password PW (NULL: LORA_PASSWORD, a prompt) */
	int tls;        /* --tls: TLS to every node */
	const char *ca; /* --ca FILE (NULL: LORA_CA); implies --tls */
	int help;       /* -h / --help */
};

/* Parses argv. Returns 0, or LORA_EINVAL with a message in errmsg. */
int lora_shell_parse_args(int argc, char **argv, struct lora_shell_opts *o,
                          char *errmsg);
/* Usage text (static). */
const char *lora_shell_usage(void);

/* ---- statement splitting ----------------------------------------------- */

/*
 * Accumulates input lines until a ';' outside string literals, quoted names
 * and comments ends a statement. Zero-initialise before use.
 */
struct lora_stmt {
	struct lora_buf buf;
	char quote; /* inside '...', "..." or `...` when non-zero */
	int block_comment;
};

/*
 * Feeds text (one line, without the newline). Each complete statement
 * (without the ';', trimmed, non-empty) is passed to cb; stops and returns
 * cb's non-zero value. Returns LORA_ELIMIT when a statement grows beyond
 * LORA_CLI_STATEMENT_BYTES_MAX (the pending text is dropped).
 */
int lora_stmt_feed(struct lora_stmt *s, const char *line,
                   int (*cb)(void *arg, const char *stmt), void *arg);
/* 1 when part of a statement is pending. */
int lora_stmt_pending(const struct lora_stmt *s);
/* The pending text, trimmed (borrowed), for a final statement without ';'. */
const char *lora_stmt_rest(struct lora_stmt *s);
void lora_stmt_free(struct lora_stmt *s);

/* ---- parameters -------------------------------------------------------- */

struct lora_params {
	Lora__Param *items[LORA_CLI_PARAMS_MAX]; /* owned */
	size_t n;
};

/*
 * Parses JSON text (a number, string, true/false/null, array or object;
 * a bare word is taken as a string) into a new value; free with
 * lora_value_free. Integers stay integers, 1.0 is a float.
 */
int lora_value_from_json(const char *text, Lora__Value **out, char *errmsg);
/* Sets (or replaces) parameter name from JSON text. */
int lora_params_set(struct lora_params *p, const char *name, const char *json,
                    char *errmsg);
int lora_params_unset(struct lora_params *p, const char *name);
void lora_params_free(struct lora_params *p);

/* ---- tables ------------------------------------------------------------ */

/* A grid of text cells, owned by the table. Zero-initialise before use. */
struct lora_table {
	char **cells; /* row-major, (1 + rows) * cols, row 0 is the header */
	size_t cols, rows, cap_rows;
	size_t omitted; /* rows beyond LORA_CLI_TABLE_ROWS_MAX */
};

int lora_table_header(struct lora_table *t, const char *const *names,
                      size_t cols);
/* Adds a row of cols texts (copied). */
int lora_table_add(struct lora_table *t, const char *const *cells);
/* Adds a row of values, formatted with lora_value_format. */
int lora_table_add_values(struct lora_table *t, Lora__Value *const *values);
/*
 * Renders the table with aligned columns (widths in UTF-8 code points):
 *   +------+-----+
 *   | name | age |
 *   +------+-----+
 *   | "A"  | 3   |
 *   +------+-----+
 * or, with plain set, tab-separated lines (header first).
 */
int lora_table_render(const struct lora_table *t, int plain,
                      struct lora_buf *out);
void lora_table_free(struct lora_table *t);

/* Display width of UTF-8 text, counted in code points. */
size_t lora_text_width(const char *s);

/*
 * Builds the `:status` table from /cluster/status JSON: one row per node
 * with id, address, role, term, commit, applied, last contact, and a
 * leader line. Returns LORA_EINVAL for JSON that does not have that shape.
 */
int lora_status_table(const char *json, struct lora_table *t,
                      struct lora_buf *summary, char *errmsg);

/* ---- machine-readable rows (output.c) ---------------------------------- */

/* A value in the HTTP API's JSON form (nodes, relationships and paths as
 * objects with "kind", temporals as their ISO 8601 text, vectors as
 * {"kind":"vector",...}); NULL when out of memory or nested too deep. */
json_t *lora_value_json(const Lora__Value *v);
/* Appends {"col": value, ...} and a newline (columns in order). */
int lora_row_json(struct lora_buf *out, const char *const *names,
                  Lora__Value *const *row, size_t cols);
/* CSV (RFC 4180, CRLF line ends): the header line, then one line per
 * row: strings as they are, other values in their Cypher text, null as an
 * empty field and "" for an empty string. */
int lora_csv_header(struct lora_buf *out, const char *const *names,
                    size_t cols);
int lora_csv_row(struct lora_buf *out, Lora__Value *const *row, size_t cols);

/* ---- cluster admin (HTTP, through the leader) --------------------------- */

/* The leader's HTTP "host:port" from /cluster/status JSON into out.
 * LORA_EUNAVAILABLE when there is no leader (or it is not listed). */
int lora_status_leader_http(const char *status_json, char *out, size_t size,
                            char *errmsg);

/* One blocking POST of body to path on hostport ("host:port"), with
 * Connection: close: HTTPS when ca is a CA file (the server verified
 * against it and the host name), plain HTTP when ca is NULL; authz: an
 * Authorization value or NULL. *status and *body_out (lora_free) on 0. */
int lora_http_post(const char *hostport, const char *ca, const char *path,
                   const char *authz, const char *body, int timeout_ms,
                   int *status, char **body_out, char *errmsg);
/*
 * POSTs body (JSON) to path (e.g. "/cluster/transfer") on the leader's HTTP
 * address, found through lora_client_status. On 0, *status is the HTTP
 * status and *answer the response body (free with lora_free).
 */
int lora_admin_post(struct lora_client *c, const char *path, const char *body,
                    int timeout_ms, int *status, char **answer, char *errmsg);

#endif /* LORA_CLI_H */
