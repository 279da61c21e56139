/* cli.c - options, statement splitting, JSON parameters and tables of the
 * shell. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

/* ---- options ----------------------------------------------------------- */

const char *lora_shell_usage(void)
{
	return "usage: lora [options]\n"
	       "  -a, --address LIST     node addresses, host:port,... "
	       "(native protocol)\n"
	       "                         default " LORA_CLIENT_ADDRESSES_DEFAULT
	       "\n"
	       "  -f, --file FILE        run the statements in FILE and exit\n"
	       "  -c, --command TEXT     run the statements in TEXT and exit\n"
	       "  --consistency LEVEL    local | bookmark | linearizable "
	       "(reads)\n"
	       "  --route leader|any     send to the leader (default) or the "
	       "first node\n"
	       "  --timeout MS           timeout of each call (default 5000)\n"
	       "  --format table|plain|json|csv\n"
	       "                         result layout (default table; json: "
	       "one object per row)\n"
	       "  -q, --quiet            no banner and no timing lines\n"
	       "  -u, --user NAME        user name (default: LORA_USER)\n"
	       "  --password PW          password (default: LORA_PASSWORD, "
	       "else asked for)\n"
	       "  --tls                  TLS to every node (needs --ca or "
	       "LORA_CA)\n"
	       "  --ca FILE              CA certificate (PEM) the nodes' "
	       "certificates\n"
	       "                         chain to; implies --tls (default: "
	       "LORA_CA)\n"
	       "  -h, --help             this text\n"
	       "Statements end with ';'. In the shell: :help, :status, "
	       ":param NAME VALUE,\n:params, :quit.\n";
}

static int parse_int(const char *s, int *out)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > 3600000)
		return LORA_EINVAL;
	*out = (int)v;
	return 0;
}

static int parse_consistency(const char *s, int *out)
{
	if (strcmp(s, "local") == 0)
		*out = LORA_CONSISTENCY_LOCAL;
	else if (strcmp(s, "bookmark") == 0)
		*out = LORA_CONSISTENCY_BOOKMARK;
	else if (strcmp(s, "linearizable") == 0)
		*out = LORA_CONSISTENCY_LINEARIZABLE;
	else
		return LORA_EINVAL;
	return 0;
}

static int parse_format(const char *val, int *out)
{
	static const char *const names[] = {"table", "plain", "json", "csv"};
	for (int i = 0; i < 4; i++)
		if (!strcmp(val, names[i])) {
			*out = i;
			return 0;
		}
	return LORA_EINVAL;
}

/* Applies option `name` with its value (NULL for flags). */
static int apply_opt(struct lora_shell_opts *o, const char *name,
                     const char *val, char *errmsg)
{
	int rv = 0;
	if (!strcmp(name, "a") || !strcmp(name, "address"))
		o->addresses = val;
	else if (!strcmp(name, "f") || !strcmp(name, "file"))
		o->file = val;
	else if (!strcmp(name, "c") || !strcmp(name, "command"))
		o->command = val;
	else if (!strcmp(name, "timeout"))
		rv = parse_int(val, &o->timeout_ms);
	else if (!strcmp(name, "consistency"))
		rv = parse_consistency(val, &o->consistency);
	else if (!strcmp(name, "route") && !strcmp(val, "any"))
		o->route_any = 1;
	else if (!strcmp(name, "route") && !strcmp(val, "leader"))
		o->route_any = 0;
	else if (!strcmp(name, "format"))
		rv = parse_format(val, &o->format);
	else if (!strcmp(name, "u") || !strcmp(name, "user"))
		o->user = val;
	else if (!strcmp(name, "password"))
		o->password = val;
	else if (!strcmp(name, "ca"))
		o->ca = val;
	else
		rv = LORA_EINVAL;
	if (rv)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "bad value '%s' for option %s", val, name);
	return 0;
}

static int takes_value(const char *name)
{
	static const char *const with[] = {
	    "a",       "address", "f",           "file",  "c",
	    "command", "timeout", "consistency", "route", "format",
	    "u",       "user",    "password",    "ca"};
	for (size_t i = 0; i < sizeof(with) / sizeof(with[0]); i++) {
		if (!strcmp(name, with[i]))
			return 1;
	}
	return 0;
}

int lora_shell_parse_args(int argc, char **argv, struct lora_shell_opts *o,
                          char *errmsg)
{
	memset(o, 0, sizeof(*o));
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (arg[0] != '-' || arg[1] == 0)
			return lora_errf(LORA_EINVAL, errmsg,
			                 "unexpected argument '%s'", arg);
		const char *name = arg[1] == '-' ? arg + 2 : arg + 1;
		char key[32];
		const char *eq = strchr(name, '=');
		size_t klen = eq ? (size_t)(eq - name) : strlen(name);
		snprintf(key, sizeof(key), "%.*s", (int)klen, name);
		if (!strcmp(key, "h") || !strcmp(key, "help")) {
			o->help = 1;
		} else if (!strcmp(key, "q") || !strcmp(key, "quiet")) {
			o->quiet = 1;
		} else if (!strcmp(key, "tls")) {
			o->tls = 1;
		} else if (!takes_value(key)) {
			return lora_errf(LORA_EINVAL, errmsg,
			                 "unknown option '%s'", arg);
		} else {
			const char *val = eq ? eq + 1 : NULL;
			if (val == NULL && i + 1 < argc)
				val = argv[++i];
			if (val == NULL)
				return lora_errf(LORA_EINVAL, errmsg,
				                 "option '%s' needs a value",
				                 arg);
			int rv = apply_opt(o, key, val, errmsg);
			if (rv)
				return rv;
		}
	}
	if (o->file && o->command)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "-f and -c cannot be used together");
	return 0;
}

/* ---- statements -------------------------------------------------------- */

int lora_stmt_pending(const struct lora_stmt *s)
{
	for (size_t i = 0; i < s->buf.len; i++) {
		if (!isspace((unsigned char)s->buf.data[i]))
			return 1;
	}
	return 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	return s;
}

const char *lora_stmt_rest(struct lora_stmt *s)
{
	if (s->buf.data == NULL)
		return "";
	return trim(s->buf.data);
}

void lora_stmt_free(struct lora_stmt *s)
{
	lora_buf_free(&s->buf);
	s->quote = 0;
	s->block_comment = 0;
}

/* Hands the finished statement to cb and empties the buffer. */
static int stmt_emit(struct lora_stmt *s,
                     int (*cb)(void *arg, const char *stmt), void *arg)
{
	int rv = 0;
	if (s->buf.data) {
		char *t = trim(s->buf.data);
		if (*t)
			rv = cb(arg, t);
	}
	lora_buf_reset(&s->buf);
	return rv;
}

/* Scans one character c (next is the one after); returns 1 at a statement
 * end, 2 to skip the rest of the line (a // comment). */
static int stmt_scan(struct lora_stmt *s, char c, char next)
{
	if (s->block_comment) {
		if (c == '*' && next == '/')
			s->block_comment = 2; /* closes after the '/' */
		else if (s->block_comment == 2)
			s->block_comment = 0;
		return 0;
	}
	if (s->quote) {
		if (c == s->quote)
			s->quote = 0;
		return 0;
	}
	if (c == '\'' || c == '"' || c == '`')
		s->quote = c;
	else if (c == '/' && next == '*')
		s->block_comment = 1;
	else if (c == '/' && next == '/')
		return 2;
	else if (c == ';')
		return 1;
	return 0;
}

int lora_stmt_feed(struct lora_stmt *s, const char *line,
                   int (*cb)(void *arg, const char *stmt), void *arg)
{
	for (const char *p = line; *p; p++) {
		if (s->quote && *p == '\\' && p[1]) {
			/* escaped character inside a literal */
			if (lora_buf_append(&s->buf, p, 2))
				return LORA_ENOMEM;
			p++;
			continue;
		}
		int what = stmt_scan(s, *p, p[1]);
		if (what == 2)
			break;
		if (what == 1) {
			int rv = stmt_emit(s, cb, arg);
			if (rv)
				return rv;
			continue;
		}
		if (lora_buf_putc(&s->buf, *p))
			return LORA_ENOMEM;
	}
	if (lora_buf_putc(&s->buf, '\n'))
		return LORA_ENOMEM;
	if (s->buf.len > LORA_CLI_STATEMENT_BYTES_MAX) {
		lora_stmt_free(s);
		return LORA_ELIMIT;
	}
	return 0;
}

/* ---- parameters -------------------------------------------------------- */

static Lora__Value *from_json(json_t *j, int depth);

static Lora__Value *from_json_array(json_t *j, int depth)
{
	size_t n = json_array_size(j);
	Lora__Value **items = n ? lora_calloc(n, sizeof(*items)) : NULL;
	if (n && items == NULL)
		return NULL;
	size_t i = 0;
	for (; i < n; i++) {
		items[i] = from_json(json_array_get(j, i), depth + 1);
		if (items[i] == NULL)
			break;
	}
	Lora__Value *v = i == n ? lora_value_list(items, n) : NULL;
	if (v == NULL) {
		for (size_t k = 0; k < i; k++)
			lora_value_free(items[k]);
	}
	lora_free(items);
	return v;
}

static Lora__Value *from_json_object(json_t *j, int depth)
{
	size_t n = json_object_size(j), i = 0;
	const char **keys = n ? lora_calloc(n, sizeof(*keys)) : NULL;
	Lora__Value **vals = n ? lora_calloc(n, sizeof(*vals)) : NULL;
	Lora__Value *v = NULL;
	const char *k;
	json_t *x;
	if (n && (keys == NULL || vals == NULL))
		goto out;
	json_object_foreach(j, k, x)
	{
		keys[i] = k;
		vals[i] = from_json(x, depth + 1);
		if (vals[i++] == NULL)
			goto out;
	}
	v = lora_value_map(keys, vals, n);
out:
	for (size_t m = 0; v == NULL && vals && m < i; m++)
		lora_value_free(vals[m]);
	lora_free(keys);
	lora_free(vals);
	return v;
}

static Lora__Value *from_json(json_t *j, int depth)
{
	if (depth > LORA_VALUE_DEPTH_MAX)
		return NULL;
	switch (json_typeof(j)) {
	case JSON_NULL:
		return lora_value_null();
	case JSON_TRUE:
		return lora_value_bool(1);
	case JSON_FALSE:
		return lora_value_bool(0);
	case JSON_INTEGER:
		return lora_value_int(json_integer_value(j));
	case JSON_REAL:
		return lora_value_float(json_real_value(j));
	case JSON_STRING:
		return lora_value_string(json_string_value(j));
	case JSON_ARRAY:
		return from_json_array(j, depth);
	case JSON_OBJECT:
		return from_json_object(j, depth);
	}
	return NULL;
}

static int bare_word(const char *s)
{
	if (*s == 0)
		return 0;
	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' &&
		    *s != '.' && *s != ':')
			return 0;
	}
	return 1;
}

int lora_value_from_json(const char *text, Lora__Value **out, char *errmsg)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (j == NULL && bare_word(text) && !isdigit((unsigned char)text[0]) &&
	    text[0] != '-') {
		*out = lora_value_string(text);
		return *out ? 0
		            : lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	}
	if (j == NULL)
		return lora_errf(LORA_EINVAL, errmsg, "value is not JSON: %s",
		                 jerr.text);
	*out = from_json(j, 0);
	json_decref(j);
	if (*out == NULL)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "value too deep or out of memory");
	return 0;
}

int lora_params_unset(struct lora_params *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->items[i]->name, name) == 0) {
			lora_param_free(p->items[i]);
			memmove(&p->items[i], &p->items[i + 1],
			        (p->n - i - 1) * sizeof(p->items[0]));
			p->n--;
			return 0;
		}
	}
	return LORA_ENOTFOUND;
}

int lora_params_set(struct lora_params *p, const char *name, const char *json,
                    char *errmsg)
{
	if (name == NULL || !bare_word(name) || strchr(name, ':'))
		return lora_errf(LORA_EINVAL, errmsg, "bad parameter name");
	Lora__Value *v = NULL;
	int rv = lora_value_from_json(json, &v, errmsg);
	if (rv)
		return rv;
	lora_params_unset(p, name);
	if (p->n == LORA_CLI_PARAMS_MAX) {
		lora_value_free(v);
		return lora_errf(LORA_ELIMIT, errmsg, "more than %d parameters",
		                 LORA_CLI_PARAMS_MAX);
	}
	Lora__Param *prm = lora_param_new(name, v);
	if (prm == NULL) {
		lora_value_free(v);
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	}
	p->items[p->n++] = prm;
	return 0;
}

void lora_params_free(struct lora_params *p)
{
	for (size_t i = 0; i < p->n; i++)
		lora_param_free(p->items[i]);
	p->n = 0;
}
