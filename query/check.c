/* check.c - semantic pass: variable scopes, row slots, aggregation
 * extraction and the compile-time errors openCypher defines. */
#include <string.h>
#include <strings.h>

#include "qint.h"

enum vkind {
	K_ANY = 0,
	K_NODE,
	K_REL,
	K_PATH,
	K_VALUE, /* anything but a graph entity */
	K_INT,
	K_FLOAT,
	K_STR,
	K_BOOL,
	K_LIST,
	K_MAP,
	K_NULL,
};

static void set_slotkind(struct qctx *c, int slot, int kind)
{
	if ((size_t)slot >= c->nslotkind) {
		size_t n = (size_t)slot * 2 + 64;
		uint8_t *k = ar_alloc(c, n);
		if (c->nslotkind)
			memcpy(k, c->slotkind, c->nslotkind);
		c->slotkind = k;
		c->nslotkind = n;
	}
	c->slotkind[slot] = (uint8_t)kind;
}

struct scope {
	const char **names;
	int *slots;
	uint8_t *kinds;
	size_t n, cap;
};

static struct scope *sc_new(struct qctx *c, const struct scope *from)
{
	struct scope *s = ar_alloc(c, sizeof(*s));
	size_t cap = (from ? from->n : 0) + 8;
	s->names = ar_alloc(c, sizeof(char *) * cap);
	s->slots = ar_alloc(c, sizeof(int) * cap);
	s->kinds = ar_alloc(c, cap);
	s->cap = cap;
	/* an empty scope may have no arrays (SKIP and LIMIT are checked in
	 * one): memcpy from NULL is undefined even for 0 bytes */
	if (from && from->n) {
		memcpy(s->names, from->names, sizeof(char *) * from->n);
		memcpy(s->slots, from->slots, sizeof(int) * from->n);
		memcpy(s->kinds, from->kinds, from->n);
		s->n = from->n;
	}
	return s;
}

static int sc_find(const struct scope *s, const char *name)
{
	for (size_t i = s->n; i-- > 0;)
		if (strcmp(s->names[i], name) == 0)
			return (int)i;
	return -1;
}

static int sc_bind(struct qctx *c, struct scope *s, const char *name, int kind)
{
	int slot = c->nslots++;
	set_slotkind(c, slot, kind);
	int i = sc_find(s, name);
	if (i >= 0) {
		s->slots[i] = slot;
		s->kinds[i] = (uint8_t)kind;
		return slot;
	}
	if (s->n == s->cap) {
		struct scope *n = sc_new(c, s);
		*s = *n;
	}
	s->names[s->n] = name;
	s->slots[s->n] = slot;
	s->kinds[s->n] = (uint8_t)kind;
	s->n++;
	return slot;
}

static const char *agg_names[] = {"count",
                                  "sum",
                                  "avg",
                                  "min",
                                  "max",
                                  "collect",
                                  "percentileDisc",
                                  "percentileCont",
                                  "stDev",
                                  "stDevP",
                                  NULL};

int q_fn_is_agg(const char *name)
{
	for (int i = 0; agg_names[i]; i++)
		if (strcasecmp(name, agg_names[i]) == 0)
			return 1;
	return 0;
}

struct aggctx {
	struct proj *pr; /* NULL: aggregates not allowed here */
	int inside;      /* inside an aggregate's arguments */
};

static void resolve(struct qctx *c, struct expr *e, struct scope *s,
                    struct aggctx *ag);
static void check_pattern(struct qctx *c, struct pattern *p, struct scope *s,
                          int mode);
static struct scope *check_single(struct qctx *c, struct squery *q,
                                  struct scope *in, struct query *whole,
                                  size_t part);

static struct scope *call_scope(struct qctx *c, struct clause *cl,
                                struct scope *s);

static void push_agg(struct qctx *c, struct proj *pr, struct expr *e)
{
	struct expr *copy = ar_alloc(c, sizeof(*copy));
	*copy = *e;
	struct expr **n = ar_alloc(c, sizeof(*n) * (pr->naggs + 1));
	if (pr->naggs)
		memcpy(n, pr->aggs, sizeof(*n) * pr->naggs);
	n[pr->naggs] = copy;
	e->kind = E_AGGREF;
	e->slot = (int)pr->naggs;
	pr->aggs = n;
	pr->naggs++;
}

/* ---- static types and constant folding --------------------------------- */

static int kind_of_val(struct val v)
{
	switch (v.t) {
	case V_NULL:
		return K_NULL;
	case V_INT:
		return K_INT;
	case V_FLOAT:
		return K_FLOAT;
	case V_STR:
		return K_STR;
	case V_BOOL:
		return K_BOOL;
	case V_LIST:
		return K_LIST;
	case V_MAP:
		return K_MAP;
	default:
		return K_VALUE;
	}
}

static int stype(struct qctx *c, struct expr *e)
{
	switch (e->kind) {
	case E_LIT:
		return kind_of_val(e->lit);
	case E_VAR:
		return e->slot >= 0 && (size_t)e->slot < c->nslotkind
		           ? c->slotkind[e->slot]
		           : K_ANY;
	case E_LIST:
	case E_LISTCOMP:
	case E_PATCOMP:
		return K_LIST;
	case E_MAP:
	case E_MAPPROJ:
		return K_MAP;
	case E_CMP:
	case E_AND:
	case E_OR:
	case E_XOR:
	case E_NOT:
	case E_ISNULL:
	case E_ISNOTNULL:
	case E_IN:
	case E_STARTS:
	case E_ENDS:
	case E_CONTAINS:
	case E_REGEX:
	case E_QUANT:
	case E_EXISTS:
	case E_LABELS:
		return K_BOOL;
	case E_PATPRED:
		return e->op[0] == 's' ? K_ANY : K_BOOL;
	case E_COUNTSUB:
		return K_INT;
	case E_BIN:
	case E_NEG:
	case E_POS:
		return K_VALUE;
	default:
		return K_ANY;
	}
}

static int is_entity_kind(int k)
{
	return k == K_NODE || k == K_REL || k == K_PATH;
}

static _Noreturn void type_err(struct qctx *c, struct expr *e, const char *what)
{
	qerr_at(c, LORA_ESEMANTIC, e->line, e->col, "InvalidArgumentType: %s",
	        what);
}

/* argument kinds a function cannot take, checked when known statically */
static void check_fn_args(struct qctx *c, struct expr *e)
{
	if (e->nargs != 1)
		return;
	int k = stype(c, e->args[0]);
	const char *n = e->name;
	if (k == K_ANY || k == K_NULL)
		return;
	if (!strcasecmp(n, "labels") && k != K_NODE)
		type_err(c, e, "labels() needs a node");
	if ((!strcasecmp(n, "properties") || !strcasecmp(n, "keys")) &&
	    k != K_NODE && k != K_REL && k != K_MAP)
		type_err(c, e,
		         "properties() needs a node, relationship or map");
	if (!strcasecmp(n, "length") && k != K_PATH && k != K_STR &&
	    k != K_VALUE)
		type_err(c, e, "length() needs a path");
	if (!strcasecmp(n, "size") &&
	    (is_entity_kind(k) || k == K_INT || k == K_FLOAT || k == K_BOOL ||
	     k == K_MAP))
		type_err(c, e, "size() needs a list or a string");
	if (!strcasecmp(n, "type") && k != K_REL && k != K_VALUE)
		type_err(c, e, "type() needs a relationship");
}

struct fold {
	int *locals;
	size_t n;
};

static int is_const(struct expr *e, struct fold *f)
{
	if (!e)
		return 1;
	switch (e->kind) {
	case E_LIT:
	case E_PARAM:
		return 1;
	case E_VAR:
		for (size_t i = 0; i < f->n; i++)
			if (f->locals[i] == e->slot)
				return 1;
		return 0;
	case E_PATPRED:
	case E_PATCOMP:
	case E_EXISTS:
	case E_COUNTSUB:
	case E_AGGREF:
	case E_COUNTSTAR:
	case E_MAPPROJ:
		return 0;
	case E_CALL:
		if (e->fn < 0)
			return 0;
		break;
	case E_LISTCOMP:
	case E_QUANT:
	case E_REDUCE:
		if (f->n < 16) {
			f->locals[f->n++] = e->slot;
			if (e->d)
				f->locals[f->n++] = e->d->slot;
		}
		break;
	default:
		break;
	}
	if (!is_const(e->a, f) || !is_const(e->b, f) || !is_const(e->c, f))
		return 0;
	if (e->kind != E_REDUCE && !is_const(e->d, f))
		return 0;
	for (size_t i = 0; i < e->nargs; i++)
		if (!is_const(e->args[i], f))
			return 0;
	for (size_t i = 0; i < e->nwhen; i++)
		if (!is_const(e->whens[i], f) || !is_const(e->thens[i], f))
			return 0;
	return 1;
}

struct fold_args {
	struct qctx *c;
	struct expr *e;
};

static void fold_thunk(void *p)
{
	struct fold_args *a = p;
	struct val *row =
	    ar_alloc(a->c, sizeof(struct val) * (size_t)(a->c->nslots + 1));
	eval(a->c, a->e, row);
}

/* Type errors in constant expressions are compile-time errors. */
static void fold_check(struct qctx *c, struct expr *e)
{
	int locals[20];
	struct fold f = {locals, 0};
	if (!e || e->kind == E_LIT || !is_const(e, &f))
		return;
	jmp_buf save;
	memcpy(save, c->jb, sizeof save);
	struct qry_error tmp, *keep = c->err;
	memset(&tmp, 0, sizeof tmp);
	c->err = &tmp;
	struct fold_args a = {c, e};
	int code = 0;
	/* evaluated in a scratch arena, given back at once, with at most
	 * QRY_FOLD_BYTES_MAX of memory and none of the shared budget: a big
	 * constant (range(1, 100000000)) is left to run time */
	struct qry_limits lim = c->lim;
	ar_pool_drain(c);
	c->lim.shared = NULL;
	c->lim.mem_bytes_max = c->mem_bytes + QRY_FOLD_BYTES_MAX;
	struct arena scratch = {0};
	struct arena *was = ar_use(c, &scratch);
	if (setjmp(c->jb) == 0)
		fold_thunk(&a);
	else
		code = tmp.code;
	c->cur = was;
	ar_release(c, &scratch);
	ar_pool_drain(c);
	c->lim = lim;
	memcpy(c->jb, save, sizeof save);
	c->err = keep;
	if (code == LORA_ETYPE)
		qerr_at(c, LORA_ESEMANTIC, e->line, e->col, "%s", tmp.message);
}

static void resolve_call(struct qctx *c, struct expr *e, struct scope *s,
                         struct aggctx *ag)
{
	if (e->kind == E_COUNTSTAR || q_fn_is_agg(e->name)) {
		if (!ag || !ag->pr)
			qerr_at(c, LORA_ESEMANTIC, e->line, e->col,
			        "InvalidAggregation: aggregation is not "
			        "allowed here");
		if (ag->inside)
			qerr_at(c, LORA_ESEMANTIC, e->line, e->col,
			        "NestedAggregation: aggregate inside an "
			        "aggregate");
		ag->inside = 1;
		for (size_t i = 0; i < e->nargs; i++)
			resolve(c, e->args[i], s, ag);
		ag->inside = 0;
		if (e->kind != E_COUNTSTAR && e->nargs < 1)
			qerr_at(
			    c, LORA_ESEMANTIC, e->line, e->col,
			    "InvalidNumberOfArguments: %s needs an argument",
			    e->name);
		push_agg(c, ag->pr, e);
		return;
	}
	/* linenumber() / file(): the hidden slots of the LOAD CSV clause
	 * before them (checked last, as Neo4j's "most recently executed");
	 * null without one */
	if (e->nargs == 0 && (!strcasecmp(e->name, "linenumber") ||
	                      !strcasecmp(e->name, "file"))) {
		int file = !strcasecmp(e->name, "file");
		if (c->csv_slot1) {
			e->kind = E_VAR;
			e->slot = c->csv_slot1 - 1 + file;
		} else {
			e->kind = E_LIT;
			e->lit = v_null();
		}
		return;
	}
	/* vector(v, 3, FLOAT32): the coordinate type is a keyword */
	if (!strcasecmp(e->name, "vector") && e->nargs == 3 &&
	    e->args[2]->kind == E_VAR &&
	    qry_vector_coord_type(e->args[2]->name) >= 0) {
		e->args[2]->kind = E_LIT;
		e->args[2]->lit = v_cstr(c, e->args[2]->name);
	}
	/* vector_distance(a, b, EUCLIDEAN), vector_norm(v, MANHATTAN): so is
	 * the metric. A name that is neither stays a variable; one that is
	 * is the keyword, also with a variable of that name in scope (as in
	 * Neo4j, whose grammar takes only the keyword there). */
	int metric = !strcasecmp(e->name, "vector_distance") && e->nargs == 3
	                 ? 2
	             : !strcasecmp(e->name, "vector_norm") && e->nargs == 2 ? 1
	                                                                    : 0;
	if (metric && e->args[metric]->kind == E_VAR &&
	    qry_vector_metric(e->args[metric]->name) >= 0) {
		e->args[metric]->kind = E_LIT;
		e->args[metric]->lit = v_cstr(c, e->args[metric]->name);
	}
	e->fn = fn_lookup(e->name);
	if (e->fn < 0)
		qerr_at(c, LORA_ESEMANTIC, e->line, e->col,
		        "UnknownFunction: unknown function %s", e->name);
	if (!fn_arity_ok(e->fn, e->nargs))
		qerr_at(c, LORA_ESEMANTIC, e->line, e->col,
		        "InvalidNumberOfArguments: wrong number of arguments "
		        "to %s",
		        e->name);
	for (size_t i = 0; i < e->nargs; i++)
		resolve(c, e->args[i], s, ag);
	check_fn_args(c, e);
}

static void resolve_local(struct qctx *c, struct expr *e, struct scope *s,
                          struct aggctx *ag)
{
	/* list comprehension / quantifier / reduce: e->name bound locally */
	resolve(c, e->a, s, ag);
	struct scope *in = sc_new(c, s);
	if (e->kind == E_REDUCE) {
		resolve(c, e->c, s, ag);
		e->d->slot = sc_bind(c, in, e->d->name, K_ANY);
	}
	e->slot = sc_bind(c, in, e->name, K_ANY);
	if (e->b)
		resolve(c, e->b, in, ag);
	if (e->kind != E_REDUCE && e->c)
		resolve(c, e->c, in, ag);
}

static void resolve_sub(struct qctx *c, struct expr *e, struct scope *s)
{
	struct scope *in = sc_new(c, s);
	if (e->sub) {
		struct query *q = e->sub;
		/* a UNION whose parts all end with RETURN sets the columns
		 * its DISTINCT compares; parts may also end without one (as
		 * in Neo4j, an EXISTS needs no RETURN), which compares no
		 * column */
		int returns = q->nparts > 1;
		for (size_t i = 0; i < q->nparts; i++) {
			struct squery *p = q->parts[i];
			returns &=
			    p->ncl && p->cl[p->ncl - 1]->kind == C_RETURN;
		}
		for (size_t i = 0; i < q->nparts; i++)
			check_single(c, q->parts[i], in, returns ? q : NULL, i);
		/* as in Neo4j: an expression reads; the clause around it may
		 * be matching with its scratch memory (pipe.c, match_next) */
		if (q_is_write(q))
			qerr_at(c, LORA_ESEMANTIC, e->line, e->col,
			        "InvalidClauseComposition: %s { ... } cannot "
			        "contain updating clauses",
			        e->kind == E_EXISTS ? "EXISTS" : "COUNT");
		return;
	}
	if (e->kind == E_PATPRED && e->op[0] != 's' && !c->in_where)
		qerr_at(c, LORA_ESEMANTIC, e->line, e->col,
		        "UnexpectedSyntax: a pattern predicate is only allowed "
		        "in WHERE; use EXISTS { ... } or COUNT { ... }");
	if (e->kind == E_PATPRED && e->op[0] != 's') {
		struct ppart *pp = &e->pat->parts[0];
		for (size_t i = 0; i <= pp->nrels; i++)
			if (pp->nodes[i].var &&
			    sc_find(s, pp->nodes[i].var) < 0)
				qerr_at(c, LORA_ESEMANTIC, e->line, e->col,
				        "UndefinedVariable: variable `%s` not "
				        "defined",
				        pp->nodes[i].var);
		for (size_t i = 0; i < pp->nrels; i++)
			if (pp->rels[i].var && sc_find(s, pp->rels[i].var) < 0)
				qerr_at(c, LORA_ESEMANTIC, e->line, e->col,
				        "UndefinedVariable: variable `%s` not "
				        "defined",
				        pp->rels[i].var);
	}
	/* shortestPath(...) as an expression answers the path: a slot of
	 * its own holds it (no variable names it) */
	if (e->kind == E_PATPRED && e->op[0] == 's')
		e->pat->parts[0].pathslot = c->nslots++;
	check_pattern(c, e->pat, in, 2);
	if (e->b)
		resolve(c, e->b, in, NULL);
	if (e->c)
		resolve(c, e->c, in, NULL);
}

static void resolve(struct qctx *c, struct expr *e, struct scope *s,
                    struct aggctx *ag)
{
	if (!e)
		return;
	switch (e->kind) {
	case E_PARAM:
		/* before anything runs, as Neo4j does: else whether a
		 * statement fails would follow the plan and the data (a seek
		 * that finds no node never evaluates the rest of a WHERE) */
		if (c->params_required &&
		    !(c->params && vmap_get(c->params, e->name)))
			qerr_at(c, LORA_EPARAMS, e->line, e->col,
			        "MissingParameter: expected parameter $%s",
			        e->name);
		return;
	case E_LIT:
	case E_AGGREF:
		return;
	case E_VAR: {
		int i = sc_find(s, e->name);
		if (i < 0)
			qerr_at(c, LORA_ESEMANTIC, e->line, e->col,
			        "UndefinedVariable: variable `%s` not defined",
			        e->name);
		e->slot = s->slots[i];
		return;
	}
	case E_CALL:
	case E_COUNTSTAR:
		resolve_call(c, e, s, ag);
		return;
	case E_LISTCOMP:
	case E_QUANT:
	case E_REDUCE:
		resolve_local(c, e, s, ag);
		return;
	case E_PATPRED:
	case E_PATCOMP:
	case E_EXISTS:
	case E_COUNTSUB:
		resolve_sub(c, e, s);
		return;
	case E_CASE:
		resolve(c, e->a, s, ag);
		resolve(c, e->b, s, ag);
		for (size_t i = 0; i < e->nwhen; i++) {
			resolve(c, e->whens[i], s, ag);
			resolve(c, e->thens[i], s, ag);
		}
		return;
	case E_MAPPROJ:
		resolve(c, e->a, s, ag);
		for (size_t i = 0; i < e->nmp; i++)
			resolve(c, e->mp[i].e, s, ag);
		return;
	default:
		break;
	}
	resolve(c, e->a, s, ag);
	resolve(c, e->b, s, ag);
	resolve(c, e->c, s, ag);
	for (size_t i = 0; i < e->nargs; i++)
		resolve(c, e->args[i], s, ag);
	if (e->kind == E_AND || e->kind == E_OR || e->kind == E_XOR ||
	    e->kind == E_NOT) {
		struct expr *ops[2] = {e->a, e->b};
		for (int i = 0; i < 2; i++) {
			if (!ops[i])
				continue;
			int k = stype(c, ops[i]);
			if (k != K_ANY && k != K_BOOL && k != K_NULL)
				type_err(c, ops[i],
				         "boolean operator needs "
				         "boolean operands");
		}
	}
	if (e->kind == E_PROP) {
		int k = stype(c, e->a);
		if (k == K_PATH || k == K_INT || k == K_FLOAT || k == K_BOOL ||
		    k == K_STR || k == K_LIST)
			type_err(c, e,
			         "property access needs a node, "
			         "relationship or map");
	}
}

static int has_agg(struct expr *e)
{
	if (!e)
		return 0;
	if (e->kind == E_COUNTSTAR || e->kind == E_AGGREF ||
	    (e->kind == E_CALL && q_fn_is_agg(e->name)))
		return 1;
	if (e->kind == E_PATCOMP || e->kind == E_EXISTS ||
	    e->kind == E_COUNTSUB || e->kind == E_PATPRED)
		return 0;
	if (has_agg(e->a) || has_agg(e->b) || has_agg(e->c))
		return 1;
	for (size_t i = 0; i < e->nargs; i++)
		if (has_agg(e->args[i]))
			return 1;
	for (size_t i = 0; i < e->nwhen; i++)
		if (has_agg(e->whens[i]) || has_agg(e->thens[i]))
			return 1;
	for (size_t i = 0; i < e->nmp; i++)
		if (has_agg(e->mp[i].e))
			return 1;
	return 0;
}

/* mode 0: MATCH, 1: CREATE, 2: pattern expression, 3: MERGE */
static void bind_node(struct qctx *c, struct pnode *n, struct scope *s,
                      int mode, struct aggctx *ag, struct scope *here, int lone)
{
	if ((mode == 0 || mode == 3) && n->props && n->props->kind == E_PARAM)
		qerr(c, LORA_ESEMANTIC,
		     "InvalidParameterUse: a parameter cannot be used as a "
		     "property map in MATCH or MERGE");
	if ((mode == 1 || mode == 3) && n->lx)
		qerr(c, LORA_ESEMANTIC,
		     "InvalidLabelExpression: only labels joined by ':' or '&' "
		     "are allowed in %s",
		     mode == 1 ? "CREATE" : "MERGE");
	resolve(c, n->props, s, ag);
	if (!n->var) {
		n->slot = c->nslots++;
		return;
	}
	int i = sc_find(s, n->var);
	if (i >= 0) {
		if (s->kinds[i] != K_NODE && s->kinds[i] != K_ANY &&
		    s->kinds[i] != K_NULL)
			qerr(c, LORA_ESEMANTIC,
			     "VariableTypeConflict: `%s` is not a node",
			     n->var);
		if ((mode == 1 || mode == 3) && sc_find(here, n->var) < 0 &&
		    lone)
			qerr(c, LORA_ESEMANTIC,
			     "VariableAlreadyBound: `%s` already declared",
			     n->var);
		if ((mode == 1 || mode == 3) && (n->nlabels || n->props) &&
		    s->kinds[i] == K_NODE)
			qerr(c, LORA_ESEMANTIC,
			     "VariableAlreadyBound: `%s` already declared",
			     n->var);
		n->slot = s->slots[i];
		if (sc_find(here, n->var) >= 0)
			n->var = ""; /* first bound in this pattern */
		return;
	}
	n->slot = sc_bind(c, s, n->var, K_NODE);
	sc_bind(c, here, n->var, K_NODE);
	n->var = ""; /* "" or NULL: bound by this pattern */
}

static void bind_rel(struct qctx *c, struct prel *r, struct scope *s, int mode,
                     struct aggctx *ag, struct scope *here)
{
	if ((mode == 0 || mode == 3) && r->props && r->props->kind == E_PARAM)
		qerr(c, LORA_ESEMANTIC,
		     "InvalidParameterUse: a parameter cannot be used as a "
		     "property map in MATCH or MERGE");
	resolve(c, r->props, s, ag);
	if (mode == 1 || mode == 3) {
		if (r->ntypes != 1)
			qerr(c, LORA_ESEMANTIC,
			     "NoSingleRelationshipType: a relationship to "
			     "create needs exactly one type");
		if (r->varlen)
			qerr(c, LORA_ESEMANTIC,
			     "CreatingVarLength: cannot create a "
			     "variable-length relationship");
		if (mode == 1 && r->dir == D_BOTH)
			qerr(c, LORA_ESEMANTIC,
			     "RequiresDirectedRelationship: relationships "
			     "to create need a direction");
	}
	if (!r->var) {
		r->slot = c->nslots++;
		return;
	}
	int i = sc_find(s, r->var);
	if (i >= 0) {
		if (s->kinds[i] != K_REL && s->kinds[i] != K_ANY &&
		    s->kinds[i] != K_NULL &&
		    !(r->varlen && s->kinds[i] == K_LIST))
			qerr(c, LORA_ESEMANTIC,
			     "VariableTypeConflict: `%s` is not a "
			     "relationship",
			     r->var);
		if (mode == 1 || mode == 3 || sc_find(here, r->var) >= 0)
			qerr(c, LORA_ESEMANTIC,
			     "VariableAlreadyBound: `%s` already declared",
			     r->var);
		r->slot = s->slots[i];
		return;
	}
	/* a variable-length relationship's variable is a list */
	int kind = r->varlen ? K_LIST : K_REL;
	r->slot = sc_bind(c, s, r->var, kind);
	sc_bind(c, here, r->var, kind);
	r->var = "";
}

static void check_where(struct qctx *c, struct expr *w, struct scope *s);

/* A quantified path pattern: its variables get one slot each for the
 * iteration being matched (seen by its WHERE and property maps) and, in
 * the outer scope, a slot for the list of their values (the group
 * variable). A group variable must be new. */
static void bind_qpp(struct qctx *c, struct prel *r, struct scope *s, int mode,
                     struct aggctx *ag, struct scope *here)
{
	if (mode == 1 || mode == 3)
		qerr(c, LORA_ESEMANTIC,
		     "UnexpectedSyntax: quantified path patterns are only "
		     "allowed in MATCH");
	struct qpp *q = r->q;
	struct scope *in = sc_new(c, s), *ihere = sc_new(c, NULL);
	struct ppart *pp = &q->inner;
	for (size_t i = 0; i <= pp->nrels; i++) {
		const char *v = pp->nodes[i].var;
		if (v && v[0] && sc_find(s, v) >= 0)
			qerr(c, LORA_ESEMANTIC,
			     "VariableAlreadyBound: `%s` already declared "
			     "(a quantified path pattern's variables are "
			     "new)",
			     v);
		bind_node(c, &pp->nodes[i], in, 0, ag, ihere, 0);
		if (i == pp->nrels)
			break;
		v = pp->rels[i].var;
		if (v && v[0] && sc_find(s, v) >= 0)
			qerr(c, LORA_ESEMANTIC,
			     "VariableAlreadyBound: `%s` already declared "
			     "(a quantified path pattern's variables are "
			     "new)",
			     v);
		bind_rel(c, &pp->rels[i], in, 0, ag, ihere);
	}
	if (q->where)
		check_where(c, q->where, in);
	q->nvars = ihere->n;
	q->islot = ar_alloc(c, sizeof(int) * (ihere->n + 1));
	q->gslot = ar_alloc(c, sizeof(int) * (ihere->n + 1));
	for (size_t i = 0; i < ihere->n; i++) {
		q->islot[i] = in->slots[sc_find(in, ihere->names[i])];
		q->gslot[i] = sc_bind(c, s, ihere->names[i], K_LIST);
		sc_bind(c, here, ihere->names[i], K_LIST);
	}
	r->slot = c->nslots++;
}

static void check_pattern_ag(struct qctx *c, struct pattern *p, struct scope *s,
                             int mode, struct aggctx *ag)
{
	struct scope *here = sc_new(c, NULL);
	for (size_t k = 0; k < p->nparts; k++) {
		struct ppart *pp = &p->parts[k];
		if (pp->shortest && pp->nrels != 1)
			qerr(c, LORA_ESEMANTIC,
			     "InvalidArgument: shortestPath and "
			     "allShortestPaths "
			     "need a pattern of exactly one relationship");
		for (size_t i = 0; i <= pp->nrels; i++) {
			bind_node(c, &pp->nodes[i], s, mode, ag, here,
			          pp->nrels == 0);
			if (i < pp->nrels && pp->rels[i].varlen == 2)
				bind_qpp(c, &pp->rels[i], s, mode, ag, here);
			else if (i < pp->nrels)
				bind_rel(c, &pp->rels[i], s, mode, ag, here);
		}
		if (pp->pathvar) {
			if (sc_find(s, pp->pathvar) >= 0)
				qerr(c, LORA_ESEMANTIC,
				     "VariableAlreadyBound: `%s` already "
				     "declared",
				     pp->pathvar);
			pp->pathslot = sc_bind(c, s, pp->pathvar, K_PATH);
		}
	}
}

static void check_pattern(struct qctx *c, struct pattern *p, struct scope *s,
                          int mode)
{
	struct aggctx none = {0};
	check_pattern_ag(c, p, s, mode, &none);
}

static void check_where(struct qctx *c, struct expr *w, struct scope *s)
{
	if (has_agg(w))
		qerr(c, LORA_ESEMANTIC,
		     "InvalidAggregation: aggregation in "
		     "WHERE");
	int was = c->in_where; /* a WHERE inside a WHERE's subquery */
	c->in_where = 1;
	resolve(c, w, s, NULL);
	c->in_where = was;
	int k = stype(c, w);
	if (k != K_ANY && k != K_BOOL && k != K_NULL)
		type_err(c, w, "WHERE needs a boolean");
	fold_check(c, w);
}

/* ---- ambiguous aggregation --------------------------------------------- */

struct amb {
	struct proj *pr;
	int order;              /* checking an ORDER BY item */
	const char *locals[16]; /* comprehension variables in scope */
	int nlocals;
};

static int is_agg_call(struct expr *e)
{
	return e->kind == E_COUNTSTAR ||
	       (e->kind == E_CALL && q_fn_is_agg(e->name));
}

static void amb_walk(struct qctx *c, struct expr *e, struct amb *a);

static void amb_children(struct qctx *c, struct expr *e, struct amb *a)
{
	int saved = a->nlocals;
	if ((e->kind == E_LISTCOMP || e->kind == E_QUANT ||
	     e->kind == E_REDUCE) &&
	    a->nlocals < 14) {
		amb_walk(c, e->a, a);
		if (e->kind == E_REDUCE) {
			amb_walk(c, e->c, a);
			a->locals[a->nlocals++] = e->d->name;
		}
		a->locals[a->nlocals++] = e->name;
		amb_walk(c, e->b, a);
		if (e->kind != E_REDUCE)
			amb_walk(c, e->c, a);
		a->nlocals = saved;
		return;
	}
	amb_walk(c, e->a, a);
	amb_walk(c, e->b, a);
	amb_walk(c, e->c, a);
	for (size_t i = 0; i < e->nargs; i++)
		amb_walk(c, e->args[i], a);
	for (size_t i = 0; i < e->nwhen; i++) {
		amb_walk(c, e->whens[i], a);
		amb_walk(c, e->thens[i], a);
	}
	for (size_t i = 0; i < e->nmp; i++)
		amb_walk(c, e->mp[i].e, a);
}

/* Outside its aggregates, an expression that aggregates may only use
 * grouping keys (variables or property accesses projected as such) and,
 * in ORDER BY, projected names. */
static void amb_walk(struct qctx *c, struct expr *e, struct amb *a)
{
	if (!e || e->kind == E_LIT || e->kind == E_PARAM ||
	    e->kind == E_AGGREF || e->kind == E_PATCOMP ||
	    e->kind == E_EXISTS || e->kind == E_COUNTSUB ||
	    e->kind == E_PATPRED)
		return;
	struct proj *pr = a->pr;
	if (is_agg_call(e)) {
		if (!a->order)
			return;
		for (size_t i = 0; i < pr->naggs; i++)
			if (e->text && pr->aggs[i]->text &&
			    !strcmp(e->text, pr->aggs[i]->text))
				return;
		qerr_at(c, LORA_ESEMANTIC, e->line, e->col,
		        "UndefinedVariable: aggregation `%s` in ORDER BY is "
		        "not projected",
		        e->text ? e->text : "?");
	}
	for (size_t i = 0; i < pr->nitems; i++) {
		struct proj_item *it = &pr->items[i];
		if (it->has_agg || !it->name[0] || !e->text || !it->e->text ||
		    strcmp(e->text, it->e->text))
			continue;
		if (it->e->kind == E_VAR || it->e->kind == E_PROP)
			return;
		qerr_at(c, LORA_ESEMANTIC, e->line, e->col,
		        "AmbiguousAggregationExpression: `%s` is not a simple "
		        "grouping key",
		        e->text);
	}
	if (e->kind == E_VAR) {
		for (int i = 0; i < a->nlocals; i++)
			if (!strcmp(a->locals[i], e->name))
				return;
		if (a->order)
			for (size_t i = 0; i < pr->nitems; i++)
				if (!strcmp(pr->items[i].name, e->name))
					return;
		qerr_at(c, a->order ? LORA_ESEMANTIC : LORA_ESEMANTIC, e->line,
		        e->col, "%s: `%s` is not a grouping key",
		        a->order ? "UndefinedVariable"
		                 : "AmbiguousAggregationExpression",
		        e->name);
	}
	amb_children(c, e, a);
}

/* copy of e with projected aliases replaced by their expressions */
static struct expr *subst_aliases(struct qctx *c, struct expr *e,
                                  struct proj *pr)
{
	if (!e)
		return NULL;
	if (e->kind == E_VAR)
		for (size_t i = 0; i < pr->nitems; i++)
			if (!strcmp(pr->items[i].name, e->name))
				return pr->items[i].e;
	struct expr *x = ar_alloc(c, sizeof(*x));
	*x = *e;
	x->a = subst_aliases(c, e->a, pr);
	x->b = subst_aliases(c, e->b, pr);
	x->c = subst_aliases(c, e->c, pr);
	if (e->nargs) {
		x->args = ar_alloc(c, sizeof(struct expr *) * e->nargs);
		for (size_t i = 0; i < e->nargs; i++)
			x->args[i] = subst_aliases(c, e->args[i], pr);
	}
	return x;
}

/* ORDER BY count(*) + 1: computed per group as a hidden item */
static void hidden_agg_item(struct qctx *c, struct proj *pr, struct expr *e,
                            struct scope *s)
{
	struct amb am = {.pr = pr, .order = 1};
	amb_walk(c, e, &am);
	struct expr *x = subst_aliases(c, e, pr);
	struct aggctx ag = {.pr = pr};
	resolve(c, x, s, &ag);
	struct proj_item *n =
	    ar_alloc(c, sizeof(struct proj_item) * (pr->nitems + 1));
	memcpy(n, pr->items, sizeof(struct proj_item) * pr->nitems);
	n[pr->nitems].e = x;
	n[pr->nitems].name = "";
	n[pr->nitems].has_agg = 1;
	n[pr->nitems].slot = c->nslots++;
	e->kind = E_VAR;
	e->slot = n[pr->nitems].slot;
	pr->items = n;
	pr->nitems++;
}

/* ORDER BY expression that repeats a projected item refers to it */
static int same_text(struct expr *e, struct proj_item *it)
{
	return e->text && it->e->text && strcmp(e->text, it->e->text) == 0;
}

/* `RETURN *, count(x)` / `WITH *, ...` with an aggregate: each variable
 * `*` brings groups the rows, as if named before the items (openCypher);
 * they become those items, and the projection no longer has a star. */
static void star_to_keys(struct qctx *c, struct proj *pr, struct scope *s)
{
	int aggs = 0;
	for (size_t i = 0; i < pr->nitems; i++)
		aggs |= has_agg(pr->items[i].e);
	if (!aggs)
		return;
	size_t nvars = 0;
	for (size_t i = 0; i < s->n; i++)
		nvars += s->names[i][0] != '\0';
	struct proj_item *n =
	    ar_alloc(c, sizeof(struct proj_item) * (nvars + pr->nitems + 1));
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (!s->names[i][0])
			continue;
		size_t j = 0;
		while (j < k && strcmp(n[j].name, s->names[i]) != 0)
			j++;
		if (j < k)
			continue; /* a name bound twice in scope: once */
		struct expr *e = ar_alloc(c, sizeof(*e));
		e->kind = E_VAR;
		e->slot = -1;
		e->fn = -1;
		e->name = s->names[i];
		e->text = s->names[i];
		n[k].e = e;
		n[k].name = s->names[i];
		k++;
	}
	memcpy(n + k, pr->items, sizeof(struct proj_item) * pr->nitems);
	pr->items = n;
	pr->nitems += k;
	pr->star = 0;
}

static struct scope *check_proj(struct qctx *c, struct proj *pr,
                                struct scope *s, int is_with)
{
	struct scope *out = sc_new(c, NULL);
	if (pr->star && s->n)
		star_to_keys(c, pr, s);
	if (pr->star) {
		if (s->n == 0 && !is_with && pr->nitems == 0)
			qerr(c, LORA_ESEMANTIC,
			     "NoVariablesInScope: RETURN * has no variables");
		for (size_t i = 0; i < s->n; i++)
			if (s->names[i][0] && sc_find(out, s->names[i]) < 0) {
				if (out->n ==
				    out->cap) /* grow before writing */
					*out = *sc_new(c, out);
				out->names[out->n] = s->names[i];
				out->slots[out->n] = s->slots[i];
				out->kinds[out->n] = s->kinds[i];
				out->n++;
			}
	}
	struct aggctx ag = {.pr = pr};
	for (size_t i = 0; i < pr->nitems; i++) {
		struct proj_item *it = &pr->items[i];
		if (!it->name)
			qerr_at(c, LORA_ESEMANTIC, it->e->line, it->e->col,
			        "NoExpressionAlias: expression in WITH must "
			        "be aliased");
		for (size_t j = 0; j < i; j++)
			if (strcmp(pr->items[j].name, it->name) == 0)
				qerr(c, LORA_ESEMANTIC,
				     "ColumnNameConflict: column `%s` "
				     "appears twice",
				     it->name);
		it->has_agg = has_agg(it->e);
		resolve(c, it->e, s, &ag);
		if (!it->has_agg)
			fold_check(c, it->e);
	}
	for (size_t i = 0; i < pr->nitems; i++)
		if (pr->items[i].has_agg) {
			struct amb am = {.pr = pr};
			amb_walk(c, pr->items[i].e, &am);
		}
	int kinds[512];
	for (size_t i = 0; i < pr->nitems; i++) {
		struct proj_item *it = &pr->items[i];
		int k = it->has_agg ? K_ANY : stype(c, it->e);
		kinds[i < 512 ? i : 511] = k;
		it->slot = sc_bind(c, out, it->name, k);
	}
	/* ORDER BY sees the projected names, and (without aggregation)
	 * the variables before them */
	int aggregating = pr->naggs > 0;
	struct scope *os = sc_new(c, aggregating ? out : s);
	if (!aggregating)
		for (size_t i = 0; i < out->n; i++) {
			int j = sc_find(os, out->names[i]);
			if (j >= 0) {
				os->slots[j] = out->slots[i];
				os->kinds[j] = out->kinds[i];
			} else {
				sc_bind(c, os, out->names[i], K_ANY);
				os->slots[os->n - 1] = out->slots[i];
			}
		}
	for (size_t i = 0; i < pr->norder; i++) {
		struct expr *e = pr->order[i].e;
		int done = 0;
		for (size_t j = 0; j < pr->nitems && !done; j++)
			if (same_text(e, &pr->items[j]) &&
			    (aggregating || pr->items[j].has_agg ||
			     pr->distinct)) {
				e->kind = E_VAR;
				e->slot = pr->items[j].slot;
				done = 1;
			}
		if (done)
			continue;
		if (has_agg(e)) {
			if (!aggregating)
				qerr(c, LORA_ESEMANTIC,
				     "InvalidAggregation: aggregation in ORDER "
				     "BY must be projected");
			hidden_agg_item(c, pr, e, s);
			continue;
		}
		resolve(c, e, os, NULL);
	}
	struct scope empty = {0};
	resolve(c, pr->skip, &empty, NULL);
	resolve(c, pr->limit, &empty, NULL);
	if (pr->where)
		check_where(c, pr->where, aggregating ? out : os);
	(void)kinds;
	return out;
}

static void check_sets(struct qctx *c, struct setitem *it, size_t n,
                       struct scope *s)
{
	for (size_t i = 0; i < n; i++) {
		resolve(c, it[i].target, s, NULL);
		resolve(c, it[i].value, s, NULL);
	}
}

static void check_intx(struct qctx *c, struct clause *cl);
static struct scope *check_clause(struct qctx *c, struct clause *cl,
                                  struct scope *s);

static struct scope *check_call(struct qctx *c, struct clause *cl,
                                struct scope *s)
{
	for (size_t i = 0; i < cl->npargs; i++)
		resolve(c, cl->pargs[i], s, NULL);
	if (!proc_exists(cl->proc))
		qerr_at(c, LORA_ESEMANTIC, cl->line, cl->col,
		        "ProcedureNotFound: no procedure %s", cl->proc);
	/* queryNodes and queryRelationships take an optional fourth
	 * argument, their options */
	int opt4 = cl->npargs == 4 &&
	           (!strcmp(cl->proc, "db.index.vector.queryNodes") ||
	            !strcmp(cl->proc, "db.index.vector.queryRelationships"));
	if (!cl->implicit_args && !opt4 &&
	    (int)cl->npargs != proc_inputs(cl->proc))
		qerr_at(c, LORA_ESEMANTIC, cl->line, cl->col,
		        "InvalidNumberOfArguments: %s takes %d arguments, %zu "
		        "given",
		        cl->proc, proc_inputs(cl->proc), cl->npargs);
	{
		const char **o;
		size_t no = proc_outputs(cl->proc, &o);
		if (!c->standalone && cl->yield_star)
			qerr_at(
			    c, LORA_ESEMANTIC, cl->line, cl->col,
			    "UnexpectedSyntax: YIELD * is only allowed in a "
			    "standalone CALL");
		if (!c->standalone && !cl->nyields && !cl->yield_star && no)
			qerr_at(c, LORA_ESEMANTIC, cl->line, cl->col,
			        "UndefinedVariable: in-query CALL of %s must "
			        "YIELD its outputs",
			        cl->proc);
		for (size_t i = 0; i < cl->nyields; i++)
			for (size_t j = 0; j < i; j++)
				if (!strcmp(cl->yields[i].alias,
				            cl->yields[j].alias))
					qerr_at(c, LORA_ESEMANTIC, cl->line,
					        cl->col,
					        "VariableAlreadyBound: `%s` "
					        "yielded twice",
					        cl->yields[i].alias);
	}
	struct scope *o = sc_new(c, s);
	const char **outs;
	size_t nout = proc_outputs(cl->proc, &outs);
	if (cl->yield_star || (!cl->nyields && nout)) {
		cl->nyields = nout;
		cl->yields =
		    ar_alloc(c, sizeof(struct yield_item) * (nout + 1));
		for (size_t i = 0; i < nout; i++)
			cl->yields[i].name = cl->yields[i].alias = outs[i];
	}
	for (size_t i = 0; i < cl->nyields; i++) {
		size_t j;
		for (j = 0; j < nout; j++)
			if (strcmp(outs[j], cl->yields[i].name) == 0)
				break;
		if (j == nout)
			qerr_at(c, LORA_ESEMANTIC, cl->line, cl->col,
			        "UndefinedVariable: procedure %s has no "
			        "output `%s`",
			        cl->proc, cl->yields[i].name);
		if (sc_find(s, cl->yields[i].alias) >= 0)
			qerr_at(c, LORA_ESEMANTIC, cl->line, cl->col,
			        "VariableAlreadyBound: `%s` already declared",
			        cl->yields[i].alias);
		cl->yields[i].slot = sc_bind(c, o, cl->yields[i].alias, K_ANY);
	}
	if (cl->where)
		resolve(c, cl->where, o, NULL);
	return o;
}

static struct scope *check_clause(struct qctx *c, struct clause *cl,
                                  struct scope *s)
{
	struct scope *n;
	switch (cl->kind) {
	case C_MATCH:
	case C_OPTMATCH:
		n = sc_new(c, s);
		check_pattern(c, cl->pat, n, 0);
		if (cl->where)
			check_where(c, cl->where, n);
		return n;
	case C_UNWIND:
	case C_LOADCSV:
		resolve(c, cl->e, s, NULL);
		fold_check(c, cl->e);
		n = sc_new(c, s);
		if (sc_find(s, cl->var) >= 0)
			qerr(c, LORA_ESEMANTIC,
			     "VariableAlreadyBound: `%s` already declared",
			     cl->var);
		cl->slot = sc_bind(c, n, cl->var, K_ANY);
		if (cl->kind == C_LOADCSV) {
			cl->line_slot = c->nslots;
			c->nslots += 2;
			c->csv_slot1 = cl->line_slot + 1;
		}
		return n;
	case C_WITH:
		return check_proj(c, cl->proj, s, 1);
	case C_RETURN:
		return check_proj(c, cl->proj, s, 0);
	case C_CREATE:
		n = sc_new(c, s);
		check_pattern(c, cl->pat, n, 1);
		return n;
	case C_MERGE:
		n = sc_new(c, s);
		check_pattern(c, cl->pat, n, 3);
		check_sets(c, cl->on_create, cl->non_create, n);
		check_sets(c, cl->on_match, cl->non_match, n);
		return n;
	case C_SET:
	case C_REMOVE:
		check_sets(c, cl->sets, cl->nsets, s);
		return s;
	case C_DELETE:
		for (size_t i = 0; i < cl->ndels; i++) {
			resolve(c, cl->dels[i], s, NULL);
			int k = stype(c, cl->dels[i]);
			if (k == K_INT || k == K_FLOAT || k == K_STR ||
			    k == K_BOOL || k == K_MAP || k == K_VALUE)
				type_err(c, cl->dels[i],
				         "DELETE needs a node, relationship or "
				         "path");
		}
		return s;
	case C_FOREACH: {
		resolve(c, cl->e, s, NULL);
		n = sc_new(c, s);
		cl->slot = sc_bind(c, n, cl->var, K_ANY);
		for (size_t i = 0; i < cl->nbody; i++)
			n = check_clause(c, cl->body[i], n);
		return s;
	}
	case C_CALLPROC:
		return check_call(c, cl, s);
	case C_DDL:
		if (cl->ddl->kind == DDL_SHOW_INDEXES) {
			/* Neo4j's columns (no ids: names identify) */
			static const char *icols[] = {"name",
			                              "type",
			                              "entityType",
			                              "labelsOrTypes",
			                              "properties",
			                              "state",
			                              "populationPercent",
			                              "owningConstraint"};
			static const char *ccols[] = {
			    "name",          "type",       "entityType",
			    "labelsOrTypes", "properties", "ownedIndex",
			    "propertyType"};
			int show_c = cl->ddl->show_constraints;
			const char **cols = show_c ? ccols : icols;
			int ncols = show_c ? 7 : 8;
			n = sc_new(c, s);
			cl->nyields = (size_t)ncols;
			cl->yields = ar_alloc(c, sizeof(struct yield_item) *
			                             (size_t)ncols);
			for (int i = 0; i < ncols; i++) {
				cl->yields[i].name = cl->yields[i].alias =
				    cols[i];
				cl->yields[i].slot =
				    sc_bind(c, n, cols[i], K_ANY);
			}
			return n;
		}
		return s;
	case C_CALLSUB: {
		if (cl->intx)
			check_intx(c, cl);
		n = sc_new(c, s);
		struct query *q = cl->sub;
		struct scope *last = NULL;
		struct scope *in = call_scope(c, cl, s);
		for (size_t i = 0; i < q->nparts; i++)
			last = check_single(c, q->parts[i], in, q, i);
		if (last && q->ncols)
			for (size_t i = 0; i < q->ncols; i++) {
				if (sc_find(s, q->cols[i]) >= 0)
					qerr_at(c, LORA_ESEMANTIC, cl->line,
					        cl->col,
					        "VariableAlreadyBound: `%s` is "
					        "already declared in the outer "
					        "scope",
					        q->cols[i]);
				int sl = sc_bind(c, n, q->cols[i], K_ANY);
				(void)sl;
				n->slots[sc_find(n, q->cols[i])] =
				    q->colslots[i];
			}
		if (cl->txstatus) {
			if (sc_find(n, cl->txstatus) >= 0)
				qerr_at(c, LORA_ESEMANTIC, cl->line, cl->col,
				        "VariableAlreadyBound: `%s` is already "
				        "declared",
				        cl->txstatus);
			cl->txstatus_slot = sc_bind(c, n, cl->txstatus, K_ANY);
		}
		return n;
	}
	default:
		return s;
	}
}

static int is_update(int k);

/* What a CALL subquery sees: every variable in s, or with a scope clause
 * only those it names (CALL (a, b) { }), all (CALL (*)) or none
 * (CALL () { }), bound to the same slots. A scoped subquery may not begin
 * with an importing WITH as well. */
static struct scope *call_scope(struct qctx *c, struct clause *cl,
                                struct scope *s)
{
	if (!cl->scoped || cl->scope_all)
		return s;
	for (size_t i = 0; i < cl->sub->nparts; i++) {
		struct squery *part = cl->sub->parts[i];
		if (part->ncl && part->cl[0]->kind == C_WITH &&
		    part->cl[0]->proj && part->cl[0]->proj->star)
			qerr_at(
			    c, LORA_ESEMANTIC, cl->line, cl->col,
			    "InvalidClauseComposition: a CALL subquery with "
			    "a variable scope clause cannot also import "
			    "with WITH *");
	}
	struct scope *in = sc_new(c, NULL);
	for (size_t i = 0; i < cl->nscope; i++) {
		int k = sc_find(s, cl->scope_vars[i]);
		if (k < 0)
			qerr_at(c, LORA_ESEMANTIC, cl->line, cl->col,
			        "UndefinedVariable: variable `%s` not defined",
			        cl->scope_vars[i]);
		if (sc_find(in, cl->scope_vars[i]) >= 0)
			continue;
		if (in->n == in->cap) {
			struct scope *bigger = sc_new(c, in);
			in = bigger;
		}
		in->names[in->n] = s->names[k];
		in->slots[in->n] = s->slots[k];
		in->kinds[in->n] = s->kinds[k];
		in->n++;
	}
	return in;
}

/* CALL { } IN TRANSACTIONS: only as a top-level clause (q_check marks
 * those), with a literal or parameter row count */
static void check_intx(struct qctx *c, struct clause *cl)
{
	if (!cl->intx_top)
		qerr_at(c, LORA_ESEMANTIC, cl->line, cl->col,
		        "InvalidClauseComposition: CALL { ... } IN "
		        "TRANSACTIONS is allowed only as a top-level clause of "
		        "a single query, not inside another subquery, "
		        "FOREACH, EXISTS or UNION");
	/* -1 is a negation of a literal to the parser, a literal to a user;
	 * a parameter's value is checked in the same words when it runs
	 * (pipe.c count_arg) */
	struct expr *n = cl->txrows;
	if (n && ((n->kind == E_NEG && n->a->kind == E_LIT &&
	           n->a->lit.t == V_INT) ||
	          (n->kind == E_LIT && n->lit.t == V_INT && n->lit.u.i <= 0)))
		qerr_at(c, LORA_ESEMANTIC, cl->line, cl->col,
		        "InvalidArgumentType: OF n ROWS must be positive");
	if (n && n->kind != E_LIT && n->kind != E_PARAM)
		qerr_at(c, LORA_ESEMANTIC, cl->line, cl->col,
		        "InvalidArgumentType: OF n ROWS takes an integer "
		        "literal or a parameter");
	if (cl->txstatus && cl->txerr == QRY_TX_FAIL)
		qerr_at(c, LORA_ESEMANTIC, cl->line, cl->col,
		        "InvalidClauseComposition: REPORT STATUS needs ON "
		        "ERROR CONTINUE or ON ERROR BREAK");
	c->intx = 1;
}

/* A statement with IN TRANSACTIONS writes only inside them: the rest of
 * it streams as a read between the chunks' commits. */
static void mark_intx(struct qctx *c, struct query *q)
{
	size_t n = 0;
	struct squery *s = q->parts[0];
	for (size_t i = 0; i < s->ncl; i++)
		if (s->cl[i]->kind == C_CALLSUB && s->cl[i]->intx)
			n++;
	if (!n || q->nparts != 1)
		return;
	for (size_t i = 0; i < s->ncl; i++) {
		struct clause *cl = s->cl[i];
		if (cl->kind == C_CALLSUB && cl->intx)
			cl->intx_top = 1;
		else if (q_clauses_write(&cl, 1))
			qerr_at(c, LORA_ESEMANTIC, cl->line, cl->col,
			        "InvalidClauseComposition: a statement with "
			        "CALL { ... } IN TRANSACTIONS may write only "
			        "inside its IN TRANSACTIONS subqueries");
	}
}

static int is_update(int k)
{
	return k == C_CREATE || k == C_MERGE || k == C_SET || k == C_REMOVE ||
	       k == C_DELETE || k == C_FOREACH || k == C_DDL;
}

static struct scope *check_single(struct qctx *c, struct squery *q,
                                  struct scope *in, struct query *whole,
                                  size_t part)
{
	struct scope *s = sc_new(c, in);
	for (size_t i = 0; i < q->ncl; i++) {
		struct clause *cl = q->cl[i];
		if (cl->kind == C_RETURN && i + 1 != q->ncl)
			qerr_at(c, LORA_EPARSE, cl->line, cl->col,
			        "InvalidClauseComposition: RETURN must be "
			        "last");
		if (i > 0 && cl->kind != C_RETURN &&
		    (cl->kind == C_MATCH || cl->kind == C_OPTMATCH ||
		     cl->kind == C_UNWIND || cl->kind == C_CALLPROC ||
		     cl->kind == C_LOADCSV) &&
		    is_update(q->cl[i - 1]->kind) &&
		    q->cl[i - 1]->kind != C_DDL)
			qerr_at(c, LORA_EPARSE, cl->line, cl->col,
			        "InvalidClauseComposition: WITH is required "
			        "between an update and a read clause");
		c->standalone = q->ncl == 1 && whole;
		s = check_clause(c, cl, s);
		c->standalone = 0;
	}
	struct clause *last = q->cl[q->ncl - 1];
	if (last->kind != C_RETURN && !is_update(last->kind) &&
	    last->kind != C_CALLPROC && last->kind != C_CALLSUB && whole)
		qerr_at(c, LORA_EPARSE, last->line, last->col,
		        "InvalidClauseComposition: query must end with "
		        "RETURN or an update");
	if (!whole)
		return s;
	size_t ncols = 0;
	const char **cols = NULL;
	int *slots = NULL;
	if (last->kind == C_RETURN) {
		ncols = s->n;
		cols = ar_alloc(c, sizeof(char *) * (ncols + 1));
		slots = ar_alloc(c, sizeof(int) * (ncols + 1));
		for (size_t i = 0; i < ncols; i++) {
			cols[i] = s->names[i];
			slots[i] = s->slots[i];
		}
	} else if ((last->kind == C_CALLPROC && q->ncl == 1) ||
	           (last->kind == C_DDL &&
	            last->ddl->kind == DDL_SHOW_INDEXES)) {
		ncols = last->nyields;
		cols = ar_alloc(c, sizeof(char *) * (ncols + 1));
		slots = ar_alloc(c, sizeof(int) * (ncols + 1));
		for (size_t i = 0; i < ncols; i++) {
			cols[i] = last->yields[i].alias;
			slots[i] = last->yields[i].slot;
		}
	}
	if (part == 0) {
		whole->cols = cols;
		whole->ncols = ncols;
		whole->colslots =
		    ar_alloc(c, sizeof(int) * (ncols * whole->nparts + 1));
	} else {
		int same = ncols == whole->ncols;
		for (size_t i = 0; same && i < ncols; i++)
			same = strcmp(cols[i], whole->cols[i]) == 0;
		if (!same)
			qerr(c, LORA_ESEMANTIC,
			     "DifferentColumnsInUnion: all parts of a UNION "
			     "must return the same columns");
	}
	for (size_t i = 0; i < ncols; i++)
		whole->colslots[part * whole->ncols + i] = slots[i];
	return s;
}

void q_check(struct qctx *c, struct query *q)
{
	struct scope *s = sc_new(c, NULL);
	mark_intx(c, q);
	for (size_t i = 0; i < q->nparts; i++)
		check_single(c, q->parts[i], s, q, i);
}

int q_clauses_write(struct clause *const *cl, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (cl[i]->kind == C_DDL &&
		    cl[i]->ddl->kind == DDL_SHOW_INDEXES)
			continue;
		if (is_update(cl[i]->kind))
			return 1;
		if (cl[i]->kind == C_CALLSUB && q_is_write(cl[i]->sub))
			return 1;
	}
	return 0;
}

int q_is_write(struct query *q)
{
	for (size_t i = 0; i < q->nparts; i++)
		if (q_clauses_write(q->parts[i]->cl, q->parts[i]->ncl))
			return 1;
	return 0;
}
