/*
 * tokens.h - the bearer tokens a node issued (POST /auth/token): an
 * open-addressed table of NODE_AUTH_TOKENS_MAX slots, probed linearly from
 * a slot the token's first four bytes pick. A lookup ends at a slot that
 * was never used, so a slot whose token expired keeps a non-zero expiry
 * (the probes of other tokens pass over it). Once three quarters of the
 * slots have been used, and an eighth of them since the last time, an
 * insert moves the live tokens into a cleared table (so an insert costs
 * at most 8 slot moves on average): without that, after NODE_AUTH_TOKENS_MAX
 * tokens over the node's life, every lookup of an unknown token (any
 * client may send one) walked all the slots under the auth lock.
 * Not thread-safe: auth.c holds its mutex around every call.
 */
#ifndef LORA_NODE_TOKENS_H
#define LORA_NODE_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"

#define NODE_TOKENS_PW_BYTES 16 /* the password digest a token keeps */

struct node_tokens;

/* 0 with *out, or LORA_ENOMEM. */
int node_tokens_new(struct node_tokens **out);
/* Wipes every token and frees t (NULL: nothing). */
void node_tokens_free(struct node_tokens *t);

/* Stores token id for user, with pw, live until expires_ms (> now);
 * LORA_ELIMIT when NODE_AUTH_TOKENS_MAX tokens are live. */
int node_tokens_put(struct node_tokens *t, const uint8_t *id, const char *user,
                    const uint8_t *pw, uint64_t expires_ms, uint64_t now);
/* 1 with user (NODE_USER_BYTES_MAX + 1 bytes) and pw when id is live at
 * now; 0 otherwise. Compares ids in constant time. */
int node_tokens_get(struct node_tokens *t, const uint8_t *id, uint64_t now,
                    char *user, uint8_t *pw);
/* Ends user's oldest live token when user holds `max` live ones. */
void node_tokens_user_cap(struct node_tokens *t, const char *user, uint64_t now,
                          uint32_t max);
/* Slots node_tokens_get has looked at, over t's life (tests). */
uint64_t node_tokens_probes(const struct node_tokens *t);

#endif /* LORA_NODE_TOKENS_H */
