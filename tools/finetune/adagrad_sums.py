"""Where the fixed-point Adagrad sums sit in their uint32 range after fine-tuning (issue 10).

The step (native/src/train_q.c, step 4) adds r^2 per weight, r = clamp(floor(g / 2^16)), to a
uint32 sum that saturates at 2^32 - 1, and divides by isqrt(sum) + 1. If the sums stay tiny,
the division does not normalize (the step follows g, as SGD would); if they saturate, the step
stops shrinking. This prints, per data set, shift and layer, after `--epochs` of fine-tuning with
FixedTrainer's defaults on the shifted rows domain_shift.py wrote into --work: the fraction of
weights touched (sum > 0), of touched sums at 2^32 - 1, and the median touched sum.

    python tools/finetune/adagrad_sums.py --work /tmp/ds [--epochs 1]

The bases and shifted sets are those of `domain_shift.py --work /tmp/ds` (run it first).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from edge_lsh.finetune import DEFAULT_LR, DEFAULT_MOMENTUM, FixedTrainer


def main() -> int:
    p = argparse.ArgumentParser(
        prog="adagrad_sums.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--work", required=True, help="domain_shift.py's --work folder")
    p.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (default 1)")
    p.add_argument("--data", default="mnist5k,digits")
    p.add_argument("--shifts", default="rotate25,scanner")
    args = p.parse_args()
    work = Path(args.work)
    print(
        f"FixedTrainer defaults (Adagrad, lr {DEFAULT_LR:g}, momentum {DEFAULT_MOMENTUM:g}), "
        f"{args.epochs} epoch(s)"
    )
    print("| data | shift | layer | touched | saturated (of touched) | median touched sum |")
    print("|---|---|---|---|---|---|")
    for dataset in args.data.split(","):
        for shift in args.shifts.split(","):
            base, shifted = work / f"{dataset}-base.elsh", work / f"{dataset}-{shift}.npz"
            if not (base.exists() and shifted.exists()):
                sys.exit(f"adagrad_sums.py: {base} or {shifted} missing: run domain_shift.py")
            d = np.load(shifted)
            tr = FixedTrainer(base)
            tr.fit(d["x_train"], d["y_train"], epochs=args.epochs)
            for layer in range(tr.model.n_layers):
                acc = tr.layer_state(layer)["acc_w"]
                if acc is None:
                    continue
                touched = acc > 0
                n = max(int(touched.sum()), 1)
                med = float(np.median(acc[touched])) if touched.any() else 0.0
                print(
                    f"| {dataset} | {shift} | {layer} | {touched.mean() * 100:.1f}% | "
                    f"{(acc == 2**32 - 1).sum() / n * 100:.1f}% | {med:.3g} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
