/* test_storage.c - the state store: key encoding, apply and read back,
 * rejection, indexes, adjacency, counts, checkpoints and the digest. */
#include <check.h>
#include <math.h>

#include "stoInt.h"
#include "sto_fixture.h"
#include "sto_testing.h"

#define NODE LORA__ENTITY_KIND__ENTITY_NODE
#define EDGE LORA__ENTITY_KIND__ENTITY_EDGE

static void digest(char out[STO_DIGEST_HEX_BYTES])
{
	char msg[LORA_ERRMSG_BYTES] = "";
	ck_assert_int_eq(sto_digest(st, out, msg), 0);
}

static Lora__NodeValue *get_node(uint64_t id)
{
	struct sto_view *v;
	Lora__NodeValue *n = NULL;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	int rv = sto_view_node(v, id, &n);
	sto_view_close(v);
	return rv ? NULL : n;
}

static void free_node(Lora__NodeValue *n)
{
	lora__node_value__free_unpacked(n, &lora_pb_allocator);
}

static int has_label(const Lora__NodeValue *n, const char *l)
{
	for (size_t i = 0; i < n->n_labels; i++)
		if (!strcmp(n->labels[i], l))
			return 1;
	return 0;
}

/* Collects up to 64 item ids of an iterator (node_id, or edge_id). */
static size_t drain(struct sto_iter *it, uint64_t *ids, int edge_ids)
{
	size_t n = 0;
	int done = 0;
	struct sto_item item;
	while (n < 64) {
		ck_assert_int_eq(sto_iter_next(it, &item, &done), 0);
		if (done)
			break;
		ids[n++] = edge_ids ? item.edge_id : item.node_id;
	}
	sto_iter_free(it);
	return n;
}

/* ---- key encoding ----------------------------------------------------------
 */

static void enc(struct lora_buf *b, Lora__Value *v)
{
	lora_buf_reset(b);
	ck_assert_int_eq(sto_enc_value(b, v), 0);
	lora__value__free_unpacked(v, &lora_pb_allocator);
}

static int cmp_bufs(const struct lora_buf *a, const struct lora_buf *b)
{
	size_t m = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->data, b->data, m);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* A RocksDB error met by a read that returns only a code keeps its text
 * for whoever reports it, once, and only under the code it became. */
START_TEST(rocksdb_error_text_is_kept)
{
	char *rerr = strdup("Corruption: block checksum mismatch");
	ck_assert_int_eq(sto_rocks_err(rerr, NULL, "read node"), LORA_ECORRUPT);
	ck_assert_str_eq(sto_last_error(LORA_EIO), "");
	rerr = strdup("IO error: No space left on device");
	char msg[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(sto_rocks_err(rerr, msg, "write"), LORA_ENOSPC);
	ck_assert_str_eq(msg, "write: IO error: No space left on device");
	/* the caller got the text: none left for a later, unrelated error */
	ck_assert_str_eq(sto_last_error(LORA_ENOSPC), "");
	rerr = strdup("IO error: No space left on device");
	ck_assert_int_eq(sto_rocks_err(rerr, NULL, "read"), LORA_ENOSPC);
	ck_assert_str_eq(sto_last_error(LORA_ENOSPC),
	                 "read: IO error: No space left on device");
	ck_assert_str_eq(sto_last_error(LORA_ENOSPC), ""); /* taken */
}
END_TEST

START_TEST(value_encoding_orders_like_cypher)
{
	Lora__Value *vals[] = {
	    v_bool(0),
	    v_bool(1),
	    v_float(-INFINITY),
	    v_int(INT64_MIN),
	    v_float(-1.5),
	    v_int(-1),
	    v_int(0),
	    v_float(0.5),
	    v_int(1),
	    v_float(1.5),
	    v_int(9007199254740992LL),
	    v_int(9007199254740993LL),
	    v_int(INT64_MAX),
	    v_float(1e300),
	    v_float(INFINITY),
	    v_float(NAN),
	    v_str(""),
	    v_str("a"),
	    v_str("a\x01"),
	    v_str("ab"),
	    v_str("b"),
	};
	size_t n = sizeof(vals) / sizeof(vals[0]);
	struct lora_buf prev = {0}, cur = {0};
	for (size_t i = 0; i < n; i++) {
		enc(&cur, vals[i]);
		if (i)
			ck_assert_msg(cmp_bufs(&prev, &cur) < 0,
			              "value %zu does not sort after %zu", i,
			              i - 1);
		lora_buf_reset(&prev);
		lora_buf_append(&prev, cur.data, cur.len);
	}
	/* 1 and 1.0 are the same number; -0.0 equals 0. */
	enc(&prev, v_int(1));
	enc(&cur, v_float(1.0));
	ck_assert_int_eq(cmp_bufs(&prev, &cur), 0);
	enc(&prev, v_int(0));
	enc(&cur, v_float(-0.0));
	ck_assert_int_eq(cmp_bufs(&prev, &cur), 0);
	/* Values of different types never compare equal. */
	enc(&prev, v_int(1));
	enc(&cur, v_bool(1));
	ck_assert_int_ne(cmp_bufs(&prev, &cur), 0);
	/* Maps and nulls cannot be indexed. */
	Lora__Value *nul = v_null();
	ck_assert_int_eq(sto_enc_value(&cur, nul), LORA_EINVAL);
	lora__value__free_unpacked(nul, &lora_pb_allocator);
	lora_buf_free(&prev);
	lora_buf_free(&cur);
}
END_TEST

START_TEST(keys_and_records_round_trip)
{
	uint8_t a[STO_ADJ_KEY_BYTES], b[STO_ADJ_KEY_BYTES];
	sto_key_adj(a, 300, STO_K_OUT, 7);
	sto_key_adj(b, 0x100000000ULL, STO_K_IN, 0);
	ck_assert_int_lt(memcmp(a, b, sizeof(a)), 0); /* node first */
	sto_key_adj(b, 300, STO_K_OUT, 0x100);
	ck_assert_int_lt(memcmp(a, b, sizeof(a)), 0); /* then chunk */
	ck_assert_uint_eq(lora_get_be64(a), 300);
	ck_assert_uint_eq(a[8], STO_K_OUT);
	ck_assert_uint_eq(lora_get_be32(a + 9), 7);

	struct lora_buf buf = {0};
	uint64_t xs[] = {0, 1, 127, 128, 300, UINT32_MAX, UINT64_MAX};
	for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
		uint64_t y;
		lora_buf_reset(&buf);
		sto_put_uvarint(&buf, xs[i]);
		ck_assert_uint_eq(sto_get_uvarint((uint8_t *)buf.data,
		                                  (uint8_t *)buf.data + buf.len,
		                                  &y),
		                  buf.len);
		ck_assert_uint_eq(y, xs[i]);
	}
	struct sto_rec r = {0}, d = {0};
	sto_rec_add_label(&r, 3);
	sto_rec_add_label(&r, 70000);
	sto_rec_set_prop(&r, 5, "hello", 5);
	sto_rec_set_prop(&r, 9, "xy", 2);
	sto_rec_set_prop(&r, 5, "bye", 3);
	r.nvec = 2;
	ck_assert_int_eq(sto_rec_encode(&r, 0, &buf), 0);
	ck_assert_int_eq(sto_rec_decode(&d, 0, (uint8_t *)buf.data, buf.len),
	                 0);
	ck_assert_uint_eq(d.nlabels, 2);
	ck_assert_uint_eq(d.labels[1], 70000);
	ck_assert_uint_eq(d.nprops, 2);
	ck_assert_uint_eq(d.nvec, 2);
	int i = sto_rec_find_prop(&d, 5);
	ck_assert_int_ge(i, 0);
	ck_assert_int_eq(memcmp(d.data.data + d.props[i].off, "bye", 3), 0);
	/* Every truncation of a valid record is detected. */
	for (size_t cut = 0; cut < buf.len; cut++)
		ck_assert_int_eq(
		    sto_rec_decode(&d, 0, (uint8_t *)buf.data, cut),
		    LORA_ECORRUPT);
	ck_assert_int_eq(sto_rec_decode(&d, 1, (uint8_t *)buf.data, buf.len),
	                 LORA_ECORRUPT); /* a node record is no edge */
	sto_rec_free(&r);
	sto_rec_free(&d);
	lora_buf_free(&buf);
}
END_TEST

/* ---- apply and read back
 * ------------------------------------------------------- */

/* Existence and type constraints at apply: a violating batch is rejected
 * whole (the index moves on, nothing it did is kept), judged by the
 * batch's end state; a constraint that existing nodes break is refused. */
START_TEST(apply_enforces_existence_and_type_constraints)
{
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "E", 1, "name", v_str("a"));
	add_create_node(b, 2, "E", 0);
	ck_assert_int_eq(apply(b), 0);
	b = batch_new();
	add_create_index(b, "e_name", LORA__INDEX_KIND__INDEX_EXISTS, "E",
	                 "name", 0);
	ck_assert_int_eq(apply(b), LORA_ECONSTRAINT); /* node 2 breaks it */
	b = batch_new();
	add_set_prop(b, NODE, 2, "name", v_str("b"));
	add_create_index(b, "e_name", LORA__INDEX_KIND__INDEX_EXISTS, "E",
	                 "name", 0);
	ck_assert_int_eq(apply(b), 0);
	uint64_t before = sto_applied_index(st);
	b = batch_new();
	add_create_node(b, 3, "Other", 1, "name", v_str("c"));
	add_create_node(b, 4, "E", 0); /* no name: the batch goes */
	ck_assert_int_eq(apply(b), LORA_ECONSTRAINT);
	ck_assert_uint_eq(sto_applied_index(st), before + 1);
	ck_assert_ptr_null(get_node(3));
	struct sto_view *rv;
	int code = -1;
	ck_assert_int_eq(sto_view_open(st, &rv), 0);
	ck_assert_int_eq(sto_view_rejected(rv, before + 1, &code), 0);
	ck_assert_int_eq(code, LORA_ECONSTRAINT); /* recorded for readers */
	ck_assert_int_eq(sto_view_rejected(rv, before, &code), 0);
	ck_assert_int_eq(code, 0);
	sto_view_close(rv);
	b = batch_new();
	add_create_node(b, 4, "E", 0);
	add_set_prop(b, NODE, 4, "name", v_str("late")); /* the end state */
	ck_assert_int_eq(apply(b), 0);
	b = batch_new();
	add_remove_prop(b, NODE, 1, "name");
	ck_assert_int_eq(apply(b), LORA_ECONSTRAINT);
	b = batch_new();
	add_create_node(b, 5, "X", 0);
	add_label(b, 5, "E", 1); /* a label that needs the property */
	ck_assert_int_eq(apply(b), LORA_ECONSTRAINT);

	b = batch_new();
	add_create_index(b, "e_age", LORA__INDEX_KIND__INDEX_TYPE, "E", "age",
	                 0);
	b->mutations[0]->create_index->property_type = lora_strdup("INTEGER");
	ck_assert_int_eq(apply(b), 0);
	b = batch_new();
	add_set_prop(b, NODE, 1, "age", v_str("31"));
	ck_assert_int_eq(apply(b), LORA_ECONSTRAINT);
	b = batch_new();
	add_set_prop(b, NODE, 1, "age", v_int(31));
	ck_assert_int_eq(apply(b), 0);
	b = batch_new();
	add_create_index(b, "e_bad", LORA__INDEX_KIND__INDEX_TYPE, "E", "age",
	                 0);
	b->mutations[0]->create_index->property_type = lora_strdup("COLOUR");
	ck_assert_int_eq(apply(b), LORA_EINVAL);
}
END_TEST

/* A batch computed over an earlier entry (MutationBatch.after_index, an
 * IN TRANSACTIONS chunk proposed while the one before it commits) is
 * refused when that entry was, whatever it holds, and so is the next one
 * over it; over an entry that applied it applies. An after_index that is
 * not an earlier entry is refused. */
START_TEST(apply_refuses_batch_after_refused_entry)
{
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "A", 0);
	ck_assert_int_eq(apply(b), 0);
	uint64_t ok = sto_applied_index(st);
	b = batch_new();
	add_create_edge(b, 10, "R", 1, 99, 0); /* no node 99: refused */
	ck_assert_int_ne(apply(b), 0);
	uint64_t bad = sto_applied_index(st);
	ck_assert_uint_eq(bad, ok + 1);
	b = batch_new();
	add_create_node(b, 2, "A", 0); /* fine on its own */
	b->after_index = bad;
	ck_assert_int_eq(apply(b), LORA_EINVAL);
	ck_assert_ptr_null(get_node(2));
	b = batch_new();
	add_create_node(b, 3, "A", 0);
	b->after_index = bad + 1; /* over the one just refused */
	ck_assert_int_eq(apply(b), LORA_EINVAL);
	ck_assert_ptr_null(get_node(3));
	struct sto_view *v;
	int code = 0;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_rejected(v, bad + 2, &code), 0);
	ck_assert_int_eq(code, LORA_EINVAL);
	sto_view_close(v);
	b = batch_new();
	add_create_node(b, 4, "A", 0);
	b->after_index = ok; /* applied: no bar */
	ck_assert_int_eq(apply(b), 0);
	Lora__NodeValue *n4 = get_node(4);
	ck_assert_ptr_nonnull(n4);
	free_node(n4);
	b = batch_new();
	add_create_node(b, 5, "A", 0);
	b->after_index = sto_applied_index(st) + 1; /* itself */
	ck_assert_int_eq(apply(b), LORA_EINVAL);
	ck_assert_ptr_null(get_node(5));
	/* an entry whose bytes were refused before a batch was made (node
	 * apply's decode): recorded as well, so the chunk over it goes too */
	char msg[LORA_ERRMSG_BYTES] = "";
	uint64_t undecoded = sto_applied_index(st) + 1;
	ck_assert_int_eq(sto_apply_refused(st, undecoded, LORA_ECORRUPT, msg),
	                 LORA_ECORRUPT);
	ck_assert_uint_eq(sto_applied_index(st), undecoded);
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_rejected(v, undecoded, &code), 0);
	ck_assert_int_eq(code, LORA_ECORRUPT);
	sto_view_close(v);
	b = batch_new();
	add_create_node(b, 6, "A", 0);
	b->after_index = undecoded;
	ck_assert_int_eq(apply(b), LORA_EINVAL);
	ck_assert_ptr_null(get_node(6));
	/* a gap is refused as sto_apply refuses it */
	ck_assert_int_eq(sto_apply_refused(st, sto_applied_index(st) + 2,
	                                   LORA_ECORRUPT, msg),
	                 LORA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(msg, "are missing"));
}
END_TEST

/* Node keys at apply: every property present and the combination unique
 * among live nodes of the label, judged by the batch's end state (two
 * nodes of one batch collide too); a key that existing nodes break is
 * refused; its entries serve the first property's seeks. */
START_TEST(apply_enforces_node_key)
{
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "K", 2, "a", v_int(1), "b", v_str("x"));
	add_create_node(b, 2, "K", 2, "a", v_int(1), "b", v_str("x"));
	ck_assert_int_eq(apply(b), 0);
	b = batch_new();
	add_create_index(b, "k_ab", LORA__INDEX_KIND__INDEX_NODE_KEY, "K",
	                 "a,b", 0);
	ck_assert_int_eq(apply(b), LORA_ECONSTRAINT); /* 1 and 2 share it */
	b = batch_new();
	add_set_prop(b, NODE, 2, "b", v_str("y"));
	add_create_index(b, "k_ab", LORA__INDEX_KIND__INDEX_NODE_KEY, "K",
	                 "a,b", 0);
	ck_assert_int_eq(apply(b), 0);
	b = batch_new();
	add_create_node(b, 3, "K", 1, "a", v_int(2)); /* no b */
	ck_assert_int_eq(apply(b), LORA_ECONSTRAINT);
	ck_assert_ptr_null(get_node(3));
	b = batch_new();
	add_create_node(b, 3, "K", 2, "a", v_int(1), "b", v_str("y"));
	ck_assert_int_eq(apply(b), LORA_ECONSTRAINT); /* node 2's key */
	b = batch_new();
	add_create_node(b, 3, "K", 2, "a", v_int(1), "b", v_str("z"));
	add_create_node(b, 4, "K", 2, "a", v_int(1), "b", v_str("z"));
	ck_assert_int_eq(apply(b), LORA_ECONSTRAINT); /* within the batch */
	b = batch_new();
	add_create_node(b, 3, "K", 2, "a", v_int(1), "b", v_str("z"));
	add_set_prop(b, NODE, 2, "b", v_str("x")); /* moves onto node 1's */
	ck_assert_int_eq(apply(b), LORA_ECONSTRAINT);
	b = batch_new();
	add_set_prop(b, NODE, 1, "b", v_str("w")); /* frees (1, x) ... */
	add_set_prop(b, NODE, 2, "b", v_str("x")); /* ... for node 2 */
	ck_assert_int_eq(apply(b), 0);
	b = batch_new();
	add_remove_prop(b, NODE, 1, "a");
	ck_assert_int_eq(apply(b), LORA_ECONSTRAINT);
	b = batch_new();
	add_create_node(b, 5, "X", 1, "a", v_int(1)); /* another label */
	add_delete_node(b, 2, 0); /* and (1, x) is free again */
	add_create_node(b, 6, "K", 2, "a", v_int(1), "b", v_str("x"));
	ck_assert_int_eq(apply(b), 0);
	b = batch_new();
	add_drop_index(b, "k_ab", 0);
	ck_assert_int_eq(apply(b), 0);
	b = batch_new();
	add_create_node(b, 7, "K", 1, "a", v_int(9));
	ck_assert_int_eq(apply(b), 0); /* dropped: no check */
}
END_TEST

/* A node key's check looks up the whole combination: with a first
 * property all 3,000 nodes share, checking one new node examines a few
 * index entries (the join of the two properties' lists), not the 3,000
 * nodes that share the first value; creating the key over them is linear
 * in the nodes; a duplicate is still found. */
START_TEST(node_key_check_cost)
{
	enum { N = 3000 };
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= N; i++)
		add_create_node(b, i, "K", 2, "a", v_int(1), "b",
		                v_int((int64_t)i));
	ck_assert_int_eq(apply(b), 0);
	uint64_t e0 = sto_testing_node_key_seeks();
	b = batch_new();
	add_create_index(b, "k_ab", LORA__INDEX_KIND__INDEX_NODE_KEY, "K",
	                 "a,b", 0);
	ck_assert_int_eq(apply(b), 0);
	uint64_t build = sto_testing_node_key_seeks() - e0;
	ck_assert_msg(build <= 8 * N, "creating the key examined %llu entries",
	              (unsigned long long)build);
	e0 = sto_testing_node_key_seeks();
	b = batch_new();
	add_create_node(b, N + 1, "K", 2, "a", v_int(1), "b", v_int(N + 1));
	ck_assert_int_eq(apply(b), 0);
	uint64_t one = sto_testing_node_key_seeks() - e0;
	ck_assert_msg(one >= 1 && one <= 16, "one check examined %llu entries",
	              (unsigned long long)one);
	b = batch_new();
	add_create_node(b, N + 2, "K", 2, "a", v_int(1), "b", v_int(17));
	ck_assert_int_eq(apply(b), LORA_ECONSTRAINT);
}
END_TEST

START_TEST(apply_every_mutation_kind)
{
	float xs[3] = {1, 2, 3}, ys[2] = {4, 5};
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "Person,Admin", 2, "name", v_str("ada"), "age",
	                v_int(36));
	add_create_node(b, 2, "Person", 1, "emb", v_vec(3, xs));
	add_create_edge(b, 10, "KNOWS", 1, 2, 1, "since", v_int(1999));
	add_set_prop(b, NODE, 2, "name", v_str("bob"));
	add_set_prop(b, EDGE, 10, "w", v_float(0.5));
	add_label(b, 2, "Admin", 1);
	add_label(b, 1, "Admin", 0);
	add_set_vector(b, NODE, 1, "emb", vec_f32(2, ys));
	add_remove_prop(b, NODE, 1, "age");
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(sto_applied_index(st), 1);

	Lora__NodeValue *n = get_node(1);
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->n_labels, 1);
	ck_assert(has_label(n, "Person"));
	ck_assert_str_eq(node_prop(n, "name")->string_value, "ada");
	ck_assert_ptr_null(node_prop(n, "age"));
	const Lora__Value *e = node_prop(n, "emb");
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->kind_case, LORA__VALUE__KIND_VECTOR_VALUE);
	ck_assert_int_eq(e->vector_value->dimension, 2);
	free_node(n);
	n = get_node(2);
	ck_assert(has_label(n, "Admin") && has_label(n, "Person"));
	ck_assert_str_eq(node_prop(n, "name")->string_value, "bob");
	ck_assert_int_eq(node_prop(n, "emb")->vector_value->dimension, 3);
	free_node(n);

	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	Lora__RelValue *r;
	ck_assert_int_eq(sto_view_edge(v, 10, &r), 0);
	ck_assert_str_eq(r->type, "KNOWS");
	ck_assert_uint_eq(r->start_id, 1);
	ck_assert_uint_eq(r->end_id, 2);
	ck_assert_uint_eq(r->n_properties, 2);
	lora__rel_value__free_unpacked(r, &lora_pb_allocator);
	Lora__Vector *vec;
	ck_assert_int_eq(sto_view_vector(v, NODE, 2, "emb", &vec), 0);
	ck_assert(vec->f32[2] == 3.0f);
	lora__vector__free_unpacked(vec, &lora_pb_allocator);
	uint64_t nn, ne, c;
	ck_assert_int_eq(sto_view_next_ids(v, &nn, &ne), 0);
	ck_assert_uint_eq(nn, 3);
	ck_assert_uint_eq(ne, 11);
	ck_assert_int_eq(sto_view_count_nodes(v, "Admin", &c), 0);
	ck_assert_uint_eq(c, 1);
	ck_assert_int_eq(sto_view_count_nodes(v, NULL, &c), 0);
	ck_assert_uint_eq(c, 2);
	ck_assert_int_eq(sto_view_count_edges(v, "KNOWS", &c), 0);
	ck_assert_uint_eq(c, 1);
	char **names;
	size_t nnames;
	ck_assert_int_eq(sto_view_names(v, 2, &names, &nnames), 0);
	ck_assert_uint_eq(nnames, 5); /* age emb name since w */
	ck_assert_str_eq(names[0], "age");
	sto_names_free(names, nnames);
	sto_view_close(v);

	/* Remove vector, delete edge, delete node. */
	b = batch_new();
	add_remove_vector(b, NODE, 2, "emb");
	add_set_prop(b, NODE, 2, "name", v_null()); /* null removes */
	add_delete_edge(b, 10);
	add_delete_node(b, 1, 0);
	ck_assert_int_eq(apply(b), 0);
	ck_assert_ptr_null(get_node(1));
	n = get_node(2);
	ck_assert_uint_eq(n->n_properties, 0);
	free_node(n);
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_edge(v, 10, &r), LORA_ENOTFOUND);
	ck_assert_int_eq(sto_view_count_edges(v, NULL, &c), 0);
	ck_assert_uint_eq(c, 0);
	ck_assert_int_eq(sto_view_names(v, 1, &names, &nnames), 0);
	ck_assert_uint_eq(nnames, 0); /* KNOWS no longer in use */
	sto_names_free(names, nnames);
	sto_view_close(v);
}
END_TEST

START_TEST(node_without_vectors)
{
	float xs[3] = {1, 2, 3};
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "Doc", 2, "name", v_str("a"), "emb",
	                v_vec(3, xs));
	add_create_node(b, 2, "Doc", 1, "name", v_str("b"));
	ck_assert_int_eq(apply(b), 0);
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	Lora__NodeValue *n = NULL;
	uint32_t nvec = 99;
	ck_assert_int_eq(sto_view_node_ex(v, 1, STO_NODE_NO_VECTORS, &n, &nvec),
	                 0);
	ck_assert_uint_eq(nvec, 1);
	ck_assert(has_label(n, "Doc"));
	ck_assert_uint_eq(n->n_properties, 1);
	ck_assert_str_eq(node_prop(n, "name")->string_value, "a");
	ck_assert_ptr_null(node_prop(n, "emb"));
	free_node(n);
	ck_assert_int_eq(sto_view_node_ex(v, 1, 0, &n, NULL), 0);
	ck_assert_uint_eq(n->n_properties, 2);
	ck_assert_int_eq(node_prop(n, "emb")->vector_value->dimension, 3);
	free_node(n);
	ck_assert_int_eq(sto_view_node_ex(v, 2, STO_NODE_NO_VECTORS, &n, &nvec),
	                 0);
	ck_assert_uint_eq(nvec, 0);
	ck_assert_uint_eq(n->n_properties, 1);
	free_node(n);
	n = NULL;
	ck_assert_int_eq(sto_view_node_ex(v, 3, STO_NODE_NO_VECTORS, &n, &nvec),
	                 LORA_ENOTFOUND);
	ck_assert_ptr_null(n);
	sto_view_close(v);
}
END_TEST

START_TEST(batch_sees_its_own_mutations)
{
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "A", 0);
	add_set_prop(b, NODE, 1, "x", v_int(1));
	add_create_node(b, 2, "", 0);
	add_create_edge(b, 1, "R", 1, 2, 0);
	add_create_edge(b, 2, "R", 2, 2, 0); /* self loop */
	add_delete_node(b, 2, 1);            /* detach: both edges go */
	add_create_node(b, 3, "A", 0);
	add_create_edge(b, 3, "R", 1, 3, 0);
	ck_assert_int_eq(apply(b), 0);
	Lora__NodeValue *n = get_node(1);
	ck_assert_int_eq(node_prop(n, "x")->int_value, 1);
	free_node(n);
	ck_assert_ptr_null(get_node(2));
	struct sto_view *v;
	uint64_t c, ids[64];
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_count_edges(v, "R", &c), 0);
	ck_assert_uint_eq(c, 1);
	struct sto_iter *it;
	ck_assert_int_eq(sto_view_scan_edges(v, &it), 0);
	ck_assert_uint_eq(drain(it, ids, 1), 1);
	ck_assert_uint_eq(ids[0], 3);
	sto_view_close(v);
}
END_TEST

START_TEST(reapply_is_idempotent)
{
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	char msg[LORA_ERRMSG_BYTES];
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "A", 1, "x", v_int(1));
	Lora__MutationBatch *empty = batch_new();
	for (uint64_t i = 1; i <= 4; i++)
		ck_assert_int_eq(sto_apply(st, i, empty, msg), 0);
	batch_free(empty);
	ck_assert_int_eq(sto_apply(st, 5, b, msg), 0);
	digest(d1);
	/* Same index again, and an older one: nothing happens. */
	ck_assert_int_eq(sto_apply(st, 5, b, msg), 0);
	ck_assert_int_eq(sto_apply(st, 3, b, msg), 0);
	batch_free(b);
	digest(d2);
	ck_assert_str_eq(d1, d2);
	ck_assert_uint_eq(sto_applied_index(st), 5);
}
END_TEST

/* A state behind its log must not be patched over: entry 7 on a store at
 * 5 is refused, nothing is written, and 6 then 7 still apply. */
START_TEST(apply_refuses_an_index_gap)
{
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	char msg[LORA_ERRMSG_BYTES];
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= 5; i++)
		ck_assert_int_eq(sto_apply(st, i, b, msg), 0);
	digest(d1);
	add_create_node(b, 1, "A", 0);
	ck_assert_int_eq(sto_apply(st, 7, b, msg), LORA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(msg, "entries 6..6 are missing"));
	ck_assert_uint_eq(sto_applied_index(st), 5);
	digest(d2);
	ck_assert_str_eq(d1, d2);
	Lora__MutationBatch *empty = batch_new();
	ck_assert_int_eq(sto_apply(st, 6, empty, msg), 0);
	batch_free(empty);
	ck_assert_int_eq(sto_apply(st, 7, b, msg), 0);
	batch_free(b);
	ck_assert_uint_eq(sto_applied_index(st), 7);
}
END_TEST

/* Applies b, expects error `code`, and checks the graph did not change
 * while the applied index moved on. */
static void expect_rejected(Lora__MutationBatch *b, int code)
{
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	digest(d1);
	uint64_t before = sto_applied_index(st);
	ck_assert_int_eq(apply(b), code);
	ck_assert_uint_eq(sto_applied_index(st), before + 1);
	digest(d2);
	ck_assert_str_eq(d1, d2);
}

START_TEST(rejected_batches_leave_no_trace)
{
	float bad[1] = {1};
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "A", 1, "k", v_int(1));
	add_create_node(b, 2, "A", 1, "k", v_int(2));
	add_create_edge(b, 1, "R", 1, 2, 0);
	add_create_index(b, "uk", LORA__INDEX_KIND__INDEX_UNIQUE, "A", "k", 0);
	ck_assert_int_eq(apply(b), 0);

	b = batch_new(); /* edge to a missing node */
	add_create_node(b, 3, "NewLabel", 1, "newkey", v_int(1));
	add_create_edge(b, 2, "NEWTYPE", 1, 99, 0);
	expect_rejected(b, LORA_ENOTFOUND);
	b = batch_new(); /* node still has edges */
	add_set_prop(b, NODE, 1, "k", v_int(5));
	add_delete_node(b, 1, 0);
	expect_rejected(b, LORA_ECONSTRAINT);
	b = batch_new(); /* id already used */
	add_create_node(b, 2, "", 0);
	expect_rejected(b, LORA_EEXIST);
	b = batch_new(); /* unique constraint */
	add_create_node(b, 4, "A", 1, "k", v_int(2));
	expect_rejected(b, LORA_ECONSTRAINT);
	b = batch_new(); /* unique via a new label */
	add_create_node(b, 5, "B", 1, "k", v_float(1.0));
	add_label(b, 5, "A", 1);
	expect_rejected(b, LORA_ECONSTRAINT);
	b = batch_new(); /* bad vector */
	Lora__Vector *vec = vec_f32(1, bad);
	vec->dimension = 2;
	add_set_vector(b, NODE, 1, "v", vec);
	expect_rejected(b, LORA_EVECTOR);
	b = batch_new(); /* duplicate index name */
	add_create_index(b, "uk", LORA__INDEX_KIND__INDEX_RANGE, "A", "z", 0);
	expect_rejected(b, LORA_EEXIST);
	b = batch_new(); /* unknown property owner */
	add_set_prop(b, EDGE, 77, "k", v_int(1));
	expect_rejected(b, LORA_ENOTFOUND);

	/* Names of rejected batches never appear. */
	struct sto_view *v;
	char **names;
	size_t n;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_names(v, 0, &names, &n), 0);
	ck_assert_uint_eq(n, 1);
	sto_names_free(names, n);
	ck_assert_int_eq(sto_view_names(v, 2, &names, &n), 0);
	ck_assert_uint_eq(n, 1);
	sto_names_free(names, n);
	sto_view_close(v);
	/* And the store still works: the same ids can be used now. */
	b = batch_new();
	add_create_node(b, 3, "NewLabel", 1, "newkey", v_int(1));
	add_create_edge(b, 2, "NEWTYPE", 1, 3, 0);
	ck_assert_int_eq(apply(b), 0);
	/* Counts (which the apply path caches) saw no rejected batch. */
	uint64_t c;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_count_nodes(v, NULL, &c), 0);
	ck_assert_uint_eq(c, 3);
	ck_assert_int_eq(sto_view_count_nodes(v, "A", &c), 0);
	ck_assert_uint_eq(c, 2);
	ck_assert_int_eq(sto_view_count_nodes(v, "NewLabel", &c), 0);
	ck_assert_uint_eq(c, 1);
	ck_assert_int_eq(sto_view_count_nodes(v, "B", &c), 0);
	ck_assert_uint_eq(c, 0);
	ck_assert_int_eq(sto_view_count_edges(v, NULL, &c), 0);
	ck_assert_uint_eq(c, 2);
	ck_assert_int_eq(sto_view_count_edges(v, "NEWTYPE", &c), 0);
	ck_assert_uint_eq(c, 1);
	sto_view_close(v);
}
END_TEST

/* 1 inside depth lists, lora_malloc'd like the batch it goes into. */
static Lora__Value *v_nested(int depth)
{
	Lora__Value *v = v_int(1);
	for (int i = 0; i < depth; i++) {
		Lora__Value *l = v_new();
		l->kind_case = LORA__VALUE__KIND_LIST_VALUE;
		l->list_value = lora_malloc(sizeof *l->list_value);
		lora__value_list__init(l->list_value);
		l->list_value->items = lora_malloc(sizeof(Lora__Value *));
		l->list_value->items[0] = v;
		l->list_value->n_items = 1;
		v = l;
	}
	return v;
}

/* A batch from an older or buggy leader whose value nests past the limit
 * is rejected whole, the same way on every replica: its index is taken,
 * nothing is written, and the next batch applies. */
START_TEST(too_deep_property_values_are_rejected)
{
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "A", 1, "p", v_nested(LORA_VALUE_DEPTH_MAX));
	add_create_node(b, 2, "A", 0);
	ck_assert_int_eq(apply(b), 0);
	Lora__NodeValue *n = get_node(1);
	ck_assert_ptr_nonnull(n);
	ck_assert_uint_eq(n->n_properties, 1);
	ck_assert_int_eq(lora_value_depth(n->properties[0]->value, 64), 64);
	free_node(n);

	b = batch_new();
	add_create_node(b, 3, "A", 1, "p", v_nested(LORA_VALUE_DEPTH_MAX + 1));
	expect_rejected(b, LORA_ELIMIT);
	b = batch_new();
	add_set_prop(b, NODE, 2, "p", v_nested(LORA_VALUE_DEPTH_MAX + 1));
	expect_rejected(b, LORA_ELIMIT);
	b = batch_new();
	add_create_edge(b, 1, "R", 1, 2, 1, "p",
	                v_nested(LORA_VALUE_DEPTH_MAX + 1));
	expect_rejected(b, LORA_ELIMIT);
	ck_assert_ptr_null(get_node(3));

	b = batch_new();
	add_create_node(b, 3, "A", 1, "p", v_nested(2));
	ck_assert_int_eq(apply(b), 0);
	n = get_node(3);
	ck_assert_ptr_nonnull(n);
	free_node(n);
}
END_TEST

/* ---- indexes
 * ------------------------------------------------------------------------- */

static size_t seek(const char *label, const char *key, Lora__Value *lo,
                   int lo_incl, Lora__Value *hi, int hi_incl, uint64_t *ids,
                   int *rv)
{
	struct sto_view *v;
	struct sto_iter *it;
	size_t n = 0;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	*rv = sto_view_index_seek(v, label, key, lo, lo_incl, hi, hi_incl, &it);
	if (!*rv)
		n = drain(it, ids, 0);
	sto_view_close(v);
	if (lo)
		lora__value__free_unpacked(lo, &lora_pb_allocator);
	if (hi)
		lora__value__free_unpacked(hi, &lora_pb_allocator);
	return n;
}

/* ids of the nodes with label.key = v in view (an equality seek) */
static size_t seek_in(struct sto_view *v, const char *label, const char *key,
                      int64_t x, uint64_t *ids)
{
	Lora__Value *val = v_int(x);
	struct sto_iter *it;
	ck_assert_int_eq(
	    sto_view_index_seek(v, label, key, val, 1, val, 1, &it), 0);
	lora__value__free_unpacked(val, &lora_pb_allocator);
	return drain(it, ids, 0);
}

/* Seeks of one view reuse one iterator (iter.c seek_take): each finds
 * what a fresh iterator would, whatever the seek before it was (another
 * value, another index, a seek still open beside it, one given up
 * half-way), and a view sees its snapshot only: a batch applied meanwhile
 * shows in the next view, never in the reused iterator. */
START_TEST(index_seeks_share_one_iterator)
{
	Lora__MutationBatch *b = batch_new();
	add_create_index(b, "p_age", LORA__INDEX_KIND__INDEX_RANGE, "P", "age",
	                 0);
	add_create_index(b, "q_x", LORA__INDEX_KIND__INDEX_RANGE, "Q", "x", 0);
	for (int i = 1; i <= 3; i++)
		add_create_node(b, (uint64_t)i, "P", 1, "age", v_int(10 * i));
	add_create_node(b, 9, "Q", 1, "x", v_int(20));
	ck_assert_int_eq(apply(b), 0);
	struct sto_view *v, *v2;
	uint64_t ids[64], more[64];
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_uint_eq(seek_in(v, "P", "age", 20, ids), 1);
	ck_assert_uint_eq(ids[0], 2);
	ck_assert_uint_eq(seek_in(v, "P", "age", 10, ids), 1);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(seek_in(v, "Q", "x", 20, ids), 1);
	ck_assert_uint_eq(ids[0], 9);
	ck_assert_uint_eq(seek_in(v, "P", "age", 40, ids), 0);
	/* two open at once: the second has its own iterator */
	Lora__Value *lo = v_int(0), *hi = v_int(100);
	struct sto_iter *all, *half;
	ck_assert_int_eq(sto_view_index_seek(v, "P", "age", lo, 1, hi, 1, &all),
	                 0);
	ck_assert_uint_eq(seek_in(v, "P", "age", 30, more), 1);
	ck_assert_uint_eq(more[0], 3);
	ck_assert_uint_eq(drain(all, ids, 0), 3);
	/* one given up after its first hit */
	struct sto_item item;
	int done;
	ck_assert_int_eq(
	    sto_view_index_seek(v, "P", "age", lo, 1, hi, 1, &half), 0);
	ck_assert_int_eq(sto_iter_next(half, &item, &done), 0);
	ck_assert(!done);
	sto_iter_free(half);
	ck_assert_uint_eq(seek_in(v, "P", "age", 30, ids), 1);
	ck_assert_uint_eq(ids[0], 3);
	lora__value__free_unpacked(lo, &lora_pb_allocator);
	lora__value__free_unpacked(hi, &lora_pb_allocator);

	/* applied while v is open: v keeps its snapshot, v2 sees it */
	b = batch_new();
	add_create_node(b, 4, "P", 1, "age", v_int(20));
	add_set_prop(b, NODE, 1, "age", v_int(20));
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(seek_in(v, "P", "age", 20, ids), 1);
	ck_assert_uint_eq(ids[0], 2);
	ck_assert_uint_eq(seek_in(v, "P", "age", 10, ids), 1);
	ck_assert_int_eq(sto_view_open(st, &v2), 0);
	ck_assert_uint_eq(seek_in(v2, "P", "age", 20, ids), 3);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 2);
	ck_assert_uint_eq(ids[2], 4);
	ck_assert_uint_eq(seek_in(v2, "P", "age", 10, ids), 0);
	sto_view_close(v2);
	sto_view_close(v);
}
END_TEST

START_TEST(index_seek_and_label_scan)
{
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "P", 1, "age", v_int(10));
	add_create_node(b, 2, "P", 1, "age", v_float(10.0));
	add_create_node(b, 3, "P", 1, "age", v_float(12.5));
	add_create_node(b, 4, "P", 1, "age", v_str("old"));
	add_create_node(b, 5, "Q", 1, "age", v_int(11));
	add_create_node(b, 6, "P", 0);
	ck_assert_int_eq(apply(b), 0);
	uint64_t ids[64];
	int rv;
	seek("P", "age", v_int(10), 1, v_int(10), 1, ids, &rv);
	ck_assert_int_eq(rv, LORA_ENOTFOUND); /* no index yet */

	b = batch_new(); /* backfills existing nodes */
	add_create_index(b, "p_age", LORA__INDEX_KIND__INDEX_RANGE, "P", "age",
	                 0);
	add_create_node(b, 7, "P", 1, "age", v_int(20));
	add_set_prop(b, NODE, 3, "age", v_int(13));
	add_label(b, 5, "P", 1);
	ck_assert_int_eq(apply(b), 0);

	size_t n = seek("P", "age", v_int(10), 1, v_int(10), 1, ids, &rv);
	ck_assert_int_eq(rv, 0);
	ck_assert_uint_eq(n, 2); /* 10 and 10.0 */
	n = seek("P", "age", v_float(10.0), 0, NULL, 0, ids, &rv);
	ck_assert_uint_eq(n, 3); /* 11, 13, 20: numbers only */
	ck_assert_uint_eq(ids[0], 5);
	ck_assert_uint_eq(ids[1], 3);
	ck_assert_uint_eq(ids[2], 7);
	n = seek("P", "age", NULL, 0, v_int(13), 0, ids, &rv);
	ck_assert_uint_eq(n, 3); /* 10, 10.0, 11 */
	n = seek("P", "age", v_str("a"), 1, NULL, 0, ids, &rv);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(ids[0], 4);
	n = seek("P", "age", NULL, 0, NULL, 0, ids, &rv);
	ck_assert_uint_eq(n, 6);
	n = seek("P", "age", v_int(1), 1, v_str("z"), 1, ids, &rv);
	ck_assert_uint_eq(n, 0); /* bounds of two types: nothing */

	struct sto_view *v;
	struct sto_iter *it;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_scan_label(v, "P", &it), 0);
	ck_assert_uint_eq(drain(it, ids, 0), 7);
	ck_assert_int_eq(sto_view_scan_label(v, "Nope", &it), 0);
	ck_assert_uint_eq(drain(it, ids, 0), 0);
	ck_assert_int_eq(sto_view_scan_nodes(v, &it), 0);
	ck_assert_uint_eq(drain(it, ids, 0), 7);
	Lora__CreateIndex **defs;
	size_t nd;
	ck_assert_int_eq(sto_view_indexes(v, &defs, &nd), 0);
	ck_assert_uint_eq(nd, 1);
	ck_assert_str_eq(defs[0]->name, "p_age");
	sto_indexes_free(defs, nd);
	sto_view_close(v);

	/* Removing a label or property removes the entries. */
	b = batch_new();
	add_label(b, 5, "P", 0);
	add_remove_prop(b, NODE, 7, "age");
	add_delete_node(b, 1, 0);
	ck_assert_int_eq(apply(b), 0);
	n = seek("P", "age", v_int(0), 1, v_int(100), 1, ids, &rv);
	ck_assert_uint_eq(n, 2);

	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	digest(d1);
	b = batch_new();
	add_drop_index(b, "p_age", 0);
	add_drop_index(b, "p_age", 1); /* if exists: fine */
	ck_assert_int_eq(apply(b), 0);
	seek("P", "age", v_int(0), 1, NULL, 0, ids, &rv);
	ck_assert_int_eq(rv, LORA_ENOTFOUND);
	b = batch_new(); /* recreating gives the same state again */
	add_create_index(b, "p_age", LORA__INDEX_KIND__INDEX_RANGE, "P", "age",
	                 0);
	add_create_index(b, "p_age2", LORA__INDEX_KIND__INDEX_RANGE, "P", "age",
	                 1); /* equivalent, if not exists: no-op */
	ck_assert_int_eq(apply(b), 0);
	digest(d2);
	ck_assert_str_eq(d1, d2);
}
END_TEST

START_TEST(unique_constraint_backfill_checks_duplicates)
{
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "U", 1, "e", v_str("x"));
	add_create_node(b, 2, "U", 1, "e", v_str("x"));
	ck_assert_int_eq(apply(b), 0);
	b = batch_new();
	add_create_index(b, "u_e", LORA__INDEX_KIND__INDEX_UNIQUE, "U", "e", 0);
	expect_rejected(b, LORA_ECONSTRAINT);
	b = batch_new();
	add_set_prop(b, NODE, 2, "e", v_str("y"));
	add_create_index(b, "u_e", LORA__INDEX_KIND__INDEX_UNIQUE, "U", "e", 0);
	add_set_prop(b, NODE, 1, "e", v_str("z")); /* own value may change */
	add_create_node(b, 3, "U", 1, "e", v_str("x"));
	ck_assert_int_eq(apply(b), 0);
}
END_TEST

/* ---- adjacency
 * ------------------------------------------------------------------------- */

static size_t adj(uint64_t node, enum sto_dir dir, const char *type,
                  uint64_t *ids, int *self_out)
{
	struct sto_view *v;
	struct sto_iter *it;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_scan_adjacent(v, node, dir, type, &it), 0);
	size_t n = 0;
	int done;
	struct sto_item item;
	*self_out = 0;
	while (!sto_iter_next(it, &item, &done) && !done) {
		ck_assert_uint_eq(item.node_id, node);
		if (item.other_id == node)
			(*self_out)++;
		ids[n++] = item.edge_id;
	}
	sto_iter_free(it);
	sto_view_close(v);
	return n;
}

START_TEST(adjacency_by_direction_and_type)
{
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= 4; i++)
		add_create_node(b, i, "N", 0);
	add_create_edge(b, 1, "A", 1, 2, 0);
	add_create_edge(b, 2, "B", 1, 3, 0);
	add_create_edge(b, 3, "A", 4, 1, 0);
	add_create_edge(b, 4, "A", 1, 1, 0); /* self loop */
	add_create_edge(b, 5, "A", 1, 2, 0); /* parallel edge */
	ck_assert_int_eq(apply(b), 0);
	uint64_t ids[64];
	int self;
	ck_assert_uint_eq(adj(1, STO_OUT, NULL, ids, &self), 4);
	ck_assert_int_eq(self, 1);
	ck_assert_uint_eq(adj(1, STO_IN, NULL, ids, &self), 2);
	ck_assert_uint_eq(adj(1, STO_BOTH, NULL, ids, &self), 6);
	ck_assert_int_eq(self, 2); /* a self-loop appears once per side */
	ck_assert_uint_eq(adj(1, STO_OUT, "A", ids, &self), 3);
	/* In insertion order (no deletions yet). */
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 4);
	ck_assert_uint_eq(ids[2], 5);
	ck_assert_uint_eq(adj(1, STO_OUT, "B", ids, &self), 1);
	ck_assert_uint_eq(adj(1, STO_OUT, "C", ids, &self), 0);
	ck_assert_uint_eq(adj(2, STO_OUT, NULL, ids, &self), 0);
	ck_assert_uint_eq(adj(2, STO_IN, "A", ids, &self), 2);

	b = batch_new();
	add_delete_node(b, 1, 1);
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(adj(2, STO_IN, NULL, ids, &self), 0);
	ck_assert_uint_eq(adj(4, STO_BOTH, NULL, ids, &self), 0);
	struct sto_view *v;
	uint64_t c;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_count_edges(v, NULL, &c), 0);
	ck_assert_uint_eq(c, 0);
	ck_assert_int_eq(sto_view_count_edges(v, "A", &c), 0);
	ck_assert_uint_eq(c, 0);
	ck_assert_int_eq(sto_view_count_nodes(v, "N", &c), 0);
	ck_assert_uint_eq(c, 3);
	sto_view_close(v);
}
END_TEST

START_TEST(vector_scans)
{
	float xs[2] = {1, 2};
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "V", 1, "e", v_vec(2, xs));
	add_create_node(b, 2, "W", 1, "e", v_vec(2, xs));
	add_create_node(b, 3, "V", 1, "e", v_int(3)); /* not a vector */
	ck_assert_int_eq(apply(b), 0);
	struct sto_view *v;
	struct sto_iter *it;
	uint64_t ids[64];
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_scan_vectors(v, "V", "e", &it), 0);
	ck_assert_uint_eq(drain(it, ids, 0), 1);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_int_eq(sto_view_scan_vectors(v, NULL, "e", &it), 0);
	ck_assert_uint_eq(drain(it, ids, 0), 2);
	sto_view_close(v);
	/* Setting a scalar over a vector replaces it. */
	b = batch_new();
	add_set_prop(b, NODE, 1, "e", v_int(1));
	ck_assert_int_eq(apply(b), 0);
	Lora__NodeValue *n = get_node(1);
	ck_assert_uint_eq(n->n_properties, 1);
	ck_assert_int_eq(node_prop(n, "e")->int_value, 1);
	free_node(n);
}
END_TEST

/* ---- snapshots, checkpoints, digest
 * ------------------------------------------------------ */

START_TEST(views_see_a_snapshot)
{
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "A", 0);
	ck_assert_int_eq(apply(b), 0);
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	b = batch_new();
	add_create_node(b, 2, "A", 0);
	add_delete_node(b, 1, 0);
	ck_assert_int_eq(apply(b), 0);
	int ex;
	ck_assert_int_eq(sto_view_node_exists(v, 1, &ex), 0);
	ck_assert_int_eq(ex, 1);
	ck_assert_int_eq(sto_view_node_exists(v, 2, &ex), 0);
	ck_assert_int_eq(ex, 0);
	ck_assert_uint_eq(sto_view_applied_index(v), 1);
	sto_view_close(v);
}
END_TEST

/* A node's labels checked in place (the query engine's label checks
 * past its cache's room): every label must be there; a label no node
 * has, and a node that is not there, answer no. */
START_TEST(node_has_labels_in_place)
{
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "A", 1, "x", v_str("y"));
	add_label(b, 1, "B", 1);
	add_create_node(b, 2, "B", 0);
	ck_assert_int_eq(apply(b), 0);
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	const char *ab[] = {"A", "B"}, *b_only[] = {"B"}, *ac[] = {"A", "C"};
	int has = -1;
	ck_assert_int_eq(sto_view_node_has_labels(v, 1, ab, 2, &has), 0);
	ck_assert_int_eq(has, 1);
	ck_assert_int_eq(sto_view_node_has_labels(v, 2, b_only, 1, &has), 0);
	ck_assert_int_eq(has, 1);
	ck_assert_int_eq(sto_view_node_has_labels(v, 2, ab, 2, &has), 0);
	ck_assert_int_eq(has, 0);
	ck_assert_int_eq(sto_view_node_has_labels(v, 1, ac, 2, &has), 0);
	ck_assert_int_eq(has, 0);
	ck_assert_int_eq(sto_view_node_has_labels(v, 2, NULL, 0, &has), 0);
	ck_assert_int_eq(has, 1);
	ck_assert_int_eq(sto_view_node_has_labels(v, 3, b_only, 1, &has),
	                 LORA_ENOTFOUND);
	ck_assert_int_eq(has, 0);
	sto_view_close(v);
}
END_TEST

START_TEST(checkpoint_opens_with_same_digest)
{
	char msg[LORA_ERRMSG_BYTES], p[512];
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "A", 1, "x", v_str("y"));
	add_create_node(b, 2, "B", 0);
	add_create_edge(b, 1, "R", 1, 2, 0);
	add_create_index(b, "i", LORA__INDEX_KIND__INDEX_RANGE, "A", "x", 0);
	ck_assert_int_eq(apply(b), 0);
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	digest(d1);
	uint64_t idx;
	ck_assert_int_eq(
	    sto_checkpoint(st, path_join(p, sizeof(p), dir, "cp"), &idx, msg),
	    0);
	ck_assert_uint_eq(idx, 1);
	/* The store moves on; the checkpoint does not. */
	b = batch_new();
	add_create_node(b, 3, "C", 0);
	ck_assert_int_eq(apply(b), 0);
	struct sto_store *cp;
	ck_assert_int_eq(sto_open(p, NULL, &cp, msg), 0);
	ck_assert_uint_eq(sto_applied_index(cp), 1);
	ck_assert_int_eq(sto_digest(cp, d2, msg), 0);
	ck_assert_str_eq(d1, d2);
	sto_close(cp);
	ck_assert_int_ne(sto_checkpoint(st, p, NULL, msg), 0); /* exists */
}
END_TEST

START_TEST(digest_ignores_history)
{
	char msg[LORA_ERRMSG_BYTES], p[512];
	/* Store 1 learns names in one order, store 2 in another and with
	 * detours; the graphs end up equal. */
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "X,Y", 2, "a", v_int(1), "b", v_int(2));
	ck_assert_int_eq(apply(b), 0);
	struct sto_store *s2;
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof(p), dir, "other"), NULL, &s2, msg), 0);
	b = batch_new();
	add_create_node(b, 9, "Z", 1, "zz", v_int(1));
	add_create_node(b, 1, "Y", 1, "b", v_int(2));
	add_label(b, 1, "X", 1);
	add_set_prop(b, NODE, 1, "a", v_int(1));
	add_delete_node(b, 9, 0);
	ck_assert_int_eq(sto_apply(s2, 1, b, msg), 0);
	batch_free(b);
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	digest(d1);
	ck_assert_int_eq(sto_digest(s2, d2, msg), 0);
	ck_assert_str_eq(d1, d2);
	b = batch_new();
	add_set_prop(b, NODE, 1, "a", v_int(2));
	ck_assert_int_eq(sto_apply(s2, 2, b, msg), 0);
	batch_free(b);
	ck_assert_int_eq(sto_digest(s2, d2, msg), 0);
	ck_assert_str_ne(d1, d2);
	sto_close(s2);
}
END_TEST

/* Relationship property index entries follow every write on apply (create,
 * set, remove, delete, a node's detach delete), are built over existing
 * relationships, and come back after a reopen. */
static size_t rseek(const char *type, const char *key, int64_t w, uint64_t *ids)
{
	struct sto_view *v;
	struct sto_iter *it;
	size_t n = 0;
	Lora__Value *x = v_int(w);
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_rel_index_seek(v, type, key, x, 1, x, 1, &it),
	                 0);
	n = drain(it, ids, 1);
	sto_view_close(v);
	lora__value__free_unpacked(x, &lora_pb_allocator);
	return n;
}

static void add_rel_index(Lora__MutationBatch *b, const char *name,
                          const char *type, const char *key)
{
	add_create_index(b, name, LORA__INDEX_KIND__INDEX_RANGE, type, key, 0);
	b->mutations[b->n_mutations - 1]->create_index->entity =
	    LORA__ENTITY_KIND__ENTITY_EDGE;
}

/* A relationship property index's backfill decodes only the records of
 * its type (300 of another type are passed over in place), and indexes
 * them all, those of the same batch included. */
START_TEST(rel_index_backfill_by_type)
{
	uint64_t ids[64];
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "A", 0);
	add_create_node(b, 2, "A", 0);
	for (uint64_t e = 1; e <= 300; e++)
		add_create_edge(b, e, "S", 1, 2, 1, "w", v_int(7));
	for (uint64_t e = 301; e <= 305; e++)
		add_create_edge(b, e, "R", 2, 1, 1, "w", v_int(7));
	ck_assert_int_eq(apply(b), 0);
	uint64_t d0 = sto_testing_backfill_decodes();
	b = batch_new();
	add_create_edge(b, 306, "R", 1, 2, 1, "w", v_int(7));
	add_rel_index(b, "r_w", "R", "w");
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(sto_testing_backfill_decodes() - d0, 6);
	ck_assert_uint_eq(rseek("R", "w", 7, ids), 6);
	ck_assert_uint_eq(ids[0], 301);
	ck_assert_uint_eq(ids[5], 306);
}
END_TEST

/* A relationship record whose type cannot be read fails the backfill
 * with ECORRUPT naming it, as a load does; it is never passed over (left
 * out of the index on this replica alone). */
START_TEST(rel_index_backfill_corrupt_record)
{
	static const uint8_t bad[][2] = {{'x', 1}, {'r', 0x80}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char msg[LORA_ERRMSG_BYTES] = "";
		Lora__MutationBatch *b = batch_new();
		if (!i) {
			add_create_node(b, 1, "A", 0);
			add_create_node(b, 2, "A", 0);
			add_create_edge(b, 1, "R", 1, 2, 1, "w", v_int(7));
		}
		ck_assert_int_eq(apply(b), 0);
		uint8_t k[9] = {STO_K_EDGE};
		lora_put_be64(k + 1, 40);
		ck_assert_int_eq(
		    sto_testing_put_raw(st, "edges", k, 9, bad[i], 2), 0);
		b = batch_new();
		add_rel_index(b, "r_w", "R", "w");
		ck_assert_int_eq(
		    sto_apply(st, sto_applied_index(st) + 1, b, msg),
		    LORA_ECORRUPT);
		batch_free(b);
		ck_assert_ptr_nonnull(strstr(msg, "edge 40: corrupt record"));
	}
}
END_TEST

START_TEST(rel_index_follows_apply)
{
	char msg[LORA_ERRMSG_BYTES], p[512];
	uint64_t ids[64];
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "A", 0);
	add_create_node(b, 2, "A", 0);
	add_create_edge(b, 1, "R", 1, 2, 1, "w", v_int(1));
	add_create_edge(b, 2, "R", 2, 1, 1, "w", v_int(2));
	add_create_edge(b, 3, "S", 1, 2, 1, "w", v_int(1));
	ck_assert_int_eq(apply(b), 0);
	b = batch_new();
	add_rel_index(b, "r_w", "R", "w");
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(rseek("R", "w", 1, ids), 1); /* backfilled */
	ck_assert_uint_eq(ids[0], 1);
	b = batch_new();
	add_set_prop(b, EDGE, 2, "w", v_int(1));
	add_set_prop(b, EDGE, 3, "w", v_int(2));
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(rseek("R", "w", 1, ids), 2);
	ck_assert_uint_eq(rseek("R", "w", 2, ids), 0); /* old value gone */
	b = batch_new();
	add_remove_prop(b, EDGE, 1, "w");
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(rseek("R", "w", 1, ids), 1);
	ck_assert_uint_eq(ids[0], 2);
	b = batch_new();
	add_create_edge(b, 4, "R", 1, 1, 1, "w", v_int(1));
	add_delete_edge(b, 2);
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(rseek("R", "w", 1, ids), 1);
	ck_assert_uint_eq(ids[0], 4);
	b = batch_new();
	add_create_edge(b, 5, "R", 2, 2, 1, "w", v_int(7));
	add_delete_node(b, 1, 1); /* takes edges 1, 3 and 4 along */
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(rseek("R", "w", 1, ids), 0);
	ck_assert_uint_eq(rseek("R", "w", 7, ids), 1);
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	digest(d1);
	sto_close(st);
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof(p), dir, "state"), NULL, &st, msg), 0);
	digest(d2);
	ck_assert_str_eq(d1, d2);
	ck_assert_uint_eq(rseek("R", "w", 7, ids), 1);
	ck_assert_uint_eq(ids[0], 5);
	/* dropped: no index (and no entries: a new one starts empty) */
	b = batch_new();
	add_drop_index(b, "r_w", 0);
	ck_assert_int_eq(apply(b), 0);
	struct sto_view *v;
	struct sto_iter *it;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	Lora__Value *x = v_int(7);
	ck_assert_int_eq(sto_view_rel_index_seek(v, "R", "w", x, 1, x, 1, &it),
	                 LORA_ENOTFOUND);
	lora__value__free_unpacked(x, &lora_pb_allocator);
	sto_view_close(v);
	b = batch_new();
	add_rel_index(b, "r_w2", "R", "w");
	add_create_index(b, "no", LORA__INDEX_KIND__INDEX_UNIQUE, "R", "w", 0);
	b->mutations[1]->create_index->entity = LORA__ENTITY_KIND__ENTITY_EDGE;
	ck_assert_int_eq(apply(b), LORA_EINVAL); /* edges: range only */
}
END_TEST

/* TEXT index postings follow every write on apply: a node is found by a
 * needle of its current string only, and not once it lost the label,
 * the property or its life; a rebuild finds the same. */
static size_t tseek(const char *needle, uint64_t *ids)
{
	struct sto_view *v;
	uint64_t *got = NULL;
	size_t n = 0;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_text_seek(v, "T", "s", needle, strlen(needle),
	                                    0, 0, &got, &n),
	                 0);
	sto_view_close(v);
	for (size_t i = 0; i < n && i < 64; i++)
		ids[i] = got[i];
	lora_free(got);
	return n;
}

/* A TEXT index seek keeps to its caller's limits: past the deadline it
 * stops with LORA_ETIMEOUT, and with more ids than bytes_max holds with
 * LORA_EMEMORY (returning nothing either way); within them it answers. */
START_TEST(text_seek_limits)
{
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= 300; i++)
		add_create_node(b, i, "T", 1, "s", v_str("xabcdefy"));
	add_create_index(b, "t_s", LORA__INDEX_KIND__INDEX_TEXT, "T", "s", 0);
	ck_assert_int_eq(apply(b), 0);
	struct sto_view *v;
	uint64_t *got = NULL;
	size_t n = 0;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(
	    sto_view_text_seek(v, "T", "s", "bcdef", 5, 1, 0, &got, &n),
	    LORA_ETIMEOUT);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(
	    sto_view_text_seek(v, "T", "s", "bcdef", 5, 0, 299 * 8, &got, &n),
	    LORA_EMEMORY);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(sto_view_text_seek(v, "T", "s", "bcdef", 5,
	                                    lora_now_ms() + 60000, 300 * 8,
	                                    &got, &n),
	                 0);
	ck_assert_uint_eq(n, 300);
	lora_free(got);
	sto_view_close(v);
}
END_TEST

#ifdef __SANITIZE_ADDRESS__
/* The heap in use and its peak while heap_on, from ASan's allocation
 * hooks (every thread's: RocksDB's own allocations count too). */
size_t __sanitizer_get_allocated_size(const volatile void *p);
static _Atomic long heap_now, heap_peak;
static _Atomic int heap_on;

void __sanitizer_malloc_hook(const volatile void *p, size_t n)
{
	(void)p;
	if (!atomic_load(&heap_on))
		return;
	long now = atomic_fetch_add(&heap_now, (long)n) + (long)n;
	long peak = atomic_load(&heap_peak);
	while (now > peak &&
	       !atomic_compare_exchange_weak(&heap_peak, &peak, now))
		;
}

void __sanitizer_free_hook(const volatile void *p)
{
	if (atomic_load(&heap_on) && p)
		atomic_fetch_sub(&heap_now,
		                 (long)__sanitizer_get_allocated_size(p));
}

/* A TEXT seek's memory stays near its budget: at 16,385 ids and a budget
 * of exactly their bytes, the peak is under 2.5 times the budget (a
 * doubling buffer copied out at the end peaked at 3 times). */
START_TEST(text_seek_memory_within_budget)
{
	enum { N = 16385 };
	Lora__MutationBatch *b = batch_new();
	for (uint64_t i = 1; i <= N; i++)
		add_create_node(b, i, "T", 1, "s", v_str("xabcdefy"));
	add_create_index(b, "t_s", LORA__INDEX_KIND__INDEX_TEXT, "T", "s", 0);
	ck_assert_int_eq(apply(b), 0);
	struct sto_view *v;
	uint64_t *got = NULL;
	size_t n = 0;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	for (int round = 0; round < 2; round++) { /* the first warms caches */
		atomic_store(&heap_now, 0);
		atomic_store(&heap_peak, 0);
		atomic_store(&heap_on, round);
		ck_assert_int_eq(sto_view_text_seek(v, "T", "s", "bcdef", 5, 0,
		                                    N * 8, &got, &n),
		                 0);
		atomic_store(&heap_on, 0);
		ck_assert_uint_eq(n, N);
		lora_free(got);
	}
	sto_view_close(v);
	long peak = atomic_load(&heap_peak);
	printf("text seek peak heap: %ld bytes for a %d-byte budget\n", peak,
	       N * 8);
	ck_assert_int_lt(peak, N * 8 * 5 / 2);
}
END_TEST
#endif

START_TEST(text_index_follows_apply)
{
	uint64_t ids[64];
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "T", 1, "s", v_str("abcdef"));
	add_create_node(b, 2, "T", 1, "s", v_str("xxcdeyy"));
	add_create_node(b, 3, "U", 1, "s", v_str("abcdef"));
	add_create_node(b, 4, "T", 1, "s", v_int(12345));
	ck_assert_int_eq(apply(b), 0);
	b = batch_new();
	add_create_index(b, "t_s", LORA__INDEX_KIND__INDEX_TEXT, "T", "s", 0);
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(tseek("cde", ids), 2); /* built over 1 and 2 */
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 2);
	ck_assert_uint_eq(tseek("bcdef", ids), 1);
	ck_assert_uint_eq(tseek("123", ids), 0); /* not a string */
	b = batch_new();
	add_set_prop(b, NODE, 1, "s", v_str("zzz"));
	add_label(b, 3, "T", 1);
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(tseek("bcd", ids), 1); /* old string gone */
	ck_assert_uint_eq(ids[0], 3);
	ck_assert_uint_eq(tseek("zzz", ids), 1);
	b = batch_new();
	add_label(b, 3, "T", 0);
	add_remove_prop(b, NODE, 1, "s");
	add_delete_node(b, 2, 0);
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(tseek("bcd", ids), 0);
	ck_assert_uint_eq(tseek("zzz", ids), 0);
	ck_assert_uint_eq(tseek("cde", ids), 0);
	struct sto_view *v;
	uint64_t *got;
	size_t n;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(
	    sto_view_text_seek(v, "T", "s", "ab", 2, 0, 0, &got, &n),
	    LORA_EINVAL); /* too short: scan */
	ck_assert_int_eq(
	    sto_view_text_seek(v, "T", "q", "abc", 3, 0, 0, &got, &n),
	    LORA_ENOTFOUND);
	sto_view_close(v);
	b = batch_new();
	add_create_node(b, 5, "T", 1, "s", v_str("abcdef"));
	add_drop_index(b, "t_s", 0);
	add_create_index(b, "t_s", LORA__INDEX_KIND__INDEX_TEXT, "T", "s", 0);
	ck_assert_int_eq(apply(b), 0);
	ck_assert_uint_eq(tseek("bcd", ids), 1);
	ck_assert_uint_eq(ids[0], 5);
}
END_TEST

START_TEST(reopen_keeps_state_and_tokens)
{
	char msg[LORA_ERRMSG_BYTES], p[512];
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "A", 1, "k", v_int(1));
	add_create_index(b, "i", LORA__INDEX_KIND__INDEX_UNIQUE, "A", "k", 0);
	ck_assert_int_eq(apply(b), 0);
	char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
	digest(d1);
	sto_close(st);
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof(p), dir, "state"), NULL, &st, msg), 0);
	digest(d2);
	ck_assert_str_eq(d1, d2);
	ck_assert_uint_eq(sto_applied_index(st), 1);
	b = batch_new(); /* the catalogue came back too */
	add_create_node(b, 2, "A", 1, "k", v_int(1));
	expect_rejected(b, LORA_ECONSTRAINT);
	Lora__NodeValue *n = get_node(1);
	ck_assert(has_label(n, "A"));
	free_node(n);
}
END_TEST

/* A batch carrying request ids rids[0..n) (and one node creation). */
static Lora__MutationBatch *rid_batch(uint64_t node, const char *const *rids,
                                      size_t n)
{
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, node, "R", 0);
	b->request_ids = lora_malloc((n ? n : 1) * sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		b->request_ids[i] = lora_malloc(strlen(rids[i]) + 1);
		strcpy(b->request_ids[i], rids[i]);
	}
	b->n_request_ids = n;
	return b;
}

static uint64_t rid_index(const char *rid)
{
	uint64_t index = 0;
	int rv = sto_request_index(st, rid, &index);
	ck_assert(rv == 0 || rv == LORA_ENOTFOUND);
	return rv ? 0 : index;
}

/* closes the store and opens it again with a request-id window of w */
static void reopen_with_window(uint64_t w)
{
	char msg[LORA_ERRMSG_BYTES], p[512];
	sto_close(st);
	struct sto_options o;
	sto_options_init(&o);
	o.request_window = w;
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof(p), dir, "state"), &o, &st, msg), 0);
}

START_TEST(request_ids_are_kept_for_a_window)
{
	char msg[LORA_ERRMSG_BYTES], p[512];
	struct sto_options o; /* for the checkpoint */
	sto_options_init(&o);
	o.request_window = 3;
	reopen_with_window(3);
	const char *ab[] = {"a", "b"}, *c[] = {"c"}, *d[] = {"d"};
	ck_assert_int_eq(apply(rid_batch(1, ab, 2)), 0); /* 1 */
	ck_assert_int_eq(apply(rid_batch(2, c, 1)), 0);  /* 2 */
	ck_assert_uint_eq(rid_index("a"), 1);
	ck_assert_uint_eq(rid_index("b"), 1);
	ck_assert_uint_eq(rid_index("c"), 2);
	ck_assert_uint_eq(rid_index("x"), 0);
	/* a rejected batch records nothing */
	const char *r[] = {"r"};
	Lora__MutationBatch *bad = rid_batch(1, r, 1); /* node 1 exists */
	ck_assert_int_ne(apply(bad), 0);               /* 3 */
	ck_assert_uint_eq(rid_index("r"), 0);
	/* kept across a reopen and in a checkpoint */
	reopen_with_window(3);
	ck_assert_uint_eq(rid_index("c"), 2);
	uint64_t ci;
	ck_assert_int_eq(
	    sto_checkpoint(st, path_join(p, sizeof(p), dir, "ck"), &ci, msg),
	    0);
	struct sto_store *ck;
	ck_assert_int_eq(sto_open(p, &o, &ck, msg), 0);
	uint64_t idx = 0;
	ck_assert_int_eq(sto_request_index(ck, "a", &idx), 0);
	ck_assert_uint_eq(idx, 1);
	sto_close(ck);
	/* the same id again later keeps the later entry */
	ck_assert_int_eq(apply(rid_batch(3, d, 1)), 0); /* 4: drops <= 1 */
	ck_assert_uint_eq(rid_index("a"), 0);
	ck_assert_uint_eq(rid_index("c"), 2);
	ck_assert_int_eq(apply(rid_batch(4, d, 1)), 0); /* 5: drops <= 2 */
	ck_assert_uint_eq(rid_index("c"), 0);
	ck_assert_int_eq(apply(rid_batch(5, NULL, 0)), 0); /* 6 */
	ck_assert_int_eq(apply(rid_batch(6, NULL, 0)), 0); /* 7: drops <= 4 */
	ck_assert_uint_eq(rid_index("d"), 5);
	ck_assert_int_eq(apply(rid_batch(7, NULL, 0)), 0); /* 8: drops <= 5 */
	ck_assert_uint_eq(rid_index("d"), 0);
}
END_TEST

/* Many entries: each id is kept exactly while its entry is among the
 * last `window`, across a reopen and a rejected entry; a window made
 * smaller at a reopen drops the older ids over the next entries, 1,024
 * entries' worth per entry (apply_req.c). */
static void check_window(uint64_t last, uint64_t window, uint64_t kept_below)
{
	char rid[32];
	for (uint64_t i = 1; i <= last; i++) {
		snprintf(rid, sizeof rid, "r%llu", (unsigned long long)i);
		uint64_t want = i + window > last || i >= kept_below ? i : 0;
		if (i == 700)
			want = 0; /* the rejected entry recorded nothing */
		ck_assert_msg(rid_index(rid) == want,
		              "after %llu: %s at %llu, want %llu",
		              (unsigned long long)last, rid,
		              (unsigned long long)rid_index(rid),
		              (unsigned long long)want);
	}
}

START_TEST(request_ids_window_over_many_entries)
{
	char rid[32];
	const char *one[1] = {rid};
	reopen_with_window(50);
	for (uint64_t i = 1; i <= 3000; i++) {
		snprintf(rid, sizeof rid, "r%llu", (unsigned long long)i);
		/* entry 700 is rejected: node 1 exists */
		ck_assert_int_eq(
		    apply(rid_batch(i == 700 ? 1 : i, one, 1)) != 0, i == 700);
		if (i == 1200) /* a reopen: the walk starts again */
			reopen_with_window(50);
		if (i % 600 == 0 || i == 51 || i == 1201)
			check_window(i, 50, UINT64_MAX);
	}
	/* window 2,000, then 10 at a reopen: entry 5101 drops the ids of
	 * 1,024 entries (3101..4124), 5102 the rest below 5093 */
	reopen_with_window(2000);
	for (uint64_t i = 3001; i <= 5100; i++) {
		snprintf(rid, sizeof rid, "r%llu", (unsigned long long)i);
		ck_assert_int_eq(apply(rid_batch(i, one, 1)), 0);
	}
	check_window(5100, 2000, UINT64_MAX);
	reopen_with_window(10);
	snprintf(rid, sizeof rid, "r%d", 5101);
	ck_assert_int_eq(apply(rid_batch(5101, one, 1)), 0);
	check_window(5101, 10, 4125);
	snprintf(rid, sizeof rid, "r%d", 5102);
	ck_assert_int_eq(apply(rid_batch(5102, one, 1)), 0);
	check_window(5102, 10, UINT64_MAX);
}
END_TEST

/* A record of the wrong shape among the per-entry request ids (not one
 * this code writes) is dropped with the others; apply goes on. */
START_TEST(request_ids_malformed_order_record_dropped)
{
	char rid[32], *err = NULL;
	const char *one[1] = {rid};
	reopen_with_window(2);
	/* between the records of entries 2 and 3 */
	const char bad[10] = {
	    STO_META_REQUEST_ORDER, 0, 0, 0, 0, 0, 0, 0, 2, 7};
	rocksdb_put_cf(st->db, st->wo, st->cf[STO_CF_REQ], bad, sizeof bad, "x",
	               1, &err);
	ck_assert_ptr_null(err);
	for (uint64_t i = 1; i <= 5; i++) {
		snprintf(rid, sizeof rid, "m%llu", (unsigned long long)i);
		ck_assert_int_eq(apply(rid_batch(i, one, 1)), 0);
	}
	size_t vlen = 0;
	char *v = rocksdb_get_cf(st->db, st->ro, st->cf[STO_CF_REQ], bad,
	                         sizeof bad, &vlen, &err);
	ck_assert_ptr_null(err);
	ck_assert_ptr_null(v);
	ck_assert_uint_eq(rid_index("m3"), 0);
	ck_assert_uint_eq(rid_index("m4"), 4);
}
END_TEST

Suite *storage_suite(void)
{
	Suite *s = suite_create("storage");
	TCase *t = tcase_create("encoding");
	tcase_add_test(t, value_encoding_orders_like_cypher);
	tcase_add_test(t, rocksdb_error_text_is_kept);
	tcase_add_test(t, keys_and_records_round_trip);
	suite_add_tcase(s, t);
	t = tcase_create("store");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, apply_every_mutation_kind);
	tcase_add_test(t, apply_enforces_existence_and_type_constraints);
	tcase_add_test(t, apply_refuses_batch_after_refused_entry);
	tcase_add_test(t, apply_enforces_node_key);
	tcase_add_test(t, rel_index_follows_apply);
	tcase_add_test(t, text_index_follows_apply);
	tcase_add_test(t, text_seek_limits);
#ifdef __SANITIZE_ADDRESS__
	tcase_add_test(t, text_seek_memory_within_budget);
#endif
	tcase_add_test(t, node_key_check_cost);
	tcase_add_test(t, rel_index_backfill_by_type);
	tcase_add_test(t, rel_index_backfill_corrupt_record);
	tcase_add_test(t, batch_sees_its_own_mutations);
	tcase_add_test(t, reapply_is_idempotent);
	tcase_add_test(t, request_ids_window_over_many_entries);
	tcase_add_test(t, request_ids_malformed_order_record_dropped);
	tcase_add_test(t, apply_refuses_an_index_gap);
	tcase_add_test(t, rejected_batches_leave_no_trace);
	tcase_add_test(t, too_deep_property_values_are_rejected);
	tcase_add_test(t, index_seek_and_label_scan);
	tcase_add_test(t, index_seeks_share_one_iterator);
	tcase_add_test(t, unique_constraint_backfill_checks_duplicates);
	tcase_add_test(t, adjacency_by_direction_and_type);
	tcase_add_test(t, vector_scans);
	tcase_add_test(t, node_without_vectors);
	tcase_add_test(t, views_see_a_snapshot);
	tcase_add_test(t, node_has_labels_in_place);
	tcase_add_test(t, checkpoint_opens_with_same_digest);
	tcase_add_test(t, digest_ignores_history);
	tcase_add_test(t, reopen_keeps_state_and_tokens);
	tcase_add_test(t, request_ids_are_kept_for_a_window);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(storage_suite());
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
