/* count_planes_simd.c - bit-sliced collision counting (count_planes.h) with SIMD registers,
 * chosen at compile time from the target: AVX2 (__AVX2__, 4 words a register), SSE2 (__SSE2__,
 * every x86-64; 2 words), NEON (aarch64: a pair of q registers, 4 words; 32-bit ARM: 2 words);
 * compiled to nothing without any (the portable
 * count_planes.c runs). Bitwise operations only: the same planes as the portable version, bit
 * for bit (tests: test_count_planes_versions). No -march=native: a wheel built for x86-64
 * gets SSE2; -mavx2 (or -march=x86-64-v3) turns on AVX2. */
#include "internal.h"

#if ELSH_USE_AVX2
#include <immintrin.h>
#include "count_planes_avx2_ops.h"
#define COUNT_PLANES elsh_count_planes_simd
#include "count_planes.h"
#elif ELSH_USE_SSE2
#include <emmintrin.h>
#define VEC __m128i
#define VWORDS 2
#define VZERO() _mm_setzero_si128()
#define VLOAD(p) _mm_load_si128((const __m128i *)(const void *)(p))
#define VSTORE(p, v) _mm_store_si128((__m128i *)(void *)(p), (v))
#define VAND(a, b) _mm_and_si128((a), (b))
#define VOR(a, b) _mm_or_si128((a), (b))
#define VXOR(a, b) _mm_xor_si128((a), (b))
#define COUNT_PLANES elsh_count_planes_simd
#include "count_planes.h"
#elif ELSH_USE_NEON && defined(__aarch64__)
/* aarch64: two q registers a step (32 of them hold the state twice over), loaded by one ld1 */
#include <arm_neon.h>
static inline uint64x2x2_t pair_zero(void)
{
    uint64x2x2_t r = {{vdupq_n_u64(0), vdupq_n_u64(0)}};
    return r;
}
#define PAIR_OP(name, op)                                                                    \
    static inline uint64x2x2_t name(uint64x2x2_t a, uint64x2x2_t b)                          \
    {                                                                                        \
        uint64x2x2_t r = {{op(a.val[0], b.val[0]), op(a.val[1], b.val[1])}};                 \
        return r;                                                                            \
    }
PAIR_OP(pair_and, vandq_u64)
PAIR_OP(pair_or, vorrq_u64)
PAIR_OP(pair_xor, veorq_u64)
#define VEC uint64x2x2_t
#define VWORDS 4
#define VZERO() pair_zero()
#define VLOAD(p) vld1q_u64_x2(p)
#define VSTORE(p, v) vst1q_u64_x2((p), (v))
#define VAND(a, b) pair_and((a), (b))
#define VOR(a, b) pair_or((a), (b))
#define VXOR(a, b) pair_xor((a), (b))
#define COUNT_PLANES elsh_count_planes_simd
#include "count_planes.h"
#elif ELSH_USE_NEON
#include <arm_neon.h>
#define VEC uint64x2_t
#define VWORDS 2
#define VZERO() vdupq_n_u64(0)
#define VLOAD(p) vld1q_u64(p)
#define VSTORE(p, v) vst1q_u64((p), (v))
#define VAND(a, b) vandq_u64((a), (b))
#define VOR(a, b) vorrq_u64((a), (b))
#define VXOR(a, b) veorq_u64((a), (b))
#define COUNT_PLANES elsh_count_planes_simd
#include "count_planes.h"
#else
typedef int elsh_count_planes_simd_unused; /* ISO C: a translation unit is not empty */
#endif
