/* internal.h - helpers shared by the kernel's source files; not part of the public API. */
#ifndef EDGE_LSH_INTERNAL_H
#define EDGE_LSH_INTERNAL_H

#include "edge_lsh.h"

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

/* Pointer to the first slot of bucket b of table t. */
static inline uint16_t *bucket_slots(const elsh_layer *L, int32_t t, uint32_t b)
{
    return L->bucket_ids + ((size_t)t * (size_t)L->n_buckets + b) * (size_t)L->capacity;
}

/* Output layers only: insert `force` (>= 0) into the ascending active set if missing. */
void elsh_select_force(elsh_layer *L, int32_t force);

#endif
