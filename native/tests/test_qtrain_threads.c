/* test_qtrain_threads.c - the fixed-point trainer in mini-batches on threads (train_q_threads.c)
 * on the structure-aware generator's random valid models (fuzz/elsh_gen.h): 1, 2, 3 and 4
 * threads give the same bytes at a given batch size, the plan counts the workers' memory
 * exactly, a batch of 0 is the one-sample step, the guards. Under make test-tsan this is the
 * multi-threaded fixed-point training test: ThreadSanitizer must report nothing. Bit-exactness
 * against the numpy oracle of the batch semantics is tests/test_qtrain_threads.py. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "test_util.h"
#include "../fuzz/elsh_gen.h"

typedef struct {
    elsh_qnet net;
    elsh_qtrain tr;
    void *arena_raw, *train_raw;
    size_t train_bytes;
} qbt_trainer;

/* Open, attach and make trainable (the file stays the caller's). */
static int qbt_start(qbt_trainer *t, const uint8_t *file, size_t size, const elsh_qtrain_config *cfg)
{
    memset(t, 0, sizeof *t);
    size_t need;
    if (elsh_model_open(&t->net, file, size, &need) != ELSH_OK) return -1;
    void *arena = aligned_zalloc(need ? need : 64, &t->arena_raw);
    if (elsh_model_attach(&t->net, arena, need) != ELSH_OK) return -2;
    if (elsh_qtrain_plan(&t->net, cfg, &t->train_bytes) != ELSH_OK) return -3;
    void *tarena = aligned_zalloc(t->train_bytes ? t->train_bytes : 64, &t->train_raw);
    if (elsh_qtrain_attach(&t->tr, &t->net, cfg, tarena, t->train_bytes) != ELSH_OK) return -4;
    return 0;
}

static void qbt_free(qbt_trainer *t)
{
    free(t->arena_raw);
    free(t->train_raw);
}

/* The trained file (with its state); free(*raw) releases it. */
static uint8_t *qbt_save(const qbt_trainer *t, size_t *size, void **raw)
{
    *size = 0;
    if (elsh_qtrain_save(&t->tr, NULL, 0, size) != ELSH_OK) return NULL;
    uint8_t *b = aligned_zalloc(*size, raw);
    if (elsh_qtrain_save(&t->tr, b, *size, size) != ELSH_OK) return NULL;
    return b;
}

static void qbt_config(elsh_prng *r, elsh_qtrain_config *cfg, const elsh_qnet *net)
{
    elsh_qtrain_config_default(cfg, net);
    cfg->optimizer = (int32_t)elsh_prng_below(r, 2);
    cfg->momentum_q15 = elsh_prng_below(r, 2) ? (int32_t)elsh_prng_below(r, 32768) : 0;
    cfg->train_layers = (int32_t)elsh_prng_below(r, (uint32_t)net->n_layers + 1u);
    for (int l = 0; l < ELSH_MAX_LAYERS; l++) { /* rates that move weights (and rows) */
        cfg->lr_w[l] = (int32_t)(elsh_prng_u32(r) >> 8);
        cfg->lr_b[l] = (int32_t)(elsh_prng_u32(r) >> 8);
        cfg->lr_w_shift[l] = (int32_t)elsh_prng_below(r, 12);
        cfg->lr_b_shift[l] = (int32_t)elsh_prng_below(r, 12);
    }
    cfg->seed = elsh_prng_u32(r);
}

#define QBT_SAMPLES 13

void test_qtrain_threads_same_bytes_any_thread_count(void)
{
    elsh_prng r;
    elsh_prng_seed(&r, 1414);
    int compared = 0, moved_weights = 0;
    for (int it = 0; it < 24; it++) {
        gen_model m;
        gen_random_model(&r, &m, 0);
        size_t size;
        uint8_t *g = gen_file_of(&m, &r, &size);
        void *file_raw;
        uint8_t *file = aligned_zalloc(size, &file_raw);
        memcpy(file, g, size);
        free(g);
        elsh_qnet probe;
        size_t need;
        if (elsh_model_open(&probe, file, size, &need) != ELSH_OK) {
            CHECK_MSG(0, "iteration %d: the generator's file was rejected", it);
            free(file_raw);
            continue;
        }
        elsh_qtrain_config cfg;
        qbt_config(&r, &cfg, &probe);
        cfg.batch = 1 + (int32_t)elsh_prng_below(&r, 5);
        int8_t *x = calloc((size_t)probe.n_in * QBT_SAMPLES, 1);
        int32_t labels[QBT_SAMPLES], pred[QBT_SAMPLES], pred1[QBT_SAMPLES];
        for (int s = 0; s < QBT_SAMPLES; s++) {
            for (int32_t i = 0; i < probe.n_in; i++)
                x[(size_t)s * (size_t)probe.n_in + (size_t)i] =
                    s % 4 == 0 ? (int8_t)probe.layers[0].in_zero : (int8_t)((int32_t)elsh_prng_below(&r, 256) - 128);
            labels[s] = (int32_t)elsh_prng_below(&r, (uint32_t)probe.n_classes);
        }
        uint8_t *first = NULL;
        void *first_raw = NULL;
        size_t first_size = 0, plan1 = 0;
        for (int32_t T = 1; T <= 4; T++) {
            cfg.threads = T;
            qbt_trainer t;
            int rc = qbt_start(&t, file, size, &cfg);
            CHECK_EQ_INT(rc, 0);
            if (rc) {
                qbt_free(&t);
                break;
            }
            if (T == 1) plan1 = t.train_bytes;
            else if (ELSH_THREADS) CHECK(t.train_bytes > plan1); /* the workers' views and scratch */
            /* in two calls (a whole number of batches first): the same as one */
            int64_t n1 = (int64_t)cfg.batch * (QBT_SAMPLES / 2 / cfg.batch);
            CHECK_EQ_INT(elsh_qtrain_steps(&t.tr, x, labels, n1, pred), ELSH_OK);
            CHECK_EQ_INT(elsh_qtrain_steps(&t.tr, x + (size_t)n1 * (size_t)probe.n_in, labels + n1,
                                           QBT_SAMPLES - n1, pred + n1),
                         ELSH_OK);
            uint32_t st[4];
            uint64_t steps;
            CHECK_EQ_INT(elsh_qtrain_progress(&t.tr, st, &steps), ELSH_OK);
            CHECK_EQ_INT((int)steps, QBT_SAMPLES);
            size_t out_size;
            void *raw;
            uint8_t *saved = qbt_save(&t, &out_size, &raw);
            CHECK(saved != NULL);
            if (T == 1) {
                first = saved;
                first_raw = raw;
                first_size = out_size;
                memcpy(pred1, pred, sizeof pred);
                moved_weights += saved && (out_size != size || memcmp(saved, file, size) != 0);
            } else {
                CHECK_MSG(saved && out_size == first_size && memcmp(saved, first, out_size) == 0,
                          "iteration %d: %d threads give other bytes than 1", it, (int)T);
                CHECK(memcmp(pred, pred1, sizeof pred) == 0);
                compared++;
                free(raw);
            }
            qbt_free(&t);
        }
        /* the plan is exact: one byte less is refused */
        cfg.threads = 3;
        {
            elsh_qnet net;
            void *araw, *traw;
            CHECK_EQ_INT(elsh_model_open(&net, file, size, &need), ELSH_OK);
            CHECK_EQ_INT(elsh_model_attach(&net, aligned_zalloc(need ? need : 64, &araw), need), ELSH_OK);
            size_t tneed;
            CHECK_EQ_INT(elsh_qtrain_plan(&net, &cfg, &tneed), ELSH_OK);
            elsh_qtrain tr;
            CHECK_EQ_INT(elsh_qtrain_attach(&tr, &net, &cfg, aligned_zalloc(tneed, &traw), tneed - 1u), ELSH_ERR_ARENA);
            free(araw);
            free(traw);
        }
        free(first_raw);
        free(x);
        free(file_raw);
    }
    CHECK(compared >= 60);
    CHECK(moved_weights >= 12);
}

void test_qtrain_threads_batch_zero_is_the_step_and_guards(void)
{
    elsh_prng r;
    elsh_prng_seed(&r, 77);
    gen_model m;
    gen_random_model(&r, &m, 0);
    size_t size;
    uint8_t *g = gen_file_of(&m, &r, &size);
    void *file_raw;
    uint8_t *file = aligned_zalloc(size, &file_raw);
    memcpy(file, g, size);
    free(g);
    elsh_qnet probe;
    size_t need;
    CHECK_EQ_INT(elsh_model_open(&probe, file, size, &need), ELSH_OK);
    elsh_qtrain_config cfg;
    qbt_config(&r, &cfg, &probe);
    CHECK_EQ_INT(cfg.batch, 0);
    CHECK_EQ_INT(cfg.threads, 1);
    int8_t *x = calloc((size_t)probe.n_in * 6u, 1);
    int32_t labels[6] = {0, 1, 0, 1, 1, 0};
    for (size_t i = 0; i < (size_t)probe.n_in * 6u; i++) x[i] = (int8_t)((int32_t)elsh_prng_below(&r, 256) - 128);
    /* batch 0: elsh_qtrain_steps is elsh_qtrain_step sample by sample, on any thread count */
    qbt_trainer a, b;
    cfg.threads = 4;
    CHECK_EQ_INT(qbt_start(&a, file, size, &cfg), 0);
    cfg.threads = 1;
    CHECK_EQ_INT(qbt_start(&b, file, size, &cfg), 0);
    CHECK_EQ_INT((int)a.train_bytes, (int)b.train_bytes); /* no batch memory */
    CHECK_EQ_INT(elsh_qtrain_steps(&a.tr, x, labels, 6, NULL), ELSH_OK);
    for (int s = 0; s < 6; s++) CHECK(elsh_qtrain_step(&b.tr, x + (size_t)s * (size_t)probe.n_in, labels[s]) >= 0);
    size_t sa, sb;
    void *ra, *rb;
    uint8_t *ba = qbt_save(&a, &sa, &ra), *bb = qbt_save(&b, &sb, &rb);
    CHECK(ba && bb && sa == sb && memcmp(ba, bb, sa) == 0);
    free(ra);
    free(rb);
    /* guards: a bad label fails before any step; values out of range */
    int32_t bad[6] = {0, 1, 0, probe.n_classes, 0, 0};
    uint32_t st[4];
    uint64_t before, after;
    elsh_qtrain_progress(&a.tr, st, &before);
    CHECK_EQ_INT(elsh_qtrain_steps(&a.tr, x, bad, 6, NULL), ELSH_ERR_INPUT);
    elsh_qtrain_progress(&a.tr, st, &after);
    CHECK(before == after);
    CHECK_EQ_INT(elsh_qtrain_steps(NULL, x, labels, 6, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_qtrain_steps(&a.tr, NULL, labels, 6, NULL), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_qtrain_steps(&a.tr, x, labels, -1, NULL), ELSH_ERR_STATE);
    CHECK_EQ_INT(elsh_qtrain_steps(&a.tr, NULL, NULL, 0, NULL), ELSH_OK);
    size_t plan;
    elsh_qtrain_config c2 = cfg;
    c2.batch = -1;
    CHECK_EQ_INT(elsh_qtrain_plan(&a.net, &c2, &plan), ELSH_ERR_CONFIG);
    c2.batch = ELSH_MAX_BATCH + 1;
    CHECK_EQ_INT(elsh_qtrain_plan(&a.net, &c2, &plan), ELSH_ERR_CONFIG);
    c2.batch = 4;
    c2.threads = ELSH_MAX_THREADS + 1;
    CHECK_EQ_INT(elsh_qtrain_plan(&a.net, &c2, &plan), ELSH_ERR_CONFIG);
    c2.threads = -1;
    CHECK_EQ_INT(elsh_qtrain_plan(&a.net, &c2, &plan), ELSH_ERR_CONFIG);
    c2.threads = 0; /* counts as 1 */
    CHECK_EQ_INT(elsh_qtrain_plan(&a.net, &c2, &plan), ELSH_OK);
    qbt_free(&a);
    qbt_free(&b);
    free(x);
    free(file_raw);
}
