/* tck_baseline.c - the TCK baseline: the list of scenarios that pass.
 *
 * A count of passing scenarios lets a newly passing scenario hide one that
 * stopped passing; a list names the regression. The file holds one scenario
 * id per line, as the runner prints it ("<feature file>:<scenario name>",
 * with " (example N)" for an outline row); blank lines and lines starting
 * with '#' are ignored. After a run every listed scenario must pass (or the
 * run fails, naming it), and scenarios that pass without being listed are
 * printed so they can be added (--list-passes writes the whole list). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora.h"
#include "tck_runner.h"

#define TCK_ID_BYTES_MAX 1024 /* one scenario id */

static const char *const status_names[] = {"PASS", "FAIL", "SKIP", "CRASH"};

void tck_job_id(const struct tck_job *j, char *out, size_t out_bytes)
{
	if (j->s->example)
		snprintf(out, out_bytes, "%s:%s (example %d)", j->file->shown,
		         j->s->name, j->s->example);
	else
		snprintf(out, out_bytes, "%s:%s", j->file->shown, j->s->name);
}

static int cmp_ids(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_id(struct tck_baseline *b, const char *id)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 256;
		char **ids = lora_realloc(b->ids, cap * sizeof(*ids));
		if (!ids)
			return LORA_ENOMEM;
		b->ids = ids;
		b->cap = cap;
	}
	if (!(b->ids[b->n] = lora_strdup(id)))
		return LORA_ENOMEM;
	b->n++;
	return 0;
}

int tck_baseline_read(const char *path, struct tck_baseline *b)
{
	char line[TCK_ID_BYTES_MAX + 2];
	FILE *f = fopen(path, "r");
	int rc = 0;

	memset(b, 0, sizeof(*b));
	if (!f) {
		fprintf(stderr, "tck_runner: %s: %s\n", path, strerror(errno));
		return LORA_EIO;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		size_t len = strcspn(line, "\r\n");
		if (line[len] == '\0' && !feof(f)) {
			fprintf(stderr, "tck_runner: %s: a line is too long\n",
			        path);
			rc = LORA_EINVAL;
		} else if (len > 0 && line[0] != '#') {
			line[len] = '\0';
			rc = add_id(b, line);
		}
	}
	fclose(f);
	if (rc == 0 && b->n > 0 &&
	    strspn(b->ids[0], "0123456789") == strlen(b->ids[0])) {
		fprintf(stderr,
		        "tck_runner: %s holds a count; the baseline is now the "
		        "list of passing scenarios (write it with "
		        "--list-passes)\n",
		        path);
		rc = LORA_EINVAL;
	}
	if (rc == 0 && b->n > 1)
		qsort(b->ids, b->n, sizeof(char *), cmp_ids);
	if (rc != 0)
		tck_baseline_free(b);
	return rc;
}

void tck_baseline_free(struct tck_baseline *b)
{
	for (size_t k = 0; k < b->n; k++)
		lora_free(b->ids[k]);
	lora_free(b->ids);
	memset(b, 0, sizeof(*b));
}

/* Listed ids no job ran (a scenario renamed or removed, a feature file
 * gone) count as regressions, unless --filter chose the jobs. */
static long report_unseen(const struct tck_run *r, const struct tck_baseline *b,
                          const char *seen)
{
	long n = 0;

	if (r->opt.filter)
		return 0;
	for (size_t k = 0; k < b->n; k++)
		if (!seen[k]) {
			printf("REGRESSION %s -- listed in the baseline but "
			       "not found\n",
			       b->ids[k]);
			n++;
		}
	return n;
}

int tck_baseline_check(const struct tck_run *r, const struct tck_baseline *b,
                       const char *path)
{
	char id[TCK_ID_BYTES_MAX];
	char *seen = lora_calloc(b->n + 1, 1);
	long regressed = 0, fresh = 0;

	if (!seen)
		return LORA_ENOMEM;
	printf("\n");
	for (size_t k = 0; k < r->n_jobs; k++) {
		const struct tck_job *j = &r->jobs[k];
		const char *key = id;
		char **hit;

		tck_job_id(j, id, sizeof(id));
		hit = b->n
		          ? bsearch(&key, b->ids, b->n, sizeof(char *), cmp_ids)
		          : NULL;
		if (hit)
			seen[hit - b->ids] = 1;
		if (hit && j->status != ST_PASS) {
			printf("REGRESSION %s -- %s%s%s\n", id,
			       status_names[j->status],
			       j->reason && j->reason[0] ? ": " : "",
			       j->reason ? j->reason : "");
			regressed++;
		} else if (!hit && j->status == ST_PASS) {
			printf("NEW PASS %s\n", id);
			fresh++;
		}
	}
	regressed += report_unseen(r, b, seen);
	lora_free(seen);
	printf("baseline %s: %zu scenarios listed, %ld regressed, %ld newly "
	       "passing%s\n",
	       path, b->n, regressed, fresh,
	       fresh ? " (add the NEW PASS lines to the baseline, or write it "
	               "again with --list-passes)"
	             : "");
	return regressed ? LORA_ELIMIT : 0;
}

int tck_write_passes(const struct tck_run *r, const char *path)
{
	char id[TCK_ID_BYTES_MAX];
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "tck_runner: %s: %s\n", path, strerror(errno));
		return LORA_EIO;
	}
	for (size_t k = 0; k < r->n_jobs; k++) {
		if (r->jobs[k].status != ST_PASS)
			continue;
		tck_job_id(&r->jobs[k], id, sizeof(id));
		fprintf(f, "%s\n", id);
	}
	return fclose(f) == 0 ? 0 : LORA_EIO;
}
