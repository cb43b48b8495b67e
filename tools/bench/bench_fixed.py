"""Fixed point against float, and the .elsh file against an int8 .tflite: accuracy, file size,
load time and batch-1 latency of one network, all measured in one run.

Trains an LSH network with the defaults (or loads one with --model), quantizes it with
``edge_lsh.quantize`` (int8 weights, activations calibrated on training rows), writes the
.elsh file with and without tables, and measures in round robin over the same test inputs:

  fixed LSH    the fixed-point C kernel at the trained active fraction (lib.elsh_qnet_predict)
  dense int8   the same kernel and file computing every neuron (the dense int8 path)
  float LSH    the float C kernel the model was trained in (lib.elsh_predict), for reference

Latency is the C loop's time per sample (input quantization included), median over repeats.
The Markdown summary goes to stdout, progress to stderr.

    python tools/bench/bench_fixed.py                        # 784-1000-1000-10 on mnist5k
    python tools/bench/bench_fixed.py --data digits --hidden 2000
"""

from __future__ import annotations

import argparse
import sys
import time

import common
import numpy as np
from common import (
    CPredictTimer,
    add_common_args,
    add_quantize_args,
    data_info,
    layers_text,
    load_data,
    machine_line,
    markdown_table,
    median,
    positive_int,
    progress,
    quantized,
    record,
    train,
    write_json_atomic,
)

from edge_lsh import defaults
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import elsh_bytes
from edge_lsh.native import check, ffi, lib, ptr
from edge_lsh.network import Network

PROG = "bench_fixed.py"
TFLITE_INT8_BYTES = 1_850_000  # GUIDE.md section 3: int8 .tflite of the dense 784-1000-1000-10


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(PROG, __doc__.split("\n\n")[0])
    add_common_args(p, data="mnist5k", hidden="1000,1000", epochs=defaults.EPOCHS, seed=0)
    p.add_argument("--model", metavar="PATH", help="use this trained model instead of training")
    p.add_argument("--save-model", metavar="PATH", help="save the trained float model here")
    add_quantize_args(p)
    p.add_argument("--repeats", type=positive_int, default=9, metavar="N", help="timing rounds")
    p.add_argument(
        "--samples", type=positive_int, default=1000, metavar="N", help="test inputs timed"
    )
    p.add_argument(
        "--loads", type=positive_int, default=7, metavar="N", help="timed loads of each file"
    )
    return p


class FixedTimer:
    """Times lib.elsh_qnet_predict over a fixed input matrix (pointers made once)."""

    def __init__(self, model: FixedPointModel, x: np.ndarray, dense: bool) -> None:
        self.model, self.x, self.dense = model, x, dense
        self.n = int(x.shape[0])
        self.pred = np.empty(self.n, dtype=np.int32)
        self._x = ptr(x, "float *")
        self._p = ptr(self.pred, "int32_t *")

    def run(self) -> float:
        self.model.set_active(None, dense=self.dense)
        t0 = time.perf_counter_ns()
        status = lib.elsh_qnet_predict(self.model._net, self._x, self.n, self._p, ffi.NULL)
        t1 = time.perf_counter_ns()
        check(status, "qnet predict")
        return (t1 - t0) * 1e-9


def time_loads(blob: bytes, loads: int) -> float:
    times = []
    for _ in range(loads):
        t0 = time.perf_counter()
        FixedPointModel(blob)
        times.append(time.perf_counter() - t0)
    return median(times)


def run(args: argparse.Namespace) -> int:
    data = load_data(args)
    if args.model:
        net = Network.load(args.model)
    else:
        net = Network(data.n_features, args.hidden, data.n_classes, defaults.LSH, seed=args.seed)
        train(net, data, args.epochs, f"{layers_text(net.layer_sizes)} LSH on {data.name}")
        if args.save_model:
            net.save(args.save_model)
    qm = quantized(net, data, args)
    blobs = {t: elsh_bytes(qm, tables=t) for t in (True, False)}
    models = {t: FixedPointModel(blob) for t, blob in blobs.items()}

    x_test, y_test = data.x_test, data.y_test
    float_acc = float((net.predict(x_test) == y_test).mean())
    preds = {t: m.predict(x_test) for t, m in models.items()}
    if not np.array_equal(preds[True], preds[False]):
        raise AssertionError("stored and rebuilt tables gave different predictions")
    fixed = models[True]
    fixed_acc = float((preds[True] == y_test).mean())
    fixed.set_active(None, dense=True)
    dense_acc = float((fixed.predict(x_test) == y_test).mean())
    fixed.set_active(None)
    ev = fixed.evaluate(x_test, y_test)

    progress("timing loads")
    load_s = {t: time_loads(blob, args.loads) for t, blob in blobs.items()}

    x = np.ascontiguousarray(x_test[: args.samples], dtype=np.float32)
    timers = {
        "fixed LSH": FixedTimer(fixed, x, dense=False),
        "dense int8": FixedTimer(fixed, x, dense=True),
        "float LSH": CPredictTimer(net, x),
    }
    seconds: dict[str, list[float]] = {k: [] for k in timers}
    names = list(timers)
    for r in range(args.repeats):
        progress(f"timing round {r + 1}/{args.repeats}")
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            seconds[name].append(timers[name].run())
    us = {k: 1e6 * median(v) / x.shape[0] for k, v in seconds.items()}
    fixed.set_active(None)

    sizes = {t: len(b) for t, b in blobs.items()}
    result = record(
        PROG,
        {
            "data": data_info(args.data, data, None),
            "layers": net.layer_sizes,
            "lsh": net.lsh.__dict__ if net.lsh else None,
            "weight_bits": args.weight_bits,
            "accuracy": {
                "float_lsh": float_acc,
                "fixed_lsh": fixed_acc,
                "fixed_dense_int8": dense_acc,
                "fixed_minus_float_points": 100 * (fixed_acc - float_acc),
            },
            "file_bytes": {"with_tables": sizes[True], "without_tables": sizes[False]},
            "tflite_int8_bytes": TFLITE_INT8_BYTES,
            "ratio_to_tflite": {
                "with_tables": sizes[True] / TFLITE_INT8_BYTES,
                "without_tables": sizes[False] / TFLITE_INT8_BYTES,
            },
            "load_ms_median": {
                "with_tables": 1e3 * load_s[True],
                "without_tables": 1e3 * load_s[False],
            },
            "latency_us_median": us,
            "latency_seconds_all": seconds,
            "dense_over_fixed_lsh": us["dense int8"] / us["fixed LSH"],
            "per_sample": {
                k: ev[k]
                for k in (
                    "multiplications_per_sample",
                    "multiplication_fraction",
                    "weight_bytes_per_sample",
                    "table_bytes_per_sample",
                )
            },
            "samples_timed": int(x.shape[0]),
            "repeats": args.repeats,
        },
    )
    layers = layers_text(net.layer_sizes)
    print(f"**{layers} on {data.name}** ({machine_line(result['machine'])})\n")
    print(
        markdown_table(
            ["", "float LSH", "fixed LSH", "dense int8"],
            [
                [
                    "test accuracy",
                    f"{100 * float_acc:.2f}%",
                    f"{100 * fixed_acc:.2f}%",
                    f"{100 * dense_acc:.2f}%",
                ],
                [
                    "batch-1 latency (median)",
                    f"{us['float LSH']:.1f} us",
                    f"{us['fixed LSH']:.1f} us",
                    f"{us['dense int8']:.1f} us",
                ],
            ],
        )
    )
    print()
    print(
        markdown_table(
            [".elsh file", "bytes", "vs int8 .tflite (1.85 MB)", "load (median)"],
            [
                [
                    "with tables",
                    f"{sizes[True]:,}",
                    f"{sizes[True] / TFLITE_INT8_BYTES:.3f}x",
                    f"{1e3 * load_s[True]:.2f} ms",
                ],
                [
                    "without tables (seeds only)",
                    f"{sizes[False]:,}",
                    f"{sizes[False] / TFLITE_INT8_BYTES:.3f}x",
                    f"{1e3 * load_s[False]:.2f} ms",
                ],
            ],
        )
    )
    print(
        f"\ndense int8 / fixed LSH latency: {result['dense_over_fixed_lsh']:.1f}x; fixed LSH does "
        f"{100 * ev['multiplication_fraction']:.2f}% of the dense multiplications"
    )
    if args.json:
        write_json_atomic(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(common.main(PROG, build_parser(), run))
