/* param_relaxed_f32.h - relaxed atomic loads and stores of float parameters, one at a time and
 * four at a time into a vec4 (vec4_f32.h), for the layer variants that threads share:
 * layer_f32_shared.c (every parameter access) and layer_f32_owned.c (the stores of weights and
 * biases that other threads read meanwhile). Why GCC/Clang builtins and not <stdatomic.h>: see
 * layer_f32_shared.c. Included only where ELSH_THREADS. */
#ifndef ELSH_PARAM_RELAXED_F32_H
#define ELSH_PARAM_RELAXED_F32_H

#include "internal.h"
#include "vec4_f32.h"

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

/* Pair accesses straight from and into a vector register (x86-64 and little-endian aarch64,
 * except under ThreadSanitizer): GCC 12 compiles a relaxed atomic 64-bit access of a vector's
 * half through a general register (movq %xmm, %rax; mov %rax, (mem); and a shuffle for the
 * upper half), three instructions where one would do. These are the single instructions:
 * movlps / movhps (x86-64) and str d / st1 {v.d}[1] (aarch64) store one half of the register,
 * movq / movhps and ldr d / ld1 {v.d}[1] load one. Each is one 8-byte access to an
 * 8-byte-aligned address, which both architectures make single-copy atomic (Intel SDM vol. 3A,
 * "Guaranteed Atomic Operations"; AMD APM vol. 2 7.3.2; Arm ARM B2.2.1) -- the guarantee, and
 * the very access, that the relaxed atomic 64-bit load or store gives on these targets. The
 * compiler never splits or tears one, and keeps it in order with the plain accesses to the same
 * floats (the memory operands say which 8 bytes it reads or writes); like relaxed atomics, two
 * loads of the same pair with nothing between them may become one. Big-endian aarch64 is left
 * out: there ldr d puts the two floats of a pair in the other lanes. ThreadSanitizer cannot see
 * inside assembly, so its builds (make -C native test-tsan) keep the __atomic builtins, and so
 * do other targets and any build with -DELSH_PAIR_BUILTINS: the same algorithm, every access
 * visible to it. test_threads_relaxed_vec4_moves_bits checks which way a build went;
 * tools/bench/shared_step_micro.c measures both. */
#if defined(__SANITIZE_THREAD__)
#define ELSH_PAIR_ASM 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ELSH_PAIR_ASM 0
#endif
#endif
#ifndef ELSH_PAIR_ASM
#if __SIZEOF_POINTER__ == 8 && !defined(ELSH_PAIR_BUILTINS) && \
    (defined(__x86_64__) || (defined(__aarch64__) && defined(__ARM_NEON) && defined(__AARCH64EL__)))
#define ELSH_PAIR_ASM 1
#else
#define ELSH_PAIR_ASM 0
#endif
#endif

/* p[0..3], with 64-bit loads when `paired` (p 8-byte aligned) */
static inline vec4 load4_relaxed(const float *p, int paired)
{
#if __SIZEOF_POINTER__ == 8
    if (paired) {
#if ELSH_PAIR_ASM && defined(__x86_64__)
        vec4 v;
        __asm__("movq %1, %0\n\tmovhps %2, %0"
                : "=&x"(v)
                : "m"(*(const float_pair *)(const void *)p), "m"(*(const float_pair *)(const void *)(p + 2)));
        return v;
#elif ELSH_PAIR_ASM
        vec4 v;
        __asm__("ldr %d0, %1\n\tld1 {%0.d}[1], %2"
                : "=&w"(v)
                : "m"(*(const float_pair *)(const void *)p), "Q"(*(const float_pair *)(const void *)(p + 2)));
        return v;
#else
        pair2 u = {__atomic_load_n((const float_pair *)(const void *)p, __ATOMIC_RELAXED),
                   __atomic_load_n((const float_pair *)(const void *)(p + 2), __ATOMIC_RELAXED)};
        return (vec4)u;
#endif
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
#if ELSH_PAIR_ASM && defined(__x86_64__)
        __asm__("movlps %2, %0\n\tmovhps %2, %1"
                : "=m"(*(float_pair *)(void *)p), "=m"(*(float_pair *)(void *)(p + 2))
                : "x"(v));
#elif ELSH_PAIR_ASM
        __asm__("str %d2, %0\n\tst1 {%2.d}[1], %1"
                : "=m"(*(float_pair *)(void *)p), "=Q"(*(float_pair *)(void *)(p + 2))
                : "w"(v));
#else
        pair2 u = (pair2)v;
        __atomic_store_n((float_pair *)(void *)p, u[0], __ATOMIC_RELAXED);
        __atomic_store_n((float_pair *)(void *)(p + 2), u[1], __ATOMIC_RELAXED);
#endif
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

#endif
