/* write.c - update clauses: CREATE, MERGE, SET, REMOVE, DELETE and index
 * DDL, applied to the statement overlay (graph.c), which records the
 * mutation batch; plus the unique-constraint check at statement end. */
#include <string.h>

#include "qint.h"

static struct vmap *eval_props(struct qctx *c, struct expr *e, struct val *row)
{
	if (!e)
		return NULL;
	struct val v = eval(c, e, row);
	if (v.t == V_NULL)
		return NULL;
	if (v.t != V_MAP)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: properties must be a "
		     "map");
	return v.u.m;
}

static uint64_t create_node_at(struct qctx *c, struct pnode *pn,
                               struct val *row)
{
	struct val cur = row[pn->slot];
	if (cur.t == V_NODE)
		return cur.u.id;
	if (pn->var && pn->var[0]) {
		if (cur.t == V_NULL)
			qerr(c, LORA_ESEMANTIC,
			     "InvalidArgumentValue: cannot create a "
			     "relationship with a null node");
		qerr(c, LORA_ESEMANTIC,
		     "VariableTypeConflict: `%s` is not a node", pn->var);
	}
	uint64_t id = g_create_node(c, pn->labels, pn->nlabels,
	                            eval_props(c, pn->props, row));
	row[pn->slot] = v_node(id);
	return id;
}

static void create_part(struct qctx *c, struct ppart *pp, struct val *row)
{
	for (size_t i = 0; i <= pp->nrels; i++)
		create_node_at(c, &pp->nodes[i], row);
	struct vpath *p = ar_alloc(c, sizeof(*p));
	p->n = pp->nrels;
	p->nodes = ar_alloc(c, sizeof(uint64_t) * (pp->nrels + 1));
	p->rels = ar_alloc(c, sizeof(uint64_t) * (pp->nrels + 1));
	p->nodes[0] = row[pp->nodes[0].slot].u.id;
	for (size_t i = 0; i < pp->nrels; i++) {
		struct prel *r = &pp->rels[i];
		uint64_t a = row[pp->nodes[i].slot].u.id;
		uint64_t b = row[pp->nodes[i + 1].slot].u.id;
		if (r->dir == D_IN) {
			uint64_t t = a;
			a = b;
			b = t;
		}
		if (r->var && r->var[0])
			qerr(c, LORA_ESEMANTIC,
			     "VariableAlreadyBound: `%s` already declared",
			     r->var);
		uint64_t id = g_create_edge(c, r->types[0], a, b,
		                            eval_props(c, r->props, row));
		row[r->slot] = v_rel(id);
		p->rels[i] = id;
		p->nodes[i + 1] = row[pp->nodes[i + 1].slot].u.id;
	}
	if (pp->pathslot >= 0) {
		struct val v = {.t = V_PATH};
		v.u.p = p;
		row[pp->pathslot] = v;
	}
}

void exec_create(struct qctx *c, struct clause *cl, struct rows *in,
                 struct rows *out)
{
	for (size_t i = 0; i < in->n; i++) {
		struct val *r = row_copy(c, in->r[i]);
		for (size_t k = 0; k < cl->pat->nparts; k++)
			create_part(c, &cl->pat->parts[k], r);
		rows_push(c, out, r);
	}
}

static void merge_null_check(struct qctx *c, struct ppart *pp, struct val *row)
{
	for (size_t i = 0; i <= pp->nrels; i++) {
		struct pnode *pn = &pp->nodes[i];
		if (!pn->props || pn->props->kind != E_MAP)
			continue;
		for (size_t j = 0; j < pn->props->nargs; j++)
			if (eval(c, pn->props->args[j], row).t == V_NULL)
				qerr(c, LORA_ESEMANTIC,
				     "MergeReadOwnWrites: cannot merge a node "
				     "using a null property value for `%s`",
				     pn->props->labels[j]);
	}
	for (size_t i = 0; i < pp->nrels; i++) {
		struct prel *r = &pp->rels[i];
		if (!r->props || r->props->kind != E_MAP)
			continue;
		for (size_t j = 0; j < r->props->nargs; j++)
			if (eval(c, r->props->args[j], row).t == V_NULL)
				qerr(
				    c, LORA_ESEMANTIC,
				    "MergeReadOwnWrites: cannot merge a "
				    "relationship using a null property value");
	}
}

void exec_merge(struct qctx *c, struct clause *cl, struct rows *in,
                struct rows *out)
{
	struct ppart *pp = &cl->pat->parts[0];
	for (size_t i = 0; i < in->n; i++) {
		struct rows found = {0};
		struct val *r = row_copy(c, in->r[i]);
		match_pattern(c, cl->pat, NULL, r, &found);
		if (found.n) {
			for (size_t k = 0; k < found.n; k++) {
				exec_set(c, cl->on_match, cl->non_match,
				         found.r[k]);
				rows_push(c, out, found.r[k]);
			}
			continue;
		}
		for (size_t k = 0; k <= pp->nrels; k++)
			if (!pp->nodes[k].var || !pp->nodes[k].var[0])
				r[pp->nodes[k].slot] = v_null();
		merge_null_check(c, pp, r);
		for (size_t k = 0; k < pp->nrels; k++)
			if (pp->rels[k].dir == D_BOTH)
				pp->rels[k].dir = D_OUT;
		create_part(c, pp, r);
		exec_set(c, cl->on_create, cl->non_create, r);
		rows_push(c, out, r);
	}
}

static void set_all(struct qctx *c, struct val tgt, struct vmap *m, int replace)
{
	int is_edge = tgt.t == V_REL;
	if (replace) {
		struct vmap *have = is_edge
		                        ? g_edge(c, tgt.u.id)->props
		                        : g_node_props(c, g_node(c, tgt.u.id));
		size_t n = have ? have->n : 0;
		const char **keys = ar_alloc(c, sizeof(char *) * (n + 1));
		for (size_t i = 0; i < n; i++)
			keys[i] = have->k[i];
		for (size_t i = 0; i < n; i++)
			if (!m || !vmap_get(m, keys[i]))
				g_set_prop(c, is_edge, tgt.u.id, keys[i],
				           v_null());
	}
	for (size_t i = 0; m && i < m->n; i++)
		g_set_prop(c, is_edge, tgt.u.id, m->k[i], m->v[i]);
}

static struct vmap *as_map(struct qctx *c, struct val v)
{
	if (v.t == V_NULL)
		return NULL;
	if (v.t == V_MAP)
		return v.u.m;
	if (v.t == V_NODE)
		return g_node_props(c, g_node(c, v.u.id));
	if (v.t == V_REL)
		return g_edge(c, v.u.id)->props;
	qerr(c, LORA_ETYPE, "InvalidArgumentType: SET needs a map, got %s",
	     v_type_name(v));
}

static void set_one(struct qctx *c, struct setitem *s, struct val *row)
{
	struct val tgt =
	    eval(c,
	         s->kind == S_PROP || s->kind == S_RM_PROP ? s->target->a
	                                                   : s->target,
	         row);
	if (tgt.t == V_NULL)
		return;
	if (tgt.t != V_NODE && tgt.t != V_REL)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: cannot set properties of a %s",
		     v_type_name(tgt));
	switch (s->kind) {
	case S_PROP:
		g_set_prop(c, tgt.t == V_REL, tgt.u.id, s->target->name,
		           eval(c, s->value, row));
		break;
	case S_RM_PROP:
		g_set_prop(c, tgt.t == V_REL, tgt.u.id, s->target->name,
		           v_null());
		break;
	case S_ASSIGN:
	case S_MERGEMAP: {
		struct val v = eval(c, s->value, row);
		struct vmap *m = as_map(c, v);
		if (m) { /* copy: the source may be the target itself */
			struct val cp = v_map(c, m->n);
			for (size_t i = 0; i < m->n; i++)
				vmap_put(c, cp.u.m, m->k[i], m->v[i]);
			m = cp.u.m;
		}
		set_all(c, tgt, m, s->kind == S_ASSIGN);
		break;
	}
	case S_LABELS:
	case S_RM_LABELS:
		if (tgt.t != V_NODE)
			qerr(c, LORA_ETYPE,
			     "InvalidArgumentType: labels on a "
			     "relationship");
		for (size_t i = 0; i < s->nlabels; i++)
			if (s->kind == S_LABELS)
				g_add_label(c, tgt.u.id, s->labels[i]);
			else
				g_remove_label(c, tgt.u.id, s->labels[i]);
		break;
	}
}

void exec_set(struct qctx *c, struct setitem *s, size_t n, struct val *row)
{
	for (size_t i = 0; i < n; i++)
		set_one(c, &s[i], row);
}

static void delete_val(struct qctx *c, struct val v, int detach)
{
	switch (v.t) {
	case V_NULL:
		return;
	case V_NODE:
		g_delete_node(c, v.u.id, detach);
		return;
	case V_REL:
		g_delete_edge(c, v.u.id);
		return;
	case V_PATH:
		for (size_t i = 0; i < v.u.p->n; i++)
			g_delete_edge(c, v.u.p->rels[i]);
		for (size_t i = 0; i <= v.u.p->n; i++)
			g_delete_node(c, v.u.p->nodes[i], detach);
		return;
	case V_LIST:
		for (size_t i = 0; i < v.u.l->n; i++)
			delete_val(c, v.u.l->v[i], detach);
		return;
	default:
		qerr(c, LORA_ETYPE, "InvalidArgumentType: cannot delete a %s",
		     v_type_name(v));
	}
}

void exec_delete(struct qctx *c, struct clause *cl, struct val *row)
{
	for (size_t i = 0; i < cl->ndels; i++)
		delete_val(c, eval(c, cl->dels[i], row), cl->detach);
}

/* ---- index DDL --------------------------------------------------------- */

/* hnsw.m (2..128) and hnsw.ef_construction (1..4096) of a vector index's
 * indexConfig; absent: 0, the storage's defaults */
static void hnsw_options(struct qctx *c, struct val cfg, Lora__CreateIndex *ci)
{
	struct val m = prop_of(c, cfg, "hnsw.m");
	struct val efc = prop_of(c, cfg, "hnsw.ef_construction");
	if (m.t != V_NULL && (m.t != V_INT || m.u.i < 2 || m.u.i > 128))
		qerr(c, LORA_EINVAL,
		     "InvalidArgumentValue: hnsw.m must be an integer "
		     "between 2 and 128");
	if (efc.t != V_NULL &&
	    (efc.t != V_INT || efc.u.i < 1 || efc.u.i > 4096))
		qerr(c, LORA_EINVAL,
		     "InvalidArgumentValue: hnsw.ef_construction must be an "
		     "integer between 1 and 4096");
	ci->hnsw_m = m.t == V_INT ? (uint32_t)m.u.i : 0;
	ci->hnsw_ef_construction = efc.t == V_INT ? (uint32_t)efc.u.i : 0;
}

static Lora__Mutation *ddl_create(struct qctx *c, struct ddl *d)
{
	Lora__Mutation *m = ar_alloc(c, sizeof(*m));
	lora__mutation__init(m);
	Lora__CreateIndex *ci = ar_alloc(c, sizeof(*ci));
	lora__create_index__init(ci);
	if (d->nprops > 1 && d->kind != DDL_CREATE_INDEX &&
	    d->kind != DDL_CREATE_NODE_KEY)
		qerr(c, LORA_ESEMANTIC,
		     "UnsupportedFeature: only a range index may cover several "
		     "properties (a %s takes one)",
		     d->kind == DDL_CREATE_VECTOR ? "vector index"
		     : d->kind == DDL_CREATE_TEXT ? "text index"
		                                  : "constraint");
	if (d->rel && d->kind != DDL_CREATE_INDEX &&
	    d->kind != DDL_CREATE_VECTOR)
		qerr(c, LORA_ESEMANTIC,
		     "UnsupportedFeature: relationships take range and vector "
		     "indexes only (no constraints or text indexes)");
	struct lora_buf *b = qbuf(c);
	if (d->name)
		lora_buf_puts(b, d->name);
	else
		lora_buf_printf(b, "%s_%s",
		                d->kind == DDL_CREATE_INDEX ||
		                        d->kind == DDL_CREATE_VECTOR ||
		                        d->kind == DDL_CREATE_TEXT
		                    ? "index"
		                    : "constraint",
		                d->label);
	for (size_t i = 0; i < d->nprops; i++)
		for (size_t k = 0; k < i; k++)
			if (!strcmp(d->props[i], d->props[k]))
				qerr(c, LORA_ESEMANTIC,
				     "an index lists property %s twice",
				     d->props[i]);
	if (!d->name && d->nprops == 1) {
		lora_buf_printf(b, "_%s", d->props[0]);
	} else if (!d->name) {
		/* index_L_a_b would also be the name of ON (n.a_b): several
		 * properties are named by a hash of their list instead */
		uint32_t h = 2166136261u; /* FNV-1a */
		for (size_t i = 0; i < d->nprops; i++)
			for (const char *p = d->props[i];; p++) {
				h = (h ^ (uint8_t)*p) * 16777619u;
				if (!*p)
					break;
			}
		lora_buf_printf(b, "_%08x", h);
	}
	ci->name = qbuf_str(c, b);
	ci->kind =
	    d->kind == DDL_CREATE_UNIQUE     ? LORA__INDEX_KIND__INDEX_UNIQUE
	    : d->kind == DDL_CREATE_VECTOR   ? LORA__INDEX_KIND__INDEX_VECTOR
	    : d->kind == DDL_CREATE_EXISTS   ? LORA__INDEX_KIND__INDEX_EXISTS
	    : d->kind == DDL_CREATE_TYPE     ? LORA__INDEX_KIND__INDEX_TYPE
	    : d->kind == DDL_CREATE_NODE_KEY ? LORA__INDEX_KIND__INDEX_NODE_KEY
	    : d->kind == DDL_CREATE_TEXT     ? LORA__INDEX_KIND__INDEX_TEXT
	                                     : LORA__INDEX_KIND__INDEX_RANGE;
	if (d->ptype)
		ci->property_type = (char *)d->ptype;
	ci->entity = d->rel ? LORA__ENTITY_KIND__ENTITY_EDGE
	                    : LORA__ENTITY_KIND__ENTITY_NODE;
	ci->label = (char *)d->label;
	ci->n_properties = d->nprops;
	ci->properties = ar_alloc(c, sizeof(char *) * d->nprops);
	for (size_t i = 0; i < d->nprops; i++)
		ci->properties[i] = (char *)d->props[i];
	ci->if_not_exists = d->if_not_exists;
	if (d->kind == DDL_CREATE_VECTOR) {
		ci->vector_similarity = "cosine";
		struct val o =
		    d->options ? eval(c, d->options, NULL) : v_null();
		struct val cfg =
		    o.t == V_MAP ? prop_of(c, o, "indexConfig") : v_null();
		if (cfg.t == V_MAP) {
			struct val dim = prop_of(c, cfg, "vector.dimensions");
			struct val sim =
			    prop_of(c, cfg, "vector.similarity_function");
			if (dim.t == V_INT && dim.u.i > 0 && dim.u.i < 65536)
				ci->vector_dimensions = (uint32_t)dim.u.i;
			hnsw_options(c, cfg, ci);
			if (sim.t == V_STR) {
				if (!strcasecmp(sim.u.s->s, "euclidean"))
					ci->vector_similarity = "euclidean";
				else if (!strcasecmp(sim.u.s->s, "dot"))
					ci->vector_similarity = "dot";
				else if (strcasecmp(sim.u.s->s, "cosine"))
					qerr(c, LORA_EINVAL,
					     "InvalidArgumentValue: unknown "
					     "similarity function %s",
					     sim.u.s->s);
			}
		}
	}
	m->op_case = LORA__MUTATION__OP_CREATE_INDEX;
	m->create_index = ci;
	return m;
}

/* One SHOW INDEXES / SHOW CONSTRAINTS row for def d. Indexes are built
 * when their entry is applied, so every listed index is ONLINE at 100%. A
 * uniqueness or node key constraint is listed by both: as a constraint
 * owning its RANGE index (named as the constraint), and as that index. */
static void show_row(struct qctx *c, struct clause *cl, struct rows *out,
                     const Lora__CreateIndex *d)
{
	static const char *kinds[] = {"RANGE", "RANGE", "VECTOR", NULL,
	                              NULL,    "RANGE", "TEXT"};
	static const char *ckinds[] = {NULL,
	                               "UNIQUENESS",
	                               NULL,
	                               "NODE_PROPERTY_EXISTENCE",
	                               "NODE_PROPERTY_TYPE",
	                               "NODE_KEY",
	                               NULL};
	size_t nk = sizeof kinds / sizeof *kinds;
	int uniq = d->kind == LORA__INDEX_KIND__INDEX_UNIQUE ||
	           d->kind == LORA__INDEX_KIND__INDEX_NODE_KEY;
	int cons = d->kind < nk && ckinds[d->kind];
	int show_c = cl->ddl->show_constraints;
	if ((show_c && !cons) ||
	    (!show_c && (d->kind >= nk || !kinds[d->kind])))
		return; /* existence and type constraints have no index */
	struct val *r = row_copy(c, NULL);
	struct val name = v_cstr(c, d->name);
	struct val pl = v_list(c, d->n_properties);
	for (size_t k = 0; k < d->n_properties; k++)
		pl.u.l->v[k] = v_cstr(c, d->properties[k]);
	struct val labels = v_list(c, 1);
	labels.u.l->v[0] = v_cstr(c, d->label);
	r[cl->yields[0].slot] = name;
	r[cl->yields[1].slot] =
	    v_cstr(c, show_c ? ckinds[d->kind] : kinds[d->kind]);
	r[cl->yields[2].slot] = v_cstr(
	    c, d->entity == LORA__ENTITY_KIND__ENTITY_EDGE ? "RELATIONSHIP"
	                                                   : "NODE");
	r[cl->yields[3].slot] = labels;
	r[cl->yields[4].slot] = pl;
	if (show_c) {
		r[cl->yields[5].slot] = uniq ? name : v_null();
		r[cl->yields[6].slot] = d->property_type && d->property_type[0]
		                            ? v_cstr(c, d->property_type)
		                            : v_null();
	} else {
		/* a vector index's graph may still be built in the
		 * background (storage/hnsw_store.c): POPULATING, and how far */
		int pop = 0, rv = 0;
		double pct = 100.0;
		if (d->kind == LORA__INDEX_KIND__INDEX_VECTOR && g_view(c))
			rv = sto_view_index_progress(c->view, d->name, &pop,
			                             &pct);
		if (rv)
			qerr_sto(c, rv, "index build progress");
		r[cl->yields[5].slot] =
		    v_cstr(c, pop ? "POPULATING" : "ONLINE");
		r[cl->yields[6].slot] = v_float(pct);
		r[cl->yields[7].slot] = uniq ? name : v_null();
	}
	rows_push(c, out, r);
}

static void show_indexes(struct qctx *c, struct clause *cl, struct rows *out)
{
	Lora__CreateIndex **defs = NULL;
	size_t n = 0;
	if (g_view(c)) {
		int rv = sto_view_indexes(c->view, &defs, &n);
		if (rv)
			qerr_sto(c, rv, "index catalogue");
	}
	/* copied into the statement first: building rows can raise */
	Lora__CreateIndex *copy = ar_alloc(c, sizeof(*copy) * (n + 1));
	for (size_t i = 0; i < n; i++) {
		copy[i] = *defs[i];
		copy[i].name = ar_strdup(c, defs[i]->name);
		copy[i].label = ar_strdup(c, defs[i]->label);
		copy[i].property_type =
		    defs[i]->property_type
		        ? ar_strdup(c, defs[i]->property_type)
		        : NULL;
		copy[i].properties =
		    ar_alloc(c, sizeof(char *) * (defs[i]->n_properties + 1));
		for (size_t k = 0; k < defs[i]->n_properties; k++)
			copy[i].properties[k] =
			    ar_strdup(c, defs[i]->properties[k]);
	}
	size_t ndefs = n;
	sto_indexes_free(defs, n);
	for (size_t i = 0; i < ndefs; i++)
		show_row(c, cl, out, &copy[i]);
}

void exec_ddl(struct qctx *c, struct clause *cl, struct rows *out)
{
	struct ddl *d = cl->ddl;
	if (d->kind == DDL_SHOW_INDEXES) {
		show_indexes(c, cl, out);
		return;
	}
	if (d->kind == DDL_DROP_INDEX) {
		Lora__Mutation *m = ar_alloc(c, sizeof(*m));
		lora__mutation__init(m);
		Lora__DropIndex *di = ar_alloc(c, sizeof(*di));
		lora__drop_index__init(di);
		di->name = (char *)d->name;
		di->if_exists = d->if_exists;
		m->op_case = LORA__MUTATION__OP_DROP_INDEX;
		m->drop_index = di;
		g_emit(c, m);
		return;
	}
	g_emit(c, ddl_create(c, d));
}

/* Whether live node o has label `lab` and values of keys[0..nk) equal to
 * g's (all present). */
static int same_key(struct qctx *c, struct gnode *g, struct gnode *o,
                    const char *lab, char *const *keys, size_t nk)
{
	if (!o || o->deleted || !g_has_label(o, lab))
		return 0;
	for (size_t k = 0; k < nk; k++) {
		struct val *v = g_node_prop(c, g, keys[k]);
		struct val *ov = g_node_prop(c, o, keys[k]);
		if (!v || !ov || v_eq(c, *ov, *v) != 1)
			return 0;
	}
	return 1;
}

/* Written node g against uniqueness or node key constraint d: no other
 * live node of the label with the same value(s). */
static void unique_one(struct qctx *c, const Lora__CreateIndex *d,
                       struct gnode *g)
{
	if (!g || g->deleted || !g_has_label(g, d->label))
		return;
	for (size_t k = 0; k < d->n_properties; k++)
		if (!g_node_prop(c, g, d->properties[k]))
			return; /* a missing one: check_constraints says so */
	struct val *v = g_node_prop(c, g, d->properties[0]);
	struct idvec ids;
	int joined = 0;
	if (d->kind == LORA__INDEX_KIND__INDEX_NODE_KEY &&
	    d->n_properties > 1) { /* the whole key: a common first value
		                    * costs what the rarest value costs */
		struct val *vs = ar_alloc(c, sizeof(*vs) * d->n_properties);
		for (size_t k = 0; k < d->n_properties; k++)
			vs[k] = *g_node_prop(c, g, d->properties[k]);
		joined = g_index_join(c, d->label,
		                      (const char *const *)d->properties, vs,
		                      d->n_properties, &ids);
	}
	if (!joined &&
	    !g_index_seek(c, d->label, d->properties[0], v, 1, v, 1, &ids))
		return;
	for (size_t j = 0; j < ids.n; j++) {
		struct gnode *o =
		    ids.v[j] == g->id ? NULL : g_node(c, ids.v[j]);
		if (!same_key(c, g, o, d->label, d->properties,
		              d->n_properties))
			continue;
		if (d->kind == LORA__INDEX_KIND__INDEX_NODE_KEY)
			qerr(c, LORA_ECONSTRAINT,
			     "ConstraintValidationFailed: node %llu already "
			     "has the same values of the node key %s as node "
			     "%llu",
			     (unsigned long long)o->id, d->name,
			     (unsigned long long)g->id);
		qerr(c, LORA_ECONSTRAINT,
		     "ConstraintValidationFailed: node %llu already has %s.%s "
		     "equal to this value (constraint %s)",
		     (unsigned long long)o->id, d->label, d->properties[0],
		     d->name);
	}
}

/* Copies the catalogue's definitions of the given kinds (kinds[0..2),
 * -1 for none) into the statement arena: raising longjmps, and the
 * catalogue may be replaced meanwhile. */
static Lora__CreateIndex *defs_copy(struct qctx *c, int k1, int k2, int k3,
                                    size_t *nout)
{
	Lora__CreateIndex *const *defs = NULL;
	size_t n = 0;
	*nout = 0;
	if (sto_view_catalogue(c->view, &defs, &n))
		return NULL;
	Lora__CreateIndex *out = ar_alloc(c, sizeof(*out) * (n + 1));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int kind = (int)defs[i]->kind;
		if (defs[i]->entity != LORA__ENTITY_KIND__ENTITY_NODE ||
		    (kind != k1 && kind != k2 && kind != k3))
			continue;
		out[k] = *defs[i];
		out[k].name = ar_strdup(c, defs[i]->name);
		out[k].label = ar_strdup(c, defs[i]->label);
		out[k].property_type = ar_strdup(
		    c, defs[i]->property_type ? defs[i]->property_type : "");
		out[k].properties =
		    ar_alloc(c, sizeof(char *) * (defs[i]->n_properties + 1));
		for (size_t p = 0; p < defs[i]->n_properties; p++)
			out[k].properties[p] =
			    ar_strdup(c, defs[i]->properties[p]);
		k++;
	}
	*nout = k;
	return out;
}

/* Unique and node key constraints: every written node carrying a
 * constrained label and the properties must be the only live node with
 * those values. One index seek per written node and constraint (a node
 * key of several properties: a join of their entries; else the first
 * property), each costing its matches (stored, and in the overlay index of
 * graph.c), so the check is linear in the writes. */
void check_unique(struct qctx *c)
{
	if (!c->g.written.n || !c->view)
		return;
	size_t k;
	Lora__CreateIndex *u =
	    defs_copy(c, LORA__INDEX_KIND__INDEX_UNIQUE,
	              LORA__INDEX_KIND__INDEX_NODE_KEY, -1, &k);
	/* each written node once: `written` has an entry per write */
	struct idvec w = {0};
	for (size_t i = 0; k && i < c->g.written.n; i++)
		idv_push(c, &w, c->g.written.v[i]);
	idv_sort_unique(&w);
	for (size_t i = 0; i < k; i++)
		for (size_t j = 0; j < w.n; j++)
			unique_one(c, &u[i], g_node(c, w.v[j]));
}

/* Node key d: written node g (labelled) has every property. A vector
 * value counts as missing, as on apply (storage/apply_constraint.c,
 * check_node_key): a vector has no index encoding, so the combination
 * could not be kept unique. */
static void key_exists(struct qctx *c, struct gnode *g,
                       const Lora__CreateIndex *d)
{
	for (size_t k = 0; k < d->n_properties; k++) {
		struct val *v = g_node_prop(c, g, d->properties[k]);
		if (!v || v->t == V_NULL || v->t == V_VECTOR)
			qerr(c, LORA_ECONSTRAINT,
			     "ConstraintValidationFailed: node %llu with "
			     "label %s must have the property %s (node key "
			     "%s)",
			     (unsigned long long)g->id, d->label,
			     d->properties[k], d->name);
	}
}

/* Existence, property type and node key (existence part) constraints over the
 * statement's written nodes, judged by their final state, so the statement
 * fails before any entry is proposed (apply checks the same,
 * storage/apply_constraint.c). */
void check_constraints(struct qctx *c)
{
	if (!c->g.written.n || !c->view)
		return;
	size_t k;
	Lora__CreateIndex *cons = defs_copy(
	    c, LORA__INDEX_KIND__INDEX_EXISTS, LORA__INDEX_KIND__INDEX_TYPE,
	    LORA__INDEX_KIND__INDEX_NODE_KEY, &k);
	for (size_t i = 0; k && i < c->g.written.n; i++) {
		struct gnode *g = g_node(c, c->g.written.v[i]);
		for (size_t u = 0; g && !g->deleted && u < k; u++) {
			const Lora__CreateIndex *d = &cons[u];
			if (!g_has_label(g, d->label))
				continue;
			if (d->kind == LORA__INDEX_KIND__INDEX_NODE_KEY) {
				key_exists(c, g, d);
				continue;
			}
			struct val *v = g_node_prop(c, g, d->properties[0]);
			int has = v && v->t != V_NULL;
			if (d->kind == LORA__INDEX_KIND__INDEX_EXISTS && !has)
				qerr(c, LORA_ECONSTRAINT,
				     "ConstraintValidationFailed: node %llu "
				     "with label %s must have the property %s "
				     "(constraint %s)",
				     (unsigned long long)g->id, d->label,
				     d->properties[0], d->name);
			if (d->kind != LORA__INDEX_KIND__INDEX_TYPE || !has ||
			    v->t == V_VECTOR)
				continue;
			const char *t = sto_value_type(val_to_pb(c, *v));
			if (!t || strcmp(t, d->property_type))
				qerr(c, LORA_ECONSTRAINT,
				     "ConstraintValidationFailed: node %llu "
				     "with label %s must have %s of type %s, "
				     "it has %s (constraint %s)",
				     (unsigned long long)g->id, d->label,
				     d->properties[0], d->property_type,
				     t ? t : "another type", d->name);
		}
	}
}
