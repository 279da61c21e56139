/* test_storage_users.c - the system keyspace (storage/apply_user.c):
 * user changes applied like the graph's, refused alike on every node,
 * the first bootstrap winning, checkpoints carrying the users, and the
 * system digest apart from the graph's. */
#include <stdio.h>
#include <string.h>

#include "sto_fixture.h"

/* Applies one UserChange as the next entry; its result. */
static int change(int kind, const char *name, const char *hash,
                  const char *role, int if_exists)
{
	Lora__UserChange c = LORA__USER_CHANGE__INIT;
	c.kind = kind;
	c.name = (char *)name;
	c.password_hash = (char *)(hash ? hash : "");
	c.role = (char *)(role ? role : "");
	c.if_exists = if_exists;
	c.change_required = kind == LORA__USER_CHANGE__KIND__CREATE;
	Lora__Mutation m = LORA__MUTATION__INIT, *mp = &m;
	m.op_case = LORA__MUTATION__OP_USER_CHANGE;
	m.user_change = &c;
	Lora__MutationBatch b = LORA__MUTATION_BATCH__INIT;
	b.mutations = &mp;
	b.n_mutations = 1;
	char msg[LORA_ERRMSG_BYTES];
	uint64_t next = sto_applied_index(st) + 1;
	int rc = sto_apply(st, next, &b, msg);
	ck_assert_uint_eq(sto_applied_index(st), next); /* refused or not */
	return rc;
}

static int bootstrap(struct sto_store *s, const char *admin, uint8_t fill)
{
	uint8_t secret[32];
	memset(secret, fill, sizeof secret);
	Lora__AuthBootstrap a = LORA__AUTH_BOOTSTRAP__INIT;
	a.admin_name = (char *)admin;
	a.password_hash = "$argon2id$boot";
	a.cluster_secret.data = secret;
	a.cluster_secret.len = sizeof secret;
	Lora__Mutation m = LORA__MUTATION__INIT, *mp = &m;
	m.op_case = LORA__MUTATION__OP_AUTH_BOOTSTRAP;
	m.auth_bootstrap = &a;
	Lora__MutationBatch b = LORA__MUTATION_BATCH__INIT;
	b.mutations = &mp;
	b.n_mutations = 1;
	char msg[LORA_ERRMSG_BYTES];
	return sto_apply(s, sto_applied_index(s) + 1, &b, msg);
}

/* The roles of name as "r1,r2" ("-" when there is no such user). */
static const char *roles(const char *name)
{
	static char out[64];
	Lora__UserRecord *u = NULL;
	if (sto_user_get(st, name, &u) != 0)
		return "-";
	out[0] = '\0';
	for (size_t i = 0; i < u->n_roles; i++)
		snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s",
		         i ? "," : "", u->roles[i]);
	lora__user_record__free_unpacked(u, &lora_pb_allocator);
	return out;
}

enum {
	CREATE = LORA__USER_CHANGE__KIND__CREATE,
	ALTER = LORA__USER_CHANGE__KIND__ALTER,
	DROP = LORA__USER_CHANGE__KIND__DROP,
	GRANT = LORA__USER_CHANGE__KIND__GRANT,
	REVOKE = LORA__USER_CHANGE__KIND__REVOKE,
};

START_TEST(users_change_and_are_refused_alike)
{
	ck_assert_int_eq(change(CREATE, "ann", "$argon2id$1", NULL, 0), 0);
	ck_assert_str_eq(roles("ann"), "");
	ck_assert_int_eq(change(CREATE, "ann", "$argon2id$2", NULL, 0),
	                 LORA_EEXIST);
	ck_assert_int_eq(change(CREATE, "ann", "$argon2id$2", NULL, 1), 0);
	Lora__UserRecord *u = NULL;
	ck_assert_int_eq(sto_user_get(st, "ann", &u), 0);
	ck_assert_str_eq(u->password_hash, "$argon2id$1"); /* kept */
	ck_assert(u->change_required);
	lora__user_record__free_unpacked(u, &lora_pb_allocator);

	ck_assert_int_eq(change(GRANT, "ann", NULL, "reader", 0), 0);
	ck_assert_int_eq(change(GRANT, "ann", NULL, "writer", 0), 0);
	ck_assert_int_eq(change(GRANT, "ann", NULL, "writer", 0), 0);
	ck_assert_str_eq(roles("ann"), "reader,writer");
	ck_assert_int_eq(change(REVOKE, "ann", NULL, "reader", 0), 0);
	ck_assert_str_eq(roles("ann"), "writer");
	ck_assert_int_eq(change(GRANT, "ann", NULL, "wizard", 0), LORA_EINVAL);
	ck_assert_int_eq(change(GRANT, "bob", NULL, "reader", 0),
	                 LORA_ENOTFOUND);

	ck_assert_int_eq(change(ALTER, "ann", "$argon2id$3", NULL, 0), 0);
	ck_assert_int_eq(sto_user_get(st, "ann", &u), 0);
	ck_assert_str_eq(u->password_hash, "$argon2id$3");
	ck_assert_str_eq(u->roles[0], "writer"); /* roles kept */
	lora__user_record__free_unpacked(u, &lora_pb_allocator);
	ck_assert_int_eq(change(ALTER, "bob", "$argon2id$3", NULL, 0),
	                 LORA_ENOTFOUND);

	ck_assert_int_eq(change(DROP, "bob", NULL, NULL, 1), 0);
	ck_assert_int_eq(change(DROP, "bob", NULL, NULL, 0), LORA_ENOTFOUND);
	ck_assert_int_eq(change(DROP, "ann", NULL, NULL, 0), 0);
	ck_assert_str_eq(roles("ann"), "-");
	ck_assert_int_eq(change(CREATE, "", "$argon2id$1", NULL, 0),
	                 LORA_EINVAL);
}
END_TEST

START_TEST(first_bootstrap_wins)
{
	uint8_t s[STO_SECRET_BYTES_MAX];
	size_t len = 0;
	ck_assert_int_eq(sto_auth_secret(st, s, &len), LORA_ENOTFOUND);
	ck_assert_int_eq(bootstrap(st, "root", 1), 0);
	ck_assert_int_eq(bootstrap(st, "other", 2), 0); /* changes nothing */
	ck_assert_int_eq(sto_auth_secret(st, s, &len), 0);
	ck_assert_uint_eq(len, 32);
	ck_assert_uint_eq(s[0], 1);
	ck_assert_str_eq(roles("root"), "admin");
	ck_assert_str_eq(roles("other"), "-");
	Lora__UserRecord **us;
	size_t n;
	ck_assert_int_eq(sto_users_list(st, &us, &n), 0);
	ck_assert_uint_eq(n, 1);
	sto_users_free(us, n);
}
END_TEST

/* Users are not the graph: the graph digest ignores them, the system
 * digest follows them, a checkpoint carries them. */
START_TEST(digests_and_checkpoints)
{
	char g0[STO_DIGEST_HEX_BYTES], s0[STO_DIGEST_HEX_BYTES];
	char g1[STO_DIGEST_HEX_BYTES], s1[STO_DIGEST_HEX_BYTES];
	char msg[LORA_ERRMSG_BYTES], p[512];
	ck_assert_int_eq(sto_digest(st, g0, msg), 0);
	ck_assert_int_eq(sto_digest_system(st, s0, msg), 0);
	ck_assert_int_eq(bootstrap(st, "root", 7), 0);
	ck_assert_int_eq(change(CREATE, "cat", "$argon2id$c", NULL, 0), 0);
	ck_assert_int_eq(sto_digest(st, g1, msg), 0);
	ck_assert_int_eq(sto_digest_system(st, s1, msg), 0);
	ck_assert_str_eq(g0, g1);
	ck_assert_str_ne(s0, s1);
	path_join(p, sizeof p, dir, "ckpt");
	ck_assert_int_eq(sto_checkpoint(st, p, NULL, msg), 0);
	struct sto_store *c = NULL;
	ck_assert_int_eq(sto_open(p, NULL, &c, msg), 0);
	char s2[STO_DIGEST_HEX_BYTES];
	ck_assert_int_eq(sto_digest_system(c, s2, msg), 0);
	ck_assert_str_eq(s1, s2);
	Lora__UserRecord *u = NULL;
	ck_assert_int_eq(sto_user_get(c, "cat", &u), 0);
	lora__user_record__free_unpacked(u, &lora_pb_allocator);
	sto_close(c);
}
END_TEST

/* A read from memory only (sto_user_get_cached, for the HTTP I/O thread)
 * answers LORA_ETIMEOUT for a user whose record is only on disk, never a
 * wrong answer; once a blocking read has brought the block in, it
 * answers from memory. A store opened from a checkpoint has its records
 * in files and an empty block cache. Without the memory-only read tier
 * every record would be read from disk (no LORA_ETIMEOUT). */
START_TEST(cached_user_read_never_touches_the_disk)
{
	enum { USERS = 400 };
	char name[32], hash[1024], msg[LORA_ERRMSG_BYTES], p[512];
	memset(hash, 'h', sizeof hash - 1);
	hash[sizeof hash - 1] = '\0';
	memcpy(hash, "$argon2id$", 10);
	for (int i = 0; i < USERS; i++) {
		snprintf(name, sizeof name, "user%04d", i);
		ck_assert_int_eq(change(CREATE, name, hash, NULL, 0), 0);
	}
	path_join(p, sizeof p, dir, "ckpt");
	ck_assert_int_eq(sto_checkpoint(st, p, NULL, msg), 0);
	struct sto_store *c = NULL;
	ck_assert_int_eq(sto_open(p, NULL, &c, msg), 0);
	int on_disk = 0;
	for (int i = 0; i < USERS; i++) {
		snprintf(name, sizeof name, "user%04d", i);
		Lora__UserRecord *u = NULL;
		int rc = sto_user_get_cached(c, name, &u);
		ck_assert_msg(rc == 0 || rc == LORA_ETIMEOUT, "%s: %d", name,
		              rc);
		if (rc == 0) {
			ck_assert_str_eq(u->name, name);
			lora__user_record__free_unpacked(u, &lora_pb_allocator);
			continue;
		}
		ck_assert_ptr_null(u);
		on_disk++;
		ck_assert_int_eq(sto_user_get(c, name, &u),
		                 0); /* reads it in */
		lora__user_record__free_unpacked(u, &lora_pb_allocator);
		ck_assert_int_eq(sto_user_get_cached(c, name, &u), 0);
		ck_assert_str_eq(u->name, name);
		lora__user_record__free_unpacked(u, &lora_pb_allocator);
	}
	printf("%d of %d users were on disk only\n", on_disk, USERS);
	ck_assert_int_gt(on_disk, 0);
	sto_close(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("storage_users");
	TCase *tc = tcase_create("users");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, users_change_and_are_refused_alike);
	tcase_add_test(tc, first_bootstrap_wins);
	tcase_add_test(tc, digests_and_checkpoints);
	tcase_add_test(tc, cached_user_read_never_touches_the_disk);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
