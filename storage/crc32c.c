/* RocksDB's CRC32C on the CPU's crc32 instruction.
 *
 * Every record RocksDB writes to a write-ahead log (the Raft log's and the
 * state's, so every replicated byte twice on every node) and to a MANIFEST
 * is checksummed with CRC32C (table blocks use XXH3, RocksDB 7's default).
 * Debian's librocksdb is built portable, without SSE4.2, so its CRC32C is
 * a table lookup per byte: 9 % of a three-node cluster's CPU while it
 * loads people with 128-d vectors (session 20's profile of
 * bench_loadcsv.sh).
 *
 * The library computes it in one exported function, reached through its
 * PLT: `uint32_t rocksdb::crc32c::Extend(uint32_t crc, const char *buf,
 * size_t n)`. When lora_storage is built against a shared librocksdb on
 * x86-64 (storage/CMakeLists.txt, LORA_ROCKS_CRC32C), each program linking
 * it defines that symbol here and exports it, so the dynamic linker binds
 * the library's calls to this definition, the executable coming first in
 * the lookup order. It computes the same function (checked against the
 * library's own in tests/storage/test_storage_crc32c.c, which also checks
 * that a write reaches it, and reads back with each what the other
 * wrote). A CPU without SSE4.2 keeps the library's own. A librocksdb
 * linked with -Bsymbolic-functions would bind its calls to itself: then
 * nothing is faster, and sto_crc32c_impl says so once a store was opened
 * (opening one writes its MANIFEST). */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "stoInt.h"
#include "sto_testing.h"

#if LORA_ROCKS_CRC32C && defined(__x86_64__)

/* The mangled name encodes (unsigned int, char const *, unsigned long) */
_Static_assert(_Generic((uint32_t)0, unsigned int : 1, default : 0),
               "uint32_t is not unsigned int");
_Static_assert(_Generic((size_t)0, unsigned long : 1, default : 0),
               "size_t is not unsigned long");

#define ROCKS_EXTEND "_ZN7rocksdb6crc32c6ExtendEjPKcm"

typedef uint32_t (*extend_fn)(uint32_t, const char *, size_t);

/* Set by the first call that reaches this definition: read on every
 * call, written once (a shared counter would be written by every writing
 * thread on the path this file exists to make faster). */
static atomic_int reached;

/* The library's definition (the next one after this program's), for a CPU
 * without the instruction. */
static extend_fn rocks_extend(void)
{
	static _Atomic(extend_fn) next;
	extend_fn f = atomic_load_explicit(&next, memory_order_acquire);
	if (!f) {
		union {
			void *p;
			extend_fn f;
		} u = {dlsym(RTLD_NEXT, ROCKS_EXTEND)};
		f = u.f;
		atomic_store_explicit(&next, f, memory_order_release);
	}
	return f;
}

#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t
hw_extend(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = ~crc;
	for (; n && ((uintptr_t)p & 7); n--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	for (; n >= 32; n -= 32, p += 32) {
		uint64_t w[4];
		memcpy(w, p, sizeof w);
		c = _mm_crc32_u64(c, w[0]);
		c = _mm_crc32_u64(c, w[1]);
		c = _mm_crc32_u64(c, w[2]);
		c = _mm_crc32_u64(c, w[3]);
	}
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w;
		memcpy(&w, p, sizeof w);
		c = _mm_crc32_u64(c, w);
	}
	for (; n; n--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

static int hw_ok(void)
{
	static atomic_int ok; /* 0 unknown, 1 yes, 2 no */
	int v = atomic_load_explicit(&ok, memory_order_relaxed);
	if (!v) {
		__builtin_cpu_init();
		v = __builtin_cpu_supports("sse4.2") ? 1 : 2;
		atomic_store_explicit(&ok, v, memory_order_relaxed);
	}
	return v == 1;
}

/* sto_testing_crc32c_library: the library's own, for a store written
 * with one and read back with the other. */
static atomic_int use_library;

void sto_testing_crc32c_library(int on)
{
	atomic_store_explicit(&use_library, on, memory_order_relaxed);
}

int sto_testing_crc32c_reached(int reset)
{
	int r = atomic_load_explicit(&reached, memory_order_relaxed);
	if (reset)
		atomic_store_explicit(&reached, 0, memory_order_relaxed);
	return r;
}

/* The interposed definition (its C++ name via the assembler label). */
uint32_t sto_rocks_crc32c_extend(uint32_t crc, const char *buf,
                                 size_t n) __asm__(ROCKS_EXTEND);
uint32_t sto_rocks_crc32c_extend(uint32_t crc, const char *buf, size_t n)
{
	if (!atomic_load_explicit(&reached, memory_order_relaxed))
		atomic_store_explicit(&reached, 1, memory_order_relaxed);
	if (hw_ok() &&
	    !atomic_load_explicit(&use_library, memory_order_relaxed))
		return hw_extend(crc, (const uint8_t *)buf, n);
	extend_fn f = rocks_extend();
	LORA_ASSERT(f != NULL);
	return f(crc, buf, n);
}

const char *sto_crc32c_impl(void)
{
	union {
		void *p;
		extend_fn f;
	} u = {dlsym(RTLD_DEFAULT, ROCKS_EXTEND)};
	if (u.f != sto_rocks_crc32c_extend)
		return "rocksdb (not interposed)";
	if (!atomic_load_explicit(&reached, memory_order_relaxed))
		return "rocksdb (its calls do not reach this program's)";
	return hw_ok() ? "sse4.2" : "rocksdb (no crc32 instruction)";
}

#else /* a static or non-x86-64 librocksdb: its own CRC32C */

void sto_testing_crc32c_library(int on)
{
	(void)on;
}

int sto_testing_crc32c_reached(int reset)
{
	(void)reset;
	return 0;
}

const char *sto_crc32c_impl(void)
{
	return "rocksdb (not built in)";
}

#endif
