/* train_threads_f32.c - training and prediction of the float network on several threads
 * (the modes are described in edge_lsh_train.h).
 *
 * Every call runs as a sequence of steps. The calling thread leads: it sets up a step, all
 * workers (the leader is worker 0) pass a barrier, each does its share, all pass a barrier,
 * and the leader alone does what follows the step (table maintenance, statistics, the next
 * step). Work a worker writes before a barrier is visible to every worker after it (the
 * barrier is a mutex and a condition variable), so the only accesses that two threads make
 * at once are: reads of parameters and tables (both modes), and in asynchronous mode the
 * relaxed atomic loads of weights and biases (layer_f32_shared.c) against their owner's
 * relaxed atomic stores (layer_f32_owned.c), and the rings' counters (acquire/release).
 *
 *   asynchronous:   a step is a run of samples up to the next sample count at which table
 *                   maintenance falls due; the workers take its samples one at a time from
 *                   a shared counter. Every row (neuron) of every layer has one owner, the
 *                   worker of its block of 16 rows (blocks dealt round robin); only the
 *                   owner steps a row and its optimizer state. Per sample a worker runs the
 *                   forward pass and the backward deltas against the shared parameters as
 *                   they are (nothing written), and publishes the sample's record (active
 *                   neurons, deltas, activations) in its ring; each worker applies, from
 *                   every ring, its own, the records' steps of the rows it owns once DRAIN_AT
 *                   records are waiting (row after row, a row's steps back to back), or
 *                   whenever it has to wait. No worker waits for another inside a step except
 *                   on a full ring. When a step's samples are all taken, each worker applies
 *                   what has been published so far and starts hashing its dirty rows, which
 *                   no longer change in this step; the others' last records (at most one
 *                   each) wait in the rings for the next step, except at the call's last
 *                   step, where every record is applied. Once a row's owner is done, any
 *                   worker may hash the row (hash_share). No update is lost (Hogwild's can
 *                   be); a sample's gradient is computed against parameters that miss the
 *                   steps still waiting in the rings (about DRAIN_AT samples' worth; at most
 *                   RING_SLOTS per worker), and a step may reach its row after the table
 *                   update it preceded (then the row is re-hashed at the next one), which
 *                   depends on timing: results vary from run to run.
 *   deterministic:  a step is a mini-batch. Phase 1: each worker takes the batch's samples
 *                   one at a time from a shared counter: forward, loss and backward deltas
 *                   against the parameters as they are (nothing is written), recorded per
 *                   sample. A barrier. Phase 2: each layer's neurons cut into T ranges of
 *                   about the same number of recorded steps (a hot neuron takes one for each
 *                   sample that has it active); worker w applies, row after row of its range,
 *                   each row's recorded steps in sample order. Which worker does what changes
 *                   nothing in the result.
 *   prediction:     one step; worker w classifies a contiguous range of the rows.
 *
 * Table maintenance happens between steps, with every worker stopped at a barrier, rather
 * than concurrently under per-bucket locks or atomics: selection then reads the tables with
 * plain loads (L bucket reads per sample and layer, with no lock to take), and the tables
 * come out exactly as one thread leaves them. Maintenance is no small share of the work
 * (re-hashing a dirty neuron reads its whole weight row: tools/bench/bench_threads.py measures
 * its share of a one-thread epoch), and whatever one thread does while the others wait limits
 * the speedup, so it is split too, inside the step it falls due in: every worker hashes the
 * dirty neurons it alone wrote into `codes` (deterministic: its range of ids, right after
 * stepping them; asynchronous: its own rows, then others' rows whose owner is done), then, after a
 * barrier, moves every dirty neuron in its range of tables (tables share no bucket; FIFO
 * layers: a reservoir layer draws from one generator, so the leader moves its neurons after
 * the step). The leader then clears
 * the dirty flags. New hash functions (rehash_every) are drawn and the tables rebuilt by the
 * leader alone. tools/bench/threads_split.c shows where the time goes, per worker and part. */
#include "internal.h"

#include "thread_barrier.h"

#include <string.h>
#if ELSH_THREADS
#include <sched.h>
#endif

/* PROFILE_MARK(w, PART): worker w ends a stretch of PART here. Nothing in the library; the
 * measuring tool tools/bench/threads_split.c compiles this file with its own definition, which
 * adds the time since the worker's previous mark to PART's total. */
#ifndef PROFILE_MARK
#define PROFILE_MARK(w, part) ((void)0)
#endif

void elsh_thread_config_default(elsh_thread_config *th)
{
    if (!th) return;
    th->threads = 1;
    th->mode = ELSH_THREADS_ASYNC;
    th->batch = 16;
}

int32_t elsh_threads_available(void) { return ELSH_THREADS ? ELSH_MAX_THREADS : 1; }

static int thread_config_ok(const elsh_thread_config *th)
{
    return th->threads >= 1 && th->threads <= ELSH_MAX_THREADS &&
           (th->mode == ELSH_THREADS_ASYNC || th->mode == ELSH_THREADS_DETERMINISTIC ||
            th->mode == ELSH_THREADS_ASYNC_SHARED) &&
           th->batch >= 1 && th->batch <= ELSH_MAX_BATCH;
}

/* Workers that will run: the request, or 1 without threads. */
static int32_t workers_for(const elsh_thread_config *th)
{
    return th->threads < elsh_threads_available() ? th->threads : elsh_threads_available();
}

/* ---------------------------------------------------------------- work memory */

enum { JOB_ASYNC, JOB_DETERMINISTIC, JOB_PREDICT };

/* What the workers of one call share. */
typedef struct {
    int kind;
    int32_t n_workers;
    elsh_net *net;
    elsh_net *workers;              /* [n_workers] views with their own scratch */
    elsh_train_stats *worker_stats; /* [n_workers] asynchronous mode */
    int32_t *worker_rc;             /* [n_workers] the first error of each worker's step, or 0 */
    /* the records of samples' training steps, one per slot (deterministic: per sample of the
     * batch; asynchronous: the rings' slots, slot k of worker p's ring at p * RING_SLOTS +
     * k % RING_SLOTS) */
    int32_t *rec_n[ELSH_MAX_LAYERS];      /* [slots] active neurons of the layer */
    int32_t *rec_active[ELSH_MAX_LAYERS]; /* [slots][active_capacity] */
    float *rec_act[ELSH_MAX_LAYERS];      /* [slots][active_capacity] */
    float *rec_delta[ELSH_MAX_LAYERS];    /* [slots][active_capacity] */
    /* deterministic mode, per sample of the batch */
    float *rec_loss;                /* [batch] */
    int32_t *rec_pred;              /* [batch] */
    int32_t widest;                 /* the most neurons of a layer */
    int32_t *touched;               /* [n_workers][widest] deterministic: steps of each row in the batch */
    int64_t *row_end;               /* [n_workers][widest] deterministic: where each row's steps end */
    uint64_t steps_capacity;        /* batch * the largest active_capacity */
    int64_t *row_steps;             /* [n_workers][steps_capacity] deterministic: steps by row */
    /* asynchronous mode: each worker's ring of sample records (in rec_*) */
    int64_t *ring_pos;                    /* [n_workers * RING_SLOTS] the sample's position in the call */
    int64_t *ring_tail;                   /* [n_workers * COUNTER_STRIDE] records worker p has published (atomic) */
    int64_t *ring_head;                   /* [n_workers * n_workers * COUNTER_STRIDE] records of p that c has applied (atomic) */
    int32_t *drain_slots;                 /* [n_workers][n_workers * RING_SLOTS] the slots a worker applies at once */
    int32_t producers_done;               /* workers past their last sample of the step (atomic) */
    int drain_all;                        /* this step ends with every record applied (see async_share) */
    int64_t *drained;                     /* [n_workers * COUNTER_STRIDE] worker p has applied every record of the step (atomic) */
    int64_t *hash_claim;                  /* [n_workers * COUNTER_STRIDE] how many of p's hashing blocks are claimed (atomic) */
    /* training: the new codes of the dirty neurons of each LSH layer, hashed by all workers */
    uint32_t *codes[ELSH_MAX_LAYERS];     /* [n_out][tables] */
    /* the call */
    const elsh_train_config *tc;
    int32_t epoch;
    const float *x;
    const int32_t *labels;
    const int32_t *order;
    int32_t *pred;
    float *probs;
    /* the current step, set by the leader */
    int64_t start, count;
    int64_t next_sample;            /* deterministic phase 1: the next sample to take (atomic) */
    int hash_after;                 /* this step's training is followed by hashing the dirty neurons */
    int stop;
    barrier bar;
} job;

/* Asynchronous mode: records a worker's ring holds (a worker waits, applying the records of
 * the others, when the slowest of them is this far behind), and the spacing of the ring
 * counters, 128 bytes: each on its own cache line (and line pair, which x86 prefetches
 * together), written by one worker only. */
#ifndef RING_SLOTS
#define RING_SLOTS 16
#endif
#define COUNTER_STRIDE 16
#ifndef DRAIN_AT
#define DRAIN_AT 8
#endif

/* Walk the work memory (plan when base is NULL): the workers, their results and, in
 * deterministic mode, the per-sample records of one batch. */
static void carve_work(job *jb, const elsh_net *net, const elsh_thread_config *th, elsh_arena *a)
{
    int32_t T = workers_for(th);
    jb->workers = elsh_arena_take(a, (uint64_t)T, sizeof(elsh_net));
    for (int32_t w = 0; w < T; w++) {
        elsh_net planning;
        elsh_net_carve_worker(net, jb->workers ? &jb->workers[w] : &planning, a);
    }
    jb->worker_stats = elsh_arena_take(a, (uint64_t)T, sizeof(elsh_train_stats));
    jb->worker_rc = elsh_arena_take(a, (uint64_t)T, sizeof(int32_t));
    for (int32_t l = 0; l < net->n_layers; l++)
        if (net->layers[l].use_lsh)
            jb->codes[l] = elsh_arena_take(a, (uint64_t)net->layers[l].n_out * (uint64_t)net->layers[l].hash.tables, 4);
    jb->widest = 0;
    for (int32_t l = 0; l < net->n_layers; l++)
        if (net->layers[l].n_out > jb->widest) jb->widest = net->layers[l].n_out;
    jb->touched = elsh_arena_take(a, (uint64_t)T * (uint64_t)jb->widest, 4);
    jb->row_end = elsh_arena_take(a, (uint64_t)T * (uint64_t)jb->widest, 8);
    /* the records of one step (deterministic: a batch; asynchronous: every ring's slots) */
    uint64_t B = th->mode == ELSH_THREADS_DETERMINISTIC ? (uint64_t)th->batch : (uint64_t)T * RING_SLOTS;
    jb->steps_capacity = 0;
    for (int32_t l = 0; l < net->n_layers; l++)
        if (B * (uint64_t)net->layers[l].active_capacity > jb->steps_capacity)
            jb->steps_capacity = B * (uint64_t)net->layers[l].active_capacity;
    jb->row_steps = elsh_arena_take(a, (uint64_t)T * jb->steps_capacity, 8);
    for (int32_t l = 0; l < net->n_layers; l++) {
        uint64_t cap = (uint64_t)net->layers[l].active_capacity;
        jb->rec_n[l] = elsh_arena_take(a, B, 4);
        jb->rec_active[l] = elsh_arena_take(a, B * cap, 4);
        jb->rec_act[l] = elsh_arena_take(a, B * cap, 4);
        jb->rec_delta[l] = elsh_arena_take(a, B * cap, 4);
    }
    if (th->mode == ELSH_THREADS_DETERMINISTIC) {
        jb->rec_loss = elsh_arena_take(a, B, 4);
        jb->rec_pred = elsh_arena_take(a, B, 4);
        return;
    }
    jb->drain_slots = elsh_arena_take(a, (uint64_t)T * B, 4);
    jb->ring_pos = elsh_arena_take(a, B, 8);
    jb->ring_tail = elsh_arena_take(a, (uint64_t)T * COUNTER_STRIDE, 8);
    jb->ring_head = elsh_arena_take(a, (uint64_t)T * (uint64_t)T * COUNTER_STRIDE, 8);
    jb->drained = elsh_arena_take(a, (uint64_t)T * COUNTER_STRIDE, 8);
    jb->hash_claim = elsh_arena_take(a, (uint64_t)T * COUNTER_STRIDE, 8);
}

int elsh_threads_plan(const elsh_net *net, const elsh_thread_config *th, size_t *work_bytes)
{
    if (!net || !th || !work_bytes) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE;
    if (!thread_config_ok(th)) return ELSH_ERR_CONFIG;
    job jb;
    elsh_arena a;
    elsh_arena_start(&a, NULL, ELSH_ARENA_LIMIT);
    carve_work(&jb, net, th, &a);
    elsh_arena_take(&a, 0, 1);
    return elsh_arena_size(&a, work_bytes) == 0 ? ELSH_OK : ELSH_ERR_CONFIG;
}

/* Set up jb over the caller's work memory. */
static int start_job(job *jb, elsh_net *net, const elsh_thread_config *th, void *work, size_t work_bytes)
{
    if (((uintptr_t)work & (ELSH_ARENA_ALIGN - 1u)) != 0) return ELSH_ERR_ARENA;
    size_t need;
    int rc = elsh_threads_plan(net, th, &need);
    if (rc != ELSH_OK) return rc;
    if (work_bytes < need) return ELSH_ERR_ARENA;
    memset(jb, 0, sizeof(*jb));
    elsh_arena a;
    elsh_arena_start(&a, work, need);
    carve_work(jb, net, th, &a);
    if (a.overflow) return ELSH_ERR_ARENA; /* cannot happen: planned */
    jb->net = net;
    jb->n_workers = workers_for(th);
    memset(jb->worker_stats, 0, (size_t)jb->n_workers * sizeof(elsh_train_stats));
    memset(jb->worker_rc, 0, (size_t)jb->n_workers * sizeof(int32_t));
    if (jb->ring_tail) {
        memset(jb->ring_tail, 0, (size_t)jb->n_workers * COUNTER_STRIDE * sizeof(int64_t));
        memset(jb->ring_head, 0, (size_t)jb->n_workers * (size_t)jb->n_workers * COUNTER_STRIDE * sizeof(int64_t));
    }
    return ELSH_OK;
}

/* The workers' op counts added to the network's totals. */
static void collect_counters(job *jb)
{
    for (int32_t w = 0; w < jb->n_workers; w++)
        for (int32_t l = 0; l < jb->net->n_layers; l++)
            for (int p = 0; p < ELSH_PHASE_COUNT; p++)
                ops_accumulate(&jb->net->layers[l].ops.total[p], &jb->workers[w].layers[l].ops.total[p]);
}

/* ---------------------------------------------------------------- the workers' shares */

static const float *row_of(const job *jb, int64_t pos, int32_t *label)
{
    int64_t row = jb->order ? jb->order[pos] : pos;
    if (label) *label = jb->labels[row];
    return jb->x + (size_t)row * (size_t)jb->net->cfg.n_in;
}

static int64_t take_sample(job *jb);

/* Worker view me's last training step (active neurons, activations and deltas of every
 * layer) into record slot `slot`. */
static void keep_record(job *jb, const elsh_net *me, size_t slot)
{
    for (int32_t l = 0; l < me->n_layers; l++) {
        const elsh_layer *L = &me->layers[l];
        size_t at = slot * (size_t)L->active_capacity, n = (size_t)L->n_active;
        jb->rec_n[l][slot] = L->n_active;
        memcpy(jb->rec_active[l] + at, L->active, n * sizeof(int32_t));
        memcpy(jb->rec_act[l] + at, L->act, n * sizeof(float));
        memcpy(jb->rec_delta[l] + at, L->delta, n * sizeof(float));
    }
}

/* The input of layer l in record slot `slot` of the sample at position `pos` of the call: its
 * values (returned), their positions (*in_idx, NULL: dense) and count (*in_n). */
static const float *record_input(const job *jb, int32_t l, size_t slot, int64_t pos, const int32_t **in_idx,
                                 int32_t *in_n)
{
    const elsh_net *net = jb->net;
    if (l == 0) {
        *in_idx = NULL;
        *in_n = net->cfg.n_in;
        return row_of(jb, pos, NULL);
    }
    size_t in_at = slot * (size_t)net->layers[l - 1].active_capacity;
    *in_idx = net->layers[l - 1].use_lsh ? jb->rec_active[l - 1] + in_at : NULL;
    *in_n = jb->rec_n[l - 1][slot];
    return jb->rec_act[l - 1] + in_at;
}

/* Asynchronous mode: rows are owned in blocks of OWNED_BLOCK consecutive rows, block b by
 * worker b % n_workers: hot rows (a few neurons are active in most samples) spread over the
 * workers, and so do the optimizer steps and the re-hashing, where halves of the ids would
 * leave one worker most of both. 16 floats of a bias vector (and of its Adagrad and momentum
 * state) fill one cache line, so no two workers write the same line of them. */
#define OWNED_BLOCK 16

#if ELSH_THREADS
static int32_t owner_of(const job *jb, int32_t j) { return (j / OWNED_BLOCK) % jb->n_workers; }

/* ---- asynchronous mode: rows owned, the others' deltas passed through rings
 *
 * Worker w owns the rows [n_out * w / T, n_out * (w + 1) / T) of every layer: it alone steps
 * them (and their Adagrad and momentum state), and it alone re-hashes them. For each sample it
 * takes, a worker runs the forward pass and the backward deltas against the shared parameters
 * as they are (relaxed atomic loads: owners write meanwhile), steps the active rows it owns at
 * once, and publishes the sample's record (active neurons, deltas, activations) in its ring;
 * every other worker applies the record's steps of its own rows when it next looks at the
 * rings (after each of its samples, or while it waits for a free slot). Nobody waits for
 * anybody inside a step except on a full ring. No update is lost: every row takes every step
 * of every sample that had it active, computed against parameters up to a few samples old
 * (the ring's lag), in an order that depends on timing. */

static int64_t counter_load(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void counter_store(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static int64_t *tail_of(job *jb, int32_t p) { return jb->ring_tail + (size_t)p * COUNTER_STRIDE; }

static int64_t *head_of(job *jb, int32_t p, int32_t c)
{
    return jb->ring_head + ((size_t)p * (size_t)jb->n_workers + (size_t)c) * COUNTER_STRIDE;
}

/* Worker w's steps of its rows of layer l for the n records in ring slots slots[0..n), row
 * after row (a row's steps in the order of the slots): a hot row's steps back to back, so its
 * lines are written by this core, and read by the others, once per drain rather than once
 * per sample. */
static void apply_slots(job *jb, int32_t w, int32_t l, const int32_t *slots, int32_t n, float mom)
{
    elsh_net *me = &jb->workers[w];
    elsh_layer *L = &me->layers[l];
    const elsh_train_config *tc = jb->tc;
    size_t cap = (size_t)L->active_capacity;
    int32_t *touched = jb->touched + (size_t)w * (size_t)jb->widest;
    int64_t *end = jb->row_end + (size_t)w * (size_t)jb->widest;
    int64_t *steps = jb->row_steps + (size_t)w * jb->steps_capacity;
    memset(touched, 0, (size_t)L->n_out * sizeof(int32_t)); /* rows of other workers stay 0 */
    for (int32_t r = 0; r < n; r++) {
        const int32_t *active = jb->rec_active[l] + (size_t)slots[r] * cap;
        for (int32_t a = 0; a < jb->rec_n[l][slots[r]]; a++)
            if (owner_of(jb, active[a]) == w) touched[active[a]]++;
    }
    int64_t at = 0;
    for (int32_t j = 0; j < L->n_out; j++) {
        end[j] = at;
        at += touched[j];
    }
    for (int32_t r = 0; r < n; r++) {
        const int32_t *active = jb->rec_active[l] + (size_t)slots[r] * cap;
        for (int32_t a = 0; a < jb->rec_n[l][slots[r]]; a++)
            if (owner_of(jb, active[a]) == w) steps[end[active[a]]++] = (int64_t)r * (int64_t)cap + a;
    }
    for (int32_t j = 0; j < L->n_out; j++)
        for (int64_t e = end[j] - touched[j]; e < end[j]; e++) {
            size_t slot = (size_t)slots[steps[e] / (int64_t)cap], a = (size_t)(steps[e] % (int64_t)cap);
            const int32_t *in_idx;
            int32_t in_n;
            const float *in_val = record_input(jb, l, slot, jb->ring_pos[slot], &in_idx, &in_n);
            elsh_layer_update_rows_f32_owned(L, jb->rec_active[l] + slot * cap + a, jb->rec_delta[l] + slot * cap + a,
                                             1, in_val, in_idx, in_n, j, j + 1, tc->lr, mom, tc->l2, tc->adagrad_eps);
        }
}

/* Worker w applies every record published (its own among them) that it has not applied yet,
 * when there are at least `at_least` of them; returns how many it applied. */
static int64_t drain_rings(job *jb, int32_t w, float mom, int64_t at_least)
{
    int32_t T = jb->n_workers, n = 0;
    int32_t *slots = jb->drain_slots + (size_t)w * (size_t)T * RING_SLOTS;
    int64_t to[ELSH_MAX_THREADS];
    for (int32_t p = 0; p < T; p++) {
        int64_t from = __atomic_load_n(head_of(jb, p, w), __ATOMIC_RELAXED);
        to[p] = counter_load(tail_of(jb, p));
        for (int64_t k = from; k < to[p]; k++) slots[n++] = (int32_t)((size_t)p * RING_SLOTS + (size_t)(k % RING_SLOTS));
    }
    if (n == 0 || n < at_least) return 0;
    for (int32_t l = 0; l < jb->workers[w].n_layers; l++) apply_slots(jb, w, l, slots, n, mom);
    for (int32_t p = 0; p < T; p++) counter_store(head_of(jb, p, w), to[p]); /* the slots free again */
    return n;
}

/* Spin politely: a pause, and every BARRIER_SPINS rounds the core given back (a busy machine
 * may have descheduled the worker this one waits for). */
static void wait_a_little(int64_t *spins)
{
    if (++*spins % BARRIER_SPINS == 0)
        sched_yield();
    else
        cpu_relax();
}

/* Worker w's record of the sample at position `pos` of the call (the scratch of its last
 * training step), published in its ring once a slot is free. */
static void publish_record(job *jb, int32_t w, int64_t pos, float mom)
{
    int64_t *tail = tail_of(jb, w);
    int64_t t = __atomic_load_n(tail, __ATOMIC_RELAXED), spins = 0;
    for (;;) { /* free when every worker (this one too) has applied record t - RING_SLOTS */
        int64_t oldest = t;
        for (int32_t c = 0; c < jb->n_workers; c++) {
            int64_t h = counter_load(head_of(jb, w, c));
            oldest = h < oldest ? h : oldest;
        }
        if (t - oldest < RING_SLOTS) break;
        if (drain_rings(jb, w, mom, 1) == 0) wait_a_little(&spins);
    }
    size_t slot = (size_t)w * RING_SLOTS + (size_t)(t % RING_SLOTS);
    jb->ring_pos[slot] = pos;
    keep_record(jb, &jb->workers[w], slot);
    counter_store(tail, t + 1);
}

#endif

static void async_share(job *jb, int32_t w)
{
#if ELSH_THREADS
    /* passes on the stack: no static data in the kernel (see elsh_train_sample); the backward
     * pass only computes the deltas, the steps come after */
    elsh_layer_passes shared_passes;
    shared_passes.forward = elsh_layer_forward_f32_shared;
    shared_passes.backward = elsh_layer_backprop_f32_shared;
    elsh_net *me = &jb->workers[w];
    float mom = elsh_momentum_at(jb->tc, jb->epoch);
    /* the statistics summed here and stored once: the workers' entries of worker_stats share a
     * cache line, which a store per sample from each worker would pass back and forth */
    elsh_train_stats st = jb->worker_stats[w];
    int rc = 0;
    for (int64_t s = take_sample(jb); s < jb->count; s = take_sample(jb)) {
        int32_t label;
        const float *x = row_of(jb, jb->start + s, &label);
        float loss = 0.0f;
        int pred = elsh_train_sample_with(me, jb->tc, jb->epoch, x, label, &loss, &shared_passes);
        if (pred < 0) { /* the call fails; the others take no more samples either */
            rc = pred;
            __atomic_store_n(&jb->next_sample, jb->count, __ATOMIC_RELAXED);
            break;
        }
        publish_record(jb, w, jb->start + s, mom);
        drain_rings(jb, w, mom, jb->n_workers > 1 ? DRAIN_AT : 1);
        st.loss_sum += loss;
        st.correct += pred == label;
        st.samples++;
    }
    jb->worker_stats[w] = st;
    if (rc < 0) jb->worker_rc[w] = rc;
    if (!jb->drain_all) {
        /* A step that ends in a table update: what has been published so far, and no waiting.
         * Every sample of the step is taken, so each other worker publishes at most one more
         * record (the sample it holds); its steps of this worker's rows wait in the ring for
         * the next step, and the rows they touch are re-hashed at the next update. Meanwhile
         * this worker, whose rows no longer change in this step, hashes them (hash_share). */
        drain_rings(jb, w, mom, 1);
        return;
    }
    /* the call's last step (or one before new hash functions): the others' last records too,
     * every worker having published all of its records once producers_done reaches n_workers */
    __atomic_add_fetch(&jb->producers_done, 1, __ATOMIC_ACQ_REL);
    int64_t spins = 0;
    while (__atomic_load_n(&jb->producers_done, __ATOMIC_ACQUIRE) < jb->n_workers)
        if (drain_rings(jb, w, mom, 1) == 0) wait_a_little(&spins);
    drain_rings(jb, w, mom, 1);
#else
    (void)jb, (void)w; /* never called: one worker trains with elsh_train_batch */
#endif
}

/* The next sample of the batch that no worker has taken yet (>= count: none left). */
static int64_t take_sample(job *jb)
{
#if ELSH_THREADS
    return __atomic_fetch_add(&jb->next_sample, 1, __ATOMIC_RELAXED);
#else
    return jb->next_sample++;
#endif
}

/* Phase 1: samples of the batch against the snapshot, recorded. Each worker takes the next
 * sample nobody has taken yet, so a worker the machine slows down takes fewer; which worker
 * records a sample changes nothing in the record (every worker's scratch is rewritten by
 * each sample, and the parameters are only read). */
static void record_share(job *jb, int32_t w)
{
    elsh_layer_passes snapshot_passes;
    snapshot_passes.forward = elsh_layer_forward_f32;
    snapshot_passes.backward = elsh_layer_backprop_f32;
    elsh_net *me = &jb->workers[w];
    for (int64_t s = take_sample(jb); s < jb->count; s = take_sample(jb)) {
        int32_t label;
        const float *x = row_of(jb, jb->start + s, &label);
        float loss = 0.0f;
        int pred = elsh_train_sample_with(me, jb->tc, jb->epoch, x, label, &loss, &snapshot_passes);
        if (pred < 0) {
            jb->worker_rc[w] = pred;
            return;
        }
        jb->rec_loss[s] = loss;
        jb->rec_pred[s] = pred;
        keep_record(jb, me, (size_t)s);
    }
}

/* Worker w's rows [*lo, *hi) of layer l in phase 2: the layer's rows cut into n_workers
 * ranges of about the same number of optimizer steps in this batch (hot rows take a step
 * for every sample that has them active). Every worker cuts the same way from the same
 * records, so the ranges fit together without a word between the workers. */
static void rows_of(job *jb, int32_t w, int32_t l, int32_t *lo, int32_t *hi)
{
    int32_t n_out = jb->net->layers[l].n_out, cap = jb->net->layers[l].active_capacity;
    int32_t T = jb->n_workers;
    int32_t *touched = jb->touched + (size_t)w * (size_t)jb->widest;
    memset(touched, 0, (size_t)n_out * sizeof(int32_t));
    int64_t total = 0;
    for (int64_t s = 0; s < jb->count; s++) {
        const int32_t *active = jb->rec_active[l] + (size_t)s * (size_t)cap;
        int32_t n = jb->rec_n[l][s];
        for (int32_t a = 0; a < n; a++) touched[active[a]]++;
        total += n;
    }
    /* cut k (0 < k < T): the first row j with (steps of rows below j) * T >= total * k */
    int64_t below = 0;
    *lo = w == 0 ? 0 : -1;
    *hi = w == T - 1 ? n_out : -1;
    for (int32_t j = 0; j < n_out && (*lo < 0 || *hi < 0); j++) {
        if (*lo < 0 && below * T >= total * w) *lo = j;
        if (below * T >= total * (w + 1)) *hi = j;
        below += touched[j];
    }
    if (*lo < 0) *lo = n_out;
    if (*hi < 0) *hi = n_out;
}

/* Phase 2 on layer l: every recorded step of the rows [lo, hi), row after row, each row's
 * steps in sample order. A row's steps read and write only that row's parameters and the
 * records, so taking the rows one at a time gives the bits of taking the samples one at a
 * time; but a hot row (active in most samples of the batch) stays in the core's cache for
 * all its steps instead of being fetched once per sample. touched[] holds the steps per row
 * (rows_of). */
static void apply_rows(job *jb, int32_t w, int32_t l, int32_t lo, int32_t hi, float mom)
{
    elsh_net *me = &jb->workers[w];
    elsh_layer *L = &me->layers[l];
    const elsh_train_config *tc = jb->tc;
    size_t cap = (size_t)L->active_capacity;
    const int32_t *touched = jb->touched + (size_t)w * (size_t)jb->widest;
    int64_t *end = jb->row_end + (size_t)w * (size_t)jb->widest;
    int64_t *steps = jb->row_steps + (size_t)w * jb->steps_capacity;
    int64_t at = 0;
    for (int32_t j = lo; j < hi; j++) { /* where row j's steps go; end[j] moves past them */
        end[j] = at;
        at += touched[j];
    }
    for (int64_t s = 0; s < jb->count; s++) {
        const int32_t *active = jb->rec_active[l] + (size_t)s * cap;
        for (int32_t a = 0; a < jb->rec_n[l][s]; a++)
            if (active[a] >= lo && active[a] < hi) steps[end[active[a]]++] = s * (int64_t)cap + a;
    }
    for (int32_t j = lo; j < hi; j++)
        for (int64_t e = end[j] - touched[j]; e < end[j]; e++) {
            int64_t s = steps[e] / (int64_t)cap;
            const int32_t *in_idx;
            int32_t in_n;
            const float *in_val = record_input(jb, l, (size_t)s, jb->start + s, &in_idx, &in_n);
            elsh_layer_update_rows_f32(L, jb->rec_active[l] + steps[e], jb->rec_delta[l] + steps[e], 1, in_val,
                                       in_idx, in_n, lo, hi, tc->lr, mom, tc->l2, tc->adagrad_eps);
        }
}

/* Phase 2: every recorded sample's optimizer step on this worker's rows, in sample order per
 * row; then, when the step ends with a table update, the new codes of this worker's dirty
 * rows (rows only it has written in this step, so no barrier is needed before). */
static void apply_share(job *jb, int32_t w)
{
    elsh_net *me = &jb->workers[w];
    float mom = elsh_momentum_at(jb->tc, jb->epoch);
    for (int32_t l = 0; l < me->n_layers; l++) {
        int32_t lo, hi;
        rows_of(jb, w, l, &lo, &hi);
        apply_rows(jb, w, l, lo, hi, mom);
        if (jb->hash_after && me->layers[l].use_lsh) elsh_tables_hash_dirty(&me->layers[l], lo, hi, jb->codes[l]);
    }
}

static void predict_share(job *jb, int32_t w)
{
    elsh_net *me = &jb->workers[w];
    size_t n_in = (size_t)me->cfg.n_in;
    size_t n_cls = (size_t)me->layers[me->n_layers - 1].n_out;
    for (int64_t s = jb->count * w / jb->n_workers; s < jb->count * (w + 1) / jb->n_workers; s++) {
        int rc = elsh_net_forward(me, jb->x + (size_t)s * n_in, -1);
        if (rc < 0) {
            jb->worker_rc[w] = rc;
            return;
        }
        jb->pred[s] = rc;
        if (jb->probs) {
            elsh_net_softmax(me);
            memcpy(jb->probs + (size_t)s * n_cls, me->probs, n_cls * sizeof(float));
        }
    }
}

static int first_error(const job *jb)
{
    for (int32_t w = 0; w < jb->n_workers; w++)
        if (jb->worker_rc[w] < 0) return jb->worker_rc[w];
    return ELSH_OK;
}

/* Asynchronous mode, at the end of a step with a table update: the codes of the dirty rows of
 * every LSH layer, hashed in blocks of OWNED_BLOCK rows. Owner p's blocks (owner_of) are final
 * once p has applied every record of the step and said so in drained[p] (release; its plain
 * writes of the rows and dirty flags are then visible to whoever reads drained[p] with acquire).
 * Each worker hashes its own blocks first and then helps the others with theirs, claiming
 * blocks one at a time from the owner's counter: the worker the step left with the longer tail
 * (more records to apply at its end, more dirty rows) no longer makes the others wait at the
 * barrier before the moves. Which worker hashes a block changes nothing in the codes. */
#if ELSH_THREADS
/* Owner p's k-th block: its layer and rows [*lo, *hi); 0 when p has fewer than k + 1. */
static int owner_block(const job *jb, int32_t p, int64_t k, int32_t *layer, int32_t *lo, int32_t *hi)
{
    int32_t T = jb->n_workers;
    for (int32_t l = 0; l < jb->net->n_layers; l++) {
        const elsh_layer *L = &jb->net->layers[l];
        if (!L->use_lsh) continue;
        int32_t blocks = (L->n_out + OWNED_BLOCK - 1) / OWNED_BLOCK;
        int64_t mine = blocks > p ? (blocks - p + T - 1) / T : 0;
        if (k < mine) {
            *layer = l;
            *lo = (int32_t)((p + k * T) * OWNED_BLOCK);
            *hi = *lo + OWNED_BLOCK < L->n_out ? *lo + OWNED_BLOCK : L->n_out;
            return 1;
        }
        k -= mine;
    }
    return 0;
}
#endif

static void hash_share(job *jb, int32_t w)
{
#if ELSH_THREADS
    elsh_net *me = &jb->workers[w];
    int32_t T = jb->n_workers;
    __atomic_store_n(jb->drained + (size_t)w * COUNTER_STRIDE, 1, __ATOMIC_RELEASE);
    for (int32_t i = 0; i < T; i++) {
        int32_t p = (w + i) % T, l, lo, hi;
        int64_t *claim = jb->hash_claim + (size_t)p * COUNTER_STRIDE, spins = 0;
        if (!owner_block(jb, p, __atomic_load_n(claim, __ATOMIC_RELAXED), &l, &lo, &hi)) continue;
        while (!__atomic_load_n(jb->drained + (size_t)p * COUNTER_STRIDE, __ATOMIC_ACQUIRE)) wait_a_little(&spins);
        while (owner_block(jb, p, __atomic_fetch_add(claim, 1, __ATOMIC_RELAXED), &l, &lo, &hi))
            elsh_tables_hash_dirty(&me->layers[l], lo, hi, jb->codes[l]);
    }
#else
    (void)jb, (void)w; /* never called: one worker trains with elsh_train_batch */
#endif
}

/* FIFO layers move their dirty neurons in parallel: worker w the tables of its range. */
static int moves_shared(const elsh_layer *L) { return L->use_lsh && L->insert_policy == ELSH_INSERT_FIFO; }

/* After every worker has hashed its dirty rows (a barrier between): this worker's share of
 * the moves. The leader clears the dirty flags after the step. */
static void move_share(job *jb, int32_t w)
{
    barrier_wait(&jb->bar);
    PROFILE_MARK(w, WAIT_MID);
    elsh_net *me = &jb->workers[w];
    for (int32_t l = 0; l < me->n_layers; l++) {
        elsh_layer *L = &me->layers[l];
        if (!moves_shared(L)) continue;
        int32_t t_lo = (int32_t)((int64_t)L->hash.tables * w / jb->n_workers);
        int32_t t_hi = (int32_t)((int64_t)L->hash.tables * (w + 1) / jb->n_workers);
        elsh_tables_move_from(L, jb->codes[l], t_lo, t_hi);
    }
    PROFILE_MARK(w, MOVE);
}

/* Worker w's share of the current step (between the barriers that start and end it). */
static void do_share(job *jb, int32_t w)
{
    switch (jb->kind) {
    case JOB_ASYNC:
        async_share(jb, w);
        PROFILE_MARK(w, ASYNC);
        if (jb->hash_after) { /* the dirty rows, each once its owner has applied every record */
            hash_share(jb, w);
            PROFILE_MARK(w, HASH);
            move_share(jb, w);
        }
        break;
    case JOB_PREDICT: predict_share(jb, w); break;
    default:
        record_share(jb, w);
        PROFILE_MARK(w, RECORD);
        barrier_wait(&jb->bar);
        PROFILE_MARK(w, WAIT_MID);
        if (first_error(jb) != ELSH_OK) break; /* a batch with a bad sample is not applied */
        apply_share(jb, w);
        PROFILE_MARK(w, APPLY); /* with the hashing after it, when due */
        if (jb->hash_after) move_share(jb, w);
        break;
    }
}

/* ---------------------------------------------------------------- running the steps */

#if ELSH_THREADS
typedef struct {
    job *jb;
    int32_t w;
} worker_arg;

static void *worker_main(void *arg)
{
    const worker_arg *wa = arg;
    for (;;) {
        barrier_wait(&wa->jb->bar);
        PROFILE_MARK(wa->w, WAIT_START);
        if (wa->jb->stop) break;
        do_share(wa->jb, wa->w);
        barrier_wait(&wa->jb->bar);
        PROFILE_MARK(wa->w, WAIT_END);
    }
    return NULL;
}
#endif

/* The leader's side of one step. */
static void run_step(job *jb)
{
    PROFILE_MARK(0, LEADER);
    barrier_wait(&jb->bar);
    PROFILE_MARK(0, WAIT_START);
    do_share(jb, 0);
    barrier_wait(&jb->bar);
    PROFILE_MARK(0, WAIT_END);
}

/* Samples of the next asynchronous step: up to and including the next one after which table
 * maintenance falls due, at most `left`. */
static int64_t async_step_length(const job *jb, int64_t n_epoch, int64_t left)
{
    int64_t seen = *jb->net->samples_seen;
    for (int64_t m = 1; m < left; m++)
        if (elsh_tables_due(jb->tc, jb->epoch, n_epoch, seen + m)) return m;
    return left;
}

/* The steps of a training call, led by this thread. */
static int lead_training(job *jb, int64_t n_epoch, int64_t n, int32_t batch, elsh_train_stats *stats)
{
    for (int64_t done = 0; done < n;) {
        jb->start = done;
        jb->count = jb->kind == JOB_ASYNC ? async_step_length(jb, n_epoch, n - done)
                                          : (n - done < batch ? n - done : batch);
        jb->next_sample = 0;
        jb->producers_done = 0;
        int due = 0;
        int64_t seen = *jb->net->samples_seen;
        for (int64_t m = 1; m <= jb->count; m++) { /* rehash (2) wins over an update (1) */
            int d = elsh_tables_due(jb->tc, jb->epoch, n_epoch, seen + m);
            due = d > due ? d : due;
        }
        jb->hash_after = due == 1; /* the workers hash their dirty rows at the end of the step */
        jb->drain_all = due != 1 || done + jb->count == n;
        if (jb->drained) { /* asynchronous mode: the hashing's counters, published by the barrier */
            memset(jb->drained, 0, (size_t)jb->n_workers * COUNTER_STRIDE * sizeof(int64_t));
            memset(jb->hash_claim, 0, (size_t)jb->n_workers * COUNTER_STRIDE * sizeof(int64_t));
        }
        run_step(jb);
        int rc = first_error(jb);
        if (rc != ELSH_OK) return rc;
        *jb->net->samples_seen = seen + jb->count;
        if (jb->kind == JOB_DETERMINISTIC && stats) {
            for (int64_t s = 0; s < jb->count; s++) {
                int32_t label;
                row_of(jb, jb->start + s, &label);
                stats->loss_sum += jb->rec_loss[s];
                stats->correct += jb->rec_pred[s] == label;
                stats->samples++;
            }
        }
        if (due == 1) {
            /* an update of the dirty neurons: every worker has hashed its share at the end of
             * the step; the moves here, in the one-thread order (the same tables as
             * elsh_tables_update) */
            for (int32_t l = 0; l < jb->net->n_layers; l++) {
                elsh_layer *L = &jb->net->layers[l];
                if (moves_shared(L))
                    memset(L->dirty, 0, (size_t)L->n_out); /* moved by the workers */
                else if (L->use_lsh)
                    elsh_tables_update_from(L, jb->codes[l]);
            }
            if (stats) stats->rebuilds++;
        } else if (due) {
            elsh_net_maintain(jb->net, due, stats);
        }
        done += jb->count;
    }
    return ELSH_OK;
}

/* Start the other workers, run `lead` on this one, stop and join them. */
static int run_workers(job *jb, int64_t n_epoch, int64_t n, int32_t batch, elsh_train_stats *stats)
{
    jb->bar.parties = jb->n_workers;
#if ELSH_THREADS
    pthread_t tid[ELSH_MAX_THREADS];
    worker_arg args[ELSH_MAX_THREADS];
    int32_t started = 1;
    if (jb->n_workers > 1) {
        pthread_mutex_init(&jb->bar.mutex, NULL);
        pthread_cond_init(&jb->bar.cond, NULL);
        for (; started < jb->n_workers; started++) {
            args[started] = (worker_arg){jb, started};
            if (pthread_create(&tid[started], NULL, worker_main, &args[started]) != 0) break;
        }
    }
    int rc = ELSH_ERR_STATE;
    if (started == jb->n_workers)
        rc = jb->kind == JOB_PREDICT ? (run_step(jb), first_error(jb)) : lead_training(jb, n_epoch, n, batch, stats);
    if (jb->n_workers > 1) {
        jb->stop = 1; /* the workers that started read it after this round */
        __atomic_store_n(&jb->bar.parties, started, __ATOMIC_RELEASE);
        barrier_wait(&jb->bar);
        for (int32_t w = 1; w < started; w++) pthread_join(tid[w], NULL);
        pthread_cond_destroy(&jb->bar.cond);
        pthread_mutex_destroy(&jb->bar.mutex);
    }
    return rc;
#else
    return jb->kind == JOB_PREDICT ? (run_step(jb), first_error(jb)) : lead_training(jb, n_epoch, n, batch, stats);
#endif
}

int elsh_train_batch_threads(elsh_net *net, const elsh_train_config *tc, const elsh_thread_config *th,
                             void *work, size_t work_bytes, int32_t epoch, int64_t n_epoch,
                             const float *x, const int32_t *labels, const int32_t *order, int64_t n,
                             elsh_train_stats *stats)
{
    if (!net || !tc || !th || !work || !x || !labels) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE;
    if (!thread_config_ok(th) || !elsh_train_config_ok(tc) || epoch < 0 || n < 0) return ELSH_ERR_CONFIG;
    if ((th->mode == ELSH_THREADS_ASYNC || (th->mode == ELSH_THREADS_ASYNC_SHARED && !ELSH_THREADS)) &&
        workers_for(th) == 1)
        return elsh_train_batch(net, tc, epoch, n_epoch, x, labels, order, n, stats);
    job jb;
    int rc = start_job(&jb, net, th, work, work_bytes);
    if (rc != ELSH_OK) return rc;
    jb.kind = th->mode == ELSH_THREADS_DETERMINISTIC ? JOB_DETERMINISTIC : JOB_ASYNC;
    jb.tc = tc;
    jb.epoch = epoch;
    jb.x = x;
    jb.labels = labels;
    jb.order = order;
    rc = run_workers(&jb, n_epoch, n, th->batch, stats);
    if (jb.kind == JOB_ASYNC && stats) {
        for (int32_t w = 0; w < jb.n_workers; w++) {
            stats->loss_sum += jb.worker_stats[w].loss_sum;
            stats->correct += jb.worker_stats[w].correct;
            stats->samples += jb.worker_stats[w].samples;
        }
    }
    collect_counters(&jb);
    return rc;
}

int elsh_predict_threads(elsh_net *net, const elsh_thread_config *th, void *work, size_t work_bytes,
                         const float *x, int64_t n, int32_t *pred, float *probs)
{
    if (!net || !th || !work || !x || !pred) return ELSH_ERR_NULL;
    if (!net->arena) return ELSH_ERR_STATE;
    if (!thread_config_ok(th) || n < 0) return ELSH_ERR_CONFIG;
    job jb;
    int rc = start_job(&jb, net, th, work, work_bytes);
    if (rc != ELSH_OK) return rc;
    jb.kind = JOB_PREDICT;
    jb.x = x;
    jb.pred = pred;
    jb.probs = probs;
    jb.start = 0;
    jb.count = n;
    rc = run_workers(&jb, 0, n, 1, NULL);
    collect_counters(&jb);
    return rc;
}
