/* test_probs.c - elsh_qnet_probs: the softmax of the dequantized logits over the classes the
 * output layer computed, on hand-made output layers (no model file: these run on the
 * microcontroller harness too). Inactive classes get exactly 0; no NaN for INT32_MIN logits,
 * huge or tiny scales; the same bits as a double softmax computed here with libm within 1e-7.
 * Whole models: tests/test_runner_probs.py. */
#include "check.h"
#include "internal.h"

#include <math.h>
#include <string.h>

#define NC 6

typedef struct {
    elsh_qnet net;
    int32_t logits[NC];
    int32_t active[NC];
} probs_net;

/* An attached one-layer network whose output layer computed `active` (n ids, ascending). */
static void probs_net_init(probs_net *p, const int32_t *logits, const int32_t *active, int32_t n, float scale)
{
    memset(p, 0, sizeof *p);
    p->net.n_layers = 1;
    p->net.n_classes = NC;
    p->net.attached = 1;
    elsh_qlayer *L = &p->net.layers[0];
    L->n_out = NC;
    L->is_output = 1;
    L->out_scale = scale;
    for (int32_t j = 0; j < NC; j++) p->logits[j] = INT32_MIN;
    for (int32_t q = 0; q < n; q++) {
        p->active[q] = active[q];
        p->logits[active[q]] = logits[q];
    }
    L->logits = p->logits;
    L->active = p->active;
    L->n_active = n;
}

/* probs against a softmax in double with libm's exp; inactive classes exactly 0 */
static void check_softmax(const probs_net *p, const float *probs)
{
    const elsh_qlayer *L = &p->net.layers[0];
    double mx = -INFINITY, sum = 0.0, want[NC] = {0}, total = 0.0;
    for (int32_t q = 0; q < L->n_active; q++) mx = fmax(mx, (double)p->logits[p->active[q]]);
    for (int32_t q = 0; q < L->n_active; q++) {
        want[p->active[q]] = exp(((double)p->logits[p->active[q]] - mx) * (double)L->out_scale);
        sum += want[p->active[q]];
    }
    int is_active[NC] = {0};
    for (int32_t q = 0; q < L->n_active; q++) is_active[p->active[q]] = 1;
    for (int32_t j = 0; j < NC; j++) {
        CHECK_MSG(probs[j] == probs[j], "class %d: NaN", (int)j);
        if (!is_active[j]) {
            CHECK_MSG(probs[j] == 0.0f, "inactive class %d: %g, not 0", (int)j, (double)probs[j]);
            continue;
        }
        CHECK_NEAR(probs[j], want[j] / sum, 1e-7);
        total += probs[j];
    }
    CHECK_NEAR(total, 1.0, 1e-6);
}

void test_qnet_probs_softmax(void)
{
    static probs_net p;
    float probs[NC];
    /* an LSH output layer: classes 0 and 5 not computed; class 3 saturated to INT32_MIN */
    static const int32_t act[4] = {1, 2, 3, 4};
    static const int32_t lg[4] = {100, 350, INT32_MIN, 349};
    const float scales[] = {1e-2f, 1.0f, 3.4e38f, 1e-30f, 1.5e-45f};
    for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
        probs_net_init(&p, lg, act, 4, scales[s]);
        for (int32_t j = 0; j < NC; j++) probs[j] = -1.0f;
        CHECK_EQ_INT(elsh_qnet_probs(&p.net, probs), ELSH_OK);
        check_softmax(&p, probs);
    }
    /* a huge scale: the maximum takes everything, the rest underflow to exactly 0 */
    probs_net_init(&p, lg, act, 4, 3.4e38f);
    CHECK_EQ_INT(elsh_qnet_probs(&p.net, probs), ELSH_OK);
    CHECK(probs[2] == 1.0f && probs[1] == 0.0f && probs[3] == 0.0f && probs[4] == 0.0f);
    /* the widest range of logits: INT32_MAX against INT32_MIN */
    static const int32_t wide[2] = {INT32_MIN, INT32_MAX};
    static const int32_t act2[2] = {0, 5};
    probs_net_init(&p, wide, act2, 2, 1.0f);
    CHECK_EQ_INT(elsh_qnet_probs(&p.net, probs), ELSH_OK);
    CHECK(probs[0] == 0.0f && probs[5] == 1.0f);
    /* a tiny scale: every computed class equally likely; a dense layer computes all six */
    static const int32_t all[NC] = {0, 1, 2, 3, 4, 5};
    static const int32_t lg6[NC] = {INT32_MIN, -7, 0, 7, 1000000, INT32_MAX};
    probs_net_init(&p, lg6, all, NC, 1e-30f);
    CHECK_EQ_INT(elsh_qnet_probs(&p.net, probs), ELSH_OK);
    for (int32_t j = 0; j < NC; j++) CHECK_NEAR(probs[j], 1.0 / NC, 1e-7);
    probs_net_init(&p, lg6, all, NC, 0.25f);
    CHECK_EQ_INT(elsh_qnet_probs(&p.net, probs), ELSH_OK);
    check_softmax(&p, probs);
    /* a known answer: logits 0 and 1 at scale ln 2 are e^-ln2 = 1/2 against 1: 1/3 and 2/3 */
    static const int32_t two[2] = {0, 1};
    static const int32_t act01[2] = {0, 1};
    probs_net_init(&p, two, act01, 2, 0.693147182f);
    CHECK_EQ_INT(elsh_qnet_probs(&p.net, probs), ELSH_OK);
    CHECK_NEAR(probs[0], 1.0 / 3.0, 1e-7);
    CHECK_NEAR(probs[1], 2.0 / 3.0, 1e-7);
    /* ties share: two equal maxima get the same probability */
    static const int32_t tie[3] = {5, 5, 4};
    static const int32_t act3[3] = {1, 3, 4};
    probs_net_init(&p, tie, act3, 3, 1.0f);
    CHECK_EQ_INT(elsh_qnet_probs(&p.net, probs), ELSH_OK);
    CHECK(probs[1] == probs[3] && probs[1] > probs[4]);
    check_softmax(&p, probs);
}

/* Every exponent the softmax can see, against libm (relative error well below float's). */
void test_qnet_probs_exp_range(void)
{
    static probs_net p;
    static const int32_t act01[2] = {0, 1};
    float probs[NC];
    double worst = 0.0;
    for (int32_t d = 0; d <= 4000; d++) {
        int32_t lg[2] = {-d, 0}; /* class 0 at e^(-d * scale) relative to class 1 */
        probs_net_init(&p, lg, act01, 2, 0.03f);
        CHECK_EQ_INT(elsh_qnet_probs(&p.net, probs), ELSH_OK);
        double e = exp(-(double)d * (double)0.03f), want = e / (1.0 + e);
        if (want > 1e-30) {
            double rel = fabs((double)probs[0] - want) / want;
            worst = rel > worst ? rel : worst;
        } else {
            CHECK(probs[0] >= 0.0f && probs[0] < 1e-29f);
        }
        CHECK_NEAR((double)probs[0] + (double)probs[1], 1.0, 1e-7);
    }
    CHECK_MSG(worst < 1.2e-7, "worst relative error %g", worst);
}

/* The same bits on every platform: known answers made on x86-64 (the cross-compiled unit tests
 * check them on every ARM target under QEMU, make -C firmware_tests check). */
void test_qnet_probs_known_bits(void)
{
    static probs_net p;
    static const int32_t cases[3][NC] = {{-4535, -2991, -16, 241, 0, 0},
                                          {-7, 1000, 999, -123456, 5, 0},
                                          {INT32_MIN, -2000000000, 300000, INT32_MAX, 17, -1}};
    static const int32_t n_active[3] = {4, NC, NC}, all[NC] = {0, 1, 2, 3, 4, 5};
    static const float scales[3] = {0.00011516165f, 0.0123f, 1e-9f};
    static const float want[3][NC] = {
        {0x1.6d06p-3f, 0x1.b40e64p-3f, 0x1.331e0ap-2f, 0x1.3c57c2p-2f, 0.0f, 0.0f},
        {0x1.19fbfap-19f, 0x1.019298p-1f, 0x1.fcd908p-2f, 0.0f, 0x1.46d56ap-19f, 0x1.3356c8p-19f},
        {0x1.43dad6p-7f, 0x1.7751ecp-7f, 0x1.5ac2f6p-4f, 0x1.7310dap-1f, 0x1.5aa856p-4f, 0x1.5aa854p-4f},
    };
    for (int c = 0; c < 3; c++) {
        float probs[NC];
        probs_net_init(&p, cases[c], all, n_active[c], scales[c]);
        CHECK_EQ_INT(elsh_qnet_probs(&p.net, probs), ELSH_OK);
        for (int j = 0; j < NC; j++)
            CHECK_MSG(memcmp(&probs[j], &want[c][j], sizeof(float)) == 0, "case %d class %d: %a, want %a", c, j,
                      (double)probs[j], (double)want[c][j]);
    }
}

void test_qnet_probs_states(void)
{
    static probs_net p;
    static const int32_t act01[2] = {0, 1};
    static const int32_t lg[2] = {1, 2};
    float probs[NC];
    probs_net_init(&p, lg, act01, 2, 1.0f);
    CHECK_EQ_INT(elsh_qnet_probs(NULL, probs), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_qnet_probs(&p.net, NULL), ELSH_ERR_NULL);
    p.net.layers[0].n_active = 0; /* attached, no forward yet */
    CHECK_EQ_INT(elsh_qnet_probs(&p.net, probs), ELSH_ERR_STATE);
    p.net.layers[0].n_active = 2;
    p.net.attached = 0;
    CHECK_EQ_INT(elsh_qnet_probs(&p.net, probs), ELSH_ERR_STATE);
    static elsh_qnet never;
    memset(&never, 0, sizeof never);
    CHECK_EQ_INT(elsh_qnet_probs(&never, probs), ELSH_ERR_STATE);
}
