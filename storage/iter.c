/* iter.c - scans over a read view: all nodes, nodes by label, all edges,
 * adjacency, index seeks and vectors.
 *
 * Most scans are a RocksDB iterator over one key prefix, bounded with
 * iterate_upper_bound. Adjacency scans, the hot path of traversals, are
 * point lookups instead: one pinned Get of chunk 0 of (node, direction)
 * and, for nodes with more than STO_ADJ_CHUNK_ENTRIES_MAX edges, one Get
 * per further chunk, decoded entry by entry as the caller advances.
 */
#include <string.h>

#include "stoInt.h"

enum it_kind {
	IT_EMPTY,
	IT_NODES,
	IT_LABEL,
	IT_EDGES,
	IT_ADJ,
	IT_SEEK,
	IT_VEC_ALL,
	IT_VEC_LABEL,
	IT_VEC_REL /* relationship vectors, by type */
};

#define IT_PREFIX_BYTES 16

struct sto_iter {
	struct sto_view *v;
	enum it_kind kind;
	rocksdb_iterator_t *it;
	rocksdb_readoptions_t *ro; /* own options (bounded scans) or NULL */
	int lent; /* it is the view's seek iterator (seek_take), given back */
	int started;
	uint8_t pfx[IT_PREFIX_BYTES]; /* every key must start with this */
	size_t plen;
	uint8_t upper[IT_PREFIX_BYTES]; /* iterate_upper_bound bytes */
	/* adjacency */
	uint32_t type_tok; /* only entries of this type; UINT32_MAX: all */
	uint64_t node;
	int phase, both; /* phase 0: outgoing entries, 1: incoming */
	rocksdb_pinnableslice_t *chunk; /* current chunk value, or NULL */
	const uint8_t *p, *end;         /* next entry, end of the chunk */
	uint32_t left, no, nchunks;     /* entries left, chunk number */
	/* index seek */
	struct lora_buf lo, hi; /* encoded bounds (empty: unbounded) */
	int lo_incl, hi_incl;
	uint8_t cls; /* value class every hit must have; 0: any */
	/* vectors */
	uint32_t key;
	Lora__Vector *vec;
	int raw;                 /* hand out the bytes, do not unpack */
	uint32_t rtype;          /* IT_VEC_REL: the type; UINT32_MAX: any */
	rocksdb_iterator_t *vit; /* label scans: the vectors CF, moving on */
	uint64_t deadline_ms;    /* sto_iter_set_deadline; 0: none */
	uint64_t walked;         /* keys stepped over */
};

void sto_iter_set_deadline(struct sto_iter *it, uint64_t deadline_ms)
{
	it->deadline_ms = deadline_ms;
}

/* ---- creation
 * ---------------------------------------------------------------- */

static int iter_new(struct sto_view *v, enum it_kind kind,
                    struct sto_iter **out)
{
	struct sto_iter *it = lora_calloc(1, sizeof(*it));
	if (!it)
		return LORA_ENOMEM;
	it->v = v;
	it->kind = kind;
	it->type_tok = UINT32_MAX;
	*out = it;
	return 0;
}

/* Opens a bounded iterator on cf for keys starting with pfx. */
static void iter_bounded(struct sto_iter *it, int cf, const void *pfx,
                         size_t plen)
{
	struct sto_view *v = it->v;
	LORA_ASSERT(plen <= IT_PREFIX_BYTES);
	memcpy(it->pfx, pfx, plen);
	it->plen = plen;
	it->ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_snapshot(it->ro, v->snap);
	if (v->bulk)
		rocksdb_readoptions_set_fill_cache(it->ro, 0);
	/* Upper bound: the prefix plus one, carrying over 0xff bytes. */
	memcpy(it->upper, pfx, plen);
	size_t ulen = plen;
	while (ulen > 0 && it->upper[ulen - 1] == 0xff)
		ulen--;
	if (ulen > 0) {
		it->upper[ulen - 1]++;
		rocksdb_readoptions_set_iterate_upper_bound(
		    it->ro, (const char *)it->upper, ulen);
	}
	it->it = rocksdb_create_iterator_cf(v->s->db, it->ro, v->s->cf[cf]);
}

static void seek_give_back(struct sto_iter *it);

void sto_iter_free(struct sto_iter *it)
{
	if (!it)
		return;
	if (it->lent)
		seek_give_back(it);
	if (it->it)
		rocksdb_iter_destroy(it->it);
	if (it->vit)
		rocksdb_iter_destroy(it->vit);
	if (it->chunk)
		rocksdb_pinnableslice_destroy(it->chunk);
	rocksdb_readoptions_destroy(it->ro);
	lora_buf_free(&it->lo);
	lora_buf_free(&it->hi);
	if (it->vec)
		lora__vector__free_unpacked(it->vec, &lora_pb_allocator);
	lora_free(it);
}

int sto_view_scan_nodes(struct sto_view *v, struct sto_iter **out)
{
	int rv = iter_new(v, IT_NODES, out);
	if (!rv)
		iter_bounded(*out, STO_CF_NODES, "", 0);
	return rv;
}

int sto_view_scan_edges(struct sto_view *v, struct sto_iter **out)
{
	uint8_t p = STO_K_EDGE;
	int rv = iter_new(v, IT_EDGES, out);
	if (!rv)
		iter_bounded(*out, STO_CF_EDGES, &p, 1);
	return rv;
}

int sto_view_scan_label(struct sto_view *v, const char *label,
                        struct sto_iter **out)
{
	int64_t t =
	    label ? sto_tok_find(v->s, STO_TOK_LABEL, label, strlen(label))
	          : -1;
	int rv = iter_new(v, t < 0 ? IT_EMPTY : IT_LABEL, out);
	if (rv || t < 0)
		return rv;
	uint8_t p[5];
	p[0] = STO_K_LABEL;
	lora_put_be32(p + 1, (uint32_t)t);
	iter_bounded(*out, STO_CF_INDEX, p, 5);
	return 0;
}

int sto_view_scan_adjacent(struct sto_view *v, uint64_t node_id,
                           enum sto_dir dir, const char *type,
                           struct sto_iter **out)
{
	int64_t t =
	    type ? sto_tok_find(v->s, STO_TOK_TYPE, type, strlen(type)) : 0;
	int empty = t < 0 || !(dir & STO_BOTH);
	int rv = iter_new(v, empty ? IT_EMPTY : IT_ADJ, out);
	if (rv || empty)
		return rv;
	struct sto_iter *it = *out;
	it->node = node_id;
	it->both = dir == STO_BOTH;
	it->phase = dir == STO_IN;
	if (type)
		it->type_tok = (uint32_t)t;
	return 0;
}

/* ---- index seek
 * ------------------------------------------------------------------ */

/* Whether the snapshot's catalogue has an index with entries on (label,
 * key) of nodes (node RANGE, UNIQUE, NODE_KEY; edge = 0) or on (type, key)
 * of relationships (RANGE; edge = 1). The catalogue is read once per
 * view. */
static int seek_indexed(struct sto_view *v, int edge, const char *label,
                        const char *key, int *yes)
{
	Lora__CreateIndex *const *defs;
	size_t ndefs;
	int rv = sto_view_catalogue(v, &defs, &ndefs);
	if (rv)
		return rv;
	*yes = 0;
	for (size_t i = 0; i < ndefs; i++) {
		const Lora__CreateIndex *d = defs[i];
		if (!sto_index_has_entries(d) ||
		    (d->entity == LORA__ENTITY_KIND__ENTITY_EDGE) != edge ||
		    strcmp(d->label, label))
			continue;
		for (size_t j = 0; j < d->n_properties; j++)
			if (!strcmp(d->properties[j], key))
				*yes = 1;
	}
	return 0;
}

static int seek_bounds(struct sto_iter *it, const Lora__Value *lo,
                       const Lora__Value *hi)
{
	uint8_t lc = lo ? sto_enc_class(lo) : 0,
	        hc = hi ? sto_enc_class(hi) : 0;
	if ((lo && !lc) || (hi && !hc) || (lo && hi && lc != hc))
		return LORA_ENOTFOUND; /* nothing can match */
	it->cls = lo ? lc : hc;
	int rv = lo ? sto_enc_value(&it->lo, lo) : 0;
	if (!rv && hi)
		rv = sto_enc_value(&it->hi, hi);
	if (rv == LORA_EINVAL)
		rv = LORA_ENOTFOUND;
	return rv;
}

/* Bounds it to the index prefix p (STO_VIEW_SEEK_PREFIX_BYTES) with the
 * view's seek iterator when it is free (made on first use, made afresh
 * for another prefix), else with an iterator of its own. The caller's
 * first step Seeks, so where the lent iterator stood does not matter. */
static void seek_take(struct sto_iter *it, const uint8_t *p)
{
	struct sto_view *v = it->v;
	size_t n = STO_VIEW_SEEK_PREFIX_BYTES;
	if (v->seek.lent || v->bulk) {
		iter_bounded(it, STO_CF_INDEX, p, n);
		return;
	}
	if (v->seek.it && memcmp(v->seek.pfx, p, n)) {
		rocksdb_iter_destroy(v->seek.it);
		v->seek.it = NULL;
	}
	if (!v->seek.it) {
		if (!v->seek.ro) {
			v->seek.ro = rocksdb_readoptions_create();
			rocksdb_readoptions_set_snapshot(v->seek.ro, v->snap);
		}
		memcpy(v->seek.pfx, p, n);
		memcpy(v->seek.upper, p, n);
		size_t ulen = n;
		while (ulen > 0 && v->seek.upper[ulen - 1] == 0xff)
			ulen--;
		LORA_ASSERT(ulen > 0); /* p[0] is 'P' or 'R' */
		v->seek.upper[ulen - 1]++;
		rocksdb_readoptions_set_iterate_upper_bound(
		    v->seek.ro, (const char *)v->seek.upper, ulen);
		v->seek.it = rocksdb_create_iterator_cf(v->s->db, v->seek.ro,
		                                        v->s->cf[STO_CF_INDEX]);
	}
	memcpy(it->pfx, p, n);
	it->plen = n;
	it->it = v->seek.it;
	it->lent = 1;
	v->seek.lent = 1;
}

/* Hands the view's seek iterator back (it->it no longer the caller's);
 * one that met an error is dropped, so the next seek starts clean. */
static void seek_give_back(struct sto_iter *it)
{
	struct sto_view *v = it->v;
	LORA_ASSERT(v->seek.lent && it->it == v->seek.it);
	char *err = NULL;
	rocksdb_iter_get_error(it->it, &err);
	if (err) {
		rocksdb_free(err);
		rocksdb_iter_destroy(v->seek.it);
		v->seek.it = NULL;
	}
	v->seek.lent = 0;
	it->it = NULL;
	it->lent = 0;
}

static int index_seek(struct sto_view *v, int edge, const char *label,
                      const char *key, const Lora__Value *lo, int lo_incl,
                      const Lora__Value *hi, int hi_incl, struct sto_iter **out)
{
	int yes, rv = seek_indexed(v, edge, label, key, &yes);
	if (rv)
		return rv;
	if (!yes)
		return LORA_ENOTFOUND;
	int64_t lt = sto_tok_find(v->s, edge ? STO_TOK_TYPE : STO_TOK_LABEL,
	                          label, strlen(label));
	int64_t kt = sto_tok_find(v->s, STO_TOK_KEY, key, strlen(key));
	if ((rv = iter_new(v, IT_SEEK, out)))
		return rv;
	struct sto_iter *it = *out;
	it->lo_incl = lo_incl;
	it->hi_incl = hi_incl;
	rv = lt < 0 || kt < 0 ? LORA_ENOTFOUND : seek_bounds(it, lo, hi);
	if (rv == LORA_ENOTFOUND) {
		it->kind = IT_EMPTY;
		return 0;
	}
	if (rv) {
		sto_iter_free(it);
		return rv;
	}
	uint8_t p[9];
	p[0] = edge ? STO_K_RPROP : STO_K_PROP;
	lora_put_be32(p + 1, (uint32_t)lt);
	lora_put_be32(p + 5, (uint32_t)kt);
	seek_take(it, p);
	return 0;
}

int sto_view_index_seek(struct sto_view *v, const char *label, const char *key,
                        const Lora__Value *lo, int lo_incl,
                        const Lora__Value *hi, int hi_incl,
                        struct sto_iter **out)
{
	return index_seek(v, 0, label, key, lo, lo_incl, hi, hi_incl, out);
}

/* The node of the entry it is at, when under prefix p (p->len + 8). */
static int join_at(rocksdb_iterator_t *it, const struct lora_buf *p,
                   uint64_t *id, _Atomic uint64_t *seen)
{
	if (!rocksdb_iter_valid(it))
		return 0;
	if (seen)
		atomic_fetch_add(seen, 1);
	size_t klen;
	const char *k = rocksdb_iter_key(it, &klen);
	if (klen != p->len + 8 || memcmp(k, p->data, p->len))
		return 0;
	*id = lora_get_be64((const uint8_t *)k + p->len);
	return 1;
}

/* Moves it to the first entry under p at or after node x (join_at);
 * -1 out of memory. */
static int join_seek(rocksdb_iterator_t *it, struct lora_buf *p, uint64_t x,
                     uint64_t *id, _Atomic uint64_t *seen)
{
	uint8_t b[8];
	size_t at = p->len;
	lora_put_be64(b, x);
	if (lora_buf_append(p, b, 8))
		return -1;
	rocksdb_iter_seek(it, p->data, p->len);
	p->len = at;
	return join_at(it, p, id, seen);
}

int sto_join_ids(rocksdb_iterator_t *const *it, struct lora_buf *p, size_t n,
                 struct lora_buf *ids, _Atomic uint64_t *seen)
{
	uint64_t x = 0;
	int rv = 0;
	for (int live = n > 0; live && !rv;) {
		size_t agree = 0;
		for (size_t i = 0; agree < n; i = (i + 1) % n) {
			uint64_t id;
			int at = join_seek(it[i], &p[i], x, &id, seen);
			if (at <= 0) {
				rv = at < 0 ? LORA_ENOMEM : 0;
				live = 0;
				break;
			}
			agree = id == x ? agree + 1 : 1;
			x = id;
		}
		if (!live)
			break;
		uint8_t b[8];
		lora_put_be64(b, x);
		rv = lora_buf_append(ids, b, 8);
		live = x++ != UINT64_MAX;
	}
	return rv;
}

/* p[k]: 'P' label key_k <vals[k] encoded>; LORA_ENOTFOUND when a key is
 * not indexed or a value has no index encoding */
static int join_prefixes(struct sto_view *v, const char *label, size_t n,
                         const char *const *keys,
                         const Lora__Value *const *vals, struct lora_buf *p)
{
	int64_t lt = sto_tok_find(v->s, STO_TOK_LABEL, label, strlen(label));
	int rv = 0;
	for (size_t k = 0; !rv && k < n; k++) {
		int yes;
		int64_t kt =
		    sto_tok_find(v->s, STO_TOK_KEY, keys[k], strlen(keys[k]));
		rv = seek_indexed(v, 0, label, keys[k], &yes);
		if (!rv && (!yes || lt < 0 || kt < 0 || !vals[k]))
			rv = LORA_ENOTFOUND;
		if (!rv)
			rv = sto_key_prop_prefix(&p[k], (uint32_t)lt,
			                         (uint32_t)kt);
		if (!rv)
			rv = sto_enc_value(&p[k], vals[k]);
	}
	return rv == LORA_EINVAL ? LORA_ENOTFOUND : rv;
}

int sto_view_index_join(struct sto_view *v, const char *label, size_t n,
                        const char *const *keys, const Lora__Value *const *vals,
                        struct lora_buf *ids)
{
	if (!n || n > STO_INDEX_JOIN_KEYS_MAX)
		return LORA_EINVAL;
	struct lora_buf p[STO_INDEX_JOIN_KEYS_MAX] = {{0}};
	rocksdb_iterator_t *it[STO_INDEX_JOIN_KEYS_MAX] = {0};
	int rv = join_prefixes(v, label, n, keys, vals, p);
	for (size_t i = 0; !rv && i < n; i++)
		it[i] = rocksdb_create_iterator_cf(v->s->db, v->ro,
		                                   v->s->cf[STO_CF_INDEX]);
	if (!rv)
		rv = sto_join_ids(it, p, n, ids, NULL);
	for (size_t i = 0; i < n; i++) {
		if (it[i])
			rv = sto_iter_close(it[i], rv, NULL, "index join");
		lora_buf_free(&p[i]);
	}
	return rv;
}

int sto_view_rel_index_seek(struct sto_view *v, const char *type,
                            const char *key, const Lora__Value *lo, int lo_incl,
                            const Lora__Value *hi, int hi_incl,
                            struct sto_iter **out)
{
	return index_seek(v, 1, type, key, lo, lo_incl, hi, hi_incl, out);
}

/* ---- vectors
 * ---------------------------------------------------------------------- */

int sto_view_scan_vectors(struct sto_view *v, const char *label,
                          const char *key, struct sto_iter **out)
{
	int64_t kt = sto_tok_find(v->s, STO_TOK_KEY, key, strlen(key));
	int64_t lt =
	    label ? sto_tok_find(v->s, STO_TOK_LABEL, label, strlen(label)) : 0;
	int empty = kt < 0 || lt < 0;
	uint64_t nl = 0, na = 1;
	if (!empty && label && !sto_view_count_nodes(v, label, &nl) &&
	    !sto_view_count_nodes(v, NULL, &na) && nl == na)
		label = NULL; /* every node has it: skip the label index */
	int rv = iter_new(v,
	                  empty   ? IT_EMPTY
	                  : label ? IT_VEC_LABEL
	                          : IT_VEC_ALL,
	                  out);
	if (rv || empty)
		return rv;
	(*out)->key = (uint32_t)kt;
	if (label) {
		uint8_t p[5];
		p[0] = STO_K_LABEL;
		lora_put_be32(p + 1, (uint32_t)lt);
		iter_bounded(*out, STO_CF_INDEX, p, 5);
	} else {
		uint8_t p = LORA__ENTITY_KIND__ENTITY_NODE;
		iter_bounded(*out, STO_CF_VECTORS, &p, 1);
	}
	return 0;
}

int sto_view_scan_rel_vectors_raw(struct sto_view *v, const char *type,
                                  const char *key, struct sto_iter **out)
{
	int64_t kt = sto_tok_find(v->s, STO_TOK_KEY, key, strlen(key));
	int64_t tt = sto_tok_find(v->s, STO_TOK_TYPE, type, strlen(type));
	int empty = kt < 0 || tt < 0;
	int rv = iter_new(v, empty ? IT_EMPTY : IT_VEC_REL, out);
	if (rv || empty)
		return rv;
	uint64_t nt = 0, na = 1;
	(*out)->raw = 1;
	(*out)->key = (uint32_t)kt;
	(*out)->rtype = (uint32_t)tt;
	if (!sto_view_count_edges(v, type, &nt) &&
	    !sto_view_count_edges(v, NULL, &na) && nt == na)
		(*out)->rtype = UINT32_MAX; /* every edge has it: no check */
	uint8_t p = LORA__ENTITY_KIND__ENTITY_EDGE;
	iter_bounded(*out, STO_CF_VECTORS, &p, 1);
	return 0;
}

int sto_view_scan_vectors_raw(struct sto_view *v, const char *label,
                              const char *key, struct sto_iter **out)
{
	int rv = sto_view_scan_vectors(v, label, key, out);
	if (!rv)
		(*out)->raw = 1;
	return rv;
}

/* ---- next
 * ------------------------------------------------------------------------- */

/* Moves to the next key with the prefix: 1 found, 0 end. */
static int step(struct sto_iter *it, const uint8_t **k, size_t *klen)
{
	if (!it->started) {
		rocksdb_iter_seek(it->it, (const char *)it->pfx, it->plen);
		it->started = 1;
	} else {
		rocksdb_iter_next(it->it);
	}
	if (!rocksdb_iter_valid(it->it))
		return 0;
	*k = (const uint8_t *)rocksdb_iter_key(it->it, klen);
	return *klen >= it->plen && !memcmp(*k, it->pfx, it->plen);
}

static int iter_err(struct sto_iter *it)
{
	char *err = NULL;
	rocksdb_iter_get_error(it->it, &err);
	return err ? sto_rocks_err(err, NULL, "scan") : 0;
}

/* Reads chunk it->no of the current direction. An absent chunk 0 is an
 * empty list; any other absent chunk is corruption. */
static int adj_load(struct sto_iter *it)
{
	struct sto_view *v = it->v;
	uint8_t k[STO_ADJ_KEY_BYTES];
	char *err = NULL;
	sto_key_adj(k, it->node, it->phase ? STO_K_IN : STO_K_OUT, it->no);
	if (it->chunk)
		rocksdb_pinnableslice_destroy(it->chunk);
	it->chunk = rocksdb_get_pinned_cf(v->s->db, v->ro, v->s->cf[STO_CF_ADJ],
	                                  (const char *)k, sizeof(k), &err);
	if (err)
		return sto_rocks_err(err, NULL, "read adjacency");
	it->left = 0;
	it->p = it->end = NULL;
	if (!it->chunk) {
		it->nchunks = 0;
		return it->no ? LORA_ECORRUPT : 0;
	}
	size_t len;
	const uint8_t *val =
	    (const uint8_t *)rocksdb_pinnableslice_value(it->chunk, &len);
	uint32_t nchunks;
	int rv = sto_adj_head(val, len, it->no, &nchunks, &it->left, &it->p);
	if (!it->no)
		it->nchunks = nchunks;
	it->end = val + len;
	return rv;
}

/* Moves to the next chunk or direction: 1 loaded one, 0 at the end. */
static int adj_advance(struct sto_iter *it, int *rv)
{
	if (it->p != it->end) {
		*rv = LORA_ECORRUPT; /* bytes after the last entry */
		return 0;
	}
	if (it->started && it->no + 1 < it->nchunks) {
		it->no++;
	} else if (!it->started) {
		it->started = 1;
	} else if (it->both && it->phase == 0) {
		it->phase = 1;
		it->no = 0;
	} else {
		return 0;
	}
	*rv = adj_load(it);
	return !*rv;
}

static int next_adj(struct sto_iter *it, struct sto_item *item, int *done)
{
	struct sto_adj_ent e;
	int rv = 0;
	for (;;) {
		while (!it->left)
			if (!adj_advance(it, &rv))
				return rv ? rv : (*done = 1, 0);
		it->left--;
		if ((rv = sto_adj_entry(&it->p, it->end, &e)))
			return rv;
		if (it->type_tok == UINT32_MAX || e.type == it->type_tok)
			break;
	}
	item->node_id = it->node;
	item->type = sto_view_type_name(it->v, e.type);
	item->other_id = e.other;
	item->edge_id = e.edge;
	item->outgoing = it->phase == 0;
	*done = 0;
	return item->type ? 0 : LORA_ECORRUPT;
}

static int next_edge(struct sto_iter *it, struct sto_item *item)
{
	size_t vlen;
	const uint8_t *val = (const uint8_t *)rocksdb_iter_value(it->it, &vlen);
	const uint8_t *k;
	size_t klen;
	k = (const uint8_t *)rocksdb_iter_key(it->it, &klen);
	struct sto_rec r = {0};
	int rv = klen == 9 ? sto_rec_decode(&r, 1, val, vlen) : LORA_ECORRUPT;
	if (!rv) {
		item->edge_id = lora_get_be64(k + 1);
		item->node_id = r.from;
		item->other_id = r.to;
		item->outgoing = 1;
		item->type = sto_tok_name(it->v->s, STO_TOK_TYPE, r.type);
		if (!item->type)
			rv = LORA_ECORRUPT;
	}
	sto_rec_free(&r);
	return rv;
}

/* Compares the encoded value part of an index key with a bound. */
static int cmp_bound(const uint8_t *p, size_t n, const struct lora_buf *b)
{
	size_t m = n < b->len ? n : b->len;
	int c = memcmp(p, b->data, m);
	return c ? c : (n > b->len) - (n < b->len);
}

/* 1: take, 0: skip, -1: past the range. */
static int seek_filter(struct sto_iter *it, const uint8_t *k, size_t klen)
{
	const uint8_t *val = k + it->plen;
	size_t n = klen - it->plen - 8;
	if (it->cls && (n == 0 || val[0] != it->cls))
		return n && val[0] < it->cls ? 0 : -1;
	if (it->lo.len) {
		int c = cmp_bound(val, n, &it->lo);
		if (c < 0 || (c == 0 && !it->lo_incl))
			return 0;
	}
	if (it->hi.len) {
		int c = cmp_bound(val, n, &it->hi);
		if (c > 0 || (c == 0 && !it->hi_incl))
			return -1;
	}
	return 1;
}

static int next_seek(struct sto_iter *it, struct sto_item *item, int *done)
{
	const uint8_t *k;
	size_t klen;
	if (!it->started && it->lo.len) {
		/* Start at the lower bound instead of the whole prefix. */
		struct lora_buf start = {0};
		if (lora_buf_append(&start, it->pfx, it->plen) ||
		    lora_buf_append(&start, it->lo.data, it->lo.len)) {
			lora_buf_free(&start);
			return LORA_ENOMEM;
		}
		rocksdb_iter_seek(it->it, start.data, start.len);
		lora_buf_free(&start);
		it->started = 2;
	}
	for (;;) {
		int have;
		if (it->started == 2) {
			it->started = 1;
			have = rocksdb_iter_valid(it->it);
			if (have) {
				k = (const uint8_t *)rocksdb_iter_key(it->it,
				                                      &klen);
				have = klen >= it->plen &&
				       !memcmp(k, it->pfx, it->plen);
			}
		} else {
			have = step(it, &k, &klen);
		}
		if (!have) {
			*done = 1;
			return iter_err(it);
		}
		if (klen < it->plen + 9)
			return LORA_ECORRUPT;
		int f = seek_filter(it, k, klen);
		if (f < 0) {
			*done = 1;
			return 0;
		}
		if (f > 0) {
			/* the node, or the relationship of an 'R' entry */
			item->node_id = item->edge_id =
			    lora_get_be64(k + klen - 8);
			*done = 0;
			return 0;
		}
	}
}

/* Steps of Next tried on the vectors iterator before a Seek. */
#define VEC_CURSOR_STEPS 4

static int key_cmp(const char *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	return c ? c : (alen > blen) - (alen < blen);
}

/* Positions it->vit on key k (a label scan visits nodes in id order, the
 * vectors CF holds them in that order too: mostly one Next): *val, *vlen
 * borrowed until it moves; *val NULL when the node has no such vector. */
static int vec_cursor(struct sto_iter *it, const uint8_t *k, const char **val,
                      size_t *vlen)
{
	struct sto_view *v = it->v;
	size_t klen = 0;
	const char *cur = NULL;
	*val = NULL;
	if (!it->vit) {
		it->vit = rocksdb_create_iterator_cf(
		    v->s->db, v->bulk && v->ro_bulk ? v->ro_bulk : v->ro,
		    v->s->cf[STO_CF_VECTORS]);
		if (!it->vit)
			return LORA_ENOMEM;
	}
	rocksdb_iterator_t *r = it->vit;
	/* from a position before k a few Next (landing past k: absent);
	 * from after it, or when far behind, a Seek */
	int seek = 1;
	if (rocksdb_iter_valid(r)) {
		cur = rocksdb_iter_key(r, &klen);
		int c = key_cmp(cur, klen, k, STO_VEC_KEY_BYTES);
		seek = c > 0;
		for (int n = 0; c < 0; n++) {
			if (n == VEC_CURSOR_STEPS) {
				seek = 1;
				break;
			}
			rocksdb_iter_next(r);
			if (!rocksdb_iter_valid(r))
				break;
			cur = rocksdb_iter_key(r, &klen);
			c = key_cmp(cur, klen, k, STO_VEC_KEY_BYTES);
		}
	}
	if (seek)
		rocksdb_iter_seek(r, (const char *)k, STO_VEC_KEY_BYTES);
	if (!rocksdb_iter_valid(r)) {
		char *err = NULL;
		rocksdb_iter_get_error(r, &err);
		if (err) {
			rocksdb_iter_destroy(r);
			it->vit = NULL;
			return sto_rocks_err(err, NULL, "read vector");
		}
		return 0;
	}
	cur = rocksdb_iter_key(r, &klen);
	if (!key_cmp(cur, klen, k, STO_VEC_KEY_BYTES))
		*val = rocksdb_iter_value(r, vlen);
	return 0;
}

/* *yes = 1 when relationship id has type it->rtype in the view. */
static int rel_of_type(struct sto_iter *it, uint64_t id, int *yes)
{
	uint8_t k[9];
	size_t len;
	char *val;
	uint64_t t;
	*yes = 0;
	sto_key_edge(k, id);
	int rv =
	    sto_get(it->v->s, it->v->ro, STO_CF_EDGES, k, sizeof k, &val, &len);
	if (rv || !val)
		return rv;
	const uint8_t *p = (const uint8_t *)val;
	if (!len || p[0] != 'r' || !sto_get_uvarint(p + 1, p + len, &t))
		rv = LORA_ECORRUPT;
	*yes = !rv && t == it->rtype;
	rocksdb_free(val);
	return rv;
}

/* Loads the vector value at the iterator (IT_VEC_ALL, IT_VEC_REL) or of
 * the node at the label iterator (IT_VEC_LABEL). *take: 1 item set, 0
 * skip. */
static int vec_item(struct sto_iter *it, const uint8_t *k, size_t klen,
                    struct sto_item *item, int *take)
{
	*take = 0;
	const char *val;
	size_t vlen;
	uint64_t node;
	if (it->kind == IT_VEC_ALL || it->kind == IT_VEC_REL) {
		uint8_t ent = it->kind == IT_VEC_REL
		                  ? LORA__ENTITY_KIND__ENTITY_EDGE
		                  : LORA__ENTITY_KIND__ENTITY_NODE;
		if (klen != STO_VEC_KEY_BYTES)
			return LORA_ECORRUPT;
		if (k[0] != ent || lora_get_be32(k + 9) != it->key)
			return 0;
		node = lora_get_be64(k + 1);
		int yes = 1;
		int rv = it->kind == IT_VEC_REL && it->rtype != UINT32_MAX
		             ? rel_of_type(it, node, &yes)
		             : 0;
		if (rv || !yes)
			return rv;
		if (it->kind == IT_VEC_REL)
			item->edge_id = node;
		val = rocksdb_iter_value(it->it, &vlen);
	} else {
		if (klen != STO_LABEL_KEY_BYTES)
			return LORA_ECORRUPT;
		node = lora_get_be64(k + 5);
		uint8_t vk[STO_VEC_KEY_BYTES];
		sto_key_vec(vk, LORA__ENTITY_KIND__ENTITY_NODE, node, it->key);
		int rv = vec_cursor(it, vk, &val, &vlen);
		if (rv || !val)
			return rv;
	}
	if (it->raw) {
		item->node_id = node;
		item->vec_bytes = (const uint8_t *)val;
		item->vec_len = vlen;
		*take = 1;
		return 0;
	}
	if (it->vec)
		lora__vector__free_unpacked(it->vec, &lora_pb_allocator);
	it->vec = lora__vector__unpack(&lora_pb_allocator, vlen,
	                               (const uint8_t *)val);
	if (!it->vec)
		return LORA_ECORRUPT;
	item->node_id = node;
	item->vector = it->vec;
	*take = 1;
	return 0;
}

int sto_iter_next(struct sto_iter *it, struct sto_item *item, int *done)
{
	const uint8_t *k;
	size_t klen;
	*done = 1;
	switch (it->kind) {
	case IT_EMPTY:
		return 0;
	case IT_ADJ: {
		int rv = next_adj(it, item, done);
		if (rv)
			it->kind = IT_EMPTY; /* errors end the scan */
		return rv;
	}
	case IT_SEEK:
		return next_seek(it, item, done);
	default:
		break;
	}
	for (;;) {
		if (!step(it, &k, &klen))
			return iter_err(it);
		if (it->deadline_ms &&
		    ++it->walked % STO_ITER_CHECK_KEYS == 0 &&
		    lora_now_ms() > it->deadline_ms)
			return LORA_ETIMEOUT;
		memset(item, 0, sizeof(*item));
		int rv = 0, take = 1;
		if (it->kind == IT_NODES) {
			if (klen != 8)
				return LORA_ECORRUPT;
			item->node_id = lora_get_be64(k);
		} else if (it->kind == IT_LABEL) {
			if (klen != STO_LABEL_KEY_BYTES)
				return LORA_ECORRUPT;
			item->node_id = lora_get_be64(k + 5);
		} else if (it->kind == IT_EDGES) {
			rv = next_edge(it, item);
		} else {
			rv = vec_item(it, k, klen, item, &take);
		}
		if (rv)
			return rv;
		if (take) {
			*done = 0;
			return 0;
		}
	}
}
