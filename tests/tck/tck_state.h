/*
 * tck_state.h - graph snapshots for the TCK side-effect steps: sets of node
 * ids, edge ids, labels in use and property entries (owner, key, value),
 * read through a storage view, and their differences.
 *
 * Ownership: a tck_state owns its strings; free with tck_state_free.
 */
#ifndef TCK_STATE_H
#define TCK_STATE_H

#include <stddef.h>

#include "storage.h"

struct tck_strset {
	char **items; /* sorted, unique after tck_state_read */
	size_t n;
};

struct tck_state {
	struct tck_strset nodes;
	struct tck_strset edges;
	struct tck_strset labels;
	struct tck_strset props;
};

enum tck_fx {
	TCK_FX_NODES_ADDED,
	TCK_FX_NODES_REMOVED,
	TCK_FX_RELS_ADDED,
	TCK_FX_RELS_REMOVED,
	TCK_FX_LABELS_ADDED,
	TCK_FX_LABELS_REMOVED,
	TCK_FX_PROPS_ADDED,
	TCK_FX_PROPS_REMOVED,
	TCK_FX_COUNT
};

/* The TCK names: "+nodes", "-nodes", ..., indexed by enum tck_fx. */
extern const char *const tck_effect_names[TCK_FX_COUNT];

struct tck_effects {
	long v[TCK_FX_COUNT];
};

/* Reads the whole graph of store into st (zeroed first). */
int tck_state_read(struct sto_store *store, struct tck_state *st);
void tck_state_free(struct tck_state *st);

/* What changed from before to after. */
void tck_state_diff(const struct tck_state *before,
                    const struct tck_state *after, struct tck_effects *fx);

/*
 * Empties the graph of store between scenarios: one batch deleting every
 * node (detached, so their edges go too) and dropping every index, then a
 * check that no node, edge or index is left. Ids are not reused, which no
 * scenario can observe.
 */
int tck_state_wipe(struct sto_store *store, char *errmsg);

#endif /* TCK_STATE_H */
