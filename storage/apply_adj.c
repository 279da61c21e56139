/* apply_adj.c - keeps the packed adjacency chunks (see stoInt.h) up to date
 * while a batch is applied: add, remove, list.
 *
 * Every read goes through the batch being built, so several edges of one
 * batch on the same node see each other. One change touches at most three
 * chunks (chunk 0, the chunk holding the entry, the last chunk) and one
 * other edge record, whatever the node's degree.
 */
#include <stddef.h>
#include <string.h>

#include "applyInt.h"

/* A decoded chunk. */
struct adj_chunk {
	uint32_t no;      /* chunk number */
	uint32_t nchunks; /* chunk 0: chunks in the list */
	uint32_t n;       /* entries */
	int dirty;
	struct sto_adj_ent e[STO_ADJ_CHUNK_ENTRIES_MAX];
};

enum { ADJ_SLOTS = 3 };

static int adj_slots(struct apply_ctx *c)
{
	if (!c->adj)
		c->adj = lora_malloc(ADJ_SLOTS * sizeof(*c->adj));
	return c->adj ? 0 : LORA_ENOMEM;
}

void adj_free(struct apply_ctx *c)
{
	lora_free(c->adj);
	c->adj = NULL;
	lora_buf_free(&c->abuf);
}

static int adj_corrupt(struct apply_ctx *c, uint64_t node, char dir,
                       uint32_t no, const char *what)
{
	return lora_errf(LORA_ECORRUPT, c->errmsg,
	                 "%s adjacency of node %llu, chunk %u: %s",
	                 dir == STO_K_OUT ? "outgoing" : "incoming",
	                 (unsigned long long)node, no, what);
}

static int chunk_decode(struct adj_chunk *ch, const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len, *q;
	int rv = sto_adj_head(p, len, ch->no, &ch->nchunks, &ch->n, &q);
	for (uint32_t i = 0; !rv && i < ch->n; i++)
		rv = sto_adj_entry(&q, end, &ch->e[i]);
	return !rv && q != end ? LORA_ECORRUPT : rv;
}

/* Loads chunk `no` of (node, dir) into ch; *found = 0 when absent. */
static int chunk_load(struct apply_ctx *c, uint64_t node, char dir, uint32_t no,
                      struct adj_chunk *ch, int *found)
{
	uint8_t k[STO_ADJ_KEY_BYTES];
	char *v;
	size_t vlen;
	sto_key_adj(k, node, dir, no);
	/* A node created by this batch has nothing in the database. */
	int rv = node >= c->state_next_node
	             ? apply_get_batch(c, STO_CF_ADJ, k, sizeof(k), &v, &vlen)
	             : apply_get(c, STO_CF_ADJ, k, sizeof(k), &v, &vlen);
	memset(ch, 0, offsetof(struct adj_chunk, e));
	ch->no = no;
	*found = v != NULL;
	if (rv || !v)
		return rv;
	rv = chunk_decode(ch, (const uint8_t *)v, vlen);
	rocksdb_free(v);
	return rv ? adj_corrupt(c, node, dir, no, "malformed chunk") : 0;
}

/* Loads a chunk that must exist. */
static int chunk_need(struct apply_ctx *c, uint64_t node, char dir, uint32_t no,
                      struct adj_chunk *ch)
{
	int found, rv = chunk_load(c, node, dir, no, ch, &found);
	return rv || found ? rv : adj_corrupt(c, node, dir, no, "missing");
}

/* Writes ch back (deletes its key when it has no entries). */
static int chunk_store(struct apply_ctx *c, uint64_t node, char dir,
                       const struct adj_chunk *ch)
{
	uint8_t k[STO_ADJ_KEY_BYTES];
	struct lora_buf *b = &c->abuf;
	sto_key_adj(k, node, dir, ch->no);
	if (!ch->n) {
		apply_del(c, STO_CF_ADJ, k, sizeof(k));
		return 0;
	}
	lora_buf_reset(b);
	if (lora_buf_reserve(b, STO_ADJ_CHUNK_BYTES_MAX))
		return LORA_ENOMEM;
	/* Reserved above: the appends below cannot fail. */
	lora_buf_putc(b, ch->no ? STO_ADJ_CHUNKN_MAGIC : STO_ADJ_CHUNK0_MAGIC);
	if (!ch->no)
		sto_put_uvarint(b, ch->nchunks);
	sto_put_uvarint(b, ch->n);
	for (uint32_t i = 0; i < ch->n; i++) {
		sto_put_uvarint(b, ch->e[i].type);
		sto_put_uvarint(b, ch->e[i].other);
		sto_put_uvarint(b, ch->e[i].edge);
	}
	return apply_put(c, STO_CF_ADJ, k, sizeof(k), b->data, b->len);
}

int adj_add(struct apply_ctx *c, uint64_t node, char dir,
            const struct sto_adj_ent *e, uint32_t *chunk, int *had)
{
	int found, rv = adj_slots(c);
	struct adj_chunk *c0 = &c->adj[0], *cl = c0;
	if (!rv)
		rv = chunk_load(c, node, dir, 0, c0, &found);
	if (rv)
		return rv;
	*had = found;
	if (!found)
		c0->nchunks = 1;
	uint32_t last = c0->nchunks - 1;
	if (last > 0 && (rv = chunk_need(c, node, dir, last, cl = &c->adj[1])))
		return rv;
	if (cl->n < STO_ADJ_CHUNK_ENTRIES_MAX) {
		cl->e[cl->n++] = *e;
		*chunk = last;
		return chunk_store(c, node, dir, cl);
	}
	if (c0->nchunks == UINT32_MAX)
		return lora_errf(LORA_ELIMIT, c->errmsg,
		                 "node %llu: too many relationships",
		                 (unsigned long long)node);
	struct adj_chunk *cn = &c->adj[2];
	memset(cn, 0, offsetof(struct adj_chunk, e));
	cn->no = c0->nchunks++;
	cn->n = 1;
	cn->e[0] = *e;
	*chunk = cn->no;
	rv = chunk_store(c, node, dir, cn);
	return rv ? rv : chunk_store(c, node, dir, c0);
}

/* Records that edge's entry under (dir) now lives in chunk `no`. */
static int rec_move(struct apply_ctx *c, uint64_t edge, char dir, uint32_t no)
{
	struct sto_rec r = {0};
	int found, rv = apply_load(c, 1, edge, &r, &found);
	if (!rv && !found)
		rv = lora_errf(LORA_ECORRUPT, c->errmsg,
		               "adjacency lists edge %llu, which has no record",
		               (unsigned long long)edge);
	if (!rv) {
		r.chunk[dir == STO_K_OUT ? 0 : 1] = no;
		rv = apply_store(c, 1, edge, &r);
	}
	sto_rec_free(&r);
	return rv;
}

int adj_remove(struct apply_ctx *c, uint64_t node, char dir, uint32_t chunk,
               uint64_t edge)
{
	int rv = adj_slots(c);
	struct adj_chunk *c0 = &c->adj[0], *ck = c0, *cl;
	if (!rv)
		rv = chunk_need(c, node, dir, 0, c0);
	if (rv)
		return rv;
	if (chunk >= c0->nchunks)
		return adj_corrupt(c, node, dir, chunk, "beyond the last");
	uint32_t last = c0->nchunks - 1;
	if (chunk > 0 &&
	    (rv = chunk_need(c, node, dir, chunk, ck = &c->adj[1])))
		return rv;
	cl = last == chunk ? ck : last == 0 ? c0 : &c->adj[2];
	if (cl == &c->adj[2] && (rv = chunk_need(c, node, dir, last, cl)))
		return rv;
	uint32_t i = 0;
	while (i < ck->n && ck->e[i].edge != edge)
		i++;
	if (i == ck->n || !cl->n)
		return adj_corrupt(c, node, dir, chunk, "edge not listed");
	struct sto_adj_ent moved = cl->e[--cl->n];
	if (ck != cl || i != cl->n) {
		ck->e[i] = moved; /* the last entry fills the gap */
		if (ck != cl && (rv = rec_move(c, moved.edge, dir, chunk)))
			return rv;
	}
	if (!cl->n && last > 0)
		c0->nchunks--; /* the last chunk is gone */
	ck->dirty = cl->dirty = 1;
	c0->dirty |= !cl->n && last > 0;
	for (int s = 0; !rv && s < ADJ_SLOTS; s++) {
		struct adj_chunk *ch = &c->adj[s];
		int used = ch == c0 || ch == ck || ch == cl;
		if (used && ch->dirty)
			rv = chunk_store(c, node, dir, ch);
	}
	return rv;
}

int adj_list(struct apply_ctx *c, uint64_t node, char dir, struct lora_buf *ids)
{
	int found, rv = adj_slots(c);
	struct adj_chunk *c0 = &c->adj[0], *ch = c0;
	if (!rv)
		rv = chunk_load(c, node, dir, 0, c0, &found);
	if (rv || !found)
		return rv;
	uint32_t nchunks = c0->nchunks;
	for (uint32_t no = 0; !rv && no < nchunks; no++) {
		if (no > 0)
			rv = chunk_need(c, node, dir, no, ch = &c->adj[1]);
		for (uint32_t i = 0; !rv && i < ch->n; i++) {
			uint8_t b[8];
			lora_put_be64(b, ch->e[i].edge);
			rv = lora_buf_append(ids, b, 8);
		}
	}
	return rv;
}

int adj_any(struct apply_ctx *c, uint64_t node, int *yes)
{
	int rv = adj_slots(c), found = 0;
	for (int d = 0; !rv && !found && d < 2; d++)
		rv = chunk_load(c, node, d ? STO_K_IN : STO_K_OUT, 0,
		                &c->adj[0], &found);
	*yes = found;
	return rv;
}
