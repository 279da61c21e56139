/* tck_exec.c - runs one TCK scenario: Given / When steps against the real
 * engine and store, Then steps judged against the recorded outcome. */
#include "tck_exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "query.h"
#include "storage.h"
#include "tck_state.h"
#include "tck_values.h"

/* Path bytes of a graph file. */
#define TCK_PATH_BYTES_MAX 4096
/* Parent folders searched for graphs/<name>/<name>.cypher. */
#define TCK_GRAPH_SEARCH_DEPTH_MAX 8

/* What one statement did. */
struct outcome {
	int ran;
	struct qry_error err; /* err.code 0: success */
	char **columns;
	size_t n_columns;
	Lora__Value ***rows; /* rows[r][c], copies */
	size_t n_rows;
};

struct exec {
	struct sto_store *store;
	const struct tck_env *env;
	Lora__ValueMap *params;  /* owned, NULL until a parameters step */
	struct outcome last;     /* of the last When step */
	const char *query;       /* text of the last When step */
	struct tck_state before; /* graph before the last When query */
	int have_before;
	struct tck_result *res;
};

static void outcome_free(struct outcome *o)
{
	for (size_t r = 0; r < o->n_rows; r++) {
		for (size_t c = 0; c < o->n_columns; c++)
			if (o->rows[r][c])
				lora__value__free_unpacked(o->rows[r][c],
				                           &lora_pb_allocator);
		lora_free(o->rows[r]);
	}
	for (size_t c = 0; c < o->n_columns; c++)
		lora_free(o->columns[c]);
	lora_free(o->rows);
	lora_free(o->columns);
	memset(o, 0, sizeof(*o));
}

/* Marks the scenario failed (first reason wins) and returns LORA_EINVAL so
 * that the step loop stops. */
static int failf(struct exec *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int failf(struct exec *x, const char *fmt, ...)
{
	va_list ap;

	if (x->res->outcome == TCK_PASS) {
		x->res->outcome = TCK_FAIL;
		va_start(ap, fmt);
		lora_buf_vprintf(&x->res->reason, fmt, ap);
		va_end(ap);
	}
	return LORA_EINVAL;
}

static void detailf(struct exec *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void detailf(struct exec *x, const char *fmt, ...)
{
	va_list ap;

	if (x->res->detail.len >= TCK_DETAIL_BYTES_MAX)
		return;
	va_start(ap, fmt);
	lora_buf_vprintf(&x->res->detail, fmt, ap);
	va_end(ap);
}

/* ---- running statements ------------------------------------------------ */

static int copy_columns(struct qry_cursor *cur, struct outcome *o)
{
	const char *const *names = NULL;
	size_t n = qry_cursor_columns(cur, &names);

	o->columns = lora_calloc(n + 1, sizeof(char *));
	if (!o->columns)
		return LORA_ENOMEM;
	for (size_t c = 0; c < n; c++) {
		o->columns[c] = lora_strdup(names[c] ? names[c] : "");
		if (!o->columns[c])
			return LORA_ENOMEM;
		o->n_columns++;
	}
	return 0;
}

static int copy_row(struct outcome *o, const Lora__Value *const *row)
{
	Lora__Value ***rows =
	    lora_realloc(o->rows, (o->n_rows + 1) * sizeof(*rows));
	Lora__Value **copy;

	if (!rows)
		return LORA_ENOMEM;
	o->rows = rows;
	copy = lora_calloc(o->n_columns + 1, sizeof(*copy));
	if (!copy)
		return LORA_ENOMEM;
	o->rows[o->n_rows++] = copy;
	for (size_t c = 0; c < o->n_columns; c++)
		if (row[c] && !(copy[c] = tck_pb_copy(row[c])))
			return LORA_ENOMEM;
	return 0;
}

/* Pulls every row; on success applies the statement's batch. */
static void drain_and_apply(struct exec *x, struct qry_cursor *cur,
                            struct outcome *o)
{
	const Lora__MutationBatch *batch;
	char errmsg[LORA_ERRMSG_BYTES] = "";
	int rc = copy_columns(cur, o), done = 0;

	while (rc == 0 && !done) {
		const Lora__Value *const *row = NULL;

		rc = qry_cursor_next(cur, &row, &done, &o->err);
		if (rc == 0 && !done && o->n_rows >= TCK_ROWS_MAX)
			rc = lora_errf(LORA_ELIMIT, o->err.message,
			               "runner: more than %d rows",
			               TCK_ROWS_MAX);
		else if (rc == 0 && !done)
			rc = copy_row(o, row);
	}
	if (rc) {
		o->err.code = o->err.code ? o->err.code : rc;
		return;
	}
	batch = qry_cursor_batch(cur);
	if (batch && batch->n_mutations > 0) {
		rc = sto_apply(x->store, sto_applied_index(x->store) + 1, batch,
		               errmsg);
		if (rc) {
			o->err.code = rc;
			snprintf(o->err.message, sizeof(o->err.message),
			         "storage rejected the batch: %.400s", errmsg);
		}
	}
}

static void run_statement(struct exec *x, const char *query, struct outcome *o)
{
	struct sto_view *view = NULL;
	struct qry_cursor *cur = NULL;
	struct qry_request req;
	int rc;

	memset(o, 0, sizeof(*o));
	o->ran = 1;
	rc = sto_view_open(x->store, &view);
	if (rc) {
		o->err.code = rc;
		snprintf(o->err.message, sizeof(o->err.message),
		         "runner: sto_view_open failed");
		return;
	}
	memset(&req, 0, sizeof(req));
	req.query = query;
	req.params = x->params;
	req.view = view;
	req.mode = QRY_RUN;
	qry_limits_init(&req.limits);
	req.limits.time_ms_max = TCK_QUERY_TIME_MS_MAX;
	rc = qry_open(&req, &cur, &o->err);
	if (rc) {
		o->err.code = o->err.code ? o->err.code : rc;
	} else {
		drain_and_apply(x, cur, o);
		qry_cursor_free(cur);
	}
	sto_view_close(view);
}

static void detail_error(struct exec *x, const struct outcome *o)
{
	detailf(x, "  error: %s: %s\n", lora_err_code(o->err.code),
	        o->err.message);
	if (o->err.excerpt[0])
		detailf(x, "%s\n", o->err.excerpt);
}

/* A setup statement (having executed, graph loading): must succeed. */
static int run_setup(struct exec *x, const char *query, const char *what)
{
	struct outcome o;
	int rc = 0;

	run_statement(x, query, &o);
	if (o.err.code) {
		detailf(x, "  %s query:\n%s\n", what, query);
		detail_error(x, &o);
		rc = failf(x, "%s failed: %s: %s", what,
		           lora_err_code(o.err.code), o.err.message);
	}
	outcome_free(&o);
	return rc;
}

/* ---- Given steps --------------------------------------------------------- */

static int find_graph(struct exec *x, const char *name, char *path)
{
	char dir[TCK_PATH_BYTES_MAX];
	char *slash;

	if (x->env->graphs_dir) {
		if (snprintf(path, TCK_PATH_BYTES_MAX, "%s/%s/%s.cypher",
		             x->env->graphs_dir, name,
		             name) >= TCK_PATH_BYTES_MAX)
			return LORA_ENOTFOUND;
		return access(path, R_OK) == 0 ? 0 : LORA_ENOTFOUND;
	}
	snprintf(dir, sizeof(dir), "%s", x->env->feature_path);
	for (int up = 0; up < TCK_GRAPH_SEARCH_DEPTH_MAX; up++) {
		slash = strrchr(dir, '/');
		if (!slash)
			snprintf(dir, sizeof(dir), ".");
		else
			*slash = '\0';
		if (snprintf(path, TCK_PATH_BYTES_MAX, "%s/graphs/%s/%s.cypher",
		             dir[0] ? dir : "/", name,
		             name) < TCK_PATH_BYTES_MAX &&
		    access(path, R_OK) == 0)
			return 0;
		if (!slash)
			break;
	}
	return LORA_ENOTFOUND;
}

static int load_graph(struct exec *x, const char *name)
{
	char path[TCK_PATH_BYTES_MAX];
	struct lora_buf text = {0};
	char chunk[4096];
	FILE *f;
	size_t n;
	int rc;

	if (find_graph(x, name, path))
		return failf(x, "graph %s not found (use --graphs DIR)", name);
	f = fopen(path, "r");
	if (!f)
		return failf(x, "cannot open %s", path);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		lora_buf_append(&text, chunk, n);
	fclose(f);
	while (text.len && (text.data[text.len - 1] == ';' ||
	                    text.data[text.len - 1] == '\n' ||
	                    text.data[text.len - 1] == ' '))
		text.data[--text.len] = '\0';
	rc = text.data ? run_setup(x, text.data, "loading the graph")
	               : failf(x, "graph file %s is empty", path);
	lora_buf_free(&text);
	return rc;
}

static int map_add(Lora__ValueMap *m, const char *key, Lora__Value *value)
{
	Lora__MapEntry **entries =
	    lora_realloc(m->entries, (m->n_entries + 1) * sizeof(*entries));
	Lora__MapEntry *e = lora_malloc(sizeof(*e));

	if (entries)
		m->entries = entries;
	if (!entries || !e) {
		lora_free(e);
		lora__value__free_unpacked(value, &lora_pb_allocator);
		return LORA_ENOMEM;
	}
	lora__map_entry__init(e);
	e->key = lora_strdup(key);
	e->value = value;
	m->entries[m->n_entries++] = e;
	return e->key ? 0 : LORA_ENOMEM;
}

/* Parses cell text into a parameter / procedure value. */
static int cell_value(struct exec *x, const char *text, Lora__Value **out)
{
	char errmsg[LORA_ERRMSG_BYTES] = "";
	struct tck_value *v = NULL;
	int rc = tck_value_parse(text, &v, errmsg);

	if (rc == 0)
		rc = tck_value_to_pb(v, out, errmsg);
	tck_value_free(v);
	if (rc)
		return failf(x, "runner: bad value %s: %s", text, errmsg);
	return 0;
}

static Lora__ValueMap *new_map(void)
{
	Lora__ValueMap *m = lora_malloc(sizeof(*m));

	if (m)
		lora__value_map__init(m);
	return m;
}

static int set_parameters(struct exec *x, const struct tck_step *st)
{
	if (!x->params && !(x->params = new_map()))
		return LORA_ENOMEM;
	for (size_t r = 0; r < st->table.n_rows; r++) {
		Lora__Value *v = NULL;

		if (st->table.n_cols[r] != 2)
			return failf(x, "runner: parameter rows need 2 cells");
		if (cell_value(x, st->table.cells[r][1], &v) ||
		    map_add(x->params, st->table.cells[r][0], v))
			return LORA_EINVAL;
	}
	return 0;
}

/* "there exists a procedure <signature>:" + table of inputs / outputs. */
static int define_procedure(struct exec *x, const struct tck_step *st)
{
	const struct tck_table *t = &st->table;
	char *sig = lora_strdup(st->text + strlen("there exists a procedure "));
	size_t n_rows = t->n_rows > 1 ? t->n_rows - 1 : 0;
	Lora__ValueMap **rows = lora_calloc(n_rows + 1, sizeof(*rows));
	struct qry_error err;
	int rc = sig && rows ? 0 : LORA_ENOMEM;

	memset(&err, 0, sizeof(err));
	if (rc == 0 && strlen(sig) && sig[strlen(sig) - 1] == ':')
		sig[strlen(sig) - 1] = '\0';
	for (size_t r = 0; rc == 0 && r < n_rows; r++) {
		if (!(rows[r] = new_map()))
			rc = LORA_ENOMEM;
		for (size_t c = 0; rc == 0 && c < t->n_cols[r + 1]; c++) {
			Lora__Value *v = NULL;

			rc = cell_value(x, t->cells[r + 1][c], &v);
			if (rc == 0 && c >= t->n_cols[0])
				rc = failf(x, "runner: procedure row wider "
				              "than its header");
			if (rc == 0)
				rc = map_add(rows[r], t->cells[0][c], v);
			else if (v)
				lora__value__free_unpacked(v,
				                           &lora_pb_allocator);
		}
	}
	if (rc == 0 &&
	    qry_proc_register_table(sig, (const Lora__ValueMap *const *)rows,
	                            n_rows, &err) != 0)
		rc = failf(x, "registering procedure failed: %s: %s",
		           lora_err_code(err.code), err.message);
	for (size_t r = 0; r < n_rows; r++)
		if (rows[r])
			lora__value_map__free_unpacked(rows[r],
			                               &lora_pb_allocator);
	lora_free(rows);
	lora_free(sig);
	return rc;
}

/* ---- When steps ---------------------------------------------------------- */

static int when_query(struct exec *x, const struct tck_step *st, int control)
{
	if (!st->doc)
		return failf(x, "runner: query step without a doc string");
	outcome_free(&x->last);
	if (!control) {
		if (x->have_before)
			tck_state_free(&x->before);
		x->have_before = 0;
		if (tck_state_read(x->store, &x->before) != 0)
			return failf(x, "runner: cannot read graph state");
		x->have_before = 1;
	}
	x->query = st->doc;
	run_statement(x, st->doc, &x->last);
	return 0;
}

/* ---- Then steps ---------------------------------------------------------- */

/* Expected rows: values parsed from the table (row 0 is the header). */
struct expected {
	const struct tck_table *t;
	struct tck_value ***cells; /* [row - 1][col] */
	size_t n_rows, n_cols;
	size_t *col_of; /* expected column -> actual column */
};

static void expected_free(struct expected *e)
{
	for (size_t r = 0; r < e->n_rows; r++) {
		for (size_t c = 0; e->cells[r] && c < e->n_cols; c++)
			tck_value_free(e->cells[r][c]);
		lora_free(e->cells[r]);
	}
	lora_free(e->cells);
	lora_free(e->col_of);
}

static int expected_parse(struct exec *x, const struct tck_table *t,
                          struct expected *e)
{
	char errmsg[LORA_ERRMSG_BYTES] = "";

	memset(e, 0, sizeof(*e));
	e->t = t;
	e->n_cols = t->n_rows ? t->n_cols[0] : 0;
	e->n_rows = t->n_rows ? t->n_rows - 1 : 0;
	e->cells = lora_calloc(e->n_rows + 1, sizeof(*e->cells));
	e->col_of = lora_calloc(e->n_cols + 1, sizeof(size_t));
	if (!e->cells || !e->col_of)
		return LORA_ENOMEM;
	for (size_t r = 0; r < e->n_rows; r++) {
		if (t->n_cols[r + 1] != e->n_cols)
			return failf(x, "runner: table row %zu has %zu cells",
			             r + 1, t->n_cols[r + 1]);
		e->cells[r] = lora_calloc(e->n_cols + 1, sizeof(**e->cells));
		if (!e->cells[r])
			return LORA_ENOMEM;
		for (size_t c = 0; c < e->n_cols; c++)
			if (tck_value_parse(t->cells[r + 1][c], &e->cells[r][c],
			                    errmsg))
				return failf(x,
				             "runner: bad expected value %s: "
				             "%s",
				             t->cells[r + 1][c], errmsg);
	}
	return 0;
}

static void detail_rows(struct exec *x, const struct expected *e)
{
	const struct outcome *o = &x->last;

	detailf(x, "  query:\n%s\n  expected:\n", x->query ? x->query : "");
	for (size_t r = 0; r < e->t->n_rows; r++) {
		detailf(x, "   ");
		for (size_t c = 0; c < e->t->n_cols[r]; c++)
			detailf(x, " | %s", e->t->cells[r][c]);
		detailf(x, " |\n");
	}
	detailf(x, "  actual:\n   ");
	for (size_t c = 0; c < o->n_columns; c++)
		detailf(x, " | %s", o->columns[c]);
	detailf(x, " |\n");
	for (size_t r = 0; r < o->n_rows; r++) {
		struct lora_buf b = {0};

		for (size_t c = 0; c < o->n_columns; c++) {
			lora_buf_puts(&b, " | ");
			tck_pb_format(o->rows[r][c], qry_value_format, &b);
		}
		detailf(x, "   %s |\n", b.data ? b.data : "");
		lora_buf_free(&b);
	}
}

/* Header names must be the actual column names (in any order). */
static int columns_match(struct exec *x, struct expected *e)
{
	const struct outcome *o = &x->last;

	if (o->n_columns != e->n_cols)
		return 0;
	for (size_t c = 0; c < e->n_cols; c++) {
		size_t a = 0;

		while (a < o->n_columns &&
		       strcmp(o->columns[a], e->t->cells[0][c]) != 0)
			a++;
		if (a == o->n_columns)
			return 0;
		e->col_of[c] = a;
	}
	return 1;
}

static int row_matches(const struct expected *e, size_t er,
                       Lora__Value *const *act, const struct tck_cmp *cmp)
{
	for (size_t c = 0; c < e->n_cols; c++)
		if (!tck_value_matches(e->cells[er][c], act[e->col_of[c]], cmp))
			return 0;
	return 1;
}

/* Index of the first expected row without a match, or n_rows; *act is
 * the actual row to show beside it (same index in order, else the first
 * actual row left unmatched). */
static size_t rows_match(struct exec *x, const struct expected *e, int ordered,
                         const struct tck_cmp *cmp, size_t *act)
{
	const struct outcome *o = &x->last;
	char *used = lora_calloc(o->n_rows + 1, 1);
	size_t r = 0;

	for (; used && r < e->n_rows; r++) {
		size_t a = ordered ? r : 0;

		while (!ordered && a < o->n_rows &&
		       (used[a] || !row_matches(e, r, o->rows[a], cmp)))
			a++;
		if (a >= o->n_rows || !row_matches(e, r, o->rows[a], cmp))
			break;
		used[a] = 1;
	}
	*act = ordered ? r : 0;
	while (!ordered && used && *act < o->n_rows && used[*act])
		(*act)++;
	lora_free(used);
	return r;
}

/* "| a | b |" for expected row r (1-based table row) and actual row a. */
static void rows_text(struct exec *x, const struct expected *e, size_t r,
                      size_t a, struct lora_buf *exp, struct lora_buf *act)
{
	const struct outcome *o = &x->last;

	for (size_t c = 0; c < e->n_cols; c++) {
		lora_buf_printf(exp, "| %s ", e->t->cells[r][c]);
		lora_buf_puts(act, "| ");
		if (a < o->n_rows)
			tck_pb_format(o->rows[a][e->col_of[c]],
			              qry_value_format, act);
		lora_buf_puts(act, " ");
	}
	lora_buf_puts(exp, "|");
	lora_buf_puts(act, "|");
}

static int rows_differ(struct exec *x, const struct expected *e, size_t bad,
                       size_t act, int ordered)
{
	struct lora_buf eb = {0}, ab = {0};
	int rc;

	rows_text(x, e, bad + 1, act, &eb, &ab);
	rc = failf(x, "rows differ%s: expected %.200s got %.200s",
	           ordered ? " (in order)" : "", eb.data ? eb.data : "",
	           ab.data ? ab.data : "");
	lora_buf_free(&eb);
	lora_buf_free(&ab);
	return rc;
}

static int columns_differ(struct exec *x, const struct expected *e)
{
	struct lora_buf eb = {0}, ab = {0};
	int rc;

	for (size_t c = 0; c < e->n_cols; c++)
		lora_buf_printf(&eb, "%s%s", c ? ", " : "", e->t->cells[0][c]);
	for (size_t c = 0; c < x->last.n_columns; c++)
		lora_buf_printf(&ab, "%s%s", c ? ", " : "", x->last.columns[c]);
	rc = failf(x, "columns differ: expected [%.200s] got [%.200s]",
	           eb.data ? eb.data : "", ab.data ? ab.data : "");
	lora_buf_free(&eb);
	lora_buf_free(&ab);
	return rc;
}

static int check_ran(struct exec *x)
{
	if (!x->last.ran)
		return failf(x, "runner: no query ran before the Then step");
	if (x->last.err.code) {
		detailf(x, "  query:\n%s\n", x->query ? x->query : "");
		detail_error(x, &x->last);
		return failf(x, "unexpected error %s: %s",
		             lora_err_code(x->last.err.code),
		             x->last.err.message);
	}
	return 0;
}

static int then_result(struct exec *x, const struct tck_step *st, int ordered,
                       int unordered_lists)
{
	struct tck_cmp cmp = {unordered_lists, qry_value_format};
	struct expected e;
	size_t bad, act;
	int rc = check_ran(x);

	if (rc)
		return rc;
	rc = expected_parse(x, &st->table, &e);
	if (rc == 0 && !columns_match(x, &e))
		rc = columns_differ(x, &e);
	else if (rc == 0 && x->last.n_rows != e.n_rows)
		rc = failf(x, "%zu rows, expected %zu", x->last.n_rows,
		           e.n_rows);
	else if (rc == 0 &&
	         (bad = rows_match(x, &e, ordered, &cmp, &act)) < e.n_rows)
		rc = rows_differ(x, &e, bad, act, ordered);
	if (rc && e.t)
		detail_rows(x, &e);
	expected_free(&e);
	return rc;
}

static int then_empty(struct exec *x)
{
	int rc = check_ran(x);

	if (rc == 0 && x->last.n_rows) {
		struct tck_table none = {0};
		struct expected e = {.t = &none};

		detail_rows(x, &e);
		rc = failf(x, "%zu rows, expected none", x->last.n_rows);
	}
	return rc;
}

int tck_error_matches(const char *type, int code)
{
	static const struct {
		const char *type;
		int codes[3];
	} map[] = {
	    {"SyntaxError", {LORA_EPARSE, LORA_ESEMANTIC, 0}},
	    {"SemanticError", {LORA_ESEMANTIC, 0, 0}},
	    {"TypeError", {LORA_ETYPE, LORA_ESEMANTIC, 0}},
	    {"ArgumentError", {LORA_EINVAL, LORA_ETYPE, 0}},
	    {"ArithmeticError", {LORA_EARITH, 0, 0}},
	    {"EntityNotFound", {LORA_ENOTFOUND, 0, 0}},
	    {"ParameterMissing", {LORA_EPARAMS, 0, 0}},
	    {"ConstraintValidationFailed", {LORA_ECONSTRAINT, 0, 0}},
	    {"ConstraintVerificationFailed", {LORA_ECONSTRAINT, 0, 0}},
	    {"ProcedureError", {LORA_ENOTFOUND, LORA_ESEMANTIC, 0}},
	};

	for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++) {
		if (strcmp(map[k].type, type) != 0)
			continue;
		for (int c = 0; c < 3 && map[k].codes[c]; c++)
			if (map[k].codes[c] == code)
				return 1;
		return 0;
	}
	return 0;
}

/* "a TypeError should be raised at runtime: InvalidArgumentType" */
static int then_error(struct exec *x, const struct tck_step *st)
{
	char type[64] = "";
	const char *p = st->text + 2, *detail = strrchr(st->text, ':');
	size_t len = strcspn(p, " ");

	if (*p == ' ')
		p++, len = strcspn(p, " ");
	snprintf(type, sizeof(type), "%.*s", (int)len, p);
	if (!x->last.ran)
		return failf(x, "runner: no query ran before the Then step");
	detailf(x, "  query:\n%s\n  expected: %s\n", x->query ? x->query : "",
	        st->text);
	if (!x->last.err.code)
		return failf(x, "expected %s%s, query succeeded", type,
		             detail ? detail : "");
	detail_error(x, &x->last);
	if (!tck_error_matches(type, x->last.err.code))
		return failf(
		    x, "expected %s%s, got %s: %s", type, detail ? detail : "",
		    lora_err_code(x->last.err.code), x->last.err.message);
	x->res->detail.len = 0; /* passed: drop the detail again */
	if (x->res->detail.data)
		x->res->detail.data[0] = '\0';
	return 0;
}

static int then_side_effects(struct exec *x, const struct tck_step *st)
{
	struct tck_effects want = {{0}}, got;
	struct tck_state after;
	int rc = 0;

	if (!x->have_before)
		return failf(x, "runner: side effects without a query");
	for (size_t r = 0; st->has_table && r < st->table.n_rows; r++) {
		size_t k = 0;

		while (k < TCK_FX_COUNT &&
		       strcmp(tck_effect_names[k], st->table.cells[r][0]) != 0)
			k++;
		if (k == TCK_FX_COUNT || st->table.n_cols[r] != 2)
			return failf(x, "runner: unknown side effect row");
		want.v[k] = strtol(st->table.cells[r][1], NULL, 10);
	}
	if (tck_state_read(x->store, &after) != 0)
		return failf(x, "runner: cannot read graph state");
	tck_state_diff(&x->before, &after, &got);
	tck_state_free(&after);
	for (int k = 0; k < TCK_FX_COUNT; k++)
		if (got.v[k] != want.v[k] && rc == 0)
			rc = failf(x, "side effects: %s %ld, expected %ld",
			           tck_effect_names[k], got.v[k], want.v[k]);
	if (rc) {
		detailf(x, "  query:\n%s\n  side effects:", x->query);
		for (int k = 0; k < TCK_FX_COUNT; k++)
			detailf(x, " %s %ld/%ld", tck_effect_names[k], got.v[k],
			        want.v[k]);
		detailf(x, " (actual/expected)\n");
	}
	return rc;
}

/* ---- dispatch --------------------------------------------------------------
 */

static int given_step(struct exec *x, const struct tck_step *st)
{
	const char *t = st->text;
	char name[256];

	if (strcmp(t, "an empty graph") == 0 || strcmp(t, "any graph") == 0)
		return 0;
	if (strncmp(t, "the ", 4) == 0 && strlen(t) > 10 &&
	    strcmp(t + strlen(t) - 6, " graph") == 0) {
		snprintf(name, sizeof(name), "%.*s", (int)(strlen(t) - 10),
		         t + 4);
		return load_graph(x, name);
	}
	if (strcmp(t, "having executed:") == 0)
		return st->doc ? run_setup(x, st->doc, "setup query")
		               : failf(x, "runner: setup without a query");
	if (strcmp(t, "parameters are:") == 0)
		return set_parameters(x, st);
	if (strncmp(t, "there exists a procedure ", 25) == 0)
		return define_procedure(x, st);
	return -1;
}

static int then_step(struct exec *x, const struct tck_step *st)
{
	const char *t = st->text;

	if (strcmp(t, "the result should be, in any order:") == 0)
		return then_result(x, st, 0, 0);
	if (strcmp(t, "the result should be, in order:") == 0)
		return then_result(x, st, 1, 0);
	if (strcmp(t, "the result should be (ignoring element order for "
	              "lists):") == 0)
		return then_result(x, st, 0, 1);
	if (strcmp(t, "the result should be empty") == 0)
		return then_empty(x);
	if (strcmp(t, "no side effects") == 0) {
		struct tck_step none = {0};

		none.text = st->text;
		return then_side_effects(x, &none);
	}
	if (strcmp(t, "the side effects should be:") == 0)
		return then_side_effects(x, st);
	if ((strncmp(t, "a ", 2) == 0 || strncmp(t, "an ", 3) == 0) &&
	    strstr(t, " should be raised at "))
		return then_error(x, st);
	return -1;
}

static int run_step(struct exec *x, const struct tck_step *st)
{
	int rc;

	if (strcmp(st->text, "executing query:") == 0)
		return when_query(x, st, 0);
	if (strcmp(st->text, "executing control query:") == 0)
		return when_query(x, st, 1);
	rc = given_step(x, st);
	if (rc == -1)
		rc = then_step(x, st);
	if (rc == -1)
		rc = failf(x, "runner: unsupported step \"%s %s\"", st->keyword,
		           st->text);
	return rc;
}

int tck_run_scenario(const struct tck_scenario *s, const struct tck_env *env,
                     struct tck_result *res)
{
	struct exec x;

	memset(&x, 0, sizeof(x));
	x.env = env;
	x.res = res;
	res->outcome = TCK_PASS;
	if (tck_scenario_has_tag(s, "ignore") ||
	    tck_scenario_has_tag(s, "skip")) {
		res->outcome = TCK_SKIP;
		lora_buf_puts(&res->reason, "tagged @ignore");
		return 0;
	}
	qry_proc_clear();
	x.store = env->store;
	for (size_t k = 0; k < s->n_steps && res->outcome == TCK_PASS; k++)
		run_step(&x, &s->steps[k]);
	outcome_free(&x.last);
	if (x.have_before)
		tck_state_free(&x.before);
	if (x.params)
		lora__value_map__free_unpacked(x.params, &lora_pb_allocator);
	qry_proc_clear();
	return 0;
}
