/*
 * hnswInt.h - private to storage/: the in-memory HNSW graph of one vector
 * index (hnsw.c) and its upkeep on apply (hnsw_store.c).
 *
 * A graph is a pure data structure: no I/O, no threads, no randomness, no
 * clock. Its decisions depend only on node ids, the vectors and the order
 * of calls, never on where a node sits in memory: a node's level comes from
 * a hash of (index name, node id), and every tie between equal distances is
 * broken by the smaller node id. Two graphs fed the same calls, or one
 * loaded from the lists another wrote, therefore take the same decisions
 * and hold the same neighbour lists, on every replica.
 */
#ifndef LORA_STO_HNSW_INT_H
#define LORA_STO_HNSW_INT_H

#include <stddef.h>
#include <stdint.h>

#include "lora.h"

/* Highest level a node may get (levels 0..HNSW_LEVEL_MAX). */
#define HNSW_LEVEL_MAX 15
/* hnsw.m bounds and defaults (Neo4j's defaults: m 16, ef_construction
 * 100). Level 0 keeps 2 * m neighbours. */
#define HNSW_M_DEFAULT   16
#define HNSW_M_MAX       128
#define HNSW_EFC_DEFAULT 100
#define HNSW_EFC_MAX     4096
/* Query-time candidate list bound. */
#define HNSW_EF_MAX 100000

enum hnsw_metric { HNSW_COSINE, HNSW_EUCLIDEAN, HNSW_DOT };

/* ---- distance kernels (hnsw_dist.c) ----
 * Sums over HNSW_DIST_LANES lanes in one fixed order (see hnsw_dist.c):
 * every kernel gives the same bits. n is a multiple of HNSW_DIST_LANES;
 * the x4 forms score four vectors x[0..3] against q into out[0..3]. */
#define HNSW_DIST_LANES 8
struct hnsw_kernel {
	const char *name;
	float (*dot)(const float *a, const float *b, uint32_t n);
	float (*l2)(const float *a, const float *b, uint32_t n);
	void (*dot4)(const float *q, const float *const x[4], uint32_t n,
	             float out[4]);
	void (*l24)(const float *q, const float *const x[4], uint32_t n,
	            float out[4]);
};
enum hnsw_kernel_kind { HNSW_KERNEL_AUTO, HNSW_KERNEL_SSE, HNSW_KERNEL_AVX2 };
/* The kernel of that kind (static, never freed); NULL when this CPU or
 * build lacks it. AUTO: the forced one if any, else the best the CPU
 * runs. A graph takes the AUTO kernel when it is created. */
const struct hnsw_kernel *hnsw_kernel_get(int which);
/* For tests and benchmarks: graphs created from now on use kernel
 * `which` (AUTO: back to the CPU's best). LORA_EINVAL when unavailable. */
int hnsw_kernel_force(int which);

struct hnsw_graph;

/* One scored candidate: dist lower is closer (cosine: 1 - cos, euclidean:
 * squared distance, dot: -dot), computed in float32; never NaN (a NaN
 * from an overflowing dot product is +inf, the farthest). */
struct hnsw_cand {
	float dist;
	uint32_t slot;
	uint64_t id;
};

/* A new empty graph; name is copied (it seeds the levels). NULL when out of
 * memory. dims 1..STO_VECTOR_DIMENSIONS_MAX, m 2..HNSW_M_MAX, efc >= 1. */
struct hnsw_graph *hnsw_new(const char *name, uint32_t dims, int metric,
                            uint32_t m, uint32_t efc);
void hnsw_free(struct hnsw_graph *g);

uint32_t hnsw_dims(const struct hnsw_graph *g);
size_t hnsw_count(const struct hnsw_graph *g);
/* Bytes of memory the graph holds (vectors, lists, id map). */
size_t hnsw_bytes(const struct hnsw_graph *g);
/* Level of node id in an index named name (deterministic). */
int hnsw_level_of(const struct hnsw_graph *g, uint64_t id);

/* Whether node id is in the graph; *vec (borrowed until the next change)
 * receives its dims float32 coordinates when it is. */
int hnsw_has(const struct hnsw_graph *g, uint64_t id, const float **vec);

/* Inserts node id (not in the graph) with vector vec (dims floats). A
 * cosine graph refuses a zero vector (returns 0, nothing inserted: it has
 * no score). LORA_ENOMEM. Every node whose lists changed is marked dirty. */
int hnsw_insert(struct hnsw_graph *g, uint64_t id, const float *vec);

/* Removes a set of nodes at once: their slots are freed, every list that
 * pointed at one of them is repaired from the removed nodes' own
 * neighbours (heuristic selection), and the entry point moves to the
 * highest remaining level (smallest id) when it was removed. ids need
 * not be sorted; ids not in the graph are ignored. LORA_ENOMEM. */
int hnsw_remove(struct hnsw_graph *g, const uint64_t *ids, size_t n);

/* The ef nearest nodes found by a search for q (dims doubles), closest
 * first, into out (room for ef); *n receives how many. */
int hnsw_search(struct hnsw_graph *g, const double *q, size_t ef,
                struct hnsw_cand *out, size_t *n);

/* ---- persistence: one value per node, the entry point apart ---- */

/* Walks the dirty nodes (ascending id) and the nodes removed since the
 * last call; clears both lists. put encodes one node (value bytes
 * borrowed for the call); del names a removed one. */
typedef int (*hnsw_put_fn)(void *arg, uint64_t id, const uint8_t *val,
                           size_t len);
typedef int (*hnsw_del_fn)(void *arg, uint64_t id);
int hnsw_flush(struct hnsw_graph *g, hnsw_put_fn put, hnsw_del_fn del,
               void *arg);
/* The entry point (0 with *has = 0 when the graph is empty). */
uint64_t hnsw_entry(const struct hnsw_graph *g, int *has);

/* Loading: add every node with its vector and encoded lists (any order),
 * then hnsw_load_end with the entry point. LORA_ECORRUPT for bad bytes or
 * lists naming nodes that were not added. */
int hnsw_load_node(struct hnsw_graph *g, uint64_t id, const float *vec,
                   const uint8_t *val, size_t len);
int hnsw_load_end(struct hnsw_graph *g, uint64_t entry, int has_entry);

#endif /* LORA_STO_HNSW_INT_H */
