/* hnsw_dist.c - the distance kernels of the HNSW graphs: float32 dot
 * products and squared euclidean distances, in two versions that give the
 * same bits, chosen once at run time by what the CPU supports.
 *
 * Every replica must compute the same float for the same two vectors, or
 * their graphs drift apart. The sum is therefore fixed: lane j (0..7) adds
 * the products of coordinates i = j (mod 8) in increasing i, one IEEE
 * multiplication and one IEEE addition each (no FMA, which rounds once:
 * -ffp-contract=off for this file), and the eight lanes are added in the
 * tree ((0 + 1) + (2 + 3)) + ((4 + 5) + (6 + 7)). The baseline version
 * keeps the eight lanes in two 4-lane SSE registers, the AVX2 version in
 * one 8-lane register: the same operations on the same values, so the
 * same results (test_storage_hnsw compares them bit for bit, and graphs
 * built with either).
 *
 * The sums are a chain of n / 8 dependent additions per lane, so one
 * distance waits on the adder's latency; the "x4" kernels score four
 * vectors against one query at once (four independent chains, and four
 * vectors' loads under way together), each with its own fixed sum.
 */
#ifdef __clang__ /* GCC ignores it (and warns): the flag does it there */
#pragma STDC FP_CONTRACT OFF
#endif
#include <stdatomic.h>
#include <string.h>

#include "hnswInt.h"

typedef float hd_v4f __attribute__((vector_size(16)));
typedef float hd_v8f __attribute__((vector_size(32)));

#define HD_SUM8(a, b)                                                          \
	((((a)[0] + (a)[1]) + ((a)[2] + (a)[3])) +                             \
	 (((b)[0] + (b)[1]) + ((b)[2] + (b)[3])))

/* ---- baseline: two 4-lane registers per sum ---- */

static float dot_sse(const float *a, const float *b, uint32_t n)
{
	hd_v4f s0 = {0}, s1 = {0}, x, y;
	for (uint32_t i = 0; i < n; i += HNSW_DIST_LANES) {
		memcpy(&x, a + i, sizeof x);
		memcpy(&y, b + i, sizeof y);
		s0 += x * y;
		memcpy(&x, a + i + 4, sizeof x);
		memcpy(&y, b + i + 4, sizeof y);
		s1 += x * y;
	}
	return HD_SUM8(s0, s1);
}

static float l2_sse(const float *a, const float *b, uint32_t n)
{
	hd_v4f s0 = {0}, s1 = {0}, x, y;
	for (uint32_t i = 0; i < n; i += HNSW_DIST_LANES) {
		memcpy(&x, a + i, sizeof x);
		memcpy(&y, b + i, sizeof y);
		x -= y;
		s0 += x * x;
		memcpy(&x, a + i + 4, sizeof x);
		memcpy(&y, b + i + 4, sizeof y);
		x -= y;
		s1 += x * x;
	}
	return HD_SUM8(s0, s1);
}

/* one step of vector k's two sums: dot (sq 0) or squared l2 (sq 1) */
#define HD_STEP4(k, sq)                                                        \
	do {                                                                   \
		hd_v4f t0, t1;                                                 \
		memcpy(&t0, x[k] + i, sizeof t0);                              \
		memcpy(&t1, x[k] + i + 4, sizeof t1);                          \
		if (sq) {                                                      \
			t0 = q0 - t0;                                          \
			t1 = q1 - t1;                                          \
			s##k##a += t0 * t0;                                    \
			s##k##b += t1 * t1;                                    \
		} else {                                                       \
			s##k##a += q0 * t0;                                    \
			s##k##b += q1 * t1;                                    \
		}                                                              \
	} while (0)

#define HD_X4_SSE(name, sq)                                                    \
	static void name(const float *q, const float *const x[4], uint32_t n,  \
	                 float out[4])                                         \
	{                                                                      \
		hd_v4f s0a = {0}, s0b = {0}, s1a = {0}, s1b = {0};             \
		hd_v4f s2a = {0}, s2b = {0}, s3a = {0}, s3b = {0}, q0, q1;     \
		for (uint32_t i = 0; i < n; i += HNSW_DIST_LANES) {            \
			memcpy(&q0, q + i, sizeof q0);                         \
			memcpy(&q1, q + i + 4, sizeof q1);                     \
			HD_STEP4(0, sq);                                       \
			HD_STEP4(1, sq);                                       \
			HD_STEP4(2, sq);                                       \
			HD_STEP4(3, sq);                                       \
		}                                                              \
		out[0] = HD_SUM8(s0a, s0b);                                    \
		out[1] = HD_SUM8(s1a, s1b);                                    \
		out[2] = HD_SUM8(s2a, s2b);                                    \
		out[3] = HD_SUM8(s3a, s3b);                                    \
	}

HD_X4_SSE(dot4_sse, 0)
HD_X4_SSE(l24_sse, 1)

/* ---- AVX2: one 8-lane register per sum, same lanes, same tree ---- */

#if defined(__x86_64__) && defined(__GNUC__)
#define HD_HAVE_AVX2 1
#define HD_AVX2      __attribute__((target("avx2")))

/* the lanes of an 8-lane register, in HD_SUM8's tree */
HD_AVX2 static float sum8_avx2(hd_v8f s)
{
	return (((s[0] + s[1]) + (s[2] + s[3])) +
	        ((s[4] + s[5]) + (s[6] + s[7])));
}

HD_AVX2 static float dot_avx2(const float *a, const float *b, uint32_t n)
{
	hd_v8f s = {0}, x, y;
	for (uint32_t i = 0; i < n; i += HNSW_DIST_LANES) {
		memcpy(&x, a + i, sizeof x);
		memcpy(&y, b + i, sizeof y);
		s += x * y;
	}
	return sum8_avx2(s);
}

HD_AVX2 static float l2_avx2(const float *a, const float *b, uint32_t n)
{
	hd_v8f s = {0}, x, y;
	for (uint32_t i = 0; i < n; i += HNSW_DIST_LANES) {
		memcpy(&x, a + i, sizeof x);
		memcpy(&y, b + i, sizeof y);
		x -= y;
		s += x * x;
	}
	return sum8_avx2(s);
}

#define HD_STEP8(k, sq)                                                        \
	do {                                                                   \
		hd_v8f t;                                                      \
		memcpy(&t, x[k] + i, sizeof t);                                \
		if (sq) {                                                      \
			t = qv - t;                                            \
			s##k += t * t;                                         \
		} else {                                                       \
			s##k += qv * t;                                        \
		}                                                              \
	} while (0)

#define HD_X4_AVX2(name, sq)                                                   \
	HD_AVX2 static void name(const float *q, const float *const x[4],      \
	                         uint32_t n, float out[4])                     \
	{                                                                      \
		hd_v8f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, qv;             \
		for (uint32_t i = 0; i < n; i += HNSW_DIST_LANES) {            \
			memcpy(&qv, q + i, sizeof qv);                         \
			HD_STEP8(0, sq);                                       \
			HD_STEP8(1, sq);                                       \
			HD_STEP8(2, sq);                                       \
			HD_STEP8(3, sq);                                       \
		}                                                              \
		out[0] = sum8_avx2(s0);                                        \
		out[1] = sum8_avx2(s1);                                        \
		out[2] = sum8_avx2(s2);                                        \
		out[3] = sum8_avx2(s3);                                        \
	}

HD_X4_AVX2(dot4_avx2, 0)
HD_X4_AVX2(l24_avx2, 1)
#endif

/* ---- the choice ---- */

static const struct hnsw_kernel kern_sse = {"sse", dot_sse, l2_sse, dot4_sse,
                                            l24_sse};
#ifdef HD_HAVE_AVX2
static const struct hnsw_kernel kern_avx2 = {"avx2", dot_avx2, l2_avx2,
                                             dot4_avx2, l24_avx2};
#endif

static _Atomic int forced = HNSW_KERNEL_AUTO;

const struct hnsw_kernel *hnsw_kernel_get(int which)
{
	if (which == HNSW_KERNEL_AUTO)
		which = atomic_load(&forced);
	switch (which) {
	case HNSW_KERNEL_SSE:
		return &kern_sse;
#ifdef HD_HAVE_AVX2
	case HNSW_KERNEL_AVX2:
		return __builtin_cpu_supports("avx2") ? &kern_avx2 : NULL;
	default:
		return __builtin_cpu_supports("avx2") ? &kern_avx2 : &kern_sse;
#else
	case HNSW_KERNEL_AVX2:
		return NULL;
	default:
		return &kern_sse;
#endif
	}
}

int hnsw_kernel_force(int which)
{
	if (which != HNSW_KERNEL_AUTO && !hnsw_kernel_get(which))
		return LORA_EINVAL;
	atomic_store(&forced, which);
	return 0;
}
