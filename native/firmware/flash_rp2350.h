/* flash_rp2350.h - the elsh_flash driver (edge_lsh_slots.h) for a real RP2350's QSPI flash
 * (Raspberry Pi Pico 2): erase and program through the bootrom's flash functions, run from
 * SRAM with XIP off and interrupts masked. Bare metal, no Pico SDK. See flash_rp2350.c for the
 * call sequence and where every constant comes from. */
#ifndef FLASH_RP2350_H
#define FLASH_RP2350_H

#include <stdint.h>

#include "edge_lsh_slots.h"

#define FW_RP2350_FLASH_BYTES (4u << 20) /* a Pico 2's flash chip: 4 MB (W25Q32) */
#define FW_RP2350_SECTOR 4096u           /* erase unit of flash_range_erase */
#define FW_RP2350_PAGE 256u              /* program unit of flash_range_program */
#define FW_RP2350_XIP_SETUP_WORDS 64u    /* the saved XIP setup function copied from boot RAM */

typedef void (*fw_rom_void_fn)(void);
typedef void (*fw_rom_erase_fn)(uint32_t offset, uint32_t count, uint32_t block_size, uint8_t block_cmd);
typedef void (*fw_rom_program_fn)(uint32_t offset, const uint8_t *data, uint32_t count);

/* The driver's state: the bootrom functions found by fw_flash_rp2350_init, the copy of the XIP
 * setup function (executed from here, in SRAM) and where the region lies in flash. It must
 * live in SRAM (a static in .bss): the code that runs with XIP off reads it. */
typedef struct fw_flash_rp2350 {
    fw_rom_void_fn connect_internal_flash; /* 'I','F' */
    fw_rom_void_fn flash_exit_xip;         /* 'E','X' */
    fw_rom_erase_fn flash_range_erase;     /* 'R','E' */
    fw_rom_program_fn flash_range_program; /* 'R','P' */
    fw_rom_void_fn flash_flush_cache;      /* 'F','C' */
    uint32_t xip_setup[FW_RP2350_XIP_SETUP_WORDS]; /* boot RAM's XIP setup function, copied */
    uint32_t region_offset; /* the region's first byte, as an offset from the start of flash */
    uint32_t region_size;
    uint32_t n_erases, n_programs; /* calls that succeeded */
} fw_flash_rp2350;

/* Fill *flash and *drv for the region [region, region + size) of the XIP-mapped flash: looks the
 * bootrom functions up (ELSH_SLOTS_ERR_FLASH when one is missing), copies the XIP setup function
 * from boot RAM, and checks the region: sector-aligned, inside the 4 MB of flash
 * (ELSH_SLOTS_ERR_GEOMETRY otherwise). Reads go through the XIP mapping (flash->mapped). */
int fw_flash_rp2350_init(elsh_flash *flash, fw_flash_rp2350 *drv, const uint8_t *region, uint32_t size);

#endif /* FLASH_RP2350_H */
