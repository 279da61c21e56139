/* test_load.c - LOAD CSV: the record reader as a table of byte inputs
 * (fed whole and one byte at a time), then the clause against a real
 * store: quoting, headers (a duplicated one refused), empty fields, a bad
 * row's line number, the field limit, a megabyte of blank lines, paths
 * that escape the import directory, percent escapes, a FIFO, socket or
 * directory refused without blocking, a missing file, a file closed when
 * a read stops early, and LOAD CSV feeding CREATE. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../query/csv.h"
#include "qtest_store.h"

/* ---- the reader -------------------------------------------------------- */

struct csv_case {
	const char *name, *in;
	char term;
	const char *want; /* records as "a|b;c|d;" or "ERR@line" */
};

static const struct csv_case cases[] = {
    {"plain", "a,b\nc,d\n", ',', "a|b;c|d;"},
    {"no final newline", "a,b\nc,d", ',', "a|b;c|d;"},
    {"crlf", "a,b\r\nc,d\r\n", ',', "a|b;c|d;"},
    {"bom", "\xEF\xBB\xBFx,y\n", ',', "x|y;"},
    {"quoted terminator", "\"a,b\",c\n", ',', "a,b|c;"},
    {"doubled quote", "\"say \"\"hi\"\"\",x\n", ',', "say \"hi\"|x;"},
    {"newline in quotes", "\"l1\nl2\",x\ny,z\n", ',', "l1\nl2|x;y|z;"},
    {"crlf in quotes", "\"l1\r\nl2\"\r\n", ',', "l1\r\nl2;"},
    {"empty fields", "a,,c\n,\n", ',', "a||c;|;"},
    {"blank lines skipped", "a\n\n\r\nb\n", ',', "a;b;"},
    {"tab terminator", "a\tb,c\n", '\t', "a|b,c;"},
    {"empty input", "", ',', ""},
    {"only bom", "\xEF\xBB\xBF", ',', ""},
    {"quote inside plain", "a\"b,c\n", ',', "a\"b|c;"},
    {"unterminated quote", "a\n\"open,x\ny\n", ',', "a;ERR@2"},
    {"text after quote", "a\nb\n\"q\"x,y\n", ',', "a;b;ERR@3"},
    {"bare cr", "a\rb\n", ',', "ERR@1"},
    {"error line after quoted newline", "\"a\nb\"\nc\n\"d\"e\n", ',',
     "a\nb;c;ERR@4"},
    {"error names the record's first line", "a\n\"x\ny\"z\n", ',', "a;ERR@2"},
    {"blank lines before a split record", "a\n\n\n\"b\nc\"\n", ',', "a;b\nc;"},
};

/* runs the reader over in, offering bytes `step` at a time (0: all) */
static void run_reader(const struct csv_case *k, size_t step, char *got,
                       size_t cap)
{
	struct csv_reader *r = malloc(sizeof(*r));
	csv_init(r, k->term);
	size_t n = strlen(k->in), pos = 0, avail = step ? 0 : n;
	char *text = malloc(n + 1);
	got[0] = 0;
	for (;;) {
		size_t used;
		int eof = pos + avail >= n;
		int rc = csv_next(r, k->in + pos, avail, eof, text, &used);
		if (rc == CSV_MORE) {
			ck_assert_msg(!eof, "%s: MORE at eof", k->name);
			pos += used; /* blank lines before a partial record */
			avail -= used;
			avail += step;
			if (pos + avail > n)
				avail = n - pos;
			continue;
		}
		if (rc == CSV_ERROR) {
			snprintf(got + strlen(got), cap - strlen(got),
			         "ERR@%llu", (unsigned long long)r->err_line);
			break;
		}
		pos += used;
		avail -= used;
		if (rc == CSV_END)
			break;
		for (size_t j = 0; j < r->nf; j++)
			snprintf(got + strlen(got), cap - strlen(got), "%s%.*s",
			         j ? "|" : "", (int)r->f[j].len,
			         text + r->f[j].off);
		strncat(got, ";", cap - strlen(got) - 1);
	}
	free(text);
	free(r);
}

START_TEST(reader_table)
{
	char got[512];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		run_reader(&cases[i], 0, got, sizeof got);
		ck_assert_msg(strcmp(got, cases[i].want) == 0,
		              "%s (whole): got '%s' want '%s'", cases[i].name,
		              got, cases[i].want);
		run_reader(&cases[i], 1, got, sizeof got);
		ck_assert_msg(strcmp(got, cases[i].want) == 0,
		              "%s (bytewise): got '%s' want '%s'",
		              cases[i].name, got, cases[i].want);
	}
}
END_TEST

/* ---- the clause -------------------------------------------------------- */

static char imp[300];

/* the shared store fixture plus the import directory LOAD CSV reads */
static void setup_load(void)
{
	setup();
	snprintf(imp, sizeof imp, "%s/import", dir);
	ck_assert_int_eq(mkdir(imp, 0700), 0);
}

static void put_file(const char *name, const char *body)
{
	char p[400];
	snprintf(p, sizeof p, "%s/%s", imp, name);
	FILE *f = fopen(p, "wb");
	ck_assert_ptr_nonnull(f);
	fputs(body, f);
	fclose(f);
}

/* runs q; every row's values (toString-like, via qry_value_format, with
 * null as "null") joined as "a,b;c,d;" in out. Returns the error code. */
static int run(const char *q, const char *import_dir, char *out, size_t cap,
               struct qry_error *err)
{
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	struct qry_request req = {
	    .query = q, .view = v, .import_dir = import_dir};
	qry_limits_init(&req.limits);
	struct qry_cursor *cur;
	int rc = qry_open(&req, &cur, err);
	out[0] = 0;
	if (!rc && qry_cursor_batch(cur)) {
		char em[LORA_ERRMSG_BYTES];
		ck_assert_int_eq(
		    sto_apply(st, ++applied, qry_cursor_batch(cur), em), 0);
	}
	const char *const *cols;
	size_t nc = rc ? 0 : qry_cursor_columns(cur, &cols);
	while (!rc) {
		const Lora__Value *const *row;
		int done;
		rc = qry_cursor_next(cur, &row, &done, err);
		if (rc || done)
			break;
		struct lora_buf b = {0};
		for (size_t j = 0; j < nc; j++) {
			if (j)
				lora_buf_putc(&b, ',');
			if (row[j]->kind_case == LORA__VALUE__KIND__NOT_SET ||
			    row[j]->kind_case == LORA__VALUE__KIND_NULL_VALUE)
				lora_buf_puts(&b, "null");
			else
				qry_value_format(row[j], &b);
		}
		lora_buf_putc(&b, ';');
		strncat(out, b.data, cap - strlen(out) - 1);
		lora_buf_free(&b);
	}
	qry_cursor_free(cur);
	sto_view_close(v);
	return rc;
}

/* q over the import directory fails with code and a message holding
 * want; out gets the rows handed out before the error. */
static void fails_with(const char *q, int code, const char *want, char *out,
                       size_t cap)
{
	struct qry_error e;
	int rc = run(q, imp, out, cap, &e);
	ck_assert_msg(rc == code && strstr(e.message, want),
	              "%s: rc %d (want %d): %s", q, rc, code,
	              rc ? e.message : out);
}

START_TEST(load_lists_and_quoting)
{
	put_file("a.csv",
	         "1,\"x,y\",\"he said \"\"no\"\"\"\r\n2,,\"multi\nline\"\r\n");
	char out[512];
	struct qry_error e;
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///a.csv' AS r "
	                     "RETURN r[0], r[1], r[2], size(r)",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1,x,y,he said \"no\",3;2,,multi\nline,3;");
	/* the other accepted URL forms, and a field terminator */
	put_file("semi.csv", "a;b\n");
	ck_assert_int_eq(run("LOAD CSV FROM 'file:/semi.csv' AS r "
	                     "FIELDTERMINATOR ';' RETURN r[1]",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "b;");
	ck_assert_int_eq(run("LOAD CSV FROM 'file://semi.csv' AS r RETURN r",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "['a;b'];");
	/* EXPLAIN plans without opening the file; a bad terminator is a
	 * parse error */
	ck_assert_int_eq(run("EXPLAIN LOAD CSV FROM 'file:///none.csv' AS r "
	                     "RETURN r",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///semi.csv' AS r "
	                     "FIELDTERMINATOR ';;' RETURN r",
	                     imp, out, sizeof out, &e),
	                 LORA_EPARSE);
	/* the reader works on bytes: a two-byte UTF-8 character is refused
	 * with a message that says so */
	fails_with("LOAD CSV FROM 'file:///semi.csv' AS r "
	           "FIELDTERMINATOR '\xC2\xA7' RETURN r",
	           LORA_EPARSE, "one ASCII character (a single byte)", out,
	           sizeof out);
}
END_TEST

START_TEST(load_headers)
{
	put_file("p.csv",
	         "\xEF\xBB\xBFid,name,city\n1,Ann,\n2,\"\",Oslo\n3,Bo\n");
	char out[512];
	struct qry_error e;
	ck_assert_int_eq(
	    run("LOAD CSV WITH HEADERS FROM 'file:///p.csv' AS r "
	        "RETURN toInteger(r.id) + 1, r.name, r.city, keys(r)",
	        imp, out, sizeof out, &e),
	    0);
	/* unquoted empty: null; quoted empty: ""; a short row: null */
	ck_assert_str_eq(out, "2,Ann,null,['id', 'name', 'city'];"
	                      "3,,Oslo,['id', 'name', 'city'];"
	                      "4,Bo,null,['id', 'name', 'city'];");
}
END_TEST

/* a header naming a column twice would drop all but one of them from
 * every map: refused, as lora-import refuses it */
START_TEST(load_duplicate_headers)
{
	put_file("dup.csv", "id,name,id\n1,a,2\n");
	char out[512];
	struct qry_error e;
	fails_with("LOAD CSV WITH HEADERS FROM 'file:///dup.csv' AS r RETURN r",
	           LORA_EINVAL,
	           "file:///dup.csv line 1: header `id` in columns 1 and 3",
	           out, sizeof out);
	ck_assert_str_eq(out, "");
	/* without headers the same file is just rows */
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///dup.csv' AS r RETURN r",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "['id', 'name', 'id'];['1', 'a', '2'];");
}
END_TEST

START_TEST(load_bad_row_names_line)
{
	put_file("bad.csv", "a,b\n\"ok\nstill\",c\nd,\"e\"f\n");
	char out[512];
	fails_with("LOAD CSV FROM 'file:///bad.csv' AS r RETURN r", LORA_EINVAL,
	           "file:///bad.csv line 4", out, sizeof out);
	/* the rows before it were handed out (a read streams) */
	ck_assert_str_eq(out, "['a', 'b'];['ok\nstill', 'c'];");
	put_file("open.csv", "a\n\"never closed\n");
	fails_with("LOAD CSV FROM 'file:///open.csv' AS r RETURN r",
	           LORA_EINVAL, "line 2: unterminated", out, sizeof out);
	/* after a quoted field spanning lines the error names the line the
	 * record starts on, the one linenumber() gives for it */
	put_file("after.csv", "h\n\"x\ny\"z\n");
	fails_with("LOAD CSV FROM 'file:///after.csv' AS r RETURN r",
	           LORA_EINVAL,
	           "file:///after.csv line 2: unexpected character after a "
	           "closing quote",
	           out, sizeof out);
	put_file("cr.csv", "h\n\"x\ny\",a\rb\n");
	fails_with("LOAD CSV FROM 'file:///cr.csv' AS r RETURN r", LORA_EINVAL,
	           "file:///cr.csv line 2: bare carriage return", out,
	           sizeof out);
}
END_TEST

/* more fields than CSV_FIELDS_MAX is a limit (LORA_ELIMIT) naming it and
 * the record's first line; exactly the limit is read */
START_TEST(load_field_limit)
{
	struct lora_buf b = {0};
	lora_buf_puts(&b, "h\n\"multi\nline\"");
	for (int i = 1; i < CSV_FIELDS_MAX; i++)
		lora_buf_printf(&b, ",%d", i);
	lora_buf_puts(&b, "\n");
	put_file("max.csv", b.data + 2);
	b.data[b.len - 1] = ',';
	lora_buf_puts(&b, "more\n");
	put_file("wide.csv", b.data);
	lora_buf_free(&b);
	char out[512];
	struct qry_error e;
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///max.csv' AS r "
	                     "RETURN size(r), r[4095]",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "4096,4095;");
	/* wide.csv: a header line, then that record with one more field */
	fails_with("LOAD CSV FROM 'file:///wide.csv' AS r RETURN size(r)",
	           LORA_ELIMIT,
	           "file:///wide.csv line 2: record with more than 4096 fields",
	           out, sizeof out);
	ck_assert_str_eq(out, "1;");
}
END_TEST

/* blank lines are skipped however many there are: more than a record's
 * byte limit of them is no record at all */
START_TEST(load_many_blank_lines)
{
	size_t nblank = 1100000;
	char *body = malloc(nblank + 8);
	memcpy(body, "a\n", 2);
	memset(body + 2, '\n', nblank);
	memcpy(body + 2 + nblank, "b\n", 3);
	put_file("blank.csv", body);
	body[2 + nblank] = 0;
	put_file("blankend.csv", body);
	free(body);
	char out[512];
	struct qry_error e;
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///blank.csv' AS r "
	                     "RETURN r[0], linenumber()",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "a,1;b,1100002;");
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///blankend.csv' AS r "
	                     "RETURN r[0], linenumber()",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "a,1;");
}
END_TEST

/* %XX needs two hex digits; %00 would end the path early */
START_TEST(load_percent_escapes)
{
	put_file("in.csv", "s\n");
	put_file("A b.csv", "ab\n");
	char out[512];
	struct qry_error e;
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///%41%20b.csv' AS r "
	                     "RETURN r[0]",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "ab;");
	const char *bad[] = {
	    "file:///in.csv%00.txt", "file:///%6gn.csv", "file:///% 1.csv",
	    "file:///in.csv%",       "file:///in.csv%4",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char q[256];
		snprintf(q, sizeof q, "LOAD CSV FROM '%s' AS r RETURN r",
		         bad[i]);
		int rc = run(q, imp, out, sizeof out, &e);
		ck_assert_msg(rc == LORA_EINVAL, "%s: rc %d %s", bad[i], rc,
		              rc ? e.message : out);
		ck_assert_msg(strstr(e.message, "bad percent escape") &&
		                  strstr(e.message, bad[i]),
		              "%s", e.message);
	}
}
END_TEST

START_TEST(load_refuses_escapes)
{
	char out[512], p[400], t[400];
	struct qry_error e;
	snprintf(p, sizeof p, "%s/secret.csv", dir);
	FILE *f = fopen(p, "w");
	fputs("s\n", f);
	fclose(f);
	snprintf(t, sizeof t, "%s/link.csv", imp);
	ck_assert_int_eq(symlink(p, t), 0);
	const char *bad[] = {
	    "LOAD CSV FROM 'file:///../secret.csv' AS r RETURN r",
	    "LOAD CSV FROM 'file:///%2e%2e/secret.csv' AS r RETURN r",
	    "LOAD CSV FROM 'file:///link.csv' AS r RETURN r",
	    "LOAD CSV FROM 'file:///sub/../../secret.csv' AS r RETURN r",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = run(bad[i], imp, out, sizeof out, &e);
		ck_assert_msg(rc == LORA_EINVAL, "%s: rc %d %s", bad[i], rc,
		              e.message);
		ck_assert_msg(strstr(e.message, "outside the import directory"),
		              "%s", e.message);
	}
	/* an absolute path is read below the import directory */
	char q[600];
	snprintf(q, sizeof q, "LOAD CSV FROM 'file://%s' AS r RETURN r", p);
	ck_assert_int_eq(run(q, imp, out, sizeof out, &e), LORA_ENOTFOUND);
	ck_assert_int_eq(run("LOAD CSV FROM 'http://x/y.csv' AS r RETURN r",
	                     imp, out, sizeof out, &e),
	                 LORA_EINVAL);
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///missing.csv' AS r "
	                     "RETURN r",
	                     imp, out, sizeof out, &e),
	                 LORA_ENOTFOUND);
	ck_assert_msg(strstr(e.message, "not found"), "%s", e.message);
	put_file("x.csv", "1\n");
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///x.csv' AS r RETURN r",
	                     NULL, out, sizeof out, &e),
	                 LORA_EINVAL);
	ck_assert_msg(strstr(e.message, "no import directory"), "%s",
	              e.message);
}
END_TEST

START_TEST(load_into_create)
{
	struct lora_buf b = {0};
	lora_buf_puts(&b, "id,name\n");
	for (int i = 0; i < 5000; i++)
		lora_buf_printf(&b, "%d,\"n%d\"\n", i, i);
	put_file("many.csv", b.data);
	lora_buf_free(&b);
	char out[512];
	struct qry_error e;
	ck_assert_int_eq(
	    run("LOAD CSV WITH HEADERS FROM 'file:///many.csv' AS r "
	        "CREATE (:P {id: toInteger(r.id), name: r.name})",
	        imp, out, sizeof out, &e),
	    0);
	ck_assert_int_eq(run("MATCH (p:P) RETURN count(p), sum(p.id), "
	                     "max(p.name)",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "5000,12497500,n999;");
	/* a read stopped by LIMIT closes its file; the statement is a read */
	int w = 1;
	ck_assert_int_eq(qry_is_write("LOAD CSV FROM 'file:///many.csv' AS r "
	                              "RETURN r LIMIT 1",
	                              &w, &e),
	                 0);
	ck_assert_int_eq(w, 0);
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///many.csv' AS r "
	                     "RETURN r LIMIT 2",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "['id', 'name'];['0', 'n0'];");
}
END_TEST

/* linenumber(): the line a record starts on (the header is line 1;
 * blank lines and line breaks inside quotes count); file(): the file's
 * absolute path; both null outside LOAD CSV, both per row through WITH,
 * ORDER BY and a write, and the latest LOAD CSV's when there are two. */
START_TEST(load_line_and_file)
{
	put_file("ln.csv", "id,name\n1,a\n\n2,\"multi\nline\"\n3,c\n");
	put_file("two.csv", "x\ny\n");
	char out[1024], want[4 * PATH_MAX + 64], real[PATH_MAX];
	struct qry_error e;
	ck_assert_int_eq(run("LOAD CSV WITH HEADERS FROM 'file:///ln.csv' AS r "
	                     "RETURN r.id, linenumber()",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1,2;2,4;3,6;");
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///ln.csv' AS r WITH r, "
	                     "linenumber() AS l ORDER BY l DESC RETURN r[0], "
	                     "l, file()",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_ptr_nonnull(realpath(imp, real));
	snprintf(want, sizeof want,
	         "3,6,%s/ln.csv;2,4,%s/ln.csv;1,2,%s/ln.csv;id,1,%s/ln.csv;",
	         real, real, real, real);
	ck_assert_str_eq(out, want);
	ck_assert_int_eq(
	    run("RETURN linenumber(), file()", imp, out, sizeof out, &e), 0);
	ck_assert_str_eq(out, "null,null;");
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///ln.csv' AS r "
	                     "LOAD CSV FROM 'file:///two.csv' AS s "
	                     "WITH r, s, linenumber() AS l, file() AS f "
	                     "WHERE r[0] = '3' RETURN s[0], l, f ENDS WITH "
	                     "'/two.csv'",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "x,1,true;y,2,true;");
	ck_assert_int_eq(run("LOAD CSV WITH HEADERS FROM 'file:///ln.csv' AS r "
	                     "CREATE (:Ln {id: r.id, line: linenumber()})",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_int_eq(run("MATCH (n:Ln) RETURN n.id, n.line ORDER BY n.id",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1,2;2,4;3,6;");
}
END_TEST

/* big.csv in the import directory: 300,000 rows "i,some text here"
 * (about 5 MiB) */
static void put_big_csv(void)
{
	char p[400];
	snprintf(p, sizeof p, "%s/big.csv", imp);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 300000; i++)
		fprintf(f, "%d,some text here\n", i);
	fclose(f);
}

/* q over a new view (*v) under a statement limit of mem bytes. */
static int open_limited(const char *q, uint64_t mem, struct sto_view **v,
                        struct qry_cursor **cur, struct qry_error *e)
{
	ck_assert_int_eq(sto_view_open(st, v), 0);
	struct qry_request req = {.query = q, .view = *v, .import_dir = imp};
	qry_limits_init(&req.limits);
	req.limits.mem_bytes_max = mem;
	return qry_open(&req, cur, e);
}

START_TEST(load_streams_in_small_memory)
{
	/* 300k rows (~5 MiB) read under a 2 MiB statement limit */
	put_big_csv();
	struct sto_view *v;
	struct qry_cursor *cur;
	struct qry_error e;
	ck_assert_int_eq(open_limited("LOAD CSV FROM 'file:///big.csv' AS r "
	                              "RETURN toInteger(r[0]) AS i",
	                              2u << 20, &v, &cur, &e),
	                 0);
	int64_t n = 0, last = -1;
	for (;;) {
		const Lora__Value *const *row;
		int done;
		ck_assert_int_eq(qry_cursor_next(cur, &row, &done, &e), 0);
		if (done)
			break;
		last = row[0]->int_value;
		n++;
	}
	ck_assert_int_eq(n, 300000);
	ck_assert_int_eq(last, 299999);
	qry_cursor_free(cur);
	sto_view_close(v);
}
END_TEST

/* A write statement's leading clauses that read no graph (LOAD CSV,
 * UNWIND, WITH) are not drained before the write: LIMIT stops the file,
 * so a malformed line after it is never read and a 300,000-row file
 * takes no memory. Clauses that read the graph still are: every COUNT
 * and EXISTS subquery is evaluated before the first CREATE. */
START_TEST(load_limit_in_a_write)
{
	struct lora_buf b = {0};
	lora_buf_puts(&b, "id\n");
	for (int i = 0; i < 100; i++)
		lora_buf_printf(&b, "%d\n", i);
	lora_buf_puts(&b, "\"never closed\n");
	put_file("tail.csv", b.data);
	lora_buf_free(&b);
	char out[512];
	struct qry_error e;
	int rc = run("LOAD CSV WITH HEADERS FROM 'file:///tail.csv' AS r "
	             "WITH r LIMIT 10 CREATE (:T {id: toInteger(r.id)})",
	             imp, out, sizeof out, &e);
	ck_assert_msg(rc == 0, "%s", e.message);
	ck_assert_int_eq(run("MATCH (t:T) RETURN count(t), sum(t.id)", imp, out,
	                     sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "10,45;");
	/* each branch of a UNION (ALL or not) stops at its own LIMIT:
	 * neither reads line 102 */
	static const struct {
		const char *q, *rows, *made;
	} unions[] = {
	    {"LOAD CSV WITH HEADERS FROM 'file:///tail.csv' AS r "
	     "WITH r LIMIT 4 CREATE (:U {id: toInteger(r.id)}) "
	     "RETURN 'a' AS k UNION ALL "
	     "LOAD CSV WITH HEADERS FROM 'file:///tail.csv' AS r "
	     "WITH r LIMIT 2 CREATE (:U {id: 100 + toInteger(r.id)}) "
	     "RETURN 'b' AS k",
	     "a;a;a;a;b;b;", "6,207;"},
	    {"LOAD CSV WITH HEADERS FROM 'file:///tail.csv' AS r "
	     "WITH r LIMIT 3 CREATE (:U {id: toInteger(r.id)}) "
	     "RETURN 'a' AS k UNION "
	     "LOAD CSV WITH HEADERS FROM 'file:///tail.csv' AS r "
	     "WITH r LIMIT 1 CREATE (:U {id: 100}) RETURN 'b' AS k",
	     "a;b;", "10,310;"},
	};
	for (size_t u = 0; u < sizeof(unions) / sizeof(unions[0]); u++) {
		rc = run(unions[u].q, imp, out, sizeof out, &e);
		ck_assert_msg(rc == 0, "%s", e.message);
		ck_assert_str_eq(out, unions[u].rows);
		ck_assert_int_eq(run("MATCH (u:U) RETURN count(u), sum(u.id)",
		                     imp, out, sizeof out, &e),
		                 0);
		ck_assert_str_eq(out, unions[u].made); /* both statements' */
	}
	/* a bad line before the LIMIT still fails the statement, by line */
	put_file("early.csv", "id\n1\n2\n\"bad\"x\n4\n");
	fails_with("LOAD CSV WITH HEADERS FROM 'file:///early.csv' AS r "
	           "WITH r LIMIT 10 CREATE (:T3 {id: toInteger(r.id)})",
	           LORA_EINVAL, "line 4", out, sizeof out);
	/* without LIMIT the bad line is read, and nothing is written */
	fails_with("LOAD CSV WITH HEADERS FROM 'file:///tail.csv' AS r "
	           "CREATE (:T2 {id: toInteger(r.id)})",
	           LORA_EINVAL, "line 102", out, sizeof out);
	/* 300,000 rows, 1,000 written, under a 4 MiB statement limit */
	put_big_csv();
	struct sto_view *v;
	struct qry_cursor *cur;
	rc = open_limited("LOAD CSV FROM 'file:///big.csv' AS r WITH r SKIP 5 "
	                  "LIMIT 1000 UNWIND [r[0]] AS x CREATE (:B {i: "
	                  "toInteger(x)})",
	                  4u << 20, &v, &cur, &e);
	ck_assert_msg(rc == 0, "%s", e.message);
	char em[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(sto_apply(st, ++applied, qry_cursor_batch(cur), em),
	                 0);
	qry_cursor_free(cur);
	sto_view_close(v);
	ck_assert_int_eq(run("MATCH (b:B) RETURN count(b), min(b.i), max(b.i)",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "1000,5,1004;");
	/* reading the graph before the write: all of it first */
	ck_assert_int_eq(run("UNWIND range(1, 3) AS i WITH i, COUNT { MATCH "
	                     "(:H) } AS n CREATE (:H {n: n})",
	                     imp, out, sizeof out, &e),
	                 0);
	rc = run("UNWIND range(1, 3) AS i WITH i, CASE WHEN EXISTS { MATCH "
	         "(:H2) } THEN 1 ELSE 0 END AS n CREATE (:H2 {n: n})",
	         imp, out, sizeof out, &e);
	ck_assert_msg(rc == 0, "%s", e.message);
	ck_assert_int_eq(run("MATCH (h) WHERE h:H OR h:H2 RETURN count(h), "
	                     "sum(h.n)",
	                     imp, out, sizeof out, &e),
	                 0);
	ck_assert_str_eq(out, "6,0;");
}
END_TEST

/* a FIFO, a socket or a directory in the import directory is refused at
 * once; opening a FIFO for reading would wait for a writer forever */
START_TEST(load_refuses_special_files)
{
	char p[400], out[512];
	struct qry_error e;
	snprintf(p, sizeof p, "%s/feed.csv", imp);
	ck_assert_int_eq(mkfifo(p, 0600), 0);
	snprintf(p, sizeof p, "%s/sock.csv", imp);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	ck_assert_uint_lt(strlen(p), sizeof sa.sun_path);
	memcpy(sa.sun_path, p, strlen(p) + 1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	snprintf(p, sizeof p, "%s/sub", imp);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	const char *urls[] = {"file:///feed.csv", "file:///sock.csv",
	                      "file:///sub", "file:///."};
	for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		char q[256], want[128];
		snprintf(q, sizeof q, "LOAD CSV FROM '%s' AS r RETURN r",
		         urls[i]);
		snprintf(want, sizeof want, "'%s' is not a regular file",
		         urls[i]);
		uint64_t t0 = lora_now_ns();
		int rc = run(q, imp, out, sizeof out, &e);
		ck_assert_msg(rc == LORA_EINVAL, "%s: rc %d %s", urls[i], rc,
		              rc ? e.message : out);
		ck_assert_msg(strstr(e.message, want), "%s", e.message);
		ck_assert_uint_lt(lora_now_ns() - t0, 5000000000ull);
	}
	/* a write that reads the FIFO fails the same way */
	ck_assert_int_eq(run("LOAD CSV FROM 'file:///feed.csv' AS r "
	                     "CREATE (:F {v: r[0]})",
	                     imp, out, sizeof out, &e),
	                 LORA_EINVAL);
	close(fd);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("load");
	TCase *t = tcase_create("reader");
	tcase_add_test(t, reader_table);
	suite_add_tcase(s, t);
	t = tcase_create("clause");
	tcase_add_checked_fixture(t, setup_load, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, load_lists_and_quoting);
	tcase_add_test(t, load_headers);
	tcase_add_test(t, load_bad_row_names_line);
	tcase_add_test(t, load_refuses_escapes);
	tcase_add_test(t, load_into_create);
	tcase_add_test(t, load_line_and_file);
	tcase_add_test(t, load_streams_in_small_memory);
	tcase_add_test(t, load_limit_in_a_write);
	tcase_add_test(t, load_duplicate_headers);
	tcase_add_test(t, load_field_limit);
	tcase_add_test(t, load_many_blank_lines);
	tcase_add_test(t, load_percent_escapes);
	suite_add_tcase(s, t);
	/* on its own, with a short timeout: a blocking open shows as one */
	t = tcase_create("special files");
	tcase_add_checked_fixture(t, setup_load, teardown);
	tcase_set_timeout(t, 20);
	tcase_add_test(t, load_refuses_special_files);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
