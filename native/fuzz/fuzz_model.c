/* fuzz_model.c - fuzzing of the .elsh reader (model_io.c) and of inference on whatever it
 * accepts. Build and run it under AddressSanitizer + UndefinedBehaviorSanitizer:
 *
 *   make -C native fuzz            # 100000 mutated files from the golden models in export/golden,
 *                                  # then 20000 structure-aware files
 *   build-asan/fuzz_model [-n N] [-g G] [-s SEED] [-p MIN_DEEP_PERCENT] [-o FAILURE.elsh] FILE.elsh...
 *
 * Mutation (-n N): each input is a valid model file with 1-4 mutations: bit flips, interesting
 * bytes and words at random places, targeted edits of header, section-table, NET and LAYER
 * fields, section swaps and truncation. Three times in four the CRC is recomputed afterwards,
 * so the checks behind the checksum are reached too.
 *
 * Structure-aware (-g G, fuzz/elsh_gen.h): each input is a random model written as a valid
 * file (sizes consistent, CRC valid, hash functions, padding orders, tables and membership
 * valid), then one rule broken: a header or section-table field, a section dropped, repeated,
 * resized, unknown or where it does not belong, a NET, PREPROCESS or LAYER value, a value in
 * REQUANT, HASH_COEF, PAD_ORDER, CENTER, TABLES or MEMBERSHIP, or an LSH layer made big or set
 * to straddle a per-file total (FORMAT.md 5.8). The generator knows which status the reader
 * must return (its own arithmetic of the work limits); any other status fails the run. These
 * files get past the CRC and the size checks that most mutations stop at.
 *
 * Every accepted file is attached and run on inputs at the edges (zeros, extremes, random) with
 * the file's k, with every neuron selected and dense, and its INFO section is read. The arena
 * it asks for must equal the layout computed again from the layers (elsh_gen.h), and its
 * arena, its work per input and its work at attach must be within the per-file totals of its
 * size; the operations the counters report for an input must be within the work bound. Each
 * file sits in a fresh buffer of exactly its size and gets a fresh arena of exactly the size
 * the reader asks for, so ASan reports a read past the end of a truncated file or a write past
 * the arena.
 *
 * A crash, a sanitizer report, a broken invariant, a wrong status, or a file that takes over
 * MAX_SECONDS fails the run (the file is saved to FAILURE.elsh, default fuzz_failure.elsh, and
 * its iteration printed). So does a starved mutation fuzzer: fewer than MIN_DEEP_PERCENT
 * (default 5) of the mutants getting past the header checks and the CRC into the reader's deep
 * checks. The report gives those shares and the count of each status. Deterministic for a seed.
 * make -C native fuzz-selftest checks that planted bugs in the reader fail the run.
 *
 * With -DELSH_LIBFUZZER the same checks form a libFuzzer target (LLVMFuzzerTestOneInput). */
#define _POSIX_C_SOURCE 200112L
#include "edge_lsh.h"
#include "elsh_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAILED 1000 /* exercise(): an invariant failed (printed) */
#define MAX_SECONDS 2.0 /* CPU seconds per file (open, attach, every run): the files at the work
                         * limits of FORMAT.md 5.8 take about 0.3 s under ASan */

/* Exactly `bytes` (at least 1) at an `align`-byte boundary: AddressSanitizer's redzone starts
 * right after the last byte asked for, so a read or write one byte past it is reported. */
static void *exact_alloc(size_t align, size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, align, bytes ? bytes : 1)) {
        fprintf(stderr, "fuzz: out of memory (%zu bytes)\n", bytes);
        abort();
    }
    return p;
}

static volatile unsigned info_sink; /* keeps the reads of INFO */

/* The biggest share of a per-file total any accepted file used, in percent (reported). */
static double max_share[3];

/* The opened model described again for elsh_gen.h's arithmetic, through the accessors. */
static void describe_model(const elsh_qnet *net, const elsh_qnet_summary *sum, gen_model *m)
{
    memset(m, 0, sizeof *m);
    m->n_in = (uint32_t)sum->n_in;
    m->n_layers = (uint32_t)sum->n_layers;
    m->n_classes = (uint32_t)sum->n_classes;
    for (int32_t l = 0; l < sum->n_layers; l++) {
        elsh_qlayer_summary ls;
        if (elsh_qnet_layer_info(net, l, &ls) != ELSH_OK) abort();
        gen_layer *L = &m->layer[l];
        L->n_in = (uint32_t)ls.n_in;
        L->n_out = (uint32_t)ls.n_out;
        L->is_output = (uint8_t)ls.is_output;
        L->use_lsh = (uint8_t)ls.use_lsh;
        if (!ls.use_lsh) continue;
        L->family = (uint8_t)ls.hash.family;
        L->bits = (uint8_t)ls.hash.bits;
        L->tables = (uint16_t)ls.hash.tables;
        L->pool = (uint16_t)ls.hash.pool;
        L->hash_dim = (uint16_t)ls.hash.hash_dim;
        L->ternary_nnz = (uint16_t)ls.hash.ternary_nnz;
        L->dwta_bin = (uint16_t)ls.hash.dwta_bin;
        L->dwta_per_table = (uint16_t)ls.hash.dwta_per_table;
        L->hash_source = (uint8_t)ls.hash_source;
        if (ls.tables_in_file) m->flags = 1;
    }
}

/* Operations the counters report for the last input: multiplies, additions and comparisons
 * of hashing, selection and the dot products. */
static uint64_t counted_ops(const elsh_qnet *net)
{
    uint64_t n = 0;
    for (int p = ELSH_PHASE_HASH; p <= ELSH_PHASE_FORWARD; p++) {
        elsh_ops o = elsh_qnet_ops(net, p, 0);
        n += o.mul + o.add + o.cmp;
    }
    return n;
}

/* Open, attach and run a file that sits in exactly `size` bytes: 4 inputs with the file's k,
 * then one with every neuron selected and one dense; light: only the first and the second
 * of those (for files near the work limits, which cost the most). */
static int exercise_in_place(const uint8_t *file, size_t size, int light)
{
    elsh_qnet net;
    size_t need;
    int rc = elsh_model_open(&net, file, size, &need);
    if (rc) return rc;
    elsh_qnet_summary sum;
    elsh_qlayer_summary first;
    if (elsh_qnet_info(&net, &sum) != ELSH_OK || elsh_qnet_layer_info(&net, 0, &first) != ELSH_OK) {
        fprintf(stderr, "fuzz: accessors fail on an opened model\n");
        return FAILED;
    }
    /* the per-file totals (FORMAT.md 5.8), computed again from what the accessors say */
    gen_model m;
    describe_model(&net, &sum, &m);
    gen_totals t = gen_model_totals(&m);
    uint64_t f = sum.file_bytes;
    uint64_t cap[3] = {gen_limit(ELSH_LIMIT_ARENA_BASE, ELSH_LIMIT_ARENA_PER_BYTE, f),
                       gen_limit(ELSH_LIMIT_INPUT_WORK_BASE, ELSH_LIMIT_INPUT_WORK_PER_BYTE, f),
                       gen_limit(ELSH_LIMIT_LOAD_WORK_BASE, ELSH_LIMIT_LOAD_WORK_PER_BYTE, f)};
    uint64_t used[3] = {need, t.input, t.load};
    if (need != t.arena || sum.arena_bytes != need) {
        fprintf(stderr, "fuzz: the reader asks for %zu bytes of arena, the layout adds up to %llu\n", need,
                (unsigned long long)t.arena);
        return FAILED;
    }
    for (int i = 0; i < 3; i++) {
        static const char *const what[3] = {"arena bytes", "operations per input", "operations at attach"};
        if (used[i] > cap[i]) {
            fprintf(stderr, "fuzz: accepted a %llu-byte file that asks for %llu %s, over its limit %llu\n",
                    (unsigned long long)f, (unsigned long long)used[i], what[i], (unsigned long long)cap[i]);
            return FAILED;
        }
        double share = 100.0 * (double)used[i] / (double)cap[i];
        if (share > max_share[i]) max_share[i] = share;
    }
    if (sum.has_preprocess && !(sum.input_divisor > 0.0f && sum.input_min <= sum.input_max)) {
        fprintf(stderr, "fuzz: accepted PREPROCESS values out of range\n");
        return FAILED;
    }
    void *arena = exact_alloc(64, need); /* exactly need: a write past it is reported */
    rc = elsh_model_attach(&net, arena, need);
    if (rc) {
        free(arena);
        return rc;
    }
    /* a client may print the INFO section: every byte of it must be in the file */
    unsigned info_sum = 0;
    for (size_t i = 0; i < sum.info_bytes; i++) info_sum += (unsigned char)sum.info[i];
    info_sink += info_sum;
    int8_t *xq = (int8_t *)malloc((size_t)sum.n_in);
    float *xf = (float *)malloc((size_t)sum.n_in * sizeof(float));
    if (!xq || !xf) abort();
    elsh_prng rng;
    elsh_prng_seed(&rng, size);
    for (int trial = 0; trial < (light ? 1 : 4) && rc == ELSH_OK; trial++) {
        for (int32_t i = 0; i < sum.n_in; i++) {
            int8_t v = trial == 0 ? (int8_t)first.in_zero
                       : trial == 1 ? (int8_t)127
                       : trial == 2 ? (int8_t)-128
                                    : (int8_t)(elsh_prng_u32(&rng) >> 24);
            xq[i] = v;
            xf[i] = (float)v * 0.37f;
        }
        int p = elsh_qnet_forward(&net, xq);
        if (p < 0 || p >= sum.n_classes) {
            fprintf(stderr, "fuzz: prediction %d outside 0..%d\n", p, (int)sum.n_classes - 1);
            rc = FAILED;
        } else if (elsh_qnet_quantize_input(&net, xf, xq) != ELSH_OK) {
            rc = FAILED;
        }
    }
    if (rc == ELSH_OK) {
        /* every neuron selected: the most work an input can take, within the work bound (each
         * unit of it is at most 3 counted operations, plus a few per input and neuron) */
        elsh_qnet_set_active(&net, 1.0f, 0);
        if (elsh_qnet_forward(&net, xq) < 0) rc = FAILED;
        uint64_t slack = 0;
        for (uint32_t l = 0; l < m.n_layers; l++) slack += 3u * m.layer[l].n_in + 16u * m.layer[l].n_out;
        if (counted_ops(&net) > 3u * t.input + slack) {
            fprintf(stderr, "fuzz: an input took %llu operations, over 3 * %llu + %llu\n",
                    (unsigned long long)counted_ops(&net), (unsigned long long)t.input, (unsigned long long)slack);
            rc = FAILED;
        }
        elsh_qnet_set_active(&net, 0.0f, 1);
        if (!light && elsh_qnet_forward(&net, xq) < 0) rc = FAILED;
    }
    free(xq);
    free(xf);
    free(arena);
    return rc;
}

/* Run one candidate file from a fresh buffer of exactly `size` bytes (so nothing of an earlier
 * file lies past its end) with a fresh arena of exactly the size asked for. Returns the
 * open/attach status (ELSH_OK: accepted and run) or FAILED. */
static int exercise(const uint8_t *data, size_t size, int light)
{
    uint8_t *file = (uint8_t *)exact_alloc(ELSH_FILE_ALIGN, size);
    memcpy(file, data, size);
    int rc = exercise_in_place(file, size, light);
    free(file);
    return rc;
}

#ifdef ELSH_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (exercise(data, size, 0) == FAILED) abort();
    return 0;
}
#else

/* CPU seconds of this process: the limit is on the work a file causes, not on how busy the
 * machine is. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32); }

static const uint32_t interesting32[] = {0u, 1u, 2u, 3u, 7u, 8u, 15u, 16u, 63u, 64u, 65u, 127u, 128u,
                                         255u, 256u, 1023u, 1024u, 4096u, 65535u, 65536u, 0x7FFFFFFFu,
                                         0x80000000u, 0xFFFFFFFEu, 0xFFFFFFFFu};
#define N_INTERESTING (sizeof interesting32 / sizeof interesting32[0])

static uint32_t pick32(elsh_prng *r, size_t size)
{
    uint32_t k = elsh_prng_below(r, N_INTERESTING + 3);
    if (k == N_INTERESTING) return (uint32_t)size;
    if (k == N_INTERESTING + 1) return (uint32_t)size - elsh_prng_below(r, 64);
    if (k == N_INTERESTING + 2) return elsh_prng_u32(r);
    return interesting32[k];
}

/* Offset of a random field worth targeting: header, a section-table entry, or the start of a
 * random section (NET and LAYER fields sit there). */
static size_t target_offset(elsh_prng *r, const uint8_t *d, size_t size)
{
    uint32_t n_sec = get32(d + 20);
    uint64_t table = get64(d + 24);
    uint32_t what = elsh_prng_below(r, 3);
    if (what == 0 || n_sec == 0 || table + 32u * (uint64_t)n_sec > size) return elsh_prng_below(r, 60);
    uint32_t e = elsh_prng_below(r, n_sec);
    size_t entry = (size_t)table + 32u * e;
    if (what == 1) return entry + 4u * elsh_prng_below(r, 7);
    uint64_t off = get64(d + entry + 8), sz = get64(d + entry + 16);
    if (off >= size || sz == 0) return entry;
    uint64_t span = sz < 64 ? sz : 64;
    return (size_t)(off + elsh_prng_below(r, (uint32_t)span));
}

static size_t mutate(elsh_prng *r, uint8_t *d, size_t size, int *fix_crc)
{
    int n = 1 + (int)elsh_prng_below(r, 4);
    for (int m = 0; m < n && size >= 64; m++) {
        uint32_t kind = elsh_prng_below(r, 8);
        if (kind == 0) { /* bit flip */
            size_t at = elsh_prng_below(r, (uint32_t)size);
            d[at] ^= (uint8_t)(1u << elsh_prng_below(r, 8));
        } else if (kind == 1) { /* interesting byte anywhere */
            static const uint8_t vals[] = {0, 1, 2, 0x7F, 0x80, 0xFF, 0x10, 0x40};
            d[elsh_prng_below(r, (uint32_t)size)] = vals[elsh_prng_below(r, 8)];
        } else if (kind == 2 || kind == 3) { /* interesting word at a targeted field */
            size_t at = target_offset(r, d, size);
            if (at + 4 <= size) put32(d + at, pick32(r, size));
        } else if (kind == 4) { /* interesting byte at a targeted field */
            size_t at = target_offset(r, d, size);
            if (at < size) d[at] = (uint8_t)pick32(r, size);
        } else if (kind == 5) { /* swap two section-table entries' offset/size */
            uint32_t n_sec = get32(d + 20);
            uint64_t table = get64(d + 24);
            if (n_sec >= 2 && table + 32u * (uint64_t)n_sec <= size) {
                size_t a = (size_t)table + 32u * elsh_prng_below(r, n_sec) + 8;
                size_t b = (size_t)table + 32u * elsh_prng_below(r, n_sec) + 8;
                uint8_t tmp[16];
                memcpy(tmp, d + a, 16);
                memcpy(d + a, d + b, 16);
                memcpy(d + b, tmp, 16);
            }
        } else if (kind == 6) { /* random word anywhere in the data */
            size_t at = elsh_prng_below(r, (uint32_t)(size - 3));
            put32(d + at, elsh_prng_u32(r));
        } else { /* truncate, and maybe make the header agree */
            size = 8 + elsh_prng_below(r, (uint32_t)(size - 8));
            if (size >= 64 && elsh_prng_below(r, 2)) {
                put32(d + 32, (uint32_t)size);
                put32(d + 36, 0);
            }
        }
    }
    *fix_crc = elsh_prng_below(r, 4) != 0;
    if (*fix_crc && size >= 64) {
        put32(d + 40, 0);
        put32(d + 40, elsh_crc32(0, d, (size_t)get64(d + 32) <= size ? (size_t)get64(d + 32) : size));
    }
    return size;
}

/* The mutant being run, so that a failure (an invariant, or a sanitizer report through the
 * death callback) can name its iteration and save it. */
static struct {
    long it;
    const char *path, *out;
    unsigned long long seed;
    const uint8_t *data;
    size_t size;
} cur;

static void save_failure(const char *why)
{
    fprintf(stderr, "fuzz: iteration %ld (%s, seed %llu): %s; the file is saved as %s\n", cur.it,
            cur.path, cur.seed, why, cur.out);
    FILE *f = fopen(cur.out, "wb");
    if (f) {
        fwrite(cur.data, 1, cur.size, f);
        fclose(f);
    }
}

#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#ifdef FUZZ_ASAN
void __asan_set_death_callback(void (*callback)(void));
static void on_sanitizer_death(void)
{
    if (cur.data) save_failure("sanitizer report above");
}
#endif

static int load(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n <= 0 || n > (1L << 26)) {
        fclose(f);
        return -1;
    }
    *data = (uint8_t *)malloc((size_t)n);
    if (!*data || fread(*data, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return -1;
    }
    fclose(f);
    *size = (size_t)n;
    return 0;
}

/* Was the file stopped before the reader's deep checks, i.e. by the header checks or the
 * checksum (truncated, magic, version, byte order, header field, CRC)? Every other status
 * comes from a check the reader makes only after the checksum matched. ELSH_FMT_HEADER comes
 * from both sides (a header field, or a section-table entry's flags), so for it the file is
 * opened again with its CRC field damaged: a reader that had passed the checksum now stops
 * there with ELSH_FMT_CRC; one that stopped at a header field stops there again. */
static int stopped_before_deep_checks(int rc, const uint8_t *data, size_t size)
{
    if (rc == ELSH_FMT_TRUNCATED || rc == ELSH_FMT_MAGIC || rc == ELSH_FMT_VERSION ||
        rc == ELSH_FMT_BYTE_ORDER || rc == ELSH_FMT_CRC)
        return 1;
    if (rc != ELSH_FMT_HEADER) return 0;
    uint8_t *file = (uint8_t *)exact_alloc(ELSH_FILE_ALIGN, size);
    memcpy(file, data, size);
    file[40] ^= 1;
    elsh_qnet net;
    size_t need;
    int probe = elsh_model_open(&net, file, size, &need);
    free(file);
    return probe != ELSH_FMT_CRC;
}

static double pct(long n, long of) { return of ? 100.0 * (double)n / (double)of : 0.0; }

#define N_STATUS 132 /* statuses 0 .. -131 */

static void print_statuses(const long *by_status)
{
    printf("  by status:\n");
    for (int c = 0; c < N_STATUS; c++)
        if (by_status[c]) printf("    %7ld  %s\n", by_status[c], c ? elsh_status_str(-c) : "accepted, attached and run");
}

/* Run one file, time it; 0, or 1 after saving a failure. */
static int run_one(const uint8_t *data, size_t size, int light, int *rc, double *slowest)
{
    cur.data = data;
    cur.size = size;
    double t0 = now_s();
    *rc = exercise(data, size, light);
    double dt = now_s() - t0;
    if (dt > *slowest) *slowest = dt;
    if (*rc == FAILED || dt > MAX_SECONDS) {
        save_failure(*rc == FAILED ? "invariant failed" : "took too long");
        return 1;
    }
    return 0;
}

static int fuzz_mutations(long iterations, unsigned long long seed, double min_deep_pct, int n_paths,
                          const char **paths, uint8_t **base, const size_t *base_size, size_t max_size)
{
    uint8_t *work = (uint8_t *)malloc(max_size); /* the mutant; the reader gets an exact copy */
    if (!work) return 2;
    elsh_prng r;
    elsh_prng_seed(&r, seed);
    long accepted = 0, shallow = 0, by_status[N_STATUS] = {0};
    double slowest = 0.0;
    for (long it = 0; it < iterations; it++) {
        int which = (int)elsh_prng_below(&r, (uint32_t)n_paths);
        memcpy(work, base[which], base_size[which]);
        int fixed, rc;
        size_t size = mutate(&r, work, base_size[which], &fixed);
        cur.it = it;
        cur.path = paths[which];
        if (run_one(work, size, 0, &rc, &slowest)) return 1;
        if (rc == ELSH_OK) accepted++;
        else if (stopped_before_deep_checks(rc, work, size)) shallow++;
        if (rc <= 0 && rc > -N_STATUS) by_status[-rc]++;
    }
    long deep = iterations - shallow, deep_rejected = deep - accepted;
    printf("fuzz_model: %ld mutated files from %d models, seed %llu; slowest %.1f ms\n", iterations, n_paths, seed,
           slowest * 1e3);
    printf("  %-62s %7ld %5.1f%%\n", "stopped by the header checks or the CRC", shallow, pct(shallow, iterations));
    printf("  %-62s %7ld %5.1f%%\n", "past the CRC into the deep checks", deep, pct(deep, iterations));
    printf("    %-60s %7ld %5.1f%%\n", "rejected by a deep check (open or attach)", deep_rejected,
           pct(deep_rejected, iterations));
    printf("    %-60s %7ld %5.1f%%\n", "accepted, attached and run", accepted, pct(accepted, iterations));
    print_statuses(by_status);
    free(work);
    if (pct(deep, iterations) < min_deep_pct) {
        fprintf(stderr,
                "fuzz: only %.1f%% of the mutants got past the CRC into the deep checks (at least "
                "%.1f%% expected): the mutations no longer reach most of the reader\n",
                pct(deep, iterations), min_deep_pct);
        return 1;
    }
    return 0;
}

/* Structure-aware files (elsh_gen.h): one rule broken, the expected status known. One in ten
 * models is big (up to 8 layers, up to 1100 wide, up to 1024 tables of 15 bits): those
 * straddle the work limits; the others are small and valid before the break. */
static int fuzz_generated(long iterations, unsigned long long seed)
{
    elsh_prng r;
    elsh_prng_seed(&r, seed ^ 0x5eedULL);
    long files[GEN_N_BREAKS] = {0}, got_ok[GEN_N_BREAKS] = {0}, by_status[N_STATUS] = {0};
    double slowest = 0.0, seconds[GEN_N_BREAKS] = {0};
    for (long it = 0; it < iterations; it++) {
        gen_model m;
        int big = elsh_prng_below(&r, 10) == 0, valid = 0;
        for (int tries = 0; tries < 100 && !valid; tries++) { /* valid whatever its size */
            gen_random_model(&r, &m, big);
            valid = gen_verdict(&m, 0) == ELSH_OK;
        }
        int which = (int)elsh_prng_below(&r, GEN_N_BREAKS), expect, rc;
        if ((which == GEN_BREAK_BIG_HASHING || which == GEN_BREAK_STRADDLE) && elsh_prng_below(&r, 2))
            which = (int)elsh_prng_below(&r, GEN_N_BREAKS); /* the costly ones half as often */
        if (!valid) which = GEN_BREAK_BIG_HASHING; /* the limits decide, as for any big layer */
        size_t size;
        uint8_t *file = gen_broken(which, &m, &r, &size, &expect);
        if (!file) { /* the break needs what this model lacks: the valid file */
            which = GEN_BREAK_NONE;
            file = gen_broken(which, &m, &r, &size, &expect);
        }
        cur.it = it;
        cur.path = gen_break_name(which);
        double t0 = now_s();
        if (run_one(file, size, which >= GEN_BREAK_BIG_HASHING, &rc, &slowest)) {
            free(file);
            return 1;
        }
        if (rc != expect) {
            char why[200];
            snprintf(why, sizeof why, "%s: status %d (%s), expected %d (%s)", gen_break_name(which), rc,
                     elsh_status_str(rc), expect, elsh_status_str(expect));
            save_failure(why);
            free(file);
            return 1;
        }
        free(file);
        seconds[which] += now_s() - t0;
        files[which]++;
        got_ok[which] += rc == ELSH_OK;
        if (rc <= 0 && rc > -N_STATUS) by_status[-rc]++;
    }
    printf("fuzz_model: %ld structure-aware files, seed %llu; every status as expected; slowest %.1f ms\n",
           iterations, seed, slowest * 1e3);
    printf("  %-46s %7s %9s %9s\n", "rule broken", "files", "accepted", "seconds");
    for (int w = 0; w < GEN_N_BREAKS; w++)
        printf("  %-46s %7ld %9ld %9.1f\n", gen_break_name(w), files[w], got_ok[w], seconds[w]);
    print_statuses(by_status);
    printf("  largest share of a per-file limit used by an accepted file: arena %.1f%%, work per input "
           "%.1f%%, work at attach %.1f%%\n",
           max_share[0], max_share[1], max_share[2]);
    return 0;
}

int main(int argc, char **argv)
{
    long iterations = 100000, generated = 0;
    unsigned long long seed = 1;
    double min_deep_pct = 5.0;
    const char *paths[64];
    int n_paths = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) iterations = atol(argv[++i]);
        else if (!strcmp(argv[i], "-g") && i + 1 < argc) generated = atol(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) min_deep_pct = atof(argv[++i]);
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) cur.out = argv[++i];
        else if (n_paths < 64) paths[n_paths++] = argv[i];
    }
    if ((n_paths == 0 && iterations > 0) || iterations < 0 || generated < 0) {
        fprintf(stderr, "usage: fuzz_model [-n MUTATED] [-g GENERATED] [-s SEED] [-p MIN_DEEP_PERCENT] "
                        "[-o FAILURE.elsh] FILE.elsh...\n");
        return 2;
    }
    uint8_t *base[64];
    size_t base_size[64], max_size = 0;
    for (int i = 0; i < n_paths; i++) {
        if (load(paths[i], &base[i], &base_size[i])) {
            fprintf(stderr, "fuzz: cannot read %s\n", paths[i]);
            return 2;
        }
        if (base_size[i] > max_size) max_size = base_size[i];
    }
    /* the unmutated files must all load and run */
    for (int i = 0; i < n_paths; i++) {
        int rc = exercise(base[i], base_size[i], 0);
        if (rc != ELSH_OK) {
            fprintf(stderr, "fuzz: %s does not load and run: %s\n", paths[i],
                    rc == FAILED ? "invariant failed" : elsh_status_str(rc));
            return 1;
        }
    }
    cur.seed = seed;
    if (!cur.out) cur.out = "fuzz_failure.elsh";
#ifdef FUZZ_ASAN
    __asan_set_death_callback(on_sanitizer_death);
#endif
    int status = 0;
    if (iterations > 0) status = fuzz_mutations(iterations, seed, min_deep_pct, n_paths, paths, base, base_size, max_size);
    if (status == 0 && generated > 0) status = fuzz_generated(generated, seed);
    for (int i = 0; i < n_paths; i++) free(base[i]);
    return status;
}
#endif
