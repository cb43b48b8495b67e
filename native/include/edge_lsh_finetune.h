/*
 * edge_lsh_finetune.h - fine-tuning an .elsh model on the device, in integer arithmetic only.
 *
 * A model opened and attached for inference (edge_lsh.h) becomes trainable: the trainable
 * layers (the last N, or all) get int16 MASTER weights, their int8 (or int16) inference
 * weights and int32 biases in RAM, optimizer state and mutable hash tables, all in one
 * caller-owned arena. Frozen layers keep running from the file (flash on a Pico). One call
 * trains on one sample (batch 1): the sparse forward pass of inference (the same selection),
 * an integer softmax cross-entropy gradient, backward through the active sets only, a step of
 * SGD (+ momentum) or Adagrad (+ momentum) on the active rows with stochastic rounding from
 * the kernel's seeded PRNG, the inference weights re-derived from the masters, and the neurons
 * whose rows changed moved to their new buckets. No float operation runs in a step (it runs on
 * an FPU-less Cortex-M0+); every value is specified in native/src/train_q.c and mirrored bit
 * for bit by the numpy oracle edge_lsh/oracle/qtrain.py.
 *
 *   size_t need, tneed;
 *   elsh_model_open(&net, file, n, &need);  elsh_model_attach(&net, arena, need);
 *   elsh_qtrain_config cfg;  elsh_qtrain_config_default(&cfg, &net);   // Adagrad, all layers
 *   elsh_qtrain_rates(&net, ELSH_QTRAIN_ADAGRAD, 0.01, &cfg);          // integer rates
 *   elsh_qtrain_plan(&net, &cfg, &tneed);                              // exact bytes
 *   elsh_qtrain_attach(&tr, &net, &cfg, tarena, tneed);
 *   for each sample: elsh_qnet_quantize_input(&net, x, xq); elsh_qtrain_step(&tr, xq, label);
 *   elsh_qnet_forward(&net, xq) now predicts with the trained weights and tables;
 *   elsh_qtrain_save(&tr, NULL, 0, &size); elsh_qtrain_save(&tr, buf, size, &size);
 *
 * Arena (elsh_qtrain_plan), per trainable layer of n_out x n_in: 2 bytes per weight (masters),
 * +1 (int8 inference copy), +4 with momentum (velocities), +4 with Adagrad (sums of squares),
 * the biases and their state, deltas, and for an LSH layer a RAM copy of the file's tables
 * (none when the tables were built at attach) and 1 bit per neuron and table (membership).
 *
 * Learning rates are integers (per layer: a multiplier and a right shift, for the weights and
 * for the biases; see train_q.c), so that no float is needed in the step; elsh_qtrain_rates
 * (train_q_rates.c, double arithmetic once at set-up) derives them from a float learning rate
 * and the layers' scales, for edge_lsh.finetune and devices alike.
 */
#ifndef EDGE_LSH_FINETUNE_H
#define EDGE_LSH_FINETUNE_H

#include "edge_lsh.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ELSH_QTRAIN_SGD 0
#define ELSH_QTRAIN_ADAGRAD 1

typedef struct {
    int32_t optimizer;       /* ELSH_QTRAIN_SGD or ELSH_QTRAIN_ADAGRAD */
    int32_t train_layers;    /* the last N layers train (1 = the output layer only); 0 = all */
    int32_t momentum_q15;    /* momentum * 2^15, 0..32767; 0 keeps no velocity state */
    /* per layer: weight step = g * lr_w >> lr_w_shift (Adagrad: of the normalized gradient,
     * with lr_w scaled per neuron by its weight scale, train_q.c step 4), in 2^-16 units of
     * the master weight; bias step likewise with lr_b, lr_b_shift */
    int32_t lr_w[ELSH_MAX_LAYERS];
    int32_t lr_w_shift[ELSH_MAX_LAYERS];
    int32_t lr_b[ELSH_MAX_LAYERS];
    int32_t lr_b_shift[ELSH_MAX_LAYERS];
    uint64_t seed;           /* the stochastic-rounding PRNG */
    int32_t resume;          /* 1: continue from the file's trained state (FORMAT.md 4.2): its
                              * masters, velocities, sums, PRNG state and step count; the
                              * optimizer, train_layers and momentum (0 or not) must match
                              * the file's, else ELSH_ERR_CONFIG; seed is then unused */
    /* Mini-batches (elsh_qtrain_steps; the arena grows by their records, elsh_qtrain_plan):
     * 0 (the default) trains one sample per step, as elsh_qtrain_step. B > 0 (<= ELSH_MAX_BATCH)
     * trains in mini-batches of B samples, deterministically on `threads` threads: every
     * sample's forward pass and deltas against the weights as they were before the batch, then
     * the updates in sample order, each parameter's stochastic rounding drawn from a stream
     * keyed by (batch, layer, neuron, sample, input), then the moves of the changed neurons
     * between buckets. The same bytes for any thread count (train_q_threads.c). */
    int32_t batch;
    int32_t threads;         /* 1..ELSH_MAX_THREADS workers for batch > 0 (0 counts as 1); one
                              * without pthreads (bare metal), with the same result */
} elsh_qtrain_config;

/* One trainable layer's state, read through elsh_qtrain_layer_state. NULL arrays are absent
 * (no velocity without momentum, no accumulators for SGD, no tables for a dense layer). */
typedef struct {
    int32_t trainable;
    int32_t n_in, n_out, weight_bits;
    int32_t frac_bits;          /* master = inference weight * 2^frac_bits (8 for int8, 0 for int16) */
    int32_t grad_exp;           /* this layer's delta is in units of 2^-grad_exp (see train_q.c) */
    const int16_t *master;      /* [n_out][n_in] */
    const void *weights;        /* [n_out][n_in] int8 or int16: what inference reads */
    const int32_t *bias;        /* [n_out] */
    const int32_t *vel_w;       /* [n_out][n_in] Q16 */
    const int32_t *vel_b;       /* [n_out] Q16 */
    const uint32_t *acc_w;      /* [n_out][n_in] Adagrad sums of squares */
    const uint32_t *acc_b;      /* [n_out] */
    const uint32_t *tab_offsets;/* [L 2^K + 1] the mutable CSR tables */
    const uint16_t *tab_ids;    /* [tab_offsets[L 2^K]] */
} elsh_qtrain_layer_view;

/* The trainer. Declared so that a caller can allocate it statically; fields are private. */
typedef struct {
    elsh_qnet *net;
    elsh_qtrain_config cfg;
    int32_t first;              /* the lowest trainable layer */
    elsh_prng rng;
    uint64_t steps;
    int32_t grad_exp[ELSH_MAX_LAYERS];
    int32_t max_shift[ELSH_MAX_LAYERS];
    int64_t scale_ref[ELSH_MAX_LAYERS];  /* the mean weight scale the rates stand for (train_q.c 4) */
    int16_t *master[ELSH_MAX_LAYERS];
    int8_t *w8[ELSH_MAX_LAYERS];
    int32_t *bias[ELSH_MAX_LAYERS];
    int32_t *vel_w[ELSH_MAX_LAYERS], *vel_b[ELSH_MAX_LAYERS];
    uint32_t *acc_w[ELSH_MAX_LAYERS], *acc_b[ELSH_MAX_LAYERS];
    int32_t *delta[ELSH_MAX_LAYERS];     /* [n_out] per active position */
    int64_t *back[ELSH_MAX_LAYERS];      /* [n_out] the sums backpropagated into layer l */
    uint32_t *offsets[ELSH_MAX_LAYERS];
    uint16_t *ids[ELSH_MAX_LAYERS];
    uint8_t *member[ELSH_MAX_LAYERS];    /* [L][ceil(n_out / 8)] neuron j stored in table t */
    const int32_t *in_idx[ELSH_MAX_LAYERS]; /* the last step's input positions (NULL: dense) */
    int32_t in_n[ELSH_MAX_LAYERS];
    int16_t *row_old;           /* [max n_in] */
    uint32_t *codes_old, *codes_new; /* [max L] */
    int32_t attached;
    struct elsh_qbatch *batch;  /* cfg.batch > 0: the work memory of mini-batches (train_q_threads.c) */
} elsh_qtrain;

/* Defaults: Adagrad, all layers, momentum 0, seed 0, and learning rates of zero (set them, or
 * call elsh_qtrain_rates). */
int elsh_qtrain_config_default(elsh_qtrain_config *cfg, const elsh_qnet *net);

/* Integer rates (lr_w, lr_w_shift, lr_b, lr_b_shift of every layer, and optimizer) for a float
 * learning rate, from the layers' scales (train_q_rates.c says how). Set-up, in double
 * arithmetic: the same integers on every platform and from edge_lsh.finetune. ELSH_ERR_CONFIG
 * for an lr that is not finite and > 0 or a rate too large for the step. */
int elsh_qtrain_rates(const elsh_qnet *net, int32_t optimizer, double lr, elsh_qtrain_config *cfg);

/* A learning-rate schedule: give an attached trainer new rates between steps (lr_w, lr_w_shift,
 * lr_b, lr_b_shift of `rates`; nothing else of it is read). The next steps are those of a
 * trainer attached with these rates to the state saved before the call (cfg.resume), and the
 * saved TRAIN_STATE records them. ELSH_ERR_CONFIG for a rate out of range (tr unchanged). */
int elsh_qtrain_set_rates(elsh_qtrain *tr, const elsh_qtrain_config *rates);

/* The exact arena bytes elsh_qtrain_attach needs for this model (opened) and configuration,
 * beyond the model's own arena. ELSH_ERR_CONFIG for a value out of range. */
int elsh_qtrain_plan(const elsh_qnet *net, const elsh_qtrain_config *cfg, size_t *arena_bytes);

/* Make the attached network trainable: masters from the file's weights, copies of the
 * trainable layers' biases (and tables stored in the file) in the arena, the network's
 * trainable layers re-pointed at them. The file itself is never written. */
int elsh_qtrain_attach(elsh_qtrain *tr, elsh_qnet *net, const elsh_qtrain_config *cfg, void *arena,
                       size_t arena_bytes);

/* One training step on a quantized input and its label. Returns the class the network
 * predicted for the input before the step (>= 0), or a negative status. */
int elsh_qtrain_step(elsh_qtrain *tr, const int8_t *xq, int32_t label);

/* n samples (rows of n_in int8 values in xq) and their labels, as consecutive mini-batches of
 * cfg.batch samples (the last one shorter when n is not a multiple) on cfg.threads threads; a
 * call with cfg.batch 0 is n elsh_qtrain_step calls. pred (NULL: not wanted) gets each sample's
 * prediction before its batch. A bad label fails the call before any step (ELSH_ERR_INPUT);
 * ELSH_ERR_STATE when the threads cannot be started (nothing trained). */
int elsh_qtrain_steps(elsh_qtrain *tr, const int8_t *xq, const int32_t *labels, int64_t n, int32_t *pred);

/* The state of layer `layer` (a frozen layer: trainable 0, NULL arrays). */
int elsh_qtrain_layer_state(const elsh_qtrain *tr, int32_t layer, elsh_qtrain_layer_view *out);

/* The PRNG state words and the number of steps taken. */
int elsh_qtrain_progress(const elsh_qtrain *tr, uint32_t prng_state[4], uint64_t *steps);

/* The trained model as a complete .elsh file: the original's sections laid out again with the
 * trainable layers' WEIGHTS, BIAS and stored TABLES replaced, then the trained state
 * (TRAIN_STATE and a LAYER_STATE per trainable layer, FORMAT.md 4.2: what resuming needs).
 * out NULL: only *bytes is set; ELSH_ERR_ARENA when out is given but capacity is too small.
 * Byte-identical on every platform for the same steps (train_q_save.c). */
int elsh_qtrain_save(const elsh_qtrain *tr, void *out, size_t capacity, size_t *bytes);
/* The same without the trained state: an inference model (predicts exactly the same). */
int elsh_qtrain_save_model(const elsh_qtrain *tr, void *out, size_t capacity, size_t *bytes);

/* The same file a part at a time, for a device whose RAM cannot hold it (the firmware saves
 * it straight into a flash slot): elsh_qtrain_save_crc gives the file's CRC (one pass over it,
 * nothing allocated), then elsh_qtrain_save_part writes file bytes [offset, offset + n) into
 * out; the parts together are the bytes of elsh_qtrain_save. ELSH_ERR_CONFIG for a range
 * beyond the file. */
int elsh_qtrain_save_crc(const elsh_qtrain *tr, uint32_t *crc);
int elsh_qtrain_save_part(const elsh_qtrain *tr, uint32_t crc, size_t offset, void *out, size_t n);

/* Op counters of training steps: elsh_qnet_ops(net, phase, total) with ELSH_PHASE_BACKWARD,
 * ELSH_PHASE_UPDATE and ELSH_PHASE_TABLES (and HASH, FORWARD of the step's forward pass). */

#ifdef __cplusplus
}
#endif
#endif /* EDGE_LSH_FINETUNE_H */
