/* test_tck_values.c - unit tests of the TCK runner's own parts: the value
 * parser, the comparator and the Gherkin reader. A wrong comparator would
 * hide engine bugs, so each rule of the TCK's value comparison has a case
 * that must match and one that must not. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tck_feature.h"
#include "tck_values.h"

static struct tck_value *parse(const char *text)
{
	char errmsg[LORA_ERRMSG_BYTES] = "";
	struct tck_value *v = NULL;
	int rc = tck_value_parse(text, &v, errmsg);

	ck_assert_msg(rc == 0, "parse %s: %s", text, errmsg);
	return v;
}

/* A plain engine value, built from TCK text through tck_value_to_pb. */
static Lora__Value *pb(const char *text)
{
	struct tck_value *v = parse(text);
	Lora__Value *out = NULL;

	ck_assert_int_eq(tck_value_to_pb(v, &out, NULL), 0);
	tck_value_free(v);
	return out;
}

static void pb_free(Lora__Value *v)
{
	lora__value__free_unpacked(v, &lora_pb_allocator);
}

/* 1 when expected text matches the actual engine value. */
static int matches_v(const char *exp_text, const Lora__Value *act,
                     int unordered)
{
	struct tck_cmp cmp = {unordered, NULL};
	struct tck_value *exp = parse(exp_text);
	int ok = tck_value_matches(exp, act, &cmp);

	tck_value_free(exp);
	return ok;
}

/* 1 when expected text matches the plain value written as act_text. */
static int matches(const char *exp_text, const char *act_text, int unordered)
{
	Lora__Value *act = pb(act_text);
	int ok = matches_v(exp_text, act, unordered);

	pb_free(act);
	return ok;
}

START_TEST(scalars_parse)
{
	struct tck_value *v;

	v = parse(" null ");
	ck_assert_int_eq(v->kind, TCK_NULL);
	tck_value_free(v);
	v = parse("false");
	ck_assert(v->kind == TCK_BOOL && v->b == 0);
	tck_value_free(v);
	v = parse("-42");
	ck_assert(v->kind == TCK_INT && v->i == -42);
	tck_value_free(v);
	v = parse("9223372036854775807");
	ck_assert(v->kind == TCK_INT && v->i == INT64_MAX);
	tck_value_free(v);
	v = parse("1e10");
	ck_assert(v->kind == TCK_FLOAT && v->f == 1e10);
	tck_value_free(v);
	v = parse("-0.0");
	ck_assert(v->kind == TCK_FLOAT && v->f == 0.0 && signbit(v->f));
	tck_value_free(v);
	v = parse("NaN");
	ck_assert(v->kind == TCK_FLOAT && isnan(v->f));
	tck_value_free(v);
	v = parse("-Inf");
	ck_assert(v->kind == TCK_FLOAT && isinf(v->f) && v->f < 0);
	tck_value_free(v);
	v = parse(".5");
	ck_assert(v->kind == TCK_FLOAT && v->f == 0.5);
	tck_value_free(v);
}
END_TEST

START_TEST(strings_parse)
{
	struct tck_value *v;

	v = parse("'it\\'s \\\\ a\\ttab \\u00e4'");
	ck_assert_int_eq(v->kind, TCK_STRING);
	ck_assert_str_eq(v->s, "it's \\ a\ttab \xc3\xa4");
	tck_value_free(v);
	v = parse("''");
	ck_assert(v->kind == TCK_STRING && v->len == 0);
	tck_value_free(v);
	v = parse("'a|b'");
	ck_assert_str_eq(v->s, "a|b");
	tck_value_free(v);
}
END_TEST

START_TEST(structures_parse)
{
	struct tck_value *v = parse("[1, [], {a: 'x', `b c`: [2.0]}]");

	ck_assert(v->kind == TCK_LIST && v->n == 3);
	ck_assert(v->items[1]->kind == TCK_LIST && v->items[1]->n == 0);
	ck_assert(v->items[2]->kind == TCK_MAP && v->items[2]->n == 2);
	ck_assert_str_eq(v->items[2]->keys[1], "b c");
	tck_value_free(v);
	v = parse("(:A:B {name: 'n', num: 1})");
	ck_assert(v->kind == TCK_NODE && v->n_labels == 2);
	ck_assert_int_eq(v->props->n, 2);
	tck_value_free(v);
	v = parse("()");
	ck_assert(v->kind == TCK_NODE && v->n_labels == 0 && v->props->n == 0);
	tck_value_free(v);
	v = parse("[:T {k: 1}]");
	ck_assert(v->kind == TCK_REL && strcmp(v->s, "T") == 0);
	tck_value_free(v);
	v = parse("<(:A)-[:T]->(:B)<-[:U]-({x: 1})-[:V]-()>");
	ck_assert(v->kind == TCK_PATH && v->n == 7);
	ck_assert_int_eq(v->items[1]->dir, TCK_DIR_OUT);
	ck_assert_int_eq(v->items[3]->dir, TCK_DIR_IN);
	ck_assert_int_eq(v->items[5]->dir, TCK_DIR_NONE);
	tck_value_free(v);
	v = parse("<()>");
	ck_assert(v->kind == TCK_PATH && v->n == 1);
	tck_value_free(v);
}
END_TEST

START_TEST(bad_values_rejected)
{
	static const char *const bad[] = {
	    "'open", "[1, 2",
	    "{a 1}", "(:A",
	    "1 2",   "<(:A)-[:T]>(:B)>",
	    "",      "nul",
	    "[:T",   "99999999999999999999999",
	};

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct tck_value *v = NULL;
		char errmsg[LORA_ERRMSG_BYTES] = "";

		ck_assert_msg(tck_value_parse(bad[k], &v, errmsg) != 0,
		              "accepted %s", bad[k]);
		ck_assert(v == NULL);
		ck_assert(errmsg[0] != '\0');
	}
}
END_TEST

START_TEST(numbers_compare)
{
	ck_assert(matches("1", "1", 0));
	ck_assert(!matches("1", "1.0", 0));
	ck_assert(!matches("1.0", "1", 0));
	ck_assert(matches("1.0", "1.0", 0));
	ck_assert(!matches("1.5", "1.25", 0));
	ck_assert(matches("0.0", "-0.0", 0));
	ck_assert(matches("NaN", "NaN", 0));
	ck_assert(!matches("NaN", "1.0", 0));
	ck_assert(!matches("1.0", "NaN", 0));
	ck_assert(matches("-Inf", "-Inf", 0));
	ck_assert(!matches("Inf", "-Inf", 0));
	ck_assert(
	    matches("1.2635418652381264e305", "1.2635418652381264e305", 0));
}
END_TEST

START_TEST(scalars_compare)
{
	ck_assert(matches("null", "null", 0));
	ck_assert(!matches("null", "false", 0));
	ck_assert(!matches("false", "null", 0));
	ck_assert(matches("true", "true", 0));
	ck_assert(!matches("true", "false", 0));
	ck_assert(matches("'a'", "'a'", 0));
	ck_assert(!matches("'a'", "'ab'", 0));
	ck_assert(!matches("'1'", "1", 0));
	ck_assert(!matches("1", "'1'", 0));

	Lora__Value empty = LORA__VALUE__INIT; /* no kind set: null */
	ck_assert(matches_v("null", &empty, 0));
	ck_assert(matches_v("null", NULL, 0));
	ck_assert(!matches_v("0", &empty, 0));
}
END_TEST

START_TEST(lists_compare)
{
	ck_assert(matches("[1, 2]", "[1, 2]", 0));
	ck_assert(!matches("[1, 2]", "[2, 1]", 0));
	ck_assert(matches("[1, 2]", "[2, 1]", 1));
	ck_assert(!matches("[1, 1, 2]", "[1, 2, 2]", 1));
	ck_assert(matches("[[1, 2], 3]", "[3, [2, 1]]", 1));
	ck_assert(!matches("[1, 2]", "[1, 2, 3]", 1));
	ck_assert(!matches("[1]", "[1.0]", 0));
	ck_assert(matches("[]", "[]", 0));
	ck_assert(!matches("[]", "[null]", 0));
	ck_assert(!matches("[]", "{}", 0));
}
END_TEST

START_TEST(maps_compare)
{
	ck_assert(matches("{a: 1, b: 'x'}", "{b: 'x', a: 1}", 0));
	ck_assert(!matches("{a: 1}", "{a: 1, b: 2}", 0));
	ck_assert(!matches("{a: 1, b: 2}", "{a: 1}", 0));
	ck_assert(!matches("{a: 1}", "{b: 1}", 0));
	ck_assert(!matches("{a: 1}", "{a: 1.0}", 0));
	ck_assert(matches("{a: null}", "{a: null}", 0));
	ck_assert(matches("{}", "{}", 0));
}
END_TEST

/* ---- graph values ------------------------------------------------------- */

static Lora__NodeValue *node(uint64_t id, const char *labels, const char *props)
{
	Lora__NodeValue *n = lora_calloc(1, sizeof(*n));
	Lora__Value *m = pb(props);
	char *copy = lora_strdup(labels), *save = NULL;

	lora__node_value__init(n);
	n->id = id;
	n->labels = lora_calloc(8, sizeof(char *));
	for (char *w = strtok_r(copy, ":", &save); w;
	     w = strtok_r(NULL, ":", &save))
		n->labels[n->n_labels++] = lora_strdup(w);
	lora_free(copy);
	/* steal the map's entries */
	n->properties = m->map_value->entries;
	n->n_properties = m->map_value->n_entries;
	m->map_value->entries = NULL;
	m->map_value->n_entries = 0;
	pb_free(m);
	return n;
}

static Lora__RelValue *rel(uint64_t id, const char *type, uint64_t from,
                           uint64_t to, const char *props)
{
	Lora__RelValue *r = lora_calloc(1, sizeof(*r));
	Lora__Value *m = pb(props);

	lora__rel_value__init(r);
	r->id = id;
	r->type = lora_strdup(type);
	r->start_id = from;
	r->end_id = to;
	r->properties = m->map_value->entries;
	r->n_properties = m->map_value->n_entries;
	m->map_value->entries = NULL;
	m->map_value->n_entries = 0;
	pb_free(m);
	return r;
}

static Lora__Value *wrap_node(Lora__NodeValue *n)
{
	Lora__Value *v = lora_calloc(1, sizeof(*v));

	lora__value__init(v);
	v->kind_case = LORA__VALUE__KIND_NODE_VALUE;
	v->node_value = n;
	return v;
}

START_TEST(nodes_compare)
{
	Lora__Value *v = wrap_node(node(7, "B:A", "{name: 'x', n: 1}"));

	ck_assert(matches_v("(:A:B {name: 'x', n: 1})", v, 0));
	ck_assert(matches_v("(:B:A {n: 1, name: 'x'})", v, 0));
	ck_assert(!matches_v("(:A {name: 'x', n: 1})", v, 0));
	ck_assert(!matches_v("(:A:B:C {name: 'x', n: 1})", v, 0));
	ck_assert(!matches_v("(:A:B {name: 'x'})", v, 0));
	ck_assert(!matches_v("(:A:B {name: 'x', n: 1.0})", v, 0));
	ck_assert(!matches_v("[:A]", v, 0));
	ck_assert(!matches_v("{name: 'x', n: 1}", v, 0));
	pb_free(v);
	v = wrap_node(node(1, "", "{}"));
	ck_assert(matches_v("()", v, 0));
	ck_assert(!matches_v("(:A)", v, 0));
	pb_free(v);
}
END_TEST

START_TEST(relationships_compare)
{
	Lora__Value *v = lora_calloc(1, sizeof(*v));

	lora__value__init(v);
	v->kind_case = LORA__VALUE__KIND_REL_VALUE;
	v->rel_value = rel(3, "KNOWS", 1, 2, "{since: 2000}");
	ck_assert(matches_v("[:KNOWS {since: 2000}]", v, 0));
	ck_assert(!matches_v("[:KNOWS]", v, 0));
	ck_assert(!matches_v("[:LIKES {since: 2000}]", v, 0));
	ck_assert(!matches_v("(:KNOWS {since: 2000})", v, 0));
	pb_free(v);
}
END_TEST

/* <(:A {i: 1})-[:T]->(:B)<-[:U]-(:C)> with node ids 1, 2, 3. */
static Lora__Value *sample_path(void)
{
	Lora__Value *v = lora_calloc(1, sizeof(*v));
	Lora__PathValue *p = lora_calloc(1, sizeof(*p));

	lora__value__init(v);
	lora__path_value__init(p);
	v->kind_case = LORA__VALUE__KIND_PATH_VALUE;
	v->path_value = p;
	p->nodes = lora_calloc(3, sizeof(*p->nodes));
	p->rels = lora_calloc(2, sizeof(*p->rels));
	p->nodes[p->n_nodes++] = node(1, "A", "{i: 1}");
	p->nodes[p->n_nodes++] = node(2, "B", "{}");
	p->nodes[p->n_nodes++] = node(3, "C", "{}");
	p->rels[p->n_rels++] = rel(10, "T", 1, 2, "{}");
	p->rels[p->n_rels++] = rel(11, "U", 3, 2, "{}");
	return v;
}

START_TEST(paths_compare)
{
	Lora__Value *v = sample_path();
	struct lora_buf b = {0};

	ck_assert(matches_v("<(:A {i: 1})-[:T]->(:B)<-[:U]-(:C)>", v, 0));
	ck_assert(matches_v("<(:A {i: 1})-[:T]-(:B)-[:U]-(:C)>", v, 0));
	ck_assert(!matches_v("<(:A {i: 1})<-[:T]-(:B)<-[:U]-(:C)>", v, 0));
	ck_assert(!matches_v("<(:A {i: 1})-[:T]->(:B)-[:U]->(:C)>", v, 0));
	ck_assert(!matches_v("<(:A)-[:T]->(:B)<-[:U]-(:C)>", v, 0));
	ck_assert(!matches_v("<(:A {i: 1})-[:T]->(:B)>", v, 0));
	ck_assert(!matches_v("<(:A {i: 1})-[:X]->(:B)<-[:U]-(:C)>", v, 0));
	ck_assert_int_eq(tck_pb_format(v, NULL, &b), 0);
	ck_assert_str_eq(b.data, "<(:A {i: 1})-[:T]->(:B)<-[:U]-(:C)>");
	lora_buf_free(&b);
	pb_free(v);
}
END_TEST

static int fake_format(const Lora__Value *v, struct lora_buf *out)
{
	(void)v;
	return lora_buf_puts(out, "1984-10-11");
}

START_TEST(temporals_compare_as_strings)
{
	Lora__Value v = LORA__VALUE__INIT;
	Lora__Temporal t = LORA__TEMPORAL__INIT;
	struct tck_cmp with = {0, fake_format}, without = {0, NULL};
	struct tck_value *exp = parse("'1984-10-11'"), *other = parse("'1984'");

	v.kind_case = LORA__VALUE__KIND_TEMPORAL_VALUE;
	v.temporal_value = &t;
	ck_assert(tck_value_matches(exp, &v, &with));
	ck_assert(!tck_value_matches(other, &v, &with));
	ck_assert(!tck_value_matches(exp, &v, &without));
	tck_value_free(exp);
	tck_value_free(other);
}
END_TEST

START_TEST(format_round_trips)
{
	static const char *const texts[] = {
	    "null",
	    "true",
	    "-3",
	    "1.5",
	    "1.0",
	    "1e+300",
	    "NaN",
	    "'a\\'b'",
	    "[1, [2.5, 'x']]",
	    "{a: 1, b: [null]}",
	};

	for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
		Lora__Value *v = pb(texts[k]), *copy = tck_pb_copy(v);
		struct lora_buf b = {0};

		ck_assert_int_eq(tck_pb_format(copy, NULL, &b), 0);
		ck_assert_msg(matches(b.data, texts[k], 0), "%s printed as %s",
		              texts[k], b.data);
		lora_buf_free(&b);
		pb_free(v);
		pb_free(copy);
	}
}
END_TEST

START_TEST(params_reject_graph_values)
{
	struct tck_value *v = parse("(:A)");
	Lora__Value *out = NULL;
	char errmsg[LORA_ERRMSG_BYTES] = "";

	ck_assert_int_eq(tck_value_to_pb(v, &out, errmsg), LORA_EINVAL);
	ck_assert(out == NULL);
	tck_value_free(v);
}
END_TEST

/* ---- Gherkin reader ------------------------------------------------------ */

static const char sample_feature[] =
    "# comment\n"
    "#encoding: utf-8\n"
    "@featuretag\n"
    "Feature: Sample - things\n"
    "  Some description.\n"
    "\n"
    "  Background:\n"
    "    Given an empty graph\n"
    "\n"
    "  Scenario: [1] Plain #not a comment\n"
    "    And having executed:\n"
    "      \"\"\"\n"
    "      CREATE (:A)\n"
    "        CREATE (:B)\n"
    "      \"\"\"\n"
    "    When executing query:\n"
    "      \"\"\"\n"
    "      MATCH (n) RETURN n\n"
    "      \"\"\"\n"
    "    Then the result should be, in any order:\n"
    "      | n    | s          |\n"
    "      # a comment inside a table\n"
    "      | (:A) | 'a\\|b\\\\c' |\n"
    "    And no side effects\n"
    "\n"
    "  @ignore\n"
    "  Scenario Outline: [2] Outline <name>\n"
    "    When executing query:\n"
    "      \"\"\"\n"
    "      RETURN <expr> AS x\n"
    "      \"\"\"\n"
    "    Then the result should be, in any order:\n"
    "      | x        |\n"
    "      | <result> |\n"
    "\n"
    "    Examples:\n"
    "      | name | expr  | result |\n"
    "      | one  | 1     | 1      |\n"
    "      | two  | 1 + 1 | 2      |\n"
    "\n"
    "  Scenario: [3] Empty procedure table\n"
    "    And there exists a procedure test.doNothing() :: ():\n"
    "      |\n"
    "    Then a SyntaxError should be raised at compile time: X\n";

static struct tck_feature *load_sample(void)
{
	char path[] = "/tmp/tck_feature_test.XXXXXX";
	char errmsg[LORA_ERRMSG_BYTES] = "";
	struct tck_feature *f = NULL;
	int fd = mkstemp(path);

	ck_assert(fd >= 0);
	ck_assert(write(fd, sample_feature, strlen(sample_feature)) ==
	          (ssize_t)strlen(sample_feature));
	close(fd);
	ck_assert_msg(tck_feature_load(path, &f, errmsg) == 0, "%s", errmsg);
	unlink(path);
	return f;
}

START_TEST(feature_plain_scenario)
{
	struct tck_feature *f = load_sample();
	const struct tck_scenario *s;

	ck_assert_str_eq(f->name, "Sample - things");
	ck_assert_int_eq(f->n_scenarios, 4);
	s = &f->scenarios[0];
	ck_assert_str_eq(s->name, "[1] Plain #not a comment");
	ck_assert_int_eq(s->example, 0);
	ck_assert(tck_scenario_has_tag(s, "featuretag"));
	ck_assert(!tck_scenario_has_tag(s, "ignore"));
	ck_assert_int_eq(s->n_steps, 5);
	ck_assert_str_eq(s->steps[0].keyword, "Given"); /* background */
	ck_assert_str_eq(s->steps[0].text, "an empty graph");
	ck_assert_str_eq(s->steps[1].text, "having executed:");
	ck_assert_str_eq(s->steps[1].doc, "CREATE (:A)\n  CREATE (:B)");
	ck_assert_str_eq(s->steps[2].doc, "MATCH (n) RETURN n");
	ck_assert_str_eq(s->steps[3].text,
	                 "the result should be, in any order:");
	ck_assert_int_eq(s->steps[3].table.n_rows, 2);
	ck_assert_int_eq(s->steps[3].table.n_cols[1], 2);
	ck_assert_str_eq(s->steps[3].table.cells[1][1], "'a|b\\c'");
	ck_assert_str_eq(s->steps[4].text, "no side effects");
	ck_assert(!s->steps[4].has_table && !s->steps[4].doc);
	tck_feature_free(f);
}
END_TEST

START_TEST(feature_outline_expands)
{
	struct tck_feature *f = load_sample();
	const struct tck_scenario *s1 = &f->scenarios[1],
	                          *s2 = &f->scenarios[2];

	ck_assert_str_eq(s1->name, "[2] Outline one");
	ck_assert_str_eq(s2->name, "[2] Outline two");
	ck_assert_int_eq(s1->example, 1);
	ck_assert_int_eq(s2->example, 2);
	ck_assert(tck_scenario_has_tag(s1, "ignore"));
	ck_assert_int_eq(s2->n_steps, 3);
	ck_assert_str_eq(s2->steps[1].doc, "RETURN 1 + 1 AS x");
	ck_assert_str_eq(s2->steps[2].table.cells[1][0], "2");
	ck_assert_str_eq(s1->steps[2].table.cells[1][0], "1");
	tck_feature_free(f);
}
END_TEST

START_TEST(feature_empty_table_and_error_step)
{
	struct tck_feature *f = load_sample();
	const struct tck_scenario *s = &f->scenarios[3];

	ck_assert_int_eq(s->n_steps, 3);
	ck_assert(s->steps[1].has_table);
	ck_assert_int_eq(s->steps[1].table.n_rows, 1);
	ck_assert_int_eq(s->steps[1].table.n_cols[0], 0);
	ck_assert_str_eq(s->steps[2].text,
	                 "a SyntaxError should be raised at compile time: X");
	tck_feature_free(f);
}
END_TEST

START_TEST(feature_missing_file)
{
	struct tck_feature *f = NULL;
	char errmsg[LORA_ERRMSG_BYTES] = "";

	ck_assert_int_ne(tck_feature_load("/nonexistent/x.feature", &f, errmsg),
	                 0);
	ck_assert(f == NULL);
	ck_assert(strstr(errmsg, "/nonexistent/x.feature") != NULL);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tck_values");
	TCase *v = tcase_create("values"), *g = tcase_create("gherkin");

	tcase_add_test(v, scalars_parse);
	tcase_add_test(v, strings_parse);
	tcase_add_test(v, structures_parse);
	tcase_add_test(v, bad_values_rejected);
	tcase_add_test(v, numbers_compare);
	tcase_add_test(v, scalars_compare);
	tcase_add_test(v, lists_compare);
	tcase_add_test(v, maps_compare);
	tcase_add_test(v, nodes_compare);
	tcase_add_test(v, relationships_compare);
	tcase_add_test(v, paths_compare);
	tcase_add_test(v, temporals_compare_as_strings);
	tcase_add_test(v, format_round_trips);
	tcase_add_test(v, params_reject_graph_values);
	tcase_add_test(g, feature_plain_scenario);
	tcase_add_test(g, feature_outline_expands);
	tcase_add_test(g, feature_empty_table_and_error_step);
	tcase_add_test(g, feature_missing_file);
	suite_add_tcase(s, v);
	suite_add_tcase(s, g);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
