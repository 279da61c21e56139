/* format.c - qry_value_format: the Cypher text of a Lora__Value (strings
 * bare at top level and quoted inside lists and maps, nodes as
 * (:L {k: v}), relationships as [:T {k: v}], paths as <(a)-[r]->(b)>,
 * temporal values in ISO 8601). */
#include <string.h>

#include "qint.h"

#define FORMAT_DEPTH_MAX 256

static int fmt(const Lora__Value *v, struct lora_buf *b, int quote, int depth);

static int fmt_entries(Lora__MapEntry **e, size_t n, struct lora_buf *b,
                       int depth)
{
	for (size_t i = 0; i < n; i++) {
		int rv = lora_buf_printf(b, "%s%s: ", i ? ", " : "", e[i]->key);
		if (rv || (rv = fmt(e[i]->value, b, 1, depth + 1)))
			return rv;
	}
	return 0;
}

static int fmt_node(const Lora__NodeValue *n, struct lora_buf *b, int depth)
{
	lora_buf_putc(b, '(');
	for (size_t i = 0; i < n->n_labels; i++)
		lora_buf_printf(b, ":%s", n->labels[i]);
	if (n->n_properties) {
		lora_buf_puts(b, n->n_labels ? " {" : "{");
		int rv = fmt_entries(n->properties, n->n_properties, b, depth);
		if (rv)
			return rv;
		lora_buf_putc(b, '}');
	}
	return lora_buf_putc(b, ')');
}

static int fmt_rel(const Lora__RelValue *r, struct lora_buf *b, int depth)
{
	lora_buf_printf(b, "[:%s", r->type ? r->type : "");
	if (r->n_properties) {
		lora_buf_puts(b, " {");
		int rv = fmt_entries(r->properties, r->n_properties, b, depth);
		if (rv)
			return rv;
		lora_buf_putc(b, '}');
	}
	return lora_buf_putc(b, ']');
}

static int fmt_path(const Lora__PathValue *p, struct lora_buf *b, int depth)
{
	if (p->n_nodes != p->n_rels + 1)
		return LORA_EINVAL;
	lora_buf_putc(b, '<');
	fmt_node(p->nodes[0], b, depth);
	for (size_t i = 0; i < p->n_rels; i++) {
		int fwd = p->rels[i]->start_id == p->nodes[i]->id;
		lora_buf_puts(b, fwd ? "-" : "<-");
		fmt_rel(p->rels[i], b, depth);
		lora_buf_puts(b, fwd ? "->" : "-");
		fmt_node(p->nodes[i + 1], b, depth);
	}
	return lora_buf_putc(b, '>');
}

static int fmt_vector(const Lora__Vector *v, struct lora_buf *b)
{
	lora_buf_putc(b, '[');
	for (uint32_t i = 0; i < v->dimension; i++) {
		if (i)
			lora_buf_puts(b, ", ");
		if (i < v->n_f32)
			fmt_double(v->f32[i], b);
		else if (i < v->n_f64)
			fmt_double(v->f64[i], b);
		else if (i < v->n_ints)
			lora_buf_printf(b, "%lld", (long long)v->ints[i]);
	}
	return lora_buf_putc(b, ']');
}

static int fmt(const Lora__Value *v, struct lora_buf *b, int quote, int depth)
{
	if (depth > FORMAT_DEPTH_MAX)
		return LORA_ELIMIT;
	if (!v)
		return lora_buf_puts(b, "null");
	switch (v->kind_case) {
	case LORA__VALUE__KIND_BOOL_VALUE:
		return lora_buf_puts(b, v->bool_value ? "true" : "false");
	case LORA__VALUE__KIND_INT_VALUE:
		return lora_buf_printf(b, "%lld", (long long)v->int_value);
	case LORA__VALUE__KIND_FLOAT_VALUE:
		fmt_double(v->float_value, b);
		return 0;
	case LORA__VALUE__KIND_STRING_VALUE: {
		const char *s = v->string_value ? v->string_value : "";
		if (!quote)
			return lora_buf_puts(b, s);
		lora_buf_putc(b, '\'');
		for (; *s; s++) {
			if (*s == '\'' || *s == '\\')
				lora_buf_putc(b, '\\');
			lora_buf_putc(b, *s);
		}
		return lora_buf_putc(b, '\'');
	}
	case LORA__VALUE__KIND_BYTES_VALUE:
		return lora_buf_printf(b, "<%zu bytes>", v->bytes_value.len);
	case LORA__VALUE__KIND_LIST_VALUE:
		lora_buf_putc(b, '[');
		for (size_t i = 0; i < v->list_value->n_items; i++) {
			if (i)
				lora_buf_puts(b, ", ");
			int rv = fmt(v->list_value->items[i], b, 1, depth + 1);
			if (rv)
				return rv;
		}
		return lora_buf_putc(b, ']');
	case LORA__VALUE__KIND_MAP_VALUE: {
		lora_buf_putc(b, '{');
		int rv = fmt_entries(v->map_value->entries,
		                     v->map_value->n_entries, b, depth);
		if (rv)
			return rv;
		return lora_buf_putc(b, '}');
	}
	case LORA__VALUE__KIND_VECTOR_VALUE:
		return fmt_vector(v->vector_value, b);
	case LORA__VALUE__KIND_TEMPORAL_VALUE: {
		Lora__Temporal *t = v->temporal_value;
		struct vtemp x = {.kind = t->kind,
		                  .offset = t->offset_seconds,
		                  .days = t->epoch_days,
		                  .nanos = t->nanos_of_day,
		                  .zone =
		                      t->zone && t->zone[0] ? t->zone : NULL,
		                  .months = t->months,
		                  .ddays = t->days,
		                  .secs = t->seconds,
		                  .dnanos = t->nanos};
		if (quote)
			lora_buf_putc(b, '\'');
		tm_format(&x, b);
		return quote ? lora_buf_putc(b, '\'') : 0;
	}
	case LORA__VALUE__KIND_POINT_VALUE: {
		struct vpoint p = {v->point_value->srid, v->point_value->x,
		                   v->point_value->y, v->point_value->z};
		pt_format(&p, b);
		return 0;
	}
	case LORA__VALUE__KIND_NODE_VALUE:
		return fmt_node(v->node_value, b, depth);
	case LORA__VALUE__KIND_REL_VALUE:
		return fmt_rel(v->rel_value, b, depth);
	case LORA__VALUE__KIND_PATH_VALUE:
		return fmt_path(v->path_value, b, depth);
	default:
		return lora_buf_puts(b, "null");
	}
}

int qry_value_format(const Lora__Value *v, struct lora_buf *out)
{
	int rv = fmt(v, out, 0, 0);
	return rv ? rv : lora_buf_error(out); /* any append that failed */
}
