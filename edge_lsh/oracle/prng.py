"""A pure-Python mirror of the kernel's PRNG (native/src/prng.c).

``mix64`` is the splitmix64 finalizer; ``Prng`` is xoshiro128** seeded by splitmix64. Every
method produces exactly the value the C function of the same name produces from the same
state, so Python code (tests, tools) can reproduce the kernel's random choices: initial weights,
hash functions, padding order and reservoir insertion.

Floats are returned as Python floats holding float32 values exactly (``uniform`` and ``normal``
are computed in float32 in C; here the one rounding step is done with ``struct``).
"""

from __future__ import annotations

import struct

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
