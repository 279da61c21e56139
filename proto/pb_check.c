/*
 * pb_check.c - how deeply Values nest, measured before protobuf-c recurses.
 *
 * protobuf-c unpacks one sub-message per C call frame and knows no depth
 * limit, so bytes from outside are walked here first, iteratively: the
 * wire format is a sequence of (tag, payload) fields, and a length-delimited
 * payload is a sub-message exactly when the schema says so. A small table
 * below lists, for every message that can lead to a Value, which of its
 * fields are such sub-messages and whether entering it adds a level of
 * value nesting (lists, maps, nodes, relationships). Other length-delimited
 * fields (strings, bytes, packed arrays, leaf messages such as Vector and
 * Temporal) are skipped whole: protobuf-c recurses at most one level into
 * them. The walk keeps one stack entry per open message; every cycle in the
 * schema passes through a counted message, so the stack stays within
 * PB_STACK_MAX when the depth does.
 */
#include "lora_pb.h"

enum pb_type {
	T_LEAF = 0, /* not walked */
	T_VALUE,
	T_LIST,
	T_MAP,
	T_ENTRY,
	T_NODE,
	T_REL,
	T_PATH,
	T_REQUEST,
	T_RUN,
	T_PARAM,
	T_RESPONSE,
	T_ROW,
	T_BATCH,
	T_MUTATION,
	T_CREATE_NODE,
	T_PROPERTY,
	T_SET_PROPERTY,
	T_CREATE_EDGE,
	T_REMOVE_PROPERTY,
	T_DELETE_NODE,
	T_DELETE_EDGE,
	T_OLD_ENTITY,
	T_COUNT
};

#define PB_CHILDREN_MAX 6

struct pb_child {
	uint8_t field;
	uint8_t type;
};

struct pb_type_info {
	uint8_t counts; /* entering one adds a level of value nesting */
	struct pb_child child[PB_CHILDREN_MAX];
};

/* Field numbers from value.proto, client.proto and mutation.proto. */
static const struct pb_type_info pb_types[T_COUNT] = {
    [T_VALUE] =
        {0, {{7, T_LIST}, {8, T_MAP}, {11, T_NODE}, {12, T_REL}, {13, T_PATH}}},
    [T_LIST] = {1, {{1, T_VALUE}}},
    [T_MAP] = {1, {{1, T_ENTRY}}},
    [T_ENTRY] = {0, {{2, T_VALUE}}},
    [T_NODE] = {1, {{3, T_ENTRY}}},
    [T_REL] = {1, {{5, T_ENTRY}}},
    [T_PATH] = {0, {{1, T_NODE}, {2, T_REL}}},
    [T_REQUEST] = {0, {{1, T_RUN}}},
    [T_RUN] = {0, {{2, T_PARAM}}},
    [T_PARAM] = {0, {{2, T_VALUE}}},
    [T_RESPONSE] = {0, {{3, T_ROW}, {12, T_VALUE}}},
    [T_ROW] = {0, {{1, T_VALUE}}},
    [T_BATCH] = {0, {{1, T_MUTATION}}},
    [T_MUTATION] = {0,
                    {{1, T_CREATE_NODE},
                     {2, T_DELETE_NODE},
                     {3, T_SET_PROPERTY},
                     {4, T_REMOVE_PROPERTY},
                     {7, T_CREATE_EDGE},
                     {8, T_DELETE_EDGE}}},
    [T_CREATE_NODE] = {0, {{3, T_PROPERTY}}},
    [T_PROPERTY] = {0, {{2, T_VALUE}}},
    [T_SET_PROPERTY] = {0, {{4, T_VALUE}, {5, T_VALUE}}},
    [T_CREATE_EDGE] = {0, {{5, T_PROPERTY}}},
    /* the old values the change stream shows (cdc_old_values) */
    [T_REMOVE_PROPERTY] = {0, {{4, T_VALUE}}},
    [T_DELETE_NODE] = {0, {{3, T_OLD_ENTITY}}},
    [T_DELETE_EDGE] = {0, {{2, T_OLD_ENTITY}}},
    [T_OLD_ENTITY] = {0, {{2, T_PROPERTY}}},
};

static const uint8_t pb_roots[LORA_PB_KINDS] = {
    [LORA_PB_VALUE] = T_VALUE,          [LORA_PB_VALUE_MAP] = T_MAP,
    [LORA_PB_REQUEST] = T_REQUEST,      [LORA_PB_RESPONSE] = T_RESPONSE,
    [LORA_PB_MUTATION_BATCH] = T_BATCH,
};

/* Open messages: a counted level takes at most 4 of them (Value, Path,
 * Node, MapEntry), plus the wrappers around the outermost Value. */
#define PB_STACK_MAX (4 * (LORA_RESULT_DEPTH_MAX + 1) + 8)

#define PB_FIELD_MAX  ((1u << 29) - 1) /* largest field number */
#define PB_VARINT_MAX 10               /* bytes in a 64-bit varint */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

struct pb_frame {
	size_t end; /* offset just past this message */
	uint8_t type;
};

/* Reads a varint at *pos, not past end. -1 when truncated or too long. */
static int read_varint(const uint8_t *buf, size_t end, size_t *pos,
                       uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < PB_VARINT_MAX; i++) {
		if (*pos >= end)
			return -1;
		uint8_t b = buf[(*pos)++];
		if (i == PB_VARINT_MAX - 1 && b > 1)
			return -1; /* more than 64 bits */
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

static uint8_t child_type(uint8_t type, uint64_t field)
{
	const struct pb_type_info *t = &pb_types[type];
	for (int i = 0; i < PB_CHILDREN_MAX && t->child[i].field; i++)
		if (t->child[i].field == field)
			return t->child[i].type;
	return T_LEAF;
}

/* Skips the payload of a non-message field; -1 when it runs past end. */
static int skip_payload(const uint8_t *buf, size_t end, size_t *pos,
                        unsigned wt)
{
	uint64_t v;
	switch (wt) {
	case WT_VARINT:
		return read_varint(buf, end, pos, &v);
	case WT_I64:
	case WT_I32: {
		size_t n = wt == WT_I64 ? 8 : 4;
		if (end - *pos < n)
			return -1;
		*pos += n;
		return 0;
	}
	default:
		return -1; /* groups (3, 4) and 6, 7: never written by us */
	}
}

int lora_pb_check(enum lora_pb_kind kind, const uint8_t *buf, size_t len,
                  int depth_max)
{
	LORA_ASSERT((unsigned)kind < LORA_PB_KINDS);
	LORA_ASSERT(depth_max >= 0 && depth_max <= LORA_RESULT_DEPTH_MAX);
	LORA_ASSERT(buf != NULL || len == 0);
	struct pb_frame st[PB_STACK_MAX];
	int top = 0, depth = pb_types[pb_roots[kind]].counts;
	size_t pos = 0;
	st[0] = (struct pb_frame){len, pb_roots[kind]};
	if (depth > depth_max)
		return LORA_ELIMIT; /* a ValueMap is a level itself */
	for (;;) {
		while (pos == st[top].end) {
			if (top == 0)
				return 0;
			depth -= pb_types[st[top--].type].counts;
		}
		size_t end = st[top].end;
		uint64_t tag, n;
		if (read_varint(buf, end, &pos, &tag) != 0)
			return LORA_ECORRUPT;
		uint64_t field = tag >> 3;
		unsigned wt = (unsigned)(tag & 7);
		if (field == 0 || field > PB_FIELD_MAX)
			return LORA_ECORRUPT;
		uint8_t child = child_type(st[top].type, field);
		if (wt != WT_LEN) {
			if (child != T_LEAF ||
			    skip_payload(buf, end, &pos, wt) != 0)
				return LORA_ECORRUPT;
			continue;
		}
		if (read_varint(buf, end, &pos, &n) != 0 || n > end - pos)
			return LORA_ECORRUPT;
		if (child == T_LEAF) {
			pos += (size_t)n;
			continue;
		}
		depth += pb_types[child].counts;
		if (depth > depth_max || top + 1 >= PB_STACK_MAX)
			return LORA_ELIMIT;
		st[++top] = (struct pb_frame){pos + (size_t)n, child};
	}
}

/* ---- in-memory values --------------------------------------------------- */

static int entries_depth(Lora__MapEntry *const *e, size_t n, int d, int max);

/* Depth of v, which sits inside d counted levels; stops past max. */
static int depth_at(const Lora__Value *v, int d, int max)
{
	if (d > max || v == NULL)
		return d;
	int deepest = d;
	switch (v->kind_case) {
	case LORA__VALUE__KIND_LIST_VALUE: {
		const Lora__ValueList *l = v->list_value;
		deepest = d + 1;
		for (size_t i = 0; l && i < l->n_items && deepest <= max; i++) {
			int x = depth_at(l->items[i], d + 1, max);
			deepest = x > deepest ? x : deepest;
		}
		return deepest;
	}
	case LORA__VALUE__KIND_MAP_VALUE:
		return v->map_value
		           ? entries_depth(v->map_value->entries,
		                           v->map_value->n_entries, d + 1, max)
		           : d + 1;
	case LORA__VALUE__KIND_NODE_VALUE:
		return v->node_value
		           ? entries_depth(v->node_value->properties,
		                           v->node_value->n_properties, d + 1,
		                           max)
		           : d + 1;
	case LORA__VALUE__KIND_REL_VALUE:
		return v->rel_value ? entries_depth(v->rel_value->properties,
		                                    v->rel_value->n_properties,
		                                    d + 1, max)
		                    : d + 1;
	case LORA__VALUE__KIND_PATH_VALUE: {
		const Lora__PathValue *p = v->path_value;
		for (size_t i = 0; p && i < p->n_nodes && deepest <= max; i++) {
			int x = p->nodes[i]
			            ? entries_depth(p->nodes[i]->properties,
			                            p->nodes[i]->n_properties,
			                            d + 1, max)
			            : d + 1;
			deepest = x > deepest ? x : deepest;
		}
		for (size_t i = 0; p && i < p->n_rels && deepest <= max; i++) {
			int x = p->rels[i]
			            ? entries_depth(p->rels[i]->properties,
			                            p->rels[i]->n_properties,
			                            d + 1, max)
			            : d + 1;
			deepest = x > deepest ? x : deepest;
		}
		return deepest;
	}
	default:
		return d;
	}
}

/* Depth of a map (or a node's or relationship's properties) whose entries
 * sit inside d counted levels, the map's own included. */
static int entries_depth(Lora__MapEntry *const *e, size_t n, int d, int max)
{
	int deepest = d;
	for (size_t i = 0; i < n && deepest <= max; i++) {
		int x = e[i] ? depth_at(e[i]->value, d, max) : d;
		deepest = x > deepest ? x : deepest;
	}
	return deepest;
}

int lora_value_depth(const Lora__Value *v, int depth_max)
{
	LORA_ASSERT(depth_max >= 0);
	return depth_at(v, 0, depth_max);
}

int lora_value_depth_check(const Lora__Value *v, int depth_max, char *errmsg)
{
	if (lora_value_depth(v, depth_max) <= depth_max)
		return 0;
	return lora_errf(LORA_ELIMIT, errmsg,
	                 "value nested deeper than %d lists, maps, nodes and "
	                 "relationships (the value depth limit)",
	                 depth_max);
}

static int props_depth(Lora__Property *const *p, size_t n, int max)
{
	int deepest = 0;
	for (size_t i = 0; i < n && deepest <= max; i++) {
		int x = p[i] ? depth_at(p[i]->value, 0, max) : 0;
		deepest = x > deepest ? x : deepest;
	}
	return deepest;
}

static int max2(int a, int b)
{
	return a > b ? a : b;
}

static int old_depth(const Lora__OldEntity *o, int max)
{
	return o ? props_depth(o->properties, o->n_properties, max) : 0;
}

static int mutation_depth(const Lora__Mutation *m, int max)
{
	switch (m ? m->op_case : LORA__MUTATION__OP__NOT_SET) {
	case LORA__MUTATION__OP_CREATE_NODE:
		return m->create_node
		           ? props_depth(m->create_node->properties,
		                         m->create_node->n_properties, max)
		           : 0;
	case LORA__MUTATION__OP_CREATE_EDGE:
		return m->create_edge
		           ? props_depth(m->create_edge->properties,
		                         m->create_edge->n_properties, max)
		           : 0;
	case LORA__MUTATION__OP_SET_PROPERTY:
		return m->set_property
		           ? max2(depth_at(m->set_property->value, 0, max),
		                  depth_at(m->set_property->old_value, 0, max))
		           : 0;
	case LORA__MUTATION__OP_REMOVE_PROPERTY:
		return m->remove_property
		           ? depth_at(m->remove_property->old_value, 0, max)
		           : 0;
	case LORA__MUTATION__OP_DELETE_NODE:
		return m->delete_node ? old_depth(m->delete_node->old, max) : 0;
	case LORA__MUTATION__OP_DELETE_EDGE:
		return m->delete_edge ? old_depth(m->delete_edge->old, max) : 0;
	default:
		return 0;
	}
}

int lora_batch_depth(const Lora__MutationBatch *b, int depth_max)
{
	LORA_ASSERT(depth_max >= 0);
	int deepest = 0;
	for (size_t i = 0; b && i < b->n_mutations && deepest <= depth_max;
	     i++) {
		int x = mutation_depth(b->mutations[i], depth_max);
		deepest = x > deepest ? x : deepest;
	}
	return deepest;
}
