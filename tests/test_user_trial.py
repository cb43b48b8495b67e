"""What a new user hit (issue 9): lost models, silent wrong answers, and interfaces that did
not fit habits. Each test builds the situation the user trial found and checks the fix."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from edge_lsh import defaults
from edge_lsh.cli import build_parser, main
from edge_lsh.network import Network


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trial")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = (np.eye(3)[y].repeat(8, axis=1) + 0.2 * rng.random((300, 24))).astype(np.float32)
    data = tmp / "d.npz"
    np.savez(data, x=x, y=y)
    model = tmp / "m.npz"
    args = ["train", "--data", f"npz:{data}", "--hidden", "64", "--active", "0.25"]
    assert main([*args, "--epochs", "2", "--tables", "8", "--out", str(model), "--quiet"]) == 0
    elsh = tmp / "m.elsh"
    assert main(["export", str(model), "--calib", f"npz:{data}", "--out", str(elsh)]) == 0
    return tmp, data, model, elsh, x, y


def _train_args(data: Path) -> list[str]:
    return ["train", "--data", f"npz:{data}", "--hidden", "16", "--epochs", "1", "--tables", "4"]


# ----------------------------------------------------------------------------- 1. bad --out


@pytest.mark.parametrize("where", ["missing folder", "a folder"])
def test_bad_out_is_refused_before_training(trained, capsys, where):
    tmp, data, model, *_ = trained
    out = tmp / "no_such_dir" / "m.npz" if where == "missing folder" else tmp
    assert main([*_train_args(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "edge-lsh: error:" in err and "Traceback" not in err
    assert ("does not exist" if where == "missing folder" else "is a folder") in err
    assert "epoch" not in err  # refused before any training


def test_export_bad_out_is_refused_before_work(trained, capsys):
    tmp, data, model, *_ = trained
    rc = main(["export", str(model), "--calib", f"npz:{data}", "--out", str(tmp / "nodir" / "x")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "nodir" in err and "does not exist" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- 2. CSV labels


def test_run_refuses_a_label_first_csv(trained, capsys):
    tmp, data, model, elsh, x, y = trained
    x = x.copy()
    x[:, -1] = 0.0  # a blank last pixel: read as labels it would be a constant class 0
    rows = np.column_stack([y, x])
    csv = tmp / "first.csv"
    np.savetxt(csv, rows, delimiter=",", fmt="%.6g")
    assert main(["run", str(elsh), "--input", str(csv)]) == 2
    err = capsys.readouterr().err
    assert "--label-column first" in err and "accuracy" not in err
    assert main(["run", str(elsh), "--input", str(csv), "--label-column", "first"]) == 0
    assert "accuracy 100.00%" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 5. no --out


def test_train_without_out_says_the_model_was_not_kept(trained, capsys):
    _, data, *_ = trained
    assert main([*_train_args(data), "--quiet"]) == 0
    assert "not saved: pass --out PATH" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 7. pure JSON


def _pure_json(text: str) -> dict:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"stdout is not one JSON document: {text[:300]!r}"
    return json.loads(lines[0])


def test_json_is_pure_on_stdout(trained, capsys):
    tmp, data, model, elsh, x, y = trained
    np.save(tmp / "x.npy", x[:5])
    calls = [
        [*_train_args(data), "--json"],
        ["eval", str(model), "--data", f"npz:{data}", "--json"],
        ["eval", str(elsh), "--data", f"npz:{data}", "--json"],
        ["export", str(model), "--calib", f"npz:{data}", "--out", str(tmp / "j.elsh"), "--json"],
        ["run", str(elsh), "--input", str(tmp / "x.npy"), "--json", "--logits"],
        ["inspect", str(elsh), "--json"],
    ]
    for argv in calls:
        assert main(argv) == 0, argv
        doc = _pure_json(capsys.readouterr().out)
        assert doc, argv
    assert main(calls[4]) == 0
    doc = _pure_json(capsys.readouterr().out)
    assert len(doc["predictions"]) == 5 and len(doc["logits"][0]) == 3


def test_demo_json_is_pure(capsys):
    assert main(["demo", "--epochs", "1", "--quiet", "--json"]) == 0
    captured = capsys.readouterr()
    doc = _pure_json(captured.out)
    assert set(doc) == {"lsh", "dense", "fixed"}
    assert "LSH vs dense" in captured.err  # the table goes to stderr


# ----------------------------------------------------------------------------- 8, 9. help


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("edge-lsh 0.")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_flag_has_help_and_shows_its_default():
    for name, sub in _subparsers(build_parser()).items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}: no help text"
        text = " ".join(sub.format_help().split())  # wrapping aside
        if name == "train":
            assert f"(default: {defaults.EPOCHS})" in text  # --epochs
            assert "(default: 0.05)" in text  # --active
            assert text.count("Data specs:") == 1
            assert "training split and of the test split" in text  # what --limit limits
    assert build_parser().format_help().count("Data specs:") == 1


def test_a_folder_given_as_model_or_input_is_called_a_folder(trained, capsys):
    tmp, data, model, elsh, *_ = trained
    for argv in (
        ["eval", str(tmp), "--data", f"npz:{data}"],
        ["run", str(elsh), "--input", str(tmp)],
        ["inspect", str(tmp)],
        ["run", str(tmp), "--input", str(tmp)],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "is a folder" in err and "no such" not in err, (argv, err)


def test_dense_with_active_warns(trained, capsys):
    tmp, data, model, elsh, x, _ = trained
    np.save(tmp / "x1.npy", x[:3])
    assert main([*_train_args(data), "--dense", "--active", "0.5", "--quiet"]) == 0
    assert "--active is ignored with --dense" in capsys.readouterr().err
    assert (
        main(["run", str(elsh), "--input", str(tmp / "x1.npy"), "--dense", "--active", "0.5"]) == 0
    )
    assert "--active is ignored with --dense" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 10. output


def test_eval_leaves_out_training_keys_and_shows_percentages(trained, capsys):
    tmp, data, model, elsh, *_ = trained
    assert main(["eval", str(elsh), "--data", f"npz:{data}"]) == 0
    out = capsys.readouterr().out
    assert "None" not in out
    line = next(line for line in out.splitlines() if line.startswith("accuracy "))
    assert line.rstrip().endswith("%")


def test_epochs_count_from_one_with_one_default_and_test_accuracy(trained, capsys):
    _, data, *_ = trained
    import inspect

    assert inspect.signature(Network.fit).parameters["epochs"].default == defaults.EPOCHS
    net = Network(24, [16], 3, defaults.LSH, seed=0)
    d = np.load(data)
    reports = net.fit(d["x"], d["y"], epochs=2)
    assert [r.epoch for r in reports] == [1, 2]
    assert [r.epoch for r in net.fit(d["x"], d["y"], epochs=1)] == [3]
    assert main([*_train_args(data), "--epochs", "2", "--json"]) == 0
    captured = capsys.readouterr()
    doc = _pure_json(captured.out)
    assert len(doc["test_accuracy_per_epoch"]) == 2
    assert doc["test_accuracy_per_epoch"][-1] == doc["accuracy"]
    assert "epoch 1/2" in captured.err and " test " in captured.err


# ----------------------------------------------------------------------------- 11. edge inputs


def test_run_edge_inputs(trained, capsys):
    tmp, data, model, elsh, x, _ = trained
    np.save(tmp / "empty.npy", np.zeros((0, 24), np.float32))
    assert main(["run", str(elsh), "--input", str(tmp / "empty.npy")]) == 2
    assert "no input rows" in capsys.readouterr().err
    np.save(tmp / "images.npy", x[:4].reshape(4, 4, 6))  # (N, H, W) images flatten
    assert main(["run", str(elsh), "--input", str(tmp / "images.npy"), "--json"]) == 0
    flat = _pure_json(capsys.readouterr().out)["predictions"]
    np.save(tmp / "rows.npy", x[:4])
    assert main(["run", str(elsh), "--input", str(tmp / "rows.npy"), "--json"]) == 0
    assert _pure_json(capsys.readouterr().out)["predictions"] == flat


def test_label_sets_that_look_wrong_warn(tmp_path):
    from edge_lsh.data import load

    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 200) * 1000  # 0, 1000, ..., 9000
    np.savez(tmp_path / "d.npz", x=rng.random((200, 4)), y=y)
    with pytest.warns(UserWarning, match="10 distinct values but reach 9000"):
        load(f"npz:{tmp_path / 'd.npz'}")
    np.savez(tmp_path / "small.npz", x=rng.random((6, 4)), y=np.arange(6) % 2)
    with pytest.warns(UserWarning, match="test split has only 1 sample"):
        load(f"npz:{tmp_path / 'small.npz'}")


# ----------------------------------------------------------------------------- deploy edges


def test_deploy_checks_its_folder_before_building(tmp_path, capsys):
    """A deploy into a/b/out with no a/ fails at once and leaves nothing behind (it used to
    build, then fail, and leave a/ behind); --json is pure."""
    model = Path(__file__).resolve().parents[1] / "export" / "golden" / "ternary_seed_tables.elsh"
    out = tmp_path / "a" / "b" / "out"
    assert main(["deploy", str(model), "--target", "pi4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "building" not in err
    assert not (tmp_path / "a").exists()


def test_deploy_refuses_a_folder_where_a_bundle_file_goes(tmp_path, monkeypatch):
    """A folder named README.md in --out is found before any file is replaced."""
    from edge_lsh.deploy import deploy, toolchain
    from edge_lsh.errors import DeployError

    def fake_run(cmd, what, timeout=None):  # the "compiler" writes its -o file
        Path(cmd[cmd.index("-o") + 1]).write_bytes(b"\x7fELF")
        return None

    monkeypatch.setattr(toolchain, "need", lambda tool, target, why: tool)
    monkeypatch.setattr(toolchain, "run", fake_run)
    model = Path(__file__).resolve().parents[1] / "export" / "golden" / "ternary_seed_tables.elsh"
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "model.elsh").write_bytes(b"old model")
    (out / "README.md").mkdir()
    with pytest.raises(DeployError, match="README.md is a folder"):
        deploy(model, "pi4", out, force=True)
    assert (out / "model.elsh").read_bytes() == b"old model"  # nothing replaced halfway
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no temporary left


# ----------------------------------------------------------------------------- 3, 4. data record


def test_the_model_remembers_its_data_and_held_out_split(tmp_path, capsys):
    """train --seed 5 then eval with no --data scores the same held-out rows train did (it
    used to evaluate on digits split with seed 0, mixing in training rows)."""
    model = tmp_path / "m.npz"
    args = ["train", "--data", "digits", "--seed", "5", "--hidden", "32", "--tables", "8"]
    assert main([*args, "--epochs", "2", "--out", str(model), "--quiet", "--json"]) == 0
    trained_acc = _pure_json(capsys.readouterr().out)["accuracy"]
    assert main(["eval", str(model), "--json"]) == 0
    assert _pure_json(capsys.readouterr().out)["accuracy"] == trained_acc
    assert main(["eval", str(model), "--data", "digits", "--json"]) == 0  # its own spec: own split
    assert _pure_json(capsys.readouterr().out)["accuracy"] == trained_acc
    record = Network.load(model).data
    assert record is not None and record["spec"] == "digits" and record["seed"] == 5
    assert record["preprocess"] == {"divisor": 16.0}
    elsh = tmp_path / "m.elsh"
    assert main(["export", str(model), "--out", str(elsh), "--json"]) == 0  # no --calib needed
    exported = _pure_json(capsys.readouterr().out)
    assert exported["float_accuracy"] == trained_acc
    assert main(["eval", str(elsh), "--json"]) == 0
    assert _pure_json(capsys.readouterr().out)["accuracy"] == exported["fixed_accuracy"]


def test_a_model_without_a_data_record_needs_data(tmp_path, capsys):
    model = tmp_path / "old.npz"
    Network(64, [8], 10, None, seed=0).save(model)  # no record, like files from before
    assert main(["eval", str(model)]) == 2
    assert "does not record the data" in capsys.readouterr().err
    assert main(["export", str(model), "--out", str(tmp_path / "o.elsh")]) == 2
    assert "pass --calib SPEC" in capsys.readouterr().err


def test_run_applies_the_models_scaling_to_raw_inputs(tmp_path, capsys):
    """Raw 0..16 digit pixels given to `run` used to be fed unscaled (a silent wrong answer);
    now the model's recorded scaling applies, and inputs scaled twice get a warning."""
    from edge_lsh.data import load

    model, elsh = tmp_path / "m.npz", tmp_path / "m.elsh"
    args = ["train", "--data", "digits", "--hidden", "32", "--tables", "8", "--epochs", "2"]
    assert main([*args, "--out", str(model), "--quiet"]) == 0
    assert main(["export", str(model), "--out", str(elsh)]) == 0
    capsys.readouterr()
    d = load("digits")
    raw = d.x_test * np.float32(16.0)  # the numbers of the bundled files
    assert np.array_equal(raw / np.float32(16.0), d.x_test)
    np.save(tmp_path / "raw.npy", raw)
    np.save(tmp_path / "scaled.npy", d.x_test)
    assert main(["run", str(elsh), "--input", str(tmp_path / "raw.npy"), "--json"]) == 0
    captured = capsys.readouterr()
    on_raw = _pure_json(captured.out)["predictions"]
    assert "warning" not in captured.err
    assert main(["run", str(elsh), "--input", str(tmp_path / "scaled.npy"), "--json"]) == 0
    captured = capsys.readouterr()
    assert "were they scaled already?" in captured.err and "--no-preprocess" in captured.err
    run = ["run", str(elsh), "--input", str(tmp_path / "scaled.npy"), "--json"]
    assert main([*run, "--no-preprocess"]) == 0
    captured = capsys.readouterr()
    assert _pure_json(captured.out)["predictions"] == on_raw and "warning" not in captured.err
    from edge_lsh.fixed import FixedPointModel

    fm = FixedPointModel.load(elsh)
    assert fm.predict(fm.preprocess(raw)).tolist() == on_raw
    net = Network.load(model)
    assert np.array_equal(net.preprocess(raw), d.x_test)


# ----------------------------------------------------------------------------- 6. checkpoints


def test_resume_after_a_stop_is_the_run_that_never_stopped(trained, tmp_path, capsys):
    _, data, *_ = trained
    base = ["train", "--data", f"npz:{data}", "--hidden", "16", "--tables", "4", "--epochs"]
    whole, resumed = tmp_path / "whole.npz", tmp_path / "resumed.npz"
    assert main([*base, "3", "--checkpoint", str(tmp_path / "a"), "--out", str(whole)]) == 0
    assert (tmp_path / "a" / "checkpoint.npz").is_file()
    # a run stopped after its first epoch (as Ctrl-C would leave it), then resumed
    assert main([*base, "1", "--checkpoint", str(tmp_path / "b"), "--quiet"]) == 0
    capsys.readouterr()
    rc = main([*base, "3", "--checkpoint", str(tmp_path / "b"), "--resume", "--out", str(resumed)])
    assert rc == 0
    assert "2 epochs to go" in capsys.readouterr().err
    a, b = Network.load(whole), Network.load(resumed)
    assert a.epochs_trained == b.epochs_trained == 3
    for i in range(a.n_layers):
        for name, arr in a.layer_arrays(i).items():
            assert np.array_equal(arr, b.layer_arrays(i)[name]), (i, name)
    assert main([*base, "3", "--checkpoint", str(tmp_path / "b"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main([*base, "3", "--resume"]) == 2
    assert "--resume needs --checkpoint" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 12. model size


def test_saved_models_leave_out_the_optimizer_state(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((200, 784), dtype=np.float32), rng.integers(0, 10, 200)
    net = Network(784, [1000, 1000], 10, defaults.LSH, seed=0)
    net.fit(x, y, epochs=1)
    compact, full = tmp_path / "m.npz", tmp_path / "full.npz"
    net.save(compact)
    net.save(full, optimizer_state=True)
    weights = 4 * (784 * 1000 + 1000 * 1000 + 1000 * 10)
    assert full.stat().st_size > 2.5 * weights  # weights, Adagrad state and momentum
    assert compact.stat().st_size < 1.1 * weights  # the weights (and tables), not the rest
    back = Network.load(compact)
    assert np.array_equal(back.predict(x), net.predict(x))
    for i in range(net.n_layers):
        assert np.array_equal(back.layer_arrays(i)["w"], net.layer_arrays(i)["w"])
    back.fit(x, y, epochs=1)  # fine-tuning from a compact file starts a fresh optimizer
