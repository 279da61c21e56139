/*
 * fuzz_seeds.c - writes the seed corpus of fuzz_pb_check into DIR: every
 * message kind around values of every shape, at, below and past small
 * limits, plus truncated copies. The first byte of each seed selects the
 * kind and the limit, as fuzz_pb_check.c reads it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wire_build.h"

static int write_seed(const char *dir, const char *name, uint8_t sel,
                      const struct wire *w, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	int ok =
	    fwrite(&sel, 1, 1, f) == 1 && fwrite(wb_data(w), 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	mkdir(argv[1], 0755);
	int n = 0;
	for (int kind = 0; kind < LORA_PB_KINDS; kind++)
		for (int s = WB_LIST; s <= WB_MIXED; s++)
			for (int depth = 0; depth <= 9; depth += 3) {
				struct wire w;
				wb_value(&w, (enum wb_shape)s, depth);
				wb_envelope(&w, (enum lora_pb_kind)kind);
				uint8_t sel =
				    (uint8_t)(kind + LORA_PB_KINDS * 8);
				char name[64];
				snprintf(name, sizeof name, "k%d-s%d-d%d", kind,
				         s, depth);
				int rc = write_seed(argv[1], name, sel, &w,
				                    wb_len(&w));
				snprintf(name, sizeof name, "k%d-s%d-d%d-cut",
				         kind, s, depth);
				if (rc == 0)
					rc = write_seed(argv[1], name, sel, &w,
					                wb_len(&w) / 2);
				wb_free(&w);
				if (rc != 0)
					return 1;
				n += 2;
			}
	printf("%d seeds in %s\n", n, argv[1]);
	return 0;
}
