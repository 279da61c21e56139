/*
 * fuzz_cypher.c - fuzz target for the Cypher engine (query/): the input is
 * a statement's text, parsed, checked, planned and run on a small graph
 * under tight limits (fuzz_graph.h says what is checked).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_graph.h"

#define FUZZ_QUERY_BYTES_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_QUERY_BYTES_MAX)
		return 0;
	char *q = malloc(size + 1);
	memcpy(q, data, size);
	q[size] = '\0';
	fz_query(q, NULL);
	free(q);
	return 0;
}
