/*
 * fuzz_pb_check.c - fuzz target for lora_pb_check (proto/pb_check.c), the
 * walk that must pass before protobuf-c unpacks bytes from outside.
 *
 * Input: one byte choosing the message kind (byte % LORA_PB_KINDS) and the
 * depth limit ((byte / LORA_PB_KINDS) % 10, small so that limits are hit),
 * then the wire bytes. Checked, besides "no crash, no read past the end":
 *   - the answer is 0, LORA_ELIMIT or LORA_ECORRUPT;
 *   - a looser limit never turns a pass or a corrupt answer into another;
 *   - what passes unpacks (or is refused by protobuf-c) without recursing
 *     deeper than the limit, and every decoded value is within it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "lora_pb.h"

#define FUZZ_DEPTHS 10

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int within(const Lora__Value *v, int max)
{
	return lora_value_depth(v, max) <= max;
}

/* Unpacks what passed and checks the depth of every value in it. */
static void unpack_within(enum lora_pb_kind kind, const uint8_t *b, size_t n,
                          int max)
{
	ProtobufCAllocator *a = &lora_pb_allocator;
	int ok = 1;
	switch (kind) {
	case LORA_PB_VALUE: {
		Lora__Value *v = lora__value__unpack(a, n, b);
		ok = !v || within(v, max);
		if (v)
			lora__value__free_unpacked(v, a);
		break;
	}
	case LORA_PB_VALUE_MAP: {
		Lora__ValueMap *m = lora__value_map__unpack(a, n, b);
		Lora__Value v = LORA__VALUE__INIT;
		v.kind_case = LORA__VALUE__KIND_MAP_VALUE;
		v.map_value = m;
		ok = !m || within(&v, max);
		if (m)
			lora__value_map__free_unpacked(m, a);
		break;
	}
	case LORA_PB_REQUEST: {
		Lora__Request *r = lora__request__unpack(a, n, b);
		const Lora__RunRequest *run =
		    r && r->kind_case == LORA__REQUEST__KIND_RUN ? r->run
		                                                 : NULL;
		for (size_t i = 0; run && i < run->n_params; i++)
			ok &= within(run->params[i]->value, max);
		if (r)
			lora__request__free_unpacked(r, a);
		break;
	}
	case LORA_PB_RESPONSE: {
		Lora__Response *r = lora__response__unpack(a, n, b);
		for (size_t i = 0; r && i < r->n_rows; i++)
			for (size_t k = 0; k < r->rows[i]->n_values; k++)
				ok &= within(r->rows[i]->values[k], max);
		if (r)
			lora__response__free_unpacked(r, a);
		break;
	}
	default: {
		Lora__MutationBatch *m = lora__mutation_batch__unpack(a, n, b);
		ok = !m || lora_batch_depth(m, max) <= max;
		if (m)
			lora__mutation_batch__free_unpacked(m, a);
		break;
	}
	}
	if (!ok)
		abort(); /* the walk let through a value past its limit */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum lora_pb_kind kind = (enum lora_pb_kind)(data[0] % LORA_PB_KINDS);
	int max = (data[0] / LORA_PB_KINDS) % FUZZ_DEPTHS;
	const uint8_t *b = data + 1;
	size_t n = size - 1;
	int rc = lora_pb_check(kind, n ? b : NULL, n, max);
	int loose = lora_pb_check(kind, n ? b : NULL, n, LORA_RESULT_DEPTH_MAX);
	if (rc != 0 && rc != LORA_ELIMIT && rc != LORA_ECORRUPT)
		abort();
	if ((rc == 0 || rc == LORA_ECORRUPT) && loose != rc)
		abort();
	if (rc == 0)
		unpack_within(kind, b, n, max);
	return 0;
}
