"""Float against fixed-point fine-tuning, epoch by epoch, at the SAME learning rate and over the
same shuffle seeds: where (and whether) the fixed path falls behind the float one (issue 10).

For each seed S: float `train --from` (Network.fit, lr --lr, its sample order seeded with S, as
`train --from --shuffle-seed S`) and fixed `finetune` (FixedTrainer, lr --lr, rounding and
order seeded with S, as `finetune --seed S --shuffle-seed S`), one epoch at a time on the
shifted half B that domain_shift.py wrote into --work. By default they train on the first 80%
of half B and are scored on its last 20% (a validation split: choices may be made with it);
--test trains on all of half B and scores the shifted test split (diagnosis only: select
nothing with it).

    python tools/finetune/paired_curves.py --work /tmp/ds --data digits --shift rotate25 \\
        --lr 0.01 --seeds 0,1,2,3,4 --test
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edge_lsh import defaults
from edge_lsh.finetune import DEFAULT_MOMENTUM, FixedTrainer
from edge_lsh.network import Network, TrainConfig


def curve_float(
    base: Path,
    x: np.ndarray,
    y: np.ndarray,
    xv: np.ndarray,
    yv: np.ndarray,
    lr: float,
    seed: int,
    epochs: int,
    last_lr: float | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[float]:
    """Float `train --from --shuffle-seed seed` one epoch at a time; the accuracy on (xv, yv)
    after each. last_lr: the last epoch at this lr instead (a schedule `train` itself does not
    offer; for comparisons with the fixed path's). overrides: other TrainConfig fields replaced
    (l2_probe.py: l2, rebuild)."""
    net = Network.load(base)
    net.reseed_shuffle(seed)
    fields = {**defaults.TRAIN.__dict__, **(overrides or {})}
    tc = TrainConfig(**{**fields, "lr": lr})
    accs = []
    for e in range(epochs):
        if last_lr is not None and e == epochs - 1:
            tc = TrainConfig(**{**fields, "lr": last_lr})
        net.fit(x, y, 1, tc)
        accs.append(net.evaluate(xv, yv)["accuracy"])
    return accs


def curve_fixed(
    base: Path | bytes,
    x: np.ndarray,
    y: np.ndarray,
    xv: np.ndarray,
    yv: np.ndarray,
    lr: float,
    momentum: float,
    seed: int,
    epochs: int,
    last_lr: float | None = None,
) -> list[float]:
    """Fixed `finetune --seed seed --shuffle-seed seed` one epoch at a time; the accuracy on
    (xv, yv) after each. last_lr: the last epoch at this lr (FixedTrainer.set_lr)."""
    tr = FixedTrainer(base, lr=lr, momentum=momentum, seed=seed)
    rng = np.random.default_rng(seed)  # FixedTrainer.fit(shuffle_seed=seed)'s orders
    accs = []
    for e in range(epochs):
        if last_lr is not None and e == epochs - 1 and last_lr != lr:
            tr.set_lr(last_lr)  # = resuming the saved state at last_lr's rates, bit for bit
        order = rng.permutation(x.shape[0])
        tr.fit(x[order], y[order], epochs=1)
        accs.append(tr.evaluate(xv, yv)["accuracy"])
    return accs


def main() -> int:
    p = argparse.ArgumentParser(
        prog="paired_curves.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--work", required=True, help="domain_shift.py's --work folder")
    p.add_argument("--data", default="digits")
    p.add_argument("--shift", default="rotate25")
    p.add_argument("--lr", type=float, default=defaults.TRAIN.lr, help="both paths' lr")
    p.add_argument("--momentum", type=float, default=DEFAULT_MOMENTUM, help="fixed momentum")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--paths", default="float,fixed")
    p.add_argument("--test", action="store_true", help="score the test split (diagnosis only)")
    args = p.parse_args()
    work = Path(args.work)
    shifted = work / f"{args.data}-{args.shift}.npz"
    if not shifted.exists():
        p.exit(2, f"paired_curves.py: {shifted} missing: run domain_shift.py --work {work}\n")
    d = np.load(shifted)
    x, y = d["x_train"], d["y_train"]
    if args.test:
        xt, yt, xv, yv = x, y, d["x_test"], d["y_test"]
    else:
        cut = int(x.shape[0] * 0.8)
        xt, yt, xv, yv = x[:cut], y[:cut], x[cut:], y[cut:]
    seeds = [int(s) for s in args.seeds.split(",")]
    scored = "test split" if args.test else f"validation (last {xv.shape[0]} rows of half B)"
    for path in args.paths.split(","):
        curves = []
        for s in seeds:
            if path == "float":
                base = work / f"{args.data}-base.npz"
                curves.append(curve_float(base, xt, yt, xv, yv, args.lr, s, args.epochs))
            else:
                base = work / f"{args.data}-base.elsh"
                curves.append(
                    curve_fixed(base, xt, yt, xv, yv, args.lr, args.momentum, s, args.epochs)
                )
        c = np.asarray(curves) * 100
        last = c[:, -1]
        sd = float(last.std(ddof=1)) if last.size > 1 else 0.0
        print(
            f"{path} {args.data} {args.shift} lr {args.lr:g} ({scored}, seeds {args.seeds}): "
            "mean after each epoch "
            + " ".join(f"{v:.1f}" for v in c.mean(axis=0))
            + " | last epoch per seed "
            + " ".join(f"{v:.1f}" for v in last)
            + f" | mean {last.mean():.2f} sd {sd:.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
