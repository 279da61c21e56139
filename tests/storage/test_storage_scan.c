/* test_storage_scan.c - the read paths of whole-label scans:
 * sto_view_next_node (nodes in id order through the view's node cursor),
 * raw vector scans and sto_vector_ref (a stored Vector read in place),
 * each against the slower path it replaces, and on corrupt bytes. */
#include <check.h>
#include <math.h>

#include "stoInt.h"
#include "sto_fixture.h"
#include "sto_testing.h"

#define NODE LORA__ENTITY_KIND__ENTITY_NODE

/* Nodes 1..N with label P and "i" = id; every fourth also Q; every third
 * a vector "emb" = (id, -id, 0.5); nodes N+1..N+10 are R only, with a
 * vector. */
#define N 200

static void load(void)
{
	Lora__MutationBatch *b = batch_new();
	for (uint64_t id = 1; id <= N + 10; id++) {
		const char *l = id > N ? "R" : id % 4 ? "P" : "P,Q";
		add_create_node(b, id, l, 1, "i", v_int((int64_t)id));
		if (id % 3 == 0 || id > N) {
			float xs[3] = {(float)id, -(float)id, 0.5f};
			add_set_vector(b, NODE, id, "emb", vec_f32(3, xs));
		}
	}
	ck_assert_int_eq(apply(b), 0);
}

/* ids of a label scan (the label index) */
static size_t label_ids(struct sto_view *v, const char *label, uint64_t *ids)
{
	struct sto_iter *it;
	struct sto_item item;
	int done = 0;
	size_t n = 0;
	ck_assert_int_eq(label ? sto_view_scan_label(v, label, &it)
	                       : sto_view_scan_nodes(v, &it),
	                 0);
	while (!sto_iter_next(it, &item, &done) && !done)
		ids[n++] = item.node_id;
	ck_assert(done);
	sto_iter_free(it);
	return n;
}

START_TEST(next_node_is_the_label_scan)
{
	load();
	static uint64_t want[N + 16], got[N + 16];
	const char *labels[] = {"P", "Q", "R", NULL};
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	for (int l = 0; l < 4; l++) {
		size_t n = label_ids(v, labels[l], want), k = 0;
		uint64_t id, from = 0;
		while (sto_view_next_node(v, labels[l], from, &id) == 0) {
			ck_assert_uint_lt(k, n);
			got[k++] = id;
			from = id + 1;
			/* the node just handed out reads without a move */
			struct sto_prop_ref r;
			ck_assert_int_eq(sto_view_node_prop_ref(v, id, "i", &r),
			                 0);
			ck_assert_int_eq(r.i, (int64_t)id);
			/* and reading others moves the shared cursor away:
			 * backwards, then far ahead */
			if (k % 7 == 0)
				ck_assert_int_eq(
				    sto_view_node_prop_ref(v, 1, "i", &r), 0);
			if (k % 11 == 0)
				ck_assert_int_eq(
				    sto_view_node_prop_ref(v, N + 5, "i", &r),
				    0);
		}
		ck_assert_uint_eq(k, n);
		for (size_t i = 0; i < n; i++)
			ck_assert_uint_eq(got[i], want[i]);
	}
	uint64_t id;
	ck_assert_int_eq(sto_view_next_node(v, "Q", 9, &id), 0);
	ck_assert_uint_eq(id, 12);
	ck_assert_int_eq(sto_view_next_node(v, "Q", 12, &id), 0);
	ck_assert_uint_eq(id, 12);
	ck_assert_int_eq(sto_view_next_node(v, "P", N + 1, &id),
	                 LORA_ENOTFOUND);
	ck_assert_int_eq(sto_view_next_node(v, "nope", 0, &id), LORA_ENOTFOUND);
	ck_assert_int_eq(sto_view_next_node(v, NULL, UINT64_MAX, &id),
	                 LORA_ENOTFOUND);
	sto_view_close(v);
}
END_TEST

START_TEST(next_node_reports_corrupt_records)
{
	load();
	uint8_t k[8];
	const uint8_t bad_magic[] = {'r', 1, 1};
	const uint8_t short_labels[] = {'n', 3, 1}; /* 3 labels, 1 byte */
	const uint8_t big[] = {'n',  0xff, 0xff, 0xff, 0xff, 0xff,
	                       0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	const uint8_t *recs[] = {bad_magic, short_labels, big};
	size_t lens[] = {sizeof bad_magic, sizeof short_labels, sizeof big};
	for (int i = 0; i < 3; i++) {
		lora_put_be64(k, 1000);
		ck_assert_int_eq(
		    sto_testing_put_raw(st, "nodes", k, 8, recs[i], lens[i]),
		    0);
		struct sto_view *v;
		uint64_t id;
		ck_assert_int_eq(sto_view_open(st, &v), 0);
		ck_assert_int_eq(sto_view_next_node(v, "P", N, &id), 0);
		ck_assert_uint_eq(id, N);
		ck_assert_int_eq(sto_view_next_node(v, "P", N + 1, &id),
		                 LORA_ECORRUPT);
		/* with no label the record is not read */
		ck_assert_int_eq(sto_view_next_node(v, NULL, N + 11, &id), 0);
		ck_assert_uint_eq(id, 1000);
		sto_view_close(v);
	}
	/* a key of the wrong length */
	ck_assert_int_eq(sto_testing_put_raw(st, "nodes", k, 7, "n", 1), 0);
	struct sto_view *v;
	uint64_t id;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	ck_assert_int_eq(sto_view_next_node(v, NULL, N + 11, &id),
	                 LORA_ECORRUPT);
	sto_view_close(v);
}
END_TEST

/* every vector of a raw scan equals the unpacked scan's */
static void same_vectors(struct sto_view *v, const char *label, size_t want)
{
	struct sto_iter *a, *b;
	struct sto_item x, y;
	int da = 0, db = 0;
	size_t n = 0;
	ck_assert_int_eq(sto_view_scan_vectors(v, label, "emb", &a), 0);
	ck_assert_int_eq(sto_view_scan_vectors_raw(v, label, "emb", &b), 0);
	for (;;) {
		ck_assert_int_eq(sto_iter_next(a, &x, &da), 0);
		ck_assert_int_eq(sto_iter_next(b, &y, &db), 0);
		ck_assert_int_eq(da, db);
		if (da)
			break;
		ck_assert_uint_eq(x.node_id, y.node_id);
		ck_assert_ptr_null(y.vector);
		struct sto_vec_ref r;
		ck_assert_int_eq(sto_vector_ref(y.vec_bytes, y.vec_len, &r), 0);
		ck_assert(r.plain);
		ck_assert_uint_eq(r.dimension, x.vector->dimension);
		ck_assert_uint_eq(r.n_f32, x.vector->n_f32);
		float f[3];
		sto_vec_f32(&r, f);
		ck_assert(!memcmp(f, x.vector->f32, sizeof f));
		ck_assert(f[0] == (float)y.node_id);
		n++;
	}
	sto_iter_free(a);
	sto_iter_free(b);
	ck_assert_uint_eq(n, want);
}

START_TEST(raw_vector_scans_match_unpacked_ones)
{
	load();
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	same_vectors(v, "P", N / 3);  /* label index + vectors cursor */
	same_vectors(v, "Q", N / 12); /* sparse: seeks */
	same_vectors(v, "R", 10);     /* after the others */
	same_vectors(v, NULL, N / 3 + 10);
	sto_view_close(v);
	/* a label every node has: the label index is skipped */
	Lora__MutationBatch *b = batch_new();
	for (uint64_t id = 1; id <= N + 10; id++)
		add_label(b, id, "All", 1);
	ck_assert_int_eq(apply(b), 0);
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	same_vectors(v, "All", N / 3 + 10);
	sto_view_close(v);
}
END_TEST

static size_t pack(const Lora__Vector *x, uint8_t *buf)
{
	return lora__vector__pack(x, buf);
}

START_TEST(vector_ref_reads_plain_encodings)
{
	uint8_t buf[256];
	float fs[3] = {1.5f, -2, 1e30f};
	Lora__Vector *x = vec_f32(3, fs);
	size_t n = pack(x, buf);
	struct sto_vec_ref r;
	ck_assert_int_eq(sto_vector_ref(buf, n, &r), 0);
	ck_assert(r.plain);
	ck_assert_uint_eq(r.coord_type,
	                  LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT32);
	ck_assert_uint_eq(r.dimension, 3);
	ck_assert_uint_eq(r.n_f32, 3);
	float f[3];
	sto_vec_f32(&r, f);
	ck_assert(!memcmp(f, fs, sizeof f));
	/* the same field twice (protobuf-c merges them): not plain */
	memcpy(buf + n, buf, n);
	ck_assert_int_eq(sto_vector_ref(buf, 2 * n, &r), 0);
	ck_assert(!r.plain);
	lora__vector__free_unpacked(x, &lora_pb_allocator);

	Lora__Vector y = LORA__VECTOR__INIT;
	double ds[2] = {0.25, -1e300};
	y.coord_type = LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT64;
	y.dimension = 2;
	y.n_f64 = 2;
	y.f64 = ds;
	n = pack(&y, buf);
	ck_assert_int_eq(sto_vector_ref(buf, n, &r), 0);
	ck_assert(r.plain);
	ck_assert_uint_eq(r.n_f64, 2);
	double d[2];
	sto_vec_f64(&r, d);
	ck_assert(d[0] == 0.25 && d[1] == -1e300);

	Lora__Vector z = LORA__VECTOR__INIT;
	int64_t is[4] = {0, -1, 300, INT64_MIN};
	z.dimension = 4;
	z.n_ints = 4;
	z.ints = is;
	n = pack(&z, buf);
	ck_assert_int_eq(sto_vector_ref(buf, n, &r), 0);
	ck_assert(r.plain);
	ck_assert_uint_eq(r.n_ints, 4);
	/* an empty message is a plain empty vector */
	ck_assert_int_eq(sto_vector_ref(buf, 0, &r), 0);
	ck_assert(r.plain);
	ck_assert_uint_eq(r.dimension, 0);
}
END_TEST

START_TEST(vector_ref_rejects_corrupt_bytes)
{
	uint8_t buf[256];
	float fs[5] = {1, 2, 3, 4, 5};
	Lora__Vector *x = vec_f32(5, fs);
	size_t n = pack(x, buf);
	lora__vector__free_unpacked(x, &lora_pb_allocator);
	struct sto_vec_ref r;
	/* every truncation: an error, or a shorter message that decodes the
	 * same way protobuf-c does */
	for (size_t k = 0; k < n; k++) {
		int rv = sto_vector_ref(buf, k, &r);
		Lora__Vector *u = lora__vector__unpack(NULL, k, buf);
		ck_assert_int_eq(rv, u ? 0 : LORA_ECORRUPT);
		if (u && r.plain)
			ck_assert_uint_eq(r.n_f32, u->n_f32);
		if (u)
			lora__vector__free_unpacked(u, NULL);
	}
	/* packed floats whose length is no multiple of 4 */
	const uint8_t odd[] = {0x1a, 3, 0, 0, 0};
	ck_assert_int_eq(sto_vector_ref(odd, sizeof odd, &r), LORA_ECORRUPT);
	/* a length past the end, an unterminated tag, a varint that never
	 * ends inside the packed integers */
	const uint8_t longer[] = {0x1a, 0x7f, 0, 0, 0, 0};
	const uint8_t tag[] = {0x80};
	const uint8_t ints[] = {0x2a, 2, 0x80, 0x80};
	const uint8_t dimv[] = {0x10, 0x80};
	ck_assert_int_eq(sto_vector_ref(longer, sizeof longer, &r),
	                 LORA_ECORRUPT);
	ck_assert_int_eq(sto_vector_ref(tag, sizeof tag, &r), LORA_ECORRUPT);
	ck_assert_int_eq(sto_vector_ref(ints, sizeof ints, &r), LORA_ECORRUPT);
	ck_assert_int_eq(sto_vector_ref(dimv, sizeof dimv, &r), LORA_ECORRUPT);
}
END_TEST

START_TEST(corrupt_stored_vectors_end_the_scan)
{
	load();
	uint8_t k[STO_VEC_KEY_BYTES];
	uint32_t kt = (uint32_t)sto_tok_find(st, STO_TOK_KEY, "emb", 3);
	sto_key_vec(k, NODE, 6, kt);
	const uint8_t bad[] = {0x1a, 0x7f, 0};
	ck_assert_int_eq(
	    sto_testing_put_raw(st, "vectors", k, sizeof k, bad, sizeof bad),
	    0);
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	const char *labels[] = {"P", NULL};
	for (int l = 0; l < 2; l++) {
		struct sto_iter *it;
		struct sto_item item;
		int done = 0, rv;
		ck_assert_int_eq(
		    sto_view_scan_vectors_raw(v, labels[l], "emb", &it), 0);
		size_t n = 0, bad_at = 0;
		while ((rv = sto_iter_next(it, &item, &done)) == 0 && !done) {
			struct sto_vec_ref r;
			n++;
			if (sto_vector_ref(item.vec_bytes, item.vec_len, &r)) {
				bad_at = item.node_id;
				break;
			}
		}
		ck_assert_int_eq(rv, 0);
		ck_assert_uint_eq(bad_at, 6);
		ck_assert_uint_eq(n, 2);
		sto_iter_free(it);
		/* the unpacking scan reports it itself */
		ck_assert_int_eq(
		    sto_view_scan_vectors(v, labels[l], "emb", &it), 0);
		while ((rv = sto_iter_next(it, &item, &done)) == 0 && !done)
			;
		ck_assert_int_eq(rv, LORA_ECORRUPT);
		sto_iter_free(it);
	}
	sto_view_close(v);
}
END_TEST

static Suite *scan_suite(void)
{
	Suite *s = suite_create("storage_scan");
	TCase *t = tcase_create("scan");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, next_node_is_the_label_scan);
	tcase_add_test(t, next_node_reports_corrupt_records);
	tcase_add_test(t, raw_vector_scans_match_unpacked_ones);
	tcase_add_test(t, vector_ref_reads_plain_encodings);
	tcase_add_test(t, vector_ref_rejects_corrupt_bytes);
	tcase_add_test(t, corrupt_stored_vectors_end_the_scan);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(scan_suite());
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
