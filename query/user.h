/*
 * user.h - the user-management statements (Neo4j's syntax), parsed apart
 * from Cypher: they change the system keyspace, not the graph, and node/
 * handles them (node/auth.c) so that a password is hashed where it
 * arrived and never reaches the log. A pure function of its input.
 *
 *   CREATE USER name [IF NOT EXISTS]
 *       SET [PLAINTEXT | ENCRYPTED] PASSWORD pw [CHANGE [NOT] REQUIRED]
 *   ALTER USER name [IF EXISTS] SET [PLAINTEXT | ENCRYPTED] PASSWORD pw
 *       [CHANGE [NOT] REQUIRED]
 *   ALTER USER name SET PASSWORD CHANGE [NOT] REQUIRED
 *   ALTER CURRENT USER SET PASSWORD FROM pw TO pw
 *   DROP USER name [IF EXISTS]
 *   GRANT ROLE[S] role TO name      REVOKE ROLE[S] role FROM name
 *   SHOW USERS                      SHOW CURRENT USER
 *
 * pw is a string literal ('...' or "...") or a $parameter; name is an
 * identifier or `quoted`. Keywords are case-insensitive; a trailing ';'
 * is allowed.
 */
#ifndef LORA_QUERY_USER_H
#define LORA_QUERY_USER_H

#include "lora.h"

#define QRY_USER_NAME_BYTES_MAX     128 /* = STO_USER_NAME_BYTES_MAX */
#define QRY_USER_PASSWORD_BYTES_MAX 1024
#define QRY_USER_PARAM_BYTES_MAX    128

enum qry_user_kind {
	QRY_USER_CREATE = 1,
	QRY_USER_ALTER,
	QRY_USER_ALTER_CURRENT,
	QRY_USER_DROP,
	QRY_USER_GRANT,
	QRY_USER_REVOKE,
	QRY_USER_SHOW,
	QRY_USER_SHOW_CURRENT,
};

/* A password operand: a literal (text) or a parameter (param). */
struct qry_user_secret {
	int set;
	char text[QRY_USER_PASSWORD_BYTES_MAX + 1];
	char param[QRY_USER_PARAM_BYTES_MAX + 1];
};

struct qry_user_stmt {
	enum qry_user_kind kind;
	char name[QRY_USER_NAME_BYTES_MAX + 1];
	char role[16];
	struct qry_user_secret password; /* SET PASSWORD, or TO */
	struct qry_user_secret old;      /* ALTER CURRENT USER: FROM */
	int encrypted;       /* SET ENCRYPTED PASSWORD: an argon2id hash */
	int change_required; /* -1: not said, 0: NOT REQUIRED, 1: REQUIRED */
	int if_exists;       /* IF EXISTS / IF NOT EXISTS */
};

/*
 * Parses text as a user statement into *out: 0, LORA_ENOTFOUND when it
 * is not one (ordinary Cypher), or LORA_EPARSE (LORA_ELIMIT for a name
 * or password too long) with a message in errmsg. *out may hold
 * passwords: the caller wipes it (sodium_memzero) when done.
 */
int qry_user_parse(const char *text, struct qry_user_stmt *out, char *errmsg);

/*
 * LORA_EINVAL, with a message naming the command ("SHOW USERS is an
 * administration command: it runs only as an auto-commit statement, not
 * inside an explicit transaction"), when text starts like a user
 * statement; 0 otherwise. User statements change the system keyspace
 * through node/auth.c, outside any transaction: qry_open refuses them in
 * an explicit one (qry_request.explicit_tx), and so does Bolt's RUN in a
 * transaction before it classifies the statement.
 */
int qry_user_refuse_in_tx(const char *text, char *errmsg);

/* The statement as text that parses back to it (names quoted, strings
 * escaped), appended to out. */
int qry_user_render(const struct qry_user_stmt *s, struct lora_buf *out);

#endif
