/* csv.c - the RFC 4180 record reader of csv.h: a pure function over bytes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "csv.h"

void csv_init(struct csv_reader *r, char term)
{
	memset(r, 0, sizeof *r);
	r->term = term;
	r->line = 1;
}

/* field_end's answers */
enum { FE_END, FE_NEXT, FE_MORE, FE_BAD };

/* parse state of one call: the window, where we are, the line counter
 * and the line the record started on (every error names that one) */
struct scan {
	const char *b;
	size_t len, i, t;
	int eof;
	uint64_t line, rec_line;
	char *text;
};

/* rc (CSV_ERROR or CSV_LIMIT) with its message */
static int fail(struct csv_reader *r, const struct scan *s, int rc,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct csv_reader *r, const struct scan *s, int rc,
                const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
	r->err_line = s->rec_line;
	return rc;
}

/* after a field: FE_NEXT (a terminator), FE_END (a line end or eof),
 * FE_MORE (cannot tell yet) or FE_BAD (any other byte) */
static int field_end(struct csv_reader *r, struct scan *s)
{
	if (s->i >= s->len)
		return s->eof ? FE_END : FE_MORE;
	char ch = s->b[s->i];
	if (ch == r->term) {
		s->i++;
		return FE_NEXT;
	}
	if (ch == '\n') {
		s->i++;
		s->line++;
		return FE_END;
	}
	if (ch == '\r') {
		if (s->i + 1 >= s->len && !s->eof)
			return FE_MORE;
		if (s->i + 1 < s->len && s->b[s->i + 1] == '\n') {
			s->i += 2;
			s->line++;
			return FE_END;
		}
		if (s->i + 1 >= s->len) {
			s->i++;
			return FE_END;
		}
	}
	return FE_BAD;
}

/* The bytes from s->i up to the next quote (or the window's end), copied
 * to the text whole: most of a quoted field (a vector's 128 numbers, say)
 * holds none, and memchr finds the quote many bytes at a time. */
static void quoted_run(struct scan *s)
{
	if (s->i >= s->len)
		return;
	const char *p = s->b + s->i, *q = memchr(p, '"', s->len - s->i);
	size_t run = q ? (size_t)(q - p) : s->len - s->i;
	memcpy(s->text + s->t, p, run);
	for (const char *nl = memchr(p, '\n', run); nl;
	     nl = memchr(nl + 1, '\n', (size_t)(p + run - nl - 1)))
		s->line++;
	s->t += run;
	s->i += run;
}

/* a quoted field from just after its opening quote to its closing one */
static int quoted_field(struct csv_reader *r, struct scan *s)
{
	for (;;) {
		quoted_run(s);
		if (s->i >= s->len) {
			if (!s->eof)
				return CSV_MORE;
			return fail(r, s, CSV_ERROR,
			            "unterminated quoted field at end of file");
		}
		char ch = s->b[s->i];
		if (ch == '"') {
			if (s->i + 1 >= s->len && !s->eof)
				return CSV_MORE;
			if (s->i + 1 < s->len && s->b[s->i + 1] == '"') {
				s->text[s->t++] = '"';
				s->i += 2;
				continue;
			}
			s->i++;
			return CSV_RECORD;
		}
	}
}

/* an unquoted field up to (not including) its terminator or line end */
static int plain_field(struct csv_reader *r, struct scan *s)
{
	while (s->i < s->len) {
		char ch = s->b[s->i];
		if (ch == r->term || ch == '\n' || ch == '\r')
			return CSV_RECORD;
		s->text[s->t++] = ch;
		s->i++;
	}
	return s->eof ? CSV_RECORD : CSV_MORE;
}

/* one record from s->i; CSV_RECORD, CSV_MORE, CSV_ERROR or CSV_LIMIT */
static int record(struct csv_reader *r, struct scan *s)
{
	r->nf = 0;
	s->t = 0;
	for (;;) {
		if (r->nf == CSV_FIELDS_MAX)
			return fail(r, s, CSV_LIMIT,
			            "record with more than %d fields",
			            CSV_FIELDS_MAX);
		struct csv_field *f = &r->f[r->nf++];
		f->off = s->t;
		f->quoted = s->i < s->len && s->b[s->i] == '"';
		int rc;
		if (f->quoted) {
			s->i++;
			rc = quoted_field(r, s);
		} else {
			rc = plain_field(r, s);
		}
		if (rc != CSV_RECORD)
			return rc;
		f->len = s->t - f->off;
		rc = field_end(r, s);
		if (rc == FE_MORE)
			return CSV_MORE;
		if (rc == FE_BAD)
			return fail(r, s, CSV_ERROR,
			            f->quoted ? "unexpected character after a "
			                        "closing quote"
			                      : "bare carriage return in a "
			                        "field");
		if (rc == FE_END)
			return CSV_RECORD;
	}
}

static int blank_line(const struct scan *s)
{
	return s->i < s->len && (s->b[s->i] == '\n' ||
	                         (s->b[s->i] == '\r' && s->i + 1 < s->len &&
	                          s->b[s->i + 1] == '\n'));
}

int csv_next(struct csv_reader *r, const char *buf, size_t len, int eof,
             char *text, size_t *used)
{
	struct scan s = {
	    .b = buf, .len = len, .eof = eof, .line = r->line, .text = text};
	*used = 0;
	if (!r->bom_checked) {
		if (len < 3 && !eof)
			return CSV_MORE;
		if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
			s.i = 3;
	}
	while (blank_line(&s)) {
		s.i += s.b[s.i] == '\r' ? 2 : 1;
		s.line++;
	}
	/* from here the byte-order mark and the blank lines are consumed
	 * whatever comes next: kept in the window they would count against
	 * the record's byte limit */
	r->bom_checked = 1;
	r->line = s.line;
	*used = s.i;
	if (s.i >= len)
		return eof ? CSV_END : CSV_MORE;
	if (s.b[s.i] == '\r' && s.i + 1 >= len && !eof)
		return CSV_MORE;
	s.rec_line = s.line;
	int rc = record(r, &s);
	if (rc != CSV_RECORD)
		return rc;
	r->rec_line = s.rec_line;
	r->line = s.line;
	*used = s.i;
	return CSV_RECORD;
}
