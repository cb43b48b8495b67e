/* layer_f32_body.h - the float layer's arithmetic on its parameters (forward, backward, the
 * optimizer step), written once and compiled three times:
 *   layer_f32.c         plain loads and stores: one thread, the reference path;
 *   layer_f32_shared.c  relaxed atomic loads and stores of the weights, biases and optimizer
 *                       state: the asynchronous training threads' forward pass and backward
 *                       deltas (train_threads_f32.c) read with it while owners write, and
 *                       its backward pass is Hogwild's step (tools/bench/shared_step_micro.c);
 *   layer_f32_owned.c   the optimizer step only (LAYER_UPDATE_ONLY), for the thread that owns
 *                       the rows: plain loads and stores but relaxed atomic stores of the
 *                       weights and biases (WEIGHT_STORE), which other threads read meanwhile.
 * No access of the threaded variants is a data race, so nothing is undefined.
 * The includer defines, before including this file:
 *   PARAM_LOAD(p)      the value of the float *p
 *   PARAM_STORE(p, v)  *p = v for a float
 *   WEIGHT_STORE(p, v), WEIGHT_STORE4(p, v, paired)  (optional; default PARAM_STORE(4)) the
 *                      stores of weights and biases
 *   LAYER_UPDATE_ONLY  (optional) compile update_rows and the step alone
 *   MARK_DIRTY(p)      *p = 1 for a uint8_t (a neuron's dirty flag)
 *   LAYER_FN(name)     the name of an exported function in this variant
 * and, to do the dense dot products and the optimizer step four floats at a time (see
 * "Vectors" below: the shared variant always, the plain one where vec4_f32.h finds SSE or
 * aarch64 NEON), also
 *   vec4, ivec4                     GCC/Clang vectors of 4 floats and of 4 int32_t
 *   PARAM_PAIRS_FIT(p)              the `paired` argument for a row that starts at p
 *   PARAM_LOAD4(p, paired)          the floats p[0..3] as a vec4
 *   PARAM_STORE4(p, v, paired)      the floats p[0..3] = v
 *   SQRT4(v)                        sqrtf of each lane (the IEEE square root)
 * Everything that only reads or writes one thread's scratch (active sets, activations, deltas,
 * hashing and selection) is plain in both. Summation order is fixed in both, so the plain
 * variant is bit-identical to what this code was before it was shared. */

#ifndef WEIGHT_STORE /* weights and biases, where a variant stores them apart from the optimizer state */
#define WEIGHT_STORE(p, v) PARAM_STORE((p), (v))
#endif
#if defined(PARAM_STORE4) && !defined(WEIGHT_STORE4)
#define WEIGHT_STORE4(p, v, paired) PARAM_STORE4((p), (v), (paired))
#endif

#ifndef LAYER_UPDATE_ONLY
/* Dot products with several independent accumulators, combined in a fixed order: the same
 * result on every platform (no reassociation is left to the compiler), and enough independent
 * work per iteration for the CPU to overlap, or for the compiler to put in SIMD lanes. */
#ifndef PARAM_LOAD4
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

#ifdef PARAM_LOAD4
/* Vectors (the shared variant; the plain one too where ELSH_VEC4_F32). Relaxed atomic accesses are single loads and stores, which a
 * compiler vectorizes never: a dot product or optimizer step written on them runs one float at
 * a time (sqrt and div included), where the plain variant's compiler vectorizes the dot
 * products. So here the parameters are loaded and stored four at a time as vectors
 * (PARAM_LOAD4: relaxed atomics into a vector register) and the arithmetic is written on the
 * vectors. The arithmetic of each float is the plain variant's, operation for operation (lane
 * k of a vector operation is the scalar operation on lane k's floats), and sums keep its
 * order: on one thread the result is bit for bit the plain one (test_threads.c checks it).
 * Only when each float is loaded and stored within a row changes, which relaxed atomics leave
 * free anyway. */

/* dot_dense on vectors of four (vec4, from the includer) read with PARAM_LOAD4(p, paired):
 * lanes 0-3 of `lo` and `hi` are the eight accumulators, fed in the same order */
static float dot_dense_vec(const float *row, const float *x, int32_t n)
{
    int paired = PARAM_PAIRS_FIT(row);
    vec4 lo = {0.0f, 0.0f, 0.0f, 0.0f}, hi = lo;
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vec4 x0, x1;
        memcpy(&x0, x + i, sizeof(x0));
        memcpy(&x1, x + i + 4, sizeof(x1));
        lo += PARAM_LOAD4(row + i, paired) * x0;
        hi += PARAM_LOAD4(row + i + 4, paired) * x1;
    }
    float s0 = lo[0], s1 = lo[1], s2 = lo[2], s3 = lo[3], s4 = hi[0], s5 = hi[1], s6 = hi[2], s7 = hi[3];
    for (; i < n; i++) s0 += PARAM_LOAD(&row[i]) * x[i];
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}
#define DOT_DENSE dot_dense_vec
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

#endif /* LAYER_UPDATE_ONLY */

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
    WEIGHT_STORE(w, flush_tiny(w_now + vel_new));
}

#ifdef PARAM_LOAD4
static inline vec4 broadcast4(float v)
{
    vec4 r = {v, v, v, v};
    return r;
}

/* flush_tiny of each lane, without a branch: the same values (|v| < TINY compares as the
 * integers of the bits for every non-NaN; a NaN's bits are above TINY's, so a NaN is kept,
 * as flush_tiny keeps it; -0 and +0 both come out +0) */
static inline vec4 flush_tiny4(vec4 v)
{
    const float tiny = TINY;
    int32_t t;
    memcpy(&t, &tiny, 4);
    ivec4 u = (ivec4)v;
    ivec4 keep = (u & 0x7fffffff) >= t; /* -1 (all ones) where kept, 0 where flushed */
    return (vec4)(u & keep);
}

/* step_row four active inputs at a time: w, g2 and vel of inputs q..q+3 loaded as vectors
 * (gathered from four places when the input is sparse), adagrad_step's operations on them,
 * stored back; the last in_n % 4 one at a time as step_row does */
static void step_row_vec(elsh_layer *L, int32_t j, float d, const float *in_val, const int32_t *in_idx,
                         int32_t in_n, float *prev_delta, float lr, float mom, float l2, float eps)
{
    size_t off = (size_t)j * (size_t)L->n_in;
    float *row = L->w + off, *g2 = L->w_g2 + off, *vel = L->w_vel + off;
    int paired = PARAM_PAIRS_FIT(row); /* w, w_g2 and w_vel have the same layout */
    vec4 dv = broadcast4(d), l2v = broadcast4(l2), lrv = broadcast4(lr), momv = broadcast4(mom);
    vec4 epsv = broadcast4(eps);
    int32_t q = 0;
    for (; q + 4 <= in_n; q += 4) {
        vec4 w, g, v, x;
        if (in_idx) {
            const int32_t *i = in_idx + q;
            vec4 wg = {PARAM_LOAD(&row[i[0]]), PARAM_LOAD(&row[i[1]]), PARAM_LOAD(&row[i[2]]), PARAM_LOAD(&row[i[3]])};
            vec4 gg = {PARAM_LOAD(&g2[i[0]]), PARAM_LOAD(&g2[i[1]]), PARAM_LOAD(&g2[i[2]]), PARAM_LOAD(&g2[i[3]])};
            vec4 vg = {PARAM_LOAD(&vel[i[0]]), PARAM_LOAD(&vel[i[1]]), PARAM_LOAD(&vel[i[2]]), PARAM_LOAD(&vel[i[3]])};
            w = wg, g = gg, v = vg;
        } else {
            w = PARAM_LOAD4(row + q, paired);
            g = PARAM_LOAD4(g2 + q, paired);
            v = PARAM_LOAD4(vel + q, paired);
        }
        memcpy(&x, in_val + q, sizeof(x));
        if (prev_delta) {
            vec4 pd;
            memcpy(&pd, prev_delta + q, sizeof(pd));
            pd += w * dv;
            memcpy(prev_delta + q, &pd, sizeof(pd));
        }
        vec4 grad = flush_tiny4(dv * x + l2v * w);
        g = g + grad * grad;
        v = flush_tiny4(momv * v - lrv * grad / (SQRT4(g) + epsv));
        w = flush_tiny4(w + v);
        if (in_idx) {
            const int32_t *i = in_idx + q;
            for (int k = 0; k < 4; k++) {
                PARAM_STORE(&g2[i[k]], g[k]);
                PARAM_STORE(&vel[i[k]], v[k]);
                WEIGHT_STORE(&row[i[k]], w[k]);
            }
        } else {
            PARAM_STORE4(g2 + q, g, paired);
            PARAM_STORE4(vel + q, v, paired);
            WEIGHT_STORE4(row + q, w, paired);
        }
    }
    for (; q < in_n; q++) {
        int32_t i = in_idx ? in_idx[q] : q;
        float w = PARAM_LOAD(&row[i]);
        if (prev_delta) prev_delta[q] += w * d;
        adagrad_step(&row[i], &g2[i], &vel[i], w, d * in_val[q] + l2 * w, lr, mom, eps);
    }
    adagrad_step(&L->b[j], &L->b_g2[j], &L->b_vel[j], PARAM_LOAD(&L->b[j]), d, lr, mom, eps);
    if (L->use_lsh) MARK_DIRTY(&L->dirty[j]);
}
#define STEP_ROW step_row_vec
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

#ifndef LAYER_UPDATE_ONLY
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

/* The two halves of the backward pass, for training threads that step rows apart from the
 * sample that computed their deltas (train_threads_f32.c). backprop: dL/dx of the active
 * inputs into prev_delta (NULL: nothing), the parameters only read: the same sums, in the
 * same order, as STEP_ROW's. */
void LAYER_FN(elsh_layer_backprop_f32)(elsh_layer *L, const float *in_val, const int32_t *in_idx,
                                       int32_t in_n, float *prev_delta, float lr, float mom, float l2,
                                       float eps)
{
    (void)in_val, (void)lr, (void)mom, (void)l2, (void)eps;
    elsh_ops *bw = counters_begin(&L->ops, ELSH_PHASE_BACKWARD);
    if (prev_delta) {
        memset(prev_delta, 0, (size_t)in_n * sizeof(float));
        for (int32_t a = 0; a < L->n_active; a++) {
            const float *row = L->w + (size_t)L->active[a] * (size_t)L->n_in;
            float d = L->delta[a];
            for (int32_t q = 0; q < in_n; q++) prev_delta[q] += PARAM_LOAD(&row[in_idx ? in_idx[q] : q]) * d;
        }
    }
    count_backprop(bw, L->n_active, in_n, prev_delta != NULL);
    counters_end(&L->ops, ELSH_PHASE_BACKWARD);
}
#endif /* LAYER_UPDATE_ONLY */

/* update_rows: the optimizer step of the rows in [lo, hi) among active[0..n_active) with
 * deltas delta[], for the layer input (in_val, in_idx, in_n). */
void LAYER_FN(elsh_layer_update_rows_f32)(elsh_layer *L, const int32_t *active, const float *delta,
                                          int32_t n_active, const float *in_val, const int32_t *in_idx,
                                          int32_t in_n, int32_t lo, int32_t hi, float lr, float mom,
                                          float l2, float eps)
{
    elsh_ops *up = counters_begin(&L->ops, ELSH_PHASE_UPDATE);
    int32_t n_rows = 0;
    for (int32_t a = 0; a < n_active; a++) {
        if (active[a] < lo || active[a] >= hi) continue;
        STEP_ROW(L, active[a], delta[a], in_val, in_idx, in_n, NULL, lr, mom, l2, eps);
        n_rows++;
    }
    count_update(up, n_rows, in_n);
    counters_end(&L->ops, ELSH_PHASE_UPDATE);
}
