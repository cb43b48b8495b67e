"""The fixed-point fine-tuning of domain_shift.py (`finetune`: FixedTrainer on the shifted half
B) with its accuracy on the shifted test split after every epoch: the counterpart of
float_settings.py, to see where the fixed path falls behind the float one (issue 10).

    python tools/finetune/fixed_epochs.py --work /tmp/ds --data mnist5k --shifts scanner \\
        --lr 0.01 --train-layers all

The bases and shifted sets are those domain_shift.py wrote into --work. Diagnosis only: the
numbers are on the test split, so nothing may be selected with them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from edge_lsh.finetune import DEFAULT_LR, DEFAULT_MOMENTUM, FixedTrainer


def main() -> int:
    p = argparse.ArgumentParser(
        prog="fixed_epochs.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--work", required=True, help="domain_shift.py's --work folder")
    p.add_argument("--data", default="mnist5k")
    p.add_argument("--shifts", default="rotate25,scanner")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=DEFAULT_LR)
    p.add_argument("--momentum", type=float, default=DEFAULT_MOMENTUM)
    p.add_argument("--train-layers", default="all")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    work = Path(args.work)
    for dataset in args.data.split(","):
        for shift in args.shifts.split(","):
            base, shifted = work / f"{dataset}-base.elsh", work / f"{dataset}-{shift}.npz"
            if not (base.exists() and shifted.exists()):
                p.exit(2, f"fixed_epochs.py: {base} or {shifted} missing: run domain_shift.py\n")
            d = np.load(shifted)
            tr = FixedTrainer(
                base,
                train_layers=args.train_layers,
                lr=args.lr,
                momentum=args.momentum,
                seed=args.seed,
            )
            accs = []
            for _ in range(args.epochs):
                tr.fit(d["x_train"], d["y_train"], epochs=1)
                accs.append(tr.evaluate(d["x_test"], d["y_test"])["accuracy"])
            print(
                f"fixed {dataset} {shift} lr {args.lr:g} momentum {args.momentum:g} layers "
                f"{args.train_layers}: after each epoch "
                + " ".join(f"{a * 100:.1f}%" for a in accs),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
