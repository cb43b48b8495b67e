/* test_limits.c - hostile .elsh files (issue 15) and the PREPROCESS section, through the
 * structure-aware generator of the fuzzer (fuzz/elsh_gen.h):
 *   - the two files of the issue: 3 KB asking for a 1 GB arena, 52 KB asking for 1.15 GB and
 *     67 million multiplications per input, both refused at open with ELSH_FMT_LIMITS;
 *   - each per-file total (FORMAT.md 5.8) met exactly: accepted one step below, refused at it;
 *   - PREPROCESS read into elsh_qnet_summary, its bad values and sizes refused, the outputs the
 *     same with and without it;
 *   - every rule of the generator broken on a few models, each with its status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/elsh_gen.h"
#include "check.h"
#include "test_util.h"

/* Open (and, when accepted, attach) a file from an aligned copy: the status, and the arena.
 * A machine without room for the arena (a microcontroller under QEMU: the files at the limits
 * ask for 32 MB) gets the verdict of elsh_model_open alone. */
static int open_file(const uint8_t *data, size_t size, size_t *need)
{
    void *raw;
    uint8_t *file = (uint8_t *)aligned_zalloc(size, &raw);
    if (!file) return ELSH_ERR_ARENA;
    memcpy(file, data, size);
    elsh_qnet net;
    int rc = elsh_model_open(&net, file, size, need);
    if (rc == ELSH_OK) {
        void *araw;
        void *arena = aligned_zalloc(*need ? *need : 1, &araw);
        if (arena) rc = elsh_model_attach(&net, arena, *need);
        free(araw);
    }
    free(raw);
    return rc;
}

static void dense_layer(gen_layer *L, uint32_t n_in, uint32_t n_out, int is_output)
{
    memset(L, 0, sizeof *L);
    L->n_in = n_in;
    L->n_out = n_out;
    L->k = n_out;
    L->is_output = (uint8_t)is_output;
    L->weight_bits = 8;
    L->in_scale = L->out_scale = 1.0f;
}

static void simhash_layer(gen_layer *L, uint32_t bits, uint32_t tables)
{
    L->use_lsh = 1;
    L->family = ELSH_HASH_SIMHASH;
    L->bits = (uint8_t)bits;
    L->tables = (uint16_t)tables;
    L->pool = 1;
    L->k = 1;
    gen_derive(L);
}

/* A chain of layers of the given widths (widths[0] inputs), every one SimHash K, L, hash
 * functions drawn from the seed, tables built at load. */
static void chain(gen_model *m, const uint32_t *widths, uint32_t n_layers, uint32_t bits, uint32_t tables)
{
    memset(m, 0, sizeof *m);
    m->n_in = widths[0];
    m->n_layers = n_layers;
    m->n_classes = widths[n_layers];
    m->inv_scale = 1.0f;
    m->seed = 1;
    for (uint32_t l = 0; l < n_layers; l++) {
        dense_layer(&m->layer[l], widths[l], widths[l + 1], l == n_layers - 1);
        simhash_layer(&m->layer[l], bits, tables);
    }
}

void test_limits_issue_files_refused_at_open(void)
{
    elsh_prng r;
    elsh_prng_seed(&r, 15);
    /* 8 layers 1 -> 2 -> ... -> 2 at L = 1024, K = 15: 128 MB of bucket offsets each */
    static const uint32_t tiny[9] = {1, 2, 2, 2, 2, 2, 2, 2, 2};
    /* 1 -> 1092 -> 1 -> ...: every other layer hashes 1092 values 1024 * 15 times per input */
    static const uint32_t wide[9] = {1, 1092, 1, 1092, 1, 1092, 1, 1092, 2};
    const uint32_t *chains[2] = {tiny, wide};
    for (int c = 0; c < 2; c++) {
        gen_model m;
        chain(&m, chains[c], 8, 15, 1024);
        size_t size, need = 1;
        uint8_t *file = gen_file_of(&m, &r, &size);
        gen_totals t = gen_model_totals(&m);
        CHECK_MSG(size < 60000, "%zu bytes", size);
        CHECK_MSG(t.arena > ((uint64_t)1 << 30), "arena %llu", (unsigned long long)t.arena);
        if (c == 1) CHECK_MSG(t.input > 67000000u, "work per input %llu", (unsigned long long)t.input);
        CHECK_EQ_INT(gen_verdict(&m, size), ELSH_FMT_LIMITS);
        CHECK_EQ_INT(open_file(file, size, &need), ELSH_FMT_LIMITS); /* at open: nothing allocated */
        CHECK_EQ_INT(need, 0);
        free(file);
    }
}

/* The first value of the knobs (1..1024, all set alike) at which the model's totals leave the
 * limits of a file of f bytes. */
static uint32_t first_over(gen_model *m, uint16_t *knobs[], int n_knobs, uint64_t f)
{
    uint32_t lo = 1, hi = 1024;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        for (int k = 0; k < n_knobs; k++) *knobs[k] = (uint16_t)mid;
        gen_totals t = gen_model_totals(m);
        if (gen_within(&t, f)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* One step below the first L over a limit: accepted, with the arena the layout says; at it:
 * ELSH_FMT_LIMITS. `which` names the total that must be the one met. */
static void straddle(gen_model *m, uint16_t *knobs[], int n_knobs, int which, const char *what)
{
    elsh_prng r;
    elsh_prng_seed(&r, 7);
    size_t size;
    uint8_t *file = gen_file_of(m, &r, &size); /* its limits do not depend on L: base or size */
    free(file);
    uint32_t over = first_over(m, knobs, n_knobs, size);
    CHECK_MSG(over > 1 && over <= 1024, "%s: first L over %u", what, (unsigned)over);
    for (int step = 0; step < 2; step++) {
        for (int k = 0; k < n_knobs; k++) *knobs[k] = (uint16_t)(over - 1u + (uint32_t)step);
        file = gen_file_of(m, &r, &size);
        gen_totals t = gen_model_totals(m);
        uint64_t used[3] = {t.arena, t.input, t.load};
        uint64_t cap[3] = {gen_limit(ELSH_LIMIT_ARENA_BASE, ELSH_LIMIT_ARENA_PER_BYTE, size),
                           gen_limit(ELSH_LIMIT_INPUT_WORK_BASE, ELSH_LIMIT_INPUT_WORK_PER_BYTE, size),
                           gen_limit(ELSH_LIMIT_LOAD_WORK_BASE, ELSH_LIMIT_LOAD_WORK_PER_BYTE, size)};
        size_t need = 0;
        int rc = open_file(file, size, &need);
        if (step == 0) {
            CHECK_MSG(rc == ELSH_OK, "%s at L = %u: %s", what, (unsigned)over - 1u, elsh_status_str(rc));
            CHECK_EQ_INT(need, t.arena);
            CHECK_MSG(used[which] > cap[which] / 2, "%s: %llu of %llu", what, (unsigned long long)used[which],
                      (unsigned long long)cap[which]);
        } else {
            CHECK_MSG(rc == ELSH_FMT_LIMITS, "%s at L = %u: %s", what, (unsigned)over, elsh_status_str(rc));
            CHECK_MSG(used[which] > cap[which], "%s: the total over its limit is another one", what);
        }
        free(file);
    }
}

void test_limits_each_total_met_exactly(void)
{
    gen_model m;
    /* arena: one layer of 15-bit tables built at load (128 KB of offsets per table) */
    static const uint32_t a[3] = {64, 16, 2};
    chain(&m, a, 2, 15, 1);
    m.layer[1].use_lsh = 0;
    memset(&m.layer[1], 0, sizeof m.layer[1]);
    dense_layer(&m.layer[1], 16, 2, 1);
    uint16_t *knob_a[1] = {&m.layer[0].tables};
    straddle(&m, knob_a, 1, 0, "arena");

    /* work per input: 8 DWTA layers over bins of 256, small sparse stored tables */
    elsh_prng r;
    elsh_prng_seed(&r, 3);
    gen_input_heavy(&m, &r);
    uint16_t *knob_i[8];
    for (int l = 0; l < 8; l++) knob_i[l] = &m.layer[l].tables;
    straddle(&m, knob_i, 8, 1, "work per input");

    /* work at load: 2048 inputs hashed with 8-bit SimHash drawn from the seed, then every
     * neuron's row hashed twice to build the tables */
    static const uint32_t w[3] = {2048, 1, 2};
    chain(&m, w, 2, 8, 1);
    memset(&m.layer[1], 0, sizeof m.layer[1]);
    dense_layer(&m.layer[1], 1, 2, 1);
    uint16_t *knob_w[1] = {&m.layer[0].tables};
    straddle(&m, knob_w, 1, 2, "work at load");
}

/* ---------------------------------------------------------------- PREPROCESS */

static void small_model(gen_model *m)
{
    static const uint32_t widths[3] = {6, 5, 3};
    chain(m, widths, 2, 3, 4);
    m->layer[0].k = 3;
    m->layer[1].use_lsh = 0;
    memset(&m->layer[1], 0, sizeof m->layer[1]);
    dense_layer(&m->layer[1], 5, 3, 1);
}

/* Open a file, attach it, and read its summary; the logits of one input into logits[3]. */
static int run_small(const uint8_t *data, size_t size, elsh_qnet_summary *sum, int32_t *logits)
{
    void *raw, *araw = NULL;
    uint8_t *file = (uint8_t *)aligned_zalloc(size, &raw);
    memcpy(file, data, size);
    elsh_qnet net;
    size_t need;
    int rc = elsh_model_open(&net, file, size, &need);
    if (rc == ELSH_OK) rc = elsh_qnet_info(&net, sum);
    if (rc == ELSH_OK) {
        void *arena = aligned_zalloc(need, &araw);
        rc = elsh_model_attach(&net, arena, need);
    }
    if (rc == ELSH_OK) {
        static const int8_t xq[6] = {1, -5, 100, -128, 127, 3};
        elsh_qnet_forward(&net, xq);
        memcpy(logits, elsh_qnet_logits(&net), 3 * sizeof(int32_t));
    }
    free(araw);
    free(raw);
    return rc;
}

void test_preprocess_section(void)
{
    gen_model m;
    small_model(&m);
    elsh_prng r;
    size_t size;
    elsh_qnet_summary sum;
    int32_t plain[3], with[3];
    elsh_prng_seed(&r, 5);
    uint8_t *file = gen_file_of(&m, &r, &size);
    CHECK_EQ_INT(run_small(file, size, &sum, plain), ELSH_OK);
    CHECK_EQ_INT(sum.has_preprocess, 0);
    CHECK(sum.input_divisor == 0.0f && sum.input_min == 0.0f && sum.input_max == 0.0f);
    CHECK_EQ_INT(file[10], 0); /* a 1.0 file */
    free(file);

    m.preprocess = 1;
    m.pre[0] = 255.0f;
    m.pre[1] = -0.5f;
    m.pre[2] = 1.0f;
    elsh_prng_seed(&r, 5); /* the same weights */
    file = gen_file_of(&m, &r, &size);
    CHECK_EQ_INT(file[10], 1); /* 1.1: a section type 1.0 readers skip */
    CHECK_EQ_INT(run_small(file, size, &sum, with), ELSH_OK);
    CHECK_EQ_INT(sum.has_preprocess, 1);
    CHECK(sum.input_divisor == 255.0f && sum.input_min == -0.5f && sum.input_max == 1.0f);
    CHECK(memcmp(plain, with, sizeof plain) == 0);
    free(file);

    /* bad values: ELSH_FMT_NET; a wrong size: ELSH_FMT_SIZE; min == max and required: fine */
    static const float bad[][3] = {{0.0f, 0.0f, 1.0f}, {-1.0f, 0.0f, 1.0f}, {1.0f, 2.0f, 1.0f}};
    for (int i = 0; i < 3; i++) {
        memcpy(m.pre, bad[i], sizeof m.pre);
        file = gen_file_of(&m, &r, &size);
        CHECK_EQ_INT(run_small(file, size, &sum, with), ELSH_FMT_NET);
        free(file);
    }
    static const uint32_t bad_bits[][3] = {{0x7FC00000u, 0, 0x3F800000u},  /* NaN divisor */
                                           {0x7F800000u, 0, 0x3F800000u},  /* inf divisor */
                                           {0x3F800000u, 0xFF800000u, 0},  /* -inf min */
                                           {0x3F800000u, 0, 0x7FC00000u},  /* NaN max */
                                           {0x80000000u, 0, 0x3F800000u}}; /* -0 divisor */
    for (int i = 0; i < 5; i++) {
        memcpy(m.pre, bad_bits[i], sizeof m.pre);
        file = gen_file_of(&m, &r, &size);
        CHECK_MSG(run_small(file, size, &sum, with) == ELSH_FMT_NET, "case %d", i);
        free(file);
    }
    m.pre[0] = 2.0f;
    m.pre[1] = m.pre[2] = 3.0f;
    gen_file f;
    gen_sections(&m, &r, &f);
    gen_section *pre = gen_find(&f, GEN_PREPROCESS, GEN_NO_LAYER);
    pre->flags = 1; /* required: this reader knows the type */
    file = gen_assemble(&f, &size);
    CHECK_EQ_INT(run_small(file, size, &sum, with), ELSH_OK);
    CHECK(sum.input_min == 3.0f && sum.input_max == 3.0f);
    free(file);
    pre->data[12] = 1; /* reserved */
    file = gen_assemble(&f, &size);
    CHECK_EQ_INT(run_small(file, size, &sum, with), ELSH_FMT_NET);
    free(file);
    pre->size = 12;
    file = gen_assemble(&f, &size);
    CHECK_EQ_INT(run_small(file, size, &sum, with), ELSH_FMT_SIZE);
    free(file);
    pre->size = 16;
    pre->layer = 0;
    file = gen_assemble(&f, &size);
    CHECK_EQ_INT(run_small(file, size, &sum, with), ELSH_FMT_UNEXPECTED);
    free(file);
    gen_free(&f);
}

/* ---------------------------------------------------------------- every rule */

void test_limits_every_rule_broken(void)
{
    elsh_prng r;
    elsh_prng_seed(&r, 2024);
    int applied[GEN_N_BREAKS] = {0};
    for (int model = 0; model < 40; model++) {
        gen_model m;
        do gen_random_model(&r, &m, 0);
        while (gen_verdict(&m, 0) != ELSH_OK);
        for (int which = 0; which < GEN_N_BREAKS; which++) {
            if (which == GEN_BREAK_STRADDLE && model % 8) continue; /* the costly ones: fewer */
            int expect;
            size_t size, need;
            uint8_t *file = gen_broken(which, &m, &r, &size, &expect);
            if (!file) continue;
            applied[which]++;
            int rc = open_file(file, size, &need);
            CHECK_MSG(rc == expect, "model %d, %s: %s, expected %s", model, gen_break_name(which),
                      elsh_status_str(rc), elsh_status_str(expect));
            free(file);
        }
    }
    for (int which = 0; which < GEN_N_BREAKS; which++)
        CHECK_MSG(applied[which] > 0, "%s never applied", gen_break_name(which));
}
