/* native_cursor.c - test tool: one native-protocol client connection that
 * runs a statement and keeps its cursor for as long as the test wants.
 *
 *   native_cursor ADDR QUERY BATCH_ROWS [MEMORY_BYTES]
 *
 * Dials with TLS when LORA_CA is set (tool_tls.h). Authenticates first
 * (the handshake) with LORA_USER / LORA_PASSWORD when LORA_USER is set,
 * then sends a RunRequest (batch_rows, memory_bytes) to
 * the native port ADDR and prints one line, "ms=<latency> rows=<n>
 * has_more=<0|1> cursor=<hex name> error=<code or ->". Then reads
 * commands from stdin, one per line: "fetch N" (prints the same line for a
 * FetchRequest), "close" (CloseRequest, prints "closed"), "steal N" (the
 * same fetch from a second, authenticated connection: another client that
 * learnt the cursor's name), "as USER PASSWORD" (the handshake again on
 * this connection, as another user; prints "as USER"). At end of input it
 * exits without closing the
 * cursor: the connection just goes away, as a crashed or careless
 * client's would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "lora.h"
#include "lora_pb.h"
#include "tool_tls.h"

#define NC_TIMEOUT_MS 60000

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint8_t cursor[64];
static size_t cursor_len;

/* Sends req, prints the answer's line; keeps the answer's cursor name. */
static void call(nng_socket s, const Lora__Request *req)
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
	char hex[2 * sizeof cursor + 1] = "-";
	for (size_t i = 0; i < r->cursor.len && i < sizeof cursor; i++)
		snprintf(hex + 2 * i, 3, "%02x", r->cursor.data[i]);
	printf("ms=%.1f rows=%zu has_more=%d cursor=%s error=%s\n", ms,
	       r->n_rows, (int)r->has_more, hex,
	       r->error ? r->error->code : "-");
	fflush(stdout);
	if (r->cursor.len && r->cursor.len <= sizeof cursor) {
		memcpy(cursor, r->cursor.data, r->cursor.len);
		cursor_len = r->cursor.len;
	}
	lora__response__free_unpacked(r, NULL);
}

/* The handshake on s; exits when refused. */
static void handshake(nng_socket s, const char *user, const char *password)
{
	Lora__AuthRequest a = LORA__AUTH_REQUEST__INIT;
	a.user = (char *)user;
	a.password = (char *)password;
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_AUTH;
	req.auth = &a;
	uint8_t buf[4096];
	size_t len = lora__request__get_packed_size(&req);
	if (len > sizeof buf)
		exit(1);
	lora__request__pack(&req, buf);
	void *ans = NULL;
	size_t alen = 0;
	int rv = nng_send(s, buf, len, 0);
	if (rv == 0)
		rv = nng_recv(s, &ans, &alen, NNG_FLAG_ALLOC);
	Lora__Response *r =
	    rv == 0 ? lora__response__unpack(NULL, alen, ans) : NULL;
	if (ans)
		nng_free(ans, alen);
	if (r == NULL || r->error) {
		fprintf(stderr, "handshake refused: %s\n",
		        r && r->error ? r->error->code : "no answer");
		exit(1);
	}
	lora__response__free_unpacked(r, NULL);
}

/* A connection to addr (TLS with LORA_CA set: tool_tls.h), authenticated
 * when LORA_USER is set. */
static nng_socket connect_to(const char *addr)
{
	nng_socket s;
	int rv = nng_req0_open(&s);
	if (rv == 0)
		rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, NC_TIMEOUT_MS);
	if (rv == 0)
		rv = tool_dial(s, addr, NULL, 0);
	if (rv != 0) {
		fprintf(stderr, "dial %s: %s\n", addr, nng_strerror(rv));
		exit(1);
	}
	const char *user = getenv("LORA_USER");
	if (user && user[0])
		handshake(s, user,
		          getenv("LORA_PASSWORD") ? getenv("LORA_PASSWORD")
		                                  : "");
	return s;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr,
		        "usage: %s ADDR QUERY BATCH_ROWS [MEMORY_BYTES]\n",
		        argv[0]);
		return 2;
	}
	nng_socket s = connect_to(argv[1]);
	Lora__RunRequest run = LORA__RUN_REQUEST__INIT;
	run.query = argv[2];
	run.batch_rows = (uint32_t)strtoul(argv[3], NULL, 10);
	run.memory_bytes = argc == 5 ? strtoull(argv[4], NULL, 10) : 0;
	Lora__Request req = LORA__REQUEST__INIT;
	req.kind_case = LORA__REQUEST__KIND_RUN;
	req.run = &run;
	call(s, &req);
	char line[64];
	while (fgets(line, sizeof line, stdin)) {
		Lora__FetchRequest f = LORA__FETCH_REQUEST__INIT;
		Lora__CloseRequest c = LORA__CLOSE_REQUEST__INIT;
		Lora__Request q = LORA__REQUEST__INIT;
		f.cursor.data = cursor;
		f.cursor.len = cursor_len;
		f.batch_rows = (uint32_t)strtoul(line + 5, NULL, 10);
		q.kind_case = LORA__REQUEST__KIND_FETCH;
		q.fetch = &f;
		if (!strncmp(line, "fetch", 5)) {
			call(s, &q);
		} else if (!strncmp(line, "steal", 5)) {
			nng_socket other = connect_to(argv[1]);
			call(other, &q);
			nng_close(other);
		} else if (!strncmp(line, "as ", 3)) {
			char user[128], pw[128];
			if (sscanf(line + 3, "%127s %127s", user, pw) != 2)
				return 2;
			handshake(s, user, pw);
			printf("as %s\n", user);
			fflush(stdout);
		} else if (!strncmp(line, "close", 5)) {
			c.cursor.data = cursor;
			c.cursor.len = cursor_len;
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
