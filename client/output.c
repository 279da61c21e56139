/* output.c - the shell's machine-readable row formats: JSON lines and CSV. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static json_t *props_json(Lora__MapEntry *const *e, size_t n, int depth);

/* A temporal (or anything else) as its Cypher text, as a JSON string. */
static json_t *text_json(const Lora__Value *v)
{
	struct lora_buf b = {0};
	json_t *s = lora_value_format(&b, v) == 0 && b.data
	                ? json_stringn(b.data, b.len)
	                : NULL;
	lora_buf_free(&b);
	return s;
}

static json_t *node_json(const Lora__NodeValue *n, int depth)
{
	json_t *labels = json_array();
	for (size_t i = 0; labels && i < n->n_labels; i++)
		json_array_append_new(labels, json_string(n->labels[i]));
	return json_pack("{s:I, s:s, s:o, s:o}", "id", (json_int_t)n->id,
	                 "kind", "node", "labels", labels, "properties",
	                 props_json(n->properties, n->n_properties, depth));
}

static json_t *rel_json(const Lora__RelValue *r, int depth)
{
	return json_pack(
	    "{s:I, s:s, s:I, s:I, s:s, s:o}", "id", (json_int_t)r->id, "kind",
	    "relationship", "startId", (json_int_t)r->start_id, "endId",
	    (json_int_t)r->end_id, "type", r->type ? r->type : "", "properties",
	    props_json(r->properties, r->n_properties, depth));
}

static json_t *vector_json(const Lora__Vector *v)
{
	json_t *vals = json_array();
	for (size_t i = 0; vals && i < v->dimension; i++) {
		json_t *x = i < v->n_f64   ? json_real(v->f64[i])
		            : i < v->n_f32 ? json_real(v->f32[i])
		            : i < v->n_ints
		                ? json_integer((json_int_t)v->ints[i])
		                : json_null();
		json_array_append_new(vals, x);
	}
	return json_pack("{s:s, s:I, s:o}", "kind", "vector", "dimension",
	                 (json_int_t)v->dimension, "values", vals);
}

static json_t *value_json(const Lora__Value *v, int depth)
{
	if (depth > LORA_VALUE_DEPTH_MAX)
		return NULL;
	if (v == NULL)
		return json_null();
	switch (v->kind_case) {
	case LORA__VALUE__KIND_BOOL_VALUE:
		return json_boolean(v->bool_value);
	case LORA__VALUE__KIND_INT_VALUE:
		return json_integer((json_int_t)v->int_value);
	case LORA__VALUE__KIND_FLOAT_VALUE:
		/* JSON has no NaN or infinities: those go as their text */
		return isfinite(v->float_value) ? json_real(v->float_value)
		                                : text_json(v);
	case LORA__VALUE__KIND_STRING_VALUE:
		return json_string(v->string_value ? v->string_value : "");
	case LORA__VALUE__KIND_LIST_VALUE: {
		json_t *a = json_array();
		for (size_t i = 0; a && i < v->list_value->n_items; i++)
			if (json_array_append_new(
			        a, value_json(v->list_value->items[i],
			                      depth + 1))) {
				json_decref(a);
				return NULL;
			}
		return a;
	}
	case LORA__VALUE__KIND_MAP_VALUE:
		return props_json(v->map_value->entries,
		                  v->map_value->n_entries, depth);
	case LORA__VALUE__KIND_NODE_VALUE:
		return node_json(v->node_value, depth + 1);
	case LORA__VALUE__KIND_REL_VALUE:
		return rel_json(v->rel_value, depth + 1);
	case LORA__VALUE__KIND_PATH_VALUE: {
		const Lora__PathValue *p = v->path_value;
		json_t *ns = json_array(), *rs = json_array();
		for (size_t i = 0; ns && i < p->n_nodes; i++)
			json_array_append_new(
			    ns, node_json(p->nodes[i], depth + 1));
		for (size_t i = 0; rs && i < p->n_rels; i++)
			json_array_append_new(rs,
			                      rel_json(p->rels[i], depth + 1));
		return json_pack("{s:s, s:o, s:o}", "kind", "path", "nodes", ns,
		                 "relationships", rs);
	}
	case LORA__VALUE__KIND_VECTOR_VALUE:
		return vector_json(v->vector_value);
	case LORA__VALUE__KIND_TEMPORAL_VALUE:
	case LORA__VALUE__KIND_POINT_VALUE:
	case LORA__VALUE__KIND_BYTES_VALUE:
		return text_json(v);
	default:
		return json_null();
	}
}

static json_t *props_json(Lora__MapEntry *const *e, size_t n, int depth)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < n; i++)
		if (json_object_set_new(o, e[i]->key,
		                        value_json(e[i]->value, depth + 1))) {
			json_decref(o);
			return NULL;
		}
	return o;
}

json_t *lora_value_json(const Lora__Value *v)
{
	return value_json(v, 0);
}

int lora_row_json(struct lora_buf *out, const char *const *names,
                  Lora__Value *const *row, size_t cols)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < cols; i++)
		if (json_object_set_new(o, names[i], lora_value_json(row[i]))) {
			json_decref(o);
			o = NULL;
		}
	char *text =
	    o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (!text)
		return LORA_ENOMEM;
	lora_buf_puts(out, text);
	lora_buf_putc(out, '\n');
	free(text);
	return lora_buf_error(out);
}

/* One CSV field (RFC 4180): quoted when it holds a comma, a quote or a
 * line break, with quotes doubled. */
static void csv_field(struct lora_buf *out, const char *s, size_t n)
{
	int quote = strcspn(s, ",\"\r\n") < n;
	if (quote)
		lora_buf_putc(out, '"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			lora_buf_putc(out, '"');
		lora_buf_putc(out, s[i]);
	}
	if (quote)
		lora_buf_putc(out, '"');
}

int lora_csv_header(struct lora_buf *out, const char *const *names, size_t cols)
{
	for (size_t i = 0; i < cols; i++) {
		if (i)
			lora_buf_putc(out, ',');
		csv_field(out, names[i], strlen(names[i]));
	}
	lora_buf_puts(out, "\r\n");
	return lora_buf_error(out);
}

int lora_csv_row(struct lora_buf *out, Lora__Value *const *row, size_t cols)
{
	struct lora_buf cell = {0};
	for (size_t i = 0; i < cols; i++) {
		if (i)
			lora_buf_putc(out, ',');
		const Lora__Value *v = row[i];
		if (!v || v->kind_case == LORA__VALUE__KIND__NOT_SET ||
		    v->kind_case == LORA__VALUE__KIND_NULL_VALUE)
			continue; /* null: an empty field */
		lora_buf_reset(&cell);
		if (v->kind_case == LORA__VALUE__KIND_STRING_VALUE &&
		    !(v->string_value && v->string_value[0])) {
			lora_buf_puts(out, "\"\""); /* "" is not null */
			continue;
		}
		if (v->kind_case == LORA__VALUE__KIND_STRING_VALUE)
			lora_buf_puts(&cell,
			              v->string_value ? v->string_value : "");
		else
			lora_value_format(&cell, v);
		if (lora_buf_error(&cell))
			break;
		csv_field(out, cell.data ? cell.data : "", cell.len);
	}
	lora_buf_puts(out, "\r\n");
	int rv =
	    lora_buf_error(&cell) ? lora_buf_error(&cell) : lora_buf_error(out);
	lora_buf_free(&cell);
	return rv;
}
