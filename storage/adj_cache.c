/* adj_cache.c - the adjacency chunks the last batches wrote, kept by the
 * applying thread (see stoInt.h, "Adjacency chunk cache").
 *
 * A batch that creates relationships reads chunk 0 of both ends of each
 * one (apply_adj.c). For a node touched a few batches ago that read is a
 * search in the adjacency CF's memtables and, once they were flushed, in
 * its SST files: at a million relationships over 100,000 nodes most of
 * the applying thread's time. The cache keeps each chunk's encoding as
 * the last committed batch wrote it (or as it was read), keyed by (node,
 * direction, chunk number); an entry of length 0 says the chunk has no
 * key. Entries change only after the batch's write succeeded, so a
 * rejected batch leaves the cache as the store: exact.
 *
 * Open addressing with linear probing and backward-shift deletion; when
 * its bytes pass the budget, a CLOCK hand evicts entries not used since
 * it last passed them.
 */
#include <stdlib.h>
#include <string.h>

#include "stoInt.h"

struct adjc_ent {
	uint64_t node;
	uint32_t no;
	uint32_t len; /* value bytes; 0: no key */
	uint32_t cap; /* room in v: a longer value of the key is written over
	               * the old one when it fits */
	char dir;
	uint8_t ref; /* used since the hand passed */
	char v[];
};

struct sto_adjc {
	struct adjc_ent **slot;
	size_t nslot; /* a power of two; 0 before the first put */
	size_t n;     /* entries */
	size_t bytes; /* entries + slots, what the budget counts */
	size_t budget;
	size_t hand;
	uint64_t hits, misses, evictions;
};

/* Entry overhead beyond its struct and value: the allocator's header. */
#define ADJC_MALLOC_OVERHEAD 16u
/* An entry's room is its value rounded up to this: a chunk that grows by
 * a few relationships per batch is rewritten in place. */
#define ADJC_ROOM_STEP 32u
enum { ADJC_SLOTS_MIN = 1024 };

static size_t ent_bytes(const struct adjc_ent *e)
{
	return sizeof(*e) + e->cap + ADJC_MALLOC_OVERHEAD;
}

struct sto_adjc *sto_adjc_new(size_t budget)
{
	struct sto_adjc *a = lora_calloc(1, sizeof(*a));
	if (a)
		a->budget = budget;
	return a;
}

void sto_adjc_clear(struct sto_adjc *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nslot; i++)
		lora_free(a->slot[i]);
	if (a->slot)
		memset(a->slot, 0, a->nslot * sizeof(*a->slot));
	a->n = 0;
	a->bytes = a->nslot * sizeof(*a->slot);
	a->hand = 0;
}

void sto_adjc_free(struct sto_adjc *a)
{
	if (!a)
		return;
	sto_adjc_clear(a);
	lora_free(a->slot);
	lora_free(a);
}

/* The slot holding (node, dir, no), or the empty slot where it would go. */
static size_t find(const struct sto_adjc *a, uint64_t node, char dir,
                   uint32_t no)
{
	size_t m = a->nslot - 1,
	       i = (size_t)sto_adj_chunk_hash(node, dir, no) & m;
	for (; a->slot[i]; i = (i + 1) & m) {
		const struct adjc_ent *e = a->slot[i];
		if (e->node == node && e->no == no && e->dir == dir)
			break;
	}
	return i;
}

int sto_adjc_get(struct sto_adjc *a, uint64_t node, char dir, uint32_t no,
                 const char **v, size_t *len)
{
	if (!a || !a->nslot)
		return a ? (a->misses++, 0) : 0;
	struct adjc_ent *e = a->slot[find(a, node, dir, no)];
	if (!e) {
		a->misses++;
		return 0;
	}
	e->ref = 1;
	a->hits++;
	*v = e->v;
	*len = e->len;
	return 1;
}

void sto_adjc_prefetch(const struct sto_adjc *a, uint64_t node, char dir,
                       uint32_t no, int step)
{
	if (!a || !a->nslot)
		return;
	size_t i = (size_t)sto_adj_chunk_hash(node, dir, no) & (a->nslot - 1);
	if (step == 0)
		__builtin_prefetch(&a->slot[i]);
	else if (a->slot[i])
		__builtin_prefetch(a->slot[i]);
}

/* Removes the entry in slot i, moving later entries of its probe run
 * back so that every entry stays reachable from its home slot. */
static void remove_at(struct sto_adjc *a, size_t i)
{
	size_t m = a->nslot - 1;
	a->bytes -= ent_bytes(a->slot[i]);
	lora_free(a->slot[i]);
	a->slot[i] = NULL;
	a->n--;
	for (size_t j = (i + 1) & m; a->slot[j]; j = (j + 1) & m) {
		const struct adjc_ent *e = a->slot[j];
		size_t home =
		    (size_t)sto_adj_chunk_hash(e->node, e->dir, e->no) & m;
		/* e may move to i when i lies on its way from home to j */
		if (((j - home) & m) >= ((j - i) & m)) {
			a->slot[i] = a->slot[j];
			a->slot[j] = NULL;
			i = j;
		}
	}
}

/* Evicts until one more entry of `need` bytes fits the budget and keeps
 * the table at most half full. */
static void evict(struct sto_adjc *a, size_t need)
{
	/* a pass of the hand clears every ref bit: the next evicts */
	for (size_t steps = 0;
	     a->n &&
	     (a->bytes + need > a->budget || 2 * (a->n + 1) > a->nslot) &&
	     steps < 3 * a->nslot;
	     steps++) {
		size_t i = a->hand;
		struct adjc_ent *e = a->slot[i];
		if (e && e->ref) {
			e->ref = 0;
		} else if (e) {
			remove_at(a, i);
			a->evictions++;
			if (a->slot[i]) /* an entry moved into i: look at it */
				continue;
		}
		a->hand = (i + 1) & (a->nslot - 1);
	}
}

/* Doubles the table (or makes the first); 0, or -1 without memory. */
static int grow(struct sto_adjc *a)
{
	size_t nslot = a->nslot ? 2 * a->nslot : ADJC_SLOTS_MIN;
	struct adjc_ent **slot = lora_calloc(nslot, sizeof(*slot));
	if (!slot)
		return -1;
	struct adjc_ent **old = a->slot;
	size_t oldn = a->nslot;
	a->slot = slot;
	a->nslot = nslot;
	for (size_t i = 0; i < oldn; i++)
		if (old[i])
			slot[find(a, old[i]->node, old[i]->dir, old[i]->no)] =
			    old[i];
	lora_free(old);
	a->bytes += (nslot - oldn) * sizeof(*slot);
	a->hand = 0;
	return 0;
}

void sto_adjc_drop(struct sto_adjc *a, uint64_t node, char dir, uint32_t no)
{
	if (!a || !a->nslot)
		return;
	size_t i = find(a, node, dir, no);
	if (a->slot[i])
		remove_at(a, i);
}

void sto_adjc_put(struct sto_adjc *a, uint64_t node, char dir, uint32_t no,
                  const void *v, size_t len)
{
	if (!a)
		return;
	if (a->nslot) { /* the key's entry, when the value fits in it */
		struct adjc_ent *e = a->slot[find(a, node, dir, no)];
		if (e && len <= e->cap) {
			if (len)
				memcpy(e->v, v, len);
			e->len = (uint32_t)len;
			e->ref = 1;
			return;
		}
	}
	size_t cap =
	    (len + ADJC_ROOM_STEP - 1) / ADJC_ROOM_STEP * ADJC_ROOM_STEP;
	size_t need = sizeof(struct adjc_ent) + cap + ADJC_MALLOC_OVERHEAD;
	/* the room beside the table (at least the first one) */
	size_t table =
	    (a->nslot ? a->nslot : ADJC_SLOTS_MIN) * sizeof(*a->slot);
	size_t room = a->budget > table ? a->budget - table : 0;
	if (len > UINT32_MAX / 2 || need > room / 4) {
		sto_adjc_drop(a, node, dir, no); /* too large to keep */
		return;
	}
	if (!a->nslot || 2 * (a->n + 1) > a->nslot) {
		size_t more =
		    (a->nslot ? a->nslot : ADJC_SLOTS_MIN) * sizeof(*a->slot);
		if (a->bytes + more + need > a->budget || grow(a) != 0) {
			/* the table stays: make room in it instead */
			if (!a->nslot)
				return;
			sto_adjc_drop(a, node, dir, no);
			evict(a, need);
			if (2 * (a->n + 1) > a->nslot)
				return;
		}
	}
	size_t i = find(a, node, dir, no);
	if (a->slot[i]) {
		remove_at(a, i);
		i = find(a, node, dir, no);
	}
	if (a->bytes + need > a->budget) {
		evict(a, need);
		i = find(a, node, dir, no);
		if (a->bytes + need > a->budget)
			return;
	}
	struct adjc_ent *e = lora_malloc(sizeof(*e) + cap);
	if (!e)
		return;
	e->cap = (uint32_t)cap;
	e->node = node;
	e->no = no;
	e->dir = dir;
	e->len = (uint32_t)len;
	e->ref = 1;
	if (len)
		memcpy(e->v, v, len);
	a->slot[i] = e;
	a->n++;
	a->bytes += ent_bytes(e);
}

size_t sto_adjc_bytes(const struct sto_adjc *a)
{
	return a ? a->bytes : 0;
}

void sto_adjc_stats(const struct sto_adjc *a, struct sto_adjc_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!a)
		return;
	out->entries = a->n;
	out->slots = a->nslot;
	out->bytes = a->bytes;
	out->budget = a->budget;
	out->hits = a->hits;
	out->misses = a->misses;
	out->evictions = a->evictions;
}
