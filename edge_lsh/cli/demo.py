"""``edge-lsh demo``: the same network trained twice on the bundled digits, once with LSH
selecting 5% of the hidden neurons and once dense, and the two compared side by side; then the
LSH network quantized to int8 and run by the fixed-point kernel, as a device would."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edge_lsh import defaults
from edge_lsh.cli.argtypes import positive_int
from edge_lsh.cli.common import HelpFormatter, plural, train_and_report
from edge_lsh.data import load
from edge_lsh.network import Network


def _row(name: str, s: dict[str, Any], dense_mults: float) -> str:
    pct = 100.0 * s["multiplications_per_sample"] / dense_mults
    train = s.get("samples_per_second")
    train_text = f"{train:15,.0f}" if train else f"{'-':>15s}"
    return (
        f"{name:<22s} {s['accuracy'] * 100:8.2f}% {s['multiplications_per_sample']:>12,.0f} "
        f"{pct:7.1f}% {s['inference_us_per_sample']:10.1f} {train_text}"
    )


def _fixed_point(net: Network, data: Any) -> dict[str, Any]:
    """The LSH network quantized (int8 weights, activations calibrated on 1000 training rows)
    and evaluated by the fixed-point C kernel from its .elsh bytes (tables rebuilt at load)."""
    from edge_lsh.fixed import FixedPointModel
    from edge_lsh.format import elsh_bytes
    from edge_lsh.quantize import quantize

    blob = elsh_bytes(quantize(net, data.x_train[:1000]), tables=False)
    ev = FixedPointModel(blob, "demo.elsh").evaluate(data.x_test, data.y_test)
    return {**ev, "model_bytes": len(blob)}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    m: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="LSH against dense on the bundled digits, side by side",
        formatter_class=HelpFormatter,
    )
    m.add_argument(
        "--epochs", type=positive_int, default=defaults.EPOCHS, help="passes over the training set"
    )
    m.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    m.add_argument("--quiet", action="store_true", help="no progress output")
    m.set_defaults(func=run)
    return m


def run(args: argparse.Namespace) -> int:
    return run_demo(epochs=args.epochs, as_json=args.json, quiet=args.quiet)


def run_demo(epochs: int = defaults.EPOCHS, as_json: bool = False, quiet: bool = False) -> int:
    data = load("digits", seed=0)
    lsh_cfg = defaults.LSH
    runs, nets = {}, {}
    for name, cfg in (("lsh", lsh_cfg), ("dense", None)):
        net = nets[name] = Network(data.n_features, [defaults.HIDDEN], data.n_classes, cfg, seed=0)
        label = f"[{name:5s}] "
        runs[name] = train_and_report(data, net, epochs, defaults.TRAIN, label=label, quiet=quiet)
    lsh, dense = runs["lsh"], runs["dense"]
    fixed = _fixed_point(nets["lsh"], data)
    d_m = dense["multiplications_per_sample"]
    out = sys.stderr if as_json else sys.stdout  # with --json, stdout is the JSON alone
    print(file=out)
    print(
        f"digits: {data.x_train.shape[0]} train / {data.x_test.shape[0]} test, network "
        f"{'-'.join(map(str, lsh['layers']))}, {plural(epochs, 'epoch')}, one thread",
        file=out,
    )
    print(
        f"LSH: {lsh_cfg.family} hash, K={lsh_cfg.bits} bits, L={lsh_cfg.tables} tables, "
        f"{lsh_cfg.active_fraction:.0%} of hidden neurons active",
        file=out,
    )
    print(file=out)
    header = ("accuracy", "mults/sample", "of dense", "us/sample", "train samples/s")
    widths = (9, 12, 8, 10, 15)
    print(" " * 22 + "".join(f" {h:>{w}s}" for h, w in zip(header, widths)), file=out)
    print(_row(f"LSH {lsh_cfg.active_fraction:.0%} active", lsh, d_m), file=out)
    print(_row("dense (same kernel)", dense, d_m), file=out)
    print(_row("LSH, int8 fixed point", fixed, d_m), file=out)
    print(file=out)
    gap = (lsh["accuracy"] - dense["accuracy"]) * 100
    fewer = d_m / max(lsh["multiplications_per_sample"], 1.0)
    train_x = lsh["samples_per_second"] / dense["samples_per_second"]
    infer_x = dense["inference_us_per_sample"] / lsh["inference_us_per_sample"]
    print(
        f"LSH vs dense: {gap:+.2f} accuracy points, {fewer:.1f}x fewer multiplications "
        f"(hashing included), {train_x:.1f}x faster training, {infer_x:.1f}x faster inference",
        file=out,
    )
    print(
        f"int8 fixed point (what `edge-lsh export` writes for a device): "
        f"{(fixed['accuracy'] - lsh['accuracy']) * 100:+.2f} points against float LSH, "
        f"{fixed['model_bytes'] / 1024:.0f} KB .elsh file",
        file=out,
    )
    if as_json:
        print(json.dumps({"lsh": lsh, "dense": dense, "fixed": fixed}))
    sys.stdout.flush()
    return 0
