/* tables_f32.c - the L hash tables of a float layer: flat arrays of fixed-capacity buckets.
 *
 * Layout: bucket_ids[t][b][slot] holds neuron ids, bucket_len[t][b] how many slots are used.
 * neuron_bucket[j][t] remembers which bucket of table t holds neuron j, so a neuron whose
 * weights changed can be moved without searching the table. A full bucket takes a new neuron
 * by FIFO (evict the oldest slot, round robin) or by reservoir sampling (keep each of the
 * neurons ever offered with equal probability). */
#include "internal.h"

#include <string.h>

static void count_table_bytes(elsh_layer *L, uint64_t n)
{
    L->ops.last[ELSH_PHASE_TABLES].table_bytes += n * 2u;
}

static void reverse(uint16_t *v, int32_t lo, int32_t hi)
{
    for (; lo < hi; lo++, hi--) {
        uint16_t t = v[lo];
        v[lo] = v[hi];
        v[hi] = t;
    }
}

/* Remove neuron j from its bucket in table t. The remaining slots are left in age order,
 * oldest first (head 0), so FIFO keeps evicting the oldest after removals. */
static void remove_neuron(elsh_layer *L, int32_t t, int32_t j)
{
    uint16_t *where = &L->neuron_bucket[(size_t)j * (size_t)L->hash.tables + (size_t)t];
    if (*where == ELSH_NO_BUCKET) return;
    uint32_t b = *where;
    size_t bi = (size_t)t * (size_t)L->hash.n_buckets + b;
    uint16_t *slots = bucket_slots(L, t, b);
    int32_t len = L->bucket_len[bi], head = L->bucket_head[bi];
    for (int32_t s = 0; s < len; s++) {
        if (slots[s] != (uint16_t)j) continue;
        for (int32_t q = s; q < len - 1; q++) slots[q] = slots[q + 1];
        len--;
        if (head > s) head--;
        if (head >= len) head = 0;
        if (head > 0) { /* rotate left by head: the oldest moves to slot 0 */
            reverse(slots, 0, head - 1);
            reverse(slots, head, len - 1);
            reverse(slots, 0, len - 1);
        }
        L->bucket_len[bi] = (uint16_t)len;
        L->bucket_head[bi] = 0;
        count_table_bytes(L, 2u * (uint64_t)len + 2u);
        break;
    }
    *where = ELSH_NO_BUCKET;
}

static void insert_neuron(elsh_layer *L, int32_t t, uint32_t b, int32_t j)
{
    size_t T = (size_t)L->hash.tables;
    size_t bi = (size_t)t * (size_t)L->hash.n_buckets + b;
    uint16_t *slots = bucket_slots(L, t, b);
    int32_t len = L->bucket_len[bi];
    if (L->bucket_seen[bi] < UINT32_MAX) L->bucket_seen[bi]++; /* saturate: never below(0) */
    int32_t slot;
    if (len < L->capacity) {
        slot = len;
        L->bucket_len[bi] = (uint16_t)(len + 1);
    } else if (L->insert_policy == ELSH_INSERT_FIFO) {
        slot = L->bucket_head[bi];
        L->bucket_head[bi] = (uint16_t)((slot + 1) % L->capacity);
        L->neuron_bucket[(size_t)slots[slot] * T + (size_t)t] = ELSH_NO_BUCKET;
    } else {
        uint32_t r = elsh_prng_below(L->rng, L->bucket_seen[bi]);
        if (r >= (uint32_t)L->capacity) {
            L->neuron_bucket[(size_t)j * T + (size_t)t] = ELSH_NO_BUCKET;
            return;
        }
        slot = (int32_t)r;
        L->neuron_bucket[(size_t)slots[slot] * T + (size_t)t] = ELSH_NO_BUCKET;
    }
    slots[slot] = (uint16_t)j;
    L->neuron_bucket[(size_t)j * T + (size_t)t] = (uint16_t)b;
    count_table_bytes(L, 1u);
}

void elsh_tables_clear(elsh_layer *L)
{
    size_t n_bkt = (size_t)L->hash.tables * (size_t)L->hash.n_buckets;
    memset(L->bucket_len, 0, n_bkt * sizeof(uint16_t));
    memset(L->bucket_head, 0, n_bkt * sizeof(uint16_t));
    memset(L->bucket_seen, 0, n_bkt * sizeof(uint32_t));
    memset(L->neuron_bucket, 0xFF, (size_t)L->n_out * (size_t)L->hash.tables * sizeof(uint16_t));
}

void elsh_tables_rebuild(elsh_layer *L)
{
    elsh_tables_clear(L);
    elsh_ops *ops = counters_begin(&L->ops, ELSH_PHASE_TABLES);
    for (int32_t j = 0; j < L->n_out; j++) {
        elsh_hash_neuron(L, j, L->neuron_codes, ops);
        for (int32_t t = 0; t < L->hash.tables; t++) insert_neuron(L, t, L->neuron_codes[t], j);
        L->dirty[j] = 0;
    }
    counters_end(&L->ops, ELSH_PHASE_TABLES);
}

/* Move neuron j to the buckets of its new codes[L] in the tables t_lo..t_hi-1 where they
 * differ. */
static void move_neuron(elsh_layer *L, int32_t j, const uint32_t *codes, int32_t t_lo, int32_t t_hi)
{
    size_t T = (size_t)L->hash.tables;
    for (int32_t t = t_lo; t < t_hi; t++) {
        uint16_t now = L->neuron_bucket[(size_t)j * T + (size_t)t];
        if (now == codes[t]) continue;
        remove_neuron(L, t, j);
        insert_neuron(L, t, codes[t], j);
    }
}

void elsh_tables_move_from(elsh_layer *L, const uint32_t *codes, int32_t t_lo, int32_t t_hi)
{
    counters_begin(&L->ops, ELSH_PHASE_TABLES);
    size_t T = (size_t)L->hash.tables;
    for (int32_t j = 0; j < L->n_out; j++) {
        if (!L->dirty[j]) continue;
        move_neuron(L, j, codes + (size_t)j * T, t_lo, t_hi);
    }
    counters_end(&L->ops, ELSH_PHASE_TABLES);
}

int32_t elsh_tables_update(elsh_layer *L)
{
    elsh_ops *ops = counters_begin(&L->ops, ELSH_PHASE_TABLES);
    int32_t moved = 0;
    for (int32_t j = 0; j < L->n_out; j++) {
        if (!L->dirty[j]) continue;
        L->dirty[j] = 0;
        moved++;
        elsh_hash_neuron(L, j, L->neuron_codes, ops);
        move_neuron(L, j, L->neuron_codes, 0, L->hash.tables);
    }
    counters_end(&L->ops, ELSH_PHASE_TABLES);
    return moved;
}

void elsh_tables_hash_dirty(elsh_layer *L, int32_t lo, int32_t hi, uint32_t *codes)
{
    elsh_ops *ops = counters_begin(&L->ops, ELSH_PHASE_TABLES);
    size_t T = (size_t)L->hash.tables;
    for (int32_t j = lo; j < hi; j++)
        if (L->dirty[j]) elsh_hash_neuron(L, j, codes + (size_t)j * T, ops);
    counters_end(&L->ops, ELSH_PHASE_TABLES);
}

int32_t elsh_tables_update_from(elsh_layer *L, const uint32_t *codes)
{
    counters_begin(&L->ops, ELSH_PHASE_TABLES);
    int32_t moved = 0;
    for (int32_t j = 0; j < L->n_out; j++) {
        if (!L->dirty[j]) continue;
        L->dirty[j] = 0;
        moved++;
        move_neuron(L, j, codes + (size_t)j * (size_t)L->hash.tables, 0, L->hash.tables);
    }
    counters_end(&L->ops, ELSH_PHASE_TABLES);
    return moved;
}

int32_t elsh_tables_count(const elsh_layer *L, int32_t t)
{
    int32_t n = 0;
    for (int32_t b = 0; b < L->hash.n_buckets; b++) n += L->bucket_len[(size_t)t * (size_t)L->hash.n_buckets + (size_t)b];
    return n;
}
