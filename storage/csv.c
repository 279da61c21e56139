/* csv.c - the RFC 4180 record reader and the field converters of the bulk
 * import: pure functions over bytes in memory, so that input of any shape
 * gives an error naming its line, never a crash.
 *
 * Speed matters here (a 100,000-row file with 128-dimension vectors is
 * 100 MB of text): unquoted fields are scanned with a byte-class table,
 * quoted ones with memchr, and vector coordinates of at most 7
 * significant digits are converted without strtof (see sto_csv_f32).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "importInt.h"

void sto_csv_init(struct sto_csv *c, const char *p, size_t len, char delim)
{
	memset(c, 0, sizeof(*c));
	c->p = p;
	c->end = p + len;
	c->delim = delim;
	c->line = 1;
}

void sto_csv_free(struct sto_csv *c)
{
	lora_free(c->f);
	lora_buf_free(&c->unq);
	c->f = NULL;
	c->nf = c->cap = 0;
}

static int field_push(struct sto_csv *c, const char *p, size_t len, int quoted)
{
	if (c->nf == c->cap) {
		if (c->cap >= STO_IMPORT_COLUMNS_MAX)
			return LORA_ELIMIT;
		size_t nc = c->cap ? c->cap * 2 : 16;
		struct sto_csv_field *f = lora_realloc(c->f, nc * sizeof(*f));
		if (!f)
			return LORA_ENOMEM;
		c->f = f;
		c->cap = nc;
	}
	if (len > STO_IMPORT_FIELD_BYTES_MAX)
		return LORA_ELIMIT;
	c->f[c->nf++] = (struct sto_csv_field){p, len, quoted, 0};
	return 0;
}

static size_t count_nl(const char *p, const char *end)
{
	size_t n = 0;
	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

/*
 * A quoted field starting at c->p (the opening quote). Without doubled
 * quotes the field points into the input; with them it is unescaped into
 * c->unq and recorded as quoted = 2 with its offset there (turned into a
 * pointer when the record is complete, since unq may move as it grows).
 */
static int quoted_field(struct sto_csv *c, char *errmsg)
{
	const char *start = c->p + 1, *q = start;
	int escaped = 0;
	for (;;) {
		q = memchr(q, '"', (size_t)(c->end - q));
		if (!q) {
			c->at_end = 1;
			c->err_line = c->rec_line;
			return lora_errf(
			    LORA_EINVAL, errmsg,
			    "quoted field never ends (unterminated "
			    "quote)");
		}
		if (q + 1 < c->end && q[1] == '"') {
			escaped = 1;
			q += 2;
			continue;
		}
		break;
	}
	c->line += count_nl(start, q);
	const char *after = q + 1;
	/* a line end is "\n", "\r\n", or a "\r" that ends the input (as
	 * LOAD CSV's reader has it) */
	if (after < c->end && *after != c->delim && *after != '\n' &&
	    !(*after == '\r' && (after + 1 == c->end || after[1] == '\n'))) {
		c->err_line = c->rec_line;
		return lora_errf(LORA_EINVAL, errmsg,
		                 "unexpected character after a closing quote");
	}
	c->p = after;
	if (!escaped)
		return field_push(c, start, (size_t)(q - start), 1);
	size_t off = c->unq.len;
	for (const char *s = start; s < q; s++) {
		if (lora_buf_putc(&c->unq, *s))
			return LORA_ENOMEM;
		if (*s == '"')
			s++; /* the second of a doubled quote */
	}
	int rv = field_push(c, NULL, c->unq.len - off, 2);
	if (!rv)
		c->f[c->nf - 1].off = off;
	return rv;
}

/* An unquoted field: up to the delimiter, a line break or the end. */
static int plain_field(struct sto_csv *c, char *errmsg)
{
	const char *s = c->p, *e = c->end;
	char d = c->delim;
	while (s < e && *s != d && *s != '\n' && *s != '"')
		s++;
	if (s < e && *s == '"') {
		c->err_line = c->rec_line;
		return lora_errf(LORA_EINVAL, errmsg,
		                 "quote inside an unquoted field (quote the "
		                 "whole field and double the quote)");
	}
	size_t len = (size_t)(s - c->p);
	if ((s == e || *s == '\n') && len > 0 && s[-1] == '\r')
		len--;
	int rv = field_push(c, c->p, len, 0);
	c->p = s;
	return rv;
}

static void skip_blank_lines(struct sto_csv *c)
{
	for (;;) {
		if (c->p < c->end && *c->p == '\n') {
			c->p++;
		} else if (c->end - c->p >= 2 && c->p[0] == '\r' &&
		           c->p[1] == '\n') {
			c->p += 2;
		} else {
			return;
		}
		c->line++;
	}
}

int sto_csv_next(struct sto_csv *c, int *done, char *errmsg)
{
	c->nf = 0;
	c->at_end = 0;
	lora_buf_reset(&c->unq);
	skip_blank_lines(c);
	*done = c->p >= c->end;
	if (*done) {
		c->at_end = 1;
		return 0;
	}
	c->rec_line = c->line;
	for (;;) {
		int rv = c->p < c->end && *c->p == '"' ? quoted_field(c, errmsg)
		                                       : plain_field(c, errmsg);
		if (rv == LORA_ELIMIT) {
			c->err_line = c->rec_line;
			return lora_errf(rv, errmsg,
			                 "more than %d fields or a field over "
			                 "%u bytes",
			                 STO_IMPORT_COLUMNS_MAX,
			                 STO_IMPORT_FIELD_BYTES_MAX);
		}
		if (rv)
			return rv;
		if (c->p < c->end && *c->p == c->delim) {
			c->p++;
			continue;
		}
		break;
	}
	if (c->p < c->end && *c->p == '\r')
		c->p++;
	if (c->p < c->end && *c->p == '\n') {
		c->p++;
		c->line++;
	}
	c->at_end = c->p >= c->end;
	for (size_t i = 0; i < c->nf; i++)
		if (c->f[i].quoted == 2) {
			c->f[i].p = c->unq.data + c->f[i].off;
			c->f[i].quoted = 1;
		}
	return 0;
}

/* ---- field converters ---- */

/* p..len without surrounding spaces. */
static void trim(const char **p, size_t *len)
{
	while (*len && (**p == ' ' || **p == '\t')) {
		(*p)++;
		(*len)--;
	}
	while (*len && ((*p)[*len - 1] == ' ' || (*p)[*len - 1] == '\t'))
		(*len)--;
}

/* Quotes a field for an error message: at most 40 bytes, printable. */
static void show(char out[64], const char *p, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n < 40; i++)
		out[n++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
	if (len > 40) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

int sto_csv_int(const char *p, size_t len, int64_t *out, char *errmsg)
{
	char s[64];
	trim(&p, &len);
	size_t i = 0;
	int neg = 0;
	if (i < len && (p[i] == '-' || p[i] == '+'))
		neg = p[i++] == '-';
	uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX;
	if (i == len)
		goto bad;
	for (; i < len; i++) {
		unsigned d = (unsigned char)p[i] - '0';
		if (d > 9)
			goto bad;
		if (v > (lim - d) / 10) {
			show(s, p, len);
			return lora_errf(LORA_EINVAL, errmsg,
			                 "integer out of range: \"%s\"", s);
		}
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
bad:
	show(s, p, len);
	return lora_errf(LORA_EINVAL, errmsg, "not an integer: \"%s\"", s);
}

int sto_csv_double(const char *p, size_t len, double *out, char *errmsg)
{
	char buf[128], s[64];
	trim(&p, &len);
	if (len == 0 || len >= sizeof(buf))
		goto bad;
	memcpy(buf, p, len);
	buf[len] = '\0';
	if (buf[0] == ' ' || buf[0] == '\t')
		goto bad;
	char *end;
	*out = strtod(buf, &end);
	if (end == buf + len)
		return 0;
bad:
	show(s, p, len);
	return lora_errf(LORA_EINVAL, errmsg, "not a number: \"%s\"", s);
}

int sto_csv_bool(const char *p, size_t len, int *out, char *errmsg)
{
	char s[64];
	trim(&p, &len);
	if (len == 4 && !strncasecmp(p, "true", 4)) {
		*out = 1;
		return 0;
	}
	if (len == 5 && !strncasecmp(p, "false", 5)) {
		*out = 0;
		return 0;
	}
	show(s, p, len);
	return lora_errf(LORA_EINVAL, errmsg,
	                 "not a boolean (true or false): \"%s\"", s);
}

/* Powers of ten exactly representable as float32 (5^10 < 2^24). */
static const float pow10f[] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                               1e6f, 1e7f, 1e8f, 1e9f, 1e10f};

/*
 * Fast path (Clinger): a decimal with at most 7 significant digits is
 * m * 10^e with m < 2^24, exact as a float32; for |e| <= 10, 10^|e| is
 * exact too, and one IEEE single multiplication or division of two exact
 * operands is correctly rounded, i.e. equal to strtof. Anything else
 * (more digits, exponents, inf/nan spellings) goes to strtof.
 */
int sto_csv_f32(const char *p, size_t len, float *out)
{
	size_t i = 0;
	int neg = 0, digits = 0, frac = 0, any = 0;
	uint32_t m = 0;
	if (i < len && (p[i] == '-' || p[i] == '+'))
		neg = p[i++] == '-';
	for (; i < len && p[i] >= '0' && p[i] <= '9'; i++, any = 1) {
		if (m || p[i] != '0')
			digits++;
		m = digits <= 8 ? m * 10 + (uint32_t)(p[i] - '0') : m;
	}
	if (i < len && p[i] == '.') {
		for (i++; i < len && p[i] >= '0' && p[i] <= '9'; i++, any = 1) {
			if (m || p[i] != '0')
				digits++;
			m = digits <= 8 ? m * 10 + (uint32_t)(p[i] - '0') : m;
			frac++;
		}
	}
	if (i == len && any && digits <= 7 && frac <= 10) {
		float f = (float)m / pow10f[frac];
		*out = neg ? -f : f;
		return 0;
	}
	char buf[128];
	if (len == 0 || len >= sizeof(buf) || p[0] == ' ')
		return LORA_EINVAL;
	memcpy(buf, p, len);
	buf[len] = '\0';
	char *end;
	errno = 0;
	*out = strtof(buf, &end);
	return end == buf + len ? 0 : LORA_EINVAL;
}

int sto_csv_vector(const char *p, size_t len, char sep, float *out,
                   uint32_t dim, char *errmsg)
{
	char s[64];
	trim(&p, &len);
	if (len >= 2 && p[0] == '[' && p[len - 1] == ']') {
		p++;
		len -= 2;
	}
	const char *e = p + len;
	uint32_t n = 0;
	while (p <= e) {
		const char *q = p;
		while (q < e && *q != ',' && *q != sep)
			q++;
		size_t l = (size_t)(q - p);
		trim(&p, &l);
		if (l == 0 && n == 0 && q == e)
			break; /* "[]" */
		float f;
		if (n < dim && sto_csv_f32(p, l, &f)) {
			show(s, p, l);
			return lora_errf(
			    LORA_EINVAL, errmsg,
			    "vector coordinate %u is not a number: "
			    "\"%s\"",
			    n + 1, s);
		}
		if (n < dim && !isfinite(f)) {
			show(s, p, l);
			return lora_errf(LORA_EINVAL, errmsg,
			                 "vector coordinate %u is not a finite "
			                 "float32: \"%s\"",
			                 n + 1, s);
		}
		if (n < dim)
			out[n] = f;
		n++;
		p = q + 1;
	}
	if (n != dim)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "vector has %u coordinates, the column "
		                 "declares %u",
		                 n, dim);
	return 0;
}

int sto_csv_text_ok(const char *p, size_t len)
{
	const uint8_t *s = (const uint8_t *)p, *e = s + len;
	while (s < e) {
		uint8_t b = *s;
		if (b < 0x80) {
			if (!b)
				return 0;
			s++;
			continue;
		}
		size_t n = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 0;
		if (!n || b > 0xf4 || (size_t)(e - s) < n)
			return 0;
		uint32_t cp = b & (0x7f >> n);
		for (size_t i = 1; i < n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		s += n;
	}
	return 1;
}
