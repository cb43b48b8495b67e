/* internal.h - helpers shared by the kernel's source files; not part of the public API. */
#ifndef EDGE_LSH_INTERNAL_H
#define EDGE_LSH_INTERNAL_H

#include "edge_lsh.h"

#include <float.h>

/* Bit-identical results need float arithmetic done in float (not x87 extended precision)
 * and no fused multiply-adds (build with -ffp-contract=off; clang also honours this pragma). */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0 && FLT_EVAL_METHOD != -1
#error "edge-lsh needs FLT_EVAL_METHOD == 0 (on 32-bit x86 build with -msse2 -mfpmath=sse)"
#endif
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

static inline void ops_accumulate(elsh_ops *dst, const elsh_ops *src)
{
    dst->mul += src->mul;
    dst->add += src->add;
    dst->cmp += src->cmp;
    dst->weight_bytes += src->weight_bytes;
    dst->table_bytes += src->table_bytes;
}

static inline void ops_clear(elsh_ops *o)
{
    o->mul = o->add = o->cmp = o->weight_bytes = o->table_bytes = 0;
}

/* e^x from float operations only: the same bits on every platform (train.c). */
float elsh_expf(float x);

/* Pointer to the first slot of bucket b of table t. */
static inline uint16_t *bucket_slots(const elsh_layer *L, int32_t t, uint32_t b)
{
    return L->bucket_ids + ((size_t)t * (size_t)L->n_buckets + b) * (size_t)L->capacity;
}

/* One selection: the input's codes, the tables (fixed-capacity buckets, or CSR when
 * csr_offsets is set) and scratch. counts[] must be all zero on entry; it is again on return. */
typedef struct {
    int32_t n_out, k, tables, n_buckets, select_mode;
    const uint32_t *codes;       /* [tables] the input's bucket in each table */
    const uint16_t *pad_order;   /* [n_out] permutation for padding */
    const uint16_t *ids;         /* bucket contents */
    const uint16_t *bucket_len;  /* fixed layout: [tables][n_buckets] */
    int32_t capacity;            /* fixed layout: slots per bucket */
    const uint32_t *csr_offsets; /* CSR layout: [tables * n_buckets + 1] */
    uint16_t *counts;            /* [n_out] scratch */
    uint16_t *touched;           /* [n_out + 1] scratch */
    int32_t *hist;               /* [tables + 1] scratch */
    int32_t *active;             /* [n_out] out: the active ids, ascending */
} elsh_select_job;

/* Returns the number of active neurons; *n_candidates gets how many collided. */
int32_t elsh_select_run(const elsh_select_job *job, int32_t *n_candidates, elsh_ops *ops);

/* Output layers only: insert `force` (>= 0) into the ascending active set if missing. */
void elsh_select_force(elsh_layer *L, int32_t force);

#endif
