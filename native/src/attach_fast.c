/* attach_fast.c - the optional additions of elsh_model_attach_fast (edge_lsh.h), laid out after
 * the model's own arena, so that arena and its checks are unchanged; a caller that does not ask
 * for them gets the compact kernel, with the same outputs.
 *   bitmaps  for each table t and bucket b of a top-k layer with K <= 5 bits, bitmap_words
 *            64-bit words whose bit j says neuron j is in bucket b of table t (from the CSR
 *            tables, stored or built), and the scratch of the bit-sliced counts (count_planes.h)
 *   hash_t   a SimHash or ternary layer's L * K projections as a dense int8 matrix, transposed
 *            ([hash_dim][hash_cols]): SimHash its int8 coefficients, ternary +-1 at the
 *            projection's (distinct) indices; hash_norm the largest sum of |coefficients|
 *   row_sums on targets with sdot, each int8 row's sum: the dense dot product then needs one
 *            sdot per 16 weights instead of two (dot_q_neon.c) */
#include "internal.h"

#include <string.h>

static int has_bitmaps(const elsh_qlayer *L)
{
    return L->use_lsh && L->hash.select_mode == ELSH_SELECT_TOPK && L->hash.bits <= ELSH_BITMAP_MAX_BITS;
}

static int32_t bitmap_words(const elsh_qlayer *L)
{
    int32_t vec_bits = 64 * ELSH_BITMAP_WORD_ALIGN;
    return (L->n_out + vec_bits - 1) / vec_bits * ELSH_BITMAP_WORD_ALIGN;
}

static int has_hash_matrix(const elsh_qlayer *L)
{
    return L->use_lsh && (L->hash.family == ELSH_HASH_SIMHASH || L->hash.family == ELSH_HASH_TERNARY);
}

/* The buffers, planned (base NULL) or carved: per layer its bitmaps and planes, then its
 * hash matrix and sums. */
static void fast_layout(elsh_qnet *net, elsh_arena *c)
{
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_qlayer *L = &net->layers[l];
        if (has_bitmaps(L)) {
            uint64_t W = (uint64_t)bitmap_words(L);
            uint64_t n_bitmaps = (uint64_t)L->hash.tables * (uint64_t)L->hash.n_buckets;
            L->bitmap_words = (int32_t)W;
            L->bitmaps = (const uint64_t *)elsh_arena_take(c, n_bitmaps * W, 8);
            L->planes = (uint64_t *)elsh_arena_take(c, (uint64_t)(elsh_bits_levels(L->hash.tables) + 2) * W, 8);
        }
#if ELSH_USE_SDOT
        if (L->weight_bits == 8) L->row_sums = (const int32_t *)elsh_arena_take(c, (uint64_t)L->n_out, 4);
#endif
        if (has_hash_matrix(L)) {
            uint64_t cols = ((uint64_t)L->hash.tables * (uint64_t)L->hash.bits + 15u) / 16u * 16u;
            L->hash_cols = (int32_t)cols;
            L->hash_t = (const int8_t *)elsh_arena_take(c, (uint64_t)L->hash.hash_dim * cols, 1);
            L->hash_sums = (int32_t *)elsh_arena_take(c, cols, 4);
        }
    }
}

static void build_hash_matrix(elsh_qlayer *L)
{
    int32_t d = L->hash.hash_dim, P = L->hash.tables * L->hash.bits, cols = L->hash_cols;
    int8_t *m = (int8_t *)(uintptr_t)L->hash_t;
    memset(m, 0, (size_t)d * (size_t)cols);
    uint32_t norm = 0;
    for (int32_t p = 0; p < P; p++) {
        uint32_t sum = 0; /* <= 128 * hash_dim < 2^32 */
        if (L->hash.family == ELSH_HASH_SIMHASH) {
            const int8_t *r = L->proj + (size_t)p * (size_t)d;
            for (int32_t i = 0; i < d; i++) {
                m[(size_t)i * (size_t)cols + (size_t)p] = r[i];
                sum += (uint32_t)(r[i] < 0 ? -r[i] : r[i]);
            }
        } else { /* indices within a projection are distinct (checked or drawn so) */
            int32_t nnz = L->hash.ternary_nnz;
            for (int32_t q = 0; q < nnz; q++) {
                size_t e = (size_t)p * (size_t)nnz + (size_t)q;
                m[(size_t)L->tern_idx[e] * (size_t)cols + (size_t)p] = L->tern_sign[e] > 0 ? 1 : -1;
            }
            sum = (uint32_t)nnz;
        }
        if (sum > norm) norm = sum;
    }
    L->hash_norm = norm;
}

int elsh_model_fast_bytes(const elsh_qnet *net, size_t *extra_bytes)
{
    if (!net || !extra_bytes) return ELSH_ERR_NULL;
    if (!net->file) return ELSH_ERR_STATE;
    elsh_qnet plan = *net; /* planning writes NULL pointers into the layers: a copy */
    elsh_arena c;
    elsh_arena_start(&c, NULL, ELSH_ARENA_LIMIT);
    fast_layout(&plan, &c);
    size_t bytes;
    if (elsh_arena_size(&c, &bytes)) return ELSH_ERR_ARENA;
    *extra_bytes = bytes;
    return ELSH_OK;
}

static void build_bitmaps(elsh_qlayer *L)
{
    size_t W = (size_t)L->bitmap_words, nb = (size_t)L->hash.tables * (size_t)L->hash.n_buckets;
    uint64_t *bits = (uint64_t *)(uintptr_t)L->bitmaps;
    memset(bits, 0, nb * W * sizeof(uint64_t));
    for (size_t b = 0; b < nb; b++) {
        uint64_t *row = bits + b * W;
        for (uint32_t e = L->tab_offsets[b]; e < L->tab_offsets[b + 1]; e++) {
            uint32_t j = L->tab_ids[e]; /* < n_out: checked at open or built so */
            row[j / 64u] |= (uint64_t)1 << (j % 64u);
        }
    }
}

static void build_row_sums(elsh_qlayer *L)
{
    int32_t *sums = (int32_t *)(uintptr_t)L->row_sums;
    for (int32_t j = 0; j < L->n_out; j++) {
        const int8_t *row = L->w8 + (size_t)j * (size_t)L->n_in;
        uint32_t s = 0; /* modulo 2^32, as the dot products */
        for (int32_t i = 0; i < L->n_in; i++) s += (uint32_t)(int32_t)row[i];
        sums[j] = (int32_t)s;
    }
}

int elsh_model_attach_fast(elsh_qnet *net, void *arena, size_t arena_bytes)
{
    if (!net || !arena) return ELSH_ERR_NULL;
    if (!net->file || net->attached) return ELSH_ERR_STATE;
    size_t extra, base = net->arena_bytes;
    int rc = elsh_model_fast_bytes(net, &extra);
    if (rc) return rc;
    /* the bitmaps start at the first 64-byte boundary after the model's arena */
    size_t start = (base + ELSH_ARENA_ALIGN - 1u) / ELSH_ARENA_ALIGN * ELSH_ARENA_ALIGN;
    if (start < base || extra > SIZE_MAX - start || arena_bytes < start + extra) return ELSH_ERR_ARENA;
    rc = elsh_model_attach(net, arena, base);
    if (rc) return rc;
    elsh_arena c;
    elsh_arena_start(&c, (unsigned char *)arena + start, extra);
    fast_layout(net, &c);
    if (c.overflow) return ELSH_ERR_ARENA; /* cannot happen: planned above */
    for (int32_t l = 0; l < net->n_layers; l++) {
        if (net->layers[l].bitmaps) build_bitmaps(&net->layers[l]);
        if (net->layers[l].hash_t) build_hash_matrix(&net->layers[l]);
        if (net->layers[l].row_sums) build_row_sums(&net->layers[l]);
    }
    return ELSH_OK;
}
