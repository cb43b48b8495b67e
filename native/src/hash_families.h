/* hash_families.h - the three hash families, written once for both numeric paths.
 *
 * A vector v of hash_dim values (a layer's input, sum-pooled and maybe centered, or a neuron's
 * weight row) gets one bucket id of K bits per table t:
 *   SimHash  bit b = [r_tb . v > 0], r_tb a row of Gaussian coefficients    (multiplies)
 *   ternary  bit b = [sum of +-v_i over the nnz positions of row tb > 0]    (adds, subtracts)
 *   DWTA     the table's dwta_per_table sub-hashes, dwta_bits each, packed from bit 0 up and
 *            cut to K bits; sub-hash p is the position (0 .. dwta_bin - 1) of the first
 *            maximum among the dwta_bin values of bin g = t * dwta_per_table + p
 *            (comparisons only). A bin whose values are all zero says nothing about v, so it
 *            borrows the position of the first non-empty bin among elsh_dwta_probe(g, a) for
 *            a = 1, 2, ... ("densification"); position 0 when every probe is empty too.
 * Bits and positions depend only on signs and order, so the fixed-point codes match the float
 * ones up to quantization error.
 *
 * This file is a template, included (without a guard) by hash_f32.c and hash_q.c after they
 * define
 *   HASH_LAYER  the layer type: it has `hash` (elsh_hash_params) and the hash functions
 *               proj, tern_idx, tern_sign, dwta_idx (FORMAT.md 5.3 / edge_lsh.h)
 *   HASH_VALUE  an element of the hashed vector      float     int32_t
 *   HASH_SUM    what a projection is summed in       float     int64_t (cannot overflow)
 *   HASH_COEF   a SimHash coefficient                float     int8_t (round(32 r))
 * It defines one static function, hash_code(L, v, t, ops): the bucket id of table t. */

static uint32_t simhash_code(const HASH_LAYER *L, const HASH_VALUE *v, int32_t t, elsh_ops *ops)
{
    int32_t K = L->hash.bits, d = L->hash.hash_dim;
    uint32_t code = 0;
    for (int32_t bit = 0; bit < K; bit++) {
        const HASH_COEF *r = L->proj + ((size_t)t * (size_t)K + (size_t)bit) * (size_t)d;
        HASH_SUM s = 0;
        for (int32_t i = 0; i < d; i++) s += (HASH_SUM)r[i] * (HASH_SUM)v[i];
        code |= (uint32_t)(s > 0) << bit;
    }
    if (ops) {
        ops->mul += (uint64_t)K * (uint64_t)d;
        ops->add += (uint64_t)K * (uint64_t)d;
        ops->cmp += (uint64_t)K;
        ops->weight_bytes += (uint64_t)K * (uint64_t)d * sizeof(HASH_COEF);
    }
    return code;
}

static uint32_t ternary_code(const HASH_LAYER *L, const HASH_VALUE *v, int32_t t, elsh_ops *ops)
{
    int32_t K = L->hash.bits, nnz = L->hash.ternary_nnz;
    uint32_t code = 0;
    for (int32_t bit = 0; bit < K; bit++) {
        size_t base = ((size_t)t * (size_t)K + (size_t)bit) * (size_t)nnz;
        const uint16_t *idx = L->tern_idx + base;
        const int8_t *sign = L->tern_sign + base;
        HASH_SUM s = 0;
        for (int32_t q = 0; q < nnz; q++)
            s = sign[q] > 0 ? s + (HASH_SUM)v[idx[q]] : s - (HASH_SUM)v[idx[q]];
        code |= (uint32_t)(s > 0) << bit;
    }
    if (ops) {
        ops->add += (uint64_t)K * (uint64_t)nnz;
        ops->cmp += (uint64_t)K;
        ops->weight_bytes += (uint64_t)K * (uint64_t)nnz * 3u; /* uint16 index + int8 sign */
    }
    return code;
}

/* Position of the first maximum in DWTA bin g, or -1 when every value in it is zero. */
static int32_t dwta_argmax(const HASH_LAYER *L, const HASH_VALUE *v, int32_t g, elsh_ops *ops)
{
    int32_t bin = L->hash.dwta_bin;
    const uint16_t *idx = L->dwta_idx + (size_t)g * (size_t)bin;
    HASH_VALUE best_v = v[idx[0]];
    int32_t best = 0, nonzero = best_v != 0;
    for (int32_t q = 1; q < bin; q++) {
        HASH_VALUE x = v[idx[q]];
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

static uint32_t dwta_code(const HASH_LAYER *L, const HASH_VALUE *v, int32_t t, elsh_ops *ops)
{
    int32_t P = L->hash.dwta_per_table, n_bins = L->hash.tables * P;
    uint32_t code = 0;
    for (int32_t p = 0; p < P; p++) {
        int32_t g = t * P + p;
        int32_t pos = dwta_argmax(L, v, g, ops);
        /* densification: probe other bins in a fixed order until one is not empty */
        for (int32_t a = 1; pos < 0 && a <= ELSH_DWTA_MAX_PROBES && a < n_bins; a++)
            pos = dwta_argmax(L, v, elsh_dwta_probe(g, a, n_bins), ops);
        if (pos < 0) pos = 0;
        code |= (uint32_t)pos << (p * L->hash.dwta_bits);
    }
    return code & (((uint32_t)1 << L->hash.bits) - 1u);
}

static uint32_t hash_code(const HASH_LAYER *L, const HASH_VALUE *v, int32_t t, elsh_ops *ops)
{
    switch (L->hash.family) {
    case ELSH_HASH_SIMHASH: return simhash_code(L, v, t, ops);
    case ELSH_HASH_TERNARY: return ternary_code(L, v, t, ops);
    default: return dwta_code(L, v, t, ops);
    }
}

#undef HASH_LAYER
#undef HASH_VALUE
#undef HASH_SUM
#undef HASH_COEF
