"""edge-lsh-run applies a model's PREPROCESS section (FORMAT.md 4.1; issue 9): raw inputs are
divided by input_divisor in float32 before quantization (as edge_lsh.data.preprocess does),
unless --no-preprocess; inputs that, after that, fall far outside the training range
[input_min, input_max] get a warning on stderr (the rule of edge_lsh.data.input_range_warning),
never an error. A model without the section takes its inputs as they are."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge_lsh.data import input_range_warning
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import read_elsh
from edge_lsh.format.writer import elsh_bytes

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "export" / "golden" / "lsh_output.elsh"  # 16 inputs, 12 classes
DIVISOR, LO, HI = 255.0, 0.0, 1.0


@pytest.fixture(scope="module")
def runner() -> Path:
    missing = [tool for tool in ("make", "cc") if shutil.which(tool) is None]
    assert not missing, f"the C runner tests need {' and '.join(missing)} (required test tools)"
    build = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "native"), "runner"], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    return ROOT / "native" / "build" / "edge-lsh-run"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden model with a PREPROCESS section: pixels 0..255 divided by 255, trained on
    0..1."""
    qm = dataclasses.replace(read_elsh(GOLDEN), preprocess=(DIVISOR, LO, HI))
    path = tmp_path_factory.mktemp("pre") / "m.elsh"
    path.write_bytes(elsh_bytes(qm, tables=False))
    assert FixedPointModel.load(path).n_in == 16
    return path


def pixels(n: int, seed: int = 0) -> np.ndarray:
    """Raw inputs 0..255 (whole numbers, as in an image file)."""
    return np.random.default_rng(seed).integers(0, 256, (n, 16)).astype(np.float32)


def run(runner: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(runner), *map(str, args)], capture_output=True, text=True)


def predictions(r: subprocess.CompletedProcess[str]) -> list[str]:
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if not line.startswith("#")]


def test_raw_inputs_are_divided(runner: Path, model: Path, tmp_path: Path) -> None:
    raw = pixels(40)
    scaled = (raw / np.float32(DIVISOR)).astype(np.float32)  # edge_lsh.data.preprocess
    np.save(tmp_path / "raw.npy", raw)
    np.save(tmp_path / "scaled.npy", scaled)
    csv = tmp_path / "raw.csv"
    np.savetxt(csv, raw, delimiter=",", fmt="%d")
    fm = FixedPointModel.load(model)
    pred, logits = fm.predict_logits(scaled)
    want = [f"{p} " + " ".join(str(v) for v in row) for p, row in zip(pred, logits.tolist())]
    for r in (
        run(runner, model, tmp_path / "raw.npy", "--logits"),
        run(runner, model, csv, "--logits"),
        run(runner, model, tmp_path / "scaled.npy", "--logits", "--no-preprocess"),
    ):
        assert predictions(r) == want
        assert r.stderr == ""  # in range: no warning
    # the scaling matters: raw numbers taken as they are give other logits
    unscaled = run(runner, model, tmp_path / "raw.npy", "--logits", "--no-preprocess")
    assert predictions(unscaled) != want
    info = run(runner, model, "--info").stdout
    assert "# preprocess: raw inputs divided by 255; training inputs after that in [0, 1]" in info


def test_inputs_far_outside_the_training_range_warn(
    runner: Path, model: Path, tmp_path: Path
) -> None:
    raw = pixels(20, seed=1)
    raw[0, 0] = 255.0
    scaled = (raw / np.float32(DIVISOR)).astype(np.float32)
    record = {"spec": "x", "preprocess": {"divisor": DIVISOR}, "input_range": [LO, HI]}
    cases = [
        # already scaled, then divided again: all in the bottom tenth of the range
        (scaled, [], "were they scaled already? (--no-preprocess if they are scaled already)"),
        # raw numbers with --no-preprocess: far above the range
        (raw, ["--no-preprocess"], "far outside the training range [0, 1]: check their scaling\n"),
        # far below
        (scaled - 5.0, ["--no-preprocess"], "check their scaling"),
    ]
    for x, args, phrase in cases:
        np.save(tmp_path / "x.npy", x)
        r = run(runner, model, tmp_path / "x.npy", *args)
        assert r.returncode == 0, r.stderr
        assert r.stderr.startswith("edge-lsh-run: warning: ") and r.stderr.count("\n") == 1
        assert phrase in r.stderr, r.stderr
        # the same verdict and figures as Python's rule
        seen = x if args else (x / np.float32(DIVISOR)).astype(np.float32)
        py = input_range_warning(record, seen)
        assert py is not None and py in r.stderr, (py, r.stderr)
        assert len(predictions(r)) == x.shape[0]


def test_a_model_without_preprocess_takes_inputs_as_they_are(runner: Path, tmp_path: Path) -> None:
    raw = pixels(10, seed=2)
    np.save(tmp_path / "raw.npy", raw)
    plain = run(runner, GOLDEN, tmp_path / "raw.npy", "--logits")
    assert predictions(plain) == predictions(
        run(runner, GOLDEN, tmp_path / "raw.npy", "--logits", "--no-preprocess")
    )
    assert plain.stderr == ""
    assert "# preprocess" not in run(runner, GOLDEN, "--info").stdout
