/* prng.c - the one PRNG behind every random choice: xoshiro128** seeded by splitmix64.
 * 32-bit state words keep it cheap on Cortex-M; only integer ops, so every platform (and the
 * Python mirror, edge_lsh's prng module) produces the same stream. elsh_seed_stream derives
 * the stream of each layer and purpose from the network's seed, for both numeric paths.
 *
 * xoshiro's all-zero state is a fixed point: it would return 0 forever, and every loop that
 * rejects values (elsh_prng_below, distinct indices) would never end. Seeding never produces
 * it; a zeroed or corrupted elsh_prng that holds it is re-seeded (seed 0) by the first draw.
 * No other state ever reaches zero, so every stream from a seed is unchanged. */
#include "internal.h"

uint64_t elsh_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void elsh_prng_seed(elsh_prng *rng, uint64_t seed)
{
    uint64_t a = elsh_mix64(seed);
    uint64_t b = elsh_mix64(a);
    rng->s[0] = (uint32_t)a;
    rng->s[1] = (uint32_t)(a >> 32);
    rng->s[2] = (uint32_t)b;
    rng->s[3] = (uint32_t)(b >> 32);
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0) rng->s[0] = 1; /* never all-zero */
}

static uint32_t rotl32(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

uint32_t elsh_prng_u32(elsh_prng *rng)
{
    uint32_t *s = rng->s;
    if ((s[0] | s[1] | s[2] | s[3]) == 0) elsh_prng_seed(rng, 0); /* the fixed point: see above */
    uint32_t result = rotl32(s[1] * 5u, 7) * 9u;
    uint32_t t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl32(s[3], 11);
    return result;
}

uint32_t elsh_prng_below(elsh_prng *rng, uint32_t n)
{
    if (n == 0) return 0; /* [0, 0) is empty: defined as 0, drawing nothing */
    /* Reject the (2^32 mod n) lowest values so every residue is equally likely: each draw is
     * rejected with probability below 1/2 (the all-zero state, whose draws would all be 0, is
     * re-seeded by elsh_prng_u32). */
    uint32_t threshold = (0u - n) % n;
    uint32_t r;
    do {
        r = elsh_prng_u32(rng);
    } while (r < threshold);
    return r % n;
}

float elsh_prng_uniform(elsh_prng *rng)
{
    return (float)(elsh_prng_u32(rng) >> 8) * (1.0f / 16777216.0f);
}

float elsh_prng_normal(elsh_prng *rng)
{
    /* Irwin-Hall: the sum of 4 uniforms has mean 2 and variance 1/3. The integer sum of four
     * 22-bit values fits float's 24-bit mantissa, so the conversion is exact: no libm, and the
     * same value on every platform. */
    uint32_t sum = 0;
    for (int i = 0; i < 4; i++) sum += elsh_prng_u32(rng) >> 10;
    float u = (float)sum * (1.0f / 4194304.0f);
    return (u - 2.0f) * 1.7320508f;
}

/* Independent streams per layer and purpose, so changing one config value (say L) does not
 * reshuffle the initial weights. Model files rely on this derivation (FORMAT.md 5.4). */
void elsh_seed_stream(elsh_prng *rng, uint64_t seed, int32_t layer, uint64_t purpose)
{
    elsh_prng_seed(rng, elsh_mix64(seed ^ (purpose << 32)) ^ (uint64_t)(layer + 1));
}
