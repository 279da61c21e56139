/*
 * tck_runner.h - private to the TCK runner: the run (options, feature
 * files, one job per selected scenario) shared by tck_runner.c (finding
 * files, output, totals) and tck_pool.c (worker processes).
 *
 * Ownership: struct run owns its files, features and jobs; a job's reason
 * and detail are lora_malloc'd strings owned by the job.
 */
#ifndef TCK_RUNNER_H
#define TCK_RUNNER_H

#include <stddef.h>

#include "tck_feature.h"

#define TCK_PATH_MAX          4096
#define TCK_JOBS_MAX          16 /* worker processes */
#define TCK_TIMEOUT_S_DEFAULT 15 /* per scenario */

enum tck_status { ST_PASS, ST_FAIL, ST_SKIP, ST_CRASH };

struct tck_options {
	const char *baseline;
	const char *filter;
	const char *list_failures;
	const char *list_passes;
	const char *graphs;
	int verbose;
	int jobs;
	int timeout_s;
	int fresh_store; /* a new store per scenario instead of wiping */
};

/* One feature file to run, with the name it is shown under. */
struct tck_file {
	char *path;
	char *shown; /* relative to the folder argument it was found in */
	struct tck_feature *f;
};

struct tck_job {
	const struct tck_file *file;
	const struct tck_scenario *s;
	enum tck_status status;
	char *reason; /* one line; may be empty */
	char *detail; /* verbose detail; may be empty */
	int done;
	int timeouts; /* a job that times out once is run again */
};

struct tck_run {
	struct tck_options opt;
	struct tck_file *files;
	size_t n_files;
	struct tck_job *jobs;
	size_t n_jobs;
};

/* Called in job order as results become final. */
typedef void (*tck_done_fn)(const struct tck_run *r, const struct tck_job *j);

/*
 * Runs every job in up to opt.jobs worker processes. A worker opens one
 * store in its own temp dir and runs scenario after scenario, emptying the
 * graph in between; when the engine crashes or hangs (opt.timeout_s), the
 * scenario is marked ST_CRASH, the worker is killed and replaced, and the
 * run goes on. A scenario that times out is run once more on a new worker
 * (a loaded machine can stall one run) and only then reported. Temp dirs are
 * removed in every case. Returns 0, or LORA_EIO when processes or temp dirs
 * cannot be made.
 */
int tck_pool_run(struct tck_run *r, tck_done_fn done);

/* The baseline (tck_baseline.c): the ids of the scenarios that must pass,
 * sorted; owned by the struct, freed with tck_baseline_free. */
struct tck_baseline {
	char **ids;
	size_t n, cap;
};

/* A job's id, "<feature>:<scenario>[ (example N)]", into out. */
void tck_job_id(const struct tck_job *j, char *out, size_t out_bytes);
/* Reads one id a line ('#' comments, blank lines skipped): 0, LORA_EIO,
 * LORA_EINVAL (a line too long, or an old count file), LORA_ENOMEM. */
int tck_baseline_read(const char *path, struct tck_baseline *b);
void tck_baseline_free(struct tck_baseline *b);
/* Prints "REGRESSION id -- why" for every listed scenario that did not
 * pass (or, without --filter, did not run), "NEW PASS id" for passes not
 * listed, and a summary line; LORA_ELIMIT when anything regressed. */
int tck_baseline_check(const struct tck_run *r, const struct tck_baseline *b,
                       const char *path);
/* Writes the ids of the passing jobs, one a line (a new baseline). */
int tck_write_passes(const struct tck_run *r, const char *path);

#endif /* TCK_RUNNER_H */
