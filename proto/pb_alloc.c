/* pb_alloc.c - protobuf-c allocators backed by the lora allocation hooks:
 * one that mallocs and frees each piece (plain, or with a meter), and a
 * bump arena for messages unpacked, read and dropped whole (the apply
 * loop's log entries). */
#include <stddef.h>
#include <stdint.h>

#include "lora_pb.h"

#define PB_ALIGN _Alignof(max_align_t)

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

/* ---- meter --------------------------------------------------------------
 * Both metered allocators count a piece of size bytes as *need: size
 * rounded up to PB_ALIGN, 0 counting as 1 (as the arena hands it out), so
 * that one message's bytes give the same count with either. */

void lora_pb_meter_reset(struct lora_pb_meter *m, size_t cap_bytes)
{
	m->used_bytes = 0;
	m->cap_bytes = cap_bytes;
	m->failed = false;
	m->over_cap = false;
}

/* Counts a piece of size bytes: 0 with *need set, or -1 (over_cap set)
 * when it would pass the cap or cannot be counted. */
static int meter_take(struct lora_pb_meter *m, size_t size, size_t *need)
{
	if (size == 0)
		size = 1;
	*need = (size + PB_ALIGN - 1) / PB_ALIGN * PB_ALIGN;
	if (*need < size || *need > SIZE_MAX - m->used_bytes ||
	    (m->cap_bytes && m->used_bytes + *need > m->cap_bytes)) {
		m->over_cap = true;
		return -1;
	}
	m->used_bytes += *need;
	return 0;
}

static void *metered_alloc(void *data, size_t size)
{
	struct lora_pb_metered *a = data;
	size_t need;
	if (meter_take(&a->meter, size, &need))
		return NULL;
	void *p = lora_malloc(size ? size : 1);
	if (!p)
		a->meter.failed = true;
	return p;
}

void lora_pb_metered_init(struct lora_pb_metered *a, size_t cap_bytes)
{
	a->alloc.alloc = metered_alloc;
	a->alloc.free = pb_free;
	a->alloc.allocator_data = a;
	lora_pb_meter_reset(&a->meter, cap_bytes);
}

/* ---- arena --------------------------------------------------------------
 * Blocks are chained through their first bytes; an allocation larger than
 * a quarter block gets a block of its own, so at most a quarter of each
 * block is left unused. Pieces are aligned as malloc aligns
 * (_Alignof(max_align_t)); a piece of 0 bytes takes PB_ALIGN, as
 * lora_malloc(0) gives a pointer of its own. */

struct lora_pb_block {
	struct lora_pb_block *next;
	max_align_t data[];
};

/* A new block of bytes chained to the arena, or NULL with failed set. */
static void *arena_block(struct lora_pb_arena *ar, size_t bytes)
{
	struct lora_pb_block *b = NULL;
	if (bytes <= SIZE_MAX - sizeof(struct lora_pb_block))
		b = lora_malloc(sizeof(struct lora_pb_block) + bytes);
	if (!b) {
		ar->meter.failed = true;
		return NULL;
	}
	b->next = ar->head;
	ar->head = b;
	return b->data;
}

static void *arena_alloc(void *data, size_t size)
{
	struct lora_pb_arena *ar = data;
	size_t need;
	if (meter_take(&ar->meter, size, &need))
		return NULL;
	if (need > LORA_PB_ARENA_BLOCK_BYTES / 4)
		return arena_block(ar, need); /* alone; the open block stays */
	if (ar->left < need) {
		ar->at = arena_block(ar, LORA_PB_ARENA_BLOCK_BYTES);
		if (!ar->at) {
			ar->left = 0;
			return NULL;
		}
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
	lora_pb_meter_reset(&ar->meter, 0);
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
