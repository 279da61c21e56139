/* pb_alloc.c - protobuf-c allocators backed by the lora allocation hooks:
 * one that mallocs and frees each piece, and a bump arena for messages
 * unpacked, read and dropped whole (the apply loop's log entries). */
#include <stddef.h>
#include <stdint.h>

#include "lora_pb.h"

static void *pb_alloc(void *data, size_t size)
{
	(void)data;
	return lora_malloc(size);
}

static void pb_free(void *data, void *ptr)
{
	(void)data;
	lora_free(ptr);
}

ProtobufCAllocator lora_pb_allocator = {pb_alloc, pb_free, NULL};

/* ---- arena --------------------------------------------------------------
 * Blocks are chained through their first bytes; an allocation larger than
 * a quarter block gets a block of its own, so at most a quarter of each
 * block is left unused. Pieces are aligned as malloc aligns
 * (_Alignof(max_align_t)). */

struct lora_pb_block {
	struct lora_pb_block *next;
	max_align_t data[];
};

#define PB_ALIGN _Alignof(max_align_t)

static void *arena_block(struct lora_pb_arena *ar, size_t bytes)
{
	if (bytes > SIZE_MAX - sizeof(struct lora_pb_block))
		return NULL;
	struct lora_pb_block *b =
	    lora_malloc(sizeof(struct lora_pb_block) + bytes);
	if (!b)
		return NULL;
	b->next = ar->head;
	ar->head = b;
	return b->data;
}

static void *arena_alloc(void *data, size_t size)
{
	struct lora_pb_arena *ar = data;
	size_t need = (size + PB_ALIGN - 1) / PB_ALIGN * PB_ALIGN;
	if (need < size)
		return NULL;
	if (need > LORA_PB_ARENA_BLOCK_BYTES / 4)
		return arena_block(ar, need); /* alone; the open block stays */
	if (ar->left < need) {
		ar->at = arena_block(ar, LORA_PB_ARENA_BLOCK_BYTES);
		if (!ar->at)
			return NULL;
		ar->left = LORA_PB_ARENA_BLOCK_BYTES;
	}
	void *p = ar->at;
	ar->at += need;
	ar->left -= need;
	return p;
}

static void arena_free(void *data, void *ptr)
{
	(void)data; /* given back with the arena */
	(void)ptr;
}

void lora_pb_arena_init(struct lora_pb_arena *ar)
{
	ar->alloc.alloc = arena_alloc;
	ar->alloc.free = arena_free;
	ar->alloc.allocator_data = ar;
	ar->head = NULL;
	ar->at = NULL;
	ar->left = 0;
}

void lora_pb_arena_free(struct lora_pb_arena *ar)
{
	while (ar->head) {
		struct lora_pb_block *b = ar->head;
		ar->head = b->next;
		lora_free(b);
	}
	lora_pb_arena_init(ar);
}
