/* edge_lsh_run.c - run an .elsh model without Python.
 *
 *   edge-lsh-run MODEL.elsh [INPUT.csv|INPUT.npy] [options]
 *
 * Loads and validates the model (zero copy: the file is read once into an aligned buffer and
 * used in place), classifies every input row and prints one prediction per line, then a summary
 * (accuracy when labels are given, latency, operation counts, memory) on lines starting "# ".
 * Inputs: CSV of n_in floats per row (a row of n_in + 1 values carries its label last), or a
 * 2-D .npy of float32, float64, uint8 or int8 (C order). Without an input file, reads CSV
 * from stdin. This is the program a Raspberry Pi runs; the firmware builds reuse its parts. */
#define _POSIX_C_SOURCE 199309L
#include "edge_lsh.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FILE_BYTES ((size_t)1 << 31)

static const char *usage =
    "usage: edge-lsh-run MODEL.elsh [INPUT.csv|INPUT.npy|-] [options]\n"
    "  --logits         print the int32 logits after each prediction\n"
    "  --quiet          print only the summary\n"
    "  --dense          compute every neuron (the dense int8 baseline)\n"
    "  --active F       active fraction of every LSH layer (0 < F <= 1; default: the file's)\n"
    "  --repeat N       run the inputs N times (latency measurements; default 1)\n"
    "  --info           print the model's layers and exit\n"
    "  --help           this text\n";

static void *xmalloc_aligned(size_t bytes, size_t align, void **raw)
{
    *raw = malloc(bytes + align);
    if (!*raw) return NULL;
    uintptr_t p = ((uintptr_t)*raw + align - 1) & ~(uintptr_t)(align - 1);
    return (void *)p;
}

static int read_file(const char *path, void **raw, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "edge-lsh-run: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    *data = NULL;
    *raw = NULL;
    for (;;) {
        void *nraw;
        uint8_t *nd = (uint8_t *)xmalloc_aligned(cap, 64, &nraw);
        if (!nd) {
            fprintf(stderr, "edge-lsh-run: out of memory reading %s\n", path);
            free(*raw);
            fclose(f);
            return -1;
        }
        if (n) memcpy(nd, *data, n);
        free(*raw);
        *raw = nraw;
        *data = nd;
        n += fread(nd + n, 1, cap - n, f);
        if (n < cap) break;
        if (cap >= MAX_FILE_BYTES) {
            fprintf(stderr, "edge-lsh-run: %s is larger than 2 GiB\n", path);
            fclose(f);
            return -1;
        }
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "edge-lsh-run: error reading %s\n", path);
        return -1;
    }
    *size = n;
    return 0;
}

/* ---------------------------------------------------------------- inputs */

typedef struct {
    float *x;       /* [n][n_in] */
    int32_t *label; /* [n], -1 when unknown */
    int64_t n, cap;
    int64_t n_labels;
} rows;

/* Room for one more row. Sizes are checked in 64 bits so that they cannot wrap on 32-bit
 * boards; out of memory says so. */
static int rows_push(rows *r, int32_t n_in, const char *name)
{
    if (r->n == r->cap) {
        int64_t cap = r->cap ? 2 * r->cap : 256;
        uint64_t bytes = (uint64_t)cap * (uint64_t)n_in * sizeof(float);
        float *x = bytes <= SIZE_MAX ? (float *)realloc(r->x, (size_t)bytes) : NULL;
        if (!x) {
            fprintf(stderr, "edge-lsh-run: %s: out of memory at %lld rows\n", name, (long long)r->n);
            return -1;
        }
        r->x = x;
        int32_t *l = (int32_t *)realloc(r->label, (size_t)cap * sizeof(int32_t));
        if (!l) {
            fprintf(stderr, "edge-lsh-run: %s: out of memory at %lld rows\n", name, (long long)r->n);
            return -1;
        }
        r->label = l;
        r->cap = cap;
    }
    r->label[r->n] = -1;
    r->n++;
    return 0;
}

/* One line of any length into *buf (grown as needed, NUL-terminated, newline dropped).
 * Returns its length, -1 at end of input, -2 out of memory. */
static long read_line(FILE *f, char **buf, size_t *cap)
{
    size_t len = 0;
    int c;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (len + 2 > *cap) {
            size_t ncap = *cap ? 2 * *cap : 4096;
            char *nb = ncap > *cap ? (char *)realloc(*buf, ncap) : NULL;
            if (!nb) return -2;
            *buf = nb;
            *cap = ncap;
        }
        (*buf)[len++] = (char)c;
    }
    if (c == EOF && len == 0) return -1;
    if (!*buf) { /* an empty last line */
        *buf = (char *)malloc(1);
        if (!*buf) return -2;
        *cap = 1;
    }
    (*buf)[len] = '\0';
    return (long)len;
}

static int read_csv(FILE *f, const char *name, int32_t n_in, int32_t n_classes, rows *r)
{
    char *line = NULL;
    size_t cap = 0;
    int64_t lineno = 0;
    int rc = -1;
    float *vals = (float *)malloc(((size_t)n_in + 2u) * sizeof(float));
    if (!vals) return -1;
    for (;;) {
        long got = read_line(f, &line, &cap);
        if (got == -1) break;
        if (got == -2) {
            fprintf(stderr, "edge-lsh-run: %s: out of memory reading a line\n", name);
            goto done;
        }
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\r' || *p == '\0' || *p == '#') continue;
        int32_t count = 0;
        for (;;) {
            char *end;
            errno = 0;
            float v = strtof(p, &end);
            /* ERANGE on underflow (a subnormal) is a fine value; on overflow it is not */
            int overflow = errno == ERANGE && (v > 1.0f || v < -1.0f);
            if (end == p || overflow || !(v - v == 0.0f)) {
                if (lineno == 1 && count == 0 && end == p) goto next_line; /* a header row */
                fprintf(stderr, "edge-lsh-run: %s:%lld: value %d is not a finite number\n", name,
                        (long long)lineno, (int)count + 1);
                goto done;
            }
            if (count <= n_in) vals[count] = v;
            count++;
            p = end;
            while (*p == ' ' || *p == '\t') p++;
            if (*p == ',' || *p == ';') {
                p++;
                continue;
            }
            if (*p == '\r' || *p == '\0') break;
            fprintf(stderr, "edge-lsh-run: %s:%lld: unexpected character '%c'\n", name,
                    (long long)lineno, *p);
            goto done;
        }
        if (count != n_in && count != n_in + 1) {
            fprintf(stderr, "edge-lsh-run: %s:%lld: %d values; the model takes %d (plus an optional label)\n",
                    name, (long long)lineno, (int)count, (int)n_in);
            goto done;
        }
        if (rows_push(r, n_in, name)) goto done;
        memcpy(r->x + (r->n - 1) * n_in, vals, (size_t)n_in * sizeof(float));
        if (count == n_in + 1) {
            float lv = vals[n_in];
            /* range first: converting an out-of-range float to int is undefined */
            if (!(lv >= 0.0f && lv < (float)n_classes) || lv != (float)(int32_t)lv) {
                fprintf(stderr, "edge-lsh-run: %s:%lld: label %g is not a class 0..%d\n", name,
                        (long long)lineno, (double)lv, (int)n_classes - 1);
                goto done;
            }
            r->label[r->n - 1] = (int32_t)lv;
            r->n_labels++;
        }
    next_line:;
    }
    rc = 0;
done:
    free(line);
    free(vals);
    return rc;
}

/* The value of 'key': in a .npy header dict, or NULL. */
static const char *npy_field(const char *hdr, const char *key)
{
    const char *k = strstr(hdr, key);
    if (!k) return NULL;
    k += strlen(key);
    while (*k == ' ') k++;
    return k;
}

/* A minimal .npy reader: version 1-3, 2-D, C order, <f4 <f8 |u1 |i1. */
static int read_npy(const uint8_t *d, size_t size, const char *name, int32_t n_in, rows *r)
{
    if (size < 10 || memcmp(d, "\x93NUMPY", 6) != 0) {
        fprintf(stderr, "edge-lsh-run: %s is not a .npy file\n", name);
        return -1;
    }
    size_t hlen, start;
    if (d[6] == 1) {
        hlen = (size_t)d[8] | ((size_t)d[9] << 8);
        start = 10;
    } else {
        if (size < 12) goto bad;
        hlen = (size_t)d[8] | ((size_t)d[9] << 8) | ((size_t)d[10] << 16) | ((size_t)d[11] << 24);
        start = 12;
    }
    if (hlen > size - start || hlen > 4096) goto bad;
    char hdr[4097];
    memcpy(hdr, d + start, hlen);
    hdr[hlen] = '\0';
    const char *descr = npy_field(hdr, "'descr':");
    const char *fortran = npy_field(hdr, "'fortran_order':");
    const char *shape = npy_field(hdr, "'shape':");
    if (!descr || !fortran || !shape) goto bad;
    int elem;
    char kind;
    if (!strncmp(descr, "'<f4'", 5)) elem = 4, kind = 'f';
    else if (!strncmp(descr, "'<f8'", 5)) elem = 8, kind = 'd';
    else if (!strncmp(descr, "'|u1'", 5)) elem = 1, kind = 'u';
    else if (!strncmp(descr, "'|i1'", 5)) elem = 1, kind = 'i';
    else {
        fprintf(stderr, "edge-lsh-run: %s: dtype must be float32, float64, uint8 or int8\n", name);
        return -1;
    }
    if (strncmp(fortran, "False", 5) != 0) {
        fprintf(stderr, "edge-lsh-run: %s: Fortran-order arrays are not supported\n", name);
        return -1;
    }
    long long n_rows, n_cols;
    char close;
    if (sscanf(shape, "(%lld, %lld%c", &n_rows, &n_cols, &close) != 3 || close != ')' || n_rows < 0) {
        fprintf(stderr, "edge-lsh-run: %s: expected a 2-D array\n", name);
        return -1;
    }
    if (n_cols != n_in) {
        fprintf(stderr, "edge-lsh-run: %s: rows of %lld values; the model takes %d\n", name, n_cols, (int)n_in);
        return -1;
    }
    uint64_t data = (uint64_t)start + hlen, row_bytes = (uint64_t)elem * (uint64_t)n_in;
    if ((uint64_t)n_rows > ((uint64_t)size - data) / row_bytes) {
        fprintf(stderr, "edge-lsh-run: %s: truncated (shape says %lld rows)\n", name, n_rows);
        return -1;
    }
    for (long long i = 0; i < n_rows; i++) {
        if (rows_push(r, n_in, name)) return -1;
        float *x = r->x + (r->n - 1) * n_in;
        for (int32_t c = 0; c < n_in; c++) {
            const uint8_t *e = d + data + ((size_t)i * (size_t)n_in + (size_t)c) * (size_t)elem;
            float v;
            if (kind == 'f') {
                memcpy(&v, e, 4);
            } else if (kind == 'd') {
                double dv;
                memcpy(&dv, e, 8);
                if (dv > 3.0e38) dv = 3.0e38; /* beyond float: clamp (NaN stays NaN, rejected later) */
                if (dv < -3.0e38) dv = -3.0e38;
                v = (float)dv;
            } else if (kind == 'u') {
                v = (float)e[0];
            } else {
                v = (float)(int8_t)e[0];
            }
            x[c] = v;
        }
    }
    return 0;
bad:
    fprintf(stderr, "edge-lsh-run: %s: malformed .npy header\n", name);
    return -1;
}

/* ---------------------------------------------------------------- timing */

static double now_us(void)
{
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
#else
    return (double)clock() * 1e6 / CLOCKS_PER_SEC;
#endif
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_info(const elsh_qnet *net, size_t file_bytes)
{
    static const char *fam[] = {"simhash", "ternary", "dwta"};
    elsh_qnet_summary m;
    elsh_qnet_info(net, &m);
    printf("# model: %zu bytes, %d inputs, %d classes, %d layers, arena %zu bytes\n", file_bytes,
           (int)m.n_in, (int)m.n_classes, (int)m.n_layers, m.arena_bytes);
    for (int32_t l = 0; l < m.n_layers; l++) {
        elsh_qlayer_summary L;
        elsh_qnet_layer_info(net, l, &L);
        printf("# layer %d: %d -> %d, int%d weights, ", (int)l, (int)L.n_in, (int)L.n_out, (int)L.weight_bits);
        if (L.use_lsh)
            printf("LSH k=%d, %s K=%d L=%d pool=%d, tables %s\n", (int)L.k, fam[L.hash.family], (int)L.hash.bits,
                   (int)L.hash.tables, (int)L.hash.pool, L.tables_in_file ? "stored" : "rebuilt at load");
        else
            printf("dense\n");
    }
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *input_path = NULL;
    int show_logits = 0, quiet = 0, dense = 0, info_only = 0;
    float active = 0.0f;
    long repeat = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--logits")) {
            show_logits = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--dense")) {
            dense = 1;
        } else if (!strcmp(a, "--info")) {
            info_only = 1;
        } else if (!strcmp(a, "--active") || !strcmp(a, "--repeat")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "edge-lsh-run: %s needs a value\n%s", a, usage);
                return 2;
            }
            char *end;
            errno = 0;
            if (!strcmp(a, "--active")) {
                active = strtof(argv[++i], &end);
                if (*end || errno || !(active > 0.0f && active <= 1.0f)) {
                    fprintf(stderr, "edge-lsh-run: --active must be in (0, 1], got %s\n", argv[i]);
                    return 2;
                }
            } else {
                repeat = strtol(argv[++i], &end, 10);
                if (*end || errno || repeat < 1 || repeat > 1000000) {
                    fprintf(stderr, "edge-lsh-run: --repeat must be 1..1000000, got %s\n", argv[i]);
                    return 2;
                }
            }
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "edge-lsh-run: unknown option %s\n%s", a, usage);
            return 2;
        } else if (!model_path) {
            model_path = a;
        } else if (!input_path) {
            input_path = a;
        } else {
            fprintf(stderr, "edge-lsh-run: unexpected argument %s\n%s", a, usage);
            return 2;
        }
    }
    if (!model_path) {
        fputs(usage, stderr);
        return 2;
    }

    void *model_raw;
    uint8_t *model;
    size_t model_bytes;
    if (read_file(model_path, &model_raw, &model, &model_bytes)) return 1;
    elsh_qnet net;
    size_t arena_bytes;
    double t_load = now_us();
    int rc = elsh_model_open(&net, model, model_bytes, &arena_bytes);
    double t_open = now_us() - t_load;
    if (rc) {
        fprintf(stderr, "edge-lsh-run: %s: %s\n", model_path, elsh_status_str(rc));
        return 1;
    }
    void *arena_raw;
    void *arena = xmalloc_aligned(arena_bytes ? arena_bytes : 1, 64, &arena_raw);
    if (!arena) {
        fprintf(stderr, "edge-lsh-run: cannot allocate %zu bytes of arena\n", arena_bytes);
        return 1;
    }
    t_load = now_us();
    rc = elsh_model_attach(&net, arena, arena_bytes);
    t_load = now_us() - t_load + t_open; /* validation (CRC included) + attach */
    if (rc) {
        fprintf(stderr, "edge-lsh-run: %s: %s\n", model_path, elsh_status_str(rc));
        return 1;
    }
    if (info_only) {
        print_info(&net, model_bytes);
        return 0;
    }
    elsh_qnet_set_active(&net, active, dense);
    elsh_qnet_summary shape;
    elsh_qnet_info(&net, &shape);

    rows r;
    memset(&r, 0, sizeof r);
    const char *name = input_path ? input_path : "<stdin>";
    size_t nlen = input_path ? strlen(input_path) : 0;
    if (input_path && nlen > 4 && !strcmp(input_path + nlen - 4, ".npy")) {
        void *raw;
        uint8_t *d;
        size_t size;
        if (read_file(input_path, &raw, &d, &size)) return 1;
        if (read_npy(d, size, name, shape.n_in, &r)) return 1;
        free(raw);
    } else {
        FILE *f = (!input_path || !strcmp(input_path, "-")) ? stdin : fopen(input_path, "r");
        if (!f) {
            fprintf(stderr, "edge-lsh-run: cannot open %s: %s\n", input_path, strerror(errno));
            return 1;
        }
        if (read_csv(f, name, shape.n_in, shape.n_classes, &r)) return 1;
        if (f != stdin) fclose(f);
    }
    if (r.n == 0) {
        fprintf(stderr, "edge-lsh-run: %s holds no input rows\n", name);
        return 1;
    }

    if ((uint64_t)r.n * (uint64_t)repeat > (uint64_t)SIZE_MAX / sizeof(double)) {
        fprintf(stderr, "edge-lsh-run: %lld inputs times --repeat %ld is too many to time\n", (long long)r.n, repeat);
        return 1;
    }
    int8_t *xq = (int8_t *)malloc((size_t)shape.n_in);
    int32_t *pred = (int32_t *)malloc((size_t)r.n * sizeof(int32_t));
    double *lat = (double *)malloc((size_t)r.n * (size_t)repeat * sizeof(double));
    if (!xq || !pred || !lat) {
        fprintf(stderr, "edge-lsh-run: out of memory\n");
        return 1;
    }
    elsh_qnet_reset_counters(&net);
    int64_t correct = 0, n_lat = 0;
    for (long rep = 0; rep < repeat; rep++) {
        for (int64_t i = 0; i < r.n; i++) {
            double t0 = now_us();
            rc = elsh_qnet_quantize_input(&net, r.x + i * shape.n_in, xq);
            if (rc) {
                fprintf(stderr, "edge-lsh-run: row %lld: %s\n", (long long)i + 1, elsh_status_str(rc));
                return 1;
            }
            int p = elsh_qnet_forward(&net, xq);
            lat[n_lat++] = now_us() - t0;
            if (p < 0) {
                fprintf(stderr, "edge-lsh-run: row %lld: %s\n", (long long)i + 1, elsh_status_str(p));
                return 1;
            }
            pred[i] = p;
            if (rep > 0) continue;
            correct += r.label[i] >= 0 && r.label[i] == p;
            if (quiet) continue;
            printf("%d", p);
            if (show_logits) {
                const int32_t *logits = elsh_qnet_logits(&net);
                for (int32_t j = 0; j < shape.n_classes; j++) printf(" %ld", (long)logits[j]);
            }
            putchar('\n');
        }
    }
    qsort(lat, (size_t)n_lat, sizeof(double), cmp_double);
    int64_t runs = r.n * repeat;
    elsh_ops h = elsh_qnet_ops(&net, ELSH_PHASE_HASH, 1), fw = elsh_qnet_ops(&net, ELSH_PHASE_FORWARD, 1);
    uint64_t dense_macs = 0;
    for (int32_t l = 0; l < shape.n_layers; l++) {
        elsh_qlayer_summary L;
        elsh_qnet_layer_info(&net, l, &L);
        dense_macs += (uint64_t)L.n_in * (uint64_t)L.n_out;
    }
    printf("# inputs: %lld%s\n", (long long)r.n, repeat > 1 ? " (each run --repeat times)" : "");
    if (r.n_labels)
        printf("# accuracy: %.4f (%lld of %lld labelled rows)\n", (double)correct / (double)r.n_labels,
               (long long)correct, (long long)r.n_labels);
    printf("# latency_us: median %.2f, p90 %.2f, min %.2f (per input, quantization included)\n",
           lat[n_lat / 2], lat[(n_lat * 9) / 10], lat[0]);
    printf("# per input: %.0f multiplications (%.2f%% of dense %llu), %.0f additions, %.0f comparisons, "
           "%.0f weight bytes, %.0f table bytes\n",
           (double)(h.mul + fw.mul) / (double)runs, 100.0 * (double)(h.mul + fw.mul) / (double)runs / (double)dense_macs,
           (unsigned long long)dense_macs, (double)(h.add + fw.add) / (double)runs,
           (double)(h.cmp + fw.cmp) / (double)runs, (double)(h.weight_bytes + fw.weight_bytes) / (double)runs,
           (double)h.table_bytes / (double)runs);
    printf("# memory: model %zu bytes (used in place), arena %zu bytes; load %.0f us "
           "(validate %.0f us, attach %.0f us)\n",
           model_bytes, arena_bytes, t_load, t_open, t_load - t_open);
    free(xq);
    free(pred);
    free(lat);
    free(r.x);
    free(r.label);
    free(arena_raw);
    free(model_raw);
    return 0;
}
