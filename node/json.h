/*
 * json.h - LoraDB values as JSON (jansson) and back.
 *
 * Output (node_json_from_value): nodes {id, kind:"node", labels,
 * properties}, relationships {id, kind:"relationship", startId, endId,
 * type, properties}, paths {kind:"path", nodes, relationships}, temporals
 * as ISO 8601 strings, vectors {kind:"vector", dimension, coordinateType,
 * values}, points {kind:"point", srid, crs, x, y[, z]} (a NaN or infinite
 * coordinate: the point's text), bytes as a list of integers.
 *
 * Input (node_json_to_params): query parameters; objects become maps
 * except {"kind":"vector",...} which becomes a vector and
 * {"kind":"point","srid",...,"x","y"[,"z"]} which becomes a point.
 */
#ifndef LORA_NODE_JSON_H
#define LORA_NODE_JSON_H

#include <jansson.h>

#include "lora_pb.h"

/* New reference, or NULL when out of memory or when v nests deeper than
 * LORA_RESULT_DEPTH_MAX. v borrowed (NULL -> null). */
json_t *node_json_from_value(const Lora__Value *v);

/* A result row of n values (borrowed) as JSON in *out (a new reference):
 * an object keyed by cols, or an array when cols is NULL. A value that
 * cannot be rendered fails the whole row, never leaves its column out:
 * LORA_ELIMIT ("result column N: value nested deeper than ...", the text
 * node_resp_add_row gives) or LORA_ENOMEM, with the message in errmsg
 * and *out NULL. */
int node_json_row(const Lora__Value *const *vals, const char *const *cols,
                  size_t n, json_t **out, char *errmsg);

/*
 * Converts a JSON object of parameters. On success *out is owned by the
 * caller: lora__value_map__free_unpacked(*out, &lora_pb_allocator).
 * obj NULL or JSON null gives an empty map. LORA_EPARAMS with a message
 * for a parameter that nests deeper than LORA_VALUE_DEPTH_MAX arrays and
 * objects, or a vector value that does not fit its coordinate type.
 */
int node_json_to_params(const json_t *obj, Lora__ValueMap **out, char *errmsg);

/* A single value found inside `depth` arrays and objects (0 for a
 * parameter itself); free with lora__value__free_unpacked. */
int node_json_to_value(const json_t *j, Lora__Value **out, int depth,
                       char *errmsg);

/* Accumulates distinct nodes and relationships found inside values, for
 * the "graph" response format. */
struct node_json_graph {
	json_t *nodes;  /* array, owned */
	json_t *rels;   /* array, owned */
	json_t *seen_n; /* object keyed by id, owned */
	json_t *seen_r;
	/* an estimate of the memory the entities added so far hold: twice
	 * their compact JSON, plus NODE_JSON_GRAPH_ENTRY_BYTES each */
	uint64_t bytes;
};
#define NODE_JSON_GRAPH_ENTRY_BYTES 160
int node_json_graph_init(struct node_json_graph *g);
void node_json_graph_add(struct node_json_graph *g, const Lora__Value *v);
/* {"nodes":[...],"relationships":[...]}; consumes g. */
json_t *node_json_graph_take(struct node_json_graph *g);
void node_json_graph_free(struct node_json_graph *g);

#endif
