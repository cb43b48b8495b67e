"""``edge-lsh run``: classify the rows of a file with an .elsh model in the fixed-point C
kernel, one predicted class per line."""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from typing import Any

import numpy as np

from edge_lsh.cli.argtypes import fraction
from edge_lsh.cli.common import HelpFormatter, add_label_column_arg, add_thread_args
from edge_lsh.data import DataError, data_record, input_range_warning, preprocess, split_labels
from edge_lsh.fileio import check_input_file
from edge_lsh.fixed import FixedPointModel
from edge_lsh.report import format_accuracy, selection_markdown


def add_parser(sub: Any) -> argparse.ArgumentParser:
    r: argparse.ArgumentParser = sub.add_parser(
        "run",
        formatter_class=HelpFormatter,
        help="classify inputs with an .elsh model (the fixed-point C kernel)",
        description="Prints one predicted class per input row. A CSV row of n_in + 1 values "
        "carries its label (in the last column, unless --label-column first); accuracy is "
        "then reported on stderr.",
    )
    r.add_argument("model", metavar="MODEL.elsh", help="a model written by `edge-lsh export`")
    r.add_argument(
        "--input",
        required=True,
        metavar="FILE",
        help="FILE.npy (rows of n_in values, or images that flatten to them) or FILE.csv",
    )
    r.add_argument("--logits", action="store_true", help="print the int32 logits too")
    r.add_argument(
        "--probs",
        action="store_true",
        help="print the class probabilities too (after the logits): the softmax of the "
        "dequantized logits, 0 for a class an LSH output layer did not compute",
    )
    r.add_argument("--active", type=fraction, help="active fraction of every LSH layer")
    r.add_argument("--dense", action="store_true", help="compute every neuron (dense int8)")
    r.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (predictions, logits with --logits, probabilities with "
        "--probs, accuracy) instead",
    )
    r.add_argument(
        "--selection-stats",
        action="store_true",
        help="also measure each layer's selection in one more pass over the inputs: recall of "
        "the exact top-k (every pre-activation computed), bucket entries and candidates per "
        "input, ns per step (hash, count, select, multiply); a table on stderr, or the key "
        '"selection" with --json',
    )
    add_label_column_arg(r)
    r.add_argument(
        "--no-preprocess",
        action="store_true",
        help="the inputs are already scaled as the model takes them (by default they are the "
        "training files' raw numbers, e.g. pixels 0..255, scaled as the model records)",
    )
    add_thread_args(r, training=False)
    r.set_defaults(func=run)
    return r


def read_inputs(
    path: str, n_in: int, n_classes: int, label_column: str = "last"
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows of an .npy (2-D) or .csv file, and labels when each CSV row has one extra value
    (in its label_column, "last" or "first"). A CSV file is read with the C runner's grammar
    (edge_lsh.data.read_c_csv): the same bytes give the same numbers in both, or an error."""
    from edge_lsh.data import read_c_csv, read_npy

    try:
        p = check_input_file(path, "input file")
    except OSError as exc:
        raise DataError(str(exc)) from None
    if p.suffix.lower() == ".npy":
        x = read_npy(p)
        if x.size == 0:
            raise DataError(f"{path}: holds no input rows (shape {x.shape})")
        if x.ndim == 1 and x.size == n_in:
            x = x[None, :]
        elif x.ndim > 2 and math.prod(x.shape[1:]) == n_in:
            x = x.reshape(x.shape[0], n_in)  # images (N, 28, 28) flatten as IDX files do
        if x.ndim != 2 or x.shape[1] != n_in:
            raise DataError(f"{path}: shape {x.shape}; the model takes rows of {n_in} values")
        return x.astype(np.float32), None
    table = read_c_csv(p, n_in)
    if table.shape[1] == n_in + 1:
        arr = table.astype(np.float64)
        x, labels = split_labels(arr, label_column, path, one_class_ok=True)
        if labels.max() >= n_classes:
            raise DataError(
                f"{path}: label {labels.max():g} in the {label_column} column; the model has "
                f"classes 0..{n_classes - 1}"
            )
        return x.astype(np.float32), labels.astype(np.int64)
    return table, None


def run(args: argparse.Namespace) -> int:
    if args.dense and args.active is not None:
        warnings.warn("--active is ignored with --dense: every neuron is computed", stacklevel=1)
    model = FixedPointModel.load(args.model)
    x, labels = read_inputs(args.input, model.n_in, model.n_classes, args.label_column or "last")
    record = data_record(model.info.get("data"), args.model)
    if not args.no_preprocess:
        x = preprocess(record, x)
    warning = input_range_warning(record, x)
    if warning:
        hint = "" if args.no_preprocess else " (--no-preprocess if they are scaled already)"
        warnings.warn(f"{args.input}: {warning}{hint}", stacklevel=1)
    model.set_active(args.active, dense=args.dense)
    pred, logits = model.predict_logits(x, threads=args.threads)
    probs = model.predict_proba(x, threads=args.threads) if args.probs else None
    # as the C runner prints them (%.9g: every float32 exactly)
    prob_text = None if probs is None else [[f"{v:.9g}" for v in row] for row in probs.tolist()]
    accuracy = None if labels is None else float((pred == labels).mean())
    selection = model.selection_stats(x) if args.selection_stats else None
    if args.json:
        result: dict[str, Any] = {"model": args.model, "predictions": pred.tolist()}
        if args.logits:
            result["logits"] = logits.astype(int).tolist()
        if prob_text is not None:
            result["probabilities"] = [[float(v) for v in row] for row in prob_text]
        if labels is not None:
            result["accuracy"] = accuracy
            result["labelled"] = int(labels.size)
        if selection is not None:
            result["selection"] = selection
        print(json.dumps(result))
        return 0
    out = sys.stdout
    for i in range(pred.shape[0]):
        fields = [str(pred[i])]
        if args.logits:
            fields += [str(int(v)) for v in logits[i]]
        if prob_text is not None:
            fields += prob_text[i]
        out.write(" ".join(fields) + "\n")
    if labels is not None and accuracy is not None:
        print(
            f"accuracy {format_accuracy(accuracy)} ({int((pred == labels).sum())} of "
            f"{len(labels)})",
            file=sys.stderr,
        )
    if selection is not None:
        print(selection_markdown(selection), file=sys.stderr)
    return 0
