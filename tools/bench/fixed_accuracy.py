"""Fixed-point accuracy against float, over seeds: train with the defaults, quantize (int8
weights, activations calibrated on the first --calib-samples training rows), and evaluate both
on the test split. The fixed-point figure is the C kernel running the exported .elsh file.

    python tools/bench/fixed_accuracy.py --data digits --seeds 0,1,2
    python tools/bench/fixed_accuracy.py --data mnist5k --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from common import (
    check_json_target,
    hidden_sizes,
    machine_info,
    markdown_table,
    positive_int,
    progress,
    run_guarded,
    write_json_atomic,
)

from edge_lsh import defaults, elsh_format
from edge_lsh.data import SPEC_HELP, load
from edge_lsh.fixed import FixedPointModel
from edge_lsh.network import Network
from edge_lsh.quantize import quantize

PROG = "fixed_accuracy.py"


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seeds like 0,1,2") from None
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: expected non-negative seeds like 0,1,2")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0], epilog=SPEC_HELP)
    p.add_argument("--data", default="digits", metavar="SPEC")
    p.add_argument("--hidden", type=hidden_sizes, default=[defaults.HIDDEN])
    p.add_argument("--epochs", type=positive_int, default=defaults.EPOCHS)
    p.add_argument("--seeds", type=seed_list, default=[0, 1, 2])
    p.add_argument("--weight-bits", type=int, choices=[8, 16], default=8)
    p.add_argument("--calib-samples", type=positive_int, default=1000)
    p.add_argument("--json", metavar="FILE")
    return p


def run(args: argparse.Namespace) -> int:
    if args.json:
        check_json_target(args.json)
    rows, per_seed = [], []
    for seed in args.seeds:
        data = load(args.data, seed=seed)
        net = Network(data.n_features, args.hidden, data.n_classes, defaults.LSH, seed=seed)
        progress(f"seed {seed}: training {'-'.join(map(str, net.layer_sizes))} on {data.name}")
        net.fit(data.x_train, data.y_train, epochs=args.epochs, train=defaults.TRAIN)
        qm = quantize(net, data.x_train[: args.calib_samples], weight_bits=args.weight_bits)
        fm = FixedPointModel(elsh_format.elsh_bytes(qm, tables=False))
        acc_f = float((net.predict(data.x_test) == data.y_test).mean())
        acc_q = float((fm.predict(data.x_test) == data.y_test).mean())
        per_seed.append({"seed": seed, "float": acc_f, "fixed": acc_q})
        rows.append(
            [
                str(seed),
                f"{100 * acc_f:.2f}%",
                f"{100 * acc_q:.2f}%",
                f"{100 * (acc_q - acc_f):+.2f}",
            ]
        )
    mf = float(np.mean([r["float"] for r in per_seed]))
    mq = float(np.mean([r["fixed"] for r in per_seed]))
    rows.append(["mean", f"{100 * mf:.2f}%", f"{100 * mq:.2f}%", f"{100 * (mq - mf):+.2f}"])
    print(
        f"**{args.data}, {'-'.join(map(str, net.layer_sizes))}, int{args.weight_bits} weights**\n"
    )
    print(markdown_table(["seed", "float LSH", "fixed LSH", "points"], rows))
    if args.json:
        write_json_atomic(
            args.json,
            {
                "machine": machine_info(),
                "data": args.data,
                "layers": net.layer_sizes,
                "weight_bits": args.weight_bits,
                "seeds": per_seed,
                "mean_float": mf,
                "mean_fixed": mq,
                "mean_change_points": 100 * (mq - mf),
            },
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_guarded(PROG, run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
