/* ncache.c - in-memory copies of the node side of the state, for scans:
 * the node table (every node record, in id order) and vector columns
 * (the float32 vectors of one (label, key), contiguous).
 *
 * Why: a label scan that reads a property of every node costs one RocksDB
 * iterator step per node (about half of `MATCH (p:Person) RETURN p.city,
 * count(*)` at 100,000 people), and an exact vector top-k spends most of
 * its time stepping the vectors CF and copying coordinates out, not
 * scoring. Both read the same bytes again and again while nothing changes.
 *
 * Validity: a store-wide generation counter, `nc_gen`, counts the batches
 * that changed nodes or vectors (or created or deleted relationships while
 * a relationship vector index exists: its graph changed). sto_apply makes it
 * odd just before its RocksDB write and even again after
 * (sto_ncache_write_begin/_end), so a view that reads the same even value
 * before and after taking its snapshot knows its snapshot is exactly
 * "generation g" (sto_ncache_view). A copy is built from a view of generation g
 * and serves only views of generation g: it is never patched, a later batch
 * makes it stale and the next complete scan builds a new one. A view whose
 * generation is unknown (a batch was being written while it was opened) neither
 * uses nor builds copies.
 *
 * Building costs no extra pass: the node table is filled by
 * sto_view_next_node as it walks the nodes CF from the first node to the
 * last (a scan stopped early, by LIMIT or an error, throws its copy away),
 * and a vector column by the first vector top-k of its generation, which
 * copies the coordinates out anyway. Memory: at most
 * STO_NODE_TABLE_BYTES_MAX for the table and STO_VCOL_BYTES_MAX for all
 * vector columns together; a copy that would be larger is not made (the
 * scans then read RocksDB as before). Copies are reference-counted: a
 * view holds the ones it used until it closes, so replacing a copy never
 * pulls it from under a running statement.
 */
#include <math.h>
#include <string.h>

#include "stoInt.h"

/* ---- generation ------------------------------------------------------- */

int sto_ncache_write_begin(struct sto_store *s,
                           const Lora__MutationBatch *batch)
{
	int touches = 0;
	for (size_t i = 0; i < batch->n_mutations && !touches; i++) {
		const Lora__Mutation *m = batch->mutations[i];
		touches = m && m->op_case != LORA__MUTATION__OP_CREATE_EDGE &&
		          m->op_case != LORA__MUTATION__OP_DELETE_EDGE &&
		          m->op_case != LORA__MUTATION__OP_CREATE_INDEX &&
		          m->op_case != LORA__MUTATION__OP_DROP_INDEX;
	}
	/* relationships of a vector index's type are in a graph: views of
	 * the generation before must not search it (hnsw_store.c) */
	int edges = 0;
	for (size_t i = 0; i < batch->n_mutations && !touches && !edges; i++) {
		const Lora__Mutation *m = batch->mutations[i];
		edges = m && (m->op_case == LORA__MUTATION__OP_CREATE_EDGE ||
		              m->op_case == LORA__MUTATION__OP_DELETE_EDGE);
	}
	touches = touches || (edges && sto_hnsw_has_edge_index(s));
	if (touches)
		atomic_fetch_add(&s->nc_gen, 1); /* odd: being written */
	return touches;
}

void sto_ncache_write_end(struct sto_store *s, int touches)
{
	if (touches)
		atomic_fetch_add(&s->nc_gen, 1);
}

/* ---- node table ------------------------------------------------------- */

struct sto_ntab {
	_Atomic int refs;
	uint64_t gen;
	size_t n, cap;
	uint64_t *ids; /* ascending */
	uint32_t *off; /* record i is data[off[i] .. off[i+1]) */
	uint8_t *data;
	size_t len, data_cap;
	uint32_t *pos; /* pos[id - ids[0]]: index + 1, 0 absent; or NULL */
	size_t npos;
};

static void ntab_free(struct sto_ntab *t)
{
	if (!t)
		return;
	lora_free(t->ids);
	lora_free(t->off);
	lora_free(t->data);
	lora_free(t->pos);
	lora_free(t);
}

void sto_ntab_release(struct sto_ntab *t)
{
	if (t && atomic_fetch_sub(&t->refs, 1) == 1)
		ntab_free(t);
}

static size_t ntab_bytes(const struct sto_ntab *t)
{
	return t->cap * (sizeof(uint64_t) + sizeof(uint32_t)) + t->data_cap;
}

/* Grows an array of elem-byte items to hold at least want; 0 or ENOMEM. */
static int grow(void **p, size_t *cap, size_t want, size_t elem)
{
	if (want <= *cap)
		return 0;
	size_t n = *cap ? *cap : 1024;
	while (n < want)
		n *= 2;
	void *q = lora_realloc(*p, n * elem);
	if (!q)
		return LORA_ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

struct sto_ntab *sto_ntab_build_new(uint64_t gen)
{
	struct sto_ntab *t = lora_calloc(1, sizeof(*t));
	if (t)
		t->gen = gen;
	return t;
}

int sto_ntab_build_add(struct sto_ntab *t, uint64_t id, const uint8_t *p,
                       size_t len)
{
	size_t ocap = t->cap;
	if (t->n && id <= t->ids[t->n - 1])
		return LORA_ECORRUPT; /* keys come in order */
	if (grow((void **)&t->ids, &t->cap, t->n + 1, sizeof(uint64_t)))
		return LORA_ENOMEM;
	if (t->cap != ocap) {
		uint32_t *o =
		    lora_realloc(t->off, (t->cap + 1) * sizeof(uint32_t));
		if (!o)
			return LORA_ENOMEM;
		t->off = o;
	}
	if (grow((void **)&t->data, &t->data_cap, t->len + len, 1))
		return LORA_ENOMEM;
	if (ntab_bytes(t) > STO_NODE_TABLE_BYTES_MAX)
		return LORA_ELIMIT;
	memcpy(t->data + t->len, p, len);
	t->ids[t->n] = id;
	t->off[t->n] = (uint32_t)t->len;
	t->n++;
	t->len += len;
	t->off[t->n] = (uint32_t)t->len;
	return 0;
}

/* Ids close to dense (at most twice the count apart) get a direct map. */
static void ntab_index(struct sto_ntab *t)
{
	if (!t->n)
		return;
	uint64_t span = t->ids[t->n - 1] - t->ids[0] + 1;
	if (span > 2 * (uint64_t)t->n)
		return; /* binary search */
	t->pos = lora_calloc((size_t)span, sizeof(uint32_t));
	if (!t->pos)
		return; /* still correct: binary search */
	t->npos = (size_t)span;
	for (size_t i = 0; i < t->n; i++)
		t->pos[t->ids[i] - t->ids[0]] = (uint32_t)i + 1;
}

void sto_ntab_publish(struct sto_store *s, struct sto_ntab *t)
{
	ntab_index(t);
	atomic_store(&t->refs, 1);
	pthread_mutex_lock(&s->nc_mu);
	struct sto_ntab *old = NULL;
	if (!s->ntab || s->ntab->gen < t->gen) {
		old = s->ntab;
		s->ntab = t;
		t = NULL;
	}
	pthread_mutex_unlock(&s->nc_mu);
	sto_ntab_release(old);
	if (t)
		ntab_free(t); /* one as new is there already */
}

struct sto_ntab *sto_ntab_get(struct sto_store *s, uint64_t gen)
{
	struct sto_ntab *t = NULL;
	pthread_mutex_lock(&s->nc_mu);
	if (s->ntab && s->ntab->gen == gen) {
		t = s->ntab;
		atomic_fetch_add(&t->refs, 1);
	}
	pthread_mutex_unlock(&s->nc_mu);
	return t;
}

size_t sto_ntab_count(const struct sto_ntab *t)
{
	return t->n;
}

size_t sto_ntab_find_ge(const struct sto_ntab *t, uint64_t id)
{
	if (t->pos && id >= t->ids[0] && id - t->ids[0] < t->npos) {
		uint32_t p = t->pos[id - t->ids[0]];
		if (p)
			return p - 1;
	}
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		if (t->ids[m] < id)
			lo = m + 1;
		else
			hi = m;
	}
	return lo;
}

uint64_t sto_ntab_id(const struct sto_ntab *t, size_t i, const uint8_t **p,
                     size_t *len)
{
	*p = t->data + t->off[i];
	*len = t->off[i + 1] - t->off[i];
	return t->ids[i];
}

/* ---- vector columns --------------------------------------------------- */

struct sto_vcol {
	_Atomic int refs;
	uint64_t gen;
	uint32_t label, key; /* label UINT32_MAX: all nodes */
	int usable;          /* 0: the vectors are not all float32 of dim */
	struct sto_vcol_ref ref;
	size_t bytes;
};

static void vcol_free(struct sto_vcol *c)
{
	if (!c)
		return;
	lora_free((void *)c->ref.ids);
	lora_free((void *)c->ref.rows);
	lora_free((void *)c->ref.sumsq);
	lora_free(c);
}

void sto_vcol_release(struct sto_vcol *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1)
		vcol_free(c);
}

/* Under nc_mu: bytes of all published columns. */
static size_t vcols_bytes(struct sto_store *s)
{
	size_t b = 0;
	for (int i = 0; i < STO_VCOLS_MAX; i++)
		b += s->vcol[i] ? s->vcol[i]->bytes : 0;
	return b;
}

struct sto_vcol *sto_vcol_get(struct sto_store *s, uint64_t gen, uint32_t label,
                              uint32_t key)
{
	struct sto_vcol *c = NULL;
	pthread_mutex_lock(&s->nc_mu);
	for (int i = 0; i < STO_VCOLS_MAX && !c; i++) {
		struct sto_vcol *x = s->vcol[i];
		if (x && x->gen == gen && x->label == label && x->key == key) {
			c = x;
			atomic_fetch_add(&c->refs, 1);
		}
	}
	pthread_mutex_unlock(&s->nc_mu);
	return c;
}

/* Puts c in the slot of its (label, key), or of a stale or the oldest
 * column; drops it when the columns would exceed STO_VCOL_BYTES_MAX. */
static void vcol_publish(struct sto_store *s, struct sto_vcol *c)
{
	struct sto_vcol *old = NULL;
	pthread_mutex_lock(&s->nc_mu);
	int slot = -1;
	for (int i = 0; i < STO_VCOLS_MAX; i++) {
		struct sto_vcol *x = s->vcol[i];
		if (!x || (x->label == c->label && x->key == c->key) ||
		    x->gen < c->gen) {
			slot = i;
			if (!x || (x->label == c->label && x->key == c->key))
				break;
		}
	}
	if (slot < 0)
		slot = 0;
	size_t other =
	    vcols_bytes(s) - (s->vcol[slot] ? s->vcol[slot]->bytes : 0);
	if (other + c->bytes <= STO_VCOL_BYTES_MAX &&
	    (!s->vcol[slot] || s->vcol[slot]->gen <= c->gen)) {
		old = s->vcol[slot];
		s->vcol[slot] = c;
		atomic_fetch_add(&c->refs, 1); /* the store's reference */
	}
	pthread_mutex_unlock(&s->nc_mu);
	sto_vcol_release(old);
}

static int vcol_fill_scan(struct sto_view *v, const char *label,
                          const char *key, struct sto_vcol *c,
                          struct sto_iter **itp);

/* Whether the scan that builds the column of (label, key) should leave
 * the block cache alone, judged by the column of it that the store
 * still holds from an earlier generation: yes when there is none (the
 * first build; the vectors are then read from the cache later only by a
 * rebuild) or when it was usable and at least 1/STO_VCOL_NOFILL_SHARE of
 * the block cache; no when it was small (after a write, every query
 * rebuilds the column: its blocks are cheaper read from the cache) or
 * unusable (the fallback scan reads the same blocks right after, and
 * fills the cache with them anyway). */
static int vcol_nofill(struct sto_store *s, uint32_t label, uint32_t key)
{
	int nofill = 1;
	size_t cap = rocksdb_cache_get_capacity(s->cache);
	pthread_mutex_lock(&s->nc_mu);
	for (int i = 0; i < STO_VCOLS_MAX; i++) {
		struct sto_vcol *x = s->vcol[i];
		if (x && x->label == label && x->key == key)
			nofill = x->usable &&
			         x->bytes >= cap / STO_VCOL_NOFILL_SHARE;
	}
	pthread_mutex_unlock(&s->nc_mu);
	return nofill;
}

/* Fills c from the view's vector scan; 0 also when the vectors turn out
 * unusable (c->usable 0). The scan leaves the block cache alone when
 * vcol_nofill says so: the column serves the vectors from now on, their
 * blocks would only push the queries' working set out (51 MB at
 * 100,000 x 128-d). */
static int vcol_fill(struct sto_view *v, const char *label, const char *key,
                     struct sto_vcol *c)
{
	struct sto_iter *it = NULL;
	if (!v->ro_bulk && (v->ro_bulk = rocksdb_readoptions_create())) {
		rocksdb_readoptions_set_snapshot(v->ro_bulk, v->snap);
		rocksdb_readoptions_set_fill_cache(v->ro_bulk, 0);
	}
	v->bulk = vcol_nofill(v->s, c->label, c->key);
	int rv = vcol_fill_scan(v, label, key, c, &it);
	v->bulk = 0;
	sto_iter_free(it);
	return rv;
}

/* vcol_fill's scan; *it for the caller to free */
static int vcol_fill_scan(struct sto_view *v, const char *label,
                          const char *key, struct sto_vcol *c,
                          struct sto_iter **itp)
{
	int rv = sto_view_scan_vectors_raw(v, label, key, itp);
	struct sto_iter *it = *itp;
	if (rv)
		return rv;
	size_t cap = 0, rcap = 0, scap = 0;
	uint64_t *ids = NULL;
	float *rows = NULL, *row = NULL;
	double *sumsq = NULL;
	struct sto_item item;
	int done = 0;
	c->usable = 1;
	while (!(rv = sto_iter_next(it, &item, &done)) && !done) {
		struct sto_vec_ref r;
		rv = sto_vector_ref(item.vec_bytes, item.vec_len, &r);
		if (rv)
			break;
		if (!c->ref.n)
			c->ref.dim = r.dimension;
		if (!r.plain || r.n_f32 != c->ref.dim ||
		    r.coord_type != LORA__VECTOR_COORD_TYPE__VECTOR_FLOAT32 ||
		    r.dimension != c->ref.dim || !c->ref.dim) {
			c->usable = 0;
			break;
		}
		size_t n = c->ref.n, dim = c->ref.dim;
		size_t blk = STO_VCOL_BLOCK * dim, nb = n / STO_VCOL_BLOCK + 1;
		c->bytes = nb * (blk * sizeof(float) + 16 * STO_VCOL_BLOCK);
		if (c->bytes > STO_VCOL_BYTES_MAX) {
			c->usable = 0;
			break;
		}
		if (grow((void **)&ids, &cap, n + 1, sizeof(*ids)) ||
		    grow((void **)&rows, &rcap, nb * blk, sizeof(*rows)) ||
		    grow((void **)&sumsq, &scap, nb * STO_VCOL_BLOCK,
		         sizeof(*sumsq)) ||
		    (!row && !(row = lora_malloc(dim * sizeof(float))))) {
			rv = LORA_ENOMEM;
			break;
		}
		size_t j = n % STO_VCOL_BLOCK;
		float *b0 = rows + (nb - 1) * blk;
		if (!j) { /* a new block: the rows past the last are zeros */
			memset(b0, 0, blk * sizeof(float));
			memset(sumsq + n, 0, STO_VCOL_BLOCK * sizeof(*sumsq));
		}
		sto_vec_f32(&r, row);
		double b = 0; /* in coordinate order: the bits a scan gets */
		for (size_t i = 0; i < dim; i++) {
			double x = row[i];
			b += x * x;
			b0[i * STO_VCOL_BLOCK + j] = row[i];
		}
		ids[n] = item.node_id;
		sumsq[n] = b;
		c->ref.n = n + 1;
	}
	lora_free(row);
	c->ref.ids = ids;
	c->ref.rows = rows;
	c->ref.sumsq = sumsq;
	if (!c->usable) { /* keep only the verdict */
		lora_free(ids);
		lora_free(rows);
		lora_free(sumsq);
		memset(&c->ref, 0, sizeof c->ref);
		c->bytes = 0;
	}
	return rv;
}

int sto_view_vector_column(struct sto_view *v, const char *label,
                           const char *key, struct sto_vcol_ref *out)
{
	memset(out, 0, sizeof *out);
	if (v->ngen == STO_NGEN_UNKNOWN)
		return LORA_ENOTFOUND;
	uint64_t nl = 0, na = 1;
	if (label && !sto_view_count_nodes(v, label, &nl) &&
	    !sto_view_count_nodes(v, NULL, &na) && nl == na)
		label = NULL; /* every node has it: the column of all nodes */
	int64_t lt =
	    label ? sto_tok_find(v->s, STO_TOK_LABEL, label, strlen(label))
	          : (int64_t)UINT32_MAX;
	int64_t kt = sto_tok_find(v->s, STO_TOK_KEY, key, strlen(key));
	if (lt < 0 || kt < 0)
		return LORA_ENOTFOUND; /* no vectors: the scan is empty anyway
		                        */
	for (unsigned i = 0; i < v->nvcols; i++)
		if (v->vcols[i]->label == lt && v->vcols[i]->key == kt) {
			*out = v->vcols[i]->ref;
			return v->vcols[i]->usable ? 0 : LORA_ENOTFOUND;
		}
	if (v->nvcols == STO_VIEW_VCOLS)
		return LORA_ENOTFOUND;
	struct sto_vcol *c =
	    sto_vcol_get(v->s, v->ngen, (uint32_t)lt, (uint32_t)kt);
	if (!c) {
		c = lora_calloc(1, sizeof(*c));
		if (!c)
			return LORA_ENOMEM;
		c->gen = v->ngen;
		c->label = (uint32_t)lt;
		c->key = (uint32_t)kt;
		atomic_store(&c->refs, 1);
		int rv = vcol_fill(v, label, key, c);
		if (rv) {
			sto_vcol_release(c);
			return rv;
		}
		vcol_publish(v->s, c);
		/* the scan's blocks and the column's outgrown arrays went
		 * through malloc: give them back to the system */
		if (c->bytes >= STO_VCOL_TRIM_BYTES)
			lora_mem_trim();
	}
	v->vcols[v->nvcols++] = c;
	*out = c->ref;
	return c->usable ? 0 : LORA_ENOTFOUND;
}

/* index of id in the column, or c->n; tries after the last hit first */
static size_t vcol_find(struct sto_view *v, const struct sto_vcol_ref *c,
                        uint64_t id)
{
	size_t h = v->vcur;
	if (h < c->n && c->ids[h] == id)
		return h;
	if (h + 1 < c->n && c->ids[h + 1] == id)
		return h + 1;
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		if (c->ids[m] < id)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < c->n && c->ids[lo] == id ? lo : c->n;
}

int sto_ncache_node_vector(struct sto_view *v, uint64_t id, const char *key,
                           uint32_t tok, const float **row, uint32_t *dim)
{
	const struct sto_vcol *c = NULL;
	for (unsigned i = 0; i < v->nvcols && !c; i++)
		if (v->vcols[i]->label == UINT32_MAX && v->vcols[i]->key == tok)
			c = v->vcols[i];
	if (!c && ++v->vec_reads >= STO_VCOL_PROP_READS &&
	    v->nvcols < STO_VIEW_VCOLS) {
		struct sto_vcol_ref r;
		if (sto_view_vector_column(v, NULL, key, &r) != LORA_ENOMEM)
			for (unsigned i = 0; i < v->nvcols && !c; i++)
				if (v->vcols[i]->label == UINT32_MAX &&
				    v->vcols[i]->key == tok)
					c = v->vcols[i];
	}
	if (!c || !c->usable)
		return -1;
	size_t i = vcol_find(v, &c->ref, id);
	if (i == c->ref.n)
		return 0;
	v->vcur = i;
	/* coordinate d at (*row)[d * STO_VCOL_BLOCK] */
	*row = c->ref.rows +
	       (i / STO_VCOL_BLOCK) * STO_VCOL_BLOCK * c->ref.dim +
	       i % STO_VCOL_BLOCK;
	*dim = c->ref.dim;
	return 1;
}

void sto_vcol_row(const struct sto_vcol_ref *c, size_t i, float *out)
{
	const float *b =
	    c->rows + (i / STO_VCOL_BLOCK) * STO_VCOL_BLOCK * c->dim;
	size_t j = i % STO_VCOL_BLOCK;
	for (uint32_t d = 0; d < c->dim; d++)
		out[d] = b[d * STO_VCOL_BLOCK + j];
}

/* ---- store and view --------------------------------------------------- */

void sto_ncache_init(struct sto_store *s)
{
	pthread_mutex_init(&s->nc_mu, NULL);
	atomic_store(&s->nc_gen, 0);
}

void sto_ncache_free(struct sto_store *s)
{
	sto_ntab_release(s->ntab);
	s->ntab = NULL;
	for (int i = 0; i < STO_VCOLS_MAX; i++) {
		sto_vcol_release(s->vcol[i]);
		s->vcol[i] = NULL;
	}
	pthread_mutex_destroy(&s->nc_mu);
}

uint64_t sto_ncache_gen_before(struct sto_store *s)
{
	return atomic_load(&s->nc_gen);
}

uint64_t sto_ncache_gen_after(struct sto_store *s, uint64_t before)
{
	uint64_t after = atomic_load(&s->nc_gen);
	return after == before && !(before & 1) ? before : STO_NGEN_UNKNOWN;
}

void sto_ntab_discard(struct sto_ntab *t)
{
	ntab_free(t);
}

void sto_ncache_view_close(struct sto_view *v)
{
	sto_ntab_release(v->ntab);
	ntab_free(v->nbuild);
	for (unsigned i = 0; i < v->nvcols; i++)
		sto_vcol_release(v->vcols[i]);
}

void sto_ncache_bytes(struct sto_store *s, uint64_t *node_table,
                      uint64_t *vector_columns)
{
	pthread_mutex_lock(&s->nc_mu);
	*node_table = s->ntab ? ntab_bytes(s->ntab) + s->ntab->npos * 4 : 0;
	*vector_columns = vcols_bytes(s);
	pthread_mutex_unlock(&s->nc_mu);
}
