/*
 * pb_batch.c - a MutationBatch packed the way protobuf-c packs it, in
 * fewer passes.
 *
 * protobuf-c sizes a message by walking it, and packing a sub-message
 * sizes it again for its length prefix, at every level: a batch of
 * relationship creations was walked about four times (a tenth of a
 * load's leader CPU). Here a creation of a relationship without
 * properties (a load's common mutation) is sized and written by hand,
 * and every other mutation goes to protobuf-c. The bytes are the same
 * as lora__mutation_batch__pack's (tests/proto checks it on every kind
 * of mutation).
 */
#include <string.h>

#include "lora_pb.h"

/* field tags: (number << 3) | wire type */
#define TAG_BATCH_MUTATIONS   0x0a /* 1, length-delimited */
#define TAG_BATCH_REQUEST_IDS 0x12 /* 2, length-delimited */
#define TAG_BATCH_AFTER_INDEX 0x18 /* 3, varint */
#define TAG_MUT_CREATE_EDGE   0x3a /* 7, length-delimited */
#define TAG_EDGE_ID           0x08 /* 1, varint */
#define TAG_EDGE_TYPE         0x12 /* 2, length-delimited */
#define TAG_EDGE_FROM         0x18 /* 3, varint */
#define TAG_EDGE_TO           0x20 /* 4, varint */

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	for (; v >= 0x80; v >>= 7)
		n++;
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	for (; v >= 0x80; v >>= 7)
		*p++ = (uint8_t)(v | 0x80);
	*p++ = (uint8_t)v;
	return p;
}

/* A relationship creation written here: no properties, and nothing
 * protobuf-c would add (unknown fields kept from a decode). */
static const Lora__CreateEdge *plain_edge(const Lora__Mutation *m)
{
	const Lora__CreateEdge *e = m->create_edge;
	return m->op_case == LORA__MUTATION__OP_CREATE_EDGE && e &&
	               !m->base.n_unknown_fields && !e->base.n_unknown_fields &&
	               !e->n_properties
	           ? e
	           : NULL;
}

/* proto3 scalars: zero values and empty strings are left out */
static size_t edge_len(const Lora__CreateEdge *e, size_t tlen)
{
	return (e->id ? 1 + varint_len(e->id) : 0) +
	       (tlen ? 1 + varint_len(tlen) + tlen : 0) +
	       (e->from_id ? 1 + varint_len(e->from_id) : 0) +
	       (e->to_id ? 1 + varint_len(e->to_id) : 0);
}

static size_t mutation_len(const Lora__Mutation *m)
{
	const Lora__CreateEdge *e = plain_edge(m);
	if (!e)
		return lora__mutation__get_packed_size(m);
	size_t body = edge_len(e, e->type ? strlen(e->type) : 0);
	return 1 + varint_len(body) + body;
}

size_t lora_batch_packed_size(const Lora__MutationBatch *b)
{
	if (b->base.n_unknown_fields)
		return lora__mutation_batch__get_packed_size(b);
	size_t n = 0;
	for (size_t i = 0; i < b->n_mutations; i++) {
		size_t m = mutation_len(b->mutations[i]);
		n += 1 + varint_len(m) + m;
	}
	for (size_t i = 0; i < b->n_request_ids; i++) {
		size_t l = strlen(b->request_ids[i]);
		n += 1 + varint_len(l) + l;
	}
	if (b->after_index)
		n += 1 + varint_len(b->after_index);
	return n;
}

size_t lora_batch_put_after_index(uint8_t *out, uint64_t index)
{
	LORA_ASSERT(index != 0);
	uint8_t *p = out;
	*p++ = TAG_BATCH_AFTER_INDEX;
	p = put_varint(p, index);
	return (size_t)(p - out);
}

static uint8_t *put_edge(uint8_t *p, const Lora__CreateEdge *e)
{
	size_t tlen = e->type ? strlen(e->type) : 0, body = edge_len(e, tlen);
	*p++ = TAG_MUT_CREATE_EDGE;
	p = put_varint(p, body);
	if (e->id) {
		*p++ = TAG_EDGE_ID;
		p = put_varint(p, e->id);
	}
	if (tlen) {
		*p++ = TAG_EDGE_TYPE;
		p = put_varint(p, tlen);
		memcpy(p, e->type, tlen);
		p += tlen;
	}
	if (e->from_id) {
		*p++ = TAG_EDGE_FROM;
		p = put_varint(p, e->from_id);
	}
	if (e->to_id) {
		*p++ = TAG_EDGE_TO;
		p = put_varint(p, e->to_id);
	}
	return p;
}

size_t lora_batch_pack(const Lora__MutationBatch *b, uint8_t *out)
{
	if (b->base.n_unknown_fields)
		return lora__mutation_batch__pack(b, out);
	uint8_t *p = out;
	for (size_t i = 0; i < b->n_mutations; i++) {
		const Lora__Mutation *m = b->mutations[i];
		size_t len = mutation_len(m);
		const Lora__CreateEdge *e = plain_edge(m);
		*p++ = TAG_BATCH_MUTATIONS;
		p = put_varint(p, len);
		if (e)
			p = put_edge(p, e);
		else
			p += lora__mutation__pack(m, p);
	}
	for (size_t i = 0; i < b->n_request_ids; i++) {
		size_t l = strlen(b->request_ids[i]);
		*p++ = TAG_BATCH_REQUEST_IDS;
		p = put_varint(p, l);
		memcpy(p, b->request_ids[i], l);
		p += l;
	}
	if (b->after_index)
		p += lora_batch_put_after_index(p, b->after_index);
	return (size_t)(p - out);
}

void lora_batch_pack_exact(const Lora__MutationBatch *b, uint8_t *out,
                           size_t len)
{
	size_t wrote = lora_batch_pack(b, out);
	LORA_ASSERT(wrote == len);
}
