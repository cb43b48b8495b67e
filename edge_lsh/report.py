"""What evaluation reports, shared by the float Network and the fixed-point model, and how the
CLI prints it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

Ops = dict[str, dict[str, int]]
OPS_FIELDS = ("mul", "add", "cmp", "weight_bytes", "table_bytes")
# the evaluation figures `train --json` and `eval --json` report, for float and .elsh models
SUMMARY_KEYS = (
    "accuracy",
    "multiplications_per_sample",
    "dense_multiplications_per_sample",
    "multiplication_fraction",
    "hash_multiplications_per_sample",
    "additions_per_sample",
    "weight_bytes_per_sample",
)


def ops_dict(c_ops: Any) -> dict[str, int]:
    """An elsh_ops struct from the C kernel as a plain dict."""
    return {f: int(getattr(c_ops, f)) for f in OPS_FIELDS}


def evaluation(
    predict: Callable[[np.ndarray], np.ndarray],
    ops: Callable[[], Ops],
    dense_multiplications: int,
    x: np.ndarray,
    y: np.ndarray,
    clock: Callable[[], float],
) -> dict[str, float]:
    """Accuracy and per-sample inference cost (hashing included) of predict on (x, y), from
    the op counters read before and after."""
    n = x.shape[0]
    if n == 0:
        raise ValueError("no samples to evaluate")
    before = ops()
    t0 = clock()
    pred = predict(x)
    seconds = clock() - t0
    after = ops()

    def per_sample(phase: str, key: str) -> float:
        return (after[phase][key] - before[phase][key]) / n

    def both(key: str) -> float:
        return per_sample("hash", key) + per_sample("forward", key)

    hash_mul = per_sample("hash", "mul")
    return {
        "accuracy": float((pred == y).mean()),
        "samples": float(n),
        "multiplications_per_sample": both("mul"),
        "hash_multiplications_per_sample": hash_mul,
        "additions_per_sample": both("add"),
        "comparisons_per_sample": both("cmp"),
        "weight_bytes_per_sample": both("weight_bytes"),
        "table_bytes_per_sample": per_sample("hash", "table_bytes"),
        "dense_multiplications_per_sample": float(dense_multiplications),
        "multiplication_fraction": both("mul") / dense_multiplications,
        "inference_seconds": seconds,
        "inference_us_per_sample": 1e6 * seconds / n,
    }


def format_accuracy(fraction: float) -> str:
    """How every command shows an accuracy to people: a percentage with two decimals."""
    return f"{100.0 * fraction:.2f}%"


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    """One `key value` line each on stdout (accuracies as percentages); with as_json only the
    dict, as one line of JSON (accuracies as fractions), so stdout is pure JSON."""
    if as_json:
        print(json.dumps(summary), flush=True)
        return
    for key, value in summary.items():
        if key.endswith("_points") and isinstance(value, float):  # already percentage points
            value = f"{value:+.2f} points"
        elif key.startswith("accuracy") or key.endswith("accuracy"):
            value = format_accuracy(value) if isinstance(value, float) else value
        elif isinstance(value, float):
            value = f"{value:.6g}"
        print(f"{key:34s} {value}")


def selection_markdown(stats: list[dict[str, Any]]) -> str:
    """A Markdown table of FixedPointModel.selection_stats: a line per layer with its recall of
    the exact top-k, bucket entries and candidates per input, and ns per step."""
    lines = [
        "| layer | k | recall of exact top-k | bucket entries | candidates | ns hash | ns count "
        "| ns select | ns multiply |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in stats:
        recall = "-" if s.get("recall") is None else f"{s['recall']:.3f}"
        ns = s.get("ns_per_input") or {}
        steps = ("hash", "count", "select", "multiply")
        cells = [f"{ns[k]:,.0f}" if k in ns else "-" for k in steps]
        k = s["k"] if s["lsh"] else f"{s['n_out']} (dense)"
        lines.append(
            f"| {s['layer']} | {k} | {recall} | {s['entries_per_input']:,.0f} | "
            f"{s['candidates_per_input']:,.0f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)
