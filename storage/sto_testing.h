/*
 * sto_testing.h - hooks for storage tests only (never used by the server).
 */
#ifndef LORA_STO_TESTING_H
#define LORA_STO_TESTING_H

#include <stddef.h>
#include <stdint.h>

struct sto_store;

/*
 * Writes raw bytes under key in column family `cf` ("nodes", "edges",
 * "vectors", "index", "meta", "adjacency"), bypassing every check, so tests can
 * plant corrupt records (cached user records are retired). Returns 0,
 * LORA_EINVAL for an unknown cf, or LORA_EIO.
 * key and val are borrowed.
 */
int sto_testing_put_raw(struct sto_store *s, const char *cf, const void *key,
                        size_t klen, const void *val, size_t vlen);

/* Deletes key from column family `cf` (same names and codes). */
int sto_testing_del_raw(struct sto_store *s, const char *cf, const void *key,
                        size_t klen);

/* Waits (up to deadline_ms of lora_now_ms) until no flush or compaction
 * runs or is pending in any column family, so that tests measuring the
 * block cache are not raced by background file changes. 0, or
 * LORA_ETIMEOUT. */
int sto_testing_wait_idle(struct sto_store *s, uint64_t deadline_ms);

struct lora_buf;

/* Appends every key and value of column family `cf`, in key order, to out
 * as (be32 klen, be32 vlen, key, value) records, so tests can compare two
 * stores byte for byte. */
int sto_testing_dump_raw(struct sto_store *s, const char *cf,
                         struct lora_buf *out);

struct sto_log;

/* The same for the Raft log store (its single default column family):
 * entry keys are 'e' + be64 index, the hard state is "h". */
int sto_testing_log_put_raw(struct sto_log *l, const void *key, size_t klen,
                            const void *val, size_t vlen);

/* Index entries node key checks examined, process-wide (apply path;
 * tests diff it around an apply to count a check's work). */
#include <stdint.h>
uint64_t sto_testing_node_key_seeks(void);
/* Relationship records a relationship property index's backfill decoded
 * (those of its type), process-wide. */
uint64_t sto_testing_backfill_decodes(void);

/* Records sto_user_get / sto_user_get_cached served from s's user record
 * cache (apply_user.c) instead of reading the database. */
uint64_t sto_testing_ucache_hits(struct sto_store *s);
/* fn(arg) runs, process-wide, in a read that missed the user record
 * cache, after its database read and before it fills the cache (NULL:
 * nothing), so a test can apply a change in between. */
void sto_testing_set_ucache_hook(void (*fn)(void *), void *arg);

/* The bulk import's read window for the next imports, process-wide, in
 * bytes (0: STO_IMPORT_READ_BYTES again), so tests can cut records at
 * every place. */
void sto_testing_import_read_bytes(size_t n);

/* The steps of lora-import's publish (import_write.c) that
 * sto_testing_import_fail makes fail with EIO, as if the system call did:
 * fsync of a file of the new state, the move of an existing target aside,
 * the rename of the new state into place, the move of the old state back
 * after that rename failed, the fsync of the target's directory. */
enum {
	STO_IMPORT_FAIL_FSYNC_FILE = 1 << 0,
	STO_IMPORT_FAIL_MOVE_ASIDE = 1 << 1,
	STO_IMPORT_FAIL_RENAME_NEW = 1 << 2,
	STO_IMPORT_FAIL_MOVE_BACK = 1 << 3,
	STO_IMPORT_FAIL_FSYNC_DIR = 1 << 4,
};
/* Steps (a set of the flags above) that fail from now on; 0: none. */
void sto_testing_import_fail(unsigned steps);

/* While on, RocksDB's CRC32C is the library's own table code instead of
 * storage/crc32c.c's (so a test can read with one what the other wrote). */
void sto_testing_crc32c_library(int on);
/* Whether a call of RocksDB's CRC32C reached storage/crc32c.c since the
 * last reset (reset: start over). */
int sto_testing_crc32c_reached(int reset);
/* fn(arg, path, bytes read so far) runs after every read of an import
 * input (NULL: nothing), so a test can change the file in between. */
void sto_testing_import_on_read(void (*fn)(void *, const char *, uint64_t),
                                void *arg);

#endif /* LORA_STO_TESTING_H */
