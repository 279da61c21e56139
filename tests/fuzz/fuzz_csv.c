/*
 * fuzz_csv.c - fuzz target for the two CSV readers that read users' files:
 * LOAD CSV's (query/csv.c, which load.c feeds a window at a time) and
 * lora-import's (storage/csv.c, here over the whole file). Input: byte 0
 * picks the field terminator (',' ';' '\t' '|'), byte 1 the window step
 * (1-64 bytes), the rest is the file. Checked, besides "no crash, no read
 * past the end":
 *  - LOAD CSV's reader gives the same records, record lines and errors
 *    whether the file comes whole or in windows that grow by the step (a
 *    file read in parts), every field it decodes lies inside the text it
 *    was given, and it consumes only what it was given;
 *  - lora-import's reader answers 0, LORA_EINVAL or LORA_ELIMIT, each
 *    error with a message and a line;
 *  - where both read the whole file without an error, and the file has no
 *    byte-order mark (which only LOAD CSV skips), they agree on every
 *    record: its line, its fields and which of them were quoted
 *    (FUZZ_CSV_SHOW=1 in the environment prints both on a mismatch).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../query/csv.h"
#include "importInt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a reader gave, as text: "R<line>" then per field "<q>:<len>:"
 * and the bytes; "E<line>:<code>" for an error; "." at the end. */
static void out_put(struct lora_buf *o, const void *p, size_t n)
{
	if (lora_buf_append(o, p, n) != 0)
		abort();
}

static void out_fmt(struct lora_buf *o, const char *fmt, uint64_t a, uint64_t b)
{
	char s[64];
	int n = snprintf(s, sizeof s, fmt, (unsigned long long)a,
	                 (unsigned long long)b);
	out_put(o, s, (size_t)n);
}

/* LOAD CSV's reader over p[0..n), the window growing by step bytes at a
 * time (step n: the whole file at once). */
static void read_windows(const char *p, size_t n, char term, size_t step,
                         struct lora_buf *o)
{
	struct csv_reader *r = malloc(sizeof *r);
	char *text = malloc(n + 1);
	if (!r || !text)
		abort();
	csv_init(r, term);
	size_t start = 0, avail = step < n ? step : n;
	for (;;) {
		int eof = start + avail == n;
		size_t used = 0;
		int rc = csv_next(r, p + start, avail, eof, text, &used);
		if (used > avail)
			abort();
		if (rc == CSV_RECORD) {
			out_fmt(o, "R%llu:%llu", r->rec_line, r->nf);
			for (size_t i = 0; i < r->nf; i++) {
				const struct csv_field *f = &r->f[i];
				if (f->off > avail || f->len > avail - f->off)
					abort();
				out_fmt(o, "|%llu:%llu:", (uint64_t)f->quoted,
				        f->len);
				out_put(o, text + f->off, f->len);
			}
		} else if (rc == CSV_MORE) {
			if (eof)
				abort(); /* nothing more to give */
		} else if (rc == CSV_END) {
			if (!eof)
				abort();
			out_put(o, ".", 1);
			break;
		} else {
			out_fmt(o, "E%llu:%llu", r->err_line,
			        (uint64_t)(rc == CSV_LIMIT));
			break;
		}
		start += used;
		avail -= used;
		if (rc == CSV_MORE || avail == 0) {
			size_t more = n - start - avail;
			avail += step < more ? step : more;
		}
	}
	free(text);
	free(r);
}

/* lora-import's reader over p[0..n): 1 when it read every record, in the
 * form read_windows writes (quoted as 1 or 0). */
static int read_import(const char *p, size_t n, char delim, struct lora_buf *o)
{
	struct sto_csv c;
	sto_csv_init(&c, p, n, delim);
	int whole = 0;
	for (;;) {
		char msg[LORA_ERRMSG_BYTES] = "";
		int done = 0;
		int rc = sto_csv_next(&c, &done, msg);
		if (rc != 0) {
			if ((rc != LORA_EINVAL && rc != LORA_ELIMIT) ||
			    !msg[0] || c.err_line == 0)
				abort();
			break;
		}
		if (done) {
			out_put(o, ".", 1);
			whole = 1;
			break;
		}
		out_fmt(o, "R%llu:%llu", c.rec_line, c.nf);
		for (size_t i = 0; i < c.nf; i++) {
			out_fmt(o,
			        "|%llu:%llu:", (uint64_t)(c.f[i].quoted != 0),
			        c.f[i].len);
			out_put(o, c.f[i].p, c.f[i].len);
		}
	}
	sto_csv_free(&c);
	return whole;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char terms[] = {',', ';', '\t', '|'};
	if (size < 2)
		return 0;
	char term = terms[data[0] % 4];
	size_t step = 1 + data[1] % 64;
	const char *p = (const char *)data + 2;
	size_t n = size - 2;
	struct lora_buf whole = {0}, parts = {0}, imp = {0};
	read_windows(p, n, term, n, &whole);
	read_windows(p, n, term, step, &parts);
	if (whole.len != parts.len || memcmp(whole.data, parts.data, whole.len))
		abort();
	int bom = n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3);
	if (read_import(p, n, term, &imp) && !bom && whole.len &&
	    whole.data[whole.len - 1] == '.' &&
	    (imp.len != whole.len || memcmp(imp.data, whole.data, imp.len))) {
		if (getenv("FUZZ_CSV_SHOW")) {
			fwrite(whole.data, 1, whole.len, stderr);
			fputs("\n--\n", stderr);
			fwrite(imp.data, 1, imp.len, stderr);
		}
		abort();
	}
	lora_buf_free(&whole);
	lora_buf_free(&parts);
	lora_buf_free(&imp);
	return 0;
}
