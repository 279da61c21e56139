/* graph.c - the statement's view of the graph: the storage read view, with
 * pending batches and the statement's own writes laid over it, plus the
 * mutation batch those writes produce.
 *
 * Nodes and edges are loaded from the view on first use into hash maps
 * (struct gnode / gedge); every write changes the cached copy and records
 * a mutation. Scans and index seeks read storage and then correct for the
 * overlay: a node the statement (or a pending batch) created, relabelled,
 * deleted or wrote a property of is "touched"; storage results leave it
 * out, since its stored entries may be stale, and the overlay index adds
 * it back from its cached state.
 *
 * The overlay index keeps touched nodes by label and by (label, key,
 * value) for the keys a range or unique index covers, in the one hash
 * table below. Its lists only grow: a node is appended when it is touched,
 * gains a label or gets a new indexed value, and a lookup checks each
 * entry against the node's current state (dropping stale ones, and
 * duplicates by a per-lookup stamp). A lookup therefore costs the entries
 * under its key, not the number of writes in the statement; `ops` counts
 * them. Range and prefix seeks use an ordered list per (label, key)
 * instead (ov_order), sorted when a seek needs it. */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "qint.h"

/* g->ops of every statement released so far (g_ops_total) */
static _Atomic uint64_t ops_total;

uint64_t g_ops_total(void)
{
	return atomic_load(&ops_total);
}

/* stored-index seeks of every statement (g_index_seeks_total) */
static _Atomic uint64_t seeks_total;

uint64_t g_index_seeks_total(void)
{
	return atomic_load(&seeks_total);
}

/* node records read from the view by every statement (g_loads_total) */
static _Atomic uint64_t loads_total;

uint64_t g_loads_total(void)
{
	return atomic_load(&loads_total);
}

/* ---- hash map ---------------------------------------------------------- */

static uint64_t hkey(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k;
}

/* The first slot to probe for k. Ids are handed out in order and a
 * statement meets them in runs (a load creates ascending relationship
 * ids): 8 consecutive keys take 8 consecutive slots, one or two cache
 * lines, and the hash of the rest spreads the runs. */
static size_t hm_slot(uint64_t k, size_t m)
{
	return (size_t)(hkey(k >> 3) + (k & 7)) & m;
}

/* A slot holds key + 1 (0: empty), so UINT64_MAX is kept as UINT64_MAX
 * - 1: maps of hashes compare what they find (DISTINCT, groups), and no
 * id reaches either. */
static uint64_t hm_key(uint64_t k)
{
	return k == UINT64_MAX ? k - 1 : k;
}

void *hm_get(const struct hmap *h, uint64_t k)
{
	if (!h->cap)
		return NULL;
	k = hm_key(k);
	size_t m = h->cap - 1, i = hm_slot(k, m);
	for (const struct hslot *sl; (sl = &h->slots[i])->key; i = (i + 1) & m)
		if (sl->key == k + 1)
			return sl->val;
	return NULL;
}

static void hm_grow(struct qctx *c, struct hmap *h)
{
	size_t nc = h->cap ? h->cap * 2 : 64;
	struct hslot *old = h->slots;
	size_t oc = h->cap;
	mem_charge(c, nc * sizeof(struct hslot));
	h->slots = lora_calloc(nc, sizeof(struct hslot));
	if (!h->slots) {
		h->slots = old;
		mem_uncharge(c, nc * sizeof(struct hslot));
		qerr(c, LORA_ENOMEM, "out of memory");
	}
	mem_uncharge(c, oc * sizeof(struct hslot));
	h->cap = nc;
	h->n = 0;
	for (size_t i = 0; i < oc; i++)
		if (old[i].key)
			hm_put(c, h, old[i].key - 1, old[i].val);
	lora_free(old);
}

void hm_put(struct qctx *c, struct hmap *h, uint64_t k, void *v)
{
	k = hm_key(k);
	if ((h->n + 1) * 2 > h->cap)
		hm_grow(c, h);
	size_t m = h->cap - 1, i = hm_slot(k, m);
	struct hslot *sl;
	for (; (sl = &h->slots[i])->key; i = (i + 1) & m)
		if (sl->key == k + 1) {
			sl->val = v;
			return;
		}
	sl->key = k + 1;
	sl->val = v;
	h->n++;
}

void hm_drop(struct qctx *c, struct hmap *h)
{
	mem_uncharge(c, h->cap * sizeof(struct hslot));
	lora_free(h->slots);
	memset(h, 0, sizeof *h);
}

struct hmap *hm_scratch(struct qctx *c)
{
	if (c->nscratch == QRY_SCRATCH_MAPS_MAX)
		qerr(c, LORA_ELIMIT,
		     "more than %d shortest path searches nested in one "
		     "statement",
		     QRY_SCRATCH_MAPS_MAX);
	struct hmap *h = lora_calloc(1, sizeof *h);
	if (h == NULL)
		qerr(c, LORA_ENOMEM, "out of memory");
	c->scratch[c->nscratch++] = h;
	return h;
}

void hm_scratch_done(struct qctx *c, struct hmap *h)
{
	LORA_ASSERT(c->nscratch > 0 && c->scratch[c->nscratch - 1] == h);
	c->nscratch--;
	hm_drop(c, h);
	lora_free(h);
}

void hm_scratch_free_to(struct qctx *c, size_t keep)
{
	while (c->nscratch > keep)
		hm_scratch_done(c, c->scratch[c->nscratch - 1]);
}

static void hm_free(struct hmap *h)
{
	lora_free(h->slots);
	memset(h, 0, sizeof *h);
}

void idv_push(struct qctx *c, struct idvec *v, uint64_t x)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 16;
		uint64_t *n = ar_alloc(c, sizeof(uint64_t) * nc);
		if (v->n)
			memcpy(n, v->v, sizeof(uint64_t) * v->n);
		v->v = n;
		v->cap = nc;
	}
	v->v[v->n++] = x;
}

static int id_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void idv_sort_unique(struct idvec *v)
{
	if (v->n < 2)
		return;
	qsort(v->v, v->n, sizeof *v->v, id_cmp);
	size_t k = 1;
	for (size_t j = 1; j < v->n; j++)
		if (v->v[j] != v->v[k - 1])
			v->v[k++] = v->v[j];
	v->n = k;
}

/* ---- interned names ---------------------------------------------------- */

static const char *intern(struct qctx *c, const char *s)
{
	struct graph *g = &c->g;
	for (size_t i = 0; i < g->ninterned; i++)
		if (strcmp(g->interned[i], s) == 0)
			return g->interned[i];
	struct arena *was = ar_use(c, &c->g.ar);
	const char *d = ar_strdup(c, s);
	ar_use(c, was);
	if (g->ninterned < QRY_INTERN_MAX)
		g->interned[g->ninterned++] = d;
	return d;
}

/* intern for what does not enter the cache (g_node_read): once the
 * table is full, a copy in the current arena, so a streamed answer does
 * not grow the cache's arena per row */
static const char *intern_or_copy(struct qctx *c, const char *s)
{
	struct graph *g = &c->g;
	for (size_t i = 0; i < g->ninterned; i++)
		if (strcmp(g->interned[i], s) == 0)
			return g->interned[i];
	return g->ninterned < QRY_INTERN_MAX ? intern(c, s) : ar_strdup(c, s);
}

/* ---- loading ----------------------------------------------------------- */

void g_init(struct qctx *c)
{
	memset(&c->g, 0, sizeof c->g);
	if (c->view)
		sto_view_next_ids(c->view, &c->g.next_node, &c->g.next_edge);
}

int g_defer_pending(struct qctx *c, const Lora__MutationBatch *const *b,
                    size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < b[i]->n_mutations; k++) {
			int op = b[i]->mutations[k]->op_case;
			if (op == LORA__MUTATION__OP_CREATE_INDEX ||
			    op == LORA__MUTATION__OP_DROP_INDEX)
				return 0;
		}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < b[i]->n_mutations; k++) {
			const Lora__Mutation *m = b[i]->mutations[k];
			if (m->op_case == LORA__MUTATION__OP_CREATE_NODE &&
			    m->create_node->id >= c->g.next_node)
				c->g.next_node = m->create_node->id + 1;
			if (m->op_case == LORA__MUTATION__OP_CREATE_EDGE &&
			    m->create_edge->id >= c->g.next_edge)
				c->g.next_edge = m->create_edge->id + 1;
		}
	c->g.pending_deferred = 1;
	return 1;
}

void g_lay_pending(struct qctx *c, const Lora__MutationBatch *b)
{
	struct arena *was = ar_use(c, &c->g.ar);
	g_apply_pending(c, b);
	ar_use(c, was);
}

struct sto_view *g_view(struct qctx *c)
{
	if (c->g.pending_deferred && c->view) {
		c->g.need_pending = 1;
		qerr(c, LORA_EINTERNAL,
		     "statement reads the graph: run it "
		     "again over the pending writes");
	}
	return c->view;
}

static struct vmap *props_from_pb(struct qctx *c, Lora__MapEntry **e, size_t n)
{
	struct val m = v_map(c, n);
	for (size_t i = 0; i < n; i++)
		vmap_put(c, m.u.m, ar_strdup(c, e[i]->key),
		         val_from_pb(c, e[i]->value));
	return m.u.m;
}

static int sto_check(struct qctx *c, int rv, const char *what)
{
	if (rv && rv != LORA_ENOTFOUND)
		qerr_sto(c, rv, what);
	return rv;
}

static struct gnode *node_load(struct qctx *c, uint64_t id);

/* Loaded nodes and edges live in the cache's own arena (c->g.ar), never
 * in an operator's, which is reset as rows flow. */
struct gnode *g_node(struct qctx *c, uint64_t id)
{
	c->g.ops++;
	struct gnode *n = hm_get(&c->g.nodes, id);
	if (n)
		return n->deleted == 2 ? NULL : n;
	struct arena *was = ar_use(c, &c->g.ar);
	n = node_load(c, id);
	ar_use(c, was);
	return n;
}

/* Seen nodes are bits in pages of G_SEEN_PAGE_IDS ids (one cache line),
 * found by the page number and kept in the cache's arena: a load sees
 * the same few thousand pages in any order, where a map of single ids
 * missed the cache on almost every lookup. */
#define G_SEEN_PAGE_IDS 512

void g_seen(struct qctx *c, uint64_t id)
{
	uint64_t *p = hm_get(&c->g.seen, id / G_SEEN_PAGE_IDS);
	if (!p) {
		struct arena *was = ar_use(c, &c->g.ar);
		p = ar_alloc(c, G_SEEN_PAGE_IDS / 8);
		ar_use(c, was);
		hm_put(c, &c->g.seen, id / G_SEEN_PAGE_IDS, p);
	}
	p[id % G_SEEN_PAGE_IDS / 64] |= 1ull << (id % 64);
}

static int g_was_seen(const struct qctx *c, uint64_t id)
{
	const uint64_t *p = hm_get(&c->g.seen, id / G_SEEN_PAGE_IDS);
	return p && (p[id % G_SEEN_PAGE_IDS / 64] >> (id % 64)) & 1;
}

/* Whether an edge may end at node id: a live cached node, or an uncached
 * one an exact seek found in the view (g_seen), else one g_node loads. */
static int edge_end_ok(struct qctx *c, uint64_t id)
{
	struct gnode *n = hm_get(&c->g.nodes, id);
	if (!n && g_was_seen(c, id))
		return 1;
	n = g_node(c, id);
	return n && !n->deleted;
}

/* the node record a raise left in c->loading (a statement that goes on
 * after an error: a chunk under ON ERROR) */
void g_loading_free(struct qctx *c)
{
	if (c->loading)
		protobuf_c_message_free_unpacked(c->loading,
		                                 &lora_pb_allocator);
	c->loading = NULL;
}

/* The cache entry (or, with cached 0, a transient copy) of node id for
 * its record nv, in the current arena; frees nv, which c->loading holds
 * while it converts (the memory limit may raise) */
static struct gnode *gnode_of(struct qctx *c, uint64_t id, Lora__NodeValue *nv,
                              int cached)
{
	c->loading = &nv->base;
	struct gnode *n = ar_alloc(c, sizeof(*n));
	n->id = id;
	n->nlabels = n->caplabels = nv->n_labels;
	n->labels = ar_alloc(c, sizeof(char *) * (nv->n_labels + 1));
	for (size_t i = 0; i < nv->n_labels; i++)
		n->labels[i] = cached ? intern(c, nv->labels[i])
		                      : intern_or_copy(c, nv->labels[i]);
	n->props = props_from_pb(c, nv->properties, nv->n_properties);
	g_loading_free(c);
	return n;
}

static struct gnode *node_load(struct qctx *c, uint64_t id)
{
	g_loading_free(c);
	Lora__NodeValue *nv = NULL;
	uint32_t nvec = 0;
	struct sto_view *view = g_view(c);
	if (view)
		c->g.loads++;
	int rv = view
	             ? sto_check(c,
	                         sto_view_node_ex(view, id, STO_NODE_NO_VECTORS,
	                                          &nv, &nvec),
	                         "node")
	             : LORA_ENOTFOUND;
	if (rv) { /* remembered as missing */
		struct gnode *n = ar_alloc(c, sizeof(*n));
		n->id = id;
		n->deleted = 2;
		hm_put(c, &c->g.nodes, id, n);
		return NULL;
	}
	struct gnode *n = gnode_of(c, id, nv, 1);
	n->vec_pending = nvec > 0;
	hm_put(c, &c->g.nodes, id, n);
	return n;
}

/* Whether what a read looks at may still enter the graph cache: while
 * the cache (its arena and its two maps) holds less than
 * QRY_READ_CACHE_BYTES and an eighth of the statement's memory limit.
 * Past that, a node or relationship the statement has not touched is
 * read into the current arena and dropped with it (g_node_read,
 * g_edge_read), so a read that walks the whole graph holds what its rows
 * and operators hold, not the graph. A write (c->eager: a write
 * statement, a chunk of IN TRANSACTIONS) and what runs with c->keep_all
 * (PROFILE outside its MATCH steps) keep everything they read: their
 * arenas are not reset per row, and a load checks the same nodes again
 * and again. The outer part of IN TRANSACTIONS keeps nothing: every
 * chunk gives the cache back (g_reset) under the rows it holds. */
int g_cache_room(struct qctx *c)
{
	if (g_outer_intx(c)) /* (also true in a chunk's tail checks) */
		return 0;
	if (c->keep_all || c->eager)
		return 1;
	uint64_t room = QRY_READ_CACHE_BYTES;
	if (c->lim.mem_bytes_max && c->lim.mem_bytes_max / 8 < room)
		room = c->lim.mem_bytes_max / 8;
	const struct graph *g = &c->g;
	uint64_t slots = (uint64_t)(g->nodes.cap + g->edges.cap + g->seen.cap +
	                            g->ov_label.cap + g->ov_value.cap +
	                            g->ov_order.cap + g->created_adj.cap);
	return g->ar.bytes + slots * sizeof(struct hslot) < room;
}

/* Node id as the view holds it, in the current arena and not in the
 * cache (n->transient), vector properties read on demand as g_node's.
 * Only for an id the cache lacks; NULL when the view lacks it. */
static struct gnode *node_transient(struct qctx *c, uint64_t id)
{
	struct sto_view *view = g_view(c);
	if (!view)
		return NULL;
	g_loading_free(c);
	Lora__NodeValue *nv = NULL;
	uint32_t nvec = 0;
	c->g.loads++;
	if (sto_check(
	        c, sto_view_node_ex(view, id, STO_NODE_NO_VECTORS, &nv, &nvec),
	        "node"))
		return NULL;
	struct gnode *n = gnode_of(c, id, nv, 0);
	n->vec_pending = nvec > 0;
	n->transient = 1;
	return n;
}

struct gnode *g_node_read(struct qctx *c, uint64_t id)
{
	if (hm_get(&c->g.nodes, id) || g_cache_room(c))
		return g_node(c, id);
	c->g.ops++;
	return node_transient(c, id);
}

int g_node_has_labels(struct qctx *c, uint64_t id, const char *const *labels,
                      size_t n)
{
	if (hm_get(&c->g.nodes, id) || g_cache_room(c))
		return -1;
	struct sto_view *view = g_view(c);
	if (!view)
		return 0;
	c->g.ops++;
	c->g.loads++;
	int has = 0;
	if (sto_check(c, sto_view_node_has_labels(view, id, labels, n, &has),
	              "node"))
		return 0;
	return has;
}

int g_node_fits(struct qctx *c, uint64_t id, const char *const *labels,
                size_t n, struct lexpr *lx, int live)
{
	if (!lx) {
		int has = g_node_has_labels(c, id, labels, n);
		if (has >= 0)
			return has;
	}
	/* only the answer leaves: a node read past the cache's room is
	 * given back at once (a search checks the same nodes again and
	 * again) */
	struct arena *a = c->cur;
	struct ar_mark mk = ar_mark(a);
	struct gnode *g = g_node_read(c, id);
	int ok = g && !(live && g->deleted);
	if (ok && lx)
		ok = lx_match(lx, g, NULL);
	for (size_t i = 0; ok && !lx && i < n; i++)
		ok = g_has_label(g, labels[i]);
	if (g && g->transient)
		ar_rewind(c, a, mk);
	return ok;
}

int g_node_exists(struct qctx *c, uint64_t id)
{
	if (hm_get(&c->g.nodes, id) || g_cache_room(c)) {
		struct gnode *n = g_node(c, id);
		return n && !n->deleted;
	}
	/* absent from the cache: as the view holds it, without decoding */
	c->g.ops++;
	int exists = 0;
	struct sto_view *view = g_view(c);
	if (view &&
	    sto_check(c, sto_view_node_exists(view, id, &exists), "node"))
		return 0;
	return exists;
}

/* Relationship id as the view holds it, in the current arena and not in
 * the cache, as node_transient; its properties only with props. NULL
 * when the view lacks it. */
static struct gedge *edge_transient(struct qctx *c, uint64_t id, int props)
{
	struct sto_view *view = g_view(c);
	if (!view)
		return NULL;
	g_loading_free(c);
	Lora__RelValue *rv = NULL;
	if (sto_check(c, sto_view_edge(view, id, &rv), "edge"))
		return NULL;
	c->loading = &rv->base; /* the conversion may raise (memory) */
	struct gedge *e = ar_alloc(c, sizeof(*e));
	e->id = id;
	e->type = intern_or_copy(c, rv->type);
	e->src = rv->start_id;
	e->dst = rv->end_id;
	e->transient = 1;
	if (props)
		e->props = props_from_pb(c, rv->properties, rv->n_properties);
	g_loading_free(c);
	return e;
}

/* A cached entry whose properties an expansion left unread is read
 * whole outside the cache too, unless the statement changed it. */
struct gedge *g_edge_read(struct qctx *c, uint64_t id)
{
	struct gedge *e = hm_get(&c->g.edges, id);
	if ((e && (e->props || e->created || e->deleted || e->touched)) ||
	    g_cache_room(c))
		return g_edge(c, id);
	return edge_transient(c, id, 1);
}

/* Adds the vector properties g_node left out, after the scalar ones (the
 * order sto_view_node gives), in the cache's arena or, for a transient
 * node, the current one. Every write to a node's properties loads them
 * first, so the cached map has not diverged from storage here. */
static void load_vectors(struct qctx *c, struct gnode *n)
{
	if (!n->vec_pending || !g_view(c))
		return;
	struct arena *was = ar_use(c, n->transient ? c->cur : &c->g.ar);
	Lora__NodeValue *nv = NULL;
	g_loading_free(c);
	int rv = sto_view_node(c->view, n->id, &nv);
	if (rv) {
		sto_check(c, rv, "node vectors");
		qerr(c, LORA_ECORRUPT, "storage: node %llu vanished from view",
		     (unsigned long long)n->id);
	}
	c->loading = &nv->base; /* the conversion may raise (memory) */
	for (size_t i = 0; i < nv->n_properties; i++) {
		Lora__MapEntry *e = nv->properties[i];
		if (e->value->kind_case != LORA__VALUE__KIND_VECTOR_VALUE ||
		    vmap_get(n->props, e->key))
			continue;
		vmap_put(c, n->props, ar_strdup(c, e->key),
		         val_from_pb(c, e->value));
	}
	g_loading_free(c);
	n->vec_pending = 0;
	ar_use(c, was);
}

/* A cached node's properties with its vectors once the cache has no room
 * left (g_cache_room): a copy in the current arena, the entry left as it
 * was, so an answer of nodes the statement cached earlier does not add
 * their vectors to the cache. */
static struct vmap *props_with_vectors(struct qctx *c, struct gnode *n)
{
	size_t k = n->props ? n->props->n : 0;
	struct val m = v_map(c, k);
	for (size_t i = 0; i < k; i++)
		vmap_put(c, m.u.m, n->props->k[i], n->props->v[i]);
	struct gnode t = *n;
	t.props = m.u.m;
	t.transient = 1;
	load_vectors(c, &t);
	return t.props;
}

struct vmap *g_node_props(struct qctx *c, struct gnode *n)
{
	if (n->vec_pending && !n->transient && !g_cache_room(c))
		return props_with_vectors(c, n);
	load_vectors(c, n);
	return n->props;
}

/* Vector property key of a cached node whose vectors are not loaded,
 * past the cache's room: that one property, in the current arena (NULL
 * when absent). The node's properties were not written (vec_pending),
 * so the view holds them as the statement sees them. */
static struct val *vector_prop(struct qctx *c, struct gnode *n, const char *key)
{
	if (!g_view(c))
		return NULL;
	Lora__Value *pv = NULL;
	int rv = sto_view_node_prop(c->view, n->id, key, &pv);
	if (rv && rv != LORA_ENOTFOUND)
		qerr_sto(c, rv, "storage: node property");
	if (!pv)
		return NULL;
	struct val *p = ar_alloc(c, sizeof(*p));
	/* stored values passed the depth check when applied: the
	 * conversion cannot raise and leak pv */
	*p = val_from_pb(c, pv);
	lora__value__free_unpacked(pv, &lora_pb_allocator);
	return p;
}

struct val *g_node_prop(struct qctx *c, struct gnode *n, const char *key)
{
	struct val *p = n->props ? vmap_get(n->props, key) : NULL;
	if (p || !n->vec_pending)
		return p;
	if (!n->transient && !g_cache_room(c))
		return vector_prop(c, n, key);
	load_vectors(c, n);
	return vmap_get(n->props, key);
}

static struct gedge *edge_load(struct qctx *c, uint64_t id, struct gedge *e);

struct gedge *g_edge(struct qctx *c, uint64_t id)
{
	struct gedge *e = hm_get(&c->g.edges, id);
	if (e && (e->props || e->created))
		return e;
	struct arena *was = ar_use(c, &c->g.ar);
	e = edge_load(c, id, e);
	ar_use(c, was);
	return e;
}

static struct gedge *edge_load(struct qctx *c, uint64_t id, struct gedge *e)
{
	g_loading_free(c);
	Lora__RelValue *rv = NULL;
	int r = g_view(c)
	            ? sto_check(c, sto_view_edge(c->view, id, &rv), "edge")
	            : LORA_ENOTFOUND;
	if (r) {
		if (e)
			return e;
		return NULL;
	}
	c->loading = &rv->base; /* the conversion may raise (memory) */
	if (!e) {
		e = ar_alloc(c, sizeof(*e));
		e->id = id;
		e->type = intern(c, rv->type);
		e->src = rv->start_id;
		e->dst = rv->end_id;
		hm_put(c, &c->g.edges, id, e);
	}
	e->props = props_from_pb(c, rv->properties, rv->n_properties);
	g_loading_free(c);
	return e;
}

struct gedge *g_edge_shallow(struct qctx *c, uint64_t id)
{
	struct gedge *e = hm_get(&c->g.edges, id);
	if (e || g_cache_room(c))
		return e ? e : g_edge(c, id);
	return edge_transient(c, id, 0);
}

int g_has_label(struct gnode *n, const char *l)
{
	for (size_t i = 0; i < n->nlabels; i++)
		if (strcmp(n->labels[i], l) == 0)
			return 1;
	return 0;
}

int lx_match(struct lexpr *x, struct gnode *n, const char *type)
{
	switch (x->op) {
	case LX_LABEL:
		return n ? g_has_label(n, x->label) : !strcmp(type, x->label);
	case LX_ANY:
		return n ? n->nlabels > 0 : 1;
	case LX_NOT:
		return !lx_match(x->a, n, type);
	case LX_AND:
		return lx_match(x->a, n, type) && lx_match(x->b, n, type);
	default:
		return lx_match(x->a, n, type) || lx_match(x->b, n, type);
	}
}

/* ---- overlay index ---------------------------------------------------- */

static uint64_t label_key(const char *label)
{
	return lora_hash32(label, strlen(label));
}

static uint64_t value_key(const char *label, const char *key, struct val v)
{
	uint64_t lk = (uint64_t)lora_hash32(label, strlen(label)) << 32 |
	              lora_hash32(key, strlen(key));
	return v_hash(v) ^ (lk * 0x9e3779b97f4a7c15ull);
}

static void ov_push(struct qctx *c, struct hmap *h, uint64_t k, uint64_t id)
{
	struct idvec *v = hm_get(h, k);
	if (!v) {
		v = ar_alloc(c, sizeof(*v));
		hm_put(c, h, k, v);
	}
	if (!v->n || v->v[v->n - 1] != id)
		idv_push(c, v, id);
}

/* the range and unique index catalogue, read once per statement
 * (deferred pending batches never change it) */
static void idx_load(struct qctx *c)
{
	struct graph *g = &c->g;
	if (g->idx_loaded || !c->view)
		return;
	Lora__CreateIndex *const *defs = NULL;
	size_t n = 0;
	g->idx_loaded = 1;
	if (sto_view_catalogue(c->view, &defs, &n))
		return;
	struct arena *was = ar_use(c, &c->g.ar);
	size_t keys = 1;
	for (size_t i = 0; i < n; i++)
		keys += defs[i]->n_properties;
	g->idx_label = ar_alloc(c, sizeof(char *) * keys);
	g->idx_key = ar_alloc(c, sizeof(char *) * keys);
	g->ridx_type = ar_alloc(c, sizeof(char *) * keys);
	g->ridx_key = ar_alloc(c, sizeof(char *) * keys);
	g->tidx_label = ar_alloc(c, sizeof(char *) * keys);
	g->tidx_key = ar_alloc(c, sizeof(char *) * keys);
	/* a (label, key) per property: a composite index has entries for
	 * each of its properties */
	for (size_t i = 0; i < n; i++) {
		if (defs[i]->kind == LORA__INDEX_KIND__INDEX_TEXT &&
		    defs[i]->n_properties == 1) {
			g->tidx_label[g->ntidx] = ar_strdup(c, defs[i]->label);
			g->tidx_key[g->ntidx++] =
			    ar_strdup(c, defs[i]->properties[0]);
			continue;
		}
		if (!sto_index_has_entries(defs[i]))
			continue; /* vectors, constraints without entries */
		int rel = defs[i]->entity == LORA__ENTITY_KIND__ENTITY_EDGE;
		const char **l = rel ? g->ridx_type : g->idx_label;
		const char **kk = rel ? g->ridx_key : g->idx_key;
		size_t *nn = rel ? &g->nridx : &g->nidx;
		for (size_t k = 0; k < defs[i]->n_properties; k++) {
			l[*nn] = ar_strdup(c, defs[i]->label);
			kk[*nn] = ar_strdup(c, defs[i]->properties[k]);
			(*nn)++;
		}
	}
	ar_use(c, was);
}

/*
 * The touched nodes of one (label, indexed key) in the order of their
 * values, for range and prefix seeks. Built by the pair's first such
 * seek from the label's overlay list; from then on a write appends the
 * node's id, and a seek sorts what was appended (by the node's value at
 * that time) and merges it in (write statements drain each clause before
 * the next, so a load sorts once per clause), then finds its bounds by
 * binary search. Entries may be stale, as the other lists': ov_entry and
 * the caller's filter check the node's current state.
 */
struct ov_ent {
	const uint8_t *k; /* sorted: the value's index bytes (sto_index_key) */
	uint32_t len;
	uint64_t id;
};
struct ov_order {
	const char *label, *key;
	int mixed; /* another pair has the same hash: seeks scan instead */
	struct ov_ent *e;
	size_t n, cap, sorted; /* e[0, sorted) in order */
};

static uint64_t order_hash(const char *label, const char *key)
{
	return (uint64_t)lora_hash32(label, strlen(label)) << 32 |
	       lora_hash32(key, strlen(key));
}

static void ov_order_push(struct qctx *c, struct ov_order *o, uint64_t id)
{
	if (o->n && o->e[o->n - 1].id == id && o->sorted < o->n)
		return; /* appended already */
	if (o->n == o->cap) {
		size_t nc = o->cap ? o->cap * 2 : 16;
		struct ov_ent *ne = ar_alloc(c, sizeof(*ne) * nc);
		if (o->n)
			memcpy(ne, o->e, sizeof(*ne) * o->n);
		o->e = ne;
		o->cap = nc;
	}
	o->e[o->n].id = id;
	o->e[o->n].k = NULL;
	o->n++;
}

/* node id's (label, key) value changed or it gained label: appended to
 * the pair's order list, if a seek built one */
static void ov_order_add(struct qctx *c, const char *label, const char *key,
                         uint64_t id)
{
	struct graph *g = &c->g;
	if (!g->ov_order.n)
		return;
	struct ov_order *o = hm_get(&g->ov_order, order_hash(label, key));
	if (!o || o->mixed || strcmp(o->label, label) || strcmp(o->key, key))
		return;
	struct arena *was = ar_use(c, &g->ar);
	ov_order_push(c, o, id);
	ar_use(c, was);
}

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);
	return r ? r : (alen > blen) - (alen < blen);
}

static int ent_cmp(const void *x, const void *y)
{
	const struct ov_ent *a = x, *b = y;
	int r = key_cmp(a->k, a->len, b->k, b->len);
	return r ? r : (a->id > b->id) - (a->id < b->id);
}

/* v's index bytes in the current arena; 0 when no index holds it */
static int index_key(struct qctx *c, struct val v, const uint8_t **k,
                     uint32_t *len)
{
	struct lora_buf b = {0};
	struct arena *a = c->cur;
	struct ar_mark mk = ar_mark(a);
	int rv = sto_index_key(&b, val_to_pb(c, v));
	ar_rewind(c, a, mk); /* the value's protobuf form */
	if (!rv) {
		uint8_t *d = ar_alloc_nz(c, b.len ? b.len : 1);
		memcpy(d, b.data, b.len);
		*k = d;
		*len = (uint32_t)b.len;
	}
	lora_buf_free(&b);
	return !rv;
}

/* Puts o's appended ids in order, each by its node's current value (one
 * gone, or whose value no index holds, is dropped), and merges them into
 * the sorted part: the keys live in the cache's arena, as o does (a
 * seek runs in a MATCH step's scratch arena). */
static void ov_order_sort(struct qctx *c, struct ov_order *o)
{
	if (o->sorted == o->n)
		return;
	struct arena *was = ar_use(c, &c->g.ar);
	size_t w = o->sorted;
	for (size_t i = o->sorted; i < o->n; i++) {
		struct gnode *n = hm_get(&c->g.nodes, o->e[i].id);
		struct val *v = n && !n->deleted && n->props
		                    ? vmap_get(n->props, o->key)
		                    : NULL;
		if (v && index_key(c, *v, &o->e[i].k, &o->e[i].len))
			o->e[w++] = o->e[i];
	}
	ar_use(c, was);
	size_t s = o->sorted, t = w - s;
	o->n = w;
	qsort(o->e + s, t, sizeof(*o->e), ent_cmp);
	if (s && t) { /* merge from the back, the new run in a copy */
		struct ov_ent *run = lora_malloc(sizeof(*run) * t);
		if (!run)
			qerr(c, LORA_EMEMORY, "out of memory");
		memcpy(run, o->e + s, sizeof(*run) * t);
		size_t a = s, b = t, d = s + t;
		while (b) {
			if (a && ent_cmp(&o->e[a - 1], &run[b - 1]) > 0)
				o->e[--d] = o->e[--a];
			else
				o->e[--d] = run[--b];
		}
		lora_free(run);
	}
	o->sorted = o->n;
}

/* the pair's order list, built by its first seek from the touched nodes
 * with label (their ids; ov_order_sort reads their values) */
static struct ov_order *ov_order_get(struct qctx *c, const char *label,
                                     const char *key)
{
	struct graph *g = &c->g;
	uint64_t h = order_hash(label, key);
	struct ov_order *o = hm_get(&g->ov_order, h);
	if (o)
		return o->mixed || strcmp(o->label, label) ||
		               strcmp(o->key, key)
		           ? NULL
		           : o;
	struct arena *was = ar_use(c, &g->ar);
	o = ar_alloc(c, sizeof(*o));
	o->label = ar_strdup(c, label);
	o->key = ar_strdup(c, key);
	hm_put(c, &g->ov_order, h, o);
	const struct idvec *l = hm_get(&g->ov_label, label_key(label));
	for (size_t i = 0; l && i < l->n; i++)
		ov_order_push(c, o, l->v[i]);
	ar_use(c, was);
	return o;
}

/* n now carries `label`: list it there, with its indexed values */
static void ov_add_label(struct qctx *c, struct gnode *n, const char *label)
{
	struct graph *g = &c->g;
	ov_push(c, &g->ov_label, label_key(label), n->id);
	idx_load(c);
	for (size_t i = 0; i < g->nidx; i++) {
		if (strcmp(g->idx_label[i], label))
			continue;
		struct val *v =
		    n->props ? vmap_get(n->props, g->idx_key[i]) : NULL;
		if (v && v->t != V_NULL) {
			ov_push(c, &g->ov_value,
			        value_key(label, g->idx_key[i], *v), n->id);
			ov_order_add(c, label, g->idx_key[i], n->id);
		}
	}
}

/* n's property `key` is now v (not null) */
static void ov_add_value(struct qctx *c, struct gnode *n, const char *key,
                         struct val v)
{
	struct graph *g = &c->g;
	idx_load(c);
	for (size_t i = 0; i < g->nidx; i++) {
		if (strcmp(g->idx_key[i], key))
			continue;
		for (size_t l = 0; l < n->nlabels; l++)
			if (!strcmp(g->idx_label[i], n->labels[l])) {
				ov_push(c, &g->ov_value,
				        value_key(n->labels[l], key, v), n->id);
				ov_order_add(c, n->labels[l], g->idx_key[i],
				             n->id);
			}
	}
}

/* from now on n is read from the overlay, not from storage scans */
static void touch(struct qctx *c, struct gnode *n)
{
	if (n->touched)
		return;
	n->touched = 1;
	idv_push(c, &c->g.touched_nodes, n->id);
	for (size_t l = 0; l < n->nlabels; l++)
		ov_add_label(c, n, n->labels[l]);
}

/* a new lookup's stamp; on wrap-around every node forgets its last one */
static uint32_t ov_stamp(struct graph *g)
{
	if (++g->stamp == 0) {
		for (size_t i = 0; i < g->nodes.cap; i++) {
			struct gnode *n = hm_at(&g->nodes, i);
			if (n)
				n->seen = 0;
		}
		g->stamp = 1;
	}
	return g->stamp;
}

/* the live touched node behind an overlay entry, once per lookup */
static struct gnode *ov_entry(struct qctx *c, uint64_t id, uint32_t stamp,
                              const char *label)
{
	c->g.ops++;
	struct gnode *n = hm_get(&c->g.nodes, id);
	if (!n || n->deleted || !n->touched || n->seen == stamp ||
	    (label && !g_has_label(n, label)))
		return NULL;
	n->seen = stamp;
	return n;
}

/* touched nodes with label (NULL: all) that have property key (NULL:
 * any) */
static void ov_scan(struct qctx *c, const char *label, const char *key,
                    struct idvec *out)
{
	struct graph *g = &c->g;
	const struct idvec *l =
	    label ? hm_get(&g->ov_label, label_key(label)) : &g->touched_nodes;
	uint32_t stamp = ov_stamp(g);
	for (size_t i = 0; l && i < l->n; i++) {
		struct gnode *n = ov_entry(c, l->v[i], stamp, label);
		if (n && (!key || (n->props && vmap_get(n->props, key))))
			idv_push(c, out, n->id);
	}
}

/* the first entry of o not below key k */
static size_t ov_lower(const struct ov_order *o, const uint8_t *k, size_t len)
{
	size_t lo = 0, hi = o->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (key_cmp(o->e[mid].k, o->e[mid].len, k, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Touched nodes with label whose key may lie between lo and hi (either
 * may be NULL: unbounded, within the other's type): a superset, as the
 * caller filters by the bounds. */
static void ov_seek_range(struct qctx *c, const char *label, const char *key,
                          const struct val *lo, const struct val *hi,
                          struct idvec *out)
{
	struct graph *g = &c->g;
	if (!hm_get(&g->ov_label, label_key(label)))
		return; /* the statement touched no node with the label */
	const uint8_t *kl = NULL, *kh = NULL;
	uint32_t nl = 0, nh = 0;
	struct ov_order *o = ov_order_get(c, label, key);
	if (!o || (lo && !index_key(c, *lo, &kl, &nl)) ||
	    (hi && !index_key(c, *hi, &kh, &nh)) || (!lo && !hi)) {
		ov_scan(c, label, key, out);
		return;
	}
	c->g.ops++;
	ov_order_sort(c, o);
	uint8_t cls = kl ? kl[0] : kh[0];
	size_t i = kl ? ov_lower(o, kl, nl) : ov_lower(o, &cls, 1);
	uint32_t stamp = ov_stamp(g);
	for (; i < o->n; i++) {
		const struct ov_ent *x = &o->e[i];
		if (kh ? key_cmp(x->k, x->len, kh, nh) > 0 : x->k[0] != cls)
			break;
		struct gnode *n = ov_entry(c, x->id, stamp, label);
		if (n && n->props && vmap_get(n->props, key))
			idv_push(c, out, n->id);
	}
}

/* touched nodes with label whose property key equals v; vk is
 * value_key(label, key, v), or 0 to compute it here */
static void ov_seek_eq(struct qctx *c, const char *label, const char *key,
                       struct val v, uint64_t vk, struct idvec *out)
{
	struct graph *g = &c->g;
	if (!g->ov_value.n) /* the statement changed no indexed value */
		return;
	const struct idvec *l =
	    hm_get(&g->ov_value, vk ? vk : value_key(label, key, v));
	uint32_t stamp = ov_stamp(g);
	for (size_t i = 0; l && i < l->n; i++) {
		struct gnode *n = ov_entry(c, l->v[i], stamp, label);
		struct val *p = n && n->props ? vmap_get(n->props, key) : NULL;
		if (p && v_eq(c, *p, v) == 1)
			idv_push(c, out, n->id);
	}
}

/* ---- scans ------------------------------------------------------------- */

/* stored node id unless the statement touched or deleted it (the
 * overlay answers for those) */
static void push_stored(struct qctx *c, struct idvec *out, uint64_t id)
{
	c->g.ops++;
	struct gnode *n = hm_get(&c->g.nodes, id);
	if (!n || (!n->touched && !n->deleted))
		idv_push(c, out, id);
}

/* the nodes of it into out (push_stored) and, when raw is not NULL,
 * every id it gives into raw */
static void drain_raw(struct qctx *c, struct sto_iter *it, struct idvec *out,
                      struct idvec *raw)
{
	struct sto_item item;
	int done = 0, rv;
	c->iter = it; /* freed by the cursor if a push raises */
	while ((rv = sto_iter_next(it, &item, &done)) == 0 && !done) {
		if (raw)
			idv_push(c, raw, item.node_id);
		push_stored(c, out, item.node_id);
	}
	c->iter = NULL;
	sto_iter_free(it);
	if (rv)
		qerr_sto(c, rv, "storage scan");
}

static void drain_nodes(struct qctx *c, struct sto_iter *it, struct idvec *out)
{
	drain_raw(c, it, out, NULL);
}

void g_scan(struct qctx *c, const char *label, struct idvec *out)
{
	memset(out, 0, sizeof *out);
	if (g_view(c)) {
		struct sto_iter *it = NULL;
		int rv = label ? sto_view_scan_label(c->view, label, &it)
		               : sto_view_scan_nodes(c->view, &it);
		if (rv)
			qerr_sto(c, rv, "storage scan");
		drain_nodes(c, it, out);
	}
	ov_scan(c, label, NULL, out);
}

/*
 * A label scan handed out one id at a time. When most nodes carry the
 * label (or there is none), it walks the nodes themselves with the view's
 * scan cursor (sto_view_next_node), so a property of the node just handed
 * out is read from the record that cursor is on (prop_of) instead of by a
 * second pass; and it holds no id list. A sparse label is read from the label
 * index whole, as g_scan does. Then the statement's touched nodes, as g_scan.
 * The set is g_scan's, in g_scan's order. Only for stepping a read (a
 * write statement drains every clause before the next one writes).
 */
struct gscan {
	const char *label;
	int stream;       /* walking the nodes, not done */
	uint64_t from;    /* next id to look at */
	struct idvec ids; /* sparse: the label index; then the overlay's */
	size_t at;
};

/* at least this share (1/N) of the nodes: walk the nodes */
#define GSCAN_DENSE_DIV 2

struct gscan *g_scan_open(struct qctx *c, const char *label)
{
	struct gscan *s = ar_alloc(c, sizeof(*s));
	memset(s, 0, sizeof *s);
	s->label = label;
	uint64_t nl = 0, na = 0;
	struct sto_view *v = g_view(c);
	/* CALL { } IN TRANSACTIONS moves the statement to a new view after
	 * each chunk: a streamed scan would go on over the nodes its own
	 * chunks created, and never end. The id list is fixed at open. */
	if (v && !c->intx &&
	    (!label || (!sto_view_count_nodes(v, label, &nl) &&
	                !sto_view_count_nodes(v, NULL, &na) &&
	                nl * GSCAN_DENSE_DIV >= na))) {
		s->stream = 1;
		ov_scan(c, label, NULL, &s->ids); /* handed out after */
		return s;
	}
	g_scan(c, label, &s->ids);
	return s;
}

int g_scan_next(struct qctx *c, struct gscan *s, uint64_t *id)
{
	while (s->stream) {
		int rv = sto_view_next_node(g_view(c), s->label, s->from, id);
		if (rv == LORA_ENOTFOUND) {
			s->stream = 0;
			break;
		}
		if (rv)
			qerr_sto(c, rv, "storage scan");
		c->g.ops++;
		s->from = *id + 1;
		s->stream = *id != UINT64_MAX; /* else no next id to ask for */
		struct gnode *n = hm_get(&c->g.nodes, *id);
		if (n && (n->touched || n->deleted))
			continue;
		return 1;
	}
	if (s->at >= s->ids.n)
		return 0;
	*id = s->ids.v[s->at++];
	return 1;
}

/* ---- seek cache ----------------------------------------------------------
 * A load by IN TRANSACTIONS looks the same keys up again and again (the
 * ends of relationships), each a skip-list search in RocksDB's memtable.
 * The stored answer of an equality seek for an integer or string value is
 * kept (before the statement's own writes are laid over it, as they are
 * on every use) while the view it came from stays valid: within a chunk,
 * and over a chunk commit that only created relationships, which change
 * no node's labels or properties. Anything else applied drops it. */

struct sc_entry {
	struct sc_entry *next; /* same hash */
	/* copies, after the value's bytes: a label may come from a view's
	 * catalogue, which a chunk commit closes */
	const char *label, *key;
	uint8_t t; /* V_INT or V_STR */
	int64_t i;
	size_t slen, n;
	uint64_t ids[]; /* n, then the string's slen bytes, label, key */
};

static int sc_same(const struct sc_entry *e, const char *label, const char *key,
                   struct val v)
{
	if (e->t != v.t || strcmp(e->label, label) || strcmp(e->key, key))
		return 0;
	if (v.t == V_INT)
		return e->i == v.u.i;
	return e->slen == v.u.s->len &&
	       !memcmp(e->ids + e->n, v.u.s->s, e->slen);
}

void g_seek_cache_free(struct qctx *c)
{
	struct hmap *h = &c->sc_map;
	for (size_t i = 0; i < h->cap; i++)
		for (struct sc_entry *e = hm_at(h, i), *nx; e; e = nx) {
			nx = e->next;
			lora_free(e);
		}
	hm_drop(c, h);
	mem_uncharge(c, c->sc_bytes);
	c->sc_bytes = 0;
}

/* the entry for (label, key, v) valid in c->view, or NULL; vk is
 * value_key(label, key, v), the cache's key */
static const struct sc_entry *sc_get(struct qctx *c, const char *label,
                                     const char *key, struct val v, uint64_t vk)
{
	uint64_t a = sto_view_applied_index(c->view);
	if (a != c->sc_applied) {
		g_seek_cache_free(c);
		c->sc_applied = a;
	}
	const struct sc_entry *e = hm_get(&c->sc_map, vk);
	while (e && !sc_same(e, label, key, v))
		e = e->next;
	return e;
}

/* whether the cache may take n more bytes: with its table it stays within
 * QRY_SEEK_CACHE_BYTES_MAX and an eighth of the statement's limit and of
 * the shared budget, and the statement and the budget keep at least half
 * free after it (the cache is an aid: it never takes more than that
 * eighth from what the statement could use without it) */
static int sc_room(struct qctx *c, size_t n)
{
	uint64_t total =
	    (uint64_t)c->sc_bytes + n + c->sc_map.cap * sizeof(struct hslot);
	if (total > QRY_SEEK_CACHE_BYTES_MAX)
		return 0;
	uint64_t m = c->lim.mem_bytes_max;
	if (m && (total > m / 8 || c->mem_bytes + n > m / 2))
		return 0;
	struct qry_budget *b = c->lim.shared;
	uint64_t u = b ? atomic_load(&b->used_bytes) : 0;
	return !b || !b->max_bytes ||
	       (total <= b->max_bytes / 8 && u + n <= b->max_bytes / 2);
}

/* keeps ids as the stored answer for (label, key, v) in c->view */
static void sc_put(struct qctx *c, const char *label, const char *key,
                   struct val v, uint64_t vk, const struct idvec *ids)
{
	size_t slen = v.t == V_STR ? v.u.s->len : 0, ll = strlen(label) + 1,
	       kl = strlen(key) + 1;
	size_t need = sizeof(struct sc_entry) + ids->n * sizeof(uint64_t) +
	              slen + ll + kl,
	       grow = (c->sc_map.n + 1) * 2 > c->sc_map.cap
	                  ? (c->sc_map.cap ? c->sc_map.cap : 64) *
	                        sizeof(struct hslot)
	                  : 0;
	if (!sc_room(c, need + grow))
		return;
	/* the table grows first (it may raise): nothing is left unowned */
	uint64_t h = vk;
	struct sc_entry *head = hm_get(&c->sc_map, h);
	hm_put(c, &c->sc_map, h, head);
	mem_charge(c, need);
	struct sc_entry *e = lora_malloc(need);
	if (!e) {
		mem_uncharge(c, need);
		return;
	}
	c->sc_bytes += need;
	if (c->sc_bytes > c->sc_peak)
		c->sc_peak = c->sc_bytes;
	char *text = (char *)(e->ids + ids->n) + slen;
	memcpy(text, label, ll);
	memcpy(text + ll, key, kl);
	*e = (struct sc_entry){.next = head,
	                       .label = text,
	                       .key = text + ll,
	                       .t = v.t,
	                       .i = v.t == V_INT ? v.u.i : 0,
	                       .slen = slen,
	                       .n = ids->n};
	if (ids->n)
		memcpy(e->ids, ids->v, ids->n * sizeof(uint64_t));
	if (slen)
		memcpy(e->ids + e->n, v.u.s->s, slen);
	hm_put(c, &c->sc_map, h, e);
}

void g_seek_cache_moved(struct qctx *c, const Lora__MutationBatch *const *bs,
                        const uint64_t *idx, size_t n, uint64_t before)
{
	uint64_t now = sto_view_applied_index(c->view);
	int keep = c->sc_applied == before && now == before + n;
	for (size_t k = 0; keep && k < n; k++) {
		keep = idx[k] == before + 1 + k;
		for (size_t i = 0; keep && i < bs[k]->n_mutations; i++)
			keep = bs[k]->mutations[i]->op_case ==
			       LORA__MUTATION__OP_CREATE_EDGE;
	}
	if (keep)
		c->sc_applied = now;
	else
		g_seek_cache_free(c);
}

int g_index_seek(struct qctx *c, const char *label, const char *key,
                 const struct val *lo, int lo_incl, const struct val *hi,
                 int hi_incl, struct idvec *out)
{
	memset(out, 0, sizeof *out);
	if (!g_view(c) || !g_has_index(c, label, key))
		return 0;
	int eq = lo && hi &&
	         (lo == hi || (lo_incl && hi_incl && v_eq(c, *lo, *hi) == 1));
	int cache = eq && c->intx && (lo->t == V_INT || lo->t == V_STR);
	/* the value's key, for the cache and the overlay (hashed once) */
	uint64_t vk = cache ? value_key(label, key, *lo) : 0;
	const struct sc_entry *e =
	    cache ? sc_get(c, label, key, *lo, vk) : NULL;
	if (e) {
		for (size_t i = 0; i < e->n; i++)
			push_stored(c, out, e->ids[i]);
		ov_seek_eq(c, label, key, *lo, vk, out);
		return 1;
	}
	struct sto_iter *it = NULL;
	int rv = sto_view_index_seek(
	    c->view, label, key, lo ? val_to_pb(c, *lo) : NULL, lo_incl,
	    hi ? val_to_pb(c, *hi) : NULL, hi_incl, &it);
	if (rv == LORA_ENOTFOUND)
		return 0;
	if (rv)
		qerr_sto(c, rv, "index seek");
	c->g.seeks++;
	struct idvec raw = {0};
	drain_raw(c, it, out, cache ? &raw : NULL);
	if (cache)
		sc_put(c, label, key, *lo, vk, &raw);
	if (eq)
		ov_seek_eq(c, label, key, *lo, vk, out);
	else /* a superset: the caller's filter applies the bounds */
		ov_seek_range(c, label, key, lo, hi, out);
	return 1;
}

int g_has_text_index(struct qctx *c, const char *label, const char *key)
{
	struct graph *g = &c->g;
	idx_load(c);
	for (size_t i = 0; i < g->ntidx; i++)
		if (!strcmp(g->tidx_label[i], label) &&
		    !strcmp(g->tidx_key[i], key))
			return 1;
	return 0;
}

int g_text_seek(struct qctx *c, const char *label, const char *key,
                const char *needle, size_t len, struct idvec *out)
{
	memset(out, 0, sizeof *out);
	if (!g_has_text_index(c, label, key) || !g_view(c))
		return 0;
	uint64_t *ids = NULL;
	size_t n = 0;
	/* the seek stops at the statement's deadline and at the memory it
	 * has left; the ids it returns are charged while they are held */
	uint64_t room = c->lim.mem_bytes_max > c->mem_bytes
	                    ? c->lim.mem_bytes_max - c->mem_bytes
	                    : c->lim.mem_bytes_max != 0;
	int rv = sto_view_text_seek(c->view, label, key, needle, len,
	                            c->deadline_ms, room, &ids, &n);
	if (rv == LORA_ENOTFOUND || rv == LORA_EINVAL)
		return 0;
	if (rv == LORA_ETIMEOUT)
		qerr(c, LORA_ETIMEOUT,
		     "query time limit of %llu ms exceeded (text index seek)",
		     (unsigned long long)c->lim.time_ms_max);
	if (rv == LORA_EMEMORY)
		qerr(c, LORA_EMEMORY,
		     "MemoryLimitExceeded: the statement needs more than its "
		     "memory limit of %llu bytes (text index seek)",
		     (unsigned long long)c->lim.mem_bytes_max);
	if (rv)
		qerr_sto(c, rv, "text index seek");
	/* ids is ours to free, also when a push raises (memory budget) */
	volatile size_t charged = 0;
	jmp_buf outer;
	memcpy(outer, c->jb, sizeof outer);
	int code = setjmp(c->jb);
	if (code) {
		memcpy(c->jb, outer, sizeof outer);
		lora_free(ids);
		mem_uncharge(c, charged);
		longjmp(c->jb, code);
	}
	mem_charge(c, n * sizeof(uint64_t));
	charged = n * sizeof(uint64_t);
	for (size_t i = 0; i < n; i++) { /* stored: skip what we touched */
		struct gnode *g = hm_get(&c->g.nodes, ids[i]);
		c->g.ops++;
		if (!g || (!g->touched && !g->deleted))
			idv_push(c, out, ids[i]);
	}
	memcpy(c->jb, outer, sizeof outer);
	lora_free(ids);
	mem_uncharge(c, charged);
	ov_scan(c, label, key, out);
	return 1;
}

int g_index_join(struct qctx *c, const char *label, const char *const *keys,
                 const struct val *vals, size_t n, struct idvec *out)
{
	memset(out, 0, sizeof *out);
	if (!g_view(c) || !n || n > STO_INDEX_JOIN_KEYS_MAX)
		return 0;
	const Lora__Value *pv[STO_INDEX_JOIN_KEYS_MAX];
	for (size_t k = 0; k < n; k++)
		pv[k] = val_to_pb(c, vals[k]);
	struct lora_buf ids = {0};
	int rv = sto_view_index_join(c->view, label, n, keys, pv, &ids);
	if (rv) {
		lora_buf_free(&ids);
		if (rv == LORA_ENOTFOUND)
			return 0;
		qerr_sto(c, rv, "index join");
	}
	/* ids is ours to free, also when a push raises (memory budget) */
	jmp_buf outer;
	memcpy(outer, c->jb, sizeof outer);
	int code = setjmp(c->jb);
	if (code) {
		memcpy(c->jb, outer, sizeof outer);
		lora_buf_free(&ids);
		longjmp(c->jb, code);
	}
	for (size_t off = 0; off + 8 <= ids.len; off += 8) {
		uint64_t id = lora_get_be64((const uint8_t *)ids.data + off);
		struct gnode *g = hm_get(&c->g.nodes, id);
		c->g.ops++;
		if (!g || (!g->touched && !g->deleted))
			idv_push(c, out, id);
	}
	memcpy(c->jb, outer, sizeof outer);
	lora_buf_free(&ids);
	ov_seek_eq(c, label, keys[0], vals[0], 0, out);
	return 1;
}

int g_has_rel_index(struct qctx *c, const char *type, const char *key)
{
	struct graph *g = &c->g;
	idx_load(c);
	for (size_t i = 0; i < g->nridx; i++)
		if (!strcmp(g->ridx_type[i], type) &&
		    !strcmp(g->ridx_key[i], key))
			return 1;
	return 0;
}

int g_rel_index_seek(struct qctx *c, const char *type, const char *key,
                     const struct val *lo, int lo_incl, const struct val *hi,
                     int hi_incl, struct idvec *out)
{
	memset(out, 0, sizeof *out);
	if (c->g.edges_written || !g_has_rel_index(c, type, key) || !g_view(c))
		return 0;
	struct sto_iter *it = NULL;
	int rv = sto_view_rel_index_seek(
	    c->view, type, key, lo ? val_to_pb(c, *lo) : NULL, lo_incl,
	    hi ? val_to_pb(c, *hi) : NULL, hi_incl, &it);
	if (rv == LORA_ENOTFOUND)
		return 0;
	if (rv)
		qerr_sto(c, rv, "relationship index seek");
	struct sto_item item;
	int done = 0;
	c->iter = it; /* freed by the cursor if a push raises */
	while ((rv = sto_iter_next(it, &item, &done)) == 0 && !done) {
		c->g.ops++;
		idv_push(c, out, item.edge_id);
	}
	c->iter = NULL;
	sto_iter_free(it);
	if (rv)
		qerr_sto(c, rv, "relationship index seek");
	return 1;
}

/* whether a range or unique index covers (label, key) */
int g_has_index(struct qctx *c, const char *label, const char *key)
{
	struct graph *g = &c->g;
	idx_load(c);
	for (size_t i = 0; i < g->nidx; i++)
		if (!strcmp(g->idx_label[i], label) &&
		    !strcmp(g->idx_key[i], key))
			return 1;
	return 0;
}

/* stored nodes with the label, plus the statement's touched ones (an
 * upper bound: the planner's estimate) */
uint64_t g_count_label(struct qctx *c, const char *label)
{
	uint64_t n = 0;
	if (g_view(c) && sto_view_count_nodes(c->view, label, &n))
		return UINT64_MAX;
	const struct idvec *l = hm_get(&c->g.ov_label, label_key(label));
	return l ? n + l->n : n;
}

static void push_adj(struct qctx *c, struct adj **v, size_t *n, size_t *cap,
                     uint64_t edge, uint64_t other, const char *type, int out)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct adj *a = ar_alloc(c, sizeof(struct adj) * nc);
		if (*n)
			memcpy(a, *v, sizeof(struct adj) * *n);
		*v = a;
		*cap = nc;
	}
	(*v)[*n].edge = edge;
	(*v)[*n].other = other;
	(*v)[*n].type = type;
	(*v)[*n].outgoing = out;
	(*n)++;
}

/* What an adjacency scan keeps between its entries: whether the cache
 * has room for their shallow edges (checked again every 1,024 entries: a
 * node of millions), and the type of the entry before (interned, or
 * copied into the current arena past the table's room). */
struct adj_scan {
	int room;
	size_t seen;
	const char *last;
};

static void adj_scan_init(struct qctx *c, struct adj_scan *s)
{
	s->room = g_cache_room(c);
	s->seen = 0;
	s->last = NULL;
}

/* Stored entry item of node's scan as an adjacency entry: 0 to skip it
 * (a self-loop's second sight, a relationship the statement deleted).
 * Past the cache's room, what the scan finds stays out of it: the entry
 * carries the type (rel_ok). item's type is borrowed: interned or copied
 * before the next entry. */
static int adj_from_item(struct qctx *c, struct adj_scan *s, uint64_t node,
                         int dir, const struct sto_item *item, struct adj *out)
{
	if (dir == STO_BOTH && !item->outgoing && item->other_id == node)
		return 0; /* self-loop: report once */
	struct gedge *e = hm_get(&c->g.edges, item->edge_id);
	if (e && e->deleted)
		return 0;
	if (s->room && ++s->seen % 1024 == 0)
		s->room = g_cache_room(c);
	const char *t;
	if (e) {
		t = e->type;
	} else if (!s->room) {
		if (!s->last || strcmp(s->last, item->type) != 0)
			s->last = intern_or_copy(c, item->type);
		t = s->last;
	} else {
		struct arena *was = ar_use(c, &c->g.ar);
		t = intern(c, item->type);
		e = ar_alloc(c, sizeof(*e));
		ar_use(c, was);
		e->id = item->edge_id;
		e->type = t;
		e->src = item->outgoing ? node : item->other_id;
		e->dst = item->outgoing ? item->other_id : node;
		hm_put(c, &c->g.edges, item->edge_id, e);
	}
	out->edge = item->edge_id;
	out->other = item->other_id;
	out->type = t;
	out->outgoing = item->outgoing;
	return 1;
}

/* The statement's own relationship eid of node as an adjacency entry: 0
 * when it is gone or does not fit type and dir. */
static int adj_from_created(struct qctx *c, uint64_t node, int dir,
                            const char *type, uint64_t eid, struct adj *out)
{
	c->g.ops++;
	struct gedge *e = hm_get(&c->g.edges, eid);
	if (!e || e->deleted || (type && strcmp(type, e->type) != 0))
		return 0;
	out->edge = e->id;
	out->type = e->type;
	if ((dir & D_OUT) && e->src == node) {
		out->other = e->dst;
		out->outgoing = 1;
		return 1;
	}
	if ((dir & D_IN) && e->dst == node) {
		out->other = e->src;
		out->outgoing = 0;
		return 1;
	}
	return 0;
}

static void adj_storage(struct qctx *c, uint64_t node, int dir,
                        const char *type, struct adj **out, size_t *n,
                        size_t *cap)
{
	struct sto_iter *it = NULL;
	int rv =
	    sto_view_scan_adjacent(c->view, node, (enum sto_dir)dir, type, &it);
	if (rv)
		qerr_sto(c, rv, "adjacency scan");
	struct sto_item item;
	int done = 0;
	struct adj_scan s;
	adj_scan_init(c, &s);
	c->iter = it; /* freed by the cursor if an allocation raises */
	while ((rv = sto_iter_next(it, &item, &done)) == 0 && !done) {
		struct adj a;
		if (adj_from_item(c, &s, node, dir, &item, &a))
			push_adj(c, out, n, cap, a.edge, a.other, a.type,
			         a.outgoing);
	}
	c->iter = NULL;
	sto_iter_free(it);
	if (rv)
		qerr_sto(c, rv, "adjacency scan");
}

static void link_pending(struct qctx *c);

void g_adjacent(struct qctx *c, uint64_t node, int dir, const char *type,
                struct adj **out, size_t *n)
{
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	struct gnode *gn = hm_get(&c->g.nodes, node);
	if (!(gn && gn->created) && g_view(c))
		adj_storage(c, node, dir, type, out, n, &cap);
	link_pending(c);
	c->g.ops++;
	struct idvec *created = hm_get(&c->g.created_adj, node);
	for (size_t i = 0; created && i < created->n; i++) {
		struct adj a;
		if (adj_from_created(c, node, dir, type, created->v[i], &a))
			push_adj(c, out, n, &cap, a.edge, a.other, a.type,
			         a.outgoing);
	}
}

/*
 * One node's relationships handed out a slice at a time, in g_adjacent's
 * order: the stored ones through a storage iterator kept open between
 * slices, then the statement's own. For the first expansion of a read's
 * MATCH (exec.c), so a node of millions of relationships holds one slice
 * of them and of the rows they make, not all. An open one is listed in
 * c->adjs, and the cursor closes it if the statement stops first.
 */
struct gadj {
	struct gadj *next, *prev;
	struct sto_iter *it; /* NULL once the stored ones are done */
	uint64_t node;
	int dir;
	const char *type;
	int own;   /* the statement's own are being handed out */
	size_t ci; /* the next of them */
};

struct gadj *g_adj_open(struct qctx *c, uint64_t node, int dir,
                        const char *type)
{
	struct gadj *a = lora_calloc(1, sizeof(*a));
	a->node = node;
	a->dir = dir;
	a->type = type;
	a->next = c->adjs;
	if (c->adjs)
		c->adjs->prev = a;
	c->adjs = a;
	struct gnode *gn = hm_get(&c->g.nodes, node);
	if (!(gn && gn->created) && g_view(c)) {
		int rv = sto_view_scan_adjacent(
		    c->view, node, (enum sto_dir)dir, type, &a->it);
		if (rv)
			qerr_sto(c, rv, "adjacency scan");
	}
	return a;
}

size_t g_adj_next(struct qctx *c, struct gadj *a, struct adj *out, size_t max)
{
	size_t n = 0;
	struct adj_scan s;
	adj_scan_init(c, &s);
	while (a->it && n < max) {
		struct sto_item item;
		int done = 0;
		int rv = sto_iter_next(a->it, &item, &done);
		if (rv)
			qerr_sto(c, rv, "adjacency scan");
		if (done) {
			sto_iter_free(a->it);
			a->it = NULL;
			break;
		}
		n += (size_t)adj_from_item(c, &s, a->node, a->dir, &item,
		                           &out[n]);
	}
	if (a->it || n == max)
		return n;
	if (!a->own) {
		link_pending(c);
		c->g.ops++;
		a->own = 1;
	}
	const struct idvec *created = hm_get(&c->g.created_adj, a->node);
	while (created && a->ci < created->n && n < max)
		n += (size_t)adj_from_created(c, a->node, a->dir, a->type,
		                              created->v[a->ci++], &out[n]);
	return n;
}

void g_adj_close(struct qctx *c, struct gadj *a)
{
	if (!a)
		return;
	if (a->it)
		sto_iter_free(a->it);
	if (a->prev)
		a->prev->next = a->next;
	else
		c->adjs = a->next;
	if (a->next)
		a->next->prev = a->prev;
	lora_free(a);
}

void g_adj_close_all(struct qctx *c)
{
	while (c->adjs)
		g_adj_close(c, c->adjs);
}

/* ---- writes ------------------------------------------------------------ */

void g_emit(struct qctx *c, Lora__Mutation *m)
{
	struct graph *g = &c->g;
	if (!g->recording)
		return;
	if (g->nmuts + g->ndels >= c->lim.mutations_max)
		qerr(c, LORA_ELIMIT, "statement makes more than %llu mutations",
		     (unsigned long long)c->lim.mutations_max);
	if (g->nmuts == g->capmuts) {
		size_t nc = g->capmuts ? g->capmuts * 2 : 16;
		Lora__Mutation **n = ar_alloc(c, sizeof(*n) * nc);
		if (g->nmuts)
			memcpy(n, g->muts, sizeof(*n) * g->nmuts);
		g->muts = n;
		g->capmuts = nc;
	}
	g->muts[g->nmuts++] = m;
	c->is_write = 1;
}

static Lora__Mutation *mut(struct qctx *c)
{
	Lora__Mutation *m = ar_alloc(c, sizeof(*m));
	lora__mutation__init(m);
	return m;
}

/* Whether the mutations this statement records carry old values. */
static int keep_old(struct qctx *c)
{
	return c->g.recording && c->lim.old_values;
}

static Lora__Property **props_pb(struct qctx *c, struct vmap *m, size_t *n)
{
	*n = 0;
	if (!m || !m->n)
		return NULL;
	Lora__Property **ps = ar_alloc(c, sizeof(*ps) * m->n);
	for (size_t i = 0; i < m->n; i++) {
		if (m->v[i].t == V_NULL)
			continue;
		Lora__Property *p = ar_alloc(c, sizeof(*p));
		lora__property__init(p);
		p->key = (char *)m->k[i];
		p->value = val_to_pb(c, m->v[i]);
		ps[(*n)++] = p;
	}
	return ps;
}

static void check_prop_value(struct qctx *c, struct val v)
{
	if (v.t == V_MAP || v.t == V_NODE || v.t == V_REL || v.t == V_PATH)
		qerr(c, LORA_ETYPE,
		     "InvalidPropertyType: a %s cannot be stored as a "
		     "property",
		     v_type_name(v));
	if (v.t == V_LIST)
		for (size_t i = 0; i < v.u.l->n; i++) {
			struct val x = v.u.l->v[i];
			if (x.t == V_LIST || x.t == V_MAP || x.t == V_NODE ||
			    x.t == V_REL || x.t == V_PATH)
				qerr(c, LORA_ETYPE,
				     "InvalidPropertyType: a list of %s cannot "
				     "be stored as a property",
				     v_type_name(x));
		}
}

static struct gnode *new_node(struct qctx *c, uint64_t id, const char **l,
                              size_t nl, struct vmap *props)
{
	struct gnode *n = ar_alloc(c, sizeof(*n));
	n->id = id;
	n->created = 1;
	n->caplabels = nl + 4;
	n->labels = ar_alloc(c, sizeof(char *) * n->caplabels);
	for (size_t i = 0; i < nl; i++)
		if (!g_has_label(n, l[i]))
			n->labels[n->nlabels++] = intern(c, l[i]);
	struct val m = v_map(c, props ? props->n : 0);
	for (size_t i = 0; props && i < props->n; i++)
		if (props->v[i].t != V_NULL) {
			check_prop_value(c, props->v[i]);
			vmap_put(c, m.u.m, props->k[i], props->v[i]);
		}
	n->props = m.u.m;
	hm_put(c, &c->g.nodes, id, n);
	touch(c, n);
	if (id >= c->g.next_node)
		c->g.next_node = id + 1;
	return n;
}

uint64_t g_create_node(struct qctx *c, const char **labels, size_t nl,
                       struct vmap *props)
{
	uint64_t id = c->g.next_node;
	struct gnode *n = new_node(c, id, labels, nl, props);
	idv_push(c, &c->g.written, id);
	Lora__Mutation *m = mut(c);
	Lora__CreateNode *cn = ar_alloc(c, sizeof(*cn));
	lora__create_node__init(cn);
	cn->id = id;
	cn->n_labels = n->nlabels;
	cn->labels = (char **)n->labels;
	cn->properties = props_pb(c, n->props, &cn->n_properties);
	m->op_case = LORA__MUTATION__OP_CREATE_NODE;
	m->create_node = cn;
	g_emit(c, m);
	return id;
}

static void link_created(struct qctx *c, uint64_t node, uint64_t edge)
{
	struct idvec *v = hm_get(&c->g.created_adj, node);
	if (!v) {
		v = ar_alloc(c, sizeof(*v));
		hm_put(c, &c->g.created_adj, node, v);
	}
	idv_push(c, v, edge);
}

/* Links the edges created since the last call to their ends in
 * created_adj, in creation order (the lists come out as eager linking
 * made them). Only g_adjacent reads created_adj: a statement that creates
 * relationships and never expands from their ends (a load) skips two hash
 * lookups and inserts per relationship, and so does laying a batch in
 * flight. */
static void link_pending(struct qctx *c)
{
	struct idvec *u = &c->g.unlinked;
	if (!u->n)
		return;
	/* the lists live as long as created_adj: in the graph's arena, or in
	 * the statement's current one under keep_all (c->keep, or a chunk's,
	 * released with the chunk's graph) */
	struct arena *was = ar_use(c, &c->g.ar);
	for (size_t i = 0; i < u->n; i++) {
		c->g.ops++;
		const struct gedge *e = hm_get(&c->g.edges, u->v[i]);
		LORA_ASSERT(e); /* an edge stays in edges once created */
		link_created(c, e->src, e->id);
		if (e->dst != e->src)
			link_created(c, e->dst, e->id);
	}
	/* a raise above (memory) ends the statement or, in a chunk under ON
	 * ERROR, its graph (intx_graph_reset): nothing links twice */
	u->n = 0;
	ar_use(c, was);
}

static struct gedge *new_edge(struct qctx *c, uint64_t id, const char *type,
                              uint64_t s, uint64_t d, struct vmap *props)
{
	struct gedge *e = ar_alloc(c, sizeof(*e));
	c->g.edges_written = 1;
	e->id = id;
	e->type = intern(c, type);
	e->src = s;
	e->dst = d;
	e->created = 1;
	struct val m = v_map(c, props ? props->n : 0);
	for (size_t i = 0; props && i < props->n; i++)
		if (props->v[i].t != V_NULL) {
			check_prop_value(c, props->v[i]);
			vmap_put(c, m.u.m, props->k[i], props->v[i]);
		}
	e->props = m.u.m;
	hm_put(c, &c->g.edges, id, e);
	idv_push(c, &c->g.unlinked, id);
	if (id >= c->g.next_edge)
		c->g.next_edge = id + 1;
	return e;
}

uint64_t g_create_edge(struct qctx *c, const char *type, uint64_t s, uint64_t d,
                       struct vmap *props)
{
	if (!edge_end_ok(c, s) || !edge_end_ok(c, d))
		qerr(c, LORA_ENOTFOUND,
		     "DeletedEntityAccess: cannot create a relationship to a "
		     "deleted node");
	uint64_t id = c->g.next_edge;
	struct gedge *e = new_edge(c, id, type, s, d, props);
	Lora__Mutation *m = mut(c);
	Lora__CreateEdge *ce = ar_alloc(c, sizeof(*ce));
	lora__create_edge__init(ce);
	ce->id = id;
	ce->type = (char *)e->type;
	ce->from_id = s;
	ce->to_id = d;
	ce->properties = props_pb(c, e->props, &ce->n_properties);
	m->op_case = LORA__MUTATION__OP_CREATE_EDGE;
	m->create_edge = ce;
	g_emit(c, m);
	return id;
}

void g_set_prop(struct qctx *c, int is_edge, uint64_t id, const char *k,
                struct val v)
{
	struct vmap *props;
	if (is_edge) {
		struct gedge *e = g_edge(c, id);
		if (!e || e->deleted)
			qerr(c, LORA_ENOTFOUND,
			     "DeletedEntityAccess: "
			     "relationship was deleted");
		if (!e->props)
			e->props = v_map(c, 4).u.m;
		props = e->props;
		e->touched = 1;
		c->g.edges_written = 1;
	} else {
		struct gnode *n = g_node(c, id);
		if (!n || n->deleted)
			qerr(c, LORA_ENOTFOUND,
			     "DeletedEntityAccess: node was deleted");
		/* the entry's own map, vectors in, whatever room the cache
		 * has (g_node_props may answer a copy): a pending batch is laid
		 * over the view outside any write statement */
		load_vectors(c, n);
		props = n->props;
	}
	check_prop_value(c, v);
	if (!is_edge)
		idv_push(c, &c->g.written, id);
	struct val *old = vmap_get(props, k);
	Lora__Value *old_pb =
	    keep_old(c) ? val_to_pb(c, old ? *old : v_null()) : NULL;
	if (v.t == V_NULL) {
		if (!old)
			return;
		/* remove key, keep order */
		size_t i = (size_t)(old - props->v);
		memmove(&props->k[i], &props->k[i + 1],
		        sizeof(char *) * (props->n - i - 1));
		memmove(&props->v[i], &props->v[i + 1],
		        sizeof(struct val) * (props->n - i - 1));
		props->n--;
	} else {
		vmap_put(c, props, ar_strdup(c, k), v);
	}
	if (!is_edge) {
		struct gnode *n = hm_get(&c->g.nodes, id);
		if (n->touched && v.t != V_NULL)
			ov_add_value(c, n, k, v);
		touch(c, n); /* its stored index entries are stale now */
	}
	Lora__Mutation *m = mut(c);
	Lora__SetProperty *sp = ar_alloc(c, sizeof(*sp));
	lora__set_property__init(sp);
	sp->entity = is_edge ? LORA__ENTITY_KIND__ENTITY_EDGE
	                     : LORA__ENTITY_KIND__ENTITY_NODE;
	sp->id = id;
	sp->key = ar_strdup(c, k);
	sp->value = val_to_pb(c, v);
	sp->old_value = old_pb;
	m->op_case = LORA__MUTATION__OP_SET_PROPERTY;
	m->set_property = sp;
	g_emit(c, m);
}

/* What a deleted node or relationship held, when the statement keeps old
 * values (else NULL). Arena-owned. */
static Lora__OldEntity *old_entity(struct qctx *c, struct gnode *n,
                                   struct gedge *e)
{
	if (!keep_old(c))
		return NULL;
	Lora__OldEntity *o = ar_alloc(c, sizeof(*o));
	lora__old_entity__init(o);
	if (n) {
		o->n_labels = n->nlabels;
		o->labels = (char **)n->labels;
		o->properties =
		    props_pb(c, g_node_props(c, n), &o->n_properties);
	} else {
		o->type = (char *)e->type;
		o->from_id = e->src;
		o->to_id = e->dst;
		o->properties = props_pb(c, e->props, &o->n_properties);
	}
	return o;
}

static struct gnode *live_node(struct qctx *c, uint64_t id)
{
	struct gnode *n = g_node(c, id);
	if (!n || n->deleted)
		qerr(c, LORA_ENOTFOUND,
		     "DeletedEntityAccess: node was deleted");
	return n;
}

void g_add_label(struct qctx *c, uint64_t id, const char *l)
{
	struct gnode *n = live_node(c, id);
	if (g_has_label(n, l))
		return;
	if (n->nlabels == n->caplabels) {
		size_t nc = n->caplabels * 2 + 4;
		const char **nl = ar_alloc(c, sizeof(char *) * nc);
		if (n->nlabels)
			memcpy(nl, n->labels, sizeof(char *) * n->nlabels);
		n->labels = nl;
		n->caplabels = nc;
	}
	n->labels[n->nlabels++] = intern(c, l);
	if (n->touched)
		ov_add_label(c, n, n->labels[n->nlabels - 1]);
	touch(c, n);
	idv_push(c, &c->g.written, id); /* unique constraints may now apply */
	Lora__Mutation *m = mut(c);
	Lora__AddLabel *a = ar_alloc(c, sizeof(*a));
	lora__add_label__init(a);
	a->node_id = id;
	a->label = (char *)intern(c, l);
	m->op_case = LORA__MUTATION__OP_ADD_LABEL;
	m->add_label = a;
	g_emit(c, m);
}

void g_remove_label(struct qctx *c, uint64_t id, const char *l)
{
	struct gnode *n = live_node(c, id);
	size_t i;
	for (i = 0; i < n->nlabels; i++)
		if (strcmp(n->labels[i], l) == 0)
			break;
	if (i == n->nlabels)
		return;
	memmove(&n->labels[i], &n->labels[i + 1],
	        sizeof(char *) * (n->nlabels - i - 1));
	n->nlabels--;
	touch(c, n);
	Lora__Mutation *m = mut(c);
	Lora__RemoveLabel *a = ar_alloc(c, sizeof(*a));
	lora__remove_label__init(a);
	a->node_id = id;
	a->label = (char *)intern(c, l);
	m->op_case = LORA__MUTATION__OP_REMOVE_LABEL;
	m->remove_label = a;
	g_emit(c, m);
}

void g_delete_edge(struct qctx *c, uint64_t id)
{
	struct gedge *e = g_edge(c, id);
	if (!e || e->deleted)
		return;
	e->deleted = 1;
	c->g.edges_written = 1;
	Lora__Mutation *m = mut(c);
	Lora__DeleteEdge *d = ar_alloc(c, sizeof(*d));
	lora__delete_edge__init(d);
	d->id = id;
	d->old = old_entity(c, NULL, e);
	m->op_case = LORA__MUTATION__OP_DELETE_EDGE;
	m->delete_edge = d;
	g_emit(c, m);
}

void g_delete_node(struct qctx *c, uint64_t id, int detach)
{
	struct gnode *n = g_node(c, id);
	if (!n || n->deleted)
		return;
	if (detach) {
		struct adj *a;
		size_t k;
		g_adjacent(c, id, D_BOTH, NULL, &a, &k);
		for (size_t i = 0; i < k; i++)
			g_delete_edge(c, a[i].edge);
	} else {
		idv_push(c, &c->g.deleted_plain, id);
	}
	Lora__OldEntity *old = old_entity(c, n, NULL);
	n->deleted = 1;
	touch(c, n);
	struct graph *g = &c->g;
	if (!g->recording)
		return;
	Lora__Mutation *m = mut(c);
	Lora__DeleteNode *d = ar_alloc(c, sizeof(*d));
	lora__delete_node__init(d);
	d->id = id;
	d->detach = detach;
	d->old = old;
	m->op_case = LORA__MUTATION__OP_DELETE_NODE;
	m->delete_node = d;
	if (g->ndels == g->capdels) {
		size_t nc = g->capdels ? g->capdels * 2 : 16;
		Lora__Mutation **nd = ar_alloc(c, sizeof(*nd) * nc);
		if (g->ndels)
			memcpy(nd, g->dels, sizeof(*nd) * g->ndels);
		g->dels = nd;
		g->capdels = nc;
	}
	g->dels[g->ndels++] = m;
	c->is_write = 1;
}

void g_finish(struct qctx *c)
{
	struct graph *g = &c->g;
	for (size_t i = 0; i < g->deleted_plain.n; i++) {
		uint64_t id = g->deleted_plain.v[i];
		struct adj *a;
		size_t k;
		struct gnode *n = hm_get(&g->nodes, id);
		n->deleted = 0;
		g_adjacent(c, id, D_BOTH, NULL, &a, &k);
		n->deleted = 1;
		if (k)
			qerr(c, LORA_ECONSTRAINT,
			     "DeleteConnectedNode: node %llu still has "
			     "relationships; use DETACH DELETE",
			     (unsigned long long)id);
	}
	for (size_t i = 0; i < g->ndels; i++)
		g_emit(c, g->dels[i]);
	g->ndels = 0;
}

void g_release(struct graph *g)
{
	atomic_fetch_add(&ops_total, g->ops);
	atomic_fetch_add(&seeks_total, g->seeks);
	atomic_fetch_add(&loads_total, g->loads);
	g->ops = g->seeks = g->loads = 0;
	hm_free(&g->nodes);
	hm_free(&g->edges);
	hm_free(&g->created_adj);
	hm_free(&g->ov_label);
	hm_free(&g->ov_value);
	hm_free(&g->ov_order);
	hm_free(&g->seen);
}

void g_reset(struct qctx *c)
{
	hm_drop(c, &c->g.nodes);
	hm_drop(c, &c->g.edges);
	hm_drop(c, &c->g.created_adj);
	hm_drop(c, &c->g.ov_label);
	hm_drop(c, &c->g.ov_value);
	hm_drop(c, &c->g.ov_order);
	hm_drop(c, &c->g.seen); /* its pages lie in g.ar */
	g_release(&c->g);
	ar_release(c, &c->g.ar);
	g_init(c);
}

/* ---- pending batches --------------------------------------------------- */

static struct vmap *props_from_mut(struct qctx *c, Lora__Property **p, size_t n)
{
	struct val m = v_map(c, n);
	for (size_t i = 0; i < n; i++)
		vmap_put(c, m.u.m, ar_strdup(c, p[i]->key),
		         val_from_pb(c, p[i]->value));
	return m.u.m;
}

static void apply_one(struct qctx *c, const Lora__Mutation *m)
{
	switch (m->op_case) {
	case LORA__MUTATION__OP_CREATE_NODE: {
		Lora__CreateNode *x = m->create_node;
		struct gnode *n =
		    new_node(c, x->id, (const char **)x->labels, x->n_labels,
		             props_from_mut(c, x->properties, x->n_properties));
		n->created = 1;
		break;
	}
	case LORA__MUTATION__OP_CREATE_EDGE: {
		Lora__CreateEdge *x = m->create_edge;
		new_edge(c, x->id, x->type, x->from_id, x->to_id,
		         props_from_mut(c, x->properties, x->n_properties));
		break;
	}
	case LORA__MUTATION__OP_SET_PROPERTY:
		g_set_prop(c,
		           m->set_property->entity ==
		               LORA__ENTITY_KIND__ENTITY_EDGE,
		           m->set_property->id, m->set_property->key,
		           val_from_pb(c, m->set_property->value));
		break;
	case LORA__MUTATION__OP_REMOVE_PROPERTY:
		g_set_prop(c,
		           m->remove_property->entity ==
		               LORA__ENTITY_KIND__ENTITY_EDGE,
		           m->remove_property->id, m->remove_property->key,
		           v_null());
		break;
	case LORA__MUTATION__OP_SET_VECTOR: {
		struct val v = {.t = V_VECTOR};
		Lora__Value pv = LORA__VALUE__INIT;
		pv.kind_case = LORA__VALUE__KIND_VECTOR_VALUE;
		pv.vector_value = m->set_vector->vector;
		v = val_from_pb(c, &pv);
		g_set_prop(
		    c, m->set_vector->entity == LORA__ENTITY_KIND__ENTITY_EDGE,
		    m->set_vector->owner_id, m->set_vector->key, v);
		break;
	}
	case LORA__MUTATION__OP_REMOVE_VECTOR:
		g_set_prop(c,
		           m->remove_vector->entity ==
		               LORA__ENTITY_KIND__ENTITY_EDGE,
		           m->remove_vector->owner_id, m->remove_vector->key,
		           v_null());
		break;
	case LORA__MUTATION__OP_ADD_LABEL:
		g_add_label(c, m->add_label->node_id, m->add_label->label);
		break;
	case LORA__MUTATION__OP_REMOVE_LABEL:
		g_remove_label(c, m->remove_label->node_id,
		               m->remove_label->label);
		break;
	case LORA__MUTATION__OP_DELETE_EDGE:
		g_delete_edge(c, m->delete_edge->id);
		break;
	case LORA__MUTATION__OP_DELETE_NODE:
		g_delete_node(c, m->delete_node->id, 1);
		break;
	default:
		break;
	}
}

void g_apply_pending(struct qctx *c, const Lora__MutationBatch *b)
{
	int rec = c->g.recording;
	c->g.recording = 0;
	for (size_t i = 0; i < b->n_mutations; i++)
		apply_one(c, b->mutations[i]);
	c->g.deleted_plain.n = 0;
	c->g.recording = rec;
}
