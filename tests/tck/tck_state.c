/* tck_state.c - a snapshot of the whole graph (node ids, edge ids, labels
 * in use, property entries) read through a storage view, and the diff of
 * two snapshots that the TCK's side-effect steps count. */
#include "tck_state.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "tck_values.h"

static int set_add(struct tck_strset *s, char *item)
{
	char **items;

	if (!item)
		return LORA_ENOMEM;
	items = lora_realloc(s->items, (s->n + 1) * sizeof(char *));
	if (!items) {
		lora_free(item);
		return LORA_ENOMEM;
	}
	s->items = items;
	s->items[s->n++] = item;
	return 0;
}

static int add_printf(struct tck_strset *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int add_printf(struct tck_strset *s, const char *fmt, ...)
{
	struct lora_buf b = {0};
	va_list ap;

	va_start(ap, fmt);
	lora_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return set_add(s, lora_buf_take(&b));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and drops duplicates. */
static void set_finish(struct tck_strset *s)
{
	size_t w = 0;

	if (s->n == 0)
		return;
	qsort(s->items, s->n, sizeof(char *), cmp_str);
	for (size_t r = 1; r < s->n; r++) {
		if (strcmp(s->items[r], s->items[w]) == 0)
			lora_free(s->items[r]);
		else
			s->items[++w] = s->items[r];
	}
	s->n = w + 1;
}

static void set_free(struct tck_strset *s)
{
	for (size_t k = 0; k < s->n; k++)
		lora_free(s->items[k]);
	lora_free(s->items);
	memset(s, 0, sizeof(*s));
}

void tck_state_free(struct tck_state *st)
{
	set_free(&st->nodes);
	set_free(&st->edges);
	set_free(&st->labels);
	set_free(&st->props);
}

/* Adds "<tag><id>.<key>=<value in TCK syntax>" per property. */
static int add_props(struct tck_strset *props, char tag, uint64_t id,
                     Lora__MapEntry *const *e, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		struct lora_buf v = {0};
		int rc;

		tck_pb_format(e[k]->value, qry_value_format, &v);
		rc = add_printf(props, "%c%" PRIu64 ".%s=%s", tag, id,
		                e[k]->key, v.data ? v.data : "?");
		lora_buf_free(&v);
		if (rc)
			return rc;
	}
	return 0;
}

static int read_node(struct sto_view *v, uint64_t id, struct tck_state *st)
{
	Lora__NodeValue *n = NULL;
	int rc = sto_view_node(v, id, &n);

	if (rc)
		return rc;
	rc = add_printf(&st->nodes, "%" PRIu64, id);
	for (size_t k = 0; rc == 0 && k < n->n_labels; k++)
		rc = set_add(&st->labels, lora_strdup(n->labels[k]));
	if (rc == 0)
		rc = add_props(&st->props, 'n', id, n->properties,
		               n->n_properties);
	lora__node_value__free_unpacked(n, &lora_pb_allocator);
	return rc;
}

static int read_edge(struct sto_view *v, uint64_t id, struct tck_state *st)
{
	Lora__RelValue *r = NULL;
	int rc = sto_view_edge(v, id, &r);

	if (rc)
		return rc;
	rc = add_printf(&st->edges, "%" PRIu64, id);
	if (rc == 0)
		rc = add_props(&st->props, 'e', id, r->properties,
		               r->n_properties);
	lora__rel_value__free_unpacked(r, &lora_pb_allocator);
	return rc;
}

static int scan(struct sto_view *v, int edges, struct tck_state *st)
{
	struct sto_iter *it = NULL;
	struct sto_item item;
	int done = 0;
	int rc =
	    edges ? sto_view_scan_edges(v, &it) : sto_view_scan_nodes(v, &it);

	while (rc == 0 && (rc = sto_iter_next(it, &item, &done)) == 0 && !done)
		rc = edges ? read_edge(v, item.edge_id, st)
		           : read_node(v, item.node_id, st);
	sto_iter_free(it);
	return rc;
}

int tck_state_read(struct sto_store *store, struct tck_state *st)
{
	struct sto_view *v = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = sto_view_open(store, &v);
	if (rc)
		return rc;
	rc = scan(v, 0, st);
	if (rc == 0)
		rc = scan(v, 1, st);
	sto_view_close(v);
	set_finish(&st->nodes);
	set_finish(&st->edges);
	set_finish(&st->labels);
	set_finish(&st->props);
	if (rc)
		tck_state_free(st);
	return rc;
}

/* Items of a that are not in b (both sorted). */
static long only_in(const struct tck_strset *a, const struct tck_strset *b)
{
	size_t i = 0, j = 0;
	long n = 0;

	while (i < a->n) {
		int c = j < b->n ? strcmp(a->items[i], b->items[j]) : -1;

		if (c < 0) {
			n++;
			i++;
		} else if (c > 0) {
			j++;
		} else {
			i++;
			j++;
		}
	}
	return n;
}

void tck_state_diff(const struct tck_state *before,
                    const struct tck_state *after, struct tck_effects *fx)
{
	fx->v[TCK_FX_NODES_ADDED] = only_in(&after->nodes, &before->nodes);
	fx->v[TCK_FX_NODES_REMOVED] = only_in(&before->nodes, &after->nodes);
	fx->v[TCK_FX_RELS_ADDED] = only_in(&after->edges, &before->edges);
	fx->v[TCK_FX_RELS_REMOVED] = only_in(&before->edges, &after->edges);
	fx->v[TCK_FX_LABELS_ADDED] = only_in(&after->labels, &before->labels);
	fx->v[TCK_FX_LABELS_REMOVED] = only_in(&before->labels, &after->labels);
	fx->v[TCK_FX_PROPS_ADDED] = only_in(&after->props, &before->props);
	fx->v[TCK_FX_PROPS_REMOVED] = only_in(&before->props, &after->props);
}

const char *const tck_effect_names[TCK_FX_COUNT] = {
    "+nodes",  "-nodes",  "+relationships", "-relationships",
    "+labels", "-labels", "+properties",    "-properties",
};
