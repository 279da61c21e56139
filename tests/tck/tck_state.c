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

/* ---- emptying a store between scenarios -------------------------------------
 */

static int batch_add(Lora__MutationBatch *b, Lora__Mutation *m)
{
	Lora__Mutation **ms =
	    lora_realloc(b->mutations, (b->n_mutations + 1) * sizeof(*ms));

	if (!ms) {
		lora__mutation__free_unpacked(m, &lora_pb_allocator);
		return LORA_ENOMEM;
	}
	b->mutations = ms;
	b->mutations[b->n_mutations++] = m;
	return 0;
}

static int add_delete_node(Lora__MutationBatch *b, uint64_t id)
{
	Lora__Mutation *m = lora_malloc(sizeof(*m));
	Lora__DeleteNode *d = lora_malloc(sizeof(*d));

	if (!m || !d) {
		lora_free(m);
		lora_free(d);
		return LORA_ENOMEM;
	}
	lora__mutation__init(m);
	lora__delete_node__init(d);
	d->id = id;
	d->detach = 1;
	m->op_case = LORA__MUTATION__OP_DELETE_NODE;
	m->delete_node = d;
	return batch_add(b, m);
}

static int add_drop_index(Lora__MutationBatch *b, const char *name)
{
	Lora__Mutation *m = lora_malloc(sizeof(*m));
	Lora__DropIndex *d = lora_malloc(sizeof(*d));
	char *copy = lora_strdup(name);

	if (!m || !d || !copy) {
		lora_free(m);
		lora_free(d);
		lora_free(copy);
		return LORA_ENOMEM;
	}
	lora__mutation__init(m);
	lora__drop_index__init(d);
	d->name = copy;
	d->if_exists = 1;
	m->op_case = LORA__MUTATION__OP_DROP_INDEX;
	m->drop_index = d;
	return batch_add(b, m);
}

/* A batch deleting every node (detached) and dropping every index. */
static int wipe_batch(struct sto_view *v, Lora__MutationBatch *b)
{
	Lora__CreateIndex **defs = NULL;
	struct sto_iter *it = NULL;
	struct sto_item item;
	size_t n = 0;
	int done = 0, rc = sto_view_scan_nodes(v, &it);

	while (rc == 0 && (rc = sto_iter_next(it, &item, &done)) == 0 && !done)
		rc = add_delete_node(b, item.node_id);
	sto_iter_free(it);
	if (rc == 0)
		rc = sto_view_indexes(v, &defs, &n);
	for (size_t k = 0; rc == 0 && k < n; k++)
		rc = add_drop_index(b, defs[k]->name);
	if (defs)
		sto_indexes_free(defs, n);
	return rc;
}

static int check_empty(struct sto_store *store, char *errmsg)
{
	struct sto_view *v = NULL;
	Lora__CreateIndex **defs = NULL;
	uint64_t nodes = 1, edges = 1;
	size_t n = 1;
	int rc = sto_view_open(store, &v);

	if (rc == 0 && (rc = sto_view_count_nodes(v, NULL, &nodes)) == 0 &&
	    (rc = sto_view_count_edges(v, NULL, &edges)) == 0)
		rc = sto_view_indexes(v, &defs, &n);
	if (defs)
		sto_indexes_free(defs, n);
	if (v)
		sto_view_close(v);
	if (rc == 0 && (nodes || edges || n))
		rc = lora_errf(LORA_EINTERNAL, errmsg,
		               "store not empty after wipe: %llu nodes, "
		               "%llu edges, %zu indexes",
		               (unsigned long long)nodes,
		               (unsigned long long)edges, n);
	return rc;
}

int tck_state_wipe(struct sto_store *store, char *errmsg)
{
	Lora__MutationBatch b = LORA__MUTATION_BATCH__INIT;
	struct sto_view *v = NULL;
	int rc = sto_view_open(store, &v);

	if (rc)
		return lora_errf(rc, errmsg, "wipe: cannot open a view");
	rc = wipe_batch(v, &b);
	sto_view_close(v);
	if (rc == 0 && b.n_mutations)
		rc = sto_apply(store, sto_applied_index(store) + 1, &b, errmsg);
	for (size_t k = 0; k < b.n_mutations; k++)
		lora__mutation__free_unpacked(b.mutations[k],
		                              &lora_pb_allocator);
	lora_free(b.mutations);
	return rc ? rc : check_empty(store, errmsg);
}
