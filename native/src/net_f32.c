/* net_f32.c - the float network: configuration checks, the arena layout, initialization,
 * op counters, and the forward pass and prediction (training is in train_f32.c).
 *
 * One function, carve_net(), walks every buffer of the network in a fixed order through the
 * arena allocator (arena.c). Run without memory it only adds up sizes (elsh_net_plan); with
 * the caller's arena it also points the views into it (elsh_net_init). Both use the same walk,
 * so the layout cannot drift from the plan. */
#include "internal.h"

#include <math.h>
#include <string.h>

static int32_t active_k(const elsh_layer_config *lc)
{
    return lc->use_lsh ? elsh_active_k(lc->active_fraction, lc->n_out) : lc->n_out;
}

/* Fill the derived fields of a layer view from its config; -1 when out of range. */
static int derive_layer(elsh_layer *L, const elsh_layer_config *lc, int32_t n_in, int is_output)
{
    memset(L, 0, sizeof(*L));
    if (lc->n_out < 1 || lc->n_out > ELSH_MAX_WIDTH) return -1;
    if (is_output && lc->n_out < 2) return -1;
    if (lc->use_lsh != 0 && lc->use_lsh != 1) return -1;
    L->n_in = n_in;
    L->n_out = lc->n_out;
    L->is_output = is_output;
    L->use_lsh = lc->use_lsh;
    if (!lc->use_lsh) {
        L->k = lc->n_out;
        L->active_capacity = lc->n_out;
        return 0;
    }
    /* written as a negated range test so that NaN fails too */
    if (!(lc->active_fraction > 0.0f && lc->active_fraction <= 1.0f)) return -1;
    const elsh_hash_config *h = &lc->hash;
    if (h->pool < 1 || h->pool > n_in) return -1;
    if (h->bucket_capacity < 0 || h->bucket_capacity > ELSH_MAX_WIDTH) return -1;
    if (h->insert_policy != ELSH_INSERT_FIFO && h->insert_policy != ELSH_INSERT_RESERVOIR) return -1;
    /* the config's hashing with its defaults filled in, then checked and derived (hash.c) */
    elsh_hash_params *hp = &L->hash;
    hp->family = h->family;
    hp->bits = h->bits;
    hp->tables = h->tables;
    hp->pool = h->pool;
    hp->center = h->center;
    hp->select_mode = h->select_mode;
    if (h->family == ELSH_HASH_TERNARY) {
        int32_t dim = (n_in + h->pool - 1) / h->pool;
        if (h->ternary_nnz < 0) return -1;
        hp->ternary_nnz = h->ternary_nnz ? h->ternary_nnz : (dim + 2) / 3;
    }
    if (h->family == ELSH_HASH_DWTA) hp->dwta_bin = h->dwta_bin ? h->dwta_bin : 8;
    if (elsh_hash_derive(hp, n_in) != 0) return -1;
    L->k = active_k(lc);
    /* room for any k up to n_out (elsh_net_set_active), plus the forced label at the output */
    L->active_capacity = lc->n_out + (is_output ? 1 : 0);
    L->capacity = h->bucket_capacity ? h->bucket_capacity : (lc->n_out < 128 ? lc->n_out : 128);
    L->insert_policy = h->insert_policy;
    return 0;
}

/* A layer's scratch, in two runs (carve_layer puts them where they always were in the arena):
 * the outputs of a pass, and the hashing and selection buffers of an LSH layer. */
static void carve_layer_outputs(elsh_arena *c, elsh_layer *L)
{
    L->active = elsh_arena_take(c, (uint64_t)L->active_capacity, 4);
    L->act = elsh_arena_take(c, (uint64_t)L->active_capacity, 4);
    L->delta = elsh_arena_take(c, (uint64_t)L->active_capacity, 4);
}

static void carve_layer_hash_scratch(elsh_arena *c, elsh_layer *L)
{
    const elsh_hash_params *hp = &L->hash;
    uint64_t n_tab = (uint64_t)hp->tables;
    L->hash_in = elsh_arena_take(c, (uint64_t)hp->hash_dim, 4);
    L->codes = elsh_arena_take(c, n_tab, 4);
    L->neuron_codes = elsh_arena_take(c, n_tab, 4);
    L->hist = elsh_arena_take(c, n_tab + 1, 4);
    L->counts = elsh_arena_take(c, (uint64_t)L->n_out, 2);
    L->touched = elsh_arena_take(c, (uint64_t)L->n_out + 1u, 2); /* +1: gather_counts writes one ahead */
    if (hp->select_mode == ELSH_SELECT_EXACT) L->score = elsh_arena_take(c, (uint64_t)L->n_out, 4);
}

static void carve_layer(elsh_arena *c, elsh_layer *L)
{
    uint64_t nw = (uint64_t)L->n_out * (uint64_t)L->n_in;
    L->w = elsh_arena_take(c, nw, 4);
    L->b = elsh_arena_take(c, (uint64_t)L->n_out, 4);
    L->w_g2 = elsh_arena_take(c, nw, 4);
    L->w_vel = elsh_arena_take(c, nw, 4);
    L->b_g2 = elsh_arena_take(c, (uint64_t)L->n_out, 4);
    L->b_vel = elsh_arena_take(c, (uint64_t)L->n_out, 4);
    carve_layer_outputs(c, L);
    if (!L->use_lsh) return;
    const elsh_hash_params *hp = &L->hash;

    uint64_t n_tab = (uint64_t)hp->tables;
    uint64_t n_proj = n_tab * (uint64_t)hp->bits;
    uint64_t n_bkt = n_tab * (uint64_t)hp->n_buckets;
    if (hp->family == ELSH_HASH_SIMHASH) L->proj = elsh_arena_take(c, n_proj * (uint64_t)hp->hash_dim, 4);
    if (hp->family == ELSH_HASH_TERNARY) {
        L->tern_idx = elsh_arena_take(c, n_proj * (uint64_t)hp->ternary_nnz, 2);
        L->tern_sign = elsh_arena_take(c, n_proj * (uint64_t)hp->ternary_nnz, 1);
    }
    if (hp->family == ELSH_HASH_DWTA)
        L->dwta_idx = elsh_arena_take(c, n_tab * (uint64_t)hp->dwta_per_table * (uint64_t)hp->dwta_bin, 2);
    L->bucket_ids = elsh_arena_take(c, n_bkt * (uint64_t)L->capacity, 2);
    L->bucket_len = elsh_arena_take(c, n_bkt, 2);
    L->bucket_head = elsh_arena_take(c, n_bkt, 2);
    L->bucket_seen = elsh_arena_take(c, n_bkt, 4);
    L->neuron_bucket = elsh_arena_take(c, (uint64_t)L->n_out * n_tab, 2);
    L->dirty = elsh_arena_take(c, (uint64_t)L->n_out, 1);
    L->pad_order = elsh_arena_take(c, (uint64_t)L->n_out, 2);
    L->rng = elsh_arena_take(c, 1, sizeof(elsh_prng));
    L->center = elsh_arena_take(c, (uint64_t)hp->hash_dim, 4);
    carve_layer_hash_scratch(c, L);
}

/* The network's own scratch: the input copy, the index list of a dense input, the output
 * probabilities. */
static void carve_net_scratch(elsh_arena *c, elsh_net *net)
{
    int32_t widest = net->cfg.n_in;
    for (int32_t l = 0; l < net->n_layers; l++)
        if (net->cfg.layers[l].n_out > widest) widest = net->cfg.layers[l].n_out;
    net->input_dense = elsh_arena_take(c, (uint64_t)net->cfg.n_in, 4);
    net->input_index = elsh_arena_take(c, (uint64_t)widest, 4);
    net->probs = elsh_arena_take(c, (uint64_t)net->cfg.layers[net->n_layers - 1].n_out, 4);
}

/* Derive every layer and walk the whole arena. Returns 0, or ELSH_ERR_CONFIG (a value out of
 * range, or an arena beyond the allocator's limit). */
static int carve_net(elsh_net *net, const elsh_net_config *cfg, elsh_arena *c)
{
    if (cfg->n_in < 1 || cfg->n_in > ELSH_MAX_WIDTH) return ELSH_ERR_CONFIG;
    if (cfg->n_layers < 1 || cfg->n_layers > ELSH_MAX_LAYERS) return ELSH_ERR_CONFIG;
    net->cfg = *cfg;
    net->n_layers = cfg->n_layers;
    int32_t n_in = cfg->n_in;
    for (int32_t l = 0; l < cfg->n_layers; l++) {
        if (derive_layer(&net->layers[l], &cfg->layers[l], n_in, l == cfg->n_layers - 1) != 0)
            return ELSH_ERR_CONFIG;
        n_in = cfg->layers[l].n_out;
    }
    carve_net_scratch(c, net);
    net->train_rng = elsh_arena_take(c, 1, sizeof(elsh_prng));
    net->samples_seen = elsh_arena_take(c, 1, 8);
    for (int32_t l = 0; l < cfg->n_layers; l++) carve_layer(c, &net->layers[l]);
    elsh_arena_take(c, 0, 1); /* the size, a whole number of ELSH_ARENA_ALIGN blocks */
    return c->overflow ? ELSH_ERR_CONFIG : ELSH_OK;
}

int elsh_net_plan(const elsh_net_config *cfg, size_t *arena_bytes)
{
    if (!cfg || !arena_bytes) return ELSH_ERR_NULL;
    elsh_net scratch;
    elsh_arena c;
    elsh_arena_start(&c, NULL, ELSH_ARENA_LIMIT);
    int rc = carve_net(&scratch, cfg, &c);
    if (rc != ELSH_OK) return rc;
    return elsh_arena_size(&c, arena_bytes) == 0 ? ELSH_OK : ELSH_ERR_CONFIG;
}

/* Scratch that must start in a known state; parameters are left alone. */
static void reset_scratch(elsh_net *net)
{
    memset(net->input_dense, 0, (size_t)net->cfg.n_in * sizeof(float));
    int32_t widest = net->cfg.n_in;
    for (int32_t l = 0; l < net->n_layers; l++)
        if (net->layers[l].n_out > widest) widest = net->layers[l].n_out;
    for (int32_t i = 0; i < widest; i++) net->input_index[i] = i;
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_layer *L = &net->layers[l];
        L->n_active = 0;
        L->forced = -1;
        if (!L->use_lsh) {
            for (int32_t j = 0; j < L->n_out; j++) L->active[j] = j;
            L->n_active = L->n_out;
            continue;
        }
        memset(L->hash_in, 0, (size_t)L->hash.hash_dim * sizeof(float));
        memset(L->counts, 0, (size_t)L->n_out * sizeof(uint16_t));
    }
}

int elsh_net_init(elsh_net *net, const elsh_net_config *cfg, void *arena, size_t arena_bytes)
{
    if (!net || !cfg || !arena) return ELSH_ERR_NULL;
    if (((uintptr_t)arena & (ELSH_ARENA_ALIGN - 1u)) != 0) return ELSH_ERR_ARENA;
    size_t need;
    int rc = elsh_net_plan(cfg, &need);
    if (rc != ELSH_OK) return rc;
    if (arena_bytes < need) return ELSH_ERR_ARENA;
    memset(net, 0, sizeof(*net));
    elsh_arena c;
    elsh_arena_start(&c, arena, need);
    if (carve_net(net, cfg, &c) != ELSH_OK) return ELSH_ERR_ARENA; /* cannot happen: planned */
    net->arena = arena;
    net->arena_bytes = need;
    reset_scratch(net);
    return ELSH_OK;
}

void elsh_net_carve_worker(const elsh_net *net, elsh_net *worker, elsh_arena *a)
{
    *worker = *net;
    carve_net_scratch(a, worker);
    for (int32_t l = 0; l < worker->n_layers; l++) {
        elsh_layer *L = &worker->layers[l];
        counters_reset(&L->ops);
        carve_layer_outputs(a, L);
        if (L->use_lsh) carve_layer_hash_scratch(a, L);
    }
    if (a->base && !a->overflow) reset_scratch(worker);
}

int elsh_all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(v[i] - v[i] == 0.0f)) return 0; /* false for NaN and +-inf */
    return 1;
}

static int all_below(const uint16_t *v, size_t n, uint32_t limit)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] >= limit) return 0;
    return 1;
}

static int all_non_negative(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(v[i] >= 0.0f)) return 0;
    return 1;
}

/* xoshiro's all-zero state is a fixed point: it would return 0 forever and hang rejection
 * sampling in elsh_prng_below */
static int prng_usable(const elsh_prng *rng) { return (rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) != 0; }

static int check_layer(elsh_layer *L)
{
    size_t nw = (size_t)L->n_out * (size_t)L->n_in, n_out = (size_t)L->n_out;
    if (!elsh_all_finite(L->w, nw) || !elsh_all_finite(L->b, n_out)) return 0;
    if (!elsh_all_finite(L->w_g2, nw) || !elsh_all_finite(L->w_vel, nw)) return 0;
    if (!elsh_all_finite(L->b_g2, n_out) || !elsh_all_finite(L->b_vel, n_out)) return 0;
    /* Adagrad accumulators are sums of squares: a negative one would turn sqrt into NaN */
    if (!all_non_negative(L->w_g2, nw) || !all_non_negative(L->b_g2, n_out)) return 0;
    if (!L->use_lsh) return 1;
    if (!prng_usable(L->rng)) return 0;
    const elsh_hash_params *hp = &L->hash;
    size_t T = (size_t)hp->tables, K = (size_t)hp->bits;
    uint32_t dim = (uint32_t)hp->hash_dim;
    if (L->proj && !elsh_all_finite(L->proj, T * K * (size_t)hp->hash_dim)) return 0;
    if (!elsh_all_finite(L->center, (size_t)hp->hash_dim)) return 0;
    if (L->tern_idx) {
        size_t n = T * K * (size_t)hp->ternary_nnz;
        if (!all_below(L->tern_idx, n, dim)) return 0;
        for (size_t i = 0; i < n; i++)
            if (L->tern_sign[i] != 1 && L->tern_sign[i] != -1) return 0;
    }
    if (L->dwta_idx && !all_below(L->dwta_idx, T * (size_t)hp->dwta_per_table * (size_t)hp->dwta_bin, dim))
        return 0;
    /* each neuron at most once per table, exactly where neuron_bucket says: this also bounds
     * every collision count by L, which selection relies on */
    for (size_t i = 0; i < n_out * T; i++)
        if (L->neuron_bucket[i] != ELSH_NO_BUCKET && L->neuron_bucket[i] >= hp->n_buckets) return 0;
    int ok = 1;
    for (size_t t = 0; ok && t < T; t++) {
        for (uint32_t b = 0; ok && b < (uint32_t)hp->n_buckets; b++) {
            size_t bi = t * (size_t)hp->n_buckets + b;
            int32_t len = L->bucket_len[bi];
            const uint16_t *slots = bucket_slots(L, (int32_t)t, b);
            if (len > L->capacity || L->bucket_head[bi] >= L->capacity) ok = 0;
            for (int32_t s = 0; ok && s < len; s++) {
                uint16_t j = slots[s];
                if (j >= L->n_out || L->counts[j] || L->neuron_bucket[(size_t)j * T + t] != b) ok = 0;
                else L->counts[j] = 1;
            }
        }
        memset(L->counts, 0, n_out * sizeof(uint16_t));
    }
    if (!ok) return 0;
    /* pad_order must be a permutation: mark each id once in the (all-zero) counts scratch */
    ok = all_below(L->pad_order, n_out, (uint32_t)L->n_out);
    for (size_t j = 0; ok && j < n_out; j++) {
        if (L->counts[L->pad_order[j]]) ok = 0;
        L->counts[L->pad_order[j]] = 1;
    }
    memset(L->counts, 0, n_out * sizeof(uint16_t));
    return ok;
}

int elsh_net_check(elsh_net *net)
{
    if (!net) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE; /* never initialized (elsh_net_init) */
    for (int32_t l = 0; l < net->n_layers; l++)
        if (!check_layer(&net->layers[l])) return ELSH_ERR_CORRUPT;
    /* a bound far beyond any real run, so that counting on cannot overflow */
    if (*net->samples_seen < 0 || *net->samples_seen > ((int64_t)1 << 62)) return ELSH_ERR_CORRUPT;
    if (!prng_usable(net->train_rng)) return ELSH_ERR_CORRUPT;
    return ELSH_OK;
}

int elsh_net_randomize(elsh_net *net)
{
    if (!net) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE;
    uint64_t seed = net->cfg.seed;
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_layer *L = &net->layers[l];
        elsh_prng rng;
        /* He-uniform for ReLU layers, Glorot-uniform for the softmax layer */
        float fan = L->is_output ? (float)(L->n_in + L->n_out) : (float)L->n_in;
        float limit = sqrtf(6.0f / fan);
        size_t nw = (size_t)L->n_out * (size_t)L->n_in;
        elsh_seed_stream(&rng, seed, l, ELSH_STREAM_WEIGHTS);
        for (size_t i = 0; i < nw; i++) L->w[i] = (2.0f * elsh_prng_uniform(&rng) - 1.0f) * limit;
        memset(L->b, 0, (size_t)L->n_out * sizeof(float));
        memset(L->w_g2, 0, nw * sizeof(float));
        memset(L->w_vel, 0, nw * sizeof(float));
        memset(L->b_g2, 0, (size_t)L->n_out * sizeof(float));
        memset(L->b_vel, 0, (size_t)L->n_out * sizeof(float));
        if (!L->use_lsh) continue;

        memset(L->center, 0, (size_t)L->hash.hash_dim * sizeof(float));
        elsh_seed_stream(&rng, seed, l, ELSH_STREAM_HASH);
        elsh_hash_draw(L, &rng);
        elsh_seed_stream(&rng, seed, l, ELSH_STREAM_PAD);
        elsh_draw_permutation(L->pad_order, L->n_out, &rng);
        elsh_seed_stream(L->rng, seed, l, ELSH_STREAM_TABLES);
        elsh_tables_rebuild(L);
    }
    elsh_seed_stream(net->train_rng, seed, 0, ELSH_STREAM_TRAIN);
    *net->samples_seen = 0;
    elsh_net_reset_counters(net);
    return ELSH_OK;
}

int elsh_net_set_active(elsh_net *net, float fraction)
{
    if (!net) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE;
    if (!(fraction <= 1.0f)) return ELSH_ERR_CONFIG; /* also rejects NaN */
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_layer *L = &net->layers[l];
        if (!L->use_lsh) continue;
        elsh_layer_config lc = net->cfg.layers[l];
        if (fraction > 0.0f) lc.active_fraction = fraction;
        L->k = active_k(&lc);
    }
    return ELSH_OK;
}

void elsh_net_reset_counters(elsh_net *net)
{
    if (!net) return;
    for (int32_t l = 0; l < net->n_layers; l++) counters_reset(&net->layers[l].ops);
}

elsh_ops elsh_net_ops(const elsh_net *net, int phase, int total)
{
    elsh_ops sum;
    ops_clear(&sum);
    for (int32_t l = 0; net && l < net->n_layers; l++) counters_add(&sum, &net->layers[l].ops, phase, total);
    return sum;
}

/* ---------------------------------------------------------------- forward pass and prediction */

/* Predicted class: the largest logit among the classes the layer chose itself. A label forced
 * into an LSH output while training is left out, so training accuracy is not inflated. */
static int32_t argmax_active(const elsh_layer *L)
{
    int32_t best = -1;
    for (int32_t a = 0; a < L->n_active; a++) {
        if (L->active[a] == L->forced) continue;
        if (best < 0 || L->act[a] > L->act[best]) best = a;
    }
    return best < 0 ? L->active[0] : L->active[best];
}

int elsh_net_forward(elsh_net *net, const float *x, int32_t label)
{
    return elsh_net_forward_with(net, x, label, elsh_layer_forward_f32);
}

int elsh_net_forward_with(elsh_net *net, const float *x, int32_t label, elsh_layer_forward_fn forward)
{
    if (!net || !x) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE;
    if (!elsh_all_finite(x, (size_t)net->cfg.n_in)) return ELSH_ERR_INPUT;
    const float *in_val = x;
    const int32_t *in_idx = NULL;
    int32_t in_n = net->cfg.n_in;
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_layer *L = &net->layers[l];
        forward(L, in_val, in_idx, in_n, L->is_output ? label : -1);
        in_val = L->act;
        in_idx = L->use_lsh ? L->active : NULL;
        in_n = L->n_active;
    }
    return argmax_active(&net->layers[net->n_layers - 1]);
}

/* e^x from float operations only (libm's expf differs in the last bit between C libraries,
 * and the softmax feeds every weight update): x = n ln2 + r with |r| <= ln2 / 2, e^r by its
 * degree-6 Taylor polynomial (relative error < 2e-7 there), times 2^n built exactly. */
float elsh_expf(float x)
{
    if (x < -87.0f) return 0.0f;
    if (x > 88.0f) x = 88.0f;
    float n = (float)(int32_t)(x * 1.44269504f + (x >= 0.0f ? 0.5f : -0.5f));
    float r = (x - n * 0.693359375f) + n * 2.12194440e-4f; /* ln2 = 355/512 - 2.1219444e-4 */
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6.0f + r * (1.0f / 24.0f + r * (1.0f / 120.0f + r * (1.0f / 720.0f))))));
    int32_t e = (int32_t)n;
    float scale = 1.0f; /* 2^e by repeated exact doubling/halving: |e| <= 127 */
    float step = e >= 0 ? 2.0f : 0.5f;
    for (int32_t k = e >= 0 ? e : -e; k > 0; k--) scale *= step;
    return p * scale;
}

void elsh_net_softmax(elsh_net *net)
{
    const elsh_layer *L = &net->layers[net->n_layers - 1];
    memset(net->probs, 0, (size_t)L->n_out * sizeof(float));
    float mx = L->act[0];
    for (int32_t a = 1; a < L->n_active; a++) mx = L->act[a] > mx ? L->act[a] : mx;
    float sum = 0.0f;
    for (int32_t a = 0; a < L->n_active; a++) {
        float e = elsh_expf(L->act[a] - mx);
        net->probs[L->active[a]] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (int32_t a = 0; a < L->n_active; a++) net->probs[L->active[a]] *= inv;
}

int elsh_predict(elsh_net *net, const float *x, int64_t n, int32_t *pred, float *probs)
{
    if (!net || !x || !pred) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE;
    size_t n_in = (size_t)net->cfg.n_in;
    int32_t n_cls = net->layers[net->n_layers - 1].n_out;
    for (int64_t s = 0; s < n; s++) {
        int rc = elsh_net_forward(net, x + (size_t)s * n_in, -1);
        if (rc < 0) return rc;
        pred[s] = rc;
        if (probs) {
            elsh_net_softmax(net);
            memcpy(probs + (size_t)s * (size_t)n_cls, net->probs, (size_t)n_cls * sizeof(float));
        }
    }
    return ELSH_OK;
}

/* ---------------------------------------------------------------- accessors */

/* Layer `layer` of an initialized network, or NULL. */
static const elsh_layer *layer_at(const elsh_net *net, int32_t layer)
{
    return net && net->arena && layer >= 0 && layer < net->n_layers ? &net->layers[layer] : NULL;
}

int elsh_net_layer_info(const elsh_net *net, int32_t layer, elsh_layer_summary *out)
{
    if (!net || !out) return ELSH_ERR_NULL;
    const elsh_layer *L = layer_at(net, layer);
    if (!L) return ELSH_ERR_STATE;
    *out = (elsh_layer_summary){.n_in = L->n_in, .n_out = L->n_out, .k = L->k, .use_lsh = L->use_lsh,
                                .is_output = L->is_output, .hash = L->hash, .capacity = L->capacity,
                                .insert_policy = L->insert_policy};
    return ELSH_OK;
}

int elsh_net_layer_arrays(elsh_net *net, int32_t layer, elsh_layer_arrays *out)
{
    if (!net || !out) return ELSH_ERR_NULL;
    const elsh_layer *L = layer_at(net, layer);
    if (!L) return ELSH_ERR_STATE;
    *out = (elsh_layer_arrays){.w = L->w, .b = L->b, .w_g2 = L->w_g2, .w_vel = L->w_vel, .b_g2 = L->b_g2,
                               .b_vel = L->b_vel, .proj = L->proj, .tern_idx = L->tern_idx,
                               .tern_sign = L->tern_sign, .dwta_idx = L->dwta_idx,
                               .bucket_ids = L->bucket_ids, .bucket_len = L->bucket_len,
                               .neuron_bucket = L->neuron_bucket, .pad_order = L->pad_order,
                               .center = L->center, .rng = L->rng};
    return ELSH_OK;
}

const int32_t *elsh_net_last_active(const elsh_net *net, int32_t layer, int32_t *n_active)
{
    const elsh_layer *L = layer_at(net, layer);
    if (n_active) *n_active = L ? L->n_active : 0;
    return L ? L->active : NULL;
}

elsh_ops elsh_net_layer_ops(const elsh_net *net, int32_t layer, int phase, int total)
{
    elsh_ops sum;
    ops_clear(&sum);
    const elsh_layer *L = layer_at(net, layer);
    if (L) counters_add(&sum, &L->ops, phase, total);
    return sum;
}

int elsh_net_rebuild_tables(elsh_net *net)
{
    if (!net) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE;
    for (int32_t l = 0; l < net->n_layers; l++)
        if (net->layers[l].use_lsh) elsh_tables_rebuild(&net->layers[l]);
    return ELSH_OK;
}
