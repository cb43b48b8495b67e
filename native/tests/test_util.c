/* test_util.c - helpers shared by the C tests: arenas, configs, table invariants, toy data. */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void *aligned_zalloc(size_t bytes, void **raw)
{
    unsigned char *p = calloc(bytes + 64u, 1);
    *raw = p;
    if (!p) return NULL;
    uintptr_t a = ((uintptr_t)p + 63u) & ~(uintptr_t)63u;
    return p + (a - (uintptr_t)p);
}

int tnet_create(tnet *t, const elsh_net_config *cfg)
{
    memset(t, 0, sizeof(*t));
    int rc = elsh_net_plan(cfg, &t->bytes);
    if (rc != ELSH_OK) return rc;
    t->arena = aligned_zalloc(t->bytes, &t->raw);
    if (!t->arena) {
        fprintf(stderr, "out of memory (%zu bytes)\n", t->bytes);
        abort();
    }
    rc = elsh_net_init(&t->net, cfg, t->arena, t->bytes);
    if (rc == ELSH_OK) rc = elsh_net_randomize(&t->net);
    if (rc != ELSH_OK) {
        free(t->raw);
        t->raw = NULL;
    }
    return rc;
}

void tnet_destroy(tnet *t)
{
    free(t->raw);
    memset(t, 0, sizeof(*t));
}

void cfg_init(elsh_net_config *cfg, int32_t n_in, int32_t n_layers, uint64_t seed)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->n_in = n_in;
    cfg->n_layers = n_layers;
    cfg->seed = seed;
}

void cfg_dense(elsh_layer_config *lc, int32_t n_out)
{
    memset(lc, 0, sizeof(*lc));
    lc->n_out = n_out;
    lc->use_lsh = 0;
    lc->active_fraction = 1.0f;
}

void cfg_lsh(elsh_layer_config *lc, int32_t n_out, float active_fraction, int32_t family,
             int32_t bits, int32_t tables)
{
    memset(lc, 0, sizeof(*lc));
    lc->n_out = n_out;
    lc->use_lsh = 1;
    lc->active_fraction = active_fraction;
    lc->hash.family = family;
    lc->hash.bits = bits;
    lc->hash.tables = tables;
    lc->hash.pool = 1;
    lc->hash.bucket_capacity = 0;
    lc->hash.insert_policy = ELSH_INSERT_FIFO;
    lc->hash.select_mode = ELSH_SELECT_TOPK;
}

void layer_put(elsh_layer *L, int32_t t, uint32_t b, const uint16_t *ids, int32_t n)
{
    size_t bi = (size_t)t * (size_t)L->hash.n_buckets + b;
    uint16_t *slots = bucket_slots(L, t, b);
    for (int32_t q = 0; q < n; q++) {
        slots[L->bucket_len[bi]] = ids[q];
        L->bucket_len[bi]++;
        L->bucket_seen[bi]++;
        L->neuron_bucket[(size_t)ids[q] * (size_t)L->hash.tables + (size_t)t] = (uint16_t)b;
    }
}

#define MAX_REPORTS 10

static int report(int *n, const char *what, int32_t t, int64_t a, int64_t b)
{
    if (*n < MAX_REPORTS)
        fprintf(stdout, "    table invariant: %s (table %d, %lld, %lld)\n", what, (int)t,
                (long long)a, (long long)b);
    return ++*n;
}

int tables_problems(elsh_layer *L, int strict)
{
    int n = 0;
    int32_t T = L->hash.tables, B = L->hash.n_buckets, C = L->capacity;
    int32_t *seen = calloc((size_t)L->n_out, sizeof(int32_t));
    uint32_t *codes = calloc((size_t)T, sizeof(uint32_t));
    uint32_t *all_codes = NULL;
    if (!seen || !codes) abort();
    if (strict) {
        all_codes = calloc((size_t)L->n_out * (size_t)T, sizeof(uint32_t));
        if (!all_codes) abort();
        for (int32_t j = 0; j < L->n_out; j++) {
            elsh_hash_neuron(L, j, codes, NULL);
            memcpy(all_codes + (size_t)j * (size_t)T, codes, (size_t)T * sizeof(uint32_t));
        }
    }
    for (int32_t t = 0; t < T; t++) {
        memset(seen, 0, (size_t)L->n_out * sizeof(int32_t));
        for (int32_t b = 0; b < B; b++) {
            int32_t len = L->bucket_len[(size_t)t * (size_t)B + (size_t)b];
            if (len > C) report(&n, "bucket_len > capacity", t, len, C);
            if (len > C) len = C;
            const uint16_t *slots = bucket_slots(L, t, (uint32_t)b);
            for (int32_t s = 0; s < len; s++) {
                int32_t j = slots[s];
                if (j >= L->n_out) {
                    report(&n, "stored id >= n_out", t, j, L->n_out);
                    continue;
                }
                if (++seen[j] > 1) report(&n, "neuron stored twice in one table", t, j, b);
                uint16_t nb = L->neuron_bucket[(size_t)j * (size_t)T + (size_t)t];
                if (nb != (uint16_t)b) report(&n, "stored neuron's neuron_bucket differs", t, j, nb);
                if (strict >= 1 && all_codes[(size_t)j * (size_t)T + (size_t)t] != (uint32_t)b)
                    report(&n, "stored neuron not in the bucket of its code", t, j, b);
            }
        }
        for (int32_t j = 0; j < L->n_out; j++) {
            uint16_t nb = L->neuron_bucket[(size_t)j * (size_t)T + (size_t)t];
            if (nb == ELSH_NO_BUCKET) {
                if (seen[j]) report(&n, "stored neuron has no neuron_bucket", t, j, -1);
                if (strict >= 2) {
                    uint32_t code = all_codes[(size_t)j * (size_t)T + (size_t)t];
                    int32_t len = L->bucket_len[(size_t)t * (size_t)B + code];
                    if (len < C) report(&n, "unstored neuron but its bucket is not full", t, j, len);
                }
                continue;
            }
            if (nb >= B) {
                report(&n, "neuron_bucket out of range", t, j, nb);
                continue;
            }
            if (!seen[j]) report(&n, "neuron_bucket names a bucket without the neuron", t, j, nb);
        }
    }
    if (n > MAX_REPORTS) fprintf(stdout, "    ... %d table invariant problems in all\n", n);
    free(seen);
    free(codes);
    free(all_codes);
    return n;
}

int32_t tables_stored(const elsh_layer *L, int32_t t)
{
    int32_t n = 0;
    for (int32_t j = 0; j < L->n_out; j++)
        n += L->neuron_bucket[(size_t)j * (size_t)L->hash.tables + (size_t)t] != ELSH_NO_BUCKET;
    return n;
}

void make_blobs(float *x, int32_t *labels, int32_t n, int32_t n_in, int32_t n_classes, float sep,
                uint64_t seed)
{
    elsh_prng rng;
    elsh_prng_seed(&rng, seed);
    float *centers = malloc((size_t)n_classes * (size_t)n_in * sizeof(float));
    if (!centers) abort();
    for (int32_t c = 0; c < n_classes; c++) {
        double norm = 0.0;
        float *ctr = centers + (size_t)c * (size_t)n_in;
        for (int32_t i = 0; i < n_in; i++) {
            ctr[i] = elsh_prng_normal(&rng);
            norm += (double)ctr[i] * (double)ctr[i];
        }
        float scale = (float)((double)sep / sqrt(norm));
        for (int32_t i = 0; i < n_in; i++) ctr[i] *= scale;
    }
    for (int32_t r = 0; r < n; r++) {
        int32_t c = r % n_classes;
        labels[r] = c;
        for (int32_t i = 0; i < n_in; i++)
            x[(size_t)r * (size_t)n_in + (size_t)i] =
                centers[(size_t)c * (size_t)n_in + (size_t)i] + elsh_prng_normal(&rng);
    }
    free(centers);
}

double accuracy(elsh_net *net, const float *x, const int32_t *labels, int32_t n)
{
    int32_t *pred = malloc((size_t)n * sizeof(int32_t));
    if (!pred) abort();
    int64_t correct = 0;
    if (elsh_predict(net, x, n, pred, NULL) == ELSH_OK)
        for (int32_t r = 0; r < n; r++) correct += pred[r] == labels[r];
    free(pred);
    return (double)correct / (double)n;
}
