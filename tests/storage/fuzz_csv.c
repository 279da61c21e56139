/* fuzz_csv.c - libFuzzer target for the bulk import's CSV reader and field
 * converters (storage/csv.c): any bytes must give records or an error,
 * never a crash, an overread or a leak. The first input byte picks the
 * delimiter. Not built by CMake (the tree builds with gcc); run it with:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -Istorage -Iproto -Ibuild/release/proto/gen tests/storage/fuzz_csv.c \
 *     storage/csv.c proto/base.c proto/buf.c -o /tmp/fuzz_csv
 *   /tmp/fuzz_csv -max_total_time=60
 */
#include "importInt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = ",;\t|";
	if (size == 0)
		return 0;
	char em[LORA_ERRMSG_BYTES];
	struct sto_csv c;
	sto_csv_init(&c, (const char *)data + 1, size - 1, delims[data[0] & 3]);
	int done = 0;
	while (sto_csv_next(&c, &done, em) == 0 && !done) {
		for (size_t i = 0; i < c.nf; i++) {
			const char *p = c.f[i].p;
			size_t n = c.f[i].len;
			int64_t iv;
			double d;
			int b;
			float v[4];
			sto_csv_int(p, n, &iv, em);
			sto_csv_double(p, n, &d, em);
			sto_csv_bool(p, n, &b, em);
			sto_csv_vector(p, n, ';', v, 4, em);
			sto_csv_text_ok(p, n);
		}
	}
	sto_csv_free(&c);
	return 0;
}
