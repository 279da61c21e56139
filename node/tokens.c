/* tokens.c - the table of issued bearer tokens (tokens.h). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "lora.h"
#include "tokens.h"

struct token_slot {
	uint8_t id[NODE_AUTH_TOKEN_BYTES];
	char user[NODE_USER_BYTES_MAX + 1];
	uint64_t expires_ms; /* 0: never used; past: expired */
	/* digest of the user's password hash when issued (auth.c) */
	uint8_t pw[NODE_TOKENS_PW_BYTES];
};

struct node_tokens {
	struct token_slot *slot; /* NODE_AUTH_TOKENS_MAX */
	uint32_t used;           /* slots with expires_ms != 0 */
	uint32_t used_rebuilt;   /* used right after the last rebuild */
	uint64_t probes;
};

int node_tokens_new(struct node_tokens **out)
{
	struct node_tokens *t = lora_calloc(1, sizeof *t);
	if (t)
		t->slot = lora_calloc(NODE_AUTH_TOKENS_MAX, sizeof *t->slot);
	if (t == NULL || t->slot == NULL) {
		lora_free(t);
		return LORA_ENOMEM;
	}
	*out = t;
	return 0;
}

void node_tokens_free(struct node_tokens *t)
{
	if (t == NULL)
		return;
	sodium_memzero(t->slot, NODE_AUTH_TOKENS_MAX * sizeof *t->slot);
	lora_free(t->slot);
	lora_free(t);
}

static uint32_t home(const uint8_t *id)
{
	return lora_get_be32(id) % NODE_AUTH_TOKENS_MAX;
}

/* The first slot from id's home that is free at now (never used or
 * expired), or NULL when all are live. */
static struct token_slot *free_slot(struct node_tokens *t, const uint8_t *id,
                                    uint64_t now)
{
	uint32_t h = home(id);
	for (uint32_t i = 0; i < NODE_AUTH_TOKENS_MAX; i++) {
		struct token_slot *s = &t->slot[(h + i) % NODE_AUTH_TOKENS_MAX];
		if (s->expires_ms <= now)
			return s;
	}
	return NULL;
}

/* Moves the live tokens into a cleared table. Without memory for the
 * copy the table stays as it is (lookups stay right, only longer). */
static void rebuild(struct node_tokens *t, uint64_t now)
{
	struct token_slot *live =
	    lora_malloc(NODE_AUTH_TOKENS_MAX * sizeof *live);
	if (live == NULL)
		return;
	uint32_t n = 0;
	for (uint32_t i = 0; i < NODE_AUTH_TOKENS_MAX; i++)
		if (t->slot[i].expires_ms > now)
			live[n++] = t->slot[i];
	sodium_memzero(t->slot, NODE_AUTH_TOKENS_MAX * sizeof *t->slot);
	for (uint32_t i = 0; i < n; i++)
		*free_slot(t, live[i].id, now) = live[i];
	t->used = n;
	sodium_memzero(live, NODE_AUTH_TOKENS_MAX * sizeof *live);
	lora_free(live);
}

int node_tokens_put(struct node_tokens *t, const uint8_t *id, const char *user,
                    const uint8_t *pw, uint64_t expires_ms, uint64_t now)
{
	if (t->used >= NODE_AUTH_TOKENS_MAX / 4 * 3 &&
	    t->used - t->used_rebuilt >= NODE_AUTH_TOKENS_MAX / 8) {
		rebuild(t, now);
		t->used_rebuilt = t->used;
	}
	struct token_slot *s = free_slot(t, id, now);
	if (s == NULL)
		return LORA_ELIMIT;
	if (s->expires_ms == 0)
		t->used++;
	memcpy(s->id, id, NODE_AUTH_TOKEN_BYTES);
	memcpy(s->pw, pw, NODE_TOKENS_PW_BYTES);
	snprintf(s->user, sizeof s->user, "%s", user);
	s->expires_ms = expires_ms;
	return 0;
}

int node_tokens_get(struct node_tokens *t, const uint8_t *id, uint64_t now,
                    char *user, uint8_t *pw)
{
	uint32_t h = home(id);
	for (uint32_t i = 0; i < NODE_AUTH_TOKENS_MAX; i++) {
		struct token_slot *s = &t->slot[(h + i) % NODE_AUTH_TOKENS_MAX];
		t->probes++;
		if (s->expires_ms == 0)
			return 0; /* never used: the probe ends */
		if (s->expires_ms > now &&
		    sodium_memcmp(s->id, id, NODE_AUTH_TOKEN_BYTES) == 0) {
			memcpy(user, s->user, sizeof s->user);
			memcpy(pw, s->pw, NODE_TOKENS_PW_BYTES);
			return 1;
		}
	}
	return 0;
}

void node_tokens_user_cap(struct node_tokens *t, const char *user, uint64_t now,
                          uint32_t max)
{
	struct token_slot *oldest = NULL;
	uint32_t live = 0;
	for (uint32_t i = 0; i < NODE_AUTH_TOKENS_MAX; i++) {
		struct token_slot *s = &t->slot[i];
		if (s->expires_ms <= now || strcmp(s->user, user) != 0)
			continue;
		live++;
		if (oldest == NULL || s->expires_ms < oldest->expires_ms)
			oldest = s;
	}
	if (live >= max && oldest != NULL) {
		oldest->expires_ms = 1; /* expired, still passed over */
		sodium_memzero(oldest->id, sizeof oldest->id);
	}
}

uint64_t node_tokens_probes(const struct node_tokens *t)
{
	return t->probes;
}
