/* flash_ram.c - a flash driver over RAM with NOR flash's rules (edge_lsh_slots.h): erase sets a
 * sector to 0xFF, program ANDs (only clears bits). For the firmware under QEMU, which has no
 * flash to program, and for the tests and the Python binding. */
#include <string.h>

#include "edge_lsh_slots.h"

static int ram_erase(void *ctx, uint32_t offset)
{
    elsh_flash_ram *ram = (elsh_flash_ram *)ctx;
    if (ram->sector_size == 0 || offset % ram->sector_size != 0 || offset >= ram->size ||
        ram->size - offset < ram->sector_size)
        return -1;
    memset(ram->mem + offset, 0xFF, ram->sector_size);
    ram->n_erases++;
    return 0;
}

static int ram_program(void *ctx, uint32_t offset, const uint8_t *data, uint32_t n)
{
    elsh_flash_ram *ram = (elsh_flash_ram *)ctx;
    if (ram->page_size == 0 || offset % ram->page_size != 0 || n % ram->page_size != 0 ||
        offset > ram->size || n > ram->size - offset)
        return -1;
    int needed_set = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t old = ram->mem[offset + i];
        if ((uint8_t)(~old & data[i]) != 0) needed_set = 1; /* a 0 bit asked to become 1 */
        ram->mem[offset + i] = (uint8_t)(old & data[i]);
    }
    if (needed_set) return -2;
    ram->n_programs++;
    return 0;
}

static int ram_read(void *ctx, uint32_t offset, uint8_t *dst, uint32_t n)
{
    elsh_flash_ram *ram = (elsh_flash_ram *)ctx;
    if (offset > ram->size || n > ram->size - offset) return -1;
    memcpy(dst, ram->mem + offset, n);
    return 0;
}

int elsh_flash_ram_init(elsh_flash *flash, elsh_flash_ram *ram, uint8_t *mem, uint32_t size,
                        uint32_t sector_size, uint32_t page_size)
{
    if (!flash || !ram || !mem) return ELSH_SLOTS_ERR_NULL;
    ram->mem = mem;
    ram->size = size;
    ram->sector_size = sector_size;
    ram->page_size = page_size;
    ram->n_erases = 0;
    ram->n_programs = 0;
    flash->size = size;
    flash->sector_size = sector_size;
    flash->page_size = page_size;
    flash->mapped = mem;
    flash->ctx = ram;
    flash->erase_sector = ram_erase;
    flash->program = ram_program;
    flash->read = ram_read;
    return elsh_slots_check(flash);
}
