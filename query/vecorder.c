/* vecorder.c - the VectorTopK operator: MATCH (n:L) ... ORDER BY
 * vector.similarity.cosine|euclidean(n.p, q) ... LIMIT k answered from
 * storage's float32 column instead of a sort of every node.
 *
 * The generic plan scans the label, projects every node, computes its
 * score from a copied vector and keeps the best rows. Here every vector
 * of the column (sto_view_vector_column) is scored in blocks, with the
 * bits vector.similarity.* gives (the sums added in vec_dot's order, the
 * norms multiplied as sim_cosine does), and the candidates are walked in
 * the order the sort gives: by score, then by scan order (ascending id),
 * a null score last ascending and first descending. The MATCH's WHERE is
 * evaluated on them in that order until SKIP + LIMIT pass (with more ORDER
 * BY keys, every candidate tied with the last one passes on too), and
 * those rows go to the projection in scan order: the projection sorts,
 * skips and limits them exactly as it would the whole scan, so the answer
 * is the generic one. Nodes of the label without a column vector (no
 * property, or a list) are scored by the generic expression.
 *
 * The rewrite steps aside (vto_pick returns 0, the MATCH runs as usual)
 * when the statement sees its own writes or pending batches, no column
 * can be had, the node variable is bound already, the query vector is not
 * a list of numbers or a vector of the column's dimension, or SKIP and
 * LIMIT are not counts: the generic path then gives the answer or the
 * error. It is not planned when an index serves the WHERE (the generic
 * seek is cheap, and hands out nodes in another order).
 *
 * What differs: the WHERE is evaluated only on the candidates walked, so
 * an error it would raise on a node that cannot be in the answer is not
 * raised. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qint.h"

#define VTO_EXPR_DEPTH_MAX 32 /* query-vector expression walked */
#define VTO_GROW           8  /* candidates sorted more when a WHERE drops */

static _Atomic uint64_t vto_answers;

uint64_t vto_answers_total(void)
{
	return atomic_load(&vto_answers);
}

/* ---- planning ------------------------------------------------------------ */

static int is_sim(const struct expr *e, int *euclid)
{
	if (e->kind != E_CALL || e->nargs != 2 || !e->name)
		return 0;
	if (!strcasecmp(e->name, "vector.similarity.cosine"))
		*euclid = 0;
	else if (!strcasecmp(e->name, "vector.similarity.euclidean"))
		*euclid = 1;
	else
		return 0;
	return 1;
}

/* the input row's slot behind `slot` of the row sim is read on; -1 for
 * an item computed by the projection */
static int in_slot(const struct vto *v, int slot)
{
	if (!v->projected)
		return slot;
	for (size_t j = 0; j < v->pr->nitems; j++)
		if (v->pr->items[j].slot == slot) {
			const struct expr *e = v->pr->items[j].e;
			return e->kind == E_VAR ? e->slot : -1;
		}
	return slot;
}

/* whether e reads only what the input row fixes (never the node) and
 * nothing random */
static int row_constant(const struct vto *v, const struct expr *e, int depth)
{
	if (!e)
		return 1;
	if (depth > VTO_EXPR_DEPTH_MAX)
		return 0;
	switch (e->kind) {
	case E_LIT:
	case E_PARAM:
		return 1;
	case E_VAR: {
		int s = in_slot(v, e->slot);
		return s >= 0 && s != v->pn->slot;
	}
	case E_NEG:
	case E_POS:
	case E_PROP:
		return row_constant(v, e->a, depth + 1);
	case E_BIN:
	case E_INDEX:
		return row_constant(v, e->a, depth + 1) &&
		       row_constant(v, e->b, depth + 1);
	case E_CALL:
		if (!e->name || strcasecmp(e->name, "vector"))
			return 0;
		/* fall through */
	case E_LIST:
	case E_MAP:
		for (size_t i = 0; i < e->nargs; i++)
			if (!row_constant(v, e->args[i], depth + 1))
				return 0;
		return 1;
	default:
		return 0;
	}
}

/* the single fresh node of a one-node pattern with one label, or NULL */
static struct pnode *lone_node(const struct clause *cl)
{
	if (cl->kind != C_MATCH || !cl->pat || cl->pat->nparts != 1)
		return NULL;
	struct ppart *pp = &cl->pat->parts[0];
	if (pp->nrels || pp->pathslot >= 0 || pp->shortest || pp->sel)
		return NULL;
	struct pnode *pn = &pp->nodes[0];
	if ((pn->var && pn->var[0]) || pn->nlabels != 1 || pn->lx || pn->props)
		return NULL;
	return pn;
}

/* the similarity call the first ORDER BY key reads, and where */
static struct expr *order_sim(struct vto *v)
{
	struct expr *e = v->pr->order[0].e;
	v->projected = 1;
	if (e->kind == E_VAR)
		for (size_t j = 0; j < v->pr->nitems; j++)
			if (v->pr->items[j].slot == e->slot) {
				e = v->pr->items[j].e;
				v->projected = 0;
				break;
			}
	return is_sim(e, &v->euclid) ? e : NULL;
}

int vto_plan(struct qctx *c, struct squery *s, size_t i, struct vto *out)
{
	memset(out, 0, sizeof *out);
	struct clause *cl = s->cl[i];
	struct pnode *pn = lone_node(cl);
	if (!pn || i + 1 >= s->ncl)
		return 0;
	struct clause *nx = s->cl[i + 1];
	struct proj *pr = nx->proj;
	if ((nx->kind != C_WITH && nx->kind != C_RETURN) || !pr ||
	    pr->distinct || pr->naggs || !pr->norder || !pr->limit)
		return 0;
	*out = (struct vto){.cl = cl, .pr = pr, .pn = pn};
	out->label = pn->labels[0];
	struct expr *e = order_sim(out);
	if (!e)
		return 0;
	for (int a = 0; a < 2 && !out->qarg; a++) {
		struct expr *p = e->args[a];
		if (p->kind == E_PROP && p->a && p->a->kind == E_VAR &&
		    in_slot(out, p->a->slot) == pn->slot &&
		    row_constant(out, e->args[1 - a], 0)) {
			out->key = p->name;
			out->qarg = e->args[1 - a];
		}
	}
	if (!out->qarg)
		return 0;
	out->sim = e;
	out->desc = pr->order[0].desc;
	out->ties = pr->norder > 1;
	if (cl->where) { /* an index seek serves it: leave it to the seek */
		struct seekspec sp[SEEK_SPECS_MAX];
		int k = seek_specs(cl->pat, pn, cl->where, sp, SEEK_SPECS_MAX);
		for (int j = 0; j < k; j++)
			if (seek_has_index(c, out->label, &sp[j]))
				return 0;
	}
	return 1;
}

void vto_explain(const struct vto *v, struct lora_buf *b)
{
	lora_buf_printf(b, "VectorTopK(:%s.%s, %s %s)", v->label, v->key,
	                v->euclid ? "euclidean" : "cosine",
	                v->desc ? "DESC" : "ASC");
}

/* ---- scoring ------------------------------------------------------------- */

/* Scores of one column block (STO_VCOL_BLOCK vectors, coordinate by
 * coordinate) against q, as vector.similarity.* computes them: dot
 * products and squared norms in vec_dot's four running sums, cosine
 * (1 + x.q / (|x| |q|)) / 2, euclidean 1 / (1 + sum (x - q)^2) added in
 * coordinate order; NAN for a zero vector's cosine (a null score). */
static void block_scores(const float *restrict xs, const double *restrict q,
                         double qn, uint32_t dim, int euclid,
                         double *restrict out)
{
	enum { B = STO_VCOL_BLOCK };
	if (euclid) {
		double a[B] = {0};
		for (uint32_t i = 0; i < dim; i++)
			for (int j = 0; j < B; j++) {
				double d = (double)xs[i * B + j] - q[i];
				a[j] += d * d;
			}
		for (int j = 0; j < B; j++)
			out[j] = 1 / (1 + a[j]);
		return;
	}
	double d0[B] = {0}, d1[B] = {0}, d2[B] = {0}, d3[B] = {0};
	double n0[B] = {0}, n1[B] = {0}, n2[B] = {0}, n3[B] = {0};
	uint32_t i = 0;
	for (; i + 4 <= dim; i += 4)
		for (int j = 0; j < B; j++) {
			double x0 = xs[i * B + j], x1 = xs[(i + 1) * B + j];
			double x2 = xs[(i + 2) * B + j],
			       x3 = xs[(i + 3) * B + j];
			d0[j] += x0 * q[i];
			d1[j] += x1 * q[i + 1];
			d2[j] += x2 * q[i + 2];
			d3[j] += x3 * q[i + 3];
			n0[j] += x0 * x0;
			n1[j] += x1 * x1;
			n2[j] += x2 * x2;
			n3[j] += x3 * x3;
		}
	for (; i < dim; i++)
		for (int j = 0; j < B; j++) {
			double x = xs[i * B + j];
			d0[j] += x * q[i];
			n0[j] += x * x;
		}
	for (int j = 0; j < B; j++) {
		double na = sqrt(n0[j] + n1[j] + n2[j] + n3[j]);
		double dp = d0[j] + d1[j] + d2[j] + d3[j];
		out[j] = na == 0 || qn == 0 ? NAN : (1 + dp / (na * qn)) / 2;
	}
}

/* ---- candidates in sort order -------------------------------------------- */

struct hit {
	double s; /* NAN: null */
	uint64_t id;
};

/* whether a sorts before b among non-null scores (ties: scan order) */
static int before(const struct hit *a, const struct hit *b, int desc)
{
	if (a->s != b->s)
		return desc ? a->s > b->s : a->s < b->s;
	return a->id < b->id;
}

/* The state of one input row's pick: the non-null candidates (the
 * column's vectors, scored once by column_scores, plus the extra nodes
 * scored generically), the null ones by id, and the first `nsorted`
 * non-null ones in sort order. */
struct pick {
	const struct vto *v;
	const struct sto_vcol_ref *col;
	const double *q;
	double qn;
	const double *cs;    /* column_scores */
	struct idvec cnulls; /* the column's null scores (ascending) */
	struct hit *extra;   /* generically scored nodes, non-null */
	size_t nextra;
	uint64_t *nulls; /* ascending */
	size_t nnulls;
	size_t nscored;       /* non-null candidates in all */
	struct hit *sorted;   /* the best nsorted, in sort order */
	size_t nsorted, want; /* want: how many to sort next time */
};

/* sort order for qsort (no shared state: statements run in parallel) */
static int hit_cmp_desc(const void *x, const void *y)
{
	const struct hit *a = x, *b = y;
	return before(a, b, 1) ? -1 : before(b, a, 1);
}

static int hit_cmp_asc(const void *x, const void *y)
{
	const struct hit *a = x, *b = y;
	return before(a, b, 0) ? -1 : before(b, a, 0);
}

/* heap with the worst kept candidate at the root */
static void heap_fix(struct hit *h, size_t n, size_t i, int desc)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && before(&h[m], &h[l], desc))
			m = l;
		if (r < n && before(&h[m], &h[r], desc))
			m = r;
		if (m == i)
			return;
		struct hit t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void heap_offer(struct hit *h, size_t k, size_t *n, struct hit x,
                       int desc)
{
	if (*n < k) {
		size_t i = (*n)++;
		h[i] = x;
		while (i && before(&h[(i - 1) / 2], &h[i], desc)) {
			struct hit t = h[i];
			h[i] = h[(i - 1) / 2];
			h[(i - 1) / 2] = t;
			i = (i - 1) / 2;
		}
	} else if (before(&x, &h[0], desc)) {
		h[0] = x;
		heap_fix(h, k, 0, desc);
	}
}

/* the column's scores (NAN: null), computed once per pick: 8 bytes per
 * vector, charged to the statement (one pass that scores, then the heap
 * passes, measured 5.2 ms against 9.7 for scoring inside each heap pass) */
static const double *column_scores(struct qctx *c, struct pick *p)
{
	const struct sto_vcol_ref *col = p->col;
	if (p->cs)
		return p->cs;
	double *s = ar_alloc_nz(c, sizeof(double) * (col->n + STO_VCOL_BLOCK));
	for (size_t i = 0; i < col->n; i += STO_VCOL_BLOCK) {
		block_scores(col->rows + i * col->dim, p->q, p->qn, col->dim,
		             p->v->euclid, s + i);
		q_tick_every(c);
	}
	for (size_t i = 0; i < col->n; i++)
		if (isnan(s[i]))
			idv_push(c, &p->cnulls, col->ids[i]);
	p->cs = s;
	return s;
}

/* sorts the best p->want non-null candidates into p->sorted */
static void sort_best(struct qctx *c, struct pick *p)
{
	const struct sto_vcol_ref *col = p->col;
	const double *s = column_scores(c, p);
	size_t k = p->want, all = col->n + p->nextra;
	if (k > all)
		k = all;
	int desc = p->v->desc;
	struct hit *h = ar_alloc_nz(c, sizeof(struct hit) * (k + 1));
	size_t n = 0;
	for (size_t i = 0; k && i < col->n; i++) {
		if (!isnan(s[i]))
			heap_offer(h, k, &n, (struct hit){s[i], col->ids[i]},
			           desc);
		q_tick_every(c);
	}
	for (size_t i = 0; k && i < p->nextra; i++)
		heap_offer(h, k, &n, p->extra[i], desc);
	qsort(h, n, sizeof *h, desc ? hit_cmp_desc : hit_cmp_asc);
	p->sorted = h;
	p->nsorted = n;
}

/* the i-th candidate in sort order into *h; 0 past the last */
static int cand_at(struct qctx *c, struct pick *p, size_t i, struct hit *h)
{
	int nulls_first = p->v->desc;
	if (nulls_first && i < p->nnulls) {
		*h = (struct hit){NAN, p->nulls[i]};
		return 1;
	}
	size_t j = nulls_first ? i - p->nnulls : i;
	if (j >= p->nscored) {
		j -= p->nscored;
		if (nulls_first || j >= p->nnulls)
			return 0;
		*h = (struct hit){NAN, p->nulls[j]};
		return 1;
	}
	if (j >= p->nsorted) {
		while (p->want <= j)
			p->want *= VTO_GROW;
		sort_best(c, p);
	}
	*h = p->sorted[j];
	return 1;
}

/* ---- one input row ------------------------------------------------------- */

/* the MATCH's row: the input row with the node bound */
static struct val *match_row(struct qctx *c, const struct vto *v,
                             const struct val *in, uint64_t id)
{
	struct val *r = row_copy(c, in);
	r[v->pn->slot] = v_node(id);
	return r;
}

/* the row sim is read on: r, and the projection's pass-through items when
 * sim is read after it (the only items it may read, vto_plan) */
static struct val *sim_row(struct qctx *c, const struct vto *v, struct val *r)
{
	if (!v->projected)
		return r;
	struct val *x = row_copy(c, r);
	for (size_t j = 0; j < v->pr->nitems; j++)
		if (v->pr->items[j].e->kind == E_VAR)
			x[v->pr->items[j].slot] = r[v->pr->items[j].e->slot];
	return x;
}

/* SKIP / LIMIT as the projection reads them: 0 when it would raise */
static int count_of(struct qctx *c, struct expr *e, uint64_t *n)
{
	*n = 0;
	if (!e)
		return 1;
	struct val x = eval(c, e, NULL);
	if (x.t != V_INT || x.u.i < 0)
		return 0;
	*n = (uint64_t)x.u.i;
	return 1;
}

/* the query vector, when the similarity can only give scores (or nulls)
 * for it: a list of numbers or a vector, of the column's dimension */
static const double *query_vector(struct qctx *c, const struct vto *v,
                                  struct val *in,
                                  const struct sto_vcol_ref *col)
{
	struct val q = eval(c, v->qarg, sim_row(c, v, in));
	if (q.t != V_LIST && q.t != V_VECTOR)
		return NULL;
	for (size_t i = 0; q.t == V_LIST && i < q.u.l->n; i++)
		if (!v_is_num(q.u.l->v[i]))
			return NULL;
	if (q.t == V_LIST && q.u.l->n > 65536) /* vector.c's dimension limit */
		return NULL;
	uint32_t dim;
	const double *d = vec_coords(c, q, &dim);
	if (!d || !dim || (col->n && dim != col->dim))
		return NULL;
	return d;
}

static int in_column(const struct sto_vcol_ref *col, uint64_t id)
{
	size_t lo = 0, hi = col->n;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		if (col->ids[m] < id)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < col->n && col->ids[lo] == id;
}

static int id_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The nodes of the label that have no column vector, scored by the
 * generic expression (those the WHERE drops are left out, as the MATCH
 * drops them), and the column's null scores: into p. */
static void score_rest(struct qctx *c, struct pick *p, struct val *in,
                       uint64_t nlabel)
{
	const struct vto *v = p->v;
	struct idvec nulls = {0}, rest = {0};
	struct hit *extra = NULL;
	if (nlabel > p->col->n)
		g_scan(c, v->label, &rest);
	size_t nx = 0, j = 0;
	for (size_t i = 0; i < rest.n; i++) {
		q_tick_every(c);
		while (j < p->col->n && p->col->ids[j] < rest.v[i])
			j++;
		if (j < p->col->n && p->col->ids[j] == rest.v[i])
			continue;
		struct val *r = match_row(c, v, in, rest.v[i]);
		if (v->cl->where && eval_pred(c, v->cl->where, r) != 1)
			continue;
		struct val s = eval(c, v->sim, sim_row(c, v, r));
		if (s.t != V_FLOAT || isnan(s.u.f)) {
			idv_push(c, &nulls, rest.v[i]);
			continue;
		}
		if (!extra)
			extra = ar_alloc_nz(c, sizeof(struct hit) * rest.n);
		extra[nx++] = (struct hit){s.u.f, rest.v[i]};
	}
	p->extra = extra;
	p->nextra = nx;
	p->nulls = nulls.v;
	p->nnulls = nulls.n;
}

/* after the first sort_best: every null (the column's and the extra
 * nodes'), ascending, and the count of the non-null candidates */
static void merge_nulls(struct qctx *c, struct pick *p)
{
	size_t ncol = p->cnulls.n;
	for (size_t i = 0; i < p->nnulls; i++)
		idv_push(c, &p->cnulls, p->nulls[i]);
	if (ncol && p->nnulls)
		qsort(p->cnulls.v, p->cnulls.n, sizeof(uint64_t), id_cmp);
	p->nulls = p->cnulls.v;
	p->nnulls = p->cnulls.n;
	p->nscored = p->col->n - ncol + p->nextra;
}

static int same_key(const struct hit *a, const struct hit *b)
{
	return isnan(a->s) ? isnan(b->s) : a->s == b->s;
}

/* The candidates the projection can keep, by id: the first k in sort
 * order that pass the WHERE, and with ties every one tied with the k-th. */
static void walk(struct qctx *c, struct pick *p, struct val *in, uint64_t k,
                 int has_extra, struct idvec *out)
{
	const struct vto *v = p->v;
	struct hit h, last = {0};
	for (size_t i = 0; cand_at(c, p, i, &h); i++) {
		q_tick_every(c);
		if (out->n >= k && (!v->ties || !same_key(&h, &last)))
			break;
		if (v->cl->where && (!has_extra || in_column(p->col, h.id)) &&
		    eval_pred(c, v->cl->where, match_row(c, v, in, h.id)) != 1)
			continue;
		idv_push(c, out, h.id);
		last = h;
	}
}

/* the ids of this input row's rows, ascending; 0: the MATCH must run */
static int pick_ids(struct qctx *c, const struct vto *v, struct val *in,
                    uint64_t k, struct idvec *ids)
{
	struct sto_vcol_ref col;
	struct sto_view *view = g_view(c);
	int rv = view ? sto_view_vector_column(view, v->label, v->key, &col)
	              : LORA_ENOTFOUND;
	if (rv == LORA_ENOTFOUND)
		return 0;
	if (rv)
		qerr(c, rv, "vector column: %s", lora_strerror(rv));
	uint64_t nl = 0;
	if ((rv = sto_view_count_nodes(view, v->label, &nl)) != 0)
		qerr_sto(c, rv, "label count");
	if (!nl || !k)
		return 1;
	const double *q = query_vector(c, v, in, &col);
	if (!q)
		return 0;
	struct pick p = {.v = v, .col = &col, .q = q};
	p.qn = sqrt(vec_dot(q, q, col.dim));
	score_rest(c, &p, in, nl);
	p.want = v->cl->where ? 4 * k : k + !!v->ties;
	if (p.want < k) /* wrapped */
		p.want = k;
	sort_best(c, &p);
	merge_nulls(c, &p);
	walk(c, &p, in, k, nl > col.n, ids);
	if (ids->n)
		qsort(ids->v, ids->n, sizeof(uint64_t), id_cmp);
	return 1;
}

int vto_pick(struct qctx *c, const struct vto *v, struct val *in,
             struct arena *tmp, struct rows *out)
{
	uint64_t skip, limit;
	if (c->g.touched_nodes.n || in[v->pn->slot].t != V_NULL ||
	    !count_of(c, v->pr->skip, &skip) ||
	    !count_of(c, v->pr->limit, &limit))
		return 0;
	uint64_t k = skip + limit < skip ? UINT64_MAX : skip + limit;
	struct arena *rows = ar_use(c, tmp);
	struct idvec ids = {0};
	int ok = pick_ids(c, v, in, k, &ids);
	ar_use(c, rows);
	if (ok)
		atomic_fetch_add(&vto_answers, 1);
	for (size_t i = 0; ok && i < ids.n; i++)
		rows_push(c, out, match_row(c, v, in, ids.v[i]));
	ar_reset(c, tmp);
	return ok;
}
