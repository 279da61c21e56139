/* test_tokens.c - the table of issued bearer tokens (node/tokens.c):
 * tokens are found until they expire, a user's oldest token ends at the
 * cap, a full table refuses, and after 100,000 tokens issued and expired
 * a lookup of an unknown token looks at a few slots, not all 16,384 (as
 * it did before the table was rebuilt), also when they all came within
 * one second, while the live tokens of that churn are all still
 * found. Time is the test's own counter; the seed is printed and taken
 * from LORA_SEED. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora.h"
#include "tokens.h"

static uint64_t rng = 0x70c3e5;
static void rand_id(uint8_t *id)
{
	for (int i = 0; i < NODE_AUTH_TOKEN_BYTES; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		id[i] = (uint8_t)rng;
	}
}

static const uint8_t pw[NODE_TOKENS_PW_BYTES] = {7};

static void seed(void)
{
	const char *env = getenv("LORA_SEED");
	rng = env ? strtoull(env, NULL, 0) : 0x70c3e5;
	if (rng == 0)
		rng = 1;
	printf("test_tokens: LORA_SEED=%llu\n", (unsigned long long)rng);
}

START_TEST(found_until_expired_and_capped_per_user)
{
	seed();
	struct node_tokens *t;
	ck_assert_int_eq(node_tokens_new(&t), 0);
	uint8_t a[NODE_AUTH_TOKEN_BYTES], b[NODE_AUTH_TOKEN_BYTES];
	char user[NODE_USER_BYTES_MAX + 1];
	uint8_t got[NODE_TOKENS_PW_BYTES];
	rand_id(a);
	rand_id(b);
	ck_assert_int_eq(node_tokens_put(t, a, "ann", pw, 1000, 10), 0);
	ck_assert_int_eq(node_tokens_get(t, a, 999, user, got), 1);
	ck_assert_str_eq(user, "ann");
	ck_assert_int_eq(memcmp(got, pw, sizeof pw), 0);
	ck_assert_int_eq(node_tokens_get(t, a, 1000, user, got), 0);
	ck_assert_int_eq(node_tokens_get(t, b, 10, user, got), 0);
	/* the cap: a third token for bob ends his oldest */
	uint8_t bob[3][NODE_AUTH_TOKEN_BYTES];
	for (int i = 0; i < 3; i++) {
		rand_id(bob[i]);
		node_tokens_user_cap(t, "bob", 20, 2);
		ck_assert_int_eq(
		    node_tokens_put(t, bob[i], "bob", pw, 5000 + i, 20), 0);
	}
	ck_assert_int_eq(node_tokens_get(t, bob[0], 30, user, got), 0);
	ck_assert_int_eq(node_tokens_get(t, bob[1], 30, user, got), 1);
	ck_assert_int_eq(node_tokens_get(t, bob[2], 30, user, got), 1);
	node_tokens_free(t);
}
END_TEST

START_TEST(full_table_refuses)
{
	struct node_tokens *t;
	ck_assert_int_eq(node_tokens_new(&t), 0);
	uint8_t id[NODE_AUTH_TOKEN_BYTES];
	for (int i = 0; i < NODE_AUTH_TOKENS_MAX; i++) {
		rand_id(id);
		ck_assert_int_eq(node_tokens_put(t, id, "u", pw, 100, 1), 0);
	}
	rand_id(id);
	ck_assert_int_eq(node_tokens_put(t, id, "u", pw, 100, 1), LORA_ELIMIT);
	/* once they expired, there is room again */
	ck_assert_int_eq(node_tokens_put(t, id, "u", pw, 300, 200), 0);
	char user[NODE_USER_BYTES_MAX + 1];
	uint8_t got[NODE_TOKENS_PW_BYTES];
	ck_assert_int_eq(node_tokens_get(t, id, 201, user, got), 1);
	node_tokens_free(t);
}
END_TEST

#define CHURN    100000
#define KEPT     4000
#define UNKNOWNS 2000

START_TEST(unknown_tokens_stay_cheap_after_churn)
{
	seed();
	struct node_tokens *t;
	ck_assert_int_eq(node_tokens_new(&t), 0);
	static uint8_t kept[KEPT][NODE_AUTH_TOKEN_BYTES];
	uint8_t id[NODE_AUTH_TOKEN_BYTES];
	char user[NODE_USER_BYTES_MAX + 1], want[32];
	uint8_t got[NODE_TOKENS_PW_BYTES];
	uint64_t now = 1;
	/* tokens that live 5 ms, one every 2 ms, and every 25th one that
	 * lives for the whole test */
	for (int i = 0; i < CHURN; i++, now += 2) {
		rand_id(id);
		int keep = i % 25 == 0 && i / 25 < KEPT;
		if (keep)
			memcpy(kept[i / 25], id, sizeof id);
		snprintf(want, sizeof want, "u%d", i);
		ck_assert_int_eq(node_tokens_put(t, id, want, pw,
		                                 keep ? UINT64_MAX : now + 5,
		                                 now),
		                 0);
	}
	for (int i = 0; i < KEPT; i++) {
		ck_assert_int_eq(node_tokens_get(t, kept[i], now, user, got),
		                 1);
		snprintf(want, sizeof want, "u%d", i * 25);
		ck_assert_str_eq(user, want);
	}
	uint64_t p0 = node_tokens_probes(t);
	for (int i = 0; i < UNKNOWNS; i++) {
		rand_id(id);
		ck_assert_int_eq(node_tokens_get(t, id, now, user, got), 0);
	}
	double per = (double)(node_tokens_probes(t) - p0) / UNKNOWNS;
	printf("test_tokens: %.1f slots looked at per unknown token\n", per);
	ck_assert_msg(per < 32, "%.1f slots per unknown token", per);
	node_tokens_free(t);
}
END_TEST

/* The same churn within one second (100 tokens a millisecond, each for a
 * millisecond): rebuilds come from the count of slots used, not the
 * clock. */
START_TEST(unknown_tokens_stay_cheap_after_a_burst)
{
	seed();
	struct node_tokens *t;
	ck_assert_int_eq(node_tokens_new(&t), 0);
	uint8_t id[NODE_AUTH_TOKEN_BYTES];
	char user[NODE_USER_BYTES_MAX + 1];
	uint8_t got[NODE_TOKENS_PW_BYTES];
	for (int i = 0; i < CHURN; i++) {
		rand_id(id);
		uint64_t at = 1000 + (uint64_t)i / 100;
		ck_assert_int_eq(node_tokens_put(t, id, "u", pw, at + 1, at),
		                 0);
	}
	uint64_t now = 3000, p0 = node_tokens_probes(t);
	for (int i = 0; i < UNKNOWNS; i++) {
		rand_id(id);
		ck_assert_int_eq(node_tokens_get(t, id, now, user, got), 0);
	}
	double per = (double)(node_tokens_probes(t) - p0) / UNKNOWNS;
	ck_assert_msg(per < 32, "%.1f slots per unknown token", per);
	node_tokens_free(t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tokens");
	TCase *tc = tcase_create("tokens");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, found_until_expired_and_capped_per_user);
	tcase_add_test(tc, full_table_refuses);
	tcase_add_test(tc, unknown_tokens_stay_cheap_after_churn);
	tcase_add_test(tc, unknown_tokens_stay_cheap_after_a_burst);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
