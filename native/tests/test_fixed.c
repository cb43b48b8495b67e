/* test_fixed.c - the fixed-point building blocks: CRC-32, requantization, input quantization,
 * the integer layer (saturation, ReLU clamp, inactive logits), selection over CSR tables
 * (ties, empty buckets, k larger than the candidates, union) and the reader's first checks.
 * Whole models are checked bit-exact against numpy by golden_check (export/golden) and by
 * the Python tests (tests/test_fixed_c.py). */
#include "check.h"
#include "internal.h"

#include <string.h>

void test_crc32_known_answers(void)
{
    CHECK_EQ_INT(elsh_crc32(0, "123456789", 9), 0xCBF43926u);
    CHECK_EQ_INT(elsh_crc32(0, "", 0), 0);
    uint32_t part = elsh_crc32(0, "1234", 4);
    CHECK_EQ_INT(elsh_crc32(part, "56789", 5), 0xCBF43926u);
}

void test_requantize_cases(void)
{
    /* expected = floor(acc * M / 2^(31 - shift) + 1/2), saturated (exact rationals) */
    static const int64_t cases[][4] = {
        {100, 1073741824, 0, 50},
        {3, 1073741824, 0, 2},
        {-3, 1073741824, 0, -1}, /* half rounds up */
        {-5, 1073741824, 0, -2},
        {2147483647, 2147483647, 30, 2147483647}, /* saturates */
        {-2147483648LL, 2147483647, 30, -2147483648LL},
        {-2147483648LL, 2147483647, 0, -2147483647},
        {12345, 1518500250, -7, 68},
        {-12345, 1518500250, -7, -68},
        {1, 1073741824, -31, 0},
        {0, 2147483647, 30, 0},
        {7, 0, 0, 0},
        {123456789, 1999999999, -31, 0},
        {-1, 1073741824, -1, 0},
        {-2, 1073741824, -1, 0},
        {2, 1073741824, -1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t y = elsh_requantize((int32_t)cases[i][0], (int32_t)cases[i][1], (int32_t)cases[i][2]);
        CHECK_MSG(y == cases[i][3], "case %d: requantize(%lld, %lld, %lld) = %ld, want %lld", (int)i,
                  (long long)cases[i][0], (long long)cases[i][1], (long long)cases[i][2], (long)y,
                  (long long)cases[i][3]);
    }
}

void test_quantize_input_edges(void)
{
    static elsh_qnet net;
    static const uint8_t file[1]; /* a model counts as open once it points into a file */
    memset(&net, 0, sizeof net);
    net.file = file;
    net.n_in = 8;
    net.input_inv_scale = 1.0f;
    net.layers[0].in_zero = -10;
    float x[8] = {0.0f, 0.5f, -0.5f, -1.5f, -1.2f, 1e30f, -1e30f, 200.0f};
    int8_t q[8];
    CHECK_EQ_INT(elsh_qnet_quantize_input(&net, x, q), ELSH_OK);
    int want[8] = {-10, -9, -10, -11, -11, 127, -128, 127};
    for (int i = 0; i < 8; i++) CHECK_MSG(q[i] == want[i], "x=%g -> %d, want %d", (double)x[i], q[i], want[i]);
    float inf = 1e30f * 1e30f;
    x[3] = inf - inf; /* NaN */
    CHECK_EQ_INT(elsh_qnet_quantize_input(&net, x, q), ELSH_ERR_INPUT);
    x[3] = inf;
    CHECK_EQ_INT(elsh_qnet_quantize_input(&net, x, q), ELSH_ERR_INPUT);
    CHECK_EQ_INT(elsh_qnet_quantize_input(&net, NULL, q), ELSH_ERR_NULL);
}

/* The SSE2 input quantization writes the same bytes and returns the same status as the plain
 * reference: random values of every magnitude, the rounding ties, the clamps, and a NaN or an
 * infinity anywhere (the bytes before it written alike). */
void test_quantize_input_versions(void)
{
#if ELSH_USE_SSE2
    enum { N = 300 };
    static float x[N];
    static int8_t qc[N], qs[N];
    elsh_prng rng;
    elsh_prng_seed(&rng, 7);
    float inf = 1e30f * 1e30f;
    for (int trial = 0; trial < 400; trial++) {
        int32_t n = (int32_t)elsh_prng_below(&rng, N + 1);
        float inv = trial % 4 == 0 ? 1.0f : 255.0f / (float)(1u + elsh_prng_below(&rng, 1000));
        int32_t z = (int32_t)elsh_prng_below(&rng, 256) - 128;
        for (int32_t i = 0; i < n; i++) {
            uint32_t r = elsh_prng_u32(&rng);
            switch (r % 6) {
            case 0: x[i] = (float)((int32_t)(r >> 8) % 2000 - 1000) * 0.5f; break; /* ties */
            case 1: x[i] = (float)(r >> 8) * 1e-7f - 800.0f; break;
            case 2: x[i] = ((float)(r >> 9) - 4194304.0f) * 1e26f; break; /* overflow to inf */
            case 3: x[i] = (float)(r >> 20) * 1e-40f; break; /* subnormals */
            default: x[i] = (float)(r >> 8) / 16777216.0f * (r & 1 ? 1.0f : -1.0f); break;
            }
        }
        if (n > 0 && trial % 5 == 1) x[elsh_prng_below(&rng, (uint32_t)n)] = trial % 2 ? inf - inf : -inf;
        memset(qc, 0x55, sizeof qc);
        memset(qs, 0x55, sizeof qs);
        int rc = elsh_quantize_floats_c(x, n, inv, z, qc), rs = elsh_quantize_floats_sse2(x, n, inv, z, qs);
        CHECK_EQ_INT(rs, rc);
        CHECK_MSG(memcmp(qc, qs, sizeof qc) == 0, "trial %d: SSE2 quantization differs", trial);
    }
#endif
}

/* A dense 4 -> 3 hidden layer and a dense 3 -> 2 output layer built by hand. */
void test_qlayer_saturation_relu_and_wrap(void)
{
    static const int8_t w[12] = {127, 127, 127, 127, -127, -127, -127, -127, 1, -1, 0, 0};
    static const int32_t bias[3] = {0, 0, 5};
    static const int32_t mult[3] = {1073741824, 1073741824, 1073741824}; /* 0.5 */
    static const int8_t shift[3] = {0, 0, 0};
    static int32_t active[3];
    static int8_t out[3];
    static int16_t xbuf[4];
    elsh_qlayer L;
    memset(&L, 0, sizeof L);
    L.n_in = 4;
    L.n_out = 3;
    L.k = 3;
    L.weight_bits = 8;
    L.in_zero = -128;
    L.out_zero = -128;
    L.w8 = w;
    L.bias = bias;
    L.multiplier = mult;
    L.shift = shift;
    L.x = xbuf;
    L.active = active;
    L.out = out;
    const int8_t a[4] = {127, 127, 127, 127}; /* x = 255 each */
    elsh_counters ops;
    memset(&ops, 0, sizeof ops);
    elsh_qlayer_forward(&L, a, NULL, 4, 0, &ops);
    CHECK_EQ_INT(L.n_active, 3);
    CHECK_EQ_INT(out[0], 127);  /* 0.5 * 4 * 127 * 255 saturates at 127 */
    CHECK_EQ_INT(out[1], -128); /* negative: ReLU clamps at the zero point */
    /* 0.5 * (255 - 255 + 5) = 2.5 -> 3 (half up) -> 3 - 128 */
    CHECK_EQ_INT(out[2], -125);
    const int8_t zero_in[4] = {-128, -128, -128, -128}; /* real zero input */
    elsh_qlayer_forward(&L, zero_in, NULL, 4, 0, &ops);
    CHECK_EQ_INT(out[0], -128);
    CHECK_EQ_INT(out[2], 3 - 128); /* bias only */
    CHECK_EQ_INT(ops.last[ELSH_PHASE_FORWARD].mul, 2 * (12 + 3)); /* the layer adds to the counts */

    /* output layer, sparse input (2 of 4 inputs), int16 weights; bias near the int32 edge
     * wraps modulo 2^32 exactly like the reference (writers never produce this) */
    static const int16_t w16[8] = {1000, 0, -1000, 0, 0, 32767, 0, 32767};
    static const int32_t bias2[2] = {0, 2147483647};
    static const int32_t mult2[2] = {2147483647, 2147483647};
    static const int8_t shift2[2] = {0, 0};
    static int32_t logits[2], active2[2];
    static int16_t x2[4];
    elsh_qlayer O;
    memset(&O, 0, sizeof O);
    O.n_in = 4;
    O.n_out = 2;
    O.k = 2;
    O.is_output = 1;
    O.weight_bits = 16;
    O.in_zero = 0;
    O.w16 = w16;
    O.bias = bias2;
    O.multiplier = mult2;
    O.shift = shift2;
    O.x = x2;
    O.active = active2;
    O.out = out;
    O.logits = logits;
    const int32_t idx[2] = {0, 3};
    const int8_t vals[2] = {3, 1};
    elsh_qlayer_forward(&O, vals, idx, 2, 0, &ops);
    CHECK_EQ_INT(logits[0], 3000); /* 1000 * 3, times (2^31 - 1) / 2^31, rounded */
    /* 2147483647 + 32767 wraps to -2147450882; times ~1: -2147450881 after rounding */
    CHECK_EQ_INT(logits[1], elsh_requantize((int32_t)(uint32_t)(2147483647u + 32767u), 2147483647, 0));
}

static void csr_job(elsh_select_job *J, elsh_hash_params *hp, const uint32_t *codes, const uint32_t *off,
                    const uint16_t *ids, const uint16_t *pad, uint16_t *counts, uint16_t *touched,
                    int32_t *hist, int32_t *active, int32_t k, int32_t mode)
{
    memset(J, 0, sizeof *J);
    memset(hp, 0, sizeof *hp);
    hp->tables = 3;
    hp->n_buckets = 2;
    hp->select_mode = mode;
    J->hash = hp;
    J->n_out = 6;
    J->k = k;
    J->codes = codes;
    J->pad_order = pad;
    J->ids = ids;
    J->csr_offsets = off;
    J->counts = counts;
    J->touched = touched;
    J->hist = hist;
    J->active = active;
}

void test_select_csr_ties_padding_union(void)
{
    /* three tables over 6 neurons; bucket 0 / bucket 1 of each:
     * t0: {0,1,2} {3,4,5}   t1: {1,3} {0,2,4,5}   t2: {} {0,1,2,3,4,5} (an empty bucket) */
    static const uint32_t off[7] = {0, 3, 6, 8, 12, 12, 18};
    static const uint16_t ids[18] = {0, 1, 2, 3, 4, 5, 1, 3, 0, 2, 4, 5, 0, 1, 2, 3, 4, 5};
    static const uint16_t pad[6] = {4, 2, 0, 5, 1, 3};
    uint16_t counts[6] = {0}, touched[7];
    int32_t hist[4], active[6], n_cand;
    elsh_ops ops;
    memset(&ops, 0, sizeof ops);
    elsh_select_job J;
    elsh_hash_params hp;

    /* codes 0,0,1: counts 0:2 1:3 2:2 3:2 4:1 5:1 -> k=2 takes 1, then the lower id of the tie */
    uint32_t codes[3] = {0, 0, 1};
    csr_job(&J, &hp, codes, off, ids, pad, counts, touched, hist, active, 2, ELSH_SELECT_TOPK);
    CHECK_EQ_INT(elsh_select_run(&J, &n_cand, &ops), 2);
    CHECK_EQ_INT(active[0], 0);
    CHECK_EQ_INT(active[1], 1);
    CHECK_EQ_INT(n_cand, 6);

    /* codes 0,0,0: bucket 0 of table 2 is empty; candidates {0,1,2,3}; k=5 > 4 -> pad one */
    uint32_t codes2[3] = {0, 0, 0};
    csr_job(&J, &hp, codes2, off, ids, pad, counts, touched, hist, active, 5, ELSH_SELECT_TOPK);
    CHECK_EQ_INT(elsh_select_run(&J, &n_cand, &ops), 5);
    CHECK_EQ_INT(n_cand, 4);
    int seen[6] = {0};
    for (int q = 0; q < 5; q++) seen[active[q]] = 1;
    CHECK(seen[0] && seen[1] && seen[2] && seen[3]);
    CHECK(seen[4] + seen[5] == 1);
    for (int q = 1; q < 5; q++) CHECK(active[q] > active[q - 1]);
    for (int j = 0; j < 6; j++) CHECK_EQ_INT(counts[j], 0); /* scratch restored */

    /* union, k=3 with codes 0,0,1: table 0 bucket 0 gives 0,1,2 */
    csr_job(&J, &hp, codes, off, ids, pad, counts, touched, hist, active, 3, ELSH_SELECT_UNION);
    CHECK_EQ_INT(elsh_select_run(&J, &n_cand, &ops), 3);
    CHECK(active[0] == 0 && active[1] == 1 && active[2] == 2);
    for (int j = 0; j < 6; j++) CHECK_EQ_INT(counts[j], 0);
}

void test_model_open_first_checks(void)
{
    static uint8_t buf[256] __attribute__((aligned(64)));
    elsh_qnet net;
    size_t need;
    memset(buf, 0, sizeof buf);
    CHECK_EQ_INT(elsh_model_open(NULL, buf, sizeof buf, &need), ELSH_ERR_NULL);
    CHECK_EQ_INT(elsh_model_open(&net, buf, sizeof buf, &need), ELSH_FMT_MAGIC);
    memcpy(buf, "ELSH\r\n\x1a\n", 8);
    CHECK_EQ_INT(elsh_model_open(&net, buf, 40, &need), ELSH_FMT_TRUNCATED);
    CHECK_EQ_INT(elsh_model_open(&net, buf, 4, &need), ELSH_FMT_TRUNCATED);
    CHECK_EQ_INT(elsh_model_open(&net, buf + 8, 128, &need), ELSH_FMT_ALIGN);
    buf[8] = 1; /* version 1.0, but no byte-order mark */
    CHECK_EQ_INT(elsh_model_open(&net, buf, sizeof buf, &need), ELSH_FMT_BYTE_ORDER);
    buf[8] = 2;
    CHECK_EQ_INT(elsh_model_open(&net, buf, sizeof buf, &need), ELSH_FMT_VERSION);
    CHECK_EQ_INT(elsh_model_attach(&net, NULL, 0), ELSH_ERR_NULL);
    CHECK(strcmp(elsh_status_str(ELSH_FMT_TABLES), "unknown status") != 0);
    CHECK(strcmp(elsh_status_str(ELSH_FMT_TRUNCATED), "unknown status") != 0);
}

/* The dot products against a plain int64 sum taken modulo 2^32, on random rows with the
 * extreme values mixed in, every length 0..80 and a 784-wide row. The NEON and sdot versions
 * are checked too when the target compiles them (cross builds under QEMU). */
void test_dot_products_all_versions(void)
{
    static int8_t w8[1024], a[1024];
    static int16_t w16[1024], x[1024];
    static int32_t idx[1024];
    elsh_prng rng;
    elsh_prng_seed(&rng, 99);
    for (int trial = 0; trial < 6; trial++) {
        int32_t z = trial == 0 ? -128 : trial == 1 ? 127 : (int32_t)elsh_prng_below(&rng, 256) - 128;
        for (int i = 0; i < 1024; i++) {
            uint32_t r = elsh_prng_u32(&rng);
            w8[i] = (int8_t)(trial < 2 ? ((r & 1) ? 127 : -128) : (int32_t)(r >> 24) - 128);
            w16[i] = (int16_t)(trial < 2 ? ((r & 2) ? 32767 : -32768) : (int32_t)(r >> 16) - 32768);
            a[i] = (int8_t)(trial < 2 ? ((r & 4) ? 127 : -128) : (int32_t)((r >> 8) & 255) - 128);
            x[i] = (int16_t)(a[i] - z);
            idx[i] = (int32_t)((uint32_t)(i * 7 + trial) % 1024u);
        }
        for (int32_t n = 0; n <= 81; n++) {
            int32_t len = n == 81 ? 784 : n;
            int64_t d8 = 0, d16 = 0, s8 = 0, s16 = 0;
            for (int32_t i = 0; i < len; i++) {
                d8 += (int64_t)w8[i] * x[i];
                d16 += (int64_t)w16[i] * x[i];
                s8 += (int64_t)w8[idx[i]] * x[i];
                s16 += (int64_t)w16[idx[i]] * x[i];
            }
            CHECK_EQ_INT(elsh_dot_q8_dense_c(w8, x, len), (uint32_t)d8);
            CHECK_EQ_INT(elsh_dot_q16_dense_c(w16, x, len), (uint32_t)d16);
            CHECK_EQ_INT(elsh_dot_q8_sparse_c(w8, x, idx, len), (uint32_t)s8);
            CHECK_EQ_INT(elsh_dot_q16_sparse_c(w16, x, idx, len), (uint32_t)s16);
#if ELSH_USE_NEON
            CHECK_EQ_INT(elsh_dot_q8_dense_neon(w8, x, len), (uint32_t)d8);
#endif
#if ELSH_USE_SDOT
            CHECK_EQ_INT(elsh_dot_q8_dense_sdot(w8, a, z, len), (uint32_t)d8);
#endif
#if ELSH_X86_DISPATCH
            if (elsh_cpu_avx2()) CHECK_EQ_INT(elsh_dot_q8_dense_avx2(w8, x, len), (uint32_t)d8);
#endif
        }
    }
}

/* A failed open leaves nothing that attach could use (it used to keep the file pointer). */
void test_attach_after_failed_open_fails(void)
{
    static uint8_t buf[256] __attribute__((aligned(64)));
    static uint8_t arena[256] __attribute__((aligned(64)));
    elsh_qnet net;
    size_t need = 123;
    memset(buf, 0, sizeof buf);
    memcpy(buf, "ELSH\r\n\x1a\n", 8);
    buf[8] = 1;
    buf[12] = 1, buf[13] = 2, buf[14] = 3, buf[15] = 4; /* byte-order mark; header still bad */
    CHECK(elsh_model_open(&net, buf, sizeof buf, &need) < 0);
    CHECK_EQ_INT(need, 0);
    CHECK_EQ_INT(elsh_model_attach(&net, arena, sizeof arena), ELSH_ERR_STATE);
    CHECK(net.file == NULL);
    /* nothing to read either */
    elsh_qnet_summary info;
    elsh_qlayer_summary layer;
    int32_t n_active = 7;
    CHECK_EQ_INT(elsh_qnet_info(&net, &info), ELSH_ERR_STATE);
    CHECK_EQ_INT(elsh_qnet_layer_info(&net, 0, &layer), ELSH_ERR_STATE);
    CHECK_EQ_INT(elsh_qnet_info(NULL, &info), ELSH_ERR_NULL);
    CHECK(elsh_qnet_logits(&net) == NULL);
    CHECK(elsh_qnet_last_active(&net, 0, &n_active) == NULL);
    CHECK_EQ_INT(n_active, 0);
}
