"""How far the C forward pass is from the numpy reference (edge_lsh.oracle.reference), in numbers:
the largest relative error of the output probabilities and the share of inputs whose active
sets agree in every layer, over networks of every hash family, trained one epoch.

    python tools/bench/reference_error.py [--data digits] [--inputs 200]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import common
import numpy as np
from common import (
    add_common_args,
    layers_text,
    load_data,
    positive_int,
    record,
    write_json_atomic,
)

from edge_lsh.network import LSHConfig, Network
from edge_lsh.oracle import reference as R

PROG = "reference_error.py"
CONFIGS = {
    "ternary, pooled": LSHConfig(family="ternary", bits=3, tables=50),
    "simhash, pooled": LSHConfig(family="simhash", bits=4, tables=50),
    "dwta, no pooling": LSHConfig(family="dwta", bits=6, tables=50),
    "ternary, union": LSHConfig(family="ternary", bits=3, tables=50, select="union"),
}
HIDDEN = ([500], [500, 300])


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(PROG, __doc__.split("\n\n")[0])
    add_common_args(p, data="digits", seed=0)
    p.add_argument(
        "--inputs",
        type=positive_int,
        default=200,
        metavar="N",
        help="test inputs per network (the first N)",
    )
    return p


def compare(net: Network, x: np.ndarray) -> dict[str, Any]:
    """The C forward pass against the reference on every row of x."""
    worst, same = 0.0, 0
    probs = net.predict_proba(x)
    for row, p_c in zip(x, probs):
        net.predict(row[None])
        ref = R.trace(net, row)
        same += all(np.array_equal(net.last_active(i), ref.active[i]) for i in range(net.n_layers))
        p_r = ref.probs(net.n_classes)
        big = p_r > 1e-6
        worst = max(worst, float((np.abs(p_c[big] - p_r[big]) / p_r[big]).max()))
    return {"max_relative_error": worst, "active_sets_identical": same, "inputs": len(x)}


def run(args: argparse.Namespace) -> int:
    data = load_data(args)
    x = data.x_test[: args.inputs]
    results = []
    for name, cfg in CONFIGS.items():
        for hidden in HIDDEN:
            net = Network(data.n_features, hidden, data.n_classes, cfg, seed=args.seed)
            net.fit(data.x_train, data.y_train, epochs=1)
            r = {"config": name, "layers": net.layer_sizes, **compare(net, x)}
            results.append(r)
            print(
                f"{name:18s} {layers_text(net.layer_sizes):14s} "
                f"max rel error {r['max_relative_error']:.2e}  "
                f"active sets identical {r['active_sets_identical']}/{r['inputs']}"
            )
    worst = max(r["max_relative_error"] for r in results)
    print(f"max relative probability error overall: {worst:.2e}")
    if args.json:
        write_json_atomic(
            args.json,
            record(
                PROG,
                {
                    "data": args.data,
                    "seed": args.seed,
                    "networks": results,
                    "max_relative_error": worst,
                },
            ),
        )
    return 0


if __name__ == "__main__":
    sys.exit(common.main(PROG, build_parser(), run))
