/*
 * lora_pb.h - protobuf-c glue: the generated message headers and an
 * allocator that routes protobuf-c through the lora_malloc hooks, so that
 * allocation failure can be injected into decoding too.
 */
#ifndef LORA_PB_H
#define LORA_PB_H

#include "client.pb-c.h"
#include "lora.h"
#include "mutation.pb-c.h"
#include "raft.pb-c.h"
#include "value.pb-c.h"

/* Pass to *__unpack / *__free_unpacked. Static storage, never NULL. */
extern ProtobufCAllocator lora_pb_allocator;

#endif /* LORA_PB_H */
