/* train_q_rates.c - integer learning rates for the fixed-point step from a float one
 * (elsh_qtrain_rates). Set-up, not the step: it uses double arithmetic once per layer (no
 * libm; with -ffp-contract=off every operation is one IEEE rounding, so the same bits on every
 * platform); the step (train_q.c) then runs on the integers alone. edge_lsh.finetune calls
 * this same function, so a device and the host derive identical rates.
 *
 * Per layer l, with ws = the mean over its neurons of the weight scale multiplier_j 2^(shift_j
 * - 31) out_scale / in_scale (the real value of one inference-weight step), frac = 8 (int8) or
 * 0 (int16) and the rate r given as m 2^-s (m in [2^20, 2^30) where the shift 0..62 allows):
 *   Adagrad  weights r = lr / ws 2^frac          (a first step moves a weight by about lr;
 *            biases  r = lr / (in_scale ws)       the step scales both by ws / ws_j for
 *                                                 neuron j, train_q.c step 4)
 *   SGD      weights r = lr / ws^2 u 2^(frac + 16), u = out_scale_top 2^(-15 - grad_exp_l)
 *            biases  r = lr / (in_scale ws)^2 u 2^16   (real SGD: dL/dw = g u / ws)      */
#include "internal.h"

#include <string.h>

static double pow2(int32_t k)
{
    double v = 1.0;
    for (; k > 0; k--) v *= 2.0;
    for (; k < 0; k++) v *= 0.5;
    return v;
}

/* value = m 2^-shift; -1 when it does not fit an int32 multiplier */
static int to_fixed(double value, int32_t *m, int32_t *shift)
{
    if (!(value >= 0.0) || value > 1e300) return -1; /* NaN, negative, infinite */
    if (value == 0.0) {
        *m = 0;
        *shift = 16;
        return 0;
    }
    int32_t s = 0;
    while (value * pow2(s) < 1048576.0 && s < 62) s++;
    while (value * pow2(s) >= 1073741824.0 && s > 0) s--;
    double r = value * pow2(s) + 0.5;
    if (!(r < 2147483648.0)) return -1;
    *m = (int32_t)r; /* truncation of a positive value: the rounding half up of value 2^s */
    *shift = s;
    return 0;
}

int elsh_qtrain_rates(const elsh_qnet *net, int32_t optimizer, double lr, elsh_qtrain_config *cfg)
{
    if (!net || !cfg) return ELSH_ERR_NULL;
    if (!net->file) return ELSH_ERR_STATE;
    if ((optimizer != ELSH_QTRAIN_SGD && optimizer != ELSH_QTRAIN_ADAGRAD) || !(lr > 0.0) || lr > 1e30)
        return ELSH_ERR_CONFIG;
    const elsh_qlayer *top = &net->layers[net->n_layers - 1];
    double out_top = (double)top->out_scale;
    int32_t ge = 0;
    int32_t lw[ELSH_MAX_LAYERS], lws[ELSH_MAX_LAYERS], lb[ELSH_MAX_LAYERS], lbs[ELSH_MAX_LAYERS];
    for (int32_t l = net->n_layers - 1; l >= 0; l--) {
        const elsh_qlayer *L = &net->layers[l];
        ge = elsh_grad_exp(L, l == net->n_layers - 1, ge);
        double in_scale = (double)L->in_scale, ratio = (double)L->out_scale / in_scale, sum = 0.0;
        int32_t n = 0;
        for (int32_t j = 0; j < L->n_out; j++) {
            double ws = (double)L->multiplier[j] * pow2(L->shift[j] - 31) * ratio;
            if (ws > 0.0) {
                sum += ws;
                n++;
            }
        }
        double ws = n ? sum / (double)n : 1.0, frac = pow2(L->weight_bits == 8 ? 8 : 0), w_rate, b_rate;
        if (optimizer == ELSH_QTRAIN_ADAGRAD) {
            w_rate = lr / ws * frac;
            b_rate = lr / (in_scale * ws);
        } else {
            double u = out_top * pow2(-15 - ge);
            w_rate = lr / (ws * ws) * u * frac * 65536.0;
            b_rate = lr / ((in_scale * ws) * (in_scale * ws)) * u * 65536.0;
        }
        if (to_fixed(w_rate, &lw[l], &lws[l]) || to_fixed(b_rate, &lb[l], &lbs[l])) return ELSH_ERR_CONFIG;
    }
    for (int32_t l = 0; l < net->n_layers; l++) {
        cfg->lr_w[l] = lw[l];
        cfg->lr_w_shift[l] = lws[l];
        cfg->lr_b[l] = lb[l];
        cfg->lr_b_shift[l] = lbs[l];
    }
    cfg->optimizer = optimizer;
    return ELSH_OK;
}

int elsh_qtrain_set_rates(elsh_qtrain *tr, const elsh_qtrain_config *rates)
{
    if (!tr || !rates) return ELSH_ERR_NULL;
    if (!tr->attached) return ELSH_ERR_STATE;
    for (int32_t l = 0; l < ELSH_MAX_LAYERS; l++)
        if (rates->lr_w[l] < 0 || rates->lr_b[l] < 0 || rates->lr_w_shift[l] < 0 || rates->lr_w_shift[l] > 62 ||
            rates->lr_b_shift[l] < 0 || rates->lr_b_shift[l] > 62)
            return ELSH_ERR_CONFIG;
    for (int32_t l = 0; l < ELSH_MAX_LAYERS; l++) {
        tr->cfg.lr_w[l] = rates->lr_w[l];
        tr->cfg.lr_w_shift[l] = rates->lr_w_shift[l];
        tr->cfg.lr_b[l] = rates->lr_b[l];
        tr->cfg.lr_b_shift[l] = rates->lr_b_shift[l];
    }
    return ELSH_OK;
}
