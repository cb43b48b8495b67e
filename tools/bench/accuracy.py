"""Test accuracy of LSH networks over seeds, against the dense network trained by the same
code, the fixed-point model exported from each LSH network, or both; and the recall of the
exact top-k by the LSH layers' active sets.

For every network seed: train an LSH network with edge_lsh.defaults (LSH and TRAIN, changed by
--set) and evaluate it on the test split. --compare dense also trains the dense network
(lsh=None) of the same seed, or takes its result from an earlier run's JSON (--dense-from:
the dense network does not depend on the LSH settings, and on real MNIST it costs 20-50x the
LSH one to train); --compare fixed quantizes the LSH network (int8 weights, activations
calibrated on the first --calib-samples training rows) and evaluates the .elsh file in the
fixed-point C kernel. After every epoch and at the end, --recall N test inputs measure each
LSH layer's recall: the fraction of the k largest pre-activations (computed in numpy from the
float weights, on the input the layer really received) that the layer's active set holds.
The Markdown table goes to stdout, progress to stderr.

  python tools/bench/accuracy.py --data digits --seeds 0,1,2,3,4,5,6,7,8,9     # LSH vs dense
  python tools/bench/accuracy.py --data digits --compare fixed --split-seed each
  python tools/bench/accuracy.py --compare none --hidden 1000 --seeds 0,1,2,3,4 --set tables=50
  python tools/bench/accuracy.py --compare none --hidden 1000,1000 --set tables=100,25  # per layer
  python tools/bench/accuracy.py --data idx:MNIST_FOLDER --limit 10000 --hidden 1000 \
      --epochs 5 --dense-from dense.json --set warm_fraction=0.2 --set warm_epochs=1
  python tools/bench/accuracy.py --data idx:MNIST_FOLDER --hidden 1000,1000 --epochs 2 \
      --seeds 0 --compare both --save models/    # then: edge-lsh export models/lsh-seed0.npz
  python tools/bench/accuracy.py --data idx:MNIST_FOLDER --hidden 1000 --epochs 2 \
      --validate 10000 --compare none --set tables=200   # choose settings without the test set
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import common
import numpy as np
from common import (
    add_common_args,
    add_quantize_args,
    data_info,
    layers_text,
    load_data,
    markdown_table,
    non_negative_int,
    positive_int,
    progress,
    quantized,
    record,
    train,
    write_json_atomic,
)

from edge_lsh import defaults
from edge_lsh.cli.argtypes import table_counts
from edge_lsh.data import Dataset
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import elsh_bytes
from edge_lsh.network import LSHConfig, Network, TrainConfig

PROG = "accuracy.py"
COMPARE = {"dense": ("dense",), "fixed": ("fixed",), "both": ("dense", "fixed"), "none": ()}
KINDS = {int: "a whole number", float: "a number", str: "a word", bool: "true or false"}
EACH = "each"  # --split-seed each: every network seed draws its own split
# TrainConfig fields that do not change a dense network's training (LSH table maintenance and
# the LSH warm start): --dense-from accepts a dense run that differs only in these
LSH_ONLY_TRAIN_FIELDS = ("rebuild", "rebuild_every", "rehash_every", "warm_fraction", "warm_epochs")
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
    if key == "tables":  # a whole number, or one per LSH layer: 100,25
        return key, table_counts(raw)
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
        "--recall",
        type=non_negative_int,
        default=1000,
        metavar="N",
        help="measure the recall of the exact top-k on the first N test inputs after every "
        "epoch and at the end; 0: not at all",
    )
    p.add_argument(
        "--dense-from",
        metavar="FILE",
        help="take the dense networks' results from an earlier run's --json FILE (same data, "
        "split, limit, layers, epochs, seeds and optimizer settings; checked) instead of "
        "training them again",
    )
    p.add_argument(
        "--curve",
        action="store_true",
        help="also measure the test accuracy of every float network (LSH and dense) after "
        "every epoch (accuracy_by_epoch in the JSON, and the gap after every epoch)",
    )
    p.add_argument(
        "--save",
        metavar="DIR",
        help="also save every float network trained here as DIR/KIND-seedS.npz (KIND lsh or "
        "dense), as `edge-lsh train --out` saves one: `edge-lsh export` and `eval` take it",
    )
    p.add_argument(
        "--validate",
        type=positive_int,
        metavar="N",
        help="choose settings without the test split: train on all training rows but the last "
        "N (after --limit) and measure every figure on those N instead of the test split, "
        "which this run never reads",
    )
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


def validation_split(data: Dataset, n: int) -> Dataset:
    """data with its last n training rows as the test split and the rest as the training
    split (the test split is dropped): a validation split carved from the training data."""
    n_train = int(data.x_train.shape[0])
    if not 0 < n < n_train:
        raise ValueError(
            f"--validate {n}: must leave training rows; the training split has {n_train}"
        )
    keep = n_train - n
    return dataclasses.replace(
        data,
        x_train=np.ascontiguousarray(data.x_train[:keep]),
        y_train=np.ascontiguousarray(data.y_train[:keep]),
        x_test=np.ascontiguousarray(data.x_train[keep:]),
        y_test=np.ascontiguousarray(data.y_train[keep:]),
        source={},  # not a split load() makes again
    )


def load_split(args: argparse.Namespace, seed: int) -> Dataset:
    """The data of this run: --data split with `seed`, then --validate's carving."""
    data = load_data(args, seed)
    return validation_split(data, args.validate) if args.validate else data


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


def exact_topk_recall(net: Network, x: np.ndarray) -> list[float]:
    """Mean recall of the exact top-k of each LSH layer over the rows of x, in layer order.

    Each row runs through the network alone (batch 1), so each layer's recorded active set
    (net.last_active) is the one the row got. The exact pre-activations of a layer are
    computed in numpy from its float weights, on the input that layer really received: the
    ReLU outputs of the previous layer's active neurons (zero elsewhere), as the kernel
    computes them. Recall = |active set & k largest pre-activations| / k."""
    layers = [i for i in range(net.n_layers) if net.layer_info(i)["lsh"]]
    hits = {i: 0 for i in layers}
    ks = {i: net.layer_info(i)["k"] for i in layers}
    weights = [net.layer_arrays(i) for i in range(net.n_layers)]
    for row in x:
        net.predict(row[None, :])
        layer_in = row.astype(np.float32)
        for i in range(net.n_layers):
            if i not in hits:
                break  # a dense layer: every later layer is dense too (only the output may be LSH)
            pre = weights[i]["w"] @ layer_in + weights[i]["b"]
            active = net.last_active(i)
            k = ks[i]
            top = np.argpartition(-pre, k - 1)[:k] if k < pre.size else np.arange(pre.size)
            hits[i] += int(np.intersect1d(top, active, assume_unique=True).size)
            layer_in = np.zeros(pre.size, dtype=np.float32)
            layer_in[active] = np.maximum(pre[active], 0.0)
    n = max(1, x.shape[0])
    return [hits[i] / (ks[i] * n) for i in layers]


def dense_results(args: argparse.Namespace, data: Dataset, train_config: TrainConfig) -> Any:
    """{seed: the dense 'dense' dict} from --dense-from, after checking that the file's run
    trained the same dense networks; None without --dense-from."""
    if not args.dense_from:
        return None
    path = Path(args.dense_from)
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"--dense-from {path}: cannot read it as JSON ({exc})") from None
    if not isinstance(old, dict) or not isinstance(old.get("per_seed"), list):
        raise ValueError(f"--dense-from {path}: not a JSON file written by {PROG} --json")
    mine = dataclasses.asdict(train_config)
    theirs = old.get("train_config") or {}
    same = {
        "data": (args.data, old.get("data")),
        "split seed": (args.split_seed, old.get("split_seed")),
        "limit": (args.limit, (old.get("data_info") or {}).get("limit")),
        "layers": (
            [data.n_features, *args.hidden, data.n_classes],
            old.get("layers"),
        ),
        "epochs": (args.epochs, old.get("epochs")),
        "validate": (args.validate, old.get("validate")),
        **{
            f"train_config.{k}": (v, theirs.get(k))
            for k, v in mine.items()
            if k not in LSH_ONLY_TRAIN_FIELDS
        },
    }
    for what, (want, have) in same.items():
        if want != have:
            raise ValueError(
                f"--dense-from {path}: its {what} is {have!r}, this run's is {want!r}: "
                "not the same dense networks"
            )
    found = {r.get("seed"): r["dense"] for r in old["per_seed"] if "dense" in r}
    missing = [s for s in args.seeds if s not in found]
    if missing:
        raise ValueError(f"--dense-from {path}: has no dense network of seed(s) {missing}")
    return found


def measure(
    args: argparse.Namespace,
    data: Dataset,
    seed: int,
    lsh: LSHConfig,
    train_config: TrainConfig,
    dense_done: Any,
) -> dict[str, Any]:
    """Train and evaluate the networks of one seed: {kind: evaluate() dict}, kind in lsh,
    dense, fixed as --compare asks, the training seconds of the float networks and the LSH
    network's recall after every epoch (recall_by_epoch) and at the end (recall)."""
    out: dict[str, Any] = {"seed": seed}
    kinds = [("lsh", lsh)] + ([("dense", None)] if "dense" in COMPARE[args.compare] else [])
    recall_x = data.x_test[: args.recall]
    for kind, cfg in kinds:
        if kind == "dense" and dense_done is not None:
            out["dense"] = {**dense_done[seed], "from": args.dense_from}
            continue
        net = Network(data.n_features, args.hidden, data.n_classes, cfg, seed=seed)
        seconds, recall_by_epoch, accuracy_by_epoch = 0.0, [], []
        for _ in range(args.epochs):  # an epoch at a time, to measure recall in between
            label = f"seed {seed} {kind}"
            reports = train(net, data, 1, label, total=args.epochs, config=train_config)
            seconds += sum(r.seconds for r in reports)
            if kind == "lsh" and args.recall:
                recall_by_epoch.append(exact_topk_recall(net, recall_x))
                progress(f"seed {seed} lsh: recall of the exact top-k {recall_by_epoch[-1]}")
            if args.curve:  # prediction only: it changes neither the weights nor the tables
                accuracy_by_epoch.append(net.evaluate(data.x_test, data.y_test)["accuracy"])
                progress(f"seed {seed} {kind}: test accuracy {accuracy_by_epoch[-1] * 100:.2f}%")
        out[kind] = net.evaluate(data.x_test, data.y_test)
        out[kind]["train_seconds"] = seconds
        if args.curve:
            out[kind]["accuracy_by_epoch"] = accuracy_by_epoch
        if args.save:
            net.data = data.record()  # as `edge-lsh train --out` keeps it: export calibrates on it
            saved = Path(args.save) / f"{kind}-seed{seed}.npz"
            net.save(saved)
            out[kind]["saved"] = str(saved)
            progress(f"seed {seed} {kind}: saved {saved}")
        if kind == "lsh" and args.recall:
            out["lsh"]["recall"] = recall_by_epoch[-1]
            out["lsh"]["recall_by_epoch"] = recall_by_epoch
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
            "validate": args.validate,
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
    if "dense" in COMPARE[args.compare]:
        gaps = [(r["dense"]["accuracy"] - r["lsh"]["accuracy"]) * 100 for r in runs]
        summary["gap_points_by_seed"] = gaps
        summary["gap_points_stdev"] = statistics.stdev(gaps) if len(gaps) > 1 else 0.0
        summary["dense_train_seconds"] = mean("dense", "train_seconds")
        summary["dense_from"] = args.dense_from
    summary["lsh_train_seconds"] = mean("lsh", "train_seconds")
    if args.curve:
        summary["lsh_accuracy_by_epoch"] = curve_means(runs, "lsh")
        if "dense" in COMPARE[args.compare] and all(
            "accuracy_by_epoch" in r["dense"] for r in runs
        ):  # an older --dense-from file may not have the dense curve
            summary["dense_accuracy_by_epoch"] = curve_means(runs, "dense")
            by_epoch = [
                [
                    (r["dense"]["accuracy_by_epoch"][e] - r["lsh"]["accuracy_by_epoch"][e]) * 100
                    for r in runs
                ]
                for e in range(args.epochs)
            ]
            summary["gap_points_by_epoch"] = [statistics.mean(g) for g in by_epoch]
            summary["gap_points_by_epoch_stdev"] = [
                statistics.stdev(g) if len(g) > 1 else 0.0 for g in by_epoch
            ]
    if args.recall:
        n_layers = len(runs[0]["lsh"]["recall"])
        summary["recall_inputs"] = min(args.recall, int(data.x_test.shape[0]))
        summary["recall"] = [
            statistics.mean(r["lsh"]["recall"][i] for r in runs) for i in range(n_layers)
        ]
        summary["recall_by_epoch"] = [
            [
                statistics.mean(r["lsh"]["recall_by_epoch"][e][i] for r in runs)
                for i in range(n_layers)
            ]
            for e in range(args.epochs)
        ]
    summary["per_seed"] = [
        {"seed": r["seed"], **{k: r[k] for k in ("lsh", "dense", "fixed") if k in r}} for r in runs
    ]
    return summary


def curve_means(runs: list[dict[str, Any]], kind: str) -> list[float]:
    """The mean over seeds of the test accuracy of `kind` after every epoch."""
    epochs = len(runs[0][kind]["accuracy_by_epoch"])
    return [statistics.mean(r[kind]["accuracy_by_epoch"][e] for r in runs) for e in range(epochs)]


def render(summary: dict[str, Any]) -> str:
    """The per-seed Markdown table with a mean row."""
    kinds = COMPARE[summary["compare"]]
    headers = ["seed", "LSH"]
    if "dense" in kinds:
        headers += ["dense", "gap (points)"]
    if "fixed" in kinds:
        headers += [f"fixed (int{summary['weight_bits']})", "change (points)"]
    with_recall = "recall" in summary
    if with_recall:
        headers += ["recall of top-k"]
    headers += ["LSH train s"] + (["dense train s"] if "dense" in kinds else [])

    def cells(label: str, acc: dict[str, float], extra: dict[str, Any]) -> list[str]:
        row = [label, f"{acc['lsh'] * 100:.2f}%"]
        if "dense" in kinds:
            row += [f"{acc['dense'] * 100:.2f}%", f"{(acc['dense'] - acc['lsh']) * 100:.2f}"]
        if "fixed" in kinds:
            row += [f"{acc['fixed'] * 100:.2f}%", f"{(acc['fixed'] - acc['lsh']) * 100:+.2f}"]
        if with_recall:
            row += [" / ".join(f"{v:.3f}" for v in extra["recall"])]
        row += [f"{extra['lsh_s']:.1f}"]
        if "dense" in kinds:
            row += [f"{extra['dense_s']:.1f}"]
        return row

    def extras(recall: Any, lsh_s: float, dense_s: float | None) -> dict[str, Any]:
        return {"recall": recall, "lsh_s": lsh_s, "dense_s": dense_s}

    rows = [
        cells(
            str(r["seed"]),
            {k: r[k]["accuracy"] for k in ("lsh", *kinds)},
            extras(
                r["lsh"].get("recall"),
                r["lsh"]["train_seconds"],
                r["dense"]["train_seconds"] if "dense" in r else None,
            ),
        )
        for r in summary["per_seed"]
    ]
    means = {k: summary[f"{k}_accuracy"] for k in ("lsh", *kinds)}
    rows.append(
        cells(
            "mean",
            means,
            extras(
                summary.get("recall"),
                summary["lsh_train_seconds"],
                summary.get("dense_train_seconds"),
            ),
        )
    )
    return markdown_table(headers, rows)


def run(args: argparse.Namespace) -> int:
    lsh, train_config = configs(args.set)
    if args.save and not Path(args.save).is_dir():
        raise ValueError(f"--save {args.save}: not a folder")
    if args.dense_from and args.split_seed == EACH:
        raise ValueError("--dense-from needs one split for every seed, not --split-seed each")
    if args.dense_from and "dense" not in COMPARE[args.compare]:
        raise ValueError(f"--dense-from needs --compare dense or both, not {args.compare}")
    if args.save and args.validate:
        raise ValueError(
            "--save with --validate: a saved network records how to load its "
            "split again, and the validation split is not one load() makes"
        )
    data = None if args.split_seed == EACH else load_split(args, args.split_seed)
    dense_done = dense_results(args, data, train_config) if data is not None else None
    runs = []
    for seed in args.seeds:
        split = data if data is not None else load_split(args, seed)
        runs.append(measure(args, split, seed, lsh, train_config, dense_done))
    summary = summarise(args, runs, split, lsh, train_config)
    print(
        f"**{args.data}, {layers_text(summary['layers'])}, {args.epochs} epoch(s), LSH "
        f"{lsh.family} K={lsh.bits} L={lsh.tables_text()} at {lsh.active_fraction * 100:g}% "
        f"active, split seed {args.split_seed}"
        + (f", validated on the last {args.validate} training rows" if args.validate else "")
        + "**\n"
    )
    print(render(summary))
    line = (
        f"\n{args.data}: LSH {summary['lsh_accuracy'] * 100:.2f}% at "
        f"{summary['multiplication_fraction'] * 100:.2f}% of the multiplications"
    )
    if "gap_points" in summary:
        line += (
            f", dense {summary['dense_accuracy'] * 100:.2f}% (gap {summary['gap_points']:.2f} "
            f"+- {summary['gap_points_stdev']:.2f} points over seeds, training "
            f"{summary['train_speedup']:.1f}x faster with LSH)"
        )
    if "recall" in summary:
        line += (
            f", recall of the exact top-k "
            f"{' / '.join(f'{v:.3f}' for v in summary['recall'])} (LSH layers, "
            f"{summary['recall_inputs']} test inputs)"
        )
    if "fixed_change_points" in summary:
        line += (
            f", fixed point {summary['fixed_accuracy'] * 100:.2f}% "
            f"({summary['fixed_change_points']:+.2f} points)"
        )
    print(f"{line}; seeds {args.seeds}")
    if "gap_points_by_epoch" in summary:
        print(
            "gap after every epoch (points, mean +- sd over seeds): "
            + ", ".join(
                f"{e + 1}: {g:.2f} +- {sd:.2f}"
                for e, (g, sd) in enumerate(
                    zip(summary["gap_points_by_epoch"], summary["gap_points_by_epoch_stdev"])
                )
            )
        )
    if args.json:
        write_json_atomic(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(common.main(PROG, build_parser(), run))
