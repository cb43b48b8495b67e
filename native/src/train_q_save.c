/* train_q_save.c - the trained model as a complete .elsh file (elsh_qtrain_save,
 * elsh_qtrain_save_model).
 *
 * The file is the original one laid out again: its sections in their order (any trained-state
 * sections it had left out), each at the next multiple of 64 bytes after a section table that
 * starts at byte 64, with the trainable layers' WEIGHTS, BIAS and stored TABLES payloads
 * replaced (they keep their sizes: weights their width, biases their count, and training moves
 * neurons between buckets without changing a table's size); elsh_qtrain_save then appends
 * TRAIN_STATE and the trainable layers' LAYER_STATE sections (FORMAT.md 4.2), from the output
 * layer down. The header keeps its fields but the section count, table offset, size, version
 * (1.2 with the state) and CRC. This is what edge_lsh.format's writer produces for the same
 * sections, so the bytes are the same on every platform and from either side. A file without
 * stored tables needs nothing more: its tables are canonical for the weights and the
 * MEMBERSHIP it keeps, so the reader rebuilds exactly the trained tables. */
#include "internal.h"

#include <string.h>

enum { SEC_WEIGHTS = 3, SEC_BIAS = 4, SEC_TABLES = 9, SEC_TRAIN_STATE = 13, SEC_LAYER_STATE = 14 };
#define HEADER 64u
#define ENTRY 32u

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }
static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}
static uint64_t align64(uint64_t v) { return (v + 63u) & ~(uint64_t)63u; }

static int is_state(uint32_t type) { return type == SEC_TRAIN_STATE || type == SEC_LAYER_STATE; }

/* The payload of layer l's LAYER_STATE at p (the section's bytes, zeroed by the caller). */
static void layer_state(const elsh_qtrain *tr, int32_t l, uint8_t *p)
{
    const elsh_qlayer *L = &tr->net->layers[l];
    const elsh_qtrain_config *c = &tr->cfg;
    wr32(p, (uint32_t)(L->weight_bits == 8 ? 8 : 0));
    wr32(p + 4, (uint32_t)tr->grad_exp[l]);
    wr32(p + 8, (uint32_t)c->lr_w[l]);
    wr32(p + 12, (uint32_t)c->lr_w_shift[l]);
    wr32(p + 16, (uint32_t)c->lr_b[l]);
    wr32(p + 20, (uint32_t)c->lr_b_shift[l]);
    size_t nw = (size_t)L->n_out * (size_t)L->n_in, n_out = (size_t)L->n_out;
    uint8_t *q = p + ELSH_LAYER_STATE_HEADER;
    memcpy(q, tr->master[l], 2u * nw); /* little-endian host (checked at open) */
    q += (2u * nw + 3u) & ~(size_t)3u;
    if (tr->vel_w[l]) {
        memcpy(q, tr->vel_w[l], 4u * nw);
        memcpy(q + 4u * nw, tr->vel_b[l], 4u * n_out);
        q += 4u * (nw + n_out);
    }
    if (tr->acc_w[l]) {
        memcpy(q, tr->acc_w[l], 4u * nw);
        memcpy(q + 4u * nw, tr->acc_b[l], 4u * n_out);
    }
}

static int save(const elsh_qtrain *tr, int with_state, void *out, size_t capacity, size_t *bytes)
{
    if (!tr || !bytes) return ELSH_ERR_NULL;
    *bytes = 0;
    if (!tr->attached) return ELSH_ERR_STATE;
    const elsh_qnet *net = tr->net;
    const uint8_t *f = net->file;
    uint32_t n_old = rd32(f + 20);
    uint64_t table_old = rd64(f + 24);
    uint32_t n_new = 0;
    for (uint32_t e = 0; e < n_old; e++)
        if (!is_state(rd32(f + table_old + (uint64_t)ENTRY * e))) n_new++;
    uint32_t n_state = with_state ? 1u + (uint32_t)(net->n_layers - tr->first) : 0u;
    uint64_t pos = HEADER + (uint64_t)ENTRY * (n_new + n_state);
    for (uint32_t e = 0; e < n_old; e++) { /* sizes: first pass */
        const uint8_t *s = f + table_old + (uint64_t)ENTRY * e;
        if (!is_state(rd32(s))) pos = align64(pos) + rd64(s + 16);
    }
    if (with_state) {
        pos = align64(pos) + ELSH_TRAIN_STATE_BYTES;
        for (int32_t l = net->n_layers - 1; l >= tr->first; l--)
            pos = align64(pos) + elsh_layer_state_bytes(&net->layers[l], tr->cfg.optimizer, tr->cfg.momentum_q15);
    }
    if (pos > (uint64_t)SIZE_MAX) return ELSH_ERR_ARENA;
    *bytes = (size_t)pos;
    if (!out) return ELSH_OK;
    if (capacity < *bytes) return ELSH_ERR_ARENA;
    uint8_t *o = (uint8_t *)out;
    memset(o, 0, *bytes);
    memcpy(o, f, HEADER);
    uint32_t k = 0;
    pos = HEADER + (uint64_t)ENTRY * (n_new + n_state);
    for (uint32_t e = 0; e < n_old; e++) {
        const uint8_t *s = f + table_old + (uint64_t)ENTRY * e;
        uint32_t type = rd32(s), l = rd32(s + 4);
        if (is_state(type)) continue;
        uint64_t size = rd64(s + 16), at = align64(pos);
        uint8_t *d = o + HEADER + (uint64_t)ENTRY * k++;
        memcpy(d, s, ENTRY);
        wr64(d + 8, at);
        memcpy(o + at, f + rd64(s + 8), (size_t)size);
        pos = at + size;
        if (l >= (uint32_t)net->n_layers || (int32_t)l < tr->first) continue;
        const elsh_qlayer *L = &net->layers[l];
        if (type == SEC_WEIGHTS) {
            size_t n = (size_t)L->n_out * (size_t)L->n_in * (size_t)(L->weight_bits / 8);
            memcpy(o + at, L->weight_bits == 8 ? (const void *)L->w8 : (const void *)L->w16, n);
        } else if (type == SEC_BIAS) {
            memcpy(o + at, L->bias, (size_t)L->n_out * 4u);
        } else if (type == SEC_TABLES && L->use_lsh) {
            size_t no = (size_t)L->hash.tables * (size_t)L->hash.n_buckets + 1u;
            memcpy(o + at, L->tab_offsets, no * 4u);
            memcpy(o + at + no * 4u, L->tab_ids, (size_t)L->tab_offsets[no - 1u] * 2u);
        }
    }
    if (with_state) {
        uint64_t at = align64(pos);
        uint8_t *d = o + HEADER + (uint64_t)ENTRY * k++;
        wr32(d, SEC_TRAIN_STATE);
        wr32(d + 4, 0xFFFFFFFFu);
        wr64(d + 8, at);
        wr64(d + 16, ELSH_TRAIN_STATE_BYTES);
        uint8_t *p = o + at;
        wr32(p, (uint32_t)tr->cfg.optimizer);
        wr32(p + 4, (uint32_t)tr->cfg.train_layers);
        wr32(p + 8, (uint32_t)tr->cfg.momentum_q15);
        wr64(p + 16, tr->steps);
        for (int i = 0; i < 4; i++) wr32(p + 24 + 4 * i, tr->rng.s[i]);
        wr64(p + 40, tr->cfg.seed);
        pos = at + ELSH_TRAIN_STATE_BYTES;
        for (int32_t l = net->n_layers - 1; l >= tr->first; l--) {
            uint64_t size = elsh_layer_state_bytes(&net->layers[l], tr->cfg.optimizer, tr->cfg.momentum_q15);
            at = align64(pos);
            d = o + HEADER + (uint64_t)ENTRY * k++;
            wr32(d, SEC_LAYER_STATE);
            wr32(d + 4, (uint32_t)l);
            wr64(d + 8, at);
            wr64(d + 16, size);
            layer_state(tr, l, o + at);
            pos = at + size;
        }
        if (o[10] < 2 && o[11] == 0) o[10] = 2; /* the minor version that knows the state */
    }
    wr32(o + 20, n_new + n_state);
    wr64(o + 24, HEADER);
    wr64(o + 32, *bytes);
    uint32_t zero = 0;
    uint32_t crc = elsh_crc32(0, o, 40);
    crc = elsh_crc32(crc, &zero, 4);
    crc = elsh_crc32(crc, o + 44, *bytes - 44u);
    wr32(o + 40, crc);
    return ELSH_OK;
}

int elsh_qtrain_save(const elsh_qtrain *tr, void *out, size_t capacity, size_t *bytes)
{
    return save(tr, 1, out, capacity, bytes);
}

int elsh_qtrain_save_model(const elsh_qtrain *tr, void *out, size_t capacity, size_t *bytes)
{
    return save(tr, 0, out, capacity, bytes);
}
