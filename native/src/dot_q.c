/* dot_q.c - the fixed-point dot products, portable C: one weight row (int8 or int16) with the
 * layer input minus its zero point (int16, -255..255), summed modulo 2^32.
 *
 * Dense loops run over a multiple of 16 first, a count the compiler can see, so that it
 * vectorizes them at -O2 without a scalar epilogue; the rest is a short tail. Integer sums
 * give the same result in any order, so vectorizing cannot change a bit. dot_q_neon.c holds
 * the hand-written NEON versions; both must pass the same tests bit for bit. */
#include "internal.h"

uint32_t elsh_dot_q8_dense_c(const int8_t *w, const int16_t *x, int32_t n)
{
    uint32_t s = 0;
    int32_t n16 = n & ~15, i;
    for (i = 0; i < n16; i++) s += (uint32_t)(w[i] * x[i]);
    for (; i < n; i++) s += (uint32_t)(w[i] * x[i]);
    return s;
}

uint32_t elsh_dot_q16_dense_c(const int16_t *w, const int16_t *x, int32_t n)
{
    uint32_t s = 0;
    int32_t n16 = n & ~15, i;
    for (i = 0; i < n16; i++) s += (uint32_t)((int32_t)w[i] * x[i]);
    for (; i < n; i++) s += (uint32_t)((int32_t)w[i] * x[i]);
    return s;
}

uint32_t elsh_dot_q8_sparse_c(const int8_t *w, const int16_t *x, const int32_t *idx, int32_t n)
{
    uint32_t s0 = 0, s1 = 0;
    int32_t q = 0;
    for (; q + 2 <= n; q += 2) {
        s0 += (uint32_t)(w[idx[q]] * x[q]);
        s1 += (uint32_t)(w[idx[q + 1]] * x[q + 1]);
    }
    for (; q < n; q++) s0 += (uint32_t)(w[idx[q]] * x[q]);
    return s0 + s1;
}

uint32_t elsh_dot_q16_sparse_c(const int16_t *w, const int16_t *x, const int32_t *idx, int32_t n)
{
    uint32_t s0 = 0, s1 = 0;
    int32_t q = 0;
    for (; q + 2 <= n; q += 2) {
        s0 += (uint32_t)((int32_t)w[idx[q]] * x[q]);
        s1 += (uint32_t)((int32_t)w[idx[q + 1]] * x[q + 1]);
    }
    for (; q < n; q++) s0 += (uint32_t)((int32_t)w[idx[q]] * x[q]);
    return s0 + s1;
}

void elsh_dot_q8_sparse4_c(const int8_t *const w[4], const int16_t *x, const int32_t *idx, int32_t n,
                           uint32_t acc[4])
{
    const int8_t *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
    uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int32_t q = 0; q < n; q++) { /* one index and input value serve four rows */
        int32_t i = idx[q], v = x[q];
        s0 += (uint32_t)(w0[i] * v);
        s1 += (uint32_t)(w1[i] * v);
        s2 += (uint32_t)(w2[i] * v);
        s3 += (uint32_t)(w3[i] * v);
    }
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
}
