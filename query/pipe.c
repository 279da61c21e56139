/* pipe.c - the executor: each clause is a pull-based operator, and the
 * statement a chain of them that hands out one row per call.
 *
 * A row an operator returns is valid until that operator is called again.
 * That contract is what bounds a read statement's memory: each operator
 * owns arenas it resets as rows flow through it,
 *   - `out`:  the row it returns, reset at every call;
 *   - `held`: what it derives from its current input row (MATCH's start
 *             candidates, UNWIND's list, a subquery's answers), reset when
 *             it pulls the next input row;
 *   - `tmp`:  scratch for one step (one start candidate, one input row of
 *             an aggregation).
 * An operator holds its input row only between pulls of its input, which
 * keeps that row valid. Operators that must remember rows (ORDER BY,
 * aggregation, DISTINCT, UNION) keep deep copies in their own `held`
 * arena, so their memory is their state, never the size of the result.
 *
 * Write statements keep the old clause-at-a-time semantics: an Eager step
 * after every clause drains it before the next clause starts (a clause
 * must see every effect of the one before), and nothing is reset
 * (c->keep_all) because the mutations and the overlay point into the rows.
 * The statement's leading clauses that read no graph at all (LOAD CSV,
 * UNWIND, WITH over parameters and their own values: graph_free) have no
 * Eager step after them, as no write can change what they produce: `LOAD
 * CSV ... WITH r LIMIT 1000 CREATE ...` reads 1,000 rows, not the file.
 * A write runs to its end inside qry_open; a read runs as its rows are
 * pulled, so LIMIT, or a client that stops pulling, stops the work.
 *
 * CALL { ... } IN TRANSACTIONS mixes the two: the statement runs as a read
 * (its other clauses may not write), and the IntX operator takes n input
 * rows at a time, runs the subquery over them in write mode into its own
 * arena, commits their batch through the request's commit callback (or
 * proposes it, and goes on with it laid over the view until it lands:
 * QRY_CHUNKS_IN_FLIGHT at most), then drops that arena and the overlay
 * and goes on over the view the commit returned. A statement's memory is
 * one chunk's and the copies of the chunks in flight, whatever its
 * length. */
#include <math.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qint.h"

struct op;
typedef struct val *(*op_fn)(struct qctx *c, struct op *o);

enum op_kind {
	OP_START,
	OP_MATCH,
	OP_UNWIND,
	OP_PROJ,
	OP_PERROW,
	OP_EAGER,
	OP_UNION,
	OP_LOADCSV,
	OP_INTX
};

struct op {
	int kind;
	op_fn next;
	struct op *in;
	struct clause *cl;
	struct arena out, held, tmp;
	int eof;
	/* the current input row, held between pulls of `in` */
	struct val *row;
	/* START: rows handed out in order */
	struct rows *src;
	size_t si;
	/* MATCH, PERROW, EAGER, blocking PROJ: rows handed out from buf */
	struct mcursor *mc;
	struct vto *vt;          /* MATCH planned as VectorTopK (vecorder.c) */
	const struct squery *sq; /* MATCH: its part and clause index */
	size_t ci;
	struct rows buf;
	size_t bi;
	int matched, filled;
	/* UNWIND */
	struct val list;
	size_t li;
	int lazy;
	int64_t at, step;
	uint64_t left;
	/* PROJ */
	struct proj *pr;
	uint64_t skip, limit, skipped, taken;
	int counted;
	/* the rest of the input is pulled past LIMIT in a write or IN
	 * TRANSACTIONS statement, so that the writes before it all happen:
	 * set when a clause before it in its part writes (q_clauses_write) */
	int drain;
	struct hmap seen;   /* DISTINCT: hash -> struct rows* of kept rows */
	struct val *thresh; /* ORDER BY ... LIMIT k: the k-th kept row's keys */
	/* LOAD CSV: the file of the current input row (load.c) and its
	 * absolute path (file(), in held) */
	struct csv_src *csv;
	struct val csv_path;
	/* UNION */
	struct query *q;
	struct op **kids;
	size_t nkids, ki;
	/* IN TRANSACTIONS: the chunk is being committed (an error now ends
	 * the statement whatever ON ERROR says); a chunk failed under ON
	 * ERROR BREAK (the rest of the input only gets null rows) */
	int committing, broken;
};

/* ---- plumbing -------------------------------------------------------- */

static struct val *pull(struct qctx *c, struct op *o)
{
	if (o->eof)
		return NULL;
	struct val *r;
	if (c->timing) {
		uint64_t t0 = lora_now_ns(), inner = c->prof_inner_ns;
		c->prof_inner_ns = 0;
		r = o->next(c, o);
		uint64_t dt = lora_now_ns() - t0;
		if (o->cl)
			o->cl->prof_ns += dt - c->prof_inner_ns;
		c->prof_inner_ns = inner + dt;
	} else {
		r = o->next(c, o);
	}
	if (!r)
		o->eof = 1;
	else if (o->cl)
		o->cl->prof_rows++;
	if ((++c->rows_made & 1023) == 0)
		q_tick(c);
	return r;
}

static void op_release(struct qctx *c, struct op *o)
{
	for (; o; o = o->in) {
		/* MATCH's arenas hold scratch only, even in a write statement
		 * (match_next) */
		int keep_all = c->keep_all;
		if (o->kind == OP_MATCH)
			c->keep_all = 0;
		if (o->kind == OP_MATCH && o->mc)
			match_close(c, o->mc); /* it lives in held */
		o->mc = NULL;
		ar_release(c, &o->out);
		ar_release(c, &o->held);
		ar_release(c, &o->tmp);
		c->keep_all = keep_all;
		if (o->seen.cap)
			hm_drop(c, &o->seen);
		load_close(c, o->csv);
		o->csv = NULL;
		for (size_t i = 0; i < o->nkids; i++)
			op_release(c, o->kids[i]);
	}
}

static struct op *op_new(struct qctx *c, int kind, op_fn fn, struct op *in,
                         struct clause *cl)
{
	struct op *o = ar_alloc(c, sizeof(*o));
	o->kind = kind;
	o->next = fn;
	o->in = in;
	o->cl = cl;
	return o;
}

/* hands out buf's rows; NULL when they are used up */
static struct val *from_buf(struct op *o)
{
	return o->bi < o->buf.n ? o->buf.r[o->bi++] : NULL;
}

/* Empties o->buf. Its array goes with the arena it came from, unless
 * nothing is reset (c->keep_all): then the next rows reuse it, which
 * spares a write statement an array per input row. */
static void buf_clear(struct qctx *c, struct op *o)
{
	if (c->keep_all)
		o->buf.n = 0;
	else
		memset(&o->buf, 0, sizeof o->buf);
	o->bi = 0;
}

/* Makes in the operator's current input row (see take_input). */
static void hold_input(struct qctx *c, struct op *o, struct val *in)
{
	ar_reset(c, &o->held);
	ar_use(c, &o->held);
	o->row = in;
}

/* The next input row, held as o->row until the next one is taken: what
 * the operator derived from the last one (in `held`) is given back, and
 * the current arena is `held`. NULL at the end of the input. */
static struct val *take_input(struct qctx *c, struct op *o)
{
	struct val *in = pull(c, o->in);
	if (in)
		hold_input(c, o, in);
	return in;
}

/* ---- START: the rows a (sub)query begins with ---------------------------- */

static struct val *start_next(struct qctx *c, struct op *o)
{
	(void)c;
	return o->si < o->src->n ? o->src->r[o->si++] : NULL;
}

/* ---- MATCH / OPTIONAL MATCH ---------------------------------------------- */

static struct val *optional_nulls(struct qctx *c, struct clause *cl,
                                  struct val *in)
{
	struct val *o = row_copy(c, in);
	for (size_t k = 0; k < cl->pat->nparts; k++) {
		struct ppart *pp = &cl->pat->parts[k];
		for (size_t j = 0; j <= pp->nrels; j++) {
			if (!pp->nodes[j].var || !pp->nodes[j].var[0])
				o[pp->nodes[j].slot] = v_null();
			if (j < pp->nrels &&
			    (!pp->rels[j].var || !pp->rels[j].var[0]))
				o[pp->rels[j].slot] = v_null();
		}
		if (pp->pathslot >= 0)
			o[pp->pathslot] = v_null();
	}
	return o;
}

/* Whether a and b are the same value: the same bits (a value of a row
 * that is not a scalar points into an arena). */
static int same_bits(const struct val *a, const struct val *b)
{
	return a->t == b->t && memcmp(&a->u, &b->u, sizeof a->u) == 0;
}

/* A row MATCH hands out in a write statement, in the arena `keep` (the
 * statement's or the chunk's): the input row's values are there already;
 * what the match bound (a path, a variable-length list) is copied. */
static struct val *match_keep(struct qctx *c, struct op *o, struct val *r,
                              struct arena *keep)
{
	struct arena *was = c->cur;
	c->cur = keep;
	struct val *k = row_copy(c, r);
	for (int i = 0; i < c->nslots; i++)
		if (!o->row || !same_bits(&r[i], &o->row[i]))
			k[i] = v_copy(c, r[i]);
	c->cur = was;
	return k;
}

static struct val *match_next(struct qctx *c, struct op *o)
{
	struct arena *was = c->cur;
	struct val *r;
	/* A write statement never resets an arena (c->keep_all): what MATCH
	 * derives per input row and per step (candidates, seeks, partial
	 * rows: 1-2 KB per row of an UNWIND ... MATCH ... CREATE) would stay
	 * for the whole statement. So MATCH resets its own arenas as in a
	 * read, and a row it hands out is kept by match_keep. Its input is
	 * pulled with keep_all as it was: the operators below keep theirs. */
	int scratch = c->keep_all;
	c->keep_all = 0;
	for (;;) {
		if ((r = from_buf(o)) != NULL)
			break;
		if (o->mc) {
			ar_reset(c, &o->tmp);
			ar_use(c, &o->tmp);
			buf_clear(c, o);
			if (match_step(c, o->mc, &o->buf)) {
				o->matched |= o->buf.n > 0;
				continue;
			}
			o->mc = NULL;
			if (o->cl->kind == C_OPTMATCH && !o->matched) {
				r = optional_nulls(c, o->cl, o->row);
				break;
			}
		}
		c->keep_all = scratch;
		c->cur = was;
		struct val *in = pull(c, o->in);
		c->keep_all = 0;
		if (!in)
			break;
		hold_input(c, o, in);
		o->matched = 0;
		buf_clear(c, o);
		if (o->vt && vto_pick(c, o->vt, in, &o->tmp, &o->buf))
			continue;
		o->mc =
		    match_open(c, o->cl->pat, o->cl->where, row_copy(c, in));
	}
	c->cur = was;
	c->keep_all = scratch;
	if (r && scratch)
		r = match_keep(c, o, r, was);
	return r;
}

/* ---- UNWIND ------------------------------------------------------------ */

/* UNWIND range(a, b[, step]) over integers counts instead of building the
 * list: 1 when set up that way */
static int lazy_range(struct qctx *c, struct op *o, struct val *row)
{
	struct expr *e = o->cl->e;
	if (e->kind != E_CALL || strcasecmp(e->name, "range") != 0 ||
	    e->nargs < 2 || e->nargs > 3)
		return 0;
	struct val a[3];
	for (size_t i = 0; i < e->nargs; i++) {
		a[i] = eval(c, e->args[i], row);
		if (a[i].t != V_INT)
			return 0; /* eval of the call raises the error */
	}
	int64_t s = a[0].u.i, end = a[1].u.i, st = e->nargs > 2 ? a[2].u.i : 1;
	if (st == 0)
		qerr(c, LORA_EINVAL, "NumberOutOfRange: range step is zero");
	__int128 span = (__int128)end - s;
	o->left = 0;
	if ((st > 0 && span >= 0) || (st < 0 && span <= 0))
		o->left = (uint64_t)(span / st) + 1;
	o->at = s;
	o->step = st;
	o->lazy = 1;
	return 1;
}

static int unwind_item(struct qctx *c, struct op *o, struct val *v)
{
	(void)c;
	if (o->lazy) {
		if (!o->left)
			return 0;
		*v = v_int(o->at);
		o->left--;
		if (o->left)
			o->at += o->step;
		return 1;
	}
	if (o->list.t == V_NULL || o->li >= o->list.u.l->n)
		return 0;
	*v = o->list.u.l->v[o->li++];
	return 1;
}

static struct val *unwind_next(struct qctx *c, struct op *o)
{
	struct arena *was = c->cur;
	struct val *r = NULL, v;
	for (;;) {
		if (o->row && unwind_item(c, o, &v)) {
			ar_reset(c, &o->out);
			ar_use(c, &o->out);
			r = row_copy(c, o->row);
			r[o->cl->slot] = v;
			break;
		}
		struct val *in = take_input(c, o);
		if (!in)
			break;
		o->lazy = 0;
		o->li = 0;
		o->list = v_null();
		if (lazy_range(c, o, in))
			continue;
		struct val l = eval(c, o->cl->e, in);
		if (l.t == V_LIST) {
			o->list = l;
		} else if (l.t != V_NULL) {
			o->list = v_list(c, 1);
			o->list.u.l->v[0] = l;
		}
	}
	c->cur = was;
	return r;
}

/* ---- LOAD CSV ------------------------------------------------------------ */

/* Like UNWIND over the file's records: the file named by the current
 * input row is open (and its header names live in `held`) until the next
 * input row, the end of the file, or op_release. */
static struct val *loadcsv_next(struct qctx *c, struct op *o)
{
	struct arena *was = c->cur;
	struct val *r = NULL, v;
	uint64_t line;
	for (;;) {
		if (o->csv) {
			ar_reset(c, &o->out);
			ar_use(c, &o->out);
			if (load_next(c, o->csv, &v, &line)) {
				r = row_copy(c, o->row);
				r[o->cl->slot] = v;
				r[o->cl->line_slot] = v_int((int64_t)line);
				r[o->cl->line_slot + 1] = o->csv_path;
				break;
			}
			load_close(c, o->csv);
			o->csv = NULL;
		}
		struct val *in = take_input(c, o);
		if (!in)
			break;
		o->csv = load_open(c, eval(c, o->cl->e, in), o->cl->headers,
		                   o->cl->fieldterm);
		o->csv_path = v_cstr(c, load_path(o->csv)); /* in held */
	}
	c->cur = was;
	return r;
}

/* ---- projection: WITH / RETURN ------------------------------------------- */

/* SKIP's and LIMIT's count (at least 0), or with positive (OF n ROWS) at
 * least 1 */
static int64_t count_arg(struct qctx *c, struct expr *e, const char *what,
                         int positive)
{
	struct val v = eval(c, e, NULL);
	if (v.t != V_INT)
		qerr(c, LORA_ESEMANTIC,
		     "InvalidArgumentType: %s must be an integer, got %s", what,
		     v_type_name(v));
	if (positive && v.u.i <= 0)
		qerr(c, LORA_ESEMANTIC,
		     "InvalidArgumentType: %s must be positive", what);
	if (v.u.i < 0)
		qerr(c, LORA_ESEMANTIC,
		     "NegativeIntegerArgument: %s must not be negative", what);
	return v.u.i;
}

static struct val *project_row(struct qctx *c, struct proj *pr, struct val *in)
{
	struct val *r = row_copy(c, in);
	for (size_t j = 0; j < pr->nitems; j++)
		r[pr->items[j].slot] = eval(c, pr->items[j].e, in);
	return r;
}

static uint64_t items_hash(struct proj *pr, struct val *r)
{
	uint64_t hv = 7;
	for (size_t j = 0; j < pr->nitems; j++)
		hv = hv * 31 + v_hash(r[pr->items[j].slot]);
	return hv;
}

/* DISTINCT: 1 when r's items were seen before; otherwise keeps a copy of
 * them in the operator's held arena */
static int seen_row(struct qctx *c, struct op *o, struct val *r)
{
	struct proj *pr = o->pr;
	uint64_t hv = items_hash(pr, r);
	struct rows *bucket = hm_get(&o->seen, hv);
	for (size_t b = 0; bucket && b < bucket->n; b++) {
		size_t j;
		for (j = 0; j < pr->nitems; j++)
			if (!v_equiv(c, bucket->r[b][j], r[pr->items[j].slot]))
				break;
		if (j == pr->nitems)
			return 1;
	}
	struct arena *was = ar_use(c, &o->held);
	if (!bucket) {
		bucket = ar_alloc(c, sizeof(*bucket));
		hm_put(c, &o->seen, hv, bucket);
	}
	struct val *k = ar_alloc(c, sizeof(struct val) * (pr->nitems + 1));
	for (size_t j = 0; j < pr->nitems; j++)
		k[j] = v_copy(c, r[pr->items[j].slot]);
	rows_push(c, bucket, k);
	ar_use(c, was);
	return 0;
}

struct group {
	struct val *row;  /* representative input row (a copy) */
	struct val *keys; /* key item values (copies) */
	struct aggst *st;
	struct group *next;
};

static struct group *find_group(struct qctx *c, struct op *o, struct val *row,
                                struct val *kv, struct rows *order)
{
	struct proj *pr = o->pr;
	size_t nk = pr->nitems;
	uint64_t hv = 17;
	for (size_t j = 0; j < nk; j++)
		if (!pr->items[j].has_agg) {
			kv[j] = eval(c, pr->items[j].e, row);
			hv = hv * 31 + v_hash(kv[j]);
		}
	struct group *g = hm_get(&o->seen, hv), *g0 = g;
	for (; g; g = g->next) {
		size_t j;
		for (j = 0; j < nk; j++)
			if (!pr->items[j].has_agg &&
			    !v_equiv(c, g->keys[j], kv[j]))
				break;
		if (j == nk)
			return g;
	}
	struct arena *was = ar_use(c, &o->held);
	g = ar_alloc(c, sizeof(*g));
	g->row = row_copy_deep(c, row);
	g->keys = ar_alloc(c, sizeof(struct val) * (nk + 1));
	for (size_t j = 0; j < nk; j++)
		if (!pr->items[j].has_agg)
			g->keys[j] = v_copy(c, kv[j]);
	g->st = ar_alloc(c, sizeof(struct aggst) * (pr->naggs + 1));
	g->next = g0;
	hm_put(c, &o->seen, hv, g);
	rows_push(c, order, (struct val *)g);
	ar_use(c, was);
	return g;
}

/* The statement has read and written nothing of the stored graph yet (its
 * graph cache is empty), runs neither eagerly, inside IN TRANSACTIONS nor
 * profiled, and the projection o reads a MATCH that starts its part from
 * one row: what the rewrites below need to answer from storage alone. */
static int stored_graph_untouched(struct qctx *c, struct op *o)
{
	struct op *m = o->in;
	return !c->timing && !c->eager && !c->intx && !c->g.nodes.n &&
	       !c->g.edges.n && !c->g.edges_written && m &&
	       m->kind == OP_MATCH && m->in && m->in->kind == OP_START &&
	       m->in->src->n == 1;
}

/*
 * `MATCH (v:Label) RETURN v.key, count(*)` (one fresh node with one label
 * and nothing else, first clause of a read, only count(*) aggregates, one
 * grouping key v.key): storage groups the nodes by the key's stored bytes
 * in one walk (sto_view_group_by_prop) and each of its groups goes
 * through find_group once, with its first node as the group's row,
 * instead of one row per node. The result is the row-by-row one, groups
 * in the same order. The statement must have touched no node (its graph
 * cache is empty). The node this returns binds the slot, or -1 when the
 * shape does not fit.
 */
static int group_scan_slot(struct qctx *c, struct op *o, const char **label,
                           const char **key)
{
	struct proj *pr = o->pr;
	struct op *m = o->in;
	if (!stored_graph_untouched(c, o) || pr->distinct ||
	    m->cl->kind != C_MATCH || m->cl->where || m->cl->pat->nparts != 1)
		return -1;
	struct ppart *pp = &m->cl->pat->parts[0];
	struct pnode *pn = &pp->nodes[0];
	if (pp->nrels || pp->shortest || pp->pathslot >= 0 ||
	    pn->nlabels != 1 || pn->lx || pn->props ||
	    (pn->var && pn->var[0]) || pn->slot < 0 ||
	    m->in->src->r[0][pn->slot].t != V_NULL)
		return -1;
	for (size_t a = 0; a < pr->naggs; a++)
		if (pr->aggs[a]->kind != E_COUNTSTAR)
			return -1;
	int keys = 0;
	for (size_t j = 0; j < pr->nitems; j++) {
		struct expr *e = pr->items[j].e;
		if (pr->items[j].has_agg)
			continue;
		if (e->kind != E_PROP || e->a->kind != E_VAR ||
		    e->a->slot != pn->slot || keys++)
			return -1;
		*key = e->name;
	}
	*label = pn->labels[0];
	return keys ? pn->slot : -1;
}

static _Atomic uint64_t cnt_answers;

uint64_t cnt_answers_total(void)
{
	return atomic_load(&cnt_answers);
}

/* a pattern variable bound by this MATCH (not before it) */
static int cnt_fresh(const char *var, int slot)
{
	return (!var || !var[0]) && slot >= 0;
}

/*
 * Counts from the count store (Neo4j's NodeCountFromCountStore and
 * RelationshipCountFromCountStore): clause i is the first MATCH of its
 * part (a statement, a UNION part or a subquery body), with one pattern
 * part of variables it binds itself, no WHERE and no property map: one
 * node with at most one label, or one hop `()-[r[:T]]->()` in either
 * direction between two different nodes without labels, not ACYCLIC (a
 * self-loop would not match); the next clause a WITH or RETURN without
 * `*`, grouping key or DISTINCT whose aggregates are all count(*) or
 * count(v) of a pattern variable (v never null there). Then the one group
 * of the projection counts exactly what storage's node, label,
 * relationship or type count holds: apply keeps them exact in the write
 * that changes the graph, and a view reads them at its snapshot.
 */
int cnt_plan(const struct squery *s, size_t i, const char **name)
{
	if (i != 0 || i + 1 >= s->ncl || s->cl[i]->kind != C_MATCH ||
	    s->cl[i]->where || s->cl[i]->pat->nparts != 1 ||
	    (s->cl[i + 1]->kind != C_WITH && s->cl[i + 1]->kind != C_RETURN))
		return 0;
	const struct ppart *pp = &s->cl[i]->pat->parts[0];
	const struct proj *pr = s->cl[i + 1]->proj;
	if (pp->shortest || pp->sel || pp->pathslot >= 0 || pp->nrels > 1 ||
	    (pp->nrels && pp->mode == PM_ACYCLIC) || pr->distinct || pr->star ||
	    pr->naggs == 0)
		return 0;
	for (size_t k = 0; k <= pp->nrels; k++) {
		const struct pnode *pn = &pp->nodes[k];
		if (!cnt_fresh(pn->var, pn->slot) || pn->lx || pn->props ||
		    pn->nlabels > (pp->nrels ? 0u : 1u))
			return 0;
	}
	const struct prel *r = pp->nrels ? &pp->rels[0] : NULL;
	if (r && (!cnt_fresh(r->var, r->slot) || r->props || r->varlen ||
	          r->ntypes > 1 || r->dir == D_BOTH ||
	          pp->nodes[0].slot == pp->nodes[1].slot))
		return 0;
	for (size_t j = 0; j < pr->nitems; j++)
		if (!pr->items[j].has_agg)
			return 0; /* a grouping key */
	for (size_t a = 0; a < pr->naggs; a++) {
		const struct expr *e = pr->aggs[a];
		if (e->kind == E_COUNTSTAR)
			continue;
		if (e->kind != E_CALL || strcasecmp(e->name, "count") != 0 ||
		    e->distinct || e->nargs != 1 || e->args[0]->kind != E_VAR)
			return 0;
		int sl = e->args[0]->slot;
		if (sl != pp->nodes[0].slot &&
		    (!r || (sl != r->slot && sl != pp->nodes[1].slot)))
			return 0;
	}
	if (r) {
		*name = r->ntypes ? r->types[0] : NULL;
		return 2;
	}
	*name = pp->nodes[0].nlabels ? pp->nodes[0].labels[0] : NULL;
	return 1;
}

/* cnt_plan's rewrite, when the statement allows it here: the one group of
 * the projection gets the stored count; 1 when answered */
static int aggregate_count(struct qctx *c, struct op *o, struct rows *order)
{
	struct op *m = o->in;
	if (!stored_graph_untouched(c, o) || !m->sq)
		return 0;
	const char *name = NULL;
	int kind = cnt_plan(m->sq, m->ci, &name);
	if (!kind)
		return 0;
	const struct ppart *pp = &m->cl->pat->parts[0];
	struct val *start = m->in->src->r[0];
	for (size_t k = 0; k <= pp->nrels; k++)
		if (start[pp->nodes[k].slot].t != V_NULL ||
		    (k < pp->nrels && start[pp->rels[k].slot].t != V_NULL))
			return 0;
	if (!g_view(c))
		return 0;
	uint64_t n;
	int rv = kind == 1 ? sto_view_count_nodes(c->view, name, &n)
	                   : sto_view_count_edges(c->view, name, &n);
	if (rv || n > INT64_MAX)
		return 0; /* a damaged count: the scan answers */
	struct proj *pr = o->pr;
	struct arena *was = ar_use(c, &o->held);
	struct group *g = ar_alloc(c, sizeof(*g));
	g->row = row_copy(c, start);
	g->keys = ar_alloc(c, sizeof(struct val) * (pr->nitems + 1));
	g->st = ar_alloc(c, sizeof(struct aggst) * (pr->naggs + 1));
	for (size_t a = 0; a < pr->naggs; a++)
		g->st[a].cnt = (int64_t)n;
	rows_push(c, order, (struct val *)g);
	ar_use(c, was);
	c->g.ops++;
	m->eof = 1;
	atomic_fetch_add(&cnt_answers, 1);
	return 1;
}

static int aggregate_groups(struct qctx *c, struct op *o, struct rows *order)
{
	const char *label, *key;
	int slot = group_scan_slot(c, o, &label, &key);
	if (slot < 0 || !g_view(c))
		return 0;
	struct sto_group *gs;
	size_t n;
	uint64_t scanned;
	int rv = sto_view_group_by_prop(c->view, label, key, c->deadline_ms,
	                                &gs, &n, &scanned);
	if (rv == LORA_ENOTFOUND)
		return 0;
	if (rv == LORA_ETIMEOUT)
		qerr(c, rv, "query time limit of %llu ms exceeded",
		     (unsigned long long)c->lim.time_ms_max);
	if (rv)
		qerr(c, rv, "storage scan: %s", lora_strerror(rv));
	c->iter_groups = gs; /* freed by the cursor if a step raises */
	struct proj *pr = o->pr;
	struct val *start = o->in->in->src->r[0];
	c->g.ops += scanned;
	for (size_t i = 0; i < n; i++) {
		ar_reset(c, &o->tmp);
		ar_use(c, &o->tmp);
		struct val *r = row_copy(c, start);
		r[slot] = v_node(gs[i].first);
		struct val *kv =
		    ar_alloc(c, sizeof(struct val) * (pr->nitems + 1));
		struct group *g = find_group(c, o, r, kv, order);
		for (size_t a = 0; a < pr->naggs; a++)
			g->st[a].cnt += (int64_t)gs[i].count;
	}
	c->iter_groups = NULL;
	lora_free(gs);
	o->in->eof = 1;
	return 1;
}

/* drains the input into groups and leaves one row per group in buf */
static void aggregate(struct qctx *c, struct op *o)
{
	struct proj *pr = o->pr;
	size_t nk = pr->nitems;
	struct rows order = {0};
	struct val *in;
	if (aggregate_count(c, o, &order) || aggregate_groups(c, o, &order))
		in = NULL;
	else
		while ((in = pull(c, o->in)) != NULL) {
			ar_reset(c, &o->tmp);
			ar_use(c, &o->tmp);
			struct val *kv =
			    ar_alloc(c, sizeof(struct val) * (nk + 1));
			struct group *g = find_group(c, o, in, kv, &order);
			for (size_t a = 0; a < pr->naggs; a++)
				agg_add(c, pr->aggs[a], &g->st[a], in,
				        &o->held);
		}
	ar_use(c, &o->held);
	hm_drop(c, &o->seen);
	int haskeys = 0;
	for (size_t j = 0; j < nk; j++)
		haskeys |= !pr->items[j].has_agg;
	if (order.n == 0 && !haskeys) {
		struct group *g = ar_alloc(c, sizeof(*g));
		g->row = row_copy(c, NULL);
		g->keys = ar_alloc(c, sizeof(struct val) * (nk + 1));
		g->st = ar_alloc(c, sizeof(struct aggst) * (pr->naggs + 1));
		rows_push(c, &order, (struct val *)g);
	}
	struct val *aggv = ar_alloc(c, sizeof(struct val) * (pr->naggs + 1));
	for (size_t i = 0; i < order.n; i++) {
		struct group *g = (struct group *)order.r[i];
		for (size_t a = 0; a < pr->naggs; a++) {
			aggv[a] = agg_result(c, pr->aggs[a], &g->st[a]);
			v_check_depth(c, aggv[a]);
		}
		struct val *r = row_copy(c, g->row);
		struct val *saved = c->aggvals;
		c->aggvals = aggv;
		for (size_t j = 0; j < nk; j++)
			r[pr->items[j].slot] =
			    pr->items[j].has_agg
			        ? eval(c, pr->items[j].e, g->row)
			        : g->keys[j];
		c->aggvals = saved;
		rows_push(c, &o->buf, r);
	}
}

static __thread struct qctx *sort_ctx;
static __thread struct proj *sort_proj;
struct sortrow {
	struct val *row;
	struct val *keys;
	size_t idx;
};

static int sort_cmp(const void *a, const void *b)
{
	const struct sortrow *x = a, *y = b;
	for (size_t i = 0; i < sort_proj->norder; i++) {
		int r = v_order(sort_ctx, x->keys[i], y->keys[i]);
		if (r)
			return sort_proj->order[i].desc ? -r : r;
	}
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void order_rows(struct qctx *c, struct proj *pr, struct rows *r)
{
	struct sortrow *s = ar_alloc(c, sizeof(*s) * (r->n + 1));
	for (size_t i = 0; i < r->n; i++) {
		s[i].row = r->r[i];
		s[i].idx = i;
		s[i].keys = ar_alloc(c, sizeof(struct val) * pr->norder);
		for (size_t k = 0; k < pr->norder; k++)
			s[i].keys[k] = eval(c, pr->order[k].e, r->r[i]);
	}
	/* qsort is not reentrant: the comparator reads these statics, and
	 * v_order does not evaluate expressions */
	sort_ctx = c;
	sort_proj = pr;
	qsort(s, r->n, sizeof(*s), sort_cmp);
	for (size_t i = 0; i < r->n; i++)
		r->r[i] = s[i].row;
}

/* ORDER BY ... LIMIT k keeps the first SKIP + k rows only: rows beyond
 * them can never be returned. 0 when every row must be kept. */
#define PIPE_TOPK_ROWS_MAX 100000

static uint64_t top_k(struct op *o)
{
	struct proj *pr = o->pr;
	if (!pr->norder || pr->naggs || pr->distinct ||
	    o->limit == UINT64_MAX || o->limit > PIPE_TOPK_ROWS_MAX ||
	    o->skip > PIPE_TOPK_ROWS_MAX)
		return 0;
	return o->skip + o->limit;
}

/* Sorts the kept rows, drops all but the first k and moves those into a
 * fresh arena, so the rows dropped give their memory back. Stable: the
 * kept rows come before every later row in buf. */
static void keep_top(struct qctx *c, struct op *o, uint64_t k)
{
	order_rows(c, o->pr, &o->buf);
	struct arena fresh = {0};
	struct arena *was = ar_use(c, &fresh);
	struct rows kept = {0};
	for (uint64_t i = 0; i < k && i < o->buf.n; i++)
		rows_push(c, &kept, row_copy_deep(c, o->buf.r[i]));
	ar_use(c, was);
	if (c->keep_all) {
		o->buf = kept;
		return;
	}
	ar_release(c, &o->held);
	o->held = fresh;
	o->buf = kept;
	ar_use(c, &o->held);
	o->thresh = NULL;
	if (kept.n == k && k) {
		struct proj *pr = o->pr;
		o->thresh = ar_alloc(c, sizeof(struct val) * pr->norder);
		for (size_t i = 0; i < pr->norder; i++)
			o->thresh[i] = eval(c, pr->order[i].e, kept.r[k - 1]);
	}
}

/* ORDER BY ... LIMIT k, once k rows are kept: whether row r sorts before
 * the k-th of them. A row that does not (ties included: the sort is
 * stable and r comes later) can never be returned, so it is not kept. */
static int beats_thresh(struct qctx *c, struct op *o, struct val *r)
{
	struct proj *pr = o->pr;
	for (size_t i = 0; i < pr->norder; i++) {
		int d = v_order(c, eval(c, pr->order[i].e, r), o->thresh[i]);
		if (pr->order[i].desc)
			d = -d;
		if (d)
			return d < 0;
	}
	return 0;
}

/* ORDER BY or aggregation: everything the input has, kept in `held` */
static void fill_blocking(struct qctx *c, struct op *o)
{
	struct proj *pr = o->pr;
	if (pr->naggs) {
		aggregate(c, o);
	} else {
		uint64_t keep = top_k(o);
		struct val *in;
		while ((in = pull(c, o->in)) != NULL) {
			ar_reset(c, &o->tmp);
			ar_use(c, &o->tmp);
			struct val *r = project_row(c, pr, in);
			if (pr->distinct && seen_row(c, o, r))
				continue;
			if (keep && o->thresh && !beats_thresh(c, o, r))
				continue;
			ar_use(c, &o->held);
			rows_push(c, &o->buf, row_copy_deep(c, r));
			if (keep && o->buf.n >= 2 * keep)
				keep_top(c, o, keep);
		}
		ar_reset(c, &o->tmp);
	}
	ar_use(c, &o->held);
	if (pr->distinct && pr->naggs) {
		size_t k = 0;
		for (size_t i = 0; i < o->buf.n; i++)
			if (!seen_row(c, o, o->buf.r[i]))
				o->buf.r[k++] = o->buf.r[i];
		o->buf.n = k;
	}
	if (pr->norder)
		order_rows(c, pr, &o->buf);
}

static struct val *proj_next(struct qctx *c, struct op *o)
{
	struct arena *was = c->cur;
	struct proj *pr = o->pr;
	struct val *r = NULL;
	if (!o->counted) {
		ar_use(c, &o->held);
		o->skip =
		    pr->skip ? (uint64_t)count_arg(c, pr->skip, "SKIP", 0) : 0;
		o->limit = pr->limit
		               ? (uint64_t)count_arg(c, pr->limit, "LIMIT", 0)
		               : UINT64_MAX;
		o->counted = 1;
	}
	int blocking = pr->naggs || pr->norder;
	if (blocking && !o->filled && o->limit) {
		o->filled = 1;
		fill_blocking(c, o);
	}
	while (o->taken < o->limit) {
		r = NULL;
		ar_reset(c, &o->out);
		ar_use(c, &o->out);
		if (blocking) {
			if ((r = from_buf(o)) == NULL)
				break;
		} else {
			struct val *in = pull(c, o->in);
			if (!in)
				break;
			r = project_row(c, pr, in);
			if (pr->distinct && seen_row(c, o, r))
				continue;
		}
		if (o->skipped < o->skip) {
			o->skipped++;
			continue;
		}
		o->taken++;
		if (!pr->where || eval_pred(c, pr->where, r) == 1)
			break;
		r = NULL;
	}
	/* a write statement's clauses run to the end whatever LIMIT keeps */
	if (!r && (c->eager || c->intx) && o->drain)
		while (pull(c, o->in))
			;
	c->cur = was;
	return r;
}

/* ---- clauses run one input row at a time --------------------------------- */

static void exec_foreach(struct qctx *c, struct clause *cl, struct val *in)
{
	struct val l = eval(c, cl->e, in);
	if (l.t == V_NULL)
		return;
	if (l.t != V_LIST)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: FOREACH needs a list");
	for (size_t j = 0; j < l.u.l->n; j++) {
		struct rows one = {0}, res = {0};
		struct val *r = row_copy(c, in);
		r[cl->slot] = l.u.l->v[j];
		rows_push(c, &one, r);
		struct squery body = {.cl = cl->body, .ncl = cl->nbody};
		struct query q = {.parts = (struct squery *[]){&body},
		                  .nparts = 1};
		exec_query(c, &q, &one, &res, SIZE_MAX);
	}
}

static void exec_callsub(struct qctx *c, struct clause *cl, struct val *in,
                         struct rows *out)
{
	struct query *q = cl->sub;
	struct rows one = {0}, res = {0};
	rows_push(c, &one, row_copy(c, in));
	exec_query(c, q, &one, &res, SIZE_MAX);
	if (!q->ncols) {
		rows_push(c, out, in);
		return;
	}
	for (size_t j = 0; j < res.n; j++) {
		struct val *r = row_copy(c, in);
		for (size_t k = 0; k < q->ncols; k++)
			r[q->colslots[k]] = res.r[j][q->colslots[k]];
		rows_push(c, out, r);
	}
}

/* one input row through a clause that is not MATCH, UNWIND or a
 * projection; its rows go to out */
static void run_clause(struct qctx *c, struct clause *cl, struct val *in,
                       struct rows *out)
{
	/* the runners only read `one`: no array of its own per row */
	struct val *only[1] = {in};
	struct rows one = {.r = only, .n = 1, .cap = 1};
	switch (cl->kind) {
	case C_CREATE:
		exec_create(c, cl, &one, out);
		break;
	case C_MERGE:
		exec_merge(c, cl, &one, out);
		break;
	case C_SET:
	case C_REMOVE:
		exec_set(c, cl->sets, cl->nsets, in);
		rows_push(c, out, in);
		break;
	case C_DELETE:
		exec_delete(c, cl, in);
		rows_push(c, out, in);
		break;
	case C_FOREACH:
		exec_foreach(c, cl, in);
		rows_push(c, out, in);
		break;
	case C_CALLPROC:
		exec_callproc(c, cl, &one, out);
		break;
	case C_CALLSUB:
		exec_callsub(c, cl, in, out);
		break;
	case C_DDL:
		exec_ddl(c, cl, out);
		break;
	default:
		LORA_ASSERT(!"clause without a per-row runner");
	}
}

static struct val *perrow_next(struct qctx *c, struct op *o)
{
	struct arena *was = c->cur;
	struct val *r;
	for (;;) {
		if ((r = from_buf(o)) != NULL)
			break;
		struct val *in = take_input(c, o);
		if (!in)
			break;
		buf_clear(c, o);
		run_clause(c, o->cl, in, &o->buf);
	}
	c->cur = was;
	return r;
}

/* Eager: the whole input before the first row (write statements) */
static struct val *eager_next(struct qctx *c, struct op *o)
{
	if (!o->filled) {
		o->filled = 1;
		struct val *in;
		while ((in = pull(c, o->in)) != NULL)
			rows_push(c, &o->buf, in);
	}
	return from_buf(o);
}

/* ---- CALL { ... } IN TRANSACTIONS ---------------------------------------- */

/* The i-th chunk in flight, oldest first (a ring: an arena's allocator
 * points at the arena, so entries never move). */
static struct intx_fly *intx_fly_at(struct qctx *c, size_t i)
{
	LORA_ASSERT(i < c->tx_nfly);
	return &c->tx_fly[(c->tx_fly_head + i) % QRY_CHUNKS_IN_FLIGHT];
}

/* Gives the overlay and the graph cache back (they belong to the chunk
 * just run) and starts a fresh one over c->view. */
static void intx_graph_reset(struct qctx *c)
{
	g_reset(c);
	c->g.recording = 1;
	/* the chunks in flight the view does not see yet, laid over it in
	 * order, in the cache's own arena (given back at the next reset) */
	uint64_t applied = c->view ? sto_view_applied_index(c->view) : 0;
	for (size_t i = 0; i < c->tx_nfly; i++) {
		struct intx_fly *f = intx_fly_at(c, i);
		if (f->index > applied)
			g_lay_pending(c, f->b);
	}
}

/* A new chunk in flight, the newest: its batch copied from packed, b's
 * encoding (len bytes, at most one log entry's worth, the batch size
 * limit), into its own arena, which outlives the chunk's arenas. */
static struct intx_fly *intx_fly_add(struct qctx *c, const uint8_t *packed,
                                     size_t len, uint64_t rows)
{
	LORA_ASSERT(c->tx_nfly < QRY_CHUNKS_IN_FLIGHT);
	struct intx_fly *f =
	    &c->tx_fly[(c->tx_fly_head + c->tx_nfly) % QRY_CHUNKS_IN_FLIGHT];
	/* charged as twice its packed size until it lands (intx_land) */
	mem_charge(c, 2 * len);
	/* one arena: no malloc and free per field of a 1,000-row batch */
	lora_pb_arena_init(&f->ar);
	f->b = lora__mutation_batch__unpack(&f->ar.alloc, len, packed);
	if (f->b == NULL) {
		lora_pb_arena_free(&f->ar);
		mem_uncharge(c, 2 * len);
		qerr(c, LORA_ENOMEM, "out of memory copying a chunk's batch");
	}
	f->bytes = 2 * len;
	f->rows = rows;
	f->index = 0;
	c->tx_nfly++;
	return f;
}

static void intx_fly_free(struct qctx *c, struct intx_fly *f)
{
	mem_uncharge(c, f->bytes);
	lora_pb_arena_free(&f->ar);
	f->b = NULL;
}

/* Forgets the oldest chunk in flight (landed, or its fate given up on). */
static void intx_fly_drop_oldest(struct qctx *c)
{
	intx_fly_free(c, intx_fly_at(c, 0));
	c->tx_fly_head = (c->tx_fly_head + 1) % QRY_CHUNKS_IN_FLIGHT;
	c->tx_nfly--;
}

/* Forgets the newest chunk in flight (it was not proposed). */
static void intx_fly_drop_newest(struct qctx *c)
{
	intx_fly_free(c, intx_fly_at(c, c->tx_nfly - 1));
	c->tx_nfly--;
}

/* c->view moved on from the view at applied index `before`: the seek
 * cache is kept when the entries it moved over are chunks in flight that
 * only created relationships (g_seek_cache_moved). The chunks it sees are
 * no longer laid over (intx_graph_reset). */
static void intx_view_moved(struct qctx *c, uint64_t before)
{
	uint64_t now = sto_view_applied_index(c->view);
	const Lora__MutationBatch *bs[QRY_CHUNKS_IN_FLIGHT];
	uint64_t idx[QRY_CHUNKS_IN_FLIGHT];
	size_t n = 0;
	for (size_t i = 0; i < c->tx_nfly; i++) {
		struct intx_fly *f = intx_fly_at(c, i);
		if (f->index > before && f->index <= now) {
			bs[n] = f->b;
			idx[n++] = f->index;
		}
	}
	g_seek_cache_moved(c, bs, idx, n, before);
}

/* Waits for the oldest chunk in flight (query.h's wait_chunk), if any: 0
 * when it was applied (the statement's view then sees it, its rows count
 * as committed), else the error (err), the chunk's fate as err says: a
 * chunk applied where no view could be opened after it counts. */
static int intx_land(struct qctx *c, struct qry_error *err)
{
	if (c->tx_nfly == 0)
		return 0;
	struct sto_view *nv = NULL;
	uint64_t before = c->view ? sto_view_applied_index(c->view) : 0;
	int landed = 0;
	int rc = c->wait_chunk(c->commit_arg, &nv, &landed, err);
	if (rc == 0 || landed) {
		/* a chunk that committed proves that those before it whose
		 * answer was lost committed too */
		c->tx_rows += c->tx_unk_rows + intx_fly_at(c, 0)->rows;
		c->tx_chunks += c->tx_unk_chunks + 1;
		c->tx_unk_rows = c->tx_unk_chunks = 0;
	}
	if (rc == 0) {
		LORA_ASSERT(nv != NULL);
		c->view = nv;
		intx_view_moved(c, before);
	} else {
		c->view = NULL; /* the callback closed it (query.h) */
		if (rc == LORA_EUNKNOWN_OUTCOME && !landed) {
			c->tx_unk_rows += intx_fly_at(c, 0)->rows;
			c->tx_unk_chunks++;
		}
	}
	intx_fly_drop_oldest(c);
	return rc;
}

/* Every chunk in flight landed, oldest first: 0, or the first error. */
static int intx_land_all(struct qctx *c, struct qry_error *err)
{
	int rc = 0;
	while (rc == 0 && c->tx_nfly)
		rc = intx_land(c, err);
	return rc;
}

/* Whether b holds more than graph data (index DDL, users): such a chunk
 * is waited for at once, not laid over the view (g_apply_pending lays
 * graph data only). */
static int intx_batch_has_ddl(const Lora__MutationBatch *b)
{
	for (size_t i = 0; i < b->n_mutations; i++)
		if (b->mutations[i]->op_case > LORA__MUTATION__OP_REMOVE_VECTOR)
			return 1;
	return 0;
}

/* REPORT STATUS's map for the chunk running now (c->chunk_no), in the
 * current arena: Neo4j's started, committed, transactionId (the chunk's
 * number in the statement, or null when it did not start) and
 * errorMessage (null unless it failed). Null when not asked for. */
static struct val intx_status(struct qctx *c, struct op *o, int started,
                              int committed, const char *why)
{
	if (!o->cl->txstatus)
		return v_null();
	struct val m = v_map(c, 4);
	vmap_put(c, m.u.m, "started", v_bool(started));
	vmap_put(c, m.u.m, "committed", v_bool(committed));
	struct val id = v_null();
	if (started) {
		char s[32];
		int n = snprintf(s, sizeof s, "%llu",
		                 (unsigned long long)c->chunk_no);
		id = v_str(c, s, (size_t)n);
	}
	vmap_put(c, m.u.m, "transactionId", id);
	vmap_put(c, m.u.m, "errorMessage",
	         why ? v_str(c, why, strlen(why)) : v_null());
	return m;
}

/* The chunk's subquery in write mode (everything in o->tmp, as open_body
 * runs a write statement), then its batch committed, its result rows
 * copied into o->buf (held) and o->tmp given back. */
static void intx_body(struct qctx *c, struct op *o, struct rows *in)
{
	struct rows res = {0};
	c->keep_all = 1;
	c->eager = 1;
	c->cur = &o->tmp;
	c->in_chunk = 1;
	for (size_t i = 0; i < in->n; i++)
		exec_callsub(c, o->cl, in->r[i], &res);
	c->in_chunk = 0;
	check_unique(c);
	check_constraints(c);
	g_finish(c);
	Lora__MutationBatch *b = NULL;
	if (c->g.nmuts) {
		b = ar_alloc(c, sizeof(*b));
		lora__mutation_batch__init(b);
		b->n_mutations = c->g.nmuts;
		b->mutations = c->g.muts;
	}
	c->keep_all = 0;
	c->eager = 0;
	/* sized once, and packed once below: the size limit, the copy in
	 * flight and the proposal all take those bytes (protobuf-c
	 * recomputes a batch's size at every level of every pack: a third
	 * of the leader's work per row when it was sized four times and
	 * packed twice) */
	size_t plen = 0;
	if (b) {
		plen = lora_batch_packed_size(b);
		q_check_batch_len(c, b, plen,
		                  ": give IN TRANSACTIONS a smaller OF n ROWS");
	}
	/* the chunk's own work is done: an error from here on (a commit,
	 * the rows it returns) is not one ON ERROR may roll back */
	o->committing = 1;
	if (b) {
		if (!c->commit_chunk && !c->propose_chunk)
			qerr(c, LORA_EINVAL,
			     "CALL { ... } IN TRANSACTIONS commits each chunk "
			     "through a database node; it cannot run here");
	}
	if (c->propose_chunk) {
		/* pipelined: the chunks before this one commit while it runs,
		 * laid over the view (intx_graph_reset); it is proposed at
		 * once, with at most QRY_CHUNKS_IN_FLIGHT chunks in flight
		 * (the oldest lands first when they are all out). A node
		 * refuses a chunk whose predecessor it refused (query.h), so
		 * none commits without the ones before it. */
		struct qry_error ce = {0};
		int rc = 0;
		if (!b) /* wrote nothing: its rows count once the ones before
		         * it committed */
			rc = intx_land_all(c, &ce);
		else if (c->tx_nfly == QRY_CHUNKS_IN_FLIGHT)
			rc = intx_land(c, &ce);
		if (rc == 0 && b) {
			/* in the chunk's arena; its copy outlives it */
			uint8_t *packed = ar_alloc_nz(c, plen ? plen : 1);
			lora_batch_pack_exact(b, packed, plen);
			struct intx_fly *f =
			    intx_fly_add(c, packed, plen, in->n);
			struct sto_view *nv = NULL;
			uint64_t before =
			    c->view ? sto_view_applied_index(c->view) : 0;
			/* the node gives its view (and store) back while it
			 * proposes, and hands a new one: it may see chunks in
			 * flight already (applied that fast), else the next
			 * chunk lays them over */
			uint64_t index = 0;
			rc = c->propose_chunk(c->commit_arg, b, packed, plen,
			                      &nv, &index, &ce);
			if (rc == 0) {
				LORA_ASSERT(nv != NULL && index != 0);
				f->index = index;
				c->view = nv;
				intx_view_moved(c, before);
				if (intx_batch_has_ddl(f->b))
					rc = intx_land_all(c, &ce);
			} else {
				intx_fly_drop_newest(c); /* not proposed */
				c->view = NULL; /* the callback closed it */
			}
		} else if (rc == 0) {
			c->tx_rows += in->n;
			c->tx_chunks++;
		}
		if (rc)
			qerr(c, rc, "%s",
			     ce.message[0] ? ce.message : lora_strerror(rc));
	} else if (b) {
		struct sto_view *nv = NULL;
		struct qry_error ce = {0};
		uint64_t before = c->view ? sto_view_applied_index(c->view) : 0;
		int rc = c->commit_chunk(c->commit_arg, b, &nv, &ce);
		if (rc)
			qerr(c, rc, "%s",
			     ce.message[0] ? ce.message : lora_strerror(rc));
		LORA_ASSERT(nv != NULL);
		c->view = nv;
		/* committing stays set: the chunk is in, so an error
		 * from here on must not report it rolled back */
		const Lora__MutationBatch *bs[1] = {b};
		uint64_t idx[1] = {before + 1};
		g_seek_cache_moved(c, bs, idx, 1, before);
		c->tx_rows += in->n;
		c->tx_chunks++;
	} else {
		c->tx_rows += in->n; /* wrote nothing: nothing to commit */
		c->tx_chunks++;
	}
	ar_use(c, &o->held);
	struct val st = intx_status(c, o, 1, 1, NULL);
	for (size_t i = 0; i < res.n; i++) {
		struct val *r = row_copy_deep(c, res.r[i]);
		if (o->cl->txstatus)
			r[o->cl->txstatus_slot] = st;
		rows_push(c, &o->buf, r);
	}
	ar_release(c, &o->tmp);
	intx_graph_reset(c);
}

/* Errors a chunk may fail with and the statement go on under ON ERROR
 * CONTINUE or BREAK: those of the chunk's own data and writes, and its
 * own limits (mutations, entry size, path expansions: counted per chunk).
 * A missing parameter (every chunk would fail), memory (the statement's
 * or the node's: rolling writes back to make room would lose them
 * silently), the statement's time, the node's disk or leader and the
 * user's rights end it, as an error while committing does (its outcome
 * may be unknown). */
static int intx_recoverable(int code)
{
	switch (code) {
	case LORA_EINVAL:
	case LORA_ENOTFOUND:
	case LORA_EEXIST:
	case LORA_ESEMANTIC:
	case LORA_ECONSTRAINT:
	case LORA_EVECTOR:
	case LORA_ETYPE:
	case LORA_EARITH:
	case LORA_ELIMIT:
		return 1;
	default:
		return 0;
	}
}

/* The rows of a chunk that failed (why: its error) or, under BREAK, was
 * not run (why NULL, started 0): each input row once, the subquery's
 * columns null, the status if asked for. The chunk's writes and overlay
 * are dropped and what it had open is closed; nothing was committed. */
static void intx_null_rows(struct qctx *c, struct op *o, struct rows *in,
                           int started, const char *why)
{
	struct query *q = o->cl->sub;
	ar_use(c, &o->held);
	struct val st = intx_status(c, o, started, 0, why);
	for (size_t i = 0; i < in->n; i++) {
		struct val *r = row_copy_deep(c, in->r[i]);
		for (size_t k = 0; k < q->ncols; k++)
			r[q->colslots[k]] = v_null();
		if (o->cl->txstatus)
			r[o->cl->txstatus_slot] = st;
		rows_push(c, &o->buf, r);
	}
}

/* Runs one chunk; a failure names what committed before it, or under ON
 * ERROR CONTINUE | BREAK (a recoverable error, not while committing)
 * rolls the chunk back and gives its rows with nulls. */
/* What a raise inside a chunk left open (graph.c, vector.c and pipe.c
 * hand it to the cursor, which closes it at the statement's end), closed
 * now: the statement goes on. */
/* The iterator a raise left open, and the scratch tables: the iterator
 * reads the view that landing a chunk closes, so it goes first. */
static void intx_close_iters(struct qctx *c)
{
	hm_scratch_free_to(c, 0); /* a chunk runs at the top level */
	if (c->iter) {
		sto_iter_free(c->iter);
		c->iter = NULL;
	}
	lora_free(c->iter_groups);
	c->iter_groups = NULL;
}

static void intx_close_open(struct qctx *c)
{
	intx_close_iters(c);
	load_close_chunk(c, c->chunk_no);
	if (c->err) {
		c->err->code = 0;
		c->err->message[0] = 0;
		c->err->line = c->err->column = 0;
	}
}

/* Raises msg with what committed before the statement failed ("the
 * failing one", "the input failed"): those chunks stay. */
static _Noreturn void intx_raise(struct qctx *c, int code, const char *msg,
                                 const char *before)
{
	c->tx_said = 1;
	qerr(c, code,
	     "%s (CALL { ... } IN TRANSACTIONS: %llu input rows in %llu "
	     "transactions committed before %s; they stay committed)",
	     msg, (unsigned long long)c->tx_rows,
	     (unsigned long long)c->tx_chunks, before);
}

/* What the statement stopped at, for intx_raise: the time limit, or what
 * the caller says. */
static const char *intx_why(int code, const char *other)
{
	return code == LORA_ETIMEOUT ? "the statement's time limit ran out"
	                             : other;
}

/* The statement fails: the chunks proposed before, if any, are landed, so
 * that the count of what committed is exact, and their fate added to msg
 * (code becomes LORA_EUNKNOWN_OUTCOME when one has none). 1 when one of
 * them did not commit. A chunk that committed where no view could be
 * opened after it counts, its error said apart; when the statement's own
 * error was a lost answer that it proved committed, that view error is
 * the statement's. */
static int intx_land_failing(struct qctx *c, int *code, char *msg, size_t cap)
{
	char unknown[LORA_ERRMSG_BYTES] = "", refused[LORA_ERRMSG_BYTES] = "",
	     noview[LORA_ERRMSG_BYTES] = "";
	int noview_code = 0;
	/* a lost answer counted before: the statement's own error (it
	 * stops at the first one) */
	uint64_t unk0 = c->tx_unk_chunks;
	while (c->tx_nfly) {
		struct qry_error fe = {0};
		uint64_t chunks = c->tx_chunks;
		int lrc = intx_land(c, &fe);
		char *to = lrc && c->tx_chunks > chunks   ? noview
		           : lrc == LORA_EUNKNOWN_OUTCOME ? unknown
		           : lrc                          ? refused
		                                          : NULL;
		if (to == noview && !noview_code)
			noview_code = lrc;
		if (to && !to[0])
			snprintf(to, LORA_ERRMSG_BYTES, "%s", fe.message);
	}
	if (*code == LORA_EUNKNOWN_OUTCOME && unk0 && !c->tx_unk_chunks &&
	    noview_code) {
		*code = noview_code;
		snprintf(msg, cap,
		         "the answer for a transaction came late, but the one "
		         "after it committed, so it did too; then no read view "
		         "could be opened: %.200s",
		         noview);
		noview[0] = 0;
	}
	size_t len = strlen(msg);
	if (c->tx_unk_chunks) /* no later chunk committed to prove it */
		*code = LORA_EUNKNOWN_OUTCOME;
	if (c->tx_unk_chunks && unknown[0]) {
		snprintf(msg + len, cap - len,
		         " (and a transaction in flight has no known outcome: "
		         "it may still commit: %.160s)",
		         unknown);
		len = strlen(msg);
	}
	if (refused[0]) {
		snprintf(
		    msg + len, cap - len,
		    " (and a transaction in flight did not commit: %.200s)",
		    refused);
		len = strlen(msg);
	}
	if (noview[0])
		snprintf(msg + len, cap - len,
		         " (and after a transaction in flight committed, no "
		         "read view could be opened: %.160s)",
		         noview);
	return refused[0] != 0;
}

static void intx_chunk(struct qctx *c, struct op *o, struct rows *in)
{
	struct arena *was = c->cur;
	jmp_buf outer;
	memcpy(outer, c->jb, sizeof outer);
	o->committing = 0;
	c->chunk_no = (uint64_t)c->tx_started + 1;
	c->tx_started++;
	/* path_expansions_max holds per chunk: the outer query's count is
	 * kept aside while the chunk runs */
	uint64_t outer_expansions = c->expansions;
	if (setjmp(c->jb)) {
		c->keep_all = 0;
		c->eager = 0;
		c->in_chunk = 0;
		c->cur = was;
		c->expansions = outer_expansions;
		memcpy(c->jb, outer, sizeof outer);
		int code =
		    c->err && c->err->code ? c->err->code : LORA_EINTERNAL;
		char msg[LORA_ERRMSG_BYTES] = "";
		if (c->err)
			snprintf(msg, sizeof msg, "%s", c->err->message);
		int recover = o->cl->txerr != QRY_TX_FAIL && !o->committing &&
		              intx_recoverable(code);
		/* iterators a raise left open go before any wait below:
		 * landing a chunk closes the view they read */
		intx_close_open(c);
		/* the statement's own error may be the lost answer of a chunk
		 * in flight (counted as unknown when it was raised) */
		uint64_t unk = c->tx_unk_chunks;
		if (!recover && !intx_land_failing(c, &code, msg, sizeof msg) &&
		    code == LORA_EUNKNOWN_OUTCOME && unk && !c->tx_unk_chunks) {
			/* ... which a later chunk proved committed: the
			 * statement stopped there, with every chunk it
			 * proposed in */
			code = c->deadline_ms && lora_now_ms() >= c->deadline_ms
			           ? LORA_ETIMEOUT
			           : LORA_EUNKNOWN_OUTCOME;
			snprintf(msg, sizeof msg,
			         "the answer for a transaction came late, but "
			         "the one after it committed, so it did too; "
			         "the statement stopped there");
		}
		if (recover) {
			intx_null_rows(c, o, in, 1, msg);
			ar_release(c, &o->tmp);
			intx_graph_reset(c);
			c->tx_failed++;
			if (o->cl->txerr == QRY_TX_BREAK)
				o->broken = 1;
			c->chunk_no = 0;
			c->cur = was;
			return;
		}
		intx_raise(c, code, msg, "the failing one");
	}
	c->expansions = 0;
	intx_body(c, o, in);
	c->expansions = outer_expansions;
	memcpy(c->jb, outer, sizeof outer);
	c->chunk_no = 0;
	c->cur = was;
}

/* The error being raised (code, or c->err's), once chunks ran outside
 * them: the chunks in flight are landed and the error raised again with
 * what committed before `other` (or the time limit). An iterator the
 * raise left open (a seek the view lent) goes before the landing closes
 * that view; the input's operators and files are the statement's, closed
 * at its end. */
static _Noreturn void intx_fail_at(struct qctx *c, int code, const char *other)
{
	if (c->err && c->err->code)
		code = c->err->code;
	char msg[LORA_ERRMSG_BYTES] = "";
	if (c->err)
		snprintf(msg, sizeof msg, "%s", c->err->message);
	intx_close_iters(c);
	intx_land_failing(c, &code, msg, sizeof msg);
	intx_raise(c, code, msg, intx_why(code, other));
}

_Noreturn void intx_fail(struct qctx *c, int code)
{
	LORA_ASSERT(c->tx_started && !c->tx_said);
	intx_fail_at(c, code, "the statement failed");
}

/* Pulls up to o->limit input rows into in (deep copies in tmp: the
 * input's rows die on the next pull). An error of the input (a bad CSV
 * row, an expression of the outer query) after chunks ran says what
 * committed, as a failing chunk does: a user who fixes the input and runs
 * the statement again must know which rows are in already. */
static void intx_fill(struct qctx *c, struct op *o, struct rows *in)
{
	jmp_buf outer;
	memcpy(outer, c->jb, sizeof outer);
	int code = setjmp(c->jb);
	if (code) {
		memcpy(c->jb, outer, sizeof outer);
		/* an error that says what committed already (an IN
		 * TRANSACTIONS clause in the input raised it) goes on as is */
		if (!c->tx_started || c->tx_said)
			longjmp(c->jb, code);
		intx_fail_at(c, code, "the input failed");
	}
	struct val *x;
	while (in->n < o->limit && (x = pull(c, o->in)) != NULL) {
		ar_use(c, &o->tmp);
		rows_push(c, in, row_copy_deep(c, x));
	}
	memcpy(c->jb, outer, sizeof outer);
}

/* Pulls up to n input rows (deep copies in tmp: the input's rows die on
 * the next pull), runs them as one transaction, hands out the results. */
static struct val *intx_next(struct qctx *c, struct op *o)
{
	struct arena *was = c->cur;
	struct val *r;
	if (!o->counted) {
		o->limit = QRY_TX_ROWS_DEFAULT;
		if (o->cl->txrows)
			o->limit = (uint64_t)count_arg(c, o->cl->txrows,
			                               "OF n ROWS", 1);
		o->counted = 1;
	}
	while ((r = from_buf(o)) == NULL && !o->filled) {
		ar_reset(c, &o->held);
		buf_clear(c, o);
		struct rows in = {0};
		intx_fill(c, o, &in);
		o->filled = in.n < o->limit;
		if (in.n && o->broken) /* ON ERROR BREAK: not run */
			intx_null_rows(c, o, &in, 0, NULL);
		else if (in.n)
			intx_chunk(c, o, &in);
		ar_release(c, &o->tmp);
		if (o->filled && c->tx_nfly) { /* the last chunks in */
			struct qry_error ce = {0};
			int rc = intx_land_all(c, &ce);
			if (rc) {
				char msg[LORA_ERRMSG_BYTES];
				snprintf(msg, sizeof msg, "%s",
				         ce.message[0] ? ce.message
				                       : lora_strerror(rc));
				int bad =
				    intx_land_failing(c, &rc, msg, sizeof msg);
				/* an answer lost for a chunk that a later
				 * one proved committed: every chunk did (but
				 * the statement goes on only with a view) */
				if (bad || rc != LORA_EUNKNOWN_OUTCOME ||
				    c->tx_unk_chunks || !c->view)
					intx_raise(c, rc, msg,
					           "the failing one");
			}
			intx_graph_reset(c);
		}
	}
	c->cur = was;
	return r;
}

/* ---- UNION --------------------------------------------------------------- */

static struct val *union_next(struct qctx *c, struct op *o)
{
	struct arena *was = c->cur;
	struct query *q = o->q;
	struct val *r = NULL;
	while (o->ki < o->nkids) {
		struct val *kr = pull(c, o->kids[o->ki]);
		if (!kr) {
			o->ki++;
			continue;
		}
		ar_reset(c, &o->out);
		ar_use(c, &o->out);
		r = row_copy(c, NULL);
		for (size_t k = 0; k < q->ncols; k++)
			r[q->colslots[k]] =
			    kr[q->colslots[o->ki * q->ncols + k]];
		if (!q->union_all && seen_row(c, o, r)) {
			r = NULL;
			continue;
		}
		break;
	}
	c->cur = was;
	return r;
}

/* ---- building ------------------------------------------------------------ */

/* Whether v holds a node, relationship or path (in a list or map too). */
static int val_has_graph(struct val v, int depth)
{
	if (v.t == V_NODE || v.t == V_REL || v.t == V_PATH ||
	    depth > LORA_VALUE_DEPTH_MAX)
		return 1;
	if (v.t == V_LIST)
		for (size_t i = 0; i < v.u.l->n; i++)
			if (val_has_graph(v.u.l->v[i], depth + 1))
				return 1;
	if (v.t == V_MAP)
		for (size_t i = 0; i < v.u.m->n; i++)
			if (val_has_graph(v.u.m->v[i], depth + 1))
				return 1;
	return 0;
}

/* Whether e reads no graph, given that no variable it can see holds a
 * graph value: expressions reach the graph only through node,
 * relationship and path values (properties, labels(), ...) and through
 * patterns and subqueries; a parameter may hold graph values. */
static int expr_graph_free(const struct qctx *c, const struct expr *e)
{
	if (!e)
		return 1;
	switch (e->kind) {
	case E_PATPRED:
	case E_PATCOMP:
	case E_EXISTS:
	case E_COUNTSUB:
		return 0;
	case E_PARAM: {
		const struct val *p =
		    c->params ? vmap_get(c->params, e->name) : NULL;
		return !p || !val_has_graph(*p, 0);
	}
	default:
		break;
	}
	if (e->sub || e->pat || !expr_graph_free(c, e->a) ||
	    !expr_graph_free(c, e->b) || !expr_graph_free(c, e->c) ||
	    !expr_graph_free(c, e->d))
		return 0;
	for (size_t i = 0; i < e->nargs; i++)
		if (!expr_graph_free(c, e->args[i]))
			return 0;
	for (size_t i = 0; i < e->nwhen; i++)
		if (!expr_graph_free(c, e->whens[i]) ||
		    !expr_graph_free(c, e->thens[i]))
			return 0;
	for (size_t i = 0; i < e->nmp; i++)
		if (!expr_graph_free(c, e->mp[i].e))
			return 0;
	return 1;
}

/* qry_testing_eager_all */
static atomic_int eager_all;

void qry_testing_eager_all(int on)
{
	atomic_store_explicit(&eager_all, on, memory_order_relaxed);
}

/* How many of the statement's leading clauses read no graph: LOAD CSV,
 * UNWIND and WITH whose expressions are graph_free (by induction no row
 * they make holds a graph value). No write can change their rows, so
 * they need no Eager step (pipe.c's header). 0 for any other query: a
 * subquery's rows come from the outer query's. */
static size_t graph_free(const struct qctx *c, const struct squery *s,
                         const struct query *q)
{
	if (q != c->stmt ||
	    atomic_load_explicit(&eager_all, memory_order_relaxed))
		return 0;
	size_t i = 0;
	for (; i < s->ncl; i++) {
		const struct clause *cl = s->cl[i];
		int ok = 1;
		if (cl->kind == C_LOADCSV || cl->kind == C_UNWIND)
			ok = expr_graph_free(c, cl->e);
		else if (cl->kind == C_WITH && cl->proj) {
			const struct proj *pr = cl->proj;
			ok = expr_graph_free(c, pr->skip) &&
			     expr_graph_free(c, pr->limit) &&
			     expr_graph_free(c, pr->where);
			for (size_t k = 0; ok && k < pr->nitems; k++)
				ok = expr_graph_free(c, pr->items[k].e);
			for (size_t k = 0; ok && k < pr->norder; k++)
				ok = expr_graph_free(c, pr->order[k].e);
			/* the checker's aggregate calls (their arguments) */
			for (size_t k = 0; ok && k < pr->naggs; k++)
				ok = expr_graph_free(c, pr->aggs[k]);
		} else {
			ok = 0;
		}
		if (!ok)
			break;
	}
	return i;
}

static struct op *build_part(struct qctx *c, struct query *q, struct squery *s,
                             struct rows *in, int eager)
{
	struct op *o = op_new(c, OP_START, start_next, NULL, NULL);
	o->src = in;
	size_t nfree = eager ? graph_free(c, s, q) : 0;
	for (size_t i = 0; i < s->ncl; i++) {
		struct clause *cl = s->cl[i];
		switch (cl->kind) {
		case C_MATCH:
		case C_OPTMATCH:
			o = op_new(c, OP_MATCH, match_next, o, cl);
			o->sq = s;
			o->ci = i;
			o->vt = ar_alloc(c, sizeof(struct vto));
			if (c->eager || !vto_plan(c, s, i, o->vt))
				o->vt = NULL;
			break;
		case C_UNWIND:
			o = op_new(c, OP_UNWIND, unwind_next, o, cl);
			break;
		case C_LOADCSV:
			o = op_new(c, OP_LOADCSV, loadcsv_next, o, cl);
			break;
		case C_CALLSUB:
			o = cl->intx ? op_new(c, OP_INTX, intx_next, o, cl)
			             : op_new(c, OP_PERROW, perrow_next, o, cl);
			break;
		case C_WITH:
		case C_RETURN:
			o = op_new(c, OP_PROJ, proj_next, o, cl);
			o->pr = cl->proj;
			o->drain = q_clauses_write(s->cl, i) ||
			           atomic_load_explicit(&eager_all,
			                                memory_order_relaxed);
			break;
		default:
			o = op_new(c, OP_PERROW, perrow_next, o, cl);
			break;
		}
		if (eager && i >= nfree)
			o = op_new(c, OP_EAGER, eager_next, o, NULL);
	}
	return o;
}

/* Builds the operators of q over the input rows `in` (borrowed; they must
 * outlive the pipeline). Operators live in the current arena. */
static struct op *build(struct qctx *c, struct query *q, struct rows *in)
{
	/* Eager steps keep rows across pulls, which needs keep_all: a
	 * subquery that MATCH evaluates in a write statement (EXISTS or
	 * COUNT in its WHERE) runs with keep_all off (match_next), as a
	 * read, and may not write (check.c) */
	int eager = c->eager && c->keep_all;
	if (q->nparts == 1)
		return build_part(c, q, q->parts[0], in, eager);
	struct op *u = op_new(c, OP_UNION, union_next, NULL, NULL);
	u->q = q;
	u->pr = ar_alloc(c, sizeof(struct proj));
	u->pr->nitems = q->ncols;
	u->pr->items = ar_alloc(c, sizeof(struct proj_item) * (q->ncols + 1));
	for (size_t k = 0; k < q->ncols; k++)
		u->pr->items[k].slot = q->colslots[k];
	u->nkids = q->nparts;
	u->kids = ar_alloc(c, sizeof(struct op *) * q->nparts);
	for (size_t p = 0; p < q->nparts; p++)
		u->kids[p] = build_part(c, q, q->parts[p], in, eager);
	return u;
}

void exec_query(struct qctx *c, struct query *q, struct rows *in,
                struct rows *out, size_t max_rows)
{
	/* In a write nothing is reset (keep_all), and a subquery runs once
	 * per input row (CALL { ... }, each row of an IN TRANSACTIONS
	 * chunk): its operators (a few KB, most of a chunk's memory per
	 * row) are built in c->ops and given back when the run ends. Their
	 * rows and values go where they always go, c->cur. Only in a write
	 * (eager): there build() allocates nothing but the operators, where
	 * a PROFILE of a read plans VectorTopK (vto_plan), which loads the
	 * index catalogue into the current arena for the whole statement
	 * (review s19-a F1: rewound with the operators, then read). */
	const int own_ops = c->keep_all && c->eager;
	const struct ar_mark mark = ar_mark(&c->ops);
	struct arena *const was = c->cur;
	struct op *volatile root = NULL;
	/* an error inside the subquery releases its operators' arenas on
	 * its way out (the cursor only knows the top-level pipeline) */
	jmp_buf outer;
	memcpy(outer, c->jb, sizeof outer);
	int keep_all = c->keep_all;
	int code = setjmp(c->jb);
	if (code) {
		memcpy(c->jb, outer, sizeof outer);
		c->keep_all = keep_all; /* match_next may have left it off */
		c->cur = was;           /* the error may come from build */
		if (root)
			op_release(c, root);
		if (own_ops)
			ar_rewind(c, &c->ops, mark);
		longjmp(c->jb, code);
	}
	if (own_ops)
		c->cur = &c->ops;
	root = build(c, q, in);
	c->cur = was;
	struct val *r;
	while (out->n < max_rows && (r = pull(c, root)) != NULL)
		rows_push(c, out, c->keep_all ? r : row_copy_deep(c, r));
	memcpy(c->jb, outer, sizeof outer);
	op_release(c, root);
	if (own_ops)
		ar_rewind(c, &c->ops, mark);
}

struct pipe *pipe_open(struct qctx *c, struct query *q)
{
	struct rows *in = ar_alloc(c, sizeof(*in));
	rows_push(c, in, row_copy(c, NULL));
	return (struct pipe *)build(c, q, in);
}

struct val *pipe_next(struct qctx *c, struct pipe *p)
{
	return pull(c, (struct op *)p);
}

void pipe_close(struct qctx *c, struct pipe *p)
{
	op_release(c, (struct op *)p);
}
