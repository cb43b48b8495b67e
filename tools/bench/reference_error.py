"""How far the C forward pass is from the numpy reference (edge_lsh.oracle.reference), in numbers:
the largest relative error of the output probabilities and the share of inputs whose active
sets agree in every layer, over networks of every hash family, trained one epoch.

    python tools/bench/reference_error.py [--data digits] [--inputs 200]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from edge_lsh import LSHConfig, Network
from edge_lsh.data import load
from edge_lsh.oracle import reference as R

CONFIGS = {
    "ternary, pooled": LSHConfig(family="ternary", bits=3, tables=50),
    "simhash, pooled": LSHConfig(family="simhash", bits=4, tables=50),
    "dwta, no pooling": LSHConfig(family="dwta", bits=6, tables=50),
    "ternary, union": LSHConfig(family="ternary", bits=3, tables=50, select="union"),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default="digits")
    p.add_argument("--inputs", type=int, default=200, help="test inputs per network")
    args = p.parse_args()
    data = load(args.data)
    worst_all = 0.0
    for name, cfg in CONFIGS.items():
        for hidden in ([500], [500, 300]):
            net = Network(data.n_features, hidden, data.n_classes, cfg, seed=0)
            net.fit(data.x_train, data.y_train, epochs=1)
            worst, same = 0.0, 0
            x = data.x_test[: args.inputs]
            probs = net.predict_proba(x)
            for row, p_c in zip(x, probs):
                net.predict(row[None])
                ref = R.trace(net, row)
                same += all(
                    np.array_equal(net.last_active(i), ref.active[i]) for i in range(net.n_layers)
                )
                p_r = ref.probs(net.n_classes)
                big = p_r > 1e-6
                worst = max(worst, float((np.abs(p_c[big] - p_r[big]) / p_r[big]).max()))
            worst_all = max(worst_all, worst)
            print(
                f"{name:18s} {'-'.join(map(str, net.layer_sizes)):14s} "
                f"max rel error {worst:.2e}  active sets identical {same}/{len(x)}"
            )
    print(f"max relative probability error overall: {worst_all:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
