/*
 * stoInt.h - private to storage/: the store handle, key layout, record and
 * value codecs, token interning and the index catalogue. Nothing outside
 * storage/ includes this header (tests use sto_testing.h).
 *
 * Key layout (all integers big-endian, so byte order is numeric order):
 *
 *   nodes    be64 node                      -> node record
 *   edges    'E' be64 edge                  -> edge record
 *   adjacency be64 node u8 dir be32 chunk   -> packed adjacency chunk
 *            (dir 'O' outgoing, 'I' incoming; see "adjacency" below)
 *   vectors  u8 entity be64 owner be32 key  -> Lora__Vector bytes
 *   index    'L' be32 label be64 node       -> ""  (label index)
 *            'P' be32 label be32 key <ordered value> be64 node -> ""
 *   meta     see the STO_META_* constants below.
 */
#ifndef LORA_STO_INT_H
#define LORA_STO_INT_H

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>

#include "storage.h"

/* ---- column families ---------------------------------------------------- */

enum sto_cf {
	STO_CF_DEFAULT,
	STO_CF_NODES,
	STO_CF_EDGES,
	STO_CF_VECTORS,
	STO_CF_INDEX,
	STO_CF_META,
	STO_CF_ADJ,
	STO_CF_REQ,  /* request ids of recent entries; not in the digest */
	STO_CF_HNSW, /* vector index graphs (hnsw_store.c); not in the digest */
	STO_CF_COUNT
};

extern const char *const sto_cf_names[STO_CF_COUNT];

/* ---- meta keys ---------------------------------------------------------- */

#define STO_META_APPLIED     'a' /* "a" -> be64 applied index */
#define STO_META_REJECTED    'j' /* "j" be64 index -> be32 lora_err */
#define STO_META_NEXT_NODE   'n' /* "n" -> be64 next node id */
#define STO_META_NEXT_EDGE   'e' /* "e" -> be64 next edge id */
#define STO_META_NODE_COUNT  'N' /* "N" -> be64 node count */
#define STO_META_EDGE_COUNT  'R' /* "R" -> be64 edge count */
#define STO_META_LABEL_COUNT 'l' /* "l" be32 label -> be64 count */
#define STO_META_TYPE_COUNT  'r' /* "r" be32 type -> be64 count */
#define STO_META_TOKEN       't' /* "t" u8 kind name -> be32 token */
#define STO_META_TOKEN_NAME  'T' /* "T" u8 kind be32 token -> name */
#define STO_META_INDEX       'x' /* "x" name -> Lora__CreateIndex bytes */
#define STO_META_FORMAT      'F' /* "F" -> be32 storage format version */
#define STO_META_USER        'U' /* "U" name -> Lora__UserRecord bytes */
#define STO_META_SECRET      'K' /* "K" -> the cluster secret (bytes) */
/* In the `requests` CF (its own, so that meta stays small and fast): */
#define STO_META_REQUEST 'q' /* "q" request id -> be64 entry index */
#define STO_META_REQUEST_ORDER                                                 \
	'Q' /* "Q" be64 index -> (be16 len, id)* of that entry */
#define STO_REQUEST_ID_BYTES_MAX 256
#define STO_REQUEST_WINDOW_DEFAULT                                             \
	100000 /* entries whose request ids are kept */

/* The on-disk layout this build reads and writes. Version 1 (no "F" key)
 * kept one empty-valued key per adjacency entry in the edges CF. */
#define STO_FORMAT_VERSION 2u

/* Key prefixes inside the edges and index column families, and the
 * direction byte of adjacency keys. */
#define STO_K_EDGE  'E'
#define STO_K_OUT   'O'
#define STO_K_IN    'I'
#define STO_K_LABEL 'L'
#define STO_K_PROP  'P'
#define STO_K_RPROP 'R' /* relationship property index entries */
#define STO_K_TEXT  'X' /* text index postings: label key trigram node */
/* 'X' label key trigram(3) node */
#define STO_TEXT_KEY_BYTES 20
/* A needle shorter than this has no trigram: the query scans. */
#define STO_TEXT_NEEDLE_MIN 3
/* Trigrams of a needle whose postings a seek intersects (spread over
 * it); more narrow little further. */
#define STO_TEXT_SEEK_TRIGRAMS_MAX 16

#define STO_ADJ_KEY_BYTES   13 /* node + direction + chunk number */
#define STO_VEC_KEY_BYTES   13 /* entity + owner + key */
#define STO_LABEL_KEY_BYTES 13 /* prefix + label + node */

/* Token kinds (also the `kind` of sto_view_names). */
enum sto_tok_kind { STO_TOK_LABEL, STO_TOK_TYPE, STO_TOK_KEY, STO_TOK_KINDS };

/* Tokens per kind: ids are 32-bit and assigned densely from 0. */
#define STO_TOKENS_MAX 100000000u
/* Nesting depth of lists inside an indexed value. */
#define STO_VALUE_DEPTH_MAX 32
/* Coordinates in one vector (as Neo4j's vector indexes). */
#define STO_VECTOR_DIMENSIONS_MAX 4096
/* Indexes in the catalogue. */
#define STO_INDEXES_MAX 1024
/* Properties one node key constraint may combine. */
#define STO_NODE_KEY_PROPS_MAX 16
/* Type names a view caches by token (larger tokens are looked up under
 * the token lock on every use). */
#define STO_VIEW_TYPE_NAMES_MAX 4096u

/* ---- adjacency chunks ------------------------------------------------------
 *
 * The adjacency of one (node, direction) is a list of entries (type token,
 * other node, edge id) cut into chunks of at most STO_ADJ_CHUNK_ENTRIES_MAX
 * entries, key (node, direction, chunk number 0..nchunks-1). Every chunk
 * but the last is full, the last holds at least one entry, and an empty
 * list has no key at all. Values:
 *
 *   chunk 0:  'A' varint(nchunks) varint(n) entry*n
 *   chunk k:  'C' varint(n) entry*n
 *   entry:    varint(type) varint(other) varint(edge)
 *
 * An edge record remembers the chunk holding each of its two entries, so
 * removing one touches chunk 0, that chunk and the last chunk (whose last
 * entry fills the gap).
 */
#define STO_ADJ_CHUNK_ENTRIES_MAX 256u
#define STO_ADJ_CHUNK0_MAGIC      'A'
#define STO_ADJ_CHUNKN_MAGIC      'C'
/* Largest encoded chunk: header + entries of 5 + 10 + 10 bytes. */
#define STO_ADJ_CHUNK_BYTES_MAX (16u + 25u * STO_ADJ_CHUNK_ENTRIES_MAX)

struct sto_adj_ent {
	uint32_t type;
	uint64_t other;
	uint64_t edge;
};

/* Parses the header of chunk number `chunk` (p, len from disk): *nchunks
 * (chunk 0; 0 for the others), *n entries, *body the first entry.
 * LORA_ECORRUPT when malformed. */
int sto_adj_head(const uint8_t *p, size_t len, uint32_t chunk,
                 uint32_t *nchunks, uint32_t *n, const uint8_t **body);
/* Decodes one entry at *p (advanced); LORA_ECORRUPT when malformed. */
int sto_adj_entry(const uint8_t **p, const uint8_t *end, struct sto_adj_ent *e);

/* ---- token cache --------------------------------------------------------- */

/* In-memory copy of one token kind: names by id, plus a hash to find ids. */
struct sto_tokens {
	char **names;    /* names[token], owned, NUL-terminated */
	uint32_t *lens;  /* byte length of each name */
	uint32_t n, cap; /* tokens assigned, array capacity */
	uint32_t *slots; /* open addressing: token + 1, 0 = empty */
	uint32_t nslots; /* power of two, > 2 * n */
};

/* The decoded index catalogue. */
struct sto_catalog {
	Lora__CreateIndex **defs; /* owned, unpacked with lora_pb_allocator */
	size_t n;
};

/*
 * Meta values the apply path reads back on every batch (next ids, counts).
 * Only apply writes them, so a cached value is exact; a value enters when
 * read from the database or when the batch that wrote it committed. Open
 * addressing on the 1- or 5-byte meta key; when full, reads go to the
 * database. Touched only under apply_mu.
 */
#define STO_META_CACHE_SLOTS 4096 /* power of two */
struct sto_meta_slot {
	uint8_t used, klen;
	uint8_t key[5];
	uint64_t v;
};

/* ---- node cache (ncache.c) -------------------------------------------------
 *
 * In-memory copies of the node side, valid for one generation of it: the
 * node table (every node record, by id) and vector columns (see ncache.c
 * for the rules). */
#define STO_NODE_TABLE_BYTES_MAX ((size_t)64 << 20) /* one table */
#define STO_VCOL_BYTES_MAX       ((size_t)96 << 20) /* all columns */
#define STO_VCOLS_MAX            4 /* columns kept by a store */
/* a column at least this large is followed by a malloc trim: its build
 * freed about as much (the scan's blocks, the arrays it outgrew) */
#define STO_VCOL_TRIM_BYTES ((size_t)16 << 20)
#define STO_VIEW_VCOLS      4 /* columns one view can hold */
/* a column rebuilt after a write reads its vectors without filling the
 * block cache only when its last build was at least this share (1/n)
 * of the cache (ncache.c vcol_nofill) */
#define STO_VCOL_NOFILL_SHARE 4
#define STO_NGEN_UNKNOWN      UINT64_MAX
/* Vector property reads in one view after which it builds (or takes) the
 * column of that key over all nodes: a scan reading p.emb of every node
 * pays for it many times over, a query reading a few vectors never. */
#define STO_VCOL_PROP_READS 1024u

/*
 * Adjacency chunk cache (adj_cache.c): the encoding of each adjacency
 * chunk as the last committed batch wrote it or as apply read it, so that
 * the next batch touching the node reads it from memory, not from the
 * adjacency CF's memtables and SST files. Exact: entries change only
 * after a batch's write succeeded, and a write outside apply clears it.
 * At most its budget in bytes (entries, their table); past it a CLOCK
 * hand evicts entries unused since it last passed. An entry's room is its
 * value rounded up to 32 bytes, so a chunk that grows a little is
 * rewritten in place; a value over a quarter of the room beside the
 * table is not kept. Touched under apply_mu (and by the raw-write test
 * hooks and an import's ingestion, which only empty it, on a store no
 * apply runs on meanwhile).
 */
#define STO_ADJ_CACHE_BYTES_DEFAULT ((size_t)32 << 20)
/* The hash of adjacency chunk (node, dir, no): apply's stage of a batch's
 * chunks and the cache both key their tables by it. */
static inline uint64_t sto_adj_chunk_hash(uint64_t node, char dir, uint32_t no)
{
	uint64_t x = node * 0x9e3779b97f4a7c15ULL ^
	             ((uint64_t)no << 1 | (dir == STO_K_IN));
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x ^ x >> 29;
}
struct sto_adjc;
struct sto_adjc_stats {
	uint64_t entries, slots, bytes, budget, hits, misses, evictions;
};
/* NULL without memory (apply then reads every chunk from the store). */
struct sto_adjc *sto_adjc_new(size_t budget);
void sto_adjc_free(struct sto_adjc *a);
void sto_adjc_clear(struct sto_adjc *a);
/* 1 and the value (*len 0: the chunk has no key) when cached, valid until
 * the next put, drop or clear; 0 when not. a may be NULL. */
int sto_adjc_get(struct sto_adjc *a, uint64_t node, char dir, uint32_t no,
                 const char **v, size_t *len);
/* Keeps the value (len 0: no key); a value too large for the budget, or
 * for which no room can be made, leaves no entry. */
void sto_adjc_put(struct sto_adjc *a, uint64_t node, char dir, uint32_t no,
                  const void *v, size_t len);
void sto_adjc_drop(struct sto_adjc *a, uint64_t node, char dir, uint32_t no);
/* Hints that (node, dir, no) will be looked up soon: step 0 asks the CPU
 * to fetch its home slot, step 1 (a few lookups later, once the slot is
 * in cache) the entry the slot points to. A batch's lookups then wait for
 * memory side by side instead of one after another. Changes nothing. */
void sto_adjc_prefetch(const struct sto_adjc *a, uint64_t node, char dir,
                       uint32_t no, int step);
void sto_adjc_stats(const struct sto_adjc *a, struct sto_adjc_stats *out);
size_t sto_adjc_bytes(const struct sto_adjc *a);

/* Node ids the store remembers as existing (apply.c), one bit each: at
 * most 16 MiB; nodes above it are looked up as before. */
#define STO_LIVE_NODE_IDS_MAX ((uint64_t)1 << 27)

struct sto_store {
	rocksdb_t *db;
	uint64_t request_window; /* entries whose request ids are kept */
	/* apply_req.c, under apply_mu: no 'Q' record of an index below this
	 * is left, so pruning seeks here instead of walking the deletions
	 * before it (0: not known yet, seek from the first) */
	uint64_t req_prune_next;
	rocksdb_options_t *opts;
	rocksdb_env_t *env; /* sto_options.mem_env's Env, or NULL */
	rocksdb_block_based_table_options_t *bbto;
	rocksdb_cache_t *cache;
	rocksdb_cache_t *row_cache; /* key-value cache for point reads */
	/* the most all CFs' memtables can hold: per CF, write_buffer_size
	 * times max_write_buffer_number (a full one is flushed; writes
	 * stall when that many wait) */
	uint64_t memtable_bytes_max;
	rocksdb_options_t *adj_opts;  /* adjacency CF: tuned for Gets */
	rocksdb_options_t *req_opts;  /* requests CF: memtable bloom */
	rocksdb_options_t *hnsw_opts; /* vector index graphs: vector memtable */
	rocksdb_block_based_table_options_t *adj_bbto;
	rocksdb_column_family_handle_t *cf[STO_CF_COUNT];
	rocksdb_writeoptions_t *wo;
	rocksdb_readoptions_t *ro; /* latest state, no snapshot */
	/* the same for one-off bulk reads (a vector index build, loading a
	 * graph): fill_cache off, so they leave the block cache to the
	 * queries' working set (their point reads go through iterators,
	 * sto_seek_get: RocksDB 7.8's row cache keeps every Get's value) */
	rocksdb_readoptions_t *ro_bulk;

	pthread_mutex_t tok_mu; /* guards tok[] */
	struct sto_tokens tok[STO_TOK_KINDS];

	pthread_mutex_t apply_mu;         /* serialises apply and checkpoint */
	struct sto_catalog cat;           /* touched only under apply_mu */
	struct sto_meta_slot *meta_cache; /* STO_META_CACHE_SLOTS; NULL: off */
	size_t meta_cached;

	_Atomic uint64_t applied;
	struct sto_ucache *ucache; /* apply_user.c: user records; NULL: off */
	/* ncache.c: copies of the node side for scans, and their generation */
	_Atomic uint64_t nc_gen; /* odd while a batch is being written */
	pthread_mutex_t nc_mu;   /* guards ntab and vcol[] */
	struct sto_ntab *ntab;   /* one reference held here */
	/* generation + 1 whose node table went past its limit: not rebuilt */
	_Atomic uint64_t ntab_big_gen;
	struct sto_vcol *vcol[STO_VCOLS_MAX];
	struct sto_hnsw_set *hnsw; /* hnsw_store.c: vector index graphs */
	/* apply.c: node ids known to exist in the written state, one bit
	 * each (set: the node exists; clear: unknown, read the store).
	 * Touched only under apply_mu; NULL until the first bit is set. */
	uint64_t *live;
	size_t live_words;
	struct sto_adjc *adjc;       /* adj_cache.c; NULL: off */
	_Atomic uint64_t adjc_bytes; /* its bytes after the last apply */
};

/* ---- little helpers -------------------------------------------------------
 */

/* Converts and frees a RocksDB error string; returns LORA_EIO (or
 * LORA_ECORRUPT / LORA_ENOSPC when the text says so). */
int sto_rocks_err(char *rerr, char *errmsg, const char *what);
/* Ends a scan: destroys `it` and returns its error (converted with `what`
 * as context) or, when the iterator had none, rv. */
int sto_iter_close(rocksdb_iterator_t *it, int rv, char *errmsg,
                   const char *what);

/* Reads a be64 from the meta CF (missing: *v = 0). */
int sto_meta_get_u64(struct sto_store *s, const rocksdb_readoptions_t *ro,
                     const char *key, size_t klen, uint64_t *v);

/* ---- varints and keys -----------------------------------------------------
 */

int sto_put_uvarint(struct lora_buf *b, uint64_t v);
/* Writes v as a varint at p, which has room for STO_UVARINT_BYTES_MAX
 * bytes, and returns the byte after it. */
#define STO_UVARINT_BYTES_MAX 10
/* The meta key of entry index's recorded rejection (STO_META_REJECTED),
 * into k (STO_REJECTED_KEY_BYTES). */
#define STO_REJECTED_KEY_BYTES 9
static inline void sto_rejected_key(uint8_t *k, uint64_t index)
{
	k[0] = STO_META_REJECTED;
	lora_put_be64(k + 1, index);
}

static inline uint8_t *sto_uvarint_at(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}
/* Bytes consumed, or 0 when p..end does not hold a valid varint. */
size_t sto_get_uvarint(const uint8_t *p, const uint8_t *end, uint64_t *v);

void sto_key_adj(uint8_t k[STO_ADJ_KEY_BYTES], uint64_t node, char dir,
                 uint32_t chunk);
void sto_key_edge(uint8_t k[9], uint64_t edge);
void sto_key_vec(uint8_t k[STO_VEC_KEY_BYTES], uint32_t entity, uint64_t owner,
                 uint32_t key);
void sto_key_label(uint8_t k[STO_LABEL_KEY_BYTES], uint32_t label,
                   uint64_t node);
/* Prefix 'P' label key (9 bytes) into b (reset first). */
int sto_key_prop_prefix(struct lora_buf *b, uint32_t label, uint32_t key);
/* 'R' type key: the prefix of a relationship property index's entries. */
int sto_key_rprop_prefix(struct lora_buf *b, uint32_t type, uint32_t key);

/*
 * Appends the order-preserving encoding of v to b. Ints and floats share
 * one encoding (Cypher numbers); strings and bytes are escaped so that a
 * shorter string sorts first. LORA_EINVAL for values that cannot be
 * indexed (null, maps, vectors, graph values).
 */
int sto_enc_value(struct lora_buf *b, const Lora__Value *v);
/* Type class byte (first byte) sto_enc_value would write for v; 0 when
 * v cannot be indexed. */
uint8_t sto_enc_class(const Lora__Value *v);

/* ---- records --------------------------------------------------------------
 */

struct sto_prop {
	uint32_t key; /* token */
	uint32_t off; /* value bytes in rec->data */
	uint32_t len;
};

/* A decoded node or edge record. Zero-initialise; free with sto_rec_free. */
struct sto_rec {
	uint32_t *labels;
	uint32_t nlabels, labels_cap;
	struct sto_prop *props;
	uint32_t nprops, props_cap;
	uint32_t nvec;        /* vector properties held in the vectors CF */
	uint32_t type;        /* edges */
	uint64_t from;        /* edges */
	uint64_t to;          /* edges */
	uint32_t chunk[2];    /* edges: adjacency chunk of the entry under
	                       * from (outgoing) and under to (incoming) */
	struct lora_buf data; /* packed Lora__Value bytes of the properties */
};

void sto_rec_free(struct sto_rec *r);
/* Decodes bytes from disk: LORA_ECORRUPT when they are malformed. */
int sto_rec_decode(struct sto_rec *r, int edge, const uint8_t *p, size_t len);
int sto_rec_encode(const struct sto_rec *r, int edge, struct lora_buf *out);
/* Index of property `key` in r, or -1. */
int sto_rec_find_prop(const struct sto_rec *r, uint32_t key);
/* Sets key to the packed bytes val (replaces or appends). */
int sto_rec_set_prop(struct sto_rec *r, uint32_t key, const void *val,
                     size_t len);
void sto_rec_del_prop(struct sto_rec *r, int i);
int sto_rec_has_label(const struct sto_rec *r, uint32_t label);
int sto_rec_add_label(struct sto_rec *r, uint32_t label);
void sto_rec_del_label(struct sto_rec *r, uint32_t label);

/* *has = 1 when node record bytes p carry label token `label` (only the
 * labels are checked; LORA_ECORRUPT when they do not decode). */
int sto_rec_node_has_label(const uint8_t *p, size_t len, uint32_t label,
                           int *has);
/*
 * Finds property `key` in the bytes of a node record (from disk) without
 * decoding the others: 0 with *val, *vlen (borrowed from p) when present,
 * LORA_ENOTFOUND when the record holds no such scalar property (*nvec then
 * says how many vector properties live in the vectors CF), LORA_ECORRUPT
 * when the bytes up to the property are malformed.
 */
int sto_rec_node_prop(const uint8_t *p, size_t len, uint32_t key,
                      const uint8_t **val, size_t *vlen, uint32_t *nvec);
/* Decodes packed Lora__Value bytes of a scalar in place (strings borrow
 * from p). STO_REF_OTHER in out->kind for other kinds; LORA_ECORRUPT when
 * the bytes are malformed. */
int sto_value_ref(const uint8_t *p, size_t len, struct sto_prop_ref *out);

/* Unpacks stored value bytes: LORA_ENOMEM or LORA_ECORRUPT on failure
 * (bytes that do not decode, or nest deeper than LORA_RESULT_DEPTH_MAX). */
int sto_value_unpack(const uint8_t *p, size_t len, Lora__Value **out);
/* Packs v into a new lora_malloc buffer. */
int sto_value_pack(const Lora__Value *v, uint8_t **out, size_t *len);
/* Checks a vector's shape; LORA_EVECTOR with a message when it is bad. */
int sto_vector_check(const Lora__Vector *vec, char *errmsg);

/* ---- tokens ---------------------------------------------------------------
 */

/* Token of name in the cache, or -1 when it has none. Locks tok_mu. */
int64_t sto_tok_find(struct sto_store *s, int kind, const char *name,
                     size_t len);
/* Name of token (borrowed, valid until sto_close) or NULL. Locks. */
const char *sto_tok_name(struct sto_store *s, int kind, uint32_t tok);
/* Token of name (len bytes, any bytes) in t, or -1; no locking. */
int64_t sto_tokens_lookup(const struct sto_tokens *t, const char *name,
                          size_t len);
/* Makes room for `extra` more tokens so that sto_tok_add cannot fail. */
int sto_tok_reserve(struct sto_tokens *t, uint32_t extra);
/* Adds name (ownership taken) as token t->n; room must be reserved. */
void sto_tok_add(struct sto_tokens *t, char *name, uint32_t len);
void sto_tok_free(struct sto_tokens *t);
/* Loads every token from the meta CF into the cache. */
int sto_tok_load(struct sto_store *s, char *errmsg);

/* ---- catalogue ------------------------------------------------------------
 */

int sto_cat_load(struct sto_store *s, char *errmsg);
void sto_cat_free(struct sto_catalog *c);
/* Deep copy (pack + unpack) of def. */
int sto_index_dup(const Lora__CreateIndex *def, Lora__CreateIndex **out);

/* ---- views ----------------------------------------------------------------
 */

/* Property key tokens a view remembers for sto_view_node_prop, and the
 * longest name it remembers (longer ones are looked up every time). */
#define STO_VIEW_KEYS              8u
#define STO_VIEW_SEEK_PREFIX_BYTES 9u /* 'P' label key, as iter.c seeks */
#define STO_VIEW_KEY_NAME_BYTES    40u

struct sto_view {
	struct sto_store *s;
	const rocksdb_snapshot_t *snap;
	rocksdb_readoptions_t *ro; /* pinned to snap */
	/* bulk 1: the scans opened and stepped meanwhile leave the block
	 * cache alone (ro_bulk: ro with fill_cache off, made on first use),
	 * for one-off reads such as the scan that builds a vector column */
	int bulk;
	rocksdb_readoptions_t *ro_bulk;
	uint64_t applied;
	/* Type names by token, filled on use (borrowed from the store's
	 * token cache, which never drops a name). */
	const char **tnames;
	uint32_t ntnames;
	/* The snapshot's index catalogue, loaded on the first index seek. */
	Lora__CreateIndex **defs;
	size_t ndefs;
	int defs_loaded;
	/* sto_view_node_prop: an iterator on the nodes CF that moves forward
	 * (NULL until first used), and the last property keys looked up. */
	rocksdb_iterator_t *node_it;
	struct {
		char name[STO_VIEW_KEY_NAME_BYTES];
		uint32_t tok;
	} keys[STO_VIEW_KEYS];
	unsigned nkeys, key_next;
	/* sto_view_next_node: its own nodes-CF cursor (node_cursor reads the
	 * node it is on from it), and the last label looked up */
	rocksdb_iterator_t *scan_it;
	char scan_label[STO_VIEW_KEY_NAME_BYTES];
	int64_t scan_tok;              /* -1: unknown label */
	uint64_t next_node, next_edge; /* read once: ids_loaded */
	int ids_loaded;
	/* node cache: the snapshot's generation (STO_NGEN_UNKNOWN: no
	 * copies), the node table in use (a reference) and the record the
	 * scan handed out from it, the table being built by a scan from the
	 * first node (nbuild, next id it expects), the vector columns held */
	uint64_t ngen;
	struct sto_ntab *ntab;
	int ntab_tried;
	size_t ncur;
	struct sto_ntab *nbuild;
	uint64_t nbuild_from;
	struct sto_vcol *vcols[STO_VIEW_VCOLS];
	unsigned nvcols;
	uint64_t vec_reads; /* vector property reads so far */
	const float *vrow;  /* node_prop_bytes: the row it found */
	uint32_t vdim;
	size_t vcur; /* index of the last row found in a column */
	/* index seeks (iter.c seek_take): one index-CF iterator bounded to
	 * the 'P'/'R' label key prefix of the last seek, kept for the next
	 * seek of that prefix (a Seek on it costs the same as on a new one,
	 * without creating and freeing a RocksDB iterator per seek). Lent to
	 * one sto_iter at a time (lent 1); a seek while it is lent, or in a
	 * bulk view, makes its own. ro (pinned to snap) bounds it with upper;
	 * both are freed with the view, the iterator first. */
	struct {
		rocksdb_iterator_t *it;
		rocksdb_readoptions_t *ro;
		uint8_t pfx[STO_VIEW_SEEK_PREFIX_BYTES];
		uint8_t upper[STO_VIEW_SEEK_PREFIX_BYTES];
		int lent;
	} seek;
};

/* apply_user.c: the user record cache (s->ucache) of sto_user_get;
 * without memory for it, reads go to the database. */
void sto_ucache_init(struct sto_store *s);
void sto_ucache_free(struct sto_store *s);
/* Retires every cached user record (a write outside apply: the test-only
 * raw writes of store.c, called before and after them). */
void sto_ucache_forget(struct sto_store *s);

/* apply.c: forgets every node the store knew to exist (after a write
 * that bypassed apply; the caller holds apply_mu or is the only thread). */
void sto_live_forget(struct sto_store *s);

/* Store side. sto_ncache_write_begin says whether the batch changes nodes
 * or vectors and, if so, makes the generation odd; pass its answer to
 * sto_ncache_write_end after the write (whatever its outcome). */
void sto_ncache_init(struct sto_store *s);
void sto_ncache_free(struct sto_store *s);
int sto_ncache_write_begin(struct sto_store *s,
                           const Lora__MutationBatch *batch);
void sto_ncache_write_end(struct sto_store *s, int touches);
/* A view's generation: read before taking the snapshot, then checked
 * after it (STO_NGEN_UNKNOWN when a write was under way). */
uint64_t sto_ncache_gen_before(struct sto_store *s);
uint64_t sto_ncache_gen_after(struct sto_store *s, uint64_t before);
/* Releases what the view holds. */
void sto_ncache_view_close(struct sto_view *v);
/* A point read through an iterator (for bulk reads: no row cache): seeks
 * it to key; *val (malloc'd, rocksdb_free) and *vlen when the key is
 * there, *val NULL when not. Forward seeks in key order are cheapest. */
int sto_seek_get(rocksdb_iterator_t *it, const void *key, size_t klen,
                 char **val, size_t *vlen);
/* Bytes of the published node table and vector columns (sto_memory). */
void sto_ncache_bytes(struct sto_store *s, uint64_t *node_table,
                      uint64_t *vector_columns);

/* The node table. _get: the store's table of generation gen, with a
 * reference (NULL: none); _release drops one. Building: _build_new, then
 * _build_add every record in ascending id order (LORA_ELIMIT past
 * STO_NODE_TABLE_BYTES_MAX, LORA_ENOMEM), then _publish (takes it) or
 * _discard. Lookups: _find_ge is the index of the first id >= id (count:
 * none); _id reads entry i (record bytes borrowed from the table). */
struct sto_ntab *sto_ntab_get(struct sto_store *s, uint64_t gen);
void sto_ntab_release(struct sto_ntab *t);
struct sto_ntab *sto_ntab_build_new(uint64_t gen);
int sto_ntab_build_add(struct sto_ntab *t, uint64_t id, const uint8_t *p,
                       size_t len);
void sto_ntab_publish(struct sto_store *s, struct sto_ntab *t);
void sto_ntab_discard(struct sto_ntab *t);
size_t sto_ntab_count(const struct sto_ntab *t);
size_t sto_ntab_find_ge(const struct sto_ntab *t, uint64_t id);
uint64_t sto_ntab_id(const struct sto_ntab *t, size_t i, const uint8_t **p,
                     size_t *len);
/* Vector key `key` (a token) of node id from the view's column of all
 * nodes: 1 with *row, *dim (borrowed until sto_view_close; coordinate d
 * is (*row)[d * STO_VCOL_BLOCK]), 0 when the
 * node has no such float32 vector, -1 when the view has no column (the
 * caller reads RocksDB). Counts the read toward STO_VCOL_PROP_READS. */
int sto_ncache_node_vector(struct sto_view *v, uint64_t id, const char *key,
                           uint32_t tok, const float **row, uint32_t *dim);
/* A vector column of generation gen with a reference, or NULL. */
struct sto_vcol *sto_vcol_get(struct sto_store *s, uint64_t gen, uint32_t label,
                              uint32_t key);
void sto_vcol_release(struct sto_vcol *c);

/* Name of type token tok through the view's cache; NULL when unknown. */
const char *sto_view_type_name(struct sto_view *v, uint32_t tok);

/* Builds a NodeValue / RelValue from a record (vectors merged in). */
int sto_view_build_node(struct sto_view *v, uint64_t id,
                        const struct sto_rec *r, Lora__NodeValue **out);

/* Reads from a RocksDB handle with readoptions; *val from rocksdb (free
 * with rocksdb_free), NULL when absent. */
int sto_get(struct sto_store *s, const rocksdb_readoptions_t *ro, int cf,
            const void *key, size_t klen, char **val, size_t *vlen);

/* hnsw_store.c: the vector index graphs. _open loads those of the
 * catalogue (after it is loaded); _committed follows every apply (ok: the
 * batch was written) and tells the graphs which generation they match;
 * _bytes is the memory they hold. */
int sto_hnsw_open(struct sto_store *s, char *errmsg);
void sto_hnsw_close(struct sto_store *s);
void sto_hnsw_committed(struct sto_store *s, int ok);
/* 1 when a relationship vector index has a graph: a batch that creates or
 * deletes relationships then changes a graph, so it moves nc_gen (which
 * tells views whether the graphs match their snapshot) as node writes do
 * (sto_ncache_write_begin). */
int sto_hnsw_has_edge_index(struct sto_store *s);

/* A leapfrog join of n index entry lists: it[i] walks the entries under
 * prefix p[i] (each key p[i] + the node id, big-endian, ascending); the
 * ids of the nodes under every prefix are appended to ids (8 bytes each,
 * ascending). Each p[i] is extended and restored while seeking. *seen
 * (NULL: not counted) counts the entries looked at. 0, or LORA_ENOMEM;
 * the caller reads the iterators' errors. */
int sto_join_ids(rocksdb_iterator_t *const *it, struct lora_buf *p, size_t n,
                 struct lora_buf *ids, _Atomic uint64_t *seen);

#endif /* LORA_STO_INT_H */
