/* hash_f32.c - hashing in the float layer: sum pooling into hash_in, the three families on
 * float vectors (hash_families.h), a neuron's weight row hashed into its codes, and the layer's
 * hash functions drawn into the arena (hash.c). */
#include "internal.h"

#include <string.h>

#define HASH_LAYER elsh_layer
#define HASH_VALUE float
#define HASH_SUM float
#define HASH_COEF float
#include "hash_families.h"

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

uint32_t elsh_hash_code(const elsh_layer *L, const float *v, int32_t t, elsh_ops *ops)
{
    return hash_code(L, v ? v : L->hash_in, t, ops);
}

void elsh_hash_draw(elsh_layer *L, elsh_prng *rng)
{
    const elsh_hash_arrays out = {L->proj, NULL, L->tern_idx, L->tern_sign, L->dwta_idx};
    elsh_hash_draw_into(&L->hash, &out, NULL, rng);
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
    for (int32_t t = 0; t < L->hash.tables; t++) codes[t] = hash_code(L, v, t, ops);
    if (L->hash.pool > 1) memset(L->hash_in, 0, (size_t)L->hash.hash_dim * sizeof(float));
}
