/* layer_f32_body.h - the float layer's arithmetic on its parameters (forward, backward, the
 * optimizer step), written once and compiled twice:
 *   layer_f32.c         plain loads and stores: one thread, the reference path;
 *   layer_f32_shared.c  relaxed atomic loads and stores of the weights, biases and optimizer
 *                       state, for threads training asynchronously against one shared copy
 *                       (Hogwild: train_threads_f32.c). Two threads may lose each other's
 *                       update, but no access is a data race, so nothing is undefined.
 * The includer defines, before including this file:
 *   PARAM_LOAD(p)      the value of the float *p
 *   PARAM_STORE(p, v)  *p = v for a float
 *   MARK_DIRTY(p)      *p = 1 for a uint8_t (a neuron's dirty flag)
 *   LAYER_FN(name)     the name of an exported function in this variant
 * and, to move the parameters of the dense dot products and the optimizer step in blocks
 * (the shared variant: see "Blocks" below), also
 *   PARAM_LOAD_BLOCK(dst, src, n)   dst[k] = the float src[k] for k < n (dst: local scratch)
 *   PARAM_STORE_BLOCK(dst, src, n)  the float dst[k] = src[k] for k < n
 * Everything that only reads or writes one thread's scratch (active sets, activations, deltas,
 * hashing and selection) is plain in both. Summation order is fixed in both, so the plain
 * variant is bit-identical to what this code was before it was shared. */

/* Dot products with several independent accumulators, combined in a fixed order: the same
 * result on every platform (no reassociation is left to the compiler), and enough independent
 * work per iteration for the CPU to overlap, or for the compiler to put in SIMD lanes. */
#ifndef PARAM_LOAD_BLOCK
static float dot_dense(const float *row, const float *x, int32_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += PARAM_LOAD(&row[i]) * x[i];
        s1 += PARAM_LOAD(&row[i + 1]) * x[i + 1];
        s2 += PARAM_LOAD(&row[i + 2]) * x[i + 2];
        s3 += PARAM_LOAD(&row[i + 3]) * x[i + 3];
        s4 += PARAM_LOAD(&row[i + 4]) * x[i + 4];
        s5 += PARAM_LOAD(&row[i + 5]) * x[i + 5];
        s6 += PARAM_LOAD(&row[i + 6]) * x[i + 6];
        s7 += PARAM_LOAD(&row[i + 7]) * x[i + 7];
    }
    for (; i < n; i++) s0 += PARAM_LOAD(&row[i]) * x[i];
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}
#endif

#ifdef PARAM_LOAD_BLOCK
/* Blocks (the shared variant). Relaxed atomic accesses are single loads and stores, but a
 * compiler vectorizes none of them: a dot product or optimizer step written on them runs one
 * float at a time (sqrt and div included), where the plain variant's compiler uses SIMD. So
 * here the parameters move between the shared arrays and local scratch in blocks of
 * PARAM_BLOCK floats (PARAM_LOAD_BLOCK may move two at a time), and the arithmetic runs on
 * the scratch, where the compiler is free to vectorize it. The arithmetic of each float is
 * the plain variant's, operation for operation, and sums keep its order: on one thread the
 * result is bit for bit the plain one (test_threads.c checks it). What changes is only when
 * each float is loaded and stored within a row, which relaxed atomics leave free anyway.
 * The includer defines PARAM_BLOCK (a multiple of 8) and SQRT_BLOCK(r, g): r[k] = sqrtf(g[k])
 * for k < PARAM_BLOCK (sqrtf itself, a library call that may set errno, is vectorized by no
 * compiler under the default -fmath-errno). */

/* dot_dense on blocks: the same eight accumulators fed in the same order */
static float dot_dense_blocks(const float *row, const float *x, int32_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    float r[PARAM_BLOCK];
    int32_t i = 0;
    while (i + 8 <= n) {
        int32_t m = n - i < PARAM_BLOCK ? (n - i) & ~7 : PARAM_BLOCK;
        PARAM_LOAD_BLOCK(r, row + i, m);
        for (int32_t k = 0; k < m; k += 8) {
            s0 += r[k] * x[i + k];
            s1 += r[k + 1] * x[i + k + 1];
            s2 += r[k + 2] * x[i + k + 2];
            s3 += r[k + 3] * x[i + k + 3];
            s4 += r[k + 4] * x[i + k + 4];
            s5 += r[k + 5] * x[i + k + 5];
            s6 += r[k + 6] * x[i + k + 6];
            s7 += r[k + 7] * x[i + k + 7];
        }
        i += m;
    }
    for (; i < n; i++) s0 += PARAM_LOAD(&row[i]) * x[i];
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}
#define DOT_DENSE dot_dense_blocks
#else
#define DOT_DENSE dot_dense
#endif

static float dot_sparse(const float *row, const int32_t *idx, const float *val, int32_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int32_t q = 0;
    for (; q + 4 <= n; q += 4) {
        s0 += PARAM_LOAD(&row[idx[q]]) * val[q];
        s1 += PARAM_LOAD(&row[idx[q + 1]]) * val[q + 1];
        s2 += PARAM_LOAD(&row[idx[q + 2]]) * val[q + 2];
        s3 += PARAM_LOAD(&row[idx[q + 3]]) * val[q + 3];
    }
    for (; q < n; q++) s0 += PARAM_LOAD(&row[idx[q]]) * val[q];
    return (s0 + s1) + (s2 + s3);
}

static float dot_row(const float *row, const float *bias, const float *in_val, const int32_t *in_idx,
                     int32_t in_n)
{
    return PARAM_LOAD(bias) + (in_idx ? dot_sparse(row, in_idx, in_val, in_n) : DOT_DENSE(row, in_val, in_n));
}

/* a ranks above b: higher score, ties to the lower id */
static int ranks_above(const float *score, int32_t a, int32_t b)
{
    return score[a] > score[b] || (score[a] == score[b] && a < b);
}

/* The oracle: compute every neuron and keep the true top-k. active[] holds the best so far in
 * rank order (insertion, O(n_out * k): a measuring tool, not a fast path); then ascending ids. */
static void select_exact(elsh_layer *L, const float *in_val, const int32_t *in_idx, int32_t in_n,
                         int32_t force, elsh_ops *ops)
{
    int32_t k = L->k, n = 0;
    int32_t *best = L->active;
    for (int32_t j = 0; j < L->n_out; j++) {
        L->score[j] = dot_row(L->w + (size_t)j * (size_t)L->n_in, &L->b[j], in_val, in_idx, in_n);
        if (n == k && !ranks_above(L->score, j, best[k - 1])) continue;
        int32_t pos = n < k ? n++ : k - 1;
        while (pos > 0 && ranks_above(L->score, j, best[pos - 1])) {
            best[pos] = best[pos - 1];
            pos--;
        }
        best[pos] = j;
    }
    for (int32_t a = 1; a < n; a++) { /* ascending ids, like the LSH selection */
        int32_t v = best[a], b = a;
        for (; b > 0 && best[b - 1] > v; b--) best[b] = best[b - 1];
        best[b] = v;
    }
    L->n_active = n;
    elsh_select_force(L, force);
    uint64_t macs = (uint64_t)L->n_out * (uint64_t)in_n;
    ops->mul += macs;
    ops->add += macs + (uint64_t)L->n_out;
    ops->cmp += (uint64_t)L->n_out * 2u;
    ops->weight_bytes += (macs + (uint64_t)L->n_out) * 4u;
}

void LAYER_FN(elsh_layer_forward_f32)(elsh_layer *L, const float *in_val, const int32_t *in_idx,
                                      int32_t in_n, int32_t force)
{
    elsh_ops *hops = counters_begin(&L->ops, ELSH_PHASE_HASH);
    elsh_ops *ops = counters_begin(&L->ops, ELSH_PHASE_FORWARD);
    L->forced = -1;
    if (L->use_lsh && L->hash.select_mode == ELSH_SELECT_EXACT)
        select_exact(L, in_val, in_idx, in_n, force, hops);
    else if (L->use_lsh)
        elsh_layer_hash_select(L, in_val, in_idx, in_n, force);

    int32_t n_in = L->n_in;
    for (int32_t a = 0; a < L->n_active; a++) {
        int32_t j = L->active[a];
        float s = dot_row(L->w + (size_t)j * (size_t)n_in, &L->b[j], in_val, in_idx, in_n);
        L->act[a] = (L->is_output || s > 0.0f) ? s : 0.0f;
    }
    uint64_t macs = (uint64_t)L->n_active * (uint64_t)in_n;
    ops->mul += macs;
    ops->add += macs + (uint64_t)L->n_active;
    ops->cmp += L->is_output ? 0u : (uint64_t)L->n_active;
    ops->weight_bytes += (macs + (uint64_t)L->n_active) * 4u;
    counters_end(&L->ops, ELSH_PHASE_HASH);
    counters_end(&L->ops, ELSH_PHASE_FORWARD);
}

/* Values this small carry no information but, as subnormal floats, slow x86 down by 10-100x
 * (weights of always-zero inputs decay towards 0 under L2). Flushing them explicitly, rather
 * than with a CPU mode flag, keeps results identical on every platform. */
#define TINY 1e-12f

static inline float flush_tiny(float v) { return fabsf(v) < TINY ? 0.0f : v; }

/* One Adagrad + momentum step on one parameter whose value is now w_now. */
static inline void adagrad_step(float *w, float *g2, float *vel, float w_now, float grad, float lr,
                                float mom, float eps)
{
    grad = flush_tiny(grad);
    float g2_new = PARAM_LOAD(g2) + grad * grad;
    PARAM_STORE(g2, g2_new);
    float vel_new = flush_tiny(mom * PARAM_LOAD(vel) - lr * grad / (sqrtf(g2_new) + eps));
    PARAM_STORE(vel, vel_new);
    PARAM_STORE(w, flush_tiny(w_now + vel_new));
}

#ifdef PARAM_LOAD_BLOCK
/* flush_tiny without a branch, which the vectorizer takes: the same values (|v| < TINY
 * compares as the integers of the bits for every non-NaN; a NaN's bits are above TINY's, so a
 * NaN is kept, as flush_tiny keeps it; -0 and +0 both come out +0) */
static inline float flush_tiny_bits(float v)
{
    const float tiny = TINY;
    uint32_t u, t;
    memcpy(&u, &v, 4);
    memcpy(&t, &tiny, 4);
    u &= (u & 0x7fffffffu) < t ? 0u : ~0u;
    memcpy(&v, &u, 4);
    return v;
}

/* adagrad_step on PARAM_BLOCK parameters in scratch (w, g2, vel updated in place), with the
 * gradient d * x[k] + l2 * w[k]: the same operations as step_row's, in two vectorizable loops
 * around SQRT_BLOCK */
static void adagrad_block(float *w, float *g2, float *vel, const float *x, float d, float l2, float lr,
                          float mom, float eps)
{
    float grad[PARAM_BLOCK], root[PARAM_BLOCK];
    for (int32_t k = 0; k < PARAM_BLOCK; k++) {
        float gr = flush_tiny_bits(d * x[k] + l2 * w[k]);
        grad[k] = gr;
        g2[k] = g2[k] + gr * gr;
    }
    SQRT_BLOCK(root, g2);
    for (int32_t k = 0; k < PARAM_BLOCK; k++) {
        float v = flush_tiny_bits(mom * vel[k] - lr * grad[k] / (root[k] + eps));
        vel[k] = v;
        w[k] = flush_tiny_bits(w[k] + v);
    }
}

/* step_row on blocks: up to PARAM_BLOCK active inputs at a time are loaded (gathered when the
 * input is sparse) into scratch, stepped by adagrad_block and stored back; unused lanes of the
 * last block hold zeros (their step is 0 and is not stored) */
static void step_row_blocks(elsh_layer *L, int32_t j, float d, const float *in_val, const int32_t *in_idx,
                            int32_t in_n, float *prev_delta, float lr, float mom, float l2, float eps)
{
    size_t off = (size_t)j * (size_t)L->n_in;
    float *row = L->w + off, *g2 = L->w_g2 + off, *vel = L->w_vel + off;
    float w[PARAM_BLOCK], g[PARAM_BLOCK], v[PARAM_BLOCK], x[PARAM_BLOCK];
    for (int32_t q0 = 0; q0 < in_n; q0 += PARAM_BLOCK) {
        int32_t m = in_n - q0 < PARAM_BLOCK ? in_n - q0 : PARAM_BLOCK;
        if (in_idx) {
            for (int32_t k = 0; k < m; k++) {
                int32_t i = in_idx[q0 + k];
                w[k] = PARAM_LOAD(&row[i]);
                g[k] = PARAM_LOAD(&g2[i]);
                v[k] = PARAM_LOAD(&vel[i]);
            }
        } else {
            PARAM_LOAD_BLOCK(w, row + q0, m);
            PARAM_LOAD_BLOCK(g, g2 + q0, m);
            PARAM_LOAD_BLOCK(v, vel + q0, m);
        }
        memcpy(x, in_val + q0, (size_t)m * sizeof(float));
        for (int32_t k = m; k < PARAM_BLOCK; k++) w[k] = g[k] = v[k] = x[k] = 0.0f;
        if (prev_delta)
            for (int32_t k = 0; k < m; k++) prev_delta[q0 + k] += w[k] * d;
        adagrad_block(w, g, v, x, d, l2, lr, mom, eps);
        if (in_idx) {
            for (int32_t k = 0; k < m; k++) {
                int32_t i = in_idx[q0 + k];
                PARAM_STORE(&g2[i], g[k]);
                PARAM_STORE(&vel[i], v[k]);
                PARAM_STORE(&row[i], w[k]);
            }
        } else {
            PARAM_STORE_BLOCK(g2 + q0, g, m);
            PARAM_STORE_BLOCK(vel + q0, v, m);
            PARAM_STORE_BLOCK(row + q0, w, m);
        }
    }
    adagrad_step(&L->b[j], &L->b_g2[j], &L->b_vel[j], PARAM_LOAD(&L->b[j]), d, lr, mom, eps);
    if (L->use_lsh) MARK_DIRTY(&L->dirty[j]);
}
#define STEP_ROW step_row_blocks
#else
/* One row j of the layer with dL/dz_j = d: an Adagrad + momentum step on w[j][i] for each
 * active input i and on b[j]; adds w[j][i] * d (the weight before its step) into prev_delta
 * unless it is NULL; marks the neuron dirty for the tables. */
static void step_row(elsh_layer *L, int32_t j, float d, const float *in_val, const int32_t *in_idx,
                     int32_t in_n, float *prev_delta, float lr, float mom, float l2, float eps)
{
    size_t off = (size_t)j * (size_t)L->n_in;
    float *row = L->w + off, *g2 = L->w_g2 + off, *vel = L->w_vel + off;
    if (!in_idx && !prev_delta) { /* the common first layer: dense input, no deltas below */
        for (int32_t i = 0; i < in_n; i++) {
            float w = PARAM_LOAD(&row[i]);
            adagrad_step(&row[i], &g2[i], &vel[i], w, d * in_val[i] + l2 * w, lr, mom, eps);
        }
        in_n = 0; /* done: only the bias below */
    }
    for (int32_t q = 0; q < in_n; q++) {
        int32_t i = in_idx ? in_idx[q] : q;
        float w = PARAM_LOAD(&row[i]);
        if (prev_delta) prev_delta[q] += w * d;
        adagrad_step(&row[i], &g2[i], &vel[i], w, d * in_val[q] + l2 * w, lr, mom, eps);
    }
    adagrad_step(&L->b[j], &L->b_g2[j], &L->b_vel[j], PARAM_LOAD(&L->b[j]), d, lr, mom, eps);
    if (L->use_lsh) MARK_DIRTY(&L->dirty[j]);
}
#define STEP_ROW step_row
#endif

/* ops per parameter step: grad (2 mul, 1 add), g2 (1 mul, 1 add), step (2 mul, 1 sqrt, 1 div
 * counted as mul, 1 add), momentum (1 mul, 1 add), weight (1 add) */
#define STEP_MULS 7u
#define STEP_ADDS 5u

/* The update phase's work for n_rows rows of in_n inputs. */
static void count_update(elsh_ops *up, int32_t n_rows, int32_t in_n)
{
    uint64_t n_par = (uint64_t)n_rows * (uint64_t)(in_n + 1);
    up->mul += n_par * STEP_MULS;
    up->add += n_par * STEP_ADDS;
    up->weight_bytes += n_par * 12u; /* w, g2, vel */
}

/* The backward phase's work (dL/dx of the active inputs into prev_delta when it is given). */
static void count_backprop(elsh_ops *bw, int32_t n_rows, int32_t in_n, int has_prev)
{
    if (has_prev) {
        bw->mul += (uint64_t)n_rows * (uint64_t)in_n;
        bw->add += (uint64_t)n_rows * (uint64_t)in_n;
    }
    bw->weight_bytes += (uint64_t)n_rows * (uint64_t)(in_n + 1) * 4u;
}

void LAYER_FN(elsh_layer_backward_f32)(elsh_layer *L, const float *in_val, const int32_t *in_idx,
                                       int32_t in_n, float *prev_delta, float lr, float mom, float l2,
                                       float eps)
{
    elsh_ops *bw = counters_begin(&L->ops, ELSH_PHASE_BACKWARD);
    elsh_ops *up = counters_begin(&L->ops, ELSH_PHASE_UPDATE);
    if (prev_delta) memset(prev_delta, 0, (size_t)in_n * sizeof(float));
    for (int32_t a = 0; a < L->n_active; a++)
        STEP_ROW(L, L->active[a], L->delta[a], in_val, in_idx, in_n, prev_delta, lr, mom, l2, eps);
    count_backprop(bw, L->n_active, in_n, prev_delta != NULL);
    count_update(up, L->n_active, in_n);
    counters_end(&L->ops, ELSH_PHASE_BACKWARD);
    counters_end(&L->ops, ELSH_PHASE_UPDATE);
}
