/* import_ids.c - the :ID spaces of the bulk import: which node each :ID
 * value names, so relationship rows can find their endpoints.
 *
 * One open-addressing table per group, keyed by 64 bits kept inline in
 * the slot: an integer id is its own key, a string id is keyed by a hash
 * of its bytes (kept in an arena, compared on a key match). A lookup is
 * then one cache miss in the common case, which matters: resolving the
 * two endpoints of a million relationships through the token table
 * (sto_tokens, a pointer per name) took a quarter of the whole import.
 *
 * Integer ids that count up by one with the nodes (0, 1, 2, ... or any
 * start: the row numbers many exports use) need no table at all: while
 * that holds, a group is the range [dense_key, dense_key + n) and a lookup
 * is a subtraction. The first id that breaks the pattern moves the range
 * into the table.
 */
#include <string.h>

#include "importInt.h"

#define NO_NODE UINT64_MAX

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t imp_ids_hash(const char *p, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n, w;
	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		h = mix(h ^ w);
	}
	w = 0;
	memcpy(&w, p, n);
	return mix(h ^ w ^ ((uint64_t)n << 59));
}

static int str_eq(const struct imp_group *g, uint64_t soff, const char *s,
                  size_t n)
{
	uint32_t len;
	memcpy(&len, g->arena + soff, 4);
	return len == n && !memcmp(g->arena + soff + 4, s, n);
}

/* The slot holding key (+ string s when not NULL), or the empty slot where
 * it would go. */
static struct imp_slot *slot_of(const struct imp_group *g, uint64_t key,
                                const char *s, size_t n)
{
	uint64_t mask = g->nslots - 1;
	for (uint64_t i = mix(key) & mask;; i = (i + 1) & mask) {
		struct imp_slot *sl = &g->slots[i];
		if (sl->node == NO_NODE ||
		    (sl->key == key && (!s || str_eq(g, sl->soff, s, n))))
			return sl;
	}
}

int imp_ids_find(const struct imp_group *g, uint64_t key, const char *s,
                 size_t n, uint64_t *node)
{
	if (g->dense && !s) {
		if (key - g->dense_key >= g->n)
			return LORA_ENOTFOUND;
		*node = g->dense_node + (key - g->dense_key);
		return 0;
	}
	if (!g->nslots)
		return LORA_ENOTFOUND;
	const struct imp_slot *sl = slot_of(g, key, s, n);
	if (sl->node == NO_NODE)
		return LORA_ENOTFOUND;
	*node = sl->node;
	return 0;
}

static int grow(struct imp_group *g)
{
	uint64_t ns = g->nslots ? g->nslots * 2 : 1024;
	struct imp_slot *old = g->slots, *v = lora_malloc(ns * sizeof(*v));
	if (!v)
		return LORA_ENOMEM;
	for (uint64_t i = 0; i < ns; i++)
		v[i].node = NO_NODE;
	uint64_t on = g->nslots;
	g->slots = v;
	g->nslots = ns;
	for (uint64_t i = 0; i < on; i++)
		if (old[i].node != NO_NODE)
			*slot_of(g, old[i].key, NULL, 0) = old[i];
	lora_free(old);
	return 0;
}

static int arena_add(struct imp_group *g, const char *s, size_t n,
                     uint64_t *off)
{
	if (g->alen + 4 + n > g->acap) {
		uint64_t nc = g->acap ? g->acap * 2 : 65536;
		while (nc < g->alen + 4 + n)
			nc *= 2;
		char *a = lora_realloc(g->arena, nc);
		if (!a)
			return LORA_ENOMEM;
		g->arena = a;
		g->acap = nc;
	}
	uint32_t len = (uint32_t)n;
	memcpy(g->arena + g->alen, &len, 4);
	memcpy(g->arena + g->alen + 4, s, n);
	*off = g->alen;
	g->alen += 4 + n;
	return 0;
}

/* Moves a dense range into the table (its ids are new there). */
static int undense(struct imp_group *g)
{
	uint64_t n = g->n;
	g->dense = 0;
	g->n = 0;
	for (uint64_t i = 0; i < n; i++) {
		if ((g->n + 1) * 2 > g->nslots && grow(g))
			return LORA_ENOMEM;
		*slot_of(g, g->dense_key + i, NULL, 0) =
		    (struct imp_slot){g->dense_key + i, g->dense_node + i, 0};
		g->n++;
	}
	return 0;
}

int imp_ids_add(struct imp_group *g, uint64_t key, const char *s, size_t n,
                uint64_t node)
{
	if (g->n >= STO_IMPORT_IDS_MAX)
		return LORA_ELIMIT;
	if (!s && g->n == 0 && !g->nslots) {
		g->dense = 1;
		g->dense_key = key;
		g->dense_node = node;
	}
	if (g->dense && !s && key == g->dense_key + g->n &&
	    node == g->dense_node + g->n) {
		g->n++;
		return 0;
	}
	if (g->dense && undense(g))
		return LORA_ENOMEM;
	if ((g->n + 1) * 2 > g->nslots && grow(g))
		return LORA_ENOMEM;
	struct imp_slot *sl = slot_of(g, key, s, n);
	if (sl->node != NO_NODE)
		return LORA_EEXIST;
	uint64_t off = 0;
	if (s && arena_add(g, s, n, &off))
		return LORA_ENOMEM;
	*sl = (struct imp_slot){key, node, off};
	g->n++;
	return 0;
}

void imp_ids_free(struct imp_group *g)
{
	lora_free(g->slots);
	lora_free(g->arena);
	g->slots = NULL;
	g->arena = NULL;
	g->nslots = g->n = g->alen = g->acap = 0;
	g->dense = 0;
}
