/* test_prng.c - the PRNG: pinned known-answer streams and distribution checks.
 *
 * The known answers were produced by the kernel at the time these tests were written (and agree
 * with the pure-Python mirror edge_lsh/prng.py). They pin the stream: every random choice in a
 * saved model depends on it, so a change here must be deliberate. */
#include "check.h"
#include "edge_lsh.h"

void test_prng_known_answers(void)
{
    static const uint64_t seeds[3] = {0u, 1u, 12345u};
    static const uint32_t state[3][4] = {
        {0x7b1dcdafu, 0xe220a839u, 0x4d197e6fu, 0xa706dd2fu},
        {0x89025cc1u, 0x910a2decu, 0x7439611eu, 0x5e41ab08u},
        {0xa9d111a0u, 0x22118258u, 0x823fbd3fu, 0x040d6020u},
    };
    static const uint32_t out[3][8] = {
        {0xdec9045du, 0x2c756322u, 0x20284051u, 0xffd8a99eu, 0x53367c31u, 0x2f7d5a42u,
         0xe59f604bu, 0x0f2658d5u},
        {0x650941bau, 0x4fec7bfeu, 0xa0332e1fu, 0x50915b0cu, 0xc1ea3f83u, 0xfe5ef863u,
         0xe6ded569u, 0xd158ca64u},
        {0x89f4befdu, 0xed9c7e58u, 0x0d01c38du, 0x941a6838u, 0xfadb3ea3u, 0xb5319ad2u,
         0xf0a7effcu, 0xc4419b57u},
    };
    for (int s = 0; s < 3; s++) {
        elsh_prng rng;
        elsh_prng_seed(&rng, seeds[s]);
        for (int w = 0; w < 4; w++)
            CHECK_MSG(rng.s[w] == state[s][w], "seed %d state word %d: %08x != %08x", s, w,
                      (unsigned)rng.s[w], (unsigned)state[s][w]);
        for (int i = 0; i < 8; i++) {
            uint32_t v = elsh_prng_u32(&rng);
            CHECK_MSG(v == out[s][i], "seed %llu output %d: 0x%08x != 0x%08x",
                      (unsigned long long)seeds[s], i, (unsigned)v, (unsigned)out[s][i]);
        }
    }
}

void test_prng_mix64_known_answers(void)
{
    /* splitmix64 of state 0 is a well-known constant */
    CHECK(elsh_mix64(0u) == 0xe220a8397b1dcdafull);
    CHECK(elsh_mix64(1u) == 0x910a2dec89025cc1ull);
    CHECK(elsh_mix64(0u) != elsh_mix64(1u));
}

void test_prng_derived_known_answers(void)
{
    elsh_prng rng;
    /* uniform = (u32 >> 8) * 2^-24: exactly representable, compare exactly */
    elsh_prng_seed(&rng, 12345u);
    for (int i = 0; i < 4; i++) {
        static const uint32_t raw[4] = {0x89f4befdu, 0xed9c7e58u, 0x0d01c38du, 0x941a6838u};
        float u = elsh_prng_uniform(&rng);
        CHECK(u == (float)(raw[i] >> 8) * (1.0f / 16777216.0f));
    }
    elsh_prng_seed(&rng, 12345u);
    static const float normal[4] = {0.166961893f, 2.41514373f, 1.16212189f, -0.0759234875f};
    for (int i = 0; i < 4; i++) CHECK_NEAR(elsh_prng_normal(&rng), normal[i], 1e-7);
    elsh_prng_seed(&rng, 12345u);
    static const uint32_t below10[8] = {9, 2, 5, 4, 9, 4, 8, 3};
    for (int i = 0; i < 8; i++) CHECK_EQ_INT(elsh_prng_below(&rng, 10u), below10[i]);
}

void test_prng_reseed_repeats(void)
{
    elsh_prng a, b;
    elsh_prng_seed(&a, 987654321u);
    elsh_prng_seed(&b, 987654321u);
    for (int i = 0; i < 1000; i++) CHECK_EQ_INT(elsh_prng_u32(&a), elsh_prng_u32(&b));
    elsh_prng_seed(&b, 987654322u);
    int same = 0;
    for (int i = 0; i < 1000; i++) same += elsh_prng_u32(&a) == elsh_prng_u32(&b);
    CHECK(same < 5);
    /* the state is never all-zero, whatever the seed */
    for (uint64_t s = 0; s < 64; s++) {
        elsh_prng_seed(&a, s);
        CHECK((a.s[0] | a.s[1] | a.s[2] | a.s[3]) != 0u);
    }
}

void test_prng_below_range(void)
{
    static const uint32_t ns[] = {1u, 2u, 3u, 5u, 7u, 10u, 255u, 1000u, 65535u, 65536u,
                                  0x7FFFFFFFu, 0x80000001u, 0xFFFFFFFEu, 0xFFFFFFFFu};
    elsh_prng rng;
    elsh_prng_seed(&rng, 42u);
    for (size_t q = 0; q < sizeof(ns) / sizeof(ns[0]); q++) {
        uint32_t n = ns[q], max_seen = 0;
        for (int i = 0; i < 2000; i++) {
            uint32_t r = elsh_prng_below(&rng, n);
            CHECK_MSG(r < n, "below(%u) returned %u", (unsigned)n, (unsigned)r);
            if (r > max_seen) max_seen = r;
        }
        if (n == 1u) CHECK_EQ_INT(max_seen, 0);
        if (n > 1u && n <= 10u) CHECK_EQ_INT(max_seen, n - 1u);
        if (n >= 0x80000001u) CHECK(max_seen >= n / 2u); /* the high half is reachable */
    }
}

void test_prng_below_uniform(void)
{
    /* chi-square over 7 bins, 70000 draws: 6 degrees of freedom, 99.99% quantile ~ 27.9 */
    enum { BINS = 7, DRAWS = 70000 };
    int32_t hist[BINS] = {0};
    elsh_prng rng;
    elsh_prng_seed(&rng, 7u);
    for (int i = 0; i < DRAWS; i++) hist[elsh_prng_below(&rng, BINS)]++;
    double expect = (double)DRAWS / BINS, chi2 = 0.0;
    for (int b = 0; b < BINS; b++) chi2 += ((double)hist[b] - expect) * ((double)hist[b] - expect) / expect;
    CHECK_MSG(chi2 < 28.0, "chi2 %.2f over 7 bins", chi2);
}

void test_prng_uniform_range(void)
{
    elsh_prng rng;
    elsh_prng_seed(&rng, 3u);
    double sum = 0.0, sum2 = 0.0, lo = 1.0, hi = 0.0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        float u = elsh_prng_uniform(&rng);
        CHECK_MSG(u >= 0.0f && u < 1.0f, "uniform out of [0,1): %.9g", (double)u);
        sum += u;
        sum2 += (double)u * (double)u;
        if (u < lo) lo = u;
        if (u > hi) hi = u;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    CHECK_NEAR(mean, 0.5, 0.005);
    CHECK_NEAR(var, 1.0 / 12.0, 0.002);
    CHECK(lo < 0.001);
    CHECK(hi > 0.999);
    /* the largest possible value is still below 1 */
    CHECK((float)(0xFFFFFFFFu >> 8) * (1.0f / 16777216.0f) < 1.0f);
}

void test_prng_normal_moments(void)
{
    elsh_prng rng;
    elsh_prng_seed(&rng, 11u);
    const int n = 100000;
    double sum = 0.0, sum2 = 0.0, sum4 = 0.0;
    int within1 = 0;
    for (int i = 0; i < n; i++) {
        double z = elsh_prng_normal(&rng);
        CHECK_MSG(fabs(z) <= 2.0 * 1.7320508 + 1e-6, "normal out of the Irwin-Hall range: %g", z);
        sum += z;
        sum2 += z * z;
        sum4 += z * z * z * z;
        within1 += fabs(z) < 1.0;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    CHECK_NEAR(mean, 0.0, 0.015);
    CHECK_NEAR(var, 1.0, 0.02);
    /* Irwin-Hall(4) rescaled: kurtosis 3 - 6/(5*4) = 2.7; P(|z|<1) close to the normal's 0.683 */
    CHECK_NEAR(sum4 / n, 2.7, 0.08);
    CHECK_NEAR((double)within1 / n, 0.683, 0.02);
}
