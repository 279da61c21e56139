/* log.c - the Raft log store: a RocksDB of its own (raftlog/) holding log
 * entries, the hard state and the compaction point, every write synced.
 *
 * Keys: 'e' be64 index -> be64 term, be32 type, data
 *       'h'            -> be64 term, be64 vote, be64 commit
 *       'c'            -> be64 index, be64 term (last compacted entry)
 * The compaction point and the last index are cached in memory.
 */
#include <stdatomic.h>
#include <string.h>

#include "stoInt.h"
#include "sto_testing.h"

#define LOG_ENTRY_HEADER_BYTES 12
#define LOG_KEY_BYTES          9
#define LOG_KEY_ENTRY          'e'
#define LOG_KEY_HARD           'h'
#define LOG_KEY_COMPACT        'c'

struct sto_log {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_writeoptions_t *wo; /* sync */
	rocksdb_readoptions_t *ro;
	/* written by the raft loop; atomic because the change stream reads
	 * entries from another thread (node/cdc.c) */
	_Atomic uint64_t compact_index;
	uint64_t compact_term;
	_Atomic uint64_t last;
};

static void entry_key(uint8_t k[LOG_KEY_BYTES], uint64_t index)
{
	k[0] = LOG_KEY_ENTRY;
	lora_put_be64(k + 1, index);
}

static int log_write(struct sto_log *l, rocksdb_writebatch_t *b, char *errmsg,
                     const char *what)
{
	char *err = NULL;
	rocksdb_write(l->db, l->wo, b, &err);
	rocksdb_writebatch_destroy(b);
	return err ? sto_rocks_err(err, errmsg, what) : 0;
}

/* Reads the compaction point and finds the last index. */
static int log_load(struct sto_log *l, char *errmsg)
{
	char *err = NULL, kc = LOG_KEY_COMPACT;
	size_t vlen;
	char *v = rocksdb_get(l->db, l->ro, &kc, 1, &vlen, &err);
	if (err)
		return sto_rocks_err(err, errmsg, "read compaction point");
	if (v && vlen != 16) {
		rocksdb_free(v);
		return lora_errf(LORA_ECORRUPT, errmsg,
		                 "compaction point of %zu bytes", vlen);
	}
	if (v) {
		l->compact_index = lora_get_be64((uint8_t *)v);
		l->compact_term = lora_get_be64((uint8_t *)v + 8);
		rocksdb_free(v);
	}
	l->last = l->compact_index;
	uint8_t k[LOG_KEY_BYTES];
	entry_key(k, UINT64_MAX);
	rocksdb_iterator_t *it = rocksdb_create_iterator(l->db, l->ro);
	rocksdb_iter_seek_for_prev(it, (const char *)k, sizeof(k));
	if (rocksdb_iter_valid(it)) {
		size_t klen;
		const uint8_t *key =
		    (const uint8_t *)rocksdb_iter_key(it, &klen);
		if (klen == LOG_KEY_BYTES && key[0] == LOG_KEY_ENTRY &&
		    lora_get_be64(key + 1) > l->last)
			l->last = lora_get_be64(key + 1);
	}
	return sto_iter_close(it, 0, errmsg, "find last entry");
}

int sto_log_open(const char *dir, struct sto_log **out, char *errmsg)
{
	struct sto_log *l = lora_calloc(1, sizeof(*l));
	if (!l)
		return lora_errf(LORA_ENOMEM, errmsg,
		                 "open log: out of memory");
	l->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(l->opts, 1);
	rocksdb_options_set_max_background_jobs(l->opts, 1);
	rocksdb_options_set_keep_log_file_num(l->opts, 2);
	rocksdb_options_set_info_log_level(l->opts, 4); /* see store.c */
	l->wo = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(l->wo, 1);
	l->ro = rocksdb_readoptions_create();
	char *err = NULL;
	l->db = rocksdb_open(l->opts, dir, &err);
	int rv = err ? sto_rocks_err(err, errmsg, "open log") : 0;
	if (rv)
		lora_errwrap(rv, errmsg, "%s", dir);
	else
		rv = log_load(l, errmsg);
	if (rv) {
		sto_log_close(l);
		return rv;
	}
	*out = l;
	return 0;
}

void sto_log_close(struct sto_log *l)
{
	if (!l)
		return;
	if (l->db)
		rocksdb_close(l->db);
	rocksdb_readoptions_destroy(l->ro);
	rocksdb_writeoptions_destroy(l->wo);
	rocksdb_options_destroy(l->opts);
	lora_free(l);
}

uint64_t sto_log_first_index(struct sto_log *l)
{
	return l->compact_index + 1;
}

uint64_t sto_log_last_index(struct sto_log *l)
{
	return l->last;
}

/* Adds a delete of entries [from, to) to b. */
static void delete_entries(rocksdb_writebatch_t *b, uint64_t from, uint64_t to)
{
	uint8_t a[LOG_KEY_BYTES], z[LOG_KEY_BYTES];
	entry_key(a, from);
	entry_key(z, to);
	rocksdb_writebatch_delete_range(b, (const char *)a, sizeof(a),
	                                (const char *)z, sizeof(z));
}

/* Adds hs to b. */
static void put_hard_state(rocksdb_writebatch_t *b,
                           const struct sto_hard_state *hs)
{
	uint8_t v[24];
	lora_put_be64(v, hs->term);
	lora_put_be64(v + 8, hs->vote);
	lora_put_be64(v + 16, hs->commit);
	char kh = LOG_KEY_HARD;
	rocksdb_writebatch_put(b, &kh, 1, (const char *)v, 24);
}

/* Adds the n >= 1 entries (checked against the log) to b. */
static int put_entries(struct sto_log *l, rocksdb_writebatch_t *b,
                       const struct sto_log_entry *entries, size_t n,
                       char *errmsg)
{
	uint64_t first = entries[0].index;
	if (first <= l->compact_index || first > l->last + 1)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "append at %llu: log holds %llu..%llu",
		                 (unsigned long long)first,
		                 (unsigned long long)l->compact_index + 1,
		                 (unsigned long long)l->last);
	for (size_t i = 0; i < n; i++)
		if (entries[i].index != first + i ||
		    entries[i].len > STO_LOG_READ_BYTES_MAX)
			return lora_errf(LORA_EINVAL, errmsg,
			                 "append: entry %zu has index %llu or "
			                 "too many bytes",
			                 i,
			                 (unsigned long long)entries[i].index);
	if (first <= l->last)
		delete_entries(b, first, l->last + 1);
	uint8_t *val = NULL;
	size_t cap = 0;
	for (size_t i = 0; i < n; i++) {
		const struct sto_log_entry *e = &entries[i];
		size_t need = LOG_ENTRY_HEADER_BYTES + e->len;
		if (need > cap) {
			uint8_t *nv = lora_realloc(val, need);
			if (!nv) {
				lora_free(val);
				return lora_errf(LORA_ENOMEM, errmsg,
				                 "append: out of memory");
			}
			val = nv;
			cap = need;
		}
		lora_put_be64(val, e->term);
		lora_put_be32(val + 8, e->type);
		if (e->len)
			memcpy(val + LOG_ENTRY_HEADER_BYTES, e->data, e->len);
		uint8_t k[LOG_KEY_BYTES];
		entry_key(k, e->index);
		rocksdb_writebatch_put(b, (const char *)k, sizeof(k),
		                       (const char *)val, need);
	}
	lora_free(val);
	return 0;
}

int sto_log_save(struct sto_log *l, const struct sto_log_entry *entries,
                 size_t n, const struct sto_hard_state *hs, char *errmsg)
{
	if (n == 0 && hs == NULL)
		return 0;
	rocksdb_writebatch_t *b = rocksdb_writebatch_create();
	int rv = n ? put_entries(l, b, entries, n, errmsg) : 0;
	if (rv) {
		rocksdb_writebatch_destroy(b);
		return rv;
	}
	if (hs)
		put_hard_state(b, hs);
	rv = log_write(l, b, errmsg, n ? "append" : "set hard state");
	if (!rv && n)
		l->last = entries[0].index + n - 1;
	return rv;
}

int sto_log_append(struct sto_log *l, const struct sto_log_entry *entries,
                   size_t n, char *errmsg)
{
	return sto_log_save(l, entries, n, NULL, errmsg);
}

void sto_log_entries_free(struct sto_log_entry *entries, size_t n)
{
	for (size_t i = 0; entries && i < n; i++)
		lora_free(entries[i].data);
	lora_free(entries);
}

/* Decodes one stored entry into e (data copied). */
static int entry_decode(rocksdb_iterator_t *it, uint64_t want,
                        struct sto_log_entry *e)
{
	size_t klen, vlen;
	const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
	const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
	if (klen != LOG_KEY_BYTES || k[0] != LOG_KEY_ENTRY ||
	    lora_get_be64(k + 1) != want || vlen < LOG_ENTRY_HEADER_BYTES)
		return LORA_ECORRUPT;
	e->index = want;
	e->term = lora_get_be64(v);
	e->type = lora_get_be32(v + 8);
	e->len = vlen - LOG_ENTRY_HEADER_BYTES;
	e->data = lora_malloc(e->len ? e->len : 1);
	if (!e->data)
		return LORA_ENOMEM;
	memcpy(e->data, v + LOG_ENTRY_HEADER_BYTES, e->len);
	return 0;
}

static int entries_read(struct sto_log *l, uint64_t lo, uint64_t hi,
                        size_t max_bytes, struct sto_log_entry **arr, size_t *n)
{
	uint8_t k[LOG_KEY_BYTES];
	entry_key(k, lo);
	rocksdb_iterator_t *it = rocksdb_create_iterator(l->db, l->ro);
	rocksdb_iter_seek(it, (const char *)k, sizeof(k));
	size_t bytes = 0, cap = 0;
	int rv = 0;
	for (uint64_t i = lo; i < hi; i++) {
		if (!rocksdb_iter_valid(it)) {
			rv = LORA_ECORRUPT; /* a hole in the log */
			break;
		}
		size_t vlen;
		rocksdb_iter_value(it, &vlen);
		size_t data = vlen > LOG_ENTRY_HEADER_BYTES
		                  ? vlen - LOG_ENTRY_HEADER_BYTES
		                  : 0;
		if (*n > 0 && bytes + data > max_bytes)
			break;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			struct sto_log_entry *na =
			    lora_realloc(*arr, cap * sizeof(*na));
			if (!na) {
				rv = LORA_ENOMEM;
				break;
			}
			*arr = na;
		}
		if ((rv = entry_decode(it, i, &(*arr)[*n])))
			break;
		bytes += data;
		(*n)++;
		rocksdb_iter_next(it);
	}
	return sto_iter_close(it, rv, NULL, "read log");
}

int sto_log_entries(struct sto_log *l, uint64_t lo, uint64_t hi,
                    size_t max_bytes, struct sto_log_entry **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (lo <= l->compact_index || lo > l->last + 1 ||
	    (lo == l->last + 1 && hi > lo))
		return LORA_ENOTFOUND;
	if (hi > l->last + 1)
		hi = l->last + 1;
	if (lo >= hi)
		return 0;
	if (max_bytes > STO_LOG_READ_BYTES_MAX)
		max_bytes = STO_LOG_READ_BYTES_MAX;
	struct sto_log_entry *arr = NULL;
	int rv = entries_read(l, lo, hi, max_bytes, &arr, n);
	if (rv) {
		sto_log_entries_free(arr, *n);
		*n = 0;
		return rv;
	}
	*out = arr;
	return 0;
}

int sto_log_term(struct sto_log *l, uint64_t index, uint64_t *term)
{
	if (index == l->compact_index) {
		*term = l->compact_term;
		return 0;
	}
	if (index < l->compact_index || index > l->last)
		return LORA_ENOTFOUND;
	uint8_t k[LOG_KEY_BYTES];
	entry_key(k, index);
	char *err = NULL;
	size_t vlen;
	char *v =
	    rocksdb_get(l->db, l->ro, (const char *)k, sizeof(k), &vlen, &err);
	if (err)
		return sto_rocks_err(err, NULL, "read term");
	if (!v || vlen < LOG_ENTRY_HEADER_BYTES) {
		rocksdb_free(v);
		return LORA_ECORRUPT;
	}
	*term = lora_get_be64((uint8_t *)v);
	rocksdb_free(v);
	return 0;
}

int sto_log_truncate_suffix(struct sto_log *l, uint64_t from, char *errmsg)
{
	if (from <= l->compact_index)
		return lora_errf(LORA_EINVAL, errmsg,
		                 "truncate at %llu: entries up to %llu are "
		                 "compacted",
		                 (unsigned long long)from,
		                 (unsigned long long)l->compact_index);
	if (from > l->last)
		return 0;
	rocksdb_writebatch_t *b = rocksdb_writebatch_create();
	delete_entries(b, from, l->last + 1);
	int rv = log_write(l, b, errmsg, "truncate");
	if (!rv)
		l->last = from - 1;
	return rv;
}

int sto_log_compact(struct sto_log *l, uint64_t index, uint64_t term,
                    char *errmsg)
{
	if (index <= l->compact_index)
		return 0;
	rocksdb_writebatch_t *b = rocksdb_writebatch_create();
	delete_entries(b, 0, index + 1);
	uint8_t v[16];
	lora_put_be64(v, index);
	lora_put_be64(v + 8, term);
	char kc = LOG_KEY_COMPACT;
	rocksdb_writebatch_put(b, &kc, 1, (const char *)v, 16);
	int rv = log_write(l, b, errmsg, "compact");
	if (rv)
		return rv;
	l->compact_index = index;
	l->compact_term = term;
	if (l->last < index)
		l->last = index;
	return 0;
}

int sto_log_hard_state(struct sto_log *l, struct sto_hard_state *out)
{
	char *err = NULL, kh = LOG_KEY_HARD;
	size_t vlen;
	memset(out, 0, sizeof(*out));
	char *v = rocksdb_get(l->db, l->ro, &kh, 1, &vlen, &err);
	if (err)
		return sto_rocks_err(err, NULL, "read hard state");
	if (!v)
		return 0;
	int rv = 0;
	if (vlen != 24) {
		rv = LORA_ECORRUPT;
	} else {
		out->term = lora_get_be64((uint8_t *)v);
		out->vote = lora_get_be64((uint8_t *)v + 8);
		out->commit = lora_get_be64((uint8_t *)v + 16);
	}
	rocksdb_free(v);
	return rv;
}

int sto_log_set_hard_state(struct sto_log *l, const struct sto_hard_state *hs,
                           char *errmsg)
{
	return sto_log_save(l, NULL, 0, hs, errmsg);
}

int sto_testing_log_put_raw(struct sto_log *l, const void *key, size_t klen,
                            const void *val, size_t vlen)
{
	char *err = NULL;
	rocksdb_put(l->db, l->wo, key, klen, val, vlen, &err);
	return err ? sto_rocks_err(err, NULL, "put raw") : 0;
}
