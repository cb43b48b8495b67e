/* model_io.c - the .elsh reader: validates a model file and uses it in place (zero copy).
 *
 * elsh_model_open() checks the header, the CRC, the section table and every value that can be
 * checked without scratch memory, then points the layers into the file. elsh_model_attach()
 * carves the scratch buffers from the caller's arena, draws the seed-derived hash functions,
 * finishes the checks that need scratch (distinct indices, permutations, table partitions) and
 * builds the tables the file omits. Nothing is read before its offset and size are checked;
 * every failure has its own status code (edge_lsh.h, elsh_format_status). The layout is
 * specified in export/FORMAT.md. */
#include "internal.h"

#include <string.h>

enum {
    SEC_NET = 1,
    SEC_LAYER = 2,
    SEC_WEIGHTS = 3,
    SEC_BIAS = 4,
    SEC_REQUANT = 5,
    SEC_HASH_COEF = 6,
    SEC_PAD_ORDER = 7,
    SEC_CENTER = 8,
    SEC_TABLES = 9,
    SEC_INFO = 10,
    SEC_MEMBERSHIP = 11,
    SEC_PREPROCESS = 12,
    SEC_TRAIN_STATE = 13,
    SEC_LAYER_STATE = 14,
    SEC_KNOWN = 15
};
#define NO_LAYER 0xFFFFFFFFu
#define HEADER_BYTES 64u
#define ENTRY_BYTES 32u
#define MAX_SECTIONS 4096u
#define MAX_CENTER (1 << 24)
/* Work limits (FORMAT.md 5.1), so that no file can make a reader hang. */
#define MAX_HASH_WORK ((uint64_t)1 << 24)   /* hashing one vector */
#define MAX_SCAN_WORK ((uint64_t)1 << 24)   /* table entries one input may scan: L * n_out */
#define MAX_DRAW_WORK ((uint64_t)1 << 24)   /* PRNG draws to make the hash functions from the seed */
#define MAX_BUILD_WORK ((uint64_t)1 << 28)  /* building the tables at load (two passes) */
#define PREPROCESS_BYTES 16u

/* Network-level sections (layer 0xFFFFFFFF); the others belong to one layer. */
static int net_level(uint32_t type)
{
    return type == SEC_NET || type == SEC_INFO || type == SEC_PREPROCESS || type == SEC_TRAIN_STATE;
}

/* The work a file asks for, added up over its layers (FORMAT.md 5.8). */
typedef struct {
    uint64_t input; /* per input, with every neuron computed */
    uint64_t load;  /* at attach: hash functions drawn from the seed, tables built */
} work_totals;

/* The most a file of f bytes may ask for: max(base, per_byte * f) (FORMAT.md 5.8). */
static uint64_t file_limit(uint64_t base, uint64_t per_byte, uint64_t f)
{
    uint64_t scaled = f > UINT64_MAX / per_byte ? UINT64_MAX : per_byte * f;
    return scaled > base ? scaled : base;
}

typedef struct {
    uint64_t offset, size;
    int present;
} section;

/* ---------------------------------------------------------------- little-endian reads */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (uint16_t)(p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }
static float rdf32(const uint8_t *p)
{
    uint32_t u = rd32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) acc |= p[i];
    return acc == 0;
}
static int finite(float f) { return f - f == 0.0f; } /* false for NaN and +-inf */
static int finite_positive(float f) { return finite(f) && f > 0.0f; }
static int host_little_endian(void)
{
    const uint32_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ---------------------------------------------------------------- header and section table */

static int read_header(const uint8_t *f, size_t size, uint32_t *n_sections, uint64_t *table_off,
                       uint64_t *file_bytes, uint32_t *flags)
{
    static const uint8_t magic[8] = {0x45, 0x4C, 0x53, 0x48, 0x0D, 0x0A, 0x1A, 0x0A};
    if (size < 8) return ELSH_FMT_TRUNCATED;
    if (memcmp(f, magic, 8) != 0) return ELSH_FMT_MAGIC;
    if (size < HEADER_BYTES) return ELSH_FMT_TRUNCATED;
    if (rd16(f + 8) != ELSH_FORMAT_MAJOR) return ELSH_FMT_VERSION;
    if (rd32(f + 12) != 0x04030201u || !host_little_endian()) return ELSH_FMT_BYTE_ORDER;
    *n_sections = rd32(f + 20);
    *table_off = rd64(f + 24);
    *file_bytes = rd64(f + 32);
    *flags = rd32(f + 44);
    if (rd32(f + 16) != HEADER_BYTES || *n_sections < 1 || *n_sections > MAX_SECTIONS ||
        *table_off < HEADER_BYTES || *table_off % 8 != 0 || (*flags & ~1u) != 0 ||
        !all_zero(f + 48, 16))
        return ELSH_FMT_HEADER;
    if (*file_bytes > size || *file_bytes < HEADER_BYTES) return ELSH_FMT_TRUNCATED;
    if (*table_off > *file_bytes || (*file_bytes - *table_off) / ENTRY_BYTES < *n_sections)
        return ELSH_FMT_TRUNCATED;
    uint32_t zero = 0;
    uint32_t crc = elsh_crc32(0, f, 40);
    crc = elsh_crc32(crc, &zero, 4);
    crc = elsh_crc32(crc, f + 44, (size_t)(*file_bytes - 44));
    if (crc != rd32(f + 40)) return ELSH_FMT_CRC;
    return ELSH_OK;
}

/* Fill sec[type][layer] from the section table. */
static int read_sections(const uint8_t *f, uint32_t n, uint64_t table_off, uint64_t file_bytes,
                         section sec[SEC_KNOWN][ELSH_MAX_LAYERS])
{
    uint64_t data_start = table_off + (uint64_t)n * ENTRY_BYTES;
    memset(sec, 0, sizeof(section) * SEC_KNOWN * ELSH_MAX_LAYERS);
    for (uint32_t e = 0; e < n; e++) {
        const uint8_t *p = f + table_off + (uint64_t)e * ENTRY_BYTES;
        uint32_t type = rd32(p), layer = rd32(p + 4), flags = rd32(p + 24);
        uint64_t off = rd64(p + 8), sz = rd64(p + 16);
        if ((flags & ~1u) != 0 || rd32(p + 28) != 0) return ELSH_FMT_HEADER;
        if (off % 64 != 0) return ELSH_FMT_ALIGN;
        if (off < data_start || off > file_bytes || sz > file_bytes - off) return ELSH_FMT_BOUNDS;
        for (uint32_t o = 0; o < e; o++) { /* no overlaps (empty sections overlap nothing) */
            const uint8_t *q = f + table_off + (uint64_t)o * ENTRY_BYTES;
            uint64_t off2 = rd64(q + 8), sz2 = rd64(q + 16);
            if (sz && sz2 && off < off2 + sz2 && off2 < off + sz) return ELSH_FMT_BOUNDS;
            if (rd32(q) == type && rd32(q + 4) == layer) return ELSH_FMT_DUPLICATE;
        }
        if (type == 0 || type >= SEC_KNOWN) {
            if (flags & 1u) return ELSH_FMT_UNKNOWN_REQUIRED;
            continue; /* a later minor version's section: skip it */
        }
        int whole = net_level(type);
        if (whole ? layer != NO_LAYER : layer >= ELSH_MAX_LAYERS) return ELSH_FMT_UNEXPECTED;
        section *s = &sec[type][whole ? 0 : layer];
        if (s->present) return ELSH_FMT_DUPLICATE;
        s->offset = off;
        s->size = sz;
        s->present = 1;
    }
    return ELSH_OK;
}

/* ---------------------------------------------------------------- sections */

static int read_net(elsh_qnet *net, const uint8_t *p)
{
    uint32_t n_in = rd32(p), n_layers = rd32(p + 4), n_classes = rd32(p + 8);
    float inv = rdf32(p + 12);
    if (n_in < 1 || n_in > ELSH_MAX_WIDTH || n_layers < 1 || n_layers > ELSH_MAX_LAYERS ||
        n_classes < 2 || n_classes > ELSH_MAX_WIDTH || !finite_positive(inv) || !all_zero(p + 24, 8))
        return ELSH_FMT_NET;
    net->n_in = (int32_t)n_in;
    net->n_layers = (int32_t)n_layers;
    net->n_classes = (int32_t)n_classes;
    net->input_inv_scale = inv;
    net->seed = rd64(p + 16);
    return ELSH_OK;
}

/* PREPROCESS (FORMAT.md 4.1): how raw inputs become the network's inputs, and their range. */
static int read_preprocess(elsh_qnet *net, const uint8_t *p)
{
    float divisor = rdf32(p), lo = rdf32(p + 4), hi = rdf32(p + 8);
    if (!finite_positive(divisor) || !finite(lo) || !finite(hi) || !(lo <= hi) || rd32(p + 12) != 0)
        return ELSH_FMT_NET;
    net->has_preprocess = 1;
    net->input_divisor = divisor;
    net->input_min = lo;
    net->input_max = hi;
    return ELSH_OK;
}

/* Operations to hash one vector (an upper bound for DWTA, which may probe other bins). */
static uint64_t hash_cost(const elsh_hash_params *hp)
{
    uint64_t TK = (uint64_t)hp->tables * (uint64_t)hp->bits;
    if (hp->family == ELSH_HASH_SIMHASH) return TK * (uint64_t)hp->hash_dim;
    if (hp->family == ELSH_HASH_TERNARY) return TK * (uint64_t)hp->ternary_nnz;
    return (uint64_t)hp->tables * (uint64_t)hp->dwta_per_table * (uint64_t)hp->dwta_bin *
           (1u + ELSH_DWTA_MAX_PROBES);
}

/* Draws to pick m distinct values below d by rejection: about d ln(d / (d - m)), at most 2m
 * while 2m <= d, and below d (1 + ln d) <= 12 d for any m <= d <= 65535. */
static uint64_t draw_cost(uint64_t m, uint64_t d) { return 2u * m <= d ? 2u * m : 12u * d; }

static int read_layer(elsh_qnet *net, int32_t l, const uint8_t *p, work_totals *work)
{
    elsh_qlayer *L = &net->layers[l];
    uint32_t n_in = rd32(p), n_out = rd32(p + 4), k = rd32(p + 8);
    int last = l == net->n_layers - 1;
    uint32_t want_in = l == 0 ? (uint32_t)net->n_in : (uint32_t)net->layers[l - 1].n_out;
    L->use_lsh = p[12];
    L->is_output = p[13];
    L->weight_bits = p[14];
    elsh_hash_params *hp = &L->hash;
    hp->family = p[15];
    hp->bits = p[16];
    hp->select_mode = p[17];
    L->hash_source = p[18];
    hp->center = p[19];
    hp->tables = rd16(p + 20);
    hp->pool = rd16(p + 22);
    int32_t hash_dim = rd16(p + 24), dwta_per_table = rd16(p + 30); /* derived: checked below */
    hp->ternary_nnz = rd16(p + 26);
    hp->dwta_bin = rd16(p + 28);
    L->in_zero = (int32_t)rd32(p + 32);
    L->out_zero = (int32_t)rd32(p + 36);
    L->in_scale = rdf32(p + 40);
    L->out_scale = rdf32(p + 44);

    if (n_in != want_in || n_out < 1 || n_out > ELSH_MAX_WIDTH || L->use_lsh > 1 ||
        L->is_output != last || (last && n_out != (uint32_t)net->n_classes) ||
        (L->weight_bits != 8 && L->weight_bits != 16) || !all_zero(p + 48, 16))
        return ELSH_FMT_LAYER;
    if (L->in_zero < -128 || L->in_zero > 127 || L->out_zero < -128 || L->out_zero > 127 ||
        (last && L->out_zero != 0) || !finite_positive(L->in_scale) || !finite_positive(L->out_scale))
        return ELSH_FMT_LAYER;
    if (l > 0 && (L->in_zero != net->layers[l - 1].out_zero ||
                  memcmp(&L->in_scale, &net->layers[l - 1].out_scale, sizeof(float)) != 0))
        return ELSH_FMT_LAYER;
    L->n_in = (int32_t)n_in;
    L->n_out = (int32_t)n_out;
    if (!L->use_lsh) {
        if (k != n_out || hp->family || hp->bits || hp->select_mode || L->hash_source || hp->center ||
            hp->tables || hp->pool || hash_dim || hp->ternary_nnz || hp->dwta_bin || dwta_per_table)
            return ELSH_FMT_LAYER;
        L->k = L->k_file = (int32_t)n_out;
        work->input += (uint64_t)n_in * n_out;
        return ELSH_OK;
    }
    /* the hash settings as the float layer checks and derives them (hash.c), and the file's
     * derived values equal to those; the fixed-point layer has no EXACT selection */
    if (k < 1 || k > n_out || hp->select_mode > ELSH_SELECT_UNION || L->hash_source > 1 ||
        elsh_hash_derive(hp, (int32_t)n_in) != 0 || hp->hash_dim != hash_dim ||
        hp->dwta_per_table != dwta_per_table)
        return ELSH_FMT_LAYER;
    L->k = L->k_file = (int32_t)k;
    /* bounded work: hashing an input, scanning its buckets, drawing the hash functions from
     * the seed, and building the tables at load when the file does not store them */
    uint64_t hash_work = hash_cost(hp), d = (uint64_t)hp->hash_dim;
    uint64_t TK = (uint64_t)hp->tables * (uint64_t)hp->bits;
    uint64_t draws = hp->family == ELSH_HASH_SIMHASH ? TK * d
                     : hp->family == ELSH_HASH_TERNARY
                         ? TK * draw_cost((uint64_t)hp->ternary_nnz, d)
                         : (uint64_t)hp->tables * (uint64_t)hp->dwta_per_table * draw_cost((uint64_t)hp->dwta_bin, d);
    if (hash_work > MAX_HASH_WORK || (uint64_t)hp->tables * n_out > MAX_SCAN_WORK) return ELSH_FMT_LAYER;
    if (L->hash_source == 0 && draws > MAX_DRAW_WORK) return ELSH_FMT_LAYER;
    uint64_t build = 2u * (uint64_t)L->n_out * (hash_work + n_in);
    if (!(net->flags & 1u) && build > MAX_BUILD_WORK) return ELSH_FMT_LAYER;
    /* this layer's share of the file's totals: every neuron's dot product, pooling, hashing
     * and the table entries scanned per input; the draws and the build at attach */
    work->input += (uint64_t)n_in * n_out + n_in + hash_work + (uint64_t)hp->tables * n_out;
    work->load += (L->hash_source == 0 ? draws : 0u) + (net->flags & 1u ? 0u : build);
    return ELSH_OK;
}

/* Byte sizes of the hash-coefficient section and of the CSR tables of an LSH layer. */
static uint64_t hash_coef_bytes(const elsh_hash_params *hp)
{
    uint64_t TK = (uint64_t)hp->tables * (uint64_t)hp->bits;
    if (hp->family == ELSH_HASH_SIMHASH) return TK * (uint64_t)hp->hash_dim;
    if (hp->family == ELSH_HASH_TERNARY) return 3u * TK * (uint64_t)hp->ternary_nnz;
    return 2u * (uint64_t)hp->tables * (uint64_t)hp->dwta_per_table * (uint64_t)hp->dwta_bin;
}
static uint64_t offsets_count(const elsh_qlayer *L)
{
    return (uint64_t)L->hash.tables * (uint64_t)L->hash.n_buckets + 1u;
}
static uint64_t max_ids(const elsh_qlayer *L) { return (uint64_t)L->hash.tables * (uint64_t)L->n_out; }
static uint64_t tables_bytes(const elsh_qlayer *L, uint64_t n_ids)
{
    uint64_t b = 4u * offsets_count(L) + 2u * n_ids;
    return (b + 3u) & ~(uint64_t)3u;
}
static uint64_t membership_row_bytes(const elsh_qlayer *L) { return ((uint64_t)L->n_out + 7u) / 8u; }

/* Is neuron j stored in table t? (all neurons when the layer has no membership bits) */
static int is_member(const elsh_qlayer *L, int32_t t, int32_t j)
{
    if (!L->membership) return 1;
    return (L->membership[(uint64_t)t * membership_row_bytes(L) + (uint64_t)(j >> 3)] >> (j & 7)) & 1u;
}

static int check_requant(const elsh_qlayer *L)
{
    for (int32_t j = 0; j < L->n_out; j++)
        if (L->multiplier[j] < 0 || L->shift[j] < -31 || L->shift[j] > 30) return ELSH_FMT_QUANT;
    return ELSH_OK;
}

/* Range checks of stored hash coefficients (distinctness needs scratch: see attach). */
static int check_hash_coef(const elsh_qlayer *L)
{
    uint64_t n = hash_coef_bytes(&L->hash);
    if (L->hash.family == ELSH_HASH_SIMHASH) {
        for (uint64_t i = 0; i < n; i++)
            if (L->proj[i] == INT8_MIN) return ELSH_FMT_HASH;
    } else if (L->hash.family == ELSH_HASH_TERNARY) {
        for (uint64_t i = 0; i < n / 3u; i++)
            if (L->tern_idx[i] >= L->hash.hash_dim || (L->tern_sign[i] != 1 && L->tern_sign[i] != -1))
                return ELSH_FMT_HASH;
    } else {
        for (uint64_t i = 0; i < n / 2u; i++)
            if (L->dwta_idx[i] >= L->hash.hash_dim) return ELSH_FMT_HASH;
    }
    for (int32_t j = 0; j < L->n_out; j++)
        if (L->pad_order[j] >= L->n_out) return ELSH_FMT_HASH;
    return ELSH_OK;
}

/* Offsets ascend from 0, no table holds more than n_out ids, every id < n_out (repeats within
 * a table need scratch: see check_no_repeats). */
static int check_tables(const elsh_qlayer *L)
{
    const uint32_t *off = L->tab_offsets;
    uint64_t B = (uint64_t)L->hash.n_buckets;
    if (off[0] != 0) return ELSH_FMT_TABLES;
    for (int32_t t = 0; t < L->hash.tables; t++) {
        for (uint64_t b = 0; b < B; b++) {
            uint64_t bi = (uint64_t)t * B + b;
            if (off[bi + 1] < off[bi]) return ELSH_FMT_TABLES;
        }
        if (off[(uint64_t)(t + 1) * B] - off[(uint64_t)t * B] > (uint32_t)L->n_out) return ELSH_FMT_TABLES;
    }
    uint64_t n = off[(uint64_t)L->hash.tables * B];
    for (uint64_t i = 0; i < n; i++)
        if (L->tab_ids[i] >= L->n_out) return ELSH_FMT_TABLES;
    return ELSH_OK;
}

/* Point layer l into its sections and check the values that need no scratch. */
static int bind_layer(elsh_qnet *net, int32_t l, section sec[SEC_KNOWN][ELSH_MAX_LAYERS])
{
    const uint8_t *f = net->file;
    elsh_qlayer *L = &net->layers[l];
    uint64_t n_out = (uint64_t)L->n_out, nw = n_out * (uint64_t)L->n_in;
    const section *w = &sec[SEC_WEIGHTS][l], *b = &sec[SEC_BIAS][l], *rq = &sec[SEC_REQUANT][l];
    if (!w->present || !b->present || !rq->present) return ELSH_FMT_MISSING;
    if (w->size != nw * (uint64_t)(L->weight_bits / 8) || b->size != 4u * n_out || rq->size != 5u * n_out)
        return ELSH_FMT_SIZE;
    L->w8 = L->weight_bits == 8 ? (const int8_t *)(const void *)(f + w->offset) : NULL;
    L->w16 = L->weight_bits == 16 ? (const int16_t *)(const void *)(f + w->offset) : NULL;
    L->bias = (const int32_t *)(const void *)(f + b->offset);
    L->multiplier = (const int32_t *)(const void *)(f + rq->offset);
    L->shift = (const int8_t *)(f + rq->offset + 4u * n_out);
    int rc = check_requant(L);
    if (rc) return rc;

    const section *hc = &sec[SEC_HASH_COEF][l], *po = &sec[SEC_PAD_ORDER][l];
    const section *ce = &sec[SEC_CENTER][l], *tb = &sec[SEC_TABLES][l];
    const section *mb = &sec[SEC_MEMBERSHIP][l];
    int explicit_hash = L->use_lsh && L->hash_source == 1;
    int want_center = L->use_lsh && L->hash.center;
    int want_tables = L->use_lsh && (net->flags & 1u);
    if (mb->present && (!L->use_lsh || want_tables)) return ELSH_FMT_UNEXPECTED;
    if (hc->present != explicit_hash || po->present != explicit_hash || ce->present != want_center ||
        tb->present != want_tables)
        return (hc->present && !explicit_hash) || (po->present && !explicit_hash) ||
                       (ce->present && !want_center) || (tb->present && !want_tables)
                   ? ELSH_FMT_UNEXPECTED
                   : ELSH_FMT_MISSING;
    L->proj = NULL;
    L->tern_idx = NULL;
    L->tern_sign = NULL;
    L->dwta_idx = NULL;
    L->pad_order = NULL;
    L->center = NULL;
    L->tab_offsets = NULL;
    L->tab_ids = NULL;
    L->membership = NULL;
    L->tables_in_file = want_tables;
    if (explicit_hash) {
        if (hc->size != hash_coef_bytes(&L->hash) || po->size != 2u * n_out) return ELSH_FMT_SIZE;
        const uint8_t *h = f + hc->offset;
        if (L->hash.family == ELSH_HASH_SIMHASH) {
            L->proj = (const int8_t *)h;
        } else if (L->hash.family == ELSH_HASH_TERNARY) {
            uint64_t m = (uint64_t)L->hash.tables * (uint64_t)L->hash.bits * (uint64_t)L->hash.ternary_nnz;
            L->tern_idx = (const uint16_t *)(const void *)h;
            L->tern_sign = (const int8_t *)(h + 2u * m);
        } else {
            L->dwta_idx = (const uint16_t *)(const void *)h;
        }
        L->pad_order = (const uint16_t *)(const void *)(f + po->offset);
        rc = check_hash_coef(L);
        if (rc) return rc;
    }
    if (want_center) {
        if (ce->size != 4u * (uint64_t)L->hash.hash_dim) return ELSH_FMT_SIZE;
        L->center = (const int32_t *)(const void *)(f + ce->offset);
        for (int32_t g = 0; g < L->hash.hash_dim; g++)
            if (L->center[g] > MAX_CENTER || L->center[g] < -MAX_CENTER) return ELSH_FMT_HASH;
    }
    if (want_tables) {
        if (tb->size < tables_bytes(L, 0)) return ELSH_FMT_SIZE;
        L->tab_offsets = (const uint32_t *)(const void *)(f + tb->offset);
        uint64_t n_ids = L->tab_offsets[offsets_count(L) - 1u];
        if (n_ids > max_ids(L)) return ELSH_FMT_TABLES;
        if (tb->size != tables_bytes(L, n_ids)) return ELSH_FMT_SIZE;
        uint64_t used = 4u * offsets_count(L) + 2u * n_ids;
        if (!all_zero(f + tb->offset + used, (size_t)(tb->size - used))) return ELSH_FMT_TABLES;
        L->tab_ids = (const uint16_t *)(const void *)(f + tb->offset + 4u * offsets_count(L));
        rc = check_tables(L);
        if (rc) return rc;
    }
    if (mb->present) {
        uint64_t row = membership_row_bytes(L);
        if (mb->size != row * (uint64_t)L->hash.tables) return ELSH_FMT_SIZE;
        L->membership = f + mb->offset;
        uint8_t spare = (uint8_t)(0xFFu << (L->n_out & 7)); /* bits past n_out must be zero */
        if (L->n_out & 7)
            for (int32_t t = 0; t < L->hash.tables; t++)
                if (L->membership[(uint64_t)t * row + row - 1u] & spare) return ELSH_FMT_TABLES;
    }
    return ELSH_OK;
}

/* ---------------------------------------------------------------- arena plan */

/* The scratch buffers in a fixed order, through the arena allocator (arena.c): planned at
 * open, carved at attach by the same walk. */
static void layout(elsh_qnet *net, elsh_arena *c)
{
    net->input_q = (int8_t *)elsh_arena_take(c, (uint64_t)net->n_in, 1);
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_qlayer *L = &net->layers[l];
        uint64_t n_out = (uint64_t)L->n_out;
        L->x = (int16_t *)elsh_arena_take(c, (uint64_t)L->n_in, 2);
        L->active = (int32_t *)elsh_arena_take(c, n_out, 4);
        L->out = (int8_t *)elsh_arena_take(c, n_out, 1);
        L->logits = L->is_output ? (int32_t *)elsh_arena_take(c, n_out, 4) : NULL;
        L->hash_in = NULL;
        L->codes = NULL;
        L->hist = NULL;
        L->counts = NULL;
        L->touched = NULL;
        if (!L->use_lsh) continue;
        L->hash_in = (int32_t *)elsh_arena_take(c, (uint64_t)L->hash.hash_dim, 4);
        L->codes = (uint32_t *)elsh_arena_take(c, (uint64_t)L->hash.tables, 4);
        L->hist = (int32_t *)elsh_arena_take(c, (uint64_t)L->hash.tables + 1u, 4);
        L->counts = (uint16_t *)elsh_arena_take(c, n_out, 2);
        L->touched = (uint16_t *)elsh_arena_take(c, n_out + 1u, 2);
        if (L->hash_source == 0) { /* hash functions and padding order drawn at attach */
            uint64_t TK = (uint64_t)L->hash.tables * (uint64_t)L->hash.bits;
            if (L->hash.family == ELSH_HASH_SIMHASH) {
                L->proj = (const int8_t *)elsh_arena_take(c, TK * (uint64_t)L->hash.hash_dim, 1);
            } else if (L->hash.family == ELSH_HASH_TERNARY) {
                L->tern_idx = (const uint16_t *)elsh_arena_take(c, TK * (uint64_t)L->hash.ternary_nnz, 2);
                L->tern_sign = (const int8_t *)elsh_arena_take(c, TK * (uint64_t)L->hash.ternary_nnz, 1);
            } else {
                uint64_t groups = (uint64_t)L->hash.tables * (uint64_t)L->hash.dwta_per_table;
                L->dwta_idx = (const uint16_t *)elsh_arena_take(c, groups * (uint64_t)L->hash.dwta_bin, 2);
            }
            L->pad_order = (const uint16_t *)elsh_arena_take(c, n_out, 2);
        }
        if (!L->tables_in_file) {
            L->tab_offsets = (const uint32_t *)elsh_arena_take(c, offsets_count(L), 4);
            L->tab_ids = (const uint16_t *)elsh_arena_take(c, max_ids(L), 2);
        }
    }
}

uint64_t elsh_layer_state_bytes(const elsh_qlayer *L, int32_t optimizer, int32_t momentum_q15)
{
    uint64_t nw = (uint64_t)L->n_out * (uint64_t)L->n_in, n_out = (uint64_t)L->n_out;
    uint64_t b = ELSH_LAYER_STATE_HEADER + ((2u * nw + 3u) & ~(uint64_t)3u);
    if (momentum_q15 > 0) b += 4u * (nw + n_out);
    if (optimizer == ELSH_QTRAIN_ADAGRAD) b += 4u * (nw + n_out);
    return b;
}

/* The trained state (FORMAT.md 4.2), checked after everything else at open: TRAIN_STATE's
 * values, a LAYER_STATE for exactly the trainable layers, then from the output layer down
 * each one's size, header and masters (which must give the layer's WEIGHTS). */
static int check_state(elsh_qnet *net, section sec[SEC_KNOWN][ELSH_MAX_LAYERS])
{
    const section *ts = &sec[SEC_TRAIN_STATE][0];
    if (!ts->present) {
        for (int32_t l = 0; l < net->n_layers; l++)
            if (sec[SEC_LAYER_STATE][l].present) return ELSH_FMT_UNEXPECTED;
        return ELSH_OK;
    }
    if (ts->size != ELSH_TRAIN_STATE_BYTES) return ELSH_FMT_SIZE;
    const uint8_t *p = net->file + ts->offset;
    uint32_t optimizer = rd32(p), train_layers = rd32(p + 4), momentum = rd32(p + 8);
    if (optimizer > 1 || train_layers > (uint32_t)net->n_layers || momentum > 32767 || rd32(p + 12) != 0 ||
        all_zero(p + 24, 16) || !all_zero(p + 48, 16))
        return ELSH_FMT_STATE;
    int32_t first = elsh_first_trainable(net->n_layers, (int32_t)train_layers);
    for (int32_t l = 0; l < net->n_layers; l++) {
        int present = sec[SEC_LAYER_STATE][l].present;
        if (l < first && present) return ELSH_FMT_UNEXPECTED;
        if (l >= first && !present) return ELSH_FMT_MISSING;
    }
    int32_t ge = 0;
    for (int32_t l = net->n_layers - 1; l >= first; l--) {
        elsh_qlayer *L = &net->layers[l];
        const section *s = &sec[SEC_LAYER_STATE][l];
        if (s->size != elsh_layer_state_bytes(L, (int32_t)optimizer, (int32_t)momentum)) return ELSH_FMT_SIZE;
        const uint8_t *q = net->file + s->offset;
        ge = elsh_grad_exp(L, l == net->n_layers - 1, ge);
        int32_t frac = (int32_t)rd32(q), gexp = (int32_t)rd32(q + 4);
        int32_t lr_w = (int32_t)rd32(q + 8), sh_w = (int32_t)rd32(q + 12);
        int32_t lr_b = (int32_t)rd32(q + 16), sh_b = (int32_t)rd32(q + 20);
        if (frac != (L->weight_bits == 8 ? 8 : 0) || gexp != ge || lr_w < 0 || lr_b < 0 || sh_w < 0 ||
            sh_w > 62 || sh_b < 0 || sh_b > 62 || !all_zero(q + 24, 8))
            return ELSH_FMT_STATE;
        uint64_t nw = (uint64_t)L->n_out * (uint64_t)L->n_in;
        const uint8_t *m = q + ELSH_LAYER_STATE_HEADER;
        for (uint64_t w = 0; w < nw; w++) {
            int32_t v = (int16_t)rd16(m + 2u * w);
            if (v < -32767) return ELSH_FMT_STATE;
            int32_t want;
            if (L->weight_bits == 8) {
                int32_t t = v + 128; /* floor((m + 128) / 256), clamped to the int8 range */
                want = t >= 0 ? t / 256 : -((-t + 255) / 256);
                if (want > 127) want = 127;
                if (want < -127) want = -127;
                if (want != L->w8[w]) return ELSH_FMT_STATE;
            } else if (v != L->w16[w]) {
                return ELSH_FMT_STATE;
            }
        }
        if ((2u * nw) % 4u && !all_zero(m + 2u * nw, 2)) return ELSH_FMT_STATE;
        L->state = q;
    }
    net->train_state = p;
    return ELSH_OK;
}

static int open_model(elsh_qnet *net, const void *file, size_t file_bytes, size_t *arena_bytes)
{
    memset(net, 0, sizeof *net);
    *arena_bytes = 0;
    const uint8_t *f = (const uint8_t *)file;
    if ((uintptr_t)f % ELSH_FILE_ALIGN != 0) return ELSH_FMT_ALIGN;
    uint32_t n_sections, flags;
    uint64_t table_off, fbytes;
    int rc = read_header(f, file_bytes, &n_sections, &table_off, &fbytes, &flags);
    if (rc) return rc;
    section sec[SEC_KNOWN][ELSH_MAX_LAYERS];
    rc = read_sections(f, n_sections, table_off, fbytes, sec);
    if (rc) return rc;
    net->file = f;
    net->file_bytes = (size_t)fbytes;
    net->flags = flags;

    if (!sec[SEC_NET][0].present) return ELSH_FMT_MISSING;
    if (sec[SEC_NET][0].size != 32) return ELSH_FMT_SIZE;
    rc = read_net(net, f + sec[SEC_NET][0].offset);
    if (rc) return rc;
    const section *pre = &sec[SEC_PREPROCESS][0];
    if (pre->present) {
        if (pre->size != PREPROCESS_BYTES) return ELSH_FMT_SIZE;
        rc = read_preprocess(net, f + pre->offset);
        if (rc) return rc;
    }
    for (int32_t t = SEC_LAYER; t < SEC_KNOWN; t++)
        for (int32_t l = net->n_layers; l < ELSH_MAX_LAYERS && !net_level((uint32_t)t); l++)
            if (sec[t][l].present) return ELSH_FMT_UNEXPECTED;
    work_totals work = {0, 0};
    for (int32_t l = 0; l < net->n_layers; l++) {
        const section *s = &sec[SEC_LAYER][l];
        if (!s->present) return ELSH_FMT_MISSING;
        if (s->size != 64) return ELSH_FMT_SIZE;
        rc = read_layer(net, l, f + s->offset, &work);
        if (rc) return rc;
        rc = bind_layer(net, l, sec);
        if (rc) return rc;
    }
    if (sec[SEC_INFO][0].present) {
        net->info = (const char *)(f + sec[SEC_INFO][0].offset);
        net->info_bytes = (size_t)sec[SEC_INFO][0].size;
    }
    /* the file's totals against its size (FORMAT.md 5.8); the arena is planned against its
     * limit, so that an arena over it overflows the plan */
    elsh_arena c;
    elsh_arena_start(&c, NULL, file_limit(ELSH_LIMIT_ARENA_BASE, ELSH_LIMIT_ARENA_PER_BYTE, fbytes));
    layout(net, &c);
    if (elsh_arena_size(&c, &net->arena_bytes) != 0 ||
        work.input > file_limit(ELSH_LIMIT_INPUT_WORK_BASE, ELSH_LIMIT_INPUT_WORK_PER_BYTE, fbytes) ||
        work.load > file_limit(ELSH_LIMIT_LOAD_WORK_BASE, ELSH_LIMIT_LOAD_WORK_PER_BYTE, fbytes))
        return ELSH_FMT_LIMITS;
    rc = check_state(net, sec);
    if (rc) return rc;
    *arena_bytes = net->arena_bytes;
    return ELSH_OK;
}

int elsh_model_open(elsh_qnet *net, const void *file, size_t file_bytes, size_t *arena_bytes)
{
    if (!net || !file || !arena_bytes) return ELSH_ERR_NULL;
    int rc = open_model(net, file, file_bytes, arena_bytes);
    if (rc != ELSH_OK) { /* nothing half-opened: attach on this net must fail */
        memset(net, 0, sizeof *net);
        *arena_bytes = 0;
    }
    return rc;
}

/* ---------------------------------------------------------------- attach */

/* Each group of `len` indices distinct; stamp is [hash_dim] scratch, zeroed here. */
static int distinct_groups(const uint16_t *idx, uint64_t groups, int32_t len, int32_t *stamp, int32_t dim)
{
    for (int32_t i = 0; i < dim; i++) stamp[i] = -1;
    for (uint64_t g = 0; g < groups; g++) {
        const uint16_t *v = idx + g * (uint64_t)len;
        for (int32_t q = 0; q < len; q++) { /* groups < 2^31: L*K <= 15360, L*P <= 8192 */
            if (stamp[v[q]] == (int32_t)g) return 0;
            stamp[v[q]] = (int32_t)g;
        }
    }
    return 1;
}

static int check_permutation(const uint16_t *perm, int32_t n, uint16_t *stamp)
{
    int ok = 1;
    for (int32_t j = 0; j < n; j++) {
        if (stamp[perm[j]]) ok = 0;
        stamp[perm[j]] = 1;
    }
    memset(stamp, 0, (size_t)n * sizeof(uint16_t));
    return ok;
}

/* No table holds a neuron twice (bucket ranges and ids were checked at open), so collision
 * counts stay <= L. stamp is [n_out] zeroed scratch, zeroed again on return. */
static int check_no_repeats(const elsh_qlayer *L, uint16_t *stamp)
{
    int ok = 1;
    uint64_t B = (uint64_t)L->hash.n_buckets;
    for (int32_t t = 0; t < L->hash.tables && ok; t++) {
        for (uint32_t i = L->tab_offsets[(uint64_t)t * B]; i < L->tab_offsets[(uint64_t)(t + 1) * B]; i++) {
            uint16_t j = L->tab_ids[i];
            if (stamp[j] == (uint16_t)(t + 1)) ok = 0;
            stamp[j] = (uint16_t)(t + 1);
        }
    }
    memset(stamp, 0, (size_t)L->n_out * sizeof(uint16_t));
    return ok;
}

/* Canonical CSR tables: bucket b of table t lists, ascending, the member neurons of table t
 * whose row hashes to b. Two passes (count, then place) so no per-neuron code storage is
 * needed. */
static void build_tables(elsh_qlayer *L)
{
    uint32_t *off = (uint32_t *)(uintptr_t)L->tab_offsets;
    uint16_t *ids = (uint16_t *)(uintptr_t)L->tab_ids;
    size_t nb = (size_t)L->hash.tables * (size_t)L->hash.n_buckets;
    memset(off, 0, (nb + 1u) * sizeof(uint32_t));
    for (int32_t j = 0; j < L->n_out; j++) {
        elsh_qhash_neuron(L, j, L->hash_in, L->codes);
        for (int32_t t = 0; t < L->hash.tables; t++)
            if (is_member(L, t, j)) off[(size_t)t * (size_t)L->hash.n_buckets + L->codes[t] + 1u]++;
    }
    for (size_t i = 0; i < nb; i++) off[i + 1] += off[i];
    for (int32_t j = 0; j < L->n_out; j++) { /* off[bi] runs ahead as the fill cursor of bi */
        elsh_qhash_neuron(L, j, L->hash_in, L->codes);
        for (int32_t t = 0; t < L->hash.tables; t++)
            if (is_member(L, t, j)) ids[off[(size_t)t * (size_t)L->hash.n_buckets + L->codes[t]]++] = (uint16_t)j;
    }
    for (size_t i = nb; i > 0; i--) off[i] = off[i - 1]; /* cursors now sit one bucket ahead */
    off[0] = 0;
}

static void draw_hash(const elsh_qnet *net, int32_t l, elsh_qlayer *L)
{
    elsh_prng rng;
    const elsh_hash_arrays out = {NULL, (int8_t *)(uintptr_t)L->proj, (uint16_t *)(uintptr_t)L->tern_idx,
                                  (int8_t *)(uintptr_t)L->tern_sign, (uint16_t *)(uintptr_t)L->dwta_idx};
    elsh_seed_stream(&rng, net->seed, l, ELSH_STREAM_HASH);
    elsh_hash_draw_into(&L->hash, &out, L->hash_in, &rng); /* hash_in: the stamp scratch */
    elsh_seed_stream(&rng, net->seed, l, ELSH_STREAM_PAD);
    elsh_draw_permutation((uint16_t *)(uintptr_t)L->pad_order, L->n_out, &rng);
}

int elsh_model_attach(elsh_qnet *net, void *arena, size_t arena_bytes)
{
    if (!net || !arena) return ELSH_ERR_NULL;
    if (!net->file || net->attached) return ELSH_ERR_STATE;
    if ((uintptr_t)arena % ELSH_ARENA_ALIGN != 0 || arena_bytes < net->arena_bytes) return ELSH_ERR_ARENA;
    memset(arena, 0, net->arena_bytes);
    elsh_arena c;
    elsh_arena_start(&c, arena, net->arena_bytes);
    layout(net, &c);
    if (c.overflow) return ELSH_ERR_ARENA; /* cannot happen: the same walk was planned at open */
    for (int32_t l = 0; l < net->n_layers; l++) {
        elsh_qlayer *L = &net->layers[l];
        if (!L->use_lsh) continue;
        if (L->hash_source == 0) {
            draw_hash(net, l, L);
        } else {
            uint64_t TK = (uint64_t)L->hash.tables * (uint64_t)L->hash.bits;
            int ok = 1;
            if (L->hash.family == ELSH_HASH_TERNARY)
                ok = distinct_groups(L->tern_idx, TK, L->hash.ternary_nnz, L->hash_in, L->hash.hash_dim);
            else if (L->hash.family == ELSH_HASH_DWTA)
                ok = distinct_groups(L->dwta_idx, (uint64_t)L->hash.tables * (uint64_t)L->hash.dwta_per_table,
                                     L->hash.dwta_bin, L->hash_in, L->hash.hash_dim);
            if (!ok || !check_permutation(L->pad_order, L->n_out, L->counts)) return ELSH_FMT_HASH;
        }
        if (L->tables_in_file) {
            if (!check_no_repeats(L, L->counts)) return ELSH_FMT_TABLES;
        } else {
            build_tables(L);
        }
    }
    net->attached = 1;
    elsh_qnet_reset_counters(net);
    return ELSH_OK;
}
