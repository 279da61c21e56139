/*
 * lora_pb.h - protobuf-c glue: the generated message headers, an allocator
 * that routes protobuf-c through the lora_malloc hooks (so that allocation
 * failure can be injected into decoding too), and the nesting checks that
 * must pass before protobuf-c sees bytes from outside.
 */
#ifndef LORA_PB_H
#define LORA_PB_H

#include <stdbool.h>
#include <stdint.h>

#include "client.pb-c.h"
#include "lora.h"
#include "mutation.pb-c.h"
#include "raft.pb-c.h"
#include "value.pb-c.h"

/* Pass to *__unpack / *__free_unpacked. Static storage, never NULL. */
extern ProtobufCAllocator lora_pb_allocator;

/* ---- packing a MutationBatch (pb_batch.c) ----------------------------------
 * The size and the bytes of lora__mutation_batch__get_packed_size /
 * __pack, in fewer passes; lora_batch_pack returns the count written. */
size_t lora_batch_packed_size(const Lora__MutationBatch *b);
size_t lora_batch_pack(const Lora__MutationBatch *b, uint8_t *out);
/* Packs b into out, which holds exactly len = lora_batch_packed_size(b)
 * bytes, and asserts that this is what was written. */
void lora_batch_pack_exact(const Lora__MutationBatch *b, uint8_t *out,
                           size_t len);
/* MutationBatch.after_index = index (not 0) as protobuf writes it, into
 * out (LORA_BATCH_AFTER_INDEX_BYTES_MAX of room): the count written. A
 * packed batch without the field followed by these bytes is the batch
 * packed with it (the field comes last). */
#define LORA_BATCH_AFTER_INDEX_BYTES_MAX 11
size_t lora_batch_put_after_index(uint8_t *out, uint64_t index);

/* ---- metered decoding ---------------------------------------------------
 *
 * protobuf-c's unpack answers NULL for bad bytes and for no memory alike,
 * and a node must tell them apart: bad bytes are refused by every node,
 * no memory is waited out. A meter, filled in by the allocators below,
 * records both from inside the allocator.
 *
 * It also bounds what decoding may allocate. protobuf-c merges a singular
 * message field seen N times, copying its repeated fields at each merge:
 * with k items each that allocates k, 2k, ... Nk items, O(N^2 k) bytes
 * (about 4 GB for a crafted 1 MB entry). Every piece is counted, rounded
 * up as the arena rounds it, freed or not, and an allocation past
 * cap_bytes fails with over_cap set. The count is a function of the bytes
 * and of protobuf-c alone (not of the allocator), so every node decides a
 * capped entry alike. LORA_PB_DECODED_BYTES_MAX is far above what bytes
 * without repeated singular fields (all our encoder writes) expand to: at
 * most about 60 bytes per wire byte (an empty sub-message of the largest
 * message struct behind a 2-byte field header), where the cap allows
 * LORA_PB_DECODED_PER_WIRE_BYTE (tests/proto decode_cap_covers_every_field
 * measures it). A cap rather than refusing a repeated singular field in
 * lora_pb_check: protobuf-c merges in more shapes than one field seen
 * twice (messages nested in the repeated one, each merged in turn), and
 * the checker would have to model each; the cap bounds all of them, and
 * legal protobuf (which allows the repeat) stays legal below it. A 1 MB
 * entry may take up to 129 MiB while it is decoded.
 */
#define LORA_PB_DECODED_PER_WIRE_BYTE 128
#define LORA_PB_DECODED_BYTES_FIXED   ((size_t)1 << 20)
#define LORA_PB_DECODED_BYTES_MAX(wire_bytes)                                  \
	((wire_bytes) > (SIZE_MAX - LORA_PB_DECODED_BYTES_FIXED) /             \
	                    LORA_PB_DECODED_PER_WIRE_BYTE                      \
	     ? SIZE_MAX                                                        \
	     : (wire_bytes)*LORA_PB_DECODED_PER_WIRE_BYTE +                    \
	           LORA_PB_DECODED_BYTES_FIXED)

struct lora_pb_meter {
	size_t used_bytes; /* allocated since the reset, rounded up */
	size_t cap_bytes;  /* used_bytes may not pass it; 0: no cap */
	bool failed;       /* an allocation found no memory */
	bool over_cap;     /* an allocation would have passed cap_bytes */
};
/* Zeroes the counts and flags and sets the cap (0: none). */
void lora_pb_meter_reset(struct lora_pb_meter *m, size_t cap_bytes);

/* lora_pb_allocator with a meter: a malloc and a free per piece. Pass
 * &a.alloc to *__unpack and *__free_unpacked; the caller owns it. */
struct lora_pb_metered {
	ProtobufCAllocator alloc; /* allocator_data is this struct */
	struct lora_pb_meter meter;
};
void lora_pb_metered_init(struct lora_pb_metered *a, size_t cap_bytes);

/* A bump allocator for a message that is unpacked, read and dropped whole:
 * pass &arena.alloc to *__unpack, never call *__free_unpacked on the
 * result, and give every piece back at once with lora_pb_arena_free (which
 * leaves the arena empty, its meter reset with no cap, ready for reuse).
 * Saves protobuf-c's malloc and free per field (a 1,000-row batch has tens
 * of thousands). The arena and what it handed out belong to the caller. */
#define LORA_PB_ARENA_BLOCK_BYTES ((size_t)64 * 1024)
struct lora_pb_block;
struct lora_pb_arena {
	ProtobufCAllocator alloc; /* allocator_data is the arena */
	struct lora_pb_block *head;
	char *at;    /* free space in the open block */
	size_t left; /* bytes there */
	struct lora_pb_meter meter;
};
void lora_pb_arena_init(struct lora_pb_arena *ar);
void lora_pb_arena_free(struct lora_pb_arena *ar);

/* ---- value nesting ------------------------------------------------------
 *
 * protobuf-c packs, unpacks and frees recursively with no depth limit, so a
 * value nested 20,000 deep overflows the stack. Everything that decodes
 * bytes from a client, a peer or the disk checks them with lora_pb_check
 * first, and everything that copies an in-memory value checks it with
 * lora_value_depth.
 *
 * The depth of a value is the number of lists, maps, nodes and
 * relationships on its longest path to a leaf (a node or relationship is
 * the map of its properties; a path adds nothing beyond them): 1 and "a"
 * have depth 0, [1] and {a: 1} depth 1, [[1]] and {a: [1]} depth 2.
 *
 * Values coming in (parameters, mutations) are held to
 * LORA_VALUE_DEPTH_MAX. Values going out (result rows, plans) and values
 * read back from disk are held to the looser LORA_RESULT_DEPTH_MAX: a node
 * or relationship adds a level around an engine-built value, an EXPLAIN
 * plan nests two levels per clause, and a value an older version stored
 * deeper must stay readable. Either bound keeps protobuf-c's recursion
 * within a few hundred frames.
 */
#define LORA_RESULT_DEPTH_MAX (2 * LORA_VALUE_DEPTH_MAX + 2)

/* Top-level messages lora_pb_check walks: those that can carry a Value. */
enum lora_pb_kind {
	LORA_PB_VALUE,          /* lora.Value */
	LORA_PB_VALUE_MAP,      /* lora.ValueMap, a map value: one level */
	LORA_PB_REQUEST,        /* lora.Request: run parameters */
	LORA_PB_RESPONSE,       /* lora.Response: result rows */
	LORA_PB_MUTATION_BATCH, /* lora.MutationBatch: property values */
	LORA_PB_KINDS
};

/*
 * Walks the wire bytes buf[0..len) as a message of the given kind, without
 * recursion (an explicit stack bounded by depth_max), and returns:
 *   0              protobuf-c may unpack them: no Value inside nests deeper
 *                  than depth_max (0..LORA_RESULT_DEPTH_MAX), so its
 *                  recursion is bounded;
 *   LORA_ELIMIT    some Value nests deeper than depth_max;
 *   LORA_ECORRUPT  not well-formed wire format: a truncated varint or
 *                  field, a length past the end of its message, field
 *                  number 0, a group or an unknown wire type, or a
 *                  message-typed field whose wire type is not a length.
 * Never reads outside buf. Bytes that pass may still fail to unpack (a bad
 * packed array, no memory): the caller still checks protobuf-c's answer.
 */
int lora_pb_check(enum lora_pb_kind kind, const uint8_t *buf, size_t len,
                  int depth_max);

/* Depth of v (NULL counts as a null) as defined above, except that the
 * walk stops at depth_max + 1 (its recursion is bounded by depth_max):
 * a return above depth_max means "too deep". */
int lora_value_depth(const Lora__Value *v, int depth_max);

/* 0 when v nests at most depth_max deep; LORA_ELIMIT otherwise, with
 * "value nested deeper than <depth_max> lists, maps, nodes and
 * relationships (the value depth limit)" in errmsg (may be NULL). */
int lora_value_depth_check(const Lora__Value *v, int depth_max, char *errmsg);

/* Depth of the deepest property value in batch b, stopping likewise at
 * depth_max + 1. */
int lora_batch_depth(const Lora__MutationBatch *b, int depth_max);

#endif /* LORA_PB_H */
