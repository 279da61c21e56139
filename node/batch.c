/*
 * batch.c - the batch wire format (batch.h).
 */
#include <stdint.h>
#include <string.h>

#include "batch.h"
#include "http.h"

#define BATCH_MAGIC "LB1 "

void node_batch_put_head(struct lora_buf *b, size_t n)
{
	(void)lora_buf_printf(b, BATCH_MAGIC "%zu\n", n);
}

void node_batch_put_req(struct lora_buf *b, const struct node_batch_req *r)
{
	(void)lora_buf_printf(b, "%d %zu %zu %zu\n", r->hops, r->authz_len,
	                      r->ident_len, r->body_len);
	(void)lora_buf_append(b, r->authz, r->authz_len);
	(void)lora_buf_append(b, r->ident, r->ident_len);
	(void)lora_buf_append(b, r->body, r->body_len);
}

void node_batch_put_ans(struct lora_buf *b, const struct node_batch_ans *a)
{
	(void)lora_buf_printf(b, "%d %zu %zu\n", a->status, a->bookmark_len,
	                      a->body_len);
	(void)lora_buf_append(b, a->bookmark, a->bookmark_len);
	(void)lora_buf_append(b, a->body, a->body_len);
}

/* A reader over one body. */
struct rd {
	const char *p, *end;
};

/* A decimal number of at most 10 digits, without leading zeros (one
 * encoding per batch), then the separator sep. */
static int rd_num(struct rd *r, char sep, uint64_t *v)
{
	size_t digits = 0;
	const char *first = r->p;
	*v = 0;
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
		if (++digits > 10)
			return -1;
		*v = *v * 10 + (uint64_t)(*r->p++ - '0');
	}
	if (digits == 0 || (digits > 1 && *first == '0') || r->p == r->end ||
	    *r->p != sep)
		return -1;
	r->p++;
	return 0;
}

/* len bytes at the reader into *s. */
static int rd_bytes(struct rd *r, uint64_t len, const char **s, size_t *n)
{
	if ((uint64_t)(r->end - r->p) < len)
		return -1;
	*s = r->p; /* never NULL, also for no bytes */
	*n = (size_t)len;
	r->p += len;
	return 0;
}

static int rd_head(struct rd *r, size_t max, size_t *n)
{
	uint64_t cnt;
	if ((size_t)(r->end - r->p) < sizeof BATCH_MAGIC - 1 ||
	    memcmp(r->p, BATCH_MAGIC, sizeof BATCH_MAGIC - 1) != 0)
		return -1;
	r->p += sizeof BATCH_MAGIC - 1;
	if (rd_num(r, '\n', &cnt) != 0 || cnt == 0 || cnt > max)
		return -1;
	*n = (size_t)cnt;
	return 0;
}

int node_batch_reqs(const char *data, size_t len, struct node_batch_req *out,
                    size_t max, size_t *n)
{
	struct rd r = {data, data + len};
	if (rd_head(&r, max, n) != 0)
		return -1;
	for (size_t i = 0; i < *n; i++) {
		uint64_t hops, al, il, bl;
		struct node_batch_req *q = &out[i];
		if (rd_num(&r, ' ', &hops) != 0 || rd_num(&r, ' ', &al) != 0 ||
		    rd_num(&r, ' ', &il) != 0 || rd_num(&r, '\n', &bl) != 0 ||
		    hops < 1 || hops > NODE_FORWARD_HOPS_MAX ||
		    rd_bytes(&r, al, &q->authz, &q->authz_len) != 0 ||
		    rd_bytes(&r, il, &q->ident, &q->ident_len) != 0 ||
		    rd_bytes(&r, bl, &q->body, &q->body_len) != 0)
			return -1;
		q->hops = (int)hops;
	}
	return r.p == r.end ? 0 : -1;
}

int node_batch_answers(const char *data, size_t len, struct node_batch_ans *out,
                       size_t max, size_t *n)
{
	struct rd r = {data, data + len};
	if (rd_head(&r, max, n) != 0)
		return -1;
	for (size_t i = 0; i < *n; i++) {
		uint64_t st, bkl, bl;
		struct node_batch_ans *a = &out[i];
		if (rd_num(&r, ' ', &st) != 0 || rd_num(&r, ' ', &bkl) != 0 ||
		    rd_num(&r, '\n', &bl) != 0 ||
		    (st != 0 && (st < 200 || st > 599)) ||
		    rd_bytes(&r, bkl, &a->bookmark, &a->bookmark_len) != 0 ||
		    rd_bytes(&r, bl, &a->body, &a->body_len) != 0)
			return -1;
		a->status = (int)st;
	}
	return r.p == r.end ? 0 : -1;
}
