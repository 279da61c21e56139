/* parse.c - Cypher lexer and recursive-descent parser producing the AST.
 *
 * The lexer turns the whole text into a token array first (so the parser
 * can look ahead and backtrack cheaply, which pattern-vs-parenthesis
 * decisions need). A "(" is tried as a relationship pattern only when the
 * token after its ")" can continue one (rel_may_start), and once a parse
 * may backtrack, expressions are kept by position (expr), so no tokens
 * are parsed twice as the same expression: the work is linear in the
 * tokens. Errors carry line, column and a caret excerpt. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qint.h"

enum tk {
	T_EOF,
	T_IDENT,  /* plain identifier or keyword */
	T_QIDENT, /* `quoted` */
	T_INT,
	T_FLOAT,
	T_STR,
	T_PARAM,
	T_PUNCT,
};

struct tok {
	int k;
	const char *s; /* text for ident/str (unescaped), punct */
	size_t len;
	int64_t i;
	double f;
	uint32_t off, end, line, col;
	int int_overflow;
};

struct parser {
	struct qctx *c;
	const char *src;
	struct tok *t;
	size_t n, pos;
	int depth;
	int peak;  /* the deepest depth entered (expr_memo.rel_peak) */
	int nobar; /* `|` ends a comprehension's WHERE, not a label expr */
	unsigned depth_hits; /* times the nesting limit was hit */
	/* [2 * pos + nobar]: a relationship pattern failed to parse there
	 * (try_rel_pattern) when tried at a depth >= the value - 1 (0: not
	 * known to fail); NULL until one did */
	uint32_t *pat_failed;
	/* [i] for a "(" token: the index of its ")" (0: none); NULL until
	 * a relationship pattern was first tried (rel_may_start) */
	uint32_t *close;
	/* [2 * pos + nobar]: the expression expr() last parsed there, kept
	 * once a parse may backtrack (memo_on), so that tokens parsed inside
	 * an attempt that failed are not parsed again; NULL until then */
	struct expr_memo *memo;
	/* nesting levels entered; past steps_max the statement is refused,
	 * so that no statement keeps the parser busy for long */
	uint64_t steps, steps_max;
};
/* An expression expr() parsed at one position: it ended before token
 * `end`, parsed at nesting depth `depth` and went rel_peak levels deeper.
 * Without a nesting-limit hit inside (depth_free), the same tokens parse
 * alike at any depth that leaves room for rel_peak; with one, only at
 * `depth` itself. */
struct expr_memo {
	struct expr *e;
	uint32_t end;
	int depth;
	int depth_free;
	int rel_peak; /* deepest level entered, relative to depth */
};
/* enter() calls allowed per token (a token passes about a dozen
 * precedence levels, each tried at most a few times) and for any
 * statement */
#define PARSE_STEPS_PER_TOKEN 256
#define PARSE_STEPS_BASE      100000

static _Noreturn void perr(struct parser *p, struct tok *t, const char *fmt,
                           ...) __attribute__((format(printf, 3, 4)));

static void set_excerpt(struct qctx *c, const char *src, uint32_t off,
                        uint32_t col)
{
	const char *ls = src + off - (col - 1);
	const char *le = strchr(ls, '\n');
	size_t len = le ? (size_t)(le - ls) : strlen(ls);
	if (len > 200)
		len = 200;
	size_t caret = col - 1 < 200 ? col - 1 : 199;
	char *x = c->err->excerpt;
	size_t w = 0;
	memcpy(x, ls, len);
	w = len;
	x[w++] = '\n';
	for (size_t i = 0; i < caret && w < LORA_ERRMSG_BYTES - 3; i++)
		x[w++] = ls[i] == '\t' ? '\t' : ' ';
	x[w++] = '^';
	x[w] = 0;
}

static _Noreturn void perr(struct parser *p, struct tok *t, const char *fmt,
                           ...)
{
	struct qctx *c = p->c;
	va_list ap;
	va_start(ap, fmt);
	char msg[LORA_ERRMSG_BYTES];
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c->err) {
		set_excerpt(c, p->src, t->off, t->col);
	}
	qerr_at(c, LORA_EPARSE, t->line, t->col, "%s (line %u, column %u)", msg,
	        t->line, t->col);
}

/* ---- lexer ------------------------------------------------------------- */

static int lex_string(struct parser *p, struct tok *t, const char *s, size_t *i)
{
	char q = s[*i];
	struct lora_buf *b = qbuf(p->c);
	size_t j = *i + 1;
	for (;;) {
		char ch = s[j];
		if (!ch)
			perr(p, t, "unterminated string literal");
		if (ch == q) {
			j++;
			break;
		}
		if (ch == '\\') {
			char e = s[j + 1];
			j += 2;
			switch (e) {
			case 'n':
				lora_buf_putc(b, '\n');
				break;
			case 't':
				lora_buf_putc(b, '\t');
				break;
			case 'r':
				lora_buf_putc(b, '\r');
				break;
			case 'b':
				lora_buf_putc(b, '\b');
				break;
			case 'f':
				lora_buf_putc(b, '\f');
				break;
			case '\\':
				lora_buf_putc(b, '\\');
				break;
			case '\'':
				lora_buf_putc(b, '\'');
				break;
			case '"':
				lora_buf_putc(b, '"');
				break;
			case 'u':
			case 'U': {
				int nd = e == 'u' ? 4 : 8;
				uint32_t cp = 0;
				for (int k = 0; k < nd; k++) {
					char h = s[j + k];
					if (!isxdigit((unsigned char)h))
						perr(p, t,
						     "InvalidUnicodeLiteral: "
						     "bad \\u escape");
					cp =
					    cp * 16 +
					    (uint32_t)(isdigit((unsigned char)h)
					                   ? h - '0'
					                   : (tolower(h) - 'a' +
					                      10));
				}
				j += (size_t)nd;
				/* out of memory is raised by qbuf_str below */
				if (lora_buf_put_utf8(b, cp) == LORA_EINVAL)
					perr(p, t, "invalid unicode escape");
				break;
			}
			default:
				lora_buf_putc(b, '\\');
				if (e)
					lora_buf_putc(b, e);
				else
					j--;
			}
			continue;
		}
		lora_buf_putc(b, ch);
		j++;
	}
	t->k = T_STR;
	t->len = b->len;
	t->s = qbuf_str(p->c, b);
	*i = j;
	return 0;
}

static void lex_number(struct parser *p, struct tok *t, const char *s,
                       size_t *i)
{
	size_t j = *i;
	if (s[j] == '0' && (s[j + 1] == 'x' || s[j + 1] == 'X')) {
		j += 2;
		size_t st = j;
		while (isalnum((unsigned char)s[j]))
			j++;
		char *end;
		errno = 0;
		unsigned long long v = strtoull(s + st, &end, 16);
		if (end != s + j || j == st)
			perr(p, t, "InvalidNumberLiteral: bad hex literal");
		t->k = T_INT;
		t->i = (int64_t)v;
		t->int_overflow = errno == ERANGE || v > 9223372036854775808ull;
		if (v == 9223372036854775808ull)
			t->int_overflow = 2; /* only valid negated */
		*i = j;
		return;
	}
	if (s[j] == '0' && (s[j + 1] == 'o')) {
		j += 2;
		size_t st = j;
		while (isalnum((unsigned char)s[j]))
			j++;
		char *end;
		errno = 0;
		unsigned long long v = strtoull(s + st, &end, 8);
		if (end != s + j || j == st)
			perr(p, t, "InvalidNumberLiteral: bad octal literal");
		t->k = T_INT;
		t->i = (int64_t)v;
		t->int_overflow = errno == ERANGE || v > 9223372036854775808ull;
		if (v == 9223372036854775808ull)
			t->int_overflow = 2;
		*i = j;
		return;
	}
	int isf = 0;
	while (isdigit((unsigned char)s[j]))
		j++;
	if (s[j] == '.' && isdigit((unsigned char)s[j + 1])) {
		isf = 1;
		j++;
		while (isdigit((unsigned char)s[j]))
			j++;
	}
	if ((s[j] == 'e' || s[j] == 'E') &&
	    (isdigit((unsigned char)s[j + 1]) ||
	     ((s[j + 1] == '-' || s[j + 1] == '+') &&
	      isdigit((unsigned char)s[j + 2])))) {
		isf = 1;
		j += 2;
		while (isdigit((unsigned char)s[j]))
			j++;
	}
	if (isalpha((unsigned char)s[j]) || s[j] == '_')
		perr(p, t, "InvalidNumberLiteral: bad number literal");
	char *tmp = ar_strndup(p->c, s + *i, j - *i);
	if (isf) {
		t->k = T_FLOAT;
		errno = 0;
		t->f = strtod(tmp, NULL);
		if (isinf(t->f))
			perr(p, t,
			     "FloatingPointOverflow: float literal too "
			     "large");
	} else {
		t->k = T_INT;
		errno = 0;
		unsigned long long v = strtoull(tmp, NULL, 10);
		t->i = (int64_t)v;
		t->int_overflow = errno == ERANGE || v > 9223372036854775808ull;
		if (!t->int_overflow && v == 9223372036854775808ull)
			t->int_overflow = 2;
	}
	*i = j;
}

static int is_reserved(struct tok *t);

/* ".5" is a number unless it follows something that can own a property */
static int lead_dot_ok(struct tok *prev)
{
	if (prev->k == T_PUNCT)
		return !strchr(")]}", prev->s[0]);
	return prev->k == T_IDENT && is_reserved(prev);
}

static const char *puncts[] = {
    "..", "<=", ">=", "<>", "!=", "=~", "+=", "-=", "||", NULL};

static void lex(struct parser *p)
{
	const char *s = p->src;
	size_t i = 0, cap = 64;
	uint32_t line = 1, lstart = 0;
	p->t = ar_alloc(p->c, sizeof(struct tok) * cap);
	for (;;) {
		/* whitespace and comments */
		for (;;) {
			if (s[i] == '\n') {
				line++;
				lstart = (uint32_t)i + 1;
				i++;
			} else if (isspace((unsigned char)s[i])) {
				i++;
			} else if (s[i] == '/' && s[i + 1] == '/') {
				while (s[i] && s[i] != '\n')
					i++;
			} else if (s[i] == '/' && s[i + 1] == '*') {
				i += 2;
				while (s[i] &&
				       !(s[i] == '*' && s[i + 1] == '/')) {
					if (s[i] == '\n') {
						line++;
						lstart = (uint32_t)i + 1;
					}
					i++;
				}
				if (s[i])
					i += 2;
			} else {
				break;
			}
		}
		if (p->n + 1 >= cap) {
			struct tok *nt =
			    ar_alloc(p->c, sizeof(struct tok) * cap * 2);
			memcpy(nt, p->t, sizeof(struct tok) * cap);
			p->t = nt;
			cap *= 2;
		}
		struct tok *t = &p->t[p->n];
		memset(t, 0, sizeof *t);
		t->off = (uint32_t)i;
		t->line = line;
		t->col = (uint32_t)i - lstart + 1;
		char ch = s[i];
		if (!ch) {
			t->k = T_EOF;
			t->end = (uint32_t)i;
			p->n++;
			return;
		}
		if (isalpha((unsigned char)ch) || ch == '_' ||
		    (unsigned char)ch >= 0x80) {
			size_t j = i;
			while (isalnum((unsigned char)s[j]) || s[j] == '_' ||
			       (unsigned char)s[j] >= 0x80)
				j++;
			t->k = T_IDENT;
			t->s = ar_strndup(p->c, s + i, j - i);
			t->len = j - i;
			i = j;
		} else if (ch == '`') {
			struct lora_buf *b = qbuf(p->c);
			size_t j = i + 1;
			for (;;) {
				if (!s[j])
					perr(p, t, "unterminated `identifier`");
				if (s[j] == '`') {
					if (s[j + 1] == '`') {
						lora_buf_putc(b, '`');
						j += 2;
						continue;
					}
					j++;
					break;
				}
				lora_buf_putc(b, s[j++]);
			}
			t->k = T_QIDENT;
			t->len = b->len;
			t->s = qbuf_str(p->c, b);
			i = j;
		} else if (isdigit((unsigned char)ch) ||
		           (ch == '.' && isdigit((unsigned char)s[i + 1]) &&
		            (p->n == 0 || lead_dot_ok(&p->t[p->n - 1])))) {
			lex_number(p, t, s, &i);
		} else if (ch == '\'' || ch == '"') {
			lex_string(p, t, s, &i);
		} else if (ch == '$') {
			size_t j = i + 1;
			if (s[j] == '`') {
				size_t st = ++j;
				while (s[j] && s[j] != '`')
					j++;
				t->s = ar_strndup(p->c, s + st, j - st);
				if (s[j])
					j++;
			} else {
				while (isalnum((unsigned char)s[j]) ||
				       s[j] == '_')
					j++;
				t->s = ar_strndup(p->c, s + i + 1, j - i - 1);
			}
			t->k = T_PARAM;
			i = j;
		} else {
			t->k = T_PUNCT;
			int got = 0;
			for (int k = 0; puncts[k]; k++)
				if (s[i] == puncts[k][0] &&
				    s[i + 1] == puncts[k][1]) {
					t->s = puncts[k];
					t->len = 2;
					i += 2;
					got = 1;
					break;
				}
			if (!got) {
				if (!strchr("()[]{},.:|;+-*/%^=<>&!", ch))
					perr(p, t,
					     "UnexpectedSyntax: unexpected "
					     "character '%c'",
					     ch);
				t->s = ar_strndup(p->c, s + i, 1);
				t->len = 1;
				i++;
			}
		}
		t->end = (uint32_t)i;
		p->n++;
	}
}

/* ---- token helpers ----------------------------------------------------- */

static struct tok *cur(struct parser *p)
{
	return &p->t[p->pos];
}
static struct tok *peekn(struct parser *p, size_t k)
{
	size_t i = p->pos + k;
	return &p->t[i < p->n ? i : p->n - 1];
}
/* kw is a keyword of letters: a first letter that differs in any case
 * (c | 0x20 folds A-Z onto a-z, and no other byte onto a letter) decides
 * most tokens without strcasecmp, which every precedence level asks
 * about every operand. */
static int is_kw_tok(struct tok *t, const char *kw)
{
	return t->k == T_IDENT && (t->s[0] | 0x20) == (kw[0] | 0x20) &&
	       strcasecmp(t->s, kw) == 0;
}
static int is_kw(struct parser *p, const char *kw)
{
	return is_kw_tok(cur(p), kw);
}
/* A punctuation token is one or two characters (lex), and so is every s
 * asked about: two bytes compare them. */
static int punct_is(struct tok *t, const char *s)
{
	return t->k == T_PUNCT && t->s[0] == s[0] && t->s[1] == s[1];
}
static int is_p(struct parser *p, const char *s)
{
	return punct_is(cur(p), s);
}
static int is_p_at(struct parser *p, size_t k, const char *s)
{
	return punct_is(peekn(p, k), s);
}
static int accept_kw(struct parser *p, const char *kw)
{
	if (is_kw(p, kw)) {
		p->pos++;
		return 1;
	}
	return 0;
}
static int accept_p(struct parser *p, const char *s)
{
	if (is_p(p, s)) {
		p->pos++;
		return 1;
	}
	return 0;
}
static void expect_kw(struct parser *p, const char *kw)
{
	if (!accept_kw(p, kw))
		perr(p, cur(p), "UnexpectedSyntax: expected %s", kw);
}
static void expect_p(struct parser *p, const char *s)
{
	if (!accept_p(p, s))
		perr(p, cur(p), "UnexpectedSyntax: expected '%s'", s);
}
static const char *ident(struct parser *p)
{
	struct tok *t = cur(p);
	if (t->k == T_IDENT || t->k == T_QIDENT) {
		p->pos++;
		return t->s;
	}
	perr(p, t, "UnexpectedSyntax: expected an identifier");
}

/* symbolic name that is not a reserved clause keyword */
static const char *reserved[] = {
    "MATCH",  "RETURN",   "WITH",     "WHERE",  "CREATE",  "MERGE", "SET",
    "DELETE", "DETACH",   "REMOVE",   "UNWIND", "ORDER",   "SKIP",  "LIMIT",
    "UNION",  "OPTIONAL", "CALL",     "YIELD",  "FOREACH", "AND",   "OR",
    "XOR",    "NOT",      "IN",       "AS",     "IS",      "NULL",  "TRUE",
    "FALSE",  "CASE",     "WHEN",     "THEN",   "ELSE",    "END",   "DISTINCT",
    "STARTS", "ENDS",     "CONTAINS", "ON",     NULL};

static int is_reserved(struct tok *t)
{
	if (t->k != T_IDENT)
		return 0;
	for (int i = 0; reserved[i]; i++)
		if (is_kw_tok(t, reserved[i]))
			return 1;
	return 0;
}

static struct expr *mk(struct parser *p, int kind, struct tok *t)
{
	struct expr *e = ar_alloc(p->c, sizeof(*e));
	e->kind = (uint8_t)kind;
	e->line = t->line;
	e->col = t->col;
	e->slot = -1;
	e->fn = -1;
	return e;
}

static void set_text(struct parser *p, struct expr *e, size_t tok_start)
{
	size_t last = p->pos ? p->pos - 1 : 0;
	uint32_t a = p->t[tok_start].off, b = p->t[last].end;
	if (b < a)
		b = a;
	e->text = ar_strndup(p->c, p->src + a, b - a);
}

/* growable pointer vector in the arena */
struct pvec {
	void **v;
	size_t n, cap;
};
static void pv_push(struct parser *p, struct pvec *v, void *x)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 4;
		void **nv = ar_alloc(p->c, sizeof(void *) * nc);
		if (v->n)
			memcpy(nv, v->v, sizeof(void *) * v->n);
		v->v = nv;
		v->cap = nc;
	}
	v->v[v->n++] = x;
}

static struct expr *expr(struct parser *p);
static struct query *parse_query(struct parser *p);
static struct ppart *pattern_part(struct parser *p);
static int lx_start(struct parser *p, int at);
static void label_expr(struct parser *p, const char ***out, size_t *n,
                       struct lexpr **lx);
static struct pattern *pattern(struct parser *p);
static int is_qpp_start(struct parser *p);
static void memo_on(struct parser *p);

static _Atomic uint64_t parse_steps_total;
uint64_t q_parse_steps_total(void)
{
	return parse_steps_total;
}

static void enter(struct parser *p)
{
	parse_steps_total++;
	if (++p->steps > p->steps_max)
		qerr_at(p->c, LORA_ELIMIT, cur(p)->line, cur(p)->col,
		        "statement too complex to parse (more than %llu steps)",
		        (unsigned long long)p->steps_max);
	if (++p->depth > p->peak)
		p->peak = p->depth;
	if (p->depth <= (int)p->c->lim.nesting_depth_max)
		return;
	p->depth_hits++;
	qerr_at(p->c, LORA_ELIMIT, cur(p)->line, cur(p)->col,
	        "query nesting deeper than %u", p->c->lim.nesting_depth_max);
}

/* ---- expressions ------------------------------------------------------- */

static struct expr *map_literal(struct parser *p)
{
	struct tok *t = cur(p);
	expect_p(p, "{");
	struct expr *e = mk(p, E_MAP, t);
	struct pvec ks = {0}, vs = {0};
	if (!is_p(p, "}")) {
		do {
			const char *k = ident(p);
			expect_p(p, ":");
			pv_push(p, &ks, (void *)k);
			pv_push(p, &vs, expr(p));
		} while (accept_p(p, ","));
	}
	expect_p(p, "}");
	e->nargs = vs.n;
	e->args = (struct expr **)vs.v;
	e->labels = (const char **)ks.v;
	e->nlabels = ks.n;
	return e;
}

static struct expr *case_expr(struct parser *p, struct tok *t)
{
	struct expr *e = mk(p, E_CASE, t);
	if (!is_kw(p, "WHEN"))
		e->a = expr(p);
	struct pvec w = {0}, th = {0};
	while (accept_kw(p, "WHEN")) {
		pv_push(p, &w, expr(p));
		expect_kw(p, "THEN");
		pv_push(p, &th, expr(p));
	}
	if (!w.n)
		perr(p, cur(p), "UnexpectedSyntax: CASE without WHEN");
	if (accept_kw(p, "ELSE"))
		e->b = expr(p);
	expect_kw(p, "END");
	e->whens = (struct expr **)w.v;
	e->thens = (struct expr **)th.v;
	e->nwhen = w.n;
	return e;
}

/* x IN list [WHERE pred] : used by comprehensions and quantifiers */
static void in_clause(struct parser *p, struct expr *e)
{
	e->name = ident(p);
	expect_kw(p, "IN");
	e->a = expr(p);
	if (accept_kw(p, "WHERE")) {
		int nb = p->nobar;
		p->nobar = 1;
		e->b = expr(p);
		p->nobar = nb;
	}
}

static int try_parse(struct parser *p, void *(*fn)(struct parser *), void **out)
{
	struct qctx *c = p->c;
	jmp_buf save;
	memcpy(save, c->jb, sizeof save);
	size_t pos = p->pos;
	int depth = p->depth, nobar = p->nobar, peak = p->peak;
	if (setjmp(c->jb) == 0) {
		*out = fn(p);
		memcpy(c->jb, save, sizeof save);
		return 1;
	}
	memcpy(c->jb, save, sizeof save);
	p->pos = pos;
	p->depth = depth;
	p->nobar = nobar;
	if (peak > p->peak) /* the depth reached still counts (expr) */
		p->peak = peak;
	if (c->err) {
		c->err->code = 0;
		c->err->message[0] = 0;
		c->err->excerpt[0] = 0;
		c->err->line = c->err->column = 0;
	}
	return 0;
}

static void *rel_pattern_part(struct parser *p)
{
	struct ppart *pp = pattern_part(p);
	if (pp->nrels == 0)
		perr(p, cur(p), "not a relationship pattern");
	return pp;
}

/*
 * A relationship pattern is tried at every "(" of an expression, and most
 * attempts fail; the "(" is then parsed again as an expression. A failure
 * is remembered by token position, so that nested parentheses are not
 * tried again and again: each level tried twice was exponential
 * (fuzz_cypher: a 1 KiB statement of "(((" and maps parsed for seconds).
 * A failure that met the nesting limit holds only at that depth and
 * deeper (with less room left, the same tokens meet the limit again);
 * tried shallower, the same tokens may parse. The step limit of enter()
 * bounds whatever backtracking is left.
 */
/* Fills p->close: each "(" paired with its ")" by a stack over all three
 * bracket kinds; a closer that does not match the innermost opener is
 * passed over (no parse accepts such text, so no pattern needs it). */
static void match_parens(struct parser *p)
{
	p->close = ar_alloc(p->c, p->n * sizeof *p->close);
	uint32_t *stack = ar_alloc_nz(p->c, p->n * sizeof *stack);
	size_t top = 0;
	for (size_t i = 0; i < p->n; i++) {
		struct tok *t = &p->t[i];
		if (t->k != T_PUNCT || t->len != 1)
			continue;
		const char *open = strchr("([{", t->s[0]);
		const char *shut = strchr(")]}", t->s[0]);
		if (open) {
			stack[top++] = (uint32_t)i;
		} else if (shut && top &&
		           p->t[stack[top - 1]].s[0] == "([{"[shut - ")]}"]) {
			top--;
			if (t->s[0] == ')')
				p->close[stack[top]] = (uint32_t)i;
		}
	}
}

/*
 * Whether pattern_part at the current "(" could end with a relationship.
 * A node pattern that parses ends at the ")" paired with its "(" (every
 * construct inside closes what it opens), and only "-", "<-" or a
 * quantified path "((" after it continue the pattern; otherwise the
 * attempt would fail, so it is not made. Most parentheses in
 * expressions, (a + b) and f((x)), are decided here without parsing.
 * A quantified path "((...)..)" here ends at the same ")" and needs its
 * quantifier (+, * or {) after it: without that check, each "(" of a run
 * of unclosed ones started a chain of quantified paths as deep as the
 * nesting limit (quadratic: a 516-byte fuzz_cypher input made 6,934
 * pattern parts, 5.5 MB and ~6 ms; test_query's parse_qpp_runs).
 */
static int rel_may_start(struct parser *p)
{
	if (!p->close)
		match_parens(p);
	size_t r = p->close[p->pos];
	if (r == 0 || r + 1 >= p->n)
		return 0;
	int qpp = is_qpp_start(p);
	size_t save = p->pos;
	p->pos = r + 1;
	int yes = qpp ? is_p(p, "+") || is_p(p, "*") || is_p(p, "{")
	              : is_p(p, "-") || (is_p(p, "<") && is_p_at(p, 1, "-")) ||
	                    is_qpp_start(p);
	p->pos = save;
	return yes;
}

static int try_rel_pattern(struct parser *p, void **out)
{
	if (!rel_may_start(p))
		return 0;
	memo_on(p);
	size_t k = 2 * p->pos + (p->nobar != 0);
	uint32_t at = (uint32_t)p->depth + 1;
	if (p->pat_failed && p->pat_failed[k] && at >= p->pat_failed[k]) {
		/* a failure at the nesting limit (> 1) is that limit met
		 * again: an enclosing expr() must not be kept as depth_free */
		if (p->pat_failed[k] > 1)
			p->depth_hits++;
		return 0;
	}
	unsigned hits = p->depth_hits;
	if (try_parse(p, rel_pattern_part, out))
		return 1;
	if (p->steps > p->steps_max) /* try_parse caught it: raise again */
		qerr_at(p->c, LORA_ELIMIT, cur(p)->line, cur(p)->col,
		        "statement too complex to parse (more than %llu steps)",
		        (unsigned long long)p->steps_max);
	if (!p->pat_failed) {
		size_t cnt = 2 * p->n + 2;
		p->pat_failed = ar_alloc(p->c, cnt * sizeof *p->pat_failed);
		memset(p->pat_failed, 0, cnt * sizeof *p->pat_failed);
	}
	uint32_t from = hits == p->depth_hits ? 1 : at;
	if (p->pat_failed[k] == 0 || from < p->pat_failed[k])
		p->pat_failed[k] = from;
	return 0;
}

static struct expr *list_or_comp(struct parser *p, struct tok *t)
{
	/* [ already consumed */
	struct tok *a = cur(p), *b = peekn(p, 1);
	if ((a->k == T_IDENT || a->k == T_QIDENT) && is_kw_tok(b, "IN")) {
		size_t save = p->pos;
		memo_on(p);
		struct expr *e = mk(p, E_LISTCOMP, t);
		in_clause(p, e);
		if (accept_p(p, "|")) {
			e->c = expr(p);
		}
		if (accept_p(p, "]"))
			return e;
		p->pos = save;
	}
	if (is_p(p, "(")) {
		void *pp;
		size_t save = p->pos;
		(void)save;
		struct expr *e = mk(p, E_PATCOMP, t);
		const char *pv = NULL;
		if (try_rel_pattern(p, &pp)) {
			e->pat = ar_alloc(p->c, sizeof(struct pattern));
			e->pat->parts = pp;
			e->pat->nparts = 1;
			((struct ppart *)pp)->pathvar = pv;
			if (accept_kw(p, "WHERE")) {
				int nb = p->nobar;
				p->nobar = 1;
				e->b = expr(p);
				p->nobar = nb;
			}
			expect_p(p, "|");
			e->c = expr(p);
			expect_p(p, "]");
			return e;
		}
	}
	if ((a->k == T_IDENT || a->k == T_QIDENT) && is_p_at(p, 1, "=") &&
	    is_p_at(p, 2, "(")) {
		/* [p = (a)-->(b) | expr] */
		size_t save = p->pos;
		const char *pv = ident(p);
		p->pos++;
		void *pp;
		if (try_rel_pattern(p, &pp)) {
			struct expr *e = mk(p, E_PATCOMP, t);
			e->pat = ar_alloc(p->c, sizeof(struct pattern));
			e->pat->parts = pp;
			e->pat->nparts = 1;
			((struct ppart *)pp)->pathvar = pv;
			if (accept_kw(p, "WHERE")) {
				int nb = p->nobar;
				p->nobar = 1;
				e->b = expr(p);
				p->nobar = nb;
			}
			expect_p(p, "|");
			e->c = expr(p);
			expect_p(p, "]");
			return e;
		}
		p->pos = save;
	}
	struct expr *e = mk(p, E_LIST, t);
	struct pvec v = {0};
	if (!is_p(p, "]")) {
		do {
			pv_push(p, &v, expr(p));
		} while (accept_p(p, ","));
	}
	expect_p(p, "]");
	e->args = (struct expr **)v.v;
	e->nargs = v.n;
	return e;
}

static struct expr *subquery_expr(struct parser *p, struct tok *t, int kind)
{
	/* EXISTS { ... } / COUNT { ... }: either a full query or a pattern
	 * with optional WHERE */
	struct expr *e = mk(p, kind, t);
	expect_p(p, "{");
	if (is_kw(p, "MATCH") || is_kw(p, "OPTIONAL") || is_kw(p, "WITH") ||
	    is_kw(p, "UNWIND") || is_kw(p, "CALL") || is_kw(p, "RETURN")) {
		e->sub = parse_query(p);
	} else {
		e->pat = pattern(p);
		if (accept_kw(p, "WHERE"))
			e->b = expr(p);
	}
	expect_p(p, "}");
	return e;
}

static int is_normal_form(const char *s)
{
	return !strcasecmp(s, "NFC") || !strcasecmp(s, "NFD") ||
	       !strcasecmp(s, "NFKC") || !strcasecmp(s, "NFKD");
}

/* normalize(s, NFKC): the form is a keyword, passed on as a string */
static void normal_form_arg(struct parser *p, struct expr *e)
{
	if (strcasecmp(e->name, "normalize") || e->nargs != 2 ||
	    e->args[1]->kind != E_VAR || !is_normal_form(e->args[1]->name))
		return;
	struct expr *f = e->args[1];
	f->kind = E_LIT;
	f->lit = v_str(p->c, f->name, strlen(f->name));
}

/* After IS [NOT]: `[NFC|NFD|NFKC|NFKD] NORMALIZED`, as a call of the
 * function "is normalized"; NULL when the tokens are not that. */
static struct expr *is_normalized(struct parser *p, struct tok *t,
                                  struct expr *subject)
{
	const char *form = "NFC";
	size_t k = 0;
	if (cur(p)->k == T_IDENT && is_normal_form(cur(p)->s)) {
		form = cur(p)->s;
		k = 1;
	}
	if (!is_kw_tok(peekn(p, k), "NORMALIZED"))
		return NULL;
	p->pos += k + 1;
	struct expr *e = mk(p, E_CALL, t);
	e->name = "is normalized";
	e->nargs = 2;
	e->args = ar_alloc(p->c, 2 * sizeof(struct expr *));
	e->args[0] = subject;
	e->args[1] = mk(p, E_LIT, t);
	e->args[1]->lit = v_str(p->c, form, strlen(form));
	return e;
}

static struct expr *func_call(struct parser *p, struct tok *t, const char *name)
{
	/* '(' consumed */
	struct expr *e = mk(p, E_CALL, t);
	e->name = name;
	if (strcasecmp(name, "count") == 0 && is_p(p, "*") &&
	    is_p_at(p, 1, ")")) {
		p->pos += 2;
		e->kind = E_COUNTSTAR;
		return e;
	}
	if (accept_kw(p, "DISTINCT"))
		e->distinct = 1;
	struct pvec v = {0};
	if (!is_p(p, ")")) {
		do {
			pv_push(p, &v, expr(p));
		} while (accept_p(p, ","));
	}
	expect_p(p, ")");
	e->args = (struct expr **)v.v;
	e->nargs = v.n;
	normal_form_arg(p, e);
	return e;
}

static struct expr *map_projection(struct parser *p, struct expr *var)
{
	struct tok *t = cur(p);
	expect_p(p, "{");
	struct expr *e = mk(p, E_MAPPROJ, t);
	e->a = var;
	size_t cap = 8;
	e->mp = ar_alloc(p->c, sizeof(struct mapproj_item) * cap);
	if (!is_p(p, "}")) {
		do {
			if (e->nmp == cap) {
				struct mapproj_item *n =
				    ar_alloc(p->c, sizeof(*n) * cap * 2);
				memcpy(n, e->mp, sizeof(*n) * cap);
				e->mp = n;
				cap *= 2;
			}
			struct mapproj_item *it = &e->mp[e->nmp++];
			if (accept_p(p, ".")) {
				if (accept_p(p, "*")) {
					it->kind = 3;
				} else {
					it->kind = 1;
					it->key = ident(p);
				}
			} else {
				struct tok *kt = cur(p);
				it->key = ident(p);
				if (accept_p(p, ":")) {
					it->kind = 0;
					it->e = expr(p);
				} else {
					it->kind = 2;
					it->e = mk(p, E_VAR, kt);
					it->e->name = it->key;
				}
			}
		} while (accept_p(p, ","));
	}
	expect_p(p, "}");
	return e;
}

static struct expr *atom(struct parser *p)
{
	struct tok *t = cur(p);
	struct expr *e;
	switch (t->k) {
	case T_INT:
		p->pos++;
		if (t->int_overflow)
			perr(p, t,
			     "IntegerOverflow: integer literal too large");
		e = mk(p, E_LIT, t);
		e->lit = v_int(t->i);
		return e;
	case T_FLOAT:
		p->pos++;
		e = mk(p, E_LIT, t);
		e->lit = v_float(t->f);
		return e;
	case T_STR:
		p->pos++;
		e = mk(p, E_LIT, t);
		e->lit = v_str(p->c, t->s, t->len);
		return e;
	case T_PARAM:
		p->pos++;
		e = mk(p, E_PARAM, t);
		e->name = t->s;
		return e;
	case T_PUNCT:
		if (accept_p(p, "[")) {
			return list_or_comp(p, t);
		}
		if (is_p(p, "{"))
			return map_literal(p);
		if (is_p(p, "(")) {
			void *pp;
			if (try_rel_pattern(p, &pp)) {
				e = mk(p, E_PATPRED, t);
				e->pat = ar_alloc(p->c, sizeof(struct pattern));
				e->pat->parts = pp;
				e->pat->nparts = 1;
				return e;
			}
			p->pos++;
			int nb = p->nobar;
			p->nobar = 0; /* (x:A|B) inside a comprehension */
			e = expr(p);
			p->nobar = nb;
			expect_p(p, ")");
			return e;
		}
		perr(p, t, "UnexpectedSyntax: unexpected '%s'", t->s);
	case T_IDENT:
	case T_QIDENT:
		break;
	default:
		perr(p, t, "UnexpectedSyntax: unexpected end of input");
	}
	if (t->k == T_IDENT) {
		if (is_kw(p, "true") || is_kw(p, "false") || is_kw(p, "null")) {
			p->pos++;
			e = mk(p, E_LIT, t);
			e->lit = is_kw_tok(t, "null")
			             ? v_null()
			             : v_bool(is_kw_tok(t, "true"));
			return e;
		}
		if (is_kw(p, "CASE")) {
			p->pos++;
			return case_expr(p, t);
		}
		if ((is_kw(p, "EXISTS") || is_kw(p, "COUNT")) &&
		    is_p_at(p, 1, "{")) {
			int k = is_kw(p, "EXISTS") ? E_EXISTS : E_COUNTSUB;
			p->pos++;
			return subquery_expr(p, t, k);
		}
		static const char *quants[] = {"all", "any", "none", "single"};
		for (int q = 0; q < 4; q++)
			if (is_kw(p, quants[q]) && is_p_at(p, 1, "(") &&
			    (peekn(p, 2)->k == T_IDENT ||
			     peekn(p, 2)->k == T_QIDENT) &&
			    is_kw_tok(peekn(p, 3), "IN")) {
				p->pos += 2;
				e = mk(p, E_QUANT, t);
				e->op[0] = "ayns"[q];
				in_clause(p, e);
				expect_p(p, ")");
				return e;
			}
		if (is_kw(p, "reduce") && is_p_at(p, 1, "(")) {
			p->pos += 2;
			e = mk(p, E_REDUCE, t);
			const char *acc = ident(p);
			expect_p(p, "=");
			e->c = expr(p);
			expect_p(p, ",");
			e->name = ident(p);
			expect_kw(p, "IN");
			e->a = expr(p);
			expect_p(p, "|");
			e->b = expr(p);
			expect_p(p, ")");
			e->d = mk(p, E_VAR, t);
			e->d->name = acc;
			return e;
		}
		if ((is_kw(p, "shortestPath") ||
		     is_kw(p, "allShortestPaths")) &&
		    is_p_at(p, 1, "(")) {
			int sp = is_kw(p, "shortestPath") ? 1 : 2;
			p->pos += 2;
			struct ppart *pp = pattern_part(p);
			pp->shortest = sp;
			expect_p(p, ")");
			e = mk(p, E_PATPRED, t);
			e->op[0] = 's';
			e->pat = ar_alloc(p->c, sizeof(struct pattern));
			e->pat->parts = pp;
			e->pat->nparts = 1;
			return e;
		}
	}
	/* function call: name(.name)* ( */
	size_t k = 0;
	while ((peekn(p, k)->k == T_IDENT || peekn(p, k)->k == T_QIDENT) &&
	       is_p_at(p, k + 1, "."))
		k += 2;
	if ((peekn(p, k)->k == T_IDENT || peekn(p, k)->k == T_QIDENT) &&
	    is_p_at(p, k + 1, "(")) {
		struct lora_buf *b = qbuf(p->c);
		for (size_t i = 0; i <= k; i += 2) {
			if (i)
				lora_buf_putc(b, '.');
			lora_buf_puts(b, peekn(p, i)->s);
		}
		const char *name = qbuf_str(p->c, b);
		p->pos += k + 2;
		return func_call(p, t, name);
	}
	p->pos++;
	e = mk(p, E_VAR, t);
	e->name = t->s;
	if (is_p(p, "{") && t->k != T_STR)
		return map_projection(p, e);
	return e;
}

static struct expr *postfix(struct parser *p)
{
	size_t st = p->pos;
	int depth0 = p->depth;
	struct expr *e = atom(p);
	for (;;) {
		struct tok *t = cur(p);
		enter(p);
		if (is_p(p, ".") &&
		    (peekn(p, 1)->k == T_IDENT || peekn(p, 1)->k == T_QIDENT)) {
			p->pos++;
			struct expr *x = mk(p, E_PROP, t);
			x->a = e;
			x->name = ident(p);
			e = x;
		} else if (is_p(p, "[")) {
			p->pos++;
			struct expr *lo = NULL, *hi = NULL;
			if (!is_p(p, ".."))
				lo = expr(p);
			if (accept_p(p, "..")) {
				if (!is_p(p, "]"))
					hi = expr(p);
				struct expr *x = mk(p, E_SLICE, t);
				x->a = e;
				x->b = lo;
				x->c = hi;
				e = x;
			} else {
				if (!lo)
					perr(p, cur(p),
					     "UnexpectedSyntax: "
					     "empty index");
				struct expr *x = mk(p, E_INDEX, t);
				x->a = e;
				x->b = lo;
				e = x;
			}
			expect_p(p, "]");
		} else if (is_p(p, ":") && lx_start(p, 1)) {
			struct expr *x = mk(p, E_LABELS, t);
			x->a = e;
			p->pos++;
			label_expr(p, &x->labels, &x->nlabels, &x->lx);
			e = x;
		} else {
			break;
		}
		set_text(p, e, st);
	}
	p->depth = depth0;
	if (!e->text)
		set_text(p, e, st);
	return e;
}

static struct expr *unary(struct parser *p)
{
	struct tok *t = cur(p);
	size_t st = p->pos;
	if (is_p(p, "-") || is_p(p, "+")) {
		int neg = is_p(p, "-");
		p->pos++;
		enter(p);
		/* -9223372036854775808 */
		struct tok *n = cur(p);
		if (neg && n->k == T_INT && n->int_overflow == 2) {
			p->pos++;
			struct expr *e = mk(p, E_LIT, t);
			e->lit = v_int(INT64_MIN);
			p->depth--;
			set_text(p, e, st);
			return e;
		}
		struct expr *e = mk(p, neg ? E_NEG : E_POS, t);
		e->a = unary(p);
		p->depth--;
		set_text(p, e, st);
		return e;
	}
	return postfix(p);
}

static struct expr *binary(struct parser *p, int kind, const char *op,
                           struct expr *a, struct expr *b, struct tok *t)
{
	struct expr *e = mk(p, kind, t);
	if (op) {
		e->op[0] = op[0];
		e->op[1] = op[1];
	}
	e->a = a;
	e->b = b;
	return e;
}

static struct expr *power(struct parser *p)
{
	size_t st = p->pos;
	int depth0 = p->depth;
	struct expr *e = unary(p);
	while (is_p(p, "^")) {
		enter(p);
		struct tok *t = cur(p);
		p->pos++;
		e = binary(p, E_BIN, "^", e, unary(p), t);
		set_text(p, e, st);
	}
	p->depth = depth0;
	return e;
}

static struct expr *mult(struct parser *p)
{
	size_t st = p->pos;
	int depth0 = p->depth;
	struct expr *e = power(p);
	while (is_p(p, "*") || is_p(p, "/") || is_p(p, "%")) {
		enter(p);
		struct tok *t = cur(p);
		p->pos++;
		e = binary(p, E_BIN, t->s, e, power(p), t);
		set_text(p, e, st);
	}
	p->depth = depth0;
	return e;
}

static struct expr *add(struct parser *p)
{
	size_t st = p->pos;
	int depth0 = p->depth;
	struct expr *e = mult(p);
	while (is_p(p, "+") || is_p(p, "-")) {
		enter(p);
		struct tok *t = cur(p);
		p->pos++;
		e = binary(p, E_BIN, t->s, e, mult(p), t);
		set_text(p, e, st);
	}
	p->depth = depth0;
	return e;
}

static struct expr *strpred(struct parser *p)
{
	size_t st = p->pos;
	int depth0 = p->depth;
	struct expr *e = add(p);
	for (;;) {
		struct tok *t = cur(p);
		if (is_kw(p, "IS")) {
			p->pos++;
			int neg = accept_kw(p, "NOT");
			struct expr *x = is_normalized(p, t, e);
			if (x && neg) {
				struct expr *n = mk(p, E_NOT, t);
				n->a = x;
				x = n;
			} else if (!x) {
				expect_kw(p, "NULL");
				x = mk(p, neg ? E_ISNOTNULL : E_ISNULL, t);
				x->a = e;
			}
			e = x;
		} else if (is_kw(p, "IN")) {
			p->pos++;
			e = binary(p, E_IN, NULL, e, add(p), t);
		} else if (is_kw(p, "STARTS") &&
		           is_kw_tok(peekn(p, 1), "WITH")) {
			p->pos += 2;
			e = binary(p, E_STARTS, NULL, e, add(p), t);
		} else if (is_kw(p, "ENDS") && is_kw_tok(peekn(p, 1), "WITH")) {
			p->pos += 2;
			e = binary(p, E_ENDS, NULL, e, add(p), t);
		} else if (is_kw(p, "CONTAINS")) {
			p->pos++;
			e = binary(p, E_CONTAINS, NULL, e, add(p), t);
		} else if (is_p(p, "=~")) {
			p->pos++;
			e = binary(p, E_REGEX, NULL, e, add(p), t);
		} else {
			break;
		}
		set_text(p, e, st);
	}
	p->depth = depth0;
	return e;
}

static int cmp_op(struct parser *p)
{
	return is_p(p, "=") || is_p(p, "<>") || is_p(p, "!=") || is_p(p, "<") ||
	       is_p(p, "<=") || is_p(p, ">") || is_p(p, ">=");
}

static struct expr *comparison(struct parser *p)
{
	size_t st = p->pos;
	int depth0 = p->depth;
	struct expr *e = strpred(p);
	struct expr *prev = e, *res = NULL;
	while (cmp_op(p)) {
		enter(p);
		struct tok *t = cur(p);
		p->pos++;
		const char *op = strcmp(t->s, "!=") == 0 ? "<>" : t->s;
		struct expr *rhs = strpred(p);
		struct expr *c = binary(p, E_CMP, op, prev, rhs, t);
		set_text(p, c, st);
		res = res ? binary(p, E_AND, NULL, res, c, t) : c;
		prev = rhs;
	}
	p->depth = depth0;
	if (res) {
		set_text(p, res, st);
		return res;
	}
	return e;
}

static struct expr *not_expr(struct parser *p)
{
	struct tok *t = cur(p);
	size_t st = p->pos;
	if (accept_kw(p, "NOT")) {
		enter(p);
		struct expr *e = mk(p, E_NOT, t);
		e->a = not_expr(p);
		p->depth--;
		set_text(p, e, st);
		return e;
	}
	return comparison(p);
}

static struct expr *and_expr(struct parser *p)
{
	size_t st = p->pos;
	int depth0 = p->depth;
	struct expr *e = not_expr(p);
	while (is_kw(p, "AND")) {
		enter(p);
		struct tok *t = cur(p);
		p->pos++;
		e = binary(p, E_AND, NULL, e, not_expr(p), t);
		set_text(p, e, st);
	}
	p->depth = depth0;
	return e;
}

static struct expr *xor_expr(struct parser *p)
{
	size_t st = p->pos;
	int depth0 = p->depth;
	struct expr *e = and_expr(p);
	while (is_kw(p, "XOR")) {
		enter(p);
		struct tok *t = cur(p);
		p->pos++;
		e = binary(p, E_XOR, NULL, e, and_expr(p), t);
		set_text(p, e, st);
	}
	p->depth = depth0;
	return e;
}

static struct expr *or_expr(struct parser *p)
{
	enter(p);
	size_t st = p->pos;
	int depth0 = p->depth;
	struct expr *e = xor_expr(p);
	while (is_kw(p, "OR")) {
		enter(p);
		struct tok *t = cur(p);
		p->pos++;
		e = binary(p, E_OR, NULL, e, xor_expr(p), t);
		set_text(p, e, st);
	}
	p->depth = depth0;
	p->depth--;
	return e;
}

/* From the first attempt that may backtrack on: expressions parsed are
 * kept by position (struct expr_memo). */
static void memo_on(struct parser *p)
{
	if (!p->memo)
		p->memo = ar_alloc(p->c, (2 * p->n + 2) * sizeof *p->memo);
}

/*
 * An expression. Parsed once per position, depth and `nobar` while memo
 * is on: an attempt that failed (a relationship pattern, a list
 * comprehension) leaves the expressions inside it parsed, and parsing
 * the same tokens again as something else reuses them. What a parse
 * depends on is the position, nobar and the nesting room left (the step
 * count only ever refuses). A reused parse that met the nesting limit
 * counts as meeting it again (depth_hits), as try_rel_pattern asks.
 */
static struct expr *expr(struct parser *p)
{
	if (!p->memo)
		return or_expr(p);
	size_t k = 2 * p->pos + (p->nobar != 0);
	struct expr_memo *m = &p->memo[k];
	int room = (int)p->c->lim.nesting_depth_max - p->depth;
	if (m->e &&
	    (m->depth_free ? m->rel_peak <= room : p->depth == m->depth)) {
		if (!m->depth_free)
			p->depth_hits++;
		if (p->depth + m->rel_peak > p->peak)
			p->peak = p->depth + m->rel_peak;
		p->pos = m->end;
		return m->e;
	}
	/* p->peak restarts here and is merged back after (try_parse merges
	 * it when a parse inside is abandoned) */
	int depth = p->depth, peak = p->peak;
	unsigned hits = p->depth_hits;
	p->peak = depth;
	struct expr *e = or_expr(p);
	m->e = e;
	m->end = (uint32_t)p->pos;
	m->depth = depth;
	m->depth_free = hits == p->depth_hits;
	m->rel_peak = p->peak - depth;
	if (peak > p->peak)
		p->peak = peak;
	return e;
}

/* ---- patterns ---------------------------------------------------------- */

static struct expr *props_opt(struct parser *p)
{
	if (is_p(p, "{"))
		return map_literal(p);
	if (cur(p)->k == T_PARAM) {
		struct tok *t = cur(p);
		p->pos++;
		struct expr *e = mk(p, E_PARAM, t);
		e->name = t->s;
		return e;
	}
	return NULL;
}

/* ---- label expressions (Neo4j 5): `|` or, `&` and, `!` not, `%` any
 * label, parentheses; the legacy `:A:B` conjunction may not be mixed with
 * the new symbols ---------------------------------------------------------- */

struct lxparse {
	int colon; /* a `:` conjunction was used */
	int sym;   /* one of | & ! % ( was used */
};

static struct lexpr *lx_new(struct parser *p, int op, struct lexpr *a,
                            struct lexpr *b)
{
	struct lexpr *x = ar_alloc(p->c, sizeof *x);
	memset(x, 0, sizeof *x);
	x->op = op;
	x->a = a;
	x->b = b;
	return x;
}

static struct lexpr *lx_or(struct parser *p, struct lxparse *f);

static struct lexpr *lx_atom(struct parser *p, struct lxparse *f)
{
	enter(p);
	struct lexpr *x;
	if (accept_p(p, "!")) {
		f->sym = 1;
		x = lx_new(p, LX_NOT, lx_atom(p, f), NULL);
	} else if (accept_p(p, "(")) {
		f->sym = 1;
		int nb = p->nobar;
		p->nobar = 0;
		x = lx_or(p, f);
		p->nobar = nb;
		expect_p(p, ")");
	} else if (accept_p(p, "%")) {
		f->sym = 1;
		x = lx_new(p, LX_ANY, NULL, NULL);
	} else {
		x = lx_new(p, LX_LABEL, NULL, NULL);
		x->label = ident(p);
	}
	p->depth--;
	return x;
}

static int lx_start(struct parser *p, int at)
{
	struct tok *t = peekn(p, at);
	return t->k == T_IDENT || t->k == T_QIDENT || is_p_at(p, at, "!") ||
	       is_p_at(p, at, "%") || is_p_at(p, at, "(");
}

static struct lexpr *lx_and(struct parser *p, struct lxparse *f)
{
	int depth0 = p->depth;
	struct lexpr *x = lx_atom(p, f);
	for (;;) {
		if (is_p(p, "&"))
			f->sym = 1;
		else if (is_p(p, ":") && lx_start(p, 1))
			f->colon = 1;
		else
			break;
		enter(p); /* a chain is as deep as nesting for lx_match */
		p->pos++;
		x = lx_new(p, LX_AND, x, lx_atom(p, f));
	}
	p->depth = depth0;
	return x;
}

static struct lexpr *lx_or(struct parser *p, struct lxparse *f)
{
	int depth0 = p->depth;
	struct lexpr *x = lx_and(p, f);
	while (!p->nobar && is_p(p, "|") &&
	       (lx_start(p, 1) || (is_p_at(p, 1, ":") && lx_start(p, 2)))) {
		enter(p);
		p->pos++;
		accept_p(p, ":");
		f->sym = 1;
		x = lx_new(p, LX_OR, x, lx_and(p, f));
	}
	p->depth = depth0;
	return x;
}

/* a conjunction of plain labels is flattened into labels[] */
static int lx_flatten(struct parser *p, struct lexpr *x, struct pvec *v)
{
	if (x->op == LX_LABEL) {
		pv_push(p, v, (void *)x->label);
		return 1;
	}
	return x->op == LX_AND && lx_flatten(p, x->a, v) &&
	       lx_flatten(p, x->b, v);
}

/* after the first `:`: labels[] when the expression is a plain
 * conjunction, else *lx */
static void label_expr(struct parser *p, const char ***out, size_t *n,
                       struct lexpr **lx)
{
	struct lxparse f = {0};
	struct tok *t = cur(p);
	struct lexpr *x = lx_or(p, &f);
	if (f.colon && f.sym)
		perr(p, t,
		     "InvalidLabelExpression: mixing label expression "
		     "symbols ('|', '&', '!', '%%') with colon (':') is not "
		     "allowed");
	struct pvec v = {0};
	*lx = NULL;
	if (!lx_flatten(p, x, &v)) {
		v.n = 0;
		*lx = x;
	}
	*out = (const char **)v.v;
	*n = v.n;
}

static void labels_opt(struct parser *p, const char ***out, size_t *n,
                       struct lexpr **lx)
{
	*out = NULL;
	*n = 0;
	*lx = NULL;
	if (accept_p(p, ":"))
		label_expr(p, out, n, lx);
}

static void node_pat(struct parser *p, struct pnode *n)
{
	expect_p(p, "(");
	n->slot = -1;
	struct tok *t = cur(p);
	if ((t->k == T_IDENT && !is_reserved(t)) || t->k == T_QIDENT) {
		n->var = t->s;
		p->pos++;
	}
	labels_opt(p, &n->labels, &n->nlabels, &n->lx);
	n->props = props_opt(p);
	expect_p(p, ")");
}

static void rel_detail(struct parser *p, struct prel *r)
{
	struct tok *t = cur(p);
	if ((t->k == T_IDENT && !is_reserved(t)) || t->k == T_QIDENT) {
		r->var = t->s;
		p->pos++;
	}
	struct pvec v = {0};
	if (accept_p(p, ":")) {
		pv_push(p, &v, (void *)ident(p));
		while (accept_p(p, "|")) {
			accept_p(p, ":");
			pv_push(p, &v, (void *)ident(p));
		}
	}
	r->types = (const char **)v.v;
	r->ntypes = v.n;
	if (accept_p(p, "*")) {
		r->varlen = 1;
		r->minh = 1;
		r->maxh = -1;
		if (cur(p)->k == T_INT) {
			r->minh = cur(p)->i;
			p->pos++;
			if (!is_p(p, ".."))
				r->maxh = r->minh;
		}
		if (accept_p(p, "..")) {
			if (cur(p)->k == T_INT) {
				r->maxh = cur(p)->i;
				p->pos++;
			}
		}
		if (r->maxh > QRY_VARLEN_BOUND_MAX ||
		    r->minh > QRY_VARLEN_BOUND_MAX)
			qerr_at(p->c, LORA_ELIMIT, cur(p)->line, cur(p)->col,
			        "variable-length bound above %d",
			        QRY_VARLEN_BOUND_MAX);
		if (cur(p)->k == T_FLOAT)
			perr(p, cur(p), "UnexpectedSyntax: bad range");
	}
	r->props = props_opt(p);
}

/* A quantifier after a parenthesised path or a relationship: `+` (1..),
 * `*` (0..), `{n}`, `{n,}`, `{,m}`, `{n,m}`. 0 when none follows. */
static int quantifier(struct parser *p, int64_t *minh, int64_t *maxh)
{
	struct tok *t = cur(p);
	if (accept_p(p, "+")) {
		*minh = 1, *maxh = -1;
	} else if (accept_p(p, "*")) {
		*minh = 0, *maxh = -1;
	} else if (is_p(p, "{") &&
	           (peekn(p, 1)->k == T_INT || is_p_at(p, 1, ","))) {
		p->pos++;
		*minh = 0, *maxh = -1;
		if (cur(p)->k == T_INT) {
			*minh = *maxh = cur(p)->i;
			p->pos++;
		}
		if (accept_p(p, ",")) {
			*maxh = -1;
			if (cur(p)->k == T_INT) {
				*maxh = cur(p)->i;
				p->pos++;
			}
		}
		expect_p(p, "}");
	} else {
		return 0;
	}
	if (*maxh > QRY_VARLEN_BOUND_MAX || *minh > QRY_VARLEN_BOUND_MAX ||
	    *minh < 0)
		qerr_at(p->c, LORA_ELIMIT, t->line, t->col,
		        "quantifier bound outside 0..%d", QRY_VARLEN_BOUND_MAX);
	if (*maxh >= 0 && *maxh < *minh)
		perr(p, t,
		     "UnexpectedSyntax: quantifier {%lld,%lld} has "
		     "its upper bound below its lower bound",
		     (long long)*minh, (long long)*maxh);
	return 1;
}

static int is_qpp_start(struct parser *p)
{
	return is_p(p, "(") && is_p_at(p, 1, "(");
}

static struct ppart *pattern_part(struct parser *p);

/* ((a)-[r:R]->(b) [WHERE pred]){min,max}: a quantified path pattern */
static void qpp_pat(struct parser *p, struct prel *r)
{
	struct tok *t = cur(p);
	expect_p(p, "(");
	struct qpp *q = ar_alloc(p->c, sizeof(*q));
	q->inner = *pattern_part(p);
	if (accept_kw(p, "WHERE"))
		q->where = expr(p);
	expect_p(p, ")");
	if (!quantifier(p, &r->minh, &r->maxh))
		perr(p, cur(p),
		     "UnexpectedSyntax: a parenthesised path pattern needs a "
		     "quantifier (+, *, {n}, {n,m})");
	if (q->inner.nrels == 0)
		perr(p, t,
		     "UnexpectedSyntax: a quantified path pattern needs "
		     "at least one relationship");
	for (size_t i = 0; i < q->inner.nrels; i++)
		if (q->inner.rels[i].varlen)
			perr(p, t,
			     "UnsupportedFeature: a quantified path pattern "
			     "holds fixed-length relationships only");
	r->slot = -1;
	r->varlen = 2;
	r->dir = D_OUT;
	r->q = q;
}

static void rel_pat(struct parser *p, struct prel *r)
{
	r->slot = -1;
	int left = accept_p(p, "<");
	expect_p(p, "-");
	if (accept_p(p, "[")) {
		rel_detail(p, r);
		expect_p(p, "]");
	}
	expect_p(p, "-");
	int right = accept_p(p, ">");
	if (left && right)
		r->dir = D_BOTH;
	else if (left)
		r->dir = D_IN;
	else if (right)
		r->dir = D_OUT;
	else
		r->dir = D_BOTH;
	struct tok *t = cur(p);
	int64_t lo, hi;
	if (quantifier(p, &lo, &hi)) { /* a quantified relationship */
		if (r->varlen)
			perr(p, t,
			     "UnexpectedSyntax: a variable-length "
			     "relationship cannot be quantified");
		r->varlen = 1;
		r->minh = lo;
		r->maxh = hi;
	}
}

static void anon_node(struct pnode *n)
{
	memset(n, 0, sizeof *n);
	n->slot = -1;
}

static struct ppart *pattern_part(struct parser *p)
{
	struct ppart *pp = ar_alloc(p->c, sizeof(*pp));
	pp->pathslot = -1;
	size_t cap = 4;
	pp->nodes = ar_alloc(p->c, sizeof(struct pnode) * (cap + 1));
	pp->rels = ar_alloc(p->c, sizeof(struct prel) * cap);
	if (is_qpp_start(p))
		anon_node(&pp->nodes[0]);
	else
		node_pat(p, &pp->nodes[0]);
	int depth0 = p->depth;
	while (is_p(p, "-") || (is_p(p, "<") && is_p_at(p, 1, "-")) ||
	       is_qpp_start(p)) {
		enter(p); /* matching recurses once per relationship */
		if (pp->nrels == cap) {
			struct pnode *nn = ar_alloc(p->c, sizeof(struct pnode) *
			                                      (cap * 2 + 1));
			struct prel *nr =
			    ar_alloc(p->c, sizeof(struct prel) * cap * 2);
			memcpy(nn, pp->nodes, sizeof(struct pnode) * (cap + 1));
			memcpy(nr, pp->rels, sizeof(struct prel) * cap);
			pp->nodes = nn;
			pp->rels = nr;
			cap *= 2;
		}
		if (is_qpp_start(p)) {
			/* (x) ((a)-->(b)){n} (y): the nodes around it are
			 * optional (anonymous when left out) */
			qpp_pat(p, &pp->rels[pp->nrels]);
			if (is_p(p, "(") && !is_qpp_start(p))
				node_pat(p, &pp->nodes[pp->nrels + 1]);
			else
				anon_node(&pp->nodes[pp->nrels + 1]);
		} else {
			rel_pat(p, &pp->rels[pp->nrels]);
			node_pat(p, &pp->nodes[pp->nrels + 1]);
		}
		pp->nrels++;
	}
	p->depth = depth0;
	return pp;
}

/* an optional non-negative integer path count after SHORTEST / ANY */
static int64_t path_count(struct parser *p, int64_t dflt)
{
	if (cur(p)->k != T_INT)
		return dflt;
	int64_t k = cur(p)->i;
	p->pos++;
	return k;
}

/* [ANY [k] | ALL | ANY SHORTEST | ALL SHORTEST | SHORTEST k [GROUPS]]
 * [WALK | TRAIL | ACYCLIC] [PATH | PATHS] before a pattern part */
static void path_prefix(struct parser *p, int *sel, int64_t *k, int *mode)
{
	struct tok *t = cur(p);
	if (is_kw(p, "ANY")) {
		p->pos++;
		*sel = accept_kw(p, "SHORTEST") ? SEL_SHORTEST : SEL_ANY;
		*k = *sel == SEL_ANY ? path_count(p, 1) : 1;
	} else if (is_kw(p, "ALL")) {
		p->pos++;
		if (accept_kw(p, "SHORTEST"))
			*sel = SEL_ALL_SHORTEST;
	} else if (is_kw(p, "SHORTEST") && peekn(p, 1)->k == T_INT) {
		p->pos++;
		*sel = SEL_SHORTEST;
		*k = path_count(p, 1);
	}
	if (accept_kw(p, "WALK"))
		*mode = PM_WALK;
	else if (accept_kw(p, "TRAIL"))
		*mode = PM_TRAIL;
	else if (accept_kw(p, "ACYCLIC"))
		*mode = PM_ACYCLIC;
	if (!accept_kw(p, "PATHS"))
		accept_kw(p, "PATH");
	if (*sel == SEL_SHORTEST &&
	    (accept_kw(p, "GROUPS") || accept_kw(p, "GROUP")))
		*sel = SEL_SHORTEST_GROUPS;
	if ((*sel == SEL_ANY || *sel == SEL_SHORTEST ||
	     *sel == SEL_SHORTEST_GROUPS) &&
	    *k < 1)
		perr(p, t, "UnexpectedSyntax: a path count must be positive");
}

static struct ppart *named_part(struct parser *p)
{
	const char *pv = NULL;
	if ((cur(p)->k == T_IDENT || cur(p)->k == T_QIDENT) &&
	    is_p_at(p, 1, "=")) {
		pv = cur(p)->s;
		p->pos += 2;
	}
	int sel = SEL_NONE, mode = PM_TRAIL;
	int64_t k = 1;
	path_prefix(p, &sel, &k, &mode);
	struct ppart *pp;
	if ((is_kw(p, "shortestPath") || is_kw(p, "allShortestPaths")) &&
	    is_p_at(p, 1, "(")) {
		int sp = is_kw(p, "shortestPath") ? 1 : 2;
		p->pos += 2;
		pp = pattern_part(p);
		pp->shortest = sp;
		expect_p(p, ")");
	} else {
		pp = pattern_part(p);
	}
	pp->pathvar = pv;
	pp->sel = sel;
	pp->selk = k;
	pp->mode = mode;
	if (sel && pp->shortest)
		perr(p, cur(p),
		     "UnexpectedSyntax: a path selector cannot "
		     "be combined with shortestPath()");
	return pp;
}

static struct pattern *pattern(struct parser *p)
{
	struct pattern *pat = ar_alloc(p->c, sizeof(*pat));
	struct pvec v = {0};
	do {
		pv_push(p, &v, named_part(p));
	} while (accept_p(p, ","));
	pat->parts = ar_alloc(p->c, sizeof(struct ppart) * v.n);
	for (size_t i = 0; i < v.n; i++)
		pat->parts[i] = *(struct ppart *)v.v[i];
	pat->nparts = v.n;
	return pat;
}

/* ---- clauses ----------------------------------------------------------- */

static struct clause *mkc(struct parser *p, int kind, struct tok *t)
{
	struct clause *c = ar_alloc(p->c, sizeof(*c));
	c->kind = kind;
	c->line = t->line;
	c->col = t->col;
	c->slot = -1;
	return c;
}

static struct proj *projection(struct parser *p, int is_with)
{
	struct proj *pr = ar_alloc(p->c, sizeof(*pr));
	if (accept_kw(p, "DISTINCT"))
		pr->distinct = 1;
	struct pvec v = {0};
	if (accept_p(p, "*")) {
		pr->star = 1;
		if (!accept_p(p, ","))
			goto tail;
	}
	do {
		size_t st = p->pos;
		struct proj_item *it = ar_alloc(p->c, sizeof(*it));
		it->slot = -1;
		it->e = expr(p);
		size_t en = p->pos;
		if (accept_kw(p, "AS")) {
			it->name = ident(p);
		} else {
			uint32_t a = p->t[st].off, b = p->t[en - 1].end;
			it->name = ar_strndup(p->c, p->src + a, b - a);
			if (is_with && it->e->kind != E_VAR)
				it->name = NULL; /* must be aliased */
		}
		pv_push(p, &v, it);
	} while (accept_p(p, ","));
tail:
	pr->nitems = v.n;
	pr->items = ar_alloc(p->c, sizeof(struct proj_item) * (v.n ? v.n : 1));
	for (size_t i = 0; i < v.n; i++)
		pr->items[i] = *(struct proj_item *)v.v[i];
	if (is_kw(p, "ORDER")) {
		p->pos++;
		expect_kw(p, "BY");
		struct pvec o = {0};
		do {
			struct sort_item *s = ar_alloc(p->c, sizeof(*s));
			s->e = expr(p);
			if (accept_kw(p, "DESC") || accept_kw(p, "DESCENDING"))
				s->desc = 1;
			else if (!accept_kw(p, "ASC"))
				accept_kw(p, "ASCENDING");
			pv_push(p, &o, s);
		} while (accept_p(p, ","));
		pr->norder = o.n;
		pr->order = ar_alloc(p->c, sizeof(struct sort_item) * o.n);
		for (size_t i = 0; i < o.n; i++)
			pr->order[i] = *(struct sort_item *)o.v[i];
	}
	if (accept_kw(p, "SKIP"))
		pr->skip = expr(p);
	if (accept_kw(p, "LIMIT"))
		pr->limit = expr(p);
	if (is_with && accept_kw(p, "WHERE"))
		pr->where = expr(p);
	return pr;
}

static void set_items(struct parser *p, struct setitem **out, size_t *n,
                      int remove)
{
	struct pvec v = {0};
	do {
		struct setitem *s = ar_alloc(p->c, sizeof(*s));
		struct tok *t = cur(p);
		size_t st = p->pos;
		if ((t->k == T_IDENT || t->k == T_QIDENT) &&
		    is_p_at(p, 1, ":")) {
			p->pos++;
			s->kind = remove ? S_RM_LABELS : S_LABELS;
			s->target = mk(p, E_VAR, t);
			s->target->name = t->s;
			struct lexpr *lx;
			struct tok *lt = cur(p);
			labels_opt(p, &s->labels, &s->nlabels, &lx);
			if (lx)
				perr(p, lt,
				     "InvalidLabelExpression: only labels "
				     "joined by ':' can be set or removed");
		} else {
			struct expr *tg = postfix(p);
			(void)st;
			s->target = tg;
			if (remove) {
				if (tg->kind != E_PROP)
					perr(p, t,
					     "UnexpectedSyntax: REMOVE "
					     "needs a property or label");
				s->kind = S_RM_PROP;
			} else if (tg->kind == E_PROP) {
				expect_p(p, "=");
				s->kind = S_PROP;
				s->value = expr(p);
			} else if (tg->kind == E_VAR) {
				if (accept_p(p, "+="))
					s->kind = S_MERGEMAP;
				else {
					expect_p(p, "=");
					s->kind = S_ASSIGN;
				}
				s->value = expr(p);
			} else {
				perr(p, t, "UnexpectedSyntax: bad SET target");
			}
		}
		pv_push(p, &v, s);
	} while (accept_p(p, ","));
	*out = ar_alloc(p->c, sizeof(struct setitem) * v.n);
	for (size_t i = 0; i < v.n; i++)
		(*out)[i] = *(struct setitem *)v.v[i];
	*n = v.n;
}

static struct clause *clause(struct parser *p);

static struct clause *merge_clause(struct parser *p, struct tok *t)
{
	struct clause *c = mkc(p, C_MERGE, t);
	c->pat = ar_alloc(p->c, sizeof(struct pattern));
	c->pat->parts = named_part(p);
	c->pat->nparts = 1;
	while (is_kw(p, "ON")) {
		p->pos++;
		if (accept_kw(p, "CREATE")) {
			expect_kw(p, "SET");
			struct setitem *s;
			size_t n;
			set_items(p, &s, &n, 0);
			struct setitem *all =
			    ar_alloc(p->c, sizeof(*all) * (c->non_create + n));
			if (c->non_create)
				memcpy(all, c->on_create,
				       sizeof(*all) * c->non_create);
			memcpy(all + c->non_create, s, sizeof(*all) * n);
			c->on_create = all;
			c->non_create += n;
		} else {
			expect_kw(p, "MATCH");
			expect_kw(p, "SET");
			struct setitem *s;
			size_t n;
			set_items(p, &s, &n, 0);
			struct setitem *all =
			    ar_alloc(p->c, sizeof(*all) * (c->non_match + n));
			if (c->non_match)
				memcpy(all, c->on_match,
				       sizeof(*all) * c->non_match);
			memcpy(all + c->non_match, s, sizeof(*all) * n);
			c->on_match = all;
			c->non_match += n;
		}
	}
	return c;
}

/* CALL { ... } IN TRANSACTIONS [OF n ROW|ROWS]
 * [ON ERROR CONTINUE|BREAK|FAIL] [REPORT STATUS AS var], after IN */
static void in_transactions(struct parser *p, struct clause *c)
{
	expect_kw(p, "TRANSACTIONS");
	c->intx = 1;
	if (accept_kw(p, "OF")) {
		c->txrows = expr(p);
		if (!accept_kw(p, "ROWS"))
			expect_kw(p, "ROW");
	}
	if (accept_kw(p, "ON")) {
		expect_kw(p, "ERROR");
		if (accept_kw(p, "CONTINUE"))
			c->txerr = QRY_TX_CONTINUE;
		else if (accept_kw(p, "BREAK"))
			c->txerr = QRY_TX_BREAK;
		else if (accept_kw(p, "FAIL"))
			c->txerr = QRY_TX_FAIL;
		else
			perr(p, cur(p),
			     "UnsupportedFeature: ON ERROR takes CONTINUE, "
			     "BREAK or FAIL in IN TRANSACTIONS (RETRY is not "
			     "supported)");
	}
	if (accept_kw(p, "REPORT")) {
		expect_kw(p, "STATUS");
		expect_kw(p, "AS");
		c->txstatus = ident(p);
	}
}

/* CALL's variable scope clause, after '(': `*`, or names, or nothing */
static void call_scope(struct parser *p, struct clause *c)
{
	c->scoped = 1;
	if (accept_p(p, "*")) {
		c->scope_all = 1;
	} else if (!is_p(p, ")")) {
		struct pvec v = {0};
		do {
			pv_push(p, &v, (void *)ident(p));
		} while (accept_p(p, ","));
		c->scope_vars = (const char **)v.v;
		c->nscope = v.n;
	}
	expect_p(p, ")");
	if (!is_p(p, "{"))
		perr(p, cur(p),
		     "UnexpectedSyntax: expected '{' after CALL's "
		     "variable scope clause");
}

static struct clause *call_clause(struct parser *p, struct tok *t)
{
	if (is_p(p, "(") || is_p(p, "{")) {
		struct clause *c = mkc(p, C_CALLSUB, t);
		if (accept_p(p, "("))
			call_scope(p, c);
		expect_p(p, "{");
		c->sub = parse_query(p);
		expect_p(p, "}");
		if (accept_kw(p, "IN"))
			in_transactions(p, c);
		return c;
	}
	struct clause *c = mkc(p, C_CALLPROC, t);
	struct lora_buf *b = qbuf(p->c);
	lora_buf_puts(b, ident(p));
	while (accept_p(p, ".")) {
		lora_buf_putc(b, '.');
		lora_buf_puts(b, ident(p));
	}
	c->proc = qbuf_str(p->c, b);
	if (accept_p(p, "(")) {
		struct pvec v = {0};
		if (!is_p(p, ")")) {
			do {
				pv_push(p, &v, expr(p));
			} while (accept_p(p, ","));
		}
		expect_p(p, ")");
		c->pargs = (struct expr **)v.v;
		c->npargs = v.n;
	} else {
		c->implicit_args = 1;
	}
	if (accept_kw(p, "YIELD")) {
		if (accept_p(p, "*")) {
			c->yield_star = 1;
		} else {
			struct pvec v = {0};
			do {
				struct yield_item *y =
				    ar_alloc(p->c, sizeof(*y));
				y->slot = -1;
				y->name = ident(p);
				y->alias =
				    accept_kw(p, "AS") ? ident(p) : y->name;
				pv_push(p, &v, y);
			} while (accept_p(p, ","));
			c->nyields = v.n;
			c->yields =
			    ar_alloc(p->c, sizeof(struct yield_item) * v.n);
			for (size_t i = 0; i < v.n; i++)
				c->yields[i] = *(struct yield_item *)v.v[i];
		}
		if (accept_kw(p, "WHERE"))
			c->where = expr(p);
	}
	return c;
}

/* ()-[r:TYPE]-() (or -> / <-) after FOR: the relationship variable */
static const char *rel_target(struct parser *p, struct ddl *d)
{
	expect_p(p, ")");
	accept_p(p, "<");
	expect_p(p, "-");
	expect_p(p, "[");
	const char *var = ident(p);
	expect_p(p, ":");
	d->label = ident(p);
	expect_p(p, "]");
	expect_p(p, "-");
	accept_p(p, ">");
	expect_p(p, "(");
	expect_p(p, ")");
	d->rel = 1;
	return var;
}

static void index_target(struct parser *p, struct ddl *d)
{
	expect_kw(p, "FOR");
	expect_p(p, "(");
	const char *var;
	if (is_p(p, ")")) {
		var = rel_target(p, d);
	} else {
		var = ident(p);
		expect_p(p, ":");
		d->label = ident(p);
		expect_p(p, ")");
	}
	int paren;
	if (accept_kw(p, "ON")) {
		paren = accept_p(p, "(");
	} else {
		expect_kw(p, "REQUIRE");
		paren = accept_p(p, "(");
	}
	struct pvec v = {0};
	do {
		const char *v2 = ident(p);
		if (strcmp(var, v2) != 0)
			perr(p, cur(p),
			     "UndefinedVariable: `%s` is not the indexed "
			     "variable",
			     v2);
		expect_p(p, ".");
		pv_push(p, &v, (void *)ident(p));
	} while (paren && accept_p(p, ","));
	d->props = (const char **)v.v;
	d->nprops = v.n;
	if (paren)
		expect_p(p, ")");
}

/* A property type of IS :: TYPE, as its canonical name. */
static const char *property_type(struct parser *p)
{
	static const char *const forms[][3] = {
	    {"BOOLEAN", NULL, "BOOLEAN"},
	    {"BOOL", NULL, "BOOLEAN"},
	    {"STRING", NULL, "STRING"},
	    {"VARCHAR", NULL, "STRING"},
	    {"INTEGER", NULL, "INTEGER"},
	    {"INT", NULL, "INTEGER"},
	    {"FLOAT", NULL, "FLOAT"},
	    {"DATE", NULL, "DATE"},
	    {"LOCAL", "TIME", "LOCAL TIME"},
	    {"ZONED", "TIME", "ZONED TIME"},
	    {"LOCAL", "DATETIME", "LOCAL DATETIME"},
	    {"ZONED", "DATETIME", "ZONED DATETIME"},
	    {"DURATION", NULL, "DURATION"},
	    {"POINT", NULL, "POINT"}};
	for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
		if (!is_kw(p, forms[i][0]) ||
		    (forms[i][1] && !is_kw_tok(peekn(p, 1), forms[i][1])))
			continue;
		p->pos += forms[i][1] ? 2 : 1;
		return forms[i][2];
	}
	perr(p, cur(p),
	     "UnsupportedFeature: a property type constraint takes BOOLEAN, "
	     "STRING, INTEGER, FLOAT, DATE, LOCAL TIME, ZONED TIME, LOCAL "
	     "DATETIME, ZONED DATETIME, DURATION or POINT");
}

/* After REQUIRE n.p: IS UNIQUE | IS NOT NULL | IS :: TYPE | IS TYPED TYPE
 * | IS NODE KEY */
static void constraint_kind(struct parser *p, struct ddl *d)
{
	expect_kw(p, "IS");
	if (accept_kw(p, "UNIQUE"))
		return;
	if (accept_kw(p, "NODE")) {
		expect_kw(p, "KEY");
		d->kind = DDL_CREATE_NODE_KEY;
		return;
	}
	if (accept_kw(p, "NOT")) {
		expect_kw(p, "NULL");
		d->kind = DDL_CREATE_EXISTS;
	} else if (accept_kw(p, "TYPED") ||
	           (is_p(p, ":") && is_p_at(p, 1, ":") && (p->pos += 2))) {
		d->kind = DDL_CREATE_TYPE;
		d->ptype = property_type(p);
	} else {
		perr(p, cur(p),
		     "UnsupportedFeature: constraints are IS UNIQUE, IS NOT "
		     "NULL, IS :: TYPE or IS NODE KEY");
	}
}

static struct clause *ddl_clause(struct parser *p, struct tok *t, int create)
{
	struct clause *c = mkc(p, C_DDL, t);
	struct ddl *d = ar_alloc(p->c, sizeof(*d));
	c->ddl = d;
	if (!create) {
		int cons = 0;
		if (!accept_kw(p, "INDEX")) {
			expect_kw(p, "CONSTRAINT");
			cons = 1;
		}
		(void)cons;
		d->kind = DDL_DROP_INDEX;
		d->name = ident(p);
		if (accept_kw(p, "IF")) {
			expect_kw(p, "EXISTS");
			d->if_exists = 1;
		}
		return c;
	}
	if (accept_kw(p, "VECTOR")) {
		d->kind = DDL_CREATE_VECTOR;
		expect_kw(p, "INDEX");
	} else if (accept_kw(p, "CONSTRAINT")) {
		d->kind = DDL_CREATE_UNIQUE;
	} else {
		if (is_kw(p, "FULLTEXT") || is_kw(p, "LOOKUP"))
			perr(p, cur(p),
			     "UnsupportedFeature: %s indexes are not "
			     "supported: a TEXT index serves CONTAINS and "
			     "ENDS WITH, a range index STARTS WITH",
			     cur(p)->s);
		/* a POINT index is a range index: its keys for point values
		 * order by a z-order key, which serves withinBBox and
		 * distance seeks (seek.c) */
		d->kind = DDL_CREATE_INDEX;
		if (accept_kw(p, "TEXT"))
			d->kind = DDL_CREATE_TEXT;
		else if (!accept_kw(p, "RANGE"))
			accept_kw(p, "POINT");
		expect_kw(p, "INDEX");
	}
	if (!is_kw(p, "FOR") && !is_kw(p, "IF"))
		d->name = ident(p);
	if (accept_kw(p, "IF")) {
		expect_kw(p, "NOT");
		expect_kw(p, "EXISTS");
		d->if_not_exists = 1;
	}
	index_target(p, d);
	if (d->kind == DDL_CREATE_UNIQUE)
		constraint_kind(p, d);
	if (accept_kw(p, "OPTIONS"))
		d->options = map_literal(p);
	return c;
}

static struct clause *foreach_clause(struct parser *p, struct tok *t)
{
	struct clause *c = mkc(p, C_FOREACH, t);
	enter(p);
	expect_p(p, "(");
	c->var = ident(p);
	expect_kw(p, "IN");
	c->e = expr(p);
	expect_p(p, "|");
	struct pvec v = {0};
	while (!is_p(p, ")")) {
		struct clause *b = clause(p);
		if (!b)
			perr(p, cur(p),
			     "UnexpectedSyntax: expected an update "
			     "clause in FOREACH");
		pv_push(p, &v, b);
	}
	expect_p(p, ")");
	p->depth--;
	c->body = (struct clause **)v.v;
	c->nbody = v.n;
	return c;
}

/* LOAD CSV [WITH HEADERS] FROM expr AS var [FIELDTERMINATOR 'c'] */
static struct clause *load_clause(struct parser *p, struct tok *t)
{
	p->pos += 2;
	struct clause *c = mkc(p, C_LOADCSV, t);
	if (accept_kw(p, "WITH")) {
		expect_kw(p, "HEADERS");
		c->headers = 1;
	}
	expect_kw(p, "FROM");
	c->e = expr(p);
	expect_kw(p, "AS");
	c->var = ident(p);
	c->fieldterm = ',';
	if (accept_kw(p, "FIELDTERMINATOR")) {
		struct tok *ft = cur(p);
		if (ft->k != T_STR || ft->len != 1 || ft->s[0] == '"' ||
		    ft->s[0] == '\n' || ft->s[0] == '\r')
			perr(p, ft,
			     "UnexpectedSyntax: FIELDTERMINATOR takes one "
			     "ASCII character (a single byte) other than a "
			     "quote or a line end");
		c->fieldterm = ft->s[0];
		p->pos++;
	}
	return c;
}

static struct clause *clause(struct parser *p)
{
	struct tok *t = cur(p);
	struct clause *c;
	if (accept_kw(p, "OPTIONAL")) {
		expect_kw(p, "MATCH");
		c = mkc(p, C_OPTMATCH, t);
		c->pat = pattern(p);
		if (accept_kw(p, "WHERE"))
			c->where = expr(p);
		return c;
	}
	if (accept_kw(p, "MATCH")) {
		c = mkc(p, C_MATCH, t);
		c->pat = pattern(p);
		if (accept_kw(p, "WHERE"))
			c->where = expr(p);
		return c;
	}
	if (accept_kw(p, "UNWIND")) {
		c = mkc(p, C_UNWIND, t);
		c->e = expr(p);
		expect_kw(p, "AS");
		c->var = ident(p);
		return c;
	}
	if (is_kw(p, "LOAD") && is_kw_tok(peekn(p, 1), "CSV"))
		return load_clause(p, t);
	if (accept_kw(p, "WITH")) {
		c = mkc(p, C_WITH, t);
		c->proj = projection(p, 1);
		return c;
	}
	if (accept_kw(p, "RETURN")) {
		c = mkc(p, C_RETURN, t);
		c->proj = projection(p, 0);
		return c;
	}
	if (accept_kw(p, "CREATE")) {
		if (is_kw(p, "INDEX") || is_kw(p, "CONSTRAINT") ||
		    is_kw(p, "VECTOR") || is_kw(p, "RANGE") ||
		    ((is_kw(p, "TEXT") || is_kw(p, "FULLTEXT") ||
		      is_kw(p, "LOOKUP")) &&
		     is_kw_tok(peekn(p, 1), "INDEX")) ||
		    (is_kw(p, "POINT") && is_kw_tok(peekn(p, 1), "INDEX")))
			return ddl_clause(p, t, 1);
		c = mkc(p, C_CREATE, t);
		c->pat = pattern(p);
		return c;
	}
	if (accept_kw(p, "DROP"))
		return ddl_clause(p, t, 0);
	if (is_kw(p, "SHOW") && (is_kw_tok(peekn(p, 1), "INDEXES") ||
	                         is_kw_tok(peekn(p, 1), "INDEX") ||
	                         is_kw_tok(peekn(p, 1), "CONSTRAINTS"))) {
		c = mkc(p, C_DDL, t);
		c->ddl = ar_alloc(p->c, sizeof(struct ddl));
		c->ddl->kind = DDL_SHOW_INDEXES;
		c->ddl->show_constraints =
		    is_kw_tok(peekn(p, 1), "CONSTRAINTS");
		p->pos += 2;
		return c;
	}
	if (accept_kw(p, "MERGE"))
		return merge_clause(p, t);
	if (accept_kw(p, "SET")) {
		c = mkc(p, C_SET, t);
		set_items(p, &c->sets, &c->nsets, 0);
		return c;
	}
	if (accept_kw(p, "REMOVE")) {
		c = mkc(p, C_REMOVE, t);
		set_items(p, &c->sets, &c->nsets, 1);
		return c;
	}
	if (is_kw(p, "DETACH") || is_kw(p, "DELETE")) {
		c = mkc(p, C_DELETE, t);
		if (accept_kw(p, "DETACH"))
			c->detach = 1;
		expect_kw(p, "DELETE");
		struct pvec v = {0};
		do {
			pv_push(p, &v, expr(p));
		} while (accept_p(p, ","));
		c->dels = (struct expr **)v.v;
		c->ndels = v.n;
		return c;
	}
	if (accept_kw(p, "FOREACH"))
		return foreach_clause(p, t);
	if (accept_kw(p, "CALL"))
		return call_clause(p, t);
	return NULL;
}

static struct squery *single_query(struct parser *p)
{
	struct squery *s = ar_alloc(p->c, sizeof(*s));
	struct pvec v = {0};
	for (;;) {
		struct clause *c = clause(p);
		if (!c)
			break;
		pv_push(p, &v, c);
	}
	if (!v.n)
		perr(p, cur(p), "UnexpectedSyntax: expected a clause");
	s->cl = (struct clause **)v.v;
	s->ncl = v.n;
	return s;
}

static struct query *parse_query(struct parser *p)
{
	enter(p);
	struct query *q = ar_alloc(p->c, sizeof(*q));
	struct pvec v = {0};
	int mixed = -1;
	pv_push(p, &v, single_query(p));
	while (accept_kw(p, "UNION")) {
		int all = accept_kw(p, "ALL");
		if (mixed >= 0 && mixed != all)
			perr(p, cur(p),
			     "InvalidClauseComposition: cannot mix "
			     "UNION and UNION ALL");
		mixed = all;
		pv_push(p, &v, single_query(p));
	}
	q->union_all = mixed == 1;
	q->parts = (struct squery **)v.v;
	q->nparts = v.n;
	p->depth--;
	return q;
}

struct query *q_parse(struct qctx *c, const char *text, int *mode)
{
	struct parser p = {.c = c, .src = text};
	lex(&p);
	p.steps_max = PARSE_STEPS_BASE + (uint64_t)PARSE_STEPS_PER_TOKEN * p.n;
	*mode = QRY_RUN;
	if (accept_kw(&p, "EXPLAIN"))
		*mode = QRY_EXPLAIN;
	else if (accept_kw(&p, "PROFILE"))
		*mode = QRY_PROFILE;
	struct query *q = parse_query(&p);
	accept_p(&p, ";");
	if (cur(&p)->k != T_EOF)
		perr(&p, cur(&p), "UnexpectedSyntax: unexpected '%.*s'",
		     (int)(cur(&p)->end - cur(&p)->off), p.src + cur(&p)->off);
	return q;
}
