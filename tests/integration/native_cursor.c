/* native_cursor.c - test tool: one native-protocol client connection that
 * runs a statement and keeps its cursor for as long as the test wants.
 *
 *   native_cursor ADDR QUERY BATCH_ROWS [MEMORY_BYTES]
 *
 * Sends a RunRequest (batch_rows, memory_bytes) to the native port ADDR
 * and prints one line, "ms=<latency> rows=<n> has_more=<0|1>
 * cursor=<id> error=<code or ->". Then reads commands from stdin, one per
 * line: "fetch N" (prints the same line for a FetchRequest), "close"
 * (CloseRequest, prints "closed"). At end of input it exits without
 * closing the cursor: the connection just goes away, as a crashed or
 * careless client's would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "lora.h"
#include "lora_pb.h"

#define NC_TIMEOUT_MS 60000

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Sends req, prints the answer's line; the cursor id of the answer. */
static uint64_t call(nng_socket s, const Lora__Request *req)
{
	size_t len = lora__request__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		exit(1);
	lora__request__pack(req, buf);
	double t0 = now_ms();
	int rv = nng_send(s, buf, len, 0);
	free(buf);
	void *ans = NULL;
	size_t alen = 0;
	if (rv == 0)
		rv = nng_recv(s, &ans, &alen, NNG_FLAG_ALLOC);
	if (rv != 0) {
		printf("error=transport:%s\n", nng_strerror(rv));
		fflush(stdout);
		exit(1);
	}
	double ms = now_ms() - t0;
	Lora__Response *r = lora__response__unpack(NULL, alen, ans);
	nng_free(ans, alen);
	if (r == NULL) {
		printf("error=undecodable\n");
		exit(1);
	}
	printf("ms=%.1f rows=%zu has_more=%d cursor=%llu error=%s\n", ms,
	       r->n_rows, (int)r->has_more, (unsigned long long)r->cursor_id,
	       r->error ? r->error->code : "-");
	fflush(stdout);
	uint64_t id = r->cursor_id;
	lora__response__free_unpacked(r, NULL);
	return id;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr,
		        "usage: %s ADDR QUERY BATCH_ROWS [MEMORY_BYTES]\n",
		        argv[0]);
		return 2;
	}
	char url[256];
	snprintf(url, sizeof url, "tcp://%s", argv[1]);
	nng_socket s;
	int rv = nng_req0_open(&s);
	if (rv == 0)
		rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, NC_TIMEOUT_MS);
	if (rv == 0)
		rv = nng_dial(s, url, NULL, 0);
	if (rv != 0) {
		fprintf(stderr, "dial %s: %s\n", url, nng_strerror(rv));
		return 1;
	}
	Lora__RunRequest run = LORA__RUN_REQUEST__INIT;
	run.query = argv[2];
	run.batch_rows = (uint32_t)strtoul(argv[3], NULL, 10);
	run.memory_bytes = argc == 5 ? strtoull(argv[4], NULL, 10) : 0;
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_RUN;
	req.run = &run;
	uint64_t id = call(s, &req);
	char line[64];
	while (fgets(line, sizeof line, stdin)) {
		Lora__FetchRequest f = LORA__FETCH_REQUEST__INIT;
		Lora__CloseRequest c = LORA__CLOSE_REQUEST__INIT;
		Lora__Request q = LORA__REQUEST__INIT;
		if (!strncmp(line, "fetch", 5)) {
			f.cursor_id = id;
			f.batch_rows = (uint32_t)strtoul(line + 5, NULL, 10);
			q.kind_case = LORA__REQUEST__KIND_FETCH;
			q.fetch = &f;
			call(s, &q);
		} else if (!strncmp(line, "close", 5)) {
			c.cursor_id = id;
			q.kind_case = LORA__REQUEST__KIND_CLOSE;
			q.close = &c;
			call(s, &q);
			printf("closed\n");
			fflush(stdout);
		}
	}
	nng_close(s);
	return 0;
}
