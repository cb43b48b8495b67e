"""``edge-lsh export``: quantize a trained float model to fixed point and write an .elsh
file for the C kernel, edge-lsh-run and the firmware."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge_lsh import format as elsh_format
from edge_lsh.cli.argtypes import positive_int
from edge_lsh.cli.common import HelpFormatter, add_label_column_arg, load_model_data
from edge_lsh.data import DataError
from edge_lsh.fileio import check_output_file
from edge_lsh.fixed import FixedPointModel
from edge_lsh.network import Network
from edge_lsh.report import print_summary


def add_parser(sub: Any) -> argparse.ArgumentParser:
    x: argparse.ArgumentParser = sub.add_parser(
        "export",
        formatter_class=HelpFormatter,
        help="quantize a trained model to fixed point and write an .elsh file",
        description="Quantize MODEL (int8 or int16 weights, int8 activations calibrated on "
        "--calib) and write it as an .elsh file for the C kernel and edge-lsh-run. Prints the "
        "float and fixed-point accuracy on the calibration set's test split.",
    )
    x.add_argument("model", metavar="MODEL", help="a model saved by `edge-lsh train --out`")
    x.add_argument(
        "--calib",
        metavar="SPEC",
        help="calibration data set (see Data specs; default: the model's own data, and its "
        "accuracy is reported on the model's held-out split)",
    )
    x.add_argument("--out", required=True, metavar="PATH", help="the .elsh file to write")
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
