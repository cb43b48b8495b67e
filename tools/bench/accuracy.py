"""Test accuracy of LSH networks over seeds, against the dense network trained by the same
code, the fixed-point model exported from each LSH network, or both.

For every network seed: train an LSH network with edge_lsh.defaults (LSH and TRAIN, changed by
--set) and evaluate it on the test split. --compare dense also trains the dense network
(lsh=None) of the same seed; --compare fixed quantizes the LSH network (int8 weights,
activations calibrated on the first --calib-samples training rows) and evaluates the .elsh
file in the fixed-point C kernel. The Markdown table goes to stdout, progress to stderr.

  python tools/bench/accuracy.py --data digits --seeds 0,1,2,3,4,5,6,7,8,9     # LSH vs dense
  python tools/bench/accuracy.py --data digits --compare fixed --split-seed each
  python tools/bench/accuracy.py --compare none --hidden 1000 --seeds 0,1,2,3,4 --set tables=50
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from typing import Any

import common
from common import (
    add_common_args,
    add_quantize_args,
    data_info,
    layers_text,
    load_data,
    markdown_table,
    non_negative_int,
    progress,
    quantized,
    record,
    train,
    write_json_atomic,
)

from edge_lsh import defaults
from edge_lsh.data import Dataset
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import elsh_bytes
from edge_lsh.network import LSHConfig, Network, TrainConfig

PROG = "accuracy.py"
COMPARE = {"dense": ("dense",), "fixed": ("fixed",), "both": ("dense", "fixed"), "none": ()}
KINDS = {int: "a whole number", float: "a number", str: "a word", bool: "true or false"}
EACH = "each"  # --split-seed each: every network seed draws its own split
DEFAULTS = {
    **{f.name: (LSHConfig, getattr(defaults.LSH, f.name)) for f in dataclasses.fields(LSHConfig)},
    **{
        f.name: (TrainConfig, getattr(defaults.TRAIN, f.name))
        for f in dataclasses.fields(TrainConfig)
    },
}


# ----------------------------------------------------------------------------- arguments


def setting(text: str) -> tuple[str, Any]:
    """argparse type: KEY=VALUE, KEY a field of LSHConfig or TrainConfig, VALUE of its type."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or key not in DEFAULTS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected KEY=VALUE with KEY one of {', '.join(DEFAULTS)}"
        )
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw.strip()
    want = type(DEFAULTS[key][1])
    if want is float and type(value) is int:
        value = float(value)
    if type(value) is not want:
        raise argparse.ArgumentTypeError(f"{text!r}: {key} takes {KINDS[want]}")
    return key, value


def split_seed(text: str) -> int | str:
    """argparse type: a seed >= 0, or 'each'."""
    if text.strip() == EACH:
        return EACH
    try:
        return non_negative_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a seed >= 0 or {EACH!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(PROG, __doc__.split("\n\n")[0])
    add_common_args(
        p,
        data="digits",
        hidden=str(defaults.HIDDEN),
        epochs=defaults.EPOCHS,
        seeds="0,1,2",
        limit=True,
    )
    p.add_argument(
        "--split-seed",
        type=split_seed,
        default=0,
        metavar="S|each",
        help=f"seed of the train/test split, the same for every network; {EACH!r}: each "
        "network seed also draws its own split",
    )
    p.add_argument(
        "--compare",
        choices=list(COMPARE),
        default="dense",
        help="what each LSH network is compared with: the dense network of the same seed, "
        "its fixed-point model, both, or nothing",
    )
    add_quantize_args(p)
    p.add_argument(
        "--set",
        type=setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one field of defaults.LSH or defaults.TRAIN for the LSH networks (the "
        "dense ones take the training fields), e.g. --set tables=50 --set rebuild_every=10; "
        "repeatable",
    )
    return p


def configs(settings: list[tuple[str, Any]]) -> tuple[LSHConfig, TrainConfig]:
    """defaults.LSH and defaults.TRAIN with the --set changes, checked."""
    changes: dict[type, dict[str, Any]] = {LSHConfig: {}, TrainConfig: {}}
    for key, value in settings:
        changes[DEFAULTS[key][0]][key] = value
    lsh = dataclasses.replace(defaults.LSH, **changes[LSHConfig])
    train_config = dataclasses.replace(defaults.TRAIN, **changes[TrainConfig])
    lsh.validate()
    train_config.validate()
    return lsh, train_config


# ----------------------------------------------------------------------------- measuring


def measure(
    args: argparse.Namespace,
    data: Dataset,
    seed: int,
    lsh: LSHConfig,
    train_config: TrainConfig,
) -> dict[str, Any]:
    """Train and evaluate the networks of one seed: {kind: evaluate() dict}, kind in lsh,
    dense, fixed as --compare asks, and the training seconds of the float networks."""
    out: dict[str, Any] = {"seed": seed}
    kinds = [("lsh", lsh)] + ([("dense", None)] if "dense" in COMPARE[args.compare] else [])
    for kind, cfg in kinds:
        net = Network(data.n_features, args.hidden, data.n_classes, cfg, seed=seed)
        reports = train(net, data, args.epochs, f"seed {seed} {kind}", config=train_config)
        out[kind] = net.evaluate(data.x_test, data.y_test)
        out[kind]["train_seconds"] = sum(r.seconds for r in reports)
        if kind == "lsh" and "fixed" in COMPARE[args.compare]:
            fixed = FixedPointModel(elsh_bytes(quantized(net, data, args), tables=False))
            out["fixed"] = fixed.evaluate(data.x_test, data.y_test)
        out["layers"] = net.layer_sizes
    progress(
        f"seed {seed}: "
        + ", ".join(
            f"{k} {out[k]['accuracy'] * 100:.2f}%" for k in ("lsh", "dense", "fixed") if k in out
        )
        + f"; LSH mults/sample {out['lsh']['multiplications_per_sample']:,.0f} "
        f"({out['lsh']['multiplication_fraction'] * 100:.2f}% of dense)"
    )
    return out


def summarise(
    args: argparse.Namespace,
    runs: list[dict[str, Any]],
    data: Dataset,
    lsh: LSHConfig,
    train_config: TrainConfig,
) -> dict[str, Any]:
    """The JSON summary. The keys of the former accuracy_gap.py stay as they were."""

    def accuracies(kind: str) -> list[float]:
        return [r[kind]["accuracy"] for r in runs]

    def mean(kind: str, key: str = "accuracy") -> float:
        return statistics.mean(r[kind][key] for r in runs)

    summary = record(
        PROG,
        {
            "data": args.data,
            "data_info": data_info(args.data, data, args.limit),
            "split_seed": args.split_seed,
            "layers": runs[0]["layers"],
            "epochs": args.epochs,
            "seeds": args.seeds,
            "compare": args.compare,
            "lsh": dataclasses.asdict(lsh),
            "train_config": dataclasses.asdict(train_config),
            "settings": dict(args.set),
            "lsh_accuracy": mean("lsh"),
            "lsh_accuracies": accuracies("lsh"),
            "multiplication_fraction": mean("lsh", "multiplication_fraction"),
        },
    )
    if "dense" in COMPARE[args.compare]:
        summary["dense_accuracy"] = mean("dense")
        summary["dense_accuracies"] = accuracies("dense")
        summary["gap_points"] = (mean("dense") - mean("lsh")) * 100
        summary["train_speedup"] = mean("dense", "train_seconds") / mean("lsh", "train_seconds")
    if "fixed" in COMPARE[args.compare]:
        summary["weight_bits"] = args.weight_bits
        summary["calib_samples"] = args.calib_samples
        summary["fixed_accuracy"] = mean("fixed")
        summary["fixed_accuracies"] = accuracies("fixed")
        summary["fixed_change_points"] = (mean("fixed") - mean("lsh")) * 100
        summary["fixed_multiplication_fraction"] = mean("fixed", "multiplication_fraction")
    summary["per_seed"] = [
        {"seed": r["seed"], **{k: r[k] for k in ("lsh", "dense", "fixed") if k in r}} for r in runs
    ]
    return summary


def render(summary: dict[str, Any]) -> str:
    """The per-seed Markdown table with a mean row."""
    kinds = COMPARE[summary["compare"]]
    headers = ["seed", "LSH"]
    if "dense" in kinds:
        headers += ["dense", "gap (points)"]
    if "fixed" in kinds:
        headers += [f"fixed (int{summary['weight_bits']})", "change (points)"]

    def cells(label: str, acc: dict[str, float]) -> list[str]:
        row = [label, f"{acc['lsh'] * 100:.2f}%"]
        if "dense" in kinds:
            row += [f"{acc['dense'] * 100:.2f}%", f"{(acc['dense'] - acc['lsh']) * 100:.2f}"]
        if "fixed" in kinds:
            row += [f"{acc['fixed'] * 100:.2f}%", f"{(acc['fixed'] - acc['lsh']) * 100:+.2f}"]
        return row

    rows = [
        cells(str(r["seed"]), {k: r[k]["accuracy"] for k in ("lsh", *kinds)})
        for r in summary["per_seed"]
    ]
    means = {k: summary[f"{k}_accuracy"] for k in ("lsh", *kinds)}
    rows.append(cells("mean", means))
    return markdown_table(headers, rows)


def run(args: argparse.Namespace) -> int:
    lsh, train_config = configs(args.set)
    data = None if args.split_seed == EACH else load_data(args, args.split_seed)
    runs = []
    for seed in args.seeds:
        split = data if data is not None else load_data(args, seed)
        runs.append(measure(args, split, seed, lsh, train_config))
    summary = summarise(args, runs, split, lsh, train_config)
    print(
        f"**{args.data}, {layers_text(summary['layers'])}, {args.epochs} epoch(s), LSH "
        f"{lsh.family} K={lsh.bits} L={lsh.tables} at {lsh.active_fraction * 100:g}% active, "
        f"split seed {args.split_seed}**\n"
    )
    print(render(summary))
    line = (
        f"\n{args.data}: LSH {summary['lsh_accuracy'] * 100:.2f}% at "
        f"{summary['multiplication_fraction'] * 100:.2f}% of the multiplications"
    )
    if "gap_points" in summary:
        line += (
            f", dense {summary['dense_accuracy'] * 100:.2f}% (gap {summary['gap_points']:.2f} "
            f"points, training {summary['train_speedup']:.1f}x faster with LSH)"
        )
    if "fixed_change_points" in summary:
        line += (
            f", fixed point {summary['fixed_accuracy'] * 100:.2f}% "
            f"({summary['fixed_change_points']:+.2f} points)"
        )
    print(f"{line}; seeds {args.seeds}")
    if args.json:
        write_json_atomic(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(common.main(PROG, build_parser(), run))
