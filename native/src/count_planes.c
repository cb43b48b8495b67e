/* count_planes.c - bit-sliced collision counting (count_planes.h) in portable C, a 64-bit word
 * at a time: the reference the SIMD versions (count_planes_simd.c) must match bit for bit. */
#include "internal.h"

#define VEC uint64_t
#define VWORDS 1
#define VZERO() ((uint64_t)0)
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VAND(a, b) ((a) & (b))
#define VOR(a, b) ((a) | (b))
#define VXOR(a, b) ((a) ^ (b))
#define COUNT_PLANES elsh_count_planes_c
#include "count_planes.h"

/* Levels of a bit-sliced count of up to L: at least the 4 of the adder tree. */
int32_t elsh_bits_levels(int32_t L)
{
    int32_t levels = 0;
    while (levels < 31 && ((int32_t)1 << levels) <= L) levels++;
    return levels < 4 ? 4 : levels;
}
