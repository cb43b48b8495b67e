"""The kernel's op counters (what the energy model multiplies) against counts derived
independently from the numpy oracles (edge_lsh.energy.opcount): every multiplication,
addition, comparison and byte, exactly, per phase, on random networks of every hash family
(ternary, SimHash, DWTA), with top-k and union selection, centered and not: fixed-point
inference (active and dense), float inference, and float training steps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edge_lsh.energy.model import estimate, inference_ops, total_ops, training_ops
from edge_lsh.energy.opcount import (
    backward_counts,
    float_counts,
    neuron_hash_counts,
    qnet_counts,
)
from edge_lsh.energy.profiles import PROFILES
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import elsh_bytes, read_elsh
from edge_lsh.network import LSHConfig, Network, TrainConfig
from edge_lsh.quantize import quantize

FAMILIES = ("ternary", "simhash", "dwta")
N_IN, HIDDEN, N_CLASSES = 18, [30, 20], 5


def data(seed: int, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, N_IN)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = 0.0  # zeros: empty DWTA bins, so densification probes
    return x, rng.integers(0, N_CLASSES, n)


def network(family: str, select: str, center: bool, seed: int, output_lsh: bool) -> Network:
    cfg = LSHConfig(
        active_fraction=0.2,
        family=family,
        bits=3,
        tables=5,
        pool=1 if family == "dwta" else 2,
        select=select,
        center=center,
        dwta_bin=4,
    )
    return Network(N_IN, HIDDEN, N_CLASSES, cfg, output_lsh=output_lsh, seed=seed)


def delta(a: dict, b: dict) -> dict:
    return {ph: {k: a[ph][k] - b[ph][k] for k in a[ph]} for ph in a}


CASES = [
    (fam, sel, center)
    for fam in FAMILIES
    for sel, center in (("topk", False), ("union", True), ("topk", True))
]


@pytest.mark.parametrize("family,select,center", CASES)
def test_fixed_point_inference_counts_equal_the_oracle(family, select, center):
    x, y = data(1)
    net = network(family, select, center, seed=7, output_lsh=select == "union")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(x, y, epochs=1)
    raw = elsh_bytes(quantize(net, x), tables=center)  # stored tables, and built at load
    model, qm = FixedPointModel(raw), read_elsh(raw)
    xq = model.quantize_input(x[:25])
    for dense in (False, True):
        model.set_active(None, dense=dense)
        for r in range(xq.shape[0]):
            want = qnet_counts(qm, xq[r], dense=dense)
            model.forward_q(xq[r])
            assert model.ops(total=False) == want, (family, select, center, dense, r)


@pytest.mark.parametrize("family,select,center", CASES)
def test_float_inference_counts_equal_the_oracle(family, select, center):
    x, y = data(2)
    net = network(family, select, center, seed=3, output_lsh=select == "union")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(x, y, epochs=1)
    for r in range(25):
        want = float_counts(net, x[r])
        net.predict(x[r : r + 1])
        got = net.ops(total=False)
        assert {ph: got[ph] for ph in want} == want, (family, select, center, r)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("rebuild", ["never", "every"])
def test_training_step_counts_equal_the_oracle(family, rebuild):
    """Forward (label forced into the LSH output), backward and update exactly; the tables
    phase (rebuild="every": re-hash the updated neurons after every step) in multiplications,
    additions, comparisons and weight bytes. Its table bytes depend on the buckets' FIFO
    history, which no accessor exposes: not derived."""
    x, y = data(3, 40)
    net = network(family, "topk", False, seed=5, output_lsh=True)
    tc = TrainConfig(rebuild=rebuild, rebuild_every=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(30):
            want = float_counts(net, x[r], int(y[r]))
            before = net.ops()
            net.fit(x[r : r + 1], y[r : r + 1], epochs=1, train=tc)
            got = delta(net.ops(), before)
            actives = [net.last_active(i) for i in range(net.n_layers)]
            want.update(backward_counts([a.size for a in actives], net.n_in))
            assert {ph: got[ph] for ph in want} == want, (family, rebuild, r)
            tables = {"mul": 0, "add": 0, "cmp": 0, "weight_bytes": 0}
            if rebuild == "every":
                for i in range(net.n_layers):
                    if net.layer_info(i)["lsh"]:
                        for k, v in neuron_hash_counts(net, i, actives[i]).items():
                            tables[k] += v
            assert {k: got["tables"][k] for k in tables} == tables, (family, rebuild, r)
            if rebuild == "never":
                assert got["tables"]["table_bytes"] == 0


def test_model_figures_come_from_the_counters():
    x, y = data(4)
    net = network("ternary", "topk", False, seed=1, output_lsh=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(x, y, epochs=1)
    model = FixedPointModel(elsh_bytes(quantize(net, x)))
    ops, seconds = inference_ops(model, x[:10])
    want = [qnet_counts(read_elsh(model.file_bytes()), r) for r in model.quantize_input(x[:10])]
    mean = {k: sum(total_ops(w)[k] for w in want) / 10 for k in total_ops(ops)}
    assert total_ops(ops) == pytest.approx(mean)
    assert seconds > 0
    e = estimate(PROFILES["horowitz45"], ops=ops, arithmetic="int8")
    t = total_ops(ops)
    arith = (t["mul"] * 0.2 + (t["add"] + t["cmp"]) * 0.1) * 1e-12
    nbytes = t["weight_bytes"] + t["table_bytes"]
    assert e.low == pytest.approx(arith + nbytes * 1300e-12 / 8)
    assert e.high == pytest.approx(arith + nbytes * 2600e-12 / 8)
    # training: counted on a copy, the centers' forward passes taken out
    step, _ = training_ops(net, x[:20], y[:20], TrainConfig(rebuild="never"))
    assert step["backward"]["weight_bytes"] > 0 and step["update"]["mul"] > 0
