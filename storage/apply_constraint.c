/* apply_constraint.c - property existence, property type and node key
 * constraints on the apply path (CreateIndex kinds INDEX_EXISTS,
 * INDEX_TYPE and INDEX_NODE_KEY).
 *
 * Existence and type constraints keep no entries of their own; a node key
 * keeps range entries for each property (apply_index.c) and finds the
 * nodes that could share its combination by joining those entry lists
 * (the nodes holding each of its values), then compares the encoded
 * values of the few it finds. Creating one checks every
 * node of its label; a batch is checked once all its mutations are staged, on
 * the nodes it touched, so `CREATE (n:L) SET n.p = 1` in one statement is
 * judged by its end state. A violation rejects the whole batch, the same
 * way on every node (the writer checks first and answers the statement;
 * this catches a write decided before a constraint it raced with).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "applyInt.h"
#include "sto_testing.h"

static const char *const type_names[] = {
    "BOOLEAN",        "STRING",     "INTEGER",    "FLOAT",
    "DATE",           "LOCAL TIME", "ZONED TIME", "LOCAL DATETIME",
    "ZONED DATETIME", "DURATION",   "POINT"};

int sto_type_known(const char *type)
{
	for (size_t i = 0; type && i < sizeof type_names / sizeof *type_names;
	     i++)
		if (!strcmp(type, type_names[i]))
			return 1;
	return 0;
}

const char *sto_value_type(const Lora__Value *v)
{
	if (!v)
		return NULL;
	switch (v->kind_case) {
	case LORA__VALUE__KIND_BOOL_VALUE:
		return "BOOLEAN";
	case LORA__VALUE__KIND_STRING_VALUE:
		return "STRING";
	case LORA__VALUE__KIND_INT_VALUE:
		return "INTEGER";
	case LORA__VALUE__KIND_FLOAT_VALUE:
		return "FLOAT";
	case LORA__VALUE__KIND_POINT_VALUE:
		return "POINT";
	case LORA__VALUE__KIND_TEMPORAL_VALUE:
		switch (v->temporal_value->kind) {
		case LORA__TEMPORAL_KIND__TEMPORAL_DATE:
			return "DATE";
		case LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_TIME:
			return "LOCAL TIME";
		case LORA__TEMPORAL_KIND__TEMPORAL_TIME:
			return "ZONED TIME";
		case LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_DATETIME:
			return "LOCAL DATETIME";
		case LORA__TEMPORAL_KIND__TEMPORAL_DATETIME:
			return "ZONED DATETIME";
		case LORA__TEMPORAL_KIND__TEMPORAL_DURATION:
			return "DURATION";
		default:
			return NULL;
		}
	default:
		return NULL;
	}
}

static const struct sto_catalog *catalog(struct apply_ctx *c)
{
	return c->cat_copied ? &c->cat : &c->s->cat;
}

static int is_constraint(const Lora__CreateIndex *d)
{
	return d->entity == LORA__ENTITY_KIND__ENTITY_NODE &&
	       (d->kind == LORA__INDEX_KIND__INDEX_EXISTS ||
	        d->kind == LORA__INDEX_KIND__INDEX_TYPE ||
	        d->kind == LORA__INDEX_KIND__INDEX_NODE_KEY);
}

/* Whether node (record r) has vector property `key` in the vectors CF. */
static int has_vector(struct apply_ctx *c, uint64_t node, uint32_t key,
                      int *yes)
{
	uint8_t k[STO_VEC_KEY_BYTES];
	sto_key_vec(k, LORA__ENTITY_KIND__ENTITY_NODE, node, key);
	char *val = NULL;
	size_t len = 0;
	int rv = apply_get(c, STO_CF_VECTORS, k, sizeof k, &val, &len);
	*yes = !rv && val != NULL;
	rocksdb_free(val);
	return rv == LORA_ENOTFOUND ? 0 : rv;
}

/* Appends the index encoding of property `key` of r to b, as (u32
 * length, bytes); *ok = 0 when r lacks it or its value has no encoding (a
 * vector, a map). */
static int key_value(const struct sto_rec *r, int64_t key, struct lora_buf *b,
                     int *ok)
{
	int i = key < 0 ? -1 : sto_rec_find_prop(r, (uint32_t)key);
	*ok = 0;
	if (i < 0)
		return 0;
	Lora__Value *v;
	int rv =
	    sto_value_unpack((const uint8_t *)r->data.data + r->props[i].off,
	                     r->props[i].len, &v);
	if (rv)
		return rv;
	size_t at = b->len;
	uint8_t l[4] = {0};
	rv = lora_buf_append(b, l, 4);
	if (!rv)
		rv = sto_enc_value(b, v);
	lora__value__free_unpacked(v, &lora_pb_allocator);
	if (rv == LORA_EINVAL) {
		b->len = at;
		return 0;
	}
	if (!rv) {
		lora_put_be32((uint8_t *)b->data + at,
		              (uint32_t)(b->len - at - 4));
		*ok = 1;
	}
	return rv;
}

/* Encodes every property of node key d from r into b; *ok = 0 when one
 * has no encoding (the combination is then not compared). */
static int key_values(struct apply_ctx *c, const Lora__CreateIndex *d,
                      const struct sto_rec *r, struct lora_buf *b, int *ok)
{
	int rv = 0;
	*ok = 1;
	lora_buf_reset(b);
	for (size_t k = 0; !rv && *ok && k < d->n_properties; k++)
		rv = key_value(
		    r, apply_tok_find(c, STO_TOK_KEY, d->properties[k]), b, ok);
	return rv;
}

static _Atomic uint64_t key_seeks; /* entries examined (sto_testing.h) */

uint64_t sto_testing_node_key_seeks(void)
{
	return atomic_load(&key_seeks);
}

/* The entry prefixes (label, property k of d, r's value) into p[k]; *ok
 * 0 when a value has no encoding (the combination is not compared) */
static int key_prefixes(struct apply_ctx *c, uint32_t label,
                        const Lora__CreateIndex *d, const struct sto_rec *r,
                        struct lora_buf *p, int *ok)
{
	struct lora_buf one = {0};
	int rv = 0;
	*ok = 1;
	for (size_t k = 0; !rv && *ok && k < d->n_properties; k++) {
		int64_t key = apply_tok_find(c, STO_TOK_KEY, d->properties[k]);
		lora_buf_reset(&one);
		rv = key_value(r, key, &one, ok);
		if (!rv && *ok)
			rv = sto_key_prop_prefix(&p[k], label, (uint32_t)key);
		if (!rv && *ok)
			rv = lora_buf_append(&p[k], one.data + 4, one.len - 4);
	}
	lora_buf_free(&one);
	return rv;
}

/* Appends the ids of the nodes whose entries under (label, property k of
 * d) hold r's value for every k (the batch as staged): a leapfrog join of
 * the properties' entry lists, each ascending by node and stepped by
 * seeks to the largest node seen, so a value many nodes share (a
 * low-cardinality first property) costs no more than the rarest value of
 * the key. */
static int key_candidates(struct apply_ctx *c, uint32_t label,
                          const Lora__CreateIndex *d, const struct sto_rec *r,
                          struct lora_buf *ids)
{
	size_t m = d->n_properties;
	struct lora_buf p[STO_NODE_KEY_PROPS_MAX] = {{0}};
	rocksdb_iterator_t *it[STO_NODE_KEY_PROPS_MAX] = {0};
	int ok = 0, rv = m && m <= STO_NODE_KEY_PROPS_MAX
	                     ? key_prefixes(c, label, d, r, p, &ok)
	                     : LORA_EINVAL;
	for (size_t i = 0; !rv && ok && i < m; i++)
		it[i] = apply_iter(c, STO_CF_INDEX);
	if (!rv && ok)
		rv = sto_join_ids(it, p, m, ids, &key_seeks);
	for (size_t i = 0; i < m && i < STO_NODE_KEY_PROPS_MAX; i++) {
		if (it[i] && !rv)
			rv = apply_iter_err(it[i]);
		if (it[i])
			rocksdb_iter_destroy(it[i]);
		lora_buf_free(&p[i]);
	}
	return rv;
}

/* Node key d on node id (record r, labelled): every property present, and
 * no other live node of the label with the same combination. A vector
 * value (in the vectors CF, not r's properties) counts as missing: it has
 * no index encoding to compare; the writer judges it the same way
 * (query/write.c, key_exists). */
static int check_node_key(struct apply_ctx *c, const Lora__CreateIndex *d,
                          uint32_t label, uint64_t id, const struct sto_rec *r)
{
	for (size_t k = 0; k < d->n_properties; k++) {
		int64_t key = apply_tok_find(c, STO_TOK_KEY, d->properties[k]);
		if (key < 0 || sto_rec_find_prop(r, (uint32_t)key) < 0)
			return lora_errf(
			    LORA_ECONSTRAINT, c->errmsg,
			    "ConstraintValidationFailed: node %llu with label "
			    "%s must have the property %s (node key %s)",
			    (unsigned long long)id, d->label, d->properties[k],
			    d->name);
	}
	struct lora_buf mine = {0}, theirs = {0}, ids = {0};
	struct sto_rec o = {0};
	int ok, rv = key_values(c, d, r, &mine, &ok);
	if (!rv && ok)
		rv = key_candidates(c, label, d, r, &ids);
	for (size_t off = 0; !rv && ok && off < ids.len; off += 8) {
		uint64_t other = lora_get_be64((const uint8_t *)ids.data + off);
		int found, same;
		if (other == id || (rv = apply_load(c, 0, other, &o, &found)) ||
		    !found || (rv = key_values(c, d, &o, &theirs, &same)))
			continue;
		if (same && theirs.len == mine.len &&
		    !memcmp(theirs.data, mine.data, mine.len))
			rv = lora_errf(LORA_ECONSTRAINT, c->errmsg,
			               "ConstraintValidationFailed: node %llu "
			               "already has the same values of the "
			               "node key %s as node %llu",
			               (unsigned long long)other, d->name,
			               (unsigned long long)id);
	}
	sto_rec_free(&o);
	lora_buf_free(&mine);
	lora_buf_free(&theirs);
	lora_buf_free(&ids);
	return rv;
}

/* Checks node `id` (record r) against constraint d. */
static int check_one(struct apply_ctx *c, const Lora__CreateIndex *d,
                     uint64_t id, const struct sto_rec *r)
{
	int64_t label = apply_tok_find(c, STO_TOK_LABEL, d->label);
	if (label < 0 || !sto_rec_has_label(r, (uint32_t)label))
		return 0;
	if (d->kind == LORA__INDEX_KIND__INDEX_NODE_KEY)
		return check_node_key(c, d, (uint32_t)label, id, r);
	int64_t key = apply_tok_find(c, STO_TOK_KEY, d->properties[0]);
	int i = key < 0 ? -1 : sto_rec_find_prop(r, (uint32_t)key);
	int present = i >= 0, rv = 0;
	if (!present && key >= 0 && r->nvec)
		rv = has_vector(c, id, (uint32_t)key, &present);
	if (rv)
		return rv;
	if (d->kind == LORA__INDEX_KIND__INDEX_EXISTS && !present)
		return lora_errf(LORA_ECONSTRAINT, c->errmsg,
		                 "ConstraintValidationFailed: node %llu with "
		                 "label %s must have the property %s "
		                 "(constraint %s)",
		                 (unsigned long long)id, d->label,
		                 d->properties[0], d->name);
	if (d->kind != LORA__INDEX_KIND__INDEX_TYPE || i < 0)
		return 0; /* a vector is not one of the types a constraint names
		           */
	Lora__Value *v = lora__value__unpack(
	    &lora_pb_allocator, r->props[i].len,
	    (const uint8_t *)r->data.data + r->props[i].off);
	if (!v)
		return LORA_ECORRUPT;
	const char *t = sto_value_type(v);
	int ok = t && !strcmp(t, d->property_type);
	lora__value__free_unpacked(v, &lora_pb_allocator);
	if (!ok)
		return lora_errf(LORA_ECONSTRAINT, c->errmsg,
		                 "ConstraintValidationFailed: node %llu with "
		                 "label %s must have %s of type %s, it has %s "
		                 "(constraint %s)",
		                 (unsigned long long)id, d->label,
		                 d->properties[0], d->property_type,
		                 t ? t : "another type", d->name);
	return 0;
}

/* Checks node id against d (only_d) or every constraint. */
static int check_node(struct apply_ctx *c, uint64_t id,
                      const Lora__CreateIndex *only_d, struct sto_rec *r)
{
	int found;
	int rv = apply_load(c, 0, id, r, &found);
	if (rv || !found)
		return rv;
	if (only_d)
		return check_one(c, only_d, id, r);
	const struct sto_catalog *k = catalog(c);
	for (size_t i = 0; !rv && i < k->n; i++)
		if (is_constraint(k->defs[i]))
			rv = check_one(c, k->defs[i], id, r);
	return rv;
}

int apply_constraint_backfill(struct apply_ctx *c, const Lora__CreateIndex *m)
{
	if (!is_constraint(m))
		return 0;
	int64_t label = apply_tok_find(c, STO_TOK_LABEL, m->label);
	if (label < 0)
		return 0; /* no node has ever had the label */
	struct lora_buf ids = {0};
	int rv = apply_label_nodes(c, (uint32_t)label, &ids);
	struct sto_rec r = {0};
	for (size_t off = 0; !rv && off < ids.len; off += 8)
		rv = check_node(
		    c, lora_get_be64((const uint8_t *)ids.data + off), m, &r);
	sto_rec_free(&r);
	lora_buf_free(&ids);
	if (rv == LORA_ECONSTRAINT)
		lora_errwrap(rv, c->errmsg, "cannot create constraint %s",
		             m->name);
	return rv;
}

/* The node a mutation touches in a way a constraint can see: 1 and *id. */
static int touched(const Lora__Mutation *m, uint64_t *id)
{
	int node = 1;
	switch (m->op_case) {
	case LORA__MUTATION__OP_CREATE_NODE:
		*id = m->create_node->id;
		break;
	case LORA__MUTATION__OP_SET_PROPERTY:
		node =
		    m->set_property->entity == LORA__ENTITY_KIND__ENTITY_NODE;
		*id = m->set_property->id;
		break;
	case LORA__MUTATION__OP_REMOVE_PROPERTY:
		node = m->remove_property->entity ==
		       LORA__ENTITY_KIND__ENTITY_NODE;
		*id = m->remove_property->id;
		break;
	case LORA__MUTATION__OP_ADD_LABEL:
		*id = m->add_label->node_id;
		break;
	case LORA__MUTATION__OP_REMOVE_VECTOR:
		node =
		    m->remove_vector->entity == LORA__ENTITY_KIND__ENTITY_NODE;
		*id = m->remove_vector->owner_id;
		break;
	default:
		return 0;
	}
	return node;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int apply_has_constraints(struct apply_ctx *c)
{
	const struct sto_catalog *k = catalog(c);
	for (size_t i = 0; i < k->n; i++)
		if (is_constraint(k->defs[i]))
			return 1;
	return 0;
}

int apply_constraints_check(struct apply_ctx *c,
                            const Lora__MutationBatch *batch)
{
	if (!apply_has_constraints(c))
		return 0;
	uint64_t *ids =
	    lora_malloc(sizeof(uint64_t) * (batch->n_mutations + 1));
	if (!ids)
		return LORA_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < batch->n_mutations; i++)
		if (touched(batch->mutations[i], &ids[n]))
			n++;
	qsort(ids, n, sizeof *ids, cmp_u64);
	struct sto_rec r = {0};
	int rv = 0;
	for (size_t i = 0; !rv && i < n; i++)
		if (i == 0 || ids[i] != ids[i - 1])
			rv = check_node(c, ids[i], NULL, &r);
	sto_rec_free(&r);
	lora_free(ids);
	return rv;
}
