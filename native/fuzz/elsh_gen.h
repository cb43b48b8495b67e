/* elsh_gen.h - structure-aware .elsh files, for the fuzzer (fuzz_model.c -g) and the C tests.
 *
 * A model is described by gen_model (the NET, LAYER and PREPROCESS fields, the header's
 * tables flag, which optional sections to write). gen_sections() fills every section with
 * valid random contents (weights, requantization, hash functions with distinct indices,
 * padding orders that are permutations, CSR tables with no neuron twice in a table, membership
 * bits), and gen_assemble() lays them out as export/FORMAT.md says, sizes consistent and the
 * CRC valid. A test or the fuzzer then breaks one rule (gen_break) and knows the status the
 * reader must return. gen_verdict() is the reader's work-limit arithmetic written again from
 * FORMAT.md 5.1 and 5.8 (per-layer limits: ELSH_FMT_LAYER; per-file totals: ELSH_FMT_LIMITS),
 * so that the generated files straddle the limits and the reader's arithmetic is checked by
 * a second implementation.
 *
 * Header-only (static functions), C99, no dependency but edge_lsh.h. */
#ifndef ELSH_GEN_H
#define ELSH_GEN_H

#include "edge_lsh.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the model description */

typedef struct {
    uint32_t n_in, n_out, k;
    uint8_t use_lsh, is_output, weight_bits, family, bits, select_mode, hash_source, center;
    uint16_t tables, pool, hash_dim, ternary_nnz, dwta_bin, dwta_per_table;
    int32_t in_zero, out_zero;
    float in_scale, out_scale;
    int membership; /* write a MEMBERSHIP section (LSH layer, tables not stored) */
    int table_fill; /* stored tables: percent of the neurons in each table (0: 70 or 100) */
} gen_layer;

typedef struct {
    uint32_t n_in, n_layers, n_classes;
    float inv_scale;
    uint64_t seed;
    uint32_t flags;         /* header flags: bit 0, tables stored */
    gen_layer layer[ELSH_MAX_LAYERS];
    int preprocess;         /* write a PREPROCESS section */
    float pre[3];           /* input_divisor, input_min, input_max */
    uint32_t info_bytes;    /* an INFO section of this many bytes (0: none) */
} gen_model;

enum {
    GEN_NET = 1, GEN_LAYER, GEN_WEIGHTS, GEN_BIAS, GEN_REQUANT, GEN_HASH_COEF, GEN_PAD_ORDER,
    GEN_CENTER, GEN_TABLES, GEN_INFO, GEN_MEMBERSHIP, GEN_PREPROCESS
};
#define GEN_NO_LAYER 0xFFFFFFFFu

static inline uint32_t gen_below(elsh_prng *r, uint32_t n) { return elsh_prng_below(r, n); }
static inline uint32_t gen_range(elsh_prng *r, uint32_t lo, uint32_t hi) { return lo + gen_below(r, hi - lo + 1u); }
static inline int gen_chance(elsh_prng *r, uint32_t percent) { return gen_below(r, 100) < percent; }

static inline uint32_t gen_log2(uint32_t v)
{
    uint32_t b = 0;
    while ((1u << (b + 1)) <= v) b++;
    return b;
}

/* Fill in the derived fields of an LSH layer (hash_dim, dwta_per_table). */
static inline void gen_derive(gen_layer *L)
{
    L->hash_dim = (uint16_t)((L->n_in + L->pool - 1u) / L->pool);
    uint32_t per = L->family == ELSH_HASH_DWTA && L->dwta_bin >= 2
                       ? (L->bits + gen_log2(L->dwta_bin) - 1u) / gen_log2(L->dwta_bin)
                       : 0u;
    L->dwta_per_table = (uint16_t)per;
}

/* ---------------------------------------------------------------- the limits, again (FORMAT.md 5.1, 5.8) */

typedef struct {
    uint64_t hash, scan, draws, build; /* one layer, per-layer limits */
} gen_layer_work;

static inline uint64_t gen_draws_distinct(uint64_t m, uint64_t d) { return 2u * m <= d ? 2u * m : 12u * d; }

static inline gen_layer_work gen_work(const gen_layer *L)
{
    gen_layer_work w = {0, 0, 0, 0};
    uint64_t T = L->tables, K = L->bits, d = L->hash_dim;
    if (!L->use_lsh) return w;
    if (L->family == ELSH_HASH_SIMHASH) {
        w.hash = T * K * d;
        w.draws = T * K * d;
    } else if (L->family == ELSH_HASH_TERNARY) {
        w.hash = T * K * L->ternary_nnz;
        w.draws = T * K * gen_draws_distinct(L->ternary_nnz, d);
    } else {
        w.hash = T * L->dwta_per_table * L->dwta_bin * 17u;
        w.draws = T * L->dwta_per_table * gen_draws_distinct(L->dwta_bin, d);
    }
    w.scan = T * L->n_out;
    w.build = 2u * (uint64_t)L->n_out * (w.hash + L->n_in);
    return w;
}

/* The arena elsh_model_open asks for: the buffers of model_io.c's layout, each at the next
 * multiple of 64 bytes. */
static inline void gen_take(uint64_t *used, uint64_t bytes) { *used = ((*used + 63u) & ~(uint64_t)63u) + bytes; }

static inline uint64_t gen_arena(const gen_model *m)
{
    uint64_t used = m->n_in;
    for (uint32_t l = 0; l < m->n_layers; l++) {
        const gen_layer *L = &m->layer[l];
        uint64_t n_out = L->n_out, T = L->tables, TK = (uint64_t)L->tables * L->bits;
        gen_take(&used, 2u * L->n_in);
        gen_take(&used, 4u * n_out);
        gen_take(&used, n_out);
        if (L->is_output) gen_take(&used, 4u * n_out);
        if (!L->use_lsh) continue;
        gen_take(&used, 4u * L->hash_dim);
        gen_take(&used, 4u * T);
        gen_take(&used, 4u * (T + 1u));
        gen_take(&used, 2u * n_out);
        gen_take(&used, 2u * (n_out + 1u));
        if (L->hash_source == 0) {
            if (L->family == ELSH_HASH_SIMHASH) {
                gen_take(&used, TK * L->hash_dim);
            } else if (L->family == ELSH_HASH_TERNARY) {
                gen_take(&used, 2u * TK * L->ternary_nnz);
                gen_take(&used, TK * L->ternary_nnz);
            } else {
                gen_take(&used, 2u * T * L->dwta_per_table * L->dwta_bin);
            }
            gen_take(&used, 2u * n_out);
        }
        if (!(m->flags & 1u)) {
            gen_take(&used, 4u * (T * (1u << L->bits) + 1u));
            gen_take(&used, 2u * T * n_out);
        }
    }
    return used;
}

/* A file's totals: arena, operations per input, operations at attach (FORMAT.md 5.8). */
typedef struct {
    uint64_t arena, input, load;
} gen_totals;

static inline gen_totals gen_model_totals(const gen_model *m)
{
    gen_totals t = {gen_arena(m), 0, 0};
    for (uint32_t l = 0; l < m->n_layers; l++) {
        const gen_layer *L = &m->layer[l];
        gen_layer_work w = gen_work(L);
        t.input += (uint64_t)L->n_in * L->n_out;
        if (!L->use_lsh) continue;
        t.input += L->n_in + w.hash + w.scan;
        t.load += (L->hash_source == 0 ? w.draws : 0u) + (m->flags & 1u ? 0u : w.build);
    }
    return t;
}

static inline uint64_t gen_limit(uint64_t base, uint64_t per_byte, uint64_t f)
{
    uint64_t scaled = f > UINT64_MAX / per_byte ? UINT64_MAX : per_byte * f;
    return scaled > base ? scaled : base;
}

static inline int gen_within(const gen_totals *t, uint64_t f)
{
    return t->arena <= gen_limit(ELSH_LIMIT_ARENA_BASE, ELSH_LIMIT_ARENA_PER_BYTE, f) &&
           t->input <= gen_limit(ELSH_LIMIT_INPUT_WORK_BASE, ELSH_LIMIT_INPUT_WORK_PER_BYTE, f) &&
           t->load <= gen_limit(ELSH_LIMIT_LOAD_WORK_BASE, ELSH_LIMIT_LOAD_WORK_PER_BYTE, f);
}

/* What the reader must say about a valid description written as a file of f bytes: ELSH_OK,
 * ELSH_FMT_LAYER (a per-layer limit, the first layer that breaks one), or ELSH_FMT_LIMITS. */
static inline int gen_verdict(const gen_model *m, uint64_t f)
{
    for (uint32_t l = 0; l < m->n_layers; l++) {
        const gen_layer *L = &m->layer[l];
        gen_layer_work w = gen_work(L);
        if (!L->use_lsh) continue;
        if (w.hash > ((uint64_t)1 << 24) || w.scan > ((uint64_t)1 << 24) ||
            (L->hash_source == 0 && w.draws > ((uint64_t)1 << 24)) ||
            (!(m->flags & 1u) && w.build > ((uint64_t)1 << 28)))
            return ELSH_FMT_LAYER;
    }
    gen_totals t = gen_model_totals(m);
    return gen_within(&t, f) ? ELSH_OK : ELSH_FMT_LIMITS;
}

/* ---------------------------------------------------------------- sections */

#define GEN_MAX_SECTIONS 128
typedef struct {
    uint32_t type, layer, flags;
    size_t size;
    uint8_t *data;
} gen_section;

typedef struct {
    gen_section s[GEN_MAX_SECTIONS];
    int n;
    uint32_t header_flags;
} gen_file;

static inline void gen_put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void gen_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void gen_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void gen_putf(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    gen_put32(p, u);
}
static inline uint32_t gen_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t gen_get64(const uint8_t *p) { return (uint64_t)gen_get32(p) | ((uint64_t)gen_get32(p + 4) << 32); }

static inline void *gen_alloc(size_t n)
{
    void *p = calloc(n ? n : 1, 1);
    if (!p) abort();
    return p;
}

/* Append a section of `size` zero bytes; returns its payload. */
static inline uint8_t *gen_add(gen_file *f, uint32_t type, uint32_t layer, size_t size, uint32_t flags)
{
    if (f->n >= GEN_MAX_SECTIONS) abort();
    gen_section *s = &f->s[f->n++];
    s->type = type;
    s->layer = layer;
    s->flags = flags;
    s->size = size;
    s->data = (uint8_t *)gen_alloc(size);
    return s->data;
}

static inline void gen_free(gen_file *f)
{
    for (int i = 0; i < f->n; i++) free(f->s[i].data);
    f->n = 0;
}

static inline gen_section *gen_find(gen_file *f, uint32_t type, uint32_t layer)
{
    for (int i = 0; i < f->n; i++)
        if (f->s[i].type == type && f->s[i].layer == layer) return &f->s[i];
    return NULL;
}

/* n distinct values below d (n <= d) into out, from the permutation scratch perm[d]. */
static inline void gen_distinct(elsh_prng *r, uint16_t *perm, uint32_t d, uint32_t n, uint8_t *out)
{
    for (uint32_t q = 0; q < n; q++) {
        uint32_t j = q + gen_below(r, d - q);
        uint16_t t = perm[q];
        perm[q] = perm[j];
        perm[j] = t;
        gen_put16(out + 2u * q, perm[q]);
    }
}

static inline void gen_layer_record(const gen_layer *L, uint8_t *p)
{
    gen_put32(p, L->n_in);
    gen_put32(p + 4, L->n_out);
    gen_put32(p + 8, L->k);
    p[12] = L->use_lsh;
    p[13] = L->is_output;
    p[14] = L->weight_bits;
    p[15] = L->family;
    p[16] = L->bits;
    p[17] = L->select_mode;
    p[18] = L->hash_source;
    p[19] = L->center;
    gen_put16(p + 20, L->tables);
    gen_put16(p + 22, L->pool);
    gen_put16(p + 24, L->hash_dim);
    gen_put16(p + 26, L->ternary_nnz);
    gen_put16(p + 28, L->dwta_bin);
    gen_put16(p + 30, L->dwta_per_table);
    gen_put32(p + 32, (uint32_t)L->in_zero);
    gen_put32(p + 36, (uint32_t)L->out_zero);
    gen_putf(p + 40, L->in_scale);
    gen_putf(p + 44, L->out_scale);
}

/* CSR tables: each table holds a random subset of the neurons (or all of them) in random
 * buckets, no neuron twice. */
static inline void gen_tables(elsh_prng *r, const gen_layer *L, gen_file *f, uint32_t l)
{
    uint64_t B = 1u << L->bits, nb = (uint64_t)L->tables * B;
    uint32_t *bucket = (uint32_t *)gen_alloc((size_t)L->tables * L->n_out * sizeof(uint32_t));
    uint32_t *count = (uint32_t *)gen_alloc((size_t)(nb + 1u) * sizeof(uint32_t));
    uint64_t n_ids = 0;
    uint32_t fill = L->table_fill ? (uint32_t)L->table_fill : gen_chance(r, 50) ? 100u : 70u;
    for (uint32_t t = 0; t < L->tables; t++)
        for (uint32_t j = 0; j < L->n_out; j++) {
            uint32_t b = gen_chance(r, fill) ? gen_below(r, (uint32_t)B) : 0xFFFFFFFFu;
            bucket[(size_t)t * L->n_out + j] = b;
            if (b != 0xFFFFFFFFu) {
                count[t * B + b + 1u]++;
                n_ids++;
            }
        }
    for (uint64_t i = 0; i < nb; i++) count[i + 1] += count[i];
    size_t raw = (size_t)(4u * (nb + 1u) + 2u * n_ids), size = (raw + 3u) & ~(size_t)3u;
    uint8_t *p = gen_add(f, GEN_TABLES, l, size, 1);
    for (uint64_t i = 0; i <= nb; i++) gen_put32(p + 4u * i, count[i]);
    uint8_t *ids = p + 4u * (nb + 1u);
    for (uint32_t t = 0; t < L->tables; t++)
        for (uint32_t j = 0; j < L->n_out; j++) {
            uint32_t b = bucket[(size_t)t * L->n_out + j];
            if (b != 0xFFFFFFFFu) gen_put16(ids + 2u * count[t * B + b]++, j);
        }
    free(bucket);
    free(count);
}

/* Every section of the model, in the writer's order, with valid random contents. */
static inline void gen_sections(const gen_model *m, elsh_prng *r, gen_file *f)
{
    f->n = 0;
    f->header_flags = m->flags;
    uint8_t *p = gen_add(f, GEN_NET, GEN_NO_LAYER, 32, 1);
    gen_put32(p, m->n_in);
    gen_put32(p + 4, m->n_layers);
    gen_put32(p + 8, m->n_classes);
    gen_putf(p + 12, m->inv_scale);
    gen_put64(p + 16, m->seed);
    for (uint32_t l = 0; l < m->n_layers; l++) gen_layer_record(&m->layer[l], gen_add(f, GEN_LAYER, l, 64, 1));
    for (uint32_t l = 0; l < m->n_layers; l++) {
        const gen_layer *L = &m->layer[l];
        size_t n_out = L->n_out, nw = n_out * L->n_in;
        size_t wbytes = nw * (L->weight_bits / 8u);
        p = gen_add(f, GEN_WEIGHTS, l, wbytes, 1);
        for (size_t i = 0; i < wbytes; i += 4) { /* any int8 or int16 is a valid weight */
            uint32_t v = elsh_prng_u32(r);
            for (size_t q = 0; q < 4 && i + q < wbytes; q++) p[i + q] = (uint8_t)(v >> (8 * q));
        }
        p = gen_add(f, GEN_BIAS, l, 4u * n_out, 1);
        for (size_t j = 0; j < n_out; j++) gen_put32(p + 4u * j, elsh_prng_u32(r) >> gen_below(r, 32));
        p = gen_add(f, GEN_REQUANT, l, 5u * n_out, 1);
        for (size_t j = 0; j < n_out; j++) {
            gen_put32(p + 4u * j, elsh_prng_u32(r) >> 1);
            p[4u * n_out + j] = (uint8_t)(int8_t)((int32_t)gen_below(r, 62) - 31);
        }
        if (!L->use_lsh) continue;
        uint32_t T = L->tables, K = L->bits, d = L->hash_dim;
        if (L->hash_source == 1) {
            uint16_t *perm = (uint16_t *)gen_alloc((size_t)d * sizeof(uint16_t));
            for (uint32_t i = 0; i < d; i++) perm[i] = (uint16_t)i;
            if (L->family == ELSH_HASH_SIMHASH) {
                p = gen_add(f, GEN_HASH_COEF, l, (size_t)T * K * d, 1);
                for (size_t i = 0; i < (size_t)T * K * d; i++) p[i] = (uint8_t)(int8_t)((int32_t)gen_below(r, 255) - 127);
            } else if (L->family == ELSH_HASH_TERNARY) {
                size_t mcount = (size_t)T * K * L->ternary_nnz;
                p = gen_add(f, GEN_HASH_COEF, l, 3u * mcount, 1);
                for (size_t g = 0; g < (size_t)T * K; g++) gen_distinct(r, perm, d, L->ternary_nnz, p + 2u * g * L->ternary_nnz);
                for (size_t i = 0; i < mcount; i++) p[2u * mcount + i] = (uint8_t)(gen_below(r, 2) ? 1 : 0xFF);
            } else {
                size_t groups = (size_t)T * L->dwta_per_table;
                p = gen_add(f, GEN_HASH_COEF, l, 2u * groups * L->dwta_bin, 1);
                for (size_t g = 0; g < groups; g++) gen_distinct(r, perm, d, L->dwta_bin, p + 2u * g * L->dwta_bin);
            }
            free(perm);
            uint16_t *pad = (uint16_t *)gen_alloc(n_out * sizeof(uint16_t));
            for (uint32_t j = 0; j < n_out; j++) pad[j] = (uint16_t)j;
            p = gen_add(f, GEN_PAD_ORDER, l, 2u * n_out, 1);
            gen_distinct(r, pad, (uint32_t)n_out, (uint32_t)n_out, p);
            free(pad);
        }
        if (L->center) {
            p = gen_add(f, GEN_CENTER, l, 4u * d, 1);
            for (uint32_t g = 0; g < d; g++)
                gen_put32(p + 4u * g, (uint32_t)((int32_t)gen_below(r, 2u * (1u << 24) + 1u) - (1 << 24)));
        }
        if (m->flags & 1u) {
            gen_tables(r, L, f, l);
        } else if (L->membership) {
            size_t row = (n_out + 7u) / 8u;
            p = gen_add(f, GEN_MEMBERSHIP, l, row * T, 1);
            for (size_t t = 0; t < T; t++)
                for (size_t j = 0; j < n_out; j++)
                    if (gen_chance(r, 60)) p[t * row + j / 8u] |= (uint8_t)(1u << (j % 8u));
        }
    }
    if (m->preprocess) {
        p = gen_add(f, GEN_PREPROCESS, GEN_NO_LAYER, 16, 0);
        for (int i = 0; i < 3; i++) gen_putf(p + 4 * i, m->pre[i]);
    }
    if (m->info_bytes) {
        p = gen_add(f, GEN_INFO, GEN_NO_LAYER, m->info_bytes, 0);
        memset(p, ' ', m->info_bytes);
        memcpy(p, "{}", m->info_bytes < 2 ? m->info_bytes : 2);
    }
}

/* The file: a 64-byte header, the section table, each section at the next multiple of 64
 * (zero padding), the CRC filled in. Returns a malloc'd buffer of *size bytes. */
static inline uint8_t *gen_assemble(const gen_file *f, size_t *size)
{
    size_t pos = 64u + 32u * (size_t)f->n;
    size_t *off = (size_t *)gen_alloc((size_t)(f->n + 1) * sizeof(size_t));
    for (int i = 0; i < f->n; i++) {
        pos = (pos + 63u) & ~(size_t)63u;
        off[i] = pos;
        pos += f->s[i].size;
    }
    uint8_t *b = (uint8_t *)gen_alloc(pos);
    static const uint8_t magic[8] = {0x45, 0x4C, 0x53, 0x48, 0x0D, 0x0A, 0x1A, 0x0A};
    memcpy(b, magic, 8);
    int minor = 0;
    for (int i = 0; i < f->n; i++)
        if (f->s[i].type == GEN_PREPROCESS) minor = 1;
    gen_put16(b + 8, 1);
    gen_put16(b + 10, (uint32_t)minor);
    gen_put32(b + 12, 0x04030201u);
    gen_put32(b + 16, 64);
    gen_put32(b + 20, (uint32_t)f->n);
    gen_put64(b + 24, 64);
    gen_put64(b + 32, pos);
    gen_put32(b + 44, f->header_flags);
    for (int i = 0; i < f->n; i++) {
        uint8_t *e = b + 64u + 32u * (size_t)i;
        gen_put32(e, f->s[i].type);
        gen_put32(e + 4, f->s[i].layer);
        gen_put64(e + 8, off[i]);
        gen_put64(e + 16, f->s[i].size);
        gen_put32(e + 24, f->s[i].flags);
        if (f->s[i].size) memcpy(b + off[i], f->s[i].data, f->s[i].size);
    }
    free(off);
    gen_put32(b + 40, elsh_crc32(0, b, pos));
    *size = pos;
    return b;
}

/* The CRC again after patching the bytes of a file (the header's file_bytes, capped to size). */
static inline void gen_fix_crc(uint8_t *b, size_t size)
{
    uint64_t n = gen_get64(b + 32);
    gen_put32(b + 40, 0);
    gen_put32(b + 40, elsh_crc32(0, b, n < size ? (size_t)n : size));
}

/* ---------------------------------------------------------------- random valid models */

static inline float gen_scale(elsh_prng *r) { return (float)gen_range(r, 1, 1000) / 256.0f; }

/* A random LSH configuration for layer L (n_in, n_out set). Small unless big. */
static inline void gen_random_hash(elsh_prng *r, gen_layer *L, int big, int tables_stored)
{
    L->use_lsh = 1;
    L->pool = (uint16_t)(gen_chance(r, 50) ? 1u : gen_range(r, 1, L->n_in));
    L->family = (uint8_t)gen_below(r, 3);
    gen_derive(L);
    if (L->hash_dim < 2 && L->family == ELSH_HASH_DWTA) L->family = ELSH_HASH_TERNARY;
    L->bits = (uint8_t)gen_range(r, 1, big && !tables_stored ? 15 : 8);
    L->tables = (uint16_t)gen_range(r, 1, big ? 1024 : 24);
    if (tables_stored && (uint64_t)L->tables << L->bits > 65536u) L->bits = 1;
    L->select_mode = (uint8_t)gen_below(r, 2);
    L->center = (uint8_t)gen_below(r, 2);
    L->k = gen_range(r, 1, L->n_out);
    L->ternary_nnz = L->family == ELSH_HASH_TERNARY ? (uint16_t)gen_range(r, 1, L->hash_dim) : 0;
    L->dwta_bin = 0;
    if (L->family == ELSH_HASH_DWTA) {
        uint32_t max_log = gen_log2(L->hash_dim < 256 ? L->hash_dim : 256u);
        L->dwta_bin = (uint16_t)(1u << gen_range(r, 1, max_log));
    }
    gen_derive(L);
    gen_layer_work w = gen_work(L);
    /* stored hash functions only while small (the file holds them) */
    uint64_t coef = L->family == ELSH_HASH_SIMHASH ? w.draws : w.hash;
    L->hash_source = (uint8_t)(coef <= 60000u && gen_chance(r, 50));
    L->membership = !tables_stored && gen_chance(r, 50);
}

/* A random valid model: 1-4 layers (1-8 when big), widths up to 48 (up to 1100 when big). */
static inline void gen_random_model(elsh_prng *r, gen_model *m, int big)
{
    memset(m, 0, sizeof *m);
    m->n_layers = gen_range(r, 1, big ? 8 : 4);
    m->n_in = gen_range(r, 1, big && gen_chance(r, 20) ? 1100 : 48);
    m->flags = gen_below(r, 2);
    m->inv_scale = gen_scale(r);
    m->seed = ((uint64_t)elsh_prng_u32(r) << 32) | elsh_prng_u32(r);
    uint32_t n_in = m->n_in;
    int32_t zero = (int32_t)gen_below(r, 256) - 128;
    float scale = gen_scale(r);
    for (uint32_t l = 0; l < m->n_layers; l++) {
        gen_layer *L = &m->layer[l];
        int last = l == m->n_layers - 1;
        L->n_in = n_in;
        L->n_out = last ? gen_range(r, 2, 48) : gen_range(r, 1, big && gen_chance(r, 20) ? 1100 : 48);
        L->k = L->n_out;
        L->is_output = (uint8_t)last;
        L->weight_bits = (uint8_t)(gen_chance(r, 80) ? 8 : 16);
        L->in_zero = zero;
        L->in_scale = scale;
        L->out_zero = last ? 0 : (int32_t)gen_below(r, 256) - 128;
        L->out_scale = gen_scale(r);
        if (gen_chance(r, 65)) gen_random_hash(r, L, big, (int)(m->flags & 1u));
        zero = L->out_zero;
        scale = L->out_scale;
        n_in = L->n_out;
    }
    m->n_classes = m->layer[m->n_layers - 1].n_out;
    if (gen_chance(r, 50)) {
        m->preprocess = 1;
        m->pre[0] = (float)gen_range(r, 1, 100000) / 64.0f;
        m->pre[1] = -(float)gen_below(r, 1000) / 8.0f;
        m->pre[2] = m->pre[1] + (float)gen_below(r, 1000) / 8.0f;
    }
    m->info_bytes = gen_chance(r, 30) ? gen_range(r, 1, 300) : 0;
}

/* The file of a description: sections filled from r, laid out. */
static inline uint8_t *gen_file_of(const gen_model *m, elsh_prng *r, size_t *size)
{
    gen_file f;
    gen_sections(m, r, &f);
    uint8_t *b = gen_assemble(&f, size);
    gen_free(&f);
    return b;
}

/* ---------------------------------------------------------------- one rule broken */

/* The breaks gen_broken() knows, by number. Each names the rule and gives the status the
 * reader must return (some are legal changes: the expected status is then the verdict of
 * the changed file, usually ELSH_OK). */
enum {
    GEN_BREAK_NONE,             /* the valid file */
    GEN_BREAK_MAGIC,
    GEN_BREAK_VERSION_MAJOR,
    GEN_BREAK_VERSION_MINOR,    /* legal: a newer minor */
    GEN_BREAK_BYTE_ORDER,
    GEN_BREAK_HEADER_FIELD,     /* header_bytes, n_sections, table offset, flags, reserved */
    GEN_BREAK_CRC,
    GEN_BREAK_FILE_BYTES,       /* the header says more bytes than there are */
    GEN_BREAK_SHORT,            /* one byte short, the header and the CRC agree */
    GEN_BREAK_ENTRY_FIELD,      /* a section-table entry's flags or reserved field */
    GEN_BREAK_ENTRY_ALIGN,
    GEN_BREAK_ENTRY_BOUNDS,     /* past the end, inside the section table, overlapping */
    GEN_BREAK_DROP_REQUIRED,
    GEN_BREAK_DROP_OPTIONAL,    /* legal */
    GEN_BREAK_DUPLICATE,
    GEN_BREAK_UNKNOWN_OPTIONAL, /* legal */
    GEN_BREAK_UNKNOWN_REQUIRED,
    GEN_BREAK_BEYOND_LAYERS,    /* a layer's section for a layer the network does not have */
    GEN_BREAK_NET_WITH_LAYER,   /* a network section given a layer */
    GEN_BREAK_UNUSED_SECTION,   /* a section the layer does not use */
    GEN_BREAK_SIZE,             /* a section one byte longer or shorter */
    GEN_BREAK_NET_FIELD,
    GEN_BREAK_PREPROCESS_FIELD,
    GEN_BREAK_PREPROCESS_LEGAL, /* legal: min == max, marked required */
    GEN_BREAK_LAYER_FIELD,
    GEN_BREAK_REQUANT,
    GEN_BREAK_HASH_COEF,
    GEN_BREAK_PAD_ORDER,
    GEN_BREAK_CENTER,
    GEN_BREAK_TABLES,
    GEN_BREAK_MEMBERSHIP,
    GEN_BREAK_BIG_HASHING,      /* an LSH layer made big: per-layer limits and totals decide */
    GEN_BREAK_STRADDLE,         /* a layer's L one below or at the first L over a total */
    GEN_N_BREAKS
};

static inline const char *gen_break_name(int which)
{
    static const char *const names[GEN_N_BREAKS] = {
    "valid file", "magic", "major version", "newer minor version (legal)", "byte order",
    "header field", "CRC", "file_bytes over the buffer", "one byte short", "entry flags/reserved",
    "entry offset misaligned", "entry outside the file or overlapping", "required section dropped",
    "optional section dropped (legal)", "section twice", "unknown optional section (legal)",
    "unknown required section", "section of a layer beyond n_layers", "network section with a layer",
    "section the layer does not use", "section size off by one", "NET value", "PREPROCESS value",
    "PREPROCESS edge (legal)", "LAYER value", "REQUANT value", "HASH_COEF value", "PAD_ORDER value",
    "CENTER value", "TABLES value", "MEMBERSHIP spare bit", "big hashing (limits)",
    "straddling a per-file total"};
    return which >= 0 && which < GEN_N_BREAKS ? names[which] : "?";
}

/* A random LSH layer of the model, preferring one with property `want` (NULL: any); -1 when
 * there is none. */
static inline int gen_pick_layer(const gen_model *m, elsh_prng *r, int (*want)(const gen_model *, const gen_layer *))
{
    int ids[ELSH_MAX_LAYERS], n = 0;
    for (uint32_t l = 0; l < m->n_layers; l++)
        if (!want || want(m, &m->layer[l])) ids[n++] = (int)l;
    return n ? ids[gen_below(r, (uint32_t)n)] : -1;
}
static inline int gen_is_lsh(const gen_model *m, const gen_layer *L) { (void)m; return L->use_lsh; }
static inline int gen_explicit(const gen_model *m, const gen_layer *L) { (void)m; return L->use_lsh && L->hash_source; }
static inline int gen_centered(const gen_model *m, const gen_layer *L) { (void)m; return L->use_lsh && L->center; }
static inline int gen_with_tables(const gen_model *m, const gen_layer *L) { return L->use_lsh && (m->flags & 1u); }
static inline int gen_with_membership(const gen_model *m, const gen_layer *L)
{
    return L->use_lsh && !(m->flags & 1u) && L->membership && L->n_out % 8u;
}

/* The file's bytes, patched after assembly: the section at entry e. */
static inline uint8_t *gen_entry(uint8_t *b, int e) { return b + 64u + 32u * (size_t)e; }

/* Smallest L in 1..1024 at which the totals of m (layer l's tables set to L) leave the limits
 * of a file of f bytes, or 0 when none does. */
static inline uint32_t gen_first_over(gen_model *m, int l, uint64_t f)
{
    uint32_t lo = 1, hi = 1024;
    m->layer[l].tables = 1024;
    gen_totals t = gen_model_totals(m);
    if (gen_within(&t, f)) return 0;
    while (lo < hi) { /* within at lo - 1 (or lo = 1), over at hi */
        uint32_t mid = (lo + hi) / 2;
        m->layer[l].tables = (uint16_t)mid;
        t = gen_model_totals(m);
        if (gen_within(&t, f)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* A model whose work per input, not its arena or its work at attach, meets its limit first:
 * 8 layers 256 wide hashing with DWTA over bins of 256 (17 * 256 operations per table with
 * densification), K = 1 so that the stored tables are small and sparse (1% of the neurons). */
static inline void gen_input_heavy(gen_model *m, elsh_prng *r)
{
    memset(m, 0, sizeof *m);
    m->n_in = 256;
    m->n_layers = 8;
    m->n_classes = 2;
    m->inv_scale = 1.0f;
    m->seed = elsh_prng_u32(r);
    m->flags = 1;
    for (uint32_t l = 0; l < 8; l++) {
        gen_layer *L = &m->layer[l];
        L->n_in = 256;
        L->n_out = l == 7 ? 2 : 256;
        L->k = 1;
        L->is_output = (uint8_t)(l == 7);
        L->weight_bits = 8;
        L->in_scale = L->out_scale = 1.0f;
        L->use_lsh = 1;
        L->family = ELSH_HASH_DWTA;
        L->bits = 1;
        L->pool = 1;
        L->dwta_bin = 256;
        L->tables = 1;
        L->table_fill = 1;
        gen_derive(L);
    }
}

/* The file of model `base` with rule `which` broken: a malloc'd buffer of *size bytes, and in
 * *expect the status the reader must return (open, then attach). NULL when the break does not
 * apply to this model (no LSH layer, ...). */
static inline uint8_t *gen_broken(int which, const gen_model *base, elsh_prng *r, size_t *size, int *expect)
{
    gen_model m = *base;
    gen_file f;
    uint8_t *b = NULL;
    int l = -1;
    *expect = ELSH_OK;
    /* changes to the description, before the sections are filled */
    if (which == GEN_BREAK_BIG_HASHING) {
        l = gen_pick_layer(&m, r, gen_is_lsh);
        if (l < 0) return NULL;
        gen_layer *L = &m.layer[l];
        L->tables = (uint16_t)gen_range(r, 1, 1024);
        L->bits = (uint8_t)gen_range(r, 1, 15);
        L->hash_source = 0;
        L->membership = 0;
        if (m.flags & 1u) m.flags = 0; /* tables built at load */
        L->k = 1;
        gen_derive(L);
    } else if (which == GEN_BREAK_STRADDLE && gen_chance(r, 25)) { /* work per input */
        gen_input_heavy(&m, r);
        uint32_t lo = 1, hi = 1024; /* every layer's L: the first L over the limit of 2^25 */
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            for (uint32_t q = 0; q < 8; q++) m.layer[q].tables = (uint16_t)mid;
            gen_totals t = gen_model_totals(&m);
            if (t.input <= ELSH_LIMIT_INPUT_WORK_BASE) lo = mid + 1;
            else hi = mid;
        }
        for (uint32_t q = 0; q < 8; q++) m.layer[q].tables = (uint16_t)(gen_chance(r, 50) ? lo - 1 : lo);
    } else if (which == GEN_BREAK_STRADDLE) {
        l = gen_pick_layer(&m, r, gen_is_lsh);
        if (l < 0) return NULL;
        m.flags = 0;
        for (uint32_t q = 0; q < m.n_layers; q++) m.layer[q].membership = 0;
        gen_layer *L = &m.layer[l];
        L->hash_source = 0;
        L->bits = (uint8_t)(gen_chance(r, 50) ? 15 : gen_range(r, 1, 15));
        L->k = 1;
        gen_derive(L);
    }
    gen_sections(&m, r, &f);
    size_t n_at = 0;
    if (which == GEN_BREAK_STRADDLE && l >= 0) { /* the file's size does not depend on L here */
        b = gen_assemble(&f, &n_at);
        free(b);
        uint32_t over = gen_first_over(&m, l, n_at);
        if (over == 0) {
            gen_free(&f);
            return NULL;
        }
        m.layer[l].tables = (uint16_t)(over > 1 && gen_chance(r, 50) ? over - 1 : over);
        gen_layer_record(&m.layer[l], gen_find(&f, GEN_LAYER, (uint32_t)l)->data);
    }
    gen_section *s = NULL;
    /* the breaks of the header and the section table apply to any file; the others when the
     * model has what they break */
    int applied = which <= GEN_BREAK_ENTRY_BOUNDS || which == GEN_BREAK_BIG_HASHING || which == GEN_BREAK_STRADDLE;
    switch (which) {
    case GEN_BREAK_DROP_REQUIRED:
    case GEN_BREAK_DROP_OPTIONAL:
    case GEN_BREAK_DUPLICATE:
    case GEN_BREAK_SIZE: {
        int cand[GEN_MAX_SECTIONS], n = 0;
        for (int i = 0; i < f.n; i++) {
            int optional = f.s[i].type == GEN_INFO || f.s[i].type == GEN_MEMBERSHIP || f.s[i].type == GEN_PREPROCESS;
            if (which == GEN_BREAK_DROP_REQUIRED ? !optional
                : which == GEN_BREAK_DROP_OPTIONAL ? optional
                : which == GEN_BREAK_SIZE ? f.s[i].type != GEN_INFO
                                          : 1)
                cand[n++] = i;
        }
        if (n == 0) break;
        int i = cand[gen_below(r, (uint32_t)n)];
        if (which == GEN_BREAK_DROP_REQUIRED || which == GEN_BREAK_DROP_OPTIONAL) {
            free(f.s[i].data);
            memmove(&f.s[i], &f.s[i + 1], (size_t)(f.n - i - 1) * sizeof(gen_section));
            f.n--;
            *expect = which == GEN_BREAK_DROP_REQUIRED ? ELSH_FMT_MISSING : ELSH_OK;
        } else if (which == GEN_BREAK_DUPLICATE) {
            uint8_t *p = gen_add(&f, f.s[i].type, f.s[i].layer, f.s[i].size, f.s[i].flags);
            memcpy(p, f.s[i].data, f.s[i].size);
            *expect = ELSH_FMT_DUPLICATE;
        } else {
            gen_section *t = &f.s[i];
            if (t->size == 0 || gen_chance(r, 50)) {
                uint8_t *p = (uint8_t *)gen_alloc(t->size + 1u);
                memcpy(p, t->data, t->size);
                free(t->data);
                t->data = p;
                t->size++;
            } else {
                t->size--;
            }
            *expect = ELSH_FMT_SIZE;
        }
        applied = 1;
        break;
    }
    case GEN_BREAK_UNKNOWN_OPTIONAL:
    case GEN_BREAK_UNKNOWN_REQUIRED: {
        uint32_t layer = gen_chance(r, 50) ? GEN_NO_LAYER : gen_below(r, 16);
        uint8_t *p = gen_add(&f, gen_range(r, 15, 1000), layer, gen_below(r, 40), which == GEN_BREAK_UNKNOWN_REQUIRED);
        for (size_t i = 0; i < f.s[f.n - 1].size; i++) p[i] = (uint8_t)elsh_prng_u32(r);
        *expect = which == GEN_BREAK_UNKNOWN_REQUIRED ? ELSH_FMT_UNKNOWN_REQUIRED : ELSH_OK;
        applied = 1;
        break;
    }
    case GEN_BREAK_BEYOND_LAYERS: {
        const gen_section *w = gen_find(&f, gen_chance(r, 50) ? GEN_WEIGHTS : GEN_LAYER, 0);
        uint32_t beyond = m.n_layers < ELSH_MAX_LAYERS && gen_chance(r, 70) ? m.n_layers : gen_range(r, 8, 100);
        uint8_t *p = gen_add(&f, w->type, beyond, w->size, 1); /* f.s is an array: w stays valid */
        if (w->size) memcpy(p, w->data, w->size);
        *expect = ELSH_FMT_UNEXPECTED;
        applied = 1;
        break;
    }
    case GEN_BREAK_NET_WITH_LAYER: {
        s = gen_find(&f, gen_chance(r, 50) ? GEN_NET : gen_chance(r, 50) ? GEN_PREPROCESS : GEN_INFO, GEN_NO_LAYER);
        if (!s) s = &f.s[0];
        s->layer = gen_below(r, 8);
        *expect = ELSH_FMT_UNEXPECTED;
        applied = 1;
        break;
    }
    case GEN_BREAK_UNUSED_SECTION: {
        l = (int)gen_below(r, m.n_layers);
        const gen_layer *L = &m.layer[l];
        uint32_t t;
        if (!L->use_lsh) t = gen_chance(r, 50) ? GEN_HASH_COEF : GEN_MEMBERSHIP;
        else if (!L->hash_source && gen_chance(r, 30)) t = gen_chance(r, 50) ? GEN_HASH_COEF : GEN_PAD_ORDER;
        else if (!L->center && gen_chance(r, 30)) t = GEN_CENTER;
        else if (m.flags & 1u) t = GEN_MEMBERSHIP;
        else t = GEN_TABLES;
        if (gen_find(&f, t, (uint32_t)l)) break; /* used after all: not this break */
        gen_add(&f, t, (uint32_t)l, 8, 1);
        *expect = ELSH_FMT_UNEXPECTED;
        applied = 1;
        break;
    }
    case GEN_BREAK_NET_FIELD: {
        uint8_t *p = gen_find(&f, GEN_NET, GEN_NO_LAYER)->data;
        switch (gen_below(r, 8)) {
        case 0: gen_put32(p, 0); break;
        case 1: gen_put32(p, 65536); break;
        case 2: gen_put32(p + 4, gen_chance(r, 50) ? 0u : 9u); break;
        case 3: gen_put32(p + 8, gen_chance(r, 50) ? 1u : 65536u); break;
        case 4: gen_putf(p + 12, 0.0f); break;
        case 5: gen_put32(p + 12, gen_chance(r, 50) ? 0x7FC00000u : 0x7F800000u); break; /* NaN, inf */
        case 6: gen_putf(p + 12, -1.0f); break;
        default: p[24 + gen_below(r, 8)] = 1; break;
        }
        *expect = ELSH_FMT_NET;
        applied = 1;
        break;
    }
    case GEN_BREAK_PREPROCESS_FIELD:
    case GEN_BREAK_PREPROCESS_LEGAL: {
        s = gen_find(&f, GEN_PREPROCESS, GEN_NO_LAYER);
        if (!s) break;
        uint8_t *p = s->data;
        if (which == GEN_BREAK_PREPROCESS_LEGAL) {
            if (gen_chance(r, 50)) memcpy(p + 8, p + 4, 4); /* max = min */
            else s->flags = 1;                              /* a known type may be required */
            *expect = ELSH_OK;
            applied = 1;
            break;
        }
        switch (gen_below(r, 7)) {
        case 0: gen_putf(p, gen_chance(r, 50) ? 0.0f : -2.0f); break;
        case 1: gen_put32(p, gen_chance(r, 50) ? 0x7FC00000u : 0x7F800000u); break;
        case 2: gen_put32(p + 4, gen_chance(r, 50) ? 0x7FC00000u : 0xFF800000u); break;
        case 3: gen_put32(p + 8, gen_chance(r, 50) ? 0x7FC00000u : 0x7F800000u); break;
        case 4: gen_putf(p + 4, 1.0f); gen_putf(p + 8, 0.5f); break; /* min > max */
        case 5: gen_put32(p, 0x80000000u); break;                 /* -0.0 */
        default: p[12 + gen_below(r, 4)] = 1; break;
        }
        *expect = ELSH_FMT_NET;
        applied = 1;
        break;
    }
    case GEN_BREAK_LAYER_FIELD: {
        l = (int)gen_below(r, m.n_layers);
        const gen_layer *L = &m.layer[l];
        uint8_t *p = gen_find(&f, GEN_LAYER, (uint32_t)l)->data;
        int last = (uint32_t)l == m.n_layers - 1;
        switch (gen_below(r, 16)) {
        case 0: gen_put32(p, L->n_in + 1u); break;
        case 1: gen_put32(p + 4, gen_chance(r, 50) ? 0u : 65536u); break;
        case 2: gen_put32(p + 8, L->use_lsh && gen_chance(r, 50) ? 0u : L->n_out + 1u); break;
        case 3: p[12] = 2; break;
        case 4: p[13] = (uint8_t)!last; break;
        case 5: p[14] = gen_chance(r, 50) ? 4 : 32; break;
        case 6: if (L->use_lsh) p[15] = 3; else p[15 + gen_below(r, 5)] = 1; break;
        case 7: if (L->use_lsh) p[16] = gen_chance(r, 50) ? 0 : 16; else gen_put16(p + 20, 1); break;
        case 8: if (L->use_lsh) p[17] = 2; else gen_put16(p + 22, 1); break; /* EXACT: not in files */
        case 9: if (L->use_lsh) gen_put16(p + 20, gen_chance(r, 50) ? 0u : 1025u); else gen_put16(p + 24, 1); break;
        case 10: if (L->use_lsh) gen_put16(p + 24, L->hash_dim + 1u); else p[19] = 1; break;
        case 11: gen_put32(p + 32, gen_chance(r, 50) ? 128u : (uint32_t)-129); break;
        case 12: gen_put32(p + 36, last ? 1u : 128u); break;
        case 13: gen_put32(p + 40 + 4 * gen_below(r, 2), gen_chance(r, 50) ? 0u : 0x7FC00000u); break;
        case 14: p[48 + gen_below(r, 16)] = 1; break;
        default:
            if (L->use_lsh && L->family == ELSH_HASH_TERNARY) gen_put16(p + 26, L->hash_dim + 1u);
            else if (L->use_lsh && L->family == ELSH_HASH_DWTA) gen_put16(p + 28, L->dwta_bin + 1u);
            else if (L->use_lsh) gen_put16(p + 22, 0);
            else gen_put32(p + 8, L->n_out - 1u);
            break;
        }
        *expect = ELSH_FMT_LAYER;
        applied = 1;
        break;
    }
    case GEN_BREAK_REQUANT: {
        l = (int)gen_below(r, m.n_layers);
        uint32_t n = m.layer[l].n_out, j = gen_below(r, n);
        uint8_t *p = gen_find(&f, GEN_REQUANT, (uint32_t)l)->data;
        if (gen_chance(r, 50)) gen_put32(p + 4u * j, 0x80000000u | elsh_prng_u32(r));
        else p[4u * n + j] = (uint8_t)(gen_chance(r, 50) ? 31 : (uint8_t)(int8_t)-32);
        *expect = ELSH_FMT_QUANT;
        applied = 1;
        break;
    }
    case GEN_BREAK_HASH_COEF: {
        l = gen_pick_layer(&m, r, gen_explicit);
        if (l < 0) break;
        const gen_layer *L = &m.layer[l];
        s = gen_find(&f, GEN_HASH_COEF, (uint32_t)l);
        uint8_t *p = s->data;
        size_t groups = L->family == ELSH_HASH_TERNARY ? (size_t)L->tables * L->bits : (size_t)L->tables * L->dwta_per_table;
        uint32_t len = L->family == ELSH_HASH_TERNARY ? L->ternary_nnz : L->dwta_bin;
        size_t g = gen_below(r, (uint32_t)groups);
        if (L->family == ELSH_HASH_SIMHASH) {
            p[gen_below(r, (uint32_t)s->size)] = 0x80;
        } else if (L->family == ELSH_HASH_TERNARY && gen_chance(r, 30)) {
            size_t mcount = groups * len;
            p[2u * mcount + gen_below(r, (uint32_t)mcount)] = (uint8_t)(gen_chance(r, 50) ? 0 : 2);
        } else if (len >= 2 && gen_chance(r, 50)) { /* an index repeated within its group */
            uint32_t q = gen_range(r, 1, len - 1);
            memcpy(p + 2u * (g * len + q), p + 2u * (g * len + gen_below(r, q)), 2);
        } else {
            gen_put16(p + 2u * (g * len + gen_below(r, len)), L->hash_dim + gen_below(r, 65536u - L->hash_dim));
        }
        *expect = ELSH_FMT_HASH;
        applied = 1;
        break;
    }
    case GEN_BREAK_PAD_ORDER: {
        l = gen_pick_layer(&m, r, gen_explicit);
        if (l < 0) break;
        uint32_t n = m.layer[l].n_out;
        uint8_t *p = gen_find(&f, GEN_PAD_ORDER, (uint32_t)l)->data;
        if (n >= 2 && gen_chance(r, 50)) {
            uint32_t j = gen_range(r, 1, n - 1);
            memcpy(p + 2u * j, p + 2u * gen_below(r, j), 2);
        } else {
            gen_put16(p + 2u * gen_below(r, n), n + gen_below(r, 65536u - n));
        }
        *expect = ELSH_FMT_HASH;
        applied = 1;
        break;
    }
    case GEN_BREAK_CENTER: {
        l = gen_pick_layer(&m, r, gen_centered);
        if (l < 0) break;
        uint8_t *p = gen_find(&f, GEN_CENTER, (uint32_t)l)->data;
        int32_t v = gen_chance(r, 50) ? (1 << 24) + 1 : -(1 << 24) - 1;
        gen_put32(p + 4u * gen_below(r, m.layer[l].hash_dim), (uint32_t)v);
        *expect = ELSH_FMT_HASH;
        applied = 1;
        break;
    }
    case GEN_BREAK_TABLES: {
        l = gen_pick_layer(&m, r, gen_with_tables);
        if (l < 0) break;
        const gen_layer *L = &m.layer[l];
        s = gen_find(&f, GEN_TABLES, (uint32_t)l);
        uint8_t *p = s->data;
        uint64_t B = 1u << L->bits, nb = (uint64_t)L->tables * B;
        uint32_t n_ids = gen_get32(p + 4u * nb);
        uint8_t *ids = p + 4u * (nb + 1u);
        size_t used = (size_t)(4u * (nb + 1u) + 2u * n_ids);
        uint32_t kind = gen_below(r, 6);
        if (kind == 0) {
            gen_put32(p, 1);
        } else if (kind == 1) {
            gen_put32(p + 4, n_ids + 1u); /* then offsets[2] (or the end) is smaller */
        } else if (kind == 2 && n_ids) {
            gen_put16(ids + 2u * gen_below(r, n_ids), L->n_out + gen_below(r, 65536u - L->n_out));
        } else if (kind == 3 && used < s->size) {
            p[used + gen_below(r, (uint32_t)(s->size - used))] = 1;
        } else if (kind == 4) { /* more ids than L * n_out */
            gen_put32(p + 4u * nb, L->tables * L->n_out + 1u);
        } else { /* a neuron twice in one table: a table holding two ids */
            uint32_t t = gen_below(r, L->tables), a = gen_get32(p + 4u * t * B), e = gen_get32(p + 4u * (t + 1u) * B);
            if (e - a < 2) {
                if (!n_ids) {
                    gen_put32(p, 1);
                    *expect = ELSH_FMT_TABLES;
                    applied = 1;
                    break;
                }
                gen_put16(ids + 2u * gen_below(r, n_ids), L->n_out + gen_below(r, 65536u - L->n_out));
            } else {
                uint32_t q = gen_range(r, a + 1, e - 1);
                memcpy(ids + 2u * q, ids + 2u * gen_range(r, a, q - 1), 2);
            }
        }
        *expect = ELSH_FMT_TABLES;
        applied = 1;
        break;
    }
    case GEN_BREAK_MEMBERSHIP: {
        l = gen_pick_layer(&m, r, gen_with_membership);
        if (l < 0) break;
        const gen_layer *L = &m.layer[l];
        s = gen_find(&f, GEN_MEMBERSHIP, (uint32_t)l);
        size_t row = (L->n_out + 7u) / 8u;
        s->data[gen_below(r, L->tables) * row + row - 1u] |= (uint8_t)(0x80u);
        *expect = ELSH_FMT_TABLES;
        applied = 1;
        break;
    }
    default: break;
    }
    if (!applied) {
        gen_free(&f);
        return NULL;
    }
    /* a legal change: the verdict of the file as it now is (its size may have changed) */
    b = gen_assemble(&f, size);
    if (*expect == ELSH_OK) *expect = gen_verdict(&m, *size);
    int n_sec = f.n;
    gen_free(&f);
    /* changes to the laid-out bytes */
    switch (which) {
    case GEN_BREAK_MAGIC: b[gen_below(r, 8)] ^= (uint8_t)gen_range(r, 1, 255); *expect = ELSH_FMT_MAGIC; break;
    case GEN_BREAK_VERSION_MAJOR: gen_put16(b + 8, gen_chance(r, 50) ? 0u : gen_range(r, 2, 65535)); *expect = ELSH_FMT_VERSION; break;
    case GEN_BREAK_VERSION_MINOR: gen_put16(b + 10, gen_range(r, 2, 65535)); break;
    case GEN_BREAK_BYTE_ORDER: gen_put32(b + 12, 0x01020304u); *expect = ELSH_FMT_BYTE_ORDER; break;
    case GEN_BREAK_HEADER_FIELD:
        switch (gen_below(r, 5)) {
        case 0: gen_put32(b + 16, gen_chance(r, 50) ? 63u : 128u); break;
        case 1: gen_put32(b + 20, gen_chance(r, 50) ? 0u : 4097u); break;
        case 2: gen_put64(b + 24, gen_chance(r, 50) ? 65u : 32u); break;
        case 3: gen_put32(b + 44, gen_get32(b + 44) | (2u << gen_below(r, 31))); break;
        default: b[48 + gen_below(r, 16)] = (uint8_t)gen_range(r, 1, 255); break;
        }
        *expect = ELSH_FMT_HEADER;
        break;
    case GEN_BREAK_CRC: gen_put32(b + 40, gen_get32(b + 40) ^ (1u << gen_below(r, 32))); *expect = ELSH_FMT_CRC; return b;
    case GEN_BREAK_FILE_BYTES: gen_put64(b + 32, *size + gen_range(r, 1, 1000)); *expect = ELSH_FMT_TRUNCATED; return b;
    case GEN_BREAK_SHORT:
        (*size)--;
        gen_put64(b + 32, *size);
        *expect = ELSH_FMT_BOUNDS;
        break;
    case GEN_BREAK_ENTRY_FIELD: {
        uint8_t *e = gen_entry(b, (int)gen_below(r, (uint32_t)n_sec));
        if (gen_chance(r, 50)) gen_put32(e + 24, gen_get32(e + 24) | (2u << gen_below(r, 31)));
        else gen_put32(e + 28, gen_range(r, 1, 0xFFFFFFFFu));
        *expect = ELSH_FMT_HEADER;
        break;
    }
    case GEN_BREAK_ENTRY_ALIGN: {
        uint8_t *e = gen_entry(b, (int)gen_below(r, (uint32_t)n_sec));
        gen_put64(e + 8, gen_get64(e + 8) + gen_range(r, 1, 63));
        *expect = ELSH_FMT_ALIGN;
        break;
    }
    case GEN_BREAK_ENTRY_BOUNDS: {
        int i = (int)gen_below(r, (uint32_t)n_sec);
        uint8_t *e = gen_entry(b, i);
        uint32_t kind = gen_below(r, 4);
        if (kind == 0) gen_put64(e + 8, ((*size + 63u) & ~(size_t)63u) + 64u);
        else if (kind == 1) gen_put64(e + 16, *size - gen_get64(e + 8) + gen_range(r, 1, 64));
        else if (kind == 2) gen_put64(e + 8, 64);
        else if (i > 0 && gen_get64(gen_entry(b, i - 1) + 16) && gen_get64(e + 16)) gen_put64(e + 8, gen_get64(gen_entry(b, i - 1) + 8));
        else gen_put64(e + 16, UINT64_MAX - gen_below(r, 100));
        *expect = ELSH_FMT_BOUNDS;
        break;
    }
    default: break;
    }
    gen_fix_crc(b, *size);
    return b;
}

#endif /* ELSH_GEN_H */
