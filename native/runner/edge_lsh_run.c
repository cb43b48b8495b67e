/* edge_lsh_run.c - run an .elsh model without Python.
 *
 *   edge-lsh-run MODEL.elsh [INPUT.csv|INPUT.npy] [options]
 *
 * Loads and validates the model (zero copy: the file is read once into an aligned buffer and
 * used in place), classifies every input row and prints one prediction per line, then a summary
 * (accuracy when labels are given, latency, operation counts, memory) on lines starting "# ".
 * Inputs: CSV of n_in floats per row (a row of n_in + 1 values carries its label, in the last
 * column unless --label-column first), or an .npy of float32, float64, uint8 or int8 (C order):
 * rows of n_in values, or N arrays (images) of n_in values each. Without an input file, reads
 * CSV from stdin. Inputs are raw numbers, scaled as the model's PREPROCESS section says
 * (--no-preprocess: scaled already). This is the program a Raspberry Pi runs; the firmware
 * builds reuse its parts.
 * Exit status: 0 done, 2 a bad argument, model or input (one message on stderr), 1 out of
 * memory or a read error. */
#define _POSIX_C_SOURCE 199309L
#include "edge_lsh.h"
#include "edge_lsh_finetune.h"
#include "edge_lsh_train.h" /* ELSH_MAX_THREADS, ELSH_MAX_BATCH */

#if !defined(ELSH_RUN_NO_TRAIN)
#include "atomic_file.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILE_BYTES ((size_t)1 << 31)
#define DEFAULT_MAX_ARENA ((size_t)256 << 20) /* 256 MiB: room on a 512 MB Pi Zero */
#define EXIT_BAD 2                             /* bad argument, model or input */
#define EXIT_FAIL 1                            /* out of memory, read error */

#define STR_(x) #x
#define STR(x) STR_(x)
#define VERSION STR(ELSH_VERSION_MAJOR) "." STR(ELSH_VERSION_MINOR)
#define FORMAT_VERSION STR(ELSH_FORMAT_MAJOR) "." STR(ELSH_FORMAT_MINOR)

static const char *usage =
    "usage: edge-lsh-run MODEL.elsh [INPUT.csv|INPUT.npy|-] [options]\n"
    "       edge-lsh-run MODEL.elsh --train SAMPLES.csv --out NEW.elsh [--epochs N] [options]\n"
    "Classifies each input row with the model: one predicted class per line, then a summary on\n"
    "lines starting '# ' (accuracy when rows carry labels, latency, operations, memory).\n"
    "  INPUT.csv           n_in numbers per row, separated by , or ; (an optional header line,\n"
    "                      # comments); a row of n_in + 1 carries its class label, in the last\n"
    "                      column unless --label-column first. '-' or no INPUT: CSV on stdin\n"
    "  INPUT.npy           float32, float64, uint8 or int8, C order: rows of n_in values, or N\n"
    "                      arrays (e.g. images) of n_in values each\n"
    "options:\n"
    "  --label-column first|last\n"
    "                      the CSV column that holds the label (default: last); a file that does\n"
    "                      not fit (e.g. its labels are first) is an error naming the flag\n"
    "  --no-preprocess     the inputs are scaled already: by default they are the raw numbers of the\n"
    "                      training files (e.g. pixels 0..255), divided as the model's PREPROCESS\n"
    "                      section says; a warning on stderr when they fall far outside the\n"
    "                      training range after that\n"
    "  --logits            print the int32 logits of every class after each prediction\n"
    "  --probs             print the class probabilities after each prediction (and after the\n"
    "                      logits): the softmax of the dequantized logits, 0 for a class an LSH\n"
    "                      output layer did not compute\n"
    "  --quiet             print only the summary\n"
    "  --dense             compute every neuron (the dense int8 baseline)\n"
    "  --active F          active fraction of every LSH layer (0 < F <= 1; default: the file's)\n"
    "  --repeat N          run the inputs N times (latency measurements; default 1)\n"
    "  --quantized         the inputs are the network's int8 inputs already (integers -128..127, e.g.\n"
    "                      an int8 .npy of quantized rows): no preprocessing, no quantization, so\n"
    "                      latency and instruction counts cover the network alone\n"
    "  --compact           only the arena the model file asks for: by default the runner also gives\n"
    "                      the kernel the arena of elsh_model_attach_fast when --max-arena allows\n"
    "                      (bucket bitmaps, a hash matrix, row sums: the same outputs, faster)\n"
    "  --stats             after the run, measure each layer's selection in two more runs over the\n"
    "                      inputs, --repeat times (untimed by the latency above): bucket entries read, distinct\n"
    "                      candidates, recall of the exact top-k (every pre-activation computed),\n"
    "                      nanoseconds per step (hash, count, select, multiply; timed in a run\n"
    "                      without the recall's work)\n"
    "  --max-arena BYTES   refuse a model whose arena (RAM beside the model file) needs more, before\n"
    "                      allocating it; a number with an optional K, M or G suffix (powers of\n"
    "                      1024); default 256M (fits a 512 MB Pi Zero); 0: no limit\n"
    "  --info              print the model's layers and exit\n"
    "fine-tuning (the fixed-point trainer of `edge-lsh finetune`, byte for byte the same file):\n"
    "  --train SAMPLES.csv fine-tune the model on these labelled rows (n_in numbers and the\n"
    "                      label per row, raw as for classifying) instead of classifying, and\n"
    "                      write the result to --out; prints the accuracy on the samples before\n"
    "                      and after\n"
    "  --out PATH          the fine-tuned .elsh file (checked before training; written to a\n"
    "                      temporary file, synced, then renamed over PATH)\n"
    "  --epochs N          passes over the samples (default 1)\n"
    "  --train-layers all|last|N  the layers that learn (default all): the others stay as in\n"
    "                      the file and need no RAM\n"
    "  --optimizer sgd|adagrad    (default adagrad)\n"
    "  --lr X              learning rate (default 0.02)\n"
    "  --last-lr X         learning rate of the last epoch (default: 0.5 x --lr); with --epochs 1,\n"
    "                      of the only one\n"
    "  --momentum M        momentum, 0 <= M < 1 (default 0.5, as edge-lsh train's; 0: none, and\n"
    "                      4 bytes less of RAM per trainable weight)\n"
    "  --seed N            seed of the sample order and the stochastic rounding (default 0)\n"
    "  --threads N         cores to train on (default 1): N > 1 trains in deterministic mini-batches\n"
    "                      of --thread-batch samples, the same bytes for every N (and as\n"
    "                      `edge-lsh finetune --threads`); 1 without --thread-batch: one sample a step\n"
    "  --thread-batch B    samples per mini-batch (default 16 when --threads > 1)\n"
    "  --version           print the version (and the .elsh format version read) and exit\n"
    "  --help              this text\n"
    "exit status: 0 done; 2 a bad argument, model or input (a message on stderr); 1 out of memory\n"
    "or a read error\n";

static void *xmalloc_aligned(size_t bytes, size_t align, void **raw)
{
    *raw = malloc(bytes + align);
    if (!*raw) return NULL;
    uintptr_t p = ((uintptr_t)*raw + align - 1) & ~(uintptr_t)(align - 1);
    return (void *)p;
}

/* The whole file into a 64-byte aligned buffer. Returns 0, or the exit status after saying
 * why: EXIT_BAD when it cannot be opened or is too large, EXIT_FAIL out of memory or on a
 * read error. */
static int read_file(const char *path, void **raw, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "edge-lsh-run: cannot open %s: %s\n", path, strerror(errno));
        return EXIT_BAD;
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
            return EXIT_FAIL;
        }
        if (n) memcpy(nd, *data, n);
        free(*raw);
        *raw = nraw;
        *data = nd;
        n += fread(nd + n, 1, cap - n, f);
        if (n < cap) break;
        if (cap >= MAX_FILE_BYTES) {
            fprintf(stderr, "edge-lsh-run: %s is larger than 2 GiB\n", path);
            free(*raw);
            fclose(f);
            return EXIT_BAD;
        }
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "edge-lsh-run: error reading %s\n", path);
        free(*raw);
        return EXIT_FAIL;
    }
    *size = n;
    return 0;
}

/* ---------------------------------------------------------------- inputs */

typedef struct {
    float *x;        /* [n][n_in] */
    int32_t *label;  /* [n], -1 when unknown */
    float *label_v;  /* [n] the label value as read (checked once the whole file is read) */
    int64_t *line;   /* [n] the CSV line of each row */
    int64_t n, cap;
    int64_t n_labels;
} rows;

static void rows_free(rows *r)
{
    free(r->x);
    free(r->label);
    free(r->label_v);
    free(r->line);
}

/* Room for one more row. Sizes are checked in 64 bits so that they cannot wrap on 32-bit
 * boards; out of memory says so. */
static int rows_push(rows *r, int32_t n_in, const char *name)
{
    if (r->n == r->cap) {
        int64_t cap = r->cap ? 2 * r->cap : 256;
        uint64_t bytes = (uint64_t)cap * (uint64_t)n_in * sizeof(float);
        uint64_t lines = (uint64_t)cap * sizeof(int64_t); /* the largest per-row array */
        int ok = bytes <= SIZE_MAX && lines <= SIZE_MAX;
        float *x = ok ? (float *)realloc(r->x, (size_t)bytes) : NULL;
        if (x) r->x = x;
        int32_t *l = x ? (int32_t *)realloc(r->label, (size_t)cap * sizeof(int32_t)) : NULL;
        if (l) r->label = l;
        float *v = l ? (float *)realloc(r->label_v, (size_t)cap * sizeof(float)) : NULL;
        if (v) r->label_v = v;
        int64_t *ln = v ? (int64_t *)realloc(r->line, (size_t)lines) : NULL;
        if (!ln) {
            fprintf(stderr, "edge-lsh-run: %s: out of memory at %lld rows\n", name, (long long)r->n);
            return EXIT_FAIL;
        }
        r->line = ln;
        r->cap = cap;
    }
    r->label[r->n] = -1;
    r->label_v[r->n] = 0.0f;
    r->line[r->n] = 0;
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

/* CSV rows of n_in values, or n_in + 1 with the label first (label_first) or last. The labels
 * are kept as read; check_labels decides once the whole file is read. Returns 0 or an exit
 * status. */
static int read_csv(FILE *f, const char *name, int32_t n_in, int label_first, rows *r)
{
    char *line = NULL;
    size_t cap = 0;
    int64_t lineno = 0;
    int rc = EXIT_BAD;
    float *vals = (float *)malloc(((size_t)n_in + 2u) * sizeof(float));
    if (!vals) {
        fprintf(stderr, "edge-lsh-run: out of memory\n");
        return EXIT_FAIL;
    }
    for (;;) {
        long got = read_line(f, &line, &cap);
        if (got == -1) break;
        if (got == -2) {
            fprintf(stderr, "edge-lsh-run: %s: out of memory reading a line\n", name);
            rc = EXIT_FAIL;
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
        int rc_push = rows_push(r, n_in, name);
        if (rc_push) {
            rc = rc_push;
            goto done;
        }
        int labelled = count == n_in + 1, first = labelled && label_first;
        memcpy(r->x + (r->n - 1) * n_in, vals + first, (size_t)n_in * sizeof(float));
        r->line[r->n - 1] = lineno;
        if (labelled) {
            r->label_v[r->n - 1] = first ? vals[0] : vals[n_in];
            r->label[r->n - 1] = 0; /* a label, its value still to be checked */
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

/* v is a class 0 .. n_classes - 1 (range first: converting an out-of-range float to int is
 * undefined) */
static int is_class(float v, int32_t n_classes)
{
    return v >= 0.0f && v < (float)n_classes && v == (float)(int32_t)v;
}

/* The labels read by read_csv, checked as `edge-lsh run` checks them (edge_lsh/data.py
 * split_labels): each a class of the model; and when they are all one value while the column
 * at the other end of the rows looks like labels (classes of the model, at least two different
 * ones), the file is taken for one with its label at that end: an error naming the flag. A
 * bad label names the flag too when the other end looks like labels. Returns 0 or an exit
 * status. */
static int check_labels(rows *r, const char *name, int32_t n_in, int32_t n_classes, int label_first)
{
    if (!r->n_labels) return 0;
    const char *col = label_first ? "first" : "last", *flip = label_first ? "last" : "first";
    int64_t other_at = label_first ? n_in - 1 : 0; /* the other end column, within x */
    int64_t bad = -1, first = -1;
    int single = 1, other_ok = 1, other_two = 0;
    float other0 = 0.0f;
    for (int64_t i = 0; i < r->n; i++) {
        if (r->label[i] < 0) continue;
        float v = r->label_v[i], o = r->x[i * n_in + other_at];
        if (first < 0) {
            first = i;
            other0 = o;
        }
        if (bad < 0 && !is_class(v, n_classes)) bad = i;
        single &= v == r->label_v[first];
        other_ok &= is_class(o, n_classes);
        other_two |= o != other0;
    }
    int other_looks = other_ok && other_two;
    char hint[96] = "";
    if (other_looks)
        snprintf(hint, sizeof hint, "; its %s column looks like labels: pass --label-column %s", flip, flip);
    if (bad >= 0) {
        fprintf(stderr, "edge-lsh-run: %s:%lld: label %.9g (the %s column) is not a class 0..%d%s\n", name,
                (long long)r->line[bad], (double)r->label_v[bad], col, (int)n_classes - 1, hint);
        return EXIT_BAD;
    }
    if (single && other_looks) {
        fprintf(stderr,
                "edge-lsh-run: %s: the %s column should hold the class labels, but it holds the single "
                "value %.9g (one class)%s\n",
                name, col, (double)r->label_v[first], hint);
        return EXIT_BAD;
    }
    for (int64_t i = 0; i < r->n; i++)
        if (r->label[i] >= 0) r->label[i] = (int32_t)r->label_v[i];
    return 0;
}

/* ---------------------------------------------------------------- .npy */

/* The header of an .npy file is a Python dict literal, e.g.
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 64), }
 * padded with spaces to a newline. It is parsed as such: exactly the keys 'descr',
 * 'fortran_order' and 'shape', each once, at the top level of the dict; anything else (another
 * key, a key twice, text after the dict) is refused, so that nothing inside a value can pose as
 * a key. */

#define NPY_MAX_DIMS 8

typedef struct {
    const char *p, *end;
    const char *why; /* the first problem found */
} npy_cursor;

static void npy_space(npy_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int npy_fail(npy_cursor *c, const char *why)
{
    if (!c->why) c->why = why;
    return -1;
}

static int npy_char(npy_cursor *c, char ch, const char *why)
{
    npy_space(c);
    if (c->p >= c->end || *c->p != ch) return npy_fail(c, why);
    c->p++;
    return 0;
}

/* A quoted string without escapes: its text at *s, *len bytes. */
static int npy_string(npy_cursor *c, const char **s, size_t *len, const char *why)
{
    npy_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return npy_fail(c, why);
    char q = *c->p++;
    const char *start = c->p;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || *c->p == '\n' || *c->p == '\0') return npy_fail(c, "an escape or line break in a string");
        c->p++;
    }
    if (c->p >= c->end) return npy_fail(c, "an unterminated string");
    *s = start;
    *len = (size_t)(c->p - start);
    c->p++;
    return 0;
}

static int npy_is(const char *s, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(s, want, len) == 0;
}

/* A tuple of non-negative integers: (), (3,), (3, 64), (3, 64,). (3) is the number 3 in
 * Python, not a tuple. */
static int npy_shape(npy_cursor *c, int64_t *dims, int *ndim)
{
    if (npy_char(c, '(', "'shape' is not a tuple")) return -1;
    *ndim = 0;
    int comma = 0; /* the last element was followed by a comma */
    for (;;) {
        npy_space(c);
        if (c->p < c->end && *c->p == ')') break;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return npy_fail(c, "'shape' holds something other than integers");
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            v = v * 10 + (*c->p++ - '0');
            if (v > ((int64_t)1 << 40)) return npy_fail(c, "a dimension of 'shape' is too large");
        }
        if (*ndim == NPY_MAX_DIMS) return npy_fail(c, "'shape' has too many dimensions");
        dims[(*ndim)++] = v;
        npy_space(c);
        comma = c->p < c->end && *c->p == ',';
        if (comma) {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == ')') break;
        return npy_fail(c, "'shape' is not a tuple of integers");
    }
    if (*ndim == 1 && !comma) return npy_fail(c, "'shape' is not a tuple of integers");
    c->p++; /* ')' */
    return 0;
}

typedef struct {
    int elem;  /* bytes per value */
    char kind; /* 'f' float32, 'd' float64, 'u' uint8, 'i' int8 */
    int fortran;
    int64_t dims[NPY_MAX_DIMS];
    int ndim;
} npy_header;

/* Parse the dict; 0, or -1 with c->why set. A descr this reader does not take is reported
 * by the caller (kind 0). */
static int npy_parse(npy_cursor *c, npy_header *h)
{
    int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
    memset(h, 0, sizeof *h);
    if (npy_char(c, '{', "it is not a dict")) return -1;
    for (;;) {
        npy_space(c);
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            break;
        }
        const char *key;
        size_t klen;
        if (npy_string(c, &key, &klen, "a key is not a quoted string")) return -1;
        if (npy_char(c, ':', "no ':' after a key")) return -1;
        if (npy_is(key, klen, "descr")) {
            if (seen_descr++) return npy_fail(c, "'descr' twice");
            const char *v;
            size_t vlen;
            if (npy_string(c, &v, &vlen, "'descr' is not a simple dtype string")) return -1;
            if (npy_is(v, vlen, "<f4")) h->elem = 4, h->kind = 'f';
            else if (npy_is(v, vlen, "<f8")) h->elem = 8, h->kind = 'd';
            else if (npy_is(v, vlen, "|u1")) h->elem = 1, h->kind = 'u';
            else if (npy_is(v, vlen, "|i1")) h->elem = 1, h->kind = 'i';
            else h->kind = 0;
        } else if (npy_is(key, klen, "fortran_order")) {
            if (seen_fortran++) return npy_fail(c, "'fortran_order' twice");
            npy_space(c);
            size_t left = (size_t)(c->end - c->p);
            if (left >= 4 && !memcmp(c->p, "True", 4)) h->fortran = 1, c->p += 4;
            else if (left >= 5 && !memcmp(c->p, "False", 5)) h->fortran = 0, c->p += 5;
            else return npy_fail(c, "'fortran_order' is not True or False");
        } else if (npy_is(key, klen, "shape")) {
            if (seen_shape++) return npy_fail(c, "'shape' twice");
            if (npy_shape(c, h->dims, &h->ndim)) return -1;
        } else {
            return npy_fail(c, "a key other than 'descr', 'fortran_order' and 'shape'");
        }
        npy_space(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            break;
        }
        return npy_fail(c, "no ',' or '}' after a value");
    }
    npy_space(c);
    if (c->p != c->end) return npy_fail(c, "text after the dict");
    if (!seen_descr || !seen_fortran || !seen_shape) return npy_fail(c, "'descr', 'fortran_order' or 'shape' missing");
    return 0;
}

/* A minimal .npy reader: versions 1-3, C order, <f4 <f8 |u1 |i1; rows of n_in values (a 2-D
 * array, a 1-D array of n_in, or N arrays whose other dimensions hold n_in values). Returns 0
 * or an exit status. */
static int read_npy(const uint8_t *d, size_t size, const char *name, int32_t n_in, rows *r)
{
    if (size < 10 || memcmp(d, "\x93NUMPY", 6) != 0) {
        fprintf(stderr, "edge-lsh-run: %s is not a .npy file\n", name);
        return EXIT_BAD;
    }
    size_t hlen, start;
    if (d[6] == 1) {
        hlen = (size_t)d[8] | ((size_t)d[9] << 8);
        start = 10;
    } else if (d[6] == 2 || d[6] == 3) {
        if (size < 12) goto truncated;
        hlen = (size_t)d[8] | ((size_t)d[9] << 8) | ((size_t)d[10] << 16) | ((size_t)d[11] << 24);
        start = 12;
    } else {
        fprintf(stderr, "edge-lsh-run: %s: .npy version %d is unknown\n", name, (int)d[6]);
        return EXIT_BAD;
    }
    if (hlen > size - start) goto truncated;
    npy_cursor c = {(const char *)d + start, (const char *)d + start + hlen, NULL};
    npy_header h;
    if (npy_parse(&c, &h)) {
        fprintf(stderr, "edge-lsh-run: %s: malformed .npy header: %s\n", name, c.why);
        return EXIT_BAD;
    }
    if (!h.kind) {
        fprintf(stderr, "edge-lsh-run: %s: dtype must be float32, float64, uint8 or int8\n", name);
        return EXIT_BAD;
    }
    if (h.fortran) {
        fprintf(stderr, "edge-lsh-run: %s: Fortran-order arrays are not supported\n", name);
        return EXIT_BAD;
    }
    /* rows and values per row; the dimensions are <= 2^40, their product saturates */
    uint64_t n_rows = h.ndim ? (uint64_t)h.dims[0] : 0, n_cols = 1;
    for (int k = 1; k < h.ndim; k++)
        n_cols = n_cols > UINT64_MAX / ((uint64_t)h.dims[k] + 1u) ? UINT64_MAX : n_cols * (uint64_t)h.dims[k];
    if (h.ndim == 1 && (uint64_t)h.dims[0] == (uint64_t)n_in) n_rows = 1, n_cols = (uint64_t)n_in;
    if (h.ndim == 0 || (h.ndim == 1 && n_rows != 1) || (h.ndim > 2 && n_cols != (uint64_t)n_in)) {
        char shape[NPY_MAX_DIMS * 16 + 4];
        int at = snprintf(shape, sizeof shape, "(");
        for (int k = 0; k < h.ndim; k++)
            at += snprintf(shape + at, sizeof shape - (size_t)at, "%s%lld", k ? ", " : "", (long long)h.dims[k]);
        snprintf(shape + at, sizeof shape - (size_t)at, "%s)", h.ndim == 1 ? "," : "");
        fprintf(stderr, "edge-lsh-run: %s: shape %s; expected a 2-D array of rows of %d values (or N arrays of %d)\n",
                name, shape, (int)n_in, (int)n_in);
        return EXIT_BAD;
    }
    if (n_cols != (uint64_t)n_in) {
        fprintf(stderr, "edge-lsh-run: %s: rows of %llu values; the model takes %d\n", name,
                (unsigned long long)n_cols, (int)n_in);
        return EXIT_BAD;
    }
    uint64_t data = (uint64_t)start + hlen, row_bytes = (uint64_t)h.elem * (uint64_t)n_in;
    if (n_rows > ((uint64_t)size - data) / row_bytes) {
        fprintf(stderr, "edge-lsh-run: %s: truncated (its shape says %llu rows)\n", name, (unsigned long long)n_rows);
        return EXIT_BAD;
    }
    for (uint64_t i = 0; i < n_rows; i++) {
        int rc = rows_push(r, n_in, name);
        if (rc) return rc;
        float *x = r->x + (r->n - 1) * n_in;
        for (int32_t col = 0; col < n_in; col++) {
            const uint8_t *e = d + data + ((size_t)i * (size_t)n_in + (size_t)col) * (size_t)h.elem;
            float v;
            if (h.kind == 'f') {
                memcpy(&v, e, 4);
            } else if (h.kind == 'd') {
                double dv;
                memcpy(&dv, e, 8);
                if (dv > 3.0e38) dv = 3.0e38; /* beyond float: clamp (NaN stays NaN, rejected later) */
                if (dv < -3.0e38) dv = -3.0e38;
                v = (float)dv;
            } else if (h.kind == 'u') {
                v = (float)e[0];
            } else {
                v = (float)(int8_t)e[0];
            }
            x[col] = v;
        }
    }
    return 0;
truncated:
    fprintf(stderr, "edge-lsh-run: %s: truncated .npy header\n", name);
    return EXIT_BAD;
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

/* elsh_qnet_forward_stats's clock: nanoseconds, any origin */
static uint64_t clock_ns(void *ctx)
{
    (void)ctx;
    return (uint64_t)(now_us() * 1e3);
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
    if (m.has_preprocess)
        printf("# preprocess: raw inputs divided by %.9g; training inputs after that in [%.9g, %.9g]\n",
               (double)m.input_divisor, (double)m.input_min, (double)m.input_max);
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

/* ---------------------------------------------------------------- preprocessing */

/* The model's PREPROCESS section (FORMAT.md 4.1), as `edge-lsh run` applies it (edge_lsh/data.py
 * preprocess): every raw input divided by input_divisor in float32. */
static void preprocess(const elsh_qnet_summary *m, rows *r)
{
    if (!m->has_preprocess || m->input_divisor == 1.0f) return;
    size_t n = (size_t)r->n * (size_t)m->n_in;
    for (size_t i = 0; i < n; i++) r->x[i] = r->x[i] / m->input_divisor;
}

/* A warning (not an error) when the inputs, after preprocessing, fall far outside the range of
 * the training inputs: the rule of edge_lsh/data.py input_range_warning. */
static void range_warning(const elsh_qnet_summary *m, const rows *r, const char *name, int no_preprocess)
{
    if (!m->has_preprocess || r->n == 0) return;
    double lo = (double)m->input_min, hi = (double)m->input_max, span = hi - lo;
    if (span < 1e-12) span = 1e-12;
    double xlo = 0.0, xhi = 0.0;
    int any = 0;
    size_t n = (size_t)r->n * (size_t)m->n_in;
    for (size_t i = 0; i < n; i++) {
        double v = (double)r->x[i];
        if (v != v) continue; /* NaN: the row is refused when it is quantized */
        if (!any || v < xlo) xlo = v;
        if (!any || v > xhi) xhi = v;
        any = 1;
    }
    if (!any) return;
    const char *hint = no_preprocess ? "" : " (--no-preprocess if they are scaled already)";
    if (xhi > hi + 2.0 * span || xlo < lo - 2.0 * span)
        fprintf(stderr,
                "edge-lsh-run: warning: %s: inputs span [%.4g, %.4g] after preprocessing, far outside the "
                "training range [%.4g, %.4g]: check their scaling%s\n",
                name, xlo, xhi, lo, hi, hint);
    else if (xhi < lo + 0.1 * span) /* all inputs in the bottom tenth of the training range */
        fprintf(stderr,
                "edge-lsh-run: warning: %s: inputs span only [%.4g, %.4g] after preprocessing, against the "
                "training range [%.4g, %.4g]: were they scaled already?%s\n",
                name, xlo, xhi, lo, hi, hint);
}

/* --stats: two more passes over the inputs through elsh_qnet_forward_stats (one timed, one
 * computing the recall), then a line per layer.
 * The buffers go to *preact and *lstats (freed by the caller). */
static int print_stats(elsh_qnet *net, const elsh_qnet_summary *shape, const rows *r, long repeat,
                       int quantized, int8_t *xq, int32_t **preact, elsh_layer_stats **lstats)
{
    int32_t widest = 1;
    for (int32_t l = 0; l < shape->n_layers; l++) {
        elsh_qlayer_summary L;
        elsh_qnet_layer_info(net, l, &L);
        if (L.n_out > widest) widest = L.n_out;
    }
    *preact = (int32_t *)malloc((size_t)widest * sizeof(int32_t));
    /* [0, n_layers): the recall pass; [n_layers, 2 n_layers): the timed pass */
    *lstats = (elsh_layer_stats *)calloc(2u * (size_t)shape->n_layers, sizeof(elsh_layer_stats));
    if (!*preact || !*lstats) {
        fprintf(stderr, "edge-lsh-run: out of memory\n");
        return EXIT_FAIL;
    }
    /* timed in a pass of its own: computing every pre-activation for the recall streams all
     * the weights through the caches after each layer and would slow the steps after it */
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < r->n * repeat; i++) {
            const int8_t *row = quantized ? xq + (i % r->n) * shape->n_in : xq;
            /* the rows were quantized once already: no error here */
            if (!quantized) elsh_qnet_quantize_input(net, r->x + (i % r->n) * shape->n_in, xq);
            if (pass == 0)
                elsh_qnet_forward_stats(net, row, clock_ns, NULL, NULL, *lstats + shape->n_layers);
            else
                elsh_qnet_forward_stats(net, row, NULL, NULL, *preact, *lstats);
        }
    for (int32_t l = 0; l < shape->n_layers; l++) {
        const elsh_layer_stats *S = &(*lstats)[l], *T = &(*lstats)[shape->n_layers + l];
        double n = (double)S->inputs;
        printf("# layer %d selection: ", (int)l);
        if (S->topk)
            printf("recall %.4f of the exact top-%.0f, ", (double)S->topk_found / (double)S->topk,
                   (double)S->topk / n);
        else
            printf("every neuron computed, ");
        printf("%.1f bucket entries, %.1f candidates, %.1f active per input; ns per input: hash %.0f, "
               "count %.0f, select %.0f, multiply %.0f\n",
               (double)S->entries / n, (double)S->candidates / n, (double)S->active / n,
               (double)T->ns[ELSH_STEP_HASH] / n, (double)T->ns[ELSH_STEP_COUNT] / n,
               (double)T->ns[ELSH_STEP_SELECT] / n, (double)T->ns[ELSH_STEP_MULTIPLY] / n);
    }
    return 0;
}

/* --max-arena: a number of bytes with an optional K, M or G suffix (powers of 1024). */
static int parse_bytes(const char *s, size_t *out)
{
    if (*s < '0' || *s > '9') return -1;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10u + (uint64_t)(*s - '0');
        if (v > ((uint64_t)1 << 50)) return -1;
    }
    int shift = 0;
    if (*s == 'k' || *s == 'K') shift = 10, s++;
    else if (*s == 'm' || *s == 'M') shift = 20, s++;
    else if (*s == 'g' || *s == 'G') shift = 30, s++;
    if (*s) return -1;
    v <<= shift;
    if (v > SIZE_MAX) v = SIZE_MAX; /* more than this machine can address: no limit in effect */
    *out = (size_t)v;
    return 0;
}

/* ---------------------------------------------------------------- --train: options */

#define TRAIN_ALL 0     /* train_layers: every layer; N > 0: the last N */
/* edge_lsh.finetune.FixedTrainer's lr and momentum (tests/test_finetune_entry.py checks) */
#define DEFAULT_LR 0.02
#define DEFAULT_LAST_LR_FACTOR 0.5 /* --last-lr's default: this times --lr */
#define DEFAULT_MOMENTUM 0.5

typedef struct {
    const char *samples, *out;
    long epochs;
    int32_t train_layers;
    int adagrad;
    int has_lr, has_last_lr;
    double lr, last_lr; /* parsed as double: the value edge_lsh.finetune derives the rates from */
    double momentum;
    uint32_t seed;
    int32_t threads;      /* --threads (1) */
    int32_t batch;        /* --thread-batch, 0: not given */
    int given; /* any fine-tuning option seen */
} train_opts;

/* One fine-tuning option and its value into o. Returns 0, or 1 after saying what is wrong. */
static int parse_train_option(train_opts *o, const char *a, const char *v)
{
    char *end;
    errno = 0;
    o->given = 1;
    if (!strcmp(a, "--train")) {
        o->samples = v;
    } else if (!strcmp(a, "--out")) {
        o->out = v;
    } else if (!strcmp(a, "--epochs")) {
        o->epochs = strtol(v, &end, 10);
        if (*end || errno || end == v || o->epochs < 1 || o->epochs > 1000000) {
            fprintf(stderr, "edge-lsh-run: --epochs must be 1..1000000, got %s\n", v);
            return 1;
        }
    } else if (!strcmp(a, "--train-layers")) {
        if (!strcmp(v, "all")) {
            o->train_layers = TRAIN_ALL;
        } else if (!strcmp(v, "last")) {
            o->train_layers = 1;
        } else {
            long n = strtol(v, &end, 10);
            if (*end || errno || end == v || n < 1 || n > 1000) {
                fprintf(stderr, "edge-lsh-run: --train-layers must be all, last or a number of last layers, got %s\n",
                        v);
                return 1;
            }
            o->train_layers = (int32_t)n;
        }
    } else if (!strcmp(a, "--optimizer")) {
        if (strcmp(v, "sgd") && strcmp(v, "adagrad")) {
            fprintf(stderr, "edge-lsh-run: --optimizer must be sgd or adagrad, got %s\n", v);
            return 1;
        }
        o->adagrad = !strcmp(v, "adagrad");
    } else if (!strcmp(a, "--lr") || !strcmp(a, "--last-lr")) {
        double lr = strtod(v, &end);
        if (*end || errno || end == v || !(lr >= 0.0 && lr < 1e30)) {
            fprintf(stderr, "edge-lsh-run: %s must be a finite number >= 0, got %s\n", a, v);
            return 1;
        }
        if (!strcmp(a, "--lr")) {
            o->lr = lr;
            o->has_lr = 1;
        } else {
            o->last_lr = lr;
            o->has_last_lr = 1;
        }
    } else if (!strcmp(a, "--momentum")) {
        o->momentum = strtod(v, &end);
        if (*end || errno || end == v || !(o->momentum >= 0.0 && o->momentum < 1.0)) {
            fprintf(stderr, "edge-lsh-run: --momentum must be a number in [0, 1), got %s\n", v);
            return 1;
        }
    } else if (!strcmp(a, "--threads") || !strcmp(a, "--thread-batch")) {
        int threads = !strcmp(a, "--threads");
        long most = threads ? ELSH_MAX_THREADS : ELSH_MAX_BATCH;
        long n = strtol(v, &end, 10);
        if (*end || errno || end == v || n < 1 || n > most) {
            fprintf(stderr, "edge-lsh-run: %s must be 1..%ld, got %s\n", a, most, v);
            return 1;
        }
        if (threads) o->threads = (int32_t)n;
        else o->batch = (int32_t)n;
    } else {
        unsigned long s = strtoul(v, &end, 10);
        if (*end || errno || end == v || v[0] == '-' || s > 0xFFFFFFFFul) {
            fprintf(stderr, "edge-lsh-run: --seed must be 0..4294967295, got %s\n", v);
            return 1;
        }
        o->seed = (uint32_t)s;
    }
    return 0;
}

/* --out, before any training: not a folder, in a folder that exists and can be written.
 * Returns 0, or 1 after saying what is wrong. */
static int check_output_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "edge-lsh-run: --out %s is a folder; expected a file path\n", path);
        return 1;
    }
    char folder[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= sizeof folder) {
        fprintf(stderr, "edge-lsh-run: --out %s: the path is too long\n", path);
        return 1;
    }
    if (slash && n == 0) n = 1; /* "/name": the root */
    memcpy(folder, slash ? path : ".", slash ? n : 1);
    folder[slash ? n : 1] = '\0';
    if (stat(folder, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "edge-lsh-run: --out %s: the folder %s does not exist\n", path, folder);
        return 1;
    }
    if (access(folder, W_OK | X_OK) != 0) {
        fprintf(stderr, "edge-lsh-run: --out %s: cannot write in %s: %s\n", path, folder, strerror(errno));
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- --train: fine-tuning */

#if !defined(ELSH_RUN_NO_TRAIN) /* (a build without a POSIX file system refuses --train) */
/* A momentum in [0, 1) as the step's Q15 factor, as edge_lsh.finetune.FixedTrainer rounds it:
 * m 2^15 to the nearest integer, ties to even (Python's round), at most 32767. */
static int32_t momentum_q15(double m)
{
    double v = m * 32768.0; /* exact: a power of two */
    int32_t q = (int32_t)v; /* v >= 0: the floor */
    double f = v - (double)q;
    if (f > 0.5 || (f == 0.5 && (q & 1))) q++;
    return q > 32767 ? 32767 : q;
}

/* Fine-tune net on the rows (each labelled) and write the trained model to o->out: the
 * fixed-point trainer of edge_lsh_finetune.h, one step per row in file order, epoch after
 * epoch; the same steps `edge-lsh finetune` (edge_lsh.finetune) takes, so the same bytes. The
 * learning rates come from --lr by elsh_qtrain_rates, as the Python trainer derives them. The
 * file is written by atomic_file.c (temp file, fsync, rename, fsync of the folder).
 * Returns 0 or an exit status after saying why. */
static int train_and_save(elsh_qnet *net, const rows *r, const train_opts *o, const char *name)
{
    elsh_qnet_summary shape;
    elsh_qnet_info(net, &shape);
    for (int64_t i = 0; i < r->n; i++) {
        if (r->label[i] < 0) {
            fprintf(stderr, "edge-lsh-run: %s:%lld: no label; --train needs n_in + 1 values a row\n", name,
                    (long long)r->line[i]);
            return EXIT_BAD;
        }
    }
    int rc = EXIT_FAIL;
    void *arena_raw = NULL;
    int8_t *xq = NULL;
    uint8_t *file = NULL;
    elsh_qtrain_config cfg;
    elsh_qtrain tr;
    size_t need = 0, bytes = 0;
    int st = elsh_qtrain_config_default(&cfg, net);
    cfg.optimizer = o->adagrad ? ELSH_QTRAIN_ADAGRAD : ELSH_QTRAIN_SGD;
    cfg.train_layers = o->train_layers;
    cfg.seed = o->seed;
    cfg.momentum_q15 = momentum_q15(o->momentum);
    cfg.threads = o->threads;
    cfg.batch = o->batch ? o->batch : o->threads > 1 ? 16 : 0; /* edge_lsh.finetune's default */
    if (st == ELSH_OK && o->train_layers > shape.n_layers) {
        fprintf(stderr, "edge-lsh-run: --train-layers %d: the model has %d layers\n", (int)o->train_layers,
                (int)shape.n_layers);
        return EXIT_BAD;
    }
    xq = (int8_t *)malloc((size_t)shape.n_in * (size_t)r->n);
    if (!xq) {
        fprintf(stderr, "edge-lsh-run: out of memory\n");
        goto done;
    }
    double lr = o->has_lr ? o->lr : DEFAULT_LR;
    if (st == ELSH_OK) st = elsh_qtrain_rates(net, cfg.optimizer, lr, &cfg);
    elsh_qtrain_config last = cfg; /* the last epoch's rates, checked before any step */
    if (st == ELSH_OK)
        st = elsh_qtrain_rates(net, cfg.optimizer, o->has_last_lr ? o->last_lr : lr * DEFAULT_LAST_LR_FACTOR, &last);
    if (st == ELSH_OK) st = elsh_qtrain_plan(net, &cfg, &need);
    if (st != ELSH_OK) {
        fprintf(stderr, "edge-lsh-run: cannot fine-tune this model with these settings: %s\n", elsh_status_str(st));
        rc = EXIT_BAD;
        goto done;
    }
    void *arena = xmalloc_aligned(need ? need : 1, 64, &arena_raw);
    if (!arena) {
        fprintf(stderr, "edge-lsh-run: cannot allocate %zu bytes of training arena\n", need);
        goto done;
    }
    for (int64_t i = 0; i < r->n; i++) {
        st = elsh_qnet_quantize_input(net, r->x + i * shape.n_in, xq + i * shape.n_in);
        if (st != ELSH_OK) {
            fprintf(stderr, "edge-lsh-run: %s:%lld: %s\n", name, (long long)r->line[i], elsh_status_str(st));
            rc = EXIT_BAD;
            goto done;
        }
    }
    int64_t correct_before = 0, correct = 0;
    for (int64_t i = 0; i < r->n; i++) correct_before += elsh_qnet_forward(net, xq + i * shape.n_in) == r->label[i];
    st = elsh_qtrain_attach(&tr, net, &cfg, arena, need);
    double t0 = now_us();
    for (long e = 0; e < o->epochs && st == ELSH_OK; e++) {
        if (e == o->epochs - 1) st = elsh_qtrain_set_rates(&tr, &last);
        if (st != ELSH_OK) break;
        if (cfg.batch > 0) {
            st = elsh_qtrain_steps(&tr, xq, r->label, r->n, NULL);
        } else {
            for (int64_t i = 0; i < r->n; i++) {
                int p = elsh_qtrain_step(&tr, xq + i * shape.n_in, r->label[i]);
                if (p < 0) {
                    st = p;
                    break;
                }
            }
        }
        fprintf(stderr, "edge-lsh-run: epoch %ld/%ld done\n", e + 1, o->epochs);
    }
    double seconds = (now_us() - t0) * 1e-6;
    if (st == ELSH_OK) st = elsh_qtrain_save(&tr, NULL, 0, &bytes);
    file = st == ELSH_OK ? (uint8_t *)malloc(bytes ? bytes : 1) : NULL;
    if (st == ELSH_OK && !file) {
        fprintf(stderr, "edge-lsh-run: out of memory\n");
        goto done;
    }
    if (st == ELSH_OK) st = elsh_qtrain_save(&tr, file, bytes, &bytes);
    if (st != ELSH_OK) {
        fprintf(stderr, "edge-lsh-run: fine-tuning failed: %s\n", elsh_status_str(st));
        rc = EXIT_BAD;
        goto done;
    }
    for (int64_t i = 0; i < r->n; i++) correct += elsh_qnet_forward(net, xq + i * shape.n_in) == r->label[i];
    char err[600];
    if (elsh_atomic_write_file(o->out, file, bytes, err, sizeof err) != 0) {
        fprintf(stderr, "edge-lsh-run: %s\n", err);
        goto done;
    }
    char layers[24] = "all";
    if (o->train_layers) snprintf(layers, sizeof layers, "the last %d", (int)o->train_layers);
    char threads[64] = "";
    if (cfg.batch > 0)
        snprintf(threads, sizeof threads, ", %d thread%s in batches of %d", (int)cfg.threads, cfg.threads > 1 ? "s" : "",
                 (int)cfg.batch);
    printf("# fine-tuned: %lld samples x %ld epochs in %.2f s (%.0f samples/s), %s, train layers %s%s, arena %zu + "
           "%zu bytes\n",
           (long long)r->n, o->epochs, seconds, seconds > 0 ? (double)r->n * (double)o->epochs / seconds : 0.0,
           o->adagrad ? "adagrad" : "sgd", layers, threads, shape.arena_bytes, need);
    printf("# accuracy on the samples: before %.2f%%, after %.2f%%\n", 100.0 * (double)correct_before / (double)r->n,
           100.0 * (double)correct / (double)r->n);
    printf("# saved: %s (%zu bytes)\n", o->out, bytes);
    rc = 0;
done:
    free(file);
    free(xq);
    free(arena_raw);
    return rc;
}
#endif

int main(int argc, char **argv)
{
    const char *model_path = NULL, *input_path = NULL;
    int show_logits = 0, show_probs = 0, quiet = 0, dense = 0, info_only = 0, label_first = 0;
    int no_preprocess = 0, stats = 0, bitmaps = 1, quantized = 0;
    float active = 0.0f;
    long repeat = 1;
    size_t max_arena = DEFAULT_MAX_ARENA;
    train_opts topt;
    memset(&topt, 0, sizeof topt);
    topt.adagrad = 1; /* the default optimizer, as edge_lsh.finetune's */
    topt.momentum = DEFAULT_MOMENTUM;
    topt.epochs = 1;
    topt.train_layers = TRAIN_ALL;
    topt.threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("edge-lsh-run " VERSION " (.elsh format " FORMAT_VERSION ": reads every " STR(ELSH_FORMAT_MAJOR)
                   ".x file)\n");
            return 0;
        } else if (!strcmp(a, "--logits")) {
            show_logits = 1;
        } else if (!strcmp(a, "--probs")) {
            show_probs = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--dense")) {
            dense = 1;
        } else if (!strcmp(a, "--quantized")) {
            quantized = 1;
        } else if (!strcmp(a, "--compact")) {
            bitmaps = 0;
        } else if (!strcmp(a, "--stats")) {
            stats = 1;
        } else if (!strcmp(a, "--no-preprocess")) {
            no_preprocess = 1;
        } else if (!strcmp(a, "--info")) {
            info_only = 1;
        } else if (!strcmp(a, "--train") || !strcmp(a, "--out") || !strcmp(a, "--epochs") ||
                   !strcmp(a, "--train-layers") || !strcmp(a, "--optimizer") || !strcmp(a, "--lr") ||
                   !strcmp(a, "--last-lr") ||
                   !strcmp(a, "--momentum") || !strcmp(a, "--seed") || !strcmp(a, "--threads") ||
                   !strcmp(a, "--thread-batch")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "edge-lsh-run: %s needs a value\n%s", a, usage);
                return EXIT_BAD;
            }
            if (parse_train_option(&topt, a, argv[++i])) return EXIT_BAD;
        } else if (!strcmp(a, "--active") || !strcmp(a, "--repeat") || !strcmp(a, "--max-arena") ||
                   !strcmp(a, "--label-column")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "edge-lsh-run: %s needs a value\n%s", a, usage);
                return EXIT_BAD;
            }
            const char *v = argv[++i];
            char *end;
            errno = 0;
            if (!strcmp(a, "--active")) {
                active = strtof(v, &end);
                if (*end || errno || !(active > 0.0f && active <= 1.0f)) {
                    fprintf(stderr, "edge-lsh-run: --active must be in (0, 1], got %s\n", v);
                    return EXIT_BAD;
                }
            } else if (!strcmp(a, "--repeat")) {
                repeat = strtol(v, &end, 10);
                if (*end || errno || repeat < 1 || repeat > 1000000) {
                    fprintf(stderr, "edge-lsh-run: --repeat must be 1..1000000, got %s\n", v);
                    return EXIT_BAD;
                }
            } else if (!strcmp(a, "--max-arena")) {
                if (parse_bytes(v, &max_arena)) {
                    fprintf(stderr, "edge-lsh-run: --max-arena must be a number of bytes (suffix K, M or G; 0: "
                                    "no limit), got %s\n", v);
                    return EXIT_BAD;
                }
            } else {
                if (strcmp(v, "first") && strcmp(v, "last")) {
                    fprintf(stderr, "edge-lsh-run: --label-column must be first or last, got %s\n", v);
                    return EXIT_BAD;
                }
                label_first = !strcmp(v, "first");
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "edge-lsh-run: unknown option %s\n%s", a, usage);
            return EXIT_BAD;
        } else if (!model_path) {
            model_path = a;
        } else if (!input_path) {
            input_path = a;
        } else {
            fprintf(stderr, "edge-lsh-run: unexpected argument %s\n%s", a, usage);
            return EXIT_BAD;
        }
    }
    if (!model_path) {
        fputs(usage, stderr);
        return EXIT_BAD;
    }
    if (topt.given && !topt.samples) {
        fprintf(stderr, "edge-lsh-run: --out, --epochs, --train-layers, --optimizer, --lr, --last-lr, --momentum, --seed, "
                        "--threads and --thread-batch go "
                        "with --train SAMPLES.csv\n");
        return EXIT_BAD;
    }
    if (topt.samples && (quantized || stats)) {
        fprintf(stderr, "edge-lsh-run: --quantized and --stats classify inputs; --train takes the training "
                        "file's raw rows\n");
        return EXIT_BAD;
    }
    if (topt.samples) {
#if defined(ELSH_RUN_NO_TRAIN)
        /* firmware_tests' bare-metal ARM1176 harness: newlib over semihosting has no folders,
         * so no atomic save */
        fprintf(stderr, "edge-lsh-run: --train is not in this build (no POSIX file system to save to)\n");
        return EXIT_BAD;
#endif
        const char *clash = input_path     ? "an INPUT file"
                            : show_logits  ? "--logits"
                            : show_probs   ? "--probs"
                            : dense        ? "--dense"
                            : active > 0.f ? "--active"
                            : repeat != 1  ? "--repeat"
                            : info_only    ? "--info"
                                           : NULL;
        if (clash) {
            fprintf(stderr, "edge-lsh-run: --train fine-tunes and saves; %s is for classifying\n", clash);
            return EXIT_BAD;
        }
        if (!topt.out) {
            fprintf(stderr, "edge-lsh-run: --train needs --out PATH, the file to write the fine-tuned model to\n");
            return EXIT_BAD;
        }
        if (check_output_path(topt.out)) return EXIT_BAD;
        input_path = topt.samples; /* read as the inputs to classify are */
    }

    /* everything below is freed at `out`, on every path (LeakSanitizer checks error exits too) */
    void *model_raw = NULL, *arena_raw = NULL, *npy_raw = NULL;
    uint8_t *model = NULL;
    int8_t *xq = NULL;
    float *probs = NULL;
    double *lat = NULL;
    int32_t *preact = NULL;
    elsh_layer_stats *lstats = NULL;
    FILE *f = NULL;
    rows r;
    memset(&r, 0, sizeof r);
    size_t model_bytes = 0, arena_bytes = 0;
    elsh_qnet net;
    int rc = read_file(model_path, &model_raw, &model, &model_bytes);
    if (rc) goto out;
    double t_load = now_us();
    rc = elsh_model_open(&net, model, model_bytes, &arena_bytes);
    double t_open = now_us() - t_load;
    if (rc) {
        fprintf(stderr, "edge-lsh-run: %s: %s\n", model_path, elsh_status_str(rc));
        rc = EXIT_BAD;
        goto out;
    }
    if (max_arena && arena_bytes > max_arena) {
        fprintf(stderr,
                "edge-lsh-run: %s needs an arena of %zu bytes, more than --max-arena %zu (pass a larger "
                "--max-arena, or 0 for no limit)\n",
                model_path, arena_bytes, max_arena);
        rc = EXIT_BAD;
        goto out;
    }
    size_t bitmap_bytes = 0;
    if (bitmaps) { /* elsh_model_attach_fast's arena when it fits --max-arena */
        elsh_model_fast_bytes(&net, &bitmap_bytes);
        size_t start = (arena_bytes + 63u) / 64u * 64u;
        if (bitmap_bytes == 0 || bitmap_bytes > SIZE_MAX - start ||
            (max_arena && start + bitmap_bytes > max_arena))
            bitmaps = 0;
        else
            bitmap_bytes = start + bitmap_bytes - arena_bytes;
    }
    size_t total_arena = arena_bytes + (bitmaps ? bitmap_bytes : 0);
    void *arena = xmalloc_aligned(total_arena ? total_arena : 1, 64, &arena_raw);
    if (!arena) {
        fprintf(stderr, "edge-lsh-run: cannot allocate %zu bytes of arena\n", total_arena);
        rc = EXIT_FAIL;
        goto out;
    }
    t_load = now_us();
    rc = bitmaps ? elsh_model_attach_fast(&net, arena, total_arena) : elsh_model_attach(&net, arena, arena_bytes);
    t_load = now_us() - t_load + t_open; /* validation (CRC included) + attach */
    if (rc) {
        fprintf(stderr, "edge-lsh-run: %s: %s\n", model_path, elsh_status_str(rc));
        rc = EXIT_BAD;
        goto out;
    }
    if (info_only) {
        print_info(&net, model_bytes);
        goto out;
    }
    elsh_qnet_set_active(&net, active, dense);
    elsh_qnet_summary shape;
    elsh_qnet_info(&net, &shape);

    const char *name = input_path && strcmp(input_path, "-") ? input_path : "<stdin>";
    size_t nlen = input_path ? strlen(input_path) : 0;
    if (input_path && nlen > 4 && !strcmp(input_path + nlen - 4, ".npy")) {
        uint8_t *d;
        size_t size;
        rc = read_file(input_path, &npy_raw, &d, &size);
        if (!rc) rc = read_npy(d, size, name, shape.n_in, &r);
    } else {
        f = (!input_path || !strcmp(input_path, "-")) ? stdin : fopen(input_path, "r");
        if (!f) {
            fprintf(stderr, "edge-lsh-run: cannot open %s: %s\n", input_path, strerror(errno));
            rc = EXIT_BAD;
            goto out;
        }
        rc = read_csv(f, name, shape.n_in, label_first, &r);
        if (!rc) rc = check_labels(&r, name, shape.n_in, shape.n_classes, label_first);
    }
    if (rc) goto out;
    if (r.n == 0) {
        fprintf(stderr, "edge-lsh-run: %s holds no input rows\n", name);
        rc = EXIT_BAD;
        goto out;
    }
    if (!quantized && !no_preprocess) preprocess(&shape, &r);
    if (!quantized) range_warning(&shape, &r, name, no_preprocess);
#if !defined(ELSH_RUN_NO_TRAIN)
    if (topt.samples) {
        rc = train_and_save(&net, &r, &topt, name);
        goto out;
    }
#endif

    if ((uint64_t)r.n * (uint64_t)repeat > (uint64_t)SIZE_MAX / sizeof(double)) {
        fprintf(stderr, "edge-lsh-run: %lld inputs times --repeat %ld is too many to time\n", (long long)r.n, repeat);
        rc = EXIT_BAD;
        goto out;
    }
    /* --quantized: every row as int8 before the timed loop */
    xq = (int8_t *)malloc(quantized ? (size_t)r.n * (size_t)shape.n_in : (size_t)shape.n_in);
    probs = (float *)malloc((size_t)shape.n_classes * sizeof(float));
    lat = (double *)malloc((size_t)r.n * (size_t)repeat * sizeof(double));
    if (!xq || !probs || !lat) {
        fprintf(stderr, "edge-lsh-run: out of memory\n");
        rc = EXIT_FAIL;
        goto out;
    }
    if (quantized) {
        for (size_t e = 0; e < (size_t)r.n * (size_t)shape.n_in; e++) {
            float v = r.x[e];
            if (!(v >= -128.0f && v <= 127.0f && v == (float)(int32_t)v)) {
                fprintf(stderr, "edge-lsh-run: %s: --quantized inputs must be integers -128..127, row %lld holds %g\n",
                        name, (long long)(e / (size_t)shape.n_in) + 1, (double)v);
                rc = EXIT_BAD;
                goto out;
            }
            xq[e] = (int8_t)(int32_t)v;
        }
    }
    elsh_qnet_reset_counters(&net);
    int64_t correct = 0, n_lat = 0;
    for (long rep = 0; rep < repeat; rep++) {
        for (int64_t i = 0; i < r.n; i++) {
            double t0 = now_us();
            const int8_t *row = quantized ? xq + i * shape.n_in : xq;
            rc = quantized ? 0 : elsh_qnet_quantize_input(&net, r.x + i * shape.n_in, xq);
            if (rc) {
                fprintf(stderr, "edge-lsh-run: %s: row %lld: %s\n", name, (long long)i + 1, elsh_status_str(rc));
                rc = EXIT_BAD;
                goto out;
            }
            int p = elsh_qnet_forward(&net, row);
            lat[n_lat++] = now_us() - t0;
            if (p < 0) {
                fprintf(stderr, "edge-lsh-run: %s: row %lld: %s\n", name, (long long)i + 1, elsh_status_str(p));
                rc = EXIT_BAD;
                goto out;
            }
            if (rep > 0) continue;
            correct += r.label[i] >= 0 && r.label[i] == p;
            if (quiet) continue;
            printf("%d", p);
            if (show_logits) {
                const int32_t *logits = elsh_qnet_logits(&net);
                for (int32_t j = 0; j < shape.n_classes; j++) printf(" %ld", (long)logits[j]);
            }
            if (show_probs) {
                elsh_qnet_probs(&net, probs);
                for (int32_t j = 0; j < shape.n_classes; j++) printf(" %.9g", (double)probs[j]);
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
        printf("# accuracy: %.2f%% (%lld of %lld labelled rows)\n", 100.0 * (double)correct / (double)r.n_labels,
               (long long)correct, (long long)r.n_labels);
    printf("# latency_us: median %.2f, p90 %.2f, min %.2f (per input, %s)\n", lat[n_lat / 2],
           lat[(n_lat * 9) / 10], lat[0], quantized ? "inputs quantized already" : "quantization included");
    printf("# per input: %.0f multiplications (%.2f%% of dense %llu), %.0f additions, %.0f comparisons, "
           "%.0f weight bytes, %.0f table bytes\n",
           (double)(h.mul + fw.mul) / (double)runs, 100.0 * (double)(h.mul + fw.mul) / (double)runs / (double)dense_macs,
           (unsigned long long)dense_macs, (double)(h.add + fw.add) / (double)runs,
           (double)(h.cmp + fw.cmp) / (double)runs, (double)(h.weight_bytes + fw.weight_bytes) / (double)runs,
           (double)h.table_bytes / (double)runs);
    printf("# memory: model %zu bytes (used in place), arena %zu bytes", model_bytes, arena_bytes);
    if (bitmaps) printf(" + %zu for faster selection", bitmap_bytes);
    printf("; load %.0f us (validate %.0f us, attach %.0f us)\n", t_load, t_open, t_load - t_open);
    if (stats) {
        rc = print_stats(&net, &shape, &r, repeat, quantized, xq, &preact, &lstats);
        if (rc) goto out;
    }
    rc = 0;
out:
    if (f && f != stdin) fclose(f);
    free(xq);
    free(probs);
    free(lat);
    free(preact);
    free(lstats);
    rows_free(&r);
    free(npy_raw);
    free(arena_raw);
    free(model_raw);
    return rc;
}
