/*
 * batch.h - several passed-on writes in one request to the leader, and
 * their answers in one answer (the wire format; pure functions).
 *
 * A follower's HTTP I/O thread sends the writes that queued while its
 * earlier ones were in flight to the leader as one POST NODE_BATCH_PATH
 * (proxy.c), so that their bytes share TLS records and system calls; the
 * leader runs each as a /query request of its own (http_api.c) and
 * answers them together once the last one is answered.
 *
 * Body of the request: "LB1 <n>\n", then per write
 * "<hops> <authz bytes> <ident bytes> <body bytes>\n" and those bytes
 * (the Authorization and X-Lora-Identity values, each absent at 0 bytes,
 * and the /query body). Body of the answer (NODE_BATCH_CTYPE): "LB1
 * <n>\n", then per write in the same order "<status> <bookmark bytes>
 * <body bytes>\n" and those bytes; status 0 means "not taken": nothing
 * of that write ran, its sender sends it again on its own.
 */
#ifndef LORA_NODE_BATCH_H
#define LORA_NODE_BATCH_H

#include <stddef.h>

#include "lora.h"

#define NODE_BATCH_PATH  "/query/batch"
#define NODE_BATCH_CTYPE "application/x-lora-batch"
/* writes in one batch */
#define NODE_BATCH_MAX 32

/* One write; the strings point into the decoded body (not terminated). */
struct node_batch_req {
	int hops; /* X-Lora-Forwarded, 1..NODE_FORWARD_HOPS_MAX */
	const char *authz, *ident, *body;
	size_t authz_len, ident_len, body_len;
};

struct node_batch_ans {
	int status; /* 0: not taken; else 200..599 */
	const char *bookmark, *body;
	size_t bookmark_len, body_len;
};

/* The head of a batch of n (request or answer); then each entry. The
 * buffer's sticky error says whether it all went in. */
void node_batch_put_head(struct lora_buf *b, size_t n);
void node_batch_put_req(struct lora_buf *b, const struct node_batch_req *r);
void node_batch_put_ans(struct lora_buf *b, const struct node_batch_ans *a);

/* Decodes a whole body into out (max entries): 0 with *n, or -1 when it
 * is malformed, holds more than max, or has bytes after its last entry. */
int node_batch_reqs(const char *data, size_t len, struct node_batch_req *out,
                    size_t max, size_t *n);
int node_batch_answers(const char *data, size_t len, struct node_batch_ans *out,
                       size_t max, size_t *n);

#endif
