/* http_parse.c - the HTTP/1.1 request head parser (see http_parse.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_parse.h"
#include "lora.h"

static int perr(struct node_http_perr *e, int status, int code, const char *msg)
{
	e->status = status;
	e->code = code;
	e->msg = msg;
	return NODE_HTTP_ERROR;
}

/* Content-Length: digits, optional trailing blanks, equal when repeated. */
static int content_length(const char *v, int *have, size_t *clen)
{
	size_t digits = strspn(v, "0123456789");
	const char *endp = v + digits;
	while (*endp == ' ' || *endp == '\t')
		endp++;
	errno = 0;
	unsigned long long l = strtoull(v, NULL, 10);
	if (errno || digits == 0 || *endp != '\0' || (*have && l != *clen))
		return -1;
	*clen = (size_t)l;
	*have = 1;
	return 0;
}

/* X-Lora-Forwarded: hops clamped to [1, hops_max] ("1" from older nodes;
 * anything unreadable counts as one hop). */
static int forwarded_hops(const char *v, int hops_max)
{
	long hops = strtol(v, NULL, 10);
	return hops < 1 ? 1 : hops > hops_max ? hops_max : (int)hops;
}

/* One "Name: value" line, NUL-terminated at p. */
static int header_line(const char *base, char *p, int hops_max,
                       struct node_http_head *h, int *have_len,
                       struct node_http_perr *e)
{
	char *colon = strchr(p, ':');
	if (colon == NULL || colon == p)
		return perr(e, 400, LORA_EINVAL, "malformed header line");
	*colon = '\0';
	char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (!strcasecmp(p, "Content-Length")) {
		if (content_length(v, have_len, &h->body_bytes) != 0)
			return perr(e, 400, LORA_EINVAL, "bad Content-Length");
	} else if (!strcasecmp(p, "Transfer-Encoding")) {
		return perr(e, 411, LORA_EINVAL,
		            "chunked bodies are not supported: send a "
		            "Content-Length");
	} else if (!strcasecmp(p, "Connection")) {
		if (strcasestr(v, "close"))
			h->keep_alive = 0;
		else if (strcasestr(v, "keep-alive"))
			h->keep_alive = 1;
	} else if (!strcasecmp(p, "X-Lora-Forwarded")) {
		h->forwarded = forwarded_hops(v, hops_max);
	} else if (!strcasecmp(p, "X-Lora-Time-Ms")) {
		/* 1 to 18 digits, then blanks: a positive number of ms */
		size_t digits = strspn(v, "0123456789");
		const char *rest = v + digits + strspn(v + digits, " \t");
		unsigned long long t =
		    digits && digits <= 18 ? strtoull(v, NULL, 10) : 0;
		if (!t || *rest)
			return perr(e, 400, LORA_EINVAL,
			            "bad X-Lora-Time-Ms: a positive number of "
			            "milliseconds");
		h->time_ms = t;
	} else if (!strcasecmp(p, "Expect")) {
		h->expect = strcasecmp(v, "100-continue") == 0;
	} else if (!strcasecmp(p, "Authorization")) {
		h->authz_off = (size_t)(v - base);
	} else if (!strcasecmp(p, "X-Lora-Identity")) {
		h->ident_off = (size_t)(v - base);
	}
	return NODE_HTTP_DONE;
}

/* The header lines of [p, end), each ending in "\r\n"; *end is NUL. */
static int parse_headers(const char *base, char *p, char *end, int hops_max,
                         struct node_http_head *h, struct node_http_perr *e)
{
	int have_len = 0, n = 0;
	while (p < end) {
		char *eol = strstr(p, "\r\n");
		if (eol == NULL || eol > end || ++n > NODE_HTTP_HEADERS_MAX)
			return perr(e, 400, LORA_EINVAL, "malformed headers");
		*eol = '\0';
		int rc = header_line(base, p, hops_max, h, &have_len, e);
		if (rc != NODE_HTTP_DONE)
			return rc;
		p = eol + 2;
	}
	return NODE_HTTP_DONE;
}

int node_http_parse_head(char *buf, size_t len, size_t body_bytes_max,
                         int hops_max, struct node_http_head *h,
                         struct node_http_perr *e)
{
	char *hend = len >= 4 ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
	if (hend == NULL && len > NODE_HTTP_HEADER_BYTES_MAX)
		return perr(e, 400, LORA_ELIMIT, "request headers too large");
	if (hend == NULL)
		return NODE_HTTP_MORE;
	memset(h, 0, sizeof *h);
	h->head_bytes = (size_t)(hend - buf) + 4;
	if (h->head_bytes > NODE_HTTP_HEADER_BYTES_MAX)
		return perr(e, 400, LORA_ELIMIT, "request headers too large");
	if (memchr(buf, '\0', h->head_bytes))
		return perr(e, 400, LORA_EINVAL,
		            "NUL byte in the request head");
	hend[2] = '\0'; /* the last header line keeps its "\r\n" */
	char *line_end = strstr(buf, "\r\n");
	*line_end = '\0';
	char *sp1 = strchr(buf, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7))
		return perr(e, 400, LORA_EINVAL, "malformed request line");
	*sp1 = *sp2 = '\0';
	h->uri_off = (size_t)(sp1 + 1 - buf);
	h->http10 = strcmp(sp2 + 1, "HTTP/1.0") == 0;
	h->keep_alive = !h->http10;
	int rc = parse_headers(buf, line_end + 2, hend + 2, hops_max, h, e);
	if (rc != NODE_HTTP_DONE)
		return rc;
	if (h->body_bytes > body_bytes_max)
		return perr(e, 413, LORA_ELIMIT,
		            "request body larger than the limit (4 MiB)");
	return NODE_HTTP_DONE;
}
