"""``edge-lsh finetune``: fine-tune an .elsh model in fixed point, with the C kernel's integer
training step (the one edge-lsh-run --train and the Pico 2 firmware run), and write the result
as a new .elsh file. `train --from` is the float path: it continues a float model on the host."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from edge_lsh.cli.argtypes import (
    momentum,
    positive_float,
    positive_int,
    seed_value,
    thread_count,
)
from edge_lsh.cli.common import HelpFormatter, add_data_args, is_elsh, plural
from edge_lsh.data import SPEC_HELP, load
from edge_lsh.errors import ModelFileError
from edge_lsh.fileio import check_input_file, check_output_file
from edge_lsh.finetune import (
    DEFAULT_LAST_LR_FACTOR,
    DEFAULT_LR,
    DEFAULT_MOMENTUM,
    DEFAULT_THREAD_BATCH,
    MAX_BATCH,
    FixedTrainer,
    rates,
)
from edge_lsh.fixed import FixedPointModel
from edge_lsh.report import print_summary

DESCRIPTION = """\
Fine-tune MODEL.elsh in fixed point and save the result to --out: the C kernel's integer
training step (int16 master weights, int32 gradients, stochastic rounding from the seeded PRNG,
SGD with momentum or Adagrad), the same arithmetic `edge-lsh-run --train` runs on a Raspberry Pi
and the Pico 2 firmware runs on the device; the result is byte-identical on each for the same
samples and seed. The inputs are the data set's features, quantized as inference does.

This is the device path. `edge-lsh train --from MODEL` is the float path: it continues training
a float model (from `train --out`) on this machine, which you then export again.

--threads N (N > 1) trains in deterministic mini-batches of --thread-batch samples: each
sample's gradient against the weights of the batch's start, the steps applied in sample order
with a stochastic rounding keyed by (batch, layer, neuron, sample, input). The result is the same
bytes for every --threads at a given --thread-batch (--threads 1 --thread-batch B gives them on
one thread), but not those of the default one-sample steps."""


def train_layers(text: str) -> str:
    """argparse type: all, last, or a positive number of last layers."""
    if text in ("all", "last"):
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected all, last or a number of last layers"
        ) from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text}: the number of last layers must be >= 1")
    return str(n)


def thread_batch(text: str) -> int:
    """argparse type: a mini-batch size, 1..MAX_BATCH."""
    value = positive_int(text)
    if value > MAX_BATCH:
        raise argparse.ArgumentTypeError(f"{text}: at most {MAX_BATCH} samples per batch")
    return value


def add_parser(sub: Any) -> argparse.ArgumentParser:
    f: argparse.ArgumentParser = sub.add_parser(
        "finetune",
        help="fine-tune an .elsh model in fixed point (the on-device trainer; `train --from` "
        "is the float path)",
        description=DESCRIPTION,
        epilog=SPEC_HELP,
        formatter_class=HelpFormatter,
    )
    f.add_argument("model", metavar="MODEL", help="the .elsh file to start from")
    add_data_args(f, default=None)
    for action in f._actions:  # the shared --data option, required here: nothing to default to
        if action.dest == "data":
            action.required = True
            action.help = "the labelled samples to fine-tune on (see Data specs)"
    f.add_argument(
        "--epochs", type=positive_int, default=1, help="passes over the data set's training split"
    )
    f.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="the fine-tuned .elsh file (checked before training; written atomically)",
    )
    f.add_argument(
        "--train-layers",
        type=train_layers,
        default="all",
        help="which layers learn: all, last, or N (the last N); the others stay as in the "
        "file (in flash on a Pico) and need no RAM",
    )
    f.add_argument(
        "--optimizer",
        choices=["sgd", "adagrad"],
        default="adagrad",
        help="the integer optimizer (Adagrad keeps 4 more bytes per trainable weight)",
    )
    f.add_argument(
        "--lr",
        type=positive_float,
        default=DEFAULT_LR,
        help="learning rate, turned into each layer's integer rate as the device gets it",
    )
    f.add_argument(
        "--last-lr",
        type=positive_float,
        default=None,
        metavar="L",
        help=f"learning rate of the last epoch (default: {DEFAULT_LAST_LR_FACTOR:g} x --lr; with "
        "--epochs 1, of the only one): the lower rate at the end steadies the result",
    )
    f.add_argument(
        "--momentum",
        type=momentum,
        default=DEFAULT_MOMENTUM,
        help="momentum, 0 <= M < 1 (0: none, and no velocity in RAM: 4 bytes less per "
        "trainable weight; the default is `train`'s)",
    )
    f.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the data split and of the stochastic rounding (the samples are taken in "
        "the split's order, as edge-lsh-run --train takes a file's rows)",
    )
    f.add_argument(
        "--shuffle-seed",
        type=seed_value,
        metavar="S",
        help="shuffle the samples before every epoch, seeded with S (default: in the split's "
        "order every epoch, as a device takes its rows); `train --from --shuffle-seed` seeds the "
        "float path's order alike",
    )
    f.add_argument(
        "--threads",
        type=thread_count,
        default=1,
        metavar="N",
        help="cores to train on: N > 1 trains in deterministic mini-batches (the same bytes for "
        "every N); 1 without --thread-batch is the one-sample trainer of the device",
    )
    f.add_argument(
        "--thread-batch",
        type=thread_batch,
        default=None,
        metavar="B",
        help=f"samples per mini-batch (default {DEFAULT_THREAD_BATCH} when --threads > 1; given "
        "with --threads 1: the same mini-batches on one thread)",
    )
    f.add_argument("--quiet", action="store_true", help="no progress output")
    f.set_defaults(func=run)
    return f


def run(args: argparse.Namespace) -> int:
    # everything a user can get wrong is checked before any training
    check_output_file(args.out, "model")
    try:
        check_input_file(args.model, "model file")
    except OSError as exc:
        raise ModelFileError(str(exc)) from None
    if not is_elsh(args.model):
        raise ModelFileError(
            f"{args.model}: not an .elsh file; `finetune` fine-tunes .elsh models in fixed "
            "point (for a float model from `train --out`, use `train --from`)"
        )
    trainer = FixedTrainer(
        args.model,
        train_layers=args.train_layers,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        seed=args.seed,
        threads=args.threads,
        thread_batch=args.thread_batch,
    )
    if args.last_lr is None:
        args.last_lr = args.lr * DEFAULT_LAST_LR_FACTOR
    # the last epoch's rates, checked before the data is read or a step taken
    rates(trainer.model, trainer.config.optimizer, args.last_lr)
    data = load(
        args.data, seed=args.seed, limit=args.limit, label_column=args.label_column or "last"
    )
    data.check_fits(trainer.model.n_in, trainer.model.n_classes)
    # the accuracy before on a copy of the model, so that the trainer's op counters hold
    # training steps only
    before = FixedPointModel.load(args.model).evaluate(data.x_test, data.y_test)["accuracy"]
    if not args.quiet:
        print(
            f"fine-tuning {args.model} in fixed point ({args.optimizer}, lr {args.lr:g}, "
            + f"last epoch lr {args.last_lr:g}, "
            + f"momentum {args.momentum:g}, train layers {args.train_layers}, "
            + (
                f"{plural(args.threads, 'thread')} in batches of {trainer.batch}, "
                if trainer.batch
                else ""
            )
            + f"arena "
            f"{trainer.arena_bytes:,} B) on {data.name}: "
            f"{data.x_train.shape[0]} train / {data.x_test.shape[0]} test, "
            f"{plural(args.epochs, 'epoch')}; test accuracy before {before * 100:.2f}%",
            file=sys.stderr,
        )
    bar = None if args.quiet else _Bar()
    fit = trainer.fit(
        data.x_train,
        data.y_train,
        epochs=args.epochs,
        progress=bar.update if bar else None,
        shuffle_seed=args.shuffle_seed,
        last_lr=args.last_lr,
    )
    ops = trainer.ops
    trainer.save(args.out)
    ev = trainer.evaluate(data.x_test, data.y_test)
    summary: dict[str, Any] = {
        "model": args.out,
        "from": args.model,
        "data": data.name,
        "epochs": args.epochs,
        "train_layers": args.train_layers,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "last_lr": args.last_lr,
        "momentum": args.momentum,
        "threads": args.threads,
        "thread_batch": trainer.batch,
        "shuffle_seed": args.shuffle_seed,
        "accuracy_before": before,
        "accuracy": ev["accuracy"],
        "train_seconds": fit["train_seconds"],
        "samples_per_second": fit["samples_per_second"],
        "multiplications_per_sample": ops["multiplications_per_sample"],
        "dense_multiplications_per_sample": ops["dense_multiplications_per_sample"],
        "arena_bytes": trainer.arena_bytes,
    }
    if not args.quiet:
        print(f"saved the fine-tuned model to {args.out}", file=sys.stderr)
    print_summary(summary, args.json)
    return 0


class _Bar:
    """The progress of fine-tuning on stderr: a redrawn bar on a terminal, a line per epoch
    otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def update(self, epoch: int, epochs: int, done: int, total: int) -> None:
        if done >= total:
            end = "\n"
        elif not self.tty or time.monotonic() - self.last < 0.1:
            return
        else:
            end = ""
        self.last = time.monotonic()
        fill = 24 * done // max(total, 1)
        bar = "#" * fill + "-" * (24 - fill)
        text = f"epoch {epoch + 1}/{epochs} [{bar}] {done}/{total}"
        sys.stderr.write(("\r" + text if self.tty else text) + end)
        sys.stderr.flush()
