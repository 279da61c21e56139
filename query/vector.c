/* vector.c - VECTOR values: the vector() constructor, similarity,
 * distance, norm and dimension functions, and the top-k searches of
 * db.index.vector.queryNodes and queryRelationships (the HNSW graph, or
 * the exact scan with a bounded heap). */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qint.h"

#define QRY_VECTOR_DIM_MAX 65536
#define QRY_TOPK_MAX       100000

/* Coordinate types by number (Lora__VectorCoordType), and the bits of
 * the integer ones (INTEGER64 on): a coordinate x of b bits has
 * -2^(b-1) <= x < 2^(b-1), bounds that are exact doubles. */
static const char *const coord_names[] = {"FLOAT64",   "FLOAT32",   "INTEGER64",
                                          "INTEGER32", "INTEGER16", "INTEGER8"};
static const int coord_int_bits[] = {64, 32, 16, 8};

int qry_vector_coord_type(const char *s)
{
	static const char *const alias[] = {"FLOAT", NULL,    "INT64",
	                                    "INT32", "INT16", "INT8"};
	if (!strcasecmp(s, "INTEGER") || !strcasecmp(s, "INT"))
		return 2;
	for (int i = 0; i < 6; i++)
		if (!strcasecmp(s, coord_names[i]) ||
		    (alias[i] && !strcasecmp(s, alias[i])))
			return i;
	return -1;
}

/* raises NumberOutOfRange for coordinate i, x, of type ct */
static void coord_range(struct qctx *c, int ct, uint32_t i, double x)
{
	char text[64];
	if (x == trunc(x) && fabs(x) < 0x1p63) { /* 128, not 128.0 */
		snprintf(text, sizeof text, "%lld", (long long)x);
	} else {
		struct lora_buf b = {0};
		fmt_double(x, &b);
		snprintf(text, sizeof text, "%s", b.data ? b.data : "?");
		lora_buf_free(&b);
	}
	qerr(c, LORA_EVECTOR,
	     "NumberOutOfRange: vector coordinate %u (%s) does not fit %s", i,
	     text, coord_names[ct]);
}

double vec_coord(struct qctx *c, int ct, uint32_t i, double x)
{
	if (!isfinite(x))
		qerr(c, LORA_EVECTOR,
		     "InvalidArgumentValue: vector coordinate %u is %s: "
		     "coordinates cannot be NaN or Infinity",
		     i, isnan(x) ? "NaN" : "Infinity");
	if (ct == 1) {
		/* doubles below 2^128 - 2^103 round to FLT_MAX at most
		 * (3.4028235e38, as Java and Neo4j print it, among them) */
		if (fabs(x) >= 0x1.ffffffp127)
			coord_range(c, ct, i, x);
		return (float)x;
	}
	if (ct < 2)
		return x;
	double top = vec_coord_top(ct), t = trunc(x);
	if (!(t >= -top && t < top))
		coord_range(c, ct, i, x);
	return t;
}

double vec_coord_top(int ct)
{
	return ldexp(1, coord_int_bits[ct - 2] - 1);
}

const char *vec_coord_name(int ct)
{
	return ct >= 0 && ct < 6 ? coord_names[ct] : "?";
}

enum {
	METRIC_EUCLIDEAN,
	METRIC_EUCLIDEAN_SQUARED,
	METRIC_COSINE,
	METRIC_DOT,
	METRIC_MANHATTAN,
	METRIC_HAMMING
};
static const char *const metric_names[] = {
    "EUCLIDEAN", "EUCLIDEAN_SQUARED", "COSINE", "DOT", "MANHATTAN", "HAMMING"};
#define METRICS_DISTANCE 0x3f /* every metric */
#define METRICS_NORM     (1 << METRIC_EUCLIDEAN | 1 << METRIC_MANHATTAN)

int qry_vector_metric(const char *name)
{
	for (int i = 0; i < 6; i++)
		if (!strcasecmp(name, metric_names[i]))
			return i;
	return -1;
}

/* The metric argument m of function fn (a keyword, which check.c makes a
 * string, or a string value), one of the metrics in mask; -1 for null. */
static int metric_of(struct qctx *c, const char *fn, struct val m,
                     unsigned mask)
{
	if (m.t == V_NULL)
		return -1;
	if (m.t != V_STR)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: the metric of %s must be a "
		     "string, not %s",
		     fn, v_type_name(m));
	int k = qry_vector_metric(m.u.s->s);
	if (k < 0 || !(mask & 1u << k)) {
		char list[96] = "";
		for (int i = 0; i < 6; i++)
			if (mask & 1u << i)
				snprintf(list + strlen(list),
				         sizeof(list) - strlen(list), "%s%s",
				         list[0] ? ", " : "", metric_names[i]);
		qerr(c, LORA_EINVAL,
		     "InvalidArgumentValue: %s takes no metric %s (%s)", fn,
		     m.u.s->s, list);
	}
	return k;
}

/* whether l is the value of a parameter (which lives, unchanged, as long
 * as the statement) */
static int param_list(struct qctx *c, const struct vlist *l)
{
	for (size_t i = 0; c->params && i < c->params->n; i++)
		if (c->params->v[i].t == V_LIST && c->params->v[i].u.l == l)
			return 1;
	return 0;
}

/* list or vector -> doubles; NULL when v is neither. The doubles of a
 * parameter's list are made once per statement (a query vector $q scored
 * against every node's vector), in the statement's arena. */
static double *coords(struct qctx *c, struct val v, uint32_t *dim)
{
	if (v.t == V_VECTOR) {
		*dim = v.u.vec->dim;
		return v.u.vec->d;
	}
	if (v.t != V_LIST)
		return NULL;
	if (c->vparam && c->vparam == v.u.l && param_list(c, v.u.l)) {
		*dim = c->vparam_dim;
		return c->vparam_d;
	}
	if (v.u.l->n > QRY_VECTOR_DIM_MAX)
		qerr(c, LORA_EVECTOR, "vector longer than %d",
		     QRY_VECTOR_DIM_MAX);
	int keep = param_list(c, v.u.l);
	struct arena *was = keep ? ar_use(c, &c->keep) : NULL;
	double *d = ar_alloc(c, sizeof(double) * (v.u.l->n + 1));
	if (keep)
		ar_use(c, was);
	for (size_t i = 0; i < v.u.l->n; i++) {
		if (!v_is_num(v.u.l->v[i]))
			qerr(c, LORA_EVECTOR,
			     "InvalidArgumentType: vector coordinates must be "
			     "numbers");
		d[i] = v_num(v.u.l->v[i]);
	}
	*dim = (uint32_t)v.u.l->n;
	if (keep) {
		c->vparam = v.u.l;
		c->vparam_d = d;
		c->vparam_dim = *dim;
		c->vparam_dot_ok = 0;
	}
	return d;
}

/* Clinger's fast path: a plain decimal ([+-]digits[.digits], no
 * exponent) of at most 19 digits whose integer mantissa m < 2^53 and with
 * k <= 22 digits after the point is m / 10^k, both exact doubles, so one
 * IEEE division rounds it correctly, as strtod would. Anything else goes
 * to strtod. *end == s when nothing was read. */
static double fast_strtod(const char *s, char **end)
{
	static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,
	                               1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
	                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
	                               1e18, 1e19, 1e20, 1e21, 1e22};
	const char *p = s;
	int neg = *p == '-';
	if (*p == '-' || *p == '+')
		p++;
	uint64_t m = 0;
	int digits = 0, frac = -1;
	for (;; p++) {
		if (*p >= '0' && *p <= '9') {
			if (++digits > 19)
				return strtod(s, end);
			m = m * 10 + (uint64_t)(*p - '0');
			if (frac >= 0)
				frac++;
		} else if (*p == '.' && frac < 0) {
			frac = 0;
		} else {
			break;
		}
	}
	/* an exponent, a hexadecimal number ("0x10"), too many digits */
	if (!digits || *p == 'e' || *p == 'E' || *p == 'x' || *p == 'X' ||
	    m >> 53 || frac > 22)
		return strtod(s, end);
	*end = (char *)p;
	double x = frac > 0 ? (double)m / p10[frac] : (double)m;
	return neg ? -x : x;
}

/* "[1, 2, 3]": every number strtod reads, whatever lies between. */
static double *coords_of_string(struct qctx *c, const char *s, size_t len,
                                uint32_t *dim)
{
	/* a number and what separates it from the next take 2 bytes at
	 * least; parsed into the statement's scratch buffer, as make_vector
	 * copies the coordinates out (in the arena, room for len / 2 of them
	 * took 5 KB per row of a 128-d load whose vector takes 1 KB) */
	size_t cap = len / 2 + 1, k = 0;
	if (cap > (size_t)QRY_VECTOR_DIM_MAX + 1) /* one past: the error */
		cap = (size_t)QRY_VECTOR_DIM_MAX + 1;
	struct lora_buf *b = qbuf(c);
	if (lora_buf_reserve(b, sizeof(double) * cap))
		qerr(c, LORA_ENOMEM, "out of memory reading a vector");
	double *d = (double *)(void *)b->data;
	while (*s) {
		char *end = (char *)s;
		/* strtod skips leading white space itself, but fast_strtod
		 * reads from a digit or sign: "[1, 2]" took strtod's slow path
		 * for every number after the first */
		double x = *s == ',' || *s == '[' || *s == ']' || *s == ' ' ||
		                   (*s >= '\t' && *s <= '\r')
		               ? 0
		               : fast_strtod(s, &end);
		if (end == s) {
			s++;
			continue;
		}
		if (k == cap || k >= QRY_VECTOR_DIM_MAX)
			qerr(c, LORA_EVECTOR, "vector longer than %d",
			     QRY_VECTOR_DIM_MAX);
		d[k++] = x;
		s = end;
	}
	*dim = (uint32_t)k;
	return d;
}

static struct val make_vector(struct qctx *c, struct val *a, size_t n)
{
	if (a[0].t == V_NULL)
		return v_null();
	uint32_t dim;
	double *d = coords(c, a[0], &dim);
	if (!d && a[0].t == V_STR)
		d = coords_of_string(c, a[0].u.s->s, a[0].u.s->len, &dim);
	if (!d)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: vector() needs a list");
	if (n > 1 && a[1].t == V_INT && (uint32_t)a[1].u.i != dim)
		qerr(c, LORA_EVECTOR,
		     "vector has %u coordinates, dimension %lld was given", dim,
		     (long long)a[1].u.i);
	int ct = 0;
	if (n > 2 && a[2].t == V_STR) {
		ct = qry_vector_coord_type(a[2].u.s->s);
		if (ct < 0)
			qerr(c, LORA_EVECTOR, "unknown coordinate type %s",
			     a[2].u.s->s);
	}
	struct vvec *v = ar_alloc(c, sizeof(*v));
	v->ctype = ct;
	v->dim = dim;
	v->d = ar_alloc(c, sizeof(double) * (dim + 1));
	for (uint32_t i = 0; i < dim; i++)
		v->d[i] = vec_coord(c, ct, i, d[i]);
	struct val r = {.t = V_VECTOR};
	r.u.vec = v;
	return r;
}

/* Four running sums, s_j over the coordinates i = j (mod 4), added as
 * s0 + s1 + s2 + s3 at the end. The sums go two to a vector register
 * (GCC's vector extension: lane-wise IEEE operations, so the same bits as
 * four scalar sums), as the compiler does not pair them by itself. */
typedef double qry_v2d __attribute__((vector_size(16)));

static double dot(const double *a, const double *b, uint32_t n)
{
	qry_v2d lo = {0, 0}, hi = {0, 0}, x, y;
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		memcpy(&x, a + i, sizeof x);
		memcpy(&y, b + i, sizeof y);
		lo += x * y;
		memcpy(&x, a + i + 2, sizeof x);
		memcpy(&y, b + i + 2, sizeof y);
		hi += x * y;
	}
	double s0 = lo[0], s1 = lo[1], s2 = hi[0], s3 = hi[1];
	for (; i < n; i++)
		s0 += a[i] * b[i];
	return s0 + s1 + s2 + s3;
}

static double sqdist(const double *a, const double *b, uint32_t n)
{
	double s = 0;
	for (uint32_t i = 0; i < n; i++) {
		double d = a[i] - b[i];
		s += d * d;
	}
	return s;
}

/* dot(a, a, n), remembered for a parameter's vector (coords) */
static double self_dot(struct qctx *c, const double *a, uint32_t n)
{
	if (a != c->vparam_d)
		return dot(a, a, n);
	if (!c->vparam_dot_ok) {
		c->vparam_dot = dot(a, a, n);
		c->vparam_dot_ok = 1;
	}
	return c->vparam_dot;
}

/* Neo4j's normalised scores, in [0, 1] */
static double sim_cosine(struct qctx *c, const double *a, const double *b,
                         uint32_t n)
{
	double na = sqrt(self_dot(c, a, n)), nb = sqrt(self_dot(c, b, n));
	if (na == 0 || nb == 0)
		return NAN;
	return (1 + dot(a, b, n) / (na * nb)) / 2;
}

static double sim_euclid(const double *a, const double *b, uint32_t n)
{
	return 1 / (1 + sqdist(a, b, n));
}

static int two_vectors(struct qctx *c, struct val *a, double **x, double **y,
                       uint32_t *n)
{
	if (a[0].t == V_NULL || a[1].t == V_NULL)
		return 0;
	uint32_t n1, n2;
	*x = coords(c, a[0], &n1);
	*y = coords(c, a[1], &n2);
	if (!*x || !*y)
		qerr(c, LORA_ETYPE, "InvalidArgumentType: expected vectors");
	if (n1 != n2)
		qerr(c, LORA_EVECTOR, "vector dimensions differ: %u and %u", n1,
		     n2);
	*n = n1;
	return 1;
}

struct val vec_fn(struct qctx *c, const char *name, struct val *a, size_t n,
                  int *ok)
{
	double *x, *y;
	uint32_t dim;
	*ok = 1;
	if (!strcasecmp(name, "vector") && n >= 1 && n <= 3)
		return make_vector(c, a, n);
	if ((!strcasecmp(name, "vector.similarity.cosine") ||
	     !strcasecmp(name, "vector.similarity.euclidean")) &&
	    n == 2) {
		if (!two_vectors(c, a, &x, &y, &dim))
			return v_null();
		double s = name[18] == 'c' || name[18] == 'C'
		               ? sim_cosine(c, x, y, dim)
		               : sim_euclid(x, y, dim);
		return isnan(s) ? v_null() : v_float(s);
	}
	if (!strcasecmp(name, "vector_distance") && n == 3) {
		int m = metric_of(c, name, a[2], METRICS_DISTANCE);
		if (m < 0 || !two_vectors(c, a, &x, &y, &dim))
			return v_null();
		switch (m) {
		case METRIC_EUCLIDEAN:
			return v_float(sqrt(sqdist(x, y, dim)));
		case METRIC_EUCLIDEAN_SQUARED:
			return v_float(sqdist(x, y, dim));
		case METRIC_COSINE:
			return v_float(1 - (2 * sim_cosine(c, x, y, dim) - 1));
		case METRIC_DOT:
			return v_float(-dot(x, y, dim));
		case METRIC_HAMMING: { /* coordinates that differ */
			int64_t k = 0;
			for (uint32_t i = 0; i < dim; i++)
				k += x[i] != y[i];
			return v_float((double)k);
		}
		default: { /* METRIC_MANHATTAN */
			double s = 0;
			for (uint32_t i = 0; i < dim; i++)
				s += fabs(x[i] - y[i]);
			return v_float(s);
		}
		}
	}
	if (!strcasecmp(name, "vector_norm") && n >= 1) {
		int m = n > 1 ? metric_of(c, name, a[1], METRICS_NORM)
		              : METRIC_EUCLIDEAN;
		if (m < 0 || a[0].t == V_NULL)
			return v_null();
		x = coords(c, a[0], &dim);
		if (!x)
			qerr(c, LORA_ETYPE,
			     "InvalidArgumentType: expected a "
			     "vector");
		if (m == METRIC_MANHATTAN) {
			double s = 0;
			for (uint32_t i = 0; i < dim; i++)
				s += fabs(x[i]);
			return v_float(s);
		}
		return v_float(sqrt(dot(x, x, dim)));
	}
	if (!strcasecmp(name, "vector_dimension_count") && n == 1) {
		if (a[0].t == V_NULL)
			return v_null();
		x = coords(c, a[0], &dim);
		if (!x)
			qerr(c, LORA_ETYPE,
			     "InvalidArgumentType: expected a "
			     "vector");
		return v_int(dim);
	}
	*ok = 0;
	return v_null();
}

/* for the ORDER BY rewrite (vecorder.c): coords and dot as the
 * similarity functions use them */
double *vec_coords(struct qctx *c, struct val v, uint32_t *dim)
{
	return coords(c, v, dim);
}

double vec_dot(const double *a, const double *b, uint32_t n)
{
	return dot(a, b, n);
}

/* ---- top-k ------------------------------------------------------------- */

struct hit {
	double score;
	uint64_t id;
};

/* min-heap on score: the root is the weakest of the current top k */
static void heap_down(struct hit *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && h[l].score < h[m].score)
			m = l;
		if (r < n && h[r].score < h[m].score)
			m = r;
		if (m == i)
			return;
		struct hit t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void heap_up(struct hit *h, size_t i)
{
	while (i) {
		size_t p = (i - 1) / 2;
		if (h[p].score <= h[i].score)
			return;
		struct hit t = h[i];
		h[i] = h[p];
		h[p] = t;
		i = p;
	}
}

/* metrics of the exact scan (the index's vector.similarity_function) */
enum { VM_COSINE, VM_EUCLID, VM_DOT };

static int find_vindex(struct qctx *c, const char *name, char **label,
                       char **key, int *euclid, uint32_t *dims, int *rel)
{
	Lora__CreateIndex **defs = NULL;
	size_t n = 0;
	if (!g_view(c) || sto_view_indexes(c->view, &defs, &n))
		return 0;
	int found = 0;
	for (size_t i = 0; i < n && !found; i++)
		if (!strcmp(defs[i]->name, name) &&
		    defs[i]->kind == LORA__INDEX_KIND__INDEX_VECTOR &&
		    defs[i]->n_properties == 1) {
			*label = ar_strdup(c, defs[i]->label);
			*key = ar_strdup(c, defs[i]->properties[0]);
			*euclid =
			    !strcmp(defs[i]->vector_similarity, "euclidean")
			        ? VM_EUCLID
			    : !strcmp(defs[i]->vector_similarity, "dot")
			        ? VM_DOT
			        : VM_COSINE;
			*dims = defs[i]->vector_dimensions;
			*rel =
			    defs[i]->entity == LORA__ENTITY_KIND__ENTITY_EDGE;
			found = 1;
		}
	sto_indexes_free(defs, n);
	return found;
}

/* Vectors scored together: each keeps its own sums in coordinate order
 * (the same bits as scoring it alone), and the interleaved sums let the
 * compiler use SIMD lanes and overlap the additions' latency. */
#define SCORE_BATCH 4

/* scores of SCORE_BATCH stored vectors, vector j at xs + j * dim,
 * against q (qn: q's norm) */
static void score_batch(const float *restrict xs, const double *restrict q,
                        double qn, uint32_t dim, int euclid,
                        double *restrict out)
{
	double a[SCORE_BATCH] = {0}, b[SCORE_BATCH] = {0};
	if (euclid == VM_EUCLID) {
		for (uint32_t i = 0; i < dim; i++)
			for (int j = 0; j < SCORE_BATCH; j++) {
				double d = (double)xs[j * dim + i] - q[i];
				a[j] += d * d;
			}
		for (int j = 0; j < SCORE_BATCH; j++)
			out[j] = 1 / (1 + a[j]);
		return;
	}
	for (uint32_t i = 0; i < dim; i++)
		for (int j = 0; j < SCORE_BATCH; j++) {
			double x = xs[j * dim + i];
			a[j] += x * q[i];
			b[j] += x * x;
		}
	for (int j = 0; j < SCORE_BATCH; j++)
		out[j] = euclid == VM_DOT ? a[j]
		         : b[j] == 0 || qn == 0
		             ? NAN
		             : (1 + a[j] / (sqrt(b[j]) * qn)) / 2;
}

/* a vector scored alone, as doubles (float64 and integer coordinates) */
static double score_one(const double *x, const double *q, double qn,
                        uint32_t dim, int euclid)
{
	double dp = 0, nn = 0, sq = 0;
	for (uint32_t i = 0; i < dim; i++) {
		dp += x[i] * q[i];
		nn += x[i] * x[i];
		sq += (x[i] - q[i]) * (x[i] - q[i]);
	}
	if (euclid == VM_EUCLID)
		return 1 / (1 + sq);
	if (euclid == VM_DOT)
		return dp;
	if (nn == 0 || qn == 0)
		return NAN;
	return (1 + dp / (sqrt(nn) * qn)) / 2;
}

/* One stored vector: float32 coordinates into row f (1), other ones as
 * doubles into x (2), or 0 when it has not dim coordinates. Reads the
 * packed bytes in place; an unusual encoding is unpacked. */
static int stored_coords(struct qctx *c, const struct sto_item *item,
                         uint32_t dim, float *f, double *x)
{
	struct sto_vec_ref r;
	if (sto_vector_ref(item->vec_bytes, item->vec_len, &r))
		qerr(c, LORA_ECORRUPT, "vector scan: %s",
		     lora_strerror(LORA_ECORRUPT));
	if (r.plain && r.dimension != dim)
		return 0;
	if (r.plain && r.n_f32 == dim) {
		sto_vec_f32(&r, f);
		return 1;
	}
	if (r.plain && r.n_f64 != dim && r.n_ints != dim)
		return 0;
	Lora__Vector *v = lora__vector__unpack(&lora_pb_allocator,
	                                       item->vec_len, item->vec_bytes);
	if (!v)
		qerr(c, LORA_ECORRUPT, "vector scan: %s",
		     lora_strerror(LORA_ECORRUPT));
	int ok = v->dimension == dim &&
	         (v->n_f32 == dim || v->n_f64 == dim || v->n_ints == dim);
	for (uint32_t i = 0; ok && i < dim; i++)
		x[i] = v->n_f32 == dim   ? v->f32[i]
		       : v->n_f64 == dim ? v->f64[i]
		                         : (double)v->ints[i];
	lora__vector__free_unpacked(v, &lora_pb_allocator);
	return ok ? 2 : 0;
}

/* offers the first n scored vectors of a batch to the heap, in scan order */
static void offer(struct hit *h, size_t k, size_t *nh, const double *s,
                  const uint64_t *id, int n)
{
	for (int j = 0; j < n; j++) {
		if (isnan(s[j]))
			continue;
		struct hit x = {s[j], id[j]};
		if (*nh < k) {
			h[*nh] = x;
			heap_up(h, (*nh)++);
		} else if (s[j] > h[0].score) {
			h[0] = x;
			heap_down(h, k, 0);
		}
	}
}

/* the scan's state: float32 vectors wait in a batch, scored together */
struct topk {
	const double *q;
	double qn;
	uint32_t dim;
	int euclid, n;
	float *xs; /* SCORE_BATCH rows of dim */
	double *x; /* one vector of other coordinates */
	uint64_t id[SCORE_BATCH];
	struct hit *h;
	size_t k, *nh;
};

static void flush_batch(struct topk *t)
{
	double s[SCORE_BATCH];
	if (!t->n)
		return;
	score_batch(t->xs, t->q, t->qn, t->dim, t->euclid, s);
	offer(t->h, t->k, t->nh, s, t->id, t->n);
	t->n = 0;
}

/* scores of one block of a column (STO_VCOL_BLOCK vectors stored
 * coordinate by coordinate; sumsq: their sums of squares), the same bits
 * as score_batch: each vector's sums in coordinate order */
static void score_block(const float *restrict xs, const double *restrict sumsq,
                        const double *restrict q, double qn, uint32_t dim,
                        int euclid, double *restrict out)
{
	double a[STO_VCOL_BLOCK] = {0};
	if (euclid == VM_EUCLID) {
		for (uint32_t i = 0; i < dim; i++)
			for (int j = 0; j < STO_VCOL_BLOCK; j++) {
				double d =
				    (double)xs[i * STO_VCOL_BLOCK + j] - q[i];
				a[j] += d * d;
			}
		for (int j = 0; j < STO_VCOL_BLOCK; j++)
			out[j] = 1 / (1 + a[j]);
		return;
	}
	for (uint32_t i = 0; i < dim; i++)
		for (int j = 0; j < STO_VCOL_BLOCK; j++)
			a[j] += (double)xs[i * STO_VCOL_BLOCK + j] * q[i];
	for (int j = 0; j < STO_VCOL_BLOCK; j++)
		out[j] = euclid == VM_DOT ? a[j]
		         : sumsq[j] == 0 || qn == 0
		             ? NAN
		             : (1 + a[j] / (sqrt(sumsq[j]) * qn)) / 2;
}

/* The top k of an in-memory column (storage's copy of the vectors): no
 * iterator and no copies; cosine reuses the stored sums of squares. The
 * vectors of a column all have col->dim float32 coordinates, so a query
 * of another dimension matches none (as the scan skips them). The zero
 * vectors padding the last block are scored but not offered. */
static void column_topk(const struct sto_vcol_ref *col, int euclid,
                        const double *q, double qn, uint32_t dim, struct hit *h,
                        size_t k, size_t *nh)
{
	if (col->dim != dim)
		return;
	double s[STO_VCOL_BLOCK];
	for (size_t i = 0; i < col->n; i += STO_VCOL_BLOCK) {
		size_t left = col->n - i;
		score_block(col->rows + i * dim, col->sumsq + i, q, qn, dim,
		            euclid, s);
		offer(h, k, nh, s, col->ids + i,
		      left < STO_VCOL_BLOCK ? (int)left : STO_VCOL_BLOCK);
	}
}

/* The exact top k of the vectors `key` on nodes with `label`, or on
 * relationships of type `label` (rel 1: no in-memory column for those). */
static void scan_topk(struct qctx *c, int rel, const char *label,
                      const char *key, int euclid, const double *q,
                      uint32_t dim, struct hit *h, size_t k, size_t *nh)
{
	struct sto_vcol_ref col;
	int crv = rel ? LORA_ENOTFOUND
	              : sto_view_vector_column(g_view(c), label, key, &col);
	if (crv == 0) {
		column_topk(&col, euclid, q, sqrt(dot(q, q, dim)), dim, h, k,
		            nh);
		return;
	}
	if (crv != LORA_ENOTFOUND)
		qerr(c, crv, "vector scan: %s", lora_strerror(crv));
	struct sto_iter *it = NULL;
	int rv = rel ? sto_view_scan_rel_vectors_raw(g_view(c), label, key, &it)
	             : sto_view_scan_vectors_raw(g_view(c), label, key, &it);
	if (rv)
		qerr_sto(c, rv, "vector scan");
	c->iter = it; /* freed by the cursor if a step raises */
	/* the vectors of other keys and types it walks past count too */
	sto_iter_set_deadline(it, c->deadline_ms);
	struct topk t = {
	    .q = q, .dim = dim, .euclid = euclid, .h = h, .k = k, .nh = nh};
	t.qn = sqrt(dot(q, q, dim));
	/* zeroed: the rows past n of the last batch are scored, not used */
	t.xs = ar_alloc(c, sizeof(float) * SCORE_BATCH * (dim + 1));
	memset(t.xs, 0, sizeof(float) * SCORE_BATCH * (dim + 1));
	t.x = ar_alloc(c, sizeof(double) * (dim + 1));
	struct sto_item item;
	int done = 0;
	while ((rv = sto_iter_next(it, &item, &done)) == 0 && !done) {
		q_tick_every(c);
		int got =
		    stored_coords(c, &item, dim, t.xs + (size_t)t.n * dim, t.x);
		if (got == 1) {
			t.id[t.n++] = item.node_id;
			if (t.n == SCORE_BATCH)
				flush_batch(&t);
		} else if (got == 2) {
			flush_batch(&t); /* keeps the scan order */
			double s = score_one(t.x, q, t.qn, dim, euclid);
			offer(h, k, nh, &s, &item.node_id, 1);
		}
	}
	flush_batch(&t);
	c->iter = NULL;
	sto_iter_free(it);
	if (rv == LORA_ETIMEOUT)
		q_tick(c); /* raises the statement's time limit error */
	if (rv)
		qerr_sto(c, rv, "vector scan");
}

/* ---- queryNodes: the HNSW graph, the exact scan, the statement's writes
 *
 * Results come from the index's HNSW graph (storage/hnsw.c) unless the
 * caller asks for {exact: true}, the index holds fewer than
 * QRY_HNSW_EXACT_BELOW vectors, or the view cannot use the graph (a batch
 * being applied): then from the exact scan. Either way the nodes this
 * statement created, changed or deleted are left out of the stored
 * answer and scored exactly from the statement's own state. A WHERE after
 * the CALL filters the candidates in score order; when fewer than k pass,
 * the search asks for QRY_HNSW_EF_GROWTH times more candidates, up to
 * half the index, where it turns into the exact scan (which widens its
 * own top k the same way). */
#define QRY_HNSW_EXACT_BELOW 2048
#define QRY_HNSW_EF_DEFAULT  100
#define QRY_HNSW_EF_GROWTH   4
#define QRY_HNSW_EF_MAX      100000

struct vq {
	const char *index, *label, *key; /* label: a relationship's type */
	int rel;                         /* queryRelationships */
	int metric;
	const double *q;
	double qn;
	uint32_t dim;
	size_t k;
	struct val *row;
	struct clause *cl;
};

/* whether the statement has its own state for node (relationship) id */
static int overlaid(struct qctx *c, const struct vq *v, uint64_t id)
{
	if (v->rel) {
		struct gedge *e = c->g.edges.n ? hm_get(&c->g.edges, id) : NULL;
		return e && (e->deleted || e->touched || e->created);
	}
	struct gnode *g = c->g.nodes.n ? hm_get(&c->g.nodes, id) : NULL;
	return g && (g->deleted || g->touched || g->created);
}

/* the statement's own live relationships of the type with a vector of
 * dim, scored exactly, appended to h (room for cap) */
static size_t overlay_rel_hits(struct qctx *c, const struct vq *v,
                               struct hit *h, size_t n, size_t cap)
{
	struct hmap *m = &c->g.edges;
	for (size_t i = 0; i < m->cap && n < cap; i++) {
		struct gedge *e = hm_at(m, i);
		if (!e || e->deleted || !(e->touched || e->created) ||
		    strcmp(e->type, v->label) || !e->props)
			continue;
		struct val *p = vmap_get(e->props, v->key);
		uint32_t d;
		double *x = p ? coords(c, *p, &d) : NULL;
		if (!x || d != v->dim)
			continue;
		double s = score_one(x, v->q, v->qn, d, v->metric);
		if (!isnan(s))
			h[n++] = (struct hit){s, e->id};
	}
	return n;
}

/* the statement's own live nodes with the label and a vector of dim,
 * scored exactly, appended to h (room for cap) */
static size_t overlay_hits(struct qctx *c, const struct vq *v, struct hit *h,
                           size_t n, size_t cap)
{
	if (v->rel)
		return overlay_rel_hits(c, v, h, n, cap);
	struct hmap *m = &c->g.nodes;
	for (size_t i = 0; i < m->cap && n < cap; i++) {
		struct gnode *g = hm_at(m, i);
		if (!g || g->deleted || !(g->touched || g->created) ||
		    !g_has_label(g, v->label))
			continue;
		struct val *p = g_node_prop(c, g, v->key);
		uint32_t d;
		double *x = p ? coords(c, *p, &d) : NULL;
		if (!x || d != v->dim)
			continue;
		double s = score_one(x, v->q, v->qn, d, v->metric);
		if (!isnan(s))
			h[n++] = (struct hit){s, g->id};
	}
	return n;
}

static size_t overlay_count(struct qctx *c, const struct vq *v)
{
	size_t n = 0;
	for (size_t i = 0; v->rel && i < c->g.edges.cap; i++) {
		struct gedge *e = hm_at(&c->g.edges, i);
		n += e && (e->touched || e->created) && !e->deleted;
	}
	if (v->rel)
		return n;
	for (size_t i = 0; i < c->g.nodes.cap; i++) {
		struct gnode *g = hm_at(&c->g.nodes, i);
		n += g && (g->touched || g->created) && !g->deleted;
	}
	return n;
}

static int hit_desc(const void *x, const void *y)
{
	const struct hit *a = x, *b = y;
	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* Rows of the hits (sorted) that pass the WHERE, at most k, into out;
 * returns how many. */
static size_t emit(struct qctx *c, const struct vq *v, const struct hit *h,
                   size_t n, struct rows *out)
{
	size_t got = 0;
	for (size_t i = 0; i < n && got < v->k; i++) {
		struct val *r = row_copy(c, v->row);
		for (size_t y = 0; y < v->cl->nyields; y++)
			r[v->cl->yields[y].slot] =
			    !strcmp(v->cl->yields[y].name, "node")
			        ? v_node(h[i].id)
			    : !strcmp(v->cl->yields[y].name, "relationship")
			        ? v_rel(h[i].id)
			        : v_float(h[i].score);
		if (v->cl->where && eval_pred(c, v->cl->where, r) != 1)
			continue;
		rows_push(c, out, r);
		got++;
	}
	return got;
}

/* The exact answer: the top kk of the scan, the statement's own nodes
 * merged in. With a WHERE, kk starts at 4k and grows 8 times while fewer
 * than k pass and the scan had more to give. */
static void exact(struct qctx *c, const struct vq *v, struct rows *out)
{
	size_t extra = overlay_count(c, v);
	size_t kk = v->cl->where ? 4 * v->k + extra : v->k + extra;
	for (;;) {
		if (kk > QRY_TOPK_MAX)
			kk = QRY_TOPK_MAX;
		struct hit *h =
		    ar_alloc(c, sizeof(struct hit) * (kk + extra + 1));
		size_t nh = 0;
		scan_topk(c, v->rel, v->label, v->key, v->metric, v->q, v->dim,
		          h, kk, &nh);
		size_t w = 0;
		for (size_t i = 0; i < nh; i++)
			if (!overlaid(c, v, h[i].id))
				h[w++] = h[i];
		w = overlay_hits(c, v, h, w, kk + extra + 1);
		qsort(h, w, sizeof *h, hit_desc);
		struct rows tmp = {0};
		size_t got = emit(c, v, h, w, &tmp);
		if (got >= v->k || nh < kk || kk == QRY_TOPK_MAX) {
			for (size_t i = 0; i < tmp.n; i++)
				rows_push(c, out, tmp.r[i]);
			return;
		}
		kk *= 8;
	}
}

/* The graph's answer; 0 when the exact scan must give it. */
static int approx(struct qctx *c, const struct vq *v, size_t ef,
                  struct rows *out)
{
	size_t extra = overlay_count(c, v);
	for (;;) {
		struct sto_vhit *vh = ar_alloc(c, sizeof *vh * (ef + 1));
		size_t n, count;
		int rv =
		    sto_view_vector_search(g_view(c), v->index, v->q, v->dim,
		                           v->qn, ef, vh, &n, &count);
		if (rv == LORA_ENOTFOUND || count < QRY_HNSW_EXACT_BELOW)
			return 0;
		if (rv)
			qerr(c, rv, "vector index %s: %s", v->index,
			     lora_strerror(rv));
		struct hit *h = ar_alloc(c, sizeof *h * (n + extra + 1));
		size_t w = 0;
		for (size_t i = 0; i < n; i++)
			if (!overlaid(c, v, vh[i].id))
				h[w++] = (struct hit){vh[i].score, vh[i].id};
		w = overlay_hits(c, v, h, w, n + extra + 1);
		qsort(h, w, sizeof *h, hit_desc);
		struct rows tmp = {0};
		size_t got = emit(c, v, h, w, &tmp);
		if (got >= v->k || n >= count) {
			for (size_t i = 0; i < tmp.n; i++)
				rows_push(c, out, tmp.r[i]);
			return 1;
		}
		if (ef >= count / 2 || ef >= QRY_HNSW_EF_MAX)
			return 0; /* a big share of the index: scan it */
		ef *= QRY_HNSW_EF_GROWTH;
	}
}

/* {ef: integer, exact: boolean} */
static void query_options(struct qctx *c, struct val o, size_t *ef, int *exact)
{
	if (o.t == V_NULL)
		return;
	if (o.t != V_MAP)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: queryNodes options must be a map");
	struct val e = prop_of(c, o, "ef"), x = prop_of(c, o, "exact");
	if (e.t != V_NULL) {
		if (e.t != V_INT || e.u.i < 1 || e.u.i > QRY_HNSW_EF_MAX)
			qerr(c, LORA_EINVAL,
			     "InvalidArgumentValue: ef must be an integer "
			     "between 1 and %d",
			     QRY_HNSW_EF_MAX);
		*ef = (size_t)e.u.i;
	}
	if (x.t != V_NULL) {
		if (x.t != V_BOOL)
			qerr(c, LORA_ETYPE,
			     "InvalidArgumentType: exact must be a boolean");
		*exact = x.u.b;
	}
}

/* answered from the graph / by the exact scan (qry_vector_search_counts) */
static _Atomic uint64_t searches_graph, searches_exact;

void qry_vector_search_counts(uint64_t *graph, uint64_t *exact)
{
	*graph = atomic_load(&searches_graph);
	*exact = atomic_load(&searches_exact);
}

void vec_query(struct qctx *c, int rel, const char *index, int64_t k,
               struct val qv, struct val opts, struct val *row,
               struct clause *cl, struct rows *out)
{
	char *label, *key;
	int metric, irel = 0;
	uint32_t dims, dim;
	if (!find_vindex(c, index, &label, &key, &metric, &dims, &irel))
		qerr(c, LORA_ENOTFOUND, "no vector index named %s", index);
	if (irel != rel)
		qerr(c, LORA_EINVAL,
		     "InvalidArgumentValue: vector index %s indexes %s: use "
		     "db.index.vector.%s",
		     index, irel ? "relationships" : "nodes",
		     irel ? "queryRelationships" : "queryNodes");
	if (k <= 0 || k > QRY_TOPK_MAX)
		qerr(c, LORA_EINVAL, "k must be between 1 and %d",
		     QRY_TOPK_MAX);
	double *q = coords(c, qv, &dim);
	if (!q)
		qerr(c, LORA_ETYPE,
		     "InvalidArgumentType: query vector expected");
	if (dims && dim != dims)
		qerr(c, LORA_EVECTOR,
		     "query vector has %u dimensions, index %s "
		     "has %u",
		     dim, index, dims);
	size_t ef = QRY_HNSW_EF_DEFAULT;
	int ex = 0;
	query_options(c, opts, &ef, &ex);
	if (ef < (size_t)k)
		ef = (size_t)k;
	struct vq v = {
	    index, label,     key, rel, metric, q, sqrt(dot(q, q, dim)),
	    dim,   (size_t)k, row, cl};
	if (!ex && approx(c, &v, ef, out)) {
		atomic_fetch_add(&searches_graph, 1);
		return;
	}
	exact(c, &v, out);
	atomic_fetch_add(&searches_exact, 1);
}
