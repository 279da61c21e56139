/* test_client.c - client library and shell pieces that need no server. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

Suite *client_net_suite(void);

START_TEST(addresses_parse)
{
	char out[4][LORA_CLIENT_ADDR_BYTES];
	size_t n = 0;
	char msg[LORA_ERRMSG_BYTES] = "";
	ck_assert_int_eq(
	    lora_client_parse_addresses(
	        "127.0.0.1:4748, 127.0.0.2:4748,tcp://h:1", out, 4, &n, msg),
	    0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(out[0], "tcp://127.0.0.1:4748");
	ck_assert_str_eq(out[1], "tcp://127.0.0.2:4748");
	ck_assert_str_eq(out[2], "tcp://h:1");
	ck_assert_int_eq(lora_client_parse_addresses("", out, 4, &n, msg),
	                 LORA_EINVAL);
	ck_assert_int_eq(lora_client_parse_addresses("host", out, 4, &n, msg),
	                 LORA_EINVAL);
	ck_assert_ptr_nonnull(strstr(msg, "host:port"));
	ck_assert_int_eq(lora_client_parse_addresses("h:0", out, 4, &n, msg),
	                 LORA_EINVAL);
	ck_assert_int_eq(
	    lora_client_parse_addresses("h:70000", out, 4, &n, msg),
	    LORA_EINVAL);
	ck_assert_int_eq(lora_client_parse_addresses("h:12x", out, 4, &n, msg),
	                 LORA_EINVAL);
	ck_assert_int_eq(
	    lora_client_parse_addresses("a:1,b:1,c:1,d:1,e:1", out, 4, &n, msg),
	    LORA_EINVAL);
	ck_assert_ptr_nonnull(strstr(msg, "more than 4"));
}
END_TEST

START_TEST(retry_policy)
{
	ck_assert_int_eq(lora_retry_classify(LORA_EUNAVAILABLE, 1),
	                 LORA_RETRY_SAFE);
	ck_assert_int_eq(lora_retry_classify(LORA_ENOTLEADER, 1),
	                 LORA_RETRY_SAFE);
	ck_assert_int_eq(lora_retry_classify(LORA_EUNKNOWN_OUTCOME, 1),
	                 LORA_RETRY_SAME_ID);
	ck_assert_int_eq(lora_retry_classify(LORA_ECLOSED, 0), LORA_RETRY_SAFE);
	ck_assert_int_eq(lora_retry_classify(LORA_ECLOSED, 1),
	                 LORA_RETRY_SAME_ID);
	ck_assert_int_eq(lora_retry_classify(LORA_ETIMEOUT, 1),
	                 LORA_RETRY_SAME_ID);
	ck_assert_int_eq(lora_retry_classify(LORA_EPARSE, 1), LORA_RETRY_NO);
	ck_assert_int_eq(lora_retry_classify(LORA_ECONSTRAINT, 1),
	                 LORA_RETRY_NO);
	ck_assert_int_eq(lora_retry_classify(LORA_OK, 1), LORA_RETRY_NO);

	uint64_t seed = 42, seed2 = 42;
	for (int a = 1; a <= 12; a++) {
		int ms = lora_retry_backoff_ms(a, 10, 500, &seed);
		long full = 10L << (a - 1);
		if (full > 500)
			full = 500;
		ck_assert_int_ge(ms, full / 2);
		ck_assert_int_le(ms, full);
		/* the same seed gives the same waits */
		ck_assert_int_eq(ms, lora_retry_backoff_ms(a, 10, 500, &seed2));
	}
}
END_TEST

START_TEST(error_codes_map_back)
{
	ck_assert_int_eq(lora_err_from_code("LORA_PARSE"), LORA_EPARSE);
	ck_assert_int_eq(lora_err_from_code("LORA_NOT_LEADER"),
	                 LORA_ENOTLEADER);
	ck_assert_int_eq(lora_err_from_code("LORA_UNKNOWN_OUTCOME"),
	                 LORA_EUNKNOWN_OUTCOME);
	ck_assert_int_eq(lora_err_from_code("LORA_UNAVAILABLE"),
	                 LORA_EUNAVAILABLE);
	ck_assert_int_eq(lora_err_from_code("NO_SUCH"), LORA_EINTERNAL);
	ck_assert_int_eq(lora_err_from_code(NULL), LORA_EINTERNAL);
}
END_TEST

static int parse(struct lora_shell_opts *o, char *msg, int argc, ...)
{
	char *argv[16] = {"lora"};
	va_list ap;
	va_start(ap, argc);
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	return lora_shell_parse_args(argc, argv, o, msg);
}

START_TEST(shell_options)
{
	struct lora_shell_opts o;
	char msg[LORA_ERRMSG_BYTES] = "";
	ck_assert_int_eq(parse(&o, msg, 1), 0);
	ck_assert_ptr_null(o.addresses);
	ck_assert_int_eq(parse(&o, msg, 5, "-a", "h:1", "-c", "RETURN 1;"), 0);
	ck_assert_str_eq(o.addresses, "h:1");
	ck_assert_str_eq(o.command, "RETURN 1;");
	ck_assert_int_eq(parse(&o, msg, 7, "--address=h:2", "-f", "x.cypher",
	                       "--timeout", "250", "-q"),
	                 0);
	ck_assert_str_eq(o.addresses, "h:2");
	ck_assert_str_eq(o.file, "x.cypher");
	ck_assert_int_eq(o.timeout_ms, 250);
	ck_assert_int_eq(o.quiet, 1);
	ck_assert_int_eq(
	    parse(&o, msg, 4, "--consistency", "linearizable", "--route=any"),
	    0);
	ck_assert_int_eq(o.consistency, LORA_CONSISTENCY_LINEARIZABLE);
	ck_assert_int_eq(o.route_any, 1);
	ck_assert_int_eq(parse(&o, msg, 2, "--format=plain"), 0);
	ck_assert_int_eq(o.format, LORA_FORMAT_PLAIN);
	ck_assert_int_eq(parse(&o, msg, 3, "--format", "json"), 0);
	ck_assert_int_eq(o.format, LORA_FORMAT_JSON);
	ck_assert_int_eq(parse(&o, msg, 2, "--format=csv"), 0);
	ck_assert_int_eq(o.format, LORA_FORMAT_CSV);
	ck_assert_int_eq(parse(&o, msg, 2, "--format=xml"), LORA_EINVAL);
	ck_assert_int_eq(parse(&o, msg, 2, "--bogus"), LORA_EINVAL);
	ck_assert_ptr_nonnull(strstr(msg, "unknown option"));
	ck_assert_int_eq(parse(&o, msg, 2, "-f"), LORA_EINVAL);
	ck_assert_ptr_nonnull(strstr(msg, "needs a value"));
	ck_assert_int_eq(parse(&o, msg, 3, "--timeout", "soon"), LORA_EINVAL);
	ck_assert_int_eq(parse(&o, msg, 3, "--consistency", "strong"),
	                 LORA_EINVAL);
	ck_assert_int_eq(parse(&o, msg, 5, "-f", "a", "-c", "b"), LORA_EINVAL);
	ck_assert_int_eq(parse(&o, msg, 2, "stray"), LORA_EINVAL);
	ck_assert_int_eq(parse(&o, msg, 2, "--help"), 0);
	ck_assert_int_eq(o.help, 1);
}
END_TEST

/* --format json and csv: one line per row, CSV quoting per RFC 4180, null
 * as an empty field and "" for an empty string. */
START_TEST(rows_as_json_and_csv)
{
	const char *texts[] = {
	    "\"a,b\"", "3",  "null", "[1, \"x\"]", "{\"k\": \"q\\\"t\"}",
	    "\"\"",    "2.5"};
	Lora__Value *row[7];
	char msg[LORA_ERRMSG_BYTES];
	for (int i = 0; i < 7; i++)
		ck_assert_int_eq(lora_value_from_json(texts[i], &row[i], msg),
		                 0);
	const char *names[] = {"s", "i", "n", "l", "m", "e", "f"};
	struct lora_buf out = {0};
	ck_assert_int_eq(lora_csv_header(&out, names, 7), 0);
	ck_assert_int_eq(lora_csv_row(&out, row, 7), 0);
	ck_assert_str_eq(out.data, "s,i,n,l,m,e,f\r\n"
	                           "\"a,b\",3,,\"[1, \"\"x\"\"]\","
	                           "\"{k: \"\"q\\\"\"t\"\"}\",\"\",2.5\r\n");
	lora_buf_reset(&out);
	ck_assert_int_eq(lora_row_json(&out, names, row, 7), 0);
	ck_assert_str_eq(out.data,
	                 "{\"s\":\"a,b\",\"i\":3,\"n\":null,\"l\":[1,\"x\"],"
	                 "\"m\":{\"k\":\"q\\\"t\"},\"e\":\"\",\"f\":2.5}\n");
	lora_buf_free(&out);
	for (int i = 0; i < 7; i++)
		lora_value_free(row[i]);
}
END_TEST

struct collected {
	char stmts[8][128];
	int n;
};

static int collect(void *arg, const char *stmt)
{
	struct collected *c = arg;
	ck_assert_int_lt(c->n, 8);
	snprintf(c->stmts[c->n++], 128, "%s", stmt);
	return 0;
}

START_TEST(statements_split_on_semicolons)
{
	struct lora_stmt s = {0};
	struct collected c = {0};
	ck_assert_int_eq(lora_stmt_feed(&s, "MATCH (n)", collect, &c), 0);
	ck_assert_int_eq(lora_stmt_pending(&s), 1);
	ck_assert_int_eq(
	    lora_stmt_feed(&s, "RETURN n;  RETURN 'a;b';", collect, &c), 0);
	ck_assert_int_eq(c.n, 2);
	ck_assert_str_eq(c.stmts[0], "MATCH (n)\nRETURN n");
	ck_assert_str_eq(c.stmts[1], "RETURN 'a;b'");
	ck_assert_int_eq(lora_stmt_pending(&s), 0);
	/* comments, escaped quotes, backticks, empty statements */
	ck_assert_int_eq(lora_stmt_feed(&s, "RETURN 1 // no; end", collect, &c),
	                 0);
	ck_assert_int_eq(lora_stmt_feed(&s, "/* ; */ ;;", collect, &c), 0);
	ck_assert_int_eq(
	    lora_stmt_feed(&s, "RETURN \"x\\\";\" AS `a;b`;", collect, &c), 0);
	ck_assert_int_eq(c.n, 4);
	ck_assert_str_eq(c.stmts[2], "RETURN 1 \n/* ; */");
	ck_assert_str_eq(c.stmts[3], "RETURN \"x\\\";\" AS `a;b`");
	ck_assert_int_eq(lora_stmt_feed(&s, "RETURN 2", collect, &c), 0);
	ck_assert_str_eq(lora_stmt_rest(&s), "RETURN 2");
	lora_stmt_free(&s);
}
END_TEST

static char *fmt_json(const char *json)
{
	Lora__Value *v = NULL;
	char msg[LORA_ERRMSG_BYTES] = "";
	ck_assert_msg(lora_value_from_json(json, &v, msg) == 0, "%s: %s", json,
	              msg);
	struct lora_buf b = {0};
	ck_assert_int_eq(lora_value_format(&b, v), 0);
	lora_value_free(v);
	return lora_buf_take(&b);
}

#define CK_FMT(json, want)                                                     \
	do {                                                                   \
		char *got_ = fmt_json(json);                                   \
		ck_assert_str_eq(got_, want);                                  \
		lora_free(got_);                                               \
	} while (0)

START_TEST(params_from_json)
{
	CK_FMT("42", "42");
	CK_FMT("-7", "-7");
	CK_FMT("1.0", "1.0");
	CK_FMT("2.5", "2.5");
	CK_FMT("\"hi \\\"x\\\"\"", "\"hi \\\"x\\\"\"");
	CK_FMT("Alice", "\"Alice\""); /* a bare word is a string */
	CK_FMT("true", "true");
	CK_FMT("null", "null");
	CK_FMT("[1, \"a\", [false]]", "[1, \"a\", [false]]");
	CK_FMT("{\"name\": \"Bo\", \"age\": 3}", "{name: \"Bo\", age: 3}");
	Lora__Value *v = NULL;
	char msg[LORA_ERRMSG_BYTES] = "";
	ck_assert_int_eq(lora_value_from_json("[1,", &v, msg), LORA_EINVAL);
	ck_assert_int_eq(lora_value_from_json("12abc", &v, msg), LORA_EINVAL);

	struct lora_params p = {0};
	ck_assert_int_eq(lora_params_set(&p, "x", "1", msg), 0);
	ck_assert_int_eq(lora_params_set(&p, "y", "\"s\"", msg), 0);
	ck_assert_int_eq(lora_params_set(&p, "x", "2", msg), 0);
	ck_assert_uint_eq(p.n, 2);
	ck_assert_str_eq(p.items[1]->name, "x");
	ck_assert_int_eq(p.items[1]->value->int_value, 2);
	ck_assert_int_eq(lora_params_set(&p, "bad name", "1", msg),
	                 LORA_EINVAL);
	ck_assert_int_eq(lora_params_unset(&p, "y"), 0);
	ck_assert_int_eq(lora_params_unset(&p, "y"), LORA_ENOTFOUND);
	ck_assert_uint_eq(p.n, 1);
	lora_params_free(&p);
}
END_TEST

static char *fmt_value(const Lora__Value *v)
{
	struct lora_buf b = {0};
	ck_assert_int_eq(lora_value_format(&b, v), 0);
	return lora_buf_take(&b);
}

START_TEST(values_format_like_cypher)
{
	Lora__Temporal t = LORA__TEMPORAL__INIT;
	Lora__Value v = LORA__VALUE__INIT;
	v.kind_case = LORA__VALUE__KIND_TEMPORAL_VALUE;
	v.temporal_value = &t;
	struct {
		Lora__TemporalKind kind;
		int64_t days, nanos;
		int off;
		const char *want;
	} cases[] = {
	    {LORA__TEMPORAL_KIND__TEMPORAL_DATE, 0, 0, 0, "1970-01-01"},
	    {LORA__TEMPORAL_KIND__TEMPORAL_DATE, 19723, 0, 0, "2024-01-01"},
	    {LORA__TEMPORAL_KIND__TEMPORAL_DATE, -1, 0, 0, "1969-12-31"},
	    {LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_TIME, 0, 3723500000000LL, 0,
	     "01:02:03.5"},
	    {LORA__TEMPORAL_KIND__TEMPORAL_TIME, 0, 3600000000000LL, 3600,
	     "01:00:00+01:00"},
	    {LORA__TEMPORAL_KIND__TEMPORAL_DATETIME, 19723, 0, 0,
	     "2024-01-01T00:00:00Z"},
	    {LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_DATETIME, 19723, 1000, 0,
	     "2024-01-01T00:00:00.000001"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t.kind = cases[i].kind;
		t.epoch_days = cases[i].days;
		t.nanos_of_day = cases[i].nanos;
		t.offset_seconds = cases[i].off;
		char *got = fmt_value(&v);
		ck_assert_str_eq(got, cases[i].want);
		lora_free(got);
	}
	Lora__Temporal d = LORA__TEMPORAL__INIT;
	d.kind = LORA__TEMPORAL_KIND__TEMPORAL_DURATION;
	d.months = 14, d.days = 3, d.seconds = 3661;
	v.temporal_value = &d;
	char *got = fmt_value(&v);
	ck_assert_str_eq(got, "P1Y2M3DT1H1M1S");
	lora_free(got);

	/* a node and a path (a)-[:KNOWS]->(b) */
	char *labels[] = {"Person"};
	Lora__Value name = LORA__VALUE__INIT;
	name.kind_case = LORA__VALUE__KIND_STRING_VALUE;
	name.string_value = "Ann";
	Lora__MapEntry e = LORA__MAP_ENTRY__INIT;
	e.key = "name";
	e.value = &name;
	Lora__MapEntry *props[] = {&e};
	Lora__NodeValue a = LORA__NODE_VALUE__INIT, b = LORA__NODE_VALUE__INIT;
	a.id = 1, a.n_labels = 1, a.labels = labels;
	a.n_properties = 1, a.properties = props;
	b.id = 2;
	Lora__RelValue r = LORA__REL_VALUE__INIT;
	r.type = "KNOWS", r.start_id = 1, r.end_id = 2;
	Lora__NodeValue *nodes[] = {&a, &b};
	Lora__RelValue *rels[] = {&r};
	Lora__PathValue p = LORA__PATH_VALUE__INIT;
	p.n_nodes = 2, p.nodes = nodes, p.n_rels = 1, p.rels = rels;
	v.kind_case = LORA__VALUE__KIND_PATH_VALUE;
	v.path_value = &p;
	got = fmt_value(&v);
	ck_assert_str_eq(got, "(:Person {name: \"Ann\"})-[:KNOWS]->()");
	lora_free(got);
}
END_TEST

START_TEST(tables_align_columns)
{
	struct lora_table t = {0};
	const char *head[] = {"name", "n"};
	const char *r1[] = {"\"Zoë\"", "10"};
	const char *r2[] = {"\"Al\"", "2"};
	ck_assert_int_eq(lora_table_header(&t, head, 2), 0);
	ck_assert_int_eq(lora_table_add(&t, r1), 0);
	ck_assert_int_eq(lora_table_add(&t, r2), 0);
	struct lora_buf b = {0};
	ck_assert_int_eq(lora_table_render(&t, 0, &b), 0);
	ck_assert_str_eq(b.data, "+-------+----+\n"
	                         "| name  | n  |\n"
	                         "+-------+----+\n"
	                         "| \"Zoë\" | 10 |\n"
	                         "| \"Al\"  | 2  |\n"
	                         "+-------+----+\n");
	lora_buf_reset(&b);
	ck_assert_int_eq(lora_table_render(&t, 1, &b), 0);
	ck_assert_str_eq(b.data, "name\tn\n\"Zoë\"\t10\n\"Al\"\t2\n");
	lora_buf_free(&b);
	lora_table_free(&t);
	ck_assert_uint_eq(lora_text_width("Zoë"), 3);

	/* many rows grow the table; values go through the formatter */
	ck_assert_int_eq(lora_table_header(&t, head, 2), 0);
	Lora__Value *vals[2] = {lora_value_string("x"), lora_value_int(7)};
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(lora_table_add_values(&t, vals), 0);
	ck_assert_uint_eq(t.rows, 100);
	ck_assert_str_eq(t.cells[2 * 100 + 1], "7");
	lora_value_free(vals[0]);
	lora_value_free(vals[1]);
	lora_table_free(&t);
}
END_TEST

START_TEST(status_table_from_json)
{
	const char *json =
	    "{\"leader\": 2, \"term\": 5, \"nodes\": ["
	    "{\"id\": 1, \"address\": \"127.0.0.1:4747\", \"role\": "
	    "\"follower\", \"term\": 5, \"commitIndex\": 10, \"appliedIndex\": "
	    "9, \"lastContactMs\": 12},"
	    "{\"id\": 2, \"address\": \"127.0.0.2:4747\", \"role\": "
	    "\"leader\", "
	    "\"term\": 5, \"commitIndex\": 10, \"appliedIndex\": 10, "
	    "\"lastContactMs\": 0}]}";
	struct lora_table t = {0};
	struct lora_buf b = {0};
	char msg[LORA_ERRMSG_BYTES] = "";
	ck_assert_int_eq(lora_status_table(json, &t, &b, msg), 0);
	ck_assert_str_eq(b.data, "leader: 2, term: 5\n");
	ck_assert_uint_eq(t.rows, 2);
	ck_assert_str_eq(t.cells[7 + 2], "follower");
	ck_assert_str_eq(t.cells[14 + 2], "leader");
	ck_assert_str_eq(t.cells[7 + 5], "9");
	lora_table_free(&t);
	lora_buf_reset(&b);
	ck_assert_int_eq(
	    lora_status_table("{\"leader\": null, \"nodes\": []}", &t, &b, msg),
	    0);
	ck_assert_str_eq(b.data, "leader: none, term: -\n");
	lora_table_free(&t);
	char leader[64] = "";
	ck_assert_int_eq(
	    lora_status_leader_http(json, leader, sizeof(leader), msg), 0);
	ck_assert_str_eq(leader, "127.0.0.2:4747");
	ck_assert_int_eq(lora_status_leader_http("{\"leader\": null, "
	                                         "\"nodes\": []}",
	                                         leader, sizeof(leader), msg),
	                 LORA_EUNAVAILABLE);
	ck_assert_int_eq(lora_status_table("[1]", &t, &b, msg), LORA_EINVAL);
	ck_assert_int_eq(lora_status_table("{", &t, &b, msg), LORA_EINVAL);
	lora_buf_free(&b);
}
END_TEST

static Suite *client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("unit");
	tcase_add_test(tc, addresses_parse);
	tcase_add_test(tc, retry_policy);
	tcase_add_test(tc, error_codes_map_back);
	tcase_add_test(tc, shell_options);
	tcase_add_test(tc, rows_as_json_and_csv);
	tcase_add_test(tc, statements_split_on_semicolons);
	tcase_add_test(tc, params_from_json);
	tcase_add_test(tc, values_format_like_cypher);
	tcase_add_test(tc, tables_align_columns);
	tcase_add_test(tc, status_table_from_json);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(client_suite());
	srunner_add_suite(sr, client_net_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
