/*
 * replay.c - runs a fuzz target over files without libFuzzer, so that the
 * seed corpus (and any crash file) replays under the project's own
 * compiler and sanitizers:  fuzz_X_replay FILE|DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_FILE_BYTES_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	uint8_t *buf = malloc(REPLAY_FILE_BYTES_MAX);
	size_t n = buf ? fread(buf, 1, REPLAY_FILE_BYTES_MAX, f) : 0;
	fclose(f);
	if (buf == NULL)
		return -1;
	uint8_t *exact = malloc(n ? n : 1); /* exact size, for ASan */
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

static int run_path(const char *path, size_t *count)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	DIR *d = opendir(path);
	struct dirent *e;
	int rc = d ? 0 : -1;
	while (d && rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char p[4096];
		snprintf(p, sizeof p, "%s/%s", path, e->d_name);
		rc = run_path(p, count);
	}
	if (d)
		closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], &count) != 0)
			return 1;
	printf("%zu inputs replayed\n", count);
	return count ? 0 : 1;
}
