/* text_index.c - TEXT indexes: trigram postings that serve CONTAINS and
 * ENDS WITH on string properties (STARTS WITH is served by a RANGE index
 * on the property, or scans).
 *
 * For every node with the label whose property is a string, one empty
 * entry 'X' label key trigram node per distinct three-byte substring of
 * the string (its UTF-8 bytes: a substring of code points is a substring
 * of bytes, and a byte trigram never matches across a code point it does
 * not contain whole, since the check after the seek compares the real
 * strings). A needle of three bytes or more has trigrams that every
 * matching string contains, so the nodes under all of them (intersected,
 * each list ordered by node id) are a superset of the matches; the query
 * filters that superset with the predicate. Shorter needles, and values
 * other than strings, are left to a scan.
 *
 * Why trigrams and not a reversed-string range for ENDS WITH: one
 * structure serves all three operators, and a seek costs the postings of
 * the needle's trigrams rather than of the whole label. The figures are
 * in docs/storage.md. Entries cost about (length - 2) keys of 20 bytes per
 * string, written on apply like the range entries (apply_index.c).
 */
#include <stdlib.h>
#include <string.h>

#include "applyInt.h"

static const struct sto_catalog *cat_of(struct apply_ctx *c)
{
	return c->cat_copied ? &c->cat : &c->s->cat;
}

static int is_text(const Lora__CreateIndex *d)
{
	return d->kind == LORA__INDEX_KIND__INDEX_TEXT &&
	       d->entity == LORA__ENTITY_KIND__ENTITY_NODE &&
	       d->n_properties == 1;
}

/* Whether a TEXT index covers (label, key) in the catalogue. */
static int text_covered(struct apply_ctx *c, uint32_t label, uint32_t key)
{
	const struct sto_catalog *k = cat_of(c);
	size_t i = 0;
	while (i < k->n && !is_text(k->defs[i]))
		i++;
	if (i == k->n) /* no TEXT index: no token names to look up */
		return 0;
	const char *ln = apply_tok_name(c, STO_TOK_LABEL, label);
	const char *kn = apply_tok_name(c, STO_TOK_KEY, key);
	for (; ln && kn && i < k->n; i++)
		if (is_text(k->defs[i]) && !strcmp(k->defs[i]->label, ln) &&
		    !strcmp(k->defs[i]->properties[0], kn))
			return 1;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The distinct trigrams of s (each as 24 bits), sorted, into *out (freed
 * with lora_free); *n = 0 when s is shorter than three bytes. */
static int trigrams(const uint8_t *s, size_t len, uint32_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (len < STO_TEXT_NEEDLE_MIN)
		return 0;
	uint32_t *t = lora_malloc(sizeof(uint32_t) * (len - 2));
	if (!t)
		return LORA_ENOMEM;
	for (size_t i = 0; i + 2 < len; i++)
		t[i] =
		    (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
	qsort(t, len - 2, sizeof *t, cmp_u32);
	size_t k = 0;
	for (size_t i = 0; i < len - 2; i++)
		if (!k || t[k - 1] != t[i])
			t[k++] = t[i];
	*out = t;
	*n = k;
	return 0;
}

static void text_key(uint8_t k[STO_TEXT_KEY_BYTES], uint32_t label,
                     uint32_t key, uint32_t tri, uint64_t node)
{
	k[0] = STO_K_TEXT;
	lora_put_be32(k + 1, label);
	lora_put_be32(k + 5, key);
	k[9] = (uint8_t)(tri >> 16);
	k[10] = (uint8_t)(tri >> 8);
	k[11] = (uint8_t)tri;
	lora_put_be64(k + 12, node);
}

/* Adds (add = 1) or removes the postings of string value bytes p/len (a
 * packed Value; anything but a string has none). */
static int postings(struct apply_ctx *c, uint32_t label, uint32_t key,
                    const Lora__Value *v, uint64_t node, int add)
{
	if (!v || v->kind_case != LORA__VALUE__KIND_STRING_VALUE)
		return 0;
	uint32_t *t;
	size_t n;
	int rv = trigrams((const uint8_t *)v->string_value,
	                  strlen(v->string_value), &t, &n);
	uint8_t k[STO_TEXT_KEY_BYTES];
	for (size_t i = 0; !rv && i < n; i++) {
		text_key(k, label, key, t[i], node);
		if (add)
			rv = apply_put(c, STO_CF_INDEX, k, sizeof k, "", 0);
		else
			apply_del(c, STO_CF_INDEX, k, sizeof k);
	}
	lora_free(t);
	return rv;
}

static int postings_bytes(struct apply_ctx *c, uint32_t label, uint32_t key,
                          const uint8_t *p, size_t len, uint64_t node, int add)
{
	Lora__Value *v;
	int rv = sto_value_unpack(p, len, &v);
	if (rv)
		return rv;
	rv = postings(c, label, key, v, node, add);
	lora__value__free_unpacked(v, &lora_pb_allocator);
	return rv;
}

int idx_text_prop_change(struct apply_ctx *c, uint64_t node,
                         const struct sto_rec *r, uint32_t key,
                         const struct sto_prop *old, const Lora__Value *nv)
{
	for (uint32_t i = 0; i < r->nlabels; i++) {
		if (!text_covered(c, r->labels[i], key))
			continue;
		int rv = old ? postings_bytes(c, r->labels[i], key,
		                              (const uint8_t *)r->data.data +
		                                  old->off,
		                              old->len, node, 0)
		             : 0;
		if (!rv && nv)
			rv = postings(c, r->labels[i], key, nv, node, 1);
		if (rv)
			return rv;
	}
	return 0;
}

int idx_text_label_change(struct apply_ctx *c, uint64_t node,
                          const struct sto_rec *r, uint32_t label, int add)
{
	for (uint32_t i = 0; i < r->nprops; i++) {
		const struct sto_prop *p = &r->props[i];
		if (!text_covered(c, label, p->key))
			continue;
		int rv = postings_bytes(c, label, p->key,
		                        (const uint8_t *)r->data.data + p->off,
		                        p->len, node, add);
		if (rv)
			return rv;
	}
	return 0;
}

int idx_text_build(struct apply_ctx *c, const Lora__CreateIndex *m)
{
	uint32_t label, key;
	int rv = apply_intern(c, STO_TOK_LABEL, m->label, &label);
	if (!rv)
		rv = apply_intern(c, STO_TOK_KEY, m->properties[0], &key);
	if (rv || text_covered(c, label, key))
		return rv;
	struct lora_buf ids = {0};
	rv = apply_label_nodes(c, label, &ids);
	struct sto_rec r = {0};
	for (size_t off = 0; !rv && off < ids.len; off += 8) {
		uint64_t node = lora_get_be64((const uint8_t *)ids.data + off);
		int found, i;
		rv = apply_load(c, 0, node, &r, &found);
		if (rv || !found || (i = sto_rec_find_prop(&r, key)) < 0)
			continue;
		rv = postings_bytes(c, label, key,
		                    (const uint8_t *)r.data.data +
		                        r.props[i].off,
		                    r.props[i].len, node, 1);
	}
	sto_rec_free(&r);
	lora_buf_free(&ids);
	return rv;
}

int idx_text_drop(struct apply_ctx *c, const Lora__CreateIndex *d)
{
	if (!is_text(d))
		return 0;
	int64_t label = apply_tok_find(c, STO_TOK_LABEL, d->label);
	int64_t key = apply_tok_find(c, STO_TOK_KEY, d->properties[0]);
	if (label < 0 || key < 0 ||
	    text_covered(c, (uint32_t)label, (uint32_t)key))
		return 0;
	uint8_t pfx[9];
	pfx[0] = STO_K_TEXT;
	lora_put_be32(pfx + 1, (uint32_t)label);
	lora_put_be32(pfx + 5, (uint32_t)key);
	struct lora_buf keys = {0};
	rocksdb_iterator_t *it = apply_iter(c, STO_CF_INDEX);
	int rv = 0;
	for (rocksdb_iter_seek(it, (const char *)pfx, sizeof pfx);
	     !rv && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen;
		const char *k = rocksdb_iter_key(it, &klen);
		if (klen != STO_TEXT_KEY_BYTES || memcmp(k, pfx, sizeof pfx))
			break;
		rv = lora_buf_append(&keys, k, klen);
	}
	if (!rv)
		rv = apply_iter_err(it);
	rocksdb_iter_destroy(it);
	for (size_t off = 0; !rv && off < keys.len; off += STO_TEXT_KEY_BYTES)
		apply_del(c, STO_CF_INDEX, keys.data + off, STO_TEXT_KEY_BYTES);
	lora_buf_free(&keys);
	return rv;
}

/* ---- the read side ---------------------------------------------------- */

/* The node of the posting it is at, if under prefix pfx (12 bytes: 'X'
 * label key trigram): 1 and *id, or 0 (past the list). */
static int pl_at(rocksdb_iterator_t *it, const uint8_t *pfx, uint64_t *id)
{
	if (!rocksdb_iter_valid(it))
		return 0;
	size_t klen;
	const char *k = rocksdb_iter_key(it, &klen);
	if (klen != STO_TEXT_KEY_BYTES || memcmp(k, pfx, 12))
		return 0;
	*id = lora_get_be64((const uint8_t *)k + 12);
	return 1;
}

/* Moves it to the first posting of pfx at or after node x (pl_at). */
static int pl_seek(rocksdb_iterator_t *it, const uint8_t *pfx, uint64_t x,
                   uint64_t *id)
{
	uint8_t k[STO_TEXT_KEY_BYTES];
	memcpy(k, pfx, 12);
	lora_put_be64(k + 12, x);
	rocksdb_iter_seek(it, (const char *)k, sizeof k);
	return pl_at(it, pfx, id);
}

/* Appends id to the array *ids of *n (capacity *cap), which grows by
 * doubling but never past bytes_max (0: no limit): LORA_EMEMORY when id
 * would take it past. So the array, which the seek hands over as it is,
 * never holds more than the budget, and a growth step briefly holds
 * less than twice it (old and new array; a lora_buf doubled past the
 * budget and was then copied: three times). */
static int ids_push(uint64_t **ids, size_t *n, size_t *cap, size_t bytes_max,
                    uint64_t id)
{
	size_t max = bytes_max ? bytes_max / 8 : SIZE_MAX / 8;
	if (*n == *cap) {
		if (*n >= max)
			return LORA_EMEMORY;
		size_t c = *cap ? *cap * 2 : 64;
		if (c > max || c < *cap)
			c = max;
		uint64_t *p = lora_realloc(*ids, c * 8);
		if (!p)
			return LORA_ENOMEM;
		*ids = p;
		*cap = c;
	}
	(*ids)[(*n)++] = id;
	return 0;
}

/* Puts in *ids (*n of them, ascending; lora_free) the nodes in all m
 * posting lists of pfx, by a leapfrog join: each list is stepped by seeks
 * to the largest node seen, so no list is loaded whole and the memory is
 * the result's (review: a common trigram's list can hold every node of
 * the label), bounded by bytes_max (ids_push). */
static int leapfrog(struct sto_view *v, uint8_t (*pfx)[12], size_t m,
                    uint64_t deadline_ms, size_t bytes_max, uint64_t **ids,
                    size_t *n)
{
	size_t cap = 0;
	uint64_t seeks = 0;
	rocksdb_iterator_t *it[STO_TEXT_SEEK_TRIGRAMS_MAX];
	for (size_t i = 0; i < m; i++)
		it[i] = rocksdb_create_iterator_cf(v->s->db, v->ro,
		                                   v->s->cf[STO_CF_INDEX]);
	uint64_t x = 0;
	int rv = 0;
	for (int live = 1; live && !rv;) {
		size_t agree = 0;
		for (size_t i = 0; agree < m && !rv; i = (i + 1) % m) {
			uint64_t id;
			if (deadline_ms &&
			    seeks++ % STO_TEXT_CHECK_SEEKS == 0 &&
			    lora_now_ms() > deadline_ms) {
				rv = LORA_ETIMEOUT;
				break;
			}
			if (!pl_seek(it[i], pfx[i], x, &id)) {
				live = 0;
				break;
			}
			agree = id == x ? agree + 1 : 1;
			x = id;
		}
		if (!live || rv)
			break;
		rv = ids_push(ids, n, &cap, bytes_max, x);
		live = x++ != UINT64_MAX;
	}
	for (size_t i = 0; i < m; i++)
		rv = sto_iter_close(it[i], rv, NULL, "text index seek");
	return rv;
}

/* Whether the snapshot's catalogue has a TEXT index on (label, key). */
static int text_indexed(struct sto_view *v, const char *label, const char *key)
{
	Lora__CreateIndex *const *defs;
	size_t n;
	if (sto_view_catalogue(v, &defs, &n))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (is_text(defs[i]) && !strcmp(defs[i]->label, label) &&
		    !strcmp(defs[i]->properties[0], key))
			return 1;
	return 0;
}

int sto_view_text_seek(struct sto_view *v, const char *label, const char *key,
                       const char *needle, size_t len, uint64_t deadline_ms,
                       size_t bytes_max, uint64_t **ids, size_t *nids)
{
	*ids = NULL;
	*nids = 0;
	if (!text_indexed(v, label, key))
		return LORA_ENOTFOUND;
	if (len < STO_TEXT_NEEDLE_MIN)
		return LORA_EINVAL;
	int64_t lt = sto_tok_find(v->s, STO_TOK_LABEL, label, strlen(label));
	int64_t kt = sto_tok_find(v->s, STO_TOK_KEY, key, strlen(key));
	if (lt < 0 || kt < 0)
		return 0;
	uint32_t *t;
	size_t n;
	int rv = trigrams((const uint8_t *)needle, len, &t, &n);
	/* a few trigrams spread over the needle narrow as well as all */
	size_t use =
	    n < STO_TEXT_SEEK_TRIGRAMS_MAX ? n : STO_TEXT_SEEK_TRIGRAMS_MAX;
	uint8_t pfx[STO_TEXT_SEEK_TRIGRAMS_MAX][12];
	for (size_t i = 0; i < use; i++) {
		uint8_t k[STO_TEXT_KEY_BYTES];
		text_key(k, (uint32_t)lt, (uint32_t)kt, t[i * n / use], 0);
		memcpy(pfx[i], k, 12);
	}
	if (!rv && use)
		rv = leapfrog(v, pfx, use, deadline_ms, bytes_max, ids, nids);
	lora_free(t);
	if (rv) { /* nothing is returned on an error */
		lora_free(*ids);
		*ids = NULL;
		*nids = 0;
	}
	return rv;
}
