"""The fixed-point trainer in mini-batches on threads (native/src/train_q_threads.c,
FixedTrainer(threads=, thread_batch=)) against the numpy oracle of the batch semantics
(edge_lsh.oracle.qtrain_batch): 1, 2, 3 and 4 threads give the same bytes at a given batch size,
equal bit for bit to the oracle in every weight, bias, optimizer state, PRNG state, table entry
and prediction, on random networks of every hash family; threads=1 without a batch is the
one-sample step; resuming continues a batched run; the arena is planned exactly."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_qreference import random_qmodel
from test_qtrain import _config, _families, _inputs, assert_same_state

from edge_lsh.cli import main
from edge_lsh.data import load
from edge_lsh.finetune import (
    DEFAULT_LAST_LR_FACTOR,
    DEFAULT_LR,
    DEFAULT_THREAD_BATCH,
    FixedTrainer,
)
from edge_lsh.format import elsh_bytes
from edge_lsh.format.reader import parse
from edge_lsh.native import aligned_empty, ffi, lib, ptr
from edge_lsh.oracle import qreference
from edge_lsh.oracle.prng import mix64
from edge_lsh.oracle.qtrain import ADAGRAD, SGD, QTrainer
from edge_lsh.oracle.qtrain_batch import QBatchTrainer, keyed_draw


@pytest.mark.parametrize("optimizer", [SGD, ADAGRAD])
@pytest.mark.parametrize("momentum", [0, 29491])
def test_any_thread_count_gives_the_oracles_bytes(optimizer: int, momentum: int) -> None:
    rng = np.random.default_rng(700 + 10 * optimizer + momentum % 89)
    seen: set[tuple[int, int]] = set()
    moved = 0
    for case in range(9):
        qm = random_qmodel(rng, extreme=False)
        kind = case % 3  # all, last, the last 2
        cfg = _config(rng, optimizer, momentum, [0, 1, min(2, qm.n_layers)][kind])
        data = elsh_bytes(qm, tables=case % 2 == 0)
        n = 11
        xs, ys = _inputs(qm, rng, n), rng.integers(0, qm.n_classes, n)
        batch = int(rng.integers(1, 6))
        orc = QBatchTrainer(parse(data), cfg, batch)
        want = orc.train(xs, ys)
        saved = []
        for threads in (1, 2, 3, 4):
            ft = FixedTrainer(data, config=cfg, threads=threads, thread_batch=batch)
            got = ft.steps_q(xs, ys)
            assert got.tolist() == want, f"case {case}, {threads} threads: predictions"
            assert_same_state(ft, orc, f"case {case}, {threads} threads")
            saved.append(ft.save_bytes())
        assert saved[1:] == saved[:1] * 3, f"case {case}: thread counts differ"
        seen |= {(f, kind) for f in _families(qm)}
        before = parse(data)
        for li in range(orc.first, qm.n_layers):
            L = orc.qm.layers[li]
            if L.use_lsh:
                moved += int(
                    (
                        qreference.layer_tables(L)[1]
                        != qreference.layer_tables(before.layers[li])[1]
                    ).sum()
                )
    assert {f for f, _ in seen} == {0, 1, 2}, f"families covered: {seen}"
    assert moved > 0  # the batches did move neurons between buckets


def test_the_keyed_draw_is_mix64_of_the_counter() -> None:
    key = 0x0123456789ABCDEF
    assert (
        keyed_draw(key, 2, 999, 17, 784)
        == mix64(key ^ (2 << 56 | 999 << 40 | 17 << 20 | 784)) >> 32
    )
    draws = {keyed_draw(key, 1, j, s, c) for j in range(3) for s in range(3) for c in range(3)}
    assert len(draws) == 27


def test_one_thread_without_a_batch_is_the_serial_step() -> None:
    rng = np.random.default_rng(3)
    qm = random_qmodel(rng, extreme=False)
    cfg = _config(rng, ADAGRAD, 20000, 0)
    data = elsh_bytes(qm)
    xs, ys = _inputs(qm, rng, 6), rng.integers(0, qm.n_classes, 6)
    a = FixedTrainer(data, config=cfg)
    b = FixedTrainer(data, config=cfg, threads=1)
    orc = QTrainer(parse(data), cfg)
    assert a.batch == b.batch == 0 and a.train_arena_bytes == b.train_arena_bytes
    pa = [a.step_q(x, int(y)) for x, y in zip(xs, ys)]
    pb = b.steps_q(xs, ys).tolist()
    assert pa == pb == [orc.step(x, int(y)) for x, y in zip(xs, ys)]
    assert a.save_bytes() == b.save_bytes()
    assert FixedTrainer(data, config=cfg, threads=2).batch == DEFAULT_THREAD_BATCH


@pytest.mark.parametrize("seed, momentum, new_lr", [(11, 29491, None), (12, 20000, 0.004)])
def test_resume_continues_a_batched_run(seed: int, momentum: int, new_lr: float | None) -> None:
    """Resuming a saved batched run continues it; with new_lr, set_lr between batches (finetune
    --threads 2 --last-lr) is the same as resuming at the new rates, and the batch oracle's."""
    rng = np.random.default_rng(seed)
    qm = random_qmodel(rng, extreme=False)
    cfg = _config(rng, ADAGRAD, momentum, 0)
    data = elsh_bytes(qm)
    xs, ys = _inputs(qm, rng, 12), rng.integers(0, qm.n_classes, 12)
    straight = FixedTrainer(data, config=cfg, threads=2, thread_batch=3)
    straight.steps_q(xs[:6], ys[:6])
    saved = straight.save_bytes()
    if new_lr is not None:
        straight.set_lr(new_lr)
        assert straight.config.lr_w != cfg.lr_w
    rcfg = dataclasses.replace(straight.config, resume=1)
    if new_lr is None:  # the rates and the rest from the file's trained state
        resumed = FixedTrainer(saved, resume=True, threads=3, thread_batch=3)
    else:
        resumed = FixedTrainer(saved, config=rcfg, threads=3, thread_batch=3)
    orc = QBatchTrainer(parse(saved), rcfg, 3)
    want = orc.train(xs[6:], ys[6:])
    assert straight.steps_q(xs[6:], ys[6:]).tolist() == want
    assert resumed.steps_q(xs[6:], ys[6:]).tolist() == want
    assert_same_state(resumed, orc, "resumed")
    assert_same_state(straight, orc, "straight")
    assert straight.save_bytes() == resumed.save_bytes()


def test_the_plan_counts_the_workers_and_batch_records_exactly() -> None:
    rng = np.random.default_rng(5)
    qm = random_qmodel(rng, extreme=False)
    data = elsh_bytes(qm)
    cfg = _config(rng, SGD, 0, 0)
    sizes = {
        (t, b): FixedTrainer(data, config=cfg, threads=t, thread_batch=b).train_arena_bytes
        for t, b in ((1, 1), (1, 8), (2, 8), (4, 8))
    }
    serial = FixedTrainer(data, config=cfg).train_arena_bytes
    assert serial < sizes[1, 1] < sizes[1, 8] < sizes[2, 8] < sizes[4, 8]
    ft = FixedTrainer(data, config=cfg, threads=4, thread_batch=8)
    need = sizes[4, 8]
    arena = aligned_empty(need)
    tr = ffi.new("elsh_qtrain *")
    assert lib.elsh_qtrain_attach(tr, ft.model._net, ft._cfg, ptr(arena, "void *"), need - 1) == (
        lib.ELSH_ERR_ARENA
    )


@pytest.mark.parametrize("bad", [0, -1, 65, 1.5, True])
def test_bad_thread_values_are_refused(bad: object) -> None:
    data = elsh_bytes(random_qmodel(np.random.default_rng(1), extreme=False))
    with pytest.raises(ValueError):
        FixedTrainer(data, threads=bad)  # type: ignore[arg-type]
    if bad != 65:
        with pytest.raises(ValueError):
            FixedTrainer(data, threads=2, thread_batch=bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- the entry points
ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "export" / "golden" / "membership_tables.elsh"  # 64-96-10, digits-shaped


@pytest.fixture(scope="module")
def runner() -> Path:
    build = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "native"), "runner"], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    return ROOT / "native" / "build" / "edge-lsh-run"


def test_cli_runner_and_api_give_the_same_bytes_for_every_thread_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], runner: Path
) -> None:
    d = load("digits", seed=0, limit=200)
    csv = tmp_path / "train.csv"
    with open(csv, "w") as f:
        for x, y in zip(d.x_train, d.y_train):
            f.write(",".join(f"{v:.9g}" for v in x) + f",{int(y)}\n")
    last_lr = DEFAULT_LR * DEFAULT_LAST_LR_FACTOR  # finetune's and the runner's default
    tr = FixedTrainer(MODEL, threads=3, thread_batch=8)
    tr.fit(d.x_train, d.y_train, epochs=2, last_lr=last_lr)
    api = tr.save_bytes()
    assert api != MODEL.read_bytes()
    serial = FixedTrainer(MODEL)
    serial.fit(d.x_train, d.y_train, epochs=2, last_lr=last_lr)
    assert serial.save_bytes() != api  # mini-batches are another trainer than one-sample steps
    for threads in (1, 2, 4):
        out = tmp_path / f"cli{threads}.elsh"
        args = ["finetune", str(MODEL), "--data", "digits", "--limit", "200", "--epochs", "2"]
        args += ["--threads", str(threads), "--thread-batch", "8", "--out", str(out)]
        assert main([*args, "--json", "--quiet"]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["threads"] == threads and summary["thread_batch"] == 8
        assert out.read_bytes() == api, f"CLI, {threads} threads"
        c_out = tmp_path / f"run{threads}.elsh"
        res = subprocess.run(
            [str(runner), str(MODEL), "--train", str(csv), "--epochs", "2", "--out", str(c_out)]
            + ["--no-preprocess", "--threads", str(threads), "--thread-batch", "8"],
            capture_output=True,
            text=True,
        )
        assert res.returncode == 0, res.stderr
        assert c_out.read_bytes() == api, f"runner, {threads} threads"
    # --threads 2 without a batch: the default batch
    out = tmp_path / "default.elsh"
    args = ["finetune", str(MODEL), "--data", "digits", "--limit", "200", "--threads", "2"]
    assert main([*args, "--out", str(out), "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["thread_batch"] == DEFAULT_THREAD_BATCH


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--threads", "0"], "--threads"),
        (["--threads", "65"], "--threads"),
        (["--threads", "two"], "--threads"),
        (["--thread-batch", "0"], "--thread-batch"),
        (["--thread-batch", "65537"], "--thread-batch"),
    ],
)
def test_bad_thread_options_exit_2(
    tmp_path: Path, runner: Path, extra: list[str], message: str
) -> None:
    out = tmp_path / "o.elsh"
    cli = [sys.executable, "-c", "import sys; from edge_lsh.cli import main; sys.exit(main())"]
    res = subprocess.run(
        [*cli, "finetune", str(MODEL), "--data", "digits", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
    csv = tmp_path / "t.csv"
    csv.write_text(",".join(["0"] * 64) + ",1\n")
    res = subprocess.run(
        [str(runner), str(MODEL), "--train", str(csv), "--out", str(out), *extra],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.skipif(
    not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
    reason="no aarch64 tools",
)
def test_pi4_runner_on_4_threads_under_qemu_writes_the_hosts_bytes(
    tmp_path: Path, runner: Path
) -> None:
    """The runner `deploy --target pi4` ships, --train on 4 threads under qemu-aarch64
    (Cortex-A72: a Pi 4 has 4 cores), writes the bytes of the host's runner on 1 thread."""
    from edge_lsh.deploy import deploy

    d = load("digits", seed=0, limit=150)
    csv = tmp_path / "train.csv"
    with open(csv, "w") as f:
        for x, y in zip(d.x_train, d.y_train):
            f.write(",".join(f"{v:.9g}" for v in x) + f",{int(y)}\n")
    deploy(MODEL, "pi4", tmp_path / "pi4")
    args = ["--train", str(csv), "--epochs", "2", "--no-preprocess", "--thread-batch", "8"]
    host = subprocess.run(
        [str(runner), str(MODEL), *args, "--threads", "1", "--out", str(tmp_path / "host.elsh")],
        capture_output=True,
        text=True,
    )
    assert host.returncode == 0, host.stderr
    pi = tmp_path / "pi4"
    arm = subprocess.run(
        ["qemu-aarch64", "-cpu", "cortex-a72", str(pi / "edge-lsh-run"), str(pi / "model.elsh")]
        + [*args, "--threads", "4", "--out", str(tmp_path / "a72.elsh")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert arm.returncode == 0, arm.stderr
    assert "4 threads in batches of 8" in arm.stdout
    tr = FixedTrainer(MODEL, threads=2, thread_batch=8)
    tr.fit(d.x_train, d.y_train, epochs=2, last_lr=DEFAULT_LR * DEFAULT_LAST_LR_FACTOR)
    assert (tmp_path / "a72.elsh").read_bytes() == (tmp_path / "host.elsh").read_bytes()
    assert (tmp_path / "host.elsh").read_bytes() == tr.save_bytes()
