/* quant_q.c - the fixed-point conventions: requantization and input quantization.
 *
 * Requantization follows TFLite's single-rounding variant: an int32 accumulator times a Q31
 * multiplier, shifted right with rounding (half up), all in 64-bit integers. No float runs
 * here, so the result is the same on every CPU. The only float step of a fixed-point network
 * is quantizing its input (FORMAT.md 6.1), which uses float32 operations whose results IEEE
 * fixes exactly. */
#include "internal.h"

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

int elsh_qnet_quantize_input(const elsh_qnet *net, const float *x, int8_t *xq)
{
    if (!net || !x || !xq) return ELSH_ERR_NULL;
    if (!net->file) return ELSH_ERR_STATE; /* no model open */
    float inv = net->input_inv_scale;
    int32_t z = net->layers[0].in_zero;
    for (int32_t i = 0; i < net->n_in; i++) {
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
