/*
 * applyInt.h - private to apply.c / apply_index.c: the state of one
 * sto_apply call.
 *
 * Every mutation of a batch writes into one RocksDB WriteBatchWithIndex,
 * and every read during validation goes through that batch first, so a
 * mutation sees the effects of the earlier ones in the same batch. Nothing
 * reaches the database until the whole batch has been validated.
 */
#ifndef LORA_STO_APPLY_INT_H
#define LORA_STO_APPLY_INT_H

#include "stoInt.h"

struct apply_ctx {
	struct sto_store *s;
	/* bulk reads (a vector index build step, apply_bulk_begin/_end):
	 * apply_get and apply_iter read with s->ro_bulk, point reads
	 * through one iterator per column family (no row cache) */
	int bulk;
	rocksdb_iterator_t *bulk_it[STO_CF_COUNT];
	rocksdb_writebatch_wi_t *wb;
	char *errmsg;
	/* apply_req.c: the store's req_prune_next once this batch commits
	 * (0: unchanged) */
	uint64_t req_prune_next;
	/* Tokens this batch introduces: token = s->tok[k].n + local id. */
	struct sto_tokens pend[STO_TOK_KINDS];
	/* Catalogue as the batch changes it (a copy, made on first DDL). */
	struct sto_catalog cat;
	int cat_copied;
	/* Count changes, written once at the end. */
	int64_t *label_delta, *type_delta;
	size_t label_delta_n, type_delta_n;
	int64_t nodes_delta, edges_delta;
	/* Ids at or above these did not exist before the batch. */
	uint64_t state_next_node, state_next_edge;
	uint64_t next_node, next_edge;
	struct lora_buf kbuf, vbuf; /* scratch */
	/* Adjacency chunks the batch touched (apply_adj.c), decoded and
	 * changed in memory, written once by adj_flush; allocated on first
	 * use; adj_flush encodes them straight into wonly. */
	struct adj_stage *adj;
	size_t mut; /* the mutation being applied: its place in the batch */
	/* Writes to keys this batch never reads back skip the indexed batch
	 * (whose every insert costs a skip-list search) and are appended to
	 * the write at commit: (u8 del, u8 cf, be32 klen, be32 vlen, key,
	 * value) records, in order. Label-index keys qualify when the batch
	 * creates no index. */
	struct lora_buf wonly;
	int wonly_label;
	/* Node (edge) records and vectors are write-only in a batch that
	 * only creates, with ascending ids and no repeated property: nothing
	 * in it reads them back (see batch_wonly in apply.c). Not node
	 * records when a created node has an HNSW-indexed label: the graph
	 * upkeep (hnsw_store.c) reads them back. */
	int wonly_nodes, wonly_edges;
	/* Relationships deleted with their node (DETACH DELETE), as host
	 * uint64: the vector index graphs drop them (hnsw_store.c). */
	struct lora_buf detached;
	/* Meta values this batch writes, for the cache once it committed:
	 * (u8 klen, key[5], be64 value) records. */
	struct lora_buf meta_new;
	/* Node ids that exist once this batch is written (created, or found
	 * by an edge-end read), as uint64_t, for s->live after the commit;
	 * live_drop: the batch deletes a node, nothing is added. */
	struct lora_buf live_new;
	int live_drop;
};

/* Operating errors abort the whole apply without writing anything;
 * everything else rejects the batch. */
static inline int apply_is_fatal(int rv)
{
	return rv == LORA_ENOMEM || rv == LORA_EIO || rv == LORA_ENOSPC ||
	       rv == LORA_ECORRUPT || rv == LORA_EINTERNAL;
}

/* apply_constraint.c: property existence and type constraints. A
 * constraint being created: every node of its label must satisfy it. A
 * batch: every node it touched must satisfy every constraint of its
 * labels (checked once, after all its mutations). LORA_ECONSTRAINT with
 * the node, label, property and constraint named. */
int apply_constraint_backfill(struct apply_ctx *c, const Lora__CreateIndex *m);
/* apply_index.c: the ids of every node with label (as the batch left
 * them), appended to ids as be64. */
int apply_label_nodes(struct apply_ctx *c, uint32_t label,
                      struct lora_buf *ids);
/* At most max node ids with label `label` from id `from` on, ascending,
 * into ids; *n receives how many. */
int apply_label_nodes_from(struct apply_ctx *c, uint32_t label, uint64_t from,
                           uint64_t *ids, size_t max, size_t *n);
/* Walks the relationships from id `from` on, ascending: at most max ids
 * of type `type` into ids (*n of them), over at most scan_max records of
 * any type. *next receives the id after the last record walked (from when
 * none), *end 1 when the walk reached the last relationship. */
int apply_type_edges_from(struct apply_ctx *c, uint32_t type, uint64_t from,
                          uint64_t *ids, size_t max, size_t scan_max, size_t *n,
                          uint64_t *next, int *end);
int apply_constraints_check(struct apply_ctx *c,
                            const Lora__MutationBatch *batch);
/* 1 when the catalogue (as the batch left it) has a node constraint. */
int apply_has_constraints(struct apply_ctx *c);

/* apply.c */
int apply_get(struct apply_ctx *c, int cf, const void *key, size_t klen,
              char **val, size_t *vlen);
/* Bulk mode on / off (see struct apply_ctx); _end frees its iterators. */
void apply_bulk_begin(struct apply_ctx *c);
void apply_bulk_end(struct apply_ctx *c);
/* Reads only the staged batch: for keys that cannot be in the database. */
int apply_get_batch(struct apply_ctx *c, int cf, const void *key, size_t klen,
                    char **val, size_t *vlen);
int apply_put(struct apply_ctx *c, int cf, const void *key, size_t klen,
              const void *val, size_t vlen);
void apply_del(struct apply_ctx *c, int cf, const void *key, size_t klen);

/* apply_user.c: the system keyspace (users, cluster secret). */
int apply_user_change(struct apply_ctx *c, const Lora__UserChange *m);
int apply_auth_bootstrap(struct apply_ctx *c, const Lora__AuthBootstrap *m);

/* apply_req.c: records the batch's request ids for entry `index` and
 * drops those that left the window. */
int apply_requests(struct apply_ctx *c, uint64_t index,
                   const Lora__MutationBatch *b);
/* Appends a write-only put (del = 0) or delete (del = 1). */
int apply_wonly(struct apply_ctx *c, int del, int cf, const void *key,
                size_t klen, const void *val, size_t vlen);
/* Iterator over batch + database for column family cf: destroy with
 * rocksdb_iter_destroy. */
rocksdb_iterator_t *apply_iter(struct apply_ctx *c, int cf);
int apply_iter_err(rocksdb_iterator_t *it);
int apply_intern(struct apply_ctx *c, int kind, const char *name,
                 uint32_t *tok);
/* Token of name without creating one: -1 when unknown. */
int64_t apply_tok_find(struct apply_ctx *c, int kind, const char *name);
const char *apply_tok_name(struct apply_ctx *c, int kind, uint32_t tok);
/* Loads node (edge=0) or edge record id into r; *found = 0 when absent. */
int apply_load(struct apply_ctx *c, int edge, uint64_t id, struct sto_rec *r,
               int *found);
/* The number of relationships of type `type` as the batch left them. */
int apply_type_count(struct apply_ctx *c, uint32_t type, uint64_t *n);
int apply_store(struct apply_ctx *c, int edge, uint64_t id,
                const struct sto_rec *r);

/* apply_adj.c: the adjacency chunks of (node, dir), dir STO_K_OUT or
 * STO_K_IN. */
/* Appends an entry to the last chunk (or a new one); *chunk receives the
 * chunk number, which the edge record keeps; *had = 1 when (node, dir)
 * already had entries, which proves the node exists (a node is deleted
 * only once its lists are empty, and an empty list has no key). c->mut
 * must be the mutation whose relationship is added: its hint from
 * adj_prefetch saves the search of the stage. */
int adj_add(struct apply_ctx *c, uint64_t node, char dir,
            const struct sto_adj_ent *e, uint32_t *chunk, int *had);
/* Removes edge's entry from chunk `chunk`; the last entry of the list
 * moves into the gap and its edge record learns its new chunk. */
int adj_remove(struct apply_ctx *c, uint64_t node, char dir, uint32_t chunk,
               uint64_t edge);
/* Appends the be64 edge ids of every entry of (node, dir) to ids. */
int adj_list(struct apply_ctx *c, uint64_t node, char dir,
             struct lora_buf *ids);
/* *yes = 1 when node has at least one edge (either direction). */
int adj_any(struct apply_ctx *c, uint64_t node, int *yes);
/* Stages chunk 0 of both ends of every new edge of batch b with one
 * MultiGet, before the batch is applied: the reads are the same as one by
 * one, their fixed cost (super-version, thread-local context) is paid
 * once. It sizes the stage for them and keeps, by mutation, a hint to
 * the two staged chunks, which adj_add takes (c->mut). */
int adj_prefetch(struct apply_ctx *c, const Lora__MutationBatch *b);
/* Writes every chunk the batch changed (as write-only operations: the
 * stage answers every adjacency read of the batch). Called once, when the
 * batch has been validated. */
int adj_flush(struct apply_ctx *c);
/* After the batch's write: its written chunks enter the adjacency chunk
 * cache (ok), or the cache is emptied (the write failed). */
void adj_committed(struct apply_ctx *c, int ok);
void adj_free(struct apply_ctx *c);

/* apply_index.c */
/* Index maintenance when property `key` of node (edge = 0) or
 * relationship (edge = 1) id, record r, changes from old (packed bytes,
 * NULL: absent) to new (NULL: absent). */
int idx_prop_change(struct apply_ctx *c, int edge, uint64_t id,
                    const struct sto_rec *r, uint32_t key,
                    const struct sto_prop *old, const Lora__Value *nv);
/* Removes the index entries of relationship id (record r) being deleted. */
int idx_edge_delete(struct apply_ctx *c, uint64_t id, const struct sto_rec *r);
/* Index maintenance when node gains (add=1) or loses `label`. */
int idx_label_change(struct apply_ctx *c, uint64_t node,
                     const struct sto_rec *r, uint32_t label, int add);
int apply_create_index(struct apply_ctx *c, const Lora__CreateIndex *m);

/* text_index.c: the postings of TEXT indexes, kept as idx_prop_change
 * and idx_label_change keep range entries (nodes only); built when the
 * index is created (before it enters the catalogue) and removed when the
 * last TEXT index on the pair is dropped (after it left). */
int idx_text_prop_change(struct apply_ctx *c, uint64_t node,
                         const struct sto_rec *r, uint32_t key,
                         const struct sto_prop *old, const Lora__Value *nv);
int idx_text_label_change(struct apply_ctx *c, uint64_t node,
                          const struct sto_rec *r, uint32_t label, int add);
int idx_text_build(struct apply_ctx *c, const Lora__CreateIndex *m);
int idx_text_drop(struct apply_ctx *c, const Lora__CreateIndex *d);
int apply_drop_index(struct apply_ctx *c, const Lora__DropIndex *m);

/* hnsw_store.c: brings the vector index graphs in line with the batch
 * (after its mutations) and stages their changed keys. */
int sto_hnsw_apply(struct apply_ctx *c, const Lora__MutationBatch *b);
/* 1 when b creates a node (edge 0) carrying the label, or a relationship
 * (edge 1) of the type, of a vector index graph: sto_hnsw_apply then
 * reads its record and vectors back through the indexed batch, so they
 * must not be write-only (batch_wonly). */
int sto_hnsw_label_created(struct sto_store *s, const Lora__MutationBatch *b,
                           int edge);

#endif /* LORA_STO_APPLY_INT_H */
