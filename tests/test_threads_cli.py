"""Training and inference on several threads (issue 14): Network.fit(threads=, thread_mode=),
predict/evaluate(threads=), FixedPointModel's threads=, and --threads / --thread-mode of
train, eval and run. The C side (bit-identity, TSan) is native/tests/test_threads.c."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_lsh.cli import main
from edge_lsh.cli.argtypes import MAX_THREADS
from edge_lsh.fixed import FixedPointModel
from edge_lsh.native import lib
from edge_lsh.network import LSHConfig, Network, TrainConfig


def blobs(n: int = 600, n_in: int = 32, classes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 1.0, (classes, n_in)) * 1.5
    y = rng.integers(0, classes, n)
    x = (centers[y] + rng.normal(0.0, 0.6, (n, n_in))).astype(np.float32)
    return np.abs(x), y.astype(np.int64)


def net_for(x: np.ndarray, seed: int = 3) -> Network:
    return Network(
        x.shape[1], [96], 4, LSHConfig(active_fraction=0.2, bits=3, tables=12), seed=seed
    )


def test_max_threads_is_the_kernels():
    assert MAX_THREADS == lib.ELSH_MAX_THREADS


def test_one_thread_async_is_the_one_thread_trainer():
    x, y = blobs()
    a, b = net_for(x), net_for(x)
    a.fit(x, y, epochs=2)
    b.fit(x, y, epochs=2, threads=1, thread_mode="async")
    assert a._arena.tobytes() == b._arena.tobytes()


def test_deterministic_mode_same_bytes_every_run_and_thread_count():
    x, y = blobs()
    runs = []
    for threads in (2, 2, 2, 3, 1):
        net = net_for(x)
        reports = net.fit(x, y, epochs=2, threads=threads, thread_mode="deterministic")
        runs.append((net._arena.tobytes(), [r.loss for r in reports]))
    assert all(r == runs[0] for r in runs[1:])
    # a different mini-batch size is a different optimizer
    other = net_for(x)
    other.fit(x, y, epochs=2, threads=2, thread_mode="deterministic", thread_batch=8)
    assert other._arena.tobytes() != runs[0][0]


@pytest.mark.parametrize("mode", ["async", "deterministic"])
def test_two_threads_train_as_well(mode):
    x, y = blobs()
    one = net_for(x)
    one.fit(x, y, epochs=3)
    two = net_for(x)
    reports = two.fit(x, y, epochs=3, threads=2, thread_mode=mode)
    assert [r.samples for r in reports] == [len(y)] * 3
    assert all(r.table_updates > 0 for r in reports)
    acc_one, acc_two = (float((n.predict(x) == y).mean()) for n in (one, two))
    assert acc_two > 0.9 and acc_two > acc_one - 0.05, (acc_one, acc_two)


def test_predict_on_threads_is_identical():
    x, y = blobs()
    net = net_for(x)
    net.fit(x, y, epochs=1)
    pred, probs = net.predict(x), net.predict_proba(x)
    net.reset_counters()
    one = net.evaluate(x, y)
    for threads in (2, 3, 7):
        assert np.array_equal(net.predict(x, threads=threads), pred)
        assert net.predict_proba(x, threads=threads).tobytes() == probs.tobytes()
        ev = net.evaluate(x, y, threads=threads)
        for key in ("accuracy", "multiplications_per_sample", "additions_per_sample"):
            assert ev[key] == one[key], key


def test_bad_thread_settings_are_value_errors():
    x, y = blobs(n=50)
    net = net_for(x)
    with pytest.raises(ValueError, match="threads"):
        net.fit(x, y, epochs=1, threads=0)
    with pytest.raises(ValueError, match="threads"):
        net.fit(x, y, epochs=1, threads=MAX_THREADS + 1)
    with pytest.raises(ValueError, match="thread_mode"):
        net.fit(x, y, epochs=1, threads=2, thread_mode="hogwild")
    with pytest.raises(ValueError, match="thread_batch"):
        net.fit(x, y, epochs=1, threads=2, thread_mode="deterministic", thread_batch=0)
    with pytest.raises(ValueError, match="threads"):
        net.predict(x, threads=0)


def test_nan_input_stops_threaded_training():
    x, y = blobs(n=100)
    net = net_for(x)
    tc = TrainConfig()
    x = x.copy()
    x[17, 3] = np.nan
    with pytest.raises(ValueError):  # refused before the kernel sees it
        net.fit(x, y, epochs=1, train=tc, threads=2)


# ---------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("threads_cli")
    x, y = blobs(n=400)
    path = tmp / "d.npz"
    np.savez(path, x=x, y=y)
    return tmp, path


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_deterministic_threads_same_file_twice(data_file, capsys):
    tmp, data = data_file
    base = ["train", "--data", f"npz:{data}", "--hidden", "64", "--active", "0.25"]
    base += ["--tables", "8", "--epochs", "2", "--quiet", "--json"]
    outs = []
    for i, threads in enumerate(("2", "2", "3")):
        model = tmp / f"det{i}.npz"
        args = [*base, "--threads", threads, "--thread-mode", "deterministic"]
        assert main([*args, "--out", str(model)]) == 0
        outs.append((_last_json(capsys), model.read_bytes()))
    assert outs[0][1] == outs[1][1] == outs[2][1]
    assert outs[0][0]["accuracy"] > 0.9
    # eval on 2 threads: the same accuracy and counts as on one
    model = tmp / "det0.npz"
    assert main(["eval", str(model), "--data", f"npz:{data}", "--json"]) == 0
    one = _last_json(capsys)
    assert main(["eval", str(model), "--data", f"npz:{data}", "--json", "--threads", "2"]) == 0
    two = _last_json(capsys)
    for key in ("accuracy", "multiplications_per_sample", "additions_per_sample"):
        assert one[key] == two[key]


def test_train_async_threads_and_from(data_file, capsys):
    tmp, data = data_file
    model = tmp / "async.npz"
    args = ["train", "--data", f"npz:{data}", "--hidden", "64", "--active", "0.25"]
    args += ["--tables", "8", "--epochs", "2"]
    assert main([*args, "--threads", "2", "--quiet", "--json", "--out", str(model)]) == 0
    first = _last_json(capsys)
    assert first["accuracy"] > 0.85 and first["epochs"] == 2
    more = ["train", "--data", f"npz:{data}", "--from", str(model), "--epochs", "1", "--quiet"]
    assert main([*more, "--threads", "2", "--json"]) == 0
    assert _last_json(capsys)["accuracy"] > 0.85  # (chance: 0.25)


@pytest.mark.parametrize(
    "flags",
    [["--threads", "0"], ["--threads", "65"], ["--threads", "x"], ["--thread-mode", "fast"]],
)
def test_bad_thread_flags_exit_2(data_file, capsys, flags):
    _, data = data_file
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", f"npz:{data}", "--epochs", "1", *flags])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--thread" in err and "Traceback" not in err


def test_run_and_eval_elsh_on_threads_identical(data_file, capsys):
    tmp, data = data_file
    model, elsh = tmp / "m.npz", tmp / "m.elsh"
    args = ["train", "--data", f"npz:{data}", "--hidden", "64", "--tables", "8", "--epochs", "2"]
    assert main([*args, "--quiet", "--out", str(model)]) == 0
    assert main(["export", str(model), "--calib", f"npz:{data}", "--out", str(elsh)]) == 0
    x, _ = blobs(n=400)
    np.save(tmp / "x.npy", x)
    capsys.readouterr()
    outputs = []
    for threads in ("1", "3"):
        run = ["run", str(elsh), "--input", str(tmp / "x.npy"), "--logits", "--probs", "--json"]
        assert main([*run, "--threads", threads]) == 0
        outputs.append(_last_json(capsys))
    assert outputs[0] == outputs[1]
    assert len(outputs[0]["predictions"]) == 400
    evals = []
    for threads in ("1", "2"):
        assert (
            main(["eval", str(elsh), "--data", f"npz:{data}", "--json", "--threads", threads]) == 0
        )
        evals.append(_last_json(capsys))
    for key in ("accuracy", "multiplications_per_sample", "additions_per_sample"):
        assert evals[0][key] == evals[1][key], key
    # the API: copies on other threads follow set_active
    qm = FixedPointModel.load(elsh)
    qm.set_active(0.5)
    pred, logits = qm.predict_logits(x)
    pred3, logits3 = qm.predict_logits(x, threads=3)
    assert np.array_equal(pred, pred3) and np.array_equal(logits, logits3)
    qm.set_active(None, dense=True)
    assert np.array_equal(qm.predict(x), qm.predict(x, threads=3))


def test_bench_threads_tiny_run(tmp_path):
    """tools/bench/bench_threads.py end to end on a tiny network: every section in the JSON,
    the deterministic runs identical (and equal to one thread)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "threads.json"
    args = ["--data", "digits", "--hidden", "32", "--epochs", "1", "--seeds", "0", "--rounds"]
    res = subprocess.run(
        [sys.executable, str(root / "tools" / "bench" / "bench_threads.py"), *args, "1"]
        + ["--repeats", "2", "--json", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    result = json.loads(out.read_text())
    tp = result["throughput"]
    assert set(tp["median_samples_per_second"]) == {
        "1 thread",
        "async",
        "deterministic",
        "1 thread, no table maintenance",
        "async, 1 thread",
        "independent 1-thread runs",
    }
    assert all(v > 0 for v in tp["median_samples_per_second"].values())
    assert set(tp["speedup"]) == {
        "async",
        "deterministic",
        "async, 1 thread",
        "independent 1-thread runs",
    }
    # the threaded kinds as a share of the machine's ceiling (2 independent one-thread runs)
    ceiling = tp["median_samples_per_second"]["independent 1-thread runs"]
    assert tp["share_of_ceiling"] == {
        k: tp["median_samples_per_second"][k] / ceiling for k in ("async", "deterministic")
    }
    assert all(v > 0 for v in tp["median_cpu_us_per_sample"].values())
    assert all(0.0 <= a <= 1.0 for v in result["accuracy"]["test_accuracy"].values() for a in v)
    det = result["determinism"]
    assert det["identical"] and det["identical_to_one_thread"] and len(det["sha256"]) == 2
    # the asynchronous code path on one thread is the one-thread trainer bit for bit
    assert det["async_one_thread_identical_to_one_thread"]
    assert "samples/s (median)" in res.stdout
