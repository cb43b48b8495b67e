/* image_def_rp2350.c - the block the RP2350 bootrom looks for before it boots a flash image.
 *
 * The bootrom scans the first 4 KB of flash for a "block loop" of PICOBIN blocks (RP2350
 * datasheet, bootrom chapter: blocks, block loops and IMAGE_DEF; the Pico SDK's
 * boot/picobin.h names the values) and boots the image only if a block holds an IMAGE_DEF: an IMAGE_TYPE item saying
 * what the image is. Layout of a block (32-bit little-endian words):
 *
 *   0xffffded3                  start marker (PICOBIN_BLOCK_MARKER_START)
 *   items                       each: a type byte; for a "1BS" type, one byte of size in words
 *                               (the item included); then the item's data
 *   0xff, size (16 bits), 0     the LAST item: its size field is the words of the items above
 *   link                        byte offset to the next block of the loop; 0: this block is the
 *                               whole loop
 *   0xab123579                  end marker (PICOBIN_BLOCK_MARKER_END)
 *
 * This block has one item, IMAGE_TYPE (0x42, 1 word): flags 0x1021 = image type EXE (0x1, bits
 * 0-3) | security S (0x2, bits 4-5: a Secure Arm image) | cpu ARM (0, bits 8-10) | chip RP2350
 * (1, bits 12-14). No VECTOR_TABLE or ENTRY_POINT item: the bootrom then takes the vector table
 * at the start of the image (sections.ld puts fw_vectors first, this block right after it). No
 * hash or signature: the board boots it unless its OTP enforces secure boot (a new Pico 2 does
 * not). tests/test_pico2_image.py decodes the block from the flash image. */
#include <stdint.h>

#define PICOBIN_BLOCK_MARKER_START 0xffffded3u
#define PICOBIN_BLOCK_MARKER_END 0xab123579u
#define PICOBIN_ITEM_1BS_IMAGE_TYPE 0x42u
#define PICOBIN_ITEM_2BS_LAST 0xffu
#define IMAGE_TYPE_EXE 0x1u
#define IMAGE_TYPE_SECURITY_S (0x2u << 4)
#define IMAGE_TYPE_CPU_ARM (0x0u << 8)
#define IMAGE_TYPE_CHIP_RP2350 (0x1u << 12)
#define IMAGE_TYPE_FLAGS (IMAGE_TYPE_EXE | IMAGE_TYPE_SECURITY_S | IMAGE_TYPE_CPU_ARM | IMAGE_TYPE_CHIP_RP2350)

/* item header: type in byte 0, size in words in byte 1, 16 bits of data in bytes 2-3 */
#define ITEM_1BS(type, words, data) ((uint32_t)(type) | ((uint32_t)(words) << 8) | ((uint32_t)(data) << 16))
/* LAST: type 0xff in byte 0, the items' total size in words in bytes 1-2, byte 3 zero */
#define ITEM_LAST(words) (PICOBIN_ITEM_2BS_LAST | ((uint32_t)(words) << 8))

__attribute__((section(".image_def"), used, aligned(4))) const uint32_t rp2350_image_def[5] = {
    PICOBIN_BLOCK_MARKER_START,
    ITEM_1BS(PICOBIN_ITEM_1BS_IMAGE_TYPE, 1, IMAGE_TYPE_FLAGS),
    ITEM_LAST(1),
    0, /* link: a loop of this one block */
    PICOBIN_BLOCK_MARKER_END,
};
