/* eval.c - expression evaluation: operators, three-valued logic, property
 * access, comprehensions, quantifiers and pattern expressions. */
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "qint.h"

static struct val param(struct qctx *c, struct expr *e)
{
	struct val *v = c->params ? vmap_get(c->params, e->name) : NULL;
	if (!v)
		qerr_at(c, LORA_EPARAMS, e->line, e->col,
		        "MissingParameter: expected parameter $%s", e->name);
	return *v;
}

/*
 * Property k of node id read straight from storage, without loading the
 * node into the graph cache: 1 with *out (in the current arena) when done,
 * 0 when the caller must go through g_node. Only for nodes absent from
 * c->g.nodes: every node this statement or a pending batch created,
 * changed or deleted is there, so an uncached node is as the view holds
 * it. A node the view lacks also falls back (g_node reports it).
 */
static int node_prop_direct(struct qctx *c, uint64_t id, const char *k,
                            struct val *out)
{
	if (hm_get(&c->g.nodes, id))
		return 0;
	struct sto_view *view = g_view(c);
	if (!view)
		return 0;
	struct sto_prop_ref ref;
	int rv = sto_view_node_prop_ref(view, id, k, &ref);
	if (rv == LORA_ENOTFOUND)
		return 0;
	if (rv)
		qerr_sto(c, rv, "storage: node property");
	switch (ref.kind) {
	case STO_REF_ABSENT:
	case STO_REF_NULL:
		*out = v_null();
		return 1;
	case STO_REF_BOOL:
		*out = v_bool(ref.b);
		return 1;
	case STO_REF_INT:
		*out = v_int(ref.i);
		return 1;
	case STO_REF_FLOAT:
		*out = v_float(ref.d);
		return 1;
	case STO_REF_STRING:
		*out = v_str(c, ref.s, ref.slen);
		return 1;
	case STO_REF_F32: { /* from storage's vector column */
		struct vvec *x = ar_alloc(c, sizeof(*x));
		x->ctype = LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT32;
		x->dim = ref.dim;
		x->d = ar_alloc(c, sizeof(double) * (ref.dim + 1));
		for (uint32_t i = 0; i < ref.dim; i++)
			x->d[i] = ref.f32[(size_t)i * ref.f32_stride];
		*out = (struct val){.t = V_VECTOR};
		out->u.vec = x;
		return 1;
	}
	default:
		break;
	}
	/* a list, temporal, vector...: decoded alone too, so a scan that
	 * reads p.emb of every node does not keep every node (and its
	 * vector) in the cache */
	Lora__Value *pv = NULL;
	rv = sto_view_node_prop(view, id, k, &pv);
	if (rv == LORA_ENOTFOUND)
		return 0;
	if (rv)
		qerr_sto(c, rv, "storage: node property");
	*out = v_null();
	if (pv) {
		/* stored values passed the depth check when applied, so the
		 * conversion cannot raise and leak pv */
		*out = val_from_pb(c, pv);
		lora__value__free_unpacked(pv, &lora_pb_allocator);
	}
	return 1;
}

/* node / relationship id for a read, DeletedEntityAccess when gone */
static struct gnode *live_node(struct qctx *c, uint64_t id)
{
	struct gnode *n = g_node_read(c, id);
	if (!n || n->deleted)
		qerr(c, LORA_ENOTFOUND,
		     "DeletedEntityAccess: node %llu was deleted",
		     (unsigned long long)id);
	return n;
}

static struct gedge *live_rel(struct qctx *c, uint64_t id)
{
	struct gedge *e = g_edge_read(c, id);
	if (!e || e->deleted)
		qerr(c, LORA_ENOTFOUND,
		     "DeletedEntityAccess: relationship %llu was deleted",
		     (unsigned long long)id);
	return e;
}

struct vmap *entity_props(struct qctx *c, struct val v)
{
	struct vmap *m;
	int cached;
	if (v.t == V_NODE) {
		struct gnode *n = live_node(c, v.u.id);
		m = g_node_props(c, n);
		cached = !n->transient;
	} else {
		struct gedge *e = live_rel(c, v.u.id);
		m = e->props;
		cached = !e->transient;
	}
	if (m && cached && g_outer_intx(c)) {
		struct val x = {.t = V_MAP};
		x.u.m = m;
		m = v_copy(c, x).u.m;
	}
	return m;
}

struct val prop_of(struct qctx *c, struct val v, const char *k)
{
	struct val *p;
	switch (v.t) {
	case V_NULL:
		return v_null();
	case V_NODE: {
		struct val r;
		if (node_prop_direct(c, v.u.id, k, &r))
			return r;
		struct gnode *n = live_node(c, v.u.id);
		p = g_node_prop(c, n, k);
		if (p && !n->transient && g_outer_intx(c))
			return v_copy(c, *p); /* entity_props */
		return p ? *p : v_null();
	}
	case V_REL: {
		struct gedge *e = live_rel(c, v.u.id);
		p = e->props ? vmap_get(e->props, k) : NULL;
		if (p && !e->transient && g_outer_intx(c))
			return v_copy(c, *p); /* entity_props */
		return p ? *p : v_null();
	}
	case V_MAP:
		p = vmap_get(v.u.m, k);
		return p ? *p : v_null();
	case V_TEMPORAL: {
		int ok = 0;
		struct val r = tm_prop(c, v.u.tm, k, &ok);
		if (ok)
			return r;
		break;
	}
	case V_POINT: {
		int ok = 0;
		struct val r = pt_prop(c, v.u.pt, k, &ok);
		if (ok)
			return r;
		break;
	}
	default:
		break;
	}
	qerr(c, LORA_ETYPE,
	     "InvalidArgumentType: cannot access property `%s` of a %s", k,
	     v_type_name(v));
}

static int64_t idx_norm(int64_t i, size_t n)
{
	return i < 0 ? (int64_t)n + i : i;
}

static struct val index_of(struct qctx *c, struct val a, struct val i)
{
	if (a.t == V_NULL || i.t == V_NULL)
		return v_null();
	if (a.t == V_LIST) {
		if (i.t != V_INT)
			qerr(c, LORA_ETYPE,
			     "InvalidArgumentType: list index must be an "
			     "integer, not %s",
			     v_type_name(i));
		int64_t k = idx_norm(i.u.i, a.u.l->n);
		if (k < 0 || k >= (int64_t)a.u.l->n)
			return v_null();
		return a.u.l->v[k];
	}
	if (a.t == V_MAP || a.t == V_NODE || a.t == V_REL) {
		if (i.t != V_STR)
			qerr(c, LORA_ETYPE,
			     "InvalidArgumentType: map key must be a string");
		return prop_of(c, a, i.u.s->s);
	}
	if (a.t == V_VECTOR && i.t == V_INT) {
		int64_t k = idx_norm(i.u.i, a.u.vec->dim);
		if (k < 0 || k >= (int64_t)a.u.vec->dim)
			return v_null();
		double d = a.u.vec->d[k];
		return a.u.vec->ctype >=
		               LORA__VECTOR_COORD_TYPE__VECTOR_INTEGER64
		           ? v_int((int64_t)d)
		           : v_float(d);
	}
	qerr(c, LORA_ETYPE, "InvalidArgumentType: cannot index a %s",
	     v_type_name(a));
}

static struct val slice_of(struct qctx *c, struct val a, struct val lo,
                           struct val hi, int has_lo, int has_hi)
{
	if (a.t == V_NULL || (has_lo && lo.t == V_NULL) ||
	    (has_hi && hi.t == V_NULL))
		return v_null();
	if (a.t != V_LIST)
		qerr(c, LORA_ETYPE, "InvalidArgumentType: cannot slice a %s",
		     v_type_name(a));
	if ((has_lo && lo.t != V_INT) || (has_hi && hi.t != V_INT))
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: slice bounds must be integers");
	int64_t n = (int64_t)a.u.l->n;
	int64_t s = has_lo ? idx_norm(lo.u.i, (size_t)n) : 0;
	int64_t e = has_hi ? idx_norm(hi.u.i, (size_t)n) : n;
	if (s < 0)
		s = 0;
	if (e > n)
		e = n;
	if (e < s)
		e = s;
	struct val r = v_list(c, (size_t)(e - s));
	for (int64_t k = s; k < e; k++)
		r.u.l->v[k - s] = a.u.l->v[k];
	return r;
}

static struct val concat(struct qctx *c, struct val a, struct val b)
{
	if (a.t == V_LIST && b.t == V_LIST) {
		struct val r = v_list(c, a.u.l->n + b.u.l->n);
		memcpy(r.u.l->v, a.u.l->v, sizeof(struct val) * a.u.l->n);
		memcpy(r.u.l->v + a.u.l->n, b.u.l->v,
		       sizeof(struct val) * b.u.l->n);
		return r;
	}
	if (a.t == V_LIST) {
		struct val r = v_list(c, a.u.l->n + 1);
		memcpy(r.u.l->v, a.u.l->v, sizeof(struct val) * a.u.l->n);
		r.u.l->v[a.u.l->n] = b;
		return r;
	}
	struct val r = v_list(c, b.u.l->n + 1);
	r.u.l->v[0] = a;
	memcpy(r.u.l->v + 1, b.u.l->v, sizeof(struct val) * b.u.l->n);
	return r;
}

static struct val int_arith(struct qctx *c, char op, int64_t x, int64_t y)
{
	int64_t r;
	switch (op) {
	case '+':
		if (__builtin_add_overflow(x, y, &r))
			goto ovf;
		return v_int(r);
	case '-':
		if (__builtin_sub_overflow(x, y, &r))
			goto ovf;
		return v_int(r);
	case '*':
		if (__builtin_mul_overflow(x, y, &r))
			goto ovf;
		return v_int(r);
	case '/':
		if (y == 0)
			qerr(c, LORA_EARITH, "ArithmeticError: / by zero");
		if (x == INT64_MIN && y == -1)
			goto ovf;
		return v_int(x / y);
	case '%':
		if (y == 0)
			qerr(c, LORA_EARITH, "ArithmeticError: %% by zero");
		if (y == -1)
			return v_int(0);
		return v_int(x % y);
	case '^':
		return v_float(pow((double)x, (double)y));
	}
	LORA_UNREACHABLE();
ovf:
	qerr(c, LORA_EARITH,
	     "IntegerOverflow: integer overflow in %lld %c "
	     "%lld",
	     (long long)x, op, (long long)y);
}

struct val arith(struct qctx *c, char op, struct val a, struct val b)
{
	if (a.t == V_NULL || b.t == V_NULL)
		return v_null();
	if (op == '+') {
		if (a.t == V_LIST || b.t == V_LIST)
			return concat(c, a, b);
		if (a.t == V_STR && b.t == V_STR) {
			size_t n = a.u.s->len + b.u.s->len;
			struct val r = v_str(c, a.u.s->s, a.u.s->len);
			struct val r2 = v_str(c, "", 0);
			(void)r2;
			char *buf = ar_alloc(c, n + 1);
			memcpy(buf, a.u.s->s, a.u.s->len);
			memcpy(buf + a.u.s->len, b.u.s->s, b.u.s->len);
			r = v_str(c, buf, n);
			return r;
		}
		if (a.t == V_STR && v_is_num(b)) {
			struct lora_buf *t = qbuf(c);
			lora_buf_append(t, a.u.s->s, a.u.s->len);
			v_tostring(c, b, t);
			return qbuf_val(c, t);
		}
		if (b.t == V_STR && v_is_num(a)) {
			struct lora_buf *t = qbuf(c);
			v_tostring(c, a, t);
			lora_buf_append(t, b.u.s->s, b.u.s->len);
			return qbuf_val(c, t);
		}
	}
	if (a.t == V_TEMPORAL || b.t == V_TEMPORAL) {
		int ok = 0;
		struct val r = tm_arith(c, op, a, b, &ok);
		if (ok)
			return r;
	}
	if (!v_is_num(a) || !v_is_num(b))
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: cannot apply %c to %s and %s", op,
		     v_type_name(a), v_type_name(b));
	if (a.t == V_INT && b.t == V_INT)
		return int_arith(c, op, a.u.i, b.u.i);
	double x = v_num(a), y = v_num(b);
	switch (op) {
	case '+':
		return v_float(x + y);
	case '-':
		return v_float(x - y);
	case '*':
		return v_float(x * y);
	case '/':
		return v_float(x / y);
	case '%':
		return v_float(fmod(x, y));
	default:
		return v_float(pow(x, y));
	}
}

int eval_pred(struct qctx *c, struct expr *e, struct val *row)
{
	struct val v = eval(c, e, row);
	if (v.t == V_NULL)
		return -1;
	if (v.t != V_BOOL)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: expected a boolean, got %s",
		     v_type_name(v));
	return v.u.b;
}

static struct val tv(int t)
{
	return t < 0 ? v_null() : v_bool(t);
}

static struct val cmp_expr(struct qctx *c, struct expr *e, struct val *row)
{
	struct val a = eval(c, e->a, row), b = eval(c, e->b, row);
	if (e->op[0] == '=')
		return tv(v_eq(c, a, b));
	if (e->op[0] == '<' && e->op[1] == '>') {
		int r = v_eq(c, a, b);
		return tv(r < 0 ? -1 : !r);
	}
	int r;
	if (v_is_num(a) && v_is_num(b) &&
	    ((a.t == V_FLOAT && isnan(a.u.f)) ||
	     (b.t == V_FLOAT && isnan(b.u.f))))
		return v_bool(0);
	if (!v_cmp(c, a, b, &r))
		return v_null();
	switch (e->op[0]) {
	case '<':
		return v_bool(e->op[1] == '=' ? r <= 0 : r < 0);
	default:
		return v_bool(e->op[1] == '=' ? r >= 0 : r > 0);
	}
}

static struct val in_list(struct qctx *c, struct val x, struct val l)
{
	if (l.t == V_NULL)
		return v_null();
	if (l.t != V_LIST)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: IN needs a list, got %s",
		     v_type_name(l));
	int unknown = 0;
	for (size_t i = 0; i < l.u.l->n; i++) {
		int r = v_eq(c, x, l.u.l->v[i]);
		if (r == 1)
			return v_bool(1);
		if (r < 0)
			unknown = 1;
	}
	return unknown ? v_null() : v_bool(0);
}

static struct val str_pred(struct qctx *c, int kind, struct val a, struct val b)
{
	(void)c;
	if (a.t != V_STR || b.t != V_STR)
		return v_null();
	size_t n = a.u.s->len, m = b.u.s->len;
	if (kind == E_STARTS)
		return v_bool(m <= n && memcmp(a.u.s->s, b.u.s->s, m) == 0);
	if (kind == E_ENDS)
		return v_bool(m <= n &&
		              memcmp(a.u.s->s + n - m, b.u.s->s, m) == 0);
	return v_bool(memmem(a.u.s->s, n, b.u.s->s, m) != NULL);
}

/*
 * glibc's regcomp builds its automaton by copying a repeated part once per
 * repetition, and a quantifier on a quantifier nests again: `.*+++...`
 * (100 of them) took 2.4 GB, `((a{1000}){1000}){1000}` would take more,
 * all outside the statement's memory budget. What a pattern would expand
 * to is bounded first: each atom (a character, an escape, a bracket
 * expression) costs 1, a group the sum of its parts, a bounded repetition
 * {m,n} multiplies the part before it by its largest count, and *, + or ?
 * by 2; past QRY_REGEX_COST_MAX the pattern is refused. A quantifier
 * follows another at most once (Java's lazy *? and possessive *+, which
 * match the same whole strings here); Java refuses a third too.
 */
#define QRY_REGEX_COST_MAX   100000.0
#define QRY_REGEX_GROUPS_MAX 64

/* The largest count of the bound at p[*i] ("{m}", "{m,}", "{m,n}"), *i
 * moved to its '}'; 0 when it is not one. "{m,}" counts m + 1: m copies
 * and a star. */
static double bound_count(const char *p, size_t *i)
{
	char *end;
	unsigned long lo = strtoul(p + *i + 1, &end, 10), hi = lo;
	if (*end == ',') {
		end++;
		hi = *end == '}' ? lo + 1 : strtoul(end, &end, 10);
	}
	if (*end != '}')
		return 0;
	*i = (size_t)(end - p);
	return (double)(hi > lo ? hi : lo);
}

/* What the pattern p[0..n) would expand to (above), in parts; a
 * backreference (\\1 to \\9: glibc matches those by backtracking, in time
 * exponential in the string) or anything malformed counts as too many. */
static double regex_parts(const char *p, size_t n)
{
	double sum[QRY_REGEX_GROUPS_MAX + 1] = {0}, last = 0;
	int depth = 0, quants = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (ch == '*' || ch == '+' || ch == '?' || ch == '{') {
			double k = ch == '{' ? bound_count(p, &i) : 2;
			if (k == 0 || ++quants > 2)
				return HUGE_VAL; /* a bad bound: regcomp refuses
				                    it too */
			sum[depth] += last * (k - 1);
			last *= k;
			if (sum[depth] > QRY_REGEX_COST_MAX)
				return HUGE_VAL;
			continue;
		}
		quants = 0;
		if (ch == '(') {
			if (depth == QRY_REGEX_GROUPS_MAX)
				return HUGE_VAL;
			sum[++depth] = 0;
			last = 0;
			continue;
		}
		if (ch == ')' && depth > 0) {
			last = sum[depth--];
			sum[depth] += last;
			continue;
		}
		if (ch == '\\' && i + 1 < n) {
			if (p[++i] >= '1' && p[i] <= '9')
				return HUGE_VAL;
		} else if (ch == '[') { /* a bracket expression: one atom */
			size_t j = i + 1;
			if (j < n && p[j] == '^')
				j++;
			if (j < n && p[j] == ']')
				j++;
			while (j < n && p[j] != ']')
				j++;
			i = j;
		}
		last = 1;
		sum[depth] += 1;
	}
	return sum[0];
}

static struct val regex_match(struct qctx *c, struct val a, struct val b)
{
	if (a.t != V_STR || b.t != V_STR)
		return v_null();
	/* Java regexes match the whole string */
	regex_t re;
	int flags = REG_EXTENDED | REG_NOSUB;
	size_t skip = 0;
	if (strncmp(b.u.s->s, "(?i)", 4) == 0) {
		flags |= REG_ICASE;
		skip = 4;
	}
	double parts = regex_parts(b.u.s->s + skip, b.u.s->len - skip);
	if (parts > QRY_REGEX_COST_MAX)
		qerr(c, LORA_EINVAL,
		     "InvalidRegex: the pattern's repetitions expand past %.0f "
		     "parts, a quantifier follows two others, or it has a "
		     "backreference",
		     QRY_REGEX_COST_MAX);

	struct lora_buf *pat = qbuf(c);
	lora_buf_puts(pat, "^(");
	lora_buf_append(pat, b.u.s->s + skip, b.u.s->len - skip);
	lora_buf_puts(pat, ")$");
	if (regcomp(&re, qbuf_str(c, pat), flags) != 0)
		qerr(c, LORA_EINVAL, "InvalidRegex: bad regular expression");
	int r = regexec(&re, a.u.s->s, 0, NULL, 0);
	regfree(&re);
	return v_bool(r == 0);
}

static struct val eval_case(struct qctx *c, struct expr *e, struct val *row)
{
	if (e->a) {
		struct val s = eval(c, e->a, row);
		for (size_t i = 0; i < e->nwhen; i++)
			if (v_eq(c, s, eval(c, e->whens[i], row)) == 1)
				return eval(c, e->thens[i], row);
	} else {
		for (size_t i = 0; i < e->nwhen; i++) {
			struct val w = eval(c, e->whens[i], row);
			if (w.t == V_BOOL && w.u.b)
				return eval(c, e->thens[i], row);
		}
	}
	return e->b ? eval(c, e->b, row) : v_null();
}

static struct val eval_listcomp(struct qctx *c, struct expr *e, struct val *row)
{
	struct val l = eval(c, e->a, row);
	if (l.t == V_NULL)
		return l;
	if (l.t != V_LIST)
		qerr(c, LORA_ETYPE, "InvalidArgumentType: expected a list");
	struct val r = v_list(c, l.u.l->n);
	size_t k = 0;
	struct val save = row[e->slot];
	for (size_t i = 0; i < l.u.l->n; i++) {
		q_tick_every(c);
		row[e->slot] = l.u.l->v[i];
		if (e->b && eval_pred(c, e->b, row) != 1)
			continue;
		r.u.l->v[k++] = e->c ? eval(c, e->c, row) : l.u.l->v[i];
	}
	row[e->slot] = save;
	r.u.l->n = k;
	if (e->c)
		v_check_depth(c, r);
	return r;
}

static struct val eval_quant(struct qctx *c, struct expr *e, struct val *row)
{
	struct val l = eval(c, e->a, row);
	if (l.t == V_NULL)
		return l;
	if (l.t != V_LIST)
		qerr(c, LORA_ETYPE, "InvalidArgumentType: expected a list");
	size_t t = 0, u = 0, n = l.u.l->n;
	struct val save = row[e->slot];
	for (size_t i = 0; i < n; i++) {
		q_tick_every(c);
		row[e->slot] = l.u.l->v[i];
		int r = e->b ? eval_pred(c, e->b, row) : 1;
		if (r == 1)
			t++;
		else if (r < 0)
			u++;
	}
	row[e->slot] = save;
	switch (e->op[0]) {
	case 'a': /* all */
		if (t + u < n)
			return v_bool(0);
		return u ? v_null() : v_bool(1);
	case 'y': /* any */
		if (t)
			return v_bool(1);
		return u ? v_null() : v_bool(0);
	case 'n': /* none */
		if (t)
			return v_bool(0);
		return u ? v_null() : v_bool(1);
	default: /* single */
		if (t > 1)
			return v_bool(0);
		if (u)
			return v_null();
		return v_bool(t == 1);
	}
}

static struct val eval_reduce(struct qctx *c, struct expr *e, struct val *row)
{
	struct val l = eval(c, e->a, row);
	struct val acc = eval(c, e->c, row);
	if (l.t == V_NULL)
		return l;
	if (l.t != V_LIST)
		qerr(c, LORA_ETYPE, "InvalidArgumentType: expected a list");
	struct val s1 = row[e->slot], s2 = row[e->d->slot];
	for (size_t i = 0; i < l.u.l->n; i++) {
		q_tick_every(c);
		row[e->slot] = l.u.l->v[i];
		row[e->d->slot] = acc;
		acc = eval(c, e->b, row);
	}
	row[e->slot] = s1;
	row[e->d->slot] = s2;
	return acc;
}

static struct val eval_pattern(struct qctx *c, struct expr *e, struct val *row)
{
	struct rows out = {0};
	struct val *r = row_copy(c, row);
	if (e->sub) {
		struct rows in = {0};
		rows_push(c, &in, r);
		exec_query(c, e->sub, &in, &out,
		           e->kind == E_EXISTS ? 1 : SIZE_MAX);
	} else {
		match_pattern(c, e->pat, e->b, r, &out);
	}
	switch (e->kind) {
	case E_EXISTS:
		return v_bool(out.n > 0);
	case E_COUNTSUB:
		return v_int((int64_t)out.n);
	case E_PATPRED:
		if (e->op[0] == 's') {
			/* shortestPath(...) as an expression */
			struct ppart *pp = &e->pat->parts[0];
			if (!out.n)
				return v_null();
			if (pp->shortest == 2) {
				struct val l = v_list(c, out.n);
				for (size_t i = 0; i < out.n; i++)
					l.u.l->v[i] = out.r[i][pp->pathslot];
				return l;
			}
			return out.r[0][pp->pathslot];
		}
		return v_bool(out.n > 0);
	default: {
		struct val l = v_list(c, out.n);
		for (size_t i = 0; i < out.n; i++)
			l.u.l->v[i] = eval(c, e->c, out.r[i]);
		v_check_depth(c, l);
		return l;
	}
	}
}

static struct val eval_mapproj(struct qctx *c, struct expr *e, struct val *row)
{
	struct val base = eval(c, e->a, row);
	if (base.t == V_NULL)
		return base;
	struct val m = v_map(c, e->nmp + 4);
	for (size_t i = 0; i < e->nmp; i++) {
		struct mapproj_item *it = &e->mp[i];
		if (it->kind == 3) {
			struct vmap *src = NULL;
			if (base.t == V_MAP)
				src = base.u.m;
			else if (base.t == V_NODE || base.t == V_REL)
				src = entity_props(c, base);
			for (size_t j = 0; src && j < src->n; j++)
				vmap_put(c, m.u.m, src->k[j], src->v[j]);
		} else if (it->kind == 1) {
			vmap_put(c, m.u.m, it->key, prop_of(c, base, it->key));
		} else {
			vmap_put(c, m.u.m, it->key, eval(c, it->e, row));
		}
	}
	return m;
}

static struct val eval_labels(struct qctx *c, struct expr *e, struct val *row)
{
	struct val v = eval(c, e->a, row);
	if (v.t == V_NULL)
		return v;
	if (v.t == V_REL) {
		struct gedge *g = g_edge_shallow(c, v.u.id);
		if (e->lx)
			return v_bool(g && lx_match(e->lx, NULL, g->type));
		for (size_t i = 0; i < e->nlabels; i++)
			if (!g || strcmp(g->type, e->labels[i]) != 0)
				return v_bool(0);
		return v_bool(1);
	}
	if (v.t != V_NODE)
		qerr(c, LORA_ETYPE, "InvalidArgumentType: label check on a %s",
		     v_type_name(v));
	return v_bool(g_node_fits(c, v.u.id, e->labels, e->nlabels, e->lx, 0));
}

static struct val eval_logic(struct qctx *c, struct expr *e, struct val *row)
{
	int a = eval_pred(c, e->a, row);
	if (e->kind == E_AND) {
		if (a == 0)
			return v_bool(0);
		int b = eval_pred(c, e->b, row);
		if (b == 0)
			return v_bool(0);
		return (a < 0 || b < 0) ? v_null() : v_bool(1);
	}
	if (e->kind == E_OR) {
		if (a == 1)
			return v_bool(1);
		int b = eval_pred(c, e->b, row);
		if (b == 1)
			return v_bool(1);
		return (a < 0 || b < 0) ? v_null() : v_bool(0);
	}
	int b = eval_pred(c, e->b, row);
	if (a < 0 || b < 0)
		return v_null();
	return v_bool(a != b);
}

static struct val eval_literal_coll(struct qctx *c, struct expr *e,
                                    struct val *row)
{
	if (e->kind == E_LIST) {
		struct val l = v_list(c, e->nargs);
		for (size_t i = 0; i < e->nargs; i++)
			l.u.l->v[i] = eval(c, e->args[i], row);
		v_check_depth(c, l);
		return l;
	}
	struct val m = v_map(c, e->nargs);
	for (size_t i = 0; i < e->nargs; i++)
		vmap_put(c, m.u.m, e->labels[i], eval(c, e->args[i], row));
	v_check_depth(c, m);
	return m;
}

static struct val eval_call(struct qctx *c, struct expr *e, struct val *row)
{
	struct val buf[8];
	struct val *args =
	    e->nargs <= 8 ? buf : ar_alloc(c, sizeof(struct val) * e->nargs);
	for (size_t i = 0; i < e->nargs; i++)
		args[i] = eval(c, e->args[i], row);
	return fn_call(c, e->fn, e->name, args, e->nargs);
}

struct val eval(struct qctx *c, struct expr *e, struct val *row)
{
	struct val a, b;
	switch (e->kind) {
	case E_LIT:
		return e->lit;
	case E_PARAM:
		return param(c, e);
	case E_VAR:
		return row[e->slot];
	case E_AGGREF:
		return c->aggvals[e->slot];
	case E_PROP:
		return prop_of(c, eval(c, e->a, row), e->name);
	case E_INDEX:
		return index_of(c, eval(c, e->a, row), eval(c, e->b, row));
	case E_SLICE:
		a = eval(c, e->a, row);
		return slice_of(c, a, e->b ? eval(c, e->b, row) : v_null(),
		                e->c ? eval(c, e->c, row) : v_null(), !!e->b,
		                !!e->c);
	case E_LIST:
	case E_MAP:
		return eval_literal_coll(c, e, row);
	case E_NEG:
		a = eval(c, e->a, row);
		if (a.t == V_NULL)
			return a;
		if (a.t == V_FLOAT)
			return v_float(-a.u.f);
		if (a.t == V_INT) {
			if (a.u.i == INT64_MIN)
				qerr(c, LORA_EARITH,
				     "IntegerOverflow: cannot negate %lld",
				     (long long)a.u.i);
			return v_int(-a.u.i);
		}
		if (a.t == V_TEMPORAL)
			return arith(c, '*', a, v_int(-1));
		qerr(c, LORA_ETYPE, "InvalidArgumentType: cannot negate a %s",
		     v_type_name(a));
	case E_POS:
		a = eval(c, e->a, row);
		if (a.t != V_NULL && !v_is_num(a))
			qerr(c, LORA_ETYPE,
			     "InvalidArgumentType: unary + on %s",
			     v_type_name(a));
		return a;
	case E_NOT: {
		int r = eval_pred(c, e->a, row);
		return r < 0 ? v_null() : v_bool(!r);
	}
	case E_BIN:
		a = eval(c, e->a, row);
		b = eval(c, e->b, row);
		return arith(c, e->op[0], a, b);
	case E_AND:
	case E_OR:
	case E_XOR:
		return eval_logic(c, e, row);
	case E_CMP:
		return cmp_expr(c, e, row);
	case E_ISNULL:
		return v_bool(eval(c, e->a, row).t == V_NULL);
	case E_ISNOTNULL:
		return v_bool(eval(c, e->a, row).t != V_NULL);
	case E_IN:
		a = eval(c, e->a, row);
		return in_list(c, a, eval(c, e->b, row));
	case E_STARTS:
	case E_ENDS:
	case E_CONTAINS:
		a = eval(c, e->a, row);
		return str_pred(c, e->kind, a, eval(c, e->b, row));
	case E_REGEX:
		a = eval(c, e->a, row);
		return regex_match(c, a, eval(c, e->b, row));
	case E_CALL:
		return eval_call(c, e, row);
	case E_CASE:
		return eval_case(c, e, row);
	case E_LISTCOMP:
		return eval_listcomp(c, e, row);
	case E_QUANT:
		return eval_quant(c, e, row);
	case E_REDUCE:
		return eval_reduce(c, e, row);
	case E_PATPRED:
	case E_PATCOMP:
	case E_EXISTS:
	case E_COUNTSUB:
		return eval_pattern(c, e, row);
	case E_MAPPROJ:
		a = eval_mapproj(c, e, row);
		v_check_depth(c, a);
		return a;
	case E_LABELS:
		return eval_labels(c, e, row);
	default:
		qerr(c, LORA_EINTERNAL, "cannot evaluate expression kind %d",
		     e->kind);
	}
}
