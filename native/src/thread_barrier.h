/* thread_barrier.h - the barrier of the kernel's multi-threaded calls (train_threads_f32.c,
 * train_q_threads.c): pthreads where ELSH_THREADS (internal.h), else a no-op (one thread).
 * Included by those files only; static functions, so the kernel keeps no .data/.bss. */
#ifndef ELSH_THREAD_BARRIER_H
#define ELSH_THREAD_BARRIER_H

#include "internal.h"

#if ELSH_THREADS
#include <pthread.h>
#endif

/* ---------------------------------------------------------------- barrier */

/* A barrier that spins a little before it sleeps: on an idle machine all workers arrive within
 * microseconds of each other and nobody sleeps (a sleep and a wake-up cost tens of microseconds,
 * and the asynchronous mode passes one at every table update, e.g. every 20 samples); on a busy
 * one a waiter gives its core back after about BARRIER_SPINS checks. */
#define BARRIER_SPINS 4000

typedef struct {
#if ELSH_THREADS
    pthread_mutex_t mutex;
    pthread_cond_t cond;
#endif
    int32_t parties;     /* threads that must arrive (atomic: lowered when a start fails) */
    int32_t waiting;     /* arrived in this round (atomic) */
    uint32_t round;      /* rounds completed (atomic; written under the mutex) */
} barrier;

#if ELSH_THREADS
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__) || (defined(__ARM_ARCH) && __ARM_ARCH >= 7)
    __asm__ __volatile__("yield");
#endif
}
#endif

static inline void barrier_wait(barrier *b)
{
#if ELSH_THREADS
    /* the round cannot end before this thread arrives, so read it first */
    uint32_t round = __atomic_load_n(&b->round, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&b->waiting, 1, __ATOMIC_ACQ_REL) >= __atomic_load_n(&b->parties, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&b->waiting, 0, __ATOMIC_RELAXED);
        pthread_mutex_lock(&b->mutex);
        __atomic_store_n(&b->round, round + 1u, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->mutex);
        return;
    }
    for (int i = 0; i < BARRIER_SPINS; i++) {
        if (__atomic_load_n(&b->round, __ATOMIC_ACQUIRE) != round) return;
        cpu_relax();
    }
    pthread_mutex_lock(&b->mutex);
    while (__atomic_load_n(&b->round, __ATOMIC_ACQUIRE) == round) pthread_cond_wait(&b->cond, &b->mutex);
    pthread_mutex_unlock(&b->mutex);
#else
    (void)b;
#endif
}

#endif
