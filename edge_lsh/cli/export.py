"""``edge-lsh export``: quantize a trained float model to fixed point and write an .elsh
file for the C kernel, edge-lsh-run and the firmware."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from edge_lsh import format as elsh_format
from edge_lsh.cli.argtypes import positive_int
from edge_lsh.cli.common import HelpFormatter, add_label_column_arg, is_elsh, load_model_data
from edge_lsh.data import DataError
from edge_lsh.fileio import check_output_file
from edge_lsh.fixed import FixedPointModel
from edge_lsh.network import Network
from edge_lsh.report import print_summary


def add_parser(sub: Any) -> argparse.ArgumentParser:
    x: argparse.ArgumentParser = sub.add_parser(
        "export",
        formatter_class=HelpFormatter,
        help="quantize a trained model to fixed point and write an .elsh file, or write its "
        "dense equivalent as ONNX or TFLite",
        description="Quantize MODEL (int8 or int16 weights, int8 activations calibrated on "
        "--calib) and write it as an .elsh file for the C kernel and edge-lsh-run. Prints the "
        "float and fixed-point accuracy on the calibration set's test split.\n\n"
        "--format onnx|tflite writes the dense equivalent instead (the same weights, every "
        "neuron computed, logits out) of a float model or an .elsh file: ONNX float32 (checked "
        "with onnx.checker and onnx's reference evaluator), TFLite float32 or --int8 (run in "
        "LiteRT when installed); each compared with edge-lsh's dense kernel on the test split.",
    )
    x.add_argument(
        "model",
        metavar="MODEL",
        help="a model saved by `edge-lsh train --out` (or `import --out`), or an .elsh file",
    )
    x.add_argument(
        "--calib",
        metavar="SPEC",
        help="calibration data set (see Data specs; default: the model's own data, and its "
        "accuracy is reported on the model's held-out split)",
    )
    x.add_argument(
        "--out", required=True, metavar="PATH", help="the file to write (.elsh, .onnx, .tflite)"
    )
    x.add_argument(
        "--format",
        choices=["elsh", "onnx", "tflite"],
        help="what to write (default: from --out's suffix, .elsh otherwise)",
    )
    x.add_argument(
        "--int8",
        action="store_true",
        help="with --format tflite: int8 weights and activations (default float32)",
    )
    x.add_argument(
        "--calib-samples",
        type=positive_int,
        default=1000,
        help="training rows used to calibrate activation ranges (default 1000)",
    )
    x.add_argument(
        "--weight-bits", type=int, choices=[8, 16], default=8, help="bits per stored weight"
    )
    x.add_argument(
        "--percentile",
        type=float,
        help="calibrate hidden ranges on this percentile instead of the maximum (e.g. 99.99)",
    )
    x.add_argument(
        "--no-tables",
        action="store_true",
        help="store only the seeds: smaller file, tables rebuilt at load",
    )
    x.add_argument(
        "--seed",
        type=int,
        help="seed of the data split (default: the model's own split for its own data, else 0)",
    )
    x.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    add_label_column_arg(x)
    x.set_defaults(func=run)
    return x


def run(args: argparse.Namespace) -> int:
    from edge_lsh.quantize import quantize

    fmt = args.format or {".onnx": "onnx", ".tflite": "tflite"}.get(Path(args.out).suffix, "elsh")
    if fmt != "elsh" or is_elsh(args.model) or args.int8:
        return run_interop(args, fmt)  # edge_lsh/cli/export.py, below
    check_output_file(args.out, ".elsh file")
    net = Network.load(args.model)
    data = load_model_data(
        args.calib, args.seed, None, args.label_column, net.data, args.model, "--calib"
    )
    if data.n_features != net.n_in:
        raise DataError(f"{data.name} has {data.n_features} features; the model takes {net.n_in}")
    calib = data.x_train[: args.calib_samples]
    qm = quantize(net, calib, weight_bits=args.weight_bits, percentile=args.percentile)
    float_acc = float((net.predict(data.x_test) == data.y_test).mean())
    info = {
        "producer": "edge-lsh export",
        "source_model": Path(args.model).name,
        "calibration": f"{data.name}, {calib.shape[0]} training rows",
        "float_accuracy": float_acc,
    }
    if net.data:
        info["data"] = net.data  # eval, run and edge-lsh-run find the data and scaling here
    if net.data and "input_range" in net.data:  # the PREPROCESS section (FORMAT.md 4.1)
        lo, hi = net.data["input_range"]
        divisor = net.data.get("preprocess", {}).get("divisor", 1.0)
        qm.preprocess = (float(divisor), float(lo), float(hi))
    tables = not args.no_tables
    blob = elsh_format.elsh_bytes(qm, tables=tables, info=info)
    fixed = FixedPointModel(blob, args.out)
    fixed_acc = float((fixed.predict(data.x_test) == data.y_test).mean())
    elsh_format.write_elsh(args.out, qm, tables=tables, info=info)
    summary = {
        "model": args.out,
        "data": data.name,
        "float_accuracy": float_acc,
        "fixed_accuracy": fixed_acc,
        "accuracy_change_points": 100.0 * (fixed_acc - float_acc),
        "weight_bits": args.weight_bits,
        "tables_stored": tables,
        "model_bytes": len(blob),
    }
    print_summary(summary, args.json)
    return 0


def run_interop(args: argparse.Namespace, fmt: str) -> int:
    """--format onnx|tflite (of a float model or an .elsh file), or an .elsh file rewritten."""
    from edge_lsh.data import data_record
    from edge_lsh.interop.exporter import dense_source, export_dense

    if args.int8 and fmt != "tflite":
        raise ValueError("--int8 goes with --format tflite (ONNX is written in float32)")
    check_output_file(args.out, f"{fmt} file")
    elsh = is_elsh(args.model)
    model: Network | FixedPointModel
    if elsh:
        model = FixedPointModel.load(args.model)
        record = data_record(model.info.get("data"), args.model)
    else:
        model = Network.load(args.model)
        record = model.data
    data = None
    if args.calib or record or args.int8:  # float ONNX/TFLite need data only for the check
        data = load_model_data(
            args.calib, args.seed, None, args.label_column, record, args.model, "--calib"
        )
        if data.n_features != model.n_in:
            raise DataError(
                f"{data.name} has {data.n_features} features; the model takes {model.n_in}"
            )
    if fmt == "elsh":  # an .elsh file rewritten (with or without its tables)
        assert isinstance(model, FixedPointModel)
        qm = elsh_format.read_elsh(model.file_bytes())
        blob = elsh_format.elsh_bytes(qm, tables=not args.no_tables, info=model.info)
        elsh_format.write_elsh(args.out, qm, tables=not args.no_tables, info=model.info)
        print_summary({"model": args.out, "format": "elsh", "model_bytes": len(blob)}, args.json)
        return 0
    calib = data.x_train[: args.calib_samples] if data is not None else None
    src = dense_source(model, calib, args.int8)
    x = data.x_test if data is not None else np.zeros((0, model.n_in), np.float32)
    y = data.y_test if data is not None else np.zeros(0, np.int32)
    summary = {"source": args.model, **export_dense(src, fmt, args.int8, args.out, x, y)}
    if data is not None:
        summary["data"] = data.name
    else:
        summary["note"] = "no data to check on: pass --calib SPEC"
    print_summary(summary, args.json)
    return 0
