"""LSH against dense, trained by the same code with the same defaults: test accuracy and
multiplications per sample (hashing included), averaged over seeds.

    python tools/bench/accuracy_gap.py --data digits --seeds 0,1,2
    python tools/bench/accuracy_gap.py --data mnist5k --seeds 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from edge_lsh import defaults
from edge_lsh.data import DataError, load
from edge_lsh.network import Network


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default="digits")
    p.add_argument("--hidden", default=str(defaults.HIDDEN), help="e.g. 1000 or 1000,1000")
    p.add_argument("--epochs", type=int, default=defaults.EPOCHS)
    p.add_argument("--seeds", default="0,1,2", help="network seeds (the data split is fixed)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    args = p.parse_args()
    try:
        data = load(args.data)
    except DataError as exc:
        print(f"accuracy_gap: error: {exc}", file=sys.stderr)
        return 2
    hidden = [int(h) for h in args.hidden.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: dict[str, list[dict[str, float]]] = {"lsh": [], "dense": []}
    for seed in seeds:
        for name, cfg in (("lsh", defaults.LSH), ("dense", None)):
            net = Network(data.n_features, hidden, data.n_classes, cfg, seed=seed)
            t0 = time.perf_counter()
            net.fit(data.x_train, data.y_train, epochs=args.epochs, train=defaults.TRAIN)
            seconds = time.perf_counter() - t0
            ev = net.evaluate(data.x_test, data.y_test)
            ev["train_seconds"] = seconds
            rows[name].append(ev)
            print(
                f"seed {seed} {name:5s} accuracy {ev['accuracy'] * 100:6.2f}%  "
                f"mults/sample {ev['multiplications_per_sample']:>10,.0f} "
                f"({ev['multiplication_fraction'] * 100:5.2f}% of dense)  train {seconds:6.1f}s",
                file=sys.stderr,
                flush=True,
            )

    def mean(name: str, key: str) -> float:
        return statistics.mean(r[key] for r in rows[name])

    summary = {
        "data": args.data,
        "layers": [data.n_features, *hidden, data.n_classes],
        "epochs": args.epochs,
        "seeds": seeds,
        "lsh": dict(defaults.LSH.__dict__),
        "lsh_accuracy": mean("lsh", "accuracy"),
        "dense_accuracy": mean("dense", "accuracy"),
        "gap_points": (mean("dense", "accuracy") - mean("lsh", "accuracy")) * 100,
        "lsh_accuracies": [r["accuracy"] for r in rows["lsh"]],
        "dense_accuracies": [r["accuracy"] for r in rows["dense"]],
        "multiplication_fraction": mean("lsh", "multiplication_fraction"),
        "train_speedup": mean("dense", "train_seconds") / mean("lsh", "train_seconds"),
    }
    print(
        f"{args.data}: LSH {summary['lsh_accuracy'] * 100:.2f}% vs dense "
        f"{summary['dense_accuracy'] * 100:.2f}% (gap {summary['gap_points']:.2f} points) at "
        f"{summary['multiplication_fraction'] * 100:.2f}% of the multiplications, seeds {seeds}"
    )
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
