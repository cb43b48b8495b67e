/* count_planes_avx2.c - bit-sliced collision counting (count_planes.h) with AVX2 registers (4
 * words a step), chosen at RUN time on x86-64: the portable builds (wheels, sdists, the runner;
 * no -march=native, edge_lsh/_build.py) are compiled for SSE2 alone, so this file turns AVX2 on
 * for its own functions (a target pragma) and select.c calls them only when the CPU says it has
 * AVX2 (elsh_cpu_avx2, internal.h). Nothing is stored: the kernel keeps no .data or .bss.
 * Bitwise operations only: the same planes as count_planes.c, bit for bit
 * (test_count_planes_versions). Compiled to nothing off x86-64 or with -DELSH_NO_SIMD. */
#include "internal.h"

#if ELSH_X86_DISPATCH
#include <immintrin.h>
ELSH_TARGET_AVX2_BEGIN
#include "count_planes_avx2_ops.h"
#define COUNT_PLANES elsh_count_planes_avx2
#include "count_planes.h"

/* Neurons set in both a and b over W words (the bits of a & b): the radix select's popcounts
 * (select.c) with the popcnt instruction, which every AVX2 CPU has (the portable build has
 * none and calls libgcc's bit-twiddling __popcountdi2 instead). */
int32_t elsh_popcount_and_avx2(const uint64_t *a, const uint64_t *b, int32_t W)
{
    int64_t n = 0;
    for (int32_t w = 0; w < W; w++) n += _mm_popcnt_u64(a[w] & b[w]);
    return (int32_t)n;
}
ELSH_TARGET_AVX2_END
#else
typedef int elsh_count_planes_avx2_unused; /* ISO C: a translation unit is not empty */
#endif
