/* select.c - choose a layer's active neurons from the input's L buckets.
 *
 * top-k: count how many of the L buckets each neuron appears in and keep the k most frequent.
 *   Counts are at most L, so a histogram over 0..L finds the cut-off count without sorting;
 *   neurons at the cut-off are taken in ascending id order, which makes ties deterministic.
 * union: take neurons in table order, bucket order, until k are gathered.
 * Either way, when fewer than k neurons collide the set is padded from a fixed random
 * permutation of the layer, starting at a position hashed from the input's bucket ids: the same
 * input always gets the same padding, and rarely chosen neurons still get chosen (and trained).
 * The active set is returned in ascending id order (cache-friendly row gathers). */
#include "internal.h"

#define SELECTED 0xFFFFu /* counts[] marker; real counts are <= ELSH_MAX_TABLES */

static int32_t gather_counts(elsh_layer *L, elsh_ops *ops)
{
    int32_t n_touched = 0;
    uint64_t scanned = 0;
    for (int32_t t = 0; t < L->hash.tables; t++) {
        uint32_t b = L->codes[t];
        const uint16_t *slots = bucket_slots(L, t, b);
        int32_t len = L->bucket_len[(size_t)t * (size_t)L->n_buckets + b];
        for (int32_t s = 0; s < len; s++) { /* branch-free: keep j if its count was 0 */
            uint16_t j = slots[s];
            L->touched[n_touched] = j;
            n_touched += L->counts[j] == 0;
            L->counts[j]++;
        }
        scanned += (uint64_t)len;
    }
    ops->add += scanned;
    ops->table_bytes += scanned * 2u;
    return n_touched;
}

static int32_t mark_union(elsh_layer *L, elsh_ops *ops)
{
    int32_t n_touched = 0, n_sel = 0;
    uint64_t scanned = 0;
    for (int32_t t = 0; t < L->hash.tables && n_sel < L->k; t++) {
        uint32_t b = L->codes[t];
        const uint16_t *slots = bucket_slots(L, t, b);
        int32_t len = L->bucket_len[(size_t)t * (size_t)L->n_buckets + b];
        for (int32_t s = 0; s < len && n_sel < L->k; s++) {
            uint16_t j = slots[s];
            scanned++;
            if (L->counts[j] == SELECTED) continue;
            L->counts[j] = SELECTED;
            L->touched[n_touched++] = j;
            n_sel++;
        }
    }
    ops->cmp += scanned;
    ops->table_bytes += scanned * 2u;
    L->n_candidates = n_sel;
    return n_touched;
}

/* Mark padding neurons until k are selected. */
static int32_t pad_selection(elsh_layer *L, int32_t n_sel, int32_t n_touched, elsh_ops *ops)
{
    uint64_t h = 0;
    for (int32_t t = 0; t < L->hash.tables; t++) h = elsh_mix64(h ^ L->codes[t]);
    int32_t start = (int32_t)(h % (uint64_t)L->n_out);
    for (int32_t i = 0; n_sel < L->k; i++) {
        uint16_t j = L->pad_order[(start + i) % L->n_out];
        ops->cmp++;
        if (L->counts[j] == SELECTED) continue;
        if (L->counts[j] == 0) L->touched[n_touched++] = j;
        L->counts[j] = SELECTED;
        n_sel++;
    }
    return n_touched;
}

void elsh_select(elsh_layer *L, int32_t force, elsh_ops *ops)
{
    int32_t n_out = L->n_out, k = L->k, n_act = 0, n_touched;
    if (L->hash.select_mode == ELSH_SELECT_UNION) {
        n_touched = mark_union(L, ops);
        if (L->n_candidates < k) n_touched = pad_selection(L, L->n_candidates, n_touched, ops);
        for (int32_t j = 0; j < n_out; j++)
            if (L->counts[j] == SELECTED) L->active[n_act++] = j;
        ops->cmp += (uint64_t)n_out;
    } else {
        n_touched = gather_counts(L, ops);
        L->n_candidates = n_touched;
        if (n_touched <= k) {
            for (int32_t q = 0; q < n_touched; q++) L->counts[L->touched[q]] = SELECTED;
            n_touched = pad_selection(L, n_touched, n_touched, ops);
            for (int32_t j = 0; j < n_out; j++)
                if (L->counts[j] == SELECTED) L->active[n_act++] = j;
        } else {
            /* cut-off count c: fewer than k neurons have a count above c, at least k reach c */
            int32_t T = L->hash.tables;
            for (int32_t c = 0; c <= T; c++) L->hist[c] = 0;
            for (int32_t q = 0; q < n_touched; q++) L->hist[L->counts[L->touched[q]]]++;
            int32_t above = 0, c = T;
            while (above + L->hist[c] < k) above += L->hist[c--];
            int32_t take_at_c = k - above;
            for (int32_t j = 0; j < n_out; j++) {
                uint16_t cj = L->counts[j];
                if (cj > c || (cj == c && take_at_c-- > 0)) L->active[n_act++] = j;
            }
            ops->add += (uint64_t)n_touched;
        }
        ops->cmp += (uint64_t)n_out;
    }
    for (int32_t q = 0; q < n_touched; q++) L->counts[L->touched[q]] = 0;

    L->n_active = n_act;
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
