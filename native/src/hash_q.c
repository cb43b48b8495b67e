/* hash_q.c - hashing in the fixed-point layer (FORMAT.md 6.2).
 *
 * The hashed vector is the layer input minus its zero point (so proportional to the real
 * input), sum-pooled and optionally centered, in int32. The families are those of the float
 * layer (hash_families.h) in integers: SimHash with int8 coefficients round(32 r) and int64
 * sums, ternary sums in int64, DWTA comparisons of int32 values. */
#include "internal.h"

#include <string.h>

#define HASH_LAYER elsh_qlayer
#define HASH_VALUE int32_t
#define HASH_SUM int64_t
#define HASH_COEF int8_t
#include "hash_families.h"

uint32_t elsh_qhash_code(const elsh_qlayer *L, const int32_t *h, int32_t t, elsh_ops *ops)
{
    return hash_code(L, h, t, ops);
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

/* s[c] += row[c] * v for c < n (a multiple of 16); restrict: the int8 row cannot alias the sums,
 * so the compiler vectorizes it */
static void add_scaled_row(int32_t *restrict s, const int8_t *restrict row, int32_t v, int32_t n)
{
    int32_t n16 = n & ~15;
    for (int32_t c = 0; c < n16; c++) s[c] += (int32_t)row[c] * v;
}

/* Every projection at once when the layer has its dense matrix (elsh_model_attach_fast) and
 * no sum can leave int32: |sum| <= hash_norm * max |h_i|. Returns 0 (nothing done) otherwise. */
static int hash_matrix(elsh_qlayer *L, const int32_t *h, elsh_ops *ops)
{
    int32_t d = L->hash.hash_dim, cols = L->hash_cols, K = L->hash.bits;
    int64_t biggest = 0;
    for (int32_t i = 0; i < d; i++) {
        int64_t v = h[i] < 0 ? -(int64_t)h[i] : (int64_t)h[i];
        if (v > biggest) biggest = v;
    }
    if (!L->hash_t || biggest * (int64_t)L->hash_norm > INT32_MAX) return 0;
    int32_t *s = L->hash_sums, c16 = cols & ~15; /* cols is a multiple of 16: say so */
    for (int32_t c = 0; c < c16; c++) s[c] = 0;
    for (int32_t i = 0; i < d; i++) add_scaled_row(s, L->hash_t + (size_t)i * (size_t)cols, h[i], c16);
    for (int32_t t = 0; t < L->hash.tables; t++) {
        uint32_t code = 0;
        for (int32_t b = 0; b < K; b++) code |= (uint32_t)(s[t * K + b] > 0) << b;
        L->codes[t] = code;
    }
    uint64_t P = (uint64_t)L->hash.tables * (uint64_t)K;
    ops->mul += (uint64_t)cols * (uint64_t)d;
    ops->add += (uint64_t)cols * (uint64_t)d;
    ops->cmp += P + (uint64_t)d;
    ops->weight_bytes += (uint64_t)cols * (uint64_t)d;
    return 1;
}

void elsh_qhash_input(elsh_qlayer *L, const int16_t *x, const int32_t *idx, int32_t n, elsh_ops *ops)
{
    int32_t pool = L->hash.pool, d = L->hash.hash_dim;
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
    if (hash_matrix(L, h, ops)) return;
    for (int32_t t = 0; t < L->hash.tables; t++) L->codes[t] = hash_code(L, h, t, ops);
}

void elsh_qhash_row(const elsh_qlayer *L, const int8_t *row8, const int16_t *row16, int32_t *h,
                    uint32_t *codes, elsh_ops *ops)
{
    int32_t pool = L->hash.pool, n_in = L->n_in;
    if (row8)
        POOL_DENSE(h, row8, n_in, pool);
    else
        POOL_DENSE(h, row16, n_in, pool);
    if (ops && pool > 1) ops->add += (uint64_t)n_in;
    for (int32_t t = 0; t < L->hash.tables; t++) codes[t] = hash_code(L, h, t, ops);
}

void elsh_qhash_neuron(const elsh_qlayer *L, int32_t j, int32_t *h, uint32_t *codes)
{
    size_t off = (size_t)j * (size_t)L->n_in;
    elsh_qhash_row(L, L->weight_bits == 8 ? L->w8 + off : NULL,
                   L->weight_bits == 8 ? NULL : L->w16 + off, h, codes, NULL);
}
