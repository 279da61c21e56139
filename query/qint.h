/*
 * qint.h - private types of the query engine: the statement's arenas, the
 * runtime value, the AST, the graph overlay and the execution context.
 *
 * Memory: everything a statement allocates comes from arenas owned by the
 * cursor (see "arena" below), so values are plain 16-byte structs that can
 * be copied and shared freely within the lifetime of their arena. A read's
 * operators reset their own arenas as rows flow (pipe.c); what must live
 * longer is copied (v_copy, row_copy_deep).
 *
 * Errors: evaluation raises errors with qerr(), which longjmps to the
 * statement's entry point (qry_open / qry_cursor_next). A storage iterator
 * held while code that can raise runs is registered in c->iter, and LOAD
 * CSV files in c->files, so the cursor frees them; other scans copy ids
 * out first or go through the view's own cursors (freed with the view).
 */
#ifndef LORA_QINT_H
#define LORA_QINT_H

#include <setjmp.h>
#include <stdint.h>

#include "query.h"

/* ---- limits ------------------------------------------------------------ */

#define QRY_ARENA_CHUNK_BYTES (64u << 10)
/* Standard chunks a statement keeps for reuse when an arena gives them back
 * (value.c): a subquery run per input row builds operators whose arenas
 * would otherwise malloc and free a chunk or two per row. */
#define QRY_ARENA_POOL_CHUNKS 8
#define QRY_VARLEN_BOUND_MAX  1000 /* explicit *..n bounds (recursion) */
#define QRY_VARLEN_HOPS_MAX   64   /* unbounded *.. patterns */
/* paths one path selector (SHORTEST k, ANY, ...) may weigh at a time:
 * LORA_ELIMIT ("PathExpansionLimit") past it; the relationships traversed
 * are limited by qry_limits.path_expansions_max */
/* shortest path searches nested in one statement (their hash maps) */
#define QRY_SCRATCH_MAPS_MAX   64
#define QRY_SELECT_PATHS_MAX   1000000u
#define QRY_PROC_TABLES_MAX    256 /* registered table procedures */
#define QRY_STRING_BYTES_MAX   (256u << 20)
#define QRY_SCRATCH_KEEP_BYTES (1u << 20) /* qbuf() room kept between uses */
#define QRY_LIST_ITEMS_MAX     100000000u
#define QRY_INTERN_MAX         256        /* interned label / type names */
#define QRY_FOLD_BYTES_MAX     (1u << 20) /* a constant checked at compile time */
/* graph.c's seek cache: at most this much, and never more than half of
 * what the statement's limit and the shared budget have left */
#define QRY_SEEK_CACHE_BYTES_MAX (32u << 20)
#define QRY_TRIM_PEAK_BYTES                                                    \
	(64u << 20) /* malloc_trim after a bigger statement */
/* or one whose seek cache held more (many small blocks) */
#define QRY_TRIM_SEEK_CACHE_BYTES (4u << 20)
#define QRY_TX_ROWS_DEFAULT       1000 /* IN TRANSACTIONS without OF n ROWS */

/* ---- arena ------------------------------------------------------------- */

/*
 * A statement allocates from arenas: `keep` (the AST, parameters, a write
 * statement's everything), the graph cache's, and one or two per operator
 * of a read pipeline, reset as rows flow (see pipe.c). ar_alloc takes from
 * the current arena (c->cur); ar_use switches it and returns the previous
 * one. Every chunk is charged to the statement's memory limit and to the
 * shared budget (mem_charge), so over budget is LORA_EMEMORY, never an
 * out-of-memory node. With c->keep_all (write statements, PROFILE) every
 * arena is `keep` and nothing is reset.
 */
struct arena_chunk;
struct arena {
	struct arena_chunk *head;
	struct arena_chunk *spare; /* kept by ar_reset */
	size_t bytes;              /* held, headers included */
};

struct qctx;
void *ar_alloc(struct qctx *c, size_t n);
/* ar_alloc without zeroing: for memory the caller fills at once */
void *ar_alloc_nz(struct qctx *c, size_t n);
char *ar_strndup(struct qctx *c, const char *s, size_t n);
char *ar_strdup(struct qctx *c, const char *s);
struct arena *ar_use(struct qctx *c, struct arena *a);
void ar_reset(struct qctx *c, struct arena *a);   /* keeps one spare chunk */
void ar_release(struct qctx *c, struct arena *a); /* frees everything */
void arena_free(struct arena *a); /* no accounting: cursor teardown */
/* A point in an arena to go back to (ar_rewind): what was taken after it
 * is given back, the chunks to the spare or the pool. */
struct ar_mark {
	struct arena_chunk *head;
	size_t used;
};
struct ar_mark ar_mark(const struct arena *a);
void ar_rewind(struct qctx *c, struct arena *a, struct ar_mark m);
/* Frees the pool's chunks and gives their charge back: before the charges
 * go elsewhere (check.c's folding charges no shared budget), so that a
 * chunk is given back where it was charged. */
void ar_pool_drain(struct qctx *c);
void ar_pool_free(struct qctx *c);         /* no accounting: cursor teardown */
void mem_charge(struct qctx *c, size_t n); /* raises LORA_EMEMORY */
/* mem_charge without raising: 0, or LORA_EMEMORY with msg set (nothing
 * charged) */
int mem_try_charge(struct qctx *c, size_t n, char *msg);
void mem_uncharge(struct qctx *c, size_t n);

/* ---- values ------------------------------------------------------------ */

enum vtype {
	V_NULL = 0,
	V_BOOL,
	V_INT,
	V_FLOAT,
	V_STR,
	V_LIST,
	V_MAP,
	V_NODE,
	V_REL,
	V_PATH,
	V_TEMPORAL,
	V_VECTOR,
	V_BYTES,
	V_POINT,
};

struct vstr {
	size_t len;
	char s[]; /* NUL-terminated */
};
struct val;
struct vlist {
	size_t n;
	struct val *v;
};
struct vmap {
	size_t n;
	const char **k;
	struct val *v;
};
struct vpath {
	size_t n;        /* relationships */
	uint64_t *nodes; /* n + 1 */
	uint64_t *rels;  /* n */
};
/* kind: Lora__TemporalKind */
struct vtemp {
	int kind;
	int32_t offset;              /* seconds east of UTC */
	int64_t days;                /* epoch days (dates) */
	int64_t nanos;               /* nanos of day (times) */
	const char *zone;            /* named zone or NULL */
	int64_t months, ddays, secs; /* durations */
	int64_t dnanos;
};
struct vvec {
	int ctype; /* Lora__VectorCoordType */
	uint32_t dim;
	double *d;
};

/* srid: 7203 cartesian, 9157 cartesian-3d, 4326 wgs-84, 4979 wgs-84-3d;
 * z is 0 in 2-D points (see point.c) */
struct vpoint {
	uint32_t srid;
	double x, y, z;
};

struct val {
	uint8_t t;
	union {
		int b;
		int64_t i;
		double f;
		struct vstr *s;
		struct vlist *l;
		struct vmap *m;
		uint64_t id;
		struct vpath *p;
		struct vtemp *tm;
		struct vvec *vec;
		struct vpoint *pt;
	} u;
};

static inline struct val v_null(void)
{
	struct val v = {0};
	return v;
}
static inline struct val v_bool(int b)
{
	struct val v = {.t = V_BOOL};
	v.u.b = !!b;
	return v;
}
static inline struct val v_int(int64_t i)
{
	struct val v = {.t = V_INT};
	v.u.i = i;
	return v;
}
static inline struct val v_float(double f)
{
	struct val v = {.t = V_FLOAT};
	v.u.f = f;
	return v;
}
static inline struct val v_node(uint64_t id)
{
	struct val v = {.t = V_NODE};
	v.u.id = id;
	return v;
}
static inline struct val v_rel(uint64_t id)
{
	struct val v = {.t = V_REL};
	v.u.id = id;
	return v;
}
struct val v_str(struct qctx *c, const char *s, size_t len);
struct val v_cstr(struct qctx *c, const char *s);
struct val v_list(struct qctx *c, size_t n);  /* n null items */
struct val v_map(struct qctx *c, size_t cap); /* empty, room for cap */
void vmap_put(struct qctx *c, struct vmap *m, const char *k, struct val v);
struct val *vmap_get(const struct vmap *m, const char *k);
int v_is_num(struct val v);
double v_num(struct val v);
const char *v_type_name(struct val v);

/* Cypher equality: 1 true, 0 false, -1 null (unknown). */
int v_eq(struct qctx *c, struct val a, struct val b);
/* Comparison for < <= > >=: sets *r (<0, 0, >0); returns 0 when the values
 * are not comparable (result null). */
int v_cmp(struct qctx *c, struct val a, struct val b, int *r);
/* Total order for ORDER BY (orderability, nulls last). */
int v_order(struct qctx *c, struct val a, struct val b);
/* Equivalence for DISTINCT / grouping (null ~ null). */
int v_equiv(struct qctx *c, struct val a, struct val b);
uint64_t v_hash(struct val v);
/* A deep copy into the current arena (ids of nodes and relationships are
 * values, not copied entities). LORA_ELIMIT past QRY_VALUE_DEPTH_MAX. */
struct val v_copy(struct qctx *c, struct val v);
struct val *row_copy_deep(struct qctx *c, const struct val *row);
/* LORA_ELIMIT when v nests lists and maps past QRY_VALUE_DEPTH_MAX; walks
 * at most that deep. */
void v_check_depth(struct qctx *c, struct val v);
/* TCK-style text: strings quoted, nodes (:L {k: v}), etc. */
void v_repr(struct qctx *c, struct val v, struct lora_buf *b);
/* toString text */
void v_tostring(struct qctx *c, struct val v, struct lora_buf *b);
void fmt_double(double d, struct lora_buf *b);
/*
 * Strings built with lora_buf inside a statement: qbuf() hands out the
 * statement's scratch buffer, emptied (one builder at a time: never while
 * another string is being built in it). It belongs to the statement, so an
 * error raised while building loses nothing. qbuf_str / qbuf_val copy the
 * result into the current arena, or raise the buffer's sticky error
 * (LORA_ENOMEM, LORA_ELIMIT) instead of using a truncated string.
 */
struct lora_buf *qbuf(struct qctx *c);
char *qbuf_str(struct qctx *c, struct lora_buf *b);
struct val qbuf_val(struct qctx *c, struct lora_buf *b);

/* ---- AST --------------------------------------------------------------- */

enum ekind {
	E_LIT,
	E_PARAM,
	E_VAR,
	E_PROP,
	E_INDEX,
	E_SLICE,
	E_LIST,
	E_MAP,
	E_NEG,
	E_POS,
	E_NOT,
	E_BIN, /* arithmetic: op */
	E_AND,
	E_OR,
	E_XOR,
	E_CMP, /* op: = <> < <= > >= */
	E_ISNULL,
	E_ISNOTNULL,
	E_IN,
	E_STARTS,
	E_ENDS,
	E_CONTAINS,
	E_REGEX,
	E_CALL,
	E_COUNTSTAR,
	E_CASE,
	E_LISTCOMP,
	E_QUANT, /* op: 'a'll 'y'any 'n'one 's'ingle */
	E_REDUCE,
	E_PATPRED,
	E_PATCOMP,
	E_EXISTS, /* EXISTS { subquery } */
	E_COUNTSUB,
	E_MAPPROJ,
	E_LABELS, /* n:A:B */
	E_AGGREF,
	E_STAR, /* internal */
};

struct pattern;
struct query;

/* a label expression (Neo4j 5) other than a plain conjunction */
enum { LX_LABEL, LX_ANY, LX_NOT, LX_AND, LX_OR };
struct lexpr {
	int op;
	const char *label; /* LX_LABEL */
	struct lexpr *a, *b;
};

struct mapproj_item {
	int kind; /* 0 k: expr, 1 .prop, 2 var, 3 .* */
	const char *key;
	struct expr *e;
};

struct expr {
	uint8_t kind;
	char op[3];
	uint8_t distinct;
	uint32_t line, col;
	int slot;         /* E_VAR, comprehension variable, E_AGGREF index */
	const char *name; /* var, param, function, property */
	const char *text; /* source text (column names) */
	struct val lit;
	struct expr *a, *b, *c, *d; /* operands; case: a=subject */
	struct expr **args;
	size_t nargs;
	struct expr **whens, **thens;
	size_t nwhen;
	struct pattern *pat;
	struct query *sub;
	struct mapproj_item *mp;
	size_t nmp;
	const char **labels; /* E_LABELS: all required, unless lx */
	size_t nlabels;
	struct lexpr *lx; /* E_LABELS: a label expression, or NULL */
	int fn;           /* function id after resolution */
};

enum dir { D_OUT = 1, D_IN = 2, D_BOTH = 3 };

struct pnode {
	const char *var;
	int slot;
	const char **labels; /* all required */
	size_t nlabels;
	struct lexpr *lx;   /* also required when not NULL (then nlabels 0) */
	struct expr *props; /* E_MAP or E_PARAM or NULL */
};
struct qpp;
/* varlen: 0 one hop, 1 *min..max, 2 a quantified path pattern (q) */
struct prel {
	const char *var;
	int slot;
	const char **types; /* any of */
	size_t ntypes;
	struct expr *props;
	int dir;
	int varlen;
	int64_t minh, maxh; /* maxh < 0: unbounded */
	struct qpp *q;
};
/* path modes and selectors (GQL / Neo4j 5) */
enum { PM_TRAIL = 0, PM_WALK, PM_ACYCLIC };
enum {
	SEL_NONE = 0,
	SEL_ANY,             /* ANY k */
	SEL_SHORTEST,        /* SHORTEST k, ANY SHORTEST (k 1) */
	SEL_ALL_SHORTEST,    /* ALL SHORTEST */
	SEL_SHORTEST_GROUPS, /* SHORTEST k GROUPS */
};
struct ppart {
	const char *pathvar;
	int pathslot;
	int shortest; /* 1 shortestPath, 2 allShortestPaths */
	int mode;     /* PM_* */
	int sel;      /* SEL_* */
	int64_t selk;
	struct pnode *nodes; /* nrels + 1 */
	struct prel *rels;
	size_t nrels;
};
struct pattern {
	struct ppart *parts;
	size_t nparts;
};
/* ((a)-[r]->(b) WHERE ...){min,max}: `inner` is matched once per
 * iteration with its variables in islot[] (one value each), and after the
 * last iteration gslot[] hold their values of every iteration as lists
 * (the group variables) */
struct qpp {
	struct ppart inner; /* fixed-length relationships only */
	struct expr *where;
	int *islot, *gslot;
	size_t nvars;
};

struct proj_item {
	struct expr *e;
	const char *name; /* alias or text */
	int slot;
	int has_agg;
};
struct sort_item {
	struct expr *e;
	int desc;
};
struct proj {
	int distinct;
	int star;
	struct proj_item *items;
	size_t nitems;
	struct sort_item *order;
	size_t norder;
	struct expr *skip, *limit, *where;
	/* aggregation, filled by the checker */
	struct expr **aggs;
	size_t naggs;
};

enum ckind {
	C_MATCH,
	C_OPTMATCH,
	C_UNWIND,
	C_WITH,
	C_RETURN,
	C_CREATE,
	C_MERGE,
	C_SET,
	C_REMOVE,
	C_DELETE,
	C_FOREACH,
	C_CALLPROC,
	C_CALLSUB,
	C_DDL,
	C_LOADCSV,
};

enum setkind { S_PROP, S_ASSIGN, S_MERGEMAP, S_LABELS, S_RM_PROP, S_RM_LABELS };
struct setitem {
	int kind;
	struct expr *target; /* S_PROP / S_RM_PROP: E_PROP; others: E_VAR */
	struct expr *value;
	const char **labels;
	size_t nlabels;
};

struct yield_item {
	const char *name; /* procedure output */
	const char *alias;
	int slot;
};

enum ddlkind {
	DDL_CREATE_INDEX,
	DDL_CREATE_UNIQUE,
	DDL_CREATE_VECTOR,
	DDL_CREATE_EXISTS,   /* REQUIRE n.p IS NOT NULL */
	DDL_CREATE_TYPE,     /* REQUIRE n.p IS :: TYPE */
	DDL_CREATE_NODE_KEY, /* REQUIRE (n.a, n.b) IS NODE KEY */
	DDL_CREATE_TEXT,     /* CREATE TEXT INDEX */
	DDL_DROP_INDEX,
	DDL_SHOW_INDEXES,
};
struct ddl {
	int kind;
	const char *name;
	const char *label;
	const char **props; /* one, or several for a composite index */
	size_t nprops;
	int if_not_exists, if_exists;
	int show_constraints; /* DDL_SHOW_INDEXES: SHOW CONSTRAINTS */
	int rel;              /* FOR ()-[r:TYPE]-(): a relationship index */
	const char *ptype;    /* DDL_CREATE_TYPE: "INTEGER", "LOCAL TIME"... */
	struct expr *options;
};

enum { QRY_TX_FAIL, QRY_TX_CONTINUE, QRY_TX_BREAK };

struct clause {
	int kind;
	uint32_t line, col;
	struct pattern *pat;
	struct expr *where;
	struct expr *e; /* UNWIND expr, FOREACH list */
	const char *var;
	int slot;
	struct proj *proj;
	struct setitem *sets;
	size_t nsets;
	struct setitem *on_create, *on_match;
	size_t non_create, non_match;
	struct expr **dels;
	size_t ndels;
	int detach;
	struct clause **body; /* FOREACH */
	size_t nbody;
	const char *proc;
	struct expr **pargs;
	size_t npargs;
	int implicit_args;
	struct yield_item *yields;
	size_t nyields;
	int yield_star;
	struct query *sub;
	struct ddl *ddl;
	int headers;    /* LOAD CSV WITH HEADERS */
	char fieldterm; /* LOAD CSV FIELDTERMINATOR, ',' by default */
	int line_slot;  /* LOAD CSV: hidden slots set per row, read by
	                 * linenumber() (line_slot) and file() (+1) */
	uint64_t prof_rows, prof_ns; /* PROFILE: rows out, time spent */
	/* CALL { } IN TRANSACTIONS: intx set, txrows the OF n ROWS count
	 * (NULL: QRY_TX_ROWS_DEFAULT); intx_top set by the checker on a
	 * top-level clause, the only place it is allowed */
	int intx, intx_top;
	struct expr *txrows;
	/* ON ERROR: QRY_TX_FAIL (also when not given), QRY_TX_CONTINUE or
	 * QRY_TX_BREAK; REPORT STATUS AS txstatus (NULL: none), bound by the
	 * checker to txstatus_slot */
	int txerr;
	const char *txstatus;
	int txstatus_slot;
	/* CALL (a, b) { }, CALL (*) { }, CALL () { }: the variables the
	 * subquery sees (scoped set; all when scope_all) */
	int scoped, scope_all;
	const char **scope_vars;
	size_t nscope;
};

/* one single query (a UNION branch) */
struct squery {
	struct clause **cl;
	size_t ncl;
};
struct query {
	struct squery **parts;
	size_t nparts;
	int union_all;
	/* after checking */
	const char **cols;
	int *colslots; /* per part: ncols slots, part-major */
	size_t ncols;
};

/* parse.c */
struct query *q_parse(struct qctx *c, const char *text, int *mode);
/* Nesting levels the parser entered, over every statement so far (a
 * measure of its work that tests compare with the statement's size). */
uint64_t q_parse_steps_total(void);
/* check.c: scopes and slots; sets c->nslots */
void q_check(struct qctx *c, struct query *q);
int q_is_write(struct query *q);
/* Whether any of the n clauses cl writes (a CALL subquery that writes
 * counts; SHOW INDEXES and procedure calls do not). */
int q_clauses_write(struct clause *const *cl, size_t n);
int q_fn_is_agg(const char *name);

/* ---- graph overlay ----------------------------------------------------- */

struct gnode {
	uint64_t id;
	const char **labels;
	size_t nlabels, caplabels;
	struct vmap *props; /* without vectors while vec_pending: use
	                     * g_node_props / g_node_prop */
	uint8_t deleted, created, touched;
	uint8_t vec_pending; /* vector properties not loaded yet */
	uint8_t transient;   /* g_node_read: in the current arena */
	uint32_t seen;       /* graph.c: stamp of the last overlay lookup */
};
struct gedge {
	uint64_t id, src, dst;
	const char *type;
	struct vmap *props;
	uint8_t deleted, created;
	uint8_t touched;   /* a property was written by the statement */
	uint8_t transient; /* g_edge_read: in the current arena */
};
/* Open addressing, key and value side by side: a probe's one cache line
 * holds both (a load's every row makes several lookups in maps of
 * 100,000s of entries, each a cache miss). */
struct hslot {
	uint64_t key; /* key + 1; 0: empty */
	void *val;
};
struct hmap {
	struct hslot *slots;
	size_t n, cap;
};
/* The value in slot i (i < cap), NULL when it is empty: for walks. */
static inline void *hm_at(const struct hmap *h, size_t i)
{
	return h->slots[i].key ? h->slots[i].val : NULL;
}
void *hm_get(const struct hmap *h, uint64_t k);
void hm_put(struct qctx *c, struct hmap *h, uint64_t k, void *v);
void hm_drop(struct qctx *c, struct hmap *h); /* frees and uncharges */
/* A zeroed map for a search, registered in c until hm_scratch_done
 * (which must come in reverse order of hm_scratch); hm_scratch_free_to
 * frees those above the first keep, as after a raise. */
struct hmap *hm_scratch(struct qctx *c);
void hm_scratch_done(struct qctx *c, struct hmap *h);
void hm_scratch_free_to(struct qctx *c, size_t keep);

struct adj {
	uint64_t edge, other;
	/* the relationship's type: interned, or in the arena of the walk
	 * when the relationship stayed out of the cache (g_cache_room) */
	const char *type;
	int outgoing;
};
struct idvec {
	uint64_t *v;
	size_t n, cap;
};
void idv_push(struct qctx *c, struct idvec *v, uint64_t x);
void idv_sort_unique(struct idvec *v); /* ascending, duplicates dropped */

struct graph {
	struct arena ar;          /* the cache: loaded nodes and edges */
	struct hmap nodes, edges; /* caches incl. overlay */
	/* node id -> struct idvec* of new edges, up to date once unlinked is
	 * empty */
	struct hmap created_adj;
	/* ids of the edges created (or laid) since created_adj was last
	 * brought up to date, in creation order: g_adjacent, created_adj's
	 * only reader, links them first (graph.c, link_pending) */
	struct idvec unlinked;
	struct idvec touched_nodes; /* created, relabelled, deleted or
	                             * property-written: see graph.c */
	uint64_t next_node, next_edge;
	int recording; /* 1: mutations go to the batch */
	Lora__Mutation **muts;
	size_t nmuts, capmuts;
	Lora__Mutation **dels; /* node deletions, emitted last */
	size_t ndels, capdels;
	struct idvec deleted_plain; /* DELETE without detach: checked at end */
	struct idvec written;       /* nodes whose properties were written */
	const char *interned[QRY_INTERN_MAX]; /* labels and types */
	int idx_loaded;                       /* index catalogue cache */
	const char **idx_label, **idx_key;
	size_t nidx;
	const char **ridx_type, **ridx_key; /* relationship indexes */
	size_t nridx;
	const char **tidx_label, **tidx_key; /* text indexes */
	size_t ntidx;
	int edges_written; /* the statement created, changed or deleted one */
	size_t ninterned;
	/* pending batches were left out (g_defer_pending): any read of the
	 * stored graph restarts the statement with them (need_pending) */
	int pending_deferred, need_pending;
	/* overlay index of touched nodes (graph.c): label hash -> idvec*,
	 * (label, indexed key, value) hash -> idvec*; entries may be stale
	 * and are checked on lookup, de-duplicated with gnode.seen == stamp */
	struct hmap ov_label, ov_value;
	/* (label, indexed key) hash -> struct ov_order*: the touched nodes'
	 * values of the pair in index order, for range and prefix seeks
	 * (graph.c ov_seek_range); sorted when a seek needs it */
	struct hmap ov_order;
	uint32_t stamp;
	/* ids an exact index seek found in the view and that were bound
	 * without loading them (exec.c, seek_only_ok): they exist in the
	 * view, so creating an edge to one needs no load (g_create_edge):
	 * page number -> a bitmap page in ar (graph.c, g_seen) */
	struct hmap seen;
	/* cost accounting: node entries examined by scans, index seeks and
	 * unique checks, stored and overlay alike */
	uint64_t ops;
	/* stored-index seeks and node records read from the view by this
	 * statement: added to the process-wide totals (g_index_seeks_total,
	 * g_loads_total) once, in g_release, not per row */
	uint64_t seeks, loads;
};

void g_init(struct qctx *c);
void g_apply_pending(struct qctx *c, const Lora__MutationBatch *b);
/* g_apply_pending in the graph cache's own arena (c->g.ar) */
void g_lay_pending(struct qctx *c, const Lora__MutationBatch *b);
/* Instead of laying the pending batches over the view, only moves the id
 * counters past them; 0 (nothing done) when they change the index
 * catalogue. A statement that then reads the stored graph (g_view) is
 * stopped and must be run again with the batches applied. */
int g_defer_pending(struct qctx *c, const Lora__MutationBatch *const *b,
                    size_t n);
/* The read view for reading the stored graph (see g_defer_pending). */
struct sto_view *g_view(struct qctx *c);
struct gnode *g_node(struct qctx *c, uint64_t id); /* NULL: missing */
void g_loading_free(struct qctx *c); /* frees c->loading, if any */
/* Whether a read may still add to the graph cache (graph.c). */
int g_cache_room(struct qctx *c);
/* For a read: the cache's entry, or while the cache has room a new one,
 * else the entity as the view holds it in the current arena (transient,
 * valid as long as that arena). NULL: missing. Writes use g_node /
 * g_edge, whose entries the statement may change. */
struct gnode *g_node_read(struct qctx *c, uint64_t id);
struct gedge *g_edge_read(struct qctx *c, uint64_t id);
/* whether node id exists for the statement (g_node_read that keeps
 * nothing past the cache's room) */
int g_node_exists(struct qctx *c, uint64_t id);
/* Past the cache's room, for a node it lacks: whether node id exists and
 * carries the n labels, read in place (nothing decoded, nothing kept);
 * -1 when the caller must read it (g_node_read) instead. */
int g_node_has_labels(struct qctx *c, uint64_t id, const char *const *labels,
                      size_t n);
/* Whether node id carries the n labels (or, with lx, satisfies it),
 * keeping nothing past the cache's room; with live, a node the
 * statement deleted does not fit. */
int g_node_fits(struct qctx *c, uint64_t id, const char *const *labels,
                size_t n, struct lexpr *lx, int live);
/* The outer part of CALL { } IN TRANSACTIONS (also a chunk's closing
 * checks, which keep nothing): every chunk gives the graph cache back,
 * so a value the outer part keeps must not point into it (v_copy). */
#define g_outer_intx(c) ((c)->intx && !(c)->in_chunk)
/* Records that id, absent from the cache, was found in the view */
void g_seen(struct qctx *c, uint64_t id);
/* g_node loads labels and scalar properties; vector properties are read
 * on demand. A node's whole property map (vectors included) and one
 * property (NULL when absent); both arena/cache-owned. */
struct vmap *g_node_props(struct qctx *c, struct gnode *n);
struct val *g_node_prop(struct qctx *c, struct gnode *n, const char *key);
struct gedge *g_edge(struct qctx *c, uint64_t id);
/* type and endpoints only (properties may not be loaded): the cache's
 * entry, or past its room a transient copy without properties in the
 * current arena (g_edge_read); NULL when the relationship is missing */
struct gedge *g_edge_shallow(struct qctx *c, uint64_t id);
int g_has_label(struct gnode *n, const char *l);
/* whether a node's labels (n) or a relationship's type (type) satisfy x */
int lx_match(struct lexpr *x, struct gnode *n, const char *type);
/* candidate node ids; label may be NULL */
void g_scan(struct qctx *c, const char *label, struct idvec *out);
/* One node's relationships (g_adjacent's) a slice at a time: up to max
 * into out, fewer only at the end (0: none left). The caller owns the
 * scan and closes it (g_adj_close); the statement's cursor closes what a
 * raise left open (g_adj_close_all, at teardown only). */
struct gadj;
struct gadj *g_adj_open(struct qctx *c, uint64_t node, int dir,
                        const char *type);
size_t g_adj_next(struct qctx *c, struct gadj *a, struct adj *out, size_t max);
void g_adj_close(struct qctx *c, struct gadj *a); /* a may be NULL */
void g_adj_close_all(struct qctx *c);
/* the same ids one at a time (graph.c: a dense label streams) */
struct gscan;
struct gscan *g_scan_open(struct qctx *c, const char *label);
int g_scan_next(struct qctx *c, struct gscan *s, uint64_t *id); /* 0: end */
int g_index_seek(struct qctx *c, const char *label, const char *key,
                 const struct val *lo, int lo_incl, const struct val *hi,
                 int hi_incl, struct idvec *out); /* 0 when no index */
void g_adjacent(struct qctx *c, uint64_t node, int dir, const char *type,
                struct adj **out, size_t *n);
uint64_t g_count_label(struct qctx *c, const char *label);
int g_has_index(struct qctx *c, const char *label, const char *key);
/* Nodes with label whose keys[k] equal vals[k] for every k < n, by a join
 * of the properties' index entries (storage's sto_view_index_join), plus
 * the statement's touched nodes with keys[0] equal to vals[0]: a superset
 * the caller filters. 0 when the index cannot answer (a key without index
 * entries, a value it cannot encode): seek otherwise. */
int g_index_join(struct qctx *c, const char *label, const char *const *keys,
                 const struct val *vals, size_t n, struct idvec *out);
/* Relationship property indexes on (type, key): whether one covers it,
 * and a seek as g_index_seek giving relationship ids. A seek returns 0
 * (scan instead) once the statement has written relationships: the
 * overlay indexes nodes only. */
int g_has_rel_index(struct qctx *c, const char *type, const char *key);
/* TEXT indexes on (label, key): whether one covers it, and the nodes that
 * may hold a string containing needle (stored ones from the index, plus
 * the statement's touched nodes with the property: a superset the caller
 * filters); 0 when no index or the needle is shorter than three bytes. */
int g_has_text_index(struct qctx *c, const char *label, const char *key);
int g_text_seek(struct qctx *c, const char *label, const char *key,
                const char *needle, size_t len, struct idvec *out);
int g_rel_index_seek(struct qctx *c, const char *type, const char *key,
                     const struct val *lo, int lo_incl, const struct val *hi,
                     int hi_incl, struct idvec *out);
/* writes */
uint64_t g_create_node(struct qctx *c, const char **labels, size_t nl,
                       struct vmap *props);
uint64_t g_create_edge(struct qctx *c, const char *type, uint64_t s, uint64_t d,
                       struct vmap *props);
void g_set_prop(struct qctx *c, int is_edge, uint64_t id, const char *k,
                struct val v);
void g_add_label(struct qctx *c, uint64_t id, const char *l);
void g_remove_label(struct qctx *c, uint64_t id, const char *l);
void g_delete_node(struct qctx *c, uint64_t id, int detach);
void g_delete_edge(struct qctx *c, uint64_t id);
void g_emit(struct qctx *c, Lora__Mutation *m);
void g_finish(struct qctx *c); /* checks dangling deletes, builds batch */
void g_release(struct graph *g);
/* Gives the graph cache, its maps (their memory uncharged) and its arena
 * back and starts an empty one; the counters go to the totals. */
void g_reset(struct qctx *c);
/* the ops of every statement released so far, process-wide (tests and
 * benchmarks diff it around a statement) */
uint64_t g_ops_total(void);
/* node records loaded from a view by every statement so far (tests) */
uint64_t g_loads_total(void);
/* equality and range seeks of the stored index made by every statement
 * so far, those the seek cache answered excluded (tests) */
uint64_t g_index_seeks_total(void);
/* After c->view moved on from the view at applied index `before` over
 * IN TRANSACTIONS chunks' batches bs (their entries idx, ascending, n of
 * them, perhaps none): keeps the seek cache when those entries are all it
 * moved over and they only created relationships, else drops it. */
void g_seek_cache_moved(struct qctx *c, const Lora__MutationBatch *const *bs,
                        const uint64_t *idx, size_t n, uint64_t before);
void g_seek_cache_free(struct qctx *c); /* frees and uncharges it */
/* conversions */
struct val val_from_pb(struct qctx *c, const Lora__Value *v);
Lora__Value *val_to_pb(struct qctx *c, struct val v);

/* ---- execution context ------------------------------------------------- */

struct rows {
	struct val **r;
	size_t n, cap;
};

struct proc_table;

/* A chunk proposed and not yet landed: its batch (a copy in its own
 * arena), laid over the view for the chunks that run meanwhile while the
 * view does not see its entry yet, and its input rows. */
struct intx_fly {
	Lora__MutationBatch *b;
	struct lora_pb_arena ar; /* b's pieces, freed whole */
	uint64_t index;          /* its log entry */
	uint64_t rows;
	size_t bytes; /* what its copy is charged */
};

struct qctx {
	jmp_buf jb;
	struct qry_error *err;
	struct arena keep; /* lives as long as the statement */
	struct arena *cur; /* where ar_alloc takes from */
	/* the operators of subqueries run per input row in a write (pipe.c
	 * exec_query), given back when each run ends */
	struct arena ops;
	/* standard chunks given back by arenas, still charged (value.c) */
	struct arena_chunk *pool;
	unsigned npool;
	int keep_all;       /* never reset an arena (writes, PROFILE) */
	int eager;          /* a write: each clause drains before the next */
	uint64_t mem_bytes; /* charged now */
	uint64_t mem_peak;
	uint32_t tick;         /* q_tick_every counter */
	struct sto_iter *iter; /* open while a scan copies ids out */
	struct gadj *adjs;     /* stepped adjacency scans open (graph.c) */
	/* a node or relationship record from storage while it is converted,
	 * into the graph cache or a row's arena (graph.c gnode_of,
	 * load_vectors, edge_load, edge_transient): freed by the cursor when
	 * the conversion raises (the memory limit), or by the next load */
	ProtobufCMessage *loading;
	struct sto_group *iter_groups; /* pipe.c: while groups are counted */
	struct sto_view *view;
	struct graph g;
	struct vmap *params;
	/* check.c: every parameter the statement names must be given (not
	 * for EXPLAIN, which evaluates none) */
	int params_required;
	/* the parameters being converted (vec_from_pb checks their
	 * vectors; stored ones stay readable as they were written) */
	int pb_params;
	/* the statement's own query (query.c): its leading clauses that
	 * read no graph run without Eager steps (pipe.c, graph_free) */
	struct query *stmt;
	/* vector.c: the doubles of the parameter list last used as a vector */
	const struct vlist *vparam;
	double *vparam_d;
	uint32_t vparam_dim;
	int vparam_dot_ok; /* vparam_dot is its dot product with itself */
	double vparam_dot;
	struct qry_limits lim;
	uint64_t deadline_ms;
	uint64_t gone_check_ms; /* lim.gone is asked again from then on */
	uint64_t rows_made;
	int depth;
	int nslots;
	int csv_slot1; /* check: 1 + line_slot of the LOAD CSV clause checked
	                * last (linenumber(), file()), 0: none yet */
	uint8_t *slotkind; /* check.c: static kind per slot */
	size_t nslotkind;
	int standalone;      /* check.c: clause is alone in its query */
	int in_where;        /* check.c: resolving a WHERE predicate */
	int profiling;       /* plan nodes get rows and time_ns */
	uint64_t expansions; /* QRY_PATH_EXPANSIONS_MAX */
	/* the hash maps of the shortest path searches running now
	 * (hm_scratch): a raise through a search leaves them here, and the
	 * cursor (or a chunk that ON ERROR rolls back) frees them */
	struct hmap *scratch[QRY_SCRATCH_MAPS_MAX];
	size_t nscratch;
	int timing;             /* PROFILE: operators measure their time */
	uint64_t prof_inner_ns; /* pipe.c: time spent in inputs */
	int is_write;
	int read_only;
	const char *text;
	/* aggregation context: values of E_AGGREF while projecting a group */
	struct val *aggvals;
	int64_t stmt_time_ms; /* statement clock for now-functions */
	uint64_t rand_state;
	const char *import_dir; /* LOAD CSV's root; NULL: refused */
	struct csv_src *files;  /* LOAD CSV files open now (load.c) */
	/* the IN TRANSACTIONS chunk running now, numbered from 1 in the
	 * statement (0: none); a file opened in it carries that number */
	uint64_t chunk_no;
	struct lora_buf sbuf; /* qbuf(): freed with the statement */
	/* CALL { } IN TRANSACTIONS (pipe.c): the statement has one (check.c
	 * sets it), the request's commit callback, and what committed so far */
	int intx;
	/* set while a chunk's subquery runs (pipe.c intx_body): what it
	 * opens is read and done with before the chunk commits and the view
	 * moves, unlike the outer query's cursors */
	int in_chunk;
	int (*commit_chunk)(void *arg, const Lora__MutationBatch *b,
	                    struct sto_view **new_view, struct qry_error *err);
	int (*propose_chunk)(void *arg, const Lora__MutationBatch *b,
	                     const uint8_t *packed, size_t packed_len,
	                     struct sto_view **new_view, uint64_t *index,
	                     struct qry_error *err);
	int (*wait_chunk)(void *arg, struct sto_view **new_view, int *landed,
	                  struct qry_error *err);
	void *commit_arg;
	/* the chunks proposed and not yet landed (query.h's propose_chunk),
	 * oldest first: QRY_CHUNKS_IN_FLIGHT at most */
	struct intx_fly tx_fly[QRY_CHUNKS_IN_FLIGHT];
	size_t tx_nfly, tx_fly_head;
	uint64_t tx_rows, tx_chunks;
	/* chunks landed without a known outcome, and their input rows:
	 * committed after all once a later chunk lands (intx_land) */
	uint64_t tx_unk_rows, tx_unk_chunks;
	/* IN TRANSACTIONS chunks run so far (their numbers: chunk_no) and
	 * those that failed under ON ERROR CONTINUE | BREAK */
	uint64_t tx_started, tx_failed;
	int tx_said; /* the error being raised already says what committed */
	size_t batch_bytes_max; /* query.h; 0: none */
	/* graph.c's seek cache (IN TRANSACTIONS statements): the stored nodes
	 * an equality seek found, by (label, key, integer or string value),
	 * for the view at applied index sc_applied; kept over a chunk commit
	 * that only created relationships, dropped on anything else.
	 * Entries (lora_malloc) are charged (sc_bytes) and freed with the
	 * statement (g_seek_cache_free). */
	struct hmap sc_map;
	uint64_t sc_applied;
	size_t sc_bytes, sc_peak; /* held now, most held (entries) */
};

_Noreturn void qerr(struct qctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void qerr_at(struct qctx *c, int code, uint32_t line, uint32_t col,
                       const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A storage error rv while doing `what`: the message carries RocksDB's own
 * text when there is one (sto_last_error). */
_Noreturn void qerr_sto(struct qctx *c, int rv, const char *what);
/* the deadline check; also asks lim.gone every QRY_GONE_CHECK_MS */
void q_tick(struct qctx *c);
/* deadline check every 4,096 calls: for loops inside one expression */
static inline void q_tick_every(struct qctx *c)
{
	if ((++c->tick & 4095) == 0)
		q_tick(c);
}

/* eval.c */
struct val eval(struct qctx *c, struct expr *e, struct val *row);
int eval_pred(struct qctx *c, struct expr *e, struct val *row); /* -1/0/1 */
struct val prop_of(struct qctx *c, struct val v, const char *k);
/* The property map of node or relationship v for a read (NULL: none);
 * LORA_ENOTFOUND DeletedEntityAccess when it is gone */
struct vmap *entity_props(struct qctx *c, struct val v);
struct val arith(struct qctx *c, char op, struct val a, struct val b);

/* functions.c */
int fn_lookup(const char *name); /* -1 unknown */
int fn_arity_ok(int fn, size_t n);
struct val fn_call(struct qctx *c, int fn, const char *name, struct val *args,
                   size_t n);

/* temporal.c */
struct val tm_construct(struct qctx *c, int kind, struct val *args, size_t n,
                        const char *variant);
int tm_has_fn(const char *name);
struct val tm_prop(struct qctx *c, struct vtemp *t, const char *k, int *ok);
struct val tm_arith(struct qctx *c, char op, struct val a, struct val b,
                    int *ok);
int tm_cmp(struct vtemp *a, struct vtemp *b, int *r);
void tm_format(struct vtemp *t, struct lora_buf *b);
struct val tm_fn(struct qctx *c, const char *name, struct val *args, size_t n,
                 int *ok);

/* exec.c: pattern matching and aggregation state */
void rows_push(struct qctx *c, struct rows *r, struct val *row);
struct val *row_copy(struct qctx *c, const struct val *row);
void match_pattern(struct qctx *c, struct pattern *p, struct expr *where,
                   struct val *row, struct rows *out);
/* Matching stepped one start candidate at a time: match_open binds
 * nothing yet (row is the cursor's own copy, in the current arena);
 * match_step appends the rows of the next candidate (in a read whose
 * first expansion is one plain relationship, of the next slice of the
 * start node's relationships: MATCH_HOP_SLICE) to out and returns 0 when
 * there is none left. */
struct mcursor;
struct mcursor *match_open(struct qctx *c, struct pattern *p,
                           struct expr *where, struct val *row);
int match_step(struct qctx *c, struct mcursor *mc, struct rows *out);
/* closes what a cursor left open (a start node's relationships being
 * walked), when its operator is released before the cursor's end */
void match_close(struct qctx *c, struct mcursor *mc);
struct aggst {
	int64_t cnt;
	int64_t isum;
	double fsum;
	int is_float, has;
	struct val best;
	struct rows vals; /* collect / percentiles / stdev / distinct */
};
/* adds row's argument to s; values it keeps are copied into `keep` */
void agg_add(struct qctx *c, struct expr *a, struct aggst *s, struct val *row,
             struct arena *keep);
struct val agg_result(struct qctx *c, struct expr *a, struct aggst *s);

/* pipe.c: the executor (see the essay at its top) */
/* Runs q over the rows `in` and appends at most max_rows result rows to
 * out, copied into the current arena. */
void exec_query(struct qctx *c, struct query *q, struct rows *in,
                struct rows *out, size_t max_rows);
/* A statement's pipeline: pipe_next returns the next row (valid until the
 * next call) or NULL at the end. */
struct pipe;
struct pipe *pipe_open(struct qctx *c, struct query *q);
struct val *pipe_next(struct qctx *c, struct pipe *p);
void pipe_close(struct qctx *c, struct pipe *p);
/* An error of a CALL { ... } IN TRANSACTIONS statement raised outside its
 * chunks and their input (the statement's own pull, where the time limit
 * may run out): the chunks in flight are landed and the error raised again
 * with what committed. Only after a chunk started, and never twice. */
_Noreturn void intx_fail(struct qctx *c, int code);

/* seek.c: an index-usable predicate on one property of a node pattern.
 * Bounds point into the statement's expressions (not owned). The seek
 * only narrows candidates: the whole WHERE is still applied afterwards. */
/* SEEK_BBOX: point.withinBBox(n.p, lo, hi); SEEK_DIST: point.distance(
 * n.p, lo) < hi (or <=) */
enum {
	SEEK_EQ,
	SEEK_RANGE,
	SEEK_PREFIX,
	SEEK_IN,
	SEEK_BBOX,
	SEEK_DIST,
	SEEK_CONTAINS, /* a text index's */
	SEEK_ENDS,
};
#define SEEK_SPECS_MAX 8  /* specs considered per node pattern */
#define SEEK_DEPTH_MAX 64 /* AND nesting walked for conjuncts */
struct seekspec {
	const char *key;
	int kind;
	struct expr *lo, *hi; /* EQ, IN (the list) and PREFIX: lo == hi;
	                       * RANGE: NULL = open */
	int lo_incl, hi_incl;
	/* set by seek_run for an equality seek it served: the value sought
	 * (so the caller can tell whether the index match is Cypher's) */
	int has_eqv;
	struct val eqv;
	int rel; /* a relationship's property: the relationship indexes */
	/* set by seek_has_index / seek_run: a PREFIX spec served by a text
	 * index (no range index on the pair) */
	int text;
};
/* id(n) = v, v = id(n) or id(n) IN v among where's conjuncts for the node
 * pn, v fixed before p is matched: v (*in set for IN), else NULL */
struct expr *seek_id_spec(const struct pattern *p, const struct pnode *pn,
                          struct expr *where, int *in);
/* The nodes v names on row, ascending and each once: an id, or a list of
 * them for IN; ids of no node, and values that are no id, name none. 0
 * when v raises an evaluation error (the caller scans instead, and the
 * predicate raises or not exactly as without the seek). */
int seek_by_id(struct qctx *c, struct expr *v, int in, struct val *row,
               struct idvec *out);
/* specs for pn in pattern p (values must not read what p binds) */
int seek_specs(const struct pattern *p, struct pnode *pn, struct expr *where,
               struct seekspec *s, int n);
/* the same for relationship r (fixed length, one type, a fresh variable;
 * 0 specs otherwise); seek_run then takes r's type for label and finds
 * relationships */
int seek_rel_specs(const struct pattern *p, struct prel *r, struct expr *where,
                   struct seekspec *s, int n);
/* A relationship of part pp (of pattern pat) whose index serves one of
 * its predicates better (a lower seek_rank) than any node index of the
 * part does, with that spec in *out; -1 when there is none. The caller
 * checks first that no node of the part is bound. */
int seek_pick_rel(struct qctx *c, const struct pattern *pat, struct ppart *pp,
                  struct expr *where, struct seekspec *out);
/* preference: 0 equality, 1 IN list, 2 range or prefix (SEEK_RANKS) */
#define SEEK_RANKS 3
int seek_rank(const struct seekspec *s);
/* whether an index on label (a type for a relationship spec) can serve s:
 * a range index, or a text index for CONTAINS / ENDS WITH, and for STARTS
 * WITH with a needle of three bytes or more when no range index can */
int seek_has_index(struct qctx *c, const char *label, struct seekspec *s);
int seek_run(struct qctx *c, const char *label, struct seekspec *s,
             struct val *row, struct idvec *out);
/* Whether the ids seek_run found for s are exactly the stored nodes pn
 * matches: pn has one label (the index's), no label expression, and a
 * property map of one key whose value s sought by equality, and that value
 * is a boolean, string or integer within 2^53, for which the index's
 * equality is Cypher's. Nodes the statement touched are not covered. */
int seek_exact(const struct pnode *pn, const struct seekspec *s);
/* a label expression as a union of label scans: labels of which every
 * matching node has one (written to out, LX_UNION_MAX entries), or -1 */
#define LX_UNION_MAX 16
int lx_union_labels(struct lexpr *x, const char **out);
/* ids of nodes with any of labels, sorted and without duplicates */
void scan_union(struct qctx *c, const char **labels, int n, struct idvec *out);
/* whether a seek may serve s: range literals must be numbers or strings */
int seek_plannable(struct seekspec *s);
void seek_explain(const char *label, struct seekspec *s, struct lora_buf *b);

/* write.c */
void exec_create(struct qctx *c, struct clause *cl, struct rows *in,
                 struct rows *out);
void exec_merge(struct qctx *c, struct clause *cl, struct rows *in,
                struct rows *out);
void exec_set(struct qctx *c, struct setitem *s, size_t n, struct val *row);
void exec_delete(struct qctx *c, struct clause *cl, struct val *row);
void exec_ddl(struct qctx *c, struct clause *cl, struct rows *out);
void check_unique(struct qctx *c);
void check_constraints(struct qctx *c);

/* query.c: LORA_ELIMIT when b packs to more than c->batch_bytes_max; what
 * says how to make it smaller */
void q_check_batch_size(struct qctx *c, const Lora__MutationBatch *b,
                        const char *what);
/* The same for a batch whose packed size (len) is already known. */
void q_check_batch_len(struct qctx *c, const Lora__MutationBatch *b, size_t len,
                       const char *what);

/* procs.c */
void exec_callproc(struct qctx *c, struct clause *cl, struct rows *in,
                   struct rows *out);
int proc_exists(const char *name);
size_t proc_outputs(const char *name, const char ***names);
int proc_inputs(const char *name); /* -1 unknown */

/* load.c: LOAD CSV's files. load_open resolves a file:// URL inside
 * c->import_dir (LORA_EINVAL outside it, LORA_ENOTFOUND missing), opens
 * the file, reads the header record when asked to, and lists the source
 * in c->files; header names go to the current arena. load_next puts the
 * next record in *out (a list of strings, or a map by header) in the
 * current arena and its first line in *line; 0 at the end. load_close
 * closes one source; load_close_all every one still open (teardown). */
struct csv_src;
struct csv_src *load_open(struct qctx *c, struct val url, int headers,
                          char term);
int load_next(struct qctx *c, struct csv_src *s, struct val *out,
              uint64_t *line);
const char *load_name(struct csv_src *s);
/* the file's absolute real path (file()); valid while s is open */
const char *load_path(struct csv_src *s);
void load_close(struct qctx *c, struct csv_src *s);
void load_close_all(struct qctx *c);
/* closes the files opened in IN TRANSACTIONS chunk chunk_no (a chunk
 * that failed under ON ERROR CONTINUE or BREAK) */
void load_close_chunk(struct qctx *c, uint64_t chunk_no);

/* vector.c */
struct val vec_fn(struct qctx *c, const char *name, struct val *args, size_t n,
                  int *ok);
/* The metric a vector_distance or vector_norm keyword names
 * (case-insensitive: EUCLIDEAN, EUCLIDEAN_SQUARED, COSINE, DOT,
 * MANHATTAN), or -1. */
int qry_vector_metric(const char *name);
/* The coordinate type a vector() keyword names (FLOAT64 0, FLOAT32 1,
 * INTEGER64 2 ... INTEGER8 5, also FLOAT, INTEGER, INT, INT64 ... INT8),
 * or -1. */
int qry_vector_coord_type(const char *name);
/* Coordinate i of a vector of coordinate type ct as the vector holds it
 * (a FLOAT32 rounded, an integer truncated toward zero); raises
 * LORA_EVECTOR for NaN, Infinity and a value outside the type's range. */
double vec_coord(struct qctx *c, int ct, uint32_t i, double x);
/* 2^(b-1) for integer coordinate type ct of b bits (2..5): its
 * coordinates x have -top <= x < top. */
double vec_coord_top(int ct);
const char *vec_coord_name(int ct);
/* db.index.vector.queryNodes (rel 0) or queryRelationships (rel 1)
 * (index, k, q [, {ef, exact}]): opts is null when the call has three
 * arguments */
void vec_query(struct qctx *c, int rel, const char *index, int64_t k,
               struct val q, struct val opts, struct val *row,
               struct clause *cl, struct rows *out);

/* The doubles of a list of numbers or a vector (NULL for another value;
 * LORA_EVECTOR for a list with other items or longer than the limit), and
 * the dot product with the summation order vector.similarity.* uses:
 * four running sums, s_j over coordinates i = j (mod 4) and the tail in
 * s0, added as s0 + s1 + s2 + s3. */
double *vec_coords(struct qctx *c, struct val v, uint32_t *dim);
double vec_dot(const double *a, const double *b, uint32_t n);

/* vecorder.c: MATCH (n:L) [WHERE ...] WITH|RETURN ... ORDER BY
 * vector.similarity.cosine|euclidean(n.p, q) [ASC|DESC][, ...] [SKIP s]
 * LIMIT k, with q fixed by the input row: the candidates picked from
 * storage's float32 column instead of a sort of every node (the
 * VectorTopK operator). vto_plan fills *out when clause i of s is such a
 * MATCH (the next clause the projection); vto_pick then gives, for one
 * input row, the rows the MATCH would give that the projection can keep,
 * in the MATCH's order, or returns 0 when the rewrite cannot answer (the
 * caller matches as usual). Scratch goes to `tmp`; the rows to the
 * current arena. vto_explain describes the operator. */
struct vto {
	struct clause *cl; /* the MATCH */
	struct proj *pr;   /* the projection after it */
	struct pnode *pn;  /* (n:L) */
	const char *label, *key;
	int euclid;        /* 0 cosine, 1 euclidean */
	struct expr *sim;  /* the similarity call */
	struct expr *qarg; /* its row-constant argument */
	int projected;     /* sim is read on the projected row */
	int desc, ties;    /* ties: more ORDER BY keys follow */
};
int vto_plan(struct qctx *c, struct squery *s, size_t i, struct vto *out);
int vto_pick(struct qctx *c, const struct vto *v, struct val *in,
             struct arena *tmp, struct rows *out);
void vto_explain(const struct vto *v, struct lora_buf *b);
/* input rows vto_pick answered, process-wide (tests diff it) */
uint64_t vto_answers_total(void);

/* pipe.c: `MATCH (n[:L]) RETURN count(n)` and `MATCH ()-[r[:T]]->()
 * RETURN count(r)` answered from storage's counts (NodeCountFromCountStore,
 * RelationshipCountFromCountStore; the shape above cnt_plan). cnt_plan gives 1
 * (nodes) or 2 (relationships) when clause i of s is such a MATCH, the
 * label or type in *name (NULL: all); 0 otherwise. */
int cnt_plan(const struct squery *s, size_t i, const char **name);
/* statements cnt_plan answered, process-wide (tests diff it) */
uint64_t cnt_answers_total(void);

/* point.c: spatial points (see its header comment) */
#define PT_SRID_CARTESIAN    7203u
#define PT_SRID_CARTESIAN_3D 9157u
#define PT_SRID_WGS84        4326u
#define PT_SRID_WGS84_3D     4979u
int pt_dim(uint32_t srid); /* 2 or 3 */
int pt_geographic(uint32_t srid);
int pt_srid_known(uint32_t srid);
const char *pt_crs_name(uint32_t srid); /* static string */
/* WGS-84: a finite longitude and a latitude in [-90, 90], else error
 * `code` (LORA_EINVAL for point(), LORA_EPARAMS for a parameter) */
void pt_check(struct qctx *c, int code, uint32_t srid, double x, double y);
struct val v_point(struct qctx *c, uint32_t srid, double x, double y, double z);
struct val pt_construct(struct qctx *c, struct val map);
struct val pt_prop(struct qctx *c, const struct vpoint *p, const char *k,
                   int *ok);
int pt_eq(const struct vpoint *a, const struct vpoint *b);
int pt_order(const struct vpoint *a, const struct vpoint *b);
uint64_t pt_hash(const struct vpoint *p);
void pt_format(const struct vpoint *p, struct lora_buf *b);
double pt_distance(const struct vpoint *a, const struct vpoint *b);
int pt_within_bbox(const struct vpoint *p, const struct vpoint *lo,
                   const struct vpoint *hi);
int pt_has_fn(const char *name);
/* corners of a box holding every point within distance r of centre (a
 * superset); 0 when no single box does (the circle crosses the 180th
 * meridian or reaches a pole) */
int pt_circle_box(const struct vpoint *centre, double r, struct vpoint *lo,
                  struct vpoint *hi);
struct val pt_fn(struct qctx *c, const char *name, struct val *args, size_t n,
                 int *ok);

#endif /* LORA_QINT_H */
