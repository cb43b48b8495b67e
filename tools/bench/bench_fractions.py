"""Accuracy, multiplications and speed of LSH-sparse networks at several active fractions
against the dense path of the same C kernel (the seed paper's table).

Every network (the dense one and one per active fraction) gets the same seed, the same data
and the same number of epochs. Training runs epoch by epoch in round robin over the networks,
and the inference passes likewise, so machine noise is spread over every row; speedups are
ratios of medians measured in this same run. Everything runs in one thread (the kernel has no
threads). The Markdown table goes to stdout, progress to stderr.

    python tools/bench/bench_fractions.py --epochs 2
    python tools/bench/bench_fractions.py --data digits --hidden 200 --json out.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
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
    percent_list,
    positive_int,
    progress,
    record,
    train,
    write_json_atomic,
)

from edge_lsh import defaults
from edge_lsh.data import Dataset
from edge_lsh.network import EpochReport, LSHConfig, Network

PROG = "bench_fractions.py"
DEFAULT_FRACTIONS = "5,10,25,50"


@dataclass
class Row:
    """One network of the table and what was measured on it."""

    active_percent: float  # 100 = the dense path (lsh=None)
    lsh: LSHConfig | None
    net: Network
    epochs: list[EpochReport] = field(default_factory=list)
    infer_seconds: list[float] = field(default_factory=list)
    evaluation: dict[str, float] = field(default_factory=dict)

    @property
    def dense(self) -> bool:
        return self.lsh is None

    @property
    def label(self) -> str:
        if self.dense:
            return "100 % (dense)"
        k = ",".join(str(c) for c in self.net.active_counts()[:-1])
        return f"{format_percent(self.active_percent)} % LSH (k={k})"

    def epoch_median(self) -> float:
        return median([r.seconds for r in self.epochs])


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(
        PROG,
        "Train the same network densely and at several LSH active fractions (same seed,\n"
        "same epochs, one thread) and tabulate test accuracy, multiplications per sample\n"
        "(hashing included), training time per epoch and inference time per sample, with\n"
        "speedups against the dense path measured in the same run. Markdown table on\n"
        "stdout, progress on stderr.",
    )
    # 1000 hidden: the seed paper's network, 784-1000-10
    add_common_args(p, data="mnist5k", hidden="1000", epochs=defaults.EPOCHS, seed=0, limit=True)
    p.add_argument(
        "--fractions",
        type=percent_list,
        default=DEFAULT_FRACTIONS,
        metavar="PCTS",
        help="active fractions of the LSH rows in percent, comma-separated; the dense row "
        "(100) is always added",
    )
    p.add_argument(
        "--repeats",
        type=positive_int,
        default=5,
        metavar="N",
        help="timed inference passes over the test set per network",
    )
    return p


def make_rows(data: Dataset, hidden: list[int], fractions: Sequence[float], seed: int) -> list[Row]:
    """The dense row first, then one LSH row per fraction (100 % means the dense row)."""
    rows = [Row(100.0, None, Network(data.n_features, hidden, data.n_classes, None, seed=seed))]
    for pct in fractions:
        if pct == 100.0:
            continue
        lsh = replace(defaults.LSH, active_fraction=pct / 100.0)
        net = Network(data.n_features, hidden, data.n_classes, lsh, seed=seed)
        rows.append(Row(pct, lsh, net))
    return rows


def rotated(items: Sequence[Row], start: int) -> list[Row]:
    """items in round-robin order beginning at index start (mod len)."""
    s = start % len(items)
    return [*items[s:], *items[:s]]


def train_all(rows: list[Row], data: Dataset, epochs: int) -> None:
    """Train every network for `epochs`, one epoch each in turn (rotating who goes first).

    fit(epochs=1) called repeatedly continues the same schedule (momentum, shuffling) as a
    single fit(epochs=N): the network counts its own epochs."""
    for epoch in range(epochs):
        for row in rotated(rows, epoch):
            row.epochs += train(row.net, data, 1, row.label, total=epochs)


def time_inference(rows: list[Row], data: Dataset, repeats: int) -> None:
    """Accuracy and op counts via evaluate() (also a warm-up pass), then `repeats` timed C
    loops over the whole test set per network, in round robin."""
    for row in rows:
        row.evaluation = row.net.evaluate(data.x_test, data.y_test)
    timers = {id(row): CPredictTimer(row.net, data.x_test) for row in rows}
    for rep in range(repeats):
        for row in rotated(rows, rep):
            row.infer_seconds.append(timers[id(row)].run())
        progress(f"inference repeat {rep + 1}/{repeats} done")
    for row in rows:
        if not np.array_equal(timers[id(row)].pred, row.net.predict(data.x_test)):
            raise RuntimeError(f"{row.label}: timed predictions differ from predict()")


def summarise(rows: list[Row], data: Dataset) -> list[dict[str, Any]]:
    dense = rows[0]
    n_train, n_test = int(data.x_train.shape[0]), int(data.x_test.shape[0])
    dense_epoch = dense.epoch_median()
    dense_infer = median(dense.infer_seconds) / n_test
    out = []
    for row in rows:
        ev = row.evaluation
        epoch_s = row.epoch_median()
        infer_s = median(row.infer_seconds) / n_test
        out.append(
            {
                "label": row.label,
                "active_percent": row.active_percent,
                "dense_path": row.dense,
                "active_per_layer": row.net.active_counts(),
                "lsh": asdict(row.lsh) if row.lsh is not None else None,
                "test_accuracy": ev["accuracy"],
                "multiplications_per_sample": ev["multiplications_per_sample"],
                "hash_multiplications_per_sample": ev["hash_multiplications_per_sample"],
                "dense_multiplications_per_sample": ev["dense_multiplications_per_sample"],
                "multiplication_percent_of_dense": 100.0 * ev["multiplication_fraction"],
                "weight_bytes_per_sample": ev["weight_bytes_per_sample"],
                "train_seconds_per_epoch_median": epoch_s,
                "train_samples_per_second": n_train / epoch_s if epoch_s > 0 else 0.0,
                "train_speedup_vs_dense": dense_epoch / epoch_s if epoch_s > 0 else 0.0,
                "inference_us_per_sample": 1e6 * infer_s,
                "inference_speedup_vs_dense": dense_infer / infer_s if infer_s > 0 else 0.0,
                "final_loss": row.epochs[-1].loss,
                "final_train_accuracy": row.epochs[-1].train_accuracy,
                "epochs": [asdict(r) for r in row.epochs],
                "inference_pass_seconds": row.infer_seconds,
            }
        )
    return out


def render(summary: list[dict[str, Any]]) -> str:
    headers = [
        "active",
        "test acc %",
        "mults/sample",
        "% of dense",
        "train s/epoch",
        "train samples/s",
        "train speedup",
        "infer µs/sample",
        "infer speedup",
    ]
    rows = []
    for s in summary:
        rows.append(
            [
                s["label"],
                f"{s['test_accuracy'] * 100:.2f}",
                f"{s['multiplications_per_sample']:,.0f}",
                f"{s['multiplication_percent_of_dense']:.2f}",
                f"{s['train_seconds_per_epoch_median']:.3f}",
                f"{s['train_samples_per_second']:,.0f}",
                f"{s['train_speedup_vs_dense']:.2f}x",
                f"{s['inference_us_per_sample']:.1f}",
                f"{s['inference_speedup_vs_dense']:.2f}x",
            ]
        )
    return markdown_table(headers, rows)


def run(args: argparse.Namespace) -> int:
    data = load_data(args)
    rows = make_rows(data, args.hidden, args.fractions, args.seed)
    layers = layers_text(rows[0].net.layer_sizes)
    info_start = machine_info()
    progress(
        f"{PROG}: {layers} on {data.name} ({data.x_train.shape[0]} train / "
        f"{data.x_test.shape[0]} test), {len(rows)} networks x {args.epochs} epochs, seed "
        f"{args.seed}"
    )
    train_all(rows, data, args.epochs)
    time_inference(rows, data, args.repeats)
    summary = summarise(rows, data)
    info = machine_info(started=info_start)

    print(
        f"## Active fraction vs dense: {layers} on {data.name} "
        f"({data.x_train.shape[0]} train / {data.x_test.shape[0]} test)\n"
    )
    print(
        f"seed {args.seed}, {args.epochs} epoch(s), single thread; LSH {defaults.LSH.family} "
        f"K={defaults.LSH.bits} L={defaults.LSH.tables}; train s/epoch = median over epochs; "
        f"infer = median of {args.repeats} C-loop passes (lib.elsh_predict) over the test set "
        f"/ its size; speedups = dense median / row median.\n"
    )
    print(render(summary))
    print(f"\nmachine: {machine_line(info)}")

    if args.json:
        write_json_atomic(
            args.json,
            record(
                PROG,
                {
                    "data": data_info(args.data, data, args.limit),
                    "layers": rows[0].net.layer_sizes,
                    "epochs": args.epochs,
                    "seed": args.seed,
                    "repeats": args.repeats,
                    "train_config": asdict(defaults.TRAIN),
                    "threads": 1,
                    "rows": summary,
                },
                machine=info,
            ),
        )
    return 0


if __name__ == "__main__":
    sys.exit(common.main(PROG, build_parser(), run))
