/*
 * fuzz_apply.c - fuzz target for sto_apply (storage/apply.c): batches of
 * mutations applied to a real store, checked against a model.
 *
 * Each input starts from an empty graph: the previous input's nodes are
 * detach-deleted and its indexes dropped, through sto_apply too; then,
 * every FZ_STORE_APPLIES_MAX entries, the emptied store is compacted, and
 * every FZ_STORE_REPLACE_MAX entries replaced by a new one (fuzz_store.h
 * says why, README.md what state survives between inputs). The first
 * byte picks the mode:
 *   - even: the rest is a sequence of small batches over 8 node ids, 8
 *     edge ids, 3 labels, 2 types and 3 keys, built from the bytes and
 *     applied to the store and to a model of the graph (fuzz_apply below
 *     says how each mutation fails). After each batch: the store accepted
 *     it exactly when the model did, and the nodes and edges the batch
 *     named or changed (their labels, properties, endpoints and the
 *     degrees of the nodes), and all label and type counts, equal the
 *     model's (so a refused batch left no trace on what it named). After
 *     the last batch every node, edge and degree is compared, so a batch
 *     that touched what it did not name is caught at the input's end
 *     (unless a later batch of the input overwrote it). Comparing only
 *     what a batch may have touched made the target about N times faster
 *     (README.md, Speed).
 *   - odd: the rest is a MutationBatch in protobuf bytes, checked and
 *     decoded as a node decodes log entries (lora_pb_check at
 *     LORA_VALUE_DEPTH_MAX) and applied: any answer but a crash or a store
 *     that cannot be emptied afterwards is fine, and a refused batch
 *     changes no digest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_store.h"
#include "lora_pb.h"

#define M_NODES     8
#define M_EDGES     8
#define M_LABELS    3
#define M_TYPES     2
#define M_KEYS      3
#define M_VALUES    6
#define M_BATCH_MAX 8 /* mutations per batch */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *labels[M_LABELS] = {"A", "B", "C"};
static const char *types[M_TYPES] = {"T", "U"};
static const char *keys[M_KEYS] = {"k", "m", "name"};

/* The model: a property is a value index + 1 (0: absent). */
struct m_node {
	int live, labels[M_LABELS];
	uint16_t props[M_KEYS]; /* PROP() */
};
struct m_edge {
	int live, type, from, to; /* ids 1..M_NODES */
	uint16_t props[M_KEYS];   /* PROP() */
};
struct model {
	struct m_node n[M_NODES + 1];
	struct m_edge e[M_EDGES + 1];
};

struct input {
	const uint8_t *p, *end;
};

static uint8_t next(struct input *in)
{
	return in->p < in->end ? *in->p++ : 0;
}

/* Values by index: 0 null, then int, string, float, bool, list. */
static void value_make(int i, uint8_t b, Lora__Value *v, Lora__ValueList *l,
                       Lora__Value *items, Lora__Value **itemp, char *s)
{
	lora__value__init(v);
	switch (i) {
	case 0:
		v->kind_case = LORA__VALUE__KIND_NULL_VALUE;
		v->null_value = 1;
		break;
	case 1:
		v->kind_case = LORA__VALUE__KIND_INT_VALUE;
		v->int_value = (int8_t)b;
		break;
	case 2:
		snprintf(s, 8, "s%u", b % 4u);
		v->kind_case = LORA__VALUE__KIND_STRING_VALUE;
		v->string_value = s;
		break;
	case 3:
		v->kind_case = LORA__VALUE__KIND_FLOAT_VALUE;
		v->float_value = b / 2.0;
		break;
	case 4:
		v->kind_case = LORA__VALUE__KIND_BOOL_VALUE;
		v->bool_value = b & 1;
		break;
	default:
		lora__value_list__init(l);
		for (int k = 0; k < 2; k++) {
			lora__value__init(&items[k]);
			items[k].kind_case = LORA__VALUE__KIND_INT_VALUE;
			items[k].int_value = b + k;
			itemp[k] = &items[k];
		}
		l->items = itemp;
		l->n_items = 2;
		v->kind_case = LORA__VALUE__KIND_LIST_VALUE;
		v->list_value = l;
		break;
	}
}

/* What a model property byte stands for: (value index, byte). */
#define PROP(vi, b) ((uint16_t)(1 + (vi)*64 + (b) % 64))

/* The entities to compare: [id] set for node or edge id (1-based). */
struct dirty {
	uint8_t n[M_NODES + 1], e[M_EDGES + 1];
};

/* Room for the protobuf structs of one batch. */
struct arena {
	Lora__MutationBatch b;
	Lora__Mutation *mp[M_BATCH_MAX], m[M_BATCH_MAX];
	Lora__CreateNode cn[M_BATCH_MAX];
	Lora__DeleteNode dn[M_BATCH_MAX];
	Lora__SetProperty sp[M_BATCH_MAX];
	Lora__RemoveProperty rp[M_BATCH_MAX];
	Lora__AddLabel al[M_BATCH_MAX];
	Lora__RemoveLabel rl[M_BATCH_MAX];
	Lora__CreateEdge ce[M_BATCH_MAX];
	Lora__DeleteEdge de[M_BATCH_MAX];
	char *lab[M_BATCH_MAX][M_LABELS];
	Lora__Property pr[M_BATCH_MAX], *prp[M_BATCH_MAX];
	Lora__Value v[M_BATCH_MAX], items[M_BATCH_MAX][2],
	    *itemp[M_BATCH_MAX][2];
	Lora__ValueList l[M_BATCH_MAX];
	char s[M_BATCH_MAX][8];
	struct dirty named; /* the ids the mutations named */
};

/* Value i of the arena from (value index, byte); the model's byte. */
static Lora__Value *arena_value(struct arena *a, int i, int vi, uint8_t b)
{
	b %= 64;
	value_make(vi, b, &a->v[i], &a->l[i], a->items[i], a->itemp[i],
	           a->s[i]);
	return &a->v[i];
}

static int has_edges(const struct model *m, int id)
{
	for (int e = 1; e <= M_EDGES; e++)
		if (m->e[e].live && (m->e[e].from == id || m->e[e].to == id))
			return 1;
	return 0;
}

/* Builds mutation i from the input and applies it to the model: 0, or -1
 * when the store must refuse the batch. */
static int mutation(struct arena *a, int i, struct input *in, struct model *m)
{
	Lora__Mutation *mu = &a->m[i];
	lora__mutation__init(mu);
	uint8_t op = next(in) % 8, x = next(in), y = next(in), z = next(in);
	int id = 1 + x % M_NODES, eid = 1 + y % M_EDGES, key = z % M_KEYS;
	int vi = (z / M_KEYS) % M_VALUES;
	/* what it names, whether it applies or not (a superset) */
	a->named.n[id] = a->named.n[1 + z % M_NODES] = 1;
	a->named.e[eid] = 1;
	struct m_node *n = &m->n[id];
	switch (op) {
	case 0: {
		Lora__CreateNode *c = &a->cn[i];
		lora__create_node__init(c);
		c->id = (uint64_t)id;
		for (int l = 0; l < M_LABELS; l++)
			if (y & (1 << l))
				a->lab[i][c->n_labels++] = (char *)labels[l];
		c->labels = a->lab[i];
		uint8_t b = next(in);
		if (y & 8) {
			lora__property__init(&a->pr[i]);
			a->pr[i].key = (char *)keys[key];
			a->pr[i].value = arena_value(a, i, vi, b);
			a->prp[i] = &a->pr[i];
			c->properties = &a->prp[i];
			c->n_properties = 1;
		}
		mu->op_case = LORA__MUTATION__OP_CREATE_NODE;
		mu->create_node = c;
		if (n->live)
			return -1;
		memset(n, 0, sizeof *n);
		n->live = 1;
		for (int l = 0; l < M_LABELS; l++)
			n->labels[l] = (y >> l) & 1;
		if ((y & 8) && vi)
			n->props[key] = PROP(vi, b);
		return 0;
	}
	case 1: {
		Lora__DeleteNode *d = &a->dn[i];
		lora__delete_node__init(d);
		d->id = (uint64_t)id;
		d->detach = y & 1;
		mu->op_case = LORA__MUTATION__OP_DELETE_NODE;
		mu->delete_node = d;
		if (!n->live || (!d->detach && has_edges(m, id)))
			return -1;
		for (int e = 1; e <= M_EDGES; e++)
			if (m->e[e].from == id || m->e[e].to == id)
				m->e[e].live = 0;
		n->live = 0;
		return 0;
	}
	case 2: {
		Lora__SetProperty *s = &a->sp[i];
		lora__set_property__init(s);
		int edge = x & 0x80;
		s->entity = edge ? LORA__ENTITY_KIND__ENTITY_EDGE
		                 : LORA__ENTITY_KIND__ENTITY_NODE;
		s->id = (uint64_t)(edge ? eid : id);
		s->key = (char *)keys[key];
		uint8_t b = next(in);
		s->value = arena_value(a, i, vi, b);
		mu->op_case = LORA__MUTATION__OP_SET_PROPERTY;
		mu->set_property = s;
		uint16_t *props = edge ? m->e[eid].props : n->props;
		if (!(edge ? m->e[eid].live : n->live))
			return -1;
		props[key] = vi ? PROP(vi, b) : 0;
		return 0;
	}
	case 3: {
		Lora__RemoveProperty *r = &a->rp[i];
		lora__remove_property__init(r);
		int edge = x & 0x80;
		r->entity = edge ? LORA__ENTITY_KIND__ENTITY_EDGE
		                 : LORA__ENTITY_KIND__ENTITY_NODE;
		r->id = (uint64_t)(edge ? eid : id);
		r->key = (char *)keys[key];
		mu->op_case = LORA__MUTATION__OP_REMOVE_PROPERTY;
		mu->remove_property = r;
		if (!(edge ? m->e[eid].live : n->live))
			return -1;
		(edge ? m->e[eid].props : n->props)[key] = 0;
		return 0;
	}
	case 4:
	case 5: {
		int l = y % M_LABELS;
		if (op == 4) {
			lora__add_label__init(&a->al[i]);
			a->al[i].node_id = (uint64_t)id;
			a->al[i].label = (char *)labels[l];
			mu->op_case = LORA__MUTATION__OP_ADD_LABEL;
			mu->add_label = &a->al[i];
		} else {
			lora__remove_label__init(&a->rl[i]);
			a->rl[i].node_id = (uint64_t)id;
			a->rl[i].label = (char *)labels[l];
			mu->op_case = LORA__MUTATION__OP_REMOVE_LABEL;
			mu->remove_label = &a->rl[i];
		}
		if (!n->live)
			return -1;
		n->labels[l] = op == 4;
		return 0;
	}
	case 6: {
		Lora__CreateEdge *c = &a->ce[i];
		lora__create_edge__init(c);
		int to = 1 + z % M_NODES;
		c->id = (uint64_t)eid;
		c->type = (char *)types[x / 64 % M_TYPES];
		c->from_id = (uint64_t)id;
		c->to_id = (uint64_t)to;
		mu->op_case = LORA__MUTATION__OP_CREATE_EDGE;
		mu->create_edge = c;
		struct m_edge *e = &m->e[eid];
		if (e->live || !n->live || !m->n[to].live)
			return -1;
		memset(e, 0, sizeof *e);
		e->live = 1;
		e->type = x / 64 % M_TYPES;
		e->from = id;
		e->to = to;
		return 0;
	}
	default: {
		lora__delete_edge__init(&a->de[i]);
		a->de[i].id = (uint64_t)eid;
		mu->op_case = LORA__MUTATION__OP_DELETE_EDGE;
		mu->delete_edge = &a->de[i];
		if (!m->e[eid].live)
			return -1;
		m->e[eid].live = 0;
		return 0;
	}
	}
}

/* ---- comparing the store with the model ---------------------------------- */

static void fail(const char *what, int id)
{
	fprintf(stderr, "fuzz_apply: %s (id %d)\n", what, id);
	abort();
}

/* The packed bytes of model property byte pb. */
static uint8_t *prop_bytes(uint16_t pb, size_t *len)
{
	Lora__Value v, items[2], *itemp[2];
	Lora__ValueList l;
	char s[8];
	value_make((pb - 1) / 64, (uint8_t)((pb - 1) % 64), &v, &l, items,
	           itemp, s);
	*len = lora__value__get_packed_size(&v);
	uint8_t *b = malloc(*len + 1);
	lora__value__pack(&v, b);
	return b;
}

static void props_equal(const uint16_t *props, Lora__MapEntry **es, size_t n,
                        int id)
{
	size_t want = 0;
	for (int k = 0; k < M_KEYS; k++)
		want += props[k] != 0;
	if (n != want)
		fail("property count", id);
	for (size_t i = 0; i < n; i++) {
		int k = 0;
		while (k < M_KEYS && strcmp(keys[k], es[i]->key))
			k++;
		if (k == M_KEYS || !props[k])
			fail("unexpected property", id);
		size_t len, glen = lora__value__get_packed_size(es[i]->value);
		uint8_t *b = prop_bytes(props[k], &len), *g = malloc(glen + 1);
		lora__value__pack(es[i]->value, g);
		if (len != glen || memcmp(b, g, len))
			fail("property value", id);
		free(b);
		free(g);
	}
}

static void node_equal(struct sto_view *v, const struct model *m, int id)
{
	Lora__NodeValue *nv = NULL;
	int rc = sto_view_node(v, (uint64_t)id, &nv);
	if (rc != (m->n[id].live ? 0 : LORA_ENOTFOUND))
		fail("node presence", id);
	if (rc)
		return;
	int want = 0;
	for (int l = 0; l < M_LABELS; l++)
		want += m->n[id].labels[l];
	if ((int)nv->n_labels != want)
		fail("label count", id);
	for (size_t i = 0; i < nv->n_labels; i++) {
		int l = 0;
		while (l < M_LABELS && strcmp(labels[l], nv->labels[i]))
			l++;
		if (l == M_LABELS || !m->n[id].labels[l])
			fail("unexpected label", id);
	}
	props_equal(m->n[id].props, nv->properties, nv->n_properties, id);
	lora__node_value__free_unpacked(nv, &lora_pb_allocator);
}

static void edge_equal(struct sto_view *v, const struct model *m, int id)
{
	Lora__RelValue *rv = NULL;
	const struct m_edge *e = &m->e[id];
	int rc = sto_view_edge(v, (uint64_t)id, &rv);
	if (rc != (e->live ? 0 : LORA_ENOTFOUND))
		fail("edge presence", id);
	if (rc)
		return;
	if (strcmp(rv->type, types[e->type]) ||
	    rv->start_id != (uint64_t)e->from || rv->end_id != (uint64_t)e->to)
		fail("edge type or ends", id);
	props_equal(e->props, rv->properties, rv->n_properties, id);
	lora__rel_value__free_unpacked(rv, &lora_pb_allocator);
}

static uint64_t degree(struct sto_view *v, int id)
{
	struct sto_iter *it = NULL;
	uint64_t n = 0;
	if (sto_view_scan_adjacent(v, (uint64_t)id, STO_BOTH, NULL, &it))
		fail("adjacency scan", id);
	struct sto_item item;
	int done = 0;
	while (sto_iter_next(it, &item, &done) == 0 && !done)
		n++;
	if (!done)
		fail("adjacency scan error", id);
	sto_iter_free(it);
	return n;
}

static void counts_equal(struct sto_view *v, const struct model *m)
{
	uint64_t c, want_all = 0;
	for (int l = 0; l < M_LABELS; l++) {
		uint64_t want = 0;
		for (int id = 1; id <= M_NODES; id++)
			want += m->n[id].live && m->n[id].labels[l];
		if (sto_view_count_nodes(v, labels[l], &c) || c != want)
			fail("label count", l);
	}
	for (int id = 1; id <= M_NODES; id++)
		want_all += m->n[id].live;
	if (sto_view_count_nodes(v, NULL, &c) || c != want_all)
		fail("node count", 0);
	want_all = 0;
	for (int t = 0; t < M_TYPES; t++) {
		uint64_t want = 0;
		for (int id = 1; id <= M_EDGES; id++)
			want += m->e[id].live && m->e[id].type == t;
		want_all += want;
		if (sto_view_count_edges(v, types[t], &c) || c != want)
			fail("type count", t);
	}
	if (sto_view_count_edges(v, NULL, &c) || c != want_all)
		fail("edge count", 0);
}

/* Compares the nodes (with their degrees) and edges marked in d, and
 * every label and type count. */
static void store_equal_some(const struct model *m, const struct dirty *d)
{
	struct sto_view *v;
	if (sto_view_open(fz_store(), &v))
		fail("view", 0);
	for (int id = 1; id <= M_NODES; id++) {
		if (!d->n[id])
			continue;
		node_equal(v, m, id);
		uint64_t want = 0;
		for (int e = 1; e <= M_EDGES; e++)
			want += m->e[e].live
			            ? (m->e[e].from == id) + (m->e[e].to == id)
			            : 0; /* a self-loop twice */
		if (m->n[id].live && degree(v, id) != want)
			fail("degree", id);
	}
	for (int id = 1; id <= M_EDGES; id++)
		if (d->e[id])
			edge_equal(v, m, id);
	counts_equal(v, m);
	sto_view_close(v);
}

/* Every node, edge, degree and count. */
static void store_equal(const struct model *m)
{
	struct dirty all;
	memset(&all, 1, sizeof all);
	store_equal_some(m, &all);
}

/*
 * What a batch may have changed, from the model before and after it and
 * the ids its mutations named (all of them, so that a refused batch, which
 * leaves the model as it was, is still checked for traces): those nodes
 * and edges, every edge whose model changed, and the endpoints (before
 * and after) of those edges, whose degrees follow them.
 */
static void batch_dirty(const struct model *before, const struct model *m,
                        const struct dirty *named, struct dirty *d)
{
	*d = *named;
	for (int id = 1; id <= M_NODES; id++)
		if (memcmp(&before->n[id], &m->n[id], sizeof m->n[id]))
			d->n[id] = 1;
	for (int id = 1; id <= M_EDGES; id++) {
		const struct m_edge *a = &before->e[id], *b = &m->e[id];
		if (memcmp(a, b, sizeof *a))
			d->e[id] = 1;
		if (!d->e[id])
			continue;
		if (a->live)
			d->n[a->from] = d->n[a->to] = 1;
		if (b->live)
			d->n[b->from] = d->n[b->to] = 1;
	}
}

/* ---- emptying the store between inputs ----------------------------------- */

static void store_empty(void)
{
	struct sto_view *v;
	struct sto_iter *it = NULL;
	if (sto_view_open(fz_store(), &v) || sto_view_scan_nodes(v, &it))
		fail("view", 0);
	size_t n = 0, cap = 0;
	Lora__Mutation *ms = NULL;
	Lora__DeleteNode *ds = NULL;
	struct sto_item item;
	int done = 0;
	while (sto_iter_next(it, &item, &done) == 0 && !done) {
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			ms = realloc(ms, cap * sizeof *ms);
			ds = realloc(ds, cap * sizeof *ds);
		}
		lora__delete_node__init(&ds[n]);
		ds[n].id = item.node_id;
		ds[n].detach = 1;
		n++;
	}
	if (!done)
		fail("node scan", 0);
	sto_iter_free(it);
	Lora__CreateIndex **defs = NULL;
	size_t nidx = 0;
	if (sto_view_indexes(v, &defs, &nidx))
		fail("index catalogue", 0);
	Lora__DropIndex *drops = calloc(nidx + 1, sizeof *drops);
	ms = realloc(ms, (n + nidx + 1) * sizeof *ms);
	for (size_t i = 0; i < nidx; i++) {
		lora__drop_index__init(&drops[i]);
		drops[i].name = defs[i]->name;
	}
	Lora__Mutation **mp = calloc(n + nidx + 1, sizeof *mp);
	for (size_t i = 0; i < n + nidx; i++) {
		lora__mutation__init(&ms[i]);
		if (i < n) {
			ms[i].op_case = LORA__MUTATION__OP_DELETE_NODE;
			ms[i].delete_node = &ds[i];
		} else {
			ms[i].op_case = LORA__MUTATION__OP_DROP_INDEX;
			ms[i].drop_index = &drops[i - n];
		}
		mp[i] = &ms[i];
	}
	Lora__MutationBatch b = LORA__MUTATION_BATCH__INIT;
	b.mutations = mp;
	b.n_mutations = n + nidx;
	char em[LORA_ERRMSG_BYTES];
	if (b.n_mutations && fz_apply(&b, em)) {
		fprintf(stderr, "emptying the store: %s\n", em);
		abort();
	}
	sto_indexes_free(defs, nidx);
	free(drops);
	free(mp);
	free(ms);
	free(ds);
	sto_view_close(v);
	struct model empty;
	memset(&empty, 0, sizeof empty);
	store_equal(&empty);
}

/* ---- the two modes --------------------------------------------------------
 */

static void modelled(struct input *in)
{
	static struct model m, before;
	memset(&m, 0, sizeof m);
	while (in->p < in->end) {
		/* one arena, cleared per batch (a calloc of its ~6 KB was
		 * ~2% of the CPU under ASan) */
		static struct arena arena;
		struct arena *a = &arena;
		memset(a, 0, sizeof *a);
		int n = 1 + next(in) % M_BATCH_MAX, refused = 0;
		before = m;
		for (int i = 0; i < n; i++) {
			refused |= mutation(a, i, in, &m) != 0;
			a->mp[i] = &a->m[i];
		}
		lora__mutation_batch__init(&a->b);
		a->b.mutations = a->mp;
		a->b.n_mutations = (size_t)n;
		char em[LORA_ERRMSG_BYTES] = "";
		int rc = fz_apply(&a->b, em);
		if (refused)
			m = before;
		if ((rc != 0) != refused) {
			fprintf(stderr, "sto_apply: %d %s, model: %s\n", rc, em,
			        refused ? "refuse" : "accept");
			abort();
		}
		struct dirty d;
		batch_dirty(&before, &m, &a->named, &d);
		store_equal_some(&m, &d);
	}
	store_equal(&m); /* and whatever no batch named or changed */
}

static void raw(const uint8_t *p, size_t len)
{
	if (lora_pb_check(LORA_PB_MUTATION_BATCH, len ? p : NULL, len,
	                  LORA_VALUE_DEPTH_MAX))
		return;
	Lora__MutationBatch *b =
	    lora__mutation_batch__unpack(&lora_pb_allocator, len, p);
	if (b == NULL)
		return;
	char d0[STO_DIGEST_HEX_BYTES], d1[STO_DIGEST_HEX_BYTES];
	char em[LORA_ERRMSG_BYTES] = "";
	if (sto_digest(fz_store(), d0, em))
		fail("digest", 0);
	int rc = fz_apply(b, em);
	if (rc == LORA_EIO || rc == LORA_EINTERNAL ||
	    sto_applied_index(fz_store()) != fz_index)
		fail("apply of a bad batch broke the store", rc);
	if (rc && (sto_digest(fz_store(), d1, em) || strcmp(d0, d1)))
		fail("a refused batch changed the graph", rc);
	lora__mutation_batch__free_unpacked(b, &lora_pb_allocator);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	store_empty();
	fz_store_recycle();
	struct input in = {data + 1, data + size};
	if (data[0] & 1)
		raw(data + 1, size - 1);
	else
		modelled(&in);
	return 0;
}
