/*
 * fuzz_seek.c - differential fuzz target for the planner's index seeks:
 * the input is a statement's text, run with the same parameters and
 * limits on two stores that hold the same graph (the same ids), one with
 * property indexes on most (label, key) pairs (range, composite, text,
 * point and a relationship index) and one with none. Where the first
 * seeks (NodeIndexSeek, range and prefix seeks, IN, property maps, also
 * under an Apply and over the statement's own writes), the second scans
 * and filters, so a seek must give exactly the rows of the scan.
 *
 * Both must fail with the same code, or both succeed with the same rows:
 * each row in a canonical text (types apart: 1, 1.0 and '1' differ; ids
 * of nodes and relationships kept; map keys and labels sorted), the rows
 * compared as sorted multisets. A write statement runs as fuzz_graph.c
 * runs it (its batch built, never applied): its rows must match too,
 * which checks the seeks over the statement overlay. About half the
 * inputs (by a hash of the text) run over a pending batch (a write
 * proposed and not yet applied: qry_request.pending) that changes,
 * deletes, relabels and creates nodes and relationships, the same batch
 * on both stores, which checks the seeks over that overlay. What is not
 * compared, because Cypher leaves it to the plan (skipped() and canon()
 * say how):
 *  - rows of a statement with LIMIT or SKIP (which rows are kept follows
 *    the row order, also under ORDER BY when keys tie), or with rand(),
 *    randomUUID(), timestamp() or a temporal value of the current time;
 *    statements about the schema (INDEX, CONSTRAINT, SHOW, db.*);
 *  - a statement that hits a resource limit (time, memory, rows) on one
 *    side only, or returns more than FZ_PULL_ROWS_MAX rows;
 *  - an error of evaluating a row (type, arithmetic, value, deleted
 *    entity, MERGE of null) on one side only, or two different codes
 *    of which one is such: the scan filters every node of the label, the
 *    seek only those it found, and a seekable node may become the start
 *    of a pattern the other plan starts elsewhere, so a WHERE or a
 *    property map may raise on a row that the other plan never makes;
 *  - with DISTINCT, UNION or an aggregating function, which of several
 *    equivalent values (1 and 1.0, 0 and -0.0) stands for its group and
 *    the order of collect() and of float sums: numbers are compared by
 *    value (to 12 digits) and lists as multisets;
 *  - the ids of what a write statement creates (given in row order):
 *    such an entity is "new", and a write statement that asks id() or
 *    elementId() is not compared.
 * Besides: no LORA_EINTERNAL, every error with a message, no store ever
 * written (fuzz_graph.h's checks of an error). FUZZ_SEEK_VERBOSE=1 in the
 * environment prints both answers of every input (to write seeds).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_graph.h"
#include "query.h"

#define SEEK_QUERY_BYTES_MAX 4096
#define SEEK_DEPTH_MAX       LORA_RESULT_DEPTH_MAX /* canonical text */
#define SEEK_STORES          2                     /* 0: indexed, 1: none */

/*
 * The graph: on the key k of P (and of Q and R) every kind of value a
 * seek must tell apart or must find together; s strings (range, prefix
 * and text seeks); p points; w on relationships. Every label and key the
 * indexes name appears here first, so that both stores intern the same
 * names in the same order (keys() and labels() answer in that order).
 */
static const char *graph_text =
    "CREATE (a:P {k: 1, s: 'a'}), (b:P {k: 1.0, s: 'ab'}),"
    " (c:P:Q {k: 2, s: 'abc'}), (d:P {k: 2.5, s: 'b'}),"
    " (:P {k: 0.0 / 0.0, s: 'B'}), (:P {k: -0.0}), (:P {k: 0, s: ''}),"
    " (:P {k: 9007199254740993}), (:P {k: 9007199254740992.0}),"
    " (:P {k: 9007199254740992}), (:P {k: 'x', s: 'x'}), (:P {k: '1'}),"
    " (:P {k: ''}), (:P {k: 'xy'}), (:P {k: true}), (:P {k: false}),"
    " (:P {k: [1, 2]}), (:P {k: [1.0, 2]}), (:P {k: []}),"
    " (:P {k: ['x', 'y']}), (:P {s: 'no k'}),"
    " (:P:R {k: date('2020-01-02')}),"
    " (:P {k: datetime('2020-01-02T03:04:05Z')}),"
    " (:P {k: localtime('12:00')}), (:P {k: duration('P1D')}),"
    " (:P {k: point({x: 1, y: 2})}), (:P {k: -1}), (:P {k: 3}),"
    " (:P {k: 3.0, s: 'abd'}), (:P {k: 1e300}), (:P {k: -1e300}),"
    " (:P {k: 1.5}), (:P {k: 1e308 * 10}), (:P:Q {k: 1, s: 'ab'}),"
    " (:P {k: 9223372036854775807, s: 'a\u00ff'}),"
    " (:P {k: 9223372036854775807.0, s: 'a~'}),"
    " (:P {k: -9223372036854775807 - 1, s: '\u00e9t\u00e9'}),"
    " (:P {k: -9223372036854775808.0}), (:P {k: 1e-300}),"
    " (q:Q {k: 1.0, s: 'abcd'}), (:Q {k: 'x', s: 'xyz'}),"
    " (:Q {k: 2.0, s: 'Abc'}), (:Q {s: 'abd'}), (:Q {k: [1]}),"
    " (:Q {s: '\u00dcn\u00efcode'}), (:Q {s: 'abab'}), (:Q {s: 'aaa'}),"
    " (:Q {k: 'ab c', s: 'ab c'}),"
    " (r:R {k: 1, s: 'a', p: point({x: 1, y: 2})}),"
    " (:R {k: 1, s: 'b', p: point({x: 1.5, y: 2})}),"
    " (:R {k: 'a', s: 'a', p: point({x: -3, y: 4})}),"
    " (:R {k: 2, p: point({longitude: 10, latitude: 50})}), (:E),"
    " (a)-[:T {w: 1}]->(b), (b)-[:T {w: 1.0}]->(c), (c)-[:T {w: 'x'}]->(a),"
    " (a)-[:T {w: 0.0 / 0.0}]->(d), (d)-[:T]->(q), (q)-[:T {w: 2}]->(r),"
    " (a)-[:U {w: 1}]->(q), (r)-[:U {w: 2.5}]->(r), (r)-[:T {w: 2.5}]->(r)";

/* the indexed store's indexes, made after the graph (filled from it) */
static const char *const index_text[] = {
    "CREATE INDEX FOR (n:P) ON (n.k)",
    "CREATE INDEX FOR (n:Q) ON (n.k)",
    "CREATE INDEX FOR (n:P) ON (n.s)",
    "CREATE TEXT INDEX FOR (n:Q) ON (n.s)",
    "CREATE INDEX FOR (n:R) ON (n.k, n.s)",
    "CREATE POINT INDEX FOR (n:R) ON (n.p)",
    "CREATE INDEX FOR ()-[r:T]-() ON (r.w)",
};

/* then, on both, writes that the indexes take in as they are applied */
static const char *const change_text[] = {
    "MATCH (n:P {s: 'b'}) SET n.k = 4.5, n.s = 'bb'",
    "MATCH (n:P {k: 'xy'}) REMOVE n.k SET n:Q",
    "MATCH (n:Q {s: 'xyz'}) DETACH DELETE n",
    "MATCH (a:P {k: 2}) CREATE (a)-[:T {w: 2.5}]->(:P:Q {k: 7, s: 'abz'})",
};

/* a write proposed and not yet applied (qry_request.pending): made once
 * on store 1, laid over either store's view for about half the inputs */
static const char *pending_text =
    "MATCH (n:P {k: 3}) SET n.k = 1.0, n.s = 'ab' WITH count(*) AS c"
    " MATCH (m:Q {s: 'abd'}) DETACH DELETE m WITH count(*) AS d"
    " MATCH (o:P {k: 'x'}) REMOVE o:P SET o:R WITH count(*) AS e"
    " MATCH ()-[r:T {w: 2}]->() SET r.w = 1.0 WITH count(*) AS f"
    " CREATE (:P:Q {k: 2.5, s: 'abq'})-[:T {w: 1}]->"
    "(:R {k: 1, s: 'b', p: point({x: 1, y: 2})})";

static struct sto_store *stores[SEEK_STORES];
static uint64_t applied[SEEK_STORES];
static struct sto_view *pending_view;
static struct qry_cursor *pending_cur; /* holds pending */
static const Lora__MutationBatch *pending;
static Lora__ValueMap *params;
/* the first id a statement makes: [1] over the pending batch */
static uint64_t node_new[2], edge_new[2];

/* What a statement gave on one store. */
struct answer {
	int code;
	struct qry_error err;
	char **rows; /* canonical text of each row, sorted */
	size_t nrows;
	int truncated; /* more than FZ_PULL_ROWS_MAX rows */
};

/* How a statement runs and its rows are written: loose for a statement
 * whose values Cypher lets the row order choose (see the header); ids
 * from node_new and edge_new on are made by the statement. */
struct canon {
	int loose;
	int pending; /* run over the pending batch */
	uint64_t node_new, edge_new;
};

_Noreturn static void die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_seek: %s%s%s\n", what, detail ? ": " : "",
	        detail ? detail : "");
	abort();
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void canon(const struct canon *k, const Lora__Value *v,
                  struct lora_buf *b, int depth);

/* parts[0..n) written in order, or sorted (a multiset) */
static void canon_joined(char **parts, size_t n, int sorted, struct lora_buf *b)
{
	if (sorted)
		qsort(parts, n, sizeof *parts, cmp_str);
	for (size_t i = 0; i < n; i++) {
		lora_buf_printf(b, "%s%s", i ? ", " : "", parts[i]);
		free(parts[i]);
	}
	free(parts);
}

/* map entries as "key: value", by key */
static void canon_entries(const struct canon *k, Lora__MapEntry **e, size_t n,
                          struct lora_buf *b, int depth)
{
	char **parts = calloc(n ? n : 1, sizeof *parts);
	for (size_t i = 0; i < n; i++) {
		struct lora_buf one = {0};
		lora_buf_printf(&one, "%s: ", e[i]->key);
		canon(k, e[i]->value, &one, depth + 1);
		parts[i] = lora_buf_take(&one);
	}
	lora_buf_putc(b, '{');
	canon_joined(parts, n, 1, b);
	lora_buf_putc(b, '}');
}

/* an entity id: "new" for one the statement made (row order) */
static void canon_id(uint64_t id, uint64_t first_new, struct lora_buf *b)
{
	if (id >= first_new)
		lora_buf_puts(b, "#new");
	else
		lora_buf_printf(b, "#%llu", (unsigned long long)id);
}

static void canon_node(const struct canon *k, const Lora__NodeValue *n,
                       struct lora_buf *b, int depth)
{
	lora_buf_puts(b, "(");
	canon_id(n->id, k->node_new, b);
	char **l = calloc(n->n_labels ? n->n_labels : 1, sizeof *l);
	for (size_t i = 0; i < n->n_labels; i++)
		l[i] = strdup(n->labels[i]);
	lora_buf_putc(b, ':');
	canon_joined(l, n->n_labels, 1, b);
	canon_entries(k, n->properties, n->n_properties, b, depth);
	lora_buf_putc(b, ')');
}

static void canon_rel(const struct canon *k, const Lora__RelValue *r,
                      struct lora_buf *b, int depth)
{
	lora_buf_puts(b, "[");
	canon_id(r->id, k->edge_new, b);
	lora_buf_printf(b, ":%s ", r->type ? r->type : "");
	canon_id(r->start_id, k->node_new, b);
	lora_buf_puts(b, "->");
	canon_id(r->end_id, k->node_new, b);
	canon_entries(k, r->properties, r->n_properties, b, depth);
	lora_buf_putc(b, ']');
}

/* a number: exact and typed, or loose (by value, to 12 digits) */
static void canon_float(const struct canon *k, double d, struct lora_buf *b)
{
	if (isnan(d))
		lora_buf_puts(b, "NaN"); /* any sign and payload */
	else if (!k->loose)
		lora_buf_printf(b, "%.17gf", d); /* exact; -0 apart from 0 */
	else if (d == 0)
		lora_buf_puts(b, "0");
	else
		lora_buf_printf(b, "%.12g", d);
}

static void canon_list(const struct canon *k, const Lora__ValueList *l,
                       struct lora_buf *b, int depth)
{
	size_t n = l ? l->n_items : 0;
	char **parts = calloc(n ? n : 1, sizeof *parts);
	for (size_t i = 0; i < n; i++) {
		struct lora_buf one = {0};
		canon(k, l->items[i], &one, depth + 1);
		parts[i] = lora_buf_take(&one);
		if (!parts[i])
			parts[i] = strdup("");
	}
	lora_buf_putc(b, '[');
	canon_joined(parts, n, k->loose, b);
	lora_buf_putc(b, ']');
}

static void canon_temporal(const Lora__Temporal *t, struct lora_buf *b)
{
	lora_buf_printf(b, "T%d(%lld %lld %d %s %lld %lld %lld %d)", t->kind,
	                (long long)t->epoch_days, (long long)t->nanos_of_day,
	                t->offset_seconds, t->zone ? t->zone : "",
	                (long long)t->months, (long long)t->days,
	                (long long)t->seconds, t->nanos);
}

/* v as text that tells every value Cypher tells apart */
static void canon(const struct canon *k, const Lora__Value *v,
                  struct lora_buf *b, int depth)
{
	if (depth > SEEK_DEPTH_MAX)
		die("a value nested too deep", NULL);
	switch (v ? v->kind_case : LORA__VALUE__KIND__NOT_SET) {
	case LORA__VALUE__KIND_BOOL_VALUE:
		lora_buf_puts(b, v->bool_value ? "true" : "false");
		break;
	case LORA__VALUE__KIND_INT_VALUE:
		if (!k->loose)
			lora_buf_printf(b, "%lldi", (long long)v->int_value);
		else /* as canon_float writes the float of the same value */
			canon_float(k, (double)v->int_value, b);
		break;
	case LORA__VALUE__KIND_FLOAT_VALUE:
		canon_float(k, v->float_value, b);
		break;
	case LORA__VALUE__KIND_STRING_VALUE:
		lora_buf_printf(b, "'%zu:%s'", strlen(v->string_value),
		                v->string_value);
		break;
	case LORA__VALUE__KIND_BYTES_VALUE:
		lora_buf_printf(b, "bytes(%zu)", v->bytes_value.len);
		for (size_t i = 0; i < v->bytes_value.len; i++)
			lora_buf_printf(b, "%02x", v->bytes_value.data[i]);
		break;
	case LORA__VALUE__KIND_LIST_VALUE:
		canon_list(k, v->list_value, b, depth);
		break;
	case LORA__VALUE__KIND_MAP_VALUE:
		canon_entries(k, v->map_value->entries, v->map_value->n_entries,
		              b, depth);
		break;
	case LORA__VALUE__KIND_VECTOR_VALUE:
		lora_buf_puts(b, "vector");
		qry_value_format(v, b); /* exact enough: no float sums */
		break;
	case LORA__VALUE__KIND_TEMPORAL_VALUE:
		canon_temporal(v->temporal_value, b);
		break;
	case LORA__VALUE__KIND_POINT_VALUE:
		lora_buf_printf(b, "point(%u %.17g %.17g %.17g)",
		                v->point_value->srid, v->point_value->x,
		                v->point_value->y, v->point_value->z);
		break;
	case LORA__VALUE__KIND_NODE_VALUE:
		canon_node(k, v->node_value, b, depth);
		break;
	case LORA__VALUE__KIND_REL_VALUE:
		canon_rel(k, v->rel_value, b, depth);
		break;
	case LORA__VALUE__KIND_PATH_VALUE:
		lora_buf_puts(b, "<");
		for (size_t i = 0; i < v->path_value->n_nodes; i++)
			canon_node(k, v->path_value->nodes[i], b, depth);
		for (size_t i = 0; i < v->path_value->n_rels; i++)
			canon_rel(k, v->path_value->rels[i], b, depth);
		lora_buf_puts(b, ">");
		break;
	default:
		lora_buf_puts(b, "null");
		break;
	}
}

/* ---- which statements are compared, and how ---------------------------- */

static const char *skip_space(const char *e)
{
	while (*e == ' ' || *e == '\t' || *e == '\n' || *e == '\r')
		e++;
	return e;
}

/* whether q names `name` followed by "(" (spaces between allowed) */
static int calls(const char *q, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = q; (p = strcasestr(p, name)) != NULL; p += n) {
		if (*skip_space(p + n) == '(')
			return 1;
	}
	return 0;
}

/* a temporal value of the current time: date(), localtime({timezone:
 * ...}), datetime.transaction(), ... (a name ending in date or time
 * called with no argument or with a map) */
static int now_call(const char *q)
{
	static const char *const names[] = {"date", "time"};
	for (int i = 0; i < 2; i++)
		for (const char *p = q; (p = strcasestr(p, names[i])) != NULL;
		     p += 4) {
			const char *e = skip_space(p + 4);
			if (*e != '(')
				continue;
			e = skip_space(e + 1);
			if (*e == ')' || *e == '{' || *e == '$')
				return 1;
		}
	return strcasestr(q, ".transaction") || strcasestr(q, ".statement") ||
	       strcasestr(q, ".realtime");
}

/* Why q's answers are not compared (NULL: they are). */
static const char *skipped(const char *q)
{
	if (strcasestr(q, "LIMIT") || strcasestr(q, "SKIP"))
		return "LIMIT or SKIP: which rows follows the row order";
	if (strcasestr(q, "rand") || strcasestr(q, "uuid") ||
	    strcasestr(q, "timestamp") || now_call(q))
		return "random or the current time";
	if (strcasestr(q, "INDEX") || strcasestr(q, "CONSTRAINT") ||
	    strcasestr(q, "SHOW") || strcasestr(q, "db."))
		return "the schema: one store has indexes";
	if ((strcasestr(q, "CREATE") || strcasestr(q, "MERGE")) &&
	    calls(q, "id"))
		return "the ids of what a write makes follow the row order";
	return NULL;
}

/* DISTINCT, UNION and aggregation keep one of several equivalent values
 * and collect() and sums follow the row order */
static int loose(const char *q)
{
	static const char *const words[] = {
	    "DISTINCT", "UNION", "count", "collect", "sum",
	    "avg",      "min",   "max",   "stdev",   "percentile"};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strcasestr(q, words[i]))
			return 1;
	return 0;
}

/* limits that one plan may reach and another not */
static int resource_error(int code)
{
	return code == LORA_ETIMEOUT || code == LORA_EMEMORY ||
	       code == LORA_ELIMIT;
}

/* errors of evaluating an expression on a row, which one plan may make
 * and another not */
static int row_error(int code)
{
	return code == LORA_ETYPE || code == LORA_EARITH ||
	       code == LORA_EINVAL || code == LORA_ENOTFOUND ||
	       code == LORA_ESEMANTIC || code == LORA_EVECTOR;
}

/* ---- running a statement on one store ------------------------------------ */

static void answer_free(struct answer *a)
{
	for (size_t i = 0; i < a->nrows; i++)
		free(a->rows[i]);
	free(a->rows);
	memset(a, 0, sizeof *a);
}

static void pull(struct qry_cursor *c, const struct canon *k, struct answer *a,
                 const char *q)
{
	a->rows = calloc(FZ_PULL_ROWS_MAX, sizeof *a->rows);
	for (;;) {
		const Lora__Value *const *row;
		int done = 0;
		int code = qry_cursor_next(c, &row, &done, &a->err);
		if (code) {
			fz_check_error(&a->err, q);
			a->code = code;
			return;
		}
		if (done)
			break;
		if (a->nrows == FZ_PULL_ROWS_MAX) {
			a->truncated = 1;
			break;
		}
		const char *const *names;
		size_t n = qry_cursor_columns(c, &names);
		struct lora_buf b = {0};
		lora_buf_putc(&b, '|');
		for (size_t j = 0; j < n; j++) {
			canon(k, row[j], &b, 0);
			lora_buf_putc(&b, '|');
		}
		if (lora_buf_error(&b))
			die("out of memory", NULL);
		a->rows[a->nrows++] = lora_buf_take(&b);
	}
	qsort(a->rows, a->nrows, sizeof *a->rows, cmp_str);
}

/* q on store i: its error or its rows */
static void run(int i, const char *q, const struct canon *k, struct answer *a)
{
	memset(a, 0, sizeof *a);
	struct sto_view *v;
	if (sto_view_open(stores[i], &v))
		die("a view", NULL);
	struct qry_request req = {0};
	fz_limits(&req.limits);
	req.query = q;
	req.params = params;
	req.view = v;
	if (k->pending) {
		req.pending = &pending;
		req.n_pending = 1;
	}
	struct qry_cursor *c = NULL;
	a->code = qry_open(&req, &c, &a->err);
	if (a->code) {
		fz_check_error(&a->err, q);
	} else {
		pull(c, k, a, q);
		qry_cursor_free(c);
	}
	sto_view_close(v);
	/* a write statement's batch is built, never applied */
	if (sto_applied_index(stores[i]) != applied[i])
		die("the store was written", q);
}

static void print_answer(const char *name, const struct answer *a)
{
	fprintf(stderr, "%s: ", name);
	if (a->code) {
		fprintf(stderr, "error %d (%s) %s\n", a->code,
		        lora_err_code(a->code), a->err.message);
		return;
	}
	fprintf(stderr, "%zu rows%s\n", a->nrows,
	        a->truncated ? " (more not read)" : "");
	for (size_t i = 0; i < a->nrows && i < 40; i++)
		fprintf(stderr, "  %s\n", a->rows[i]);
}

_Noreturn static void differ(const char *q, const struct answer *a,
                             const char *what)
{
	fprintf(stderr, "fuzz_seek: %s\nquery: %s\n", what, q);
	print_answer("indexed", &a[0]);
	print_answer("no index", &a[1]);
	abort();
}

/* a[0] from the indexed store, a[1] from the other */
static void compare(const char *q, const struct answer *a)
{
	if (a[0].code != a[1].code) {
		if (resource_error(a[0].code) || resource_error(a[1].code) ||
		    row_error(a[0].code) || row_error(a[1].code))
			return;
		differ(q, a, "the errors differ");
	}
	if (a[0].code || a[0].truncated || a[1].truncated)
		return;
	int same = a[0].nrows == a[1].nrows;
	for (size_t i = 0; same && i < a[0].nrows; i++)
		same = !strcmp(a[0].rows[i], a[1].rows[i]);
	if (!same)
		differ(q, a, "the rows differ");
}

/* q on both stores, compared as the header says */
static void check(const char *q)
{
	/* over the pending batch or not: by the text, so that it replays */
	int p = (int)(lora_hash32(q, strlen(q)) >> 7 & 1);
	struct canon k = {.loose = loose(q),
	                  .pending = p,
	                  .node_new = node_new[p],
	                  .edge_new = edge_new[p]};
	struct answer a[SEEK_STORES];
	for (int i = 0; i < SEEK_STORES; i++)
		run(i, q, &k, &a[i]);
	if (getenv("FUZZ_SEEK_VERBOSE")) {
		fprintf(stderr, "== %s [%s%s]\n", q,
		        skipped(q) ? skipped(q) : "compared",
		        p ? ", pending" : "");
		print_answer("indexed", &a[0]);
		print_answer("no index", &a[1]);
	}
	if (!skipped(q))
		compare(q, a);
	for (int i = 0; i < SEEK_STORES; i++)
		answer_free(&a[i]);
}

/* ---- the two stores ------------------------------------------------------ */

static struct sto_store *store_open(const char *path)
{
	char em[LORA_ERRMSG_BYTES];
	struct sto_options o;
	sto_options_init(&o);
	o.block_cache_bytes = 8u << 20;
	o.mem_env = 1; /* fuzz_store.h: no files, nothing left behind */
	o.wal_off = 1;
	struct sto_store *s;
	if (sto_open(path, &o, &s, em) != 0)
		die("open a store", em);
	return s;
}

static void stores_close(void)
{
	for (int i = 0; i < SEEK_STORES; i++)
		sto_close(stores[i]);
}

/* opens `text` in mode on a new view of store i (the fixture's
 * statements: any failure ends the process) */
static void open_on(int i, const char *text, int mode, struct sto_view **v,
                    struct qry_cursor **c)
{
	struct qry_request req = {0};
	struct qry_error e;
	if (sto_view_open(stores[i], v))
		die("a view", NULL);
	req.query = text;
	req.view = *v;
	req.mode = mode;
	qry_limits_init(&req.limits);
	if (qry_open(&req, c, &e))
		die(text, e.message);
}

/* runs the write `text` on store i and applies its batch */
static void apply_text(int i, const char *text)
{
	struct sto_view *v;
	struct qry_cursor *c;
	char em[LORA_ERRMSG_BYTES];
	open_on(i, text, QRY_RUN, &v, &c);
	const Lora__MutationBatch *b = qry_cursor_batch(c);
	if (!b || sto_apply(stores[i], ++applied[i], b, em))
		die(text, b ? em : "no batch");
	qry_cursor_free(c);
	sto_view_close(v);
}

/* the integer in the first cell of q's first row on store 1 (over the
 * pending batch or not) */
static uint64_t first_int(const char *q, int over_pending)
{
	struct canon k = {.pending = over_pending};
	struct answer a;
	run(1, q, &k, &a);
	unsigned long long n;
	if (a.code || a.nrows != 1 || sscanf(a.rows[0], "|%llui|", &n) != 1)
		die("fixture", q);
	answer_free(&a);
	return n;
}

/* whether the plan of EXPLAIN q on store i names operator op */
static int plans(int i, const char *q, const char *op)
{
	struct sto_view *v;
	struct qry_cursor *c;
	open_on(i, q, QRY_EXPLAIN, &v, &c);
	struct lora_buf b = {0};
	qry_value_format(qry_cursor_plan(c), &b);
	int seek = b.data && strstr(b.data, op) != NULL;
	lora_buf_free(&b);
	qry_cursor_free(c);
	sto_view_close(v);
	return seek;
}

static void pending_free(void)
{
	qry_cursor_free(pending_cur);
	sto_view_close(pending_view);
}

/* the pending batch, from store 1 (the stores hold the same ids) */
static void pending_make(void)
{
	open_on(1, pending_text, QRY_RUN, &pending_view, &pending_cur);
	pending = qry_cursor_batch(pending_cur);
	if (!pending)
		die(pending_text, "no batch");
	atexit(pending_free); /* before stores_close */
}

/* ---- parameters: $i 1, $f 1.0, $z -0.0, $nan, $big 2^53 + 1, $s 'x',
 * $ab 'ab', $n null, $l [1, 2.5, 'x', null] ------------------------------- */

#define SEEK_PARAMS 9

static Lora__Value param_v[SEEK_PARAMS], list_v[4];
static Lora__Value *list_p[4];
static Lora__ValueList param_list;
static Lora__MapEntry param_e[SEEK_PARAMS], *param_ep[SEEK_PARAMS];
static Lora__ValueMap param_map;

static void set_int(Lora__Value *v, int64_t i)
{
	v->kind_case = LORA__VALUE__KIND_INT_VALUE;
	v->int_value = i;
}

static void set_float(Lora__Value *v, double d)
{
	v->kind_case = LORA__VALUE__KIND_FLOAT_VALUE;
	v->float_value = d;
}

static void set_str(Lora__Value *v, const char *s)
{
	v->kind_case = LORA__VALUE__KIND_STRING_VALUE;
	v->string_value = (char *)s;
}

static void params_init(void)
{
	static const char *const keys[SEEK_PARAMS] = {
	    "i", "f", "z", "nan", "big", "s", "ab", "n", "l"};
	for (int i = 0; i < SEEK_PARAMS; i++) {
		lora__value__init(&param_v[i]);
		lora__map_entry__init(&param_e[i]);
		param_e[i].key = (char *)keys[i];
		param_e[i].value = &param_v[i];
		param_ep[i] = &param_e[i];
	}
	set_int(&param_v[0], 1);
	set_float(&param_v[1], 1.0);
	set_float(&param_v[2], -0.0);
	set_float(&param_v[3], NAN);
	set_int(&param_v[4], ((int64_t)1 << 53) + 1);
	set_str(&param_v[5], "x");
	set_str(&param_v[6], "ab");
	/* param_v[7] stays unset: null */
	for (int i = 0; i < 4; i++) {
		lora__value__init(&list_v[i]);
		list_p[i] = &list_v[i];
	}
	set_int(&list_v[0], 1);
	set_float(&list_v[1], 2.5);
	set_str(&list_v[2], "x");
	lora__value_list__init(&param_list);
	param_list.n_items = 4;
	param_list.items = list_p;
	param_v[8].kind_case = LORA__VALUE__KIND_LIST_VALUE;
	param_v[8].list_value = &param_list;
	lora__value_map__init(&param_map);
	param_map.n_entries = SEEK_PARAMS;
	param_map.entries = param_ep;
	params = &param_map;
}

/* The graph on both stores, the indexes on store 0, the changes on both,
 * the pending batch; then what the comparison rests on: the same graph
 * (ids, labels, keys and values, in the same order) on both, with and
 * without the pending batch, and a seek planned on store 0 only. */
static void setup(void)
{
	static const char *const path[SEEK_STORES] = {"/lora-fuzz-seek/idx",
	                                              "/lora-fuzz-seek/scan"};
	params_init();
	for (int i = 0; i < SEEK_STORES; i++) {
		stores[i] = store_open(path[i]);
		apply_text(i, graph_text);
	}
	atexit(stores_close);
	for (size_t j = 0; j < sizeof index_text / sizeof index_text[0]; j++)
		apply_text(0, index_text[j]);
	for (size_t j = 0; j < sizeof change_text / sizeof change_text[0]; j++)
		for (int i = 0; i < SEEK_STORES; i++)
			apply_text(i, change_text[j]);
	pending_make();
	for (int p = 0; p < 2; p++) {
		node_new[p] = first_int("MATCH (n) RETURN max(id(n))", p) + 1;
		edge_new[p] =
		    first_int("MATCH ()-[r]->() RETURN max(id(r))", p) + 1;
	}
	static const char *const dump =
	    "MATCH (n) OPTIONAL MATCH (n)-[r]->() "
	    "RETURN n, r, labels(n), keys(n), keys(r)";
	for (int p = 0; p < 2; p++) {
		struct canon k = {.pending = p,
		                  .node_new = UINT64_MAX,
		                  .edge_new = UINT64_MAX};
		struct answer a[SEEK_STORES];
		for (int i = 0; i < SEEK_STORES; i++)
			run(i, dump, &k, &a[i]);
		if (a[0].code || a[0].nrows < 40)
			differ(dump, a, "the fixture is not built");
		compare(dump, a);
		for (int i = 0; i < SEEK_STORES; i++)
			answer_free(&a[i]);
	}
	/* every kind of index is sought, on the indexed store only */
	static const char *const seeks[][2] = {
	    {"MATCH (n:P) WHERE n.k = 1 RETURN n", "NodeIndexSeek(:P(k))"},
	    {"MATCH (n:P) WHERE n.s > 'a' RETURN n", "IndexRangeSeek(:P(s)"},
	    {"MATCH (n:R {s: 'a'}) RETURN n", "NodeIndexSeek(:R(s))"},
	    {"MATCH (n:Q) WHERE n.s CONTAINS 'abc' RETURN n",
	     "NodeIndexContainsScan(:Q(s)"},
	    {"MATCH (n:R) WHERE point.distance(n.p, point({x: 0, y: 0})) < 1 "
	     "RETURN n",
	     "PointIndexSeek(:R(p)"},
	    {"MATCH ()-[r:T]->() WHERE r.w = 1 RETURN r",
	     "RelationshipIndexSeek(:T(w))"},
	};
	for (size_t j = 0; j < sizeof seeks / sizeof seeks[0]; j++)
		if (!plans(0, seeks[j][0], seeks[j][1]) ||
		    plans(1, seeks[j][0], "Index"))
			die("a seek on the indexed store only", seeks[j][0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		setup();
		ready = 1;
	}
	if (size > SEEK_QUERY_BYTES_MAX)
		return 0;
	char *q = malloc(size + 1);
	memcpy(q, data, size);
	q[size] = '\0';
	check(q);
	free(q);
	return 0;
}
