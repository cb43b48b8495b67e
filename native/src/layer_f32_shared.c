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

static inline float load_relaxed(const float *p)
{
    float v;
    __atomic_load(p, &v, __ATOMIC_RELAXED);
    return v;
}

static inline void store_relaxed(float *p, float v) { __atomic_store(p, &v, __ATOMIC_RELAXED); }

#ifdef ELSH_PLANT_RACE /* tsan-selftest only: plain accesses, which ThreadSanitizer must report */
#define PARAM_LOAD(p) (*(p))
#define PARAM_STORE(p, v) (*(p) = (v))
#define MARK_DIRTY(p) (*(p) = 1)
#else
#define PARAM_LOAD(p) load_relaxed(p)
#define PARAM_STORE(p, v) store_relaxed((p), (v))
#define MARK_DIRTY(p) __atomic_store_n((p), (uint8_t)1, __ATOMIC_RELAXED)
#endif
#define LAYER_FN(name) name##_shared
#include "layer_f32_body.h"

#else
typedef int elsh_layer_f32_shared_unused; /* built without threads: nothing here */
#endif
