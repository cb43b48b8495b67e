/* quant_q.c - the fixed-point conventions: requantization and input quantization.
 *
 * Requantization follows TFLite's single-rounding variant: an int32 accumulator times a Q31
 * multiplier, shifted right with rounding (half up), all in 64-bit integers. No float runs
 * here, so the result is the same on every CPU. The only float step of a fixed-point network
 * is quantizing its input (FORMAT.md 6.1), which uses float32 operations whose results IEEE
 * fixes exactly. */
#include "internal.h"

#if ELSH_USE_SSE2
#include <emmintrin.h>
#endif

/* floor(v / 2^r) for 0 <= r < 63, without relying on how >> treats negative numbers. */
static int64_t floor_shift(int64_t v, int32_t r)
{
    return v >= 0 ? v >> r : ~((~v) >> r);
}

int32_t elsh_requantize(int32_t acc, int32_t multiplier, int32_t shift)
{
    int32_t r = 31 - shift; /* 1..62 for the shifts a model file may hold */
    if (r < 1) r = 1;
    if (r > 62) r = 62;
    int64_t p = (int64_t)acc * (int64_t)multiplier;
    int64_t y = floor_shift(p + ((int64_t)1 << (r - 1)), r);
    if (y > INT32_MAX) return INT32_MAX;
    if (y < INT32_MIN) return INT32_MIN;
    return (int32_t)y;
}

/* x[i] * inv, rounded half up, plus z, clamped to int8, for i < n; ELSH_ERR_INPUT at the first
 * NaN or infinity (the values before it written). The plain reference. */
int elsh_quantize_floats_c(const float *x, int32_t n, float inv, int32_t z, int8_t *xq)
{
    for (int32_t i = 0; i < n; i++) {
        float v = x[i];
        if (!(v - v == 0.0f)) return ELSH_ERR_INPUT; /* NaN or infinity */
        float t = v * inv + 0.5f;
        if (t > 512.0f) t = 512.0f; /* also catches an overflow to infinity */
        if (t < -512.0f) t = -512.0f;
        int32_t f = (int32_t)t; /* truncates toward zero; make it floor */
        if ((float)f > t) f--;
        int32_t q = f + z;
        xq[i] = (int8_t)(q > 127 ? 127 : q < -128 ? -128 : q);
    }
    return ELSH_OK;
}

#if ELSH_USE_SSE2
/* The same 16 values at a time with SSE2 (every x86-64): the same IEEE single operations
 * (mulps, addps: one rounding each, as mulss and addss), minps and maxps as the two clamps
 * (t is never NaN there: v is finite), cvttps2dq as the truncation, the floor's correction
 * by a compare, and the int8 clamp as the saturating packs. A block holding a NaN or an
 * infinity is left to the reference, which writes and stops exactly as it does. */
int elsh_quantize_floats_sse2(const float *x, int32_t n, float inv, int32_t z, int8_t *xq)
{
    const __m128 vinv = _mm_set1_ps(inv), half = _mm_set1_ps(0.5f), hi = _mm_set1_ps(512.0f),
                 lo = _mm_set1_ps(-512.0f), zero = _mm_setzero_ps();
    const __m128i vz = _mm_set1_epi32(z);
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i q[4];
        int finite = 0xF;
        for (int b = 0; b < 4; b++) {
            __m128 v = _mm_loadu_ps(x + i + 4 * b);
            finite &= _mm_movemask_ps(_mm_cmpeq_ps(_mm_sub_ps(v, v), zero));
            __m128 t = _mm_add_ps(_mm_mul_ps(v, vinv), half);
            t = _mm_max_ps(_mm_min_ps(t, hi), lo);
            __m128i f = _mm_cvttps_epi32(t);
            /* floor: minus 1 where the truncation rounded up (all-ones lanes are -1) */
            f = _mm_add_epi32(f, _mm_castps_si128(_mm_cmpgt_ps(_mm_cvtepi32_ps(f), t)));
            q[b] = _mm_add_epi32(f, vz);
        }
        if (finite != 0xF) return elsh_quantize_floats_c(x + i, n - i, inv, z, xq + i);
        __m128i bytes = _mm_packs_epi16(_mm_packs_epi32(q[0], q[1]), _mm_packs_epi32(q[2], q[3]));
        _mm_storeu_si128((__m128i *)(void *)(xq + i), bytes);
    }
    return elsh_quantize_floats_c(x + i, n - i, inv, z, xq + i);
}
#endif

int elsh_qnet_quantize_input(const elsh_qnet *net, const float *x, int8_t *xq)
{
    if (!net || !x || !xq) return ELSH_ERR_NULL;
    if (!net->file) return ELSH_ERR_STATE; /* no model open */
#if ELSH_USE_SSE2
    return elsh_quantize_floats_sse2(x, net->n_in, net->input_inv_scale, net->layers[0].in_zero, xq);
#else
    return elsh_quantize_floats_c(x, net->n_in, net->input_inv_scale, net->layers[0].in_zero, xq);
#endif
}
