/*
 * fuzz_packstream.c - fuzz target for the PackStream decoder
 * (node/packstream.c), which reads every Bolt request from a client.
 *
 * Input: the bytes of one Bolt message (a structure and its fields).
 * Checked, besides "no crash, no read past the end, no leak":
 *   - the answer is 0, LORA_ECORRUPT, LORA_EINVAL or LORA_ELIMIT;
 *   - a decoded message's fields encode again, and the encoding decodes
 *     to the same values (a round trip through ps_put_value).
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
		struct lora_buf b = {0};
		if (ps_put_value(&b, m.fields[i], &e) != 0)
			abort();
		Lora__Value *back = NULL;
		if (ps_decode_value((const uint8_t *)b.data, b.len, &d, &back,
		                    err) != 0 ||
		    !same(m.fields[i], back))
			abort();
		lora__value__free_unpacked(back, &lora_pb_allocator);
		lora_buf_free(&b);
	}
	ps_message_free(&m);
	return 0;
}
