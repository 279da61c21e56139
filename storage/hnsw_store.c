/* hnsw_store.c - the HNSW graphs of the store's vector indexes: kept on
 * apply, persisted in the `hnsw` column family, searched by views.
 *
 * Layout of the `hnsw` CF (outside the digest: the graph depends on the
 * history of the data, not only on the data):
 *
 *   u8 len, index name              -> u8 has_entry, be64 entry node
 *                                      [u8 populating, be64 next node,
 *                                       be64 done, be64 total]
 *   u8 len, index name, be64 node   -> u8 level, per level 0..level:
 *                                      varint n, varint node id * n
 *
 * A node's vector is not copied: loading reads it from the `vectors` CF.
 * The CF's memtable is a vector (store.c: writes append, a flush or a read
 * sorts), so the header is read from it only at open and for an older
 * view: SHOW INDEXES' progress comes from a copy kept at each commit.
 *
 * A relationship index (FOR ()-[r:T]-()) is the same with relationship ids
 * for node ids and the type for the label: its graph holds the
 * relationships of type T with a vector of its dimension under its key.
 * A batch touches a relationship when it creates one of type T, deletes
 * one (also by a DETACH DELETE of an end node: the apply lists those in
 * c->detached) or writes its key; its build steps walk all relationships
 * from the cursor in id order (there is no index by type), at most
 * HNSW_BUILD_SCAN_EDGES records per step, and end at the last one.
 *
 * Every node keeps the graphs on apply, in the batch's own write: after the
 * batch's mutations, the nodes it touched (a created or deleted node with
 * an indexed label, a write of an indexed key, a label change) are compared
 * with the graph; the ones that left or changed their vector are removed
 * together (hnsw_remove), then the new ones inserted in ascending id order.
 * A vector index created by a batch starts POPULATING: that batch only
 * counts the label's nodes (`total`); then every batch applied after it,
 * whatever it holds (an empty one too), inserts the next
 * step_nodes() nodes of the label in id order from the cursor
 * `next`, after the batch's own changes, and the index is ONLINE once a
 * step finds fewer. The steps are log entries: every replica applies the
 * same batches in the same order, so every replica runs the same steps at
 * the same places and holds the same graph bytes. The leader proposes an
 * empty batch whenever it has nothing else to write while a build is
 * under way (node/writer.c), so a build also proceeds on an idle cluster.
 * Writes keep the graph meanwhile: a touched node enters or leaves it at
 * once, whether the cursor has passed it or not (a step skips a node that
 * is already in with its vector). Queries scan exactly until the index is
 * ONLINE (sto_view_vector_search answers LORA_ENOTFOUND). The cursor and
 * the counts live in the index's header, written in the batch that moved
 * them, so a restart or a snapshot install resumes the build where the
 * state it holds left it. A header of 9 bytes (written before background
 * builds existed) is an ONLINE index.
 *
 * In memory, the graph of each index (hnswInt.h) mirrors the CF as of the
 * last committed batch. A view uses a graph only when the view's
 * node-cache generation is at or after the one the graph last changed at
 * (`since`) and no batch being applied may change it (`dirty`); otherwise
 * (an older snapshot, a batch touching its nodes, its own build step) the
 * caller falls back to the exact scan. A step of one index's build leaves
 * the other indexes searchable. A rejected batch makes the graphs stale:
 * they are reloaded from the CF by the next apply.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "applyInt.h"
#include "hnswInt.h"

#define HNSW_NAME_BYTES_MAX 255 /* index names longer are not indexed */
/* Nodes one build step inserts at most (about 0.1 s of CPU at 100,000 x
 * 128-d, ef_construction 100: the apply of every entry during a build
 * waits that long) */
#define HNSW_BUILD_STEP_NODES 1024
/* The work of one step, in dimensions x ef_construction per node summed
 * over its nodes: a step inserts HNSW_STEP_WORK / (dims x efc) nodes, at
 * least 1, at most HNSW_BUILD_STEP_NODES (1024 at 128-d, efc 100; 3 at
 * 4096-d, efc 1000). Derived from the definition alone, never from time,
 * so every replica steps over the same nodes. */
#define HNSW_STEP_WORK (1024ull * 128 * HNSW_EFC_DEFAULT)
/* Relationship records one build step of a relationship index walks at
 * most (all types: there is no index by type), about 10 ms of decoding */
#define HNSW_BUILD_SCAN_EDGES (16 * 1024)
#define HNSW_HEAD_BYTES       9  /* has_entry, entry */
#define HNSW_HEAD_POP_BYTES   34 /* + populating, next, done, total */

struct hent {
	char *name, *label, *key; /* label: the type of a relationship index */
	int edge;                 /* 1: a relationship index */
	uint32_t dims, m, efc;
	int metric;
	struct hnsw_graph *g;
	int built; /* 0: start a build at the next apply */
	int erase; /* its keys are damaged: delete them before that build */
	int populating;       /* a build is under way: queries scan */
	uint64_t next;        /* populating: the next node id to insert */
	uint64_t done, total; /* nodes the steps went over; label's count */
	/* the apply under way may change the graph: searches leave it
	 * alone (and the apply changes it without mu) until the commit */
	int dirty;
	uint64_t since; /* nc_gen from which the graph matches a view */
	size_t bytes;   /* hnsw_bytes as of the last commit */
	/* the header's build progress as of the last commit (valid when
	 * c_ok): SHOW INDEXES reads it here, not from the CF, whose vector
	 * memtable sorts a copy for every point read (store.c) */
	int c_ok, c_pop;
	uint64_t c_done, c_total;
	uint64_t c_at; /* the applied index of that commit */
};

/* An apply holds mu while it reloads, adds or drops entries and marks the
 * ones its batch may change (dirty); it changes the graphs of those
 * without mu, and the commit clears the marks under mu. A search takes
 * mu and uses a clean entry: an index being built does not keep the
 * others' searches from their graphs. */
struct sto_hnsw_set {
	pthread_mutex_t mu; /* guards everything below, and clean graphs */
	/* some entry is unbuilt or POPULATING, as of the last apply (or 1
	 * after a rejected one): read without mu by the writer, which must
	 * not wait for an apply's graph changes to know whether to step */
	_Atomic int building;
	/* a fingerprint of the entries' build cursors as of the last
	 * committed apply (sto_hnsw_build_pos) */
	_Atomic uint64_t build_pos;
	struct hent *e;
	size_t n;
	int stale;   /* reload from the CF before the next change */
	int pending; /* the apply under way changed a graph */
};

/* ---- definitions ---- */

static int metric_of(const char *sim)
{
	return !strcmp(sim, "euclidean") ? HNSW_EUCLIDEAN
	       : !strcmp(sim, "dot")     ? HNSW_DOT
	                                 : HNSW_COSINE;
}

/* A catalogue definition outside index_validate's bounds (written
 * before they were checked) gets no graph: its index stays exact. */
static int def_is_hnsw(const Lora__CreateIndex *d)
{
	return d->kind == LORA__INDEX_KIND__INDEX_VECTOR &&
	       (d->entity == LORA__ENTITY_KIND__ENTITY_NODE ||
	        d->entity == LORA__ENTITY_KIND__ENTITY_EDGE) &&
	       d->n_properties == 1 && d->vector_dimensions &&
	       strlen(d->name) <= HNSW_NAME_BYTES_MAX &&
	       (!d->hnsw_m || (d->hnsw_m >= 2 && d->hnsw_m <= HNSW_M_MAX)) &&
	       d->hnsw_ef_construction <= HNSW_EFC_MAX;
}

static uint32_t def_m(const Lora__CreateIndex *d)
{
	return d->hnsw_m ? d->hnsw_m : HNSW_M_DEFAULT;
}

static uint32_t def_efc(const Lora__CreateIndex *d)
{
	return d->hnsw_ef_construction ? d->hnsw_ef_construction
	                               : HNSW_EFC_DEFAULT;
}

static int def_edge(const Lora__CreateIndex *d)
{
	return d->entity == LORA__ENTITY_KIND__ENTITY_EDGE;
}

static int ent_matches(const struct hent *e, const Lora__CreateIndex *d)
{
	return !strcmp(e->name, d->name) && !strcmp(e->label, d->label) &&
	       e->edge == def_edge(d) && !strcmp(e->key, d->properties[0]) &&
	       e->dims == d->vector_dimensions && e->m == def_m(d) &&
	       e->efc == def_efc(d) &&
	       e->metric == metric_of(d->vector_similarity);
}

static char *dup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = lora_malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static void ent_free(struct hent *e)
{
	hnsw_free(e->g);
	lora_free(e->name);
	lora_free(e->label);
	lora_free(e->key);
	memset(e, 0, sizeof *e);
}

static int ent_add(struct sto_hnsw_set *h, const Lora__CreateIndex *d)
{
	struct hent *ne = lora_realloc(h->e, (h->n + 1) * sizeof *ne);
	if (!ne)
		return LORA_ENOMEM;
	h->e = ne;
	struct hent *e = &h->e[h->n];
	memset(e, 0, sizeof *e);
	e->name = dup(d->name);
	e->label = dup(d->label);
	e->key = dup(d->properties[0]);
	e->edge = def_edge(d);
	e->dims = d->vector_dimensions;
	e->m = def_m(d);
	e->efc = def_efc(d);
	e->metric = metric_of(d->vector_similarity);
	e->g = hnsw_new(d->name, e->dims, e->metric, e->m, e->efc);
	if (!e->name || !e->label || !e->key || !e->g) {
		ent_free(e);
		return LORA_ENOMEM;
	}
	h->n++;
	return 0;
}

/* the entity kind of e's vectors */
static uint32_t ent_kind(const struct hent *e)
{
	return e->edge ? LORA__ENTITY_KIND__ENTITY_EDGE
	               : LORA__ENTITY_KIND__ENTITY_NODE;
}

/* ---- keys ---- */

static size_t key_of(uint8_t *k, const char *name, int node, uint64_t id)
{
	size_t n = strlen(name);
	k[0] = (uint8_t)n;
	memcpy(k + 1, name, n);
	if (node)
		lora_put_be64(k + 1 + n, id);
	return 1 + n + (node ? 8 : 0);
}

/* ---- vectors as floats ---- */

/* 1 when x is finite as a float32 (a double beyond FLT_MAX would
 * overflow the cast, which is undefined) */
static int f32_ok(double x)
{
	return isfinite(x) && fabs(x) <= FLT_MAX;
}

/* node id's vector `key` (token) as dims floats into out: 1, or 0 when
 * it has none of that dimension or a coordinate that is not finite as a
 * float32 (NaN, inf: such vectors stay out of the graph, whose distance
 * order they would break; the exact scan still sees them) */
static int vec_floats(const uint8_t *p, size_t len, uint32_t dims, float *out)
{
	struct sto_vec_ref r;
	if (sto_vector_ref(p, len, &r))
		return 0;
	int ok = 1;
	if (r.plain && r.dimension == dims && r.n_f32 == dims) {
		sto_vec_f32(&r, out);
		for (uint32_t i = 0; ok && i < dims; i++)
			ok = f32_ok(out[i]);
		return ok;
	}
	Lora__Vector *v = lora__vector__unpack(&lora_pb_allocator, len, p);
	if (!v)
		return 0;
	ok = v->dimension == dims &&
	     (v->n_f32 == dims || v->n_f64 == dims || v->n_ints == dims);
	for (uint32_t i = 0; ok && i < dims; i++) {
		double x = v->n_f32 == dims   ? v->f32[i]
		           : v->n_f64 == dims ? v->f64[i]
		                              : (double)v->ints[i];
		ok = f32_ok(x);
		out[i] = ok ? (float)x : 0;
	}
	lora__vector__free_unpacked(v, &lora_pb_allocator);
	return ok;
}

/* ---- loading ---- */

static int load_nodes(struct sto_store *s, struct hent *e, uint32_t keytok,
                      float *vec)
{
	uint8_t pfx[1 + HNSW_NAME_BYTES_MAX + 8];
	size_t pl = key_of(pfx, e->name, 0, 0);
	/* one-off reads, in key order: not into the caches */
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(s->db, s->ro_bulk, s->cf[STO_CF_HNSW]);
	rocksdb_iterator_t *vit = rocksdb_create_iterator_cf(
	    s->db, s->ro_bulk, s->cf[STO_CF_VECTORS]);
	int rv = 0;
	for (rocksdb_iter_seek(it, (const char *)pfx, pl);
	     !rv && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl, vl, ol;
		const char *k = rocksdb_iter_key(it, &kl);
		if (kl < pl || memcmp(k, pfx, pl))
			break;
		if (kl != pl + 8)
			continue; /* the header */
		uint64_t id = lora_get_be64((const uint8_t *)k + pl);
		const char *v = rocksdb_iter_value(it, &vl);
		uint8_t vk[STO_VEC_KEY_BYTES];
		sto_key_vec(vk, ent_kind(e), id, keytok);
		char *ov = NULL;
		rv = sto_seek_get(vit, vk, sizeof vk, &ov, &ol);
		if (!rv &&
		    (!ov || !vec_floats((uint8_t *)ov, ol, e->dims, vec)))
			rv = LORA_ECORRUPT;
		rocksdb_free(ov);
		if (!rv)
			rv = hnsw_load_node(e->g, id, vec, (const uint8_t *)v,
			                    vl);
	}
	if (!rv)
		rv = apply_iter_err(it);
	rocksdb_iter_destroy(it);
	rocksdb_iter_destroy(vit);
	return rv;
}

/* Under h->mu, after a committed apply or a load: e's header as the CF
 * now holds it (an entry not built has no header yet). */
static void progress_keep(struct sto_store *s, struct hent *e)
{
	e->c_at = atomic_load(&s->applied);
	e->c_ok = e->built;
	e->c_pop = e->populating;
	e->c_done = e->done;
	e->c_total = e->total;
}

/* Sets h->building from the entries (under h->mu). */
static void building_update(struct sto_hnsw_set *h)
{
	int any = 0;
	for (size_t i = 0; i < h->n && !any; i++)
		any = !h->e[i].built || h->e[i].populating;
	atomic_store(&h->building, any);
}

/* Loads entry e's graph from the CF; e->built = 0 when it has none. */
static int load_ent(struct sto_store *s, struct hent *e)
{
	uint8_t k[1 + HNSW_NAME_BYTES_MAX];
	size_t kl = key_of(k, e->name, 0, 0), vl;
	char *v = NULL;
	int rv = sto_get(s, s->ro, STO_CF_HNSW, k, kl, &v, &vl);
	if (rv || !v)
		return rv;
	int ok = vl == HNSW_HEAD_BYTES || vl == HNSW_HEAD_POP_BYTES;
	const uint8_t *u = (const uint8_t *)v;
	int has = ok && u[0];
	uint64_t entry = ok ? lora_get_be64(u + 1) : 0;
	if (vl == HNSW_HEAD_POP_BYTES) {
		e->populating = u[9] != 0;
		e->next = lora_get_be64(u + 10);
		e->done = lora_get_be64(u + 18);
		e->total = lora_get_be64(u + 26);
	}
	rocksdb_free(v);
	if (!ok)
		return LORA_ECORRUPT;
	int64_t tok = sto_tok_find(s, STO_TOK_KEY, e->key, strlen(e->key));
	float *vec = lora_malloc(sizeof(float) * e->dims);
	if (!vec)
		return LORA_ENOMEM;
	rv = tok < 0 ? (has ? LORA_ECORRUPT : 0)
	             : load_nodes(s, e, (uint32_t)tok, vec);
	lora_free(vec);
	if (!rv)
		rv = hnsw_load_end(e->g, entry, has);
	if (!rv)
		e->built = 1;
	return rv;
}

static void set_clear(struct sto_hnsw_set *h)
{
	for (size_t i = 0; i < h->n; i++)
		ent_free(&h->e[i]);
	lora_free(h->e);
	h->e = NULL;
	h->n = 0;
}

/* (Re)loads every vector index of the committed catalogue. */
static int set_load(struct sto_store *s, struct sto_hnsw_set *h)
{
	set_clear(h);
	int rv = 0;
	for (size_t i = 0; !rv && i < s->cat.n; i++)
		if (def_is_hnsw(s->cat.defs[i]))
			rv = ent_add(h, s->cat.defs[i]);
	for (size_t i = 0; !rv && i < h->n; i++) {
		struct hent *e = &h->e[i];
		rv = load_ent(s, e);
		if (rv != LORA_ECORRUPT)
			continue;
		/* a damaged graph is rebuilt from the data by the next apply
		 * (the store still opens; queries scan meanwhile) */
		hnsw_free(e->g);
		e->g = hnsw_new(e->name, e->dims, e->metric, e->m, e->efc);
		e->built = 0;
		e->erase = 1;
		rv = e->g ? 0 : LORA_ENOMEM;
	}
	if (rv) {
		set_clear(h);
		h->stale = 1;
	} else {
		h->stale = 0;
	}
	for (size_t i = 0; i < h->n; i++) {
		h->e[i].since = atomic_load(&s->nc_gen);
		h->e[i].bytes = hnsw_bytes(h->e[i].g);
		progress_keep(s, &h->e[i]);
	}
	building_update(h);
	return rv;
}

int sto_hnsw_open(struct sto_store *s, char *errmsg)
{
	struct sto_hnsw_set *h = lora_calloc(1, sizeof *h);
	if (!h)
		return lora_errf(LORA_ENOMEM, errmsg, "hnsw: out of memory");
	pthread_mutex_init(&h->mu, NULL);
	s->hnsw = h;
	int rv = set_load(s, h);
	if (rv)
		lora_errf(rv, errmsg, "load vector index graphs: %s",
		          lora_strerror(rv));
	else if (h->n) /* the load's scratch and outgrown arrays */
		lora_mem_trim();
	return rv;
}

void sto_hnsw_close(struct sto_store *s)
{
	if (!s->hnsw)
		return;
	set_clear(s->hnsw);
	pthread_mutex_destroy(&s->hnsw->mu);
	lora_free(s->hnsw);
	s->hnsw = NULL;
}

/* ---- apply ---- */

struct flush_arg {
	struct apply_ctx *c;
	const char *name;
};

static int put_node(void *arg, uint64_t id, const uint8_t *val, size_t len)
{
	struct flush_arg *a = arg;
	uint8_t k[1 + HNSW_NAME_BYTES_MAX + 8];
	size_t kl = key_of(k, a->name, 1, id);
	return apply_wonly(a->c, 0, STO_CF_HNSW, k, kl, val, len);
}

static int del_node(void *arg, uint64_t id)
{
	struct flush_arg *a = arg;
	uint8_t k[1 + HNSW_NAME_BYTES_MAX + 8];
	size_t kl = key_of(k, a->name, 1, id);
	return apply_wonly(a->c, 1, STO_CF_HNSW, k, kl, NULL, 0);
}

/* Writes e's changed lists and its header into the batch. */
static int ent_flush(struct apply_ctx *c, struct hent *e)
{
	struct flush_arg a = {c, e->name};
	int rv = hnsw_flush(e->g, put_node, del_node, &a);
	if (rv)
		return rv;
	uint8_t k[1 + HNSW_NAME_BYTES_MAX], v[HNSW_HEAD_POP_BYTES];
	size_t kl = key_of(k, e->name, 0, 0);
	int has;
	lora_put_be64(v + 1, hnsw_entry(e->g, &has));
	v[0] = (uint8_t)has;
	v[9] = (uint8_t)e->populating;
	lora_put_be64(v + 10, e->next);
	lora_put_be64(v + 18, e->done);
	lora_put_be64(v + 26, e->total);
	return apply_wonly(c, 0, STO_CF_HNSW, k, kl, v, sizeof v);
}

/* Deletes every key of index `name` from the CF. */
static int ent_erase(struct apply_ctx *c, const char *name)
{
	uint8_t pfx[1 + HNSW_NAME_BYTES_MAX];
	size_t pl = key_of(pfx, name, 0, 0);
	struct sto_store *s = c->s;
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(s->db, s->ro, s->cf[STO_CF_HNSW]);
	int rv = 0;
	for (rocksdb_iter_seek(it, (const char *)pfx, pl);
	     !rv && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t kl;
		const char *k = rocksdb_iter_key(it, &kl);
		if (kl < pl || memcmp(k, pfx, pl))
			break;
		rv = apply_wonly(c, 1, STO_CF_HNSW, k, kl, NULL, 0);
	}
	if (!rv)
		rv = apply_iter_err(it);
	rocksdb_iter_destroy(it);
	return rv;
}

static const struct sto_catalog *cat_now(struct apply_ctx *c)
{
	return c->cat_copied ? &c->cat : &c->s->cat;
}

/* Drops graphs whose index is gone or changed; adds the new ones. */
static int reconcile(struct apply_ctx *c, struct sto_hnsw_set *h)
{
	const struct sto_catalog *k = cat_now(c);
	int rv = 0;
	for (size_t i = 0; !rv && i < h->n;) {
		int keep = 0;
		for (size_t j = 0; j < k->n && !keep; j++)
			keep = def_is_hnsw(k->defs[j]) &&
			       ent_matches(&h->e[i], k->defs[j]);
		if (keep) {
			i++;
			continue;
		}
		h->pending = 1;
		rv = ent_erase(c, h->e[i].name);
		ent_free(&h->e[i]);
		h->e[i] = h->e[--h->n];
	}
	for (size_t j = 0; !rv && j < k->n; j++) {
		if (!def_is_hnsw(k->defs[j]))
			continue;
		int have = 0;
		for (size_t i = 0; i < h->n && !have; i++)
			have = !strcmp(h->e[i].name, k->defs[j]->name);
		if (!have) {
			h->pending = 1;
			rv = ent_add(h, k->defs[j]);
		}
	}
	return rv;
}

/* Node (relationship) id as the batch left it, for entry e: 1 with its
 * vector in vec when it belongs in the graph (has the label, or is of the
 * type, and has a vector of e's dimension under e's key), else 0. */
static int wanted(struct apply_ctx *c, const struct hent *e, int64_t ltok,
                  int64_t ktok, uint64_t id, float *vec, int *yes)
{
	*yes = 0;
	if (ltok < 0 || ktok < 0)
		return 0;
	struct sto_rec r = {0};
	int found, rv = apply_load(c, e->edge, id, &r, &found);
	int has = e->edge && !rv && found && r.type == (uint32_t)ltok;
	for (uint32_t i = 0; !e->edge && !rv && found && i < r.nlabels && !has;
	     i++)
		has = r.labels[i] == (uint32_t)ltok;
	int nvec = found ? (int)r.nvec : 0;
	sto_rec_free(&r);
	if (rv || !has || !nvec)
		return rv;
	uint8_t vk[STO_VEC_KEY_BYTES];
	sto_key_vec(vk, ent_kind(e), id, (uint32_t)ktok);
	char *v;
	size_t vl;
	rv = apply_get(c, STO_CF_VECTORS, vk, sizeof vk, &v, &vl);
	if (rv || !v)
		return rv;
	*yes = vec_floats((uint8_t *)v, vl, e->dims, vec);
	rocksdb_free(v);
	return 0;
}

static int id_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

/* The token of e's label (type): -1 when unknown. */
static int64_t ent_ltok(struct apply_ctx *c, const struct hent *e)
{
	return apply_tok_find(c, e->edge ? STO_TOK_TYPE : STO_TOK_LABEL,
	                      e->label);
}

/* Brings e's graph in line with nodes (relationships) ids (sorted,
 * unique): removals first, all at once, then insertions in id order. */
static int sync_nodes(struct apply_ctx *c, struct hent *e, const uint64_t *ids,
                      size_t n)
{
	int64_t lt = ent_ltok(c, e);
	int64_t kt = apply_tok_find(c, STO_TOK_KEY, e->key);
	float *vecs = lora_malloc(sizeof(float) * e->dims * (n ? n : 1));
	uint8_t *want = lora_malloc(n ? n : 1);
	uint64_t *gone = lora_malloc(sizeof(uint64_t) * (n ? n : 1));
	size_t ng = 0;
	int rv = vecs && want && gone ? 0 : LORA_ENOMEM;
	for (size_t i = 0; !rv && i < n; i++) {
		float *v = vecs + i * e->dims;
		const float *cur;
		int yes;
		rv = wanted(c, e, lt, kt, ids[i], v, &yes);
		want[i] = (uint8_t)yes;
		int in = hnsw_has(e->g, ids[i], &cur);
		if (in && (!yes || memcmp(cur, v, sizeof(float) * e->dims)))
			gone[ng++] = ids[i];
	}
	if (!rv && ng)
		rv = hnsw_remove(e->g, gone, ng);
	for (size_t i = 0; !rv && i < n; i++)
		if (want[i] && !hnsw_has(e->g, ids[i], NULL))
			rv = hnsw_insert(e->g, ids[i], vecs + i * e->dims);
	lora_free(vecs);
	lora_free(want);
	lora_free(gone);
	return rv;
}

/* Starts e's build: the label's nodes (the type's relationships)
 * counted, the cursor at 0. */
static int build_start(struct apply_ctx *c, struct hent *e)
{
	int64_t lt = ent_ltok(c, e);
	struct lora_buf ids = {0};
	int rv = 0;
	e->total = 0;
	if (lt >= 0 && e->edge)
		rv = apply_type_count(c, (uint32_t)lt, &e->total);
	else if (lt >= 0)
		rv = apply_label_nodes(c, (uint32_t)lt, &ids);
	if (!e->edge)
		e->total = ids.len / 8;
	lora_buf_free(&ids);
	e->next = e->done = 0;
	/* no node yet: the writes to come keep the graph whole */
	e->populating = e->total > 0;
	e->built = 1;
	return rv;
}

/* The nodes one build step of e inserts (HNSW_STEP_WORK). */
static size_t step_nodes(const struct hent *e)
{
	uint64_t per =
	    (uint64_t)(e->dims ? e->dims : 1) * (e->efc ? e->efc : 1);
	uint64_t k = HNSW_STEP_WORK / per;
	return k < 1                       ? 1
	       : k > HNSW_BUILD_STEP_NODES ? HNSW_BUILD_STEP_NODES
	                                   : k;
}

/* One build step: the next step_nodes(e) nodes of the label from the
 * cursor into the graph (those already in are left as they are). A
 * relationship index walks all relationships from the cursor (there is
 * no index by type), at most HNSW_BUILD_SCAN_EDGES records per step. */
static int build_step(struct apply_ctx *c, struct hent *e)
{
	int64_t lt = ent_ltok(c, e);
	uint64_t v[HNSW_BUILD_STEP_NODES], next = e->next;
	size_t n = 0, want = step_nodes(e);
	int rv = 0, end = 1;
	apply_bulk_begin(c); /* one-off reads: not into the caches */
	if (lt >= 0 && e->edge)
		rv = apply_type_edges_from(c, (uint32_t)lt, e->next, v, want,
		                           HNSW_BUILD_SCAN_EDGES, &n, &next,
		                           &end);
	else if (lt >= 0)
		rv = apply_label_nodes_from(c, (uint32_t)lt, e->next, v, want,
		                            &n);
	if (!rv && n)
		rv = sync_nodes(c, e, v, n);
	apply_bulk_end(c);
	if (rv)
		return rv;
	e->done += n;
	if (!e->edge) {
		next = n ? v[n - 1] + 1 : e->next;
		end = n < want;
	}
	e->next = next;
	if (end) {
		e->populating = 0;
		e->next = e->done = e->total = 0;
		/* the build's scratch and the graph's outgrown arrays go
		 * back to the system, not only to malloc's free lists */
		lora_mem_trim();
	}
	return 0;
}

/* A build step rides on whatever batch comes next, a user's write too:
 * its failure must never reject that batch (a rejection is written as
 * applied, and a failure that only this replica sees would make it
 * diverge). Every error a step can meet is an operating one (no memory,
 * I/O, a corrupt record: the apply writes nothing, the node retries or
 * stops); anything else is a bug, reported as such and never as a
 * rejection. */
static int build_step_or_stop(struct apply_ctx *c, struct hent *e)
{
	int rv = build_step(c, e);
	if (!rv)
		return 0;
	if (!apply_is_fatal(rv))
		rv = lora_errwrap(LORA_EINTERNAL, c->errmsg, "%s",
		                  lora_err_code(rv));
	return lora_errwrap(rv, c->errmsg, "vector index %s: build step",
	                    e->name);
}

static int push_id(struct lora_buf *b, uint64_t id)
{
	return lora_buf_append(b, &id, sizeof id);
}

/* Whether name equals the label (lab) or key field of one of the entries
 * of the entity kind edge (0 nodes, 1 relationships). */
static int names_any(const struct sto_hnsw_set *h, const char *name, int lab,
                     int edge)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->e[i].edge == edge &&
		    !strcmp(lab ? h->e[i].label : h->e[i].key, name))
			return 1;
	return 0;
}

/* 1 when an entry of the entity kind edge exists */
static int kind_any(const struct sto_hnsw_set *h, int edge)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->e[i].edge == edge)
			return 1;
	return 0;
}

static int is_edge(Lora__EntityKind k)
{
	return k == LORA__ENTITY_KIND__ENTITY_EDGE;
}

/* A property or vector write of entity kind k on id, key `key`. */
static int touch_key(const struct sto_hnsw_set *h, struct lora_buf out[2],
                     Lora__EntityKind k, uint64_t id, const char *key)
{
	int edge = is_edge(k);
	return names_any(h, key, 0, edge) ? push_id(&out[edge], id) : 0;
}

static int touch_created(const struct sto_hnsw_set *h, struct lora_buf out[2],
                         const Lora__Mutation *m)
{
	if (m->op_case == LORA__MUTATION__OP_CREATE_EDGE)
		return names_any(h, m->create_edge->type, 1, 1)
		           ? push_id(&out[1], m->create_edge->id)
		           : 0;
	for (size_t j = 0; j < m->create_node->n_labels; j++)
		if (names_any(h, m->create_node->labels[j], 1, 0))
			return push_id(&out[0], m->create_node->id);
	return 0;
}

/* The nodes (out[0]) and relationships (out[1]) of the batch that may
 * enter, leave or change in a graph; the relationships a DETACH DELETE
 * removed come from the apply (c->detached). */
static int touched(const struct sto_hnsw_set *h, struct apply_ctx *c,
                   const Lora__MutationBatch *b, struct lora_buf out[2])
{
	int rv = 0;
	for (size_t i = 0; !rv && i < b->n_mutations; i++) {
		const Lora__Mutation *m = b->mutations[i];
		switch (m->op_case) {
		case LORA__MUTATION__OP_CREATE_NODE:
		case LORA__MUTATION__OP_CREATE_EDGE:
			rv = touch_created(h, out, m);
			break;
		case LORA__MUTATION__OP_DELETE_NODE:
			rv = push_id(&out[0], m->delete_node->id);
			break;
		case LORA__MUTATION__OP_DELETE_EDGE:
			if (kind_any(h, 1))
				rv = push_id(&out[1], m->delete_edge->id);
			break;
		case LORA__MUTATION__OP_SET_PROPERTY:
			rv = touch_key(h, out, m->set_property->entity,
			               m->set_property->id,
			               m->set_property->key);
			break;
		case LORA__MUTATION__OP_REMOVE_PROPERTY:
			rv = touch_key(h, out, m->remove_property->entity,
			               m->remove_property->id,
			               m->remove_property->key);
			break;
		case LORA__MUTATION__OP_SET_VECTOR:
			rv = touch_key(h, out, m->set_vector->entity,
			               m->set_vector->owner_id,
			               m->set_vector->key);
			break;
		case LORA__MUTATION__OP_REMOVE_VECTOR:
			rv = touch_key(h, out, m->remove_vector->entity,
			               m->remove_vector->owner_id,
			               m->remove_vector->key);
			break;
		case LORA__MUTATION__OP_ADD_LABEL:
			if (names_any(h, m->add_label->label, 1, 0))
				rv = push_id(&out[0], m->add_label->node_id);
			break;
		case LORA__MUTATION__OP_REMOVE_LABEL:
			if (names_any(h, m->remove_label->label, 1, 0))
				rv = push_id(&out[0], m->remove_label->node_id);
			break;
		default:
			break;
		}
	}
	if (!rv && c->detached.len && kind_any(h, 1))
		rv =
		    lora_buf_append(&out[1], c->detached.data, c->detached.len);
	return rv;
}

static int has_ddl(const Lora__MutationBatch *b)
{
	for (size_t i = 0; i < b->n_mutations; i++)
		if (b->mutations[i]->op_case ==
		        LORA__MUTATION__OP_CREATE_INDEX ||
		    b->mutations[i]->op_case == LORA__MUTATION__OP_DROP_INDEX)
			return 1;
	return 0;
}

/* Sorts the ids in b and drops repeats: *u receives how many are left. */
static void ids_unique(struct lora_buf *b, size_t *u)
{
	size_t n = b->len / 8;
	uint64_t *v = (uint64_t *)(void *)b->data;
	*u = 0;
	if (!n)
		return;
	qsort(v, n, sizeof *v, id_cmp);
	for (size_t i = 0; i < n; i++)
		if (!*u || v[i] != v[*u - 1])
			v[(*u)++] = v[i];
}

/* Under h->mu: reloads or reconciles the entries, collects the batch's
 * touched nodes and relationships into ids[0] and ids[1] (sorted,
 * distinct: u[0] and u[1] of them) and marks dirty every entry the batch
 * may change. */
static int apply_prepare(struct apply_ctx *c, struct sto_hnsw_set *h,
                         const Lora__MutationBatch *b, struct lora_buf ids[2],
                         size_t u[2])
{
	int reload = h->stale;
	int rv = reload ? set_load(c->s, h) : 0;
	if (!rv && has_ddl(b))
		rv = reconcile(c, h);
	if (!rv && h->n)
		rv = touched(h, c, b, ids);
	ids_unique(&ids[0], &u[0]);
	ids_unique(&ids[1], &u[1]);
	for (size_t i = 0; !rv && i < h->n; i++) {
		struct hent *e = &h->e[i];
		e->dirty = reload || !e->built || e->populating || u[e->edge];
		h->pending |= e->dirty;
	}
	return rv;
}

/* Without h->mu: the changes of the dirty entries' graphs. */
static int apply_graphs(struct apply_ctx *c, struct sto_hnsw_set *h,
                        const struct lora_buf ids[2], const size_t u[2])
{
	int rv = 0;
	for (size_t i = 0; !rv && i < h->n; i++) {
		struct hent *e = &h->e[i];
		if (!e->dirty)
			continue;
		int fresh = !e->built;
		if (fresh) {
			rv = e->erase ? ent_erase(c, e->name) : 0;
			if (!rv)
				rv = build_start(c, e);
			e->erase = 0;
		}
		if (!rv && u[e->edge])
			rv = sync_nodes(
			    c, e, (const uint64_t *)(void *)ids[e->edge].data,
			    u[e->edge]);
		/* the batch that starts a build only counts (a CREATE INDEX
		 * answers at once); the batches after it take the steps */
		if (!rv && e->populating && !fresh)
			rv = build_step_or_stop(c, e);
		if (!rv)
			rv = ent_flush(c, e);
	}
	return rv;
}

/* 1 when m creates an entity of kind edge with an indexed label (type) */
static int creates_indexed(const struct sto_hnsw_set *h,
                           const Lora__Mutation *m, int edge)
{
	if (!m)
		return 0;
	if (edge)
		return m->op_case == LORA__MUTATION__OP_CREATE_EDGE &&
		       m->create_edge &&
		       names_any(h, m->create_edge->type, 1, 1);
	if (m->op_case != LORA__MUTATION__OP_CREATE_NODE || !m->create_node)
		return 0;
	for (size_t l = 0; l < m->create_node->n_labels; l++)
		if (names_any(h, m->create_node->labels[l], 1, 0))
			return 1;
	return 0;
}

int sto_hnsw_label_created(struct sto_store *s, const Lora__MutationBatch *b,
                           int edge)
{
	struct sto_hnsw_set *h = s->hnsw;
	if (!h)
		return 0;
	int hit = 0;
	pthread_mutex_lock(&h->mu);
	for (size_t i = 0; i < b->n_mutations && !hit; i++)
		hit = creates_indexed(h, b->mutations[i], edge);
	pthread_mutex_unlock(&h->mu);
	return hit;
}

int sto_hnsw_apply(struct apply_ctx *c, const Lora__MutationBatch *b)
{
	struct sto_hnsw_set *h = c->s->hnsw;
	if (!h || (!h->n && !h->stale && !has_ddl(b)))
		return 0;
	struct lora_buf ids[2] = {{0}, {0}};
	size_t u[2] = {0, 0};
	pthread_mutex_lock(&h->mu);
	int rv = apply_prepare(c, h, b, ids, u);
	pthread_mutex_unlock(&h->mu);
	if (!rv)
		rv = apply_graphs(c, h, ids, u);
	lora_buf_free(&ids[0]);
	lora_buf_free(&ids[1]);
	pthread_mutex_lock(&h->mu);
	if (rv)
		h->pending = 1; /* half-changed: reload */
	building_update(h);
	pthread_mutex_unlock(&h->mu);
	return rv;
}

/* Under h->mu: FNV-1a over the cursors of the entries being built. */
static uint64_t build_pos_of(const struct sto_hnsw_set *h)
{
	uint64_t x = 1469598103934665603ull;
	for (size_t i = 0; i < h->n; i++) {
		const struct hent *e = &h->e[i];
		uint64_t f[4] = {i, e->next, e->done,
		                 (uint64_t)(e->populating + 2 * e->built)};
		for (int j = 0; j < 4; j++)
			x = (x ^ f[j]) * 1099511628211ull;
	}
	return x;
}

void sto_hnsw_committed(struct sto_store *s, int ok)
{
	struct sto_hnsw_set *h = s->hnsw;
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	if (!ok && h->pending) {
		h->stale = 1;
		/* the flags may say a step the log never took: one more
		 * batch reloads the graphs and says it again */
		atomic_store(&h->building, 1);
	}
	h->pending = 0;
	if (ok)
		atomic_store(&h->build_pos, build_pos_of(h));
	uint64_t g = atomic_load(&s->nc_gen);
	for (size_t i = 0; i < h->n; i++) {
		struct hent *e = &h->e[i];
		if (!e->dirty)
			continue;
		e->dirty = 0;
		e->since = g;
		e->bytes = hnsw_bytes(e->g);
		progress_keep(s, e);
		e->c_ok = e->c_ok && ok;
	}
	pthread_mutex_unlock(&h->mu);
}

/* ---- search ---- */

/* the exact scan's score of float32 x against q (qn: q's norm): sums in
 * coordinate order, in double, as query/vector.c scores a column */
static double score(int metric, const float *x, const double *q, double qn,
                    uint32_t dim)
{
	double dp = 0, nn = 0, sq = 0;
	for (uint32_t i = 0; i < dim; i++) {
		double d = (double)x[i] - q[i];
		dp += (double)x[i] * q[i];
		nn += (double)x[i] * x[i];
		sq += d * d;
	}
	if (metric == HNSW_EUCLIDEAN)
		return 1 / (1 + sq);
	if (metric == HNSW_DOT)
		return dp;
	return nn == 0 || qn == 0 ? 0 : (1 + dp / (sqrt(nn) * qn)) / 2;
}

static int hit_cmp(const void *x, const void *y)
{
	const struct sto_vhit *a = x, *b = y;
	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

static int search_ent(struct hent *e, const double *q, double qn, size_t ef,
                      struct sto_vhit *out, size_t *n)
{
	struct hnsw_cand *c = lora_malloc(sizeof *c * ef);
	if (!c)
		return LORA_ENOMEM;
	int rv = hnsw_search(e->g, q, ef, c, n);
	for (size_t i = 0; !rv && i < *n; i++) {
		const float *x;
		hnsw_has(e->g, c[i].id, &x);
		out[i].id = c[i].id;
		out[i].score = score(e->metric, x, q, qn, e->dims);
	}
	lora_free(c);
	if (!rv)
		qsort(out, *n, sizeof *out, hit_cmp);
	return rv;
}

int sto_view_vector_search(struct sto_view *v, const char *index,
                           const double *q, uint32_t dim, double qn, size_t ef,
                           struct sto_vhit *out, size_t *n, size_t *count)
{
	struct sto_hnsw_set *h = v->s->hnsw;
	*n = *count = 0;
	if (!h || v->ngen == STO_NGEN_UNKNOWN)
		return LORA_ENOTFOUND;
	pthread_mutex_lock(&h->mu);
	int rv = LORA_ENOTFOUND;
	if (!h->stale)
		for (size_t i = 0; i < h->n; i++) {
			struct hent *e = &h->e[i];
			if (strcmp(e->name, index))
				continue;
			/* changing, or changed after the view's snapshot */
			if (e->dirty || e->since > v->ngen || !e->built ||
			    e->populating || e->dims != dim)
				break;
			*count = hnsw_count(e->g);
			if (ef > *count)
				ef = *count;
			rv = ef ? search_ent(e, q, qn, ef, out, n) : 0;
			break;
		}
	pthread_mutex_unlock(&h->mu);
	return rv;
}

int sto_hnsw_has_edge_index(struct sto_store *s)
{
	struct sto_hnsw_set *h = s->hnsw;
	if (!h)
		return 0;
	pthread_mutex_lock(&h->mu);
	int any = kind_any(h, 1);
	pthread_mutex_unlock(&h->mu);
	return any;
}

int sto_hnsw_populating(struct sto_store *s)
{
	struct sto_hnsw_set *h = s->hnsw;
	return h && atomic_load(&h->building);
}

uint64_t sto_hnsw_build_pos(struct sto_store *s)
{
	struct sto_hnsw_set *h = s->hnsw;
	return h ? atomic_load(&h->build_pos) : 0;
}

static void progress_of(int pop, uint64_t done, uint64_t total, int *populating,
                        double *percent)
{
	*populating = pop;
	/* nodes created during the build may take done past total */
	*percent = !pop ? 100.0
	           : total && done < total
	               ? 100.0 * (double)done / (double)total
	           : total ? 99.9
	                   : 0.0;
}

/* The progress kept at the last commit that changed it, when v's
 * snapshot has that commit (its applied index is at or after it); 0 when
 * the header must be read. Under h->mu. */
static int progress_mem(struct sto_view *v, const char *index, int *populating,
                        double *percent)
{
	struct sto_hnsw_set *h = v->s->hnsw;
	if (!h || h->stale)
		return 0;
	for (size_t i = 0; i < h->n; i++) {
		const struct hent *e = &h->e[i];
		if (strcmp(e->name, index))
			continue;
		if (!e->c_ok || v->applied < e->c_at)
			return 0;
		progress_of(e->c_pop, e->c_done, e->c_total, populating,
		            percent);
		return 1;
	}
	return 0;
}

int sto_view_index_progress(struct sto_view *v, const char *index,
                            int *populating, double *percent)
{
	*populating = 0;
	*percent = 100.0;
	uint8_t k[1 + HNSW_NAME_BYTES_MAX];
	if (strlen(index) > HNSW_NAME_BYTES_MAX)
		return 0;
	struct sto_hnsw_set *h = v->s->hnsw;
	int mem = 0;
	if (h) {
		pthread_mutex_lock(&h->mu);
		mem = progress_mem(v, index, populating, percent);
		pthread_mutex_unlock(&h->mu);
	}
	if (mem)
		return 0;
	size_t kl = key_of(k, index, 0, 0), vl;
	char *val = NULL;
	int rv = sto_get(v->s, v->ro, STO_CF_HNSW, k, kl, &val, &vl);
	if (rv)
		return rv;
	const uint8_t *u = (const uint8_t *)val;
	if (val && vl == HNSW_HEAD_POP_BYTES && u[9])
		progress_of(1, lora_get_be64(u + 18), lora_get_be64(u + 26),
		            populating, percent);
	rocksdb_free(val);
	return 0;
}

size_t sto_hnsw_bytes(struct sto_store *s)
{
	struct sto_hnsw_set *h = s->hnsw;
	size_t b = 0;
	if (!h)
		return 0;
	pthread_mutex_lock(&h->mu);
	for (size_t i = 0; i < h->n; i++)
		b += h->e[i].bytes;
	pthread_mutex_unlock(&h->mu);
	return b;
}

int sto_hnsw_digest(struct sto_store *s, char out[STO_HNSW_DIGEST_HEX_BYTES])
{
	const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(s->db);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	if (!ro) {
		rocksdb_release_snapshot(s->db, snap);
		return LORA_ENOMEM;
	}
	rocksdb_readoptions_set_snapshot(ro, snap);
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(s->db, ro, s->cf[STO_CF_HNSW]);
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl);
		const char *v = rocksdb_iter_value(it, &vl);
		uint8_t len[16];
		lora_put_be64(len, kl);
		lora_put_be64(len + 8, vl);
		const uint8_t *parts[3] = {len, (const uint8_t *)k,
		                           (const uint8_t *)v};
		size_t lens[3] = {sizeof len, kl, vl};
		for (int p = 0; p < 3; p++)
			for (size_t i = 0; i < lens[p]; i++)
				h = (h ^ parts[p][i]) * 0x100000001b3ull;
	}
	char *err = NULL;
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	rocksdb_release_snapshot(s->db, snap);
	if (err)
		return sto_rocks_err(err, NULL, "hnsw digest");
	snprintf(out, STO_HNSW_DIGEST_HEX_BYTES, "%016llx",
	         (unsigned long long)h);
	return 0;
}
