/* train_q_save.c - the trained model as a complete .elsh file (elsh_qtrain_save,
 * elsh_qtrain_save_model), whole or a part at a time (elsh_qtrain_save_crc,
 * elsh_qtrain_save_part: straight into a flash slot on a device that cannot hold the file).
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

/* Copies the part of src, which the file holds at [src_at, src_at + len), that falls in the
 * range [at, at + n) the caller writes to dst (dst[0] is file byte `at`). */
static void put(uint8_t *dst, uint64_t at, uint64_t n, const void *src, uint64_t src_at, uint64_t len)
{
    uint64_t lo = src_at > at ? src_at : at;
    uint64_t hi = src_at + len < at + n ? src_at + len : at + n;
    if (lo < hi) memcpy(dst + (lo - at), (const uint8_t *)src + (lo - src_at), (size_t)(hi - lo));
}

/* Layer l's LAYER_STATE payload, which the file holds from `pos`, into the range. */
static void put_layer_state(const elsh_qtrain *tr, int32_t l, uint64_t pos, uint8_t *dst, uint64_t at, uint64_t n)
{
    const elsh_qlayer *L = &tr->net->layers[l];
    const elsh_qtrain_config *c = &tr->cfg;
    uint8_t head[ELSH_LAYER_STATE_HEADER];
    memset(head, 0, sizeof head);
    wr32(head, (uint32_t)(L->weight_bits == 8 ? 8 : 0));
    wr32(head + 4, (uint32_t)tr->grad_exp[l]);
    wr32(head + 8, (uint32_t)c->lr_w[l]);
    wr32(head + 12, (uint32_t)c->lr_w_shift[l]);
    wr32(head + 16, (uint32_t)c->lr_b[l]);
    wr32(head + 20, (uint32_t)c->lr_b_shift[l]);
    put(dst, at, n, head, pos, sizeof head);
    uint64_t nw = (uint64_t)L->n_out * (uint64_t)L->n_in, n_out = (uint64_t)L->n_out;
    uint64_t q = pos + ELSH_LAYER_STATE_HEADER;
    put(dst, at, n, tr->master[l], q, 2u * nw); /* little-endian host (checked at open) */
    q += (2u * nw + 3u) & ~(uint64_t)3u;
    if (tr->vel_w[l]) {
        put(dst, at, n, tr->vel_w[l], q, 4u * nw);
        put(dst, at, n, tr->vel_b[l], q + 4u * nw, 4u * n_out);
        q += 4u * (nw + n_out);
    }
    if (tr->acc_w[l]) {
        put(dst, at, n, tr->acc_w[l], q, 4u * nw);
        put(dst, at, n, tr->acc_b[l], q + 4u * nw, 4u * n_out);
    }
}

/* The saved file's size in *bytes, and (dst not NULL) its bytes [at, at + n) into dst with the
 * CRC field zero: one walk of the layout for the whole file (save) or any part of it
 * (elsh_qtrain_save_part, which streams it into flash without a buffer of its size). */
static int emit(const elsh_qtrain *tr, int with_state, uint64_t at, uint8_t *dst, uint64_t n, uint64_t *bytes)
{
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
    *bytes = pos;
    if (!dst) return ELSH_OK;
    memset(dst, 0, (size_t)n);
    uint8_t head[HEADER];
    memcpy(head, f, HEADER);
    if (with_state && head[10] < 2 && head[11] == 0) head[10] = 2; /* the minor version that knows the state */
    wr32(head + 20, n_new + n_state);
    wr64(head + 24, HEADER);
    wr64(head + 32, *bytes);
    wr32(head + 40, 0); /* the CRC: the caller's */
    put(dst, at, n, head, 0, HEADER);
    uint8_t entry[ENTRY];
    uint32_t k = 0;
    pos = HEADER + (uint64_t)ENTRY * (n_new + n_state);
    for (uint32_t e = 0; e < n_old; e++) {
        const uint8_t *s = f + table_old + (uint64_t)ENTRY * e;
        uint32_t type = rd32(s), l = rd32(s + 4);
        if (is_state(type)) continue;
        uint64_t size = rd64(s + 16), to = align64(pos);
        memcpy(entry, s, ENTRY);
        wr64(entry + 8, to);
        put(dst, at, n, entry, HEADER + (uint64_t)ENTRY * k++, ENTRY);
        put(dst, at, n, f + rd64(s + 8), to, size);
        pos = to + size;
        if (l >= (uint32_t)net->n_layers || (int32_t)l < tr->first) continue;
        const elsh_qlayer *L = &net->layers[l];
        if (type == SEC_WEIGHTS) {
            uint64_t len = (uint64_t)L->n_out * (uint64_t)L->n_in * (uint64_t)(L->weight_bits / 8);
            put(dst, at, n, L->weight_bits == 8 ? (const void *)L->w8 : (const void *)L->w16, to, len);
        } else if (type == SEC_BIAS) {
            put(dst, at, n, L->bias, to, (uint64_t)L->n_out * 4u);
        } else if (type == SEC_TABLES && L->use_lsh) {
            uint64_t no = (uint64_t)L->hash.tables * (uint64_t)L->hash.n_buckets + 1u;
            put(dst, at, n, L->tab_offsets, to, no * 4u);
            put(dst, at, n, L->tab_ids, to + no * 4u, (uint64_t)L->tab_offsets[no - 1u] * 2u);
        }
    }
    if (with_state) {
        uint64_t to = align64(pos);
        memset(entry, 0, ENTRY);
        wr32(entry, SEC_TRAIN_STATE);
        wr32(entry + 4, 0xFFFFFFFFu);
        wr64(entry + 8, to);
        wr64(entry + 16, ELSH_TRAIN_STATE_BYTES);
        put(dst, at, n, entry, HEADER + (uint64_t)ENTRY * k++, ENTRY);
        uint8_t p[ELSH_TRAIN_STATE_BYTES];
        memset(p, 0, sizeof p);
        wr32(p, (uint32_t)tr->cfg.optimizer);
        wr32(p + 4, (uint32_t)tr->cfg.train_layers);
        wr32(p + 8, (uint32_t)tr->cfg.momentum_q15);
        wr64(p + 16, tr->steps);
        for (int i = 0; i < 4; i++) wr32(p + 24 + 4 * i, tr->rng.s[i]);
        wr64(p + 40, tr->cfg.seed);
        put(dst, at, n, p, to, sizeof p);
        pos = to + ELSH_TRAIN_STATE_BYTES;
        for (int32_t l = net->n_layers - 1; l >= tr->first; l--) {
            uint64_t size = elsh_layer_state_bytes(&net->layers[l], tr->cfg.optimizer, tr->cfg.momentum_q15);
            to = align64(pos);
            memset(entry, 0, ENTRY);
            wr32(entry, SEC_LAYER_STATE);
            wr32(entry + 4, (uint32_t)l);
            wr64(entry + 8, to);
            wr64(entry + 16, size);
            put(dst, at, n, entry, HEADER + (uint64_t)ENTRY * k++, ENTRY);
            put_layer_state(tr, l, to, dst, at, n);
            pos = to + size;
        }
    }
    return ELSH_OK;
}

static int save(const elsh_qtrain *tr, int with_state, void *out, size_t capacity, size_t *bytes)
{
    if (!tr || !bytes) return ELSH_ERR_NULL;
    *bytes = 0;
    if (!tr->attached) return ELSH_ERR_STATE;
    uint64_t size = 0;
    emit(tr, with_state, 0, NULL, 0, &size);
    if (size > (uint64_t)SIZE_MAX) return ELSH_ERR_ARENA;
    *bytes = (size_t)size;
    if (!out) return ELSH_OK;
    if (capacity < *bytes) return ELSH_ERR_ARENA;
    uint8_t *o = (uint8_t *)out;
    emit(tr, with_state, 0, o, size, &size);
    wr32(o + 40, elsh_crc32(0, o, *bytes)); /* over the file with its CRC field zero */
    return ELSH_OK;
}

int elsh_qtrain_save_crc(const elsh_qtrain *tr, uint32_t *crc)
{
    if (!tr || !crc) return ELSH_ERR_NULL;
    if (!tr->attached) return ELSH_ERR_STATE;
    uint8_t chunk[256];
    uint64_t size = 0;
    emit(tr, 1, 0, NULL, 0, &size);
    uint32_t c = 0;
    for (uint64_t at = 0; at < size; at += sizeof chunk) {
        uint64_t n = size - at < sizeof chunk ? size - at : sizeof chunk;
        emit(tr, 1, at, chunk, n, &size);
        c = elsh_crc32(c, chunk, (size_t)n);
    }
    *crc = c;
    return ELSH_OK;
}

int elsh_qtrain_save_part(const elsh_qtrain *tr, uint32_t crc, size_t offset, void *out, size_t n)
{
    if (!tr || (!out && n)) return ELSH_ERR_NULL;
    if (!tr->attached) return ELSH_ERR_STATE;
    uint64_t size = 0;
    emit(tr, 1, 0, NULL, 0, &size);
    if ((uint64_t)offset > size || (uint64_t)n > size - (uint64_t)offset) return ELSH_ERR_CONFIG;
    if (!n) return ELSH_OK;
    emit(tr, 1, offset, (uint8_t *)out, n, &size);
    uint8_t field[4];
    wr32(field, crc);
    put((uint8_t *)out, offset, n, field, 40, 4);
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
