"""The float fine-tuning of domain_shift.py (`train --from`: Network.fit on the shifted half B)
with other optimizer settings than train's defaults, to tell a fixed-point gap from a settings
gap (issue 10). Prints the test accuracy on the shifted test split after each epoch.

    python tools/finetune/float_settings.py --work /tmp/ds --data digits --shifts rotate25 \\
        --settings 0.02:0.5 0.01:0 0.01:0.5

Each setting is LR:MOMENTUM (momentum constant: momentum_start = momentum_end); everything
else is train's default (defaults.TRAIN). The bases and shifted sets are those domain_shift.py
wrote into --work.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from edge_lsh import defaults
from edge_lsh.network import Network


def main() -> int:
    p = argparse.ArgumentParser(
        prog="float_settings.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--work", required=True, help="domain_shift.py's --work folder")
    p.add_argument("--data", default="digits")
    p.add_argument("--shifts", default="rotate25,scanner")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--settings", nargs="+", default=["0.02:0.5", "0.01:0"], help="LR:MOMENTUM")
    args = p.parse_args()
    work = Path(args.work)
    for spec in args.settings:
        try:
            lr, mom = (float(v) for v in spec.split(":"))
        except ValueError:
            p.error(f"--settings {spec!r}: expected LR:MOMENTUM")
        tc = dataclasses.replace(defaults.TRAIN, lr=lr, momentum_start=mom, momentum_end=mom)
        for dataset in args.data.split(","):
            for shift in args.shifts.split(","):
                base, shifted = work / f"{dataset}-base.npz", work / f"{dataset}-{shift}.npz"
                if not (base.exists() and shifted.exists()):
                    sys.exit(f"float_settings.py: {base} or {shifted} missing: run domain_shift.py")
                d = np.load(shifted)
                net = Network.load(base)
                accs = []
                for _ in range(args.epochs):
                    net.fit(d["x_train"], d["y_train"], epochs=1, train=tc)
                    accs.append(float(np.mean(net.predict(d["x_test"]) == d["y_test"])))
                print(
                    f"float {dataset} {shift} lr {lr:g} momentum {mom:g}: after each epoch "
                    + " ".join(f"{a * 100:.1f}%" for a in accs),
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
