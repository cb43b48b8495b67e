/* hash_q.c - hashing in the fixed-point layer (FORMAT.md 6.2).
 *
 * The hashed vector is the layer input minus its zero point (so proportional to the real
 * input), sum-pooled and optionally centered, in int32. The families are those of the float
 * layer (hash_families.h) in integers: SimHash with int8 coefficients round(32 r) and int64
 * sums, ternary sums in int64, DWTA comparisons of int32 values. */
#include "internal.h"

#include <string.h>
#if ELSH_USE_SSE2
#include <emmintrin.h>
#endif

#define HASH_LAYER elsh_qlayer
#define HASH_VALUE int32_t
#define HASH_SUM int64_t
#define HASH_COEF int8_t
#include "hash_families.h"

uint32_t elsh_qhash_code(const elsh_qlayer *L, const int32_t *h, int32_t t, elsh_ops *ops)
{
    return hash_code(L, h, t, ops);
}

/* Targets with vector units get the code written for speed below; the others (Cortex-M) the
 * smaller code, as before (the Pico 2 image's flash budget, tests/test_pico2_image.py). */
#define HASH_VECTORS (ELSH_USE_SSE2 || ELSH_USE_NEON)

/* Sum-pool n values (all n_in of them, in order) into h[hash_dim], a window at a time so that
 * no division runs per value. With vector units each window's sum runs over a multiple of 16
 * values first, a count the compiler can see, so that it vectorizes it, then the rest. */

#if HASH_VECTORS
#define POOL_DENSE(h, row, n, pool)                                                          \
    do {                                                                                     \
        for (int32_t g_ = 0, i_ = 0; i_ < (n); g_++) {                                       \
            int32_t end_ = i_ + (pool) < (n) ? i_ + (pool) : (n), s_ = 0;                    \
            int32_t n16_ = (end_ - i_) & ~15;                                                \
            for (int32_t q_ = 0; q_ < n16_; q_++) s_ += (row)[i_ + q_];                      \
            for (i_ += n16_; i_ < end_; i_++) s_ += (row)[i_];                               \
            (h)[g_] = s_;                                                                    \
        }                                                                                    \
    } while (0)
#else
#define POOL_DENSE(h, row, n, pool)                                                          \
    do {                                                                                     \
        for (int32_t g_ = 0, i_ = 0; i_ < (n); g_++) {                                       \
            int32_t end_ = i_ + (pool) < (n) ? i_ + (pool) : (n), s_ = 0;                    \
            for (; i_ < end_; i_++) s_ += (row)[i_];                                         \
            (h)[g_] = s_;                                                                    \
        }                                                                                    \
    } while (0)
#endif

/* s[c] += row[c] * v for c < n (a multiple of 16); restrict: the int8 row cannot alias the sums,
 * so the compiler vectorizes it */
static void add_scaled_row(int32_t *restrict s, const int8_t *restrict row, int32_t v, int32_t n)
{
    int32_t n16 = n & ~15;
    for (int32_t c = 0; c < n16; c++) s[c] += (int32_t)row[c] * v;
}

#if HASH_VECTORS
/* The same for |v| <= 32767: an int16 times int16 product, which SSE2 multiplies 8 lanes at a
 * time (pmullw, pmulhw) where an int32 product takes shuffles and two pmuludq per 4 lanes. */
static void add_scaled_row16(int32_t *restrict s, const int8_t *restrict row, int16_t v, int32_t n)
{
    int32_t n16 = n & ~15;
    for (int32_t c = 0; c < n16; c++) s[c] += (int16_t)row[c] * v;
}
#endif

/* Table t's code from the signs of its K sums s[t K .. t K + K - 1] (bit b: s[t K + b] > 0). */
#if ELSH_USE_SSE2
/* SSE2: the signs of 16 sums at a time as a 16-bit mask (pcmpgtd, packs, pmovmskb) into a bit
 * stream, from which the codes are taken K bits at a time: no loop over single bits. */
static void codes_from_sums(const int32_t *s, int32_t cols16, int32_t K, int32_t tables, uint32_t *codes)
{
    const __m128i zero = _mm_setzero_si128();
    uint64_t stream = 0; /* < K + 16 <= 31 bits pending */
    int32_t pending = 0, t = 0;
    uint32_t low = (1u << K) - 1u;
    for (int32_t c = 0; c < cols16 && t < tables; c += 16) {
        __m128i a = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)(const void *)(s + c)), zero);
        __m128i b = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)(const void *)(s + c + 4)), zero);
        __m128i d = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)(const void *)(s + c + 8)), zero);
        __m128i e = _mm_cmpgt_epi32(_mm_loadu_si128((const __m128i *)(const void *)(s + c + 12)), zero);
        __m128i bytes = _mm_packs_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(d, e));
        stream |= (uint64_t)(uint32_t)_mm_movemask_epi8(bytes) << pending;
        pending += 16;
        for (; pending >= K && t < tables; pending -= K, stream >>= K) codes[t++] = (uint32_t)stream & low;
    }
}
#else
static void codes_from_sums(const int32_t *s, int32_t cols16, int32_t K, int32_t tables, uint32_t *codes)
{
    (void)cols16;
    for (int32_t t = 0; t < tables; t++) {
        uint32_t code = 0;
        for (int32_t b = 0; b < K; b++) code |= (uint32_t)(s[t * K + b] > 0) << b;
        codes[t] = code;
    }
}
#endif

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
#if HASH_VECTORS
    if (biggest <= INT16_MAX)
        for (int32_t i = 0; i < d; i++)
            add_scaled_row16(s, L->hash_t + (size_t)i * (size_t)cols, (int16_t)h[i], c16);
    else
#endif
        for (int32_t i = 0; i < d; i++) add_scaled_row(s, L->hash_t + (size_t)i * (size_t)cols, h[i], c16);
    codes_from_sums(s, c16, K, L->hash.tables, L->codes);
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
        /* one division per pooling window entered, not per value: idx is ascending in the
         * forward pass (any order gives the same sums) */
        for (int32_t q = 0, g = 0, lo = 0; q < n; q++) {
            int32_t i = idx[q];
            if (i < lo || i - lo >= pool) g = i / pool, lo = g * pool;
            h[g] += x[q];
        }
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
