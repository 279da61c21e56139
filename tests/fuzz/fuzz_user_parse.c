/*
 * fuzz_user_parse.c - fuzz target for qry_user_parse (query/user.c), which
 * reads statement text from clients. Input: the statement text. Checked,
 * besides "no crash, no read past the end": the answer is 0,
 * LORA_ENOTFOUND, LORA_EPARSE or LORA_ELIMIT, and a statement that parses
 * renders to text that parses back to the same statement (what a node
 * forwards to the leader).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "user.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct qry_user_stmt *a = malloc(sizeof *a), *b = malloc(sizeof *b);
	char msg[LORA_ERRMSG_BYTES];
	int rc = a && b ? qry_user_parse(text, a, msg) : LORA_ENOTFOUND;
	if (rc != 0 && rc != LORA_ENOTFOUND && rc != LORA_EPARSE &&
	    rc != LORA_ELIMIT)
		abort();
	if (rc == 0) {
		struct lora_buf out = {0};
		if (qry_user_render(a, &out) != 0)
			abort();
		if (qry_user_parse(out.data, b, msg) != 0 ||
		    memcmp(a, b, sizeof *a) != 0)
			abort();
		lora_buf_free(&out);
	}
	free(a);
	free(b);
	free(text);
	return 0;
}
