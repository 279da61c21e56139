/* test_writer.c - the writer's group commit bookkeeping (node/writer.h,
 * nwr_*) alone, without a node: writes submitted from several threads are
 * taken in groups of at most NODE_WRITE_GROUP_MAX, in order; every
 * submitter is answered exactly once, from the entry applied at its
 * proposal's index (success with the bookmark, apply's error to the whole
 * group, UNAVAILABLE when another term took the index, UNKNOWN_OUTCOME
 * when the index passed, expired or the node stopped); nwr_take waits for
 * a write or its deadline, without polling. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

#define T_THREADS  4
#define T_PER      150 /* writes per thread: 600 in all, > 2 groups */
#define T_TOTAL    (T_THREADS * T_PER)
#define T_WAIT_MS  10000 /* generous: the machine is shared */
#define T_SHORT_MS 80
#define T_TERM     5

struct sub {
	atomic_int calls; /* fn ran this often */
	int rc;
	Lora__Response *resp;
	struct node_exec_req req;
};

static struct node_writer wr;
static struct sub subs[T_TOTAL];

static void done(void *arg, int rc)
{
	struct sub *s = arg;
	s->rc = rc;
	atomic_fetch_add(&s->calls, 1);
}

static void setup(void)
{
	char err[LORA_ERRMSG_BYTES] = "";
	ck_assert_msg(nwr_init(&wr, err) == 0, "init: %s", err);
	for (int i = 0; i < T_TOTAL; i++) {
		memset(&subs[i], 0, sizeof subs[i]);
		subs[i].resp = node_resp_new();
		subs[i].req.query = "CREATE ()";
	}
}

static void teardown(void)
{
	nwr_close(&wr);
	nwr_answer_left(&wr);
	nwr_destroy(&wr);
	for (int i = 0; i < T_TOTAL; i++)
		lora__response__free_unpacked(subs[i].resp, &lora_pb_allocator);
}

static void submit(int i)
{
	nwr_submit(&wr, &subs[i].req, subs[i].resp, done, &subs[i]);
}

static void *submitter(void *arg)
{
	int t = (int)(intptr_t)arg;
	for (int k = 0; k < T_PER; k++)
		submit(t * T_PER + k);
	return NULL;
}

static int answered_once_all(int want_rc)
{
	for (int i = 0; i < T_TOTAL; i++)
		if (atomic_load(&subs[i].calls) != 1 || subs[i].rc != want_rc)
			return 0;
	return 1;
}

static const char *err_code(int i)
{
	return subs[i].resp->error ? subs[i].resp->error->code : "";
}

START_TEST(test_groups_from_threads)
{
	pthread_t th[T_THREADS];
	for (int t = 0; t < T_THREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, submitter,
		                                (void *)(intptr_t)t),
		                 0);
	for (int t = 0; t < T_THREADS; t++)
		pthread_join(th[t], NULL);
	/* everything queued: groups fill up to the limit, in order */
	struct wreq *ws[NODE_WRITE_GROUP_MAX];
	size_t sizes[8], n_groups = 0, total = 0;
	uint64_t index = 10;
	for (;;) {
		size_t cnt =
		    nwr_take(&wr, ws, NODE_WRITE_GROUP_MAX, lora_now_ms());
		if (cnt == 0)
			break;
		ck_assert_uint_lt(n_groups, 8);
		sizes[n_groups++] = cnt;
		total += cnt;
		nwr_track(&wr, ws, cnt, index, T_TERM, NULL);
		index += 2; /* a no-op entry between */
	}
	ck_assert_uint_eq(total, T_TOTAL);
	ck_assert_uint_eq(n_groups, 3);
	ck_assert_uint_eq(sizes[0], NODE_WRITE_GROUP_MAX);
	ck_assert_uint_eq(sizes[1], NODE_WRITE_GROUP_MAX);
	ck_assert_uint_eq(sizes[2], T_TOTAL - 2 * NODE_WRITE_GROUP_MAX);
	for (int i = 0; i < T_TOTAL; i++)
		ck_assert_int_eq(atomic_load(&subs[i].calls), 0);
	/* each group's entry applied: its writes answered with its index */
	for (uint64_t i = 10; i < index; i++)
		nwr_applied(&wr, i, T_TERM, 0, NULL);
	ck_assert(answered_once_all(0));
	int per_index[3] = {0, 0, 0};
	for (int i = 0; i < T_TOTAL; i++) {
		ck_assert_ptr_null(subs[i].resp->error);
		long b = strtol(subs[i].resp->bookmark, NULL, 10);
		ck_assert(b == 10 || b == 12 || b == 14);
		per_index[(b - 10) / 2]++;
	}
	ck_assert_int_eq(per_index[0], NODE_WRITE_GROUP_MAX);
	ck_assert_int_eq(per_index[2], T_TOTAL - 2 * NODE_WRITE_GROUP_MAX);
	/* a late report of the same entries answers nobody twice */
	for (uint64_t i = 10; i < index; i++)
		nwr_applied(&wr, i, T_TERM, 0, NULL);
	ck_assert(answered_once_all(0));
}
END_TEST

/* Takes the first cnt submitted writes as one proposal at index. */
static void propose_first(int cnt, uint64_t index)
{
	for (int i = 0; i < cnt; i++)
		submit(i);
	struct wreq *ws[NODE_WRITE_GROUP_MAX];
	size_t got = nwr_take(&wr, ws, NODE_WRITE_GROUP_MAX, lora_now_ms());
	ck_assert_uint_eq(got, (size_t)cnt);
	nwr_track(&wr, ws, got, index, T_TERM, NULL);
}

START_TEST(test_error_answers_whole_group)
{
	propose_first(5, 7);
	nwr_applied(&wr, 7, T_TERM, LORA_ECONSTRAINT, "node 3 exists");
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(atomic_load(&subs[i].calls), 1);
		ck_assert_int_eq(subs[i].rc, LORA_ECONSTRAINT);
		ck_assert_str_eq(err_code(i), lora_err_code(LORA_ECONSTRAINT));
		ck_assert_str_eq(subs[i].resp->error->message, "node 3 exists");
	}
}
END_TEST

START_TEST(test_other_term_took_index)
{
	propose_first(3, 7);
	nwr_applied(&wr, 7, T_TERM + 1, 0, NULL);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(atomic_load(&subs[i].calls), 1);
		ck_assert_int_eq(subs[i].rc, LORA_EUNAVAILABLE);
	}
}
END_TEST

START_TEST(test_index_passed)
{
	propose_first(3, 7);
	nwr_applied(&wr, 8, T_TERM, 0, NULL); /* 7 never reported */
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(atomic_load(&subs[i].calls), 1);
		ck_assert_int_eq(subs[i].rc, LORA_EUNKNOWN_OUTCOME);
	}
}
END_TEST

START_TEST(test_applied_before_tracked)
{
	nwr_applied(&wr, 4, T_TERM, 0, NULL);
	propose_first(2, 4);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(atomic_load(&subs[i].calls), 1);
		ck_assert_int_eq(subs[i].rc, 0);
		ck_assert_str_eq(subs[i].resp->bookmark, "4");
	}
}
END_TEST

START_TEST(test_last_waiting)
{
	ck_assert_uint_eq(nwr_last_waiting(&wr), 0);
	propose_first(2, 7);
	ck_assert_uint_eq(nwr_last_waiting(&wr), 7);
	nwr_applied(&wr, 6, T_TERM, 0, NULL); /* another's entry: still 7 */
	ck_assert_uint_eq(nwr_last_waiting(&wr), 7);
	nwr_applied(&wr, 7, T_TERM, 0, NULL);
	ck_assert_uint_eq(nwr_last_waiting(&wr), 0);
}
END_TEST

/* The writer stops proposing empty build entries once the cursor has not
 * moved over NODE_BUILD_STALL_STEPS applied ones, warns once, and
 * resumes as soon as it moves. */
START_TEST(test_build_stall)
{
	struct nwr_build_watch w = {0};
	int warn, warns = 0;
	ck_assert(!nwr_build_stalled(&w, 42, 0, &warn) && !warn);
	for (int i = 1; i < NODE_BUILD_STALL_STEPS; i++) {
		ck_assert(!nwr_build_stalled(&w, 42, 1, &warn));
		warns += warn;
	}
	ck_assert(nwr_build_stalled(&w, 42, 1, &warn));
	warns += warn;
	for (int i = 0; i < 10; i++) { /* stays stalled, warned once */
		ck_assert(nwr_build_stalled(&w, 42, i & 1, &warn));
		warns += warn;
	}
	ck_assert_int_eq(warns, 1);
	ck_assert(!nwr_build_stalled(&w, 43, 0, &warn) && !warn); /* moved */
	/* a cursor that moves with every step never stalls */
	for (uint64_t p = 44; p < 44 + 4 * NODE_BUILD_STALL_STEPS; p++)
		ck_assert(!nwr_build_stalled(&w, p, 2, &warn) && !warn);
	/* two applied per look: half as many looks */
	ck_assert(!nwr_build_stalled(&w, 7, 0, &warn) && !warn);
	for (int i = 1; i < NODE_BUILD_STALL_STEPS / 2; i++)
		ck_assert(!nwr_build_stalled(&w, 7, 2, &warn));
	ck_assert(nwr_build_stalled(&w, 7, 2, &warn) && warn);
}
END_TEST

START_TEST(test_expiry)
{
	ck_assert_uint_eq(nwr_next_expiry_ms(&wr), NQ_FOREVER);
	uint64_t t0 = lora_now_ms();
	propose_first(2, 9);
	uint64_t exp = nwr_next_expiry_ms(&wr);
	ck_assert_uint_ge(exp, t0 + NODE_WRITE_TIMEOUT_MS);
	ck_assert_uint_le(exp, lora_now_ms() + NODE_WRITE_TIMEOUT_MS);
	nwr_expire(&wr, exp - 1);
	ck_assert_int_eq(atomic_load(&subs[0].calls), 0);
	nwr_expire(&wr, exp);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(atomic_load(&subs[i].calls), 1);
		ck_assert_int_eq(subs[i].rc, LORA_EUNKNOWN_OUTCOME);
	}
	ck_assert_uint_eq(nwr_next_expiry_ms(&wr), NQ_FOREVER);
	/* the entry applied later answers nobody twice */
	nwr_applied(&wr, 9, T_TERM, 0, NULL);
	ck_assert_int_eq(atomic_load(&subs[0].calls), 1);
}
END_TEST

START_TEST(test_stepped_down)
{
	propose_first(3, 7);
	nwr_fail_waiting(&wr, "stepped down");
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(subs[i].rc, LORA_EUNKNOWN_OUTCOME);
		ck_assert_str_eq(subs[i].resp->error->message, "stepped down");
	}
	nwr_applied(&wr, 7, T_TERM, 0, NULL);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(atomic_load(&subs[i].calls), 1);
}
END_TEST

/* Until the taker is parked in its wait (or T_WAIT_MS passed). */
static void taker_parked(void)
{
	uint64_t end = lora_now_ms() + T_WAIT_MS;
	while (nq_waiting(&wr.q) == 0 && lora_now_ms() < end)
		sched_yield();
}

static void *late_submit(void *arg)
{
	(void)arg;
	taker_parked();
	submit(0);
	return NULL;
}

START_TEST(test_take_waits)
{
	struct wreq *ws[NODE_WRITE_GROUP_MAX];
	/* nothing queued: returns at the deadline, not before */
	uint64_t t0 = lora_now_ms();
	ck_assert_uint_eq(nwr_take(&wr, ws, 4, t0 + T_SHORT_MS), 0);
	ck_assert_uint_ge(lora_now_ms(), t0 + T_SHORT_MS);
	/* a write wakes a taker with a far deadline at once */
	pthread_t th;
	t0 = lora_now_ms();
	ck_assert_int_eq(pthread_create(&th, NULL, late_submit, NULL), 0);
	size_t cnt = nwr_take(&wr, ws, 4, t0 + T_WAIT_MS);
	pthread_join(th, NULL);
	ck_assert_uint_eq(cnt, 1);
	ck_assert_uint_lt(lora_now_ms(), t0 + T_WAIT_MS);
	nwr_answer(ws[0], 0, NULL, 3);
	ck_assert_int_eq(subs[0].rc, 0);
	ck_assert_str_eq(subs[0].resp->bookmark, "3");
}
END_TEST

static void *close_later(void *arg)
{
	(void)arg;
	taker_parked();
	nwr_close(&wr);
	return NULL;
}

START_TEST(test_close)
{
	propose_first(2, 7); /* listed */
	for (int i = 2; i < 5; i++)
		submit(i); /* queued */
	/* a taker waiting forever is woken by the close */
	struct wreq *ws[NODE_WRITE_GROUP_MAX];
	size_t got = nwr_take(&wr, ws, 3, lora_now_ms());
	ck_assert_uint_eq(got, 3);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, close_later, NULL), 0);
	ck_assert_uint_eq(nwr_take(&wr, ws + 3, 1, NQ_FOREVER), 0);
	pthread_join(th, NULL);
	submit(5); /* refused at once */
	ck_assert_int_eq(atomic_load(&subs[5].calls), 1);
	ck_assert_int_eq(subs[5].rc, LORA_EUNAVAILABLE);
	for (size_t i = 0; i < got; i++)
		nwr_answer(ws[i], LORA_EUNAVAILABLE, "taken, then stopped", 0);
	nwr_answer_left(&wr);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(subs[i].rc, LORA_EUNKNOWN_OUTCOME);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(atomic_load(&subs[i].calls), 1);
}
END_TEST

/* progress_ms (the IN TRANSACTIONS progress lines): 10 s by default, 0
 * (none) to a day; past it, or not a number, the setting is refused. */
START_TEST(test_progress_ms_setting)
{
	struct node_config c;
	char err[LORA_ERRMSG_BYTES];
	node_config_defaults(&c);
	ck_assert_uint_eq(c.progress_ms, 10000);
	ck_assert_int_eq(node_config_set(&c, "progress_ms", "0", err), 0);
	ck_assert_uint_eq(c.progress_ms, 0);
	ck_assert_int_eq(node_config_set(&c, "progress_ms", "86400000", err),
	                 0);
	ck_assert_uint_eq(c.progress_ms, 86400000);
	const char *bad[] = {"86400001", "18446744073709551615", "-1", "ten"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(
		    node_config_set(&c, "progress_ms", bad[i], err),
		    LORA_ECONFIG);
		ck_assert_ptr_nonnull(strstr(err, "progress_ms"));
	}
	ck_assert_uint_eq(c.progress_ms, 86400000);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("writer");
	TCase *tc = tcase_create("group_commit");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_groups_from_threads);
	tcase_add_test(tc, test_error_answers_whole_group);
	tcase_add_test(tc, test_other_term_took_index);
	tcase_add_test(tc, test_index_passed);
	tcase_add_test(tc, test_applied_before_tracked);
	tcase_add_test(tc, test_expiry);
	tcase_add_test(tc, test_last_waiting);
	tcase_add_test(tc, test_build_stall);
	tcase_add_test(tc, test_stepped_down);
	tcase_add_test(tc, test_take_waits);
	tcase_add_test(tc, test_close);
	tcase_add_test(tc, test_progress_ms_setting);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
