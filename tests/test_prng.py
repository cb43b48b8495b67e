"""edge_lsh.oracle.prng (pure Python) must produce exactly the C kernel's PRNG stream (prng.c)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from edge_lsh.native import ffi, lib
from edge_lsh.oracle.prng import MASK64, Prng, f32, mix64

SEEDS = [0, 1, 2, 42, 0xDEADBEEF, 2**32 - 1, 2**32, 2**63, 0x9E3779B97F4A7C15, 2**64 - 1]


def c_rng(seed: int):  # noqa: ANN201 - a cffi object
    rng = ffi.new("elsh_prng *")
    lib.elsh_prng_seed(rng, seed)
    return rng


def bits32(x: float) -> int:
    """The float32 bit pattern of x (which must already be a float32 value)."""
    return struct.unpack("<I", struct.pack("<f", x))[0]


def test_mix64_matches_c() -> None:
    rs = np.random.default_rng(1)
    values = [0, 1, 2**63, MASK64, 0x9E3779B97F4A7C15, (-0x9E3779B97F4A7C15) & MASK64]
    values += [int(v) for v in rs.integers(0, 2**63, size=2000, dtype=np.uint64)]
    values += [int(v) << 1 | 1 for v in rs.integers(0, 2**63, size=500, dtype=np.uint64)]
    for v in values:
        assert mix64(v) == lib.elsh_mix64(v), hex(v)
    # a known splitmix64 value: the first output of splitmix64 seeded with 0
    assert mix64(0) == 0xE220A8397B1DCDAF


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_state_matches_c(seed: int) -> None:
    c = c_rng(seed)
    assert Prng(seed).state == tuple(c.s[i] for i in range(4))


def test_seed_never_all_zero() -> None:
    p = Prng(0)
    p.s = [0, 0, 0, 0]
    p.seed(0)
    assert any(p.s)


@pytest.mark.parametrize("seed", SEEDS)
def test_u32_stream_matches_c(seed: int) -> None:
    c, p = c_rng(seed), Prng(seed)
    py = [p.u32() for _ in range(3000)]
    cc = [lib.elsh_prng_u32(c) for _ in range(3000)]
    assert py == cc
    assert p.state == tuple(c.s[i] for i in range(4))
    assert len(set(py)) > 2990  # not stuck


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1])
@pytest.mark.parametrize("seed", [0, 5, 2**64 - 1])
def test_below_matches_c(seed: int, n: int) -> None:
    c, p = c_rng(seed), Prng(seed)
    count = 1500
    py = [p.below(n) for _ in range(count)]
    cc = [lib.elsh_prng_below(c, n) for _ in range(count)]
    assert py == cc
    # the same number of u32 draws were consumed (rejections included)
    assert p.state == tuple(c.s[i] for i in range(4))
    assert all(0 <= v < n for v in py)
    if n == 1:
        assert set(py) == {0}


def test_below_rejects_for_large_n() -> None:
    """n = 2^31 + 1 rejects about half of the raw values: the streams stay in step only if the
    rejection threshold ((2^32 - n) mod n) is the same."""
    n = 2**31 + 1
    p = Prng(3)
    raw = Prng(3)
    draws = 0
    for _ in range(200):
        v = p.below(n)
        while True:
            r = raw.u32()
            draws += 1
            if r >= 2**31 - 1:
                break
        assert v == r % n
    assert draws > 300  # rejections did happen


def test_below_range_checked() -> None:
    with pytest.raises(ValueError):
        Prng(0).below(0)
    with pytest.raises(ValueError):
        Prng(0).below(2**32)


@pytest.mark.parametrize("seed", SEEDS)
def test_uniform_matches_c_bitwise(seed: int) -> None:
    c, p = c_rng(seed), Prng(seed)
    for _ in range(2000):
        a, b = p.uniform(), lib.elsh_prng_uniform(c)
        assert bits32(a) == bits32(b)
        assert 0.0 <= a < 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_normal_matches_c_bitwise(seed: int) -> None:
    c, p = c_rng(seed), Prng(seed)
    py = np.array([p.normal() for _ in range(3000)], dtype=np.float32)
    cc = np.array([lib.elsh_prng_normal(c) for _ in range(3000)], dtype=np.float32)
    assert np.array_equal(py.view(np.uint32), cc.view(np.uint32))
    assert p.state == tuple(c.s[i] for i in range(4))


def test_interleaved_calls_match_c() -> None:
    c, p = c_rng(123), Prng(123)
    for i in range(3000):
        kind = i % 4
        if kind == 0:
            assert p.u32() == lib.elsh_prng_u32(c)
        elif kind == 1:
            assert p.below(i + 1) == lib.elsh_prng_below(c, i + 1)
        elif kind == 2:
            assert bits32(p.uniform()) == bits32(lib.elsh_prng_uniform(c))
        else:
            assert bits32(p.normal()) == bits32(lib.elsh_prng_normal(c))


def test_normal_moments() -> None:
    p = Prng(2024)
    x = np.array([p.normal() for _ in range(100_000)])
    assert abs(x.mean()) < 0.02
    assert abs(x.var() - 1.0) < 0.02
    # Irwin-Hall of 4: bounded by 2*sqrt(3), kurtosis 3 - 6/20 = 2.7 (lighter tails)
    assert np.abs(x).max() <= 2.0 * f32(1.7320508) + 1e-6
    kurt = ((x - x.mean()) ** 4).mean() / x.var() ** 2
    assert 2.65 < kurt < 2.75


def test_uniform_moments() -> None:
    p = Prng(9)
    x = np.array([p.uniform() for _ in range(50_000)])
    assert abs(x.mean() - 0.5) < 0.01
    assert abs(x.var() - 1.0 / 12.0) < 0.005


def test_f32_rounding() -> None:
    assert f32(1.0) == 1.0
    assert f32(0.1) == float(np.float32(0.1))
    assert bits32(f32(1.7320508)) == np.float32(1.7320508).view(np.uint32)


# ----------------------------------------------------------------------------- the kernel's use


def _stream(seed: int, layer: int, purpose: int) -> Prng:
    """prng.c elsh_seed_stream: one independent stream per layer and purpose
    (1 weights, 2 hash functions, 3 padding order, 4 reservoir insertion)."""
    return Prng(mix64(seed ^ (purpose << 32)) ^ (layer + 1))


def _distinct(rng: Prng, n: int, k: int) -> list[int]:
    out: list[int] = []
    while len(out) < k:
        c = rng.below(n)
        if c not in out:
            out.append(c)
    return out


@pytest.mark.parametrize("family", ["simhash", "ternary", "dwta"])
def test_network_init_reproduced_by_python_prng(family: str) -> None:
    """elsh_net_randomize draws weights, hash functions and the padding permutation from the
    PRNG; the Python mirror reproduces every value bit for bit."""
    from edge_lsh.network import LSHConfig, Network

    seed = 2**64 - 3
    lsh = LSHConfig(
        active_fraction=0.1,
        family=family,
        bits=5,
        tables=6,
        pool=0,
        bucket_capacity=0,
        insert="fifo",
        select="topk",
        ternary_nnz=0,
        dwta_bin=4,
    )
    net = Network(24, [40], 6, lsh, output_lsh=True, seed=seed)
    for layer in range(net.n_layers):
        info, a = net.layer_info(layer), net.layer_arrays(layer)
        n_in, n_out = info["n_in"], info["n_out"]
        # weights: uniform in +-sqrt(6 / fan), fan = n_in (He) or n_in + n_out (output, Glorot)
        fan = np.float32(n_in + n_out if info["output"] else n_in)
        limit = np.sqrt(np.float32(6.0) / fan, dtype=np.float32)
        rng = _stream(seed, layer, 1)
        u = np.array([rng.uniform() for _ in range(n_in * n_out)], dtype=np.float32)
        w = (np.float32(2.0) * u - np.float32(1.0)) * limit
        assert np.array_equal(w.reshape(n_out, n_in).view(np.uint32), a["w"].view(np.uint32))
        assert not a["b"].any()
        # hash functions
        rng = _stream(seed, layer, 2)
        T, K, d = info["tables"], info["bits"], info["hash_dim"]
        if family == "simhash":
            proj = np.array([rng.normal() for _ in range(T * K * d)], dtype=np.float32)
            assert np.array_equal(proj.view(np.uint32), a["proj"].reshape(-1).view(np.uint32))
        elif family == "ternary":
            nnz = info["ternary_nnz"]
            for p in range(T * K):
                idx = _distinct(rng, d, nnz)
                sign = [1 if rng.u32() >> 31 else -1 for _ in range(nnz)]
                assert a["tern_idx"].reshape(T * K, nnz)[p].tolist() == idx
                assert a["tern_sign"].reshape(T * K, nnz)[p].tolist() == sign
        else:
            groups = a["dwta_idx"].reshape(T * info["dwta_per_table"], info["dwta_bin"])
            for g in range(groups.shape[0]):
                assert groups[g].tolist() == _distinct(rng, d, info["dwta_bin"])
        # padding permutation: Fisher-Yates from the top
        rng = _stream(seed, layer, 3)
        order = list(range(n_out))
        for j in range(n_out - 1, 0, -1):
            r = rng.below(j + 1)
            order[j], order[r] = order[r], order[j]
        assert a["pad_order"].tolist() == order
