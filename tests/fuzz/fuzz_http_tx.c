/*
 * fuzz_http_tx.c - fuzz target for the parsers of explicit transactions
 * over HTTP (node/http_tx.c): node_http_tx_target on the input as a
 * request target (with POST and DELETE) and node_http_tx_body on it as a
 * body, then node_http_tx_stmt on every statement. Checked, besides "no
 * crash, no read past the end, no leak": a target that parses names an id
 * of 32 lowercase hex digits; a body is accepted or refused with
 * LORA_EINVAL; a statement parses or is refused with an error code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void target(const char *method, const char *uri)
{
	char id[NODE_XTX_ID_BYTES];
	enum node_tx_op op;
	if (node_http_tx_target(method, uri, id, &op) != 0)
		return;
	if (strlen(id) != NODE_XTX_ID_BYTES - 1 ||
	    strspn(id, "0123456789abcdef") != NODE_XTX_ID_BYTES - 1 ||
	    (op != NODE_TX_RUN && op != NODE_TX_COMMIT &&
	     op != NODE_TX_ROLLBACK))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	target("POST", text);
	target("DELETE", text);
	struct node_tx_body b;
	char msg[LORA_ERRMSG_BYTES];
	int rc = node_http_tx_body((const char *)data, size, &b, msg);
	if (rc != 0 && rc != LORA_EINVAL)
		abort();
	for (size_t i = 0; rc == 0 && i < json_array_size(b.stmts); i++) {
		struct node_exec_req req = {0};
		Lora__ValueMap *params = NULL;
		int src = node_http_tx_stmt(&b, i, &req, &params, msg);
		if (src == 0 && req.query == NULL)
			abort();
		if (params)
			lora__value_map__free_unpacked(params,
			                               &lora_pb_allocator);
	}
	json_decref(b.j);
	free(text);
	return 0;
}
