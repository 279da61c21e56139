/* pb_alloc.c - protobuf-c allocator backed by the lora allocation hooks. */
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
