/* apply_req.c - request ids of applied batches, kept in the state store so
 * that a retried write is recognised after a restart or on a new node. */
#include <string.h>

#include "applyInt.h"

#define STO_REQUEST_PRUNE_PER_APPLY 1024 /* old ids dropped per entry */

/* meta key 'q' rid */
static size_t rid_key(uint8_t *k, const char *rid, size_t len)
{
	k[0] = STO_META_REQUEST;
	memcpy(k + 1, rid, len);
	return 1 + len;
}

/* Drops the ids of entries at or below `upto`, a bounded number per call
 * (normally the one entry that just left the window). */
static int prune(struct apply_ctx *c, uint64_t upto)
{
	uint8_t start = STO_META_REQUEST_ORDER;
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(
	    c->s->db, c->s->ro, c->s->cf[STO_CF_META]);
	int rv = 0, n = 0;
	for (rocksdb_iter_seek(it, (const char *)&start, 1);
	     rocksdb_iter_valid(it) && n < STO_REQUEST_PRUNE_PER_APPLY;
	     rocksdb_iter_next(it), n++) {
		size_t klen;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
		if (klen < 9 || k[0] != STO_META_REQUEST_ORDER ||
		    lora_get_be64(k + 1) > upto)
			break;
		uint64_t index = lora_get_be64(k + 1);
		uint8_t rk[1 + STO_REQUEST_ID_BYTES_MAX];
		size_t rlen = klen - 9 < STO_REQUEST_ID_BYTES_MAX
		                  ? klen - 9
		                  : STO_REQUEST_ID_BYTES_MAX;
		size_t rkl = rid_key(rk, (const char *)k + 9, rlen);
		char *v = NULL;
		size_t vlen = 0;
		rv = apply_get(c, STO_CF_META, rk, rkl, &v, &vlen);
		/* a later entry may carry the same id again: keep that one */
		if (!rv && v && vlen == 8 &&
		    lora_get_be64((const uint8_t *)v) == index)
			apply_del(c, STO_CF_META, rk, rkl);
		rocksdb_free(v);
		apply_del(c, STO_CF_META, k, klen);
		if (rv)
			break;
	}
	char *err = NULL;
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	if (!rv && err)
		rv = sto_rocks_err(err, c->errmsg, "scan request ids");
	return rv;
}

int apply_requests(struct apply_ctx *c, uint64_t index,
                   const Lora__MutationBatch *b)
{
	uint8_t k[1 + 8 + STO_REQUEST_ID_BYTES_MAX], v[8];
	lora_put_be64(v, index);
	for (size_t i = 0; i < b->n_request_ids; i++) {
		const char *rid = b->request_ids[i];
		size_t len = rid ? strlen(rid) : 0;
		if (len == 0 || len > STO_REQUEST_ID_BYTES_MAX)
			continue; /* the node never sends these */
		apply_put(c, STO_CF_META, k, rid_key(k, rid, len), v, 8);
		k[0] = STO_META_REQUEST_ORDER;
		lora_put_be64(k + 1, index);
		memcpy(k + 9, rid, len);
		apply_put(c, STO_CF_META, k, 9 + len, "", 0);
	}
	uint64_t window = c->s->request_window;
	return index > window ? prune(c, index - window) : 0;
}

int sto_request_index(struct sto_store *s, const char *rid, uint64_t *index)
{
	size_t len = strlen(rid);
	if (len == 0 || len > STO_REQUEST_ID_BYTES_MAX)
		return LORA_ENOTFOUND;
	uint8_t k[1 + STO_REQUEST_ID_BYTES_MAX];
	int rv = sto_meta_get_u64(s, s->ro, (const char *)k,
	                          rid_key(k, rid, len), index);
	return !rv && *index == 0 ? LORA_ENOTFOUND : rv;
}
