/* test_regressions.c - kernel defects found while writing this suite, now fixed: non-finite
 * inputs were accepted, and FIFO eviction lost age order after a neuron left a bucket. */
#include <math.h>

#include "check.h"
#include "internal.h"
#include "test_util.h"

/* edge_lsh.h:41 documents ELSH_ERR_INPUT as "non-finite input or label out of range", but no
 * entry point checks the input values: elsh_net_forward (train.c) checks only its pointers,
 * elsh_train_sample only pointers and the label (train.c:91), elsh_train_batch only pointers,
 * lr and n. A NaN or Inf feature is accepted with ELSH_OK, and one training step writes NaN
 * into the weights of the active rows (their Adagrad accumulators then stay NaN for good;
 * ReLU(NaN) = 0 hides the dead neurons at inference). */
void test_bug_nonfinite_input_rejected(void)
{
    elsh_net_config cfg;
    cfg_init(&cfg, 6, 2, 3u);
    cfg_lsh(&cfg.layers[0], 16, 0.25f, ELSH_HASH_SIMHASH, 3, 4);
    cfg_dense(&cfg.layers[1], 3);
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    float x[6] = {1.0f, (float)NAN, 3.0f, 4.0f, 5.0f, 6.0f};
    int32_t label[1] = {1};
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    CHECK_EQ_INT(elsh_train_sample(&t.net, &tc, 0, x, 1, NULL), ELSH_ERR_INPUT);
    CHECK_EQ_INT(elsh_train_batch(&t.net, &tc, 0, 1, x, label, NULL, 1, NULL), ELSH_ERR_INPUT);
    x[1] = (float)INFINITY;
    CHECK_EQ_INT(elsh_net_forward(&t.net, x, -1), ELSH_ERR_INPUT);
    /* whatever the return codes, the parameters must not be poisoned */
    int nonfinite = 0;
    for (int32_t l = 0; l < 2; l++) {
        const elsh_layer *L = &t.net.layers[l];
        for (int32_t i = 0; i < L->n_in * L->n_out; i++) nonfinite += !isfinite(L->w[i]);
    }
    CHECK_MSG(nonfinite == 0, "%d weights are NaN/Inf after training on a NaN/Inf input", nonfinite);
    tnet_destroy(&t);
}

/* tables.c documents FIFO as "evict the oldest slot, round robin", but remove_neuron() swap-
 * removes (tables.c:27: the last slot moves into the hole, "order within a bucket carries no
 * meaning") while bucket_head keeps pointing at a slot position (tables.c:29), so after a
 * neuron leaves a full bucket the round robin no longer follows insertion age and a younger
 * neuron can be evicted. Capacity 3, all in one bucket:
 *   0, 1, 2 fill the bucket; 3 evicts 0        -> slots [3, 1, 2], head 1, age order 1 2 3
 *   3 leaves (swap-remove of slot 0)           -> slots [2, 1],    head 1, age order 1 2
 *   4 arrives (free slot)                      -> slots [2, 1, 4], head 1, age order 1 2 4
 *   5 arrives, evicts slot 1 = 1 (the oldest)  -> slots [2, 5, 4], head 2, age order 2 4 5
 *   6 arrives, evicts slot 2 = 4, but the oldest is 2. */
void test_bug_fifo_evicts_oldest_after_removal(void)
{
    elsh_net_config cfg;
    cfg_init(&cfg, 4, 2, 1u);
    cfg_lsh(&cfg.layers[0], 8, 0.25f, ELSH_HASH_SIMHASH, 1, 1);
    cfg.layers[0].hash.bucket_capacity = 3;
    cfg_dense(&cfg.layers[1], 2);
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    elsh_layer *L = &t.net.layers[0];
    /* one table, one bit: code = [w[j][0] > 0] */
    L->proj[0] = 1.0f;
    L->proj[1] = L->proj[2] = L->proj[3] = 0.0f;
    for (int32_t j = 0; j < 8; j++) L->w[j * 4] = j < 4 ? 1.0f : -1.0f;
    elsh_tables_rebuild(L);
    CHECK_EQ_INT(L->neuron_bucket[0], ELSH_NO_BUCKET); /* 3 evicted the oldest, 0 */
    L->w[3 * 4] = -1.0f; /* 3 leaves bucket 1 */
    L->dirty[3] = 1;
    elsh_tables_update(L);
    CHECK_EQ_INT(L->bucket_len[1], 2);
    for (int32_t j = 4; j <= 6; j++) { /* 4, 5, 6 arrive in turn */
        L->w[j * 4] = 1.0f;
        L->dirty[j] = 1;
        elsh_tables_update(L);
        CHECK_EQ_INT(L->bucket_len[1], 3);
    }
    CHECK_MSG(L->neuron_bucket[1] == ELSH_NO_BUCKET, "the oldest neuron (1) was not evicted by 5");
    CHECK_MSG(L->neuron_bucket[2] == ELSH_NO_BUCKET, "the oldest neuron (2) was not evicted by 6");
    CHECK_MSG(L->neuron_bucket[4] == 1, "a younger neuron (4) was evicted instead of the oldest (2)");
    CHECK_EQ_INT(L->neuron_bucket[5], 1);
    CHECK_EQ_INT(L->neuron_bucket[6], 1);
    CHECK_EQ_INT(tables_problems(L, 1), 0);
    tnet_destroy(&t);
}

/* The softmax's exp is computed without libm so that training is bit-identical across C
 * libraries; it must still be accurate. */
void test_portable_exp_accuracy(void)
{
    double worst = 0.0;
    for (int i = 0; i <= 97000; i++) { /* the softmax needs x <= 0; some positive x too */
        float x = -87.0f + (float)i * 0.001f;
        double want = exp((double)x);
        double rel = fabs((double)elsh_expf(x) - want) / want;
        if (rel > worst) worst = rel;
    }
    CHECK_MSG(worst < 1e-6, "max relative error %g", worst);
    CHECK(elsh_expf(-200.0f) == 0.0f);
    CHECK(elsh_expf(0.0f) == 1.0f);
}
