/* main.c - the model of ../model_data.c on a Pico 2 with the Pico SDK: at start a self-test on
 * the embedded check inputs (every logit against the host's), then the serial loop of the
 * bare-metal firmware (native/firmware/fw_main.c) over USB serial: each line of N_IN numbers
 * (commas or spaces; an extra label column is ignored; '#' lines skipped) is answered with the
 * class and the int32 logit of every class, as `edge-lsh-run --logits` prints them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_lsh.h"
#include "fw_models.h"
#include "pico/stdlib.h"

#ifndef ARENA_BYTES
#error "ARENA_BYTES: the arena elsh_model_open asks for (CMakeLists.txt sets it)"
#endif
#ifndef N_IN
#error "N_IN: the model's inputs per row (CMakeLists.txt sets it)"
#endif

static elsh_qnet net;
static uint8_t arena[ARENA_BYTES] __attribute__((aligned(64)));
static float x[N_IN + 1];
static int8_t xq[N_IN];

static int self_test(const fw_model *m)
{
    int bad = 0;
    for (int32_t s = 0; s < m->n_inputs; s++) {
        int pred = elsh_qnet_forward(&net, m->inputs + (size_t)s * (size_t)m->n_in);
        const int32_t *logits = elsh_qnet_logits(&net);
        int same = pred == m->preds[s];
        for (int32_t j = 0; j < m->n_classes; j++) same &= logits[j] == m->logits[(size_t)s * (size_t)m->n_classes + (size_t)j];
        bad += !same;
    }
    printf("%s %s: %ld inputs %s\n", bad ? "FAIL" : "PASS", m->name, (long)m->n_inputs,
           bad ? "MISMATCH" : "bit-exact");
    return bad;
}

static void answer(int32_t n, int32_t n_classes, unsigned long line_no)
{
    if (n != N_IN && n != N_IN + 1) {
        printf("# error: line %lu: %ld values, expected %d (and an optional label)\n", line_no, (long)n, N_IN);
        return;
    }
    int rc = elsh_qnet_quantize_input(&net, x, xq);
    int pred = rc == ELSH_OK ? elsh_qnet_forward(&net, xq) : rc;
    if (pred < 0) {
        printf("# error: line %lu: %s\n", line_no, elsh_status_str(pred));
        return;
    }
    const int32_t *logits = elsh_qnet_logits(&net);
    printf("%d", pred);
    for (int32_t j = 0; j < n_classes; j++) printf(" %ld", (long)logits[j]);
    printf("\n");
}

int main(void)
{
    stdio_init_all();
#if LIB_PICO_STDIO_USB
    while (!stdio_usb_connected()) sleep_ms(100); /* until a terminal opens the port */
#endif
    const fw_model *m = &fw_models[0];
    size_t need = 0;
    int rc = elsh_model_open(&net, m->elsh, m->elsh_bytes, &need); /* in place, in flash */
    if (rc == ELSH_OK && need > sizeof arena) rc = ELSH_ERR_ARENA;
    if (rc == ELSH_OK) rc = elsh_model_attach(&net, arena, sizeof arena);
    if (rc != ELSH_OK) {
        printf("FAIL %s: %s (arena need %lu)\n", m->name, elsh_status_str(rc), (unsigned long)need);
        for (;;) sleep_ms(1000);
    }
    if (self_test(m)) {
        for (;;) sleep_ms(1000);
    }
    printf("# ready: %s: send %d numbers a line (commas or spaces), get the class and %ld logits\n",
           m->name, N_IN, (long)m->n_classes);
    char tok[48];
    size_t len = 0;
    int32_t n = 0;
    int skip = 0;
    unsigned long line_no = 1;
    for (;;) {
        int c = getchar();
        if (c == EOF || c == '\r') continue;
        if (c != '\n' && c != ' ' && c != '\t' && c != ',') {
            if (!skip && len == 0 && n == 0 && c == '#') skip = 1; /* a comment line */
            if (!skip && len + 1 < sizeof tok) tok[len] = (char)c;
            len++;
            continue;
        }
        if (len && !skip) {
            char *end = NULL;
            tok[len < sizeof tok ? len : sizeof tok - 1] = 0;
            float v = len < sizeof tok ? strtof(tok, &end) : 0.0f;
            if (len >= sizeof tok || end == tok || *end || n > N_IN) {
                printf("# error: line %lu: %s\n", line_no, n > N_IN ? "too many values" : "not a number");
                skip = 1;
            } else {
                x[n++] = v;
            }
        }
        len = 0;
        if (c != '\n') continue;
        if (!skip && n) answer(n, m->n_classes, line_no);
        line_no++;
        n = 0;
        skip = 0;
    }
}
