/* seek.c - index-usable predicates on a node pattern (equality, IN,
 * ranges, STARTS WITH) and the index seeks that serve them. A predicate's
 * value may be any expression fixed before the pattern is matched
 * (fixed_expr): literals, parameters, and expressions over variables of
 * earlier clauses, evaluated per row as Neo4j's NodeIndexSeek under an
 * Apply does. */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qint.h"

/* whether the pattern binds `slot` itself (a fresh node, relationship or
 * path variable): such a value is not known when a start node is sought */
static int pat_binds(const struct pattern *p, int slot)
{
	for (size_t k = 0; k < p->nparts; k++) {
		const struct ppart *pp = &p->parts[k];
		if (pp->pathslot == slot)
			return 1;
		for (size_t i = 0; i <= pp->nrels; i++) {
			const struct pnode *n = &pp->nodes[i];
			if (n->slot == slot && (!n->var || !n->var[0]))
				return 1;
		}
		for (size_t i = 0; i < pp->nrels; i++) {
			const struct prel *r = &pp->rels[i];
			if (r->slot == slot && (!r->var || !r->var[0]))
				return 1;
			for (size_t v = 0; r->q && v < r->q->nvars; v++)
				if (r->q->gslot[v] == slot ||
				    r->q->islot[v] == slot)
					return 1; /* a group variable */
		}
	}
	return 0;
}

static int fixed_expr(const struct pattern *p, struct expr *e, int depth);

static int fixed_all(const struct pattern *p, struct expr **v, size_t n,
                     int depth)
{
	for (size_t i = 0; i < n; i++)
		if (!fixed_expr(p, v[i], depth))
			return 0;
	return 1;
}

/* A seek value fixed before the pattern is matched: it reads parameters
 * and variables bound by earlier clauses only, never one the pattern
 * binds, and nothing that changes between evaluations (rand(),
 * randomUUID()) or reads the graph through a pattern or subquery. It may
 * still differ from row to row: it is evaluated per row (seek_run). */
static int fixed_expr(const struct pattern *p, struct expr *e, int depth)
{
	if (!e)
		return 1;
	if (depth > SEEK_DEPTH_MAX)
		return 0;
	switch (e->kind) {
	case E_LIT:
	case E_PARAM:
		return 1;
	case E_VAR:
		return !pat_binds(p, e->slot);
	case E_PATPRED:
	case E_PATCOMP:
	case E_EXISTS:
	case E_COUNTSUB:
	case E_AGGREF:
	case E_COUNTSTAR:
	case E_STAR:
		return 0;
	case E_CALL:
		if (!e->name || !strcasecmp(e->name, "rand") ||
		    !strcasecmp(e->name, "randomUUID"))
			return 0;
		break;
	default:
		break;
	}
	if (e->pat || e->sub)
		return 0;
	depth++;
	if (!fixed_expr(p, e->a, depth) || !fixed_expr(p, e->b, depth) ||
	    !fixed_expr(p, e->c, depth) || !fixed_expr(p, e->d, depth) ||
	    !fixed_all(p, e->args, e->nargs, depth) ||
	    !fixed_all(p, e->whens, e->nwhen, depth) ||
	    !fixed_all(p, e->thens, e->nwhen, depth))
		return 0;
	for (size_t i = 0; i < e->nmp; i++)
		if (!fixed_expr(p, e->mp[i].e, depth))
			return 0;
	return 1;
}

static int own_prop(struct expr *p, int slot)
{
	return p->kind == E_PROP && p->a->kind == E_VAR && p->a->slot == slot;
}

/* spec for `key` of the given kind; a range side already taken is left to
 * the residual filter (the WHERE is always applied after the seek) */
static struct seekspec *spec_for(struct seekspec *s, int n, int *k,
                                 const char *key, int kind)
{
	if (kind == SEEK_RANGE)
		for (int i = 0; i < *k; i++)
			if (s[i].kind == SEEK_RANGE && !strcmp(s[i].key, key))
				return &s[i];
	if (*k >= n)
		return NULL;
	struct seekspec *r = &s[(*k)++];
	memset(r, 0, sizeof *r);
	r->key = key;
	r->kind = kind;
	return r;
}

/* p op v with p the property: op one of < <= > >= */
static void add_range(struct seekspec *s, int n, int *k, struct expr *p,
                      const char *op, struct expr *v)
{
	struct seekspec *r = spec_for(s, n, k, p->name, SEEK_RANGE);
	if (!r)
		return;
	int incl = op[1] == '=';
	if (op[0] == '>' && !r->lo) {
		r->lo = v;
		r->lo_incl = incl;
	} else if (op[0] == '<' && !r->hi) {
		r->hi = v;
		r->hi_incl = incl;
	}
}

/* spec of kind with the single value v (EQ, IN, PREFIX) */
static void add_one(struct seekspec *s, int n, int *k, const char *key,
                    int kind, struct expr *v)
{
	struct seekspec *r = spec_for(s, n, k, key, kind);
	if (r)
		r->lo = r->hi = v;
}

static int is_call(const struct expr *e, const char *name, size_t nargs)
{
	return e->kind == E_CALL && e->name && !strcasecmp(e->name, name) &&
	       e->nargs == nargs;
}

/* point.distance(n.p, c) or point.distance(c, n.p): c, else NULL */
static struct expr *dist_centre(const struct pattern *p, struct expr *e,
                                int slot)
{
	if (!is_call(e, "point.distance", 2))
		return NULL;
	for (int i = 0; i < 2; i++)
		if (own_prop(e->args[i], slot) &&
		    fixed_expr(p, e->args[1 - i], 0))
			return e->args[1 - i];
	return NULL;
}

/* point.withinBBox(n.p, lo, hi), point.distance(n.p, c) < r (<=, or
 * r > / >= the distance): the point index's seeks */
static int find_spatial(const struct pattern *p, struct expr *w, int slot,
                        struct seekspec *s, int n, int *k)
{
	if (is_call(w, "point.withinBBox", 3)) {
		if (!own_prop(w->args[0], slot) ||
		    !fixed_expr(p, w->args[1], 0) ||
		    !fixed_expr(p, w->args[2], 0))
			return 1;
		struct seekspec *r =
		    spec_for(s, n, k, w->args[0]->name, SEEK_BBOX);
		if (r)
			r->lo = w->args[1], r->hi = w->args[2];
		return 1;
	}
	if (w->kind != E_CMP)
		return 0;
	/* exactly <, <=, >, >=: "<>" (and "!=", parsed as "<>") also
	 * starts with '<' but selects the points outside the radius */
	int ord = !strcmp(w->op, "<") || !strcmp(w->op, "<=") ||
	          !strcmp(w->op, ">") || !strcmp(w->op, ">=");
	int fwd = ord && w->op[0] == '<', rev = ord && w->op[0] == '>';
	struct expr *d = fwd ? w->a : rev ? w->b : NULL;
	struct expr *rad = fwd ? w->b : w->a;
	struct expr *ctr = d ? dist_centre(p, d, slot) : NULL;
	if (!ctr || !fixed_expr(p, rad, 0))
		return 0;
	struct expr *prop =
	    own_prop(d->args[0], slot) ? d->args[0] : d->args[1];
	struct seekspec *r = spec_for(s, n, k, prop->name, SEEK_DIST);
	if (r)
		r->lo = ctr, r->hi = rad;
	return 1;
}

static void find_specs(const struct pattern *p, struct expr *w, int slot,
                       struct seekspec *s, int n, int *k, int depth)
{
	if (!w || depth > SEEK_DEPTH_MAX)
		return;
	if (w->kind == E_AND) {
		find_specs(p, w->a, slot, s, n, k, depth + 1);
		find_specs(p, w->b, slot, s, n, k, depth + 1);
		return;
	}
	if ((w->kind == E_STARTS || w->kind == E_IN) && own_prop(w->a, slot) &&
	    fixed_expr(p, w->b, 0)) {
		add_one(s, n, k, w->a->name,
		        w->kind == E_IN ? SEEK_IN : SEEK_PREFIX, w->b);
		return;
	}
	if ((w->kind == E_CONTAINS || w->kind == E_ENDS) &&
	    own_prop(w->a, slot) && fixed_expr(p, w->b, 0)) {
		add_one(s, n, k, w->a->name,
		        w->kind == E_CONTAINS ? SEEK_CONTAINS : SEEK_ENDS,
		        w->b);
		return;
	}
	if (find_spatial(p, w, slot, s, n, k))
		return;
	if (w->kind != E_CMP || !strcmp(w->op, "<>"))
		return;
	if (own_prop(w->a, slot) && fixed_expr(p, w->b, 0)) {
		if (w->op[0] == '=')
			add_one(s, n, k, w->a->name, SEEK_EQ, w->b);
		else
			add_range(s, n, k, w->a, w->op, w->b);
	} else if (own_prop(w->b, slot) && fixed_expr(p, w->a, 0)) {
		if (w->op[0] == '=') {
			add_one(s, n, k, w->b->name, SEEK_EQ, w->a);
		} else {
			/* v < p is p > v */
			char fl[3] = {w->op[0] == '<' ? '>' : '<', w->op[1], 0};
			add_range(s, n, k, w->b, fl, w->a);
		}
	}
}

static int specs_of(const struct pattern *p, struct expr *props, int slot,
                    struct expr *where, struct seekspec *s, int n)
{
	int k = 0;
	if (props && props->kind == E_MAP)
		for (size_t i = 0; i < props->nargs && k < n; i++)
			if (fixed_expr(p, props->args[i], 0))
				add_one(s, n, &k, props->labels[i], SEEK_EQ,
				        props->args[i]);
	find_specs(p, where, slot, s, n, &k, 0);
	return k;
}

int seek_specs(const struct pattern *p, struct pnode *pn, struct expr *where,
               struct seekspec *s, int n)
{
	return specs_of(p, pn->props, pn->slot, where, s, n);
}

int seek_rel_specs(const struct pattern *p, struct prel *r, struct expr *where,
                   struct seekspec *s, int n)
{
	if (r->varlen || r->q || r->ntypes != 1 || (r->var && r->var[0]))
		return 0;
	int k = specs_of(p, r->props, r->slot, where, s, n);
	for (int i = 0; i < k; i++)
		s[i].rel = 1;
	return k;
}

/* id(n) for the node in `slot` */
static int is_id_of(const struct expr *e, int slot)
{
	return is_call(e, "id", 1) && e->args[0]->kind == E_VAR &&
	       e->args[0]->slot == slot;
}

static struct expr *find_id(const struct pattern *p, struct expr *w, int slot,
                            int *in, int depth)
{
	if (!w || depth > SEEK_DEPTH_MAX)
		return NULL;
	if (w->kind == E_AND) {
		struct expr *e = find_id(p, w->a, slot, in, depth + 1);
		return e ? e : find_id(p, w->b, slot, in, depth + 1);
	}
	if (w->kind == E_IN && is_id_of(w->a, slot) && fixed_expr(p, w->b, 0)) {
		*in = 1;
		return w->b;
	}
	if (w->kind != E_CMP || strcmp(w->op, "=") != 0)
		return NULL;
	*in = 0;
	if (is_id_of(w->a, slot) && fixed_expr(p, w->b, 0))
		return w->b;
	if (is_id_of(w->b, slot) && fixed_expr(p, w->a, 0))
		return w->a;
	return NULL;
}

struct expr *seek_id_spec(const struct pattern *p, const struct pnode *pn,
                          struct expr *where, int *in)
{
	return find_id(p, where, pn->slot, in, 0);
}

static int text_ok(struct expr *e);

/* the index lookups of node specs or of relationship specs; STARTS WITH
 * goes to a range index, or else to a text index (s->text) when its
 * needle can be one */
static int has_idx(struct qctx *c, const char *label, struct seekspec *s)
{
	if (s->kind == SEEK_CONTAINS || s->kind == SEEK_ENDS)
		return !s->rel && g_has_text_index(c, label, s->key);
	s->text = s->kind == SEEK_PREFIX && !s->rel &&
	          !g_has_index(c, label, s->key) && text_ok(s->lo) &&
	          g_has_text_index(c, label, s->key);
	if (s->text)
		return 1;
	return s->rel ? g_has_rel_index(c, label, s->key)
	              : g_has_index(c, label, s->key);
}

int seek_has_index(struct qctx *c, const char *label, struct seekspec *s)
{
	return has_idx(c, label, s);
}

static int idx_seek(struct qctx *c, const char *label, struct seekspec *s,
                    const struct val *lo, int lo_incl, const struct val *hi,
                    int hi_incl, struct idvec *out)
{
	return s->rel ? g_rel_index_seek(c, label, s->key, lo, lo_incl, hi,
	                                 hi_incl, out)
	              : g_index_seek(c, label, s->key, lo, lo_incl, hi, hi_incl,
	                             out);
}

int seek_rank(const struct seekspec *s)
{
	return s->kind == SEEK_EQ ? 0 : s->kind == SEEK_IN ? 1 : 2;
}

/* the best rank of an index seek on a node of the part, SEEK_RANKS when
 * none */
static int node_seek_rank(struct qctx *c, const struct pattern *pat,
                          struct ppart *pp, struct expr *where)
{
	int best = SEEK_RANKS;
	for (size_t i = 0; i <= pp->nrels; i++) {
		struct pnode *pn = &pp->nodes[i];
		struct seekspec s[SEEK_SPECS_MAX];
		int k = seek_specs(pat, pn, where, s, SEEK_SPECS_MAX);
		for (size_t l = 0; l < pn->nlabels; l++)
			for (int j = 0; j < k; j++)
				if (seek_plannable(&s[j]) &&
				    seek_rank(&s[j]) < best &&
				    has_idx(c, pn->labels[l], &s[j]))
					best = seek_rank(&s[j]);
	}
	return best;
}

int seek_pick_rel(struct qctx *c, const struct pattern *pat, struct ppart *pp,
                  struct expr *where, struct seekspec *out)
{
	int best = node_seek_rank(c, pat, pp, where), at = -1;
	for (size_t i = 0; best > 0 && i < pp->nrels; i++) {
		struct prel *r = &pp->rels[i];
		struct seekspec s[SEEK_SPECS_MAX];
		int k = seek_rel_specs(pat, r, where, s, SEEK_SPECS_MAX);
		for (int j = 0; j < k; j++)
			if (seek_plannable(&s[j]) && seek_rank(&s[j]) < best &&
			    g_has_rel_index(c, r->types[0], s[j].key)) {
				best = seek_rank(&s[j]);
				*out = s[j];
				at = (int)i;
			}
	}
	return at;
}

static int range_type(struct val v)
{
	return v.t == V_INT || v.t == V_FLOAT || v.t == V_STR;
}

/* the smallest string above every string with prefix p, or 0 when there
 * is none (p all 0xff bytes) */
static int prefix_end(struct qctx *c, struct val p, struct val *out)
{
	size_t n = p.u.s->len;
	while (n && (unsigned char)p.u.s->s[n - 1] == 0xff)
		n--;
	if (!n)
		return 0;
	*out = v_str(c, p.u.s->s, n);
	out->u.s->s[n - 1] = (char)((unsigned char)out->u.s->s[n - 1] + 1);
	return 1;
}

/* a value a stored, indexed property can equal (maps, entities and
 * vectors are never in a range index: such a value is left to the scan) */
static int eq_seekable(struct val v)
{
	switch (v.t) {
	case V_BOOL:
	case V_INT:
	case V_FLOAT:
	case V_STR:
	case V_TEMPORAL:
	case V_BYTES:
	case V_POINT:
		return 1;
	case V_LIST:
		for (size_t i = 0; i < v.u.l->n; i++)
			if (v.u.l->v[i].t != V_NULL &&
			    !eq_seekable(v.u.l->v[i]))
				return 0;
		return 1;
	default:
		return 0;
	}
}

/* errors of evaluating a value, as opposed to running out of time,
 * memory or budget */
static int eval_error(int code)
{
	return code == LORA_ETYPE || code == LORA_EARITH ||
	       code == LORA_EINVAL || code == LORA_ESEMANTIC ||
	       code == LORA_EPARAMS || code == LORA_EVECTOR ||
	       code == LORA_ENOTFOUND;
}

/* Evaluates a seek value on row. 0 when that raises an evaluation error:
 * the caller then scans, and the predicate, applied to each scanned node,
 * raises it or not exactly as it would without an index (no node, or an
 * AND that stops before it). */
static int seek_value(struct qctx *c, struct expr *e, struct val *row,
                      struct val *out)
{
	if (e->kind == E_LIT) {
		*out = e->lit;
		return 1;
	}
	jmp_buf outer;
	memcpy(outer, c->jb, sizeof outer);
	/* fixed_expr keeps subqueries and patterns out of seek values, so
	 * no search registers maps in here; were one ever let in, the
	 * maps it left are given back with the error it swallows */
	const size_t nscratch = c->nscratch;
	int code = setjmp(c->jb);
	if (code) {
		memcpy(c->jb, outer, sizeof outer);
		if (!eval_error(code))
			longjmp(c->jb, code);
		hm_scratch_free_to(c, nscratch);
		if (c->err)
			memset(c->err, 0, sizeof *c->err);
		return 0;
	}
	*out = eval(c, e, row);
	memcpy(c->jb, outer, sizeof outer);
	return 1;
}

/* the node v names, if it is a node id (an integer, or a float equal to
 * one, as Cypher's = compares them) of a node that exists */
static void push_id(struct qctx *c, struct val v, struct idvec *out)
{
	uint64_t id;
	if (v.t == V_INT && v.u.i >= 0)
		id = (uint64_t)v.u.i;
	else if (v.t == V_FLOAT && v.u.f >= 0 && v.u.f < 0x1p63 &&
	         v.u.f == (double)(int64_t)v.u.f)
		id = (uint64_t)v.u.f;
	else
		return;
	if (g_node_exists(c, id))
		idv_push(c, out, id);
}

int seek_by_id(struct qctx *c, struct expr *e, int in, struct val *row,
               struct idvec *out)
{
	memset(out, 0, sizeof *out);
	struct val v;
	if (!seek_value(c, e, row, &v))
		return 0;
	if (!in) {
		push_id(c, v, out);
		return 1;
	}
	if (v.t == V_NULL)
		return 1;
	if (v.t != V_LIST)
		return 0; /* the scan raises the type error, or not */
	for (size_t i = 0; i < v.u.l->n; i++)
		push_id(c, v.u.l->v[i], out);
	idv_sort_unique(out);
	return 1;
}

/* x IN list: the union of equality seeks, each node once (ascending id) */
static int seek_in(struct qctx *c, const char *label, struct seekspec *s,
                   struct val *row, struct idvec *out)
{
	struct val l;
	if (!has_idx(c, label, s) || !seek_value(c, s->lo, row, &l))
		return 0;
	if (l.t == V_NULL) /* x IN null is null: no node */
		return memset(out, 0, sizeof *out), 1;
	if (l.t != V_LIST || !eq_seekable(l))
		return 0;
	struct idvec all = {0}, one;
	for (size_t i = 0; i < l.u.l->n; i++) {
		struct val v = l.u.l->v[i];
		if (v.t == V_NULL)
			continue;
		if (!idx_seek(c, label, s, &v, 1, &v, 1, &one))
			return 0;
		for (size_t j = 0; j < one.n; j++)
			idv_push(c, &all, one.v[j]);
	}
	idv_sort_unique(&all);
	*out = all;
	return 1;
}

/* point.withinBBox / point.distance: one range seek between the corners
 * of the box (the index orders points by a z-order key, see storage's
 * codec.c), which finds every point in the box and some outside it, left
 * to the WHERE. A box across the 180th meridian, points of different
 * reference systems or a radius that is not a number scan instead. */
static int seek_spatial(struct qctx *c, const char *label, struct seekspec *s,
                        struct val *row, struct idvec *out)
{
	struct val a, b;
	if (!seek_value(c, s->lo, row, &a) || !seek_value(c, s->hi, row, &b))
		return 0;
	if (a.t == V_NULL || b.t == V_NULL) /* the predicate is null */
		return memset(out, 0, sizeof *out), 1;
	struct vpoint lo, hi;
	if (s->kind == SEEK_BBOX) {
		if (a.t != V_POINT || b.t != V_POINT ||
		    a.u.pt->srid != b.u.pt->srid || a.u.pt->x > b.u.pt->x)
			return 0;
		lo = *a.u.pt, hi = *b.u.pt;
	} else if (a.t != V_POINT || !v_is_num(b) ||
	           !pt_circle_box(a.u.pt, v_num(b), &lo, &hi)) {
		return 0;
	}
	struct val l = {.t = V_POINT}, h = {.t = V_POINT};
	l.u.pt = &lo, h.u.pt = &hi;
	return idx_seek(c, label, s, &l, 1, &h, 1, out);
}

/* Seeks the index on (label, spec key) for the spec's values evaluated on
 * row; 0 when the spec cannot use it (no index, a value of a type the
 * index cannot serve, an evaluation error): then the caller tries the
 * next spec or scans. A null equality value, or IN null, finds nothing. */
/* CONTAINS / ENDS WITH through a text index: the nodes whose string
 * may hold the needle (the WHERE then keeps those that do) */
static int seek_text(struct qctx *c, const char *label, struct seekspec *s,
                     struct val *row, struct idvec *out)
{
	struct val v;
	if (!has_idx(c, label, s) || !seek_value(c, s->lo, row, &v))
		return 0;
	if (v.t == V_NULL) /* the predicate is null: no node */
		return memset(out, 0, sizeof *out), 1;
	if (v.t != V_STR)
		return 0; /* the scan raises or not, as without the index */
	return g_text_seek(c, label, s->key, v.u.s->s, v.u.s->len, out);
}

int seek_run(struct qctx *c, const char *label, struct seekspec *s,
             struct val *row, struct idvec *out)
{
	if (s->kind == SEEK_CONTAINS || s->kind == SEEK_ENDS ||
	    (s->kind == SEEK_PREFIX && has_idx(c, label, s) && s->text))
		return seek_text(c, label, s, row, out);
	if (s->kind == SEEK_IN)
		return seek_in(c, label, s, row, out);
	if (s->kind == SEEK_BBOX || s->kind == SEEK_DIST)
		return has_idx(c, label, s) &&
		       seek_spatial(c, label, s, row, out);
	struct val lo = v_null(), hi = v_null();
	s->has_eqv = 0;
	if (!has_idx(c, label, s) || (s->lo && !seek_value(c, s->lo, row, &lo)))
		return 0;
	if (s->kind == SEEK_EQ) {
		if (lo.t == V_NULL)
			return memset(out, 0, sizeof *out), 1;
		if (!eq_seekable(lo) ||
		    !idx_seek(c, label, s, &lo, 1, &lo, 1, out))
			return 0;
		s->has_eqv = 1;
		s->eqv = lo;
		return 1;
	}
	/* STARTS WITH's one value is both (add_one): hi then is lo, which
	 * the prefix's end replaces below (it was left null, so STARTS WITH
	 * never sought its range index) */
	if (s->hi && s->hi == s->lo)
		hi = lo;
	else if (s->hi && !seek_value(c, s->hi, row, &hi))
		return 0;
	if ((s->lo && !range_type(lo)) || (s->hi && !range_type(hi)))
		return 0;
	if (s->kind == SEEK_PREFIX) {
		if (lo.t != V_STR || !lo.u.s->len)
			return 0; /* '': every string, which the scan streams */
		int has_hi = prefix_end(c, lo, &hi);
		return idx_seek(c, label, s, &lo, 1, has_hi ? &hi : NULL, 0,
		                out);
	}
	return idx_seek(c, label, s, s->lo ? &lo : NULL, s->lo_incl,
	                s->hi ? &hi : NULL, s->hi_incl, out);
}

/* |i| at most 2^53: every such integer is a double as well */
#define SEEK_EXACT_INT_MAX ((int64_t)1 << 53)

int seek_exact(const struct pnode *pn, const struct seekspec *s)
{
	if (!s->has_eqv || s->kind != SEEK_EQ || s->rel || pn->nlabels != 1 ||
	    pn->lx || !pn->props || pn->props->kind != E_MAP ||
	    pn->props->nargs != 1 || s->lo != pn->props->args[0] ||
	    strcmp(s->key, pn->props->labels[0]))
		return 0;
	switch (s->eqv.t) {
	case V_BOOL:
	case V_STR:
		return 1;
	case V_INT:
		return s->eqv.u.i <= SEEK_EXACT_INT_MAX &&
		       s->eqv.u.i >= -SEEK_EXACT_INT_MAX;
	default:
		return 0;
	}
}

static int lit_ok(struct expr *e)
{
	if (!e)
		return 1;
	if (e->kind == E_NEG || e->kind == E_POS)
		e = e->a;
	return e->kind != E_LIT || range_type(e->lit);
}

/* a literal needle a text index can serve: a string of 3+ bytes */
static int text_ok(struct expr *e)
{
	return e->kind != E_LIT || (e->lit.t == V_STR && e->lit.u.s->len >= 3);
}

int seek_plannable(struct seekspec *s)
{
	if (s->kind == SEEK_CONTAINS || s->kind == SEEK_ENDS)
		return text_ok(s->lo);
	return s->kind == SEEK_EQ || s->kind == SEEK_IN ||
	       s->kind == SEEK_BBOX || s->kind == SEEK_DIST ||
	       (lit_ok(s->lo) && lit_ok(s->hi));
}

static void bound_text(struct lora_buf *b, const char *op, struct expr *e)
{
	if (e->kind == E_PARAM)
		lora_buf_printf(b, " %s $%s", op, e->name);
	else if (e->text)
		lora_buf_printf(b, " %s %s", op, e->text);
	else
		lora_buf_printf(b, " %s <literal>", op);
}

void seek_explain(const char *label, struct seekspec *s, struct lora_buf *b)
{
	const char *ent = s->rel ? "Relationship" : "Node";
	if (s->kind == SEEK_CONTAINS || s->kind == SEEK_ENDS || s->text) {
		int con = s->kind == SEEK_CONTAINS,
		    pre = s->kind == SEEK_PREFIX;
		lora_buf_printf(b, "NodeIndex%sScan(:%s(%s)",
		                pre   ? "StartsWith"
		                : con ? "Contains"
		                      : "EndsWith",
		                label, s->key);
		bound_text(b,
		           pre   ? "STARTS WITH"
		           : con ? "CONTAINS"
		                 : "ENDS WITH",
		           s->lo);
		lora_buf_putc(b, ')');
		return;
	}
	if (s->kind == SEEK_EQ || s->kind == SEEK_IN) {
		lora_buf_printf(b, "%sIndexSeek(:%s(%s))", ent, label, s->key);
		return;
	}
	if (s->kind == SEEK_BBOX || s->kind == SEEK_DIST) {
		lora_buf_printf(
		    b, "%sPointIndexSeek(:%s(%s) %s)", ent, label, s->key,
		    s->kind == SEEK_BBOX ? "withinBBox" : "distance");
		return;
	}
	lora_buf_printf(b, "%sIndexRangeSeek(:%s(%s)", ent, label, s->key);
	if (s->kind == SEEK_PREFIX) {
		bound_text(b, "STARTS WITH", s->lo);
	} else {
		if (s->lo)
			bound_text(b, s->lo_incl ? ">=" : ">", s->lo);
		if (s->lo && s->hi)
			lora_buf_puts(b, " AND");
		if (s->hi)
			bound_text(b, s->hi_incl ? "<=" : "<", s->hi);
	}
	lora_buf_putc(b, ')');
}

/* labels of which every node matching x carries at least one, appended
 * to out from n; -1 when no such set of at most LX_UNION_MAX labels */
static int lx_cover(struct lexpr *x, const char **out, int n)
{
	int k;
	switch (x->op) {
	case LX_LABEL:
		if (n >= LX_UNION_MAX)
			return -1;
		out[n] = x->label;
		return n + 1;
	case LX_OR:
		k = lx_cover(x->a, out, n);
		return k < 0 ? -1 : lx_cover(x->b, out, k);
	case LX_AND:
		k = lx_cover(x->a, out, n);
		return k >= 0 ? k : lx_cover(x->b, out, n);
	default:
		return -1;
	}
}

int lx_union_labels(struct lexpr *x, const char **out)
{
	return x ? lx_cover(x, out, 0) : -1;
}

void scan_union(struct qctx *c, const char **labels, int n, struct idvec *out)
{
	memset(out, 0, sizeof *out);
	for (int i = 0; i < n; i++) {
		struct idvec one;
		g_scan(c, labels[i], &one);
		for (size_t j = 0; j < one.n; j++)
			idv_push(c, out, one.v[j]);
	}
	idv_sort_unique(out);
}
