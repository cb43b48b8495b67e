"""The scripts in tools/bench: every flag has help text, --help exits 0, a bad value is an
error message and exit status 2 (never a traceback), and a tiny real run of accuracy.py writes
the JSON the README's figures are read from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "tools" / "bench"

# script -> arguments with one bad value
BAD = {
    "accuracy.py": ["--seeds", "0,x"],
    "bench_interop.py": ["--active", "0"],
    "bench_keras.py": ["--batch", "0"],
    "bench_fixed.py": ["--hidden", "0"],
    "bench_fractions.py": ["--fractions", "5,0"],
    "bench_latency.py": ["--active", "200"],
    "bench_qtrain_threads.py": ["--rounds", "0"],
    "bench_threads.py": ["--threads", "0"],
    "count_instructions.py": ["--model", "m.elsh", "--inputs", "1"],
    "get_mnist_idx.py": ["--to", "README.md"],  # a file, not a folder: refused before any download
    "qtrain_shift.py": ["--epochs", "0"],
    "reference_error.py": ["--inputs", "0"],
    "scaling_model.py": ["--active", "0"],
    "selection_speed.py": ["--model", "m.elsh", "--rounds", "0"],
}


def run_script(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


# prints [option strings, help] of every action of a script's build_parser()
ACTIONS = """
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])  # the scripts import their neighbour `common`
spec = importlib.util.spec_from_file_location("script", sys.argv[2])
module = importlib.util.module_from_spec(spec)
sys.modules["script"] = module
spec.loader.exec_module(module)
print(json.dumps([[a.option_strings, a.help] for a in module.build_parser()._actions]))
"""


def actions_of(script: str) -> list[tuple[list[str], str | None]]:
    res = subprocess.run(
        [sys.executable, "-c", ACTIONS, str(BENCH), str(BENCH / script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return [(opts, text) for opts, text in json.loads(res.stdout)]


def test_every_script_is_listed():
    assert sorted(BAD) == sorted(p.name for p in BENCH.glob("*.py") if p.name != "common.py")


@pytest.mark.parametrize("script", sorted(BAD))
def test_help(script):
    res = run_script(script, "--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: {script}")
    actions = actions_of(script)
    assert len(actions) > 1
    for opts, text in actions:
        assert text and text.strip(), f"{script} {opts}: no help text"
        assert opts[-1] in res.stdout


@pytest.mark.parametrize("script", sorted(BAD))
def test_bad_value_is_exit_2(script):
    res = run_script(script, *BAD[script])
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert f"{script}: error: " in res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "no-such-spec"], "unknown data spec"),
        (["--set", "bits=0"], "LSHConfig.bits=0"),
        (["--set", "bits=x"], "bits takes a whole number"),
        (["--set", "colour=red"], "expected KEY=VALUE"),
        (["--split-seed", "some"], "expected a seed >= 0 or 'each'"),
        (["--compare", "sparse"], "invalid choice"),
        (["--json", "no/such/folder/out.json"], "does not exist"),
        (["--save", "README.md"], "--save README.md: not a folder"),
        (["--validate", "0"], "--validate"),
        (["--validate", "100000"], "--validate 100000: must leave training rows"),
        (["--validate", "100", "--save", "tools"], "--save with --validate"),
    ],
)
def test_accuracy_bad_input_before_training(args, message):
    res = run_script("accuracy.py", "--seeds", "0", "--epochs", "1", *args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert message in res.stderr
    assert "train " not in res.stderr  # nothing was trained


def test_accuracy_tiny_run(tmp_path):
    pytest.importorskip("sklearn")
    from edge_lsh import defaults
    from edge_lsh.data import load
    from edge_lsh.network import Network

    out = tmp_path / "acc.json"
    args = ["--data", "digits", "--hidden", "32", "--epochs", "1", "--seeds", "0,1"]
    res = run_script("accuracy.py", *args, "--compare", "both", "--json", str(out))
    assert res.returncode == 0, res.stderr
    summary = json.loads(out.read_text())
    for key in (
        # the keys of the former accuracy_gap.py, which the results/ files hold
        "data",
        "layers",
        "epochs",
        "seeds",
        "lsh",
        "lsh_accuracy",
        "dense_accuracy",
        "gap_points",
        "lsh_accuracies",
        "dense_accuracies",
        "multiplication_fraction",
        "train_speedup",
        # the fixed-point comparison
        "fixed_accuracy",
        "fixed_accuracies",
        "fixed_change_points",
        "weight_bits",
        "per_seed",
        "machine",
    ):
        assert key in summary, key
    assert summary["layers"] == [64, 32, 10]
    assert summary["seeds"] == [0, 1] and summary["split_seed"] == 0
    assert [r["seed"] for r in summary["per_seed"]] == [0, 1]
    for kind in ("lsh", "dense", "fixed"):
        accs = summary[f"{kind}_accuracies"]
        assert len(accs) == 2 and all(0.0 <= a <= 1.0 for a in accs)
        assert summary[f"{kind}_accuracy"] == pytest.approx(sum(accs) / 2)
    gap = (summary["dense_accuracy"] - summary["lsh_accuracy"]) * 100
    assert summary["gap_points"] == pytest.approx(gap)
    assert "| mean |" in res.stdout

    # the script trains exactly the defaults' network of each seed on the split of seed 0
    data = load("digits", seed=0)
    net = Network(data.n_features, [32], data.n_classes, defaults.LSH, seed=1)
    net.fit(data.x_train, data.y_train, epochs=1, train=defaults.TRAIN)
    assert net.evaluate(data.x_test, data.y_test)["accuracy"] == summary["lsh_accuracies"][1]


def test_accuracy_save_writes_the_networks_export_takes(tmp_path, capsys):
    """--save DIR keeps each float network as `edge-lsh train --out` would; the LSH one loads
    with its data record, predicts as measured, and `edge-lsh export` turns it into an .elsh
    file whose fixed-point accuracy is the run's --compare fixed figure."""
    pytest.importorskip("sklearn")
    from edge_lsh.cli import main as cli_main
    from edge_lsh.data import load
    from edge_lsh.network import Network

    args = ["--data", "digits", "--hidden", "32", "--epochs", "1", "--seeds", "2"]
    out = tmp_path / "acc.json"
    res = run_script(
        "accuracy.py", *args, "--compare", "both", "--save", str(tmp_path), "--json", str(out)
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(out.read_text())
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["dense-seed2.npz", "lsh-seed2.npz"]
    data = load("digits", seed=0)
    for kind in ("lsh", "dense"):
        net = Network.load(tmp_path / f"{kind}-seed2.npz")
        assert net.data is not None and net.data["n_train"] == data.x_train.shape[0]
        assert (net.lsh is None) == (kind == "dense")
        acc = net.evaluate(data.x_test, data.y_test)["accuracy"]
        assert acc == summary[f"{kind}_accuracies"][0]
        assert summary["per_seed"][0][kind]["saved"] == str(tmp_path / f"{kind}-seed2.npz")
    elsh = tmp_path / "m.elsh"
    capsys.readouterr()
    assert cli_main(["export", str(tmp_path / "lsh-seed2.npz"), "--out", str(elsh), "--json"]) == 0
    fixed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert fixed["fixed_accuracy"] == summary["fixed_accuracies"][0]
    assert fixed["float_accuracy"] == summary["lsh_accuracies"][0]


def test_accuracy_json_on_stdout():
    pytest.importorskip("sklearn")
    args = ["--hidden", "16", "--epochs", "1", "--seeds", "3", "--compare", "none"]
    res = run_script(
        "accuracy.py", *args, "--split-seed", "each", "--set", "tables=8", "--json", "-"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("**digits, 64-16-10, 1 epoch(s)")  # the table, then the JSON
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["split_seed"] == "each" and summary["settings"] == {"tables": 8}
    assert summary["lsh"]["tables"] == 8 and "dense_accuracy" not in summary
    assert summary["data_info"]["n_test"] == 359


def test_accuracy_recall_is_one_for_the_exact_oracle_and_measured_each_epoch(tmp_path):
    pytest.importorskip("sklearn")
    base = ["--hidden", "40,20", "--epochs", "2", "--seeds", "0", "--compare", "none"]
    exact = run_script(
        "accuracy.py", *base, "--recall", "30", "--set", "select=exact", "--json", "-"
    )
    assert exact.returncode == 0, exact.stderr
    summary = json.loads(exact.stdout.strip().splitlines()[-1])
    # the oracle's active sets are the exact top-k by construction, in both hidden layers
    assert summary["recall"] == [1.0, 1.0] and summary["recall_inputs"] == 30
    assert summary["recall_by_epoch"] == [[1.0, 1.0], [1.0, 1.0]]
    lsh = run_script("accuracy.py", *base, "--recall", "30", "--json", "-")
    assert lsh.returncode == 0, lsh.stderr
    recall = json.loads(lsh.stdout.strip().splitlines()[-1])["recall"]
    assert len(recall) == 2 and all(0.0 <= r < 1.0 for r in recall)


def test_accuracy_dense_from_reuses_a_checked_dense_run(tmp_path):
    pytest.importorskip("sklearn")
    first = tmp_path / "first.json"
    base = ["--hidden", "32", "--epochs", "1", "--recall", "0"]
    res = run_script("accuracy.py", *base, "--seeds", "0,1", "--json", str(first))
    assert res.returncode == 0, res.stderr
    dense = json.loads(first.read_text())["dense_accuracies"]
    res = run_script(
        "accuracy.py",
        *base,
        "--seeds",
        "1",
        "--dense-from",
        str(first),
        "--set",
        "tables=8",
        "--set",
        "warm_fraction=0.5",
        "--set",
        "warm_epochs=1",
        "--json",
        "-",
    )
    assert res.returncode == 0, res.stderr
    assert "seed 1 dense" not in res.stderr  # nothing dense was trained again
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["dense_accuracies"] == [dense[1]] and summary["dense_from"] == str(first)
    assert summary["gap_points_by_seed"] == [
        pytest.approx((dense[1] - summary["lsh_accuracy"]) * 100)
    ]
    # another dense network (epochs, optimizer, seed) or a file that is no run: refused
    for args, message in (
        (["--epochs", "2", "--seeds", "0"], "epochs is 1"),
        (["--seeds", "0", "--set", "lr=0.5"], "train_config.lr"),
        (["--seeds", "2"], "no dense network of seed(s) [2]"),
    ):
        res = run_script(
            "accuracy.py",
            "--hidden",
            "32",
            "--recall",
            "0",
            "--epochs",
            "1",
            *args,
            "--dense-from",
            str(first),
        )
        assert res.returncode == 2 and message in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
    (tmp_path / "bad.json").write_text("[1, 2]")
    res = run_script(
        "accuracy.py", *base, "--seeds", "0", "--dense-from", str(tmp_path / "bad.json")
    )
    assert res.returncode == 2 and "not a JSON file written by" in res.stderr


def test_accuracy_validate_trains_and_measures_on_the_training_split_only():
    """--validate N: the networks train on all training rows but the last N and every figure
    is measured on those N; the test split is never read."""
    pytest.importorskip("sklearn")
    from edge_lsh import defaults
    from edge_lsh.data import load
    from edge_lsh.network import Network

    args = ["--hidden", "32", "--epochs", "1", "--seeds", "1", "--recall", "0"]
    res = run_script("accuracy.py", *args, "--validate", "300", "--json", "-")
    assert res.returncode == 0, res.stderr
    assert "validated on the last 300 training rows" in res.stdout
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    data = load("digits", seed=0)
    n_train = data.x_train.shape[0] - 300
    assert summary["validate"] == 300
    assert summary["data_info"]["n_train"] == n_train and summary["data_info"]["n_test"] == 300
    x_fit, y_fit = data.x_train[:n_train], data.y_train[:n_train]
    x_val, y_val = data.x_train[n_train:], data.y_train[n_train:]
    for kind, cfg in (("lsh", defaults.LSH), ("dense", None)):
        net = Network(data.n_features, [32], data.n_classes, cfg, seed=1)
        net.fit(x_fit, y_fit, epochs=1, train=defaults.TRAIN)
        assert net.evaluate(x_val, y_val)["accuracy"] == summary[f"{kind}_accuracies"][0]
