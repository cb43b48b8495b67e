/* layer_f32_shared.c - the float layer's passes for training threads that share one copy of
 * the parameters asynchronously: the arithmetic of layer_f32_body.h with every load and store
 * of a weight, bias, Adagrad accumulator or momentum a relaxed atomic one (and the dirty flags
 * stored atomically). train_threads_f32.c's asynchronous workers run its forward pass and its
 * backprop (the deltas, nothing written) while the rows' owners step them
 * (layer_f32_owned.c); its backward pass, every thread stepping any row (Hogwild, where two
 * threads may lose each other's update), is no longer trained with: it stays as the measured
 * alternative (tools/bench/shared_step_micro.c).
 *
 * Why builtins and not <stdatomic.h>: the kernel is C99 (-std=c99 in native/Makefile, the cffi
 * build and every firmware target) and the parameters are plain float arrays in the arena.
 * GCC's and Clang's <stdatomic.h> implement atomic_load_explicit(p, memory_order_relaxed) as
 * __atomic_load(p, &v, __ATOMIC_RELAXED); calling the builtin on the plain float gives the
 * same machine code (an ordinary load or store on x86 and ARM) and the same guarantee (an
 * atomic access, never a data race; ThreadSanitizer models it as one) without declaring the
 * arena's arrays _Atomic or compiling one file as C11 (the helpers: param_relaxed_f32.h). Compilers without the builtins build
 * without threads (ELSH_THREADS 0) and never include this code. */
#include "internal.h"
#include "vec4_f32.h"
#include "param_relaxed_f32.h"

#include <math.h>
#include <string.h>

#if ELSH_THREADS

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
