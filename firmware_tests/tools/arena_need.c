/* arena_need.c - host tool: the largest arena elsh_model_open asks for over the given .elsh
 * files (the Cortex-M firmware sizes its static arena with it; the firmware checks again).
 *
 *   arena_need [-v] MODEL.elsh [MODEL2.elsh ...]      prints the maximum in bytes */
#include "edge_lsh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    size_t max_need = 0;
    int verbose = argc > 1 && !strcmp(argv[1], "-v");
    for (int i = 1 + verbose; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            fprintf(stderr, "arena_need: cannot open %s\n", argv[i]);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        void *raw = malloc((size_t)n + 64);
        uint8_t *p = (uint8_t *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
        if (!raw || n <= 0 || fread(p, 1, (size_t)n, f) != (size_t)n) {
            fprintf(stderr, "arena_need: cannot read %s\n", argv[i]);
            return 1;
        }
        fclose(f);
        elsh_qnet net;
        size_t need;
        int rc = elsh_model_open(&net, p, (size_t)n, &need);
        if (rc != ELSH_OK) {
            fprintf(stderr, "arena_need: %s: %s\n", argv[i], elsh_status_str(rc));
            return 1;
        }
        if (verbose) printf("%s %ld %zu\n", argv[i], n, need);
        if (need > max_need) max_need = need;
        free(raw);
    }
    if (!verbose) printf("%zu\n", max_need);
    return 0;
}
