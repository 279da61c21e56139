/* test_vecorder.c - the VectorTopK rewrite (query/vecorder.c): MATCH (n:L)
 * ... ORDER BY vector.similarity.*(n.p, q) LIMIT k gives the answer of the
 * generic sort on random data (ties, zero vectors, missing vectors, lists,
 * ASC / DESC, WHERE, SKIP, more keys), EXPLAIN names the operator, and the
 * statement's own writes and pending batches send it back to the generic
 * path. The generic answer comes from the same query with a `WITH n`
 * between the MATCH and the projection, which the rewrite does not take.
 * Seeds are printed and taken from LORA_SEED. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qint.h" /* vto_answers_total */
#include "qtest_store.h"

#define DIM 6

static uint64_t rng;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Runs q over the store (and the pending batch, when not NULL) with $q
 * the list qv (DIM numbers; NULL: no parameters); renders the rows. */
static void run_q(const char *q, const double *qv, int mode,
                  const Lora__MutationBatch *pending, struct qtest_result *r)
{
	Lora__Value xs[DIM], *xp[DIM], lv;
	Lora__ValueList l;
	Lora__MapEntry e, *ep = &e;
	Lora__ValueMap m;
	for (int i = 0; qv && i < DIM; i++) {
		lora__value__init(&xs[i]);
		xs[i].kind_case = LORA__VALUE__KIND_FLOAT_VALUE;
		xs[i].float_value = qv[i];
		xp[i] = &xs[i];
	}
	lora__value_list__init(&l);
	l.n_items = DIM;
	l.items = xp;
	lora__value__init(&lv);
	lv.kind_case = LORA__VALUE__KIND_LIST_VALUE;
	lv.list_value = &l;
	lora__map_entry__init(&e);
	e.key = "q";
	e.value = &lv;
	lora__value_map__init(&m);
	m.n_entries = 1;
	m.entries = &ep;
	qtest_run(q, qv ? &m : NULL, mode, pending, r);
}

static void ok(const char *q)
{
	struct qtest_result r;
	run_q(q, NULL, QRY_RUN, NULL, &r);
	ck_assert_msg(r.code == 0, "%s: %s", q, r.err.message);
}

static void seed(void)
{
	const char *s = getenv("LORA_SEED");
	rng = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
	if (!rng)
		rng = 1;
	printf("test_vecorder: LORA_SEED=%llu\n", (unsigned long long)rng);
}

/* a coordinate from a few values, so that equal vectors and equal
 * scores are common */
static int coord(void)
{
	return (int)(rnd() % 5) - 2;
}

/* n nodes :V {i, g, v}: mostly FLOAT32 vectors, some zero vectors, some
 * without v, some with v a list (scored by the generic expression when
 * lists are allowed); and :W nodes that must never show up */
static void load(int n, int lists)
{
	char q[512];
	for (int i = 0; i < n; i++) {
		int kind = (int)(rnd() % 10);
		int len = 0;
		len +=
		    snprintf(q + len, sizeof q - len,
		             "CREATE (:V {i: %d, g: %d", i, (int)(rnd() % 4));
		if (kind != 0) { /* 0: no vector */
			int c[DIM];
			for (int d = 0; d < DIM; d++)
				c[d] = kind == 1 ? 0 : coord();
			const char *pre = lists && kind == 2 ? "" : "vector(";
			len +=
			    snprintf(q + len, sizeof q - len, ", v: %s[", pre);
			for (int d = 0; d < DIM; d++)
				len += snprintf(q + len, sizeof q - len,
				                "%s%d.%d", d ? ", " : "", c[d],
				                (int)(rnd() % 10));
			len += snprintf(q + len, sizeof q - len, "]%s",
			                pre[0] ? ", 6, FLOAT32)" : "");
		}
		snprintf(q + len, sizeof q - len, "})");
		ok(q);
	}
	ok("CREATE (:W {i: -1, v: vector([1, 1, 1, 1, 1, 1], 6, FLOAT32)})");
}

/* the query with and without the rewrite: the same rows (or the same
 * error), and the rewrite answered (when `used`) */
static void same(const char *match, const char *rest, const double *qv,
                 int used)
{
	char fast[512], slow[512];
	snprintf(fast, sizeof fast, "%s %s", match, rest);
	snprintf(slow, sizeof slow, "%s WITH p %s", match, rest);
	struct qtest_result a, b;
	uint64_t before = vto_answers_total();
	run_q(fast, qv, QRY_RUN, NULL, &a);
	uint64_t after = vto_answers_total();
	run_q(slow, qv, QRY_RUN, NULL, &b);
	ck_assert_msg(vto_answers_total() == after, "%s: rewritten", slow);
	ck_assert_msg(a.code == b.code, "%s: code %d (%s) vs %d (%s)", fast,
	              a.code, a.err.message, b.code, b.err.message);
	ck_assert_msg(!strcmp(a.text, b.text), "%s:\n%s\nvs generic\n%s", fast,
	              a.text, b.text);
	if (used)
		ck_assert_msg(after > before, "%s: not rewritten", fast);
}

static const char *const forms[] = {
    "RETURN p.i AS i, vector.similarity.%s(p.v, $q) AS s ORDER BY s %s "
    "%s LIMIT %d",
    "RETURN p.i AS i ORDER BY vector.similarity.%s($q, p.v) %s %s "
    "LIMIT %d",
    "RETURN p.i AS i, vector.similarity.%s(p.v, $q) AS s ORDER BY s %s, "
    "p.g DESC %s LIMIT %d",
    "WITH p, vector.similarity.%s(p.v, $q) AS s ORDER BY s %s %s LIMIT "
    "%d RETURN p.i AS i, s",
};

static void random_cases(void)
{
	static const char *const wh[] = {"", "WHERE p.g <> 1",
	                                 "WHERE p.i % 7 = 3", "WHERE p.g = 9"};
	for (int round = 0; round < 24; round++) {
		double qv[DIM];
		for (int d = 0; d < DIM; d++)
			qv[d] = coord() + (double)(rnd() % 10) / 10;
		const char *fn = rnd() % 2 ? "cosine" : "euclidean";
		const char *dir = rnd() % 2 ? "DESC" : "ASC";
		const char *form = forms[rnd() % 4];
		char skip[32] = "";
		if (rnd() % 2)
			snprintf(skip, sizeof skip, "SKIP %d",
			         (int)(rnd() % 30));
		char rest[400], match[128];
		snprintf(rest, sizeof rest, form, fn, dir, skip,
		         1 + (int)(rnd() % 25));
		snprintf(match, sizeof match, "MATCH (p:V) %s", wh[rnd() % 4]);
		same(match, rest, qv, 1);
	}
}

START_TEST(test_same_answers)
{
	seed();
	load(300, 0);
	random_cases();
	/* a zero query vector: every cosine is null */
	double z[DIM] = {0};
	same("MATCH (p:V)",
	     "RETURN p.i AS i ORDER BY vector.similarity.cosine(p.v, $q) "
	     "DESC LIMIT 5",
	     z, 1);
}
END_TEST

/* nodes whose v is a list, not a vector, are scored as the generic
 * expression scores them */
START_TEST(test_same_answers_lists)
{
	seed();
	load(200, 1);
	random_cases();
}
END_TEST

/* Vectors that are permutations of one another score the same in exact
 * arithmetic and differ in the last bits by the order the sums are added
 * in: the cut between them falls where the generic sort puts it only when
 * the rewrite adds as vector.similarity.cosine does. */
START_TEST(test_rounding)
{
	seed();
	char q[512];
	int id = 0;
	for (int g = 0; g < 30; g++) {
		double c[DIM];
		for (int d = 0; d < DIM; d++)
			c[d] = (double)(rnd() % 10000000) / 1e7;
		for (int perm = 0; perm < 6; perm++) {
			int len =
			    snprintf(q, sizeof q,
			             "CREATE (:V {i: %d, v: vector([", id++);
			for (int d = 0; d < DIM; d++)
				len += snprintf(q + len, sizeof q - len,
				                "%s%.7f", d ? ", " : "",
				                c[(d + perm) % DIM]);
			snprintf(q + len, sizeof q - len, "], 6, FLOAT32)})");
			ok(q);
		}
	}
	double ones[DIM] = {0.1, 0.1, 0.1, 0.1, 0.1, 0.1};
	char rest[256];
	for (int k = 1; k <= 60; k++) {
		snprintf(
		    rest, sizeof rest,
		    "RETURN p.i AS i, vector.similarity.cosine(p.v, $q) AS "
		    "s ORDER BY s %s LIMIT %d",
		    k % 2 ? "DESC" : "ASC", k);
		same("MATCH (p:V)", rest, ones, 1);
	}
}
END_TEST

START_TEST(test_explain)
{
	ok("CREATE (:V {i: 1, v: vector([1, 0, 0, 0, 0, 0], 6, FLOAT32)})");
	double qv[DIM] = {1, 0, 0, 0, 0, 0};
	struct qtest_result r;
	run_q("MATCH (p:V) RETURN p.i AS i ORDER BY "
	      "vector.similarity.cosine(p.v, $q) DESC LIMIT 3",
	      qv, QRY_EXPLAIN, NULL, &r);
	ck_assert_int_eq(r.code, 0);
	ck_assert_msg(strstr(r.plan, "VectorTopK(:V.v, cosine DESC)"), "%s",
	              r.plan);
	/* no LIMIT, a row-dependent vector, an aggregation: not rewritten */
	static const char *const no[] = {
	    "MATCH (p:V) RETURN p.i AS i ORDER BY "
	    "vector.similarity.cosine(p.v, $q) DESC",
	    "MATCH (p:V) RETURN p.i AS i ORDER BY "
	    "vector.similarity.cosine(p.v, p.v) DESC LIMIT 3",
	    "MATCH (p:V) RETURN count(*) AS c ORDER BY c LIMIT 3",
	    "MATCH (p:V) RETURN DISTINCT p.i AS i ORDER BY "
	    "vector.similarity.cosine(p.v, $q) DESC LIMIT 3"};
	for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
		run_q(no[i], qv, QRY_EXPLAIN, NULL, &r);
		ck_assert_int_eq(r.code, 0);
		ck_assert_msg(!strstr(r.plan, "VectorTopK"), "%s: %s", no[i],
		              r.plan);
	}
	/* an index that serves the WHERE: the seek, not the rewrite */
	ok("CREATE INDEX vi FOR (p:V) ON (p.i)");
	run_q("MATCH (p:V) WHERE p.i = 1 RETURN p.i AS i ORDER BY "
	      "vector.similarity.cosine(p.v, $q) DESC LIMIT 3",
	      qv, QRY_EXPLAIN, NULL, &r);
	ck_assert_msg(!strstr(r.plan, "VectorTopK"), "%s", r.plan);
}
END_TEST

/* PROFILE plans the rewrite in a subquery run per row, the index
 * catalogue loaded while it does (review s19-a F1: the catalogue went
 * into the memory a run's operators are built in and given back with
 * them; the next row read it freed: ASan's use-after-poison, a segfault
 * without it). */
START_TEST(test_profile_per_row)
{
	ok("CREATE INDEX FOR (d:Doc) ON (d.k)");
	ok("UNWIND range(1, 5) AS i CREATE (:Doc {k: i % 2, v: [1.0 * i, "
	   "1.0]})");
	struct qtest_result r;
	run_q("PROFILE MATCH (d:Doc) WHERE d.k = 1 RETURN d.k AS k ORDER BY "
	      "vector.similarity.cosine(d.v, [1.0, 0.0]) DESC LIMIT 2",
	      NULL, QRY_PROFILE, NULL, &r);
	ck_assert_msg(r.code == 0, "%s", r.err.message);
	run_q("PROFILE UNWIND [1, 0, 1] AS x CALL { WITH x MATCH (d:Doc) "
	      "WHERE d.k = x RETURN d.k AS k ORDER BY "
	      "vector.similarity.cosine(d.v, [1.0, 0.0]) DESC LIMIT 1 } "
	      "RETURN x, k",
	      NULL, QRY_PROFILE, NULL, &r);
	ck_assert_msg(r.code == 0, "%s", r.err.message);
}
END_TEST

/* The statement's own writes and pending batches are seen: the rewrite
 * steps aside. A vector of another dimension: the generic error. */
START_TEST(test_fallback)
{
	ok("UNWIND range(1, 20) AS i CREATE (:V {i: i, v: vector([i, 1, 0, "
	   "0, 0, 0], 6, FLOAT32)})");
	double qv[DIM] = {0, 1, 0, 0, 0, 0};
	const char *top = "MATCH (p:V) RETURN p.i AS i ORDER BY "
	                  "vector.similarity.cosine(p.v, $q) DESC LIMIT 2";
	struct qtest_result r;
	uint64_t n0 = vto_answers_total();
	run_q(top, qv, QRY_RUN, NULL, &r);
	ck_assert_str_eq(r.text, "1\n2\n");
	ck_assert_uint_gt(vto_answers_total(), n0);
	/* a write before the MATCH in the same statement: a writing
	 * statement runs eager, and eager pipelines never plan the top-k
	 * (pipe.c build_part), so this shape cannot reach vto_pick's
	 * touched-nodes check; it shows the eager path answers */
	n0 = vto_answers_total();
	run_q("CREATE (:V {i: 100, v: vector([0, 1, 0, 0, 0, 0], 6, "
	      "FLOAT32)}) WITH 1 AS one MATCH (p:V) RETURN p.i AS i ORDER BY "
	      "vector.similarity.cosine(p.v, $q) DESC LIMIT 2",
	      qv, QRY_RUN, NULL, &r);
	ck_assert_msg(r.code == 0, "%s", r.err.message);
	ck_assert_str_eq(r.text, "100\n1\n");
	ck_assert_uint_eq(vto_answers_total(), n0);
	/* a pending batch (a write proposed, not applied yet): a read, so
	 * the top-k is planned, and the batch's SET of node 100 (touched,
	 * its stored vector stale) is what vto_pick's touched-nodes check
	 * sees; without that check the answer is "1\n100\n" */
	struct qtest_pending pb;
	qtest_pending_open("MATCH (p:V {i: 100}) SET p.v = vector([1, 0, 0, 0, "
	                   "0, 0], 6, FLOAT32) CREATE (:V {i: 200, v: "
	                   "vector([0, 2, 0, 0, 0, 0], 6, FLOAT32)})",
	                   &pb);
	n0 = vto_answers_total();
	run_q(top, qv, QRY_RUN, pb.batch, &r);
	ck_assert_msg(r.code == 0, "%s", r.err.message);
	ck_assert_str_eq(r.text, "200\n1\n");
	ck_assert_uint_eq(vto_answers_total(), n0);
	qtest_pending_close(&pb);
	/* without the batch: the stored state, rewritten */
	run_q(top, qv, QRY_RUN, NULL, &r);
	ck_assert_str_eq(r.text, "100\n1\n");
	ck_assert_uint_gt(vto_answers_total(), n0);
	/* another dimension: the generic error */
	ok("CREATE (:V {i: 300, v: vector([1, 2, 3], 3, FLOAT32)})");
	run_q(top, qv, QRY_RUN, NULL, &r);
	ck_assert_int_eq(r.code, LORA_EVECTOR);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vecorder");
	TCase *t = tcase_create("vecorder");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_same_answers);
	tcase_add_test(t, test_same_answers_lists);
	tcase_add_test(t, test_rounding);
	tcase_add_test(t, test_explain);
	tcase_add_test(t, test_fallback);
	tcase_add_test(t, test_profile_per_row);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? 1 : 0;
}
