"""``edge-lsh eval``: a saved model's accuracy and cost on a test split: a float model in the
float kernel, an .elsh file in the fixed-point kernel."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from edge_lsh.cli.common import (
    HelpFormatter,
    add_data_args,
    add_thread_args,
    is_elsh,
    load_model_data,
)
from edge_lsh.data import SPEC_HELP, Dataset
from edge_lsh.errors import ModelFileError
from edge_lsh.fixed import FixedPointModel
from edge_lsh.network import Network
from edge_lsh.report import SUMMARY_KEYS, print_summary, selection_markdown


def add_parser(sub: Any) -> argparse.ArgumentParser:
    e: argparse.ArgumentParser = sub.add_parser(
        "eval",
        help="evaluate a saved model (float, or an .elsh in fixed point) on a test split",
        epilog=SPEC_HELP,
        formatter_class=HelpFormatter,
    )
    e.add_argument("model", metavar="MODEL", help="a model from `train --out`, or an .elsh file")
    add_data_args(e, default=None)
    e.add_argument(
        "--seed",
        type=int,
        help="seed of the data split (default: the model's own split for its own data, else 0)",
    )
    add_thread_args(e, training=False)
    e.add_argument(
        "--selection-stats",
        action="store_true",
        help="an .elsh model: also measure each layer's selection on the test split: recall of "
        "the exact top-k, bucket entries and candidates per input, ns per step (hash, count, "
        'select, multiply); the key "selection" in the summary',
    )
    e.set_defaults(func=run)
    return e


def run(args: argparse.Namespace) -> int:
    if is_elsh(args.model):
        return _eval_elsh(args)
    if args.selection_stats:
        raise ModelFileError(f"{args.model}: --selection-stats measures .elsh models only")
    net = Network.load(args.model)
    data = _data(args, net.data)
    data.check_fits(net.n_in, net.n_classes)
    ev = net.evaluate(data.x_test, data.y_test, threads=args.threads)
    summary = {"model": args.model, "data": data.name, **ev}
    print_summary(summary, args.json)
    return 0


def _data(args: argparse.Namespace, record: dict[str, Any] | None) -> Dataset:
    return load_model_data(args.data, args.seed, args.limit, args.label_column, record, args.model)


def _eval_elsh(args: argparse.Namespace) -> int:
    model = FixedPointModel.load(args.model)
    data = _data(args, model.info.get("data"))
    data.check_fits(model.n_in, model.n_classes)
    ev = model.evaluate(data.x_test, data.y_test, threads=args.threads)
    hidden = [model.layer_info(i) for i in range(model.n_layers - 1)]
    active = [h["k"] / h["n_out"] for h in hidden]
    layers = [model.n_in] + [model.layer_info(i)["n_out"] for i in range(model.n_layers)]
    summary: dict[str, Any] = {
        "model": args.model,
        "data": data.name,
        "layers": layers,
        "lsh": any(model.layer_info(i)["use_lsh"] for i in range(model.n_layers)),
        "active_fraction": float(np.mean(active)) if active else 1.0,
        **{key: ev[key] for key in SUMMARY_KEYS},
        "inference_us_per_sample": ev["inference_us_per_sample"],
        "model_bytes": int(ev["model_bytes"]),
    }
    selection = model.selection_stats(data.x_test) if args.selection_stats else None
    if selection is not None and args.json:
        summary["selection"] = selection
    print_summary(summary, args.json)
    if selection is not None and not args.json:
        print(selection_markdown(selection))
    return 0
