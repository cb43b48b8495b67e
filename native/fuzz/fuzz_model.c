/* fuzz_model.c - mutation fuzzing of the .elsh reader (model_io.c) and of inference on
 * whatever it accepts. Build and run it under AddressSanitizer + UndefinedBehaviorSanitizer:
 *
 *   make -C native fuzz            # 100000 mutated files from the golden models in export/golden
 *   build-asan/fuzz_model [-n N] [-s SEED] [-p MIN_DEEP_PERCENT] [-o FAILURE.elsh] FILE.elsh...
 *
 * Each input is a valid model file with 1-4 mutations: bit flips, interesting bytes and
 * words at random places, targeted edits of header, section-table, NET and LAYER fields,
 * section swaps and truncation. Three times in four the CRC is recomputed afterwards, so the
 * checks behind the checksum are reached too. Every accepted file is attached and run on
 * inputs at the edges (zeros, extremes, random), and its INFO section is read. Each file sits
 * in a fresh buffer of exactly its size and gets a fresh arena of exactly the size the reader
 * asks for, so ASan reports a read past the end of a truncated file or a write past the arena.
 *
 * A crash, a sanitizer report, an out-of-range prediction or an input that takes over a second
 * fails the run (the mutant is saved to FAILURE.elsh, default fuzz_failure.elsh, and its
 * iteration printed). So does a starved fuzzer: fewer than MIN_DEEP_PERCENT (default 5) of the
 * mutants getting past the header checks and the CRC into the reader's deep checks. The
 * report gives those shares and the count of each status. Deterministic for a seed.
 * make -C native fuzz-selftest checks that planted bugs in the reader fail the run.
 *
 * With -DELSH_LIBFUZZER the same checks form a libFuzzer target (LLVMFuzzerTestOneInput). */
#define _POSIX_C_SOURCE 200112L
#include "edge_lsh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Files whose arena would exceed this are opened but not attached or run (counted, printed). */
#define MAX_ARENA ((size_t)64 << 20)
#define FAILED 1000  /* exercise(): an invariant failed */
#define SKIPPED 1001 /* exercise(): accepted by elsh_model_open, arena over MAX_ARENA */

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

/* Open, attach and run a file that sits in exactly `size` bytes. */
static int exercise_in_place(const uint8_t *file, size_t size)
{
    elsh_qnet net;
    size_t need;
    int rc = elsh_model_open(&net, file, size, &need);
    if (rc) return rc;
    if (need > MAX_ARENA) return SKIPPED; /* valid but larger than this harness allows */
    void *arena = exact_alloc(64, need); /* exactly need: a write past it is reported */
    rc = elsh_model_attach(&net, arena, need);
    if (rc) {
        free(arena);
        return rc;
    }
    /* a client may print the INFO section: every byte of it must be in the file */
    unsigned info_sum = 0;
    for (size_t i = 0; i < net.info_bytes; i++) info_sum += (unsigned char)net.info[i];
    info_sink += info_sum;
    int8_t *xq = (int8_t *)malloc((size_t)net.n_in);
    float *xf = (float *)malloc((size_t)net.n_in * sizeof(float));
    if (!xq || !xf) abort();
    elsh_prng rng;
    elsh_prng_seed(&rng, size);
    for (int trial = 0; trial < 4 && rc == ELSH_OK; trial++) {
        for (int32_t i = 0; i < net.n_in; i++) {
            int8_t v = trial == 0 ? (int8_t)net.layers[0].in_zero
                       : trial == 1 ? (int8_t)127
                       : trial == 2 ? (int8_t)-128
                                    : (int8_t)(elsh_prng_u32(&rng) >> 24);
            xq[i] = v;
            xf[i] = (float)v * 0.37f;
        }
        int p = elsh_qnet_forward(&net, xq);
        if (p < 0 || p >= net.n_classes) {
            fprintf(stderr, "fuzz: prediction %d outside 0..%d\n", p, (int)net.n_classes - 1);
            rc = FAILED;
        } else if (elsh_qnet_quantize_input(&net, xf, xq) != ELSH_OK) {
            rc = FAILED;
        }
    }
    if (rc == ELSH_OK) {
        elsh_qnet_set_active(&net, 1.0f, 0);
        if (elsh_qnet_forward(&net, xq) < 0) rc = FAILED;
        elsh_qnet_set_active(&net, 0.0f, 1);
        if (elsh_qnet_forward(&net, xq) < 0) rc = FAILED;
    }
    free(xq);
    free(xf);
    free(arena);
    return rc;
}

/* Run one candidate file from a fresh buffer of exactly `size` bytes (so nothing of an earlier
 * file lies past its end) with a fresh arena of exactly the size asked for. Returns the
 * open/attach status (ELSH_OK: accepted and run), SKIPPED, or FAILED. */
static int exercise(const uint8_t *data, size_t size)
{
    uint8_t *file = (uint8_t *)exact_alloc(ELSH_FILE_ALIGN, size);
    memcpy(file, data, size);
    int rc = exercise_in_place(file, size);
    free(file);
    return rc;
}

#ifdef ELSH_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (exercise(data, size) == FAILED) abort();
    return 0;
}
#else

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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
    fprintf(stderr, "fuzz: iteration %ld (%s, seed %llu): %s; mutated file saved as %s "
                    "(rerun: -s %llu -n %ld)\n",
            cur.it, cur.path, cur.seed, why, cur.out, cur.seed, cur.it + 1);
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

static double pct(long n, long of) { return 100.0 * (double)n / (double)of; }

int main(int argc, char **argv)
{
    long iterations = 100000;
    unsigned long long seed = 1;
    double min_deep_pct = 5.0;
    const char *paths[64];
    int n_paths = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) iterations = atol(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) min_deep_pct = atof(argv[++i]);
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) cur.out = argv[++i];
        else if (n_paths < 64) paths[n_paths++] = argv[i];
    }
    if (n_paths == 0 || iterations < 1) {
        fprintf(stderr, "usage: fuzz_model [-n ITERATIONS] [-s SEED] [-p MIN_DEEP_PERCENT] "
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
    uint8_t *work = (uint8_t *)malloc(max_size); /* the mutant; the reader gets an exact copy */
    if (!work) return 2;

    /* the unmutated files must all load and run */
    for (int i = 0; i < n_paths; i++) {
        int rc = exercise(base[i], base_size[i]);
        if (rc != ELSH_OK) {
            fprintf(stderr, "fuzz: %s does not load and run: %s\n", paths[i],
                    rc == SKIPPED  ? "arena over the harness's limit"
                    : rc == FAILED ? "invariant failed"
                                   : elsh_status_str(rc));
            return 1;
        }
    }
    cur.seed = seed;
    if (!cur.out) cur.out = "fuzz_failure.elsh";
#ifdef FUZZ_ASAN
    __asan_set_death_callback(on_sanitizer_death);
#endif
    elsh_prng r;
    elsh_prng_seed(&r, seed);
#define N_STATUS 132 /* statuses 0 .. -131 */
    long accepted = 0, skipped = 0, shallow = 0, by_status[N_STATUS] = {0};
    double slowest = 0.0;
    for (long it = 0; it < iterations; it++) {
        int which = (int)elsh_prng_below(&r, (uint32_t)n_paths);
        memcpy(work, base[which], base_size[which]);
        int fixed;
        size_t size = mutate(&r, work, base_size[which], &fixed);
        cur.it = it;
        cur.path = paths[which];
        cur.data = work;
        cur.size = size;
        double t0 = now_s();
        int rc = exercise(work, size);
        double dt = now_s() - t0;
        if (dt > slowest) slowest = dt;
        if (rc == FAILED || dt > 1.0) {
            save_failure(rc == FAILED ? "invariant failed" : "took over a second");
            return 1;
        }
        if (rc == ELSH_OK) accepted++;
        else if (rc == SKIPPED) skipped++;
        else if (stopped_before_deep_checks(rc, work, size)) shallow++;
        if (rc <= 0 && rc > -N_STATUS) by_status[-rc]++;
    }
    long deep = iterations - shallow, deep_rejected = deep - accepted - skipped;
    printf("fuzz_model: %ld mutated files from %d models, seed %llu; slowest %.1f ms\n",
           iterations, n_paths, seed, slowest * 1e3);
    printf("  %-62s %7ld %5.1f%%\n", "stopped by the header checks or the CRC", shallow,
           pct(shallow, iterations));
    printf("  %-62s %7ld %5.1f%%\n", "past the CRC into the deep checks", deep, pct(deep, iterations));
    printf("    %-60s %7ld %5.1f%%\n", "rejected by a deep check (open or attach)", deep_rejected,
           pct(deep_rejected, iterations));
    printf("    %-60s %7ld %5.1f%%\n", "accepted, attached and run", accepted,
           pct(accepted, iterations));
    printf("    %-60s %7ld %5.1f%%\n", "accepted, not run: arena over 64 MB (harness limit)", skipped,
           pct(skipped, iterations));
    printf("  rejections by status:\n");
    for (int c = 1; c < N_STATUS; c++)
        if (by_status[c]) printf("    %7ld  %s\n", by_status[c], elsh_status_str(-c));
    free(work);
    for (int i = 0; i < n_paths; i++) free(base[i]);
    if (pct(deep, iterations) < min_deep_pct) {
        fprintf(stderr,
                "fuzz: only %.1f%% of the mutants got past the CRC into the deep checks (at least "
                "%.1f%% expected): the mutations no longer reach most of the reader\n",
                pct(deep, iterations), min_deep_pct);
        return 1;
    }
    return 0;
}
#endif
