/* shell.c - `lora`, the interactive Cypher shell and script runner. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <editline/readline.h>

#include "cli.h"

/* History lines kept in ~/.lora_history. */
#define HISTORY_LINES_MAX  1000
#define HISTORY_PATH_BYTES 4096

struct shell {
	struct lora_client *c;
	struct lora_shell_opts o;
	struct lora_params params;
	struct lora_stmt stmt;
	int interactive;
	int failed; /* a statement failed (exit code of scripts) */
	int quit;
	struct lora_tx *tx; /* :begin ... :commit / :rollback */
};

static void print_error(const struct lora_client_error *e)
{
	if (e->line)
		fprintf(stderr, "error %s: %s (line %u, column %u)\n", e->code,
		        e->message, e->line, e->column);
	else
		fprintf(stderr, "error %s: %s\n", e->code, e->message);
}

/* --format json / csv: each row printed as it arrives (no table to
 * align, so no row limit and no waiting for the last row). */
static int stream_result(struct shell *sh, struct lora_result *r, size_t *rows,
                         struct lora_client_error *e)
{
	size_t cols = lora_result_columns(r);
	const char **names = lora_calloc(cols ? cols : 1, sizeof(char *));
	if (!names)
		return LORA_ENOMEM;
	for (size_t i = 0; i < cols; i++)
		names[i] = lora_result_column(r, i);
	struct lora_buf out = {0};
	int rv = sh->o.format == LORA_FORMAT_CSV
	             ? lora_csv_header(&out, names, cols)
	             : 0;
	Lora__Value *const *row = NULL;
	*rows = 0;
	while (rv == 0) {
		if (out.len)
			fwrite(out.data, 1, out.len, stdout);
		lora_buf_reset(&out);
		rv = lora_result_next(r, &row, e);
		if (rv || !row)
			break;
		rv = sh->o.format == LORA_FORMAT_CSV
		         ? lora_csv_row(&out, row, cols)
		         : lora_row_json(&out, names, row, cols);
		(*rows)++;
	}
	lora_free(names);
	lora_buf_free(&out);
	if (rv == LORA_ENOMEM)
		fprintf(stderr, "error: out of memory\n");
	return rv;
}

/* Reads every row of r into a table and prints it. */
static int print_result(struct shell *sh, struct lora_result *r, size_t *rows,
                        struct lora_client_error *e)
{
	if (sh->o.format == LORA_FORMAT_JSON || sh->o.format == LORA_FORMAT_CSV)
		return stream_result(sh, r, rows, e);
	struct lora_table t = {0};
	size_t cols = lora_result_columns(r);
	const char **names = lora_calloc(cols ? cols : 1, sizeof(char *));
	int rv = names ? 0 : LORA_ENOMEM;
	for (size_t i = 0; rv == 0 && i < cols; i++)
		names[i] = lora_result_column(r, i);
	if (rv == 0)
		rv = lora_table_header(&t, names, cols);
	lora_free(names);
	Lora__Value *const *row = NULL;
	*rows = 0;
	while (rv == 0 && (rv = lora_result_next(r, &row, e)) == 0 && row) {
		rv = lora_table_add_values(&t, row);
		(*rows)++;
	}
	struct lora_buf out = {0};
	if (lora_table_render(&t, sh->o.format == LORA_FORMAT_PLAIN, &out) ==
	        0 &&
	    out.len)
		fputs(out.data, stdout);
	if (t.omitted)
		printf("(%zu more rows not shown)\n", t.omitted);
	lora_buf_free(&out);
	lora_table_free(&t);
	if (rv && rv != LORA_ENOMEM)
		return rv;
	if (rv == LORA_ENOMEM)
		fprintf(stderr, "error: out of memory\n");
	return rv;
}

static void print_plan(const json_t *op, int depth);

static int run_statement(void *arg, const char *text)
{
	struct shell *sh = arg;
	struct lora_query q = {0};
	q.query = text;
	q.params = sh->params.items;
	q.n_params = sh->params.n;
	q.consistency = (enum lora_consistency)sh->o.consistency;
	struct lora_client_error e = {0};
	struct lora_result *r = NULL;
	uint64_t t0 = lora_now_ns();
	int rv = sh->tx ? lora_tx_run(sh->tx, &q, &r, &e)
	                : lora_client_run(sh->c, &q, &r, &e);
	if (rv && sh->tx) { /* the server rolled it back */
		lora_tx_rollback(sh->tx);
		sh->tx = NULL;
		fprintf(stderr, "the transaction was rolled back\n");
	}
	size_t rows = 0;
	if (rv == 0) {
		rv = print_result(sh, r, &rows, &e);
		const Lora__Value *plan = rv ? NULL : lora_result_plan(r);
		if (plan && sh->o.format == LORA_FORMAT_TABLE) {
			json_t *j = lora_value_json(plan);
			print_plan(j, 0);
			json_decref(j);
		}
		if (rv == 0 && !sh->o.quiet)
			printf("%zu row%s, %.1f ms, bookmark %s, node %s\n",
			       rows, rows == 1 ? "" : "s",
			       (double)(lora_now_ns() - t0) / 1e6,
			       lora_result_bookmark(r), lora_result_node(r));
		lora_result_free(r);
	}
	if (rv) {
		print_error(&e);
		sh->failed = 1;
		if (!sh->interactive)
			return -1; /* scripts stop at the first error */
	}
	fflush(stdout);
	return 0;
}

/* :begin [read], :commit, :rollback */
static void cmd_tx(struct shell *sh, const char *cmd, const char *args)
{
	struct lora_client_error e = {0};
	int rv = 0;
	if (!strcmp(cmd, ":begin") && sh->tx) {
		fprintf(stderr,
		        "a transaction is open: :commit or :rollback\n");
		rv = LORA_EINVAL;
	} else if (!strcmp(cmd, ":begin")) {
		int read = args && !strcmp(args, "read");
		rv = lora_tx_begin(sh->c, read, 0, &sh->tx, &e);
		if (rv == 0 && !sh->o.quiet)
			printf("%s transaction %s begun\n",
			       read ? "read" : "write", lora_tx_id(sh->tx));
	} else if (sh->tx == NULL) {
		fprintf(stderr, "no transaction is open (:begin first)\n");
		rv = LORA_EINVAL;
	} else if (!strcmp(cmd, ":commit")) {
		rv = lora_tx_commit(sh->tx, &e);
		sh->tx = NULL;
		if (rv == 0 && !sh->o.quiet)
			printf("committed, bookmark %s\n",
			       lora_client_bookmark(sh->c));
	} else {
		lora_tx_rollback(sh->tx);
		sh->tx = NULL;
		if (!sh->o.quiet)
			printf("rolled back\n");
	}
	if (rv && e.code[0])
		print_error(&e);
	if (rv)
		sh->failed = 1;
	fflush(stdout);
}

static int print_change(void *arg, uint64_t index, const char *json)
{
	(void)arg;
	(void)index;
	printf("%s\n", json);
	fflush(stdout);
	return 0;
}

/* :changes [FROM [UNTIL]] [labels=A,B] [types=T,U]: the change stream,
 * one JSON event a line */
static void cmd_changes(struct shell *sh, char *args)
{
	struct lora_changes_opts o = {0};
	int positional = 0;
	for (char *w = args ? strtok(args, " \t") : NULL; w;
	     w = strtok(NULL, " \t")) {
		if (!strncmp(w, "labels=", 7))
			o.labels = w + 7;
		else if (!strncmp(w, "types=", 6))
			o.types = w + 6;
		else if (positional++ == 0)
			o.from = w;
		else
			o.until = strtoull(w, NULL, 10);
	}
	struct lora_client_error e = {0};
	int rv = lora_client_changes(sh->c, &o, print_change, sh, &e);
	if (rv) {
		print_error(&e);
		sh->failed = 1;
	}
}

static void cmd_status(struct shell *sh)
{
	struct lora_client_error e = {0};
	char *json = NULL;
	char msg[LORA_ERRMSG_BYTES] = "";
	if (lora_client_status(sh->c, &json, &e)) {
		print_error(&e);
		sh->failed = 1;
		return;
	}
	struct lora_table t = {0};
	struct lora_buf out = {0};
	int rv = lora_status_table(json, &t, &out, msg);
	if (rv == 0)
		rv = lora_table_render(&t, sh->o.format != LORA_FORMAT_TABLE,
		                       &out);
	if (rv == 0)
		fputs(out.data, stdout);
	else
		fprintf(stderr, "error: %s\n", msg[0] ? msg : "status");
	lora_buf_free(&out);
	lora_table_free(&t);
	lora_free(json);
}

static void cmd_params(struct shell *sh)
{
	for (size_t i = 0; i < sh->params.n; i++) {
		struct lora_buf b = {0};
		if (lora_value_format(&b, sh->params.items[i]->value) == 0)
			printf(":param %s %s\n", sh->params.items[i]->name,
			       b.data);
		lora_buf_free(&b);
	}
	if (sh->params.n == 0)
		printf("no parameters\n");
}

static void cmd_param(struct shell *sh, char *args)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	char *name = strtok(args, " \t");
	char *value = name ? strtok(NULL, "") : NULL;
	while (value && (*value == ' ' || *value == '\t'))
		value++;
	if (name == NULL) {
		cmd_params(sh);
		return;
	}
	if (name[0] == '$')
		name++;
	if (value == NULL || *value == 0) {
		if (lora_params_unset(&sh->params, name))
			fprintf(stderr, "no parameter %s\n", name);
		return;
	}
	if (lora_params_set(&sh->params, name, value, msg)) {
		fprintf(stderr, "error: %s\n", msg);
		sh->failed = 1;
	}
}

/* :add ID PEER HTTP, :remove ID, :transfer [ID]: admin calls on the leader. */
static void cmd_admin(struct shell *sh, const char *cmd, char *args)
{
	char body[LORA_CLIENT_ADDR_BYTES * 3], msg[LORA_ERRMSG_BYTES] = "";
	const char *path = NULL;
	char *a1 = strtok(args, " \t"), *a2 = a1 ? strtok(NULL, " \t") : NULL;
	char *a3 = a2 ? strtok(NULL, " \t") : NULL;
	if (!strcmp(cmd, ":add") && a3) {
		path = "/cluster/add";
		snprintf(body, sizeof(body),
		         "{\"id\": %ld, \"peer\": \"%s\", \"http\": \"%s\"}",
		         strtol(a1, NULL, 10), a2, a3);
	} else if (!strcmp(cmd, ":remove") && a1) {
		path = "/cluster/remove";
		snprintf(body, sizeof(body), "{\"id\": %ld}",
		         strtol(a1, NULL, 10));
	} else if (!strcmp(cmd, ":transfer")) {
		path = "/cluster/transfer";
		if (a1)
			snprintf(body, sizeof(body), "{\"to\": %ld}",
			         strtol(a1, NULL, 10));
		else
			snprintf(body, sizeof(body), "{}");
	}
	if (path == NULL) {
		fprintf(stderr,
		        "usage: :add ID PEER_ADDR HTTP_ADDR | :remove ID | "
		        ":transfer [ID]\n");
		sh->failed = 1;
		return;
	}
	int status = 0;
	char *answer = NULL;
	int timeout = sh->o.timeout_ms ? sh->o.timeout_ms : 10000;
	if (lora_admin_post(sh->c, path, body, timeout, &status, &answer,
	                    msg)) {
		fprintf(stderr, "error: %s\n", msg);
		sh->failed = 1;
		return;
	}
	printf("%d %s\n", status, answer);
	if (status != 200)
		sh->failed = 1;
	lora_free(answer);
}

/* One plan operator and its children, indented. */
static void print_plan(const json_t *op, int depth)
{
	if (!json_is_object(op) || depth > 64)
		return;
	printf("%*s%s", depth * 2, "",
	       json_string_value(json_object_get(op, "operator"))
	           ? json_string_value(json_object_get(op, "operator"))
	           : "?");
	const char *details = json_string_value(json_object_get(op, "details"));
	if (details && *details)
		printf(" %s", details);
	const json_t *rows = json_object_get(op, "rows");
	if (json_is_integer(rows))
		printf("  rows: %" JSON_INTEGER_FORMAT,
		       json_integer_value(rows));
	const json_t *ns = json_object_get(op, "time_ns");
	if (json_is_integer(ns))
		printf("  time: %.3f ms", (double)json_integer_value(ns) / 1e6);
	printf("\n");
	const json_t *kids = json_object_get(op, "children");
	for (size_t i = 0; i < json_array_size(kids); i++)
		print_plan(json_array_get(kids, i), depth + 1);
}

/* :explain STATEMENT / :profile STATEMENT: the plan, over the native
 * protocol (RunRequest.mode; PROFILE runs the statement, its rows are not
 * shown). */
static void cmd_plan(struct shell *sh, const char *cmd, const char *text)
{
	size_t n = strlen(text);
	while (n && (text[n - 1] == ';' || text[n - 1] == ' '))
		n--;
	char *stmt = lora_malloc(n + 1);
	struct lora_query q = {0};
	q.query = stmt;
	q.params = sh->params.items;
	q.n_params = sh->params.n;
	q.consistency = (enum lora_consistency)sh->o.consistency;
	q.mode = !strcmp(cmd, ":profile") ? 2 : 1;
	struct lora_client_error e = {0};
	struct lora_result *r = NULL;
	int rv = LORA_ENOMEM;
	if (stmt) {
		memcpy(stmt, text, n);
		stmt[n] = 0;
		rv = lora_client_run(sh->c, &q, &r, &e);
	} else {
		snprintf(e.message, sizeof e.message, "out of memory");
	}
	Lora__Value *const *row = NULL;
	while (rv == 0 && (rv = lora_result_next(r, &row, &e)) == 0 && row)
		;
	const Lora__Value *plan = rv ? NULL : lora_result_plan(r);
	if (rv) {
		print_error(&e);
		sh->failed = 1;
	} else if (plan) {
		json_t *j = lora_value_json(plan);
		print_plan(j, 0);
		json_decref(j);
	} else {
		fprintf(stderr, "error: the answer carries no plan\n");
		sh->failed = 1;
	}
	lora_result_free(r);
	lora_free(stmt);
}

static void cmd_help(void)
{
	printf("Cypher statements end with ';' and may span lines.\n"
	       "  :param NAME VALUE   set $NAME (VALUE is JSON: 42, \"x\", "
	       "[1,2], {\"k\": 1})\n"
	       "  :param NAME         remove $NAME\n"
	       "  :params             list parameters\n"
	       "  :explain STATEMENT  the plan of a statement\n"
	       "  :profile STATEMENT  run it and show the plan with rows "
	       "and times\n"
	       "  :begin [read]       begin a write (or read) "
	       "transaction\n"
	       "  :commit             commit it\n"
	       "  :rollback           roll it back\n"
	       "  :changes [FROM [UNTIL]]  committed changes after "
	       "bookmark FROM\n"
	       "                      (default: now), one JSON event a "
	       "line, until UNTIL;\n"
	       "                      labels=A,B types=T keep those "
	       "labels / types\n"
	       "  :status             cluster status (role and indexes of "
	       "each node)\n"
	       "  :transfer [ID]      hand leadership to node ID (or any)\n"
	       "  :add ID PEER HTTP   add a node (joins as a learner)\n"
	       "  :remove ID          remove a node\n"
	       "  :help               this text\n"
	       "  :quit               leave (also Ctrl-D)\n");
}

/* Runs a ':' command line. */
static void run_command(struct shell *sh, char *line)
{
	char *cmd = strtok(line, " \t");
	char *rest = cmd ? strtok(NULL, "") : NULL;
	if (cmd == NULL)
		return;
	if (!strcmp(cmd, ":quit") || !strcmp(cmd, ":exit") ||
	    !strcmp(cmd, ":q"))
		sh->quit = 1;
	else if (!strcmp(cmd, ":help") || !strcmp(cmd, ":h"))
		cmd_help();
	else if (!strcmp(cmd, ":status"))
		cmd_status(sh);
	else if ((!strcmp(cmd, ":explain") || !strcmp(cmd, ":profile")) &&
	         rest && *rest)
		cmd_plan(sh, cmd, rest);
	else if (!strcmp(cmd, ":params"))
		cmd_params(sh);
	else if (!strcmp(cmd, ":param"))
		cmd_param(sh, rest ? rest : (char *)"");
	else if (!strcmp(cmd, ":changes"))
		cmd_changes(sh, rest);
	else if (!strcmp(cmd, ":begin") || !strcmp(cmd, ":commit") ||
	         !strcmp(cmd, ":rollback"))
		cmd_tx(sh, cmd, rest);
	else if (!strcmp(cmd, ":add") || !strcmp(cmd, ":remove") ||
	         !strcmp(cmd, ":transfer"))
		cmd_admin(sh, cmd, rest ? rest : (char *)"");
	else {
		fprintf(stderr, "unknown command %s (try :help)\n", cmd);
		sh->failed = 1;
	}
}

/* One input line: a command, or part of a statement. Returns non-zero to
 * stop (a script error). */
static int feed_line(struct shell *sh, char *line)
{
	char *p = line;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == ':' && !lora_stmt_pending(&sh->stmt)) {
		run_command(sh, p);
		return !sh->interactive && sh->failed;
	}
	int rv = lora_stmt_feed(&sh->stmt, line, run_statement, sh);
	if (rv == LORA_ELIMIT || rv == LORA_ENOMEM) {
		fprintf(stderr, "error: statement too long\n");
		sh->failed = 1;
	}
	return rv != 0 && !sh->interactive;
}

/* Script input: runs every statement, then a final one without ';'. */
static int run_script(struct shell *sh, FILE *f, const char *text)
{
	char *line = NULL;
	size_t cap = 0;
	int stop = 0;
	if (text) {
		char *copy = lora_strdup(text);
		char *save = NULL;
		for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL;
		     l && !stop && !sh->quit; l = strtok_r(NULL, "\n", &save))
			stop = feed_line(sh, l);
		lora_free(copy);
	}
	while (f && !stop && !sh->quit && getline(&line, &cap, f) >= 0) {
		line[strcspn(line, "\r\n")] = 0;
		stop = feed_line(sh, line);
	}
	free(line);
	if (!stop && !sh->quit && lora_stmt_pending(&sh->stmt))
		run_statement(sh, lora_stmt_rest(&sh->stmt));
	return sh->failed ? 1 : 0;
}

static void history_path(char *out, size_t size)
{
	const char *home = getenv("HOME");
	snprintf(out, size, "%s/.lora_history", home ? home : ".");
}

static void add_statement_history(const char *line, struct lora_buf *entry)
{
	if (entry->len)
		lora_buf_putc(entry, ' ');
	lora_buf_puts(entry, line);
}

static int run_interactive(struct shell *sh)
{
	char hist[HISTORY_PATH_BYTES];
	history_path(hist, sizeof(hist));
	using_history();
	stifle_history(HISTORY_LINES_MAX);
	read_history(hist);
	if (!sh->o.quiet)
		printf("lora shell: statements end with ';', :help for "
		       "commands\n");
	struct lora_buf entry = {0};
	while (!sh->quit) {
		int more = lora_stmt_pending(&sh->stmt);
		char *line = readline(more ? "   ...> " : "lora> ");
		if (line == NULL)
			break; /* Ctrl-D */
		add_statement_history(line, &entry);
		feed_line(sh, line);
		if (!lora_stmt_pending(&sh->stmt) && entry.len) {
			add_history(entry.data);
			write_history(hist); /* kept even if Ctrl-C ends us */
			lora_buf_reset(&entry);
		}
		free(line);
	}
	lora_buf_free(&entry);
	write_history(hist);
	return 0;
}

/* A password typed at the terminal, without echo, into buf. */
static int ask_password(const char *user, char *buf, size_t size)
{
	FILE *tty = fopen("/dev/tty", "r+");
	if (tty == NULL)
		return -1;
	struct termios old, quiet;
	int fd = fileno(tty), echo_off = tcgetattr(fd, &old) == 0;
	if (echo_off) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	fprintf(tty, "password for %s: ", user);
	fflush(tty);
	int ok = fgets(buf, (int)size, tty) != NULL;
	if (echo_off)
		tcsetattr(fd, TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	if (ok)
		buf[strcspn(buf, "\r\n")] = '\0';
	return ok ? 0 : -1;
}

static int shell_open(struct shell *sh)
{
	struct lora_client_opts co = {0};
	char typed[LORA_CLIENT_PASSWORD_BYTES_MAX + 2] = "";
	co.user = sh->o.user ? sh->o.user : getenv("LORA_USER");
	co.password = sh->o.password ? sh->o.password : getenv("LORA_PASSWORD");
	if (co.user && co.password == NULL && isatty(0) &&
	    ask_password(co.user, typed, sizeof typed) == 0)
		co.password = typed;
	co.addresses = sh->o.addresses;
	co.tls = sh->o.tls;
	co.ca = sh->o.ca;
	co.call_timeout_ms = sh->o.timeout_ms;
	co.route = sh->o.route_any ? LORA_ROUTE_ANY : LORA_ROUTE_LEADER;
	struct lora_client_error e = {0};
	int rv = lora_client_open(&sh->c, &co, &e);
	memset(typed, 0, sizeof typed);
	if (rv) {
		print_error(&e);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct shell sh = {0};
	char msg[LORA_ERRMSG_BYTES] = "";
	if (lora_shell_parse_args(argc, argv, &sh.o, msg)) {
		fprintf(stderr, "lora: %s\n%s", msg, lora_shell_usage());
		return 2;
	}
	if (sh.o.help) {
		fputs(lora_shell_usage(), stdout);
		return 0;
	}
	FILE *f = NULL;
	if (sh.o.file) {
		f = strcmp(sh.o.file, "-") ? fopen(sh.o.file, "r") : stdin;
		if (f == NULL) {
			perror(sh.o.file);
			return 2;
		}
	}
	int rv = shell_open(&sh);
	sh.interactive = !sh.o.file && !sh.o.command && isatty(0);
	if (rv == 0 && sh.interactive)
		rv = run_interactive(&sh);
	else if (rv == 0)
		rv = run_script(&sh, sh.o.command ? NULL : (f ? f : stdin),
		                sh.o.command);
	if (f && f != stdin)
		fclose(f);
	if (sh.tx) { /* left open: nothing of it is kept */
		lora_tx_rollback(sh.tx);
		fprintf(stderr, "the open transaction was rolled back\n");
	}
	lora_stmt_free(&sh.stmt);
	lora_params_free(&sh.params);
	lora_client_close(sh.c);
	lora_client_library_fini();
	return rv;
}
