"""The fixed-point C kernel (edge_lsh.fixed, via an .elsh file) against the numpy model of the
same integer arithmetic (edge_lsh.oracle.qreference): every logit and every active set, bit for bit,
over random networks of every hash family and on the edge cases (saturation, all-zero and
extreme inputs, empty buckets, ties, k larger than the candidates)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from edge_lsh import format as elsh_format
from edge_lsh.errors import ModelFileError
from edge_lsh.fixed import FixedPointModel
from edge_lsh.network import LSHConfig, Network
from edge_lsh.oracle import qreference
from edge_lsh.quantize import quantize


def _blobs(n: int, n_in: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0, 1, size=(n_classes, n_in))
    y = rng.integers(0, n_classes, size=n)
    x = np.clip(centers[y] + 0.3 * rng.standard_normal((n, n_in)), 0, None)
    return x.astype(np.float32), y.astype(np.int64)


CASES = [
    # id, hidden, lsh kwargs, output_lsh, weight_bits, tables stored
    ("ternary", [64], dict(family="ternary"), False, 8, True),
    ("ternary-rebuilt", [64], dict(family="ternary"), False, 8, False),
    ("simhash-2hidden", [48, 40], dict(family="simhash", bits=4, tables=12), False, 8, True),
    ("dwta-center", [64], dict(family="dwta", center=True, bits=4, tables=16), False, 8, False),
    ("int16-union", [50], dict(family="ternary", select="union", tables=8), False, 16, True),
    ("pool1", [40], dict(family="simhash", pool=1, bits=2, tables=6), False, 8, True),
    ("tiny-tables", [60], dict(family="ternary", bits=1, tables=1), False, 8, True),
    ("lsh-output", [48], dict(family="dwta", center=True, bits=3, tables=10), True, 8, True),
    # L per LSH layer (LSHConfig.tables as a tuple): the LAYER sections hold each layer's own
    ("per-layer-tables", [48, 40], dict(family="ternary", tables=(12, 3, 5)), True, 8, True),
    ("dense", [32], None, False, 8, True),
]


def _model(hidden, lsh_kw, output_lsh, bits, seed=3):
    x, y = _blobs(600, 20, 6, seed)
    lsh = LSHConfig(**lsh_kw) if lsh_kw is not None else None
    net = Network(20, hidden, 6, lsh, output_lsh=output_lsh, seed=seed)
    if lsh is not None and lsh.center:
        net.fit_centers(x[:300])
    net.fit(x[:400], y[:400], epochs=2)
    return net, quantize(net, x[:200], weight_bits=bits), x, y


def _edge_inputs(qm, rng: np.random.Generator) -> np.ndarray:
    z = int(qm.layers[0].in_zero_point)
    rows = [
        np.full(qm.n_in, z),  # real zero everywhere
        np.full(qm.n_in, 127),
        np.full(qm.n_in, -128),
        np.where(np.arange(qm.n_in) % 2 == 0, 127, -128),
    ]
    rows += [rng.integers(-128, 128, size=qm.n_in) for _ in range(40)]
    return np.asarray(rows, dtype=np.int8)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_c_matches_reference_bit_for_bit(case):
    _, hidden, lsh_kw, output_lsh, bits, tables = case
    net, qm, x, _ = _model(hidden, lsh_kw, output_lsh, bits)
    fm = FixedPointModel(elsh_format.elsh_bytes(qm, tables=tables))
    rng = np.random.default_rng(0)
    xq_all = np.concatenate([_edge_inputs(qm, rng), qreference.quantize_input(qm, x[400:])])
    for xq in xq_all:
        pred_c, logits_c = fm.forward_q(xq)
        logits_r, pred_r, actives_r = qreference.forward(qm, xq)
        assert np.array_equal(logits_c.astype(np.int64), logits_r)
        assert pred_c == pred_r
        for li, act in enumerate(actives_r):
            assert np.array_equal(fm.last_active(li), act), f"layer {li} active set"
    # the float input path: quantization is the same float32 arithmetic on both sides
    assert np.array_equal(fm.quantize_input(x[400:]), qreference.quantize_input(qm, x[400:]))
    pred, logits = fm.predict_logits(x[400:])
    assert np.array_equal(
        logits.astype(np.int64), qreference.logits_batch(qm, qreference.quantize_input(qm, x[400:]))
    )


def test_stored_and_rebuilt_tables_agree():
    _, qm, x, _ = _model([64], dict(family="ternary"), False, 8)
    with_t = FixedPointModel(elsh_format.elsh_bytes(qm, tables=True))
    without = FixedPointModel(elsh_format.elsh_bytes(qm, tables=False))
    assert np.array_equal(with_t.predict_logits(x)[1], without.predict_logits(x)[1])


def test_k_larger_than_candidates():
    # one table of 1 bit: at most 2 buckets, so k = all neurons exceeds the candidates of a bucket
    _, qm, x, y = _model([60], dict(family="ternary", bits=1, tables=1), False, 8)
    fm = FixedPointModel(elsh_format.elsh_bytes(qm))
    fm.set_active(1.0)
    xq = qreference.quantize_input(qm, x[400:420])
    for row in xq:
        fm.forward_q(row)
        assert np.array_equal(fm.last_active(0), np.arange(60))
    with pytest.raises(ValueError):
        fm.set_active(1.5)


def _with_k(qm, k_of):
    """A copy of qm whose LSH layers have k = k_of(layer): the oracle at another active count."""
    q = copy.deepcopy(qm)
    for layer in q.layers:
        if layer.use_lsh:
            layer.k = k_of(layer)
    return q


def _c_k(fraction: float, n_out: int) -> int:
    """The C kernel's k for an active fraction (elsh_active_k: float32 round half up, >= 1)."""
    k = int(np.float32(fraction) * np.float32(n_out) + np.float32(0.5))
    return min(max(k, 1), n_out)


def _c_logits(fm, xq):
    return np.stack([fm.forward_q(row)[1] for row in xq]).astype(np.int64)


@pytest.fixture(scope="module")
def sparse_net():
    """Two LSH hidden layers and an LSH output layer: every layer has a k to change."""
    _, qm, x, _ = _model([48, 40], dict(family="dwta", center=True, bits=3, tables=10), True, 8)
    assert [layer.use_lsh for layer in qm.layers] == [True, True, True]
    assert all(layer.k < layer.n_out for layer in qm.layers)
    return qm, x[400:460], qreference.quantize_input(qm, x[400:460])


def test_dense_mode_is_the_oracle_with_every_neuron_active(sparse_net):
    qm, x, xq = sparse_net
    fm = FixedPointModel(elsh_format.elsh_bytes(qm))
    everyone = _with_k(qm, lambda layer: layer.n_out)
    want = qreference.logits_batch(everyone, xq)
    assert (want > qreference.INACTIVE_LOGIT).all()  # every class computed, unlike the file's k
    sparse = qreference.logits_batch(qm, xq)
    assert (sparse == qreference.INACTIVE_LOGIT).any(axis=1).all()
    fm.set_active(None, dense=True)
    assert np.array_equal(_c_logits(fm, xq), want)
    _, logits = fm.predict_logits(x)  # the float input path, batched
    assert np.array_equal(logits.astype(np.int64), want)


def test_set_active_none_restores_the_files_k(sparse_net):
    qm, _, xq = sparse_net
    fm = FixedPointModel(elsh_format.elsh_bytes(qm))
    file_k = [fm.layer_info(i)["k"] for i in range(fm.n_layers)]
    assert file_k == [layer.k for layer in qm.layers]
    original = _c_logits(fm, xq)
    assert np.array_equal(original, qreference.logits_batch(qm, xq))
    for fraction, dense in ((0.1, False), (None, True), (1.0, False), (0.5, True)):
        fm.set_active(fraction, dense=dense)
        assert not np.array_equal(_c_logits(fm, xq), original), (fraction, dense)
        fm.set_active(None)
        assert [fm.layer_info(i)["k"] for i in range(fm.n_layers)] == file_k
        assert np.array_equal(_c_logits(fm, xq), original), (fraction, dense)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.75])
def test_active_fraction_is_the_oracle_with_that_k(sparse_net, fraction):
    qm, _, xq = sparse_net
    fm = FixedPointModel(elsh_format.elsh_bytes(qm))
    fm.set_active(fraction)
    ks = [_c_k(fraction, layer.n_out) for layer in qm.layers]
    assert [fm.layer_info(i)["k"] for i in range(fm.n_layers)] == ks
    assert ks != [layer.k for layer in qm.layers]  # another k than the file's
    oracle = _with_k(qm, lambda layer: _c_k(fraction, layer.n_out))
    for row in xq:
        logits_r, pred_r, actives_r = qreference.forward(oracle, row)
        pred_c, logits_c = fm.forward_q(row)
        assert np.array_equal(logits_c.astype(np.int64), logits_r)
        assert pred_c == pred_r
        for li, act in enumerate(actives_r):
            assert act.size == ks[li]
            assert np.array_equal(fm.last_active(li), act), f"layer {li} active set"


def test_saturated_activations_match():
    # inputs far outside the calibration range saturate every hidden output at 127
    net, qm, x, _ = _model([64], dict(family="ternary"), False, 8)
    fm = FixedPointModel(elsh_format.elsh_bytes(qm))
    big = np.full((3, qm.n_in), 1e6, dtype=np.float32)
    xq = fm.quantize_input(big)
    assert (xq == 127).all()
    for row in xq:
        logits_r, _, _ = qreference.forward(qm, row)
        assert np.array_equal(fm.forward_q(row)[1].astype(np.int64), logits_r)


def test_fixed_accuracy_close_to_float():
    net, qm, x, y = _model([64], dict(family="ternary"), False, 8)
    fm = FixedPointModel(elsh_format.elsh_bytes(qm))
    acc_float = float((net.predict(x[400:]) == y[400:]).mean())
    acc_fixed = fm.evaluate(x[400:], y[400:])["accuracy"]
    assert abs(acc_fixed - acc_float) <= 0.02


def test_corrupt_files_raise_model_file_error(tmp_path):
    _, qm, _, _ = _model([32], dict(family="ternary"), False, 8)
    blob = bytearray(elsh_format.elsh_bytes(qm))
    cases = {
        "ELSH_FMT_TRUNCATED": bytes(blob[:100]),
        "ELSH_FMT_MAGIC": b"XXXX" + bytes(blob[4:]),
        "ELSH_FMT_CRC": bytes(blob[:-1]) + bytes([blob[-1] ^ 1]),
    }
    for code, data in cases.items():
        with pytest.raises(ModelFileError, match=code):
            FixedPointModel(data)
    path = tmp_path / "m.elsh"
    path.write_bytes(bytes(blob[:-7]))
    with pytest.raises(ModelFileError, match="m.elsh"):
        FixedPointModel.load(path)
    with pytest.raises(ModelFileError, match="no such"):
        FixedPointModel.load(tmp_path / "missing.elsh")


def test_bad_inputs_rejected():
    _, qm, x, y = _model([32], dict(family="ternary"), False, 8)
    fm = FixedPointModel(elsh_format.elsh_bytes(qm))
    with pytest.raises(ValueError, match="shape"):
        fm.predict(x[:, :5])
    bad = x[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        fm.predict(bad)
    with pytest.raises(ValueError):
        fm.forward_q(np.zeros(3, dtype=np.int8))
    with pytest.raises(ValueError):
        fm.evaluate(x[:3], y[:2])


def test_golden_files_match_c(tmp_path):
    """Every golden model's recorded logits come out of the C kernel unchanged."""
    from pathlib import Path

    golden = Path(__file__).resolve().parent.parent / "export" / "golden"
    files = sorted(golden.glob("*.elsh"))
    assert files, "no golden files"
    for path in files:
        fm = FixedPointModel.load(path)
        lines = path.with_suffix(".expect").read_text().split("\n")
        n, n_in, n_classes = map(int, lines[0].split())
        for s in range(n):
            xq = np.array(lines[1 + 3 * s].split(), dtype=np.int8)
            want = np.array(lines[2 + 3 * s].split(), dtype=np.int64)
            pred, logits = fm.forward_q(xq)
            assert np.array_equal(logits.astype(np.int64), want), path.name
            assert pred == int(lines[3 + 3 * s])
