"""The byte layout of an ``.elsh`` file (export/FORMAT.md sections 2-5): magic, version,
header and section-entry records, section types, and the work limits that keep any file from
making a reader hang or ask for memory out of proportion to its size (the per-layer limits of
5.1 and the per-file totals of 5.8, the same constants as native/include/edge_lsh.h). Shared
by the writer, the reader and the description."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from edge_lsh.oracle import hashgen
from edge_lsh.oracle.qmodel import QLayer

MAGIC = b"ELSH\r\n\x1a\n"
VERSION_MAJOR = 1
VERSION_MINOR = 2  # the newest minor this package reads and writes (1.1: PREPROCESS, 1.2: state)
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
# Per-file totals (FORMAT.md 5.8): at most max(BASE, PER_BYTE * file_bytes) each; edge_lsh.h's
# ELSH_LIMIT_* (tests/test_hostile_caps.py checks that the two agree).
LIMIT_ARENA_BASE = 2**25  # bytes of arena elsh_model_attach needs
LIMIT_ARENA_PER_BYTE = 16
LIMIT_INPUT_WORK_BASE = 2**25  # operations per input, every neuron computed
LIMIT_INPUT_WORK_PER_BYTE = 16
LIMIT_LOAD_WORK_BASE = 2**25  # operations at attach: hash functions drawn, tables built
LIMIT_LOAD_WORK_PER_BYTE = 1024
ARENA_ALIGN = 64  # every buffer of the arena starts at a multiple of this (C: ELSH_ARENA_ALIGN)

(
    NET,
    LAYER,
    WEIGHTS,
    BIAS,
    REQUANT,
    HASH_COEF,
    PAD_ORDER,
    CENTER,
    TABLES,
    INFO,
    MEMBERSHIP,
    PREPROCESS,
    TRAIN_STATE,
    LAYER_STATE,
) = range(1, 15)
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
    PREPROCESS: "PREPROCESS",
    TRAIN_STATE: "TRAIN_STATE",
    LAYER_STATE: "LAYER_STATE",
}
NETWORK_SECTIONS = (NET, INFO, PREPROCESS, TRAIN_STATE)
# the first minor version that knows each type (a file using one says at least that minor)
SECTION_MINOR = {PREPROCESS: 1, TRAIN_STATE: 2, LAYER_STATE: 2}


def section_name(t: int) -> str:
    """A section type's name in FORMAT.md, or "type N" for one this reader does not know."""
    return SECTION_NAMES.get(t, f"type {t}")


HEADER_STRUCT = struct.Struct("<8sHHIIIQQII16s")
ENTRY_STRUCT = struct.Struct("<IIQQII")
NET_STRUCT = struct.Struct("<IIIfQ8s")
LAYER_STRUCT = struct.Struct("<IIIBBBBBBBBHHHHHHiiff16s")
PREPROCESS_STRUCT = struct.Struct("<fffI")  # input_divisor, input_min, input_max, reserved
# TRAIN_STATE (4.2): optimizer, train_layers, momentum_q15, reserved, steps, prng[4], seed, reserved
TRAIN_STATE_STRUCT = struct.Struct("<IIiIQ4IQ16s")
# LAYER_STATE header: frac_bits, grad_exp, lr_w, lr_w_shift, lr_b, lr_b_shift, reserved
LAYER_STATE_STRUCT = struct.Struct("<iiiiii8s")
assert TRAIN_STATE_STRUCT.size == 64 and LAYER_STATE_STRUCT.size == 32
assert HEADER_STRUCT.size == HEADER_BYTES and ENTRY_STRUCT.size == ENTRY_BYTES
NET_STRUCT_BYTES = 32
LAYER_STRUCT_BYTES = 64
assert NET_STRUCT.size == NET_STRUCT_BYTES and LAYER_STRUCT.size == LAYER_STRUCT_BYTES
assert PREPROCESS_STRUCT.size == 16


def le_bytes(a: np.ndarray, dtype: str) -> bytes:
    """The little-endian bytes of a as dtype."""
    return np.ascontiguousarray(a, dtype=np.dtype(dtype)).tobytes()


def layer_state_bytes(n_in: int, n_out: int, optimizer: int, momentum_q15: int) -> int:
    """Bytes of a LAYER_STATE section (FORMAT.md 4.2): the header, the int16 masters padded to
    4 bytes, then velocities (momentum > 0) and Adagrad sums (optimizer 1), 4 bytes each."""
    nw = n_in * n_out
    b = LAYER_STATE_STRUCT.size + (2 * nw + 3) // 4 * 4
    if momentum_q15 > 0:
        b += 4 * (nw + n_out)
    if optimizer == 1:
        b += 4 * (nw + n_out)
    return b


def align_up(n: int) -> int:
    """n rounded up to the section alignment (64)."""
    return (n + ALIGN - 1) // ALIGN * ALIGN


# ----------------------------------------------------------------------------- work limits


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


def layer_work(L: QLayer, tables_stored: bool) -> tuple[int, int]:
    """A layer's share of a file's totals (FORMAT.md 5.8): (operations per input, operations at
    attach). Per input: every neuron's dot product n_in * n_out and, for an LSH layer, pooling
    n_in, hashing (hash_work) and the table entries scanned, L * n_out at most. At attach: the
    draws of hash functions from the seed (draw_work, hash_source 0) and building the tables
    when the file stores none, 2 * n_out * (hash_work + n_in)."""
    if not L.use_lsh:
        return L.n_in * L.n_out, 0
    args = (L.family, L.n_tables, L.bits, L.hash_dim, L.ternary_nnz, L.dwta_bin, L.dwta_per_table)
    hw = hash_work(*args)
    per_input = L.n_in * L.n_out + L.n_in + hw + L.n_tables * L.n_out
    load = (draw_work(*args) if L.hash_source == 0 else 0) + (
        0 if tables_stored else 2 * L.n_out * (hw + L.n_in)
    )
    return per_input, load


def layer_arena(L: QLayer, tables_stored: bool) -> list[int]:
    """The byte sizes of a layer's arena buffers, in the C reader's order (model_io.c layout):
    input minus zero point, active ids, outputs, logits (output layer); for an LSH layer the
    hashing and selection scratch, the hash functions and padding order drawn from the seed
    (hash_source 0) and the tables built at attach (none stored)."""
    n_in, n_out, T = L.n_in, L.n_out, L.n_tables
    out = [2 * n_in, 4 * n_out, n_out] + ([4 * n_out] if L.is_output else [])
    if not L.use_lsh:
        return out
    out += [4 * L.hash_dim, 4 * T, 4 * (T + 1), 2 * n_out, 2 * (n_out + 1)]
    if L.hash_source == 0:
        if L.family == hashgen.SIMHASH:
            out.append(T * L.bits * L.hash_dim)
        elif L.family == hashgen.TERNARY:
            out += [2 * T * L.bits * L.ternary_nnz, T * L.bits * L.ternary_nnz]
        else:
            out.append(2 * T * L.dwta_per_table * L.dwta_bin)
        out.append(2 * n_out)
    if not tables_stored:
        out += [4 * (T * (1 << L.bits) + 1), 2 * T * n_out]
    return out


def arena_bytes(n_in: int, buffers: list[int]) -> int:
    """The arena elsh_model_open asks for: the network input (n_in bytes), then each buffer
    at the next multiple of ARENA_ALIGN, in order; the end of the last one."""
    used = n_in
    for size in buffers:
        used = -(-used // ARENA_ALIGN) * ARENA_ALIGN + size
    return used


def file_totals(layers: Sequence[QLayer], n_in: int, tables_stored: bool) -> dict[str, int]:
    """A file's totals (FORMAT.md 5.8), as elsh_model_open computes them: the arena in bytes,
    the operations per input and the operations at load, summed over its layers."""
    buffers: list[int] = []
    per_input = load = 0
    for L in layers:
        buffers += layer_arena(L, tables_stored)
        i, a = layer_work(L, tables_stored)
        per_input, load = per_input + i, load + a
    return {"arena": arena_bytes(n_in, buffers), "input": per_input, "load": load}


def file_limit(base: int, per_byte: int, file_bytes: int) -> int:
    """The most a file of file_bytes may ask for: max(base, per_byte * file_bytes)."""
    return max(base, per_byte * file_bytes)
