"""Per-operation costs fitted to measurements recover the costs of a synthetic device: a
meter (SyntheticMeter) whose device draws 1 W idle plus known joules per counted operation,
measured through edge_lsh.energy.measure (idle baseline subtracted) on a fake clock, at
several active fractions, weight widths and hash families (30 configurations)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_lsh.energy.measure import SyntheticMeter, fit_costs, measure
from edge_lsh.energy.model import inference_ops
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import elsh_bytes
from edge_lsh.network import LSHConfig, Network
from edge_lsh.quantize import quantize

# a device where every kind of operation shows in the total
COSTS = {"mul": 3e-12, "add": 1e-12, "cmp": 2e-12, "weight_bytes": 5e-12, "table_bytes": 8e-12}
CONFIGS = [
    ("ternary", 8, "topk"),
    ("simhash", 4, "topk"),
    ("dwta", 16, "topk"),
    ("ternary", 32, "union"),
    ("dwta", 8, "union"),
]


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


@pytest.fixture(scope="module")
def models() -> list[FixedPointModel]:
    rng = np.random.default_rng(0)
    x = rng.random((100, 64)).astype(np.float32)
    y = rng.integers(0, 5, 100)
    out = []
    for fam, tables, sel in CONFIGS:
        cfg = LSHConfig(
            active_fraction=0.1, family=fam, bits=4, tables=tables, dwta_bin=4, select=sel
        )
        net = Network(64, [200], 5, cfg, seed=1)
        net.fit(x, y, epochs=1)
        for bits in (8, 16):
            out.append(FixedPointModel(elsh_bytes(quantize(net, x, weight_bits=bits))))
    return out


@pytest.mark.parametrize("noise", [0.0, 0.0005])
def test_fit_recovers_known_costs_within_5_percent(models, noise):
    rng = np.random.default_rng(1)
    x = rng.random((20, 64)).astype(np.float32)
    clock = FakeClock()
    rows, joules = [], []
    for model in models:
        for frac, dense in ((0.05, False), (0.3, False), (None, True)):
            model.set_active(frac, dense=dense)
            ops, _ = inference_ops(model, x)
            meter = SyntheticMeter(model, COSTS, 1.0, clock=clock, noise=noise, seed=len(rows))

            def work(model: FixedPointModel = model) -> int:
                model.predict(x)
                clock.t += 0.01
                return x.shape[0]

            m = measure(meter, work, idle_seconds=1.0, seconds=0.05, clock=clock, sleep=clock.sleep)
            assert m.idle_watts == pytest.approx(1.0)
            rows.append(ops)
            joules.append(m.joules_per_inference)
    fit = fit_costs(rows, joules)
    assert fit["configurations"] == 30
    for kind, cost in COSTS.items():
        assert fit["joules_per_op"][kind] == pytest.approx(cost, rel=0.05), kind
    if noise == 0.0:
        assert fit["relative_residual"] < 1e-9


def test_fit_needs_enough_configurations():
    with pytest.raises(ValueError, match="at least 5"):
        fit_costs(
            [{"mul": 1.0, "add": 1.0, "cmp": 0.0, "weight_bytes": 1.0, "table_bytes": 0.0}], [1.0]
        )


def test_joules_per_multiplication_and_per_byte_with_confidence_intervals(models):
    """The issue's fit: a sweep of active fractions, energy per inference fitted against the
    counted multiplications and bytes; a device whose energy is 0.5 pJ per multiplication and
    20 pJ per byte read (plus small costs the fit does not model) is recovered within 5%, and
    each 95% interval holds the true cost."""
    rng = np.random.default_rng(2)
    x = rng.random((20, 64)).astype(np.float32)
    costs = {"mul": 0.5e-12, "add": 0.0, "cmp": 0.0, "weight_bytes": 20e-12, "table_bytes": 20e-12}
    clock = FakeClock()
    rows, joules = [], []
    model = models[0]
    for frac, dense in ((0.05, False), (0.1, False), (0.25, False), (0.5, False), (None, True)):
        model.set_active(frac, dense=dense)
        ops, _ = inference_ops(model, x)
        meter = SyntheticMeter(model, costs, 1.0, clock=clock, noise=0.002, seed=len(rows))

        def work() -> int:
            model.predict(x)
            clock.t += 0.01
            return x.shape[0]

        m = measure(meter, work, idle_seconds=1.0, seconds=0.05, clock=clock, sleep=clock.sleep)
        rows.append(ops)
        joules.append(m.joules_per_inference)
    fit = fit_costs(rows, joules, kinds=("mul", "bytes"))
    assert fit["joules_per_op"]["bytes"] == pytest.approx(20e-12, rel=0.05)
    assert fit["joules_per_op"]["mul"] == pytest.approx(0.5e-12, rel=0.05)
    ci = fit["confidence_95"]
    assert ci is not None
    assert ci["bytes"][0] <= 20e-12 <= ci["bytes"][1]
    assert ci["mul"][0] <= 0.5e-12 <= ci["mul"][1]
    exact = fit_costs(rows[:2], joules[:2], kinds=("mul", "bytes"))
    assert exact["confidence_95"] is None  # as many configurations as costs: no interval
