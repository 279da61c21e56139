/* import_write.c - the output side of the bulk import: one SST file per
 * column family (RocksDB's SstFileWriter), the column families built at
 * the end from what the rows left in memory (adjacency chunks, label and
 * property index, meta), ingestion into the new store, and the temporary
 * directory that is renamed into place or removed.
 *
 * Keys must reach an SstFileWriter in ascending order. Node records,
 * vectors and edge records arrive that way from the rows (ids ascend, and
 * every node vector precedes every edge vector). The adjacency is written
 * node by node, incoming ('I') before outgoing ('O'); the index CF label
 * by label ('L' keys), then the sorted property keys ('P'); meta sorted.
 * Every file is ingested into an empty column family, so it lands in the
 * last level and reads are served from one sorted run right away.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "importInt.h"
#include "sto_testing.h"

/* ---- SST files ---- */

static int sst_open(struct sto_import *im, int cf, char *errmsg)
{
	struct imp_sst *t = &im->sst[cf];
	struct lora_buf p = {0};
	if (lora_buf_printf(&p, "%s/%s.sst", im->sstdir, sto_cf_names[cf]))
		return LORA_ENOMEM;
	t->path = lora_buf_take(&p);
	t->w = rocksdb_sstfilewriter_create(
	    im->env, cf == STO_CF_ADJ ? im->s->adj_opts : im->s->opts);
	char *err = NULL;
	rocksdb_sstfilewriter_open(t->w, t->path, &err);
	return err ? sto_rocks_err(err, errmsg, t->path) : 0;
}

/* The put itself (on the writer thread when there is one). */
static int sst_put(struct sto_import *im, int cf, const char *k, size_t klen,
                   const char *v, size_t vlen, char *errmsg)
{
	struct imp_sst *t = &im->sst[cf];
	int rv = t->w ? 0 : sst_open(im, cf, errmsg);
	if (rv)
		return rv;
	char *err = NULL;
	rocksdb_sstfilewriter_put(t->w, k, klen, v, vlen, &err);
	if (err)
		return sto_rocks_err(err, errmsg, t->path);
	t->n++;
	return 0;
}

/* ---- the writer thread ----
 *
 * Building SST blocks (index, bloom filter, LZ4, write(2)) is about a third
 * of the work; a second thread does it while the rows are parsed. Records
 * go through two buffers of about STO_IMPORT_PIPE_BYTES: the importing
 * thread fills one while the writer drains the other, in order, so every
 * file still receives its keys in the order they were produced.
 */

struct imp_pipe {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct lora_buf fill;  /* being filled (importing thread) */
	struct lora_buf drain; /* handed over (writer thread) */
	int full, done, err;
	char errmsg[LORA_ERRMSG_BYTES];
};

/* Records are (u8 cf, be32 klen, be32 vlen, key, value). */
static int drain_one(struct sto_import *im, const struct lora_buf *b,
                     char *errmsg)
{
	int rv = 0;
	for (size_t off = 0; !rv && off < b->len;) {
		const uint8_t *h = (const uint8_t *)b->data + off;
		uint32_t kl = lora_get_be32(h + 1), vl = lora_get_be32(h + 5);
		const char *k = (const char *)h + 9;
		rv = sst_put(im, h[0], k, kl, k + kl, vl, errmsg);
		off += 9 + (size_t)kl + vl;
	}
	return rv;
}

static void *pipe_main(void *arg)
{
	struct sto_import *im = arg;
	struct imp_pipe *p = im->pipe;
	pthread_setname_np(pthread_self(), "lora-import-w");
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->full && !p->done)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->full)
			break;
		pthread_mutex_unlock(&p->mu);
		char em[LORA_ERRMSG_BYTES] = "";
		int rv = p->err ? 0 : drain_one(im, &p->drain, em);
		pthread_mutex_lock(&p->mu);
		if (rv && !p->err) {
			p->err = rv;
			memcpy(p->errmsg, em, sizeof(em));
		}
		lora_buf_reset(&p->drain);
		p->full = 0;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int imp_pipe_start(struct sto_import *im)
{
	struct imp_pipe *p = lora_calloc(1, sizeof(*p));
	if (!p)
		return LORA_ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	im->pipe = p;
	if (pthread_create(&p->thread, NULL, pipe_main, im) != 0) {
		/* no thread: the puts happen on the importing thread */
		im->pipe = NULL;
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		lora_free(p);
	}
	return 0;
}

/* Hands the filled buffer over (after the writer took the previous one);
 * returns the writer's first error, if any. */
static int pipe_handoff(struct sto_import *im, int last)
{
	struct imp_pipe *p = im->pipe;
	pthread_mutex_lock(&p->mu);
	while (p->full && !p->err)
		pthread_cond_wait(&p->cv, &p->mu);
	if (!p->err && p->fill.len) {
		struct lora_buf t = p->drain;
		p->drain = p->fill;
		p->fill = t;
		p->full = 1;
	}
	p->done |= last;
	pthread_cond_broadcast(&p->cv);
	int rv = p->err;
	if (rv)
		memcpy(im->errmsg, p->errmsg, LORA_ERRMSG_BYTES);
	pthread_mutex_unlock(&p->mu);
	return rv;
}

int imp_pipe_stop(struct sto_import *im)
{
	struct imp_pipe *p = im->pipe;
	if (!p)
		return 0;
	int rv = pipe_handoff(im, 1);
	pthread_join(p->thread, NULL);
	if (!rv && p->err) {
		rv = p->err;
		memcpy(im->errmsg, p->errmsg, LORA_ERRMSG_BYTES);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	lora_buf_free(&p->fill);
	lora_buf_free(&p->drain);
	lora_free(p);
	im->pipe = NULL;
	return rv;
}

int imp_sst_put(struct sto_import *im, int cf, const void *k, size_t klen,
                const void *v, size_t vlen)
{
	struct imp_pipe *p = im->pipe;
	if (!p)
		return sst_put(im, cf, k, klen, v, vlen, im->errmsg);
	uint8_t h[9];
	h[0] = (uint8_t)cf;
	lora_put_be32(h + 1, (uint32_t)klen);
	lora_put_be32(h + 5, (uint32_t)vlen);
	int rv = lora_buf_reserve(&p->fill, sizeof(h) + klen + vlen);
	if (rv)
		return rv;
	lora_buf_append(&p->fill, h, sizeof(h)); /* reserved above */
	lora_buf_append(&p->fill, k, klen);
	lora_buf_append(&p->fill, v, vlen);
	return p->fill.len >= STO_IMPORT_PIPE_BYTES ? pipe_handoff(im, 0) : 0;
}

void imp_sst_free(struct sto_import *im)
{
	for (int cf = 0; cf < STO_CF_COUNT; cf++) {
		if (im->sst[cf].w)
			rocksdb_sstfilewriter_destroy(im->sst[cf].w);
		lora_free(im->sst[cf].path);
		memset(&im->sst[cf], 0, sizeof(im->sst[cf]));
	}
}

/* ---- adjacency ---- */

/* The varint of sto_put_uvarint, into a buffer known to be large enough. */
/* One adjacency entry but its type (read from im->etype). */
struct adj_item {
	uint64_t edge, other;
};

/* The chunks of one list (node, dir), as apply_adj.c lays them out:
 * 'A' varint(nchunks) varint(n) entries, then 'C' varint(n) entries. */
static int adj_list_put(struct sto_import *im, uint64_t node, char dir,
                        const struct adj_item *it, uint64_t n)
{
	uint64_t nchunks =
	    (n + STO_ADJ_CHUNK_ENTRIES_MAX - 1) / STO_ADJ_CHUNK_ENTRIES_MAX;
	uint8_t buf[STO_ADJ_CHUNK_BYTES_MAX];
	int rv = 0;
	for (uint64_t no = 0; !rv && no < nchunks; no++) {
		uint64_t lo = no * STO_ADJ_CHUNK_ENTRIES_MAX;
		uint64_t cnt = n - lo < STO_ADJ_CHUNK_ENTRIES_MAX
		                   ? n - lo
		                   : STO_ADJ_CHUNK_ENTRIES_MAX;
		uint8_t *q = buf;
		*q++ = no ? STO_ADJ_CHUNKN_MAGIC : STO_ADJ_CHUNK0_MAGIC;
		if (!no)
			q = sto_uvarint_at(q, nchunks);
		q = sto_uvarint_at(q, cnt);
		for (uint64_t i = lo; i < lo + cnt; i++) {
			q = sto_uvarint_at(q, im->etype[it[i].edge]);
			q = sto_uvarint_at(q, it[i].other);
			q = sto_uvarint_at(q, it[i].edge);
		}
		uint8_t k[STO_ADJ_KEY_BYTES];
		sto_key_adj(k, node, dir, (uint32_t)no);
		rv = imp_sst_put(im, STO_CF_ADJ, k, sizeof(k), buf,
		                 (size_t)(q - buf));
	}
	return rv;
}

/* Entries grouped by node, in edge-id order within a node (a counting
 * sort): list d (0 outgoing, 1 incoming) of node x is
 * lists[d][end[d][x-1] .. end[d][x]). The other end travels with the
 * edge id, so writing the chunks reads the lists in order. */
static int adj_sort(struct sto_import *im, struct adj_item *lists[2],
                    uint64_t *end[2])
{
	uint64_t n = im->nodes, m = im->edges;
	for (int d = 0; d < 2; d++) {
		lists[d] = lora_malloc((m ? m : 1) * sizeof(*lists[d]));
		end[d] = lora_malloc((n ? n : 1) * sizeof(uint64_t));
		if (!lists[d] || !end[d])
			return LORA_ENOMEM;
		uint64_t sum = 0;
		for (uint64_t x = 0; x < n; x++) { /* end[x] = start of x */
			end[d][x] = sum;
			sum += im->deg[d][x];
		}
		const uint64_t *own = d ? im->eto : im->efrom;
		const uint64_t *other = d ? im->efrom : im->eto;
		for (uint64_t e = 0; e < m; e++)
			lists[d][end[d][own[e]]++] =
			    (struct adj_item){e, other[e]};
	}
	return 0;
}

static int write_adjacency(struct sto_import *im)
{
	struct adj_item *lists[2] = {NULL, NULL};
	uint64_t *end[2] = {NULL, NULL};
	imp_phase(im, "adjacency", NULL);
	int rv = adj_sort(im, lists, end);
	for (uint64_t x = 0; !rv && x < im->nodes; x++) {
		for (int d = 1; !rv && d >= 0; d--) { /* 'I' sorts before 'O' */
			uint64_t lo = x ? end[d][x - 1] : 0;
			if (end[d][x] > lo)
				rv = adj_list_put(
				    im, x, d ? STO_K_IN : STO_K_OUT,
				    lists[d] + lo, end[d][x] - lo);
		}
		if (!rv && ++im->rows % STO_IMPORT_PROGRESS_ROWS == 0)
			rv = imp_tick(im);
	}
	for (int d = 0; d < 2; d++) {
		lora_free(lists[d]);
		lora_free(end[d]);
	}
	return rv;
}

/* ---- the index column family ---- */

static int key_cmp(const void *a, const void *b, void *arg)
{
	const uint8_t *base = arg;
	const uint8_t *ka = base + *(const uint64_t *)a,
	              *kb = base + *(const uint64_t *)b;
	uint32_t la = lora_get_be32(ka), lb = lora_get_be32(kb);
	int c = memcmp(ka + 4, kb + 4, la < lb ? la : lb);
	return c ? c : (la > lb) - (la < lb);
}

/* Offsets of the n records of buf, (be32 len, key) or with `values`
 * (be32 len, key, be32 len, value), sorted by key. */
static int sort_records(const struct lora_buf *buf, uint64_t n, int values,
                        uint64_t **out)
{
	uint64_t *off = lora_malloc((n ? n : 1) * sizeof(*off));
	if (!off)
		return LORA_ENOMEM;
	const uint8_t *b = (const uint8_t *)buf->data;
	for (uint64_t i = 0, at = 0; i < n; i++) {
		off[i] = at;
		at += 4 + lora_get_be32(b + at);
		if (values)
			at += 4 + lora_get_be32(b + at);
	}
	qsort_r(off, n, sizeof(*off), key_cmp, buf->data);
	*out = off;
	return 0;
}

static int write_index(struct sto_import *im)
{
	int rv = 0;
	imp_phase(im, "index", NULL);
	for (size_t t = 0; !rv && t < im->nlnodes; t++)
		for (size_t i = 0; !rv && i < im->lnodes[t].n; i++) {
			uint8_t k[STO_LABEL_KEY_BYTES];
			sto_key_label(k, (uint32_t)t, im->lnodes[t].v[i]);
			rv = imp_sst_put(im, STO_CF_INDEX, k, sizeof(k), "", 0);
		}
	uint64_t *off = NULL;
	if (!rv && im->npkeys)
		rv = sort_records(&im->pkeys, im->npkeys, 0, &off);
	for (uint64_t i = 0; !rv && i < im->npkeys; i++) {
		const uint8_t *r = (const uint8_t *)im->pkeys.data + off[i];
		rv = imp_sst_put(im, STO_CF_INDEX, r + 4, lora_get_be32(r), "",
		                 0);
	}
	lora_free(off);
	return rv;
}

/* ---- meta ---- */

/* Appends one meta entry as (be32 klen, key, be32 vlen, value). */
static int meta_add(struct lora_buf *m, const void *k, size_t klen,
                    const void *v, size_t vlen)
{
	uint8_t a[4], b[4];
	lora_put_be32(a, (uint32_t)klen);
	lora_put_be32(b, (uint32_t)vlen);
	int rv = lora_buf_append(m, a, 4);
	if (!rv)
		rv = lora_buf_append(m, k, klen);
	if (!rv)
		rv = lora_buf_append(m, b, 4);
	return rv ? rv : lora_buf_append(m, v, vlen);
}

static int meta_u64(struct lora_buf *m, char prefix, int has_tok, uint32_t tok,
                    uint64_t v)
{
	uint8_t k[5], b[8];
	k[0] = (uint8_t)prefix;
	lora_put_be32(k + 1, tok);
	lora_put_be64(b, v);
	return meta_add(m, k, has_tok ? 5 : 1, b, 8);
}

static int meta_tokens(struct sto_import *im, struct lora_buf *m, uint64_t *n)
{
	struct lora_buf k = {0};
	int rv = 0;
	for (int kind = 0; !rv && kind < STO_TOK_KINDS; kind++)
		for (uint32_t t = 0; !rv && t < im->tok[kind].n; t++) {
			const char *name = im->tok[kind].names[t];
			uint32_t len = im->tok[kind].lens[t];
			uint8_t tk[6], tv[4];
			lora_buf_reset(&k);
			rv = lora_buf_putc(&k, STO_META_TOKEN);
			if (!rv)
				rv = lora_buf_putc(&k, (char)kind);
			if (!rv)
				rv = lora_buf_append(&k, name, len);
			lora_put_be32(tv, t);
			if (!rv)
				rv = meta_add(m, k.data, k.len, tv, 4);
			tk[0] = STO_META_TOKEN_NAME;
			tk[1] = (uint8_t)kind;
			lora_put_be32(tk + 2, t);
			if (!rv)
				rv = meta_add(m, tk, 6, name, len);
			*n += 2;
		}
	lora_buf_free(&k);
	return rv;
}

/* The catalogue entries, after interning what CreateIndex would. */
static int meta_indexes(struct sto_import *im, struct lora_buf *m, uint64_t *n)
{
	int rv = 0;
	for (size_t i = 0; !rv && i < im->nidx; i++) {
		struct imp_index *x = &im->idx[i];
		uint32_t t;
		rv = imp_intern(im, STO_TOK_LABEL, x->label, strlen(x->label),
		                &t);
		if (!rv)
			rv = imp_intern(im, STO_TOK_KEY, x->key, strlen(x->key),
			                &t);
		if (rv)
			return imp_fail(im, rv, NULL, 0, "--index %s(%s): %s",
			                x->label, x->key, lora_strerror(rv));
		Lora__CreateIndex d = LORA__CREATE_INDEX__INIT;
		d.name = x->name;
		d.kind = LORA__INDEX_KIND__INDEX_RANGE;
		d.entity = LORA__ENTITY_KIND__ENTITY_NODE;
		d.label = x->label;
		d.n_properties = 1;
		d.properties = &x->key;
		size_t len = lora__create_index__get_packed_size(&d);
		struct lora_buf k = {0};
		rv = lora_buf_putc(&k, STO_META_INDEX);
		if (!rv)
			rv = lora_buf_puts(&k, x->name);
		if (!rv)
			rv = lora_buf_reserve(&im->kbuf, len);
		if (!rv) {
			lora__create_index__pack(&d, (uint8_t *)im->kbuf.data);
			rv = meta_add(m, k.data, k.len, im->kbuf.data, len);
		}
		lora_buf_free(&k);
		(*n)++;
	}
	return rv;
}

static int meta_counts(struct sto_import *im, struct lora_buf *m, uint64_t *n)
{
	uint8_t f[4];
	char fk = STO_META_FORMAT;
	lora_put_be32(f, STO_FORMAT_VERSION);
	int rv = meta_add(m, &fk, 1, f, 4);
	if (!rv)
		rv = meta_u64(m, STO_META_APPLIED, 0, 0,
		              STO_IMPORT_APPLIED_INDEX);
	*n += 2;
	if (!rv && im->nodes) {
		rv = meta_u64(m, STO_META_NODE_COUNT, 0, 0, im->nodes);
		if (!rv)
			rv = meta_u64(m, STO_META_NEXT_NODE, 0, 0, im->nodes);
		*n += 2;
	}
	if (!rv && im->edges) {
		rv = meta_u64(m, STO_META_EDGE_COUNT, 0, 0, im->edges);
		if (!rv)
			rv = meta_u64(m, STO_META_NEXT_EDGE, 0, 0, im->edges);
		*n += 2;
	}
	for (size_t t = 0; !rv && t < im->nlnodes; t++)
		if (im->lnodes[t].n) {
			rv = meta_u64(m, STO_META_LABEL_COUNT, 1, (uint32_t)t,
			              im->lnodes[t].n);
			(*n)++;
		}
	for (size_t t = 0; !rv && t < im->ntcount; t++)
		if (im->tcount[t]) {
			rv = meta_u64(m, STO_META_TYPE_COUNT, 1, (uint32_t)t,
			              im->tcount[t]);
			(*n)++;
		}
	return rv;
}

static int write_meta(struct sto_import *im)
{
	struct lora_buf m = {0};
	uint64_t n = 0, *off = NULL;
	int rv = meta_indexes(im, &m, &n);
	if (!rv)
		rv = meta_tokens(im, &m, &n);
	if (!rv)
		rv = meta_counts(im, &m, &n);
	if (!rv)
		rv = sort_records(&m, n, 1, &off);
	for (uint64_t i = 0; !rv && i < n; i++) {
		const uint8_t *r = (const uint8_t *)m.data + off[i];
		uint32_t kl = lora_get_be32(r);
		rv = imp_sst_put(im, STO_CF_META, r + 4, kl, r + 8 + kl,
		                 lora_get_be32(r + 4 + kl));
	}
	lora_free(off);
	lora_buf_free(&m);
	return rv;
}

/* ---- finish and ingest ---- */

static int ingest(struct sto_import *im)
{
	sto_adjc_clear(im->s->adjc); /* chunks arrive outside apply */
	rocksdb_ingestexternalfileoptions_t *io =
	    rocksdb_ingestexternalfileoptions_create();
	rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
	int rv = imp_pipe_stop(im);
	imp_phase(im, "ingest", NULL);
	for (int cf = 0; !rv && cf < STO_CF_COUNT; cf++) {
		struct imp_sst *t = &im->sst[cf];
		if (!t->w)
			continue;
		char *err = NULL;
		rocksdb_sstfilewriter_finish(t->w, &err);
		if (!err) {
			const char *p = t->path;
			rocksdb_ingest_external_file_cf(
			    im->s->db, im->s->cf[cf], &p, 1, io, &err);
		}
		if (err)
			rv = sto_rocks_err(err, im->errmsg, t->path);
	}
	rocksdb_ingestexternalfileoptions_destroy(io);
	return rv;
}

int imp_finish(struct sto_import *im)
{
	int rv = write_adjacency(im);
	if (!rv)
		rv = write_index(im);
	if (!rv)
		rv = write_meta(im);
	if (!rv)
		rv = ingest(im);
	return rv;
}

/* ---- directories ---- */

/* sto_testing_import_fail: the publish steps that fail */
static unsigned fail_steps;

void sto_testing_import_fail(unsigned steps)
{
	fail_steps = steps;
}

/* Whether the test hook fails step (errno EIO then, as the call would). */
static int faulted(unsigned step)
{
	if (!(fail_steps & step))
		return 0;
	errno = EIO;
	return 1;
}

/* The file whose fsync failed in fsync_entry (nftw passes no argument:
 * one import per thread at a time). */
static _Thread_local char fsync_failed[4096];

static int fsync_entry(const char *path, const struct stat *sb, int flag,
                       struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag != FTW_F && flag != FTW_D && flag != FTW_DP)
		return 0;
	if (!(flag == FTW_F && faulted(STO_IMPORT_FAIL_FSYNC_FILE)) &&
	    sto_fsync_path(path) == 0)
		return 0;
	int e = errno;
	snprintf(fsync_failed, sizeof fsync_failed, "%s", path);
	errno = e;
	return -1;
}

static char *path_join(const char *a, const char *b)
{
	struct lora_buf p = {0};
	return lora_buf_printf(&p, "%s%s", a, b) ? NULL : lora_buf_take(&p);
}

int imp_prepare(struct sto_import *im, const char *dir)
{
	struct stat st;
	size_t len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (!len)
		return imp_fail(im, LORA_EINVAL, NULL, 0,
		                "no target directory");
	if (!(im->target = lora_strndup(dir, len)))
		return LORA_ENOMEM;
	if (stat(im->target, &st) == 0 && !im->o.force)
		return imp_fail(im, LORA_EEXIST, im->target, 0,
		                "already exists (use --force to replace it)");
	char pid[32];
	snprintf(pid, sizeof(pid), ".importing-%ld", (long)getpid());
	im->tmp = path_join(im->target, pid);
	im->sstdir = im->tmp ? path_join(im->tmp, "/sst") : NULL;
	im->statedir = im->tmp ? path_join(im->tmp, "/state") : NULL;
	if (!im->sstdir || !im->statedir)
		return LORA_ENOMEM;
	sto_rm_rf(im->tmp); /* left by a killed import with our pid */
	if (mkdir(im->tmp, 0755) != 0 || mkdir(im->sstdir, 0755) != 0)
		return imp_fail(im, LORA_EIO, im->tmp, 0, "cannot create: %s",
		                strerror(errno));
	im->env = rocksdb_envoptions_create();
	return sto_open(im->statedir, NULL, &im->s, im->errmsg);
}

/* Moves the finished state into place, fsynced, replacing an existing
 * target only after the new one is complete. A failure before the rename
 * leaves the target as it was; after it, the message says where the new
 * and the old state are (the old one is kept whenever it is not certain
 * that the new one is durable in its place). */
int imp_publish(struct sto_import *im)
{
	struct stat st;
	char pid[32], *old = NULL;
	fsync_failed[0] = '\0';
	if (nftw(im->statedir, fsync_entry, 16, FTW_PHYS) != 0)
		return imp_fail(im, LORA_EIO,
		                fsync_failed[0] ? fsync_failed : im->statedir,
		                0, "fsync: %s", strerror(errno));
	/* taken before anything moves: no allocation can fail after it */
	char *parent = lora_strdup(im->target);
	if (!parent)
		return LORA_ENOMEM;
	snprintf(pid, sizeof(pid), ".replaced-%ld", (long)getpid());
	if (stat(im->target, &st) == 0) {
		if (!(old = path_join(im->target, pid))) {
			lora_free(parent);
			return LORA_ENOMEM;
		}
		/* an earlier import's kept old state (the same pid): never
		 * deleted here (review s20-b F3) */
		if (lstat(old, &st) == 0) {
			int rv = imp_fail(im, LORA_EEXIST, old, 0,
			                  "exists (an earlier import kept the "
			                  "state it replaced there): move or "
			                  "delete it first");
			lora_free(old);
			lora_free(parent);
			return rv;
		}
		if (faulted(STO_IMPORT_FAIL_MOVE_ASIDE) ||
		    rename(im->target, old) != 0) {
			int rv = imp_fail(
			    im, LORA_EIO, im->target, 0,
			    "cannot move aside: %s (the target is unchanged)",
			    strerror(errno));
			lora_free(old);
			lora_free(parent);
			return rv;
		}
	}
	int rv = 0, keep_old = 0;
	char why[128]; /* strerror's text, before another call replaces it */
	if (faulted(STO_IMPORT_FAIL_RENAME_NEW) ||
	    rename(im->statedir, im->target) != 0) {
		snprintf(why, sizeof why, "%s", strerror(errno));
		if (old && (faulted(STO_IMPORT_FAIL_MOVE_BACK) ||
		            rename(old, im->target) != 0)) {
			keep_old = 1;
			im->st.target_changed = 1;
			rv = imp_fail(
			    im, LORA_EIO, im->target, 0,
			    "cannot rename the new state into place: "
			    "%s; the old state could not be moved back "
			    "(%s): it is at %s",
			    why, strerror(errno), old);
		} else {
			rv = imp_fail(im, LORA_EIO, im->target, 0,
			              "cannot rename the new state into place: "
			              "%s (the target is unchanged)",
			              why);
		}
	} else if (faulted(STO_IMPORT_FAIL_FSYNC_DIR) ||
	           sto_fsync_path(dirname(parent)) != 0) {
		/* the rename may not survive a crash: both states stay */
		keep_old = 1;
		im->st.target_changed = 1;
		rv = imp_fail(im, LORA_EIO, im->target, 0,
		              "the new state is in place, but the fsync of its "
		              "directory failed (%s), so a crash may undo the "
		              "rename%s%s",
		              strerror(errno),
		              old ? "; the old state is kept at " : "",
		              old ? old : "");
	}
	lora_free(parent);
	if (old && !keep_old)
		sto_rm_rf(old);
	lora_free(old);
	sto_rm_rf(im->tmp);
	return rv;
}
