/* buf.c - growable byte buffers with a hard size limit. */
#include "lora.h"

#include <stdio.h>
#include <string.h>

static int fail(struct lora_buf *b, int rv)
{
	if (!b->err)
		b->err = rv;
	return rv;
}

int lora_buf_reserve(struct lora_buf *b, size_t extra_bytes)
{
	if (b->err)
		return b->err;
	if (extra_bytes > LORA_BUF_BYTES_MAX - b->len - 1)
		return fail(b, LORA_ELIMIT);
	size_t need = b->len + extra_bytes + 1; /* room for the NUL */
	if (need <= b->cap)
		return LORA_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	if (cap > LORA_BUF_BYTES_MAX)
		cap = LORA_BUF_BYTES_MAX;
	char *p = lora_realloc(b->data, cap);
	if (p == NULL)
		return fail(b, LORA_ENOMEM);
	b->data = p;
	b->cap = cap;
	return LORA_OK;
}

int lora_buf_append(struct lora_buf *b, const void *p, size_t n)
{
	int rv = lora_buf_reserve(b, n);
	if (rv != LORA_OK)
		return rv;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return LORA_OK;
}

int lora_buf_putc(struct lora_buf *b, char c)
{
	return lora_buf_append(b, &c, 1);
}

int lora_buf_puts(struct lora_buf *b, const char *s)
{
	return lora_buf_append(b, s, strlen(s));
}

int lora_buf_vprintf(struct lora_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return fail(b, LORA_EINVAL);
	int rv = lora_buf_reserve(b, (size_t)n);
	if (rv != LORA_OK)
		return rv;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return LORA_OK;
}

int lora_buf_printf(struct lora_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rv = lora_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rv;
}

int lora_buf_put_utf8(struct lora_buf *b, uint32_t cp)
{
	char out[4];
	size_t n;
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return LORA_EINVAL;
	if (cp < 0x80) {
		out[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		out[0] = (char)(0xF0 | (cp >> 18));
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return lora_buf_append(b, out, n);
}

void lora_buf_reset(struct lora_buf *b)
{
	b->len = 0;
	b->err = LORA_OK;
	if (b->data)
		b->data[0] = '\0';
}

void lora_buf_free(struct lora_buf *b)
{
	lora_free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = LORA_OK;
}

char *lora_buf_take(struct lora_buf *b)
{
	char *p = b->data;
	if (b->err) {
		lora_free(p);
		p = NULL;
	}
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = LORA_OK;
	return p;
}
