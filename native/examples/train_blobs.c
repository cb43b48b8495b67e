/* train_blobs.c - the C API end to end, no Python: plan an arena, train an LSH network on
 * two noisy clusters, evaluate it, and print the cost per sample from the op counters.
 *   make -C native examples && native/build/train_blobs */
#include "edge_lsh_train.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define N_IN 32
#define N_TRAIN 2000
#define N_TEST 500

static void make_data(elsh_prng *rng, float *x, int32_t *y, int n)
{
    for (int s = 0; s < n; s++) {
        y[s] = (int32_t)elsh_prng_below(rng, 2);
        for (int i = 0; i < N_IN; i++) { /* class 0 lights the first half, class 1 the second */
            float on = (i < N_IN / 2) == (y[s] == 0) ? 1.0f : 0.0f;
            float v = on + 0.4f * elsh_prng_normal(rng);
            x[s * N_IN + i] = v > 0.0f ? v : 0.0f;
        }
    }
}

int main(void)
{
    elsh_net_config cfg = {0};
    cfg.n_in = N_IN;
    cfg.n_layers = 2;
    cfg.seed = 42;
    cfg.layers[0].n_out = 400; /* hidden: LSH picks 5% = 20 neurons per input */
    cfg.layers[0].use_lsh = 1;
    cfg.layers[0].active_fraction = 0.05f;
    cfg.layers[0].hash = (elsh_hash_config){.family = ELSH_HASH_TERNARY, .bits = 3, .tables = 50,
                                            .pool = 4};
    cfg.layers[1].n_out = 2; /* dense softmax output */

    size_t bytes;
    int rc = elsh_net_plan(&cfg, &bytes);
    if (rc != ELSH_OK) {
        fprintf(stderr, "plan: %s\n", elsh_status_str(rc));
        return 1;
    }
    /* the only allocation: the caller owns the arena (a static buffer works as well); the
     * kernel wants it 64-byte aligned */
    unsigned char *raw = malloc(bytes + 63);
    void *arena = raw ? (void *)(raw + ((64u - (uintptr_t)raw % 64u) % 64u)) : NULL;
    static float x_train[N_TRAIN * N_IN], x_test[N_TEST * N_IN];
    static int32_t y_train[N_TRAIN], y_test[N_TEST], order[N_TRAIN], pred[N_TEST];
    elsh_net net;
    if (!arena || elsh_net_init(&net, &cfg, arena, bytes) != ELSH_OK || elsh_net_randomize(&net) != ELSH_OK) {
        fprintf(stderr, "init failed\n");
        return 1;
    }
    elsh_prng rng;
    elsh_prng_seed(&rng, 7);
    make_data(&rng, x_train, y_train, N_TRAIN);
    make_data(&rng, x_test, y_test, N_TEST);

    elsh_train_config tc;
    elsh_train_config_default(&tc);
    for (int32_t epoch = 0; epoch < 3; epoch++) {
        elsh_train_stats st = {0};
        elsh_shuffle(&net, order, N_TRAIN);
        rc = elsh_train_batch(&net, &tc, epoch, N_TRAIN, x_train, y_train, order, N_TRAIN, &st);
        if (rc != ELSH_OK) {
            fprintf(stderr, "train: %s\n", elsh_status_str(rc));
            return 1;
        }
        printf("epoch %d: loss %.4f, train accuracy %.3f\n", (int)epoch, st.loss_sum / (double)st.samples,
               (double)st.correct / (double)st.samples);
    }
    elsh_net_reset_counters(&net);
    elsh_predict(&net, x_test, N_TEST, pred, NULL);
    int correct = 0;
    for (int s = 0; s < N_TEST; s++) correct += pred[s] == y_test[s];
    elsh_ops h = elsh_net_ops(&net, ELSH_PHASE_HASH, 1), f = elsh_net_ops(&net, ELSH_PHASE_FORWARD, 1);
    printf("test accuracy %.3f; per sample: %.0f multiplications (dense: %d), %.0f additions\n",
           (double)correct / N_TEST, (double)(h.mul + f.mul) / N_TEST, N_IN * 400 + 400 * 2,
           (double)(h.add + f.add) / N_TEST);
    free(raw);
    return correct > N_TEST * 9 / 10 ? 0 : 1;
}
