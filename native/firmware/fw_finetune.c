/* fw_finetune.c - the Cortex-M firmware that fine-tunes its model on the device (issue 10): a
 * model in flash, integer training steps (edge_lsh_finetune.h) in a static arena, the result
 * saved to one of two flash slots (edge_lsh_slots.h), the newest valid slot picked at boot.
 *
 * Boot: elsh_slots_pick on the slot region; a valid slot's payload (an .elsh file, memory-mapped
 * like the rest of flash) is the model, else the factory model linked into the image (fw_ft).
 * The model is opened in place (nothing copied), attached to a static arena, and made trainable
 * (elsh_qtrain_attach: the trainable layers' master weights, optimizer state and tables in a
 * second static arena; frozen layers keep running from flash).
 * Then:
 *   1. the accuracy on the embedded held-out samples (before);
 *   2. one training step per embedded sample, in the host's order (fw_ft.order), timed in
 *      steps and, under QEMU, counted in instructions by the insncount plugin;
 *   3. the accuracy again (after);
 *   4. the trained model written as an .elsh file into the slot that was not picked, with the
 *      next sequence number (elsh_slots_save_from: erase, payload, header last), a part at a
 *      time from elsh_qtrain_save_part, so the file never needs RAM of its size;
 *   5. with -DFW_DUMP_SLOTS=\"path\" (QEMU only), at the end: the whole slot region written to
 *      that host file by semihosting, so the test compares it byte for byte with the host's
 *      fine-tuning of the same samples;
 *   6. with -DFW_DENSE: every neuron computed (the dense baseline the instruction counts are
 *      compared with);
 *   7. with -DFW_SERIAL: samples over the serial line, one per line (n_in numbers then the
 *      label, commas or spaces), each quantized (elsh_qnet_quantize_input) and trained on at
 *      once; the answer is the class predicted before the step. `save` saves to a slot as in 4,
 *      `quit` ends.
 * Output lines that are not answers start with "# " or are the PASS/FAIL summary.
 *
 * The flash: on QEMU's mps2-an505 the slot region is the top of the 4 MB code memory (RAM in
 * QEMU, where a Pico 2 has its XIP flash), written through elsh_flash_ram (flash_ram.c), which
 * keeps NOR flash's rules (erase to 0xFF by 4 KB sectors, programming 256-byte pages can only
 * clear bits). On a real RP2350 (-DFW_FLASH_RP2350, the board image) the same region is XIP
 * flash, written by flash_rp2350.c: the bootrom's flash_range_erase / flash_range_program, run
 * from SRAM with XIP off and interrupts masked.
 *
 * No malloc; no float in the training step (the FPU is used only to parse serial input). */
#include <stdint.h>
#include <string.h>

#include "edge_lsh.h"
#include "edge_lsh_finetune.h"
#include "edge_lsh_slots.h"
#include "fw_finetune.h"
#include "fw_print.h"
#include "platform.h"

#if defined(FW_DUMP_SLOTS)
#include "semihost.h"
#endif
#if defined(FW_FLASH_RP2350)
#include "flash_rp2350.h"
#endif

extern uint8_t _slots_start[], _slots_end[]; /* the slot region (the linker script) */
extern const uint32_t _sstack[], _estack[];
uint32_t fw_stack_used(void);

static elsh_qnet net;
static elsh_qtrain trainer;
static elsh_flash flash;
#if defined(FW_FLASH_RP2350)
static fw_flash_rp2350 flash_rp2350; /* in .bss (SRAM): read while XIP is off */
#else
static elsh_flash_ram flash_ram;
#endif
static elsh_slot_info boot_slot;
static int have_slots;

/* ---------------------------------------------------------------- the model */

static int fail(const char *what, int status, const char *(*str)(int))
{
    put_str("FAIL: ");
    put_str(what);
    put_str(": ");
    put_str(str(status));
    flush();
    return 1;
}

/* The newest valid slot's model, else the factory one: opened in place and made trainable. */
static int boot(void)
{
    const uint8_t *model = fw_ft.elsh;
    uint32_t model_bytes = fw_ft.elsh_bytes;
    uint32_t region = (uint32_t)(_slots_end - _slots_start);
#if defined(FW_FLASH_RP2350)
    int rc = fw_flash_rp2350_init(&flash, &flash_rp2350, _slots_start, region);
#else
    int rc = elsh_flash_ram_init(&flash, &flash_ram, _slots_start, region, 4096u, 256u);
#endif
    if (rc != ELSH_SLOTS_OK) return fail("slot region", rc, elsh_slots_status_str);
    have_slots = 1;
    rc = elsh_slots_pick(&flash, &boot_slot);
    if (rc == ELSH_SLOTS_OK) {
        model = elsh_slots_payload(&flash, &boot_slot);
        model_bytes = boot_slot.length;
        put_str("boot: slot ");
        put_str(boot_slot.slot ? "B" : "A");
        put_str(", sequence ");
        put_u32(boot_slot.sequence, 0);
        put_str(", ");
        put_u32(model_bytes, 0);
        put_str(" B at ");
        put_u32((uint32_t)(uintptr_t)model, 1);
    } else if (rc == ELSH_SLOTS_NO_MODEL) {
        put_str("boot: no valid slot: the factory model ");
        put_str(fw_ft.name);
        put_str(", ");
        put_u32(model_bytes, 0);
        put_str(" B at ");
        put_u32((uint32_t)(uintptr_t)model, 1);
    } else {
        return fail("slot pick", rc, elsh_slots_status_str);
    }
    flush();
    size_t need = 0, tneed = 0;
    rc = elsh_model_open(&net, model, model_bytes, &need);
    if (rc == ELSH_OK && need > fw_model_arena_bytes) rc = ELSH_ERR_ARENA;
    if (rc == ELSH_OK) rc = elsh_model_attach(&net, fw_model_arena, fw_model_arena_bytes);
#if defined(FW_DENSE)
    /* the dense baseline: every neuron of every layer computed, in inference and training */
    if (rc == ELSH_OK) rc = elsh_qnet_set_active(&net, 0.0f, 1);
#endif
    if (rc == ELSH_OK) rc = elsh_qtrain_plan(&net, &fw_ft.cfg, &tneed);
    if (rc == ELSH_OK && tneed > fw_train_arena_bytes) rc = ELSH_ERR_ARENA;
    if (rc == ELSH_OK) rc = elsh_qtrain_attach(&trainer, &net, &fw_ft.cfg, fw_train_arena, fw_train_arena_bytes);
    if (rc != ELSH_OK) return fail("open/attach/train plan", rc, elsh_status_str);
    elsh_qnet_summary m;
    elsh_qnet_info(&net, &m);
    if (m.n_in != fw_ft.n_in || m.n_classes != fw_ft.n_classes) {
        put_str("FAIL: the model's shape differs from the embedded samples'");
        flush();
        return 1;
    }
    put_str("arena: model ");
    put_u32((uint32_t)need, 0);
    put_str(" B, training ");
    put_u32((uint32_t)tneed, 0);
    put_str(" B (static ");
    put_u32(fw_model_arena_bytes + fw_train_arena_bytes, 0);
    put_str(" B), train layers ");
    put_i32(fw_ft.cfg.train_layers);
    put_str(" (0 = all)");
    flush();
    return 0;
}

/* Accuracy on the embedded held-out samples, in hundredths of a percent. */
static uint32_t accuracy(void)
{
    int32_t correct = 0;
    for (int32_t s = 0; s < fw_ft.n_test; s++)
        correct += elsh_qnet_forward(&net, fw_ft.test_x + (size_t)s * (size_t)fw_ft.n_in) == fw_ft.test_y[s];
    return fw_ft.n_test ? (uint32_t)(10000 * (int64_t)correct / fw_ft.n_test) : 0u;
}

static void put_percent(const char *what, uint32_t hundredths)
{
    put_str(what);
    put_u32(hundredths / 100u, 0);
    put_str(".");
    if (hundredths % 100u < 10u) put_str("0");
    put_u32(hundredths % 100u, 0);
    put_str("%");
}

/* ---------------------------------------------------------------- saving */

/* The slot writer's payload source: file bytes [offset, offset + n) of the trained model. */
static int trained_part(void *ctx, uint32_t offset, uint8_t *dst, uint32_t n)
{
    return elsh_qtrain_save_part(&trainer, *(const uint32_t *)ctx, offset, dst, n) == ELSH_OK ? 0 : -1;
}

/* The trained model, written straight from the trainer into the slot that was not picked (the
 * file is never whole in RAM: frozen layers come from flash, trained ones from the arena). */
static int save(void)
{
    size_t bytes = 0;
    uint32_t crc = 0;
    int rc = elsh_qtrain_save(&trainer, NULL, 0, &bytes);
    if (rc == ELSH_OK) rc = elsh_qtrain_save_crc(&trainer, &crc);
    if (rc != ELSH_OK) return fail("save", rc, elsh_status_str);
    /* The model runs in place from the slot it booted from, and a save writes the slot that is
     * not the newest: after one save in this boot, that is the running model's own slot (the
     * trap in edge_lsh_slots.h, elsh_slots_source). Refuse instead of erasing it. */
    elsh_slot_info now, saved;
    int32_t target = elsh_slots_pick(&flash, &now) == ELSH_SLOTS_OK ? 1 - now.slot : 0;
    if (boot_slot.slot >= 0 && target == boot_slot.slot) {
        put_str("# not saved: the model runs from slot ");
        put_str(boot_slot.slot ? "B" : "A");
        put_str(", which this save would overwrite; reset the board (it boots the last save) to save again");
        flush();
        return 0;
    }
    rc = elsh_slots_save_from(&flash, trained_part, &crc, (uint32_t)bytes, &saved);
    if (rc != ELSH_SLOTS_OK) return fail("slot save", rc, elsh_slots_status_str);
    put_str("saved: slot ");
    put_str(saved.slot ? "B" : "A");
    put_str(", sequence ");
    put_u32(saved.sequence, 0);
    put_str(", ");
    put_u32(saved.length, 0);
    put_str(" B, CRC-32 ");
    put_u32(saved.payload_crc, 1);
    flush();
    return 0;
}

#if defined(FW_DUMP_SLOTS)
/* The slot region to a file on the host (semihosting SYS_OPEN "wb", SYS_WRITE, SYS_CLOSE). */
static int dump_slots(void)
{
    static const char path[] = FW_DUMP_SLOTS;
    uint32_t open_args[3] = {(uint32_t)(uintptr_t)path, 5u /* "wb" */, (uint32_t)(sizeof path - 1)};
    int32_t fd = sh_call(0x01, open_args);
    if (fd < 0) {
        put_str("FAIL: cannot open " FW_DUMP_SLOTS " on the host");
        flush();
        return 1;
    }
    uint32_t write_args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)_slots_start, (uint32_t)(_slots_end - _slots_start)};
    int32_t left = sh_call(0x05, write_args);
    uint32_t close_args[1] = {(uint32_t)fd};
    (void)sh_call(0x02, close_args);
    put_str(left ? "FAIL: slot region not fully written to " : "slot region written to ");
    put_str(FW_DUMP_SLOTS);
    flush();
    return left != 0;
}
#endif

#if defined(FW_SERIAL)
/* ---------------------------------------------------------------- samples over the serial line */

#include "fw_parse.h"

#ifndef FW_SERIAL_MAX_IN
#define FW_SERIAL_MAX_IN 1024 /* inputs per line at most; deploy sets the model's n_in */
#endif

static float serial_x[FW_SERIAL_MAX_IN + 1];
static int8_t serial_xq[FW_SERIAL_MAX_IN];

static int serial_loop(void)
{
    put_str("# ready: send n_in numbers and the label a line to train on; save, quit");
    flush();
    char tok[48];
    uint32_t tok_len = 0, line_no = 1;
    int32_t n = 0, word = 0;
    int skip = 0;
    for (;;) {
        int c = fw_getc();
        if (c < 0) return 0;
        if (c == '\r') continue;
        int end = c == '\n' || c == ' ' || c == '\t' || c == ',';
        if (!end) {
            if (!skip && tok_len == 0 && n == 0 && c == '#') skip = 1;
            if (!skip && tok_len + 1 < sizeof tok) tok[tok_len] = (char)c;
            if (!skip) tok_len++;
            continue;
        }
        if (tok_len && !skip) {
            tok[tok_len < sizeof tok ? tok_len : sizeof tok - 1] = 0;
            if (n == 0 && !strcmp(tok, "save")) word = 1;
            else if (n == 0 && !strcmp(tok, "quit")) word = 2;
            else if (word || n > fw_ft.n_in || tok_len + 1 > sizeof tok || fw_parse_float(tok, &serial_x[n])) skip = 1;
            else n++;
        }
        tok_len = 0;
        if (c != '\n') continue;
        if (word == 2 && !skip) return 0;
        if (word == 1 && !skip) {
            if (save()) return 1;
        } else if (skip || (n != 0 && n != fw_ft.n_in + 1)) {
            put_str("# error: line ");
            put_u32(line_no, 0);
            put_str(": expected ");
            put_i32(fw_ft.n_in);
            put_str(" numbers and a label");
            flush();
        } else if (n) {
            float label = serial_x[fw_ft.n_in];
            int rc = label >= 0.0f && label < (float)fw_ft.n_classes && label == (float)(int32_t)label
                         ? elsh_qnet_quantize_input(&net, serial_x, serial_xq)
                         : ELSH_ERR_INPUT;
            if (rc == ELSH_OK) rc = elsh_qtrain_step(&trainer, serial_xq, (int32_t)label);
            if (rc < 0) {
                put_str("# error: line ");
                put_u32(line_no, 0);
                put_str(": ");
                put_str(elsh_status_str(rc));
            } else {
                put_i32(rc);
            }
            flush();
        }
        line_no++;
        n = word = skip = 0;
    }
}
#endif

int main(void)
{
    if (boot()) return 1;
    if (fw_ft.n_test) {
        put_percent("accuracy before: ", accuracy());
        put_str(" on ");
        put_i32(fw_ft.n_test);
        put_str(" held-out samples");
        flush();
    }
    int bad = 0;
    for (int32_t s = 0; s < fw_ft.n_steps && !bad; s++) {
        uint32_t i = fw_ft.order[s];
        int rc = elsh_qtrain_step(&trainer, fw_ft.train_x + (size_t)i * (size_t)fw_ft.n_in, fw_ft.train_y[i]);
        if (rc < 0) bad = fail("training step", rc, elsh_status_str);
    }
    if (bad) return 1;
    put_str("trained: ");
    put_i32(fw_ft.n_steps);
    put_str(" steps on ");
    put_i32(fw_ft.n_train);
    put_str(" embedded samples");
    flush();
    if (fw_ft.n_test) {
        put_percent("accuracy after: ", accuracy());
        flush();
    }
    if (fw_ft.n_steps && save()) return 1;
#if defined(FW_SERIAL)
    if (serial_loop()) return 1;
#endif
#if defined(FW_DUMP_SLOTS)
    if (have_slots && dump_slots()) return 1;
#endif
    put_str("stack high-water ");
    put_u32(fw_stack_used(), 0);
    put_str(" of ");
    put_u32((uint32_t)((uintptr_t)_estack - (uintptr_t)_sstack), 0);
    put_str(" B");
    flush();
    put_str("FINETUNE DONE");
    flush();
    return 0;
}
