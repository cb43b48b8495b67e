"""The byte layout of an ``.elsh`` file (export/FORMAT.md sections 2-5): magic, version,
header and section-entry records, section types, and the work limits that keep any file from
making a reader hang. Shared by the writer, the reader and the description."""

from __future__ import annotations

import struct

import numpy as np

from edge_lsh.oracle import hashgen

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


def section_name(t: int) -> str:
    """A section type's name in FORMAT.md, or "type N" for one this reader does not know."""
    return SECTION_NAMES.get(t, f"type {t}")


HEADER_STRUCT = struct.Struct("<8sHHIIIQQII16s")
ENTRY_STRUCT = struct.Struct("<IIQQII")
NET_STRUCT = struct.Struct("<IIIfQ8s")
LAYER_STRUCT = struct.Struct("<IIIBBBBBBBBHHHHHHiiff16s")
assert HEADER_STRUCT.size == HEADER_BYTES and ENTRY_STRUCT.size == ENTRY_BYTES
NET_STRUCT_BYTES = 32
LAYER_STRUCT_BYTES = 64
assert NET_STRUCT.size == NET_STRUCT_BYTES and LAYER_STRUCT.size == LAYER_STRUCT_BYTES


def le_bytes(a: np.ndarray, dtype: str) -> bytes:
    """The little-endian bytes of a as dtype."""
    return np.ascontiguousarray(a, dtype=np.dtype(dtype)).tobytes()


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
