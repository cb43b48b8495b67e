/* dot_q_avx2.c - the dense int8 dot product (dot_q.c) with AVX2, chosen at RUN time on x86-64
 * (elsh_cpu_avx2, internal.h; see count_planes_avx2.c for why): 16 weights a step, sign-extended
 * to int16 (vpmovsxbw) and multiplied with the int16 input in pairs summed to int32 (vpmaddwd).
 * |w x| <= 128 * 255, so a pair's sum fits int32; the lanes add modulo 2^32 like the portable
 * uint32 sum, and integer addition in any order gives the same bits (test_dot_products). */
#include "internal.h"

#if ELSH_X86_DISPATCH
#include <immintrin.h>
ELSH_TARGET_AVX2_BEGIN
uint32_t elsh_dot_q8_dense_avx2(const int8_t *w, const int16_t *x, int32_t n)
{
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    int32_t i = 0;
    for (; i + 32 <= n; i += 32) { /* two accumulators: two madds in flight */
        __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + i)));
        __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + i + 16)));
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(const void *)(x + i + 16));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(w0, x0));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(w1, x1));
    }
    if (i + 16 <= n) {
        __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + i)));
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(w0, x0));
        i += 16;
    }
    __m256i acc = _mm256_add_epi32(acc0, acc1);
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E)); /* lanes 2 3 0 1 */
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1)); /* lanes 1 0 3 2 */
    uint32_t sum = (uint32_t)_mm_cvtsi128_si32(s);
    for (; i < n; i++) sum += (uint32_t)(w[i] * x[i]);
    return sum;
}
ELSH_TARGET_AVX2_END
#else
typedef int elsh_dot_q_avx2_unused; /* ISO C: a translation unit is not empty */
#endif
