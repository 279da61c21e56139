/* http_int.h - private to http.c and http_api.c: routes and reply helpers. */
#ifndef LORA_NODE_HTTP_INT_H
#define LORA_NODE_HTTP_INT_H

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "node_int.h"

#define NODE_HTTP_BODY_BYTES_MAX (4u << 20) /* request body */

struct node_http;
struct node_route;

/* Answers the request (always completes aio); returns 1 on success. */
typedef int (*node_route_fn)(struct lnode *n, nng_aio *aio, nng_http_req *req,
                             const struct node_route *r);

struct node_route {
	const char *method;
	const char *path;
	const char *name; /* metrics label */
	node_route_fn fn;
	int mode; /* /query, /explain, /profile: enum qry_mode */
	struct node_http *http;
};

/* NULL-path terminated table (http_api.c). */
extern struct node_route node_routes[];

void node_http_reply(nng_aio *aio, int status, const char *ctype,
                     const char *body, size_t len, const char *bookmark,
                     const char *location);
/* Consumes j. */
void node_http_reply_json(nng_aio *aio, int status, json_t *j,
                          const char *bookmark, const char *location);
json_t *node_http_error_json(int code, const char *msg, uint32_t line,
                             uint32_t column);
void node_http_reply_error(nng_aio *aio, int code, const char *msg);

#endif
