"""A firmware ELF as a UF2 file, the format an RP2350 in BOOTSEL mode takes by drag and drop
(the Pico 2 appears as a USB drive; copy the .uf2 onto it).

UF2 (github.com/microsoft/uf2): 512-byte blocks, each self-contained, little-endian words:

    0   0x0A324655          first magic ("UF2\\n")
    4   0x9E5D5157          second magic
    8   flags               0x00002000: the family id field below is present
    12  target address      where the payload goes in flash (absolute)
    16  payload size        256 (the RP2350 bootrom writes 256-byte flash pages)
    20  block number        0, 1, ... in file order
    24  number of blocks    in the file
    28  family id           0xe48bff59 RP2350-ARM-S: a Secure Arm image for an RP2350
    32  data                the payload, then zeros up to byte 508
    508 0x0AB16F30          final magic

The payload is the ELF's loadable bytes at their load (physical) addresses: code and constants,
and .data's initial values, which sections.ld places in flash. They must all lie in the flash
region; the image is cut into 256-byte pages from the flash origin, contiguous, the last page
padded with zeros.

Standalone (no import of edge_lsh), like targets.py, so the firmware Makefile can run it:

    python edge_lsh/deploy/uf2.py FW.elf FW.uf2 [--family 0xe48bff59] [--flash 0x10000000:4194304]
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

UF2_MAGIC_START0 = 0x0A324655
UF2_MAGIC_START1 = 0x9E5D5157
UF2_MAGIC_END = 0x0AB16F30
UF2_FLAG_FAMILY_ID_PRESENT = 0x00002000
UF2_BLOCK_BYTES = 512
UF2_PAYLOAD_BYTES = 256
RP2350_ARM_S_FAMILY_ID = 0xE48BFF59
PT_LOAD = 1


class UF2Error(ValueError):
    """The ELF cannot be written as a flash image (not ELF32 ARM, or bytes outside flash)."""


def elf_load_segments(elf: bytes) -> list[tuple[int, bytes]]:
    """(physical address, bytes) of every PT_LOAD segment with file bytes, by address."""
    if elf[:4] != b"\x7fELF" or len(elf) < 52:
        raise UF2Error("not an ELF file")
    if elf[4] != 1 or elf[5] != 1:
        raise UF2Error("not a 32-bit little-endian ELF")
    (machine,) = struct.unpack_from("<H", elf, 18)
    if machine != 40:  # EM_ARM
        raise UF2Error(f"not an Arm ELF (e_machine {machine})")
    (phoff,) = struct.unpack_from("<I", elf, 28)
    phentsize, phnum = struct.unpack_from("<HH", elf, 42)
    out = []
    for i in range(phnum):
        p_type, p_offset, _vaddr, p_paddr, p_filesz, _memsz = struct.unpack_from(
            "<6I", elf, phoff + i * phentsize
        )
        if p_type == PT_LOAD and p_filesz:
            if p_offset + p_filesz > len(elf):
                raise UF2Error("a segment lies past the end of the ELF file")
            out.append((p_paddr, elf[p_offset : p_offset + p_filesz]))
    return sorted(out)


def flash_image(segments: list[tuple[int, bytes]], origin: int, size: int) -> bytes:
    """The bytes from origin to the end of the last segment (gaps zero-filled)."""
    if not segments:
        raise UF2Error("the ELF has no loadable bytes")
    end = origin
    for addr, data in segments:
        if addr < origin or addr + len(data) > origin + size:
            raise UF2Error(
                f"{len(data)} bytes at 0x{addr:08x} lie outside flash "
                f"(0x{origin:08x}-0x{origin + size:08x})"
            )
        if addr < end:
            raise UF2Error(f"segments overlap at 0x{addr:08x}")
        end = addr + len(data)
    image = bytearray(end - origin)
    for addr, data in segments:
        image[addr - origin : addr - origin + len(data)] = data
    return bytes(image)


def uf2_from_image(image: bytes, base: int, family_id: int) -> bytes:
    """The UF2 file of `image` written at `base` (256-byte aligned)."""
    if base % UF2_PAYLOAD_BYTES:
        raise UF2Error(f"base 0x{base:08x} is not {UF2_PAYLOAD_BYTES}-byte aligned")
    n = (len(image) + UF2_PAYLOAD_BYTES - 1) // UF2_PAYLOAD_BYTES
    blocks = []
    for i in range(n):
        payload = image[i * UF2_PAYLOAD_BYTES : (i + 1) * UF2_PAYLOAD_BYTES]
        header = struct.pack(
            "<8I",
            UF2_MAGIC_START0,
            UF2_MAGIC_START1,
            UF2_FLAG_FAMILY_ID_PRESENT,
            base + i * UF2_PAYLOAD_BYTES,
            UF2_PAYLOAD_BYTES,
            i,
            n,
            family_id,
        )
        data = payload.ljust(476, b"\0")  # a short last page is padded with zeros
        blocks.append(header + data + struct.pack("<I", UF2_MAGIC_END))
    return b"".join(blocks)


def elf_to_uf2(elf: bytes, flash_origin: int, flash_bytes: int, family_id: int) -> bytes:
    image = flash_image(elf_load_segments(elf), flash_origin, flash_bytes)
    return uf2_from_image(image, flash_origin, family_id)


def _int(text: str) -> int:
    return int(text, 0)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description="Write a firmware ELF's flash bytes as a UF2 file.")
    p.add_argument("elf", type=Path)
    p.add_argument("uf2", type=Path)
    p.add_argument("--family", type=_int, default=RP2350_ARM_S_FAMILY_ID, help="UF2 family id")
    p.add_argument(
        "--flash",
        default="0x10000000:4194304",
        metavar="ORIGIN:BYTES",
        help="the flash region every loadable byte must lie in (default: a Pico 2's)",
    )
    args = p.parse_args(argv)
    origin, size = (_int(v) for v in args.flash.split(":"))
    try:
        data = elf_to_uf2(args.elf.read_bytes(), origin, size, args.family)
    except (OSError, UF2Error) as exc:
        print(f"uf2.py: {args.elf}: {exc}", file=sys.stderr)
        return 1
    args.uf2.write_bytes(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
