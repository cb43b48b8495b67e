/* train_q.c - one fixed-point training step of an .elsh model (edge_lsh_finetune.h).
 *
 * Integer arithmetic only: no float type is used in this file (tests/test_qtrain.py checks
 * that its object file calls no soft-float routine when built for an FPU-less Cortex-M0+).
 * The numpy oracle edge_lsh/oracle/qtrain.py implements exactly what follows, bit for bit.
 * fs(v, r) is floor(v / 2^r) (an arithmetic shift; for r >= 63 it is 0 or -1), sat32 clamps
 * to [-2^31, 2^31 - 1], and every product below is exact in int64 (bounds given).
 *
 * Layers. The last `train_layers` layers train (0: all); first = the lowest. A trainable
 * layer l keeps int16 masters m[j][i] with F_l fraction bits (F = 8 over int8 weights, 0 over
 * int16 weights), initially w << F, always in [-32767, 32767]; its inference weights are
 * derived: int8 w = clamp(fs(m + 128, 8), -127, 127), int16 w = m. Biases (int32) are their
 * own masters. Requantization multipliers and shifts (the scales) stay those of the file, so
 * a weight that outgrows its int8 range is clamped.
 *
 * 1. Forward: exactly elsh_qnet_forward (same hashing, selection, tables), then, if the label
 *    is not in the output layer's active set (an LSH output layer), the label's logit is
 *    computed and the label inserted in the active set (ascending). The returned prediction
 *    is the argmax of the logits before that insertion (what inference predicts).
 * 2. Softmax over the output's active classes A. With out_scale = s24 * 2^e (its float32
 *    bits: s24 = mantissa with the hidden bit, e = exponent - 150), d_j = y_j - max y (<= 0),
 *    u_j = max(-2^22, fs(d_j * s24, -(e + 16))) (Q16; if e + 16 >= 0: u_j = 0 when d_j = 0,
 *    else -2^22). E_j = exp_q(u_j) (Q30, below). S = sum E_j (>= 2^30).
 *    p_j = floor(E_j 2^15 / S) (Q15), err_j = p_j - 2^15 [j = label].
 *    exp_q(u): v = fs(u * 94548, 16) (log2 e in Q16); n = fs(v, 16); f = v - 2^16 n;
 *    k = -n; k > 30 -> 0; else p = C5, then p = C_i + fs(p f, 16) for i = 4..0, result
 *    fs(p, k), with C = 2^30 (1, ln2, ln2^2/2, ln2^3/6, ln2^4/24, ln2^5/120) rounded:
 *    1073741824, 744261118, 257941248, 59597083, 10327387, 1431680.
 * 3. Deltas (the gradient with respect to a layer's int32 accumulator, in units of
 *    out_scale 2^-15 2^-grad_exp). maxshift_l = the largest requant shift of layer l.
 *    Output layer: grad_exp = 8 - maxshift; delta_j = sat32(fs(err_j * mult_j, 23 + maxshift
 *    - shift_j)) (|err| <= 2^15, mult < 2^31).
 *    Hidden layer l below a trainable layer l + 1: grad_exp_l = grad_exp_{l+1} - maxshift_l - 4;
 *    for each active position q of l (neuron i): back_q = sum over the active j of l + 1 of
 *    delta_j * w_{l+1}[j][i] (int64, before layer l + 1 is updated); back_q = 0 unless the
 *    output a_q > out_zero (ReLU), and back_q = 0 if a_q = 127 and back_q < 0: an output at
 *    its int8 clamp passes only the gradient that lowers it (back_q > 0), else a neuron
 *    pushed to 127 by one large step would never learn again (float ReLU has no clamp); then
 *    delta_q = sat32(fs(clamp(back_q, +-(2^31 - 1)) * mult_i, 35 + maxshift_l - shift_i)).
 * 4. Update of layer l (from the output down): for each active neuron j (ascending) and each
 *    input position p (the layer's input: all n_in, or the previous layer's active ids), with
 *    x_p = a_p - in_zero: g = sat32(delta_j * x_p); then the bias with g = delta_j and the
 *    bias rates. The step, in 2^-16 units of the master:
 *      SGD:      s = -fs(g * lr, shift)
 *      Adagrad:  r = clamp(fs(g, 16), -32767, 32767); acc = min(2^32 - 1, acc + r^2);
 *                rs = floor((2^32 - 1) / (isqrt(acc) + 1)) (the integer rsqrt; isqrt = floor
 *                of the square root); t = fs(g * rs, 32); s = -fs(t * lr_j, shift)
 *    Adagrad's rates are per neuron: lr_j = fs(lr * f_j, 16) (weights and bias alike), with
 *    f_j = ws_ref / ws_j in Q16, so that a first step moves each weight's real value by about
 *    the float lr, as float Adagrad does, whatever the neuron's own weight scale ws_j (the
 *    rates, elsh_qtrain_rates, stand for the layer's mean scale ws_ref). In integers, with
 *    v_k = fs(mult_k, maxshift - shift_k) (neuron k's scale relative to the largest shift):
 *    ws_ref = floor(sum of v_k over the neurons with mult_k > 0 / their count) (at attach;
 *    1 when that is 0); f_j = 2^16 when mult_j <= 0, else with e = 16 + maxshift - shift_j:
 *    f_j = 2^20 when e > 32, else min(2^20, floor(ws_ref 2^e / mult_j)) (a neuron gets at
 *    most 16 times the layer's rate). On MNIST-5k's 784-input layer the neurons' scales
 *    spread over 0.2..3.3 times their mean; one rate for all cost 2 points against float
 *    (tools/finetune/results/domain-shift-rates.md).
 *      momentum (mu = momentum_q15 > 0): v = sat32(fs(v * mu, 15) + s); s = v
 *    Stochastic rounding: h = fs(s, 16), f = s - 2^16 h; if f > 0 one PRNG draw u (elsh_prng,
 *    seeded with cfg.seed; in mini-batches a keyed draw instead, train_q_threads.c) and h += 1
 *    when (u >> 16) < f. Master: m = clamp(m + h, -32767,
 *    32767); bias: b = sat32(b + h). Then the inference weights of the row are re-derived.
 * 5. Tables (LSH layers, after the layer's update): for each updated neuron j (ascending)
 *    whose inference row changed, and each table t (ascending) that stores j: the new bucket
 *    c = the code of the new row (elsh_qhash_row, as the tables are built); if j is not in
 *    bucket c, it is removed from its bucket and inserted into bucket c before the first id
 *    greater than j. The tables stay CSR (offsets[L 2^K + 1], ids): a table's size never
 *    changes. The file's stored tables are copied into the arena; tables built at attach
 *    are already there. Which tables store j (membership) never changes.
 */
#include "internal.h"

#include <string.h>

#define MASTER_MAX 32767
#define U_MIN (-(INT32_C(1) << 22))

static int64_t fs(int64_t v, int32_t r)
{
    if (r <= 0) return v; /* callers pass r >= 0 */
    if (r >= 63) return v < 0 ? -1 : 0;
    return v >= 0 ? v >> r : ~((~v) >> r);
}

static int32_t sat32(int64_t v) { return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v; }

static uint32_t isqrt32(uint32_t a)
{
    uint32_t res = 0, bit = UINT32_C(1) << 30;
    while (bit > a) bit >>= 2;
    while (bit) {
        if (a >= res + bit) {
            a -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    return res;
}

static int64_t exp_q(int64_t u)
{
    static const int64_t C[6] = {1073741824, 744261118, 257941248, 59597083, 10327387, 1431680};
    int64_t v = fs(u * 94548, 16);
    int64_t n = fs(v, 16);
    int64_t f = v - n * 65536;
    int64_t k = -n;
    if (k > 30) return 0;
    int64_t p = C[5];
    for (int i = 4; i >= 0; i--) p = C[i] + fs(p * f, 16);
    return fs(p, (int32_t)k);
}

static uint64_t row_bytes(const elsh_qlayer *L) { return (uint64_t)L->n_out * (uint64_t)L->n_in; }
static uint64_t member_row(const elsh_qlayer *L) { return ((uint64_t)L->n_out + 7u) / 8u; }
static uint64_t n_offsets(const elsh_qlayer *L) { return (uint64_t)L->hash.tables * (uint64_t)L->hash.n_buckets + 1u; }

static int config_ok(const elsh_qnet *net, const elsh_qtrain_config *cfg)
{
    if (cfg->optimizer != ELSH_QTRAIN_SGD && cfg->optimizer != ELSH_QTRAIN_ADAGRAD) return 0;
    if (cfg->train_layers < 0 || cfg->train_layers > net->n_layers) return 0;
    if (cfg->momentum_q15 < 0 || cfg->momentum_q15 > 32767 || cfg->resume < 0 || cfg->resume > 1) return 0;
    if (cfg->batch < 0 || cfg->batch > ELSH_MAX_BATCH || cfg->threads < 0 || cfg->threads > ELSH_MAX_THREADS) return 0;
    if (cfg->resume) { /* the file's trained state must be of this kind */
        const uint8_t *p = net->train_state;
        if (!p || (int32_t)p[0] != cfg->optimizer || (int32_t)(p[4] | (p[5] << 8)) != cfg->train_layers ||
            ((p[8] | p[9]) != 0) != (cfg->momentum_q15 > 0))
            return 0;
    }
    for (int32_t l = 0; l < ELSH_MAX_LAYERS; l++)
        if (cfg->lr_w[l] < 0 || cfg->lr_b[l] < 0 || cfg->lr_w_shift[l] < 0 || cfg->lr_w_shift[l] > 62 ||
            cfg->lr_b_shift[l] < 0 || cfg->lr_b_shift[l] > 62)
            return 0;
    return 1;
}

static int32_t first_trainable(const elsh_qnet *net, const elsh_qtrain_config *cfg)
{
    return elsh_first_trainable(net->n_layers, cfg->train_layers);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* cfg->resume: masters, velocities, sums of layer l from its LAYER_STATE (validated at open) */
static void load_layer_state(elsh_qtrain *tr, int32_t l)
{
    const elsh_qlayer *L = &tr->net->layers[l];
    size_t nw = (size_t)L->n_out * (size_t)L->n_in, n_out = (size_t)L->n_out;
    const uint8_t *q = L->state + ELSH_LAYER_STATE_HEADER;
    memcpy(tr->master[l], q, 2u * nw);
    q += (2u * nw + 3u) & ~(size_t)3u;
    if (tr->vel_w[l]) {
        memcpy(tr->vel_w[l], q, 4u * nw);
        memcpy(tr->vel_b[l], q + 4u * nw, 4u * n_out);
        q += 4u * (nw + n_out);
    }
    if (tr->acc_w[l]) {
        memcpy(tr->acc_w[l], q, 4u * nw);
        memcpy(tr->acc_b[l], q + 4u * nw, 4u * n_out);
    }
}

/* The training arena, planned (base NULL) or carved by the same walk. */
static void layout(elsh_qtrain *tr, const elsh_qnet *net, const elsh_qtrain_config *cfg, elsh_arena *a)
{
    int32_t first = first_trainable(net, cfg), max_in = 1, max_tables = 1;
    for (int32_t l = 0; l < ELSH_MAX_LAYERS; l++) {
        tr->master[l] = NULL;
        tr->w8[l] = NULL;
        tr->bias[l] = NULL;
        tr->vel_w[l] = tr->vel_b[l] = NULL;
        tr->acc_w[l] = tr->acc_b[l] = NULL;
        tr->delta[l] = NULL;
        tr->back[l] = NULL;
        tr->offsets[l] = NULL;
        tr->ids[l] = NULL;
        tr->member[l] = NULL;
    }
    for (int32_t l = first; l < net->n_layers; l++) {
        const elsh_qlayer *L = &net->layers[l];
        uint64_t nw = row_bytes(L), n_out = (uint64_t)L->n_out;
        tr->master[l] = (int16_t *)elsh_arena_take(a, nw, 2);
        if (L->weight_bits == 8) tr->w8[l] = (int8_t *)elsh_arena_take(a, nw, 1);
        tr->bias[l] = (int32_t *)elsh_arena_take(a, n_out, 4);
        if (cfg->momentum_q15 > 0) {
            tr->vel_w[l] = (int32_t *)elsh_arena_take(a, nw, 4);
            tr->vel_b[l] = (int32_t *)elsh_arena_take(a, n_out, 4);
        }
        if (cfg->optimizer == ELSH_QTRAIN_ADAGRAD) {
            tr->acc_w[l] = (uint32_t *)elsh_arena_take(a, nw, 4);
            tr->acc_b[l] = (uint32_t *)elsh_arena_take(a, n_out, 4);
        }
        tr->delta[l] = (int32_t *)elsh_arena_take(a, n_out, 4);
        if (l > first) tr->back[l - 1] = (int64_t *)elsh_arena_take(a, (uint64_t)net->layers[l - 1].n_out, 8);
        if (L->use_lsh) {
            if (L->tables_in_file) {
                tr->offsets[l] = (uint32_t *)elsh_arena_take(a, n_offsets(L), 4);
                tr->ids[l] = (uint16_t *)elsh_arena_take(a, L->tab_offsets[n_offsets(L) - 1u], 2);
            }
            tr->member[l] = (uint8_t *)elsh_arena_take(a, (uint64_t)L->hash.tables * member_row(L), 1);
            if (L->n_in > max_in) max_in = L->n_in;
            if (L->hash.tables > max_tables) max_tables = L->hash.tables;
        }
    }
    tr->row_old = (int16_t *)elsh_arena_take(a, (uint64_t)max_in, 2);
    tr->codes_old = (uint32_t *)elsh_arena_take(a, (uint64_t)max_tables, 4);
    tr->codes_new = (uint32_t *)elsh_arena_take(a, (uint64_t)max_tables, 4);
    tr->batch = NULL;
    if (cfg->batch > 0) elsh_qtrain_layout_batch(tr, net, cfg, a);
}

int elsh_qtrain_config_default(elsh_qtrain_config *cfg, const elsh_qnet *net)
{
    if (!cfg) return ELSH_ERR_NULL;
    memset(cfg, 0, sizeof *cfg);
    cfg->optimizer = ELSH_QTRAIN_ADAGRAD;
    cfg->threads = 1;
    (void)net;
    for (int32_t l = 0; l < ELSH_MAX_LAYERS; l++) cfg->lr_w_shift[l] = cfg->lr_b_shift[l] = 16;
    return ELSH_OK;
}

int elsh_qtrain_plan(const elsh_qnet *net, const elsh_qtrain_config *cfg, size_t *arena_bytes)
{
    if (!net || !cfg || !arena_bytes) return ELSH_ERR_NULL;
    *arena_bytes = 0;
    if (!net->file) return ELSH_ERR_STATE;
    if (!config_ok(net, cfg)) return ELSH_ERR_CONFIG;
    elsh_qtrain scratch;
    elsh_arena a;
    elsh_arena_start(&a, NULL, ELSH_ARENA_LIMIT);
    layout(&scratch, net, cfg, &a);
    if (elsh_arena_size(&a, arena_bytes) != 0) return ELSH_ERR_ARENA;
    return ELSH_OK;
}

int elsh_qtrain_attach(elsh_qtrain *tr, elsh_qnet *net, const elsh_qtrain_config *cfg, void *arena,
                       size_t arena_bytes)
{
    if (!tr || !net || !cfg || !arena) return ELSH_ERR_NULL;
    if (!net->attached) return ELSH_ERR_STATE;
    size_t need;
    int rc = elsh_qtrain_plan(net, cfg, &need);
    if (rc) return rc;
    if ((uintptr_t)arena % ELSH_ARENA_ALIGN != 0 || arena_bytes < need) return ELSH_ERR_ARENA;
    memset(tr, 0, sizeof *tr);
    memset(arena, 0, need);
    elsh_arena a;
    elsh_arena_start(&a, arena, need);
    layout(tr, net, cfg, &a);
    if (a.overflow) return ELSH_ERR_ARENA;
    tr->net = net;
    tr->cfg = *cfg;
    tr->first = first_trainable(net, cfg);
    elsh_prng_seed(&tr->rng, cfg->seed);
    if (cfg->resume) {
        for (int i = 0; i < 4; i++) tr->rng.s[i] = le32(net->train_state + 24 + 4 * i);
        tr->steps = (uint64_t)le32(net->train_state + 16) | ((uint64_t)le32(net->train_state + 20) << 32);
    }
    for (int32_t l = net->n_layers - 1; l >= tr->first; l--) {
        elsh_qlayer *L = &net->layers[l];
        int32_t ms = -31;
        for (int32_t j = 0; j < L->n_out; j++)
            if (L->shift[j] > ms) ms = L->shift[j];
        tr->max_shift[l] = ms;
        tr->grad_exp[l] = elsh_grad_exp(L, l == net->n_layers - 1, l == net->n_layers - 1 ? 0 : tr->grad_exp[l + 1]);
        int64_t sum = 0, count = 0; /* step 4's ws_ref */
        for (int32_t j = 0; j < L->n_out; j++)
            if (L->multiplier[j] > 0) {
                sum += fs(L->multiplier[j], ms - L->shift[j]);
                count++;
            }
        tr->scale_ref[l] = count && sum / count > 0 ? sum / count : 1;
        uint64_t nw = row_bytes(L);
        if (L->weight_bits == 8) {
            for (uint64_t w = 0; w < nw; w++) {
                int32_t v = L->w8[w];
                if (v < -127) v = -127;
                tr->w8[l][w] = (int8_t)v;
                tr->master[l][w] = (int16_t)(v * 256);
            }
            L->w8 = tr->w8[l];
        } else {
            for (uint64_t w = 0; w < nw; w++)
                tr->master[l][w] = (int16_t)(L->w16[w] < -MASTER_MAX ? -MASTER_MAX : L->w16[w]);
            L->w16 = tr->master[l];
        }
        if (cfg->resume) load_layer_state(tr, l); /* the inference weights equal its masters' */
        memcpy(tr->bias[l], L->bias, (size_t)L->n_out * 4u);
        L->bias = tr->bias[l];
        if (!L->use_lsh) continue;
        if (L->tables_in_file) {
            uint64_t no = n_offsets(L);
            memcpy(tr->offsets[l], L->tab_offsets, (size_t)no * 4u);
            memcpy(tr->ids[l], L->tab_ids, (size_t)L->tab_offsets[no - 1u] * 2u);
            L->tab_offsets = tr->offsets[l];
            L->tab_ids = tr->ids[l];
        } else { /* built at attach in the model's arena: already RAM */
            tr->offsets[l] = (uint32_t *)(uintptr_t)L->tab_offsets;
            tr->ids[l] = (uint16_t *)(uintptr_t)L->tab_ids;
        }
        uint64_t B = (uint64_t)L->hash.n_buckets, row = member_row(L);
        for (int32_t t = 0; t < L->hash.tables; t++)
            for (uint32_t i = tr->offsets[l][(uint64_t)t * B]; i < tr->offsets[l][(uint64_t)(t + 1) * B]; i++) {
                uint16_t j = tr->ids[l][i];
                tr->member[l][(uint64_t)t * row + (j >> 3)] |= (uint8_t)(1u << (j & 7));
            }
    }
    /* elsh_model_attach_fast's additions describe the weights and tables as attached, which
     * training changes: drop them (the compact paths give the same outputs) */
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_qlayer *L = &net->layers[l];
        L->bitmaps = NULL;
        L->row_sums = NULL;
    }
    tr->attached = 1;
    return ELSH_OK;
}

/* ---------------------------------------------------------------- the step */

static uint32_t dot_row(const elsh_qlayer *L, int32_t j, const int32_t *idx, int32_t n)
{
    size_t off = (size_t)j * (size_t)L->n_in;
    if (L->weight_bits == 8)
        return idx ? elsh_dot_q8_sparse_c(L->w8 + off, L->x, idx, n) : elsh_dot_q8_dense_c(L->w8 + off, L->x, n);
    return idx ? elsh_dot_q16_sparse_c(L->w16 + off, L->x, idx, n) : elsh_dot_q16_dense_c(L->w16 + off, L->x, n);
}

/* Step 1's insertion of the label into the output layer's active set. */
static void force_label(elsh_qlayer *L, int32_t label, const int32_t *idx, int32_t n, elsh_ops *fops)
{
    int32_t q = 0;
    while (q < L->n_active && L->active[q] < label) q++;
    if (q < L->n_active && L->active[q] == label) return;
    for (int32_t r = L->n_active; r > q; r--) L->active[r] = L->active[r - 1];
    L->active[q] = label;
    L->n_active++;
    uint32_t acc = dot_row(L, label, idx, n) + (uint32_t)L->bias[label];
    L->logits[label] = elsh_requantize((int32_t)acc, L->multiplier[label], L->shift[label]);
    fops->mul += (uint64_t)n + 1u;
    fops->add += (uint64_t)n + 2u;
    fops->weight_bytes += (uint64_t)n * (uint64_t)(L->weight_bits / 8) + 9u;
}

/* Step 2 and the output deltas of step 3. */
static void output_deltas(elsh_qtrain *tr, elsh_qlayer *L, int32_t label, elsh_ops *bops)
{
    uint32_t bits;
    memcpy(&bits, &L->out_scale, sizeof bits);
    int64_t s24 = (int64_t)(bits & 0x7FFFFFu) | ((bits >> 23) & 0xFFu ? 0x800000 : 0);
    int32_t e = (int32_t)((bits >> 23) & 0xFFu) - 150;
    if (((bits >> 23) & 0xFFu) == 0) e = -149; /* a subnormal scale (never written, but legal) */
    int32_t ymax = L->logits[L->active[0]];
    for (int32_t q = 1; q < L->n_active; q++)
        if (L->logits[L->active[q]] > ymax) ymax = L->logits[L->active[q]];
    int32_t *E = tr->delta[tr->net->n_layers - 1]; /* holds E_j first, then the deltas */
    int64_t S = 0;
    int64_t ebuf;
    for (int32_t q = 0; q < L->n_active; q++) {
        int64_t d = (int64_t)L->logits[L->active[q]] - ymax, u;
        if (e + 16 < 0) {
            u = fs(d * s24, -(e + 16));
            if (u < U_MIN) u = U_MIN;
        } else {
            u = d == 0 ? 0 : U_MIN;
        }
        ebuf = exp_q(u);
        E[q] = (int32_t)ebuf; /* <= 2^30 */
        S += ebuf;
    }
    int32_t ms = tr->max_shift[tr->net->n_layers - 1];
    for (int32_t q = 0; q < L->n_active; q++) {
        int32_t j = L->active[q];
        int64_t p = ((int64_t)E[q] << 15) / S;
        int64_t err = p - (j == label ? 32768 : 0);
        E[q] = sat32(fs(err * L->multiplier[j], 23 + ms - L->shift[j]));
    }
    bops->mul += 4u * (uint64_t)L->n_active;
    bops->add += 8u * (uint64_t)L->n_active;
    bops->cmp += (uint64_t)L->n_active;
}

/* Step 3 below layer l + 1 = U: back[q] for the active positions of layer l. */
static void backprop(elsh_qtrain *tr, int32_t l, elsh_ops *bops)
{
    const elsh_qlayer *H = &tr->net->layers[l], *U = &tr->net->layers[l + 1];
    const int32_t *dU = tr->delta[l + 1];
    int64_t *back = tr->back[l];
    for (int32_t q = 0; q < H->n_active; q++) {
        int32_t i = H->active[q];
        int8_t a = H->out[q];
        int64_t sum = 0;
        if (a > H->out_zero) {
            for (int32_t r = 0; r < U->n_active; r++) {
                size_t w = (size_t)U->active[r] * (size_t)U->n_in + (size_t)i;
                int32_t wv = U->weight_bits == 8 ? U->w8[w] : U->w16[w];
                sum += (int64_t)dU[r] * wv;
            }
            bops->mul += (uint64_t)U->n_active;
            bops->add += (uint64_t)U->n_active;
            bops->weight_bytes += (uint64_t)U->n_active * (uint64_t)(U->weight_bits / 8);
            if (a == 127 && sum < 0) sum = 0; /* at the clamp: only what lowers it passes */
        }
        bops->cmp += 2u;
        back[q] = sum;
    }
}

static void hidden_deltas(elsh_qtrain *tr, int32_t l, elsh_ops *bops)
{
    const elsh_qlayer *H = &tr->net->layers[l];
    int32_t ms = tr->max_shift[l];
    for (int32_t q = 0; q < H->n_active; q++) {
        int32_t i = H->active[q];
        int64_t b = tr->back[l][q];
        if (b > INT32_MAX) b = INT32_MAX;
        if (b < -INT32_MAX) b = -INT32_MAX;
        tr->delta[l][q] = sat32(fs(b * H->multiplier[i], 35 + ms - H->shift[i]));
    }
    bops->mul += (uint64_t)H->n_active;
    bops->cmp += 2u * (uint64_t)H->n_active;
}

/* Step 4 for one parameter: the step in 2^-16 units, rounded stochastically to an integer. */
static int64_t param_step(const elsh_qtrain *tr, int64_t g, int64_t lr, int32_t shift, int32_t *vel, uint32_t *acc,
                          elsh_qround *rnd, uint32_t col, elsh_ops *uops)
{
    int64_t s;
    if (acc) {
        int64_t r = fs(g, 16);
        if (r > 32767) r = 32767;
        if (r < -32767) r = -32767;
        uint64_t sum = (uint64_t)*acc + (uint64_t)(r * r);
        *acc = sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
        uint32_t rs = UINT32_MAX / (isqrt32(*acc) + 1u);
        int64_t t = fs(g * (int64_t)rs, 32); /* |t| <= 2^16 + 1 */
        s = -fs(t * lr, shift);               /* lr < 2^35 */
        uops->mul += 4u;
        uops->add += 20u; /* the isqrt's 16 rounds counted as adds */
    } else {
        s = -fs(g * lr, shift);
        uops->mul += 1u;
    }
    if (vel) {
        int32_t v = sat32(fs((int64_t)*vel * tr->cfg.momentum_q15, 15) + s);
        *vel = v;
        s = v;
        uops->mul += 1u;
        uops->add += 1u;
    }
    int64_t h = fs(s, 16), f = s - h * 65536;
    if (f > 0 && (int64_t)(elsh_qround_draw(rnd, col) >> 16) < f) h++;
    uops->add += 2u;
    uops->cmp += 1u;
    return h;
}

/* Remove j from table t of layer l (it is there) and insert it into bucket c. */
void elsh_qtrain_move_neuron(elsh_qtrain *tr, int32_t l, int32_t t, int32_t j, uint32_t c_old, uint32_t c, elsh_ops *tops)
{
    const elsh_qlayer *L = &tr->net->layers[l];
    uint32_t *off = tr->offsets[l];
    uint16_t *ids = tr->ids[l];
    uint64_t B = (uint64_t)L->hash.n_buckets, base = (uint64_t)t * B;
    /* where is j? first in the bucket of its old row, else anywhere in the table */
    uint32_t p = off[base + c_old], end = off[base + c_old + 1u], b_old = c_old;
    while (p < end && ids[p] != j) p++;
    tops->table_bytes += 2u * (uint64_t)(p - off[base + c_old] + 1u);
    if (p == end) {
        uint32_t lo = off[base], hi = off[base + B];
        for (p = lo; p < hi && ids[p] != j; p++) continue;
        tops->table_bytes += 2u * (uint64_t)(p - lo + 1u);
        if (p == hi) return; /* cannot happen: membership says j is here */
        b_old = 0;
        while (off[base + b_old + 1u] <= p) b_old++;
    }
    if (b_old == c) return;
    /* the insertion point in bucket c, in the array before the move */
    uint32_t q = off[base + c], qend = off[base + c + 1u];
    while (q < qend && ids[q] < j) q++;
    tops->table_bytes += 2u * (uint64_t)(q - off[base + c] + 1u);
    if (b_old < c) { /* shift [p+1, q) left; j lands at q - 1 */
        memmove(ids + p, ids + p + 1, (size_t)(q - p - 1u) * 2u);
        ids[q - 1u] = (uint16_t)j;
        for (uint32_t b = b_old + 1u; b <= c; b++) off[base + b]--;
        tops->table_bytes += 4u * (uint64_t)(q - p) + 4u * (uint64_t)(c - b_old);
    } else { /* shift [q, p) right; j lands at q */
        memmove(ids + q + 1, ids + q, (size_t)(p - q) * 2u);
        ids[q] = (uint16_t)j;
        for (uint32_t b = c + 1u; b <= b_old; b++) off[base + b]++;
        tops->table_bytes += 4u * (uint64_t)(p - q + 1u) + 4u * (uint64_t)(b_old - c);
    }
}

/* Step 4 for neuron j of layer l: its weights at the n input positions idx (NULL: 0..n-1)
 * with x the input minus its zero point there, then its bias; the inference row re-derived. */
/* Step 4's f_j: neuron j's Adagrad rate against the layer's, in Q16. */
static int64_t rate_factor(const elsh_qtrain *tr, const elsh_qlayer *L, int32_t l, int32_t j)
{
    int64_t mult = L->multiplier[j];
    if (mult <= 0) return INT64_C(1) << 16;
    int32_t e = 16 + tr->max_shift[l] - L->shift[j];
    if (e > 32) return INT64_C(1) << 20;
    int64_t f = (tr->scale_ref[l] << e) / mult; /* ws_ref < 2^31, e <= 32 */
    return f > (INT64_C(1) << 20) ? INT64_C(1) << 20 : f;
}

void elsh_qtrain_update_row(const elsh_qtrain *tr, int32_t l, int32_t j, int64_t d, const int16_t *x,
                            const int32_t *idx, int32_t n, elsh_qround *rnd, elsh_ops *uops)
{
    const elsh_qlayer *L = &tr->net->layers[l];
    int64_t lr_w = tr->cfg.lr_w[l], lr_b = tr->cfg.lr_b[l];
    int32_t sh_w = tr->cfg.lr_w_shift[l], sh_b = tr->cfg.lr_b_shift[l];
    if (tr->cfg.optimizer == ELSH_QTRAIN_ADAGRAD) { /* the neuron's own rates */
        int64_t f = rate_factor(tr, L, l, j);
        lr_w = fs(lr_w * f, 16);
        lr_b = fs(lr_b * f, 16);
        uops->mul += 3u; /* the division counted as one */
        uops->cmp += 2u;
    }
    size_t off = (size_t)j * (size_t)L->n_in;
    int16_t *m = tr->master[l] + off;
    int8_t *w8 = tr->w8[l] ? tr->w8[l] + off : NULL;
    int32_t *vw = tr->vel_w[l] ? tr->vel_w[l] + off : NULL;
    uint32_t *aw = tr->acc_w[l] ? tr->acc_w[l] + off : NULL;
    for (int32_t p = 0; p < n; p++) {
        int32_t i = idx ? idx[p] : p;
        int64_t g = sat32(d * x[p]);
        int64_t h = param_step(tr, g, lr_w, sh_w, vw ? vw + i : NULL, aw ? aw + i : NULL, rnd, (uint32_t)i, uops);
        int64_t nm = (int64_t)m[i] + h;
        if (nm > MASTER_MAX) nm = MASTER_MAX;
        if (nm < -MASTER_MAX) nm = -MASTER_MAX;
        m[i] = (int16_t)nm;
        if (w8) {
            int64_t v = fs(nm + 128, 8);
            w8[i] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
    uops->mul += (uint64_t)n;
    uops->add += (uint64_t)n;
    uops->weight_bytes += (uint64_t)n * (uint64_t)(2 + (w8 ? 1 : 0) + (vw ? 4 : 0) + (aw ? 4 : 0));
    int64_t hb = param_step(tr, d, lr_b, sh_b, tr->vel_b[l] ? tr->vel_b[l] + j : NULL,
                            tr->acc_b[l] ? tr->acc_b[l] + j : NULL, rnd, (uint32_t)L->n_in, uops);
    tr->bias[l][j] = sat32((int64_t)tr->bias[l][j] + hb);
}

/* 1 when neuron j of LSH layer l is stored in table t */
int elsh_qtrain_stores(const elsh_qtrain *tr, int32_t l, int32_t t, int32_t j)
{
    return (tr->member[l][(uint64_t)t * member_row(&tr->net->layers[l]) + (uint64_t)(j >> 3)] >> (j & 7)) & 1u;
}

/* The inference row of neuron j of layer l into row (int16) */
void elsh_qtrain_copy_row(const elsh_qtrain *tr, int32_t l, int32_t j, int16_t *row)
{
    int32_t n_in = tr->net->layers[l].n_in;
    size_t off = (size_t)j * (size_t)n_in;
    for (int32_t i = 0; i < n_in; i++) row[i] = tr->w8[l] ? tr->w8[l][off + (size_t)i] : tr->master[l][off + (size_t)i];
}

/* 1 when row (int16) differs from the inference row of neuron j of layer l */
int elsh_qtrain_row_changed(const elsh_qtrain *tr, int32_t l, int32_t j, const int16_t *row)
{
    int32_t n_in = tr->net->layers[l].n_in;
    size_t off = (size_t)j * (size_t)n_in;
    for (int32_t i = 0; i < n_in; i++)
        if (row[i] != (tr->w8[l] ? tr->w8[l][off + (size_t)i] : tr->master[l][off + (size_t)i])) return 1;
    return 0;
}

/* The codes of neuron j's current inference row in every table of layer l (h: [hash_dim]). */
void elsh_qtrain_row_codes(const elsh_qtrain *tr, int32_t l, int32_t j, int32_t *h, uint32_t *codes, elsh_ops *tops)
{
    const elsh_qlayer *L = &tr->net->layers[l];
    size_t off = (size_t)j * (size_t)L->n_in;
    elsh_qhash_row(L, tr->w8[l] ? tr->w8[l] + off : NULL, tr->w8[l] ? NULL : tr->master[l] + off, h, codes, tops);
}

static void update_layer(elsh_qtrain *tr, int32_t l, elsh_ops *uops, elsh_ops *tops)
{
    elsh_qlayer *L = &tr->net->layers[l];
    elsh_qround rnd = {&tr->rng, 0};
    for (int32_t q = 0; q < L->n_active; q++) {
        int32_t j = L->active[q];
        if (L->use_lsh) elsh_qtrain_copy_row(tr, l, j, tr->row_old); /* the row before the step, to find its buckets */
        elsh_qtrain_update_row(tr, l, j, tr->delta[l][q], L->x, tr->in_idx[l], tr->in_n[l], &rnd, uops);
        if (!L->use_lsh) continue;
        /* step 5: re-hash a row whose inference weights changed, move it where its code did */
        int changed = elsh_qtrain_row_changed(tr, l, j, tr->row_old);
        tops->cmp += (uint64_t)L->n_in;
        if (!changed) continue;
        elsh_qhash_row(L, NULL, tr->row_old, L->hash_in, tr->codes_old, tops);
        elsh_qtrain_row_codes(tr, l, j, L->hash_in, tr->codes_new, tops);
        for (int32_t t = 0; t < L->hash.tables; t++)
            if (elsh_qtrain_stores(tr, l, t, j)) elsh_qtrain_move_neuron(tr, l, t, j, tr->codes_old[t], tr->codes_new[t], tops);
    }
}

/* Steps 1-3 (nothing is written but the network's and the trainer's scratch): returns the
 * prediction; the deltas of every trainable layer in tr->delta, its active set in the layer. */
int32_t elsh_qtrain_deltas(elsh_qtrain *tr, const int8_t *xq, int32_t label)
{
    elsh_qnet *net = tr->net;
    /* 1. forward, as elsh_qnet_forward */
    const int8_t *a = xq;
    const int32_t *idx = NULL;
    int32_t n = net->n_in, top = net->n_layers - 1;
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_qlayer *L = &net->layers[l];
        tr->in_idx[l] = idx;
        tr->in_n[l] = n;
        elsh_qlayer_forward(L, a, idx, n, net->dense, &net->ops);
        a = L->out;
        n = L->n_active;
        idx = L->n_active < L->n_out ? L->active : NULL;
    }
    elsh_qlayer *O = &net->layers[top];
    int32_t pred = 0;
    for (int32_t j = 1; j < O->n_out; j++)
        if (O->logits[j] > O->logits[pred]) pred = j;
    force_label(O, label, tr->in_idx[top], tr->in_n[top], &net->ops.last[ELSH_PHASE_FORWARD]);
    /* 2-3, from the output layer down, against the weights before the step */
    elsh_ops *bops = &net->ops.last[ELSH_PHASE_BACKWARD];
    output_deltas(tr, O, label, bops);
    for (int32_t l = top; l > tr->first; l--) {
        backprop(tr, l - 1, bops);
        hidden_deltas(tr, l - 1, bops);
    }
    return pred;
}

int elsh_qtrain_step(elsh_qtrain *tr, const int8_t *xq, int32_t label)
{
    if (!tr || !xq) return ELSH_ERR_NULL;
    if (!tr->attached) return ELSH_ERR_STATE;
    elsh_qnet *net = tr->net;
    if (label < 0 || label >= net->n_classes) return ELSH_ERR_INPUT;
    for (int p = 0; p < ELSH_PHASE_COUNT; p++) counters_begin(&net->ops, p);
    int32_t pred = elsh_qtrain_deltas(tr, xq, label);
    /* 4-5, from the output layer down */
    for (int32_t l = net->n_layers - 1; l >= tr->first; l--)
        update_layer(tr, l, &net->ops.last[ELSH_PHASE_UPDATE], &net->ops.last[ELSH_PHASE_TABLES]);
    for (int p = 0; p < ELSH_PHASE_COUNT; p++) counters_end(&net->ops, p);
    tr->steps++;
    return pred;
}

/* ---------------------------------------------------------------- reading the state */

int elsh_qtrain_layer_state(const elsh_qtrain *tr, int32_t layer, elsh_qtrain_layer_view *out)
{
    if (!tr || !out) return ELSH_ERR_NULL;
    if (!tr->attached || layer < 0 || layer >= tr->net->n_layers) return ELSH_ERR_STATE;
    const elsh_qlayer *L = &tr->net->layers[layer];
    memset(out, 0, sizeof *out);
    out->n_in = L->n_in;
    out->n_out = L->n_out;
    out->weight_bits = L->weight_bits;
    out->weights = L->weight_bits == 8 ? (const void *)L->w8 : (const void *)L->w16;
    out->bias = L->bias;
    out->tab_offsets = L->use_lsh ? L->tab_offsets : NULL;
    out->tab_ids = L->use_lsh ? L->tab_ids : NULL;
    if (layer < tr->first) return ELSH_OK;
    out->trainable = 1;
    out->frac_bits = L->weight_bits == 8 ? 8 : 0;
    out->grad_exp = tr->grad_exp[layer];
    out->master = tr->master[layer];
    out->vel_w = tr->vel_w[layer];
    out->vel_b = tr->vel_b[layer];
    out->acc_w = tr->acc_w[layer];
    out->acc_b = tr->acc_b[layer];
    return ELSH_OK;
}

int elsh_qtrain_progress(const elsh_qtrain *tr, uint32_t prng_state[4], uint64_t *steps)
{
    if (!tr || !prng_state || !steps) return ELSH_ERR_NULL;
    if (!tr->attached) return ELSH_ERR_STATE;
    for (int i = 0; i < 4; i++) prng_state[i] = tr->rng.s[i];
    *steps = tr->steps;
    return ELSH_OK;
}
