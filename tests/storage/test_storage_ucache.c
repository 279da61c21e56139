/* test_storage_ucache.c - the user record cache (storage/apply_user.c):
 * sto_user_get serves copies from memory, yet a demotion, a password
 * change, REVOKE, DROP USER or a bootstrap is seen by the very next read,
 * including when a read that started before the change tries to keep
 * what it read after it; and the users' stamp (sto_user_gen) moves with
 * each of them. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sto_fixture.h"
#include "sto_testing.h"

enum {
	CREATE = LORA__USER_CHANGE__KIND__CREATE,
	ALTER = LORA__USER_CHANGE__KIND__ALTER,
	DROP = LORA__USER_CHANGE__KIND__DROP,
	GRANT = LORA__USER_CHANGE__KIND__GRANT,
	REVOKE = LORA__USER_CHANGE__KIND__REVOKE,
};

/* How long a test waits for another thread to reach a point. */
#define WAIT_MS 10000

/* Applies the one mutation m as the next entry; its result. */
static int apply_one(Lora__Mutation *m)
{
	Lora__MutationBatch b = LORA__MUTATION_BATCH__INIT;
	b.mutations = &m;
	b.n_mutations = 1;
	char msg[LORA_ERRMSG_BYTES];
	return sto_apply(st, sto_applied_index(st) + 1, &b, msg);
}

/* Applies one UserChange as the next entry; its result. */
static int change(int kind, const char *name, const char *hash,
                  const char *role)
{
	Lora__UserChange c = LORA__USER_CHANGE__INIT;
	c.kind = kind;
	c.name = (char *)name;
	c.password_hash = (char *)(hash ? hash : "");
	c.role = (char *)(role ? role : "");
	Lora__Mutation m = LORA__MUTATION__INIT;
	m.op_case = LORA__MUTATION__OP_USER_CHANGE;
	m.user_change = &c;
	return apply_one(&m);
}

/* name's record as "hash|r1,r2" through sto_user_get (cached = 0) or
 * sto_user_get_cached (1); "-" when there is no such user. */
static const char *rec(const char *name, int cached)
{
	static __thread char out[256];
	Lora__UserRecord *u = NULL;
	int rc = cached ? sto_user_get_cached(st, name, &u)
	                : sto_user_get(st, name, &u);
	if (rc == LORA_ENOTFOUND)
		return "-";
	ck_assert_int_eq(rc, 0);
	snprintf(out, sizeof out, "%s|", u->password_hash);
	for (size_t i = 0; i < u->n_roles; i++)
		snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s",
		         i ? "," : "", u->roles[i]);
	lora__user_record__free_unpacked(u, &lora_pb_allocator);
	return out;
}

/* Both reads, twice each (the second of each may come from the cache),
 * give want. */
static void expect(const char *name, const char *want)
{
	for (int i = 0; i < 4; i++)
		ck_assert_str_eq(rec(name, i & 1), want);
}

/* The cache serves repeated reads, and every kind of change is seen by
 * the next one. Without the generation bump, the reads after each change
 * would get the record cached before it. */
START_TEST(every_change_is_seen_by_the_next_read)
{
	ck_assert_int_eq(change(CREATE, "ann", "$argon2id$1", NULL), 0);
	ck_assert_int_eq(change(GRANT, "ann", NULL, "admin"), 0);
	uint64_t h0 = sto_testing_ucache_hits(st);
	expect("ann", "$argon2id$1|admin");
	ck_assert_uint_ge(sto_testing_ucache_hits(st) - h0, 3);

	ck_assert_int_eq(change(REVOKE, "ann", NULL, "admin"),
	                 0); /* demotion */
	expect("ann", "$argon2id$1|");
	ck_assert_int_eq(change(GRANT, "ann", NULL, "reader"), 0);
	expect("ann", "$argon2id$1|reader");
	ck_assert_int_eq(change(ALTER, "ann", "$argon2id$2", NULL), 0);
	expect("ann", "$argon2id$2|reader");
	/* a refused change changes nothing, and the cache serves on */
	ck_assert_int_eq(change(GRANT, "ann", NULL, "wizard"), LORA_EINVAL);
	expect("ann", "$argon2id$2|reader");
	ck_assert_int_eq(change(DROP, "ann", NULL, NULL), 0);
	expect("ann", "-");
	ck_assert_int_eq(change(CREATE, "ann", "$argon2id$3", NULL), 0);
	expect("ann", "$argon2id$3|");

	/* the bootstrap's admin: absent, then there at once */
	expect("root", "-");
	uint8_t secret[32];
	memset(secret, 7, sizeof secret);
	Lora__AuthBootstrap a = LORA__AUTH_BOOTSTRAP__INIT;
	a.admin_name = "root";
	a.password_hash = "$argon2id$boot";
	a.cluster_secret.data = secret;
	a.cluster_secret.len = sizeof secret;
	Lora__Mutation m = LORA__MUTATION__INIT;
	m.op_case = LORA__MUTATION__OP_AUTH_BOOTSTRAP;
	m.auth_bootstrap = &a;
	ck_assert_int_eq(apply_one(&m), 0);
	expect("root", "$argon2id$boot|admin");
}
END_TEST

/* A test's raw write of a user record is seen by the next read too
 * (store.c's raw writes retire the cached records). */
START_TEST(a_raw_write_is_seen_by_the_next_read)
{
	ck_assert_int_eq(change(CREATE, "bob", "$argon2id$1", NULL), 0);
	expect("bob", "$argon2id$1|");
	ck_assert_int_eq(sto_testing_del_raw(st, "meta", "Ubob", 4), 0);
	expect("bob", "-");
}
END_TEST

/* More users than the cache keeps: every read still answers its own
 * user's record, and a store opened from a checkpoint starts empty. */
START_TEST(many_users_and_a_new_store)
{
	enum { USERS = 300 };
	char name[32], hash[64], want[128];
	for (int i = 0; i < USERS; i++) {
		snprintf(name, sizeof name, "u%d", i);
		snprintf(hash, sizeof hash, "$argon2id$%d", i);
		ck_assert_int_eq(change(CREATE, name, hash, NULL), 0);
	}
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < USERS; i++) {
			snprintf(name, sizeof name, "u%d", i);
			snprintf(want, sizeof want, "$argon2id$%d|", i);
			ck_assert_str_eq(rec(name, round & 1), want);
			ck_assert_str_eq(rec(name, 0), want); /* a hit */
		}
	ck_assert_uint_ge(sto_testing_ucache_hits(st), 3 * USERS);

	char msg[LORA_ERRMSG_BYTES], p[512];
	path_join(p, sizeof p, dir, "ckpt");
	ck_assert_int_eq(sto_checkpoint(st, p, NULL, msg), 0);
	struct sto_store *c = NULL;
	ck_assert_int_eq(sto_open(p, NULL, &c, msg), 0);
	Lora__UserRecord *u = NULL;
	ck_assert_int_eq(sto_user_get(c, "u1", &u), 0);
	lora__user_record__free_unpacked(u, &lora_pb_allocator);
	ck_assert_uint_eq(sto_testing_ucache_hits(c), 0);
	ck_assert_int_eq(sto_user_get(c, "u1", &u), 0);
	lora__user_record__free_unpacked(u, &lora_pb_allocator);
	ck_assert_uint_eq(sto_testing_ucache_hits(c), 1);
	sto_close(c);
}
END_TEST

/* The users' stamp (sto_user_gen, which node/http_auth.c's connection
 * memo keys on) stays put across reads and moves with every change, a
 * refused one, a raw write and a new store, never to a value it had. */
enum { STAMPS_MAX = 16 };
static uint64_t stamps[STAMPS_MAX];
static int n_stamps;

/* The stamp now is not 0, differs from every one before, and reading
 * name (want) does not move it. */
static void stamp_moved(const char *name, const char *want)
{
	uint64_t now = sto_user_gen(st);
	ck_assert_uint_ne(now, 0);
	for (int i = 0; i < n_stamps; i++)
		ck_assert_uint_ne(now, stamps[i]);
	ck_assert_int_lt(n_stamps, STAMPS_MAX);
	stamps[n_stamps++] = now;
	expect(name, want);
	ck_assert_uint_eq(sto_user_gen(st), now);
}

START_TEST(the_users_stamp_moves_with_every_change)
{
	n_stamps = 0;
	stamp_moved("ann", "-");
	ck_assert_int_eq(change(CREATE, "ann", "$argon2id$1", NULL), 0);
	stamp_moved("ann", "$argon2id$1|");
	ck_assert_int_eq(change(GRANT, "ann", NULL, "writer"), 0);
	stamp_moved("ann", "$argon2id$1|writer");
	ck_assert_int_eq(change(GRANT, "ann", NULL, "wizard"), LORA_EINVAL);
	stamp_moved("ann", "$argon2id$1|writer");
	ck_assert_int_eq(change(REVOKE, "ann", NULL, "writer"), 0);
	stamp_moved("ann", "$argon2id$1|");
	ck_assert_int_eq(change(ALTER, "ann", "$argon2id$2", NULL), 0);
	stamp_moved("ann", "$argon2id$2|");
	ck_assert_int_eq(change(DROP, "ann", NULL, NULL), 0);
	stamp_moved("ann", "-");
	ck_assert_int_eq(change(CREATE, "ann", "$argon2id$3", NULL), 0);
	stamp_moved("ann", "$argon2id$3|");
	ck_assert_int_eq(sto_testing_del_raw(st, "meta", "Uann", 4), 0);
	stamp_moved("ann", "-");

	char msg[LORA_ERRMSG_BYTES], p[512];
	path_join(p, sizeof p, dir, "ckpt-stamp");
	ck_assert_int_eq(sto_checkpoint(st, p, NULL, msg), 0);
	struct sto_store *c = NULL;
	ck_assert_int_eq(sto_open(p, NULL, &c, msg), 0);
	uint64_t other = sto_user_gen(c);
	ck_assert_uint_ne(other, 0);
	for (int i = 0; i < n_stamps; i++) /* a new store: never seen */
		ck_assert_uint_ne(other, stamps[i]);
	sto_close(c);
}
END_TEST

/* A reader held between its database read and its cache fill. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int armed; /* the next miss stops in the hook */
	int read;  /* it did */
	int go;    /* and may go on */
} hold = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

/* Waits for *flag under hold.mu, failing the test after WAIT_MS. */
static void hold_wait(int *flag)
{
	struct timespec ts;
	lora_deadline_after(&ts, WAIT_MS);
	int rc = 0;
	while (!*flag && rc == 0)
		rc = pthread_cond_timedwait(&hold.cv, &hold.mu, &ts);
	ck_assert_msg(*flag, "waited %d ms", WAIT_MS);
}

static void hold_hook(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&hold.mu);
	if (hold.armed) {
		hold.armed = 0;
		hold.read = 1;
		pthread_cond_broadcast(&hold.cv);
		hold_wait(&hold.go);
	}
	pthread_mutex_unlock(&hold.mu);
}

static void *reader(void *arg)
{
	(void)arg;
	return strdup(rec("ann", 0));
}

/* A read that got the record before a demotion (and before each other
 * kind of change) and fills the cache after it must not make the next
 * read see the old record. Without the generation check at the fill the
 * reads after the change would get the record the held reader kept. */
START_TEST(a_read_before_a_change_never_fills_after_it)
{
	static const struct {
		int kind;
		const char *hash, *role, *before, *after;
	} steps[] = {
	    {REVOKE, NULL, "admin", "$argon2id$1|admin", "$argon2id$1|"},
	    {GRANT, NULL, "writer", "$argon2id$1|", "$argon2id$1|writer"},
	    {ALTER, "$argon2id$2", NULL, "$argon2id$1|writer",
	     "$argon2id$2|writer"},
	    {DROP, NULL, NULL, "$argon2id$2|writer", "-"},
	};
	ck_assert_int_eq(change(CREATE, "ann", "$argon2id$1", NULL), 0);
	ck_assert_int_eq(change(GRANT, "ann", NULL, "admin"), 0);
	sto_testing_set_ucache_hook(hold_hook, NULL);
	for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
		/* a new generation, so that the reader misses */
		ck_assert_int_eq(change(GRANT, "ann", NULL, "wizard"),
		                 LORA_EINVAL);
		pthread_mutex_lock(&hold.mu);
		hold.armed = 1;
		hold.read = hold.go = 0;
		pthread_mutex_unlock(&hold.mu);
		pthread_t t;
		ck_assert_int_eq(pthread_create(&t, NULL, reader, NULL), 0);
		pthread_mutex_lock(&hold.mu);
		hold_wait(&hold.read);
		pthread_mutex_unlock(&hold.mu);
		ck_assert_int_eq(
		    change(steps[i].kind, "ann", steps[i].hash, steps[i].role),
		    0);
		pthread_mutex_lock(&hold.mu);
		hold.go = 1;
		pthread_cond_broadcast(&hold.cv);
		pthread_mutex_unlock(&hold.mu);
		void *got;
		ck_assert_int_eq(pthread_join(t, &got), 0);
		ck_assert_str_eq(got, steps[i].before); /* read before it */
		free(got);
		expect("ann", steps[i].after);
	}
	sto_testing_set_ucache_hook(NULL, NULL);
}
END_TEST

/* Readers race changes: once a change's apply returned, no read (on any
 * thread) sees the record before it. Change k sets ann's password hash
 * to "$argon2id$k"; a read that starts after change k returned must see
 * k or a later one. */
static _Atomic int changes_done; /* changes applied and returned */
static _Atomic int racing;

/* The k of name's "$argon2id$k|..." record. */
static int version(const char *name, int cached)
{
	const char *r = rec(name, cached);
	ck_assert_msg(!strncmp(r, "$argon2id$", 10), "%s", r);
	return atoi(r + 10);
}

static void *race_reader(void *arg)
{
	long stale = 0;
	(void)arg;
	for (int i = 0; atomic_load(&racing); i++) {
		int done = atomic_load(&changes_done);
		if (version("ann", i & 1) < done)
			stale++;
	}
	return (void *)stale;
}

START_TEST(readers_racing_changes_never_see_an_old_record)
{
	enum { READERS = 3, CHANGES = 400 };
	ck_assert_int_eq(change(CREATE, "ann", "$argon2id$0", NULL), 0);
	atomic_store(&changes_done, 0);
	atomic_store(&racing, 1);
	pthread_t t[READERS];
	for (int i = 0; i < READERS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, race_reader, NULL),
		                 0);
	uint64_t h0 = sto_testing_ucache_hits(st);
	char hash[32];
	for (int k = 1; k <= CHANGES; k++) {
		snprintf(hash, sizeof hash, "$argon2id$%d", k);
		ck_assert_int_eq(change(ALTER, "ann", hash, NULL), 0);
		atomic_store(&changes_done, k);
		ck_assert_int_eq(version("ann", k & 1), k);
	}
	atomic_store(&racing, 0);
	long stale = 0;
	for (int i = 0; i < READERS; i++) {
		void *b;
		ck_assert_int_eq(pthread_join(t[i], &b), 0);
		stale += (long)b;
	}
	printf("%llu cache hits during %d changes, %ld stale reads\n",
	       (unsigned long long)(sto_testing_ucache_hits(st) - h0), CHANGES,
	       stale);
	ck_assert_int_eq(stale, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("storage_ucache");
	TCase *tc = tcase_create("ucache");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_change_is_seen_by_the_next_read);
	tcase_add_test(tc, many_users_and_a_new_store);
	tcase_add_test(tc, the_users_stamp_moves_with_every_change);
	tcase_add_test(tc, a_raw_write_is_seen_by_the_next_read);
	tcase_add_test(tc, a_read_before_a_change_never_fills_after_it);
	tcase_add_test(tc, readers_racing_changes_never_see_an_old_record);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
