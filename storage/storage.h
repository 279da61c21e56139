/*
 * storage.h - the graph store of one LoraDB node, on RocksDB.
 *
 * Two RocksDB instances live under a node's data directory:
 *
 *   state/    column families nodes, edges, vectors, index, meta: the graph
 *             as of the last applied log entry (sto_store).
 *   raftlog/  Raft log entries and the hard state, written with sync
 *             (sto_log).
 *
 * The graph changes only through sto_apply(), which applies one mutation
 * batch in one RocksDB write batch together with its log index. Reads go
 * through a read view (sto_view) pinned to a RocksDB snapshot, so a query
 * sees one consistent state while writes continue.
 *
 * Thread safety: a sto_store may be used from many threads; sto_apply calls
 * must be serialised by the caller (the apply loop). A sto_view and its
 * iterators belong to one thread at a time. A sto_log is single-threaded.
 *
 * Ownership: every pointer returned through an out-parameter is owned by the
 * caller and is freed with the function named beside it. Protobuf messages
 * returned here are freed with their generated *__free_unpacked function
 * and &lora_pb_allocator. Strings inside a struct sto_item are borrowed and
 * stay valid until the next sto_iter_next or sto_iter_free on that iterator.
 *
 * Errors: every fallible function returns 0 or an enum lora_err code; where
 * an errmsg argument exists it is a LORA_ERRMSG_BYTES buffer (may be NULL)
 * that receives a sentence with context. Bytes read from disk are never
 * trusted: corruption gives LORA_ECORRUPT, never a crash.
 */
#ifndef LORA_STORAGE_H
#define LORA_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "lora.h"
#include "lora_pb.h"

/* ---- limits ------------------------------------------------------------ */

#define STO_MUTATIONS_PER_BATCH_MAX 1000000     /* mutations in one batch */
#define STO_NAME_BYTES_MAX          65535       /* label / type / key names */
#define STO_RECORD_BYTES_MAX        (64u << 20) /* one encoded node or edge */
#define STO_LOG_READ_BYTES_MAX      (64u << 20) /* one sto_log_entries call */

/* ---- the state store --------------------------------------------------- */

struct sto_store;
struct sto_view;
struct sto_iter;

struct sto_options {
	int create_if_missing;    /* create state/ when absent (default 1) */
	size_t block_cache_bytes; /* 0: storage default */
	size_t adj_cache_bytes;   /* apply's adjacency chunk cache (0: 32 MiB;
	                           * see stoInt.h) */
	int sync_writes;          /* fsync each apply (default 0: the Raft log
	                           * is the durable record; state is rebuilt
	                           * from it after a crash) */
	uint64_t request_window;  /* request ids of the last this many entries
	                           * are kept (0: 100,000) */
	int mem_env;              /* 1: RocksDB's in-memory Env (no files; the
	                           * store is gone at sto_close). For the fuzz
	                           * targets only (tests/fuzz/fuzz_store.h):
	                           * never for a node's state (default 0) */
	int wal_off;              /* 1: writes skip RocksDB's write-ahead log,
	                           * so what was not flushed is lost at a
	                           * crash. For the fuzz targets' in-memory
	                           * store only (fuzz_store.h; with mem_env
	                           * the store is gone at close anyway):
	                           * sto_open refuses it without mem_env
	                           * (LORA_EINVAL) (default 0) */
};

/* Fills opts with the defaults. */
void sto_options_init(struct sto_options *opts);

/*
 * Request ids: every applied batch's `request_ids` are stored with its
 * entry index in the same write, and kept while the entry is among the
 * last request_window applied (rejected batches record none). 0 and *index
 * when rid was applied; LORA_ENOTFOUND otherwise.
 */
int sto_request_index(struct sto_store *s, const char *rid, uint64_t *index);

/*
 * Opens (or creates) the state store in directory `dir` (the RocksDB
 * directory itself, e.g. <data>/state, or a checkpoint directory).
 * On success *out is owned by the caller: sto_close(). opts may be NULL.
 */
int sto_open(const char *dir, const struct sto_options *opts,
             struct sto_store **out, char *errmsg);
void sto_close(struct sto_store *s);

/* Which CRC32C RocksDB's log checksums run on: "sse4.2" when this
 * program's crc32c.c serves them on the CPU's instruction, else
 * "rocksdb (...)": the library's own table code, and why. Meaningful once
 * a store was opened. */
const char *sto_crc32c_impl(void);

/* The index of the last log entry applied (0 for a new store). */
uint64_t sto_applied_index(struct sto_store *s);

/*
 * Applies `batch` as log entry `index`, atomically, in one RocksDB write
 * batch that also records `index` as the applied index.
 *
 *  - index <= sto_applied_index(): nothing happens, returns 0 (idempotent
 *    replay after a crash).
 *  - index > sto_applied_index() + 1: LORA_ECORRUPT, nothing written. The
 *    entries in between were never applied here: the state is behind what
 *    the caller believes (a lost or stale state/). There is no way to skip
 *    indexes; a state moves forward by more than one index only by being
 *    replaced whole (sto_install_swap, a checkpoint install).
 *  - The batch is invalid (edge to a missing node, delete of a node that
 *    still has edges without detach, unknown id, unique constraint
 *    violated, bad vector, ...): the graph is left untouched, the applied
 *    index still advances to `index` (every replica rejects the same batch
 *    the same way), and the error code is returned with a message.
 *  - I/O failure or out of memory: nothing is written, the applied index
 *    does not move, the error is returned.
 *
 * batch is borrowed. index must be > 0.
 */
int sto_apply(struct sto_store *s, uint64_t index,
              const Lora__MutationBatch *batch, char *errmsg);
/* The entry at index refused before its batch could be applied (its
 * bytes do not decode, or nest too deep: the same on every replica;
 * code is not LORA_ENOMEM, which is waited out):
 * applied as an empty batch (a vector index build takes its step, as
 * for any entry) with the rejection recorded as `code` in the same write,
 * as sto_apply records an invalid batch, and `code` returned; or the I/O
 * error, or LORA_ECORRUPT for a gap, as sto_apply. */
int sto_apply_refused(struct sto_store *s, uint64_t index, int code,
                      char *errmsg);

/*
 * Creates a RocksDB checkpoint of the state in `dir` (which must not
 * exist). *index_out (may be NULL) receives the applied index it records.
 * A checkpoint directory can be opened with sto_open().
 */
int sto_checkpoint(struct sto_store *s, const char *dir, uint64_t *index_out,
                   char *errmsg);

/*
 * Flushes the memtables and compacts every column family into the fewest
 * files, so that later reads touch one sorted run per level. For after a
 * bulk load or a checkpoint install; apply keeps working meanwhile (it
 * may wait for the flush). Can take seconds on a large store.
 */
int sto_compact(struct sto_store *s, char *errmsg);

/*
 * A logical digest of the whole graph (nodes, edges, vectors, index
 * catalogue; not the applied index), as 32 lowercase hex characters plus
 * NUL in out. Two stores holding the same graph give the same digest,
 * whatever their history.
 */
#define STO_DIGEST_HEX_BYTES 33
/* The same over the system keyspace (users, cluster secret): nodes that
 * applied the same entries agree on it too. */
int sto_digest_system(struct sto_store *s, char out[STO_DIGEST_HEX_BYTES],
                      char *errmsg);
int sto_digest(struct sto_store *s, char out[STO_DIGEST_HEX_BYTES],
               char *errmsg);

/* ---- installing a whole state (install.c) ------------------------------
 *
 * Swaps a complete store directory (a checkpoint copy, "staged", inside
 * the same parent as state/) in for <parent>/state, so that a crash at any
 * point leaves, after sto_install_recover, either the old or the new state
 * in state/ (see install.c for the steps). `parent` is the node's data
 * directory; the names state, state.old and INSTALLING inside it are fixed.
 */
#define STO_INSTALL_EXTRA_BYTES_MAX 4096 /* caller bytes kept in the marker */
#define STO_INSTALL_CRASH_ENV       "LORA_TEST_INSTALL_CRASH"
#define STO_INSTALL_CRASH_EXIT      86

struct sto_install_info {
	uint64_t applied;                           /* of the staged state */
	char digest[STO_DIGEST_HEX_BYTES];          /* of the staged state */
	uint8_t extra[STO_INSTALL_EXTRA_BYTES_MAX]; /* caller's, kept as is */
	size_t extra_len;
};

/* Step 1: reads the staged store's applied index and digest into *info
 * (extra left empty for the caller) and fsyncs its files, the dir and the
 * parent. */
int sto_install_prepare(const char *staged_dir, struct sto_install_info *info,
                        char *errmsg);

/*
 * Steps 2-5: writes the marker, moves state/ to state.old and the staged
 * dir (parent/staged_name) to state/, and verifies state/ against *info.
 * 0: state/ is the new state, open in *out (caller's, sto_close) when out
 * is not NULL; state.old and the marker remain until sto_install_done.
 * An error: the old state is back in state/ (or, when even that failed,
 * the message says a restart finishes the roll back). The caller must not
 * hold a store open on state/. LORA_EINVAL when state.old already exists.
 */
int sto_install_swap(const char *parent, const char *staged_name,
                     const struct sto_install_info *info,
                     struct sto_store **out, char *errmsg);

/* Step 7: removes state.old, then the marker. */
int sto_install_done(const char *parent, char *errmsg);

enum sto_install_outcome {
	STO_INSTALL_NONE,    /* no install was under way */
	STO_INSTALL_FORWARD, /* finished: state/ is the new state; the caller
	                      * redoes its own step with info.extra, then
	                      * calls sto_install_done */
	STO_INSTALL_BACK,    /* the new state was incomplete: the old one is
	                      * back in state/ (or none, if there was none) */
};

struct sto_install_recovery {
	enum sto_install_outcome outcome;
	struct sto_install_info info; /* the marker's (FORWARD, BACK) */
	char staged[256];             /* the marker's staged dir name */
	char kept[64]; /* non-empty: a state.old found without a marker was
	                * moved to parent/kept (never deleted) */
};

/* At start-up, before state/ is opened: finishes or rolls back an
 * interrupted install (deterministically, from the marker). */
int sto_install_recover(const char *parent, struct sto_install_recovery *r,
                        char *errmsg);

/* Parses marker bytes (pure; for tests and fuzzing). LORA_ECORRUPT when
 * they are not a complete marker. */
int sto_install_marker_parse(const char *text, size_t len,
                             struct sto_install_info *info, char *staged,
                             size_t staged_bytes);

/* Removes path and everything below it (errors ignored: best effort
 * for temporary and superseded directories). */
void sto_rm_rf(const char *path);
/* fsync of a file or directory by path (0 or LORA_EIO). */
int sto_fsync_path(const char *path);

/* The text of the last RocksDB error seen by this thread ("what: message")
 * when it was converted to `code`, else "" (the read functions below return
 * only a code: a caller that reports one adds this). Taking it clears it. */
const char *sto_last_error(int code);

/* _exit(STO_INSTALL_CRASH_EXIT) when STO_INSTALL_CRASH_ENV says `step`
 * (a test hook; steps numbered as in install.c). */
void sto_install_crash_point(int step);

/* Property type constraints: the Cypher type name of v ("INTEGER",
 * "ZONED DATETIME", ...; NULL for null and for kinds a constraint cannot
 * name), and whether a name is one a constraint may use. */
const char *sto_value_type(const Lora__Value *v);
int sto_type_known(const char *type);

/* Whether index def d keeps entries that a seek can read: 'P' entries for
 * node RANGE, UNIQUE and NODE_KEY definitions, 'R' entries for
 * relationship RANGE ones (vector indexes and existence / type
 * constraints keep none). */
int sto_index_has_entries(const Lora__CreateIndex *d);

/* ---- the system keyspace (apply_user.c) --------------------------------
 *
 * Users and the cluster secret, in meta, changed only by the UserChange
 * and AuthBootstrap mutations (so replicated, in checkpoints and in the
 * digest). These read the latest applied state.
 */
#define STO_USER_NAME_BYTES_MAX 128
#define STO_USERS_MAX           100000 /* listed by sto_users_list */
#define STO_SECRET_BYTES_MIN    16
#define STO_SECRET_BYTES_MAX    64
/* 0 and *out (lora__user_record__free_unpacked), or LORA_ENOTFOUND.
 * Served from an in-memory copy of the record when the store has one
 * (at most 64 users kept, apply_user.c): a copy never outlives the apply
 * of a UserChange or AuthBootstrap that could change it, so the answer
 * is always the latest applied state's. Thread-safe. */
int sto_user_get(struct sto_store *s, const char *name, Lora__UserRecord **out);
/* sto_user_get from memory only (that cache, RocksDB's memtables and
 * block cache, read tier kBlockCacheTier), for a thread that must not wait for
 * the disk (the HTTP I/O thread): LORA_ETIMEOUT when the record, or whether
 * there is one, would need a read from disk. */
int sto_user_get_cached(struct sto_store *s, const char *name,
                        Lora__UserRecord **out);
/* A stamp of the users and the cluster secret as applied: it changes
 * before any UserChange or AuthBootstrap is written, and when the store
 * is replaced (unique within the process, never reused). 0 while such a
 * change is being written (or without the record cache): nothing read
 * now may be remembered. A caller that takes a non-zero stamp, then
 * reads users, may reuse what it concluded for as long as the stamp
 * stays the same (node/auth.c, the HTTP connection's credential memo).
 * Thread-safe. */
uint64_t sto_user_gen(struct sto_store *s);
/* Every user in name order: *out (sto_users_free) with *n records. */
int sto_users_list(struct sto_store *s, Lora__UserRecord ***out, size_t *n);
void sto_users_free(Lora__UserRecord **us, size_t n);
/* The cluster secret into out (STO_SECRET_BYTES_MAX of room), *len its
 * bytes; LORA_ENOTFOUND before the bootstrap entry was applied. */
int sto_auth_secret(struct sto_store *s, uint8_t *out, size_t *len);

/* ---- read views -------------------------------------------------------- */

/* Opens a view on a snapshot of the current state: sto_view_close(). */
int sto_view_open(struct sto_store *s, struct sto_view **out);
void sto_view_close(struct sto_view *v);

/* The applied index the view reflects. */
uint64_t sto_view_applied_index(struct sto_view *v);

/*
 * The next ids the leader should allocate: one more than the largest node
 * and edge ids ever applied (ids are never reused).
 */
int sto_view_next_ids(struct sto_view *v, uint64_t *next_node_id,
                      uint64_t *next_edge_id);

/*
 * Node by id, with labels and properties (vector properties included).
 * LORA_ENOTFOUND when there is none. Free *out with
 * lora__node_value__free_unpacked(*out, &lora_pb_allocator).
 */
int sto_view_node(struct sto_view *v, uint64_t id, Lora__NodeValue **out);

/* Flags of sto_view_node_ex. */
#define STO_NODE_NO_VECTORS 1u /* leave out vector properties */

/*
 * sto_view_node with options: with STO_NODE_NO_VECTORS the node's vector
 * properties are neither read from the vectors column family nor decoded
 * (one point read of the node record instead of a read plus a scan), and
 * *out holds only its labels and scalar properties; fetch a vector with
 * sto_view_vector or the whole node with sto_view_node. flags 0 is
 * sto_view_node. n_vectors may be NULL; otherwise it receives the number of
 * vector properties the node has (whether or not they are in *out). Same
 * errors and ownership as sto_view_node.
 */
int sto_view_node_ex(struct sto_view *v, uint64_t id, unsigned flags,
                     Lora__NodeValue **out, uint32_t *n_vectors);

/*
 * One property of node `id`, read without decoding the node's other
 * properties or labels. Consecutive calls for nearby ids are cheap: the
 * view keeps one iterator on the nodes column family and moves it forward
 * (a scan that reads p.x for every node in id order costs one step per
 * node, not a point read). 0 with *out NULL when the node exists but has
 * no property `key`; 0 with *out set (free with lora__value__free_unpacked
 * and &lora_pb_allocator) when it has one, a vector property as a Value
 * holding a vector_value; LORA_ENOTFOUND when there is no node `id`;
 * LORA_ECORRUPT when the stored bytes do not decode.
 */
int sto_view_node_prop(struct sto_view *v, uint64_t id, const char *key,
                       Lora__Value **out);

/* A property read in place by sto_view_node_prop_ref. */
enum sto_ref_kind {
	STO_REF_ABSENT, /* the node has no such property */
	STO_REF_NULL,
	STO_REF_BOOL,   /* b */
	STO_REF_INT,    /* i */
	STO_REF_FLOAT,  /* d */
	STO_REF_STRING, /* s, slen */
	STO_REF_OTHER,  /* present but not one of the above (list, bytes,
	                 * temporal, vector, ...): use sto_view_node_prop */
	STO_REF_F32,    /* a float32 vector: f32, dim (from a vector column) */
};

struct sto_prop_ref {
	enum sto_ref_kind kind;
	int b;
	int64_t i;
	double d;
	const char *s; /* borrowed, not NUL-terminated: valid until the next
	                * call on the view or sto_view_close */
	size_t slen;
	const float *f32; /* borrowed until sto_view_close: coordinate d is */
	uint32_t dim;     /* f32[d * f32_stride] */
	uint32_t f32_stride;
};

/*
 * sto_view_node_prop without allocating: scalar values (null, boolean,
 * integer, float, string) are decoded in place into *out. Same errors; a
 * string's bytes are borrowed (see struct sto_prop_ref). A vector
 * property comes back as STO_REF_F32 when the view has the in-memory
 * column of all nodes' float32 vectors of that key (see
 * sto_view_vector_column; a view builds it after STO_VCOL_PROP_READS
 * vector reads), else as STO_REF_OTHER.
 */
int sto_view_node_prop_ref(struct sto_view *v, uint64_t id, const char *key,
                           struct sto_prop_ref *out);

/*
 * The nodes with `label` grouped by the stored bytes of property `key`
 * (an absent property is one group): for each group, in the order its
 * first node comes in the scan, that node's id and the group's size. Two
 * groups may hold equal values stored differently (1 and 1.0): the caller
 * merges them. *out (lora_malloc, freed by the caller with lora_free)
 * holds *n groups; *scanned is the number of nodes walked. LORA_ENOTFOUND
 * when the grouping cannot be done here (a node has vectors and lacks
 * `key` as a scalar, or more than STO_GROUPS_MAX groups): the caller then
 * scans itself. An unknown label gives no groups. LORA_ETIMEOUT once
 * lora_now_ms() passes deadline_ms (0: none; checked every
 * STO_GROUP_CHECK_NODES nodes).
 */
struct sto_group {
	uint64_t first; /* the group's first node */
	uint64_t count;
};
#define STO_GROUPS_MAX        65536
#define STO_GROUP_CHECK_NODES 4096
int sto_view_group_by_prop(struct sto_view *v, const char *label,
                           const char *key, uint64_t deadline_ms,
                           struct sto_group **out, size_t *n,
                           uint64_t *scanned);

/* *has = 1 when node `id` carries every one of the n labels (n 0: it
 * exists), read in place from its record as sto_view_node_prop does
 * (nothing decoded); LORA_ENOTFOUND when there is no node `id`. */
int sto_view_node_has_labels(struct sto_view *v, uint64_t id,
                             const char *const *labels, size_t n, int *has);

/* *exists = 1 when node `id` exists. Cheaper than sto_view_node. */
int sto_view_node_exists(struct sto_view *v, uint64_t id, int *exists);

/* The error (lora_err) with which apply rejected the batch of log entry
 * `index` (nothing of it was kept), or 0 in *code: applied, or not yet. */
int sto_view_rejected(struct sto_view *v, uint64_t index, int *code);

/*
 * Edge by id with type, endpoints and properties. LORA_ENOTFOUND when
 * absent. Free with lora__rel_value__free_unpacked.
 */
int sto_view_edge(struct sto_view *v, uint64_t id, Lora__RelValue **out);

/* A vector property. LORA_ENOTFOUND when absent. Free with
 * lora__vector__free_unpacked. */
int sto_view_vector(struct sto_view *v, Lora__EntityKind entity,
                    uint64_t owner_id, const char *key, Lora__Vector **out);

/* Number of nodes carrying `label` (0 for an unknown label); kept up to
 * date on apply, so it costs one read. label NULL counts all nodes. */
int sto_view_count_nodes(struct sto_view *v, const char *label,
                         uint64_t *count);

/* Number of edges (all, or of one type when type is not NULL). */
int sto_view_count_edges(struct sto_view *v, const char *type, uint64_t *count);

/*
 * The index catalogue: *out is an array of *n definitions, in name order.
 * Free with sto_indexes_free(*out, *n).
 */
int sto_view_indexes(struct sto_view *v, Lora__CreateIndex ***out, size_t *n);
void sto_indexes_free(Lora__CreateIndex **defs, size_t n);
/* The same catalogue, read once per view (a view's snapshot never
 * changes): *out is borrowed, valid until sto_view_close. */
int sto_view_catalogue(struct sto_view *v, Lora__CreateIndex *const **out,
                       size_t *n);

/* Every label, relationship type or property key in use, sorted; free with
 * sto_names_free. kind: 0 labels, 1 relationship types, 2 property keys. */
int sto_view_names(struct sto_view *v, int kind, char ***out, size_t *n);
void sto_names_free(char **names, size_t n);

/* ---- iterators --------------------------------------------------------- */

enum sto_dir {
	STO_OUT = 1,  /* edges starting at the node */
	STO_IN = 2,   /* edges ending at the node */
	STO_BOTH = 3, /* both; a self-loop appears twice, once per side */
};

/* One result of an iterator. Which fields are set depends on the scan. */
struct sto_item {
	uint64_t node_id;  /* node scans; adjacency: the node asked about */
	uint64_t edge_id;  /* adjacency scans */
	uint64_t other_id; /* adjacency scans: the node at the other end */
	const char *type;  /* adjacency scans: the relationship type */
	int outgoing;      /* adjacency scans: 1 when node_id is the start */
	const Lora__Vector *vector; /* vector scans: borrowed; NULL when raw */
	/* raw vector scans (sto_view_scan_vectors_raw): the stored Vector
	 * message, borrowed until the next sto_iter_next or sto_iter_free;
	 * decode it with sto_vector_ref */
	const uint8_t *vec_bytes;
	size_t vec_len;
};

/*
 * A stored Vector message read in place. For a plain encoding (each field
 * at most once, coordinates packed, no unknown field) *plain is 1 and the
 * coordinates are borrowed from the bytes: f32 (n_f32 little-endian
 * floats, possibly unaligned: read with sto_vec_f32), f64 likewise, or
 * ints (n_ints zigzag varints in ints_len bytes). *plain 0: another valid
 * encoding, unpack it with lora__vector__unpack. LORA_ECORRUPT for bytes
 * that are no Vector.
 */
struct sto_vec_ref {
	int plain;
	uint32_t coord_type, dimension;
	const uint8_t *f32, *f64, *ints;
	size_t n_f32, n_f64, n_ints, ints_len;
};
int sto_vector_ref(const uint8_t *p, size_t len, struct sto_vec_ref *out);

/* Copies r's n_f32 (n_f64) coordinates into out. */
void sto_vec_f32(const struct sto_vec_ref *r, float *out);
void sto_vec_f64(const struct sto_vec_ref *r, double *out);

/* All nodes in id order. */
int sto_view_scan_nodes(struct sto_view *v, struct sto_iter **out);

/* Nodes with `label`, in id order (empty for an unknown label). */
int sto_view_scan_label(struct sto_view *v, const char *label,
                        struct sto_iter **out);

/*
 * The first node with id >= from that carries `label` (NULL: any node),
 * read through a nodes cursor of the view's that sto_view_node_prop_ref
 * also looks at, so reading a property of that node next costs no
 * further read (and reading other nodes' does not move the scan).
 * 0 with *id; LORA_ENOTFOUND past the last one (or for an unknown label).
 * Walks the nodes in id order: for labels most nodes carry; a sparse
 * label is cheaper through sto_view_scan_label.
 */
int sto_view_next_node(struct sto_view *v, const char *label, uint64_t from,
                       uint64_t *id);

/* All edges in id order (edge_id, node_id = start, other_id = end, type). */
int sto_view_scan_edges(struct sto_view *v, struct sto_iter **out);

/*
 * Edges of node `node_id` in direction `dir`, only of `type` when type is
 * not NULL. STO_BOTH gives the outgoing edges first, then the incoming
 * ones (a self-loop once in each). Within a direction the order is the
 * storage order: insertion order, except that deleting an edge moves the
 * node's most recent entry into its place; callers must not rely on it.
 * One point lookup per 256 edges (see docs/storage.md).
 */
int sto_view_scan_adjacent(struct sto_view *v, uint64_t node_id,
                           enum sto_dir dir, const char *type,
                           struct sto_iter **out);

/*
 * Nodes whose `label` + `key` property lies in [lo, hi] using the range or
 * unique index on (label, key): lo or hi NULL means unbounded; *_incl says
 * whether the bound is included. Equality: lo == hi, both inclusive.
 * LORA_ENOTFOUND when there is no index on (label, key). Values of
 * different types never compare equal; ordering within a type follows
 * Cypher (numbers: integers and floats together).
 */
int sto_view_index_seek(struct sto_view *v, const char *label, const char *key,
                        const Lora__Value *lo, int lo_incl,
                        const Lora__Value *hi, int hi_incl,
                        struct sto_iter **out);
/* Appends to b the bytes a range index orders v by: two values of one
 * type compare with memcmp (then shorter first) as Cypher orders them,
 * integers and floats together; the first byte is the type's class.
 * LORA_EINVAL for a value no index holds (null, maps, vectors, graph
 * values). */
int sto_index_key(struct lora_buf *b, const Lora__Value *v);
/* Nodes that may hold a string with `needle` (len bytes) in property
 * `key`, from the TEXT index on (label, key): every node whose string
 * contains the needle, maybe more (the caller filters), ascending, in
 * *ids (lora_free) and *nids. LORA_ENOTFOUND: no TEXT index on the pair;
 * LORA_EINVAL: a needle shorter than three bytes (scan instead). The
 * caller's statement limits: LORA_ETIMEOUT once lora_now_ms() passes
 * deadline_ms (0: none; checked at the first and every
 * STO_TEXT_CHECK_SEEKS-th posting seek), LORA_EMEMORY once the ids would
 * take more than bytes_max bytes (0: no limit); nothing is returned then.
 * The seek's own memory is that array, never larger than bytes_max, and
 * it is handed over as built (no copy). */
#define STO_TEXT_CHECK_SEEKS 1024
int sto_view_text_seek(struct sto_view *v, const char *label, const char *key,
                       const char *needle, size_t len, uint64_t deadline_ms,
                       size_t bytes_max, uint64_t **ids, size_t *nids);
/* The nodes whose index entries under (label, keys[k]) hold vals[k] for
 * every k < n (n at most STO_INDEX_JOIN_KEYS_MAX), as be64 ids ascending
 * appended to ids (the caller's buffer): a leapfrog join of the entry
 * lists, which costs what the rarest value costs. LORA_ENOTFOUND when a
 * key has no index with entries or a value has no index encoding (the
 * caller seeks otherwise); values compare as the index encodes them. */
#define STO_INDEX_JOIN_KEYS_MAX 16
int sto_view_index_join(struct sto_view *v, const char *label, size_t n,
                        const char *const *keys, const Lora__Value *const *vals,
                        struct lora_buf *ids);
/* The same over a relationship property index on (type, key): items carry
 * the relationship in edge_id (node_id holds the same number). */
int sto_view_rel_index_seek(struct sto_view *v, const char *type,
                            const char *key, const Lora__Value *lo, int lo_incl,
                            const Lora__Value *hi, int hi_incl,
                            struct sto_iter **out);

/*
 * The float32 vectors of property `key` on nodes with `label` (NULL: all
 * nodes) as one contiguous column: n vectors, ids[i] ascending (the order
 * of sto_view_scan_vectors), in blocks of STO_VCOL_BLOCK vectors stored
 * coordinate by coordinate: coordinate d of vector i is
 * rows[(i / B) * B * dim + d * B + i % B] (B = STO_VCOL_BLOCK; the last
 * block is padded with zero vectors; sto_vcol_row copies one out), so a
 * loop over a block reads B coordinates with one load. sumsq[i] is the
 * sum of vector i's squared coordinates, added in coordinate order as
 * doubles (0 for the padding). Everything is borrowed from the view until
 * sto_view_close. The column is an in-memory copy shared by the views of
 * the same state (built by the first call, which costs one vector scan;
 * dropped when a batch changes nodes or vectors). LORA_ENOTFOUND when no
 * column can be given: the vectors are not all float32 with one
 * dimension, they would take more than the cache's limit, or the view
 * was opened while a batch was being written; the caller then scans.
 */
struct sto_vcol_ref {
	size_t n;
	uint32_t dim;
	const uint64_t *ids;
	const float *rows;
	const double *sumsq;
};
#define STO_VCOL_BLOCK 4
int sto_view_vector_column(struct sto_view *v, const char *label,
                           const char *key, struct sto_vcol_ref *out);

/*
 * Approximate top-ef search of the HNSW graph of vector index `index` for
 * q (dim doubles; qn its Euclidean norm), as of the view's state: the ef
 * nodes (relationships, for a relationship index) the search found, best score
 * first (ties: smaller id), into out (room for ef), scored as the exact scan
 * scores them (cosine: (1 + cos) / 2, euclidean: 1 / (1 + d^2), dot: the dot
 * product); *count receives the number of vectors in the index. LORA_ENOTFOUND
 * when the view cannot use a graph (none for that index or dimension, or the
 * graphs are at another generation than the view: a batch being applied, an
 * older snapshot): the caller scans exactly. Serialised with other searches
 * (one mutex).
 */
struct sto_vhit {
	uint64_t id;
	double score;
};
int sto_view_vector_search(struct sto_view *v, const char *index,
                           const double *q, uint32_t dim, double qn, size_t ef,
                           struct sto_vhit *out, size_t *n, size_t *count);
/* Bytes of memory the store's vector index graphs hold. */
size_t sto_hnsw_bytes(struct sto_store *s);

/*
 * Where the state store's memory is, in bytes (sto_memory): RocksDB's own
 * figures (its block cache, charged and pinned; the row cache; every
 * column family's memtables, the live ones and those flushed but still
 * referenced; index and filter blocks held by open table readers, outside
 * the cache) and the store's in-memory copies (vector index graphs, the
 * node table, the vector columns). Read without waiting for an apply.
 */
struct sto_memory {
	uint64_t block_cache, block_cache_pinned, block_cache_capacity;
	uint64_t row_cache, row_cache_capacity;
	/* memtables_max: the most they can hold, over every column family
	 * its write buffer size times the buffers it may keep (a full one
	 * is flushed; writes stall when all are full) */
	uint64_t memtables, memtables_max;
	uint64_t table_readers;
	uint64_t vector_graphs, node_table, vector_columns;
	uint64_t adjacency_cache; /* apply's chunk cache (stoInt.h) */
};
void sto_memory(struct sto_store *s, struct sto_memory *out);
/*
 * The build of vector index `index`'s graph as of the view: *populating 1
 * and *percent (0..100, the share of the label's nodes, or of the type's
 * relationships for a relationship index, counted when the build started,
 * that the build steps went over) while the graph is built
 * in the background (queries scan exactly meanwhile); *populating 0 and
 * *percent 100 once it is complete, and for any other index.
 */
int sto_view_index_progress(struct sto_view *v, const char *index,
                            int *populating, double *percent);
/* 1 when a vector index of the store's applied state is still being
 * built: every batch applied takes a build step, so the leader proposes
 * empty batches while it has nothing else to write. Reads a flag the
 * apply sets: never waits for an apply under way. */
int sto_hnsw_populating(struct sto_store *s);
/* Where the builds under way stand (a fingerprint of every entry's
 * cursor, as of the last committed apply): equal over two reads while
 * building means no step moved in between. Never waits for an apply. */
uint64_t sto_hnsw_build_pos(struct sto_store *s);
/* A checksum (FNV-1a 64, hex) of the `hnsw` CF's keys and values, which
 * the state digest leaves out: replicas that applied the same entries
 * hold the same graph bytes (GET /admin/digest?hnsw=1). */
#define STO_HNSW_DIGEST_HEX_BYTES 17
int sto_hnsw_digest(struct sto_store *s, char out[STO_HNSW_DIGEST_HEX_BYTES]);

/* Copies vector i of a column into out (dim floats). */
void sto_vcol_row(const struct sto_vcol_ref *c, size_t i, float *out);

/* Vectors of property `key` on nodes with `label` (label NULL: all nodes):
 * node_id and vector set. */
int sto_view_scan_vectors_raw(struct sto_view *v, const char *label,
                              const char *key, struct sto_iter **out);
int sto_view_scan_vectors(struct sto_view *v, const char *label,
                          const char *key, struct sto_iter **out);
/* Vectors of property `key` on relationships of `type`, in id order, raw
 * (as sto_view_scan_vectors_raw): node_id and edge_id hold the
 * relationship's id. */
int sto_view_scan_rel_vectors_raw(struct sto_view *v, const char *type,
                                  const char *key, struct sto_iter **out);

/*
 * Advances the iterator. On success *done is 1 at the end (item untouched)
 * or 0 with item filled. Errors (LORA_ECORRUPT, LORA_EIO) end the scan.
 */
int sto_iter_next(struct sto_iter *it, struct sto_item *item, int *done);
void sto_iter_free(struct sto_iter *it);
/* Scans that walk keys (nodes, labels, edges, vectors; not adjacency or
 * index seeks) check lora_now_ms() against deadline_ms (0: none, the
 * default) every STO_ITER_CHECK_KEYS keys walked, those skipped inside one
 * sto_iter_next too: past it, sto_iter_next gives LORA_ETIMEOUT (a scan
 * of relationship vectors of a rare type or key may walk millions of
 * others before it returns one). */
#define STO_ITER_CHECK_KEYS 1024
void sto_iter_set_deadline(struct sto_iter *it, uint64_t deadline_ms);

/* ---- bulk import (import.c) -------------------------------------------
 *
 * Builds a new state store from CSV files without going through sto_apply:
 * node files, then relationship files, are read once and turned into the
 * very keys and values applying the same graph as mutation batches would
 * write (same records, adjacency chunks, counts, tokens, next ids; same
 * digest), written as sorted SST files and ingested into a fresh store at
 * applied index STO_IMPORT_APPLIED_INDEX. The store is built in
 * "<dir>.importing-<pid>" next to `dir` and renamed into place at the end
 * (files and directories fsynced); on any error that directory is
 * removed and `dir` is untouched. File formats: docs/operations.md "Bulk
 * import".
 */

/* The applied index of an imported store: a node that starts from it
 * adopts it as its Raft compaction point (term 1). */
#define STO_IMPORT_APPLIED_INDEX 1

struct sto_import;

enum sto_import_id_type {
	STO_IMPORT_ID_STRING,  /* :ID values are strings (the default) */
	STO_IMPORT_ID_INTEGER, /* :ID values are 64-bit integers */
};

/* Where a long import is, for a progress line. Borrowed by the callback. */
struct sto_import_progress {
	const char *phase; /* "nodes", "relationships", "adjacency", ... */
	const char *file;  /* input file, or NULL */
	uint64_t rows;     /* rows of this phase so far */
	double rows_per_s; /* over this phase */
	double elapsed_s;  /* since sto_import_run began */
};

struct sto_import_options {
	char delimiter;       /* between fields (','; '\t' for TSV) */
	char array_delimiter; /* between labels and vector coordinates (';') */
	int id_type;          /* enum sto_import_id_type */
	const char *id_property; /* key under which an unnamed :ID column is
	                          * kept ("id"); NULL: not kept */
	int force;               /* replace an existing `dir` */
	int digest;              /* fill sto_import_stats.digest */
	/* Called at most about once a second during long phases (may be
	 * NULL); runs on the importing thread. */
	void (*progress)(void *arg, const struct sto_import_progress *p);
	void *progress_arg;
	/* When set and *cancel becomes non-zero (e.g. from a signal
	 * handler), the import stops with LORA_ECLOSED and cleans up. */
	volatile int *cancel;
};

struct sto_import_stats {
	uint64_t nodes, relationships, index_entries;
	uint64_t bytes_read; /* CSV bytes */
	uint64_t applied_index;
	double seconds;
	char digest[STO_DIGEST_HEX_BYTES]; /* when options.digest */
	/* after a failure: the target directory was changed (the message
	 * says where the new and the old state are); 0: it is as it was */
	int target_changed;
};

/* Fills opts with the defaults above. */
void sto_import_options_init(struct sto_import_options *opts);

/* A new import (sources added below, then run): sto_import_free. */
int sto_import_new(struct sto_import **out);
void sto_import_free(struct sto_import *im);

/*
 * Adds a node source: `files` is one path or several separated by ','
 * (the first line of the first file is the header, the other files hold
 * rows only); `labels` (may be NULL) are given to every node, several
 * separated by ':'. Strings are copied. LORA_EINVAL for an empty list or
 * label, LORA_ELIMIT past STO_IMPORT_FILES_MAX files.
 */
int sto_import_add_nodes(struct sto_import *im, const char *files,
                         const char *labels, char *errmsg);
/* The same for relationships; `type` (may be NULL) is the type of rows
 * whose :TYPE field is empty or absent. */
int sto_import_add_relationships(struct sto_import *im, const char *files,
                                 const char *type, char *errmsg);
/* A range index to build: "Label(property)", named index_Label_property
 * (what CREATE INDEX FOR (n:Label) ON (n.property) would create). */
int sto_import_add_index(struct sto_import *im, const char *spec, char *errmsg);

/*
 * Runs the import into `dir` (a state directory: what <data_dir>/state of
 * a node holds). LORA_EEXIST when dir exists and opts->force is not set.
 * Bad input gives LORA_EINVAL (or LORA_ELIMIT) with "FILE:LINE: reason"
 * in errmsg, LINE being where the record starts; an input that is not a
 * regular file (a pipe, a FIFO: each input is read to the size it had
 * when opened) is LORA_EINVAL "FILE: not a regular file ...", found
 * before anything is written; an input that shrinks while it is read is
 * LORA_EIO "FILE: the file shrank while it was read ..."; nothing is
 * left behind. opts (NULL: defaults) is borrowed
 * for the call; st may be NULL. Call once per import.
 */
int sto_import_run(struct sto_import *im, const struct sto_import_options *opts,
                   const char *dir, struct sto_import_stats *st, char *errmsg);

/* ---- the Raft log store ------------------------------------------------ */

struct sto_log;

/* One log entry. data is owned by whoever owns the entry array. */
struct sto_log_entry {
	uint64_t index;
	uint64_t term;
	uint32_t type; /* Lora__EntryType */
	uint8_t *data;
	size_t len;
};

struct sto_hard_state {
	uint64_t term;
	uint64_t vote;
	uint64_t commit;
};

/* Opens (or creates) the log in directory `dir` (e.g. <data>/raftlog). */
int sto_log_open(const char *dir, struct sto_log **out, char *errmsg);
void sto_log_close(struct sto_log *l);

/*
 * Appends n entries with consecutive indexes. The first index may be at
 * most last_index + 1; entries at or after it are replaced (a new leader
 * overwriting an uncommitted suffix). Synced to disk before returning.
 * entries is borrowed.
 */
int sto_log_append(struct sto_log *l, const struct sto_log_entry *entries,
                   size_t n, char *errmsg);

/*
 * Appends n entries (as sto_log_append; n may be 0) and sets the hard state
 * (when hs is not NULL) in one synced write: after a crash both are on disk
 * or neither is. Raft needs this for a Ready that starts a term: an entry of
 * term T stored while the hard state still says an older term makes the
 * next start refuse the log ("entry I has term T"). Both borrowed.
 */
int sto_log_save(struct sto_log *l, const struct sto_log_entry *entries,
                 size_t n, const struct sto_hard_state *hs, char *errmsg);

/*
 * Entries [lo, hi) but stopping before max_bytes of data (always at least
 * one entry when lo < hi). *out is an array of *n entries: free with
 * sto_log_entries_free(*out, *n). LORA_ENOTFOUND when lo was compacted
 * away or lies beyond the last index.
 */
int sto_log_entries(struct sto_log *l, uint64_t lo, uint64_t hi,
                    size_t max_bytes, struct sto_log_entry **out, size_t *n);
void sto_log_entries_free(struct sto_log_entry *entries, size_t n);

/* Term of entry `index`; for the compaction point, its recorded term.
 * LORA_ENOTFOUND outside [compact_index, last_index]. */
int sto_log_term(struct sto_log *l, uint64_t index, uint64_t *term);

/* First index still stored (compact_index + 1) and the last one (equal to
 * the compaction point when the log is empty). */
uint64_t sto_log_first_index(struct sto_log *l);
uint64_t sto_log_last_index(struct sto_log *l);

/* Removes every entry with index >= from. Synced. */
int sto_log_truncate_suffix(struct sto_log *l, uint64_t from, char *errmsg);

/*
 * Drops entries up to and including `index` (covered by a checkpoint whose
 * last entry had `term`). Later reads of those entries give LORA_ENOTFOUND;
 * sto_log_term(index) still answers `term`. Dropping beyond the last index
 * (after installing a snapshot) empties the log. Synced.
 */
int sto_log_compact(struct sto_log *l, uint64_t index, uint64_t term,
                    char *errmsg);

/* Hard state (term, vote, commit); zeros for a new log. set is synced. */
int sto_log_hard_state(struct sto_log *l, struct sto_hard_state *out);
int sto_log_set_hard_state(struct sto_log *l, const struct sto_hard_state *hs,
                           char *errmsg);

#endif /* LORA_STORAGE_H */
