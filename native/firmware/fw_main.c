/* fw_main.c - the Cortex-M firmware's program: a self-test of every embedded model, then
 * (with -DFW_SERIAL) predictions for inputs sent over the serial line.
 *
 * Self-test, for every embedded model: elsh_model_open on the const array in flash (executed
 * in place, nothing copied), elsh_model_attach on a static arena, elsh_qnet_forward on each
 * recorded int8 input, and every int32 logit and the prediction compared with the host's
 * (the numpy reference in firmware_tests, the host kernel for edge-lsh deploy). Prints
 * PASS/FAIL lines and returns 0 only if everything is bit-exact; startup.c hands the value to
 * fw_exit (QEMU's exit status). firmware_tests runs it on mps2-an505 (M33) and mps2-an385 (the
 * M0+ build's ARMv6-M code on a Cortex-M3).
 *
 * Serial loop (-DFW_SERIAL, after a passing self-test; the Pico 2 image): on the first model,
 * reads one line at a time, n_in numbers separated by commas, spaces or tabs (an extra last
 * column, a label, is ignored; lines starting with '#' and empty lines are skipped), quantizes
 * them with elsh_qnet_quantize_input, and answers like `edge-lsh-run --logits`: the class, then
 * the int32 logit of every class. Anything else it prints starts with "# ". `quit` returns.
 *
 * The prediction sequence on a device, as used here:
 *     elsh_model_open(&net, model_array, model_bytes, &need);   // validates, in place
 *     elsh_model_attach(&net, arena, sizeof arena);             // static arena >= need
 *     elsh_qnet_quantize_input(&net, x, xq);                    // n_in floats -> int8
 *     int cls = elsh_qnet_forward(&net, xq);
 *     const int32_t *logits = elsh_qnet_logits(&net);
 *
 * No malloc: the C library's heap is not linked (the Makefile and deploy check the symbols). */
#include <stdint.h>
#include <string.h>

#include "edge_lsh.h"
#include "fw_models.h"
#include "platform.h"

#ifndef FW_ARENA_BYTES
#error "FW_ARENA_BYTES must be defined (the Makefile takes it from the host's elsh_model_open)"
#endif

extern const uint8_t _flash_start[], _flash_end[];
extern const uint32_t _sstack[], _estack[];
uint32_t fw_stack_used(void);

static elsh_qnet net;
static uint8_t arena[FW_ARENA_BYTES] __attribute__((aligned(64)));

/* after the arena, as when the line buffer was defined here: the same .bss layout (its end
 * 8-aligned, so the stack follows without padding, as tests/test_pico2_image.py expects) */
#include "fw_print.h"

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

#if defined(FW_SERIAL)
/* ---------------------------------------------------------------- the serial loop */

#ifndef FW_SERIAL_MAX_IN
#define FW_SERIAL_MAX_IN 1024 /* inputs per line at most; deploy sets the model's n_in */
#endif

static float serial_x[FW_SERIAL_MAX_IN + 1];
static int8_t serial_xq[FW_SERIAL_MAX_IN];

#include "fw_parse.h"

static int open_model(const fw_model *m)
{
    size_t need = 0;
    int rc = elsh_model_open(&net, m->elsh, m->elsh_bytes, &need);
    if (rc == ELSH_OK && need > sizeof arena) rc = ELSH_ERR_ARENA;
    if (rc == ELSH_OK) rc = elsh_model_attach(&net, arena, sizeof arena);
    return rc;
}

/* Reports an error on the current line (the rest of the line is then ignored). */
static void line_error(uint32_t line_no, const char *what, const char *detail)
{
    put_str("# error: line ");
    put_u32(line_no, 0);
    put_str(": ");
    put_str(what);
    put_str(detail);
    flush();
}

static int serial_loop(const fw_model *m)
{
    int rc = open_model(m);
    elsh_qnet_summary model;
    if (rc == ELSH_OK) rc = elsh_qnet_info(&net, &model);
    if (rc != ELSH_OK || model.n_in > FW_SERIAL_MAX_IN) {
        put_str("# error: cannot serve ");
        put_str(m->name);
        put_str(": ");
        put_str(rc != ELSH_OK ? elsh_status_str(rc) : "more inputs than FW_SERIAL_MAX_IN");
        flush();
        return 1;
    }
    put_str("# ready: ");
    put_str(m->name);
    put_str(": send ");
    put_i32(model.n_in);
    put_str(" numbers a line (commas or spaces), get the class and ");
    put_i32(model.n_classes);
    put_str(" logits; quit ends");
    flush();
    /* the line is parsed as it arrives: only the current number is buffered */
    char tok[48];
    uint32_t tok_len = 0, line_no = 1;
    int32_t n = 0;
    int skip = 0, quit = 0;
    for (;;) {
        int c = fw_getc();
        if (c < 0) return 0; /* no more input (QEMU) */
        if (c == '\r') continue;
        int end_of_token = c == '\n' || c == ' ' || c == '\t' || c == ',';
        if (!end_of_token) {
            if (!skip && tok_len == 0 && n == 0 && c == '#') skip = 1; /* a comment line */
            if (!skip && tok_len + 1 < sizeof tok) tok[tok_len] = (char)c;
            if (!skip) tok_len++;
            continue;
        }
        if (tok_len && !skip) { /* a number ends */
            if (tok_len + 1 > sizeof tok) {
                line_error(line_no, "a value is too long", "");
                skip = 1;
            } else {
                tok[tok_len] = 0;
                quit = n == 0 && !strcmp(tok, "quit");
                if (quit) {
                    n = -1; /* nothing may follow */
                } else if (n < 0 || n > model.n_in) {
                    line_error(line_no, "too many values", "");
                    skip = 1;
                } else if (fw_parse_float(tok, &serial_x[n])) {
                    line_error(line_no, "not a number: ", tok);
                    skip = 1;
                } else {
                    n++;
                }
            }
        }
        tok_len = 0;
        if (c != '\n') continue;
        /* the line ends */
        if (quit && n == -1) return 0;
        if (!skip && n != 0) {
            if (n != model.n_in && n != model.n_in + 1) {
                put_str("# error: line ");
                put_u32(line_no, 0);
                put_str(": ");
                put_i32(n < 0 ? 0 : n);
                put_str(" values, expected ");
                put_i32(model.n_in);
                put_str(" (and an optional label)");
                flush();
            } else {
                rc = elsh_qnet_quantize_input(&net, serial_x, serial_xq);
                int pred = rc == ELSH_OK ? elsh_qnet_forward(&net, serial_xq) : rc;
                if (pred < 0) {
                    line_error(line_no, elsh_status_str(pred), "");
                } else {
                    const int32_t *logits = elsh_qnet_logits(&net);
                    put_i32(pred);
                    for (int32_t j = 0; j < model.n_classes; j++) {
                        put_str(" ");
                        put_i32(logits[j]);
                    }
                    flush();
                }
            }
        }
        line_no++;
        n = 0;
        skip = quit = 0;
    }
}
#endif

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
#if defined(FW_SERIAL)
    if (!bad) bad = serial_loop(&fw_models[0]);
#endif
    return bad ? 1 : 0;
}
