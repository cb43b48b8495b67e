/* select.c - choose a layer's active neurons from the input's L buckets.
 *
 * top-k: count how many of the L buckets each neuron appears in and keep the k most frequent.
 *   Counts are at most L, so a histogram over 0..L finds the cut-off count without sorting;
 *   neurons at the cut-off are taken in ascending id order, which makes ties deterministic.
 * union: take neurons in table order, bucket order, until k are gathered.
 * Either way, when fewer than k neurons collide the set is padded from a fixed random
 * permutation of the layer, starting at a position hashed from the input's bucket ids: the same
 * input always gets the same padding, and rarely chosen neurons still get chosen (and trained).
 * The active set is returned in ascending id order (cache-friendly row gathers).
 * The same code serves the float layer (fixed-capacity buckets) and the fixed-point layer
 * (read-only CSR tables from a model file). */
#include "internal.h"

#define SELECTED 0xFFFFu /* counts[] marker; real counts are <= ELSH_MAX_TABLES */

/* The slots and length of the bucket the input fell into in table t. */
static const uint16_t *input_bucket(const elsh_select_job *J, int32_t t, int32_t *len)
{
    size_t bi = (size_t)t * (size_t)J->hash->n_buckets + J->codes[t];
    if (J->csr_offsets) {
        *len = (int32_t)(J->csr_offsets[bi + 1] - J->csr_offsets[bi]);
        return J->ids + J->csr_offsets[bi];
    }
    *len = J->bucket_len[bi];
    return J->ids + bi * (size_t)J->capacity;
}

/* Count stage, top-k: counts[j] = in how many of the input's buckets neuron j lies; touched[]
 * lists the neurons counted, each once. */
static void gather_counts(const elsh_select_job *J, elsh_select_state *st, elsh_ops *ops)
{
    int32_t n_touched = 0;
    uint64_t scanned = 0;
    for (int32_t t = 0; t < J->hash->tables; t++) {
        int32_t len;
        const uint16_t *slots = input_bucket(J, t, &len);
        for (int32_t s = 0; s < len; s++) { /* branch-free: keep j if its count was 0 */
            uint16_t j = slots[s];
            J->touched[n_touched] = j;
            n_touched += J->counts[j] == 0;
            J->counts[j]++;
        }
        scanned += (uint64_t)len;
    }
    ops->add += scanned;
    ops->table_bytes += scanned * 2u;
    st->n_touched = n_touched;
    st->entries = scanned;
}

/* Count stage, union: mark neurons SELECTED in table order, bucket order, until k. */
static void mark_union(const elsh_select_job *J, elsh_select_state *st, elsh_ops *ops)
{
    int32_t n_touched = 0, n_sel = 0;
    uint64_t scanned = 0;
    for (int32_t t = 0; t < J->hash->tables && n_sel < J->k; t++) {
        int32_t len;
        const uint16_t *slots = input_bucket(J, t, &len);
        for (int32_t s = 0; s < len && n_sel < J->k; s++) {
            uint16_t j = slots[s];
            scanned++;
            if (J->counts[j] == SELECTED) continue;
            J->counts[j] = SELECTED;
            J->touched[n_touched++] = j;
            n_sel++;
        }
    }
    ops->cmp += scanned;
    ops->table_bytes += scanned * 2u;
    st->n_touched = n_touched;
    st->n_selected = n_sel;
    st->entries = scanned;
}

/* Mark padding neurons until k are selected. */
static int32_t pad_selection(const elsh_select_job *J, int32_t n_sel, int32_t n_touched,
                             elsh_ops *ops)
{
    uint64_t h = 0;
    for (int32_t t = 0; t < J->hash->tables; t++) h = elsh_mix64(h ^ J->codes[t]);
    int32_t p = (int32_t)(h % (uint64_t)J->n_out);
    while (n_sel < J->k) { /* no division per step: cores without a divider (M0+) */
        uint16_t j = J->pad_order[p];
        p = p + 1 == J->n_out ? 0 : p + 1;
        ops->cmp++;
        if (J->counts[j] == SELECTED) continue;
        if (J->counts[j] == 0) J->touched[n_touched++] = j;
        J->counts[j] = SELECTED;
        n_sel++;
    }
    return n_touched;
}

/* ---------------------------------------------------------------- bucket bitmaps */

/* Set bits of v; the position of the lowest set bit of v != 0. */
#if defined(__GNUC__)
static int32_t popcount64(uint64_t v)
{
    return __builtin_popcountll(v);
}
static int32_t lowest_bit(uint64_t v)
{
    return __builtin_ctzll(v);
}
#else
static int32_t popcount64(uint64_t v)
{
    v = v - ((v >> 1) & 0x5555555555555555u);
    v = (v & 0x3333333333333333u) + ((v >> 2) & 0x3333333333333333u);
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0Fu;
    return (int32_t)((v * 0x0101010101010101u) >> 56);
}
static int32_t lowest_bit(uint64_t v)
{
    return popcount64((v & (0u - v)) - 1u);
}
#endif

/* Neurons set in both a and b over W words: popcnt where the CPU has it. */
static inline int32_t popcount_and(const uint64_t *a, const uint64_t *b, int32_t W)
{
#if ELSH_X86_DISPATCH
    if (elsh_cpu_avx2()) return elsh_popcount_and_avx2(a, b, W);
#endif
    int32_t n = 0;
    for (int32_t w = 0; w < W; w++) n += popcount64(a[w] & b[w]);
    return n;
}

/* Bucket entries of the input's L buckets, from the CSR offsets alone. */
static uint64_t bucket_entries(const elsh_select_job *J)
{
    uint64_t n = 0;
    const uint32_t *off = J->csr_offsets;
    for (int32_t t = 0, nb = J->hash->n_buckets; t < J->hash->tables; t++) {
        size_t bi = (size_t)t * (size_t)nb + J->codes[t];
        n += off[bi + 1] - off[bi];
    }
    return n;
}

/* Count stage from the bitmaps: the counts' bit planes into J->planes. */
static void count_bitmaps(const elsh_select_job *J, elsh_select_state *st, elsh_ops *ops)
{
    int32_t L = J->hash->tables, W = J->words, *offsets = J->hist; /* hist: unused by this path */
    for (int32_t t = 0; t < L; t++) /* < L * 2^5 * 1024 words: fits int32 */
        offsets[t] = (t * J->hash->n_buckets + (int32_t)J->codes[t]) * W;
#if ELSH_X86_DISPATCH
    if (elsh_cpu_avx2())
        elsh_count_planes_avx2(J->bitmaps, offsets, L, W, J->planes);
    else
        elsh_count_planes_simd(J->bitmaps, offsets, L, W, J->planes);
#elif ELSH_USE_SIMD_PLANES
    elsh_count_planes_simd(J->bitmaps, offsets, L, W, J->planes);
#else
    elsh_count_planes_c(J->bitmaps, offsets, L, W, J->planes);
#endif
    uint64_t words = (uint64_t)L * (uint64_t)W;
    ops->add += words; /* one bit-sliced add of 64 neurons a table and word */
    ops->table_bytes += words * 8u;
    st->bitmap = 1;
}

/* Choose stage from the planes: the cut-off count c by a radix select from the top plane down
 * (cand: the neurons whose count agrees with c on the planes seen; greater: counts above c),
 * then every neuron above c and the lowest ids at c, ascending: the top-k of the counts, ties
 * to the lower id, as the histogram path chooses. */
static int32_t choose_bitmaps(const elsh_select_job *J, elsh_select_state *st, int32_t *n_candidates,
                              elsh_ops *ops)
{
    int32_t W = J->words, levels = elsh_bits_levels(J->hash->tables), k = J->k, n_act = 0;
    const uint64_t *planes = J->planes;
    uint64_t *cand = J->planes + (size_t)levels * (size_t)W, *greater = cand + W;
    for (int32_t w = 0; w < W; w++) {
        uint64_t any = 0;
        for (int32_t p = 0; p < levels; p++) any |= planes[(size_t)p * (size_t)W + w];
        cand[w] = any;
        greater[w] = 0;
    }
    int32_t n_touched = popcount_and(cand, cand, W);
    ops->cmp += (uint64_t)W * (uint64_t)(levels + 1);
    *n_candidates = n_touched;
    if (n_touched <= k) { /* every candidate, then padding, as the histogram path does */
        int32_t n = 0;
        for (int32_t w = 0; w < W; w++)
            for (uint64_t m = cand[w]; m; m &= m - 1u) {
                int32_t j = w * 64 + lowest_bit(m);
                J->counts[j] = SELECTED;
                J->touched[n++] = (uint16_t)j;
            }
        n = pad_selection(J, n_touched, n, ops);
        for (int32_t j = 0; j < J->n_out; j++)
            if (J->counts[j] == SELECTED) J->active[n_act++] = j;
        ops->cmp += (uint64_t)J->n_out;
        for (int32_t q = 0; q < n; q++) J->counts[J->touched[q]] = 0;
        st->bitmap = 0;
        return n_act;
    }
    int32_t above = 0;
    for (int32_t p = levels - 1; p >= 0; p--) {
        const uint64_t *plane = planes + (size_t)p * (size_t)W;
        int32_t n1 = popcount_and(cand, plane, W);
        if (above + n1 >= k) {
            for (int32_t w = 0; w < W; w++) cand[w] &= plane[w];
        } else {
            above += n1;
            for (int32_t w = 0; w < W; w++) {
                greater[w] |= cand[w] & plane[w];
                cand[w] &= ~plane[w];
            }
        }
    }
    ops->cmp += (uint64_t)W * (uint64_t)levels;
    int32_t take_at_c = k - above;
    for (int32_t w = 0; w < W; w++) {
        uint64_t at_c = cand[w], m = greater[w];
        while (at_c && take_at_c > 0) { /* the lowest ids at the cut-off */
            uint64_t low = at_c & (0u - at_c);
            m |= low;
            at_c ^= low;
            take_at_c--;
        }
        for (; m; m &= m - 1u) J->active[n_act++] = w * 64 + lowest_bit(m);
    }
    ops->cmp += (uint64_t)W;
    st->bitmap = 0;
    return n_act;
}

/* ---------------------------------------------------------------- the two stages */

void elsh_select_count(const elsh_select_job *J, elsh_select_state *st, elsh_ops *ops)
{
    st->n_touched = st->n_selected = 0;
    st->entries = 0;
    st->bitmap = 0;
    if (J->hash->select_mode == ELSH_SELECT_UNION) {
        mark_union(J, st, ops);
    } else if (J->bitmaps) {
        uint64_t entries = bucket_entries(J);
        uint64_t per_entry = elsh_cpu_avx2() ? ELSH_BITMAP_WORDS_PER_ENTRY_AVX2 : ELSH_BITMAP_WORDS_PER_ENTRY;
        if (entries * per_entry > (uint64_t)J->hash->tables * (uint64_t)J->words) {
            count_bitmaps(J, st, ops);
            st->entries = entries;
        } else {
            gather_counts(J, st, ops);
        }
    } else {
        gather_counts(J, st, ops);
    }
}

int32_t elsh_select_choose(const elsh_select_job *J, elsh_select_state *st, int32_t *n_candidates,
                           elsh_ops *ops)
{
    if (st->bitmap) return choose_bitmaps(J, st, n_candidates, ops);
    int32_t n_out = J->n_out, k = J->k, n_act = 0, n_touched = st->n_touched;
    if (J->hash->select_mode == ELSH_SELECT_UNION) {
        int32_t n_sel = st->n_selected;
        *n_candidates = n_sel;
        if (n_sel < k) n_touched = pad_selection(J, n_sel, n_touched, ops);
        for (int32_t j = 0; j < n_out; j++)
            if (J->counts[j] == SELECTED) J->active[n_act++] = j;
        ops->cmp += (uint64_t)n_out;
    } else {
        *n_candidates = n_touched;
        if (n_touched <= k) {
            for (int32_t q = 0; q < n_touched; q++) J->counts[J->touched[q]] = SELECTED;
            n_touched = pad_selection(J, n_touched, n_touched, ops);
            for (int32_t j = 0; j < n_out; j++)
                if (J->counts[j] == SELECTED) J->active[n_act++] = j;
        } else {
            /* cut-off count c: fewer than k neurons have a count above c, at least k reach c */
            int32_t T = J->hash->tables;
            for (int32_t c = 0; c <= T; c++) J->hist[c] = 0;
            for (int32_t q = 0; q < n_touched; q++) J->hist[J->counts[J->touched[q]]]++;
            int32_t above = 0, c = T;
            while (above + J->hist[c] < k) above += J->hist[c--];
            int32_t take_at_c = k - above;
            for (int32_t j = 0; j < n_out; j++) {
                uint16_t cj = J->counts[j];
                if (cj > c || (cj == c && take_at_c-- > 0)) J->active[n_act++] = j;
            }
            ops->add += (uint64_t)n_touched;
        }
        ops->cmp += (uint64_t)n_out;
    }
    for (int32_t q = 0; q < n_touched; q++) J->counts[J->touched[q]] = 0;
    st->n_touched = 0;
    return n_act;
}

int32_t elsh_select_run(const elsh_select_job *J, int32_t *n_candidates, elsh_ops *ops)
{
    elsh_select_state st;
    elsh_select_count(J, &st, ops);
    return elsh_select_choose(J, &st, n_candidates, ops);
}

void elsh_select(elsh_layer *L, int32_t force, elsh_ops *ops)
{
    /* the float layer's tables: fixed-capacity buckets */
    const elsh_select_job J = {.hash = &L->hash, .n_out = L->n_out, .k = L->k, .codes = L->codes,
                               .pad_order = L->pad_order, .ids = L->bucket_ids,
                               .bucket_len = L->bucket_len, .capacity = L->capacity,
                               .counts = L->counts, .touched = L->touched, .hist = L->hist,
                               .active = L->active};
    L->n_active = elsh_select_run(&J, &L->n_candidates, ops);
    elsh_select_force(L, force);
}

void elsh_select_force(elsh_layer *L, int32_t force)
{
    int32_t n_act = L->n_active;
    L->forced = -1;
    if (force >= 0 && L->is_output && force < L->n_out && n_act < L->active_capacity) {
        int32_t pos = 0;
        while (pos < n_act && L->active[pos] < force) pos++;
        if (pos == n_act || L->active[pos] != force) {
            for (int32_t q = n_act; q > pos; q--) L->active[q] = L->active[q - 1];
            L->active[pos] = force;
            L->forced = force;
            n_act++;
        }
    }
    L->n_active = n_act;
}

/* k for a fraction of n_out, the one rounding rule of both networks: round(fraction * n_out)
 * (half up), at least 1 and at most n_out. */
int32_t elsh_active_k(float fraction, int32_t n_out)
{
    int32_t k = (int32_t)(fraction * (float)n_out + 0.5f);
    if (k < 1) k = 1;
    if (k > n_out) k = n_out;
    return k;
}
