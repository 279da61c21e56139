/* test_proto.c - the shared base and the wire formats. */
#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora_pb.h"

TCase *pb_check_tcase(void); /* test_pb_check.c */

START_TEST(error_codes_are_stable)
{
	ck_assert_str_eq(lora_err_code(LORA_EPARSE), "LORA_PARSE");
	ck_assert_str_eq(lora_err_code(LORA_ESEMANTIC), "LORA_SEMANTIC");
	ck_assert_str_eq(lora_err_code(LORA_EPARAMS), "LORA_INVALID_PARAMS");
	ck_assert_str_eq(lora_err_code(LORA_ECONSTRAINT), "LORA_CONSTRAINT");
	ck_assert_str_eq(lora_err_code(LORA_EUNAVAILABLE), "LORA_UNAVAILABLE");
	ck_assert_str_eq(lora_err_code(LORA_EUNKNOWN_OUTCOME),
	                 "LORA_UNKNOWN_OUTCOME");
	ck_assert_int_eq(lora_err_http_status(LORA_EPARSE), 400);
	ck_assert_int_eq(lora_err_http_status(LORA_ENOTFOUND), 404);
	ck_assert_int_eq(lora_err_http_status(LORA_ETIMEOUT), 408);
	ck_assert_int_eq(lora_err_http_status(LORA_ECONSTRAINT), 409);
	ck_assert_int_eq(lora_err_http_status(LORA_EPARAMS), 422);
	ck_assert_int_eq(lora_err_http_status(LORA_EUNAVAILABLE), 503);
	ck_assert_str_eq(lora_err_category(LORA_EPARSE), "client");
	ck_assert_str_eq(lora_err_category(LORA_EIO), "server");
	/* Every code has text; out-of-range codes do not crash. */
	for (int e = 0; e < LORA_ERR_COUNT; e++) {
		ck_assert_ptr_nonnull(lora_strerror(e));
		ck_assert_ptr_nonnull(lora_err_code(e));
	}
	ck_assert_str_eq(lora_err_code(9999), "LORA_INTERNAL");
	ck_assert_str_eq(lora_err_code(-3), "LORA_INTERNAL");
}
END_TEST

START_TEST(error_messages_wrap_with_context)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	int rv = lora_errf(LORA_EIO, msg, "open segment %d", 12);
	ck_assert_int_eq(rv, LORA_EIO);
	lora_errwrap(rv, msg, "load log");
	ck_assert_str_eq(msg, "load log: open segment 12");
	ck_assert_int_eq(lora_errf(LORA_EIO, NULL, "x"), LORA_EIO);
}
END_TEST

START_TEST(allocation_failure_can_be_injected)
{
	lora_alloc_fail_after(2, 0);
	void *a = lora_malloc(8), *b = lora_malloc(8), *c = lora_malloc(8);
	void *d = lora_malloc(8);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(d); /* not sticky: only one failure */
	lora_free(a), lora_free(b), lora_free(d);

	lora_alloc_fail_after(0, 1);
	ck_assert_ptr_null(lora_malloc(1));
	ck_assert_ptr_null(lora_strdup("x"));
	lora_alloc_fail_after(-1, 0);
	char *s = lora_strdup("hello");
	ck_assert_str_eq(s, "hello");
	lora_free(s);
}
END_TEST

START_TEST(buffers_grow_and_report_oom)
{
	struct lora_buf b = {0};
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(lora_buf_printf(&b, "%d,", i), 0);
	ck_assert_uint_eq(b.len, strlen(b.data));
	ck_assert(strncmp(b.data, "0,1,2,", 6) == 0);
	lora_buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);

	struct lora_buf c = {0};
	lora_alloc_fail_after(0, 1);
	ck_assert_int_eq(lora_buf_puts(&c, "abc"), LORA_ENOMEM);
	lora_alloc_fail_after(-1, 0);
	ck_assert_uint_eq(c.len, 0);
	/* sticky: memory is back, but the buffer has lost an append */
	ck_assert_int_eq(lora_buf_puts(&c, "def"), LORA_ENOMEM);
	ck_assert_int_eq(lora_buf_printf(&c, "%d", 7), LORA_ENOMEM);
	ck_assert_int_eq(lora_buf_error(&c), LORA_ENOMEM);
	ck_assert_ptr_null(lora_buf_take(&c));
	ck_assert_int_eq(lora_buf_error(&c), LORA_OK);
	ck_assert_int_eq(lora_buf_puts(&c, "ghi"), LORA_OK);
	ck_assert_int_eq(lora_buf_reserve(&c, LORA_BUF_BYTES_MAX), LORA_ELIMIT);
	ck_assert_int_eq(lora_buf_puts(&c, "x"), LORA_ELIMIT);
	ck_assert_str_eq(c.data, "ghi"); /* what came before is kept */
	lora_buf_reset(&c);
	ck_assert_int_eq(lora_buf_puts(&c, "x"), LORA_OK);
	lora_buf_free(&b);
	lora_buf_free(&c);
}
END_TEST

START_TEST(utf8_encoding_and_invalid_code_points)
{
	struct lora_buf b = {0};
	ck_assert_int_eq(lora_buf_put_utf8(&b, 'A'), 0);
	ck_assert_int_eq(lora_buf_put_utf8(&b, 0xE9), 0);    /* e acute */
	ck_assert_int_eq(lora_buf_put_utf8(&b, 0x20AC), 0);  /* euro */
	ck_assert_int_eq(lora_buf_put_utf8(&b, 0x1F600), 0); /* emoji */
	ck_assert_str_eq(b.data, "A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
	size_t len = b.len;
	ck_assert_int_eq(lora_buf_put_utf8(&b, 0x110000), LORA_EINVAL);
	ck_assert_int_eq(lora_buf_put_utf8(&b, 0xD800), LORA_EINVAL);
	ck_assert_uint_eq(b.len, len);
	lora_buf_free(&b);
}
END_TEST

START_TEST(be64_keys_sort_like_numbers)
{
	uint8_t a[8], b[8];
	uint64_t vals[] = {0, 1, 255, 256, 1ull << 40, UINT64_MAX};
	for (size_t i = 0; i + 1 < sizeof vals / sizeof vals[0]; i++) {
		lora_put_be64(a, vals[i]);
		lora_put_be64(b, vals[i + 1]);
		ck_assert_int_lt(memcmp(a, b, 8), 0);
		ck_assert_uint_eq(lora_get_be64(a), vals[i]);
	}
}
END_TEST

/* A batch with one node carrying a list property survives encode/decode. */
START_TEST(mutation_batch_round_trips)
{
	Lora__Value v_int = LORA__VALUE__INIT;
	v_int.kind_case = LORA__VALUE__KIND_INT_VALUE;
	v_int.int_value = -42;
	Lora__Property prop = LORA__PROPERTY__INIT;
	prop.key = "age";
	prop.value = &v_int;
	Lora__Property *props[] = {&prop};
	char *labels[] = {"Person"};
	Lora__CreateNode cn = LORA__CREATE_NODE__INIT;
	cn.id = 7;
	cn.n_labels = 1;
	cn.labels = labels;
	cn.n_properties = 1;
	cn.properties = props;
	Lora__Mutation m = LORA__MUTATION__INIT;
	m.op_case = LORA__MUTATION__OP_CREATE_NODE;
	m.create_node = &cn;
	Lora__Mutation *ms[] = {&m};
	Lora__MutationBatch batch = LORA__MUTATION_BATCH__INIT;
	batch.n_mutations = 1;
	batch.mutations = ms;

	size_t n = lora__mutation_batch__get_packed_size(&batch);
	uint8_t *buf = malloc(n);
	lora__mutation_batch__pack(&batch, buf);
	Lora__MutationBatch *out =
	    lora__mutation_batch__unpack(&lora_pb_allocator, n, buf);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(out->n_mutations, 1);
	Lora__CreateNode *got = out->mutations[0]->create_node;
	ck_assert_uint_eq(got->id, 7);
	ck_assert_str_eq(got->labels[0], "Person");
	ck_assert_int_eq(got->properties[0]->value->int_value, -42);
	lora__mutation_batch__free_unpacked(out, &lora_pb_allocator);

	/* Truncated bytes decode to NULL, never a crash: the batch is one
	 * top-level field (its one mutation), so every cut falls inside it. */
	for (size_t cut = 1; cut < n; cut++) {
		out =
		    lora__mutation_batch__unpack(&lora_pb_allocator, cut, buf);
		ck_assert_ptr_null(out);
	}
	/* Allocation failure while decoding gives NULL. */
	lora_alloc_fail_after(1, 1);
	out = lora__mutation_batch__unpack(&lora_pb_allocator, n, buf);
	lora_alloc_fail_after(-1, 0);
	ck_assert_ptr_null(out);
	free(buf);
}
END_TEST

/* lora_batch_pack writes the bytes protobuf-c writes: plain relationship
 * creations by hand (ids and lengths across varint widths, empty and NULL
 * types), every other mutation and anything with unknown fields through
 * protobuf-c, request ids too. */
static void pack_same(const Lora__MutationBatch *b)
{
	size_t n = lora__mutation_batch__get_packed_size(b);
	ck_assert_uint_eq(lora_batch_packed_size(b), n);
	uint8_t *want = malloc(n + 1), *got = malloc(n + 1);
	lora__mutation_batch__pack(b, want);
	got[n] = 0xee;
	ck_assert_uint_eq(lora_batch_pack(b, got), n);
	ck_assert_mem_eq(got, want, n);
	ck_assert_uint_eq(got[n], 0xee);
	free(want);
	free(got);
}

START_TEST(batch_pack_matches_protobuf_c)
{
	static const uint64_t ids[] = {
	    0, 1, 127, 128, 16383, 16384, (uint64_t)1 << 35, UINT64_MAX};
	char long_type[300], *long_rid = long_type;
	memset(long_type, 'T', sizeof long_type - 1);
	long_type[sizeof long_type - 1] = 0;
	char *types[] = {"KNOWS", "", NULL, long_type};
	enum { NE = 8 * 4 + 3 };
	Lora__CreateEdge e[NE];
	Lora__Mutation m[NE + 2], *ms[NE + 2];
	size_t k = 0;
	for (size_t i = 0; i < 8; i++)
		for (size_t t = 0; t < 4; t++, k++) {
			lora__create_edge__init(&e[k]);
			e[k].id = ids[i];
			e[k].type = types[t];
			e[k].from_id = ids[(i + t) % 8];
			e[k].to_id = ids[(i + 2 * t + 1) % 8];
		}
	Lora__Value v = LORA__VALUE__INIT;
	v.kind_case = LORA__VALUE__KIND_STRING_VALUE;
	v.string_value = "w";
	Lora__Property prop = LORA__PROPERTY__INIT, *props[] = {&prop};
	prop.key = "k";
	prop.value = &v;
	for (; k < NE; k++) { /* with a property: protobuf-c's */
		lora__create_edge__init(&e[k]);
		e[k].id = 1000 + k;
		e[k].type = "R";
		e[k].from_id = 1;
		e[k].to_id = 2;
		e[k].n_properties = 1;
		e[k].properties = props;
	}
	for (size_t i = 0; i < NE; i++) {
		lora__mutation__init(&m[i]);
		m[i].op_case = LORA__MUTATION__OP_CREATE_EDGE;
		m[i].create_edge = &e[i];
		ms[i] = &m[i];
	}
	char *labels[] = {"Person"};
	Lora__CreateNode cn = LORA__CREATE_NODE__INIT;
	cn.id = 300;
	cn.n_labels = 1;
	cn.labels = labels;
	cn.n_properties = 1;
	cn.properties = props;
	lora__mutation__init(&m[NE]);
	m[NE].op_case = LORA__MUTATION__OP_CREATE_NODE;
	m[NE].create_node = &cn;
	Lora__DeleteEdge de = LORA__DELETE_EDGE__INIT;
	de.id = 5;
	lora__mutation__init(&m[NE + 1]);
	m[NE + 1].op_case = LORA__MUTATION__OP_DELETE_EDGE;
	m[NE + 1].delete_edge = &de;
	ms[NE] = &m[NE];
	ms[NE + 1] = &m[NE + 1];
	char *rids[] = {"r-1", "", long_rid};
	Lora__MutationBatch b = LORA__MUTATION_BATCH__INIT;
	pack_same(&b); /* empty */
	b.mutations = ms;
	for (size_t i = 0; i <= NE + 2; i++) {
		b.n_mutations = i;
		pack_same(&b);
	}
	b.request_ids = rids;
	b.n_request_ids = 3;
	pack_same(&b);
	/* after_index, and the same bytes appended to a batch packed without
	 * it (what a leader's writer does to the engine's bytes) */
	for (size_t i = 1; i < 8; i++) {
		b.after_index = ids[i];
		pack_same(&b);
		size_t with = lora_batch_packed_size(&b);
		b.after_index = 0;
		size_t without = lora_batch_packed_size(&b);
		uint8_t *a = malloc(with),
		        *c = malloc(without + LORA_BATCH_AFTER_INDEX_BYTES_MAX);
		b.after_index = ids[i];
		lora_batch_pack_exact(&b, a, with);
		b.after_index = 0;
		lora_batch_pack_exact(&b, c, without);
		size_t tail = lora_batch_put_after_index(c + without, ids[i]);
		ck_assert_uint_eq(without + tail, with);
		ck_assert_mem_eq(a, c, with);
		Lora__MutationBatch *u =
		    lora__mutation_batch__unpack(&lora_pb_allocator, with, c);
		ck_assert_ptr_nonnull(u);
		ck_assert_uint_eq(u->after_index, ids[i]);
		ck_assert_uint_eq(u->n_mutations, NE + 2);
		lora__mutation_batch__free_unpacked(u, &lora_pb_allocator);
		free(a);
		free(c);
	}
	/* unknown fields, kept from a decode: on a relationship creation
	 * (field 111 after its own), on its mutation, and on the batch */
	static const uint8_t edge_unknown[] = {0x0a, 0x0c, 0x3a, 0x0a, 0x08,
	                                       0x07, 0x12, 0x01, 'K',  0x18,
	                                       0x01, 0xf8, 0x06, 0x01},
	                     mut_unknown[] = {0x0a, 0x07, 0x3a, 0x02, 0x08,
	                                      0x07, 0xf8, 0x06, 0x02, 0x0a,
	                                      0x02, 0x3a, 0x00},
	                     batch_unknown[] = {0x0a, 0x04, 0x3a, 0x02, 0x08,
	                                        0x09, 0xf8, 0x06, 0x03};
	const uint8_t *crafted[] = {edge_unknown, mut_unknown, batch_unknown};
	size_t lens[] = {sizeof edge_unknown, sizeof mut_unknown,
	                 sizeof batch_unknown};
	for (int i = 0; i < 3; i++) {
		Lora__MutationBatch *u = lora__mutation_batch__unpack(
		    &lora_pb_allocator, lens[i], crafted[i]);
		ck_assert_ptr_nonnull(u);
		ck_assert(u->base.n_unknown_fields ||
		          u->mutations[0]->base.n_unknown_fields ||
		          u->mutations[0]->create_edge->base.n_unknown_fields);
		pack_same(u);
		lora__mutation_batch__free_unpacked(u, &lora_pb_allocator);
	}
}
END_TEST

/* Decoded bytes per wire byte for an empty sub-message in a field, the
 * most a field can expand (rounded as the meter rounds): its struct and
 * its slot in a repeated field's array, for a tag and a zero length; an
 * unknown field; and the same for every message type inside (each looked
 * at once: seen[0..*n_seen)). */
#define SEEN_MAX 64
static size_t worst_expansion(const ProtobufCMessageDescriptor *d,
                              const ProtobufCMessageDescriptor **seen,
                              size_t *n_seen)
{
	for (size_t i = 0; i < *n_seen; i++)
		if (seen[i] == d)
			return 0;
	ck_assert_uint_lt(*n_seen, SEEN_MAX);
	seen[(*n_seen)++] = d;
	size_t worst = (sizeof(ProtobufCMessageUnknownField) + 16 + 1) / 2;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		size_t wire = (f->id < 16 ? 1 : 2) + 1, decoded = 16 + 8;
		if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			const ProtobufCMessageDescriptor *sub = f->descriptor;
			decoded = (sub->sizeof_message + 15) / 16 * 16 + 8;
			size_t in = worst_expansion(sub, seen, n_seen);
			worst = in > worst ? in : worst;
		}
		size_t r = (decoded + wire - 1) / wire;
		worst = r > worst ? r : worst;
	}
	return worst;
}

/* A batch our encoder writes (no singular field twice) decodes to at most
 * worst_expansion bytes per wire byte (plus the top struct): the decode
 * cap allows twice that, so no such batch reaches it. */
START_TEST(decode_cap_covers_every_field)
{
	const ProtobufCMessageDescriptor *seen[SEEN_MAX];
	size_t n_seen = 0;
	size_t worst =
	    worst_expansion(&lora__mutation_batch__descriptor, seen, &n_seen);
	printf("decode cap: at most %zu decoded bytes per wire byte, cap "
	       "%d\n",
	       worst, LORA_PB_DECODED_PER_WIRE_BYTE);
	ck_assert_uint_le(2 * worst, LORA_PB_DECODED_PER_WIRE_BYTE);
	ck_assert_uint_eq(LORA_PB_DECODED_BYTES_MAX(SIZE_MAX / 2), SIZE_MAX);
	ck_assert_uint_eq(LORA_PB_DECODED_BYTES_MAX(0),
	                  LORA_PB_DECODED_BYTES_FIXED);
}
END_TEST

/* The metered allocators, piece by piece: 0 bytes gives a pointer of its
 * own (as lora_malloc(0) does), also from a fresh arena; a block or a
 * piece of its own that finds no memory sets failed (the decoder's "no
 * memory, wait" rather than "bad bytes"); a piece past the cap fails with
 * over_cap and without asking for memory; both count alike. */
START_TEST(metered_allocators_flag_failures)
{
	struct lora_pb_arena ar;
	lora_pb_arena_init(&ar);
	void *a = ar.alloc.alloc(ar.alloc.allocator_data, 0);
	void *b = ar.alloc.alloc(ar.alloc.allocator_data, 0);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(a, b);
	ck_assert_uint_eq((uintptr_t)b % _Alignof(max_align_t), 0);
	memset(b, 1, 1);
	lora_pb_arena_free(&ar);

	size_t sizes[] = {8, LORA_PB_ARENA_BLOCK_BYTES}; /* block; alone */
	for (int i = 0; i < 2; i++) {
		lora_alloc_fail_after(0, 0); /* that one only */
		ck_assert_ptr_null(
		    ar.alloc.alloc(ar.alloc.allocator_data, sizes[i]));
		lora_alloc_fail_after(-1, 0);
		ck_assert(ar.meter.failed);
		ck_assert(!ar.meter.over_cap);
		lora_pb_arena_free(&ar);
	}

	struct lora_pb_metered m;
	lora_pb_metered_init(&m, 0);
	lora_alloc_fail_after(0, 0);
	ck_assert_ptr_null(m.alloc.alloc(m.alloc.allocator_data, 8));
	lora_alloc_fail_after(-1, 0);
	ck_assert(m.meter.failed);

	/* a cap of 64 bytes: 3 + 40 + 0 count 16 + 48 + 16 */
	lora_pb_metered_init(&m, 64);
	lora_pb_meter_reset(&ar.meter, 64);
	void *p[3];
	size_t want[] = {3, 40, 0};
	for (int i = 0; i < 2; i++) {
		p[i] = m.alloc.alloc(m.alloc.allocator_data, want[i]);
		ck_assert_ptr_nonnull(p[i]);
		ck_assert_ptr_nonnull(
		    ar.alloc.alloc(ar.alloc.allocator_data, want[i]));
	}
	ck_assert_uint_eq(m.meter.used_bytes, 64);
	ck_assert_uint_eq(ar.meter.used_bytes, 64);
	unsigned long before = lora_alloc_count();
	ck_assert_ptr_null(m.alloc.alloc(m.alloc.allocator_data, want[2]));
	ck_assert_ptr_null(ar.alloc.alloc(ar.alloc.allocator_data, want[2]));
	ck_assert_uint_eq(lora_alloc_count(), before);
	ck_assert(m.meter.over_cap && !m.meter.failed);
	ck_assert(ar.meter.over_cap && !ar.meter.failed);
	for (int i = 0; i < 2; i++)
		m.alloc.free(m.alloc.allocator_data, p[i]);
	lora_pb_arena_free(&ar);
	ck_assert(!ar.meter.over_cap);
	ck_assert_uint_eq(ar.meter.cap_bytes, 0);
}
END_TEST

/* The arena allocator: a batch of 2,000 nodes (more than a block of
 * pieces) with a string larger than a block decodes to the same values as
 * with the malloc allocator, every piece aligned; truncated bytes never
 * crash or leak, and give NULL (a cut inside a mutation) or the mutations
 * before the cut (a cut between two); a failed allocation gives NULL with
 * the meter's failed set; the arena frees it all at once (ASan's leak
 * check) and is reusable. */
#define ARENA_NODES 2000
START_TEST(arena_unpack_round_trips)
{
	static Lora__CreateNode cn[ARENA_NODES];
	static Lora__Mutation m[ARENA_NODES];
	static Lora__Mutation *ms[ARENA_NODES];
	static char big[100 * 1024];
	memset(big, 'b', sizeof big - 1);
	Lora__Value vs = LORA__VALUE__INIT;
	vs.kind_case = LORA__VALUE__KIND_STRING_VALUE;
	vs.string_value = big;
	Lora__Property prop = LORA__PROPERTY__INIT;
	prop.key = "s";
	prop.value = &vs;
	Lora__Property *props[] = {&prop};
	char *labels[] = {"Person"};
	for (size_t i = 0; i < ARENA_NODES; i++) {
		lora__create_node__init(&cn[i]);
		cn[i].id = i + 1;
		cn[i].n_labels = 1;
		cn[i].labels = labels;
		lora__mutation__init(&m[i]);
		m[i].op_case = LORA__MUTATION__OP_CREATE_NODE;
		m[i].create_node = &cn[i];
		ms[i] = &m[i];
	}
	cn[ARENA_NODES / 2].n_properties = 1;
	cn[ARENA_NODES / 2].properties = props;
	Lora__MutationBatch batch = LORA__MUTATION_BATCH__INIT;
	batch.n_mutations = ARENA_NODES;
	batch.mutations = ms;
	size_t n = lora__mutation_batch__get_packed_size(&batch);
	uint8_t *buf = malloc(n);
	lora__mutation_batch__pack(&batch, buf);

	struct lora_pb_arena ar;
	lora_pb_arena_init(&ar);
	for (int round = 0; round < 2; round++) {
		Lora__MutationBatch *out =
		    lora__mutation_batch__unpack(&ar.alloc, n, buf);
		ck_assert_ptr_nonnull(out);
		ck_assert_uint_eq(out->n_mutations, ARENA_NODES);
		for (size_t i = 0; i < ARENA_NODES; i++) {
			Lora__CreateNode *g = out->mutations[i]->create_node;
			ck_assert_uint_eq((uintptr_t)g % _Alignof(max_align_t),
			                  0);
			ck_assert_uint_eq(g->id, i + 1);
			ck_assert_str_eq(g->labels[0], "Person");
		}
		ck_assert_str_eq(out->mutations[ARENA_NODES / 2]
		                     ->create_node->properties[0]
		                     ->value->string_value,
		                 big);
		lora_pb_arena_free(&ar);
	}
	for (size_t cut = 1; cut < n; cut += 997) {
		Lora__MutationBatch *out =
		    lora__mutation_batch__unpack(&ar.alloc, cut, buf);
		ck_assert(out == NULL || out->n_mutations < ARENA_NODES);
		ck_assert(!ar.meter.failed);
		lora_pb_arena_free(&ar);
	}
	lora_alloc_fail_after(3, 1);
	Lora__MutationBatch *out =
	    lora__mutation_batch__unpack(&ar.alloc, n, buf);
	lora_alloc_fail_after(-1, 0);
	ck_assert_ptr_null(out);
	ck_assert(ar.meter.failed);
	ck_assert(!ar.meter.over_cap);
	lora_pb_arena_free(&ar);
	ck_assert(!ar.meter.failed);
	free(buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("base");
	tcase_add_test(tc, error_codes_are_stable);
	tcase_add_test(tc, error_messages_wrap_with_context);
	tcase_add_test(tc, allocation_failure_can_be_injected);
	tcase_add_test(tc, buffers_grow_and_report_oom);
	tcase_add_test(tc, utf8_encoding_and_invalid_code_points);
	tcase_add_test(tc, be64_keys_sort_like_numbers);
	tcase_add_test(tc, mutation_batch_round_trips);
	tcase_add_test(tc, batch_pack_matches_protobuf_c);
	tcase_add_test(tc, arena_unpack_round_trips);
	tcase_add_test(tc, metered_allocators_flag_failures);
	tcase_add_test(tc, decode_cap_covers_every_field);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, pb_check_tcase());
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
