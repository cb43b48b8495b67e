/* net_q.c - the fixed-point network: layer after layer, the sparse output of one LSH layer
 * feeding the next as (index, value) pairs, then the argmax of the int32 logits. */
#include "internal.h"

#include <string.h>

int elsh_qnet_forward(elsh_qnet *net, const int8_t *xq)
{
    if (!net || !xq) return ELSH_ERR_NULL;
    if (!net->attached) return ELSH_ERR_STATE;
    const int8_t *a = xq;
    const int32_t *idx = NULL;
    int32_t n = net->n_in;
    for (int p = 0; p < ELSH_PHASE_COUNT; p++) counters_begin(&net->ops, p);
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_qlayer *L = &net->layers[l];
        elsh_qlayer_forward(L, a, idx, n, net->dense, &net->ops);
        a = L->out;
        n = L->n_active;
        idx = L->n_active < L->n_out ? L->active : NULL;
    }
    for (int p = 0; p < ELSH_PHASE_COUNT; p++) counters_end(&net->ops, p);
    return elsh_qnet_argmax(net);
}

int32_t elsh_qnet_argmax(const elsh_qnet *net)
{
    const elsh_qlayer *out = &net->layers[net->n_layers - 1];
    int32_t best = 0;
    for (int32_t j = 1; j < out->n_out; j++)
        if (out->logits[j] > out->logits[best]) best = j;
    return best;
}

int elsh_qnet_predict(elsh_qnet *net, const float *x, int64_t n, int32_t *pred, int32_t *logits)
{
    if (!net || (!x && n > 0) || (!pred && n > 0) || n < 0) return ELSH_ERR_NULL;
    if (!net->attached) return ELSH_ERR_STATE;
    const elsh_qlayer *out = &net->layers[net->n_layers - 1];
    for (int64_t r = 0; r < n; r++) {
        int rc = elsh_qnet_quantize_input(net, x + r * (int64_t)net->n_in, net->input_q);
        if (rc) return rc;
        rc = elsh_qnet_forward(net, net->input_q);
        if (rc < 0) return rc;
        pred[r] = rc;
        if (logits) memcpy(logits + r * (int64_t)out->n_out, out->logits, (size_t)out->n_out * sizeof(int32_t));
    }
    return ELSH_OK;
}

int elsh_qnet_set_active(elsh_qnet *net, float fraction, int32_t dense)
{
    if (!net) return ELSH_ERR_NULL;
    if (!net->file) return ELSH_ERR_STATE; /* no model open */
    if (!(fraction <= 1.0f)) return ELSH_ERR_CONFIG; /* also rejects NaN */
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_qlayer *L = &net->layers[l];
        if (!L->use_lsh) continue;
        L->k = fraction > 0.0f ? elsh_active_k(fraction, L->n_out) : L->k_file;
    }
    net->dense = dense != 0;
    return ELSH_OK;
}

/* The fixed-point network counts for all its layers together (no per-layer counters: less
 * RAM on a microcontroller), so its counters are read and reset in one place. */
void elsh_qnet_reset_counters(elsh_qnet *net)
{
    if (net) counters_reset(&net->ops);
}

elsh_ops elsh_qnet_ops(const elsh_qnet *net, int phase, int total)
{
    elsh_ops sum;
    ops_clear(&sum);
    if (net) counters_add(&sum, &net->ops, phase, total);
    return sum;
}

/* ---------------------------------------------------------------- accessors */

int elsh_qnet_info(const elsh_qnet *net, elsh_qnet_summary *out)
{
    if (!net || !out) return ELSH_ERR_NULL;
    if (!net->file) return ELSH_ERR_STATE; /* never opened, or the open failed */
    *out = (elsh_qnet_summary){.n_in = net->n_in, .n_classes = net->n_classes, .n_layers = net->n_layers,
                               .arena_bytes = net->arena_bytes, .file = net->file,
                               .file_bytes = net->file_bytes, .info = net->info,
                               .info_bytes = net->info_bytes, .has_preprocess = net->has_preprocess,
                               .input_divisor = net->input_divisor, .input_min = net->input_min,
                               .input_max = net->input_max};
    return ELSH_OK;
}

int elsh_qnet_layer_info(const elsh_qnet *net, int32_t layer, elsh_qlayer_summary *out)
{
    if (!net || !out) return ELSH_ERR_NULL;
    if (!net->file || layer < 0 || layer >= net->n_layers) return ELSH_ERR_STATE;
    const elsh_qlayer *L = &net->layers[layer];
    *out = (elsh_qlayer_summary){
        .n_in = L->n_in, .n_out = L->n_out, .k = L->k, .k_file = L->k_file, .use_lsh = L->use_lsh,
        .is_output = L->is_output, .weight_bits = L->weight_bits,
        .weights = L->weight_bits == 16 ? (const void *)L->w16 : (const void *)L->w8,
        .in_zero = L->in_zero, .out_zero = L->out_zero, .in_scale = L->in_scale,
        .out_scale = L->out_scale, .hash = L->hash, .hash_source = L->hash_source,
        .tables_in_file = L->tables_in_file};
    return ELSH_OK;
}

const int32_t *elsh_qnet_logits(const elsh_qnet *net)
{
    if (!net || !net->attached) return NULL;
    return net->layers[net->n_layers - 1].logits;
}

/* ---------------------------------------------------------------- probabilities
 *
 * Output formatting, not inference: the only float arithmetic after the input. In double,
 * with an exp of our own (libm's differs in the last bit between C libraries), and with
 * -ffp-contract=off every operation is one IEEE rounding: the same bits on every platform. */

/* e^d for d <= 0: d = n ln2 + r with |r| <= ln2 / 2, e^r by its degree-11 Taylor polynomial
 * (relative error < 1e-14 there), times 2^n built from its bits. Below -110 the result is
 * under half the smallest float (e^-110 < 1e-47), so 0: never a subnormal, never NaN. */
static double exp_nonpositive(double d)
{
    if (!(d > -110.0)) return 0.0;
    if (d >= 0.0) return 1.0;
    double t = d * 1.4426950408889634 + 0.5; /* d / ln2, rounded to nearest below */
    int32_t n = (int32_t)t;                  /* -159 .. 0: truncation toward zero, then floor */
    if ((double)n > t) n--;
    /* ln2 split so that n * LN2_HI is exact (fdlibm's constants) */
    double r = (d - (double)n * 6.93147180369123816490e-01) - (double)n * 1.90821492927058770002e-10;
    double p = 1.0 / 39916800.0;
    static const double inv_fact[11] = {1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0,
                                        1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0};
    for (int i = 0; i < 11; i++) p = p * r + inv_fact[i];
    uint64_t bits = (uint64_t)(n + 1023) << 52; /* 2^n, a normal double */
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

int elsh_qnet_probs(const elsh_qnet *net, float *probs)
{
    if (!net || !probs) return ELSH_ERR_NULL;
    if (!net->attached) return ELSH_ERR_STATE;
    const elsh_qlayer *L = &net->layers[net->n_layers - 1];
    if (L->n_active <= 0) return ELSH_ERR_STATE; /* no forward yet */
    for (int32_t j = 0; j < L->n_out; j++) probs[j] = 0.0f;
    /* the computed classes: the active set (a saturated logit of INT32_MIN is still one) */
    int32_t mx = L->logits[L->active[0]];
    for (int32_t q = 1; q < L->n_active; q++)
        if (L->logits[L->active[q]] > mx) mx = L->logits[L->active[q]];
    double scale = (double)L->out_scale, sum = 0.0; /* out_scale: finite, > 0 (FORMAT.md) */
    for (int32_t q = 0; q < L->n_active; q++) {
        int64_t diff = (int64_t)L->logits[L->active[q]] - (int64_t)mx; /* -2^32 < diff <= 0 */
        sum += exp_nonpositive((double)diff * scale);
    }
    /* sum >= 1: the maximum contributes e^0 = 1 */
    for (int32_t q = 0; q < L->n_active; q++) {
        int64_t diff = (int64_t)L->logits[L->active[q]] - (int64_t)mx;
        probs[L->active[q]] = (float)(exp_nonpositive((double)diff * scale) / sum);
    }
    return ELSH_OK;
}

const int32_t *elsh_qnet_last_active(const elsh_qnet *net, int32_t layer, int32_t *n_active)
{
    if (n_active) *n_active = 0;
    if (!net || !net->attached || layer < 0 || layer >= net->n_layers) return NULL;
    if (n_active) *n_active = net->layers[layer].n_active;
    return net->layers[layer].active;
}
