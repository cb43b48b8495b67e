"""``edge-lsh bench``: an .elsh model against its dense equivalents and LiteRT, in one process
and one run, round robin, medians (edge_lsh/interop/bench.py says what each row runs)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edge_lsh.cli.argtypes import non_negative_float, positive_int
from edge_lsh.cli.common import HelpFormatter, add_label_column_arg, is_elsh, load_model_data
from edge_lsh.data import SPEC_HELP, data_record
from edge_lsh.errors import DataError, ModelFileError
from edge_lsh.fileio import check_output_file
from edge_lsh.report import selection_markdown


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "bench",
        formatter_class=HelpFormatter,
        help="latency, throughput, accuracy and size against dense and LiteRT, in one run",
        description="Benchmark MODEL (.elsh) in one process: the fixed-point LSH kernel, the "
        "same kernel computing every neuron (dense int8), the float LSH network it was "
        "exported from, numpy dense float32, and LiteRT on the dense equivalent in int8 and "
        "float32 (exported from MODEL here, or given with --tflite). Rounds run every method "
        "once, in rotating order; medians and p90 over rounds. Without LiteRT installed its "
        'rows are skipped (pip install ".[tflite]").\n\n'
        "Per row: batch-1 latency in the C kernel's loop (our kernels) and per Python call, "
        "throughput at batch 64, accuracy on the test split, multiplications per sample and "
        "model bytes. A Markdown table on stdout (or JSON with --json); progress on stderr.",
        epilog=SPEC_HELP,
    )
    p.add_argument("model", metavar="MODEL", help="an .elsh file (from `edge-lsh export`)")
    p.add_argument(
        "--data",
        metavar="SPEC",
        help="data set (see Data specs; default: the model's own, its held-out split)",
    )
    p.add_argument(
        "--float",
        dest="float_model",
        metavar="MODEL.npz",
        help="the float model for the float LSH row (default: the source_model the .elsh "
        "INFO names, looked for beside the .elsh file)",
    )
    p.add_argument(
        "--tflite",
        action="append",
        metavar="FILE",
        help="a .tflite file to run in LiteRT instead of the one exported here (int8 or float "
        "by its weights; repeat for both)",
    )
    p.add_argument(
        "--samples", type=positive_int, default=500, help="test rows timed (the first N)"
    )
    p.add_argument("--rounds", type=positive_int, default=5, help="rounds of every method")
    p.add_argument(
        "--settle",
        type=non_negative_float,
        default=0.05,
        help="untimed pause in seconds before each method's turn",
    )
    p.add_argument("--seed", type=int, help="seed of the data split (default: the model's)")
    p.add_argument("--plot", metavar="PNG", help="also draw latency and accuracy to this PNG")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    add_label_column_arg(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from edge_lsh.fixed import FixedPointModel
    from edge_lsh.interop.bench import bench, markdown, plot

    if not is_elsh(args.model):
        raise ModelFileError(
            f"{args.model}: not an .elsh file; bench takes the model `edge-lsh export` writes"
        )
    if args.plot:
        check_output_file(args.plot, "plot")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise DataError("--plot needs matplotlib: pip install matplotlib") from None
    fixed = FixedPointModel.load(args.model)
    record = data_record(fixed.info.get("data"), args.model)
    data = load_model_data(args.data, args.seed, None, args.label_column, record, args.model)
    if data.n_features != fixed.n_in:
        raise DataError(f"{data.name} has {data.n_features} features; the model takes {fixed.n_in}")

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    progress(f"{args.model} on {data.name}: {args.rounds} rounds of {args.samples} rows")
    result = bench(
        args.model,
        data.x_test,
        data.y_test,
        data.x_train[:1000],
        float_model=args.float_model,
        tflite=args.tflite,
        samples=args.samples,
        repeats=args.rounds,
        settle=args.settle,
        progress=progress,
    )
    table = markdown(result)
    layers = "-".join(map(str, result.setup["layers"]))
    if args.plot:
        load = result.setup["machine"]["load_average"]
        busy = (
            f", load average {load[0]:.1f} on {result.setup['machine']['cpu_count']} cores"
            if load
            else ""
        )
        plot(result, args.plot, f"{layers} on {data.name}, batch 1, one thread{busy}")
        progress(f"wrote {args.plot}")
    if args.json:
        out = {
            "data": data.name,
            **result.setup,
            "rows": result.rows,
            "notes": result.notes,
            "markdown": table,
        }
        print(json.dumps(out), flush=True)
        return 0
    print(f"## {layers} on {data.name}\n")
    print(table)
    print()
    print("Selection of the fixed-point LSH row (an untimed pass; ns per input, its own clock):")
    print()
    print(selection_markdown(result.rows["fixed_lsh"]["selection"]))
    print()
    for note in result.notes:
        print(f"- {note}")
    s = result.setup
    print(
        f"- {s['timed_samples']} rows timed x {s['rounds']} rounds, round robin; one thread; "
        f"machine {s['machine']['platform']}, load {s['machine']['load_average']}"
    )
    return 0
