/* test_layer.c - forward and backward against a double-precision reference, sparse layers,
 * op counters, training on toy data, bad labels and all-zero inputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "test_util.h"

/* ------------------------------------------------------------------ dense reference */

enum { RIN = 5, RHID = 7, ROUT = 3 };

typedef struct {
    double w0[RHID][RIN], b0[RHID], w1[ROUT][RHID], b1[ROUT];
    double w0_g2[RHID][RIN], w0_vel[RHID][RIN], b0_g2[RHID], b0_vel[RHID];
    double w1_g2[ROUT][RHID], w1_vel[ROUT][RHID], b1_g2[ROUT], b1_vel[ROUT];
} ref_net;

static void ref_from(ref_net *r, const elsh_net *net)
{
    const elsh_layer *L0 = &net->layers[0], *L1 = &net->layers[1];
    for (int j = 0; j < RHID; j++) {
        for (int i = 0; i < RIN; i++) {
            r->w0[j][i] = L0->w[j * RIN + i];
            r->w0_g2[j][i] = L0->w_g2[j * RIN + i];
            r->w0_vel[j][i] = L0->w_vel[j * RIN + i];
        }
        r->b0[j] = L0->b[j];
        r->b0_g2[j] = L0->b_g2[j];
        r->b0_vel[j] = L0->b_vel[j];
    }
    for (int c = 0; c < ROUT; c++) {
        for (int j = 0; j < RHID; j++) {
            r->w1[c][j] = L1->w[c * RHID + j];
            r->w1_g2[c][j] = L1->w_g2[c * RHID + j];
            r->w1_vel[c][j] = L1->w_vel[c * RHID + j];
        }
        r->b1[c] = L1->b[c];
        r->b1_g2[c] = L1->b_g2[c];
        r->b1_vel[c] = L1->b_vel[c];
    }
}

static void ref_forward(const ref_net *r, const float *x, double *h, double *z, double *p)
{
    for (int j = 0; j < RHID; j++) {
        double s = r->b0[j];
        for (int i = 0; i < RIN; i++) s += r->w0[j][i] * (double)x[i];
        h[j] = s > 0.0 ? s : 0.0;
    }
    double mx = -1e300, sum = 0.0;
    for (int c = 0; c < ROUT; c++) {
        double s = r->b1[c];
        for (int j = 0; j < RHID; j++) s += r->w1[c][j] * h[j];
        z[c] = s;
        if (s > mx) mx = s;
    }
    for (int c = 0; c < ROUT; c++) sum += (p[c] = exp(z[c] - mx));
    for (int c = 0; c < ROUT; c++) p[c] /= sum;
}

/* The documented optimizer: g2 += g*g; vel = mom*vel - lr*g/(sqrt(g2)+eps); w += vel. */
static void ref_adagrad(double *w, double *g2, double *vel, double g, double lr, double mom, double eps)
{
    *g2 += g * g;
    *vel = mom * *vel - lr * g / (sqrt(*g2) + eps);
    *w += *vel;
}

/* One training step; returns the loss. */
static double ref_train(ref_net *r, const float *x, int label, double lr, double mom, double l2,
                        double eps)
{
    double h[RHID], z[ROUT], p[ROUT], d1[ROUT], d0[RHID];
    ref_forward(r, x, h, z, p);
    for (int c = 0; c < ROUT; c++) d1[c] = p[c] - (c == label ? 1.0 : 0.0);
    for (int j = 0; j < RHID; j++) {
        double s = 0.0;
        for (int c = 0; c < ROUT; c++) s += r->w1[c][j] * d1[c]; /* weights before the step */
        d0[j] = h[j] > 0.0 ? s : 0.0;
    }
    for (int c = 0; c < ROUT; c++) {
        for (int j = 0; j < RHID; j++)
            ref_adagrad(&r->w1[c][j], &r->w1_g2[c][j], &r->w1_vel[c][j], d1[c] * h[j] + l2 * r->w1[c][j],
                        lr, mom, eps);
        ref_adagrad(&r->b1[c], &r->b1_g2[c], &r->b1_vel[c], d1[c], lr, mom, eps);
    }
    for (int j = 0; j < RHID; j++) {
        for (int i = 0; i < RIN; i++)
            ref_adagrad(&r->w0[j][i], &r->w0_g2[j][i], &r->w0_vel[j][i],
                        d0[j] * (double)x[i] + l2 * r->w0[j][i], lr, mom, eps);
        ref_adagrad(&r->b0[j], &r->b0_g2[j], &r->b0_vel[j], d0[j], lr, mom, eps);
    }
    return -log(p[label]);
}

/* |a - b| <= tol * (1 + |b|) */
#define CHECK_CLOSE(a, b, tol, ...)                                                            \
    do {                                                                                       \
        double ca_ = (double)(a), cb_ = (double)(b);                                           \
        CHECK_MSG(fabs(ca_ - cb_) <= (tol) * (1.0 + fabs(cb_)), __VA_ARGS__);                   \
    } while (0)

static void compare_params(const ref_net *r, const elsh_net *net, double tol, const char *when)
{
    const elsh_layer *L0 = &net->layers[0], *L1 = &net->layers[1];
    for (int j = 0; j < RHID; j++) {
        for (int i = 0; i < RIN; i++) {
            CHECK_CLOSE(L0->w[j * RIN + i], r->w0[j][i], tol, "%s: w0[%d][%d] %.9g vs %.9g", when, j, i,
                        (double)L0->w[j * RIN + i], r->w0[j][i]);
            CHECK_CLOSE(L0->w_g2[j * RIN + i], r->w0_g2[j][i], tol, "%s: w0_g2[%d][%d]", when, j, i);
            CHECK_CLOSE(L0->w_vel[j * RIN + i], r->w0_vel[j][i], tol, "%s: w0_vel[%d][%d]", when, j, i);
        }
        CHECK_CLOSE(L0->b[j], r->b0[j], tol, "%s: b0[%d]", when, j);
        CHECK_CLOSE(L0->b_g2[j], r->b0_g2[j], tol, "%s: b0_g2[%d]", when, j);
        CHECK_CLOSE(L0->b_vel[j], r->b0_vel[j], tol, "%s: b0_vel[%d]", when, j);
    }
    for (int c = 0; c < ROUT; c++) {
        for (int j = 0; j < RHID; j++) {
            CHECK_CLOSE(L1->w[c * RHID + j], r->w1[c][j], tol, "%s: w1[%d][%d] %.9g vs %.9g", when, c, j,
                        (double)L1->w[c * RHID + j], r->w1[c][j]);
            CHECK_CLOSE(L1->w_g2[c * RHID + j], r->w1_g2[c][j], tol, "%s: w1_g2[%d][%d]", when, c, j);
            CHECK_CLOSE(L1->w_vel[c * RHID + j], r->w1_vel[c][j], tol, "%s: w1_vel[%d][%d]", when, c, j);
        }
        CHECK_CLOSE(L1->b[c], r->b1[c], tol, "%s: b1[%d]", when, c);
        CHECK_CLOSE(L1->b_g2[c], r->b1_g2[c], tol, "%s: b1_g2[%d]", when, c);
        CHECK_CLOSE(L1->b_vel[c], r->b1_vel[c], tol, "%s: b1_vel[%d]", when, c);
    }
}

static int dense_net(tnet *t)
{
    elsh_net_config cfg;
    cfg_init(&cfg, RIN, 2, 123u);
    cfg_dense(&cfg.layers[0], RHID);
    cfg_dense(&cfg.layers[1], ROUT);
    int rc = tnet_create(t, &cfg);
    CHECK_EQ_INT(rc, ELSH_OK);
    if (rc != ELSH_OK) return 0;
    /* non-zero biases, so the bias path is exercised */
    for (int j = 0; j < RHID; j++) t->net.layers[0].b[j] = 0.1f * (float)(j - 3);
    t->net.layers[1].b[0] = 0.05f;
    t->net.layers[1].b[1] = -0.02f;
    t->net.layers[1].b[2] = 0.01f;
    return 1;
}

static const float X1[RIN] = {0.8f, -1.2f, 0.3f, 2.0f, -0.5f};
static const float X2[RIN] = {-0.4f, 0.9f, 1.5f, -1.0f, 0.7f};

void test_dense_forward_matches_reference(void)
{
    tnet t;
    if (!dense_net(&t)) return;
    ref_net r;
    ref_from(&r, &t.net);
    const float *xs[2] = {X1, X2};
    for (int s = 0; s < 2; s++) {
        double h[RHID], z[ROUT], p[ROUT];
        ref_forward(&r, xs[s], h, z, p);
        int pred = elsh_net_forward(&t.net, xs[s], -1);
        const elsh_layer *L0 = &t.net.layers[0], *L1 = &t.net.layers[1];
        CHECK_EQ_INT(L0->n_active, RHID);
        CHECK_EQ_INT(L1->n_active, ROUT);
        int any_zero = 0, any_pos = 0;
        for (int j = 0; j < RHID; j++) {
            CHECK_EQ_INT(L0->active[j], j);
            CHECK_NEAR(L0->act[j], h[j], 1e-5);
            any_zero |= h[j] == 0.0;
            any_pos |= h[j] > 0.0;
        }
        CHECK(any_zero && any_pos); /* both sides of the ReLU are exercised */
        int best = 0;
        for (int c = 0; c < ROUT; c++) {
            CHECK_NEAR(L1->act[c], z[c], 1e-5);
            if (z[c] > z[best]) best = c;
        }
        CHECK_EQ_INT(pred, best);
        int32_t pp = -1;
        float probs[ROUT];
        CHECK_EQ_INT(elsh_predict(&t.net, xs[s], 1, &pp, probs), ELSH_OK);
        CHECK_EQ_INT(pp, best);
        for (int c = 0; c < ROUT; c++) CHECK_NEAR(probs[c], p[c], 1e-6);
    }
    /* several rows at once */
    float both[2 * RIN];
    memcpy(both, X1, sizeof(X1));
    memcpy(both + RIN, X2, sizeof(X2));
    int32_t pred2[2];
    float probs2[2 * ROUT];
    CHECK_EQ_INT(elsh_predict(&t.net, both, 2, pred2, probs2), ELSH_OK);
    for (int s = 0; s < 2; s++) {
        double h[RHID], z[ROUT], p[ROUT];
        ref_forward(&r, xs[s], h, z, p);
        for (int c = 0; c < ROUT; c++) CHECK_NEAR(probs2[s * ROUT + c], p[c], 1e-6);
        CHECK_EQ_INT(pred2[s], elsh_net_forward(&t.net, xs[s], -1));
    }
    tnet_destroy(&t);
}

void test_dense_train_steps_match_adagrad(void)
{
    tnet t;
    if (!dense_net(&t)) return;
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    tc.lr = 0.05f;
    tc.momentum_start = 0.3f;
    tc.momentum_end = 0.8f;
    tc.momentum_epochs = 0; /* momentum_end from the start */
    tc.l2 = 0.01f;
    tc.adagrad_eps = 1e-6f;
    ref_net r;
    ref_from(&r, &t.net);
    const float *xs[3] = {X1, X2, X1};
    static const int32_t labels[3] = {2, 0, 1};
    for (int s = 0; s < 3; s++) {
        double h[RHID], z[ROUT], p[ROUT];
        ref_forward(&r, xs[s], h, z, p);
        int best = 0;
        for (int c = 1; c < ROUT; c++)
            if (z[c] > z[best]) best = c;
        double ref_loss = ref_train(&r, xs[s], labels[s], 0.05, (double)0.8f, (double)0.01f, (double)1e-6f);
        float loss = -1.0f;
        int pred = elsh_train_sample(&t.net, &tc, 0, xs[s], labels[s], &loss);
        CHECK_EQ_INT(pred, best); /* predicted before the step */
        CHECK_NEAR(loss, ref_loss, 1e-5);
        char when[32];
        snprintf(when, sizeof(when), "after step %d", s + 1);
        compare_params(&r, &t.net, 1e-5, when);
    }
    /* the momentum ramp: at epoch e < momentum_epochs, start + (end - start) * e / epochs */
    tnet u;
    if (!dense_net(&u)) return;
    tc.momentum_epochs = 4;
    ref_from(&r, &u.net);
    for (int s = 0; s < 3; s++) {
        int32_t epoch = s; /* momentum 0.3, 0.425, 0.55 */
        double mom = (double)(0.3f + (0.8f - 0.3f) * ((float)epoch / 4.0f));
        ref_train(&r, xs[s], labels[s], 0.05, mom, (double)0.01f, (double)1e-6f);
        CHECK(elsh_train_sample(&u.net, &tc, epoch, xs[s], labels[s], NULL) >= 0);
    }
    compare_params(&r, &u.net, 1e-5, "momentum ramp");
    tnet_destroy(&t);
    tnet_destroy(&u);
}

/* An LSH hidden layer computes exactly its k active neurons; training touches only their rows
 * (and, in the next layer, only the columns of active inputs). */
void test_sparse_layer_only_active(void)
{
    enum { NIN = 12, NH = 40, NO = 3 };
    elsh_net_config cfg;
    cfg_init(&cfg, NIN, 2, 808u);
    cfg_lsh(&cfg.layers[0], NH, 0.25f, ELSH_HASH_SIMHASH, 4, 6);
    cfg_dense(&cfg.layers[1], NO);
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    elsh_layer *L0 = &t.net.layers[0], *L1 = &t.net.layers[1];
    for (int32_t j = 0; j < NH; j++) L0->b[j] = 0.01f * (float)(j % 7);
    elsh_prng rng;
    elsh_prng_seed(&rng, 4u);
    size_t w0n = (size_t)NH * NIN, w1n = (size_t)NO * NH;
    float *w0 = malloc(w0n * 3 * sizeof(float)), *w1 = malloc(w1n * 3 * sizeof(float));
    if (!w0 || !w1) abort();
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    tc.l2 = 0.001f;
    for (int rep = 0; rep < 5; rep++) {
        float x[NIN];
        for (int i = 0; i < NIN; i++) x[i] = elsh_prng_normal(&rng);
        elsh_net_forward(&t.net, x, -1);
        CHECK_EQ_INT(L0->k, 10);
        CHECK_EQ_INT(L0->n_active, 10);
        int is_active[NH] = {0};
        for (int32_t a = 0; a < L0->n_active; a++) {
            int32_t j = L0->active[a];
            CHECK(j >= 0 && j < NH);
            if (a) CHECK(L0->active[a - 1] < j);
            is_active[j] = 1;
            double s = L0->b[j];
            for (int i = 0; i < NIN; i++) s += (double)L0->w[j * NIN + i] * x[i];
            CHECK_NEAR(L0->act[a], s > 0.0 ? s : 0.0, 1e-5);
        }
        /* the output sees only the active hidden neurons */
        for (int c = 0; c < NO; c++) {
            double s = L1->b[c];
            for (int32_t a = 0; a < L0->n_active; a++) s += (double)L1->w[c * NH + L0->active[a]] * L0->act[a];
            CHECK_NEAR(L1->act[c], s, 1e-5);
        }
        /* one step: inactive rows and columns keep weights and optimizer state */
        memcpy(w0, L0->w, w0n * 4u);
        memcpy(w0 + w0n, L0->w_g2, w0n * 4u);
        memcpy(w0 + 2 * w0n, L0->w_vel, w0n * 4u);
        memcpy(w1, L1->w, w1n * 4u);
        memcpy(w1 + w1n, L1->w_g2, w1n * 4u);
        memcpy(w1 + 2 * w1n, L1->w_vel, w1n * 4u);
        float b0[NH];
        memcpy(b0, L0->b, sizeof(b0));
        memset(L0->dirty, 0, NH);
        CHECK(elsh_train_sample(&t.net, &tc, 0, x, rep % NO, NULL) >= 0);
        /* the training forward pass chose the same set (same input, same tables) */
        int changed_active = 0;
        for (int32_t j = 0; j < NH; j++) {
            int row_same = memcmp(w0 + (size_t)j * NIN, L0->w + (size_t)j * NIN, NIN * 4u) == 0 &&
                           memcmp(w0 + w0n + (size_t)j * NIN, L0->w_g2 + (size_t)j * NIN, NIN * 4u) == 0 &&
                           memcmp(w0 + 2 * w0n + (size_t)j * NIN, L0->w_vel + (size_t)j * NIN, NIN * 4u) == 0 &&
                           b0[j] == L0->b[j];
            if (!is_active[j]) {
                CHECK_MSG(row_same, "inactive hidden neuron %d was updated", (int)j);
                CHECK_EQ_INT(L0->dirty[j], 0);
            } else {
                CHECK_EQ_INT(L0->dirty[j], 1);
                changed_active += !row_same;
            }
            for (int c = 0; c < NO; c++) {
                size_t q = (size_t)c * NH + (size_t)j;
                int col_same = w1[q] == L1->w[q] && w1[w1n + q] == L1->w_g2[q] && w1[2 * w1n + q] == L1->w_vel[q];
                if (!is_active[j]) CHECK_MSG(col_same, "output weight [%d][%d] of an inactive input updated", c, (int)j);
                else CHECK_MSG(!col_same, "output weight [%d][%d] of an active input not updated", c, (int)j);
            }
        }
        CHECK(changed_active > 0);
        elsh_tables_update(L0);
    }
    free(w0);
    free(w1);
    tnet_destroy(&t);
}

/* Three LSH layers (the output too): one training step through the sparse active sets equals
 * a double-precision reference that uses the same active sets. */
typedef struct {
    int32_t n_in, n_out;
    double *w, *b, *w_g2, *w_vel, *b_g2, *b_vel;
} ref_layer;

static void ref_layer_from(ref_layer *r, const elsh_layer *L)
{
    size_t nw = (size_t)L->n_in * (size_t)L->n_out, n = (size_t)L->n_out;
    r->n_in = L->n_in;
    r->n_out = L->n_out;
    r->w = malloc((3 * nw + 3 * n) * sizeof(double));
    if (!r->w) abort();
    r->w_g2 = r->w + nw;
    r->w_vel = r->w_g2 + nw;
    r->b = r->w_vel + nw;
    r->b_g2 = r->b + n;
    r->b_vel = r->b_g2 + n;
    for (size_t i = 0; i < nw; i++) {
        r->w[i] = L->w[i];
        r->w_g2[i] = L->w_g2[i];
        r->w_vel[i] = L->w_vel[i];
    }
    for (size_t j = 0; j < n; j++) {
        r->b[j] = L->b[j];
        r->b_g2[j] = L->b_g2[j];
        r->b_vel[j] = L->b_vel[j];
    }
}

static void ref_layer_compare(const ref_layer *r, const elsh_layer *L, int layer, int step)
{
    size_t nw = (size_t)L->n_in * (size_t)L->n_out;
    int bad = 0;
    for (size_t i = 0; i < nw && bad < 5; i++) {
        int ok = fabs(L->w[i] - r->w[i]) <= 1e-5 * (1.0 + fabs(r->w[i])) &&
                 fabs(L->w_g2[i] - r->w_g2[i]) <= 1e-5 * (1.0 + fabs(r->w_g2[i])) &&
                 fabs(L->w_vel[i] - r->w_vel[i]) <= 1e-5 * (1.0 + fabs(r->w_vel[i]));
        CHECK_MSG(ok, "step %d layer %d weight %zu (neuron %zu, input %zu): w %.9g vs %.9g, g2 %.9g vs %.9g",
                  step, layer, i, i / (size_t)L->n_in, i % (size_t)L->n_in, (double)L->w[i], r->w[i],
                  (double)L->w_g2[i], r->w_g2[i]);
        bad += !ok;
    }
    for (int32_t j = 0; j < L->n_out; j++) {
        int ok = fabs(L->b[j] - r->b[j]) <= 1e-5 * (1.0 + fabs(r->b[j])) &&
                 fabs(L->b_g2[j] - r->b_g2[j]) <= 1e-5 * (1.0 + fabs(r->b_g2[j])) &&
                 fabs(L->b_vel[j] - r->b_vel[j]) <= 1e-5 * (1.0 + fabs(r->b_vel[j]));
        CHECK_MSG(ok, "step %d layer %d bias %d: %.9g vs %.9g", step, layer, (int)j, (double)L->b[j], r->b[j]);
    }
}

void test_sparse_train_steps_match_reference(void)
{
    enum { NL = 3, NIN = 6, MAXW = 16 };
    elsh_net_config cfg;
    cfg_init(&cfg, NIN, NL, 4321u);
    cfg_lsh(&cfg.layers[0], 12, 1.0f / 3.0f, ELSH_HASH_SIMHASH, 3, 4);
    cfg_lsh(&cfg.layers[1], 10, 0.5f, ELSH_HASH_TERNARY, 3, 4);
    cfg_lsh(&cfg.layers[2], 5, 0.4f, ELSH_HASH_DWTA, 2, 4);
    cfg.layers[2].hash.dwta_bin = 2;
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    elsh_net *net = &t.net;
    for (int l = 0; l < NL; l++)
        for (int32_t j = 0; j < net->layers[l].n_out; j++) net->layers[l].b[j] = 0.02f * (float)((j % 5) - 1);
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    tc.lr = 0.03f;
    tc.momentum_epochs = 0;
    tc.momentum_end = 0.7f;
    tc.l2 = 0.002f;
    const double lr = (double)0.03f, mom = (double)0.7f, l2 = (double)0.002f, eps = (double)1e-8f;
    ref_layer r[NL];
    for (int l = 0; l < NL; l++) ref_layer_from(&r[l], &net->layers[l]);
    elsh_prng rng;
    elsh_prng_seed(&rng, 6u);
    for (int step = 0; step < 4; step++) {
        float x[NIN];
        for (int i = 0; i < NIN; i++) x[i] = elsh_prng_normal(&rng);
        int32_t label = step % 5;
        /* the active sets the training step will use: same state, same input, same label */
        elsh_net_forward(net, x, label);
        int32_t act_n[NL], act[NL][MAXW];
        for (int l = 0; l < NL; l++) {
            act_n[l] = net->layers[l].n_active;
            memcpy(act[l], net->layers[l].active, (size_t)act_n[l] * sizeof(int32_t));
        }
        CHECK_EQ_INT(act_n[0], 4);
        CHECK_EQ_INT(act_n[1], 5);
        CHECK(act_n[2] == 2 || act_n[2] == 3);
        int has_label = 0;
        for (int32_t a = 0; a < act_n[2]; a++) has_label |= act[2][a] == label;
        CHECK(has_label);
        /* reference forward over the active sets */
        double val[NL + 1][MAXW], delta[NL][MAXW];
        int32_t idx[NL + 1][MAXW], n_in_act[NL + 1];
        n_in_act[0] = NIN;
        for (int i = 0; i < NIN; i++) {
            idx[0][i] = i;
            val[0][i] = x[i];
        }
        for (int l = 0; l < NL; l++) {
            for (int32_t a = 0; a < act_n[l]; a++) {
                int32_t j = act[l][a];
                double z = r[l].b[j];
                for (int32_t q = 0; q < n_in_act[l]; q++) z += r[l].w[(size_t)j * (size_t)r[l].n_in + (size_t)idx[l][q]] * val[l][q];
                val[l + 1][a] = (l == NL - 1 || z > 0.0) ? z : 0.0;
                idx[l + 1][a] = j;
            }
            n_in_act[l + 1] = act_n[l];
        }
        double mx = -1e300, sum = 0.0, p[MAXW];
        for (int32_t a = 0; a < act_n[2]; a++) mx = val[3][a] > mx ? val[3][a] : mx;
        for (int32_t a = 0; a < act_n[2]; a++) sum += (p[a] = exp(val[3][a] - mx));
        double ref_loss = 0.0;
        for (int32_t a = 0; a < act_n[2]; a++) {
            p[a] /= sum;
            delta[2][a] = p[a] - (act[2][a] == label ? 1.0 : 0.0);
            if (act[2][a] == label) ref_loss = -log(p[a]);
        }
        /* reference backward and update, top layer first; deltas use weights before the step */
        for (int l = NL - 1; l >= 0; l--) {
            if (l > 0) {
                for (int32_t q = 0; q < n_in_act[l]; q++) {
                    double s = 0.0;
                    for (int32_t a = 0; a < act_n[l]; a++)
                        s += r[l].w[(size_t)act[l][a] * (size_t)r[l].n_in + (size_t)idx[l][q]] * delta[l][a];
                    delta[l - 1][q] = val[l][q] > 0.0 ? s : 0.0;
                }
            }
            for (int32_t a = 0; a < act_n[l]; a++) {
                int32_t j = act[l][a];
                for (int32_t q = 0; q < n_in_act[l]; q++) {
                    size_t o = (size_t)j * (size_t)r[l].n_in + (size_t)idx[l][q];
                    ref_adagrad(&r[l].w[o], &r[l].w_g2[o], &r[l].w_vel[o], delta[l][a] * val[l][q] + l2 * r[l].w[o],
                                lr, mom, eps);
                }
                ref_adagrad(&r[l].b[j], &r[l].b_g2[j], &r[l].b_vel[j], delta[l][a], lr, mom, eps);
            }
        }
        float loss = -1.0f;
        CHECK(elsh_train_sample(net, &tc, 0, x, label, &loss) >= 0);
        CHECK_NEAR(loss, ref_loss, 1e-5);
        for (int l = 0; l < NL; l++) {
            CHECK_EQ_INT(net->layers[l].n_active, act_n[l]);
            ref_layer_compare(&r[l], &net->layers[l], l, step);
        }
        if (check_current_failures()) break;
    }
    for (int l = 0; l < NL; l++) free(r[l].w);
    tnet_destroy(&t);
}

void test_forward_op_counts(void)
{
    tnet t;
    if (!dense_net(&t)) return;
    elsh_net_forward(&t.net, X1, -1);
    CHECK_EQ_INT(t.net.layers[0].ops.last[ELSH_PHASE_FORWARD].mul, RHID * RIN);
    CHECK_EQ_INT(t.net.layers[1].ops.last[ELSH_PHASE_FORWARD].mul, ROUT * RHID);
    CHECK_EQ_INT(elsh_net_ops(&t.net, ELSH_PHASE_FORWARD, 0).mul, RHID * RIN + ROUT * RHID);
    CHECK_EQ_INT(elsh_net_ops(&t.net, ELSH_PHASE_HASH, 0).mul, 0);
    CHECK_EQ_INT(elsh_net_ops(&t.net, ELSH_PHASE_FORWARD, 0).weight_bytes,
                 4 * (RHID * RIN + RHID + ROUT * RHID + ROUT));
    elsh_net_forward(&t.net, X2, -1);
    CHECK_EQ_INT(elsh_net_ops(&t.net, ELSH_PHASE_FORWARD, 1).mul, 2 * (RHID * RIN + ROUT * RHID));
    CHECK_EQ_INT(elsh_net_ops(&t.net, ELSH_PHASE_FORWARD, 0).mul, RHID * RIN + ROUT * RHID);
    tnet_destroy(&t);

    /* LSH hidden layer: k = 10 of 40 neurons over 12 inputs; SimHash with 6 tables of 4 bits */
    elsh_net_config cfg;
    cfg_init(&cfg, 12, 2, 5u);
    cfg_lsh(&cfg.layers[0], 40, 0.25f, ELSH_HASH_SIMHASH, 4, 6);
    cfg_dense(&cfg.layers[1], 3);
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    float x[12];
    for (int i = 0; i < 12; i++) x[i] = (float)((i * 7) % 5) - 2.0f;
    elsh_net_forward(&t.net, x, -1);
    const elsh_layer *L0 = &t.net.layers[0], *L1 = &t.net.layers[1];
    CHECK_EQ_INT(L0->ops.last[ELSH_PHASE_FORWARD].mul, 10 * 12);
    CHECK_EQ_INT(L0->ops.last[ELSH_PHASE_HASH].mul, 6 * 4 * 12);
    CHECK(L0->ops.last[ELSH_PHASE_HASH].table_bytes > 0);
    CHECK_EQ_INT(L1->ops.last[ELSH_PHASE_FORWARD].mul, 3 * 10); /* sparse input of 10 */
    /* one training step: backward and update counts */
    elsh_net_reset_counters(&t.net);
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    CHECK(elsh_train_sample(&t.net, &tc, 0, x, 1, NULL) >= 0);
    CHECK_EQ_INT(L1->ops.last[ELSH_PHASE_BACKWARD].mul, 3 * 10);
    CHECK_EQ_INT(L0->ops.last[ELSH_PHASE_BACKWARD].mul, 0); /* nothing below the first layer */
    uint64_t n_par = 3u * (10u + 1u) + 10u * (12u + 1u);
    CHECK(elsh_net_ops(&t.net, ELSH_PHASE_UPDATE, 0).mul >= n_par);
    CHECK_EQ_INT(elsh_net_ops(&t.net, ELSH_PHASE_UPDATE, 0).weight_bytes, n_par * 12u);
    CHECK_EQ_INT(elsh_net_ops(&t.net, ELSH_PHASE_FORWARD, 1).mul, 10 * 12 + 3 * 10);
    /* a table update counts its work in the tables phase */
    CHECK(elsh_tables_update(&t.net.layers[0]) == 10);
    CHECK(t.net.layers[0].ops.last[ELSH_PHASE_TABLES].mul == 10u * 6u * 4u * 12u);
    tnet_destroy(&t);
}

/* ------------------------------------------------------------------ training on toy data */

static double train_blobs(elsh_net_config *cfg, int32_t n_classes, float sep, int epochs, int rebuild)
{
    enum { N = 400 };
    int32_t n_in = cfg->n_in;
    float *x = malloc((size_t)N * (size_t)n_in * sizeof(float));
    int32_t labels[N], order[N];
    if (!x) abort();
    make_blobs(x, labels, N, n_in, n_classes, sep, 2468u);
    tnet t;
    int rc = tnet_create(&t, cfg);
    CHECK_EQ_INT(rc, ELSH_OK);
    if (rc != ELSH_OK) {
        free(x);
        return 0.0;
    }
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    tc.rebuild = rebuild;
    elsh_train_stats st;
    memset(&st, 0, sizeof(st));
    for (int e = 0; e < epochs; e++) {
        elsh_shuffle(&t.net, order, N);
        CHECK_EQ_INT(elsh_train_batch(&t.net, &tc, e, N, x, labels, order, N, &st), ELSH_OK);
    }
    CHECK_EQ_INT(st.samples, (int64_t)epochs * N);
    CHECK(isfinite(st.loss_sum));
    if (rebuild == ELSH_REBUILD_SEED) CHECK(st.rebuilds >= 10 * epochs);
    double acc = accuracy(&t.net, x, labels, N);
    for (int32_t l = 0; l < t.net.n_layers; l++)
        if (t.net.layers[l].use_lsh) CHECK_EQ_INT(tables_problems(&t.net.layers[l], 0), 0);
    tnet_destroy(&t);
    free(x);
    return acc;
}

void test_train_blobs_lsh(void)
{
    static const int32_t families[3] = {ELSH_HASH_SIMHASH, ELSH_HASH_TERNARY, ELSH_HASH_DWTA};
    for (int f = 0; f < 3; f++) {
        for (int rebuild = ELSH_REBUILD_SEED; rebuild <= ELSH_REBUILD_NEVER; rebuild += 2) {
            elsh_net_config cfg;
            cfg_init(&cfg, 16, 2, 1000u + (uint64_t)f);
            cfg_lsh(&cfg.layers[0], 64, 0.25f, families[f], 4, 16);
            cfg_dense(&cfg.layers[1], 2);
            double acc = train_blobs(&cfg, 2, 3.0f, 5, rebuild);
            CHECK_MSG(acc > 0.9, "family %d rebuild %d: training accuracy %.3f", f, rebuild, acc);
        }
    }
}

void test_train_blobs_lsh_output(void)
{
    /* 8 classes; the output layer is LSH too (k = 4 of 8, the true label forced while training).
     * At prediction time only the k retrieved classes can win, so accuracy is bounded by how
     * often the true class is retrieved (about 0.9 here; 1/8 is chance). */
    elsh_net_config cfg;
    cfg_init(&cfg, 16, 2, 77u);
    cfg_lsh(&cfg.layers[0], 64, 0.25f, ELSH_HASH_SIMHASH, 4, 16);
    cfg_lsh(&cfg.layers[1], 8, 0.5f, ELSH_HASH_SIMHASH, 3, 32);
    double acc = train_blobs(&cfg, 8, 4.0f, 8, ELSH_REBUILD_SEED);
    CHECK_MSG(acc > 0.8, "training accuracy %.3f", acc);
}

/* elsh_train_batch is elsh_train_sample over x[order[i]] plus the table schedule: replaying it
 * by hand on a copy of the arena gives the same bytes, predictions, loss and counts. */
void test_train_batch_matches_samples(void)
{
    enum { N = 30, NIN = 10, EVERY = 4 };
    elsh_net_config cfg;
    cfg_init(&cfg, NIN, 2, 31u);
    cfg_lsh(&cfg.layers[0], 32, 0.25f, ELSH_HASH_TERNARY, 3, 6);
    cfg.layers[0].hash.bucket_capacity = 4;
    cfg_dense(&cfg.layers[1], 3);
    tnet a;
    CHECK_EQ_INT(tnet_create(&a, &cfg), ELSH_OK);
    if (!a.raw) return;
    void *raw;
    unsigned char *copy = aligned_zalloc(a.bytes, &raw);
    memcpy(copy, a.arena, a.bytes);
    elsh_net b;
    CHECK_EQ_INT(elsh_net_init(&b, &cfg, copy, a.bytes), ELSH_OK);

    float x[N * NIN];
    int32_t labels[N], order[N];
    make_blobs(x, labels, N, NIN, 3, 2.0f, 8u);
    elsh_shuffle(&a.net, order, N);
    elsh_shuffle(&b, order, N);
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    tc.rebuild = ELSH_REBUILD_EVERY;
    tc.rebuild_every = EVERY;
    elsh_train_stats st;
    memset(&st, 0, sizeof(st));
    CHECK_EQ_INT(elsh_train_batch(&a.net, &tc, 0, N, x, labels, order, N, &st), ELSH_OK);

    double loss_sum = 0.0;
    int64_t correct = 0;
    for (int s = 0; s < N; s++) {
        const float *row = x + (size_t)order[s] * NIN;
        int before = elsh_net_forward(&b, row, -1);
        float loss = -1.0f;
        int pred = elsh_train_sample(&b, &tc, 0, row, labels[order[s]], &loss);
        CHECK_EQ_INT(pred, before); /* the prediction before the step */
        CHECK(loss >= 0.0f);
        loss_sum += loss;
        correct += pred == labels[order[s]];
        if ((s + 1) % EVERY == 0) elsh_tables_update(&b.layers[0]);
    }
    CHECK_EQ_INT(st.samples, N);
    CHECK_EQ_INT(st.correct, correct);
    CHECK_NEAR(st.loss_sum, loss_sum, 1e-9);
    CHECK_EQ_INT(st.rebuilds, N / EVERY);
    CHECK_EQ_INT(st.rehashes, 0);
    CHECK_EQ_INT(*a.net.samples_seen, N);
    CHECK_EQ_INT(*b.samples_seen, 0); /* only the batch counts samples */
    *b.samples_seen = N;
    CHECK(memcmp(a.arena, copy, a.bytes) == 0);
    free(raw);
    tnet_destroy(&a);
}

/* ------------------------------------------------------------------ robustness */

void test_train_bad_label(void)
{
    elsh_net_config cfg;
    cfg_init(&cfg, 6, 2, 3u);
    cfg_lsh(&cfg.layers[0], 16, 0.25f, ELSH_HASH_SIMHASH, 3, 4);
    cfg_lsh(&cfg.layers[1], 4, 0.5f, ELSH_HASH_TERNARY, 2, 4);
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    float x[2 * 6] = {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6};
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    unsigned char *copy = malloc(t.bytes);
    if (!copy) abort();
    memcpy(copy, t.arena, t.bytes);
    static const int32_t bad[4] = {4, -1, 1000, INT32_MIN};
    for (int q = 0; q < 4; q++) {
        int32_t labels[1] = {bad[q]};
        CHECK_EQ_INT(elsh_train_sample(&t.net, &tc, 0, x, bad[q], NULL), ELSH_ERR_INPUT);
        CHECK_EQ_INT(elsh_train_batch(&t.net, &tc, 0, 1, x, labels, NULL, 1, NULL), ELSH_ERR_INPUT);
    }
    CHECK_MSG(memcmp(copy, t.arena, t.bytes) == 0, "a rejected label changed the arena");
    /* the good sample before the bad one is trained, then the batch stops */
    int32_t labels[2] = {3, 4};
    elsh_train_stats st;
    memset(&st, 0, sizeof(st));
    CHECK_EQ_INT(elsh_train_batch(&t.net, &tc, 0, 2, x, labels, NULL, 2, &st), ELSH_ERR_INPUT);
    CHECK_EQ_INT(st.samples, 1);
    CHECK_EQ_INT(*t.net.samples_seen, 1);
    labels[1] = 0;
    CHECK_EQ_INT(elsh_train_batch(&t.net, &tc, 0, 2, x, labels, NULL, 2, &st), ELSH_OK);
    CHECK_EQ_INT(st.samples, 3);
    free(copy);
    tnet_destroy(&t);
}

void test_all_zero_inputs(void)
{
    enum { NIN = 24, N = 30 };
    elsh_net_config cfg;
    cfg_init(&cfg, NIN, 4, 9u);
    cfg_lsh(&cfg.layers[0], 40, 0.25f, ELSH_HASH_SIMHASH, 4, 6);
    cfg.layers[0].hash.pool = 3;
    cfg_lsh(&cfg.layers[1], 30, 0.3f, ELSH_HASH_TERNARY, 3, 5);
    cfg_lsh(&cfg.layers[2], 20, 0.5f, ELSH_HASH_DWTA, 4, 4);
    cfg.layers[2].hash.dwta_bin = 4;
    cfg_lsh(&cfg.layers[3], 5, 0.4f, ELSH_HASH_SIMHASH, 2, 3);
    tnet t;
    CHECK_EQ_INT(tnet_create(&t, &cfg), ELSH_OK);
    if (!t.raw) return;
    static float x[N * NIN];
    int32_t labels[N];
    memset(x, 0, sizeof(x));
    for (int i = 0; i < N; i++) labels[i] = i % 5;
    int32_t pred[N];
    float probs[N * 5];
    CHECK_EQ_INT(elsh_predict(&t.net, x, N, pred, probs), ELSH_OK);
    for (int i = 0; i < N; i++) {
        CHECK(pred[i] >= 0 && pred[i] < 5);
        double sum = 0.0;
        for (int c = 0; c < 5; c++) {
            CHECK(isfinite(probs[i * 5 + c]) && probs[i * 5 + c] >= 0.0f);
            sum += probs[i * 5 + c];
        }
        CHECK_NEAR(sum, 1.0, 1e-5);
    }
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    tc.rebuild = ELSH_REBUILD_EVERY;
    tc.rebuild_every = 4;
    tc.rehash_every = 11;
    elsh_train_stats st;
    memset(&st, 0, sizeof(st));
    for (int e = 0; e < 3; e++)
        CHECK_EQ_INT(elsh_train_batch(&t.net, &tc, e, N, x, labels, NULL, N, &st), ELSH_OK);
    CHECK(isfinite(st.loss_sum));
    for (int32_t l = 0; l < 4; l++) {
        const elsh_layer *L = &t.net.layers[l];
        size_t nw = (size_t)L->n_in * (size_t)L->n_out;
        int finite = 1;
        for (size_t i = 0; i < nw; i++) finite &= isfinite(L->w[i]) != 0;
        for (int32_t j = 0; j < L->n_out; j++) finite &= isfinite(L->b[j]) != 0;
        CHECK_MSG(finite, "layer %d has non-finite parameters", (int)l);
        CHECK_EQ_INT(tables_problems(&t.net.layers[l], 0), 0);
    }
    /* a zero row among normal rows */
    float mixed[2 * NIN];
    for (int i = 0; i < NIN; i++) {
        mixed[i] = 0.0f;
        mixed[NIN + i] = (float)(i % 3) - 1.0f;
    }
    int32_t lab2[2] = {1, 2};
    CHECK_EQ_INT(elsh_train_batch(&t.net, &tc, 0, 2, mixed, lab2, NULL, 2, NULL), ELSH_OK);
    CHECK_EQ_INT(elsh_predict(&t.net, mixed, 2, pred, NULL), ELSH_OK);
    tnet_destroy(&t);
}

/* Softmax must be computed stably: logits of +-300 overflow expf unless the maximum is
 * subtracted first. */
void test_softmax_large_logits(void)
{
    tnet t;
    if (!dense_net(&t)) return;
    elsh_layer *L1 = &t.net.layers[1];
    L1->b[0] = 300.0f;
    L1->b[1] = 0.0f;
    L1->b[2] = -300.0f;
    int32_t pred = -1;
    float probs[ROUT];
    CHECK_EQ_INT(elsh_predict(&t.net, X1, 1, &pred, probs), ELSH_OK);
    CHECK_EQ_INT(pred, 0);
    CHECK_NEAR(probs[0], 1.0, 1e-6);
    CHECK_NEAR(probs[1], 0.0, 1e-6);
    CHECK_NEAR(probs[2], 0.0, 1e-6);
    L1->b[0] = 500.0f;
    L1->b[1] = 499.0f;
    L1->b[2] = 498.0f;
    CHECK_EQ_INT(elsh_predict(&t.net, X1, 1, &pred, probs), ELSH_OK);
    double h[RHID], z[ROUT], p[ROUT];
    ref_net r;
    ref_from(&r, &t.net);
    ref_forward(&r, X1, h, z, p);
    for (int c = 0; c < ROUT; c++) CHECK_NEAR(probs[c], p[c], 1e-5);
    /* training with a hopeless label: the loss is large but finite */
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    L1->b[0] = 300.0f;
    L1->b[1] = 0.0f;
    L1->b[2] = -300.0f;
    float loss = -1.0f;
    CHECK_EQ_INT(elsh_train_sample(&t.net, &tc, 0, X1, 2, &loss), 0);
    CHECK(isfinite(loss) && loss > 10.0f);
    for (int32_t i = 0; i < ROUT * RHID; i++) CHECK(isfinite(L1->w[i]));
    tnet_destroy(&t);
}

void test_rebuild_interval_and_shuffle(void)
{
    elsh_train_config tc;
    elsh_train_config_default(&tc);
    CHECK(tc.lr > 0.0f && tc.adagrad_eps > 0.0f);
    CHECK_EQ_INT(tc.rebuild, ELSH_REBUILD_SEED);
    CHECK_EQ_INT(elsh_rebuild_interval(&tc, 0, 1000), 100);
    CHECK_EQ_INT(elsh_rebuild_interval(&tc, 9, 1000), 100);
    CHECK_EQ_INT(elsh_rebuild_interval(&tc, 0, 5), 1);
    CHECK_EQ_INT(elsh_rebuild_interval(&tc, 0, 0), 1);
    CHECK_EQ_INT(elsh_rebuild_interval(&tc, 10, 1000), 2000);
    CHECK_EQ_INT(elsh_rebuild_interval(&tc, 19, 1000), 2000);
    CHECK_EQ_INT(elsh_rebuild_interval(&tc, 20, 1000), 0);
    tc.rebuild = ELSH_REBUILD_EVERY;
    tc.rebuild_every = 7;
    CHECK_EQ_INT(elsh_rebuild_interval(&tc, 0, 1000), 7);
    CHECK_EQ_INT(elsh_rebuild_interval(&tc, 50, 1000), 7);
    tc.rebuild_every = 0;
    CHECK_EQ_INT(elsh_rebuild_interval(&tc, 0, 1000), 0);
    tc.rebuild = ELSH_REBUILD_NEVER;
    CHECK_EQ_INT(elsh_rebuild_interval(&tc, 0, 1000), 0);

    /* shuffle: a permutation, from the net's training PRNG (deterministic per seed) */
    tnet a, b;
    elsh_net_config cfg;
    cfg_init(&cfg, 4, 1, 5u);
    cfg_dense(&cfg.layers[0], 2);
    CHECK_EQ_INT(tnet_create(&a, &cfg), ELSH_OK);
    CHECK_EQ_INT(tnet_create(&b, &cfg), ELSH_OK);
    if (!a.raw || !b.raw) return;
    int32_t o1[100], o2[100];
    elsh_shuffle(&a.net, o1, 100);
    elsh_shuffle(&b.net, o2, 100);
    CHECK(memcmp(o1, o2, sizeof(o1)) == 0);
    int seen[100] = {0}, fixed = 0;
    for (int i = 0; i < 100; i++) {
        CHECK(o1[i] >= 0 && o1[i] < 100);
        if (o1[i] >= 0 && o1[i] < 100) seen[o1[i]]++;
        fixed += o1[i] == i;
    }
    for (int i = 0; i < 100; i++) CHECK_EQ_INT(seen[i], 1);
    CHECK(fixed < 10);
    elsh_shuffle(&a.net, o2, 100);
    CHECK(memcmp(o1, o2, sizeof(o1)) != 0); /* the PRNG advanced */
    elsh_shuffle(&a.net, o2, 0);
    elsh_shuffle(&a.net, o2, 1);
    CHECK_EQ_INT(o2[0], 0);
    tnet_destroy(&a);
    tnet_destroy(&b);
}
