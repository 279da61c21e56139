/* tck_pool.c - worker processes for the TCK runner.
 *
 * Each worker is a forked child with its own temp dir and store. The
 * parent sends it job numbers over a pipe ("17\n"); the worker runs the
 * scenario and answers with a frame "<job> <outcome> <reason bytes>
 * <detail bytes>\n<reason><detail>". A worker's stdout and stderr go to
 * <tmpdir>/stderr.log, emptied before each scenario, so that when the
 * engine crashes the parent can quote the sanitizer's summary line.
 *
 * Why workers instead of one process per scenario: opening a RocksDB store
 * takes 200-400 ms under AddressSanitizer, which for 2,700 scenarios
 * would take far beyond the suite's time budget. A worker opens one store
 * and empties it between scenarios (tck_state_wipe); --fresh-store opens a
 * new one for every scenario instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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
#include "storage.h"
#include "tck_exec.h"
#include "tck_runner.h"
#include "tck_state.h"

/* Bytes of a scenario's one-line reason sent back to the parent. */
#define TCK_REASON_BYTES_MAX 2048
/* Bytes of one result frame the parent accepts. */
#define TCK_FRAME_BYTES_MAX (TCK_DETAIL_BYTES_MAX + TCK_REASON_BYTES_MAX + 128)
/* Bytes of a crash line quoted from a worker's stderr. */
#define TCK_CRASH_LINE_BYTES 1024

struct worker {
	pid_t pid; /* 0: no process */
	int cmd_fd, res_fd;
	char tmpdir[TCK_PATH_MAX];
	struct tck_job *job; /* running, or NULL when idle */
	struct timespec start;
	struct lora_buf in;
};

struct pool {
	struct tck_run *r;
	struct worker w[TCK_JOBS_MAX];
	int n;
	struct tck_job *retry[TCK_JOBS_MAX]; /* timed out once, to rerun */
	int n_retry;
};

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

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

/* ---- the worker (child) -------------------------------------------------- */

struct wstore {
	struct sto_store *s;
	char dir[TCK_PATH_MAX];
	unsigned generation;
	char errmsg[LORA_ERRMSG_BYTES];
};

static void store_close(struct wstore *ws)
{
	if (ws->s)
		sto_close(ws->s);
	ws->s = NULL;
	if (ws->dir[0])
		rm_tree(ws->dir);
	ws->dir[0] = '\0';
}

static void store_open(struct wstore *ws, const char *tmpdir)
{
	store_close(ws);
	snprintf(ws->dir, sizeof(ws->dir), "%.4000s/state%u", tmpdir,
	         ws->generation++);
	if (sto_open(ws->dir, NULL, &ws->s, ws->errmsg) != 0)
		ws->s = NULL;
}

/* An empty store for the next scenario: wiped, or new when wiping fails
 * or --fresh-store asks for it. */
static void store_ready(struct wstore *ws, const char *tmpdir, int fresh)
{
	if (ws->s && !fresh && tck_state_wipe(ws->s, ws->errmsg) == 0)
		return;
	store_open(ws, tmpdir);
}

static void run_one(struct tck_run *r, struct wstore *ws, const char *tmpdir,
                    size_t k, int res_fd)
{
	struct tck_job *j = &r->jobs[k];
	struct tck_env env = {NULL, j->file->path, r->opt.graphs};
	struct tck_result res;
	char head[128];

	memset(&res, 0, sizeof(res));
	store_ready(ws, tmpdir, r->opt.fresh_store);
	env.store = ws->s;
	if (ws->s) {
		tck_run_scenario(j->s, &env, &res);
	} else {
		res.outcome = TCK_FAIL;
		lora_buf_printf(&res.reason, "runner: sto_open: %s",
		                ws->errmsg);
	}
	/* Frames stay within what the parent accepts. */
	if (res.detail.len > TCK_DETAIL_BYTES_MAX)
		res.detail.len = TCK_DETAIL_BYTES_MAX;
	if (res.reason.len > TCK_REASON_BYTES_MAX)
		res.reason.len = TCK_REASON_BYTES_MAX;
	for (size_t c = 0; c < res.reason.len; c++)
		if (res.reason.data[c] == '\n')
			res.reason.data[c] = ' ';
	snprintf(head, sizeof(head), "%zu %d %zu %zu\n", k, (int)res.outcome,
	         res.reason.len, res.detail.len);
	write_all(res_fd, head, strlen(head));
	write_all(res_fd, res.reason.data ? res.reason.data : "",
	          res.reason.len);
	write_all(res_fd, res.detail.data ? res.detail.data : "",
	          res.detail.len);
	lora_buf_free(&res.reason);
	lora_buf_free(&res.detail);
}

static _Noreturn void worker_main(struct tck_run *r, const char *tmpdir,
                                  int cmd_fd, int res_fd)
{
	char log[TCK_PATH_MAX];
	struct wstore ws;
	FILE *in = fdopen(cmd_fd, "r");
	size_t k;
	int logfd;

	memset(&ws, 0, sizeof(ws));
	snprintf(log, sizeof(log), "%.4000s/stderr.log", tmpdir);
	logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (logfd >= 0) {
		dup2(logfd, STDERR_FILENO);
		dup2(logfd, STDOUT_FILENO);
		close(logfd);
	}
	signal(SIGPIPE, SIG_DFL);
	while (in && fscanf(in, "%zu", &k) == 1 && k < r->n_jobs) {
		if (ftruncate(STDERR_FILENO, 0) == 0)
			lseek(STDERR_FILENO, 0, SEEK_SET);
		alarm((unsigned)r->opt.timeout_s + 5); /* parent gone */
		run_one(r, &ws, tmpdir, k, res_fd);
		alarm(0);
	}
	store_close(&ws);
	rm_tree(tmpdir); /* also when the parent died without reaping us */
	/* _exit: no atexit work; leak reports belong to the engine's own
	 * unit tests, not to every scenario. */
	_exit(0);
}

/* ---- the parent
 * -------------------------------------------------------------- */

static int spawn(struct pool *p, struct worker *w)
{
	const char *tmp = getenv("TMPDIR");
	int cmd[2], res[2];

	snprintf(w->tmpdir, sizeof(w->tmpdir), "%.4000s/tck.XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(w->tmpdir))
		return LORA_EIO;
	if (pipe(cmd) != 0) {
		rm_tree(w->tmpdir);
		return LORA_EIO;
	}
	if (pipe(res) != 0) {
		close(cmd[0]);
		close(cmd[1]);
		rm_tree(w->tmpdir);
		return LORA_EIO;
	}
	fflush(stdout);
	fflush(stderr);
	w->pid = fork();
	if (w->pid == 0) {
		for (int k = 0; k < p->n; k++)
			if (&p->w[k] != w && p->w[k].pid > 0) {
				close(p->w[k].cmd_fd);
				close(p->w[k].res_fd);
			}
		close(cmd[1]);
		close(res[0]);
		worker_main(p->r, w->tmpdir, cmd[0], res[1]);
	}
	close(cmd[0]);
	close(res[1]);
	w->cmd_fd = cmd[1];
	w->res_fd = res[0];
	if (w->pid < 0) {
		close(w->cmd_fd);
		close(w->res_fd);
		w->pid = 0;
		rm_tree(w->tmpdir);
		return LORA_EIO;
	}
	return 0;
}

/* The most telling line of the worker's stderr: the sanitizer summary, a
 * runtime error, a panic, or the last line. */
static char *crash_line(const char *tmpdir)
{
	char path[TCK_PATH_MAX], line[TCK_CRASH_LINE_BYTES];
	char best[TCK_CRASH_LINE_BYTES] = "", last[TCK_CRASH_LINE_BYTES] = "";
	int rank = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%.4000s/stderr.log", tmpdir);
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
			memcpy(last, line, sizeof(last));
		if (r > rank) {
			rank = r;
			memcpy(best, line, sizeof(best));
		}
	}
	if (f)
		fclose(f);
	return lora_strdup(best[0] ? best : last);
}

/* Ends worker w (killing it when asked); its running job, if any, is
 * marked crashed, or queued again after its first timeout. */
static void reap(struct pool *p, struct worker *w, int kill_it, int timed_out)
{
	int wstatus = 0;

	if (kill_it)
		kill(w->pid, SIGKILL);
	close(w->cmd_fd);
	close(w->res_fd);
	while (waitpid(w->pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	if (w->job && timed_out && w->job->timeouts++ == 0 &&
	    p->n_retry < TCK_JOBS_MAX) {
		p->retry[p->n_retry++] = w->job;
		w->job = NULL;
	}
	if (w->job) {
		struct lora_buf b = {0};
		char *line = crash_line(w->tmpdir);

		w->job->status = ST_CRASH;
		if (timed_out)
			lora_buf_puts(
			    &b, "timeout: killed after the time limit, twice");
		else if (WIFSIGNALED(wstatus))
			lora_buf_printf(&b, "killed by signal %d (%s)",
			                WTERMSIG(wstatus),
			                strsignal(WTERMSIG(wstatus)));
		else
			lora_buf_printf(&b, "exit status %d",
			                WEXITSTATUS(wstatus));
		if (line && line[0])
			lora_buf_printf(&b, ": %s", line);
		lora_free(line);
		w->job->reason = lora_buf_take(&b);
		w->job->detail = lora_strdup("");
		w->job->done = 1;
	}
	rm_tree(w->tmpdir);
	lora_buf_free(&w->in);
	w->pid = 0;
	w->job = NULL;
}

/* Parses one complete frame from w->in, if there is one. */
static void take_frame(struct tck_run *r, struct worker *w)
{
	size_t k, rlen, dlen;
	int outcome, used = 0;
	char *nl = w->in.data ? memchr(w->in.data, '\n', w->in.len) : NULL;

	if (!nl || sscanf(w->in.data, "%zu %d %zu %zu%n", &k, &outcome, &rlen,
	                  &dlen, &used) != 4)
		return;
	if ((size_t)(nl + 1 - w->in.data) + rlen + dlen > w->in.len)
		return;
	if (w->job && k == (size_t)(w->job - r->jobs)) {
		w->job->status = outcome == TCK_PASS   ? ST_PASS
		                 : outcome == TCK_SKIP ? ST_SKIP
		                                       : ST_FAIL;
		w->job->reason = lora_strndup(nl + 1, rlen);
		w->job->detail = lora_strndup(nl + 1 + rlen, dlen);
		w->job->done = 1;
		w->job = NULL;
	}
	lora_buf_reset(&w->in);
}

static double elapsed_s(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) +
	       (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* Gives worker w job k, starting a worker process first when needed. */
static int assign(struct pool *p, struct worker *w, size_t k)
{
	char cmd[32];

	if (w->pid == 0 && spawn(p, w) != 0) {
		fprintf(stderr, "tck_runner: cannot start a worker: %s\n",
		        strerror(errno));
		return LORA_EIO;
	}
	w->job = &p->r->jobs[k];
	clock_gettime(CLOCK_MONOTONIC, &w->start);
	snprintf(cmd, sizeof(cmd), "%zu\n", k);
	write_all(w->cmd_fd, cmd, strlen(cmd));
	return 0;
}

/* Reads what the busy workers wrote; reaps the dead and the late. */
static void poll_workers(struct pool *p)
{
	struct pollfd pfd[TCK_JOBS_MAX];
	struct worker *busy[TCK_JOBS_MAX];
	int n = 0;

	for (int k = 0; k < p->n; k++)
		if (p->w[k].job) {
			busy[n] = &p->w[k];
			pfd[n++] = (struct pollfd){p->w[k].res_fd, POLLIN, 0};
		}
	if (n == 0 || (poll(pfd, (nfds_t)n, 100) < 0 && errno != EINTR))
		return;
	for (int k = 0; k < n; k++) {
		struct worker *w = busy[k];
		char buf[8192];
		ssize_t got = 1;

		if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
			got = read(w->res_fd, buf, sizeof(buf));
			if (got > 0)
				lora_buf_append(&w->in, buf, (size_t)got);
			if (got > 0)
				take_frame(p->r, w);
		}
		if (got == 0 || (got < 0 && errno != EINTR))
			reap(p, w, 0, 0); /* the worker died */
		else if (w->in.len > TCK_FRAME_BYTES_MAX)
			reap(p, w, 1, 0); /* garbled: counts as a crash */
		else if (w->job && elapsed_s(&w->start) > p->r->opt.timeout_s)
			reap(p, w, 1, 1);
	}
}

int tck_pool_run(struct tck_run *r, tck_done_fn done)
{
	struct pool p;
	size_t next = 0, printed = 0;
	int rc = 0;

	memset(&p, 0, sizeof(p));
	p.r = r;
	p.n = r->opt.jobs < TCK_JOBS_MAX ? r->opt.jobs : TCK_JOBS_MAX;
	signal(SIGPIPE, SIG_IGN); /* a dead worker's pipe: seen as EOF */
	while (rc == 0 && printed < r->n_jobs) {
		for (int k = 0; rc == 0 && k < p.n; k++) {
			if (p.w[k].job)
				continue;
			if (p.n_retry > 0)
				rc = assign(
				    &p, &p.w[k],
				    (size_t)(p.retry[--p.n_retry] - r->jobs));
			else if (next < r->n_jobs)
				rc = assign(&p, &p.w[k], next++);
		}
		poll_workers(&p);
		while (printed < r->n_jobs && r->jobs[printed].done)
			done(r, &r->jobs[printed++]);
	}
	for (int k = 0; k < p.n; k++)
		if (p.w[k].pid > 0)
			reap(&p, &p.w[k], rc != 0, 0);
	return rc;
}
