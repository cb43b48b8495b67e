/* flash_rp2350_hosttest.c - flash_rp2350.c on a PC, with the RP2350 around it simulated: a
 * bootrom whose table answers the five flash functions (Secure Arm entries only), a 4 MB NOR
 * flash (erase to 0xFF by sectors, program ANDs) that is the "XIP window" mapped read-only while
 * XIP is on and not mapped at all (PROT_NONE) while it is off, so any read of flash by the
 * driver in its XIP-off window crashes the test; boot RAM with an XIP setup function to copy;
 * the six QSPI pad registers (connect_internal_flash resets them, the driver must restore them);
 * PRIMASK. Every fake ROM call checks the state the real one needs (interrupts masked, the
 * order connect, exit XIP, erase or program, flush, XIP setup from a copy) and logs a letter.
 *
 * Built and run by tests/test_flash_rp2350.py:
 *   cc -std=c99 -DFW_FLASH_RP2350_HOST_TEST -Inative/include -Inative/src -Inative/firmware \
 *      native/firmware/flash_rp2350.c native/firmware/flash_rp2350_hosttest.c \
 *      native/src/slots.c native/src/crc32.c
 * Prints "flash_rp2350 host test: PASS (N checks)" and exits 0, or names the failed check. */
#define _DEFAULT_SOURCE /* mmap's MAP_ANONYMOUS, mprotect */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "edge_lsh_slots.h"
#include "flash_rp2350.h"

#define FLASH_BYTES FW_RP2350_FLASH_BYTES
#define REGION_AT (2u << 20) /* the slots: the upper 2 MB, as rp2350_finetune.ld */
#define REGION_BYTES (2u << 20)
#define PAD_RESET 0x1d0u /* what the fake connect_internal_flash leaves in the pads */
#define PAD_USER 0x056u  /* what the test sets before each operation */

/* ---------------------------------------------------------------- the simulated chip */

typedef void *(*rom_table_lookup_fn)(uint32_t code, uint32_t mask);
rom_table_lookup_fn host_rom_table_lookup;
const uint32_t host_bootram[FW_RP2350_XIP_SETUP_WORDS] = {0xb500bf00u, 0x12345678u, 0x9abcdef0u, 0xbd00bf00u};
volatile uint32_t host_qspi_pads[6];
uintptr_t host_xip_base;

static uint8_t *xip;        /* the 4 MB window */
static int xip_on = 1;      /* the QMI serves XIP reads */
static int connected;       /* connect_internal_flash since the last XIP setup */
static int masked;          /* PRIMASK */
static int op_done;         /* an erase or program since exit_xip */
static int write_protected; /* erase and program do nothing (a failing chip) */
static const char *missing; /* a code the fake table does not answer ("RP") */
static uint32_t lookup_mask_seen;
static char log_buf[4096];
static size_t log_len;
static uint32_t lowest = 0xFFFFFFFFu, highest; /* flash offsets erased or programmed */
static int checks, failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        checks++;                                                                    \
        if (!(cond)) {                                                               \
            failures++;                                                              \
            fprintf(stderr, "flash_rp2350 host test: FAIL line %d: %s\n", __LINE__, #cond); \
        }                                                                            \
    } while (0)

static void log_char(char c)
{
    if (log_len + 1 < sizeof log_buf) log_buf[log_len++] = c;
    log_buf[log_len] = 0;
}

static void protect(int prot)
{
    if (mprotect(xip, FLASH_BYTES, prot) != 0) {
        perror("mprotect");
        exit(2);
    }
}

static void touch(uint32_t offset, uint32_t n)
{
    if (offset < lowest) lowest = offset;
    if (offset + n > highest) highest = offset + n;
}

static void rom_connect_internal_flash(void)
{
    CHECK(masked && xip_on && !connected);
    connected = 1;
    for (int i = 0; i < 6; i++) host_qspi_pads[i] = PAD_RESET;
    log_char('I');
}

static void rom_flash_exit_xip(void)
{
    CHECK(masked && xip_on && connected);
    xip_on = 0;
    op_done = 0;
    protect(PROT_NONE); /* from here until the XIP setup, flash reads fault */
    log_char('X');
}

static void rom_flash_range_erase(uint32_t offset, uint32_t count, uint32_t block_size, uint8_t block_cmd)
{
    CHECK(masked && !xip_on && !op_done);
    CHECK(offset % 4096u == 0 && count % 4096u == 0 && count && offset <= FLASH_BYTES && count <= FLASH_BYTES - offset);
    CHECK(block_size == 65536u && block_cmd == 0xd8u);
    if (offset % 4096u == 0 && count % 4096u == 0 && offset <= FLASH_BYTES && count <= FLASH_BYTES - offset &&
        !write_protected) {
        protect(PROT_READ | PROT_WRITE);
        memset(xip + offset, 0xFF, count);
        protect(PROT_NONE);
    }
    touch(offset, count);
    op_done = 1;
    log_char('E');
}

static void rom_flash_range_program(uint32_t offset, const uint8_t *data, uint32_t count)
{
    CHECK(masked && !xip_on && !op_done);
    CHECK(offset % 256u == 0 && count % 256u == 0 && count && offset <= FLASH_BYTES && count <= FLASH_BYTES - offset);
    /* the data must not be in flash: the chip cannot be read while it is being programmed */
    CHECK((uintptr_t)data + count <= (uintptr_t)xip || (uintptr_t)data >= (uintptr_t)xip + FLASH_BYTES);
    if (offset % 256u == 0 && offset <= FLASH_BYTES && count <= FLASH_BYTES - offset && !write_protected) {
        protect(PROT_READ | PROT_WRITE);
        for (uint32_t i = 0; i < count; i++) xip[offset + i] &= data[i];
        protect(PROT_NONE);
    }
    touch(offset, count);
    op_done = 1;
    log_char('P');
}

static void rom_flash_flush_cache(void)
{
    CHECK(masked && !xip_on && op_done);
    log_char('F');
}

static void *rom_lookup(uint32_t code, uint32_t mask)
{
    lookup_mask_seen |= mask;
    if (mask != 0x0004u) return NULL; /* only the Secure Arm entries */
    /* the codes as bootrom_constants.h defines them: ROM_TABLE_CODE(c1, c2) = c1 | c2 << 8 */
    static const struct {
        char c1, c2;
        void (*fn)(void);
    } table[] = {
        {'I', 'F', (void (*)(void))rom_connect_internal_flash},
        {'E', 'X', (void (*)(void))rom_flash_exit_xip},
        {'R', 'E', (void (*)(void))rom_flash_range_erase},
        {'R', 'P', (void (*)(void))rom_flash_range_program},
        {'F', 'C', (void (*)(void))rom_flash_flush_cache},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (code != ((uint32_t)(uint8_t)table[i].c1 | (uint32_t)(uint8_t)table[i].c2 << 8)) continue;
        if (missing && missing[0] == table[i].c1 && missing[1] == table[i].c2) return NULL;
        return (void *)(uintptr_t)table[i].fn;
    }
    return NULL;
}

void host_run_xip_setup(const uint32_t *copy)
{
    CHECK(masked && !xip_on && connected && log_len && log_buf[log_len - 1] == 'F');
    /* run from the driver's copy in RAM, not from boot RAM itself, and a faithful copy */
    CHECK(copy != host_bootram && memcmp(copy, host_bootram, sizeof host_bootram) == 0);
    xip_on = 1;
    connected = 0;
    protect(PROT_READ);
    log_char('S');
}

uint32_t host_irq_save_disable(void)
{
    uint32_t was = (uint32_t)masked;
    masked = 1;
    return was;
}

void host_irq_restore(uint32_t primask) { masked = (int)primask; }

/* ---------------------------------------------------------------- the tests */

static void set_pads(void)
{
    for (int i = 0; i < 6; i++) host_qspi_pads[i] = PAD_USER + (uint32_t)i;
}

static int pads_restored(void)
{
    for (int i = 0; i < 6; i++)
        if (host_qspi_pads[i] != PAD_USER + (uint32_t)i) return 0;
    return 1;
}

static int sequence_is(const char *op, size_t times)
{
    if (log_len != times * strlen(op)) return 0;
    for (size_t i = 0; i < times; i++)
        if (memcmp(log_buf + i * strlen(op), op, strlen(op)) != 0) return 0;
    return 1;
}

static void reset_log(void)
{
    log_len = 0;
    log_buf[0] = 0;
}

/* fill the whole chip (as the device sees it: reads only) through a writable moment */
static void fill_chip(uint32_t seed)
{
    protect(PROT_READ | PROT_WRITE);
    for (uint32_t i = 0; i < FLASH_BYTES; i++) {
        seed = seed * 1664525u + 1013904223u;
        xip[i] = (uint8_t)(seed >> 24);
    }
    protect(PROT_READ);
}

static uint32_t chip_sum(uint32_t from, uint32_t to)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = from; i < to; i++) h = (h ^ xip[i]) * 16777619u;
    return h;
}

static void test_init(void)
{
    elsh_flash flash;
    fw_flash_rp2350 drv;
    const uint8_t *region = xip + REGION_AT;
    lookup_mask_seen = 0;
    CHECK(fw_flash_rp2350_init(&flash, &drv, region, REGION_BYTES) == ELSH_SLOTS_OK);
    CHECK(lookup_mask_seen == 0x0004u); /* RT_FLAG_FUNC_ARM_SEC, nothing else */
    CHECK(flash.size == REGION_BYTES && flash.sector_size == 4096u && flash.page_size == 256u);
    CHECK(flash.mapped == region && flash.ctx == &drv && flash.read == NULL);
    CHECK(drv.region_offset == REGION_AT && drv.region_size == REGION_BYTES);
    CHECK(memcmp(drv.xip_setup, host_bootram, sizeof host_bootram) == 0);
    CHECK(log_len == 0); /* init touches no flash */
    /* geometry: misaligned, past the 4 MB, before the window, not whole sectors */
    CHECK(fw_flash_rp2350_init(&flash, &drv, region + 256, REGION_BYTES - 4096) == ELSH_SLOTS_ERR_GEOMETRY);
    CHECK(fw_flash_rp2350_init(&flash, &drv, xip + (3u << 20), REGION_BYTES) == ELSH_SLOTS_ERR_GEOMETRY);
    CHECK(fw_flash_rp2350_init(&flash, &drv, xip + FLASH_BYTES, 4096) == ELSH_SLOTS_ERR_GEOMETRY);
    CHECK(fw_flash_rp2350_init(&flash, &drv, (const uint8_t *)(host_xip_base - 4096u), 8192) == ELSH_SLOTS_ERR_GEOMETRY);
    CHECK(fw_flash_rp2350_init(&flash, &drv, region, REGION_BYTES - 100) == ELSH_SLOTS_ERR_GEOMETRY);
    CHECK(fw_flash_rp2350_init(&flash, &drv, region, 4096) == ELSH_SLOTS_ERR_GEOMETRY); /* < 2 sectors */
    CHECK(fw_flash_rp2350_init(NULL, &drv, region, REGION_BYTES) == ELSH_SLOTS_ERR_NULL);
    CHECK(fw_flash_rp2350_init(&flash, &drv, xip, FLASH_BYTES) == ELSH_SLOTS_OK); /* the whole chip */
    static const char *const codes[] = {"IF", "EX", "RE", "RP", "FC"};
    for (size_t i = 0; i < 5; i++) {
        missing = codes[i];
        CHECK(fw_flash_rp2350_init(&flash, &drv, region, REGION_BYTES) == ELSH_SLOTS_ERR_FLASH);
    }
    missing = NULL;
    CHECK(log_len == 0);
}

static void test_erase_and_program(void)
{
    elsh_flash flash;
    fw_flash_rp2350 drv;
    CHECK(fw_flash_rp2350_init(&flash, &drv, xip + REGION_AT, REGION_BYTES) == ELSH_SLOTS_OK);
    fill_chip(1);
    uint32_t below = chip_sum(0, REGION_AT + 4096), above = chip_sum(REGION_AT + 8192, FLASH_BYTES);

    /* one sector: flash offset = region offset + 2 MB; nothing else changes */
    reset_log();
    set_pads();
    lowest = 0xFFFFFFFFu, highest = 0;
    CHECK(flash.erase_sector(flash.ctx, 4096) == 0);
    CHECK(sequence_is("IXEFS", 1) && pads_restored() && !masked && xip_on);
    CHECK(lowest == REGION_AT + 4096 && highest == REGION_AT + 8192);
    int all_ff = 1;
    for (uint32_t i = 0; i < 4096; i++) all_ff &= xip[REGION_AT + 4096 + i] == 0xFF;
    CHECK(all_ff && chip_sum(0, REGION_AT + 4096) == below && chip_sum(REGION_AT + 8192, FLASH_BYTES) == above);
    CHECK(drv.n_erases == 1);

    /* two pages, from a buffer in RAM: each page its own XIP-off window */
    uint8_t data[512];
    for (int i = 0; i < 512; i++) data[i] = (uint8_t)(i * 7 + 3);
    reset_log();
    lowest = 0xFFFFFFFFu, highest = 0;
    CHECK(flash.program(flash.ctx, 4096 + 256, data, 512) == 0);
    CHECK(sequence_is("IXPFS", 2) && pads_restored() && !masked);
    CHECK(lowest == REGION_AT + 4096 + 256 && highest == REGION_AT + 4096 + 768);
    CHECK(memcmp(xip + REGION_AT + 4096 + 256, data, 512) == 0);
    CHECK(xip[REGION_AT + 4096 + 255] == 0xFF && xip[REGION_AT + 4096 + 768] == 0xFF);
    CHECK(drv.n_programs == 1);

    /* the data may be in flash itself (copied before XIP goes off, else the test faults) */
    reset_log();
    CHECK(flash.program(flash.ctx, 4096 + 1024, xip + REGION_AT + 4096 + 256, 256) == 0);
    CHECK(sequence_is("IXPFS", 1) && memcmp(xip + REGION_AT + 4096 + 1024, data, 256) == 0);

    /* programming can only clear bits: asking for a 1 over a 0 is reported (-2) */
    uint8_t ones[256];
    memset(ones, 0xFF, sizeof ones);
    CHECK(flash.program(flash.ctx, 4096 + 256, ones, 256) == -2);
    CHECK(memcmp(xip + REGION_AT + 4096 + 256, data, 256) == 0); /* unchanged: old & 0xFF */

    /* interrupts already masked stay masked */
    masked = 1;
    CHECK(flash.erase_sector(flash.ctx, 4096) == 0 && masked);
    masked = 0;

    /* out of line or out of range: refused before anything runs */
    reset_log();
    CHECK(flash.erase_sector(flash.ctx, 100) == -1);
    CHECK(flash.erase_sector(flash.ctx, REGION_BYTES) == -1);
    CHECK(flash.program(flash.ctx, 128, data, 256) == -1);
    CHECK(flash.program(flash.ctx, 0, data, 100) == -1);
    CHECK(flash.program(flash.ctx, REGION_BYTES - 256, data, 512) == -1);
    CHECK(log_len == 0);

    /* a chip that ignores the commands: the read-back says so */
    write_protected = 1;
    CHECK(flash.erase_sector(flash.ctx, 8192) == -2);
    CHECK(flash.program(flash.ctx, 4096 + 2048, data, 256) == -2);
    write_protected = 0;
}

static uint8_t payload_byte(uint32_t seed, uint32_t i) { return (uint8_t)((i * 2654435761u + seed) >> 13); }

static int source(void *ctx, uint32_t offset, uint8_t *dst, uint32_t n)
{
    uint32_t seed = *(const uint32_t *)ctx;
    for (uint32_t i = 0; i < n; i++) dst[i] = payload_byte(seed, offset + i);
    return 0;
}

/* the slot writer (slots.c, unchanged) over this driver: two saves, A then B, boot picks */
static void test_slots(void)
{
    elsh_flash flash;
    fw_flash_rp2350 drv;
    CHECK(fw_flash_rp2350_init(&flash, &drv, xip + REGION_AT, REGION_BYTES) == ELSH_SLOTS_OK);
    fill_chip(7); /* a new chip's region holds whatever it holds */
    uint32_t code = chip_sum(0, REGION_AT);
    elsh_slot_info info, saved;
    CHECK(elsh_slots_pick(&flash, &info) == ELSH_SLOTS_NO_MODEL);
    reset_log();
    lowest = 0xFFFFFFFFu, highest = 0;
    uint32_t seed1 = 11, n1 = 70001;
    CHECK(elsh_slots_save_from(&flash, source, &seed1, n1, &saved) == ELSH_SLOTS_OK);
    CHECK(saved.slot == 0 && saved.sequence == 1 && saved.length == n1);
    /* sectors for header + payload, then pages: every window complete */
    uint32_t sectors = (256u + n1 + 4095u) / 4096u, pages = (n1 + 255u) / 256u + 1u;
    CHECK(log_len == 5u * (sectors + pages));
    int windows_ok = 1;
    for (size_t i = 0; i + 5 <= log_len; i += 5)
        windows_ok &= !memcmp(log_buf + i, "IXEFS", 5) || !memcmp(log_buf + i, "IXPFS", 5);
    CHECK(windows_ok);
    CHECK(lowest == REGION_AT && highest == REGION_AT + sectors * 4096u);
    CHECK(elsh_slots_pick(&flash, &info) == ELSH_SLOTS_OK && info.slot == 0 && info.sequence == 1);
    const uint8_t *p = elsh_slots_payload(&flash, &info);
    int same = p == xip + REGION_AT + 256;
    for (uint32_t i = 0; same && i < n1; i++) same = p[i] == payload_byte(seed1, i);
    CHECK(same);

    uint32_t seed2 = 12, n2 = 5000;
    lowest = 0xFFFFFFFFu, highest = 0;
    CHECK(elsh_slots_save_from(&flash, source, &seed2, n2, &saved) == ELSH_SLOTS_OK);
    CHECK(saved.slot == 1 && saved.sequence == 2);
    CHECK(lowest == REGION_AT + REGION_BYTES / 2 && highest == REGION_AT + REGION_BYTES / 2 + 8192u);
    CHECK(elsh_slots_pick(&flash, &info) == ELSH_SLOTS_OK && info.slot == 1 && info.sequence == 2);
    p = elsh_slots_payload(&flash, &info);
    same = p == xip + REGION_AT + REGION_BYTES / 2 + 256;
    for (uint32_t i = 0; same && i < n2; i++) same = p[i] == payload_byte(seed2, i);
    CHECK(same);
    CHECK(elsh_slots_read_slot(&flash, 0, &info) == ELSH_SLOTS_OK && info.sequence == 1); /* A kept */
    CHECK(chip_sum(0, REGION_AT) == code); /* the image below the region never touched */
    CHECK(!masked && xip_on && pads_restored());
}

int main(void)
{
    void *m = mmap(NULL, FLASH_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    xip = (uint8_t *)m;
    host_xip_base = (uintptr_t)xip;
    host_rom_table_lookup = rom_lookup;
    protect(PROT_READ);
    set_pads();
    test_init();
    test_erase_and_program();
    test_slots();
    munmap(m, FLASH_BYTES);
    if (failures) {
        fprintf(stderr, "flash_rp2350 host test: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("flash_rp2350 host test: PASS (%d checks)\n", checks);
    return 0;
}
