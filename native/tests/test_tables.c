/* test_tables.c - fixed-capacity bucket tables: rebuild, FIFO and reservoir overflow, moves. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "test_util.h"

static int lsh_net(tnet *t, int32_t n_in, int32_t n_out, int32_t family, int32_t bits,
                   int32_t tables, int32_t capacity, int32_t policy, uint64_t seed)
{
    elsh_net_config cfg;
    cfg_init(&cfg, n_in, 2, seed);
    cfg_lsh(&cfg.layers[0], n_out, 0.25f, family, bits, tables);
    cfg.layers[0].hash.bucket_capacity = capacity;
    cfg.layers[0].hash.insert_policy = policy;
    if (family == ELSH_HASH_DWTA) cfg.layers[0].hash.dwta_bin = 4;
    cfg_dense(&cfg.layers[1], 2);
    int rc = tnet_create(t, &cfg);
    CHECK_EQ_INT(rc, ELSH_OK);
    return rc == ELSH_OK;
}

static uint16_t nb(const elsh_layer *L, int32_t j, int32_t t)
{
    return L->neuron_bucket[(size_t)j * (size_t)L->hash.tables + (size_t)t];
}

static size_t bi(const elsh_layer *L, int32_t t, uint32_t b)
{
    return (size_t)t * (size_t)L->hash.n_buckets + b;
}

void test_tables_rebuild_consistent(void)
{
    static const int32_t families[3] = {ELSH_HASH_SIMHASH, ELSH_HASH_TERNARY, ELSH_HASH_DWTA};
    static const int32_t caps[3] = {1, 3, 0};
    for (int f = 0; f < 3; f++)
        for (int32_t policy = 0; policy < 2; policy++)
            for (int c = 0; c < 3; c++) {
                tnet t;
                if (!lsh_net(&t, 20, 50, families[f], 3, 5, caps[c], policy, 8u + (uint64_t)c)) return;
                elsh_layer *L = &t.net.layers[0];
                for (int rep = 0; rep < 2; rep++) {
                    if (rep) elsh_tables_rebuild(L);
                    CHECK_MSG(tables_problems(L, 2) == 0, "family %d policy %d capacity %d rep %d", f,
                              (int)policy, (int)caps[c], rep);
                    for (int32_t tt = 0; tt < 5; tt++) {
                        uint32_t offered = 0;
                        for (int32_t b = 0; b < L->hash.n_buckets; b++) {
                            CHECK(L->bucket_len[bi(L, tt, (uint32_t)b)] <= L->capacity);
                            offered += L->bucket_seen[bi(L, tt, (uint32_t)b)];
                        }
                        CHECK_EQ_INT(offered, 50); /* every neuron offered once per table */
                        if (caps[c] == 0) CHECK_EQ_INT(elsh_tables_count(L, tt), 50);
                    }
                    for (int32_t j = 0; j < 50; j++) CHECK_EQ_INT(L->dirty[j], 0);
                }
                tnet_destroy(&t);
            }
}

/* All neurons hash to bucket 0 when every projection is zero (no dot product is > 0). */
static void all_to_bucket0(elsh_layer *L)
{
    memset(L->proj, 0, (size_t)L->hash.tables * (size_t)L->hash.bits * (size_t)L->hash.hash_dim * sizeof(float));
}

void test_tables_fifo_evicts_oldest(void)
{
    tnet t;
    if (!lsh_net(&t, 4, 5, ELSH_HASH_SIMHASH, 1, 2, 2, ELSH_INSERT_FIFO, 1u)) return;
    elsh_layer *L = &t.net.layers[0];
    all_to_bucket0(L);
    elsh_tables_rebuild(L);
    /* inserted 0, 1, 2, 3, 4 into a bucket of 2: the last two stay */
    for (int32_t tt = 0; tt < 2; tt++) {
        const uint16_t *slots = bucket_slots(L, tt, 0);
        CHECK_EQ_INT(L->bucket_len[bi(L, tt, 0)], 2);
        CHECK_EQ_INT(L->bucket_len[bi(L, tt, 1)], 0);
        CHECK_EQ_INT(L->bucket_seen[bi(L, tt, 0)], 5);
        CHECK((slots[0] == 3 && slots[1] == 4) || (slots[0] == 4 && slots[1] == 3));
        for (int32_t j = 0; j < 3; j++) CHECK_EQ_INT(nb(L, j, tt), ELSH_NO_BUCKET);
        CHECK_EQ_INT(nb(L, 3, tt), 0);
        CHECK_EQ_INT(nb(L, 4, tt), 0);
        CHECK_EQ_INT(elsh_tables_count(L, tt), 2);
    }
    CHECK_EQ_INT(tables_problems(L, 2), 0);
    /* re-offer neuron 0 (dirty, same code, not stored): it evicts the oldest, 3 */
    L->dirty[0] = 1;
    CHECK_EQ_INT(elsh_tables_update(L), 1);
    for (int32_t tt = 0; tt < 2; tt++) {
        CHECK_EQ_INT(nb(L, 3, tt), ELSH_NO_BUCKET);
        CHECK_EQ_INT(nb(L, 4, tt), 0);
        CHECK_EQ_INT(nb(L, 0, tt), 0);
    }
    /* then neuron 1 evicts the oldest of {4, 0}: 4 */
    L->dirty[1] = 1;
    CHECK_EQ_INT(elsh_tables_update(L), 1);
    for (int32_t tt = 0; tt < 2; tt++) {
        CHECK_EQ_INT(nb(L, 4, tt), ELSH_NO_BUCKET);
        CHECK_EQ_INT(nb(L, 0, tt), 0);
        CHECK_EQ_INT(nb(L, 1, tt), 0);
        CHECK_EQ_INT(elsh_tables_count(L, tt), 2);
    }
    /* then 2 evicts 0, then 3 evicts 1 */
    L->dirty[2] = 1;
    elsh_tables_update(L);
    CHECK_EQ_INT(nb(L, 0, 0), ELSH_NO_BUCKET);
    CHECK_EQ_INT(nb(L, 1, 0), 0);
    L->dirty[3] = 1;
    elsh_tables_update(L);
    CHECK_EQ_INT(nb(L, 1, 0), ELSH_NO_BUCKET);
    CHECK_EQ_INT(nb(L, 2, 0), 0);
    CHECK_EQ_INT(nb(L, 3, 0), 0);
    CHECK_EQ_INT(tables_problems(L, 1), 0);

    /* a neuron leaving a full bucket frees a slot: the next arrival evicts nobody */
    L->proj[0] = 1.0f; /* table 0, bit 0: code = [w[j][0] > 0] */
    for (int32_t j = 0; j < 5; j++) L->w[j * 4 + 0] = -1.0f;
    L->w[2 * 4 + 0] = 1.0f; /* neuron 2 moves to bucket 1 of table 0 */
    L->dirty[2] = 1;
    CHECK_EQ_INT(elsh_tables_update(L), 1);
    CHECK_EQ_INT(nb(L, 2, 0), 1);
    CHECK_EQ_INT(nb(L, 2, 1), 0); /* table 1 still hashes everything to 0 */
    CHECK_EQ_INT(nb(L, 3, 0), 0);
    CHECK_EQ_INT(L->bucket_len[bi(L, 0, 0)], 1);
    CHECK_EQ_INT(L->bucket_len[bi(L, 0, 1)], 1);
    L->dirty[4] = 1;
    elsh_tables_update(L);
    CHECK_EQ_INT(nb(L, 3, 0), 0);
    CHECK_EQ_INT(nb(L, 4, 0), 0);
    CHECK_EQ_INT(L->bucket_len[bi(L, 0, 0)], 2);
    CHECK_EQ_INT(tables_problems(L, 1), 0);
    tnet_destroy(&t);
}

void test_tables_reservoir_full(void)
{
    tnet t;
    if (!lsh_net(&t, 4, 40, ELSH_HASH_SIMHASH, 1, 2, 3, ELSH_INSERT_RESERVOIR, 3u)) return;
    elsh_layer *L = &t.net.layers[0];
    all_to_bucket0(L);
    for (int rep = 0; rep < 20; rep++) {
        elsh_tables_rebuild(L);
        for (int32_t tt = 0; tt < 2; tt++) {
            CHECK_EQ_INT(L->bucket_len[bi(L, tt, 0)], 3);
            CHECK_EQ_INT(L->bucket_seen[bi(L, tt, 0)], 40);
            CHECK_EQ_INT(tables_stored(L, tt), 3);
            CHECK_EQ_INT(elsh_tables_count(L, tt), 3);
        }
        CHECK_EQ_INT(tables_problems(L, 2), 0);
    }
    /* re-offering stored and unstored neurons keeps the bucket full */
    for (int32_t j = 0; j < 40; j++) L->dirty[j] = 1;
    CHECK_EQ_INT(elsh_tables_update(L), 40);
    for (int32_t tt = 0; tt < 2; tt++) {
        CHECK_EQ_INT(L->bucket_len[bi(L, tt, 0)], 3);
        CHECK_EQ_INT(tables_stored(L, tt), 3);
    }
    CHECK_EQ_INT(tables_problems(L, 1), 0);
    tnet_destroy(&t);
}

void test_tables_reservoir_uniform(void)
{
    /* every one of the 40 neurons offered to a bucket of 3 should be kept with probability 3/40 */
    enum { N = 40, REPS = 2000 };
    tnet t;
    if (!lsh_net(&t, 4, N, ELSH_HASH_SIMHASH, 1, 2, 3, ELSH_INSERT_RESERVOIR, 4u)) return;
    elsh_layer *L = &t.net.layers[0];
    all_to_bucket0(L);
    int32_t kept[N] = {0};
    for (int rep = 0; rep < REPS; rep++) {
        elsh_tables_rebuild(L);
        for (int32_t tt = 0; tt < 2; tt++)
            for (int32_t j = 0; j < N; j++) kept[j] += nb(L, j, tt) != ELSH_NO_BUCKET;
    }
    /* expected 300 each, sd ~16.7 */
    for (int32_t j = 0; j < N; j++)
        CHECK_MSG(kept[j] > 215 && kept[j] < 385, "neuron %d kept %d times of 4000 (expected 300)",
                  (int)j, (int)kept[j]);
    tnet_destroy(&t);
}

void test_tables_update_moves_dirty(void)
{
    enum { N = 50, T = 6, NIN = 12 };
    tnet t;
    if (!lsh_net(&t, NIN, N, ELSH_HASH_SIMHASH, 3, T, N, ELSH_INSERT_FIFO, 21u)) return;
    elsh_layer *L = &t.net.layers[0];
    CHECK_EQ_INT(tables_problems(L, 2), 0);
    size_t nb_bytes = (size_t)N * T * sizeof(uint16_t);
    size_t ids_bytes = (size_t)T * (size_t)L->hash.n_buckets * (size_t)L->capacity * sizeof(uint16_t);
    size_t len_bytes = (size_t)T * (size_t)L->hash.n_buckets * sizeof(uint16_t);
    uint16_t *before = malloc(nb_bytes), *ids_before = malloc(ids_bytes), *len_before = malloc(len_bytes);
    if (!before || !ids_before || !len_before) abort();

    /* nothing dirty: nothing changes */
    memcpy(before, L->neuron_bucket, nb_bytes);
    memcpy(ids_before, L->bucket_ids, ids_bytes);
    memcpy(len_before, L->bucket_len, len_bytes);
    CHECK_EQ_INT(elsh_tables_update(L), 0);
    CHECK(memcmp(before, L->neuron_bucket, nb_bytes) == 0);
    CHECK(memcmp(ids_before, L->bucket_ids, ids_bytes) == 0);
    CHECK(memcmp(len_before, L->bucket_len, len_bytes) == 0);

    /* dirty but unchanged: re-hashed (counted) but not moved */
    L->dirty[7] = 1;
    CHECK_EQ_INT(elsh_tables_update(L), 1);
    CHECK(memcmp(before, L->neuron_bucket, nb_bytes) == 0);
    CHECK(memcmp(ids_before, L->bucket_ids, ids_bytes) == 0);
    CHECK_EQ_INT(L->dirty[7], 0);

    /* negate three rows: every SimHash bit flips, so each moves in every table */
    static const int32_t moved[3] = {3, 17, 42};
    for (int m = 0; m < 3; m++) {
        for (int32_t i = 0; i < NIN; i++) L->w[moved[m] * NIN + i] = -L->w[moved[m] * NIN + i];
        L->dirty[moved[m]] = 1;
    }
    CHECK_EQ_INT(elsh_tables_update(L), 3);
    CHECK(L->ops.last[ELSH_PHASE_TABLES].table_bytes > 0);
    uint32_t codes[T];
    for (int32_t j = 0; j < N; j++) {
        int is_moved = j == 3 || j == 17 || j == 42;
        CHECK_EQ_INT(L->dirty[j], 0);
        elsh_hash_neuron(L, j, codes, NULL);
        for (int32_t tt = 0; tt < T; tt++) {
            uint16_t now = nb(L, j, tt), old = before[(size_t)j * T + (size_t)tt];
            CHECK_EQ_INT(now, codes[tt]);
            if (is_moved) {
                CHECK_EQ_INT(now, (~(uint32_t)old) & 7u);
            } else {
                CHECK_EQ_INT(now, old);
            }
        }
    }
    for (int32_t tt = 0; tt < T; tt++) CHECK_EQ_INT(elsh_tables_count(L, tt), N);
    CHECK_EQ_INT(tables_problems(L, 2), 0);
    /* each bucket lost exactly the moved neurons it held and gained the ones moving in */
    for (int32_t tt = 0; tt < T; tt++)
        for (int32_t b = 0; b < L->hash.n_buckets; b++) {
            int32_t expect = len_before[bi(L, tt, (uint32_t)b)];
            for (int m = 0; m < 3; m++) {
                uint16_t old = before[(size_t)moved[m] * T + (size_t)tt];
                if (old == b) expect--;
                if (((~(uint32_t)old) & 7u) == (uint32_t)b) expect++;
            }
            CHECK_EQ_INT(L->bucket_len[bi(L, tt, (uint32_t)b)], expect);
        }
    free(before);
    free(ids_before);
    free(len_before);
    tnet_destroy(&t);
}

/* Random weight changes on small, overflowing tables keep every invariant. */
void test_tables_update_stress(void)
{
    static const int32_t families[3] = {ELSH_HASH_SIMHASH, ELSH_HASH_TERNARY, ELSH_HASH_DWTA};
    for (int f = 0; f < 3; f++)
        for (int32_t policy = 0; policy < 2; policy++) {
            tnet t;
            if (!lsh_net(&t, 16, 60, families[f], 2, 4, 3, policy, 100u + (uint64_t)f)) return;
            elsh_layer *L = &t.net.layers[0];
            elsh_prng rng;
            elsh_prng_seed(&rng, 55u);
            for (int it = 0; it < 150; it++) {
                int32_t want = 0;
                for (int m = 0; m < 6; m++) {
                    int32_t j = (int32_t)elsh_prng_below(&rng, 60u);
                    for (int32_t i = 0; i < 16; i++) L->w[j * 16 + i] += elsh_prng_normal(&rng);
                    want += !L->dirty[j];
                    L->dirty[j] = 1;
                }
                CHECK_EQ_INT(elsh_tables_update(L), want);
                int p = tables_problems(L, 1);
                CHECK_MSG(p == 0, "family %d policy %d iteration %d: %d problems", f, (int)policy, it, p);
                for (int32_t tt = 0; tt < 4; tt++) {
                    CHECK(elsh_tables_count(L, tt) <= 4 * 3);
                    CHECK_EQ_INT(elsh_tables_count(L, tt), tables_stored(L, tt));
                }
                if (check_current_failures()) break;
            }
            elsh_tables_rebuild(L);
            CHECK_EQ_INT(tables_problems(L, 2), 0);
            tnet_destroy(&t);
        }
}

void test_tables_count(void)
{
    static const int32_t caps[3] = {1, 4, 0};
    for (int c = 0; c < 3; c++) {
        tnet t;
        if (!lsh_net(&t, 10, 30, ELSH_HASH_SIMHASH, 2, 3, caps[c], ELSH_INSERT_FIFO, 9u)) return;
        elsh_layer *L = &t.net.layers[0];
        uint32_t codes[3];
        int32_t hist[3][4] = {{0}};
        for (int32_t j = 0; j < 30; j++) {
            elsh_hash_neuron(L, j, codes, NULL);
            for (int32_t tt = 0; tt < 3; tt++) hist[tt][codes[tt]]++;
        }
        for (int32_t tt = 0; tt < 3; tt++) {
            int32_t expect = 0;
            for (int b = 0; b < 4; b++) expect += hist[tt][b] < L->capacity ? hist[tt][b] : L->capacity;
            CHECK_EQ_INT(elsh_tables_count(L, tt), expect);
            CHECK_EQ_INT(tables_stored(L, tt), expect);
        }
        tnet_destroy(&t);
    }
}
