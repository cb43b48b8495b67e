"""``edge-lsh train``: train a float network (LSH-sparse, or dense with --dense), or continue
training a saved one with --from (float fine-tuning on the host)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_lsh import defaults
from edge_lsh.cli.argtypes import (
    fraction,
    hidden_sizes,
    positive_int,
    seed_value,
    table_counts,
)
from edge_lsh.cli.common import (
    HelpFormatter,
    add_data_args,
    add_thread_args,
    plural,
    train_and_report,
)
from edge_lsh.data import SPEC_HELP, Dataset, load
from edge_lsh.errors import DataError, EdgeLshError, ModelFileError, OutputPathError
from edge_lsh.fileio import atomic_write, check_output_file, check_output_folder
from edge_lsh.network import FAMILIES, LSHConfig, Network, TrainConfig
from edge_lsh.report import print_summary

# flags that describe a new network; --from keeps the saved model's and ignores them
ARCHITECTURE_FLAGS = (
    "hidden",
    "active",
    "bits",
    "tables",
    "hash",
    "pool",
    "select",
    "insert",
    "capacity",
    "output_lsh",
    "dense",
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    t: argparse.ArgumentParser = sub.add_parser(
        "train",
        help="train a network (LSH-sparse by default, --dense for the baseline)",
        epilog=SPEC_HELP,
        formatter_class=HelpFormatter,
    )
    add_data_args(t)
    d = defaults.LSH
    t.add_argument(
        "--hidden",
        type=hidden_sizes,
        default=[defaults.HIDDEN],
        help="hidden sizes, e.g. 1000,1000",
    )
    t.add_argument(
        "--active", type=fraction, default=d.active_fraction, help="active fraction per LSH layer"
    )
    t.add_argument("--bits", type=positive_int, default=d.bits, help="K: bits per hash table")
    t.add_argument(
        "--tables",
        type=table_counts,
        default=d.tables,
        help="L: number of hash tables, e.g. 100, or one per LSH layer, e.g. 100,25",
    )
    t.add_argument("--hash", choices=sorted(FAMILIES), default=d.family, help="hash family")
    t.add_argument(
        "--pool", type=int, default=d.pool, help="inputs summed per hashed value (0 auto, 1 none)"
    )
    t.add_argument(
        "--select",
        choices=["topk", "union"],
        default=d.select,
        help="topk: the k neurons found in most tables; union: every neuron found",
    )
    t.add_argument(
        "--insert",
        choices=["fifo", "reservoir"],
        default=d.insert,
        help="what a full bucket does with a new neuron",
    )
    t.add_argument(
        "--capacity", type=int, default=d.bucket_capacity, help="bucket capacity (0 auto)"
    )
    t.add_argument("--output-lsh", action="store_true", help="LSH-sample the output layer too")
    t.add_argument("--dense", action="store_true", help="train the dense baseline instead")
    t.add_argument(
        "--epochs", type=positive_int, default=defaults.EPOCHS, help="passes over the training set"
    )
    t.add_argument("--lr", type=float, default=defaults.TRAIN.lr, help="Adagrad learning rate")
    t.add_argument(
        "--seed", type=int, default=0, help="seed of the data split, the weights and the hashing"
    )
    t.add_argument(
        "--shuffle-seed",
        type=seed_value,
        metavar="S",
        help="with --from: seed the sample order of the fine-tuning afresh with S (default: the "
        "saved model's shuffle stream goes on); `finetune --shuffle-seed` shuffles the fixed "
        "path's samples from the same kind of seed",
    )
    t.add_argument(
        "--out",
        metavar="PATH",
        help="save the trained model here (checked before training starts; without it the model "
        "is not kept)",
    )
    t.add_argument(
        "--from",
        dest="init",
        metavar="MODEL",
        help="continue training a saved float model: fine-tuning in float on this machine (the "
        "float path; `edge-lsh finetune` fine-tunes an .elsh file in fixed point, as a device "
        "does); its network and LSH settings are kept",
    )
    t.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="save the whole training state to DIR/checkpoint.npz after every epoch (atomically)",
    )
    t.add_argument(
        "--resume",
        action="store_true",
        help="with --checkpoint: continue the run whose state DIR holds, up to --epochs in "
        "all; the result is the same as a run that never stopped",
    )
    add_thread_args(t, training=True)
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=run)
    return t


def run(args: argparse.Namespace) -> int:
    if args.out:
        check_output_file(args.out, "model")
    if args.shuffle_seed is not None and not args.init:
        raise EdgeLshError("--shuffle-seed needs --from MODEL (it seeds a fine-tuning's order)")
    if args.resume and not args.checkpoint:
        raise OutputPathError("--resume needs --checkpoint DIR (the folder of the run to resume)")
    if args.checkpoint:
        check_output_folder(args.checkpoint, "checkpoint folder")
    try:
        return _train(args)
    except KeyboardInterrupt:
        if args.checkpoint and (Path(args.checkpoint) / CHECKPOINT).is_file():
            print(
                f"the last finished epoch is in {Path(args.checkpoint) / CHECKPOINT}: run the "
                "same command with --resume to go on",
                file=sys.stderr,
            )
        raise


CHECKPOINT = "checkpoint.npz"


def _checkpointer(args: argparse.Namespace, net: Network) -> Callable[[], None] | None:
    """After each epoch: the whole training state to DIR/checkpoint.npz (atomic rename), and
    DIR/checkpoint.json with the epoch the run began at."""
    if not args.checkpoint:
        return None
    folder = Path(args.checkpoint)
    folder.mkdir(exist_ok=True)
    meta = folder / "checkpoint.json"
    if not args.resume or not meta.is_file():
        with atomic_write(meta) as f:
            f.write(json.dumps({"start_epoch": net.epochs_trained}).encode())

    def save() -> None:
        net.save(folder / CHECKPOINT, optimizer_state=True)

    return save


def _resume(args: argparse.Namespace, data: Dataset) -> int:
    """train --checkpoint DIR --resume: load the state, train the epochs the run still owes."""
    folder = Path(args.checkpoint)
    if not (folder / CHECKPOINT).is_file():
        raise ModelFileError(f"{folder}: holds no {CHECKPOINT} to resume from")
    net = Network.load(folder / CHECKPOINT)
    try:
        start = int(json.loads((folder / "checkpoint.json").read_text())["start_epoch"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{folder}/checkpoint.json: unreadable ({exc})") from None
    data.check_fits(net.n_in, net.n_classes)
    left = start + args.epochs - net.epochs_trained
    if left <= 0:
        raise DataError(
            f"{folder}: the run already has {plural(net.epochs_trained - start, 'epoch')} of "
            f"--epochs {args.epochs}; nothing to resume"
        )
    if not args.quiet:
        print(
            f"resuming {folder / CHECKPOINT} after {plural(net.epochs_trained - start, 'epoch')}: "
            f"{plural(left, 'epoch')} to go",
            file=sys.stderr,
        )
    net.data = data.record()
    train = TrainConfig(**{**defaults.TRAIN.__dict__, "lr": args.lr})
    summary = train_and_report(
        data,
        net,
        left,
        train,
        quiet=args.quiet,
        after_epoch=_checkpointer(args, net),
        **_threads(args),
    )
    summary["epochs"] = net.epochs_trained - start
    _save(net, args, summary)
    print_summary(summary, args.json)
    return 0


def _train(args: argparse.Namespace) -> int:
    if args.dense and args.active != defaults.LSH.active_fraction:
        warnings.warn("--active is ignored with --dense: every neuron is computed", stacklevel=1)
    data = load(
        args.data, seed=args.seed, limit=args.limit, label_column=args.label_column or "last"
    )
    if args.resume:
        return _resume(args, data)
    if args.init:
        return _continue(args, data)
    lsh = None
    if not args.dense:
        lsh = LSHConfig(
            active_fraction=args.active,
            family=args.hash,
            bits=args.bits,
            tables=args.tables,
            pool=args.pool,
            bucket_capacity=args.capacity,
            insert=args.insert,
            select=args.select,
        )
    net = Network(
        data.n_features,
        args.hidden,
        data.n_classes,
        lsh,
        output_lsh=args.output_lsh,
        seed=args.seed,
    )
    net.data = data.record()
    train = TrainConfig(**{**defaults.TRAIN.__dict__, "lr": args.lr})
    if not args.quiet:
        kind = "dense" if lsh is None else f"LSH {args.hash} K={args.bits} L={lsh.tables_text()}"
        print(
            f"training {'-'.join(map(str, net.layer_sizes))} ({kind}, active "
            f"{net.active_counts()}) on {data.name}: {data.x_train.shape[0]} train / "
            f"{data.x_test.shape[0]} test",
            file=sys.stderr,
        )
    summary = train_and_report(
        data,
        net,
        args.epochs,
        train,
        quiet=args.quiet,
        after_epoch=_checkpointer(args, net),
        **_threads(args),
    )
    _save(net, args, summary)
    print_summary(summary, args.json)
    return 0


def _threads(args: argparse.Namespace) -> dict[str, Any]:
    """train_and_report's thread settings from the command line."""
    return {
        "threads": args.threads,
        "thread_mode": args.thread_mode,
        "thread_batch": args.thread_batch,
    }


def _save(net: Network, args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """Save to --out, or say on stderr that the model was not kept."""
    if args.out:
        net.save(args.out)
        summary["model"] = args.out
        if not args.quiet:
            print(f"saved the model to {args.out}", file=sys.stderr)
    else:
        print("the trained model was not saved: pass --out PATH to keep it", file=sys.stderr)


def _continue(args: argparse.Namespace, data: Dataset) -> int:
    """train --from MODEL: load, check the data fits, continue training, report."""
    net = Network.load(args.init)
    data.check_fits(net.n_in, net.n_classes)
    parser = argparse.ArgumentParser(add_help=False)
    add_parser(parser.add_subparsers())
    defaults_of = parser.parse_args(["train"])
    changed = [f for f in ARCHITECTURE_FLAGS if getattr(args, f) != getattr(defaults_of, f)]
    if changed:
        flags = ", ".join("--" + f.replace("_", "-") for f in changed)
        warnings.warn(
            f"{flags} ignored: --from keeps the saved model's network and LSH settings",
            stacklevel=1,
        )
    train = TrainConfig(**{**defaults.TRAIN.__dict__, "lr": args.lr})
    if not args.quiet:
        print(
            f"fine-tuning {args.init} ({'-'.join(map(str, net.layer_sizes))}, "
            f"{plural(net.epochs_trained, 'epoch')} so far) on {data.name}: "
            f"{data.x_train.shape[0]} train / "
            f"{data.x_test.shape[0]} test",
            file=sys.stderr,
        )
    before = net.evaluate(data.x_test, data.y_test, threads=args.threads)["accuracy"]
    if args.shuffle_seed is not None:
        net.reseed_shuffle(args.shuffle_seed)
    net.data = data.record()  # what it was last trained on: eval's default from now on
    summary = train_and_report(
        data,
        net,
        args.epochs,
        train,
        quiet=args.quiet,
        after_epoch=_checkpointer(args, net),
        **_threads(args),
    )
    summary = {"accuracy_before": before, **summary}
    _save(net, args, summary)
    print_summary(summary, args.json)
    return 0
