"""The A/B flash slots of native/src/slots.c in Python (export/FORMAT.md, "Flash slots"): build
a flash region image with a model in a slot (for the Pico firmware, or a QEMU flash region),
and find the model a device saved in a dump of that region.

The region is two halves of whole erase sectors, slot A at offset 0 and slot B at slot_size.
A slot is a 256-byte header page (32-byte header, then 0xFF) and the payload after it:

    0   8 bytes  magic b"ELSHSLOT"
    8   u16      format version (1)
    10  u16      header size (32)
    12  u32      sequence number (+1 per save, compared modulo 2**32)
    16  u32      payload length
    20  u32      CRC-32 of the payload (zlib's)
    24  u32      reserved, 0
    28  u32      CRC-32 of bytes 0..27

Little-endian. The valid slot with the newer sequence number is the model. `save` writes a
region exactly as elsh_slots_save does (the tests compare the bytes), so an image built here
and one a device wrote can be compared byte for byte.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

MAGIC = b"ELSHSLOT"
FORMAT_VERSION = 1
HEADER_SIZE = 32
PAYLOAD_OFFSET = 256  # the payload starts this far into its slot
MAX_PAGE = 256  # a page size must divide this
RP2350_SECTOR = 4096  # erase unit of the Pico 2's flash
RP2350_PAGE = 256  # program unit
ERASED = 0xFF

_HEADER = struct.Struct("<8sHHIIII")  # bytes 0..27; the header CRC follows


class SlotError(ValueError):
    """A payload or region that slots cannot hold (too big, bad sizes)."""


@dataclass(frozen=True)
class Geometry:
    """A flash region for two slots: its size, erase sector and program page (bytes)."""

    size: int
    sector_size: int = RP2350_SECTOR
    page_size: int = RP2350_PAGE

    def __post_init__(self) -> None:
        page, sector = self.page_size, self.sector_size
        if page < 1 or MAX_PAGE % page:
            raise SlotError(f"page size {page}: must divide {MAX_PAGE}")
        if sector < 1 or sector % page or sector % PAYLOAD_OFFSET:
            raise SlotError(
                f"sector size {sector}: must be a multiple of the page size and {PAYLOAD_OFFSET}"
            )
        if self.size // sector < 2:
            raise SlotError(f"region of {self.size} bytes: holds fewer than two sectors")

    @property
    def slot_size(self) -> int:
        """Bytes per slot: half the region in whole sectors."""
        return self.size // 2 // self.sector_size * self.sector_size

    @property
    def capacity(self) -> int:
        """The largest payload a slot holds."""
        return self.slot_size - PAYLOAD_OFFSET


@dataclass(frozen=True)
class Slot:
    """A valid slot: 0 (A) or 1 (B), its sequence number and its payload."""

    slot: int
    sequence: int
    payload: bytes

    def payload_offset_in(self, geometry: Geometry) -> int:
        """The region offset of the payload's first byte."""
        return self.slot * geometry.slot_size + PAYLOAD_OFFSET


def is_newer(a: int, b: int) -> bool:
    """Is sequence a newer than b, modulo 2**32 (0 is newer than 0xFFFFFFFF)?"""
    ahead = (a - b) & 0xFFFFFFFF
    return 0 < ahead < 0x80000000


def encode_header(sequence: int, payload: bytes) -> bytes:
    """The 32 header bytes for a payload saved as `sequence`."""
    head = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        HEADER_SIZE,
        sequence & 0xFFFFFFFF,
        len(payload),
        zlib.crc32(payload),
        0,
    )
    return head + struct.pack("<I", zlib.crc32(head))


def decode_header(raw: bytes) -> tuple[int, int, int] | None:
    """(sequence, payload length, payload CRC) of 32 valid header bytes, else None."""
    if len(raw) < HEADER_SIZE:
        return None
    magic, version, size, sequence, length, crc, reserved = _HEADER.unpack_from(raw)
    (header_crc,) = struct.unpack_from("<I", raw, 28)
    if magic != MAGIC or version != FORMAT_VERSION or size != HEADER_SIZE or reserved != 0:
        return None
    if header_crc != zlib.crc32(bytes(raw[:28])):
        return None
    return sequence, length, crc


def read_slot(region: bytes | bytearray, slot: int, geometry: Geometry) -> Slot | None:
    """Slot 0 or 1 of a region dump if valid (header, length, payload CRC), else None."""
    if slot not in (0, 1):
        raise SlotError(f"slot {slot}: must be 0 (A) or 1 (B)")
    _check_region(region, geometry)
    start = slot * geometry.slot_size
    decoded = decode_header(bytes(region[start : start + HEADER_SIZE]))
    if decoded is None:
        return None
    sequence, length, crc = decoded
    if length > geometry.capacity:
        return None
    payload = bytes(region[start + PAYLOAD_OFFSET : start + PAYLOAD_OFFSET + length])
    if zlib.crc32(payload) != crc:
        return None
    return Slot(slot, sequence, payload)


def pick(region: bytes | bytearray, geometry: Geometry) -> Slot | None:
    """The model in a region dump: the valid slot with the newer sequence (A on a tie), or
    None when neither slot is valid. As elsh_slots_pick."""
    a, b = read_slot(region, 0, geometry), read_slot(region, 1, geometry)
    if a is not None and (b is None or not is_newer(b.sequence, a.sequence)):
        return a
    return b


def save(region: bytearray, payload: bytes, geometry: Geometry) -> Slot:
    """Save payload into a region image as elsh_slots_save does: into the slot pick did not
    choose, sequence + 1 (slot A, sequence 1 when there is none); the sectors it uses erased,
    the payload and the header page programmed (bits only cleared, as flash does)."""
    payload = bytes(payload)
    _check_region(region, geometry)
    if len(payload) > geometry.capacity:
        raise SlotError(
            f"payload of {len(payload)} bytes: a slot of this region holds {geometry.capacity}"
        )
    current = pick(region, geometry)
    slot = 0 if current is None else 1 - current.slot
    sequence = 1 if current is None else (current.sequence + 1) & 0xFFFFFFFF
    start = slot * geometry.slot_size
    used = PAYLOAD_OFFSET + len(payload)
    erase_end = start + -(-used // geometry.sector_size) * geometry.sector_size
    region[start:erase_end] = bytes([ERASED]) * (erase_end - start)
    page = geometry.page_size
    padded = payload + bytes([ERASED]) * (-len(payload) % page)
    header_page = encode_header(sequence, payload).ljust(PAYLOAD_OFFSET, bytes([ERASED]))
    for offset, data in ((start + PAYLOAD_OFFSET, padded), (start, header_page)):
        old = region[offset : offset + len(data)]
        region[offset : offset + len(data)] = bytes(x & y for x, y in zip(old, data))
    return Slot(slot, sequence, payload)


def build_image(payload: bytes, geometry: Geometry, *, sequence: int = 1, slot: int = 0) -> bytes:
    """A region image with payload in `slot` (A by default) at `sequence` and the other slot
    erased: what to put in flash so the firmware boots this model."""
    if slot not in (0, 1):
        raise SlotError(f"slot {slot}: must be 0 (A) or 1 (B)")
    payload = bytes(payload)
    if len(payload) > geometry.capacity:
        raise SlotError(
            f"payload of {len(payload)} bytes: a slot of this region holds {geometry.capacity}"
        )
    region = bytearray([ERASED]) * geometry.size
    start = slot * geometry.slot_size
    region[start : start + HEADER_SIZE] = encode_header(sequence, payload)
    region[start + PAYLOAD_OFFSET : start + PAYLOAD_OFFSET + len(payload)] = payload
    return bytes(region)


def _check_region(region: bytes | bytearray, geometry: Geometry) -> None:
    if len(region) != geometry.size:
        raise SlotError(f"region of {len(region)} bytes; the geometry says {geometry.size}")
