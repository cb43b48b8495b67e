/* test_net.c - configuration checks, arena planning and init, randomize, determinism. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "test_util.h"

/* A valid two-layer config: 16 inputs, an LSH hidden layer of 32, a dense output of 4. */
static void base_cfg(elsh_net_config *cfg)
{
    cfg_init(cfg, 16, 2, 5u);
    cfg_lsh(&cfg->layers[0], 32, 0.25f, ELSH_HASH_SIMHASH, 4, 8);
    cfg_dense(&cfg->layers[1], 4);
}

static void mixed_cfg(elsh_net_config *cfg, uint64_t seed);
static void train_some(elsh_net *net, int rehash);

static int plan_rc(const elsh_net_config *cfg)
{
    size_t bytes = 12345;
    int rc = elsh_net_plan(cfg, &bytes);
    if (rc != ELSH_OK) CHECK_EQ_INT(bytes, 12345); /* untouched on failure */
    return rc;
}

void test_status_str(void)
{
    static const int codes[] = {ELSH_OK, ELSH_ERR_NULL, ELSH_ERR_CONFIG, ELSH_ERR_ARENA,
                                ELSH_ERR_INPUT, ELSH_ERR_STATE};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *s = elsh_status_str(codes[i]);
        CHECK(s != NULL && strlen(s) > 0);
        CHECK(strcmp(s, "unknown status") != 0);
        for (size_t j = 0; j < i; j++) CHECK(strcmp(s, elsh_status_str(codes[j])) != 0);
    }
    CHECK(strcmp(elsh_status_str(-99), "unknown status") == 0);
    CHECK(strcmp(elsh_status_str(1), "unknown status") == 0);
}

void test_plan_accepts_valid_configs(void)
{
    elsh_net_config cfg;
    base_cfg(&cfg);
    CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    /* boundary values that must be accepted (plan only: nothing is allocated) */
    base_cfg(&cfg); cfg.layers[0].hash.bits = 1; CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    base_cfg(&cfg); cfg.layers[0].hash.bits = ELSH_MAX_BITS; CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    base_cfg(&cfg); cfg.layers[0].hash.tables = 1; CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    base_cfg(&cfg); cfg.layers[0].hash.tables = ELSH_MAX_TABLES; CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    base_cfg(&cfg); cfg.layers[0].hash.pool = 16; CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    base_cfg(&cfg); cfg.layers[0].active_fraction = 1.0f; CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    base_cfg(&cfg); cfg.layers[0].active_fraction = 1e-6f; CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    base_cfg(&cfg); cfg.layers[0].hash.bucket_capacity = 1; CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    base_cfg(&cfg); cfg.layers[0].hash.insert_policy = ELSH_INSERT_RESERVOIR; CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    base_cfg(&cfg); cfg.layers[0].hash.select_mode = ELSH_SELECT_UNION; CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    base_cfg(&cfg); cfg.layers[0].hash.family = ELSH_HASH_TERNARY; cfg.layers[0].hash.ternary_nnz = 16;
    CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    base_cfg(&cfg); cfg.layers[0].hash.family = ELSH_HASH_DWTA; cfg.layers[0].hash.dwta_bin = 16;
    CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    base_cfg(&cfg); cfg.layers[0].hash.family = ELSH_HASH_DWTA; cfg.layers[0].hash.dwta_bin = 2;
    CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    /* 256 is allowed when hash_dim allows it */
    base_cfg(&cfg); cfg.n_in = 256; cfg.layers[0].hash.family = ELSH_HASH_DWTA;
    cfg.layers[0].hash.dwta_bin = 256; CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    /* the output layer may use LSH */
    base_cfg(&cfg); cfg_lsh(&cfg.layers[1], 10, 0.3f, ELSH_HASH_TERNARY, 3, 4);
    CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    /* the maximum number of layers */
    cfg_init(&cfg, 8, ELSH_MAX_LAYERS, 1u);
    for (int l = 0; l < ELSH_MAX_LAYERS; l++) cfg_dense(&cfg.layers[l], 4);
    CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    /* a valid range but a plan beyond the 1 TiB limit is refused */
    base_cfg(&cfg);
    cfg.layers[0].n_out = ELSH_MAX_WIDTH;
    cfg.layers[0].hash.bits = ELSH_MAX_BITS;
    cfg.layers[0].hash.tables = ELSH_MAX_TABLES;
    cfg.layers[0].hash.bucket_capacity = ELSH_MAX_WIDTH;
    CHECK_EQ_INT(plan_rc(&cfg), ELSH_ERR_CONFIG);
    /* a single (output) layer */
    cfg_init(&cfg, 8, 1, 1u);
    cfg_dense(&cfg.layers[0], 2);
    CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
}

void test_plan_rejects_bad_configs(void)
{
    elsh_net_config cfg;
    const float nan = (float)NAN;
#define BAD(stmt)                                                                            \
    do {                                                                                     \
        base_cfg(&cfg);                                                                      \
        stmt;                                                                                \
        CHECK_MSG(plan_rc(&cfg) == ELSH_ERR_CONFIG, "not rejected: %s", #stmt);              \
    } while (0)
    BAD(cfg.n_in = 0);
    BAD(cfg.n_in = -1);
    BAD(cfg.n_in = ELSH_MAX_WIDTH + 1);
    BAD(cfg.n_layers = 0);
    BAD(cfg.n_layers = ELSH_MAX_LAYERS + 1);
    BAD(cfg.n_layers = -3);
    BAD(cfg.layers[1].n_out = 1);                 /* output width 1 */
    BAD(cfg.layers[1].n_out = 0);
    BAD(cfg.layers[0].n_out = 0);                 /* hidden width 0 */
    BAD(cfg.layers[0].n_out = ELSH_MAX_WIDTH + 1);
    BAD(cfg.layers[0].use_lsh = 2);
    BAD(cfg.layers[0].hash.bits = 0);
    BAD(cfg.layers[0].hash.bits = 16);
    BAD(cfg.layers[0].hash.bits = -1);
    BAD(cfg.layers[0].hash.tables = 0);
    BAD(cfg.layers[0].hash.tables = 1025);
    BAD(cfg.layers[0].hash.pool = 0);
    BAD(cfg.layers[0].hash.pool = 17);            /* > n_in */
    BAD(cfg.layers[0].hash.bucket_capacity = -1);
    BAD(cfg.layers[0].hash.bucket_capacity = ELSH_MAX_WIDTH + 1);
    BAD(cfg.layers[0].active_fraction = 0.0f);
    BAD(cfg.layers[0].active_fraction = -0.5f);
    BAD(cfg.layers[0].active_fraction = nan);
    BAD(cfg.layers[0].active_fraction = 1.0001f);
    BAD(cfg.layers[0].active_fraction = (float)INFINITY);
    BAD(cfg.layers[0].hash.family = -1);
    BAD(cfg.layers[0].hash.family = 3);
    BAD(cfg.layers[0].hash.insert_policy = 2);
    BAD(cfg.layers[0].hash.insert_policy = -1);
    BAD(cfg.layers[0].hash.select_mode = 3); /* 0 topk, 1 union, 2 exact */
    BAD(cfg.layers[0].hash.select_mode = -1);
    /* DWTA bins: powers of two 2..256, no larger than hash_dim */
    BAD(cfg.layers[0].hash.family = ELSH_HASH_DWTA; cfg.layers[0].hash.dwta_bin = 3);
    BAD(cfg.layers[0].hash.family = ELSH_HASH_DWTA; cfg.layers[0].hash.dwta_bin = 1);
    BAD(cfg.layers[0].hash.family = ELSH_HASH_DWTA; cfg.layers[0].hash.dwta_bin = -8);
    BAD(cfg.layers[0].hash.family = ELSH_HASH_DWTA; cfg.layers[0].hash.dwta_bin = 32);
    BAD(cfg.n_in = 1024; cfg.layers[0].hash.family = ELSH_HASH_DWTA; cfg.layers[0].hash.dwta_bin = 512);
    /* the default bin (8) is larger than hash_dim 16/4 = 4 */
    BAD(cfg.layers[0].hash.family = ELSH_HASH_DWTA; cfg.layers[0].hash.pool = 4);
    /* ternary non-zeros no more than hash_dim */
    BAD(cfg.layers[0].hash.family = ELSH_HASH_TERNARY; cfg.layers[0].hash.ternary_nnz = 17);
    BAD(cfg.layers[0].hash.family = ELSH_HASH_TERNARY; cfg.layers[0].hash.ternary_nnz = -1);
    BAD(cfg.layers[0].hash.family = ELSH_HASH_TERNARY; cfg.layers[0].hash.pool = 4;
        cfg.layers[0].hash.ternary_nnz = 5);
    /* a bad value in the LSH output layer, and in a layer beyond the first */
    BAD(cfg_lsh(&cfg.layers[1], 4, 0.5f, ELSH_HASH_SIMHASH, 0, 4));
    BAD(cfg.n_layers = 3; cfg.layers[1] = cfg.layers[0]; cfg_lsh(&cfg.layers[1], 8, 0.5f, ELSH_HASH_SIMHASH, 3, 1025);
        cfg_dense(&cfg.layers[2], 3));
    /* pool is checked against the layer's own input width (32 here, not n_in 16) */
    base_cfg(&cfg);
    cfg.n_layers = 3;
    cfg_lsh(&cfg.layers[1], 8, 0.5f, ELSH_HASH_SIMHASH, 3, 2);
    cfg_dense(&cfg.layers[2], 3);
    cfg.layers[1].hash.pool = 32;
    CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
    cfg.layers[1].hash.pool = 33;
    CHECK_EQ_INT(plan_rc(&cfg), ELSH_ERR_CONFIG);
#undef BAD
}

void test_plan_ignores_hash_config_of_dense_layer(void)
{
    elsh_net_config cfg;
    base_cfg(&cfg);
    cfg.layers[0].use_lsh = 0;
    cfg.layers[0].hash.bits = 0;
    cfg.layers[0].hash.tables = 5000;
    cfg.layers[0].active_fraction = (float)NAN;
    CHECK_EQ_INT(plan_rc(&cfg), ELSH_OK);
}

void test_plan_null_pointers(void)
{
    elsh_net_config cfg;
    base_cfg(&cfg);
    size_t bytes = 0;
    elsh_net net;
    CHECK_EQ_INT(elsh_net_plan(NULL, &bytes), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_net_plan(&cfg, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_net_plan(&cfg, &bytes), ELSH_OK);
    void *raw;
    void *arena = aligned_zalloc(bytes, &raw);
    CHECK_EQ_INT(elsh_net_init(NULL, &cfg, arena, bytes), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_net_init(&net, NULL, arena, bytes), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_net_init(&net, &cfg, NULL, bytes), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_net_randomize(NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_net_init(&net, &cfg, arena, bytes), ELSH_OK);
    CHECK_EQ_INT(elsh_net_randomize(&net), ELSH_OK);

    float x[16] = {0};
    int32_t label = 0, pred = 0;
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    CHECK_EQ_INT(elsh_net_forward(NULL, x, -1), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_net_forward(&net, NULL, -1), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_train_sample(NULL, &tc, 0, x, 0, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_train_sample(&net, NULL, 0, x, 0, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_train_sample(&net, &tc, 0, NULL, 0, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_train_batch(NULL, &tc, 0, 1, x, &label, NULL, 1, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_train_batch(&net, NULL, 0, 1, x, &label, NULL, 1, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_train_batch(&net, &tc, 0, 1, NULL, &label, NULL, 1, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_train_batch(&net, &tc, 0, 1, x, NULL, NULL, 1, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_predict(NULL, x, 1, &pred, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_predict(&net, NULL, 1, &pred, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_predict(&net, x, 1, NULL, NULL), ELSH_ERR_NULL);
    /* bad training hyper-parameters */
    tc.lr = 0.0f;
    CHECK_EQ_INT(elsh_train_batch(&net, &tc, 0, 1, x, &label, NULL, 1, NULL), ELSH_ERR_CONFIG);
    tc.lr = (float)NAN;
    CHECK_EQ_INT(elsh_train_batch(&net, &tc, 0, 1, x, &label, NULL, 1, NULL), ELSH_ERR_CONFIG);
    elsh_train_config_default(&tc);
    CHECK_EQ_INT(elsh_train_batch(&net, &tc, 0, 1, x, &label, NULL, -1, NULL), ELSH_ERR_CONFIG);
    CHECK_EQ_INT(elsh_train_batch(&net, &tc, 0, 1, x, &label, NULL, 0, NULL), ELSH_OK);
    free(raw);
}

void test_plan_size_stable_and_grows(void)
{
    elsh_net_config cfg;
    base_cfg(&cfg);
    size_t a = 0, b = 0;
    CHECK_EQ_INT(elsh_net_plan(&cfg, &a), ELSH_OK);
    CHECK_EQ_INT(elsh_net_plan(&cfg, &b), ELSH_OK);
    CHECK_EQ_INT(a, b);
    CHECK(a > 0);
    CHECK_EQ_INT(a % 64u, 0);
    /* the seed does not change the layout */
    cfg.seed = 999u;
    CHECK_EQ_INT(elsh_net_plan(&cfg, &b), ELSH_OK);
    CHECK_EQ_INT(a, b);
    /* more tables (and more bits, wider layers, capacity) need more bytes */
    size_t prev = 0;
    static const int32_t tables[] = {1, 2, 8, 16, 64};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        base_cfg(&cfg);
        cfg.layers[0].hash.tables = tables[i];
        size_t s = 0;
        CHECK_EQ_INT(elsh_net_plan(&cfg, &s), ELSH_OK);
        CHECK_MSG(s > prev, "plan with %d tables (%zu bytes) not larger than before (%zu)",
                  (int)tables[i], s, prev);
        prev = s;
    }
    base_cfg(&cfg);
    cfg.layers[0].hash.bits = 8;
    CHECK_EQ_INT(elsh_net_plan(&cfg, &b), ELSH_OK);
    CHECK(b > a);
    base_cfg(&cfg);
    cfg.layers[0].n_out = 64;
    CHECK_EQ_INT(elsh_net_plan(&cfg, &b), ELSH_OK);
    CHECK(b > a);
    /* an LSH layer needs more than the same layer computed densely */
    base_cfg(&cfg);
    cfg.layers[0].use_lsh = 0;
    CHECK_EQ_INT(elsh_net_plan(&cfg, &b), ELSH_OK);
    CHECK(b < a);
    /* at least the parameters and optimizer state: 3 * (w + b) floats per layer */
    size_t params = 3u * 4u * (size_t)(16 * 32 + 32 + 32 * 4 + 4);
    CHECK(a >= params);
}

/* The allocator behind both arenas: aligned offsets, the same walk planned and carved, and a
 * request beyond the limit refused (including a count * size that would wrap 64 bits). */
void test_arena_allocator(void)
{
    elsh_arena a;
    elsh_arena_start(&a, NULL, 1000);
    CHECK(elsh_arena_take(&a, 3, 1) == NULL); /* planning: sizes only */
    elsh_arena_take(&a, 10, 4);
    size_t bytes = 0;
    CHECK_EQ_INT(elsh_arena_size(&a, &bytes), 0);
    CHECK_EQ_INT(bytes, 64 + 40); /* the second buffer starts at the next 64-byte boundary */

    void *raw;
    unsigned char *mem = aligned_zalloc(256, &raw);
    elsh_arena_start(&a, mem, 256);
    CHECK((unsigned char *)elsh_arena_take(&a, 3, 1) == mem);
    CHECK((unsigned char *)elsh_arena_take(&a, 10, 4) == mem + 64);
    CHECK((unsigned char *)elsh_arena_take(&a, 0, 8) == mem + 128);
    CHECK((unsigned char *)elsh_arena_take(&a, 16, 8) == mem + 128); /* exactly to the end */
    CHECK(!a.overflow);
    CHECK(elsh_arena_take(&a, 1, 1) == NULL); /* past the end: refused, and so is all after */
    CHECK(a.overflow);
    CHECK(elsh_arena_take(&a, 0, 1) == NULL);
    CHECK_EQ_INT(elsh_arena_size(&a, &bytes), -1);
    free(raw);

    elsh_arena_start(&a, NULL, UINT64_MAX); /* capped at ELSH_ARENA_LIMIT */
    CHECK(a.limit == ELSH_ARENA_LIMIT);
    elsh_arena_take(&a, (uint64_t)1 << 62, 8); /* 2^65 bytes: would wrap without the check */
    CHECK(a.overflow);
    elsh_arena_start(&a, NULL, ELSH_ARENA_LIMIT);
    elsh_arena_take(&a, ELSH_ARENA_LIMIT / 2u, 1);
    CHECK(!a.overflow);
    elsh_arena_take(&a, ELSH_ARENA_LIMIT / 2u, 1); /* exactly to the limit */
    CHECK(!a.overflow);
    elsh_arena_take(&a, 0, 1);
    CHECK(!a.overflow);
    elsh_arena_take(&a, 1, 1); /* one byte more */
    CHECK(a.overflow);
}

void test_init_arena_errors(void)
{
    elsh_net_config cfg;
    base_cfg(&cfg);
    size_t need = 0;
    CHECK_EQ_INT(elsh_net_plan(&cfg, &need), ELSH_OK);
    void *raw;
    unsigned char *arena = aligned_zalloc(need + 128u, &raw);
    elsh_net net;
    CHECK_EQ_INT(elsh_net_init(&net, &cfg, arena, 0), ELSH_ERR_ARENA);
    CHECK_EQ_INT(elsh_net_init(&net, &cfg, arena, need - 1u), ELSH_ERR_ARENA);
    CHECK_EQ_INT(elsh_net_init(&net, &cfg, arena, need / 2u), ELSH_ERR_ARENA);
    static const size_t offsets[] = {1, 4, 8, 16, 32, 63};
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++)
        CHECK_MSG(elsh_net_init(&net, &cfg, arena + offsets[i], need + 64u) == ELSH_ERR_ARENA,
                  "arena misaligned by %zu accepted", offsets[i]);
    /* the arena is not written by a failing init */
    int nonzero = 0;
    for (size_t i = 0; i < need + 128u - 64u; i++) nonzero |= arena[i] != 0;
    CHECK(!nonzero);
    /* a bad config is a config error even with a good arena */
    elsh_net_config bad = cfg;
    bad.layers[0].hash.bits = 0;
    CHECK_EQ_INT(elsh_net_init(&net, &bad, arena, need), ELSH_ERR_CONFIG);
    /* exactly the planned size, and a larger one, are fine */
    CHECK_EQ_INT(elsh_net_init(&net, &cfg, arena, need), ELSH_OK);
    CHECK_EQ_INT(net.arena_bytes, need);
    CHECK(net.arena == arena);
    CHECK_EQ_INT(elsh_net_init(&net, &cfg, arena + 64, need + 64u), ELSH_OK);
    CHECK_EQ_INT(elsh_net_randomize(&net), ELSH_OK);
    free(raw);
}

/* Every view points inside the arena, 64-byte aligned, without overlapping. */
typedef struct {
    const void *p;
    size_t bytes;
    const char *name;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return ((uintptr_t)x->p > (uintptr_t)y->p) - ((uintptr_t)x->p < (uintptr_t)y->p);
}

/* The accessors read what the layer views hold, and refuse layers that do not exist. */
void test_layer_accessors(void)
{
    elsh_net_config cfg;
    cfg_init(&cfg, 20, 2, 3u);
    cfg_lsh(&cfg.layers[0], 40, 0.2f, ELSH_HASH_DWTA, 7, 3);
    cfg.layers[0].hash.dwta_bin = 4;
    cfg.layers[0].hash.ternary_nnz = 5; /* another family's setting: ignored */
    cfg_dense(&cfg.layers[1], 3);
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    elsh_net *net = &t.net;
    elsh_layer_summary info;
    CHECK_EQ_INT(elsh_net_layer_info(net, 0, &info), ELSH_OK);
    CHECK_EQ_INT(info.n_in, 20);
    CHECK_EQ_INT(info.n_out, 40);
    CHECK_EQ_INT(info.k, 8);
    CHECK_EQ_INT(info.use_lsh, 1);
    CHECK_EQ_INT(info.capacity, 40);
    CHECK_EQ_INT(info.hash.family, ELSH_HASH_DWTA);
    CHECK_EQ_INT(info.hash.dwta_bin, 4);
    CHECK_EQ_INT(info.hash.dwta_bits, 2);
    CHECK_EQ_INT(info.hash.dwta_per_table, 4);
    CHECK_EQ_INT(info.hash.ternary_nnz, 0);
    CHECK_EQ_INT(info.hash.n_buckets, 128);
    CHECK_EQ_INT(elsh_net_layer_info(net, 1, &info), ELSH_OK);
    CHECK_EQ_INT(info.use_lsh, 0);
    CHECK_EQ_INT(info.hash.tables, 0);
    CHECK_EQ_INT(elsh_net_layer_info(net, 2, &info), ELSH_ERR_STATE);
    CHECK_EQ_INT(elsh_net_layer_info(net, -1, &info), ELSH_ERR_STATE);
    CHECK_EQ_INT(elsh_net_layer_info(NULL, 0, &info), ELSH_ERR_NULL);

    elsh_layer_arrays a;
    CHECK_EQ_INT(elsh_net_layer_arrays(net, 0, &a), ELSH_OK);
    CHECK(a.w == net->layers[0].w && a.dwta_idx == net->layers[0].dwta_idx);
    CHECK(a.proj == NULL && a.tern_idx == NULL && a.rng == net->layers[0].rng);
    CHECK_EQ_INT(elsh_net_layer_arrays(net, 1, &a), ELSH_OK);
    CHECK(a.b == net->layers[1].b && a.bucket_ids == NULL && a.center == NULL);
    CHECK_EQ_INT(elsh_net_layer_arrays(net, 2, &a), ELSH_ERR_STATE);

    float x[20] = {0};
    for (int i = 0; i < 20; i++) x[i] = (float)(i % 7);
    CHECK(elsh_net_forward(net, x, -1) >= 0);
    int32_t n_active = -1;
    const int32_t *act = elsh_net_last_active(net, 0, &n_active);
    CHECK(act == net->layers[0].active);
    CHECK_EQ_INT(n_active, 8);
    CHECK(elsh_net_last_active(net, 5, &n_active) == NULL);
    CHECK_EQ_INT(n_active, 0);
    elsh_ops o = elsh_net_layer_ops(net, 1, ELSH_PHASE_FORWARD, 0);
    CHECK_EQ_INT(o.mul, 3 * 8); /* 3 outputs over the 8 active inputs */
    o = elsh_net_layer_ops(net, 1, ELSH_PHASE_COUNT, 1);
    CHECK_EQ_INT(o.mul + o.add, 0);
    CHECK_EQ_INT(elsh_net_rebuild_tables(net), ELSH_OK);
    CHECK_EQ_INT(tables_problems(&net->layers[0], 2), 0);
    tnet_destroy(&t);
}

void test_init_layer_views(void)
{
    elsh_net_config cfg;
    cfg_init(&cfg, 20, 3, 3u);
    cfg_lsh(&cfg.layers[0], 40, 0.2f, ELSH_HASH_TERNARY, 5, 6);
    cfg.layers[0].hash.pool = 3;
    cfg_lsh(&cfg.layers[1], 24, 0.5f, ELSH_HASH_DWTA, 7, 3);
    cfg.layers[1].hash.dwta_bin = 4;
    cfg_lsh(&cfg.layers[2], 10, 0.3f, ELSH_HASH_SIMHASH, 2, 5);
    cfg.layers[2].hash.bucket_capacity = 3;
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    elsh_net *net = &t.net;
    elsh_layer *L0 = &net->layers[0], *L1 = &net->layers[1], *L2 = &net->layers[2];
    /* derived fields */
    CHECK_EQ_INT(L0->n_in, 20);
    CHECK_EQ_INT(L0->hash.hash_dim, 7);     /* ceil(20 / 3) */
    CHECK_EQ_INT(L0->hash.ternary_nnz, 3);     /* ceil(7 / 3) */
    CHECK_EQ_INT(L0->k, 8);
    CHECK_EQ_INT(L0->active_capacity, 40); /* any k up to n_out (elsh_net_set_active) */
    CHECK_EQ_INT(L0->hash.n_buckets, 32);
    CHECK_EQ_INT(L0->capacity, 40);    /* min(128, n_out) */
    CHECK(L0->proj == NULL && L0->dwta_idx == NULL && L0->tern_idx != NULL);
    CHECK_EQ_INT(L1->n_in, 40);
    CHECK_EQ_INT(L1->hash.hash_dim, 40);
    CHECK_EQ_INT(L1->hash.dwta_bits, 2);
    CHECK_EQ_INT(L1->hash.dwta_per_table, 4);  /* ceil(7 / 2) */
    CHECK_EQ_INT(L1->k, 12);
    CHECK(L1->proj == NULL && L1->tern_idx == NULL && L1->dwta_idx != NULL);
    CHECK_EQ_INT(L2->is_output, 1);
    CHECK_EQ_INT(L0->is_output, 0);
    CHECK_EQ_INT(L2->k, 3);
    CHECK_EQ_INT(L2->active_capacity, 11); /* n_out + the forced label */
    CHECK_EQ_INT(L2->capacity, 3);
    CHECK(L2->proj != NULL);

    span s[128];
    int n = 0;
#define SPAN(ptr, count)                                                                     \
    do {                                                                                     \
        if (ptr) {                                                                           \
            s[n].p = (ptr);                                                                  \
            s[n].bytes = (size_t)(count) * sizeof(*(ptr));                                   \
            s[n].name = #ptr;                                                                \
            n++;                                                                             \
        }                                                                                    \
    } while (0)
    SPAN(net->input_dense, 20);
    SPAN(net->input_index, 40);
    SPAN(net->probs, 10);
    SPAN(net->train_rng, 1);
    SPAN(net->samples_seen, 1);
    for (int l = 0; l < 3; l++) {
        elsh_layer *L = &net->layers[l];
        size_t nw = (size_t)L->n_in * (size_t)L->n_out, T = (size_t)L->hash.tables;
        size_t nb = T * (size_t)L->hash.n_buckets, np = T * (size_t)L->hash.bits;
        SPAN(L->w, nw); SPAN(L->b, L->n_out);
        SPAN(L->w_g2, nw); SPAN(L->w_vel, nw); SPAN(L->b_g2, L->n_out); SPAN(L->b_vel, L->n_out);
        SPAN(L->proj, np * (size_t)L->hash.hash_dim);
        SPAN(L->tern_idx, np * (size_t)L->hash.ternary_nnz);
        SPAN(L->tern_sign, np * (size_t)L->hash.ternary_nnz);
        SPAN(L->dwta_idx, T * (size_t)L->hash.dwta_per_table * (size_t)L->hash.dwta_bin);
        SPAN(L->bucket_ids, nb * (size_t)L->capacity);
        SPAN(L->bucket_len, nb); SPAN(L->bucket_head, nb); SPAN(L->bucket_seen, nb);
        SPAN(L->neuron_bucket, (size_t)L->n_out * T);
        SPAN(L->dirty, L->n_out); SPAN(L->pad_order, L->n_out); SPAN(L->rng, 1);
        SPAN(L->hash_in, L->hash.hash_dim); SPAN(L->codes, T); SPAN(L->neuron_codes, T);
        SPAN(L->hist, T + 1u); SPAN(L->counts, L->n_out); SPAN(L->touched, L->n_out);
        SPAN(L->active, L->active_capacity); SPAN(L->act, L->active_capacity);
        SPAN(L->delta, L->active_capacity);
    }
#undef SPAN
    qsort(s, (size_t)n, sizeof(span), span_cmp);
    uintptr_t lo = (uintptr_t)t.arena, hi = lo + t.bytes;
    for (int i = 0; i < n; i++) {
        uintptr_t p = (uintptr_t)s[i].p;
        CHECK_MSG(p % 64u == 0, "%s not 64-byte aligned", s[i].name);
        CHECK_MSG(p >= lo && p + s[i].bytes <= hi, "%s outside the arena", s[i].name);
        if (i > 0)
            CHECK_MSG((uintptr_t)s[i - 1].p + s[i - 1].bytes <= p, "%s overlaps %s", s[i - 1].name,
                      s[i].name);
    }
    tnet_destroy(&t);
}

/* k = max(1, round(active_fraction * n_out)), at most n_out; k = n_out for dense layers. */
void test_active_k_rounding(void)
{
    static const struct {
        int32_t n_out;
        float frac;
        int32_t k;
    } cases[] = {{10, 0.25f, 3}, {10, 0.24f, 2}, {10, 0.26f, 3}, {10, 0.01f, 1}, {10, 1.0f, 10},
                 {10, 0.96f, 10}, {40, 0.25f, 10}, {7, 0.5f, 4}, {1000, 0.001f, 1}, {3, 0.1f, 1}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        elsh_net_config cfg;
        cfg_init(&cfg, 8, 2, 1u);
        cfg_lsh(&cfg.layers[0], cases[c].n_out, cases[c].frac, ELSH_HASH_SIMHASH, 2, 2);
        cfg_lsh(&cfg.layers[1], cases[c].n_out < 2 ? 2 : cases[c].n_out, cases[c].frac, ELSH_HASH_SIMHASH, 2, 2);
        size_t bytes = 0;
        CHECK_EQ_INT(elsh_net_plan(&cfg, &bytes), ELSH_OK);
        void *raw;
        void *arena = aligned_zalloc(bytes, &raw);
        CHECK_MSG(arena != NULL, "out of memory: %lu bytes", (unsigned long)bytes);
        if (!arena) continue;
        elsh_net net;
        CHECK_EQ_INT(elsh_net_init(&net, &cfg, arena, bytes), ELSH_OK);
        CHECK_MSG(net.layers[0].k == cases[c].k, "n_out %d fraction %g: k %d, expected %d", (int)cases[c].n_out,
                  (double)cases[c].frac, (int)net.layers[0].k, (int)cases[c].k);
        CHECK_EQ_INT(net.layers[0].active_capacity, net.layers[0].n_out);
        CHECK_EQ_INT(net.layers[1].active_capacity, net.layers[1].n_out + 1);
        /* elsh_net_set_active: any fraction, then back to the configured k */
        CHECK_EQ_INT(elsh_net_set_active(&net, 1.0f), ELSH_OK);
        CHECK_EQ_INT(net.layers[0].k, net.layers[0].n_out);
        CHECK_EQ_INT(elsh_net_set_active(&net, 1.5f), ELSH_ERR_CONFIG);
        CHECK_EQ_INT(elsh_net_set_active(&net, 0.0f), ELSH_OK);
        CHECK_EQ_INT(net.layers[0].k, cases[c].k);
        free(raw);
    }
    elsh_net_config cfg;
    base_cfg(&cfg);
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    CHECK_EQ_INT(t.net.layers[1].k, 4);
    CHECK_EQ_INT(t.net.layers[1].n_active, 4);
    for (int32_t j = 0; j < 4; j++) CHECK_EQ_INT(t.net.layers[1].active[j], j);
    tnet_destroy(&t);
}

/* Saving the arena saves the model: a copy attached with elsh_net_init (no randomize) keeps
 * every parameter, table and PRNG, predicts the same and trains on identically. */
void test_init_attaches_saved_arena(void)
{
    elsh_net_config cfg;
    mixed_cfg(&cfg, 4242u);
    tnet a;
    CHECK_EQ_INT(tnet_create(&a, &cfg), ELSH_OK);
    if (!a.raw) return;
    train_some(&a.net, 1);
    void *raw;
    unsigned char *copy = aligned_zalloc(a.bytes, &raw);
    memcpy(copy, a.arena, a.bytes);
    elsh_net b;
    CHECK_EQ_INT(elsh_net_init(&b, &cfg, copy, a.bytes), ELSH_OK);
    for (int l = 0; l < 3; l++) {
        const elsh_layer *La = &a.net.layers[l], *Lb = &b.layers[l];
        size_t nw = (size_t)La->n_in * (size_t)La->n_out * sizeof(float);
        CHECK(memcmp(La->w, Lb->w, nw) == 0);
        CHECK(memcmp(La->w_g2, Lb->w_g2, nw) == 0);
        CHECK(memcmp(La->w_vel, Lb->w_vel, nw) == 0);
        CHECK(memcmp(La->b, Lb->b, (size_t)La->n_out * sizeof(float)) == 0);
        size_t nb = (size_t)La->hash.tables * (size_t)La->hash.n_buckets;
        CHECK(memcmp(La->bucket_ids, Lb->bucket_ids, nb * (size_t)La->capacity * 2u) == 0);
        CHECK(memcmp(La->bucket_len, Lb->bucket_len, nb * 2u) == 0);
        CHECK(memcmp(La->neuron_bucket, Lb->neuron_bucket, (size_t)La->n_out * (size_t)La->hash.tables * 2u) == 0);
        CHECK(memcmp(La->rng, Lb->rng, sizeof(elsh_prng)) == 0);
        CHECK(memcmp(La->dirty, Lb->dirty, (size_t)La->n_out) == 0);
        CHECK_EQ_INT(tables_problems(&b.layers[l], 0), 0);
    }
    CHECK_EQ_INT(*b.samples_seen, *a.net.samples_seen);
    CHECK(memcmp(b.train_rng, a.net.train_rng, sizeof(elsh_prng)) == 0);
    enum { N = 20 };
    float x[N * 24];
    int32_t labels[N], pa[N], pb[N];
    make_blobs(x, labels, N, 24, 6, 3.0f, 5u);
    CHECK_EQ_INT(elsh_predict(&a.net, x, N, pa, NULL), ELSH_OK);
    CHECK_EQ_INT(elsh_predict(&b, x, N, pb, NULL), ELSH_OK);
    CHECK(memcmp(pa, pb, sizeof(pa)) == 0);
    train_some(&a.net, 0);
    train_some(&b, 0);
    CHECK(memcmp(a.arena, copy, a.bytes) == 0);
    free(raw);
    tnet_destroy(&a);
}

void test_randomize_initial_state(void)
{
    elsh_net_config cfg;
    base_cfg(&cfg);
    cfg.layers[0].hash.bucket_capacity = 4; /* force some evictions */
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    for (int l = 0; l < 2; l++) {
        elsh_layer *L = &t.net.layers[l];
        double limit = L->is_output ? sqrt(6.0 / (L->n_in + L->n_out)) : sqrt(6.0 / L->n_in);
        size_t nw = (size_t)L->n_in * (size_t)L->n_out;
        double sum = 0.0, mx = 0.0;
        for (size_t i = 0; i < nw; i++) {
            CHECK(fabs(L->w[i]) <= limit);
            CHECK(L->w_g2[i] == 0.0f && L->w_vel[i] == 0.0f);
            sum += L->w[i];
            if (fabs(L->w[i]) > mx) mx = fabs(L->w[i]);
        }
        CHECK(fabs(sum / (double)nw) < 0.25 * limit);
        CHECK(mx > 0.8 * limit);
        for (int32_t j = 0; j < L->n_out; j++)
            CHECK(L->b[j] == 0.0f && L->b_g2[j] == 0.0f && L->b_vel[j] == 0.0f);
    }
    elsh_layer *L = &t.net.layers[0];
    CHECK_EQ_INT(tables_problems(L, 2), 0);
    for (int32_t j = 0; j < L->n_out; j++) {
        CHECK_EQ_INT(L->dirty[j], 0);
        CHECK_EQ_INT(L->counts[j], 0);
    }
    for (int32_t i = 0; i < L->hash.hash_dim; i++) CHECK(L->hash_in[i] == 0.0f);
    CHECK_EQ_INT(*t.net.samples_seen, 0);
    tnet_destroy(&t);
}

/* A config that exercises every family, pooling, reservoir insertion and an LSH output. */
static void mixed_cfg(elsh_net_config *cfg, uint64_t seed)
{
    cfg_init(cfg, 24, 3, seed);
    cfg_lsh(&cfg->layers[0], 48, 0.25f, ELSH_HASH_SIMHASH, 4, 6);
    cfg->layers[0].hash.pool = 2;
    cfg->layers[0].hash.bucket_capacity = 6;
    cfg->layers[0].hash.insert_policy = ELSH_INSERT_RESERVOIR;
    cfg_lsh(&cfg->layers[1], 32, 0.5f, ELSH_HASH_TERNARY, 3, 5);
    cfg->layers[1].hash.bucket_capacity = 5;
    cfg->layers[1].hash.select_mode = ELSH_SELECT_UNION;
    cfg_lsh(&cfg->layers[2], 6, 0.5f, ELSH_HASH_DWTA, 2, 4);
    cfg->layers[2].hash.dwta_bin = 4;
}

static void train_some(elsh_net *net, int rehash)
{
    enum { N = 60, NIN = 24 };
    static float x[N * NIN];
    static int32_t labels[N];
    make_blobs(x, labels, N, NIN, 6, 3.0f, 77u);
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    tc.rebuild = ELSH_REBUILD_EVERY;
    tc.rebuild_every = 7;
    tc.rehash_every = rehash ? 25 : 0;
    int32_t order[N];
    elsh_train_stats st;
    memset(&st, 0, sizeof(st));
    for (int32_t e = 0; e < 2; e++) {
        elsh_shuffle(net, order, N);
        CHECK_EQ_INT(elsh_train_batch(net, &tc, e, N, x, labels, order, N, &st), ELSH_OK);
    }
    CHECK_EQ_INT(st.samples, 2 * N);
    CHECK(st.rebuilds > 0);
    if (rehash) CHECK(st.rehashes > 0);
}

void test_determinism_randomize(void)
{
    elsh_net_config cfg;
    mixed_cfg(&cfg, 2024u);
    tnet a, b;
    CHECK_EQ_INT(tnet_create(&a, &cfg), ELSH_OK);
    CHECK_EQ_INT(tnet_create(&b, &cfg), ELSH_OK);
    if (!a.raw || !b.raw) return;
    CHECK_EQ_INT(a.bytes, b.bytes);
    CHECK(memcmp(a.arena, b.arena, a.bytes) == 0);
    /* randomizing again gives the same arena back */
    CHECK_EQ_INT(elsh_net_randomize(&a.net), ELSH_OK);
    CHECK(memcmp(a.arena, b.arena, a.bytes) == 0);
    /* the same bytes predict the same */
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)(i % 5) - 2.0f;
    int pa = elsh_net_forward(&a.net, x, -1), pb = elsh_net_forward(&b.net, x, -1);
    CHECK_EQ_INT(pa, pb);
    CHECK(pa >= 0 && pa < 6);
    tnet_destroy(&a);
    tnet_destroy(&b);
}

void test_determinism_training(void)
{
    for (int rehash = 0; rehash < 2; rehash++) {
        elsh_net_config cfg;
        mixed_cfg(&cfg, 31337u);
        tnet a, b;
        CHECK_EQ_INT(tnet_create(&a, &cfg), ELSH_OK);
        CHECK_EQ_INT(tnet_create(&b, &cfg), ELSH_OK);
        if (!a.raw || !b.raw) return;
        train_some(&a.net, rehash);
        train_some(&b.net, rehash);
        CHECK_MSG(memcmp(a.arena, b.arena, a.bytes) == 0, "arenas differ after training (rehash %d)", rehash);
        /* training changed the weights, and kept the tables consistent */
        elsh_net fresh;
        tnet c;
        CHECK_EQ_INT(tnet_create(&c, &cfg), ELSH_OK);
        fresh = c.net;
        size_t nw = (size_t)24 * 48u;
        CHECK(memcmp(a.net.layers[0].w, fresh.layers[0].w, nw * sizeof(float)) != 0);
        CHECK_EQ_INT(*a.net.samples_seen, 120);
        for (int l = 0; l < 3; l++) CHECK_EQ_INT(tables_problems(&a.net.layers[l], 0), 0);
        tnet_destroy(&a);
        tnet_destroy(&b);
        tnet_destroy(&c);
    }
}

void test_different_seed_different_weights(void)
{
    elsh_net_config cfg;
    mixed_cfg(&cfg, 1u);
    tnet a, b;
    CHECK_EQ_INT(tnet_create(&a, &cfg), ELSH_OK);
    cfg.seed = 2u;
    CHECK_EQ_INT(tnet_create(&b, &cfg), ELSH_OK);
    if (!a.raw || !b.raw) return;
    CHECK(memcmp(a.arena, b.arena, a.bytes) != 0);
    for (int l = 0; l < 3; l++) {
        const elsh_layer *La = &a.net.layers[l], *Lb = &b.net.layers[l];
        size_t nw = (size_t)La->n_in * (size_t)La->n_out, same = 0;
        for (size_t i = 0; i < nw; i++) same += La->w[i] == Lb->w[i];
        CHECK_MSG(same < nw / 100u + 1u, "layer %d: %zu of %zu weights equal", l, same, nw);
        CHECK(memcmp(La->pad_order, Lb->pad_order, (size_t)La->n_out * 2u) != 0);
    }
    CHECK(memcmp(a.net.layers[0].proj, b.net.layers[0].proj,
                 (size_t)6 * 4u * 12u * sizeof(float)) != 0);
    /* the seed's 32 high bits matter too */
    cfg.seed = 1u | ((uint64_t)1 << 40);
    tnet c;
    CHECK_EQ_INT(tnet_create(&c, &cfg), ELSH_OK);
    if (c.raw) CHECK(memcmp(a.net.layers[0].w, c.net.layers[0].w, 24u * 48u * sizeof(float)) != 0);
    tnet_destroy(&a);
    tnet_destroy(&b);
    tnet_destroy(&c);
}

void test_reset_counters(void)
{
    elsh_net_config cfg;
    base_cfg(&cfg);
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    float x[16];
    for (int i = 0; i < 16; i++) x[i] = (float)i * 0.1f - 0.7f;
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    float loss = -1.0f;
    CHECK(elsh_train_sample(&t.net, &tc, 0, x, 2, &loss) >= 0);
    CHECK(loss > 0.0f);
    for (int p = 0; p < ELSH_PHASE_TABLES; p++) {
        elsh_ops o = elsh_net_ops(&t.net, p, 1);
        CHECK_MSG(o.add > 0, "phase %d counted nothing", p);
    }
    elsh_net_reset_counters(&t.net);
    for (int p = 0; p < ELSH_PHASE_COUNT; p++)
        for (int total = 0; total < 2; total++) {
            elsh_ops o = elsh_net_ops(&t.net, p, total);
            CHECK(o.mul == 0 && o.add == 0 && o.cmp == 0 && o.weight_bytes == 0 && o.table_bytes == 0);
        }
    elsh_ops bad = elsh_net_ops(&t.net, ELSH_PHASE_COUNT, 1);
    CHECK(bad.mul == 0 && bad.add == 0);
    bad = elsh_net_ops(&t.net, -1, 0);
    CHECK(bad.mul == 0 && bad.add == 0);
    tnet_destroy(&t);
}
