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
#include "vec4_f32.h"

#include <math.h>
#include <string.h>

#if ELSH_THREADS

static inline float load_relaxed(const float *p)
{
    float v;
    __atomic_load(p, &v, __ATOMIC_RELAXED);
    return v;
}

static inline void store_relaxed(float *p, float v) { __atomic_store(p, &v, __ATOMIC_RELAXED); }

/* Vectors of parameters (layer_f32_body.h, "Vectors"): four floats loaded into or stored from
 * a vector register at a time. On 64-bit targets, where a row is 8-byte aligned, as two
 * relaxed atomic 64-bit loads or stores (one ordinary move each on x86-64 and aarch64; a float
 * pair is then read or written whole, which relaxed atomics on each float allow too);
 * otherwise (32-bit targets, where a 64-bit atomic is ldrexd/strexd or a libatomic call, and
 * rows of an odd width) as four 32-bit ones. */
#if __SIZEOF_POINTER__ == 8
typedef uint64_t __attribute__((may_alias)) float_pair;
typedef uint64_t pair2 __attribute__((vector_size(16)));

static inline int pairs_fit(const float *p) { return ((uintptr_t)p & 7u) == 0; }
#else
static inline int pairs_fit(const float *p) { return (void)p, 0; }
#endif

/* p[0..3], with 64-bit loads when `paired` (p 8-byte aligned) */
static inline vec4 load4_relaxed(const float *p, int paired)
{
#if __SIZEOF_POINTER__ == 8
    if (paired) {
        pair2 u = {__atomic_load_n((const float_pair *)(const void *)p, __ATOMIC_RELAXED),
                   __atomic_load_n((const float_pair *)(const void *)(p + 2), __ATOMIC_RELAXED)};
        return (vec4)u;
    }
#else
    (void)paired;
#endif
    vec4 v = {load_relaxed(p), load_relaxed(p + 1), load_relaxed(p + 2), load_relaxed(p + 3)};
    return v;
}

static inline void store4_relaxed(float *p, vec4 v, int paired)
{
#if __SIZEOF_POINTER__ == 8
    if (paired) {
        pair2 u = (pair2)v;
        __atomic_store_n((float_pair *)(void *)p, u[0], __ATOMIC_RELAXED);
        __atomic_store_n((float_pair *)(void *)(p + 2), u[1], __ATOMIC_RELAXED);
        return;
    }
#else
    (void)paired;
#endif
    store_relaxed(p, v[0]);
    store_relaxed(p + 1, v[1]);
    store_relaxed(p + 2, v[2]);
    store_relaxed(p + 3, v[3]);
}

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
#define PARAM_PAIRS_FIT(p) 0
#define PARAM_LOAD4(p, paired) ((void)(paired), load4_plain(p))
#define PARAM_STORE4(p, v, paired) ((void)(paired), memcpy((p), &(v), sizeof(vec4)))
#else
#define PARAM_LOAD(p) load_relaxed(p)
#define PARAM_STORE(p, v) store_relaxed((p), (v))
#define MARK_DIRTY(p) mark_dirty_relaxed(p)
#define PARAM_PAIRS_FIT(p) pairs_fit(p)
#define PARAM_LOAD4(p, paired) load4_relaxed((p), (paired))
#define PARAM_STORE4(p, v, paired) store4_relaxed((p), (v), (paired))
#endif
#define SQRT4(v) sqrt4(v)
#define LAYER_FN(name) name##_shared
#include "layer_f32_body.h"

#else
typedef int elsh_layer_f32_shared_unused; /* built without threads: nothing here */
#endif
