/* apply_index.c - the label + property index and the index catalogue on
 * the apply path: entry maintenance, uniqueness checks, backfill on
 * CREATE INDEX and clean-up on DROP INDEX.
 *
 * One set of entries 'P' label key <value> node serves every RANGE,
 * UNIQUE or NODE_KEY index that covers (label, key); entries exist while
 * at least one such index does (a node key's uniqueness of the combination
 * is checked after the batch, apply_constraint.c). Values that cannot be
 * ordered (maps) are not indexed.
 */
#include <stdatomic.h>
#include <string.h>

#include "applyInt.h"
#include "hnswInt.h"
#include "sto_testing.h"

static const struct sto_catalog *cat_of(struct apply_ctx *c)
{
	return c->cat_copied ? &c->cat : &c->s->cat;
}

int sto_index_has_entries(const Lora__CreateIndex *d)
{
	if (d->entity == LORA__ENTITY_KIND__ENTITY_EDGE)
		return d->kind == LORA__INDEX_KIND__INDEX_RANGE;
	return d->entity == LORA__ENTITY_KIND__ENTITY_NODE &&
	       (d->kind == LORA__INDEX_KIND__INDEX_RANGE ||
	        d->kind == LORA__INDEX_KIND__INDEX_UNIQUE ||
	        d->kind == LORA__INDEX_KIND__INDEX_NODE_KEY);
}

static int def_entity_edge(const Lora__CreateIndex *d)
{
	return d->entity == LORA__ENTITY_KIND__ENTITY_EDGE;
}

static int def_is_node_lookup(const Lora__CreateIndex *d)
{
	return sto_index_has_entries(d);
}

/* 0: (label, key) of nodes (edge = 0) or (type, key) of relationships
 * (edge = 1) not indexed, 1: indexed, 2: under a unique constraint. */
static int covered(struct apply_ctx *c, int edge, uint32_t label, uint32_t key)
{
	const struct sto_catalog *k = cat_of(c);
	size_t i = 0;
	while (i < k->n && !(def_is_node_lookup(k->defs[i]) &&
	                     def_entity_edge(k->defs[i]) == edge))
		i++;
	if (i == k->n) /* no lookup index of the kind: no names to look up */
		return 0;
	const char *ln =
	    apply_tok_name(c, edge ? STO_TOK_TYPE : STO_TOK_LABEL, label);
	const char *kn = apply_tok_name(c, STO_TOK_KEY, key);
	int r = 0;
	for (; ln && kn && i < k->n; i++) {
		const Lora__CreateIndex *d = k->defs[i];
		if (!def_is_node_lookup(d) || def_entity_edge(d) != edge ||
		    strcmp(d->label, ln))
			continue;
		for (size_t j = 0; j < d->n_properties; j++)
			if (!strcmp(d->properties[j], kn))
				r = d->kind == LORA__INDEX_KIND__INDEX_UNIQUE
				        ? 2
				    : r ? r
				        : 1;
	}
	return r;
}

/* Builds the entry key into c->kbuf. LORA_EINVAL: value not indexable. */
static int entry_key(struct apply_ctx *c, int edge, uint32_t label,
                     uint32_t key, const Lora__Value *v, uint64_t node)
{
	uint8_t id[8];
	int rv = edge ? sto_key_rprop_prefix(&c->kbuf, label, key)
	              : sto_key_prop_prefix(&c->kbuf, label, key);
	if (!rv)
		rv = sto_enc_value(&c->kbuf, v);
	lora_put_be64(id, node);
	return rv ? rv : lora_buf_append(&c->kbuf, id, 8);
}

/* Rejects when another node holds the value of the entry in c->kbuf. */
static int unique_check(struct apply_ctx *c, uint32_t label, uint32_t key,
                        uint64_t node)
{
	size_t plen = c->kbuf.len - 8;
	rocksdb_iterator_t *it = apply_iter(c, STO_CF_INDEX);
	int rv = 0;
	uint64_t other = 0;
	for (rocksdb_iter_seek(it, c->kbuf.data, plen); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen;
		const char *k = rocksdb_iter_key(it, &klen);
		if (klen != plen + 8 || memcmp(k, c->kbuf.data, plen))
			break;
		other = lora_get_be64((const uint8_t *)k + plen);
		if (other != node) {
			rv = LORA_ECONSTRAINT;
			break;
		}
	}
	int ierr = apply_iter_err(it);
	rocksdb_iter_destroy(it);
	if (ierr)
		return ierr;
	if (rv)
		lora_errf(rv, c->errmsg,
		          "node %llu already exists with label `%s` and "
		          "property `%s` of the same value",
		          (unsigned long long)other,
		          apply_tok_name(c, STO_TOK_LABEL, label),
		          apply_tok_name(c, STO_TOK_KEY, key));
	return rv;
}

/* Adds (add=1) or removes the entry for value bytes p/len. */
static int entry_bytes(struct apply_ctx *c, int edge, uint32_t label,
                       uint32_t key, const uint8_t *p, size_t len,
                       uint64_t node, int add, int unique)
{
	Lora__Value *v;
	int rv = sto_value_unpack(p, len, &v);
	if (rv)
		return rv;
	rv = entry_key(c, edge, label, key, v, node);
	lora__value__free_unpacked(v, &lora_pb_allocator);
	if (rv == LORA_EINVAL)
		return 0;
	if (!rv && add && unique)
		rv = unique_check(c, label, key, node);
	if (rv)
		return rv;
	if (add)
		return apply_put(c, STO_CF_INDEX, c->kbuf.data, c->kbuf.len, "",
		                 0);
	apply_del(c, STO_CF_INDEX, c->kbuf.data, c->kbuf.len);
	return 0;
}

static int range_prop_change(struct apply_ctx *c, int edge, uint64_t node,
                             const struct sto_rec *r, uint32_t key,
                             const struct sto_prop *old, const Lora__Value *nv);

int idx_prop_change(struct apply_ctx *c, int edge, uint64_t node,
                    const struct sto_rec *r, uint32_t key,
                    const struct sto_prop *old, const Lora__Value *nv)
{
	int rv = range_prop_change(c, edge, node, r, key, old, nv);
	if (!rv && !edge)
		rv = idx_text_prop_change(c, node, r, key, old, nv);
	return rv;
}

static int range_prop_change(struct apply_ctx *c, int edge, uint64_t node,
                             const struct sto_rec *r, uint32_t key,
                             const struct sto_prop *old, const Lora__Value *nv)
{
	uint32_t n = edge ? 1 : r->nlabels;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t label = edge ? r->type : r->labels[i];
		int cov = covered(c, edge, label, key), rv = 0;
		if (!cov)
			continue;
		if (old)
			rv = entry_bytes(c, edge, label, key,
			                 (const uint8_t *)r->data.data +
			                     old->off,
			                 old->len, node, 0, 0);
		if (rv)
			return rv;
		if (!nv)
			continue;
		rv = entry_key(c, edge, label, key, nv, node);
		if (rv == LORA_EINVAL)
			continue;
		if (!rv && cov == 2)
			rv = unique_check(c, label, key, node);
		if (rv)
			return rv;
		apply_put(c, STO_CF_INDEX, c->kbuf.data, c->kbuf.len, "", 0);
	}
	return 0;
}

int idx_edge_delete(struct apply_ctx *c, uint64_t id, const struct sto_rec *r)
{
	for (uint32_t i = 0; i < r->nprops; i++) {
		const struct sto_prop *p = &r->props[i];
		if (!covered(c, 1, r->type, p->key))
			continue;
		int rv = entry_bytes(c, 1, r->type, p->key,
		                     (const uint8_t *)r->data.data + p->off,
		                     p->len, id, 0, 0);
		if (rv)
			return rv;
	}
	return 0;
}

int idx_label_change(struct apply_ctx *c, uint64_t node,
                     const struct sto_rec *r, uint32_t label, int add)
{
	int trv = idx_text_label_change(c, node, r, label, add);
	if (trv)
		return trv;
	for (uint32_t i = 0; i < r->nprops; i++) {
		const struct sto_prop *p = &r->props[i];
		int cov = covered(c, 0, label, p->key);
		if (!cov)
			continue;
		int rv = entry_bytes(c, 0, label, p->key,
		                     (const uint8_t *)r->data.data + p->off,
		                     p->len, node, add, cov == 2);
		if (rv)
			return rv;
	}
	return 0;
}

/* ---- catalogue changes
 * -------------------------------------------------------- */

static int cat_copy(struct apply_ctx *c)
{
	if (c->cat_copied)
		return 0;
	const struct sto_catalog *src = &c->s->cat;
	c->cat.defs = lora_calloc(src->n + 1, sizeof(*c->cat.defs));
	if (!c->cat.defs)
		return LORA_ENOMEM;
	c->cat_copied = 1;
	for (size_t i = 0; i < src->n; i++) {
		int rv = sto_index_dup(src->defs[i], &c->cat.defs[i]);
		if (rv)
			return rv;
		c->cat.n++;
	}
	return 0;
}

static int same_def(const Lora__CreateIndex *a, const Lora__CreateIndex *b)
{
	if (a->kind != b->kind || a->entity != b->entity ||
	    strcmp(a->label, b->label) || a->n_properties != b->n_properties)
		return 0;
	for (size_t i = 0; i < a->n_properties; i++)
		if (strcmp(a->properties[i], b->properties[i]))
			return 0;
	return 1;
}

static int index_validate(struct apply_ctx *c, const Lora__CreateIndex *m)
{
	if (!m->name[0] || !m->label[0] || !m->n_properties)
		return lora_errf(LORA_EINVAL, c->errmsg,
		                 "index needs a name, a label and a property");
	for (size_t i = 0; i < m->n_properties; i++)
		if (!m->properties[i][0])
			return lora_errf(LORA_EINVAL, c->errmsg,
			                 "index `%s`: empty property key",
			                 m->name);
	if (m->kind == LORA__INDEX_KIND__INDEX_NODE_KEY &&
	    (m->entity != LORA__ENTITY_KIND__ENTITY_NODE ||
	     m->n_properties > STO_NODE_KEY_PROPS_MAX))
		return lora_errf(LORA_EINVAL, c->errmsg,
		                 "node key `%s` needs 1..%d node properties",
		                 m->name, STO_NODE_KEY_PROPS_MAX);
	if (m->kind == LORA__INDEX_KIND__INDEX_UNIQUE && m->n_properties > 1)
		return lora_errf(LORA_EINVAL, c->errmsg,
		                 "constraint `%s`: uniqueness over several "
		                 "properties is not supported",
		                 m->name);
	if (m->kind == LORA__INDEX_KIND__INDEX_VECTOR &&
	    (m->n_properties != 1 || !m->vector_dimensions ||
	     m->vector_dimensions > STO_VECTOR_DIMENSIONS_MAX))
		return lora_errf(
		    LORA_EVECTOR, c->errmsg,
		    "vector index `%s` needs one property and 1..%d "
		    "dimensions",
		    m->name, STO_VECTOR_DIMENSIONS_MAX);
	/* 0: the default; checked here, not only in query/, since the log
	 * and the catalogue feed hnsw_new, which asserts its bounds */
	if (m->kind == LORA__INDEX_KIND__INDEX_VECTOR &&
	    ((m->hnsw_m && (m->hnsw_m < 2 || m->hnsw_m > HNSW_M_MAX)) ||
	     m->hnsw_ef_construction > HNSW_EFC_MAX))
		return lora_errf(LORA_EINVAL, c->errmsg,
		                 "vector index `%s`: hnsw.m must be 2..%d and "
		                 "hnsw.ef_construction 1..%d",
		                 m->name, HNSW_M_MAX, HNSW_EFC_MAX);
	if ((m->kind == LORA__INDEX_KIND__INDEX_EXISTS ||
	     m->kind == LORA__INDEX_KIND__INDEX_TYPE) &&
	    (m->n_properties != 1 ||
	     m->entity != LORA__ENTITY_KIND__ENTITY_NODE ||
	     (m->kind == LORA__INDEX_KIND__INDEX_TYPE &&
	      !sto_type_known(m->property_type))))
		return lora_errf(LORA_EINVAL, c->errmsg,
		                 "constraint `%s` needs one node property%s",
		                 m->name,
		                 m->kind == LORA__INDEX_KIND__INDEX_TYPE
		                     ? " and a known property type"
		                     : "");
	if (m->entity == LORA__ENTITY_KIND__ENTITY_EDGE &&
	    m->kind != LORA__INDEX_KIND__INDEX_RANGE &&
	    m->kind != LORA__INDEX_KIND__INDEX_VECTOR)
		return lora_errf(LORA_EINVAL, c->errmsg,
		                 "index `%s`: relationships take range and "
		                 "vector indexes only",
		                 m->name);
	if (m->kind == LORA__INDEX_KIND__INDEX_TEXT &&
	    (m->n_properties != 1 ||
	     m->entity != LORA__ENTITY_KIND__ENTITY_NODE))
		return lora_errf(LORA_EINVAL, c->errmsg,
		                 "text index `%s` needs one node property",
		                 m->name);
	if (m->kind > LORA__INDEX_KIND__INDEX_TEXT ||
	    m->entity > LORA__ENTITY_KIND__ENTITY_EDGE)
		return lora_errf(LORA_EINVAL, c->errmsg, "index `%s`: bad kind",
		                 m->name);
	if (cat_of(c)->n >= STO_INDEXES_MAX)
		return lora_errf(LORA_ELIMIT, c->errmsg, "more than %d indexes",
		                 STO_INDEXES_MAX);
	return 0;
}

int apply_label_nodes_from(struct apply_ctx *c, uint32_t label, uint64_t from,
                           uint64_t *ids, size_t max, size_t *n)
{
	uint8_t k0[STO_LABEL_KEY_BYTES];
	k0[0] = STO_K_LABEL;
	lora_put_be32(k0 + 1, label);
	lora_put_be64(k0 + 5, from);
	rocksdb_iterator_t *it = apply_iter(c, STO_CF_INDEX);
	*n = 0;
	for (rocksdb_iter_seek(it, (const char *)k0, sizeof k0);
	     *n < max && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen;
		const char *k = rocksdb_iter_key(it, &klen);
		if (klen != STO_LABEL_KEY_BYTES || memcmp(k, k0, 5))
			break;
		ids[(*n)++] = lora_get_be64((const uint8_t *)k + 5);
	}
	int rv = apply_iter_err(it);
	rocksdb_iter_destroy(it);
	return rv;
}

/* The type of an edge record's bytes: -1 when they are no edge record. */
static int64_t rec_type(const uint8_t *p, size_t len)
{
	uint64_t t;
	if (!len || p[0] != 'r' || !sto_get_uvarint(p + 1, p + len, &t) ||
	    t > UINT32_MAX)
		return -1;
	return (int64_t)t;
}

int apply_type_edges_from(struct apply_ctx *c, uint32_t type, uint64_t from,
                          uint64_t *ids, size_t max, size_t scan_max, size_t *n,
                          uint64_t *next, int *end)
{
	uint8_t k0[9];
	sto_key_edge(k0, from);
	rocksdb_iterator_t *it = apply_iter(c, STO_CF_EDGES);
	size_t seen = 0;
	*n = 0;
	*next = from;
	*end = 1;
	int rv = 0;
	for (rocksdb_iter_seek(it, (const char *)k0, sizeof k0);
	     rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		if (!klen || k[0] != STO_K_EDGE)
			break;
		if (klen != 9)
			continue;
		if (*n == max || seen == scan_max) {
			*end = 0;
			break;
		}
		uint64_t id = lora_get_be64((const uint8_t *)k + 1);
		const char *v = rocksdb_iter_value(it, &vlen);
		int64_t t = rec_type((const uint8_t *)v, vlen);
		if (t < 0) {
			rv = lora_errf(LORA_ECORRUPT, c->errmsg,
			               "edge %llu: corrupt record",
			               (unsigned long long)id);
			break;
		}
		seen++;
		*next = id + 1;
		if ((uint32_t)t == type)
			ids[(*n)++] = id;
	}
	if (!rv)
		rv = apply_iter_err(it);
	rocksdb_iter_destroy(it);
	return rv;
}

int apply_label_nodes(struct apply_ctx *c, uint32_t label, struct lora_buf *ids)
{
	uint8_t pfx[5];
	pfx[0] = STO_K_LABEL;
	lora_put_be32(pfx + 1, label);
	rocksdb_iterator_t *it = apply_iter(c, STO_CF_INDEX);
	int rv = 0;
	for (rocksdb_iter_seek(it, (const char *)pfx, 5);
	     !rv && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen;
		const char *k = rocksdb_iter_key(it, &klen);
		if (klen != STO_LABEL_KEY_BYTES || memcmp(k, pfx, 5))
			break;
		rv = lora_buf_append(ids, k + 5, 8);
	}
	if (!rv)
		rv = apply_iter_err(it);
	rocksdb_iter_destroy(it);
	return rv;
}

static _Atomic uint64_t edge_decodes; /* sto_testing_backfill_decodes */

uint64_t sto_testing_backfill_decodes(void)
{
	return atomic_load(&edge_decodes);
}

/* Puts index entries for every relationship of `type` that has key (as
 * the batch left them). The store has no by-type access path to the
 * relationships (docs/storage.md), so this is one pass over the edge
 * records, which reads each one's type in place and decodes only those
 * of the type. */
static int backfill_edges(struct apply_ctx *c, uint32_t type, uint32_t key)
{
	uint8_t pfx = STO_K_EDGE;
	rocksdb_iterator_t *it = apply_iter(c, STO_CF_EDGES);
	struct sto_rec r = {0};
	int rv = 0;
	for (rocksdb_iter_seek(it, (const char *)&pfx, 1);
	     !rv && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		if (!klen || k[0] != STO_K_EDGE)
			break;
		if (klen != 9)
			continue;
		const uint8_t *v =
		    (const uint8_t *)rocksdb_iter_value(it, &vlen);
		uint64_t id = lora_get_be64((const uint8_t *)k + 1);
		int64_t t = rec_type(v, vlen);
		int i;
		if (t < 0) { /* no type to pass it over by: never skip it */
			rv = lora_errf(LORA_ECORRUPT, c->errmsg,
			               "edge %llu: corrupt record",
			               (unsigned long long)id);
			break;
		}
		if ((uint32_t)t != type)
			continue;
		atomic_fetch_add(&edge_decodes, 1);
		if ((rv = sto_rec_decode(&r, 1, v, vlen)) != 0)
			lora_errf(rv, c->errmsg, "edge %llu: corrupt record",
			          (unsigned long long)id);
		else if ((i = sto_rec_find_prop(&r, key)) >= 0)
			rv = entry_bytes(c, 1, type, key,
			                 (const uint8_t *)r.data.data +
			                     r.props[i].off,
			                 r.props[i].len, id, 1, 0);
	}
	if (!rv)
		rv = apply_iter_err(it);
	rocksdb_iter_destroy(it);
	sto_rec_free(&r);
	return rv;
}

/* Puts index entries for every node with label (edge = 0), or every
 * relationship of type label (edge = 1), that has key. */
static int backfill(struct apply_ctx *c, int edge, uint32_t label, uint32_t key)
{
	if (edge)
		return backfill_edges(c, label, key);
	struct lora_buf ids = {0};
	int rv = apply_label_nodes(c, label, &ids);
	struct sto_rec r = {0};
	for (size_t off = 0; !rv && off < ids.len; off += 8) {
		uint64_t node = lora_get_be64((const uint8_t *)ids.data + off);
		int found, i;
		rv = apply_load(c, 0, node, &r, &found);
		if (rv || !found || (i = sto_rec_find_prop(&r, key)) < 0)
			continue;
		rv = entry_bytes(c, 0, label, key,
		                 (const uint8_t *)r.data.data + r.props[i].off,
		                 r.props[i].len, node, 1, 0);
	}
	sto_rec_free(&r);
	lora_buf_free(&ids);
	return rv;
}

/* Collects the keys of every entry under (label, key) into keys, as
 * (u32 length, bytes) records. */
static int entries_collect(struct apply_ctx *c, int edge, uint32_t label,
                           uint32_t key, struct lora_buf *keys)
{
	struct lora_buf pfx = {0};
	int rv = edge ? sto_key_rprop_prefix(&pfx, label, key)
	              : sto_key_prop_prefix(&pfx, label, key);
	if (rv)
		return rv;
	rocksdb_iterator_t *it = apply_iter(c, STO_CF_INDEX);
	for (rocksdb_iter_seek(it, pfx.data, pfx.len);
	     !rv && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen;
		const char *k = rocksdb_iter_key(it, &klen);
		if (klen < pfx.len + 8 || memcmp(k, pfx.data, pfx.len))
			break;
		uint8_t l[4];
		lora_put_be32(l, (uint32_t)klen);
		rv = lora_buf_append(keys, l, 4);
		if (!rv)
			rv = lora_buf_append(keys, k, klen);
	}
	if (!rv)
		rv = apply_iter_err(it);
	rocksdb_iter_destroy(it);
	lora_buf_free(&pfx);
	return rv;
}

/* Rejects a new unique constraint when two nodes already share a value. */
static int verify_unique(struct apply_ctx *c, const char *name, uint32_t label,
                         uint32_t key)
{
	struct lora_buf keys = {0};
	int rv = entries_collect(c, 0, label, key, &keys);
	const char *prev = NULL;
	size_t prev_len = 0;
	for (size_t off = 0; !rv && off < keys.len;) {
		size_t klen = lora_get_be32((const uint8_t *)keys.data + off);
		const char *k = keys.data + off + 4;
		if (prev && prev_len == klen && !memcmp(prev, k, klen - 8))
			rv = lora_errf(
			    LORA_ECONSTRAINT, c->errmsg,
			    "cannot create constraint `%s`: nodes %llu and "
			    "%llu share the value of `%s`",
			    name,
			    (unsigned long long)lora_get_be64(
			        (const uint8_t *)prev + klen - 8),
			    (unsigned long long)lora_get_be64(
			        (const uint8_t *)k + klen - 8),
			    apply_tok_name(c, STO_TOK_KEY, key));
		prev = k;
		prev_len = klen;
		off += 4 + klen;
	}
	lora_buf_free(&keys);
	return rv;
}

static int index_entries_build(struct apply_ctx *c, const Lora__CreateIndex *m)
{
	uint32_t label, key;
	int rv = apply_intern(c,
	                      m->entity == LORA__ENTITY_KIND__ENTITY_NODE
	                          ? STO_TOK_LABEL
	                          : STO_TOK_TYPE,
	                      m->label, &label);
	for (size_t i = 0; !rv && i < m->n_properties; i++) {
		rv = apply_intern(c, STO_TOK_KEY, m->properties[i], &key);
		if (rv || !def_is_node_lookup(m))
			continue;
		if (!covered(c, def_entity_edge(m), label, key))
			rv = backfill(c, def_entity_edge(m), label, key);
		if (!rv && m->kind == LORA__INDEX_KIND__INDEX_UNIQUE)
			rv = verify_unique(c, m->name, label, key);
	}
	return rv;
}

int apply_create_index(struct apply_ctx *c, const Lora__CreateIndex *m)
{
	int rv = index_validate(c, m);
	const struct sto_catalog *k = cat_of(c);
	for (size_t i = 0; !rv && i < k->n; i++) {
		int same_name = !strcmp(k->defs[i]->name, m->name);
		if (!same_name && !same_def(k->defs[i], m))
			continue;
		if (m->if_not_exists)
			return 0;
		return lora_errf(LORA_EEXIST, c->errmsg,
		                 same_name
		                     ? "an index named `%s` already exists"
		                     : "an equivalent index `%s` exists",
		                 k->defs[i]->name);
	}
	if (!rv)
		rv = cat_copy(c);
	if (!rv)
		rv = index_entries_build(c, m);
	if (!rv && m->kind == LORA__INDEX_KIND__INDEX_TEXT)
		rv = idx_text_build(c, m);
	if (!rv)
		rv = apply_constraint_backfill(c, m);
	Lora__CreateIndex **defs =
	    rv ? NULL
	       : lora_realloc(c->cat.defs, (c->cat.n + 1) * sizeof(*defs));
	if (!rv && !defs)
		rv = LORA_ENOMEM;
	if (!rv) {
		c->cat.defs = defs;
		rv = sto_index_dup(m, &defs[c->cat.n]);
	}
	if (rv)
		return rv;
	Lora__CreateIndex *d = defs[c->cat.n++];
	d->if_not_exists = 0;
	size_t n = lora__create_index__get_packed_size(d);
	struct lora_buf *kb = &c->kbuf;
	lora_buf_reset(kb);
	lora_buf_reset(&c->vbuf);
	if (lora_buf_putc(kb, STO_META_INDEX) || lora_buf_puts(kb, m->name) ||
	    lora_buf_reserve(&c->vbuf, n))
		return LORA_ENOMEM;
	lora__create_index__pack(d, (uint8_t *)c->vbuf.data);
	return apply_put(c, STO_CF_META, kb->data, kb->len, c->vbuf.data, n);
}

/* Deletes the entries of (label, key) of a dropped index when no other
 * index still covers them. */
static int drop_entries(struct apply_ctx *c, const Lora__CreateIndex *d)
{
	int edge = def_entity_edge(d);
	int64_t label =
	    apply_tok_find(c, edge ? STO_TOK_TYPE : STO_TOK_LABEL, d->label);
	for (size_t i = 0; label >= 0 && i < d->n_properties; i++) {
		int64_t key = apply_tok_find(c, STO_TOK_KEY, d->properties[i]);
		if (key < 0 || covered(c, edge, (uint32_t)label, (uint32_t)key))
			continue;
		struct lora_buf keys = {0};
		int rv = entries_collect(c, edge, (uint32_t)label,
		                         (uint32_t)key, &keys);
		for (size_t off = 0; !rv && off < keys.len;) {
			size_t klen =
			    lora_get_be32((const uint8_t *)keys.data + off);
			apply_del(c, STO_CF_INDEX, keys.data + off + 4, klen);
			off += 4 + klen;
		}
		lora_buf_free(&keys);
		if (rv)
			return rv;
	}
	return 0;
}

int apply_drop_index(struct apply_ctx *c, const Lora__DropIndex *m)
{
	const struct sto_catalog *k = cat_of(c);
	size_t at = k->n;
	for (size_t i = 0; i < k->n; i++)
		if (!strcmp(k->defs[i]->name, m->name))
			at = i;
	if (at == k->n)
		return m->if_exists ? 0
		                    : lora_errf(LORA_ENOTFOUND, c->errmsg,
		                                "no index named `%s`", m->name);
	int rv = cat_copy(c);
	if (rv)
		return rv;
	Lora__CreateIndex *d = c->cat.defs[at];
	memmove(&c->cat.defs[at], &c->cat.defs[at + 1],
	        (c->cat.n - at - 1) * sizeof(*c->cat.defs));
	c->cat.n--;
	lora_buf_reset(&c->kbuf);
	if (lora_buf_putc(&c->kbuf, STO_META_INDEX) ||
	    lora_buf_puts(&c->kbuf, m->name))
		rv = LORA_ENOMEM;
	if (!rv)
		apply_del(c, STO_CF_META, c->kbuf.data, c->kbuf.len);
	if (!rv && def_is_node_lookup(d))
		rv = drop_entries(c, d);
	if (!rv)
		rv = idx_text_drop(c, d);
	lora__create_index__free_unpacked(d, &lora_pb_allocator);
	return rv;
}
