/* test_user.c - the user-management statement parser (query/user.h): what
 * parses to what, what is refused, what is left to Cypher, and that a
 * rendered statement parses back to itself. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "query.h"
#include "user.h"

static struct qry_user_stmt parse_ok(const char *text)
{
	struct qry_user_stmt s;
	char msg[LORA_ERRMSG_BYTES] = "";
	int rc = qry_user_parse(text, &s, msg);
	ck_assert_msg(rc == 0, "%s: %s (%d)", text, msg, rc);
	return s;
}

START_TEST(statements_parse)
{
	struct qry_user_stmt s = parse_ok(
	    "create user alice set password 'its' change not required;");
	(void)s;
	s = parse_ok("CREATE USER `odd name` IF NOT EXISTS SET PASSWORD "
	             "'p\\'w' CHANGE REQUIRED");
	ck_assert_int_eq(s.kind, QRY_USER_CREATE);
	ck_assert_str_eq(s.name, "odd name");
	ck_assert_str_eq(s.password.text, "p'w");
	ck_assert_int_eq(s.change_required, 1);
	ck_assert_int_eq(s.if_exists, 1);
	s = parse_ok("ALTER USER bob SET PASSWORD $pw");
	ck_assert_int_eq(s.kind, QRY_USER_ALTER);
	ck_assert_str_eq(s.password.param, "pw");
	ck_assert_int_eq(s.change_required, -1);
	s = parse_ok("ALTER USER bob SET PASSWORD CHANGE REQUIRED");
	ck_assert_int_eq(s.password.set, 0);
	ck_assert_int_eq(s.change_required, 1);
	s = parse_ok("ALTER CURRENT USER SET PASSWORD FROM 'a' TO $b");
	ck_assert_int_eq(s.kind, QRY_USER_ALTER_CURRENT);
	ck_assert_str_eq(s.old.text, "a");
	ck_assert_str_eq(s.password.param, "b");
	s = parse_ok("GRANT ROLE Writer TO bob");
	ck_assert_int_eq(s.kind, QRY_USER_GRANT);
	ck_assert_str_eq(s.role, "writer");
	s = parse_ok("REVOKE ROLES admin FROM bob");
	ck_assert_int_eq(s.kind, QRY_USER_REVOKE);
	s = parse_ok("DROP USER bob IF EXISTS");
	ck_assert_int_eq(s.kind, QRY_USER_DROP);
	ck_assert_int_eq(s.if_exists, 1);
	ck_assert_int_eq(parse_ok("SHOW USERS").kind, QRY_USER_SHOW);
	ck_assert_int_eq(parse_ok("show current user").kind,
	                 QRY_USER_SHOW_CURRENT);
	s = parse_ok("CREATE USER x SET ENCRYPTED PASSWORD '$argon2id$v=19'");
	ck_assert_int_eq(s.encrypted, 1);
}
END_TEST

START_TEST(cypher_is_left_alone)
{
	static const char *const cypher[] = {
	    "CREATE (u:User {name: 'x'})",
	    "MATCH (n) RETURN n",
	    "CREATE INDEX i FOR (n:User) ON (n.name)",
	    "SHOW INDEXES",
	    "DROP INDEX users",
	    "createuser",
	    "CREATE USERS x",
	    "SHOW CURRENT",
	    ""};
	for (size_t i = 0; i < sizeof cypher / sizeof *cypher; i++) {
		struct qry_user_stmt s;
		ck_assert_int_eq(qry_user_parse(cypher[i], &s, NULL),
		                 LORA_ENOTFOUND);
	}
}
END_TEST

START_TEST(bad_statements_are_refused)
{
	static const char *const bad[] = {
	    "CREATE USER",
	    "CREATE USER a",
	    "CREATE USER a SET PASSWORD",
	    "CREATE USER a SET PASSWORD 'unclosed",
	    "CREATE USER a SET PASSWORD 'x' CHANGE",
	    "CREATE USER a SET PASSWORD 'x' extra",
	    "GRANT ROLE wizard TO a",
	    "GRANT ROLE reader a",
	    "ALTER CURRENT USER SET PASSWORD TO 'x'",
	    "DROP USER `unclosed",
	    "CREATE USER a SET PASSWORD 42"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct qry_user_stmt s;
		char msg[LORA_ERRMSG_BYTES] = "";
		int rc = qry_user_parse(bad[i], &s, msg);
		ck_assert_msg(rc == LORA_EPARSE, "%s: %d", bad[i], rc);
		ck_assert_msg(msg[0] != '\0', "%s: no message", bad[i]);
	}
	char big[QRY_USER_PASSWORD_BYTES_MAX + 64];
	memset(big, 'p', sizeof big);
	memcpy(big, "CREATE USER a SET PASSWORD '", 28);
	strcpy(big + sizeof big - 2, "'");
	struct qry_user_stmt s;
	ck_assert_int_eq(qry_user_parse(big, &s, NULL), LORA_ELIMIT);
}
END_TEST

/* What a node forwards to the leader parses back to the same statement. */
START_TEST(render_round_trips)
{
	static const char *const stmts[] = {
	    ("CREATE USER `a b` IF NOT EXISTS SET ENCRYPTED PASSWORD "
	     "'$argon2id$x\\'y' CHANGE NOT REQUIRED"),
	    "ALTER USER c IF EXISTS SET PASSWORD CHANGE REQUIRED",
	    "ALTER CURRENT USER SET ENCRYPTED PASSWORD '$argon2id$z'",
	    "ALTER CURRENT USER SET PASSWORD FROM 'o\\\\' TO $n",
	    "ALTER USER b SET PASSWORD $ `p? q`",
	    "DROP USER d IF EXISTS",
	    "GRANT ROLE admin TO e",
	    "REVOKE ROLE reader FROM f",
	    "SHOW USERS",
	    "SHOW CURRENT USER"};
	for (size_t i = 0; i < sizeof stmts / sizeof *stmts; i++) {
		struct qry_user_stmt a = parse_ok(stmts[i]);
		struct lora_buf b = {0};
		ck_assert_int_eq(qry_user_render(&a, &b), 0);
		struct qry_user_stmt c = parse_ok(b.data);
		ck_assert_msg(memcmp(&a, &c, sizeof a) == 0, "%s -> %s",
		              stmts[i], b.data);
		lora_buf_free(&b);
	}
}
END_TEST

/* In an explicit transaction (HTTP /tx, native, Bolt) a user statement
 * is refused by name, not as a Cypher syntax error: it changes the system
 * keyspace outside any transaction. */
START_TEST(refused_in_explicit_tx)
{
	static const char *const stmts[][2] = {
	    {"SHOW USERS", "SHOW USERS"},
	    {" show current user;", "SHOW CURRENT USER"},
	    {"CREATE USER a SET PASSWORD 'x'", "CREATE USER"},
	    {"ALTER CURRENT USER SET PASSWORD FROM 'a' TO 'b'",
	     "ALTER CURRENT USER"},
	    {"DROP USER a", "DROP USER"},
	    {"GRANT ROLE writer TO a", "GRANT ROLE"},
	    {"REVOKE ROLES reader FROM a", "REVOKE ROLES"},
	    {"SHOW USERS WHERE", "SHOW USERS"}, /* bad, but a user statement */
	};
	for (size_t i = 0; i < sizeof stmts / sizeof *stmts; i++) {
		struct qry_request q = {.query = stmts[i][0], .explicit_tx = 1};
		struct qry_cursor *c = NULL;
		struct qry_error e;
		char want[256];
		snprintf(want, sizeof want,
		         "%s is an administration command: it runs only as an "
		         "auto-commit statement, not inside an explicit "
		         "transaction",
		         stmts[i][1]);
		ck_assert_int_eq(qry_open(&q, &c, &e), LORA_EINVAL);
		ck_assert_ptr_null(c);
		ck_assert_int_eq(e.code, LORA_EINVAL);
		ck_assert_str_eq(e.message, want);
	}
	char msg[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(qry_user_refuse_in_tx("MATCH (n) RETURN n", msg), 0);
	ck_assert_int_eq(qry_user_refuse_in_tx("SHOW INDEXES", msg), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("query_user");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, statements_parse);
	tcase_add_test(tc, cypher_is_left_alone);
	tcase_add_test(tc, bad_statements_are_refused);
	tcase_add_test(tc, render_round_trips);
	tcase_add_test(tc, refused_in_explicit_tx);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
