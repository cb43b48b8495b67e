"""``edge-lsh bench`` (issue 12): one run gives every row (our kernels, numpy, LiteRT), --json
is pure JSON with every row and every figure, LiteRT's rows are skipped with a note saying how
to get it when it is not installed, --plot draws a PNG, and bad input exits 2."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

from edge_lsh.cli import main
from edge_lsh.interop import bench as bench_mod
from edge_lsh.interop.bench import ROWS
from edge_lsh.interop.litert import find_runtime

FIGURES = (
    "per_call_median_us",
    "per_call_p90_us",
    "c_loop_median_us",
    "c_loop_p90_us",
    "batch64_samples_per_second",
    "accuracy",
    "multiplications_per_sample",
    "model_bytes",
)
C_LOOP_ROWS = ("fixed_lsh", "dense_int8", "float_lsh")


def cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench")
    code, _, err = cli(
        "train", "--data", "digits", "--hidden", "64", "--epochs", "1", "--quiet",
        "--out", "m.npz", cwd=folder,
    )  # fmt: skip
    assert code == 0, err
    code, _, err = cli("export", "m.npz", "--out", "m.elsh", cwd=folder)
    assert code == 0, err
    return folder / "m.elsh"


def test_json_has_every_row(model: Path) -> None:
    code, out, err = cli(
        "bench", model.name, "--samples", "20", "--rounds", "2", "--settle", "0", "--json",
        cwd=model.parent,
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)  # stdout is one JSON object
    assert list(result["rows"]) == list(ROWS)
    litert = find_runtime() is not None
    for key, row in result["rows"].items():
        if key.startswith("litert") and not litert:
            assert 'pip install ".[tflite]"' in row["skipped"]
            continue
        assert "skipped" not in row, (key, row)
        for fig in FIGURES:
            assert fig in row, (key, fig)
            if fig.startswith("c_loop") and key not in C_LOOP_ROWS:
                assert row[fig] is None
            else:
                assert row[fig] is not None and row[fig] > 0, (key, fig)
    rows = result["rows"]
    assert (
        rows["fixed_lsh"]["multiplications_per_sample"]
        < rows["dense_int8"]["multiplications_per_sample"]
    )
    assert result["timed_samples"] == 20 and result["rounds"] == 2
    assert "float LSH model: the .elsh INFO's source_model" in " ".join(result["notes"])
    assert result["markdown"].count("\n") == len(ROWS) + 1


def test_without_litert_its_rows_are_skipped_with_a_note(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_mod, "find_runtime", lambda: None)
    code, out, err = cli(
        "bench", model.name, "--samples", "5", "--rounds", "1", "--settle", "0", cwd=model.parent
    )
    assert code == 0, err
    assert out.count('pip install ".[tflite]"') >= 2  # both rows and the note
    assert "edge-lsh fixed-point LSH" in out


def test_plot_and_given_tflite(model: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    if find_runtime() is None:
        pytest.skip("no LiteRT")
    code, _, err = cli(
        "export", str(model), "--format", "tflite", "--int8", "--out", str(tmp_path / "q.tflite"),
        cwd=model.parent,
    )  # fmt: skip
    assert code == 0, err
    png = tmp_path / "b.png"
    code, out, err = cli(
        "bench", model.name, "--samples", "5", "--rounds", "1", "--settle", "0",
        "--tflite", str(tmp_path / "q.tflite"), "--plot", str(png), "--json", cwd=model.parent,
    )  # fmt: skip
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads(out)["rows"]
    assert "--tflite q.tflite" in rows["litert_int8"]["source"]


def test_bad_input_exits_2(model: Path, tmp_path: Path) -> None:
    (tmp_path / "x.npz").write_bytes(b"not a model")
    for args in (
        ["bench", str(tmp_path / "x.npz")],
        ["bench", str(tmp_path / "missing.elsh")],
        ["bench", str(model), "--data", "mnist5k:nope"],
        ["bench", str(model), "--float", str(tmp_path / "x.npz")],
        ["bench", str(model), "--tflite", str(tmp_path / "x.npz")],
        ["bench", str(model), "--samples", "0"],
    ):
        code, _, err = cli(*args, "--rounds", "1", cwd=tmp_path)
        assert code == 2, (args, err)
