/* user.c - the parser of user-management statements (user.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "user.h"

struct up {
	const char *p;
	char *err;
};

static void ws(struct up *u)
{
	while (isspace((unsigned char)*u->p))
		u->p++;
}

/* Consumes keyword kw (case-insensitive, whole word): 1 when it was there. */
static int kw(struct up *u, const char *kw)
{
	ws(u);
	size_t n = strlen(kw);
	if (strncasecmp(u->p, kw, n) || isalnum((unsigned char)u->p[n]) ||
	    u->p[n] == '_')
		return 0;
	u->p += n;
	return 1;
}

static int need(struct up *u, const char *k)
{
	return kw(u, k) ? 0
	                : lora_errf(LORA_EPARSE, u->err,
	                            "expected %s near '%.20s'", k, u->p);
}

/* An identifier or `quoted` name into out. */
static int name(struct up *u, char *out, size_t cap)
{
	ws(u);
	size_t n = 0;
	if (*u->p == '`') {
		const char *e = strchr(u->p + 1, '`');
		if (e == NULL)
			return lora_errf(LORA_EPARSE, u->err, "unclosed `");
		n = (size_t)(e - u->p - 1);
		if (n >= cap)
			return lora_errf(LORA_ELIMIT, u->err, "name too long");
		memcpy(out, u->p + 1, n);
		u->p = e + 1;
	} else {
		while (isalnum((unsigned char)u->p[n]) || u->p[n] == '_')
			n++;
		if (n >= cap)
			return lora_errf(LORA_ELIMIT, u->err, "name too long");
		memcpy(out, u->p, n);
		u->p += n;
	}
	out[n] = '\0';
	return n ? 0
	         : lora_errf(LORA_EPARSE, u->err,
	                     "expected a name near '%.20s'", u->p);
}

/* A string literal with \-escapes, or a $parameter. */
static int secret(struct up *u, struct qry_user_secret *s)
{
	ws(u);
	s->set = 1;
	if (*u->p == '$') {
		u->p++;
		return name(u, s->param, sizeof s->param);
	}
	char q = *u->p;
	if (q != '\'' && q != '"')
		return lora_errf(LORA_EPARSE, u->err,
		                 "expected a string or a $parameter");
	size_t n = 0;
	for (u->p++; *u->p != q; u->p++) {
		if (*u->p == '\0')
			return lora_errf(LORA_EPARSE, u->err,
			                 "unclosed string");
		if (*u->p == '\\' && u->p[1] != '\0')
			u->p++;
		if (n >= QRY_USER_PASSWORD_BYTES_MAX)
			return lora_errf(LORA_ELIMIT, u->err,
			                 "password longer than %d bytes",
			                 QRY_USER_PASSWORD_BYTES_MAX);
		s->text[n++] = *u->p;
	}
	u->p++;
	s->text[n] = '\0';
	return 0;
}

/* [CHANGE [NOT] REQUIRED] */
static int change(struct up *u, struct qry_user_stmt *s)
{
	if (!kw(u, "CHANGE"))
		return 0;
	s->change_required = kw(u, "NOT") ? 0 : 1;
	return need(u, "REQUIRED");
}

/* SET [PLAINTEXT | ENCRYPTED] PASSWORD pw [CHANGE ...] */
static int set_password(struct up *u, struct qry_user_stmt *s, int create)
{
	int rc = need(u, "SET");
	if (rc)
		return rc;
	if (kw(u, "ENCRYPTED"))
		s->encrypted = 1;
	else
		(void)kw(u, "PLAINTEXT");
	if ((rc = need(u, "PASSWORD")) != 0)
		return rc;
	ws(u);
	if (!create && !s->encrypted && !strncasecmp(u->p, "CHANGE", 6))
		return change(u, s);
	rc = secret(u, &s->password);
	return rc ? rc : change(u, s);
}

static int parse_alter(struct up *u, struct qry_user_stmt *s)
{
	int rc;
	if (kw(u, "CURRENT")) {
		s->kind = QRY_USER_ALTER_CURRENT;
		if ((rc = need(u, "USER")) || (rc = need(u, "SET")))
			return rc;
		if (kw(u, "ENCRYPTED")) { /* internal: after FROM was checked */
			s->encrypted = 1;
			return need(u, "PASSWORD") ? LORA_EPARSE
			                           : secret(u, &s->password);
		}
		if ((rc = need(u, "PASSWORD")) || (rc = need(u, "FROM")) ||
		    (rc = secret(u, &s->old)) || (rc = need(u, "TO")))
			return rc;
		return secret(u, &s->password);
	}
	s->kind = QRY_USER_ALTER;
	if ((rc = need(u, "USER")) || (rc = name(u, s->name, sizeof s->name)))
		return rc;
	if (kw(u, "IF")) {
		if ((rc = need(u, "EXISTS")))
			return rc;
		s->if_exists = 1;
	}
	return set_password(u, s, 0);
}

static int parse_role(struct up *u, struct qry_user_stmt *s, int grant)
{
	s->kind = grant ? QRY_USER_GRANT : QRY_USER_REVOKE;
	int rc = kw(u, "ROLES") ? 0 : need(u, "ROLE");
	if (rc || (rc = name(u, s->role, sizeof s->role)))
		return rc;
	for (char *c = s->role; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (strcmp(s->role, "reader") && strcmp(s->role, "writer") &&
	    strcmp(s->role, "admin"))
		return lora_errf(LORA_EPARSE, u->err,
		                 "unknown role '%s' (reader, writer or admin)",
		                 s->role);
	if ((rc = need(u, grant ? "TO" : "FROM")))
		return rc;
	return name(u, s->name, sizeof s->name);
}

static int parse_body(struct up *u, struct qry_user_stmt *s)
{
	int rc;
	if (kw(u, "SHOW")) {
		if (kw(u, "USERS")) {
			s->kind = QRY_USER_SHOW;
			return 0;
		}
		s->kind = QRY_USER_SHOW_CURRENT;
		return need(u, "CURRENT") ? LORA_EPARSE : need(u, "USER");
	}
	if (kw(u, "CREATE")) {
		s->kind = QRY_USER_CREATE;
		if ((rc = need(u, "USER")) ||
		    (rc = name(u, s->name, sizeof s->name)))
			return rc;
		if (kw(u, "IF")) {
			if ((rc = need(u, "NOT")) || (rc = need(u, "EXISTS")))
				return rc;
			s->if_exists = 1;
		}
		return set_password(u, s, 1);
	}
	if (kw(u, "ALTER"))
		return parse_alter(u, s);
	if (kw(u, "DROP")) {
		s->kind = QRY_USER_DROP;
		if ((rc = need(u, "USER")) ||
		    (rc = name(u, s->name, sizeof s->name)))
			return rc;
		if (kw(u, "IF")) {
			if ((rc = need(u, "EXISTS")))
				return rc;
			s->if_exists = 1;
		}
		return 0;
	}
	if (kw(u, "GRANT"))
		return parse_role(u, s, 1);
	if (kw(u, "REVOKE"))
		return parse_role(u, s, 0);
	return LORA_ENOTFOUND;
}

/* The user statements, by the words they start with. */
static const char *const starts[][3] = {
    {"CREATE", "USER", NULL},     {"ALTER", "USER", NULL},
    {"ALTER", "CURRENT", "USER"}, {"DROP", "USER", NULL},
    {"GRANT", "ROLE", NULL},      {"GRANT", "ROLES", NULL},
    {"REVOKE", "ROLE", NULL},     {"REVOKE", "ROLES", NULL},
    {"SHOW", "USERS", NULL},      {"SHOW", "CURRENT", "USER"},
};

/* Whether the statement starts like a user statement: 1 + the index of
 * its words in starts[], or 0. */
static int is_user_stmt(const char *text)
{
	for (size_t i = 0; i < sizeof starts / sizeof *starts; i++) {
		struct up u = {text, NULL};
		int ok = 1;
		for (int k = 0; k < 3 && starts[i][k] && ok; k++)
			ok = kw(&u, starts[i][k]);
		if (ok)
			return (int)i + 1;
	}
	return 0;
}

int qry_user_refuse_in_tx(const char *text, char *errmsg)
{
	int k = text ? is_user_stmt(text) : 0;
	if (k == 0)
		return 0;
	const char *const *w = starts[k - 1];
	return lora_errf(LORA_EINVAL, errmsg,
	                 "%s %s%s%s is an administration command: it runs "
	                 "only as an auto-commit statement, not inside an "
	                 "explicit transaction",
	                 w[0], w[1], w[2] ? " " : "", w[2] ? w[2] : "");
}

int qry_user_parse(const char *text, struct qry_user_stmt *out, char *errmsg)
{
	memset(out, 0, sizeof *out);
	out->change_required = -1;
	if (!is_user_stmt(text))
		return LORA_ENOTFOUND;
	struct up u = {text, errmsg};
	int rc = parse_body(&u, out);
	if (rc == LORA_ENOTFOUND)
		rc = lora_errf(LORA_EPARSE, errmsg, "not a user statement");
	if (rc)
		return rc;
	ws(&u);
	if (*u.p == ';')
		u.p++;
	ws(&u);
	if (*u.p != '\0')
		return lora_errf(LORA_EPARSE, errmsg,
		                 "unexpected text after the statement: '%.20s'",
		                 u.p);
	return 0;
}

/* ---- rendering --------------------------------------------------------- */

static int put_name(struct lora_buf *b, const char *n)
{
	int rc = lora_buf_putc(b, '`');
	if (!rc)
		rc = lora_buf_puts(b, n);
	return rc ? rc : lora_buf_putc(b, '`');
}

static int put_secret(struct lora_buf *b, const struct qry_user_secret *s)
{
	/* in backticks: a parameter may be written $`any name` */
	if (s->param[0]) {
		int rc = lora_buf_putc(b, '$');
		return rc ? rc : put_name(b, s->param);
	}
	int rc = lora_buf_putc(b, '\'');
	for (const char *c = s->text; !rc && *c; c++) {
		if (*c == '\'' || *c == '\\')
			rc = lora_buf_putc(b, '\\');
		if (!rc)
			rc = lora_buf_putc(b, *c);
	}
	return rc ? rc : lora_buf_putc(b, '\'');
}

static int put_set(struct lora_buf *b, const struct qry_user_stmt *s)
{
	int rc = 0;
	if (s->password.set) {
		rc = lora_buf_puts(b, s->encrypted ? " SET ENCRYPTED PASSWORD "
		                                   : " SET PASSWORD ");
		if (!rc)
			rc = put_secret(b, &s->password);
	} else {
		rc = lora_buf_puts(b, " SET PASSWORD");
	}
	if (!rc && s->change_required >= 0)
		rc = lora_buf_puts(b, s->change_required
		                          ? " CHANGE REQUIRED"
		                          : " CHANGE NOT REQUIRED");
	return rc;
}

int qry_user_render(const struct qry_user_stmt *s, struct lora_buf *b)
{
	int rc = 0;
	switch (s->kind) {
	case QRY_USER_CREATE:
	case QRY_USER_ALTER:
		rc = lora_buf_puts(b, s->kind == QRY_USER_CREATE
		                          ? "CREATE USER "
		                          : "ALTER USER ");
		if (!rc)
			rc = put_name(b, s->name);
		if (!rc && s->if_exists)
			rc = lora_buf_puts(b, s->kind == QRY_USER_CREATE
			                          ? " IF NOT EXISTS"
			                          : " IF EXISTS");
		return rc ? rc : put_set(b, s);
	case QRY_USER_ALTER_CURRENT:
		if (s->encrypted) {
			rc =
			    lora_buf_puts(b, "ALTER CURRENT USER SET ENCRYPTED "
			                     "PASSWORD ");
			return rc ? rc : put_secret(b, &s->password);
		}
		rc = lora_buf_puts(b, "ALTER CURRENT USER SET PASSWORD FROM ");
		if (!rc)
			rc = put_secret(b, &s->old);
		if (!rc)
			rc = lora_buf_puts(b, " TO ");
		return rc ? rc : put_secret(b, &s->password);
	case QRY_USER_DROP:
		rc = lora_buf_puts(b, "DROP USER ");
		if (!rc)
			rc = put_name(b, s->name);
		return rc || !s->if_exists ? rc
		                           : lora_buf_puts(b, " IF EXISTS");
	case QRY_USER_GRANT:
	case QRY_USER_REVOKE:
		rc = lora_buf_printf(
		    b, "%s ROLE %s %s ",
		    s->kind == QRY_USER_GRANT ? "GRANT" : "REVOKE", s->role,
		    s->kind == QRY_USER_GRANT ? "TO" : "FROM");
		return rc ? rc : put_name(b, s->name);
	case QRY_USER_SHOW:
		return lora_buf_puts(b, "SHOW USERS");
	case QRY_USER_SHOW_CURRENT:
		return lora_buf_puts(b, "SHOW CURRENT USER");
	}
	return LORA_EINVAL;
}
