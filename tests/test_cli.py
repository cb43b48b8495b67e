"""The edge-lsh command line: train/eval with --json, and clear errors on bad input."""

from __future__ import annotations

import json

import numpy as np

from edge_lsh import defaults
from edge_lsh.cli import main
from edge_lsh.data import load
from edge_lsh.network import Network

REQUIRED = {
    "accuracy",
    "active_fraction",
    "multiplications_per_sample",
    "dense_multiplications_per_sample",
    "train_seconds",
    "samples_per_second",
}


def small_npz(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 240)
    x = (np.eye(3)[y].repeat(8, axis=1) + 0.2 * rng.random((240, 24))).astype(np.float32)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    return path


def test_train_json_then_eval(tmp_path, capsys):
    data = small_npz(tmp_path)
    model = tmp_path / "m.npz"
    args = ["train", "--data", f"npz:{data}", "--hidden", "64", "--active", "0.25", "--epochs"]
    rc = main(
        [*args, "3", "--bits", "3", "--tables", "8", "--hash", "ternary", "--out", str(model)]
        + ["--json"]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert REQUIRED <= set(out)
    assert out["accuracy"] > 0.9
    assert out["active_fraction"] == 0.25
    assert out["multiplications_per_sample"] == 16 * 24 + 16 * 3
    assert out["dense_multiplications_per_sample"] == 64 * 24 + 64 * 3
    assert model.exists()
    assert main(["eval", str(model), "--data", f"npz:{data}", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["accuracy"] == out["accuracy"]


def test_dense_flag_trains_baseline(tmp_path, capsys):
    data = small_npz(tmp_path)
    model = tmp_path / "dense.npz"
    args = ["train", "--data", f"npz:{data}", "--hidden", "32", "--dense", "--epochs", "1"]
    assert main([*args, "--json", "--quiet", "--out", str(model)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["lsh"] is False and out["active_fraction"] == 1.0
    assert out["multiplication_fraction"] == 1.0
    assert out["multiplications_per_sample"] == 32 * 24 + 3 * 32
    assert out["dense_multiplications_per_sample"] == 32 * 24 + 3 * 32
    assert out["hash_multiplications_per_sample"] == 0
    net = Network.load(model)
    assert net.lsh is None and net.active_counts() == [32, 3]


def test_errors_exit_2_with_message(tmp_path, capsys):
    assert main(["train", "--data", "nosuch:thing", "--epochs", "1"]) == 2
    assert "error" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    assert main(["eval", str(bad), "--data", "digits"]) == 2
    assert "error" in capsys.readouterr().err
    data = small_npz(tmp_path)
    args = ["train", "--data", f"npz:{data}", "--hash", "dwta", "--pool", "8", "--epochs", "1"]
    assert main(args) == 2
    assert "dwta_bin" in capsys.readouterr().err  # 8-wide bins vs 24 values pooled to 3


def test_unknown_option_is_a_usage_error(capsys):
    try:
        main(["train", "--no-such-option"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("argparse should exit")
    assert "unrecognized arguments" in capsys.readouterr().err


def test_demo_prints_side_by_side_table_and_json(capsys):
    assert main(["demo", "--epochs", "1", "--quiet", "--json"]) == 0
    captured = capsys.readouterr()
    out = captured.err.strip().splitlines()  # with --json the table goes to stderr
    assert any(line.startswith("LSH 5% active") for line in out)
    assert any(line.startswith("dense (same kernel)") for line in out)
    result = json.loads(captured.out)  # and stdout is the JSON alone
    lsh, dense = result["lsh"], result["dense"]
    assert lsh["multiplications_per_sample"] == 0.05 * dense["multiplications_per_sample"]
    assert lsh["accuracy"] > 0.8 and dense["accuracy"] > 0.8  # one epoch already learns digits
    fixed = result["fixed"]  # the LSH network in int8, run by the fixed-point kernel
    assert any(line.startswith("LSH, int8 fixed point") for line in out)
    assert abs(fixed["accuracy"] - lsh["accuracy"]) < 0.03
    assert fixed["model_bytes"] > 64 * 2000  # at least the int8 weights of the hidden layer


def test_train_from_continues_a_saved_model(tmp_path, capsys):
    data = small_npz(tmp_path)
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    args = ["train", "--data", f"npz:{data}", "--hidden", "32", "--active", "0.25", "--quiet"]
    # a small learning rate leaves the first model half-trained: its accuracy tells it apart
    assert (
        main([*args, "--epochs", "1", "--tables", "8", "--lr", "0.001", "--out", str(first)]) == 0
    )
    assert main(["eval", str(first), "--data", f"npz:{data}", "--json"]) == 0
    first_acc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["accuracy"]
    assert 0.4 < first_acc < 0.9
    rc = main(
        ["train", "--data", f"npz:{data}", "--from", str(first), "--epochs", "2"]
        + ["--out", str(second), "--json", "--hidden", "99"]
    )
    assert rc == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    # it starts from the saved weights: the accuracy before is the saved model's
    assert out["accuracy_before"] == first_acc
    assert out["epochs"] == 2 and out["accuracy"] > first_acc
    assert "--hidden ignored" in captured.err
    assert "epoch 1/2" in captured.err and "epoch 2/2" in captured.err
    assert "1 epoch so far" in captured.err  # not "1 epochs"

    saved, tuned = Network.load(first), Network.load(second)
    assert tuned.epochs_trained == 3
    assert tuned.layer_sizes == [24, 32, 3]
    assert tuned.lsh == saved.lsh and tuned.active_counts() == saved.active_counts() == [8, 3]
    # ... and continuing is exactly loading the model and training it on: same weights
    split = load(f"npz:{data}", seed=0)
    saved.fit(split.x_train, split.y_train, epochs=2, train=defaults.TRAIN)
    for i in range(tuned.n_layers):
        before = Network.load(first).layer_arrays(i)["w"]
        after = tuned.layer_arrays(i)["w"]
        assert not np.array_equal(after, before), f"layer {i} did not train"
        assert np.array_equal(after, saved.layer_arrays(i)["w"]), f"layer {i}"
        assert np.array_equal(tuned.layer_arrays(i)["b"], saved.layer_arrays(i)["b"])
    assert main(["eval", str(second), "--data", f"npz:{data}", "--json"]) == 0
    assert (
        json.loads(capsys.readouterr().out.strip().splitlines()[-1])["accuracy"] == out["accuracy"]
    )
    # a model that does not fit the data is refused with a message
    assert main(["train", "--data", "digits", "--from", str(first), "--epochs", "1"]) == 2
    assert "features" in capsys.readouterr().err
