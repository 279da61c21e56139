/*
 * tck_feature.h - a Gherkin reader for TCK feature files: Feature,
 * Background, Scenario, Scenario Outline + Examples (expanded, one scenario
 * per example row), steps with doc strings and tables, comments and tags.
 *
 * Ownership: tck_feature_load returns a tree owned by the caller and freed
 * with tck_feature_free; every string and table inside belongs to it.
 */
#ifndef TCK_FEATURE_H
#define TCK_FEATURE_H

#include <stddef.h>

/* Limits on what one feature file may hold. */
#define TCK_FEATURE_BYTES_MAX (16u << 20)
#define TCK_LINE_BYTES_MAX    (1u << 20)
#define TCK_TABLE_COLS_MAX    256

/* A step table: rows of cells, already unescaped (\| \\ \n). */
struct tck_table {
	size_t n_rows;
	size_t *n_cols; /* per row */
	char ***cells;  /* cells[row][col] */
};

struct tck_step {
	char *keyword;          /* Given / When / Then / And / But / * */
	char *text;             /* the rest of the line, trimmed */
	char *doc;              /* doc string ("""), NULL when absent */
	struct tck_table table; /* n_rows 0 when absent */
	int has_table;
	int line;
};

struct tck_scenario {
	char *name;  /* with outline placeholders substituted */
	int line;    /* of the Scenario keyword */
	int example; /* 1-based example row of an outline; 0 otherwise */
	char **tags; /* without '@': scenario, examples and feature tags */
	size_t n_tags;
	struct tck_step *steps; /* background steps first */
	size_t n_steps;
};

struct tck_feature {
	char *path;
	char *name;
	struct tck_scenario *scenarios;
	size_t n_scenarios;
};

/* Reads and expands the feature file at `path`. errmsg: LORA_ERRMSG_BYTES,
 * receives "file:line: what" on a syntax error. */
int tck_feature_load(const char *path, struct tck_feature **out, char *errmsg);
void tck_feature_free(struct tck_feature *f);

/* 1 when scenario s carries tag (without '@'). */
int tck_scenario_has_tag(const struct tck_scenario *s, const char *tag);

#endif /* TCK_FEATURE_H */
