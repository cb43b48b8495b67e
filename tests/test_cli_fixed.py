"""The fixed-point commands: export, eval of an .elsh file, run, inspect; and the standalone
C runner (native/runner) against the Python binding on the same files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge_lsh.cli import main
from edge_lsh.fixed import FixedPointModel

ROOT = Path(__file__).resolve().parent.parent
TRAIN_KEYS = {
    "data",
    "layers",
    "lsh",
    "accuracy",
    "active_fraction",
    "multiplications_per_sample",
    "dense_multiplications_per_sample",
    "multiplication_fraction",
    "hash_multiplications_per_sample",
    "additions_per_sample",
    "weight_bytes_per_sample",
    "train_seconds",
    "epochs",
    "samples_per_second",
    "inference_us_per_sample",
    "final_loss",
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_fixed")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = (np.eye(3)[y].repeat(8, axis=1) + 0.2 * rng.random((300, 24))).astype(np.float32)
    data = tmp / "d.npz"
    np.savez(data, x=x, y=y)
    model = tmp / "m.npz"
    args = ["train", "--data", f"npz:{data}", "--hidden", "64", "--active", "0.25"]
    assert main([*args, "--epochs", "3", "--tables", "8", "--out", str(model), "--quiet"]) == 0
    return tmp, data, model, x, y


def test_export_eval_json_keys(trained, capsys):
    tmp, data, model, _, _ = trained
    out = tmp / "m.elsh"
    rc = main(["export", str(model), "--calib", f"npz:{data}", "--out", str(out), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model_bytes"] == out.stat().st_size
    assert abs(summary["fixed_accuracy"] - summary["float_accuracy"]) <= 0.05
    assert main(["eval", str(out), "--data", f"npz:{data}", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert TRAIN_KEYS | {"model_bytes"} <= set(ev)
    assert ev["accuracy"] == summary["fixed_accuracy"]
    assert ev["model_bytes"] == out.stat().st_size
    assert ev["active_fraction"] == 0.25


def test_export_without_tables_is_smaller_and_equal(trained, capsys):
    tmp, data, model, x, _ = trained
    a, b = tmp / "a.elsh", tmp / "b.elsh"
    assert main(["export", str(model), "--calib", f"npz:{data}", "--out", str(a)]) == 0
    assert (
        main(["export", str(model), "--calib", f"npz:{data}", "--out", str(b), "--no-tables"]) == 0
    )
    capsys.readouterr()
    assert b.stat().st_size < a.stat().st_size
    ma, mb = FixedPointModel.load(a), FixedPointModel.load(b)
    assert np.array_equal(ma.predict_logits(x)[1], mb.predict_logits(x)[1])


def test_run_npy_and_csv(trained, capsys):
    tmp, data, model, x, y = trained
    out = tmp / "r.elsh"
    assert main(["export", str(model), "--calib", f"npz:{data}", "--out", str(out)]) == 0
    capsys.readouterr()
    np.save(tmp / "x.npy", x[:10])
    assert main(["run", str(out), "--input", str(tmp / "x.npy")]) == 0
    preds = [int(v) for v in capsys.readouterr().out.split()]
    want = FixedPointModel.load(out).predict(x[:10])
    assert preds == list(want)
    np.savetxt(tmp / "x.csv", np.c_[x[:10], y[:10]], delimiter=",")
    assert main(["run", str(out), "--input", str(tmp / "x.csv"), "--logits"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert [int(line.split()[0]) for line in lines] == list(want)
    assert len(lines[0].split()) == 1 + 3
    assert "accuracy" in captured.err


def test_inspect(trained, capsys):
    tmp, data, model, _, _ = trained
    out = tmp / "i.elsh"
    assert main(["export", str(model), "--calib", f"npz:{data}", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "WEIGHTS" in text and "TABLES" in text and "ternary" in text
    assert main(["inspect", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["file_bytes"] == out.stat().st_size
    assert sum(s["size"] for s in d["sections"]) <= d["file_bytes"]


def test_errors_exit_2(trained, tmp_path, capsys):
    _, data, model, x, _ = trained
    bad = tmp_path / "bad.elsh"
    bad.write_bytes(b"ELSH\r\n\x1a\n" + b"\0" * 100)
    assert main(["eval", str(bad), "--data", f"npz:{data}"]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "none.elsh")]) == 2
    capsys.readouterr()
    good = tmp_path / "g.elsh"
    assert main(["export", str(model), "--calib", f"npz:{data}", "--out", str(good)]) == 0
    wrong = tmp_path / "w.npy"
    np.save(wrong, x[:, :5])
    assert main(["run", str(good), "--input", str(wrong)]) == 2
    assert "24" in capsys.readouterr().err
    csv = tmp_path / "nan.csv"
    csv.write_text(",".join(["nan"] * 24) + "\n")
    assert main(["run", str(good), "--input", str(csv)]) == 2
    # a failed export leaves no file behind
    target = tmp_path / "never.elsh"
    assert main(["export", str(model), "--calib", "digits", "--out", str(target)]) == 2
    assert not target.exists()


@pytest.fixture(scope="module")
def runner():
    missing = [tool for tool in ("make", "cc") if shutil.which(tool) is None]
    assert not missing, f"the C runner tests need {' and '.join(missing)} (required test tools)"
    build = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "native"), "runner"], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    return ROOT / "native" / "build" / "edge-lsh-run"


def test_c_runner_matches_python(trained, runner, capsys):
    tmp, data, model, x, y = trained
    out = tmp / "c.elsh"
    assert (
        main(["export", str(model), "--calib", f"npz:{data}", "--out", str(out), "--no-tables"])
        == 0
    )
    capsys.readouterr()
    fm = FixedPointModel.load(out)
    pred, logits = fm.predict_logits(x[:30])
    for name, write in (
        ("x.npy", lambda p: np.save(p, x[:30])),
        ("x64.npy", lambda p: np.save(p, x[:30].astype(np.float64))),
        ("x.csv", lambda p: np.savetxt(p, np.c_[x[:30], y[:30]], delimiter=",", fmt="%.9g")),
    ):
        write(tmp / name)
        res = subprocess.run(
            [str(runner), str(out), str(tmp / name), "--logits"], capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
        rows = [line.split() for line in res.stdout.splitlines() if not line.startswith("#")]
        assert [int(r[0]) for r in rows] == list(pred), name
        assert np.array_equal(np.array([[int(v) for v in r[1:]] for r in rows]), logits), name
        assert "# latency_us" in res.stdout
    acc = [line for line in res.stdout.splitlines() if line.startswith("# accuracy")]
    assert acc and f"{(pred == y[:30]).mean():.4f}" in acc[0]


def test_c_runner_rejects_bad_input(trained, runner, tmp_path):
    _, _, _, x, _ = trained
    golden = sorted((ROOT / "export" / "golden").glob("*.elsh"))[0]
    cases = [
        ([str(tmp_path / "missing.elsh")], "cannot open"),
        ([str(golden), "--bogus"], "unknown option"),
        ([str(golden), "--active", "2"], "--active"),
    ]
    corrupt = tmp_path / "corrupt.elsh"
    corrupt.write_bytes(golden.read_bytes()[:-3])
    cases.append(([str(corrupt)], "truncated"))
    nan_csv = tmp_path / "nan.csv"
    n_in = FixedPointModel.load(golden).n_in
    nan_csv.write_text(",".join(["1"] * (n_in - 1) + ["nan"]) + "\n")
    cases.append(([str(golden), str(nan_csv)], "not a finite"))
    short = tmp_path / "short.csv"
    short.write_text("1,2\n")
    cases.append(([str(golden), str(short)], "values"))
    for args, msg in cases:
        res = subprocess.run([str(runner), *args], capture_output=True, text=True)
        assert res.returncode != 0 and msg in res.stderr, (args, res.stderr)


def test_c_runner_input_edge_cases(trained, runner, tmp_path, capsys):
    """Review findings: long lines, subnormal values, partial labels, huge labels, 3-D .npy."""
    _, data, model, x, y = trained
    out = tmp_path / "e.elsh"
    assert main(["export", str(model), "--calib", f"npz:{data}", "--out", str(out)]) == 0
    capsys.readouterr()
    fm = FixedPointModel.load(out)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(runner), str(out), *args], capture_output=True, text=True)

    # a row far longer than any fixed line buffer (digits padded with zeros)
    long_csv = tmp_path / "long.csv"
    long_csv.write_text(",".join(f"{v:.200f}" for v in x[0]) + "\n")
    res = run(str(long_csv))
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.split()[0]) == int(fm.predict(x[:1])[0])
    # subnormal values are numbers (strtof reports ERANGE on underflow)
    sub = tmp_path / "sub.csv"
    sub.write_text(",".join(["1e-40"] * x.shape[1]) + "\n")
    res = run(str(sub))
    assert res.returncode == 0, res.stderr
    # accuracy counts labelled rows only
    mixed = tmp_path / "mixed.csv"
    rows = [",".join(map(str, x[0])) + f",{int(fm.predict(x[:1])[0])}", ",".join(map(str, x[1]))]
    mixed.write_text("\n".join(rows) + "\n")
    res = run(str(mixed))
    assert "(1 of 1 labelled rows)" in res.stdout, res.stdout
    # a label beyond int range is an error, not undefined behaviour
    huge = tmp_path / "huge.csv"
    huge.write_text(",".join(map(str, x[0])) + ",3e9\n")
    res = run(str(huge))
    assert res.returncode != 0 and "label" in res.stderr
    # a 3-D array is not read as 2-D
    np.save(tmp_path / "cube.npy", np.zeros((2, x.shape[1], 2), dtype=np.float32))
    res = run(str(tmp_path / "cube.npy"))
    assert res.returncode != 0 and "2-D" in res.stderr
