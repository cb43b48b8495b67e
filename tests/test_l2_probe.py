"""tools/finetune/l2_probe.py (a research probe, issue 10): its oracle wrapper with the decay
off is the C fixed-point step bit for bit (so the probe measures only the decay), and with the
decay on, a step whose data gradient is zero moves the active rows' masters toward zero."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
from test_qreference import random_qmodel
from test_qtrain import _config, _inputs, assert_same_state

from edge_lsh.finetune import FixedTrainer
from edge_lsh.format import elsh_bytes
from edge_lsh.format.reader import parse
from edge_lsh.oracle.qtrain import ADAGRAD

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "finetune"


def load_probe() -> Any:
    spec = importlib.util.spec_from_file_location("l2_probe", TOOLS / "l2_probe.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["l2_probe"] = module
    spec.loader.exec_module(module)
    return module


probe = load_probe()


def test_decay_off_is_the_c_step_bit_for_bit() -> None:
    rng = np.random.default_rng(10)
    lsh_moves = 0
    for _ in range(6):
        qm = random_qmodel(rng, extreme=False)
        cfg = _config(rng, ADAGRAD, int(rng.choice([0, 16384])), 0)
        data = elsh_bytes(qm)
        ft = FixedTrainer(data, config=cfg)
        orc = probe.L2QTrainer(parse(data), cfg, 0.0)
        before = [orc.layer_arrays(li)["tab_ids"] for li in range(orc.qm.n_layers)]
        xs = _inputs(qm, rng, 12)
        labels = rng.integers(0, qm.layers[-1].n_out, xs.shape[0])
        for s, (xq, label) in enumerate(zip(xs, labels)):
            assert ft.step_q(xq, int(label)) == orc.step(xq, int(label)), f"prediction {s}"
            assert_same_state(ft, orc, f"step {s}")
        for li, ids in enumerate(before):
            after = orc.layer_arrays(li)["tab_ids"]
            if ids is not None and not np.array_equal(ids, after):
                lsh_moves += 1
    assert lsh_moves > 0, "no table moved: the faster _move was not exercised"


def test_decay_on_pulls_masters_toward_zero_on_a_zero_gradient() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        qm = random_qmodel(rng, extreme=False)
        if qm.layers[0].use_lsh:
            continue
        cfg = _config(rng, ADAGRAD, 0, 0)
        cfg.lr_w, cfg.lr_w_shift = [4] * 8, [0] * 8  # a first step of about 4 master units
        data = elsh_bytes(qm)
        zero = np.full(qm.n_in, qm.input_zero_point, dtype=np.int8)  # layer 0's x = 0
        off = probe.L2QTrainer(parse(data), cfg, 0.0)
        try:
            on = probe.L2QTrainer(parse(data), cfg, 0.01)
        except ValueError:  # this model's scales make the multiplier overflow int64
            continue
        if not np.any(on.k[0] > 0):
            continue
        m0 = on.state[0].master.copy()
        off.step(zero, 0)
        on.step(zero, 0)
        np.testing.assert_array_equal(off.state[0].master, m0)  # no gradient, no step
        m1 = on.state[0].master
        moved = m1 != m0
        assert moved.any()
        assert np.all(np.abs(m1) <= np.abs(m0))  # toward zero, never across it
        assert np.all(np.sign(m1 - m0)[moved & (m0 != 0)] == -np.sign(m0)[moved & (m0 != 0)])
        return
    raise AssertionError("no dense-input random model with a nonzero decay was drawn")
