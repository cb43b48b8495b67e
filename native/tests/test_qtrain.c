/* test_qtrain.c - the fixed-point training step (train_q.c) on the structure-aware generator's
 * random valid models (fuzz/elsh_gen.h: every hash family, stored tables that need not be
 * canonical, membership bits, int8 and int16 weights), under the sanitizers with make
 * test-asan: the invariants the step must keep (tables a partition of their members with
 * unchanged sizes, inference weights derived from the masters, frozen layers untouched),
 * a save that the reader accepts and that predicts what the trained network predicts, the
 * same bytes from the same seed, and the API's guards. Bit-exactness against the numpy
 * oracle is tests/test_qtrain.py. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "test_util.h"
#include "../fuzz/elsh_gen.h"

typedef struct {
    elsh_qnet net;
    elsh_qtrain tr;
    void *arena_raw, *train_raw, *file_raw;
    uint8_t *file;
} trained;

static int train_model(trained *t, const uint8_t *bytes, size_t size, const elsh_qtrain_config *cfg,
                       uint64_t data_seed, int steps)
{
    memset(t, 0, sizeof *t);
    t->file = aligned_zalloc(size, &t->file_raw);
    memcpy(t->file, bytes, size);
    size_t need, tneed;
    if (elsh_model_open(&t->net, t->file, size, &need) != ELSH_OK) return -1;
    void *arena = aligned_zalloc(need ? need : 64, &t->arena_raw);
    if (elsh_model_attach(&t->net, arena, need) != ELSH_OK) return -2;
    if (elsh_qtrain_plan(&t->net, cfg, &tneed) != ELSH_OK) return -3;
    void *tarena = aligned_zalloc(tneed ? tneed : 64, &t->train_raw);
    if (elsh_qtrain_attach(&t->tr, &t->net, cfg, tarena, tneed) != ELSH_OK) return -4;
    elsh_prng r;
    elsh_prng_seed(&r, data_seed);
    int8_t x[1200];
    for (int s = 0; s < steps; s++) {
        for (int32_t i = 0; i < t->net.n_in; i++)
            x[i] = s % 4 == 0 ? (int8_t)t->net.layers[0].in_zero : (int8_t)((int32_t)elsh_prng_below(&r, 256) - 128);
        int rc = elsh_qtrain_step(&t->tr, x, (int32_t)elsh_prng_below(&r, (uint32_t)t->net.n_classes));
        if (rc < 0 || rc >= t->net.n_classes) return -5;
    }
    return 0;
}

/* The generator's file in a 16-byte aligned buffer (malloc aligns to 8 on 32-bit targets);
 * free(*raw) releases it. */
static uint8_t *aligned_file(elsh_prng *r, const gen_model *m, size_t *size, void **raw)
{
    uint8_t *g = gen_file_of(m, r, size);
    uint8_t *b = aligned_zalloc(*size, raw);
    memcpy(b, g, *size);
    free(g);
    return b;
}

static void free_trained(trained *t)
{
    free(t->arena_raw);
    free(t->train_raw);
    free(t->file_raw);
}

static void random_config(elsh_prng *r, elsh_qtrain_config *cfg, const elsh_qnet *net)
{
    elsh_qtrain_config_default(cfg, net);
    cfg->optimizer = (int32_t)elsh_prng_below(r, 2);
    cfg->momentum_q15 = elsh_prng_below(r, 2) ? (int32_t)elsh_prng_below(r, 32768) : 0;
    cfg->train_layers = (int32_t)elsh_prng_below(r, (uint32_t)net->n_layers + 1u);
    for (int l = 0; l < ELSH_MAX_LAYERS; l++) {
        cfg->lr_w[l] = (int32_t)(elsh_prng_u32(r) >> 1);
        cfg->lr_b[l] = (int32_t)(elsh_prng_u32(r) >> 1);
        cfg->lr_w_shift[l] = (int32_t)elsh_prng_below(r, 63);
        cfg->lr_b_shift[l] = (int32_t)elsh_prng_below(r, 63);
    }
    cfg->seed = elsh_prng_u32(r);
}

/* Each table holds each of its members once, in the bucket of... any (tables may be
 * non-canonical); sizes unchanged; every id < n_out. */
static int tables_ok(const elsh_qlayer *L, const uint32_t *sizes)
{
    uint64_t B = (uint64_t)L->hash.n_buckets;
    uint8_t *seen = calloc((size_t)L->n_out, 1);
    int ok = 1;
    for (int32_t t = 0; t < L->hash.tables && ok; t++) {
        memset(seen, 0, (size_t)L->n_out);
        for (uint64_t b = 0; b < B; b++)
            if (L->tab_offsets[(uint64_t)t * B + b + 1u] < L->tab_offsets[(uint64_t)t * B + b]) ok = 0;
        uint32_t lo = L->tab_offsets[(uint64_t)t * B], hi = L->tab_offsets[(uint64_t)(t + 1) * B];
        if (hi - lo != sizes[t]) ok = 0;
        for (uint32_t i = lo; i < hi && ok; i++) {
            if (L->tab_ids[i] >= L->n_out || seen[L->tab_ids[i]]) ok = 0;
            else seen[L->tab_ids[i]] = 1;
        }
    }
    free(seen);
    return ok;
}

void test_qtrain_random_models_keep_invariants_and_save(void)
{
    elsh_prng r;
    elsh_prng_seed(&r, 2026);
    int trained_models = 0, saved_ok = 0;
    for (int it = 0; it < 60; it++) {
        gen_model m;
        gen_random_model(&r, &m, 0);
        size_t size;
        void *bytes_raw;
        uint8_t *bytes = aligned_file(&r, &m, &size, &bytes_raw);
        elsh_qnet probe;
        size_t need;
        if (elsh_model_open(&probe, bytes, size, &need) != ELSH_OK) { /* gen makes valid files */
            CHECK_MSG(0, "iteration %d: the generator's file was rejected", it);
            free(bytes_raw);
            continue;
        }
        elsh_qtrain_config cfg;
        random_config(&r, &cfg, &probe);
        /* table sizes before training */
        uint32_t sizes[ELSH_MAX_LAYERS][64];
        trained t;
        int rc = train_model(&t, bytes, size, &cfg, (uint64_t)it, 0);
        CHECK_EQ_INT(rc, 0);
        for (int32_t l = 0; l < t.net.n_layers; l++) {
            const elsh_qlayer *L = &t.net.layers[l];
            if (!L->use_lsh || L->hash.tables > 64) continue;
            uint64_t B = (uint64_t)L->hash.n_buckets;
            for (int32_t tb = 0; tb < L->hash.tables; tb++)
                sizes[l][tb] = L->tab_offsets[(uint64_t)(tb + 1) * B] - L->tab_offsets[(uint64_t)tb * B];
        }
        free_trained(&t);
        rc = train_model(&t, bytes, size, &cfg, (uint64_t)it, 12);
        CHECK_EQ_INT(rc, 0);
        if (rc) {
            free(bytes_raw);
            continue;
        }
        trained_models++;
        int32_t first = cfg.train_layers == 0 ? 0 : t.net.n_layers - cfg.train_layers;
        for (int32_t l = 0; l < t.net.n_layers; l++) {
            const elsh_qlayer *L = &t.net.layers[l];
            elsh_qtrain_layer_view v;
            CHECK_EQ_INT(elsh_qtrain_layer_state(&t.tr, l, &v), ELSH_OK);
            CHECK_EQ_INT(v.trainable, l >= first);
            if (l < first) { /* frozen: still read from the file */
                const uint8_t *w = L->w8 ? (const uint8_t *)L->w8 : (const uint8_t *)L->w16;
                const uint8_t *b = (const uint8_t *)L->bias;
                CHECK(w >= t.file && w < t.file + size && b >= t.file && b < t.file + size);
            } else {
                size_t nw = (size_t)L->n_in * (size_t)L->n_out;
                int derived = 1;
                for (size_t w = 0; w < nw; w++) {
                    int32_t mv = v.master[w];
                    if (mv < -32767 || mv > 32767) derived = 0;
                    if (L->weight_bits == 8) {
                        int32_t q = (mv + 128) >= 0 ? (mv + 128) >> 8 : -((-(mv + 128) + 255) >> 8);
                        q = q > 127 ? 127 : q < -127 ? -127 : q;
                        if (q != ((const int8_t *)v.weights)[w]) derived = 0;
                    } else if (mv != ((const int16_t *)v.weights)[w]) {
                        derived = 0;
                    }
                }
                CHECK_MSG(derived, "iteration %d layer %d: inference weights not derived from masters", it, (int)l);
            }
            if (L->use_lsh && L->hash.tables <= 64)
                CHECK_MSG(tables_ok(L, sizes[l]), "iteration %d layer %d: tables broken", it, (int)l);
        }
        /* the save: accepted by the reader, same predictions, same bytes from the same seed */
        size_t out_size = 0;
        size_t model_size = 0;
        CHECK_EQ_INT(elsh_qtrain_save_model(&t.tr, NULL, 0, &model_size), ELSH_OK);
        CHECK_EQ_INT(elsh_qtrain_save(&t.tr, NULL, 0, &out_size), ELSH_OK);
        CHECK(out_size > model_size);
        void *raw_a;
        uint8_t *saved = aligned_zalloc(out_size, &raw_a);
        CHECK_EQ_INT(elsh_qtrain_save(&t.tr, saved, out_size - 1u, &out_size), ELSH_ERR_ARENA);
        CHECK_EQ_INT(elsh_qtrain_save(&t.tr, saved, out_size, &out_size), ELSH_OK);
        elsh_qnet back;
        size_t bneed;
        if (elsh_model_open(&back, saved, out_size, &bneed) == ELSH_OK) {
            CHECK(back.train_state != NULL);
            void *braw;
            void *barena = aligned_zalloc(bneed ? bneed : 64, &braw);
            CHECK_EQ_INT(elsh_model_attach(&back, barena, bneed), ELSH_OK);
            int8_t x[1200];
            int same = 1;
            for (int s = 0; s < 4; s++) {
                for (int32_t i = 0; i < back.n_in; i++) x[i] = (int8_t)((int32_t)elsh_prng_below(&r, 256) - 128);
                int pa = elsh_qnet_forward(&back, x), pb = elsh_qnet_forward(&t.net, x);
                if (pa != pb ||
                    memcmp(elsh_qnet_logits(&back), elsh_qnet_logits(&t.net), (size_t)back.n_classes * 4u) != 0)
                    same = 0;
            }
            CHECK_MSG(same, "iteration %d: the saved model predicts differently", it);
            saved_ok++;
            free(braw);
        } else {
            CHECK_MSG(0, "iteration %d: the saved file was rejected", it);
        }
        trained t2;
        CHECK_EQ_INT(train_model(&t2, bytes, size, &cfg, (uint64_t)it, 12), 0);
        void *raw_b;
        uint8_t *saved2 = aligned_zalloc(out_size, &raw_b);
        CHECK_EQ_INT(elsh_qtrain_save(&t2.tr, saved2, out_size, &out_size), ELSH_OK);
        CHECK(memcmp(saved, saved2, out_size) == 0);
        /* resuming from the saved state continues the run: 12 + 12 steps = 24 straight */
        {
            elsh_qtrain_config rcfg = cfg;
            rcfg.resume = 1;
            trained t3, t4;
            CHECK_EQ_INT(train_model(&t3, saved, out_size, &rcfg, 1000u + (uint64_t)it, 12), 0);
            CHECK_EQ_INT(train_model(&t4, bytes, size, &cfg, (uint64_t)it, 12), 0);
            elsh_prng rr;
            elsh_prng_seed(&rr, 1000u + (uint64_t)it);
            int8_t xx[1200];
            for (int s = 0; s < 12; s++) {
                for (int32_t i = 0; i < t4.net.n_in; i++)
                    xx[i] = s % 4 == 0 ? (int8_t)t4.net.layers[0].in_zero
                                       : (int8_t)((int32_t)elsh_prng_below(&rr, 256) - 128);
                CHECK(elsh_qtrain_step(&t4.tr, xx, (int32_t)elsh_prng_below(&rr, (uint32_t)t4.net.n_classes)) >= 0);
            }
            size_t s3 = 0, s4 = 0;
            elsh_qtrain_save(&t3.tr, NULL, 0, &s3);
            elsh_qtrain_save(&t4.tr, NULL, 0, &s4);
            void *r3, *r4;
            uint8_t *b3 = aligned_zalloc(s3, &r3), *b4 = aligned_zalloc(s4, &r4);
            CHECK_EQ_INT(elsh_qtrain_save(&t3.tr, b3, s3, &s3), ELSH_OK);
            CHECK_EQ_INT(elsh_qtrain_save(&t4.tr, b4, s4, &s4), ELSH_OK);
            CHECK_MSG(s3 == s4 && memcmp(b3, b4, s3) == 0, "iteration %d: resumed run differs", it);
            free(r3);
            free(r4);
            free_trained(&t3);
            free_trained(&t4);
        }
        free(raw_a);
        free(raw_b);
        free_trained(&t2);
        free_trained(&t);
        free(bytes_raw);
    }
    CHECK(trained_models >= 50);
    CHECK_EQ_INT(saved_ok, trained_models);
}

void test_qtrain_guards(void)
{
    elsh_prng r;
    elsh_prng_seed(&r, 7);
    gen_model m;
    gen_random_model(&r, &m, 0);
    size_t size;
    void *bytes_raw;
    uint8_t *bytes = aligned_file(&r, &m, &size, &bytes_raw);
    elsh_qtrain_config cfg;
    elsh_qtrain tr;
    memset(&tr, 0, sizeof tr);
    int8_t x[64] = {0};
    CHECK_EQ_INT(elsh_qtrain_config_default(NULL, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_qtrain_step(&tr, x, 0), ELSH_ERR_STATE);
    CHECK_EQ_INT(elsh_qtrain_step(NULL, x, 0), ELSH_ERR_NULL);
    trained t;
    elsh_qnet probe;
    size_t need;
    CHECK_EQ_INT(elsh_model_open(&probe, bytes, size, &need), ELSH_OK);
    elsh_qtrain_config_default(&cfg, &probe);
    size_t tneed;
    CHECK_EQ_INT(elsh_qtrain_plan(NULL, &cfg, &tneed), ELSH_ERR_NULL);
    cfg.optimizer = 9;
    CHECK_EQ_INT(elsh_qtrain_plan(&probe, &cfg, &tneed), ELSH_ERR_CONFIG);
    elsh_qtrain_config_default(&cfg, &probe);
    cfg.train_layers = probe.n_layers + 1;
    CHECK_EQ_INT(elsh_qtrain_plan(&probe, &cfg, &tneed), ELSH_ERR_CONFIG);
    elsh_qtrain_config_default(&cfg, &probe);
    cfg.momentum_q15 = 32768;
    CHECK_EQ_INT(elsh_qtrain_plan(&probe, &cfg, &tneed), ELSH_ERR_CONFIG);
    elsh_qtrain_config_default(&cfg, &probe);
    cfg.lr_w_shift[0] = 63;
    CHECK_EQ_INT(elsh_qtrain_plan(&probe, &cfg, &tneed), ELSH_ERR_CONFIG);
    elsh_qtrain_config_default(&cfg, &probe);
    /* attach before the model's attach */
    CHECK_EQ_INT(elsh_qtrain_plan(&probe, &cfg, &tneed), ELSH_OK);
    void *raw;
    void *ta = aligned_zalloc(tneed + 64, &raw);
    CHECK_EQ_INT(elsh_qtrain_attach(&tr, &probe, &cfg, ta, tneed), ELSH_ERR_STATE);
    CHECK_EQ_INT(train_model(&t, bytes, size, &cfg, 1, 0), 0);
    elsh_qtrain tr2;
    CHECK_EQ_INT(elsh_qtrain_attach(&tr2, &t.net, &cfg, (uint8_t *)ta + 1, tneed), ELSH_ERR_ARENA);
    if (tneed > 0) CHECK_EQ_INT(elsh_qtrain_attach(&tr2, &t.net, &cfg, ta, tneed - 1u), ELSH_ERR_ARENA);
    CHECK_EQ_INT(elsh_qtrain_step(&t.tr, NULL, 0), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_qtrain_step(&t.tr, x, -1), ELSH_ERR_INPUT);
    CHECK_EQ_INT(elsh_qtrain_step(&t.tr, x, t.net.n_classes), ELSH_ERR_INPUT);
    elsh_qtrain_layer_view v;
    CHECK_EQ_INT(elsh_qtrain_layer_state(&t.tr, t.net.n_layers, &v), ELSH_ERR_STATE);
    CHECK_EQ_INT(elsh_qtrain_layer_state(&t.tr, 0, NULL), ELSH_ERR_NULL);
    uint32_t st[4];
    uint64_t steps;
    CHECK_EQ_INT(elsh_qtrain_progress(&t.tr, st, &steps), ELSH_OK);
    CHECK_EQ_INT(steps, 0);
    CHECK_EQ_INT(elsh_qtrain_save(&t.tr, NULL, 0, NULL), ELSH_ERR_NULL);
    /* integer rates from a float one */
    elsh_qtrain_config rc;
    elsh_qtrain_config_default(&rc, &t.net);
    /* new rates for an attached trainer: checked, and a bad one leaves the trainer as it was */
    CHECK_EQ_INT(elsh_qtrain_set_rates(NULL, &rc), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_qtrain_set_rates(&t.tr, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_qtrain_set_rates(&tr, &rc), ELSH_ERR_STATE);
    rc.lr_w[0] = 12345;
    rc.lr_b_shift[ELSH_MAX_LAYERS - 1] = 63;
    CHECK_EQ_INT(elsh_qtrain_set_rates(&t.tr, &rc), ELSH_ERR_CONFIG);
    CHECK_EQ_INT(t.tr.cfg.lr_w[0], cfg.lr_w[0]);
    rc.lr_b_shift[ELSH_MAX_LAYERS - 1] = 62;
    rc.lr_w[1] = -1;
    CHECK_EQ_INT(elsh_qtrain_set_rates(&t.tr, &rc), ELSH_ERR_CONFIG);
    rc.lr_w[1] = 7;
    CHECK_EQ_INT(elsh_qtrain_set_rates(&t.tr, &rc), ELSH_OK);
    CHECK_EQ_INT(t.tr.cfg.lr_w[0], 12345);
    CHECK_EQ_INT(t.tr.cfg.lr_w[1], 7);
    CHECK_EQ_INT(t.tr.cfg.lr_b_shift[ELSH_MAX_LAYERS - 1], 62);
    elsh_qtrain_config_default(&rc, &t.net);
    CHECK_EQ_INT(elsh_qtrain_rates(NULL, ELSH_QTRAIN_SGD, 0.01, &rc), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_qtrain_rates(&t.net, 7, 0.01, &rc), ELSH_ERR_CONFIG);
    CHECK_EQ_INT(elsh_qtrain_rates(&t.net, ELSH_QTRAIN_SGD, 0.0, &rc), ELSH_ERR_CONFIG);
    CHECK_EQ_INT(elsh_qtrain_rates(&t.net, ELSH_QTRAIN_SGD, -1.0, &rc), ELSH_ERR_CONFIG);
    CHECK_EQ_INT(elsh_qtrain_rates(&t.net, ELSH_QTRAIN_ADAGRAD, 0.01, &rc), ELSH_OK);
    for (int32_t l = 0; l < t.net.n_layers; l++)
        CHECK(rc.lr_w[l] >= 0 && rc.lr_w_shift[l] >= 0 && rc.lr_w_shift[l] <= 62 && rc.lr_b[l] >= 0);
    size_t rneed;
    CHECK_EQ_INT(elsh_qtrain_plan(&t.net, &rc, &rneed), ELSH_OK);
    free(raw);
    free_trained(&t);
    free(bytes_raw);
}
