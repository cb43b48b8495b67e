"""The fine-tuning firmware's data and what the device must produce, from the host's trainer.

    python make_finetune_data.py MODEL.elsh OUTDIR [--data digits] [--train N] [--test M]
        [--epochs E] [--optimizer sgd] [--lr 0.01] [--train-layers all] [--shift rotate25]
        [--region BYTES] [--dense] [--offset K]

Writes into OUTDIR:
  fw_finetune_data.c   the factory model, the trainer's integer configuration, N training rows
                       of the data set's train split (from row K) (quantized to int8 by the host's
                       elsh_qnet_quantize_input) and their order (E epochs, in order), M test
                       rows, the arenas sized by elsh_model_open and elsh_qtrain_plan
  erased.bin           the slot region as a fresh flash holds it (0xFF), loaded at boot 1
  expect1.bin          the region after boot 1 as the host computes it: edge_lsh.deploy.slots
                       .save of the host's fine-tuned file (edge_lsh.finetune, the same steps)
                       into the erased region: slot A, sequence 1
  expect2.bin          after boot 2, which starts from expect1.bin: the device boots slot A,
                       trains the same steps again and saves slot B, sequence 2
  host.json            accuracies and sizes the host saw
--shift applies tools/finetune/shift.py to the rows (a domain the base never saw).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "finetune"))

import shift  # noqa: E402

from edge_lsh.data import load  # noqa: E402
from edge_lsh.deploy import slots  # noqa: E402
from edge_lsh.deploy.finetune_fw import FirmwareRun, write_finetune_c  # noqa: E402
from edge_lsh.finetune import FixedTrainer  # noqa: E402

REGION_BYTES = 2 << 20  # mps2_an505_finetune.ld: the upper 2 MB of the 4 MB


def host_run(
    model: bytes, args: argparse.Namespace, x: np.ndarray, y: np.ndarray
) -> tuple[FixedTrainer, dict]:
    """The host's fine-tuning: the steps the firmware takes. Also its work per step."""
    tr = FixedTrainer(
        model,
        train_layers=args.train_layers,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        seed=0,
    )
    if args.dense:
        tr.model.set_active(dense=True)
    tr.fit(x, y, epochs=args.epochs)
    return tr, tr.ops


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--data", default="digits")
    p.add_argument("--train", type=int, default=200)
    p.add_argument("--offset", type=int, default=0, help="skip this many training rows first")
    p.add_argument("--test", type=int, default=100)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--optimizer", default="sgd")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.0, help="0: no velocity (the Pico's RAM)")
    p.add_argument("--train-layers", default="all")
    p.add_argument("--shift", choices=shift.SHIFTS)
    p.add_argument("--region", type=int, default=REGION_BYTES)
    p.add_argument("--dense", action="store_true", help="every neuron computed (the baseline)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = Path(args.model).read_bytes()
    d = load(args.data, seed=0)
    rows = slice(args.offset, args.offset + args.train)
    x, y = d.x_train[rows], d.y_train[rows]
    xt, yt = d.x_test[: args.test], d.y_test[: args.test]
    if args.shift:
        x, xt = shift.apply(args.shift, x), shift.apply(args.shift, xt)
    first, ops = host_run(model, args, x, y)
    host1 = first.save_bytes()
    second, _ = host_run(host1, args, x, y)
    host2 = second.save_bytes()
    base = FixedTrainer(
        model,
        train_layers=args.train_layers,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
    )
    if args.dense:
        base.model.set_active(dense=True)
    run = FirmwareRun(
        name=Path(args.model).stem,
        model=model,
        n_in=base.model.n_in,
        n_classes=base.model.n_classes,
        config=dataclasses.asdict(base.config),
        train_xq=base.model.quantize_input(x),
        train_y=y,
        order=np.tile(np.arange(x.shape[0]), args.epochs),
        test_xq=base.model.quantize_input(xt),
        test_y=yt,
        model_arena_bytes=base.model.arena_bytes,
        train_arena_bytes=base.train_arena_bytes,
    )
    write_finetune_c(out / "fw_finetune_data.c", run)
    geometry = slots.Geometry(args.region)
    region = bytearray([slots.ERASED]) * args.region
    (out / "erased.bin").write_bytes(region)
    slots.save(region, host1, geometry)
    (out / "expect1.bin").write_bytes(region)
    slots.save(region, host2, geometry)
    (out / "expect2.bin").write_bytes(region)
    info = {
        "model": args.model,
        "model_bytes": len(model),
        "layers": [base.model.n_in]
        + [base.model.layer_info(i)["n_out"] for i in range(base.model.n_layers)],
        "train_layers": args.train_layers,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "dense": args.dense,
        "shift": args.shift,
        "train_samples": int(x.shape[0]),
        "test_samples": int(xt.shape[0]),
        "epochs": args.epochs,
        "model_arena_bytes": base.model.arena_bytes,
        "train_arena_bytes": base.train_arena_bytes,
        "accuracy_before": base.evaluate(xt, yt)["accuracy"],
        "accuracy_after_boot1": first.evaluate(xt, yt)["accuracy"],
        "accuracy_after_boot2": second.evaluate(xt, yt)["accuracy"],
        "multiplications_per_sample": ops["multiplications_per_sample"],
        "dense_multiplications_per_sample": ops["dense_multiplications_per_sample"],
    }
    (out / "host.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
