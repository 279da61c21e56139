/*
 * http_parse.h - the HTTP/1.1 request head parser of node/http.c, a pure
 * function of the bytes read so far (no socket, no state between calls),
 * so that tests/fuzz/fuzz_http.c can drive it with any bytes.
 */
#ifndef LORA_NODE_HTTP_PARSE_H
#define LORA_NODE_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define NODE_HTTP_HEADER_BYTES_MAX (16u << 10) /* request line + headers */
#define NODE_HTTP_HEADERS_MAX      64          /* header lines */

enum node_http_parse_rc {
	NODE_HTTP_MORE = 0, /* no complete head yet: read more */
	NODE_HTTP_DONE = 1, /* the head parsed: struct node_http_head set */
	NODE_HTTP_ERROR = 2 /* refuse the request: struct node_http_perr set */
};

/* What the head says. The method is the NUL-terminated string at buf[0],
 * the target (path and query string) the one at buf[uri_off]; the body is
 * the body_bytes after head_bytes (it may not have arrived yet). */
struct node_http_head {
	size_t head_bytes; /* request line + headers + blank line */
	size_t body_bytes; /* Content-Length (0 without one) */
	size_t uri_off;
	int http10;       /* HTTP/1.0 */
	int keep_alive;   /* after Connection: and the version's default */
	int forwarded;    /* X-Lora-Forwarded hops, clamped to [1, hops_max];
	                   * 0 without the header */
	int expect;       /* Expect: 100-continue */
	uint64_t time_ms; /* X-Lora-Time-Ms (0 without the header) */
	/* offsets in buf of the Authorization and X-Lora-Identity values
	 * (NUL-terminated there), 0 without the header */
	size_t authz_off, ident_off;
};

/* Why a request is refused: the HTTP status, an enum lora_err code and a
 * static message. */
struct node_http_perr {
	int status;
	int code;
	const char *msg;
};

/*
 * Parses the request head at the start of buf[0, len). NODE_HTTP_MORE
 * until "\r\n\r\n" arrives (an error instead once len passes
 * NODE_HTTP_HEADER_BYTES_MAX); NODE_HTTP_DONE with *h set, or
 * NODE_HTTP_ERROR with *e set (400 malformed, 411 chunked, 413 a
 * Content-Length above body_bytes_max). Writes NULs into the first
 * head_bytes of buf (the request line and header lines are cut in place),
 * so a head is parsed once; the bytes after it are untouched.
 */
int node_http_parse_head(char *buf, size_t len, size_t body_bytes_max,
                         int hops_max, struct node_http_head *h,
                         struct node_http_perr *e);

#endif
