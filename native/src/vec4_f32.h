/* vec4_f32.h - four floats as one GCC/Clang vector, for the float layer's dense dot products
 * and optimizer step (layer_f32_body.h, "Vectors"), shared by the plain variant (layer_f32.c)
 * and the shared one (layer_f32_shared.c, which loads and stores them with relaxed atomics).
 *
 * ELSH_VEC4_F32 is 1 where the vectors map onto SIMD registers with an IEEE square root: x86
 * with SSE (sqrtps) and aarch64 with NEON (fsqrt). Elsewhere (Cortex-M, armv7, other
 * compilers) it is 0 and the layer keeps its scalar code, which gives the same bits: lane k of
 * each vector operation is the scalar operation on lane k's floats, and sums keep their order
 * (native/tests/test_threads.c compares the two on one thread). */
#ifndef ELSH_VEC4_F32_H
#define ELSH_VEC4_F32_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__SSE__) || (defined(__aarch64__) && defined(__ARM_NEON)))
#define ELSH_VEC4_F32 1
#else
#define ELSH_VEC4_F32 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#if defined(__SSE__)
#include <xmmintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

typedef float vec4 __attribute__((vector_size(16)));
typedef int32_t ivec4 __attribute__((vector_size(16)));

/* p[0..3] with ordinary loads (memcpy: no alignment or aliasing assumed) */
static inline vec4 load4_plain(const float *p)
{
    vec4 v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* sqrtf of each lane: the IEEE square root instruction (SSE sqrtps, NEON fsqrt), the value
 * sqrtf returns; elsewhere sqrtf (which itself, a library call that may set errno, is
 * vectorized by no compiler under the default -fmath-errno) */
static inline vec4 sqrt4(vec4 v)
{
#if defined(__SSE__)
    return (vec4)_mm_sqrt_ps((__m128)v);
#elif defined(__aarch64__) && defined(__ARM_NEON)
    return (vec4)vsqrtq_f32((float32x4_t)v);
#else
    vec4 r = {sqrtf(v[0]), sqrtf(v[1]), sqrtf(v[2]), sqrtf(v[3])};
    return r;
#endif
}
#endif

#endif
