/* test_count_planes.c - bit-sliced collision counting (count_planes.h): the portable and the
 * SIMD versions (compile-time; on x86-64 also AVX2, chosen at run time, and its popcounts) give
 * the same planes, and the planes hold every neuron's count, for table counts around the
 * 16-table adder tree and up to ELSH_MAX_TABLES. */
#include "check.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void check_planes(int32_t L, int32_t W, uint32_t seed)
{
    int32_t B = 2, levels = elsh_bits_levels(L); /* <= 64 KB of bitmaps: small targets too */
    size_t words = (size_t)L * (size_t)B * (size_t)W;
    void *raw = malloc(words * 8u + 64u), *praw = malloc((size_t)levels * (size_t)W * 16u + 128u);
    int32_t *offsets = (int32_t *)malloc((size_t)L * sizeof(int32_t));
    int32_t *count = (int32_t *)calloc((size_t)W * 64u, sizeof(int32_t));
    CHECK(raw && praw && offsets && count);
    if (!raw || !praw || !offsets || !count) return;
    uint64_t *bitmaps = (uint64_t *)(((uintptr_t)raw + 63u) & ~(uintptr_t)63u);
    uint64_t *p_c = (uint64_t *)(((uintptr_t)praw + 63u) & ~(uintptr_t)63u);
    uint64_t *p_s = p_c + (size_t)levels * (size_t)W;
    elsh_prng rng;
    elsh_prng_seed(&rng, seed);
    for (size_t i = 0; i < words; i++) /* dense and sparse words, all-ones now and then */
        bitmaps[i] = i % 7 == 0 ? ~(uint64_t)0 : ((uint64_t)elsh_prng_u32(&rng) << 32 | elsh_prng_u32(&rng)) &
                                                     (i % 3 ? ~(uint64_t)0 : (uint64_t)elsh_prng_u32(&rng));
    for (int32_t t = 0; t < L; t++) {
        offsets[t] = (t * B + (int32_t)elsh_prng_below(&rng, (uint32_t)B)) * W;
        for (int32_t j = 0; j < W * 64; j++) count[j] += (int32_t)(bitmaps[offsets[t] + j / 64] >> (j % 64) & 1u);
    }
    elsh_count_planes_c(bitmaps, offsets, L, W, p_c);
#if ELSH_USE_SIMD_PLANES
    elsh_count_planes_simd(bitmaps, offsets, L, W, p_s);
    CHECK_MSG(memcmp(p_c, p_s, (size_t)levels * (size_t)W * 8u) == 0, "SIMD planes differ, L=%d W=%d", (int)L,
              (int)W);
#else
    (void)p_s;
#endif
#if ELSH_X86_DISPATCH
    if (elsh_cpu_avx2()) { /* the run-time AVX2 version, where this CPU has it */
        memset(p_s, 0xA5, (size_t)levels * (size_t)W * 8u);
        elsh_count_planes_avx2(bitmaps, offsets, L, W, p_s);
        CHECK_MSG(memcmp(p_c, p_s, (size_t)levels * (size_t)W * 8u) == 0, "AVX2 planes differ, L=%d W=%d",
                  (int)L, (int)W);
        /* the radix select's popcounts: planes 0 and 1 against a plain bit count */
        int32_t want_and = 0, want_one = 0;
        for (int32_t j = 0; j < W * 64; j++) {
            uint64_t b0 = p_c[j / 64] >> (j % 64) & 1u, b1 = p_c[(size_t)W + (size_t)(j / 64)] >> (j % 64) & 1u;
            want_one += (int32_t)b0;
            want_and += (int32_t)(b0 & b1);
        }
        CHECK_EQ_INT(elsh_popcount_and_avx2(p_c, p_c, W), want_one);
        CHECK_EQ_INT(elsh_popcount_and_avx2(p_c, p_c + W, W), want_and);
    }
#endif
    int bad = 0;
    for (int32_t j = 0; j < W * 64; j++) {
        int32_t c = 0;
        for (int32_t p = 0; p < levels; p++) c |= (int32_t)(p_c[(size_t)p * (size_t)W + j / 64] >> (j % 64) & 1u) << p;
        bad += c != count[j];
    }
    CHECK_MSG(bad == 0, "%d counts wrong, L=%d W=%d", bad, (int)L, (int)W);
    free(raw);
    free(praw);
    free(offsets);
    free(count);
}

void test_count_planes_versions(void)
{
    static const int32_t tables[] = {1, 3, 15, 16, 17, 31, 32, 33, 100, 255, 256, 1023, 1024};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        check_planes(tables[i], 4, (uint32_t)i);
        if (tables[i] <= 256) check_planes(tables[i], 16, (uint32_t)i + 100u);
    }
    CHECK_EQ_INT(elsh_bits_levels(1), 4);
    CHECK_EQ_INT(elsh_bits_levels(100), 7);
    CHECK_EQ_INT(elsh_bits_levels(1024), 11);
}
