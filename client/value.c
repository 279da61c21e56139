/* value.c - building parameter values and printing result values as text. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora_client.h"

static Lora__Value *value_new(Lora__Value__KindCase kind)
{
	Lora__Value *v = lora_malloc(sizeof(*v));
	if (v == NULL)
		return NULL;
	lora__value__init(v);
	v->kind_case = kind;
	return v;
}

Lora__Value *lora_value_null(void)
{
	Lora__Value *v = value_new(LORA__VALUE__KIND_NULL_VALUE);
	if (v)
		v->null_value = 1;
	return v;
}

Lora__Value *lora_value_bool(int b)
{
	Lora__Value *v = value_new(LORA__VALUE__KIND_BOOL_VALUE);
	if (v)
		v->bool_value = b != 0;
	return v;
}

Lora__Value *lora_value_int(int64_t i)
{
	Lora__Value *v = value_new(LORA__VALUE__KIND_INT_VALUE);
	if (v)
		v->int_value = i;
	return v;
}

Lora__Value *lora_value_float(double d)
{
	Lora__Value *v = value_new(LORA__VALUE__KIND_FLOAT_VALUE);
	if (v)
		v->float_value = d;
	return v;
}

Lora__Value *lora_value_string(const char *s)
{
	Lora__Value *v = value_new(LORA__VALUE__KIND_STRING_VALUE);
	if (v == NULL)
		return NULL;
	v->string_value = lora_strdup(s ? s : "");
	if (v->string_value == NULL) {
		lora_free(v);
		return NULL;
	}
	return v;
}

Lora__Value *lora_value_list(Lora__Value **items, size_t n)
{
	Lora__Value *v = value_new(LORA__VALUE__KIND_LIST_VALUE);
	Lora__ValueList *l = lora_malloc(sizeof(*l));
	Lora__Value **copy = n ? lora_calloc(n, sizeof(*copy)) : NULL;
	if (v == NULL || l == NULL || (n && copy == NULL)) {
		lora_free(v), lora_free(l), lora_free(copy);
		return NULL;
	}
	lora__value_list__init(l);
	for (size_t i = 0; i < n; i++)
		copy[i] = items[i];
	l->n_items = n;
	l->items = copy;
	v->list_value = l;
	return v;
}

/* Frees a partly built map value whose entries [0, done) own their keys. */
static void map_undo(Lora__Value *v, Lora__ValueMap *m, size_t done)
{
	for (size_t i = 0; m && m->entries && i < done; i++) {
		lora_free(m->entries[i]->key);
		lora_free(m->entries[i]);
	}
	if (m)
		lora_free(m->entries);
	lora_free(m);
	lora_free(v);
}

Lora__Value *lora_value_map(const char *const *keys, Lora__Value **values,
                            size_t n)
{
	Lora__Value *v = value_new(LORA__VALUE__KIND_MAP_VALUE);
	Lora__ValueMap *m = lora_malloc(sizeof(*m));
	if (v == NULL || m == NULL) {
		lora_free(v), lora_free(m);
		return NULL;
	}
	lora__value_map__init(m);
	m->entries = n ? lora_calloc(n, sizeof(*m->entries)) : NULL;
	if (n && m->entries == NULL) {
		map_undo(v, m, 0);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		Lora__MapEntry *e = lora_malloc(sizeof(*e));
		char *k = lora_strdup(keys[i]);
		if (e == NULL || k == NULL) {
			lora_free(e), lora_free(k);
			map_undo(v, m, i);
			return NULL;
		}
		lora__map_entry__init(e);
		e->key = k;
		m->entries[i] = e;
	}
	for (size_t i = 0; i < n; i++)
		m->entries[i]->value = values[i];
	m->n_entries = n;
	v->map_value = m;
	return v;
}

void lora_value_free(Lora__Value *v)
{
	if (v)
		lora__value__free_unpacked(v, &lora_pb_allocator);
}

Lora__Param *lora_param_new(const char *name, Lora__Value *v)
{
	Lora__Param *p = lora_malloc(sizeof(*p));
	char *n = lora_strdup(name ? name : "");
	if (p == NULL || n == NULL) {
		lora_free(p), lora_free(n);
		return NULL;
	}
	lora__param__init(p);
	p->name = n;
	p->value = v;
	return p;
}

void lora_param_free(Lora__Param *p)
{
	if (p)
		lora__param__free_unpacked(p, &lora_pb_allocator);
}

/* ---- formatting -------------------------------------------------------- */

static int fmt(struct lora_buf *b, const Lora__Value *v, int depth);

static int fmt_string(struct lora_buf *b, const char *s)
{
	int rv = lora_buf_putc(b, '"');
	for (; rv == 0 && *s; s++) {
		if (*s == '"' || *s == '\\')
			rv = lora_buf_putc(b, '\\');
		if (rv == 0)
			rv = *s == '\n' ? lora_buf_puts(b, "\\n")
			                : lora_buf_putc(b, *s);
	}
	return rv ? rv : lora_buf_putc(b, '"');
}

static int fmt_float(struct lora_buf *b, double d)
{
	if (isnan(d))
		return lora_buf_puts(b, "NaN");
	if (isinf(d))
		return lora_buf_puts(b, d > 0 ? "Infinity" : "-Infinity");
	char tmp[40];
	snprintf(tmp, sizeof(tmp), "%.15g", d);
	if (strspn(tmp, "-0123456789") == strlen(tmp))
		strcat(tmp, ".0"); /* keep floats recognisable: 1.0 not 1 */
	return lora_buf_puts(b, tmp);
}

static int fmt_entries(struct lora_buf *b, Lora__MapEntry *const *e, size_t n,
                       int depth)
{
	int rv = lora_buf_putc(b, '{');
	for (size_t i = 0; rv == 0 && i < n; i++) {
		rv = lora_buf_printf(b, "%s%s: ", i ? ", " : "", e[i]->key);
		if (rv == 0)
			rv = fmt(b, e[i]->value, depth + 1);
	}
	return rv ? rv : lora_buf_putc(b, '}');
}

static int fmt_node(struct lora_buf *b, const Lora__NodeValue *n, int depth)
{
	int rv = lora_buf_putc(b, '(');
	for (size_t i = 0; rv == 0 && i < n->n_labels; i++)
		rv = lora_buf_printf(b, ":%s", n->labels[i]);
	if (rv == 0 && n->n_properties) {
		rv = n->n_labels ? lora_buf_putc(b, ' ') : 0;
		if (rv == 0)
			rv = fmt_entries(b, n->properties, n->n_properties,
			                 depth);
	}
	return rv ? rv : lora_buf_putc(b, ')');
}

static int fmt_rel(struct lora_buf *b, const Lora__RelValue *r, int depth)
{
	int rv = lora_buf_printf(b, "[:%s", r->type);
	if (rv == 0 && r->n_properties) {
		rv = lora_buf_putc(b, ' ');
		if (rv == 0)
			rv = fmt_entries(b, r->properties, r->n_properties,
			                 depth);
	}
	return rv ? rv : lora_buf_putc(b, ']');
}

static int fmt_path(struct lora_buf *b, const Lora__PathValue *p, int depth)
{
	int rv = 0;
	for (size_t i = 0; rv == 0 && i < p->n_nodes; i++) {
		rv = fmt_node(b, p->nodes[i], depth);
		if (rv == 0 && i < p->n_rels) {
			const Lora__RelValue *r = p->rels[i];
			int fwd = r->start_id == p->nodes[i]->id;
			rv = lora_buf_puts(b, fwd ? "-" : "<-");
			if (rv == 0)
				rv = fmt_rel(b, r, depth);
			if (rv == 0)
				rv = lora_buf_puts(b, fwd ? "->" : "-");
		}
	}
	return rv;
}

static int fmt_vector(struct lora_buf *b, const Lora__Vector *vec)
{
	int rv = lora_buf_puts(b, "vector([");
	for (size_t i = 0; rv == 0 && i < vec->dimension; i++) {
		if (i)
			rv = lora_buf_puts(b, ", ");
		if (rv == 0 && i < vec->n_f64)
			rv = fmt_float(b, vec->f64[i]);
		else if (rv == 0 && i < vec->n_f32)
			rv = fmt_float(b, vec->f32[i]);
		else if (rv == 0 && i < vec->n_ints)
			rv = lora_buf_printf(b, "%" PRId64, vec->ints[i]);
	}
	return rv ? rv : lora_buf_printf(b, "], %u)", vec->dimension);
}

/* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int fmt_date(struct lora_buf *b, int64_t days)
{
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	return lora_buf_printf(b, "%04" PRId64 "-%02u-%02u", y, m, d);
}

static int fmt_time(struct lora_buf *b, int64_t nanos)
{
	if (nanos < 0)
		nanos = 0;
	int64_t s = nanos / 1000000000, ns = nanos % 1000000000;
	int rv = lora_buf_printf(b, "%02" PRId64 ":%02" PRId64 ":%02" PRId64,
	                         s / 3600, s / 60 % 60, s % 60);
	if (rv == 0 && ns) {
		char frac[16];
		int n = snprintf(frac, sizeof(frac), ".%09" PRId64, ns);
		while (n > 1 && frac[n - 1] == '0')
			n--; /* ns != 0: stops at a digit */
		rv = lora_buf_printf(b, "%.*s", n, frac);
	}
	return rv;
}

static int fmt_offset(struct lora_buf *b, const Lora__Temporal *t)
{
	int off = t->offset_seconds;
	int rv = off == 0
	             ? lora_buf_putc(b, 'Z')
	             : lora_buf_printf(b, "%c%02d:%02d", off < 0 ? '-' : '+',
	                               abs(off) / 3600, abs(off) / 60 % 60);
	if (rv == 0 && t->zone && t->zone[0])
		rv = lora_buf_printf(b, "[%s]", t->zone);
	return rv;
}

static int fmt_duration(struct lora_buf *b, const Lora__Temporal *t)
{
	int rv = lora_buf_putc(b, 'P');
	if (rv == 0 && t->months / 12)
		rv = lora_buf_printf(b, "%" PRId64 "Y", t->months / 12);
	if (rv == 0 && t->months % 12)
		rv = lora_buf_printf(b, "%" PRId64 "M", t->months % 12);
	if (rv == 0 && t->days)
		rv = lora_buf_printf(b, "%" PRId64 "D", t->days);
	int64_t s = t->seconds;
	if (rv == 0 && (s || t->nanos || (!t->months && !t->days))) {
		rv = lora_buf_putc(b, 'T');
		if (rv == 0 && s / 3600)
			rv = lora_buf_printf(b, "%" PRId64 "H", s / 3600);
		if (rv == 0 && s / 60 % 60)
			rv = lora_buf_printf(b, "%" PRId64 "M", s / 60 % 60);
		if (rv == 0 && t->nanos)
			rv = lora_buf_printf(b, "%" PRId64 ".%09dS", s % 60,
			                     abs(t->nanos));
		else if (rv == 0 && (s % 60 || !s))
			rv = lora_buf_printf(b, "%" PRId64 "S", s % 60);
	}
	return rv;
}

/* point({x: 1.0, y: 2.0, crs: 'cartesian'}), as the server prints it */
static int fmt_point(struct lora_buf *b, const Lora__Point *p)
{
	int d3 = p->srid == 9157 || p->srid == 4979;
	const char *crs = p->srid == 7203   ? "cartesian"
	                  : p->srid == 9157 ? "cartesian-3d"
	                  : p->srid == 4326 ? "wgs-84"
	                                    : "wgs-84-3d";
	lora_buf_puts(b, "point({x: ");
	fmt_float(b, p->x);
	lora_buf_puts(b, ", y: ");
	fmt_float(b, p->y);
	if (d3) {
		lora_buf_puts(b, ", z: ");
		fmt_float(b, p->z);
	}
	return lora_buf_printf(b, ", crs: '%s'})", crs);
}

static int fmt_temporal(struct lora_buf *b, const Lora__Temporal *t)
{
	int rv = 0;
	switch (t->kind) {
	case LORA__TEMPORAL_KIND__TEMPORAL_DATE:
		return fmt_date(b, t->epoch_days);
	case LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_TIME:
		return fmt_time(b, t->nanos_of_day);
	case LORA__TEMPORAL_KIND__TEMPORAL_TIME:
		rv = fmt_time(b, t->nanos_of_day);
		return rv ? rv : fmt_offset(b, t);
	case LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_DATETIME:
	case LORA__TEMPORAL_KIND__TEMPORAL_DATETIME:
		rv = fmt_date(b, t->epoch_days);
		rv = rv ? rv : lora_buf_putc(b, 'T');
		rv = rv ? rv : fmt_time(b, t->nanos_of_day);
		if (rv == 0 &&
		    t->kind == LORA__TEMPORAL_KIND__TEMPORAL_DATETIME)
			rv = fmt_offset(b, t);
		return rv;
	case LORA__TEMPORAL_KIND__TEMPORAL_DURATION:
		return fmt_duration(b, t);
	default:
		return lora_buf_puts(b, "<temporal?>");
	}
}

static int fmt_list(struct lora_buf *b, const Lora__ValueList *l, int depth)
{
	int rv = lora_buf_putc(b, '[');
	for (size_t i = 0; rv == 0 && i < l->n_items; i++) {
		rv = i ? lora_buf_puts(b, ", ") : 0;
		if (rv == 0)
			rv = fmt(b, l->items[i], depth + 1);
	}
	return rv ? rv : lora_buf_putc(b, ']');
}

static int fmt(struct lora_buf *b, const Lora__Value *v, int depth)
{
	if (depth > LORA_VALUE_DEPTH_MAX)
		return lora_buf_puts(b, "...");
	if (v == NULL)
		return lora_buf_puts(b, "null");
	switch (v->kind_case) {
	case LORA__VALUE__KIND_BOOL_VALUE:
		return lora_buf_puts(b, v->bool_value ? "true" : "false");
	case LORA__VALUE__KIND_INT_VALUE:
		return lora_buf_printf(b, "%" PRId64, v->int_value);
	case LORA__VALUE__KIND_FLOAT_VALUE:
		return fmt_float(b, v->float_value);
	case LORA__VALUE__KIND_STRING_VALUE:
		return fmt_string(b, v->string_value);
	case LORA__VALUE__KIND_BYTES_VALUE:
		return lora_buf_printf(b, "<%zu bytes>", v->bytes_value.len);
	case LORA__VALUE__KIND_LIST_VALUE:
		return fmt_list(b, v->list_value, depth);
	case LORA__VALUE__KIND_MAP_VALUE:
		return fmt_entries(b, v->map_value->entries,
		                   v->map_value->n_entries, depth);
	case LORA__VALUE__KIND_VECTOR_VALUE:
		return fmt_vector(b, v->vector_value);
	case LORA__VALUE__KIND_TEMPORAL_VALUE:
		return fmt_temporal(b, v->temporal_value);
	case LORA__VALUE__KIND_POINT_VALUE:
		return fmt_point(b, v->point_value);
	case LORA__VALUE__KIND_NODE_VALUE:
		return fmt_node(b, v->node_value, depth);
	case LORA__VALUE__KIND_REL_VALUE:
		return fmt_rel(b, v->rel_value, depth);
	case LORA__VALUE__KIND_PATH_VALUE:
		return fmt_path(b, v->path_value, depth);
	default:
		return lora_buf_puts(b, "null");
	}
}

int lora_value_format(struct lora_buf *b, const Lora__Value *v)
{
	int rv = fmt(b, v, 0);
	return rv ? rv : lora_buf_error(b); /* any append that failed */
}
