"""Batch-1 inference latency: an LSH-sparse network against the dense path of the same C
kernel and against numpy doing the same dense arithmetic with the same weights.

Both C networks are first trained briefly so that their weights and hash tables are
realistic. Then, over the same test inputs, each repeat runs every method once, in round
robin (the starting method rotates from repeat to repeat), so that machine noise hits all of
them alike:

  C loop      lib.elsh_predict over all samples in one call (one sample after another)
  per call    one ``net.predict(x[i:i+1])`` per sample, timed with perf_counter_ns
  numpy       one ``x[i:i+1] @ W.T + b, ReLU, ..., argmax`` per sample (float32), timed alike

The environment is left as it is (numpy's BLAS keeps its own thread count, reported in the
output). The Markdown table goes to stdout, progress to stderr.

    python tools/bench/bench_latency.py
    python tools/bench/bench_latency.py --samples 200 --repeats 3 --limit 1000
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

import common
import numpy as np
from common import (
    CPredictTimer,
    add_common_args,
    data_info,
    format_percent,
    layers_text,
    load_data,
    machine_info,
    machine_line,
    markdown_table,
    median,
    non_negative_float,
    non_negative_int,
    percent,
    percentile,
    positive_int,
    progress,
    record,
    train,
    write_json_atomic,
)

from edge_lsh import defaults
from edge_lsh.network import Network

PROG = "bench_latency.py"
BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(
        PROG,
        "Batch-1 inference latency of an LSH-sparse network vs the dense C path vs numpy\n"
        "(same weights as the dense C network): the C loop (lib.elsh_predict), one\n"
        "net.predict() call per sample from Python, and numpy per sample, measured in\n"
        "round robin over the same inputs. Markdown table on stdout, progress on stderr.",
    )
    add_common_args(p, data="mnist5k", hidden="1000,1000", seed=0, limit=True)
    p.add_argument(
        "--active",
        type=percent,
        default=5.0,
        metavar="PCT",
        help="active fraction of the LSH network's hidden layers in percent",
    )
    p.add_argument(
        "--train-epochs",
        type=non_negative_int,
        default=1,
        metavar="N",
        help="epochs of training before timing, 0 = untrained",
    )
    p.add_argument(
        "--samples",
        type=positive_int,
        default=500,
        metavar="N",
        help="test inputs to time, the first N of the test split",
    )
    p.add_argument(
        "--repeats",
        type=positive_int,
        default=7,
        metavar="N",
        help="rounds of every method over all samples",
    )
    p.add_argument(
        "--settle",
        type=non_negative_float,
        default=0.3,
        metavar="SECONDS",
        help="untimed pause before each timed method, so that BLAS threads spinning after "
        "numpy do not slow the next method",
    )
    return p


# ----------------------------------------------------------------------------- numpy dense


class NumpyDense:
    """The dense forward pass in numpy (float32), on copies of a network's weights."""

    def __init__(self, net: Network) -> None:
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []
        for i in range(net.n_layers):
            arrays = net.layer_arrays(i)
            w = np.array(arrays["w"], dtype=np.float32, copy=True)  # (n_out, n_in)
            b = np.array(arrays["b"], dtype=np.float32, copy=True)
            self.layers.append((w.T, b))  # a transposed view: x @ W.T without a copy per call

    def predict_one(self, x: np.ndarray) -> int:
        """Class of one input row x of shape (1, n_in)."""
        h = x
        last = len(self.layers) - 1
        for i, (wt, b) in enumerate(self.layers):
            h = h @ wt + b
            if i < last:
                h = np.maximum(h, 0.0)
        return int(np.argmax(h[0]))


# ----------------------------------------------------------------------------- measuring


Method = Callable[[], None]


class Measurements:
    """Timings of every method, collected over repeats."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.c_loop_seconds: dict[str, list[float]] = {"lsh": [], "dense": []}
        self.per_call_ns: dict[str, list[int]] = {"lsh": [], "dense": [], "numpy": []}
        self.per_call_pred: dict[str, np.ndarray] = {
            k: np.full(n, -1, dtype=np.int32) for k in self.per_call_ns
        }


def time_per_call(
    fn: Callable[[np.ndarray], Any], xs: Sequence[np.ndarray], out_ns: list[int]
) -> list[int]:
    """Call fn on each row slice, timing each call; returns the predictions."""
    preds = []
    clock = time.perf_counter_ns
    for x in xs:
        t0 = clock()
        p = fn(x)
        t1 = clock()
        out_ns.append(t1 - t0)
        preds.append(int(p[0]) if isinstance(p, np.ndarray) else int(p))
    return preds


def measure(
    lsh_net: Network,
    dense_net: Network,
    numpy_net: NumpyDense,
    x: np.ndarray,
    repeats: int,
    settle: float,
) -> Measurements:
    """Time every method `repeats` times in round robin. Before each timed method the script
    sleeps `settle` seconds (untimed) so that BLAS worker threads still spinning after a
    numpy call, or other leftovers of the previous method, do not slow the next one."""
    n = int(x.shape[0])
    m = Measurements(n)
    rows = [x[i : i + 1] for i in range(n)]  # (1, n_in) views, made once
    timers = {"lsh": CPredictTimer(lsh_net, x), "dense": CPredictTimer(dense_net, x)}
    per_call_fns: dict[str, Callable[[np.ndarray], Any]] = {
        "lsh": lsh_net.predict,
        "dense": dense_net.predict,
        "numpy": numpy_net.predict_one,
    }

    def c_loop(name: str) -> Method:
        def go() -> None:
            m.c_loop_seconds[name].append(timers[name].run())

        return go

    def per_call(name: str) -> Method:
        def go() -> None:
            preds = time_per_call(per_call_fns[name], rows, m.per_call_ns[name])
            m.per_call_pred[name][:] = preds

        return go

    methods: list[tuple[str, Method]] = [
        ("C loop lsh", c_loop("lsh")),
        ("C loop dense", c_loop("dense")),
        ("per call lsh", per_call("lsh")),
        ("per call dense", per_call("dense")),
        ("numpy", per_call("numpy")),
    ]
    for _, go in methods:  # warm-up: caches, lazy BLAS initialisation, first-call costs
        go()
    m.c_loop_seconds = {k: [] for k in m.c_loop_seconds}
    m.per_call_ns = {k: [] for k in m.per_call_ns}

    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for rep in range(repeats):
            start = rep % len(methods)
            for _, go in [*methods[start:], *methods[:start]]:
                if settle > 0:
                    time.sleep(settle)
                go()
            progress(f"repeat {rep + 1}/{repeats} done")
    finally:
        if gc_was_enabled:
            gc.enable()
    for name, timer in timers.items():
        if not np.array_equal(timer.pred, m.per_call_pred[name]):
            raise RuntimeError(f"{name}: C-loop predictions differ from per-call predict()")
    return m


# ----------------------------------------------------------------------------- reporting


def blas_info() -> dict[str, Any]:
    """Which BLAS numpy uses: threadpoolctl if installed, else numpy.show_config."""
    info: dict[str, Any] = {"env": {k: os.environ[k] for k in BLAS_ENV if k in os.environ}}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        # other packages (scipy via scikit-learn) may load their own BLAS: keep numpy's
        own = [p for p in pools if "numpy" in str(p.get("filepath", ""))]
        pools = own or pools
        if pools:
            keep = [
                "internal_api",
                "version",
                "num_threads",
                "threading_layer",
                "architecture",
                "filepath",
            ]
            info["threadpoolctl"] = [{k: p.get(k) for k in keep} for p in pools]
    try:
        config = np.show_config(mode="dicts")  # numpy >= 1.25
        blas = config["Build Dependencies"]["blas"]
        info["numpy_build"] = {k: blas.get(k) for k in ("name", "version") if k in blas}
    except (TypeError, KeyError, AttributeError):
        pass
    return info


def blas_line(info: dict[str, Any]) -> str:
    parts = []
    for pool in info.get("threadpoolctl", []):
        parts.append(
            f"{pool['internal_api']} {pool['version']} ({pool['num_threads']} thread(s), "
            f"{pool['threading_layer']}, {pool['architecture']})"
        )
    if not parts and "numpy_build" in info:
        b = info["numpy_build"]
        parts.append(f"{b.get('name')} {b.get('version')} (from numpy.show_config)")
    env = ", ".join(f"{k}={v}" for k, v in info["env"].items()) or "no BLAS thread variables set"
    return f"{'; '.join(parts) or 'unknown'}; {env}"


def summarise(
    m: Measurements,
    y: np.ndarray,
    lsh_net: Network,
    dense_net: Network,
    lsh_eval: dict[str, float],
    dense_eval: dict[str, float],
) -> dict[str, Any]:
    n = m.n
    us_loop = {k: 1e6 * median(v) / n for k, v in m.c_loop_seconds.items()}
    per_call = {
        k: {
            "median_us": median(v) / 1e3,
            "p90_us": percentile(v, 90) / 1e3,
            "mean_us": float(np.mean(v)) / 1e3,
        }
        for k, v in m.per_call_ns.items()
    }
    preds = m.per_call_pred
    agreement = float((preds["numpy"] == preds["dense"]).mean())

    def method(name: str, net: Network, evaluation: dict[str, float]) -> dict[str, Any]:
        """One method's figures; numpy has no C loop (None) and runs the dense weights."""
        return {
            "c_loop_us_per_sample": us_loop.get(name),
            "per_call_median_us": per_call[name]["median_us"],
            "per_call_p90_us": per_call[name]["p90_us"],
            "per_call_mean_us": per_call[name]["mean_us"],
            "accuracy": float((preds[name] == y).mean()),
            "multiplications_per_sample": evaluation["multiplications_per_sample"],
            "active_per_layer": net.active_counts(),
        }

    return {
        "samples": n,
        "methods": {
            "lsh_c": method("lsh", lsh_net, lsh_eval),
            "dense_c": method("dense", dense_net, dense_eval),
            "numpy_dense": method("numpy", dense_net, dense_eval),
        },
        "numpy_vs_dense_c_agreement": agreement,
        "ratios": {
            "dense_c_over_lsh_c_loop": us_loop["dense"] / us_loop["lsh"],
            "dense_c_over_lsh_c_per_call": per_call["dense"]["median_us"]
            / per_call["lsh"]["median_us"],
            "numpy_over_lsh_c_loop": per_call["numpy"]["median_us"] / us_loop["lsh"],
            "numpy_over_lsh_c_per_call": per_call["numpy"]["median_us"]
            / per_call["lsh"]["median_us"],
        },
        "c_loop_pass_seconds": m.c_loop_seconds,
    }


def render(summary: dict[str, Any], active: float) -> str:
    labels = {
        "lsh_c": f"LSH {format_percent(active)} % (C)",
        "dense_c": "dense (C)",
        "numpy_dense": "dense (numpy)",
    }
    headers = [
        "method",
        "C loop µs/sample",
        "per call median µs",
        "per call p90 µs",
        "per call mean µs",
        "mults/sample",
        "acc % (timed samples)",
    ]
    rows = []
    for key, label in labels.items():
        s = summary["methods"][key]
        loop = s["c_loop_us_per_sample"]
        rows.append(
            [
                label,
                "-" if loop is None else f"{loop:.1f}",
                f"{s['per_call_median_us']:.1f}",
                f"{s['per_call_p90_us']:.1f}",
                f"{s['per_call_mean_us']:.1f}",
                f"{s['multiplications_per_sample']:,.0f}",
                f"{s['accuracy'] * 100:.2f}",
            ]
        )
    return markdown_table(headers, rows)


def run(args: argparse.Namespace) -> int:
    data = load_data(args)
    n = min(args.samples, int(data.x_test.shape[0]))
    if n < args.samples:
        progress(f"{PROG}: the test split has only {n} samples; timing {n}")
    x = np.ascontiguousarray(data.x_test[:n], dtype=np.float32)
    y = data.y_test[:n]

    lsh_cfg = replace(defaults.LSH, active_fraction=args.active / 100.0)
    lsh_net = Network(data.n_features, args.hidden, data.n_classes, lsh_cfg, seed=args.seed)
    dense_net = Network(data.n_features, args.hidden, data.n_classes, None, seed=args.seed)
    layers = layers_text(dense_net.layer_sizes)
    info_start = machine_info()
    progress(
        f"{PROG}: {layers} on {data.name}, training {args.train_epochs} epoch(s) on "
        f"{data.x_train.shape[0]} samples, then timing {n} samples x {args.repeats} repeats"
    )
    train(lsh_net, data, args.train_epochs, f"LSH {format_percent(args.active)} %")
    train(dense_net, data, args.train_epochs, "dense")
    numpy_net = NumpyDense(dense_net)
    # op counts (hashing included) on the timed samples; also a first, untimed pass
    lsh_eval = lsh_net.evaluate(x, y)
    dense_eval = dense_net.evaluate(x, y)

    m = measure(lsh_net, dense_net, numpy_net, x, args.repeats, args.settle)
    summary = summarise(m, y, lsh_net, dense_net, lsh_eval, dense_eval)
    blas = blas_info()  # after numpy has run a matmul: the BLAS library is loaded
    info = machine_info(started=info_start)

    r = summary["ratios"]
    print(f"## Batch-1 inference latency: {layers} on {data.name}\n")
    print(
        f"{n} test samples x {args.repeats} repeats (methods in round robin), networks trained "
        f"{args.train_epochs} epoch(s), seed {args.seed}; LSH {lsh_cfg.family} K={lsh_cfg.bits} "
        f"L={lsh_cfg.tables}, active per layer {lsh_net.active_counts()}. C loop = median over "
        f"repeats of (lib.elsh_predict over all samples)/n; per call = median and p90 over "
        f"every timed call (samples x repeats), mean likewise; an untimed {args.settle:g} s pause "
        f"precedes each timed method.\n"
    )
    print(render(summary, args.active))
    print()
    print(f"- dense C / LSH C: {r['dense_c_over_lsh_c_loop']:.2f}x (C loop), ", end="")
    print(f"{r['dense_c_over_lsh_c_per_call']:.2f}x (per call)")
    print(
        f"- numpy / LSH C: {r['numpy_over_lsh_c_loop']:.2f}x (numpy per sample vs C loop), ", end=""
    )
    print(f"{r['numpy_over_lsh_c_per_call']:.2f}x (numpy per sample vs LSH per call)")
    agreement = summary["numpy_vs_dense_c_agreement"]
    print(
        f"- numpy dense predictions equal dense C predictions on {agreement * 100:.2f} % of samples"
    )
    print(f"- numpy BLAS: {blas_line(blas)}")
    print(f"- machine: {machine_line(info)}")

    if args.json:
        write_json_atomic(
            args.json,
            record(
                PROG,
                {
                    "blas": blas,
                    "data": data_info(args.data, data, args.limit),
                    "layers": dense_net.layer_sizes,
                    "lsh": asdict(lsh_cfg),
                    "train_config": asdict(defaults.TRAIN),
                    "train_epochs": args.train_epochs,
                    "repeats": args.repeats,
                    "seed": args.seed,
                    **summary,
                },
                machine=info,
            ),
        )
    return 0


if __name__ == "__main__":
    sys.exit(common.main(PROG, build_parser(), run))
