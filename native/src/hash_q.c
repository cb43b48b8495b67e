/* hash_q.c - the hash families in integers, for the fixed-point layer (FORMAT.md 6.2).
 *
 * The hashed vector is the layer input minus its zero point (so proportional to the real
 * input), sum-pooled and optionally centered, in int32. Bits and argmax positions only depend
 * on signs and order, so they match the float hashes up to quantization error:
 *   SimHash  bit = [proj . h > 0]  with int8 coefficients round(32 r), int64 sums
 *   ternary  bit = [sum of +-h over nnz positions > 0]  (adds and subtracts only)
 *   DWTA     position of the first maximum of each bin, empty bins densified as in hash.c */
#include "internal.h"

#include <string.h>

static uint32_t simhash_code_q(const elsh_qlayer *L, const int32_t *h, int32_t t, elsh_ops *ops)
{
    int32_t K = L->bits, d = L->hash_dim;
    uint32_t code = 0;
    for (int32_t bit = 0; bit < K; bit++) {
        const int8_t *r = L->proj + ((size_t)t * (size_t)K + (size_t)bit) * (size_t)d;
        int64_t s = 0;
        for (int32_t i = 0; i < d; i++) s += (int64_t)r[i] * h[i];
        code |= (uint32_t)(s > 0) << bit;
    }
    if (ops) {
        ops->mul += (uint64_t)K * (uint64_t)d;
        ops->add += (uint64_t)K * (uint64_t)d;
        ops->cmp += (uint64_t)K;
        ops->weight_bytes += (uint64_t)K * (uint64_t)d;
    }
    return code;
}

static uint32_t ternary_code_q(const elsh_qlayer *L, const int32_t *h, int32_t t, elsh_ops *ops)
{
    int32_t K = L->bits, nnz = L->ternary_nnz;
    uint32_t code = 0;
    for (int32_t bit = 0; bit < K; bit++) {
        size_t base = ((size_t)t * (size_t)K + (size_t)bit) * (size_t)nnz;
        const uint16_t *idx = L->tern_idx + base;
        const int8_t *sign = L->tern_sign + base;
        int64_t s = 0;
        for (int32_t q = 0; q < nnz; q++) s += sign[q] > 0 ? (int64_t)h[idx[q]] : -(int64_t)h[idx[q]];
        code |= (uint32_t)(s > 0) << bit;
    }
    if (ops) {
        ops->add += (uint64_t)K * (uint64_t)nnz;
        ops->cmp += (uint64_t)K;
        ops->weight_bytes += (uint64_t)K * (uint64_t)nnz * 3u;
    }
    return code;
}

static int32_t dwta_argmax_q(const elsh_qlayer *L, const int32_t *h, int32_t g, elsh_ops *ops)
{
    int32_t bin = L->dwta_bin;
    const uint16_t *idx = L->dwta_idx + (size_t)g * (size_t)bin;
    int32_t best = 0, best_v = h[idx[0]], nonzero = best_v != 0;
    for (int32_t q = 1; q < bin; q++) {
        int32_t x = h[idx[q]];
        nonzero |= x != 0;
        if (x > best_v) {
            best_v = x;
            best = q;
        }
    }
    if (ops) {
        ops->cmp += 2u * (uint64_t)bin;
        ops->weight_bytes += (uint64_t)bin * 2u;
    }
    return nonzero ? best : -1;
}

static uint32_t dwta_code_q(const elsh_qlayer *L, const int32_t *h, int32_t t, elsh_ops *ops)
{
    int32_t P = L->dwta_per_table, n_bins = L->tables * P;
    uint32_t code = 0;
    for (int32_t p = 0; p < P; p++) {
        int32_t g = t * P + p;
        int32_t pos = dwta_argmax_q(L, h, g, ops);
        for (int32_t a = 1; pos < 0 && a <= ELSH_DWTA_MAX_PROBES && a < n_bins; a++)
            pos = dwta_argmax_q(L, h, elsh_dwta_probe(g, a, n_bins), ops);
        if (pos < 0) pos = 0;
        code |= (uint32_t)pos << (p * L->dwta_bits);
    }
    return code & (((uint32_t)1 << L->bits) - 1u);
}

uint32_t elsh_qhash_code(const elsh_qlayer *L, const int32_t *h, int32_t t, elsh_ops *ops)
{
    switch (L->family) {
    case ELSH_HASH_SIMHASH: return simhash_code_q(L, h, t, ops);
    case ELSH_HASH_TERNARY: return ternary_code_q(L, h, t, ops);
    default: return dwta_code_q(L, h, t, ops);
    }
}

/* Sum-pool n values (all n_in of them, in order) into h[hash_dim], a window at a time so that
 * no division runs per value. */
#define POOL_DENSE(h, row, n, pool)                                                          \
    do {                                                                                     \
        for (int32_t g_ = 0, i_ = 0; i_ < (n); g_++) {                                       \
            int32_t end_ = i_ + (pool) < (n) ? i_ + (pool) : (n), s_ = 0;                    \
            for (; i_ < end_; i_++) s_ += (row)[i_];                                         \
            (h)[g_] = s_;                                                                    \
        }                                                                                    \
    } while (0)

void elsh_qhash_input(elsh_qlayer *L, const int16_t *x, const int32_t *idx, int32_t n, elsh_ops *ops)
{
    int32_t pool = L->pool, d = L->hash_dim;
    int32_t *h = L->hash_in;
    if (idx) {
        memset(h, 0, (size_t)d * sizeof(int32_t));
        for (int32_t q = 0; q < n; q++) h[idx[q] / pool] += x[q];
    } else {
        POOL_DENSE(h, x, n, pool);
    }
    if (pool > 1) ops->add += (uint64_t)n;
    if (L->center) {
        for (int32_t g = 0; g < d; g++) h[g] -= L->center[g];
        ops->add += (uint64_t)d;
    }
    for (int32_t t = 0; t < L->tables; t++) L->codes[t] = elsh_qhash_code(L, h, t, ops);
}

void elsh_qhash_neuron(const elsh_qlayer *L, int32_t j, int32_t *h, uint32_t *codes)
{
    int32_t pool = L->pool, n_in = L->n_in;
    if (L->weight_bits == 8) {
        const int8_t *row = L->w8 + (size_t)j * (size_t)n_in;
        POOL_DENSE(h, row, n_in, pool);
    } else {
        const int16_t *row = L->w16 + (size_t)j * (size_t)n_in;
        POOL_DENSE(h, row, n_in, pool);
    }
    for (int32_t t = 0; t < L->tables; t++) codes[t] = elsh_qhash_code(L, h, t, NULL);
}
