/* log.c - the in-memory Raft log since the last compaction point. */
/*
 * The log is an array of entries after a compaction point (snap_index,
 * snap_term). Live entries sit in ents[off .. off + len); compaction moves
 * `off` forward and the array is shifted down only when more than half of
 * it is dead, so both appending and compacting are amortised O(1) per
 * entry. Entry data is copied into refcounted blocks: one per proposal and
 * one per batch received from the leader, so a follower makes a single
 * allocation per append message however many entries it carries; an entry
 * releases its reference when truncated or compacted. `stable` is the highest
 * index the caller has made durable; truncating a suffix pulls it back so the
 * replacement entries are handed out for persisting again.
 */
#include <string.h>

#include "raft_int.h"

/* Largest data block shared by entries of one received batch. */
#define LOG_BLOCK_BYTES_MAX (64u << 10)

/* Drops entry slot i's reference to its data block. */
static void release(struct rep_log *l, size_t i)
{
	uint32_t *b = l->blk[i];
	if (b != NULL && --b[0] == 0)
		lora_free(b);
	l->blk[i] = NULL;
}

/* A block for `bytes` of data with `refs` references; data at b + 2. */
static uint32_t *block_new(size_t bytes, uint32_t refs)
{
	uint32_t *b = lora_malloc(2 * sizeof(uint32_t) + bytes);
	if (b != NULL)
		b[0] = refs;
	return b;
}

void log_free(struct rep_log *l)
{
	for (size_t i = 0; i < l->len; i++)
		release(l, l->off + i);
	lora_free(l->ents);
	lora_free(l->blk);
	memset(l, 0, sizeof(*l));
}

uint64_t log_last(const struct rep_log *l)
{
	return l->snap_index + l->len;
}

const struct rep_entry *log_at(const struct rep_log *l, uint64_t idx)
{
	LORA_ASSERT(idx > l->snap_index && idx <= log_last(l));
	return &l->ents[l->off + (idx - l->snap_index - 1)];
}

uint64_t log_term(const struct rep_log *l, uint64_t idx)
{
	if (idx == l->snap_index)
		return l->snap_term;
	if (idx < l->snap_index || idx > log_last(l))
		return 0;
	return log_at(l, idx)->term;
}

uint64_t log_last_term(const struct rep_log *l)
{
	return log_term(l, log_last(l));
}

int log_has(const struct rep_log *l, uint64_t idx)
{
	return idx >= l->snap_index && idx <= log_last(l);
}

int log_match(const struct rep_log *l, uint64_t idx, uint64_t term)
{
	return log_has(l, idx) && log_term(l, idx) == term;
}

static int log_grow(struct rep_log *l, size_t extra)
{
	if (l->off + l->len + extra <= l->cap)
		return 0;
	if (l->off > 0 && l->off >= l->len) {
		memmove(l->ents, l->ents + l->off, l->len * sizeof(*l->ents));
		memmove(l->blk, l->blk + l->off, l->len * sizeof(*l->blk));
		l->off = 0;
		if (l->len + extra <= l->cap)
			return 0;
	}
	size_t cap = l->cap ? l->cap : 64;
	while (cap < l->off + l->len + extra)
		cap *= 2;
	struct rep_entry *e = lora_realloc(l->ents, cap * sizeof(*e));
	if (e == NULL)
		return LORA_ENOMEM;
	l->ents = e;
	uint32_t **b = lora_realloc(l->blk, cap * sizeof(*b));
	if (b == NULL)
		return LORA_ENOMEM; /* ents grew: harmless, cap unchanged */
	l->blk = b;
	l->cap = cap;
	return 0;
}

/* Puts one entry at last + 1; data (if any) already sits in block b. */
static void put(struct rep_log *l, uint64_t term, uint32_t type, uint8_t *data,
                size_t len, uint32_t *b)
{
	size_t slot = l->off + l->len;
	struct rep_entry *e = &l->ents[slot];
	e->index = log_last(l) + 1;
	e->term = term;
	e->type = type;
	e->len = len;
	e->data = len > 0 ? data : NULL;
	l->blk[slot] = len > 0 ? b : NULL;
	l->len++;
}

int log_append_new(struct rep_log *l, uint64_t term, uint32_t type,
                   const void *data, size_t len)
{
	int rv = log_grow(l, 1);
	if (rv != 0)
		return rv;
	uint32_t *b = NULL;
	if (len > 0) {
		b = block_new(len, 1);
		if (b == NULL)
			return LORA_ENOMEM;
		memcpy(b + 2, data, len);
	}
	put(l, term, type, b ? (uint8_t *)(b + 2) : NULL, len, b);
	return 0;
}

/* Copies ents[0..n) (consecutive, n >= 1) into one fresh block. */
static int append_group(struct rep_log *l, const struct rep_entry *ents,
                        size_t n)
{
	size_t bytes = 0;
	uint32_t refs = 0;
	for (size_t i = 0; i < n; i++) {
		bytes += ents[i].len;
		refs += ents[i].len > 0;
	}
	uint32_t *b = NULL;
	uint8_t *p = NULL;
	if (refs > 0) {
		b = block_new(bytes, refs);
		if (b == NULL)
			return LORA_ENOMEM;
		p = (uint8_t *)(b + 2);
	}
	for (size_t i = 0; i < n; i++) {
		if (ents[i].len > 0)
			memcpy(p, ents[i].data, ents[i].len);
		put(l, ents[i].term, ents[i].type, p, ents[i].len, b);
		if (ents[i].len > 0) /* p is NULL when every entry is empty */
			p += ents[i].len;
	}
	return 0;
}

int log_append(struct rep_log *l, const struct rep_entry *ents, size_t n)
{
	int rv = log_grow(l, n);
	if (rv != 0)
		return rv;
	size_t start = 0, bytes = 0;
	for (size_t i = 0; i < n; i++) {
		LORA_ASSERT(ents[i].index == log_last(l) + 1 + (i - start));
		/* Blocks stay below malloc's mmap threshold: no page-fault
		 * storm when big batches come and go. */
		if (i > start && bytes + ents[i].len > LOG_BLOCK_BYTES_MAX) {
			rv = append_group(l, ents + start, i - start);
			if (rv != 0)
				return rv;
			start = i;
			bytes = 0;
		}
		bytes += ents[i].len;
	}
	return append_group(l, ents + start, n - start);
}

void log_truncate(struct rep_log *l, uint64_t from)
{
	LORA_ASSERT(from > l->commit && from > l->snap_index);
	uint64_t last = log_last(l);
	for (uint64_t i = from; i <= last; i++)
		release(l, l->off + (size_t)(i - l->snap_index - 1));
	if (from <= last)
		l->len = (size_t)(from - l->snap_index - 1);
	if (l->stable >= from)
		l->stable = from - 1;
}

void log_compact(struct rep_log *l, uint64_t idx)
{
	LORA_ASSERT(idx > l->snap_index && idx <= log_last(l));
	uint64_t term = log_term(l, idx);
	size_t drop = (size_t)(idx - l->snap_index);
	for (size_t i = 0; i < drop; i++)
		release(l, l->off + i);
	l->off += drop;
	l->len -= drop;
	if (l->len == 0)
		l->off = 0;
	l->snap_index = idx;
	l->snap_term = term;
}

void log_reset(struct rep_log *l, uint64_t idx, uint64_t term)
{
	for (size_t i = 0; i < l->len; i++)
		release(l, l->off + i);
	l->off = 0;
	l->len = 0;
	l->snap_index = idx;
	l->snap_term = term;
	l->stable = idx;
	l->commit = idx;
	if (l->applied < idx)
		l->applied = idx;
}

uint64_t log_find_conflict_by_term(const struct rep_log *l, uint64_t idx,
                                   uint64_t term)
{
	if (idx > log_last(l))
		idx = log_last(l);
	while (idx > l->snap_index && log_term(l, idx) > term)
		idx--;
	return idx;
}

int log_up_to_date(const struct rep_log *l, uint64_t idx, uint64_t term)
{
	uint64_t lt = log_last_term(l);
	return term > lt || (term == lt && idx >= log_last(l));
}
