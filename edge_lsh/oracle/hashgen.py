"""The hash functions and padding order of an LSH layer, regenerated from the network seed.

A pure-Python mirror of the C drawing code (``elsh_net_randomize`` and ``seed_stream`` in
native/src/net.c, ``elsh_hash_draw`` and ``draw_distinct`` in native/src/hash.c), as specified
in export/FORMAT.md section 5.4. With the same seed, layer index and shape it returns exactly
the arrays the float kernel has in its arena (``Network.layer_arrays``), which is what lets an
``.elsh`` file store only the seed (hash_source = 0) instead of the functions themselves.

    stream_seed(seed, layer, purpose)       the 64-bit PRNG seed of one layer's stream
    draw_hash(family, ..., rng)             the hash functions (float32 projections for SimHash)
    draw_pad_order(n_out, rng)              the padding permutation
    generate(seed, layer, family, ...)      both, from the network seed
    simhash_int8(proj)                      SimHash projections as stored in HASH_COEF
"""

from __future__ import annotations

import numpy as np

from edge_lsh.oracle.prng import MASK64, Prng, mix64

__all__ = [
    "SIMHASH",
    "TERNARY",
    "DWTA",
    "FAMILY_NAMES",
    "STREAM_HASH",
    "STREAM_PAD",
    "HashArrays",
    "stream_seed",
    "draw_distinct",
    "draw_hash",
    "draw_pad_order",
    "generate",
    "simhash_int8",
    "round_half_away",
    "log2_bin",
    "dwta_per_table",
    "default_ternary_nnz",
]

SIMHASH = 0
TERNARY = 1
DWTA = 2
FAMILY_NAMES = {SIMHASH: "simhash", TERNARY: "ternary", DWTA: "dwta"}

STREAM_HASH = 2  # seed_stream purposes in net.c
STREAM_PAD = 3

HashArrays = dict[str, np.ndarray]


def stream_seed(seed: int, layer: int, purpose: int) -> int:
    """seed_stream(): the PRNG seed mix64(seed ^ (purpose << 32)) ^ (layer + 1), mod 2^64."""
    return (mix64((seed ^ (purpose << 32)) & MASK64) ^ (layer + 1)) & MASK64


def draw_distinct(rng: Prng, n: int, k: int) -> list[int]:
    """k distinct values in [0, n): draw below(n) until it differs from those drawn so far."""
    if k > n:
        raise ValueError(f"cannot draw {k} distinct values from {n}")
    out: list[int] = []
    while len(out) < k:
        c = rng.below(n) & 0xFFFF  # the C stores it as uint16 before comparing
        if c not in out:
            out.append(c)
    return out


def log2_bin(dwta_bin: int) -> int:
    """log2 of a power-of-two DWTA bin width."""
    if dwta_bin < 2 or dwta_bin & (dwta_bin - 1):
        raise ValueError(f"dwta_bin={dwta_bin}: must be a power of two >= 2")
    return dwta_bin.bit_length() - 1


def dwta_per_table(bits: int, dwta_bin: int) -> int:
    """DWTA sub-hashes per table: ceil(K / log2(bin))."""
    b = log2_bin(dwta_bin)
    return -(-bits // b)


def default_ternary_nnz(hash_dim: int) -> int:
    """The kernel's ternary_nnz = 0 default: ceil(hash_dim / 3)."""
    return (hash_dim + 2) // 3


def draw_hash(
    family: int,
    tables: int,
    bits: int,
    hash_dim: int,
    rng: Prng,
    *,
    ternary_nnz: int = 0,
    dwta_bin: int = 0,
) -> HashArrays:
    """elsh_hash_draw: the hash functions of one layer, drawn from rng.

    simhash: {"proj": float32 (T, K, hash_dim)}
    ternary: {"tern_idx": uint16 (T, K, nnz), "tern_sign": int8 (T, K, nnz)}
    dwta:    {"dwta_idx": uint16 (T, P, bin)}"""
    T, K, d = int(tables), int(bits), int(hash_dim)
    if family == SIMHASH:
        vals = [rng.normal() for _ in range(T * K * d)]
        return {"proj": np.array(vals, dtype=np.float32).reshape(T, K, d)}
    if family == TERNARY:
        nnz = int(ternary_nnz) or default_ternary_nnz(d)
        idx = np.empty((T * K, nnz), dtype=np.uint16)
        sign = np.empty((T * K, nnz), dtype=np.int8)
        for p in range(T * K):
            idx[p] = draw_distinct(rng, d, nnz)
            sign[p] = [1 if rng.u32() >> 31 else -1 for _ in range(nnz)]
        return {"tern_idx": idx.reshape(T, K, nnz), "tern_sign": sign.reshape(T, K, nnz)}
    if family == DWTA:
        binw = int(dwta_bin) or 8
        P = dwta_per_table(K, binw)
        idx = np.empty((T * P, binw), dtype=np.uint16)
        for g in range(T * P):
            idx[g] = draw_distinct(rng, d, binw)
        return {"dwta_idx": idx.reshape(T, P, binw)}
    raise ValueError(f"unknown hash family {family!r}")


def draw_pad_order(n_out: int, rng: Prng) -> np.ndarray:
    """The padding permutation: pad[j] = j, then for j = n_out-1 down to 1 swap pad[j] with
    pad[below(j + 1)]."""
    pad = list(range(n_out))
    for j in range(n_out - 1, 0, -1):
        r = rng.below(j + 1)
        pad[j], pad[r] = pad[r], pad[j]
    return np.array(pad, dtype=np.uint16)


def generate(
    seed: int,
    layer: int,
    family: int,
    tables: int,
    bits: int,
    hash_dim: int,
    n_out: int,
    *,
    ternary_nnz: int = 0,
    dwta_bin: int = 0,
) -> HashArrays:
    """The hash functions (see draw_hash) and "pad_order" of layer `layer` of a network seeded
    with `seed`, as elsh_net_randomize draws them."""
    rng = Prng(stream_seed(seed, layer, STREAM_HASH))
    out = draw_hash(family, tables, bits, hash_dim, rng, ternary_nnz=ternary_nnz, dwta_bin=dwta_bin)
    out["pad_order"] = draw_pad_order(n_out, Prng(stream_seed(seed, layer, STREAM_PAD)))
    return out


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """Round to the nearest integer, halves away from zero (float64 result)."""
    a = np.asarray(x, dtype=np.float64)
    return np.sign(a) * np.floor(np.abs(a) + 0.5)


def simhash_int8(proj: np.ndarray) -> np.ndarray:
    """SimHash projections as stored: int8 round_half_away(32 * r), clipped to -127..127 (the
    kernel's normals satisfy |r| < 3.47, so the clip never acts on drawn projections)."""
    q = round_half_away(np.asarray(proj, dtype=np.float64) * 32.0)
    return np.clip(q, -127, 127).astype(np.int8)
