/*
 * install.c - swapping a complete state store in for a node's state/,
 * crash-atomically (sto_install_*).
 *
 * A node replaces its state/ with a checkpoint (a snapshot from the leader,
 * or a local checkpoint at start-up). A crash anywhere in between must leave
 * either the old state or the new one in state/ after the next start, never
 * an empty or missing store, and never a state nobody can tell apart from
 * the right one. The swap therefore runs in steps, each durable before the
 * next starts (every rename is followed by an fsync of its directory):
 *
 *   1 prepare  open the staged copy, read its applied index and digest,
 *              close it, fsync every file, the staged dir and its parent.
 *   2 marker   write <parent>/INSTALLING (temp file, fsync, rename, fsync
 *              the parent): staged dir name, applied index, digest, and
 *              the caller's bytes (the node keeps its snapshot meta there).
 *   3 aside    rename state -> state.old (skipped when there is no state).
 *   4 in       rename staged -> state.
 *   5 verify   open state; its applied index and digest must equal the
 *              marker's. On a mismatch the old state is put back.
 *   (6         the caller's own step, e.g. the node's log and meta.)
 *   7 drop     remove state.old; then the marker (sto_install_done).
 *
 * sto_install_recover, run before the store is opened at start-up, decides
 * what an interrupted install becomes. With a marker: the new state wins
 * when state/ or the staged copy verifies against it (the install is
 * finished); otherwise the old one is put back from state.old. Without a
 * marker nothing is deleted: a state.old is a state nobody can prove
 * superseded (a crash of an older version, or an operator's hand), so it is
 * moved to state.old-kept-N and reported.
 *
 * Crash points for tests: with LORA_TEST_INSTALL_CRASH=k in the
 * environment, the process _exit()s with STO_INSTALL_CRASH_EXIT right after
 * step k (recovery runs the same steps, so it crashes there as well).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage.h"

#define INSTALL_MARKER        "INSTALLING"
#define INSTALL_MARKER_MAGIC  "lora-install 1"
#define INSTALL_MARKER_BYTES  (2 * STO_INSTALL_EXTRA_BYTES_MAX + 512)
#define INSTALL_PATH_BYTES    4352
#define INSTALL_KEPT_MAX      1000 /* state.old-kept-1 .. -1000 */
#define INSTALL_DIR_FILES_MAX 1000000

void sto_install_crash_point(int step)
{
	const char *e = getenv(STO_INSTALL_CRASH_ENV);
	if (e && atoi(e) == step)
		_exit(STO_INSTALL_CRASH_EXIT);
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void sto_rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int sto_fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return LORA_EIO;
	int rc = fsync(fd) == 0 ? 0 : LORA_EIO;
	close(fd);
	return rc;
}

static void join(char *out, const char *a, const char *b)
{
	snprintf(out, INSTALL_PATH_BYTES, "%s/%s", a, b);
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* rename, then fsync the parent: the step is durable when this returns. */
static int rename_synced(const char *parent, const char *from, const char *to,
                         char *errmsg)
{
	char a[INSTALL_PATH_BYTES], b[INSTALL_PATH_BYTES];
	join(a, parent, from);
	join(b, parent, to);
	if (rename(a, b) != 0)
		return lora_errf(LORA_EIO, errmsg, "rename %s to %s: %s", a, b,
		                 strerror(errno));
	if (sto_fsync_path(parent) != 0)
		return lora_errf(LORA_EIO, errmsg, "fsync %s", parent);
	return 0;
}

static int rm_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : LORA_EIO;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0 ? 0 : LORA_EIO;
	DIR *d = opendir(path);
	if (d == NULL)
		return LORA_EIO;
	int rc = 0;
	struct dirent *de;
	char p[INSTALL_PATH_BYTES];
	while (rc == 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			join(p, path, de->d_name);
			rc = rm_tree(p);
		}
	closedir(d);
	return rc ? rc : rmdir(path) == 0 ? 0 : LORA_EIO;
}

/* Removes parent/name and makes that durable. */
static int remove_synced(const char *parent, const char *name, char *errmsg)
{
	char p[INSTALL_PATH_BYTES];
	join(p, parent, name);
	if (rm_tree(p) != 0)
		return lora_errf(LORA_EIO, errmsg, "remove %s: %s", p,
		                 strerror(errno));
	if (sto_fsync_path(parent) != 0)
		return lora_errf(LORA_EIO, errmsg, "fsync %s", parent);
	return 0;
}

/* fsync every regular file in dir, then dir itself. */
static int sync_dir_files(const char *dir, char *errmsg)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return lora_errf(LORA_EIO, errmsg, "open %s: %s", dir,
		                 strerror(errno));
	int rc = 0;
	size_t k = 0;
	struct dirent *de;
	char p[INSTALL_PATH_BYTES];
	while (rc == 0 && (de = readdir(d)) && k++ < INSTALL_DIR_FILES_MAX) {
		struct stat st;
		join(p, dir, de->d_name);
		if (de->d_name[0] == '.' || lstat(p, &st) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (sto_fsync_path(p) != 0)
			rc = lora_errf(LORA_EIO, errmsg, "fsync %s", p);
	}
	closedir(d);
	if (rc == 0 && sto_fsync_path(dir) != 0)
		rc = lora_errf(LORA_EIO, errmsg, "fsync %s", dir);
	return rc;
}

/* Applied index and digest of the store in dir (which must exist); the
 * store stays open in *keep when keep is not NULL. */
static int read_store(const char *dir, uint64_t *applied,
                      char digest[STO_DIGEST_HEX_BYTES],
                      struct sto_store **keep, char *errmsg)
{
	if (!exists(dir))
		return lora_errf(LORA_ENOTFOUND, errmsg, "%s is missing", dir);
	struct sto_options o;
	sto_options_init(&o);
	o.create_if_missing = 0;
	struct sto_store *s;
	int rc = sto_open(dir, &o, &s, errmsg);
	if (rc)
		return rc;
	*applied = sto_applied_index(s);
	rc = sto_digest(s, digest, errmsg);
	if (rc == 0 && keep)
		*keep = s;
	else
		sto_close(s);
	return rc;
}

/* 1 when the store in dir holds what the marker says. */
static int store_matches(const char *dir, const struct sto_install_info *want,
                         struct sto_store **keep)
{
	uint64_t applied = 0;
	char digest[STO_DIGEST_HEX_BYTES];
	struct sto_store *s = NULL;
	if (read_store(dir, &applied, digest, &s, NULL) != 0)
		return 0;
	int ok = applied == want->applied && strcmp(digest, want->digest) == 0;
	if (ok && keep)
		*keep = s;
	else
		sto_close(s);
	return ok;
}

int sto_install_prepare(const char *staged_dir, struct sto_install_info *info,
                        char *errmsg)
{
	memset(info, 0, sizeof *info);
	int rc =
	    read_store(staged_dir, &info->applied, info->digest, NULL, errmsg);
	if (rc)
		return lora_errwrap(rc, errmsg, "staged state");
	rc = sync_dir_files(staged_dir, errmsg);
	char parent[INSTALL_PATH_BYTES];
	snprintf(parent, sizeof parent, "%s", staged_dir);
	char *slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	if (rc == 0 && slash && sto_fsync_path(parent) != 0)
		rc = lora_errf(LORA_EIO, errmsg, "fsync %s", parent);
	if (rc == 0)
		sto_install_crash_point(1);
	return rc;
}

/* ---- the marker --------------------------------------------------------- */

static int marker_write(const char *parent, const char *staged_name,
                        const struct sto_install_info *info, char *errmsg)
{
	static const char hex[] = "0123456789abcdef";
	char *buf = lora_malloc(INSTALL_MARKER_BYTES);
	if (buf == NULL)
		return lora_errf(LORA_ENOMEM, errmsg, "out of memory");
	int len = snprintf(buf, INSTALL_MARKER_BYTES,
	                   "%s\nstaged %s\napplied %llu\ndigest %s\nextra ",
	                   INSTALL_MARKER_MAGIC, staged_name,
	                   (unsigned long long)info->applied, info->digest);
	for (size_t i = 0; i < info->extra_len; i++) {
		buf[len++] = hex[info->extra[i] >> 4];
		buf[len++] = hex[info->extra[i] & 15];
	}
	buf[len++] = '\n';
	char tmp[INSTALL_PATH_BYTES], dst[INSTALL_PATH_BYTES];
	join(tmp, parent, INSTALL_MARKER ".tmp");
	join(dst, parent, INSTALL_MARKER);
	FILE *f = fopen(tmp, "wb");
	int ok = f != NULL;
	if (f) {
		ok = fwrite(buf, 1, (size_t)len, f) == (size_t)len;
		ok = fflush(f) == 0 && ok;
		ok = fsync(fileno(f)) == 0 && ok;
		ok = fclose(f) == 0 && ok;
	}
	lora_free(buf);
	if (!ok || rename(tmp, dst) != 0 || sto_fsync_path(parent) != 0)
		return lora_errf(LORA_EIO, errmsg, "write %s: %s", dst,
		                 strerror(errno));
	return 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	                              : -1;
}

int sto_install_marker_parse(const char *text, size_t len,
                             struct sto_install_info *info, char *staged,
                             size_t staged_bytes)
{
	memset(info, 0, sizeof *info);
	if (len == 0 || len >= INSTALL_MARKER_BYTES || text[len - 1] != '\n' ||
	    memchr(text, '\0', len))
		return LORA_ECORRUPT;
	char name[256], dg[STO_DIGEST_HEX_BYTES];
	unsigned long long applied;
	int off = 0;
	/* sscanf needs a terminated string: the bytes read are not one */
	char *t = lora_malloc(len + 1);
	if (t == NULL)
		return LORA_ENOMEM;
	memcpy(t, text, len);
	t[len] = 0;
	int got =
	    sscanf(t,
	           INSTALL_MARKER_MAGIC "\nstaged %255[^/\n]\napplied "
	                                "%llu\ndigest %32[0-9a-f]\nextra%n",
	           name, &applied, dg, &off);
	lora_free(t);
	if (got != 3 || off <= 0 || strlen(dg) != STO_DIGEST_HEX_BYTES - 1 ||
	    name[0] == '.' || strlen(name) >= staged_bytes)
		return LORA_ECORRUPT;
	if ((size_t)off >= len || text[off] != ' ')
		return LORA_ECORRUPT;
	off++; /* by hand: a space in the format would eat the newline */
	const char *h = text + off;
	size_t hl = len - (size_t)off - 1;
	if (hl % 2 || hl / 2 > STO_INSTALL_EXTRA_BYTES_MAX)
		return LORA_ECORRUPT;
	for (size_t i = 0; i < hl / 2; i++) {
		int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return LORA_ECORRUPT;
		info->extra[i] = (uint8_t)(hi << 4 | lo);
	}
	info->extra_len = hl / 2;
	info->applied = applied;
	memcpy(info->digest, dg, sizeof dg);
	snprintf(staged, staged_bytes, "%s", name);
	return 0;
}

/* 0 with the marker; LORA_ENOTFOUND when there is none. */
static int marker_read(const char *parent, struct sto_install_info *info,
                       char *staged, size_t staged_bytes, char *errmsg)
{
	char p[INSTALL_PATH_BYTES];
	join(p, parent, INSTALL_MARKER);
	FILE *f = fopen(p, "rb");
	if (f == NULL)
		return errno == ENOENT
		           ? LORA_ENOTFOUND
		           : lora_errf(LORA_EIO, errmsg, "open %s", p);
	char *buf = lora_malloc(INSTALL_MARKER_BYTES);
	size_t len = buf ? fread(buf, 1, INSTALL_MARKER_BYTES, f) : 0;
	fclose(f);
	int rc =
	    buf ? sto_install_marker_parse(buf, len, info, staged, staged_bytes)
	        : LORA_ENOMEM;
	lora_free(buf);
	if (rc)
		return lora_errf(rc, errmsg, "%s does not parse", p);
	return 0;
}

/* ---- swapping ----------------------------------------------------------- */

/* Puts the old state back: the unverified new one (if any) goes back to
 * the staged name and is removed, state.old becomes state, the marker goes.
 * Never touches a state/ that is the old one. */
static int roll_back(const char *parent, const char *staged, char *errmsg)
{
	char st[INSTALL_PATH_BYTES], old[INSTALL_PATH_BYTES];
	join(st, parent, "state");
	join(old, parent, "state.old");
	int rc = 0;
	if (exists(old)) {
		/* With a marker, state.old is the old state: state/ (if any)
		 * is the new one that did not verify. */
		if (exists(st))
			rc = remove_synced(parent, staged, errmsg) ||
			     rename_synced(parent, "state", staged, errmsg);
		if (rc == 0)
			rc =
			    rename_synced(parent, "state.old", "state", errmsg);
	}
	if (rc == 0)
		rc = remove_synced(parent, staged, errmsg);
	if (rc == 0)
		rc = remove_synced(parent, INSTALL_MARKER, errmsg);
	return rc ? LORA_EIO : 0;
}

/* Steps 3-5 from wherever they stand: state/ ends as the new state,
 * verified (open in *out when out is not NULL), or an error. */
static int move_in(const char *parent, const char *staged,
                   const struct sto_install_info *info, struct sto_store **out,
                   char *errmsg)
{
	char st[INSTALL_PATH_BYTES], old[INSTALL_PATH_BYTES];
	join(st, parent, "state");
	join(old, parent, "state.old");
	int rc = 0;
	if (exists(st)) {
		if (exists(old))
			return lora_errf(LORA_EINTERNAL, errmsg,
			                 "both state and state.old exist in %s",
			                 parent);
		rc = rename_synced(parent, "state", "state.old", errmsg);
		if (rc)
			return rc;
	}
	sto_install_crash_point(3);
	rc = rename_synced(parent, staged, "state", errmsg);
	if (rc)
		return rc;
	sto_install_crash_point(4);
	if (!store_matches(st, info, out))
		return lora_errf(LORA_ECORRUPT, errmsg,
		                 "the installed state does not hold applied "
		                 "index %llu with digest %s",
		                 (unsigned long long)info->applied,
		                 info->digest);
	sto_install_crash_point(5);
	return 0;
}

int sto_install_swap(const char *parent, const char *staged_name,
                     const struct sto_install_info *info,
                     struct sto_store **out, char *errmsg)
{
	char old[INSTALL_PATH_BYTES];
	join(old, parent, "state.old");
	if (exists(old))
		return lora_errf(LORA_EINVAL, errmsg,
		                 "%s exists: an earlier state is kept there",
		                 old);
	int rc = marker_write(parent, staged_name, info, errmsg);
	if (rc)
		return rc;
	sto_install_crash_point(2);
	rc = move_in(parent, staged_name, info, out, errmsg);
	if (rc == 0)
		return 0;
	char why[LORA_ERRMSG_BYTES];
	snprintf(why, sizeof why, "%s", errmsg ? errmsg : "");
	if (roll_back(parent, staged_name, errmsg) != 0)
		return lora_errf(rc, errmsg,
		                 "%s; and putting the old state back failed: "
		                 "restart the node to finish the roll back",
		                 why);
	return lora_errf(rc, errmsg, "%s; the old state is back", why);
}

int sto_install_done(const char *parent, char *errmsg)
{
	int rc = remove_synced(parent, "state.old", errmsg);
	if (rc == 0)
		sto_install_crash_point(7);
	if (rc == 0)
		rc = remove_synced(parent, INSTALL_MARKER, errmsg);
	return rc;
}

/* No marker: a state.old is moved to the first free state.old-kept-N. */
static int keep_stray(const char *parent, struct sto_install_recovery *r,
                      char *errmsg)
{
	char old[INSTALL_PATH_BYTES], p[INSTALL_PATH_BYTES];
	join(old, parent, "state.old");
	if (!exists(old))
		return 0;
	for (int i = 1; i <= INSTALL_KEPT_MAX; i++) {
		snprintf(r->kept, sizeof r->kept, "state.old-kept-%d", i);
		join(p, parent, r->kept);
		if (!exists(p))
			return rename_synced(parent, "state.old", r->kept,
			                     errmsg);
	}
	r->kept[0] = '\0';
	return lora_errf(LORA_ELIMIT, errmsg,
	                 "%s exists and %d kept states already: remove the "
	                 "ones you no longer need",
	                 old, INSTALL_KEPT_MAX);
}

int sto_install_recover(const char *parent, struct sto_install_recovery *r,
                        char *errmsg)
{
	memset(r, 0, sizeof *r);
	char staged[256];
	int rc = marker_read(parent, &r->info, staged, sizeof staged, errmsg);
	if (rc == LORA_ENOTFOUND) {
		r->outcome = STO_INSTALL_NONE;
		return keep_stray(parent, r, errmsg);
	}
	if (rc)
		return rc;
	snprintf(r->staged, sizeof r->staged, "%s", staged);
	char st[INSTALL_PATH_BYTES], sd[INSTALL_PATH_BYTES];
	join(st, parent, "state");
	join(sd, parent, staged);
	if (store_matches(st, &r->info, NULL)) {
		r->outcome = STO_INSTALL_FORWARD;
		return remove_synced(parent, staged, errmsg);
	}
	if (store_matches(sd, &r->info, NULL)) {
		rc = move_in(parent, staged, &r->info, NULL, errmsg);
		if (rc == 0) {
			r->outcome = STO_INSTALL_FORWARD;
			return 0;
		}
	}
	r->outcome = STO_INSTALL_BACK;
	rc = roll_back(parent, staged, errmsg);
	return rc ? lora_errf(rc, errmsg, "roll back the install in %s", parent)
	          : 0;
}
