"""The ``edge-lsh`` command line: train, eval, demo, and the fixed-point export, run, inspect."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from edge_lsh import defaults
from edge_lsh.cli import _fixed as cli_fixed
from edge_lsh.cli.argtypes import fraction, hidden_sizes, positive_int
from edge_lsh.data import SPEC_HELP, DataError, Dataset, load
from edge_lsh.deploy import DeployError
from edge_lsh.native import NativeError
from edge_lsh.network import FAMILIES, LSHConfig, ModelFileError, Network, TrainConfig
from edge_lsh.report import SUMMARY_KEYS, print_summary


class Progress:
    """One status line on stderr: a redrawn bar on a terminal, one line per epoch otherwise."""

    def __init__(self, epochs: int, label: str = "", stream: TextIO | None = None) -> None:
        self.epochs = epochs
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_draw = 0.0
        self.first_epoch: int | None = None  # epochs count from here (fine-tuning continues)

    def _nth(self, epoch: int) -> int:
        if self.first_epoch is None:
            self.first_epoch = epoch
        return epoch - self.first_epoch + 1

    def update(self, epoch: int, done: int, total: int, loss: float, acc: float) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if done < total and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        width = 24
        fill = int(width * done / total)
        bar = "#" * fill + "-" * (width - fill)
        self.stream.write(
            f"\r{self.label}epoch {self._nth(epoch)}/{self.epochs} [{bar}] {done}/{total} "
            f"loss {loss:.4f} acc {acc * 100:5.1f}%"
        )
        self.stream.flush()

    def epoch_done(self, report: Any, test_acc: float | None = None) -> None:
        extra = f" test {test_acc * 100:5.2f}%" if test_acc is not None else ""
        line = (
            f"{self.label}epoch {self._nth(report.epoch)}/{self.epochs} loss {report.loss:.4f} "
            f"train {report.train_accuracy * 100:5.2f}%{extra} {report.seconds:.2f}s"
        )
        self.stream.write(("\r" + line + " " * 10 + "\n") if self.tty else line + "\n")
        self.stream.flush()


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="digits", metavar="SPEC", help="data set (default: digits)")
    p.add_argument("--limit", type=positive_int, help="use only the first N training samples")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-lsh",
        description="Hashing-based sparse neural networks: train, evaluate, compare with dense.",
        epilog="Data specs:\n" + SPEC_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    t = sub.add_parser(
        "train",
        help="train a network (LSH-sparse by default, --dense for the baseline)",
        epilog="Data specs:\n" + SPEC_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_data_args(t)
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
    t.add_argument("--tables", type=positive_int, default=d.tables, help="L: number of hash tables")
    t.add_argument("--hash", choices=sorted(FAMILIES), default=d.family, help="hash family")
    t.add_argument(
        "--pool", type=int, default=d.pool, help="inputs summed per hashed value (0 auto, 1 none)"
    )
    t.add_argument("--select", choices=["topk", "union"], default=d.select)
    t.add_argument("--insert", choices=["fifo", "reservoir"], default=d.insert)
    t.add_argument(
        "--capacity", type=int, default=d.bucket_capacity, help="bucket capacity (0 auto)"
    )
    t.add_argument("--output-lsh", action="store_true", help="LSH-sample the output layer too")
    t.add_argument("--dense", action="store_true", help="train the dense baseline instead")
    t.add_argument("--epochs", type=positive_int, default=defaults.EPOCHS)
    t.add_argument("--lr", type=float, default=defaults.TRAIN.lr, help="Adagrad learning rate")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", metavar="PATH", help="save the trained model here")
    t.add_argument(
        "--from",
        dest="init",
        metavar="MODEL",
        help="continue training a saved model (fine-tuning, e.g. on the device); its network "
        "and LSH settings are kept",
    )
    t.add_argument("--quiet", action="store_true", help="no progress output")

    e = sub.add_parser(
        "eval",
        help="evaluate a saved model (float, or an .elsh in fixed point) on a test split",
    )
    e.add_argument("model", metavar="MODEL", help="a model from `train --out`, or an .elsh file")
    _add_data_args(e)
    e.add_argument("--seed", type=int, default=0, help="seed of the data split")

    m = sub.add_parser("demo", help="LSH against dense on the bundled digits, side by side")
    m.add_argument("--epochs", type=positive_int, default=defaults.EPOCHS)
    m.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    m.add_argument("--quiet", action="store_true", help="no progress output")

    cli_fixed.add_parsers(sub, _add_data_args)
    return parser


def train_and_report(
    data: Dataset,
    net: Network,
    epochs: int,
    train: TrainConfig,
    *,
    label: str = "",
    quiet: bool = False,
) -> dict[str, Any]:
    """Train net on data, then evaluate on the test split; the figures `--json` prints."""
    bar = None if quiet else Progress(epochs, label)
    reports = net.fit(
        data.x_train,
        data.y_train,
        epochs=epochs,
        train=train,
        progress=bar.update if bar else None,
        on_epoch=bar.epoch_done if bar else None,
    )
    train_seconds = sum(r.seconds for r in reports)
    ev = net.evaluate(data.x_test, data.y_test)
    n_train = data.x_train.shape[0]
    active = [net.layer_info(i)["k"] / net.layer_info(i)["n_out"] for i in range(len(net.hidden))]
    return {
        "data": data.name,
        "layers": net.layer_sizes,
        "lsh": net.lsh is not None,
        "active_fraction": float(np.mean(active)) if active else 1.0,
        **{key: ev[key] for key in SUMMARY_KEYS},
        "train_seconds": train_seconds,
        "epochs": epochs,
        "samples_per_second": n_train * epochs / train_seconds if train_seconds > 0 else 0.0,
        "inference_us_per_sample": ev["inference_us_per_sample"],
        "final_loss": reports[-1].loss,
    }


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


def cmd_train(args: argparse.Namespace) -> int:
    data = load(args.data, seed=args.seed, limit=args.limit)
    if args.init:
        return finetune(args, data)
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
    train = TrainConfig(**{**defaults.TRAIN.__dict__, "lr": args.lr})
    if not args.quiet:
        kind = "dense" if lsh is None else f"LSH {args.hash} K={args.bits} L={args.tables}"
        print(
            f"training {'-'.join(map(str, net.layer_sizes))} ({kind}, active "
            f"{net.active_counts()}) on {data.name}: {data.x_train.shape[0]} train / "
            f"{data.x_test.shape[0]} test",
            file=sys.stderr,
        )
    summary = train_and_report(data, net, args.epochs, train, quiet=args.quiet)
    if args.out:
        net.save(args.out)
        summary["model"] = args.out
    print_summary(summary, args.json)
    return 0


def finetune(args: argparse.Namespace, data: Dataset) -> int:
    """train --from MODEL: load, check the data fits, continue training, report."""
    net = Network.load(args.init)
    data.check_fits(net.n_in, net.n_classes)
    defaults_of = build_parser().parse_args(["train"])
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
            f"{net.epochs_trained} epochs so far) on {data.name}: {data.x_train.shape[0]} train / "
            f"{data.x_test.shape[0]} test",
            file=sys.stderr,
        )
    before = net.evaluate(data.x_test, data.y_test)["accuracy"]
    summary = train_and_report(data, net, args.epochs, train, quiet=args.quiet)
    summary = {"accuracy_before": before, **summary}
    if args.out:
        net.save(args.out)
        summary["model"] = args.out
    print_summary(summary, args.json)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if cli_fixed.is_elsh(args.model):
        return cli_fixed.eval_elsh(args)
    net = Network.load(args.model)
    data = load(args.data, seed=args.seed, limit=args.limit)
    data.check_fits(net.n_in, net.n_classes)
    ev = net.evaluate(data.x_test, data.y_test)
    summary = {"model": args.model, "data": data.name, **ev}
    print_summary(summary, args.json)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from edge_lsh.cli.demo import run_demo

    return run_demo(epochs=args.epochs, as_json=args.json, quiet=args.quiet)


def _show_warning(message: Warning | str, *_: Any, **__: Any) -> None:
    print(f"edge-lsh: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "export":
            return cli_fixed.cmd_export(args)
        if args.command == "run":
            return cli_fixed.cmd_run(args)
        if args.command == "inspect":
            return cli_fixed.cmd_inspect(args)
        if args.command == "deploy":
            return cli_fixed.cmd_deploy(args)
        return cmd_demo(args)
    except (
        DataError,
        ModelFileError,
        ValueError,
        NativeError,
        FloatingPointError,
        DeployError,
    ) as exc:
        print(f"edge-lsh: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edge-lsh: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
