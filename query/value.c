/* value.c - the runtime value: arena, constructors, Cypher equality,
 * comparison, orderability, equivalence, hashing and text forms. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qint.h"

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	_Alignas(16) char data[];
};

/* Under AddressSanitizer a reset arena's spare chunk is poisoned until
 * its memory is handed out again (the other chunks are freed), so a use
 * of a row its operator has reset is reported, unless the next row's
 * allocations took that memory first. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang */
#define LORA_AR_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(LORA_AR_ASAN)
#include <sanitizer/asan_interface.h>
#define AR_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define AR_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define AR_POISON(p, n)   ((void)(p), (void)(n))
#define AR_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* ---- memory accounting ---------------------------------------------------
 * Every byte a statement holds (arena chunks, hash tables) is charged to
 * its own limit and to the process-wide budget, and given back when freed
 * or when the cursor is freed. */

int mem_try_charge(struct qctx *c, size_t n, char *msg)
{
	if (c->lim.mem_bytes_max && c->mem_bytes + n > c->lim.mem_bytes_max)
		return lora_errf(
		    LORA_EMEMORY, msg,
		    "MemoryLimitExceeded: the statement needs more "
		    "than its memory limit of %llu bytes",
		    (unsigned long long)c->lim.mem_bytes_max);
	struct qry_budget *b = c->lim.shared;
	if (b) {
		uint64_t was = atomic_fetch_add(&b->used_bytes, n);
		if (b->max_bytes && was + n > b->max_bytes) {
			atomic_fetch_sub(&b->used_bytes, n);
			atomic_fetch_add(&b->refused, 1);
			return lora_errf(
			    LORA_EMEMORY, msg,
			    "MemoryLimitExceeded: the server's query memory "
			    "budget of %llu bytes is in use by running "
			    "statements",
			    (unsigned long long)b->max_bytes);
		}
	}
	c->mem_bytes += n;
	if (c->mem_bytes > c->mem_peak)
		c->mem_peak = c->mem_bytes;
	return 0;
}

void mem_charge(struct qctx *c, size_t n)
{
	char msg[LORA_ERRMSG_BYTES];
	if (mem_try_charge(c, n, msg) != 0)
		qerr(c, LORA_EMEMORY, "%s", msg);
}

void mem_uncharge(struct qctx *c, size_t n)
{
	LORA_ASSERT(n <= c->mem_bytes);
	c->mem_bytes -= n;
	if (c->lim.shared)
		atomic_fetch_sub(&c->lim.shared->used_bytes, n);
}

void *ar_alloc(struct qctx *c, size_t n)
{
	void *p = ar_alloc_nz(c, n);
	memset(p, 0, (n + 15) & ~(size_t)15);
	return p;
}

void *ar_alloc_nz(struct qctx *c, size_t n)
{
	struct arena *a = c->cur;
	n = (n + 15) & ~(size_t)15;
	if (n == 0)
		n = 16;
	struct arena_chunk *h = a->head;
	if (!h || h->cap - h->used < n) {
		size_t cap =
		    n > QRY_ARENA_CHUNK_BYTES ? n : QRY_ARENA_CHUNK_BYTES;
		if (a->spare && a->spare->cap >= n) {
			h = a->spare;
			a->spare = NULL;
		} else if (c->pool && cap == QRY_ARENA_CHUNK_BYTES) {
			h = c->pool; /* charged already */
			c->pool = h->next;
			c->npool--;
			a->bytes += sizeof(*h) + cap;
		} else {
			mem_charge(c, sizeof(*h) + cap);
			h = lora_malloc(sizeof(*h) + cap);
			if (!h) {
				mem_uncharge(c, sizeof(*h) + cap);
				qerr(c, LORA_ENOMEM, "out of memory");
			}
			h->cap = cap;
			a->bytes += sizeof(*h) + cap;
		}
		h->used = 0;
		h->next = a->head;
		a->head = h;
	}
	void *p = h->data + h->used;
	h->used += n;
	AR_UNPOISON(p, n);
	return p;
}

struct arena *ar_use(struct qctx *c, struct arena *a)
{
	struct arena *was = c->cur;
	if (!c->keep_all)
		c->cur = a;
	return was;
}

/* Gives chunk h of a back: to the statement's pool while it has room
 * (still charged), else to malloc. */
static void chunk_give(struct qctx *c, struct arena *a, struct arena_chunk *h)
{
	a->bytes -= sizeof(*h) + h->cap;
	if (h->cap == QRY_ARENA_CHUNK_BYTES &&
	    c->npool < QRY_ARENA_POOL_CHUNKS) {
		AR_POISON(h->data, h->cap);
		h->next = c->pool;
		c->pool = h;
		c->npool++;
		return;
	}
	mem_uncharge(c, sizeof(*h) + h->cap);
	AR_UNPOISON(h->data, h->cap);
	lora_free(h);
}

/* Takes chunk h off a: the spare if a has none and h is standard-sized,
 * else given back (chunk_give). */
static void chunk_drop(struct qctx *c, struct arena *a, struct arena_chunk *h)
{
	if (!a->spare && h->cap == QRY_ARENA_CHUNK_BYTES) {
		a->spare = h;
		AR_POISON(h->data, h->cap);
	} else {
		chunk_give(c, a, h);
	}
}

/* Frees every chunk but one standard-sized chunk, kept as a spare so a
 * per-row reset does not go back to malloc. */
void ar_reset(struct qctx *c, struct arena *a)
{
	if (c->keep_all || a == &c->keep)
		return;
	struct arena_chunk *h = a->head;
	a->head = NULL;
	while (h) {
		struct arena_chunk *n = h->next;
		chunk_drop(c, a, h);
		h = n;
	}
}

void ar_release(struct qctx *c, struct arena *a)
{
	if (c->keep_all || a == &c->keep)
		return;
	ar_reset(c, a);
	if (a->spare) {
		chunk_give(c, a, a->spare);
		a->spare = NULL;
	}
	a->bytes = 0;
}

struct ar_mark ar_mark(const struct arena *a)
{
	return (struct ar_mark){a->head, a->head ? a->head->used : 0};
}

/* Whatever keep_all says: the arenas it is for hold no rows. */
void ar_rewind(struct qctx *c, struct arena *a, struct ar_mark m)
{
	while (a->head && a->head != m.head) {
		struct arena_chunk *h = a->head;
		a->head = h->next;
		chunk_drop(c, a, h);
	}
	if (a->head) {
		AR_POISON(a->head->data + m.used, a->head->cap - m.used);
		a->head->used = m.used;
	}
}

void ar_pool_drain(struct qctx *c)
{
	while (c->pool) {
		struct arena_chunk *h = c->pool;
		c->pool = h->next;
		mem_uncharge(c, sizeof(*h) + h->cap);
		AR_UNPOISON(h->data, h->cap);
		lora_free(h);
	}
	c->npool = 0;
}

void ar_pool_free(struct qctx *c)
{
	while (c->pool) {
		struct arena_chunk *h = c->pool;
		c->pool = h->next;
		AR_UNPOISON(h->data, h->cap);
		lora_free(h);
	}
	c->npool = 0;
}

/* Frees an arena without accounting (the cursor gives its whole charge
 * back at once when it is freed). */
void arena_free(struct arena *a)
{
	struct arena_chunk *h = a->head;
	while (h) {
		struct arena_chunk *n = h->next;
		lora_free(h);
		h = n;
	}
	if (a->spare)
		AR_UNPOISON(a->spare->data, a->spare->cap);
	lora_free(a->spare);
	a->spare = NULL;
	a->head = NULL;
	a->bytes = 0;
}

char *ar_strndup(struct qctx *c, const char *s, size_t n)
{
	char *p = ar_alloc(c, n + 1);
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

char *ar_strdup(struct qctx *c, const char *s)
{
	return ar_strndup(c, s, strlen(s));
}

struct lora_buf *qbuf(struct qctx *c)
{
	if (c->sbuf.cap > QRY_SCRATCH_KEEP_BYTES)
		lora_buf_free(&c->sbuf); /* a big string's room goes back */
	lora_buf_reset(&c->sbuf);
	return &c->sbuf;
}

static void qbuf_check(struct qctx *c, struct lora_buf *b)
{
	int err = lora_buf_error(b);
	if (!err && b->len > QRY_STRING_BYTES_MAX)
		err = LORA_ELIMIT;
	if (err == LORA_ELIMIT)
		qerr(c, err, "string longer than %u bytes",
		     QRY_STRING_BYTES_MAX);
	if (err)
		qerr(c, err, "out of memory building a string");
}

char *qbuf_str(struct qctx *c, struct lora_buf *b)
{
	qbuf_check(c, b);
	return ar_strndup(c, b->data ? b->data : "", b->len);
}

struct val qbuf_val(struct qctx *c, struct lora_buf *b)
{
	qbuf_check(c, b);
	return v_str(c, b->data ? b->data : "", b->len);
}

struct val v_str(struct qctx *c, const char *s, size_t len)
{
	if (len > QRY_STRING_BYTES_MAX)
		qerr(c, LORA_ELIMIT, "string longer than %u bytes",
		     QRY_STRING_BYTES_MAX);
	struct vstr *p = ar_alloc_nz(c, sizeof(*p) + len + 1);
	p->len = len;
	if (len) /* s may be NULL then: an empty bytes parameter */
		memcpy(p->s, s, len);
	p->s[len] = 0;
	struct val v = {.t = V_STR};
	v.u.s = p;
	return v;
}

struct val v_cstr(struct qctx *c, const char *s)
{
	return v_str(c, s, strlen(s));
}

struct val v_list(struct qctx *c, size_t n)
{
	if (n > QRY_LIST_ITEMS_MAX)
		qerr(c, LORA_ELIMIT, "list longer than %u items",
		     QRY_LIST_ITEMS_MAX);
	struct vlist *l = ar_alloc(c, sizeof(*l));
	l->n = n;
	l->v = ar_alloc(c, sizeof(struct val) * (n ? n : 1));
	struct val v = {.t = V_LIST};
	v.u.l = l;
	return v;
}

struct val v_map(struct qctx *c, size_t cap)
{
	struct vmap *m = ar_alloc(c, sizeof(*m));
	if (cap < 4)
		cap = 4;
	m->k = ar_alloc(c, sizeof(char *) * cap);
	m->v = ar_alloc(c, sizeof(struct val) * cap);
	/* capacity is stored just past n in a hidden slot: keep it simple and
	 * grow by powers of two from the current n */
	struct val v = {.t = V_MAP};
	v.u.m = m;
	return v;
}

static int is_pow2_or_small(size_t n)
{
	return n < 4 || (n & (n - 1)) == 0;
}

void vmap_put(struct qctx *c, struct vmap *m, const char *k, struct val v)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->k[i], k) == 0) {
			m->v[i] = v;
			return;
		}
	if (m->n >= 4 && is_pow2_or_small(m->n)) {
		const char **nk = ar_alloc(c, sizeof(char *) * m->n * 2);
		struct val *nv = ar_alloc(c, sizeof(struct val) * m->n * 2);
		memcpy(nk, m->k, sizeof(char *) * m->n);
		memcpy(nv, m->v, sizeof(struct val) * m->n);
		m->k = nk;
		m->v = nv;
	}
	m->k[m->n] = k;
	m->v[m->n] = v;
	m->n++;
}

struct val *vmap_get(const struct vmap *m, const char *k)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->k[i], k) == 0)
			return &m->v[i];
	return NULL;
}

int v_is_num(struct val v)
{
	return v.t == V_INT || v.t == V_FLOAT;
}

double v_num(struct val v)
{
	return v.t == V_INT ? (double)v.u.i : v.u.f;
}

const char *v_type_name(struct val v)
{
	static const char *n[] = {
	    "Null",     "Boolean", "Integer", "Float",        "String",
	    "List",     "Map",     "Node",    "Relationship", "Path",
	    "Temporal", "Vector",  "Bytes",   "Point"};
	return n[v.t];
}

static int num_cmp(struct val a, struct val b)
{
	if (a.t == V_INT && b.t == V_INT)
		return a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
	if (a.t == V_INT && b.t == V_FLOAT && !isnan(b.u.f)) {
		/* exact for large integers */
		double bf = b.u.f;
		if (bf >= 9.2233720368547758e18)
			return -1;
		if (bf < -9.2233720368547758e18)
			return 1;
		int64_t bi = (int64_t)floor(bf);
		if (a.u.i != bi)
			return a.u.i < bi ? -1 : 1;
		return (double)bi == bf ? 0 : -1;
	}
	if (a.t == V_FLOAT && b.t == V_INT)
		return -num_cmp(b, a);
	double x = v_num(a), y = v_num(b);
	return x < y ? -1 : x > y;
}

static int list_eq(struct qctx *c, struct vlist *a, struct vlist *b)
{
	if (a->n != b->n)
		return 0;
	int unknown = 0;
	for (size_t i = 0; i < a->n; i++) {
		int r = v_eq(c, a->v[i], b->v[i]);
		if (r == 0)
			return 0;
		if (r < 0)
			unknown = 1;
	}
	return unknown ? -1 : 1;
}

static int map_eq(struct qctx *c, struct vmap *a, struct vmap *b)
{
	if (a->n != b->n)
		return 0;
	int unknown = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct val *o = vmap_get(b, a->k[i]);
		if (!o)
			return 0;
		int r = v_eq(c, a->v[i], *o);
		if (r == 0)
			return 0;
		if (r < 0)
			unknown = 1;
	}
	return unknown ? -1 : 1;
}

static int vec_eq(struct vvec *a, struct vvec *b)
{
	if (a->dim != b->dim || a->ctype != b->ctype)
		return 0;
	for (uint32_t i = 0; i < a->dim; i++)
		if (a->d[i] != b->d[i])
			return 0;
	return 1;
}

int v_eq(struct qctx *c, struct val a, struct val b)
{
	if (a.t == V_NULL || b.t == V_NULL)
		return -1;
	if (v_is_num(a) && v_is_num(b)) {
		if ((a.t == V_FLOAT && isnan(a.u.f)) ||
		    (b.t == V_FLOAT && isnan(b.u.f)))
			return 0;
		return num_cmp(a, b) == 0;
	}
	if (a.t != b.t)
		return 0;
	switch (a.t) {
	case V_BOOL:
		return a.u.b == b.u.b;
	case V_STR:
		return a.u.s->len == b.u.s->len &&
		       memcmp(a.u.s->s, b.u.s->s, a.u.s->len) == 0;
	case V_LIST:
		return list_eq(c, a.u.l, b.u.l);
	case V_MAP:
		return map_eq(c, a.u.m, b.u.m);
	case V_NODE:
	case V_REL:
		return a.u.id == b.u.id;
	case V_PATH:
		if (a.u.p->n != b.u.p->n)
			return 0;
		for (size_t i = 0; i < a.u.p->n; i++)
			if (a.u.p->rels[i] != b.u.p->rels[i])
				return 0;
		return a.u.p->nodes[0] == b.u.p->nodes[0];
	case V_TEMPORAL: {
		struct vtemp *x = a.u.tm, *y = b.u.tm;
		if (x->kind != y->kind)
			return 0;
		if (x->kind == LORA__TEMPORAL_KIND__TEMPORAL_DURATION)
			return x->months == y->months && x->ddays == y->ddays &&
			       x->secs == y->secs && x->dnanos == y->dnanos;
		int r;
		if (!tm_cmp(x, y, &r))
			return 0;
		if (r != 0)
			return 0;
		if (x->kind == LORA__TEMPORAL_KIND__TEMPORAL_DATETIME ||
		    x->kind == LORA__TEMPORAL_KIND__TEMPORAL_TIME)
			return x->offset == y->offset;
		return 1;
	}
	case V_VECTOR:
		return vec_eq(a.u.vec, b.u.vec);
	case V_POINT:
		return pt_eq(a.u.pt, b.u.pt);
	default:
		return 0;
	}
}

static int str_cmp(struct vstr *a, struct vstr *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int r = memcmp(a->s, b->s, n);
	if (r)
		return r < 0 ? -1 : 1;
	return a->len < b->len ? -1 : a->len > b->len;
}

int v_cmp(struct qctx *c, struct val a, struct val b, int *r)
{
	(void)c;
	if (a.t == V_NULL || b.t == V_NULL)
		return 0;
	if (v_is_num(a) && v_is_num(b)) {
		if ((a.t == V_FLOAT && isnan(a.u.f)) ||
		    (b.t == V_FLOAT && isnan(b.u.f)))
			return 0;
		*r = num_cmp(a, b);
		return 1;
	}
	if (a.t != b.t)
		return 0;
	switch (a.t) {
	case V_BOOL:
		*r = a.u.b - b.u.b;
		return 1;
	case V_STR:
		*r = str_cmp(a.u.s, b.u.s);
		return 1;
	case V_TEMPORAL:
		if (a.u.tm->kind != b.u.tm->kind ||
		    a.u.tm->kind == LORA__TEMPORAL_KIND__TEMPORAL_DURATION)
			return 0;
		return tm_cmp(a.u.tm, b.u.tm, r);
	case V_LIST: {
		struct vlist *x = a.u.l, *y = b.u.l;
		for (size_t i = 0; i < x->n && i < y->n; i++) {
			int e = v_eq(c, x->v[i], y->v[i]);
			if (e == 1)
				continue;
			int rr;
			if (!v_cmp(c, x->v[i], y->v[i], &rr))
				return 0;
			*r = rr;
			return 1;
		}
		*r = x->n < y->n ? -1 : x->n > y->n;
		return 1;
	}
	default:
		return 0;
	}
}

/* orderability rank: map, node, rel, list, path, datetime..., string,
 * boolean, number, null (ascending order puts maps first). */
static int order_rank(struct val v)
{
	switch (v.t) {
	case V_MAP:
		return 0;
	case V_NODE:
		return 1;
	case V_REL:
		return 2;
	case V_LIST:
		return 3;
	case V_PATH:
		return 4;
	case V_POINT:
		return 5;
	case V_TEMPORAL:
		return 6;
	case V_STR:
		return 7;
	case V_BOOL:
		return 8;
	case V_INT:
	case V_FLOAT:
		return 9;
	case V_VECTOR:
		return 10;
	case V_BYTES:
		return 11;
	default:
		return 12;
	}
}

static int tm_kind_rank(int k)
{
	switch (k) {
	case LORA__TEMPORAL_KIND__TEMPORAL_DATETIME:
		return 0;
	case LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_DATETIME:
		return 1;
	case LORA__TEMPORAL_KIND__TEMPORAL_DATE:
		return 2;
	case LORA__TEMPORAL_KIND__TEMPORAL_TIME:
		return 3;
	case LORA__TEMPORAL_KIND__TEMPORAL_LOCAL_TIME:
		return 4;
	default:
		return 5;
	}
}

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int order_temporal(struct vtemp *a, struct vtemp *b)
{
	int ra = tm_kind_rank(a->kind), rb = tm_kind_rank(b->kind);
	if (ra != rb)
		return ra < rb ? -1 : 1;
	if (a->kind == LORA__TEMPORAL_KIND__TEMPORAL_DURATION) {
		int r = cmp_i64(a->months, b->months);
		if (!r)
			r = cmp_i64(a->ddays, b->ddays);
		if (!r)
			r = cmp_i64(a->secs, b->secs);
		if (!r)
			r = cmp_i64(a->dnanos, b->dnanos);
		return r;
	}
	int r = 0;
	tm_cmp(a, b, &r);
	if (!r)
		r = cmp_i64(a->offset, b->offset);
	return r;
}

int v_order(struct qctx *c, struct val a, struct val b)
{
	int ra = order_rank(a), rb = order_rank(b);
	if (ra != rb)
		return ra < rb ? -1 : 1;
	switch (a.t) {
	case V_NULL:
		return 0;
	case V_INT:
	case V_FLOAT: {
		int an = a.t == V_FLOAT && isnan(a.u.f);
		int bn = b.t == V_FLOAT && isnan(b.u.f);
		if (an || bn)
			return an - bn;
		return num_cmp(a, b);
	}
	case V_BOOL:
		return a.u.b - b.u.b;
	case V_STR:
		return str_cmp(a.u.s, b.u.s);
	case V_NODE:
	case V_REL:
		return a.u.id < b.u.id ? -1 : a.u.id > b.u.id;
	case V_TEMPORAL:
		return order_temporal(a.u.tm, b.u.tm);
	case V_POINT:
		return pt_order(a.u.pt, b.u.pt);
	case V_LIST: {
		struct vlist *x = a.u.l, *y = b.u.l;
		for (size_t i = 0; i < x->n && i < y->n; i++) {
			int r = v_order(c, x->v[i], y->v[i]);
			if (r)
				return r;
		}
		return x->n < y->n ? -1 : x->n > y->n;
	}
	case V_PATH: {
		struct vpath *x = a.u.p, *y = b.u.p;
		for (size_t i = 0; i <= x->n && i <= y->n; i++) {
			if (x->nodes[i] != y->nodes[i])
				return x->nodes[i] < y->nodes[i] ? -1 : 1;
			if (i < x->n && i < y->n && x->rels[i] != y->rels[i])
				return x->rels[i] < y->rels[i] ? -1 : 1;
		}
		return x->n < y->n ? -1 : x->n > y->n;
	}
	case V_MAP: {
		struct vmap *x = a.u.m, *y = b.u.m;
		if (x->n != y->n)
			return x->n < y->n ? -1 : 1;
		for (size_t i = 0; i < x->n; i++) {
			int r = strcmp(x->k[i], y->k[i]);
			if (r)
				return r < 0 ? -1 : 1;
			r = v_order(c, x->v[i], y->v[i]);
			if (r)
				return r;
		}
		return 0;
	}
	default:
		return 0;
	}
}

int v_equiv(struct qctx *c, struct val a, struct val b)
{
	if (a.t == V_STR && b.t == V_STR) /* grouping keys: the common case */
		return a.u.s->len == b.u.s->len &&
		       !memcmp(a.u.s->s, b.u.s->s, a.u.s->len);
	if (a.t == V_NULL || b.t == V_NULL)
		return a.t == b.t;
	if (a.t == V_LIST && b.t == V_LIST) {
		if (a.u.l->n != b.u.l->n)
			return 0;
		for (size_t i = 0; i < a.u.l->n; i++)
			if (!v_equiv(c, a.u.l->v[i], b.u.l->v[i]))
				return 0;
		return 1;
	}
	if (a.t == V_MAP && b.t == V_MAP) {
		if (a.u.m->n != b.u.m->n)
			return 0;
		for (size_t i = 0; i < a.u.m->n; i++) {
			struct val *o = vmap_get(b.u.m, a.u.m->k[i]);
			if (!o || !v_equiv(c, a.u.m->v[i], *o))
				return 0;
		}
		return 1;
	}
	if (a.t == V_FLOAT && b.t == V_FLOAT && isnan(a.u.f) && isnan(b.u.f))
		return 1;
	return v_eq(c, a, b) == 1;
}

static uint64_t mix(uint64_t h, uint64_t x)
{
	h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

/* ---- copies and depth ---------------------------------------------------- */

static struct val copy_d(struct qctx *c, struct val v, int depth);

static struct vmap *copy_map(struct qctx *c, const struct vmap *m, int depth)
{
	/* m's keys are distinct (vmap_put keeps them so): laid out as they
	 * are, without vmap_put's search per key, in the room vmap_put
	 * expects for n entries (4, or the power of two at or above n) */
	size_t cap = 4;
	while (cap < m->n)
		cap *= 2;
	struct vmap *r = ar_alloc(c, sizeof(*r));
	r->k = ar_alloc(c, sizeof(char *) * cap);
	r->v = ar_alloc(c, sizeof(struct val) * cap);
	for (size_t i = 0; i < m->n; i++) {
		r->k[i] = ar_strdup(c, m->k[i]);
		r->v[i] = copy_d(c, m->v[i], depth + 1);
		r->n = i + 1;
	}
	return r;
}

static struct val copy_d(struct qctx *c, struct val v, int depth)
{
	if (depth > QRY_VALUE_DEPTH_MAX)
		qerr(c, LORA_ELIMIT,
		     "ValueTooDeep: lists and maps nested more than %d deep",
		     QRY_VALUE_DEPTH_MAX);
	struct val r = v;
	switch (v.t) {
	case V_STR:
	case V_BYTES:
		r = v_str(c, v.u.s->s, v.u.s->len);
		r.t = v.t;
		return r;
	case V_LIST:
		r = v_list(c, v.u.l->n);
		for (size_t i = 0; i < v.u.l->n; i++)
			r.u.l->v[i] = copy_d(c, v.u.l->v[i], depth + 1);
		return r;
	case V_MAP:
		r.u.m = copy_map(c, v.u.m, depth);
		return r;
	case V_PATH: {
		struct vpath *p = ar_alloc(c, sizeof(*p));
		p->n = v.u.p->n;
		p->nodes = ar_alloc(c, sizeof(uint64_t) * (p->n + 1));
		p->rels = ar_alloc(c, sizeof(uint64_t) * (p->n + 1));
		memcpy(p->nodes, v.u.p->nodes, sizeof(uint64_t) * (p->n + 1));
		if (p->n)
			memcpy(p->rels, v.u.p->rels, sizeof(uint64_t) * p->n);
		r.u.p = p;
		return r;
	}
	case V_TEMPORAL: {
		struct vtemp *t = ar_alloc(c, sizeof(*t));
		*t = *v.u.tm;
		if (t->zone)
			t->zone = ar_strdup(c, t->zone);
		r.u.tm = t;
		return r;
	}
	case V_POINT: {
		struct vpoint *p = ar_alloc(c, sizeof(*p));
		*p = *v.u.pt;
		r.u.pt = p;
		return r;
	}
	case V_VECTOR: {
		struct vvec *x = ar_alloc(c, sizeof(*x));
		*x = *v.u.vec;
		x->d = ar_alloc(c, sizeof(double) * (x->dim + 1));
		memcpy(x->d, v.u.vec->d, sizeof(double) * x->dim);
		r.u.vec = x;
		return r;
	}
	default:
		return v;
	}
}

struct val v_copy(struct qctx *c, struct val v)
{
	return copy_d(c, v, 0);
}

struct val *row_copy_deep(struct qctx *c, const struct val *row)
{
	struct val *r = ar_alloc(c, sizeof(struct val) * (size_t)c->nslots);
	for (int i = 0; i < c->nslots; i++)
		r[i] = copy_d(c, row[i], 0);
	return r;
}

static int depth_of(struct val v, int limit)
{
	if (limit < 0)
		return 1;
	int d = 0;
	if (v.t == V_LIST)
		for (size_t i = 0; i < v.u.l->n && d <= limit; i++) {
			int k = depth_of(v.u.l->v[i], limit - 1);
			d = k > d ? k : d;
		}
	else if (v.t == V_MAP)
		for (size_t i = 0; i < v.u.m->n && d <= limit; i++) {
			int k = depth_of(v.u.m->v[i], limit - 1);
			d = k > d ? k : d;
		}
	else
		return 0;
	return d + 1;
}

void v_check_depth(struct qctx *c, struct val v)
{
	if (v.t != V_LIST && v.t != V_MAP)
		return;
	if (depth_of(v, QRY_VALUE_DEPTH_MAX) > QRY_VALUE_DEPTH_MAX)
		qerr(c, LORA_ELIMIT,
		     "ValueTooDeep: lists and maps nested more than %d deep",
		     QRY_VALUE_DEPTH_MAX);
}

uint64_t v_hash(struct val v)
{
	switch (v.t) {
	case V_NULL:
		return 1;
	case V_BOOL:
		return 2 + (uint64_t)v.u.b;
	case V_INT:
	case V_FLOAT: {
		double d = v_num(v);
		/* the integers that round to 2^63 as a double, which no float
		 * equals (converting 2^63 back to int64_t is undefined) */
		if (v.t == V_INT && d >= 0x1p63)
			return mix(5, (uint64_t)v.u.i);
		if (d == floor(d) && fabs(d) < 9e18)
			return mix(5, (uint64_t)(int64_t)d);
		uint64_t u;
		memcpy(&u, &d, 8);
		return mix(6, u);
	}
	case V_STR: {
		uint64_t h = 1469598103934665603ull;
		for (size_t i = 0; i < v.u.s->len; i++)
			h = (h ^ (uint8_t)v.u.s->s[i]) * 1099511628211ull;
		return h;
	}
	case V_LIST: {
		uint64_t h = 7;
		for (size_t i = 0; i < v.u.l->n; i++)
			h = mix(h, v_hash(v.u.l->v[i]));
		return h;
	}
	case V_MAP: {
		uint64_t h = 8;
		for (size_t i = 0; i < v.u.m->n; i++)
			h += v_hash(v.u.m->v[i]);
		return h;
	}
	case V_NODE:
	case V_REL:
		return mix(v.t, v.u.id);
	case V_PATH:
		return mix(11, v.u.p->n);
	case V_TEMPORAL:
		return mix(12, (uint64_t)(v.u.tm->days * 31 + v.u.tm->nanos +
		                          v.u.tm->months + v.u.tm->secs));
	case V_POINT:
		return mix(13, pt_hash(v.u.pt));
	default:
		return 99;
	}
}

/* Java-like shortest double text: 1.0, 0.1, 1.0E20, NaN, Infinity */
void fmt_double(double d, struct lora_buf *b)
{
	if (isnan(d)) {
		lora_buf_puts(b, "NaN");
		return;
	}
	if (isinf(d)) {
		lora_buf_puts(b, d < 0 ? "-Infinity" : "Infinity");
		return;
	}
	char tmp[64];
	for (int p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	/* tmp = d.ddddde[+-]XX */
	char mant[40];
	int ex = 0;
	char *e = strchr(tmp, 'e');
	size_t ml = (size_t)(e - tmp);
	memcpy(mant, tmp, ml);
	mant[ml] = 0;
	ex = atoi(e + 1);
	int neg = mant[0] == '-';
	char digits[40];
	size_t nd = 0;
	for (char *p = mant + neg; *p; p++)
		if (*p >= '0' && *p <= '9')
			digits[nd++] = *p;
	digits[nd] = 0;
	if (neg)
		lora_buf_putc(b, '-');
	if (ex >= -3 && ex < 7) {
		if (ex < 0) {
			lora_buf_puts(b, "0.");
			for (int i = 0; i < -ex - 1; i++)
				lora_buf_putc(b, '0');
			lora_buf_puts(b, digits);
		} else {
			for (int i = 0; i <= ex; i++)
				lora_buf_putc(b,
				              (size_t)i < nd ? digits[i] : '0');
			lora_buf_putc(b, '.');
			if ((size_t)ex + 1 < nd)
				lora_buf_puts(b, digits + ex + 1);
			else
				lora_buf_putc(b, '0');
		}
		return;
	}
	lora_buf_putc(b, digits[0]);
	lora_buf_putc(b, '.');
	lora_buf_puts(b, nd > 1 ? digits + 1 : "0");
	lora_buf_printf(b, "E%d", ex);
}

static void repr_str(struct vstr *s, struct lora_buf *b)
{
	lora_buf_putc(b, '\'');
	for (size_t i = 0; i < s->len; i++) {
		char ch = s->s[i];
		if (ch == '\'' || ch == '\\')
			lora_buf_putc(b, '\\');
		lora_buf_putc(b, ch);
	}
	lora_buf_putc(b, '\'');
}

static void repr_props(struct qctx *c, struct vmap *m, struct lora_buf *b,
                       int space)
{
	if (!m || m->n == 0)
		return;
	lora_buf_puts(b, space ? " {" : "{");
	for (size_t i = 0; i < m->n; i++) {
		lora_buf_printf(b, "%s%s: ", i ? ", " : "", m->k[i]);
		v_repr(c, m->v[i], b);
	}
	lora_buf_putc(b, '}');
}

static void repr_node(struct qctx *c, uint64_t id, struct lora_buf *b)
{
	struct gnode *n = g_node_read(c, id);
	lora_buf_putc(b, '(');
	if (n) {
		for (size_t i = 0; i < n->nlabels; i++)
			lora_buf_printf(b, ":%s", n->labels[i]);
		struct vmap *props = g_node_props(c, n);
		if (props && props->n)
			repr_props(c, props, b, n->nlabels > 0);
	}
	lora_buf_putc(b, ')');
}

static void repr_rel(struct qctx *c, uint64_t id, struct lora_buf *b)
{
	struct gedge *e = g_edge_read(c, id);
	lora_buf_putc(b, '[');
	if (e) {
		lora_buf_printf(b, ":%s", e->type);
		repr_props(c, e->props, b, 1);
	}
	lora_buf_putc(b, ']');
}

static void repr_path(struct qctx *c, struct vpath *p, struct lora_buf *b)
{
	lora_buf_putc(b, '<');
	repr_node(c, p->nodes[0], b);
	for (size_t i = 0; i < p->n; i++) {
		struct gedge *e = g_edge_shallow(c, p->rels[i]);
		int fwd = !e || e->src == p->nodes[i];
		lora_buf_puts(b, fwd ? "-" : "<-");
		repr_rel(c, p->rels[i], b);
		lora_buf_puts(b, fwd ? "->" : "-");
		repr_node(c, p->nodes[i + 1], b);
	}
	lora_buf_putc(b, '>');
}

static void repr_vec(struct vvec *v, struct lora_buf *b)
{
	lora_buf_putc(b, '[');
	for (uint32_t i = 0; i < v->dim; i++) {
		if (i)
			lora_buf_puts(b, ", ");
		if (v->ctype >= LORA__VECTOR_COORD_TYPE__VECTOR_INTEGER64)
			lora_buf_printf(b, "%lld", (long long)v->d[i]);
		else
			fmt_double(v->d[i], b);
	}
	lora_buf_putc(b, ']');
}

static void repr_inner(struct qctx *c, struct val v, struct lora_buf *b,
                       int quote)
{
	switch (v.t) {
	case V_NULL:
		lora_buf_puts(b, "null");
		break;
	case V_BOOL:
		lora_buf_puts(b, v.u.b ? "true" : "false");
		break;
	case V_INT:
		lora_buf_printf(b, "%lld", (long long)v.u.i);
		break;
	case V_FLOAT:
		fmt_double(v.u.f, b);
		break;
	case V_STR:
		if (quote)
			repr_str(v.u.s, b);
		else
			lora_buf_append(b, v.u.s->s, v.u.s->len);
		break;
	case V_LIST:
		lora_buf_putc(b, '[');
		for (size_t i = 0; i < v.u.l->n; i++) {
			if (i)
				lora_buf_puts(b, ", ");
			repr_inner(c, v.u.l->v[i], b, 1);
		}
		lora_buf_putc(b, ']');
		break;
	case V_MAP:
		lora_buf_putc(b, '{');
		for (size_t i = 0; i < v.u.m->n; i++) {
			lora_buf_printf(b, "%s%s: ", i ? ", " : "",
			                v.u.m->k[i]);
			repr_inner(c, v.u.m->v[i], b, 1);
		}
		lora_buf_putc(b, '}');
		break;
	case V_NODE:
		repr_node(c, v.u.id, b);
		break;
	case V_REL:
		repr_rel(c, v.u.id, b);
		break;
	case V_PATH:
		repr_path(c, v.u.p, b);
		break;
	case V_TEMPORAL:
		if (quote)
			lora_buf_putc(b, '\'');
		tm_format(v.u.tm, b);
		if (quote)
			lora_buf_putc(b, '\'');
		break;
	case V_VECTOR:
		repr_vec(v.u.vec, b);
		break;
	case V_POINT:
		pt_format(v.u.pt, b);
		break;
	default:
		lora_buf_puts(b, "<bytes>");
	}
}

void v_repr(struct qctx *c, struct val v, struct lora_buf *b)
{
	repr_inner(c, v, b, 1);
}

void v_tostring(struct qctx *c, struct val v, struct lora_buf *b)
{
	repr_inner(c, v, b, 0);
}
