/* codec.c - key layout, order-preserving value encoding, node and edge
 * records, and vector shape checks.
 *
 * Records are a compact format of our own rather than protobuf so that
 * labels and keys are 32-bit tokens:
 *
 *   node: 'n' varint(nlabels) varint(label)* varint(nvec) varint(nprops)
 *         (varint(key) varint(len) Value-bytes)*
 *   edge: 'r' varint(type) be64(from) be64(to) varint(out chunk)
 *         varint(in chunk) varint(nvec) varint(nprops)
 *         (varint(key) varint(len) Value-bytes)*
 *
 * (the chunks are where the edge's two adjacency entries live, see
 * stoInt.h). Adjacency chunks are decoded here too.
 *
 * Property values are packed Lora__Value messages; vector-valued
 * properties live in the vectors CF and only their count (nvec) is kept
 * here so that reading a node without vectors costs one lookup.
 */
#include <math.h>
#include <string.h>

#include "stoInt.h"

#define REC_NODE_MAGIC 'n'
#define REC_EDGE_MAGIC 'r'

/* ---- varints --------------------------------------------------------------
 */

int sto_put_uvarint(struct lora_buf *b, uint64_t v)
{
	int rv = lora_buf_reserve(b, STO_UVARINT_BYTES_MAX);
	if (rv)
		return rv;
	uint8_t *p = (uint8_t *)b->data + b->len;
	b->len += (size_t)(sto_uvarint_at(p, v) - p);
	b->data[b->len] = '\0'; /* as lora_buf_append */
	return 0;
}

size_t sto_get_uvarint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (size_t i = 0; i < 10 && p + i < end; i++) {
		r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = r;
			return i + 1;
		}
	}
	return 0;
}

/* ---- keys -----------------------------------------------------------------
 */

void sto_key_adj(uint8_t k[STO_ADJ_KEY_BYTES], uint64_t node, char dir,
                 uint32_t chunk)
{
	lora_put_be64(k, node);
	k[8] = (uint8_t)dir;
	lora_put_be32(k + 9, chunk);
}

void sto_key_edge(uint8_t k[9], uint64_t edge)
{
	k[0] = STO_K_EDGE;
	lora_put_be64(k + 1, edge);
}

void sto_key_vec(uint8_t k[STO_VEC_KEY_BYTES], uint32_t entity, uint64_t owner,
                 uint32_t key)
{
	k[0] = (uint8_t)entity;
	lora_put_be64(k + 1, owner);
	lora_put_be32(k + 9, key);
}

void sto_key_label(uint8_t k[STO_LABEL_KEY_BYTES], uint32_t label,
                   uint64_t node)
{
	k[0] = STO_K_LABEL;
	lora_put_be32(k + 1, label);
	lora_put_be64(k + 5, node);
}

int sto_key_prop_prefix(struct lora_buf *b, uint32_t label, uint32_t key)
{
	uint8_t k[9];
	k[0] = STO_K_PROP;
	lora_put_be32(k + 1, label);
	lora_put_be32(k + 5, key);
	lora_buf_reset(b);
	return lora_buf_append(b, k, sizeof(k));
}

int sto_key_rprop_prefix(struct lora_buf *b, uint32_t type, uint32_t key)
{
	int rv = sto_key_prop_prefix(b, type, key);
	if (!rv)
		b->data[0] = STO_K_RPROP;
	return rv;
}

/* ---- order-preserving values ----------------------------------------------
 */

/* Type class bytes: the first byte of every encoded value. */
#define ENC_NULL     0x08 /* only inside lists */
#define ENC_BOOL     0x10
#define ENC_NUMBER   0x20
#define ENC_STRING   0x30
#define ENC_BYTES    0x38
#define ENC_LIST     0x50
#define ENC_TEMPORAL 0x60 /* + kind */
#define ENC_POINT    0x70
#define ENC_LIST_END 0x00

static int put_u64(struct lora_buf *b, uint64_t v)
{
	uint8_t k[8];
	lora_put_be64(k, v);
	return lora_buf_append(b, k, 8);
}

static int put_i64(struct lora_buf *b, int64_t v)
{
	return put_u64(b, (uint64_t)v ^ ((uint64_t)1 << 63));
}

/* Doubles as sortable unsigned: flip all bits of negatives, the sign bit
 * of positives. -0.0 becomes 0.0 and every NaN one NaN above +inf. */
static uint64_t f64_ord(double d)
{
	uint64_t u;
	if (d == 0)
		d = 0;
	if (isnan(d))
		d = NAN;
	memcpy(&u, &d, 8);
	return (u >> 63) ? ~u : u | ((uint64_t)1 << 63);
}

/* A number: its double, then the exact distance of an integer from that
 * double, so that 2^53 + 1 and 2^53 differ while 1 and 1.0 are equal. */
static int put_number(struct lora_buf *b, int is_int, int64_t i, double d)
{
	int64_t diff = 0;
	if (is_int) {
		d = (double)i;
		diff = (int64_t)((long double)i - (long double)d);
	}
	int rv = lora_buf_putc(b, ENC_NUMBER);
	if (!rv)
		rv = put_u64(b, f64_ord(d));
	if (!rv)
		rv = put_i64(b, diff);
	return rv;
}

/* Bytes with 0x00 escaped as 00 ff and terminated by 00 01. */
static int put_escaped(struct lora_buf *b, uint8_t cls, const uint8_t *p,
                       size_t n)
{
	int rv = lora_buf_reserve(b, n + n / 8 + 4);
	if (rv)
		return rv;
	lora_buf_putc(b, (char)cls);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == 0) {
			rv = lora_buf_append(b, "\0\xff", 2);
		} else {
			rv = lora_buf_putc(b, (char)p[i]);
		}
		if (rv)
			return rv;
	}
	return lora_buf_append(b, "\0\x01", 2);
}

static int put_temporal(struct lora_buf *b, const Lora__Temporal *t)
{
	int rv = lora_buf_putc(b, (char)(ENC_TEMPORAL + (t->kind & 0x0f)));
	switch (t->kind) {
	case LORA__TEMPORAL_KIND__TEMPORAL_DATE:
		return rv ? rv : put_i64(b, t->epoch_days);
	case LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_TIME:
		return rv ? rv : put_i64(b, t->nanos_of_day);
	case LORA__TEMPORAL_KIND__TEMPORAL_TIME:
		return rv ? rv
		          : put_i64(b, t->nanos_of_day -
		                           (int64_t)t->offset_seconds *
		                               1000000000LL);
	case LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_DATETIME:
	case LORA__TEMPORAL_KIND__TEMPORAL_DATETIME: {
		int64_t off = t->kind == LORA__TEMPORAL_KIND__TEMPORAL_DATETIME
		                  ? t->offset_seconds
		                  : 0;
		/* Instant as (seconds, nanos); days stay far from overflow. */
		int64_t secs = t->epoch_days * 86400 +
		               t->nanos_of_day / 1000000000LL - off;
		if (!rv)
			rv = put_i64(b, secs);
		return rv ? rv : put_i64(b, t->nanos_of_day % 1000000000LL);
	}
	case LORA__TEMPORAL_KIND__TEMPORAL_DURATION:
		if (!rv)
			rv = put_i64(b, t->months);
		if (!rv)
			rv = put_i64(b, t->days);
		if (!rv)
			rv = put_i64(b, t->seconds);
		return rv ? rv : put_i64(b, t->nanos);
	default:
		return LORA_EINVAL;
	}
}

/* Bits 32..63 of a and b interleaved, a's bit first: a z-order (Morton)
 * key that never decreases when either input grows. */
static uint64_t zorder(uint64_t a, uint64_t b)
{
	uint64_t z = 0;
	for (int i = 31; i >= 0; i--) {
		z = (z << 1) | ((a >> (32 + i)) & 1);
		z = (z << 1) | ((b >> (32 + i)) & 1);
	}
	return z;
}

/* A point: its srid, the z-order key of x and y, then x, y and z. Within
 * one srid, every point p of a box [lo, hi] sorts between the encodings of
 * its corners (the z-order key is monotonic in x and y, and the exact
 * coordinates break ties in the same direction), so a range seek from lo
 * to hi finds all of them, plus some outside the box that the caller
 * filters: the point index of docs/cypher.md. */
static int put_point(struct lora_buf *b, const Lora__Point *p)
{
	uint64_t x = f64_ord(p->x), y = f64_ord(p->y), z = f64_ord(p->z);
	uint8_t k[4];
	lora_put_be32(k, p->srid);
	int rv = lora_buf_putc(b, ENC_POINT);
	if (!rv)
		rv = lora_buf_append(b, k, 4);
	if (!rv)
		rv = put_u64(b, zorder(x, y));
	if (!rv)
		rv = put_u64(b, x);
	if (!rv)
		rv = put_u64(b, y);
	return rv ? rv : put_u64(b, z);
}

static int enc_value(struct lora_buf *b, const Lora__Value *v, int depth,
                     int in_list)
{
	if (depth > STO_VALUE_DEPTH_MAX)
		return LORA_EINVAL;
	switch (v ? v->kind_case : LORA__VALUE__KIND__NOT_SET) {
	case LORA__VALUE__KIND_BOOL_VALUE:
		if (lora_buf_putc(b, ENC_BOOL))
			return LORA_ENOMEM;
		return lora_buf_putc(b, v->bool_value ? 1 : 0);
	case LORA__VALUE__KIND_INT_VALUE:
		return put_number(b, 1, v->int_value, 0);
	case LORA__VALUE__KIND_FLOAT_VALUE:
		return put_number(b, 0, 0, v->float_value);
	case LORA__VALUE__KIND_STRING_VALUE:
		return put_escaped(b, ENC_STRING,
		                   (const uint8_t *)v->string_value,
		                   strlen(v->string_value));
	case LORA__VALUE__KIND_BYTES_VALUE:
		return put_escaped(b, ENC_BYTES, v->bytes_value.data,
		                   v->bytes_value.len);
	case LORA__VALUE__KIND_TEMPORAL_VALUE:
		return v->temporal_value ? put_temporal(b, v->temporal_value)
		                         : LORA_EINVAL;
	case LORA__VALUE__KIND_POINT_VALUE:
		return v->point_value ? put_point(b, v->point_value)
		                      : LORA_EINVAL;
	case LORA__VALUE__KIND_LIST_VALUE: {
		if (lora_buf_putc(b, ENC_LIST))
			return LORA_ENOMEM;
		const Lora__ValueList *l = v->list_value;
		for (size_t i = 0; l && i < l->n_items; i++) {
			int rv = enc_value(b, l->items[i], depth + 1, 1);
			if (rv)
				return rv;
		}
		return lora_buf_putc(b, ENC_LIST_END);
	}
	case LORA__VALUE__KIND__NOT_SET:
	case LORA__VALUE__KIND_NULL_VALUE:
		return in_list ? lora_buf_putc(b, ENC_NULL) : LORA_EINVAL;
	default:
		return LORA_EINVAL;
	}
}

int sto_enc_value(struct lora_buf *b, const Lora__Value *v)
{
	return enc_value(b, v, 0, 0);
}

int sto_index_key(struct lora_buf *b, const Lora__Value *v)
{
	return sto_enc_class(v) ? enc_value(b, v, 0, 0) : LORA_EINVAL;
}

uint8_t sto_enc_class(const Lora__Value *v)
{
	switch (v ? v->kind_case : LORA__VALUE__KIND__NOT_SET) {
	case LORA__VALUE__KIND_BOOL_VALUE:
		return ENC_BOOL;
	case LORA__VALUE__KIND_INT_VALUE:
	case LORA__VALUE__KIND_FLOAT_VALUE:
		return ENC_NUMBER;
	case LORA__VALUE__KIND_STRING_VALUE:
		return ENC_STRING;
	case LORA__VALUE__KIND_BYTES_VALUE:
		return ENC_BYTES;
	case LORA__VALUE__KIND_LIST_VALUE:
		return ENC_LIST;
	case LORA__VALUE__KIND_POINT_VALUE:
		return ENC_POINT;
	case LORA__VALUE__KIND_TEMPORAL_VALUE:
		return v->temporal_value
		           ? (uint8_t)(ENC_TEMPORAL +
		                       (v->temporal_value->kind & 0x0f))
		           : 0;
	default:
		return 0;
	}
}

/* ---- values ----------------------------------------------------------------
 */

int sto_value_unpack(const uint8_t *p, size_t len, Lora__Value **out)
{
	/* Bytes from disk: bounded before protobuf-c recurses. Values are
	 * held to LORA_VALUE_DEPTH_MAX when applied; the looser result limit
	 * keeps a deeper one stored by an older version readable. */
	*out = NULL;
	if (lora_pb_check(LORA_PB_VALUE, p, len, LORA_RESULT_DEPTH_MAX))
		return LORA_ECORRUPT;
	*out = lora__value__unpack(&lora_pb_allocator, len, p);
	if (*out)
		return 0;
	/* protobuf-c says NULL both for bad bytes and for no memory: probe
	 * the allocator, and retry once in case the failure was passing. */
	void *probe = lora_malloc(1);
	if (!probe)
		return LORA_ENOMEM;
	lora_free(probe);
	*out = lora__value__unpack(&lora_pb_allocator, len, p);
	return *out ? 0 : LORA_ECORRUPT;
}

int sto_value_pack(const Lora__Value *v, uint8_t **out, size_t *len)
{
	size_t n = lora__value__get_packed_size(v);
	uint8_t *p = lora_malloc(n);
	if (!p)
		return LORA_ENOMEM;
	lora__value__pack(v, p);
	*out = p;
	*len = n;
	return 0;
}

int sto_vector_check(const Lora__Vector *vec, char *errmsg)
{
	if (!vec)
		return lora_errf(LORA_EVECTOR, errmsg, "vector is missing");
	size_t dim = vec->dimension, have;
	switch (vec->coord_type) {
	case LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT64:
		have = vec->n_f64;
		break;
	case LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT32:
		have = vec->n_f32;
		break;
	case LORA__VECTOR_COORD_TYPE__VECTOR_INTEGER64:
	case LORA__VECTOR_COORD_TYPE__VECTOR_INTEGER32:
	case LORA__VECTOR_COORD_TYPE__VECTOR_INTEGER16:
	case LORA__VECTOR_COORD_TYPE__VECTOR_INTEGER8:
		have = vec->n_ints;
		break;
	default:
		return lora_errf(LORA_EVECTOR, errmsg,
		                 "unknown vector coordinate type %d",
		                 (int)vec->coord_type);
	}
	if (dim == 0 || dim > STO_VECTOR_DIMENSIONS_MAX)
		return lora_errf(LORA_EVECTOR, errmsg,
		                 "vector dimension %zu outside 1..%d", dim,
		                 STO_VECTOR_DIMENSIONS_MAX);
	if (have != dim || vec->n_f64 + vec->n_f32 + vec->n_ints != dim)
		return lora_errf(LORA_EVECTOR, errmsg,
		                 "vector of dimension %zu has %zu coordinates",
		                 dim, vec->n_f64 + vec->n_f32 + vec->n_ints);
	int64_t lim = 0;
	if (vec->coord_type == LORA__VECTOR_COORD_TYPE__VECTOR_INTEGER32)
		lim = INT32_MAX;
	else if (vec->coord_type == LORA__VECTOR_COORD_TYPE__VECTOR_INTEGER16)
		lim = INT16_MAX;
	else if (vec->coord_type == LORA__VECTOR_COORD_TYPE__VECTOR_INTEGER8)
		lim = INT8_MAX;
	for (size_t i = 0; lim && i < dim; i++)
		if (vec->ints[i] > lim || vec->ints[i] < -lim - 1)
			return lora_errf(LORA_EVECTOR, errmsg,
			                 "vector coordinate %zu out of range",
			                 i);
	return 0;
}

/* ---- records ----------------------------------------------------------------
 */

void sto_rec_free(struct sto_rec *r)
{
	lora_free(r->labels);
	lora_free(r->props);
	lora_buf_free(&r->data);
	memset(r, 0, sizeof(*r));
}

static int rec_grow(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	uint32_t nc = *cap ? *cap * 2 : 4;
	while (nc < need)
		nc *= 2;
	void *p = lora_realloc(*arr, (size_t)nc * elem);
	if (!p)
		return LORA_ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

/* Reads a varint that must fit in 32 bits. */
static int get_u32(const uint8_t **p, const uint8_t *end, uint32_t *v)
{
	uint64_t x;
	size_t n = sto_get_uvarint(*p, end, &x);
	if (!n || x > UINT32_MAX)
		return LORA_ECORRUPT;
	*p += n;
	*v = (uint32_t)x;
	return 0;
}

/* ---- adjacency chunks ------------------------------------------------------
 */

int sto_adj_head(const uint8_t *p, size_t len, uint32_t chunk,
                 uint32_t *nchunks, uint32_t *n, const uint8_t **body)
{
	const uint8_t *end = p + len;
	*nchunks = 0;
	if (len < 2 ||
	    p[0] != (chunk ? STO_ADJ_CHUNKN_MAGIC : STO_ADJ_CHUNK0_MAGIC))
		return LORA_ECORRUPT;
	p++;
	if (!chunk && (get_u32(&p, end, nchunks) || *nchunks == 0))
		return LORA_ECORRUPT;
	/* An entry takes at least 3 bytes. */
	if (get_u32(&p, end, n) || *n > STO_ADJ_CHUNK_ENTRIES_MAX ||
	    *n > (size_t)(end - p) / 3)
		return LORA_ECORRUPT;
	*body = p;
	return 0;
}

int sto_adj_entry(const uint8_t **p, const uint8_t *end, struct sto_adj_ent *e)
{
	size_t a, b;
	if (get_u32(p, end, &e->type) ||
	    !(a = sto_get_uvarint(*p, end, &e->other)) ||
	    !(b = sto_get_uvarint(*p + a, end, &e->edge)))
		return LORA_ECORRUPT;
	*p += a + b;
	return 0;
}

static int rec_decode_props(struct sto_rec *r, const uint8_t *p,
                            const uint8_t *end)
{
	uint32_t n;
	if (get_u32(&p, end, &r->nvec) || get_u32(&p, end, &n))
		return LORA_ECORRUPT;
	if (n > (size_t)(end - p) / 2)
		return LORA_ECORRUPT;
	if (rec_grow((void **)&r->props, &r->props_cap, n, sizeof(*r->props)))
		return LORA_ENOMEM;
	if (lora_buf_reserve(&r->data, (size_t)(end - p)))
		return LORA_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct sto_prop *pr = &r->props[i];
		if (get_u32(&p, end, &pr->key) || get_u32(&p, end, &pr->len))
			return LORA_ECORRUPT;
		if (pr->len > (size_t)(end - p))
			return LORA_ECORRUPT;
		pr->off = (uint32_t)r->data.len;
		lora_buf_append(&r->data, p, pr->len); /* reserved above */
		p += pr->len;
		r->nprops = i + 1;
	}
	return p == end ? 0 : LORA_ECORRUPT;
}

int sto_rec_decode(struct sto_rec *r, int edge, const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	r->nlabels = r->nprops = r->nvec = 0;
	lora_buf_reset(&r->data);
	if (len < 1 || p[0] != (edge ? REC_EDGE_MAGIC : REC_NODE_MAGIC))
		return LORA_ECORRUPT;
	p++;
	if (edge) {
		if (get_u32(&p, end, &r->type) || end - p < 16)
			return LORA_ECORRUPT;
		r->from = lora_get_be64(p);
		r->to = lora_get_be64(p + 8);
		p += 16;
		if (get_u32(&p, end, &r->chunk[0]) ||
		    get_u32(&p, end, &r->chunk[1]))
			return LORA_ECORRUPT;
		return rec_decode_props(r, p, end);
	}
	uint32_t n;
	if (get_u32(&p, end, &n) || n > (size_t)(end - p))
		return LORA_ECORRUPT;
	if (rec_grow((void **)&r->labels, &r->labels_cap, n,
	             sizeof(*r->labels)))
		return LORA_ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		if (get_u32(&p, end, &r->labels[i]))
			return LORA_ECORRUPT;
	r->nlabels = n;
	return rec_decode_props(r, p, end);
}

int sto_rec_node_has_label(const uint8_t *p, size_t len, uint32_t label,
                           int *has)
{
	const uint8_t *end = p + len;
	uint32_t n, x;
	*has = 0;
	if (len < 1 || p[0] != REC_NODE_MAGIC)
		return LORA_ECORRUPT;
	p++;
	if (get_u32(&p, end, &n) || n > (size_t)(end - p))
		return LORA_ECORRUPT;
	for (uint32_t i = 0; i < n; i++) {
		if (get_u32(&p, end, &x))
			return LORA_ECORRUPT;
		*has |= x == label;
	}
	return 0;
}

int sto_rec_node_prop(const uint8_t *p, size_t len, uint32_t key,
                      const uint8_t **val, size_t *vlen, uint32_t *nvec)
{
	const uint8_t *end = p + len;
	uint32_t n, x;
	*nvec = 0;
	if (len < 1 || p[0] != REC_NODE_MAGIC)
		return LORA_ECORRUPT;
	p++;
	if (get_u32(&p, end, &n) || n > (size_t)(end - p))
		return LORA_ECORRUPT;
	for (uint32_t i = 0; i < n; i++)
		if (get_u32(&p, end, &x))
			return LORA_ECORRUPT;
	if (get_u32(&p, end, nvec) || get_u32(&p, end, &n) ||
	    n > (size_t)(end - p) / 2)
		return LORA_ECORRUPT;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k, l;
		if (get_u32(&p, end, &k) || get_u32(&p, end, &l) ||
		    l > (size_t)(end - p))
			return LORA_ECORRUPT;
		if (k == key) {
			*val = p;
			*vlen = l;
			return 0;
		}
		p += l;
	}
	return p == end ? LORA_ENOTFOUND : LORA_ECORRUPT;
}

/* Protobuf wire types and the Value fields decoded in place. */
#define PB_VARINT  0
#define PB_FIXED64 1
#define PB_LEN     2
/* protobuf-c reads a tag, and a length prefix, of at most 5 bytes (found
 * by fuzz_codec: a 9-byte tag, and a 6-byte length, were a plain vector
 * here and no vector to protobuf-c) */
#define PB_TAG_BYTES_MAX 5

int sto_value_ref(const uint8_t *p, size_t len, struct sto_prop_ref *out)
{
	const uint8_t *end = p + len;
	uint64_t tag, x = 0;
	out->kind = STO_REF_OTHER;
	if (len == 0) { /* an empty Value is null */
		out->kind = STO_REF_NULL;
		return 0;
	}
	size_t n = sto_get_uvarint(p, end, &tag);
	if (!n || n > PB_TAG_BYTES_MAX)
		return LORA_ECORRUPT;
	p += n;
	uint64_t field = tag >> 3, wt = tag & 7;
	if (field < 1 || field > 5)
		return 0; /* another kind, or several fields: unpack it */
	if (field == 4) {
		if (wt != PB_FIXED64 || end - p != 8)
			return 0;
		for (int i = 7; i >= 0; i--)
			x = x << 8 | p[i];
		memcpy(&out->d, &x, 8);
		out->kind = STO_REF_FLOAT;
		return 0;
	}
	if (!(n = sto_get_uvarint(p, end, &x)))
		return LORA_ECORRUPT;
	p += n;
	if (field == 5) {
		if (wt == PB_LEN &&
		    (n > PB_TAG_BYTES_MAX || x > (uint64_t)(end - p)))
			return LORA_ECORRUPT;
		if (wt != PB_LEN || x != (uint64_t)(end - p))
			return 0;
		out->s = (const char *)p;
		/* up to the first NUL, as protobuf-c; short ones inline (a
		 * scan reads one per node) */
		size_t k = 0;
		if (x <= 64)
			while (k < x && p[k])
				k++;
		else
			k = strnlen(out->s, (size_t)x);
		out->slen = k;
		out->kind = STO_REF_STRING;
		return 0;
	}
	if (wt != PB_VARINT || p != end)
		return 0;
	if (field == 1) {
		out->kind = STO_REF_NULL;
	} else if (field == 2) {
		out->b = x != 0;
		out->kind = STO_REF_BOOL;
	} else {
		out->i = (int64_t)(x >> 1) ^ -(int64_t)(x & 1); /* zigzag */
		out->kind = STO_REF_INT;
	}
	return 0;
}

int sto_rec_encode(const struct sto_rec *r, int edge, struct lora_buf *out)
{
	lora_buf_reset(out);
	int rv = lora_buf_reserve(out, 48 + r->data.len + 5 * r->nlabels +
	                                   10 * r->nprops);
	if (rv)
		return rv;
	lora_buf_putc(out, edge ? REC_EDGE_MAGIC : REC_NODE_MAGIC);
	if (edge) {
		uint8_t ends[16];
		lora_put_be64(ends, r->from);
		lora_put_be64(ends + 8, r->to);
		sto_put_uvarint(out, r->type);
		lora_buf_append(out, ends, 16);
		sto_put_uvarint(out, r->chunk[0]);
		sto_put_uvarint(out, r->chunk[1]);
	} else {
		sto_put_uvarint(out, r->nlabels);
		for (uint32_t i = 0; i < r->nlabels; i++)
			sto_put_uvarint(out, r->labels[i]);
	}
	sto_put_uvarint(out, r->nvec);
	sto_put_uvarint(out, r->nprops);
	for (uint32_t i = 0; i < r->nprops; i++) {
		const struct sto_prop *pr = &r->props[i];
		sto_put_uvarint(out, pr->key);
		sto_put_uvarint(out, pr->len);
		rv = lora_buf_append(out, r->data.data + pr->off, pr->len);
		if (rv)
			return rv;
	}
	if (out->len > STO_RECORD_BYTES_MAX)
		return LORA_ELIMIT;
	return 0;
}

int sto_rec_find_prop(const struct sto_rec *r, uint32_t key)
{
	for (uint32_t i = 0; i < r->nprops; i++)
		if (r->props[i].key == key)
			return (int)i;
	return -1;
}

int sto_rec_set_prop(struct sto_rec *r, uint32_t key, const void *val,
                     size_t len)
{
	if (len > STO_RECORD_BYTES_MAX ||
	    r->data.len + len > STO_RECORD_BYTES_MAX)
		return LORA_ELIMIT;
	int i = sto_rec_find_prop(r, key);
	if (i < 0 && rec_grow((void **)&r->props, &r->props_cap, r->nprops + 1,
	                      sizeof(*r->props)))
		return LORA_ENOMEM;
	size_t off = r->data.len;
	/* Old bytes stay in data as garbage until the record is re-read. */
	if (lora_buf_append(&r->data, val, len))
		return LORA_ENOMEM;
	if (i < 0)
		i = (int)r->nprops++;
	r->props[i] = (struct sto_prop){key, (uint32_t)off, (uint32_t)len};
	return 0;
}

void sto_rec_del_prop(struct sto_rec *r, int i)
{
	LORA_ASSERT(i >= 0 && (uint32_t)i < r->nprops);
	memmove(&r->props[i], &r->props[i + 1],
	        (r->nprops - (uint32_t)i - 1) * sizeof(*r->props));
	r->nprops--;
}

int sto_rec_has_label(const struct sto_rec *r, uint32_t label)
{
	for (uint32_t i = 0; i < r->nlabels; i++)
		if (r->labels[i] == label)
			return 1;
	return 0;
}

int sto_rec_add_label(struct sto_rec *r, uint32_t label)
{
	if (rec_grow((void **)&r->labels, &r->labels_cap, r->nlabels + 1,
	             sizeof(*r->labels)))
		return LORA_ENOMEM;
	r->labels[r->nlabels++] = label;
	return 0;
}

void sto_rec_del_label(struct sto_rec *r, uint32_t label)
{
	for (uint32_t i = 0; i < r->nlabels; i++) {
		if (r->labels[i] == label) {
			memmove(&r->labels[i], &r->labels[i + 1],
			        (r->nlabels - i - 1) * sizeof(*r->labels));
			r->nlabels--;
			return;
		}
	}
}

/* ---- vectors in place ------------------------------------------------- */

/* Reads one packed field's bytes: 1 taken, 0 not plain, -1 corrupt. */
static int vec_packed(const uint8_t **p, const uint8_t *end, uint64_t wt,
                      const uint8_t **at, size_t *len)
{
	uint64_t n;
	size_t k;
	if (wt != PB_LEN || *at)
		return 0; /* unpacked or repeated: protobuf-c merges those */
	if (!(k = sto_get_uvarint(*p, end, &n)) || k > PB_TAG_BYTES_MAX ||
	    n > (uint64_t)(end - *p - k))
		return -1;
	*at = *p + k;
	*len = (size_t)n;
	*p += k + n;
	return 1;
}

int sto_vector_ref(const uint8_t *p, size_t len, struct sto_vec_ref *out)
{
	const uint8_t *end = p + len;
	size_t l32 = 0, l64 = 0;
	int seen1 = 0, seen2 = 0;
	memset(out, 0, sizeof(*out));
	while (p < end) {
		uint64_t tag, x;
		size_t n = sto_get_uvarint(p, end, &tag);
		if (!n || n > PB_TAG_BYTES_MAX)
			return LORA_ECORRUPT;
		p += n;
		uint64_t field = tag >> 3, wt = tag & 7;
		int r = 0;
		if ((field == 1 || field == 2) && wt == PB_VARINT &&
		    !(field == 1 ? seen1 : seen2)) {
			if (!(n = sto_get_uvarint(p, end, &x)))
				return LORA_ECORRUPT;
			p += n;
			if (field == 1)
				out->coord_type = (uint32_t)x, seen1 = 1;
			else
				out->dimension = (uint32_t)x, seen2 = 1;
			continue;
		}
		if (field == 3)
			r = vec_packed(&p, end, wt, &out->f32, &l32);
		else if (field == 4)
			r = vec_packed(&p, end, wt, &out->f64, &l64);
		else if (field == 5)
			r = vec_packed(&p, end, wt, &out->ints, &out->ints_len);
		if (r < 0)
			return LORA_ECORRUPT;
		if (r == 0) { /* another encoding: the caller unpacks */
			memset(out, 0, sizeof(*out));
			return 0;
		}
	}
	if (l32 % 4 || l64 % 8)
		return LORA_ECORRUPT;
	out->n_f32 = l32 / 4;
	out->n_f64 = l64 / 8;
	/* a varint is at most 10 bytes (protobuf-c refuses longer ones:
	 * found by fuzz_codec) */
	for (size_t i = 0, run = 0; i < out->ints_len; i++) {
		if (!(out->ints[i] & 0x80)) {
			out->n_ints++;
			run = 0;
		} else if (++run >= 10) {
			return LORA_ECORRUPT;
		}
	}
	if (out->ints_len && (out->ints[out->ints_len - 1] & 0x80))
		return LORA_ECORRUPT;
	out->plain = 1;
	return 0;
}

void sto_vec_f32(const struct sto_vec_ref *r, float *out)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(out, r->f32, r->n_f32 * 4);
#else
	for (size_t i = 0; i < r->n_f32; i++) {
		uint32_t u = (uint32_t)r->f32[4 * i] |
		             (uint32_t)r->f32[4 * i + 1] << 8 |
		             (uint32_t)r->f32[4 * i + 2] << 16 |
		             (uint32_t)r->f32[4 * i + 3] << 24;
		memcpy(&out[i], &u, 4);
	}
#endif
}

void sto_vec_f64(const struct sto_vec_ref *r, double *out)
{
	for (size_t i = 0; i < r->n_f64; i++) {
		uint64_t u = 0;
		for (int b = 7; b >= 0; b--)
			u = u << 8 | r->f64[8 * i + b];
		memcpy(&out[i], &u, 8);
	}
}
