/* tck_feature.c - Gherkin reader for TCK feature files (see tck_feature.h).
 *
 * The file is read whole and split into lines. A first pass collects the
 * Background, each Scenario / Scenario Outline with its steps and its
 * Examples tables; a second pass expands outlines into one scenario per
 * example row, substituting <placeholders> in the name, step texts, doc
 * strings and table cells.
 */
#include "tck_feature.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora.h"

struct raw_scenario {
	struct tck_scenario s; /* steps, tags, name, line (not expanded) */
	int outline;
	struct tck_table *examples; /* one table per Examples block */
	size_t n_examples;
};

struct reader {
	const char *path;
	char **lines;
	size_t n_lines;
	size_t at;
	char *errmsg;
};

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void *grow(void *arr, size_t n, size_t size)
{
	return lora_realloc(arr, (n + 1) * size);
}

static void table_free(struct tck_table *t)
{
	for (size_t r = 0; r < t->n_rows; r++) {
		for (size_t c = 0; c < t->n_cols[r]; c++)
			lora_free(t->cells[r][c]);
		lora_free(t->cells[r]);
	}
	lora_free(t->cells);
	lora_free(t->n_cols);
	memset(t, 0, sizeof(*t));
}

static void step_free(struct tck_step *st)
{
	lora_free(st->keyword);
	lora_free(st->text);
	lora_free(st->doc);
	table_free(&st->table);
}

static void scenario_free(struct tck_scenario *s)
{
	for (size_t k = 0; k < s->n_steps; k++)
		step_free(&s->steps[k]);
	for (size_t k = 0; k < s->n_tags; k++)
		lora_free(s->tags[k]);
	lora_free(s->steps);
	lora_free(s->tags);
	lora_free(s->name);
}

void tck_feature_free(struct tck_feature *f)
{
	if (!f)
		return;
	for (size_t k = 0; k < f->n_scenarios; k++)
		scenario_free(&f->scenarios[k]);
	lora_free(f->scenarios);
	lora_free(f->name);
	lora_free(f->path);
	lora_free(f);
}

int tck_scenario_has_tag(const struct tck_scenario *s, const char *tag)
{
	for (size_t k = 0; k < s->n_tags; k++)
		if (strcmp(s->tags[k], tag) == 0)
			return 1;
	return 0;
}

/* ---- reading lines ----------------------------------------------------- */

static int read_lines(struct reader *rd, char **text_out)
{
	FILE *f = fopen(rd->path, "rb");
	char *text;
	long size;

	if (!f)
		return lora_errf(LORA_EIO, rd->errmsg, "%s: cannot open",
		                 rd->path);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (size < 0 || (unsigned long)size > TCK_FEATURE_BYTES_MAX) {
		fclose(f);
		return lora_errf(LORA_ELIMIT, rd->errmsg, "%s: too large",
		                 rd->path);
	}
	text = lora_malloc((size_t)size + 1);
	if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) {
		fclose(f);
		lora_free(text);
		return lora_errf(LORA_EIO, rd->errmsg, "%s: cannot read",
		                 rd->path);
	}
	fclose(f);
	text[size] = '\0';
	for (char *p = text; p;) {
		char *nl = strchr(p, '\n');
		char **lines = grow(rd->lines, rd->n_lines, sizeof(char *));

		if (!lines) {
			lora_free(text);
			return LORA_ENOMEM;
		}
		rd->lines = lines;
		if (nl)
			*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		rd->lines[rd->n_lines++] = p;
		p = nl ? nl + 1 : NULL;
	}
	*text_out = text;
	return 0;
}

static int syntax_error(struct reader *rd, const char *what)
{
	return lora_errf(LORA_EINVAL, rd->errmsg, "%s:%zu: %s", rd->path,
	                 rd->at + 1, what);
}

/* ---- tables ------------------------------------------------------------ */

/* Splits "| a | b\|c |" into unescaped, trimmed cells. */
static int split_row(const char *line, char ***cells_out, size_t *n_out)
{
	const char *p = strchr(line, '|') + 1;
	char **cells = NULL;
	size_t n = 0;
	struct lora_buf cell = {0};

	for (; *p && n < TCK_TABLE_COLS_MAX; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			if (*p == 'n') {
				lora_buf_putc(&cell, '\n');
			} else if (*p == '|' || *p == '\\') {
				lora_buf_putc(&cell, *p);
			} else { /* not a Gherkin escape: kept as written */
				lora_buf_putc(&cell, '\\');
				lora_buf_putc(&cell, *p);
			}
			continue;
		}
		if (*p != '|') {
			lora_buf_putc(&cell, *p);
			continue;
		}
		char **c = grow(cells, n, sizeof(char *));

		if (!c)
			break;
		cells = c;
		lora_buf_putc(&cell, '\0');
		cells[n++] = lora_strdup(trim(cell.data));
		lora_buf_reset(&cell);
	}
	lora_buf_free(&cell);
	*cells_out = cells;
	*n_out = n;
	return 0;
}

/* Reads consecutive table rows (skipping comments) into t. */
static int read_table(struct reader *rd, struct tck_table *t)
{
	while (rd->at < rd->n_lines) {
		char *line = trim(rd->lines[rd->at]);
		char ***cells;
		size_t *n_cols;

		if (*line == '#') {
			rd->at++;
			continue;
		}
		if (*line != '|')
			break;
		cells = grow(t->cells, t->n_rows, sizeof(*cells));
		if (!cells)
			return LORA_ENOMEM;
		t->cells = cells;
		n_cols = grow(t->n_cols, t->n_rows, sizeof(*n_cols));
		if (!n_cols)
			return LORA_ENOMEM;
		t->n_cols = n_cols;
		split_row(line, &t->cells[t->n_rows], &t->n_cols[t->n_rows]);
		t->n_rows++;
		rd->at++;
	}
	return 0;
}

/* Reads a doc string; rd->at is on the opening line. */
static int read_doc(struct reader *rd, char **out)
{
	const char *open = rd->lines[rd->at];
	size_t indent = strspn(open, " \t");
	char fence[4] = {0};
	struct lora_buf b = {0};

	memcpy(fence, open + indent, 3);
	for (rd->at++; rd->at < rd->n_lines; rd->at++) {
		const char *line = rd->lines[rd->at];
		size_t lead = strspn(line, " \t");

		if (strncmp(line + lead, fence, 3) == 0) {
			rd->at++;
			lora_buf_puts(&b, "");
			*out = lora_buf_take(&b);
			return *out ? 0 : LORA_ENOMEM;
		}
		if (b.len || b.data)
			lora_buf_putc(&b, '\n');
		lora_buf_puts(&b, line + (lead < indent ? lead : indent));
	}
	lora_buf_free(&b);
	return syntax_error(rd, "unterminated doc string");
}

/* ---- steps and scenarios ----------------------------------------------- */

static const char *const step_keywords[] = {"Given ", "When ", "Then ",
                                            "And ",   "But ",  "* "};

static const char *step_keyword(const char *line)
{
	for (size_t k = 0; k < sizeof(step_keywords) / sizeof(char *); k++)
		if (starts_with(line, step_keywords[k]))
			return step_keywords[k];
	return NULL;
}

/* Index of the next line that is neither blank nor a comment. */
static size_t next_content(struct reader *rd, size_t at)
{
	while (at < rd->n_lines) {
		const char *l = rd->lines[at] + strspn(rd->lines[at], " \t");

		if (*l && *l != '#')
			break;
		at++;
	}
	return at;
}

static int read_step(struct reader *rd, const char *kw, const char *line,
                     struct tck_scenario *s)
{
	struct tck_step *steps = grow(s->steps, s->n_steps, sizeof(*steps));
	struct tck_step *st;
	char *text;
	size_t at;

	if (!steps)
		return LORA_ENOMEM;
	s->steps = steps;
	st = memset(&s->steps[s->n_steps++], 0, sizeof(*st));
	st->line = (int)rd->at + 1;
	st->keyword = lora_strndup(kw, strlen(kw) - 1);
	text = lora_strdup(line + strlen(kw));
	if (!st->keyword || !text)
		return LORA_ENOMEM;
	st->text = lora_strdup(trim(text));
	lora_free(text);
	rd->at++;
	at = next_content(rd, rd->at);
	if (at < rd->n_lines) {
		const char *l = rd->lines[at] + strspn(rd->lines[at], " \t");

		if (starts_with(l, "\"\"\"") || starts_with(l, "```")) {
			rd->at = at;
			return read_doc(rd, &st->doc);
		}
		if (*l == '|') {
			rd->at = at;
			st->has_table = 1;
			return read_table(rd, &st->table);
		}
	}
	return st->text ? 0 : LORA_ENOMEM;
}

static int add_tags(char ***tags, size_t *n, const char *line)
{
	char *copy = lora_strdup(line), *save = NULL;
	int rc = copy ? 0 : LORA_ENOMEM;

	for (char *w = copy ? strtok_r(copy, " \t", &save) : NULL; w && rc == 0;
	     w = strtok_r(NULL, " \t", &save)) {
		char **t;

		if (*w == '#')
			break;
		t = grow(*tags, *n, sizeof(char *));
		if (!t) {
			rc = LORA_ENOMEM;
			break;
		}
		*tags = t;
		(*tags)[*n] = lora_strdup(w + (*w == '@'));
		if (!(*tags)[(*n)++])
			rc = LORA_ENOMEM;
	}
	lora_free(copy);
	return rc;
}

struct doc {
	char *name;
	char **tags; /* feature tags */
	size_t n_tags;
	char **pending; /* tags waiting for the next keyword */
	size_t n_pending;
	struct raw_scenario background;
	struct raw_scenario *raws;
	size_t n_raws;
	struct raw_scenario *cur;
};

static void doc_free(struct doc *d)
{
	for (size_t k = 0; k < d->n_tags; k++)
		lora_free(d->tags[k]);
	for (size_t k = 0; k < d->n_pending; k++)
		lora_free(d->pending[k]);
	for (size_t k = 0; k <= d->n_raws; k++) {
		struct raw_scenario *r = k ? &d->raws[k - 1] : &d->background;

		scenario_free(&r->s);
		for (size_t e = 0; e < r->n_examples; e++)
			table_free(&r->examples[e]);
		lora_free(r->examples);
	}
	lora_free(d->raws);
	lora_free(d->tags);
	lora_free(d->pending);
	lora_free(d->name);
}

/* Starts a scenario: tags are the feature's plus the pending ones. */
static int begin_scenario(struct reader *rd, struct doc *d, const char *name,
                          int outline)
{
	struct raw_scenario *raws = grow(d->raws, d->n_raws, sizeof(*raws));
	struct raw_scenario *r;

	if (!raws)
		return LORA_ENOMEM;
	d->raws = raws;
	r = memset(&d->raws[d->n_raws++], 0, sizeof(*r));
	r->outline = outline;
	r->s.line = (int)rd->at + 1;
	r->s.name = lora_strdup(name);
	r->s.tags = d->pending;
	r->s.n_tags = d->n_pending;
	d->pending = NULL;
	d->n_pending = 0;
	for (size_t k = 0; k < d->n_tags; k++) {
		char **t = grow(r->s.tags, r->s.n_tags, sizeof(char *));

		if (!t)
			return LORA_ENOMEM;
		r->s.tags = t;
		r->s.tags[r->s.n_tags] = lora_strdup(d->tags[k]);
		if (!r->s.tags[r->s.n_tags++])
			return LORA_ENOMEM;
	}
	d->cur = r;
	rd->at++;
	return r->s.name ? 0 : LORA_ENOMEM;
}

static int begin_examples(struct reader *rd, struct doc *d)
{
	struct raw_scenario *r = d->cur;
	struct tck_table *ex;

	if (!r || !r->outline)
		return syntax_error(rd, "Examples outside a Scenario Outline");
	ex = grow(r->examples, r->n_examples, sizeof(*ex));
	if (!ex)
		return LORA_ENOMEM;
	r->examples = ex;
	memset(&r->examples[r->n_examples++], 0, sizeof(*ex));
	rd->at = next_content(rd, rd->at + 1);
	return read_table(rd, &r->examples[r->n_examples - 1]);
}

static const char *after_colon(char *line)
{
	return trim(strchr(line, ':') + 1);
}

/* One non-blank, non-comment line at rd->at. */
static int read_line(struct reader *rd, struct doc *d, char *line)
{
	const char *kw = step_keyword(line);

	if (*line == '@')
		return rd->at++, add_tags(&d->pending, &d->n_pending, line);
	if (starts_with(line, "Feature:")) {
		lora_free(d->name);
		d->name = lora_strdup(after_colon(line));
		d->tags = d->pending;
		d->n_tags = d->n_pending;
		d->pending = NULL;
		d->n_pending = 0;
		return rd->at++, d->name ? 0 : LORA_ENOMEM;
	}
	if (starts_with(line, "Background:"))
		return rd->at++, d->cur = &d->background, 0;
	if (starts_with(line, "Scenario Outline:") ||
	    starts_with(line, "Scenario Template:"))
		return begin_scenario(rd, d, after_colon(line), 1);
	if (starts_with(line, "Scenario:") || starts_with(line, "Example:"))
		return begin_scenario(rd, d, after_colon(line), 0);
	if (starts_with(line, "Examples:") || starts_with(line, "Scenarios:"))
		return begin_examples(rd, d);
	if (kw && !d->cur)
		return syntax_error(rd, "step outside a scenario");
	if (kw)
		return read_step(rd, kw, line, &d->cur->s);
	if (*line == '|' || starts_with(line, "\"\"\""))
		return syntax_error(rd, "table or doc string without a step");
	rd->at++; /* free-form description text */
	return 0;
}

/* ---- expansion ----------------------------------------------------------- */

/* The placeholders of one example row: header[k] is replaced by row[k]. */
struct subst {
	char **header;
	char **row;
	size_t n;
};

/* Copy of s with every <name> of sub replaced. NULL stays NULL. */
static char *substitute(const char *s, const struct subst *sub)
{
	struct lora_buf b = {0};

	if (!s)
		return NULL;
	lora_buf_puts(&b, "");
	while (*s) {
		size_t k = sub->n;

		if (*s == '<')
			for (k = 0; k < sub->n; k++) {
				size_t len = strlen(sub->header[k]);

				if (strncmp(s + 1, sub->header[k], len) == 0 &&
				    s[1 + len] == '>')
					break;
			}
		if (k < sub->n) {
			lora_buf_puts(&b, sub->row[k]);
			s += strlen(sub->header[k]) + 2;
		} else {
			lora_buf_putc(&b, *s++);
		}
	}
	return lora_buf_take(&b);
}

static int copy_table(const struct tck_table *from, struct tck_table *to,
                      const struct subst *sub)
{
	to->n_rows = 0;
	to->cells = lora_calloc(from->n_rows + 1, sizeof(*to->cells));
	to->n_cols = lora_calloc(from->n_rows + 1, sizeof(*to->n_cols));
	if (!to->cells || !to->n_cols)
		return LORA_ENOMEM;
	for (size_t r = 0; r < from->n_rows; r++) {
		to->cells[r] = lora_calloc(from->n_cols[r] + 1, sizeof(char *));
		if (!to->cells[r])
			return LORA_ENOMEM;
		to->n_rows++;
		for (size_t c = 0; c < from->n_cols[r]; c++) {
			to->cells[r][c] = substitute(from->cells[r][c], sub);
			if (!to->cells[r][c])
				return LORA_ENOMEM;
			to->n_cols[r]++;
		}
	}
	return 0;
}

static int copy_steps(const struct tck_scenario *from, struct tck_scenario *to,
                      const struct subst *sub)
{
	for (size_t k = 0; k < from->n_steps; k++) {
		const struct tck_step *f = &from->steps[k];
		struct tck_step *t = &to->steps[to->n_steps++];

		t->line = f->line;
		t->has_table = f->has_table;
		t->keyword = lora_strdup(f->keyword);
		t->text = substitute(f->text, sub);
		t->doc = substitute(f->doc, sub);
		if (!t->keyword || !t->text || (f->doc && !t->doc))
			return LORA_ENOMEM;
		if (f->has_table && copy_table(&f->table, &t->table, sub))
			return LORA_ENOMEM;
	}
	return 0;
}

/* Appends one concrete scenario built from background + raw + sub. */
static int emit(struct tck_feature *f, const struct doc *d,
                const struct raw_scenario *r, const struct subst *sub,
                int example)
{
	struct tck_scenario *arr =
	    grow(f->scenarios, f->n_scenarios, sizeof(*arr));
	struct tck_scenario *s;
	size_t n = d->background.s.n_steps + r->s.n_steps;

	if (!arr)
		return LORA_ENOMEM;
	f->scenarios = arr;
	s = memset(&f->scenarios[f->n_scenarios++], 0, sizeof(*s));
	s->line = r->s.line;
	s->example = example;
	s->name = substitute(r->s.name, sub);
	s->steps = lora_calloc(n + 1, sizeof(*s->steps));
	s->tags = lora_calloc(r->s.n_tags + 1, sizeof(char *));
	if (!s->name || !s->steps || !s->tags)
		return LORA_ENOMEM;
	for (size_t k = 0; k < r->s.n_tags; k++) {
		s->tags[k] = lora_strdup(r->s.tags[k]);
		if (!s->tags[s->n_tags++])
			return LORA_ENOMEM;
	}
	if (copy_steps(&d->background.s, s, sub))
		return LORA_ENOMEM;
	return copy_steps(&r->s, s, sub);
}

static int expand(struct tck_feature *f, const struct doc *d)
{
	for (size_t k = 0; k < d->n_raws; k++) {
		const struct raw_scenario *r = &d->raws[k];
		struct subst none = {NULL, NULL, 0};
		int example = 0, rc = 0;

		if (!r->outline)
			rc = emit(f, d, r, &none, 0);
		for (size_t e = 0; rc == 0 && e < r->n_examples; e++) {
			const struct tck_table *t = &r->examples[e];

			for (size_t row = 1; rc == 0 && row < t->n_rows;
			     row++) {
				struct subst sub = {t->cells[0], t->cells[row],
				                    t->n_cols[0]};

				if (t->n_cols[row] < sub.n)
					sub.n = t->n_cols[row];
				rc = emit(f, d, r, &sub, ++example);
			}
		}
		if (rc)
			return rc;
	}
	return 0;
}

int tck_feature_load(const char *path, struct tck_feature **out, char *errmsg)
{
	struct reader rd = {path, NULL, 0, 0, errmsg};
	struct doc d;
	struct tck_feature *f = NULL;
	char *text = NULL;
	int rc;

	memset(&d, 0, sizeof(d));
	rc = read_lines(&rd, &text);
	while (rc == 0 && (rd.at = next_content(&rd, rd.at)) < rd.n_lines)
		rc = read_line(&rd, &d, trim(rd.lines[rd.at]));
	if (rc == 0 && !(f = lora_calloc(1, sizeof(*f))))
		rc = LORA_ENOMEM;
	if (rc == 0) {
		f->path = lora_strdup(path);
		f->name = lora_strdup(d.name ? d.name : "");
		rc = f->path && f->name ? expand(f, &d) : LORA_ENOMEM;
	}
	if (rc == LORA_ENOMEM)
		lora_errf(rc, errmsg, "%s: out of memory", path);
	doc_free(&d);
	lora_free(rd.lines);
	lora_free(text);
	if (rc) {
		tck_feature_free(f);
		return rc;
	}
	*out = f;
	return 0;
}
