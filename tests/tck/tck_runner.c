/* tck_runner.c - the openCypher TCK runner: finds feature files, runs every
 * scenario in its own forked child on a fresh store (so a crash or a hang
 * of the engine fails one scenario and the run goes on), prints one line
 * per scenario and totals, and checks the passing scenarios against the
 * baseline list (tck_baseline.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lora.h"
#include "tck_exec.h"
#include "tck_feature.h"
#include "tck_runner.h"

#ifndef TCK_DEFAULT_FEATURES
#define TCK_DEFAULT_FEATURES "../shared/tck/features"
#endif

#define TCK_DIR_DEPTH_MAX 16 /* folder nesting searched for features */

static const char *const status_names[] = {"PASS", "FAIL", "SKIP", "CRASH"};

/* ---- finding feature files ---------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int add_file(struct tck_run *r, const char *path, const char *shown)
{
	struct tck_file *files =
	    lora_realloc(r->files, (r->n_files + 1) * sizeof(*files));

	if (!files)
		return LORA_ENOMEM;
	r->files = files;
	files[r->n_files].path = lora_strdup(path);
	files[r->n_files].shown = lora_strdup(shown);
	files[r->n_files].f = NULL;
	r->n_files++;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds every *.feature under dir (sorted), shown relative to root_len. */
static int walk(struct tck_run *r, const char *dir, size_t root_len, int depth)
{
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;
	int rc = 0;

	if (depth > TCK_DIR_DEPTH_MAX || !(d = opendir(dir)))
		return depth > TCK_DIR_DEPTH_MAX ? 0 : LORA_EIO;
	while ((e = readdir(d)) != NULL) {
		char **grown;

		if (e->d_name[0] == '.')
			continue;
		grown = lora_realloc(names, (n + 1) * sizeof(char *));
		if (!grown)
			break;
		names = grown;
		names[n++] = lora_strdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(char *), cmp_names);
	for (size_t k = 0; k < n; k++) {
		char path[TCK_PATH_MAX];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
		if (rc == 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			rc = walk(r, path, root_len, depth + 1);
		else if (rc == 0 && ends_with(names[k], ".feature"))
			rc = add_file(r, path, path + root_len);
		lora_free(names[k]);
	}
	lora_free(names);
	return rc;
}

static int collect(struct tck_run *r, const char *arg)
{
	struct stat st;
	char root[TCK_PATH_MAX];

	if (stat(arg, &st) != 0) {
		fprintf(stderr, "tck_runner: %s: %s\n", arg, strerror(errno));
		return LORA_ENOTFOUND;
	}
	if (!S_ISDIR(st.st_mode))
		return add_file(r, arg, arg);
	snprintf(root, sizeof(root), "%s", arg);
	while (strlen(root) > 1 && root[strlen(root) - 1] == '/')
		root[strlen(root) - 1] = '\0';
	return walk(r, root, strlen(root) + 1, 0);
}

/* ---- output ----------------------------------------------------------------
 */

static void print_job(const struct tck_run *r, const struct tck_job *j)
{
	char id[TCK_PATH_MAX];

	tck_job_id(j, id, sizeof(id));
	printf("%s %s", status_names[j->status], id);
	if (j->status != ST_PASS && j->reason && j->reason[0])
		printf(" -- %s", j->reason);
	printf("\n");
	if (r->opt.verbose && j->status != ST_PASS && j->status != ST_SKIP &&
	    j->detail && j->detail[0])
		printf("%s%s", j->detail,
		       ends_with(j->detail, "\n") ? "" : "\n");
	fflush(stdout);
}

static int selected(const struct tck_run *r, const struct tck_scenario *s)
{
	return !r->opt.filter || strstr(s->name, r->opt.filter) != NULL;
}

static int make_jobs(struct tck_run *r)
{
	size_t n = 0;

	for (size_t f = 0; f < r->n_files; f++)
		for (size_t k = 0; k < r->files[f].f->n_scenarios; k++)
			n += selected(r, &r->files[f].f->scenarios[k]);
	r->jobs = lora_calloc(n + 1, sizeof(*r->jobs));
	if (!r->jobs)
		return LORA_ENOMEM;
	for (size_t f = 0; f < r->n_files; f++)
		for (size_t k = 0; k < r->files[f].f->n_scenarios; k++) {
			const struct tck_scenario *s =
			    &r->files[f].f->scenarios[k];

			if (!selected(r, s))
				continue;
			r->jobs[r->n_jobs].file = &r->files[f];
			r->jobs[r->n_jobs].s = s;
			r->n_jobs++;
		}
	return 0;
}

/* ---- totals ----------------------------------------------------------------
 */

struct tally {
	long n[4]; /* by enum status */
};

static void print_tally(const char *what, const struct tally *t)
{
	printf("%s: %ld passed, %ld failed (%ld crashed), %ld skipped\n", what,
	       t->n[ST_PASS], t->n[ST_FAIL] + t->n[ST_CRASH], t->n[ST_CRASH],
	       t->n[ST_SKIP]);
}

/* Per feature folder (jobs are grouped by folder), then overall. */
static void print_totals(const struct tck_run *r, struct tally *all)
{
	struct tally dir = {{0}};
	char cur[TCK_PATH_MAX] = "";

	memset(all, 0, sizeof(*all));
	printf("\n");
	for (size_t k = 0; k <= r->n_jobs; k++) {
		char here[TCK_PATH_MAX] = "";

		if (k < r->n_jobs) {
			const char *shown = r->jobs[k].file->shown;
			const char *slash = strrchr(shown, '/');

			snprintf(here, sizeof(here), "%.*s",
			         slash ? (int)(slash - shown) : 1,
			         slash ? shown : ".");
		}
		if (k > 0 && (k == r->n_jobs || strcmp(here, cur) != 0)) {
			print_tally(cur, &dir);
			memset(&dir, 0, sizeof(dir));
		}
		if (k == r->n_jobs)
			break;
		snprintf(cur, sizeof(cur), "%s", here);
		dir.n[r->jobs[k].status]++;
		all->n[r->jobs[k].status]++;
	}
	print_tally("total", all);
}

static int write_failures(const struct tck_run *r)
{
	FILE *f = fopen(r->opt.list_failures, "w");

	if (!f) {
		fprintf(stderr, "tck_runner: %s: %s\n", r->opt.list_failures,
		        strerror(errno));
		return LORA_EIO;
	}
	for (size_t k = 0; k < r->n_jobs; k++) {
		const struct tck_job *j = &r->jobs[k];

		if (j->status != ST_FAIL && j->status != ST_CRASH)
			continue;
		fprintf(f, "%s: %s", j->file->shown, j->s->name);
		if (j->s->example)
			fprintf(f, " (example %d)", j->s->example);
		fprintf(f, ": %s%s\n", j->status == ST_CRASH ? "crash: " : "",
		        j->reason ? j->reason : "");
	}
	fclose(f);
	return 0;
}

/* ---- main
 * -------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
	        "usage: tck_runner [options] [feature files or folders...]\n"
	        "  (default folder: %s)\n"
	        "  --baseline FILE       fail when a scenario listed in FILE "
	        "(one id a line) does not pass\n"
	        "  --filter SUBSTRING    run scenarios whose name contains it\n"
	        "  --verbose             query, expected, actual, error of "
	        "failures\n"
	        "  --list-failures FILE  write \"feature: scenario: reason\" "
	        "lines\n"
	        "  --list-passes FILE    write the ids of the passing "
	        "scenarios (a baseline)\n"
	        "  --graphs DIR          folder of named graphs (default: "
	        "graphs/ found upwards)\n"
	        "  --jobs N              scenarios run at once (default 1)\n"
	        "  --timeout SECONDS     per scenario (default %d)\n"
	        "  --fresh-store         open a new store for every scenario "
	        "(slow under ASan)\n",
	        TCK_DEFAULT_FEATURES, TCK_TIMEOUT_S_DEFAULT);
}

static int parse_options(int argc, char **argv, struct tck_options *o)
{
	static const struct option longs[] = {
	    {"baseline", required_argument, NULL, 'b'},
	    {"filter", required_argument, NULL, 'f'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"list-failures", required_argument, NULL, 'l'},
	    {"list-passes", required_argument, NULL, 'p'},
	    {"graphs", required_argument, NULL, 'g'},
	    {"jobs", required_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'},
	    {"fresh-store", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	int c;

	memset(o, 0, sizeof(*o));
	o->jobs = 1;
	o->timeout_s = TCK_TIMEOUT_S_DEFAULT;
	while ((c = getopt_long(argc, argv, "b:f:vl:p:g:j:t:sh", longs,
	                        NULL)) != -1) {
		switch (c) {
		case 'b':
			o->baseline = optarg;
			break;
		case 'f':
			o->filter = optarg;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'l':
			o->list_failures = optarg;
			break;
		case 'p':
			o->list_passes = optarg;
			break;
		case 'g':
			o->graphs = optarg;
			break;
		case 'j':
			o->jobs = atoi(optarg);
			break;
		case 't':
			o->timeout_s = atoi(optarg);
			break;
		case 's':
			o->fresh_store = 1;
			break;
		default:
			usage();
			return LORA_EINVAL;
		}
	}
	if (o->jobs < 1 || o->jobs > TCK_JOBS_MAX || o->timeout_s < 1) {
		usage();
		return LORA_EINVAL;
	}
	return 0;
}

static int load_all(struct tck_run *r, int argc, char **argv)
{
	int rc = 0;

	for (int k = optind; rc == 0 && k < argc; k++)
		rc = collect(r, argv[k]);
	if (rc == 0 && optind >= argc)
		rc = collect(r, TCK_DEFAULT_FEATURES);
	if (rc == 0 && r->n_files == 0) {
		fprintf(stderr, "tck_runner: no .feature files found\n");
		rc = LORA_ENOTFOUND;
	}
	for (size_t k = 0; rc == 0 && k < r->n_files; k++) {
		char errmsg[LORA_ERRMSG_BYTES] = "";

		rc = tck_feature_load(r->files[k].path, &r->files[k].f, errmsg);
		if (rc)
			fprintf(stderr, "tck_runner: %s\n", errmsg);
	}
	return rc;
}

static void run_free(struct tck_run *r)
{
	for (size_t k = 0; k < r->n_jobs; k++) {
		lora_free(r->jobs[k].reason);
		lora_free(r->jobs[k].detail);
	}
	for (size_t k = 0; k < r->n_files; k++) {
		tck_feature_free(r->files[k].f);
		lora_free(r->files[k].path);
		lora_free(r->files[k].shown);
	}
	lora_free(r->jobs);
	lora_free(r->files);
}

int main(int argc, char **argv)
{
	struct tck_run r;
	struct tck_baseline base = {0};
	struct tally all;
	int rc, bad = 0;

	memset(&r, 0, sizeof(r));
	rc = parse_options(argc, argv, &r.opt);
	if (rc == 0 && r.opt.baseline)
		rc = tck_baseline_read(r.opt.baseline, &base);
	if (rc == 0)
		rc = load_all(&r, argc, argv);
	if (rc == 0)
		rc = make_jobs(&r);
	if (rc == 0)
		rc = tck_pool_run(&r, print_job);
	if (rc == 0) {
		print_totals(&r, &all);
		if (r.opt.list_failures)
			rc = write_failures(&r);
		if (rc == 0 && r.opt.list_passes)
			rc = tck_write_passes(&r, r.opt.list_passes);
		if (r.opt.baseline)
			bad = tck_baseline_check(&r, &base, r.opt.baseline);
		printf("%ld passed, %ld failed\n", all.n[ST_PASS],
		       all.n[ST_FAIL] + all.n[ST_CRASH]);
	}
	tck_baseline_free(&base);
	run_free(&r);
	return rc || bad ? 1 : 0;
}
