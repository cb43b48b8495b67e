"""The ``.elsh`` quantized model format (export/FORMAT.md): the in-memory model (``QModel`` of
``QLayer``), the writer and the validating reader.

    elsh_bytes(model, tables=True, info=None) -> bytes     the file's bytes
    write_elsh(path, model, tables=True, info=None)        written atomically
    read_elsh(path_or_bytes) -> QModel                      every "must" rule of FORMAT.md
                                                           checked; ElshFormatError(code, msg)
    section_sizes(model_or_file, tables=True)              the section table, for inspection
    describe(model_or_file, tables=True) -> dict           layers, hashing, bytes per section

Low-level: ``Section`` and ``assemble(sections)`` lay out any list of sections as a file (the
writer uses them; tests use them to build files that break one rule at a time).

The reader never trusts a size or an index before checking it, and checks in the order of the
C reader (native/src/model_io.c: open, then attach), so that both report the same code for a
broken file. When a file has no TABLES, the canonical tables are built from the weights and the
MEMBERSHIP bits (``edge_lsh.qreference.canonical_tables``), so a model read with or without
stored tables is the same. Like the C reader, it reads the first file_bytes bytes of a longer
buffer and ignores the rest.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Union

import numpy as np

from edge_lsh import hashgen
from edge_lsh import qreference as Q
from edge_lsh.fileio import atomic_write

__all__ = [
    "MAGIC",
    "VERSION_MAJOR",
    "VERSION_MINOR",
    "SECTION_NAMES",
    "ElshFormatError",
    "QLayer",
    "QModel",
    "Section",
    "assemble",
    "model_sections",
    "elsh_bytes",
    "write_elsh",
    "read_elsh",
    "section_sizes",
    "describe",
    "hash_work",
]

MAGIC = b"ELSH\r\n\x1a\n"
VERSION_MAJOR = 1
VERSION_MINOR = 0
BYTE_ORDER = 0x04030201
HEADER_BYTES = 64
ENTRY_BYTES = 32
ALIGN = 64
NO_LAYER = 0xFFFFFFFF
MAX_SECTIONS = 4096
FLAG_REQUIRED = 1
HEADER_FLAG_TABLES = 1
MAX_WIDTH = 65535
MAX_LAYERS = 8
MAX_BITS = 15
MAX_TABLES = 1024
MAX_CENTER = 2**24
MAX_HASH_WORK = 2**24  # operations to hash one vector
MAX_SCAN_WORK = 2**24  # table entries one input may scan: L * n_out
MAX_DRAW_WORK = 2**24  # PRNG draws to make the hash functions from the seed
MAX_BUILD_WORK = 2**28  # operations to build a layer's tables at load (both passes)
DWTA_MAX_PROBES = 16

NET, LAYER, WEIGHTS, BIAS, REQUANT, HASH_COEF, PAD_ORDER, CENTER, TABLES, INFO, MEMBERSHIP = range(
    1, 12
)
SECTION_NAMES = {
    NET: "NET",
    LAYER: "LAYER",
    WEIGHTS: "WEIGHTS",
    BIAS: "BIAS",
    REQUANT: "REQUANT",
    HASH_COEF: "HASH_COEF",
    PAD_ORDER: "PAD_ORDER",
    CENTER: "CENTER",
    TABLES: "TABLES",
    INFO: "INFO",
    MEMBERSHIP: "MEMBERSHIP",
}
NETWORK_SECTIONS = (NET, INFO)

_HEADER = struct.Struct("<8sHHIIIQQII16s")
_ENTRY = struct.Struct("<IIQQII")
_NET = struct.Struct("<IIIfQ8s")
_LAYER = struct.Struct("<IIIBBBBBBBBHHHHHHiiff16s")
assert _HEADER.size == HEADER_BYTES and _ENTRY.size == ENTRY_BYTES
assert _NET.size == 32 and _LAYER.size == 64


class ElshFormatError(ValueError):
    """An .elsh file breaks a rule of FORMAT.md. ``code`` is the rule's name there (for
    example "ELSH_FMT_CRC"), ``message`` says which field held what, and what was expected."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


# ----------------------------------------------------------------------------- the model


@dataclass(eq=False)
class QLayer:
    """One layer of a quantized model, with the fields of its LAYER section and its arrays.

    Hash fields are zero for a dense layer. The hash functions are always present for an LSH
    layer (hash_source only says whether a file stores them or derives them from the seed):
    ``proj`` int8 (T, K, hash_dim); ``tern_idx`` uint16 and ``tern_sign`` int8 (T, K, nnz);
    ``dwta_idx`` uint16 (T, P, bin); ``pad_order`` uint16 (n_out,); ``center_q`` int32
    (hash_dim,) when center. ``weight_scale`` (float64 per neuron) is informational and not
    stored in files. ``membership`` (bool (T, n_out), FORMAT.md 5.7) says which neurons each
    table holds; None means every neuron is in every table. ``table_offsets``/``table_ids``
    cache the CSR tables once known (``qreference.layer_tables``): set them to None after
    changing weights, hash functions or membership."""

    n_in: int
    n_out: int
    k: int
    is_output: bool
    weight_bits: int
    weights: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    in_zero_point: int
    out_zero_point: int
    in_scale: float
    out_scale: float
    use_lsh: bool = False
    family: int = 0
    bits: int = 0
    n_tables: int = 0
    select_mode: int = 0
    hash_source: int = 0
    center: bool = False
    pool: int = 0
    hash_dim: int = 0
    ternary_nnz: int = 0
    dwta_bin: int = 0
    dwta_per_table: int = 0
    proj: np.ndarray | None = None
    tern_idx: np.ndarray | None = None
    tern_sign: np.ndarray | None = None
    dwta_idx: np.ndarray | None = None
    pad_order: np.ndarray | None = None
    center_q: np.ndarray | None = None
    membership: np.ndarray | None = None
    weight_scale: np.ndarray | None = None
    table_offsets: np.ndarray | None = None
    table_ids: np.ndarray | None = None

    SCALARS = (
        "n_in",
        "n_out",
        "k",
        "is_output",
        "weight_bits",
        "in_zero_point",
        "out_zero_point",
        "in_scale",
        "out_scale",
        "use_lsh",
        "family",
        "bits",
        "n_tables",
        "select_mode",
        "hash_source",
        "center",
        "pool",
        "hash_dim",
        "ternary_nnz",
        "dwta_bin",
        "dwta_per_table",
    )
    ARRAYS = (
        "weights",
        "bias",
        "multiplier",
        "shift",
        "proj",
        "tern_idx",
        "tern_sign",
        "dwta_idx",
        "pad_order",
        "center_q",
    )

    def first_difference(self, other: QLayer, *, tables: bool = False) -> str | None:
        """The name of the first field in which the layers differ, or None. Scales compare as
        the float32 values a file stores; weight_scale is not compared; with tables, the
        stored or canonical tables are."""
        for name in self.SCALARS:
            a, b = getattr(self, name), getattr(other, name)
            if name in ("in_scale", "out_scale"):  # stored as float32
                a, b = np.float32(a), np.float32(b)
            if a != b:
                return name
        for name in self.ARRAYS:
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None):
                return name
            if a is not None and (
                a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b)
            ):
                return name
        if self.use_lsh and not np.array_equal(self.member_mask(), other.member_mask()):
            return "membership"
        if tables and self.use_lsh:
            (oa, ia), (ob, ib) = Q.layer_tables(self), Q.layer_tables(other)
            if not (np.array_equal(oa, ob) and np.array_equal(ia, ib)):
                return "tables"
        return None

    def member_mask(self) -> np.ndarray:
        """(T, n_out) bool: is neuron j in table t (all True without membership bits)."""
        if self.membership is None:
            return np.ones((self.n_tables, self.n_out), dtype=bool)
        return np.asarray(self.membership, dtype=bool)

    def partial_membership(self) -> np.ndarray | None:
        """The membership bits when some table leaves a neuron out, else None."""
        if self.membership is None or np.asarray(self.membership, dtype=bool).all():
            return None
        return np.asarray(self.membership, dtype=bool)

    def same_as(self, other: QLayer, *, tables: bool = True) -> bool:
        """Equal in everything a file stores (weight_scale is not compared); with tables, the
        (stored or canonical) tables too."""
        return self.first_difference(other, tables=tables) is None

    def hash_coef_bytes(self) -> bytes:
        """The HASH_COEF payload of this layer (hash_source = 1)."""
        if self.family == hashgen.SIMHASH:
            assert self.proj is not None
            return _le(self.proj, "i1")
        if self.family == hashgen.TERNARY:
            assert self.tern_idx is not None and self.tern_sign is not None
            return _le(self.tern_idx, "<u2") + _le(self.tern_sign, "i1")
        assert self.dwta_idx is not None
        return _le(self.dwta_idx, "<u2")


@dataclass(eq=False)
class QModel:
    """A quantized network: NET fields, the layers, and the optional INFO JSON."""

    n_in: int
    n_classes: int
    input_inv_scale: float
    seed: int
    layers: list[QLayer]
    info: dict[str, Any] | None = field(default=None)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def input_zero_point(self) -> int:
        return int(self.layers[0].in_zero_point)

    @property
    def input_scale(self) -> float:
        return float(self.layers[0].in_scale)

    def same_as(self, other: QModel, *, tables: bool = True) -> bool:
        """Equal in everything a file stores except INFO (see QLayer.same_as)."""
        return (
            self.n_in == other.n_in
            and self.n_classes == other.n_classes
            and np.float32(self.input_inv_scale) == np.float32(other.input_inv_scale)
            and self.seed == other.seed
            and len(self.layers) == len(other.layers)
            and all(a.same_as(b, tables=tables) for a, b in zip(self.layers, other.layers))
        )

    def dequantize_logits(self, logits: Any) -> np.ndarray:
        """Real-valued logits (out_scale * y); inactive classes become -inf."""
        y = np.asarray(logits, dtype=np.int64)
        out = y.astype(np.float64) * float(self.layers[-1].out_scale)
        return np.where(y == Q.INACTIVE_LOGIT, -np.inf, out)


# ----------------------------------------------------------------------------- writing


class Section(NamedTuple):
    """One section to lay out: type, layer (NO_LAYER for the network), payload, flags."""

    type: int
    layer: int
    payload: bytes
    flags: int = FLAG_REQUIRED


def _le(a: np.ndarray, dtype: str) -> bytes:
    return np.ascontiguousarray(a, dtype=np.dtype(dtype)).tobytes()


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def assemble(
    sections: Sequence[Section],
    *,
    flags: int = 0,
    version: tuple[int, int] = (VERSION_MAJOR, VERSION_MINOR),
) -> bytes:
    """Lay out the sections in the given order (each at the next multiple of 64 after the
    section table, zero padding between) under a header with the CRC filled in."""
    table_end = HEADER_BYTES + ENTRY_BYTES * len(sections)
    entries = []
    pos = table_end
    for s in sections:
        pos = _align(pos)
        entries.append(_ENTRY.pack(s.type, s.layer, pos, len(s.payload), s.flags, 0))
        pos += len(s.payload)
    file_bytes = pos if sections else table_end
    buf = bytearray(file_bytes)
    buf[HEADER_BYTES:table_end] = b"".join(entries)
    for s, e in zip(sections, entries):
        off = _ENTRY.unpack(e)[2]
        buf[off : off + len(s.payload)] = s.payload
    header = _HEADER.pack(
        MAGIC,
        version[0],
        version[1],
        BYTE_ORDER,
        HEADER_BYTES,
        len(sections),
        HEADER_BYTES,
        file_bytes,
        0,
        flags,
        bytes(16),
    )
    buf[:HEADER_BYTES] = header
    struct.pack_into("<I", buf, 40, zlib.crc32(bytes(buf)))
    return bytes(buf)


def _layer_record(L: QLayer) -> bytes:
    return _LAYER.pack(
        L.n_in,
        L.n_out,
        L.k,
        int(L.use_lsh),
        int(L.is_output),
        L.weight_bits,
        L.family,
        L.bits,
        L.select_mode,
        L.hash_source,
        int(L.center),
        L.n_tables,
        L.pool,
        L.hash_dim,
        L.ternary_nnz,
        L.dwta_bin,
        L.dwta_per_table,
        L.in_zero_point,
        L.out_zero_point,
        L.in_scale,
        L.out_scale,
        bytes(16),
    )


def _tables_payload(L: QLayer) -> bytes:
    offsets, ids = Q.canonical_tables(L)
    raw = _le(offsets, "<u4") + _le(ids, "<u2")
    return raw + bytes(-len(raw) % 4)


def _membership_payload(members: np.ndarray) -> bytes:
    """L rows of ceil(n_out / 8) bytes, bit (j mod 8) of byte j // 8 = neuron j is a member."""
    return np.packbits(members.astype(np.uint8), axis=1, bitorder="little").tobytes()


def model_sections(
    model: QModel, *, tables: bool = True, info: dict[str, Any] | None = None
) -> list[Section]:
    """The sections of a model in the writer's order: NET, every LAYER, then per layer
    WEIGHTS, BIAS, REQUANT, HASH_COEF, PAD_ORDER, CENTER, then TABLES (with tables) or
    MEMBERSHIP (without tables, when some table leaves a neuron out), then INFO."""
    out = [
        Section(
            NET,
            NO_LAYER,
            _NET.pack(
                model.n_in,
                len(model.layers),
                model.n_classes,
                model.input_inv_scale,
                model.seed,
                bytes(8),
            ),
        )
    ]
    out += [Section(LAYER, li, _layer_record(L)) for li, L in enumerate(model.layers)]
    for li, L in enumerate(model.layers):
        wtype = "<i2" if L.weight_bits == 16 else "i1"
        out.append(Section(WEIGHTS, li, _le(L.weights, wtype)))
        out.append(Section(BIAS, li, _le(L.bias, "<i4")))
        out.append(Section(REQUANT, li, _le(L.multiplier, "<i4") + _le(L.shift, "i1")))
        if not L.use_lsh:
            continue
        if L.hash_source == 1:
            assert L.pad_order is not None
            out.append(Section(HASH_COEF, li, L.hash_coef_bytes()))
            out.append(Section(PAD_ORDER, li, _le(L.pad_order, "<u2")))
        if L.center:
            assert L.center_q is not None
            out.append(Section(CENTER, li, _le(L.center_q, "<i4")))
        if tables:
            out.append(Section(TABLES, li, _tables_payload(L)))
        else:
            members = L.partial_membership()
            if members is not None:
                out.append(Section(MEMBERSHIP, li, _membership_payload(members)))
    info = model.info if info is None else info
    if info is not None:
        text = json.dumps(info, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        out.append(Section(INFO, NO_LAYER, text.encode("utf-8"), 0))
    return out


def elsh_bytes(model: QModel, tables: bool = True, info: dict[str, Any] | None = None) -> bytes:
    """The .elsh file of `model`. With tables, the canonical tables of every LSH layer are
    stored (header flag bit 0). info (or model.info) becomes the INFO section. The result is
    checked with the reader's rules, so an invalid model raises ElshFormatError here."""
    any_lsh = any(L.use_lsh for L in model.layers)
    data = assemble(
        model_sections(model, tables=tables, info=info),
        flags=HEADER_FLAG_TABLES if tables and any_lsh else 0,
    )
    back = _parse(data, build_tables=False)
    for li, (a, b) in enumerate(zip(model.layers, back.layers)):
        diff = a.first_difference(b)
        if diff:
            why = (
                " (hash_source = 0 stores only the seed: the layer's hash functions must be "
                "those edge_lsh.hashgen draws from it)"
                if diff in ("proj", "tern_idx", "tern_sign", "dwta_idx", "pad_order")
                else ""
            )
            raise ValueError(f"layer {li}: {diff} does not survive writing{why}")
    return data


def write_elsh(
    path: str | os.PathLike[str],
    model: QModel,
    tables: bool = True,
    info: dict[str, Any] | None = None,
) -> None:
    """Write `model` to `path` atomically (see elsh_bytes)."""
    data = elsh_bytes(model, tables=tables, info=info)
    with atomic_write(path) as f:
        f.write(data)


# ----------------------------------------------------------------------------- reading


class _Entry(NamedTuple):
    pos: int
    type: int
    layer: int
    offset: int
    size: int
    flags: int


def _fail(code: str, message: str) -> ElshFormatError:
    return ElshFormatError(code, message)


def _name(t: int) -> str:
    return SECTION_NAMES.get(t, f"type {t}")


def _where(t: int, layer: int) -> str:
    return _name(t) if layer == NO_LAYER else f"{_name(t)} of layer {layer}"


def _check_header(data: bytes) -> tuple[int, int, int, int]:
    """(n_sections, section_table_offset, file_bytes, flags) of a header that passes, checked
    in the C reader's order (model_io.c read_header)."""
    n = len(data)
    if n < 8:
        raise _fail("ELSH_FMT_TRUNCATED", f"{n} bytes: too short to hold the magic number")
    if data[:8] != MAGIC:
        raise _fail(
            "ELSH_FMT_MAGIC", f"magic is {data[:8]!r}, expected {MAGIC!r}: not an .elsh file"
        )
    if n < HEADER_BYTES:
        raise _fail("ELSH_FMT_TRUNCATED", f"{n} bytes: shorter than the {HEADER_BYTES}-byte header")
    (_, vmaj, vmin, order, hbytes, nsec, sto, fbytes, crc, flags, reserved) = _HEADER.unpack(
        data[:HEADER_BYTES]
    )
    if vmaj != VERSION_MAJOR:
        raise _fail(
            "ELSH_FMT_VERSION",
            f"version {vmaj}.{vmin}; this reader reads {VERSION_MAJOR}.x files",
        )
    if order != BYTE_ORDER:
        raise _fail(
            "ELSH_FMT_BYTE_ORDER", f"byte_order is 0x{order:08X}, expected 0x{BYTE_ORDER:08X}"
        )
    if hbytes != HEADER_BYTES:
        raise _fail("ELSH_FMT_HEADER", f"header_bytes is {hbytes}, expected {HEADER_BYTES}")
    if not (1 <= nsec <= MAX_SECTIONS):
        raise _fail("ELSH_FMT_HEADER", f"n_sections is {nsec}, expected 1..{MAX_SECTIONS}")
    if sto % 8 or sto < HEADER_BYTES:
        raise _fail(
            "ELSH_FMT_HEADER",
            f"section_table_offset is {sto}, expected a multiple of 8 >= {HEADER_BYTES}",
        )
    if flags & ~HEADER_FLAG_TABLES:
        raise _fail("ELSH_FMT_HEADER", f"flags is 0x{flags:08X}; only bit 0 is defined")
    if reserved != bytes(16):
        raise _fail("ELSH_FMT_HEADER", "reserved header bytes 48..63 are not zero")
    if fbytes > n or fbytes < HEADER_BYTES:
        raise _fail(
            "ELSH_FMT_TRUNCATED", f"header says file_bytes = {fbytes}, but there are {n} bytes"
        )
    if sto > fbytes or (fbytes - sto) // ENTRY_BYTES < nsec:
        raise _fail(
            "ELSH_FMT_TRUNCATED",
            f"the section table ({nsec} entries of {ENTRY_BYTES} bytes at {sto}) does not fit in "
            f"the {fbytes}-byte file",
        )
    actual = zlib.crc32(data[:40] + bytes(4) + data[44:fbytes])
    if actual != crc:
        raise _fail(
            "ELSH_FMT_CRC", f"CRC-32 is 0x{actual:08X}, the header says 0x{crc:08X}: corrupt file"
        )
    return nsec, sto, fbytes, flags


def _section_table(data: bytes, nsec: int, sto: int, fbytes: int) -> list[_Entry]:
    """Every entry, checked in the C reader's order (model_io.c read_sections): flags and
    reserved field, alignment, inside the file after the table, no overlap with an earlier
    entry, no unknown required type, a layer field that fits the type, no duplicate (type,
    layer). Unknown optional sections are included (callers skip them)."""
    data_start = sto + ENTRY_BYTES * nsec
    entries: list[_Entry] = []
    seen: dict[tuple[int, int], int] = {}
    for i in range(nsec):
        t, layer, off, size, flags, reserved = _ENTRY.unpack_from(data, sto + ENTRY_BYTES * i)
        what = f"section {i} ({_where(t, layer)})"
        if flags & ~FLAG_REQUIRED or reserved:
            raise _fail(
                "ELSH_FMT_HEADER",
                f"{what}: flags 0x{flags:X} / reserved {reserved}; only flag bit 0 is defined "
                "and reserved must be 0",
            )
        if off % ALIGN:
            raise _fail("ELSH_FMT_ALIGN", f"{what} starts at {off}, not a multiple of {ALIGN}")
        if off < data_start or off > fbytes or size > fbytes - off:
            raise _fail(
                "ELSH_FMT_BOUNDS",
                f"{what} spans bytes {off}..{off + size}; sections must lie in "
                f"{data_start}..{fbytes} (after the section table, inside the file)",
            )
        for o in entries:
            if size and o.size and off < o.offset + o.size and o.offset < off + size:
                raise _fail(
                    "ELSH_FMT_BOUNDS",
                    f"{what} (bytes {off}..{off + size}) overlaps section {o.pos} "
                    f"({_where(o.type, o.layer)}, bytes {o.offset}..{o.offset + o.size})",
                )
        entry = _Entry(i, t, layer, off, size, flags)
        if t not in SECTION_NAMES:
            if flags & FLAG_REQUIRED:
                raise _fail(
                    "ELSH_FMT_UNKNOWN_REQUIRED",
                    f"{what} has a type this reader does not know and is marked required",
                )
            entries.append(entry)  # a later minor version's section: skipped by the caller
            continue
        if t in NETWORK_SECTIONS and layer != NO_LAYER:
            raise _fail(
                "ELSH_FMT_UNEXPECTED",
                f"{what}: {_name(t)} belongs to the whole network; its layer must be 0xFFFFFFFF",
            )
        if t not in NETWORK_SECTIONS and layer >= MAX_LAYERS:
            raise _fail(
                "ELSH_FMT_UNEXPECTED", f"{what}: layer {layer} is beyond the {MAX_LAYERS} allowed"
            )
        if (t, layer) in seen:
            raise _fail(
                "ELSH_FMT_DUPLICATE",
                f"{what} repeats section {seen[(t, layer)]}'s type and layer",
            )
        seen[(t, layer)] = i
        entries.append(entry)
    return entries


def hash_work(
    family: int,
    tables: int,
    bits: int,
    hash_dim: int,
    ternary_nnz: int = 0,
    dwta_bin: int = 0,
    dwta_per_table: int = 0,
) -> int:
    """Operations to hash one vector (FORMAT.md work limits): SimHash L * K * hash_dim,
    ternary L * K * ternary_nnz, DWTA L * dwta_per_table * dwta_bin * 17 (densification)."""
    if family == hashgen.SIMHASH:
        return tables * bits * hash_dim
    if family == hashgen.TERNARY:
        return tables * bits * ternary_nnz
    return tables * dwta_per_table * dwta_bin * (1 + DWTA_MAX_PROBES)


def draw_work(
    family: int,
    tables: int,
    bits: int,
    hash_dim: int,
    ternary_nnz: int = 0,
    dwta_bin: int = 0,
    dwta_per_table: int = 0,
) -> int:
    """PRNG draws to make a layer's hash functions from the seed (FORMAT.md work limits):
    SimHash L * K * hash_dim normals; ternary L * K * draws(nnz); DWTA L * P * draws(bin), where
    draws(m) = 2m while 2m <= hash_dim, else 12 * hash_dim (distinct values by rejection)."""

    def draws(m: int) -> int:
        return 2 * m if 2 * m <= hash_dim else 12 * hash_dim

    if family == hashgen.SIMHASH:
        return tables * bits * hash_dim
    if family == hashgen.TERNARY:
        return tables * bits * draws(ternary_nnz)
    return tables * dwta_per_table * draws(dwta_bin)


def _f32_ok(v: float) -> bool:
    return math.isfinite(v) and v > 0


def _check_net(payload: bytes) -> tuple[int, int, int, float, int]:
    n_in, n_layers, n_classes, inv, seed, reserved = _NET.unpack(payload)

    def bad(msg: str) -> ElshFormatError:
        return _fail("ELSH_FMT_NET", f"NET: {msg}")

    if not (1 <= n_in <= MAX_WIDTH):
        raise bad(f"n_in is {n_in}, expected 1..{MAX_WIDTH}")
    if not (1 <= n_layers <= MAX_LAYERS):
        raise bad(f"n_layers is {n_layers}, expected 1..{MAX_LAYERS}")
    if not (2 <= n_classes <= MAX_WIDTH):
        raise bad(f"n_classes is {n_classes}, expected 2..{MAX_WIDTH}")
    if not _f32_ok(inv):
        raise bad(f"input_inv_scale is {inv}, expected a finite number > 0")
    if reserved != bytes(8):
        raise bad("reserved bytes 24..31 are not zero")
    return n_in, n_layers, n_classes, inv, seed


def _check_layer(
    li: int,
    payload: bytes,
    n_in: int,
    n_layers: int,
    n_classes: int,
    prev: QLayer | None,
    tables_flag: bool,
) -> QLayer:
    (
        l_in,
        n_out,
        k,
        use_lsh,
        is_output,
        wbits,
        family,
        bits,
        select_mode,
        hash_source,
        center,
        n_tables,
        pool,
        hash_dim,
        nnz,
        dwta_bin,
        dwta_pt,
        in_zp,
        out_zp,
        in_scale,
        out_scale,
        reserved,
    ) = _LAYER.unpack(payload)

    def bad(msg: str) -> ElshFormatError:
        return _fail("ELSH_FMT_LAYER", f"LAYER {li}: {msg}")

    last = li == n_layers - 1
    if l_in != n_in:
        src = "NET.n_in" if li == 0 else f"layer {li - 1}'s n_out"
        raise bad(f"n_in is {l_in}, expected {n_in} ({src})")
    if not (1 <= n_out <= MAX_WIDTH):
        raise bad(f"n_out is {n_out}, expected 1..{MAX_WIDTH}")
    if last and n_out != n_classes:
        raise bad(f"n_out is {n_out}, expected NET.n_classes = {n_classes} (the output layer)")
    if use_lsh not in (0, 1):
        raise bad(f"use_lsh is {use_lsh}, expected 0 or 1")
    if is_output != int(last):
        raise bad(f"is_output is {is_output}, expected {int(last)} (1 for the last layer only)")
    if wbits not in (8, 16):
        raise bad(f"weight_bits is {wbits}, expected 8 or 16")
    if use_lsh:
        if not (1 <= k <= n_out):
            raise bad(f"k is {k}, expected 1..{n_out} (n_out) for an LSH layer")
    elif k != n_out:
        raise bad(f"k is {k}, expected n_out = {n_out} for a dense layer")
    if not (-128 <= in_zp <= 127):
        raise bad(f"in_zero_point is {in_zp}, expected -128..127")
    if last and out_zp != 0:
        raise bad(f"out_zero_point is {out_zp}, expected 0 for the output layer")
    if not (-128 <= out_zp <= 127):
        raise bad(f"out_zero_point is {out_zp}, expected -128..127")
    if not _f32_ok(in_scale):
        raise bad(f"in_scale is {in_scale}, expected a finite number > 0")
    if not _f32_ok(out_scale):
        raise bad(f"out_scale is {out_scale}, expected a finite number > 0")
    if prev is not None:
        if in_zp != prev.out_zero_point:
            raise bad(
                f"in_zero_point is {in_zp}, expected layer {li - 1}'s out_zero_point "
                f"{prev.out_zero_point}"
            )
        if in_scale != prev.out_scale:
            raise bad(
                f"in_scale is {in_scale}, expected layer {li - 1}'s out_scale {prev.out_scale}"
            )
    if reserved != bytes(16):
        raise bad("reserved bytes 48..63 are not zero")
    hash_fields = {
        "hash_family": family,
        "bits": bits,
        "select_mode": select_mode,
        "hash_source": hash_source,
        "center": center,
        "tables": n_tables,
        "pool": pool,
        "hash_dim": hash_dim,
        "ternary_nnz": nnz,
        "dwta_bin": dwta_bin,
        "dwta_per_table": dwta_pt,
    }
    if not use_lsh:
        for name, v in hash_fields.items():
            if v:
                raise bad(f"{name} is {v}, expected 0 for a dense layer")
    else:
        if family not in hashgen.FAMILY_NAMES:
            raise bad(f"hash_family is {family}, expected 0 (SimHash), 1 (ternary) or 2 (DWTA)")
        if not (1 <= bits <= MAX_BITS):
            raise bad(f"bits is {bits}, expected 1..{MAX_BITS}")
        if select_mode not in (Q.SELECT_TOPK, Q.SELECT_UNION):
            raise bad(f"select_mode is {select_mode}, expected 0 (top-k) or 1 (union)")
        if hash_source not in (0, 1):
            raise bad(f"hash_source is {hash_source}, expected 0 or 1")
        if center not in (0, 1):
            raise bad(f"center is {center}, expected 0 or 1")
        if not (1 <= n_tables <= MAX_TABLES):
            raise bad(f"tables is {n_tables}, expected 1..{MAX_TABLES}")
        if not (1 <= pool <= n_in):
            raise bad(f"pool is {pool}, expected 1..{n_in} (n_in)")
        if hash_dim != -(-n_in // pool):
            raise bad(f"hash_dim is {hash_dim}, expected ceil(n_in / pool) = {-(-n_in // pool)}")
        if family == hashgen.TERNARY:
            if not (1 <= nnz <= hash_dim):
                raise bad(f"ternary_nnz is {nnz}, expected 1..{hash_dim} (hash_dim)")
        elif nnz:
            raise bad(
                f"ternary_nnz is {nnz}, expected 0 for a {hashgen.FAMILY_NAMES[family]} layer"
            )
        if family == hashgen.DWTA:
            if dwta_bin < 2 or dwta_bin > 256 or dwta_bin & (dwta_bin - 1) or dwta_bin > hash_dim:
                raise bad(
                    f"dwta_bin is {dwta_bin}, expected a power of two in 2..256 and "
                    f"<= hash_dim ({hash_dim})"
                )
            want = hashgen.dwta_per_table(bits, dwta_bin)
            if dwta_pt != want:
                raise bad(f"dwta_per_table is {dwta_pt}, expected ceil(K / log2(bin)) = {want}")
        elif dwta_bin or dwta_pt:
            raise bad(
                f"dwta_bin/dwta_per_table are {dwta_bin}/{dwta_pt}, expected 0 for a "
                f"{hashgen.FAMILY_NAMES[family]} layer"
            )
        work = hash_work(family, n_tables, bits, hash_dim, nnz, dwta_bin, dwta_pt)
        if work > MAX_HASH_WORK:
            raise bad(
                f"hashing one vector costs {work} operations, more than the limit of 2^24 "
                "(fewer tables, bits or hashed values)"
            )
        if n_tables * n_out > MAX_SCAN_WORK:
            raise bad(
                f"an input may scan L * n_out = {n_tables * n_out} table entries, more than "
                "the limit of 2^24 (fewer tables or neurons)"
            )
        draws = draw_work(family, n_tables, bits, hash_dim, nnz, dwta_bin, dwta_pt)
        if hash_source == 0 and draws > MAX_DRAW_WORK:
            raise bad(
                f"drawing its hash functions from the seed takes {draws} draws, more than the "
                "limit of 2^24: store them explicitly (hash_source 1)"
            )
        build = 2 * n_out * (work + n_in)
        if not tables_flag and build > MAX_BUILD_WORK:
            raise bad(
                f"building its tables at load costs {build} operations, more "
                "than the limit of 2^28: the file must store its tables"
            )
    wdtype = np.int16 if wbits == 16 else np.int8
    return QLayer(
        n_in=l_in,
        n_out=n_out,
        k=k,
        is_output=bool(is_output),
        weight_bits=wbits,
        weights=np.zeros((0, l_in), dtype=wdtype),
        bias=np.zeros(0, dtype=np.int32),
        multiplier=np.zeros(0, dtype=np.int32),
        shift=np.zeros(0, dtype=np.int8),
        in_zero_point=in_zp,
        out_zero_point=out_zp,
        in_scale=in_scale,
        out_scale=out_scale,
        use_lsh=bool(use_lsh),
        family=family,
        bits=bits,
        n_tables=n_tables,
        select_mode=select_mode,
        hash_source=hash_source,
        center=bool(center),
        pool=pool,
        hash_dim=hash_dim,
        ternary_nnz=nnz,
        dwta_bin=dwta_bin,
        dwta_per_table=dwta_pt,
    )


def _array(data: bytes, e: _Entry, dtype: str, count: int, start: int = 0) -> np.ndarray:
    """count little-endian values of dtype at byte `start` of section e, as a native copy."""
    dt = np.dtype(dtype)
    raw = np.frombuffer(data, dtype=dt, count=count, offset=e.offset + start)
    return raw.astype(dt.newbyteorder("="))


def _expected_size(t: int, L: QLayer) -> int:
    T, K, d = L.n_tables, L.bits, L.hash_dim
    if t == WEIGHTS:
        return L.n_out * L.n_in * L.weight_bits // 8
    if t == BIAS:
        return 4 * L.n_out
    if t == REQUANT:
        return 5 * L.n_out
    if t == HASH_COEF:
        if L.family == hashgen.SIMHASH:
            return T * K * d
        if L.family == hashgen.TERNARY:
            return 3 * T * K * L.ternary_nnz
        return 2 * T * L.dwta_per_table * L.dwta_bin
    if t == PAD_ORDER:
        return 2 * L.n_out
    if t == CENTER:
        return 4 * d
    if t == MEMBERSHIP:
        return T * ((L.n_out + 7) // 8)
    raise AssertionError(t)


def _tables_size(L: QLayer, n_ids: int) -> int:
    raw = 4 * (L.n_tables * (1 << L.bits) + 1) + 2 * n_ids
    return raw + (-raw) % 4


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask.reshape(-1)))


def _bind_hash(data: bytes, hc: _Entry, po: _Entry, L: QLayer, li: int) -> None:
    """Read HASH_COEF and PAD_ORDER (hash_source = 1) with the range checks of the C reader's
    open step: indices < hash_dim, signs +-1, no -128 coefficient, padding ids < n_out."""
    T, K = L.n_tables, L.bits
    what = f"HASH_COEF of layer {li}"

    def index_range(idx: np.ndarray) -> None:
        if idx.size and int(idx.max()) >= L.hash_dim:
            f = _first(idx >= L.hash_dim)
            raise _fail(
                "ELSH_FMT_HASH",
                f"{what}: index {int(idx.reshape(-1)[f])} (entry {f}) is not below hash_dim = "
                f"{L.hash_dim}",
            )

    if L.family == hashgen.SIMHASH:
        proj = _array(data, hc, "i1", T * K * L.hash_dim).reshape(T, K, L.hash_dim)
        if (proj == -128).any():
            raise _fail(
                "ELSH_FMT_HASH",
                f"{what}: coefficient {_first(proj == -128)} is -128, expected -127..127",
            )
        L.proj = proj
    elif L.family == hashgen.TERNARY:
        m = T * K * L.ternary_nnz
        idx = _array(data, hc, "<u2", m).reshape(T, K, L.ternary_nnz)
        sign = _array(data, hc, "i1", m, 2 * m).reshape(T, K, L.ternary_nnz)
        index_range(idx)
        bad_sign = (sign != 1) & (sign != -1)
        if bad_sign.any():
            f = _first(bad_sign)
            raise _fail(
                "ELSH_FMT_HASH",
                f"{what}: sign {f} is {int(sign.reshape(-1)[f])}, expected +1 or -1",
            )
        L.tern_idx, L.tern_sign = idx, sign
    else:
        P, binw = L.dwta_per_table, L.dwta_bin
        idx = _array(data, hc, "<u2", T * P * binw).reshape(T, P, binw)
        index_range(idx)
        L.dwta_idx = idx
    pad = _array(data, po, "<u2", L.n_out)
    if pad.size and int(pad.max()) >= L.n_out:
        f = _first(pad >= L.n_out)
        raise _fail(
            "ELSH_FMT_HASH",
            f"PAD_ORDER of layer {li}: entry {f} is {int(pad[f])}, not below n_out = {L.n_out}",
        )
    L.pad_order = pad


def _check_distinct(idx: np.ndarray, what: str) -> None:
    """idx (..., m): the values of each row (one projection or bin) distinct."""
    rows = np.sort(idx.reshape(-1, idx.shape[-1]).astype(np.int64), axis=-1)
    dup = (rows[:, 1:] == rows[:, :-1]).any(axis=-1)
    if dup.any():
        raise _fail(
            "ELSH_FMT_HASH",
            f"{what}: {'projection' if 'ternary' in what else 'bin'} {_first(dup)} repeats an "
            "index; the indices of one projection or bin must be distinct",
        )


def _check_hash_attach(L: QLayer, li: int) -> None:
    """The checks the C reader makes when attaching: distinct indices, a permutation."""
    if L.family == hashgen.TERNARY:
        assert L.tern_idx is not None
        _check_distinct(L.tern_idx, f"HASH_COEF (ternary) of layer {li}")
    elif L.family == hashgen.DWTA:
        assert L.dwta_idx is not None
        _check_distinct(L.dwta_idx, f"HASH_COEF (DWTA) of layer {li}")
    assert L.pad_order is not None
    if np.unique(L.pad_order).size != L.n_out:
        raise _fail(
            "ELSH_FMT_HASH",
            f"PAD_ORDER of layer {li} repeats an id: it must be a permutation of 0..{L.n_out - 1}",
        )


def _regenerate_hash(L: QLayer, seed: int, li: int) -> None:
    g = hashgen.generate(
        seed,
        li,
        L.family,
        L.n_tables,
        L.bits,
        L.hash_dim,
        L.n_out,
        ternary_nnz=L.ternary_nnz,
        dwta_bin=L.dwta_bin,
    )
    if L.family == hashgen.SIMHASH:
        L.proj = hashgen.simhash_int8(g["proj"])
    elif L.family == hashgen.TERNARY:
        L.tern_idx, L.tern_sign = g["tern_idx"], g["tern_sign"]
    else:
        L.dwta_idx = g["dwta_idx"]
    L.pad_order = g["pad_order"]


def _bind_tables(data: bytes, e: _Entry, L: QLayer, li: int) -> None:
    """Read TABLES with the C reader's open-step checks, in its order: room for the offsets,
    at most T * n_out ids, the size those ids need, offsets[0] = 0 and non-decreasing, at most
    n_out ids per table, every id < n_out."""
    T, B, n_out = L.n_tables, 1 << L.bits, L.n_out
    what = f"TABLES of layer {li}"
    if e.size < _tables_size(L, 0):
        raise _fail(
            "ELSH_FMT_SIZE",
            f"{what} is {e.size} bytes, too small for its {T * B + 1} offsets",
        )
    offsets = _array(data, e, "<u4", T * B + 1).astype(np.int64)
    n_ids = int(offsets[-1])
    if n_ids > T * n_out:
        raise _fail(
            "ELSH_FMT_TABLES",
            f"{what}: offsets[{T * B}] is {n_ids}, more than L * n_out = {T * n_out} ids",
        )
    if e.size != _tables_size(L, n_ids):
        raise _fail(
            "ELSH_FMT_SIZE",
            f"{what} is {e.size} bytes, expected {_tables_size(L, n_ids)} for {n_ids} ids",
        )
    used = 4 * (T * B + 1) + 2 * n_ids
    if any(data[e.offset + used : e.offset + e.size]):
        raise _fail("ELSH_FMT_TABLES", f"{what}: the padding after the ids is not zero")
    if offsets[0] != 0:
        raise _fail("ELSH_FMT_TABLES", f"{what}: offsets[0] is {offsets[0]}, expected 0")
    for t in range(T):
        seg = offsets[t * B : (t + 1) * B + 1]
        steps = np.diff(seg)
        if (steps < 0).any():
            i = t * B + _first(steps < 0)
            raise _fail(
                "ELSH_FMT_TABLES",
                f"{what}: offsets decrease at {i + 1} ({offsets[i]} -> {offsets[i + 1]})",
            )
        if seg[-1] - seg[0] > n_out:
            raise _fail(
                "ELSH_FMT_TABLES",
                f"{what}: table {t} holds {seg[-1] - seg[0]} ids, more than n_out = {n_out}",
            )
    ids = _array(data, e, "<u2", n_ids, 4 * (T * B + 1))
    if ids.size and int(ids.max()) >= n_out:
        f = _first(ids >= n_out)
        raise _fail(
            "ELSH_FMT_TABLES",
            f"{what}: id {int(ids[f])} at position {f} is not below n_out = {n_out}",
        )
    L.table_offsets = offsets.astype(np.uint32)
    L.table_ids = ids


def _bind_membership(data: bytes, e: _Entry, L: QLayer, li: int) -> None:
    """Read MEMBERSHIP: L rows of ceil(n_out / 8) bytes, no bit set past n_out."""
    row = (L.n_out + 7) // 8
    raw = _array(data, e, "u1", L.n_tables * row).reshape(L.n_tables, row)
    bits = np.unpackbits(raw, axis=1, bitorder="little")
    spare = bits[:, L.n_out :]
    if spare.any():
        row_bad = _first(np.asarray(spare.any(axis=1)))
        raise _fail(
            "ELSH_FMT_TABLES",
            f"MEMBERSHIP of layer {li}: row {row_bad} sets a bit past n_out = {L.n_out}",
        )
    members = bits[:, : L.n_out].astype(bool)
    L.membership = None if members.all() else members


def _check_tables_attach(L: QLayer, li: int) -> None:
    """No id twice within a table; the membership is then what the tables hold."""
    assert L.table_ids is not None and L.table_offsets is not None
    B = 1 << L.bits
    starts = L.table_offsets[np.arange(L.n_tables + 1) * B].astype(np.int64)
    members = np.zeros((L.n_tables, L.n_out), dtype=bool)
    for t in range(L.n_tables):
        ids = L.table_ids[starts[t] : starts[t + 1]].astype(np.int64)
        if np.unique(ids).size != ids.size:
            raise _fail(
                "ELSH_FMT_TABLES", f"TABLES of layer {li}: table {t} holds some neuron twice"
            )
        members[t, ids] = True
    L.membership = None if members.all() else members


_WHY_MISSING = {
    HASH_COEF: " (hash_source = 1)",
    PAD_ORDER: " (hash_source = 1)",
    CENTER: " (center = 1)",
    TABLES: " (header flag bit 0: tables stored)",
}
_WHY_UNEXPECTED = {
    HASH_COEF: "its hash functions come from the seed, or it is dense",
    PAD_ORDER: "its padding order comes from the seed, or it is dense",
    CENTER: "it is not centered",
    TABLES: "the header does not flag stored tables, or it is dense",
}


def _bind_layer(
    data: bytes, known: dict[tuple[int, int], _Entry], L: QLayer, li: int, tables_flag: bool
) -> None:
    """Read layer li's sections with the checks of the C reader's bind_layer, in its order."""
    core = {t: known.get((t, li)) for t in (WEIGHTS, BIAS, REQUANT)}
    for t, e in core.items():
        if e is None:
            raise _fail("ELSH_FMT_MISSING", f"no {_name(t)} section for layer {li}")
    got: dict[int, _Entry] = {t: e for t, e in core.items() if e is not None}
    for t, e in got.items():
        if e.size != _expected_size(t, L):
            raise _fail(
                "ELSH_FMT_SIZE",
                f"{_name(t)} of layer {li} is {e.size} bytes, expected {_expected_size(t, L)}",
            )
    wtype = "<i2" if L.weight_bits == 16 else "i1"
    L.weights = _array(data, got[WEIGHTS], wtype, L.n_out * L.n_in).reshape(L.n_out, L.n_in)
    L.bias = _array(data, got[BIAS], "<i4", L.n_out)
    L.multiplier = _array(data, got[REQUANT], "<i4", L.n_out)
    L.shift = _array(data, got[REQUANT], "i1", L.n_out, 4 * L.n_out)
    bad = (L.multiplier < 0) | (L.shift < -31) | (L.shift > 30)
    if bad.any():
        j = _first(bad)
        raise _fail(
            "ELSH_FMT_QUANT",
            f"REQUANT of layer {li}: neuron {j} has multiplier {int(L.multiplier[j])} and "
            f"shift {int(L.shift[j])}; expected 0..2^31-1 and -31..30",
        )

    if (MEMBERSHIP, li) in known and (not L.use_lsh or tables_flag):
        raise _fail(
            "ELSH_FMT_UNEXPECTED",
            f"MEMBERSHIP section for layer {li}, but "
            + ("it is dense" if not L.use_lsh else "its stored tables already say who is in them"),
        )
    need = {
        HASH_COEF: L.use_lsh and L.hash_source == 1,
        PAD_ORDER: L.use_lsh and L.hash_source == 1,
        CENTER: L.use_lsh and L.center,
        TABLES: L.use_lsh and tables_flag,
    }
    extra = [t for t, n in need.items() if not n and (t, li) in known]
    if extra:
        t = extra[0]
        raise _fail(
            "ELSH_FMT_UNEXPECTED", f"{_name(t)} section for layer {li}, but {_WHY_UNEXPECTED[t]}"
        )
    for t, n in need.items():
        if n and (t, li) not in known:
            raise _fail(
                "ELSH_FMT_MISSING", f"no {_name(t)} section for layer {li}{_WHY_MISSING[t]}"
            )
    sec = {t: known[(t, li)] for t, n in need.items() if n}

    def size_ok(*types: int) -> None:
        for t in types:
            if sec[t].size != _expected_size(t, L):
                raise _fail(
                    "ELSH_FMT_SIZE",
                    f"{_name(t)} of layer {li} is {sec[t].size} bytes, expected "
                    f"{_expected_size(t, L)}",
                )

    if need[HASH_COEF]:
        size_ok(HASH_COEF, PAD_ORDER)
        _bind_hash(data, sec[HASH_COEF], sec[PAD_ORDER], L, li)
    if need[CENTER]:
        size_ok(CENTER)
        c = _array(data, sec[CENTER], "<i4", L.hash_dim)
        big = np.abs(c.astype(np.int64)) > MAX_CENTER
        if big.any():
            g = _first(big)
            raise _fail(
                "ELSH_FMT_HASH",
                f"CENTER of layer {li}: center[{g}] is {int(c[g])}, expected |center| <= 2^24",
            )
        L.center_q = c
    if need[TABLES]:
        _bind_tables(data, sec[TABLES], L, li)
    me = known.get((MEMBERSHIP, li))
    if me is not None:
        if me.size != _expected_size(MEMBERSHIP, L):
            raise _fail(
                "ELSH_FMT_SIZE",
                f"MEMBERSHIP of layer {li} is {me.size} bytes, expected "
                f"{_expected_size(MEMBERSHIP, L)}",
            )
        _bind_membership(data, me, L, li)


def _parse(data: bytes, *, build_tables: bool = True) -> QModel:
    """Validate and read a file, in the order of the C reader (elsh_model_open, then the
    checks of elsh_model_attach), so that both report the same code for a broken file."""
    nsec, sto, fbytes, hflags = _check_header(data)
    data = data[:fbytes]
    entries = _section_table(data, nsec, sto, fbytes)
    known = {(e.type, e.layer): e for e in entries if e.type in SECTION_NAMES}

    net = known.get((NET, NO_LAYER))
    if net is None:
        raise _fail("ELSH_FMT_MISSING", "no NET section (type 1, layer 0xFFFFFFFF)")
    if net.size != _NET.size:
        raise _fail("ELSH_FMT_SIZE", f"NET is {net.size} bytes, expected {_NET.size}")
    n_in, n_layers, n_classes, inv, seed = _check_net(data[net.offset : net.offset + net.size])
    for e in entries:
        if e.type in SECTION_NAMES and e.type not in NETWORK_SECTIONS and e.layer >= n_layers:
            raise _fail(
                "ELSH_FMT_UNEXPECTED",
                f"section {e.pos}: {_name(e.type)} for layer {e.layer}, but the network has "
                f"{n_layers} layers",
            )

    tables_flag = bool(hflags & HEADER_FLAG_TABLES)
    layers: list[QLayer] = []
    fan_in = n_in
    for li in range(n_layers):
        le = known.get((LAYER, li))
        if le is None:
            raise _fail("ELSH_FMT_MISSING", f"no LAYER section for layer {li}")
        if le.size != _LAYER.size:
            raise _fail("ELSH_FMT_SIZE", f"LAYER {li} is {le.size} bytes, expected {_LAYER.size}")
        L = _check_layer(
            li,
            data[le.offset : le.offset + le.size],
            fan_in,
            n_layers,
            n_classes,
            layers[-1] if layers else None,
            tables_flag,
        )
        _bind_layer(data, known, L, li, tables_flag)
        layers.append(L)
        fan_in = L.n_out

    for li, L in enumerate(layers):  # the checks and work of elsh_model_attach
        if not L.use_lsh:
            continue
        if L.hash_source == 0:
            _regenerate_hash(L, seed, li)
        else:
            _check_hash_attach(L, li)
        if L.table_ids is not None:
            _check_tables_attach(L, li)
        elif build_tables:
            Q.layer_tables(L)

    info: dict[str, Any] | None = None
    ie = known.get((INFO, NO_LAYER))
    if ie is not None:
        try:
            parsed = json.loads(data[ie.offset : ie.offset + ie.size].decode("utf-8"))
            info = parsed if isinstance(parsed, dict) else {"value": parsed}
        except (UnicodeDecodeError, ValueError):
            info = None  # INFO is never needed; a broken one is ignored
    return QModel(
        n_in=n_in,
        n_classes=n_classes,
        input_inv_scale=inv,
        seed=seed,
        layers=layers,
        info=info,
    )


Source = Union[str, os.PathLike, bytes, bytearray, memoryview]


def _load(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    return Path(source).read_bytes()


def read_elsh(source: Source) -> QModel:
    """Read and validate an .elsh file (a path, or the file's bytes). Raises ElshFormatError
    with the FORMAT.md rule code for anything wrong. Without stored tables, the canonical
    tables are built."""
    return _parse(_load(source))


def _file_bytes(source: QModel | Source, tables: bool) -> bytes:
    if isinstance(source, QModel):
        return elsh_bytes(source, tables=tables)
    return _load(source)


def section_sizes(source: QModel | Source, tables: bool = True) -> list[dict[str, Any]]:
    """The section table of a file (or of the file `elsh_bytes(model, tables)` would write):
    one dict per section with name, type, layer (None for the network), offset, size, required.
    The header and the section table are checked first (ElshFormatError)."""
    data = _file_bytes(source, tables)
    nsec, sto, fbytes, _ = _check_header(data)
    out = []
    for e in _section_table(data, nsec, sto, fbytes):
        out.append(
            {
                "name": _name(e.type),
                "type": e.type,
                "layer": None if e.layer == NO_LAYER else e.layer,
                "offset": e.offset,
                "size": e.size,
                "required": bool(e.flags & FLAG_REQUIRED),
            }
        )
    return out


def describe(source: QModel | Source, tables: bool = True) -> dict[str, Any]:
    """A JSON-ready summary of a model file (or of the file a QModel would make): network
    fields, per layer its shape, quantization and hash configuration, and bytes per section."""
    data = _file_bytes(source, tables)
    qm = _parse(data, build_tables=False)
    sections = section_sizes(data)
    _, vmaj, vmin, _, _, _, _, fbytes, _, hflags, _ = _HEADER.unpack(data[:HEADER_BYTES])
    layers = []
    for li, L in enumerate(qm.layers):
        d: dict[str, Any] = {
            "n_in": L.n_in,
            "n_out": L.n_out,
            "k": L.k,
            "output": L.is_output,
            "lsh": L.use_lsh,
            "weight_bits": L.weight_bits,
            "in_zero_point": L.in_zero_point,
            "out_zero_point": L.out_zero_point,
            "in_scale": L.in_scale,
            "out_scale": L.out_scale,
            "bytes": sum(s["size"] for s in sections if s["layer"] == li),
        }
        if L.use_lsh:
            d["hash"] = {
                "family": hashgen.FAMILY_NAMES[L.family],
                "bits": L.bits,
                "tables": L.n_tables,
                "select": "union" if L.select_mode == Q.SELECT_UNION else "topk",
                "source": "explicit" if L.hash_source else "seed",
                "center": L.center,
                "pool": L.pool,
                "hash_dim": L.hash_dim,
                "ternary_nnz": L.ternary_nnz,
                "dwta_bin": L.dwta_bin,
                "dwta_per_table": L.dwta_per_table,
                "member_fraction": float(L.member_mask().mean()),
            }
        layers.append(d)
    by_type: dict[str, int] = {}
    for s in sections:
        by_type[s["name"]] = by_type.get(s["name"], 0) + s["size"]
    return {
        "format": f"elsh {vmaj}.{vmin}",
        "file_bytes": fbytes,
        "n_in": qm.n_in,
        "n_classes": qm.n_classes,
        "n_layers": qm.n_layers,
        "seed": qm.seed,
        "input_inv_scale": qm.input_inv_scale,
        "input_zero_point": qm.input_zero_point,
        "tables_stored": bool(hflags & HEADER_FLAG_TABLES),
        "layers": layers,
        "sections": sections,
        "bytes_by_section": by_type,
        "info": qm.info,
    }
