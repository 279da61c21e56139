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

#define NATIVE_TIMEOUT_MS 20000

struct wire {
	uint8_t *p;
	size_t cap, start; /* the message is p[start..cap) */
};

static void prepend(struct wire *w, const void *b, size_t n)
{
	if (w->start < n) {
		size_t len = w->cap - w->start, cap = w->cap * 2 + n;
		uint8_t *p = malloc(cap);
		if (p == NULL)
			exit(1);
		if (len)
			memcpy(p + cap - len, w->p + w->start, len);
		free(w->p);
		w->p = p;
		w->cap = cap;
		w->start = cap - len;
	}
	w->start -= n;
	memcpy(w->p + w->start, b, n);
}

static void varint(struct wire *w, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	prepend(w, b, n);
}

/* Everything so far becomes length-delimited field `field`. */
static void wrap(struct wire *w, unsigned field)
{
	varint(w, w->cap - w->start);
	varint(w, (uint64_t)field << 3 | 2);
}

/* A string field in front of what is there. */
static void string_field(struct wire *w, unsigned field, const char *s)
{
	prepend(w, s, strlen(s));
	varint(w, strlen(s));
	varint(w, (uint64_t)field << 3 | 2);
}

static void build(struct wire *w, long depth, int map, const char *query)
{
	const uint8_t one[] = {3 << 3, 2}; /* Value{int_value: 1} */
	prepend(w, one, sizeof one);
	for (long i = 0; i < depth; i++) {
		if (map) { /* Value{map_value: {entries: {key: "k", value}}} */
			wrap(w, 2);
			string_field(w, 1, "k");
			wrap(w, 1);
			wrap(w, 8);
		} else { /* Value{list_value: {items: value}} */
			wrap(w, 1);
			wrap(w, 7);
		}
	}
	wrap(w, 2); /* Param.value */
	string_field(w, 1, "p");
	wrap(w, 2); /* RunRequest.params */
	string_field(w, 1, query);
	wrap(w, 1); /* Request.run */
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

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr,
		        "usage: %s CLIENT_ADDR DEPTH list|map|cut QUERY\n",
		        argv[0]);
		return 2;
	}
	struct wire w = {NULL, 0, 0};
	build(&w, strtol(argv[2], NULL, 10), !strcmp(argv[3], "map"), argv[4]);
	size_t len = w.cap - w.start - (strcmp(argv[3], "cut") ? 0 : 1);
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
		rv = nng_send(sock, w.p + w.start, len, 0);
	if (rv == 0)
		rv = nng_recv(sock, &ans, &alen, NNG_FLAG_ALLOC);
	free(w.p);
	if (rv != 0) {
		printf("no answer from %s: %s\n", url, nng_strerror(rv));
		return 1;
	}
	rv = print_answer(ans, alen);
	nng_free(ans, alen);
	nng_close(sock);
	return rv;
}
