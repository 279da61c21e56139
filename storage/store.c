/* store.c - opening and closing the state store, the token cache, the
 * index catalogue and checkpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stoInt.h"
#include "sto_testing.h"

const char *const sto_cf_names[STO_CF_COUNT] = {
    "default", "nodes",     "edges",    "vectors", "index",
    "meta",    "adjacency", "requests", "hnsw"};

#define STO_BLOCK_CACHE_BYTES_DEFAULT ((size_t)128 << 20)
#define STO_WRITE_BUFFER_BYTES        (64u << 20)
/* The adjacency CF's write buffer. Its hash memtable is sorted when it is
 * flushed, one skip-list search per list it holds (a third of a KNOWS
 * load's CPU at 64 MiB with 1,000-row chunks): a bigger buffer holds
 * more versions of each list per flush, and a load of issue 10's graph
 * flushes none (docs/benchmarks.md, "Online load, session 22"). */
#define STO_ADJ_WRITE_BUFFER_BYTES (256u << 20)
/* Data block size: 16 KiB blocks keep the in-memory indexes small; a
 * node's adjacency (29-byte keys) usually sits in one block. */
#define STO_BLOCK_BYTES (16u << 10)
/* Row cache: whole values of point reads (adjacency chunks, records), so
 * that a hot Get skips the block search. RocksDB's row cache gives stale
 * values after a DeleteRange (facebook/rocksdb#4122): the state store must
 * never use range deletions (the Raft log, a separate DB, does). */
#define STO_ROW_CACHE_BYTES (64u << 20)
/* Share of a data block's hash index slots in use (adjacency CF). */
#define STO_ADJ_HASH_UTIL_RATIO 0.75
/* Hash buckets of the adjacency CF's memtable (8 bytes each, taken from
 * its write buffer). An insert walks every version of each smaller list
 * that shares its bucket, one memory miss each: with 2^18 buckets and the
 * 200,000 lists of issue 10's graph that walk was most of a follower's
 * apply with the default chunk (docs/benchmarks.md, "Online load, session
 * 24"). At 2^20, about one list in six shares its bucket there. */
#define STO_ADJ_MEMTABLE_BUCKETS (1u << 20)
/* memtable bloom bits of the requests CF, as a share of its write buffer */
#define STO_REQ_MEMTABLE_BLOOM_RATIO 0.02

void sto_options_init(struct sto_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->create_if_missing = 1;
}

static _Thread_local char last_error[LORA_ERRMSG_BYTES];
static _Thread_local int last_code;
static _Thread_local char taken[LORA_ERRMSG_BYTES];

const char *sto_last_error(int code)
{
	taken[0] = 0;
	if (code && code == last_code)
		memcpy(taken, last_error, sizeof taken);
	last_code = 0;
	return taken;
}

int sto_rocks_err(char *rerr, char *errmsg, const char *what)
{
	int code = LORA_EIO;
	if (rerr && (strstr(rerr, "Corruption") || strstr(rerr, "corrupt")))
		code = LORA_ECORRUPT;
	else if (rerr && strstr(rerr, "No space"))
		code = LORA_ENOSPC;
	last_code = lora_errf(code, last_error, "%s: %s", what,
	                      rerr ? rerr : "unknown error");
	if (errmsg) { /* the caller has the text: nothing left to take */
		memcpy(errmsg, last_error, LORA_ERRMSG_BYTES);
		last_code = 0;
	}
	rocksdb_free(rerr);
	return code;
}

int sto_iter_close(rocksdb_iterator_t *it, int rv, char *errmsg,
                   const char *what)
{
	char *err = NULL;
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	return err ? sto_rocks_err(err, errmsg, what) : rv;
}

int sto_get(struct sto_store *s, const rocksdb_readoptions_t *ro, int cf,
            const void *key, size_t klen, char **val, size_t *vlen)
{
	char *err = NULL;
	*val = rocksdb_get_cf(s->db, ro, s->cf[cf], key, klen, vlen, &err);
	if (err)
		return sto_rocks_err(err, NULL, "read");
	return 0;
}

int sto_seek_get(rocksdb_iterator_t *it, const void *key, size_t klen,
                 char **val, size_t *vlen)
{
	*val = NULL;
	*vlen = 0;
	rocksdb_iter_seek(it, key, klen);
	if (rocksdb_iter_valid(it)) {
		size_t kl, vl;
		const char *k = rocksdb_iter_key(it, &kl);
		if (kl == klen && !memcmp(k, key, klen)) {
			const char *v = rocksdb_iter_value(it, &vl);
			*val = malloc(vl ? vl : 1); /* rocksdb_free is free */
			if (!*val)
				return LORA_ENOMEM;
			memcpy(*val, v, vl);
			*vlen = vl;
			return 0;
		}
	}
	char *err = NULL;
	rocksdb_iter_get_error(it, &err);
	return err ? sto_rocks_err(err, NULL, "read") : 0;
}

int sto_meta_get_u64(struct sto_store *s, const rocksdb_readoptions_t *ro,
                     const char *key, size_t klen, uint64_t *v)
{
	char *val;
	size_t vlen;
	int rv = sto_get(s, ro, STO_CF_META, key, klen, &val, &vlen);
	if (rv)
		return rv;
	*v = 0;
	if (!val)
		return 0;
	if (vlen != 8)
		rv = LORA_ECORRUPT;
	else
		*v = lora_get_be64((const uint8_t *)val);
	rocksdb_free(val);
	return rv;
}

/* ---- tokens
 * ------------------------------------------------------------------ */

static uint32_t name_hash(const char *p, size_t n)
{
	return lora_hash32(p, n);
}

static void tok_insert_slot(struct sto_tokens *t, uint32_t tok)
{
	uint32_t mask = t->nslots - 1;
	uint32_t i = name_hash(t->names[tok], t->lens[tok]) & mask;
	while (t->slots[i])
		i = (i + 1) & mask;
	t->slots[i] = tok + 1;
}

int sto_tok_reserve(struct sto_tokens *t, uint32_t extra)
{
	uint32_t need = t->n + extra;
	if (need > STO_TOKENS_MAX)
		return LORA_ELIMIT;
	if (need > t->cap) {
		uint32_t nc = t->cap ? t->cap : 16;
		while (nc < need)
			nc *= 2;
		char **names = lora_realloc(t->names, nc * sizeof(*names));
		if (!names)
			return LORA_ENOMEM;
		t->names = names;
		uint32_t *lens = lora_realloc(t->lens, nc * sizeof(*lens));
		if (!lens)
			return LORA_ENOMEM;
		t->lens = lens;
		t->cap = nc;
	}
	if ((uint64_t)need * 2 < t->nslots)
		return 0;
	uint32_t ns = t->nslots ? t->nslots : 32;
	while ((uint64_t)need * 2 >= ns)
		ns *= 2;
	uint32_t *slots = lora_calloc(ns, sizeof(*slots));
	if (!slots)
		return LORA_ENOMEM;
	lora_free(t->slots);
	t->slots = slots;
	t->nslots = ns;
	for (uint32_t i = 0; i < t->n; i++)
		tok_insert_slot(t, i);
	return 0;
}

void sto_tok_add(struct sto_tokens *t, char *name, uint32_t len)
{
	LORA_ASSERT(t->n < t->cap && (uint64_t)(t->n + 1) * 2 < t->nslots);
	t->names[t->n] = name;
	t->lens[t->n] = len;
	tok_insert_slot(t, t->n);
	t->n++;
}

void sto_tok_free(struct sto_tokens *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		lora_free(t->names[i]);
	lora_free(t->names);
	lora_free(t->lens);
	lora_free(t->slots);
	memset(t, 0, sizeof(*t));
}

int64_t sto_tokens_lookup(const struct sto_tokens *t, const char *name,
                          size_t len)
{
	if (!t->nslots)
		return -1;
	uint32_t mask = t->nslots - 1;
	for (uint32_t i = name_hash(name, len) & mask; t->slots[i];
	     i = (i + 1) & mask) {
		uint32_t tok = t->slots[i] - 1;
		if (t->lens[tok] == len && !memcmp(t->names[tok], name, len))
			return tok;
	}
	return -1;
}

int64_t sto_tok_find(struct sto_store *s, int kind, const char *name,
                     size_t len)
{
	pthread_mutex_lock(&s->tok_mu);
	int64_t r = sto_tokens_lookup(&s->tok[kind], name, len);
	pthread_mutex_unlock(&s->tok_mu);
	return r;
}

const char *sto_tok_name(struct sto_store *s, int kind, uint32_t tok)
{
	const char *r = NULL;
	pthread_mutex_lock(&s->tok_mu);
	if (tok < s->tok[kind].n)
		r = s->tok[kind].names[tok];
	pthread_mutex_unlock(&s->tok_mu);
	return r;
}

/* One "T" kind token -> name entry into the cache. */
static int tok_load_one(struct sto_store *s, const uint8_t *k, size_t klen,
                        const char *v, size_t vlen)
{
	if (klen != 6 || k[1] >= STO_TOK_KINDS || vlen > STO_NAME_BYTES_MAX)
		return LORA_ECORRUPT;
	struct sto_tokens *t = &s->tok[k[1]];
	if (lora_get_be32(k + 2) != t->n) /* tokens are dense */
		return LORA_ECORRUPT;
	int rv = sto_tok_reserve(t, 1);
	if (rv)
		return rv;
	char *name = lora_strndup(v, vlen);
	if (!name)
		return LORA_ENOMEM;
	sto_tok_add(t, name, (uint32_t)vlen);
	return 0;
}

int sto_tok_load(struct sto_store *s, char *errmsg)
{
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(s->db, s->ro, s->cf[STO_CF_META]);
	int rv = 0;
	char start = STO_META_TOKEN_NAME;
	for (rocksdb_iter_seek(it, &start, 1); !rv && rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
		if (k[0] != STO_META_TOKEN_NAME)
			break;
		const char *v = rocksdb_iter_value(it, &vlen);
		rv = tok_load_one(s, k, klen, v, vlen);
	}
	int ierr = sto_iter_close(it, 0, errmsg, "load tokens");
	if (ierr)
		return ierr;
	if (rv)
		lora_errf(rv, errmsg, "load tokens: %s", lora_strerror(rv));
	return rv;
}

/* ---- catalogue
 * --------------------------------------------------------------- */

void sto_cat_free(struct sto_catalog *c)
{
	for (size_t i = 0; i < c->n; i++)
		lora__create_index__free_unpacked(c->defs[i],
		                                  &lora_pb_allocator);
	lora_free(c->defs);
	c->defs = NULL;
	c->n = 0;
}

int sto_index_dup(const Lora__CreateIndex *def, Lora__CreateIndex **out)
{
	size_t n = lora__create_index__get_packed_size(def);
	uint8_t *p = lora_malloc(n);
	if (!p)
		return LORA_ENOMEM;
	lora__create_index__pack(def, p);
	*out = lora__create_index__unpack(&lora_pb_allocator, n, p);
	lora_free(p);
	return *out ? 0 : LORA_ENOMEM;
}

int sto_cat_load(struct sto_store *s, char *errmsg)
{
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(s->db, s->ro, s->cf[STO_CF_META]);
	int rv = 0;
	char start = STO_META_INDEX;
	for (rocksdb_iter_seek(it, &start, 1); !rv && rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		if (k[0] != STO_META_INDEX)
			break;
		const uint8_t *v =
		    (const uint8_t *)rocksdb_iter_value(it, &vlen);
		Lora__CreateIndex **defs =
		    lora_realloc(s->cat.defs, (s->cat.n + 1) * sizeof(*defs));
		if (!defs) {
			rv = LORA_ENOMEM;
			break;
		}
		s->cat.defs = defs;
		defs[s->cat.n] =
		    lora__create_index__unpack(&lora_pb_allocator, vlen, v);
		if (!defs[s->cat.n])
			rv = LORA_ECORRUPT;
		else
			s->cat.n++;
	}
	int ierr = sto_iter_close(it, 0, errmsg, "load index catalogue");
	if (ierr)
		return ierr;
	if (rv)
		lora_errf(rv, errmsg, "load index catalogue: %s",
		          lora_strerror(rv));
	return rv;
}

/* ---- open / close
 * -------------------------------------------------------------- */

/* The adjacency CF is only ever read with point lookups: a hash index in
 * each data block replaces the in-block binary search, and no filter on
 * the last level, where every lookup of a node with edges hits. Its
 * memtable is a hash of sorted linked lists on the key's first 9 bytes,
 * node id and direction (RocksDB's HashLinkList; a bucket past 256
 * entries becomes a skip list): apply writes and reads chunks of random
 * nodes, and a walk of one list's few entries replaces a search in a skip
 * list of every chunk written since the last flush (the largest share of
 * a KNOWS load's CPU). A list costs fewer memory misses per insert than a
 * per-bucket skip list (HashSkipList, used until 2026-12-06;
 * docs/benchmarks.md, "Online load, session 15"). Each batch writes a new
 * version of a list's chunk 0, and an insert walks the versions before
 * its place: with the 8-byte node id as the prefix, an outgoing chunk
 * walked past every version of the incoming one (session 21: 9 bytes,
 * 10-25 % more edges per second applied). Only point reads and scans of
 * the whole CF (digest, tests: total_order_seek) read it, so the prefix
 * is free to choose; tables written with another prefix keep answering
 * (RocksDB then skips their prefix filter, the whole-key one stays). */
static void set_adj_options(struct sto_store *s)
{
	s->adj_opts = rocksdb_options_create_copy(s->opts);
	rocksdb_options_set_write_buffer_size(s->adj_opts,
	                                      STO_ADJ_WRITE_BUFFER_BYTES);
	s->adj_bbto = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(s->adj_bbto, s->cache);
	rocksdb_block_based_options_set_block_size(s->adj_bbto,
	                                           STO_BLOCK_BYTES);
	rocksdb_block_based_options_set_filter_policy(
	    s->adj_bbto, rocksdb_filterpolicy_create_bloom(10));
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(
	    s->adj_bbto, 0);
	rocksdb_block_based_options_set_data_block_index_type(
	    s->adj_bbto,
	    rocksdb_block_based_table_data_block_index_type_binary_search_and_hash);
	rocksdb_block_based_options_set_data_block_hash_ratio(
	    s->adj_bbto, STO_ADJ_HASH_UTIL_RATIO);
	rocksdb_options_set_block_based_table_factory(s->adj_opts, s->adj_bbto);
	rocksdb_options_set_optimize_filters_for_hits(s->adj_opts, 1);
	rocksdb_options_set_prefix_extractor(
	    s->adj_opts, rocksdb_slicetransform_create_fixed_prefix(9));
	/* RocksDB's C setter keeps the factory's if_log_bucket_dist_when_flash
	 * on: every flush and total-order iterator (the digest) then adds
	 * each bucket's count to a histogram under a mutex, 9 ms per digest
	 * of an empty store at 2^20 buckets against 0.7 ms without */
	char spec[160], *err = NULL;
	snprintf(spec, sizeof spec,
	         "memtable={id=HashLinkListRepFactory;bucket_count=%u;"
	         "log_when_flash=false}",
	         STO_ADJ_MEMTABLE_BUCKETS);
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_get_options_from_string(s->adj_opts, spec, o, &err);
	if (err == NULL) {
		rocksdb_options_destroy(s->adj_opts);
		s->adj_opts = o;
	} else { /* the setter's factory: the same lists, logging on */
		rocksdb_free(err);
		rocksdb_options_destroy(o);
		rocksdb_options_set_hash_link_list_rep(
		    s->adj_opts, STO_ADJ_MEMTABLE_BUCKETS);
	}
}

static void set_rocks_options(struct sto_store *s, const struct sto_options *o)
{
	s->opts = rocksdb_options_create();
	if (o->mem_env) { /* the copies below inherit it */
		s->env = rocksdb_create_mem_env();
		rocksdb_options_set_env(s->opts, s->env);
	}
	rocksdb_options_set_create_if_missing(s->opts, o->create_if_missing);
	rocksdb_options_set_create_missing_column_families(s->opts, 1);
	rocksdb_options_set_max_background_jobs(s->opts, 2);
	rocksdb_options_set_write_buffer_size(s->opts, STO_WRITE_BUFFER_BYTES);
	/* every CF's options are copies of these: the same buffers each,
	 * but the adjacency CF's (set_adj_options) */
	s->memtable_bytes_max =
	    ((uint64_t)(STO_CF_COUNT - 1) * STO_WRITE_BUFFER_BYTES +
	     STO_ADJ_WRITE_BUFFER_BYTES) *
	    (uint64_t)rocksdb_options_get_max_write_buffer_number(s->opts);
	rocksdb_options_set_keep_log_file_num(s->opts, 4);
	/* fatal only: in this RocksDB build a LOG write that fails on a full
	 * disk aborts the process (an assertion); our own log reports errors */
	rocksdb_options_set_info_log_level(s->opts, 4);
	rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
	/* the adjacency CF's hash memtable takes one writer at a time (apply
	 * is the only one) */
	rocksdb_options_set_allow_concurrent_memtable_write(s->opts, 0);
	s->cache = rocksdb_cache_create_lru(
	    o->block_cache_bytes ? o->block_cache_bytes
	                         : STO_BLOCK_CACHE_BYTES_DEFAULT);
	s->bbto = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(s->bbto, s->cache);
	rocksdb_block_based_options_set_block_size(s->bbto, STO_BLOCK_BYTES);
	rocksdb_block_based_options_set_filter_policy(
	    s->bbto, rocksdb_filterpolicy_create_bloom(10));
	/* Index and filter blocks stay in the table readers rather than in
	 * the LRU cache: one cache lookup less per Seek. */
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->bbto,
	                                                              0);
	rocksdb_options_set_block_based_table_factory(s->opts, s->bbto);
	s->row_cache = rocksdb_cache_create_lru(STO_ROW_CACHE_BYTES);
	rocksdb_options_set_row_cache(s->opts, s->row_cache);
	set_adj_options(s);
	/* The requests CF is read once per client write with a request id,
	 * almost always for an id it does not hold: a bloom filter over the
	 * memtable's whole keys answers those without a skip-list search. */
	s->req_opts = rocksdb_options_create_copy(s->opts);
	rocksdb_options_set_memtable_prefix_bloom_size_ratio(
	    s->req_opts, STO_REQ_MEMTABLE_BLOOM_RATIO);
	rocksdb_options_set_memtable_whole_key_filtering(s->req_opts, 1);
	/* The vector index graphs' CF is written on every apply that
	 * touches a graph (about 9.5 changed lists per vector inserted at
	 * 100,000 nodes) and read almost never: whole at open or after a
	 * rejected batch, by DROP INDEX and by /admin/digest. A vector
	 * memtable appends a write and sorts once at the flush (or at a
	 * read) where the skip list searched its place on every write: that
	 * search was 15 % of a node's CPU during vector inserts. Point reads
	 * of it (the index header at open) sort a copy: hnsw_store.c answers
	 * the build progress from memory instead. */
	s->hnsw_opts = rocksdb_options_create_copy(s->opts);
	rocksdb_options_set_memtable_vector_rep(s->hnsw_opts);
	s->wo = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(s->wo, o->sync_writes ? 1 : 0);
	rocksdb_writeoptions_disable_WAL(s->wo, o->wal_off ? 1 : 0);
	s->ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_total_order_seek(s->ro, 1);
	s->ro_bulk = rocksdb_readoptions_create();
	rocksdb_readoptions_set_total_order_seek(s->ro_bulk, 1);
	rocksdb_readoptions_set_fill_cache(s->ro_bulk, 0);
}

/* Whether the meta CF holds any key (a store written before the format
 * marker existed always has its applied index there). */
static int meta_empty(struct sto_store *s, int *empty)
{
	rocksdb_iterator_t *it =
	    rocksdb_create_iterator_cf(s->db, s->ro, s->cf[STO_CF_META]);
	rocksdb_iter_seek_to_first(it);
	*empty = !rocksdb_iter_valid(it);
	return sto_iter_close(it, 0, NULL, "scan meta");
}

/* Checks the format marker; a new, empty store gets one. */
static int store_format(struct sto_store *s, char *errmsg)
{
	char k = STO_META_FORMAT, *v, *err = NULL;
	size_t vlen;
	int empty, rv = sto_get(s, s->ro, STO_CF_META, &k, 1, &v, &vlen);
	if (!rv && v) {
		uint32_t ver = vlen == 4 ? lora_get_be32((uint8_t *)v) : 0;
		rocksdb_free(v);
		if (ver == STO_FORMAT_VERSION)
			return 0;
		return lora_errf(LORA_EINVAL, errmsg,
		                 "state store has storage format %u, this "
		                 "build reads format %u",
		                 ver, STO_FORMAT_VERSION);
	}
	if (!rv)
		rv = meta_empty(s, &empty);
	if (rv)
		return lora_errf(rv, errmsg, "read format marker: %s",
		                 lora_strerror(rv));
	if (!empty)
		return lora_errf(
		    LORA_EINVAL, errmsg,
		    "state store has storage format 1 (one key "
		    "per adjacency entry), this build reads format "
		    "%u: rebuild the state from the Raft log or a "
		    "checkpoint",
		    STO_FORMAT_VERSION);
	uint8_t b[4];
	lora_put_be32(b, STO_FORMAT_VERSION);
	rocksdb_put_cf(s->db, s->wo, s->cf[STO_CF_META], &k, 1, (char *)b, 4,
	               &err);
	return err ? sto_rocks_err(err, errmsg, "write format marker") : 0;
}

static int store_load(struct sto_store *s, char *errmsg)
{
	uint64_t a;
	char k = STO_META_APPLIED;
	int rv = store_format(s, errmsg);
	if (rv)
		return rv;
	rv = sto_meta_get_u64(s, s->ro, &k, 1, &a);
	if (rv)
		return lora_errf(rv, errmsg, "read applied index: %s",
		                 lora_strerror(rv));
	atomic_store(&s->applied, a);
	rv = sto_tok_load(s, errmsg);
	if (!rv)
		rv = sto_cat_load(s, errmsg);
	return rv;
}

int sto_open(const char *dir, const struct sto_options *opts,
             struct sto_store **out, char *errmsg)
{
	struct sto_options defaults;
	if (!opts) {
		sto_options_init(&defaults);
		opts = &defaults;
	}
	/* without the WAL a crash loses every apply not yet flushed: only
	 * for a store that is gone at close anyway */
	if (opts->wal_off && !opts->mem_env)
		return lora_errf(
		    LORA_EINVAL, errmsg,
		    "open %s: wal_off is for in-memory stores only", dir);
	struct sto_store *s = lora_calloc(1, sizeof(*s));
	if (!s)
		return lora_errf(LORA_ENOMEM, errmsg, "open %s: out of memory",
		                 dir);
	pthread_mutex_init(&s->tok_mu, NULL);
	pthread_mutex_init(&s->apply_mu, NULL);
	sto_ncache_init(s);
	sto_ucache_init(s);
	/* without memory for it, reads go to the database */
	s->meta_cache =
	    lora_calloc(STO_META_CACHE_SLOTS, sizeof *s->meta_cache);
	s->adjc =
	    sto_adjc_new(opts->adj_cache_bytes ? opts->adj_cache_bytes
	                                       : STO_ADJ_CACHE_BYTES_DEFAULT);
	s->request_window = opts->request_window ? opts->request_window
	                                         : STO_REQUEST_WINDOW_DEFAULT;
	set_rocks_options(s, opts);
	const rocksdb_options_t *cfo[STO_CF_COUNT];
	for (int i = 0; i < STO_CF_COUNT; i++)
		cfo[i] = i == STO_CF_ADJ    ? s->adj_opts
		         : i == STO_CF_REQ  ? s->req_opts
		         : i == STO_CF_HNSW ? s->hnsw_opts
		                            : s->opts;
	char *err = NULL;
	s->db = rocksdb_open_column_families(s->opts, dir, STO_CF_COUNT,
	                                     sto_cf_names, cfo, s->cf, &err);
	int rv = 0;
	if (err) {
		rv = sto_rocks_err(err, errmsg, "open state store");
		lora_errwrap(rv, errmsg, "%s", dir);
		s->db = NULL;
	} else {
		rv = store_load(s, errmsg);
		if (!rv)
			rv = sto_hnsw_open(s, errmsg);
	}
	if (rv) {
		sto_close(s);
		return rv;
	}
	*out = s;
	return 0;
}

void sto_close(struct sto_store *s)
{
	if (!s)
		return;
	if (s->db) {
		for (int i = 0; i < STO_CF_COUNT; i++)
			rocksdb_column_family_handle_destroy(s->cf[i]);
		rocksdb_close(s->db);
	}
	rocksdb_readoptions_destroy(s->ro);
	rocksdb_readoptions_destroy(s->ro_bulk);
	rocksdb_writeoptions_destroy(s->wo);
	rocksdb_options_destroy(s->opts);
	rocksdb_block_based_options_destroy(s->bbto);
	rocksdb_options_destroy(s->adj_opts);
	rocksdb_options_destroy(s->req_opts);
	rocksdb_options_destroy(s->hnsw_opts);
	rocksdb_block_based_options_destroy(s->adj_bbto);
	rocksdb_cache_destroy(s->cache);
	rocksdb_cache_destroy(s->row_cache);
	if (s->env) /* after the database that used it */
		rocksdb_env_destroy(s->env);
	for (int i = 0; i < STO_TOK_KINDS; i++)
		sto_tok_free(&s->tok[i]);
	sto_hnsw_close(s);
	sto_cat_free(&s->cat);
	lora_free(s->meta_cache);
	sto_adjc_free(s->adjc);
	pthread_mutex_destroy(&s->tok_mu);
	pthread_mutex_destroy(&s->apply_mu);
	sto_ncache_free(s);
	sto_ucache_free(s);
	lora_free(s->live);
	lora_free(s);
}

uint64_t sto_applied_index(struct sto_store *s)
{
	return atomic_load(&s->applied);
}

/* Flushes CF i's memtable and waits: 0, or the failure. */
static int flush_cf(struct sto_store *s, int i, char *errmsg)
{
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(fo, 1);
	char *err = NULL;
	rocksdb_flush_cf(s->db, fo, s->cf[i], &err);
	rocksdb_flushoptions_destroy(fo);
	return err ? sto_rocks_err(err, errmsg, "flush") : 0;
}

int sto_checkpoint(struct sto_store *s, const char *dir, uint64_t *index_out,
                   char *errmsg)
{
	char *err = NULL;
	/* The memtables are flushed before apply stops: the checkpoint's own
	 * flush, under apply_mu, is then only what came meanwhile (a sort of
	 * up to 256 MiB of adjacency memtable otherwise held apply up). A
	 * failure here shows again in the checkpoint's own flush. */
	char ferr[LORA_ERRMSG_BYTES];
	for (int i = 0; i < STO_CF_COUNT; i++)
		if (flush_cf(s, i, ferr))
			break;
	pthread_mutex_lock(&s->apply_mu);
	uint64_t index = atomic_load(&s->applied);
	rocksdb_checkpoint_t *cp =
	    rocksdb_checkpoint_object_create(s->db, &err);
	if (!err) {
		/* log_size_for_flush 0: always flush, so the checkpoint holds
		 * every applied batch in its SST files. */
		rocksdb_checkpoint_create(cp, dir, 0, &err);
		rocksdb_checkpoint_object_destroy(cp);
	}
	pthread_mutex_unlock(&s->apply_mu);
	if (err) {
		int rv = sto_rocks_err(err, errmsg, "checkpoint");
		return lora_errwrap(rv, errmsg, "%s", dir);
	}
	if (index_out)
		*index_out = index;
	return 0;
}

int sto_compact(struct sto_store *s, char *errmsg)
{
	int rv = 0;
	for (int i = 0; !rv && i < STO_CF_COUNT; i++) {
		rv = flush_cf(s, i, errmsg);
		/* The C API reports no error for a manual compaction; a
		 * failed one leaves the data as it was. */
		if (!rv)
			rocksdb_compact_range_cf(s->db, s->cf[i], NULL, 0, NULL,
			                         0);
	}
	return rv;
}

/* ---- memory
 * -------------------------------------------------------------------- */

/* Sum of an integer property over every column family. */
static uint64_t prop_sum(struct sto_store *s, const char *name)
{
	uint64_t sum = 0;
	for (int i = 0; i < STO_CF_COUNT; i++) {
		uint64_t v = 0;
		if (!rocksdb_property_int_cf(s->db, s->cf[i], name, &v))
			sum += v;
	}
	return sum;
}

void sto_memory(struct sto_store *s, struct sto_memory *out)
{
	memset(out, 0, sizeof *out);
	out->block_cache = rocksdb_cache_get_usage(s->cache);
	out->block_cache_pinned = rocksdb_cache_get_pinned_usage(s->cache);
	out->block_cache_capacity = rocksdb_cache_get_capacity(s->cache);
	out->row_cache = rocksdb_cache_get_usage(s->row_cache);
	out->row_cache_capacity = rocksdb_cache_get_capacity(s->row_cache);
	out->memtables = prop_sum(s, "rocksdb.cur-size-all-mem-tables");
	out->memtables_max = s->memtable_bytes_max;
	out->table_readers = prop_sum(s, "rocksdb.estimate-table-readers-mem");
	out->vector_graphs = sto_hnsw_bytes(s);
	sto_ncache_bytes(s, &out->node_table, &out->vector_columns);
	out->adjacency_cache =
	    atomic_load_explicit(&s->adjc_bytes, memory_order_relaxed);
}

/* ---- test hooks
 * ---------------------------------------------------------------- */

int sto_testing_wait_idle(struct sto_store *s, uint64_t deadline_ms)
{
	for (;;) {
		if (prop_sum(s, "rocksdb.num-running-flushes") == 0 &&
		    prop_sum(s, "rocksdb.num-running-compactions") == 0 &&
		    prop_sum(s, "rocksdb.mem-table-flush-pending") == 0 &&
		    prop_sum(s, "rocksdb.compaction-pending") == 0)
			return 0;
		if (lora_now_ms() >= deadline_ms)
			return LORA_ETIMEOUT;
		struct timespec ts = {0, 5 * 1000 * 1000}; /* RocksDB has no
		                                            * idle callback */
		nanosleep(&ts, NULL);
	}
}

int sto_testing_del_raw(struct sto_store *s, const char *cf, const void *key,
                        size_t klen)
{
	for (int i = 0; i < STO_CF_COUNT; i++) {
		if (strcmp(cf, sto_cf_names[i]))
			continue;
		char *err = NULL;
		atomic_fetch_add(&s->nc_gen, 1); /* as apply: copies go stale */
		sto_live_forget(s);
		sto_adjc_clear(s->adjc); /* a chunk may change */
		sto_ucache_forget(s);    /* a user record may change */
		rocksdb_delete_cf(s->db, s->wo, s->cf[i], key, klen, &err);
		sto_ucache_forget(s);
		atomic_fetch_add(&s->nc_gen, 1);
		return err ? sto_rocks_err(err, NULL, "delete raw") : 0;
	}
	return LORA_EINVAL;
}

int sto_testing_put_raw(struct sto_store *s, const char *cf, const void *key,
                        size_t klen, const void *val, size_t vlen)
{
	for (int i = 0; i < STO_CF_COUNT; i++) {
		if (strcmp(cf, sto_cf_names[i]))
			continue;
		char *err = NULL;
		atomic_fetch_add(&s->nc_gen, 1); /* as apply: copies go stale */
		sto_live_forget(s);
		sto_adjc_clear(s->adjc); /* a chunk may change */
		sto_ucache_forget(s);    /* a user record may change */
		rocksdb_put_cf(s->db, s->wo, s->cf[i], key, klen, val, vlen,
		               &err);
		sto_ucache_forget(s);
		atomic_fetch_add(&s->nc_gen, 1);
		return err ? sto_rocks_err(err, NULL, "put raw") : 0;
	}
	return LORA_EINVAL;
}

int sto_testing_dump_raw(struct sto_store *s, const char *cf,
                         struct lora_buf *out)
{
	for (int i = 0; i < STO_CF_COUNT; i++) {
		if (strcmp(cf, sto_cf_names[i]))
			continue;
		rocksdb_iterator_t *it =
		    rocksdb_create_iterator_cf(s->db, s->ro, s->cf[i]);
		int rv = 0;
		for (rocksdb_iter_seek_to_first(it);
		     !rv && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
			size_t kl, vl;
			const char *k = rocksdb_iter_key(it, &kl);
			const char *v = rocksdb_iter_value(it, &vl);
			uint8_t l[8];
			lora_put_be32(l, (uint32_t)kl);
			lora_put_be32(l + 4, (uint32_t)vl);
			rv = lora_buf_append(out, l, 8);
			if (!rv)
				rv = lora_buf_append(out, k, kl);
			if (!rv)
				rv = lora_buf_append(out, v, vl);
		}
		return sto_iter_close(it, rv, NULL, "dump raw");
	}
	return LORA_EINVAL;
}
