"""edge_lsh.deploy.slots, the Python mirror of the A/B flash slots, against the C code
(native/src/slots.c, flash_ram.c through cffi): the same header bytes, the same region bytes
after the same saves, the same pick on damaged regions; a real model saved and read back."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import pytest

from edge_lsh.deploy import slots
from edge_lsh.native import ffi, lib

GOLDEN = sorted((Path(__file__).resolve().parents[1] / "export" / "golden").glob("*.elsh"))


class CFlash:
    """A region in RAM driven by the C code (elsh_flash_ram_init)."""

    def __init__(self, geometry: slots.Geometry, image: bytes | None = None) -> None:
        self.geometry = geometry
        self.mem = ffi.new("uint8_t[]", geometry.size)
        ffi.memmove(self.mem, image or b"\xff" * geometry.size, geometry.size)
        self.flash = ffi.new("elsh_flash *")
        self.ram = ffi.new("elsh_flash_ram *")
        st = lib.elsh_flash_ram_init(
            self.flash,
            self.ram,
            self.mem,
            geometry.size,
            geometry.sector_size,
            geometry.page_size,
        )
        assert st == lib.ELSH_SLOTS_OK

    def save(self, payload: bytes) -> tuple[int, int]:
        info = ffi.new("elsh_slot_info *")
        st = lib.elsh_slots_save(self.flash, payload, len(payload), info)
        assert st == lib.ELSH_SLOTS_OK, ffi.string(lib.elsh_slots_status_str(st))
        return info.slot, info.sequence

    def pick(self) -> slots.Slot | None:
        info = ffi.new("elsh_slot_info *")
        st = lib.elsh_slots_pick(self.flash, info)
        if st == lib.ELSH_SLOTS_NO_MODEL:
            assert info.slot == -1
            return None
        assert st == lib.ELSH_SLOTS_OK
        payload = bytes(ffi.buffer(lib.elsh_slots_payload(self.flash, info), info.length))
        assert info.payload_offset == info.slot * self.geometry.slot_size + slots.PAYLOAD_OFFSET
        return slots.Slot(info.slot, info.sequence, payload)

    def region(self) -> bytes:
        return bytes(ffi.buffer(self.mem, self.geometry.size))


def test_header_bytes_agree_with_c() -> None:
    rng = random.Random(1)
    out = ffi.new("uint8_t[32]")
    for _ in range(200):
        seq = rng.getrandbits(32)
        payload = rng.randbytes(rng.randrange(0, 300))
        lib.elsh_slots_header_encode(out, seq, len(payload), zlib.crc32(payload))
        mine = slots.encode_header(seq, payload)
        assert bytes(out) == mine
        assert slots.decode_header(mine) == (seq, len(payload), zlib.crc32(payload))
        info = ffi.new("elsh_slot_info *")
        assert lib.elsh_slots_header_decode(mine, info) == lib.ELSH_SLOTS_OK
        assert (info.sequence, info.length) == (seq, len(payload))
    assert slots.HEADER_SIZE == lib.ELSH_SLOT_HEADER_SIZE
    assert slots.PAYLOAD_OFFSET == lib.ELSH_SLOT_PAYLOAD_OFFSET
    assert slots.FORMAT_VERSION == lib.ELSH_SLOT_FORMAT_VERSION
    assert slots.MAX_PAGE == lib.ELSH_SLOT_MAX_PAGE


def test_sequence_comparison_agrees_with_c() -> None:
    rng = random.Random(2)
    edges = [0, 1, 2, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF]
    pairs = [(a, b) for a in edges for b in edges]
    pairs += [(rng.getrandbits(32), rng.getrandbits(32)) for _ in range(500)]
    for a, b in pairs:
        assert slots.is_newer(a, b) == bool(lib.elsh_slots_is_newer(a, b)), (a, b)
    assert slots.is_newer(0, 0xFFFFFFFF) and not slots.is_newer(0xFFFFFFFF, 0)


@pytest.mark.parametrize(
    "geometry",
    [
        slots.Geometry(4 * 4096),
        slots.Geometry(5 * 4096 + 100),  # an odd region: half rounded down to sectors
        slots.Geometry(8 * 1024, sector_size=1024, page_size=16),
    ],
)
def test_saves_write_the_same_bytes_in_c_and_python(geometry: slots.Geometry) -> None:
    """Saves of random payloads one after another (sizes 0 to capacity), also from a region
    with a wrapping sequence: the C and Python regions equal byte for byte after each, and
    both pick the model just saved."""
    rng = random.Random(geometry.size)
    start = slots.build_image(b"first", geometry, sequence=0xFFFFFFFE, slot=1)
    c = CFlash(geometry, start)
    py = bytearray(start)
    sizes = [
        0,
        1,
        geometry.capacity,
        255,
        256,
        257,
        *(rng.randrange(geometry.capacity) for _ in range(8)),
    ]
    for i, n in enumerate(sizes):
        payload = rng.randbytes(n)
        where = c.save(payload)
        mine = slots.save(py, payload, geometry)
        assert where == (mine.slot, mine.sequence)
        assert mine.sequence == (0xFFFFFFFE + i + 1) & 0xFFFFFFFF
        assert mine.slot == i % 2  # first save goes to A: the start model is in B
        assert c.region() == bytes(py), f"save {i}: regions differ"
        assert slots.pick(py, geometry) == c.pick() == slots.Slot(mine.slot, mine.sequence, payload)
    assert c.ram.n_erases > 0


def test_pick_agrees_on_damaged_regions() -> None:
    geometry = slots.Geometry(4 * 4096)
    rng = random.Random(3)
    region = bytearray(b"\xff" * geometry.size)
    for n in (1000, 3000):
        slots.save(region, rng.randbytes(n), geometry)
    outcomes = set()
    for _ in range(300):
        damaged = bytearray(region)
        for _ in range(rng.randrange(1, 3)):
            at = rng.choice(
                [rng.randrange(geometry.size), rng.randrange(32), 4096 * 2 + rng.randrange(32)]
            )
            damaged[at] ^= 1 << rng.randrange(8)
        mine = slots.pick(damaged, geometry)
        assert CFlash(geometry, bytes(damaged)).pick() == mine
        outcomes.add(None if mine is None else mine.slot)
    assert outcomes == {None, 0, 1}


def test_build_image_boots_a_real_model_and_reads_back() -> None:
    """A golden .elsh model in slot A: the C pick finds it, and the bytes it maps are the file,
    which the C reader opens; after a C save of another model, Python reads that one back."""
    assert len(GOLDEN) >= 2
    first, second = GOLDEN[0].read_bytes(), GOLDEN[1].read_bytes()
    geometry = slots.Geometry(-(-2 * (len(first) + len(second) + 256) // 4096) * 4096 + 8192)
    image = slots.build_image(first, geometry)
    assert slots.pick(image, geometry) == slots.Slot(0, 1, first)
    c = CFlash(geometry, image)
    got = c.pick()
    assert got == slots.Slot(0, 1, first)
    # open in place, as the firmware does from memory-mapped flash: the payload's offset keeps
    # the file's alignment
    info = ffi.new("elsh_slot_info *")
    assert lib.elsh_slots_pick(c.flash, info) == lib.ELSH_SLOTS_OK
    mapped = lib.elsh_slots_payload(c.flash, info)
    assert int(ffi.cast("uintptr_t", mapped)) % lib.ELSH_FILE_ALIGN == 0
    net, need = ffi.new("elsh_qnet *"), ffi.new("size_t *")
    assert lib.elsh_model_open(net, mapped, info.length, need) == lib.ELSH_OK
    assert c.save(second) == (1, 2)
    found = slots.pick(c.region(), geometry)
    assert found is not None and found.payload == second and found.sequence == 2
    assert found.payload_offset_in(geometry) == geometry.slot_size + slots.PAYLOAD_OFFSET
    assert slots.read_slot(c.region(), 0, geometry) == slots.Slot(0, 1, first)


def test_errors() -> None:
    with pytest.raises(slots.SlotError, match="page size"):
        slots.Geometry(8192, page_size=300)
    with pytest.raises(slots.SlotError, match="sector size"):
        slots.Geometry(8192, sector_size=1000)
    with pytest.raises(slots.SlotError, match="fewer than two sectors"):
        slots.Geometry(4096)
    geometry = slots.Geometry(2 * 4096)
    with pytest.raises(slots.SlotError, match="holds 3840"):
        slots.build_image(b"x" * 3841, geometry)
    with pytest.raises(slots.SlotError, match="holds 3840"):
        slots.save(bytearray(b"\xff" * 8192), b"x" * 3841, geometry)
    with pytest.raises(slots.SlotError, match="region of 100 bytes"):
        slots.pick(b"\xff" * 100, geometry)
    with pytest.raises(slots.SlotError, match="slot 2"):
        slots.read_slot(b"\xff" * 8192, 2, geometry)
    assert slots.pick(b"\xff" * 8192, geometry) is None
    assert slots.pick(b"\x00" * 8192, geometry) is None
    assert slots.decode_header(b"ELSHSLOT") is None
