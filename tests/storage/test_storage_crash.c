/* test_storage_crash.c - crash safety: a child process applies batches in a
 * loop and is killed with SIGKILL at a random moment; the reopened store
 * must equal a reference store that applied exactly the batches up to the
 * reopened store's applied index, and hold every batch the child had
 * applied (docs/storage.md, "Durability and recovery": a process crash
 * loses nothing applied). Set LORA_SEED to replay a run. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "sto_helpers.h"

#define NODE            LORA__ENTITY_KIND__ENTITY_NODE
#define CRASH_ROUNDS    20
#define NODES_PER_BATCH 8

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	uint64_t z = *s;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Batch for log index `index`: a function of (seed, index) only, so the
 * reference store can rebuild it. Some batches are rejected (an edge to a
 * node deleted earlier); that is part of the history too. */
static Lora__MutationBatch *gen_batch(uint64_t seed, uint64_t index)
{
	uint64_t r = seed ^ (index * 0x2545f4914f6cdd1dULL);
	Lora__MutationBatch *b = batch_new();
	uint64_t base = index * NODES_PER_BATCH;
	if (index == 1)
		add_create_index(b, "p_k", LORA__INDEX_KIND__INDEX_RANGE, "P",
		                 "k", 0);
	for (uint64_t i = 0; i < NODES_PER_BATCH; i++) {
		uint64_t id = base + i;
		add_create_node(b, id, i % 2 ? "P" : "P,Q", 2, "k",
		                v_int((int64_t)(rng_next(&r) % 1000)), "name",
		                v_str(i % 3 ? "some text" : "other"));
		if (index > 1) {
			uint64_t other =
			    NODES_PER_BATCH +
			    rng_next(&r) % (base - NODES_PER_BATCH);
			add_create_edge(b, id, rng_next(&r) % 2 ? "A" : "B", id,
			                other, 1, "w", v_int((int64_t)i));
		}
	}
	if (index > 2 && rng_next(&r) % 4 == 0)
		add_delete_node(b, NODES_PER_BATCH + rng_next(&r) % (base - 8),
		                1);
	if (index > 2 && rng_next(&r) % 2 == 0)
		add_set_prop(b, NODE, base - 1 - rng_next(&r) % 8, "k",
		             v_int(-1));
	return b;
}

static void apply_upto(struct sto_store *s, uint64_t seed, uint64_t upto)
{
	char msg[LORA_ERRMSG_BYTES];
	for (uint64_t i = sto_applied_index(s) + 1; i <= upto; i++) {
		Lora__MutationBatch *b = gen_batch(seed, i);
		int rv = sto_apply(s, i, b, msg);
		batch_free(b);
		ck_assert_msg(rv == 0 ||
		                  !(rv == LORA_ENOMEM || rv == LORA_EIO ||
		                    rv == LORA_ECORRUPT),
		              "apply %llu: %s", (unsigned long long)i, msg);
	}
}

/* The child: applies batches forever (until killed). It writes one byte
 * to `ready` once the store is open, so the kill lands while applying,
 * and after each apply the store's applied index to the file `rec`. */
static void child_main(const char *path, uint64_t seed, int ready,
                       const char *rec)
{
	char msg[LORA_ERRMSG_BYTES];
	struct sto_store *s;
	int fd = open(rec, O_WRONLY);
	if (fd < 0)
		_exit(8);
	if (sto_open(path, NULL, &s, msg))
		_exit(2);
	if (write(ready, "r", 1) != 1)
		_exit(4);
	for (uint64_t i = sto_applied_index(s) + 1;; i++) {
		Lora__MutationBatch *b = gen_batch(seed, i);
		int rv = sto_apply(s, i, b, msg);
		batch_free(b);
		if (rv == LORA_ENOMEM || rv == LORA_EIO || rv == LORA_ECORRUPT)
			_exit(3);
		/* the store's own word (a batch it could not take, such as
		 * ENOSPC, leaves it where it was) */
		uint8_t v[8];
		lora_put_be64(v, sto_applied_index(s));
		if (pwrite(fd, v, 8, 0) != 8)
			_exit(6);
	}
}

START_TEST(sigkill_at_random_points_keeps_store_consistent)
{
	const char *env = getenv("LORA_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
	printf("crash test: seed %llu (LORA_SEED=%llu to replay)\n",
	       (unsigned long long)seed, (unsigned long long)seed);
	uint64_t rng = seed;
	char *dir = tmpdir_new(), crash[512], refdir[512], rec[512];
	char msg[LORA_ERRMSG_BYTES];
	path_join(crash, sizeof(crash), dir, "crash");
	path_join(refdir, sizeof(refdir), dir, "ref");
	path_join(rec, sizeof(rec), dir, "applied");
	int rfd = open(rec, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(rfd, 0);
	struct sto_store *ref, *s;
	ck_assert_int_eq(sto_open(refdir, NULL, &ref, msg), 0);
	uint64_t last = 0;
	int recorded = 0; /* rounds in which the child recorded an apply */
	for (int round = 0; round < CRASH_ROUNDS; round++) {
		int pfd[2];
		char c;
		ck_assert_int_eq(pipe(pfd), 0);
		ck_assert_int_eq(pwrite(rfd, "\0\0\0\0\0\0\0\0", 8, 0), 8);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			/* A fresh image: RocksDB's background threads of the
			 * parent do not survive fork, so the child must not
			 * reuse its process state. */
			char seed_s[32], fd_s[16];
			snprintf(seed_s, sizeof(seed_s), "%llu",
			         (unsigned long long)seed);
			snprintf(fd_s, sizeof(fd_s), "%d", pfd[1]);
			close(pfd[0]);
			prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive us */
			execl("/proc/self/exe", "test_storage_crash", "--child",
			      crash, seed_s, fd_s, rec, (char *)NULL);
			_exit(5);
		}
		close(pfd[1]);
		ck_assert_int_eq(read(pfd[0], &c, 1), 1);
		close(pfd[0]);
		struct timespec ts = {0, (long)(1 + rng_next(&rng) % 100) *
		                             1000000L};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status),
		              "seed %llu round %d: child exited early (%d)",
		              (unsigned long long)seed, round,
		              WEXITSTATUS(status));
		uint8_t v[8];
		ck_assert_int_eq(pread(rfd, v, 8, 0), 8);
		uint64_t done = lora_get_be64(v); /* the child's last apply */
		ck_assert_int_eq(sto_open(crash, NULL, &s, msg), 0);
		uint64_t applied = sto_applied_index(s);
		ck_assert_uint_ge(applied, last);
		/* the WAL (in the OS) holds every apply that returned, and
		 * at most the one the kill cut short before its record */
		recorded += done > 0;
		ck_assert_msg(
		    applied >= done && applied <= (done ? done : last) + 1,
		    "seed %llu round %d: the store reopened at %llu, "
		    "the child had applied %llu",
		    (unsigned long long)seed, round,
		    (unsigned long long)applied, (unsigned long long)done);
		last = applied;
		apply_upto(ref, seed, applied);
		char d1[STO_DIGEST_HEX_BYTES], d2[STO_DIGEST_HEX_BYTES];
		ck_assert_int_eq(sto_digest(s, d1, msg), 0);
		ck_assert_int_eq(sto_digest(ref, d2, msg), 0);
		ck_assert_msg(!strcmp(d1, d2),
		              "seed %llu round %d: store at %llu differs from "
		              "the reference",
		              (unsigned long long)seed, round,
		              (unsigned long long)applied);
		sto_close(s);
	}
	printf("crash test: %d rounds (%d with an apply recorded), %llu "
	       "entries applied\n",
	       CRASH_ROUNDS, recorded, (unsigned long long)last);
	ck_assert_uint_gt(last, 0);
	ck_assert_int_gt(recorded, 0);
	close(rfd);
	sto_close(ref);
	tmpdir_free(dir);
}
END_TEST

/* sto_options.wal_off would lose every apply not yet flushed at a crash:
 * sto_open takes it only for the fuzz targets' in-memory store, and
 * leaves nothing behind when it refuses it. */
START_TEST(wal_off_only_in_memory)
{
	char *dir = tmpdir_new(), path[512], msg[LORA_ERRMSG_BYTES];
	path_join(path, sizeof(path), dir, "nowal");
	struct sto_options o;
	sto_options_init(&o);
	o.wal_off = 1;
	struct sto_store *s = NULL;
	ck_assert_int_eq(sto_open(path, &o, &s, msg), LORA_EINVAL);
	ck_assert_ptr_null(s);
	ck_assert_ptr_nonnull(strstr(msg, "in-memory"));
	ck_assert_int_ne(access(path, F_OK), 0);
	o.mem_env = 1;
	ck_assert_int_eq(sto_open(path, &o, &s, msg), 0);
	Lora__MutationBatch *b = batch_new();
	add_create_node(b, 1, "P", 0);
	ck_assert_int_eq(sto_apply(s, 1, b, msg), 0);
	batch_free(b);
	ck_assert_uint_eq(sto_applied_index(s), 1);
	sto_close(s);
	tmpdir_free(dir);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "--child"))
		child_main(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]),
		           argv[5]);
	Suite *s = suite_create("storage_crash");
	TCase *t = tcase_create("crash");
	tcase_set_timeout(t, 150);
	tcase_add_test(t, sigkill_at_random_points_keeps_store_consistent);
	tcase_add_test(t, wal_off_only_in_memory);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
