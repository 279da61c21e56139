/* table.c - aligned text tables for the shell, and the cluster status table. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

size_t lora_text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++) {
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++; /* count lead bytes only */
	}
	return w;
}

int lora_table_header(struct lora_table *t, const char *const *names,
                      size_t cols)
{
	LORA_ASSERT(t->cells == NULL);
	if (cols > LORA_CLI_TABLE_COLUMNS_MAX)
		return LORA_ELIMIT;
	t->cols = cols;
	t->rows = 0;
	t->cap_rows = 16;
	t->cells =
	    lora_calloc((t->cap_rows + 1) * (cols ? cols : 1), sizeof(char *));
	if (t->cells == NULL)
		return LORA_ENOMEM;
	for (size_t i = 0; i < cols; i++) {
		t->cells[i] = lora_strdup(names[i] ? names[i] : "");
		if (t->cells[i] == NULL)
			return LORA_ENOMEM;
	}
	return 0;
}

static int table_grow(struct lora_table *t)
{
	if (t->rows < t->cap_rows)
		return 0;
	size_t cap = t->cap_rows * 2;
	size_t cols = t->cols ? t->cols : 1;
	char **c = lora_realloc(t->cells, (cap + 1) * cols * sizeof(char *));
	if (c == NULL)
		return LORA_ENOMEM;
	memset(c + (t->cap_rows + 1) * cols, 0,
	       (cap - t->cap_rows) * cols * sizeof(char *));
	t->cells = c;
	t->cap_rows = cap;
	return 0;
}

/* Copies text into a cell, cut at LORA_CLI_CELL_BYTES_MAX and on one line. */
static char *cell_copy(const char *s)
{
	size_t n = strlen(s);
	int cut = n > LORA_CLI_CELL_BYTES_MAX;
	if (cut) {
		n = LORA_CLI_CELL_BYTES_MAX;
		while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--; /* do not split a UTF-8 sequence */
	}
	char *c = lora_malloc(n + 4);
	if (c == NULL)
		return NULL;
	memcpy(c, s, n);
	for (size_t i = 0; i < n; i++) {
		if (c[i] == '\n' || c[i] == '\t' || c[i] == '\r')
			c[i] = ' ';
	}
	strcpy(c + n, cut ? "..." : "");
	return c;
}

int lora_table_add(struct lora_table *t, const char *const *cells)
{
	if (t->rows >= LORA_CLI_TABLE_ROWS_MAX) {
		t->omitted++;
		return 0;
	}
	if (table_grow(t))
		return LORA_ENOMEM;
	char **row = t->cells + (t->rows + 1) * t->cols;
	for (size_t i = 0; i < t->cols; i++) {
		row[i] = cell_copy(cells[i] ? cells[i] : "");
		if (row[i] == NULL) {
			for (size_t k = 0; k < i; k++) {
				lora_free(row[k]);
				row[k] = NULL;
			}
			return LORA_ENOMEM;
		}
	}
	t->rows++;
	return 0;
}

int lora_table_add_values(struct lora_table *t, Lora__Value *const *values)
{
	struct lora_buf b = {0};
	size_t *ends = lora_calloc(t->cols ? t->cols : 1, sizeof(size_t));
	const char **cells = lora_calloc(t->cols ? t->cols : 1, sizeof(char *));
	int rv = ends && cells ? 0 : LORA_ENOMEM;
	for (size_t i = 0; rv == 0 && i < t->cols; i++) {
		rv = lora_value_format(&b, values[i]);
		if (rv == 0)
			rv = lora_buf_putc(&b, 0);
		ends[i] = b.len;
	}
	for (size_t i = 0; rv == 0 && i < t->cols; i++)
		cells[i] = b.data + (i ? ends[i - 1] : 0);
	if (rv == 0)
		rv = lora_table_add(t, cells);
	lora_buf_free(&b);
	lora_free(ends);
	lora_free(cells);
	return rv;
}

static int render_rule(struct lora_buf *out, const size_t *w, size_t cols)
{
	int rv = lora_buf_putc(out, '+');
	for (size_t i = 0; rv == 0 && i < cols; i++) {
		for (size_t k = 0; rv == 0 && k < w[i] + 2; k++)
			rv = lora_buf_putc(out, '-');
		if (rv == 0)
			rv = lora_buf_putc(out, '+');
	}
	return rv ? rv : lora_buf_putc(out, '\n');
}

static int render_row(struct lora_buf *out, char *const *row, const size_t *w,
                      size_t cols)
{
	int rv = lora_buf_putc(out, '|');
	for (size_t i = 0; rv == 0 && i < cols; i++) {
		rv = lora_buf_printf(out, " %s", row[i]);
		for (size_t k = lora_text_width(row[i]); rv == 0 && k < w[i];
		     k++)
			rv = lora_buf_putc(out, ' ');
		if (rv == 0)
			rv = lora_buf_puts(out, " |");
	}
	return rv ? rv : lora_buf_putc(out, '\n');
}

static int render_plain(const struct lora_table *t, struct lora_buf *out)
{
	int rv = 0;
	for (size_t r = 0; rv == 0 && r <= t->rows; r++) {
		for (size_t i = 0; rv == 0 && i < t->cols; i++)
			rv = lora_buf_printf(out, "%s%s", i ? "\t" : "",
			                     t->cells[r * t->cols + i]);
		if (rv == 0)
			rv = lora_buf_putc(out, '\n');
	}
	return rv;
}

int lora_table_render(const struct lora_table *t, int plain,
                      struct lora_buf *out)
{
	if (t->cols == 0)
		return 0;
	if (plain)
		return render_plain(t, out);
	size_t *w = lora_calloc(t->cols, sizeof(size_t));
	if (w == NULL)
		return LORA_ENOMEM;
	for (size_t r = 0; r <= t->rows; r++) {
		for (size_t i = 0; i < t->cols; i++) {
			size_t cw = lora_text_width(t->cells[r * t->cols + i]);
			if (cw > w[i])
				w[i] = cw;
		}
	}
	int rv = render_rule(out, w, t->cols);
	if (rv == 0)
		rv = render_row(out, t->cells, w, t->cols);
	if (rv == 0)
		rv = render_rule(out, w, t->cols);
	for (size_t r = 1; rv == 0 && r <= t->rows; r++)
		rv = render_row(out, t->cells + r * t->cols, w, t->cols);
	if (rv == 0 && t->rows)
		rv = render_rule(out, w, t->cols);
	lora_free(w);
	return rv;
}

void lora_table_free(struct lora_table *t)
{
	if (t->cells) {
		for (size_t i = 0; i < (t->rows + 1) * t->cols; i++)
			lora_free(t->cells[i]);
	}
	lora_free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* ---- cluster status ---------------------------------------------------- */

/* Text of a JSON scalar (integers, strings, null as "-"). */
static void json_text(json_t *j, char *out, size_t size)
{
	if (json_is_integer(j))
		snprintf(out, size, "%" JSON_INTEGER_FORMAT,
		         json_integer_value(j));
	else if (json_is_string(j))
		snprintf(out, size, "%s", json_string_value(j));
	else if (json_is_real(j))
		snprintf(out, size, "%g", json_real_value(j));
	else
		snprintf(out, size, "-");
}

static int status_rows(json_t *nodes, struct lora_table *t)
{
	static const char *const keys[] = {
	    "id",          "address",      "role",         "term",
	    "commitIndex", "appliedIndex", "lastContactMs"};
	enum { N = sizeof(keys) / sizeof(keys[0]) };
	size_t i;
	json_t *node;
	json_array_foreach(nodes, i, node)
	{
		char text[N][64];
		const char *cells[N];
		for (size_t k = 0; k < N; k++) {
			json_text(json_object_get(node, keys[k]), text[k], 64);
			cells[k] = text[k];
		}
		int rv = lora_table_add(t, cells);
		if (rv)
			return rv;
	}
	return 0;
}

int lora_status_table(const char *json, struct lora_table *t,
                      struct lora_buf *summary, char *errmsg)
{
	static const char *const head[] = {
	    "id", "address", "role", "term", "commit", "applied", "contact ms"};
	json_error_t jerr;
	json_t *root = json_loads(json, 0, &jerr);
	json_t *nodes = root ? json_object_get(root, "nodes") : NULL;
	if (root == NULL || !json_is_array(nodes)) {
		json_decref(root);
		return lora_errf(LORA_EINVAL, errmsg,
		                 "status is not cluster status JSON");
	}
	int rv = lora_table_header(t, head, 7);
	if (rv == 0)
		rv = status_rows(nodes, t);
	char leader[64], term[64];
	json_text(json_object_get(root, "leader"), leader, sizeof(leader));
	json_text(json_object_get(root, "term"), term, sizeof(term));
	if (rv == 0 && summary)
		rv = lora_buf_printf(summary, "leader: %s, term: %s\n",
		                     strcmp(leader, "-") ? leader : "none",
		                     term);
	json_decref(root);
	return rv;
}
