"""The hash functions and padding order of an LSH layer, regenerated from the network seed.

A pure-Python mirror of the C drawing code (native/src: ``elsh_net_randomize`` in net_f32.c,
``elsh_seed_stream`` in prng.c, ``elsh_hash_draw_into``/``draw_distinct`` in hash.c), as specified
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

import math

import numpy as np

from edge_lsh.oracle.prng import MASK64, Prng, f32, mix64

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

STREAM_HASH = 2  # elsh_seed_stream purposes (native/src/internal.h)
STREAM_PAD = 3

HashArrays = dict[str, np.ndarray]

_SQRT3_F32 = f32(1.7320508)  # elsh_prng_normal's constants (see Prng.normal)
_NORMAL_SCALE = 1.0 / 4194304.0


def stream_seed(seed: int, layer: int, purpose: int) -> int:
    """seed_stream(): the PRNG seed mix64(seed ^ (purpose << 32)) ^ (layer + 1), mod 2^64."""
    return (mix64((seed ^ (purpose << 32)) & MASK64) ^ (layer + 1)) & MASK64


def draw_distinct(rng: Prng, n: int, k: int) -> list[int]:
    """k distinct values in [0, n): draw below(n) until it differs from those drawn so far."""
    if k > n:
        raise ValueError(f"cannot draw {k} distinct values from {n}")
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < k:
        c = rng.below(n) & 0xFFFF  # the C stores it as uint16 before comparing
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


class _Stream:
    """The outputs of rng.u32(), generated ahead in blocks (Prng.u32_array) and consumed in
    order; close() leaves rng exactly after the last output consumed, as if each had been
    drawn by a call to u32()."""

    def __init__(self, rng: Prng, hint: int) -> None:
        self.rng = rng
        self.start = Prng()
        self.start.s = list(rng.s)
        self.used = 0  # outputs consumed in all
        self.buf = np.empty(0, dtype=np.uint32)
        self.pos = 0
        self.block = max(64, min(int(hint), _BLOCK_MAX))

    def peek(self, n: int) -> np.ndarray:
        """The next n outputs, not consumed."""
        have = self.buf.size - self.pos
        if have < n:
            more = self.rng.u32_array(max(n - have, self.block))
            self.block = min(2 * self.block, _BLOCK_MAX)
            self.buf = np.concatenate([self.buf[self.pos :], more])
            self.pos = 0
        return self.buf[self.pos : self.pos + n]

    def take(self, n: int) -> np.ndarray:
        out = self.peek(n)
        self.skip(n)
        return out

    def skip(self, n: int) -> None:
        self.pos += n
        self.used += n

    def distinct(self, n: int, k: int) -> np.ndarray:
        """draw_distinct(rng, n, k) on the stream (n <= 65536), as uint16."""
        threshold = ((1 << 32) - n) % n
        # expected draws for k distinct of n: n (H(n) - H(n - k)) ~ n ln(n / (n - k))
        expected = n * (math.log(n + 0.5) - math.log(n - k + 0.5))
        window = int(1.25 * expected) + 16
        if expected <= _SMALL_DISTINCT:  # a plain loop
            got: list[int] = []
            seen: set[int] = set()
            while True:
                for i, r in enumerate(self.peek(window).tolist()):
                    if r < threshold:
                        continue
                    c = r % n
                    if c not in seen:
                        seen.add(c)
                        got.append(c)
                        if len(got) == k:
                            self.skip(i + 1)
                            return np.array(got, dtype=np.uint16)
                got.clear()
                seen.clear()
                window *= 2
        while True:  # the first occurrences of each value, from a window of draws
            raw = self.peek(window)
            pos = np.flatnonzero(raw >= threshold)
            vals = (raw[pos] % np.uint32(n)).astype(np.intp)
            first = np.full(n, vals.size, dtype=np.intp)  # each value's first position
            np.minimum.at(first, vals, np.arange(vals.size, dtype=np.intp))
            first = np.sort(first[first < vals.size])
            if first.size >= k:
                self.skip(int(pos[first[k - 1]]) + 1)
                return vals[first[:k]].astype(np.uint16)
            window *= 2

    def close(self) -> None:
        self.start.jump(self.used)
        self.rng.s = self.start.s


_BLOCK_MAX = 1 << 22  # outputs generated at a time (16 MB)
_SMALL_DISTINCT = 48  # up to this many expected draws, a plain loop beats numpy


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
    simhash_as_int8: bool = False,
) -> HashArrays:
    """elsh_hash_draw: the hash functions of one layer, drawn from rng (left where the C
    leaves its PRNG). The draws are made in blocks at numpy speed, the same values.

    simhash: {"proj": float32 (T, K, hash_dim)}, or int8 as stored (simhash_int8) with
             simhash_as_int8
    ternary: {"tern_idx": uint16 (T, K, nnz), "tern_sign": int8 (T, K, nnz)}
    dwta:    {"dwta_idx": uint16 (T, P, bin)}"""
    T, K, d = int(tables), int(bits), int(hash_dim)
    if family == SIMHASH:
        m = T * K * d
        stream = _Stream(rng, 4 * m)
        proj = np.empty(m, dtype=np.int8 if simhash_as_int8 else np.float32)
        step = _BLOCK_MAX // 4
        for a in range(0, m, step):
            b = min(a + step, m)
            raw = stream.take(4 * (b - a)) >> np.uint32(10)
            total = raw[0::4] + raw[1::4] + raw[2::4] + raw[3::4]  # < 2^24: exact
            u = total * _NORMAL_SCALE  # exact in float64, as in float32
            r = ((u - 2.0) * _SQRT3_F32).astype(np.float32)  # one rounding, as in C
            proj[a:b] = simhash_int8(r) if simhash_as_int8 else r
        stream.close()
        return {"proj": proj.reshape(T, K, d)}
    if family == TERNARY:
        nnz = int(ternary_nnz) or default_ternary_nnz(d)
        if nnz > d:
            raise ValueError(f"cannot draw {nnz} distinct values from {d}")
        idx = np.empty((T * K, nnz), dtype=np.uint16)
        sign = np.empty((T * K, nnz), dtype=np.int8)
        stream = _Stream(rng, T * K * (2 * nnz + 8))
        for p in range(T * K):
            idx[p] = stream.distinct(d, nnz)
            sign[p] = np.where(stream.take(nnz) >> np.uint32(31), 1, -1)
        stream.close()
        return {"tern_idx": idx.reshape(T, K, nnz), "tern_sign": sign.reshape(T, K, nnz)}
    if family == DWTA:
        binw = int(dwta_bin) or 8
        if binw > d:
            raise ValueError(f"cannot draw {binw} distinct values from {d}")
        P = dwta_per_table(K, binw)
        idx = np.empty((T * P, binw), dtype=np.uint16)
        stream = _Stream(rng, T * P * (binw + 8))
        for g in range(T * P):
            idx[g] = stream.distinct(d, binw)
        stream.close()
        return {"dwta_idx": idx.reshape(T, P, binw)}
    raise ValueError(f"unknown hash family {family!r}")


def draw_pad_order(n_out: int, rng: Prng) -> np.ndarray:
    """The padding permutation: pad[j] = j, then for j = n_out-1 down to 1 swap pad[j] with
    pad[below(j + 1)]."""
    pad = list(range(n_out))
    if n_out < 2:
        return np.array(pad, dtype=np.uint16)
    stream = _Stream(rng, n_out)
    # below(j + 1) for j = n_out - 1 down to 1, one bound per draw
    bounds = np.arange(n_out, 1, -1, dtype=np.uint64)
    thresholds = ((np.uint64(1 << 32) - bounds) % bounds).astype(np.uint32)
    draws: list[int] = []
    while len(draws) < bounds.size:
        i = len(draws)
        raw = stream.peek(bounds.size - i)
        bad = raw < thresholds[i:]
        ok = raw.size if not bad.any() else int(np.argmax(bad))
        draws += (raw[:ok].astype(np.uint64) % bounds[i : i + ok]).tolist()
        stream.skip(ok + (ok < raw.size))  # a rejected value is consumed too
    stream.close()
    for j, r in zip(range(n_out - 1, 0, -1), draws):
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
    simhash_as_int8: bool = False,
) -> HashArrays:
    """The hash functions (see draw_hash) and "pad_order" of layer `layer` of a network seeded
    with `seed`, as elsh_net_randomize draws them."""
    rng = Prng(stream_seed(seed, layer, STREAM_HASH))
    out = draw_hash(
        family,
        tables,
        bits,
        hash_dim,
        rng,
        ternary_nnz=ternary_nnz,
        dwta_bin=dwta_bin,
        simhash_as_int8=simhash_as_int8,
    )
    out["pad_order"] = draw_pad_order(n_out, Prng(stream_seed(seed, layer, STREAM_PAD)))
    return out


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """Round to the nearest integer, halves away from zero (float64 result)."""
    a = np.asarray(x, dtype=np.float64)
    return np.sign(a) * np.floor(np.abs(a) + 0.5)


def simhash_int8(proj: np.ndarray) -> np.ndarray:
    """SimHash projections as stored: int8 round_half_away(32 * r), clipped to -127..127 (the
    kernel's normals satisfy |r| < 3.47, so the clip never acts on drawn projections)."""
    a = np.asarray(proj, dtype=np.float64) * 32.0
    q = np.trunc(a + np.copysign(0.5, a))  # round half away from zero: a + 0.5 is exact
    return np.clip(q, -127, 127).astype(np.int8)
