/* test_select.c - choosing the active set from hand-set codes and bucket contents. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "test_util.h"

enum { NOUT = 10, TABLES = 3 };

/* An LSH layer of 10 neurons over 4 inputs, 3 tables of 2 bits, k = 5; the output layer of a
 * one-layer net when `output` (then the true label can be forced in). */
static int sel_net(tnet *t, int output)
{
    elsh_net_config cfg;
    cfg_init(&cfg, 4, output ? 1 : 2, 61u);
    cfg_lsh(&cfg.layers[0], NOUT, 0.5f, ELSH_HASH_SIMHASH, 2, TABLES);
    if (!output) cfg_dense(&cfg.layers[1], 2);
    int rc = tnet_create(t, &cfg);
    CHECK_EQ_INT(rc, ELSH_OK);
    if (rc != ELSH_OK) return 0;
    elsh_layer *L = &t->net.layers[0];
    CHECK_EQ_INT(L->k, 5);
    CHECK_EQ_INT(L->capacity, NOUT);
    elsh_tables_clear(L);
    return 1;
}

static void set_codes(elsh_layer *L, uint32_t c0, uint32_t c1, uint32_t c2)
{
    L->codes[0] = c0;
    L->codes[1] = c1;
    L->codes[2] = c2;
}

/* Run elsh_select and compare the active set with `expect` (ascending, n values). */
static void expect_select(elsh_layer *L, int32_t force, const int32_t *expect, int32_t n,
                          const char *what)
{
    elsh_ops ops;
    memset(&ops, 0, sizeof(ops));
    elsh_select(L, force, &ops);
    int same = L->n_active == n;
    for (int32_t a = 0; same && a < n; a++) same = L->active[a] == expect[a];
    if (!same) {
        char got[256], want[256];
        int pos = 0;
        for (int32_t a = 0; a < L->n_active && pos < 200; a++)
            pos += snprintf(got + pos, sizeof(got) - (size_t)pos, " %d", (int)L->active[a]);
        got[pos] = 0;
        pos = 0;
        for (int32_t a = 0; a < n && pos < 200; a++)
            pos += snprintf(want + pos, sizeof(want) - (size_t)pos, " %d", (int)expect[a]);
        want[pos] = 0;
        CHECK_MSG(same, "%s: active {%s } expected {%s }", what, got, want);
    }
    for (int32_t j = 0; j < L->n_out; j++) CHECK_MSG(L->counts[j] == 0, "%s: counts[%d] left non-zero", what, (int)j);
    CHECK(ops.cmp > 0);
}

/* The padding the header describes: pad_order from a start hashed from the codes, skipping
 * neurons already selected. sel[] marks the selected neurons; returns the count. */
static int32_t expected_padding(const elsh_layer *L, int *sel, int32_t n_sel)
{
    uint64_t h = 0;
    for (int32_t t = 0; t < L->hash.tables; t++) h = elsh_mix64(h ^ L->codes[t]);
    int32_t start = (int32_t)(h % (uint64_t)L->n_out);
    for (int32_t i = 0; n_sel < L->k; i++) {
        int32_t j = L->pad_order[(start + i) % L->n_out];
        if (!sel[j]) {
            sel[j] = 1;
            n_sel++;
        }
    }
    return n_sel;
}

static int32_t to_list(const int *sel, int32_t *out)
{
    int32_t n = 0;
    for (int32_t j = 0; j < NOUT; j++)
        if (sel[j]) out[n++] = j;
    return n;
}

static void fill_example(elsh_layer *L)
{
    static const uint16_t t0[3] = {5, 2, 7}, t1[3] = {5, 7, 9}, t2[3] = {5, 9, 1};
    static const uint16_t n0[2] = {0, 3}, n1[3] = {4, 6, 8}, n2[1] = {6};
    layer_put(L, 0, 1, t0, 3);
    layer_put(L, 1, 3, t1, 3);
    layer_put(L, 2, 0, t2, 3);
    /* buckets the input does not hash to */
    layer_put(L, 0, 2, n0, 2);
    layer_put(L, 1, 0, n1, 3);
    layer_put(L, 2, 3, n2, 1);
    set_codes(L, 1, 3, 0);
}

void test_select_topk_exact(void)
{
    tnet t;
    if (!sel_net(&t, 0)) return;
    elsh_layer *L = &t.net.layers[0];
    fill_example(L);
    /* counts: 5 -> 3, 7 -> 2, 9 -> 2, 1 -> 1, 2 -> 1 */
    static const int32_t k1[1] = {5}, k3[3] = {5, 7, 9}, k4[4] = {1, 5, 7, 9}, k5[5] = {1, 2, 5, 7, 9};
    L->k = 1;
    expect_select(L, -1, k1, 1, "top-1");
    CHECK_EQ_INT(L->n_candidates, 5);
    L->k = 3;
    expect_select(L, -1, k3, 3, "top-3");
    L->k = 4;
    expect_select(L, -1, k4, 4, "top-4 (tie at count 1 to the lower id)");
    L->k = 5;
    expect_select(L, -1, k5, 5, "top-5 = every candidate, no padding");
    CHECK_EQ_INT(L->n_candidates, 5);
    /* the same input again gives the same set (scratch was restored) */
    expect_select(L, -1, k5, 5, "top-5 again");
    L->k = 3;
    expect_select(L, -1, k3, 3, "top-3 again");
    tnet_destroy(&t);
}

void test_select_topk_ties_lower_id(void)
{
    tnet t;
    if (!sel_net(&t, 0)) return;
    elsh_layer *L = &t.net.layers[0];
    static const uint16_t t0[2] = {8, 3}, t1[2] = {3, 8}, t2[3] = {6, 2, 9};
    layer_put(L, 0, 0, t0, 2);
    layer_put(L, 1, 2, t1, 2);
    layer_put(L, 2, 1, t2, 3);
    set_codes(L, 0, 2, 1);
    /* counts: 3 -> 2, 8 -> 2, 2, 6, 9 -> 1 */
    static const int32_t k1[1] = {3}, k2[2] = {3, 8}, k3[3] = {2, 3, 8}, k4[4] = {2, 3, 6, 8};
    L->k = 1;
    expect_select(L, -1, k1, 1, "tie of two at the top");
    L->k = 2;
    expect_select(L, -1, k2, 2, "top-2");
    L->k = 3;
    expect_select(L, -1, k3, 3, "tie of three at count 1");
    L->k = 4;
    expect_select(L, -1, k4, 4, "two of three at count 1");
    tnet_destroy(&t);
}

void test_select_union(void)
{
    tnet t;
    if (!sel_net(&t, 0)) return;
    elsh_layer *L = &t.net.layers[0];
    L->hash.select_mode = ELSH_SELECT_UNION;
    fill_example(L);
    /* table order, bucket order: 5, 2, 7 | (5), (7), 9 | (5), (9), 1 */
    static const int32_t k2[2] = {2, 5}, k3[3] = {2, 5, 7}, k4[4] = {2, 5, 7, 9}, k5[5] = {1, 2, 5, 7, 9};
    L->k = 2;
    expect_select(L, -1, k2, 2, "union k=2");
    L->k = 3;
    expect_select(L, -1, k3, 3, "union k=3");
    CHECK_EQ_INT(L->n_candidates, 3);
    L->k = 4;
    expect_select(L, -1, k4, 4, "union k=4");
    L->k = 5;
    expect_select(L, -1, k5, 5, "union k=5");
    CHECK_EQ_INT(L->n_candidates, 5);
    tnet_destroy(&t);
}

void test_select_padding_empty_buckets(void)
{
    for (int32_t mode = 0; mode < 2; mode++) {
        tnet t;
        if (!sel_net(&t, 0)) return;
        elsh_layer *L = &t.net.layers[0];
        L->hash.select_mode = mode;
        static const uint32_t code_sets[4][3] = {{0, 0, 0}, {1, 2, 3}, {3, 3, 1}, {2, 0, 1}};
        int32_t first[5] = {0};
        int differs = 0;
        for (int c = 0; c < 4; c++) {
            set_codes(L, code_sets[c][0], code_sets[c][1], code_sets[c][2]);
            int sel[NOUT] = {0};
            int32_t want[NOUT];
            CHECK_EQ_INT(expected_padding(L, sel, 0), 5);
            int32_t n = to_list(sel, want);
            expect_select(L, -1, want, n, mode ? "union, all padding" : "top-k, all padding");
            CHECK_EQ_INT(L->n_candidates, 0);
            /* exactly k distinct ids, ascending, in range */
            CHECK_EQ_INT(L->n_active, 5);
            for (int32_t a = 0; a < L->n_active; a++) {
                CHECK(L->active[a] >= 0 && L->active[a] < NOUT);
                if (a) CHECK(L->active[a - 1] < L->active[a]);
            }
            /* deterministic for the same codes */
            int32_t again[5];
            memcpy(again, L->active, sizeof(again));
            elsh_ops ops;
            memset(&ops, 0, sizeof(ops));
            elsh_select(L, -1, &ops);
            CHECK(memcmp(again, L->active, sizeof(again)) == 0);
            if (c == 0) memcpy(first, L->active, sizeof(first));
            else differs |= memcmp(first, L->active, sizeof(first)) != 0;
        }
        CHECK_MSG(differs, "padding ignores the input's codes");
        tnet_destroy(&t);
    }
}

void test_select_k_larger_than_candidates(void)
{
    for (int32_t mode = 0; mode < 2; mode++) {
        tnet t;
        if (!sel_net(&t, 0)) return;
        elsh_layer *L = &t.net.layers[0];
        L->hash.select_mode = mode;
        static const uint16_t t0[2] = {5, 2}, t2[1] = {5};
        layer_put(L, 0, 3, t0, 2);
        layer_put(L, 2, 1, t2, 1);
        set_codes(L, 3, 0, 1);
        int sel[NOUT] = {0};
        sel[2] = sel[5] = 1;
        int32_t want[NOUT];
        CHECK_EQ_INT(expected_padding(L, sel, 2), 5);
        int32_t n = to_list(sel, want);
        expect_select(L, -1, want, n, mode ? "union, 2 candidates for k=5" : "top-k, 2 candidates for k=5");
        CHECK_EQ_INT(L->n_candidates, 2);
        int has2 = 0, has5 = 0;
        for (int32_t a = 0; a < L->n_active; a++) {
            has2 |= L->active[a] == 2;
            has5 |= L->active[a] == 5;
        }
        CHECK(has2 && has5);
        /* k = n_out: everything, whatever collides */
        L->k = NOUT;
        static const int32_t all[NOUT] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
        expect_select(L, -1, all, NOUT, "k = n_out");
        tnet_destroy(&t);
    }
}

void test_select_force_label(void)
{
    tnet t;
    if (!sel_net(&t, 1)) return;
    elsh_layer *L = &t.net.layers[0];
    CHECK_EQ_INT(L->is_output, 1);
    CHECK_EQ_INT(L->active_capacity, L->n_out + 1); /* any k up to n_out, plus the label */
    fill_example(L);
    L->k = 3; /* {5, 7, 9} */
    static const int32_t f0[4] = {0, 5, 7, 9}, f6[4] = {5, 6, 7, 9}, f8[4] = {5, 7, 8, 9},
                         f7[3] = {5, 7, 9};
    expect_select(L, 6, f6, 4, "force 6 (middle)");
    expect_select(L, 0, f0, 4, "force 0 (front)");
    expect_select(L, 8, f8, 4, "force 8");
    expect_select(L, 7, f7, 3, "force 7 (already active)");
    expect_select(L, 9, f7, 3, "force 9 (already active, last)");
    expect_select(L, -1, f7, 3, "no force");
    expect_select(L, NOUT, f7, 3, "force out of range");
    /* at full k too */
    L->k = 5;
    static const int32_t k5[5] = {1, 2, 5, 7, 9}, k5f[6] = {1, 2, 3, 5, 7, 9};
    expect_select(L, 3, k5f, 6, "k = 5, force 3");
    expect_select(L, 2, k5, 5, "k = 5, force 2 (active)");
    /* the forward pass forces the label and computes it */
    L->k = 3;
    float x[4] = {0.5f, -1.0f, 2.0f, 0.25f};
    elsh_tables_clear(L);
    fill_example(L);
    elsh_layer_forward_f32(L, x, NULL, 4, 4);
    int found = 0;
    for (int32_t a = 0; a < L->n_active; a++) {
        if (a) CHECK(L->active[a - 1] < L->active[a]);
        if (L->active[a] != 4) continue;
        found = 1;
        double z = L->b[4];
        for (int i = 0; i < 4; i++) z += (double)L->w[4 * 4 + i] * x[i];
        CHECK_NEAR(L->act[a], z, 1e-5); /* the output layer keeps the logit */
    }
    CHECK(found);
    CHECK(L->n_active == 3 || L->n_active == 4);
    tnet_destroy(&t);

    /* a hidden layer has no room for a forced neuron: k stays k */
    if (!sel_net(&t, 0)) return;
    L = &t.net.layers[0];
    fill_example(L);
    L->k = 5;
    static const int32_t h5[5] = {1, 2, 5, 7, 9};
    expect_select(L, 3, h5, 5, "hidden layer ignores force");
    tnet_destroy(&t);
}

void test_pad_order_is_permutation(void)
{
    elsh_net_config cfg;
    cfg_init(&cfg, 8, 2, 12u);
    cfg_lsh(&cfg.layers[0], 300, 0.1f, ELSH_HASH_SIMHASH, 3, 2);
    cfg_dense(&cfg.layers[1], 2);
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    elsh_layer *L = &t.net.layers[0];
    int seen[300] = {0}, fixed = 0;
    for (int32_t j = 0; j < 300; j++) {
        CHECK(L->pad_order[j] < 300);
        if (L->pad_order[j] < 300) seen[L->pad_order[j]]++;
        fixed += L->pad_order[j] == j;
    }
    for (int32_t j = 0; j < 300; j++) CHECK_EQ_INT(seen[j], 1);
    CHECK(fixed < 10); /* shuffled, not the identity */
    tnet_destroy(&t);
}
