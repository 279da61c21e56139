/* native_depth.c - test tool: sends one native-protocol RunRequest whose
 * parameter $p is nested DEPTH lists (or maps) deep, written byte by byte
 * (protobuf-c's own pack would recurse as deeply), and prints the answer.
 *
 *   native_depth CLIENT_ADDR DEPTH list|map|cut QUERY
 *
 * "cut" sends the list request without its last byte (malformed). Prints
 * "error CODE MESSAGE" or "ok ROWS DEPTH" (the depth of the first cell);
 * exits 0 when an answer came back, 1 when none did.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "lora_pb.h"
#include "wire_build.h"

#define NATIVE_TIMEOUT_MS 20000

/* Request{run: {query, params: [{name: "p", value}]}} */
static void build(struct wire *w, long depth, int map, const char *query)
{
	wb_value(w, map ? WB_MAP : WB_LIST, depth);
	wb_wrap(w, 2); /* Param.value */
	wb_string(w, 1, "p");
	wb_wrap(w, 2); /* RunRequest.params */
	wb_string(w, 1, query);
	wb_wrap(w, 1); /* Request.run */
}

static int print_answer(const uint8_t *b, size_t len)
{
	if (lora_pb_check(LORA_PB_RESPONSE, b, len, LORA_RESULT_DEPTH_MAX)) {
		printf("bad answer\n");
		return 1;
	}
	Lora__Response *r = lora__response__unpack(&lora_pb_allocator, len, b);
	if (r == NULL) {
		printf("bad answer\n");
		return 1;
	}
	if (r->error)
		printf("error %s %s\n", r->error->code, r->error->message);
	else
		printf("ok %zu %d\n", r->n_rows,
		       r->n_rows && r->rows[0]->n_values
		           ? lora_value_depth(r->rows[0]->values[0],
		                              LORA_RESULT_DEPTH_MAX)
		           : -1);
	lora__response__free_unpacked(r, &lora_pb_allocator);
	return 0;
}

/* The handshake (authentication is on) with LORA_USER / LORA_PASSWORD;
 * nothing when LORA_USER is not set. */
static int handshake(nng_socket sock)
{
	const char *user = getenv("LORA_USER");
	if (user == NULL || user[0] == '\0')
		return 0;
	Lora__AuthRequest a = LORA__AUTH_REQUEST__INIT;
	a.user = (char *)user;
	a.password = getenv("LORA_PASSWORD") ? getenv("LORA_PASSWORD") : "";
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_AUTH;
	req.auth = &a;
	uint8_t buf[4096];
	size_t len = lora__request__get_packed_size(&req);
	if (len > sizeof buf)
		return NNG_EINVAL;
	lora__request__pack(&req, buf);
	void *ans = NULL;
	size_t alen = 0;
	int rv = nng_send(sock, buf, len, 0);
	if (rv == 0)
		rv = nng_recv(sock, &ans, &alen, NNG_FLAG_ALLOC);
	if (ans)
		nng_free(ans, alen);
	return rv;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr,
		        "usage: %s CLIENT_ADDR DEPTH list|map|cut QUERY\n",
		        argv[0]);
		return 2;
	}
	struct wire w;
	build(&w, strtol(argv[2], NULL, 10), !strcmp(argv[3], "map"), argv[4]);
	size_t len = wb_len(&w) - (strcmp(argv[3], "cut") ? 0 : 1);
	char url[256];
	snprintf(url, sizeof url, "tcp://%s", argv[1]);
	nng_socket sock;
	void *ans = NULL;
	size_t alen = 0;
	int rv = nng_req0_open(&sock);
	if (rv == 0)
		rv = nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO,
		                       NATIVE_TIMEOUT_MS);
	if (rv == 0)
		rv = nng_dial(sock, url, NULL, 0);
	if (rv == 0)
		rv = handshake(sock);
	if (rv == 0)
		rv = nng_send(sock, (void *)wb_data(&w), len, 0);
	if (rv == 0)
		rv = nng_recv(sock, &ans, &alen, NNG_FLAG_ALLOC);
	wb_free(&w);
	if (rv != 0) {
		printf("no answer from %s: %s\n", url, nng_strerror(rv));
		return 1;
	}
	rv = print_answer(ans, alen);
	nng_free(ans, alen);
	nng_close(sock);
	return rv;
}
