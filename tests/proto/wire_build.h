/*
 * wire_build.h - test helper: protobuf wire bytes for deeply nested values,
 * written by hand from the innermost field outwards (protobuf-c's own pack
 * would recurse as deeply as the value). Used by tests/proto, tests/node,
 * tests/fuzz and tests/integration/native_depth.c.
 *
 * The message grows at the front of a buffer: wb_wrap(w, f) turns what is
 * there into length-delimited field f of a new enclosing message. Memory
 * comes from malloc (abort when it fails); free with wb_free.
 */
#ifndef LORA_TESTS_WIRE_BUILD_H
#define LORA_TESTS_WIRE_BUILD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lora_pb.h"

struct wire {
	uint8_t *p;
	size_t cap, start; /* the message is p[start..cap) */
};

static inline void wb_free(struct wire *w)
{
	free(w->p);
	memset(w, 0, sizeof *w);
}

static inline const uint8_t *wb_data(const struct wire *w)
{
	return w->p + w->start;
}

static inline size_t wb_len(const struct wire *w)
{
	return w->cap - w->start;
}

static inline void wb_prepend(struct wire *w, const void *b, size_t n)
{
	if (w->start < n) {
		size_t len = w->cap - w->start, cap = w->cap * 2 + n + 64;
		uint8_t *p = malloc(cap);
		if (p == NULL)
			abort();
		if (len)
			memcpy(p + cap - len, w->p + w->start, len);
		free(w->p);
		w->p = p;
		w->cap = cap;
		w->start = cap - len;
	}
	w->start -= n;
	if (n)
		memcpy(w->p + w->start, b, n);
}

static inline void wb_varint(struct wire *w, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	wb_prepend(w, b, n);
}

/* Everything so far becomes length-delimited field `field`. */
static inline void wb_wrap(struct wire *w, unsigned field)
{
	wb_varint(w, wb_len(w));
	wb_varint(w, (uint64_t)field << 3 | 2);
}

/* A string field in front of what is there. */
static inline void wb_string(struct wire *w, unsigned field, const char *s)
{
	wb_prepend(w, s, strlen(s));
	wb_varint(w, strlen(s));
	wb_varint(w, (uint64_t)field << 3 | 2);
}

/* The Value 1: int_value (field 3) = zigzag 2. */
static inline void wb_one(struct wire *w)
{
	const uint8_t b[] = {3 << 3, 2};
	wb_prepend(w, b, sizeof b);
}

/* Shapes of one nesting level around a Value. */
enum wb_shape { WB_LIST, WB_MAP, WB_NODE, WB_REL, WB_PATH_NODE, WB_MIXED };

static inline void wb_level(struct wire *w, enum wb_shape s, long i)
{
	if (s == WB_MIXED)
		s = (enum wb_shape)(i % 5);
	switch (s) {
	case WB_LIST: /* Value{list_value: ValueList{items: v}} */
		wb_wrap(w, 1);
		wb_wrap(w, 7);
		break;
	case WB_MAP: /* Value{map_value: {entries: {key: "k", value: v}}} */
		wb_wrap(w, 2);
		wb_string(w, 1, "k");
		wb_wrap(w, 1);
		wb_wrap(w, 8);
		break;
	case WB_NODE: /* Value{node_value: NodeValue{properties: ...}} */
		wb_wrap(w, 2);
		wb_wrap(w, 3);
		wb_wrap(w, 11);
		break;
	case WB_REL:
		wb_wrap(w, 2);
		wb_wrap(w, 5);
		wb_wrap(w, 12);
		break;
	default: /* a path adds nothing of its own; its node adds one */
		wb_wrap(w, 2);
		wb_wrap(w, 3);
		wb_wrap(w, 1);
		wb_wrap(w, 13);
		break;
	}
}

/* A Value holding 1 inside `depth` levels of shape s. */
static inline void wb_value(struct wire *w, enum wb_shape s, long depth)
{
	memset(w, 0, sizeof *w);
	wb_one(w);
	for (long i = 0; i < depth; i++)
		wb_level(w, s, i);
}

/* Wraps the Value into a message of the given kind: a ValueMap entry, a
 * Request's parameter "p", a Response's first cell, a MutationBatch's
 * CreateNode property "p". */
static inline void wb_envelope(struct wire *w, enum lora_pb_kind kind)
{
	switch (kind) {
	case LORA_PB_VALUE:
		break;
	case LORA_PB_VALUE_MAP:
		wb_wrap(w, 2);
		wb_string(w, 1, "p");
		wb_wrap(w, 1);
		break;
	case LORA_PB_REQUEST:
		wb_wrap(w, 2);
		wb_string(w, 1, "p");
		wb_wrap(w, 2);
		wb_string(w, 1, "RETURN $p AS p");
		wb_wrap(w, 1);
		break;
	case LORA_PB_RESPONSE:
		wb_wrap(w, 1);
		wb_wrap(w, 3);
		break;
	default: /* LORA_PB_MUTATION_BATCH */
		wb_wrap(w, 2);
		wb_string(w, 1, "p");
		wb_wrap(w, 3);
		{
			const uint8_t id[] = {1 << 3, 1}; /* CreateNode.id 1 */
			wb_prepend(w, id, sizeof id);
		}
		wb_wrap(w, 1);
		wb_wrap(w, 1);
		break;
	}
}

#endif /* LORA_TESTS_WIRE_BUILD_H */
