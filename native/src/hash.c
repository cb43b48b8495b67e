/* hash.c - what the float and the fixed-point layers share about hashing: the derived
 * settings of a layer (elsh_hash_params), and drawing hash functions and padding orders from
 * the PRNG. The codes themselves are computed by hash_families.h, instantiated for float
 * vectors in hash_f32.c and for int32 vectors in hash_q.c.
 *
 * Every family hashes the input sum-pooled over windows of `pool` values (pool 1: the input
 * itself). Pooling by sums rather than means changes no sign, so SimHash bits are the same as
 * with mean pooling and no division is needed. */
#include "internal.h"

/* log2(v) when v is a power of two, else -1. */
static int32_t log2_exact(uint32_t v)
{
    int32_t b = 0;
    while (v > 1u && (v & 1u) == 0) {
        v >>= 1;
        b++;
    }
    return v == 1u ? b : -1;
}

int elsh_hash_derive(elsh_hash_params *hp, int32_t n_in)
{
    if (hp->family < ELSH_HASH_SIMHASH || hp->family > ELSH_HASH_DWTA) return -1;
    if (hp->bits < 1 || hp->bits > ELSH_MAX_BITS) return -1;
    if (hp->tables < 1 || hp->tables > ELSH_MAX_TABLES) return -1;
    if (hp->pool < 1 || hp->pool > n_in) return -1;
    if (hp->center != 0 && hp->center != 1) return -1;
    if (hp->select_mode < ELSH_SELECT_TOPK || hp->select_mode > ELSH_SELECT_EXACT) return -1;
    hp->hash_dim = (n_in + hp->pool - 1) / hp->pool;
    hp->n_buckets = 1 << hp->bits;
    hp->dwta_bits = 0;
    hp->dwta_per_table = 0;
    int ternary = hp->family == ELSH_HASH_TERNARY, dwta = hp->family == ELSH_HASH_DWTA;
    /* a family's own setting is given, the other family's is 0 */
    if (ternary != (hp->ternary_nnz != 0) || dwta != (hp->dwta_bin != 0)) return -1;
    if (ternary && (hp->ternary_nnz < 1 || hp->ternary_nnz > hp->hash_dim)) return -1;
    if (dwta) {
        hp->dwta_bits = log2_exact((uint32_t)hp->dwta_bin);
        if (hp->dwta_bits < 1 || hp->dwta_bits > 8 || hp->dwta_bin > hp->hash_dim) return -1;
        /* enough sub-hashes of dwta_bits each for K bits, the last one cut short */
        hp->dwta_per_table = (hp->bits + hp->dwta_bits - 1) / hp->dwta_bits;
    }
    return 0;
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

void elsh_hash_draw_into(const elsh_hash_params *hp, const elsh_hash_arrays *out, int32_t *stamp,
                         elsh_prng *rng)
{
    int32_t K = hp->bits, T = hp->tables, d = hp->hash_dim;
    if (stamp)
        for (int32_t i = 0; i < d; i++) stamp[i] = -1;
    if (hp->family == ELSH_HASH_SIMHASH) {
        size_t n = (size_t)T * (size_t)K * (size_t)d;
        for (size_t i = 0; i < n; i++) {
            float r = elsh_prng_normal(rng);
            if (out->proj) out->proj[i] = r;
            if (out->proj_q) out->proj_q[i] = elsh_simhash_coef_q(r);
        }
    } else if (hp->family == ELSH_HASH_TERNARY) {
        int32_t nnz = hp->ternary_nnz;
        for (int32_t p = 0; p < T * K; p++) {
            draw_distinct(rng, d, nnz, out->tern_idx + (size_t)p * (size_t)nnz, stamp, p);
            for (int32_t q = 0; q < nnz; q++)
                out->tern_sign[(size_t)p * (size_t)nnz + (size_t)q] = (elsh_prng_u32(rng) >> 31) ? 1 : -1;
        }
    } else {
        int32_t bin = hp->dwta_bin, groups = T * hp->dwta_per_table;
        for (int32_t g = 0; g < groups; g++)
            draw_distinct(rng, d, bin, out->dwta_idx + (size_t)g * (size_t)bin, stamp, g);
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
