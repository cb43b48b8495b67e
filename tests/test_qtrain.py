"""The fixed-point training step of the C kernel (native/src/train_q.c, edge_lsh.finetune)
against the numpy oracle of the same integer arithmetic (edge_lsh.oracle.qtrain): after every
step, every weight (int16 master and derived inference weights), bias, optimizer state, PRNG
state and table entry is equal, on random networks of every hash family, with SGD, Adagrad and
momentum, all layers / the last / the last N trainable; edge cases: saturation (huge rates,
weights at the int16 limits), all-zero inputs, k = n_out, a label at an inactive output class.
Also: the step's object files call no float routine on an FPU-less Cortex-M0+, and a saved
model reads back (Python reader, C reader) with the trained weights, tables and predictions."""

from __future__ import annotations

import dataclasses
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_qreference import random_qmodel

from edge_lsh.errors import ElshFormatError
from edge_lsh.finetune import FixedTrainer, rates, train_layers_count
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import QModel, Section, assemble, elsh_bytes, model_sections
from edge_lsh.format.layout import LAYER_STATE, NO_LAYER, TRAIN_STATE
from edge_lsh.format.reader import parse
from edge_lsh.oracle import qreference
from edge_lsh.oracle.qtrain import (
    ADAGRAD,
    SGD,
    QTrainConfig,
    QTrainer,
    exp_q,
    isqrt_u32,
)

ROOT = Path(__file__).resolve().parents[1]
STATE_KEYS = (
    "weights",
    "bias",
    "master",
    "vel_w",
    "vel_b",
    "acc_w",
    "acc_b",
    "tab_offsets",
    "tab_ids",
)


def _config(
    rng: np.random.Generator, optimizer: int, momentum: int, train_layers: int, big: bool = False
) -> QTrainConfig:
    hi = 2**31 - 1 if big else 2**24
    return QTrainConfig(
        optimizer=optimizer,
        train_layers=train_layers,
        momentum_q15=momentum,
        lr_w=[int(v) for v in rng.integers(1, hi, 8)],
        lr_w_shift=[0 if big else int(v) for v in rng.integers(2, 14, 8)],
        lr_b=[int(v) for v in rng.integers(1, hi, 8)],
        lr_b_shift=[0 if big else int(v) for v in rng.integers(2, 14, 8)],
        seed=int(rng.integers(0, 2**63)),
    )


def assert_same_state(ft: FixedTrainer, orc: QTrainer, where: str) -> None:
    for li in range(orc.qm.n_layers):
        c = ft.layer_state(li)
        o = orc.layer_arrays(li)
        assert c["trainable"] == (li >= orc.first), where
        for key in STATE_KEYS:
            ov = o.get(key)
            cv = c[key]
            if ov is None:
                assert cv is None, f"{where}: layer {li} {key} present in C only"
                continue
            assert cv is not None, f"{where}: layer {li} {key} missing in C"
            np.testing.assert_array_equal(
                np.asarray(cv, np.int64),
                np.asarray(ov, np.int64),
                err_msg=f"{where}: layer {li} {key}",
            )
    assert ft.prng_state() == orc.prng.state, where
    assert ft.steps == orc.steps, where


def run_both(
    qm: QModel, cfg: QTrainConfig, inputs: np.ndarray, labels: np.ndarray, tables: bool = True
) -> tuple[FixedTrainer, QTrainer]:
    data = elsh_bytes(qm, tables=tables)
    ft = FixedTrainer(data, config=cfg)
    orc = QTrainer(parse(data), cfg)
    assert_same_state(ft, orc, "after attach")
    for s, (xq, label) in enumerate(zip(inputs, labels)):
        assert ft.step_q(xq, int(label)) == orc.step(xq, int(label)), f"prediction at step {s}"
        assert_same_state(ft, orc, f"step {s}")
    return ft, orc


def _inputs(qm: QModel, rng: np.random.Generator, n: int) -> np.ndarray:
    z = qm.input_zero_point
    rows = [np.full(qm.n_in, z)]  # all-zero input (real zero everywhere)
    for r in range(n - 1):
        v = rng.integers(-128, 128, qm.n_in)
        rows.append(np.where(rng.random(qm.n_in) < 0.4, z, v) if r % 2 else v)
    return np.array(rows, dtype=np.int8)


def _families(qm: QModel) -> set[int]:
    return {L.family for L in qm.layers if L.use_lsh}


@pytest.mark.parametrize("optimizer", [SGD, ADAGRAD])
@pytest.mark.parametrize("momentum", [0, 29491])
def test_random_networks_match_the_oracle(optimizer: int, momentum: int) -> None:
    rng = np.random.default_rng(100 * optimizer + momentum % 97)
    seen: set[tuple[int, int]] = set()  # (family, train_layers kind)
    moved = changed = 0
    for case in range(14):
        qm = random_qmodel(rng, extreme=False)
        kind = case % 3  # all, last, the last 2 (or all of a smaller network)
        tl = [0, 1, min(2, qm.n_layers)][kind]
        cfg = _config(rng, optimizer, momentum, tl)
        ft, orc = run_both(
            qm, cfg, _inputs(qm, rng, 5), rng.integers(0, qm.n_classes, 5), tables=case % 2 == 0
        )
        seen |= {(f, kind) for f in _families(qm)}
        before = parse(elsh_bytes(qm))
        for li in range(qm.n_layers):
            L = orc.qm.layers[li]
            if li < orc.first:  # frozen: exactly the file's
                np.testing.assert_array_equal(L.weights, before.layers[li].weights)
                continue
            changed += int((L.weights != before.layers[li].weights).sum())
            if L.use_lsh:
                moved += int(
                    (
                        qreference.layer_tables(L)[1]
                        != qreference.layer_tables(before.layers[li])[1]
                    ).sum()
                )
    assert {f for f, _ in seen} == {0, 1, 2}, f"families covered: {seen}"
    assert changed > 0 and moved > 0, (changed, moved)  # the steps did change weights and tables


def test_saturation_huge_rates_and_int16_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    hits = 0
    # hidden outputs at the int8 clamp (127): the gradient passes only when it lowers them
    clamp = {"passed": 0, "blocked": 0}
    backprop = QTrainer._backprop

    def counting(
        self: QTrainer, li: int, act_h: np.ndarray, act_u: np.ndarray, d_u: np.ndarray
    ) -> np.ndarray:
        back = backprop(self, li, act_h, act_u, d_u)
        w = self.qm.layers[li + 1].weights.astype(np.int64)[np.ix_(act_u, act_h)]
        raw = (d_u[:, None] * w).sum(axis=0)
        at = self._out[li] == 127
        assert np.array_equal(back[at & (raw > 0)], raw[at & (raw > 0)])
        assert not back[at & (raw < 0)].any()
        clamp["passed"] += int((at & (raw > 0)).sum())
        clamp["blocked"] += int((at & (raw < 0)).sum())
        return back

    monkeypatch.setattr(QTrainer, "_backprop", counting)
    for case in range(6):
        qm = random_qmodel(rng, extreme=case % 2 == 0)
        for L in qm.layers:  # weights at the limits of their type
            qmax = 127 if L.weight_bits == 8 else 32767
            L.weights = np.where(rng.random(L.weights.shape) < 0.5, qmax, -qmax).astype(
                L.weights.dtype
            )
            L.table_offsets = L.table_ids = None
        cfg = _config(rng, case % 2, 32767 if case % 3 == 0 else 0, 0, big=True)
        _, orc = run_both(qm, cfg, _inputs(qm, rng, 4), rng.integers(0, qm.n_classes, 4))
        for st in orc.state.values():
            hits += int((np.abs(st.master) == 32767).sum())
    assert hits > 0  # masters did reach the clamp
    assert clamp["passed"] > 0 and clamp["blocked"] > 0, clamp


def test_dense_k_equals_n_out_and_label_at_an_inactive_class() -> None:
    rng = np.random.default_rng(11)
    forced = 0
    tried = 0
    while forced < 3 and tried < 60:
        tried += 1
        qm = random_qmodel(rng, extreme=False)
        out = qm.layers[-1]
        if not out.use_lsh or out.n_out < 3:
            continue
        out.k = 1  # the output computes one class: most labels are inactive
        for L in qm.layers[:-1]:
            if L.use_lsh:
                L.k = L.n_out  # k = n_out: every neuron, through the LSH path
        xs = _inputs(qm, rng, 4)
        labels = []
        for x in xs:
            _, _, act = qreference.forward(qm, x)
            inactive = sorted(set(range(out.n_out)) - set(act[-1].tolist()))
            labels.append(inactive[0])
        cfg = _config(rng, ADAGRAD, 0, 0)
        run_both(qm, cfg, xs[:1], np.array(labels[:1]))
        forced += 1
    assert forced == 3


def test_exp_and_isqrt_definitions() -> None:
    u = np.array([0, -1, -65536, -(1 << 20), -(1 << 22)], dtype=np.int64)
    e = exp_q(u)
    assert e[0] == 1 << 30
    ref = np.exp(u / 65536.0) * 2**30
    assert np.all(np.abs(e - ref) <= 2e-4 * 2**30)
    a = np.array([0, 1, 2, 3, 4, 15, 16, 2**32 - 1, 65535**2, 65536**2 - 1], dtype=np.int64)
    import math

    assert isqrt_u32(a).tolist() == [math.isqrt(int(v)) for v in a]


def test_frozen_layers_use_the_file_and_the_plan_is_exact() -> None:
    rng = np.random.default_rng(5)
    qm = random_qmodel(rng, extreme=False)
    while qm.n_layers < 3:
        qm = random_qmodel(rng, extreme=False)
    data = elsh_bytes(qm)
    sizes = {}
    for tl in (0, 1, 2, 3):
        cfg = _config(rng, ADAGRAD, 0, tl)
        ft = FixedTrainer(data, config=cfg)
        sizes[tl] = ft.train_arena_bytes
        ft2 = FixedTrainer(data, config=dataclasses.replace(cfg))
        assert ft2.train_arena_bytes == sizes[tl]
    assert sizes[1] < sizes[2] < sizes[3] == sizes[0]
    assert train_layers_count("all", 3) == 0 and train_layers_count("last", 3) == 1
    assert train_layers_count("2", 3) == 2
    for bad in ("4", "0", "x"):
        with pytest.raises(ValueError):
            train_layers_count(bad, 3)


def test_save_reads_back_with_the_trained_weights_tables_and_predictions(tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    for case in range(6):
        qm = random_qmodel(rng, extreme=False)
        cfg = _config(rng, case % 2, 0, 0)
        xs = _inputs(qm, rng, 6)
        ft, orc = run_both(qm, cfg, xs, rng.integers(0, qm.n_classes, 6), tables=case % 2 == 0)
        out = tmp_path / f"m{case}.elsh"
        ft.save(out)
        data = out.read_bytes()
        assert data == ft.save_bytes()  # deterministic
        back = parse(data)
        for a, b in zip(orc.qm.layers, back.layers):
            np.testing.assert_array_equal(a.weights, b.weights)
            np.testing.assert_array_equal(a.bias, b.bias)
            if a.use_lsh:
                oa, ia = qreference.layer_tables(a)
                ob, ib = qreference.layer_tables(b)
                np.testing.assert_array_equal(oa, ob)
                np.testing.assert_array_equal(ia, ib)
        fm = FixedPointModel(data)
        for x in xs:
            pc, lc = fm.forward_q(x)
            pt, lt = ft.model.forward_q(x)
            assert pc == pt and np.array_equal(lc, lt)
            lo, po, _ = qreference.forward(back, x)
            assert po == pc and np.array_equal(lo, lc)


def test_float_learning_rates_become_integers() -> None:
    rng = np.random.default_rng(3)
    qm = random_qmodel(rng, extreme=False)
    for opt in (SGD, ADAGRAD):
        lw, lws, lb, lbs = rates(elsh_bytes(qm), opt, 0.01)
        for m, s in zip(lw + lb, lws + lbs):
            assert 0 <= m < 2**31 and 0 <= s <= 62


def _arm_objects(tmp: Path) -> dict[str, list[str]]:
    cc = shutil.which("arm-none-eabi-gcc")
    nm = shutil.which("arm-none-eabi-nm")
    assert cc and nm, "arm-none-eabi-gcc is installed by firmware_tests/install.sh"
    out: dict[str, list[str]] = {}
    for name in ("train_q", "train_q_save", "layer_q", "hash_q", "dot_q", "arena", "quant_q"):
        obj = tmp / f"{name}.o"
        subprocess.run(
            [
                cc,
                "-std=c99",
                "-ffp-contract=off",
                "-O2",
                "-mcpu=cortex-m0plus",
                "-mthumb",
                "-mfloat-abi=soft",
                "-I",
                str(ROOT / "native/include"),
                "-I",
                str(ROOT / "native/src"),
                "-c",
                str(ROOT / "native/src" / f"{name}.c"),
                "-o",
                str(obj),
            ],
            check=True,
        )
        syms = subprocess.run(
            [nm, "-u", str(obj)], check=True, capture_output=True, text=True
        ).stdout
        out[name] = [s.split()[-1] for s in syms.splitlines() if s.strip()]
    return out


def test_the_step_uses_no_float_on_a_cortex_m0plus(tmp_path: Path) -> None:
    syms = _arm_objects(tmp_path)

    def floats(name: str) -> list[str]:
        return [
            s
            for s in syms[name]
            if s.startswith(("__aeabi_f", "__aeabi_d", "__aeabi_i2f", "__aeabi_ui2f"))
        ]

    assert floats("quant_q"), "the check must see soft-float calls where there are some"
    for name in ("train_q", "train_q_save", "layer_q", "hash_q", "dot_q", "arena"):
        assert floats(name) == [], f"{name}.o calls soft-float routines: {floats(name)}"


def test_ops_count_the_training_phases() -> None:
    rng = np.random.default_rng(9)
    qm = random_qmodel(rng, extreme=False)
    while qm.n_layers < 2:
        qm = random_qmodel(rng, extreme=False)
    ft = FixedTrainer(elsh_bytes(qm), config=_config(rng, ADAGRAD, 0, 0))
    for x in _inputs(qm, rng, 3):
        ft.step_q(x, 0)
    ops: dict[str, Any] = ft.ops
    for phase in ("forward", "backward", "update"):
        assert ops["phases"][phase]["mul"] > 0, phase
    assert ops["multiplications_per_sample"] > 0


def test_dense_multiplications_count_the_trainable_layers_only() -> None:
    """FixedTrainer.dense_multiplications is what the same step does with every neuron active
    (checked against the C counters of a dense run, without its table upkeep, within the
    per-neuron terms it leaves out and the backward pass it counts for every neuron, ReLU-off
    ones included), for the layers that train: freezing the hidden layer makes it smaller."""
    rng = np.random.default_rng(21)
    qm = random_qmodel(rng, extreme=False)
    while qm.n_layers < 2:
        qm = random_qmodel(rng, extreme=False)
    data = elsh_bytes(qm)
    sizes = [L.n_in * L.n_out for L in qm.layers]
    xs = _inputs(qm, rng, 4)
    counted = {}
    for tl in (0, 1):
        for opt, momentum in ((ADAGRAD, 16384), (SGD, 0)):
            cfg = _config(rng, opt, momentum, tl)
            ft = FixedTrainer(data, config=cfg)
            per_weight = 1 + (4 if opt == ADAGRAD else 1) + (1 if momentum else 0)
            trainable = sizes[-1:] if tl == 1 else sizes
            want = sum(sizes) + per_weight * sum(trainable) + sum(trainable[1:])
            assert ft.dense_multiplications() == want
            ft.model.set_active(dense=True)
            for x in xs:
                ft.step_q(x, int(rng.integers(0, qm.n_classes)))
            ops = ft.ops
            assert ops["dense_multiplications_per_sample"] == want
            # a dense trainer keeps no tables: its forward, backward and update phases
            measured = sum(ops["phases"][p]["mul"] for p in ("forward", "backward", "update"))
            neurons = sum(L.n_out for L in qm.layers)
            upper_backward = sum(trainable[1:])
            # per neuron at most: requantization 1, output delta 4, hidden delta 1, bias step 6
            assert want - upper_backward <= measured <= want + 12 * neurons, (tl, opt, measured)
            counted[(tl, opt)] = want
    for opt in (ADAGRAD, SGD):
        assert counted[(1, opt)] < counted[(0, opt)]


# ----------------------------------------------------------------------------- trained state


def _trained(seed: int, steps: int, tables: bool, momentum: int = 20000) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    qm = random_qmodel(rng, extreme=False)
    cfg = _config(rng, seed % 2, momentum, [0, 1][seed % 2])
    xs = _inputs(qm, rng, 2 * steps)
    ys = rng.integers(0, qm.n_classes, 2 * steps)
    return qm, cfg, xs, ys, elsh_bytes(qm, tables=tables)


@pytest.mark.parametrize("seed", range(6))
def test_state_section_round_trip_and_resume_bit_exact(seed: int) -> None:
    qm, cfg, xs, ys, data = _trained(seed, 3, tables=seed % 3 != 0, momentum=[0, 20000][seed % 2])
    straight = FixedTrainer(data, config=cfg)
    orc = QTrainer(parse(data), cfg)
    for x, y in zip(xs[:3], ys[:3]):
        straight.step_q(x, int(y))
        orc.step(x, int(y))
    saved = straight.save_bytes()
    back = parse(saved)
    ts = back.train_state
    assert ts is not None and ts.steps == 3 and ts.prng == orc.prng.state
    for li, st in orc.state.items():
        ls = ts.layers[li]
        np.testing.assert_array_equal(ls.master, st.master)
        for name in ("vel_w", "vel_b", "acc_w", "acc_b"):
            a, b = getattr(ls, name), getattr(st, name)
            assert (a is None) == (b is None), name
            if a is not None:
                np.testing.assert_array_equal(a, b)
    # the Python writer lays the same sections out to the same bytes
    assert elsh_bytes(back, tables=bool(struct.unpack_from("<I", saved, 44)[0] & 1)) == saved
    # resuming (C from the file, the oracle from the parsed state) continues the same run
    resumed = FixedTrainer(saved, resume=True)
    rcfg = dataclasses.replace(cfg, resume=1)
    orc2 = QTrainer(back, rcfg)
    for x, y in zip(xs[3:], ys[3:]):
        assert straight.step_q(x, int(y)) == resumed.step_q(x, int(y)) == orc2.step(x, int(y))
    assert straight.save_bytes() == resumed.save_bytes()
    assert_same_state(resumed, orc2, "resumed")


@pytest.mark.parametrize("seed", range(6))
def test_set_lr_mid_run_is_the_oracle_with_the_new_rates_and_a_resume(seed: int) -> None:
    """A learning-rate schedule (FixedTrainer.set_lr, elsh_qtrain_set_rates) between steps: the
    steps after it equal the oracle's with the new rates and those of a trainer resumed from
    the state saved before it at the new rates, bit for bit; the saved state records them."""
    qm, cfg, xs, ys, data = _trained(seed, 3, tables=seed % 3 != 0, momentum=[0, 20000][seed % 2])
    ft = FixedTrainer(data, config=cfg)
    orc = QTrainer(parse(data), cfg)
    for x, y in zip(xs[:3], ys[:3]):
        assert ft.step_q(x, int(y)) == orc.step(x, int(y))
    saved = ft.save_bytes()
    lr = [0.002, 0.03][seed % 2]
    lw, lws, lb, lbs = rates(data, cfg.optimizer, lr)
    new = dataclasses.replace(cfg, lr_w=lw, lr_w_shift=lws, lr_b=lb, lr_b_shift=lbs)
    assert (lw, lws, lb, lbs) != (cfg.lr_w, cfg.lr_w_shift, cfg.lr_b, cfg.lr_b_shift)
    ft.set_lr(lr)
    assert ft.config == new
    orc.cfg = new
    resumed = FixedTrainer(saved, config=dataclasses.replace(new, resume=1))
    for x, y in zip(xs[3:], ys[3:]):
        assert ft.step_q(x, int(y)) == orc.step(x, int(y)) == resumed.step_q(x, int(y))
    assert_same_state(ft, orc, "after set_lr")
    out = ft.save_bytes()
    assert out == resumed.save_bytes()
    ts = parse(out).train_state
    assert ts is not None
    for li, ls in ts.layers.items():
        got = (ls.lr_w, ls.lr_w_shift, ls.lr_b, ls.lr_b_shift)
        assert got == (lw[li], lws[li], lb[li], lbs[li])


def test_fit_last_lr_is_set_lr_before_the_last_epoch() -> None:
    qm, cfg, xs, ys, data = _trained(3, 4, tables=True)
    x = np.random.default_rng(8).normal(0.0, 1.0, (ys.size, qm.n_in))
    a = FixedTrainer(data, lr=0.02, seed=5)
    a.fit(x, ys, epochs=3, shuffle_seed=1, last_lr=0.004)
    b = FixedTrainer(data, lr=0.02, seed=5)
    rng = np.random.default_rng(1)
    orders = [rng.permutation(len(ys)) for _ in range(3)]
    b.fit(x[orders[0]], ys[orders[0]])
    b.fit(x[orders[1]], ys[orders[1]])
    b.set_lr(0.004)
    b.fit(x[orders[2]], ys[orders[2]])
    assert a.save_bytes() == b.save_bytes()
    c = FixedTrainer(data, lr=0.02, seed=5)
    c.fit(x, ys, epochs=3, shuffle_seed=1)
    assert c.save_bytes() != a.save_bytes()
    # one epoch: the last one, at last_lr
    d, e = FixedTrainer(data, lr=0.02), FixedTrainer(data, lr=0.004)
    d.fit(x, ys, last_lr=0.004)
    e.fit(x, ys)
    assert d.save_bytes() == e.save_bytes()
    # a bad last_lr fails before any step
    f = FixedTrainer(data, lr=0.02)
    before = f.save_bytes()
    with pytest.raises(ValueError, match="learning rate"):
        f.fit(x, ys, epochs=2, last_lr=float("nan"))
    assert f.save_bytes() == before


def test_with_and_without_state_predict_the_same() -> None:
    for seed in range(4):
        qm, cfg, xs, ys, data = _trained(seed, 4, tables=seed % 2 == 0)
        ft = FixedTrainer(data, config=cfg)
        for x, y in zip(xs[:4], ys[:4]):
            ft.step_q(x, int(y))
        with_state, without = ft.save_bytes(True), ft.save_bytes(False)
        assert len(with_state) > len(without)
        assert parse(without).train_state is None
        a, b = FixedPointModel(with_state), FixedPointModel(without)
        for x in xs:
            pa, la = a.forward_q(x)
            pb, lb = b.forward_q(x)
            assert pa == pb and np.array_equal(la, lb)
            lo, po, _ = qreference.forward(parse(with_state), x)
            assert po == pa and np.array_equal(lo, la)


def _verdicts(data: bytes) -> tuple[str, str]:
    try:
        FixedPointModel(data)
        c = "OK"
    except ElshFormatError as exc:
        c = exc.code
    try:
        parse(data)
        p = "OK"
    except ElshFormatError as exc:
        p = exc.code
    return c, p


def test_hostile_state_sections_get_the_same_code_from_both_readers() -> None:
    qm, cfg, xs, ys, data = _trained(1, 3, tables=True)
    ft = FixedTrainer(data, config=cfg)
    for x, y in zip(xs[:3], ys[:3]):
        ft.step_q(x, int(y))
    back = parse(ft.save_bytes())
    ts = back.train_state
    assert ts is not None
    top = max(ts.layers)
    layout_of = (model_sections(back, tables=True), 1)

    def rebuilt(edit: Callable[[list[Section]], list[Section]]) -> bytes:
        return assemble(edit(list(layout_of[0])), flags=layout_of[1])

    def patch(
        t: int, layer: int, fn: Callable[[bytes], bytes]
    ) -> Callable[[list[Section]], list[Section]]:
        return lambda secs: [
            s._replace(payload=fn(s.payload)) if (s.type, s.layer) == (t, layer) else s
            for s in secs
        ]

    def at(off: int, value: bytes) -> Callable[[bytes], bytes]:
        return lambda p: p[:off] + value + p[off + len(value) :]

    cases = {
        "ok": (lambda secs: secs, "OK"),
        "train state size": (patch(TRAIN_STATE, NO_LAYER, lambda p: p + bytes(4)), "ELSH_FMT_SIZE"),
        "optimizer": (patch(TRAIN_STATE, NO_LAYER, at(0, struct.pack("<I", 7))), "ELSH_FMT_STATE"),
        "prng zero": (patch(TRAIN_STATE, NO_LAYER, at(24, bytes(16))), "ELSH_FMT_STATE"),
        "momentum": (patch(TRAIN_STATE, NO_LAYER, at(8, struct.pack("<i", -1))), "ELSH_FMT_STATE"),
        "no layer state": (
            lambda secs: [s for s in secs if (s.type, s.layer) != (LAYER_STATE, top)],
            "ELSH_FMT_MISSING",
        ),
        "no train state": (
            lambda secs: [s for s in secs if s.type != TRAIN_STATE],
            "ELSH_FMT_UNEXPECTED",
        ),
        "layer state size": (patch(LAYER_STATE, top, lambda p: p[:-4]), "ELSH_FMT_SIZE"),
        "frac bits": (patch(LAYER_STATE, top, at(0, struct.pack("<i", 3))), "ELSH_FMT_STATE"),
        "grad exp": (
            patch(
                LAYER_STATE,
                top,
                lambda p: p[:4] + struct.pack("<i", struct.unpack_from("<i", p, 4)[0] + 1) + p[8:],
            ),
            "ELSH_FMT_STATE",
        ),
        "master off its weight": (
            patch(
                LAYER_STATE,
                top,
                lambda p: (
                    p[:32]
                    + struct.pack(
                        "<h", (struct.unpack_from("<h", p, 32)[0] + 4096 + 32767) % 65534 - 32767
                    )
                    + p[34:]
                ),
            ),
            "ELSH_FMT_STATE",
        ),
        "master -32768": (
            patch(LAYER_STATE, top, at(32, struct.pack("<h", -32768))),
            "ELSH_FMT_STATE",
        ),
    }
    for name, (edit, want) in cases.items():
        c, p = _verdicts(rebuilt(edit))
        assert c == p == want, (name, c, p)


def _rates_edge_model(rng: np.random.Generator) -> QModel:
    """A random model whose trainable layers' REQUANT covers every branch of Adagrad's
    per-neuron rate factor (train_q.c step 4): a zero multiplier, a neuron far below the
    layer's largest shift (e > 32), one whose factor is capped at 2^20, and ordinary ones
    above and below the layer's mean scale."""
    qm = random_qmodel(rng, extreme=False)
    for L in qm.layers:
        mult = L.multiplier.astype(np.int64)
        shift = L.shift.astype(np.int64)
        top = int(shift.max())
        n = L.n_out
        if n >= 4:
            mult[0] = 0
            shift[1] = max(-31, top - 20)  # e = 16 + 20 > 32
            mult[2], shift[2] = 2**31 - 1, top
            shift[3] = max(-31, top - 8)  # 2^8 below the others: factor capped
        L.multiplier = mult.astype(L.multiplier.dtype)
        L.shift = shift.astype(L.shift.dtype)
    return qm


def test_adagrad_per_neuron_rates_every_branch(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(23)
    branches = {"zero": 0, "far": 0, "capped": 0, "below": 0, "above": 0}
    factor = QTrainer._rate_factor

    def counting(self: QTrainer, L: Any, st: Any, j: int) -> int:
        f = factor(self, L, st, j)
        e = 16 + st.max_shift - int(L.shift[j])
        if int(L.multiplier[j]) == 0:
            branches["zero"] += 1
        elif e > 32:
            branches["far"] += 1
        elif f == 1 << 20:
            branches["capped"] += 1
        else:
            branches["below" if f < 1 << 16 else "above"] += 1
        return f

    monkeypatch.setattr(QTrainer, "_rate_factor", counting)
    for case in range(8):
        qm = _rates_edge_model(rng)
        cfg = _config(rng, ADAGRAD, 29491 if case % 2 else 0, 0, big=case % 4 == 3)
        labels = rng.integers(0, qm.n_classes, 6)
        run_both(qm, cfg, _inputs(qm, rng, 6), labels, tables=case % 2 == 0)
    assert all(v > 0 for v in branches.values()), branches


def test_per_neuron_rates_planted_bug_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle with one rate for the whole layer (the step before per-neuron rates): the
    comparison with the C step must fail, so the tests above do check the factor."""
    monkeypatch.setattr(QTrainer, "_rate_factor", lambda self, L, st, j: 1 << 16)
    rng = np.random.default_rng(23)
    qm = _rates_edge_model(rng)
    cfg = _config(rng, ADAGRAD, 0, 0)
    with pytest.raises(AssertionError):
        run_both(qm, cfg, _inputs(qm, rng, 6), rng.integers(0, qm.n_classes, 6))
