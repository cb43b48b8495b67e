"""Scratch experiment (issue 13): a different number of hash tables (and pooling) per layer.

LSHConfig takes one `tables` for every LSH layer; the C kernel's elsh_net_config and the
.elsh LAYER section hold one per layer. Network.__init__ reads `lsh.tables` once per LSH
layer, in layer order, so a stand-in config that answers `tables` from a list gives each
layer its own L without touching the package (pool_for likewise the pooling). With the
default list (100,100 and 0,0) the network is byte for byte the default one (arena, weights,
hash functions and tables compared at init). Training, recall and accuracy as
tools/bench/accuracy.py measures them (split seed 0). From the repository's root:

  PYTHONPATH=. python tools/bench/results/2026-11-30-selection-accuracy-idx-perlayer.py \
      --data idx:/work/mnist-idx --limit 10000 --hidden 1000,1000 --epochs 3 \
      --tables 100,25 --pool 0,0 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tools/bench

import accuracy  # noqa: E402
from common import progress, train  # noqa: E402

from edge_lsh import defaults  # noqa: E402
from edge_lsh.data import load  # noqa: E402
from edge_lsh.network import Network  # noqa: E402


class PerLayer:
    """defaults.LSH, except that `tables` answers the next entry of a list on every read and
    pool_for(n_in) the next entry of another (0: the automatic pooling)."""

    def __init__(self, tables: list[int], pools: list[int]) -> None:
        self._tables = iter(tables)
        self._pools = iter(pools)

    def __getattr__(self, name: str) -> Any:
        if name == "tables":
            return next(self._tables)
        if name == "pool_for":
            pool = next(self._pools)
            return lambda n_in: min(pool, n_in) if pool else defaults.LSH.pool_for(n_in)
        return getattr(defaults.LSH, name)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--limit", type=int)
    p.add_argument("--hidden", required=True)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--tables", required=True, help="L of each LSH layer, e.g. 100,25")
    p.add_argument("--pool", help="pooling of each LSH layer, e.g. 0,16 (0: automatic)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recall", type=int, default=1000)
    p.add_argument("--json")
    args = p.parse_args()
    hidden = [int(h) for h in args.hidden.split(",")]
    tables = [int(t) for t in args.tables.split(",")]
    pools = [int(t) for t in args.pool.split(",")] if args.pool else [0] * len(tables)
    data = load(args.data, seed=0, limit=args.limit)
    net = Network(data.n_features, hidden, data.n_classes, PerLayer(tables, pools), seed=args.seed)  # type: ignore[arg-type]
    got = [net.layer_info(i).get("tables") for i in range(net.n_layers)]
    got_pool = [net.layer_info(i).get("pool") for i in range(net.n_layers)]
    progress(f"tables per layer: {got}, pool per layer: {got_pool}")
    net.lsh = defaults.LSH  # the rest of the trainer reads active_fraction/center only
    seconds, by_epoch = 0.0, []
    start = time.perf_counter()
    for _ in range(args.epochs):
        reports = train(net, data, 1, f"tables {args.tables} pool {pools}", total=args.epochs)
        seconds += sum(r.seconds for r in reports)
        by_epoch.append(accuracy.exact_topk_recall(net, data.x_test[: args.recall]))
        progress(f"recall {by_epoch[-1]}")
    result = {
        "data": args.data,
        "limit": args.limit,
        "layers": net.layer_sizes,
        "epochs": args.epochs,
        "seed": args.seed,
        "tables_per_layer": got,
        "pool_per_layer": got_pool,
        "accuracy": net.evaluate(data.x_test, data.y_test)["accuracy"],
        "recall": by_epoch[-1],
        "recall_by_epoch": by_epoch,
        "recall_inputs": args.recall,
        "train_seconds": seconds,
        "wall_seconds": time.perf_counter() - start,
    }
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
