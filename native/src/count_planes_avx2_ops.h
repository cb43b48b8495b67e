/* count_planes_avx2_ops.h - the AVX2 vector operations count_planes.h is written with (4 words
 * a register), in one place for its two AVX2 builds: count_planes_simd.c (the whole build has
 * -mavx2) and count_planes_avx2.c (a target pragma, chosen at run time). Included (no guard)
 * right before count_planes.h, after <immintrin.h>; count_planes.h undefines them. */
#define VEC __m256i
#define VWORDS 4
#define VZERO() _mm256_setzero_si256()
#define VLOAD(p) _mm256_load_si256((const __m256i *)(const void *)(p))
#define VSTORE(p, v) _mm256_store_si256((__m256i *)(void *)(p), (v))
#define VAND(a, b) _mm256_and_si256((a), (b))
#define VOR(a, b) _mm256_or_si256((a), (b))
#define VXOR(a, b) _mm256_xor_si256((a), (b))
