/* step_times.c - the medians of each step of the fixed-point forward pass (hash, count, select,
 * multiply per layer) and of the whole forward, over int8 inputs, in C: no Python around the
 * clock, so steps of a microsecond are measured to a few percent. It runs the stages
 * elsh_qnet_forward runs (internal.h, hence here beside the unit tests; not one of them), in the
 * same order, with elsh_model_attach_fast.
 *
 *   make -C native build/libedge_lsh.a
 *   cc -std=c99 -O2 -Inative/include -Inative/src native/tests/step_times.c \
 *       native/build/libedge_lsh.a -lm -o /tmp/step_times
 *   /tmp/step_times MODEL.elsh INT8_ROWS.npy [REPEATS]
 *
 * INT8_ROWS.npy: int8 rows of n_in values (FixedPointModel.quantize_input of test rows). To
 * compare two kernels, build this against each library and run the two binaries in turn,
 * several times (a shared machine: medians, round robin). Used for tools/bench/TUNING.md,
 * "Selection speed". */
#define _POSIX_C_SOURCE 200112L
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double median_us(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof v[0], by_value);
    return (double)v[n / 2] / 1000.0;
}

static void *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long len = ftell(f);
        if (len > 0 && fseek(f, 0, SEEK_SET) == 0 && !posix_memalign(&buf, 64, ((size_t)len + 63u) / 64u * 64u)) {
            *n = (size_t)len;
            if (fread(buf, 1, *n, f) != *n) {
                free(buf);
                buf = NULL;
            }
        }
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: step_times MODEL.elsh INT8_ROWS.npy [REPEATS]\n");
        return 2;
    }
    size_t file_bytes = 0, npy_bytes = 0, arena_bytes = 0, extra = 0;
    void *file = read_all(argv[1], &file_bytes);
    unsigned char *npy = read_all(argv[2], &npy_bytes);
    int repeats = argc > 3 ? atoi(argv[3]) : 5;
    static elsh_qnet net;
    if (!file || !npy || repeats < 1 || elsh_model_open(&net, file, file_bytes, &arena_bytes) ||
        elsh_model_fast_bytes(&net, &extra)) {
        fprintf(stderr, "step_times: cannot read the model or the inputs\n");
        return 2;
    }
    size_t total = (arena_bytes + 63u) / 64u * 64u + extra;
    void *arena = NULL;
    if (posix_memalign(&arena, 64, (total + 63u) / 64u * 64u) || elsh_model_attach_fast(&net, arena, total)) {
        fprintf(stderr, "step_times: attach failed\n");
        return 2;
    }
    uint16_t header = 0; /* .npy version 1: 10 bytes, then the header's length */
    memcpy(&header, npy + 8, 2);
    const int8_t *X = (const int8_t *)(npy + 10 + header);
    size_t rows = (npy_bytes - 10u - header) / (size_t)net.n_in, M = rows * (size_t)repeats;
    int32_t NL = net.n_layers;
    uint64_t *T = (uint64_t *)calloc(M * (size_t)(NL * 4 + 1), sizeof(uint64_t));
    if (!T || rows == 0) return 2;
    long classes = 0;
    for (int r = 0; r < repeats; r++)
        for (size_t s = 0; s < rows; s++) {
            size_t m = (size_t)r * rows + s;
            const int8_t *a = X + s * (size_t)net.n_in;
            const int32_t *idx = NULL;
            int32_t n = net.n_in;
            for (int p = 0; p < ELSH_PHASE_COUNT; p++) counters_begin(&net.ops, p);
            elsh_ops *hops = &net.ops.last[ELSH_PHASE_HASH], *fops = &net.ops.last[ELSH_PHASE_FORWARD];
            uint64_t start = now_ns();
            for (int32_t l = 0; l < NL; l++) {
                elsh_qlayer *L = &net.layers[l];
                uint64_t t0 = now_ns(), t1, t2;
                elsh_qlayer_input(L, a, n, fops);
                if (L->use_lsh) {
                    elsh_select_job J;
                    elsh_select_state st;
                    elsh_qlayer_job(L, &J);
                    elsh_qhash_input(L, L->x, idx, n, hops);
                    t1 = now_ns();
                    elsh_select_count(&J, &st, hops);
                    t2 = now_ns();
                    L->n_active = elsh_select_choose(&J, &st, &L->n_candidates, hops);
                } else {
                    t1 = t2 = now_ns();
                    elsh_qlayer_all_active(L);
                }
                uint64_t t3 = now_ns();
                elsh_qlayer_multiply(L, a, idx, n, fops);
                uint64_t t4 = now_ns();
                T[(size_t)(l * 4 + 0) * M + m] = t1 - t0;
                T[(size_t)(l * 4 + 1) * M + m] = t2 - t1;
                T[(size_t)(l * 4 + 2) * M + m] = t3 - t2;
                T[(size_t)(l * 4 + 3) * M + m] = t4 - t3;
                a = L->out;
                n = L->n_active;
                idx = L->n_active < L->n_out ? L->active : NULL;
            }
            T[(size_t)(NL * 4) * M + m] = now_ns() - start;
            classes += elsh_qnet_argmax(&net);
        }
    static const char *step[4] = {"hash", "count", "select", "multiply"};
    for (int32_t l = 0; l < NL; l++) {
        printf("layer %d:", (int)l);
        for (int k = 0; k < 4; k++) printf(" %s %.2f", step[k], median_us(T + (size_t)(l * 4 + k) * M, M));
        printf("\n");
    }
    printf("steps timed one by one (clock reads included): %.2f us\n", median_us(T + (size_t)(NL * 4) * M, M));
    for (int r = 0; r < repeats; r++)
        for (size_t s = 0; s < rows; s++) {
            uint64_t t0 = now_ns();
            classes += elsh_qnet_forward(&net, X + s * (size_t)net.n_in);
            T[(size_t)r * rows + s] = now_ns() - t0;
        }
    printf("elsh_qnet_forward: %.2f us (medians over %zu forwards; sum of classes %ld)\n", median_us(T, M), M,
           classes);
    free(T);
    free(arena);
    free(file);
    free(npy);
    return 0;
}
