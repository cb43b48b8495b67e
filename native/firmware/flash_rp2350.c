/* flash_rp2350.c - the elsh_flash driver for a real RP2350's QSPI flash (Pico 2), bare metal.
 *
 * The flash is the XIP window at 0x10000000: while the QMI serves XIP reads the chip cannot take
 * erase or program commands, so each erase or program runs this sequence, the one the Pico
 * SDK's flash_range_erase / flash_range_program use on RP2350 (src/rp2_common/hardware_flash/
 * flash.c, read at pico-sdk commit a1438dff, 2025-07-28; this is our own code, not a copy):
 *
 *   interrupts masked (PRIMASK)                      [here, in flash: XIP still on]
 *   the data to program copied to a 256-byte buffer on the stack (SRAM)
 *   --- flash_op_xip_off, in SRAM (.time_critical, copied from flash with .data at reset) ---
 *   the six QSPI pad registers saved         (flash.c: flash_save_hardware_state)
 *   connect_internal_flash()                 (ROM 'I','F': QSPI pads to the QMI)
 *   flash_exit_xip()                         (ROM 'E','X': the chip to serial command mode)
 *   flash_range_erase(offs, 4096, 65536, 0xd8)  or  flash_range_program(offs, buf, 256)
 *   flash_flush_cache()                      (ROM 'F','C': invalidate the XIP cache so reads
 *                                             see the new bytes)
 *   the XIP setup function, from its copy in SRAM (flash.c: flash_enable_xip_via_boot2: on
 *                                             RP2350 the bootrom leaves the function that
 *                                             restores the boot's fast XIP mode at the start of
 *                                             boot RAM, 0x400e0000; the SDK copies 64 words of
 *                                             it to SRAM once and calls copy + 1)
 *   the QSPI pad registers restored          (flash.c: flash_restore_hardware_state)
 *   --- back in flash ---
 *   interrupts as they were; the result read back through XIP and compared.
 *
 * What the SDK does that this driver leaves out, and why: xip_cache_clean_all() (it writes back
 * dirty lines of XIP-mapped PSRAM; this firmware never writes through XIP) and the save and
 * restore of QMI window 1 (M1 TIMING/RCMD/RFMT; a second chip select, e.g. PSRAM, which a Pico
 * 2 does not have and this firmware never sets up).
 *
 * Nothing runs from flash while XIP is off: flash_op_xip_off is in SRAM, calls only the ROM
 * (addresses below 0x8000, through pointers held in the driver's state in SRAM) and the XIP
 * setup copy in SRAM, touches only the stack, the driver state and peripheral registers, and
 * holds no flash address in its literal pool. tests/test_pico2_image.py checks that on the
 * linked board image (symbol addresses, the disassembly's branches and loads).
 *
 * The ROM functions are found through the bootrom's table: the 16-bit pointer at ROM address
 * 0x16 is rom_table_lookup(code, mask) (bootrom_constants.h: BOOTROM_TABLE_LOOKUP_OFFSET =
 * BOOTROM_FUNC_TABLE_OFFSET 0x14 + BOOTROM_WELL_KNOWN_PTR_SIZE 2, on Arm), asked for the Secure
 * Arm entry (RT_FLAG_FUNC_ARM_SEC 0x0004: image_def_rp2350.c declares a Secure image) with the
 * two-character codes ROM_TABLE_CODE(c1, c2) = c1 | c2 << 8 (bootrom_constants.h:
 * ROM_FUNC_CONNECT_INTERNAL_FLASH 'I','F', ROM_FUNC_FLASH_EXIT_XIP 'E','X',
 * ROM_FUNC_FLASH_RANGE_ERASE 'R','E', ROM_FUNC_FLASH_RANGE_PROGRAM 'R','P',
 * ROM_FUNC_FLASH_FLUSH_CACHE 'F','C'; the lookup as pico/bootrom.h's rom_func_lookup_inline).
 *
 * Host test: with -DFW_FLASH_RP2350_HOST_TEST the hardware (ROM table, boot RAM, QSPI pads, XIP
 * base, PRIMASK, running the XIP setup copy) comes from flash_rp2350_hosttest.c, which fakes
 * the ROM over a simulated NOR flash that cannot be read while XIP is off
 * (tests/test_flash_rp2350.py builds and runs it). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "flash_rp2350.h"

/* bootrom_constants.h: ROM_TABLE_CODE, the ROM_FUNC_* codes, RT_FLAG_FUNC_ARM_SEC */
#define ROM_TABLE_CODE(c1, c2) ((uint32_t)(c1) | ((uint32_t)(c2) << 8))
#define ROM_FUNC_CONNECT_INTERNAL_FLASH ROM_TABLE_CODE('I', 'F')
#define ROM_FUNC_FLASH_EXIT_XIP ROM_TABLE_CODE('E', 'X')
#define ROM_FUNC_FLASH_RANGE_ERASE ROM_TABLE_CODE('R', 'E')
#define ROM_FUNC_FLASH_RANGE_PROGRAM ROM_TABLE_CODE('R', 'P')
#define ROM_FUNC_FLASH_FLUSH_CACHE ROM_TABLE_CODE('F', 'C')
#define RT_FLAG_FUNC_ARM_SEC 0x0004u
#define BOOTROM_TABLE_LOOKUP_OFFSET 0x16u /* 0x14 + 2 (bootrom_constants.h, Arm) */

/* hardware_flash/include/hardware/flash.h: FLASH_BLOCK_SIZE; flash.c: FLASH_BLOCK_ERASE_CMD
 * (the ROM uses the 64 KB block erase where a whole block is asked for, else 4 KB sectors) */
#define FLASH_BLOCK_SIZE 65536u
#define FLASH_BLOCK_ERASE_CMD 0xd8u
#define QSPI_PADS 6 /* pads_qspi.h: io[6], GPIO_QSPI_SCLK, SD0-SD3, SS at offsets 0x04-0x18 */

typedef void *(*rom_table_lookup_fn)(uint32_t code, uint32_t mask);

typedef char fw_rp2350_sector_is_pages[FW_RP2350_SECTOR % FW_RP2350_PAGE == 0 ? 1 : -1];
typedef char fw_rp2350_page_fits_slots[ELSH_SLOT_MAX_PAGE % FW_RP2350_PAGE == 0 ? 1 : -1];

#if defined(FW_FLASH_RP2350_HOST_TEST)
/* the host test's stand-ins (flash_rp2350_hosttest.c) */
extern rom_table_lookup_fn host_rom_table_lookup;
extern const uint32_t host_bootram[FW_RP2350_XIP_SETUP_WORDS];
extern volatile uint32_t host_qspi_pads[QSPI_PADS];
extern uintptr_t host_xip_base;
void host_run_xip_setup(const uint32_t *copy);
uint32_t host_irq_save_disable(void);
void host_irq_restore(uint32_t primask);
#define RAM_FUNC __attribute__((noinline))
#define XIP_BASE host_xip_base
#define BOOTRAM host_bootram
#define QSPI_PADS_IO host_qspi_pads
#define RUN_XIP_SETUP(copy) host_run_xip_setup(copy)
#define irq_save_disable host_irq_save_disable
#define irq_restore host_irq_restore
static rom_table_lookup_fn rom_table_lookup(void) { return host_rom_table_lookup; }
static void code_barrier(void) {}
#else
/* addressmap.h (rp2350): XIP_BASE, BOOTRAM_BASE, PADS_QSPI_BASE */
#define XIP_BASE 0x10000000u
#define BOOTRAM ((const volatile uint32_t *)0x400e0000u)
#define QSPI_PADS_IO ((volatile uint32_t *)(0x40040000u + 0x04u))
/* placed in .data's output section (sections.ld: *(.time_critical*)): in SRAM, copied at reset */
#define RAM_FUNC __attribute__((section(".time_critical.flash_rp2350"), noinline))
#define RUN_XIP_SETUP(copy) ((fw_rom_void_fn)((uintptr_t)(copy) | 1u))() /* Thumb */

static uint32_t irq_save_disable(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static void irq_restore(uint32_t primask) { __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory"); }

/* the 16-bit pointer at ROM address 0x16, read with ldrh (a C read of such a low address is
 * what GCC's -Warray-bounds flags, and the SDK silences) */
static rom_table_lookup_fn rom_table_lookup(void)
{
    uint32_t entry;
    __asm__ volatile("ldrh %0, [%1]" : "=r"(entry) : "r"(BOOTROM_TABLE_LOOKUP_OFFSET) : "memory");
    return (rom_table_lookup_fn)(uintptr_t)entry;
}

/* the XIP setup copy was written as data: let the core fetch it as code */
static void code_barrier(void) { __asm__ volatile("dsb\n\tisb" ::: "memory"); }
#endif

/* The whole XIP-off window: page is NULL for an erase of n bytes, else the n bytes to program
 * (in SRAM). offset is from the start of flash. Runs from SRAM; see the top of the file. */
RAM_FUNC static void flash_op_xip_off(const fw_flash_rp2350 *d, uint32_t offset, const uint8_t *page, uint32_t n)
{
    uint32_t pads[QSPI_PADS];
    for (int i = 0; i < QSPI_PADS; i++) pads[i] = QSPI_PADS_IO[i];
    d->connect_internal_flash();
    d->flash_exit_xip();
    if (page)
        d->flash_range_program(offset, page, n);
    else
        d->flash_range_erase(offset, n, FLASH_BLOCK_SIZE, (uint8_t)FLASH_BLOCK_ERASE_CMD);
    d->flash_flush_cache();
    RUN_XIP_SETUP(d->xip_setup);
    for (int i = 0; i < QSPI_PADS; i++) QSPI_PADS_IO[i] = pads[i];
}

static const uint8_t *mapped(const fw_flash_rp2350 *d, uint32_t region_offset)
{
    return (const uint8_t *)(XIP_BASE + d->region_offset + region_offset);
}

static int rp2350_erase(void *ctx, uint32_t offset)
{
    fw_flash_rp2350 *d = (fw_flash_rp2350 *)ctx;
    if (offset % FW_RP2350_SECTOR != 0 || offset >= d->region_size || d->region_size - offset < FW_RP2350_SECTOR)
        return -1;
    uint32_t primask = irq_save_disable();
    flash_op_xip_off(d, d->region_offset + offset, NULL, FW_RP2350_SECTOR);
    irq_restore(primask);
    const uint8_t *p = mapped(d, offset);
    for (uint32_t i = 0; i < FW_RP2350_SECTOR; i++)
        if (p[i] != 0xFFu) return -2; /* not erased: write-protected, or a failing chip */
    d->n_erases++;
    return 0;
}

static int rp2350_program(void *ctx, uint32_t offset, const uint8_t *data, uint32_t n)
{
    fw_flash_rp2350 *d = (fw_flash_rp2350 *)ctx;
    if (offset % FW_RP2350_PAGE != 0 || n % FW_RP2350_PAGE != 0 || offset > d->region_size ||
        n > d->region_size - offset)
        return -1;
    int mismatch = 0;
    for (uint32_t done = 0; done < n; done += FW_RP2350_PAGE) {
        /* copied while XIP is on: data may be anywhere, even in flash */
        uint32_t page[FW_RP2350_PAGE / 4];
        memcpy(page, data + done, FW_RP2350_PAGE);
        uint32_t primask = irq_save_disable();
        flash_op_xip_off(d, d->region_offset + offset + done, (const uint8_t *)page, FW_RP2350_PAGE);
        irq_restore(primask);
        /* NOR programming only clears bits: a byte that needed a 1 where flash had 0 differs */
        if (memcmp(mapped(d, offset + done), page, FW_RP2350_PAGE) != 0) mismatch = 1;
    }
    if (mismatch) return -2;
    d->n_programs++;
    return 0;
}

int fw_flash_rp2350_init(elsh_flash *flash, fw_flash_rp2350 *drv, const uint8_t *region, uint32_t size)
{
    if (!flash || !drv || !region) return ELSH_SLOTS_ERR_NULL;
    uintptr_t at = (uintptr_t)region;
    if (at < XIP_BASE || at - XIP_BASE >= FW_RP2350_FLASH_BYTES || size > FW_RP2350_FLASH_BYTES - (at - XIP_BASE) ||
        (at - XIP_BASE) % FW_RP2350_SECTOR != 0 || size % FW_RP2350_SECTOR != 0)
        return ELSH_SLOTS_ERR_GEOMETRY;
    memset(drv, 0, sizeof *drv);
    rom_table_lookup_fn lookup = rom_table_lookup();
    if (!lookup) return ELSH_SLOTS_ERR_FLASH;
    drv->connect_internal_flash = (fw_rom_void_fn)(uintptr_t)lookup(ROM_FUNC_CONNECT_INTERNAL_FLASH, RT_FLAG_FUNC_ARM_SEC);
    drv->flash_exit_xip = (fw_rom_void_fn)(uintptr_t)lookup(ROM_FUNC_FLASH_EXIT_XIP, RT_FLAG_FUNC_ARM_SEC);
    drv->flash_range_erase = (fw_rom_erase_fn)(uintptr_t)lookup(ROM_FUNC_FLASH_RANGE_ERASE, RT_FLAG_FUNC_ARM_SEC);
    drv->flash_range_program = (fw_rom_program_fn)(uintptr_t)lookup(ROM_FUNC_FLASH_RANGE_PROGRAM, RT_FLAG_FUNC_ARM_SEC);
    drv->flash_flush_cache = (fw_rom_void_fn)(uintptr_t)lookup(ROM_FUNC_FLASH_FLUSH_CACHE, RT_FLAG_FUNC_ARM_SEC);
    if (!drv->connect_internal_flash || !drv->flash_exit_xip || !drv->flash_range_erase || !drv->flash_range_program ||
        !drv->flash_flush_cache)
        return ELSH_SLOTS_ERR_FLASH;
    for (uint32_t i = 0; i < FW_RP2350_XIP_SETUP_WORDS; i++) drv->xip_setup[i] = BOOTRAM[i];
    code_barrier();
    drv->region_offset = (uint32_t)(at - XIP_BASE);
    drv->region_size = size;
    flash->size = size;
    flash->sector_size = FW_RP2350_SECTOR;
    flash->page_size = FW_RP2350_PAGE;
    flash->mapped = region;
    flash->ctx = drv;
    flash->erase_sector = rp2350_erase;
    flash->program = rp2350_program;
    flash->read = NULL;
    return elsh_slots_check(flash);
}
