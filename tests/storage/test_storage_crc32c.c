/* test_storage_crc32c.c - storage/crc32c.c, which serves RocksDB's
 * CRC32C: in effect in a program linking lora_storage (the library's
 * calls bind to it, and a write reaches it), the same function as the
 * library's own on every length, alignment and starting value, and a
 * store written with either reads back whole with the other (the log
 * replay and the MANIFEST check every record against it). Skipped where
 * lora_storage is built without it (a static or non-x86-64 librocksdb). */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sto_fixture.h"
#include "sto_testing.h"

#define ROCKS_EXTEND "_ZN7rocksdb6crc32c6ExtendEjPKcm"

typedef uint32_t (*extend_fn)(uint32_t, const char *, size_t);

static extend_fn sym(void *handle)
{
	union {
		void *p;
		extend_fn f;
	} u = {dlsym(handle, ROCKS_EXTEND)};
	ck_assert_ptr_nonnull(u.p);
	return u.f;
}

START_TEST(interposed_on_this_cpu)
{
	__builtin_cpu_init();
	const char *impl = sto_crc32c_impl();
	printf("crc32c: %s\n", impl);
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		ck_assert_str_eq(impl, "sse4.2");
#endif
	/* the name the library's calls resolve to is this program's */
	ck_assert_ptr_ne((void *)sym(RTLD_DEFAULT), (void *)sym(RTLD_NEXT));
	/* and a write's log record reaches it */
	sto_testing_crc32c_reached(1);
	Lora__MutationBatch *mb = batch_new();
	add_create_node(mb, 1, "P", 1, "id", v_int(1));
	ck_assert_int_eq(apply(mb), 0);
	ck_assert_int_eq(sto_testing_crc32c_reached(0), 1);
}
END_TEST

START_TEST(same_function_as_the_librarys)
{
	extend_fn ours = sym(RTLD_DEFAULT), rocks = sym(RTLD_NEXT);
	/* the standard check value of CRC-32C */
	ck_assert_uint_eq(ours(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(rocks(0, "123456789", 9), 0xE3069283u);
	enum { N = 4096 + 64 };
	static char buf[N];
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < N; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[i] = (char)x;
	}
	size_t checked = 0;
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; len + off <= N;
		     len += len < 80 ? 1 : 61 + len / 7) {
			uint32_t init =
			    (uint32_t)(x >> (len % 32)) ^ (uint32_t)len;
			ck_assert_uint_eq(ours(init, buf + off, len),
			                  rocks(init, buf + off, len));
			checked++;
		}
	/* extending in pieces is the same as at once */
	uint32_t whole = ours(0, buf, N), parts = 0;
	for (size_t at = 0, step = 1; at < N; at += step, step = step * 3 + 1)
		parts = ours(parts, buf + at, at + step > N ? N - at : step);
	ck_assert_uint_eq(parts, whole);
	printf("%zu lengths and offsets agree with the library's\n", checked);
}
END_TEST

enum { BATCHES = 100, PER = 50 };

/* Applies BATCHES batches of PER nodes from id *next on, half of them
 * compacted into table files (a MANIFEST record), the rest left in the
 * write-ahead log. */
static void write_nodes(uint64_t *next)
{
	uint64_t id = *next;
	for (int b = 0; b < BATCHES; b++) {
		Lora__MutationBatch *mb = batch_new();
		for (int i = 0; i < PER; i++, id++) {
			float xs[16];
			for (int k = 0; k < 16; k++)
				xs[k] = (float)(id * 16 + (uint64_t)k);
			add_create_node(mb, id, "P", 2, "id",
			                v_int((int64_t)id), "emb",
			                v_vec(16, xs));
		}
		ck_assert_int_eq(apply(mb), 0);
		if (b == BATCHES / 2) { /* half into table files */
			char msg[LORA_ERRMSG_BYTES] = "";
			ck_assert_int_eq(sto_compact(st, msg), 0);
		}
	}
	*next = id;
}

/* Closes and reopens the store, then checks nodes 1 .. next-1. */
static void reopen_and_read(uint64_t next)
{
	char msg[LORA_ERRMSG_BYTES] = "", p[512];
	sto_close(st);
	ck_assert_int_eq(
	    sto_open(path_join(p, sizeof(p), dir, "state"), NULL, &st, msg), 0);
	ck_assert_uint_eq(sto_applied_index(st), (next - 1) / PER);
	struct sto_view *v;
	ck_assert_int_eq(sto_view_open(st, &v), 0);
	uint64_t n = 0;
	ck_assert_int_eq(sto_view_count_nodes(v, "P", &n), 0);
	ck_assert_uint_eq(n, next - 1);
	for (uint64_t i = 1; i < next; i += 37) {
		Lora__Value *val = NULL;
		ck_assert_int_eq(sto_view_node_prop(v, i, "id", &val), 0);
		ck_assert_ptr_nonnull(val);
		ck_assert_int_eq(val->int_value, (int64_t)i);
		lora__value__free_unpacked(val, &lora_pb_allocator);
	}
	sto_view_close(v);
}

/* What one CRC32C wrote (log records and table blocks), the other reads
 * back whole: a store from before this code opens with it, and one
 * written with it opens with the library's (RocksDB checks every record
 * and block it reads, and drops a log's tail from the first bad one). */
START_TEST(stores_read_back_across_the_two)
{
	uint64_t next = 1;
	sto_testing_crc32c_library(1);
	write_nodes(&next);
	sto_testing_crc32c_library(0);
	reopen_and_read(next);
	write_nodes(&next);
	sto_testing_crc32c_library(1);
	reopen_and_read(next);
	sto_testing_crc32c_library(0);
}
END_TEST

int main(void)
{
	if (!strcmp(sto_crc32c_impl(), "rocksdb (not built in)")) {
		printf("storage_crc32c: lora_storage has no CRC32C of its own "
		       "here: skipped\n");
		return 0;
	}
	Suite *s = suite_create("storage_crc32c");
	TCase *tc = tcase_create("crc32c");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, interposed_on_this_cpu);
	tcase_add_test(tc, same_function_as_the_librarys);
	tcase_add_test(tc, stores_read_back_across_the_two);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
