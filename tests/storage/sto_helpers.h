/*
 * sto_helpers.h - helpers shared by the storage tests and the storage
 * benchmark: temporary directories and builders for mutation batches.
 *
 * Every message built here is allocated through lora_malloc, so a batch is
 * freed with batch_free() (lora__mutation_batch__free_unpacked).
 */
#ifndef LORA_STO_HELPERS_H
#define LORA_STO_HELPERS_H

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage.h"

/* ---- temporary directories -------------------------------------------- */

/* The run's root (tmpdir_root_begin, in main before the tests fork):
 * every tmpdir_new of the run lies in it and tmpdir_root_end removes it
 * whole, so a test whose forked child failed before its teardown leaves
 * nothing behind. Without a root, directories go straight into /tmp. */
static char tmpdir_root[32];

static inline char *tmpdir_make(const char *in)
{
	char tmpl[64];
	snprintf(tmpl, sizeof tmpl, "%s/lora-sto-XXXXXX", in);
	char *d = mkdtemp(tmpl);
	if (!d) {
		perror("mkdtemp");
		abort();
	}
	return strdup(d);
}

static inline char *tmpdir_new(void)
{
	return tmpdir_make(tmpdir_root[0] ? tmpdir_root : "/tmp");
}

static inline int rm_one(const char *p, const struct stat *sb, int flag,
                         struct FTW *f)
{
	(void)sb, (void)flag, (void)f;
	remove(p); /* keep going: remove what can be removed */
	return 0;
}

static inline void tmpdir_free(char *d)
{
	nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static inline void tmpdir_root_begin(void)
{
	char *d = tmpdir_make("/tmp");
	snprintf(tmpdir_root, sizeof tmpdir_root, "%s", d);
	free(d);
}

static inline void tmpdir_root_end(void)
{
	if (tmpdir_root[0])
		nftw(tmpdir_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir_root[0] = '\0';
}

/* path = dir + "/" + name, in a static buffer per call site. */
static inline char *path_join(char *buf, size_t n, const char *dir,
                              const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
	return buf;
}

/* ---- values ---------------------------------------------------------------
 */

static inline Lora__Value *v_new(void)
{
	Lora__Value *v = lora_malloc(sizeof(*v));
	lora__value__init(v);
	return v;
}

static inline Lora__Value *v_int(int64_t i)
{
	Lora__Value *v = v_new();
	v->kind_case = LORA__VALUE__KIND_INT_VALUE;
	v->int_value = i;
	return v;
}

static inline Lora__Value *v_float(double d)
{
	Lora__Value *v = v_new();
	v->kind_case = LORA__VALUE__KIND_FLOAT_VALUE;
	v->float_value = d;
	return v;
}

static inline Lora__Value *v_str(const char *s)
{
	Lora__Value *v = v_new();
	v->kind_case = LORA__VALUE__KIND_STRING_VALUE;
	v->string_value = lora_strdup(s);
	return v;
}

static inline Lora__Value *v_bool(int b)
{
	Lora__Value *v = v_new();
	v->kind_case = LORA__VALUE__KIND_BOOL_VALUE;
	v->bool_value = b;
	return v;
}

static inline Lora__Value *v_null(void)
{
	Lora__Value *v = v_new();
	v->kind_case = LORA__VALUE__KIND_NULL_VALUE;
	v->null_value = 1;
	return v;
}

static inline Lora__Vector *vec_f32(size_t n, const float *xs)
{
	Lora__Vector *vec = lora_malloc(sizeof(*vec));
	lora__vector__init(vec);
	vec->coord_type = LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT32;
	vec->dimension = (uint32_t)n;
	vec->n_f32 = n;
	vec->f32 = lora_malloc(n * sizeof(float) + 1);
	memcpy(vec->f32, xs, n * sizeof(float));
	return vec;
}

static inline Lora__Value *v_vec(size_t n, const float *xs)
{
	Lora__Value *v = v_new();
	v->kind_case = LORA__VALUE__KIND_VECTOR_VALUE;
	v->vector_value = vec_f32(n, xs);
	return v;
}

/* ---- batches
 * ------------------------------------------------------------------ */

static inline Lora__MutationBatch *batch_new(void)
{
	Lora__MutationBatch *b = lora_malloc(sizeof(*b));
	lora__mutation_batch__init(b);
	return b;
}

static inline void batch_free(Lora__MutationBatch *b)
{
	lora__mutation_batch__free_unpacked(b, &lora_pb_allocator);
}

static inline Lora__Mutation *batch_add(Lora__MutationBatch *b)
{
	b->mutations = lora_realloc(b->mutations, (b->n_mutations + 1) *
	                                              sizeof(*b->mutations));
	Lora__Mutation *m = lora_malloc(sizeof(*m));
	lora__mutation__init(m);
	b->mutations[b->n_mutations++] = m;
	return m;
}

/* Splits "A,B" into a lora_malloc'd array of lora_strdup'd strings. */
static inline char **split_names(const char *csv, size_t *n)
{
	*n = 0;
	char **out = lora_calloc(16, sizeof(char *));
	if (!csv || !*csv)
		return out;
	const char *p = csv;
	while (*n < 16) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		out[(*n)++] = lora_strndup(p, len);
		if (!c)
			break;
		p = c + 1;
	}
	return out;
}

static inline Lora__Property **props_va(size_t np, va_list ap)
{
	Lora__Property **ps = lora_calloc(np + 1, sizeof(*ps));
	for (size_t i = 0; i < np; i++) {
		ps[i] = lora_malloc(sizeof(**ps));
		lora__property__init(ps[i]);
		ps[i]->key = lora_strdup(va_arg(ap, const char *));
		ps[i]->value = va_arg(ap, Lora__Value *);
	}
	return ps;
}

/* create_node(b, id, "A,B", nprops, "key", Value*, ...) */
static inline void add_create_node(Lora__MutationBatch *b, uint64_t id,
                                   const char *labels, size_t np, ...)
{
	Lora__Mutation *m = batch_add(b);
	Lora__CreateNode *c = lora_malloc(sizeof(*c));
	lora__create_node__init(c);
	c->id = id;
	c->labels = split_names(labels, &c->n_labels);
	va_list ap;
	va_start(ap, np);
	c->properties = props_va(np, ap);
	va_end(ap);
	c->n_properties = np;
	m->op_case = LORA__MUTATION__OP_CREATE_NODE;
	m->create_node = c;
}

static inline void add_create_edge(Lora__MutationBatch *b, uint64_t id,
                                   const char *type, uint64_t from, uint64_t to,
                                   size_t np, ...)
{
	Lora__Mutation *m = batch_add(b);
	Lora__CreateEdge *c = lora_malloc(sizeof(*c));
	lora__create_edge__init(c);
	c->id = id;
	c->type = lora_strdup(type);
	c->from_id = from;
	c->to_id = to;
	va_list ap;
	va_start(ap, np);
	c->properties = props_va(np, ap);
	va_end(ap);
	c->n_properties = np;
	m->op_case = LORA__MUTATION__OP_CREATE_EDGE;
	m->create_edge = c;
}

static inline void add_delete_node(Lora__MutationBatch *b, uint64_t id,
                                   int detach)
{
	Lora__Mutation *m = batch_add(b);
	Lora__DeleteNode *d = lora_malloc(sizeof(*d));
	lora__delete_node__init(d);
	d->id = id;
	d->detach = detach;
	m->op_case = LORA__MUTATION__OP_DELETE_NODE;
	m->delete_node = d;
}

static inline void add_delete_edge(Lora__MutationBatch *b, uint64_t id)
{
	Lora__Mutation *m = batch_add(b);
	Lora__DeleteEdge *d = lora_malloc(sizeof(*d));
	lora__delete_edge__init(d);
	d->id = id;
	m->op_case = LORA__MUTATION__OP_DELETE_EDGE;
	m->delete_edge = d;
}

static inline void add_set_prop(Lora__MutationBatch *b, int entity, uint64_t id,
                                const char *key, Lora__Value *v)
{
	Lora__Mutation *m = batch_add(b);
	Lora__SetProperty *s = lora_malloc(sizeof(*s));
	lora__set_property__init(s);
	s->entity = (Lora__EntityKind)entity;
	s->id = id;
	s->key = lora_strdup(key);
	s->value = v;
	m->op_case = LORA__MUTATION__OP_SET_PROPERTY;
	m->set_property = s;
}

static inline void add_remove_prop(Lora__MutationBatch *b, int entity,
                                   uint64_t id, const char *key)
{
	Lora__Mutation *m = batch_add(b);
	Lora__RemoveProperty *s = lora_malloc(sizeof(*s));
	lora__remove_property__init(s);
	s->entity = (Lora__EntityKind)entity;
	s->id = id;
	s->key = lora_strdup(key);
	m->op_case = LORA__MUTATION__OP_REMOVE_PROPERTY;
	m->remove_property = s;
}

static inline void add_label(Lora__MutationBatch *b, uint64_t id,
                             const char *label, int add)
{
	Lora__Mutation *m = batch_add(b);
	if (add) {
		Lora__AddLabel *a = lora_malloc(sizeof(*a));
		lora__add_label__init(a);
		a->node_id = id;
		a->label = lora_strdup(label);
		m->op_case = LORA__MUTATION__OP_ADD_LABEL;
		m->add_label = a;
	} else {
		Lora__RemoveLabel *r = lora_malloc(sizeof(*r));
		lora__remove_label__init(r);
		r->node_id = id;
		r->label = lora_strdup(label);
		m->op_case = LORA__MUTATION__OP_REMOVE_LABEL;
		m->remove_label = r;
	}
}

static inline void add_set_vector(Lora__MutationBatch *b, int entity,
                                  uint64_t owner, const char *key,
                                  Lora__Vector *vec)
{
	Lora__Mutation *m = batch_add(b);
	Lora__SetVector *s = lora_malloc(sizeof(*s));
	lora__set_vector__init(s);
	s->entity = (Lora__EntityKind)entity;
	s->owner_id = owner;
	s->key = lora_strdup(key);
	s->vector = vec;
	m->op_case = LORA__MUTATION__OP_SET_VECTOR;
	m->set_vector = s;
}

static inline void add_remove_vector(Lora__MutationBatch *b, int entity,
                                     uint64_t owner, const char *key)
{
	Lora__Mutation *m = batch_add(b);
	Lora__RemoveVector *s = lora_malloc(sizeof(*s));
	lora__remove_vector__init(s);
	s->entity = (Lora__EntityKind)entity;
	s->owner_id = owner;
	s->key = lora_strdup(key);
	m->op_case = LORA__MUTATION__OP_REMOVE_VECTOR;
	m->remove_vector = s;
}

static inline void add_create_index(Lora__MutationBatch *b, const char *name,
                                    int kind, const char *label,
                                    const char *props, int if_not_exists)
{
	Lora__Mutation *m = batch_add(b);
	Lora__CreateIndex *c = lora_malloc(sizeof(*c));
	lora__create_index__init(c);
	c->name = lora_strdup(name);
	c->kind = (Lora__IndexKind)kind;
	c->entity = LORA__ENTITY_KIND__ENTITY_NODE;
	c->label = lora_strdup(label);
	c->properties = split_names(props, &c->n_properties);
	c->if_not_exists = if_not_exists;
	m->op_case = LORA__MUTATION__OP_CREATE_INDEX;
	m->create_index = c;
}

static inline void add_drop_index(Lora__MutationBatch *b, const char *name,
                                  int if_exists)
{
	Lora__Mutation *m = batch_add(b);
	Lora__DropIndex *d = lora_malloc(sizeof(*d));
	lora__drop_index__init(d);
	d->name = lora_strdup(name);
	d->if_exists = if_exists;
	m->op_case = LORA__MUTATION__OP_DROP_INDEX;
	m->drop_index = d;
}

/* Finds property `key` of a node value, or NULL. */
static inline const Lora__Value *node_prop(const Lora__NodeValue *n,
                                           const char *key)
{
	for (size_t i = 0; i < n->n_properties; i++)
		if (!strcmp(n->properties[i]->key, key))
			return n->properties[i]->value;
	return NULL;
}

#endif /* LORA_STO_HELPERS_H */
