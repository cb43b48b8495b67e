/*
 * edge_lsh.h - the inference API of the edge-lsh kernel: what a device, the runner
 * (edge-lsh-run), the firmware and the fuzzer use.
 *
 * A network is a stack of fully connected layers. Each hidden layer (and, if asked, the output
 * layer) keeps L locality-sensitive hash tables over its neurons' weight rows. For an input,
 * the layer hashes the input vector, counts how often each neuron collides with it over the L
 * tables and computes only the top-k neurons.
 *
 * This header runs a trained, quantized network from an .elsh model file (int8/int16
 * weights, integer arithmetic only; export/FORMAT.md). Training a float network, and running
 * it in float, is edge_lsh_train.h, which includes this header.
 *
 * Memory: the caller owns everything. elsh_model_open() says how many bytes of arena the model
 * needs; elsh_model_attach() carves every buffer out of it. The kernel never calls malloc.
 *
 * Structs whose fields are marked private are declared here only so that a caller can allocate
 * them (statically, on a microcontroller): read them through the accessor functions. The
 * value structs (elsh_ops, elsh_hash_params, elsh_qnet_summary, ...) are public.
 *
 * Build with -std=c99 -ffp-contract=off. Determinism: every random choice comes from one
 * seeded PRNG (prng.c), the same stream on every platform.
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
#define ELSH_MAX_BITS 15        /* K: bits per table (bucket ids must stay below 0xFFFF) */
#define ELSH_MAX_TABLES 1024    /* L */

typedef enum {
    ELSH_OK = 0,
    ELSH_ERR_NULL = -1,        /* a required pointer was NULL */
    ELSH_ERR_CONFIG = -2,      /* a configuration value is out of range */
    ELSH_ERR_ARENA = -3,       /* arena too small or misaligned */
    ELSH_ERR_INPUT = -4,       /* non-finite input or label out of range */
    ELSH_ERR_STATE = -5,       /* call not valid in the current state */
    ELSH_ERR_CORRUPT = -6      /* an attached arena breaks an invariant (bad id, length, NaN) */
} elsh_status;

/* What a status code (elsh_status or elsh_format_status) means, as a sentence. */
const char *elsh_status_str(int status);

/* ---------------------------------------------------------------- PRNG (prng.c) */

/* xoshiro128** seeded by splitmix64: 32-bit outputs, cheap on Cortex-M, same stream everywhere.
 * Seeding never gives the all-zero state (a fixed point of xoshiro); a zeroed elsh_prng is
 * re-seeded with seed 0 by its first draw. */
typedef struct {
    uint32_t s[4];
} elsh_prng;

void elsh_prng_seed(elsh_prng *rng, uint64_t seed);
uint32_t elsh_prng_u32(elsh_prng *rng);
uint32_t elsh_prng_below(elsh_prng *rng, uint32_t n);   /* uniform in [0, n), unbiased; n = 0: 0 */
float elsh_prng_uniform(elsh_prng *rng);                /* [0, 1), 24 random bits */
float elsh_prng_normal(elsh_prng *rng);  /* approx N(0,1): Irwin-Hall of 4, no libm, exact */
uint64_t elsh_mix64(uint64_t x);         /* splitmix64 finalizer: hashes ints to ints */

/* ---------------------------------------------------------------- hashing */

typedef enum {
    ELSH_HASH_SIMHASH = 0,   /* signed Gaussian random projections (multiplies) */
    ELSH_HASH_TERNARY = 1,   /* signed sparse +-1 projections: adds and subtracts only */
    ELSH_HASH_DWTA = 2       /* densified winner-take-all: comparisons only */
} elsh_hash_family;

/* EXACT computes every neuron and keeps the true top-k pre-activations: the oracle that LSH
 * approximates, at dense cost (for measuring how much selection quality matters). */
typedef enum { ELSH_SELECT_TOPK = 0, ELSH_SELECT_UNION = 1, ELSH_SELECT_EXACT = 2 } elsh_select_mode;

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

/* The op counters of one layer (or of all the layers of a fixed-point network): its most
 * recent call, and the sum since the last reset. */
typedef struct {
    elsh_ops last[ELSH_PHASE_COUNT];
    elsh_ops total[ELSH_PHASE_COUNT];
} elsh_counters;


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
 *   int cls = elsh_qnet_forward(&net, xq);             // the predicted class
 *   const int32_t *logits = elsh_qnet_logits(&net);    // [n_classes], inactive INT32_MIN
 *   elsh_qnet_probs(&net, probs);                      // optional: float probabilities
 *
 * The file buffer must stay valid and unchanged while the network is used, and must be
 * ELSH_FILE_ALIGN-byte aligned (mmap, a flash image, or an aligned buffer). */

#define ELSH_FILE_ALIGN 16
#define ELSH_FORMAT_MAJOR 1
#define ELSH_FORMAT_MINOR 2

/* Work limits per file (FORMAT.md 5.8): a model file of F bytes may ask for at most
 * max(BASE, PER_BYTE * F) bytes of arena, operations per input (every neuron computed) and
 * operations at attach (hash functions drawn from the seed, tables built); a file that asks
 * for more is rejected with ELSH_FMT_LIMITS. The arena a file passes with is what
 * elsh_model_open returns: a device may refuse a smaller one of its own (edge-lsh-run
 * --max-arena). */
#define ELSH_LIMIT_ARENA_BASE 33554432u          /* 2^25 bytes */
#define ELSH_LIMIT_ARENA_PER_BYTE 16u
#define ELSH_LIMIT_INPUT_WORK_BASE 33554432u     /* 2^25 operations */
#define ELSH_LIMIT_INPUT_WORK_PER_BYTE 16u
#define ELSH_LIMIT_LOAD_WORK_BASE 33554432u      /* 2^25 operations */
#define ELSH_LIMIT_LOAD_WORK_PER_BYTE 1024u

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
    ELSH_FMT_TABLES = -117,         /* tables or membership bits invalid (bad offset, id, repeat) */
    ELSH_FMT_LIMITS = -118,         /* more arena or work than the file's size allows (5.8) */
    ELSH_FMT_STATE = -119           /* a trained-state value out of range or inconsistent (4.2) */
} elsh_format_status;

/* One fixed-point layer: views into the model file and into the arena. The fields are
 * private: read them through elsh_qnet_layer_info and the other accessors below. */
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
    const uint8_t *state;        /* the LAYER_STATE section (FORMAT.md 4.2) or NULL */
    /* elsh_model_attach_fast's additions, beyond the arena's first arena_bytes (else NULL) */
    const uint64_t *bitmaps;     /* [L][2^K][bitmap_words] bucket bitmaps */
    uint64_t *planes;            /* [levels + 2][bitmap_words] scratch of the bit-sliced counts */
    int32_t bitmap_words;
    const int8_t *hash_t;        /* [hash_dim][hash_cols] SimHash/ternary coefficients, transposed */
    int32_t *hash_sums;          /* [hash_cols] scratch: every projection of the input */
    int32_t hash_cols;           /* L * K rounded up to a multiple of 16 */
    uint32_t hash_norm;          /* the largest sum of |coefficients| of a projection */
    const int32_t *row_sums;     /* [n_out] int8 weights: each row's sum (targets with sdot) */
} elsh_qlayer;

/* An opened model. Declared here so that a caller can allocate it (statically on a
 * microcontroller); its fields are private: read them through elsh_qnet_info. */
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
    int32_t has_preprocess;      /* the PREPROCESS section: see elsh_qnet_summary */
    float input_divisor, input_min, input_max;
    const uint8_t *train_state;  /* the TRAIN_STATE section (FORMAT.md 4.2) or NULL */
} elsh_qnet;

/* Validate the file's structure and every value that needs no scratch memory, and point the
 * layers into it. *arena_bytes gets the arena elsh_model_attach needs. */
int elsh_model_open(elsh_qnet *net, const void *file, size_t file_bytes, size_t *arena_bytes);

/* Carve the scratch buffers out of `arena` (64-byte aligned, >= arena_bytes), draw the hash
 * functions and padding order from the seed where the file does not store them, finish
 * validating the hash functions and tables, and build the canonical tables the file omits. */
int elsh_model_attach(elsh_qnet *net, void *arena, size_t arena_bytes);

/* Optional, faster hashing and selection for more RAM (attach_fast.c):
 *  - each bucket of an LSH top-k layer with K <= 5 bits also kept as a bitmap over the layer's
 *    neurons, so that an input's collision counts are a bit-sliced sum of L bitmaps (SIMD where
 *    the target has it) instead of one increment per bucket entry; an input whose buckets hold
 *    few entries still counts them one by one;
 *  - the SimHash or ternary projections of a layer as one dense int8 matrix, so that all L * K
 *    projections of an input are one matrix-vector product in int32 (vectorized), used when
 *    the input's magnitude proves that no sum can leave int32 (else the int64 path runs).
 * The outputs are the same bit for bit; the op counters say which way each input went.
 * After elsh_model_open: *extra_bytes gets the arena these need beyond arena_bytes (0 when no
 * layer qualifies). Then elsh_model_attach_fast(net, arena, bytes), with bytes at least
 * arena_bytes rounded up to a multiple of 64 plus extra_bytes, attaches as elsh_model_attach
 * does and builds them at that 64-byte boundary. */
int elsh_model_fast_bytes(const elsh_qnet *net, size_t *extra_bytes);
int elsh_model_attach_fast(elsh_qnet *net, void *arena, size_t arena_bytes);

/* Requantize an int32 accumulator: round(acc * multiplier * 2^(shift - 31)), half up,
 * saturated to int32 (FORMAT.md 6.2 step 4). */
int32_t elsh_requantize(int32_t acc, int32_t multiplier, int32_t shift);

/* Quantize n_in floats for the network's input (FORMAT.md 6.1). ELSH_ERR_INPUT on NaN/inf. */
int elsh_qnet_quantize_input(const elsh_qnet *net, const float *x, int8_t *xq);

/* Forward one quantized input. Returns the predicted class; the logits of every class stay
 * readable through elsh_qnet_logits until the next call. */
int elsh_qnet_forward(elsh_qnet *net, const int8_t *xq);

/* Quantize and classify n float rows (x is [n][n_in]); logits ([n][n_classes]) may be NULL. */
int elsh_qnet_predict(elsh_qnet *net, const float *x, int64_t n, int32_t *pred, int32_t *logits);

/* k of every LSH layer = round(fraction * n_out); fraction <= 0 restores the file's k.
 * dense != 0 computes every neuron of every layer (the dense int8 baseline). */
int elsh_qnet_set_active(elsh_qnet *net, float fraction, int32_t dense);

void elsh_qnet_reset_counters(elsh_qnet *net);
elsh_ops elsh_qnet_ops(const elsh_qnet *net, int phase, int total);

/* ---------------------------------------------------------------- reading an opened model */

/* The network as a whole (after elsh_model_open). */
typedef struct {
    int32_t n_in;                /* inputs per row */
    int32_t n_classes;
    int32_t n_layers;
    size_t arena_bytes;          /* what elsh_model_attach needs */
    const uint8_t *file;         /* the model file, used in place */
    size_t file_bytes;
    const char *info;            /* the INFO section (JSON, not NUL-terminated) or NULL */
    size_t info_bytes;
    /* the optional PREPROCESS section (FORMAT.md 4.1); all 0 when has_preprocess is 0 */
    int32_t has_preprocess;      /* 1: the file says how raw inputs are scaled */
    float input_divisor;         /* network input = raw / input_divisor, in float32 (> 0) */
    float input_min, input_max;  /* the range of the training inputs after that scaling */
} elsh_qnet_summary;

/* One layer (after elsh_model_open). */
typedef struct {
    int32_t n_in, n_out;
    int32_t k;                   /* active neurons per input now (elsh_qnet_set_active) */
    int32_t k_file;              /* the file's k */
    int32_t use_lsh;             /* 0: dense, every neuron computed */
    int32_t is_output;
    int32_t weight_bits;         /* 8 or 16 */
    const void *weights;         /* [n_out][n_in] int8 or int16 (weight_bits), in the file */
    int32_t in_zero, out_zero;   /* zero points of the layer's input and output */
    float in_scale, out_scale;
    elsh_hash_params hash;       /* LSH layers; all 0 for a dense layer */
    int32_t hash_source;         /* 0: hash functions drawn from the seed, 1: stored in the file */
    int32_t tables_in_file;      /* 1: the file stores the tables; 0: built at attach */
} elsh_qlayer_summary;

/* ELSH_ERR_NULL for a NULL pointer, ELSH_ERR_STATE when no model is open (or the layer does
 * not exist). */
int elsh_qnet_info(const elsh_qnet *net, elsh_qnet_summary *out);
int elsh_qnet_layer_info(const elsh_qnet *net, int32_t layer, elsh_qlayer_summary *out);

/* After elsh_qnet_forward (or each row of elsh_qnet_predict): the output layer's int32 logits
 * of every class, INT32_MIN for a class the output layer did not compute. NULL before attach. */
const int32_t *elsh_qnet_logits(const elsh_qnet *net);

/* After elsh_qnet_forward: the class probabilities into probs[n_classes], the softmax of the
 * dequantized logits (out_scale * logit, out_scale of the output layer) over the classes the
 * output layer computed; 0 for a class it did not compute (an LSH output layer's inactive
 * classes). Output formatting, not inference: float arithmetic (double inside, with a portable
 * exp), identical bits on every platform, never NaN; the maximum is subtracted first, so any
 * logits and any scale are fine. ELSH_ERR_NULL for a NULL pointer, ELSH_ERR_STATE before
 * attach or before the first forward. */
int elsh_qnet_probs(const elsh_qnet *net, float *probs);

/* After elsh_qnet_forward: the ids of the neurons layer `layer` computed, ascending, and how
 * many (*n_active). NULL (and *n_active 0) before attach or for a layer that does not exist. */
const int32_t *elsh_qnet_last_active(const elsh_qnet *net, int32_t layer, int32_t *n_active);

/* ---------------------------------------------------------------- measuring selection (stats_q.c)
 *
 * elsh_qnet_forward_stats runs the same stages as elsh_qnet_forward (same outputs, same op
 * counters) one at a time and measures each layer's selection: how many bucket entries it read,
 * how many distinct neurons collided, how long each step took (with a clock the caller passes:
 * the kernel reads no clock, so it needs none on bare metal) and, given scratch for every
 * pre-activation, the recall of the exact top-k. The recall pass computes every neuron of an
 * LSH layer after the timed steps; elsh_qnet_forward never does. */

/* The steps of a fixed-point layer's forward, as timed. */
typedef enum {
    ELSH_STEP_HASH = 0,     /* input minus its zero point, pooling, hashing */
    ELSH_STEP_COUNT = 1,    /* reading the input's L buckets: collision counts (union: the marks) */
    ELSH_STEP_SELECT = 2,   /* the cut-off count, padding, the active ids in order */
    ELSH_STEP_MULTIPLY = 3, /* the active neurons' dot products, requantization, activation */
    ELSH_STEPS = 4
} elsh_step;

/* A caller's clock: nanoseconds from any fixed origin. */
typedef uint64_t (*elsh_clock_ns_fn)(void *ctx);

/* One layer's measurements, summed over the inputs measured (divide by inputs). */
typedef struct {
    uint64_t inputs;          /* forwards measured */
    uint64_t ns[ELSH_STEPS];  /* time in each step (0 without a clock; dense layers: HASH is the
                                 input conversion, COUNT and SELECT 0) */
    uint64_t entries;         /* bucket entries read */
    uint64_t candidates;      /* distinct neurons that collided (union: taken from the tables) */
    uint64_t active;          /* neurons computed */
    uint64_t topk;            /* k, summed over the inputs whose recall was measured */
    uint64_t topk_found;      /* of those true top-k (the k highest requantized pre-activations,
                                 ties to the lower id), how many were in the active set */
} elsh_layer_stats;

/* Forward one quantized input as elsh_qnet_forward does (the same return value, logits, active
 * sets and op counters), adding layer l's measurements into stats[l] (n_layers of them, zeroed
 * by the caller before the first input). clock: NULL for no times. preact: NULL for no recall,
 * else int32 scratch of the widest layer's n_out; recall is measured for LSH layers only (not
 * with dense set). */
int elsh_qnet_forward_stats(elsh_qnet *net, const int8_t *xq, elsh_clock_ns_fn clock, void *clock_ctx,
                            int32_t *preact, elsh_layer_stats *stats);

/* CRC-32 (IEEE 802.3, zlib's crc32), continued from crc (0 to start). */
uint32_t elsh_crc32(uint32_t crc, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* EDGE_LSH_H */
