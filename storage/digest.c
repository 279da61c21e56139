/* digest.c - a logical digest of the whole state store.
 *
 * Every logical element (a node, one of its labels, one property, an edge,
 * an adjacency entry (not the chunk holding it), an index entry, a vector, a
 * count, an index definition) is hashed on its own with names in place of
 * tokens, and the 128-bit hashes are added up. The sum does not depend on the
 * order in which elements are visited or on which token ids a store assigned,
 * so two stores holding the same graph give the same digest whatever their
 * history. Left out: the applied index, the id counters (they remember
 * deleted ids) and the token tables themselves.
 */
#include <stdio.h>
#include <string.h>

#include "stoInt.h"

typedef unsigned __int128 u128;

struct dg {
	u128 sum, h;
	int system; /* the system keyspace instead of the graph */
};

static const u128 FNV_OFFSET =
    ((u128)0x6c62272e07bb0142ULL << 64) | 0x62b821756295c58dULL;
static const u128 FNV_PRIME = ((u128)0x0000000001000000ULL << 64) | 0x13bULL;

static void dg_begin(struct dg *d, char tag)
{
	d->h = FNV_OFFSET;
	d->h = (d->h ^ (uint8_t)tag) * FNV_PRIME;
}

static void dg_bytes(struct dg *d, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		d->h = (d->h ^ b[i]) * FNV_PRIME;
}

static void dg_u64(struct dg *d, uint64_t v)
{
	uint8_t b[8];
	lora_put_be64(b, v);
	dg_bytes(d, b, 8);
}

/* A name plus a separator; NULL (unknown token) is corruption. */
static int dg_name(struct dg *d, struct sto_store *s, int kind, uint32_t tok)
{
	const char *n = sto_tok_name(s, kind, tok);
	if (!n)
		return LORA_ECORRUPT;
	dg_bytes(d, n, strlen(n) + 1);
	return 0;
}

static void dg_end(struct dg *d)
{
	/* Mix the halves so that the sum of structured hashes stays even. */
	uint64_t hi = (uint64_t)(d->h >> 64), lo = (uint64_t)d->h;
	lo ^= hi * 0x9e3779b97f4a7c15ULL;
	hi ^= (lo >> 29) * 0xbf58476d1ce4e5b9ULL;
	d->sum += ((u128)hi << 64) | lo;
}

static int dg_props(struct dg *d, struct sto_store *s, char tag, uint64_t id,
                    const struct sto_rec *r)
{
	for (uint32_t i = 0; i < r->nprops; i++) {
		dg_begin(d, tag);
		dg_u64(d, id);
		if (dg_name(d, s, STO_TOK_KEY, r->props[i].key))
			return LORA_ECORRUPT;
		dg_bytes(d, r->data.data + r->props[i].off, r->props[i].len);
		dg_end(d);
	}
	return 0;
}

static int dg_node(struct dg *d, struct sto_store *s, const uint8_t *k,
                   size_t klen, const uint8_t *v, size_t vlen,
                   struct sto_rec *r)
{
	if (klen != 8)
		return LORA_ECORRUPT;
	uint64_t id = lora_get_be64(k);
	int rv = sto_rec_decode(r, 0, v, vlen);
	if (rv)
		return rv;
	dg_begin(d, 'N');
	dg_u64(d, id);
	dg_end(d);
	for (uint32_t i = 0; i < r->nlabels; i++) {
		dg_begin(d, 'l');
		dg_u64(d, id);
		if (dg_name(d, s, STO_TOK_LABEL, r->labels[i]))
			return LORA_ECORRUPT;
		dg_end(d);
	}
	return dg_props(d, s, 'p', id, r);
}

static int dg_edge(struct dg *d, struct sto_store *s, const uint8_t *k,
                   size_t klen, const uint8_t *v, size_t vlen,
                   struct sto_rec *r)
{
	dg_begin(d, (char)k[0]);
	if (k[0] != STO_K_EDGE || klen != 9)
		return LORA_ECORRUPT;
	uint64_t id = lora_get_be64(k + 1);
	int rv = sto_rec_decode(r, 1, v, vlen);
	if (rv)
		return rv;
	dg_u64(d, id);
	if (dg_name(d, s, STO_TOK_TYPE, r->type))
		return LORA_ECORRUPT;
	dg_u64(d, r->from);
	dg_u64(d, r->to);
	dg_end(d);
	return dg_props(d, s, 'q', id, r);
}

/* One adjacency chunk: every entry is hashed on its own as
 * (direction, node, type name, other, edge), so the digest does not depend
 * on how entries are spread over chunks or ordered inside them. */
static int dg_adj(struct dg *d, struct sto_store *s, const uint8_t *k,
                  size_t klen, const uint8_t *v, size_t vlen)
{
	if (klen != STO_ADJ_KEY_BYTES ||
	    (k[8] != STO_K_OUT && k[8] != STO_K_IN))
		return LORA_ECORRUPT;
	uint32_t nchunks, n;
	const uint8_t *p, *end = v + vlen;
	int rv = sto_adj_head(v, vlen, lora_get_be32(k + 9), &nchunks, &n, &p);
	for (uint32_t i = 0; !rv && i < n; i++) {
		struct sto_adj_ent e;
		if ((rv = sto_adj_entry(&p, end, &e)))
			break;
		dg_begin(d, (char)k[8]);
		dg_bytes(d, k, 8);
		if (dg_name(d, s, STO_TOK_TYPE, e.type))
			return LORA_ECORRUPT;
		dg_u64(d, e.other);
		dg_u64(d, e.edge);
		dg_end(d);
	}
	return !rv && p != end ? LORA_ECORRUPT : rv;
}

static int dg_index(struct dg *d, struct sto_store *s, const uint8_t *k,
                    size_t klen)
{
	dg_begin(d, (char)k[0]);
	if (k[0] == STO_K_LABEL && klen == STO_LABEL_KEY_BYTES) {
		if (dg_name(d, s, STO_TOK_LABEL, lora_get_be32(k + 1)))
			return LORA_ECORRUPT;
		dg_bytes(d, k + 5, 8);
	} else if ((k[0] == STO_K_PROP || k[0] == STO_K_RPROP) && klen > 17) {
		if (dg_name(d, s,
		            k[0] == STO_K_PROP ? STO_TOK_LABEL : STO_TOK_TYPE,
		            lora_get_be32(k + 1)) ||
		    dg_name(d, s, STO_TOK_KEY, lora_get_be32(k + 5)))
			return LORA_ECORRUPT;
		dg_bytes(d, k + 9, klen - 9);
	} else if (k[0] == STO_K_TEXT && klen == STO_TEXT_KEY_BYTES) {
		if (dg_name(d, s, STO_TOK_LABEL, lora_get_be32(k + 1)) ||
		    dg_name(d, s, STO_TOK_KEY, lora_get_be32(k + 5)))
			return LORA_ECORRUPT;
		dg_bytes(d, k + 9, klen - 9);
	} else {
		return LORA_ECORRUPT;
	}
	dg_end(d);
	return 0;
}

static int dg_meta(struct dg *d, struct sto_store *s, const uint8_t *k,
                   size_t klen, const uint8_t *v, size_t vlen)
{
	switch (k[0]) {
	case STO_META_NODE_COUNT:
	case STO_META_EDGE_COUNT:
	case STO_META_LABEL_COUNT:
	case STO_META_TYPE_COUNT:
		if (vlen != 8)
			return LORA_ECORRUPT;
		if (!lora_get_be64(v))
			return 0; /* a zero count equals no count */
		dg_begin(d, (char)k[0]);
		if (klen == 5 &&
		    dg_name(d, s,
		            k[0] == STO_META_LABEL_COUNT ? STO_TOK_LABEL
		                                         : STO_TOK_TYPE,
		            lora_get_be32(k + 1)))
			return LORA_ECORRUPT;
		dg_bytes(d, v, 8);
		dg_end(d);
		return 0;
	case STO_META_USER:
	case STO_META_SECRET:
		if (!d->system)
			return 0; /* not the graph: sto_digest_system */
		dg_begin(d, (char)k[0]);
		dg_bytes(d, k, klen);
		dg_bytes(d, v, vlen);
		dg_end(d);
		return 0;
	case STO_META_INDEX:
		dg_begin(d, (char)k[0]);
		dg_bytes(d, k, klen);
		dg_bytes(d, v, vlen);
		dg_end(d);
		return 0;
	default:
		return 0; /* applied index, id counters, token tables */
	}
}

static int dg_vector(struct dg *d, struct sto_store *s, const uint8_t *k,
                     size_t klen, const uint8_t *v, size_t vlen)
{
	if (klen != STO_VEC_KEY_BYTES)
		return LORA_ECORRUPT;
	dg_begin(d, 'v');
	dg_bytes(d, k, 9);
	if (dg_name(d, s, STO_TOK_KEY, lora_get_be32(k + 9)))
		return LORA_ECORRUPT;
	dg_bytes(d, v, vlen);
	dg_end(d);
	return 0;
}

static int dg_cf(struct dg *d, struct sto_store *s, rocksdb_readoptions_t *ro,
                 int cf)
{
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(s->db, ro, s->cf[cf]);
	struct sto_rec r = {0};
	int rv = 0;
	for (rocksdb_iter_seek_to_first(it); !rv && rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
		const uint8_t *v =
		    (const uint8_t *)rocksdb_iter_value(it, &vlen);
		if (klen == 0) {
			rv = LORA_ECORRUPT;
		} else if (cf == STO_CF_NODES) {
			rv = dg_node(d, s, k, klen, v, vlen, &r);
		} else if (cf == STO_CF_EDGES) {
			rv = dg_edge(d, s, k, klen, v, vlen, &r);
		} else if (cf == STO_CF_INDEX) {
			rv = dg_index(d, s, k, klen);
		} else if (cf == STO_CF_VECTORS) {
			rv = dg_vector(d, s, k, klen, v, vlen);
		} else if (cf == STO_CF_ADJ) {
			rv = dg_adj(d, s, k, klen, v, vlen);
		} else {
			rv = dg_meta(d, s, k, klen, v, vlen);
		}
	}
	sto_rec_free(&r);
	return sto_iter_close(it, rv, NULL, "digest scan");
}

static int digest_run(struct sto_store *s, int system,
                      char out[STO_DIGEST_HEX_BYTES], char *errmsg)
{
	struct dg d = {0, 0, system};
	const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(s->db);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_snapshot(ro, snap);
	rocksdb_readoptions_set_fill_cache(ro, 0);
	rocksdb_readoptions_set_total_order_seek(ro, 1); /* adjacency CF */
	int rv = 0;
	for (int cf = STO_CF_NODES; !rv && cf < STO_CF_REQ; cf++) {
		if (system && cf != STO_CF_META)
			continue;
		rv = dg_cf(&d, s, ro, cf);
		if (rv)
			lora_errf(rv, errmsg, "digest: column family %s: %s",
			          sto_cf_names[cf], lora_strerror(rv));
	}
	rocksdb_readoptions_destroy(ro);
	rocksdb_release_snapshot(s->db, snap);
	if (rv)
		return rv;
	snprintf(out, STO_DIGEST_HEX_BYTES, "%016llx%016llx",
	         (unsigned long long)(uint64_t)(d.sum >> 64),
	         (unsigned long long)(uint64_t)d.sum);
	return 0;
}

int sto_digest(struct sto_store *s, char out[STO_DIGEST_HEX_BYTES],
               char *errmsg)
{
	return digest_run(s, 0, out, errmsg);
}

int sto_digest_system(struct sto_store *s, char out[STO_DIGEST_HEX_BYTES],
                      char *errmsg)
{
	return digest_run(s, 1, out, errmsg);
}
