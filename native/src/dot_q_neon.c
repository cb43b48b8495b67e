/* dot_q_neon.c - NEON versions of the dense int8 dot product (dot_q.c), for aarch64 and
 * 32-bit ARM with NEON; compiled to nothing elsewhere.
 *
 * Plain NEON (Cortex-A53/A72, armv7): widen 16 weights to int16 and multiply-accumulate
 * against the int16 input into int32 lanes (vmlal_s16), four accumulators.
 * With the dot-product extension (Armv8.2 sdot, Cortex-A76 / Pi 5): the input must be int8,
 * so it uses the identity  sum w (a - z) = sum w a - z sum w,  both sums by sdot (16 MACs an
 * instruction), the second against a vector of ones.
 * Lanes wrap modulo 2^32 like the portable sum, so the results are identical bit for bit. */
#include "internal.h"

#if ELSH_USE_NEON
#include <arm_neon.h>

static uint32_t sum_lanes(int32x4_t v)
{
#if defined(__aarch64__)
    return (uint32_t)vaddvq_s32(v);
#else
    int32x2_t p = vadd_s32(vget_low_s32(v), vget_high_s32(v));
    p = vpadd_s32(p, p);
    return (uint32_t)vget_lane_s32(p, 0);
#endif
}

uint32_t elsh_dot_q8_dense_neon(const int8_t *w, const int16_t *x, int32_t n)
{
    int32x4_t a0 = vdupq_n_s32(0), a1 = vdupq_n_s32(0), a2 = vdupq_n_s32(0), a3 = vdupq_n_s32(0);
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        int8x16_t wv = vld1q_s8(w + i);
        int16x8_t wl = vmovl_s8(vget_low_s8(wv)), wh = vmovl_s8(vget_high_s8(wv));
        int16x8_t xl = vld1q_s16(x + i), xh = vld1q_s16(x + i + 8);
        a0 = vmlal_s16(a0, vget_low_s16(wl), vget_low_s16(xl));
        a1 = vmlal_s16(a1, vget_high_s16(wl), vget_high_s16(xl));
        a2 = vmlal_s16(a2, vget_low_s16(wh), vget_low_s16(xh));
        a3 = vmlal_s16(a3, vget_high_s16(wh), vget_high_s16(xh));
    }
    uint32_t s = sum_lanes(vaddq_s32(vaddq_s32(a0, a1), vaddq_s32(a2, a3)));
    for (; i < n; i++) s += (uint32_t)(w[i] * x[i]);
    return s;
}

#if ELSH_USE_SDOT
/* With the row's sum of weights known (elsh_model_attach_fast): one sdot per 16 weights, two
 * accumulators. */
uint32_t elsh_dot_q8_dense_sdot_rowsum(const int8_t *w, const int8_t *a, int32_t zero, int32_t row_sum,
                                       int32_t n)
{
    int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
    int32_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = vdotq_s32(s0, vld1q_s8(w + i), vld1q_s8(a + i));
        s1 = vdotq_s32(s1, vld1q_s8(w + i + 16), vld1q_s8(a + i + 16));
    }
    for (; i + 16 <= n; i += 16) s0 = vdotq_s32(s0, vld1q_s8(w + i), vld1q_s8(a + i));
    uint32_t s = sum_lanes(vaddq_s32(s0, s1));
    for (; i < n; i++) s += (uint32_t)(w[i] * a[i]);
    return s - (uint32_t)zero * (uint32_t)row_sum;
}

uint32_t elsh_dot_q8_dense_sdot(const int8_t *w, const int8_t *a, int32_t zero, int32_t n)
{
    int32x4_t wa = vdupq_n_s32(0), ws = vdupq_n_s32(0);
    const int8x16_t ones = vdupq_n_s8(1);
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        int8x16_t wv = vld1q_s8(w + i);
        wa = vdotq_s32(wa, wv, vld1q_s8(a + i));
        ws = vdotq_s32(ws, wv, ones);
    }
    uint32_t s = sum_lanes(wa) - (uint32_t)zero * sum_lanes(ws);
    for (; i < n; i++) s += (uint32_t)(w[i] * (a[i] - zero));
    return s;
}
#endif
#endif /* ELSH_USE_NEON */
