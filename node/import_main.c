/* import_main.c - lora-import: builds a new node's state directory from CSV
 * files (offline, like neo4j-admin database import). The work is done by
 * sto_import_* (storage/import.c); this is the command line. See
 * docs/operations.md "Bulk import". */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage.h"

static volatile int cancelled;

static void on_signal(int sig)
{
	(void)sig;
	cancelled = 1;
}

static void usage(FILE *f)
{
	fputs(
	    "usage: lora-import --into DIR [options] --nodes[=LABELS] "
	    "FILES...\n"
	    "                   [--relationships[=TYPE] FILES...]\n"
	    "\n"
	    "Builds a new state directory (what <data_dir>/state of a node "
	    "holds)\nfrom CSV files; see docs/operations.md, \"Bulk import\".\n"
	    "\n"
	    "  --nodes[=L1:L2] F[,F...]     node file(s), labels given to "
	    "every row\n"
	    "  --nodes=L1:L2=F[,F...]       the same, neo4j-admin style\n"
	    "  --relationships[=TYPE] F     relationship file(s), default "
	    "type\n"
	    "  --relationships=TYPE=F       the same, neo4j-admin style\n"
	    "  --into DIR                   the state directory to create\n"
	    "  --delimiter C                field delimiter (default ','; "
	    "TAB for tabs)\n"
	    "  --array-delimiter C          between labels and vector "
	    "coordinates (';')\n"
	    "  --id-type string|integer     what :ID values are (string)\n"
	    "  --id-property NAME|none      property kept for an unnamed "
	    ":ID column (id)\n"
	    "  --index Label(prop)          build a range index "
	    "(repeatable)\n"
	    "  --force                      replace DIR if it exists\n"
	    "  --digest                     print the state digest (as "
	    "GET /admin/digest)\n"
	    "  --quiet                      no progress lines on stderr\n",
	    f);
}

static void progress(void *arg, const struct sto_import_progress *p)
{
	(void)arg;
	fprintf(
	    stderr, "lora-import: %.1f s: %s%s%s: %llu rows (%.0f rows/s)\n",
	    p->elapsed_s, p->phase, p->file ? " " : "", p->file ? p->file : "",
	    (unsigned long long)p->rows, p->rows_per_s);
}

static int parse_delim(const char *s, char *out)
{
	if (!strcmp(s, "TAB") || !strcmp(s, "\\t") || !strcmp(s, "\t")) {
		*out = '\t';
		return 0;
	}
	if (strlen(s) != 1 || s[0] == '"' || s[0] == '\n' || s[0] == '\r')
		return -1;
	*out = s[0];
	return 0;
}

/* "--name" or "--name=value": the value (NULL when none), or "" + no match. */
static int opt_is(const char *arg, const char *name, const char **val)
{
	size_t n = strlen(name);
	if (strncmp(arg, name, n) != 0 || (arg[n] != '\0' && arg[n] != '='))
		return 0;
	*val = arg[n] == '=' ? arg + n + 1 : NULL;
	return 1;
}

/* --nodes / --relationships in their three forms. *i advances over a
 * separate file argument. */
static int add_source(struct sto_import *im, int rel, const char *val, int argc,
                      char **argv, int *i, char *err)
{
	char *names = NULL;
	const char *files = NULL;
	const char *eq = val ? strchr(val, '=') : NULL;
	if (eq) { /* --nodes=Labels=files */
		names = strndup(val, (size_t)(eq - val));
		files = eq + 1;
	} else if (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) {
		names = val ? strdup(val) : NULL; /* --nodes[=Labels] files */
		files = argv[++*i];
	} else {
		files = val; /* --nodes=files */
	}
	int rv = rel ? sto_import_add_relationships(im, files, names, err)
	             : sto_import_add_nodes(im, files, names, err);
	free(names);
	return rv;
}

struct args {
	const char *into;
	int quiet;
};

enum { O_INTO, O_DELIM, O_ARRAY_DELIM, O_ID_TYPE, O_ID_PROP, O_INDEX, O_N };
static const char *const value_opts[O_N] = {
    "--into",    "--delimiter",   "--array-delimiter",
    "--id-type", "--id-property", "--index"};

/* An option that takes a value: 0, or -1 when the value is bad. */
static int value_opt(int k, const char *v, struct sto_import_options *o,
                     struct sto_import *im, struct args *a, char *err)
{
	switch (k) {
	case O_INTO:
		a->into = v;
		return 0;
	case O_DELIM:
		return parse_delim(v, &o->delimiter);
	case O_ARRAY_DELIM:
		return parse_delim(v, &o->array_delimiter);
	case O_ID_TYPE:
		if (!strcmp(v, "integer"))
			o->id_type = STO_IMPORT_ID_INTEGER;
		else if (!strcmp(v, "string"))
			o->id_type = STO_IMPORT_ID_STRING;
		else
			return -1;
		return 0;
	case O_ID_PROP:
		o->id_property = strcmp(v, "none") ? v : NULL;
		return 0;
	default:
		if (sto_import_add_index(im, v, err) == 0)
			return 0;
		fprintf(stderr, "lora-import: %s\n", err);
		return -2;
	}
}

/* A flag without a value: 1 when arg is one. */
static int flag_opt(const char *arg, struct sto_import_options *o,
                    struct args *a)
{
	if (!strcmp(arg, "--force"))
		o->force = 1;
	else if (!strcmp(arg, "--digest"))
		o->digest = 1;
	else if (!strcmp(arg, "--quiet"))
		a->quiet = 1;
	else if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
		usage(stdout);
		exit(0);
	} else
		return 0;
	return 1;
}

/* 0, or 2 after printing what is wrong with the command line. */
static int parse_args(int argc, char **argv, struct sto_import_options *o,
                      struct sto_import *im, struct args *a)
{
	char err[LORA_ERRMSG_BYTES];
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *v = NULL;
		if (opt_is(arg, "--nodes", &v) ||
		    opt_is(arg, "--relationships", &v)) {
			if (add_source(im, arg[2] == 'r', v, argc, argv, &i,
			               err) == 0)
				continue;
			fprintf(stderr, "lora-import: %s\n", err);
			return 2;
		}
		if (flag_opt(arg, o, a))
			continue;
		int k = 0;
		while (k < O_N && !opt_is(arg, value_opts[k], &v))
			k++;
		if (k < O_N && !v && i + 1 < argc)
			v = argv[++i];
		int rv = k < O_N && v ? value_opt(k, v, o, im, a, err) : -1;
		if (rv == -2)
			return 2;
		if (rv) {
			fprintf(stderr, "lora-import: bad argument: %s%s%s\n",
			        arg, v ? " " : "", v ? v : "");
			return 2;
		}
	}
	if (!a->into) {
		fprintf(stderr, "lora-import: --into DIR is required\n");
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sto_import_options o;
	struct sto_import *im;
	struct args a = {0};
	sto_import_options_init(&o);
	if (sto_import_new(&im)) {
		fprintf(stderr, "lora-import: out of memory\n");
		return 1;
	}
	int rc = parse_args(argc, argv, &o, im, &a);
	if (rc) {
		if (argc == 1)
			usage(stderr);
		sto_import_free(im);
		return rc;
	}
	o.progress = a.quiet ? NULL : progress;
	o.cancel = &cancelled;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	char err[LORA_ERRMSG_BYTES];
	struct sto_import_stats st;
	rc = sto_import_run(im, &o, a.into, &st, err);
	sto_import_free(im);
	if (rc) {
		fprintf(stderr, "lora-import: %s\n", err);
		if (!st.target_changed)
			fprintf(stderr,
			        "lora-import: nothing was written to %s\n",
			        a.into);
		return 1;
	}
	printf("imported %llu nodes, %llu relationships, %llu index entries "
	       "into %s in %.2f s (applied index %llu)\n",
	       (unsigned long long)st.nodes,
	       (unsigned long long)st.relationships,
	       (unsigned long long)st.index_entries, a.into, st.seconds,
	       (unsigned long long)st.applied_index);
	if (o.digest)
		printf("digest %s\n", st.digest);
	return 0;
}
