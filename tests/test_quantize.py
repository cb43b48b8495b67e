"""Post-training quantization (edge_lsh.quantize): the requantization multipliers, the input,
weight and bias quantization, what a QModel keeps of the float network (hash functions,
centers, table membership), and the accuracy of the integer model on digits."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

from edge_lsh.format import elsh_bytes, read_elsh
from edge_lsh.network import LSHConfig, Network, TrainConfig
from edge_lsh.oracle import qreference as Q
from edge_lsh.oracle import reference as R
from edge_lsh.oracle.hashgen import round_half_away, simhash_int8
from edge_lsh.quantize import (
    ACC_BOUND,
    f32,
    float_activations,
    input_params,
    quantize,
    quantize_bias,
    quantize_multiplier,
    quantize_weights,
    weight_scales,
)


def blobs(n: int = 300, d: int = 16, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (classes, d))
    y = rng.integers(0, classes, n)
    x = np.abs(centers[y] + 0.3 * rng.normal(0, 1, (n, d)))
    return x.astype(np.float32), y.astype(np.int32)


# ----------------------------------------------------------------------------- multipliers


def test_multiplier_and_shift_reproduce_the_factor():
    rng = np.random.default_rng(0)
    reals = np.exp2(rng.uniform(-31.0, 29.99, 5000))
    for real in [*reals.tolist(), 1.0, 0.5, 2.0**-31, 2.0**29, 1 - 2**-40, 0.75]:
        m, s = quantize_multiplier(real)
        assert 2**30 <= m <= 2**31 - 1 and -31 <= s <= 30
        assert abs(m * 2.0 ** (s - 31) - real) <= real * 2.0**-31
    assert quantize_multiplier(1.0) == (2**30, 1)
    assert quantize_multiplier(1 - 2**-40) == (2**30, 1)  # q * 2^31 rounds up to 2^31
    assert quantize_multiplier(2.0**-32) == (2**30, -31)
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0**-33) == (0, 0)  # below 2^-32: flushed to zero
    with pytest.raises(ValueError, match="too large"):
        quantize_multiplier(2.0**30)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            quantize_multiplier(bad)


def test_requantization_approximates_the_real_product():
    rng = np.random.default_rng(1)
    for real in np.exp2(rng.uniform(-20, 0.5, 200)).tolist():
        m, s = quantize_multiplier(real)
        acc = rng.integers(-(2**24), 2**24, 50)
        y = Q.requantize(acc, m, s)
        assert np.abs(y - acc * real).max() <= 0.5 + 1e-6 + np.abs(acc).max() * real * 2**-31


# ----------------------------------------------------------------------------- input


@pytest.mark.parametrize(
    "lo,hi,zp",
    [(0.0, 16.0, -128), (5.0, 10.0, -128), (-4.0, -1.0, 127), (-1.0, 3.0, -64), (-2.0, 2.0, -1)],
)
def test_input_range_includes_zero_and_maps_it_exactly(lo, hi, zp):
    x = np.array([[lo, hi], [hi, lo]], dtype=np.float32)
    scale, z = input_params(x)
    rmin, rmax = min(0.0, lo), max(0.0, hi)
    assert scale == f32((rmax - rmin) / 255) and z == zp
    net = Network(2, [4], 2, None, seed=0)
    qm = quantize(net, x)
    assert qm.input_zero_point == zp and qm.input_inv_scale == f32(1 / scale)
    rows = np.array([[0.0, 0.0], [rmin, rmin], [rmax, rmax]], dtype=np.float32)
    q = Q.quantize_input(qm, rows).astype(int)[:, 0]
    assert q[0] == zp  # real zero is exact
    assert abs(q[1] - -128) <= 1 and abs(q[2] - 127) <= 1  # the range ends (zp rounding)


def test_all_zero_calibration_data_gets_a_usable_scale():
    scale, z = input_params(np.zeros((3, 4)))
    assert scale == f32(1 / 255) and z == -128


# ----------------------------------------------------------------------------- weights, bias


def test_weights_are_symmetric_per_neuron_and_round_half_away():
    row = np.array([62.5, -127.0, -62.5, 31.75, 0.5]) / 128  # scale 1/128: exact quotients
    w = np.array([row, np.zeros(5), row / 1024], dtype=np.float32)
    q, scale = quantize_weights(w, 8)
    assert q.dtype == np.int8 and scale[1] == 1.0 and (q[1] == 0).all()
    assert q[0].tolist() == [63, -127, -63, 32, 1]  # halves away from zero (not to even)
    assert q[2].tolist() == q[0].tolist()
    assert scale[0] == 1 / 128 and scale[2] == 1 / 128 / 1024
    q16, s16 = quantize_weights(w, 16)
    assert q16.dtype == np.int16 and np.abs(q16).max() == 32767
    rng = np.random.default_rng(0)
    w = rng.normal(size=(40, 30)).astype(np.float32)
    for bits in (8, 16):
        q, s = quantize_weights(w, bits)
        assert np.abs(q.astype(float) * s[:, None] - w).max(axis=1).max() <= (s / 2).max() + 1e-12


@pytest.mark.parametrize("bits", [8, 16])
def test_accumulators_can_never_wrap(bits):
    """255 * sum|w_q| stays below 2^31 - 2^28 (plus rounding), and the clipped bias keeps the
    whole accumulator below 2^31, even for wide rows of equal weights (int16 is where the
    sum bound takes over from the max bound)."""
    rng = np.random.default_rng(2)
    wide = np.full((3, 8192), 0.5, dtype=np.float32)
    wide[1] = rng.normal(size=8192)
    wide[2, ::2] *= -1
    q, scale = quantize_weights(wide, bits)
    reach = 255 * np.abs(q.astype(np.int64)).sum(axis=1)
    assert (reach < ACC_BOUND + 255 * 8192 // 2).all()
    if bits == 16:  # the sum term set the scale, not max|w| / 32767
        assert (scale > np.abs(wide).max(axis=1) / 32767).all()
        assert (reach > ACC_BOUND * 0.99).all()
    assert np.allclose(weight_scales(wide, bits), scale)
    with pytest.warns(RuntimeWarning, match="clipped"):
        b = quantize_bias(np.array([1e6, -1e6, 0.0]), 0.01, scale, q)
    assert (np.abs(b.astype(np.int64)) + reach < 2**31).all()
    assert b[2] == 0


def test_bias_clipping_warns_only_when_it_can_change_a_result():
    q = np.array([[127, -3]], dtype=np.int8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # a huge negative bias on a ReLU neuron: it never fires, clipped or not
        b = quantize_bias(np.array([-1e9]), 1.0, np.array([1e-3]), q, relu=True)
        assert b[0] == -(2**31 - 1 - 255 * 130)
        assert quantize_bias(np.array([0.3]), 0.5, np.array([0.1]), q)[0] == 6
    with pytest.warns(RuntimeWarning):
        quantize_bias(np.array([1e9]), 1.0, np.array([1e-3]), q, relu=True)
    with pytest.warns(RuntimeWarning):
        quantize_bias(np.array([-1e9]), 1.0, np.array([1e-3]), q, relu=False)


def test_a_huge_float_bias_is_clipped_with_a_warning():
    x, y = blobs()
    net = Network(16, [8], 3, None, seed=0)
    net.layer_arrays(0)["b"][2] = 1e8  # views into the arena
    with pytest.warns(RuntimeWarning, match="layer 0: 1 bias"):
        qm = quantize(net, x)
    L = qm.layers[0]
    assert abs(int(L.bias[2])) + 255 * int(np.abs(L.weights[2].astype(np.int64)).sum()) < 2**31


# ----------------------------------------------------------------------------- the model


def test_quantized_layers_follow_the_scheme():
    x, y = blobs()
    cfg = LSHConfig(active_fraction=0.25, family="ternary", bits=3, tables=8, pool=2)
    net = Network(16, [40, 24], 3, cfg, seed=4)
    net.fit(x, y, epochs=2)
    qm = quantize(net, x)
    assert (qm.n_in, qm.n_classes, qm.seed, qm.n_layers) == (16, 3, 4, 3)
    assert qm.info is not None and qm.info["calibration_rows"] == 300
    outs, masks = float_activations(net, x)
    prev_scale, prev_zp = qm.input_scale, qm.input_zero_point
    for li, L in enumerate(qm.layers):
        info = net.layer_info(li)
        assert (L.n_in, L.n_out, L.k, L.use_lsh) == (
            info["n_in"],
            info["n_out"],
            info["k"],
            info["lsh"],
        )
        assert L.in_scale == prev_scale and L.in_zero_point == prev_zp
        assert L.weight_scale is not None
        assert np.array_equal(L.weights, quantize_weights(net.layer_arrays(li)["w"], 8)[0])
        if L.is_output:
            assert L.out_zero_point == 0
            assert L.out_scale == f32(L.in_scale * L.weight_scale.max())
            assert (L.shift <= 1).all()  # every rescale factor is at most 1 (+ float32 rounding)
        else:
            assert L.out_zero_point == -128
            assert L.out_scale == f32(outs[li].max() / 255)
        for j in range(L.n_out):
            real = L.in_scale * L.weight_scale[j] / L.out_scale
            assert (int(L.multiplier[j]), int(L.shift[j])) == quantize_multiplier(real)
        assert L.use_lsh == (li < 2)
        if L.use_lsh:
            assert (L.family, L.bits, L.n_tables, L.pool, L.hash_dim, L.ternary_nnz) == (
                1,
                3,
                8,
                info["pool"],
                info["hash_dim"],
                info["ternary_nnz"],
            )
            assert L.hash_source == 0 and L.membership is None and not L.center
            assert np.array_equal(L.pad_order, net.layer_arrays(li)["pad_order"])
        prev_scale, prev_zp = L.out_scale, L.out_zero_point
    assert read_elsh(elsh_bytes(qm)).same_as(qm)


def test_float_activations_are_the_float_kernels():
    x, y = blobs(80)
    cfg = LSHConfig(active_fraction=0.3, family="simhash", bits=3, tables=6, pool=1)
    net = Network(16, [30], 3, cfg, output_lsh=True, seed=2)
    net.fit(x, y, epochs=1)
    outs, masks = float_activations(net, x[:20])
    for r in range(20):
        t = R.trace(net, x[r])
        for li in range(2):
            assert np.array_equal(np.flatnonzero(masks[li][r]), t.active[li])
            assert np.allclose(outs[li][r, t.active[li]], t.outputs[li], rtol=1e-5, atol=1e-6)


def test_percentile_calibration_narrows_the_hidden_range():
    x, y = blobs()
    net = Network(16, [32], 3, None, seed=1)
    net.fit(x, y, epochs=1)
    full, p50 = quantize(net, x), quantize(net, x, percentile=50)
    assert p50.layers[0].out_scale < full.layers[0].out_scale
    assert p50.info is not None and p50.info["percentile"] == 50


def test_explicit_hash_functions_when_training_rehashed():
    x, y = blobs()
    cfg = LSHConfig(active_fraction=0.25, family="simhash", bits=3, tables=5, pool=1)
    net = Network(16, [30], 3, cfg, seed=9)
    net.fit(x, y, epochs=1, train=TrainConfig(rehash_every=40))
    qm = quantize(net, x)
    L = qm.layers[0]
    proj = net.layer_arrays(0)["proj"]
    assert L.hash_source == 1
    assert np.array_equal(L.proj, simhash_int8(proj))
    assert np.array_equal(L.proj, round_half_away(proj.astype(np.float64) * 32).astype(np.int8))
    assert read_elsh(elsh_bytes(qm)).same_as(qm)


def test_centers_become_integers_in_input_units():
    x, y = blobs()
    cfg = LSHConfig(active_fraction=0.25, family="dwta", bits=4, tables=6, pool=1, center=True)
    net = Network(16, [30, 20], 3, cfg, seed=3)
    net.fit(x, y, epochs=1)
    qm = quantize(net, x)
    for li in range(2):
        L, center = qm.layers[li], net.layer_arrays(li)["center"]
        assert L.center and L.center_q is not None and L.center_q.dtype == np.int32
        want = round_half_away(center.astype(np.float64) / L.in_scale)
        assert np.array_equal(L.center_q, want) and np.abs(want).sum() > 0


def test_membership_is_what_the_trained_tables_hold():
    x, y = blobs()
    cfg = LSHConfig(
        active_fraction=0.2, family="ternary", bits=2, tables=6, pool=2, bucket_capacity=5
    )
    net = Network(16, [40], 3, cfg, seed=6)
    net.fit(x, y, epochs=2)
    qm = quantize(net, x)
    L, arrays = qm.layers[0], net.layer_arrays(0)
    assert L.membership is not None and 0 < L.membership.mean() < 1
    assert np.array_equal(L.membership, arrays["neuron_bucket"].T != 0xFFFF)
    offsets, ids = Q.layer_tables(L)
    B = 1 << L.bits
    for t in range(L.n_tables):  # the float table's members, hashed from the int weights
        got = sorted(ids[offsets[t * B] : offsets[(t + 1) * B]].tolist())
        float_members = arrays["bucket_ids"][t][
            np.arange(arrays["bucket_ids"].shape[2])[None, :] < arrays["bucket_len"][t][:, None]
        ]
        assert got == sorted(float_members.tolist())
    for tables in (True, False):
        assert read_elsh(elsh_bytes(qm, tables=tables)).same_as(qm)


def test_quantize_rejects_what_it_cannot_express():
    x, y = blobs(50)
    net = Network(16, [20], 3, LSHConfig(select="exact", tables=4, bits=2), seed=0)
    with pytest.raises(ValueError, match="exact"):
        quantize(net, x)
    dense = Network(16, [20], 3, None, seed=0)
    with pytest.raises(ValueError, match="weight_bits"):
        quantize(dense, x, weight_bits=4)
    with pytest.raises(ValueError, match="shape"):
        quantize(dense, x[:, :5])
    with pytest.raises(ValueError, match="shape"):
        quantize(dense, x[:0])
    with pytest.raises(ValueError, match="NaN"):
        quantize(dense, np.full((2, 16), np.nan))
    with pytest.raises(ValueError, match="percentile"):
        quantize(dense, x, percentile=0)


# ----------------------------------------------------------------------------- accuracy


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    x, y = d.data.astype(np.float32), d.target.astype(np.int32)
    return x[:1400], y[:1400], x[1400:], y[1400:]


@pytest.mark.parametrize(
    "lsh,bits",
    [(LSHConfig(), 8), (None, 8), (None, 16)],
    ids=["lsh-default-int8", "dense-int8", "dense-int16"],
)
def test_fixed_point_accuracy_on_digits_is_within_half_a_point(digits, lsh, bits):
    """64-256-10 trained 5 epochs: the integer model's test accuracy is within 0.5 points
    of the float network's (397 test digits: 2 samples)."""
    xtr, ytr, xte, yte = digits
    net = Network(64, [256], 10, lsh, seed=0)
    net.fit(xtr, ytr, epochs=5)
    float_acc = float((net.predict(xte) == yte).mean())
    qm = quantize(net, xtr, weight_bits=bits)
    fixed_acc = float((Q.predict(qm, Q.quantize_input(qm, xte)) == yte).mean())
    assert float_acc > 0.85
    assert abs(fixed_acc - float_acc) <= 0.005, (float_acc, fixed_acc)


@pytest.mark.parametrize("family", ["simhash", "dwta"])
def test_fixed_point_accuracy_of_other_families_on_average(digits, family):
    """SimHash and DWTA pick other active sets when a quantized row or input lands on the
    other side of a hash boundary: single networks move by up to about 1.5 points either
    way, the mean over seeds stays within a point."""
    xtr, ytr, xte, yte = digits
    diffs = []
    for seed in range(3):
        net = Network(64, [256], 10, LSHConfig(family=family, bits=4, tables=50), seed=seed)
        net.fit(xtr, ytr, epochs=5)
        float_acc = float((net.predict(xte) == yte).mean())
        qm = quantize(net, xtr)
        diffs.append(float((Q.predict(qm, Q.quantize_input(qm, xte)) == yte).mean()) - float_acc)
    assert abs(float(np.mean(diffs))) <= 0.01, diffs
    assert max(abs(d) for d in diffs) <= 0.025, diffs
