"""Fixed-point fine-tuning (edge_lsh.finetune, the C kernel's integer training step) against
float fine-tuning (Network.fit, what ``train --from`` runs) after a domain shift.

A base network is trained on upright images of one half of the training split; the other half,
rotated by --angle degrees (bilinear, scipy.ndimage.rotate), is the fine-tuning set and the
rotated test split the test set. Printed: accuracy upright, on the shifted test before
fine-tuning, after float fine-tuning and after fixed fine-tuning with the same samples and
epochs, the share of the drop the fixed run recovers, the trainer's arena and its
multiplications per sample against the dense network's.

    python tools/bench/qtrain_shift.py                               # digits 64-1000-10
    python tools/bench/qtrain_shift.py --data mnist5k --epochs 3     # 784-1000-10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import positive_int

from edge_lsh.data import load
from edge_lsh.finetune import FixedTrainer, train_layers_count
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import elsh_bytes
from edge_lsh.network import LSHConfig, Network
from edge_lsh.quantize import quantize


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (v > 0 and np.isfinite(v)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data", choices=["digits", "mnist5k"], default="digits", help="data set (default digits)"
    )
    p.add_argument("--hidden", type=positive_int, default=1000, help="hidden width (default 1000)")
    p.add_argument(
        "--base-epochs", type=positive_int, default=10, help="epochs of the base (default 10)"
    )
    p.add_argument("--epochs", type=positive_int, default=3, help="fine-tuning epochs (default 3)")
    p.add_argument("--angle", type=float, default=25.0, help="rotation in degrees (default 25)")
    p.add_argument(
        "--optimizer",
        choices=["adagrad", "sgd"],
        default="adagrad",
        help="fixed optimizer (default adagrad)",
    )
    p.add_argument(
        "--lr", type=positive_float, default=0.01, help="learning rate of both runs (default 0.01)"
    )
    p.add_argument("--train-layers", default="all", help="all, last or N (default all)")
    p.add_argument(
        "--momentum", type=float, default=0.0, help="momentum of the fixed run, 0..0.99 (default 0)"
    )
    p.add_argument("--seed", type=int, default=1, help="network seed (default 1)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        train_layers_count(args.train_layers, 2)  # the network has 2 layers
    except ValueError as exc:
        parser.error(str(exc))
    if not 0.0 <= args.momentum < 1.0:
        parser.error(f"--momentum {args.momentum}: must be in [0, 1)")
    from scipy.ndimage import rotate

    ds = load(args.data, seed=0)
    side = int(round(ds.x_train.shape[1] ** 0.5))

    def rot(x: np.ndarray) -> np.ndarray:
        r = [rotate(v.reshape(side, side), args.angle, reshape=False, order=1) for v in x]
        return np.clip(np.stack(r).reshape(len(x), -1), 0, None).astype(np.float32)

    half = len(ds.x_train) // 2
    base_x, base_y = ds.x_train[:half], ds.y_train[:half]
    ft_x, ft_y = rot(ds.x_train[half:]), ds.y_train[half:]
    te_x, te_y = rot(ds.x_test), ds.y_test
    print(
        f"training the base {ds.x_train.shape[1]}-{args.hidden}-10 on {half} upright rows",
        file=sys.stderr,
    )
    net = Network(ds.x_train.shape[1], [args.hidden], 10, LSHConfig(), seed=args.seed)
    net.fit(base_x, base_y, epochs=args.base_epochs)
    data = elsh_bytes(quantize(net, base_x[:300]))
    fm = FixedPointModel(data)
    upright = fm.evaluate(ds.x_test, ds.y_test)["accuracy"]
    before = fm.evaluate(te_x, te_y)["accuracy"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "base.npz"
        net.save(path, optimizer_state=True)
        fl = Network.load(path)
    print(f"float fine-tuning on {len(ft_x)} rotated rows", file=sys.stderr)
    fl.fit(ft_x, ft_y, epochs=args.epochs)
    float_acc = float((fl.predict(te_x) == te_y).mean())
    print("fixed fine-tuning", file=sys.stderr)
    tr = FixedTrainer(
        data,
        train_layers=args.train_layers,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        seed=0,
    )
    t0 = time.perf_counter()
    tr.fit(ft_x, ft_y, epochs=args.epochs)
    secs = time.perf_counter() - t0
    fixed = tr.evaluate(te_x, te_y)["accuracy"]
    ops = tr.ops
    drop = upright - before
    print(f"| {args.data} {ds.x_train.shape[1]}-{args.hidden}-10 | value |")
    print("|---|---|")
    print(f"| upright test | {upright:.4f} |")
    print(f"| rotated {args.angle:g} deg, before | {before:.4f} |")
    print(f"| after float fine-tuning ({args.epochs} epochs) | {float_acc:.4f} |")
    how = f"{args.optimizer}, momentum {args.momentum:g}, {args.train_layers} layers"
    print(f"| after fixed fine-tuning ({how}) | {fixed:.4f} |")
    print(f"| fixed - float | {100 * (fixed - float_acc):+.2f} points |")
    print(
        f"| drop recovered by fixed | {(fixed - before) / drop if drop > 0 else float('nan'):.2f} |"
    )
    print(f"| arena (model + training) | {tr.arena_bytes} bytes |")
    mult = ops["multiplications_per_sample"]
    dense = ops["dense_multiplications_per_sample"]
    print(f"| multiplications per training sample | {mult:.0f} (dense {dense:.0f}) |")
    print(f"| fixed fine-tuning time (Python loop over C steps) | {secs:.1f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
