/*
 * edge_lsh_train.h - the float network of the edge-lsh kernel: configuration, training on the
 * device, and float inference (elsh_net_forward, elsh_predict). Includes edge_lsh.h.
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
#ifndef EDGE_LSH_TRAIN_H
#define EDGE_LSH_TRAIN_H

#include "edge_lsh.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ELSH_NO_BUCKET 0xFFFFu  /* neuron_bucket value: neuron not stored in this table */

/* ---------------------------------------------------------------- configuration */

typedef enum { ELSH_INSERT_FIFO = 0, ELSH_INSERT_RESERVOIR = 1 } elsh_insert_policy;

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

/* ---------------------------------------------------------------- layer and network */

/* A layer's views into the arena. Everything here is derived from the config by
 * elsh_net_init(); the arena alone holds the state. The fields are private: read them
 * through elsh_net_layer_info, elsh_net_layer_arrays and the other accessors below. */
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

/* A float network. Declared here so that a caller can allocate it; its fields are private. */
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

/* Every function below returns ELSH_ERR_NULL for a NULL pointer argument and ELSH_ERR_STATE
 * for a network that elsh_net_init never initialized (a zeroed elsh_net); the void ones then
 * do nothing. */

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

/* Forward pass for one input. label >= 0 only while training (forced into an LSH output
 * layer's active set). Fills net->probs. Returns the predicted class (>= 0) or an error. */
int elsh_net_forward(elsh_net *net, const float *x, int32_t label);

/* Predicted class of each of n rows; probs (n * n_classes) may be NULL. */
int elsh_predict(elsh_net *net, const float *x, int64_t n, int32_t *pred, float *probs);

/* ---------------------------------------------------------------- training */

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

/* Fisher-Yates shuffle of 0..n-1 into order using the training PRNG. */
int elsh_shuffle(elsh_net *net, int32_t *order, int64_t n); /* n <= INT32_MAX */

/* ---------------------------------------------------------------- threads (train_threads_f32.c)
 *
 * Training and prediction on several cores. The calling thread is one of the workers; the
 * others are pthreads started for the call and joined before it returns. Each worker has its
 * own scratch (the work memory below) and works against the network's one copy of the
 * parameters, optimizer state, hash functions and tables.
 *
 * ELSH_THREADS_ASYNC (lock-free, asynchronous; the seed's Hogwild without its lost updates):
 * the workers take the call's samples one at a time and train on each against the shared
 * parameters as they are. Every neuron (row) has one owner worker (blocks of 16 neurons dealt
 * round robin), which alone takes the optimizer steps of that row: a worker steps the rows
 * it owns and hands the deltas of the others to their owners through lock-free rings, and
 * each owner applies them a few samples later. Weights and biases, which every worker reads
 * while their owner writes them, are loaded and stored as relaxed atomics (no data race,
 * ThreadSanitizer-checked); the optimizer state only its owner touches. Guarantees: every
 * sample's step reaches every row it had active (no update is lost), in an order and with a
 * staleness (a sample's gradient misses the steps still waiting in the rings, typically about
 * 8 samples' worth) that depend on timing, so results vary from run to run. Table maintenance
 * falls due at the same sample counts as on one thread; there every worker applies what has
 * reached it and re-hashes the rows it owns (helping the others with theirs when done), and
 * the workers meet at a barrier for the moves. The last sample of another worker may reach
 * its rows only after that update (its rows are then re-hashed at the next one); when the
 * call returns, every step has been applied.
 * With threads == 1 it is elsh_train_batch itself, bit for bit.
 *
 * ELSH_THREADS_ASYNC_SHARED: the asynchronous mode's code path even on one thread (the
 * workers, ring, barriers and atomic layer passes that ELSH_THREADS_ASYNC takes from two
 * threads up; one worker applies each record at once): what sharing the parameters costs,
 * measured without a second core (tools/bench/bench_threads.py). Bit for bit the one-thread
 * result; without threads it is ELSH_THREADS_ASYNC.
 *
 * ELSH_THREADS_DETERMINISTIC: mini-batches of `batch` consecutive samples of the call. Every
 * sample of a batch is trained (forward, loss, backward deltas) against the same snapshot of
 * the parameters, the batch's samples split among the workers; then the optimizer steps are
 * applied in sample order, each worker stepping its own range of neurons. Each parameter thus
 * takes the same per-sample Adagrad + momentum steps in the same order whatever the number of
 * threads or their timing: the result is bit-identical for a given seed and batch size, and
 * even independent of the thread count. It is not the one-thread optimizer: a sample's
 * gradient is computed up to batch - 1 steps late. Table maintenance due inside a batch is
 * done once at its end.
 *
 * Built without threads (ELSH_THREADS 0: bare metal), every call runs on the calling thread,
 * with the same results (asynchronous mode is then elsh_train_batch). */

#define ELSH_MAX_THREADS 64
#define ELSH_MAX_BATCH 65536

typedef enum {
    ELSH_THREADS_ASYNC = 0,
    ELSH_THREADS_DETERMINISTIC = 1,
    ELSH_THREADS_ASYNC_SHARED = 2
} elsh_thread_mode;

typedef struct {
    int32_t threads;         /* workers, 1..ELSH_MAX_THREADS */
    int32_t mode;            /* elsh_thread_mode (training; prediction ignores it) */
    int32_t batch;           /* deterministic mode: samples per mini-batch, 1..ELSH_MAX_BATCH */
} elsh_thread_config;

/* threads 1, asynchronous, batch 16 */
void elsh_thread_config_default(elsh_thread_config *th);

/* Workers a call can start: ELSH_MAX_THREADS, or 1 when built without threads. */
int32_t elsh_threads_available(void);

/* Bytes of work memory (64-byte aligned) a threaded call on this network needs. */
int elsh_threads_plan(const elsh_net *net, const elsh_thread_config *th, size_t *work_bytes);

/* elsh_train_batch on th->threads workers (see above); `work` is elsh_threads_plan() bytes,
 * 64-byte aligned, owned by the caller and free again when the call returns. The network's
 * op counters get the workers' totals. */
int elsh_train_batch_threads(elsh_net *net, const elsh_train_config *tc, const elsh_thread_config *th,
                             void *work, size_t work_bytes, int32_t epoch, int64_t n_epoch,
                             const float *x, const int32_t *labels, const int32_t *order, int64_t n,
                             elsh_train_stats *stats);

/* elsh_predict with the rows split among th->threads workers: the same predictions and
 * probabilities, bit for bit. */
int elsh_predict_threads(elsh_net *net, const elsh_thread_config *th, void *work, size_t work_bytes,
                         const float *x, int64_t n, int32_t *pred, float *probs);

/* ---------------------------------------------------------------- reading a network */

/* One layer's settings. */
typedef struct {
    int32_t n_in, n_out;
    int32_t k;                   /* active neurons per input now (elsh_net_set_active) */
    int32_t use_lsh;             /* 0: dense, every neuron computed */
    int32_t is_output;
    elsh_hash_params hash;       /* LSH layers; all 0 for a dense layer */
    int32_t capacity;            /* LSH layers: slots per bucket */
    int32_t insert_policy;       /* LSH layers: elsh_insert_policy */
} elsh_layer_summary;

/* Where one layer's state lies in the arena: views, not copies (NULL where the layer has
 * none: a dense layer has no hash functions or tables). Shapes, row-major; L tables of K bits,
 * B = 2^K buckets (elsh_layer_summary.hash): */
typedef struct {
    float *w;                    /* [n_out][n_in] */
    float *b;                    /* [n_out] */
    float *w_g2, *w_vel;         /* [n_out][n_in] Adagrad accumulators, momentum */
    float *b_g2, *b_vel;         /* [n_out] */
    float *proj;                 /* SimHash [L][K][hash_dim] */
    uint16_t *tern_idx;          /* ternary [L][K][ternary_nnz] */
    int8_t *tern_sign;           /* ternary [L][K][ternary_nnz], +1 / -1 */
    uint16_t *dwta_idx;          /* DWTA [L][dwta_per_table][dwta_bin] */
    uint16_t *bucket_ids;        /* [L][B][capacity] */
    uint16_t *bucket_len;        /* [L][B] */
    uint16_t *neuron_bucket;     /* [n_out][L], ELSH_NO_BUCKET where not stored */
    uint16_t *pad_order;         /* [n_out] */
    float *center;               /* [hash_dim] */
    elsh_prng *rng;              /* the layer's PRNG (reservoir insertion) */
} elsh_layer_arrays;

/* ELSH_ERR_NULL for a NULL pointer, ELSH_ERR_STATE for a network never initialized (zeroed,
 * no arena) or a layer that does not exist. */
int elsh_net_layer_info(const elsh_net *net, int32_t layer, elsh_layer_summary *out);
int elsh_net_layer_arrays(elsh_net *net, int32_t layer, elsh_layer_arrays *out);

/* The ids of the neurons layer `layer` computed in the most recent forward pass, ascending,
 * and how many (*n_active). NULL (and *n_active 0) for a layer that does not exist. */
const int32_t *elsh_net_last_active(const elsh_net *net, int32_t layer, int32_t *n_active);

/* One phase of one layer's op counters (the total since elsh_net_reset_counters when
 * total != 0, else the most recent call); all 0 for a layer or phase that does not exist. */
elsh_ops elsh_net_layer_ops(const elsh_net *net, int32_t layer, int phase, int total);

/* Empty the tables of every LSH layer and insert every neuron again (after editing weights). */
int elsh_net_rebuild_tables(elsh_net *net);

#ifdef __cplusplus
}
#endif
#endif /* EDGE_LSH_TRAIN_H */
