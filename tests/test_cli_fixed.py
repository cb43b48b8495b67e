"""The fixed-point commands: export, eval of an .elsh file, run, inspect; and the standalone
C runner (native/runner) against the Python binding on the same files."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge_lsh.cli import main
from edge_lsh.data import load
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import read_elsh
from edge_lsh.network import Network
from edge_lsh.oracle import qreference as Q
from edge_lsh.quantize import float_activations

ROOT = Path(__file__).resolve().parent.parent
EVAL_KEYS = {
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
    "inference_us_per_sample",
}
TRAIN_ONLY_KEYS = {"train_seconds", "epochs", "samples_per_second", "final_loss"}


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
    tmp, data, model, x, _ = trained
    out = tmp / "m.elsh"
    rc = main(["export", str(model), "--calib", f"npz:{data}", "--out", str(out), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model_bytes"] == out.stat().st_size
    # separable classes, every float probability above 0.99: int8 changes no prediction
    assert summary["float_accuracy"] == summary["fixed_accuracy"] == 1.0
    assert summary["accuracy_change_points"] == 0.0
    assert np.array_equal(FixedPointModel.load(out).predict(x), Network.load(model).predict(x))
    assert main(["eval", str(out), "--data", f"npz:{data}", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert EVAL_KEYS | {"model_bytes"} <= set(ev)
    assert not TRAIN_ONLY_KEYS & set(ev)  # training figures are left out, not null
    assert None not in ev.values()
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


def test_summary_shows_points_as_points(capsys):
    """A *_points value is already in percentage points: shown as points, never scaled to a
    percentage (export printed -4.18 points as "-417.83%")."""
    from edge_lsh.report import print_summary

    print_summary({"float_accuracy": 0.9, "accuracy_change_points": -4.18}, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["float_accuracy", "90.00%"]
    assert lines[1].split() == ["accuracy_change_points", "-4.18", "points"]


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


def _with_k(qm, k_of):
    """A copy of qm whose LSH layers have k = k_of(layer): the oracle at another active count."""
    q = copy.deepcopy(qm)
    for layer in q.layers:
        if layer.use_lsh:
            layer.k = k_of(layer)
    return q


def _run_logits(capsys, *args):
    """`edge-lsh run ... --logits`: (predictions, logits, stderr)."""
    assert main(["run", *args, "--logits"]) == 0
    captured = capsys.readouterr()
    rows = np.array([[int(v) for v in line.split()] for line in captured.out.splitlines()])
    return rows[:, 0], rows[:, 1:], captured.err


def test_run_active_and_dense_match_the_oracle(trained, capsys):
    tmp, data, model, x, y = trained
    out = tmp / "a.elsh"
    assert main(["export", str(model), "--calib", f"npz:{data}", "--out", str(out)]) == 0
    capsys.readouterr()
    qm = read_elsh(out)
    assert [(L.use_lsh, L.n_out, L.k) for L in qm.layers] == [(True, 64, 16), (False, 3, 3)]
    xq = Q.quantize_input(qm, x)
    csv = tmp / "a.csv"
    np.savetxt(csv, np.c_[x, y], delimiter=",", fmt="%.9g")

    pred0, logits0, _ = _run_logits(capsys, str(out), "--input", str(csv))
    assert np.array_equal(logits0, Q.logits_batch(qm, xq))  # the file's k = 16
    # --active 0.1: k = round(6.4) = 6 in the hidden layer, and not the file's 16
    pred, logits, err = _run_logits(capsys, str(out), "--input", str(csv), "--active", "0.1")
    want = Q.logits_batch(_with_k(qm, lambda L: 6), xq)
    assert np.array_equal(logits, want)
    assert np.array_equal(pred, np.argmax(want, axis=1))
    assert not np.array_equal(logits, logits0)
    assert f"accuracy {100 * (pred == y).mean():.2f}% ({int((pred == y).sum())} of {len(y)})" in err
    # --dense: every neuron, the oracle with k = n_out; the same as --active 1
    pred, logits, _ = _run_logits(capsys, str(out), "--input", str(csv), "--dense")
    want = Q.logits_batch(_with_k(qm, lambda L: L.n_out), xq)
    assert np.array_equal(logits, want)
    assert np.array_equal(pred, np.argmax(want, axis=1))
    assert not np.array_equal(logits, logits0)
    assert np.array_equal(
        _run_logits(capsys, str(out), "--input", str(csv), "--active", "1")[1], want
    )
    # the default k again is what `eval` measures (its test split, its accuracy)
    split = load(f"npz:{data}", seed=0)
    np.save(tmp / "test.npy", split.x_test)
    pred_test, _, _ = _run_logits(capsys, str(out), "--input", str(tmp / "test.npy"))
    assert main(["eval", str(out), "--data", f"npz:{data}", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["accuracy"] == float((pred_test == split.y_test).mean())


def test_export_weight_bits_16(trained, capsys):
    tmp, data, model, x, _ = trained
    a8, a16 = tmp / "w8.elsh", tmp / "w16.elsh"
    base = ["export", str(model), "--calib", f"npz:{data}", "--json"]
    assert main([*base, "--out", str(a8)]) == 0
    capsys.readouterr()
    assert main([*base, "--out", str(a16), "--weight-bits", "16"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["weight_bits"] == 16
    assert summary["fixed_accuracy"] == summary["float_accuracy"] == 1.0
    assert main(["inspect", str(a16), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [L["weight_bits"] for L in d["layers"]] == [16, 16]
    qm = read_elsh(a16)
    n_weights = sum(L.n_in * L.n_out for L in qm.layers)
    for layer in qm.layers:
        assert layer.weights.dtype == np.int16
        # symmetric per-row scales: each row's largest weight is at the int16 limit
        assert (np.abs(layer.weights.astype(np.int64)).max(axis=1) == 32767).all()
    # one more byte per weight than the int8 file, nothing else
    assert a16.stat().st_size - a8.stat().st_size == n_weights
    fm = FixedPointModel.load(a16)
    assert [fm.layer_info(i)["weight_bits"] for i in range(fm.n_layers)] == [16, 16]
    logits = fm.predict_logits(x)[1].astype(np.int64)
    assert np.array_equal(logits, Q.logits_batch(qm, Q.quantize_input(qm, x)))


def test_export_percentile_sets_the_hidden_scale(trained, capsys):
    tmp, data, model, x, _ = trained
    net = Network.load(model)
    calib = load(f"npz:{data}", seed=0).x_train[:1000]
    outs, _ = float_activations(net, calib)
    active = outs[0][outs[0] > 0]  # the hidden layer's active positive outputs
    base = ["export", str(model), "--calib", f"npz:{data}", "--json"]
    scales = {}
    for p in (None, 100.0, 99.0, 90.0):
        path = tmp / f"p{p}.elsh"
        assert (
            main([*base, "--out", str(path), *([] if p is None else ["--percentile", str(p)])]) == 0
        )
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["fixed_accuracy"] == summary["float_accuracy"] == 1.0, p
        fm = FixedPointModel.load(path)
        top = active.max() if p is None else np.percentile(active, p)
        scales[p] = fm.layer_info(0)["out_scale"]
        assert scales[p] == float(np.float32(top / 255.0)), p
        assert (
            fm.layer_info(0)["in_scale"]
            == FixedPointModel.load(tmp / "pNone.elsh").layer_info(0)["in_scale"]
        )
        agree = (fm.predict(x) == net.predict(x)).mean()
        assert agree >= 0.99, (p, agree)
    assert scales[100.0] == scales[None]  # the 100th percentile is the maximum
    assert scales[90.0] < scales[99.0] < scales[None]


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
    assert acc and f": {100 * (pred == y[:30]).mean():.2f}% (" in acc[0]


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
