/* test_packstream.c - PackStream v1 (node/packstream.c): the bytes of the
 * spec's examples, round trips of every value type a parameter can be
 * (temporal values through their Bolt structures, in both the 5.x UTC and
 * the 4.4 local DateTime forms), graph values as Bolt structures, vectors
 * as lists of floats, points as Point2D / Point3D, and refusals of bad bytes:
 * truncated, lying sizes, too deep, repeated keys, bad UTF-8; nesting
 * counted in lists and maps both ways. Also the handshake's version pick. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bolt_int.h"
#include "packstream.h"
#include "query.h"

static const struct ps_enc ENC5 = {.element_ids = 1, .utc_datetime = 1};
static const struct ps_enc ENC44 = {.element_ids = 0, .utc_datetime = 0};

static int zone(const char *z, int64_t s, int local, int32_t *off)
{
	return qry_zone_offset(z, s, local, off);
}
static const struct ps_dec DEC = {.zone = zone};

/* ---- value builders (freed with lora__value__free_unpacked) -------------- */

static Lora__Value *mk(int kind)
{
	Lora__Value *v = lora_malloc(sizeof *v);
	lora__value__init(v);
	v->kind_case = kind;
	return v;
}

static Lora__Value *mk_int(int64_t i)
{
	Lora__Value *v = mk(LORA__VALUE__KIND_INT_VALUE);
	v->int_value = i;
	return v;
}

static Lora__Value *mk_str(const char *s)
{
	Lora__Value *v = mk(LORA__VALUE__KIND_STRING_VALUE);
	v->string_value = lora_strdup(s);
	return v;
}

static Lora__Value *mk_temporal(int kind, int64_t days, int64_t nod,
                                int32_t off, const char *zone)
{
	Lora__Value *v = mk(LORA__VALUE__KIND_TEMPORAL_VALUE);
	v->temporal_value = lora_malloc(sizeof *v->temporal_value);
	lora__temporal__init(v->temporal_value);
	v->temporal_value->kind = kind;
	v->temporal_value->epoch_days = days;
	v->temporal_value->nanos_of_day = nod;
	v->temporal_value->offset_seconds = off;
	if (zone)
		v->temporal_value->zone = lora_strdup(zone);
	return v;
}

static Lora__Value *mk_list(size_t n, Lora__Value **items)
{
	Lora__Value *v = mk(LORA__VALUE__KIND_LIST_VALUE);
	v->list_value = lora_malloc(sizeof *v->list_value);
	lora__value_list__init(v->list_value);
	v->list_value->items = lora_calloc(n + 1, sizeof(Lora__Value *));
	for (size_t i = 0; i < n; i++)
		v->list_value->items[i] = items[i];
	v->list_value->n_items = n;
	return v;
}

static Lora__Value *mk_map1(const char *k, Lora__Value *val)
{
	Lora__Value *v = mk(LORA__VALUE__KIND_MAP_VALUE);
	v->map_value = lora_malloc(sizeof *v->map_value);
	lora__value_map__init(v->map_value);
	v->map_value->entries = lora_calloc(1, sizeof(Lora__MapEntry *));
	Lora__MapEntry *e = lora_malloc(sizeof *e);
	lora__map_entry__init(e);
	e->key = lora_strdup(k);
	e->value = val;
	v->map_value->entries[0] = e;
	v->map_value->n_entries = 1;
	return v;
}

static void vfree(Lora__Value *v)
{
	lora__value__free_unpacked(v, &lora_pb_allocator);
}

/* Protobuf bytes as the equality of two values. */
static int same(const Lora__Value *a, const Lora__Value *b)
{
	size_t la = lora__value__get_packed_size(a);
	size_t lb = lora__value__get_packed_size(b);
	if (la != lb)
		return 0;
	uint8_t *x = malloc(la + 1), *y = malloc(lb + 1);
	lora__value__pack(a, x);
	lora__value__pack(b, y);
	int eq = memcmp(x, y, la) == 0;
	free(x);
	free(y);
	return eq;
}

/* Encodes v, checks the bytes (when want is given), decodes them and
 * checks the result equals v. Takes v. */
static void round_trip(Lora__Value *v, const struct ps_enc *e, const char *want,
                       size_t want_len)
{
	struct lora_buf b = {0};
	ck_assert_int_eq(ps_put_value(&b, v, e), 0);
	if (want) {
		ck_assert_uint_eq(b.len, want_len);
		ck_assert_mem_eq(b.data, want, want_len);
	}
	Lora__Value *back = NULL;
	char err[LORA_ERRMSG_BYTES] = "";
	ck_assert_msg(
	    ps_decode_value((uint8_t *)b.data, b.len, &DEC, &back, err) == 0,
	    "%s", err);
	ck_assert_msg(same(v, back), "value changed in a round trip");
	vfree(back);
	vfree(v);
	lora_buf_free(&b);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(spec_bytes)
{
	Lora__Value *nul = mk(LORA__VALUE__KIND_NULL_VALUE);
	nul->null_value = 1;
	round_trip(nul, &ENC5, "\xC0", 1);
	Lora__Value *t = mk(LORA__VALUE__KIND_BOOL_VALUE);
	t->bool_value = 1;
	round_trip(t, &ENC5, "\xC3", 1);
	round_trip(mk_int(1), &ENC5, "\x01", 1);
	round_trip(mk_int(-16), &ENC5, "\xF0", 1);
	round_trip(mk_int(127), &ENC5, "\x7F", 1);
	round_trip(mk_int(-17), &ENC5, "\xC8\xEF", 2);
	round_trip(mk_int(128), &ENC5, "\xC9\x00\x80", 3);
	round_trip(mk_int(-129), &ENC5, "\xC9\xFF\x7F", 3);
	round_trip(mk_int(32768), &ENC5, "\xCA\x00\x00\x80\x00", 5);
	round_trip(mk_int(INT64_MIN), &ENC5,
	           "\xCB\x80\x00\x00\x00\x00\x00\x00\x00", 9);
	round_trip(mk_int(INT64_MAX), &ENC5,
	           "\xCB\x7F\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 9);
	Lora__Value *f = mk(LORA__VALUE__KIND_FLOAT_VALUE);
	f->float_value = 1.1;
	round_trip(f, &ENC5, "\xC1\x3F\xF1\x99\x99\x99\x99\x99\x9A", 9);
	round_trip(mk_str("a"), &ENC5, "\x81\x61", 2);
	round_trip(mk_str("Größenmaßstäbe"), &ENC5,
	           "\xD0\x12Gr\xC3\xB6\xC3\x9F"
	           "enma\xC3\x9F"
	           "st\xC3\xA4"
	           "be",
	           20);
	Lora__Value *items[3] = {mk_int(1), mk_int(2), mk_int(3)};
	round_trip(mk_list(3, items), &ENC5, "\x93\x01\x02\x03", 4);
	round_trip(mk_map1("a", mk_int(1)), &ENC5, "\xA1\x81\x61\x01", 4);
	Lora__Value *by = mk(LORA__VALUE__KIND_BYTES_VALUE);
	by->bytes_value.data = lora_malloc(3);
	memcpy(by->bytes_value.data, "\x01\x02\x03", 3);
	by->bytes_value.len = 3;
	round_trip(by, &ENC5, "\xCC\x03\x01\x02\x03", 5);
}
END_TEST

START_TEST(sizes_cross_boundaries)
{
	size_t lens[] = {15, 16, 255, 256, 65535, 65536};
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		char *s = malloc(lens[i] + 1);
		memset(s, 'x', lens[i]);
		s[lens[i]] = '\0';
		round_trip(mk_str(s), &ENC5, NULL, 0);
		free(s);
		Lora__Value **items = malloc(lens[i] * sizeof *items);
		for (size_t k = 0; k < lens[i]; k++)
			items[k] = mk_int((int64_t)k);
		round_trip(mk_list(lens[i], items), &ENC5, NULL, 0);
		free(items);
	}
}
END_TEST

START_TEST(temporal_round_trips)
{
	const struct ps_enc *encs[2] = {&ENC5, &ENC44};
	for (int e = 0; e < 2; e++) {
		round_trip(mk_temporal(LORA__TEMPORAL_KIND__TEMPORAL_DATE,
		                       19724, 0, 0, NULL),
		           encs[e], "\xB1\x44\xC9\x4D\x0C", 5);
		round_trip(mk_temporal(LORA__TEMPORAL_KIND__TEMPORAL_DATE,
		                       -800000, 0, 0, NULL),
		           encs[e], NULL, 0);
		round_trip(mk_temporal(LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_TIME,
		                       0, 3723000000123LL, 0, NULL),
		           encs[e], NULL, 0);
		round_trip(mk_temporal(LORA__TEMPORAL_KIND__TEMPORAL_TIME, 0,
		                       3723000000123LL, -18000, NULL),
		           encs[e], NULL, 0);
		round_trip(
		    mk_temporal(LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_DATETIME,
		                -1, 86399999999999LL, 0, NULL),
		    encs[e], NULL, 0);
		round_trip(mk_temporal(LORA__TEMPORAL_KIND__TEMPORAL_DATETIME,
		                       19724, 3600LL * 1000000000LL, 3600,
		                       NULL),
		           encs[e], NULL, 0);
		/* 2024-01-02T00:30 in Stockholm (+01:00): the UTC form
		 * crosses midnight backwards */
		round_trip(mk_temporal(LORA__TEMPORAL_KIND__TEMPORAL_DATETIME,
		                       19724, 1800LL * 1000000000LL, 3600,
		                       "Europe/Stockholm"),
		           encs[e], NULL, 0);
		/* summer time: +02:00 */
		round_trip(mk_temporal(LORA__TEMPORAL_KIND__TEMPORAL_DATETIME,
		                       19900, 12LL * 3600 * 1000000000LL, 7200,
		                       "Europe/Stockholm"),
		           encs[e], NULL, 0);
		Lora__Value *d = mk_temporal(
		    LORA__TEMPORAL_KIND__TEMPORAL_DURATION, 0, 0, 0, NULL);
		d->temporal_value->months = 14;
		d->temporal_value->days = -3;
		d->temporal_value->seconds = 14400;
		d->temporal_value->nanos = 5;
		round_trip(d, encs[e], NULL, 0);
	}
}
END_TEST

static int decode_rc(const char *p, size_t len);

static Lora__Value *mk_point(uint32_t srid, double x, double y, double z)
{
	Lora__Value *v = mk(LORA__VALUE__KIND_POINT_VALUE);
	v->point_value = lora_malloc(sizeof *v->point_value);
	lora__point__init(v->point_value);
	v->point_value->srid = srid;
	v->point_value->x = x;
	v->point_value->y = y;
	v->point_value->z = z;
	return v;
}

/* Point2D 'X' {srid, x, y} and Point3D 'Y' {srid, x, y, z}, both ways;
 * integer coordinates are taken, an unknown srid or one of the other
 * dimension is refused */
START_TEST(points_as_structures)
{
	round_trip(mk_point(7203, 1.0, 2.0, 0), &ENC5,
	           "\xB3\x58\xC9\x1C\x23"
	           "\xC1\x3F\xF0\x00\x00\x00\x00\x00\x00"
	           "\xC1\x40\x00\x00\x00\x00\x00\x00\x00",
	           23);
	round_trip(mk_point(4326, 12.5, 56.25, 0), &ENC44, NULL, 0);
	round_trip(mk_point(9157, 1, 2, 3), &ENC5, NULL, 0);
	round_trip(mk_point(4979, -170, -45, 100.5), &ENC5, NULL, 0);
	Lora__Value *back = NULL;
	char err[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(ps_decode_value((const uint8_t *)"\xB3\x58\xC9\x10"
	                                                  "\xE6\x01\x02",
	                                 7, &DEC, &back, err),
	                 0);
	ck_assert_int_eq(back->kind_case, LORA__VALUE__KIND_POINT_VALUE);
	ck_assert_uint_eq(back->point_value->srid, 4326);
	ck_assert(back->point_value->y == 2.0);
	vfree(back);
	ck_assert_int_eq(decode_rc("\xB3\x58\x01\x01\x02", 5), LORA_EINVAL);
	ck_assert_int_eq(decode_rc("\xB3\x58\xC9\x23\xC5\x01\x02", 7),
	                 LORA_EINVAL); /* 9157 is 3-D */
	ck_assert_int_eq(decode_rc("\xB2\x58\xC9\x1C\x23\x01", 6),
	                 LORA_ECORRUPT);
	ck_assert_int_eq(decode_rc("\xB3\x58\xC9\x1C\x23\x81x\x01", 8),
	                 LORA_ECORRUPT);
}
END_TEST

START_TEST(datetime_forms)
{
	/* 1970-01-01T01:00+01:00 is 0 s UTC: 'I' {0, 0, 3600} in 5.x, and
	 * 'F' {3600, 0, 3600} (local seconds) in 4.4 */
	Lora__Value *v = mk_temporal(LORA__TEMPORAL_KIND__TEMPORAL_DATETIME, 0,
	                             3600LL * 1000000000LL, 3600, NULL);
	struct lora_buf b = {0};
	ck_assert_int_eq(ps_put_value(&b, v, &ENC5), 0);
	ck_assert_uint_eq(b.len, 7);
	ck_assert_mem_eq(b.data, "\xB3\x49\x00\x00\xC9\x0E\x10", 7);
	lora_buf_reset(&b);
	ck_assert_int_eq(ps_put_value(&b, v, &ENC44), 0);
	ck_assert_uint_eq(b.len, 9);
	ck_assert_mem_eq(b.data, "\xB3\x46\xC9\x0E\x10\x00\xC9\x0E\x10", 9);
	lora_buf_free(&b);
	vfree(v);
}
END_TEST

START_TEST(graph_values_as_structures)
{
	Lora__NodeValue nv = LORA__NODE_VALUE__INIT;
	nv.id = 7;
	char *labels[1] = {"P"};
	nv.labels = labels;
	nv.n_labels = 1;
	Lora__Value v = LORA__VALUE__INIT;
	v.kind_case = LORA__VALUE__KIND_NODE_VALUE;
	v.node_value = &nv;
	struct lora_buf b = {0};
	ck_assert_int_eq(ps_put_value(&b, &v, &ENC5), 0);
	/* Node {7, ["P"], {}, "7"} */
	ck_assert_uint_eq(b.len, 9);
	ck_assert_mem_eq(b.data,
	                 "\xB4\x4E\x07\x91\x81P\xA0\x81"
	                 "7",
	                 9);
	lora_buf_reset(&b);
	ck_assert_int_eq(ps_put_value(&b, &v, &ENC44), 0);
	ck_assert_uint_eq(b.len, 7);
	ck_assert_mem_eq(b.data, "\xB3\x4E\x07\x91\x81P\xA0", 7);

	/* a path walked against its relationship: index -1 */
	Lora__NodeValue a = LORA__NODE_VALUE__INIT, c = LORA__NODE_VALUE__INIT;
	a.id = 1;
	c.id = 2;
	Lora__RelValue r = LORA__REL_VALUE__INIT;
	r.id = 9;
	r.type = "K";
	r.start_id = 2;
	r.end_id = 1;
	Lora__NodeValue *ns[2] = {&a, &c};
	Lora__RelValue *rs[1] = {&r};
	Lora__PathValue p = LORA__PATH_VALUE__INIT;
	p.nodes = ns;
	p.n_nodes = 2;
	p.rels = rs;
	p.n_rels = 1;
	v.kind_case = LORA__VALUE__KIND_PATH_VALUE;
	v.path_value = &p;
	lora_buf_reset(&b);
	ck_assert_int_eq(ps_put_value(&b, &v, &ENC44), 0);
	const char want[] = "\xB3\x50"
	                    "\x92\xB3\x4E\x01\x90\xA0\xB3\x4E\x02\x90\xA0"
	                    "\x91\xB3\x72\x09\x81K\xA0"
	                    "\x92\xFF\x01";
	ck_assert_uint_eq(b.len, sizeof want - 1);
	ck_assert_mem_eq(b.data, want, sizeof want - 1);
	/* the relationship alone, 5.x: 8 fields with element ids */
	v.kind_case = LORA__VALUE__KIND_REL_VALUE;
	v.rel_value = &r;
	lora_buf_reset(&b);
	ck_assert_int_eq(ps_put_value(&b, &v, &ENC5), 0);
	ck_assert_mem_eq(b.data,
	                 "\xB8\x52\x09\x02\x01\x81K\xA0\x81"
	                 "9\x81"
	                 "2\x81"
	                 "1",
	                 14);
	lora_buf_free(&b);
}
END_TEST

START_TEST(vectors_as_float_lists)
{
	Lora__Vector vec = LORA__VECTOR__INIT;
	float f[2] = {0.5f, -2.0f};
	vec.coord_type = LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT32;
	vec.dimension = 2;
	vec.f32 = f;
	vec.n_f32 = 2;
	Lora__Value v = LORA__VALUE__INIT;
	v.kind_case = LORA__VALUE__KIND_VECTOR_VALUE;
	v.vector_value = &vec;
	struct lora_buf b = {0};
	ck_assert_int_eq(ps_put_value(&b, &v, &ENC5), 0);
	Lora__Value *back = NULL;
	char err[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(
	    ps_decode_value((uint8_t *)b.data, b.len, &DEC, &back, err), 0);
	ck_assert_int_eq(back->kind_case, LORA__VALUE__KIND_LIST_VALUE);
	ck_assert_uint_eq(back->list_value->n_items, 2);
	ck_assert_int_eq(back->list_value->items[0]->kind_case,
	                 LORA__VALUE__KIND_FLOAT_VALUE);
	ck_assert(back->list_value->items[0]->float_value == 0.5);
	ck_assert(back->list_value->items[1]->float_value == -2.0);
	vfree(back);
	lora_buf_free(&b);
}
END_TEST

static int decode_rc(const char *p, size_t len)
{
	uint8_t *copy = calloc(1, len ? len : 1); /* exact size, for ASan */
	memcpy(copy, p, len);
	Lora__Value *v = NULL;
	char err[LORA_ERRMSG_BYTES];
	int rc = ps_decode_value(copy, len, &DEC, &v, err);
	free(copy);
	if (v)
		vfree(v);
	return rc;
}

START_TEST(bad_bytes_refused)
{
	ck_assert_int_eq(decode_rc("", 0), LORA_ECORRUPT);
	ck_assert_int_eq(decode_rc("\xC9\x00", 2), LORA_ECORRUPT); /* short */
	ck_assert_int_eq(decode_rc("\x01\x01", 2), LORA_ECORRUPT); /* extra */
	ck_assert_int_eq(decode_rc("\xD6\xFF\xFF\xFF\xFF", 5),
	                 LORA_ECORRUPT); /* 4 G items claimed */
	ck_assert_int_eq(decode_rc("\xDA\x7F\xFF\xFF\xFF", 5), LORA_ECORRUPT);
	ck_assert_int_eq(decode_rc("\xD2\x7F\xFF\xFF\xFF"
	                           "ab",
	                           7),
	                 LORA_ECORRUPT);
	ck_assert_int_eq(decode_rc("\xE0", 1), LORA_ECORRUPT); /* no type */
	ck_assert_int_eq(decode_rc("\x82\xC3\x28", 3),
	                 LORA_ECORRUPT);                           /* UTF-8 */
	ck_assert_int_eq(decode_rc("\x81\x00", 2), LORA_ECORRUPT); /* NUL */
	ck_assert_int_eq(decode_rc("\xA1\x01\x01", 3), LORA_ECORRUPT); /* key */
	ck_assert_int_eq(decode_rc("\xA2\x81k\x01\x81k\x02", 7),
	                 LORA_ECORRUPT); /* repeated key */
	/* structures: a Node is no parameter, a bad Date field count */
	ck_assert_int_eq(decode_rc("\xB3\x4E\x01\x90\xA0", 5), LORA_EINVAL);
	ck_assert_int_eq(decode_rc("\xB2\x44\x01\x01", 4), LORA_ECORRUPT);
	ck_assert_int_eq(decode_rc("\xB2\x74\x01\x01", 4), LORA_ECORRUPT);
	ck_assert_int_eq(decode_rc("\xB3\x69\x00\x00\x83"
	                           "Bad",
	                           8),
	                 LORA_EINVAL); /* unknown zone */
	ck_assert_int_eq(decode_rc("\xB3\x49\x00\xCA\x3B\x9A\xCA\x00\x00", 9),
	                 LORA_ECORRUPT); /* nanos = 1e9 */
	/* nesting: 64 lists deep decode, 65 do not */
	char deep[80];
	memset(deep, 0x91, sizeof deep);
	deep[64] = 0x01;
	ck_assert_int_eq(decode_rc(deep, 65), 0);
	deep[64] = (char)0x91;
	deep[65] = 0x01;
	ck_assert_int_eq(decode_rc(deep, 66), LORA_ELIMIT);
	/* every prefix of a good message fails cleanly */
	const char good[] = "\xB3\x10\x88RETURN 1\xA1\x81p\x93\x01\xC1\x3F\xF1"
	                    "\x99\x99\x99\x99\x99\x9A\xB1\x44\x01\xA0";
	for (size_t cut = 0; cut < sizeof good - 1; cut++) {
		struct ps_message m;
		char err[LORA_ERRMSG_BYTES];
		uint8_t *copy = calloc(1, cut ? cut : 1);
		memcpy(copy, good, cut);
		ck_assert_int_ne(ps_decode_message(copy, cut, &DEC, &m, err),
		                 0);
		free(copy);
	}
	struct ps_message m;
	char err[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(ps_decode_message((const uint8_t *)good,
	                                   sizeof good - 1, &DEC, &m, err),
	                 0);
	ck_assert_int_eq(m.tag, BOLT_RUN);
	ck_assert_uint_eq(m.n_fields, 3);
	ck_assert_str_eq(m.fields[0]->string_value, "RETURN 1");
	ps_message_free(&m);
}
END_TEST

/* n lists, one inside the other, around 1 (or, empty_inside, the innermost
 * list empty): [[1]] for n = 2, [[]] with empty_inside. */
static Lora__Value *mk_nested(int n, int empty_inside)
{
	Lora__Value *v = empty_inside ? mk_list(0, NULL) : mk_int(1);
	for (int i = empty_inside ? 1 : 0; i < n; i++)
		v = mk_list(1, &v);
	return v;
}

static int put_rc(const Lora__Value *v)
{
	struct lora_buf b = {0};
	int rc = ps_put_value(&b, v, &ENC5);
	lora_buf_free(&b);
	return rc;
}

/* The same value's bytes: 0x91 (a list of one) n times around 0x01, or
 * around 0x90 (an empty list) for the innermost with empty_inside. */
static size_t nested_bytes(char *p, int n, int empty_inside)
{
	memset(p, 0x91, (size_t)n);
	if (empty_inside)
		p[n - 1] = (char)0x90;
	else
		p[n++] = 0x01;
	return (size_t)n;
}

/* RUN "RETURN 1" {p: <the bytes of nested_bytes>} {} */
static int run_rc(int n, int empty_inside)
{
	char msg[256];
	memcpy(msg, "\xB3\x10\x88RETURN 1\xA1\x81p", 14);
	size_t len = 14 + nested_bytes(msg + 14, n, empty_inside);
	msg[len++] = (char)0xA0;
	uint8_t *copy = malloc(len); /* exact size, for ASan */
	memcpy(copy, msg, len);
	struct ps_message m;
	char err[LORA_ERRMSG_BYTES];
	int rc = ps_decode_message(copy, len, &DEC, &m, err);
	free(copy);
	if (rc == 0)
		ps_message_free(&m);
	return rc;
}

/* Nesting counts lists and maps as docs/bolt.md and docs/node.md say ([[1]]
 * is 2 deep), the same as HTTP: 64 lists around a parameter's scalar are
 * taken and 65 refused whether the innermost list is empty or not; RUN's
 * parameter map is no level. Results alike: a node is the map of its
 * properties, a path no level of its own. Was: a 64-deep parameter
 * refused, a 65-deep list with an empty innermost one taken and sent. */
START_TEST(nesting_counts_lists_and_maps)
{
	char p[80];
	for (int empty = 0; empty < 2; empty++) {
		ck_assert_int_eq(run_rc(LORA_VALUE_DEPTH_MAX, empty), 0);
		ck_assert_int_eq(run_rc(LORA_VALUE_DEPTH_MAX + 1, empty),
		                 LORA_ELIMIT);
		ck_assert_int_eq(
		    decode_rc(p, nested_bytes(p, LORA_VALUE_DEPTH_MAX, empty)),
		    0);
		ck_assert_int_eq(
		    decode_rc(p,
		              nested_bytes(p, LORA_VALUE_DEPTH_MAX + 1, empty)),
		    LORA_ELIMIT);
		Lora__Value *v = mk_nested(LORA_VALUE_DEPTH_MAX, empty);
		ck_assert_int_eq(put_rc(v), 0);
		v = mk_list(1, &v);
		ck_assert_int_eq(put_rc(v), LORA_ELIMIT);
		vfree(v);
	}
	/* a point (a structure, a leaf) inside 64 lists, in a map */
	size_t n = nested_bytes(p, LORA_VALUE_DEPTH_MAX - 1, 0) - 1;
	memcpy(p + n, "\xA1\x81k\xB3\x58\xC9\x1C\x23\x01\x02", 10);
	ck_assert_int_eq(decode_rc(p, n + 10), 0);

	/* a node whose property nests 63 lists is 64 deep, in a path too */
	Lora__Value *prop =
	    mk_map1("k", mk_nested(LORA_VALUE_DEPTH_MAX - 1, 0));
	Lora__NodeValue nv = LORA__NODE_VALUE__INIT;
	nv.properties = prop->map_value->entries;
	nv.n_properties = 1;
	Lora__Value v = LORA__VALUE__INIT;
	v.kind_case = LORA__VALUE__KIND_NODE_VALUE;
	v.node_value = &nv;
	ck_assert_int_eq(put_rc(&v), 0);
	Lora__NodeValue *ns[1] = {&nv};
	Lora__PathValue path = LORA__PATH_VALUE__INIT;
	path.nodes = ns;
	path.n_nodes = 1;
	Lora__Value pv = LORA__VALUE__INIT;
	pv.kind_case = LORA__VALUE__KIND_PATH_VALUE;
	pv.path_value = &path;
	ck_assert_int_eq(put_rc(&pv), 0);
	Lora__Value *in = prop->map_value->entries[0]->value;
	prop->map_value->entries[0]->value = mk_list(1, &in);
	ck_assert_int_eq(put_rc(&v), LORA_ELIMIT);
	ck_assert_int_eq(put_rc(&pv), LORA_ELIMIT);
	vfree(prop);
}
END_TEST

START_TEST(too_many_values)
{
	/* a list of PS_VALUES_MAX + 1 nulls: refused by count, before its
	 * memory (about 80 bytes a value) is spent */
	size_t n = PS_VALUES_MAX + 1;
	char *p = malloc(n + 5);
	p[0] = (char)0xD6;
	p[1] = (char)(n >> 24);
	p[2] = (char)(n >> 16);
	p[3] = (char)(n >> 8);
	p[4] = (char)n;
	memset(p + 5, 0xC0, n);
	ck_assert_int_eq(decode_rc(p, n + 5), LORA_ELIMIT);
	free(p);
}
END_TEST

START_TEST(handshake_pick)
{
	/* the JS driver 5.28: manifest, 5.8 down to 5.0, 4.4 down to 4.2,
	 * 3.0 */
	uint8_t js[16] = {0, 0, 1, 0xFF, 0, 8, 8, 5, 0, 2, 4, 4, 0, 0, 0, 3};
	ck_assert_int_eq(bolt_handshake_pick(js), BOLT_V(5, 4));
	uint8_t old[16] = {0, 0, 4, 4, 0, 0, 3, 4, 0, 0, 0, 3, 0, 0, 0, 0};
	ck_assert_int_eq(bolt_handshake_pick(old), BOLT_V(4, 4));
	uint8_t exact[16] = {0, 0, 2, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	ck_assert_int_eq(bolt_handshake_pick(exact), BOLT_V(5, 2));
	uint8_t none[16] = {0, 0, 0, 3, 0, 2, 3, 4, 0, 0, 9, 5, 0, 0, 0, 0};
	ck_assert_int_eq(bolt_handshake_pick(none), 0);
	uint8_t range[16] = {0, 3, 9, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	ck_assert_int_eq(bolt_handshake_pick(range), 0); /* 5.9 .. 5.6 */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("packstream");
	TCase *tc = tcase_create("packstream");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, spec_bytes);
	tcase_add_test(tc, sizes_cross_boundaries);
	tcase_add_test(tc, temporal_round_trips);
	tcase_add_test(tc, points_as_structures);
	tcase_add_test(tc, datetime_forms);
	tcase_add_test(tc, graph_values_as_structures);
	tcase_add_test(tc, vectors_as_float_lists);
	tcase_add_test(tc, bad_bytes_refused);
	tcase_add_test(tc, nesting_counts_lists_and_maps);
	tcase_add_test(tc, too_many_values);
	tcase_add_test(tc, handshake_pick);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
