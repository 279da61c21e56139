/* test_storage_install.c - the state install protocol (storage/install.c)
 * under crashes: a child process installs a newer checkpoint over state/
 * and _exit()s at install step k; a second child runs the start-up
 * recovery and crashes at step j of it; a final recovery must leave exactly
 * the new state (once the marker was written) or exactly the old one
 * (before), with no state.old, marker or staged copy left behind. Graph
 * sizes come from a seed: set LORA_SEED to replay a run. */
#include <check.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "sto_helpers.h"

#define STEPS_INSTALL 7 /* crash points 1..7 (6: the caller's own step) */
#define STAGED        "snapshot-staging"

static uint64_t seed;
static char self_exe[512];

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	uint64_t z = *s;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void apply_n(struct sto_store *s, uint64_t *rng, int n)
{
	char msg[LORA_ERRMSG_BYTES];
	for (int k = 0; k < n; k++) {
		uint64_t i = sto_applied_index(s) + 1;
		Lora__MutationBatch *b = batch_new();
		add_create_node(b, i, "P", 1, "k",
		                v_int((int64_t)(rng_next(rng) % 1000)));
		ck_assert_int_eq(sto_apply(s, i, b, msg), 0);
		batch_free(b);
	}
}

struct fixture {
	char *dir;
	char parent[512];
	char old_digest[STO_DIGEST_HEX_BYTES], new_digest[STO_DIGEST_HEX_BYTES];
	uint64_t old_applied, new_applied;
};

/* parent/state at an older applied index, parent/snapshot-staging a
 * checkpoint of the same history further on. */
static void fixture_make(struct fixture *f, uint64_t *rng)
{
	char msg[LORA_ERRMSG_BYTES], p[600];
	f->dir = tmpdir_new();
	path_join(f->parent, sizeof f->parent, f->dir, "node");
	ck_assert_int_eq(mkdir(f->parent, 0755), 0);
	struct sto_store *ref;
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof p, f->dir, "ref"), NULL, &ref, msg),
	    0);
	apply_n(ref, rng, 2 + (int)(rng_next(rng) % 6));
	ck_assert_int_eq(sto_digest(ref, f->old_digest, msg), 0);
	ck_assert_int_eq(
	    sto_checkpoint(ref, path_join(p, sizeof p, f->parent, "state"),
	                   &f->old_applied, msg),
	    0);
	apply_n(ref, rng, 1 + (int)(rng_next(rng) % 6));
	ck_assert_int_eq(sto_digest(ref, f->new_digest, msg), 0);
	ck_assert_int_eq(
	    sto_checkpoint(ref, path_join(p, sizeof p, f->parent, STAGED),
	                   &f->new_applied, msg),
	    0);
	sto_close(ref);
}

/* The child: `install` runs steps 1-7 as a node does, `recover` the
 * start-up recovery; both crash where LORA_TEST_INSTALL_CRASH says. */
static int child_main(const char *mode, const char *parent)
{
	char msg[LORA_ERRMSG_BYTES], p[600];
	if (!strcmp(mode, "install")) {
		struct sto_install_info info;
		if (sto_install_prepare(path_join(p, sizeof p, parent, STAGED),
		                        &info, msg) ||
		    sto_install_swap(parent, STAGED, &info, NULL, msg))
			return 2;
		sto_install_crash_point(6);
		return sto_install_done(parent, msg) ? 3 : 0;
	}
	struct sto_install_recovery r;
	if (sto_install_recover(parent, &r, msg)) {
		fprintf(stderr, "recover: %s\n", msg);
		return 4;
	}
	if (r.outcome == STO_INSTALL_FORWARD) {
		sto_install_crash_point(6);
		if (sto_install_done(parent, msg))
			return 5;
	}
	return 0;
}

/* Runs a child with crash point `step` (0: none); its exit status. */
static int run_child(const char *mode, const char *parent, int step)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char s[16];
		snprintf(s, sizeof s, "%d", step);
		setenv(STO_INSTALL_CRASH_ENV, s, 1);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(self_exe, "test_storage_install", "--child", mode, parent,
		      (char *)NULL);
		_exit(99);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int present(const char *parent, const char *name)
{
	char p[600];
	struct stat st;
	return stat(path_join(p, sizeof p, parent, name), &st) == 0;
}

/* After the final recovery: state/ is the expected one and nothing of the
 * install is left. */
static void check_state(struct fixture *f, int want_new, int k, int j)
{
	char msg[LORA_ERRMSG_BYTES], p[600], d[STO_DIGEST_HEX_BYTES];
	struct sto_store *s;
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof p, f->parent, "state"), NULL, &s, msg),
	    0);
	ck_assert_int_eq(sto_digest(s, d, msg), 0);
	ck_assert_msg(!strcmp(d, want_new ? f->new_digest : f->old_digest),
	              "seed %llu, install crash %d, recovery crash %d: state "
	              "at %llu is not the %s state",
	              (unsigned long long)seed, k, j,
	              (unsigned long long)sto_applied_index(s),
	              want_new ? "new" : "old");
	ck_assert_uint_eq(sto_applied_index(s),
	                  want_new ? f->new_applied : f->old_applied);
	sto_close(s);
	ck_assert(!present(f->parent, "state.old"));
	ck_assert(!present(f->parent, "INSTALLING"));
	ck_assert(!present(f->parent, "state.old-kept-1"));
	/* Without a marker the staged copy is the caller's to remove (a node
	 * drops its snapshot-staging at start-up); with one it is gone. */
	ck_assert(k == 1 || !present(f->parent, STAGED));
}

START_TEST(crash_at_every_install_and_recovery_step)
{
	uint64_t rng = seed;
	int rounds = 0;
	/* k: install crash point (STEPS_INSTALL + 1: no crash); j: crash
	 * point of the first recovery (0: none). */
	for (int k = 1; k <= STEPS_INSTALL + 1; k++)
		for (int j = 0; j <= STEPS_INSTALL; j++) {
			/* Recovery has no prepare or marker (1, 2); it moves
			 * the staged copy in (3-5) only when the install
			 * stopped before that (k 2, 3); it has nothing to do
			 * without a marker (k 1) or after a whole install. */
			int moves = k == 2 || k == 3;
			int marker = k >= 2 && k <= STEPS_INSTALL;
			/* Steps 6-7 of a recovery are the same whatever
			 * came before: tried after a move (k 2) and not. */
			int tail = k == 2 || k == 5;
			if (j != 0 && (j < 3 || !marker || (j < 6 && !moves) ||
			               (j >= 6 && !tail)))
				continue;
			struct fixture f;
			fixture_make(&f, &rng);
			int rc = run_child("install", f.parent, k);
			ck_assert_int_eq(rc, k <= STEPS_INSTALL
			                         ? STO_INSTALL_CRASH_EXIT
			                         : 0);
			rc = run_child("recover", f.parent, j);
			ck_assert_msg(rc == 0 || rc == STO_INSTALL_CRASH_EXIT,
			              "install crash %d, recovery crash %d: "
			              "recovery exits %d",
			              k, j, rc);
			ck_assert_int_eq(run_child("recover", f.parent, 0), 0);
			check_state(&f, k >= 2, k, j);
			tmpdir_free(f.dir);
			rounds++;
		}
	printf("install crash test: seed %llu, %d crash combinations\n",
	       (unsigned long long)seed, rounds);
}
END_TEST

/* A staged state that changes after it was measured does not verify: the
 * swap fails and the old state is back, with nothing else left. */
START_TEST(unverified_state_is_rolled_back)
{
	uint64_t rng = seed ^ 1;
	struct fixture f;
	fixture_make(&f, &rng);
	char msg[LORA_ERRMSG_BYTES], p[600];
	struct sto_install_info info;
	path_join(p, sizeof p, f.parent, STAGED);
	ck_assert_int_eq(sto_install_prepare(p, &info, msg), 0);
	ck_assert_uint_eq(info.applied, f.new_applied);
	struct sto_store *s;
	ck_assert_int_eq(sto_open(p, NULL, &s, msg), 0);
	apply_n(s, &rng, 1);
	sto_close(s);
	ck_assert_int_eq(sto_install_swap(f.parent, STAGED, &info, NULL, msg),
	                 LORA_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(msg, "the old state is back"));
	check_state(&f, 0, 0, 0);
	tmpdir_free(f.dir);
}
END_TEST

/* state.old without a marker is nobody's to delete: it is kept under a new
 * name, reported, and state/ is left alone. */
START_TEST(stray_state_old_is_kept)
{
	uint64_t rng = seed ^ 2;
	struct fixture f;
	fixture_make(&f, &rng);
	char msg[LORA_ERRMSG_BYTES], a[600], b[600];
	ck_assert_int_eq(rename(path_join(a, sizeof a, f.parent, STAGED),
	                        path_join(b, sizeof b, f.parent, "state.old")),
	                 0);
	struct sto_install_recovery r;
	ck_assert_int_eq(sto_install_recover(f.parent, &r, msg), 0);
	ck_assert_int_eq(r.outcome, STO_INSTALL_NONE);
	ck_assert_str_eq(r.kept, "state.old-kept-1");
	ck_assert(present(f.parent, "state.old-kept-1"));
	ck_assert(!present(f.parent, "state.old"));
	struct sto_store *s;
	ck_assert_int_eq(
	    sto_open(path_join(a, sizeof a, f.parent, "state.old-kept-1"), NULL,
	             &s, msg),
	    0);
	ck_assert_uint_eq(sto_applied_index(s), f.new_applied);
	sto_close(s);
	/* A second stray gets the next name. */
	ck_assert_int_eq(
	    mkdir(path_join(a, sizeof a, f.parent, "state.old"), 0755), 0);
	ck_assert_int_eq(sto_install_recover(f.parent, &r, msg), 0);
	ck_assert_str_eq(r.kept, "state.old-kept-2");
	tmpdir_free(f.dir);
}
END_TEST

START_TEST(marker_parse_refuses_partial_text)
{
	static const char good[] =
	    "lora-install 1\nstaged snapshot-staging\napplied 7\n"
	    "digest 0123456789abcdef0123456789abcdef\nextra 0aff\n";
	struct sto_install_info info;
	char staged[64];
	ck_assert_int_eq(sto_install_marker_parse(good, sizeof good - 1, &info,
	                                          staged, sizeof staged),
	                 0);
	ck_assert_uint_eq(info.applied, 7);
	ck_assert_uint_eq(info.extra_len, 2);
	ck_assert_uint_eq(info.extra[1], 0xff);
	ck_assert_str_eq(staged, "snapshot-staging");
	/* Every proper prefix is refused (a marker is whole or absent). */
	for (size_t len = 0; len < sizeof good - 1; len++)
		ck_assert_int_eq(sto_install_marker_parse(
		                     good, len, &info, staged, sizeof staged),
		                 LORA_ECORRUPT);
	static const char bad_name[] =
	    "lora-install 1\nstaged ../x\napplied 7\n"
	    "digest 0123456789abcdef0123456789abcdef\nextra \n";
	ck_assert_int_eq(sto_install_marker_parse(bad_name, sizeof bad_name - 1,
	                                          &info, staged, sizeof staged),
	                 LORA_ECORRUPT);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--child"))
		return child_main(argv[2], argv[3]);
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (n <= 0)
		return 1;
	self_exe[n] = '\0';
	const char *env = getenv("LORA_SEED");
	seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
	printf("install crash test: seed %llu (LORA_SEED=%llu to replay)\n",
	       (unsigned long long)seed, (unsigned long long)seed);
	Suite *s = suite_create("storage_install");
	TCase *t = tcase_create("install");
	tcase_set_timeout(t, 120);
	tcase_add_test(t, marker_parse_refuses_partial_text);
	tcase_add_test(t, stray_state_old_is_kept);
	tcase_add_test(t, unverified_state_is_rolled_back);
	tcase_add_test(t, crash_at_every_install_and_recovery_step);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
