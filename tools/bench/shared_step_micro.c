/* shared_step_micro.c - one thread, the float layer's passes plain (layer_f32.c, the one-thread
 * trainer) against shared (layer_f32_shared.c: every access a relaxed atomic, as Hogwild's
 * step and the asynchronous workers' forward pass) and the owner's step (layer_f32_owned.c:
 * plain but for relaxed atomic weight and bias stores, the asynchronous workers' step): a
 * 784 -> 1000 layer, 50 active rows, dense input with every fifth pixel set, the backward pass
 * (the Adagrad + momentum step of 50 x 785 parameters), the forward pass (50 dot products of
 * 784) and the owner's update of the same rows. The minimum over the repetitions, which a busy
 * machine inflates least; the variants alternate. All give the same bits
 * (native/tests/test_threads.c).
 *
 *   make -C native build/libedge_lsh.a && cc -std=c99 -O2 -Inative/include -Inative/src \
 *       -Inative/tests tools/bench/shared_step_micro.c native/tests/test_util.c \
 *       native/build/libedge_lsh.a -lm -o /tmp/shared_step_micro && /tmp/shared_step_micro 1000
 *
 * The relaxed pair accesses are single-instruction assembly on x86-64 and aarch64
 * (param_relaxed_f32.h); for the __atomic builtins instead (what ThreadSanitizer builds use),
 * build a second library with make -C native BUILD=build-builtins \
 * CFLAGS="-O2 -DELSH_PAIR_BUILTINS" build-builtins/libedge_lsh.a and link that.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "test_util.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 1000;
    elsh_net_config cfg;
    cfg_init(&cfg, 784, 2, 1u);
    cfg_dense(&cfg.layers[0], 1000);
    cfg_dense(&cfg.layers[1], 10);
    tnet t;
    if (tnet_create(&t, &cfg) != ELSH_OK) return 1;
    elsh_layer *L = &t.net.layers[0];
    static float x[784];
    for (int i = 0; i < 784; i += 5) x[i] = 0.5f;
    L->n_active = 50;
    for (int a = 0; a < 50; a++) {
        L->active[a] = a * 7;
        L->delta[a] = 0.01f * (float)(a % 3 - 1);
    }
    const char *names[5] = {"backward plain", "backward shared", "forward plain", "forward shared",
                            "update owned"};
    double best[5] = {1e9, 1e9, 1e9, 1e9, 1e9};
    for (int r = 0; r < reps; r++) {
        for (int v = 0; v < 5; v++) {
            double t0 = now();
            if (v == 0) elsh_layer_backward_f32(L, x, NULL, 784, NULL, 0.01f, 0.9f, 1e-4f, 1e-8f);
            if (v == 1) elsh_layer_backward_f32_shared(L, x, NULL, 784, NULL, 0.01f, 0.9f, 1e-4f, 1e-8f);
            if (v == 2) elsh_layer_forward_f32(L, x, NULL, 784, -1);
            if (v == 3) elsh_layer_forward_f32_shared(L, x, NULL, 784, -1);
            if (v == 4)
                elsh_layer_update_rows_f32_owned(L, L->active, L->delta, 50, x, NULL, 784, 0, 1000, 0.01f, 0.9f, 1e-4f,
                                                 1e-8f);
            double dt = now() - t0;
            if (dt < best[v]) best[v] = dt;
        }
    }
    for (int v = 0; v < 5; v++) printf("%-16s %7.1f us (min of %d)\n", names[v], best[v] * 1e6, reps);
    tnet_destroy(&t);
    return 0;
}
