"""Selection measured (issue 13): elsh_qnet_forward_stats gives the outputs, active sets and op
counters of elsh_qnet_forward, and its counts (bucket entries, candidates, recall of the exact
top-k) equal the numpy oracle's on every golden model; the CLI and the C runner report them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge_lsh.cli import main
from edge_lsh.fixed import STEPS, FixedPointModel
from edge_lsh.format import read_elsh
from edge_lsh.native import ffi, lib, ptr
from edge_lsh.oracle import qreference as R

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = sorted((ROOT / "export" / "golden").glob("*.elsh"))


def golden_inputs(path: Path) -> np.ndarray:
    lines = path.with_suffix(".expect").read_text().split("\n")
    n = int(lines[0].split()[0])
    return np.array([lines[1 + 3 * s].split() for s in range(n)], dtype=np.int8)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_forward_stats_same_outputs_as_forward(path):
    xq = golden_inputs(path)
    plain, measured = FixedPointModel.load(path), FixedPointModel.load(path)
    stats = ffi.new("elsh_layer_stats[]", plain.n_layers)
    pre = np.empty(max(plain.layer_info(i)["n_out"] for i in range(plain.n_layers)), np.int32)
    for row in xq:
        pred, logits = plain.forward_q(row)
        got = lib.elsh_qnet_forward_stats(
            measured._net, ptr(row, "int8_t *"), ffi.NULL, ffi.NULL, ptr(pre, "int32_t *"), stats
        )
        assert got == pred
        out = lib.elsh_qnet_logits(measured._net)
        assert np.array_equal(np.frombuffer(ffi.buffer(out, 4 * plain.n_classes), np.int32), logits)
        for layer in range(plain.n_layers):
            assert np.array_equal(plain.last_active(layer), measured.last_active(layer))
    assert plain.ops() == measured.ops()
    assert all(stats[i].ns[j] == 0 for i in range(plain.n_layers) for j in range(len(STEPS)))


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_selection_counts_and_recall_match_oracle(path):
    xq = golden_inputs(path)
    got = FixedPointModel.load(path).selection_stats_q(xq)
    want = R.selection_measures(read_elsh(path.read_bytes()), xq)
    n = xq.shape[0]
    for g, w in zip(got, want, strict=True):
        assert g["inputs"] == w["inputs"] == n
        assert g["entries_per_input"] * n == pytest.approx(w["entries"])
        assert g["candidates_per_input"] * n == pytest.approx(w["candidates"])
        assert g["active_per_input"] * n == pytest.approx(w["active"])
        if w["topk"]:
            assert g["recall"] == pytest.approx(w["topk_found"] / w["topk"])
        else:
            assert g["recall"] is None
        assert set(g["ns_per_input"]) == set(STEPS)
        assert all(v >= 0 for v in g["ns_per_input"].values())
    # some golden model has an LSH layer whose recall is neither 0 nor 1: the count is real
    assert any(0 < s["recall"] < 1 for s in got if s["recall"] is not None) or not any(
        s["lsh"] for s in got
    )


def test_recall_is_one_when_every_neuron_is_active():
    path = next(p for p in GOLDEN if p.stem == "ternary_seed_tables")
    xq = golden_inputs(path)
    m = FixedPointModel.load(path)
    m.set_active(1.0)
    stats = m.selection_stats_q(xq)
    assert [s["recall"] for s in stats if s["lsh"]] and all(
        s["recall"] == 1.0 for s in stats if s["lsh"]
    )
    without = FixedPointModel.load(path).selection_stats_q(xq, timing=False, recall=False)
    assert all(s["recall"] is None and s["ns_per_input"] is None for s in without)


def test_timing_is_measured_with_the_clock():
    path = next(p for p in GOLDEN if p.stem == "ternary_seed_tables")
    stats = FixedPointModel.load(path).selection_stats_q(np.tile(golden_inputs(path), (5, 1)))
    lsh = [s for s in stats if s["lsh"]]
    assert lsh and all(s["ns_per_input"]["count"] > 0 for s in lsh)
    assert all(s["ns_per_input"]["multiply"] > 0 for s in stats)


def _elsh_and_csv(tmp_path: Path) -> tuple[Path, Path]:
    path = next(p for p in GOLDEN if p.stem == "ternary_seed_tables")
    m = FixedPointModel.load(path)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(12, m.n_in)).astype(np.float32)
    csv = tmp_path / "x.csv"
    np.savetxt(csv, x, delimiter=",", fmt="%.6f")
    return path, csv


def test_cli_run_and_eval_report_selection(tmp_path, capsys):
    path, csv = _elsh_and_csv(tmp_path)
    assert main(["run", str(path), "--input", str(csv), "--json", "--selection-stats"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["selection"]) == FixedPointModel.load(path).n_layers
    assert out["selection"][0]["inputs"] == 12
    assert main(["run", str(path), "--input", str(csv), "--selection-stats"]) == 0
    err = capsys.readouterr().err
    assert "recall of exact top-k" in err and "ns count" in err


def test_runner_stats(tmp_path):
    path, csv = _elsh_and_csv(tmp_path)
    runner = ROOT / "native" / "build" / "edge-lsh-run"
    if not runner.exists():
        make = ["make", "-C", str(ROOT / "native"), "runner"]
        subprocess.run(make, check=True, capture_output=True)
    res = subprocess.run(
        [str(runner), str(path), str(csv), "--quiet", "--stats", "--no-preprocess"],
        capture_output=True,
        text=True,
        check=True,
    )
    x = np.loadtxt(csv, delimiter=",", dtype=np.float32)
    want = FixedPointModel.load(path).selection_stats(x)
    lines = [ln for ln in res.stdout.splitlines() if "selection:" in ln]
    assert len(lines) == len(want)
    for line, w in zip(lines, want, strict=True):
        if w["recall"] is not None:
            assert f"recall {w['recall']:.4f}" in line
        assert f"{w['entries_per_input']:.1f} bucket entries" in line
        assert f"{w['candidates_per_input']:.1f} candidates" in line
