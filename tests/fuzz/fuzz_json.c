/*
 * fuzz_json.c - fuzz target for the conversion of a query request's JSON
 * "params" into parameter values (node/json.c node_json_to_params), and
 * of values back into JSON (node_json_from_value).
 *
 * The input is a request body, parsed as the HTTP API parses it
 * (json_loadb with JSON_REJECT_DUPLICATES); its "params" member is
 * converted (the whole document when it has none). Checked, besides
 * "no crash, no leak, no undefined behaviour" (1e300 into an integer was
 * one):
 *   - the answer is 0, LORA_EPARAMS or LORA_ENOMEM, with a message when
 *     not 0;
 *   - what converts packs into bytes that lora_pb_check passes at
 *     LORA_VALUE_DEPTH_MAX (what a node sends to its peers and its log);
 *   - the values turned back into JSON and converted again pack into the
 *     same bytes (the HTTP answer of a parameter is the parameter).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *pack_map(const Lora__ValueMap *m, size_t *len)
{
	*len = lora__value_map__get_packed_size(m);
	uint8_t *b = malloc(*len ? *len : 1);
	lora__value_map__pack(m, b);
	return b;
}

/* m back into JSON and converted again: the same bytes. */
static void round_trip(const Lora__ValueMap *m, const uint8_t *b, size_t len)
{
	Lora__Value v = LORA__VALUE__INIT;
	v.kind_case = LORA__VALUE__KIND_MAP_VALUE;
	v.map_value = (Lora__ValueMap *)m;
	json_t *j = node_json_from_value(&v);
	if (j == NULL)
		abort(); /* within LORA_RESULT_DEPTH_MAX: must format */
	Lora__ValueMap *m2 = NULL;
	char msg[LORA_ERRMSG_BYTES] = "";
	if (node_json_to_params(j, &m2, msg) != 0)
		abort();
	size_t len2;
	uint8_t *b2 = pack_map(m2, &len2);
	if (len2 != len || memcmp(b, b2, len) != 0)
		abort();
	free(b2);
	lora__value_map__free_unpacked(m2, &lora_pb_allocator);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *doc = json_loadb((const char *)data, size,
	                         JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (doc == NULL)
		return 0;
	json_t *params = json_is_object(doc) && json_object_get(doc, "params")
	                     ? json_object_get(doc, "params")
	                     : doc;
	Lora__ValueMap *m = NULL;
	char msg[LORA_ERRMSG_BYTES] = "";
	int rc = node_json_to_params(params, &m, msg);
	if (rc != 0 && rc != LORA_EPARAMS && rc != LORA_ENOMEM)
		abort();
	if ((rc != 0) != (m == NULL) || (rc != 0 && msg[0] == '\0'))
		abort();
	if (m) {
		size_t len;
		uint8_t *b = pack_map(m, &len);
		/* the params map is not a value level (node/json.c, as the
		 * native request's parameters), but a ValueMap root is one of
		 * pb_check's: hence + 1 (a parameter nested exactly
		 * LORA_VALUE_DEPTH_MAX deep failed here: regress/json) */
		if (lora_pb_check(LORA_PB_VALUE_MAP, len ? b : NULL, len,
		                  LORA_VALUE_DEPTH_MAX + 1) != 0)
			abort();
		round_trip(m, b, len);
		free(b);
		lora__value_map__free_unpacked(m, &lora_pb_allocator);
	}
	json_decref(doc);
	return 0;
}
