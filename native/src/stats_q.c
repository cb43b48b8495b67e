/* stats_q.c - the fixed-point forward taken one step at a time, measured (edge_lsh.h,
 * elsh_qnet_forward_stats): per layer the time of each step from the caller's clock, the bucket
 * entries read, the candidates, and the recall of the exact top-k, which takes every neuron's
 * pre-activation (computed after the timed steps, never by elsh_qnet_forward). The stages are
 * those elsh_qlayer_forward runs, in the same order, so outputs and op counters are the same. */
#include "internal.h"

static uint64_t tick(elsh_clock_ns_fn clock, void *ctx)
{
    return clock ? clock(ctx) : 0u;
}

/* Of the layer's active set, how many are among the k highest pre-activations (ties to the
 * lower id): neuron j is when fewer than k neurons rank above it. */
static uint64_t topk_found(const elsh_qlayer *L, const int8_t *a, const int32_t *idx, int32_t n,
                           int32_t *pre)
{
    for (int32_t j = 0; j < L->n_out; j++) pre[j] = elsh_qlayer_preact(L, a, idx, n, j);
    uint64_t found = 0;
    for (int32_t q = 0; q < L->n_active; q++) {
        int32_t j = L->active[q], above = 0;
        for (int32_t i = 0; i < L->n_out && above < L->k; i++)
            above += pre[i] > pre[j] || (pre[i] == pre[j] && i < j);
        found += above < L->k;
    }
    return found;
}

int elsh_qnet_forward_stats(elsh_qnet *net, const int8_t *xq, elsh_clock_ns_fn clock, void *clock_ctx,
                            int32_t *preact, elsh_layer_stats *stats)
{
    if (!net || !xq || !stats) return ELSH_ERR_NULL;
    if (!net->attached) return ELSH_ERR_STATE;
    const int8_t *a = xq;
    const int32_t *idx = NULL;
    int32_t n = net->n_in;
    for (int p = 0; p < ELSH_PHASE_COUNT; p++) counters_begin(&net->ops, p);
    elsh_ops *hops = &net->ops.last[ELSH_PHASE_HASH], *fops = &net->ops.last[ELSH_PHASE_FORWARD];
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_qlayer *L = &net->layers[l];
        elsh_layer_stats *S = &stats[l];
        int lsh = L->use_lsh && !net->dense;
        uint64_t t0 = tick(clock, clock_ctx), t1, t2, t3;
        elsh_qlayer_input(L, a, n, fops);
        if (lsh) {
            elsh_select_job J;
            elsh_select_state st;
            elsh_qlayer_job(L, &J);
            elsh_qhash_input(L, L->x, idx, n, hops);
            t1 = tick(clock, clock_ctx);
            elsh_select_count(&J, &st, hops);
            S->entries += st.entries;
            t2 = tick(clock, clock_ctx);
            L->n_active = elsh_select_choose(&J, &st, &L->n_candidates, hops);
        } else {
            t1 = t2 = tick(clock, clock_ctx);
            elsh_qlayer_all_active(L);
        }
        t3 = tick(clock, clock_ctx);
        elsh_qlayer_multiply(L, a, idx, n, fops);
        uint64_t t4 = tick(clock, clock_ctx);
        S->ns[ELSH_STEP_HASH] += t1 - t0;
        S->ns[ELSH_STEP_COUNT] += t2 - t1;
        S->ns[ELSH_STEP_SELECT] += t3 - t2;
        S->ns[ELSH_STEP_MULTIPLY] += t4 - t3;
        S->inputs++;
        S->candidates += (uint64_t)L->n_candidates;
        S->active += (uint64_t)L->n_active;
        if (lsh && preact) {
            S->topk += (uint64_t)L->k;
            S->topk_found += topk_found(L, a, idx, n, preact);
        }
        a = L->out;
        n = L->n_active;
        idx = L->n_active < L->n_out ? L->active : NULL;
    }
    for (int p = 0; p < ELSH_PHASE_COUNT; p++) counters_end(&net->ops, p);
    return elsh_qnet_argmax(net);
}
