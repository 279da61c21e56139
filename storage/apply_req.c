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

/* The ids of entry `index` (its 'Q' record v) leave: each 'q' record
 * still naming this entry is deleted. */
static int drop_entry(struct apply_ctx *c, uint64_t index, const uint8_t *v,
                      size_t vlen)
{
	uint8_t rk[1 + STO_REQUEST_ID_BYTES_MAX];
	for (size_t off = 0; off + 2 <= vlen;) {
		size_t len = (size_t)v[off] << 8 | v[off + 1];
		if (len == 0 || len > STO_REQUEST_ID_BYTES_MAX ||
		    off + 2 + len > vlen)
			return lora_errf(LORA_ECORRUPT, c->errmsg,
			                 "request ids of entry %llu",
			                 (unsigned long long)index);
		size_t rkl = rid_key(rk, (const char *)v + off + 2, len);
		char *old = NULL;
		size_t olen = 0;
		int rv = apply_get(c, STO_CF_REQ, rk, rkl, &old, &olen);
		/* a later entry may carry the same id again: keep that one */
		if (!rv && old && olen == 8 &&
		    lora_get_be64((const uint8_t *)old) == index)
			apply_del(c, STO_CF_REQ, rk, rkl);
		rocksdb_free(old);
		if (rv)
			return rv;
		off += 2 + len;
	}
	return 0;
}

/* Drops the ids of entries at or below `upto`, a bounded number of
 * entries per call (normally the one that just left the window). The
 * walk starts where the last committed prune stopped and ends before
 * upto + 1: the records dropped before stay in RocksDB as deletions until
 * a compaction, and seeking from the first of them made every entry walk
 * all of them (apply slowed with the writes applied since the last
 * compaction). */
static int prune(struct apply_ctx *c, uint64_t upto)
{
	uint8_t from[9], end[9];
	from[0] = end[0] = STO_META_REQUEST_ORDER;
	lora_put_be64(from + 1, c->s->req_prune_next);
	lora_put_be64(end + 1, upto + 1);
	if (c->s->req_prune_next > upto)
		return 0;
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_total_order_seek(ro, 1);
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)end,
	                                            sizeof end);
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(c->s->db, ro, c->s->cf[STO_CF_REQ]);
	int rv = 0, n = 0;
	uint64_t next = upto + 1; /* every record below it dropped */
	for (rocksdb_iter_seek(it, (const char *)from, sizeof from);
	     !rv && rocksdb_iter_valid(it); rocksdb_iter_next(it), n++) {
		size_t klen, vlen;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
		const uint8_t *v =
		    (const uint8_t *)rocksdb_iter_value(it, &vlen);
		if (klen != 9 || k[0] != STO_META_REQUEST_ORDER) {
			/* not a record this code writes: dropped with the
			 * rest (the requests family is this node's own, not
			 * replicated state; failing would stop apply) */
			apply_del(c, STO_CF_REQ, k, klen);
			continue;
		}
		uint64_t idx = lora_get_be64(k + 1);
		if (n == STO_REQUEST_PRUNE_PER_APPLY) {
			next = idx; /* the rest at the next entries */
			break;
		}
		rv = drop_entry(c, idx, v, vlen);
		apply_del(c, STO_CF_REQ, k, klen);
	}
	char *err = NULL;
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	if (err && rv)
		rocksdb_free(err);
	else if (err)
		rv = sto_rocks_err(err, c->errmsg, "scan request ids");
	if (!rv)
		c->req_prune_next = next;
	return rv;
}

int apply_requests(struct apply_ctx *c, uint64_t index,
                   const Lora__MutationBatch *b)
{
	/* Drop first: the puts below go after the drops in the write, so an
	 * id carried again by this entry survives its own old record. */
	uint64_t window = c->s->request_window;
	int rv = index > window ? prune(c, index - window) : 0;
	uint8_t k[1 + STO_REQUEST_ID_BYTES_MAX], v[8];
	struct lora_buf list = {0}; /* the entry's ids: (u16 len, bytes)* */
	lora_put_be64(v, index);
	for (size_t i = 0; !rv && i < b->n_request_ids; i++) {
		const char *rid = b->request_ids[i];
		size_t len = rid ? strlen(rid) : 0;
		if (len == 0 || len > STO_REQUEST_ID_BYTES_MAX)
			continue; /* the node never sends these */
		/* write-only: never read back within the batch */
		rv = apply_wonly(c, 0, STO_CF_REQ, k, rid_key(k, rid, len), v,
		                 8);
		uint8_t l2[2] = {(uint8_t)(len >> 8), (uint8_t)len};
		if (!rv)
			rv = lora_buf_append(&list, l2, 2);
		if (!rv)
			rv = lora_buf_append(&list, rid, len);
	}
	if (!rv && list.len) {
		k[0] = STO_META_REQUEST_ORDER;
		lora_put_be64(k + 1, index);
		rv = apply_wonly(c, 0, STO_CF_REQ, k, 9, list.data, list.len);
	}
	lora_buf_free(&list);
	return rv;
}

int sto_request_index(struct sto_store *s, const char *rid, uint64_t *index)
{
	size_t len = strlen(rid);
	if (len == 0 || len > STO_REQUEST_ID_BYTES_MAX)
		return LORA_ENOTFOUND;
	uint8_t k[1 + STO_REQUEST_ID_BYTES_MAX];
	char *v = NULL;
	size_t vlen = 0;
	int rv =
	    sto_get(s, s->ro, STO_CF_REQ, k, rid_key(k, rid, len), &v, &vlen);
	if (!rv && (v == NULL || vlen != 8))
		rv = v ? LORA_ECORRUPT : LORA_ENOTFOUND;
	if (!rv)
		*index = lora_get_be64((const uint8_t *)v);
	rocksdb_free(v);
	return rv;
}
