/* test_util.h - helpers shared by the C tests (implemented in test_util.c).
 * Note: the Makefile only tracks tests/check.h and tests/test_*.c, so after editing this header
 * touch a test_*.c (or make clean) to rebuild the runner. */
#ifndef ELSH_TEST_UTIL_H
#define ELSH_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* A network with its own 64-byte aligned, zero-filled, malloc'ed arena. */
typedef struct {
    elsh_net net;
    void *raw;           /* what malloc returned */
    unsigned char *arena;
    size_t bytes;
} tnet;

/* Zero-filled buffer of `bytes` at a 64-byte aligned address; *raw gets the pointer to free. */
void *aligned_zalloc(size_t bytes, void **raw);

/* Plan, allocate, init and randomize. Returns the first non-OK status (then nothing to free). */
int tnet_create(tnet *t, const elsh_net_config *cfg);
void tnet_destroy(tnet *t);

/* A config with every field zeroed except n_in, n_layers and seed. */
void cfg_init(elsh_net_config *cfg, int32_t n_in, int32_t n_layers, uint64_t seed);
/* A dense layer (every neuron computed). */
void cfg_dense(elsh_layer_config *lc, int32_t n_out);
/* An LSH layer: pool 1, capacity 0 (default), FIFO, top-k, default nnz / bin. */
void cfg_lsh(elsh_layer_config *lc, int32_t n_out, float active_fraction, int32_t family,
             int32_t bits, int32_t tables);

/* Put ids[0..n) into bucket b of table t (appending) and record it in neuron_bucket. */
void layer_put(elsh_layer *L, int32_t t, uint32_t b, const uint16_t *ids, int32_t n);

/* Check the table invariants of an LSH layer; prints each problem (up to a limit) and returns
 * how many were found:
 *   bucket_len <= capacity; stored ids < n_out; no neuron twice in one table;
 *   every stored id's neuron_bucket entry names that bucket;
 *   every neuron_bucket entry other than ELSH_NO_BUCKET names a bucket that holds the neuron.
 * strict >= 1 (no neuron dirty): every stored neuron sits in the bucket of its current code.
 * strict >= 2 (right after elsh_tables_rebuild): also, a neuron that is not stored has a full
 * bucket for its code (it was only dropped because that bucket was full). */
int tables_problems(elsh_layer *L, int strict);

/* Number of neurons with a neuron_bucket entry in table t. */
int32_t tables_stored(const elsh_layer *L, int32_t t);

/* Two Gaussian-blob style classification data: n rows of n_in floats, n_classes classes with
 * centers at distance `sep` along random directions, unit noise. */
void make_blobs(float *x, int32_t *labels, int32_t n, int32_t n_in, int32_t n_classes, float sep,
                uint64_t seed);

/* Fraction of rows whose prediction matches the label. */
double accuracy(elsh_net *net, const float *x, const int32_t *labels, int32_t n);

#endif
