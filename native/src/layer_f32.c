/* layer_f32.c - the sparse fully connected layer in float32 (the reference path).
 *
 * forward:  for each active neuron j, z_j = b_j + sum over active inputs i of w[j][i] * x_i;
 *           hidden layers apply ReLU, the output layer keeps logits.
 * backward: given dL/dz of the active neurons, add w[j][i] * dL/dz_j into the previous layer's
 *           deltas (active inputs only) and take one Adagrad + momentum step on the active rows.
 * Inputs are dense (idx == NULL) or a list of (idx, value) pairs: the active set of the layer
 * below. Summation order is fixed (ascending input position), so results are reproducible.
 * The arithmetic is in layer_f32_body.h, here with plain loads and stores (layer_f32_shared.c
 * compiles it again with atomic ones, layer_f32_owned.c its step with atomic weight stores),
 * and so are the two halves of the backward pass that training threads run apart
 * (backprop and update_rows, train_threads_f32.c). */
#include "internal.h"
#include "vec4_f32.h"

#include <math.h>
#include <string.h>

void elsh_layer_hash_select(elsh_layer *L, const float *in_val, const int32_t *in_idx, int32_t in_n,
                            int32_t force)
{
    elsh_ops *ops = &L->ops.last[ELSH_PHASE_HASH];
    const float *v = in_val;
    int pooled = L->hash.pool > 1 || in_idx != NULL;
    int centered = L->hash.center;
    if (pooled) {
        elsh_hash_pool(L, in_val, in_idx, in_n, ops);
        v = L->hash_in;
    }
    if (centered) { /* hash_in = pooled input - center (dense from here on) */
        for (int32_t i = 0; i < L->hash.hash_dim; i++)
            L->hash_in[i] = (pooled ? L->hash_in[i] : in_val[i]) - L->center[i];
        ops->add += (uint64_t)L->hash.hash_dim;
        v = L->hash_in;
    }
    for (int32_t t = 0; t < L->hash.tables; t++) L->codes[t] = elsh_hash_code(L, v, t, ops);
    /* restore the all-zero scratch: only the touched windows when the input was sparse */
    if (centered || (pooled && !in_idx)) {
        memset(L->hash_in, 0, (size_t)L->hash.hash_dim * sizeof(float));
    } else if (pooled) {
        for (int32_t q = 0; q < in_n; q++) L->hash_in[in_idx[q] / L->hash.pool] = 0.0f;
    }
    elsh_select(L, force, ops);
}


#define PARAM_LOAD(p) (*(p))
#define PARAM_STORE(p, v) (*(p) = (v))
#define MARK_DIRTY(p) (*(p) = 1)
#if ELSH_VEC4_F32 /* the dense dot products and the optimizer step four floats at a time */
#define PARAM_PAIRS_FIT(p) ((void)(p), 0)
#define PARAM_LOAD4(p, paired) ((void)(paired), load4_plain(p))
#define PARAM_STORE4(p, v, paired) ((void)(paired), memcpy((p), &(v), sizeof(vec4)))
#define SQRT4(v) sqrt4(v)
#endif
#define LAYER_FN(name) name
#include "layer_f32_body.h"
