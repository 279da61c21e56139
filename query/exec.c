/* exec.c - pattern matching (start-node choice, expansion, variable
 * length, shortest paths), stepped one start candidate at a time for the
 * pipeline (pipe.c), and the aggregation functions' state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qint.h"

/* ---- rows -------------------------------------------------------------- */

void rows_push(struct qctx *c, struct rows *r, struct val *row)
{
	if (r->n >= c->lim.rows_max)
		qerr(c, LORA_ELIMIT, "RowLimit: more than %llu rows",
		     (unsigned long long)c->lim.rows_max);
	if ((++c->rows_made & 1023) == 0)
		q_tick(c);
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 16;
		struct val **n = ar_alloc_nz(c, sizeof(*n) * nc);
		if (r->n)
			memcpy(n, r->r, sizeof(*n) * r->n);
		r->r = n;
		r->cap = nc;
	}
	r->r[r->n++] = row;
}

struct val *row_copy(struct qctx *c, const struct val *row)
{
	size_t n = sizeof(struct val) * (size_t)c->nslots;
	if (!row)
		return ar_alloc(c, n);
	struct val *r = ar_alloc_nz(c, n);
	memcpy(r, row, n);
	return r;
}

/* ---- pattern matching -------------------------------------------------- */

struct seg {
	uint64_t *edges;
	size_t n;
};

struct pcollect;
struct mstate {
	struct pattern *pat;
	struct expr *where;
	struct rows *out;
	struct val *row;
	uint64_t *used; /* edges bound in this MATCH */
	size_t nused, capused;
	/* ACYCLIC parts: the nodes the variable-length and quantified
	 * segments of the search's current path reached, the current part's
	 * from visbase (a step to one of them is pruned at once) */
	uint64_t *vis;
	size_t nvis, capvis, visbase;
	struct seg *segs; /* per rel of the current part */
	int part;
	int *order; /* expansion order of node positions */
	int start;
	/* how the start node's candidates were found (candidates(): CAND_*
	 * bits): set just before bind_node_then(step 0), which consumes
	 * it */
	int start_exact;
	struct pcollect *collect; /* a path selector's candidates */
};

/* candidates()' answer: the ids came from an exact equality seek of the
 * index on the node's one label and key (seek_exact), or by their ids,
 * whatever their labels (then step 0 checks every one: scanned_ok is for
 * scans and seeks of the node's label) */
#define CAND_EXACT 1
#define CAND_BY_ID 2
/* found on an older view (an outer cursor of IN TRANSACTIONS): each must
 * still exist, also where the pattern would not load it (no label) */
#define CAND_STALE 4

static int new_var(const char *v)
{
	return !v || !v[0];
}

static int used_has(struct mstate *m, uint64_t e)
{
	for (size_t i = 0; i < m->nused; i++)
		if (m->used[i] == e)
			return 1;
	return 0;
}

/* relationship uniqueness, unless the current part is a WALK */
static int edge_used(struct mstate *m, uint64_t e)
{
	return m->pat->parts[m->part].mode != PM_WALK && used_has(m, e);
}

/* one adjacency entry examined by a variable-length or quantified
 * pattern (taken or not): counted against the limit, and every 1,024 the
 * deadline is checked, since such a search may produce no row for long */
static void expansion(struct qctx *c)
{
	uint64_t max = c->lim.path_expansions_max ? c->lim.path_expansions_max
	                                          : QRY_PATH_EXPANSIONS_MAX;
	if (++c->expansions > max)
		qerr(c, LORA_ELIMIT,
		     "PathExpansionLimit: variable-length and quantified "
		     "patterns examined more than %llu relationships; bound "
		     "the pattern (a smaller upper bound, more selective "
		     "labels or inner predicates)",
		     (unsigned long long)max);
	if ((c->expansions & 1023) == 0)
		q_tick(c);
}

static int acyclic(struct mstate *m)
{
	return m->pat->parts[m->part].mode == PM_ACYCLIC;
}

static int vis_has(struct mstate *m, uint64_t id)
{
	for (size_t i = m->visbase; i < m->nvis; i++)
		if (m->vis[i] == id)
			return 1;
	return 0;
}

static void vis_push(struct qctx *c, struct mstate *m, uint64_t id)
{
	if (m->nvis == m->capvis) {
		size_t nc = m->capvis ? m->capvis * 2 : 16;
		uint64_t *n = ar_alloc(c, sizeof(uint64_t) * nc);
		if (m->nvis)
			memcpy(n, m->vis, sizeof(uint64_t) * m->nvis);
		m->vis = n;
		m->capvis = nc;
	}
	m->vis[m->nvis++] = id;
}

static int rel_ok(struct qctx *c, struct prel *r, uint64_t eid,
                  const char *type, struct val *row);

/* may the search step over adjacency entry `a` of rel r? */
static int step_ok(struct qctx *c, struct mstate *m, struct prel *r,
                   const struct adj *a)
{
	expansion(c);
	if (edge_used(m, a->edge) || (acyclic(m) && vis_has(m, a->other)))
		return 0;
	return rel_ok(c, r, a->edge, a->type, m->row);
}

static void used_push(struct qctx *c, struct mstate *m, uint64_t e)
{
	if (m->nused == m->capused) {
		size_t nc = m->capused ? m->capused * 2 : 16;
		uint64_t *n = ar_alloc(c, sizeof(uint64_t) * nc);
		if (m->nused)
			memcpy(n, m->used, sizeof(uint64_t) * m->nused);
		m->used = n;
		m->capused = nc;
	}
	m->used[m->nused++] = e;
}

/* `have`: an edge's properties; node properties come from `gn` instead
 * (so vector properties are read only when the pattern names one). */
static int props_match(struct qctx *c, struct expr *props, struct vmap *have,
                       struct gnode *gn, struct val *row)
{
	if (!props)
		return 1;
	struct val want = eval(c, props, row);
	if (want.t == V_NULL)
		return 1;
	if (want.t != V_MAP)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: property map "
		     "expected");
	for (size_t i = 0; i < want.u.m->n; i++) {
		const char *k = want.u.m->k[i];
		struct val *h = gn     ? g_node_prop(c, gn, k)
		                : have ? vmap_get(have, k)
		                       : NULL;
		if (!h || v_eq(c, *h, want.u.m->v[i]) != 1)
			return 0;
	}
	return 1;
}

static int node_ok(struct qctx *c, struct pnode *pn, uint64_t id,
                   struct val *row)
{
	if (!pn->nlabels && !pn->props && !pn->lx) {
		/* reached through an edge or a scan: it exists unless this
		 * statement deleted it; no need to load it */
		struct gnode *n = hm_get(&c->g.nodes, id);
		return !n || !n->deleted;
	}
	if (!pn->props)
		return g_node_fits(c, id, pn->labels, pn->nlabels, pn->lx, 1);
	/* only the answer leaves: a node read past the cache's room is
	 * given back at once, not kept until the MATCH step ends (a
	 * variable-length search checks the same nodes again and again) */
	struct arena *a = c->cur;
	struct ar_mark mk = ar_mark(a);
	struct gnode *n = g_node_read(c, id);
	int ok = n && !n->deleted;
	for (size_t i = 0; ok && i < pn->nlabels; i++)
		ok = g_has_label(n, pn->labels[i]);
	if (ok && pn->lx)
		ok = lx_match(pn->lx, n, NULL);
	if (ok)
		ok = props_match(c, pn->props, NULL, n, row);
	if (n && n->transient)
		ar_rewind(c, a, mk);
	return ok;
}

/*
 * node_ok for an unbound start node (step 0): candidates() took it from a
 * scan or index seek of the pattern's labels, so with exactly one label and
 * no property map or label expression, a node this statement has not
 * touched (absent from the graph cache) is known to match without loading.
 */
static int scanned_ok(struct qctx *c, struct pnode *pn, uint64_t id)
{
	return pn->nlabels == 1 && !pn->props && !pn->lx &&
	       !hm_get(&c->g.nodes, id);
}

/*
 * node_ok for an unbound start node whose candidates came from an exact
 * equality seek of the index on its one label and the one key of its
 * property map (seek_exact): a node this statement has not touched holds
 * that label and a value Cypher finds equal, so it matches without
 * loading. It is remembered as existing in the view (g_seen), so that
 * creating an edge to it needs no load either.
 */
static int seek_only_ok(struct qctx *c, struct pnode *pn, uint64_t id)
{
	if (pn->nlabels != 1 || pn->lx || !pn->props ||
	    pn->props->kind != E_MAP || pn->props->nargs != 1 ||
	    hm_get(&c->g.nodes, id))
		return 0;
	g_seen(c, id);
	return 1;
}

static int rel_type_ok(struct prel *r, const char *type)
{
	if (!r->ntypes)
		return 1;
	for (size_t i = 0; i < r->ntypes; i++)
		if (strcmp(r->types[i], type) == 0)
			return 1;
	return 0;
}

/* type: the adjacency entry's, when the relationship came from one
 * (else NULL) */
static int rel_ok(struct qctx *c, struct prel *r, uint64_t eid,
                  const char *type, struct val *row)
{
	/* one an adjacency scan found and left out of the cache exists, and
	 * the statement has not touched it */
	if (type && !r->props && !hm_get(&c->g.edges, eid))
		return rel_type_ok(r, type);
	/* adjacency scans leave a shallow edge with type and endpoints: load
	 * the properties only when the pattern needs them; one read past the
	 * cache's room is given back at once, as in node_ok */
	struct arena *a = c->cur;
	struct ar_mark mk = ar_mark(a);
	struct gedge *e =
	    r->props ? g_edge_read(c, eid) : g_edge_shallow(c, eid);
	int ok = e && !e->deleted && rel_type_ok(r, e->type);
	if (ok && r->props)
		ok = props_match(c, r->props, e->props, NULL, row);
	if (e && e->transient)
		ar_rewind(c, a, mk);
	return ok;
}

static void match_part(struct qctx *c, struct mstate *m, int part);

static struct val make_path(struct qctx *c, struct ppart *pp, struct val *row,
                            struct seg *segs)
{
	size_t total = 0;
	for (size_t i = 0; i < pp->nrels; i++)
		total += segs[i].n;
	struct vpath *p = ar_alloc(c, sizeof(*p));
	p->n = total;
	p->nodes = ar_alloc(c, sizeof(uint64_t) * (total + 1));
	p->rels = ar_alloc(c, sizeof(uint64_t) * (total ? total : 1));
	uint64_t cur = row[pp->nodes[0].slot].u.id;
	p->nodes[0] = cur;
	size_t k = 0;
	for (size_t i = 0; i < pp->nrels; i++)
		for (size_t j = 0; j < segs[i].n; j++) {
			struct gedge *e = g_edge_shallow(c, segs[i].edges[j]);
			cur = e->src == cur ? e->dst : e->src;
			p->rels[k] = e->id;
			p->nodes[++k] = cur;
		}
	struct val v = {.t = V_PATH};
	v.u.p = p;
	return v;
}

static void bind_varlen(struct qctx *c, struct ppart *pp, struct val *row,
                        struct seg *segs)
{
	for (size_t i = 0; i < pp->nrels; i++) {
		struct prel *r = &pp->rels[i];
		if (!r->varlen || !new_var(r->var))
			continue;
		struct val l = v_list(c, segs[i].n);
		for (size_t j = 0; j < segs[i].n; j++)
			l.u.l->v[j] = v_rel(segs[i].edges[j]);
		row[r->slot] = l;
	}
}

/* a path selector's candidate matches of one pattern part */
struct pcollect {
	int part;
	struct val **rows;
	uint64_t **edges; /* the part's relationships, in path order */
	size_t *nedges;
	size_t n, cap;
};

static size_t part_edges(struct qctx *c, struct ppart *pp, struct seg *segs,
                         uint64_t **out)
{
	size_t n = 0;
	for (size_t i = 0; i < pp->nrels; i++)
		n += segs[i].n;
	*out = ar_alloc(c, sizeof(uint64_t) * (n + 1));
	n = 0;
	for (size_t i = 0; i < pp->nrels; i++)
		for (size_t j = 0; j < segs[i].n; j++)
			(*out)[n++] = segs[i].edges[j];
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ACYCLIC: no node twice on the part's path */
static int part_acyclic(struct qctx *c, struct mstate *m, struct ppart *pp)
{
	struct vpath *p = make_path(c, pp, m->row, m->segs).u.p;
	uint64_t *ids = ar_alloc(c, sizeof(uint64_t) * (p->n + 1));
	memcpy(ids, p->nodes, sizeof(uint64_t) * (p->n + 1));
	qsort(ids, p->n + 1, sizeof(uint64_t), cmp_u64);
	for (size_t i = 0; i < p->n; i++)
		if (ids[i] == ids[i + 1])
			return 0;
	return 1;
}

static void collect_push(struct qctx *c, struct mstate *m, struct ppart *pp)
{
	struct pcollect *col = m->collect;
	if (col->n >= QRY_SELECT_PATHS_MAX)
		qerr(c, LORA_ELIMIT,
		     "PathExpansionLimit: a path selector weighs more than %u "
		     "paths; bound the pattern",
		     QRY_SELECT_PATHS_MAX);
	if (col->n == col->cap) {
		size_t nc = col->cap ? col->cap * 2 : 16;
		struct val **r = ar_alloc(c, sizeof(*r) * nc);
		uint64_t **e = ar_alloc(c, sizeof(*e) * nc);
		size_t *ne = ar_alloc(c, sizeof(*ne) * nc);
		if (col->n) {
			memcpy(r, col->rows, sizeof(*r) * col->n);
			memcpy(e, col->edges, sizeof(*e) * col->n);
			memcpy(ne, col->nedges, sizeof(*ne) * col->n);
		}
		col->rows = r, col->edges = e, col->nedges = ne;
		col->cap = nc;
	}
	col->rows[col->n] = row_copy(c, m->row);
	col->nedges[col->n] = part_edges(c, pp, m->segs, &col->edges[col->n]);
	col->n++;
}

static void part_done(struct qctx *c, struct mstate *m)
{
	struct ppart *pp = &m->pat->parts[m->part];
	if (pp->mode == PM_ACYCLIC && !part_acyclic(c, m, pp))
		return;
	bind_varlen(c, pp, m->row, m->segs);
	if (pp->pathslot >= 0)
		m->row[pp->pathslot] = make_path(c, pp, m->row, m->segs);
	if (m->collect && m->collect->part == m->part) {
		collect_push(c, m, pp);
		return;
	}
	int save = m->part, st = m->start;
	struct seg *ss = m->segs;
	int *so = m->order;
	size_t vb = m->visbase;
	m->visbase = m->nvis; /* ACYCLIC holds within a part */
	match_part(c, m, m->part + 1);
	m->visbase = vb;
	m->part = save;
	m->segs = ss;
	m->order = so;
	m->start = st;
}

static void expand(struct qctx *c, struct mstate *m, int step);

/* Binds node position `pos` of the current part to id at `step`: 0 when
 * id does not fit, 1 when bound now (the caller sets the slot back to
 * null), 2 when the position was bound to id already. */
static int bind_node(struct qctx *c, struct mstate *m, int pos, uint64_t id,
                     int step)
{
	q_tick_every(c); /* each candidate, also those a label rejects */
	struct ppart *pp = &m->pat->parts[m->part];
	struct pnode *pn = &pp->nodes[pos];
	struct val cur = m->row[pn->slot];
	if (cur.t == V_NODE)
		return cur.u.id == id && node_ok(c, pn, id, m->row) ? 2 : 0;
	if (!new_var(pn->var))
		return 0; /* pre-bound to null or non-node */
	int how = step == 0 ? m->start_exact : CAND_BY_ID;
	m->start_exact = 0;
	if ((how & CAND_STALE) && !g_node_exists(c, id))
		return 0;
	if (!(!(how & CAND_BY_ID) && scanned_ok(c, pn, id)) &&
	    !((how & CAND_EXACT) && seek_only_ok(c, pn, id)) &&
	    !node_ok(c, pn, id, m->row))
		return 0;
	m->row[pn->slot] = v_node(id);
	return 1;
}

/* try binding node position `pos` to id, then continue with step+1 */
static void bind_node_then(struct qctx *c, struct mstate *m, int pos,
                           uint64_t id, int step)
{
	int slot = m->pat->parts[m->part].nodes[pos].slot;
	int how = bind_node(c, m, pos, id, step);
	if (!how)
		return;
	expand(c, m, step + 1);
	if (how == 1)
		m->row[slot] = v_null();
}

static void varlen_dfs(struct qctx *c, struct mstate *m, struct prel *r,
                       int dir, uint64_t at, int target, int step,
                       struct seg *sg, int64_t depth, int rev);

/* one adjacency entry `a` of a variable-length search at `depth`: the
 * relationship taken, then the search on from where it leads */
static void varlen_one(struct qctx *c, struct mstate *m, struct prel *r,
                       int dir, const struct adj *a, int target, int step,
                       struct seg *sg, int64_t depth, int rev)
{
	if (!step_ok(c, m, r, a))
		return;
	used_push(c, m, a->edge);
	vis_push(c, m, a->other);
	uint64_t *ne = ar_alloc(c, sizeof(uint64_t) * (sg->n + 1));
	if (sg->n)
		memcpy(ne, sg->edges, sizeof(uint64_t) * sg->n);
	ne[sg->n] = a->edge;
	struct seg save = *sg;
	sg->edges = ne;
	sg->n++;
	varlen_dfs(c, m, r, dir, a->other, target, step, sg, depth + 1, rev);
	*sg = save;
	m->nused--;
	m->nvis--;
}

static void varlen_dfs(struct qctx *c, struct mstate *m, struct prel *r,
                       int dir, uint64_t at, int target, int step,
                       struct seg *sg, int64_t depth, int rev)
{
	if (depth >= r->minh) {
		if (rev) {
			/* collected right-to-left: reverse into path order */
			struct seg save = *sg;
			uint64_t *tmp =
			    ar_alloc(c, sizeof(uint64_t) * (sg->n ? sg->n : 1));
			for (size_t i = 0; i < sg->n; i++)
				tmp[i] = sg->edges[sg->n - 1 - i];
			sg->edges = tmp;
			bind_node_then(c, m, target, at, step);
			*sg = save;
		} else {
			bind_node_then(c, m, target, at, step);
		}
	}
	int64_t maxh = r->maxh < 0 ? QRY_VARLEN_HOPS_MAX : r->maxh;
	if (depth >= maxh)
		return;
	struct adj *a;
	size_t n;
	g_adjacent(c, at, dir, r->ntypes == 1 ? r->types[0] : NULL, &a, &n);
	for (size_t i = 0; i < n; i++)
		varlen_one(c, m, r, dir, &a[i], target, step, sg, depth, rev);
}

static int flip(int dir)
{
	return dir == D_OUT ? D_IN : dir == D_IN ? D_OUT : D_BOTH;
}

/* a variable-length relationship bound to a list of relationships: the
 * path must follow exactly those relationships */
static void follow_list(struct qctx *c, struct mstate *m, struct prel *r,
                        int dir, uint64_t at, int pos, int step, struct seg *sg)
{
	struct val l = m->row[r->slot];
	if (l.t != V_LIST)
		return;
	size_t n = l.u.l->n;
	int64_t maxh = r->maxh < 0 ? QRY_VARLEN_HOPS_MAX : r->maxh;
	if ((int64_t)n < r->minh || (int64_t)n > maxh)
		return;
	sg->n = n;
	sg->edges = ar_alloc(c, sizeof(uint64_t) * (n + 1));
	uint64_t cur = at;
	for (size_t k = 0; k < n; k++) {
		size_t idx = pos > m->start ? k : n - 1 - k;
		struct val v = l.u.l->v[idx];
		if (v.t != V_REL || edge_used(m, v.u.id) ||
		    !rel_ok(c, r, v.u.id, NULL, m->row))
			return;
		struct gedge *e = g_edge_shallow(c, v.u.id);
		if ((dir == D_OUT && e->src != cur) ||
		    (dir == D_IN && e->dst != cur) ||
		    (dir == D_BOTH && e->src != cur && e->dst != cur))
			return;
		cur = e->src == cur ? e->dst : e->src;
		sg->edges[idx] = e->id;
	}
	bind_node_then(c, m, pos, cur, step);
}

/* ---- quantified path patterns ------------------------------------------
 * ((a)-[r]->(b) WHERE p){min,max} between two outer nodes: iterations are
 * matched one after the other by depth-first search, each binding the
 * inner variables (q->islot) afresh and checking the inner WHERE; the
 * values of every iteration are kept (caps) and, once at least min
 * iterations matched, become the group variables' lists and the search
 * goes on with the outer node after the group. Matched leftward (`rev`,
 * when the start node lies to the right) the inner pattern is walked from
 * its last node, and lists and edges are reversed into path order. */
struct qrun {
	struct prel *r;
	int target, step, rev;
	struct seg *sg;
	struct val *caps; /* iteration i, variable v: caps[i * nvars + v] */
	size_t capn;
};

static void qpp_iter(struct qctx *c, struct mstate *m, struct qrun *q,
                     int64_t it, size_t h, uint64_t cur);

static void qpp_bind_groups(struct qctx *c, struct mstate *m, struct qrun *q,
                            int64_t n)
{
	struct qpp *qp = q->r->q;
	for (size_t v = 0; v < qp->nvars; v++) {
		struct val l = v_list(c, (size_t)n);
		for (int64_t i = 0; i < n; i++)
			l.u.l->v[i] = q->caps[(size_t)(q->rev ? n - 1 - i : i) *
			                          qp->nvars +
			                      v];
		m->row[qp->gslot[v]] = l;
	}
}

/* `it` iterations matched, the last one ending at `at` */
static void qpp_dfs(struct qctx *c, struct mstate *m, struct qrun *q,
                    uint64_t at, int64_t it)
{
	struct prel *r = q->r;
	if (it >= r->minh) {
		qpp_bind_groups(c, m, q, it);
		struct seg save = *q->sg;
		if (q->rev && q->sg->n) {
			uint64_t *t = ar_alloc(c, sizeof(uint64_t) * q->sg->n);
			for (size_t i = 0; i < q->sg->n; i++)
				t[i] = q->sg->edges[q->sg->n - 1 - i];
			q->sg->edges = t;
		}
		bind_node_then(c, m, q->target, at, q->step);
		*q->sg = save;
		for (size_t v = 0; v < r->q->nvars; v++)
			m->row[r->q->gslot[v]] = v_null();
	}
	int64_t maxh = r->maxh < 0 ? QRY_VARLEN_HOPS_MAX : r->maxh;
	if (it >= maxh)
		return;
	size_t need = (size_t)(it + 1) * r->q->nvars;
	if (need > q->capn) {
		size_t nc = need * 2 + 8;
		struct val *n = ar_alloc(c, sizeof(struct val) * nc);
		if (q->capn)
			memcpy(n, q->caps, sizeof(struct val) * q->capn);
		q->caps = n;
		q->capn = nc;
	}
	/* the next iteration binds the inner variables (named or not)
	 * afresh; this one's values come back for its other candidates */
	struct ppart *in = &r->q->inner;
	size_t ns = 2 * in->nrels + 1;
	struct val *saved = ar_alloc(c, sizeof(struct val) * ns);
	for (size_t i = 0; i < ns; i++) {
		int slot = i & 1 ? in->rels[i / 2].slot : in->nodes[i / 2].slot;
		saved[i] = m->row[slot];
		m->row[slot] = v_null();
	}
	qpp_iter(c, m, q, it, 0, at);
	for (size_t i = 0; i < ns; i++)
		m->row[i & 1 ? in->rels[i / 2].slot : in->nodes[i / 2].slot] =
		    saved[i];
}

/* binds inner node position ni to id within the iteration; 0 when it
 * cannot be (labels, properties, a variable repeated in the iteration) */
static int qpp_node(struct qctx *c, struct mstate *m, struct pnode *pn,
                    uint64_t id)
{
	struct val cur = m->row[pn->slot];
	if (cur.t == V_NODE)
		return cur.u.id == id;
	if (!node_ok(c, pn, id, m->row))
		return 0;
	m->row[pn->slot] = v_node(id);
	return 1;
}

/* the iteration's hop h (of inner->nrels), from node `cur` */
static void qpp_iter(struct qctx *c, struct mstate *m, struct qrun *q,
                     int64_t it, size_t h, uint64_t cur)
{
	struct qpp *qp = q->r->q;
	struct ppart *in = &qp->inner;
	size_t k = in->nrels;
	struct pnode *pn = &in->nodes[q->rev ? k - h : h];
	struct val was = m->row[pn->slot];
	if (!qpp_node(c, m, pn, cur))
		return;
	if (h == k) {
		if (!qp->where || eval_pred(c, qp->where, m->row) == 1) {
			for (size_t v = 0; v < qp->nvars; v++)
				q->caps[(size_t)it * qp->nvars + v] =
				    m->row[qp->islot[v]];
			qpp_dfs(c, m, q, cur, it + 1);
		}
		m->row[pn->slot] = was;
		return;
	}
	struct prel *r = &in->rels[q->rev ? k - 1 - h : h];
	int dir = q->rev ? flip(r->dir) : r->dir;
	struct val bound = m->row[r->slot]; /* null: inner variables are new */
	struct adj *a;
	size_t n;
	g_adjacent(c, cur, dir, r->ntypes == 1 ? r->types[0] : NULL, &a, &n);
	for (size_t i = 0; i < n; i++) {
		if (!step_ok(c, m, r, &a[i]))
			continue;
		used_push(c, m, a[i].edge);
		vis_push(c, m, a[i].other);
		m->row[r->slot] = v_rel(a[i].edge);
		uint64_t *ne = ar_alloc(c, sizeof(uint64_t) * (q->sg->n + 1));
		if (q->sg->n)
			memcpy(ne, q->sg->edges, sizeof(uint64_t) * q->sg->n);
		ne[q->sg->n] = a[i].edge;
		struct seg save = *q->sg;
		q->sg->edges = ne;
		q->sg->n++;
		qpp_iter(c, m, q, it, h + 1, a[i].other);
		*q->sg = save;
		m->row[r->slot] = bound;
		m->nused--;
		m->nvis--;
	}
	m->row[pn->slot] = was;
}

static void qpp_run(struct qctx *c, struct mstate *m, struct prel *r,
                    uint64_t at, int pos, int step, struct seg *sg, int rev)
{
	struct qrun q = {
	    .r = r, .target = pos, .step = step, .rev = rev, .sg = sg};
	sg->n = 0;
	sg->edges = NULL;
	qpp_dfs(c, m, &q, at, 0);
}

/* One adjacency entry of plain relationship r at `step` (bound: the
 * relationship's slot before, a V_REL when an earlier clause bound it):
 * the relationship bound, then the node it reaches, node position pos. */
static void expand_one(struct qctx *c, struct mstate *m, struct prel *r,
                       struct seg *sg, struct val bound, struct adj *a, int pos,
                       int step)
{
	q_tick_every(c); /* also relationships a filter rejects */
	if (bound.t == V_REL && bound.u.id != a->edge)
		return;
	if (edge_used(m, a->edge) || !rel_ok(c, r, a->edge, a->type, m->row))
		return;
	used_push(c, m, a->edge);
	m->row[r->slot] = v_rel(a->edge);
	sg->edges = &a->edge;
	sg->n = 1;
	bind_node_then(c, m, pos, a->other, step);
	m->row[r->slot] = bound;
	m->nused--;
}

/* step k of m->order: node position order[k] reached from its neighbour */
static void expand(struct qctx *c, struct mstate *m, int step)
{
	struct ppart *pp = &m->pat->parts[m->part];
	if (step > (int)pp->nrels) {
		part_done(c, m);
		return;
	}
	int pos = m->order[step];
	int from, ri, dir;
	if (pos > m->start) { /* rightward: rel pos-1 from node pos-1 */
		from = pos - 1;
		ri = pos - 1;
		dir = pp->rels[ri].dir;
	} else { /* leftward: rel pos from node pos+1 */
		from = pos + 1;
		ri = pos;
		dir = flip(pp->rels[ri].dir);
	}
	struct prel *r = &pp->rels[ri];
	uint64_t at = m->row[pp->nodes[from].slot].u.id;
	struct seg *sg = &m->segs[ri];
	if (r->varlen == 2 || (r->varlen && new_var(r->var))) {
		/* the segment's nodes, from `at`, on the ACYCLIC stack */
		size_t nv = m->nvis;
		vis_push(c, m, at);
		if (r->varlen == 2) {
			qpp_run(c, m, r, at, pos, step, sg, pos < m->start);
		} else {
			sg->n = 0;
			varlen_dfs(c, m, r, dir, at, pos, step, sg, 0,
			           pos < m->start);
		}
		m->nvis = nv;
		return;
	}
	if (r->varlen) {
		follow_list(c, m, r, dir, at, pos, step, sg);
		return;
	}
	struct val bound = m->row[r->slot];
	if (!new_var(r->var) && bound.t != V_REL)
		return;
	struct adj *a;
	size_t n;
	g_adjacent(c, at, dir, r->ntypes == 1 ? r->types[0] : NULL, &a, &n);
	for (size_t i = 0; i < n; i++)
		expand_one(c, m, r, sg, bound, &a[i], pos, step);
}

/* The WHERE that may narrow node pn's candidates. In a part a path
 * selector collects, the WHERE filters after the selection (GQL): only
 * the part's end nodes may be sought by it, which drops whole groups of
 * paths; an inner node sought by it would keep paths the selector drops. */
static struct expr *seek_where(struct mstate *m, const struct pnode *pn)
{
	if (!m->collect || m->collect->part != m->part)
		return m->where;
	const struct ppart *pp = &m->pat->parts[m->part];
	return pn == &pp->nodes[0] || pn == &pp->nodes[pp->nrels] ? m->where
	                                                          : NULL;
}

/* Candidate ids for node pn (empty when it is bound to null). With scan
 * not NULL, a label scan (or a scan of all nodes) is opened there to be
 * stepped instead of read into out. Returns how they were found:
 * CAND_EXACT (an exact index seek, seek_exact), CAND_BY_ID (by id,
 * whatever their labels), else 0 (a scan or seek of the node's label). */
static int candidates(struct qctx *c, struct mstate *m, struct pnode *pn,
                      struct idvec *out, struct gscan **scan)
{
	struct val cur = m->row[pn->slot];
	memset(out, 0, sizeof *out);
	if (cur.t == V_NODE) {
		idv_push(c, out, cur.u.id);
		return 0;
	}
	if (!new_var(pn->var))
		return 0; /* bound to null */
	int in;
	struct expr *w = seek_where(m, pn);
	struct expr *ide = seek_id_spec(m->pat, pn, w, &in);
	if (ide && seek_by_id(c, ide, in, m->row, out))
		return CAND_BY_ID; /* labels and properties checked on each */
	struct seekspec s[SEEK_SPECS_MAX];
	int k = seek_specs(m->pat, pn, w, s, SEEK_SPECS_MAX);
	/* equality seeks first, then IN lists, then ranges and prefixes */
	for (int pass = 0; pass < SEEK_RANKS; pass++)
		for (size_t l = 0; l < pn->nlabels; l++)
			for (int i = 0; i < k; i++)
				if (seek_rank(&s[i]) == pass &&
				    seek_run(c, pn->labels[l], &s[i], m->row,
				             out))
					return seek_exact(pn, &s[i])
					           ? CAND_EXACT
					           : 0;
	const char *ul[LX_UNION_MAX];
	int nu = pn->nlabels ? -1 : lx_union_labels(pn->lx, ul);
	if (nu > 0) {
		scan_union(c, ul, nu, out);
		return 0;
	}
	const char *best = NULL;
	uint64_t bc = UINT64_MAX;
	for (size_t l = 0; l < pn->nlabels; l++) {
		uint64_t n = g_count_label(c, pn->labels[l]);
		if (n < bc) {
			bc = n;
			best = pn->labels[l];
		}
	}
	if (scan)
		*scan = g_scan_open(c, best);
	else
		g_scan(c, best, out);
	return 0;
}

/* estimated rows at pn when an index serves one of its predicates: an
 * equality seek beats a range seek beats a label scan */
static uint64_t seek_cost(struct qctx *c, struct mstate *m, struct pnode *pn,
                          uint64_t cost)
{
	struct seekspec s[SEEK_SPECS_MAX];
	int k = seek_specs(m->pat, pn, seek_where(m, pn), s, SEEK_SPECS_MAX);
	uint64_t best = cost;
	for (size_t l = 0; l < pn->nlabels; l++)
		for (int i = 0; i < k; i++)
			if (seek_plannable(&s[i]) &&
			    seek_has_index(c, pn->labels[l], &s[i])) {
				int r = seek_rank(&s[i]);
				uint64_t e = r == 0   ? cost / 64 + 1
				             : r == 1 ? cost / 16 + 1
				                      : cost / 4 + 1;
				if (e < best)
					best = e;
			}
	return best;
}

/* rows of a label-expression node read as a union of label scans */
static uint64_t lx_cost(struct qctx *c, struct pnode *pn)
{
	const char *ul[LX_UNION_MAX];
	int nu = lx_union_labels(pn->lx, ul);
	if (nu <= 0)
		return UINT64_MAX - 1;
	uint64_t sum = 0;
	for (int i = 0; i < nu; i++)
		sum += g_count_label(c, ul[i]);
	return sum < UINT64_MAX - 1 ? sum : UINT64_MAX - 1;
}

/* a node bound before (at most one candidate) always wins: a label whose
 * count is 0 may still hold the statement's own writes; a lone node needs
 * no estimate (one storage read per label and row) */
static int pick_start(struct qctx *c, struct mstate *m, struct ppart *pp)
{
	int best = 0;
	uint64_t bc = UINT64_MAX;
	if (!pp->nrels)
		return 0;
	for (size_t i = 0; i <= pp->nrels; i++) {
		struct pnode *pn = &pp->nodes[i];
		uint64_t cost;
		int in;
		if (m->row[pn->slot].t == V_NODE || !new_var(pn->var))
			return (int)i;
		if (seek_id_spec(m->pat, pn, seek_where(m, pn), &in)) {
			cost = in ? 16 : 1;
		} else if (pn->nlabels) {
			cost = g_count_label(c, pn->labels[0]);
			if (pn->props)
				cost = cost / 16 + 1;
			cost = seek_cost(c, m, pn, cost);
		} else {
			cost = lx_cost(c, pn);
		}
		if (cost < bc) {
			bc = cost;
			best = (int)i;
		}
	}
	return best;
}

/* whether a node of the part is found by its id (then no relationship
 * index starts it: pick_start starts there) */
static int part_by_id(struct mstate *m, struct ppart *pp)
{
	int in;
	for (size_t i = 0; i <= pp->nrels; i++)
		if (new_var(pp->nodes[i].var) &&
		    seek_id_spec(m->pat, &pp->nodes[i],
		                 seek_where(m, &pp->nodes[i]), &in))
			return 1;
	return 0;
}

/* whether a node of the part is bound (by an earlier clause or part) */
static int part_bound(struct mstate *m, struct ppart *pp)
{
	for (size_t i = 0; i <= pp->nrels; i++)
		if (m->row[pp->nodes[i].slot].t == V_NODE ||
		    !new_var(pp->nodes[i].var))
			return 1;
	return 0;
}

/* Starts the part at relationship ri found by its index (spec s): binds
 * each found relationship, then its end that is node ri (both ends of an
 * undirected one), and expands from there as from a start node. 0 when
 * the index cannot serve the spec on this row: the caller scans. */
static int rel_start(struct qctx *c, struct mstate *m, int part, int ri,
                     struct seekspec *s)
{
	struct ppart *pp = &m->pat->parts[part];
	struct prel *r = &pp->rels[ri];
	struct idvec ids;
	if (!seek_run(c, r->types[0], s, m->row, &ids))
		return 0;
	int *order = ar_alloc(c, sizeof(int) * (pp->nrels + 1));
	int k = 0;
	for (int i = ri; i <= (int)pp->nrels; i++)
		order[k++] = i;
	for (int i = ri - 1; i >= 0; i--)
		order[k++] = i;
	struct pnode *pn = &pp->nodes[ri];
	struct val was = m->row[r->slot];
	for (size_t i = 0; i < ids.n; i++) {
		struct gedge *e = g_edge_shallow(c, ids.v[i]);
		if (!e || e->deleted)
			continue;
		uint64_t ends[2] = {r->dir == D_IN ? e->dst : e->src, e->dst};
		int nends = r->dir == D_BOTH && e->src != e->dst ? 2 : 1;
		for (int j = 0; j < nends; j++) {
			if (!node_ok(c, pn, ends[j], m->row))
				continue;
			m->part = part;
			m->order = order;
			m->start = ri;
			m->row[r->slot] = v_rel(e->id);
			m->row[pn->slot] = v_node(ends[j]);
			expand(c, m, 1);
			m->row[pn->slot] = v_null();
			m->row[r->slot] = was;
		}
	}
	return 1;
}

static void shortest(struct qctx *c, struct mstate *m, struct ppart *pp);
static void select_part(struct qctx *c, struct mstate *m, int part);

static void match_part(struct qctx *c, struct mstate *m, int part)
{
	/* every combination the matcher builds, kept or not: a WHERE that
	 * rejects them all must still meet the time limit (rows_push ticks
	 * only for kept rows) */
	q_tick_every(c);
	if (part == (int)m->pat->nparts) {
		if (m->where && eval_pred(c, m->where, m->row) != 1)
			return;
		rows_push(c, m->out, row_copy(c, m->row));
		return;
	}
	struct ppart *pp = &m->pat->parts[part];
	m->part = part;
	m->segs = ar_alloc(c, sizeof(struct seg) * (pp->nrels + 1));
	if (pp->shortest) {
		shortest(c, m, pp);
		return;
	}
	if (pp->sel && !(m->collect && m->collect->part == part)) {
		select_part(c, m, part);
		return;
	}
	struct seekspec rs;
	int ri = part_bound(m, pp) || part_by_id(m, pp)
	             ? -1
	             : seek_pick_rel(c, m->pat, pp,
	                             m->collect && m->collect->part == part
	                                 ? NULL
	                                 : m->where,
	                             &rs);
	if (ri >= 0 && rel_start(c, m, part, ri, &rs))
		return;
	int start = pick_start(c, m, pp);
	int *order = ar_alloc(c, sizeof(int) * (pp->nrels + 1));
	int k = 0;
	order[k++] = start;
	for (int i = start + 1; i <= (int)pp->nrels; i++)
		order[k++] = i;
	for (int i = start - 1; i >= 0; i--)
		order[k++] = i;
	struct idvec cand;
	int exact = candidates(c, m, &pp->nodes[start], &cand, NULL);
	for (size_t i = 0; i < cand.n; i++) {
		m->part = part;
		m->order = order;
		m->start = start;
		m->start_exact = exact;
		bind_node_then(c, m, start, cand.v[i], 0);
	}
}

struct pick {
	uint64_t x, y;
	size_t len, i;
};

static int cmp_pick(const void *a, const void *b)
{
	const struct pick *p = a, *q = b;
	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	if (p->y != q->y)
		return p->y < q->y ? -1 : 1;
	if (p->len != q->len)
		return p->len < q->len ? -1 : 1;
	return p->i < q->i ? -1 : p->i > q->i;
}

/* whether the j-th path (sorted by length) of a group starting at g is
 * selected */
static int selected(const struct ppart *pp, const struct pick *g, size_t j,
                    size_t *groups)
{
	if (j && g[j].len != g[j - 1].len)
		(*groups)++;
	switch (pp->sel) {
	case SEL_ANY:
	case SEL_SHORTEST:
		return (int64_t)j < pp->selk;
	case SEL_ALL_SHORTEST:
		return g[j].len == g[0].len;
	default: /* SEL_SHORTEST_GROUPS */
		return (int64_t)*groups < pp->selk;
	}
}

/* A part with a path selector: every match of the part is collected, the
 * matches are grouped by their end nodes, the selector keeps some of each
 * group (by length; ANY in the order found), and the rest of the pattern
 * runs once per kept match. The MATCH's WHERE filters afterwards (GQL). */
static void select_part(struct qctx *c, struct mstate *m, int part)
{
	struct ppart *pp = &m->pat->parts[part];
	struct pcollect col = {.part = part}, *old = m->collect;
	struct val *keep = row_copy(c, m->row);
	m->collect = &col;
	match_part(c, m, part);
	m->collect = old;
	struct pick *pk = ar_alloc(c, sizeof(*pk) * (col.n + 1));
	for (size_t i = 0; i < col.n; i++) {
		struct val *r = col.rows[i];
		pk[i].x = r[pp->nodes[0].slot].u.id;
		pk[i].y = r[pp->nodes[pp->nrels].slot].u.id;
		pk[i].len = pp->sel == SEL_ANY ? 0 : col.nedges[i];
		pk[i].i = i;
	}
	qsort(pk, col.n, sizeof(*pk), cmp_pick);
	size_t nslot = sizeof(struct val) * (size_t)c->nslots;
	for (size_t g = 0, e; g < col.n; g = e) {
		size_t groups = 0;
		for (e = g;
		     e < col.n && pk[e].x == pk[g].x && pk[e].y == pk[g].y;
		     e++) {
			if (!selected(pp, pk + g, e - g, &groups))
				continue;
			size_t i = pk[e].i, nused = m->nused;
			for (size_t k = 0; k < col.nedges[i]; k++)
				used_push(c, m, col.edges[i][k]);
			memcpy(m->row, col.rows[i], nslot);
			struct seg *ss = m->segs;
			int *so = m->order, st = m->start;
			match_part(c, m, part + 1);
			m->part = part, m->segs = ss, m->order = so;
			m->start = st;
			m->nused = nused;
		}
	}
	memcpy(m->row, keep, nslot);
}

/* Expands one BFS layer of `front` in direction dir; records the parent
 * edge of every newly seen node in `par`. Returns a node also seen by the
 * other side (`other`), or UINT64_MAX. */
static uint64_t bfs_layer(struct qctx *c, struct mstate *m, struct prel *r,
                          int dir, struct idvec *front, struct hmap *par,
                          struct hmap *other)
{
	struct idvec next = {0};
	uint64_t meet = UINT64_MAX;
	for (size_t i = 0; i < front->n && meet == UINT64_MAX; i++) {
		struct adj *a;
		size_t n;
		g_adjacent(c, front->v[i], dir,
		           r->ntypes == 1 ? r->types[0] : NULL, &a, &n);
		for (size_t j = 0; j < n; j++) {
			uint64_t o = a[j].other;
			q_tick_every(c);
			if (hm_get(par, o) ||
			    !rel_ok(c, r, a[j].edge, a[j].type, m->row))
				continue;
			hm_put(c, par, o, (void *)(uintptr_t)(a[j].edge + 1));
			idv_push(c, &next, o);
			if (hm_get(other, o)) {
				meet = o;
				break;
			}
		}
	}
	*front = next;
	return meet;
}

/* the edges from the BFS root to `at`, in root-to-at order */
static size_t walk_back(struct qctx *c, struct hmap *par, uint64_t at,
                        uint64_t *out, size_t max)
{
	size_t n = 0;
	for (;;) {
		uintptr_t p = (uintptr_t)hm_get(par, at);
		if (p == UINTPTR_MAX || !p || n >= max)
			break;
		uint64_t e = (uint64_t)(p - 1);
		out[n++] = e;
		struct gedge *g = g_edge_shallow(c, e);
		at = g->src == at ? g->dst : g->src;
	}
	for (size_t i = 0; i < n / 2; i++) {
		uint64_t t = out[i];
		out[i] = out[n - 1 - i];
		out[n - 1 - i] = t;
	}
	return n;
}

/* one shortest path by bidirectional BFS; 1 when a row was emitted */
static int bidi_shortest(struct qctx *c, struct mstate *m, struct ppart *pp,
                         uint64_t src, uint64_t dst)
{
	struct prel *r = &pp->rels[0];
	int64_t maxh = r->maxh < 0 ? QRY_VARLEN_HOPS_MAX : r->maxh;
	struct hmap *pa = hm_scratch(c), *pb = hm_scratch(c);
	struct idvec fa = {0}, fb = {0};
	hm_put(c, pa, src, (void *)UINTPTR_MAX);
	hm_put(c, pb, dst, (void *)UINTPTR_MAX);
	idv_push(c, &fa, src);
	idv_push(c, &fb, dst);
	uint64_t meet = UINT64_MAX;
	for (int64_t d = 0; d < maxh && fa.n && fb.n; d++) {
		if (fa.n <= fb.n)
			meet = bfs_layer(c, m, r, r->dir, &fa, pa, pb);
		else
			meet = bfs_layer(c, m, r, flip(r->dir), &fb, pb, pa);
		if (meet != UINT64_MAX)
			break;
	}
	int found = 0;
	if (meet != UINT64_MAX) {
		uint64_t left[QRY_VARLEN_HOPS_MAX + 1],
		    right[QRY_VARLEN_HOPS_MAX + 1];
		size_t nl = walk_back(c, pa, meet, left, QRY_VARLEN_HOPS_MAX);
		size_t nr = walk_back(c, pb, meet, right, QRY_VARLEN_HOPS_MAX);
		struct seg sg;
		sg.n = nl + nr;
		sg.edges = ar_alloc(c, sizeof(uint64_t) * (sg.n + 1));
		memcpy(sg.edges, left, sizeof(uint64_t) * nl);
		for (size_t i = 0; i < nr; i++)
			sg.edges[nl + i] = right[nr - 1 - i];
		if ((int64_t)sg.n >= r->minh && (int64_t)sg.n <= maxh) {
			int part = m->part;
			m->segs[0] = sg;
			m->row[pp->nodes[1].slot] = v_node(dst);
			struct val l = v_list(c, sg.n);
			for (size_t i = 0; i < sg.n; i++)
				l.u.l->v[i] = v_rel(sg.edges[i]);
			m->row[r->slot] = r->varlen ? l
			                  : sg.n    ? v_rel(sg.edges[0])
			                            : v_null();
			if (pp->pathslot >= 0)
				m->row[pp->pathslot] =
				    make_path(c, pp, m->row, m->segs);
			match_part(c, m, part + 1);
			m->part = part;
			found = 1;
		}
	}
	hm_scratch_done(c, pb);
	hm_scratch_done(c, pa);
	return found || meet == UINT64_MAX;
}

/* Layered BFS from src recording, for every node, all parent edges of
 * the layer it was first reached in (all shortest paths). 1 when dst was
 * reached. */
static int bfs_all(struct qctx *c, struct mstate *m, struct prel *r,
                   uint64_t src, uint64_t dst, struct hmap *parent)
{
	int64_t maxh = r->maxh < 0 ? QRY_VARLEN_HOPS_MAX : r->maxh;
	struct hmap *seen = hm_scratch(c);
	struct idvec front = {0};
	idv_push(c, &front, src);
	hm_put(c, seen, src, (void *)1);
	int found = 0;
	for (int64_t d = 0; d < maxh && !found && front.n; d++) {
		struct idvec next = {0};
		struct hmap *layer = hm_scratch(c);
		for (size_t i = 0; i < front.n; i++) {
			struct adj *a;
			size_t n;
			g_adjacent(c, front.v[i], r->dir,
			           r->ntypes == 1 ? r->types[0] : NULL, &a, &n);
			for (size_t j = 0; j < n; j++) {
				uint64_t o = a[j].other;
				q_tick_every(c);
				if (!rel_ok(c, r, a[j].edge, a[j].type,
				            m->row) ||
				    (hm_get(seen, o) && !hm_get(layer, o)))
					continue;
				if (!hm_get(layer, o)) {
					hm_put(c, layer, o, (void *)1);
					idv_push(c, &next, o);
				}
				struct idvec *pv = hm_get(parent, o);
				if (!pv) {
					pv = ar_alloc(c, sizeof(*pv));
					hm_put(c, parent, o, pv);
				}
				idv_push(c, pv, a[j].edge);
				found |= o == dst;
			}
		}
		for (size_t i = 0; i < next.n; i++)
			hm_put(c, seen, next.v[i], (void *)1);
		hm_scratch_done(c, layer);
		front = next;
	}
	hm_scratch_done(c, seen);
	return found;
}

/* binds the path given by edges (src to dst order) and continues */
static void emit_path(struct qctx *c, struct mstate *m, struct ppart *pp,
                      int part, struct seg *segs, uint64_t dst, struct seg sg)
{
	struct prel *r = &pp->rels[0];
	m->segs = segs;
	m->segs[0] = sg;
	m->part = part;
	m->row[pp->nodes[1].slot] = v_node(dst);
	struct val l = v_list(c, sg.n);
	for (size_t i = 0; i < sg.n; i++)
		l.u.l->v[i] = v_rel(sg.edges[i]);
	m->row[r->slot] = r->varlen ? l : sg.n ? v_rel(sg.edges[0]) : v_null();
	if (pp->pathslot >= 0)
		m->row[pp->pathslot] = make_path(c, pp, m->row, m->segs);
	match_part(c, m, part + 1);
	m->part = part;
}

/* walks the parent edges back from dst to src: every shortest path (or
 * the first one for shortestPath) */
static void emit_shortest(struct qctx *c, struct mstate *m, struct ppart *pp,
                          int part, struct seg *segs, uint64_t src,
                          uint64_t dst, struct hmap *parent)
{
	uint64_t stack_e[QRY_VARLEN_HOPS_MAX + 1];
	uint64_t stack_n[QRY_VARLEN_HOPS_MAX + 2];
	size_t idx[QRY_VARLEN_HOPS_MAX + 2];
	int depth = 0, emitted = 0;
	stack_n[0] = dst;
	idx[0] = 0;
	while (depth >= 0 && !(emitted && pp->shortest == 1)) {
		uint64_t at = stack_n[depth];
		if (at == src) {
			struct seg sg = {.n = (size_t)depth};
			sg.edges = ar_alloc(c, sizeof(uint64_t) * (sg.n + 1));
			for (int i = 0; i < depth; i++)
				sg.edges[i] = stack_e[depth - 1 - i];
			if ((int64_t)sg.n >= pp->rels[0].minh) {
				emit_path(c, m, pp, part, segs, dst, sg);
				emitted = 1;
			}
			depth--;
			continue;
		}
		struct idvec *pv = hm_get(parent, at);
		if (!pv || idx[depth] >= pv->n ||
		    depth >= QRY_VARLEN_HOPS_MAX) {
			depth--;
			continue;
		}
		uint64_t e = pv->v[idx[depth]++];
		struct gedge *ge = g_edge_shallow(c, e);
		stack_e[depth] = e;
		depth++;
		stack_n[depth] = ge->src == at ? ge->dst : ge->src;
		idx[depth] = 0;
	}
}

/* shortestPath / allShortestPaths between the end nodes of a
 * one-relationship part */
static void shortest(struct qctx *c, struct mstate *m, struct ppart *pp)
{
	struct prel *r = &pp->rels[0];
	struct idvec sa, sb;
	candidates(c, m, &pp->nodes[0], &sa, NULL);
	int part = m->part;
	struct seg *segs = m->segs;
	for (size_t ai = 0; ai < sa.n; ai++) {
		if (!node_ok(c, &pp->nodes[0], sa.v[ai], m->row))
			continue;
		struct val s0 = m->row[pp->nodes[0].slot];
		m->row[pp->nodes[0].slot] = v_node(sa.v[ai]);
		candidates(c, m, &pp->nodes[1], &sb, NULL);
		for (size_t bi = 0; bi < sb.n; bi++) {
			uint64_t src = sa.v[ai], dst = sb.v[bi];
			q_tick_every(c); /* every pair, found or not */
			if (!node_ok(c, &pp->nodes[1], dst, m->row))
				continue;
			m->segs = segs;
			m->part = part;
			if (pp->shortest == 1 && src != dst && r->minh <= 1 &&
			    bidi_shortest(c, m, pp, src, dst))
				continue;
			if (src == dst && r->minh == 0) {
				struct seg sg = {0};
				emit_path(c, m, pp, part, segs, dst, sg);
				continue;
			}
			struct hmap *parent = hm_scratch(c);
			if (bfs_all(c, m, r, src, dst, parent))
				emit_shortest(c, m, pp, part, segs, src, dst,
				              parent);
			hm_scratch_done(c, parent);
		}
		m->row[pp->nodes[0].slot] = s0;
	}
}

void match_pattern(struct qctx *c, struct pattern *p, struct expr *where,
                   struct val *row, struct rows *out)
{
	struct mstate m = {.pat = p, .where = where, .out = out, .row = row};
	/* fresh variables of this pattern start unbound */
	for (size_t k = 0; k < p->nparts; k++) {
		struct ppart *pp = &p->parts[k];
		for (size_t i = 0; i <= pp->nrels; i++) {
			if (new_var(pp->nodes[i].var))
				row[pp->nodes[i].slot] = v_null();
			if (i < pp->nrels && new_var(pp->rels[i].var))
				row[pp->rels[i].slot] = v_null();
		}
	}
	/* relationships bound before still count as used */
	match_part(c, &m, 0);
}

/* ---- stepped matching ------------------------------------------------
 * The pipeline's MATCH runs one start candidate of the first pattern part
 * at a time, so a scan of a million nodes hands out rows as it goes
 * instead of matching everything first. A first part that is a shortest
 * path runs whole in one step. */

struct mcursor {
	struct mstate m;
	struct idvec cand;
	struct gscan *scan; /* a label scan stepped, instead of cand */
	size_t next;
	int *order;
	int start;
	int exact; /* how cand was found (CAND_* bits); CAND_BY_ID for an
	            * outer cursor of IN TRANSACTIONS, whose chunks move the
	            * view between steps */
	int whole, done;
	/* hop_ok: a read whose first expansion (from the start node) is one
	 * plain relationship: a start node's relationships are walked a
	 * slice per step (hop), so a node of millions of them holds one
	 * slice and its rows, not all of them */
	int hop_ok;
	struct gadj *hop;   /* the bound start node's, being walked */
	int hop_how;        /* bind_node's answer for the start node */
	int hop_dir;        /* the direction walked from it */
	struct val hop_rel; /* the relationship's slot before */
};

/* relationships of a start node one step of a read's MATCH walks */
#define MATCH_HOP_SLICE 256

struct mcursor *match_open(struct qctx *c, struct pattern *p,
                           struct expr *where, struct val *row)
{
	struct mcursor *mc = ar_alloc(c, sizeof(*mc));
	mc->m.pat = p;
	mc->m.where = where;
	mc->m.row = row;
	for (size_t k = 0; k < p->nparts; k++) {
		struct ppart *pp = &p->parts[k];
		for (size_t i = 0; i <= pp->nrels; i++) {
			if (new_var(pp->nodes[i].var))
				row[pp->nodes[i].slot] = v_null();
			if (i < pp->nrels && new_var(pp->rels[i].var))
				row[pp->rels[i].slot] = v_null();
		}
	}
	struct ppart *pp = &p->parts[0];
	if (pp->shortest || pp->sel) {
		mc->whole = 1;
		return mc;
	}
	mc->start = pick_start(c, &mc->m, pp);
	mc->order = ar_alloc(c, sizeof(int) * (pp->nrels + 1));
	int k = 0;
	mc->order[k++] = mc->start;
	for (int i = mc->start + 1; i <= (int)pp->nrels; i++)
		mc->order[k++] = i;
	for (int i = mc->start - 1; i >= 0; i--)
		mc->order[k++] = i;
	/* an outer cursor of IN TRANSACTIONS hands out its candidates over
	 * chunk commits, which move the view (deleting nodes, removing
	 * labels): each is checked in full on the view of its turn. One in a
	 * chunk's subquery is done within the chunk. */
	mc->exact =
	    candidates(c, &mc->m, &pp->nodes[mc->start], &mc->cand, &mc->scan);
	if (g_outer_intx(c))
		mc->exact = CAND_BY_ID | CAND_STALE;
	/* not in a write (its clauses drain whole anyway), nor under IN
	 * TRANSACTIONS (its chunks move the view an open scan reads) */
	if (pp->nrels && !c->eager && !c->intx) {
		int ri = mc->start < (int)pp->nrels ? mc->start : mc->start - 1;
		const struct prel *r = &pp->rels[ri];
		mc->hop_ok = !r->varlen || (r->varlen == 1 && new_var(r->var));
	}
	return mc;
}

/* the next slice of the start node's relationships (mc->hop), each
 * expanded as expand does; after the last (a slice not full) the start
 * node is unbound and the next candidate's turn comes */
static void hop_step(struct qctx *c, struct mcursor *mc)
{
	struct mstate *m = &mc->m;
	struct ppart *pp = &m->pat->parts[0];
	int pos = mc->order[1];
	int ri = pos > mc->start ? pos - 1 : pos;
	struct prel *r = &pp->rels[ri];
	struct seg *sg = &m->segs[ri];
	struct adj a[MATCH_HOP_SLICE];
	size_t n = g_adj_next(c, mc->hop, a, MATCH_HOP_SLICE);
	if (r->varlen) { /* as expand: the search's first level, from here */
		vis_push(c, m, m->row[pp->nodes[mc->start].slot].u.id);
		sg->n = 0;
		sg->edges = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (r->varlen)
			varlen_one(c, m, r, mc->hop_dir, &a[i], pos, 1, sg, 0,
			           pos < mc->start);
		else
			expand_one(c, m, r, sg, mc->hop_rel, &a[i], pos, 1);
	}
	if (n == MATCH_HOP_SLICE)
		return; /* g_adj_next fills a slice until the end */
	g_adj_close(c, mc->hop);
	mc->hop = NULL;
	if (mc->hop_how == 1)
		m->row[pp->nodes[mc->start].slot] = v_null();
}

/* binds the start node id and opens its relationships for hop_step;
 * nothing when it does not fit */
static void hop_open(struct qctx *c, struct mcursor *mc, uint64_t id)
{
	struct mstate *m = &mc->m;
	struct ppart *pp = &m->pat->parts[0];
	int how = bind_node(c, m, mc->start, id, 0);
	if (!how)
		return;
	int pos = mc->order[1];
	int ri = pos > mc->start ? pos - 1 : pos;
	struct prel *r = &pp->rels[ri];
	int dir = pos > mc->start ? r->dir : flip(r->dir);
	mc->hop_rel = m->row[r->slot];
	if (!new_var(r->var) && mc->hop_rel.t != V_REL) {
		if (how == 1)
			m->row[pp->nodes[mc->start].slot] = v_null();
		return; /* as expand */
	}
	mc->hop_how = how;
	mc->hop_dir = dir;
	if (r->varlen) {
		/* varlen_dfs's depth 0: the path of no relationship, when the
		 * pattern allows one; then its first level, a slice per step */
		struct seg *sg = &m->segs[ri];
		sg->n = 0;
		sg->edges = NULL;
		vis_push(c, m, id);
		if (r->minh <= 0)
			bind_node_then(c, m, pos, id, 1);
		m->nvis = 0;
		if (r->maxh == 0) {
			if (how == 1)
				m->row[pp->nodes[mc->start].slot] = v_null();
			return;
		}
	}
	mc->hop = g_adj_open(c, id, dir, r->ntypes == 1 ? r->types[0] : NULL);
}

void match_close(struct qctx *c, struct mcursor *mc)
{
	g_adj_close(c, mc->hop);
	mc->hop = NULL;
}

int match_step(struct qctx *c, struct mcursor *mc, struct rows *out)
{
	struct mstate *m = &mc->m;
	m->out = out;
	if (mc->whole) {
		if (mc->done)
			return 0;
		mc->done = 1;
		match_part(c, m, 0);
		return 1;
	}
	uint64_t id = 0;
	if (!mc->hop) {
		if (mc->scan ? !g_scan_next(c, mc->scan, &id)
		             : mc->next >= mc->cand.n)
			return 0;
		if (!mc->scan)
			id = mc->cand.v[mc->next++];
	}
	struct ppart *pp = &m->pat->parts[0];
	m->used = NULL; /* its array lived in the previous step's arena */
	m->nused = m->capused = 0;
	m->vis = NULL; /* as used */
	m->nvis = m->capvis = m->visbase = 0;
	m->part = 0;
	m->segs = ar_alloc(c, sizeof(struct seg) * (pp->nrels + 1));
	m->order = mc->order;
	m->start = mc->start;
	if (mc->hop) {
		hop_step(c, mc);
		return 1;
	}
	m->start_exact = mc->exact;
	if (!mc->hop_ok) {
		bind_node_then(c, m, mc->start, id, 0);
		return 1;
	}
	hop_open(c, mc, id);
	if (mc->hop)
		hop_step(c, mc);
	return 1;
}

/* ---- aggregation ------------------------------------------------------- */

static struct val agg_arg(struct qctx *c, struct expr *a, struct val *row,
                          size_t i)
{
	return a->nargs > i ? eval(c, a->args[i], row) : v_null();
}

/* keeps v (a copy, in the aggregation's arena) among s->vals */
static void agg_keep(struct qctx *c, struct aggst *s, struct val v,
                     struct arena *keep)
{
	struct arena *was = ar_use(c, keep);
	struct val *p = ar_alloc(c, sizeof(*p));
	*p = v_copy(c, v);
	rows_push(c, &s->vals, p);
	ar_use(c, was);
}

static struct val agg_copy(struct qctx *c, struct val v, struct arena *keep)
{
	struct arena *was = ar_use(c, keep);
	v = v_copy(c, v);
	ar_use(c, was);
	return v;
}

static int seen_before(struct qctx *c, struct aggst *s, struct val v,
                       struct arena *keep)
{
	for (size_t i = 0; i < s->vals.n; i++)
		if (v_equiv(c, *s->vals.r[i], v))
			return 1;
	agg_keep(c, s, v, keep);
	return 0;
}

void agg_add(struct qctx *c, struct expr *a, struct aggst *s, struct val *row,
             struct arena *keep)
{
	if (a->kind == E_COUNTSTAR) {
		s->cnt++;
		return;
	}
	struct val v = agg_arg(c, a, row, 0);
	if (v.t == V_NULL)
		return;
	const char *n = a->name;
	int collectlike = !strcasecmp(n, "collect") ||
	                  !strncasecmp(n, "percentile", 10) ||
	                  !strncasecmp(n, "stdev", 5);
	if (a->distinct && !collectlike) {
		if (seen_before(c, s, v, keep))
			return;
	} else if (collectlike) {
		if (a->distinct) {
			if (seen_before(c, s, v, keep))
				return;
		} else {
			agg_keep(c, s, v, keep);
		}
		if (!strncasecmp(n, "percentile", 10))
			s->best = agg_copy(c, agg_arg(c, a, row, 1), keep);
		return;
	}
	s->cnt++;
	if (!strcasecmp(n, "sum") || !strcasecmp(n, "avg")) {
		if (v.t == V_TEMPORAL) {
			s->best = agg_copy(
			    c, s->has ? arith(c, '+', s->best, v) : v, keep);
			s->has = 1;
			return;
		}
		if (!v_is_num(v))
			qerr(c, LORA_ETYPE, "InvalidArgumentType: %s() of a %s",
			     n, v_type_name(v));
		if (v.t == V_FLOAT)
			s->is_float = 1;
		s->fsum += v_num(v);
		if (v.t == V_INT &&
		    __builtin_add_overflow(s->isum, v.u.i, &s->isum))
			qerr(c, LORA_EARITH, "IntegerOverflow: sum overflow");
		return;
	}
	if (!strcasecmp(n, "min") || !strcasecmp(n, "max")) {
		int mx = !strcasecmp(n, "max");
		if (!s->has) {
			s->best = agg_copy(c, v, keep);
			s->has = 1;
			return;
		}
		int r = v_order(c, v, s->best);
		if (mx ? r > 0 : r < 0)
			s->best = agg_copy(c, v, keep);
	}
}

static int cmp_num(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int cmp_int(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* percentileDisc over integers: the integer itself (as a double it may
 * round, and 2^63 does not convert back) */
static struct val percentile_ints(struct qctx *c, struct aggst *s, size_t idx)
{
	size_t n = s->vals.n;
	int64_t *iv = ar_alloc(c, sizeof(int64_t) * n);
	for (size_t i = 0; i < n; i++)
		iv[i] = s->vals.r[i]->u.i;
	qsort(iv, n, sizeof(int64_t), cmp_int);
	return v_int(iv[idx]);
}

static struct val agg_percentile(struct qctx *c, struct aggst *s, int cont)
{
	if (s->best.t == V_NULL)
		return v_null();
	double p = v_num(s->best);
	if (!v_is_num(s->best) || p < 0 || p > 1)
		qerr(c, LORA_EINVAL,
		     "NumberOutOfRange: percentile must be "
		     "between 0.0 and 1.0");
	size_t n = s->vals.n;
	if (!n)
		return v_null();
	double *d = ar_alloc(c, sizeof(double) * n);
	int allint = 1;
	for (size_t i = 0; i < n; i++) {
		if (!v_is_num(*s->vals.r[i]))
			qerr(c, LORA_ETYPE,
			     "InvalidArgumentType: percentile "
			     "of a non-number");
		d[i] = v_num(*s->vals.r[i]);
		allint &= s->vals.r[i]->t == V_INT;
	}
	qsort(d, n, sizeof(double), cmp_num);
	if (cont) {
		double pos = p * (double)(n - 1);
		size_t lo = (size_t)floor(pos), hi = (size_t)ceil(pos);
		return v_float(d[lo] + (d[hi] - d[lo]) * (pos - (double)lo));
	}
	size_t idx = p == 0 ? 0 : (size_t)ceil(p * (double)n) - 1;
	if (idx >= n)
		idx = n - 1;
	return allint ? percentile_ints(c, s, idx) : v_float(d[idx]);
}

struct val agg_result(struct qctx *c, struct expr *a, struct aggst *s)
{
	if (a->kind == E_COUNTSTAR)
		return v_int(s->cnt);
	const char *n = a->name;
	if (!strcasecmp(n, "count"))
		return v_int(a->distinct ? (int64_t)s->vals.n : s->cnt);
	if (!strcasecmp(n, "collect")) {
		struct val l = v_list(c, s->vals.n);
		for (size_t i = 0; i < s->vals.n; i++)
			l.u.l->v[i] = *s->vals.r[i];
		return l;
	}
	if (!strcasecmp(n, "sum")) {
		if (s->has)
			return s->best;
		return s->is_float ? v_float(s->fsum) : v_int(s->isum);
	}
	if (!strcasecmp(n, "avg")) {
		if (s->has)
			return s->best; /* durations: not divided (rare) */
		if (!s->cnt)
			return v_null();
		return v_float(s->fsum / (double)s->cnt);
	}
	if (!strcasecmp(n, "min") || !strcasecmp(n, "max"))
		return s->has ? s->best : v_null();
	if (!strcasecmp(n, "percentileDisc"))
		return agg_percentile(c, s, 0);
	if (!strcasecmp(n, "percentileCont"))
		return agg_percentile(c, s, 1);
	/* stDev / stDevP */
	size_t k = s->vals.n;
	int pop = !strcasecmp(n, "stDevP");
	if (k < 2)
		return v_float(0);
	double mean = 0, sq = 0;
	for (size_t i = 0; i < k; i++)
		mean += v_num(*s->vals.r[i]);
	mean /= (double)k;
	for (size_t i = 0; i < k; i++) {
		double d = v_num(*s->vals.r[i]) - mean;
		sq += d * d;
	}
	return v_float(sqrt(sq / (double)(pop ? k : k - 1)));
}
