/* slots.c - A/B flash slots: the newest valid slot is the model; a save writes the other slot,
 * its header page last (edge_lsh_slots.h, FORMAT.md "Flash slots"). No malloc, no float: the
 * only buffers are two pages on the stack. */
#include <string.h>

#include "edge_lsh.h"
#include "edge_lsh_slots.h"

static const uint8_t slot_magic[8] = {'E', 'L', 'S', 'H', 'S', 'L', 'O', 'T'};

#define PAGE ELSH_SLOT_MAX_PAGE

const char *elsh_slots_status_str(int status)
{
    switch (status) {
    case ELSH_SLOTS_OK: return "ok";
    case ELSH_SLOTS_ERR_NULL: return "a required pointer is NULL";
    case ELSH_SLOTS_ERR_GEOMETRY: return "flash sizes unusable for slots";
    case ELSH_SLOTS_ERR_TOO_BIG: return "payload larger than a slot";
    case ELSH_SLOTS_ERR_FLASH: return "flash erase, program or read failed";
    case ELSH_SLOTS_ERR_VERIFY: return "flash read back differs from what was written";
    case ELSH_SLOTS_ERR_SOURCE: return "the payload source failed";
    case ELSH_SLOTS_NO_MODEL: return "no valid slot";
    default: return "unknown status";
    }
}

int elsh_slots_check(const elsh_flash *flash)
{
    if (!flash || !flash->erase_sector || !flash->program || (!flash->read && !flash->mapped))
        return ELSH_SLOTS_ERR_NULL;
    uint32_t page = flash->page_size, sector = flash->sector_size;
    if (page == 0 || PAGE % page != 0) return ELSH_SLOTS_ERR_GEOMETRY;
    if (sector == 0 || sector % page != 0 || sector % ELSH_SLOT_PAYLOAD_OFFSET != 0)
        return ELSH_SLOTS_ERR_GEOMETRY;
    if (flash->size / sector < 2) return ELSH_SLOTS_ERR_GEOMETRY;
    return ELSH_SLOTS_OK;
}

uint32_t elsh_slots_slot_size(const elsh_flash *flash)
{
    if (elsh_slots_check(flash) != ELSH_SLOTS_OK) return 0;
    return flash->size / 2 / flash->sector_size * flash->sector_size;
}

uint32_t elsh_slots_capacity(const elsh_flash *flash)
{
    uint32_t slot_size = elsh_slots_slot_size(flash);
    return slot_size ? slot_size - ELSH_SLOT_PAYLOAD_OFFSET : 0;
}

int elsh_slots_is_newer(uint32_t a, uint32_t b)
{
    uint32_t ahead = a - b; /* unsigned: wraps, never overflows */
    return ahead != 0 && ahead < 0x80000000u;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

void elsh_slots_header_encode(uint8_t header[ELSH_SLOT_HEADER_SIZE], uint32_t sequence,
                              uint32_t length, uint32_t payload_crc)
{
    memcpy(header, slot_magic, sizeof slot_magic);
    header[8] = ELSH_SLOT_FORMAT_VERSION;
    header[9] = 0;
    header[10] = ELSH_SLOT_HEADER_SIZE;
    header[11] = 0;
    put_u32(header + 12, sequence);
    put_u32(header + 16, length);
    put_u32(header + 20, payload_crc);
    put_u32(header + 24, 0); /* reserved */
    put_u32(header + 28, elsh_crc32(0, header, 28));
}

int elsh_slots_header_decode(const uint8_t header[ELSH_SLOT_HEADER_SIZE], elsh_slot_info *info)
{
    if (!header || !info) return ELSH_SLOTS_ERR_NULL;
    info->slot = -1;
    info->payload_offset = 0;
    if (memcmp(header, slot_magic, sizeof slot_magic) != 0) return ELSH_SLOTS_NO_MODEL;
    if (header[8] != ELSH_SLOT_FORMAT_VERSION || header[9] != 0) return ELSH_SLOTS_NO_MODEL;
    if (header[10] != ELSH_SLOT_HEADER_SIZE || header[11] != 0) return ELSH_SLOTS_NO_MODEL;
    if (get_u32(header + 24) != 0) return ELSH_SLOTS_NO_MODEL;
    if (get_u32(header + 28) != elsh_crc32(0, header, 28)) return ELSH_SLOTS_NO_MODEL;
    info->sequence = get_u32(header + 12);
    info->length = get_u32(header + 16);
    info->payload_crc = get_u32(header + 20);
    return ELSH_SLOTS_OK;
}

/* n bytes of the region at offset into dst, through the mapping or the driver */
static int flash_read(const elsh_flash *flash, uint32_t offset, uint8_t *dst, uint32_t n)
{
    if (flash->mapped) {
        memcpy(dst, flash->mapped + offset, n);
        return ELSH_SLOTS_OK;
    }
    return flash->read(flash->ctx, offset, dst, n) == 0 ? ELSH_SLOTS_OK : ELSH_SLOTS_ERR_FLASH;
}

/* CRC-32 of n region bytes at offset */
static int flash_crc(const elsh_flash *flash, uint32_t offset, uint32_t n, uint32_t *crc)
{
    if (flash->mapped) {
        *crc = elsh_crc32(0, flash->mapped + offset, n);
        return ELSH_SLOTS_OK;
    }
    uint8_t buf[PAGE];
    uint32_t c = 0;
    for (uint32_t done = 0; done < n;) {
        uint32_t chunk = n - done < PAGE ? n - done : PAGE;
        int st = flash_read(flash, offset + done, buf, chunk);
        if (st != ELSH_SLOTS_OK) return st;
        c = elsh_crc32(c, buf, chunk);
        done += chunk;
    }
    *crc = c;
    return ELSH_SLOTS_OK;
}

int elsh_slots_read_slot(const elsh_flash *flash, int32_t slot, elsh_slot_info *info)
{
    if (!info) return ELSH_SLOTS_ERR_NULL;
    info->slot = -1;
    int st = elsh_slots_check(flash);
    if (st != ELSH_SLOTS_OK) return st;
    if (slot != 0 && slot != 1) return ELSH_SLOTS_ERR_GEOMETRY;
    uint32_t slot_size = elsh_slots_slot_size(flash);
    uint32_t start = (uint32_t)slot * slot_size;
    uint8_t header[ELSH_SLOT_HEADER_SIZE];
    st = flash_read(flash, start, header, ELSH_SLOT_HEADER_SIZE);
    if (st != ELSH_SLOTS_OK) return st;
    elsh_slot_info found;
    st = elsh_slots_header_decode(header, &found);
    if (st != ELSH_SLOTS_OK) return st;
    if (found.length > slot_size - ELSH_SLOT_PAYLOAD_OFFSET) return ELSH_SLOTS_NO_MODEL;
    uint32_t crc;
    st = flash_crc(flash, start + ELSH_SLOT_PAYLOAD_OFFSET, found.length, &crc);
    if (st != ELSH_SLOTS_OK) return st;
    if (crc != found.payload_crc) return ELSH_SLOTS_NO_MODEL;
    found.slot = slot;
    found.payload_offset = start + ELSH_SLOT_PAYLOAD_OFFSET;
    *info = found;
    return ELSH_SLOTS_OK;
}

int elsh_slots_pick(const elsh_flash *flash, elsh_slot_info *info)
{
    if (!info) return ELSH_SLOTS_ERR_NULL;
    elsh_slot_info a, b;
    int st_a = elsh_slots_read_slot(flash, 0, &a);
    if (st_a != ELSH_SLOTS_OK && st_a != ELSH_SLOTS_NO_MODEL) return st_a;
    int st_b = elsh_slots_read_slot(flash, 1, &b);
    if (st_b != ELSH_SLOTS_OK && st_b != ELSH_SLOTS_NO_MODEL) return st_b;
    int b_newer = st_b == ELSH_SLOTS_OK &&
                  (st_a != ELSH_SLOTS_OK || elsh_slots_is_newer(b.sequence, a.sequence));
    if (st_a == ELSH_SLOTS_OK && !b_newer)
        *info = a;
    else if (st_b == ELSH_SLOTS_OK)
        *info = b;
    else {
        info->slot = -1;
        return ELSH_SLOTS_NO_MODEL;
    }
    return ELSH_SLOTS_OK;
}

const uint8_t *elsh_slots_payload(const elsh_flash *flash, const elsh_slot_info *info)
{
    if (!flash || !flash->mapped || !info || (info->slot != 0 && info->slot != 1)) return NULL;
    return flash->mapped + info->payload_offset;
}

int elsh_slots_read_payload(const elsh_flash *flash, const elsh_slot_info *info,
                            uint32_t offset, uint8_t *dst, uint32_t n)
{
    if (!flash || !info || (!dst && n)) return ELSH_SLOTS_ERR_NULL;
    if (info->slot != 0 && info->slot != 1) return ELSH_SLOTS_NO_MODEL;
    if (offset > info->length || n > info->length - offset) return ELSH_SLOTS_ERR_TOO_BIG;
    if (!flash->mapped && !flash->read) return ELSH_SLOTS_ERR_NULL;
    return flash_read(flash, info->payload_offset + offset, dst, n);
}

static int copy_source(void *ctx, uint32_t offset, uint8_t *dst, uint32_t n)
{
    memcpy(dst, (const uint8_t *)ctx + offset, n);
    return 0;
}

int elsh_slots_save(const elsh_flash *flash, const void *payload, uint32_t n,
                    elsh_slot_info *saved)
{
    if (!payload && n) return ELSH_SLOTS_ERR_NULL;
    return elsh_slots_save_from(flash, copy_source, (void *)(uintptr_t)payload, n, saved);
}

/* after a failed verify: clear the header's magic (programming only clears bits, so the rest of
 * the page, programmed with what it holds, stays as it is) */
static void void_header(const elsh_flash *flash, uint32_t start)
{
    uint8_t page[PAGE];
    if (flash_read(flash, start, page, PAGE) != ELSH_SLOTS_OK) return;
    memset(page, 0, sizeof slot_magic);
    (void)flash->program(flash->ctx, start, page, PAGE);
}

/* the new slot equals what was meant: valid, with this header, and every payload byte */
static int verify(const elsh_flash *flash, int32_t slot, const elsh_slot_info *want,
                  elsh_slots_source source, void *source_ctx)
{
    elsh_slot_info got;
    int st = elsh_slots_read_slot(flash, slot, &got);
    if (st == ELSH_SLOTS_NO_MODEL) return ELSH_SLOTS_ERR_VERIFY;
    if (st != ELSH_SLOTS_OK) return st;
    if (got.sequence != want->sequence || got.length != want->length ||
        got.payload_crc != want->payload_crc)
        return ELSH_SLOTS_ERR_VERIFY;
    uint8_t expect[PAGE], actual[PAGE];
    for (uint32_t done = 0; done < want->length;) {
        uint32_t chunk = want->length - done < PAGE ? want->length - done : PAGE;
        if (source(source_ctx, done, expect, chunk) != 0) return ELSH_SLOTS_ERR_SOURCE;
        st = flash_read(flash, got.payload_offset + done, actual, chunk);
        if (st != ELSH_SLOTS_OK) return st;
        if (memcmp(expect, actual, chunk) != 0) return ELSH_SLOTS_ERR_VERIFY;
        done += chunk;
    }
    return ELSH_SLOTS_OK;
}

int elsh_slots_save_from(const elsh_flash *flash, elsh_slots_source source, void *source_ctx,
                         uint32_t n, elsh_slot_info *saved)
{
    int st = elsh_slots_check(flash);
    if (st != ELSH_SLOTS_OK) return st;
    if (!source) return ELSH_SLOTS_ERR_NULL;
    uint32_t slot_size = elsh_slots_slot_size(flash);
    if (n > slot_size - ELSH_SLOT_PAYLOAD_OFFSET) return ELSH_SLOTS_ERR_TOO_BIG;

    elsh_slot_info current;
    st = elsh_slots_pick(flash, &current);
    if (st != ELSH_SLOTS_OK && st != ELSH_SLOTS_NO_MODEL) return st;
    int32_t slot = st == ELSH_SLOTS_OK ? 1 - current.slot : 0;
    uint32_t sequence = st == ELSH_SLOTS_OK ? current.sequence + 1u : 1u;
    uint32_t start = (uint32_t)slot * slot_size;

    /* 0. the payload's CRC before anything changes: a source that reads the slot about to be
     * erased (a model opened in place from the older slot) gives other bytes after the erase,
     * and the header is then never written */
    uint8_t page[PAGE];
    uint32_t crc_before = 0;
    for (uint32_t done = 0; done < n;) {
        uint32_t chunk = n - done < PAGE ? n - done : PAGE;
        if (source(source_ctx, done, page, chunk) != 0) return ELSH_SLOTS_ERR_SOURCE;
        crc_before = elsh_crc32(crc_before, page, chunk);
        done += chunk;
    }

    /* 1. erase the sectors the new slot uses, the header's first */
    uint32_t used = ELSH_SLOT_PAYLOAD_OFFSET + n;
    for (uint32_t off = 0; off < used; off += flash->sector_size)
        if (flash->erase_sector(flash->ctx, start + off) != 0) return ELSH_SLOTS_ERR_FLASH;

    /* 2. the payload, a page buffer at a time (the last one padded with 0xFF) */
    uint32_t crc = 0;
    for (uint32_t done = 0; done < n;) {
        uint32_t chunk = n - done < PAGE ? n - done : PAGE;
        if (source(source_ctx, done, page, chunk) != 0) return ELSH_SLOTS_ERR_SOURCE;
        crc = elsh_crc32(crc, page, chunk);
        uint32_t padded = (chunk + flash->page_size - 1) / flash->page_size * flash->page_size;
        memset(page + chunk, 0xFF, padded - chunk);
        if (flash->program(flash->ctx, start + ELSH_SLOT_PAYLOAD_OFFSET + done, page, padded) != 0)
            return ELSH_SLOTS_ERR_FLASH;
        done += chunk;
    }

    if (crc != crc_before) return ELSH_SLOTS_ERR_SOURCE;

    /* 3. the commit record: the header page, last */
    memset(page, 0xFF, PAGE);
    elsh_slots_header_encode(page, sequence, n, crc);
    if (flash->program(flash->ctx, start, page, PAGE) != 0) return ELSH_SLOTS_ERR_FLASH;

    /* 4. read back */
    elsh_slot_info want = {slot, sequence, n, crc, start + ELSH_SLOT_PAYLOAD_OFFSET};
    st = verify(flash, slot, &want, source, source_ctx);
    if (st != ELSH_SLOTS_OK) {
        void_header(flash, start);
        return st;
    }
    if (saved) *saved = want;
    return ELSH_SLOTS_OK;
}
