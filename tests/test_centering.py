"""Hash centering: fit_centers stores each layer's pooled mean input, and the C kernel then
hashes (pooled input - center), exactly as the numpy reference does."""

from __future__ import annotations

import numpy as np
import pytest

from edge_lsh import LSHConfig, Network
from edge_lsh.oracle import reference as R


def data(n: int = 300, d: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, d), dtype=np.float32) * (rng.random(d) > 0.3)  # non-negative, like pixels
    y = rng.integers(0, 3, n).astype(np.int32)
    return x, y


@pytest.mark.parametrize("pool", [1, 4])
def test_fit_centers_stores_pooled_mean_of_each_layer_input(pool):
    x, _ = data()
    cfg = LSHConfig(
        active_fraction=0.2, family="ternary", bits=3, tables=12, pool=pool, center=True
    )
    net = Network(24, [40, 30], 3, cfg, seed=1)
    net.fit_centers(x)
    c0 = net.layer_arrays(0)["center"]
    info0 = net.layer_info(0)
    want0 = R.pool(x.astype(np.float64).mean(0), info0["pool"], info0["hash_dim"])
    np.testing.assert_allclose(c0, want0, rtol=1e-4, atol=1e-5)
    # layer 1's input is layer 0's sparse ReLU output, as the reference computes it
    outs = []
    for row in x:
        t = R.trace(net, row)
        h = np.zeros(40)
        h[t.active[0]] = t.outputs[0]
        outs.append(h)
    info1 = net.layer_info(1)
    want1 = R.pool(np.mean(outs, axis=0), info1["pool"], info1["hash_dim"])
    np.testing.assert_allclose(net.layer_arrays(1)["center"], want1, rtol=1e-4, atol=1e-5)
    assert np.abs(want1).sum() > 0


@pytest.mark.parametrize("family", ["simhash", "ternary", "dwta"])
def test_centered_selection_matches_reference(family):
    x, y = data(seed=3)
    cfg = LSHConfig(active_fraction=0.15, family=family, bits=4, tables=10, pool=1, center=True)
    net = Network(24, [60], 3, cfg, seed=2)
    net.fit(x, y, epochs=1)  # fit() refits the centers each epoch
    assert np.abs(net.layer_arrays(0)["center"]).sum() > 0
    changed = 0
    for row in x[:60]:
        net.predict(row[None])
        ref = R.trace(net, row)
        assert np.array_equal(net.last_active(0), ref.active[0])
        # the same input hashed without centering picks a different set somewhere
        info, arrays = net.layer_info(0), net.layer_arrays(0)
        plain = R.select(info, arrays, R.hash_codes(info, arrays, row.astype(np.float64)))
        changed += not np.array_equal(plain, ref.active[0])
    assert changed > 0


def test_fit_centers_rejects_bad_input():
    net = Network(4, [8], 2, LSHConfig(active_fraction=0.5, pool=1, center=True), seed=0)
    with pytest.raises(ValueError, match="NaN"):
        net.fit_centers(np.array([[0, 1, np.nan, 2]], dtype=np.float32))
    with pytest.raises(ValueError, match="no samples"):
        net.fit_centers(np.zeros((0, 4), dtype=np.float32))
