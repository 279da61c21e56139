/*
 * fuzz_codec.c - fuzz target for the storage record decoders
 * (storage/codec.c): the bytes of a RocksDB value read from disk, which a
 * damaged or foreign store may hold. The first byte picks the decoder:
 *   0 node record, 1 edge record (sto_rec_decode), 2 a stored value
 *   (sto_value_unpack, sto_value_ref), 3 a stored vector (sto_vector_ref),
 *   4.. an adjacency chunk (sto_adj_head, sto_adj_entry; the byte also
 *   picks the chunk number).
 * Checked, besides "no crash, no overread, no leak":
 *   - every answer is 0 or LORA_ECORRUPT (LORA_ENOTFOUND where it means
 *     "no such property");
 *   - a record that decodes encodes into bytes that decode again and
 *     encode into the same bytes;
 *   - the partial readers agree with the full decode: the labels
 *     sto_rec_node_has_label sees, and the value sto_rec_node_prop finds
 *     for each property (the first of its key);
 *   - a scalar sto_value_ref reads is the value sto_value_unpack gives;
 *   - the coordinates of a plain vector read in place equal protobuf-c's.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stoInt.h"

#define FUZZ_ADJ_ENTRIES_MAX 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rc(int rc)
{
	if (rc != 0 && rc != LORA_ECORRUPT)
		abort();
}

/* The partial readers of node bytes p agree with the decoded r. */
static void node_partial(const struct sto_rec *r, const uint8_t *p, size_t len)
{
	for (uint32_t i = 0; i < r->nlabels; i++) {
		int has = 0;
		if (sto_rec_node_has_label(p, len, r->labels[i], &has) || !has)
			abort();
	}
	for (uint32_t i = 0; i < r->nprops; i++) {
		const struct sto_prop *pr = &r->props[i];
		if (sto_rec_find_prop(r, pr->key) != (int)i)
			continue; /* a repeated key: the first one is found */
		const uint8_t *val = NULL;
		size_t vlen = 0;
		uint32_t nvec;
		if (sto_rec_node_prop(p, len, pr->key, &val, &vlen, &nvec) ||
		    vlen != pr->len ||
		    (vlen && memcmp(val, r->data.data + pr->off, vlen)))
			abort();
	}
}

static void rec(int edge, const uint8_t *p, size_t len)
{
	struct sto_rec r = {0}, r2 = {0};
	struct lora_buf b1 = {0}, b2 = {0};
	int rc = sto_rec_decode(&r, edge, p, len);
	check_rc(rc);
	if (!edge) {
		int has;
		check_rc(sto_rec_node_has_label(p, len, 7, &has));
	}
	if (rc == 0) {
		if (!edge)
			node_partial(&r, p, len);
		if (sto_rec_encode(&r, edge, &b1) ||
		    sto_rec_decode(&r2, edge, (const uint8_t *)b1.data,
		                   b1.len) ||
		    sto_rec_encode(&r2, edge, &b2) || b1.len != b2.len ||
		    memcmp(b1.data, b2.data, b1.len))
			abort();
	}
	sto_rec_free(&r);
	sto_rec_free(&r2);
	lora_buf_free(&b1);
	lora_buf_free(&b2);
}

/* protobuf-c's copy of a string ends at its first NUL */
static int same_string(const char *pb, const char *s, size_t slen)
{
	size_t n = strlen(pb);
	return n <= slen && !memcmp(pb, s, n) && (n == slen || s[n] == '\0');
}

static void value(const uint8_t *p, size_t len)
{
	Lora__Value *v = NULL;
	struct sto_prop_ref ref;
	int urc = sto_value_unpack(p, len, &v);
	int rrc = sto_value_ref(p, len, &ref);
	check_rc(urc);
	check_rc(rrc);
	if (urc == 0 && rrc == 0) {
		int ok = 1;
		switch (ref.kind) {
		case STO_REF_INT:
			ok = v->kind_case == LORA__VALUE__KIND_INT_VALUE &&
			     v->int_value == ref.i;
			break;
		case STO_REF_FLOAT:
			ok = v->kind_case == LORA__VALUE__KIND_FLOAT_VALUE &&
			     (v->float_value == ref.d ||
			      (isnan(v->float_value) && isnan(ref.d)));
			break;
		case STO_REF_BOOL:
			ok = v->kind_case == LORA__VALUE__KIND_BOOL_VALUE &&
			     !v->bool_value == !ref.b;
			break;
		case STO_REF_STRING:
			ok = v->kind_case == LORA__VALUE__KIND_STRING_VALUE &&
			     same_string(v->string_value, ref.s, ref.slen);
			break;
		default:
			break;
		}
		if (!ok)
			abort();
	}
	if (v)
		lora__value__free_unpacked(v, &lora_pb_allocator);
}

static void vector(const uint8_t *p, size_t len)
{
	struct sto_vec_ref ref;
	int rc = sto_vector_ref(p, len, &ref);
	check_rc(rc);
	if (rc || !ref.plain)
		return;
	Lora__Vector *v = lora__vector__unpack(&lora_pb_allocator, len, p);
	if (v == NULL || v->n_f32 != ref.n_f32 || v->n_f64 != ref.n_f64 ||
	    v->n_ints != ref.n_ints)
		abort(); /* plain bytes protobuf-c does not read the same */
	float *f = malloc((ref.n_f32 + 1) * sizeof *f);
	double *d = malloc((ref.n_f64 + 1) * sizeof *d);
	if (ref.n_f32)
		sto_vec_f32(&ref, f);
	if (ref.n_f64)
		sto_vec_f64(&ref, d);
	if ((ref.n_f32 && memcmp(f, v->f32, ref.n_f32 * sizeof *f)) ||
	    (ref.n_f64 && memcmp(d, v->f64, ref.n_f64 * sizeof *d)))
		abort();
	free(f);
	free(d);
	lora__vector__free_unpacked(v, &lora_pb_allocator);
}

static void adjacency(uint32_t chunk, const uint8_t *p, size_t len)
{
	uint32_t nchunks, n;
	const uint8_t *body, *end = p + len;
	int rc = sto_adj_head(p, len, chunk, &nchunks, &n, &body);
	check_rc(rc);
	if (rc)
		return;
	if (n > STO_ADJ_CHUNK_ENTRIES_MAX || body < p || body > end ||
	    (chunk == 0) != (nchunks != 0))
		abort();
	for (uint32_t i = 0; i < n && i < FUZZ_ADJ_ENTRIES_MAX; i++) {
		struct sto_adj_ent e;
		const uint8_t *before = body;
		rc = sto_adj_entry(&body, end, &e);
		check_rc(rc);
		if (rc)
			break;
		if (body <= before || body > end)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* an exact copy, so that ASan sees reads past the record */
	size_t len = size - 1;
	uint8_t *p = malloc(len ? len : 1);
	memcpy(p, data + 1, len);
	switch (data[0] % 8) {
	case 0:
	case 1:
		rec(data[0] % 8, p, len);
		break;
	case 2:
		value(p, len);
		break;
	case 3:
		vector(p, len);
		break;
	default:
		adjacency(data[0] / 8 % 4, p, len);
		break;
	}
	free(p);
	return 0;
}
