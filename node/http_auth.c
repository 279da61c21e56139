/*
 * http_auth.c - who sends an HTTP request, and whether the endpoint is
 * theirs to call (http_int.h, "who asks"); POST /auth/token.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "http_int.h"
#include "log.h"

/* The role an endpoint needs; -1: open to anyone. */
static int route_role(struct lnode *n, const struct node_route *r)
{
	const char *p = r->path;
	if (!strcmp(p, "/health"))
		return -1;
	if (!strcmp(p, "/metrics"))
		return n->cfg.metrics_auth ? NODE_ROLE_NONE : -1;
	if (!strcmp(p, "/query") || !strcmp(p, "/query/batch") ||
	    !strcmp(p, "/explain") || !strcmp(p, "/profile") ||
	    !strcmp(p, "/auth/token") || !strncmp(p, "/tx", 3))
		return NODE_ROLE_NONE; /* statements are checked by role */
	if (!strcmp(p, "/cluster/status") || !strcmp(p, "/changes"))
		return NODE_ROLE_READER;
	return NODE_ROLE_ADMIN; /* /cluster/ changes, /admin/, the rest */
}

/* "Basic base64(user:password)": 0 with user and password split in buf. */
static int basic_split(const char *v, char *buf, size_t size, char **user,
                       char **pw)
{
	size_t len = 0;
	if (sodium_base642bin((unsigned char *)buf, size - 1, v, strlen(v),
	                      " \t", &len, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	buf[len] = '\0';
	char *colon = memchr(buf, ':', len);
	if (colon == NULL || strlen(buf) != len)
		return -1;
	*colon = '\0';
	*user = buf;
	*pw = colon + 1;
	return 0;
}

/* "ROLE PROOFHEX USER" from a member: 0 with *who (the lower of ROLE and
 * the user's role here), LORA_EUNAUTHORIZED, LORA_ETIMEOUT (nowait and
 * the store busy with a snapshot, or the bootstrap not applied here), or
 * LORA_EUNAVAILABLE / LORA_ELIMIT (node_auth_peer_check_wait). */
static int ident_check(struct lnode *n, const char *v, int nowait,
                       struct node_identity *who)
{
	unsigned role;
	char hex[2 * STO_SECRET_BYTES_MAX + 1];
	int used = 0;
	if (sscanf(v, "%u %128s %n", &role, hex, &used) != 2 || used == 0 ||
	    role > NODE_ROLE_ADMIN)
		return LORA_EUNAUTHORIZED;
	uint8_t proof[STO_SECRET_BYTES_MAX];
	size_t len = 0;
	if (sodium_hex2bin(proof, sizeof proof, hex, strlen(hex), NULL, &len,
	                   NULL) != 0)
		return LORA_EUNAUTHORIZED;
	int rc = node_auth_peer_check_wait(n, proof, len, nowait);
	if (rc)
		return rc;
	snprintf(who->user, sizeof who->user, "%s", v + used);
	/* the lower of the role the member read and the user's role here
	 * now: a demotion or DROP USER the member has not applied yet takes
	 * effect at once (a user unknown here: 401) */
	int now_role = NODE_ROLE_NONE;
	rc = node_auth_role_now(n, who->user, nowait, &now_role);
	if (rc)
		return rc;
	who->role = (int)role < now_role ? (int)role : now_role;
	return 0;
}

/*
 * The credentials a connection's last request was accepted with
 * (node_http_conn_memo): a client or a follower's pooled proxy connection
 * sends the same Authorization (or X-Lora-Identity) header with every
 * request, so the next request with the very same header takes the same
 * identity without the check (Basic decoding, the keyed hashes of the
 * pair and of the stored hash, the user record's read and unpack; on the
 * leader, the proof and the user's role now). Only while the users'
 * stamp taken before the check has not moved (node_auth_users_gen): any
 * user change, a new password, a role granted or revoked, a dropped
 * user, the bootstrap or a new store ends every memo at the next
 * request. The memo keeps no secret: only which header it was and a
 * keyed hash of its value (BLAKE2b, 32 bytes, under a key drawn at random
 * once per process), compared in constant time. Bearer tokens expire and
 * are not kept here.
 */
/* the longest header kept: "Basic " and the base64 of the longest user
 * name and password (about 1,550 bytes) fit */
#define HTTP_MEMO_HEADER_BYTES_MAX 2048

struct http_memo {
	uint64_t gen; /* node_auth_users_gen before the check; 0: empty */
	int ident;    /* the header was X-Lora-Identity, else Authorization */
	uint8_t hash[crypto_generichash_BYTES]; /* keyed hash of its value */
	struct node_identity who;
};
_Static_assert(sizeof(struct http_memo) <= NODE_HTTP_MEMO_BYTES,
               "the connection's memo room is too small");
_Static_assert(crypto_generichash_BYTES == 32, "a 32-byte hash");

static uint8_t memo_key[crypto_generichash_KEYBYTES];
static pthread_once_t memo_key_once = PTHREAD_ONCE_INIT;

static atomic_uint_fast64_t memo_hits; /* node_http_auth_memo_hits_total */

uint64_t node_http_auth_memo_hits_total(void)
{
	return atomic_load_explicit(&memo_hits, memory_order_relaxed);
}

static void memo_key_make(void)
{
	randombytes_buf(memo_key, sizeof memo_key); /* sodium_init: auth.c */
}

/* The keyed hash of the header value v (len bytes) into out. */
static void memo_hash(const char *v, size_t len,
                      uint8_t out[crypto_generichash_BYTES])
{
	pthread_once(&memo_key_once, memo_key_make);
	crypto_generichash(out, crypto_generichash_BYTES, (const uint8_t *)v,
	                   len, memo_key, sizeof memo_key);
}

static int memo_hit(const struct http_memo *m, int ident,
                    const uint8_t hash[crypto_generichash_BYTES], uint64_t gen)
{
	return gen != 0 && m->gen == gen && m->ident == ident &&
	       sodium_memcmp(m->hash, hash, crypto_generichash_BYTES) == 0;
}

static void memo_keep(struct http_memo *m, int ident,
                      const uint8_t hash[crypto_generichash_BYTES],
                      uint64_t gen, const struct node_identity *who)
{
	sodium_memzero(m, sizeof *m);
	if (gen == 0)
		return;
	m->ident = ident;
	memcpy(m->hash, hash, crypto_generichash_BYTES);
	m->who = *who;
	m->gen = gen;
}

/* Who sends x, checked: see identify. */
static int identify_once(struct lnode *n, struct node_http_ex *x,
                         int cache_only, struct node_identity *who,
                         const char **user)
{
	const char *v = node_http_authz(x), *id = node_http_ident(x);
	*user = "";
	if (id) {
		int rc = ident_check(n, id, cache_only, who);
		if (rc == LORA_EUNAUTHORIZED)
			node_auth_log_failure(n, "forwarded http", "");
		return rc;
	}
	if (v && !strncasecmp(v, "Bearer ", 7))
		return node_auth_token_check(n, v + 7, cache_only, who);
	if (v == NULL || strncasecmp(v, "Basic ", 6))
		return LORA_EUNAUTHORIZED;
	char buf[NODE_USER_BYTES_MAX + NODE_PASSWORD_BYTES_MAX + 8], *u, *pw;
	if (basic_split(v + 6, buf, sizeof buf, &u, &pw) != 0)
		return LORA_EUNAUTHORIZED;
	int rc = node_auth_password(n, u, pw, cache_only, who);
	*user = rc == LORA_EUNAUTHORIZED ? u : "";
	if (rc == LORA_EUNAUTHORIZED)
		node_auth_log_failure(n, "http", u);
	sodium_memzero(buf, sizeof buf);
	return rc;
}

/* Who sends x: 0, LORA_EUNAUTHORIZED, or LORA_ETIMEOUT (cache_only and a
 * password to hash): from the connection's memo when its header is the
 * one last accepted and no user changed since, else checked (and kept). */
static int identify(struct lnode *n, struct node_http_ex *x, int cache_only,
                    struct node_identity *who, const char **user)
{
	const char *v = node_http_authz(x), *id = node_http_ident(x);
	const char *h = id ? id : v;
	struct http_memo *m = node_http_conn_memo(x);
	uint8_t hash[crypto_generichash_BYTES] = {0};
	uint64_t gen = 0;
	*user = "";
	if (h && (id || strncasecmp(h, "Bearer ", 7))) {
		size_t len = strlen(h);
		if (len <= HTTP_MEMO_HEADER_BYTES_MAX)
			gen = node_auth_users_gen(n, cache_only);
		if (gen != 0) {
			memo_hash(h, len, hash);
			if (memo_hit(m, id != NULL, hash, gen)) {
				*who = m->who;
				atomic_fetch_add_explicit(&memo_hits, 1,
				                          memory_order_relaxed);
				return 0;
			}
		}
	}
	int rc = identify_once(n, x, cache_only, who, user);
	if (rc == 0 && gen != 0)
		memo_keep(m, id != NULL, hash, gen, who);
	return rc;
}

int node_http_authorize(struct lnode *n, struct node_http_ex *x,
                        const struct node_route *r, int cache_only)
{
	struct node_identity who = {.role = NODE_ROLE_ADMIN};
	int need = route_role(n, r);
	/* the connection stops being pending (http.c) only once someone
	 * is known to send it: any request with authentication off, an
	 * authenticated one with it on (not a 401, not an open endpoint) */
	if (!node_auth_enabled(n))
		node_http_known(x);
	if (need < 0 || !node_auth_enabled(n)) {
		if (need < 0)
			who.role = NODE_ROLE_NONE; /* nobody in particular */
		node_http_set_identity(x, &who);
		return 0;
	}
	const char *user;
	int rc = identify(n, x, cache_only, &who, &user);
	if (rc == LORA_ETIMEOUT)
		return NODE_AUTH_LATER;
	if (rc == LORA_ELIMIT) {
		node_http_reply_error(x, LORA_EUNAVAILABLE,
		                      NODE_AUTH_SECRET_CROWDED_MSG);
		return 1;
	}
	if (rc == LORA_EUNAVAILABLE) {
		node_http_reply_error(x, rc,
		                      "the credentials cannot be checked now "
		                      "(too many logins waiting for a password "
		                      "check, or the auth bootstrap is not "
		                      "applied here yet): retry");
		return 1;
	}
	if (rc == 0)
		node_http_known(x);
	if (rc) {
		node_http_reply_unauthorized(
		    x, node_http_authz(x) || node_http_ident(x)
		           ? "wrong user name, password or token"
		           : "authentication required: HTTP Basic or a "
		             "bearer token from POST /auth/token");
		return 1;
	}
	if (who.role < need) {
		char msg[LORA_ERRMSG_BYTES];
		snprintf(msg, sizeof msg,
		         "%s needs the %s role (user '%s' has %s)", r->path,
		         node_role_name(need), who.user,
		         node_role_name(who.role));
		node_http_reply_error(x, LORA_EFORBIDDEN, msg);
		return 1;
	}
	node_http_set_identity(x, &who);
	return 0;
}

void node_http_ident_line(struct lnode *n, const struct node_http_ex *x,
                          char *out, size_t size)
{
	uint8_t proof[STO_SECRET_BYTES_MAX];
	size_t len = 0;
	char hex[2 * STO_SECRET_BYTES_MAX + 1];
	out[0] = '\0';
	if (!node_auth_enabled(n))
		return;
	if (node_auth_peer_proof(n, 1, proof, &len) != 0) {
		/* right after the cluster started, before the bootstrap entry
		 * is applied here: the leader checks the caller's own
		 * credentials (a password; this node's tokens it cannot) */
		const char *v = node_http_authz(x);
		int w = v ? snprintf(out, size, "Authorization: %s\r\n", v) : 0;
		if (w < 0 || (size_t)w >= size)
			out[0] = '\0';
		return;
	}
	sodium_bin2hex(hex, sizeof hex, proof, len);
	const struct node_identity *who = node_http_identity(x);
	int w = snprintf(out, size, "X-Lora-Identity: %d %s %s\r\n", who->role,
	                 hex, who->user);
	if (w < 0 || (size_t)w >= size)
		out[0] = '\0';
	sodium_memzero(hex, sizeof hex);
	sodium_memzero(proof, sizeof proof);
}

int node_http_token(struct lnode *n, struct node_http_ex *x,
                    const struct node_route *r)
{
	(void)r;
	const struct node_identity *who = node_http_identity(x);
	char tok[NODE_AUTH_TOKEN_HEX_BYTES];
	uint64_t ttl = 0;
	if (!node_auth_enabled(n)) {
		node_http_reply_error(x, LORA_EINVAL,
		                      "authentication is off: no tokens");
		return 0;
	}
	int rc = node_auth_token_issue(n, who, tok, &ttl);
	if (rc) {
		node_http_reply_error(x, rc, "too many live tokens");
		return 0;
	}
	json_t *j = json_pack("{s:s, s:s, s:I, s:s}", "token", tok, "user",
	                      who->user, "expiresInMs", (json_int_t)ttl, "role",
	                      node_role_name(who->role));
	sodium_memzero(tok, sizeof tok);
	node_http_reply_json(x, 200, j, NULL, NULL);
	return 1;
}
