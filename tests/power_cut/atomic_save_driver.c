/* atomic_save_driver.c - a tiny program over native/runner/atomic_file.c for
 * tests/test_power_cut.py (built by the test):
 *   atomic_save_driver once TARGET SRC        save SRC's bytes as TARGET; exit 2 with one line
 *                                             on stderr when that fails
 *   atomic_save_driver loop TARGET A B        save A, B, A, B, ... as TARGET until killed,
 *                                             4 KB per write call
 *   atomic_save_driver abort TARGET SRC       begin, write SRC's bytes, then give up
 * Linked with -Wl,--wrap=... and fault_shim.c, the calls can be logged and made to fail. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += got;
        if (len == cap) {
            unsigned char *bigger = realloc(buf, cap *= 2);
            if (!bigger) free(buf);
            buf = bigger;
        }
    }
    fclose(fp);
    *n = len;
    return buf;
}

static int save_chunked(const char *target, const unsigned char *data, size_t n, int commit)
{
    char err[512];
    elsh_atomic_file f;
    if (elsh_atomic_begin(&f, target, err, sizeof err) != 0) goto fail;
    for (size_t done = 0; done < n; done += 4096) {
        size_t chunk = n - done < 4096 ? n - done : 4096;
        if (elsh_atomic_write(&f, data + done, chunk, err, sizeof err) != 0) goto fail;
    }
    if (!commit) {
        elsh_atomic_abort(&f);
        elsh_atomic_abort(&f); /* twice is harmless */
        return 0;
    }
    if (elsh_atomic_commit(&f, err, sizeof err) != 0) goto fail;
    return 0;
fail:
    fprintf(stderr, "atomic_save_driver: %s\n", err);
    return 2;
}

static int run(const char *mode, const char *target, unsigned char **data, size_t *n, int argc,
               char **argv)
{
    if (strcmp(mode, "once") == 0) {
        char err[512];
        if (elsh_atomic_write_file(target, data[0], n[0], err, sizeof err) != 0) {
            fprintf(stderr, "atomic_save_driver: %s\n", err);
            return 2;
        }
        return 0;
    }
    if (strcmp(mode, "abort") == 0) return save_chunked(target, data[0], n[0], 0);
    if (strcmp(mode, "loop") == 0 && argc == 5) {
        data[1] = read_all(argv[4], &n[1]);
        if (!data[1]) return 2;
        for (unsigned long i = 0;; i++)
            if (save_chunked(target, data[i % 2], n[i % 2], 1) != 0) return 2;
    }
    fprintf(stderr, "atomic_save_driver: unknown mode %s\n", mode);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: atomic_save_driver once|abort TARGET SRC | loop TARGET A B\n");
        return 2;
    }
    size_t n[2] = {0, 0};
    unsigned char *data[2] = {read_all(argv[3], &n[0]), NULL};
    if (!data[0]) {
        fprintf(stderr, "atomic_save_driver: %s: cannot read\n", argv[3]);
        return 2;
    }
    int rc = run(argv[1], argv[2], data, n, argc, argv);
    free(data[0]);
    free(data[1]);
    return rc;
}
