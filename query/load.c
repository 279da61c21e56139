/* load.c - LOAD CSV's file side: a file:// URL resolved inside the import
 * directory, read record by record through csv.c into Cypher values.
 *
 * An open file is a `struct csv_src`, listed in the statement (c->files)
 * from open to close so that cursor teardown closes whatever an error or
 * an abandoned read left open. Its window grows from CSV_WINDOW_BYTES to
 * CSV_RECORD_BYTES_MAX only when one record needs it, and is charged to
 * the statement's memory. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csv.h"
#include "qint.h"

#define CSV_WINDOW_BYTES  (64u << 10) /* first window; doubles per need */
#define CSV_URL_BYTES_MAX 4096

struct csv_src {
	struct csv_src *next, **pprev; /* c->files */
	uint64_t chunk_no;             /* c->chunk_no when it was opened */
	FILE *f;
	char name[CSV_URL_BYTES_MAX]; /* the URL, for messages */
	char path[PATH_MAX];          /* its real path, for file() */
	char *win, *text;             /* window and decoded fields */
	size_t cap, start, len;       /* window capacity, unread bytes */
	int eof;
	size_t charged;
	int headers;
	const char **hdr; /* header names, in the arena current at open */
	size_t nhdr;
	struct csv_reader r;
};

static int hex_val(char ch)
{
	return isdigit((unsigned char)ch)
	           ? ch - '0'
	           : tolower((unsigned char)ch) - 'a' + 10;
}

/* the part of a file URL below the import directory, %XX decoded; a %
 * without two hex digits, or %00 (which would end the path early), is
 * refused rather than guessed at */
static void url_path(struct qctx *c, const char *url, char *out)
{
	const char *p = url;
	if (strncasecmp(p, "file:", 5) != 0)
		qerr(c, LORA_EINVAL,
		     "LoadCsv: only file:/// URLs are supported, got '%s'",
		     url);
	p += 5;
	while (*p == '/')
		p++;
	size_t n = 0;
	for (; *p && n + 1 < PATH_MAX; p++) {
		if (*p != '%') {
			out[n++] = *p;
			continue;
		}
		if (!isxdigit((unsigned char)p[1]) ||
		    !isxdigit((unsigned char)p[2]))
			qerr(c, LORA_EINVAL,
			     "LoadCsv: bad percent escape in '%s': %% takes "
			     "two hex digits",
			     url);
		int h = hex_val(p[1]) * 16 + hex_val(p[2]);
		if (!h)
			qerr(c, LORA_EINVAL,
			     "LoadCsv: bad percent escape in '%s': %%00 (a "
			     "NUL byte) cannot be part of a path",
			     url);
		out[n++] = (char)h;
		p += 2;
	}
	out[n] = 0;
	if (!n)
		qerr(c, LORA_EINVAL, "LoadCsv: '%s' names no file", url);
}

/* resolves url inside the import directory: real path in `full` */
static void resolve_in_import(struct qctx *c, const char *url, char *full)
{
	if (!c->import_dir)
		qerr(c, LORA_EINVAL,
		     "LoadCsv: no import directory is configured, so LOAD "
		     "CSV is disabled");
	char root[PATH_MAX], rel[PATH_MAX], joined[2 * PATH_MAX + 2];
	if (!realpath(c->import_dir, root))
		qerr(c, LORA_ENOTFOUND,
		     "LoadCsv: import directory '%s' is missing (%s)",
		     c->import_dir, strerror(errno));
	url_path(c, url, rel);
	/* any `..` component is refused before the file system is asked, so
	 * a missing directory cannot turn an escape into "not found" */
	for (const char *q = rel; (q = strstr(q, "..")) != NULL; q += 2)
		if ((q == rel || q[-1] == '/') && (q[2] == 0 || q[2] == '/'))
			qerr(c, LORA_EINVAL,
			     "LoadCsv: '%s' points outside the import "
			     "directory",
			     url);
	snprintf(joined, sizeof joined, "%s/%s", root, rel);
	if (!realpath(joined, full)) {
		if (errno == ENOENT || errno == ENOTDIR)
			qerr(c, LORA_ENOTFOUND,
			     "LoadCsv: file '%s' not found in the import "
			     "directory",
			     url);
		qerr(c, LORA_EIO, "LoadCsv: cannot open '%s': %s", url,
		     strerror(errno));
	}
	/* the import directory itself passes, to be refused as a directory */
	size_t rl = strlen(root);
	if (strncmp(full, root, rl) != 0 ||
	    (full[rl] != '/' && full[rl] != 0 && !(rl == 1 && root[0] == '/')))
		qerr(c, LORA_EINVAL,
		     "LoadCsv: '%s' points outside the import directory", url);
}

/* (re)sizes the window and text buffer to cap bytes, charging the
 * difference; the unread bytes move to the front */
static void src_grow(struct qctx *c, struct csv_src *s, size_t cap)
{
	size_t need = 2 * cap;
	if (need > s->charged)
		mem_charge(c, need - s->charged);
	s->charged = need;
	char *w = lora_malloc(cap), *t = lora_malloc(cap);
	if (!w || !t) {
		lora_free(w);
		lora_free(t);
		qerr(c, LORA_ENOMEM, "LoadCsv: out of memory");
	}
	if (s->len)
		memcpy(w, s->win + s->start, s->len);
	lora_free(s->win);
	lora_free(s->text);
	s->win = w;
	s->text = t;
	s->cap = cap;
	s->start = 0;
}

/* reads more bytes into the window; 0 at end of file */
static void src_fill(struct qctx *c, struct csv_src *s)
{
	if (s->len == s->cap) {
		if (s->cap >= CSV_RECORD_BYTES_MAX)
			qerr(c, LORA_ELIMIT,
			     "LoadCsv: %s line %llu: record longer than %u "
			     "bytes",
			     s->name, (unsigned long long)s->r.line,
			     CSV_RECORD_BYTES_MAX);
		size_t cap = s->cap * 2;
		src_grow(c, s,
		         cap < CSV_RECORD_BYTES_MAX ? cap
		                                    : CSV_RECORD_BYTES_MAX);
	}
	if (s->start) {
		memmove(s->win, s->win + s->start, s->len);
		s->start = 0;
	}
	size_t n = fread(s->win + s->len, 1, s->cap - s->len, s->f);
	if (n == 0 && ferror(s->f))
		qerr(c, LORA_EIO, "LoadCsv: reading %s: %s", s->name,
		     strerror(errno));
	if (n == 0)
		s->eof = 1;
	s->len += n;
}

/* the next record into s->r / s->text; 0 at end of file */
static int src_record(struct qctx *c, struct csv_src *s)
{
	for (;;) {
		size_t used;
		int rc = csv_next(&s->r, s->win + s->start, s->len, s->eof,
		                  s->text, &used);
		s->start += used;
		s->len -= used;
		if (rc == CSV_RECORD)
			return 1;
		if (rc == CSV_END)
			return 0;
		if (rc == CSV_ERROR || rc == CSV_LIMIT)
			qerr(c, rc == CSV_LIMIT ? LORA_ELIMIT : LORA_EINVAL,
			     "LoadCsv: %s line %llu: %s", s->name,
			     (unsigned long long)s->r.err_line, s->r.msg);
		src_fill(c, s);
	}
}

/* opens a regular file for reading; anything else is refused without
 * waiting: open(2) of a FIFO blocks until a writer comes, beyond the
 * statement's time limit */
static FILE *src_open(struct qctx *c, const char *name, const char *full)
{
	int fd = lora_open_regular(full, NULL);
	if (fd < 0 && errno == EINVAL)
		qerr(c, LORA_EINVAL, "LoadCsv: '%s' is not a regular file",
		     name);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
	if (f == NULL) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		qerr(c, e == ENOENT ? LORA_ENOTFOUND : LORA_EIO,
		     "LoadCsv: cannot open '%s': %s", name, strerror(e));
	}
	return f;
}

struct hdr_col {
	const char *name;
	size_t col;
};

static int hdr_col_cmp(const void *a, const void *b)
{
	const struct hdr_col *x = a, *y = b;
	int d = strcmp(x->name, y->name);
	return d ? d : (x->col > y->col) - (x->col < y->col);
}

/* a header naming a column twice would keep one of them in every map and
 * drop the other: refused, naming the pair whose second column comes
 * first (sorting keeps this O(n log n) up to CSV_FIELDS_MAX columns) */
static void hdr_unique(struct qctx *c, struct csv_src *s)
{
	struct hdr_col *v = lora_malloc(sizeof(*v) * (s->nhdr + 1));
	if (!v)
		qerr(c, LORA_ENOMEM, "LoadCsv: out of memory");
	for (size_t j = 0; j < s->nhdr; j++)
		v[j] = (struct hdr_col){s->hdr[j], j};
	qsort(v, s->nhdr, sizeof(*v), hdr_col_cmp);
	size_t first = 0, second = SIZE_MAX;
	for (size_t j = 1; j < s->nhdr; j++)
		if (!strcmp(v[j].name, v[j - 1].name) &&
		    (j == 1 || strcmp(v[j - 1].name, v[j - 2].name)) &&
		    v[j].col < second) {
			first = v[j - 1].col;
			second = v[j].col;
		}
	lora_free(v);
	if (second != SIZE_MAX)
		qerr(c, LORA_EINVAL,
		     "LoadCsv: %s line %llu: header `%.100s` in columns %zu "
		     "and %zu",
		     s->name, (unsigned long long)s->r.rec_line, s->hdr[first],
		     first + 1, second + 1);
}

struct csv_src *load_open(struct qctx *c, struct val url, int headers,
                          char term)
{
	if (url.t != V_STR)
		qerr(c, LORA_ETYPE, "LoadCsv: the URL must be a string, got %s",
		     v_type_name(url));
	if (url.u.s->len >= CSV_URL_BYTES_MAX)
		qerr(c, LORA_ELIMIT, "LoadCsv: URL longer than %u bytes",
		     CSV_URL_BYTES_MAX);
	char full[PATH_MAX];
	resolve_in_import(c, url.u.s->s, full);
	struct csv_src *s = lora_calloc(1, sizeof(*s));
	if (!s)
		qerr(c, LORA_ENOMEM, "LoadCsv: out of memory");
	s->next = c->files;
	if (s->next)
		s->next->pprev = &s->next;
	s->pprev = &c->files;
	c->files = s;
	s->chunk_no = c->chunk_no;
	snprintf(s->name, sizeof s->name, "%s", url.u.s->s);
	snprintf(s->path, sizeof s->path, "%s", full);
	csv_init(&s->r, term);
	s->headers = headers;
	s->f = src_open(c, s->name, full);
	src_grow(c, s, CSV_WINDOW_BYTES);
	if (headers && src_record(c, s)) {
		s->nhdr = s->r.nf;
		s->hdr = ar_alloc(c, sizeof(char *) * (s->nhdr + 1));
		for (size_t j = 0; j < s->nhdr; j++)
			s->hdr[j] = ar_strndup(c, s->text + s->r.f[j].off,
			                       s->r.f[j].len);
		hdr_unique(c, s);
	}
	return s;
}

/* an unquoted empty field in a map is null; everything else a string */
static struct val field_val(struct qctx *c, struct csv_src *s, size_t j,
                            int empty_null)
{
	struct csv_field *f = &s->r.f[j];
	if (empty_null && !f->len && !f->quoted)
		return v_null();
	return v_str(c, s->text + f->off, f->len);
}

int load_next(struct qctx *c, struct csv_src *s, struct val *out,
              uint64_t *line)
{
	if (!src_record(c, s))
		return 0;
	*line = s->r.rec_line;
	if (!s->headers) {
		*out = v_list(c, s->r.nf);
		for (size_t j = 0; j < s->r.nf; j++)
			out->u.l->v[j] = field_val(c, s, j, 0);
		return 1;
	}
	*out = v_map(c, s->nhdr);
	for (size_t j = 0; j < s->nhdr; j++)
		vmap_put(c, out->u.m, s->hdr[j],
		         j < s->r.nf ? field_val(c, s, j, 1) : v_null());
	return 1;
}

const char *load_name(struct csv_src *s)
{
	return s->name;
}

const char *load_path(struct csv_src *s)
{
	return s->path;
}

void load_close(struct qctx *c, struct csv_src *s)
{
	if (!s)
		return;
	*s->pprev = s->next;
	if (s->next)
		s->next->pprev = s->pprev;
	if (s->f)
		fclose(s->f);
	lora_free(s->win);
	lora_free(s->text);
	if (c)
		mem_uncharge(c, s->charged);
	lora_free(s);
}

void load_close_all(struct qctx *c)
{
	while (c->files)
		load_close(NULL, c->files);
}

void load_close_chunk(struct qctx *c, uint64_t chunk_no)
{
	struct csv_src *s = c->files;
	while (s) {
		struct csv_src *next = s->next;
		if (s->chunk_no == chunk_no)
			load_close(c, s);
		s = next;
	}
}
