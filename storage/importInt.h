/*
 * importInt.h - private to the bulk import (csv.c, import.c, import_ids.c,
 * import_write.c): the CSV record reader, the field converters, the :ID
 * tables and the state of one sto_import_run.
 *
 * The import reads CSV files once, front to back, and turns every row into
 * exactly the keys and values sto_apply would have written for the same
 * graph (see import.c). Those are written with RocksDB's SstFileWriter,
 * one sorted file per column family, by a writer thread, and ingested
 * into a new store (import_write.c). Tests reach these functions through
 * this header (tests/storage/test_storage_import.c).
 */
#ifndef LORA_STO_IMPORT_INT_H
#define LORA_STO_IMPORT_INT_H

#include <stdio.h>

#include "stoInt.h"

/* ---- the CSV record reader (csv.c) --------------------------------------
 *
 * RFC 4180: fields separated by one delimiter byte, records by "\n" or
 * "\r\n"; a field that starts with '"' is quoted, may hold delimiters,
 * line breaks and doubled quotes ("" for one "), and must be followed by a
 * delimiter, a line break or the end of input. A quote inside an unquoted
 * field is an error (it usually means a broken quoted field). Empty lines
 * between records are skipped. Pure functions over bytes in memory.
 *
 * The import reads a file through a window (import.c): c->at_end tells it
 * that a record or its error ran into the end of the bytes given, so it
 * may change when more of the file follows; the reader then reads more
 * and parses that record again from its start.
 */

struct sto_csv_field {
	const char *p; /* borrowed: into the input or the reader's buffer */
	size_t len;
	int quoted; /* 1: written in quotes ("" is an empty string) */
	size_t off; /* private to csv.c */
};

struct sto_csv {
	const char *p, *end; /* input not read yet (borrowed) */
	char delim;
	uint64_t line;     /* line number at p, 1-based */
	uint64_t rec_line; /* line where the last record started */
	uint64_t err_line; /* an error's line: where its record starts */
	int at_end;        /* the last sto_csv_next stopped at end: see above */
	struct sto_csv_field *f; /* fields of the last record (owned) */
	size_t nf, cap;
	struct lora_buf unq; /* unescaped quoted fields of the last record */
};

void sto_csv_init(struct sto_csv *c, const char *p, size_t len, char delim);
void sto_csv_free(struct sto_csv *c);
/*
 * Reads the next record into c->f[0..nf). *done = 1 (and 0 returned) at
 * the end of input. LORA_EINVAL for a quoted field that never ends or is
 * followed by other bytes, or a stray quote; LORA_ELIMIT for more than
 * STO_IMPORT_COLUMNS_MAX fields or a field over STO_IMPORT_FIELD_BYTES_MAX;
 * the reason in errmsg, the line in c->err_line. Fields stay valid until
 * the next call. errmsg may be NULL.
 */
int sto_csv_next(struct sto_csv *c, int *done, char *errmsg);

/* Field converters: 0, or LORA_EINVAL with the reason in errmsg. Leading
 * and trailing spaces are allowed around numbers and booleans. */
int sto_csv_int(const char *p, size_t len, int64_t *out, char *errmsg);
int sto_csv_double(const char *p, size_t len, double *out, char *errmsg);
int sto_csv_bool(const char *p, size_t len, int *out, char *errmsg);
/*
 * A float32 vector of exactly dim coordinates: "[1.5, 2, -3e-2]" or
 * "1.5;2;-3e-2" (brackets optional; coordinates separated by ',' or by
 * sep). Every coordinate must be a finite number within float32 range;
 * each is rounded to the nearest float32, as strtof does.
 */
int sto_csv_vector(const char *p, size_t len, char sep, float *out,
                   uint32_t dim, char *errmsg);
/* 1 when p[0..len) is valid UTF-8 without NUL bytes. */
int sto_csv_text_ok(const char *p, size_t len);
/* One decimal number to the nearest float32 (*out); 0 or LORA_EINVAL.
 * Exposed for tests: the fast path must agree with strtof. */
int sto_csv_f32(const char *p, size_t len, float *out);

/* ---- limits ---- */

#define STO_IMPORT_COLUMNS_MAX     4096         /* fields in one record */
#define STO_IMPORT_FIELD_BYTES_MAX (64u << 20)  /* bytes of one field */
#define STO_IMPORT_FILES_MAX       1024         /* input files */
#define STO_IMPORT_INDEXES_MAX     64           /* --index specs */
#define STO_IMPORT_LABELS_MAX      1024         /* labels of one node */
#define STO_IMPORT_GROUPS_MAX      1024         /* :ID groups */
#define STO_IMPORT_IDS_MAX         (1ull << 32) /* :ID values per group */
#define STO_IMPORT_PROGRESS_ROWS   16384        /* rows between clock reads */
#define STO_IMPORT_PIPE_BYTES      (4u << 20)   /* bytes per writer hand-over */
#define STO_IMPORT_READ_BYTES      (4u << 20)   /* an input's read window */

/* the read window grows to hold one record, up to this */
#define STO_IMPORT_RECORD_BYTES_MAX (256u << 20)

/* ---- the state of one import (import.c, import_write.c) ---- */

enum imp_col_kind {
	IMP_COL_PROP,   /* a property */
	IMP_COL_ID,     /* :ID (kept as a property when it has a name) */
	IMP_COL_LABEL,  /* :LABEL */
	IMP_COL_START,  /* :START_ID */
	IMP_COL_END,    /* :END_ID */
	IMP_COL_TYPE,   /* :TYPE */
	IMP_COL_IGNORE, /* :IGNORE */
};

enum imp_type { IMP_STRING, IMP_INT, IMP_FLOAT, IMP_BOOL, IMP_VECTOR };

struct imp_col {
	int kind;       /* enum imp_col_kind */
	int type;       /* enum imp_type (properties and :ID) */
	char *name;     /* property key (owned); NULL: not stored */
	uint32_t dim;   /* vectors: coordinates */
	int64_t key;    /* token of name, -1 until first interned */
	uint32_t group; /* :ID, :START_ID, :END_ID: index in im->grp */
};

/* One --nodes or --relationships option. */
struct imp_src {
	int rel;
	char **paths; /* owned */
	size_t npaths;
	char **names; /* labels (nodes) or the default type; owned */
	size_t nnames;
	int64_t *toks; /* tokens of names, -1 until interned */
	struct imp_col *cols;
	size_t ncols;
};

/* An :ID space (import_ids.c): the node each :ID value names. */
struct imp_slot {
	uint64_t key;  /* the integer id, or the hash of a string id */
	uint64_t node; /* UINT64_MAX: empty slot */
	uint64_t soff; /* string ids: (u32 len, bytes) at arena + soff */
};

struct imp_group {
	char *name; /* "" for the default group; owned */
	struct imp_slot *slots;
	uint64_t nslots, n; /* power of two; at most half full */
	char *arena;
	uint64_t alen, acap;
	/* Integer ids so far dense_key + i for node dense_node + i, i < n:
	 * no slots in use (see import_ids.c). */
	int dense;
	uint64_t dense_key, dense_node;
};

struct imp_index {
	char *label, *key, *name;   /* owned */
	int64_t label_tok, key_tok; /* -1 until interned */
};

struct imp_u64v {
	uint64_t *v;
	size_t n, cap;
};

/* One vector property of the current row, packed in im->vbytes. */
struct imp_vec {
	uint32_t key;
	size_t off, len;
};

struct imp_sst {
	rocksdb_sstfilewriter_t *w; /* NULL until the first key */
	uint64_t n;
	char *path; /* owned */
};

struct sto_import {
	struct sto_import_options o;
	struct imp_src *src;
	size_t nsrc, nfiles;
	struct imp_index *idx;
	size_t nidx;

	/* ---- the run */
	char *errmsg; /* errbuf: copied to the caller's at the end */
	char errbuf[LORA_ERRMSG_BYTES];
	struct sto_tokens tok[STO_TOK_KINDS]; /* as apply would assign */
	struct imp_group *grp;
	size_t ngrp;
	uint64_t nodes, edges;
	struct imp_u64v *lnodes; /* nodes of each label token, ascending */
	size_t nlnodes;
	uint64_t *tcount; /* edges of each type token */
	size_t ntcount;
	uint64_t *efrom, *eto; /* endpoints of each edge */
	uint32_t *etype;
	size_t ecap;
	uint32_t *deg[2];      /* per node: outgoing [0], incoming [1] so far */
	struct lora_buf pkeys; /* property index keys: (be32 len, key)* */
	uint64_t npkeys;

	struct sto_store *s; /* the store being built */
	rocksdb_envoptions_t *env;
	struct imp_sst sst[STO_CF_COUNT];
	struct imp_pipe *pipe; /* the writer thread; NULL: none */
	char *target, *tmp, *statedir, *sstdir; /* owned paths */

	/* scratch for one row */
	struct sto_rec rec;
	struct lora_buf val, kbuf, str, vbytes;
	struct imp_vec *vecs;
	size_t nvecs, vecs_cap;
	float *coords;
	uint32_t coords_cap;
	uint32_t labels[STO_IMPORT_LABELS_MAX];
	uint32_t nlabels;

	/* progress */
	uint64_t t0_ns, phase_ns, report_ns, rows;
	const char *phase, *file;
	struct sto_import_stats st;
};

/* import.c */
int imp_fail(struct sto_import *im, int rv, const char *file, uint64_t line,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Token of name of kind, interned (as apply_intern would) when new. */
int imp_intern(struct sto_import *im, int kind, const char *name, size_t len,
               uint32_t *tok);
/* Calls the progress callback when a second has passed; LORA_ECLOSED when
 * the import was cancelled. */
int imp_tick(struct sto_import *im);
void imp_phase(struct sto_import *im, const char *phase, const char *file);

/* import_ids.c: s is NULL for integer ids (key is the id), else the id's
 * bytes (key is imp_ids_hash of them). */
uint64_t imp_ids_hash(const char *s, size_t n);
/* 0 and *node, or LORA_ENOTFOUND. */
int imp_ids_find(const struct imp_group *g, uint64_t key, const char *s,
                 size_t n, uint64_t *node);
/* 0, LORA_EEXIST (already there), LORA_ELIMIT or LORA_ENOMEM. */
int imp_ids_add(struct imp_group *g, uint64_t key, const char *s, size_t n,
                uint64_t node);
void imp_ids_free(struct imp_group *g);

/* import_write.c: the SST files, the final column families, ingestion. */
struct imp_pipe;
/* Starts the writer thread (without one, puts happen inline). */
int imp_pipe_start(struct sto_import *im);
/* Waits for every put handed over; the writer's first error. */
int imp_pipe_stop(struct sto_import *im);
int imp_sst_put(struct sto_import *im, int cf, const void *k, size_t klen,
                const void *v, size_t vlen);
/* Adjacency, label and property index, meta; then ingests every file. */
int imp_finish(struct sto_import *im);
void imp_sst_free(struct sto_import *im);
/* Checks the target, creates the temp directory and opens the new store
 * in it. */
int imp_prepare(struct sto_import *im, const char *dir);
/* Renames the closed store into place (see storage.h). */
int imp_publish(struct sto_import *im);

#endif /* LORA_STO_IMPORT_INT_H */
