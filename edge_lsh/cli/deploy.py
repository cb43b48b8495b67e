"""``edge-lsh deploy``: the runner cross-compiled for a Raspberry Pi, or Pico 2 firmware,
bundled with the model; --check runs it under QEMU against this machine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge_lsh.cli.argtypes import momentum
from edge_lsh.cli.common import HelpFormatter
from edge_lsh.deploy.targets import TARGETS


def add_parser(sub: Any) -> argparse.ArgumentParser:
    d: argparse.ArgumentParser = sub.add_parser(
        "deploy",
        help="cross-compile the runner (or Pico 2 firmware) for a board, with the model",
        description="Cross-compiles edge-lsh-run for the target (for pico2, bare-metal RP2350 "
        "firmware embedding the model: a .uf2 to flash, the ELF, and the same program for QEMU) "
        "and writes DIR with the binary, the model, sample inputs and a README with the "
        "copy-and-run (or flash-and-wire) steps. Before building, the model is checked against "
        "the board's RAM (and a Pico 2's flash). --check runs the result under QEMU and "
        "compares every logit with this machine's.",
        epilog="targets:\n" + "\n".join(f"  {t.name:9s} {t.board}" for t in TARGETS.values()),
        formatter_class=HelpFormatter,
    )
    d.add_argument("model", metavar="MODEL.elsh", help="a model written by `edge-lsh export`")
    d.add_argument(
        "--target",
        required=True,
        choices=list(TARGETS),
        metavar="TARGET",
        help="the board (see targets below)",
    )
    d.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    d.add_argument("--check", action="store_true", help="run it under QEMU against the host")
    d.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty DIR, replacing the bundle's files one by one (others in DIR "
        "are kept; a symbolic link DIR is followed, so the files land in the folder it names)",
    )
    d.add_argument(
        "--finetune",
        action="store_true",
        help="pico2: build the firmware that fine-tunes the model on the device (rows sent over "
        "the UART, saved to A/B flash slots) instead of the inference image; a Pi's runner "
        "fine-tunes already (edge-lsh-run --train)",
    )
    d.add_argument(
        "--train-layers",
        default="last",
        help="with --finetune: all, last or N, the layers that learn",
    )
    d.add_argument("--optimizer", choices=["sgd", "adagrad"], default="sgd", help="with --finetune")
    d.add_argument("--lr", type=float, default=0.01, help="with --finetune: the learning rate")
    d.add_argument(
        "--momentum",
        type=momentum,
        default=0.0,
        help="with --finetune: the momentum (default 0 on the Pico: a velocity costs 4 bytes of "
        "RAM per trainable weight)",
    )
    d.add_argument("--json", action="store_true", help="print the result as one JSON object")
    d.set_defaults(func=run)
    return d


def _bytes(path: Path) -> int:
    """A file's size, or the total of a folder's files (pico2's pico-sdk/)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def run(args: argparse.Namespace) -> int:
    from edge_lsh.deploy import deploy  # the toolchain code loads only when deploying

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    finetune = None
    if args.finetune:
        finetune = {
            "train_layers": args.train_layers,
            "optimizer": args.optimizer,
            "lr": args.lr,
            "momentum": args.momentum,
        }
    r = deploy(
        args.model,
        args.target,
        args.out,
        check=args.check,
        force=args.force,
        progress=say,
        finetune=finetune,
    )
    if args.json:
        result = {
            "target": r.target,
            "out": str(r.out_dir),
            "files": {str(f): _bytes(f) for f in r.files},
            "checked": r.checked,
            "binary_bytes": r.binary_bytes,
        }
        if r.flash_bytes:  # firmware: the board image's use of flash and SRAM
            result.update(flash_bytes=r.flash_bytes, ram_bytes=r.ram_bytes)
        print(json.dumps(result))
        return 0
    for f in r.files:
        what = f"folder, {_bytes(f):,} bytes of files" if f.is_dir() else f"{_bytes(f):,} bytes"
        print(f"{f}{'/' if f.is_dir() else ''}  {what}")
    if r.checked and args.finetune:
        print(
            f"checked under QEMU: {r.checked} rows trained over the UART; the answers and the "
            "saved slot equal the host's fine-tuning byte for byte"
        )
    elif r.checked:
        print(f"checked under QEMU: {r.checked} inputs, predictions and logits bit-exact")
    print(f"next: see {r.out_dir / 'README.md'}")
    return 0
