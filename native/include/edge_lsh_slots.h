/*
 * edge_lsh_slots.h - power-cut-safe saving of a model to flash: two slots (A and B), the newer
 * valid one wins at boot. Generic over "a blob of bytes" (an .elsh file); C99, no malloc, no
 * float. The layout is described in export/FORMAT.md, "Flash slots".
 *
 * The flash region the slots use is split in two halves of whole erase sectors: slot A at
 * region offset 0, slot B at slot_size. Each slot is a 256-byte header page (a 32-byte header,
 * then 0xFF) followed by the payload. The header holds a magic, the format version, a sequence
 * number, the payload's length and CRC-32, and the CRC-32 of the header itself.
 *
 * elsh_slots_save() writes the slot that elsh_slots_pick() did NOT pick: it erases the sectors
 * the new slot needs, programs the payload, then programs the header page LAST (the commit
 * record), and reads everything back. A power cut at any byte leaves either the old slot
 * untouched and the new one without a valid header (so the old one is picked), or the new one
 * complete. elsh_slots_pick() returns the valid slot with the newest sequence number, compared
 * modulo 2^32 (wrap-safe), and ELSH_SLOTS_NO_MODEL when neither slot is valid.
 *
 * The flash driver is a struct of function pointers modelled on RP2350 (Pico 2) QSPI flash:
 * 4096-byte erase sectors, 256-byte program pages, erased bytes read 0xFF, and programming can
 * only clear bits. elsh_flash_ram_init() makes a driver over RAM with those rules (the
 * firmware under QEMU, the tests, the Python binding).
 */
#ifndef EDGE_LSH_SLOTS_H
#define EDGE_LSH_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ELSH_SLOT_FORMAT_VERSION 1
#define ELSH_SLOT_HEADER_SIZE 32    /* bytes of header at the start of a slot */
#define ELSH_SLOT_PAYLOAD_OFFSET 256 /* the payload starts this far into its slot */
#define ELSH_SLOT_MAX_PAGE 256      /* a driver's page_size must divide this */

typedef enum {
    ELSH_SLOTS_OK = 0,
    ELSH_SLOTS_ERR_NULL = -1,     /* a required pointer was NULL */
    ELSH_SLOTS_ERR_GEOMETRY = -2, /* the driver's sizes break the rules (see elsh_flash) */
    ELSH_SLOTS_ERR_TOO_BIG = -3,  /* the payload does not fit a slot (nothing was written) */
    ELSH_SLOTS_ERR_FLASH = -4,    /* the driver's erase, program or read failed */
    ELSH_SLOTS_ERR_VERIFY = -5,   /* read back differs from what was written; new slot voided */
    ELSH_SLOTS_ERR_SOURCE = -6,   /* the payload source callback failed */
    ELSH_SLOTS_NO_MODEL = -7      /* no valid slot (first boot, or both slots damaged) */
} elsh_slots_status;

/* A flash region, as the slot code sees it: offsets 0..size-1. Rules (else
 * ELSH_SLOTS_ERR_GEOMETRY): page_size >= 1 divides ELSH_SLOT_MAX_PAGE; sector_size is a
 * multiple of both page_size and ELSH_SLOT_PAYLOAD_OFFSET; size holds at least two sectors.
 * The callbacks return 0 on success, anything else on failure. */
typedef struct elsh_flash {
    uint32_t size;        /* bytes in the region */
    uint32_t sector_size; /* erase unit (RP2350: 4096) */
    uint32_t page_size;   /* program unit (RP2350: 256) */
    /* the region memory-mapped (XIP on a Pico), or NULL; when set, reads use it directly */
    const uint8_t *mapped;
    void *ctx; /* passed to the callbacks */
    /* set the sector at offset (a multiple of sector_size) to 0xFF */
    int (*erase_sector)(void *ctx, uint32_t offset);
    /* program n bytes at offset (both multiples of page_size): each byte becomes old & new */
    int (*program)(void *ctx, uint32_t offset, const uint8_t *data, uint32_t n);
    /* copy n bytes at offset into dst (any offset and length); may be NULL when mapped is set */
    int (*read)(void *ctx, uint32_t offset, uint8_t *dst, uint32_t n);
} elsh_flash;

/* One valid slot: which, its sequence number and its payload. */
typedef struct elsh_slot_info {
    int32_t slot;            /* 0 (A) or 1 (B); -1 when there is none */
    uint32_t sequence;       /* the save's number, +1 per save, wrapping at 2^32 */
    uint32_t length;         /* payload bytes */
    uint32_t payload_crc;    /* CRC-32 of the payload */
    uint32_t payload_offset; /* region offset of the payload's first byte */
} elsh_slot_info;

/* The payload for elsh_slots_save_from: copy the n payload bytes at offset into dst; return 0
 * (anything else aborts the save). It is called three times per byte (a CRC pass before the
 * erase, program, verify) and must give the same bytes each time; if the bytes change (e.g.
 * the source reads the slot being written) the save fails with ELSH_SLOTS_ERR_SOURCE before
 * the header is written.
 * NEVER let the source read the slot the save writes, the one elsh_slots_pick did not choose.
 * Trap: a model opened in place from slot X, saved to Y, then saved AGAIN: the second save
 * writes X, under the model's own bytes. Re-open the model from the saved slot
 * (elsh_slots_payload) after each save, before the next one. */
typedef int (*elsh_slots_source)(void *ctx, uint32_t offset, uint8_t *dst, uint32_t n);

/* A short English name of a status (e.g. "no valid slot"). */
const char *elsh_slots_status_str(int status);

/* ELSH_SLOTS_OK when the driver's sizes follow the rules of elsh_flash. */
int elsh_slots_check(const elsh_flash *flash);

/* Bytes per slot: half the region, rounded down to whole sectors (0 when invalid). */
uint32_t elsh_slots_slot_size(const elsh_flash *flash);

/* The largest payload a slot holds: slot size - ELSH_SLOT_PAYLOAD_OFFSET (0 when invalid). */
uint32_t elsh_slots_capacity(const elsh_flash *flash);

/* Is sequence a newer than b? True when a - b (mod 2^32) is in 1..2^31-1: so 0 is newer than
 * 0xFFFFFFFF. Neither is newer when they are equal or exactly 2^31 apart. */
int elsh_slots_is_newer(uint32_t a, uint32_t b);

/* The 32 header bytes of a slot (FORMAT.md "Flash slots"), little-endian. */
void elsh_slots_header_encode(uint8_t header[ELSH_SLOT_HEADER_SIZE], uint32_t sequence,
                              uint32_t length, uint32_t payload_crc);

/* Decode 32 header bytes: ELSH_SLOTS_OK and info's sequence, length and payload_crc filled
 * when magic, version, header size, reserved field and header CRC are right; else
 * ELSH_SLOTS_NO_MODEL. (Does not check the payload; slot and payload_offset are set to -1, 0.) */
int elsh_slots_header_decode(const uint8_t header[ELSH_SLOT_HEADER_SIZE], elsh_slot_info *info);

/* Check one slot (0 or 1): header, length within the slot, payload CRC. ELSH_SLOTS_OK and
 * *info filled when valid; ELSH_SLOTS_NO_MODEL when not; ELSH_SLOTS_ERR_* for bad arguments
 * or a failing read. */
int elsh_slots_read_slot(const elsh_flash *flash, int32_t slot, elsh_slot_info *info);

/* The newest valid slot: ELSH_SLOTS_OK and *info, or ELSH_SLOTS_NO_MODEL (info->slot = -1).
 * With equal sequence numbers (or 2^31 apart) slot A wins. */
int elsh_slots_pick(const elsh_flash *flash, elsh_slot_info *info);

/* The picked slot's payload in the memory-mapped region, or NULL when the driver has no
 * mapping or info is not a slot. */
const uint8_t *elsh_slots_payload(const elsh_flash *flash, const elsh_slot_info *info);

/* Copy n payload bytes starting at payload byte offset into dst (offset + n <= length). */
int elsh_slots_read_payload(const elsh_flash *flash, const elsh_slot_info *info,
                            uint32_t offset, uint8_t *dst, uint32_t n);

/* Save n bytes as the newest model: into the slot pick did not choose (A when none is valid),
 * with sequence picked + 1 (1 when none). Erase, program the payload, program the header page
 * last, read back and compare. On ELSH_SLOTS_OK, *saved (may be NULL) describes the new slot.
 * On any error the previously picked slot is untouched; after ELSH_SLOTS_ERR_VERIFY the new
 * slot's header magic is programmed to zero so it can never be picked. The payload must not
 * lie in the slot being written (see elsh_slots_source). */
int elsh_slots_save(const elsh_flash *flash, const void *payload, uint32_t n,
                    elsh_slot_info *saved);

/* elsh_slots_save with the payload produced in pieces by a callback (for a payload larger than
 * RAM, e.g. frozen layers read from the current slot plus trained ones from RAM). */
int elsh_slots_save_from(const elsh_flash *flash, elsh_slots_source source, void *source_ctx,
                         uint32_t n, elsh_slot_info *saved);

/* A flash driver over RAM with the rules of NOR flash: erase sets a sector to 0xFF, program
 * ANDs the data into the bytes (it can only clear bits), reads see mem directly (mapped).
 * Offsets and lengths out of line or out of range fail (-1) without a change; a program that
 * would have to set a bit (flash not erased) does the AND and fails with -2, so a writer that
 * forgot to erase is caught. Counts the erases and programs. */
typedef struct elsh_flash_ram {
    uint8_t *mem;
    uint32_t size, sector_size, page_size;
    uint32_t n_erases, n_programs; /* calls that succeeded */
} elsh_flash_ram;

/* Fill *flash and *ram for mem (size bytes, left as it is: erase or fill it first). Returns
 * elsh_slots_check(flash). */
int elsh_flash_ram_init(elsh_flash *flash, elsh_flash_ram *ram, uint8_t *mem, uint32_t size,
                        uint32_t sector_size, uint32_t page_size);

#ifdef __cplusplus
}
#endif
#endif /* EDGE_LSH_SLOTS_H */
