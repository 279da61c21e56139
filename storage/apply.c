/* apply.c - sto_apply: validates and applies one mutation batch in one
 * RocksDB write batch together with its log index.
 *
 * The batch is staged in a WriteBatchWithIndex; validation reads through
 * it, so later mutations see earlier ones. A mutation that is invalid
 * (caller error) rejects the batch: the staged writes are dropped and only
 * the applied index is written. An operating error (no memory, I/O,
 * corrupt bytes) writes nothing at all, so the entry is retried later.
 * Tokens a batch introduces reach the in-memory cache only after the
 * write succeeded, so a rejected or failed batch leaves no trace.
 */
#include <string.h>

#include "applyInt.h"

/* ---- database access through the batch --------------------------------------
 */

int apply_get(struct apply_ctx *c, int cf, const void *key, size_t klen,
              char **val, size_t *vlen)
{
	if (c->bulk) {
		if (!c->bulk_it[cf])
			c->bulk_it[cf] = apply_iter(c, cf);
		return sto_seek_get(c->bulk_it[cf], key, klen, val, vlen);
	}
	char *err = NULL;
	*val = rocksdb_writebatch_wi_get_from_batch_and_db_cf(
	    c->wb, c->s->db, c->s->ro, c->s->cf[cf], key, klen, vlen, &err);
	return err ? sto_rocks_err(err, c->errmsg, "read") : 0;
}

int apply_get_batch(struct apply_ctx *c, int cf, const void *key, size_t klen,
                    char **val, size_t *vlen)
{
	char *err = NULL;
	*val = rocksdb_writebatch_wi_get_from_batch_cf(
	    c->wb, c->s->opts, c->s->cf[cf], key, klen, vlen, &err);
	return err ? sto_rocks_err(err, c->errmsg, "read batch") : 0;
}

int apply_put(struct apply_ctx *c, int cf, const void *key, size_t klen,
              const void *val, size_t vlen)
{
	rocksdb_writebatch_wi_put_cf(c->wb, c->s->cf[cf], key, klen, val, vlen);
	return 0;
}

void apply_del(struct apply_ctx *c, int cf, const void *key, size_t klen)
{
	rocksdb_writebatch_wi_delete_cf(c->wb, c->s->cf[cf], key, klen);
}

int apply_wonly(struct apply_ctx *c, int del, int cf, const void *key,
                size_t klen, const void *val, size_t vlen)
{
	uint8_t h[10];
	h[0] = (uint8_t)del;
	h[1] = (uint8_t)cf;
	lora_put_be32(h + 2, (uint32_t)klen);
	lora_put_be32(h + 6, (uint32_t)vlen);
	int rv = lora_buf_reserve(&c->wonly, sizeof(h) + klen + vlen);
	if (rv)
		return rv;
	lora_buf_append(&c->wonly, h, sizeof(h));
	lora_buf_append(&c->wonly, key, klen);
	return vlen ? lora_buf_append(&c->wonly, val, vlen) : 0;
}

/* Label-index keys: write-only when the batch allows. */
static int label_key(struct apply_ctx *c, int del, const uint8_t *k)
{
	if (c->wonly_label)
		return apply_wonly(c, del, STO_CF_INDEX, k, STO_LABEL_KEY_BYTES,
		                   "", 0);
	if (del)
		apply_del(c, STO_CF_INDEX, k, STO_LABEL_KEY_BYTES);
	else
		apply_put(c, STO_CF_INDEX, k, STO_LABEL_KEY_BYTES, "", 0);
	return 0;
}

void apply_bulk_begin(struct apply_ctx *c)
{
	c->bulk = 1;
}

void apply_bulk_end(struct apply_ctx *c)
{
	for (int i = 0; i < STO_CF_COUNT; i++) {
		if (c->bulk_it[i])
			rocksdb_iter_destroy(c->bulk_it[i]);
		c->bulk_it[i] = NULL;
	}
	c->bulk = 0;
}

rocksdb_iterator_t *apply_iter(struct apply_ctx *c, int cf)
{
	rocksdb_iterator_t *base = rocksdb_create_iterator_cf(
	    c->s->db, c->bulk ? c->s->ro_bulk : c->s->ro, c->s->cf[cf]);
	/* Takes ownership of base. */
	return rocksdb_writebatch_wi_create_iterator_with_base_cf(c->wb, base,
	                                                          c->s->cf[cf]);
}

int apply_iter_err(rocksdb_iterator_t *it)
{
	char *err = NULL;
	rocksdb_iter_get_error(it, &err);
	return err ? sto_rocks_err(err, NULL, "scan") : 0;
}

/* ---- tokens
 * ------------------------------------------------------------------- */

int64_t apply_tok_find(struct apply_ctx *c, int kind, const char *name)
{
	size_t len = strlen(name);
	int64_t t = sto_tok_find(c->s, kind, name, len);
	if (t >= 0)
		return t;
	struct sto_tokens *p = &c->pend[kind];
	for (uint32_t i = 0; i < p->n; i++)
		if (p->lens[i] == len && !memcmp(p->names[i], name, len))
			return (int64_t)c->s->tok[kind].n + i;
	return -1;
}

const char *apply_tok_name(struct apply_ctx *c, int kind, uint32_t tok)
{
	uint32_t base = c->s->tok[kind].n;
	if (tok >= base && tok - base < c->pend[kind].n)
		return c->pend[kind].names[tok - base];
	return sto_tok_name(c->s, kind, tok);
}

static const char *const kind_names[] = {"label", "relationship type",
                                         "property key"};

/* Writes the two meta entries of a new token into the batch. */
static int tok_write(struct apply_ctx *c, int kind, const char *name,
                     size_t len, uint32_t tok)
{
	uint8_t tk[6], tv[4];
	struct lora_buf *k = &c->kbuf;
	lora_buf_reset(k);
	if (lora_buf_putc(k, STO_META_TOKEN) || lora_buf_putc(k, (char)kind) ||
	    lora_buf_append(k, name, len))
		return LORA_ENOMEM;
	lora_put_be32(tv, tok);
	int rv = apply_wonly(c, 0, STO_CF_META, k->data, k->len, tv, 4);
	tk[0] = STO_META_TOKEN_NAME;
	tk[1] = (uint8_t)kind;
	lora_put_be32(tk + 2, tok);
	return rv ? rv : apply_wonly(c, 0, STO_CF_META, tk, 6, name, len);
}

int apply_intern(struct apply_ctx *c, int kind, const char *name, uint32_t *tok)
{
	if (!name || !name[0])
		return lora_errf(LORA_EINVAL, c->errmsg, "empty %s",
		                 kind_names[kind]);
	size_t len = strlen(name);
	if (len > STO_NAME_BYTES_MAX)
		return lora_errf(LORA_ELIMIT, c->errmsg,
		                 "%s longer than %d bytes", kind_names[kind],
		                 STO_NAME_BYTES_MAX);
	int64_t t = apply_tok_find(c, kind, name);
	if (t >= 0) {
		*tok = (uint32_t)t;
		return 0;
	}
	struct sto_tokens *p = &c->pend[kind];
	if ((uint64_t)c->s->tok[kind].n + p->n >= STO_TOKENS_MAX)
		return lora_errf(LORA_ELIMIT, c->errmsg, "too many %s names",
		                 kind_names[kind]);
	int rv = sto_tok_reserve(p, 1);
	char *copy = rv ? NULL : lora_strndup(name, len);
	if (!copy)
		return LORA_ENOMEM;
	*tok = c->s->tok[kind].n + p->n;
	sto_tok_add(p, copy, (uint32_t)len);
	return tok_write(c, kind, name, len, *tok);
}

/* ---- records
 * ------------------------------------------------------------------ */

static int rec_key(int edge, uint64_t id, uint8_t k[9], size_t *klen)
{
	if (edge) {
		sto_key_edge(k, id);
		*klen = 9;
	} else {
		lora_put_be64(k, id);
		*klen = 8;
	}
	return edge ? STO_CF_EDGES : STO_CF_NODES;
}

int apply_load(struct apply_ctx *c, int edge, uint64_t id, struct sto_rec *r,
               int *found)
{
	uint8_t k[9];
	size_t klen, vlen;
	char *v;
	int cf = rec_key(edge, id, k, &klen);
	uint64_t fresh = edge ? c->state_next_edge : c->state_next_node;
	int rv = id >= fresh ? apply_get_batch(c, cf, k, klen, &v, &vlen)
	                     : apply_get(c, cf, k, klen, &v, &vlen);
	*found = v != NULL;
	if (rv || !v)
		return rv;
	if (r) {
		rv = sto_rec_decode(r, edge, (const uint8_t *)v, vlen);
		if (rv == LORA_ECORRUPT)
			lora_errf(rv, c->errmsg, "%s %llu: corrupt record",
			          edge ? "edge" : "node",
			          (unsigned long long)id);
	}
	rocksdb_free(v);
	return rv;
}

int apply_store(struct apply_ctx *c, int edge, uint64_t id,
                const struct sto_rec *r)
{
	uint8_t k[9];
	size_t klen;
	int cf = rec_key(edge, id, k, &klen);
	int rv = sto_rec_encode(r, edge, &c->vbuf);
	if (rv == LORA_ELIMIT)
		return lora_errf(rv, c->errmsg,
		                 "record of %s %llu over %u bytes",
		                 edge ? "edge" : "node", (unsigned long long)id,
		                 STO_RECORD_BYTES_MAX);
	if (rv)
		return rv;
	if (edge ? c->wonly_edges : c->wonly_nodes)
		return apply_wonly(c, 0, cf, k, klen, c->vbuf.data,
		                   c->vbuf.len);
	return apply_put(c, cf, k, klen, c->vbuf.data, c->vbuf.len);
}

static int64_t *delta_slot(int64_t **arr, size_t *n, uint32_t tok)
{
	if (tok >= *n) {
		size_t nn = *n ? *n : 16;
		while (nn <= tok)
			nn *= 2;
		int64_t *p = lora_realloc(*arr, nn * sizeof(*p));
		if (!p)
			return NULL;
		memset(p + *n, 0, (nn - *n) * sizeof(*p));
		*arr = p;
		*n = nn;
	}
	return &(*arr)[tok];
}

static int count_label(struct apply_ctx *c, uint32_t label, int64_t d)
{
	int64_t *p = delta_slot(&c->label_delta, &c->label_delta_n, label);
	if (!p)
		return LORA_ENOMEM;
	*p += d;
	return 0;
}

static int count_type(struct apply_ctx *c, uint32_t type, int64_t d)
{
	int64_t *p = delta_slot(&c->type_delta, &c->type_delta_n, type);
	if (!p)
		return LORA_ENOMEM;
	*p += d;
	return 0;
}

/* ---- properties and vectors
 * ------------------------------------------------------ */

/* Deletes the vector `key` of an entity if it has one. */
static int vec_remove(struct apply_ctx *c, int entity, uint64_t id,
                      struct sto_rec *r, uint32_t key)
{
	if (!r->nvec)
		return 0;
	uint8_t k[STO_VEC_KEY_BYTES];
	char *v;
	size_t vlen;
	sto_key_vec(k, (uint32_t)entity, id, key);
	int rv = apply_get(c, STO_CF_VECTORS, k, sizeof(k), &v, &vlen);
	if (rv || !v)
		return rv;
	rocksdb_free(v);
	apply_del(c, STO_CF_VECTORS, k, sizeof(k));
	r->nvec--;
	return 0;
}

/* Removes property key (regular or vector) from the record. */
static int prop_remove(struct apply_ctx *c, int entity, uint64_t id,
                       struct sto_rec *r, uint32_t key)
{
	int i = sto_rec_find_prop(r, key);
	if (i >= 0) {
		int rv =
		    idx_prop_change(c, entity == LORA__ENTITY_KIND__ENTITY_EDGE,
		                    id, r, key, &r->props[i], NULL);
		if (rv)
			return rv;
		sto_rec_del_prop(r, i);
	}
	return vec_remove(c, entity, id, r, key);
}

static int vec_set(struct apply_ctx *c, int entity, uint64_t id,
                   struct sto_rec *r, uint32_t key, const Lora__Vector *vec)
{
	int rv = sto_vector_check(vec, c->errmsg);
	if (rv)
		return rv;
	int i = sto_rec_find_prop(r, key);
	if (i >= 0) {
		if ((rv = idx_prop_change(
		         c, entity == LORA__ENTITY_KIND__ENTITY_EDGE, id, r,
		         key, &r->props[i], NULL)))
			return rv;
		sto_rec_del_prop(r, i);
	}
	uint8_t k[STO_VEC_KEY_BYTES];
	char *old;
	size_t olen;
	sto_key_vec(k, (uint32_t)entity, id, key);
	if (r->nvec &&
	    (rv = apply_get(c, STO_CF_VECTORS, k, sizeof(k), &old, &olen)))
		return rv;
	if (!r->nvec || !old)
		r->nvec++;
	else
		rocksdb_free(old);
	size_t n = lora__vector__get_packed_size(vec);
	lora_buf_reset(&c->vbuf);
	if (lora_buf_reserve(&c->vbuf, n))
		return LORA_ENOMEM;
	lora__vector__pack(vec, (uint8_t *)c->vbuf.data);
	if (entity == LORA__ENTITY_KIND__ENTITY_EDGE ? c->wonly_edges
	                                             : c->wonly_nodes)
		return apply_wonly(c, 0, STO_CF_VECTORS, k, sizeof(k),
		                   c->vbuf.data, n);
	return apply_put(c, STO_CF_VECTORS, k, sizeof(k), c->vbuf.data, n);
}

/* Sets property `name` of an entity to value: null removes it, vectors
 * go to the vectors CF, anything else into the record. */
static int prop_set(struct apply_ctx *c, int entity, uint64_t id,
                    struct sto_rec *r, const char *name,
                    const Lora__Value *value)
{
	uint32_t key;
	int rv = apply_intern(c, STO_TOK_KEY, name, &key);
	if (rv)
		return rv;
	int kc = value ? (int)value->kind_case : 0;
	if (kc == LORA__VALUE__KIND__NOT_SET ||
	    kc == LORA__VALUE__KIND_NULL_VALUE)
		return prop_remove(c, entity, id, r, key);
	if (kc == LORA__VALUE__KIND_VECTOR_VALUE)
		return vec_set(c, entity, id, r, key, value->vector_value);
	if (kc == LORA__VALUE__KIND_NODE_VALUE ||
	    kc == LORA__VALUE__KIND_REL_VALUE ||
	    kc == LORA__VALUE__KIND_PATH_VALUE)
		return lora_errf(LORA_ETYPE, c->errmsg,
		                 "property `%s` cannot hold a graph value",
		                 name);
	/* sto_value_pack recurses: a batch built in memory is bounded here,
	 * one decoded from the log already was (node_batch_decode). */
	if (lora_value_depth(value, LORA_VALUE_DEPTH_MAX) >
	    LORA_VALUE_DEPTH_MAX)
		return lora_errf(LORA_ELIMIT, c->errmsg,
		                 "property `%s` nests deeper than %d lists and "
		                 "maps (the value depth limit)",
		                 name, LORA_VALUE_DEPTH_MAX);
	if ((rv = vec_remove(c, entity, id, r, key)))
		return rv;
	int i = sto_rec_find_prop(r, key);
	if ((rv = idx_prop_change(c, entity == LORA__ENTITY_KIND__ENTITY_EDGE,
	                          id, r, key, i >= 0 ? &r->props[i] : NULL,
	                          value)))
		return rv;
	uint8_t *p;
	size_t n;
	if ((rv = sto_value_pack(value, &p, &n)))
		return rv;
	rv = sto_rec_set_prop(r, key, p, n);
	lora_free(p);
	if (rv == LORA_ELIMIT)
		lora_errf(rv, c->errmsg, "property `%s` too large", name);
	return rv;
}

/* ---- nodes known to exist
 * The edge ends of a load are read from the memtable once per end without
 * a list in that direction (a skip-list search each). The store keeps a
 * bit per node id it knows to exist in the written state: set after a
 * batch that created or found the node is written, cleared as soon as a
 * batch deletes it (before that batch is even valid: a clear bit only
 * means "read the store"). The answer is the store's, so replicas stay
 * identical whatever their bits. */

static int live_known(const struct sto_store *s, uint64_t id)
{
	return id / 64 < s->live_words && (s->live[id / 64] >> (id % 64)) & 1;
}

static void live_clear(struct apply_ctx *c, uint64_t id)
{
	struct sto_store *s = c->s;
	if (id / 64 < s->live_words)
		s->live[id / 64] &= ~((uint64_t)1 << (id % 64));
	c->live_drop = 1;
}

/* Remembers that id exists once the batch is written (best effort). */
static void live_note(struct apply_ctx *c, uint64_t id)
{
	if (id < STO_LIVE_NODE_IDS_MAX && !c->live_drop)
		lora_buf_append(&c->live_new, &id, sizeof id);
}

/* After the batch's write: its noted ids are known to exist. */
static void live_commit(struct apply_ctx *c)
{
	struct sto_store *s = c->s;
	if (c->live_drop || c->live_new.err)
		return;
	for (size_t off = 0; off + 8 <= c->live_new.len; off += 8) {
		uint64_t id;
		memcpy(&id, c->live_new.data + off, sizeof id);
		if (id / 64 >= s->live_words) {
			size_t n = s->live_words ? s->live_words : 1024;
			while (n <= id / 64)
				n *= 2;
			uint64_t *w = lora_realloc(s->live, n * sizeof *w);
			if (!w)
				return;
			memset(w + s->live_words, 0,
			       (n - s->live_words) * sizeof *w);
			s->live = w;
			s->live_words = n;
		}
		s->live[id / 64] |= (uint64_t)1 << (id % 64);
	}
}

void sto_live_forget(struct sto_store *s)
{
	if (s->live)
		memset(s->live, 0, s->live_words * sizeof *s->live);
}

/* ---- node and edge mutations
 * ---------------------------------------------------- */

static int create_node(struct apply_ctx *c, const Lora__CreateNode *m)
{
	int found = 0, rv = 0;
	/* Ids at or above next_node exist neither in the store nor in the
	 * batch: no lookup needed (the common case of ascending ids). */
	if (m->id < c->next_node &&
	    (rv = apply_load(c, 0, m->id, NULL, &found)))
		return rv;
	if (found)
		return lora_errf(LORA_EEXIST, c->errmsg,
		                 "node %llu already exists",
		                 (unsigned long long)m->id);
	struct sto_rec r = {0};
	for (size_t i = 0; !rv && i < m->n_labels; i++) {
		uint32_t t;
		rv = apply_intern(c, STO_TOK_LABEL, m->labels[i], &t);
		if (rv || sto_rec_has_label(&r, t))
			continue;
		uint8_t k[STO_LABEL_KEY_BYTES];
		sto_key_label(k, t, m->id);
		if (!(rv = label_key(c, 0, k)) &&
		    !(rv = sto_rec_add_label(&r, t)))
			rv = count_label(c, t, 1);
	}
	for (size_t i = 0; !rv && i < m->n_properties; i++)
		rv = m->properties[i]
		         ? prop_set(c, LORA__ENTITY_KIND__ENTITY_NODE, m->id,
		                    &r, m->properties[i]->key,
		                    m->properties[i]->value)
		         : LORA_EINVAL;
	if (!rv)
		rv = apply_store(c, 0, m->id, &r);
	sto_rec_free(&r);
	c->nodes_delta++;
	live_note(c, m->id);
	if (m->id >= c->next_node)
		c->next_node = m->id + 1;
	return rv;
}

/* Loads an entity a mutation refers to; LORA_ENOTFOUND when absent. */
static int load_existing(struct apply_ctx *c, int entity, uint64_t id,
                         struct sto_rec *r)
{
	int found;
	int edge = entity == LORA__ENTITY_KIND__ENTITY_EDGE;
	if (!edge && entity != LORA__ENTITY_KIND__ENTITY_NODE)
		return lora_errf(LORA_EINVAL, c->errmsg,
		                 "unknown entity kind %d", entity);
	int rv = apply_load(c, edge, id, r, &found);
	if (!rv && !found)
		rv = lora_errf(LORA_ENOTFOUND, c->errmsg, "no %s with id %llu",
		               edge ? "relationship" : "node",
		               (unsigned long long)id);
	return rv;
}

/* Deletes every vector of an entity (r->nvec of them). */
static int vec_remove_all(struct apply_ctx *c, int entity, uint64_t id,
                          struct sto_rec *r)
{
	if (!r->nvec)
		return 0;
	uint8_t pfx[9];
	pfx[0] = (uint8_t)entity;
	lora_put_be64(pfx + 1, id);
	rocksdb_iterator_t *it = apply_iter(c, STO_CF_VECTORS);
	struct lora_buf keys = {0};
	int rv = 0;
	for (rocksdb_iter_seek(it, (const char *)pfx, 9);
	     !rv && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen;
		const char *k = rocksdb_iter_key(it, &klen);
		if (klen != STO_VEC_KEY_BYTES || memcmp(k, pfx, 9))
			break;
		rv = lora_buf_append(&keys, k, klen);
	}
	if (!rv)
		rv = apply_iter_err(it);
	rocksdb_iter_destroy(it);
	for (size_t off = 0; !rv && off < keys.len; off += STO_VEC_KEY_BYTES)
		apply_del(c, STO_CF_VECTORS, keys.data + off,
		          STO_VEC_KEY_BYTES);
	lora_buf_free(&keys);
	r->nvec = 0;
	return rv;
}

/* Node `node`, an end of the new edge `edge`, exists. */
static int edge_end(struct apply_ctx *c, uint64_t edge, uint64_t node)
{
	if (live_known(c->s, node))
		return 0;
	int found, rv = apply_load(c, 0, node, NULL, &found);
	if (!rv && !found)
		rv = lora_errf(LORA_ENOTFOUND, c->errmsg,
		               "relationship %llu: no node with id %llu",
		               (unsigned long long)edge,
		               (unsigned long long)node);
	if (!rv)
		live_note(c, node);
	return rv;
}

static int create_edge(struct apply_ctx *c, const Lora__CreateEdge *m)
{
	int found = 0, rv = 0;
	if (m->id < c->next_edge &&
	    (rv = apply_load(c, 1, m->id, NULL, &found)))
		return rv;
	if (found)
		return lora_errf(LORA_EEXIST, c->errmsg,
		                 "relationship %llu already exists",
		                 (unsigned long long)m->id);
	struct sto_rec r = {0};
	r.from = m->from_id;
	r.to = m->to_id;
	rv = apply_intern(c, STO_TOK_TYPE, m->type, &r.type);
	for (size_t i = 0; !rv && i < m->n_properties; i++)
		rv = m->properties[i]
		         ? prop_set(c, LORA__ENTITY_KIND__ENTITY_EDGE, m->id,
		                    &r, m->properties[i]->key,
		                    m->properties[i]->value)
		         : LORA_EINVAL;
	struct sto_adj_ent out = {r.type, r.to, m->id},
	                   in = {r.type, r.from, m->id};
	int had[2] = {0, 0};
	if (!rv)
		rv = adj_add(c, r.from, STO_K_OUT, &out, &r.chunk[0], &had[0]);
	if (!rv)
		rv = adj_add(c, r.to, STO_K_IN, &in, &r.chunk[1], &had[1]);
	/* An end whose list already had entries exists; only the others
	 * are looked up (two reads fewer per edge once nodes have edges).
	 * A missing end rejects the batch, dropping the writes above. */
	if (!rv && !had[0])
		rv = edge_end(c, m->id, r.from);
	if (!rv && !had[1] && r.to != r.from)
		rv = edge_end(c, m->id, r.to);
	if (!rv)
		rv = apply_store(c, 1, m->id, &r);
	if (!rv)
		rv = count_type(c, r.type, 1);
	sto_rec_free(&r);
	c->edges_delta++;
	if (m->id >= c->next_edge)
		c->next_edge = m->id + 1;
	return rv;
}

static int delete_edge(struct apply_ctx *c, uint64_t id)
{
	struct sto_rec r = {0};
	int rv = load_existing(c, LORA__ENTITY_KIND__ENTITY_EDGE, id, &r);
	if (!rv)
		rv = idx_edge_delete(c, id, &r);
	if (!rv)
		rv = vec_remove_all(c, LORA__ENTITY_KIND__ENTITY_EDGE, id, &r);
	if (!rv)
		rv = adj_remove(c, r.from, STO_K_OUT, r.chunk[0], id);
	if (!rv)
		rv = adj_remove(c, r.to, STO_K_IN, r.chunk[1], id);
	if (!rv) {
		uint8_t k[9];
		sto_key_edge(k, id);
		apply_del(c, STO_CF_EDGES, k, 9);
		c->edges_delta--;
		rv = count_type(c, r.type, -1);
	}
	sto_rec_free(&r);
	return rv;
}

static int delete_node_edges(struct apply_ctx *c, const Lora__DeleteNode *m)
{
	int any;
	int rv = adj_any(c, m->id, &any);
	if (rv || !any)
		return rv;
	if (!m->detach)
		return lora_errf(LORA_ECONSTRAINT, c->errmsg,
		                 "cannot delete node %llu: it still has "
		                 "relationships (use DETACH DELETE)",
		                 (unsigned long long)m->id);
	struct lora_buf ids = {0};
	rv = adj_list(c, m->id, STO_K_OUT, &ids);
	if (!rv)
		rv = adj_list(c, m->id, STO_K_IN, &ids);
	/* Last entry first: removing it from the node's own list is then a
	 * pop, not a move. */
	for (size_t off = ids.len; !rv && off >= 8; off -= 8) {
		uint64_t e = lora_get_be64((const uint8_t *)ids.data + off - 8);
		int found;
		/* A self-loop is listed twice; delete it once. */
		rv = apply_load(c, 1, e, NULL, &found);
		if (!rv && found)
			rv = delete_edge(c, e);
		if (!rv && found)
			rv = lora_buf_append(&c->detached, &e, sizeof e);
	}
	lora_buf_free(&ids);
	return rv;
}

static int delete_node(struct apply_ctx *c, const Lora__DeleteNode *m)
{
	struct sto_rec r = {0};
	live_clear(c, m->id);
	int rv = load_existing(c, LORA__ENTITY_KIND__ENTITY_NODE, m->id, &r);
	if (!rv)
		rv = delete_node_edges(c, m);
	for (uint32_t i = 0; !rv && i < r.nlabels; i++) {
		uint8_t k[STO_LABEL_KEY_BYTES];
		rv = idx_label_change(c, m->id, &r, r.labels[i], 0);
		sto_key_label(k, r.labels[i], m->id);
		if (!rv)
			rv = label_key(c, 1, k);
		if (!rv)
			rv = count_label(c, r.labels[i], -1);
	}
	if (!rv)
		rv = vec_remove_all(c, LORA__ENTITY_KIND__ENTITY_NODE, m->id,
		                    &r);
	if (!rv) {
		uint8_t k[8];
		lora_put_be64(k, m->id);
		apply_del(c, STO_CF_NODES, k, 8);
		c->nodes_delta--;
	}
	sto_rec_free(&r);
	return rv;
}

static int set_property(struct apply_ctx *c, const Lora__SetProperty *m)
{
	struct sto_rec r = {0};
	int edge = m->entity == LORA__ENTITY_KIND__ENTITY_EDGE;
	int rv = load_existing(c, (int)m->entity, m->id, &r);
	if (!rv)
		rv = prop_set(c, (int)m->entity, m->id, &r, m->key, m->value);
	if (!rv)
		rv = apply_store(c, edge, m->id, &r);
	sto_rec_free(&r);
	return rv;
}

static int remove_property(struct apply_ctx *c, const Lora__RemoveProperty *m,
                           int vector_only)
{
	struct sto_rec r = {0};
	int edge = m->entity == LORA__ENTITY_KIND__ENTITY_EDGE;
	int rv = load_existing(c, (int)m->entity, m->id, &r);
	int64_t key = rv ? -1 : apply_tok_find(c, STO_TOK_KEY, m->key);
	if (key >= 0) {
		rv = vector_only ? vec_remove(c, (int)m->entity, m->id, &r,
		                              (uint32_t)key)
		                 : prop_remove(c, (int)m->entity, m->id, &r,
		                               (uint32_t)key);
		if (!rv)
			rv = apply_store(c, edge, m->id, &r);
	}
	sto_rec_free(&r);
	return rv;
}

static int set_vector(struct apply_ctx *c, const Lora__SetVector *m)
{
	struct sto_rec r = {0};
	int edge = m->entity == LORA__ENTITY_KIND__ENTITY_EDGE;
	uint32_t key;
	int rv = load_existing(c, (int)m->entity, m->owner_id, &r);
	if (!rv)
		rv = apply_intern(c, STO_TOK_KEY, m->key, &key);
	if (!rv)
		rv =
		    vec_set(c, (int)m->entity, m->owner_id, &r, key, m->vector);
	if (!rv)
		rv = apply_store(c, edge, m->owner_id, &r);
	sto_rec_free(&r);
	return rv;
}

static int label_change(struct apply_ctx *c, uint64_t node, const char *label,
                        int add)
{
	struct sto_rec r = {0};
	uint32_t t = 0;
	int rv = load_existing(c, LORA__ENTITY_KIND__ENTITY_NODE, node, &r);
	if (!rv && add) {
		rv = apply_intern(c, STO_TOK_LABEL, label, &t);
	} else if (!rv) {
		int64_t f =
		    label ? apply_tok_find(c, STO_TOK_LABEL, label) : -1;
		if (f < 0)
			goto out; /* unknown label: nothing to remove */
		t = (uint32_t)f;
	}
	if (rv || sto_rec_has_label(&r, t) == add)
		goto out;
	uint8_t k[STO_LABEL_KEY_BYTES];
	sto_key_label(k, t, node);
	rv = label_key(c, !add, k);
	if (!rv && add)
		rv = sto_rec_add_label(&r, t);
	if (!rv)
		rv = idx_label_change(c, node, &r, t, add);
	if (!add)
		sto_rec_del_label(&r, t);
	if (!rv)
		rv = count_label(c, t, add ? 1 : -1);
	if (!rv)
		rv = apply_store(c, 0, node, &r);
out:
	sto_rec_free(&r);
	return rv;
}

static int apply_one(struct apply_ctx *c, const Lora__Mutation *m)
{
	switch (m->op_case) {
	case LORA__MUTATION__OP_CREATE_NODE:
		return create_node(c, m->create_node);
	case LORA__MUTATION__OP_DELETE_NODE:
		return delete_node(c, m->delete_node);
	case LORA__MUTATION__OP_SET_PROPERTY:
		return set_property(c, m->set_property);
	case LORA__MUTATION__OP_REMOVE_PROPERTY:
		return remove_property(c, m->remove_property, 0);
	case LORA__MUTATION__OP_ADD_LABEL:
		return label_change(c, m->add_label->node_id,
		                    m->add_label->label, 1);
	case LORA__MUTATION__OP_REMOVE_LABEL:
		return label_change(c, m->remove_label->node_id,
		                    m->remove_label->label, 0);
	case LORA__MUTATION__OP_CREATE_EDGE:
		return create_edge(c, m->create_edge);
	case LORA__MUTATION__OP_DELETE_EDGE:
		return delete_edge(c, m->delete_edge->id);
	case LORA__MUTATION__OP_SET_VECTOR:
		return set_vector(c, m->set_vector);
	case LORA__MUTATION__OP_REMOVE_VECTOR: {
		Lora__RemoveProperty rp = LORA__REMOVE_PROPERTY__INIT;
		rp.entity = m->remove_vector->entity;
		rp.id = m->remove_vector->owner_id;
		rp.key = m->remove_vector->key;
		return remove_property(c, &rp, 1);
	}
	case LORA__MUTATION__OP_CREATE_INDEX:
		return apply_create_index(c, m->create_index);
	case LORA__MUTATION__OP_DROP_INDEX:
		return apply_drop_index(c, m->drop_index);
	case LORA__MUTATION__OP_USER_CHANGE:
		return apply_user_change(c, m->user_change);
	case LORA__MUTATION__OP_AUTH_BOOTSTRAP:
		return apply_auth_bootstrap(c, m->auth_bootstrap);
	default:
		return lora_errf(LORA_EINVAL, c->errmsg, "empty mutation");
	}
}

/* Checks that the sub-message of the op is present (protobuf-c leaves it
 * NULL only for malformed input built by hand). */
static int mutation_ok(const Lora__Mutation *m)
{
	if (!m)
		return 0;
	switch (m->op_case) {
	case LORA__MUTATION__OP_CREATE_NODE:
		return m->create_node != NULL;
	case LORA__MUTATION__OP_DELETE_NODE:
		return m->delete_node != NULL;
	case LORA__MUTATION__OP_SET_PROPERTY:
		return m->set_property != NULL;
	case LORA__MUTATION__OP_REMOVE_PROPERTY:
		return m->remove_property != NULL;
	case LORA__MUTATION__OP_ADD_LABEL:
		return m->add_label != NULL;
	case LORA__MUTATION__OP_REMOVE_LABEL:
		return m->remove_label != NULL;
	case LORA__MUTATION__OP_CREATE_EDGE:
		return m->create_edge != NULL;
	case LORA__MUTATION__OP_DELETE_EDGE:
		return m->delete_edge != NULL;
	case LORA__MUTATION__OP_SET_VECTOR:
		return m->set_vector != NULL;
	case LORA__MUTATION__OP_REMOVE_VECTOR:
		return m->remove_vector != NULL;
	case LORA__MUTATION__OP_CREATE_INDEX:
		return m->create_index != NULL;
	case LORA__MUTATION__OP_DROP_INDEX:
		return m->drop_index != NULL;
	case LORA__MUTATION__OP_USER_CHANGE:
		return m->user_change != NULL;
	case LORA__MUTATION__OP_AUTH_BOOTSTRAP:
		return m->auth_bootstrap != NULL;
	default:
		return 1; /* apply_one rejects it */
	}
}

/* ---- the batch
 * ------------------------------------------------------------------- */

/* ---- cached meta values ----------------------------------------------------
 */

static struct sto_meta_slot *meta_slot(struct sto_store *s, const uint8_t *k,
                                       size_t klen, int add)
{
	if (s->meta_cache == NULL)
		return NULL;
	uint32_t h = lora_hash32(k, klen);
	for (size_t n = 0; n < STO_META_CACHE_SLOTS; n++) {
		struct sto_meta_slot *sl =
		    &s->meta_cache[(h + n) & (STO_META_CACHE_SLOTS - 1)];
		if (sl->used && sl->klen == klen && !memcmp(sl->key, k, klen))
			return sl;
		if (sl->used)
			continue;
		if (!add || s->meta_cached >= STO_META_CACHE_SLOTS / 2)
			return NULL;
		sl->used = 1;
		sl->klen = (uint8_t)klen;
		memcpy(sl->key, k, klen);
		s->meta_cached++;
		return sl;
	}
	return NULL;
}

/* A meta u64 of the latest state, through the cache. */
static int meta_read(struct sto_store *s, const uint8_t *k, size_t klen,
                     uint64_t *v)
{
	struct sto_meta_slot *sl = meta_slot(s, k, klen, 0);
	if (sl) {
		*v = sl->v;
		return 0;
	}
	int rv = sto_meta_get_u64(s, s->ro, (const char *)k, klen, v);
	if (rv == 0 && (sl = meta_slot(s, k, klen, 1)) != NULL)
		sl->v = *v;
	return rv;
}

int apply_type_count(struct apply_ctx *c, uint32_t type, uint64_t *n)
{
	uint8_t k[5] = {STO_META_TYPE_COUNT};
	lora_put_be32(k + 1, type);
	int rv = meta_read(c->s, k, sizeof k, n);
	if (rv)
		return rv;
	int64_t d = type < c->type_delta_n ? c->type_delta[type] : 0;
	*n = d < 0 && *n < (uint64_t)-d ? 0 : *n + (uint64_t)d;
	return 0;
}

/* Stages a meta u64 write (cached once the batch commits). */
static int meta_write(struct apply_ctx *c, const uint8_t *k, size_t klen,
                      uint64_t v)
{
	uint8_t b[8], rec[14] = {(uint8_t)klen};
	lora_put_be64(b, v);
	memcpy(rec + 1, k, klen);
	memcpy(rec + 6, b, 8);
	int rv = lora_buf_append(&c->meta_new, rec, sizeof rec);
	return rv ? rv
	          : apply_wonly(c, 0, STO_CF_META, (const char *)k, klen, b, 8);
}

static void meta_committed(struct apply_ctx *c)
{
	for (size_t off = 0; off + 14 <= c->meta_new.len; off += 14) {
		const uint8_t *r = (const uint8_t *)c->meta_new.data + off;
		struct sto_meta_slot *sl = meta_slot(c->s, r + 1, r[0], 1);
		if (sl)
			sl->v = lora_get_be64(r + 6);
	}
}

static int put_u64(struct apply_ctx *c, char meta_key, uint64_t v)
{
	return meta_write(c, (const uint8_t *)&meta_key, 1, v);
}

/* Adds delta to the count under key (prefix + optional token). */
static int count_write(struct apply_ctx *c, char prefix, int has_tok,
                       uint32_t tok, int64_t delta)
{
	uint8_t k[5];
	k[0] = (uint8_t)prefix;
	lora_put_be32(k + 1, tok);
	size_t klen = has_tok ? 5 : 1;
	/* Counts are written only here, so the database (and the cache)
	 * has the current value. */
	uint64_t cur;
	int rv = meta_read(c->s, k, klen, &cur);
	if (rv == LORA_ECORRUPT)
		cur = 0; /* a damaged count is rewritten, as it always was */
	else if (rv)
		return rv;
	/* A negative total can only come from damaged counts: clamp. */
	uint64_t nv = delta < 0 && cur < (uint64_t)-delta ? 0 : cur + delta;
	return meta_write(c, k, klen, nv);
}

static int apply_finish(struct apply_ctx *c)
{
	int rv = adj_flush(c);
	for (uint32_t t = 0; !rv && t < c->label_delta_n; t++)
		if (c->label_delta[t])
			rv = count_write(c, STO_META_LABEL_COUNT, 1, t,
			                 c->label_delta[t]);
	for (uint32_t t = 0; !rv && t < c->type_delta_n; t++)
		if (c->type_delta[t])
			rv = count_write(c, STO_META_TYPE_COUNT, 1, t,
			                 c->type_delta[t]);
	if (!rv && c->nodes_delta)
		rv = count_write(c, STO_META_NODE_COUNT, 0, 0, c->nodes_delta);
	if (!rv && c->edges_delta)
		rv = count_write(c, STO_META_EDGE_COUNT, 0, 0, c->edges_delta);
	if (!rv && c->next_node != c->state_next_node)
		rv = put_u64(c, STO_META_NEXT_NODE, c->next_node);
	if (!rv && c->next_edge != c->state_next_edge)
		rv = put_u64(c, STO_META_NEXT_EDGE, c->next_edge);
	return rv;
}

static int ctx_init(struct apply_ctx *c, struct sto_store *s, char *errmsg)
{
	memset(c, 0, sizeof(*c));
	c->s = s;
	c->errmsg = errmsg;
	c->wb = rocksdb_writebatch_wi_create(0, 1);
	uint8_t k = STO_META_NEXT_NODE;
	int rv = meta_read(s, &k, 1, &c->state_next_node);
	k = STO_META_NEXT_EDGE;
	if (!rv)
		rv = meta_read(s, &k, 1, &c->state_next_edge);
	c->next_node = c->state_next_node;
	c->next_edge = c->state_next_edge;
	return rv;
}

static void ctx_free(struct apply_ctx *c)
{
	apply_bulk_end(c);
	rocksdb_writebatch_wi_destroy(c->wb);
	for (int k = 0; k < STO_TOK_KINDS; k++)
		sto_tok_free(&c->pend[k]);
	if (c->cat_copied)
		sto_cat_free(&c->cat);
	lora_free(c->label_delta);
	lora_free(c->type_delta);
	lora_buf_free(&c->kbuf);
	lora_buf_free(&c->vbuf);
	lora_buf_free(&c->wonly);
	lora_buf_free(&c->meta_new);
	lora_buf_free(&c->detached);
	lora_buf_free(&c->live_new);
	adj_free(c);
}

/* The whole write: the indexed batch's bytes, then the write-only ops. */
static rocksdb_writebatch_t *full_batch(struct apply_ctx *c)
{
	size_t n;
	const char *rep = rocksdb_writebatch_wi_data(c->wb, &n);
	rocksdb_writebatch_t *b = rocksdb_writebatch_create_from(rep, n);
	for (size_t off = 0; off < c->wonly.len;) {
		const uint8_t *h = (const uint8_t *)c->wonly.data + off;
		uint32_t klen = lora_get_be32(h + 2),
		         vlen = lora_get_be32(h + 6);
		const char *k = (const char *)h + 10;
		rocksdb_column_family_handle_t *cf = c->s->cf[h[1]];
		if (h[0])
			rocksdb_writebatch_delete_cf(b, cf, k, klen);
		else
			rocksdb_writebatch_put_cf(b, cf, k, klen, k + klen,
			                          vlen);
		off += 10 + (size_t)klen + vlen;
	}
	return b;
}

/* Writes the staged batch, then publishes its tokens and catalogue. */
static int ctx_commit(struct apply_ctx *c, uint64_t index)
{
	struct sto_store *s = c->s;
	int rv = 0;
	pthread_mutex_lock(&s->tok_mu);
	for (int k = 0; !rv && k < STO_TOK_KINDS; k++)
		rv = sto_tok_reserve(&s->tok[k], c->pend[k].n);
	pthread_mutex_unlock(&s->tok_mu);
	if (!rv)
		rv = put_u64(c, STO_META_APPLIED, index);
	if (rv)
		return rv;
	char *err = NULL;
	rocksdb_writebatch_t *full = full_batch(c);
	rocksdb_write(s->db, s->wo, full, &err);
	rocksdb_writebatch_destroy(full);
	if (err)
		return sto_rocks_err(err, c->errmsg, "write batch");
	pthread_mutex_lock(&s->tok_mu);
	for (int k = 0; k < STO_TOK_KINDS; k++) {
		for (uint32_t i = 0; i < c->pend[k].n; i++)
			sto_tok_add(&s->tok[k], c->pend[k].names[i],
			            c->pend[k].lens[i]);
		c->pend[k].n = 0; /* names now belong to the cache */
	}
	pthread_mutex_unlock(&s->tok_mu);
	if (c->cat_copied) {
		sto_cat_free(&s->cat);
		s->cat = c->cat;
		c->cat_copied = 0;
	}
	meta_committed(c);
	atomic_store(&s->applied, index);
	return 0;
}

/* A rejected batch still consumes its log index. */
/* A rejected batch: the applied index moves on and the rejection (its
 * code, under the entry's index) is recorded, so that readers of the log
 * (the change stream) can tell it changed nothing. */
static int write_applied_only(struct sto_store *s, uint64_t index, int rejected,
                              char *errmsg)
{
	uint8_t b[8], rk[STO_REJECTED_KEY_BYTES], code[4];
	char k = STO_META_APPLIED, *err = NULL;
	lora_put_be64(b, index);
	sto_rejected_key(rk, index);
	lora_put_be32(code, (uint32_t)rejected);
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	rocksdb_writebatch_put_cf(wb, s->cf[STO_CF_META], &k, 1, (char *)b, 8);
	rocksdb_writebatch_put_cf(wb, s->cf[STO_CF_META], (char *)rk, sizeof rk,
	                          (char *)code, sizeof code);
	rocksdb_write(s->db, s->wo, wb, &err);
	rocksdb_writebatch_destroy(wb);
	if (err)
		return sto_rocks_err(err, errmsg, "write applied index");
	atomic_store(&s->applied, index);
	return 0;
}

/* Properties of one creation compared pairwise; more take the general
 * path. */
#define APPLY_WONLY_PROPS_MAX 32

/* 1 when two of the n properties may have the same name. */
static int props_repeat(Lora__Property *const *p, size_t n)
{
	if (n > APPLY_WONLY_PROPS_MAX)
		return 1;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (!p[i] || !p[j] || !p[i]->key || !p[j]->key ||
			    !strcmp(p[i]->key, p[j]->key))
				return 1;
	return 0;
}

/* Which keys the batch may write without the indexed batch, because no
 * mutation of it reads them back. Label-index keys: unless it creates an
 * index (the backfill scans the label index). Records and vectors: when
 * the batch only creates, each kind with strictly ascending ids (so no
 * creation's existence check can hit an earlier one: each id is at or
 * above next_node / next_edge, or below the state's and then absent from
 * the batch) and no property named twice (a repeated vector reads its
 * key back). Node records also need: no edge in the batch (an edge's end
 * is looked up) and no constraint (the batch's nodes are read back to
 * check it) and no created node with the label of an HNSW graph (the
 * graph upkeep reads its record and vector back: the mutation's vector
 * would save the read, but the graph's insert costs far more than the
 * indexed batch's). A batch outside these shapes takes the general path. */
static void batch_wonly(struct apply_ctx *c, const Lora__MutationBatch *b)
{
	uint64_t last_node = 0, last_edge = 0;
	int nodes = 0, edges = 0, create_only = 1;
	c->wonly_label = 1;
	for (size_t i = 0; i < b->n_mutations; i++) {
		const Lora__Mutation *m = b->mutations[i];
		if (m && m->op_case == LORA__MUTATION__OP_CREATE_INDEX)
			c->wonly_label = 0;
		if (!m || !create_only)
			continue;
		if (m->op_case == LORA__MUTATION__OP_CREATE_NODE &&
		    m->create_node) {
			const Lora__CreateNode *n = m->create_node;
			create_only =
			    (!nodes++ || n->id > last_node) &&
			    !props_repeat(n->properties, n->n_properties);
			last_node = n->id;
		} else if (m->op_case == LORA__MUTATION__OP_CREATE_EDGE &&
		           m->create_edge) {
			const Lora__CreateEdge *e = m->create_edge;
			create_only =
			    (!edges++ || e->id > last_edge) &&
			    !props_repeat(e->properties, e->n_properties);
			last_edge = e->id;
		} else {
			create_only = 0;
		}
	}
	c->wonly_edges = create_only && !sto_hnsw_label_created(c->s, b, 1);
	c->wonly_nodes = create_only && !edges && !apply_has_constraints(c) &&
	                 !sto_hnsw_label_created(c->s, b, 0);
}

/* A batch computed over the entry `after` without waiting for it
 * (MutationBatch.after_index: CALL { ... } IN TRANSACTIONS proposes a
 * chunk while the one before it commits) is refused when that entry was:
 * every node reads the same recorded rejection (write_applied_only), so
 * a chunk never commits without the one before it. */
static int after_refused(struct sto_store *s, uint64_t index, uint64_t after,
                         char *errmsg)
{
	if (after >= index)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "after_index %llu is not an earlier entry",
		                 (unsigned long long)after);
	uint8_t k[STO_REJECTED_KEY_BYTES];
	sto_rejected_key(k, after);
	char *val = NULL;
	size_t vlen = 0;
	int rv = sto_get(s, s->ro, STO_CF_META, k, sizeof k, &val, &vlen);
	if (rv)
		return lora_errf(rv, errmsg,
		                 "read whether entry %llu was refused",
		                 (unsigned long long)after);
	if (val == NULL)
		return 0;
	rocksdb_free(val);
	return lora_errf(LORA_EINVAL, errmsg,
	                 "computed over the transaction of entry %llu, which "
	                 "was refused",
	                 (unsigned long long)after);
}

/* refused (sto_apply_refused): the entry's bytes were refused; batch is
 * then the empty one, applied as any (a vector index build takes its
 * step), with the rejection recorded in the same write. */
static int apply_locked(struct sto_store *s, uint64_t index,
                        const Lora__MutationBatch *batch, int refused,
                        char *errmsg)
{
	struct apply_ctx c;
	size_t i = 0;
	int rv = ctx_init(&c, s, errmsg);
	if (!rv && refused) {
		uint8_t rk[STO_REJECTED_KEY_BYTES], code[4];
		sto_rejected_key(rk, index);
		lora_put_be32(code, (uint32_t)refused);
		rv = apply_wonly(&c, 0, STO_CF_META, rk, sizeof rk, code,
		                 sizeof code);
	}
	if (!rv && batch->after_index)
		rv = after_refused(s, index, batch->after_index, errmsg);
	if (!rv && batch->n_mutations > STO_MUTATIONS_PER_BATCH_MAX)
		rv = lora_errf(LORA_ELIMIT, errmsg, "batch of %zu mutations",
		               batch->n_mutations);
	if (!rv) {
		batch_wonly(&c, batch);
		rv = adj_prefetch(&c, batch);
	}
	for (; !rv && i < batch->n_mutations; i++) {
		const Lora__Mutation *m = batch->mutations[i];
		c.mut = i;
		rv = mutation_ok(m)
		         ? apply_one(&c, m)
		         : lora_errf(LORA_EINVAL, errmsg, "malformed mutation");
		if (rv == LORA_ENOMEM)
			lora_errf(rv, errmsg, "out of memory");
		if (rv)
			lora_errwrap(rv, errmsg, "mutation %zu", i);
	}
	if (!rv)
		rv = apply_constraints_check(&c, batch);
	if (!rv)
		rv = sto_hnsw_apply(&c, batch);
	if (!rv)
		rv = apply_finish(&c);
	if (!rv)
		rv = apply_requests(&c, index, batch);
	if (!rv) {
		int nodes = sto_ncache_write_begin(s, batch);
		rv = ctx_commit(&c, index);
		if (!rv && c.req_prune_next)
			s->req_prune_next = c.req_prune_next;
		adj_committed(&c, rv == 0);
		sto_ncache_write_end(s, nodes);
		if (!rv)
			live_commit(&c);
	}
	sto_hnsw_committed(s, rv == 0);
	ctx_free(&c);
	if (rv && !apply_is_fatal(rv)) {
		int wrv = write_applied_only(s, index, rv, NULL);
		if (wrv)
			rv = lora_errf(wrv, errmsg, "write applied index: %s",
			               lora_strerror(wrv));
	}
	if (rv)
		lora_errwrap(rv, errmsg, "apply entry %llu",
		             (unsigned long long)index);
	return rv;
}

/* ECORRUPT when entries before index were never applied (a gap), else
 * 0; errmsg says which. */
static int apply_gap(struct sto_store *s, uint64_t index, char *errmsg)
{
	uint64_t applied = atomic_load(&s->applied);
	if (index <= applied + 1)
		return 0;
	return lora_errf(LORA_ECORRUPT, errmsg,
	                 "apply entry %llu: the state is at applied index "
	                 "%llu, entries %llu..%llu are missing",
	                 (unsigned long long)index, (unsigned long long)applied,
	                 (unsigned long long)applied + 1,
	                 (unsigned long long)index - 1);
}

/* sto_apply and sto_apply_refused: the entry at index, under apply_mu. */
static int apply_entry(struct sto_store *s, uint64_t index,
                       const Lora__MutationBatch *batch, int refused,
                       char *errmsg)
{
	/* RocksDB's per-thread perf counters: nothing reads them, and every
	 * Get, MultiGet and memtable insert of the applying thread paid for
	 * them (a thread-local lookup each; views switch them off too) */
	rocksdb_set_perf_level(rocksdb_disable);
	pthread_mutex_lock(&s->apply_mu);
	int rv = apply_gap(s, index, errmsg);
	if (!rv && index > atomic_load(&s->applied))
		rv = apply_locked(s, index, batch, refused, errmsg);
	pthread_mutex_unlock(&s->apply_mu);
	return rv;
}

int sto_apply_refused(struct sto_store *s, uint64_t index, int code,
                      char *errmsg)
{
	LORA_ASSERT(index > 0 && code != 0 && code != LORA_ENOMEM);
	static const Lora__MutationBatch empty = LORA__MUTATION_BATCH__INIT;
	int rv = apply_entry(s, index, &empty, code, errmsg);
	return rv ? rv : code;
}

int sto_apply(struct sto_store *s, uint64_t index,
              const Lora__MutationBatch *batch, char *errmsg)
{
	LORA_ASSERT(index > 0 && batch);
	return apply_entry(s, index, batch, 0, errmsg);
}
