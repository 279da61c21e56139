/* view.c - read views on RocksDB snapshots: point reads of nodes, edges,
 * vectors, counts, the index catalogue and the names in use. */
#include <stdlib.h>
#include <string.h>

#include "stoInt.h"

int sto_view_open(struct sto_store *s, struct sto_view **out)
{
	struct sto_view *v = lora_calloc(1, sizeof(*v));
	if (!v)
		return LORA_ENOMEM;
	v->s = s;
	/* RocksDB's per-thread perf counters cost about 4% of a point read
	 * and nothing here reads them: off for the thread using the view. */
	rocksdb_set_perf_level(rocksdb_disable);
	uint64_t gen = sto_ncache_gen_before(s);
	v->snap = rocksdb_create_snapshot(s->db);
	v->ngen = sto_ncache_gen_after(s, gen);
	v->ncur = SIZE_MAX;
	v->ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_snapshot(v->ro, v->snap);
	char k = STO_META_APPLIED;
	int rv = sto_meta_get_u64(s, v->ro, &k, 1, &v->applied);
	if (rv) {
		sto_view_close(v);
		return rv;
	}
	*out = v;
	return 0;
}

void sto_view_close(struct sto_view *v)
{
	if (!v)
		return;
	lora_free(v->tnames);
	sto_ncache_view_close(v);
	if (v->node_it)
		rocksdb_iter_destroy(v->node_it);
	if (v->scan_it)
		rocksdb_iter_destroy(v->scan_it);
	LORA_ASSERT(!v->seek.lent);
	if (v->seek.it)
		rocksdb_iter_destroy(v->seek.it);
	if (v->seek.ro)
		rocksdb_readoptions_destroy(v->seek.ro);
	if (v->defs_loaded)
		sto_indexes_free(v->defs, v->ndefs);
	rocksdb_readoptions_destroy(v->ro);
	if (v->ro_bulk)
		rocksdb_readoptions_destroy(v->ro_bulk);
	rocksdb_release_snapshot(v->s->db, v->snap);
	lora_free(v);
}

const char *sto_view_type_name(struct sto_view *v, uint32_t tok)
{
	if (tok < v->ntnames && v->tnames[tok])
		return v->tnames[tok];
	const char *name = sto_tok_name(v->s, STO_TOK_TYPE, tok);
	if (!name || tok >= STO_VIEW_TYPE_NAMES_MAX)
		return name;
	if (tok >= v->ntnames) {
		uint32_t n = v->ntnames ? v->ntnames : 16;
		while (n <= tok)
			n *= 2;
		const char **p = lora_realloc(v->tnames, n * sizeof(*p));
		if (!p)
			return name; /* no cache this time; still correct */
		memset(p + v->ntnames, 0, (n - v->ntnames) * sizeof(*p));
		v->tnames = p;
		v->ntnames = n;
	}
	v->tnames[tok] = name;
	return name;
}

uint64_t sto_view_applied_index(struct sto_view *v)
{
	return v->applied;
}

int sto_view_next_ids(struct sto_view *v, uint64_t *next_node_id,
                      uint64_t *next_edge_id)
{
	if (!v->ids_loaded) { /* the snapshot's values never change */
		char k = STO_META_NEXT_NODE;
		int rv = sto_meta_get_u64(v->s, v->ro, &k, 1, &v->next_node);
		k = STO_META_NEXT_EDGE;
		if (rv == 0)
			rv =
			    sto_meta_get_u64(v->s, v->ro, &k, 1, &v->next_edge);
		if (rv)
			return rv;
		v->ids_loaded = 1;
	}
	*next_node_id = v->next_node;
	*next_edge_id = v->next_edge;
	return 0;
}

/* Reads and decodes a record; LORA_ENOTFOUND when absent. */
static int view_rec(struct sto_view *v, int edge, uint64_t id,
                    struct sto_rec *r)
{
	uint8_t k[9];
	size_t klen = 8, vlen;
	char *val;
	if (edge) {
		sto_key_edge(k, id);
		klen = 9;
	} else {
		lora_put_be64(k, id);
	}
	int rv = sto_get(v->s, v->ro, edge ? STO_CF_EDGES : STO_CF_NODES, k,
	                 klen, &val, &vlen);
	if (rv)
		return rv;
	if (!val)
		return LORA_ENOTFOUND;
	rv = sto_rec_decode(r, edge, (const uint8_t *)val, vlen);
	rocksdb_free(val);
	return rv;
}

int sto_view_rejected(struct sto_view *v, uint64_t index, int *code)
{
	uint8_t k[STO_REJECTED_KEY_BYTES];
	size_t vlen = 0;
	char *val;
	sto_rejected_key(k, index);
	int rv = sto_get(v->s, v->ro, STO_CF_META, k, sizeof k, &val, &vlen);
	*code = val && vlen == 4 ? (int)lora_get_be32((uint8_t *)val) : 0;
	rocksdb_free(val);
	return rv;
}

int sto_view_node_exists(struct sto_view *v, uint64_t id, int *exists)
{
	uint8_t k[8];
	size_t vlen;
	char *val;
	lora_put_be64(k, id);
	int rv = sto_get(v->s, v->ro, STO_CF_NODES, k, 8, &val, &vlen);
	*exists = val != NULL;
	rocksdb_free(val);
	return rv;
}

/* ---- one property ---------------------------------------------------------
 */

/* Token of property key `key` (remembered per view); -1 when unknown.
 * Only found tokens are remembered: a name unknown now may get a token
 * later, and a token never changes once given. */
static int64_t view_key_tok(struct sto_view *v, const char *key)
{
	for (unsigned i = 0; i < v->nkeys; i++)
		if (!strcmp(v->keys[i].name, key))
			return v->keys[i].tok;
	size_t len = strlen(key);
	int64_t t = sto_tok_find(v->s, STO_TOK_KEY, key, len);
	if (t < 0 || len >= STO_VIEW_KEY_NAME_BYTES)
		return t;
	unsigned i = v->nkeys < STO_VIEW_KEYS ? v->nkeys++ : v->key_next++;
	i %= STO_VIEW_KEYS;
	memcpy(v->keys[i].name, key, len + 1);
	v->keys[i].tok = (uint32_t)t;
	return t;
}

/* Steps of Next tried before a Seek when the wanted node lies ahead. */
#define NODE_CURSOR_STEPS 4

/* The node table of the view's generation, once looked for (NULL: the
 * view reads RocksDB). */
static struct sto_ntab *view_ntab(struct sto_view *v)
{
	if (!v->ntab_tried && v->ngen != STO_NGEN_UNKNOWN) {
		v->ntab_tried = 1;
		v->ntab = sto_ntab_get(v->s, v->ngen);
	}
	return v->ntab;
}

/* Positions the view's nodes-CF iterator on node id: *p, *len are the
 * record bytes (borrowed until the iterator moves). Moves forward with
 * Next when the node is a few keys ahead, else seeks. */
static int node_cursor(struct sto_view *v, uint64_t id, const uint8_t **p,
                       size_t *len)
{
	uint8_t k[8];
	size_t klen;
	struct sto_ntab *t = view_ntab(v);
	if (t) {
		size_t i = v->ncur;
		if (i == SIZE_MAX || i >= sto_ntab_count(t) ||
		    sto_ntab_id(t, i, p, len) != id)
			i = sto_ntab_find_ge(t, id);
		if (i >= sto_ntab_count(t) || sto_ntab_id(t, i, p, len) != id)
			return LORA_ENOTFOUND;
		return 0;
	}
	lora_put_be64(k, id);
	if (v->scan_it && rocksdb_iter_valid(v->scan_it)) {
		/* the node sto_view_next_node just handed out */
		const char *cur = rocksdb_iter_key(v->scan_it, &klen);
		if (klen == 8 && lora_get_be64((const uint8_t *)cur) == id) {
			*p = (const uint8_t *)rocksdb_iter_value(v->scan_it,
			                                         len);
			return 0;
		}
	}
	if (!v->node_it) {
		v->node_it = rocksdb_create_iterator_cf(v->s->db, v->ro,
		                                        v->s->cf[STO_CF_NODES]);
		if (!v->node_it)
			return LORA_ENOMEM;
	}
	rocksdb_iterator_t *it = v->node_it;
	int steps = rocksdb_iter_valid(it) ? NODE_CURSOR_STEPS : -1;
	for (;; steps--) {
		if (steps < 0) {
			rocksdb_iter_seek(it, (const char *)k, 8);
			break;
		}
		const char *cur = rocksdb_iter_key(it, &klen);
		uint64_t at =
		    klen == 8 ? lora_get_be64((const uint8_t *)cur) : 0;
		int c = klen == 8 ? (at > id) - (at < id) : -1;
		if (c == 0)
			break;
		if (c > 0 || steps == 0) {
			steps = -1; /* behind the cursor, or far: seek */
			continue;
		}
		rocksdb_iter_next(it);
		if (!rocksdb_iter_valid(it))
			break;
	}
	if (!rocksdb_iter_valid(it)) {
		char *err = NULL;
		rocksdb_iter_get_error(it, &err);
		if (err) {
			rocksdb_iter_destroy(it);
			v->node_it = NULL;
			return sto_rocks_err(err, NULL, "read node");
		}
		return LORA_ENOTFOUND;
	}
	const char *cur = rocksdb_iter_key(it, &klen);
	if (klen != 8 || lora_get_be64((const uint8_t *)cur) != id)
		return LORA_ENOTFOUND;
	*p = (const uint8_t *)rocksdb_iter_value(it, len);
	return 0;
}

/* an 8-byte node key against id: <0, 0, >0 */
static int key_vs(const char *k, uint64_t id)
{
	uint64_t at = lora_get_be64((const uint8_t *)k);
	return (at > id) - (at < id);
}

/* Steps of Next tried before a Seek when `from` lies ahead. */
#define NODE_SCAN_STEPS 4

/* Positions the scan cursor on the first key >= from: 1 there, 0 past
 * the last node. */
static int node_seek_ge(struct sto_view *v, uint64_t from, int *rv)
{
	uint8_t k[8];
	size_t klen;
	lora_put_be64(k, from);
	*rv = 0;
	if (!v->scan_it) {
		v->scan_it = rocksdb_create_iterator_cf(v->s->db, v->ro,
		                                        v->s->cf[STO_CF_NODES]);
		if (!v->scan_it) {
			*rv = LORA_ENOMEM;
			return 0;
		}
	}
	rocksdb_iterator_t *it = v->scan_it;
	int seek = 1;
	if (rocksdb_iter_valid(it)) {
		/* node keys are 8 bytes; anything else is corruption, which
		 * a Seek and the record checks below report */
		const char *cur = rocksdb_iter_key(it, &klen);
		int c = klen == 8 ? key_vs(cur, from) : 1;
		seek = c > 0;
		for (int n = 0; c < 0; n++) {
			if (n == NODE_SCAN_STEPS) {
				seek = 1;
				break;
			}
			rocksdb_iter_next(it);
			if (!rocksdb_iter_valid(it))
				break;
			cur = rocksdb_iter_key(it, &klen);
			c = klen == 8 ? key_vs(cur, from) : 1;
			seek = klen != 8;
		}
	}
	if (seek)
		rocksdb_iter_seek(it, (const char *)k, 8);
	if (rocksdb_iter_valid(it))
		return 1;
	char *err = NULL;
	rocksdb_iter_get_error(it, &err);
	if (err) {
		rocksdb_iter_destroy(it);
		v->scan_it = NULL;
		*rv = sto_rocks_err(err, NULL, "scan nodes");
	}
	return 0;
}

/* Token of label `label` (the last one is remembered); -1 when unknown. */
static int64_t view_label_tok(struct sto_view *v, const char *label)
{
	if (v->scan_label[0] && !strcmp(v->scan_label, label))
		return v->scan_tok;
	size_t len = strlen(label);
	int64_t t = sto_tok_find(v->s, STO_TOK_LABEL, label, len);
	if (t >= 0 && len < STO_VIEW_KEY_NAME_BYTES) {
		memcpy(v->scan_label, label, len + 1);
		v->scan_tok = t;
	}
	return t;
}

/* sto_view_next_node over the node table. */
static int next_node_table(struct sto_view *v, struct sto_ntab *t, int64_t tok,
                           uint64_t from, uint64_t *id)
{
	size_t n = sto_ntab_count(t);
	for (size_t i = sto_ntab_find_ge(t, from); i < n; i++) {
		const uint8_t *p;
		size_t len;
		uint64_t at = sto_ntab_id(t, i, &p, &len);
		int has = 1;
		if (tok >= 0 &&
		    sto_rec_node_has_label(p, len, (uint32_t)tok, &has))
			return LORA_ECORRUPT;
		if (has) {
			v->ncur = i;
			*id = at;
			return 0;
		}
	}
	v->ncur = SIZE_MAX;
	return LORA_ENOTFOUND;
}

/* The node table is built by a walk over the nodes CF that starts at the
 * first node and goes on, call after call, to the last one. Starts or
 * continues it for a call asking for ids from `from`. */
static void build_step(struct sto_view *v, uint64_t from)
{
	if (v->nbuild && from != v->nbuild_from) {
		sto_ntab_discard(v->nbuild); /* not one walk */
		v->nbuild = NULL;
	}
	if (!v->nbuild && from == 0 && v->ngen != STO_NGEN_UNKNOWN &&
	    atomic_load(&v->s->ntab_big_gen) != v->ngen + 1 && !view_ntab(v)) {
		v->nbuild = sto_ntab_build_new(v->ngen);
		v->nbuild_from = 0;
	}
}

/* Adds the record the scan cursor is on to the table being built. */
static void build_add(struct sto_view *v, const char *k, const uint8_t *p,
                      size_t len)
{
	if (!v->nbuild)
		return;
	int rv = sto_ntab_build_add(v->nbuild,
	                            lora_get_be64((const uint8_t *)k), p, len);
	if (rv) {
		sto_ntab_discard(v->nbuild); /* too big, or no memory */
		v->nbuild = NULL;
		if (rv == LORA_ELIMIT) /* not again for this state */
			atomic_store(&v->s->ntab_big_gen, v->ngen + 1);
	}
}

/* The walk reached the last node: the table is complete. */
static void build_done(struct sto_view *v)
{
	if (!v->nbuild)
		return;
	sto_ntab_publish(v->s, v->nbuild);
	v->nbuild = NULL;
	v->ntab = sto_ntab_get(v->s, v->ngen);
}

int sto_view_next_node(struct sto_view *v, const char *label, uint64_t from,
                       uint64_t *id)
{
	int64_t tok = label ? view_label_tok(v, label) : -1;
	int rv;
	if (label && tok < 0)
		return LORA_ENOTFOUND;
	struct sto_ntab *t = view_ntab(v);
	if (t)
		return next_node_table(v, t, tok, from, id);
	build_step(v, from);
	for (int have = node_seek_ge(v, from, &rv); have;
	     rocksdb_iter_next(v->scan_it),
	         have = rocksdb_iter_valid(v->scan_it)) {
		size_t klen, len;
		const char *k = rocksdb_iter_key(v->scan_it, &klen);
		if (klen != 8)
			return LORA_ECORRUPT;
		const uint8_t *p =
		    (const uint8_t *)rocksdb_iter_value(v->scan_it, &len);
		int has = 1;
		if (label &&
		    sto_rec_node_has_label(p, len, (uint32_t)tok, &has))
			return LORA_ECORRUPT;
		build_add(v, k, p, len);
		if (has) {
			*id = lora_get_be64((const uint8_t *)k);
			v->nbuild_from = *id + 1;
			return 0;
		}
	}
	if (rv)
		return rv;
	char *err = NULL;
	if (v->scan_it) {
		rocksdb_iter_get_error(v->scan_it, &err);
		if (err) {
			rocksdb_iter_destroy(v->scan_it);
			v->scan_it = NULL;
			return sto_rocks_err(err, NULL, "scan nodes");
		}
	}
	build_done(v);
	return LORA_ENOTFOUND;
}

/* ---- grouping -------------------------------------------------------- */

/* The groups of sto_view_group_by_prop: the stored value bytes of each
 * (in `keys`), found by an open-addressing hash of those bytes. */
struct groups {
	struct sto_group *g;
	size_t n, cap;
	struct lora_buf keys;
	uint32_t *off, *len; /* group i's bytes: keys.data + off[i] */
	uint32_t *slots;     /* index + 1, 0 empty; 2 * STO_GROUPS_MAX */
};

#define GROUP_SLOTS (2u * STO_GROUPS_MAX) /* a power of two */

static uint32_t bytes_hash(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Counts node id into the group of value bytes p (NULL: absent). */
static int group_add(struct groups *gs, uint64_t id, const uint8_t *p, size_t n)
{
	static const uint8_t absent = 0xff; /* no Value starts with it */
	if (!p) {
		p = &absent;
		n = 1;
	}
	uint32_t i = bytes_hash(p, n) & (GROUP_SLOTS - 1);
	for (; gs->slots[i]; i = (i + 1) & (GROUP_SLOTS - 1)) {
		size_t k = gs->slots[i] - 1;
		if (gs->len[k] == n &&
		    !memcmp((const uint8_t *)gs->keys.data + gs->off[k], p,
		            n)) {
			gs->g[k].count++;
			return 0;
		}
	}
	if (gs->n == STO_GROUPS_MAX)
		return LORA_ENOTFOUND;
	if (gs->n == gs->cap) {
		size_t c = gs->cap ? gs->cap * 2 : 64;
		struct sto_group *g = lora_realloc(gs->g, c * sizeof(*g));
		uint32_t *o = g ? lora_realloc(gs->off, c * sizeof(*o)) : NULL;
		uint32_t *l = o ? lora_realloc(gs->len, c * sizeof(*l)) : NULL;
		if (g)
			gs->g = g;
		if (o)
			gs->off = o;
		if (!l)
			return LORA_ENOMEM;
		gs->len = l;
		gs->cap = c;
	}
	if (gs->keys.len + n > UINT32_MAX)
		return LORA_ENOTFOUND;
	gs->off[gs->n] = (uint32_t)gs->keys.len;
	gs->len[gs->n] = (uint32_t)n;
	if (lora_buf_append(&gs->keys, p, n))
		return LORA_ENOMEM;
	gs->g[gs->n] = (struct sto_group){id, 1};
	gs->slots[i] = (uint32_t)++gs->n;
	return 0;
}

/* one node of the grouping walk: the cursor is on it */
static int group_node(struct sto_view *v, struct groups *gs, uint64_t id,
                      int64_t tok)
{
	const uint8_t *p, *val = NULL;
	size_t len, vlen = 0;
	uint32_t nvec = 0;
	int rv = node_cursor(v, id, &p, &len);
	if (!rv)
		rv = sto_rec_node_prop(p, len,
		                       tok < 0 ? UINT32_MAX : (uint32_t)tok,
		                       &val, &vlen, &nvec);
	if (rv == LORA_ENOTFOUND) {
		if (nvec && tok >= 0)
			return LORA_ENOTFOUND; /* maybe a vector: not here */
		val = NULL;
	} else if (rv) {
		return rv;
	}
	return group_add(gs, id, val, vlen);
}

int sto_view_group_by_prop(struct sto_view *v, const char *label,
                           const char *key, uint64_t deadline_ms,
                           struct sto_group **out, size_t *n, uint64_t *scanned)
{
	struct groups gs = {0};
	*out = NULL;
	*n = 0;
	*scanned = 0;
	gs.slots = lora_calloc(GROUP_SLOTS, sizeof(uint32_t));
	if (!gs.slots)
		return LORA_ENOMEM;
	int64_t tok = view_key_tok(v, key);
	uint64_t id, from = 0;
	int rv;
	int grv = 0;
	while ((rv = sto_view_next_node(v, label, from, &id)) == 0) {
		++*scanned;
		if (deadline_ms && *scanned % STO_GROUP_CHECK_NODES == 0 &&
		    lora_now_ms() > deadline_ms)
			grv = LORA_ETIMEOUT;
		if (grv || (grv = group_node(v, &gs, id, tok)) ||
		    id == UINT64_MAX)
			break;
		from = id + 1;
	}
	if (rv == LORA_ENOTFOUND) /* the end of the scan */
		rv = 0;
	if (grv)
		rv = grv;
	lora_free(gs.slots);
	lora_free(gs.off);
	lora_free(gs.len);
	lora_buf_free(&gs.keys);
	if (rv) {
		lora_free(gs.g);
		return rv;
	}
	*out = gs.g;
	*n = gs.n;
	return 0;
}

/* The stored bytes of property `key` of node id: 0 with *val, *vlen (a
 * packed Value, borrowed), or with *val NULL and *vec 1 for a vector
 * property; *val NULL and *vec 0 when the node has no such property. */
static int node_prop_bytes(struct sto_view *v, uint64_t id, const char *key,
                           const uint8_t **val, size_t *vlen, int *vec,
                           int64_t *tok)
{
	const uint8_t *p = NULL;
	size_t len = 0;
	uint32_t nvec;
	*val = NULL;
	*vec = 0;
	int rv = node_cursor(v, id, &p, &len);
	if (rv)
		return rv;
	*tok = view_key_tok(v, key);
	if (*tok < 0) /* no node has it; still check the record decodes */
		rv = sto_rec_node_prop(p, len, UINT32_MAX, val, vlen, &nvec);
	else
		rv =
		    sto_rec_node_prop(p, len, (uint32_t)*tok, val, vlen, &nvec);
	if (rv != LORA_ENOTFOUND)
		return rv;
	*val = NULL;
	if (*tok < 0 || !nvec)
		return 0;
	int in_col = sto_ncache_node_vector(v, id, key, (uint32_t)*tok,
	                                    &v->vrow, &v->vdim);
	if (in_col >= 0) {
		*vec = in_col ? 2 : 0; /* 2: v->vrow */
		return 0;
	}
	uint8_t vk[STO_VEC_KEY_BYTES];
	sto_key_vec(vk, LORA__ENTITY_KIND__ENTITY_NODE, id, (uint32_t)*tok);
	rocksdb_pinnableslice_t *ps;
	char *err = NULL;
	ps = rocksdb_get_pinned_cf(v->s->db, v->ro, v->s->cf[STO_CF_VECTORS],
	                           (const char *)vk, sizeof(vk), &err);
	if (err)
		return sto_rocks_err(err, NULL, "read vector");
	*vec = ps != NULL;
	rocksdb_pinnableslice_destroy(ps);
	return 0;
}

int sto_view_node_prop(struct sto_view *v, uint64_t id, const char *key,
                       Lora__Value **out)
{
	const uint8_t *val;
	size_t vlen;
	int vec;
	int64_t tok;
	*out = NULL;
	int rv = node_prop_bytes(v, id, key, &val, &vlen, &vec, &tok);
	if (rv || (!val && !vec))
		return rv;
	if (val)
		return sto_value_unpack(val, vlen, out);
	Lora__Value *x = lora_malloc(sizeof(*x));
	if (!x)
		return LORA_ENOMEM;
	lora__value__init(x);
	x->kind_case = LORA__VALUE__KIND_VECTOR_VALUE;
	rv = sto_view_vector(v, LORA__ENTITY_KIND__ENTITY_NODE, id, key,
	                     &x->vector_value);
	if (rv) {
		lora_free(x);
		return rv == LORA_ENOTFOUND ? LORA_ECORRUPT : rv;
	}
	*out = x;
	return 0;
}

int sto_view_node_prop_ref(struct sto_view *v, uint64_t id, const char *key,
                           struct sto_prop_ref *out)
{
	const uint8_t *val;
	size_t vlen;
	int vec;
	int64_t tok;
	memset(out, 0, sizeof(*out));
	int rv = node_prop_bytes(v, id, key, &val, &vlen, &vec, &tok);
	if (rv)
		return rv;
	if (!val) {
		out->kind = vec == 2 ? STO_REF_F32
		            : vec    ? STO_REF_OTHER
		                     : STO_REF_ABSENT;
		out->f32 = v->vrow;
		out->dim = v->vdim;
		out->f32_stride = STO_VCOL_BLOCK;
		return 0;
	}
	return sto_value_ref(val, vlen, out);
}

int sto_view_node_has_labels(struct sto_view *v, uint64_t id,
                             const char *const *labels, size_t n, int *has)
{
	const uint8_t *p = NULL;
	size_t len = 0;
	*has = 0;
	int rv = node_cursor(v, id, &p, &len);
	if (rv)
		return rv;
	*has = 1;
	for (size_t i = 0; i < n && *has; i++) {
		int64_t tok = view_label_tok(v, labels[i]);
		if (tok < 0) { /* no node has it */
			*has = 0;
			break;
		}
		if (sto_rec_node_has_label(p, len, (uint32_t)tok, has))
			return LORA_ECORRUPT;
	}
	return 0;
}

/* Appends one property entry (key name + value) to an entry array. */
static int add_entry(Lora__MapEntry **arr, size_t *n, const char *key,
                     Lora__Value *val)
{
	Lora__MapEntry *e = lora_malloc(sizeof(*e));
	char *k = key ? lora_strdup(key) : NULL;
	if (!e || !k) {
		lora_free(e);
		lora_free(k);
		lora__value__free_unpacked(val, &lora_pb_allocator);
		return key ? LORA_ENOMEM : LORA_ECORRUPT;
	}
	lora__map_entry__init(e);
	e->key = k;
	e->value = val;
	arr[(*n)++] = e;
	return 0;
}

static int build_props(struct sto_view *v, const struct sto_rec *r,
                       Lora__MapEntry ***out, size_t *n)
{
	*out = lora_calloc(r->nprops + r->nvec + 1, sizeof(**out));
	if (!*out)
		return LORA_ENOMEM;
	for (uint32_t i = 0; i < r->nprops; i++) {
		const struct sto_prop *p = &r->props[i];
		Lora__Value *val;
		int rv = sto_value_unpack(
		    (const uint8_t *)r->data.data + p->off, p->len, &val);
		if (!rv)
			rv = add_entry(*out, n,
			               sto_tok_name(v->s, STO_TOK_KEY, p->key),
			               val);
		if (rv)
			return rv;
	}
	return 0;
}

/* Adds the vector properties of an entity (nvec of them). */
static int build_vectors(struct sto_view *v, int entity, uint64_t id,
                         uint32_t nvec, Lora__MapEntry **arr, size_t *n)
{
	uint8_t pfx[9];
	pfx[0] = (uint8_t)entity;
	lora_put_be64(pfx + 1, id);
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(
	    v->s->db, v->ro, v->s->cf[STO_CF_VECTORS]);
	int rv = 0;
	uint32_t seen = 0;
	for (rocksdb_iter_seek(it, (const char *)pfx, 9);
	     !rv && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
		if (klen != STO_VEC_KEY_BYTES || memcmp(k, pfx, 9))
			break;
		if (++seen > nvec) {
			rv = LORA_ECORRUPT; /* more than the record says */
			break;
		}
		const uint8_t *p =
		    (const uint8_t *)rocksdb_iter_value(it, &vlen);
		Lora__Value *val = lora_malloc(sizeof(*val));
		if (!val) {
			rv = LORA_ENOMEM;
			break;
		}
		lora__value__init(val);
		val->kind_case = LORA__VALUE__KIND_VECTOR_VALUE;
		val->vector_value =
		    lora__vector__unpack(&lora_pb_allocator, vlen, p);
		if (!val->vector_value) {
			lora_free(val);
			rv = LORA_ECORRUPT;
			break;
		}
		rv = add_entry(
		    arr, n,
		    sto_tok_name(v->s, STO_TOK_KEY, lora_get_be32(k + 9)), val);
	}
	return sto_iter_close(it, rv, NULL, "scan vectors");
}

int sto_view_build_node(struct sto_view *v, uint64_t id,
                        const struct sto_rec *r, Lora__NodeValue **out)
{
	Lora__NodeValue *n = lora_malloc(sizeof(*n));
	if (!n)
		return LORA_ENOMEM;
	lora__node_value__init(n);
	n->id = id;
	int rv = 0;
	n->labels = lora_calloc(r->nlabels + 1, sizeof(*n->labels));
	if (!n->labels)
		rv = LORA_ENOMEM;
	for (uint32_t i = 0; !rv && i < r->nlabels; i++) {
		const char *name =
		    sto_tok_name(v->s, STO_TOK_LABEL, r->labels[i]);
		if (!name) {
			rv = LORA_ECORRUPT;
			break;
		}
		if (!(n->labels[i] = lora_strdup(name)))
			rv = LORA_ENOMEM;
		else
			n->n_labels++;
	}
	if (!rv)
		rv = build_props(v, r, &n->properties, &n->n_properties);
	if (!rv && r->nvec)
		rv = build_vectors(v, LORA__ENTITY_KIND__ENTITY_NODE, id,
		                   r->nvec, n->properties, &n->n_properties);
	if (rv) {
		lora__node_value__free_unpacked(n, &lora_pb_allocator);
		return rv;
	}
	*out = n;
	return 0;
}

int sto_view_node_ex(struct sto_view *v, uint64_t id, unsigned flags,
                     Lora__NodeValue **out, uint32_t *n_vectors)
{
	struct sto_rec r = {0};
	int rv = view_rec(v, 0, id, &r);
	if (!rv && n_vectors)
		*n_vectors = r.nvec;
	if (!rv && (flags & STO_NODE_NO_VECTORS))
		r.nvec = 0; /* build_node reads the vectors CF only if nvec */
	if (!rv)
		rv = sto_view_build_node(v, id, &r, out);
	sto_rec_free(&r);
	return rv;
}

int sto_view_node(struct sto_view *v, uint64_t id, Lora__NodeValue **out)
{
	return sto_view_node_ex(v, id, 0, out, NULL);
}

static int build_edge(struct sto_view *v, uint64_t id, const struct sto_rec *r,
                      Lora__RelValue **out)
{
	Lora__RelValue *e = lora_malloc(sizeof(*e));
	if (!e)
		return LORA_ENOMEM;
	lora__rel_value__init(e);
	e->id = id;
	e->start_id = r->from;
	e->end_id = r->to;
	const char *type = sto_tok_name(v->s, STO_TOK_TYPE, r->type);
	int rv = type ? 0 : LORA_ECORRUPT;
	if (!rv) {
		char *t = lora_strdup(type);
		if (t)
			e->type = t;
		else
			rv = LORA_ENOMEM;
	}
	if (!rv)
		rv = build_props(v, r, &e->properties, &e->n_properties);
	if (!rv && r->nvec)
		rv = build_vectors(v, LORA__ENTITY_KIND__ENTITY_EDGE, id,
		                   r->nvec, e->properties, &e->n_properties);
	if (rv) {
		lora__rel_value__free_unpacked(e, &lora_pb_allocator);
		return rv;
	}
	*out = e;
	return 0;
}

int sto_view_edge(struct sto_view *v, uint64_t id, Lora__RelValue **out)
{
	struct sto_rec r = {0};
	int rv = view_rec(v, 1, id, &r);
	if (!rv)
		rv = build_edge(v, id, &r, out);
	sto_rec_free(&r);
	return rv;
}

int sto_view_vector(struct sto_view *v, Lora__EntityKind entity,
                    uint64_t owner_id, const char *key, Lora__Vector **out)
{
	int64_t kt = sto_tok_find(v->s, STO_TOK_KEY, key, strlen(key));
	if (kt < 0)
		return LORA_ENOTFOUND;
	uint8_t k[STO_VEC_KEY_BYTES];
	char *val;
	size_t vlen;
	sto_key_vec(k, (uint32_t)entity, owner_id, (uint32_t)kt);
	int rv =
	    sto_get(v->s, v->ro, STO_CF_VECTORS, k, sizeof(k), &val, &vlen);
	if (rv)
		return rv;
	if (!val)
		return LORA_ENOTFOUND;
	*out = lora__vector__unpack(&lora_pb_allocator, vlen, (uint8_t *)val);
	rocksdb_free(val);
	return *out ? 0 : LORA_ECORRUPT;
}

static int count_get(struct sto_view *v, char total_key, char tok_key, int kind,
                     const char *name, uint64_t *count)
{
	*count = 0;
	if (!name)
		return sto_meta_get_u64(v->s, v->ro, &total_key, 1, count);
	int64_t t = sto_tok_find(v->s, kind, name, strlen(name));
	if (t < 0)
		return 0;
	uint8_t k[5];
	k[0] = (uint8_t)tok_key;
	lora_put_be32(k + 1, (uint32_t)t);
	return sto_meta_get_u64(v->s, v->ro, (const char *)k, 5, count);
}

int sto_view_count_nodes(struct sto_view *v, const char *label, uint64_t *count)
{
	return count_get(v, STO_META_NODE_COUNT, STO_META_LABEL_COUNT,
	                 STO_TOK_LABEL, label, count);
}

int sto_view_count_edges(struct sto_view *v, const char *type, uint64_t *count)
{
	return count_get(v, STO_META_EDGE_COUNT, STO_META_TYPE_COUNT,
	                 STO_TOK_TYPE, type, count);
}

/* ---- catalogue and names ----------------------------------------------------
 */

void sto_indexes_free(Lora__CreateIndex **defs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lora__create_index__free_unpacked(defs[i], &lora_pb_allocator);
	lora_free(defs);
}

int sto_view_indexes(struct sto_view *v, Lora__CreateIndex ***out, size_t *n)
{
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(v->s->db, v->ro, v->s->cf[STO_CF_META]);
	Lora__CreateIndex **defs = NULL;
	size_t cnt = 0;
	int rv = 0;
	char start = STO_META_INDEX;
	for (rocksdb_iter_seek(it, &start, 1); !rv && rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		if (rocksdb_iter_key(it, &klen)[0] != STO_META_INDEX)
			break;
		const uint8_t *p =
		    (const uint8_t *)rocksdb_iter_value(it, &vlen);
		Lora__CreateIndex **nd =
		    cnt >= STO_INDEXES_MAX
		        ? NULL
		        : lora_realloc(defs, (cnt + 1) * sizeof(*defs));
		if (!nd) {
			rv = cnt >= STO_INDEXES_MAX ? LORA_ECORRUPT
			                            : LORA_ENOMEM;
			break;
		}
		defs = nd;
		defs[cnt] =
		    lora__create_index__unpack(&lora_pb_allocator, vlen, p);
		if (!defs[cnt])
			rv = LORA_ECORRUPT;
		else
			cnt++;
	}
	rv = sto_iter_close(it, rv, NULL, "scan index catalogue");
	if (rv) {
		sto_indexes_free(defs, cnt);
		return rv;
	}
	*out = defs;
	*n = cnt;
	return 0;
}

int sto_view_catalogue(struct sto_view *v, Lora__CreateIndex *const **out,
                       size_t *n)
{
	if (!v->defs_loaded) {
		int rv = sto_view_indexes(v, &v->defs, &v->ndefs);
		if (rv)
			return rv;
		v->defs_loaded = 1;
	}
	*out = v->defs;
	*n = v->ndefs;
	return 0;
}

void sto_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lora_free(names[i]);
	lora_free(names);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether the meta entry at the iterator belongs to `kind` and names a
 * token in use; sets *tok. 0: skip, 1: take, -1: past the range. */
static int names_pick(rocksdb_iterator_t *it, int kind, uint32_t *tok)
{
	size_t klen, vlen;
	const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
	const uint8_t *val = (const uint8_t *)rocksdb_iter_value(it, &vlen);
	if (kind == STO_TOK_KEY) {
		if (klen != 6 || k[0] != STO_META_TOKEN_NAME || k[1] != kind)
			return -1;
		*tok = lora_get_be32(k + 2);
		return 1;
	}
	char want =
	    kind == STO_TOK_LABEL ? STO_META_LABEL_COUNT : STO_META_TYPE_COUNT;
	if (klen != 5 || k[0] != want)
		return -1;
	*tok = lora_get_be32(k + 1);
	return vlen == 8 && lora_get_be64(val) > 0;
}

int sto_view_names(struct sto_view *v, int kind, char ***out, size_t *n)
{
	if (kind < 0 || kind >= STO_TOK_KINDS)
		return LORA_EINVAL;
	uint8_t start[2] = {STO_META_TOKEN_NAME, (uint8_t)kind};
	if (kind != STO_TOK_KEY)
		start[0] = kind == STO_TOK_LABEL ? STO_META_LABEL_COUNT
		                                 : STO_META_TYPE_COUNT;
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(v->s->db, v->ro, v->s->cf[STO_CF_META]);
	char **names = NULL;
	size_t cnt = 0, cap = 0;
	int rv = 0;
	for (rocksdb_iter_seek(it, (const char *)start,
	                       kind == STO_TOK_KEY ? 2 : 1);
	     !rv && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		uint32_t tok;
		int pick = names_pick(it, kind, &tok);
		if (pick < 0)
			break;
		if (!pick)
			continue;
		const char *name = sto_tok_name(v->s, kind, tok);
		if (!name) {
			rv = LORA_ECORRUPT;
			break;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = lora_realloc(names, cap * sizeof(*nn));
			if (!nn) {
				rv = LORA_ENOMEM;
				break;
			}
			names = nn;
		}
		if (!(names[cnt] = lora_strdup(name)))
			rv = LORA_ENOMEM;
		else
			cnt++;
	}
	rv = sto_iter_close(it, rv, NULL, "scan names");
	if (rv) {
		sto_names_free(names, cnt);
		return rv;
	}
	if (cnt)
		qsort(names, cnt, sizeof(*names), cmp_names);
	*out = names;
	*n = cnt;
	return 0;
}
