"""Writing ``.elsh`` files: a QModel's sections, laid out and checksummed (export/FORMAT.md).

    elsh_bytes(model, tables=True, info=None) -> bytes     the file's bytes, checked by reading
    write_elsh(path, model, tables=True, info=None)        written atomically

Low-level: ``Section`` and ``assemble(sections)`` lay out any list of sections as a file (the
writer uses them; tests use them to build files that break one rule at a time).
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from edge_lsh.fileio import atomic_write
from edge_lsh.format.layout import (
    BIAS,
    BYTE_ORDER,
    CENTER,
    ENTRY_BYTES,
    ENTRY_STRUCT,
    FLAG_REQUIRED,
    HASH_COEF,
    HEADER_BYTES,
    HEADER_FLAG_TABLES,
    HEADER_STRUCT,
    INFO,
    LAYER,
    LAYER_STATE,
    LAYER_STATE_STRUCT,
    LAYER_STRUCT,
    MAGIC,
    MEMBERSHIP,
    NET,
    NET_STRUCT,
    NO_LAYER,
    PAD_ORDER,
    PREPROCESS,
    PREPROCESS_STRUCT,
    REQUANT,
    SECTION_MINOR,
    TABLES,
    TRAIN_STATE,
    TRAIN_STATE_STRUCT,
    VERSION_MAJOR,
    WEIGHTS,
    align_up,
    le_bytes,
)
from edge_lsh.format.reader import parse
from edge_lsh.oracle import hashgen
from edge_lsh.oracle.qmodel import QLayer, QModel, canonical_tables


class Section(NamedTuple):
    """One section to lay out: type, layer (NO_LAYER for the network), payload, flags."""

    type: int
    layer: int
    payload: bytes
    flags: int = FLAG_REQUIRED


def assemble(
    sections: Sequence[Section],
    *,
    flags: int = 0,
    version: tuple[int, int] | None = None,
) -> bytes:
    """Lay out the sections in the given order (each at the next multiple of 64 after the
    section table, zero padding between) under a header with the CRC filled in. The version
    is by default 1.0, or the first minor that knows every section type used (1.1 with a
    PREPROCESS section), so that a file without the newer sections stays a 1.0 file."""
    if version is None:
        version = (VERSION_MAJOR, max([0] + [SECTION_MINOR.get(s.type, 0) for s in sections]))
    table_end = HEADER_BYTES + ENTRY_BYTES * len(sections)
    entries = []
    pos = table_end
    for s in sections:
        pos = align_up(pos)
        entries.append(ENTRY_STRUCT.pack(s.type, s.layer, pos, len(s.payload), s.flags, 0))
        pos += len(s.payload)
    file_bytes = pos if sections else table_end
    buf = bytearray(file_bytes)
    buf[HEADER_BYTES:table_end] = b"".join(entries)
    for s, e in zip(sections, entries):
        off = ENTRY_STRUCT.unpack(e)[2]
        buf[off : off + len(s.payload)] = s.payload
    header = HEADER_STRUCT.pack(
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
    return LAYER_STRUCT.pack(
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
    offsets, ids = canonical_tables(L)
    raw = le_bytes(offsets, "<u4") + le_bytes(ids, "<u2")
    return raw + bytes(-len(raw) % 4)


def _membership_payload(members: np.ndarray) -> bytes:
    """L rows of ceil(n_out / 8) bytes, bit (j mod 8) of byte j // 8 = neuron j is a member."""
    return np.packbits(members.astype(np.uint8), axis=1, bitorder="little").tobytes()


def model_sections(
    model: QModel, *, tables: bool = True, info: dict[str, Any] | None = None
) -> list[Section]:
    """The sections of a model in the writer's order: NET, every LAYER, then per layer
    WEIGHTS, BIAS, REQUANT, HASH_COEF, PAD_ORDER, CENTER, then TABLES (with tables) or
    MEMBERSHIP (without tables, when some table leaves a neuron out), then PREPROCESS (when the
    model has one, optional: FORMAT.md 4.1), then INFO."""
    out = [
        Section(
            NET,
            NO_LAYER,
            NET_STRUCT.pack(
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
        out.append(Section(WEIGHTS, li, le_bytes(L.weights, wtype)))
        out.append(Section(BIAS, li, le_bytes(L.bias, "<i4")))
        out.append(Section(REQUANT, li, le_bytes(L.multiplier, "<i4") + le_bytes(L.shift, "i1")))
        if not L.use_lsh:
            continue
        if L.hash_source == 1:
            assert L.pad_order is not None
            out.append(Section(HASH_COEF, li, hash_coef_bytes(L)))
            out.append(Section(PAD_ORDER, li, le_bytes(L.pad_order, "<u2")))
        if L.center:
            assert L.center_q is not None
            out.append(Section(CENTER, li, le_bytes(L.center_q, "<i4")))
        if tables:
            out.append(Section(TABLES, li, _tables_payload(L)))
        else:
            members = L.partial_membership()
            if members is not None:
                out.append(Section(MEMBERSHIP, li, _membership_payload(members)))
    if model.preprocess is not None:
        divisor, lo, hi = model.preprocess
        payload = PREPROCESS_STRUCT.pack(divisor, lo, hi, 0)
        out.append(Section(PREPROCESS, NO_LAYER, payload, 0))
    info = model.info if info is None else info
    if info is not None:
        text = json.dumps(info, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        out.append(Section(INFO, NO_LAYER, text.encode("utf-8"), 0))
    if model.train_state is not None:
        out += _state_sections(model)
    return out


def _state_sections(model: QModel) -> list[Section]:
    """TRAIN_STATE, then LAYER_STATE from the output layer down (FORMAT.md 4.2), optional:
    in the order elsh_qtrain_save appends them."""
    ts = model.train_state
    assert ts is not None
    out = [
        Section(
            TRAIN_STATE,
            NO_LAYER,
            TRAIN_STATE_STRUCT.pack(
                ts.optimizer,
                ts.train_layers,
                ts.momentum_q15,
                0,
                ts.steps,
                *ts.prng,
                ts.seed,
                bytes(16),
            ),
            0,
        )
    ]
    for li in sorted(ts.layers, reverse=True):
        s = ts.layers[li]
        raw = LAYER_STATE_STRUCT.pack(
            s.frac_bits, s.grad_exp, s.lr_w, s.lr_w_shift, s.lr_b, s.lr_b_shift, bytes(8)
        )
        m = le_bytes(s.master, "<i2")
        raw += m + bytes(-len(m) % 4)
        for a, dt in ((s.vel_w, "<i4"), (s.vel_b, "<i4"), (s.acc_w, "<u4"), (s.acc_b, "<u4")):
            if a is not None:
                raw += le_bytes(a, dt)
        out.append(Section(LAYER_STATE, li, raw, 0))
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
    back = parse(data, build_tables=False)
    if model.preprocess is not None and back.preprocess != tuple(
        float(np.float32(v)) for v in model.preprocess
    ):
        raise ValueError(f"preprocess {model.preprocess} does not survive writing (float32)")
    for li, (a, b) in enumerate(zip(model.layers, back.layers)):
        diff = a.first_difference(b)
        if diff:
            why = (
                " (hash_source = 0 stores only the seed: the layer's hash functions must be "
                "those edge_lsh.oracle.hashgen draws from it)"
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


def hash_coef_bytes(L: QLayer) -> bytes:
    """The HASH_COEF payload of this layer (hash_source = 1)."""
    if L.family == hashgen.SIMHASH:
        assert L.proj is not None
        return le_bytes(L.proj, "i1")
    if L.family == hashgen.TERNARY:
        assert L.tern_idx is not None and L.tern_sign is not None
        return le_bytes(L.tern_idx, "<u2") + le_bytes(L.tern_sign, "i1")
    assert L.dwta_idx is not None
    return le_bytes(L.dwta_idx, "<u2")
