/* train_f32.c - training the float network: loss, backward pass, the optimizer and table
 * schedules, centers, sample order (the forward pass is in net_f32.c).
 *
 * Training is per sample (batch size 1), as in the seed: forward through the active sets,
 * softmax cross-entropy over the output's active classes, backward through the same active
 * sets, then an Adagrad + momentum step on the active rows only. Updated neurons are marked
 * dirty; the table schedule re-hashes them and moves them to their new buckets. */
#include "internal.h"

#include <math.h>
#include <string.h>

void elsh_train_config_default(elsh_train_config *tc)
{
    if (!tc) return;
    tc->lr = 0.01f;
    tc->momentum_start = 0.5f;
    tc->momentum_end = 0.9f;
    tc->momentum_epochs = 10;
    tc->l2 = 0.0f;
    tc->adagrad_eps = 1e-8f;
    tc->rebuild = ELSH_REBUILD_SEED;
    tc->rebuild_every = 0;
    tc->rehash_every = 0;
}

int64_t elsh_rebuild_interval(const elsh_train_config *tc, int32_t epoch, int64_t n)
{
    if (!tc) return 0;
    if (n < 1) n = 1;
    switch (tc->rebuild) {
    case ELSH_REBUILD_SEED: /* ten times an epoch for 10 epochs, every other epoch to 20, then never */
        if (epoch < 10) return n >= 10 ? n / 10 : 1;
        if (epoch < 20) return 2 * n;
        return 0;
    case ELSH_REBUILD_EVERY: return tc->rebuild_every > 0 ? tc->rebuild_every : 0;
    default: return 0;
    }
}

float elsh_momentum_at(const elsh_train_config *tc, int32_t epoch)
{
    if (tc->momentum_epochs <= 0 || epoch >= tc->momentum_epochs) return tc->momentum_end;
    float f = (float)epoch / (float)tc->momentum_epochs;
    return tc->momentum_start + (tc->momentum_end - tc->momentum_start) * f;
}

/* Values that would make the optimizer produce NaN or blow up, rejected up front. */
int elsh_train_config_ok(const elsh_train_config *tc)
{
    return tc->lr > 0.0f && tc->lr < 1e30f && tc->adagrad_eps > 0.0f && tc->adagrad_eps < 1e30f &&
           tc->l2 >= 0.0f && tc->l2 < 1e30f && tc->momentum_start >= 0.0f && tc->momentum_start < 1.0f &&
           tc->momentum_end >= 0.0f && tc->momentum_end < 1.0f && tc->momentum_epochs >= 0;
}

int elsh_train_sample(elsh_net *net, const elsh_train_config *tc, int32_t epoch,
                      const float *x, int32_t label, float *loss)
{
    /* on the stack and set field by field, not a static table or an initializer: the kernel
     * keeps no static data, and position-independent code would put the function addresses of
     * either in a relocated data section */
    elsh_layer_passes plain_passes;
    plain_passes.forward = elsh_layer_forward_f32;
    plain_passes.backward = elsh_layer_backward_f32;
    return elsh_train_sample_with(net, tc, epoch, x, label, loss, &plain_passes);
}

int elsh_train_sample_with(elsh_net *net, const elsh_train_config *tc, int32_t epoch, const float *x,
                           int32_t label, float *loss, const elsh_layer_passes *passes)
{
    if (!net || !tc || !x) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE; /* never initialized (elsh_net_init) */
    if (!elsh_train_config_ok(tc) || epoch < 0) return ELSH_ERR_CONFIG;
    elsh_layer *out = &net->layers[net->n_layers - 1];
    if (label < 0 || label >= out->n_out) return ELSH_ERR_INPUT;
    int pred = elsh_net_forward_with(net, x, label, passes->forward);
    if (pred < 0) return pred;
    elsh_net_softmax(net);
    float p = net->probs[label];
    if (loss) *loss = -logf(p > 1e-30f ? p : 1e-30f);
    for (int32_t a = 0; a < out->n_active; a++)
        out->delta[a] = net->probs[out->active[a]] - (out->active[a] == label ? 1.0f : 0.0f);

    float mom = elsh_momentum_at(tc, epoch);
    for (int32_t l = net->n_layers - 1; l >= 0; l--) {
        elsh_layer *L = &net->layers[l];
        elsh_layer *prev = l > 0 ? &net->layers[l - 1] : NULL;
        const float *in_val = prev ? prev->act : x;
        const int32_t *in_idx = (prev && prev->use_lsh) ? prev->active : NULL;
        int32_t in_n = prev ? prev->n_active : net->cfg.n_in;
        passes->backward(L, in_val, in_idx, in_n, prev ? prev->delta : NULL, tc->lr, mom, tc->l2,
                         tc->adagrad_eps);
        if (prev) /* ReLU: no gradient through neurons that output zero */
            for (int32_t q = 0; q < prev->n_active; q++)
                if (prev->act[q] <= 0.0f) prev->delta[q] = 0.0f;
    }
    return pred;
}

int elsh_tables_due(const elsh_train_config *tc, int32_t epoch, int64_t n_epoch, int64_t seen)
{
    int64_t every = elsh_rebuild_interval(tc, epoch, n_epoch);
    if (tc->rehash_every > 0 && seen % tc->rehash_every == 0) return 2;
    return every > 0 && seen % every == 0 ? 1 : 0;
}

void elsh_net_maintain(elsh_net *net, int kind, elsh_train_stats *stats)
{
    int rehash = kind == 2;
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_layer *L = &net->layers[l];
        if (!L->use_lsh) continue;
        if (rehash) {
            elsh_hash_draw(L, L->rng);
            elsh_tables_rebuild(L);
        } else {
            elsh_tables_update(L);
        }
    }
    if (stats) {
        stats->rebuilds += !rehash;
        stats->rehashes += rehash;
    }
}

int elsh_train_batch(elsh_net *net, const elsh_train_config *tc, int32_t epoch, int64_t n_epoch,
                     const float *x, const int32_t *labels, const int32_t *order, int64_t n,
                     elsh_train_stats *stats)
{
    if (!net || !tc || !x || !labels) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE;
    if (!elsh_train_config_ok(tc) || epoch < 0 || n < 0) return ELSH_ERR_CONFIG;
    size_t n_in = (size_t)net->cfg.n_in;
    for (int64_t s = 0; s < n; s++) {
        int64_t row = order ? order[s] : s;
        float loss = 0.0f;
        int pred = elsh_train_sample(net, tc, epoch, x + (size_t)row * n_in, labels[row], &loss);
        if (pred < 0) return pred;
        (*net->samples_seen)++;
        if (stats) {
            stats->loss_sum += loss;
            stats->correct += pred == labels[row];
            stats->samples++;
        }
        int due = elsh_tables_due(tc, epoch, n_epoch, *net->samples_seen);
        if (due) elsh_net_maintain(net, due, stats);
    }
    return ELSH_OK;
}

int elsh_net_fit_centers(elsh_net *net, const float *x, int64_t n)
{
    if (!net || !x) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE;
    if (n < 1) return ELSH_ERR_INPUT;
    size_t n_in = (size_t)net->cfg.n_in;
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_layer *L = &net->layers[l];
        if (!L->use_lsh || !L->hash.center) continue;
        /* sum the pooled inputs of layer l in hash_in (all-zero on entry), then move the mean
         * into center; layers below l run forward with their centers already fitted */
        for (int64_t s = 0; s < n; s++) {
            const float *row = x + (size_t)s * n_in;
            if (!elsh_all_finite(row, n_in)) {
                memset(L->hash_in, 0, (size_t)L->hash.hash_dim * sizeof(float));
                return ELSH_ERR_INPUT;
            }
            const float *in_val = row;
            const int32_t *in_idx = NULL;
            int32_t in_n = net->cfg.n_in;
            for (int32_t p = 0; p < l; p++) {
                elsh_layer *P = &net->layers[p];
                elsh_layer_forward_f32(P, in_val, in_idx, in_n, -1);
                in_val = P->act;
                in_idx = P->use_lsh ? P->active : NULL;
                in_n = P->n_active;
            }
            elsh_hash_pool(L, in_val, in_idx, in_n, NULL);
        }
        for (int32_t i = 0; i < L->hash.hash_dim; i++) {
            L->center[i] = (float)((double)L->hash_in[i] / (double)n);
            L->hash_in[i] = 0.0f;
        }
    }
    return ELSH_OK;
}

int elsh_shuffle(elsh_net *net, int32_t *order, int64_t n)
{
    if (!net || (!order && n > 0)) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE;
    if (n < 0 || n > INT32_MAX) return ELSH_ERR_INPUT;
    for (int64_t i = 0; i < n; i++) order[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        uint32_t r = elsh_prng_below(net->train_rng, (uint32_t)(i + 1));
        int32_t t = order[i];
        order[i] = order[r];
        order[r] = t;
    }
    return ELSH_OK;
}
