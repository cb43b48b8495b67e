"""edge_lsh.oracle.hashgen regenerates, from the seed alone, exactly the hash functions and padding
order the float kernel draws into its arena (elsh_net_randomize): FORMAT.md 5.4."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edge_lsh.network import FAMILIES, LSHConfig, Network, TrainConfig
from edge_lsh.oracle import hashgen as H
from edge_lsh.oracle.prng import MASK64, Prng, mix64
from edge_lsh.quantize import quantize

FAMILY_KEYS = {"simhash": ("proj",), "ternary": ("tern_idx", "tern_sign"), "dwta": ("dwta_idx",)}


def regenerate(net: Network, layer: int) -> dict[str, np.ndarray]:
    info = net.layer_info(layer)
    return H.generate(
        net.seed,
        layer,
        int(FAMILIES[info["family"]]),
        info["tables"],
        info["bits"],
        info["hash_dim"],
        info["n_out"],
        ternary_nnz=info["ternary_nnz"],
        dwta_bin=info["dwta_bin"],
    )


def assert_same_as_arena(net: Network) -> int:
    checked = 0
    for li in range(net.n_layers):
        info = net.layer_info(li)
        if not info["lsh"]:
            continue
        arena, mine = net.layer_arrays(li), regenerate(net, li)
        for key in (*FAMILY_KEYS[info["family"]], "pad_order"):
            assert mine[key].dtype == arena[key].dtype, (li, key)
            assert mine[key].shape == arena[key].shape, (li, key)
            assert np.array_equal(mine[key], arena[key]), (li, key)
            checked += 1
    return checked


CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("simhash", {"bits": 5, "tables": 7, "pool": 0}),
    ("simhash", {"bits": 1, "tables": 1, "pool": 3}),
    ("ternary", {"bits": 4, "tables": 9, "pool": 0}),
    ("ternary", {"bits": 3, "tables": 5, "pool": 1, "ternary_nnz": 30}),
    ("dwta", {"bits": 5, "tables": 6, "pool": 1, "dwta_bin": 4}),
    ("dwta", {"bits": 7, "tables": 3, "pool": 2, "dwta_bin": 2}),
    ("dwta", {"bits": 3, "tables": 4, "pool": 1, "dwta_bin": 16}),
]


@pytest.mark.parametrize("family,fields", CONFIGS)
@pytest.mark.parametrize("seed", [0, 7, 2**63 + 12345, 2**64 - 1])
def test_generate_equals_the_float_kernels_arena(family: str, fields: dict[str, Any], seed: int):
    cfg = LSHConfig(active_fraction=0.2, family=family, **fields)
    net = Network(40, [50, 33], 6, cfg, output_lsh=True, seed=seed)
    assert assert_same_as_arena(net) == 3 * (len(FAMILY_KEYS[family]) + 1)


def test_training_keeps_the_seed_functions_and_rehashing_replaces_them():
    rng = np.random.default_rng(0)
    x = rng.random((120, 24), dtype=np.float32)
    y = rng.integers(0, 3, 120)
    cfg = LSHConfig(active_fraction=0.2, family="ternary", bits=3, tables=6, pool=2)
    net = Network(24, [40], 3, cfg, seed=5)
    net.fit(x, y, epochs=1)
    assert_same_as_arena(net)
    assert quantize(net, x).layers[0].hash_source == 0

    rehashed = Network(24, [40], 3, cfg, seed=5)
    rehashed.fit(x, y, epochs=1, train=TrainConfig(rehash_every=50))
    info = rehashed.layer_info(0)
    arena, mine = rehashed.layer_arrays(0), regenerate(rehashed, 0)
    assert not np.array_equal(arena["tern_idx"], mine["tern_idx"])
    assert np.array_equal(arena["pad_order"], mine["pad_order"])  # only the functions change
    qm = quantize(rehashed, x)
    assert qm.layers[0].hash_source == 1
    assert np.array_equal(qm.layers[0].tern_idx, arena["tern_idx"])
    assert info["family"] == "ternary"


def test_stream_seed_is_seed_stream_of_net_c():
    for seed in (0, 1, 2**40 + 3, 2**64 - 1):
        for layer in range(3):
            for purpose in (H.STREAM_HASH, H.STREAM_PAD):
                want = (mix64((seed ^ (purpose << 32)) & MASK64) ^ (layer + 1)) & MASK64
                assert H.stream_seed(seed, layer, purpose) == want


def test_draw_distinct_and_pad_order():
    rng = Prng(3)
    for n, k in [(1, 1), (5, 5), (100, 7), (65535, 3)]:
        v = H.draw_distinct(rng, n, k)
        assert len(v) == k == len(set(v)) and all(0 <= c < n for c in v)
    with pytest.raises(ValueError):
        H.draw_distinct(rng, 3, 4)
    for n in (1, 2, 17, 300):
        p = H.draw_pad_order(n, Prng(n))
        assert p.dtype == np.uint16 and sorted(p.tolist()) == list(range(n))


def test_draw_hash_shapes_and_defaults():
    rng = Prng(1)
    t = H.draw_hash(H.TERNARY, 3, 2, 10, rng)
    assert t["tern_idx"].shape == (3, 2, H.default_ternary_nnz(10)) == (3, 2, 4)
    assert set(np.unique(t["tern_sign"]).tolist()) <= {-1, 1}
    d = H.draw_hash(H.DWTA, 4, 5, 16, rng, dwta_bin=4)
    assert d["dwta_idx"].shape == (4, H.dwta_per_table(5, 4), 4) == (4, 3, 4)
    s = H.draw_hash(H.SIMHASH, 2, 3, 5, rng)
    assert s["proj"].dtype == np.float32 and s["proj"].shape == (2, 3, 5)
    with pytest.raises(ValueError):
        H.draw_hash(7, 1, 1, 1, rng)
    with pytest.raises(ValueError):
        H.log2_bin(6)


def test_simhash_int8_rounds_half_away_and_stays_in_range():
    r = np.array([0.0, 1 / 64, -1 / 64, 3 / 64, -3 / 64, 3.46, -3.46, 10.0, -10.0], np.float32)
    assert H.simhash_int8(r).tolist() == [0, 1, -1, 2, -2, 111, -111, 127, -127]
    proj = H.draw_hash(H.SIMHASH, 50, 4, 30, Prng(9))["proj"]
    assert np.abs(proj).max() < 3.47  # Irwin-Hall of 4: |r| <= 2 * sqrt(3)
    q = H.simhash_int8(proj)
    assert q.dtype == np.int8 and np.abs(q.astype(int)).max() <= 111
    assert np.array_equal(q, H.round_half_away(proj.astype(np.float64) * 32).astype(np.int8))
