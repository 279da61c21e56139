/* functions.c - the scalar function library (string, math, list, type
 * conversion, graph); temporal and vector functions are dispatched to
 * temporal.c and vector.c. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uninorm.h>

#include "qint.h"

enum fid {
	F_ID,
	F_LABELS,
	F_TYPE,
	F_PROPERTIES,
	F_KEYS,
	F_STARTNODE,
	F_ENDNODE,
	F_NODES,
	F_RELS,
	F_LENGTH,
	F_SIZE,
	F_COALESCE,
	F_HEAD,
	F_LAST,
	F_TAIL,
	F_RANGE,
	F_REVERSE,
	F_TOSTRING,
	F_TOINTEGER,
	F_TOFLOAT,
	F_TOBOOLEAN,
	F_TOSTRINGORNULL,
	F_TOINTEGERORNULL,
	F_TOFLOATORNULL,
	F_TOBOOLEANORNULL,
	F_TOLOWER,
	F_TOUPPER,
	F_TRIM,
	F_LTRIM,
	F_RTRIM,
	F_REPLACE,
	F_SUBSTRING,
	F_LEFT,
	F_RIGHT,
	F_SPLIT,
	F_ABS,
	F_CEIL,
	F_FLOOR,
	F_ROUND,
	F_SIGN,
	F_SQRT,
	F_EXP,
	F_LOG,
	F_LOG10,
	F_E,
	F_PI,
	F_RAND,
	F_SIN,
	F_COS,
	F_TAN,
	F_ASIN,
	F_ACOS,
	F_ATAN,
	F_ATAN2,
	F_COT,
	F_DEGREES,
	F_RADIANS,
	F_HAVERSIN,
	F_TIMESTAMP,
	F_EXISTS,
	F_ISEMPTY,
	F_ELEMENTID,
	F_RANDOMUUID,
	F_CHARLENGTH,
	F_NULLIF,
	F_ISNAN,
	F_TOBOOLEANLIST,
	F_TOINTEGERLIST,
	F_TOFLOATLIST,
	F_TOSTRINGLIST,
	F_VALUETYPE,
	F_TEMPORAL,
	F_VECTOR,
	F_NORMALIZE,
	F_ISNORMALIZED,
};

struct fdef {
	const char *name;
	int id;
	int min, max;
};

static const struct fdef fns[] = {
    {"id", F_ID, 1, 1},
    {"labels", F_LABELS, 1, 1},
    {"type", F_TYPE, 1, 1},
    {"properties", F_PROPERTIES, 1, 1},
    {"keys", F_KEYS, 1, 1},
    {"startNode", F_STARTNODE, 1, 1},
    {"endNode", F_ENDNODE, 1, 1},
    {"nodes", F_NODES, 1, 1},
    {"relationships", F_RELS, 1, 1},
    {"length", F_LENGTH, 1, 1},
    {"size", F_SIZE, 1, 1},
    {"coalesce", F_COALESCE, 1, 1000},
    {"head", F_HEAD, 1, 1},
    {"last", F_LAST, 1, 1},
    {"tail", F_TAIL, 1, 1},
    {"range", F_RANGE, 2, 3},
    {"reverse", F_REVERSE, 1, 1},
    {"toString", F_TOSTRING, 1, 1},
    {"toInteger", F_TOINTEGER, 1, 1},
    {"toFloat", F_TOFLOAT, 1, 1},
    {"toBoolean", F_TOBOOLEAN, 1, 1},
    {"toStringOrNull", F_TOSTRINGORNULL, 1, 1},
    {"toIntegerOrNull", F_TOINTEGERORNULL, 1, 1},
    {"toFloatOrNull", F_TOFLOATORNULL, 1, 1},
    {"toBooleanOrNull", F_TOBOOLEANORNULL, 1, 1},
    {"toLower", F_TOLOWER, 1, 1},
    {"lower", F_TOLOWER, 1, 1},
    {"toUpper", F_TOUPPER, 1, 1},
    {"upper", F_TOUPPER, 1, 1},
    {"trim", F_TRIM, 1, 1},
    {"ltrim", F_LTRIM, 1, 1},
    {"rtrim", F_RTRIM, 1, 1},
    {"replace", F_REPLACE, 3, 3},
    {"substring", F_SUBSTRING, 2, 3},
    {"left", F_LEFT, 2, 2},
    {"right", F_RIGHT, 2, 2},
    {"split", F_SPLIT, 2, 2},
    {"abs", F_ABS, 1, 1},
    {"ceil", F_CEIL, 1, 1},
    {"floor", F_FLOOR, 1, 1},
    {"round", F_ROUND, 1, 3},
    {"sign", F_SIGN, 1, 1},
    {"sqrt", F_SQRT, 1, 1},
    {"exp", F_EXP, 1, 1},
    {"log", F_LOG, 1, 1},
    {"log10", F_LOG10, 1, 1},
    {"e", F_E, 0, 0},
    {"pi", F_PI, 0, 0},
    {"rand", F_RAND, 0, 0},
    {"sin", F_SIN, 1, 1},
    {"cos", F_COS, 1, 1},
    {"tan", F_TAN, 1, 1},
    {"asin", F_ASIN, 1, 1},
    {"acos", F_ACOS, 1, 1},
    {"atan", F_ATAN, 1, 1},
    {"atan2", F_ATAN2, 2, 2},
    {"cot", F_COT, 1, 1},
    {"degrees", F_DEGREES, 1, 1},
    {"radians", F_RADIANS, 1, 1},
    {"haversin", F_HAVERSIN, 1, 1},
    {"timestamp", F_TIMESTAMP, 0, 0},
    {"exists", F_EXISTS, 1, 1},
    {"isEmpty", F_ISEMPTY, 1, 1},
    {"elementId", F_ELEMENTID, 1, 1},
    {"randomUUID", F_RANDOMUUID, 0, 0},
    {"char_length", F_CHARLENGTH, 1, 1},
    {"character_length", F_CHARLENGTH, 1, 1},
    {"nullIf", F_NULLIF, 2, 2},
    {"isNaN", F_ISNAN, 1, 1},
    {"toBooleanList", F_TOBOOLEANLIST, 1, 1},
    {"toIntegerList", F_TOINTEGERLIST, 1, 1},
    {"toFloatList", F_TOFLOATLIST, 1, 1},
    {"toStringList", F_TOSTRINGLIST, 1, 1},
    {"valueType", F_VALUETYPE, 1, 1},
    {"normalize", F_NORMALIZE, 1, 2},
    /* `s IS [NOT] [form] NORMALIZED` (the parser's name: never typed) */
    {"is normalized", F_ISNORMALIZED, 2, 2},
    {NULL, 0, 0, 0},
};

int fn_lookup(const char *name)
{
	for (int i = 0; fns[i].name; i++)
		if (strcasecmp(fns[i].name, name) == 0)
			return i;
	if (tm_has_fn(name))
		return 1000;
	if (strncasecmp(name, "vector", 6) == 0)
		return 1001;
	if (pt_has_fn(name))
		return 1002;
	return -1;
}

int fn_arity_ok(int fn, size_t n)
{
	if (fn >= 1000)
		return 1;
	return (int)n >= fns[fn].min && (int)n <= fns[fn].max;
}

static _Noreturn void badarg(struct qctx *c, const char *fn, struct val v)
{
	qerr(c, LORA_ETYPE,
	     "InvalidArgumentType: %s() cannot take a %s argument", fn,
	     v_type_name(v));
}

static struct val to_integer(struct qctx *c, struct val v, int ornull)
{
	switch (v.t) {
	case V_NULL:
		return v;
	case V_INT:
		return v;
	case V_FLOAT:
		if (isnan(v.u.f) || v.u.f >= 9.2233720368547758e18 ||
		    v.u.f < -9.2233720368547758e18) {
			if (ornull)
				return v_null();
			qerr(c, LORA_EARITH,
			     "IntegerOverflow: %g does not fit "
			     "an integer",
			     v.u.f);
		}
		return v_int((int64_t)v.u.f);
	case V_BOOL:
		return v_int(v.u.b);
	case V_STR: {
		char *end;
		const char *s = v.u.s->s;
		while (isspace((unsigned char)*s))
			s++;
		long long i = strtoll(s, &end, 10);
		while (isspace((unsigned char)*end))
			end++;
		if (*end == 0 && end != s)
			return v_int(i);
		double d = strtod(s, &end);
		while (isspace((unsigned char)*end))
			end++;
		if (*end == 0 && end != s && isfinite(d))
			return to_integer(c, v_float(d), ornull); /* as 1e300 */
		return v_null();
	}
	default:
		if (ornull)
			return v_null();
		badarg(c, "toInteger", v);
	}
}

static struct val to_float(struct qctx *c, struct val v, int ornull)
{
	switch (v.t) {
	case V_NULL:
	case V_FLOAT:
		return v;
	case V_INT:
		return v_float((double)v.u.i);
	case V_STR: {
		char *end;
		double d = strtod(v.u.s->s, &end);
		while (isspace((unsigned char)*end))
			end++;
		if (*end == 0 && end != v.u.s->s)
			return v_float(d);
		return v_null();
	}
	default:
		if (ornull)
			return v_null();
		badarg(c, "toFloat", v);
	}
}

static struct val to_boolean(struct qctx *c, struct val v, int ornull)
{
	switch (v.t) {
	case V_NULL:
	case V_BOOL:
		return v;
	case V_STR: {
		const char *s = v.u.s->s;
		while (isspace((unsigned char)*s))
			s++;
		size_t n = strlen(s);
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		if (n == 4 && strncasecmp(s, "true", 4) == 0)
			return v_bool(1);
		if (n == 5 && strncasecmp(s, "false", 5) == 0)
			return v_bool(0);
		return v_null();
	}
	case V_INT:
		return v_bool(v.u.i != 0);
	default:
		if (ornull)
			return v_null();
		badarg(c, "toBoolean", v);
	}
}

static struct val to_string(struct qctx *c, struct val v, int ornull)
{
	switch (v.t) {
	case V_NULL:
		return v;
	case V_STR:
		return v;
	case V_INT:
	case V_FLOAT:
	case V_BOOL:
	case V_POINT:
	case V_TEMPORAL: {
		struct lora_buf *b = qbuf(c);
		v_tostring(c, v, b);
		return qbuf_val(c, b);
	}
	default:
		if (ornull)
			return v_null();
		badarg(c, "toString", v);
	}
}

static struct val str_case(struct qctx *c, struct val v, int up)
{
	if (v.t == V_NULL)
		return v;
	if (v.t != V_STR)
		badarg(c, up ? "toUpper" : "toLower", v);
	struct val r = v_str(c, v.u.s->s, v.u.s->len);
	for (size_t i = 0; i < r.u.s->len; i++)
		r.u.s->s[i] = (char)(up ? toupper((unsigned char)r.u.s->s[i])
		                        : tolower((unsigned char)r.u.s->s[i]));
	return r;
}

static struct val str_trim(struct qctx *c, struct val v, int l, int r)
{
	if (v.t == V_NULL)
		return v;
	if (v.t != V_STR)
		badarg(c, "trim", v);
	const char *s = v.u.s->s;
	size_t a = 0, b = v.u.s->len;
	while (l && a < b && isspace((unsigned char)s[a]))
		a++;
	while (r && b > a && isspace((unsigned char)s[b - 1]))
		b--;
	return v_str(c, s + a, b - a);
}

static struct val str_replace(struct qctx *c, struct val *a)
{
	for (int i = 0; i < 3; i++)
		if (a[i].t == V_NULL)
			return v_null();
	for (int i = 0; i < 3; i++)
		if (a[i].t != V_STR)
			badarg(c, "replace", a[i]);
	struct lora_buf *b = qbuf(c);
	const char *s = a[0].u.s->s, *f = a[1].u.s->s;
	size_t fl = a[1].u.s->len, n = a[0].u.s->len;
	for (size_t i = 0; i < n;) {
		if (fl && i + fl <= n && memcmp(s + i, f, fl) == 0) {
			lora_buf_append(b, a[2].u.s->s, a[2].u.s->len);
			i += fl;
		} else {
			lora_buf_putc(b, s[i++]);
		}
	}
	return qbuf_val(c, b);
}

/* UTF-8 aware code point offsets */
static size_t cp_count(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			k++;
	return k;
}

static size_t cp_off(const char *s, size_t n, size_t cp)
{
	size_t k = 0, i = 0;
	for (; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (k == cp)
				return i;
			k++;
		}
	return n;
}

static struct val substr(struct qctx *c, struct val *a, size_t n, int fn)
{
	if (a[0].t == V_NULL)
		return v_null();
	if (a[0].t != V_STR)
		badarg(c, "substring", a[0]);
	for (size_t i = 1; i < n; i++) {
		if (a[i].t == V_NULL)
			return v_null();
		if (a[i].t != V_INT)
			badarg(c, "substring", a[i]);
		if (a[i].u.i < 0)
			qerr(c, LORA_EINVAL,
			     "NegativeIntegerArgument: negative argument to "
			     "substring");
	}
	const char *s = a[0].u.s->s;
	size_t len = a[0].u.s->len, cps = cp_count(s, len);
	size_t st, cnt;
	if (fn == F_LEFT) {
		st = 0;
		cnt = (size_t)a[1].u.i;
	} else if (fn == F_RIGHT) {
		cnt = (size_t)a[1].u.i;
		st = cnt > cps ? 0 : cps - cnt;
	} else {
		st = (size_t)a[1].u.i;
		cnt = n > 2 ? (size_t)a[2].u.i : cps;
	}
	if (st > cps)
		st = cps;
	if (cnt > cps - st)
		cnt = cps - st;
	size_t bo = cp_off(s, len, st), eo = cp_off(s, len, st + cnt);
	return v_str(c, s + bo, eo - bo);
}

static struct val split(struct qctx *c, struct val *a)
{
	if (a[0].t == V_NULL || a[1].t == V_NULL)
		return v_null();
	if (a[0].t != V_STR || a[1].t != V_STR)
		badarg(c, "split", a[0].t != V_STR ? a[0] : a[1]);
	const char *s = a[0].u.s->s, *d = a[1].u.s->s;
	size_t n = a[0].u.s->len, dl = a[1].u.s->len;
	struct val out = v_list(c, n + 1);
	size_t k = 0, st = 0;
	if (dl == 0) {
		for (size_t i = 0; i < n; i++)
			out.u.l->v[k++] = v_str(c, s + i, 1);
		out.u.l->n = k;
		return out;
	}
	for (size_t i = 0; i + dl <= n;) {
		if (memcmp(s + i, d, dl) == 0) {
			out.u.l->v[k++] = v_str(c, s + st, i - st);
			i += dl;
			st = i;
		} else {
			i++;
		}
	}
	out.u.l->v[k++] = v_str(c, s + st, n - st);
	out.u.l->n = k;
	return out;
}

static struct val range(struct qctx *c, struct val *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].t != V_INT)
			badarg(c, "range", a[i]);
	int64_t s = a[0].u.i, e = a[1].u.i, st = n > 2 ? a[2].u.i : 1;
	if (st == 0)
		qerr(c, LORA_EINVAL, "NumberOutOfRange: range step is zero");
	__int128 cnt = 0, span = (__int128)e - s;
	if ((st > 0 && span >= 0) || (st < 0 && span <= 0))
		cnt = span / st + 1;
	if (cnt > (__int128)c->lim.rows_max)
		qerr(c, LORA_ELIMIT, "range() of %lld items exceeds the limit",
		     (long long)(cnt > INT64_MAX ? INT64_MAX : (int64_t)cnt));
	struct val l = v_list(c, (size_t)cnt);
	for (int64_t i = 0; i < (int64_t)cnt; i++) {
		q_tick_every(c);
		l.u.l->v[i] = v_int((int64_t)(s + (__int128)i * st));
	}
	return l;
}

/* relationship id's type and ends; one gone from the view (a chunk of IN
 * TRANSACTIONS deleted it under the outer part) is DeletedEntityAccess */
static struct gedge *rel_ends(struct qctx *c, uint64_t id)
{
	struct gedge *e = g_edge_shallow(c, id);
	if (!e)
		qerr(c, LORA_ENOTFOUND,
		     "DeletedEntityAccess: relationship %llu was deleted",
		     (unsigned long long)id);
	return e;
}

static struct val graph_fn(struct qctx *c, int fn, struct val v)
{
	if (v.t == V_NULL)
		return v;
	switch (fn) {
	case F_ID:
	case F_ELEMENTID:
		if (v.t != V_NODE && v.t != V_REL)
			badarg(c, "id", v);
		if (fn == F_ELEMENTID) {
			char id[24];
			int n = snprintf(id, sizeof id, "%llu",
			                 (unsigned long long)v.u.id);
			return v_str(c, id, (size_t)n);
		}
		return v_int((int64_t)v.u.id);
	case F_LABELS: {
		if (v.t != V_NODE)
			badarg(c, "labels", v);
		struct gnode *n = g_node_read(c, v.u.id);
		if (!n || n->deleted)
			qerr(c, LORA_ENOTFOUND,
			     "DeletedEntityAccess: node "
			     "was deleted");
		struct val l = v_list(c, n->nlabels);
		for (size_t i = 0; i < n->nlabels; i++)
			l.u.l->v[i] = v_cstr(c, n->labels[i]);
		return l;
	}
	case F_TYPE: {
		if (v.t != V_REL)
			badarg(c, "type", v);
		return v_cstr(c, rel_ends(c, v.u.id)->type);
	}
	case F_STARTNODE:
	case F_ENDNODE: {
		if (v.t != V_REL)
			badarg(c, "startNode", v);
		struct gedge *e = rel_ends(c, v.u.id);
		return v_node(fn == F_STARTNODE ? e->src : e->dst);
	}
	case F_NODES:
	case F_RELS: {
		if (v.t != V_PATH)
			badarg(c, "nodes", v);
		size_t n = fn == F_NODES ? v.u.p->n + 1 : v.u.p->n;
		struct val l = v_list(c, n);
		for (size_t i = 0; i < n; i++)
			l.u.l->v[i] = fn == F_NODES ? v_node(v.u.p->nodes[i])
			                            : v_rel(v.u.p->rels[i]);
		return l;
	}
	}
	LORA_UNREACHABLE();
}

static struct val props_keys(struct qctx *c, int fn, struct val v)
{
	if (v.t == V_NULL)
		return v;
	struct vmap *m;
	if (v.t == V_MAP)
		m = v.u.m;
	else if (v.t == V_NODE || v.t == V_REL)
		m = entity_props(c, v);
	else {
		badarg(c, fn == F_KEYS ? "keys" : "properties", v);
	}
	size_t n = m ? m->n : 0;
	if (fn == F_KEYS) {
		struct val l = v_list(c, n);
		for (size_t i = 0; i < n; i++)
			l.u.l->v[i] = v_cstr(c, m->k[i]);
		return l;
	}
	struct val r = v_map(c, n);
	for (size_t i = 0; i < n; i++)
		vmap_put(c, r.u.m, m->k[i], m->v[i]);
	return r;
}

static struct val list_fn(struct qctx *c, int fn, struct val v)
{
	if (v.t == V_NULL)
		return v;
	if (fn == F_REVERSE && v.t == V_STR) {
		struct val r = v_str(c, v.u.s->s, v.u.s->len);
		for (size_t i = 0; i < r.u.s->len / 2; i++) {
			char t = r.u.s->s[i];
			r.u.s->s[i] = r.u.s->s[r.u.s->len - 1 - i];
			r.u.s->s[r.u.s->len - 1 - i] = t;
		}
		return r;
	}
	if (v.t != V_LIST)
		badarg(c, "list function", v);
	struct vlist *l = v.u.l;
	switch (fn) {
	case F_HEAD:
		return l->n ? l->v[0] : v_null();
	case F_LAST:
		return l->n ? l->v[l->n - 1] : v_null();
	case F_TAIL: {
		struct val r = v_list(c, l->n ? l->n - 1 : 0);
		if (l->n)
			memcpy(r.u.l->v, l->v + 1,
			       sizeof(struct val) * (l->n - 1));
		return r;
	}
	default: {
		struct val r = v_list(c, l->n);
		for (size_t i = 0; i < l->n; i++)
			r.u.l->v[i] = l->v[l->n - 1 - i];
		return r;
	}
	}
}

static struct val size_fn(struct qctx *c, int fn, struct val v)
{
	if (v.t == V_NULL)
		return v;
	if (fn == F_LENGTH && v.t == V_PATH)
		return v_int((int64_t)v.u.p->n);
	if (v.t == V_LIST && fn == F_SIZE)
		return v_int((int64_t)v.u.l->n);
	if (v.t == V_STR)
		return v_int((int64_t)cp_count(v.u.s->s, v.u.s->len));
	if (v.t == V_VECTOR && fn == F_SIZE)
		return v_int(v.u.vec->dim);
	badarg(c, fn == F_SIZE ? "size" : "length", v);
}

static struct val math1(struct qctx *c, int fn, struct val v)
{
	if (v.t == V_NULL)
		return v;
	if (!v_is_num(v))
		badarg(c, "math function", v);
	double x = v_num(v);
	switch (fn) {
	case F_ABS:
		if (v.t == V_INT) {
			if (v.u.i == INT64_MIN)
				qerr(c, LORA_EARITH, "IntegerOverflow: abs");
			return v_int(v.u.i < 0 ? -v.u.i : v.u.i);
		}
		return v_float(fabs(x));
	case F_CEIL:
		return v_float(ceil(x));
	case F_FLOOR:
		return v_float(floor(x));
	case F_SIGN:
		return v_int(x > 0 ? 1 : x < 0 ? -1 : 0);
	case F_SQRT:
		return v_float(sqrt(x));
	case F_EXP:
		return v_float(exp(x));
	case F_LOG:
		return v_float(log(x));
	case F_LOG10:
		return v_float(log10(x));
	case F_SIN:
		return v_float(sin(x));
	case F_COS:
		return v_float(cos(x));
	case F_TAN:
		return v_float(tan(x));
	case F_ASIN:
		return v_float(asin(x));
	case F_ACOS:
		return v_float(acos(x));
	case F_ATAN:
		return v_float(atan(x));
	case F_COT:
		return v_float(1.0 / tan(x));
	case F_DEGREES:
		return v_float(x * 180.0 / M_PI);
	case F_RADIANS:
		return v_float(x * M_PI / 180.0);
	case F_HAVERSIN:
		return v_float((1 - cos(x)) / 2);
	case F_ISNAN:
		return v_bool(isnan(x));
	}
	LORA_UNREACHABLE();
}

static struct val round_fn(struct qctx *c, struct val *a, size_t n)
{
	if (a[0].t == V_NULL)
		return a[0];
	if (!v_is_num(a[0]))
		badarg(c, "round", a[0]);
	double x = v_num(a[0]);
	if (n == 1)
		return v_float(floor(x + 0.5));
	if (a[1].t != V_INT)
		badarg(c, "round", a[1]);
	double f = pow(10, (double)a[1].u.i);
	return v_float(round(x * f) / f);
}

static uint64_t rnd(struct qctx *c)
{
	uint64_t x = c->rand_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	c->rand_state = x;
	return x;
}

static struct val conv_list(struct qctx *c, int fn, struct val v)
{
	if (v.t == V_NULL)
		return v;
	if (v.t != V_LIST)
		badarg(c, "conversion", v);
	struct val r = v_list(c, v.u.l->n);
	for (size_t i = 0; i < v.u.l->n; i++) {
		struct val x = v.u.l->v[i];
		switch (fn) {
		case F_TOBOOLEANLIST:
			x = to_boolean(c, x, 1);
			break;
		case F_TOINTEGERLIST:
			x = to_integer(c, x, 1);
			break;
		case F_TOFLOATLIST:
			x = to_float(c, x, 1);
			break;
		default:
			x = to_string(c, x, 1);
		}
		r.u.l->v[i] = x;
	}
	return r;
}

static struct val uuid(struct qctx *c)
{
	char b[40];
	uint64_t x = rnd(c), y = rnd(c);
	snprintf(b, sizeof b, "%08x-%04x-4%03x-%04x-%012llx",
	         (unsigned)(x >> 32), (unsigned)(x >> 16) & 0xffff,
	         (unsigned)x & 0xfff, (unsigned)((y >> 48) & 0x3fff) | 0x8000,
	         (unsigned long long)(y & 0xffffffffffffull));
	return v_cstr(c, b);
}

static struct val misc_fn(struct qctx *c, int fn, struct val *a, size_t n)
{
	switch (fn) {
	case F_COALESCE:
		for (size_t i = 0; i < n; i++)
			if (a[i].t != V_NULL)
				return a[i];
		return v_null();
	case F_RANGE:
		return range(c, a, n);
	case F_E:
		return v_float(M_E);
	case F_PI:
		return v_float(M_PI);
	case F_RAND:
		return v_float((double)(rnd(c) >> 11) / 9007199254740992.0);
	case F_RANDOMUUID:
		return uuid(c);
	case F_TIMESTAMP:
		return v_int(c->stmt_time_ms);
	case F_ATAN2:
		if (a[0].t == V_NULL || a[1].t == V_NULL)
			return v_null();
		if (!v_is_num(a[0]) || !v_is_num(a[1]))
			badarg(c, "atan2", a[0]);
		return v_float(atan2(v_num(a[0]), v_num(a[1])));
	case F_NULLIF:
		return v_eq(c, a[0], a[1]) == 1 ? v_null() : a[0];
	case F_EXISTS:
		return a[0].t == V_NULL   ? v_bool(0)
		       : a[0].t == V_BOOL ? a[0]
		                          : v_bool(1);
	case F_ISEMPTY:
		if (a[0].t == V_NULL)
			return a[0];
		if (a[0].t == V_LIST)
			return v_bool(a[0].u.l->n == 0);
		if (a[0].t == V_MAP)
			return v_bool(a[0].u.m->n == 0);
		if (a[0].t == V_STR)
			return v_bool(a[0].u.s->len == 0);
		badarg(c, "isEmpty", a[0]);
	case F_VALUETYPE: {
		static const char *tn[] = {"NULL",
		                           "BOOLEAN NOT NULL",
		                           "INTEGER NOT NULL",
		                           "FLOAT NOT NULL",
		                           "STRING NOT NULL",
		                           "LIST<ANY>",
		                           "MAP NOT NULL",
		                           "NODE NOT NULL",
		                           "RELATIONSHIP NOT NULL",
		                           "PATH NOT NULL",
		                           "TEMPORAL",
		                           "VECTOR",
		                           "BYTES",
		                           "POINT NOT NULL"};
		return v_cstr(c, tn[a[0].t]);
	}
	}
	LORA_UNREACHABLE();
}

/* normalize(s [, form]): Unicode normal form NFC (the default), NFD, NFKC
 * or NFKD (the parser turns the bare keyword into a string). With
 * `is_test`, whether s is already in that form. */
static struct val normalize_fn(struct qctx *c, struct val *a, size_t n,
                               int is_test)
{
	const char *fname = is_test ? "IS NORMALIZED" : "normalize";
	if (a[0].t == V_NULL)
		return v_null();
	if (a[0].t != V_STR)
		badarg(c, fname, a[0]);
	const char *form = n > 1 && a[1].t == V_STR ? a[1].u.s->s : "NFC";
	if (n > 1 && a[1].t != V_STR)
		badarg(c, fname, a[1]);
	uninorm_t nf = !strcasecmp(form, "NFC")    ? UNINORM_NFC
	               : !strcasecmp(form, "NFD")  ? UNINORM_NFD
	               : !strcasecmp(form, "NFKC") ? UNINORM_NFKC
	               : !strcasecmp(form, "NFKD") ? UNINORM_NFKD
	                                           : NULL;
	if (!nf)
		qerr(c, LORA_EINVAL,
		     "InvalidArgumentValue: unknown normal form '%s' (NFC, "
		     "NFD, NFKC or NFKD)",
		     form);
	size_t len = 0;
	uint8_t *out = u8_normalize(nf, (const uint8_t *)a[0].u.s->s,
	                            a[0].u.s->len, NULL, &len);
	if (!out)
		qerr(c, errno == ENOMEM ? LORA_ENOMEM : LORA_EINVAL, "%s: %s",
		     fname,
		     errno == ENOMEM ? "out of memory" : "invalid UTF-8");
	if (is_test) {
		int same =
		    len == a[0].u.s->len && !memcmp(out, a[0].u.s->s, len);
		free(out);
		return v_bool(same);
	}
	if (len > QRY_STRING_BYTES_MAX) { /* NFKD can grow a string 11x */
		free(out);
		qerr(c, LORA_ELIMIT,
		     "normalize: the result would pass %u bytes",
		     QRY_STRING_BYTES_MAX);
	}
	/* through the statement's buffer: an error raised while copying
	 * into the arena cannot leak `out` */
	struct lora_buf *b = qbuf(c);
	lora_buf_append(b, out, len);
	free(out);
	return qbuf_val(c, b);
}

static struct val str_fn(struct qctx *c, int fn, struct val *a, size_t n)
{
	switch (fn) {
	case F_TOLOWER:
		return str_case(c, a[0], 0);
	case F_TOUPPER:
		return str_case(c, a[0], 1);
	case F_TRIM:
		return str_trim(c, a[0], 1, 1);
	case F_LTRIM:
		return str_trim(c, a[0], 1, 0);
	case F_RTRIM:
		return str_trim(c, a[0], 0, 1);
	case F_REPLACE:
		return str_replace(c, a);
	case F_SUBSTRING:
	case F_LEFT:
	case F_RIGHT:
		return substr(c, a, n, fn);
	case F_SPLIT:
		return split(c, a);
	case F_CHARLENGTH:
		return size_fn(c, F_SIZE, a[0]);
	case F_NORMALIZE:
	case F_ISNORMALIZED:
		return normalize_fn(c, a, n, fn == F_ISNORMALIZED);
	}
	LORA_UNREACHABLE();
}

struct val fn_call(struct qctx *c, int fn, const char *name, struct val *a,
                   size_t n)
{
	if (fn >= 1000) {
		int ok = 0;
		struct val r = fn == 1002 ? pt_fn(c, name, a, n, &ok)
		               : (fn & 1) ? vec_fn(c, name, a, n, &ok)
		                          : tm_fn(c, name, a, n, &ok);
		if (!ok)
			qerr(c, LORA_ESEMANTIC,
			     "UnknownFunction: unknown function %s", name);
		return r;
	}
	int id = fns[fn].id;
	switch (id) {
	case F_ID:
	case F_LABELS:
	case F_TYPE:
	case F_STARTNODE:
	case F_ENDNODE:
	case F_NODES:
	case F_RELS:
	case F_ELEMENTID:
		return graph_fn(c, id, a[0]);
	case F_PROPERTIES:
	case F_KEYS:
		return props_keys(c, id, a[0]);
	case F_HEAD:
	case F_LAST:
	case F_TAIL:
	case F_REVERSE:
		return list_fn(c, id, a[0]);
	case F_SIZE:
	case F_LENGTH:
		return size_fn(c, id, a[0]);
	case F_TOSTRING:
	case F_TOSTRINGORNULL:
		return to_string(c, a[0], id == F_TOSTRINGORNULL);
	case F_TOINTEGER:
	case F_TOINTEGERORNULL:
		return to_integer(c, a[0], id == F_TOINTEGERORNULL);
	case F_TOFLOAT:
	case F_TOFLOATORNULL:
		return to_float(c, a[0], id == F_TOFLOATORNULL);
	case F_TOBOOLEAN:
	case F_TOBOOLEANORNULL:
		return to_boolean(c, a[0], id == F_TOBOOLEANORNULL);
	case F_TOBOOLEANLIST:
	case F_TOINTEGERLIST:
	case F_TOFLOATLIST:
	case F_TOSTRINGLIST:
		return conv_list(c, id, a[0]);
	case F_TOLOWER:
	case F_TOUPPER:
	case F_TRIM:
	case F_LTRIM:
	case F_RTRIM:
	case F_REPLACE:
	case F_SUBSTRING:
	case F_LEFT:
	case F_RIGHT:
	case F_SPLIT:
	case F_CHARLENGTH:
	case F_NORMALIZE:
	case F_ISNORMALIZED:
		return str_fn(c, id, a, n);
	case F_ROUND:
		return round_fn(c, a, n);
	case F_ABS:
	case F_CEIL:
	case F_FLOOR:
	case F_SIGN:
	case F_SQRT:
	case F_EXP:
	case F_LOG:
	case F_LOG10:
	case F_SIN:
	case F_COS:
	case F_TAN:
	case F_ASIN:
	case F_ACOS:
	case F_ATAN:
	case F_COT:
	case F_DEGREES:
	case F_RADIANS:
	case F_HAVERSIN:
	case F_ISNAN:
		return math1(c, id, a[0]);
	default:
		return misc_fn(c, id, a, n);
	}
}
