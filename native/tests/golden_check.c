/* golden_check.c - conformance: run golden .elsh models on their recorded inputs and compare
 * every logit and prediction with the numpy reference's (export/golden/NAME.expect).
 *
 *   golden_check MODEL.elsh MODEL.expect [MODEL2.elsh MODEL2.expect ...]
 *
 * NAME.expect (written by export/golden/make_golden.py): a line "n_inputs n_in n_classes", then
 * per input a line of n_in int8 values, a line of n_classes int32 logits (inactive classes
 * -2147483648) and a line with the predicted class. Any difference fails: bit-exact or nothing.
 * The cross-compiled firmware tests run the same comparison on each target. */
#include "edge_lsh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *read_all(const char *path, size_t *size, void **raw)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n <= 0) {
        fclose(f);
        return NULL;
    }
    *raw = malloc((size_t)n + 64);
    if (!*raw) {
        fclose(f);
        return NULL;
    }
    uint8_t *p = (uint8_t *)(((uintptr_t)*raw + 63) & ~(uintptr_t)63);
    size_t got = fread(p, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) return NULL;
    *size = (size_t)n;
    return p;
}

static int check_pair(const char *model_path, const char *expect_path)
{
    size_t size;
    void *raw = NULL;
    uint8_t *file = read_all(model_path, &size, &raw);
    if (!file) {
        fprintf(stderr, "golden: cannot read %s\n", model_path);
        return 1;
    }
    elsh_qnet net;
    size_t need;
    int rc = elsh_model_open(&net, file, size, &need);
    void *arena = NULL;
    if (rc == ELSH_OK) {
        arena = malloc(need + 64);
        rc = arena ? elsh_model_attach(&net, (void *)(((uintptr_t)arena + 63) & ~(uintptr_t)63), need)
                   : ELSH_ERR_ARENA;
    }
    if (rc != ELSH_OK) {
        fprintf(stderr, "golden: %s: %s\n", model_path, elsh_status_str(rc));
        return 1;
    }
    FILE *f = fopen(expect_path, "r");
    if (!f) {
        fprintf(stderr, "golden: cannot read %s\n", expect_path);
        return 1;
    }
    int n_inputs, n_in, n_classes, failures = 0;
    elsh_qnet_summary model;
    elsh_qnet_info(&net, &model);
    if (fscanf(f, "%d %d %d", &n_inputs, &n_in, &n_classes) != 3 || n_in != model.n_in ||
        n_classes != model.n_classes || n_inputs < 1) {
        fprintf(stderr, "golden: %s: header does not match the model\n", expect_path);
        return 1;
    }
    int8_t *xq = (int8_t *)malloc((size_t)n_in);
    for (int s = 0; s < n_inputs; s++) {
        for (int i = 0; i < n_in; i++) {
            int v;
            if (fscanf(f, "%d", &v) != 1 || v < -128 || v > 127) {
                fprintf(stderr, "golden: %s: bad input value (input %d)\n", expect_path, s);
                return 1;
            }
            xq[i] = (int8_t)v;
        }
        int pred = elsh_qnet_forward(&net, xq);
        const int32_t *logits = elsh_qnet_logits(&net);
        for (int j = 0; j < n_classes; j++) {
            long v;
            if (fscanf(f, "%ld", &v) != 1) {
                fprintf(stderr, "golden: %s: bad logit (input %d)\n", expect_path, s);
                return 1;
            }
            if (v != (long)logits[j]) {
                if (failures < 10)
                    fprintf(stderr, "golden: %s input %d class %d: logit %ld, expected %ld\n", model_path,
                            s, j, (long)logits[j], v);
                failures++;
            }
        }
        int want;
        if (fscanf(f, "%d", &want) != 1) {
            fprintf(stderr, "golden: %s: bad prediction (input %d)\n", expect_path, s);
            return 1;
        }
        if (want != pred) {
            fprintf(stderr, "golden: %s input %d: predicted %d, expected %d\n", model_path, s, pred, want);
            failures++;
        }
    }
    fclose(f);
    printf("golden %s: %d inputs, %s\n", model_path, n_inputs, failures ? "MISMATCH" : "bit-exact");
    free(xq);
    free(arena);
    free(raw);
    return failures != 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (argc - 1) % 2 != 0) {
        fprintf(stderr, "usage: golden_check MODEL.elsh MODEL.expect [...]\n");
        return 2;
    }
    int bad = 0;
    for (int i = 1; i + 1 < argc; i += 2) bad += check_pair(argv[i], argv[i + 1]);
    return bad ? 1 : 0;
}
