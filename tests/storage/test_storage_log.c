/* test_storage_log.c - the Raft log store: append, overwrite, read ranges,
 * truncate, compact, hard state, reopen and corrupt bytes. */
#include <check.h>

#include "sto_helpers.h"
#include "sto_testing.h"

static char *dir;
static struct sto_log *lg;
static char logdir[512];

static void log_open(void)
{
	char msg[LORA_ERRMSG_BYTES] = "";
	ck_assert_int_eq(sto_log_open(logdir, &lg, msg), 0);
}

static void setup(void)
{
	dir = tmpdir_new();
	path_join(logdir, sizeof(logdir), dir, "raftlog");
	log_open();
}

static void teardown(void)
{
	sto_log_close(lg);
	lg = NULL;
	tmpdir_free(dir);
}

static void reopen(void)
{
	sto_log_close(lg);
	log_open();
}

/* Appends entries [first, first + n) of `term`, data "i:term". */
static int append(uint64_t first, size_t n, uint64_t term)
{
	struct sto_log_entry e[64];
	char bufs[64][32];
	ck_assert_uint_le(n, 64);
	for (size_t i = 0; i < n; i++) {
		snprintf(bufs[i], sizeof(bufs[i]), "%llu:%llu",
		         (unsigned long long)(first + i),
		         (unsigned long long)term);
		e[i] = (struct sto_log_entry){
		    first + i, term, 0, (uint8_t *)bufs[i], strlen(bufs[i])};
	}
	char msg[LORA_ERRMSG_BYTES];
	return sto_log_append(lg, e, n, msg);
}

static uint64_t term_of(uint64_t index)
{
	uint64_t t = 0;
	ck_assert_int_eq(sto_log_term(lg, index, &t), 0);
	return t;
}

START_TEST(append_read_and_overwrite)
{
	ck_assert_uint_eq(sto_log_first_index(lg), 1);
	ck_assert_uint_eq(sto_log_last_index(lg), 0);
	ck_assert_int_eq(append(1, 10, 1), 0);
	ck_assert_int_eq(append(12, 1, 1), LORA_EINVAL); /* gap */
	ck_assert_uint_eq(sto_log_last_index(lg), 10);
	/* A new leader overwrites the suffix from 6 on. */
	ck_assert_int_eq(append(6, 2, 2), 0);
	ck_assert_uint_eq(sto_log_last_index(lg), 7);
	ck_assert_uint_eq(term_of(5), 1);
	ck_assert_uint_eq(term_of(7), 2);
	uint64_t t;
	ck_assert_int_eq(sto_log_term(lg, 8, &t), LORA_ENOTFOUND);

	struct sto_log_entry *es;
	size_t n;
	ck_assert_int_eq(sto_log_entries(lg, 3, 8, 1 << 20, &es, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(es[0].index, 3);
	ck_assert_uint_eq(es[4].term, 2);
	ck_assert_int_eq(memcmp(es[4].data, "7:2", 3), 0);
	sto_log_entries_free(es, n);
	/* The byte limit still returns one entry. */
	ck_assert_int_eq(sto_log_entries(lg, 1, 8, 1, &es, &n), 0);
	ck_assert_uint_eq(n, 1);
	sto_log_entries_free(es, n);
	ck_assert_int_eq(sto_log_entries(lg, 1, 8, 7, &es, &n), 0);
	ck_assert_uint_eq(n, 2); /* 3 data bytes each */
	sto_log_entries_free(es, n);
	ck_assert_int_eq(sto_log_entries(lg, 9, 10, 100, &es, &n),
	                 LORA_ENOTFOUND);

	reopen();
	ck_assert_uint_eq(sto_log_last_index(lg), 7);
	ck_assert_uint_eq(term_of(7), 2);
	ck_assert_int_eq(sto_log_entries(lg, 1, 100, 1 << 20, &es, &n), 0);
	ck_assert_uint_eq(n, 7);
	sto_log_entries_free(es, n);
}
END_TEST

START_TEST(truncate_and_compact)
{
	char msg[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(append(1, 20, 3), 0);
	ck_assert_int_eq(sto_log_truncate_suffix(lg, 15, msg), 0);
	ck_assert_uint_eq(sto_log_last_index(lg), 14);
	ck_assert_int_eq(sto_log_truncate_suffix(lg, 30, msg), 0); /* no-op */
	ck_assert_int_eq(sto_log_compact(lg, 10, 3, msg), 0);
	ck_assert_uint_eq(sto_log_first_index(lg), 11);
	ck_assert_uint_eq(term_of(10), 3); /* the compaction point */
	uint64_t t;
	ck_assert_int_eq(sto_log_term(lg, 9, &t), LORA_ENOTFOUND);
	struct sto_log_entry *es;
	size_t n;
	ck_assert_int_eq(sto_log_entries(lg, 10, 12, 100, &es, &n),
	                 LORA_ENOTFOUND);
	ck_assert_int_eq(sto_log_entries(lg, 11, 15, 1 << 20, &es, &n), 0);
	ck_assert_uint_eq(n, 4);
	sto_log_entries_free(es, n);
	ck_assert_int_eq(sto_log_truncate_suffix(lg, 10, msg), LORA_EINVAL);
	ck_assert_int_eq(append(10, 1, 4), LORA_EINVAL); /* compacted */
	reopen();
	ck_assert_uint_eq(sto_log_first_index(lg), 11);
	ck_assert_uint_eq(sto_log_last_index(lg), 14);
	ck_assert_uint_eq(term_of(10), 3);
	/* Compacting past the end (snapshot install) empties the log. */
	ck_assert_int_eq(sto_log_compact(lg, 100, 7, msg), 0);
	ck_assert_uint_eq(sto_log_first_index(lg), 101);
	ck_assert_uint_eq(sto_log_last_index(lg), 100);
	ck_assert_uint_eq(term_of(100), 7);
	ck_assert_int_eq(append(101, 2, 7), 0);
	reopen();
	ck_assert_uint_eq(sto_log_last_index(lg), 102);
	ck_assert_uint_eq(sto_log_first_index(lg), 101);
	ck_assert_int_eq(sto_log_entries(lg, 101, 103, 1 << 20, &es, &n), 0);
	ck_assert_uint_eq(n, 2);
	sto_log_entries_free(es, n);
}
END_TEST

START_TEST(hard_state_survives_reopen)
{
	char msg[LORA_ERRMSG_BYTES];
	struct sto_hard_state hs;
	ck_assert_int_eq(sto_log_hard_state(lg, &hs), 0);
	ck_assert_uint_eq(hs.term + hs.vote + hs.commit, 0);
	hs = (struct sto_hard_state){5, 2, 17};
	ck_assert_int_eq(sto_log_set_hard_state(lg, &hs, msg), 0);
	reopen();
	memset(&hs, 0, sizeof(hs));
	ck_assert_int_eq(sto_log_hard_state(lg, &hs), 0);
	ck_assert_uint_eq(hs.term, 5);
	ck_assert_uint_eq(hs.vote, 2);
	ck_assert_uint_eq(hs.commit, 17);
}
END_TEST

/* sto_log_save: the entries of a new term and that term in one write
 * (both there after a reopen); a refused save writes neither. */
START_TEST(save_writes_entries_and_hard_state_together)
{
	char msg[LORA_ERRMSG_BYTES];
	ck_assert_int_eq(append(1, 2, 1), 0);
	struct sto_hard_state hs = {1, 1, 2};
	ck_assert_int_eq(sto_log_set_hard_state(lg, &hs, msg), 0);
	uint8_t d[] = "noop";
	struct sto_log_entry e = {3, 4, 0, d, 4};
	hs = (struct sto_hard_state){4, 1, 2};
	ck_assert_int_eq(sto_log_save(lg, &e, 1, &hs, msg), 0);
	reopen();
	ck_assert_uint_eq(sto_log_last_index(lg), 3);
	ck_assert_uint_eq(term_of(3), 4);
	memset(&hs, 0, sizeof(hs));
	ck_assert_int_eq(sto_log_hard_state(lg, &hs), 0);
	ck_assert_uint_eq(hs.term, 4);
	ck_assert_uint_eq(hs.vote, 1);
	/* a gap (index 5 after 3): refused, the hard state stays at term 4 */
	e = (struct sto_log_entry){5, 6, 0, d, 4};
	struct sto_hard_state later = {6, 2, 3};
	ck_assert_int_eq(sto_log_save(lg, &e, 1, &later, msg), LORA_EINVAL);
	ck_assert_int_eq(sto_log_hard_state(lg, &hs), 0);
	ck_assert_uint_eq(hs.term, 4);
	ck_assert_uint_eq(sto_log_last_index(lg), 3);
	/* entries without a hard state leave it as it is */
	e = (struct sto_log_entry){4, 4, 0, d, 4};
	ck_assert_int_eq(sto_log_save(lg, &e, 1, NULL, msg), 0);
	ck_assert_int_eq(sto_log_hard_state(lg, &hs), 0);
	ck_assert_uint_eq(hs.term, 4);
	ck_assert_uint_eq(sto_log_last_index(lg), 4);
}
END_TEST

START_TEST(corrupt_log_bytes_give_errors)
{
	ck_assert_int_eq(append(1, 3, 1), 0);
	uint8_t k[9] = {'e'};
	lora_put_be64(k + 1, 2);
	ck_assert_int_eq(sto_testing_log_put_raw(lg, k, 9, "xy", 2), 0);
	uint64_t t;
	ck_assert_int_eq(sto_log_term(lg, 2, &t), LORA_ECORRUPT);
	struct sto_log_entry *es;
	size_t n;
	ck_assert_int_eq(sto_log_entries(lg, 1, 4, 1 << 20, &es, &n),
	                 LORA_ECORRUPT);
	ck_assert_int_eq(sto_testing_log_put_raw(lg, "h", 1, "abc", 3), 0);
	struct sto_hard_state hs;
	ck_assert_int_eq(sto_log_hard_state(lg, &hs), LORA_ECORRUPT);
	ck_assert_int_eq(sto_testing_log_put_raw(lg, "c", 1, "abc", 3), 0);
	sto_log_close(lg);
	char msg[LORA_ERRMSG_BYTES] = "";
	ck_assert_int_eq(sto_log_open(logdir, &lg, msg), LORA_ECORRUPT);
	ck_assert(strlen(msg) > 0);
	lg = NULL;
}
END_TEST

int main(void)
{
	Suite *s = suite_create("storage_log");
	TCase *t = tcase_create("log");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, append_read_and_overwrite);
	tcase_add_test(t, truncate_and_compact);
	tcase_add_test(t, hard_state_survives_reopen);
	tcase_add_test(t, save_writes_entries_and_hard_state_together);
	tcase_add_test(t, corrupt_log_bytes_give_errors);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
