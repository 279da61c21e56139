/*
 * fuzz_native.c - fuzz target for the native protocol's requests
 * (node/native.c): the bytes of one request message from a client.
 *
 * Decoded as the node decodes them (node_native_decode); a Run request's
 * parameters are gathered into a map as handle_run does, and its query is
 * run with them on a small graph (fuzz_graph.h). Checked, besides "no
 * crash, no leak, no stack overflow" (parameters nested 20,000 deep was
 * one): a refused request has the code LORA_EPARAMS or LORA_EINVAL and a
 * message; what decodes holds values within LORA_VALUE_DEPTH_MAX; and the
 * run keeps the engine's contract.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_graph.h"
#include "node_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const Lora__RunRequest *run)
{
	Lora__ValueMap params = LORA__VALUE_MAP__INIT;
	Lora__MapEntry *es = calloc(run->n_params + 1, sizeof *es);
	Lora__MapEntry **ep = calloc(run->n_params + 1, sizeof *ep);
	for (size_t i = 0; i < run->n_params; i++) {
		lora__map_entry__init(&es[i]);
		es[i].key = run->params[i]->name;
		es[i].value = run->params[i]->value;
		ep[i] = &es[i];
		if (lora_value_depth(es[i].value, LORA_VALUE_DEPTH_MAX) >
		    LORA_VALUE_DEPTH_MAX)
			abort();
	}
	params.entries = ep;
	params.n_entries = run->n_params;
	if (run->query)
		fz_query(run->query, &params);
	free(es);
	free(ep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int code = 0;
	char msg[LORA_ERRMSG_BYTES] = "";
	Lora__Request *req =
	    node_native_decode(size ? data : NULL, size, &code, msg);
	if (req == NULL) {
		if ((code != LORA_EPARAMS && code != LORA_EINVAL) || !msg[0])
			abort();
		return 0;
	}
	if (req->kind_case == LORA__REQUEST__KIND_RUN && req->run)
		run(req->run);
	lora__request__free_unpacked(req, &lora_pb_allocator);
	return 0;
}
