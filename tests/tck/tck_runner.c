/* tck_runner.c - the openCypher TCK runner: finds feature files, runs every
 * scenario in its own forked child on a fresh store (so a crash or a hang
 * of the engine fails one scenario and the run goes on), prints one line
 * per scenario and totals, and checks the pass count against a baseline. */
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

#ifndef TCK_DEFAULT_FEATURES
#define TCK_DEFAULT_FEATURES "../shared/tck/features"
#endif

#define TCK_PATH_MAX               4096
#define TCK_DIR_DEPTH_MAX          16 /* folder nesting searched for features */
#define TCK_JOBS_MAX               16 /* scenarios run at once */
#define TCK_TIMEOUT_S_DEFAULT      10 /* per scenario */
#define TCK_CHILD_OUTPUT_BYTES_MAX (64u << 10)

enum status { ST_PASS, ST_FAIL, ST_SKIP, ST_CRASH };
static const char *const status_names[] = {"PASS", "FAIL", "SKIP", "CRASH"};

struct options {
	const char *baseline;
	const char *filter;
	const char *list_failures;
	const char *graphs;
	int verbose;
	int jobs;
	int timeout_s;
};

/* One feature file to run, with the name it is shown under. */
struct file {
	char *path;
	char *shown; /* relative to the folder argument it was found in */
	struct tck_feature *f;
};

struct job {
	const struct file *file;
	const struct tck_scenario *s;
	enum status status;
	char *reason;
	char *detail;
	/* while running */
	pid_t pid;
	int fd;
	struct timespec start;
	struct lora_buf out;
	char tmpdir[TCK_PATH_MAX];
	int done;
};

struct run {
	struct options opt;
	struct file *files;
	size_t n_files;
	struct job *jobs;
	size_t n_jobs;
};

/* ---- finding feature files ---------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int add_file(struct run *r, const char *path, const char *shown)
{
	struct file *files =
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
static int walk(struct run *r, const char *dir, size_t root_len, int depth)
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

static int collect(struct run *r, const char *arg)
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

/* ---- one scenario in a child process ------------------------------------- */

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Child: runs the scenario and writes "<outcome>\n<reason>\n<detail>". */
static _Noreturn void child_main(const struct run *r, const struct job *j,
                                 int fd)
{
	char store[TCK_PATH_MAX], log[TCK_PATH_MAX];
	struct tck_env env = {store, j->file->path, r->opt.graphs};
	struct tck_result res;
	int logfd;

	snprintf(store, sizeof(store), "%.4000s/state", j->tmpdir);
	snprintf(log, sizeof(log), "%.4000s/stderr.log", j->tmpdir);
	logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (logfd >= 0) {
		dup2(logfd, STDERR_FILENO);
		dup2(logfd, STDOUT_FILENO);
		close(logfd);
	}
	alarm((unsigned)r->opt.timeout_s + 5); /* in case the parent is gone */
	memset(&res, 0, sizeof(res));
	tck_run_scenario(j->s, &env, &res);
	for (size_t k = 0; k < res.reason.len; k++)
		if (res.reason.data[k] == '\n')
			res.reason.data[k] = ' ';
	dprintf(fd, "%d\n", (int)res.outcome);
	write_all(fd, res.reason.data ? res.reason.data : "", res.reason.len);
	write_all(fd, "\n", 1);
	write_all(fd, res.detail.data ? res.detail.data : "", res.detail.len);
	close(fd);
	/* _exit: skip atexit work (leak reports belong to the engine's own
	 * unit tests, not to every scenario). */
	_exit(0);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static int start_job(const struct run *r, struct job *j)
{
	const char *tmp = getenv("TMPDIR");
	int fds[2];

	snprintf(j->tmpdir, sizeof(j->tmpdir), "%s/tck.XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(j->tmpdir) || pipe(fds) != 0) {
		fprintf(stderr, "tck_runner: temp dir / pipe: %s\n",
		        strerror(errno));
		return LORA_EIO;
	}
	fflush(stdout);
	fflush(stderr);
	j->pid = fork();
	if (j->pid < 0) {
		close(fds[0]);
		close(fds[1]);
		nftw(j->tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		return LORA_EIO;
	}
	if (j->pid == 0) {
		close(fds[0]);
		child_main(r, j, fds[1]);
	}
	close(fds[1]);
	j->fd = fds[0];
	clock_gettime(CLOCK_MONOTONIC, &j->start);
	return 0;
}

/* The most telling line of a crashed child's stderr: the sanitizer
 * summary, a runtime error, a panic, or the last line. */
static char *crash_line(const char *tmpdir)
{
	char path[TCK_PATH_MAX], line[1024], best[1024] = "", last[1024] = "";
	int rank = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/stderr.log", tmpdir);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		int r = strstr(line, "SUMMARY:")         ? 3
		        : strstr(line, "runtime error:") ? 2
		        : strstr(line, "ERROR:") || strstr(line, "panic") ||
		                strstr(line, "ssert")
		            ? 1
		            : 0;

		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(last, sizeof(last), "%s", line);
		if (r > rank) {
			rank = r;
			snprintf(best, sizeof(best), "%s", line);
		}
	}
	if (f)
		fclose(f);
	return lora_strdup(best[0] ? best : last);
}

static void set_crash(struct job *j, int wstatus, int timed_out)
{
	char *line = crash_line(j->tmpdir);
	struct lora_buf b = {0};

	j->status = ST_CRASH;
	if (timed_out)
		lora_buf_printf(&b, "timeout: killed after the time limit");
	else if (WIFSIGNALED(wstatus))
		lora_buf_printf(&b, "killed by signal %d (%s)",
		                WTERMSIG(wstatus),
		                strsignal(WTERMSIG(wstatus)));
	else
		lora_buf_printf(&b, "exit status %d", WEXITSTATUS(wstatus));
	if (line && line[0])
		lora_buf_printf(&b, ": %s", line);
	lora_free(line);
	j->reason = lora_buf_take(&b);
}

/* Collects a child that has exited (or is killed here on timeout). */
static void finish_job(struct job *j, int timed_out)
{
	int wstatus = 0;
	char *nl;

	if (timed_out)
		kill(j->pid, SIGKILL);
	while (waitpid(j->pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	close(j->fd);
	nl = j->out.data ? strchr(j->out.data, '\n') : NULL;
	if (!timed_out && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 &&
	    nl) {
		char *nl2 = strchr(nl + 1, '\n');

		j->status = (enum status)atoi(j->out.data);
		if (nl2)
			*nl2 = '\0';
		j->reason = lora_strdup(nl + 1);
		j->detail = lora_strdup(nl2 ? nl2 + 1 : "");
	} else {
		set_crash(j, wstatus, timed_out);
	}
	lora_buf_free(&j->out);
	nftw(j->tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	j->done = 1;
}

static double elapsed_s(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) +
	       (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* Reads what the running children wrote; finishes those at EOF or past
 * their deadline. Returns how many finished. */
static int poll_jobs(const struct run *r, struct job **running, int n)
{
	struct pollfd pfd[TCK_JOBS_MAX];
	int finished = 0;

	for (int k = 0; k < n; k++)
		pfd[k] = (struct pollfd){running[k]->fd, POLLIN, 0};
	if (poll(pfd, (nfds_t)n, 100) < 0 && errno != EINTR)
		return 0;
	for (int k = 0; k < n; k++) {
		struct job *j = running[k];
		char buf[4096];
		ssize_t got = 0;

		if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
			got = read(j->fd, buf, sizeof(buf));
			if (got > 0 && j->out.len < TCK_CHILD_OUTPUT_BYTES_MAX)
				lora_buf_append(&j->out, buf, (size_t)got);
		}
		if (got == 0 && (pfd[k].revents & (POLLIN | POLLHUP))) {
			finish_job(j, 0);
			finished++;
		} else if (elapsed_s(&j->start) > r->opt.timeout_s) {
			finish_job(j, 1);
			finished++;
		}
	}
	return finished;
}

/* ---- output ----------------------------------------------------------------
 */

static void print_name(FILE *out, const struct job *j)
{
	fprintf(out, "%s:%s", j->file->shown, j->s->name);
	if (j->s->example)
		fprintf(out, " (example %d)", j->s->example);
}

static void print_job(const struct run *r, const struct job *j)
{
	printf("%s ", status_names[j->status]);
	print_name(stdout, j);
	if (j->status != ST_PASS && j->reason && j->reason[0])
		printf(" -- %s", j->reason);
	printf("\n");
	if (r->opt.verbose && j->status != ST_PASS && j->status != ST_SKIP &&
	    j->detail && j->detail[0])
		printf("%s%s", j->detail,
		       ends_with(j->detail, "\n") ? "" : "\n");
	fflush(stdout);
}

static int selected(const struct run *r, const struct tck_scenario *s)
{
	return !r->opt.filter || strstr(s->name, r->opt.filter) != NULL;
}

static int make_jobs(struct run *r)
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
			r->jobs[r->n_jobs].fd = -1;
			r->n_jobs++;
		}
	return 0;
}

/* Runs every job, at most opt.jobs at a time, printing in order. */
static int run_all(struct run *r)
{
	struct job *running[TCK_JOBS_MAX];
	size_t next = 0, printed = 0;
	int n = 0;

	while (printed < r->n_jobs) {
		while (n < r->opt.jobs && next < r->n_jobs) {
			if (start_job(r, &r->jobs[next]) != 0)
				return LORA_EIO;
			running[n++] = &r->jobs[next++];
		}
		if (n > 0 && poll_jobs(r, running, n) > 0) {
			int w = 0;

			for (int k = 0; k < n; k++)
				if (!running[k]->done)
					running[w++] = running[k];
			n = w;
		}
		while (printed < r->n_jobs && r->jobs[printed].done)
			print_job(r, &r->jobs[printed++]);
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
static void print_totals(const struct run *r, struct tally *all)
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

static int write_failures(const struct run *r)
{
	FILE *f = fopen(r->opt.list_failures, "w");

	if (!f) {
		fprintf(stderr, "tck_runner: %s: %s\n", r->opt.list_failures,
		        strerror(errno));
		return LORA_EIO;
	}
	for (size_t k = 0; k < r->n_jobs; k++) {
		const struct job *j = &r->jobs[k];

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

static int read_baseline(const char *path, long *out)
{
	FILE *f = fopen(path, "r");
	int ok = f && fscanf(f, "%ld", out) == 1;

	if (f)
		fclose(f);
	if (!ok)
		fprintf(stderr, "tck_runner: cannot read a count from %s\n",
		        path);
	return ok ? 0 : LORA_EINVAL;
}

/* ---- main
 * -------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
	        "usage: tck_runner [options] [feature files or folders...]\n"
	        "  (default folder: %s)\n"
	        "  --baseline FILE       fail when fewer scenarios pass than "
	        "the count in FILE\n"
	        "  --filter SUBSTRING    run scenarios whose name contains it\n"
	        "  --verbose             query, expected, actual, error of "
	        "failures\n"
	        "  --list-failures FILE  write \"feature: scenario: reason\" "
	        "lines\n"
	        "  --graphs DIR          folder of named graphs (default: "
	        "graphs/ found upwards)\n"
	        "  --jobs N              scenarios run at once (default 1)\n"
	        "  --timeout SECONDS     per scenario (default %d)\n",
	        TCK_DEFAULT_FEATURES, TCK_TIMEOUT_S_DEFAULT);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
	    {"baseline", required_argument, NULL, 'b'},
	    {"filter", required_argument, NULL, 'f'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"list-failures", required_argument, NULL, 'l'},
	    {"graphs", required_argument, NULL, 'g'},
	    {"jobs", required_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	int c;

	memset(o, 0, sizeof(*o));
	o->jobs = 1;
	o->timeout_s = TCK_TIMEOUT_S_DEFAULT;
	while ((c = getopt_long(argc, argv, "b:f:vl:g:j:t:h", longs, NULL)) !=
	       -1) {
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
		case 'g':
			o->graphs = optarg;
			break;
		case 'j':
			o->jobs = atoi(optarg);
			break;
		case 't':
			o->timeout_s = atoi(optarg);
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

static int load_all(struct run *r, int argc, char **argv)
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

static void run_free(struct run *r)
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
	struct run r;
	struct tally all;
	long baseline = 0;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = parse_options(argc, argv, &r.opt);
	if (rc == 0 && r.opt.baseline)
		rc = read_baseline(r.opt.baseline, &baseline);
	if (rc == 0)
		rc = load_all(&r, argc, argv);
	if (rc == 0)
		rc = make_jobs(&r);
	if (rc == 0)
		rc = run_all(&r);
	if (rc == 0) {
		print_totals(&r, &all);
		if (r.opt.list_failures)
			rc = write_failures(&r);
		if (r.opt.baseline)
			printf("baseline %ld: %s\n", baseline,
			       all.n[ST_PASS] >= baseline ? "ok" : "BELOW");
		printf("%ld passed, %ld failed\n", all.n[ST_PASS],
		       all.n[ST_FAIL] + all.n[ST_CRASH]);
		if (all.n[ST_PASS] < baseline)
			rc = LORA_ELIMIT;
	}
	run_free(&r);
	return rc ? 1 : 0;
}
