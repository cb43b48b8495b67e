/* train_q_save.c - the trained model as a complete .elsh file (elsh_qtrain_save).
 *
 * The trained network has the layout of the file it came from: the same sections at the same
 * offsets and of the same sizes (weights keep their width, biases their count, and training
 * moves neurons between buckets without changing any table's size). So the save is the
 * original bytes with the trainable layers' WEIGHTS, BIAS and stored TABLES payloads replaced
 * and the CRC recomputed (FORMAT.md 2): byte-identical on every platform for the same steps.
 * A file without stored tables needs nothing more: its tables are canonical for the weights
 * and the MEMBERSHIP it keeps, so the reader rebuilds exactly the trained tables. */
#include "internal.h"

#include <string.h>

enum { SEC_WEIGHTS = 3, SEC_BIAS = 4, SEC_TABLES = 9 };

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }
static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int elsh_qtrain_save(const elsh_qtrain *tr, void *out, size_t capacity, size_t *bytes)
{
    if (!tr || !bytes) return ELSH_ERR_NULL;
    if (!tr->attached) return ELSH_ERR_STATE;
    const elsh_qnet *net = tr->net;
    *bytes = net->file_bytes;
    if (!out) return ELSH_OK;
    if (capacity < net->file_bytes) return ELSH_ERR_ARENA;
    uint8_t *f = (uint8_t *)out;
    memcpy(f, net->file, net->file_bytes);
    uint32_t n_sections = rd32(f + 20);
    uint64_t table = rd64(f + 24);
    for (uint32_t e = 0; e < n_sections; e++) { /* the file was validated at open */
        const uint8_t *s = f + table + 32u * (uint64_t)e;
        uint32_t type = rd32(s), l = rd32(s + 4);
        uint64_t off = rd64(s + 8);
        if (l >= (uint32_t)net->n_layers || (int32_t)l < tr->first) continue;
        const elsh_qlayer *L = &net->layers[l];
        if (type == SEC_WEIGHTS) {
            size_t n = (size_t)L->n_out * (size_t)L->n_in * (size_t)(L->weight_bits / 8);
            memcpy(f + off, L->weight_bits == 8 ? (const void *)L->w8 : (const void *)L->w16, n);
        } else if (type == SEC_BIAS) {
            memcpy(f + off, L->bias, (size_t)L->n_out * 4u);
        } else if (type == SEC_TABLES && L->use_lsh) {
            size_t no = (size_t)L->hash.tables * (size_t)L->hash.n_buckets + 1u;
            memcpy(f + off, L->tab_offsets, no * 4u);
            memcpy(f + off + no * 4u, L->tab_ids, (size_t)L->tab_offsets[no - 1u] * 2u);
        }
    }
    uint32_t zero = 0;
    uint32_t crc = elsh_crc32(0, f, 40);
    crc = elsh_crc32(crc, &zero, 4);
    crc = elsh_crc32(crc, f + 44, net->file_bytes - 44u);
    wr32(f + 40, crc);
    return ELSH_OK;
}
