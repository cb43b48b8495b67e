/* m33_count.c - the program tools/energy/m33_count.py runs on QEMU's mps2-an505 (Cortex-M33)
 * to count instructions per inference: read job.txt ("N DENSE"), the model (model.elsh) and N
 * float32 input rows (inputs.f32) through semihosting, all before the first inference, then
 * quantize and run each row with the C kernel's public API and print a checksum of the
 * predictions. Only the inferences scale with N, so (count with N rows - count with 1) / (N - 1)
 * is the cost of one inference, input quantization included. */
#include "edge_lsh.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static elsh_qnet net;

static void *read_all(const char *path, size_t *bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0) return NULL;
    long size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) return NULL;
    unsigned char *raw = malloc((size_t)size + 64u);
    if (!raw) return NULL;
    unsigned char *buf = (unsigned char *)(((uintptr_t)raw + 63u) & ~(uintptr_t)63u);
    *bytes = fread(buf, 1, (size_t)size, f); /* one read: semihosting moves it in one call */
    fclose(f);
    return *bytes == (size_t)size ? buf : NULL;
}

int main(void)
{
    int n = 0, dense = 0;
    FILE *job = fopen("job.txt", "r");
    if (!job || fscanf(job, "%d %d", &n, &dense) != 2 || n < 1) {
        printf("m33_count: bad job.txt\n");
        return 2;
    }
    fclose(job);
    size_t model_bytes = 0, input_bytes = 0, need = 0;
    void *model = read_all("model.elsh", &model_bytes);
    float *x = read_all("inputs.f32", &input_bytes);
    if (!model || !x) {
        printf("m33_count: cannot read model.elsh or inputs.f32\n");
        return 2;
    }
    int rc = elsh_model_open(&net, model, model_bytes, &need);
    if (rc != ELSH_OK) {
        printf("m33_count: model_open %d\n", rc);
        return 3;
    }
    void *arena_raw = malloc(need + 64);
    void *arena = (void *)(((uintptr_t)arena_raw + 63u) & ~(uintptr_t)63u);
    if (!arena_raw || (rc = elsh_model_attach(&net, arena, need)) != ELSH_OK) {
        printf("m33_count: attach failed\n");
        return 3;
    }
    elsh_qnet_summary s;
    elsh_qnet_info(&net, &s);
    if (input_bytes < (size_t)n * (size_t)s.n_in * sizeof(float)) {
        printf("m33_count: inputs.f32 holds fewer than %d rows\n", n);
        return 2;
    }
    elsh_qnet_set_active(&net, 0.0f, dense);
    int8_t *xq = malloc((size_t)s.n_in);
    uint32_t sum = 0;
    for (int r = 0; r < n; r++) {
        elsh_qnet_quantize_input(&net, x + (size_t)r * (size_t)s.n_in, xq);
        int pred = elsh_qnet_forward(&net, xq);
        if (pred < 0) {
            printf("m33_count: forward %d\n", pred);
            return 3;
        }
        sum = sum * 31u + (uint32_t)pred;
    }
    printf("m33_count: %d rows, dense %d, arena %u B, checksum %08lx\n", n, dense,
           (unsigned)need, (unsigned long)sum);
    return 0;
}
