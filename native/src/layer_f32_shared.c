/* layer_f32_shared.c - the float layer's forward and backward passes for training threads
 * that share one copy of the parameters asynchronously (Hogwild, train_threads_f32.c): the
 * arithmetic of layer_f32_body.h with every load and store of a weight, bias, Adagrad
 * accumulator or momentum a relaxed atomic one (and the dirty flags stored atomically).
 *
 * Why builtins and not <stdatomic.h>: the kernel is C99 (-std=c99 in native/Makefile, the cffi
 * build and every firmware target) and the parameters are plain float arrays in the arena.
 * GCC's and Clang's <stdatomic.h> implement atomic_load_explicit(p, memory_order_relaxed) as
 * __atomic_load(p, &v, __ATOMIC_RELAXED); calling the builtin on the plain float gives the
 * same machine code (an ordinary load or store on x86 and ARM) and the same guarantee (an
 * atomic access, never a data race; ThreadSanitizer models it as one) without declaring the
 * arena's arrays _Atomic or compiling one file as C11. Compilers without the builtins build
 * without threads (ELSH_THREADS 0) and never include this code. */
#include "internal.h"

#include <math.h>
#include <string.h>

#if ELSH_THREADS

#if defined(__SSE__)
#include <xmmintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

static inline float load_relaxed(const float *p)
{
    float v;
    __atomic_load(p, &v, __ATOMIC_RELAXED);
    return v;
}

static inline void store_relaxed(float *p, float v) { __atomic_store(p, &v, __ATOMIC_RELAXED); }

/* Blocks of parameters (layer_f32_body.h, "Blocks"): floats moved between the shared arrays
 * and a thread's scratch. On 64-bit targets two floats at a time, as one relaxed atomic 64-bit
 * load or store where the address is 8-byte aligned (one ordinary move on x86-64 and aarch64;
 * a float pair is then read or written whole, which relaxed atomics on each would allow too),
 * with a float before and after as needed. On 32-bit targets (armv7: a 64-bit atomic there is
 * ldrexd/strexd or a libatomic call) one float at a time. */
#define PARAM_BLOCK 32

#if __SIZEOF_POINTER__ == 8
typedef uint64_t __attribute__((may_alias)) float_pair;

static inline int pair_aligned(const float *p) { return ((uintptr_t)p & 7u) == 0; }

static inline void load_block_relaxed(float *dst, const float *src, int32_t n)
{
    int32_t k = 0;
    if (n > 0 && !pair_aligned(src)) {
        dst[0] = load_relaxed(src);
        k = 1;
    }
    for (; k + 2 <= n; k += 2) {
        uint64_t u = __atomic_load_n((const float_pair *)(const void *)(src + k), __ATOMIC_RELAXED);
        memcpy(dst + k, &u, 8);
    }
    if (k < n) dst[k] = load_relaxed(src + k);
}

static inline void store_block_relaxed(float *dst, const float *src, int32_t n)
{
    int32_t k = 0;
    if (n > 0 && !pair_aligned(dst)) {
        store_relaxed(dst, src[0]);
        k = 1;
    }
    for (; k + 2 <= n; k += 2) {
        uint64_t u;
        memcpy(&u, src + k, 8);
        __atomic_store_n((float_pair *)(void *)(dst + k), u, __ATOMIC_RELAXED);
    }
    if (k < n) store_relaxed(dst + k, src[k]);
}
#else
static inline void load_block_relaxed(float *dst, const float *src, int32_t n)
{
    for (int32_t k = 0; k < n; k++) dst[k] = load_relaxed(src + k);
}

static inline void store_block_relaxed(float *dst, const float *src, int32_t n)
{
    for (int32_t k = 0; k < n; k++) store_relaxed(dst + k, src[k]);
}
#endif

/* r[k] = sqrtf(g[k]) for a block: the IEEE square root instruction (SSE sqrtps, NEON fsqrt),
 * the value sqrtf returns, four at a time; elsewhere sqrtf */
static inline void sqrt_block(float *r, const float *g)
{
#if defined(__SSE__)
    for (int32_t k = 0; k < PARAM_BLOCK; k += 4) _mm_storeu_ps(r + k, _mm_sqrt_ps(_mm_loadu_ps(g + k)));
#elif defined(__aarch64__) && defined(__ARM_NEON)
    for (int32_t k = 0; k < PARAM_BLOCK; k += 4) vst1q_f32(r + k, vsqrtq_f32(vld1q_f32(g + k)));
#else
    for (int32_t k = 0; k < PARAM_BLOCK; k++) r[k] = sqrtf(g[k]);
#endif
}
#define SQRT_BLOCK(r, g) sqrt_block((r), (g))

/* A neuron's dirty flag set, stored only when it is not set yet: hot neurons are stepped by
 * every worker many times between two table updates, and a store each time would move the
 * flag's cache line between the cores where a load leaves it shared. */
static inline void mark_dirty_relaxed(uint8_t *p)
{
    if (!__atomic_load_n(p, __ATOMIC_RELAXED)) __atomic_store_n(p, (uint8_t)1, __ATOMIC_RELAXED);
}

#ifdef ELSH_PLANT_RACE /* tsan-selftest only: plain accesses, which ThreadSanitizer must report */
#define PARAM_LOAD(p) (*(p))
#define PARAM_STORE(p, v) (*(p) = (v))
#define MARK_DIRTY(p) (*(p) = 1)
#define PARAM_LOAD_BLOCK(dst, src, n) memcpy((dst), (src), (size_t)(n) * sizeof(float))
#define PARAM_STORE_BLOCK(dst, src, n) memcpy((dst), (src), (size_t)(n) * sizeof(float))
#else
#define PARAM_LOAD(p) load_relaxed(p)
#define PARAM_STORE(p, v) store_relaxed((p), (v))
#define MARK_DIRTY(p) mark_dirty_relaxed(p)
#define PARAM_LOAD_BLOCK(dst, src, n) load_block_relaxed((dst), (src), (n))
#define PARAM_STORE_BLOCK(dst, src, n) store_block_relaxed((dst), (src), (n))
#endif
#define LAYER_FN(name) name##_shared
#include "layer_f32_body.h"

#else
typedef int elsh_layer_f32_shared_unused; /* built without threads: nothing here */
#endif
