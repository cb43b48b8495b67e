"""Class probabilities (issue 9): elsh_qnet_probs in the C kernel, FixedPointModel.predict_proba
through it, `edge-lsh run --probs` (text and --json) and `edge-lsh-run --probs`, which print
the same digits. The probabilities are the softmax of the dequantized logits (out_scale of the
output layer times each int32 logit) over the classes the output layer computed; a class an LSH
output layer skipped gets exactly 0."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge_lsh.cli import main
from edge_lsh.fixed import FixedPointModel

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = sorted((ROOT / "export" / "golden").glob("*.elsh"))
INACTIVE = np.iinfo(np.int32).min


@pytest.fixture(scope="module")
def runner() -> Path:
    missing = [tool for tool in ("make", "cc") if shutil.which(tool) is None]
    assert not missing, f"the C runner tests need {' and '.join(missing)} (required test tools)"
    build = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "native"), "runner"], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    return ROOT / "native" / "build" / "edge-lsh-run"


def inputs(n_in: int, seed: int = 0) -> np.ndarray:
    """Rows of every kind: small and large, signed, sparse, and rows that saturate the int8
    input (the widest logits)."""
    rng = np.random.default_rng(seed)
    rows = [
        rng.uniform(0, 16, (20, n_in)),
        rng.normal(0, 1, (20, n_in)),
        rng.normal(0, 50, (10, n_in)),
        np.where(rng.random((10, n_in)) < 0.7, 0.0, rng.uniform(0, 16, (10, n_in))),
        np.full((1, n_in), 1e6),
        np.full((1, n_in), -1e6),
        np.zeros((1, n_in)),
    ]
    return np.concatenate(rows).astype(np.float32)


def softmax_of_logits(logits: np.ndarray, scale: float) -> np.ndarray:
    """numpy, float64: the softmax of scale * logit over the computed classes, 0 elsewhere."""
    z = np.where(logits == INACTIVE, -np.inf, logits.astype(np.float64) * scale)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_predict_proba_is_the_softmax_of_the_dequantized_logits(path: Path) -> None:
    fm = FixedPointModel.load(path)
    x = inputs(fm.n_in)
    pred, logits = fm.predict_logits(x)
    probs = fm.predict_proba(x)
    assert probs.shape == (x.shape[0], fm.n_classes) and probs.dtype == np.float32
    assert np.isfinite(probs).all() and (probs >= 0).all()
    assert np.allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-5)
    assert np.array_equal(probs.argmax(axis=1), pred)
    want = softmax_of_logits(logits, fm.layer_info(-1)["out_scale"])
    assert np.abs(probs - want).max() <= 1e-6
    inactive = logits == INACTIVE
    assert (probs[inactive] == 0.0).all()  # exactly
    if fm.layer_info(-1)["use_lsh"]:
        assert inactive.any(axis=1).all()  # an LSH output layer skipped classes in every row
    # the same bits again: deterministic
    assert np.array_equal(fm.predict_proba(x), probs)


def test_probs_follow_the_active_fraction() -> None:
    """With every neuron computed (dense), no class is left at 0 by the output layer."""
    path = ROOT / "export" / "golden" / "lsh_output.elsh"
    fm = FixedPointModel.load(path)
    x = inputs(fm.n_in, seed=1)
    fm.set_active(dense=True)
    pred, logits = fm.predict_logits(x)
    probs = fm.predict_proba(x)
    assert (logits != INACTIVE).all()
    assert np.array_equal(probs.argmax(axis=1), pred)
    assert np.abs(probs - softmax_of_logits(logits, fm.layer_info(-1)["out_scale"])).max() <= 1e-6


def run_c(runner: Path, model: Path, data: Path, *args: str) -> list[str]:
    r = subprocess.run(
        [str(runner), str(model), str(data), *args], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if not line.startswith("#")]


@pytest.mark.parametrize("name", ["lsh_output", "simhash_int16_2hidden"])
def test_runner_and_run_print_the_same_probabilities(runner, tmp_path, capsys, name) -> None:
    model = ROOT / "export" / "golden" / f"{name}.elsh"
    fm = FixedPointModel.load(model)
    x = inputs(fm.n_in, seed=2)
    np.save(tmp_path / "x.npy", x)
    c_rows = run_c(runner, model, tmp_path / "x.npy", "--logits", "--probs")
    assert main(["run", str(model), "--input", str(tmp_path / "x.npy"), "--logits", "--probs"]) == 0
    py_rows = [line for line in capsys.readouterr().out.splitlines() if line]
    assert c_rows == py_rows  # the same text, digit for digit
    pred, logits = fm.predict_logits(x)
    probs = fm.predict_proba(x)
    for i, line in enumerate(c_rows):
        fields = line.split()
        assert len(fields) == 1 + 2 * fm.n_classes
        assert int(fields[0]) == pred[i]
        assert [int(v) for v in fields[1 : 1 + fm.n_classes]] == logits[i].tolist()
        printed = np.array([float(v) for v in fields[1 + fm.n_classes :]], dtype=np.float32)
        assert np.array_equal(printed, probs[i])  # %.9g gives every float32 back exactly
    # --probs alone: the prediction, then the probabilities
    only = run_c(runner, model, tmp_path / "x.npy", "--probs")
    assert [len(line.split()) for line in only] == [1 + fm.n_classes] * len(only)


def test_run_json_has_probabilities(tmp_path, capsys) -> None:
    model = ROOT / "export" / "golden" / "lsh_output.elsh"
    fm = FixedPointModel.load(model)
    x = inputs(fm.n_in, seed=3)[:12]
    y = fm.predict(x)
    y[:3] = (y[:3] + 1) % fm.n_classes
    csv = tmp_path / "x.csv"
    np.savetxt(csv, np.c_[x, y], delimiter=",", fmt="%.9g")
    assert main(["run", str(model), "--input", str(csv), "--probs", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    probs = np.array(out["probabilities"], dtype=np.float32)
    assert np.array_equal(probs, fm.predict_proba(np.loadtxt(csv, delimiter=",")[:, :-1]))
    assert out["predictions"] == probs.argmax(axis=1).tolist()
    assert out["accuracy"] == 0.75
    assert "logits" not in out
    assert main(["run", str(model), "--input", str(csv), "--json"]) == 0
    assert "probabilities" not in json.loads(capsys.readouterr().out)
