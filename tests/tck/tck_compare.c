/* tck_compare.c - matching engine results against TCK expected values, and
 * printing engine results in TCK syntax. */
#include "tck_values.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int kind_of(const Lora__Value *v)
{
	return v ? (int)v->kind_case : LORA__VALUE__KIND__NOT_SET;
}

static int is_null(const Lora__Value *v)
{
	return kind_of(v) == LORA__VALUE__KIND__NOT_SET ||
	       kind_of(v) == LORA__VALUE__KIND_NULL_VALUE;
}

static int float_matches(double exp, double act)
{
	if (isnan(exp) || isnan(act))
		return isnan(exp) && isnan(act);
	return exp == act;
}

static int string_matches(const struct tck_value *exp, const Lora__Value *act,
                          const struct tck_cmp *cmp)
{
	struct lora_buf b = {0};
	int ok;

	if (kind_of(act) == LORA__VALUE__KIND_STRING_VALUE)
		return strlen(act->string_value) == exp->len &&
		       memcmp(act->string_value, exp->s, exp->len) == 0;
	if (kind_of(act) != LORA__VALUE__KIND_TEMPORAL_VALUE ||
	    !cmp->format_temporal)
		return 0;
	ok = cmp->format_temporal(act, &b) == 0 && b.data &&
	     b.len == exp->len && memcmp(b.data, exp->s, exp->len) == 0;
	lora_buf_free(&b);
	return ok;
}

/* Multiset match: every expected item pairs with a distinct actual item. */
static int list_matches_unordered(const struct tck_value *exp,
                                  Lora__Value *const *act,
                                  const struct tck_cmp *cmp)
{
	char *used = lora_calloc(exp->n + 1, 1);
	int ok = used != NULL;

	for (size_t e = 0; ok && e < exp->n; e++) {
		size_t a = 0;

		while (
		    a < exp->n &&
		    (used[a] || !tck_value_matches(exp->items[e], act[a], cmp)))
			a++;
		if (a == exp->n)
			ok = 0;
		else
			used[a] = 1;
	}
	lora_free(used);
	return ok;
}

static int list_matches(const struct tck_value *exp, const Lora__Value *act,
                        const struct tck_cmp *cmp)
{
	const Lora__ValueList *l;

	if (kind_of(act) != LORA__VALUE__KIND_LIST_VALUE)
		return 0;
	l = act->list_value;
	if (!l || l->n_items != exp->n)
		return exp->n == 0 && (!l || l->n_items == 0);
	if (cmp->unordered_lists)
		return list_matches_unordered(exp, l->items, cmp);
	for (size_t k = 0; k < exp->n; k++)
		if (!tck_value_matches(exp->items[k], l->items[k], cmp))
			return 0;
	return 1;
}

/* Expected map (keys unordered) against map entries. */
static int entries_match(const struct tck_value *exp,
                         Lora__MapEntry *const *entries, size_t n,
                         const struct tck_cmp *cmp)
{
	if (n != exp->n)
		return 0;
	for (size_t k = 0; k < exp->n; k++) {
		size_t a = 0;

		while (a < n && strcmp(entries[a]->key, exp->keys[k]) != 0)
			a++;
		if (a == n ||
		    !tck_value_matches(exp->items[k], entries[a]->value, cmp))
			return 0;
	}
	return 1;
}

static int labels_match(const struct tck_value *exp, char *const *labels,
                        size_t n)
{
	if (n != exp->n_labels)
		return 0;
	for (size_t k = 0; k < exp->n_labels; k++) {
		size_t a = 0;

		while (a < n && strcmp(labels[a], exp->labels[k]) != 0)
			a++;
		if (a == n)
			return 0;
	}
	return 1;
}

static int node_matches(const struct tck_value *exp, const Lora__NodeValue *n,
                        const struct tck_cmp *cmp)
{
	return n && labels_match(exp, n->labels, n->n_labels) &&
	       entries_match(exp->props, n->properties, n->n_properties, cmp);
}

static int rel_matches(const struct tck_value *exp, const Lora__RelValue *r,
                       const struct tck_cmp *cmp)
{
	return r && strcmp(r->type, exp->s) == 0 &&
	       entries_match(exp->props, r->properties, r->n_properties, cmp);
}

static int path_matches(const struct tck_value *exp, const Lora__PathValue *p,
                        const struct tck_cmp *cmp)
{
	if (!p || p->n_nodes == 0 || exp->n != 2 * p->n_nodes - 1 ||
	    p->n_rels + 1 != p->n_nodes)
		return 0;
	for (size_t k = 0; k < p->n_nodes; k++)
		if (!node_matches(exp->items[2 * k], p->nodes[k], cmp))
			return 0;
	for (size_t k = 0; k < p->n_rels; k++) {
		const struct tck_value *er = exp->items[2 * k + 1];
		const Lora__RelValue *r = p->rels[k];
		uint64_t before = p->nodes[k]->id, after = p->nodes[k + 1]->id;
		int out = r && r->start_id == before && r->end_id == after;
		int in = r && r->start_id == after && r->end_id == before;

		if (!rel_matches(er, r, cmp))
			return 0;
		if ((er->dir == TCK_DIR_OUT && !out) ||
		    (er->dir == TCK_DIR_IN && !in) || (!out && !in))
			return 0;
	}
	return 1;
}

int tck_value_matches(const struct tck_value *exp, const Lora__Value *act,
                      const struct tck_cmp *cmp)
{
	int k = kind_of(act);

	switch (exp->kind) {
	case TCK_NULL:
		return is_null(act);
	case TCK_BOOL:
		return k == LORA__VALUE__KIND_BOOL_VALUE &&
		       !act->bool_value == !exp->b;
	case TCK_INT:
		return k == LORA__VALUE__KIND_INT_VALUE &&
		       act->int_value == exp->i;
	case TCK_FLOAT:
		return k == LORA__VALUE__KIND_FLOAT_VALUE &&
		       float_matches(exp->f, act->float_value);
	case TCK_STRING:
		return string_matches(exp, act, cmp);
	case TCK_LIST:
		return list_matches(exp, act, cmp);
	case TCK_MAP:
		return k == LORA__VALUE__KIND_MAP_VALUE && act->map_value &&
		       entries_match(exp, act->map_value->entries,
		                     act->map_value->n_entries, cmp);
	case TCK_NODE:
		return k == LORA__VALUE__KIND_NODE_VALUE &&
		       node_matches(exp, act->node_value, cmp);
	case TCK_REL:
		return k == LORA__VALUE__KIND_REL_VALUE &&
		       rel_matches(exp, act->rel_value, cmp);
	case TCK_PATH:
		return k == LORA__VALUE__KIND_PATH_VALUE &&
		       path_matches(exp, act->path_value, cmp);
	}
	return 0;
}

/* ---- printing ---------------------------------------------------------- */

static void fmt_string(const char *s, struct lora_buf *out)
{
	lora_buf_putc(out, '\'');
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			lora_buf_putc(out, '\\');
		if (*s == '\n')
			lora_buf_puts(out, "\\n");
		else
			lora_buf_putc(out, *s);
	}
	lora_buf_putc(out, '\'');
}

static void fmt_float(double f, struct lora_buf *out)
{
	char tmp[64];

	if (isnan(f)) {
		lora_buf_puts(out, "NaN");
		return;
	}
	if (isinf(f)) {
		lora_buf_puts(out, f < 0 ? "-Inf" : "Inf");
		return;
	}
	/* Shortest form that reads back to the same double. */
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, f);
		if (strtod(tmp, NULL) == f)
			break;
	}
	lora_buf_puts(out, tmp);
	if (!strpbrk(tmp, ".eEn"))
		lora_buf_puts(out, ".0");
}

static void fmt_entries(Lora__MapEntry *const *e, size_t n, tck_format_fn fmt,
                        struct lora_buf *out)
{
	lora_buf_putc(out, '{');
	for (size_t k = 0; k < n; k++) {
		lora_buf_printf(out, "%s%s: ", k ? ", " : "", e[k]->key);
		tck_pb_format(e[k]->value, fmt, out);
	}
	lora_buf_putc(out, '}');
}

static void fmt_node(const Lora__NodeValue *n, tck_format_fn fmt,
                     struct lora_buf *out)
{
	lora_buf_putc(out, '(');
	for (size_t k = 0; n && k < n->n_labels; k++)
		lora_buf_printf(out, ":%s", n->labels[k]);
	if (n && n->n_properties) {
		if (n->n_labels)
			lora_buf_putc(out, ' ');
		fmt_entries(n->properties, n->n_properties, fmt, out);
	}
	lora_buf_putc(out, ')');
}

static void fmt_rel(const Lora__RelValue *r, tck_format_fn fmt,
                    struct lora_buf *out)
{
	lora_buf_printf(out, "[:%s", r ? r->type : "?");
	if (r && r->n_properties) {
		lora_buf_putc(out, ' ');
		fmt_entries(r->properties, r->n_properties, fmt, out);
	}
	lora_buf_putc(out, ']');
}

static void fmt_path(const Lora__PathValue *p, tck_format_fn fmt,
                     struct lora_buf *out)
{
	lora_buf_putc(out, '<');
	for (size_t k = 0; p && k < p->n_nodes; k++) {
		if (k > 0 && k - 1 < p->n_rels) {
			const Lora__RelValue *r = p->rels[k - 1];
			int in = r && r->start_id == p->nodes[k]->id &&
			         r->end_id != p->nodes[k]->id;

			lora_buf_puts(out, in ? "<-" : "-");
			fmt_rel(r, fmt, out);
			lora_buf_puts(out, in ? "-" : "->");
		}
		fmt_node(p->nodes[k], fmt, out);
	}
	lora_buf_putc(out, '>');
}

static void fmt_other(const Lora__Value *v, tck_format_fn fmt,
                      struct lora_buf *out)
{
	struct lora_buf b = {0};

	if (v->kind_case == LORA__VALUE__KIND_TEMPORAL_VALUE && fmt &&
	    fmt(v, &b) == 0 && b.data)
		fmt_string(b.data, out);
	else if (v->kind_case == LORA__VALUE__KIND_TEMPORAL_VALUE)
		lora_buf_puts(out, "<temporal>");
	else if (v->kind_case == LORA__VALUE__KIND_VECTOR_VALUE)
		lora_buf_printf(out, "<vector of %u>",
		                v->vector_value ? v->vector_value->dimension
		                                : 0);
	else
		lora_buf_printf(out, "<value kind %d>", (int)v->kind_case);
	lora_buf_free(&b);
}

int tck_pb_format(const Lora__Value *v, tck_format_fn fmt, struct lora_buf *out)
{
	switch (kind_of(v)) {
	case LORA__VALUE__KIND__NOT_SET:
	case LORA__VALUE__KIND_NULL_VALUE:
		lora_buf_puts(out, "null");
		break;
	case LORA__VALUE__KIND_BOOL_VALUE:
		lora_buf_puts(out, v->bool_value ? "true" : "false");
		break;
	case LORA__VALUE__KIND_INT_VALUE:
		lora_buf_printf(out, "%" PRId64, v->int_value);
		break;
	case LORA__VALUE__KIND_FLOAT_VALUE:
		fmt_float(v->float_value, out);
		break;
	case LORA__VALUE__KIND_STRING_VALUE:
		fmt_string(v->string_value, out);
		break;
	case LORA__VALUE__KIND_LIST_VALUE:
		lora_buf_putc(out, '[');
		for (size_t k = 0; v->list_value && k < v->list_value->n_items;
		     k++) {
			if (k)
				lora_buf_puts(out, ", ");
			tck_pb_format(v->list_value->items[k], fmt, out);
		}
		lora_buf_putc(out, ']');
		break;
	case LORA__VALUE__KIND_MAP_VALUE:
		if (v->map_value)
			fmt_entries(v->map_value->entries,
			            v->map_value->n_entries, fmt, out);
		else
			lora_buf_puts(out, "{}");
		break;
	case LORA__VALUE__KIND_NODE_VALUE:
		fmt_node(v->node_value, fmt, out);
		break;
	case LORA__VALUE__KIND_REL_VALUE:
		fmt_rel(v->rel_value, fmt, out);
		break;
	case LORA__VALUE__KIND_PATH_VALUE:
		fmt_path(v->path_value, fmt, out);
		break;
	default:
		fmt_other(v, fmt, out);
	}
	return out->data ? 0 : LORA_ENOMEM;
}

Lora__Value *tck_pb_copy(const Lora__Value *v)
{
	Lora__Value *copy;
	uint8_t *buf;
	size_t len;

	if (!v)
		return NULL;
	len = lora__value__get_packed_size(v);
	buf = lora_malloc(len + 1);
	if (!buf)
		return NULL;
	lora__value__pack(v, buf);
	copy = lora__value__unpack(&lora_pb_allocator, len, buf);
	lora_free(buf);
	return copy;
}
