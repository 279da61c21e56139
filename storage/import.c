/* import.c - the bulk import: builds a new state store from CSV files.
 *
 * The result must be the store sto_apply would have built from one batch
 * holding, in order, a CreateNode for every row of the node files (labels
 * of the --nodes option, then of :LABEL fields; properties in column
 * order, empty fields left out), a CreateEdge for every row of the
 * relationship files, then a CreateIndex for every --index. So the import
 * follows apply step by step where it matters for the bytes:
 *
 *  - node ids are 0, 1, 2, ... in row order, edge ids likewise;
 *  - tokens are interned in the order apply meets names (a row's labels,
 *    then its property keys; an edge's type, then its keys; an index's
 *    label and key last), so token numbers match too;
 *  - records are encoded by sto_rec_encode, values packed by protobuf-c;
 *  - the adjacency entries of a node come in edge-id order, 256 a chunk,
 *    and an edge record names the chunk of each entry (apply appends to
 *    the last chunk);
 *  - counts, next ids and the applied index are written as apply's final
 *    write would.
 *
 * Rows are read once. Node records, vectors and edge records stream
 * straight into their SST files (their keys grow with the ids); labels,
 * property-index keys, edge endpoints and degrees are kept in memory for
 * the column families written at the end (import_write.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "importInt.h"
#include "sto_testing.h"

/* ---- options and sources ---- */

void sto_import_options_init(struct sto_import_options *o)
{
	memset(o, 0, sizeof(*o));
	o->delimiter = ',';
	o->array_delimiter = ';';
	o->id_type = STO_IMPORT_ID_STRING;
	o->id_property = "id";
}

int sto_import_new(struct sto_import **out)
{
	struct sto_import *im = lora_calloc(1, sizeof(*im));
	if (!im)
		return LORA_ENOMEM;
	sto_import_options_init(&im->o);
	*out = im;
	return 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lora_free(v[i]);
	lora_free(v);
}

/* Splits s at sep into owned copies; empty parts are LORA_EINVAL. */
static int split(const char *s, char sep, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cnt = 1;
	for (const char *p = s; *p; p++)
		cnt += *p == sep;
	char **v = lora_calloc(cnt, sizeof(*v));
	if (!v)
		return LORA_ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		const char *e = strchr(s, sep);
		size_t len = e ? (size_t)(e - s) : strlen(s);
		v[i] = len ? lora_strndup(s, len) : NULL;
		if (!v[i]) {
			strv_free(v, cnt);
			return len ? LORA_ENOMEM : LORA_EINVAL;
		}
		s = e ? e + 1 : s + len;
	}
	*out = v;
	*n = cnt;
	return 0;
}

static int add_source(struct sto_import *im, int rel, const char *files,
                      const char *names, char *errmsg)
{
	const char *what = rel ? "relationships" : "nodes";
	if (!files || !files[0])
		return lora_errf(LORA_EINVAL, errmsg, "--%s: no file", what);
	struct imp_src *v =
	    lora_realloc(im->src, (im->nsrc + 1) * sizeof(*im->src));
	if (!v)
		return LORA_ENOMEM;
	im->src = v;
	struct imp_src *s = &im->src[im->nsrc];
	memset(s, 0, sizeof(*s));
	s->rel = rel;
	int rv = split(files, ',', &s->paths, &s->npaths);
	if (rv == LORA_EINVAL)
		return lora_errf(rv, errmsg, "--%s %s: empty file name", what,
		                 files);
	if (!rv && im->nfiles + s->npaths > STO_IMPORT_FILES_MAX)
		rv = lora_errf(LORA_ELIMIT, errmsg, "more than %d input files",
		               STO_IMPORT_FILES_MAX);
	if (!rv && names && names[0]) {
		rv = split(names, rel ? '\0' : ':', &s->names, &s->nnames);
		if (rv == LORA_EINVAL)
			rv = lora_errf(rv, errmsg, "--%s=%s: empty label", what,
			               names);
	}
	if (!rv && s->nnames) {
		s->toks = lora_malloc(s->nnames * sizeof(*s->toks));
		rv = s->toks ? 0 : LORA_ENOMEM;
		for (size_t i = 0; !rv && i < s->nnames; i++)
			s->toks[i] = -1;
	}
	im->nfiles += s->npaths;
	im->nsrc++; /* freed with the import, even when incomplete */
	return rv;
}

int sto_import_add_nodes(struct sto_import *im, const char *files,
                         const char *labels, char *errmsg)
{
	return add_source(im, 0, files, labels, errmsg);
}

int sto_import_add_relationships(struct sto_import *im, const char *files,
                                 const char *type, char *errmsg)
{
	return add_source(im, 1, files, type, errmsg);
}

int sto_import_add_index(struct sto_import *im, const char *spec, char *errmsg)
{
	const char *open = strchr(spec, '('), *close = strrchr(spec, ')');
	if (!open || !close || close < open || close[1] || open == spec ||
	    close == open + 1)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "--index %s: expected Label(property)", spec);
	if (im->nidx >= STO_IMPORT_INDEXES_MAX)
		return lora_errf(LORA_ELIMIT, errmsg, "more than %d --index",
		                 STO_IMPORT_INDEXES_MAX);
	struct imp_index x = {0};
	x.label = lora_strndup(spec, (size_t)(open - spec));
	x.key = lora_strndup(open + 1, (size_t)(close - open - 1));
	struct lora_buf name = {0};
	int rv = x.label && x.key
	             ? lora_buf_printf(&name, "index_%s_%s", x.label, x.key)
	             : LORA_ENOMEM;
	x.name = lora_buf_take(&name);
	for (size_t i = 0; !rv && i < im->nidx; i++)
		if (!strcmp(im->idx[i].name, x.name))
			rv = lora_errf(LORA_EEXIST, errmsg,
			               "--index %s given twice", spec);
	struct imp_index *v =
	    rv ? NULL : lora_realloc(im->idx, (im->nidx + 1) * sizeof(*v));
	if (!rv && !v)
		rv = LORA_ENOMEM;
	if (rv) {
		lora_free(x.label);
		lora_free(x.key);
		lora_free(x.name);
		return rv;
	}
	x.label_tok = x.key_tok = -1;
	im->idx = v;
	im->idx[im->nidx++] = x;
	return 0;
}

/* ---- errors, tokens, progress ---- */

int imp_fail(struct sto_import *im, int rv, const char *file, uint64_t line,
             const char *fmt, ...)
{
	char msg[LORA_ERRMSG_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (file && line)
		return lora_errf(rv, im->errmsg, "%s:%llu: %s", file,
		                 (unsigned long long)line, msg);
	if (file)
		return lora_errf(rv, im->errmsg, "%s: %s", file, msg);
	return lora_errf(rv, im->errmsg, "%s", msg);
}

int imp_intern(struct sto_import *im, int kind, const char *name, size_t len,
               uint32_t *tok)
{
	struct sto_tokens *t = &im->tok[kind];
	int64_t f = sto_tokens_lookup(t, name, len);
	if (f >= 0) {
		*tok = (uint32_t)f;
		return 0;
	}
	if (len == 0)
		return LORA_EINVAL;
	if (len > STO_NAME_BYTES_MAX)
		return LORA_ELIMIT;
	int rv = sto_tok_reserve(t, 1);
	char *copy = rv ? NULL : lora_strndup(name, len);
	if (!copy)
		return rv ? rv : LORA_ENOMEM;
	*tok = t->n;
	sto_tok_add(t, copy, (uint32_t)len);
	return 0;
}

void imp_phase(struct sto_import *im, const char *phase, const char *file)
{
	im->phase = phase;
	im->file = file;
	im->rows = 0;
	im->phase_ns = lora_now_ns();
}

int imp_tick(struct sto_import *im)
{
	if (im->o.cancel && *im->o.cancel)
		return imp_fail(im, LORA_ECLOSED, NULL, 0, "import cancelled");
	uint64_t now = lora_now_ns();
	if (!im->o.progress || now - im->report_ns < 1000000000u)
		return 0;
	im->report_ns = now;
	double ph = (double)(now - im->phase_ns) / 1e9;
	struct sto_import_progress p = {im->phase, im->file, im->rows,
	                                ph > 0 ? (double)im->rows / ph : 0,
	                                (double)(now - im->t0_ns) / 1e9};
	im->o.progress(im->o.progress_arg, &p);
	return 0;
}

/* ---- headers ---- */

static int group_of(struct sto_import *im, const char *name, size_t len,
                    uint32_t *g)
{
	for (size_t i = 0; i < im->ngrp; i++)
		if (strlen(im->grp[i].name) == len &&
		    !memcmp(im->grp[i].name, name, len)) {
			*g = (uint32_t)i;
			return 0;
		}
	if (im->ngrp >= STO_IMPORT_GROUPS_MAX)
		return LORA_ELIMIT;
	struct imp_group *v =
	    lora_realloc(im->grp, (im->ngrp + 1) * sizeof(*v));
	if (!v)
		return LORA_ENOMEM;
	im->grp = v;
	memset(&v[im->ngrp], 0, sizeof(*v));
	v[im->ngrp].name = lora_strndup(name, len);
	if (!v[im->ngrp].name)
		return LORA_ENOMEM;
	*g = (uint32_t)im->ngrp++;
	return 0;
}

static int word_is(const char *p, size_t len, const char *w)
{
	return strlen(w) == len && !strncasecmp(p, w, len);
}

/* The type after the last ':' of a header field; *kind / c->type /
 * c->dim / c->group set. LORA_EINVAL for an unknown type. */
static int col_type(struct sto_import *im, const char *t, size_t len,
                    struct imp_col *c)
{
	static const struct {
		const char *w;
		int kind, type;
	} words[] = {
	    {"string", IMP_COL_PROP, IMP_STRING},
	    {"int", IMP_COL_PROP, IMP_INT},
	    {"long", IMP_COL_PROP, IMP_INT},
	    {"integer", IMP_COL_PROP, IMP_INT},
	    {"short", IMP_COL_PROP, IMP_INT},
	    {"byte", IMP_COL_PROP, IMP_INT},
	    {"float", IMP_COL_PROP, IMP_FLOAT},
	    {"double", IMP_COL_PROP, IMP_FLOAT},
	    {"boolean", IMP_COL_PROP, IMP_BOOL},
	    {"bool", IMP_COL_PROP, IMP_BOOL},
	    {"LABEL", IMP_COL_LABEL, 0},
	    {"TYPE", IMP_COL_TYPE, 0},
	    {"IGNORE", IMP_COL_IGNORE, 0},
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (word_is(t, len, words[i].w)) {
			c->kind = words[i].kind;
			c->type = words[i].type;
			return 0;
		}
	const char *par = memchr(t, '(', len);
	size_t wl = par ? (size_t)(par - t) : len, gl = 0;
	const char *g = par ? par + 1 : "";
	if (par && (t[len - 1] != ')' || (gl = (size_t)(t + len - 1 - g)) == 0))
		return LORA_EINVAL;
	if (word_is(t, wl, "vector")) {
		char *end;
		unsigned long d = par ? strtoul(g, &end, 10) : 0;
		if (!par || end != g + gl || d < 1 ||
		    d > STO_VECTOR_DIMENSIONS_MAX)
			return LORA_EINVAL;
		c->kind = IMP_COL_PROP;
		c->type = IMP_VECTOR;
		c->dim = (uint32_t)d;
		return 0;
	}
	c->kind = word_is(t, wl, "ID")         ? IMP_COL_ID
	          : word_is(t, wl, "START_ID") ? IMP_COL_START
	          : word_is(t, wl, "END_ID")   ? IMP_COL_END
	                                       : -1;
	if (c->kind < 0)
		return LORA_EINVAL;
	int rv = group_of(im, g, gl, &c->group);
	return rv == LORA_ELIMIT ? LORA_EINVAL : rv;
}

/* One header field "name[:type]" into c. */
static int header_col(struct sto_import *im, const struct sto_csv_field *f,
                      struct imp_col *c, const char *file, size_t i)
{
	const char *colon = NULL;
	for (size_t k = 0; k < f->len; k++)
		if (f->p[k] == ':')
			colon = f->p + k;
	size_t nlen = colon ? (size_t)(colon - f->p) : f->len;
	c->kind = IMP_COL_PROP;
	c->type = IMP_STRING;
	c->key = -1;
	int rv = colon ? col_type(im, colon + 1, f->len - nlen - 1, c) : 0;
	if (rv == LORA_EINVAL)
		return imp_fail(im, rv, file, 1,
		                "column %zu `%.*s`: unknown type `%.*s`", i + 1,
		                (int)f->len, f->p, (int)(f->len - nlen - 1),
		                colon + 1);
	if (rv)
		return rv;
	if (!sto_csv_text_ok(f->p, nlen) || nlen > STO_NAME_BYTES_MAX)
		return imp_fail(im, LORA_EINVAL, file, 1,
		                "column %zu: name is not valid UTF-8 or too "
		                "long",
		                i + 1);
	if (c->kind == IMP_COL_ID)
		c->type = im->o.id_type == STO_IMPORT_ID_INTEGER ? IMP_INT
		                                                 : IMP_STRING;
	if (c->kind == IMP_COL_PROP && nlen == 0)
		return imp_fail(im, LORA_EINVAL, file, 1,
		                "column %zu has no name", i + 1);
	const char *name = nlen ? f->p : NULL;
	if (c->kind == IMP_COL_ID && !nlen && im->o.id_property &&
	    im->o.id_property[0]) {
		name = im->o.id_property;
		nlen = strlen(name);
	}
	if (name && (c->kind == IMP_COL_PROP || c->kind == IMP_COL_ID) &&
	    !(c->name = lora_strndup(name, nlen)))
		return LORA_ENOMEM;
	return 0;
}

static int count_kind(const struct imp_src *s, int kind)
{
	int n = 0;
	for (size_t i = 0; i < s->ncols; i++)
		n += s->cols[i].kind == kind;
	return n;
}

/* Which columns a file may have, and no property twice. */
static int header_check(struct sto_import *im, struct imp_src *s,
                        const char *file)
{
	for (size_t i = 0; i < s->ncols; i++) {
		int k = s->cols[i].kind;
		int bad = s->rel ? k == IMP_COL_ID || k == IMP_COL_LABEL
		                 : k == IMP_COL_START || k == IMP_COL_END ||
		                       k == IMP_COL_TYPE;
		if (bad)
			return imp_fail(im, LORA_EINVAL, file, 1,
			                "column %zu: %s columns do not belong "
			                "in a %s file",
			                i + 1,
			                k == IMP_COL_ID      ? ":ID"
			                : k == IMP_COL_LABEL ? ":LABEL"
			                : k == IMP_COL_TYPE  ? ":TYPE"
			                : k == IMP_COL_START ? ":START_ID"
			                                     : ":END_ID",
			                s->rel ? "relationship" : "node");
		for (size_t j = 0; s->cols[i].name && j < i; j++)
			if (s->cols[j].name &&
			    !strcmp(s->cols[i].name, s->cols[j].name))
				return imp_fail(im, LORA_EINVAL, file, 1,
				                "property `%s` in columns %zu "
				                "and %zu",
				                s->cols[i].name, j + 1, i + 1);
	}
	if (!s->rel && count_kind(s, IMP_COL_ID) > 1)
		return imp_fail(im, LORA_EINVAL, file, 1, "more than one :ID");
	if (s->rel && (count_kind(s, IMP_COL_START) != 1 ||
	               count_kind(s, IMP_COL_END) != 1 ||
	               count_kind(s, IMP_COL_TYPE) > 1))
		return imp_fail(im, LORA_EINVAL, file, 1,
		                "a relationship file needs one :START_ID, one "
		                ":END_ID and at most one :TYPE column");
	return 0;
}

struct imp_in;
static int in_next(struct sto_import *im, struct imp_in *in, struct sto_csv *c,
                   int *done);

static int header_parse(struct sto_import *im, struct imp_src *s,
                        struct sto_csv *c, struct imp_in *in)
{
	const char *file = im->file;
	int done, rv = in_next(im, in, c, &done);
	if (rv)
		return rv;
	if (done)
		return imp_fail(im, LORA_EINVAL, file, 0,
		                "empty file (no header line)");
	s->cols = lora_calloc(c->nf, sizeof(*s->cols));
	if (!s->cols)
		return LORA_ENOMEM;
	s->ncols = c->nf;
	for (size_t i = 0; i < c->nf; i++)
		if ((rv = header_col(im, &c->f[i], &s->cols[i], file, i)))
			return rv;
	return header_check(im, s, file);
}

/* ---- values ---- */

/* Converts field f of column col into v (scratch in im); errors name the
 * column. *absent = 1 for an empty field (no property). */
static int field_value(struct sto_import *im, const struct imp_col *col,
                       size_t i, const struct sto_csv_field *f, Lora__Value *v,
                       int *absent)
{
	char why[LORA_ERRMSG_BYTES];
	int rv = 0;
	*absent = f->len == 0 && !(f->quoted && col->type == IMP_STRING);
	if (*absent)
		return 0;
	lora__value__init(v);
	switch (col->type) {
	case IMP_STRING:
		if (!sto_csv_text_ok(f->p, f->len)) {
			rv = lora_errf(LORA_EINVAL, why,
			               "not valid UTF-8 (or holds a NUL byte)");
			break;
		}
		lora_buf_reset(&im->str);
		if (lora_buf_append(&im->str, f->p, f->len))
			return LORA_ENOMEM;
		v->kind_case = LORA__VALUE__KIND_STRING_VALUE;
		v->string_value = im->str.data;
		break;
	case IMP_INT:
		v->kind_case = LORA__VALUE__KIND_INT_VALUE;
		rv = sto_csv_int(f->p, f->len, &v->int_value, why);
		break;
	case IMP_FLOAT:
		v->kind_case = LORA__VALUE__KIND_FLOAT_VALUE;
		rv = sto_csv_double(f->p, f->len, &v->float_value, why);
		break;
	case IMP_BOOL: {
		int b = 0;
		v->kind_case = LORA__VALUE__KIND_BOOL_VALUE;
		rv = sto_csv_bool(f->p, f->len, &b, why);
		v->bool_value = b;
		break;
	}
	default:
		LORA_UNREACHABLE();
	}
	if (rv)
		return imp_fail(im, rv, NULL, 0, "column %zu `%s`: %s", i + 1,
		                col->name ? col->name : "", why);
	return 0;
}

/* ---- one row ---- */

static int add_label(struct sto_import *im, const char *p, size_t len)
{
	uint32_t t;
	if (!sto_csv_text_ok(p, len))
		return imp_fail(im, LORA_EINVAL, NULL, 0,
		                "label is not valid UTF-8");
	int rv = imp_intern(im, STO_TOK_LABEL, p, len, &t);
	if (rv == LORA_ELIMIT)
		return imp_fail(im, rv, NULL, 0, "label too long");
	if (rv)
		return rv;
	for (uint32_t i = 0; i < im->nlabels; i++)
		if (im->labels[i] == t)
			return 0;
	if (im->nlabels == STO_IMPORT_LABELS_MAX)
		return imp_fail(im, LORA_ELIMIT, NULL, 0, "more than %d labels",
		                STO_IMPORT_LABELS_MAX);
	im->labels[im->nlabels++] = t;
	return sto_rec_add_label(&im->rec, t);
}

/* The labels of a node row: the option's, then the :LABEL fields'. */
static int row_labels(struct sto_import *im, struct imp_src *s,
                      const struct sto_csv *c)
{
	int rv = 0;
	im->nlabels = 0;
	for (size_t i = 0; !rv && i < s->nnames; i++)
		rv = add_label(im, s->names[i], strlen(s->names[i]));
	for (size_t i = 0; !rv && i < s->ncols; i++) {
		if (s->cols[i].kind != IMP_COL_LABEL)
			continue;
		const char *p = c->f[i].p, *e = p + c->f[i].len;
		while (!rv && p < e) {
			const char *q =
			    memchr(p, im->o.array_delimiter, (size_t)(e - p));
			q = q ? q : e;
			if (q > p)
				rv = add_label(im, p, (size_t)(q - p));
			p = q + 1;
		}
	}
	return rv;
}

/* Index keys of (label of the row, key) = v for node `id`. */
static int row_index(struct sto_import *im, uint32_t key, const Lora__Value *v,
                     uint64_t id)
{
	for (size_t j = 0; j < im->nidx; j++) {
		struct imp_index *x = &im->idx[j];
		if (x->key_tok < 0)
			x->key_tok = sto_tokens_lookup(&im->tok[STO_TOK_KEY],
			                               x->key, strlen(x->key));
		if (x->label_tok < 0)
			x->label_tok =
			    sto_tokens_lookup(&im->tok[STO_TOK_LABEL], x->label,
			                      strlen(x->label));
		if (x->key_tok != (int64_t)key || x->label_tok < 0 ||
		    !sto_rec_has_label(&im->rec, (uint32_t)x->label_tok))
			continue;
		int rv =
		    sto_key_prop_prefix(&im->kbuf, (uint32_t)x->label_tok, key);
		if (!rv)
			rv = sto_enc_value(&im->kbuf, v);
		if (rv == LORA_EINVAL)
			continue; /* not indexable */
		uint8_t len[4], b[8];
		lora_put_be32(len, (uint32_t)im->kbuf.len + 8);
		lora_put_be64(b, id);
		if (!rv)
			rv = lora_buf_append(&im->pkeys, len, 4);
		if (!rv)
			rv = lora_buf_append(&im->pkeys, im->kbuf.data,
			                     im->kbuf.len);
		if (!rv)
			rv = lora_buf_append(&im->pkeys, b, 8);
		if (rv)
			return rv == LORA_ELIMIT
			           ? imp_fail(im, rv, NULL, 0,
			                      "property index keys over %zu "
			                      "bytes",
			                      (size_t)LORA_BUF_BYTES_MAX)
			           : rv;
		im->npkeys++;
	}
	return 0;
}

/* A vector column: packed into im->vbytes for the vectors CF. */
static int row_vector(struct sto_import *im, const struct imp_col *col,
                      size_t i, const struct sto_csv_field *f, uint32_t key)
{
	char why[LORA_ERRMSG_BYTES];
	if (col->dim > im->coords_cap) {
		float *c = lora_realloc(im->coords, col->dim * sizeof(*c));
		if (!c)
			return LORA_ENOMEM;
		im->coords = c;
		im->coords_cap = col->dim;
	}
	int rv = sto_csv_vector(f->p, f->len, im->o.array_delimiter, im->coords,
	                        col->dim, why);
	if (rv)
		return imp_fail(im, rv, NULL, 0, "column %zu `%s`: %s", i + 1,
		                col->name, why);
	Lora__Vector vec = LORA__VECTOR__INIT;
	vec.coord_type = LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT32;
	vec.dimension = col->dim;
	vec.n_f32 = col->dim;
	vec.f32 = im->coords;
	size_t n = lora__vector__get_packed_size(&vec);
	if (im->nvecs == im->vecs_cap) {
		size_t nc = im->vecs_cap ? im->vecs_cap * 2 : 4;
		struct imp_vec *v = lora_realloc(im->vecs, nc * sizeof(*v));
		if (!v)
			return LORA_ENOMEM;
		im->vecs = v;
		im->vecs_cap = nc;
	}
	if (lora_buf_reserve(&im->vbytes, n))
		return LORA_ENOMEM;
	lora__vector__pack(&vec, (uint8_t *)im->vbytes.data + im->vbytes.len);
	im->vecs[im->nvecs++] = (struct imp_vec){key, im->vbytes.len, n};
	im->vbytes.len += n;
	im->rec.nvec++;
	return 0;
}

/* The properties of a row, in column order, into im->rec / im->vecs. */
static int row_props(struct sto_import *im, struct imp_src *s,
                     const struct sto_csv *c, uint64_t id)
{
	im->nvecs = 0;
	lora_buf_reset(&im->vbytes);
	for (size_t i = 0; i < s->ncols; i++) {
		struct imp_col *col = &s->cols[i];
		if ((col->kind != IMP_COL_PROP && col->kind != IMP_COL_ID) ||
		    !col->name)
			continue;
		Lora__Value v;
		int absent = 0, rv = 0;
		if (col->type != IMP_VECTOR)
			rv = field_value(im, col, i, &c->f[i], &v, &absent);
		else
			absent = c->f[i].len == 0;
		if (rv)
			return rv;
		if (absent)
			continue;
		if (col->key < 0) {
			uint32_t t;
			rv = imp_intern(im, STO_TOK_KEY, col->name,
			                strlen(col->name), &t);
			if (rv == LORA_ELIMIT)
				return imp_fail(im, rv, NULL, 0,
				                "too many property keys");
			if (rv)
				return rv;
			col->key = t;
		}
		uint32_t key = (uint32_t)col->key;
		if (col->type == IMP_VECTOR) {
			rv = row_vector(im, col, i, &c->f[i], key);
		} else {
			size_t n = lora__value__get_packed_size(&v);
			lora_buf_reset(&im->val);
			if (lora_buf_reserve(&im->val, n))
				return LORA_ENOMEM;
			lora__value__pack(&v, (uint8_t *)im->val.data);
			rv = sto_rec_set_prop(&im->rec, key, im->val.data, n);
			if (rv == LORA_ELIMIT)
				return imp_fail(im, rv, NULL, 0,
				                "column %zu `%s`: value too "
				                "large",
				                i + 1, col->name);
			if (!rv && !s->rel && im->nidx)
				rv = row_index(im, key, &v, id);
		}
		if (rv)
			return rv;
	}
	return 0;
}

/* Writes the row's vectors (ascending key, as the CF orders them). */
static int row_vectors_put(struct sto_import *im, int entity, uint64_t id)
{
	for (size_t i = 1; i < im->nvecs; i++)
		for (size_t j = i;
		     j > 0 && im->vecs[j - 1].key > im->vecs[j].key; j--) {
			struct imp_vec t = im->vecs[j];
			im->vecs[j] = im->vecs[j - 1];
			im->vecs[j - 1] = t;
		}
	for (size_t i = 0; i < im->nvecs; i++) {
		uint8_t k[STO_VEC_KEY_BYTES];
		sto_key_vec(k, (uint32_t)entity, id, im->vecs[i].key);
		int rv = imp_sst_put(im, STO_CF_VECTORS, k, sizeof(k),
		                     im->vbytes.data + im->vecs[i].off,
		                     im->vecs[i].len);
		if (rv)
			return rv;
	}
	return 0;
}

/* The :ID key of a field: an integer (s = NULL) or a string's hash. */
static int id_key(struct sto_import *im, const struct sto_csv_field *f,
                  const char *what, size_t i, uint64_t *key, const char **s)
{
	char why[LORA_ERRMSG_BYTES];
	if (f->len == 0)
		return imp_fail(im, LORA_EINVAL, NULL, 0,
		                "column %zu: empty %s", i + 1, what);
	if (im->o.id_type != STO_IMPORT_ID_INTEGER) {
		*s = f->p;
		*key = imp_ids_hash(f->p, f->len);
		return 0;
	}
	int64_t v;
	int rv = sto_csv_int(f->p, f->len, &v, why);
	if (rv)
		return imp_fail(im, rv, NULL, 0, "column %zu (%s): %s", i + 1,
		                what, why);
	*s = NULL;
	*key = (uint64_t)v;
	return 0;
}

static int id_insert(struct sto_import *im, const struct imp_col *col, size_t i,
                     const struct sto_csv_field *f, uint64_t node)
{
	uint64_t key;
	const char *s;
	int rv = id_key(im, f, ":ID", i, &key, &s);
	if (rv)
		return rv;
	struct imp_group *g = &im->grp[col->group];
	rv = imp_ids_add(g, key, s, f->len, node);
	if (rv == LORA_EEXIST)
		return imp_fail(im, LORA_EINVAL, NULL, 0,
		                "duplicate :ID \"%.*s\"%s%s",
		                (int)(f->len > 40 ? 40 : f->len), f->p,
		                g->name[0] ? " in group " : "", g->name);
	if (rv == LORA_ELIMIT)
		return imp_fail(im, rv, NULL, 0,
		                "more than %llu :ID values in one group",
		                (unsigned long long)STO_IMPORT_IDS_MAX);
	return rv;
}

static int node_row(struct sto_import *im, struct imp_src *s,
                    const struct sto_csv *c)
{
	uint64_t id = im->nodes;
	struct sto_rec *r = &im->rec;
	r->nlabels = r->nprops = r->nvec = 0;
	lora_buf_reset(&r->data);
	int rv = row_labels(im, s, c);
	if (!rv)
		rv = row_props(im, s, c, id);
	for (size_t i = 0; !rv && i < s->ncols; i++)
		if (s->cols[i].kind == IMP_COL_ID)
			rv = id_insert(im, &s->cols[i], i, &c->f[i], id);
	uint8_t k[8];
	lora_put_be64(k, id);
	if (!rv)
		rv = sto_rec_encode(r, 0, &im->val);
	if (rv == LORA_ELIMIT)
		return imp_fail(im, rv, NULL, 0, "node record over %u bytes",
		                STO_RECORD_BYTES_MAX);
	if (!rv)
		rv = imp_sst_put(im, STO_CF_NODES, k, 8, im->val.data,
		                 im->val.len);
	if (!rv)
		rv = row_vectors_put(im, LORA__ENTITY_KIND__ENTITY_NODE, id);
	for (uint32_t i = 0; !rv && i < im->nlabels; i++) {
		uint32_t t = im->labels[i];
		if (t >= im->nlnodes) {
			size_t nn = im->nlnodes ? im->nlnodes : 8;
			while (nn <= t)
				nn *= 2;
			struct imp_u64v *v =
			    lora_realloc(im->lnodes, nn * sizeof(*v));
			if (!v)
				return LORA_ENOMEM;
			memset(v + im->nlnodes, 0,
			       (nn - im->nlnodes) * sizeof(*v));
			im->lnodes = v;
			im->nlnodes = nn;
		}
		struct imp_u64v *l = &im->lnodes[t];
		if (l->n == l->cap) {
			size_t nc = l->cap ? l->cap * 2 : 256;
			uint64_t *v = lora_realloc(l->v, nc * sizeof(*v));
			if (!v)
				return LORA_ENOMEM;
			l->v = v;
			l->cap = nc;
		}
		l->v[l->n++] = id;
	}
	if (!rv)
		im->nodes++;
	return rv;
}

/* ---- relationship rows ---- */

static int endpoint(struct sto_import *im, const struct imp_col *col, size_t i,
                    const struct sto_csv_field *f, uint64_t *node)
{
	const char *s,
	    *what = col->kind == IMP_COL_START ? ":START_ID" : ":END_ID";
	uint64_t key;
	int rv = id_key(im, f, what, i, &key, &s);
	if (rv)
		return rv;
	struct imp_group *g = &im->grp[col->group];
	if (imp_ids_find(g, key, s, f->len, node) == 0)
		return 0;
	return imp_fail(im, LORA_EINVAL, NULL, 0,
	                "unknown %s \"%.*s\"%s%s (no node has this :ID)", what,
	                (int)(f->len > 40 ? 40 : f->len), f->p,
	                g->name[0] ? " in group " : "", g->name);
}

static int edge_type(struct sto_import *im, struct imp_src *s,
                     const struct sto_csv *c, uint32_t *type)
{
	for (size_t i = 0; i < s->ncols; i++) {
		const struct sto_csv_field *f = &c->f[i];
		if (s->cols[i].kind != IMP_COL_TYPE || !f->len)
			continue;
		if (!sto_csv_text_ok(f->p, f->len))
			return imp_fail(im, LORA_EINVAL, NULL, 0,
			                "type is not valid UTF-8");
		int rv = imp_intern(im, STO_TOK_TYPE, f->p, f->len, type);
		return rv == LORA_ELIMIT
		           ? imp_fail(im, rv, NULL, 0, "type too long")
		           : rv;
	}
	if (!s->nnames)
		return imp_fail(im, LORA_EINVAL, NULL, 0,
		                "no relationship type (an empty :TYPE and no "
		                "--relationships=TYPE)");
	if (s->toks[0] < 0) {
		uint32_t t;
		int rv = imp_intern(im, STO_TOK_TYPE, s->names[0],
		                    strlen(s->names[0]), &t);
		if (rv)
			return imp_fail(im, rv, NULL, 0, "bad type");
		s->toks[0] = t;
	}
	*type = (uint32_t)s->toks[0];
	return 0;
}

static int edge_arrays_grow(struct sto_import *im)
{
	if (im->edges < im->ecap)
		return 0;
	size_t nc = im->ecap ? im->ecap * 2 : 65536;
	uint64_t *f = lora_realloc(im->efrom, nc * sizeof(*f));
	if (f)
		im->efrom = f;
	uint64_t *t = f ? lora_realloc(im->eto, nc * sizeof(*t)) : NULL;
	if (t)
		im->eto = t;
	uint32_t *y = t ? lora_realloc(im->etype, nc * sizeof(*y)) : NULL;
	if (!y)
		return LORA_ENOMEM;
	im->etype = y;
	im->ecap = nc;
	return 0;
}

static int count_type(struct sto_import *im, uint32_t t)
{
	if (t >= im->ntcount) {
		size_t nn = im->ntcount ? im->ntcount : 8;
		while (nn <= t)
			nn *= 2;
		uint64_t *v = lora_realloc(im->tcount, nn * sizeof(*v));
		if (!v)
			return LORA_ENOMEM;
		memset(v + im->ntcount, 0, (nn - im->ntcount) * sizeof(*v));
		im->tcount = v;
		im->ntcount = nn;
	}
	im->tcount[t]++;
	return 0;
}

static int edge_row(struct sto_import *im, struct imp_src *s,
                    const struct sto_csv *c)
{
	uint64_t id = im->edges, ends[2] = {0, 0};
	struct sto_rec *r = &im->rec;
	r->nlabels = r->nprops = r->nvec = 0;
	lora_buf_reset(&r->data);
	int rv = edge_arrays_grow(im);
	for (size_t i = 0; !rv && i < s->ncols; i++)
		if (s->cols[i].kind == IMP_COL_START ||
		    s->cols[i].kind == IMP_COL_END)
			rv = endpoint(im, &s->cols[i], i, &c->f[i],
			              &ends[s->cols[i].kind == IMP_COL_END]);
	if (!rv)
		rv = edge_type(im, s, c, &r->type);
	if (!rv)
		rv = row_props(im, s, c, id);
	if (rv)
		return rv;
	r->from = ends[0];
	r->to = ends[1];
	if (im->deg[0][r->from] == UINT32_MAX ||
	    im->deg[1][r->to] == UINT32_MAX)
		return imp_fail(im, LORA_ELIMIT, NULL, 0,
		                "a node with more than %u relationships",
		                UINT32_MAX - 1);
	r->chunk[0] = im->deg[0][r->from]++ / STO_ADJ_CHUNK_ENTRIES_MAX;
	r->chunk[1] = im->deg[1][r->to]++ / STO_ADJ_CHUNK_ENTRIES_MAX;
	rv = sto_rec_encode(r, 1, &im->val);
	if (rv == LORA_ELIMIT)
		return imp_fail(im, rv, NULL, 0,
		                "relationship record over %u bytes",
		                STO_RECORD_BYTES_MAX);
	uint8_t k[9];
	sto_key_edge(k, id);
	if (!rv)
		rv = imp_sst_put(im, STO_CF_EDGES, k, 9, im->val.data,
		                 im->val.len);
	if (!rv)
		rv = row_vectors_put(im, LORA__ENTITY_KIND__ENTITY_EDGE, id);
	if (!rv)
		rv = count_type(im, r->type);
	if (rv)
		return rv;
	im->efrom[id] = r->from;
	im->eto[id] = r->to;
	im->etype[id] = r->type;
	im->edges++;
	return 0;
}

/* ---- files ---- */

/*
 * Opens an input, which must be a regular file: the import checks every
 * input before it starts and reads each to the size it had when opened,
 * so a pipe (such as <(zcat f.gz)) or a FIFO would lose its rows
 * (lora_open_regular: a FIFO without a writer is refused, not waited on).
 * On success *fd is open and *st filled.
 */
static int open_input(struct sto_import *im, const char *path, int *fd,
                      struct stat *st)
{
	*fd = lora_open_regular(path, st);
	if (*fd >= 0)
		return 0;
	if (errno == EINVAL)
		return imp_fail(im, LORA_EINVAL, path, 0,
		                "not a regular file (lora-import reads regular "
		                "files only)");
	return imp_fail(im, LORA_EIO, path, 0, "cannot read: %s",
	                strerror(errno));
}

/* Every input is opened once before anything is written, so that one
 * that cannot be read fails the import at once, not after the files
 * before it were parsed. */
static int check_inputs(struct sto_import *im)
{
	for (size_t i = 0; i < im->nsrc; i++)
		for (size_t j = 0; j < im->src[i].npaths; j++) {
			int fd;
			struct stat st;
			int rv = open_input(im, im->src[i].paths[j], &fd, &st);
			if (rv)
				return rv;
			close(fd);
		}
	return 0;
}

/*
 * An input read through a window, not mapped: a file that another process
 * truncates while it is mapped kills the import with SIGBUS at the first
 * page past the new end, where read(2) returns the end early and the
 * import can say so. The window holds buf[0..len); records are parsed in
 * place, and the record cut by the window's end is moved to the front
 * before the next read (the window doubles when one record fills it).
 */
struct imp_in {
	const char *path; /* borrowed */
	int fd;
	char *buf; /* owned */
	size_t len, cap;
	uint64_t done, size; /* bytes read; the size when opened */
};

static size_t read_bytes = STO_IMPORT_READ_BYTES;
static void (*on_read)(void *, const char *, uint64_t);
static void *on_read_arg;

void sto_testing_import_read_bytes(size_t n)
{
	read_bytes = n ? n : STO_IMPORT_READ_BYTES;
}

void sto_testing_import_on_read(void (*fn)(void *, const char *, uint64_t),
                                void *arg)
{
	on_read = fn;
	on_read_arg = arg;
}

/* Makes room behind buf[keep..len), which moves to the front. */
static int in_room(struct sto_import *im, struct imp_in *in, size_t keep,
                   uint64_t line)
{
	in->len -= keep;
	memmove(in->buf, in->buf + keep, in->len);
	if (in->len < in->cap)
		return 0;
	if (in->cap >= STO_IMPORT_RECORD_BYTES_MAX)
		return imp_fail(im, LORA_ELIMIT, in->path, line,
		                "a record over %u MiB",
		                STO_IMPORT_RECORD_BYTES_MAX >> 20);
	size_t cap = in->cap * 2 < STO_IMPORT_RECORD_BYTES_MAX
	                 ? in->cap * 2
	                 : STO_IMPORT_RECORD_BYTES_MAX;
	char *b = lora_realloc(in->buf, cap);
	if (!b)
		return LORA_ENOMEM;
	in->buf = b;
	in->cap = cap;
	return 0;
}

/* Reads the window full, or to the size the file had when opened. */
static int in_read(struct sto_import *im, struct imp_in *in)
{
	uint64_t left = in->size - in->done;
	size_t want =
	    in->cap - in->len < left ? in->cap - in->len : (size_t)left;
	while (want) {
		ssize_t n = read(in->fd, in->buf + in->len, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return imp_fail(im, LORA_EIO, in->path, 0, "read: %s",
			                strerror(errno));
		if (n == 0)
			return imp_fail(
			    im, LORA_EIO, in->path, 0,
			    "the file shrank while it was read (%llu of "
			    "%llu bytes; was it changed during the import?)",
			    (unsigned long long)in->done,
			    (unsigned long long)in->size);
		in->len += (size_t)n;
		in->done += (uint64_t)n;
		im->st.bytes_read += (uint64_t)n;
		want -= (size_t)n;
	}
	if (on_read)
		on_read(on_read_arg, in->path, in->done);
	return 0;
}

static int in_open(struct sto_import *im, struct imp_in *in, const char *path)
{
	struct stat st;
	memset(in, 0, sizeof(*in));
	in->path = path;
	int rv = open_input(im, path, &in->fd, &st);
	if (rv) {
		in->fd = -1;
		return rv;
	}
	in->size = (uint64_t)st.st_size;
	in->cap = read_bytes;
	in->buf = lora_malloc(in->cap);
	if (!in->buf)
		return LORA_ENOMEM;
	posix_fadvise(in->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return in_read(im, in);
}

static void in_close(struct imp_in *in)
{
	if (in->fd >= 0)
		close(in->fd);
	lora_free(in->buf);
	in->buf = NULL;
	in->fd = -1;
}

/*
 * sto_csv_next over the window: a record that ran into the window's end
 * before the file's end is parsed again once more of the file is in.
 * Errors come back wrapped with the file and line.
 */
static int in_next(struct sto_import *im, struct imp_in *in, struct sto_csv *c,
                   int *done)
{
	for (;;) {
		const char *rec = c->p;
		uint64_t line = c->line;
		int rv = sto_csv_next(c, done, im->errmsg);
		if (!c->at_end || in->done == in->size) {
			if (rv)
				lora_errwrap(rv, im->errmsg, "%s:%llu",
				             in->path,
				             (unsigned long long)c->err_line);
			return rv;
		}
		c->line = line;
		size_t keep = (size_t)(rec - in->buf);
		if ((rv = in_room(im, in, keep, line)) ||
		    (rv = in_read(im, in)))
			return rv;
		c->p = in->buf;
		c->end = in->buf + in->len;
	}
}

/* Rows of one file (after the header when it is the first). */
static int file_rows(struct sto_import *im, struct imp_src *s,
                     struct sto_csv *c, struct imp_in *in)
{
	int done = 0, rv = 0;
	char *em = im->errmsg;
	const char *path = in->path;
	while (!rv) {
		if ((rv = in_next(im, in, c, &done)) || done)
			break;
		if (c->nf != s->ncols) {
			rv = imp_fail(im, LORA_EINVAL, path, c->rec_line,
			              "%zu fields, the header has %zu", c->nf,
			              s->ncols);
			break;
		}
		em[0] = '\0';
		rv = s->rel ? edge_row(im, s, c) : node_row(im, s, c);
		if (rv && !em[0])
			lora_errf(rv, em, "%s", lora_strerror(rv));
		if (rv)
			lora_errwrap(rv, em, "%s:%llu", path,
			             (unsigned long long)c->rec_line);
		if (!rv && ++im->rows % STO_IMPORT_PROGRESS_ROWS == 0)
			rv = imp_tick(im);
	}
	return rv;
}

static int run_file(struct sto_import *im, struct imp_src *s, size_t i)
{
	struct imp_in in;
	struct sto_csv c;
	int rv = in_open(im, &in, s->paths[i]);
	if (rv) {
		in_close(&in);
		return rv;
	}
	/* the byte order mark is whole in the window before it is looked
	 * for (the window may be smaller: the test hook's) */
	while (!rv && in.len < 3 && in.done < in.size &&
	       !(rv = in_room(im, &in, 0, 0)))
		rv = in_read(im, &in);
	if (rv) {
		in_close(&in);
		return rv;
	}
	size_t bom = in.len >= 3 && !memcmp(in.buf, "\xef\xbb\xbf", 3) ? 3 : 0;
	sto_csv_init(&c, in.buf + bom, in.len - bom, im->o.delimiter);
	imp_phase(im, s->rel ? "relationships" : "nodes", s->paths[i]);
	im->file = s->paths[i];
	if (i == 0)
		rv = header_parse(im, s, &c, &in);
	if (!rv)
		rv = file_rows(im, s, &c, &in);
	sto_csv_free(&c);
	in_close(&in);
	return rv;
}

static int run_source(struct sto_import *im, struct imp_src *s)
{
	int rv = 0;
	for (size_t i = 0; !rv && i < s->npaths; i++)
		rv = run_file(im, s, i);
	return rv;
}

/* ---- the run ---- */

static int alloc_degrees(struct sto_import *im)
{
	for (int d = 0; d < 2; d++) {
		im->deg[d] =
		    lora_calloc(im->nodes ? im->nodes : 1, sizeof(uint32_t));
		if (!im->deg[d])
			return LORA_ENOMEM;
	}
	return 0;
}

static int run_sources(struct sto_import *im)
{
	int rv = 0, any = 0;
	for (size_t i = 0; !rv && i < im->nsrc; i++)
		if (!im->src[i].rel) {
			rv = run_source(im, &im->src[i]);
			any = 1;
		}
	if (!rv && !any)
		rv = imp_fail(im, LORA_EINVAL, NULL, 0,
		              "nothing to import: give at least one --nodes "
		              "file");
	if (!rv)
		rv = alloc_degrees(im);
	for (size_t i = 0; !rv && i < im->nsrc; i++)
		if (im->src[i].rel)
			rv = run_source(im, &im->src[i]);
	return rv;
}

static int run_digest(struct sto_import *im)
{
	struct sto_store *s;
	imp_phase(im, "digest", NULL);
	int rv = sto_open(im->statedir, NULL, &s, im->errmsg);
	if (rv)
		return rv;
	rv = sto_digest(s, im->st.digest, im->errmsg);
	if (!rv && sto_applied_index(s) != STO_IMPORT_APPLIED_INDEX)
		rv = imp_fail(im, LORA_EINTERNAL, im->statedir, 0,
		              "applied index %llu after ingestion",
		              (unsigned long long)sto_applied_index(s));
	sto_close(s);
	return rv;
}

int sto_import_run(struct sto_import *im, const struct sto_import_options *opts,
                   const char *dir, struct sto_import_stats *st, char *errmsg)
{
	LORA_ASSERT(im && dir && !im->s && !im->tmp);
	if (opts)
		im->o = *opts;
	im->errmsg = im->errbuf;
	im->errbuf[0] = '\0';
	im->t0_ns = im->report_ns = lora_now_ns();
	int rv = check_inputs(im);
	if (!rv)
		rv = imp_prepare(im, dir);
	if (!rv)
		rv = imp_pipe_start(im);
	if (!rv)
		rv = run_sources(im);
	if (!rv)
		rv = imp_finish(im);
	int prv = imp_pipe_stop(im); /* after an error: waits for the writer */
	rv = rv ? rv : prv;
	imp_sst_free(im);
	sto_close(im->s);
	im->s = NULL;
	if (!rv && im->o.digest)
		rv = run_digest(im);
	if (!rv)
		rv = imp_publish(im);
	if (rv && im->tmp)
		sto_rm_rf(im->tmp);
	if (rv && !im->errbuf[0])
		lora_errf(rv, im->errbuf, "%s", lora_strerror(rv));
	im->st.nodes = im->nodes;
	im->st.relationships = im->edges;
	im->st.index_entries = im->npkeys;
	im->st.applied_index = rv ? 0 : STO_IMPORT_APPLIED_INDEX;
	im->st.seconds = (double)(lora_now_ns() - im->t0_ns) / 1e9;
	if (st)
		*st = im->st;
	if (errmsg)
		snprintf(errmsg, LORA_ERRMSG_BYTES, "%s", im->errbuf);
	return rv;
}

static void src_free(struct imp_src *s)
{
	strv_free(s->paths, s->npaths);
	strv_free(s->names, s->nnames);
	lora_free(s->toks);
	for (size_t i = 0; i < s->ncols; i++)
		lora_free(s->cols[i].name);
	lora_free(s->cols);
}

void sto_import_free(struct sto_import *im)
{
	if (!im)
		return;
	for (size_t i = 0; i < im->nsrc; i++)
		src_free(&im->src[i]);
	lora_free(im->src);
	for (size_t i = 0; i < im->nidx; i++) {
		lora_free(im->idx[i].label);
		lora_free(im->idx[i].key);
		lora_free(im->idx[i].name);
	}
	lora_free(im->idx);
	for (int k = 0; k < STO_TOK_KINDS; k++)
		sto_tok_free(&im->tok[k]);
	for (size_t i = 0; i < im->ngrp; i++) {
		lora_free(im->grp[i].name);
		imp_ids_free(&im->grp[i]);
	}
	lora_free(im->grp);
	for (size_t i = 0; i < im->nlnodes; i++)
		lora_free(im->lnodes[i].v);
	lora_free(im->lnodes);
	lora_free(im->tcount);
	lora_free(im->efrom);
	lora_free(im->eto);
	lora_free(im->etype);
	lora_free(im->deg[0]);
	lora_free(im->deg[1]);
	lora_buf_free(&im->pkeys);
	imp_sst_free(im);
	sto_close(im->s);
	if (im->env)
		rocksdb_envoptions_destroy(im->env);
	lora_free(im->target);
	lora_free(im->tmp);
	lora_free(im->statedir);
	lora_free(im->sstdir);
	sto_rec_free(&im->rec);
	lora_buf_free(&im->val);
	lora_buf_free(&im->kbuf);
	lora_buf_free(&im->str);
	lora_buf_free(&im->vbytes);
	lora_free(im->vecs);
	lora_free(im->coords);
	lora_free(im);
}
