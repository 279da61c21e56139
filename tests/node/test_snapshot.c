/* test_snapshot.c - the follower's snapshot stager (node/snapshot.h,
 * nsnap_*) alone, without a node: a real checkpoint cut into chunks is
 * staged when its chunks come in order and the copy verifies (applied
 * index, digest equal to the source's); a chunk out of order, one past
 * the byte limit, a forged copy that does not open, or a copy below the
 * snapshot's index are refused and staging starts over; a staged snapshot
 * is not replaced while it may be installing. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../storage/sto_helpers.h"
#include "node_int.h"

#define T_NODES     50
#define T_CHUNK     4096 /* small: several chunks per file */
#define T_FILES_MAX 64
#define T_BYTES_MAX (64u << 20)
#define T_FROM      2
#define T_TERM      3

struct tfile {
	char name[NODE_SNAP_FILE_NAME_BYTES_MAX + 1];
	uint8_t *data;
	size_t len;
};

static char *dir;
static char ckpt[512];
static uint64_t ckpt_index;
static char ckpt_digest[STO_DIGEST_HEX_BYTES];
static struct tfile files[T_FILES_MAX];
static size_t n_files;
static struct nsnap_stager st;

static void read_files(void)
{
	DIR *d = opendir(ckpt);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	n_files = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		ck_assert_uint_lt(n_files, T_FILES_MAX);
		struct tfile *f = &files[n_files++];
		snprintf(f->name, sizeof f->name, "%s", de->d_name);
		char p[1024];
		snprintf(p, sizeof p, "%s/%s", ckpt, de->d_name);
		FILE *fp = fopen(p, "rb");
		ck_assert_ptr_nonnull(fp);
		fseek(fp, 0, SEEK_END);
		f->len = (size_t)ftell(fp);
		fseek(fp, 0, SEEK_SET);
		f->data = malloc(f->len ? f->len : 1);
		ck_assert_uint_eq(fread(f->data, 1, f->len, fp), f->len);
		fclose(fp);
	}
	closedir(d);
}

static void setup(void)
{
	dir = tmpdir_new();
	char src[512], em[LORA_ERRMSG_BYTES];
	snprintf(src, sizeof src, "%s/src", dir);
	struct sto_store *s;
	ck_assert_msg(sto_open(src, NULL, &s, em) == 0, "open: %s", em);
	for (uint64_t i = 1; i <= T_NODES; i++) {
		Lora__MutationBatch *b = batch_new();
		add_create_node(b, i, "T", 1, "i", v_int((int64_t)i));
		ck_assert_int_eq(sto_apply(s, i, b, em), 0);
		batch_free(b);
	}
	snprintf(ckpt, sizeof ckpt, "%s/ckpt", dir);
	ck_assert_int_eq(sto_checkpoint(s, ckpt, &ckpt_index, em), 0);
	ck_assert_int_eq(sto_digest(s, ckpt_digest, em), 0);
	sto_close(s);
	read_files();
	char data[512];
	snprintf(data, sizeof data, "%s/data", dir);
	ck_assert_int_eq(mkdir(data, 0700), 0);
	nsnap_stager_init(&st, data, T_BYTES_MAX);
}

static void teardown(void)
{
	for (size_t i = 0; i < n_files; i++)
		free(files[i].data);
	tmpdir_free(dir);
}

/* Sends chunk k of file f (T_CHUNK bytes from k * T_CHUNK) of snapshot
 * `index`; last_file: f is the snapshot's last file. */
static enum nsnap_result send(uint64_t index, size_t f, size_t k, int last_file,
                              uint64_t now_ms)
{
	Lora__SnapshotMeta meta = LORA__SNAPSHOT_META__INIT;
	meta.index = index;
	meta.term = T_TERM;
	Lora__SnapshotChunk c = LORA__SNAPSHOT_CHUNK__INIT;
	c.meta = &meta;
	c.term = T_TERM;
	c.file = files[f].name;
	c.offset = (uint64_t)k * T_CHUNK;
	size_t left = files[f].len - k * T_CHUNK;
	c.data.data = files[f].data + k * T_CHUNK;
	c.data.len = left < T_CHUNK ? left : T_CHUNK;
	c.last_of_file = left <= T_CHUNK;
	c.last = c.last_of_file && last_file;
	struct rep_snapshot_meta m;
	ck_assert_int_eq(node_meta_from_pb(&meta, &m), 0);
	return nsnap_stage(&st, T_FROM, &c, &m, now_ms);
}

static size_t chunks_of(size_t f)
{
	return files[f].len ? (files[f].len + T_CHUNK - 1) / T_CHUNK : 1;
}

/* Every chunk in order: the last answer. */
static enum nsnap_result send_all(uint64_t index, uint64_t now_ms)
{
	enum nsnap_result r = NSNAP_TAKEN;
	for (size_t f = 0; f < n_files; f++)
		for (size_t k = 0; k < chunks_of(f); k++) {
			r = send(index, f, k, f + 1 == n_files, now_ms);
			if (f + 1 < n_files || k + 1 < chunks_of(f))
				ck_assert_int_eq(r, NSNAP_TAKEN);
		}
	return r;
}

static int staged_dir_exists(void)
{
	char d[NODE_PATH_BYTES_MAX + 64];
	struct stat sb;
	nsnap_staging_dir(&st, d, sizeof d);
	return stat(d, &sb) == 0;
}

START_TEST(test_in_order_staged)
{
	ck_assert_int_eq(send_all(ckpt_index, 1000), NSNAP_STAGED);
	ck_assert_uint_eq(st.staged, ckpt_index);
	ck_assert_uint_eq(st.info.applied, T_NODES);
	ck_assert_str_eq(st.info.digest, ckpt_digest);
	/* the last chunk again: handed over again, nothing restaged */
	size_t f = n_files - 1;
	ck_assert_int_eq(send(ckpt_index, f, chunks_of(f) - 1, 1, 2000),
	                 NSNAP_AGAIN);
	ck_assert_int_eq(send(ckpt_index, 0, 0, 0, 2000), NSNAP_IGNORED);
	/* a newer snapshot waits while the staged one may be installing */
	ck_assert_int_eq(send(ckpt_index + 1, 0, 0, 0, 2000), NSNAP_IGNORED);
	ck_assert_uint_eq(st.staged, ckpt_index);
	ck_assert_int_eq(
	    send(ckpt_index + 1, 0, 0, 0, 1000 + NODE_SNAP_STAGED_HOLD_MS),
	    NSNAP_TAKEN);
	ck_assert_uint_eq(st.staged, 0);
}
END_TEST

START_TEST(test_out_of_order_refused)
{
	size_t f = 0;
	while (f < n_files && chunks_of(f) < 2)
		f++;
	ck_assert_msg(f < n_files, "no file of two chunks");
	/* a second chunk before any first one */
	ck_assert_int_eq(send(ckpt_index, f, 1, 0, 1000), NSNAP_REFUSED);
	ck_assert(!staged_dir_exists());
	/* a chunk sent twice (it overlaps what was written) */
	ck_assert_int_eq(send(ckpt_index, f, 0, 0, 1000), NSNAP_TAKEN);
	ck_assert_int_eq(send(ckpt_index, f, 1, 0, 1000), NSNAP_TAKEN);
	ck_assert(staged_dir_exists());
	ck_assert_int_eq(send(ckpt_index, f, 1, 0, 1000), NSNAP_REFUSED);
	ck_assert(!staged_dir_exists()); /* dropped */
	/* broken until a file starts again from offset 0 */
	ck_assert_int_eq(send(ckpt_index, f, 1, 0, 1000), NSNAP_REFUSED);
	ck_assert_int_eq(send_all(ckpt_index, 1000), NSNAP_STAGED);
}
END_TEST

START_TEST(test_gap_refused)
{
	size_t f = 0;
	while (f < n_files && chunks_of(f) < 3)
		f++;
	ck_assert_msg(f < n_files, "no file of three chunks");
	ck_assert_int_eq(send(ckpt_index, f, 0, 0, 1000), NSNAP_TAKEN);
	ck_assert_int_eq(send(ckpt_index, f, 2, 0, 1000), NSNAP_REFUSED);
	ck_assert_uint_eq(st.staged, 0);
}
END_TEST

START_TEST(test_oversized_refused)
{
	size_t total = 0;
	for (size_t f = 0; f < n_files; f++)
		total += files[f].len;
	st.bytes_max = total - 1;
	ck_assert_int_eq(send_all(ckpt_index, 1000), NSNAP_REFUSED);
	ck_assert_uint_eq(st.staged, 0);
	ck_assert(!staged_dir_exists());
	st.bytes_max = total;
	ck_assert_int_eq(send_all(ckpt_index, 1000), NSNAP_STAGED);
}
END_TEST

START_TEST(test_forged_refused)
{
	/* every file's bytes flipped: the copy does not open */
	for (size_t f = 0; f < n_files; f++)
		for (size_t i = 0; i < files[f].len; i++)
			files[f].data[i] ^= 0x5a;
	ck_assert_int_eq(send_all(ckpt_index, 1000), NSNAP_REFUSED);
	ck_assert_uint_eq(st.staged, 0);
	ck_assert(!staged_dir_exists());
}
END_TEST

START_TEST(test_below_index_refused)
{
	/* a real checkpoint claimed as a later snapshot than it holds */
	ck_assert_int_eq(send_all(ckpt_index + 5, 1000), NSNAP_REFUSED);
	ck_assert_uint_eq(st.staged, 0);
}
END_TEST

START_TEST(test_forged_names_refused)
{
	static const char *bad[] = {"../x", "a/b", ".hidden", ""};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		Lora__SnapshotMeta meta = LORA__SNAPSHOT_META__INIT;
		Lora__SnapshotChunk c = LORA__SNAPSHOT_CHUNK__INIT;
		c.meta = &meta;
		c.file = (char *)bad[i];
		size_t len = lora__snapshot_chunk__get_packed_size(&c);
		uint8_t *p = malloc(len + 1);
		lora__snapshot_chunk__pack(&c, p);
		Lora__SnapshotChunk *out = NULL;
		ck_assert_int_eq(node_snapshot_chunk_decode(p, len, &out),
		                 LORA_ECORRUPT);
		ck_assert_ptr_null(out);
		free(p);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("stager");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_in_order_staged);
	tcase_add_test(tc, test_out_of_order_refused);
	tcase_add_test(tc, test_gap_refused);
	tcase_add_test(tc, test_oversized_refused);
	tcase_add_test(tc, test_forged_refused);
	tcase_add_test(tc, test_below_index_refused);
	tcase_add_test(tc, test_forged_names_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	tmpdir_root_begin();
	srunner_run_all(sr, CK_NORMAL);
	tmpdir_root_end();
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
