/* count_planes.h - bit-sliced collision counting, written once for every vector width.
 *
 * The input's bucket in table t is a bitmap over the layer's neurons (bit j of word w: neuron
 * 64 w + j is in that bucket). A neuron's collision count is how many of the L bitmaps have its
 * bit set: a column sum, kept bit-sliced: plane p holds bit p of every neuron's count. Planes
 * 0-3 take the bitmaps 16 at a time through a carry-save adder tree (Harley and Seal's
 * popcount, applied per bit position: 15 adders of 5 logic operations for 16 bitmaps), whose
 * carries of weight 16 ripple into the planes above; the last L mod 16 bitmaps ripple in one
 * at a time. Integer bit operations: every vector width gives the same planes, bit for bit.
 *
 * Included (no guard) by count_planes.c, count_planes_simd.c and count_planes_avx2.c after they
 * define (count_planes_avx2_ops.h holds the AVX2 set)
 *   VEC           the vector type (uint64_t, __m128i, __m256i, uint64x2_t)
 *   VWORDS        64-bit words in a VEC
 *   VZERO()       an all-zero VEC
 *   VLOAD(p)      the VEC at p (uint64_t *, aligned to VWORDS words)
 *   VSTORE(p, v)  store v at p
 *   VAND VOR VXOR bitwise operations
 *   COUNT_PLANES  the name of the function to define
 * The function: planes[p * W + w] for p < levels (elsh_bits_levels(L)), w < W (a multiple of
 * VWORDS); the input's bitmap in table t starts at word offsets[t] of bitmaps. */

#define CSA(h, l, a, b, c)                                                                   \
    do {                                                                                     \
        VEC u_ = VXOR(a, b);                                                                 \
        h = VOR(VAND(a, b), VAND(u_, c));                                                    \
        l = VXOR(u_, c);                                                                     \
    } while (0)

void COUNT_PLANES(const uint64_t *bitmaps, const int32_t *offsets, int32_t L, int32_t W, uint64_t *planes)
{
    int32_t levels = elsh_bits_levels(L), n_hi = levels - 4;
    for (int32_t w = 0; w < W; w += VWORDS) {
        const uint64_t *base = bitmaps + w;
#define MASK(t) VLOAD(base + offsets[t])
        VEC ones = VZERO(), twos = VZERO(), fours = VZERO(), eights = VZERO();
        VEC hi[ELSH_BITS_MAX_LEVELS - 4];
        for (int32_t p = 0; p < n_hi; p++) hi[p] = VZERO();
        int32_t t = 0;
        for (; t + 16 <= L; t += 16) {
            VEC twosA, twosB, foursA, foursB, eightsA, eightsB, sixteens;
            CSA(twosA, ones, ones, MASK(t), MASK(t + 1));
            CSA(twosB, ones, ones, MASK(t + 2), MASK(t + 3));
            CSA(foursA, twos, twos, twosA, twosB);
            CSA(twosA, ones, ones, MASK(t + 4), MASK(t + 5));
            CSA(twosB, ones, ones, MASK(t + 6), MASK(t + 7));
            CSA(foursB, twos, twos, twosA, twosB);
            CSA(eightsA, fours, fours, foursA, foursB);
            CSA(twosA, ones, ones, MASK(t + 8), MASK(t + 9));
            CSA(twosB, ones, ones, MASK(t + 10), MASK(t + 11));
            CSA(foursA, twos, twos, twosA, twosB);
            CSA(twosA, ones, ones, MASK(t + 12), MASK(t + 13));
            CSA(twosB, ones, ones, MASK(t + 14), MASK(t + 15));
            CSA(foursB, twos, twos, twosA, twosB);
            CSA(eightsB, fours, fours, foursA, foursB);
            CSA(sixteens, eights, eights, eightsA, eightsB);
            for (int32_t p = 0; p < n_hi; p++) { /* ripple the 16s up */
                VEC s = hi[p];
                hi[p] = VXOR(s, sixteens);
                sixteens = VAND(s, sixteens);
            }
        }
        for (; t < L; t++) { /* the rest one at a time: a ripple-carry add of one bit */
            VEC carry = MASK(t), s;
            s = ones, ones = VXOR(s, carry), carry = VAND(s, carry);
            s = twos, twos = VXOR(s, carry), carry = VAND(s, carry);
            s = fours, fours = VXOR(s, carry), carry = VAND(s, carry);
            s = eights, eights = VXOR(s, carry), carry = VAND(s, carry);
            for (int32_t p = 0; p < n_hi; p++) {
                s = hi[p];
                hi[p] = VXOR(s, carry);
                carry = VAND(s, carry);
            }
        }
#undef MASK
        VSTORE(planes + w, ones);
        VSTORE(planes + (size_t)W + w, twos);
        VSTORE(planes + 2u * (size_t)W + w, fours);
        VSTORE(planes + 3u * (size_t)W + w, eights);
        for (int32_t p = 0; p < n_hi; p++) VSTORE(planes + (size_t)(4 + p) * (size_t)W + w, hi[p]);
    }
}

#undef CSA
#undef VEC
#undef VWORDS
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VAND
#undef VOR
#undef VXOR
#undef COUNT_PLANES
