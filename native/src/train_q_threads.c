/* train_q_threads.c - the fixed-point trainer in mini-batches, on one or several threads
 * (elsh_qtrain_steps with cfg.batch > 0; edge_lsh_finetune.h). The arithmetic of every value
 * is train_q.c's (this file calls its parts); what differs is when each step happens:
 *
 *   a batch = the next B samples of the call. key = the trainer's PRNG drawn twice (high word
 *             first), once per batch: the PRNG state still advances, and resuming works.
 *   phase 1   the batch split in T contiguous shards; each worker runs steps 1-3 (forward,
 *             softmax, deltas) of each sample of its shard against the weights and tables as
 *             they were before the batch, and records the sample's prediction and, per
 *             trainable layer, its input positions and values, active set and deltas.
 *   phase 2   (after a barrier) worker w applies step 4 of every recorded sample, in sample
 *             order, to the neurons of its range [n_out w / T, n_out (w + 1) / T) of each
 *             trainable layer. Each parameter's stochastic rounding draw is the high half of
 *             elsh_mix64(key ^ ctr), ctr = layer << 56 | neuron << 40 | sample << 20 | input
 *             (the bias: input = n_in), so no draw depends on which worker applies it or in
 *             which order the workers go. A worker that first changes an inference row of an
 *             LSH layer in this batch keeps the codes of the row before (old_codes), and at
 *             the end of its share hashes the rows it changed into new_codes.
 *   tables    (after a barrier) the leader moves each neuron whose inference row changed
 *             (layers from the output down, ids ascending, tables ascending) from its old
 *             bucket to the one of its new row (train_q.c step 5), in that fixed order.
 *
 * So the result is the same bytes for any T at a given B (the numpy oracle
 * edge_lsh/oracle/qtrain_batch.py computes it sample by sample), but not the bytes of B = 0
 * (one sample per step, the trainer's PRNG): a batch's samples see the weights of the batch's
 * start. Why not Hogwild here: the fixed-point step rounds with a PRNG stream; threads racing on
 * one stream (or on a row) would make every run differ, and the point of the fixed-point
 * trainer is that the host, the Pi and the microcontroller give the same bytes.
 *
 * Work memory: in the training arena (elsh_qtrain_plan counts it): the batch's records, the
 * change marks and codes, and for workers 1..T-1 a view of the network and of the trainer with
 * scratch of their own (worker 0, the calling thread, uses the trainer's). Views use the
 * compact hashing and counting (no attach_fast tables: the same outputs). Without ELSH_THREADS
 * (bare metal) T = 1. */
#include "internal.h"

#include "thread_barrier.h"

#include <string.h>

struct elsh_qbatch {
    int32_t n_workers, batch;
    elsh_qnet *nets;   /* [n_workers] views (nets[0] unused: worker 0 runs on tr->net) */
    elsh_qtrain *trs;  /* [n_workers] views (trs[0] unused) */
    int32_t *rec_pred; /* [batch] */
    /* per trainable layer l, per sample of the batch */
    int32_t *rec_n[ELSH_MAX_LAYERS];      /* [batch] active neurons */
    int32_t *rec_active[ELSH_MAX_LAYERS]; /* [batch][n_out] */
    int32_t *rec_delta[ELSH_MAX_LAYERS];  /* [batch][n_out] */
    int32_t *rec_in_n[ELSH_MAX_LAYERS];   /* [batch] input positions */
    int32_t *rec_in_idx[ELSH_MAX_LAYERS]; /* [batch][n_in] (layer > 0) */
    int16_t *rec_x[ELSH_MAX_LAYERS];      /* [batch][n_in] input minus zero point */
    /* per trainable LSH layer */
    uint8_t *changed[ELSH_MAX_LAYERS];    /* [n_out] 1: the inference row changed in this batch */
    uint32_t *old_codes[ELSH_MAX_LAYERS]; /* [n_out][tables] codes of the row before the batch */
    uint32_t *new_codes[ELSH_MAX_LAYERS]; /* [n_out][tables] codes of the row after it */
    /* the call */
    elsh_qtrain *tr;
    const int8_t *xq;
    const int32_t *labels;
    int32_t *pred;
    int64_t start, count;
    uint64_t key;
    int stop;
    barrier bar;
};

static int32_t workers_for(int32_t threads)
{
    int32_t t = threads < 1 ? 1 : threads;
    return ELSH_THREADS ? t : 1;
}

/* A worker's view of layer L: its own scratch of the forward pass. */
static void carve_layer_scratch(const elsh_qlayer *L, elsh_qlayer *V, elsh_arena *a)
{
    uint64_t n_out = (uint64_t)L->n_out;
    int16_t *x = elsh_arena_take(a, (uint64_t)L->n_in, 2);
    int32_t *active = elsh_arena_take(a, n_out, 4);
    int8_t *out = elsh_arena_take(a, n_out, 1);
    int32_t *logits = L->is_output ? elsh_arena_take(a, n_out, 4) : NULL;
    int32_t *hash_in = NULL, *hist = NULL;
    uint32_t *codes = NULL;
    uint16_t *counts = NULL, *touched = NULL;
    if (L->use_lsh) {
        hash_in = elsh_arena_take(a, (uint64_t)L->hash.hash_dim, 4);
        codes = elsh_arena_take(a, (uint64_t)L->hash.tables, 4);
        hist = elsh_arena_take(a, (uint64_t)L->hash.tables + 1u, 4);
        counts = elsh_arena_take(a, n_out, 2);
        touched = elsh_arena_take(a, n_out + 1u, 2);
    }
    if (!V) return;
    V->x = x;
    V->active = active;
    V->out = out;
    V->logits = logits;
    V->hash_in = hash_in;
    V->codes = codes;
    V->hist = hist;
    V->counts = counts;
    V->touched = touched;
}

void elsh_qtrain_layout_batch(elsh_qtrain *tr, const elsh_qnet *net, const elsh_qtrain_config *cfg, elsh_arena *a)
{
    int32_t T = workers_for(cfg->threads), first = elsh_first_trainable(net->n_layers, cfg->train_layers);
    uint64_t B = (uint64_t)cfg->batch;
    struct elsh_qbatch *jb = elsh_arena_take(a, 1, sizeof(struct elsh_qbatch));
    tr->batch = jb;
    elsh_qnet *nets = elsh_arena_take(a, (uint64_t)T, sizeof(elsh_qnet));
    elsh_qtrain *trs = elsh_arena_take(a, (uint64_t)T, sizeof(elsh_qtrain));
    if (jb) {
        jb->n_workers = T;
        jb->batch = cfg->batch;
        jb->nets = nets;
        jb->trs = trs;
    }
    int32_t max_in = 1, max_tables = 1;
    for (int32_t l = 0; l < net->n_layers; l++) {
        const elsh_qlayer *L = &net->layers[l];
        if (l >= first && L->use_lsh) {
            if (L->n_in > max_in) max_in = L->n_in;
            if (L->hash.tables > max_tables) max_tables = L->hash.tables;
        }
    }
    for (int32_t w = 1; w < T; w++) {
        for (int32_t l = 0; l < net->n_layers; l++)
            carve_layer_scratch(&net->layers[l], nets ? &nets[w].layers[l] : NULL, a);
        for (int32_t l = first; l < net->n_layers; l++) {
            int32_t *delta = elsh_arena_take(a, (uint64_t)net->layers[l].n_out, 4);
            int64_t *back = l > first ? elsh_arena_take(a, (uint64_t)net->layers[l - 1].n_out, 8) : NULL;
            if (trs) trs[w].delta[l] = delta;
            if (trs && l > first) trs[w].back[l - 1] = back;
        }
        int16_t *row_old = elsh_arena_take(a, (uint64_t)max_in, 2);
        if (trs) trs[w].row_old = row_old;
    }
    int32_t *rec_pred = elsh_arena_take(a, B, 4);
    if (jb) jb->rec_pred = rec_pred;
    for (int32_t l = first; l < net->n_layers; l++) {
        const elsh_qlayer *L = &net->layers[l];
        uint64_t n_out = (uint64_t)L->n_out, n_in = (uint64_t)L->n_in;
        int32_t *rec_n = elsh_arena_take(a, B, 4);
        int32_t *rec_active = elsh_arena_take(a, B * n_out, 4);
        int32_t *rec_delta = elsh_arena_take(a, B * n_out, 4);
        int32_t *rec_in_n = elsh_arena_take(a, B, 4);
        int32_t *rec_in_idx = l > 0 ? elsh_arena_take(a, B * n_in, 4) : NULL;
        int16_t *rec_x = elsh_arena_take(a, B * n_in, 2);
        uint8_t *changed = NULL;
        uint32_t *old_codes = NULL, *new_codes = NULL;
        if (L->use_lsh) {
            uint64_t nc = n_out * (uint64_t)L->hash.tables;
            changed = elsh_arena_take(a, n_out, 1);
            old_codes = elsh_arena_take(a, nc, 4);
            new_codes = elsh_arena_take(a, nc, 4);
        }
        if (!jb) continue;
        jb->rec_n[l] = rec_n;
        jb->rec_active[l] = rec_active;
        jb->rec_delta[l] = rec_delta;
        jb->rec_in_n[l] = rec_in_n;
        jb->rec_in_idx[l] = rec_in_idx;
        jb->rec_x[l] = rec_x;
        jb->changed[l] = changed;
        jb->old_codes[l] = old_codes;
        jb->new_codes[l] = new_codes;
    }
}

/* The workers' views: copies of the network and the trainer as they are now (active-set
 * sizes, dense flag), pointing at the same parameters and tables, with their own scratch and
 * op counters (zeroed). */
static void sync_views(struct elsh_qbatch *jb, elsh_qtrain *tr)
{
    const elsh_qnet *net = tr->net;
    for (int32_t w = 1; w < jb->n_workers; w++) {
        elsh_qnet *V = &jb->nets[w];
        elsh_qlayer keep[ELSH_MAX_LAYERS];
        memcpy(keep, V->layers, sizeof keep);
        *V = *net;
        for (int32_t l = 0; l < net->n_layers; l++) {
            elsh_qlayer *Lv = &V->layers[l];
            Lv->x = keep[l].x;
            Lv->active = keep[l].active;
            Lv->out = keep[l].out;
            Lv->logits = keep[l].logits;
            Lv->hash_in = keep[l].hash_in;
            Lv->codes = keep[l].codes;
            Lv->hist = keep[l].hist;
            Lv->counts = keep[l].counts;
            Lv->touched = keep[l].touched;
            Lv->bitmaps = NULL; /* attach_fast's tables and their scratch stay the leader's */
            Lv->planes = NULL;
            Lv->hash_t = NULL;
            Lv->hash_sums = NULL;
            Lv->row_sums = NULL;
        }
        counters_reset(&V->ops);
        elsh_qtrain *Tv = &jb->trs[w];
        int32_t *delta[ELSH_MAX_LAYERS];
        int64_t *back[ELSH_MAX_LAYERS];
        int16_t *row_old = Tv->row_old;
        memcpy(delta, Tv->delta, sizeof delta);
        memcpy(back, Tv->back, sizeof back);
        *Tv = *tr;
        memcpy(Tv->delta, delta, sizeof delta);
        memcpy(Tv->back, back, sizeof back);
        Tv->row_old = row_old;
        Tv->net = V;
        Tv->batch = NULL;
    }
}

static elsh_qtrain *view_of(struct elsh_qbatch *jb, int32_t w) { return w == 0 ? jb->tr : &jb->trs[w]; }

/* Phase 1: steps 1-3 of the shard's samples, recorded. */
static void record_share(struct elsh_qbatch *jb, int32_t w)
{
    elsh_qtrain *tv = view_of(jb, w);
    elsh_qnet *net = tv->net;
    int32_t n_in0 = net->n_in;
    for (int64_t s = jb->count * w / jb->n_workers; s < jb->count * (w + 1) / jb->n_workers; s++) {
        int64_t row = jb->start + s;
        for (int p = 0; p < ELSH_PHASE_COUNT; p++) counters_begin(&net->ops, p);
        jb->rec_pred[s] = elsh_qtrain_deltas(tv, jb->xq + (size_t)row * (size_t)n_in0, jb->labels[row]);
        for (int p = 0; p < ELSH_PHASE_COUNT; p++) counters_end(&net->ops, p);
        for (int32_t l = tv->first; l < net->n_layers; l++) {
            const elsh_qlayer *L = &net->layers[l];
            size_t na = (size_t)L->n_active, at = (size_t)s * (size_t)L->n_out;
            size_t ni = (size_t)tv->in_n[l], at_in = (size_t)s * (size_t)L->n_in;
            jb->rec_n[l][s] = L->n_active;
            memcpy(jb->rec_active[l] + at, L->active, na * 4u);
            memcpy(jb->rec_delta[l] + at, tv->delta[l], na * 4u);
            jb->rec_in_n[l][s] = tv->in_n[l];
            if (jb->rec_in_idx[l]) {
                if (tv->in_idx[l])
                    memcpy(jb->rec_in_idx[l] + at_in, tv->in_idx[l], ni * 4u);
                else
                    for (size_t p = 0; p < ni; p++) jb->rec_in_idx[l][at_in + p] = (int32_t)p;
            }
            memcpy(jb->rec_x[l] + at_in, L->x, ni * 2u);
        }
    }
}

/* Phase 2: step 4 of every recorded sample, in sample order, on this worker's neurons; then
 * the codes of the rows it changed. */
static void apply_share(struct elsh_qbatch *jb, int32_t w)
{
    elsh_qtrain *tv = view_of(jb, w);
    elsh_qnet *net = tv->net;
    elsh_ops uops, tops;
    ops_clear(&uops);
    ops_clear(&tops);
    elsh_qround rnd = {NULL, 0};
    for (int32_t l = net->n_layers - 1; l >= tv->first; l--) {
        elsh_qlayer *L = &net->layers[l];
        int32_t lo = (int32_t)((int64_t)L->n_out * w / jb->n_workers);
        int32_t hi = (int32_t)((int64_t)L->n_out * (w + 1) / jb->n_workers);
        for (int64_t s = 0; s < jb->count; s++) {
            size_t at = (size_t)s * (size_t)L->n_out, at_in = (size_t)s * (size_t)L->n_in;
            const int32_t *active = jb->rec_active[l] + at;
            int32_t n = jb->rec_in_n[l][s];
            const int32_t *idx = jb->rec_in_idx[l] && n < L->n_in ? jb->rec_in_idx[l] + at_in : NULL;
            for (int32_t q = 0; q < jb->rec_n[l][s]; q++) {
                int32_t j = active[q];
                if (j < lo) continue;
                if (j >= hi) break; /* ascending */
                rnd.key = jb->key ^ ((uint64_t)l << 56 | (uint64_t)j << 40 | (uint64_t)s << 20);
                int mark = L->use_lsh && !jb->changed[l][j];
                if (mark) elsh_qtrain_copy_row(tv, l, j, tv->row_old);
                elsh_qtrain_update_row(tv, l, j, jb->rec_delta[l][at + (size_t)q], jb->rec_x[l] + at_in, idx, n,
                                       &rnd, &uops);
                if (!mark) continue;
                tops.cmp += (uint64_t)L->n_in;
                if (!elsh_qtrain_row_changed(tv, l, j, tv->row_old)) continue;
                jb->changed[l][j] = 1;
                elsh_qhash_row(L, NULL, tv->row_old, L->hash_in, jb->old_codes[l] + (size_t)j * (size_t)L->hash.tables,
                               &tops);
            }
        }
        if (!L->use_lsh) continue;
        for (int32_t j = lo; j < hi; j++)
            if (jb->changed[l][j])
                elsh_qtrain_row_codes(tv, l, j, L->hash_in, jb->new_codes[l] + (size_t)j * (size_t)L->hash.tables, &tops);
    }
    ops_accumulate(&net->ops.total[ELSH_PHASE_UPDATE], &uops);
    ops_accumulate(&net->ops.total[ELSH_PHASE_TABLES], &tops);
}

/* Worker w's share of a batch, between the barriers that start and end it. */
static void do_share(struct elsh_qbatch *jb, int32_t w)
{
    record_share(jb, w);
    barrier_wait(&jb->bar);
    apply_share(jb, w);
}

/* The leader after a batch: the moves between buckets, in a fixed order. */
static void finish_batch(struct elsh_qbatch *jb)
{
    elsh_qtrain *tr = jb->tr;
    elsh_qnet *net = tr->net;
    elsh_ops *tops = &net->ops.total[ELSH_PHASE_TABLES];
    for (int32_t l = net->n_layers - 1; l >= tr->first; l--) {
        const elsh_qlayer *L = &net->layers[l];
        if (!L->use_lsh) continue;
        for (int32_t j = 0; j < L->n_out; j++) {
            if (!jb->changed[l][j]) continue;
            jb->changed[l][j] = 0;
            const uint32_t *c_old = jb->old_codes[l] + (size_t)j * (size_t)L->hash.tables;
            const uint32_t *c_new = jb->new_codes[l] + (size_t)j * (size_t)L->hash.tables;
            for (int32_t t = 0; t < L->hash.tables; t++)
                if (elsh_qtrain_stores(tr, l, t, j)) elsh_qtrain_move_neuron(tr, l, t, j, c_old[t], c_new[t], tops);
        }
    }
    if (jb->pred)
        for (int64_t s = 0; s < jb->count; s++) jb->pred[jb->start + s] = jb->rec_pred[s];
    tr->steps += (uint64_t)jb->count;
}

static void run_batch(struct elsh_qbatch *jb)
{
    barrier_wait(&jb->bar);
    do_share(jb, 0);
    barrier_wait(&jb->bar);
}

static void lead(struct elsh_qbatch *jb, int64_t n)
{
    for (int64_t done = 0; done < n; done += jb->count) {
        jb->start = done;
        jb->count = n - done < jb->batch ? n - done : jb->batch;
        uint64_t hi = elsh_prng_u32(&jb->tr->rng);
        jb->key = hi << 32 | elsh_prng_u32(&jb->tr->rng);
        run_batch(jb);
        finish_batch(jb);
    }
}

#if ELSH_THREADS
typedef struct {
    struct elsh_qbatch *jb;
    int32_t w;
} worker_arg;

static void *worker_main(void *arg)
{
    const worker_arg *wa = arg;
    for (;;) {
        barrier_wait(&wa->jb->bar);
        if (wa->jb->stop) break;
        do_share(wa->jb, wa->w);
        barrier_wait(&wa->jb->bar);
    }
    return NULL;
}
#endif

/* Start the other workers, lead the batches on this one, stop and join them. */
static int run_workers(struct elsh_qbatch *jb, int64_t n)
{
    jb->stop = 0;
    jb->bar.parties = jb->n_workers;
    jb->bar.waiting = 0;
    jb->bar.round = 0;
#if ELSH_THREADS
    if (jb->n_workers > 1) {
        pthread_t tid[ELSH_MAX_THREADS];
        worker_arg args[ELSH_MAX_THREADS];
        int32_t started = 1;
        pthread_mutex_init(&jb->bar.mutex, NULL);
        pthread_cond_init(&jb->bar.cond, NULL);
        for (; started < jb->n_workers; started++) {
            args[started] = (worker_arg){jb, started};
            if (pthread_create(&tid[started], NULL, worker_main, &args[started]) != 0) break;
        }
        if (started == jb->n_workers) lead(jb, n);
        jb->stop = 1; /* the workers that started read it after this round */
        __atomic_store_n(&jb->bar.parties, started, __ATOMIC_RELEASE);
        barrier_wait(&jb->bar);
        for (int32_t w = 1; w < started; w++) pthread_join(tid[w], NULL);
        pthread_cond_destroy(&jb->bar.cond);
        pthread_mutex_destroy(&jb->bar.mutex);
        return started == jb->n_workers ? ELSH_OK : ELSH_ERR_STATE;
    }
#endif
    lead(jb, n);
    return ELSH_OK;
}

int elsh_qtrain_steps(elsh_qtrain *tr, const int8_t *xq, const int32_t *labels, int64_t n, int32_t *pred)
{
    if (!tr || ((!xq || !labels) && n > 0)) return ELSH_ERR_NULL;
    if (!tr->attached || n < 0) return ELSH_ERR_STATE;
    for (int64_t r = 0; r < n; r++)
        if (labels[r] < 0 || labels[r] >= tr->net->n_classes) return ELSH_ERR_INPUT;
    if (!tr->batch) {
        for (int64_t r = 0; r < n; r++) {
            int rc = elsh_qtrain_step(tr, xq + (size_t)r * (size_t)tr->net->n_in, labels[r]);
            if (rc < 0) return rc;
            if (pred) pred[r] = rc;
        }
        return ELSH_OK;
    }
    struct elsh_qbatch *jb = tr->batch;
    sync_views(jb, tr);
    jb->tr = tr;
    jb->xq = xq;
    jb->labels = labels;
    jb->pred = pred;
    int rc = run_workers(jb, n);
    for (int32_t w = 1; w < jb->n_workers; w++)
        for (int p = 0; p < ELSH_PHASE_COUNT; p++) ops_accumulate(&tr->net->ops.total[p], &jb->nets[w].ops.total[p]);
    return rc;
}
