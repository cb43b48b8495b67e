/* internal.h - what the kernel's source files share, and what its C unit tests (native/tests)
 * call directly: the stages of a layer (hashing, tables, selection, forward and backward),
 * the arena allocator, op counting. Not an API: no program outside native/src and
 * native/tests includes it (make -C native headers checks). */
#ifndef EDGE_LSH_INTERNAL_H
#define EDGE_LSH_INTERNAL_H

#include "edge_lsh_train.h"
#include "edge_lsh_finetune.h"

#include <float.h>

/* Bit-identical results need float arithmetic done in float (not x87 extended precision)
 * and no fused multiply-adds (build with -ffp-contract=off; clang also honours this pragma). */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0 && FLT_EVAL_METHOD != -1
#error "edge-lsh needs FLT_EVAL_METHOD == 0 (on 32-bit x86 build with -msse2 -mfpmath=sse)"
#endif
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* Threads (train_threads_f32.c, layer_f32_shared.c): pthreads and the __atomic builtins on
 * POSIX systems with GCC or Clang; everywhere else (bare-metal Cortex-M, other compilers) the
 * threaded entry points run their work on the calling thread. -DELSH_THREADS=0 forces that. */
#ifndef ELSH_THREADS
#if (defined(__unix__) || defined(__APPLE__)) && defined(__GNUC__)
#define ELSH_THREADS 1
#else
#define ELSH_THREADS 0
#endif
#endif

/* ---------------------------------------------------------------- op counters */

static inline void ops_accumulate(elsh_ops *dst, const elsh_ops *src)
{
    dst->mul += src->mul;
    dst->add += src->add;
    dst->cmp += src->cmp;
    dst->weight_bytes += src->weight_bytes;
    dst->table_bytes += src->table_bytes;
}

static inline void ops_clear(elsh_ops *o)
{
    o->mul = o->add = o->cmp = o->weight_bytes = o->table_bytes = 0;
}

/* One phase of one call of a layer stage counts into ops.last[phase]: counters_begin clears it
 * and returns it to count into, counters_end adds it to ops.total[phase]. */
static inline elsh_ops *counters_begin(elsh_counters *c, int phase)
{
    ops_clear(&c->last[phase]);
    return &c->last[phase];
}

static inline void counters_end(elsh_counters *c, int phase)
{
    ops_accumulate(&c->total[phase], &c->last[phase]);
}

static inline void counters_reset(elsh_counters *c)
{
    for (int p = 0; p < ELSH_PHASE_COUNT; p++) {
        ops_clear(&c->last[p]);
        ops_clear(&c->total[p]);
    }
}

/* sum += one phase of a layer's counters (the total when total != 0, else the last call);
 * nothing for a phase out of range */
static inline void counters_add(elsh_ops *sum, const elsh_counters *c, int phase, int total)
{
    if (phase >= 0 && phase < ELSH_PHASE_COUNT)
        ops_accumulate(sum, total ? &c->total[phase] : &c->last[phase]);
}

/* ---------------------------------------------------------------- arenas (arena.c) */

/* A bump allocator over one arena, planning (base NULL: sizes only) or carving. Buffers start
 * at multiples of ELSH_ARENA_ALIGN bytes; every request is checked against `limit`. */
#define ELSH_ARENA_ALIGN 64u
#define ELSH_ARENA_LIMIT ((uint64_t)1 << 40) /* no arena beyond 1 TiB: a config or file error */
typedef struct {
    unsigned char *base;  /* NULL while planning */
    uint64_t used;        /* end of the last buffer, in bytes from base */
    uint64_t limit;       /* the most the buffers may take, <= ELSH_ARENA_LIMIT */
    int overflow;         /* a request did not fit: it and every later one returned NULL */
} elsh_arena;

/* Start a walk over `base` (NULL to plan) that may use up to `limit` bytes. */
void elsh_arena_start(elsh_arena *a, void *base, uint64_t limit);
/* The next buffer of count elements of elem_size bytes: its address (NULL while planning or
 * after an overflow). */
void *elsh_arena_take(elsh_arena *a, uint64_t count, uint64_t elem_size);
/* Bytes used so far into *bytes; -1 (and nothing written) after an overflow or when the size
 * does not fit a size_t. */
int elsh_arena_size(const elsh_arena *a, size_t *bytes);

/* ---------------------------------------------------------------- shared by both networks */

/* Active neurons for a fraction of n_out: round(fraction * n_out), at least 1 (select.c). */
int32_t elsh_active_k(float fraction, int32_t n_out);

/* PRNG streams: one per layer and purpose (prng.c). */
enum {
    ELSH_STREAM_WEIGHTS = 1,
    ELSH_STREAM_HASH = 2,
    ELSH_STREAM_PAD = 3,
    ELSH_STREAM_TABLES = 4,
    ELSH_STREAM_TRAIN = 5
};
void elsh_seed_stream(elsh_prng *rng, uint64_t seed, int32_t layer, uint64_t purpose);

/* Check family, bits, tables, pool, center, select_mode and the family's own setting
 * (ternary_nnz or dwta_bin; the other family's must be 0) for a layer of n_in inputs, and fill
 * in the derived hash_dim, n_buckets, dwta_bits and dwta_per_table. Returns 0, or -1 when a
 * value is out of range. */
int elsh_hash_derive(elsh_hash_params *hp, int32_t n_in);

/* Where newly drawn hash functions go: the arrays of the layer's family (the others NULL); the
 * SimHash coefficients as floats (proj) and/or in their int8 form round(32 r) (proj_q). */
typedef struct {
    float *proj;
    int8_t *proj_q;
    uint16_t *tern_idx;
    int8_t *tern_sign;
    uint16_t *dwta_idx;
} elsh_hash_arrays;
/* Draw the hash functions of *hp from rng (FORMAT.md 5.4). stamp: optional [hash_dim] scratch
 * that finds repeated indices in O(1) (the same draws either way). */
void elsh_hash_draw_into(const elsh_hash_params *hp, const elsh_hash_arrays *out, int32_t *stamp,
                         elsh_prng *rng);
int8_t elsh_simhash_coef_q(float r);             /* int8 SimHash coefficient: round(32 r) */
void elsh_draw_permutation(uint16_t *perm, int32_t n, elsh_prng *rng);

/* DWTA densification (hash_families.h): an empty bin g takes the winner of bin
 * elsh_dwta_probe(g, a, n_bins) for a = 1, 2, ... up to ELSH_DWTA_MAX_PROBES (and below
 * n_bins), the first non-empty one. */
#define ELSH_DWTA_MAX_PROBES 16
static inline int32_t elsh_dwta_probe(int32_t g, int32_t a, int32_t n_bins)
{
    return (int32_t)(((uint32_t)g + (uint32_t)a * 2654435761u) % (uint32_t)n_bins);
}

/* One selection: the input's codes, the tables (fixed-capacity buckets, or CSR when
 * csr_offsets is set) and scratch. counts[] must be all zero on entry; it is again on return. */
typedef struct {
    const elsh_hash_params *hash; /* tables, n_buckets, select_mode */
    int32_t n_out, k;
    const uint32_t *codes;       /* [tables] the input's bucket in each table */
    const uint16_t *pad_order;   /* [n_out] permutation for padding */
    const uint16_t *ids;         /* bucket contents */
    const uint16_t *bucket_len;  /* fixed layout: [tables][n_buckets] */
    int32_t capacity;            /* fixed layout: slots per bucket */
    const uint32_t *csr_offsets; /* CSR layout: [tables * n_buckets + 1] */
    uint16_t *counts;            /* [n_out] scratch */
    uint16_t *touched;           /* [n_out + 1] scratch */
    int32_t *hist;               /* [tables + 1] scratch */
    int32_t *active;             /* [n_out] out: the active ids, ascending */
    /* optional (top-k only): bucket bitmaps, and the count planes' scratch (count_planes.h) */
    const uint64_t *bitmaps;     /* [tables][n_buckets][words] or NULL */
    uint64_t *planes;            /* [elsh_bits_levels(tables) + 2][words] */
    int32_t words;               /* 64-bit words a bitmap: ceil(n_out / 256) * 4 */
} elsh_select_job;

/* Returns the number of active neurons; *n_candidates gets how many collided. The two stages
 * below in a row. */
int32_t elsh_select_run(const elsh_select_job *job, int32_t *n_candidates, elsh_ops *ops);

/* What the count stage hands the choose stage (and the measurements: elsh_qnet_forward_stats). */
typedef struct {
    int32_t n_touched;  /* neurons with a non-zero counts[] entry, listed in touched[] */
    int32_t n_selected; /* union: neurons taken from the tables */
    uint64_t entries;   /* bucket entries in the input's buckets (read unless bitmap) */
    int32_t bitmap;     /* 1: counted from the bucket bitmaps into job->planes */
} elsh_select_state;
/* Count stage: read the input's L buckets into counts[] (top-k: collisions; union: the first k
 * neurons marked). */
void elsh_select_count(const elsh_select_job *job, elsh_select_state *st, elsh_ops *ops);
/* Choose stage: the active ids into active[] ascending (padding when too few collided), counts[]
 * zeroed again. Returns how many; *n_candidates gets how many collided. */
int32_t elsh_select_choose(const elsh_select_job *job, elsh_select_state *st, int32_t *n_candidates,
                           elsh_ops *ops);

/* ---------------------------------------------------------------- trained state (FORMAT.md 4.2) */

#define ELSH_TRAIN_STATE_BYTES 64u
#define ELSH_LAYER_STATE_HEADER 32u
/* Bytes of a layer's LAYER_STATE section: the header, the int16 masters padded to 4 bytes,
 * then velocities (momentum_q15 > 0) and Adagrad sums (optimizer Adagrad), weights then
 * biases, 4 bytes each. */
uint64_t elsh_layer_state_bytes(const elsh_qlayer *L, int32_t optimizer, int32_t momentum_q15);
/* The lowest trainable layer for train_layers (0 = all). */
static inline int32_t elsh_first_trainable(int32_t n_layers, int32_t train_layers)
{
    return train_layers == 0 ? 0 : n_layers - train_layers;
}
/* train_q.c step 3: the Q format of layer l's deltas, given the one of layer l + 1. */
static inline int32_t elsh_grad_exp(const elsh_qlayer *L, int32_t is_top, int32_t above)
{
    int32_t ms = -31;
    for (int32_t j = 0; j < L->n_out; j++)
        if (L->shift[j] > ms) ms = L->shift[j];
    return is_top ? 8 - ms : above - ms - 4;
}

/* ---------------------------------------------------------------- the float layer's stages */

/* Hashing (hash_f32.c). Sum-pool a dense vector (n values) or a sparse one (idx != NULL) into
 * layer->hash_in. */
void elsh_hash_pool(elsh_layer *layer, const float *x, const int32_t *idx, int32_t n, elsh_ops *ops);
/* Bucket id of table t for the vector in layer->hash_in (or `v` of length hash_dim). */
uint32_t elsh_hash_code(const elsh_layer *layer, const float *v, int32_t t, elsh_ops *ops);
/* Draw new hash functions for the layer from rng. */
void elsh_hash_draw(elsh_layer *layer, elsh_prng *rng);
/* Bucket ids of neuron j's weight row in every table, into codes[L]. Uses hash_in as scratch. */
void elsh_hash_neuron(elsh_layer *layer, int32_t j, uint32_t *codes, elsh_ops *ops);

/* Tables (tables_f32.c). Empty every bucket (neuron_bucket all ELSH_NO_BUCKET). */
void elsh_tables_clear(elsh_layer *layer);
/* Empty every bucket and insert every neuron. */
void elsh_tables_rebuild(elsh_layer *layer);
/* Re-hash the neurons marked dirty and move them to their new buckets. Returns how many. */
int32_t elsh_tables_update(elsh_layer *layer);
/* elsh_tables_update in two halves, so that several threads can share the hashing: the codes
 * of the dirty neurons among lo..hi-1 into codes[j][L] (no table changes; the layer's scratch
 * and op counters are used), then the moves of every dirty neuron to the buckets codes[j]
 * names, in the order elsh_tables_update makes them (the same tables). */
void elsh_tables_hash_dirty(elsh_layer *layer, int32_t lo, int32_t hi, uint32_t *codes);
int32_t elsh_tables_update_from(elsh_layer *layer, const uint32_t *codes);
/* The moves of elsh_tables_update_from in tables t_lo..t_hi-1 only, the dirty flags left as
 * they are (the caller clears them once every table is done). Tables share no bucket, so
 * threads moving disjoint ranges of tables at once make the tables elsh_tables_update_from
 * makes. FIFO layers only (a full bucket under the reservoir policy draws from the layer's
 * one generator, in the one-thread order of neurons and tables). */
void elsh_tables_move_from(elsh_layer *layer, const uint32_t *codes, int32_t t_lo, int32_t t_hi);
/* Number of neurons currently stored in table t (sum of bucket lengths). */
int32_t elsh_tables_count(const elsh_layer *layer, int32_t t);

/* Pointer to the first slot of bucket b of table t. */
static inline uint16_t *bucket_slots(const elsh_layer *L, int32_t t, uint32_t b)
{
    return L->bucket_ids + ((size_t)t * (size_t)L->hash.n_buckets + b) * (size_t)L->capacity;
}

/* Selection (select.c). From layer->codes, choose the active set: top-k by collision count
 * (ties by lower neuron id) or union, padded from pad_order when fewer than k neurons collide.
 * If force >= 0 it is added (training: the true label at an LSH output layer). Fills active[]
 * ascending and n_active. */
void elsh_select(elsh_layer *layer, int32_t force, elsh_ops *ops);
/* Output layers only: insert `force` (>= 0) into the ascending active set if missing. */
void elsh_select_force(elsh_layer *L, int32_t force);

/* Hash the layer input and select the active set (layer_f32.c): the LSH half of a forward. */
void elsh_layer_hash_select(elsh_layer *layer, const float *in_val, const int32_t *in_idx,
                            int32_t in_n, int32_t force);

/* Forward one layer (layer_f32.c). The input is dense (in_idx == NULL, n_in values) or sparse
 * (in_n values at the in_idx positions). Hashes and selects when the layer uses LSH. */
void elsh_layer_forward_f32(elsh_layer *layer, const float *in_val, const int32_t *in_idx,
                            int32_t in_n, int32_t force);

/* Backward one layer for the deltas in layer->delta: adds dL/dx of the active inputs into
 * prev_delta (NULL for the first layer) and steps Adagrad + momentum on the active rows. */
void elsh_layer_backward_f32(elsh_layer *layer, const float *in_val, const int32_t *in_idx,
                             int32_t in_n, float *prev_delta, float lr, float momentum, float l2,
                             float eps);

/* Training threads in deterministic mode run the backward pass in two halves (layer_f32.c):
 * backprop: dL/dx of the active inputs into prev_delta (NULL: nothing), parameters only read
 * (same signature as the backward pass; the optimizer arguments are unused);
 * update_rows: the optimizer step of the rows in [lo, hi) among active[0..n_active) with
 * deltas delta[], for the layer input (in_val, in_idx, in_n). The two together do exactly
 * what elsh_layer_backward_f32 does. */
void elsh_layer_backprop_f32(elsh_layer *layer, const float *in_val, const int32_t *in_idx,
                             int32_t in_n, float *prev_delta, float lr, float momentum, float l2,
                             float eps);
void elsh_layer_update_rows_f32(elsh_layer *layer, const int32_t *active, const float *delta,
                                int32_t n_active, const float *in_val, const int32_t *in_idx,
                                int32_t in_n, int32_t lo, int32_t hi, float lr, float momentum,
                                float l2, float eps);

/* The same forward and backward passes with relaxed atomic loads and stores of the shared
 * parameters (layer_f32_shared.c; only when ELSH_THREADS). */
void elsh_layer_forward_f32_shared(elsh_layer *layer, const float *in_val, const int32_t *in_idx,
                                   int32_t in_n, int32_t force);
void elsh_layer_backward_f32_shared(elsh_layer *layer, const float *in_val, const int32_t *in_idx,
                                    int32_t in_n, float *prev_delta, float lr, float momentum,
                                    float l2, float eps);

void elsh_layer_backprop_f32_shared(elsh_layer *layer, const float *in_val, const int32_t *in_idx,
                                    int32_t in_n, float *prev_delta, float lr, float momentum,
                                    float l2, float eps);
void elsh_layer_update_rows_f32_shared(elsh_layer *layer, const int32_t *active, const float *delta,
                                       int32_t n_active, const float *in_val, const int32_t *in_idx,
                                       int32_t in_n, int32_t lo, int32_t hi, float lr, float momentum,
                                       float l2, float eps);

/* update_rows for a thread that owns the rows [lo, hi): plain loads and stores of their
 * parameters but relaxed atomic stores of the weights and biases, which other threads read
 * meanwhile (layer_f32_owned.c; only when ELSH_THREADS). */
void elsh_layer_update_rows_f32_owned(elsh_layer *layer, const int32_t *active, const float *delta,
                                      int32_t n_active, const float *in_val, const int32_t *in_idx,
                                      int32_t in_n, int32_t lo, int32_t hi, float lr, float momentum,
                                      float l2, float eps);

/* Which layer passes a training step runs: the plain ones, the shared (atomic) ones, or the
 * forward and backprop of deterministic threads (the update comes later). */
typedef void (*elsh_layer_forward_fn)(elsh_layer *, const float *, const int32_t *, int32_t, int32_t);
typedef void (*elsh_layer_backward_fn)(elsh_layer *, const float *, const int32_t *, int32_t, float *,
                                       float, float, float, float);
typedef struct {
    elsh_layer_forward_fn forward;
    elsh_layer_backward_fn backward;
} elsh_layer_passes;

/* ---------------------------------------------------------------- the float network (net_f32.c) */

/* elsh_net_forward with the given layer forward pass. */
int elsh_net_forward_with(elsh_net *net, const float *x, int32_t label, elsh_layer_forward_fn forward);
/* elsh_train_sample with the given passes (train_f32.c). */
int elsh_train_sample_with(elsh_net *net, const elsh_train_config *tc, int32_t epoch, const float *x,
                           int32_t label, float *loss, const elsh_layer_passes *passes);
/* 1 when the optimizer settings are usable (positive learning rate, momentum in [0, 1), ...). */
int elsh_train_config_ok(const elsh_train_config *tc);
/* The momentum of epoch `epoch` (ramped from momentum_start to momentum_end). */
float elsh_momentum_at(const elsh_train_config *tc, int32_t epoch);
/* Table maintenance after the training sample that brought the count to `seen`
 * (train_f32.c): 0 none, 1 an update of the dirty neurons, 2 new hash functions and a rebuild. */
int elsh_tables_due(const elsh_train_config *tc, int32_t epoch, int64_t n_epoch, int64_t seen);
/* Do maintenance of that kind (1 or 2) on every LSH layer and count it in stats (may be NULL). */
void elsh_net_maintain(elsh_net *net, int kind, elsh_train_stats *stats);

/* A worker of a multi-threaded call: *worker becomes a copy of net that shares its parameters,
 * optimizer state, hash functions and tables, and owns its scratch (the input copy, active
 * sets, activations, deltas, hashing and selection buffers, probabilities) and its op
 * counters (zeroed), carved from arena `a` (planning only when a->base is NULL). */
void elsh_net_carve_worker(const elsh_net *net, elsh_net *worker, elsh_arena *a);


/* e^x from float operations only: the same bits on every platform. */
float elsh_expf(float x);
/* 1 when every one of the n values is finite (no NaN, no infinity). */
int elsh_all_finite(const float *v, size_t n);
/* Softmax over the output layer's active classes into net->probs (0 for inactive classes). */
void elsh_net_softmax(elsh_net *net);

/* ---------------------------------------------------------------- the fixed-point trainer's parts */

/* Where a step's stochastic rounding draws come from (train_q.c step 4): the trainer's PRNG
 * (rng), or, in mini-batches (rng NULL), a counter-based stream: the draw for input column col
 * (n_in for the bias) is the high half of elsh_mix64(key ^ col), where key = the batch's key ^
 * the (layer, neuron, sample) counter (train_q_threads.c). */
typedef struct {
    elsh_prng *rng;
    uint64_t key;
} elsh_qround;

static inline uint32_t elsh_qround_draw(elsh_qround *r, uint32_t col)
{
    return r->rng ? elsh_prng_u32(r->rng) : (uint32_t)(elsh_mix64(r->key ^ (uint64_t)col) >> 32);
}

/* Steps 1-3 of a training step (train_q.c): the prediction; deltas in tr->delta, the layers'
 * active sets and inputs in the network's scratch. Writes no parameter. */
int32_t elsh_qtrain_deltas(elsh_qtrain *tr, const int8_t *xq, int32_t label);
/* Step 4 for neuron j of layer l (weights at the input positions idx, NULL: dense, then bias). */
void elsh_qtrain_update_row(const elsh_qtrain *tr, int32_t l, int32_t j, int64_t d, const int16_t *x,
                            const int32_t *idx, int32_t n, elsh_qround *rnd, elsh_ops *uops);
/* Step 5's parts: table membership, the inference row copied and compared, its codes, a move. */
int elsh_qtrain_stores(const elsh_qtrain *tr, int32_t l, int32_t t, int32_t j);
void elsh_qtrain_copy_row(const elsh_qtrain *tr, int32_t l, int32_t j, int16_t *row);
int elsh_qtrain_row_changed(const elsh_qtrain *tr, int32_t l, int32_t j, const int16_t *row);
void elsh_qtrain_row_codes(const elsh_qtrain *tr, int32_t l, int32_t j, int32_t *h, uint32_t *codes, elsh_ops *tops);
void elsh_qtrain_move_neuron(elsh_qtrain *tr, int32_t l, int32_t t, int32_t j, uint32_t c_old, uint32_t c,
                             elsh_ops *tops);
/* The mini-batch work memory (train_q_threads.c), planned (a->base NULL) or carved, at the end
 * of the training arena's layout when cfg->batch > 0. */
void elsh_qtrain_layout_batch(elsh_qtrain *tr, const elsh_qnet *net, const elsh_qtrain_config *cfg, elsh_arena *a);

/* ---------------------------------------------------------------- the fixed-point layer's stages */

/* Fixed-point hashing (hash_q.c). h is the pooled, centered int32 vector of hash_dim. */
uint32_t elsh_qhash_code(const elsh_qlayer *L, const int32_t *h, int32_t t, elsh_ops *ops);
/* Pool (and center) the layer input x (minus zero point) into L->hash_in, codes into L->codes. */
void elsh_qhash_input(elsh_qlayer *L, const int16_t *x, const int32_t *idx, int32_t n, elsh_ops *ops);
/* Codes of neuron j's weight row in every table; h is [hash_dim] scratch. */
void elsh_qhash_neuron(const elsh_qlayer *L, int32_t j, int32_t *h, uint32_t *codes);
/* The same for a given row (row8 for an int8 layer, else row16), counting into ops if given. */
void elsh_qhash_row(const elsh_qlayer *L, const int8_t *row8, const int16_t *row16, int32_t *h,
                    uint32_t *codes, elsh_ops *ops);

/* Fixed-point dot products (dot_q.c, dot_q_neon.c): a weight row with the layer input minus
 * its zero point, modulo 2^32. The SIMD versions are chosen at compile time from the target
 * (__ARM_NEON, __ARM_FEATURE_DOTPROD); -DELSH_NO_SIMD keeps the portable C. */
#if (defined(__ARM_NEON) || defined(__ARM_NEON__)) && !defined(ELSH_NO_SIMD)
#define ELSH_USE_NEON 1
#else
#define ELSH_USE_NEON 0
#endif
#if ELSH_USE_NEON && defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#define ELSH_USE_SDOT 1
#else
#define ELSH_USE_SDOT 0
#endif
/* Input quantization (quant_q.c): the plain reference and, on x86, SSE2 (the same bytes). */
int elsh_quantize_floats_c(const float *x, int32_t n, float inv, int32_t z, int8_t *xq);
int elsh_quantize_floats_sse2(const float *x, int32_t n, float inv, int32_t z, int8_t *xq);
uint32_t elsh_dot_q8_dense_c(const int8_t *w, const int16_t *x, int32_t n);
uint32_t elsh_dot_q16_dense_c(const int16_t *w, const int16_t *x, int32_t n);
uint32_t elsh_dot_q8_sparse_c(const int8_t *w, const int16_t *x, const int32_t *idx, int32_t n);
uint32_t elsh_dot_q16_sparse_c(const int16_t *w, const int16_t *x, const int32_t *idx, int32_t n);
/* Four int8 rows against the same sparse input: acc[u] = the sparse dot product of row w[u]. */
void elsh_dot_q8_sparse4_c(const int8_t *const w[4], const int16_t *x, const int32_t *idx, int32_t n,
                           uint32_t acc[4]);
#if ELSH_USE_NEON
uint32_t elsh_dot_q8_dense_neon(const int8_t *w, const int16_t *x, int32_t n);
#endif
#if ELSH_USE_SDOT
/* a: the raw int8 input, zero: its zero point */
uint32_t elsh_dot_q8_dense_sdot(const int8_t *w, const int8_t *a, int32_t zero, int32_t n);
/* the same given row_sum = the sum of the row's n weights */
uint32_t elsh_dot_q8_dense_sdot_rowsum(const int8_t *w, const int8_t *a, int32_t zero, int32_t row_sum,
                                       int32_t n);
#endif

/* Bit-sliced collision counting over bucket bitmaps (count_planes.h, count_planes.c,
 * count_planes_simd.c): an LSH top-k layer with K <= ELSH_BITMAP_MAX_BITS may keep each
 * bucket as a bitmap over its neurons (elsh_model_attach_fast); the counts of one input are
 * then the bit-sliced sum of its L bitmaps, a few logic operations per 64 neurons and table,
 * instead of an increment per bucket entry. SIMD from the target: AVX2, SSE2 or NEON. */
#define ELSH_BITMAP_MAX_BITS 5
#define ELSH_BITMAP_WORD_ALIGN 4 /* bitmaps are whole 256-bit vectors */
#define ELSH_BITS_MAX_LEVELS 11  /* counts <= ELSH_MAX_TABLES = 1024 < 2^11 */
/* an input's counts come from the bitmaps when its buckets hold more entries than the words
 * of its L bitmaps divided by this (else by one increment per entry): an increment and its
 * bookkeeping cost about as much as the adder tree's work on two words (measured,
 * tools/bench/TUNING.md "Selection speed") */
#define ELSH_BITMAP_WORDS_PER_ENTRY 2u
/* the same where the AVX2 adder tree runs (elsh_cpu_avx2): four words a step, half the cost
 * (measured on x86-64 with 2, 4 and 8: 4 and 8 alike, 2 slower on inputs near the threshold) */
#define ELSH_BITMAP_WORDS_PER_ENTRY_AVX2 4u
#if defined(__AVX2__) && !defined(ELSH_NO_SIMD)
#define ELSH_USE_AVX2 1
#else
#define ELSH_USE_AVX2 0
#endif
#if (defined(__SSE2__) || defined(_M_X64)) && !defined(ELSH_NO_SIMD)
#define ELSH_USE_SSE2 1
#else
#define ELSH_USE_SSE2 0
#endif
#define ELSH_USE_SIMD_PLANES (ELSH_USE_AVX2 || ELSH_USE_SSE2 || ELSH_USE_NEON)
/* Run-time dispatch on x86-64 (GCC, Clang): a few kernels have AVX2 versions, compiled with
 * AVX2 turned on for their functions alone (ELSH_TARGET_AVX2_BEGIN/END around them) in
 * files of their own (count_planes_avx2.c, dot_q_avx2.c), and called only when
 * elsh_cpu_avx2() says the CPU has AVX2: the portable build (SSE2) gets them where they run.
 * The choice is read from the compiler's CPU model (libgcc / compiler-rt set it once, before
 * main) at each call, a load and a test: the kernel stores nothing (no .data, no .bss). The
 * AVX2 versions give the same bits as the portable ones (integer arithmetic; C tests). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(ELSH_NO_SIMD)
#define ELSH_X86_DISPATCH 1
#else
#define ELSH_X86_DISPATCH 0
#endif
#if ELSH_X86_DISPATCH
#if defined(__clang__)
#define ELSH_TARGET_AVX2_BEGIN                                                                  \
    _Pragma("clang attribute push (__attribute__((target(\"avx2,popcnt\"))), apply_to = function)")
#define ELSH_TARGET_AVX2_END _Pragma("clang attribute pop")
#else
#define ELSH_TARGET_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,popcnt\")")
#define ELSH_TARGET_AVX2_END _Pragma("GCC pop_options")
#endif
static inline int elsh_cpu_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
}
void elsh_count_planes_avx2(const uint64_t *bitmaps, const int32_t *offsets, int32_t L, int32_t W,
                            uint64_t *planes);
int32_t elsh_popcount_and_avx2(const uint64_t *a, const uint64_t *b, int32_t W);
uint32_t elsh_dot_q8_dense_avx2(const int8_t *w, const int16_t *x, int32_t n);
#else
static inline int elsh_cpu_avx2(void)
{
    return 0;
}
#endif
int32_t elsh_bits_levels(int32_t L);
void elsh_count_planes_c(const uint64_t *bitmaps, const int32_t *offsets, int32_t L, int32_t W, uint64_t *planes);
#if ELSH_USE_SIMD_PLANES
void elsh_count_planes_simd(const uint64_t *bitmaps, const int32_t *offsets, int32_t L, int32_t W,
                            uint64_t *planes);
#endif

/* Fixed-point layer forward (layer_q.c): input values a (int8) at positions idx (NULL: dense,
 * n = n_in). dense != 0 computes every neuron even in an LSH layer. Adds its work to
 * ops->last[ELSH_PHASE_HASH] and ops->last[ELSH_PHASE_FORWARD] (the network's counters). */
void elsh_qlayer_forward(elsh_qlayer *L, const int8_t *a, const int32_t *idx, int32_t n, int dense,
                         elsh_counters *ops);
/* The predicted class after a forward: the first highest logit (net_q.c). */
int32_t elsh_qnet_argmax(const elsh_qnet *net);
/* Its stages, in order (elsh_qnet_forward_stats times them one by one): the input minus its
 * zero point into L->x; for an LSH layer the hashing (elsh_qhash_input) and the selection
 * (elsh_select_count, elsh_select_choose on the job elsh_qlayer_job fills), else every neuron
 * active; then the active neurons' dot products and requantization. */
void elsh_qlayer_input(elsh_qlayer *L, const int8_t *a, int32_t n, elsh_ops *fops);
void elsh_qlayer_job(elsh_qlayer *L, elsh_select_job *job);
void elsh_qlayer_all_active(elsh_qlayer *L);
void elsh_qlayer_multiply(elsh_qlayer *L, const int8_t *a, const int32_t *idx, int32_t n,
                          elsh_ops *fops);
/* Neuron j's requantized pre-activation (before ReLU and the zero point) for the input in L->x
 * (and a): what the multiply stage computes for an active neuron. */
int32_t elsh_qlayer_preact(const elsh_qlayer *L, const int8_t *a, const int32_t *idx, int32_t n,
                           int32_t j);

#endif
