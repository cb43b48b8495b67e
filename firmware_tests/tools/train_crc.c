/* train_crc.c - float training's cross-platform determinism: train three small LSH networks
 * (ternary, SimHash and DWTA hashing) for a fixed number of steps on data drawn from the
 * kernel's own PRNG, and print the CRC-32 of each whole trained arena (weights, biases, Adagrad
 * and momentum state, hash functions, tables, centers, PRNG states, scratch).
 *
 *   train_crc            one "train_crc: ..." line per network, then "train_crc: all 0x..."
 *
 * The kernel is built with -std=c99 -ffp-contract=off and computes e^x without libm
 * (elsh_expf), so every IEEE single-precision target must print the same lines; the Makefile
 * compares them with train_crc.expect (made on the host, see the Makefile's train-crc-expect).
 * No malloc (one static arena), no file I/O and no libm call whose result reaches the arena
 * (the loss, which uses logf, is not printed), so the same source runs as a Linux program, under
 * newlib semihosting (armv6) and on the Cortex-M33 board. */
#include "edge_lsh_train.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define N_IN 48
#define N_TRAIN 400
#define EPOCHS 3
#define MAX_CLASSES 10
#define ARENA_MAX (160u * 1024u)
#define DIM 0x1p-130f /* a dim sample's scale: its values are subnormal (below 2^-126) */

static unsigned char arena[ARENA_MAX] __attribute__((aligned(64)));
static float x_train[N_TRAIN * N_IN];
static int32_t y_train[N_TRAIN];
static int32_t order[N_TRAIN];

/* n_classes prototypes of non-negative values (about a third exact zeros), each sample a
 * prototype plus Gaussian noise, clipped at 0: pixel-like, sparse, with float noise in every
 * bit. One sample in 16 is dim, scaled by 2^-130 so that its values are subnormal: a target
 * that flushes subnormals to zero (FPSCR.FZ / ARM RunFast mode, x86 FTZ+DAZ, -ffast-math
 * start-up code) hashes them as all-zero inputs (the SimHash signs, the DWTA winners change)
 * and trains differently, so its CRCs differ. All from elsh_prng: the same data everywhere. */
static void make_data(uint64_t seed, int32_t n_classes)
{
    static float proto[MAX_CLASSES * N_IN];
    elsh_prng rng;
    elsh_prng_seed(&rng, seed);
    for (int32_t c = 0; c < n_classes; c++)
        for (int32_t i = 0; i < N_IN; i++)
            proto[c * N_IN + i] = elsh_prng_below(&rng, 3) == 0 ? 0.0f : 4.0f * elsh_prng_uniform(&rng);
    for (int32_t s = 0; s < N_TRAIN; s++) {
        int32_t c = (int32_t)elsh_prng_below(&rng, (uint32_t)n_classes);
        float scale = elsh_prng_below(&rng, 16) == 0 ? DIM : 1.0f;
        y_train[s] = c;
        for (int32_t i = 0; i < N_IN; i++) {
            float v = proto[c * N_IN + i] + 1.5f * elsh_prng_normal(&rng);
            x_train[s * N_IN + i] = v > 0.0f ? v * scale : 0.0f;
        }
    }
}

static elsh_hash_config hash_cfg(int32_t family, int32_t bits, int32_t tables)
{
    elsh_hash_config h;
    memset(&h, 0, sizeof h);
    h.family = family;
    h.bits = bits;
    h.tables = tables;
    h.pool = 1;
    return h;
}

typedef struct {
    const char *name;
    elsh_net_config cfg;
    elsh_train_config tc;
    int32_t n_classes;
    float warm_active; /* active fraction in epoch 0 (elsh_net_set_active); 0 = configured k */
} run_spec;

/* ternary: one LSH hidden layer, pooled and centered input, FIFO buckets, top-k; the default
 * training schedule (tables updated ten times an epoch), a larger active set in epoch 0 */
static void spec_ternary(run_spec *r)
{
    memset(r, 0, sizeof *r);
    r->name = "ternary";
    r->n_classes = 4;
    r->warm_active = 0.25f;
    elsh_net_config *c = &r->cfg;
    c->n_in = N_IN;
    c->n_layers = 2;
    c->seed = 11;
    c->layers[0].n_out = 128;
    c->layers[0].use_lsh = 1;
    c->layers[0].active_fraction = 0.1f;
    c->layers[0].hash = hash_cfg(ELSH_HASH_TERNARY, 3, 12);
    c->layers[0].hash.pool = 2;
    c->layers[0].hash.center = 1;
    c->layers[1].n_out = 4;
    elsh_train_config_default(&r->tc);
}

/* SimHash: two LSH hidden layers, small reservoir buckets with union selection below, top-k
 * above; tables updated every 25 samples, new hash functions every 300, L2 decay */
static void spec_simhash(run_spec *r)
{
    memset(r, 0, sizeof *r);
    r->name = "simhash";
    r->n_classes = 4;
    elsh_net_config *c = &r->cfg;
    c->n_in = N_IN;
    c->n_layers = 3;
    c->seed = 22;
    c->layers[0].n_out = 96;
    c->layers[0].use_lsh = 1;
    c->layers[0].active_fraction = 0.15f;
    c->layers[0].hash = hash_cfg(ELSH_HASH_SIMHASH, 4, 8);
    c->layers[0].hash.bucket_capacity = 6;
    c->layers[0].hash.insert_policy = ELSH_INSERT_RESERVOIR;
    c->layers[0].hash.select_mode = ELSH_SELECT_UNION;
    c->layers[1].n_out = 48;
    c->layers[1].use_lsh = 1;
    c->layers[1].active_fraction = 0.25f;
    c->layers[1].hash = hash_cfg(ELSH_HASH_SIMHASH, 3, 6);
    c->layers[2].n_out = 4;
    elsh_train_config_default(&r->tc);
    r->tc.rebuild = ELSH_REBUILD_EVERY;
    r->tc.rebuild_every = 25;
    r->tc.rehash_every = 300;
    r->tc.l2 = 1e-4f;
}

/* DWTA: an LSH hidden layer (bins of 8) and an LSH output layer over 10 classes (the label is
 * forced into the active set while training), centered SimHash at the output */
static void spec_dwta(run_spec *r)
{
    memset(r, 0, sizeof *r);
    r->name = "dwta";
    r->n_classes = 10;
    elsh_net_config *c = &r->cfg;
    c->n_in = N_IN;
    c->n_layers = 2;
    c->seed = 33;
    c->layers[0].n_out = 128;
    c->layers[0].use_lsh = 1;
    c->layers[0].active_fraction = 0.1f;
    c->layers[0].hash = hash_cfg(ELSH_HASH_DWTA, 2, 10);
    c->layers[0].hash.dwta_bin = 8;
    c->layers[1].n_out = 10;
    c->layers[1].use_lsh = 1;
    c->layers[1].active_fraction = 0.5f;
    c->layers[1].hash = hash_cfg(ELSH_HASH_SIMHASH, 2, 4);
    c->layers[1].hash.center = 1;
    elsh_train_config_default(&r->tc);
    r->tc.lr = 0.02f;
}

static int fail(const char *name, const char *what, int rc)
{
    printf("train_crc: %s: FAIL: %s: %s\n", name, what, elsh_status_str(rc));
    return -1;
}

/* Train one network; its arena's CRC into *crc. */
static int run(const run_spec *r, uint32_t *crc)
{
    size_t need;
    elsh_net net;
    int rc = elsh_net_plan(&r->cfg, &need);
    if (rc != ELSH_OK) return fail(r->name, "plan", rc);
    if (need > sizeof arena) {
        printf("train_crc: %s: FAIL: needs %lu B of arena, have %lu\n", r->name, (unsigned long)need,
               (unsigned long)sizeof arena);
        return -1;
    }
    memset(arena, 0, sizeof arena); /* the gaps between the arena's buffers too */
    rc = elsh_net_init(&net, &r->cfg, arena, need);
    if (rc == ELSH_OK) rc = elsh_net_randomize(&net);
    if (rc != ELSH_OK) return fail(r->name, "init", rc);
    make_data(r->cfg.seed + 1000u, r->n_classes);
    rc = elsh_net_fit_centers(&net, x_train, N_TRAIN);
    if (rc != ELSH_OK) return fail(r->name, "fit_centers", rc);

    int64_t correct[EPOCHS];
    int64_t steps = 0;
    for (int32_t epoch = 0; epoch < EPOCHS; epoch++) {
        elsh_train_stats st;
        memset(&st, 0, sizeof st);
        elsh_net_set_active(&net, epoch == 0 ? r->warm_active : 0.0f);
        rc = elsh_shuffle(&net, order, N_TRAIN);
        if (rc == ELSH_OK)
            rc = elsh_train_batch(&net, &r->tc, epoch, N_TRAIN, x_train, y_train, order, N_TRAIN, &st);
        if (rc != ELSH_OK) return fail(r->name, "train", rc);
        correct[epoch] = st.correct;
        steps += st.samples;
    }
    rc = elsh_net_check(&net);
    if (rc != ELSH_OK) return fail(r->name, "check after training", rc);

    *crc = elsh_crc32(0, arena, need);
    printf("train_crc: %s", r->name);
    for (int32_t l = 0; l < r->cfg.n_layers; l++)
        printf("%c%ld", l == 0 ? ' ' : '-', (long)(l == 0 ? r->cfg.n_in : r->cfg.layers[l - 1].n_out));
    printf("-%ld arena %lu B, %ld steps, correct/epoch", (long)r->cfg.layers[r->cfg.n_layers - 1].n_out,
           (unsigned long)need, (long)steps);
    for (int32_t e = 0; e < EPOCHS; e++) printf(" %ld", (long)correct[e]);
    printf(", crc 0x%08lx\n", (unsigned long)*crc);
    return 0;
}

int main(void)
{
    static run_spec specs[3];
    spec_ternary(&specs[0]);
    spec_simhash(&specs[1]);
    spec_dwta(&specs[2]);
    uint32_t all = 0;
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        uint32_t crc = 0;
        if (run(&specs[i], &crc) != 0) {
            bad = 1;
            continue;
        }
        unsigned char le[4] = {(unsigned char)crc, (unsigned char)(crc >> 8), (unsigned char)(crc >> 16),
                               (unsigned char)(crc >> 24)};
        all = elsh_crc32(all, le, sizeof le); /* CRC of the three CRCs, little-endian */
    }
    if (bad) return 1;
    printf("train_crc: all 0x%08lx\n", (unsigned long)all);
    return 0;
}
