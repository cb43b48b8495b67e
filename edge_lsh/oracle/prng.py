"""A pure-Python mirror of the kernel's PRNG (native/src/prng.c).

``mix64`` is the splitmix64 finalizer; ``Prng`` is xoshiro128** seeded by splitmix64. Every
method produces exactly the value the C function of the same name produces from the same
state, so Python code (tests, tools) can reproduce the kernel's random choices: initial weights,
hash functions, padding order and reservoir insertion.

Floats are returned as Python floats holding float32 values exactly (``uniform`` and ``normal``
are computed in float32 in C; here the one rounding step is done with ``struct``).

Bulk draws: ``Prng.u32_array(n)`` returns the next n outputs at numpy speed (about 30 ns each
instead of about 1 us), and ``Prng.jump(n)`` skips n outputs in O(log n). Both rest on the
state update being linear over GF(2): n steps are one 128 x 128 bit matrix, so many lanes can
start at positions n apart and be stepped together.
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["MASK32", "MASK64", "mix64", "f32", "Prng"]

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF

_F32 = struct.Struct("<f")


def f32(x: float) -> float:
    """x rounded to the nearest float32 (ties to even), returned as a Python float."""
    return float(_F32.unpack(_F32.pack(x))[0])


_SQRT3_F32 = f32(1.7320508)  # the C literal 1.7320508f
_UNIFORM_SCALE = 1.0 / 16777216.0  # 2^-24, exact
_NORMAL_SCALE = 1.0 / 4194304.0  # 2^-22, exact


def mix64(x: int) -> int:
    """splitmix64 finalizer (elsh_mix64): hashes a 64-bit integer to a 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def _rotl32(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & MASK32


class Prng:
    """xoshiro128** with 32-bit outputs, seeded by splitmix64 (elsh_prng)."""

    __slots__ = ("s",)

    def __init__(self, seed: int = 0) -> None:
        self.s: list[int] = [0, 0, 0, 0]
        self.seed(seed)

    def seed(self, seed: int) -> None:
        """elsh_prng_seed: the state from a 64-bit seed (taken modulo 2^64)."""
        a = mix64(seed & MASK64)
        b = mix64(a)
        self.s = [a & MASK32, a >> 32, b & MASK32, b >> 32]
        if not any(self.s):  # never all-zero
            self.s[0] = 1

    @property
    def state(self) -> tuple[int, int, int, int]:
        """The four 32-bit state words, as in elsh_prng.s."""
        s = self.s
        return (s[0], s[1], s[2], s[3])

    def u32(self) -> int:
        """elsh_prng_u32: the next 32-bit output."""
        s = self.s
        result = (_rotl32((s[1] * 5) & MASK32, 7) * 9) & MASK32
        t = (s[1] << 9) & MASK32
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl32(s[3], 11)
        return result

    def below(self, n: int) -> int:
        """elsh_prng_below: uniform in [0, n) for 1 <= n < 2^32, unbiased by rejection."""
        if not (1 <= n <= MASK32):
            raise ValueError(f"n={n}: must be in 1..2**32-1")
        threshold = ((1 << 32) - n) % n
        while True:
            r = self.u32()
            if r >= threshold:
                return r % n

    def u32_array(self, n: int) -> np.ndarray:
        """The next n outputs of u32() as a uint32 array; the state ends where n calls leave it."""
        n = int(n)
        if n < 0:
            raise ValueError(f"n={n}: must be >= 0")
        if n < _SCALAR_MAX:
            return np.array(_scalar_block(self.s, n), dtype=np.uint32)
        # about sqrt(n) lanes of a power-of-two number of steps each, the rest by the plain loop
        parts = []
        v = _pack(self.s)
        left = n
        while left >= _SCALAR_MAX:
            log_steps = max(6, min(8, (left.bit_length() - 1) // 2))
            log_lanes = min(14, (left >> log_steps).bit_length() - 1)
            block, v = _lanes_block(v, log_steps, log_lanes)
            parts.append(block)
            left -= block.size
        self.s = _unpack(v)
        if left:
            parts.append(np.array(_scalar_block(self.s, left), dtype=np.uint32))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def jump(self, n: int) -> None:
        """Advance the state as n calls of u32() would, in O(log n) (n >= 0)."""
        if n < 0:
            raise ValueError(f"n={n}: must be >= 0")
        if n < 64:
            _scalar_block(self.s, n)
        else:
            self.s = _unpack(_jump_packed(_pack(self.s), n))

    def uniform(self) -> float:
        """elsh_prng_uniform: a float32 in [0, 1) with 24 random bits."""
        return (self.u32() >> 8) * _UNIFORM_SCALE

    def normal(self) -> float:
        """elsh_prng_normal: Irwin-Hall of 4 uniforms, centred and scaled to unit variance.

        The sum of four 22-bit values and its shift by 2 are exact in float32; only the final
        multiplication by the float32 constant sqrt(3) rounds (a float32 x float32 product is
        exact in a double, so one rounding to float32 matches C)."""
        total = 0
        for _ in range(4):
            total += self.u32() >> 10
        u = total * _NORMAL_SCALE
        return f32((u - 2.0) * _SQRT3_F32)


# ----------------------------------------------------------------------------- bulk draws
#
# The state (s0, s1, s2, s3) packs into the 128-bit integer s0 | s1 << 32 | s2 << 64 | s3 << 96.
# One step of the state is a linear map over GF(2); a matrix is the list of its 128 columns (the
# images of the unit vectors), applied a byte at a time through 16 tables of 256 entries.

_SCALAR_MAX = 4096  # below this many outputs a plain loop is faster than lanes


def _pack(s: list[int]) -> int:
    return s[0] | s[1] << 32 | s[2] << 64 | s[3] << 96


def _unpack(v: int) -> list[int]:
    return [v & MASK32, (v >> 32) & MASK32, (v >> 64) & MASK32, v >> 96]


def _step_state(v: int) -> int:
    """The packed state after one u32() (the output itself is not linear, the state is)."""
    s0, s1, s2, s3 = _unpack(v)
    t = (s1 << 9) & MASK32
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl32(s3, 11)
    return _pack([s0, s1, s2, s3])


def _byte_tables(cols: list[int]) -> list[list[int]]:
    tables = []
    for j in range(16):
        tab = [0] * 256
        for b in range(1, 256):
            low = b & -b
            tab[b] = tab[b ^ low] ^ cols[8 * j + low.bit_length() - 1]
        tables.append(tab)
    return tables


def _apply(tables: list[list[int]], v: int) -> int:
    r = 0
    for tab, b in zip(tables, v.to_bytes(16, "little")):
        r ^= tab[b]
    return r


_POWERS: list[list[list[int]]] = []  # _POWERS[i]: byte tables of the state map of 2^i steps


def _power_tables(i: int) -> list[list[int]]:
    """The byte tables of 2^i steps, built by squaring (and kept) on first use."""
    if not _POWERS:
        _POWERS.append(_byte_tables([_step_state(1 << b) for b in range(128)]))
    while len(_POWERS) <= i:
        last = _POWERS[-1]
        cols = [_apply(last, _apply(last, 1 << b)) for b in range(128)]
        _POWERS.append(_byte_tables(cols))
    return _POWERS[i]


def _jump_packed(v: int, n: int) -> int:
    i = 0
    while n:
        if n & 1:
            v = _apply(_power_tables(i), v)
        n >>= 1
        i += 1
    return v


def _scalar_block(s: list[int], n: int) -> list[int]:
    """n outputs of u32() from state s (updated in place), in a plain loop."""
    s0, s1, s2, s3 = s
    out = [0] * n
    for i in range(n):
        x = (s1 * 5) & MASK32
        out[i] = ((((x << 7) | (x >> 25)) & MASK32) * 9) & MASK32
        t = (s1 << 9) & MASK32
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = ((s3 << 11) | (s3 >> 21)) & MASK32
    s[:] = [s0, s1, s2, s3]
    return out


_NP_POWERS: dict[int, np.ndarray] = {}


def _np_power_tables(i: int) -> np.ndarray:
    """_power_tables(i) as a (16, 256, 4) uint32 array, for stepping many states at once."""
    if i not in _NP_POWERS:
        raw = b"".join(x.to_bytes(16, "little") for tab in _power_tables(i) for x in tab)
        _NP_POWERS[i] = np.frombuffer(raw, dtype="<u4").reshape(16, 256, 4).astype(np.uint32)
    return _NP_POWERS[i]


def _lanes_block(v: int, log_steps: int, log_lanes: int) -> tuple[np.ndarray, int]:
    """2^log_lanes * 2^log_steps outputs from packed state v, in stream order, and the packed
    state after them: lane k starts k * 2^log_steps steps in, and all lanes step together."""
    steps, lanes = 1 << log_steps, 1 << log_lanes
    st = np.frombuffer(v.to_bytes(16, "little"), dtype="<u4").reshape(1, 4).astype(np.uint32)
    for i in range(log_lanes):  # lanes k + 2^i are lanes k moved on by 2^i * steps
        tab = _np_power_tables(log_steps + i)
        as_bytes = st.view(np.uint8)  # (m, 16): byte j of each packed state
        moved = np.zeros_like(st)
        for j in range(16):
            moved ^= tab[j][as_bytes[:, j]]
        st = np.concatenate([st, moved])
    end = _apply(_power_tables(log_steps + log_lanes), v)
    s0, s1, s2, s3 = (np.ascontiguousarray(st[:, i]) for i in range(4))
    out = np.empty((steps, lanes), dtype=np.uint32)
    x = np.empty(lanes, dtype=np.uint32)
    y = np.empty(lanes, dtype=np.uint32)
    five, nine = np.uint32(5), np.uint32(9)
    for i in range(steps):
        np.multiply(s1, five, out=x)
        np.left_shift(x, 7, out=y)
        np.right_shift(x, 25, out=x)
        np.bitwise_or(x, y, out=x)
        np.multiply(x, nine, out=out[i])
        np.left_shift(s1, 9, out=x)  # t
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= x
        np.left_shift(s3, 11, out=y)
        np.right_shift(s3, 21, out=s3)
        s3 |= y
    return out.T.reshape(-1), end
