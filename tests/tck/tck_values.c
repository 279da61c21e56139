/* tck_values.c - parser for the TCK value syntax and conversion to
 * query parameters (comparison and printing live in tck_compare.c). */
#include "tck_values.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	const char *p;
	char *errmsg;
	int depth;
};

static int parse_value(struct parser *ps, struct tck_value **out);

static void skip_ws(struct parser *ps)
{
	while (*ps->p && isspace((unsigned char)*ps->p))
		ps->p++;
}

static int fail(struct parser *ps, const char *what)
{
	return lora_errf(LORA_EINVAL, ps->errmsg, "%s at \"%.30s\"", what,
	                 ps->p);
}

static struct tck_value *new_value(enum tck_kind kind)
{
	struct tck_value *v = lora_calloc(1, sizeof(*v));

	if (v)
		v->kind = kind;
	return v;
}

void tck_value_free(struct tck_value *v)
{
	if (!v)
		return;
	for (size_t k = 0; k < v->n; k++) {
		tck_value_free(v->items[k]);
		if (v->keys)
			lora_free(v->keys[k]);
	}
	for (size_t k = 0; k < v->n_labels; k++)
		lora_free(v->labels[k]);
	lora_free(v->items);
	lora_free(v->keys);
	lora_free(v->labels);
	lora_free(v->s);
	tck_value_free(v->props);
	lora_free(v);
}

/* Appends one item (and key) to a LIST / MAP / PATH value. */
static int push_item(struct tck_value *v, char *key, struct tck_value *item)
{
	struct tck_value **items =
	    lora_realloc(v->items, (v->n + 1) * sizeof(*items));

	if (!items)
		return LORA_ENOMEM;
	v->items = items;
	if (v->kind == TCK_MAP) {
		char **keys = lora_realloc(v->keys, (v->n + 1) * sizeof(*keys));

		if (!keys)
			return LORA_ENOMEM;
		v->keys = keys;
		v->keys[v->n] = key;
	}
	v->items[v->n++] = item;
	return 0;
}

/* One backslash escape after the backslash; ps->p is on the escape
 * letter. */
static int parse_escape(struct parser *ps, struct lora_buf *b)
{
	char c = *ps->p++;
	int digits = 0;

	switch (c) {
	case 'n':
		return lora_buf_putc(b, '\n');
	case 't':
		return lora_buf_putc(b, '\t');
	case 'r':
		return lora_buf_putc(b, '\r');
	case 'b':
		return lora_buf_putc(b, '\b');
	case 'f':
		return lora_buf_putc(b, '\f');
	case 'u':
		digits = 4;
		break;
	case 'U':
		digits = 8;
		break;
	case '\0':
		ps->p--;
		return fail(ps, "unterminated escape");
	default:
		return lora_buf_putc(b, c);
	}
	unsigned long cp = 0;

	for (int k = 0; k < digits; k++, ps->p++) {
		if (!isxdigit((unsigned char)*ps->p))
			return fail(ps, "bad unicode escape");
		cp = cp * 16 +
		     (unsigned long)(isdigit((unsigned char)*ps->p)
		                         ? *ps->p - '0'
		                         : (tolower(*ps->p) - 'a' + 10));
	}
	if (cp > 0x10FFFF || lora_buf_put_utf8(b, (uint32_t)cp) != LORA_OK)
		return fail(ps, "bad unicode escape");
	return 0;
}

/* A quoted string ('...' or "..."); ps->p is on the opening quote. */
static int parse_quoted(struct parser *ps, char **out, size_t *len)
{
	struct lora_buf b = {0};
	char quote = *ps->p++;
	int rc = 0;

	lora_buf_reserve(&b, 16);
	while (rc == 0 && *ps->p != quote) {
		if (*ps->p == '\0')
			rc = fail(ps, "unterminated string");
		else if (b.len >= TCK_STRING_BYTES_MAX)
			rc = fail(ps, "string too long");
		else if (*ps->p == '\\' && (ps->p++, 1))
			rc = parse_escape(ps, &b);
		else
			rc = lora_buf_putc(&b, *ps->p++);
	}
	if (rc == 0 && !b.data)
		rc = LORA_ENOMEM;
	if (rc) {
		lora_buf_free(&b);
		return rc;
	}
	ps->p++;
	*len = b.len;
	*out = lora_buf_take(&b);
	return 0;
}

static int is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '$' ||
	       (unsigned char)c >= 0x80;
}

/* A name: identifier characters, or `backquoted`. */
static int parse_name(struct parser *ps, char **out)
{
	const char *start = ps->p;

	skip_ws(ps);
	start = ps->p;
	if (*ps->p == '`') {
		const char *end = strchr(ps->p + 1, '`');

		if (!end)
			return fail(ps, "unterminated `name`");
		*out = lora_strndup(ps->p + 1, (size_t)(end - ps->p - 1));
		ps->p = end + 1;
	} else if (*ps->p == '\'' || *ps->p == '"') {
		size_t len;

		return parse_quoted(ps, out, &len);
	} else {
		while (is_name_char(*ps->p))
			ps->p++;
		if (ps->p == start)
			return fail(ps, "expected a name");
		*out = lora_strndup(start, (size_t)(ps->p - start));
	}
	return *out ? 0 : LORA_ENOMEM;
}

/* {k: v, ...}; ps->p is on '{'. */
static int parse_map(struct parser *ps, struct tck_value **out)
{
	struct tck_value *m = new_value(TCK_MAP);
	int rc = m ? 0 : LORA_ENOMEM;

	ps->p++;
	skip_ws(ps);
	if (rc == 0 && *ps->p == '}') {
		ps->p++;
		*out = m;
		return 0;
	}
	while (rc == 0) {
		char *key = NULL;
		struct tck_value *item = NULL;

		rc = parse_name(ps, &key);
		skip_ws(ps);
		if (rc == 0 && *ps->p != ':')
			rc = fail(ps, "expected ':' in map");
		if (rc == 0 && (ps->p++, 1))
			rc = parse_value(ps, &item);
		if (rc == 0)
			rc = push_item(m, key, item);
		if (rc) {
			lora_free(key);
			tck_value_free(item);
			break;
		}
		skip_ws(ps);
		if (*ps->p == '}') {
			ps->p++;
			*out = m;
			return 0;
		}
		if (*ps->p != ',')
			rc = fail(ps, "expected ',' or '}' in map");
		ps->p++;
	}
	tck_value_free(m);
	return rc;
}

/* Optional property map of a node / relationship: an empty map when
 * absent. */
static int parse_props(struct parser *ps, struct tck_value *v)
{
	skip_ws(ps);
	if (*ps->p == '{')
		return parse_map(ps, &v->props);
	v->props = new_value(TCK_MAP);
	return v->props ? 0 : LORA_ENOMEM;
}

/* (:A:B {k: v}); ps->p is on '('. */
static int parse_node(struct parser *ps, struct tck_value **out)
{
	struct tck_value *v = new_value(TCK_NODE);
	int rc = v ? 0 : LORA_ENOMEM;

	ps->p++;
	skip_ws(ps);
	while (rc == 0 && *ps->p == ':') {
		char *label = NULL;
		char **labels;

		ps->p++;
		rc = parse_name(ps, &label);
		if (rc)
			break;
		labels = lora_realloc(v->labels,
		                      (v->n_labels + 1) * sizeof(*labels));
		if (!labels) {
			lora_free(label);
			rc = LORA_ENOMEM;
			break;
		}
		v->labels = labels;
		v->labels[v->n_labels++] = label;
		skip_ws(ps);
	}
	if (rc == 0)
		rc = parse_props(ps, v);
	skip_ws(ps);
	if (rc == 0 && *ps->p != ')')
		rc = fail(ps, "expected ')' after node");
	if (rc) {
		tck_value_free(v);
		return rc;
	}
	ps->p++;
	*out = v;
	return 0;
}

/* [:T {k: v}]; ps->p is on ':' after '['. */
static int parse_rel_body(struct parser *ps, struct tck_value **out)
{
	struct tck_value *v = new_value(TCK_REL);
	int rc = v ? 0 : LORA_ENOMEM;

	ps->p++;
	if (rc == 0)
		rc = parse_name(ps, &v->s);
	if (rc == 0)
		rc = parse_props(ps, v);
	skip_ws(ps);
	if (rc == 0 && *ps->p != ']')
		rc = fail(ps, "expected ']' after relationship");
	if (rc) {
		tck_value_free(v);
		return rc;
	}
	ps->p++;
	*out = v;
	return 0;
}

/* [a, b, ...] or a relationship [:T ...]; ps->p is on '['. */
static int parse_list(struct parser *ps, struct tck_value **out)
{
	struct tck_value *l;
	int rc = 0;

	ps->p++;
	skip_ws(ps);
	if (*ps->p == ':')
		return parse_rel_body(ps, out);
	l = new_value(TCK_LIST);
	if (!l)
		return LORA_ENOMEM;
	if (*ps->p == ']') {
		ps->p++;
		*out = l;
		return 0;
	}
	while (rc == 0) {
		struct tck_value *item = NULL;

		rc = parse_value(ps, &item);
		if (rc == 0 && (rc = push_item(l, NULL, item)) != 0)
			tck_value_free(item);
		skip_ws(ps);
		if (rc == 0 && *ps->p == ']') {
			ps->p++;
			*out = l;
			return 0;
		}
		if (rc == 0 && *ps->p != ',')
			rc = fail(ps, "expected ',' or ']' in list");
		ps->p++;
	}
	tck_value_free(l);
	return rc;
}

/* One step of a path after a node: -[..]->, <-[..]- or -[..]-. */
static int parse_path_rel(struct parser *ps, struct tck_value **out)
{
	int in = 0, rc;

	skip_ws(ps);
	if (ps->p[0] == '<' && ps->p[1] == '-') {
		in = 1;
		ps->p += 2;
	} else if (ps->p[0] == '-') {
		ps->p++;
	} else {
		return fail(ps, "expected a relationship in path");
	}
	skip_ws(ps);
	if (ps->p[0] != '[')
		return fail(ps, "expected '[' in path");
	ps->p++;
	skip_ws(ps);
	if (*ps->p != ':')
		return fail(ps, "expected ':' in path relationship");
	rc = parse_rel_body(ps, out);
	if (rc)
		return rc;
	skip_ws(ps);
	if (ps->p[0] == '-' && ps->p[1] == '>' && !in) {
		(*out)->dir = TCK_DIR_OUT;
		ps->p += 2;
	} else if (ps->p[0] == '-' && ps->p[1] != '>') {
		(*out)->dir = in ? TCK_DIR_IN : TCK_DIR_NONE;
		ps->p++;
	} else {
		tck_value_free(*out);
		*out = NULL;
		return fail(ps, "bad relationship arrow in path");
	}
	return 0;
}

/* <(a)-[:T]->(b)...>; ps->p is on '<'. */
static int parse_path(struct parser *ps, struct tck_value **out)
{
	struct tck_value *path = new_value(TCK_PATH);
	int rc = path ? 0 : LORA_ENOMEM;

	ps->p++;
	while (rc == 0) {
		struct tck_value *node = NULL, *rel = NULL;

		skip_ws(ps);
		if (*ps->p != '(') {
			rc = fail(ps, "expected a node in path");
			break;
		}
		rc = parse_node(ps, &node);
		if (rc == 0 && (rc = push_item(path, NULL, node)) != 0)
			tck_value_free(node);
		skip_ws(ps);
		if (rc || *ps->p == '>')
			break;
		rc = parse_path_rel(ps, &rel);
		if (rc == 0 && (rc = push_item(path, NULL, rel)) != 0)
			tck_value_free(rel);
	}
	if (rc) {
		tck_value_free(path);
		return rc;
	}
	ps->p++;
	*out = path;
	return 0;
}

static int parse_number(struct parser *ps, struct tck_value **out)
{
	const char *s = ps->p;
	char *end = NULL;
	int is_float = 0;

	if (*s == '-' || *s == '+')
		s++;
	if (strncmp(s, "Inf", 3) == 0 || strncmp(s, "NaN", 3) == 0) {
		double f = s[0] == 'N' ? NAN : INFINITY;

		*out = new_value(TCK_FLOAT);
		if (!*out)
			return LORA_ENOMEM;
		(*out)->f = *ps->p == '-' ? -f : f;
		ps->p = s + (strncmp(s, "Infinity", 8) == 0 ? 8 : 3);
		return 0;
	}
	for (const char *q = s; isalnum((unsigned char)*q) || *q == '.'; q++)
		if (*q == '.' || ((*q == 'e' || *q == 'E') && s[1] != 'x'))
			is_float = 1;
	*out = new_value(is_float ? TCK_FLOAT : TCK_INT);
	if (!*out)
		return LORA_ENOMEM;
	errno = 0;
	if (is_float)
		(*out)->f = strtod(ps->p, &end);
	else
		(*out)->i = strtoll(ps->p, &end, 0);
	if (end == ps->p || errno == ERANGE) {
		tck_value_free(*out);
		*out = NULL;
		return fail(ps, "bad number");
	}
	ps->p = end;
	return 0;
}

static int parse_word(struct parser *ps, struct tck_value **out)
{
	static const struct {
		const char *word;
		enum tck_kind kind;
		int b;
	} words[] = {{"null", TCK_NULL, 0},
	             {"true", TCK_BOOL, 1},
	             {"false", TCK_BOOL, 0}};

	for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
		size_t n = strlen(words[k].word);

		if (strncasecmp(ps->p, words[k].word, n) == 0 &&
		    !is_name_char(ps->p[n])) {
			*out = new_value(words[k].kind);
			if (!*out)
				return LORA_ENOMEM;
			(*out)->b = words[k].b;
			ps->p += n;
			return 0;
		}
	}
	return parse_number(ps, out);
}

static int parse_value(struct parser *ps, struct tck_value **out)
{
	int rc;

	skip_ws(ps);
	if (ps->depth >= TCK_VALUE_DEPTH_MAX)
		return fail(ps, "value nested too deeply");
	ps->depth++;
	switch (*ps->p) {
	case '(':
		rc = parse_node(ps, out);
		break;
	case '[':
		rc = parse_list(ps, out);
		break;
	case '{':
		rc = parse_map(ps, out);
		break;
	case '<':
		rc = parse_path(ps, out);
		break;
	case '\'':
	case '"':
		*out = new_value(TCK_STRING);
		if (!*out)
			return LORA_ENOMEM;
		rc = parse_quoted(ps, &(*out)->s, &(*out)->len);
		if (rc) {
			tck_value_free(*out);
			*out = NULL;
		}
		break;
	default:
		rc = parse_word(ps, out);
	}
	ps->depth--;
	return rc;
}

int tck_value_parse(const char *text, struct tck_value **out, char *errmsg)
{
	struct parser ps = {text, errmsg, 0};
	struct tck_value *v = NULL;
	int rc = parse_value(&ps, &v);

	if (rc)
		return rc;
	skip_ws(&ps);
	if (*ps.p) {
		tck_value_free(v);
		return fail(&ps, "trailing text after value");
	}
	*out = v;
	return 0;
}

/* ---- conversion to parameters ----------------------------------------- */

static int list_to_pb(const struct tck_value *v, Lora__Value *pb, char *errmsg)
{
	Lora__ValueList *l = lora_malloc(sizeof(*l));

	if (!l)
		return LORA_ENOMEM;
	lora__value_list__init(l);
	pb->kind_case = LORA__VALUE__KIND_LIST_VALUE;
	pb->list_value = l;
	l->items = lora_calloc(v->n + 1, sizeof(*l->items));
	if (!l->items)
		return LORA_ENOMEM;
	for (size_t k = 0; k < v->n; k++) {
		int rc = tck_value_to_pb(v->items[k], &l->items[k], errmsg);

		if (rc)
			return rc;
		l->n_items++;
	}
	return 0;
}

static int map_to_pb(const struct tck_value *v, Lora__Value *pb, char *errmsg)
{
	Lora__ValueMap *m = lora_malloc(sizeof(*m));

	if (!m)
		return LORA_ENOMEM;
	lora__value_map__init(m);
	pb->kind_case = LORA__VALUE__KIND_MAP_VALUE;
	pb->map_value = m;
	m->entries = lora_calloc(v->n + 1, sizeof(*m->entries));
	if (!m->entries)
		return LORA_ENOMEM;
	for (size_t k = 0; k < v->n; k++) {
		Lora__MapEntry *e = lora_malloc(sizeof(*e));

		if (!e)
			return LORA_ENOMEM;
		lora__map_entry__init(e);
		m->entries[m->n_entries++] = e;
		e->key = lora_strdup(v->keys[k]);
		if (!e->key)
			return LORA_ENOMEM;
		int rc = tck_value_to_pb(v->items[k], &e->value, errmsg);

		if (rc)
			return rc;
	}
	return 0;
}

static int scalar_to_pb(const struct tck_value *v, Lora__Value *pb,
                        char *errmsg)
{
	switch (v->kind) {
	case TCK_NULL:
		pb->kind_case = LORA__VALUE__KIND_NULL_VALUE;
		pb->null_value = 1;
		return 0;
	case TCK_BOOL:
		pb->kind_case = LORA__VALUE__KIND_BOOL_VALUE;
		pb->bool_value = v->b;
		return 0;
	case TCK_INT:
		pb->kind_case = LORA__VALUE__KIND_INT_VALUE;
		pb->int_value = v->i;
		return 0;
	case TCK_FLOAT:
		pb->kind_case = LORA__VALUE__KIND_FLOAT_VALUE;
		pb->float_value = v->f;
		return 0;
	case TCK_STRING:
		pb->kind_case = LORA__VALUE__KIND_STRING_VALUE;
		pb->string_value = lora_strndup(v->s, v->len);
		return pb->string_value ? 0 : LORA_ENOMEM;
	default:
		return lora_errf(LORA_EINVAL, errmsg,
		                 "nodes, relationships and paths cannot be "
		                 "parameters");
	}
}

int tck_value_to_pb(const struct tck_value *v, Lora__Value **out, char *errmsg)
{
	Lora__Value *pb = lora_malloc(sizeof(*pb));
	int rc;

	if (!pb)
		return LORA_ENOMEM;
	lora__value__init(pb);
	if (v->kind == TCK_LIST)
		rc = list_to_pb(v, pb, errmsg);
	else if (v->kind == TCK_MAP)
		rc = map_to_pb(v, pb, errmsg);
	else
		rc = scalar_to_pb(v, pb, errmsg);
	if (rc) {
		lora__value__free_unpacked(pb, &lora_pb_allocator);
		return rc;
	}
	*out = pb;
	return 0;
}
