/* test_hash.c - hash families on hand-built projections, pooling, DWTA densification. */
#include <string.h>

#include "check.h"
#include "test_util.h"

/* A net whose first layer is the LSH layer under test, followed by a dense output of 2. */
static int one_layer(tnet *t, int32_t n_in, int32_t n_out, int32_t family, int32_t bits,
                     int32_t tables, int32_t pool, int32_t param)
{
    elsh_net_config cfg;
    cfg_init(&cfg, n_in, 2, 17u);
    cfg_lsh(&cfg.layers[0], n_out, 0.5f, family, bits, tables);
    cfg.layers[0].hash.pool = pool;
    if (family == ELSH_HASH_TERNARY) cfg.layers[0].hash.ternary_nnz = param;
    if (family == ELSH_HASH_DWTA) cfg.layers[0].hash.dwta_bin = param;
    cfg_dense(&cfg.layers[1], 2);
    int rc = tnet_create(t, &cfg);
    CHECK_EQ_INT(rc, ELSH_OK);
    return rc == ELSH_OK;
}

static int hash_zero(const elsh_layer *L)
{
    for (int32_t i = 0; i < L->hash.hash_dim; i++)
        if (L->hash_in[i] != 0.0f) return 0;
    return 1;
}

void test_simhash_hand_projection(void)
{
    tnet t;
    if (!one_layer(&t, 4, 8, ELSH_HASH_SIMHASH, 2, 2, 1, 0)) return;
    elsh_layer *L = &t.net.layers[0];
    /* proj[(t * K + bit) * d + i] */
    static const float proj[2][2][4] = {
        {{1, 0, 0, 0}, {0, 1, 0, 0}},
        {{0, 0, 1, -1}, {-1, -1, -1, -1}},
    };
    memcpy(L->proj, proj, sizeof(proj));
    static const float v1[4] = {1, -2, 3, 1};   /* t0: bits (1, 0) -> 1; t1: (2 > 0, -3) -> 1 */
    static const float v2[4] = {-1, 2, 0, 1};   /* t0: (0, 1) -> 2; t1: (-1, -2) -> 0 */
    static const float v3[4] = {0, 0, -1, -1};  /* t0: exact zeros -> 0; t1: (0, 2) -> 2 */
    static const float v4[4] = {-1, -1, 5, -2}; /* t0: 0; t1: (7, -3) -> 1 */
    elsh_ops ops;
    memset(&ops, 0, sizeof(ops));
    CHECK_EQ_INT(elsh_hash_code(L, v1, 0, &ops), 1);
    CHECK_EQ_INT(elsh_hash_code(L, v1, 1, &ops), 1);
    CHECK_EQ_INT(elsh_hash_code(L, v2, 0, &ops), 2);
    CHECK_EQ_INT(elsh_hash_code(L, v2, 1, &ops), 0);
    CHECK_EQ_INT(elsh_hash_code(L, v3, 0, &ops), 0);
    CHECK_EQ_INT(elsh_hash_code(L, v3, 1, &ops), 2);
    CHECK_EQ_INT(elsh_hash_code(L, v4, 0, &ops), 0);
    CHECK_EQ_INT(elsh_hash_code(L, v4, 1, &ops), 1);
    CHECK_EQ_INT(elsh_hash_code(L, v4, 1, NULL), 1);
    /* 8 codes of K = 2 bits over d = 4 (the NULL-ops call counts nothing) */
    CHECK_EQ_INT(ops.mul, 8 * 2 * 4);
    CHECK_EQ_INT(ops.cmp, 8 * 2);
    CHECK_EQ_INT(ops.weight_bytes, 8 * 2 * 4 * 4);
    /* v == NULL hashes hash_in */
    memcpy(L->hash_in, v2, sizeof(v2));
    CHECK_EQ_INT(elsh_hash_code(L, NULL, 0, NULL), 2);
    memset(L->hash_in, 0, sizeof(v2));
    /* the forward pass hashes the (dense, unpooled) input into codes[] */
    elsh_layer_forward_f32(L, v1, NULL, 4, -1);
    CHECK_EQ_INT(L->codes[0], 1);
    CHECK_EQ_INT(L->codes[1], 1);
    elsh_layer_forward_f32(L, v3, NULL, 4, -1);
    CHECK_EQ_INT(L->codes[0], 0);
    CHECK_EQ_INT(L->codes[1], 2);
    CHECK(hash_zero(L));
    tnet_destroy(&t);
}

void test_ternary_hand_projection(void)
{
    tnet t;
    if (!one_layer(&t, 6, 8, ELSH_HASH_TERNARY, 3, 2, 1, 2)) return;
    elsh_layer *L = &t.net.layers[0];
    CHECK_EQ_INT(L->hash.ternary_nnz, 2);
    /* [(t * K + bit) * nnz + q] */
    static const uint16_t idx[2][3][2] = {
        {{0, 1}, {2, 3}, {4, 5}},
        {{5, 0}, {1, 4}, {3, 2}},
    };
    static const int8_t sign[2][3][2] = {
        {{1, -1}, {1, 1}, {-1, -1}},
        {{1, 1}, {-1, 1}, {1, -1}},
    };
    memcpy(L->tern_idx, idx, sizeof(idx));
    memcpy(L->tern_sign, sign, sizeof(sign));
    static const float v[6] = {3, 1, -2, 1, 0.5f, -4};
    /* t0: bit0 3-1=2>0 ->1; bit1 -2+1=-1 ->0; bit2 -0.5+4=3.5 ->1: code 0b101 = 5
     * t1: bit0 -4+3=-1 ->0; bit1 -1+0.5=-0.5 ->0; bit2 1+2=3 ->1: code 0b100 = 4 */
    elsh_ops ops;
    memset(&ops, 0, sizeof(ops));
    CHECK_EQ_INT(elsh_hash_code(L, v, 0, &ops), 5);
    CHECK_EQ_INT(elsh_hash_code(L, v, 1, &ops), 4);
    CHECK_EQ_INT(ops.mul, 0); /* adds and subtracts only */
    CHECK_EQ_INT(ops.add, 2 * 3 * 2);
    CHECK_EQ_INT(ops.cmp, 2 * 3);
    static const float w[6] = {-3, -1, 2, -1, -0.5f, 4}; /* the negation flips non-zero sums */
    CHECK_EQ_INT(elsh_hash_code(L, w, 0, NULL), 2);
    CHECK_EQ_INT(elsh_hash_code(L, w, 1, NULL), 3);
    static const float z[6] = {1, 1, 1, 1, 1, 1}; /* sums +-2 or 0: 0 is not > 0 */
    CHECK_EQ_INT(elsh_hash_code(L, z, 0, NULL), 2);
    CHECK_EQ_INT(elsh_hash_code(L, z, 1, NULL), 1);
    tnet_destroy(&t);
}

void test_dwta_hand_bins(void)
{
    tnet t;
    /* K = 4 bits, bin 4 (2 bits per sub-hash): two bins per table, one table */
    if (!one_layer(&t, 8, 8, ELSH_HASH_DWTA, 4, 1, 1, 4)) return;
    elsh_layer *L = &t.net.layers[0];
    CHECK_EQ_INT(L->hash.dwta_bits, 2);
    CHECK_EQ_INT(L->hash.dwta_per_table, 2);
    static const uint16_t idx[2][4] = {{0, 1, 2, 3}, {7, 6, 5, 4}};
    memcpy(L->dwta_idx, idx, sizeof(idx));
    static const float v1[8] = {1, 5, 2, 0, 0, 0, 9, 3};       /* pos 1, pos 1 -> 1 | 1 << 2 */
    static const float v2[8] = {0, 0, 0, 4, 8, 0, 0, 0};       /* pos 3, pos 3 -> 15 */
    static const float v3[8] = {2, 2, 2, 2, 1, 1, 1, 1};       /* ties: the first, 0 */
    static const float v4[8] = {-3, -1, -2, -5, -1, -1, 0, -1}; /* negatives count: pos 1, pos 1 */
    static const float v5[8] = {0, 0, 6, 0, 2, 0, 0, 0};       /* pos 2, pos 3 -> 14 */
    elsh_ops ops;
    memset(&ops, 0, sizeof(ops));
    CHECK_EQ_INT(elsh_hash_code(L, v1, 0, &ops), 5);
    CHECK_EQ_INT(ops.mul, 0);
    CHECK_EQ_INT(ops.add, 0);
    CHECK(ops.cmp >= 8);
    CHECK_EQ_INT(elsh_hash_code(L, v2, 0, NULL), 15);
    CHECK_EQ_INT(elsh_hash_code(L, v3, 0, NULL), 0);
    CHECK_EQ_INT(elsh_hash_code(L, v4, 0, NULL), 5);
    CHECK_EQ_INT(elsh_hash_code(L, v5, 0, NULL), 14);
    tnet_destroy(&t);

    /* K = 3 with bin 4: two sub-hashes of 2 bits, the code masked to 3 bits */
    if (!one_layer(&t, 8, 8, ELSH_HASH_DWTA, 3, 1, 1, 4)) return;
    L = &t.net.layers[0];
    CHECK_EQ_INT(L->hash.dwta_per_table, 2);
    memcpy(L->dwta_idx, idx, sizeof(idx));
    CHECK_EQ_INT(elsh_hash_code(L, v5, 0, NULL), 6);  /* (2 | 3 << 2) & 7 */
    CHECK_EQ_INT(elsh_hash_code(L, v2, 0, NULL), 7);  /* 15 & 7 */
    CHECK_EQ_INT(elsh_hash_code(L, v1, 0, NULL), 5);
    tnet_destroy(&t);
}

void test_dwta_densification(void)
{
    tnet t;
    /* two tables of one 2-bit sub-hash each: bin 0 for table 0, bin 1 for table 1 */
    if (!one_layer(&t, 8, 8, ELSH_HASH_DWTA, 2, 2, 1, 4)) return;
    elsh_layer *L = &t.net.layers[0];
    CHECK_EQ_INT(L->hash.dwta_per_table, 1);
    static const uint16_t idx[2][4] = {{0, 1, 2, 3}, {4, 5, 6, 7}};
    memcpy(L->dwta_idx, idx, sizeof(idx));
    static const float both[8] = {0, 0, 3, 0, 0, 0, 0, 1};
    CHECK_EQ_INT(elsh_hash_code(L, both, 0, NULL), 2);
    CHECK_EQ_INT(elsh_hash_code(L, both, 1, NULL), 3);
    /* table 0's bin is all zero: it borrows bin 1's winner */
    static const float right[8] = {0, 0, 0, 0, 1, 7, 3, 2};
    CHECK_EQ_INT(elsh_hash_code(L, right, 1, NULL), 1);
    CHECK_EQ_INT(elsh_hash_code(L, right, 0, NULL), 1);
    /* and the other way round */
    static const float left[8] = {0, 0, 4, 0, 0, 0, 0, 0};
    CHECK_EQ_INT(elsh_hash_code(L, left, 0, NULL), 2);
    CHECK_EQ_INT(elsh_hash_code(L, left, 1, NULL), 2);
    /* nothing to borrow: 0 */
    static const float zero[8] = {0};
    CHECK_EQ_INT(elsh_hash_code(L, zero, 0, NULL), 0);
    CHECK_EQ_INT(elsh_hash_code(L, zero, 1, NULL), 0);
    /* a bin of negative values is not empty */
    static const float neg[8] = {0, -1, 0, 0, 0, 0, 5, 0};
    CHECK_EQ_INT(elsh_hash_code(L, neg, 0, NULL), 0); /* max is the 0 at position 0 */
    tnet_destroy(&t);

    /* four tables: only one non-empty bin; every table must find it */
    if (!one_layer(&t, 16, 8, ELSH_HASH_DWTA, 2, 4, 1, 4)) return;
    L = &t.net.layers[0];
    for (int g = 0; g < 4; g++)
        for (int q = 0; q < 4; q++) L->dwta_idx[g * 4 + q] = (uint16_t)(g * 4 + q);
    for (int only = 0; only < 4; only++) {
        float v[16] = {0};
        v[only * 4 + (only + 1) % 4] = 2.5f;
        for (int32_t tt = 0; tt < 4; tt++)
            CHECK_MSG(elsh_hash_code(L, v, tt, NULL) == (uint32_t)((only + 1) % 4),
                      "table %d did not borrow bin %d's code", (int)tt, only);
    }
    tnet_destroy(&t);
}

void test_zero_input_code_zero(void)
{
    static const int32_t families[3] = {ELSH_HASH_SIMHASH, ELSH_HASH_TERNARY, ELSH_HASH_DWTA};
    for (int f = 0; f < 3; f++) {
        tnet t;
        if (!one_layer(&t, 32, 16, families[f], 6, 12, 1, 0)) return;
        elsh_layer *L = &t.net.layers[0];
        float zero[32] = {0};
        for (int32_t tt = 0; tt < 12; tt++)
            CHECK_MSG(elsh_hash_code(L, zero, tt, NULL) == 0u, "family %d table %d", f, (int)tt);
        /* through the forward pass too; the layer still picks k neurons */
        elsh_layer_forward_f32(L, zero, NULL, 32, -1);
        for (int32_t tt = 0; tt < 12; tt++) CHECK_EQ_INT(L->codes[tt], 0);
        CHECK_EQ_INT(L->n_active, L->k);
        tnet_destroy(&t);
    }
}

void test_hash_pool_dense_and_sparse(void)
{
    tnet t;
    if (!one_layer(&t, 8, 8, ELSH_HASH_SIMHASH, 2, 2, 3, 0)) return;
    elsh_layer *L = &t.net.layers[0];
    CHECK_EQ_INT(L->hash.hash_dim, 3);
    CHECK(hash_zero(L));
    static const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    elsh_ops ops;
    memset(&ops, 0, sizeof(ops));
    elsh_hash_pool(L, x, NULL, 8, &ops);
    CHECK_NEAR(L->hash_in[0], 6.0, 0.0);
    CHECK_NEAR(L->hash_in[1], 15.0, 0.0);
    CHECK_NEAR(L->hash_in[2], 15.0, 0.0); /* the last window is short: 7 + 8 */
    CHECK_EQ_INT(ops.add, 8);
    memset(L->hash_in, 0, 3 * sizeof(float));
    static const int32_t idx[3] = {1, 4, 7};
    static const float val[3] = {10, -20, 30};
    elsh_hash_pool(L, val, idx, 3, &ops);
    CHECK_NEAR(L->hash_in[0], 10.0, 0.0);
    CHECK_NEAR(L->hash_in[1], -20.0, 0.0);
    CHECK_NEAR(L->hash_in[2], 30.0, 0.0);
    memset(L->hash_in, 0, 3 * sizeof(float));
    static const int32_t idx2[4] = {0, 2, 5, 6};
    static const float val2[4] = {1.5f, 2.5f, -1, 4};
    elsh_hash_pool(L, val2, idx2, 4, NULL);
    CHECK_NEAR(L->hash_in[0], 4.0, 0.0);
    CHECK_NEAR(L->hash_in[1], -1.0, 0.0);
    CHECK_NEAR(L->hash_in[2], 4.0, 0.0);
    memset(L->hash_in, 0, 3 * sizeof(float));
    tnet_destroy(&t);

    /* pool 1 copies the input (no adds counted) */
    if (!one_layer(&t, 8, 8, ELSH_HASH_SIMHASH, 2, 2, 1, 0)) return;
    L = &t.net.layers[0];
    memset(&ops, 0, sizeof(ops));
    elsh_hash_pool(L, x, NULL, 8, &ops);
    for (int i = 0; i < 8; i++) CHECK(L->hash_in[i] == x[i]);
    CHECK_EQ_INT(ops.add, 0);
    memset(L->hash_in, 0, 8 * sizeof(float));
    tnet_destroy(&t);
}

/* The forward pass pools dense and sparse inputs, hashes the pooled vector and leaves the
 * hash_in scratch all-zero afterwards. */
void test_forward_pooling_restores_scratch(void)
{
    elsh_net_config cfg;
    cfg_init(&cfg, 10, 3, 99u);
    cfg_lsh(&cfg.layers[0], 20, 0.5f, ELSH_HASH_SIMHASH, 5, 6);
    cfg.layers[0].hash.pool = 3;
    cfg_lsh(&cfg.layers[1], 12, 0.5f, ELSH_HASH_TERNARY, 4, 5);
    cfg.layers[1].hash.pool = 2;
    cfg_dense(&cfg.layers[2], 3);
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    elsh_layer *L0 = &t.net.layers[0], *L1 = &t.net.layers[1];
    elsh_prng rng;
    elsh_prng_seed(&rng, 5u);
    for (int rep = 0; rep < 20; rep++) {
        float x[10];
        for (int i = 0; i < 10; i++) x[i] = elsh_prng_normal(&rng);
        CHECK(elsh_net_forward(&t.net, x, -1) >= 0);
        float p0[4] = {0};
        for (int i = 0; i < 10; i++) p0[i / 3] += x[i];
        for (int32_t tt = 0; tt < 6; tt++) CHECK_EQ_INT(L0->codes[tt], elsh_hash_code(L0, p0, tt, NULL));
        /* layer 1's input is layer 0's active set: sparse */
        float p1[10] = {0};
        for (int32_t a = 0; a < L0->n_active; a++) p1[L0->active[a] / 2] += L0->act[a];
        for (int32_t tt = 0; tt < 5; tt++) CHECK_EQ_INT(L1->codes[tt], elsh_hash_code(L1, p1, tt, NULL));
        CHECK(hash_zero(L0));
        CHECK(hash_zero(L1));
    }
    tnet_destroy(&t);
}

void test_hash_neuron_pooled(void)
{
    static const int32_t families[3] = {ELSH_HASH_SIMHASH, ELSH_HASH_TERNARY, ELSH_HASH_DWTA};
    for (int f = 0; f < 3; f++) {
        for (int32_t pool = 1; pool <= 4; pool += 3) {
            tnet t;
            if (!one_layer(&t, 24, 10, families[f], 4, 7, pool, families[f] == ELSH_HASH_DWTA ? 2 : 0))
                return;
            elsh_layer *L = &t.net.layers[0];
            uint32_t codes[7];
            elsh_ops ops;
            for (int32_t j = 0; j < 10; j++) {
                memset(&ops, 0, sizeof(ops));
                elsh_hash_neuron(L, j, codes, &ops);
                CHECK(hash_zero(L));
                CHECK(ops.weight_bytes >= 24u * 4u);
                float pooled[24] = {0};
                for (int32_t i = 0; i < 24; i++) pooled[i / pool] += L->w[j * 24 + i];
                for (int32_t tt = 0; tt < 7; tt++) {
                    CHECK_EQ_INT(codes[tt], elsh_hash_code(L, pooled, tt, NULL));
                    CHECK(codes[tt] < (uint32_t)L->hash.n_buckets);
                }
            }
            tnet_destroy(&t);
        }
    }
}

void test_hash_draw_ranges(void)
{
    tnet t;
    /* ternary */
    if (!one_layer(&t, 30, 8, ELSH_HASH_TERNARY, 5, 20, 1, 9)) return;
    elsh_layer *L = &t.net.layers[0];
    int32_t plus = 0, total = 0;
    for (int32_t p = 0; p < 20 * 5; p++) {
        for (int32_t q = 0; q < 9; q++) {
            uint16_t i = L->tern_idx[p * 9 + q];
            int8_t s = L->tern_sign[p * 9 + q];
            CHECK(i < 30);
            CHECK(s == 1 || s == -1);
            plus += s == 1;
            total++;
            for (int32_t e = 0; e < q; e++) CHECK(L->tern_idx[p * 9 + e] != i);
        }
    }
    CHECK(plus > total / 2 - 80 && plus < total / 2 + 80);
    tnet_destroy(&t);
    /* DWTA */
    if (!one_layer(&t, 30, 8, ELSH_HASH_DWTA, 7, 10, 1, 8)) return;
    L = &t.net.layers[0];
    CHECK_EQ_INT(L->hash.dwta_per_table, 3);
    for (int32_t g = 0; g < 10 * 3; g++)
        for (int32_t q = 0; q < 8; q++) {
            uint16_t i = L->dwta_idx[g * 8 + q];
            CHECK(i < 30);
            for (int32_t e = 0; e < q; e++) CHECK(L->dwta_idx[g * 8 + e] != i);
        }
    tnet_destroy(&t);
    /* SimHash: approximately standard normal entries */
    if (!one_layer(&t, 50, 8, ELSH_HASH_SIMHASH, 10, 20, 1, 0)) return;
    L = &t.net.layers[0];
    double s1 = 0.0, s2 = 0.0;
    int n = 20 * 10 * 50;
    for (int i = 0; i < n; i++) {
        s1 += L->proj[i];
        s2 += (double)L->proj[i] * L->proj[i];
    }
    CHECK_NEAR(s1 / n, 0.0, 0.05);
    CHECK_NEAR(s2 / n, 1.0, 0.06);
    tnet_destroy(&t);
}
