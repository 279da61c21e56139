/* apply_adj.c - keeps the packed adjacency chunks (see stoInt.h) up to date
 * while a batch is applied: add, remove, list.
 *
 * The chunks a batch touches are staged here, not in the indexed write
 * batch: each is read from the database once (a node the batch created
 * has nothing there), decoded, changed in memory by every edge of the batch
 * on that node, and encoded and written once when the batch commits
 * (adj_flush, as write-only operations). A batch of 1,000 new edges thus
 * costs one point read per chunk and no read-modify-write per edge, and
 * adjacency keys never enter the indexed batch, whose every insert and
 * lookup costs a skip-list search. One change touches at most three chunks
 * (chunk 0, the chunk holding the entry, the last chunk) and one other edge
 * record, whatever the node's degree. A rejected batch drops the stage with
 * the rest of its state. A batch of many new relationships stages chunk 0
 * of their ends before it starts (adj_prefetch) and keeps a hint to them
 * by mutation, which adj_add takes in order without a search of the
 * stage's table.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "applyInt.h"

/* Entries a chunk holds in itself before it takes memory of its own: most
 * lists of a load are short, and a batch stages thousands of them. */
#define ADJ_INLINE_ENTRIES 8

/* A staged chunk: its entries as the batch left them so far. */
struct adj_chunk {
	uint64_t node;
	uint32_t no; /* chunk number */
	char dir;
	uint8_t found;    /* has a key (before the batch, or written by it) */
	uint8_t dirty;    /* to be written at adj_flush */
	uint32_t nchunks; /* chunk 0: chunks in the list */
	uint32_t n, cap;  /* entries, and room in e */
	struct sto_adj_ent *e; /* inl, or its own memory */
	struct sto_adj_ent inl[ADJ_INLINE_ENTRIES];
	/* written by adj_flush: its encoding's place in c->wonly, which
	 * adj_committed hands to the cache */
	uint8_t encoded;
	uint32_t vlen;
	size_t voff;
};

/* Chunks are taken from blocks, freed with the stage. */
#define ADJ_BLOCK_CHUNKS 256
struct adj_block {
	struct adj_block *next;
	size_t used;
	struct adj_chunk ch[ADJ_BLOCK_CHUNKS];
};

/* Staged chunks of one batch, in the order first touched, and an open
 * addressing table over them (slot = index + 1, 0 = empty). */
struct adj_stage {
	struct adj_block *blocks;
	struct adj_chunk **ch;
	size_t n, cap;
	uint32_t *slot;
	size_t nslot; /* a power of two, at least twice n */
	/* Chunk 0 of each created relationship's two ends, by mutation
	 * (2 i: its source's outgoing list, 2 i + 1: its target's incoming
	 * one), as adj_prefetch staged them; NULL where it staged none (a
	 * node the batch creates, a mutation that creates no relationship);
	 * none at all below ADJ_PREFETCH_EDGES_MIN new relationships or
	 * without memory for them. adj_add takes them in order instead of a
	 * search of the table whose every step misses the CPU's caches. */
	struct adj_chunk **hint;
	size_t nhint;
};

/* Batches with fewer new edges read their chunks one by one. */
#define ADJ_PREFETCH_EDGES_MIN 16
/* Initial hash slots; adj_prefetch sizes the table for a batch's new
 * edges, and it doubles as more chunks are staged. */
enum { ADJ_SLOTS_MIN = 1024 };

/* Gives back the entries' memory of ch (not ch itself). */
static void chunk_release(struct adj_chunk *ch)
{
	if (ch->e != ch->inl)
		lora_free(ch->e);
	ch->e = NULL;
	ch->cap = 0;
}

/* A zeroed chunk from st's blocks, or NULL without memory (only the
 * chunks handed out are zeroed: a batch of one edge stages two). */
static struct adj_chunk *chunk_new(struct adj_stage *st)
{
	struct adj_block *b = st->blocks;
	if (!b || b->used == ADJ_BLOCK_CHUNKS) {
		if (!(b = lora_malloc(sizeof(*b))))
			return NULL;
		b->used = 0;
		b->next = st->blocks;
		st->blocks = b;
	}
	struct adj_chunk *ch = &b->ch[b->used++];
	memset(ch, 0, sizeof(*ch));
	return ch;
}

void adj_free(struct apply_ctx *c)
{
	struct adj_stage *st = c->adj;
	if (st) {
		for (size_t i = 0; i < st->n; i++)
			chunk_release(st->ch[i]);
		while (st->blocks) {
			struct adj_block *b = st->blocks;
			st->blocks = b->next;
			lora_free(b);
		}
		lora_free(st->ch);
		lora_free(st->slot);
		lora_free(st->hint);
		lora_free(st);
	}
	c->adj = NULL;
}

static int adj_corrupt(struct apply_ctx *c, uint64_t node, char dir,
                       uint32_t no, const char *what)
{
	return lora_errf(LORA_ECORRUPT, c->errmsg,
	                 "%s adjacency of node %llu, chunk %u: %s",
	                 dir == STO_K_OUT ? "outgoing" : "incoming",
	                 (unsigned long long)node, no, what);
}

/* Room for n entries in ch. */
static int chunk_room(struct adj_chunk *ch, uint32_t n)
{
	if (n <= ch->cap)
		return 0;
	if (!ch->cap && n <= ADJ_INLINE_ENTRIES) {
		ch->e = ch->inl;
		ch->cap = ADJ_INLINE_ENTRIES;
		return 0;
	}
	uint32_t cap = ch->cap ? ch->cap : 4;
	while (cap < n)
		cap *= 2;
	if (cap > STO_ADJ_CHUNK_ENTRIES_MAX)
		cap = STO_ADJ_CHUNK_ENTRIES_MAX;
	struct sto_adj_ent *e;
	if (ch->e == ch->inl) {
		/* the entries kept so far (chunk_decode sets n first) */
		uint32_t kept =
		    ch->n < ADJ_INLINE_ENTRIES ? ch->n : ADJ_INLINE_ENTRIES;
		if ((e = lora_malloc(cap * sizeof(*e))))
			memcpy(e, ch->inl, kept * sizeof(*e));
	} else {
		e = lora_realloc(ch->e, cap * sizeof(*e));
	}
	if (!e)
		return LORA_ENOMEM;
	ch->e = e;
	ch->cap = cap;
	return 0;
}

static int chunk_decode(struct adj_chunk *ch, const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len, *q;
	int rv = sto_adj_head(p, len, ch->no, &ch->nchunks, &ch->n, &q);
	if (!rv && ch->n > STO_ADJ_CHUNK_ENTRIES_MAX)
		rv = LORA_ECORRUPT;
	if (!rv)
		rv = chunk_room(ch, ch->n);
	for (uint32_t i = 0; !rv && i < ch->n; i++)
		rv = sto_adj_entry(&q, end, &ch->e[i]);
	return !rv && q != end ? LORA_ECORRUPT : rv;
}

/* Makes room for `want` staged chunks in all (array and hash table). */
static int stage_room(struct adj_stage *st, size_t want)
{
	if (want > st->cap) {
		size_t cap = st->cap ? st->cap : ADJ_SLOTS_MIN / 2;
		while (cap < want)
			cap *= 2;
		struct adj_chunk **ch = lora_realloc(st->ch, cap * sizeof(*ch));
		if (!ch)
			return LORA_ENOMEM;
		st->ch = ch;
		st->cap = cap;
	}
	if (2 * want <= st->nslot)
		return 0;
	size_t nslot = st->nslot ? st->nslot : ADJ_SLOTS_MIN;
	while (nslot < 2 * want)
		nslot *= 2;
	uint32_t *slot = lora_calloc(nslot, sizeof(*slot));
	if (!slot)
		return LORA_ENOMEM;
	for (size_t i = 0; i < st->n; i++) {
		const struct adj_chunk *ch = st->ch[i];
		size_t h =
		    sto_adj_chunk_hash(ch->node, ch->dir, ch->no) & (nslot - 1);
		while (slot[h])
			h = (h + 1) & (nslot - 1);
		slot[h] = (uint32_t)i + 1;
	}
	lora_free(st->slot);
	st->slot = slot;
	st->nslot = nslot;
	return 0;
}

/* Makes room for one more staged chunk. */
static int stage_grow(struct adj_stage *st)
{
	return stage_room(st, st->n + 1);
}

/* Asks the CPU for the hash slot of chunk 0 of (node, dir). */
static void slot_prefetch(const struct adj_stage *st, uint64_t node, char dir)
{
	__builtin_prefetch(
	    &st->slot[sto_adj_chunk_hash(node, dir, 0) & (st->nslot - 1)]);
}

/* Reads chunk `no` of (node, dir) from the database into a new staged
 * chunk ch (found = 0 when it has no key); pre, when not NULL, is the
 * value already read (adj_prefetch; prelen 0: no key). */
static int chunk_read(struct apply_ctx *c, struct adj_chunk *ch,
                      const char *pre, size_t prelen)
{
	uint8_t k[STO_ADJ_KEY_BYTES];
	char *v = NULL;
	size_t vlen = 0;
	int rv = 0;
	if (pre) {
		ch->found = prelen > 0;
		rv =
		    prelen ? chunk_decode(ch, (const uint8_t *)pre, prelen) : 0;
		if (rv == LORA_ECORRUPT)
			return adj_corrupt(c, ch->node, ch->dir, ch->no,
			                   "malformed chunk");
		return rv;
	}
	/* A node created by this batch has nothing in the database. */
	if (ch->node >= c->state_next_node) {
		ch->found = 0;
		return 0;
	}
	const char *cv;
	if (sto_adjc_get(c->s->adjc, ch->node, ch->dir, ch->no, &cv, &vlen))
		return chunk_read(c, ch, cv ? cv : "", vlen);
	sto_key_adj(k, ch->node, ch->dir, ch->no);
	rv = sto_get(c->s, c->s->ro, STO_CF_ADJ, k, sizeof(k), &v, &vlen);
	/* what the store holds: the cache may keep it (not an empty value,
	 * which is corrupt and must fail every time it is read) */
	if (!rv && (!v || vlen))
		sto_adjc_put(c->s->adjc, ch->node, ch->dir, ch->no, v,
		             v ? vlen : 0);
	ch->found = v != NULL;
	if (rv || !v)
		return rv;
	rv = chunk_decode(ch, (const uint8_t *)v, vlen);
	rocksdb_free(v);
	if (rv == LORA_ECORRUPT)
		return adj_corrupt(c, ch->node, ch->dir, ch->no,
		                   "malformed chunk");
	return rv;
}

/* The staged chunk `no` of (node, dir), or NULL; *h receives its hash
 * slot (or the empty slot where it would go). */
static struct adj_chunk *stage_find(struct adj_stage *st, uint64_t node,
                                    char dir, uint32_t no, size_t *h)
{
	size_t i = sto_adj_chunk_hash(node, dir, no) & (st->nslot - 1);
	for (; st->slot[i]; i = (i + 1) & (st->nslot - 1)) {
		struct adj_chunk *ch = st->ch[st->slot[i] - 1];
		if (ch->node == node && ch->no == no && ch->dir == dir) {
			*h = i;
			return ch;
		}
	}
	*h = i;
	return NULL;
}

/* The staged chunk `no` of (node, dir), read on first use unless `read`
 * is 0 (a chunk number past the list's end); (*ch)->found = 0 when the
 * list has no such chunk. */
static int chunk_load(struct apply_ctx *c, uint64_t node, char dir, uint32_t no,
                      int read, struct adj_chunk **out)
{
	if (!c->adj && !(c->adj = lora_calloc(1, sizeof(*c->adj))))
		return LORA_ENOMEM;
	struct adj_stage *st = c->adj;
	size_t h;
	int rv = stage_grow(st);
	if (rv)
		return rv;
	if ((*out = stage_find(st, node, dir, no, &h)))
		return 0;
	struct adj_chunk *ch = chunk_new(st);
	if (!ch)
		return LORA_ENOMEM;
	ch->node = node;
	ch->dir = dir;
	ch->no = no;
	if (read && (rv = chunk_read(c, ch, NULL, 0))) {
		chunk_release(ch); /* its place in the block stays unused */
		return rv;
	}
	st->ch[st->n++] = ch;
	st->slot[h] = (uint32_t)st->n;
	*out = ch;
	return 0;
}

/* Loads a chunk that must exist. */
static int chunk_need(struct apply_ctx *c, uint64_t node, char dir, uint32_t no,
                      struct adj_chunk **ch)
{
	int rv = chunk_load(c, node, dir, no, 1, ch);
	return rv || (*ch)->found ? rv
	                          : adj_corrupt(c, node, dir, no, "missing");
}

/* Distance, in lookups, between asking for a cache slot and reading it
 * (sto_adjc_prefetch); the entry is asked for halfway. */
#define ADJ_CACHE_AHEAD 16

/* The largest encoding chunk_put writes in place: the magic, the chunk
 * count and the entry count (varints of 32 bits), and full entries of a
 * 32-bit type token and two 64-bit ids. */
_Static_assert(1 + 5 + 5 + STO_ADJ_CHUNK_ENTRIES_MAX * (5 + 10 + 10) <=
                   STO_ADJ_CHUNK_BYTES_MAX,
               "a chunk's encoding may pass STO_ADJ_CHUNK_BYTES_MAX");

/* Writes ch (which has entries) under key k as a write-only put, encoded
 * straight into the batch's write-only ops (apply_wonly's layout), and
 * remembers where the value lies for adj_committed. */
static int chunk_put(struct apply_ctx *c, struct adj_chunk *ch,
                     const uint8_t k[STO_ADJ_KEY_BYTES])
{
	enum { HEAD = 10 + STO_ADJ_KEY_BYTES };
	int rv = lora_buf_reserve(&c->wonly, HEAD + STO_ADJ_CHUNK_BYTES_MAX);
	if (rv)
		return rv;
	uint8_t *h = (uint8_t *)c->wonly.data + c->wonly.len, *v = h + HEAD,
	        *p = v;
	/* at most STO_ADJ_CHUNK_BYTES_MAX: the magic, two counts and
	 * STO_ADJ_CHUNK_ENTRIES_MAX entries of three varints */
	*p++ = ch->no ? STO_ADJ_CHUNKN_MAGIC : STO_ADJ_CHUNK0_MAGIC;
	if (!ch->no)
		p = sto_uvarint_at(p, ch->nchunks);
	p = sto_uvarint_at(p, ch->n);
	for (uint32_t i = 0; i < ch->n; i++) {
		p = sto_uvarint_at(p, ch->e[i].type);
		p = sto_uvarint_at(p, ch->e[i].other);
		p = sto_uvarint_at(p, ch->e[i].edge);
	}
	ch->vlen = (uint32_t)(p - v);
	h[0] = 0; /* a put */
	h[1] = STO_CF_ADJ;
	lora_put_be32(h + 2, STO_ADJ_KEY_BYTES);
	lora_put_be32(h + 6, ch->vlen);
	memcpy(h + 10, k, STO_ADJ_KEY_BYTES);
	ch->voff = c->wonly.len + HEAD;
	ch->encoded = 1;
	c->wonly.len += HEAD + ch->vlen;
	c->wonly.data[c->wonly.len] = '\0'; /* as lora_buf_append */
	return 0;
}

int adj_flush(struct apply_ctx *c)
{
	struct adj_stage *st = c->adj;
	int rv = 0;
	for (size_t i = 0; !rv && st && i < st->n; i++) {
		struct adj_chunk *ch = st->ch[i];
		uint8_t k[STO_ADJ_KEY_BYTES];
		if (!ch->dirty)
			continue;
		sto_key_adj(k, ch->node, ch->dir, ch->no);
		if (!ch->n)
			rv = apply_wonly(c, 1, STO_CF_ADJ, k, sizeof(k), "", 0);
		else
			rv = chunk_put(c, ch, k);
	}
	return rv;
}

void adj_committed(struct apply_ctx *c, int ok)
{
	struct adj_stage *st = c->adj;
	struct sto_adjc *a = c->s->adjc;
	if (!ok && st) /* the write failed: what the store holds is unknown */
		sto_adjc_clear(a);
	for (size_t i = 0; ok && a && st && i < st->n; i++) {
		for (int step = 0; step < 2; step++) {
			size_t j = i + ADJ_CACHE_AHEAD / (step + 1);
			if (j < st->n && st->ch[j]->dirty)
				sto_adjc_prefetch(a, st->ch[j]->node,
				                  st->ch[j]->dir, st->ch[j]->no,
				                  step);
		}
		const struct adj_chunk *ch = st->ch[i];
		if (!ch->dirty)
			continue;
		if (!ch->n)
			sto_adjc_put(a, ch->node, ch->dir, ch->no, NULL, 0);
		else if (ch->encoded)
			sto_adjc_put(a, ch->node, ch->dir, ch->no,
			             c->wonly.data + ch->voff, ch->vlen);
		else /* cannot happen: adj_flush encoded every dirty chunk */
			sto_adjc_drop(a, ch->node, ch->dir, ch->no);
	}
	atomic_store_explicit(&c->s->adjc_bytes, sto_adjc_bytes(a),
	                      memory_order_relaxed);
}

/* Marks ch changed: written at adj_flush (deleted when it has no
 * entries). */
static void chunk_touch(struct adj_chunk *ch)
{
	ch->dirty = 1;
	ch->found = ch->n > 0;
}

/* Relationships ahead of the one being added whose chunks are asked
 * for. */
#define ADJ_HINT_AHEAD_EDGES 8

/* The staged chunk 0 of (node, dir) from the hints, when the relationship
 * being created (mutation c->mut) has one, else NULL; asks the CPU for
 * the chunks a few relationships on. A hint is built from the same
 * mutation create_edge reads: one for another list is a bug here. */
static struct adj_chunk *hint_take(struct apply_ctx *c, uint64_t node, char dir)
{
	const struct adj_stage *st = c->adj;
	size_t i = 2 * c->mut + (dir == STO_K_IN),
	       a = i + 2 * ADJ_HINT_AHEAD_EDGES;
	if (!st || i >= st->nhint)
		return NULL;
	if (a < st->nhint && st->hint[a]) {
		const char *p = (const char *)st->hint[a];
		__builtin_prefetch(p, 1);
		__builtin_prefetch(p + 64, 1);
	}
	struct adj_chunk *ch = st->hint[i];
	LORA_ASSERT(!ch || (ch->node == node && ch->dir == dir && !ch->no));
	return ch;
}

int adj_add(struct apply_ctx *c, uint64_t node, char dir,
            const struct sto_adj_ent *e, uint32_t *chunk, int *had)
{
	struct adj_chunk *c0 = hint_take(c, node, dir), *cl;
	int rv = c0 ? 0 : chunk_load(c, node, dir, 0, 1, &c0);
	if (rv)
		return rv;
	*had = c0->found;
	if (!c0->found)
		c0->nchunks = 1;
	uint32_t last = c0->nchunks - 1;
	cl = c0;
	if (last > 0 && (rv = chunk_need(c, node, dir, last, &cl)))
		return rv;
	if (cl->n >= STO_ADJ_CHUNK_ENTRIES_MAX) {
		if (c0->nchunks == UINT32_MAX)
			return lora_errf(LORA_ELIMIT, c->errmsg,
			                 "node %llu: too many relationships",
			                 (unsigned long long)node);
		/* A new last chunk: no key in the database. */
		if ((rv = chunk_load(c, node, dir, c0->nchunks, 0, &cl)))
			return rv;
		c0->nchunks++;
		chunk_touch(c0);
	}
	if ((rv = chunk_room(cl, cl->n + 1)))
		return rv;
	cl->e[cl->n++] = *e;
	*chunk = cl->no;
	chunk_touch(cl);
	return 0;
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
	struct adj_chunk *c0, *ck, *cl = NULL;
	int rv = chunk_need(c, node, dir, 0, &c0);
	if (rv)
		return rv;
	if (chunk >= c0->nchunks)
		return adj_corrupt(c, node, dir, chunk, "beyond the last");
	uint32_t last = c0->nchunks - 1;
	ck = c0;
	if (chunk > 0 && (rv = chunk_need(c, node, dir, chunk, &ck)))
		return rv;
	if (last == chunk)
		cl = ck;
	else if ((rv = chunk_need(c, node, dir, last, &cl)))
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
	if (!cl->n && last > 0) {
		c0->nchunks--; /* the last chunk is gone */
		chunk_touch(c0);
	}
	chunk_touch(ck);
	chunk_touch(cl);
	return 0;
}

/* Appends the be64 edge ids of ch's entries to ids. */
static int list_append(const struct adj_chunk *ch, struct lora_buf *ids)
{
	int rv = 0;
	for (uint32_t i = 0; !rv && i < ch->n; i++) {
		uint8_t b[8];
		lora_put_be64(b, ch->e[i].edge);
		rv = lora_buf_append(ids, b, 8);
	}
	return rv;
}

/* Chunks a listing only reads are decoded into one scratch chunk rather
 * than staged: a node of a million edges stages nothing by being listed. */
int adj_list(struct apply_ctx *c, uint64_t node, char dir, struct lora_buf *ids)
{
	struct adj_chunk *c0, tmp = {.node = node, .dir = dir};
	int rv = chunk_load(c, node, dir, 0, 1, &c0);
	if (rv || !c0->found)
		return rv;
	rv = list_append(c0, ids);
	for (uint32_t no = 1; !rv && no < c0->nchunks; no++) {
		size_t h;
		const struct adj_chunk *ch =
		    stage_find(c->adj, node, dir, no, &h);
		if (!ch) {
			tmp.no = no;
			tmp.n = 0;
			if (!(rv = chunk_read(c, &tmp, NULL, 0)) && !tmp.found)
				rv = adj_corrupt(c, node, dir, no, "missing");
			ch = &tmp;
		} else if (!ch->found) {
			rv = adj_corrupt(c, node, dir, no, "missing");
		}
		if (!rv)
			rv = list_append(ch, ids);
	}
	chunk_release(&tmp);
	return rv;
}

int adj_any(struct apply_ctx *c, uint64_t node, int *yes)
{
	struct adj_chunk *ch = NULL;
	int rv = 0;
	*yes = 0;
	for (int d = 0; !rv && !*yes && d < 2; d++)
		if (!(rv = chunk_load(c, node, d ? STO_K_IN : STO_K_OUT, 0, 1,
		                      &ch)))
			*yes = ch->found;
	return rv;
}

/* Stages chunk 0 of (node, dir) from the value v (vlen 0: no key). */
static int stage_value(struct apply_ctx *c, const uint8_t *k, const char *v,
                       size_t vlen)
{
	uint64_t node = lora_get_be64(k);
	char dir = (char)k[8];
	struct adj_stage *st = c->adj;
	size_t h;
	int rv = stage_grow(st);
	if (rv || stage_find(st, node, dir, 0, &h))
		return rv;
	struct adj_chunk *ch = chunk_new(st);
	if (!ch)
		return LORA_ENOMEM;
	ch->node = node;
	ch->dir = dir;
	if ((rv = chunk_read(c, ch, v ? v : "", v ? vlen : 0))) {
		chunk_release(ch); /* its place in the block stays unused */
		return rv;
	}
	st->ch[st->n++] = ch;
	st->slot[h] = (uint32_t)st->n;
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STO_ADJ_KEY_BYTES);
}

/* Appends chunk 0's key of (node, dir) when it may be in the database. */
static void want_key(struct apply_ctx *c, uint8_t *keys, size_t *n,
                     uint64_t node, char dir)
{
	if (node < c->state_next_node)
		sto_key_adj(keys + STO_ADJ_KEY_BYTES * (*n)++, node, dir, 0);
}

/* Reads the keys of `keys` (sorted, distinct) with one MultiGet and
 * stages them. */
static int prefetch_read(struct apply_ctx *c, const uint8_t *keys, size_t n)
{
	const char **kp = lora_malloc(n * sizeof(*kp));
	size_t *kl = lora_malloc(n * sizeof(*kl));
	rocksdb_pinnableslice_t **vals = lora_calloc(n, sizeof(*vals));
	char **errs = lora_calloc(n, sizeof(*errs));
	int rv = kp && kl && vals && errs ? 0 : LORA_ENOMEM;
	for (size_t i = 0; !rv && i < n; i++) {
		kp[i] = (const char *)keys + i * STO_ADJ_KEY_BYTES;
		kl[i] = STO_ADJ_KEY_BYTES;
	}
	if (!rv)
		rocksdb_batched_multi_get_cf(c->s->db, c->s->ro,
		                             c->s->cf[STO_CF_ADJ], n, kp, kl,
		                             vals, errs, 1);
	for (size_t i = 0; !rv && i < n; i++) {
		size_t vlen = 0;
		const char *v = NULL;
		if (i + ADJ_CACHE_AHEAD < n) {
			const uint8_t *ka =
			    keys + (i + ADJ_CACHE_AHEAD) * STO_ADJ_KEY_BYTES;
			slot_prefetch(c->adj, lora_get_be64(ka), (char)ka[8]);
		}
		if (errs[i]) {
			rv = sto_rocks_err(errs[i], c->errmsg, "read");
			errs[i] = NULL; /* freed by sto_rocks_err */
		} else if (vals[i])
			v = rocksdb_pinnableslice_value(vals[i], &vlen);
		if (!rv) {
			const uint8_t *k = keys + i * STO_ADJ_KEY_BYTES;
			if (!v || vlen) /* as chunk_read */
				sto_adjc_put(c->s->adjc, lora_get_be64(k),
				             (char)k[8], 0, v, v ? vlen : 0);
			rv = stage_value(c, k, v, vlen);
		}
	}
	for (size_t i = 0; vals && errs && i < n; i++) {
		if (vals[i])
			rocksdb_pinnableslice_destroy(vals[i]);
		if (errs[i])
			rocksdb_free(errs[i]);
	}
	lora_free(kp);
	lora_free(kl);
	lora_free(vals);
	lora_free(errs);
	return rv;
}

/* End d (0: source, outgoing; 1: target, incoming) of mutation i when it
 * creates a relationship; 0 when it does not. */
static int edge_end_at(const Lora__MutationBatch *b, size_t i, int d,
                       uint64_t *node, char *dir)
{
	const Lora__Mutation *mu = b->mutations[i];
	if (!mu || mu->op_case != LORA__MUTATION__OP_CREATE_EDGE ||
	    !mu->create_edge)
		return 0;
	*node = d ? mu->create_edge->to_id : mu->create_edge->from_id;
	*dir = d ? STO_K_IN : STO_K_OUT;
	return 1;
}

/* Relationship ends between asking for an end's hash slot, for the
 * chunk pointer there, for the chunk, and the lookup (hint_fill). */
#define ADJ_HINT_STEP_ENDS 8

/* Fills c->adj->hint from the staged chunks: each lookup's three
 * dependent reads (hash slot, chunk pointer, chunk) are asked of the CPU
 * ADJ_HINT_STEP_ENDS ends apart, so that they overlap rather than wait
 * one after the other. Without memory for them there are no hints:
 * adj_add searches the table. */
static void hint_fill(struct apply_ctx *c, const Lora__MutationBatch *b)
{
	struct adj_stage *st = c->adj;
	size_t n = 2 * b->n_mutations;
	lora_free(st->hint);
	st->nhint = 0;
	if (!(st->hint = lora_calloc(n, sizeof(*st->hint))))
		return;
	st->nhint = n;
	for (size_t k = 0; k < n + 3 * ADJ_HINT_STEP_ENDS; k++) {
		uint64_t node;
		char dir;
		size_t h;
		/* k: the slot; k - STEP: the pointer; k - 2 STEP: the chunk;
		 * k - 3 STEP (below): the lookup */
		for (int stage = 0; stage < 3; stage++) {
			size_t j = k - (size_t)stage * ADJ_HINT_STEP_ENDS;
			if (j > k || j >= n ||
			    !edge_end_at(b, j / 2, (int)(j % 2), &node, &dir))
				continue;
			size_t i =
			    sto_adj_chunk_hash(node, dir, 0) & (st->nslot - 1);
			if (!stage) {
				__builtin_prefetch(&st->slot[i]);
				continue;
			}
			uint32_t sl = st->slot[i];
			if (sl && stage == 1)
				__builtin_prefetch(&st->ch[sl - 1]);
			else if (sl)
				__builtin_prefetch(st->ch[sl - 1]);
		}
		size_t j = k - 3 * ADJ_HINT_STEP_ENDS;
		if (j > k || j >= n ||
		    !edge_end_at(b, j / 2, (int)(j % 2), &node, &dir))
			continue;
		st->hint[j] = stage_find(st, node, dir, 0, &h);
	}
}

int adj_prefetch(struct apply_ctx *c, const Lora__MutationBatch *b)
{
	size_t n = 0, m = 0;
	uint64_t node;
	char dir;
	for (size_t i = 0; i < b->n_mutations; i++)
		m += edge_end_at(b, i, 0, &node, &dir);
	if (m < ADJ_PREFETCH_EDGES_MIN)
		return 0;
	if (!c->adj && !(c->adj = lora_calloc(1, sizeof(*c->adj))))
		return LORA_ENOMEM;
	uint8_t *keys = lora_malloc(2 * m * STO_ADJ_KEY_BYTES);
	if (!keys)
		return LORA_ENOMEM;
	for (size_t i = 0; i < b->n_mutations; i++)
		for (int d = 0; d < 2; d++)
			if (edge_end_at(b, i, d, &node, &dir))
				want_key(c, keys, &n, node, dir);
	/* none in the store (every end a node the batch creates): nothing
	 * to stage, no hints */
	if (!n) {
		lora_free(keys);
		return 0;
	}
	/* the table keeps its size while the keys are staged: slots asked
	 * for ahead are the slots used */
	int rv = stage_room(c->adj, c->adj->n + n);
	if (rv) {
		lora_free(keys);
		return rv;
	}
	/* chunks the cache holds are staged from it (stage_value takes a
	 * key once); the rest are sorted, made distinct and read */
	size_t miss = 0;
	for (size_t i = 0; !rv && i < n; i++) {
		for (int step = 0; step < 2; step++) {
			size_t j = i + ADJ_CACHE_AHEAD / (step + 1);
			if (j >= n)
				continue;
			const uint8_t *kj = keys + j * STO_ADJ_KEY_BYTES;
			sto_adjc_prefetch(c->s->adjc, lora_get_be64(kj),
			                  (char)kj[8], 0, step);
			if (step)
				slot_prefetch(c->adj, lora_get_be64(kj),
				              (char)kj[8]);
		}
		const uint8_t *k = keys + i * STO_ADJ_KEY_BYTES;
		const char *v;
		size_t vlen;
		if (sto_adjc_get(c->s->adjc, lora_get_be64(k), (char)k[8], 0,
		                 &v, &vlen))
			rv = stage_value(c, k, vlen ? v : NULL, vlen);
		else if (miss++ != i)
			memmove(keys + (miss - 1) * STO_ADJ_KEY_BYTES, k,
			        STO_ADJ_KEY_BYTES);
	}
	qsort(keys, miss, STO_ADJ_KEY_BYTES, key_cmp);
	size_t u = 0;
	for (size_t i = 0; i < miss; i++)
		if (!u || memcmp(keys + i * STO_ADJ_KEY_BYTES,
		                 keys + (u - 1) * STO_ADJ_KEY_BYTES,
		                 STO_ADJ_KEY_BYTES))
			memmove(keys + u++ * STO_ADJ_KEY_BYTES,
			        keys + i * STO_ADJ_KEY_BYTES,
			        STO_ADJ_KEY_BYTES);
	if (!rv && u)
		rv = prefetch_read(c, keys, u);
	lora_free(keys);
	if (!rv)
		hint_fill(c, b);
	return rv;
}
