/* query.c - the public API of query.h: open / next / free a statement,
 * conversions between Lora__Value and the runtime value, EXPLAIN plans,
 * parsed statements (qry_parse), qry_is_write and qry_value_format. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "qint.h"
#include "user.h"

struct qry_cursor {
	struct qctx c;
	struct qry_error scratch;
	struct query *q;
	struct arena ast; /* q's memory when taken from a qry_stmt */
	int mode;
	struct rows rows; /* writes and PROFILE: every row, computed at open */
	size_t next;
	struct pipe *pipe; /* reads: rows pulled as the caller asks */
	struct arena conv; /* the protobuf form of the row handed out last */
	int ended;
	const char **cols;
	size_t ncols;
	const Lora__Value **out;
	Lora__MutationBatch *batch;
	Lora__Value *plan;
	uint64_t t0_ns;
	int defer_pending; /* try the statement without the pending batches */
};

/* open_cursor's answer: the statement read the stored graph while the
 * pending batches were deferred; run it again with them. */
#define QRY_RERUN (-2)

void qry_limits_init(struct qry_limits *l)
{
	memset(l, 0, sizeof *l);
	l->nesting_depth_max = QRY_NESTING_DEPTH_MAX;
	l->rows_max = QRY_ROWS_MAX;
	l->time_ms_max = QRY_TIME_MS_DEFAULT;
	l->mutations_max = QRY_MUTATIONS_MAX;
	l->mem_bytes_max = QRY_MEM_BYTES_DEFAULT;
	l->path_expansions_max = QRY_PATH_EXPANSIONS_MAX;
}

void qry_budget_init(struct qry_budget *b, uint64_t max_bytes)
{
	atomic_init(&b->used_bytes, 0);
	atomic_init(&b->refused, 0);
	b->max_bytes = max_bytes;
}

static void vset_err(struct qctx *c, int code, uint32_t line, uint32_t col,
                     const char *fmt, va_list ap)
{
	if (c->err) {
		c->err->code = code;
		vsnprintf(c->err->message, sizeof c->err->message, fmt, ap);
		c->err->line = line;
		c->err->column = col;
	}
	longjmp(c->jb, code ? code : LORA_EINTERNAL);
}

_Noreturn void qerr(struct qctx *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset_err(c, code, 0, 0, fmt, ap);
	va_end(ap);
	LORA_UNREACHABLE();
}

_Noreturn void qerr_at(struct qctx *c, int code, uint32_t line, uint32_t col,
                       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset_err(c, code, line, col, fmt, ap);
	va_end(ap);
	LORA_UNREACHABLE();
}

_Noreturn void qerr_sto(struct qctx *c, int rv, const char *what)
{
	const char *detail = sto_last_error(rv);
	qerr(c, rv, "%s: %s%s%s", what, lora_strerror(rv), *detail ? ": " : "",
	     detail);
}

void q_tick(struct qctx *c)
{
	if (!c->deadline_ms && !c->lim.gone)
		return;
	uint64_t now = lora_now_ms();
	if (c->deadline_ms && now > c->deadline_ms)
		qerr(c, LORA_ETIMEOUT, "query time limit of %llu ms exceeded",
		     (unsigned long long)c->lim.time_ms_max);
	if (c->lim.gone && now >= c->gone_check_ms) {
		c->gone_check_ms = now + QRY_GONE_CHECK_MS;
		if (c->lim.gone(c->lim.gone_arg))
			qerr(c, LORA_ECLOSED,
			     "the client closed its connection: the statement "
			     "stopped");
	}
}

/* ---- conversions ------------------------------------------------------- */

/* A vector value from a parameter or a stored property: its coordinate
 * type known and one array of it that matches the dimension. A
 * parameter's coordinates are checked as vector() checks them
 * (vec_coord); a stored vector stays readable as it was written, but an
 * INTEGER64 coordinate is held as a double, and one from 2^63 - 512 up
 * (which rounds to 2^63, beyond int64_t) reads as the largest double
 * below 2^63. */
static struct val vec_from_pb(struct qctx *c, const Lora__Vector *pv)
{
	struct vvec *v = ar_alloc(c, sizeof(*v));
	int ct = (int)pv->coord_type;
	if (ct < 0 || ct > 5)
		qerr(c, LORA_EVECTOR, "unknown vector coordinate type %d", ct);
	v->ctype = ct;
	v->dim = pv->dimension;
	size_t have = ct == 0 ? pv->n_f64 : ct == 1 ? pv->n_f32 : pv->n_ints;
	if (have != v->dim || pv->n_f32 + pv->n_f64 + pv->n_ints != have)
		qerr(c, LORA_EVECTOR,
		     "vector of dimension %u and type %s holds %zu "
		     "coordinates",
		     v->dim, vec_coord_name(ct),
		     pv->n_f32 + pv->n_f64 + pv->n_ints);
	v->d = ar_alloc(c, sizeof(double) * (v->dim + 1));
	const double top63 = 0x1p63;
	for (uint32_t i = 0; i < v->dim; i++) {
		if (ct < 2) {
			double x = ct ? pv->f32[i] : pv->f64[i];
			v->d[i] = c->pb_params ? vec_coord(c, ct, i, x) : x;
			continue;
		}
		int64_t k = pv->ints[i];
		double top = vec_coord_top(ct), x = (double)k;
		if (c->pb_params && !(x >= -top && x < top))
			qerr(c, LORA_EVECTOR,
			     "NumberOutOfRange: vector coordinate %u (%lld) "
			     "does not fit %s",
			     i, (long long)k, vec_coord_name(ct));
		v->d[i] = x < top63 ? x : nextafter(top63, 0);
	}
	struct val r = {.t = V_VECTOR};
	r.u.vec = v;
	return r;
}

static struct val from_pb_d(struct qctx *c, const Lora__Value *v, int depth);

struct val val_from_pb(struct qctx *c, const Lora__Value *v)
{
	return from_pb_d(c, v, 0);
}

/* parameters and stored values: nested past the limit is an error */
static struct val from_pb_d(struct qctx *c, const Lora__Value *v, int depth)
{
	if (!v)
		return v_null();
	if (depth > QRY_VALUE_DEPTH_MAX)
		qerr(c, LORA_ELIMIT,
		     "ValueTooDeep: lists and maps nested more than %d deep",
		     QRY_VALUE_DEPTH_MAX);
	struct val r;
	switch (v->kind_case) {
	case LORA__VALUE__KIND_BOOL_VALUE:
		return v_bool(v->bool_value);
	case LORA__VALUE__KIND_INT_VALUE:
		return v_int(v->int_value);
	case LORA__VALUE__KIND_FLOAT_VALUE:
		return v_float(v->float_value);
	case LORA__VALUE__KIND_STRING_VALUE:
		return v_cstr(c, v->string_value ? v->string_value : "");
	case LORA__VALUE__KIND_BYTES_VALUE:
		r = v_str(c, (const char *)v->bytes_value.data,
		          v->bytes_value.len);
		r.t = V_BYTES;
		return r;
	case LORA__VALUE__KIND_LIST_VALUE:
		r = v_list(c, v->list_value->n_items);
		for (size_t i = 0; i < v->list_value->n_items; i++)
			r.u.l->v[i] =
			    from_pb_d(c, v->list_value->items[i], depth + 1);
		return r;
	case LORA__VALUE__KIND_MAP_VALUE:
		r = v_map(c, v->map_value->n_entries);
		for (size_t i = 0; i < v->map_value->n_entries; i++)
			vmap_put(c, r.u.m,
			         ar_strdup(c, v->map_value->entries[i]->key),
			         from_pb_d(c, v->map_value->entries[i]->value,
			                   depth + 1));
		return r;
	case LORA__VALUE__KIND_VECTOR_VALUE:
		return vec_from_pb(c, v->vector_value);
	case LORA__VALUE__KIND_TEMPORAL_VALUE: {
		Lora__Temporal *t = v->temporal_value;
		struct vtemp *x = ar_alloc(c, sizeof(*x));
		x->kind = t->kind;
		x->days = t->epoch_days;
		x->nanos = t->nanos_of_day;
		x->offset = t->offset_seconds;
		x->zone = t->zone && t->zone[0] ? ar_strdup(c, t->zone) : NULL;
		x->months = t->months;
		x->ddays = t->days;
		x->secs = t->seconds;
		x->dnanos = t->nanos;
		r.t = V_TEMPORAL;
		r.u.tm = x;
		return r;
	}
	case LORA__VALUE__KIND_POINT_VALUE: {
		const Lora__Point *pt = v->point_value;
		if (!pt_srid_known(pt->srid))
			qerr(c, LORA_EPARAMS,
			     "point value with unknown srid %u",
			     (unsigned)pt->srid);
		/* the checks point() makes: a parameter is no other way in */
		pt_check(c, LORA_EPARAMS, pt->srid, pt->x, pt->y);
		return v_point(c, pt->srid, pt->x, pt->y, pt->z);
	}
	case LORA__VALUE__KIND_NODE_VALUE:
		return v_node(v->node_value->id);
	case LORA__VALUE__KIND_REL_VALUE:
		return v_rel(v->rel_value->id);
	case LORA__VALUE__KIND_PATH_VALUE: {
		Lora__PathValue *p = v->path_value;
		if (p->n_nodes != p->n_rels + 1)
			qerr(c, LORA_EPARAMS,
			     "path value with %zu nodes and %zu "
			     "relationships",
			     p->n_nodes, p->n_rels);
		struct vpath *x = ar_alloc(c, sizeof(*x));
		x->n = p->n_rels;
		x->nodes = ar_alloc(c, sizeof(uint64_t) * p->n_nodes);
		x->rels = ar_alloc(c, sizeof(uint64_t) * (p->n_rels + 1));
		for (size_t i = 0; i < p->n_nodes; i++)
			x->nodes[i] = p->nodes[i]->id;
		for (size_t i = 0; i < p->n_rels; i++)
			x->rels[i] = p->rels[i]->id;
		r.t = V_PATH;
		r.u.p = x;
		return r;
	}
	default:
		return v_null();
	}
}

static Lora__MapEntry **entries_pb(struct qctx *c, struct vmap *m, size_t *n)
{
	*n = m ? m->n : 0;
	Lora__MapEntry **e = ar_alloc(c, sizeof(*e) * (*n + 1));
	for (size_t i = 0; i < *n; i++) {
		e[i] = ar_alloc(c, sizeof(Lora__MapEntry));
		lora__map_entry__init(e[i]);
		e[i]->key = (char *)m->k[i];
		e[i]->value = val_to_pb(c, m->v[i]);
	}
	return e;
}

static Lora__NodeValue *node_pb(struct qctx *c, uint64_t id)
{
	Lora__NodeValue *n = ar_alloc(c, sizeof(*n));
	lora__node_value__init(n);
	n->id = id;
	/* a node the statement has not loaded enters the cache while that
	 * is small (answers that repeat a node read it once), else it is read
	 * as the view holds it: an answer of every node holds one row's */
	struct gnode *g = g_node_read(c, id);
	if (!g)
		return n;
	n->n_labels = g->nlabels;
	n->labels = (char **)g->labels;
	n->properties = entries_pb(c, g_node_props(c, g), &n->n_properties);
	return n;
}

static Lora__RelValue *rel_pb(struct qctx *c, uint64_t id)
{
	Lora__RelValue *r = ar_alloc(c, sizeof(*r));
	lora__rel_value__init(r);
	r->id = id;
	/* as node_pb; one an expansion cached (its type and ends only) is
	 * loaded whole, or read as the view holds it */
	struct gedge *e = g_edge_read(c, id);
	if (!e)
		return r;
	r->type = (char *)e->type;
	r->start_id = e->src;
	r->end_id = e->dst;
	r->properties = entries_pb(c, e->props, &r->n_properties);
	return r;
}

static Lora__Vector *vec_pb(struct qctx *c, struct vvec *v)
{
	Lora__Vector *p = ar_alloc(c, sizeof(*p));
	lora__vector__init(p);
	p->coord_type = v->ctype;
	p->dimension = v->dim;
	if (v->ctype == LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT32) {
		p->n_f32 = v->dim;
		p->f32 = ar_alloc(c, sizeof(float) * (v->dim + 1));
		for (uint32_t i = 0; i < v->dim; i++)
			p->f32[i] = (float)v->d[i];
	} else if (v->ctype == LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT64) {
		p->n_f64 = v->dim;
		p->f64 = v->d;
	} else {
		p->n_ints = v->dim;
		p->ints = ar_alloc(c, sizeof(int64_t) * (v->dim + 1));
		for (uint32_t i = 0; i < v->dim; i++)
			p->ints[i] = (int64_t)v->d[i];
	}
	return p;
}

Lora__Value *val_to_pb(struct qctx *c, struct val v)
{
	Lora__Value *p = ar_alloc(c, sizeof(*p));
	lora__value__init(p);
	switch (v.t) {
	case V_NULL:
		p->kind_case = LORA__VALUE__KIND_NULL_VALUE;
		p->null_value = 1;
		break;
	case V_BOOL:
		p->kind_case = LORA__VALUE__KIND_BOOL_VALUE;
		p->bool_value = v.u.b;
		break;
	case V_INT:
		p->kind_case = LORA__VALUE__KIND_INT_VALUE;
		p->int_value = v.u.i;
		break;
	case V_FLOAT:
		p->kind_case = LORA__VALUE__KIND_FLOAT_VALUE;
		p->float_value = v.u.f;
		break;
	case V_STR:
		p->kind_case = LORA__VALUE__KIND_STRING_VALUE;
		p->string_value = v.u.s->s;
		break;
	case V_BYTES:
		p->kind_case = LORA__VALUE__KIND_BYTES_VALUE;
		p->bytes_value.data = (uint8_t *)v.u.s->s;
		p->bytes_value.len = v.u.s->len;
		break;
	case V_LIST: {
		Lora__ValueList *l = ar_alloc(c, sizeof(*l));
		lora__value_list__init(l);
		l->n_items = v.u.l->n;
		l->items =
		    ar_alloc(c, sizeof(Lora__Value *) * (l->n_items + 1));
		for (size_t i = 0; i < l->n_items; i++)
			l->items[i] = val_to_pb(c, v.u.l->v[i]);
		p->kind_case = LORA__VALUE__KIND_LIST_VALUE;
		p->list_value = l;
		break;
	}
	case V_MAP: {
		Lora__ValueMap *m = ar_alloc(c, sizeof(*m));
		lora__value_map__init(m);
		m->entries = entries_pb(c, v.u.m, &m->n_entries);
		p->kind_case = LORA__VALUE__KIND_MAP_VALUE;
		p->map_value = m;
		break;
	}
	case V_VECTOR:
		p->kind_case = LORA__VALUE__KIND_VECTOR_VALUE;
		p->vector_value = vec_pb(c, v.u.vec);
		break;
	case V_TEMPORAL: {
		Lora__Temporal *t = ar_alloc(c, sizeof(*t));
		lora__temporal__init(t);
		struct vtemp *x = v.u.tm;
		t->kind = x->kind;
		t->epoch_days = x->days;
		t->nanos_of_day = x->nanos;
		t->offset_seconds = x->offset;
		t->zone = x->zone ? (char *)x->zone : "";
		t->months = x->months;
		t->days = x->ddays;
		t->seconds = x->secs;
		t->nanos = (int32_t)x->dnanos;
		p->kind_case = LORA__VALUE__KIND_TEMPORAL_VALUE;
		p->temporal_value = t;
		break;
	}
	case V_POINT: {
		Lora__Point *pt = ar_alloc(c, sizeof(*pt));
		lora__point__init(pt);
		pt->srid = v.u.pt->srid;
		pt->x = v.u.pt->x;
		pt->y = v.u.pt->y;
		pt->z = v.u.pt->z;
		p->kind_case = LORA__VALUE__KIND_POINT_VALUE;
		p->point_value = pt;
		break;
	}
	case V_NODE:
		p->kind_case = LORA__VALUE__KIND_NODE_VALUE;
		p->node_value = node_pb(c, v.u.id);
		break;
	case V_REL:
		p->kind_case = LORA__VALUE__KIND_REL_VALUE;
		p->rel_value = rel_pb(c, v.u.id);
		break;
	case V_PATH: {
		Lora__PathValue *pv = ar_alloc(c, sizeof(*pv));
		lora__path_value__init(pv);
		pv->n_nodes = v.u.p->n + 1;
		pv->n_rels = v.u.p->n;
		pv->nodes = ar_alloc(c, sizeof(void *) * pv->n_nodes);
		pv->rels = ar_alloc(c, sizeof(void *) * (pv->n_rels + 1));
		for (size_t i = 0; i < pv->n_nodes; i++)
			pv->nodes[i] = node_pb(c, v.u.p->nodes[i]);
		for (size_t i = 0; i < pv->n_rels; i++)
			pv->rels[i] = rel_pb(c, v.u.p->rels[i]);
		p->kind_case = LORA__VALUE__KIND_PATH_VALUE;
		p->path_value = pv;
		break;
	}
	}
	return p;
}

/* ---- plans ------------------------------------------------------------- */

static const char *clause_op(struct clause *cl)
{
	static const char *n[] = {
	    "Match",        "OptionalMatch", "Unwind",  "With",
	    "Return",       "Create",        "Merge",   "Set",
	    "Remove",       "Delete",        "Foreach", "ProcedureCall",
	    "SubqueryCall", "SchemaCommand", "LoadCSV"};
	return n[cl->kind];
}

void check_unique(struct qctx *c);

/* how the matcher will find the first node of a pattern part */
static void part_access(struct qctx *c, struct pattern *pat, struct ppart *pp,
                        struct expr *where, struct lora_buf *b)
{
	for (size_t i = 0; i <= pp->nrels; i++) {
		struct pnode *pn = &pp->nodes[i];
		if (pn->var && pn->var[0]) {
			lora_buf_printf(b, "Argument(%s)", pn->var);
			return;
		}
	}
	/* as exec.c pick_start: an id before a list of ids; in a part a
	 * selector collects, only its ends (its WHERE filters after the
	 * selection) */
	for (int want_in = 0; want_in < 2; want_in++)
		for (size_t i = 0; i <= pp->nrels; i++) {
			int in;
			struct expr *v =
			    seek_id_spec(pat, &pp->nodes[i], where, &in);
			if (!v || in != want_in ||
			    (pp->sel && i != 0 && i != pp->nrels))
				continue;
			lora_buf_puts(b, in ? "NodeByIdSeek(IN "
			                    : "NodeByIdSeek(");
			if (v->kind == E_PARAM)
				lora_buf_printf(b, "$%s)", v->name);
			else
				lora_buf_puts(b, "...)");
			return;
		}
	struct seekspec rs;
	int ri = pp->shortest || pp->sel
	             ? -1
	             : seek_pick_rel(c, pat, pp, where, &rs);
	if (ri >= 0) {
		seek_explain(pp->rels[ri].types[0], &rs, b);
		return;
	}
	for (int pass = 0; pass < SEEK_RANKS; pass++)
		for (size_t i = 0; i <= pp->nrels; i++) {
			struct pnode *pn = &pp->nodes[i];
			struct seekspec s[SEEK_SPECS_MAX];
			/* a selector's WHERE seeks its part's ends only */
			struct expr *w =
			    pp->sel && i != 0 && i != pp->nrels ? NULL : where;
			int k = seek_specs(pat, pn, w, s, SEEK_SPECS_MAX);
			for (size_t l = 0; l < pn->nlabels; l++)
				for (int j = 0; j < k; j++)
					if (seek_rank(&s[j]) == pass &&
					    seek_plannable(&s[j]) &&
					    seek_has_index(c, pn->labels[l],
					                   &s[j])) {
						seek_explain(pn->labels[l],
						             &s[j], b);
						return;
					}
		}
	for (size_t i = 0; i <= pp->nrels; i++) {
		const char *ul[LX_UNION_MAX];
		int nu = lx_union_labels(pp->nodes[i].lx, ul);
		if (pp->nodes[i].nlabels) {
			lora_buf_printf(b, "NodeByLabelScan(:%s)",
			                pp->nodes[i].labels[0]);
			return;
		}
		if (nu > 0) {
			lora_buf_puts(b, "Union(");
			for (int k = 0; k < nu; k++)
				lora_buf_printf(b, "%sNodeByLabelScan(:%s)",
				                k ? ", " : "", ul[k]);
			lora_buf_putc(b, ')');
			return;
		}
	}
	lora_buf_puts(b, "AllNodesScan");
}

static struct val plan_node(struct qctx *c, const char *op, const char *details,
                            struct val child)
{
	struct val m = v_map(c, 4);
	vmap_put(c, m.u.m, "operator", v_cstr(c, op));
	vmap_put(c, m.u.m, "details", v_cstr(c, details));
	struct val kids = v_list(c, child.t == V_NULL ? 0 : 1);
	if (child.t != V_NULL)
		kids.u.l->v[0] = child;
	vmap_put(c, m.u.m, "children", kids);
	return m;
}

static struct val build_plan(struct qctx *c, struct query *q)
{
	struct val top = v_null();
	int w = q_is_write(q);
	for (size_t p = 0; p < q->nparts; p++) {
		struct val cur = v_null();
		struct squery *s = q->parts[p];
		for (size_t i = 0; i < s->ncl; i++) {
			struct lora_buf *b = qbuf(c);
			struct clause *cl = s->cl[i];
			struct vto vt;
			int vtk = !w && vto_plan(c, s, i, &vt);
			const char *cname = NULL;
			/* PROFILE runs the scan (pipe.c stored_graph_untouched)
			 */
			int cnt = !w && !vtk && !c->profiling
			              ? cnt_plan(s, i, &cname)
			              : 0;
			if (vtk)
				vto_explain(&vt, b);
			else if (cnt)
				lora_buf_printf(
				    b,
				    cnt == 1 ? "count((%s%s))"
				             : "count(()-[%s%s]->())",
				    cname ? ":" : "", cname ? cname : "");
			else if (cl->pat && (cl->kind == C_MATCH ||
			                     cl->kind == C_OPTMATCH))
				for (size_t k = 0; k < cl->pat->nparts; k++) {
					if (k)
						lora_buf_puts(b, ", ");
					part_access(c, cl->pat,
					            &cl->pat->parts[k],
					            cl->where, b);
				}
			cur = plan_node(
			    c,
			    vtk ? "VectorTopK"
			    : cnt
			        ? (cnt == 1 ? "NodeCountFromCountStore"
			                    : "RelationshipCountFromCountStore")
			        : clause_op(cl),
			    qbuf_str(c, b), cur);
			if (c->profiling) {
				vmap_put(c, cur.u.m, "rows",
				         v_int((int64_t)cl->prof_rows));
				vmap_put(c, cur.u.m, "time_ns",
				         v_int((int64_t)cl->prof_ns));
			}
		}
		top = top.t == V_NULL ? cur : plan_node(c, "Union", "", top);
		if (p)
			top.u.m->v[2] = v_list(c, 2),
			top.u.m->v[2].u.l->v[0] = cur;
	}
	return top;
}

/* ---- open / next / free ------------------------------------------------ */

void q_check_batch_size(struct qctx *c, const Lora__MutationBatch *b,
                        const char *what)
{
	if (c->batch_bytes_max)
		q_check_batch_len(c, b, lora_batch_packed_size(b), what);
}

void q_check_batch_len(struct qctx *c, const Lora__MutationBatch *b, size_t len,
                       const char *what)
{
	if (c->batch_bytes_max && len > c->batch_bytes_max)
		qerr(c, LORA_ELIMIT,
		     "TransactionTooBig: the statement's %zu mutations pack to "
		     "%zu bytes, more than the %zu bytes one transaction (one "
		     "log entry) may hold%s",
		     b->n_mutations, len, c->batch_bytes_max, what);
}

static void build_batch(struct qry_cursor *cur)
{
	struct qctx *c = &cur->c;
	if (!c->g.nmuts)
		return;
	Lora__MutationBatch *b = ar_alloc(c, sizeof(*b));
	lora__mutation_batch__init(b);
	b->n_mutations = c->g.nmuts;
	b->mutations = c->g.muts;
	q_check_batch_size(c, b, QRY_TOO_BIG_HINT);
	cur->batch = b;
}

/* CALL { ... } IN TRANSACTIONS: the statement runs as a read pipeline to
 * its end (the IntX operators commit their chunks as they go, pipe.c);
 * the rows it returns are kept for qry_cursor_next. */
static void open_intx(struct qry_cursor *cur, const struct qry_request *req,
                      int mode)
{
	struct qctx *c = &cur->c;
	/* as in Neo4j, whatever the transaction did before */
	if (req->explicit_tx)
		qerr(c, LORA_EINVAL,
		     "CALL { ... } IN TRANSACTIONS commits each chunk by "
		     "itself: it runs only as an auto-commit statement, not "
		     "inside an explicit transaction");
	if (req->n_pending)
		qerr(c, LORA_EINTERNAL,
		     "CALL { ... } IN TRANSACTIONS over pending batches: the "
		     "caller must wait until they are applied");
	c->commit_chunk = req->commit_chunk;
	if (req->propose_chunk && req->wait_chunk) {
		c->propose_chunk = req->propose_chunk;
		c->wait_chunk = req->wait_chunk;
	}
	c->commit_arg = req->commit_arg;
	c->timing = mode == QRY_PROFILE;
	c->g.recording = 1;
	cur->pipe = pipe_open(c, cur->q);
	/* an error outside the chunks and their input (a time limit tick in
	 * this loop's pulls) still says what committed */
	jmp_buf outer;
	memcpy(outer, c->jb, sizeof outer);
	int code = setjmp(c->jb);
	if (code) {
		memcpy(c->jb, outer, sizeof outer);
		if (!c->tx_started || c->tx_said)
			longjmp(c->jb, code);
		intx_fail(c, code);
	}
	struct val *r;
	while ((r = pipe_next(c, cur->pipe)) != NULL) {
		if (!cur->ncols)
			continue;
		struct arena *was = ar_use(c, &c->keep);
		rows_push(c, &cur->rows, row_copy_deep(c, r));
		ar_use(c, was);
	}
	memcpy(c->jb, outer, sizeof outer);
	pipe_close(c, cur->pipe);
	cur->pipe = NULL;
	if (mode == QRY_PROFILE) {
		c->profiling = 1;
		cur->plan = val_to_pb(c, build_plan(c, cur->q));
	}
}

static int take_stmt(struct qry_cursor *cur, const struct qry_request *req,
                     int *mode);

static void open_body(struct qry_cursor *cur, const struct qry_request *req)
{
	struct qctx *c = &cur->c;
	if (strlen(req->query) > QRY_QUERY_BYTES_MAX)
		qerr(c, LORA_ELIMIT, "query longer than %u bytes",
		     QRY_QUERY_BYTES_MAX);
	if (req->import_dir)
		c->import_dir = ar_strdup(c, req->import_dir);
	int mode;
	if (!take_stmt(cur, req, &mode))
		cur->q = q_parse(c, req->query, &mode);
	if (req->mode != QRY_RUN)
		mode = req->mode;
	cur->mode = mode;
	if (req->params) {
		Lora__Value wrap = LORA__VALUE__INIT;
		wrap.kind_case = LORA__VALUE__KIND_MAP_VALUE;
		wrap.map_value = (Lora__ValueMap *)req->params;
		/* the map of parameters is not a level of any parameter */
		c->pb_params = 1;
		c->params = from_pb_d(c, &wrap, -1).u.m;
		c->pb_params = 0;
	}
	c->params_required = mode != QRY_EXPLAIN;
	q_check(c, cur->q);
	cur->cols = cur->q->cols;
	cur->ncols = cur->q->ncols;
	int w = q_is_write(cur->q);
	if (w && req->read_only)
		qerr(c, LORA_EREADONLY,
		     "write statement on a read-only "
		     "request");
	/* q_check's constant folding may have read a relationship or node
	 * parameter's properties into the graph cache: given back before the
	 * cache starts (fuzz_native found them leaked) */
	g_reset(c);
	if (c->intx && mode != QRY_EXPLAIN) {
		open_intx(cur, req, mode);
		return;
	}
	/* A statement that turns out to read the stored graph is run again
	 * by qry_open with the pending batches laid over the view. */
	if (!(cur->defer_pending && w && mode == QRY_RUN &&
	      g_defer_pending(c, req->pending, req->n_pending)))
		for (size_t i = 0; i < req->n_pending; i++)
			g_apply_pending(c, req->pending[i]);
	if (mode == QRY_EXPLAIN) {
		cur->plan = val_to_pb(c, build_plan(c, cur->q));
		return;
	}
	if (!w && mode == QRY_RUN) {
		/* a read: nothing runs until the first row is asked for */
		cur->pipe = pipe_open(c, cur->q);
		return;
	}
	c->keep_all = 1;
	c->eager = w;
	c->stmt = cur->q;
	c->timing = mode == QRY_PROFILE;
	c->g.recording = 1;
	struct rows in = {0};
	rows_push(c, &in, row_copy(c, NULL));
	exec_query(c, cur->q, &in, &cur->rows, SIZE_MAX);
	check_unique(c);
	check_constraints(c);
	g_finish(c);
	build_batch(cur);
	if (!cur->ncols)
		cur->rows.n = 0;
	if (mode == QRY_PROFILE) {
		c->profiling = 1;
		cur->plan = val_to_pb(c, build_plan(c, cur->q));
	}
}

/* Runs fn(arg) with c->jb armed; returns 0 or the raised error code. */
static int protect(struct qctx *c, void (*fn)(void *), void *arg)
{
	if (setjmp(c->jb))
		return c->err && c->err->code ? c->err->code : LORA_EINTERNAL;
	fn(arg);
	return 0;
}

struct open_args {
	struct qry_cursor *cur;
	const struct qry_request *req;
};

static void open_thunk(void *p)
{
	struct open_args *a = p;
	open_body(a->cur, a->req);
}

static int open_cursor(const struct qry_request *req, int defer_pending,
                       struct qry_cursor **out, struct qry_error *err);

/* Frees everything the statement holds and gives its memory back to the
 * shared budget at once. */
static void cursor_teardown(struct qry_cursor *cur)
{
	struct qctx *c = &cur->c;
	if (cur->pipe && !setjmp(c->jb))
		pipe_close(c, cur->pipe);
	if (c->iter)
		sto_iter_free(c->iter);
	g_adj_close_all(c);
	g_loading_free(c);
	lora_free(c->iter_groups);
	hm_scratch_free_to(c, 0);
	load_close_all(c);
	/* the caller waits for chunks still in flight (query.h) */
	for (size_t i = 0; i < c->tx_nfly; i++)
		lora_pb_arena_free(
		    &c->tx_fly[(c->tx_fly_head + i) % QRY_CHUNKS_IN_FLIGHT].ar);
	lora_buf_free(&c->sbuf);
	g_seek_cache_free(c);
	g_release(&c->g);
	arena_free(&c->g.ar);
	arena_free(&cur->conv);
	arena_free(&cur->ast);
	arena_free(&c->keep);
	arena_free(&c->ops);
	ar_pool_free(c);
	if (c->lim.shared)
		atomic_fetch_sub(&c->lim.shared->used_bytes, c->mem_bytes);
	/* a big statement's freed memory goes back to the system, not only
	 * to malloc's free lists (the node's RSS stayed at its peak), as do
	 * a big seek cache's many small entries */
	if (c->mem_peak > QRY_TRIM_PEAK_BYTES ||
	    c->sc_peak > QRY_TRIM_SEEK_CACHE_BYTES)
		lora_mem_trim();
	lora_free(cur);
}

/*
 * A write statement over pending batches first runs without laying them
 * over the view (most writes only create): the id counters move past them,
 * and the first read of the stored graph stops the statement, which then
 * runs again over the batches.
 */
int qry_open(const struct qry_request *req, struct qry_cursor **out,
             struct qry_error *err)
{
	int defer = req && req->n_pending > 0;
	int rc = open_cursor(req, defer, out, err);
	if (rc == QRY_RERUN) {
		/* the first run took req->stmt's tree (take_stmt checked it
		 * came from this text under this limit): the same text is
		 * parsed again */
		struct qry_request again = *req;
		again.stmt = NULL;
		rc = open_cursor(&again, 0, out, err);
	}
	return rc;
}

static int open_cursor(const struct qry_request *req, int defer_pending,
                       struct qry_cursor **out, struct qry_error *err)
{
	*out = NULL;
	struct qry_error local;
	struct qry_error *const e = err ? err : &local;
	memset(e, 0, sizeof *e);
	if (!req || !req->query)
		return e->code =
		           lora_errf(LORA_EINVAL, e->message, "no query text");
	if (req->explicit_tx &&
	    qry_user_refuse_in_tx(req->query, e->message) != 0)
		return e->code = LORA_EINVAL;
	struct qry_cursor *cur = lora_calloc(1, sizeof(*cur));
	if (!cur)
		return e->code =
		           lora_errf(LORA_ENOMEM, e->message, "out of memory");
	struct qctx *c = &cur->c;
	c->err = e;
	c->view = req->view;
	c->lim = req->limits;
	if (!c->lim.nesting_depth_max)
		qry_limits_init(&c->lim);
	c->read_only = req->read_only;
	c->batch_bytes_max = req->batch_bytes_max;
	c->cur = &c->keep;
	c->text = req->query;
	cur->t0_ns = lora_now_ns();
	if (c->lim.time_ms_max)
		c->deadline_ms = (c->lim.time_from_ms ? c->lim.time_from_ms
		                                      : lora_now_ms()) +
		                 c->lim.time_ms_max;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->stmt_time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	c->rand_state =
	    (uint64_t)ts.tv_nsec * 2654435761u + 88172645463325252ull;
	cur->defer_pending = defer_pending;
	struct open_args oa = {cur, req};
	int code = protect(c, open_thunk, &oa);
	if (code == LORA_ELIMIT && !c->intx &&
	    c->g.nmuts + c->g.ndels >= c->lim.mutations_max) {
		size_t len = strlen(e->message);
		snprintf(e->message + len, sizeof e->message - len, "%s",
		         QRY_TOO_BIG_HINT);
	}
	if (code) {
		if (c->g.need_pending) {
			code = QRY_RERUN;
			memset(e, 0, sizeof *e);
		}
		cursor_teardown(cur);
		e->code = code;
		return code;
	}
	c->err = &cur->scratch;
	*out = cur;
	return 0;
}

int qry_cursor_charge(struct qry_cursor *cur, uint64_t n, struct qry_error *err)
{
	if (mem_try_charge(&cur->c, (size_t)n, err->message) == 0)
		return 0;
	err->line = err->column = 0;
	err->excerpt[0] = '\0';
	return err->code = LORA_EMEMORY;
}

void qry_cursor_free(struct qry_cursor *cur)
{
	if (!cur)
		return;
	cursor_teardown(cur);
}

size_t qry_cursor_columns(struct qry_cursor *cur, const char *const **names)
{
	*names = cur->cols;
	return cur->ncols;
}

/* the next row: from the rows computed at open, or pulled from the
 * pipeline (a statement without columns is run to its end) */
static struct val *next_row(struct qry_cursor *cur)
{
	struct qctx *c = &cur->c;
	if (!cur->pipe)
		return cur->next < cur->rows.n ? cur->rows.r[cur->next++]
		                               : NULL;
	struct val *r;
	while ((r = pipe_next(c, cur->pipe)) != NULL && !cur->ncols)
		;
	return r;
}

static void next_thunk(void *p)
{
	struct qry_cursor *cur = p;
	struct qctx *c = &cur->c;
	if (!cur->out)
		cur->out =
		    ar_alloc(c, sizeof(Lora__Value *) * (cur->ncols + 1));
	ar_reset(c, &cur->conv);
	struct val *r = next_row(cur);
	if (!r) {
		cur->ended = 1;
		return;
	}
	ar_use(c, &cur->conv);
	for (size_t i = 0; i < cur->ncols; i++)
		cur->out[i] = val_to_pb(c, r[cur->q->colslots[i]]);
	ar_use(c, &c->keep);
}

int qry_cursor_next(struct qry_cursor *cur, const Lora__Value *const **row,
                    int *done, struct qry_error *err)
{
	struct qctx *c = &cur->c;
	struct qry_error local;
	struct qry_error *const e = err ? err : &local;
	memset(e, 0, sizeof *e);
	*done = 0;
	if (cur->ended) {
		*done = 1;
		return 0;
	}
	c->err = e;
	int code = protect(c, next_thunk, cur);
	c->err = &cur->scratch;
	if (code) {
		cur->ended = 1; /* a failed statement gives no more rows */
		return code;
	}
	if (cur->ended) {
		*done = 1;
		return 0;
	}
	*row = cur->out;
	return 0;
}

const Lora__MutationBatch *qry_cursor_batch(struct qry_cursor *cur)
{
	return cur->batch;
}

uint64_t qry_cursor_mem_peak(const struct qry_cursor *cur)
{
	return cur->c.mem_peak;
}

const Lora__Value *qry_cursor_plan(struct qry_cursor *cur)
{
	return cur->plan;
}

static int has_loadcsv(const struct query *q)
{
	for (size_t i = 0; q && i < q->nparts; i++)
		for (size_t k = 0; k < q->parts[i]->ncl; k++) {
			const struct clause *cl = q->parts[i]->cl[k];
			if (cl->kind == C_LOADCSV ||
			    (cl->kind == C_CALLSUB && has_loadcsv(cl->sub)))
				return 1;
		}
	return 0;
}

static int has_intx(const struct query *q)
{
	for (size_t i = 0; i < q->nparts; i++)
		for (size_t k = 0; k < q->parts[i]->ncl; k++)
			if (q->parts[i]->cl[k]->kind == C_CALLSUB &&
			    q->parts[i]->cl[k]->intx)
				return 1;
	return 0;
}

struct qry_stmt {
	const char *text; /* borrowed: the caller's */
	struct arena ast; /* the tree's memory; moved to the cursor */
	struct query *q;  /* NULL once a cursor took it */
	int mode;         /* QRY_RUN, or EXPLAIN / PROFILE as written */
	uint32_t nesting_depth_max; /* the limit it was parsed under */
	int is_write, intx, loads_csv;
};

struct parse_args {
	struct qctx *c;
	struct qry_stmt *s;
};

static void parse_thunk(void *p)
{
	struct parse_args *a = p;
	struct qry_stmt *s = a->s;
	s->q = q_parse(a->c, s->text, &s->mode);
	s->is_write = q_is_write(s->q);
	s->intx = has_intx(s->q);
	s->loads_csv = has_loadcsv(s->q);
}

/* qry_parse; with charge_shared, a probe's parse also charges lim's
 * shared budget while it runs (the tree is freed right after, uncharged
 * here), so that the routing parse of every request counts in the
 * node's budget. */
static int parse_stmt(const char *query, const struct qry_limits *lim,
                      int charge_shared, struct qry_stmt **out,
                      struct qry_error *err)
{
	struct qry_error local;
	struct qry_error *const e = err ? err : &local;
	memset(e, 0, sizeof *e);
	*out = NULL;
	if (!query)
		return e->code =
		           lora_errf(LORA_EINVAL, e->message, "no query text");
	struct qry_stmt *s = lora_calloc(1, sizeof(*s));
	struct qctx *c = lora_calloc(1, sizeof(*c));
	if (!s || !c) {
		lora_free(s);
		lora_free(c);
		return e->code =
		           lora_errf(LORA_ENOMEM, e->message, "out of memory");
	}
	c->err = e;
	c->cur = &c->keep;
	if (lim && lim->nesting_depth_max)
		c->lim = *lim;
	else
		qry_limits_init(&c->lim);
	if (!charge_shared) /* charged by the cursor that takes the tree */
		c->lim.shared = NULL;
	s->text = query;
	s->nesting_depth_max = c->lim.nesting_depth_max;
	struct parse_args a = {c, s};
	int code = protect(c, parse_thunk, &a);
	lora_buf_free(&c->sbuf);
	if (c->lim.shared)
		atomic_fetch_sub(&c->lim.shared->used_bytes, c->mem_bytes);
	s->ast = c->keep;
	lora_free(c);
	if (code) {
		qry_stmt_free(s);
		return e->code = code;
	}
	*out = s;
	return 0;
}

int qry_parse(const char *query, const struct qry_limits *lim,
              struct qry_stmt **out, struct qry_error *err)
{
	return parse_stmt(query, lim, 0, out, err);
}

void qry_stmt_free(struct qry_stmt *s)
{
	if (!s)
		return;
	arena_free(&s->ast);
	lora_free(s);
}

int qry_stmt_is_write(const struct qry_stmt *s)
{
	return s->is_write;
}

int qry_stmt_in_transactions(const struct qry_stmt *s)
{
	return s->intx;
}

int qry_stmt_loads_csv(const struct qry_stmt *s)
{
	return s->loads_csv;
}

/* Takes req->stmt's tree for cur: 1, with cur->q and *mode set and its
 * memory charged to the statement; 0 without req->stmt. A statement that
 * cannot be taken (parsed from another text or under another nesting
 * limit, or already opened) is LORA_EINVAL, never a parse of the text
 * instead: a caller that routed and role-checked by the statement's tree
 * would otherwise run a tree its checks never saw. */
static int take_stmt(struct qry_cursor *cur, const struct qry_request *req,
                     int *mode)
{
	struct qry_stmt *s = req->stmt;
	struct qctx *c = &cur->c;
	if (!s)
		return 0;
	if (!s->q)
		qerr(c, LORA_EINVAL, "statement already opened");
	if (s->text != req->query)
		qerr(c, LORA_EINVAL, "statement parsed from another text");
	if (s->nesting_depth_max != c->lim.nesting_depth_max)
		qerr(c, LORA_EINVAL,
		     "statement parsed under nesting limit %u, request has %u",
		     s->nesting_depth_max, c->lim.nesting_depth_max);
	cur->ast = s->ast;
	memset(&s->ast, 0, sizeof s->ast);
	cur->q = s->q;
	s->q = NULL;
	*mode = s->mode;
	mem_charge(c, cur->ast.bytes);
	return 1;
}

/* Parses query alone and lets fn answer from the statement
 * (qry_loads_csv, qry_in_transactions, qry_is_write). */
static int parse_probe(const char *query, const struct qry_limits *lim,
                       int (*fn)(const struct qry_stmt *), int *out,
                       struct qry_error *e)
{
	struct qry_stmt *s;
	int code = parse_stmt(query, lim, 1, &s, e);
	if (code == 0)
		*out = fn(s);
	qry_stmt_free(s);
	return code;
}

int qry_loads_csv(const char *query, int *yes, struct qry_error *err)
{
	return qry_loads_csv_lim(query, NULL, yes, err);
}

int qry_loads_csv_lim(const char *query, const struct qry_limits *lim, int *yes,
                      struct qry_error *err)
{
	struct qry_error local;
	struct qry_error *const e = err ? err : &local;
	memset(e, 0, sizeof *e);
	*yes = 0;
	if (!strcasestr(query, "CSV"))
		return 0;
	return parse_probe(query, lim, qry_stmt_loads_csv, yes, e);
}

int qry_in_transactions(const char *query, int *yes, struct qry_error *err)
{
	return qry_in_transactions_lim(query, NULL, yes, err);
}

int qry_in_transactions_lim(const char *query, const struct qry_limits *lim,
                            int *yes, struct qry_error *err)
{
	struct qry_error local;
	struct qry_error *const e = err ? err : &local;
	memset(e, 0, sizeof *e);
	*yes = 0;
	return parse_probe(query, lim, qry_stmt_in_transactions, yes, e);
}

/*
 * Answers for recent statement texts: a client usually sends the same few
 * statements with different parameters, and every node that routes one
 * asks (the node it reached, then the leader). Direct-mapped on a hash of
 * the text; only texts up to QRY_KIND_TEXT_BYTES that parsed are kept.
 */
#define QRY_KIND_SLOTS      64
#define QRY_KIND_TEXT_BYTES 256
static struct {
	char text[QRY_KIND_TEXT_BYTES];
	int is_write;
} kind_cache[QRY_KIND_SLOTS];
static pthread_mutex_t kind_mu = PTHREAD_MUTEX_INITIALIZER;

/* The slot of a text that can be kept; -1 when it cannot (empty or long). */
static int kind_slot(const char *query)
{
	size_t len = strnlen(query, QRY_KIND_TEXT_BYTES);
	if (len == 0 || len == QRY_KIND_TEXT_BYTES)
		return -1;
	return (int)(lora_hash32(query, len) % QRY_KIND_SLOTS);
}

static int kind_cached(int k, const char *query, int *is_write)
{
	pthread_mutex_lock(&kind_mu);
	int hit = strcmp(kind_cache[k].text, query) == 0;
	if (hit)
		*is_write = kind_cache[k].is_write;
	pthread_mutex_unlock(&kind_mu);
	return hit;
}

static void kind_keep(int k, const char *query, int is_write)
{
	pthread_mutex_lock(&kind_mu);
	snprintf(kind_cache[k].text, sizeof kind_cache[k].text, "%s", query);
	kind_cache[k].is_write = is_write;
	pthread_mutex_unlock(&kind_mu);
}

int qry_is_write(const char *query, int *is_write, struct qry_error *err)
{
	return qry_is_write_lim(query, NULL, is_write, err);
}

int qry_is_write_lim(const char *query, const struct qry_limits *lim,
                     int *is_write, struct qry_error *err)
{
	struct qry_error local;
	struct qry_error *const e = err ? err : &local;
	memset(e, 0, sizeof *e);
	*is_write = 0;
	int k = kind_slot(query);
	if (k >= 0 && kind_cached(k, query, is_write))
		return 0;
	int code = parse_probe(query, lim, qry_stmt_is_write, is_write, e);
	if (code == 0 && k >= 0)
		kind_keep(k, query, *is_write);
	return code;
}
