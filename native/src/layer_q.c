/* layer_q.c - the sparse fully connected layer in fixed point (FORMAT.md 6.2).
 *
 *   x_i   = a_i - in_zero                         int16, -255..255
 *   acc_j = bias_j + sum over inputs of w_ji * x_i  int32, modulo 2^32 (writers keep it exact)
 *   out_j = clamp(requantize(acc_j) + out_zero, out_zero, 127)   hidden (ReLU), int8
 *   out_j = requantize(acc_j)                                     output logits, int32
 * Sums run in uint32: wrap-around is then defined behaviour even for a hostile file, and since
 * integer addition is associative the summation order cannot change the result. The dot
 * products live in dot_q.c (portable) and dot_q_neon.c (NEON, sdot), chosen at compile time. */
#include "internal.h"

void elsh_qlayer_job(elsh_qlayer *L, elsh_select_job *J)
{
    /* the model's tables: read-only CSR */
    *J = (elsh_select_job){.hash = &L->hash, .n_out = L->n_out, .k = L->k, .codes = L->codes,
                           .pad_order = L->pad_order, .ids = L->tab_ids,
                           .csr_offsets = L->tab_offsets, .counts = L->counts,
                           .touched = L->touched, .hist = L->hist, .active = L->active,
                           .bitmaps = L->bitmaps, .planes = L->planes, .words = L->bitmap_words};
}

/* x = a - zero; restrict: the int8 input cannot alias x, so the compiler vectorizes it */
static void minus_zero(int16_t *restrict x, const int8_t *restrict a, int32_t zero, int32_t n)
{
    int32_t n16 = n & ~15, q;
    for (q = 0; q < n16; q++) x[q] = (int16_t)(a[q] - zero);
    for (; q < n; q++) x[q] = (int16_t)(a[q] - zero);
}

void elsh_qlayer_input(elsh_qlayer *L, const int8_t *a, int32_t n, elsh_ops *fops)
{
    minus_zero(L->x, a, L->in_zero, n);
    fops->add += (uint64_t)n;
}

void elsh_qlayer_all_active(elsh_qlayer *L)
{
    for (int32_t j = 0; j < L->n_out; j++) L->active[j] = j;
    L->n_active = L->n_out;
    L->n_candidates = L->n_out;
}

/* acc_j (bias included), modulo 2^32, from the input in L->x (and a, for sdot) */
static uint32_t neuron_acc(const elsh_qlayer *L, const int8_t *a, const int32_t *idx, int32_t n,
                           int32_t j)
{
    uint32_t acc;
    int32_t n_in = L->n_in;
    if (L->weight_bits == 8) {
        const int8_t *row = L->w8 + (size_t)j * (size_t)n_in;
        if (idx)
            acc = elsh_dot_q8_sparse_c(row, L->x, idx, n);
        else
#if ELSH_USE_SDOT
            acc = L->row_sums ? elsh_dot_q8_dense_sdot_rowsum(row, a, L->in_zero, L->row_sums[j], n)
                              : elsh_dot_q8_dense_sdot(row, a, L->in_zero, n);
#elif ELSH_USE_NEON
            acc = elsh_dot_q8_dense_neon(row, L->x, n);
#elif ELSH_X86_DISPATCH
            acc = elsh_cpu_avx2() ? elsh_dot_q8_dense_avx2(row, L->x, n) : elsh_dot_q8_dense_c(row, L->x, n);
#else
            acc = elsh_dot_q8_dense_c(row, L->x, n);
#endif
    } else {
        const int16_t *row = L->w16 + (size_t)j * (size_t)n_in;
        acc = idx ? elsh_dot_q16_sparse_c(row, L->x, idx, n) : elsh_dot_q16_dense_c(row, L->x, n);
    }
    (void)a;
    return acc + (uint32_t)L->bias[j];
}

int32_t elsh_qlayer_preact(const elsh_qlayer *L, const int8_t *a, const int32_t *idx, int32_t n,
                           int32_t j)
{
    /* uint32 -> int32 keeps the bits (modulo 2^32) on every compiler we target */
    return elsh_requantize((int32_t)neuron_acc(L, a, idx, n, j), L->multiplier[j], L->shift[j]);
}

/* Active neuron q's output from its pre-activation y: the logit, or ReLU and the zero point. */
static void finish(elsh_qlayer *L, int32_t q, int32_t y)
{
    if (L->is_output) {
        L->logits[L->active[q]] = y;
    } else {
        int32_t z = L->out_zero;
        int64_t o = (int64_t)y + z;
        L->out[q] = (int8_t)(o > 127 ? 127 : o < z ? z : o);
    }
}

/* Ask for the cache lines of active neuron q's int8 row ahead of its dot product (x86-64): the
 * active rows lie anywhere in a weight matrix larger than the L2 cache, and their first lines
 * would otherwise be waited for, row after row. A hint: no result depends on it. */
static void prefetch_row(const elsh_qlayer *L, int32_t q)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (q >= L->n_active || L->weight_bits != 8) return;
    const char *row = (const char *)(L->w8 + (size_t)L->active[q] * (size_t)L->n_in);
    for (int32_t off = 0; off < L->n_in; off += 64) __builtin_prefetch(row + off, 0, 3);
#else
    (void)L, (void)q;
#endif
}

void elsh_qlayer_multiply(elsh_qlayer *L, const int8_t *a, const int32_t *idx, int32_t n,
                          elsh_ops *fops)
{
    if (L->is_output)
        for (int32_t j = 0; j < L->n_out; j++) L->logits[j] = INT32_MIN;
    int32_t q = 0;
    if (idx && L->weight_bits == 8) /* sparse input: four rows share each index load */
        for (; q + 4 <= L->n_active; q += 4) {
            const int8_t *rows[4];
            uint32_t acc[4];
            for (int u = 0; u < 4; u++) prefetch_row(L, q + 4 + u);
            for (int u = 0; u < 4; u++) rows[u] = L->w8 + (size_t)L->active[q + u] * (size_t)L->n_in;
            elsh_dot_q8_sparse4_c(rows, L->x, idx, n, acc);
            for (int u = 0; u < 4; u++) {
                int32_t j = L->active[q + u];
                uint32_t s = acc[u] + (uint32_t)L->bias[j]; /* to int32 below: the bits, mod 2^32 */
                finish(L, q + u, elsh_requantize((int32_t)s, L->multiplier[j], L->shift[j]));
            }
        }
    for (; q < L->n_active; q++) {
        prefetch_row(L, q + 2);
        finish(L, q, elsh_qlayer_preact(L, a, idx, n, L->active[q]));
    }
    uint64_t macs = (uint64_t)L->n_active * (uint64_t)n;
    fops->mul += macs + (uint64_t)L->n_active;        /* + one requantizing multiply each */
    fops->add += macs + 2u * (uint64_t)L->n_active;   /* + bias and rounding */
    fops->cmp += 2u * (uint64_t)L->n_active;
    fops->weight_bytes += macs * (uint64_t)(L->weight_bits / 8) + 9u * (uint64_t)L->n_active;
}

void elsh_qlayer_forward(elsh_qlayer *L, const int8_t *a, const int32_t *idx, int32_t n, int dense,
                         elsh_counters *ops)
{
    elsh_ops *hops = &ops->last[ELSH_PHASE_HASH], *fops = &ops->last[ELSH_PHASE_FORWARD];
    elsh_qlayer_input(L, a, n, fops);
    if (L->use_lsh && !dense) {
        elsh_select_job J;
        elsh_qlayer_job(L, &J);
        elsh_qhash_input(L, L->x, idx, n, hops);
        L->n_active = elsh_select_run(&J, &L->n_candidates, hops);
    } else {
        elsh_qlayer_all_active(L);
    }
    elsh_qlayer_multiply(L, a, idx, n, fops);
}
