/* seek.c - index-usable predicates on a node pattern (equality, ranges,
 * STARTS WITH) and the index seeks that serve them. */
#include <stdlib.h>
#include <string.h>

#include "qint.h"

/* a bound known before matching: literal, parameter, or a signed one */
static int const_expr(struct expr *e)
{
	if (e->kind == E_NEG || e->kind == E_POS)
		return e->a->kind == E_LIT || e->a->kind == E_PARAM;
	return e->kind == E_LIT || e->kind == E_PARAM;
}

static int own_prop(struct expr *p, int slot)
{
	return p->kind == E_PROP && p->a->kind == E_VAR && p->a->slot == slot;
}

/* spec for `key` of the given kind; a range side already taken is left to
 * the residual filter (the WHERE is always applied after the seek) */
static struct seekspec *spec_for(struct seekspec *s, int n, int *k,
                                 const char *key, int kind)
{
	if (kind == SEEK_RANGE)
		for (int i = 0; i < *k; i++)
			if (s[i].kind == SEEK_RANGE && !strcmp(s[i].key, key))
				return &s[i];
	if (*k >= n)
		return NULL;
	struct seekspec *r = &s[(*k)++];
	memset(r, 0, sizeof *r);
	r->key = key;
	r->kind = kind;
	return r;
}

/* p op v with p the property: op one of < <= > >= */
static void add_range(struct seekspec *s, int n, int *k, struct expr *p,
                      const char *op, struct expr *v)
{
	struct seekspec *r = spec_for(s, n, k, p->name, SEEK_RANGE);
	if (!r)
		return;
	int incl = op[1] == '=';
	if (op[0] == '>' && !r->lo) {
		r->lo = v;
		r->lo_incl = incl;
	} else if (op[0] == '<' && !r->hi) {
		r->hi = v;
		r->hi_incl = incl;
	}
}

static void find_specs(struct expr *w, int slot, struct seekspec *s, int n,
                       int *k, int depth)
{
	if (!w || depth > SEEK_DEPTH_MAX)
		return;
	if (w->kind == E_AND) {
		find_specs(w->a, slot, s, n, k, depth + 1);
		find_specs(w->b, slot, s, n, k, depth + 1);
		return;
	}
	if (w->kind == E_STARTS && own_prop(w->a, slot) && const_expr(w->b)) {
		struct seekspec *r = spec_for(s, n, k, w->a->name, SEEK_PREFIX);
		if (r)
			r->lo = r->hi = w->b;
		return;
	}
	if (w->kind != E_CMP || !strcmp(w->op, "<>"))
		return;
	if (own_prop(w->a, slot) && const_expr(w->b)) {
		if (w->op[0] == '=') {
			struct seekspec *r =
			    spec_for(s, n, k, w->a->name, SEEK_EQ);
			if (r)
				r->lo = r->hi = w->b;
		} else {
			add_range(s, n, k, w->a, w->op, w->b);
		}
	} else if (own_prop(w->b, slot) && const_expr(w->a)) {
		if (w->op[0] == '=') {
			struct seekspec *r =
			    spec_for(s, n, k, w->b->name, SEEK_EQ);
			if (r)
				r->lo = r->hi = w->a;
		} else {
			/* v < p is p > v */
			char fl[3] = {w->op[0] == '<' ? '>' : '<', w->op[1], 0};
			add_range(s, n, k, w->b, fl, w->a);
		}
	}
}

int seek_specs(struct pnode *pn, struct expr *where, struct seekspec *s, int n)
{
	int k = 0;
	if (pn->props && pn->props->kind == E_MAP)
		for (size_t i = 0; i < pn->props->nargs && k < n; i++)
			if (const_expr(pn->props->args[i])) {
				struct seekspec *r = spec_for(
				    s, n, &k, pn->props->labels[i], SEEK_EQ);
				if (r)
					r->lo = r->hi = pn->props->args[i];
			}
	find_specs(where, pn->slot, s, n, &k, 0);
	return k;
}

static int range_type(struct val v)
{
	return v.t == V_INT || v.t == V_FLOAT || v.t == V_STR;
}

/* the smallest string above every string with prefix p, or 0 when there
 * is none (p all 0xff bytes) */
static int prefix_end(struct qctx *c, struct val p, struct val *out)
{
	size_t n = p.u.s->len;
	while (n && (unsigned char)p.u.s->s[n - 1] == 0xff)
		n--;
	if (!n)
		return 0;
	*out = v_str(c, p.u.s->s, n);
	out->u.s->s[n - 1] = (char)((unsigned char)out->u.s->s[n - 1] + 1);
	return 1;
}

/* seeks the index on (label, spec key) for the spec's bounds evaluated on
 * row; 0 when the spec cannot use it (no index, null or unsupported bound
 * type): then the caller scans */
int seek_run(struct qctx *c, const char *label, struct seekspec *s,
             struct val *row, struct idvec *out)
{
	struct val lo = v_null(), hi = v_null();
	if (s->lo)
		lo = eval(c, s->lo, row);
	if (s->hi)
		hi = eval(c, s->hi, row);
	if (s->kind == SEEK_EQ)
		return lo.t != V_NULL &&
		       g_index_seek(c, label, s->key, &lo, 1, &lo, 1, out);
	if ((s->lo && !range_type(lo)) || (s->hi && !range_type(hi)))
		return 0;
	if (s->kind == SEEK_PREFIX) {
		if (lo.t != V_STR)
			return 0;
		int has_hi = prefix_end(c, lo, &hi);
		return g_index_seek(c, label, s->key, &lo, 1,
		                    has_hi ? &hi : NULL, 0, out);
	}
	return g_index_seek(c, label, s->key, s->lo ? &lo : NULL, s->lo_incl,
	                    s->hi ? &hi : NULL, s->hi_incl, out);
}

static int lit_ok(struct expr *e)
{
	if (!e)
		return 1;
	if (e->kind == E_NEG || e->kind == E_POS)
		e = e->a;
	return e->kind != E_LIT || range_type(e->lit);
}

int seek_plannable(struct seekspec *s)
{
	return s->kind == SEEK_EQ || (lit_ok(s->lo) && lit_ok(s->hi));
}

static void bound_text(struct lora_buf *b, const char *op, struct expr *e)
{
	if (e->kind == E_PARAM)
		lora_buf_printf(b, " %s $%s", op, e->name);
	else if (e->text)
		lora_buf_printf(b, " %s %s", op, e->text);
	else
		lora_buf_printf(b, " %s <literal>", op);
}

void seek_explain(const char *label, struct seekspec *s, struct lora_buf *b)
{
	if (s->kind == SEEK_EQ) {
		lora_buf_printf(b, "NodeIndexSeek(:%s(%s))", label, s->key);
		return;
	}
	lora_buf_printf(b, "NodeIndexRangeSeek(:%s(%s)", label, s->key);
	if (s->kind == SEEK_PREFIX) {
		bound_text(b, "STARTS WITH", s->lo);
	} else {
		if (s->lo)
			bound_text(b, s->lo_incl ? ">=" : ">", s->lo);
		if (s->lo && s->hi)
			lora_buf_puts(b, " AND");
		if (s->hi)
			bound_text(b, s->hi_incl ? "<=" : "<", s->hi);
	}
	lora_buf_putc(b, ')');
}

/* labels of which every node matching x carries at least one, appended
 * to out from n; -1 when no such set of at most LX_UNION_MAX labels */
static int lx_cover(struct lexpr *x, const char **out, int n)
{
	int k;
	switch (x->op) {
	case LX_LABEL:
		if (n >= LX_UNION_MAX)
			return -1;
		out[n] = x->label;
		return n + 1;
	case LX_OR:
		k = lx_cover(x->a, out, n);
		return k < 0 ? -1 : lx_cover(x->b, out, k);
	case LX_AND:
		k = lx_cover(x->a, out, n);
		return k >= 0 ? k : lx_cover(x->b, out, n);
	default:
		return -1;
	}
}

int lx_union_labels(struct lexpr *x, const char **out)
{
	return x ? lx_cover(x, out, 0) : -1;
}

static int id_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void scan_union(struct qctx *c, const char **labels, int n, struct idvec *out)
{
	memset(out, 0, sizeof *out);
	for (int i = 0; i < n; i++) {
		struct idvec one;
		g_scan(c, labels[i], &one);
		for (size_t j = 0; j < one.n; j++)
			idv_push(c, out, one.v[j]);
	}
	if (out->n < 2)
		return;
	qsort(out->v, out->n, sizeof *out->v, id_cmp);
	size_t k = 1;
	for (size_t j = 1; j < out->n; j++)
		if (out->v[j] != out->v[k - 1])
			out->v[k++] = out->v[j];
	out->n = k;
}
