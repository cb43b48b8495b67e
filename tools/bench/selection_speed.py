"""Issue 13's speed acceptance in one command: `edge-lsh bench` on the model (batch 1, every method
round robin in one process), then the two figures it asks for, read from that one run:

  speed      LiteRT int8 per Python call / our fixed-point LSH per input in the C kernel's
             loop (float inputs, quantization included), and the same with our per-call figure
  selection  per layer and over the network, the nanoseconds of hashing, counting and choosing
             (selection) against those of the dot products (multiply): medians per input from
             FixedPointModel.selection_stats, timed in a pass without the recall's work

A Markdown report on stdout (with the date, the machine and its load average at the start and
the end: on a shared machine the times are not worth much), the bench's own JSON with --json.

    python tools/bench/selection_speed.py --model /work/sel/m.elsh
    python tools/bench/selection_speed.py --model M.elsh --samples 500 --rounds 15 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import common

STEPS = ("hash", "count", "select", "multiply")


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(
        "selection_speed.py",
        "Issue 13's speed figures from one `edge-lsh bench` run: LiteRT int8 / our LSH "
        "latency, and selection (hash + count + select) against multiply per layer.",
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="FILE.elsh",
        help="the .elsh model (issue 13: 784-1000-1000-10 at 5%%)",
    )
    p.add_argument(
        "--data",
        metavar="SPEC",
        help="data set of the bench (default: the model's own, its held-out split)",
    )
    p.add_argument(
        "--samples", type=common.positive_int, default=500, metavar="N", help="test rows timed"
    )
    p.add_argument(
        "--rounds", type=common.positive_int, default=15, metavar="N", help="rounds of every method"
    )
    common.add_common_args(p)
    return p


def _bench(args: argparse.Namespace) -> dict[str, Any]:
    from edge_lsh.cli import main as cli_main

    argv = ["bench", args.model, "--samples", str(args.samples), "--rounds", str(args.rounds)]
    if args.data:
        argv += ["--data", args.data]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli_main([*argv, "--json"])
    if rc != 0:
        raise ValueError(f"edge-lsh {' '.join(argv)} failed with exit status {rc}")
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def report(bench: dict[str, Any], ended: dict[str, Any]) -> str:
    rows = bench["rows"]
    ours = rows["fixed_lsh"]
    lines = [f"## Issue 13 speed: {'-'.join(map(str, bench['layers']))} on {bench['data']}", ""]
    lines.append(
        f"{bench['timed_samples']} rows timed x {bench['rounds']} rounds, round robin, one "
        f"process; {common.machine_line(ended)}."
    )
    lines += ["", "| runtime | C loop µs | per call µs |", "|---|--:|--:|"]
    for row in rows.values():
        c_loop, call = row.get("c_loop_median_us"), row.get("per_call_median_us")
        lines.append(
            f"| {row['label']} | {'' if c_loop is None else f'{c_loop:.2f}'} | "
            f"{'' if call is None else f'{call:.2f}'} |"
        )
    lite = rows.get("litert_int8")
    lines.append("")
    if lite and lite.get("per_call_median_us"):
        lite_us = float(lite["per_call_median_us"])
        lines.append(
            f"**LiteRT int8 per call / our LSH C loop: {lite_us / ours['c_loop_median_us']:.2f}x** "
            f"(per call / per call: {lite_us / ours['per_call_median_us']:.2f}x)."
        )
    else:
        lines.append("LiteRT is not installed: no ratio (pip install '.[tflite]').")
    lines += [
        "",
        "| layer | hash | count | select | selection | multiply | recall |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    total = dict.fromkeys(("selection", "multiply"), 0.0)
    for s in ours["selection"]:
        ns = s["ns_per_input"]
        sel = ns["hash"] + ns["count"] + ns["select"]
        total["selection"] += sel
        total["multiply"] += ns["multiply"]
        recall = "" if s["recall"] is None else f"{s['recall']:.3f}"
        cells = " | ".join(f"{ns[k] / 1e3:.2f}" for k in STEPS[:3])
        lines.append(
            f"| {s['layer']} | {cells} | {sel / 1e3:.2f} | {ns['multiply'] / 1e3:.2f} | {recall} |"
        )
    lines.append(
        f"| all | | | | **{total['selection'] / 1e3:.2f}** | **{total['multiply'] / 1e3:.2f}** | |"
    )
    lines += [
        "",
        "µs per input, medians (FixedPointModel(fast=True).selection_stats, the binding's clock "
        "around each step). Selection is hash + count + select.",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if not Path(args.model).is_file():
        raise ValueError(f"{args.model}: no such model file")
    started = common.machine_info()
    bench = _bench(args)
    ended = common.machine_info(started)
    print(report(bench, ended))
    if args.json:
        bench["machine_info"] = ended
        if args.json == common.STDOUT:
            print(json.dumps(bench))
        else:
            common.write_json_atomic(args.json, bench)
    return 0


if __name__ == "__main__":
    sys.exit(common.main("selection_speed.py", build_parser(), run))
