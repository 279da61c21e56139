/*
 * fuzz_http.c - fuzz target for the HTTP request head parser
 * (node/http_parse.c), fed the bytes a client may send on one connection.
 *
 * Requests are parsed one after another as node/http.c does with
 * pipelined requests (head, then Content-Length body bytes). Checked,
 * besides "no crash, no read or write past the bytes":
 *   - the answer is MORE, DONE or ERROR; MORE only while no complete head
 *     arrived and the head limit is not passed;
 *   - ERROR: status 400, 411 or 413 with a message;
 *   - DONE: the head is within the bytes and the limit, the method and
 *     target are NUL-terminated strings inside it, the body within the
 *     body limit, the hop count within [0, hops max];
 *   - the parser is a pure function: one byte less than the head is MORE,
 *     and the same bytes give the same answer twice.
 * The same bytes are also decoded as the body of a batch of passed-on
 * writes and of its answer (node/batch.h): every field lies inside the
 * bytes, the fields and their lengths add up to all of them, and
 * encoding what was decoded gives the bytes back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "http_parse.h"

#define FUZZ_BODY_BYTES_MAX (1u << 20)
#define FUZZ_HOPS_MAX       2
#define FUZZ_REQUESTS_MAX   64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse_copy(const char *p, size_t n, struct node_http_head *h,
                      struct node_http_perr *e)
{
	char *buf = malloc(n ? n : 1);
	memcpy(buf, p, n);
	int rc = node_http_parse_head(buf, n, FUZZ_BODY_BYTES_MAX,
	                              FUZZ_HOPS_MAX, h, e);
	free(buf);
	return rc;
}

static void check_done(const char *buf, size_t n,
                       const struct node_http_head *h)
{
	if (h->head_bytes < 4 || h->head_bytes > n ||
	    h->head_bytes > NODE_HTTP_HEADER_BYTES_MAX || h->uri_off == 0 ||
	    h->uri_off >= h->head_bytes ||
	    h->body_bytes > FUZZ_BODY_BYTES_MAX || h->forwarded < 0 ||
	    h->forwarded > FUZZ_HOPS_MAX)
		abort();
	if (memchr(buf, '\0', h->head_bytes) == NULL ||
	    memchr(buf + h->uri_off, '\0', h->head_bytes - h->uri_off) == NULL)
		abort(); /* method or target not terminated inside the head */
	if (strchr(buf, ' ') != NULL)
		abort(); /* the method ends at the first space */
}

/* One request at buf[0, n): the parser's answer, checked. */
static int one(char *buf, size_t n, struct node_http_head *h)
{
	struct node_http_head h2;
	struct node_http_perr e = {0, 0, NULL}, e2;
	int again = parse_copy(buf, n, &h2, &e2);
	int rc = node_http_parse_head(buf, n, FUZZ_BODY_BYTES_MAX,
	                              FUZZ_HOPS_MAX, h, &e);
	if (rc != again)
		abort();
	switch (rc) {
	case NODE_HTTP_MORE:
		if (n > NODE_HTTP_HEADER_BYTES_MAX ||
		    (n >= 4 && memmem(buf, n, "\r\n\r\n", 4)))
			abort();
		break;
	case NODE_HTTP_ERROR:
		if ((e.status != 400 && e.status != 411 && e.status != 413) ||
		    e.msg == NULL || e.code == 0 || e2.status != e.status)
			abort();
		break;
	case NODE_HTTP_DONE:
		check_done(buf, n, h);
		if (memcmp(h, &h2, sizeof *h) != 0)
			abort();
		break;
	default:
		abort();
	}
	return rc;
}

/* p[0, n) inside [buf, buf + size). */
static void inside(const char *p, size_t n, const char *buf, size_t size)
{
	if (n && (p < buf || p + n > buf + size || p + n < p))
		abort();
}

static void same_bytes(struct lora_buf *b, const char *buf, size_t size)
{
	if (lora_buf_error(b) || b->len != size || memcmp(b->data, buf, size))
		abort();
	lora_buf_free(b);
}

static void batch_bodies(const char *buf, size_t size)
{
	struct node_batch_req q[NODE_BATCH_MAX];
	struct node_batch_ans a[NODE_BATCH_MAX];
	size_t n = 0;
	if (node_batch_reqs(buf, size, q, NODE_BATCH_MAX, &n) == 0) {
		struct lora_buf b = {0};
		node_batch_put_head(&b, n);
		for (size_t i = 0; i < n; i++) {
			inside(q[i].authz, q[i].authz_len, buf, size);
			inside(q[i].ident, q[i].ident_len, buf, size);
			inside(q[i].body, q[i].body_len, buf, size);
			if (q[i].hops < 1 || q[i].hops > FUZZ_HOPS_MAX)
				abort();
			node_batch_put_req(&b, &q[i]);
		}
		same_bytes(&b, buf, size); /* leading zeros are refused */
	}
	if (node_batch_answers(buf, size, a, NODE_BATCH_MAX, &n) == 0) {
		struct lora_buf b = {0};
		node_batch_put_head(&b, n);
		for (size_t i = 0; i < n; i++) {
			inside(a[i].bookmark, a[i].bookmark_len, buf, size);
			inside(a[i].body, a[i].body_len, buf, size);
			if (a[i].status != 0 &&
			    (a[i].status < 200 || a[i].status > 599))
				abort();
			node_batch_put_ans(&b, &a[i]);
		}
		same_bytes(&b, buf, size);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	batch_bodies((const char *)data, size);
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	size_t off = 0;
	for (int i = 0; i < FUZZ_REQUESTS_MAX && off < size; i++) {
		struct node_http_head h;
		char *at = buf + off;
		size_t n = size - off;
		if (one(at, n, &h) != NODE_HTTP_DONE)
			break;
		struct node_http_head hp;
		struct node_http_perr ep;
		if (parse_copy((const char *)data + off, h.head_bytes - 1, &hp,
		               &ep) != NODE_HTTP_MORE)
			abort(); /* an incomplete head is never an answer */
		if (n - h.head_bytes < h.body_bytes)
			break; /* the body has not all arrived */
		off += h.head_bytes + h.body_bytes;
	}
	free(buf);
	return 0;
}
