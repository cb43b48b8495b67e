/* arena.c - the one allocator behind both arenas (the float network's and a model's scratch).
 *
 * A layout function asks for its buffers in a fixed order, each at the next multiple of
 * ELSH_ARENA_ALIGN bytes. It runs twice over the same code: first with no memory (planning:
 * only the sizes add up), then with the caller's memory (carving: the same offsets, now as
 * pointers). So the layout cannot drift from the plan.
 *
 * Every request is checked before it is added: count * elem_size and the new end must stay
 * within the arena's limit (at most ELSH_ARENA_LIMIT, far below 2^64, so no sum can wrap). A
 * request that does not fit sets `overflow`; it and every later request return NULL, and the
 * caller sees the flag in elsh_arena_size. */
#include "internal.h"

void elsh_arena_start(elsh_arena *a, void *base, uint64_t limit)
{
    a->base = (unsigned char *)base;
    a->used = 0;
    a->limit = limit < ELSH_ARENA_LIMIT ? limit : ELSH_ARENA_LIMIT;
    a->overflow = 0;
}

void *elsh_arena_take(elsh_arena *a, uint64_t count, uint64_t elem_size)
{
    if (a->overflow) return NULL;
    /* used <= limit <= 2^40: rounding it up cannot wrap */
    uint64_t start = (a->used + (ELSH_ARENA_ALIGN - 1u)) & ~(uint64_t)(ELSH_ARENA_ALIGN - 1u);
    uint64_t room = start <= a->limit ? a->limit - start : 0;
    if (start > a->limit || (elem_size != 0 && count > room / elem_size)) {
        a->overflow = 1;
        return NULL;
    }
    a->used = start + count * elem_size;
    return a->base ? (void *)(a->base + start) : NULL;
}

int elsh_arena_size(const elsh_arena *a, size_t *bytes)
{
    if (a->overflow || a->used > (uint64_t)SIZE_MAX) return -1;
    *bytes = (size_t)a->used;
    return 0;
}
