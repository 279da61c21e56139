/*
 * auth.c - users, passwords, tokens and the bootstrap of the system
 * keyspace (auth.h, docs/security.md).
 *
 * Passwords are checked against the argon2id strings of the replicated
 * user records. argon2id costs tens of milliseconds and 64 MiB by design,
 * so a verified (user, password) pair is remembered for
 * NODE_AUTH_CACHE_MS under a keyed BLAKE2b of the pair (the key is random
 * per process: the cache never holds a password or anything that tests
 * one offline), together with a digest of the hash it matched: a changed
 * password, a dropped user or a changed role takes effect at the next
 * request, since the record is read every time (an HTTP connection that
 * sends the same header again skips all of this while the users' stamp,
 * node_auth_users_gen, stays the same: http_auth.c). Tokens are kept the
 * same way, in memory on the node that issued them.
 *
 * A burst of requests with the same credentials and a cold cache (64
 * clients of one application starting at once) runs argon2id once: the
 * first request verifies, the others with the same pair wait for its
 * verdict (struct auth_flight) instead of queueing for argon2id slots of
 * their own, where all but NODE_AUTH_HASHES_MAX + NODE_AUTH_HASH_WAITERS_MAX
 * were answered "busy, retry".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth.h"
#include "log.h"
#include "node_int.h"
#include "tokens.h"
#include "user.h"

#define AUTH_DIGEST_BYTES 16
_Static_assert(AUTH_DIGEST_BYTES == NODE_TOKENS_PW_BYTES,
               "a token keeps a password digest");

struct auth_cached {
	uint8_t key[crypto_generichash_BYTES]; /* keyed hash of the pair */
	uint8_t matched[AUTH_DIGEST_BYTES];    /* digest of the hash */
	uint64_t at_ms;                        /* 0: free */
};

/* A password check in progress, shared by every request for the same
 * (user, password) pair against the same hash (all under mu). */
struct auth_flight {
	uint8_t key[crypto_generichash_BYTES]; /* keyed hash of the pair */
	uint8_t matched[AUTH_DIGEST_BYTES];    /* digest of the hash */
	int running;                           /* the first one verifies */
	int waiters;                           /* others wait for verdict */
	int verdict;                           /* verify_password's */
};

struct node_auth {
	int enabled;
	pthread_mutex_t mu;
	pthread_cond_t hash_cond;
	pthread_cond_t flight_cond; /* a flight landed */
	struct auth_flight flights[NODE_AUTH_FLIGHTS_MAX];
	int hashing;      /* argon2id runs in progress (mu) */
	int hash_waiting; /* logins waiting for a run (mu) */
	uint64_t checks;  /* verifications run (mu) */
	uint8_t cache_key[crypto_generichash_KEYBYTES];
	struct auth_cached cache[NODE_AUTH_CACHE_SLOTS];
	struct auth_cached denied[NODE_AUTH_DENIED_SLOTS]; /* refused lately */
	struct node_tokens *tokens; /* issued bearer tokens (mu) */
	/* the cluster secret once applied (mu) */
	int have_secret;
	int secret_waiters; /* node_auth_peer_check waiting for it (mu) */
	uint8_t secret[STO_SECRET_BYTES_MAX];
	size_t secret_len;
	/* the configured first admin, until the keyspace is bootstrapped */
	int boot_set;
	uint8_t boot_digest[crypto_generichash_BYTES];
	char boot_hash[crypto_pwhash_STRBYTES];
	char dummy_hash[crypto_pwhash_STRBYTES]; /* unknown users */
	uint64_t boot_sent_ms;
	uint64_t fail_logged_ms, fail_quiet; /* refused logins (mu) */
};

const char *node_role_name(int role)
{
	switch (role) {
	case NODE_ROLE_READER:
		return "reader";
	case NODE_ROLE_WRITER:
		return "writer";
	case NODE_ROLE_ADMIN:
		return "admin";
	default:
		return "none";
	}
}

#ifdef LORA_TEST_HOOKS
/* Test hook LORA_AUTH_STALE_ROLE_TESTING=USER:ROLE (compiled with the
 * CMake option LORA_TEST_HOOKS): this node takes USER to have ROLE
 * (reader, writer or admin) whatever its user store says, as a node that
 * has not applied a GRANT or REVOKE yet would
 * (tests/integration/peer_forward_stale.sh). */
static const char *stale_role_env;
static void stale_role_read(void)
{
	stale_role_env = getenv("LORA_AUTH_STALE_ROLE_TESTING");
}

static int stale_role_testing(const Lora__UserRecord *u, int role)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, stale_role_read); /* read once, as peerfwd.c */
	const char *e = stale_role_env;
	const char *colon = e ? strchr(e, ':') : NULL;
	if (colon == NULL || u->name == NULL ||
	    strlen(u->name) != (size_t)(colon - e) ||
	    strncmp(u->name, e, (size_t)(colon - e)) != 0)
		return role;
	return !strcmp(colon + 1, "admin")    ? NODE_ROLE_ADMIN
	       : !strcmp(colon + 1, "writer") ? NODE_ROLE_WRITER
	       : !strcmp(colon + 1, "reader") ? NODE_ROLE_READER
	                                      : NODE_ROLE_NONE;
}
#else
static int stale_role_testing(const Lora__UserRecord *u, int role)
{
	(void)u;
	return role;
}
#endif

static int role_of(const Lora__UserRecord *u)
{
	int r = NODE_ROLE_NONE;
	for (size_t i = 0; i < u->n_roles; i++) {
		int k = !strcmp(u->roles[i], "admin")    ? NODE_ROLE_ADMIN
		        : !strcmp(u->roles[i], "writer") ? NODE_ROLE_WRITER
		        : !strcmp(u->roles[i], "reader") ? NODE_ROLE_READER
		                                         : NODE_ROLE_NONE;
		if (k > r)
			r = k;
	}
	return stale_role_testing(u, u->change_required ? NODE_ROLE_NONE : r);
}

static void digest(const char *s, size_t len, uint8_t *out, size_t out_len)
{
	crypto_generichash(out, out_len, (const uint8_t *)s, len, NULL, 0);
}

/* ---- argon2id, at most NODE_AUTH_HASHES_MAX at once -------------------- */

/* A slot to hash in; with `bounded`, -1 instead of waiting behind
 * NODE_AUTH_HASH_WAITERS_MAX others (a flood of logins with wrong
 * passwords must not tie up every worker of every protocol). */
static int hash_enter_bounded(struct node_auth *a, int bounded)
{
	pthread_mutex_lock(&a->mu);
	if (bounded && a->hashing >= NODE_AUTH_HASHES_MAX &&
	    a->hash_waiting >= NODE_AUTH_HASH_WAITERS_MAX) {
		pthread_mutex_unlock(&a->mu);
		return -1;
	}
	a->hash_waiting++;
	while (a->hashing >= NODE_AUTH_HASHES_MAX)
		pthread_cond_wait(&a->hash_cond, &a->mu);
	a->hash_waiting--;
	a->hashing++;
	pthread_mutex_unlock(&a->mu);
	return 0;
}

static void hash_enter(struct node_auth *a)
{
	hash_enter_bounded(a, 0);
}

static void hash_leave(struct node_auth *a)
{
	pthread_mutex_lock(&a->mu);
	a->hashing--;
	pthread_cond_signal(&a->hash_cond);
	pthread_mutex_unlock(&a->mu);
}

/* out: crypto_pwhash_STRBYTES. */
static int hash_password(struct node_auth *a, const char *pw, char *out)
{
	hash_enter(a);
	int rv = crypto_pwhash_str(out, pw, strlen(pw),
	                           crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                           crypto_pwhash_MEMLIMIT_INTERACTIVE);
	hash_leave(a);
	return rv == 0 ? 0 : LORA_ENOMEM;
}

/* 1 when pw matches hash, 0 when not, -1 when too many logins wait
 * (verify nothing: the caller answers "busy, retry"). */
static int verify_password(struct node_auth *a, const char *hash,
                           const char *pw)
{
	if (hash_enter_bounded(a, 1) != 0)
		return -1;
	pthread_mutex_lock(&a->mu);
	a->checks++;
	pthread_mutex_unlock(&a->mu);
	int rv = crypto_pwhash_str_verify(hash, pw, strlen(pw));
	hash_leave(a);
	return rv == 0;
}

/* ---- the system keyspace ------------------------------------------------ */

/* The state store for a read; with nowait, NULL (and *busy) instead of
 * waiting while a snapshot install swaps it (the HTTP I/O thread must
 * never wait). node_store_release after a non-NULL answer. */
static struct sto_store *store_get(struct lnode *n, int nowait, int *busy)
{
	struct sto_store *st =
	    nowait ? node_store_try_acquire(n) : node_store_acquire(n);
	*busy = nowait && st == NULL;
	return st;
}

/* 1 when the cluster secret is known (cached once read), 0 when not
 * bootstrapped yet, -1 when the store is busy (nowait). */
static int load_secret(struct lnode *n, int nowait)
{
	struct node_auth *a = n->auth;
	pthread_mutex_lock(&a->mu);
	int have = a->have_secret;
	pthread_mutex_unlock(&a->mu);
	if (have)
		return 1;
	uint8_t s[STO_SECRET_BYTES_MAX];
	size_t len = 0;
	int busy;
	struct sto_store *st = store_get(n, nowait, &busy);
	if (busy)
		return -1;
	int rc = st ? sto_auth_secret(st, s, &len) : LORA_ENOTFOUND;
	node_store_release(n);
	if (rc)
		return 0;
	pthread_mutex_lock(&a->mu);
	memcpy(a->secret, s, len);
	a->secret_len = len;
	a->have_secret = 1;
	pthread_mutex_unlock(&a->mu);
	sodium_memzero(s, sizeof s);
	return 1;
}

/* 0 with *out, LORA_ENOTFOUND, or LORA_ETIMEOUT (nowait: the store busy
 * with a snapshot, or the record not in memory, so that the HTTP I/O
 * thread never waits for the disk; the caller asks again off it). */
static int user_load(struct lnode *n, const char *name, Lora__UserRecord **out,
                     int nowait)
{
	int busy;
	struct sto_store *st = store_get(n, nowait, &busy);
	if (busy)
		return LORA_ETIMEOUT;
	int rc = st == NULL ? LORA_EUNAVAILABLE
	         : nowait   ? sto_user_get_cached(st, name, out)
	                    : sto_user_get(st, name, out);
	node_store_release(n);
	return rc;
}

uint64_t node_auth_users_gen(struct lnode *n, int nowait)
{
	if (!node_auth_enabled(n))
		return 0;
	int busy;
	struct sto_store *st = store_get(n, nowait, &busy);
	if (busy)
		return 0;
	uint64_t g = st ? sto_user_gen(st) : 0;
	node_store_release(n);
	return g;
}

extern char **environ;

/* A WARN line for each test hook (docs/node.md "Test hooks") set in the
 * environment: LORA_*_TESTING (honoured only when built with the CMake
 * option LORA_TEST_HOOKS) and LORA_TEST_* (always compiled), so that a
 * stray variable in a unit file cannot change a node without a trace. */
static void test_hooks_log(void)
{
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		int k = eq ? (int)(eq - *e) : (int)strlen(*e);
		int testing = k > 8 && !strncmp(*e + k - 8, "_TESTING", 8);
		if (strncmp(*e, "LORA_", 5) != 0 ||
		    (!testing && strncmp(*e, "LORA_TEST_", 10) != 0))
			continue;
#ifndef LORA_TEST_HOOKS
		if (testing) {
			LOG_WARN("test hook %.*s is set but ignored (built "
			         "without LORA_TEST_HOOKS)",
			         k, *e);
			continue;
		}
#endif
		LOG_WARN("test hook %s is set and honoured: this node "
		         "misbehaves on purpose (for tests only, docs/node.md "
		         "\"Test hooks\")",
		         *e);
	}
}

int node_auth_open(struct lnode *n, char *errmsg)
{
	test_hooks_log();
	if (sodium_init() < 0)
		return lora_errf(LORA_EINTERNAL, errmsg,
		                 "libsodium failed to initialise");
	struct node_auth *a = lora_calloc(1, sizeof *a);
	if (a == NULL || node_tokens_new(&a->tokens) != 0) {
		lora_free(a);
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->hash_cond, NULL);
	pthread_cond_init(&a->flight_cond, NULL);
	randombytes_buf(a->cache_key, sizeof a->cache_key);
	a->enabled = n->cfg.auth;
	n->auth = a;
	if (!a->enabled) {
		LOG_WARN("authentication is OFF (auth = off): every client "
		         "can read, write and administer this node; for "
		         "development only");
		return 0;
	}
	/* an unknown user costs the same argon2id work as a known one */
	if (hash_password(a, "-", a->dummy_hash) != 0)
		return lora_errf(LORA_ENOMEM, errmsg, "argon2id failed");
	const char *pw = n->cfg.admin_password;
	if (load_secret(n, 0) && pw[0] == '\0')
		return 0;
	if (pw[0] == '\0')
		return lora_errf(
		    LORA_ECONFIG, errmsg,
		    "authentication is on and no user exists yet, but no "
		    "password for the first admin was given: set "
		    "admin_password_file (or admin_password, or the "
		    "environment LORA_ADMIN_PASSWORD), or auth = off for "
		    "development");
	if (hash_password(a, pw, a->boot_hash) != 0)
		return lora_errf(LORA_ENOMEM, errmsg, "argon2id failed");
	digest(pw, strlen(pw), a->boot_digest, sizeof a->boot_digest);
	a->boot_set = 1;
	return 0;
}

void node_auth_close(struct lnode *n)
{
	struct node_auth *a = n->auth;
	if (a == NULL)
		return;
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->hash_cond);
	pthread_cond_destroy(&a->flight_cond);
	node_tokens_free(a->tokens);
	sodium_memzero(a, sizeof *a);
	lora_free(a);
	n->auth = NULL;
}

int node_auth_enabled(struct lnode *n)
{
	return n->auth && n->auth->enabled;
}

uint64_t node_auth_checks_total(struct lnode *n)
{
	struct node_auth *a = n->auth;
	if (a == NULL)
		return 0;
	pthread_mutex_lock(&a->mu);
	uint64_t c = a->checks;
	pthread_mutex_unlock(&a->mu);
	return c;
}

/* ---- passwords ----------------------------------------------------------- */

static void pair_key(struct node_auth *a, const char *user, const char *pw,
                     uint8_t *out)
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, a->cache_key, sizeof a->cache_key,
	                        crypto_generichash_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)user, strlen(user) + 1);
	crypto_generichash_update(&st, (const uint8_t *)pw, strlen(pw));
	crypto_generichash_final(&st, out, crypto_generichash_BYTES);
}

/* The slot for the pair k in cache (verified, NODE_AUTH_CACHE_SLOTS) or
 * in denied (refused, NODE_AUTH_DENIED_SLOTS). */
static struct auth_cached *cache_slot(struct node_auth *a, const uint8_t *k,
                                      int refused)
{
	uint32_t h = lora_get_be32(k);
	return refused ? &a->denied[h % NODE_AUTH_DENIED_SLOTS]
	               : &a->cache[h % NODE_AUTH_CACHE_SLOTS];
}

/* 1 when the pair was verified (refused: refused) lately against the hash
 * digest hd. */
static int cache_hit(struct node_auth *a, const uint8_t *k, const uint8_t *hd,
                     int refused)
{
	uint64_t ttl = refused ? NODE_AUTH_DENIED_MS : NODE_AUTH_CACHE_MS;
	pthread_mutex_lock(&a->mu);
	struct auth_cached *c = cache_slot(a, k, refused);
	int hit = c->at_ms && lora_now_ms() - c->at_ms < ttl &&
	          sodium_memcmp(c->key, k, sizeof c->key) == 0 &&
	          sodium_memcmp(c->matched, hd, sizeof c->matched) == 0;
	pthread_mutex_unlock(&a->mu);
	return hit;
}

static void cache_put(struct node_auth *a, const uint8_t *k, const uint8_t *hd,
                      int refused)
{
	pthread_mutex_lock(&a->mu);
	struct auth_cached *c = cache_slot(a, k, refused);
	memcpy(c->key, k, sizeof c->key);
	memcpy(c->matched, hd, sizeof c->matched);
	c->at_ms = lora_now_ms();
	pthread_mutex_unlock(&a->mu);
}

/* The running flight for the pair (k, hd), else NULL (mu held). */
static struct auth_flight *flight_find(struct node_auth *a, const uint8_t *k,
                                       const uint8_t *hd)
{
	for (int i = 0; i < NODE_AUTH_FLIGHTS_MAX; i++) {
		struct auth_flight *f = &a->flights[i];
		if (f->running &&
		    sodium_memcmp(f->key, k, sizeof f->key) == 0 &&
		    sodium_memcmp(f->matched, hd, sizeof f->matched) == 0)
			return f;
	}
	return NULL;
}

/* verify_password for the pair (k, hd), shared: when a check of the same
 * pair is running, its verdict (after waiting for it); else this one
 * runs, for every request of the pair that comes meanwhile. Without a
 * free flight slot, a check of its own. */
static int verify_shared(struct node_auth *a, const uint8_t *k,
                         const uint8_t *hd, const char *hash, const char *pw)
{
	pthread_mutex_lock(&a->mu);
	struct auth_flight *f = flight_find(a, k, hd);
	if (f) {
		/* bounded: the check itself waits for an argon2id slot at most
		 * behind NODE_AUTH_HASH_WAITERS_MAX others, this is a guard */
		struct timespec until;
		lora_deadline_after(&until, NODE_AUTH_FLIGHT_WAIT_MS);
		int timed_out = 0;
		f->waiters++;
		while (f->running && !timed_out)
			timed_out = pthread_cond_timedwait(&a->flight_cond,
			                                   &a->mu, &until) != 0;
		int v = f->running ? -1 : f->verdict;
		f->waiters--;
		pthread_mutex_unlock(&a->mu);
		return v;
	}
	f = NULL;
	for (int i = 0; i < NODE_AUTH_FLIGHTS_MAX && f == NULL; i++)
		if (!a->flights[i].running && a->flights[i].waiters == 0)
			f = &a->flights[i];
	if (f) {
		memcpy(f->key, k, sizeof f->key);
		memcpy(f->matched, hd, sizeof f->matched);
		f->running = 1;
	}
	pthread_mutex_unlock(&a->mu);
	int v = verify_password(a, hash, pw);
	if (f) {
		pthread_mutex_lock(&a->mu);
		f->verdict = v;
		f->running = 0;
		pthread_cond_broadcast(&a->flight_cond);
		pthread_mutex_unlock(&a->mu);
	}
	return v;
}

/* Before the bootstrap entry is applied: the configured first admin. */
static int boot_check(struct lnode *n, const char *user, const char *pw,
                      struct node_identity *out)
{
	struct node_auth *a = n->auth;
	uint8_t d[crypto_generichash_BYTES];
	digest(pw, strlen(pw), d, sizeof d);
	int ok = a->boot_set && !strcmp(user, n->cfg.admin_user) &&
	         sodium_memcmp(d, a->boot_digest, sizeof d) == 0;
	if (!ok)
		return LORA_EUNAUTHORIZED;
	snprintf(out->user, sizeof out->user, "%s", user);
	out->role = NODE_ROLE_ADMIN;
	return 0;
}

int node_auth_password(struct lnode *n, const char *user, const char *pw,
                       int cache_only, struct node_identity *out)
{
	struct node_auth *a = n->auth;
	memset(out, 0, sizeof *out);
	if (!a->enabled) {
		out->role = NODE_ROLE_ADMIN;
		return 0;
	}
	if (strlen(user) > NODE_USER_BYTES_MAX ||
	    strlen(pw) > NODE_PASSWORD_BYTES_MAX)
		return LORA_EUNAUTHORIZED;
	int have = load_secret(n, cache_only);
	if (have < 0)
		return LORA_ETIMEOUT;
	if (!have)
		return boot_check(n, user, pw, out);
	Lora__UserRecord *u = NULL;
	int rc = user_load(n, user, &u, cache_only);
	if (rc && rc != LORA_ENOTFOUND)
		return rc;
	rc = 0; /* an unknown user is answered as a wrong password */
	uint8_t k[crypto_generichash_BYTES], hd[AUTH_DIGEST_BYTES];
	pair_key(a, user, pw, k);
	const char *hash = u ? u->password_hash : a->dummy_hash;
	digest(hash, strlen(hash), hd, sizeof hd);
	int ok = u && cache_hit(a, k, hd, 0);
	if (!ok && cache_hit(a, k, hd, 1)) {
		rc =
		    LORA_EUNAUTHORIZED; /* refused within NODE_AUTH_DENIED_MS */
	} else if (!ok && cache_only) {
		rc = LORA_ETIMEOUT;
	} else if (!ok) {
		/* an unknown user costs the same work as a known one */
		int v = verify_shared(a, k, hd, hash, pw);
		if (v < 0)
			rc = LORA_EUNAVAILABLE;
		ok = v > 0 && u;
		if (ok)
			cache_put(a, k, hd, 0);
		else if (v >= 0)
			cache_put(a, k, hd, 1);
	}
	if (ok) {
		snprintf(out->user, sizeof out->user, "%s", user);
		out->role = role_of(u);
		rc = 0;
	} else if (rc == 0) {
		rc = LORA_EUNAUTHORIZED;
	}
	if (u)
		lora__user_record__free_unpacked(u, &lora_pb_allocator);
	return rc;
}

int auth_check_password(struct lnode *n, const char *user, const char *password,
                        int *role)
{
	struct node_identity id;
	int rc = node_auth_password(n, user, password, 0, &id);
	*role = rc ? NODE_ROLE_NONE : id.role;
	return rc;
}

void node_auth_log_failure(struct lnode *n, const char *proto, const char *user)
{
	struct node_auth *a = n->auth;
	uint64_t now = lora_now_ms(), quiet = 0;
	pthread_mutex_lock(&a->mu);
	int say = now - a->fail_logged_ms >= 1000;
	if (say) {
		a->fail_logged_ms = now;
		quiet = a->fail_quiet;
		a->fail_quiet = 0;
	} else {
		a->fail_quiet++;
	}
	pthread_mutex_unlock(&a->mu);
	/* the name is the client's: no line breaks or escapes in our log */
	char shown[65];
	size_t k = 0;
	for (const char *p = user ? user : ""; *p && k < sizeof shown - 1; p++)
		shown[k++] = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
	shown[k] = '\0';
	if (say)
		LOG_WARN("auth: refused %s login of user '%s' (and %llu "
		         "more refused since the last such line)",
		         proto, shown, (unsigned long long)quiet);
}

/* ---- tokens ----------------------------------------------------------------
 */

static int hex_decode(const char *hex, uint8_t *out, size_t len)
{
	size_t got = 0;
	if (strlen(hex) != len * 2 ||
	    sodium_hex2bin(out, len, hex, len * 2, NULL, &got, NULL) != 0)
		return -1;
	return got == len ? 0 : -1;
}

int node_auth_token_issue(struct lnode *n, const struct node_identity *id,
                          char out[NODE_AUTH_TOKEN_HEX_BYTES], uint64_t *ttl_ms)
{
	struct node_auth *a = n->auth;
	uint8_t t[NODE_AUTH_TOKEN_BYTES], pw[AUTH_DIGEST_BYTES] = {0};
	Lora__UserRecord *u = NULL;
	if (load_secret(n, 0) == 1 && user_load(n, id->user, &u, 0) == 0) {
		digest(u->password_hash, strlen(u->password_hash), pw,
		       sizeof pw);
		lora__user_record__free_unpacked(u, &lora_pb_allocator);
	}
	randombytes_buf(t, sizeof t);
	uint64_t now = lora_now_ms();
	*ttl_ms = n->cfg.token_ttl_ms;
	pthread_mutex_lock(&a->mu);
	node_tokens_user_cap(a->tokens, id->user, now,
	                     NODE_AUTH_TOKENS_PER_USER_MAX);
	int rc =
	    node_tokens_put(a->tokens, t, id->user, pw, now + *ttl_ms, now);
	pthread_mutex_unlock(&a->mu);
	if (rc == 0)
		sodium_bin2hex(out, NODE_AUTH_TOKEN_HEX_BYTES, t, sizeof t);
	sodium_memzero(t, sizeof t);
	return rc;
}

int node_auth_token_check(struct lnode *n, const char *hex, int nowait,
                          struct node_identity *out)
{
	struct node_auth *a = n->auth;
	memset(out, 0, sizeof *out);
	uint8_t t[NODE_AUTH_TOKEN_BYTES];
	if (hex_decode(hex, t, sizeof t) != 0)
		return LORA_EUNAUTHORIZED;
	uint64_t now = lora_now_ms();
	uint8_t pw[AUTH_DIGEST_BYTES], zero[AUTH_DIGEST_BYTES] = {0};
	pthread_mutex_lock(&a->mu);
	int found = node_tokens_get(a->tokens, t, now, out->user, pw);
	pthread_mutex_unlock(&a->mu);
	if (!found)
		return LORA_EUNAUTHORIZED;
	int have = load_secret(n, nowait);
	if (have < 0)
		return LORA_ETIMEOUT;
	if (!have) { /* issued to the configured first admin */
		out->role = NODE_ROLE_ADMIN;
		return 0;
	}
	Lora__UserRecord *u = NULL;
	int rc = user_load(n, out->user, &u, nowait);
	if (rc == LORA_ETIMEOUT)
		return rc;
	if (rc != 0)
		return LORA_EUNAUTHORIZED; /* dropped meanwhile */
	uint8_t now_pw[AUTH_DIGEST_BYTES];
	digest(u->password_hash, strlen(u->password_hash), now_pw,
	       sizeof now_pw);
	int same = sodium_memcmp(pw, now_pw, sizeof pw) == 0 ||
	           sodium_memcmp(pw, zero, sizeof pw) == 0;
	out->role = role_of(u);
	lora__user_record__free_unpacked(u, &lora_pb_allocator);
	/* a new password, or the user dropped and created again since */
	return same ? 0 : LORA_EUNAUTHORIZED;
}

/* ---- forwarded requests ----------------------------------------------------
 */

int node_auth_peer_proof(struct lnode *n, int nowait, uint8_t *out, size_t *len)
{
	struct node_auth *a = n->auth;
	if (load_secret(n, nowait) != 1)
		return LORA_ENOTFOUND;
	pthread_mutex_lock(&a->mu);
	memcpy(out, a->secret, a->secret_len);
	*len = a->secret_len;
	pthread_mutex_unlock(&a->mu);
	return 0;
}

int node_auth_peer_check(struct lnode *n, const uint8_t *proof, size_t len,
                         int nowait)
{
	struct node_auth *a = n->auth;
	int have = load_secret(n, nowait);
	if (have < 0)
		return LORA_ETIMEOUT;
	if (!have)
		return LORA_EUNAUTHORIZED;
	pthread_mutex_lock(&a->mu);
	int ok =
	    len == a->secret_len && sodium_memcmp(proof, a->secret, len) == 0;
	pthread_mutex_unlock(&a->mu);
	return ok ? 0 : LORA_EUNAUTHORIZED;
}

int node_auth_peer_check_wait(struct lnode *n, const uint8_t *proof, size_t len,
                              int nowait)
{
	struct node_auth *a = n->auth;
	int have = load_secret(n, nowait);
	if (have != 0)
		return node_auth_peer_check(n, proof, len, nowait);
	/* A member sending a proof holds the secret, so the bootstrap entry
	 * that made it is committed, but the leader may not have applied it
	 * yet: a follower applies as soon as it hears the commit, the
	 * leader's apply thread can be behind (and the leader publishes its
	 * commit index after sending it). So a leader with auth on waits for
	 * the secret to appear, off the I/O thread, a bounded time, a few
	 * requests at once; then, or beyond that, it says "retry" (503),
	 * never "wrong password". Anyone else refuses at once. */
	if (!a->enabled || !node_is_leader(n) || len < STO_SECRET_BYTES_MIN ||
	    len > STO_SECRET_BYTES_MAX)
		return LORA_EUNAUTHORIZED;
	if (nowait)
		return LORA_ETIMEOUT;
	pthread_mutex_lock(&a->mu);
	int room = a->secret_waiters < NODE_AUTH_SECRET_WAITERS_MAX;
	a->secret_waiters += room;
	pthread_mutex_unlock(&a->mu);
	if (!room)
		return LORA_ELIMIT;
	uint64_t until = lora_now_ms() + NODE_AUTH_APPLY_WAIT_MS;
	while ((have = load_secret(n, 0)) == 0 && lora_now_ms() < until &&
	       !atomic_load(&n->stopping))
		node_wait_applied(n, node_applied_index(n) + 1,
		                  NODE_AUTH_SECRET_POLL_MS);
	pthread_mutex_lock(&a->mu);
	a->secret_waiters--;
	pthread_mutex_unlock(&a->mu);
	return have > 0 ? node_auth_peer_check(n, proof, len, 0)
	                : LORA_EUNAVAILABLE;
}

/* ---- bootstrap --------------------------------------------------------------
 */

struct boot_write {
	struct node_exec_req req;
	Lora__Response *resp;
	Lora__MutationBatch batch;
	Lora__Mutation m, *mp;
	Lora__AuthBootstrap b;
	uint8_t secret[32];
};

static void boot_done(void *arg, int rc)
{
	struct boot_write *w = arg;
	if (rc == 0)
		LOG_INFO("auth: the system keyspace was bootstrapped (first "
		         "admin '%s' and the cluster secret)",
		         w->b.admin_name);
	else
		LOG_WARN("auth: bootstrap write failed (%s); retrying",
		         lora_err_code(rc));
	sodium_memzero(w->secret, sizeof w->secret);
	lora__response__free_unpacked(w->resp, &lora_pb_allocator);
	lora_free(w);
}

void node_auth_tick(struct lnode *n)
{
	struct node_auth *a = n->auth;
	if (a == NULL || !a->enabled || !a->boot_set || !node_is_leader(n) ||
	    load_secret(n, 0))
		return;
	uint64_t now = lora_now_ms();
	if (a->boot_sent_ms && now - a->boot_sent_ms < NODE_AUTH_BOOTSTRAP_MS)
		return;
	a->boot_sent_ms = now;
	struct boot_write *w = lora_calloc(1, sizeof *w);
	Lora__Response *r = w ? node_resp_new() : NULL;
	if (r == NULL) {
		lora_free(w);
		return;
	}
	w->resp = r;
	randombytes_buf(w->secret, sizeof w->secret);
	lora__auth_bootstrap__init(&w->b);
	w->b.admin_name = n->cfg.admin_user;
	w->b.password_hash = a->boot_hash;
	w->b.cluster_secret.data = w->secret;
	w->b.cluster_secret.len = sizeof w->secret;
	lora__mutation__init(&w->m);
	w->m.op_case = LORA__MUTATION__OP_AUTH_BOOTSTRAP;
	w->m.auth_bootstrap = &w->b;
	w->mp = &w->m;
	lora__mutation_batch__init(&w->batch);
	w->batch.mutations = &w->mp;
	w->batch.n_mutations = 1;
	w->req.query = "-- auth bootstrap";
	w->req.kind = NODE_STMT_WRITE;
	w->req.role = NODE_ROLE_ADMIN;
	w->req.batch = &w->batch;
	node_write_async(n, &w->req, r, boot_done, w);
}

/* ---- user-management statements --------------------------------------------
 */

/* The text of a password operand (a literal, or a string parameter). */
static int secret_text(const struct node_exec_req *req,
                       const struct qry_user_secret *s, const char **out,
                       char *msg)
{
	if (!s->param[0]) {
		*out = s->text;
		return s->text[0] ? 0
		                  : lora_errf(LORA_EINVAL, msg,
		                              "a password cannot be empty");
	}
	for (size_t i = 0; req->params && i < req->params->n_entries; i++) {
		const Lora__MapEntry *e = req->params->entries[i];
		if (strcmp(e->key, s->param))
			continue;
		if (!e->value ||
		    e->value->kind_case != LORA__VALUE__KIND_STRING_VALUE ||
		    !e->value->string_value[0] ||
		    strlen(e->value->string_value) > NODE_PASSWORD_BYTES_MAX)
			return lora_errf(LORA_EPARAMS, msg,
			                 "$%s must be a non-empty string of at "
			                 "most %d bytes",
			                 s->param, NODE_PASSWORD_BYTES_MAX);
		*out = e->value->string_value;
		return 0;
	}
	return lora_errf(LORA_EPARAMS, msg, "missing parameter $%s", s->param);
}

/* Replaces s's password by its argon2id string (s->encrypted set), after
 * checking an ENCRYPTED one looks like one. */
static int to_hash(struct lnode *n, const struct node_exec_req *req,
                   struct qry_user_stmt *s, char *msg)
{
	if (!s->password.set)
		return 0;
	const char *pw;
	int rc = secret_text(req, &s->password, &pw, msg);
	if (rc)
		return rc;
	if (s->encrypted) {
		if (strncmp(pw, "$argon2id$", 10) ||
		    strlen(pw) >= crypto_pwhash_STRBYTES ||
		    crypto_pwhash_str_needs_rehash(
		        pw, crypto_pwhash_OPSLIMIT_INTERACTIVE,
		        crypto_pwhash_MEMLIMIT_INTERACTIVE) < 0)
			return lora_errf(LORA_EINVAL, msg,
			                 "an ENCRYPTED PASSWORD must be an "
			                 "argon2id string ($argon2id$...)");
		if (pw != s->password.text)
			snprintf(s->password.text, sizeof s->password.text,
			         "%s", pw);
		s->password.param[0] = '\0';
		return 0;
	}
	char h[crypto_pwhash_STRBYTES];
	if (hash_password(n->auth, pw, h) != 0)
		return lora_errf(LORA_ENOMEM, msg, "argon2id failed");
	snprintf(s->password.text, sizeof s->password.text, "%s", h);
	s->password.param[0] = '\0';
	s->encrypted = 1;
	return 0;
}

/* ALTER CURRENT USER ... FROM old: the old password must be right here. */
static int check_old(struct lnode *n, const struct node_exec_req *req,
                     struct qry_user_stmt *s, char *msg)
{
	const char *old;
	int rc = secret_text(req, &s->old, &old, msg);
	if (rc)
		return rc;
	Lora__UserRecord *u = NULL;
	rc = user_load(n, req->user, &u, 0);
	int ok = rc == 0 && verify_password(n->auth, u->password_hash, old) > 0;
	if (u)
		lora__user_record__free_unpacked(u, &lora_pb_allocator);
	if (!ok)
		return lora_errf(LORA_EUNAUTHORIZED, msg,
		                 "the current password is wrong");
	const char *nw;
	if ((rc = secret_text(req, &s->password, &nw, msg)) != 0)
		return rc;
	if (!strcmp(old, nw))
		return lora_errf(LORA_EINVAL, msg,
		                 "the new password equals the old one");
	return 0;
}

static void row_user(Lora__Response *r, const Lora__UserRecord *u)
{
	Lora__Value name = LORA__VALUE__INIT, roles = LORA__VALUE__INIT,
	            chg = LORA__VALUE__INIT, items[3], *ip[3];
	Lora__ValueList list = LORA__VALUE_LIST__INIT;
	name.kind_case = LORA__VALUE__KIND_STRING_VALUE;
	name.string_value = u->name;
	for (size_t i = 0; i < u->n_roles && i < 3; i++) {
		lora__value__init(&items[i]);
		items[i].kind_case = LORA__VALUE__KIND_STRING_VALUE;
		items[i].string_value = u->roles[i];
		ip[i] = &items[i];
		list.n_items = i + 1;
	}
	list.items = ip;
	roles.kind_case = LORA__VALUE__KIND_LIST_VALUE;
	roles.list_value = &list;
	chg.kind_case = LORA__VALUE__KIND_BOOL_VALUE;
	chg.bool_value = u->change_required;
	const Lora__Value *row[3] = {&name, &roles, &chg};
	node_resp_add_row(r, row, 3);
}

static void show_users(struct lnode *n, const struct node_exec_req *req,
                       int current, Lora__Response *r)
{
	static const char *const cols[] = {"user", "roles",
	                                   "passwordChangeRequired"};
	Lora__UserRecord **us = NULL, *one = NULL;
	size_t cnt = 0;
	struct sto_store *st = node_store_acquire(n);
	int rc = LORA_EUNAVAILABLE;
	if (st && current) {
		rc = sto_user_get(st, req->user, &one);
		if (rc == LORA_ENOTFOUND)
			rc = 0;
	} else if (st) {
		rc = sto_users_list(st, &us, &cnt);
	}
	node_store_release(n);
	if (rc) {
		node_resp_error(r, rc, "cannot read the users", 0, 0);
		return;
	}
	node_resp_set_columns(r, cols, 3);
	for (size_t i = 0; i < cnt; i++)
		row_user(r, us[i]);
	if (one) {
		row_user(r, one);
		lora__user_record__free_unpacked(one, &lora_pb_allocator);
	}
	sto_users_free(us, cnt);
	node_resp_set_bookmark(r, node_applied_index(n));
}

/* The leader: the statement (passwords hashed) as one UserChange, checked
 * against the applied users, written through the writer. */
static int user_change(struct lnode *n, const struct node_exec_req *req,
                       const struct qry_user_stmt *s, Lora__UserChange *c,
                       char *msg)
{
	static const int kinds[] = {
	    [QRY_USER_CREATE] = LORA__USER_CHANGE__KIND__CREATE,
	    [QRY_USER_ALTER] = LORA__USER_CHANGE__KIND__ALTER,
	    [QRY_USER_ALTER_CURRENT] = LORA__USER_CHANGE__KIND__ALTER,
	    [QRY_USER_DROP] = LORA__USER_CHANGE__KIND__DROP,
	    [QRY_USER_GRANT] = LORA__USER_CHANGE__KIND__GRANT,
	    [QRY_USER_REVOKE] = LORA__USER_CHANGE__KIND__REVOKE,
	};
	c->kind = kinds[s->kind];
	c->name = s->kind == QRY_USER_ALTER_CURRENT ? (char *)req->user
	                                            : (char *)s->name;
	c->password_hash = s->password.set ? (char *)s->password.text : "";
	c->role = (char *)s->role;
	c->if_exists = s->if_exists;
	c->change_required = s->change_required != 0; /* CREATE: default on */
	c->set_change_required =
	    s->change_required >= 0 || s->kind == QRY_USER_ALTER_CURRENT;
	if (s->kind == QRY_USER_ALTER_CURRENT)
		c->change_required = 0;
	if ((s->kind == QRY_USER_DROP ||
	     (s->kind == QRY_USER_REVOKE && !strcmp(s->role, "admin"))) &&
	    !strcmp(s->name, req->user))
		return lora_errf(
		    LORA_EINVAL, msg, "cannot %s the current user",
		    s->kind == QRY_USER_DROP ? "drop" : "revoke admin from");
	Lora__UserRecord *u = NULL;
	int rc = user_load(n, c->name, &u, 0);
	if (u)
		lora__user_record__free_unpacked(u, &lora_pb_allocator);
	if (rc && rc != LORA_ENOTFOUND)
		return lora_errf(rc, msg, "cannot read the users");
	if (rc == 0 && s->kind == QRY_USER_CREATE && !s->if_exists)
		return lora_errf(LORA_EEXIST, msg, "user '%s' already exists",
		                 c->name);
	if (rc && s->kind != QRY_USER_CREATE && !s->if_exists)
		return lora_errf(LORA_ENOTFOUND, msg, "no user named '%s'",
		                 c->name);
	return rc && s->kind != QRY_USER_CREATE ? 1 /* nothing to do */ : 0;
}

static void user_write_here(struct lnode *n, const struct node_exec_req *req,
                            const struct qry_user_stmt *s, Lora__Response *r)
{
	char msg[LORA_ERRMSG_BYTES];
	Lora__UserChange c = LORA__USER_CHANGE__INIT;
	int rc = user_change(n, req, s, &c, msg);
	if (rc == 1) {
		node_resp_set_bookmark(r, node_applied_index(n));
		return;
	}
	if (rc) {
		node_resp_error(r, rc, msg, 0, 0);
		return;
	}
	Lora__Mutation m = LORA__MUTATION__INIT, *mp = &m;
	m.op_case = LORA__MUTATION__OP_USER_CHANGE;
	m.user_change = &c;
	Lora__MutationBatch b = LORA__MUTATION_BATCH__INIT;
	b.mutations = &mp;
	b.n_mutations = 1;
	struct node_exec_req w = *req;
	w.batch = &b;
	w.kind = NODE_STMT_WRITE;
	node_write(n, &w, r);
	if (r->error == NULL)
		LOG_INFO("auth: %s by '%s' for user '%s'",
		         s->kind == QRY_USER_CREATE  ? "user created"
		         : s->kind == QRY_USER_DROP  ? "user dropped"
		         : s->kind == QRY_USER_GRANT ? "role granted"
		         : s->kind == QRY_USER_REVOKE
		             ? "role revoked"
		             : "password or flag changed",
		         req->user, c.name);
}

/* A write: hashed here, then run by the leader (forwarded as text that
 * carries only the hash). */
static void user_write(struct lnode *n, const struct node_exec_req *req,
                       struct qry_user_stmt *s, Lora__Response **resp_out)
{
	char msg[LORA_ERRMSG_BYTES];
	int rc = 0;
	if (s->kind == QRY_USER_ALTER_CURRENT && !s->encrypted)
		rc = check_old(n, req, s, msg);
	if (rc == 0)
		rc = to_hash(n, req, s, msg);
	if (rc) {
		node_resp_error(*resp_out, rc, msg, 0, 0);
		return;
	}
	if (node_is_leader(n)) {
		user_write_here(n, req, s, *resp_out);
		return;
	}
	struct lora_buf text = {0};
	if (qry_user_render(s, &text) != 0 || lora_buf_error(&text)) {
		lora_buf_free(&text);
		node_resp_error(*resp_out, LORA_ENOMEM, NULL, 0, 0);
		return;
	}
	struct node_exec_req f = *req;
	f.query = text.data;
	f.params = NULL;
	f.kind = NODE_STMT_WRITE;
	Lora__Response *fwd = NULL;
	rc = node_forward(n, &f, &fwd);
	sodium_memzero(text.data, text.len);
	lora_buf_free(&text);
	if (rc == NODE_FORWARD_SELF) {
		user_write_here(n, req, s, *resp_out);
	} else if (fwd == NULL) {
		node_resp_error(*resp_out, LORA_EUNAVAILABLE,
		                "cannot reach the leader: not executed", 0, 0);
	} else {
		lora__response__free_unpacked(*resp_out, &lora_pb_allocator);
		*resp_out = fwd;
	}
}

/* Whether req's identity may run s: 0, or an error with msg. */
static int user_allowed(const struct node_exec_req *req,
                        const struct qry_user_stmt *s, char *msg)
{
	if (s->kind == QRY_USER_ALTER_CURRENT ||
	    s->kind == QRY_USER_SHOW_CURRENT) {
		if (req->user[0] == '\0')
			return lora_errf(LORA_EINVAL, msg,
			                 "no current user (authentication is "
			                 "off)");
		if (s->kind == QRY_USER_ALTER_CURRENT && s->encrypted &&
		    !req->peer_checked)
			return lora_errf(
			    LORA_EFORBIDDEN, msg,
			    "ALTER CURRENT USER takes SET PASSWORD "
			    "FROM ... TO ...");
		return 0;
	}
	if (req->role < NODE_ROLE_ADMIN)
		return lora_errf(LORA_EFORBIDDEN, msg,
		                 "managing users needs the admin role (user "
		                 "'%s' has %s)",
		                 req->user, node_role_name(req->role));
	return 0;
}

int node_auth_user_stmt(struct lnode *n, const struct node_exec_req *req,
                        Lora__Response **resp_out)
{
	struct qry_user_stmt *s = lora_malloc(sizeof *s);
	char msg[LORA_ERRMSG_BYTES];
	if (s == NULL)
		return 0; /* the parser below will answer out of memory */
	int rc = qry_user_parse(req->query, s, msg);
	if (rc == LORA_ENOTFOUND) {
		lora_free(s);
		return 0;
	}
	Lora__Response *r = node_resp_new();
	*resp_out = r;
	if (r == NULL) {
		/* no answer possible */
	} else if (rc || (rc = user_allowed(req, s, msg)) != 0) {
		node_resp_error(r, rc, msg, 0, 0);
	} else if (req->mode != QRY_RUN) {
		node_resp_error(r, LORA_EINVAL,
		                "EXPLAIN and PROFILE do not apply to user "
		                "statements",
		                0, 0);
	} else if (s->kind == QRY_USER_SHOW ||
	           s->kind == QRY_USER_SHOW_CURRENT) {
		show_users(n, req, s->kind == QRY_USER_SHOW_CURRENT, r);
	} else {
		user_write(n, req, s, resp_out);
	}
	sodium_memzero(s, sizeof *s);
	lora_free(s);
	return 1;
}

int node_auth_role_now(struct lnode *n, const char *user, int nowait, int *role)
{
	*role = NODE_ROLE_NONE;
	if (!node_auth_enabled(n)) {
		*role = NODE_ROLE_ADMIN;
		return 0;
	}
	int have = load_secret(n, nowait);
	if (have < 0)
		return LORA_ETIMEOUT;
	if (!have) { /* before the bootstrap entry: the configured admin */
		*role = NODE_ROLE_ADMIN;
		return 0;
	}
	Lora__UserRecord *u = NULL;
	int rc = user_load(n, user, &u, nowait);
	if (rc == LORA_ETIMEOUT)
		return rc;
	if (rc != 0)
		return LORA_EUNAUTHORIZED; /* dropped since it logged in */
	*role = role_of(u);
	lora__user_record__free_unpacked(u, &lora_pb_allocator);
	return 0;
}

int node_auth_current_role(struct lnode *n, const char *user, int *role)
{
	return node_auth_role_now(n, user, 0, role);
}
