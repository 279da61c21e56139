/* hnsw.c - the in-memory HNSW graph of one vector index, deterministic.
 *
 * Hierarchical navigable small worlds (Malkov & Yashunin): every node sits
 * on levels 0..L (L geometric, here from a hash of the index name and the
 * node id, so no random generator and the same level on every replica);
 * each level is a proximity graph of at most m neighbours per node (2 * m
 * on level 0). A search descends greedily from the entry point (a node of
 * the top level) and runs a best-first search of ef candidates on level 0.
 * Insertion searches ef_construction candidates per level and keeps the
 * neighbours the "heuristic" picks (a candidate is kept when it is closer
 * to the new node than to every one kept so far: it spreads the links in
 * all directions), then links back: a full list of the neighbour gives
 * up its farthest entry when the new node is closer (re-running the
 * heuristic there costs m0^2 distances per link: measured 2.3 times
 * slower inserts for the same recall on clustered data). Every list
 * keeps its entries' distances beside it, so the link back computes no
 * distance at all (they were m0 + 1 per link).
 *
 * Removal repairs instead of leaving tombstones: every list that pointed at
 * a removed node is re-selected from what remains of it plus the removed
 * node's own neighbours, so no dead node stays in the graph and recall does
 * not decay with deletes. Finding the lists that point at removed nodes
 * scans every list once per call, which is why a batch removes all its
 * nodes in one hnsw_remove.
 *
 * Determinism: distances are float32 sums over 8 lanes in a fixed order
 * (GCC vector extension: IEEE operations lane by lane, no reassociation),
 * heaps order (distance, id) (a NaN distance counts as +inf, so the order
 * is total), lists keep their order, and slots (where a
 * node sits in memory) never decide anything. Vectors are stored with
 * their dimension padded to a multiple of 8 with zeros, which changes no
 * sum. Floating-point contraction (a*b+c fused into one FMA, which rounds
 * once, where a compiler or target may choose to) is off for this file
 * (pragma here, -ffp-contract=off in CMakeLists.txt), and levels are
 * integer arithmetic on the hash (no libm, whose log() may round
 * differently between C libraries).
 */
#ifdef __clang__ /* GCC ignores it (and warns): the flag does it there */
#pragma STDC FP_CONTRACT OFF
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hnswInt.h"
#include "stoInt.h"

#define HNSW_FREE_LEVEL 0xffu
#define HNSW_LANES      HNSW_DIST_LANES
#define HNSW_GROUP      4 /* vectors scored at once (dist_many) */
#define HNSW_AHEAD      4 /* vectors prefetched ahead of the scoring */

struct hnsw_scratch {
	struct hnsw_cand *cand, *res;
	size_t cap;
};

struct hnsw_graph {
	char *name;
	const struct hnsw_kernel *k; /* distances (hnsw_dist.c) */
	uint32_t dims, dpad, m, m0, efc;
	int metric;
	size_t nslot, cap, live;
	uint64_t *ids;
	uint8_t *lvl; /* HNSW_FREE_LEVEL: free slot */
	/* One row of rstride words per slot, all that a search reads of a
	 * node in one place (see "rows" below): id, inverse norm, level 0
	 * list, vector. */
	uint32_t *row;
	size_t rstride, voff;
	float *inv;    /* cosine: 1 / norm (also in the row) */
	float *d0;     /* level 0 list distances: cap * (1 + m0) */
	uint32_t **nb; /* levels 1..lvl: lists, then their distances */
	uint8_t *dirty;
	/* visit tags: one byte per slot (a quarter of the cache a word
	 * took; every list entry looked at reads one), cleared every 255
	 * searches */
	uint8_t *vis, vtag;
	uint32_t *freel;
	size_t nfree;
	/* id -> slot, linear probing on id + 1 (0: empty) */
	uint64_t *mk;
	uint32_t *mv;
	size_t mcap, mn;
	/* node ids to write / to delete at the next hnsw_flush */
	uint64_t *dids, *rids;
	size_t ndids, capd, nrids, capr;
	int64_t entry; /* slot, -1: empty */
	int top;
	/* loading: raw list bytes per slot */
	uint8_t **raw;
	size_t *rawlen;
	struct hnsw_scratch sc; /* heaps of the search under way */
};

/* ---- small helpers ---- */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 64;
	while (nc < need)
		nc *= 2;
	void *q = lora_realloc(*p, nc * elem);
	if (!q)
		return LORA_ENOMEM;
	*p = q;
	*cap = nc;
	return 0;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static int cand_less(const struct hnsw_cand *a, const struct hnsw_cand *b)
{
	return a->dist < b->dist || (a->dist == b->dist && a->id < b->id);
}

static int cand_cmp(const void *x, const void *y)
{
	const struct hnsw_cand *a = x, *b = y;
	return cand_less(a, b) ? -1 : cand_less(b, a) ? 1 : 0;
}

/* ---- the id map ---- */

static size_t map_pos(const struct hnsw_graph *g, uint64_t id)
{
	return (size_t)mix64(id) & (g->mcap - 1);
}

static int64_t map_get(const struct hnsw_graph *g, uint64_t id)
{
	if (!g->mcap)
		return -1;
	for (size_t i = map_pos(g, id);; i = (i + 1) & (g->mcap - 1)) {
		if (!g->mk[i])
			return -1;
		if (g->mk[i] == id + 1)
			return g->mv[i];
	}
}

static int map_put(struct hnsw_graph *g, uint64_t id, uint32_t slot);

static int map_grow(struct hnsw_graph *g)
{
	size_t oc = g->mcap, nc = oc ? oc * 2 : 1024;
	uint64_t *ok = g->mk;
	uint32_t *ov = g->mv;
	g->mk = lora_calloc(nc, sizeof *g->mk);
	g->mv = lora_calloc(nc, sizeof *g->mv);
	if (!g->mk || !g->mv) {
		lora_free(g->mk);
		lora_free(g->mv);
		g->mk = ok;
		g->mv = ov;
		return LORA_ENOMEM;
	}
	g->mcap = nc;
	g->mn = 0;
	for (size_t i = 0; i < oc; i++)
		if (ok[i])
			map_put(g, ok[i] - 1, ov[i]);
	lora_free(ok);
	lora_free(ov);
	return 0;
}

static int map_put(struct hnsw_graph *g, uint64_t id, uint32_t slot)
{
	if ((g->mn + 1) * 2 > g->mcap && map_grow(g))
		return LORA_ENOMEM;
	size_t i = map_pos(g, id);
	while (g->mk[i] && g->mk[i] != id + 1)
		i = (i + 1) & (g->mcap - 1);
	if (!g->mk[i])
		g->mn++;
	g->mk[i] = id + 1;
	g->mv[i] = slot;
	return 0;
}

/* backward-shift deletion keeps every probe chain unbroken */
static void map_del(struct hnsw_graph *g, uint64_t id)
{
	if (!g->mcap)
		return;
	size_t i = map_pos(g, id), mask = g->mcap - 1;
	while (g->mk[i] && g->mk[i] != id + 1)
		i = (i + 1) & mask;
	if (!g->mk[i])
		return;
	for (size_t j = (i + 1) & mask; g->mk[j]; j = (j + 1) & mask) {
		size_t h = map_pos(g, g->mk[j] - 1);
		/* j's entry may move to i when i lies on its probe path */
		if (((j - h) & mask) >= ((j - i) & mask)) {
			g->mk[i] = g->mk[j];
			g->mv[i] = g->mv[j];
			i = j;
		}
	}
	g->mk[i] = 0;
	g->mn--;
}

/* ---- rows ----
 *
 * A search scores a node (its vector, then its id and inverse norm) and,
 * if it is close, later reads its level 0 list. Kept in separate arrays
 * these were three or four cache misses per node, one after the other
 * (list pointer, list, id); in one row they come with the vector, which
 * is prefetched before it is scored. Words 0-1: id, 2: inverse norm (the
 * cosine metric), 3: unused, 4..4 + m0: level 0 list (count, entries),
 * then the vector from word voff (a multiple of 4: 16-byte aligned). */
#define HNSW_ROW_L0 4

static uint32_t *row_of(const struct hnsw_graph *g, uint32_t slot)
{
	return g->row + (size_t)slot * g->rstride;
}

static const float *vec_of(const struct hnsw_graph *g, uint32_t slot)
{
	return (const float *)(const void *)(row_of(g, slot) + g->voff);
}

static uint64_t row_id(const struct hnsw_graph *g, uint32_t slot)
{
	uint64_t id;
	memcpy(&id, row_of(g, slot), sizeof id);
	return id;
}

static float row_inv(const struct hnsw_graph *g, uint32_t slot)
{
	float f;
	memcpy(&f, row_of(g, slot) + 2, sizeof f);
	return f;
}

/* distance from q (padded, qinv its inverse norm) to slot s */
static void prefetch_vec(const struct hnsw_graph *g, uint32_t s)
{
	/* every line the vector touches: a row is not line-aligned, so a
	 * vector of 8 lines may lie on 9 */
	uintptr_t p = (uintptr_t)vec_of(g, s), e = p + sizeof(float) * g->dpad;
	__builtin_prefetch(row_of(g, s));
	for (p &= ~(uintptr_t)63; p < e; p += 64)
		__builtin_prefetch((const void *)p);
}

/* Every distance passes here: NaN counts as +inf, the farthest. Finite
 * vectors give NaN when a dot product overflows (components up to
 * FLT_MAX are accepted): inf - inf for dot, inf * 0 for cosine (the
 * inverse norm of such a vector is 0). With NaN, (dist, id) would not be
 * a total order and the heaps' pops would depend on their layout. */
static float dist_total(float d)
{
	return isnan(d) ? INFINITY : d;
}

/* the kernels' raw result, NaN possible */
static float dist_raw(const struct hnsw_graph *g, const float *q, float qinv,
                      uint32_t s)
{
	const float *x = vec_of(g, s);
	switch (g->metric) {
	case HNSW_EUCLIDEAN:
		return g->k->l2(q, x, g->dpad);
	case HNSW_DOT:
		return -g->k->dot(q, x, g->dpad);
	default: /* qinv * inv[s] first: the same bits from either side */
		return 1.0f - g->k->dot(q, x, g->dpad) * (qinv * row_inv(g, s));
	}
}

static float dist_q(const struct hnsw_graph *g, const float *q, float qinv,
                    uint32_t s)
{
	return dist_total(dist_raw(g, q, qinv, s));
}

/* dist_q of q to n slots s[0..n) into out: four at a time (independent
 * sums, see hnsw_dist.c), each the same bits as dist_q gives it */
static void dist_many(const struct hnsw_graph *g, const float *q, float qinv,
                      const uint32_t *s, uint32_t n, float *out)
{
	uint32_t i = 0;
	for (; i + 4 <= n; i += 4) {
		const float *x[4] = {vec_of(g, s[i]), vec_of(g, s[i + 1]),
		                     vec_of(g, s[i + 2]), vec_of(g, s[i + 3])};
		if (g->metric == HNSW_EUCLIDEAN) {
			g->k->l24(q, x, g->dpad, out + i);
			continue;
		}
		g->k->dot4(q, x, g->dpad, out + i);
		for (uint32_t j = i; j < i + 4; j++)
			out[j] =
			    g->metric == HNSW_DOT
			        ? -out[j]
			        : 1.0f - out[j] * (qinv * row_inv(g, s[j]));
	}
	for (; i < n; i++)
		out[i] = dist_raw(g, q, qinv, s[i]);
	for (i = 0; i < n; i++)
		out[i] = dist_total(out[i]);
}

static float dist_ss(const struct hnsw_graph *g, uint32_t a, uint32_t b)
{
	return dist_q(g, vec_of(g, a), row_inv(g, a), b);
}

/* ---- lists ---- */

/* words of a node's lists above level 0 (levels 1..lvl, each a count and
 * room for m) */
static size_t up_words(const struct hnsw_graph *g, int lvl)
{
	return (size_t)lvl * (1 + g->m);
}

/* Level 0 lists are in the rows; nb[s] holds s's lists of levels 1..lvl
 * (NULL on level 0 only). */
static uint32_t *list_at(const struct hnsw_graph *g, uint32_t s, int l)
{
	return l ? g->nb[s] + up_words(g, l - 1) : row_of(g, s) + HNSW_ROW_L0;
}

/* The distances of s's list at level l, entry i (1..count) beside the
 * list's entry i (level 0: d0; above: after the lists in nb[s]). Each is
 * dist_ss(s, entry), a function of the two vectors alone, so a graph
 * loaded from disk computes the same values again. */
static float *dist_at(const struct hnsw_graph *g, uint32_t s, int l)
{
	if (!l)
		return g->d0 + (size_t)s * (1 + g->m0);
	return (float *)(void *)(g->nb[s] + up_words(g, g->lvl[s])) +
	       up_words(g, l - 1);
}

static uint32_t list_max(const struct hnsw_graph *g, int l)
{
	return l ? g->m : g->m0;
}

static int mark_dirty(struct hnsw_graph *g, uint32_t s)
{
	if (g->dirty[s])
		return 0;
	if (grow((void **)&g->dids, &g->capd, g->ndids + 1, sizeof(uint64_t)))
		return LORA_ENOMEM;
	g->dirty[s] = 1;
	g->dids[g->ndids++] = g->ids[s];
	return 0;
}

/* ---- graph lifetime ---- */

struct hnsw_graph *hnsw_new(const char *name, uint32_t dims, int metric,
                            uint32_t m, uint32_t efc)
{
	LORA_ASSERT(dims >= 1 && m >= 2 && m <= HNSW_M_MAX && efc >= 1);
	struct hnsw_graph *g = lora_calloc(1, sizeof *g);
	if (!g)
		return NULL;
	size_t nl = strlen(name);
	g->name = lora_malloc(nl + 1);
	if (!g->name) {
		lora_free(g);
		return NULL;
	}
	memcpy(g->name, name, nl + 1);
	g->k = hnsw_kernel_get(HNSW_KERNEL_AUTO);
	g->dims = dims;
	g->dpad = (dims + HNSW_LANES - 1) / HNSW_LANES * HNSW_LANES;
	g->metric = metric;
	g->m = m;
	g->m0 = 2 * m;
	g->efc = efc;
	g->voff = (HNSW_ROW_L0 + 1 + g->m0 + 3) / 4 * 4;
	g->rstride = g->voff + g->dpad;
	g->entry = -1;
	return g;
}

void hnsw_free(struct hnsw_graph *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nslot; i++) {
		lora_free(g->nb[i]);
		if (g->raw)
			lora_free(g->raw[i]);
	}
	lora_free(g->raw);
	lora_free(g->rawlen);
	lora_free(g->name);
	lora_free(g->ids);
	lora_free(g->lvl);
	lora_free(g->row);
	lora_free(g->d0);
	lora_free(g->inv);
	lora_free(g->nb);
	lora_free(g->dirty);
	lora_free(g->vis);
	lora_free(g->freel);
	lora_free(g->mk);
	lora_free(g->mv);
	lora_free(g->dids);
	lora_free(g->rids);
	lora_free(g->sc.cand);
	lora_free(g->sc.res);
	lora_free(g);
}

uint32_t hnsw_dims(const struct hnsw_graph *g)
{
	return g->dims;
}
size_t hnsw_count(const struct hnsw_graph *g)
{
	return g->live;
}

size_t hnsw_bytes(const struct hnsw_graph *g)
{
	/* ids, lvl, row, inv and d0, nb, dirty, vis, freel */
	size_t b = g->cap * (sizeof(uint64_t) + 1 + sizeof(float) * g->rstride +
	                     sizeof(float) * (2 + g->m0) + sizeof(void *) + 2 +
	                     sizeof(uint32_t));
	b += g->mcap * (sizeof(uint64_t) + sizeof(uint32_t));
	for (size_t i = 0; i < g->nslot; i++)
		if (g->lvl[i] != HNSW_FREE_LEVEL)
			b += 2 * sizeof(uint32_t) * up_words(g, g->lvl[i]);
	return b;
}

int hnsw_level_of(const struct hnsw_graph *g, uint64_t id)
{
	uint32_t h = lora_hash32(g->name, strlen(g->name));
	uint64_t x = mix64(id ^ ((uint64_t)h << 32 | h));
	/* level >= l when x < 2^64 / m^l: probability m^-l, the geometric
	 * law floor(-ln(u) / ln(m)) of the paper, in integers */
	uint64_t lim = UINT64_MAX;
	int l = 0;
	while (l < HNSW_LEVEL_MAX && x < (lim /= g->m))
		l++;
	return l;
}

int hnsw_has(const struct hnsw_graph *g, uint64_t id, const float **vec)
{
	int64_t s = map_get(g, id);
	if (s < 0)
		return 0;
	if (vec)
		*vec = vec_of(g, (uint32_t)s);
	return 1;
}

uint64_t hnsw_entry(const struct hnsw_graph *g, int *has)
{
	*has = g->entry >= 0;
	return g->entry >= 0 ? g->ids[g->entry] : 0;
}

/* Asks the kernel for 2 MiB pages under the 2 MiB-aligned part of
 * [p, p + len): a search reads rows at random all over the row array, and
 * with 4 KiB pages nearly every row was also a TLB miss (a page walk, two
 * levels of them in a virtual machine). Advice only: no result depends on
 * it, and a kernel without transparent huge pages ignores it. */
static void huge_advise(void *p, size_t len)
{
	const uintptr_t huge = (uintptr_t)2 << 20;
	uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1);
	uintptr_t e = ((uintptr_t)p + len) & ~(huge - 1);
	if (e > a)
		(void)madvise((void *)a, e - a, MADV_HUGEPAGE);
}

/* Grows an array to c elements of size e in place where it can: glibc
 * moves a large (mmapped) block with mremap, which copies no byte and
 * never holds the old and the new block at once (a new block and a copy
 * did both: at 1M vectors 800 MB copied on the apply thread and 1.6 GB
 * allocated at once). The whole block is advised afterwards; pages it
 * already had stay as they are until khugepaged collapses them. */
static int grow_huge(void **p, size_t c, size_t e)
{
	void *q = lora_realloc(*p, c * e);
	if (!q)
		return LORA_ENOMEM;
	huge_advise(q, c * e);
	*p = q;
	return 0;
}

/* a slot for id at level l, lists empty */
static int slot_new(struct hnsw_graph *g, uint64_t id, int l, uint32_t *out)
{
	uint32_t s;
	if (g->nfree) {
		s = g->freel[--g->nfree];
	} else {
		if (g->nslot == g->cap) {
			size_t c = g->cap ? g->cap * 2 : 256, one = 0;
			size_t c0 = g->cap;
#define HNSW_GROW(p, e)                                                        \
	do {                                                                   \
		one = c0;                                                      \
		if (grow((void **)&(p), &one, c, (e)))                         \
			return LORA_ENOMEM;                                    \
	} while (0)
			HNSW_GROW(g->ids, sizeof(uint64_t));
			HNSW_GROW(g->lvl, 1);
			HNSW_GROW(g->inv, sizeof(float));
			HNSW_GROW(g->nb, sizeof(void *));
			HNSW_GROW(g->dirty, 1);
			HNSW_GROW(g->vis, 1);
			HNSW_GROW(g->freel, sizeof(uint32_t));
			if (grow_huge((void **)&g->row, c,
			              sizeof(uint32_t) * g->rstride) ||
			    grow_huge((void **)&g->d0, c,
			              sizeof(float) * (1 + g->m0)))
				return LORA_ENOMEM;
			if (g->raw) {
				HNSW_GROW(g->raw, sizeof(void *));
				HNSW_GROW(g->rawlen, sizeof(size_t));
			}
#undef HNSW_GROW
			memset(g->vis + c0, 0, c - c0);
			g->cap = one;
		}
		s = (uint32_t)g->nslot++;
	}
	g->nb[s] = l ? lora_calloc(2 * up_words(g, l), sizeof(uint32_t)) : NULL;
	if ((l && !g->nb[s]) || map_put(g, id, s)) {
		lora_free(g->nb[s]);
		g->nb[s] = NULL;
		g->freel[g->nfree++] = s;
		return LORA_ENOMEM;
	}
	g->ids[s] = id;
	memset(row_of(g, s), 0, sizeof(uint32_t) * g->voff);
	memcpy(row_of(g, s), &id, sizeof id);
	g->lvl[s] = (uint8_t)l;
	g->dirty[s] = 0;
	if (g->raw) {
		g->raw[s] = NULL;
		g->rawlen[s] = 0;
	}
	g->live++;
	*out = s;
	return 0;
}

static void slot_set_vec(struct hnsw_graph *g, uint32_t s, const float *v)
{
	float *x = (float *)(void *)(row_of(g, s) + g->voff);
	memcpy(x, v, sizeof(float) * g->dims);
	memset(x + g->dims, 0, sizeof(float) * (g->dpad - g->dims));
	float n = sqrtf(g->k->dot(x, x, g->dpad));
	g->inv[s] = n > 0 ? 1.0f / n : 0;
	memcpy(row_of(g, s) + 2, &g->inv[s], sizeof(float));
}

/* ---- heaps of candidates ---- */

/* min-heap (closest on top) when max = 0, max-heap when max = 1 */
static int before(const struct hnsw_cand *a, const struct hnsw_cand *b, int max)
{
	return max ? cand_less(b, a) : cand_less(a, b);
}

/* Both move a hole instead of swapping (one copy per step, not three).
 * Any correct heap pops the same sequence, as (dist, id) is a total
 * order (no distance is NaN: dist_total): the graph does not depend on
 * how the heap is laid out. */
static void heap_push(struct hnsw_cand *h, size_t *n, struct hnsw_cand x,
                      int max)
{
	size_t i = (*n)++;
	while (i && before(&x, &h[(i - 1) / 2], max)) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = x;
}

/* x into the hole at the top of h (n entries), sifted down */
static void heap_sift(struct hnsw_cand *h, size_t n, struct hnsw_cand x,
                      int max)
{
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, m = l;
		if (l >= n)
			break;
		if (l + 1 < n && before(&h[l + 1], &h[l], max))
			m = l + 1;
		if (!before(&h[m], &x, max))
			break;
		h[i] = h[m];
		i = m;
	}
	h[i] = x;
}

static struct hnsw_cand heap_pop(struct hnsw_cand *h, size_t *n, int max)
{
	struct hnsw_cand top = h[0];
	--*n;
	heap_sift(h, *n, h[*n], max);
	return top;
}

/* the result heap res (max on top) keeps the ef closest: x joins it,
 * and when it was full the farthest leaves (the top, as x is closer) */
static void res_add(struct hnsw_cand *res, size_t *nr, size_t ef,
                    struct hnsw_cand x)
{
	if (*nr < ef)
		heap_push(res, nr, x, 1);
	else
		heap_sift(res, *nr, x, 1);
}

/* ---- search ---- */

static int scratch_need(struct hnsw_scratch *sc, size_t n)
{
	if (n <= sc->cap)
		return 0;
	if (n < sc->cap * 2)
		n = sc->cap * 2;
	struct hnsw_cand *a = lora_realloc(sc->cand, n * sizeof *a);
	if (!a)
		return LORA_ENOMEM;
	sc->cand = a;
	struct hnsw_cand *b = lora_realloc(sc->res, n * sizeof *b);
	if (!b)
		return LORA_ENOMEM;
	sc->res = b;
	sc->cap = n;
	return 0;
}

static uint8_t visit_begin(struct hnsw_graph *g)
{
	if (++g->vtag == 0) {
		memset(g->vis, 0, g->cap);
		g->vtag = 1;
	}
	return g->vtag;
}

/* Best-first search of level l from the entry candidates eps (nep of
 * them): the ef closest found, sorted closest first, into sc->res; returns
 * how many. Visits go through g->vis, so no two searches may overlap. */
static size_t search_level(struct hnsw_graph *g, const float *q, float qinv,
                           const struct hnsw_cand *eps, size_t nep, size_t ef,
                           int l, struct hnsw_scratch *sc)
{
	uint8_t tag = visit_begin(g);
	size_t nc = 0, nr = 0;
	for (size_t i = 0; i < nep; i++) {
		g->vis[eps[i].slot] = tag;
		heap_push(sc->cand, &nc, eps[i], 0);
		heap_push(sc->res, &nr, eps[i], 1);
		if (nr > ef)
			heap_pop(sc->res, &nr, 1);
	}
	while (nc) {
		struct hnsw_cand c = heap_pop(sc->cand, &nc, 0);
		if (nr >= ef && cand_less(&sc->res[0], &c))
			break;
		const uint32_t *lst = list_at(g, c.slot, l);
		/* the next candidate's list, while this one is scored */
		if (nc)
			__builtin_prefetch(list_at(g, sc->cand[0].slot, l));
		uint32_t todo[2 * HNSW_M_MAX], nt = 0;
		for (uint32_t i = 1; i <= lst[0]; i++)
			if (g->vis[lst[i]] != tag) {
				g->vis[lst[i]] = tag;
				todo[nt++] = lst[i];
			}
		/* the vectors are far apart in memory: they are scored
		 * four at a time, each group asked for while the one
		 * before it is scored (no effect on any result; asking
		 * for all at once stalls on the fill buffers) */
		for (uint32_t i = 0; i < nt && i < HNSW_AHEAD; i++)
			prefetch_vec(g, todo[i]);
		for (uint32_t i = 0; i < nt; i += HNSW_GROUP) {
			uint32_t k = nt - i < HNSW_GROUP ? nt - i : HNSW_GROUP;
			float d[HNSW_GROUP];
			for (uint32_t j = i + HNSW_AHEAD;
			     j < i + HNSW_AHEAD + HNSW_GROUP && j < nt; j++)
				prefetch_vec(g, todo[j]);
			dist_many(g, q, qinv, todo + i, k, d);
			for (uint32_t j = 0; j < k; j++) {
				uint32_t s = todo[i + j];
				struct hnsw_cand x = {d[j], s, row_id(g, s)};
				if (nr >= ef && !cand_less(&x, &sc->res[0]))
					continue;
				heap_push(sc->cand, &nc, x, 0);
				res_add(sc->res, &nr, ef, x);
			}
		}
	}
	/* popping the max-heap fills the array from its end: closest
	 * first, the order qsort would give ((dist, id) is total) */
	for (size_t k = nr, m = nr; k > 0; k--) {
		struct hnsw_cand x = heap_pop(sc->res, &m, 1);
		sc->res[k - 1] = x;
	}
	return nr;
}

/* greedy descent from the entry point down to level `to` + 1 */
static struct hnsw_cand descend(struct hnsw_graph *g, const float *q,
                                float qinv, int to)
{
	uint32_t s = (uint32_t)g->entry;
	struct hnsw_cand best = {dist_q(g, q, qinv, s), s, row_id(g, s)};
	for (int l = g->top; l > to; l--) {
		for (int moved = 1; moved;) {
			moved = 0;
			const uint32_t *lst = list_at(g, best.slot, l);
			float d[HNSW_M_MAX];
			dist_many(g, q, qinv, lst + 1, lst[0], d);
			for (uint32_t i = 1; i <= lst[0]; i++) {
				uint32_t t = lst[i];
				struct hnsw_cand x = {d[i - 1], t,
				                      row_id(g, t)};
				if (cand_less(&x, &best)) {
					best = x;
					moved = 1;
				}
			}
		}
	}
	return best;
}

/* the query padded to dpad floats, and its inverse norm */
static float prep_query(const struct hnsw_graph *g, const double *q, float *qf)
{
	for (uint32_t i = 0; i < g->dpad; i++)
		qf[i] = i < g->dims ? (float)q[i] : 0;
	float n = sqrtf(g->k->dot(qf, qf, g->dpad));
	return n > 0 ? 1.0f / n : 0;
}

int hnsw_search(struct hnsw_graph *g, const double *q, size_t ef,
                struct hnsw_cand *out, size_t *n)
{
	*n = 0;
	if (g->entry < 0 || !ef)
		return 0;
	float *qf = lora_malloc(sizeof(float) * g->dpad);
	int rv = qf ? scratch_need(&g->sc, g->live + 2) : LORA_ENOMEM;
	if (!rv) {
		float qinv = prep_query(g, q, qf);
		struct hnsw_cand ep = descend(g, qf, qinv, 0);
		*n = search_level(g, qf, qinv, &ep, 1, ef, 0, &g->sc);
		memcpy(out, g->sc.res, *n * sizeof *out);
	}
	lora_free(qf);
	return rv;
}

/* ---- neighbour selection ---- */

/* The heuristic: from cands (sorted closest first to the base node), keep
 * a candidate when it is closer to the base than to every one kept. At
 * most max kept, in order, into out (slots) and outd (their distances to
 * the base). */
static uint32_t select_nb(const struct hnsw_graph *g,
                          const struct hnsw_cand *cands, size_t n, uint32_t max,
                          uint32_t *out, float *outd)
{
	uint32_t k = 0;
	for (size_t i = 0; i < n && k < max; i++) {
		int good = 1;
		const float *c = vec_of(g, cands[i].slot);
		float cinv = row_inv(g, cands[i].slot), d[HNSW_GROUP];
		for (uint32_t j = 0; j < k && good; j += HNSW_GROUP) {
			uint32_t nj = k - j < HNSW_GROUP ? k - j : HNSW_GROUP;
			dist_many(g, c, cinv, out + j, nj, d);
			for (uint32_t x = 0; x < nj; x++)
				if (d[x] < cands[i].dist)
					good = 0;
		}
		if (good) {
			outd[k] = cands[i].dist;
			out[k++] = cands[i].slot;
		}
	}
	return k;
}

/* Re-selects slot s's list at level l from its entries plus extra (n
 * slots, not already in the list, not s). */
static int reselect(struct hnsw_graph *g, uint32_t s, int l,
                    const uint32_t *extra, size_t n, struct hnsw_cand *buf,
                    int fill)
{
	uint32_t *lst = list_at(g, s, l);
	float *dl = dist_at(g, s, l);
	size_t k = 0;
	for (uint32_t i = 1; i <= lst[0]; i++, k++)
		buf[k] = (struct hnsw_cand){dl[i], lst[i], g->ids[lst[i]]};
	for (size_t i = 0; i < n; i++, k++)
		buf[k] = (struct hnsw_cand){dist_ss(g, s, extra[i]), extra[i],
		                            g->ids[extra[i]]};
	qsort(buf, k, sizeof *buf, cand_cmp);
	lst[0] = select_nb(g, buf, k, list_max(g, l), lst + 1, dl + 1);
	/* a repair keeps the list full with the closest left out: a node
	 * that lost neighbours should not also lose its reach */
	for (size_t i = 0; fill && i < k && lst[0] < list_max(g, l); i++) {
		int in = 0;
		for (uint32_t j = 1; j <= lst[0] && !in; j++)
			in = lst[j] == buf[i].slot;
		if (!in) {
			lst[++lst[0]] = buf[i].slot;
			dl[lst[0]] = buf[i].dist;
		}
	}
	return mark_dirty(g, s);
}

/* Adds a link s -> t on level l, dt = dist_ss(s, t) (see the top of the
 * file for a full list). The list's distances are cached beside it, so
 * finding its farthest entry computes none. */
static int link_to(struct hnsw_graph *g, uint32_t s, uint32_t t, int l,
                   float dt)
{
	uint32_t *lst = list_at(g, s, l);
	float *dl = dist_at(g, s, l);
	for (uint32_t i = 1; i <= lst[0]; i++)
		if (lst[i] == t)
			return 0;
	if (lst[0] < list_max(g, l)) {
		lst[++lst[0]] = t;
		dl[lst[0]] = dt;
		return mark_dirty(g, s);
	}
	/* full: t replaces the farthest entry when it is closer (the
	 * heuristic's pairwise distances here would cost m0^2 per link) */
	float worst = -INFINITY;
	uint32_t wi = 0;
	for (uint32_t i = 1; i <= lst[0]; i++) {
		float d = dl[i];
		if (d > worst ||
		    (d == worst && g->ids[lst[i]] > g->ids[lst[wi]])) {
			worst = d;
			wi = i;
		}
	}
	if (!wi || !(dt < worst))
		return 0;
	lst[wi] = t;
	dl[wi] = dt;
	return mark_dirty(g, s);
}

/* ---- insertion ---- */

static int connect_levels(struct hnsw_graph *g, uint32_t s, int level,
                          struct hnsw_scratch *sc)
{
	const float *q = vec_of(g, s);
	float qinv = g->inv[s];
	struct hnsw_cand ep = descend(g, q, qinv, level);
	struct hnsw_cand *eps = &ep;
	size_t nep = 1;
	int rv = 0;
	struct hnsw_cand *keep =
	    lora_malloc(sizeof *keep * ((size_t)g->efc + g->m0 + 2));
	if (!keep)
		return LORA_ENOMEM;
	for (int l = level < g->top ? level : g->top; !rv && l >= 0; l--) {
		size_t n = search_level(g, q, qinv, eps, nep, g->efc, l, sc);
		memcpy(keep, sc->res, n * sizeof *keep);
		uint32_t *lst = list_at(g, s, l);
		float *dl = dist_at(g, s, l);
		/* m on every level, as hnswlib: level 0's room for 2m is
		 * for the links back (dist_q is symmetric: the distance
		 * from s is the distance to s) */
		lst[0] = select_nb(g, keep, n, g->m, lst + 1, dl + 1);
		for (uint32_t i = 1; !rv && i <= lst[0]; i++)
			rv = link_to(g, lst[i], s, l, dl[i]);
		eps = keep;
		nep = n;
	}
	lora_free(keep);
	return rv;
}

int hnsw_insert(struct hnsw_graph *g, uint64_t id, const float *vec)
{
	LORA_ASSERT(map_get(g, id) < 0);
	if (g->metric == HNSW_COSINE) {
		float n = 0;
		for (uint32_t i = 0; i < g->dims; i++)
			n += vec[i] * vec[i];
		if (!(n > 0))
			return 0;
	}
	int level = hnsw_level_of(g, id), rv;
	uint32_t s;
	if ((rv = slot_new(g, id, level, &s)))
		return rv;
	slot_set_vec(g, s, vec);
	if ((rv = mark_dirty(g, s)))
		return rv;
	if (g->entry < 0) {
		g->entry = s;
		g->top = level;
		return 0;
	}
	rv = scratch_need(&g->sc, g->live + 2);
	if (!rv)
		rv = connect_levels(g, s, level, &g->sc);
	if (!rv && level > g->top) {
		g->entry = s;
		g->top = level;
	}
	return rv;
}

/* ---- removal ---- */

static int note_removed(struct hnsw_graph *g, uint64_t id)
{
	if (grow((void **)&g->rids, &g->capr, g->nrids + 1, sizeof(uint64_t)))
		return LORA_ENOMEM;
	g->rids[g->nrids++] = id;
	return 0;
}

/* the removed (gone[t] = 1) neighbours' live neighbours at level l that
 * s lacks, appended to extra (deduplicated with the visit tags) */
static size_t repair_extra(struct hnsw_graph *g, uint32_t s, int l,
                           const uint32_t *dead, size_t nd, const uint8_t *gone,
                           uint32_t *extra)
{
	uint8_t tag = visit_begin(g);
	g->vis[s] = tag;
	const uint32_t *lst = list_at(g, s, l);
	for (uint32_t i = 1; i <= lst[0]; i++)
		g->vis[lst[i]] = tag;
	size_t k = 0;
	for (size_t d = 0; d < nd; d++) {
		if (g->lvl[dead[d]] < l)
			continue;
		const uint32_t *dl = list_at(g, dead[d], l);
		for (uint32_t i = 1; i <= dl[0]; i++) {
			uint32_t t = dl[i];
			if (gone[t] || g->vis[t] == tag)
				continue;
			g->vis[t] = tag;
			extra[k++] = t;
		}
	}
	return k;
}

/* Drops links to removed slots from s's lists; those that lost some are
 * re-selected with the removed nodes' neighbours. */
static int repair_slot(struct hnsw_graph *g, uint32_t s, const uint8_t *gone,
                       uint32_t *dead, uint32_t *extra, struct hnsw_cand *buf)
{
	for (int l = 0; l <= g->lvl[s]; l++) {
		uint32_t *lst = list_at(g, s, l), w = 1;
		float *dl = dist_at(g, s, l);
		size_t nd = 0;
		for (uint32_t i = 1; i <= lst[0]; i++) {
			if (gone[lst[i]]) {
				dead[nd++] = lst[i];
			} else {
				dl[w] = dl[i];
				lst[w++] = lst[i];
			}
		}
		if (!nd)
			continue;
		lst[0] = w - 1;
		size_t k = repair_extra(g, s, l, dead, nd, gone, extra);
		int rv = reselect(g, s, l, extra, k, buf, 1);
		if (rv)
			return rv;
	}
	return 0;
}

/* entry point: the highest level, then the smallest id */
static void pick_entry(struct hnsw_graph *g)
{
	g->entry = -1;
	g->top = 0;
	for (size_t s = 0; s < g->nslot; s++) {
		if (g->lvl[s] == HNSW_FREE_LEVEL)
			continue;
		if (g->entry < 0 || g->lvl[s] > g->top ||
		    (g->lvl[s] == g->top && g->ids[s] < g->ids[g->entry])) {
			g->entry = (int64_t)s;
			g->top = g->lvl[s];
		}
	}
}

static void slot_free(struct hnsw_graph *g, uint32_t s)
{
	map_del(g, g->ids[s]);
	lora_free(g->nb[s]);
	g->nb[s] = NULL;
	g->lvl[s] = HNSW_FREE_LEVEL;
	g->dirty[s] = 0;
	g->freel[g->nfree++] = s;
	g->live--;
}

/* live slots in ascending id order (repairs happen in that order) */
static uint32_t *slots_by_id(struct hnsw_graph *g, const uint8_t *gone,
                             size_t *n)
{
	struct hnsw_cand *c = lora_malloc(sizeof *c * (g->nslot + 1));
	uint32_t *out = lora_malloc(sizeof *out * (g->nslot + 1));
	size_t k = 0;
	if (!c || !out) {
		lora_free(c);
		lora_free(out);
		return NULL;
	}
	for (size_t s = 0; s < g->nslot; s++)
		if (g->lvl[s] != HNSW_FREE_LEVEL && !gone[s])
			c[k++] = (struct hnsw_cand){0, (uint32_t)s, g->ids[s]};
	qsort(c, k, sizeof *c, cand_cmp);
	for (size_t i = 0; i < k; i++)
		out[i] = c[i].slot;
	lora_free(c);
	*n = k;
	return out;
}

int hnsw_remove(struct hnsw_graph *g, const uint64_t *ids, size_t n)
{
	uint8_t *gone = lora_calloc(g->nslot + 1, 1);
	size_t ngone = 0, nlive = 0, lmax = (size_t)g->m0 * g->m0 + g->m0 + 1;
	uint32_t *dead = lora_malloc(sizeof(uint32_t) * (g->m0 + 1));
	uint32_t *extra = lora_malloc(sizeof(uint32_t) * lmax);
	struct hnsw_cand *buf = lora_malloc(sizeof *buf * (lmax + g->m0));
	uint32_t *order = NULL;
	int rv = gone && dead && extra && buf ? 0 : LORA_ENOMEM;
	for (size_t i = 0; !rv && i < n; i++) {
		int64_t s = map_get(g, ids[i]);
		if (s >= 0 && !gone[s]) {
			gone[s] = 1;
			ngone++;
			rv = note_removed(g, ids[i]);
		}
	}
	if (!rv && ngone)
		rv = (order = slots_by_id(g, gone, &nlive)) ? 0 : LORA_ENOMEM;
	for (size_t i = 0; !rv && ngone && i < nlive; i++)
		rv = repair_slot(g, order[i], gone, dead, extra, buf);
	for (size_t s = 0; !rv && ngone && s < g->nslot; s++)
		if (gone[s])
			slot_free(g, (uint32_t)s);
	if (!rv && ngone &&
	    (g->entry < 0 || g->lvl[g->entry] == HNSW_FREE_LEVEL))
		pick_entry(g);
	lora_free(order);
	lora_free(gone);
	lora_free(dead);
	lora_free(extra);
	lora_free(buf);
	return rv;
}

/* ---- persistence ----
 *
 * value: u8 level, then per level 0..level: varint count, varint ids
 */

static int encode(const struct hnsw_graph *g, uint32_t s, struct lora_buf *b)
{
	lora_buf_reset(b);
	lora_buf_putc(b, (char)g->lvl[s]);
	for (int l = 0; l <= g->lvl[s]; l++) {
		const uint32_t *lst = list_at(g, s, l);
		sto_put_uvarint(b, lst[0]);
		for (uint32_t i = 1; i <= lst[0]; i++)
			sto_put_uvarint(b, g->ids[lst[i]]);
	}
	return lora_buf_error(b);
}

static int id_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

int hnsw_flush(struct hnsw_graph *g, hnsw_put_fn put, hnsw_del_fn del,
               void *arg)
{
	int rv = 0;
	if (g->nrids)
		qsort(g->rids, g->nrids, sizeof(uint64_t), id_cmp);
	for (size_t i = 0; !rv && i < g->nrids; i++)
		if (!i || g->rids[i] != g->rids[i - 1])
			rv = del(arg, g->rids[i]);
	if (g->ndids)
		qsort(g->dids, g->ndids, sizeof(uint64_t), id_cmp);
	struct lora_buf b = {0};
	for (size_t i = 0; !rv && i < g->ndids; i++) {
		int64_t s = map_get(g, g->dids[i]);
		if (s < 0 || !g->dirty[s])
			continue;
		g->dirty[s] = 0;
		rv = encode(g, (uint32_t)s, &b);
		if (!rv)
			rv = put(arg, g->dids[i], (const uint8_t *)b.data,
			         b.len);
	}
	lora_buf_free(&b);
	g->ndids = g->nrids = 0;
	return rv;
}

int hnsw_load_node(struct hnsw_graph *g, uint64_t id, const float *vec,
                   const uint8_t *val, size_t len)
{
	if (!g->raw && g->nslot)
		return LORA_EINTERNAL; /* loading starts on an empty graph */
	if (!g->raw) {
		g->raw = lora_calloc(g->cap ? g->cap : 1, sizeof(void *));
		g->rawlen = lora_calloc(g->cap ? g->cap : 1, sizeof(size_t));
		if (!g->raw || !g->rawlen)
			return LORA_ENOMEM;
	}
	if (!len || val[0] > HNSW_LEVEL_MAX || map_get(g, id) >= 0)
		return LORA_ECORRUPT;
	uint32_t s;
	int rv = slot_new(g, id, val[0], &s);
	if (rv)
		return rv;
	slot_set_vec(g, s, vec);
	g->raw[s] = lora_malloc(len);
	if (!g->raw[s])
		return LORA_ENOMEM;
	memcpy(g->raw[s], val, len);
	g->rawlen[s] = len;
	return 0;
}

static int decode(struct hnsw_graph *g, uint32_t s)
{
	const uint8_t *p = g->raw[s] + 1, *end = g->raw[s] + g->rawlen[s];
	for (int l = 0; l <= g->lvl[s]; l++) {
		uint64_t n, id;
		size_t k = sto_get_uvarint(p, end, &n);
		if (!k || n > list_max(g, l))
			return LORA_ECORRUPT;
		p += k;
		uint32_t *lst = list_at(g, s, l);
		float *dl = dist_at(g, s, l);
		lst[0] = (uint32_t)n;
		for (uint64_t i = 1; i <= n; i++) {
			int64_t t;
			if (!(k = sto_get_uvarint(p, end, &id)) ||
			    (t = map_get(g, id)) < 0 || g->lvl[t] < l)
				return LORA_ECORRUPT;
			p += k;
			lst[i] = (uint32_t)t;
			dl[i] = dist_ss(g, s, (uint32_t)t);
		}
	}
	return p == end ? 0 : LORA_ECORRUPT;
}

int hnsw_load_end(struct hnsw_graph *g, uint64_t entry, int has_entry)
{
	int rv = 0;
	for (size_t s = 0; !rv && s < g->nslot; s++)
		rv = decode(g, (uint32_t)s);
	for (size_t s = 0; g->raw && s < g->nslot; s++)
		lora_free(g->raw[s]);
	lora_free(g->raw);
	lora_free(g->rawlen);
	g->raw = NULL;
	g->rawlen = NULL;
	if (rv)
		return rv;
	int64_t e = has_entry ? map_get(g, entry) : -1;
	if ((e < 0) != (g->live == 0))
		return LORA_ECORRUPT;
	g->entry = e;
	g->top = e >= 0 ? g->lvl[e] : 0;
	return 0;
}
