/* threads_split.c - where the time of a threaded training epoch goes, per worker and per part:
 * the trainer (native/src/train_threads_f32.c) compiled into this program with PROFILE_MARK
 * defined to add up, per worker, the wall time between its marks. The library itself has no
 * timing code (PROFILE_MARK is empty there). Parts:
 *   record      deterministic phase 1: the worker's shard of the batch, forward + deltas
 *   wait_mid    the barriers inside a step (deterministic: between phase 1 and phase 2;
 *               with a table update: before the hashing or the moves)
 *   apply       deterministic phase 2: the optimizer steps of the worker's rows
 *   async       asynchronous: the worker's samples of a step and the steps of its rows
 *               (its own records and the others', from the rings)
 *   hash        asynchronous: re-hashing the dirty neurons of the worker's range (table
 *               update; deterministic: part of apply)
 *   move        moving the dirty neurons in the worker's range of tables (table update)
 *   wait_end    the barrier that ends a step (waiting for the slowest worker)
 *   wait_start  the barrier that starts a step (workers > 0: waiting while the leader works alone)
 *   leader      worker 0 alone between steps: statistics, dirty flags, rebuilds
 * A network like bench_threads.py's (784-1000-10, 5% active, ternary 3 bits x 100 tables, pool
 * 98; lr 0.02, momentum 0.5, l2 1e-4, tables updated every 20 samples) on the first N images
 * of MNIST's IDX training file, one epoch, the same seed for every run. Runs round robin:
 * one thread (elsh_train_batch), each mode on T threads, each mode on one
 * worker (its work without a second core), --rounds times; per run the
 * samples per second; the split of the last round.
 *
 *   make -C native build/libedge_lsh.a && cc -std=c99 -O2 -ffp-contract=off -pthread \
 *       -Inative/include -Inative/src -Inative/tests tools/bench/threads_split.c \
 *       native/tests/test_util.c native/build/libedge_lsh.a -lm -o /tmp/threads_split && \
 *       /tmp/threads_split /work/mnist-idx 4000 2 5 16
 *   (arguments: IDX folder, samples, threads, rounds, deterministic batch; add -DDRAIN_AT=N
 *   to the cc line for the asynchronous mode applying records every N instead of 8)
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "test_util.h"

enum { WAIT_START, RECORD, WAIT_MID, APPLY, ASYNC, HASH, MOVE, WAIT_END, LEADER, N_PARTS };
static const char *part_names[N_PARTS] = {"wait_start", "record", "wait_mid", "apply", "async",
                                          "hash",       "move",   "wait_end", "leader"};
#define MAX_W 8
static double part_sum[MAX_W][N_PARTS], part_cpu[MAX_W][N_PARTS];
static double last_mark[MAX_W], last_cpu[MAX_W];

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }

/* wall time, and the calling thread's CPU time (which a busy machine does not inflate by
 * taking the core away; barrier waits count while they spin) */
static void mark(int w, int part)
{
    double t = now(), c = clock_s(CLOCK_THREAD_CPUTIME_ID);
    if (w < MAX_W) {
        if (last_mark[w] > 0) {
            part_sum[w][part] += t - last_mark[w];
            part_cpu[w][part] += c - last_cpu[w];
        }
        last_mark[w] = t;
        last_cpu[w] = c;
    }
}

#define PROFILE_MARK(w, part) mark((int)(w), part)
#ifndef TRAINER_FILE /* another version of the trainer to compare: -DTRAINER_FILE='"path"' */
#define TRAINER_FILE "../../native/src/train_threads_f32.c"
#endif
#include TRAINER_FILE

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void reset_marks(void)
{
    for (int w = 0; w < MAX_W; w++) {
        last_mark[w] = 0;
        for (int p = 0; p < N_PARTS; p++) part_sum[w][p] = part_cpu[w][p] = 0;
    }
}

static double one_cpu_us; /* the last one-thread epoch: CPU us per sample */

/* one epoch of a fresh network; samples per second */
static double epoch(const float *x, const int32_t *y, int32_t n, int32_t threads, int32_t mode, int32_t batch)
{
    elsh_net_config cfg;
    cfg_init(&cfg, 784, 2, 12345u);
    cfg_lsh(&cfg.layers[0], 1000, 0.05f, ELSH_HASH_TERNARY, 3, 100);
    cfg.layers[0].hash.pool = 784 / 8;
    cfg_dense(&cfg.layers[1], 10);
    tnet t;
    if (tnet_create(&t, &cfg) != ELSH_OK) abort();
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    tc.lr = 0.02f;
    tc.momentum_start = tc.momentum_end = 0.5f;
    tc.l2 = 1e-4f;
    tc.rebuild = ELSH_REBUILD_EVERY;
    tc.rebuild_every = 20;
    elsh_thread_config th;
    elsh_thread_config_default(&th);
    th.threads = threads;
    th.mode = mode;
    th.batch = batch;
    size_t bytes;
    if (elsh_threads_plan(&t.net, &th, &bytes) != ELSH_OK) abort();
    void *raw, *work = aligned_zalloc(bytes, &raw);
    int32_t *order = malloc((size_t)n * sizeof(int32_t));
    if (!order || elsh_shuffle(&t.net, order, n) != ELSH_OK) abort();
    elsh_train_stats st;
    memset(&st, 0, sizeof(st));
    reset_marks();
    double t0 = now(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    int rc = threads == 1 && mode == ELSH_THREADS_ASYNC
                 ? elsh_train_batch(&t.net, &tc, 0, n, x, y, order, n, &st)
                 : elsh_train_batch_threads(&t.net, &tc, &th, work, bytes, 0, n, x, y, order, n, &st);
    double dt = now() - t0;
    if (threads == 1) one_cpu_us = 1e6 * (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) / n;
    if (rc != ELSH_OK) abort();
    free(order);
    free(raw);
    tnet_destroy(&t);
    return (double)n / dt;
}

static int cmp_double(const void *a, const void *b)
{
    double u = *(const double *)a, v = *(const double *)b;
    return (u > v) - (u < v);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/work/mnist-idx";
    int32_t n = argc > 2 ? atoi(argv[2]) : 4000;
    int32_t threads = argc > 3 ? atoi(argv[3]) : 2;
    int rounds = argc > 4 ? atoi(argv[4]) : 5;
    int32_t batch = argc > 5 ? atoi(argv[5]) : 16;
    if (threads < 2 || threads > MAX_W || rounds < 1 || rounds > 100 || n < 1 || batch < 1) return 2;
    char path[4096];
    size_t len_x, len_y;
    snprintf(path, sizeof(path), "%s/train-images.idx3-ubyte", dir);
    unsigned char *img = read_file(path, &len_x);
    snprintf(path, sizeof(path), "%s/train-labels.idx1-ubyte", dir);
    unsigned char *lab = read_file(path, &len_y);
    if (!img || !lab || len_x < 16 + (size_t)n * 784 || len_y < 8 + (size_t)n) {
        fprintf(stderr, "threads_split: cannot read %d MNIST images from %s\n", n, dir);
        return 2;
    }
    float *x = malloc((size_t)n * 784 * sizeof(float));
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    if (!x || !y) return 1;
    for (size_t i = 0; i < (size_t)n * 784; i++) x[i] = (float)img[16 + i] / 255.0f;
    for (int32_t i = 0; i < n; i++) y[i] = lab[8 + i];
    /* each mode on one worker too (the asynchronous one through ELSH_THREADS_ASYNC_SHARED):
     * its work apart from what a second core adds */
    enum { KINDS = 5 };
    const char *kinds[KINDS] = {"1 thread", "async", "deterministic", "determ., 1 thr", "async, 1 thr"};
    int32_t modes[KINDS] = {ELSH_THREADS_ASYNC, ELSH_THREADS_ASYNC, ELSH_THREADS_DETERMINISTIC,
                            ELSH_THREADS_DETERMINISTIC, ELSH_THREADS_ASYNC_SHARED};
    double rate[KINDS][100];
    double split[KINDS][MAX_W][N_PARTS], split_cpu[KINDS][MAX_W][N_PARTS];
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < KINDS; k++) {
            rate[k][r] = epoch(x, y, n, k == 0 || k >= 3 ? 1 : threads, modes[k], batch);
            memcpy(split[k], part_sum, sizeof(part_sum));
            memcpy(split_cpu[k], part_cpu, sizeof(part_cpu));
        }
    printf("%d samples, %d threads, batch %d, %d rounds (medians)\n", n, threads, batch, rounds);
    double one = 0;
    for (int k = 0; k < KINDS; k++) {
        qsort(rate[k], (size_t)rounds, sizeof(double), cmp_double);
        double med = rate[k][rounds / 2];
        if (k == 0) one = med;
        printf("%-14s %8.0f samples/s  %.2fx\n", kinds[k], med, med / one);
    }
    for (int c = 0; c < 2; c++) {
        if (c == 0)
            printf("\nsplit of the last round, wall us per sample of the epoch (all workers' parts add\n"
                   "up to the epoch's wall time times the workers)\n");
        else
            printf("\nthe same in the thread's CPU time (1 thread, last round: %.1f CPU us per sample)\n",
                   one_cpu_us);
        printf("%-14s %3s", "mode", "w");
        for (int p = 0; p < N_PARTS; p++) printf(" %10s", part_names[p]);
        printf("\n");
        for (int k = 1; k < KINDS; k++)
            for (int w = 0; w < (k >= 3 ? 1 : threads); w++) {
                printf("%-14s %3d", kinds[k], w);
                for (int p = 0; p < N_PARTS; p++) printf(" %10.2f", 1e6 * (c ? split_cpu : split)[k][w][p] / n);
                printf("\n");
            }
    }
    free(x);
    free(y);
    free(img);
    free(lab);
    return 0;
}
