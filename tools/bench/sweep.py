"""Accuracy sweeps: one JSON object of settings per line on stdin, mean test accuracy over
network seeds on stdout (one JSON line each). Keys: LSHConfig fields, TrainConfig fields,
"epochs", "hidden" (int), "dense" (true for the baseline). Unset keys take edge_lsh.defaults.

    printf '%s\\n' '{"bits": 3}' '{"bits": 4}' | python tools/bench/sweep.py digits 0,1,2,3,4
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import fields

from edge_lsh import defaults
from edge_lsh.data import load
from edge_lsh.network import LSHConfig, Network, TrainConfig

LSH_KEYS = {f.name for f in fields(LSHConfig)}
TRAIN_KEYS = {f.name for f in fields(TrainConfig)}


def run(spec: str, seeds: list[int], settings: dict) -> dict:
    data = load(spec)
    settings = dict(settings)
    epochs = int(settings.pop("epochs", defaults.EPOCHS))
    hidden = int(settings.pop("hidden", defaults.HIDDEN))
    dense = bool(settings.pop("dense", False))
    unknown = set(settings) - LSH_KEYS - TRAIN_KEYS
    if unknown:
        raise SystemExit(f"sweep: unknown keys {sorted(unknown)}")
    lsh_kw = {k: v for k, v in settings.items() if k in LSH_KEYS}
    train_kw = {k: v for k, v in settings.items() if k in TRAIN_KEYS}
    lsh = None if dense else LSHConfig(**{**defaults.LSH.__dict__, **lsh_kw})
    train = TrainConfig(**{**defaults.TRAIN.__dict__, **train_kw})
    accs, seconds, frac = [], [], 1.0
    for seed in seeds:
        net = Network(data.n_features, [hidden], data.n_classes, lsh, seed=seed)
        t0 = time.perf_counter()
        net.fit(data.x_train, data.y_train, epochs=epochs, train=train)
        seconds.append(time.perf_counter() - t0)
        ev = net.evaluate(data.x_test, data.y_test)
        accs.append(round(ev["accuracy"] * 100, 2))
        frac = ev["multiplication_fraction"]
    return {
        "accuracy_mean": round(statistics.mean(accs), 2),
        "accuracies": accs,
        "multiplication_percent": round(frac * 100, 2),
        "train_seconds_mean": round(statistics.mean(seconds), 1),
    }


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    spec, seeds = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
    for line in sys.stdin:
        if line.strip():
            settings = json.loads(line)
            print(json.dumps({"settings": settings, **run(spec, seeds, settings)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
