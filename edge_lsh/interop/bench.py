"""``edge-lsh bench``: an .elsh model against its dense equivalents, LiteRT included, in one
process and one run.

Methods (rows):
  fixed_lsh     the fixed-point LSH kernel on the .elsh file (its own k), attached with the
                faster selection's arena (elsh_model_attach_fast), as edge-lsh-run does
  dense_int8    the same kernel computing every neuron (set_active(dense=True))
  float_lsh     the float LSH network the .elsh was exported from (.npz), in the float kernel
  numpy_dense   numpy float32 matmuls on the .elsh weights dequantized (BLAS)
  litert_int8   LiteRT on the int8 .tflite of the dense equivalent (written from the .elsh
                integers, or given with --tflite)
  litert_float  LiteRT on the float32 .tflite of the dense equivalent (dequantized weights)

Every round runs every method once, the starting method rotating from round to round (round
robin), so that machine noise hits them alike. Per method and round:
  C loop     the C kernel's own loop over the timed rows (elsh_qnet_predict / elsh_predict,
             one row after another, batch-1 semantics), in chunks; per-sample time = chunk
             time / chunk rows; median and p90 over chunks and rounds (our kernels only)
  per call   one Python call per row (predict(x[i:i+1]); numpy's forward; LiteRT's set_tensor,
             invoke, get_tensor), each timed; median and p90 over every call
  batch 64   one call on 64 rows; throughput = 64 / median time
Accuracy is over the whole test split; multiplications per sample from the kernels' op
counters (hashing included) or the dense count; model bytes of the file each runs from.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import read_elsh
from edge_lsh.interop.convert import calibrate_output, mlp_from_qmodel
from edge_lsh.interop.litert import INSTALL_HINT, LiteRTModel, Runtime, find_runtime
from edge_lsh.interop.mlp import InteropError
from edge_lsh.native import check, ffi, lib, ptr
from edge_lsh.network import Network

__all__ = ["ROWS", "Method", "BenchResult", "bench", "markdown", "plot"]

ROWS = ("fixed_lsh", "dense_int8", "float_lsh", "numpy_dense", "litert_int8", "litert_float")
LABELS = {
    "fixed_lsh": "edge-lsh fixed-point LSH",
    "dense_int8": "edge-lsh dense int8 (every neuron)",
    "float_lsh": "edge-lsh float LSH",
    "numpy_dense": "numpy dense float32",
    "litert_int8": "LiteRT int8 (dense)",
    "litert_float": "LiteRT float32 (dense)",
}
BATCH = 64
CHUNK = 5  # rows per timed C-loop chunk: short, so a preemption (a shared machine) spoils few


@dataclass
class Method:
    """One row: how to run it, and what it measured."""

    key: str
    label: str
    per_call: Callable[[int], int]  # row index -> class (one Python call)
    batch: Callable[[], Any]  # one call on BATCH rows
    c_loop: Callable[[int, int], None] | None = None  # rows [a, b) in the C kernel's loop
    accuracy: float = 0.0
    multiplications: float = 0.0
    model_bytes: int = 0
    source: str = ""
    per_call_ns: list[int] = field(default_factory=list)
    c_loop_ns_per_row: list[float] = field(default_factory=list)
    batch_ns: list[int] = field(default_factory=list)
    predictions: np.ndarray | None = None

    def summary(self) -> dict[str, Any]:
        def pct(v: list[float] | list[int], q: float) -> float | None:
            return float(np.percentile(np.asarray(v, np.float64), q)) / 1e3 if v else None

        med_batch = float(np.median(self.batch_ns)) if self.batch_ns else None
        return {
            "label": self.label,
            "source": self.source,
            "c_loop_median_us": pct(self.c_loop_ns_per_row, 50),
            "c_loop_p90_us": pct(self.c_loop_ns_per_row, 90),
            "per_call_median_us": pct(self.per_call_ns, 50),
            "per_call_p90_us": pct(self.per_call_ns, 90),
            "batch64_median_us": med_batch / 1e3 if med_batch else None,
            "batch64_samples_per_second": BATCH / (med_batch * 1e-9) if med_batch else None,
            "accuracy": self.accuracy,
            "multiplications_per_sample": self.multiplications,
            "model_bytes": self.model_bytes,
        }


@dataclass
class BenchResult:
    rows: dict[str, dict[str, Any]]
    notes: list[str]
    setup: dict[str, Any]


def _row_predictor(
    predict: Callable[[np.ndarray], np.ndarray], rows: list[np.ndarray]
) -> Callable[[int], int]:
    def one(i: int) -> int:
        return int(predict(rows[i])[0])

    return one


def _fixed_methods(
    fixed_path: str, x: np.ndarray, xb: np.ndarray, y: np.ndarray, xa: np.ndarray
) -> list[Method]:
    out = []
    for key, dense in (("fixed_lsh", False), ("dense_int8", True)):
        # the LSH row with the faster selection's arena (elsh_model_attach_fast), as edge-lsh-run
        m = FixedPointModel.load(fixed_path, fast=not dense)
        m.set_active(None, dense=dense)
        ev = m.evaluate(xa, y)
        pred = np.empty(x.shape[0], np.int32)
        logits = np.empty((x.shape[0], m.n_classes), np.int32)

        def c_loop(
            a: int, b: int, m: FixedPointModel = m, pred: Any = pred, logits: Any = logits
        ) -> None:
            check(
                lib.elsh_qnet_predict(
                    m._net,
                    ptr(x[a:b], "float *"),
                    b - a,
                    ptr(pred[a:b], "int32_t *"),
                    ptr(logits[a:b], "int32_t *"),
                ),
                "predict",
            )

        rows = [x[i : i + 1] for i in range(x.shape[0])]
        out.append(
            Method(
                key,
                LABELS[key],
                per_call=_row_predictor(m.predict, rows),
                batch=functools.partial(m.predict, xb),
                c_loop=c_loop,
                accuracy=float(ev["accuracy"]),
                multiplications=float(ev["multiplications_per_sample"]),
                model_bytes=m.model_bytes,
                source=os.path.basename(fixed_path),
            )
        )
    return out


def _float_method(
    net: Network, path: str, x: np.ndarray, xb: np.ndarray, xa: np.ndarray, y: np.ndarray
) -> Method:
    ev = net.evaluate(xa, y)
    pred = np.empty(x.shape[0], np.int32)

    def c_loop(a: int, b: int) -> None:
        check(
            lib.elsh_predict(
                net._net, ptr(x[a:b], "float *"), b - a, ptr(pred[a:b], "int32_t *"), ffi.NULL
            ),
            "predict",
        )

    rows = [x[i : i + 1] for i in range(x.shape[0])]
    return Method(
        "float_lsh",
        LABELS["float_lsh"],
        per_call=lambda i: int(net.predict(rows[i])[0]),
        batch=lambda: net.predict(xb),
        c_loop=c_loop,
        accuracy=float(ev["accuracy"]),
        multiplications=float(ev["multiplications_per_sample"]),
        model_bytes=os.path.getsize(path),
        source=os.path.basename(path),
    )


def _numpy_method(mlp: Any, x: np.ndarray, xb: np.ndarray, xa: np.ndarray, y: np.ndarray) -> Method:
    layers = [(np.ascontiguousarray(la.w.T), la.b, la.relu) for la in mlp.layers]

    def forward(h: np.ndarray) -> np.ndarray:
        for wt, b, relu in layers:
            h = h @ wt + b
            if relu:
                h = np.maximum(h, np.float32(0))
        return h

    rows = [x[i : i + 1] for i in range(x.shape[0])]
    acc = float((np.argmax(forward(xa), axis=1) == y).mean())
    dense = sum(la.n_in * la.n_out for la in mlp.layers)
    return Method(
        "numpy_dense",
        LABELS["numpy_dense"],
        per_call=lambda i: int(np.argmax(forward(rows[i])[0])),
        batch=lambda: forward(xb),
        accuracy=acc,
        multiplications=float(dense),
        model_bytes=sum(wt.nbytes + b.nbytes for wt, b, _ in layers),
        source="the .elsh weights dequantized",
    )


def _litert_method(
    key: str,
    runtime: Runtime,
    data: bytes,
    source: str,
    x: np.ndarray,
    xb: np.ndarray,
    xa: np.ndarray,
    y: np.ndarray,
    dense_mults: int,
) -> Method:
    one = LiteRTModel(runtime, data)
    many = LiteRTModel(runtime, data)
    many.resize(BATCH)
    acc = float((np.argmax(one.predict_logits(xa), axis=1) == y).mean())
    one.resize(1)
    rows = [one.prepare(x[i : i + 1]) for i in range(x.shape[0])]
    batch_in = many.prepare(xb)
    return Method(
        key,
        LABELS[key] if key in LABELS else key,
        per_call=lambda i: one.invoke_one(rows[i]),
        batch=lambda: many.invoke_batch(batch_in),
        accuracy=acc,
        multiplications=float(dense_mults),
        model_bytes=len(data),
        source=f"{source}, {runtime.label}",
    )


def _tflite_precision(data: bytes) -> str:
    """'int8' when a FULLY_CONNECTED layer of the file has int8 weights, else 'float'."""
    from edge_lsh.interop.tflite_io import read_tflite

    mlp = read_tflite(data)
    return "int8" if mlp.int8 is not None else "float"


def find_float_model(
    fixed: FixedPointModel, path: str, given: str | None
) -> tuple[str | None, str]:
    """The float model (.npz) for the float LSH row: --float, else the INFO source_model next
    to the .elsh file. Returns (path or None, how it was found or why not)."""
    if given:
        return given, "--float"
    name = fixed.info.get("source_model")
    if not isinstance(name, str) or not name:
        return None, "the .elsh INFO names no source_model: pass --float MODEL.npz"
    candidate = Path(path).parent / Path(name).name
    if candidate.is_file():
        return str(candidate), f"the .elsh INFO's source_model ({candidate})"
    return (
        None,
        f"the source model {name} named in the .elsh INFO is not beside it: pass --float MODEL.npz",
    )


def bench(
    elsh_path: str,
    x_test: np.ndarray,
    y_test: np.ndarray,
    x_calib: np.ndarray,
    *,
    float_model: str | None = None,
    tflite: list[str] | None = None,
    samples: int = 500,
    repeats: int = 5,
    settle: float = 0.05,
    progress: Callable[[str], None] = lambda m: None,
) -> BenchResult:
    """Measure every method (see the module docstring) on the first `samples` test rows."""
    fixed = FixedPointModel.load(elsh_path, fast=True)
    xa = np.ascontiguousarray(x_test, dtype=np.float32)
    y = np.asarray(y_test)
    n = min(samples, xa.shape[0])
    if n < 1:
        raise InteropError("no test rows to time")
    x = np.ascontiguousarray(xa[:n])
    reps = -(-BATCH // n)
    xb = np.ascontiguousarray(np.tile(x, (reps, 1))[:BATCH])
    notes: list[str] = []
    rows: dict[str, dict[str, Any]] = {}
    methods = _fixed_methods(elsh_path, x, xb, y, xa)
    qm = read_elsh(fixed.file_bytes())
    mlp = mlp_from_qmodel(qm, elsh_path)
    dense_mults = sum(la.n_in * la.n_out for la in mlp.layers)

    fpath, how = find_float_model(fixed, elsh_path, float_model)
    if fpath is None:
        rows["float_lsh"] = {"label": LABELS["float_lsh"], "skipped": how}
        notes.append(f"float LSH skipped: {how}")
    else:
        net = Network.load(fpath)
        if net.n_in != fixed.n_in or net.n_classes != fixed.n_classes:
            raise InteropError(f"{fpath} is {net.layer_sizes}, not the network of {elsh_path}")
        methods.append(_float_method(net, fpath, x, xb, xa, y))
        notes.append(f"float LSH model: {how}")
    methods.append(_numpy_method(mlp, x, xb, xa, y))

    runtime = find_runtime()
    try:
        from edge_lsh.interop.tflite_io import require_tflite

        require_tflite()  # the schema package writes the .tflite files
    except InteropError:
        runtime = None
    if runtime is None:
        for key in ("litert_int8", "litert_float"):
            rows[key] = {"label": LABELS[key], "skipped": f"no LiteRT installed: {INSTALL_HINT}"}
        notes.append(
            f"LiteRT rows skipped: no LiteRT runtime (or no tflite schema package) installed; "
            f"{INSTALL_HINT}"
        )
    else:
        from edge_lsh.interop.tflite_io import tflite_bytes

        given: dict[str, tuple[bytes, str]] = {}
        labels: dict[str, str] = {}
        for path in tflite or []:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise InteropError(f"--tflite {path}: cannot read ({exc})") from None
            key = f"litert_{_tflite_precision(data)}"
            if key in given:
                key = f"{key}:{Path(path).name}"
            given[key] = (data, f"--tflite {Path(path).name}")
            labels[key] = f"LiteRT {key.split('_')[1].split(':')[0]} ({Path(path).name})"
        if mlp.int8 is not None and "litert_int8" not in given:
            calibrate_output(mlp, x_calib)
            given["litert_int8"] = (
                tflite_bytes(mlp, int8=True),
                "int8 .tflite written from the .elsh integers",
            )
        if "litert_float" not in given:
            given["litert_float"] = (
                tflite_bytes(mlp),
                "float32 .tflite of the dequantized weights",
            )
        for key, (data, source) in given.items():
            method = _litert_method(key, runtime, data, source, x, xb, xa, y, dense_mults)
            method.label = labels.get(key, method.label)
            methods.append(method)
        if "litert_int8" not in given:
            rows["litert_int8"] = {
                "label": LABELS["litert_int8"],
                "skipped": "16-bit weights: no int8 form",
            }

    _measure(methods, n, repeats, settle, progress)
    for m in methods:
        rows[m.key] = m.summary()
    # selection measured apart from the timed rounds: recall computes every neuron
    progress("measuring selection (recall, candidates, ns per step)")
    rows["fixed_lsh"]["selection"] = fixed.selection_stats(x)
    ordered = {k: rows[k] for k in ROWS if k in rows}
    ordered.update({k: v for k, v in rows.items() if k not in ordered})
    setup = {
        "model": elsh_path,
        "layers": [fixed.n_in, *[fixed.layer_info(i)["n_out"] for i in range(fixed.n_layers)]],
        "active_per_layer": [fixed.layer_info(i)["k"] for i in range(fixed.n_layers)],
        "timed_samples": n,
        "test_samples": int(xa.shape[0]),
        "rounds": repeats,
        "batch": BATCH,
        "c_loop_chunk": CHUNK,
        "litert": runtime.label if runtime else None,
        "threads": 1,
        "numpy_blas": blas_threads(),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
    }
    return BenchResult(ordered, notes, setup)


def _measure(
    methods: list[Method], n: int, repeats: int, settle: float, progress: Callable[[str], None]
) -> None:
    clock = time.perf_counter_ns

    def run(m: Method, keep: bool) -> None:
        if settle:
            time.sleep(settle)
        if m.c_loop is not None:
            for a in range(0, n, CHUNK):
                b = min(n, a + CHUNK)
                t0 = clock()
                m.c_loop(a, b)
                t1 = clock()
                if keep:
                    m.c_loop_ns_per_row.append((t1 - t0) / (b - a))
        preds = np.empty(n, np.int32)
        for i in range(n):
            t0 = clock()
            preds[i] = m.per_call(i)
            t1 = clock()
            if keep:
                m.per_call_ns.append(t1 - t0)
        m.predictions = preds
        for _ in range(5):
            t0 = clock()
            m.batch()
            t1 = clock()
            if keep:
                m.batch_ns.append(t1 - t0)

    with _one_blas_thread():
        for m in methods:  # warm-up: first calls, weight packing, caches
            run(m, keep=False)
        enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            for r in range(repeats):
                start = r % len(methods)
                for m in [*methods[start:], *methods[:start]]:
                    run(m, keep=True)
                progress(f"round {r + 1}/{repeats} done")
        finally:
            if enabled:
                gc.enable()


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """numpy's BLAS on one thread (as every other row runs), through threadpoolctl when it is
    installed; otherwise BLAS keeps its own thread count (OPENBLAS_NUM_THREADS=1 sets it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def blas_threads() -> str:
    """What numpy's BLAS runs on, for the notes."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS threads as set by the environment (threadpoolctl not installed)"
    with _one_blas_thread():
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return (
        ", ".join(
            f"{p.get('internal_api')} {p.get('version')} on {p.get('num_threads')} thread(s)"
            for p in pools
        )
        or "no BLAS found"
    )


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def markdown(result: BenchResult) -> str:
    """The table: one line per row (skipped rows say why)."""
    head = (
        "| method | C loop µs/sample (median / p90) | per call µs (median / p90) | batch 64 "
        "samples/s | accuracy | mults/sample | model bytes |\n|---|--:|--:|--:|--:|--:|--:|"
    )
    lines = [head]
    for r in result.rows.values():
        if "skipped" in r:
            lines.append(f"| {r['label']} | skipped: {r['skipped']} | | | | | |")
            continue
        loop = (
            f"{_fmt(r['c_loop_median_us'], '.1f')} / {_fmt(r['c_loop_p90_us'], '.1f')}"
            if r["c_loop_median_us"] is not None
            else "-"
        )
        lines.append(
            f"| {r['label']} | {loop} | {r['per_call_median_us']:.1f} / "
            f"{r['per_call_p90_us']:.1f} | {r['batch64_samples_per_second']:,.0f} | "
            f"{r['accuracy'] * 100:.2f}% | {r['multiplications_per_sample']:,.0f} | "
            f"{r['model_bytes']:,} |"
        )
    return "\n".join(lines)


def plot(result: BenchResult, path: str, title: str) -> None:
    """Batch-1 latency (per call, and C loop where there is one; p90 as whiskers) and accuracy
    of every measured row, as a PNG. Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InteropError("--plot needs matplotlib: pip install matplotlib") from None
    rows = [(k, r) for k, r in result.rows.items() if "skipped" not in r]
    labels = [r["label"] for _, r in rows]
    ypos = np.arange(len(rows))
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(12, 0.6 * len(rows) + 2.2), sharey=True, gridspec_kw={"width_ratios": [3, 1]}
    )
    call = [r["per_call_median_us"] for _, r in rows]
    call_err = [r["per_call_p90_us"] - r["per_call_median_us"] for _, r in rows]
    ax1.barh(
        ypos + 0.2,
        call,
        0.4,
        xerr=[np.zeros(len(rows)), call_err],
        label="per Python call",
        color="#4c72b0",
        capsize=3,
    )
    loop = [r["c_loop_median_us"] or 0.0 for _, r in rows]
    loop_err = [(r["c_loop_p90_us"] or 0.0) - (r["c_loop_median_us"] or 0.0) for _, r in rows]
    ax1.barh(
        ypos - 0.2,
        loop,
        0.4,
        xerr=[np.zeros(len(rows)), loop_err],
        label="C loop",
        color="#dd8452",
        capsize=3,
    )
    for i, (c, ce, lo, le) in enumerate(zip(call, call_err, loop, loop_err)):
        ax1.text(c + ce, i + 0.2, f"  {c:.1f}", va="center", fontsize=8)
        if lo:
            ax1.text(lo + le, i - 0.2, f"  {lo:.1f}", va="center", fontsize=8)
    ax1.set_yticks(ypos, labels)
    ax1.invert_yaxis()
    ax1.set_xlabel("batch-1 latency, µs per sample (median; whisker to p90)")
    reach = max(
        max(c + e for c, e in zip(call, call_err)), max(lo + e for lo, e in zip(loop, loop_err))
    )
    ax1.set_xlim(0, 1.2 * reach)
    ax1.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, frameon=False, fontsize=9)
    acc = [r["accuracy"] * 100 for _, r in rows]
    ax2.barh(ypos, acc, 0.6, color="#55a868")
    for i, a in enumerate(acc):
        ax2.text(a, i, f" {a:.1f}%", va="center", fontsize=8)
    ax2.set_xlim(max(0.0, min(acc) - 10), 100)
    ax2.set_xlabel("test accuracy, %")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
