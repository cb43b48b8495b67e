"""Reading ``.elsh`` files: every "must" rule of export/FORMAT.md checked, in the order of the
C reader (native/src/model_io.c: open, then attach), so that both report the same code for a
broken file.

    read_elsh(path_or_bytes) -> QModel     raises ElshFormatError(code, message)

The reader never trusts a size or an index before checking it. When a file has no TABLES, the
canonical tables are built from the weights and the MEMBERSHIP bits
(``edge_lsh.oracle.qmodel.canonical_tables``), so a model read with or without stored tables is
the same. Like the C reader, it reads the first file_bytes bytes of a longer buffer and ignores
the rest.
"""

from __future__ import annotations

import bisect
import math
import os
import zlib
from pathlib import Path
from typing import Any, NamedTuple, Union

import numpy as np

from edge_lsh.errors import ElshFormatError
from edge_lsh.fileio import loads_json
from edge_lsh.format.layout import (
    ALIGN,
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
    LIMIT_ARENA_BASE,
    LIMIT_ARENA_PER_BYTE,
    LIMIT_INPUT_WORK_BASE,
    LIMIT_INPUT_WORK_PER_BYTE,
    LIMIT_LOAD_WORK_BASE,
    LIMIT_LOAD_WORK_PER_BYTE,
    MAGIC,
    MAX_BITS,
    MAX_BUILD_WORK,
    MAX_CENTER,
    MAX_DRAW_WORK,
    MAX_HASH_WORK,
    MAX_LAYERS,
    MAX_SCAN_WORK,
    MAX_SECTIONS,
    MAX_TABLES,
    MAX_WIDTH,
    MEMBERSHIP,
    NET,
    NET_STRUCT,
    NETWORK_SECTIONS,
    NO_LAYER,
    PAD_ORDER,
    PREPROCESS,
    PREPROCESS_STRUCT,
    REQUANT,
    SECTION_NAMES,
    TABLES,
    TRAIN_STATE,
    TRAIN_STATE_STRUCT,
    VERSION_MAJOR,
    WEIGHTS,
    draw_work,
    file_limit,
    file_totals,
    hash_work,
    layer_state_bytes,
    section_name,
)
from edge_lsh.oracle import hashgen
from edge_lsh.oracle.qmodel import (
    SELECT_TOPK,
    SELECT_UNION,
    LayerState,
    QLayer,
    QModel,
    TrainState,
    layer_tables,
)


class Entry(NamedTuple):
    pos: int
    type: int
    layer: int
    offset: int
    size: int
    flags: int


def _fail(code: str, message: str) -> ElshFormatError:
    return ElshFormatError(code, message)


def _where(t: int, layer: int) -> str:
    return section_name(t) if layer == NO_LAYER else f"{section_name(t)} of layer {layer}"


def check_header(data: bytes) -> tuple[int, int, int, int]:
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
    (_, vmaj, vmin, order, hbytes, nsec, sto, fbytes, crc, flags, reserved) = HEADER_STRUCT.unpack(
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


def section_table(data: bytes, nsec: int, sto: int, fbytes: int) -> list[Entry]:
    """Every entry, checked in the C reader's order (model_io.c read_sections): flags and
    reserved field, alignment, inside the file after the table; then against each earlier
    entry in turn, no overlap and no repeat of its (type, layer), known type or not; then no
    unknown required type and a layer field that fits the type. Unknown optional sections are
    included (callers skip them). Linear-logarithmic in the entries (the C compares pairs)."""
    data_start = sto + ENTRY_BYTES * nsec
    entries: list[Entry] = []
    seen: dict[tuple[int, int], int] = {}  # (type, layer) -> the entry that has it
    # the non-empty sections so far, by offset: they do not overlap, so ends ascend too
    starts: list[int] = []
    ends: list[int] = []
    owners: list[int] = []
    for i in range(nsec):
        t, layer, off, size, flags, reserved = ENTRY_STRUCT.unpack_from(data, sto + ENTRY_BYTES * i)
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
        # the earliest earlier entry that this one overlaps or repeats: the C compares the
        # entry with entries 0, 1, ... in turn, overlap first, and stops at the first problem
        lo = bisect.bisect_right(ends, off) if size else 0
        hi = bisect.bisect_left(starts, off + size) if size else 0
        overlap = min(owners[lo:hi]) if lo < hi else None
        repeat = seen.get((t, layer))
        if overlap is not None and (repeat is None or overlap <= repeat):
            o = entries[overlap]
            raise _fail(
                "ELSH_FMT_BOUNDS",
                f"{what} (bytes {off}..{off + size}) overlaps section {o.pos} "
                f"({_where(o.type, o.layer)}, bytes {o.offset}..{o.offset + o.size})",
            )
        if repeat is not None:
            raise _fail(
                "ELSH_FMT_DUPLICATE",
                f"{what} repeats section {repeat}'s type and layer (at most one section of each "
                "type and layer, known type or not)",
            )
        entry = Entry(i, t, layer, off, size, flags)
        if t not in SECTION_NAMES:
            if flags & FLAG_REQUIRED:
                raise _fail(
                    "ELSH_FMT_UNKNOWN_REQUIRED",
                    f"{what} has a type this reader does not know and is marked required",
                )
        elif t in NETWORK_SECTIONS and layer != NO_LAYER:
            raise _fail(
                "ELSH_FMT_UNEXPECTED",
                f"{what}: {section_name(t)} belongs to the whole network; its layer must be "
                "0xFFFFFFFF",
            )
        elif t not in NETWORK_SECTIONS and layer >= MAX_LAYERS:
            raise _fail(
                "ELSH_FMT_UNEXPECTED", f"{what}: layer {layer} is beyond the {MAX_LAYERS} allowed"
            )
        seen[(t, layer)] = i
        entries.append(entry)  # an unknown type: a later minor version's, skipped by callers
        if size:
            k = bisect.bisect_left(starts, off)
            starts.insert(k, off)
            ends.insert(k, off + size)
            owners.insert(k, i)
    return entries


def _f32_ok(v: float) -> bool:
    return math.isfinite(v) and v > 0


def _check_net(payload: bytes) -> tuple[int, int, int, float, int]:
    n_in, n_layers, n_classes, inv, seed, reserved = NET_STRUCT.unpack(payload)

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


def _check_preprocess(payload: bytes) -> tuple[float, float, float]:
    """PREPROCESS (FORMAT.md 4.1): divisor finite and > 0, min and max finite, min <= max,
    reserved zero; bad values are ELSH_FMT_NET as in the C reader."""
    divisor, lo, hi, reserved = PREPROCESS_STRUCT.unpack(payload)

    def bad(msg: str) -> ElshFormatError:
        return _fail("ELSH_FMT_NET", f"PREPROCESS: {msg}")

    if not _f32_ok(divisor):
        raise bad(f"input_divisor is {divisor}, expected a finite number > 0")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise bad(f"input range is [{lo}, {hi}], expected finite numbers")
    if not lo <= hi:
        raise bad(f"input_min {lo} is above input_max {hi}")
    if reserved:
        raise bad("reserved bytes 12..15 are not zero")
    return divisor, lo, hi


def _check_totals(layers: list[QLayer], n_in: int, tables_flag: bool, fbytes: int) -> None:
    """The file's totals against its size (FORMAT.md 5.8), as the C reader checks them at the
    end of elsh_model_open: the arena, the work per input and the work at attach."""
    totals = file_totals(layers, n_in, tables_flag)
    per_input, load = totals["input"], totals["load"]
    checks = (
        (
            f"an arena of {totals['arena']} bytes",
            totals["arena"],
            LIMIT_ARENA_BASE,
            LIMIT_ARENA_PER_BYTE,
            "store the tables (read in place, not built), or use fewer tables or bits",
        ),
        (
            f"{per_input} operations per input",
            per_input,
            LIMIT_INPUT_WORK_BASE,
            LIMIT_INPUT_WORK_PER_BYTE,
            "use fewer tables, bits or neurons",
        ),
        (
            f"{load} operations at load",
            load,
            LIMIT_LOAD_WORK_BASE,
            LIMIT_LOAD_WORK_PER_BYTE,
            "store the tables and the hash functions",
        ),
    )
    for what, value, base, per_byte, fix in checks:
        limit = file_limit(base, per_byte, fbytes)
        if value > limit:
            raise _fail(
                "ELSH_FMT_LIMITS",
                f"the model asks for {what}, more than a {fbytes}-byte file may: "
                f"max(2^{base.bit_length() - 1}, {per_byte} * file_bytes) = {limit} "
                f"(FORMAT.md 5.8 work limits; {fix})",
            )


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
    ) = LAYER_STRUCT.unpack(payload)

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
        if select_mode not in (SELECT_TOPK, SELECT_UNION):
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


def _array(data: bytes, e: Entry, dtype: str, count: int, start: int = 0) -> np.ndarray:
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


def _bind_hash(data: bytes, hc: Entry, po: Entry, L: QLayer, li: int) -> None:
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
        simhash_as_int8=True,
    )
    if L.family == hashgen.SIMHASH:
        L.proj = g["proj"]
    elif L.family == hashgen.TERNARY:
        L.tern_idx, L.tern_sign = g["tern_idx"], g["tern_sign"]
    else:
        L.dwta_idx = g["dwta_idx"]
    L.pad_order = g["pad_order"]


def _bind_tables(data: bytes, e: Entry, L: QLayer, li: int) -> None:
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


def _bind_membership(data: bytes, e: Entry, L: QLayer, li: int) -> None:
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
    data: bytes, known: dict[tuple[int, int], Entry], L: QLayer, li: int, tables_flag: bool
) -> None:
    """Read layer li's sections with the checks of the C reader's bind_layer, in its order."""
    core = {t: known.get((t, li)) for t in (WEIGHTS, BIAS, REQUANT)}
    for t, e in core.items():
        if e is None:
            raise _fail("ELSH_FMT_MISSING", f"no {section_name(t)} section for layer {li}")
    got: dict[int, Entry] = {t: e for t, e in core.items() if e is not None}
    for t, e in got.items():
        if e.size != _expected_size(t, L):
            raise _fail(
                "ELSH_FMT_SIZE",
                f"{section_name(t)} of layer {li} is {e.size} bytes, expected "
                f"{_expected_size(t, L)}",
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
            "ELSH_FMT_UNEXPECTED",
            f"{section_name(t)} section for layer {li}, but {_WHY_UNEXPECTED[t]}",
        )
    for t, n in need.items():
        if n and (t, li) not in known:
            raise _fail(
                "ELSH_FMT_MISSING", f"no {section_name(t)} section for layer {li}{_WHY_MISSING[t]}"
            )
    sec = {t: known[(t, li)] for t, n in need.items() if n}

    def size_ok(*types: int) -> None:
        for t in types:
            if sec[t].size != _expected_size(t, L):
                raise _fail(
                    "ELSH_FMT_SIZE",
                    f"{section_name(t)} of layer {li} is {sec[t].size} bytes, expected "
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


def parse(data: bytes, *, build_tables: bool = True, hash_functions: bool = True) -> QModel:
    """Validate and read a file, in the order of the C reader (elsh_model_open, then the
    checks of elsh_model_attach), so that both report the same code for a broken file.

    The work is bounded as in C (FORMAT.md work limits, checked per LAYER before any of it).
    With hash_functions=False the hash functions of seeded layers (hash_source = 0) are not
    drawn (their arrays stay None, and no tables are built): enough to describe a file, as
    nothing drawn from a seed can break a rule."""
    if not hash_functions:
        build_tables = False
    nsec, sto, fbytes, hflags = check_header(data)
    data = data[:fbytes]
    entries = section_table(data, nsec, sto, fbytes)
    known = {(e.type, e.layer): e for e in entries if e.type in SECTION_NAMES}

    net = known.get((NET, NO_LAYER))
    if net is None:
        raise _fail("ELSH_FMT_MISSING", "no NET section (type 1, layer 0xFFFFFFFF)")
    if net.size != NET_STRUCT.size:
        raise _fail("ELSH_FMT_SIZE", f"NET is {net.size} bytes, expected {NET_STRUCT.size}")
    n_in, n_layers, n_classes, inv, seed = _check_net(data[net.offset : net.offset + net.size])
    preprocess = None
    pe = known.get((PREPROCESS, NO_LAYER))
    if pe is not None:
        if pe.size != PREPROCESS_STRUCT.size:
            raise _fail(
                "ELSH_FMT_SIZE", f"PREPROCESS is {pe.size} bytes, expected {PREPROCESS_STRUCT.size}"
            )
        preprocess = _check_preprocess(data[pe.offset : pe.offset + pe.size])
    for e in entries:
        if e.type in SECTION_NAMES and e.type not in NETWORK_SECTIONS and e.layer >= n_layers:
            raise _fail(
                "ELSH_FMT_UNEXPECTED",
                f"section {e.pos}: {section_name(e.type)} for layer {e.layer}, but the network has "
                f"{n_layers} layers",
            )

    tables_flag = bool(hflags & HEADER_FLAG_TABLES)
    layers: list[QLayer] = []
    fan_in = n_in
    for li in range(n_layers):
        le = known.get((LAYER, li))
        if le is None:
            raise _fail("ELSH_FMT_MISSING", f"no LAYER section for layer {li}")
        if le.size != LAYER_STRUCT.size:
            raise _fail(
                "ELSH_FMT_SIZE", f"LAYER {li} is {le.size} bytes, expected {LAYER_STRUCT.size}"
            )
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
    _check_totals(layers, n_in, tables_flag, fbytes)
    train_state = _check_state(data, known, layers)

    for li, L in enumerate(layers):  # the checks and work of elsh_model_attach
        if not L.use_lsh:
            continue
        if L.hash_source == 0:
            if hash_functions:
                _regenerate_hash(L, seed, li)
        else:
            _check_hash_attach(L, li)
        if L.table_ids is not None:
            _check_tables_attach(L, li)
        elif build_tables:
            layer_tables(L)

    info: dict[str, Any] | None = None
    ie = known.get((INFO, NO_LAYER))
    if ie is not None:
        try:
            parsed = loads_json(data[ie.offset : ie.offset + ie.size])
            info = parsed if isinstance(parsed, dict) else {"value": parsed}
        except ValueError:
            info = None  # INFO is never needed; a broken (or too deep, or huge) one is ignored
    return QModel(
        n_in=n_in,
        n_classes=n_classes,
        input_inv_scale=inv,
        seed=seed,
        layers=layers,
        info=info,
        preprocess=preprocess,
        train_state=train_state,
    )


def _grad_exps(layers: list[QLayer]) -> list[int]:
    """train_q.c step 3: each layer's delta Q format, from the output layer down."""
    ge = [0] * len(layers)
    for li in range(len(layers) - 1, -1, -1):
        ms = int(np.max(layers[li].shift.astype(np.int64)))
        ge[li] = 8 - ms if li == len(layers) - 1 else ge[li + 1] - ms - 4
    return ge


def _check_state(
    data: bytes, known: dict[tuple[int, int], Entry], layers: list[QLayer]
) -> TrainState | None:
    """The trained state (FORMAT.md 4.2), in model_io.c's order (check_state, last at open):
    TRAIN_STATE's size and values, a LAYER_STATE for exactly the trainable layers, then from
    the output layer down each one's size, header, and masters, which must give the WEIGHTS."""
    n_layers = len(layers)
    te = known.get((TRAIN_STATE, NO_LAYER))
    if te is None:
        for li in range(n_layers):
            if (LAYER_STATE, li) in known:
                raise _fail("ELSH_FMT_UNEXPECTED", f"LAYER_STATE of layer {li} without TRAIN_STATE")
        return None
    if te.size != TRAIN_STATE_STRUCT.size:
        raise _fail(
            "ELSH_FMT_SIZE", f"TRAIN_STATE is {te.size} bytes, expected {TRAIN_STATE_STRUCT.size}"
        )
    opt, tl, mom, res1, steps, s0, s1, s2, s3, seed, res2 = TRAIN_STATE_STRUCT.unpack_from(
        data, te.offset
    )
    if (
        opt > 1
        or tl > n_layers
        or not 0 <= mom <= 32767
        or res1
        or not (s0 | s1 | s2 | s3)
        or any(res2)
    ):
        raise _fail(
            "ELSH_FMT_STATE",
            f"TRAIN_STATE: optimizer {opt} (0..1), train_layers {tl} (0..{n_layers}), momentum "
            f"{mom} (0..32767), a PRNG state not all zero and zero reserved bytes expected",
        )
    first = 0 if tl == 0 else n_layers - tl
    for li in range(n_layers):
        present = (LAYER_STATE, li) in known
        if li < first and present:
            raise _fail("ELSH_FMT_UNEXPECTED", f"LAYER_STATE of layer {li}, which does not train")
        if li >= first and not present:
            raise _fail("ELSH_FMT_MISSING", f"no LAYER_STATE for trainable layer {li}")
    ge = _grad_exps(layers)
    state = TrainState(opt, tl, mom, steps, (s0, s1, s2, s3), seed)
    for li in range(n_layers - 1, first - 1, -1):
        L = layers[li]
        e = known[(LAYER_STATE, li)]
        want = layer_state_bytes(L.n_in, L.n_out, opt, mom)
        if e.size != want:
            raise _fail(
                "ELSH_FMT_SIZE", f"LAYER_STATE of layer {li} is {e.size} bytes, expected {want}"
            )
        frac, gexp, lw, lws, lb, lbs, res = LAYER_STATE_STRUCT.unpack_from(data, e.offset)
        ok_rates = lw >= 0 and lb >= 0 and 0 <= lws <= 62 and 0 <= lbs <= 62
        if frac != (8 if L.weight_bits == 8 else 0) or gexp != ge[li] or not ok_rates or any(res):
            raise _fail(
                "ELSH_FMT_STATE",
                f"LAYER_STATE of layer {li}: frac_bits {frac}, grad_exp {gexp} (expected "
                f"{8 if L.weight_bits == 8 else 0}, {ge[li]}), rates and reserved bytes",
            )
        nw = L.n_in * L.n_out
        pos = e.offset + LAYER_STATE_STRUCT.size
        master = np.frombuffer(data, dtype="<i2", count=nw, offset=pos).astype(np.int64)
        w = L.weights.reshape(-1).astype(np.int64)
        derived = np.clip((master + 128) >> 8, -127, 127) if L.weight_bits == 8 else master
        bad = (master < -32767) | (derived != w)
        if bad.any():
            i = int(np.argmax(bad))
            raise _fail(
                "ELSH_FMT_STATE",
                f"LAYER_STATE of layer {li}: master {int(master[i])} at {i} does not give "
                f"weight {int(w[i])}",
            )
        pos += 2 * nw
        if (2 * nw) % 4 and any(data[pos : pos + 2]):
            raise _fail("ELSH_FMT_STATE", f"LAYER_STATE of layer {li}: padding bytes are not zero")
        pos += (2 * nw) % 4

        def take(dtype: str, count: int) -> np.ndarray:
            nonlocal pos
            a = np.frombuffer(data, dtype=dtype, count=count, offset=pos).astype(np.int64)
            pos += 4 * count
            return a

        ls = LayerState(frac, gexp, lw, lws, lb, lbs, master.reshape(L.n_out, L.n_in))
        if mom > 0:
            ls.vel_w = take("<i4", nw).reshape(L.n_out, L.n_in)
            ls.vel_b = take("<i4", L.n_out)
        if opt == 1:
            ls.acc_w = take("<u4", nw).reshape(L.n_out, L.n_in)
            ls.acc_b = take("<u4", L.n_out)
        state.layers[li] = ls
    return state


Source = Union[str, os.PathLike, bytes, bytearray, memoryview]


def load_bytes(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    return Path(source).read_bytes()


def read_elsh(source: Source) -> QModel:
    """Read and validate an .elsh file (a path, or the file's bytes). Raises ElshFormatError
    with the FORMAT.md rule code for anything wrong. Without stored tables, the canonical
    tables are built."""
    return parse(load_bytes(source))
