/* hash.c - the hash families: input vector -> L bucket ids of K bits.
 *
 * Every family hashes `hash_in`, the input sum-pooled over windows of `pool` values (pool 1:
 * the input itself). Pooling by sums rather than means changes no sign, so SimHash bits are the
 * same as with mean pooling and no division is needed.
 *   SimHash  bit = [r . v > 0], r Gaussian            (multiplies)
 *   ternary  bit = [sum of +-v_i over nnz inputs > 0]  (adds and subtracts only)
 *   DWTA     each sub-hash is the position of the largest of `bin` inputs (comparisons only);
 *            an all-zero bin borrows the code of another bin ("densification"). */
#include "internal.h"

#include <string.h>

void elsh_hash_pool(elsh_layer *L, const float *x, const int32_t *idx, int32_t n, elsh_ops *ops)
{
    int32_t pool = L->hash.pool;
    float *h = L->hash_in;
    if (idx) {
        for (int32_t q = 0; q < n; q++) h[idx[q] / pool] += x[q];
    } else {
        for (int32_t i = 0; i < n; i++) h[i / pool] += x[i];
    }
    if (ops && pool > 1) ops->add += (uint64_t)n;
}

static uint32_t simhash_code(const elsh_layer *L, const float *v, int32_t t, elsh_ops *ops)
{
    int32_t K = L->hash.bits, d = L->hash_dim;
    uint32_t code = 0;
    for (int32_t bit = 0; bit < K; bit++) {
        const float *r = L->proj + ((size_t)t * (size_t)K + (size_t)bit) * (size_t)d;
        float s = 0.0f;
        for (int32_t i = 0; i < d; i++) s += r[i] * v[i];
        code |= (uint32_t)(s > 0.0f) << bit;
    }
    if (ops) {
        ops->mul += (uint64_t)K * (uint64_t)d;
        ops->add += (uint64_t)K * (uint64_t)d;
        ops->cmp += (uint64_t)K;
        ops->weight_bytes += (uint64_t)K * (uint64_t)d * 4u;
    }
    return code;
}

static uint32_t ternary_code(const elsh_layer *L, const float *v, int32_t t, elsh_ops *ops)
{
    int32_t K = L->hash.bits, nnz = L->tern_nnz;
    uint32_t code = 0;
    for (int32_t bit = 0; bit < K; bit++) {
        size_t base = ((size_t)t * (size_t)K + (size_t)bit) * (size_t)nnz;
        const uint16_t *idx = L->tern_idx + base;
        const int8_t *sign = L->tern_sign + base;
        float s = 0.0f;
        for (int32_t q = 0; q < nnz; q++) s = sign[q] > 0 ? s + v[idx[q]] : s - v[idx[q]];
        code |= (uint32_t)(s > 0.0f) << bit;
    }
    if (ops) {
        ops->add += (uint64_t)K * (uint64_t)nnz;
        ops->cmp += (uint64_t)K;
        ops->weight_bytes += (uint64_t)K * (uint64_t)nnz * 3u;
    }
    return code;
}

/* Position of the largest value in DWTA bin g, or -1 when every value in it is zero. */
static int32_t dwta_argmax(const elsh_layer *L, const float *v, int32_t g, elsh_ops *ops)
{
    int32_t bin = L->hash.dwta_bin;
    const uint16_t *idx = L->dwta_idx + (size_t)g * (size_t)bin;
    int32_t best = 0, nonzero = v[idx[0]] != 0.0f;
    float best_v = v[idx[0]];
    for (int32_t q = 1; q < bin; q++) {
        float x = v[idx[q]];
        nonzero |= x != 0.0f;
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

static uint32_t dwta_code(const elsh_layer *L, const float *v, int32_t t, elsh_ops *ops)
{
    int32_t P = L->dwta_per_table, bits = L->dwta_bits;
    int32_t n_bins = L->hash.tables * P;
    uint32_t code = 0;
    for (int32_t p = 0; p < P; p++) {
        int32_t g = t * P + p;
        int32_t pos = dwta_argmax(L, v, g, ops);
        /* densification: probe other bins in a fixed order until one is not empty */
        for (int32_t a = 1; pos < 0 && a <= ELSH_DWTA_MAX_PROBES && a < n_bins; a++)
            pos = dwta_argmax(L, v, elsh_dwta_probe(g, a, n_bins), ops);
        if (pos < 0) pos = 0;
        code |= (uint32_t)pos << (p * bits);
    }
    return code & (((uint32_t)1 << L->hash.bits) - 1u);
}

uint32_t elsh_hash_code(const elsh_layer *L, const float *v, int32_t t, elsh_ops *ops)
{
    if (!v) v = L->hash_in;
    switch (L->hash.family) {
    case ELSH_HASH_SIMHASH: return simhash_code(L, v, t, ops);
    case ELSH_HASH_TERNARY: return ternary_code(L, v, t, ops);
    default: return dwta_code(L, v, t, ops);
    }
}

/* k distinct values from [0, n) into out: draw below(n), reject repeats. With `stamp` ([n]
 * scratch, all < group on entry) repeats are found in O(1) by marking stamp[c] = group; without
 * it by scanning the values drawn so far. Both accept and reject the same draws, so the result
 * is the same; the stamp keeps the model reader's cost linear in the draws. */
static void draw_distinct(elsh_prng *rng, int32_t n, int32_t k, uint16_t *out, int32_t *stamp,
                          int32_t group)
{
    for (int32_t q = 0; q < k; q++) {
        for (;;) {
            uint16_t c = (uint16_t)elsh_prng_below(rng, (uint32_t)n);
            int32_t dup = 0;
            if (stamp) {
                dup = stamp[c] == group;
            } else {
                for (int32_t e = 0; e < q; e++) dup |= out[e] == c;
            }
            if (!dup) {
                out[q] = c;
                if (stamp) stamp[c] = group;
                break;
            }
        }
    }
}

void elsh_hash_draw_into(const elsh_hash_draw_job *J, elsh_prng *rng)
{
    int32_t K = J->bits, T = J->tables, d = J->hash_dim;
    if (J->stamp)
        for (int32_t i = 0; i < d; i++) J->stamp[i] = -1;
    if (J->family == ELSH_HASH_SIMHASH) {
        size_t n = (size_t)T * (size_t)K * (size_t)d;
        for (size_t i = 0; i < n; i++) {
            float r = elsh_prng_normal(rng);
            if (J->proj) J->proj[i] = r;
            if (J->proj_q) J->proj_q[i] = elsh_simhash_coef_q(r);
        }
    } else if (J->family == ELSH_HASH_TERNARY) {
        int32_t nnz = J->tern_nnz;
        for (int32_t p = 0; p < T * K; p++) {
            draw_distinct(rng, d, nnz, J->tern_idx + (size_t)p * (size_t)nnz, J->stamp, p);
            for (int32_t q = 0; q < nnz; q++)
                J->tern_sign[(size_t)p * (size_t)nnz + (size_t)q] = (elsh_prng_u32(rng) >> 31) ? 1 : -1;
        }
    } else {
        int32_t bin = J->dwta_bin, groups = T * J->dwta_per_table;
        for (int32_t g = 0; g < groups; g++)
            draw_distinct(rng, d, bin, J->dwta_idx + (size_t)g * (size_t)bin, J->stamp, g);
    }
}

int8_t elsh_simhash_coef_q(float r)
{
    /* round half away from zero of 32 * r; |r| < 3.47 keeps it inside int8. The product is
     * exact (a power of two) and so is the fraction, so no rounding mode is involved. */
    float v = 32.0f * r;
    int32_t i = (int32_t)v;
    float frac = v - (float)i;
    if (frac >= 0.5f) i++;
    if (frac <= -0.5f) i--;
    return (int8_t)i;
}

void elsh_hash_draw(elsh_layer *L, elsh_prng *rng)
{
    elsh_hash_draw_job J;
    J.family = L->hash.family;
    J.bits = L->hash.bits;
    J.tables = L->hash.tables;
    J.hash_dim = L->hash_dim;
    J.tern_nnz = L->tern_nnz;
    J.dwta_bin = L->hash.dwta_bin;
    J.dwta_per_table = L->dwta_per_table;
    J.proj = L->proj;
    J.proj_q = NULL;
    J.tern_idx = L->tern_idx;
    J.tern_sign = L->tern_sign;
    J.dwta_idx = L->dwta_idx;
    J.stamp = NULL;
    elsh_hash_draw_into(&J, rng);
}

void elsh_draw_permutation(uint16_t *perm, int32_t n, elsh_prng *rng)
{
    for (int32_t j = 0; j < n; j++) perm[j] = (uint16_t)j;
    for (int32_t j = n - 1; j > 0; j--) {
        uint32_t r = elsh_prng_below(rng, (uint32_t)j + 1u);
        uint16_t t = perm[j];
        perm[j] = perm[r];
        perm[r] = t;
    }
}

void elsh_hash_neuron(elsh_layer *L, int32_t j, uint32_t *codes, elsh_ops *ops)
{
    const float *row = L->w + (size_t)j * (size_t)L->n_in;
    const float *v = row;
    if (L->hash.pool > 1) {
        elsh_hash_pool(L, row, NULL, L->n_in, ops);
        v = L->hash_in;
    }
    if (ops) ops->weight_bytes += (uint64_t)L->n_in * 4u;
    for (int32_t t = 0; t < L->hash.tables; t++) codes[t] = elsh_hash_code(L, v, t, ops);
    if (L->hash.pool > 1) memset(L->hash_in, 0, (size_t)L->hash_dim * sizeof(float));
}
