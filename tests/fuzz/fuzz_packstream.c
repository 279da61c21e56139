/*
 * fuzz_packstream.c - fuzz target for the PackStream decoder
 * (node/packstream.c), which reads every Bolt request from a client.
 *
 * Input: the bytes of one Bolt message (a structure and its fields).
 * Checked, besides "no crash, no read past the end, no leak":
 *   - the answer is 0, LORA_ECORRUPT, LORA_EINVAL or LORA_ELIMIT;
 *   - a decoded message's fields encode again, and the encoding decodes
 *     to the same values (a round trip through ps_put_value); a map
 *     field entry by entry, as its entries (parameters) are the values
 *     and the map no level of theirs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "packstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const Lora__Value *a, const Lora__Value *b)
{
	size_t la = lora__value__get_packed_size(a);
	if (la != lora__value__get_packed_size(b))
		return 0;
	uint8_t *x = malloc(la + 1), *y = malloc(la + 1);
	lora__value__pack(a, x);
	lora__value__pack(b, y);
	int eq = memcmp(x, y, la) == 0;
	free(x);
	free(y);
	return eq;
}

/* v encodes, and its encoding decodes to v again */
static void round_trip(const Lora__Value *v, const struct ps_dec *d,
                       const struct ps_enc *e)
{
	struct lora_buf b = {0};
	char err[LORA_ERRMSG_BYTES];
	if (ps_put_value(&b, v, e) != 0)
		abort();
	Lora__Value *back = NULL;
	if (ps_decode_value((const uint8_t *)b.data, b.len, d, &back, err) !=
	        0 ||
	    !same(v, back))
		abort();
	lora__value__free_unpacked(back, &lora_pb_allocator);
	lora_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ps_dec d = {.zone = NULL};
	struct ps_enc e = {.element_ids = 1, .utc_datetime = 1};
	struct ps_message m;
	char err[LORA_ERRMSG_BYTES];
	int rc = ps_decode_message(data, size, &d, &m, err);
	if (rc != 0 && rc != LORA_ECORRUPT && rc != LORA_EINVAL &&
	    rc != LORA_ELIMIT && rc != LORA_ENOMEM)
		abort();
	if (rc)
		return 0;
	for (uint32_t i = 0; i < m.n_fields; i++) {
		const Lora__Value *f = m.fields[i];
		int map = f->kind_case == LORA__VALUE__KIND_MAP_VALUE;
		if (!map || lora_value_depth(f, PS_DEPTH_MAX) <= PS_DEPTH_MAX)
			round_trip(f, &d, &e);
		for (size_t k = 0; map && k < f->map_value->n_entries; k++)
			round_trip(f->map_value->entries[k]->value, &d, &e);
	}
	ps_message_free(&m);
	return 0;
}
