/* test_threads.c - training and prediction on several threads (train_threads_f32.c).
 *
 * Deterministic mode: the same bytes on every run and for every thread count, and with
 * mini-batches of one sample exactly the one-thread trainer (which proves that its two halves
 * of the backward pass, backprop and update_rows, do what elsh_layer_backward_f32 does).
 * Asynchronous mode: one thread is elsh_train_batch bit for bit, and so is its threaded path
 * on one worker (which proves that backprop_shared and update_rows_owned do what
 * elsh_layer_backward_f32 does); three threads lose no update; four train toy data to a high
 * accuracy and leave valid tables. Prediction: the same bits as elsh_predict. The relaxed
 * four-float accessors (param_relaxed_f32.h; single-instruction pair accesses in assembly on
 * x86-64 and little-endian aarch64, the __atomic builtins under ThreadSanitizer) move bits
 * exactly.
 * `make test-tsan` runs these under ThreadSanitizer, which must report nothing. Built without
 * threads (bare metal) the same tests run every call on one thread. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "test_util.h"
#if ELSH_THREADS
#include "param_relaxed_f32.h"
#endif

enum { TN = 600, TN_IN = 24, TN_CLASSES = 4 };

/* wider data for the shared layer passes' blocks (layer_f32_body.h): an odd input width, so
 * that rows alternate between 8-byte aligned and not, and more active inputs than a block */
enum { WN_IN = 77 };
static float *tx, *wx;
static int32_t tlabels[TN], wlabels[TN];

static void data_once(void)
{
    if (tx) return;
    tx = malloc((size_t)TN * TN_IN * sizeof(float));
    wx = malloc((size_t)TN * WN_IN * sizeof(float));
    if (!tx || !wx) abort();
    make_blobs(tx, tlabels, TN, TN_IN, TN_CLASSES, 4.0f, 4242u);
    make_blobs(wx, wlabels, TN, WN_IN, TN_CLASSES, 4.0f, 4243u);
}

/* the LSH layers' bucket capacity (0: the default) and insert policy in threads_cfg: a test
 * sets them and puts them back */
static int32_t small_buckets, insert_policy = ELSH_INSERT_FIFO;

/* 24 - 64 (LSH, 25%) - 32 (LSH, 25%) - 4: two LSH layers, so that sparse inputs, the ReLU mask
 * and a sparse backward all take part */
static void threads_cfg(elsh_net_config *cfg, uint64_t seed)
{
    cfg_init(cfg, TN_IN, 3, seed);
    cfg_lsh(&cfg->layers[0], 64, 0.25f, ELSH_HASH_SIMHASH, 4, 16);
    cfg_lsh(&cfg->layers[1], 32, 0.25f, ELSH_HASH_TERNARY, 3, 12);
    cfg_dense(&cfg->layers[2], TN_CLASSES);
    for (int l = 0; l < 2; l++) {
        cfg->layers[l].hash.bucket_capacity = small_buckets;
        cfg->layers[l].hash.insert_policy = insert_policy;
    }
}

static void train_cfg(elsh_train_config *tc)
{
    elsh_train_config_default(tc);
    tc->rebuild = ELSH_REBUILD_EVERY;
    tc->rebuild_every = 20;
    tc->rehash_every = 250;
    tc->l2 = 1e-4f;
}

/* 77 - 160 (LSH, 25%: 40 active) - 48 (LSH, 25%) - 4 */
static void wide_cfg(elsh_net_config *cfg, uint64_t seed)
{
    cfg_init(cfg, WN_IN, 3, seed);
    cfg_lsh(&cfg->layers[0], 160, 0.25f, ELSH_HASH_SIMHASH, 4, 16);
    cfg_lsh(&cfg->layers[1], 48, 0.25f, ELSH_HASH_TERNARY, 3, 12);
    cfg_dense(&cfg->layers[2], TN_CLASSES);
}

static int train_net_on(tnet *t, int wide, int threads, int mode, int batch, int epochs, elsh_train_stats *st);

/* Train a fresh network for `epochs` epochs: one thread (threads 0) or elsh_train_batch_threads
 * with the given settings. *t is left for the caller to inspect and destroy. */
static int train_net(tnet *t, int threads, int mode, int batch, int epochs, elsh_train_stats *st)
{
    return train_net_on(t, 0, threads, mode, batch, epochs, st);
}

/* train_net on the 24-input network (wide 0) or the 77-input one (wide 1) */
static int train_net_on(tnet *t, int wide, int threads, int mode, int batch, int epochs, elsh_train_stats *st)
{
    data_once();
    elsh_net_config cfg;
    if (wide)
        wide_cfg(&cfg, 99u);
    else
        threads_cfg(&cfg, 99u);
    const float *x = wide ? wx : tx;
    const int32_t *labels = wide ? wlabels : tlabels;
    int rc = tnet_create(t, &cfg);
    if (rc != ELSH_OK) return rc;
    elsh_train_config tc;
    train_cfg(&tc);
    elsh_thread_config th = {threads, mode, batch};
    size_t bytes = 0;
    void *raw = NULL, *work = NULL;
    if (threads > 0) {
        rc = elsh_threads_plan(&t->net, &th, &bytes);
        if (rc != ELSH_OK) return rc;
        work = aligned_zalloc(bytes, &raw);
    }
    int32_t order[TN];
    memset(st, 0, sizeof(*st));
    for (int e = 0; e < epochs && rc == ELSH_OK; e++) {
        elsh_shuffle(&t->net, order, TN);
        /* two calls an epoch, as the Python binding makes calls of 256 samples */
        for (int half = 0; half < 2 && rc == ELSH_OK; half++) {
            const int32_t *o = order + half * (TN / 2);
            rc = threads > 0 ? elsh_train_batch_threads(&t->net, &tc, &th, work, bytes, e, TN, x, labels, o,
                                                        TN / 2, st)
                             : elsh_train_batch(&t->net, &tc, e, TN, x, labels, o, TN / 2, st);
        }
    }
    free(raw);
    return rc;
}

/* The same training state: parameters, optimizer state, hash functions, tables, PRNGs and the
 * sample count (the arena's scratch, such as the last active sets, is left out: training on
 * worker threads leaves the network's own scratch as it was). */
static int same_state(tnet *a, tnet *b)
{
    if (a->bytes != b->bytes || *a->net.samples_seen != *b->net.samples_seen) return 0;
    if (memcmp(a->net.train_rng, b->net.train_rng, sizeof(elsh_prng)) != 0) return 0;
    for (int32_t l = 0; l < a->net.n_layers; l++) {
        const elsh_layer *A = &a->net.layers[l], *B = &b->net.layers[l];
        size_t nw = (size_t)A->n_out * (size_t)A->n_in * 4u, nb = (size_t)A->n_out * 4u;
        if (memcmp(A->w, B->w, nw) || memcmp(A->w_g2, B->w_g2, nw) || memcmp(A->w_vel, B->w_vel, nw)) return 0;
        if (memcmp(A->b, B->b, nb) || memcmp(A->b_g2, B->b_g2, nb) || memcmp(A->b_vel, B->b_vel, nb)) return 0;
        if (!A->use_lsh) continue;
        size_t n_bkt = (size_t)A->hash.tables * (size_t)A->hash.n_buckets;
        if (memcmp(A->bucket_len, B->bucket_len, n_bkt * 2u) || memcmp(A->bucket_head, B->bucket_head, n_bkt * 2u))
            return 0;
        if (memcmp(A->neuron_bucket, B->neuron_bucket, (size_t)A->n_out * (size_t)A->hash.tables * 2u)) return 0;
        for (size_t i = 0; i < n_bkt; i++) /* the used slots of each bucket */
            if (memcmp(A->bucket_ids + i * (size_t)A->capacity, B->bucket_ids + i * (size_t)A->capacity,
                       (size_t)A->bucket_len[i] * 2u))
                return 0;
        if (memcmp(A->dirty, B->dirty, (size_t)A->n_out) || memcmp(A->rng, B->rng, sizeof(elsh_prng))) return 0;
        if (A->proj && memcmp(A->proj, B->proj, (size_t)A->hash.tables * (size_t)A->hash.bits * (size_t)A->hash.hash_dim * 4u))
            return 0;
        if (A->tern_idx && memcmp(A->tern_idx, B->tern_idx, (size_t)A->hash.tables * (size_t)A->hash.bits * (size_t)A->hash.ternary_nnz * 2u))
            return 0;
    }
    return 1;
}

void test_threads_deterministic_same_bytes(void)
{
    tnet ref, t;
    elsh_train_stats st_ref, st;
    CHECK_EQ_INT(train_net(&ref, 2, ELSH_THREADS_DETERMINISTIC, 16, 3, &st_ref), ELSH_OK);
    CHECK_EQ_INT(st_ref.samples, 3 * TN);
    CHECK(st_ref.rebuilds > 0 && st_ref.rehashes > 0);
    CHECK_EQ_INT(elsh_net_check(&ref.net), ELSH_OK);
    /* again with 2 threads, then 1, 3 and 7: the same bytes and the same statistics */
    static const int counts[4] = {2, 1, 3, 7};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(train_net(&t, counts[i], ELSH_THREADS_DETERMINISTIC, 16, 3, &st), ELSH_OK);
        CHECK_MSG(same_state(&ref, &t), "%d threads: different bytes", counts[i]);
        CHECK_MSG(st.loss_sum == st_ref.loss_sum && st.correct == st_ref.correct &&
                      st.rebuilds == st_ref.rebuilds && st.rehashes == st_ref.rehashes,
                  "%d threads: different statistics", counts[i]);
        for (int p = 0; p < ELSH_PHASE_COUNT; p++) {
            elsh_ops a = elsh_net_ops(&ref.net, p, 1), b = elsh_net_ops(&t.net, p, 1);
            CHECK_MSG(a.mul == b.mul && a.add == b.add && a.weight_bytes == b.weight_bytes &&
                          a.table_bytes == b.table_bytes,
                      "%d threads: phase %d counted differently", counts[i], p);
        }
        tnet_destroy(&t);
    }
    double acc = accuracy(&ref.net, tx, tlabels, TN); /* (after the op counts were compared) */
    CHECK_MSG(acc > 0.9, "deterministic, batch 16: accuracy %.3f", acc);
    /* another batch size is another optimizer: different bytes */
    CHECK_EQ_INT(train_net(&t, 2, ELSH_THREADS_DETERMINISTIC, 8, 3, &st), ELSH_OK);
    CHECK(!same_state(&ref, &t));
    tnet_destroy(&t);
    tnet_destroy(&ref);
}

void test_threads_deterministic_batch_one_is_serial(void)
{
    /* batch 1: every sample against the parameters the previous one left, tables maintained
     * after the same samples: exactly the one-thread trainer, op counts included */
    tnet ref, t;
    elsh_train_stats st_ref, st;
    CHECK_EQ_INT(train_net(&ref, 0, 0, 0, 2, &st_ref), ELSH_OK);
    for (int threads = 1; threads <= 3; threads += 2) {
        CHECK_EQ_INT(train_net(&t, threads, ELSH_THREADS_DETERMINISTIC, 1, 2, &st), ELSH_OK);
        CHECK_MSG(same_state(&ref, &t), "%d threads, batch 1: not the one-thread result", threads);
        CHECK(st.loss_sum == st_ref.loss_sum && st.correct == st_ref.correct && st.rebuilds == st_ref.rebuilds);
        for (int p = 0; p < ELSH_PHASE_COUNT; p++) {
            elsh_ops a = elsh_net_ops(&ref.net, p, 1), b = elsh_net_ops(&t.net, p, 1);
            CHECK_MSG(a.mul == b.mul && a.add == b.add && a.weight_bytes == b.weight_bytes,
                      "phase %d counted differently", p);
        }
        tnet_destroy(&t);
    }
    tnet_destroy(&ref);
}

void test_threads_deterministic_full_buckets(void)
{
    /* buckets of 3 neurons, so that table updates evict (FIFO) or draw (reservoir): the moves
     * of FIFO layers are split by table among the workers, the reservoir ones stay on one
     * thread; either way the same bytes for every thread count, and batch 1 is the
     * one-thread trainer */
    static const int32_t policies[2] = {ELSH_INSERT_FIFO, ELSH_INSERT_RESERVOIR};
    small_buckets = 3;
    for (int p = 0; p < 2; p++) {
        insert_policy = policies[p];
        tnet ref, t;
        elsh_train_stats st_ref, st;
        CHECK_EQ_INT(train_net(&ref, 1, ELSH_THREADS_DETERMINISTIC, 16, 2, &st_ref), ELSH_OK);
        CHECK(st_ref.rebuilds > 0);
        CHECK_EQ_INT(elsh_net_check(&ref.net), ELSH_OK);
        for (int threads = 2; threads <= 3; threads++) {
            CHECK_EQ_INT(train_net(&t, threads, ELSH_THREADS_DETERMINISTIC, 16, 2, &st), ELSH_OK);
            CHECK_MSG(same_state(&ref, &t), "policy %d, %d threads: different bytes", (int)policies[p], threads);
            tnet_destroy(&t);
        }
        tnet_destroy(&ref);
        CHECK_EQ_INT(train_net(&ref, 0, 0, 0, 2, &st_ref), ELSH_OK);
        CHECK_EQ_INT(train_net(&t, 2, ELSH_THREADS_DETERMINISTIC, 1, 2, &st), ELSH_OK);
        CHECK_MSG(same_state(&ref, &t), "policy %d, batch 1: not the one-thread result", (int)policies[p]);
        CHECK_EQ_INT(tables_problems(&t.net.layers[0], 1) + tables_problems(&t.net.layers[1], 1), 0);
        tnet_destroy(&t);
        tnet_destroy(&ref);
    }
    small_buckets = 0;
    insert_policy = ELSH_INSERT_FIFO;
}

void test_threads_async_one_thread_is_serial(void)
{
    tnet ref, t;
    elsh_train_stats st_ref, st;
    CHECK_EQ_INT(train_net(&ref, 0, 0, 0, 2, &st_ref), ELSH_OK);
    CHECK_EQ_INT(train_net(&t, 1, ELSH_THREADS_ASYNC, 64, 2, &st), ELSH_OK);
    CHECK(same_state(&ref, &t));
    CHECK(st.loss_sum == st_ref.loss_sum && st.correct == st_ref.correct);
    tnet_destroy(&t);
    tnet_destroy(&ref);
}

void test_threads_async_shared_one_thread_is_serial(void)
{
    /* the asynchronous mode's shared path (workers, barriers, the relaxed atomic layer passes
     * with their blocks) on one thread: the one-thread trainer bit for bit, on both networks
     * (dense first layers of 24 and 77 inputs, sparse inputs of 16 and 40 active neurons) */
    for (int wide = 0; wide < 2; wide++) {
        tnet ref, t;
        elsh_train_stats st_ref, st;
        CHECK_EQ_INT(train_net_on(&ref, wide, 0, 0, 0, 2, &st_ref), ELSH_OK);
        CHECK_EQ_INT(train_net_on(&t, wide, 1, ELSH_THREADS_ASYNC_SHARED, 64, 2, &st), ELSH_OK);
        CHECK_MSG(same_state(&ref, &t), "network %d: the shared path is not the one-thread result", wide);
        CHECK(st.loss_sum == st_ref.loss_sum && st.correct == st_ref.correct && st.rebuilds == st_ref.rebuilds);
        for (int p = 0; p < ELSH_PHASE_COUNT; p++) {
            elsh_ops a = elsh_net_ops(&ref.net, p, 1), b = elsh_net_ops(&t.net, p, 1);
            CHECK_MSG(a.mul == b.mul && a.add == b.add && a.weight_bytes == b.weight_bytes,
                      "network %d: phase %d counted differently", wide, p);
        }
        tnet_destroy(&t);
        tnet_destroy(&ref);
    }
}

/* relative difference of a and b, per element, at most tol (both sums of the same positive terms) */
static int close_sums(const float *a, const float *b, size_t n, float tol)
{
    for (size_t i = 0; i < n; i++) {
        float d = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i], m = a[i] > b[i] ? a[i] : b[i];
        if (d > tol * m) return 0;
    }
    return 1;
}

void test_threads_async_loses_no_update(void)
{
    /* The asynchronous mode steps every row for every sample that had it active (each row has
     * one owner, the others' deltas reach it through rings): no update is lost, unlike
     * Hogwild. Seen in the Adagrad accumulators: with a learning rate so small that the
     * weights do not move, every sample's gradients and active sets are those of the
     * one-thread run, so each accumulator is the sum of the same squares, added in another
     * order (a relative difference of a few 1e-6 here); one lost step of a row would take
     * about 1/300 of its sum away. 3 threads, 2 calls of 300 samples. */
    data_once();
    elsh_net_config cfg;
    threads_cfg(&cfg, 7u);
    tnet ref, t;
    CHECK_EQ_INT(tnet_create(&ref, &cfg), ELSH_OK);
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    elsh_train_config tc;
    train_cfg(&tc);
    tc.lr = 1e-12f;
    elsh_thread_config th = {3, ELSH_THREADS_ASYNC, 16};
    size_t bytes;
    CHECK_EQ_INT(elsh_threads_plan(&t.net, &th, &bytes), ELSH_OK);
    void *raw, *work = aligned_zalloc(bytes, &raw);
    elsh_train_stats st_ref, st;
    memset(&st_ref, 0, sizeof(st_ref));
    memset(&st, 0, sizeof(st));
    for (int half = 0; half < 2; half++) {
        const float *x = tx + (size_t)half * (TN / 2) * TN_IN;
        const int32_t *y = tlabels + half * (TN / 2);
        CHECK_EQ_INT(elsh_train_batch(&ref.net, &tc, 0, TN, x, y, NULL, TN / 2, &st_ref), ELSH_OK);
        CHECK_EQ_INT(elsh_train_batch_threads(&t.net, &tc, &th, work, bytes, 0, TN, x, y, NULL, TN / 2, &st), ELSH_OK);
    }
    CHECK_EQ_INT(st.samples, TN);
    for (int32_t l = 0; l < ref.net.n_layers; l++) {
        const elsh_layer *A = &ref.net.layers[l], *B = &t.net.layers[l];
        size_t nw = (size_t)A->n_out * (size_t)A->n_in;
        CHECK_MSG(close_sums(A->w_g2, B->w_g2, nw, 1e-4f), "layer %d: weight accumulators differ", (int)l);
        CHECK_MSG(close_sums(A->b_g2, B->b_g2, (size_t)A->n_out, 1e-4f), "layer %d: bias accumulators differ", (int)l);
    }
    CHECK_EQ_INT(elsh_net_check(&t.net), ELSH_OK);
    free(raw);
    tnet_destroy(&t);
    tnet_destroy(&ref);
}

void test_threads_async_wide_trains(void)
{
    /* the blocks under contention: 3 threads on the 77-input network train it and leave a
     * valid state */
    tnet ref, t;
    elsh_train_stats st_ref, st;
    CHECK_EQ_INT(train_net_on(&ref, 1, 0, 0, 0, 3, &st_ref), ELSH_OK);
    CHECK_EQ_INT(train_net_on(&t, 1, 3, ELSH_THREADS_ASYNC, 64, 3, &st), ELSH_OK);
    CHECK_EQ_INT(st.samples, 3 * TN);
    CHECK_EQ_INT(elsh_net_check(&t.net), ELSH_OK);
    for (int32_t l = 0; l < 2; l++) CHECK_EQ_INT(tables_problems(&t.net.layers[l], 0), 0);
    double acc = accuracy(&t.net, wx, wlabels, TN), acc_ref = accuracy(&ref.net, wx, wlabels, TN);
    CHECK_MSG(acc > 0.8 && acc > acc_ref - 0.1, "3 threads: accuracy %.3f, one thread %.3f", acc, acc_ref);
    tnet_destroy(&t);
    tnet_destroy(&ref);
}

void test_threads_async_trains(void)
{
    /* asynchronous on 4 threads (on 1 without threads): every sample trained, tables maintained on
     * the one-thread schedule, valid state, high accuracy */
    tnet ref, t;
    elsh_train_stats st_ref, st;
    CHECK_EQ_INT(train_net(&ref, 0, 0, 0, 3, &st_ref), ELSH_OK);
    CHECK_EQ_INT(train_net(&t, 4, ELSH_THREADS_ASYNC, 64, 3, &st), ELSH_OK);
    CHECK_EQ_INT(st.samples, 3 * TN);
    CHECK_EQ_INT(st.rebuilds, st_ref.rebuilds);
    CHECK_EQ_INT(st.rehashes, st_ref.rehashes);
    CHECK_EQ_INT(*t.net.samples_seen, 3 * TN);
    CHECK_EQ_INT(elsh_net_check(&t.net), ELSH_OK);
    for (int32_t l = 0; l < 2; l++) CHECK_EQ_INT(tables_problems(&t.net.layers[l], 0), 0);
    double acc = accuracy(&t.net, tx, tlabels, TN), acc_ref = accuracy(&ref.net, tx, tlabels, TN);
    /* (4 threads on 16 active neurons of 64 lose some updates to each other: chance is 0.25) */
    CHECK_MSG(acc > 0.8 && acc > acc_ref - 0.1, "4 threads: accuracy %.3f, one thread %.3f", acc, acc_ref);
    /* every sample's forward pass was counted once */
    CHECK(elsh_net_ops(&t.net, ELSH_PHASE_UPDATE, 1).mul > 0);
    tnet_destroy(&t);
    tnet_destroy(&ref);
}

void test_threads_predict_identical(void)
{
    tnet t;
    elsh_train_stats st;
    CHECK_EQ_INT(train_net(&t, 0, 0, 0, 1, &st), ELSH_OK);
    static int32_t pred_ref[TN], pred[TN];
    static float probs_ref[TN * TN_CLASSES], probs[TN * TN_CLASSES];
    elsh_net_reset_counters(&t.net);
    CHECK_EQ_INT(elsh_predict(&t.net, tx, TN, pred_ref, probs_ref), ELSH_OK);
    elsh_ops ref_fwd = elsh_net_ops(&t.net, ELSH_PHASE_FORWARD, 1);
    static const int counts[4] = {1, 2, 3, 5};
    for (int i = 0; i < 4; i++) {
        elsh_thread_config th = {counts[i], ELSH_THREADS_ASYNC, 64};
        size_t bytes;
        CHECK_EQ_INT(elsh_threads_plan(&t.net, &th, &bytes), ELSH_OK);
        void *raw, *work = aligned_zalloc(bytes, &raw);
        elsh_net_reset_counters(&t.net);
        memset(pred, 0xFF, sizeof(pred));
        CHECK_EQ_INT(elsh_predict_threads(&t.net, &th, work, bytes, tx, TN, pred, probs), ELSH_OK);
        CHECK_MSG(memcmp(pred, pred_ref, sizeof(pred)) == 0, "%d threads: other predictions", counts[i]);
        CHECK_MSG(memcmp(probs, probs_ref, sizeof(probs)) == 0, "%d threads: other probabilities", counts[i]);
        CHECK(elsh_net_ops(&t.net, ELSH_PHASE_FORWARD, 1).mul == ref_fwd.mul);
        /* without probabilities, and on no rows */
        CHECK_EQ_INT(elsh_predict_threads(&t.net, &th, work, bytes, tx, TN, pred, NULL), ELSH_OK);
        CHECK(memcmp(pred, pred_ref, sizeof(pred)) == 0);
        CHECK_EQ_INT(elsh_predict_threads(&t.net, &th, work, bytes, tx, 0, pred, NULL), ELSH_OK);
        free(raw);
    }
    tnet_destroy(&t);
}

void test_threads_bad_arguments(void)
{
    tnet t;
    elsh_net_config cfg;
    data_once();
    threads_cfg(&cfg, 5u);
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    elsh_train_config tc;
    train_cfg(&tc);
    elsh_thread_config th;
    elsh_thread_config_default(&th);
    CHECK(th.threads == 1 && th.mode == ELSH_THREADS_ASYNC && th.batch == 16);
    CHECK(elsh_threads_available() >= 1);
    th.threads = 2;
    th.mode = ELSH_THREADS_DETERMINISTIC;
    size_t bytes, largest = 0; /* work memory for every mode (the asynchronous one's rings need the most) */
    for (int mode = 0; mode < 3; mode++) {
        elsh_thread_config m = th;
        m.mode = mode;
        CHECK_EQ_INT(elsh_threads_plan(&t.net, &m, &bytes), ELSH_OK);
        largest = bytes > largest ? bytes : largest;
    }
    CHECK_EQ_INT(elsh_threads_plan(&t.net, &th, &bytes), ELSH_OK);
    void *raw, *work = aligned_zalloc(largest + 64, &raw);
    elsh_thread_config bad = th;
    bad.threads = 0;
    CHECK_EQ_INT(elsh_threads_plan(&t.net, &bad, &bytes), ELSH_ERR_CONFIG);
    bad.threads = ELSH_MAX_THREADS + 1;
    CHECK_EQ_INT(elsh_train_batch_threads(&t.net, &tc, &bad, work, bytes, 0, TN, tx, tlabels, NULL, 10, NULL),
                 ELSH_ERR_CONFIG);
    bad = th;
    bad.mode = 7;
    CHECK_EQ_INT(elsh_threads_plan(&t.net, &bad, &bytes), ELSH_ERR_CONFIG);
    bad = th;
    bad.batch = 0;
    CHECK_EQ_INT(elsh_threads_plan(&t.net, &bad, &bytes), ELSH_ERR_CONFIG);
    CHECK_EQ_INT(elsh_threads_plan(&t.net, &th, &bytes), ELSH_OK);
    CHECK_EQ_INT(elsh_threads_plan(NULL, &th, &bytes), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_threads_plan(&t.net, NULL, &bytes), ELSH_ERR_NULL);
    /* work memory too small or misaligned */
    CHECK_EQ_INT(elsh_train_batch_threads(&t.net, &tc, &th, work, bytes - 1, 0, TN, tx, tlabels, NULL, 10, NULL),
                 ELSH_ERR_ARENA);
    CHECK_EQ_INT(elsh_train_batch_threads(&t.net, &tc, &th, (char *)work + 8, bytes, 0, TN, tx, tlabels, NULL,
                                          10, NULL),
                 ELSH_ERR_ARENA);
    CHECK_EQ_INT(elsh_predict_threads(&t.net, &th, work, bytes - 1, tx, 10, tlabels, NULL), ELSH_ERR_ARENA);
    CHECK_EQ_INT(elsh_train_batch_threads(&t.net, &tc, &th, NULL, bytes, 0, TN, tx, tlabels, NULL, 10, NULL),
                 ELSH_ERR_NULL);
    elsh_net zero;
    memset(&zero, 0, sizeof(zero));
    CHECK_EQ_INT(elsh_threads_plan(&zero, &th, &bytes), ELSH_ERR_STATE);
    /* a non-finite input or a label out of range stops training with ELSH_ERR_INPUT, in both
     * modes, and prediction too */
    float *x = malloc((size_t)TN * TN_IN * sizeof(float));
    int32_t labels[TN];
    if (!x) abort();
    memcpy(x, tx, (size_t)TN * TN_IN * sizeof(float));
    memcpy(labels, tlabels, sizeof(labels));
    x[37 * TN_IN + 3] = NAN;
    labels[301] = TN_CLASSES;
    for (int mode = 0; mode < 3; mode++) {
        th.mode = mode;
        CHECK_EQ_INT(elsh_train_batch_threads(&t.net, &tc, &th, work, largest, 0, TN, x, tlabels, NULL, 100, NULL),
                     ELSH_ERR_INPUT);
        CHECK_EQ_INT(elsh_train_batch_threads(&t.net, &tc, &th, work, largest, 0, TN, tx, labels, NULL, TN, NULL),
                     ELSH_ERR_INPUT);
    }
    int32_t pred[TN];
    CHECK_EQ_INT(elsh_predict_threads(&t.net, &th, work, largest, x, 100, pred, NULL), ELSH_ERR_INPUT);
    CHECK_EQ_INT(elsh_net_check(&t.net), ELSH_OK);
    free(x);
    free(raw);
    tnet_destroy(&t);
}

/* load4_relaxed / store4_relaxed (param_relaxed_f32.h), whichever way this build compiles
 * them (assembly pair accesses on x86-64 and little-endian aarch64, the __atomic builtins
 * under ThreadSanitizer and elsewhere; on 32-bit targets four 32-bit relaxed accesses):
 * every bit pattern (NaN payloads, -0, subnormals, infinities) loaded and stored exactly, at
 * 8-byte aligned places (paired) and not, and nothing written outside the four floats. */
void test_threads_relaxed_vec4_moves_bits(void)
{
#if ELSH_THREADS
    /* which way this build went: the assembly where param_relaxed_f32.h promises it, never
     * under ThreadSanitizer (which must see every shared access) */
    int expect_asm = 0;
#if __SIZEOF_POINTER__ == 8 && !defined(ELSH_PAIR_BUILTINS) && \
    (defined(__x86_64__) || (defined(__aarch64__) && defined(__ARM_NEON) && defined(__AARCH64EL__)))
    expect_asm = 1;
#endif
#if defined(__SANITIZE_THREAD__)
    expect_asm = 0;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    expect_asm = 0;
#endif
#endif
    CHECK_EQ_INT(ELSH_PAIR_ASM, expect_asm);
    static const uint32_t special[8] = {0x7fc00001u, 0xffa00005u, 0x80000000u, 0x00000001u,
                                        0x807fffffu, 0x7f800000u, 0xff800000u, 0x3f800000u};
    uint32_t state = 12345u;
    for (int trial = 0; trial < 200; trial++) {
        uint64_t store_words[8], load_words[8]; /* 8-byte aligned; floats at offset 0 or 1 */
        float *dst = (float *)(void *)store_words, *src = (float *)(void *)load_words;
        uint32_t bits[4];
        for (int k = 0; k < 4; k++) {
            state = state * 1664525u + 1013904223u;
            bits[k] = trial < 2 ? special[trial * 4 + k] : state;
        }
        int at = trial % 2, paired = at == 0;
        memset(store_words, 0xa5, sizeof(store_words));
        memset(load_words, 0x5a, sizeof(load_words));
        memcpy(src + 2 + at, bits, sizeof(bits));
        vec4 v = load4_relaxed(src + 2 + at, paired);
        uint32_t got[4];
        memcpy(got, &v, sizeof(got));
        CHECK(memcmp(got, bits, sizeof(bits)) == 0);
        store4_relaxed(dst + 2 + at, v, paired);
        CHECK(memcmp(dst + 2 + at, bits, sizeof(bits)) == 0);
        uint8_t *b = (uint8_t *)(void *)store_words;
        for (size_t i = 0; i < sizeof(store_words); i++)
            if (i < (size_t)(2 + at) * 4 || i >= (size_t)(6 + at) * 4) CHECK(b[i] == 0xa5);
    }
#endif
}
