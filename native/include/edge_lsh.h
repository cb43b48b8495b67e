/*
 * edge_lsh.h - public C API of the edge-lsh kernel.
 *
 * A network is a stack of fully connected layers. Each hidden layer (and, if asked, the output
 * layer) keeps L locality-sensitive hash tables over its neurons' weight rows. For an input,
 * the layer hashes the input vector, counts how often each neuron collides with it over the L
 * tables and computes only the top-k neurons, forward and backward.
 *
 * Memory: the caller owns everything. elsh_net_plan() says how many bytes the arena needs;
 * elsh_net_init() carves every buffer (weights, optimizer state, hash tables, scratch) out of
 * it. The kernel never calls malloc. The arena holds plain data only (no pointers), laid out
 * the same on every platform of the same byte order, so saving the arena saves the model.
 *
 * Build with -std=c99 -ffp-contract=off: float results are then identical on every platform
 * with IEEE single precision evaluated in single precision (FLT_EVAL_METHOD 0).
 *
 * Determinism: every random choice (initial weights, projections, padding order, reservoir
 * insertion, sample order) comes from one seeded PRNG (prng.c).
 */
#ifndef EDGE_LSH_H
#define EDGE_LSH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ELSH_VERSION_MAJOR 0
#define ELSH_VERSION_MINOR 1

#define ELSH_MAX_LAYERS 8       /* hidden layers + output layer */
#define ELSH_MAX_WIDTH 65535    /* neuron ids are stored as uint16 in the tables */
#define ELSH_MAX_BITS 15        /* K: bits per table (bucket ids must stay below ELSH_NO_BUCKET) */
#define ELSH_MAX_TABLES 1024    /* L */
#define ELSH_NO_BUCKET 0xFFFFu  /* neuron_slot value: neuron not stored in this table */

typedef enum {
    ELSH_OK = 0,
    ELSH_ERR_NULL = -1,        /* a required pointer was NULL */
    ELSH_ERR_CONFIG = -2,      /* a configuration value is out of range */
    ELSH_ERR_ARENA = -3,       /* arena too small or misaligned */
    ELSH_ERR_INPUT = -4,       /* non-finite input or label out of range */
    ELSH_ERR_STATE = -5,       /* call not valid in the current state */
    ELSH_ERR_CORRUPT = -6      /* an attached arena breaks an invariant (bad id, length, NaN) */
} elsh_status;

const char *elsh_status_str(int status);

/* ---------------------------------------------------------------- PRNG (prng.c) */

/* xoshiro128** seeded by splitmix64: 32-bit outputs, cheap on Cortex-M, same stream everywhere. */
typedef struct {
    uint32_t s[4];
} elsh_prng;

void elsh_prng_seed(elsh_prng *rng, uint64_t seed);
uint32_t elsh_prng_u32(elsh_prng *rng);
uint32_t elsh_prng_below(elsh_prng *rng, uint32_t n);   /* uniform in [0, n), n >= 1, unbiased */
float elsh_prng_uniform(elsh_prng *rng);                /* [0, 1), 24 random bits */
float elsh_prng_normal(elsh_prng *rng);  /* approx N(0,1): Irwin-Hall of 4, no libm, exact */
uint64_t elsh_mix64(uint64_t x);         /* splitmix64 finalizer: hashes ints to ints */

/* ---------------------------------------------------------------- configuration */

typedef enum {
    ELSH_HASH_SIMHASH = 0,   /* signed Gaussian random projections (multiplies) */
    ELSH_HASH_TERNARY = 1,   /* signed sparse +-1 projections: adds and subtracts only */
    ELSH_HASH_DWTA = 2       /* densified winner-take-all: comparisons only */
} elsh_hash_family;

typedef enum { ELSH_INSERT_FIFO = 0, ELSH_INSERT_RESERVOIR = 1 } elsh_insert_policy;
/* EXACT computes every neuron and keeps the true top-k pre-activations: the oracle that LSH
 * approximates, at dense cost (for measuring how much selection quality matters). */
typedef enum { ELSH_SELECT_TOPK = 0, ELSH_SELECT_UNION = 1, ELSH_SELECT_EXACT = 2 } elsh_select_mode;

typedef struct {
    int32_t family;          /* elsh_hash_family */
    int32_t bits;            /* K: bits per table, 1..ELSH_MAX_BITS */
    int32_t tables;          /* L: number of tables, 1..ELSH_MAX_TABLES */
    int32_t pool;            /* sum-pool windows of this many inputs before hashing; 1 = none */
    int32_t bucket_capacity; /* max neurons per bucket; 0 = min(128, n_out) */
    int32_t insert_policy;   /* elsh_insert_policy, when a bucket is full */
    int32_t select_mode;     /* elsh_select_mode */
    int32_t ternary_nnz;     /* ternary: non-zeros per projection; 0 = ceil(dim / 3) */
    int32_t dwta_bin;        /* DWTA: inputs per bin, a power of two 2..256; 0 = 8 */
    int32_t center;          /* 1: hash (pooled input - center), see elsh_net_fit_centers */
} elsh_hash_config;

typedef struct {
    int32_t n_out;           /* neurons in this layer */
    int32_t use_lsh;         /* 0: dense (every neuron computed); 1: LSH-selected */
    float active_fraction;   /* k = max(1, round(active_fraction * n_out)) when use_lsh */
    elsh_hash_config hash;   /* ignored when use_lsh == 0 */
} elsh_layer_config;

/* Hidden layers are ReLU; the last layer is the softmax output. */
typedef struct {
    int32_t n_in;
    int32_t n_layers;                          /* hidden layers + 1 output layer */
    elsh_layer_config layers[ELSH_MAX_LAYERS];
    uint64_t seed;
} elsh_net_config;

/* ---------------------------------------------------------------- op counters */

/* Arithmetic and memory traffic of one phase of one layer. Multiply-accumulates count as one
 * mul plus one add. weight_bytes counts parameter bytes read (weights, biases, projections). */
typedef struct {
    uint64_t mul;
    uint64_t add;
    uint64_t cmp;
    uint64_t weight_bytes;
    uint64_t table_bytes;    /* bucket entries read or written */
} elsh_ops;

typedef enum {
    ELSH_PHASE_HASH = 0,     /* pooling + hashing the layer input, and candidate counting */
    ELSH_PHASE_FORWARD = 1,  /* the active neurons' dot products, activation */
    ELSH_PHASE_BACKWARD = 2, /* deltas for the previous layer */
    ELSH_PHASE_UPDATE = 3,   /* optimizer step on active rows */
    ELSH_PHASE_TABLES = 4,   /* re-hashing and moving updated neurons between buckets */
    ELSH_PHASE_COUNT = 5
} elsh_phase;

/* The op counters of one layer: its most recent call, and the sum since the last reset. */
typedef struct {
    elsh_ops last[ELSH_PHASE_COUNT];
    elsh_ops total[ELSH_PHASE_COUNT];
} elsh_counters;

/* ---------------------------------------------------------------- how a layer hashes */

/* The hashing of one LSH layer, the same for both numeric paths: derived from the layer's
 * elsh_hash_config by elsh_net_init (float network) or read from the model file's LAYER
 * section by elsh_model_open (fixed point). One name per setting; the settings of the
 * families not in use are 0. */
typedef struct {
    int32_t family;          /* elsh_hash_family */
    int32_t bits;            /* K: bits per table; bucket ids are 0 .. 2^K - 1 */
    int32_t tables;          /* L: number of tables */
    int32_t pool;            /* inputs summed into each hashed value; 1 = no pooling */
    int32_t hash_dim;        /* ceil(n_in / pool): length of the hashed vector */
    int32_t n_buckets;       /* 2^K */
    int32_t ternary_nnz;     /* ternary: non-zeros per projection */
    int32_t dwta_bin;        /* DWTA: inputs per bin, a power of two 2..256 */
    int32_t dwta_bits;       /* DWTA: log2(dwta_bin), the bits of one sub-hash */
    int32_t dwta_per_table;  /* DWTA: sub-hashes per table, ceil(K / dwta_bits) */
    int32_t center;          /* 1: the pooled input minus a center is hashed */
    int32_t select_mode;     /* elsh_select_mode */
} elsh_hash_params;

/* ---------------------------------------------------------------- layer and network */

/* A layer's views into the arena. Everything here is derived from the config by
 * elsh_net_init(); the arena alone holds the state. */
typedef struct {
    int32_t n_in, n_out, k, use_lsh, is_output;
    elsh_hash_params hash;
    int32_t capacity;          /* slots per bucket */
    int32_t insert_policy;     /* elsh_insert_policy, when a bucket is full */
    int32_t active_capacity;   /* n_out (+1 for the true label at an LSH output layer) */

    /* parameters, row-major: w[j * n_in + i] is neuron j's weight for input i */
    float *w;
    float *b;
    /* optimizer state (Adagrad accumulators and momentum) */
    float *w_g2, *w_vel, *b_g2, *b_vel;

    /* hash functions (only the family in use is non-NULL) */
    float *proj;               /* SimHash: [L*K][hash_dim] Gaussian */
    uint16_t *tern_idx;        /* ternary: [L*K][nnz] input index */
    int8_t *tern_sign;         /* ternary: [L*K][nnz] +1 / -1 */
    uint16_t *dwta_idx;        /* DWTA: [L*dwta_per_table][dwta_bin] input index */

    /* tables: [L][2^K] buckets of `capacity` neuron ids */
    uint16_t *bucket_ids;      /* [L][B][capacity] */
    uint16_t *bucket_len;      /* [L][B] */
    uint16_t *bucket_head;     /* [L][B] FIFO: next slot to evict */
    uint32_t *bucket_seen;     /* [L][B] reservoir: inserts ever offered */
    uint16_t *neuron_bucket;   /* [n_out][L] bucket holding the neuron, ELSH_NO_BUCKET if none */
    uint8_t *dirty;            /* [n_out] updated since its last re-hash */
    uint16_t *pad_order;       /* [n_out] fixed random permutation used to pad the active set */
    elsh_prng *rng;            /* this layer's PRNG (reservoir insertion), kept in the arena */

    /* scratch, reused by every call */
    float *center;             /* [hash_dim] pooled mean input, subtracted before hashing */
    float *hash_in;            /* [hash_dim], kept all-zero between calls */
    uint32_t *codes;           /* [L] bucket ids of the current input */
    uint32_t *neuron_codes;    /* [L] bucket ids of the neuron being re-hashed */
    int32_t *hist;             /* [L + 1] histogram of collision counts */
    uint16_t *counts;          /* [n_out] collision counts, kept all-zero between calls */
    uint16_t *touched;         /* [n_out + 1] neurons with a non-zero count (or padded in) */
    int32_t *active;           /* [active_capacity] active neuron ids, ascending */
    float *act;                /* [active_capacity] outputs of the active neurons */
    float *delta;              /* [active_capacity] dL/dz of the active neurons */
    float *score;              /* [n_out] EXACT selection: every neuron's pre-activation */
    int32_t n_active;
    int32_t forced;            /* id added only because it was forced (the label), else -1 */
    int32_t n_candidates;      /* distinct neurons found in the L buckets for this input */

    elsh_counters ops;         /* totals since elsh_net_reset_counters() */
} elsh_layer;

typedef struct {
    elsh_net_config cfg;
    int32_t n_layers;
    elsh_layer layers[ELSH_MAX_LAYERS];
    float *input_dense;        /* [n_in] copy of the current input */
    int32_t *input_index;      /* [max width] 0..n-1, the "active" list of a dense input */
    float *probs;              /* [n_classes] output probabilities (0 for inactive classes) */
    elsh_prng *train_rng;      /* sample order; kept in the arena */
    int64_t *samples_seen;     /* training samples since init; drives the table schedule */
    void *arena;
    size_t arena_bytes;
} elsh_net;

/* Bytes of arena the config needs (64-byte aligned buffers inside). Validates the config. */
int elsh_net_plan(const elsh_net_config *cfg, size_t *arena_bytes);

/* Point every buffer of `net` into `arena` (which must be 64-byte aligned and at least
 * elsh_net_plan() bytes). Parameters, optimizer state and tables are left as they are (use it
 * to attach a saved arena, then elsh_net_check); only scratch buffers are reset. */
int elsh_net_init(elsh_net *net, const elsh_net_config *cfg, void *arena, size_t arena_bytes);

/* Check an attached arena before use: every table entry, index and length in range, the
 * padding order a permutation, parameters finite. Run it on any arena that came from a file. */
int elsh_net_check(elsh_net *net);

/* Fill parameters from cfg->seed (uniform He init), draw hash functions, zero optimizer state,
 * build all tables. */
int elsh_net_randomize(elsh_net *net);

/* Centering: inputs are all non-negative (pixels, ReLU outputs), so they all point the same
 * way and the neurons aligned with that common direction would win every input. Hashing the
 * input minus its mean spreads the inputs over the hash space. For each LSH layer with
 * hash.center set, in layer order, set `center` to the pooled mean of that layer's input over
 * the n rows of x (earlier layers run forward to produce it). Parameters are not changed. */
int elsh_net_fit_centers(elsh_net *net, const float *x, int64_t n);

/* Change k of every LSH layer to round(fraction * n_out) for the calls that follow (e.g. a
 * larger active set in early training epochs, so that fewer neurons end up never selected);
 * fraction <= 0 restores each layer's configured k. */
int elsh_net_set_active(elsh_net *net, float fraction);

void elsh_net_reset_counters(elsh_net *net);

/* Sum of one phase over all layers (the totals when total != 0, else the last calls). */
elsh_ops elsh_net_ops(const elsh_net *net, int phase, int total);

/* ---------------------------------------------------------------- hashing (hash.c) */

/* Sum-pool a dense vector (n values) or a sparse one (idx != NULL) into layer->hash_in. */
void elsh_hash_pool(elsh_layer *layer, const float *x, const int32_t *idx, int32_t n, elsh_ops *ops);
/* Bucket id of table t for the vector in layer->hash_in (or `v` of length hash_dim). */
uint32_t elsh_hash_code(const elsh_layer *layer, const float *v, int32_t t, elsh_ops *ops);
/* Draw new hash functions for the layer from rng. */
void elsh_hash_draw(elsh_layer *layer, elsh_prng *rng);
/* Bucket ids of neuron j's weight row in every table, into codes[L]. Uses hash_in as scratch. */
void elsh_hash_neuron(elsh_layer *layer, int32_t j, uint32_t *codes, elsh_ops *ops);

/* ---------------------------------------------------------------- tables (tables.c) */

/* Empty every bucket (neuron_bucket all ELSH_NO_BUCKET). */
void elsh_tables_clear(elsh_layer *layer);
/* Empty every bucket and insert every neuron. */
void elsh_tables_rebuild(elsh_layer *layer);
/* Re-hash the neurons marked dirty and move them to their new buckets. Returns how many. */
int32_t elsh_tables_update(elsh_layer *layer);
/* Number of neurons currently stored in table t (sum of bucket lengths). */
int32_t elsh_tables_count(const elsh_layer *layer, int32_t t);

/* ---------------------------------------------------------------- selection (select.c) */

/* From layer->codes, choose the active set: top-k by collision count (ties by lower neuron id)
 * or union, padded from pad_order when fewer than k neurons collide. If force >= 0 it is added
 * (training: the true label at an LSH output layer). Fills active[] ascending and n_active. */
void elsh_select(elsh_layer *layer, int32_t force, elsh_ops *ops);

/* ---------------------------------------------------------------- layers (layer_f32.c) */

/* Forward one layer. The input is dense (in_idx == NULL, n_in values) or sparse (in_n values at
 * the in_idx positions). Hashes and selects when the layer uses LSH. */
void elsh_layer_forward_f32(elsh_layer *layer, const float *in_val, const int32_t *in_idx,
                            int32_t in_n, int32_t force);

/* Backward one layer for the deltas in layer->delta: adds dL/dx of the active inputs into
 * prev_delta (NULL for the first layer) and steps Adagrad + momentum on the active rows. */
void elsh_layer_backward_f32(elsh_layer *layer, const float *in_val, const int32_t *in_idx,
                             int32_t in_n, float *prev_delta, float lr, float momentum, float l2,
                             float eps);

/* ---------------------------------------------------------------- network (net.c, train.c) */

/* Forward pass for one input. label >= 0 only while training (forced into an LSH output
 * layer's active set). Fills net->probs. Returns the predicted class (>= 0) or an error. */
int elsh_net_forward(elsh_net *net, const float *x, int32_t label);

typedef enum { ELSH_REBUILD_SEED = 0, ELSH_REBUILD_EVERY = 1, ELSH_REBUILD_NEVER = 2 } elsh_rebuild;

typedef struct {
    float lr;                /* Adagrad learning rate */
    float momentum_start;    /* momentum, ramped linearly ... */
    float momentum_end;      /* ... to this by momentum_epochs */
    int32_t momentum_epochs;
    float l2;                /* L2 weight decay added to the gradient of active rows */
    float adagrad_eps;
    int32_t rebuild;         /* elsh_rebuild */
    int32_t rebuild_every;   /* samples between table updates, for ELSH_REBUILD_EVERY */
    int32_t rehash_every;    /* samples between drawing new hash functions; 0 = never */
} elsh_train_config;

void elsh_train_config_default(elsh_train_config *tc);

typedef struct {
    double loss_sum;
    int64_t correct;
    int64_t samples;
    int64_t rebuilds;
    int64_t rehashes;
} elsh_train_stats;

/* Samples between table updates in `epoch` for a set of n samples (0 = no updates). */
int64_t elsh_rebuild_interval(const elsh_train_config *tc, int32_t epoch, int64_t n);

/* One step (Adagrad + momentum) on one sample; no table maintenance. *loss gets its
 * cross-entropy. Returns the class predicted before the step, or an error. */
int elsh_train_sample(elsh_net *net, const elsh_train_config *tc, int32_t epoch,
                      const float *x, int32_t label, float *loss);

/* Train on samples x[order[i]] for i in [0, n) (x is [rows][n_in], row-major; order NULL
 * means 0..n-1; the caller guarantees order's entries are valid rows). Table maintenance
 * follows tc and `epoch`; `n_epoch` is the epoch's full size, for the schedule. A non-finite
 * input or a label out of range stops the batch with ELSH_ERR_INPUT. */
int elsh_train_batch(elsh_net *net, const elsh_train_config *tc, int32_t epoch, int64_t n_epoch,
                     const float *x, const int32_t *labels, const int32_t *order, int64_t n,
                     elsh_train_stats *stats);

/* Predicted class of each of n rows; probs (n * n_classes) may be NULL. */
int elsh_predict(elsh_net *net, const float *x, int64_t n, int32_t *pred, float *probs);

/* Fisher-Yates shuffle of 0..n-1 into order using the training PRNG. */
int elsh_shuffle(elsh_net *net, int32_t *order, int64_t n); /* n <= INT32_MAX */


/* ================================================================ fixed point (.elsh models)
 *
 * A quantized network for inference, read in place from an .elsh file (export/FORMAT.md):
 * int8 (or int16) weights with one scale per neuron, int32 biases, int8 activations with a
 * zero point, and requantization by an integer multiplier and shift. No float operation runs
 * after the input is quantized, so outputs are bit-identical on every platform.
 *
 *   size_t need;
 *   elsh_qnet net;
 *   elsh_model_open(&net, file, file_bytes, &need);   // validates, points into the file
 *   elsh_model_attach(&net, arena, need);             // scratch, hash functions, tables
 *   elsh_qnet_quantize_input(&net, x_float, xq);       // or pass int8 inputs directly
 *   int cls = elsh_qnet_forward(&net, xq);             // logits in the output layer's view
 *
 * The file buffer must stay valid and unchanged while the network is used, and must be
 * ELSH_FILE_ALIGN-byte aligned (mmap, a flash image, or an aligned buffer). */

#define ELSH_FILE_ALIGN 16
#define ELSH_FORMAT_MAJOR 1
#define ELSH_FORMAT_MINOR 0

/* Why a model file was rejected (elsh_model_open, elsh_model_attach). */
typedef enum {
    ELSH_FMT_TRUNCATED = -100,      /* shorter than its header or its file_bytes says */
    ELSH_FMT_MAGIC = -101,          /* not an .elsh file */
    ELSH_FMT_VERSION = -102,        /* a major version this reader does not know */
    ELSH_FMT_BYTE_ORDER = -103,     /* byte-order mark is not little-endian */
    ELSH_FMT_HEADER = -104,         /* header field out of range */
    ELSH_FMT_CRC = -105,            /* checksum mismatch: the file is damaged */
    ELSH_FMT_ALIGN = -106,          /* buffer or section not aligned */
    ELSH_FMT_BOUNDS = -107,         /* a section lies outside the file or overlaps another */
    ELSH_FMT_DUPLICATE = -108,      /* the same section twice */
    ELSH_FMT_UNKNOWN_REQUIRED = -109, /* a required section this reader does not know */
    ELSH_FMT_MISSING = -110,        /* a required section is absent */
    ELSH_FMT_UNEXPECTED = -111,     /* a section present where the layer does not use it */
    ELSH_FMT_SIZE = -112,           /* a section's size does not match the layer */
    ELSH_FMT_NET = -113,            /* NET section value out of range */
    ELSH_FMT_LAYER = -114,          /* LAYER section value out of range or inconsistent */
    ELSH_FMT_QUANT = -115,          /* requantization multiplier or shift out of range */
    ELSH_FMT_HASH = -116,           /* hash coefficients, padding order or center invalid */
    ELSH_FMT_TABLES = -117          /* tables or membership bits invalid (bad offset, id, repeat) */
} elsh_format_status;

/* One fixed-point layer: views into the model file and into the arena. */
typedef struct {
    int32_t n_in, n_out, k, k_file, use_lsh, is_output, weight_bits;
    elsh_hash_params hash;
    int32_t hash_source;         /* 0: hash functions drawn from the seed, 1: in the file */
    int32_t in_zero, out_zero;
    float in_scale, out_scale;

    /* in the file */
    const int8_t *w8;            /* [n_out][n_in] when weight_bits == 8 */
    const int16_t *w16;          /* [n_out][n_in] when weight_bits == 16 */
    const int32_t *bias;         /* [n_out] */
    const int32_t *multiplier;   /* [n_out] Q31 */
    const int8_t *shift;         /* [n_out] */
    const int32_t *center;       /* [hash_dim] or NULL */
    /* hash functions and padding order: in the file (hash_source 1) or drawn into the arena */
    const int8_t *proj;          /* SimHash [L][K][hash_dim] */
    const uint16_t *tern_idx;    /* ternary [L][K][nnz] */
    const int8_t *tern_sign;     /* ternary [L][K][nnz] */
    const uint16_t *dwta_idx;    /* DWTA [L * dwta_per_table][dwta_bin] */
    const uint16_t *pad_order;   /* [n_out] */
    /* CSR tables: in the file, or built in the arena */
    const uint32_t *tab_offsets; /* [L * 2^K + 1] */
    const uint16_t *tab_ids;     /* [tab_offsets[L * 2^K]] <= L * n_out */
    const uint8_t *membership;   /* [L][(n_out + 7) / 8] bits: neuron j stored in table t; NULL: all */
    int32_t tables_in_file;

    /* arena scratch */
    int16_t *x;                  /* [n_in] input minus zero point, aligned with in_idx */
    int32_t *hash_in;            /* [hash_dim] */
    uint32_t *codes;             /* [L] */
    int32_t *hist;               /* [L + 1] */
    uint16_t *counts;            /* [n_out], all zero between calls */
    uint16_t *touched;           /* [n_out + 1] */
    int32_t *active;             /* [n_out] active ids, ascending */
    int8_t *out;                 /* [n_out] hidden: int8 output of active[q] at out[q] */
    int32_t *logits;             /* [n_out] output layer: every class, inactive INT32_MIN */
    int32_t n_active, n_candidates;

} elsh_qlayer;

typedef struct {
    int32_t n_in, n_layers, n_classes;
    float input_inv_scale;
    uint64_t seed;
    uint32_t flags;
    elsh_qlayer layers[ELSH_MAX_LAYERS];
    const uint8_t *file;
    size_t file_bytes;
    const char *info;            /* the INFO section (JSON, not NUL-terminated) or NULL */
    size_t info_bytes;
    size_t arena_bytes;          /* what elsh_model_attach needs */
    int8_t *input_q;             /* [n_in] arena: the quantized input */
    int32_t dense;               /* 1: compute every neuron of every layer (dense baseline) */
    int32_t attached;
    elsh_counters ops;           /* all layers together; HASH and FORWARD are used */
} elsh_qnet;

/* Validate the file's structure and every value that needs no scratch memory, and point the
 * layers into it. *arena_bytes gets the arena elsh_model_attach needs. */
int elsh_model_open(elsh_qnet *net, const void *file, size_t file_bytes, size_t *arena_bytes);

/* Carve the scratch buffers out of `arena` (64-byte aligned, >= arena_bytes), draw the hash
 * functions and padding order from the seed where the file does not store them, finish
 * validating the hash functions and tables, and build the canonical tables the file omits. */
int elsh_model_attach(elsh_qnet *net, void *arena, size_t arena_bytes);

/* Requantize an int32 accumulator: round(acc * multiplier * 2^(shift - 31)), half up,
 * saturated to int32 (FORMAT.md 6.2 step 4). */
int32_t elsh_requantize(int32_t acc, int32_t multiplier, int32_t shift);

/* Quantize n_in floats for the network's input (FORMAT.md 6.1). ELSH_ERR_INPUT on NaN/inf. */
int elsh_qnet_quantize_input(const elsh_qnet *net, const float *x, int8_t *xq);

/* Forward one quantized input. Returns the predicted class; the output layer's logits stay in
 * net->layers[n_layers - 1].logits. */
int elsh_qnet_forward(elsh_qnet *net, const int8_t *xq);

/* Quantize and classify n float rows (x is [n][n_in]); logits ([n][n_classes]) may be NULL. */
int elsh_qnet_predict(elsh_qnet *net, const float *x, int64_t n, int32_t *pred, int32_t *logits);

/* k of every LSH layer = round(fraction * n_out); fraction <= 0 restores the file's k.
 * dense != 0 computes every neuron of every layer (the dense int8 baseline). */
int elsh_qnet_set_active(elsh_qnet *net, float fraction, int32_t dense);

void elsh_qnet_reset_counters(elsh_qnet *net);
elsh_ops elsh_qnet_ops(const elsh_qnet *net, int phase, int total);

/* CRC-32 (IEEE 802.3, zlib's crc32), continued from crc (0 to start). */
uint32_t elsh_crc32(uint32_t crc, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* EDGE_LSH_H */
