/* fw_main.c - golden conformance firmware for Cortex-M (QEMU mps2-an505 for the M33; the M0+
 * build is sized, and its objects also run on mps2-an385's Cortex-M3, a superset of ARMv6-M).
 *
 * For every embedded model: elsh_model_open on the const array in flash (executed in place,
 * nothing copied), elsh_model_attach on a static arena, elsh_qnet_forward on each recorded
 * int8 input, and every int32 logit and the prediction compared with the numpy reference.
 * Prints PASS/FAIL lines through semihosting and returns 0 only if everything is bit-exact;
 * startup.c hands the value to QEMU's exit status. No malloc: the C library's heap is not
 * linked (the Makefile checks the symbol table). */
#include <stdint.h>
#include <string.h>

#include "edge_lsh.h"
#include "fw_models.h"
#include "semihost.h"

#ifndef FW_ARENA_BYTES
#error "FW_ARENA_BYTES must be defined (the Makefile takes it from the host's elsh_model_open)"
#endif

extern const uint8_t _flash_start[], _flash_end[];
extern const uint32_t _sstack[], _estack[];
uint32_t fw_stack_used(void);

static elsh_qnet net;
static uint8_t arena[FW_ARENA_BYTES] __attribute__((aligned(64)));

/* ---------------------------------------------------------------- printing, no stdio */

static char line[256];
static uint32_t line_len;

static void put_str(const char *s)
{
    while (*s && line_len + 1 < sizeof line) line[line_len++] = *s++;
}

static void put_u32(uint32_t v, int hex)
{
    char buf[12];
    int n = 0;
    uint32_t base = hex ? 16u : 10u;
    if (hex) put_str("0x");
    do {
        uint32_t d = v % base;
        buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (n) {
        char c[2] = {buf[--n], 0};
        put_str(c);
    }
}

static void put_i32(int32_t v)
{
    if (v < 0) {
        put_str("-");
        put_u32(0u - (uint32_t)v, 0);
    } else {
        put_u32((uint32_t)v, 0);
    }
}

static void flush(void)
{
    line[line_len++] = '\n';
    line[line_len] = 0;
    sh_puts(line);
    line_len = 0;
}

/* ---------------------------------------------------------------- the CPU we run on */

static int check_cpu(void)
{
    uint32_t cpuid = *(volatile const uint32_t *)0xE000ED00u; /* SCB->CPUID */
    uint32_t part = (cpuid >> 4) & 0xFFFu;
#if defined(__ARM_ARCH_8M_MAIN__)
    const uint32_t want = 0xD21u; /* Cortex-M33 */
    const char *name = "Cortex-M33";
#elif defined(__ARM_ARCH_6M__) && defined(FW_ON_CORTEX_M3)
    /* the Cortex-M0+ build run on QEMU's mps2-an385: ARMv6-M code on an ARMv7-M core */
    const uint32_t want = 0xC23u; /* Cortex-M3 */
    const char *name = "Cortex-M3 running the ARMv6-M Cortex-M0+ build";
#elif defined(__ARM_ARCH_6M__)
    const uint32_t want = 0xC60u; /* Cortex-M0+ */
    const char *name = "Cortex-M0+";
#else
#error "unknown Cortex-M architecture"
#endif
    put_str("cpu: CPUID ");
    put_u32(cpuid, 1);
    put_str(part == want ? " (" : " (NOT ");
    put_str(name);
#if defined(__ARM_FP)
    put_str(", FPU enabled");
#endif
    put_str(")");
    flush();
    return part == want ? 0 : 1;
}

/* ---------------------------------------------------------------- one model */

static int in_flash(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    return a >= (uintptr_t)_flash_start && a < (uintptr_t)_flash_end;
}

static int check_model(const fw_model *m, uint32_t *n_checked)
{
    size_t need = 0;
    int rc = elsh_model_open(&net, m->elsh, m->elsh_bytes, &need);
    if (rc == ELSH_OK && need > sizeof arena) rc = ELSH_ERR_ARENA;
    if (rc == ELSH_OK) rc = elsh_model_attach(&net, arena, sizeof arena);
    if (rc != ELSH_OK) {
        put_str("FAIL ");
        put_str(m->name);
        put_str(": open/attach: ");
        put_str(elsh_status_str(rc));
        put_str(" (arena need ");
        put_u32((uint32_t)need, 0);
        put_str(")");
        flush();
        return 1;
    }
    /* executed in place: the weights the kernel reads are the flash array itself */
    elsh_qnet_summary model;
    elsh_qlayer_summary first;
    elsh_qnet_info(&net, &model);
    elsh_qnet_layer_info(&net, 0, &first);
    const uint8_t *w = (const uint8_t *)first.weights;
    if (model.file != m->elsh || !in_flash(model.file) || w < m->elsh || w >= m->elsh + m->elsh_bytes) {
        put_str("FAIL ");
        put_str(m->name);
        put_str(": model not used in place from flash");
        flush();
        return 1;
    }
    if (model.n_in != m->n_in || model.n_classes != m->n_classes) {
        put_str("FAIL ");
        put_str(m->name);
        put_str(": model shape differs from the expected outputs");
        flush();
        return 1;
    }
    int failures = 0;
    for (int32_t s = 0; s < m->n_inputs; s++) {
        int pred = elsh_qnet_forward(&net, m->inputs + (size_t)s * (size_t)m->n_in);
        const int32_t *logits = elsh_qnet_logits(&net);
        const int32_t *want = m->logits + (size_t)s * (size_t)m->n_classes;
        for (int32_t j = 0; j < m->n_classes; j++) {
            if (logits[j] != want[j]) {
                if (failures < 5) {
                    put_str("FAIL ");
                    put_str(m->name);
                    put_str(" input ");
                    put_i32(s);
                    put_str(" class ");
                    put_i32(j);
                    put_str(": logit ");
                    put_i32(logits[j]);
                    put_str(", expected ");
                    put_i32(want[j]);
                    flush();
                }
                failures++;
            }
        }
        if (pred != m->preds[s]) {
            if (failures < 5) {
                put_str("FAIL ");
                put_str(m->name);
                put_str(" input ");
                put_i32(s);
                put_str(": predicted ");
                put_i32(pred);
                put_str(", expected ");
                put_i32(m->preds[s]);
                flush();
            }
            failures++;
        }
    }
    *n_checked += (uint32_t)m->n_inputs;
    put_str(failures ? "FAIL " : "PASS ");
    put_str(m->name);
    put_str(": ");
    put_i32(m->n_inputs);
    put_str(" inputs ");
    put_str(failures ? "MISMATCH" : "bit-exact");
    put_str(", layers ");
    put_i32(model.n_in);
    for (int32_t l = 0; l < model.n_layers; l++) {
        elsh_qlayer_summary layer;
        elsh_qnet_layer_info(&net, l, &layer);
        put_str("-");
        put_i32(layer.n_out);
    }
    put_str(", model ");
    put_u32(m->elsh_bytes, 0);
    put_str(" B in flash at ");
    put_u32((uint32_t)(uintptr_t)m->elsh, 1);
    put_str(", arena ");
    put_u32((uint32_t)need, 0);
    put_str(" B");
    flush();
    return failures != 0;
}

int main(void)
{
    int bad = check_cpu();
    uint32_t n_checked = 0;
    for (int32_t i = 0; i < fw_n_models; i++) bad += check_model(&fw_models[i], &n_checked);
    put_str("arena: ");
    put_u32((uint32_t)sizeof arena, 0);
    put_str(" B static; stack high-water ");
    put_u32(fw_stack_used(), 0);
    put_str(" of ");
    put_u32((uint32_t)((uintptr_t)_estack - (uintptr_t)_sstack), 0);
    put_str(" B");
    flush();
    put_str(bad ? "FAILED: " : "ALL PASS: ");
    put_i32(fw_n_models);
    put_str(" models, ");
    put_u32(n_checked, 0);
    put_str(" inputs");
    flush();
    return bad ? 1 : 0;
}
