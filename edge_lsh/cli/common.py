"""What several ``edge-lsh`` subcommands share: the data options, the progress line, training
with its summary, and telling an .elsh file from a float model."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np

from edge_lsh.cli.argtypes import positive_int, thread_count
from edge_lsh.data import LABEL_COLUMNS, Dataset, load
from edge_lsh.errors import DataError
from edge_lsh.format import MAGIC as ELSH_MAGIC
from edge_lsh.network import DEFAULT_THREAD_BATCH, THREAD_MODES, Network, TrainConfig
from edge_lsh.report import SUMMARY_KEYS


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows each option's default (where it has one worth showing) and keeps the
    description's and epilog's line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or "default" in text
            or default is None
            or default is False
            or default == argparse.SUPPRESS
            or action.option_strings == []
        ):
            return text
        if isinstance(default, list):
            return text + f" (default: {','.join(map(str, default))})"
        return text + " (default: %(default)s)"


def add_label_column_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--label-column",
        choices=LABEL_COLUMNS,
        help="where a CSV file keeps each row's class label (default: last, or what the "
        "model recorded)",
    )


def add_data_args(p: argparse.ArgumentParser, *, default: str | None = "digits") -> None:
    p.add_argument(
        "--data",
        default=default,
        metavar="SPEC",
        help="data set (see Data specs)"
        if default
        else "data set (see Data specs; default: the model's own, its held-out split)",
    )
    p.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help="use only the first N samples of the training split and of the test split",
    )
    add_label_column_arg(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")


def add_thread_args(p: argparse.ArgumentParser, *, training: bool) -> None:
    """--threads (and, for training, --thread-mode and --thread-batch)."""
    p.add_argument(
        "--threads",
        type=thread_count,
        default=1,
        metavar="N",
        help="cores to use"
        + (
            " (training and evaluation)"
            if training
            else ": the rows split among them, the same predictions"
        ),
    )
    if not training:
        return
    p.add_argument(
        "--thread-mode",
        choices=sorted(THREAD_MODES),
        default="async",
        help="async: lock-free per-sample training against shared weights, each neuron stepped "
        "by its owner thread (no update lost, a few samples stale), results vary from run to "
        "run (--threads 1 is the one-thread trainer exactly); deterministic: mini-batches of "
        "--thread-batch samples trained against one snapshot, their steps applied in sample "
        "order: the same bytes on every run and for every --threads",
    )
    p.add_argument(
        "--thread-batch",
        type=positive_int,
        default=DEFAULT_THREAD_BATCH,
        metavar="B",
        help="samples per mini-batch of --thread-mode deterministic",
    )


def load_model_data(
    spec: str | None,
    seed: int | None,
    limit: int | None,
    label_column: str | None,
    record: dict[str, Any] | None,
    model: str,
    flag: str = "--data",
) -> Dataset:
    """The data to evaluate (or calibrate) a model on: the spec given, or the one the model
    recorded. With the model's own spec the split is the one it was trained with (its seed,
    test fraction and label column), so the test rows are rows it never saw."""
    if spec is None:
        if not record:
            raise DataError(f"{model} does not record the data it was trained on: pass {flag} SPEC")
        spec = str(record["spec"])
    rec = record if record and spec == record.get("spec") else {}
    return load(
        spec,
        seed=seed if seed is not None else int(rec.get("seed", 0)),
        test_fraction=float(rec.get("test_fraction", 0.2)),
        limit=limit if limit is not None else rec.get("limit"),
        label_column=label_column or str(rec.get("label_column", "last")),
    )


def plural(n: int, word: str) -> str:
    """'1 epoch', '3 epochs'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def is_elsh(path: str) -> bool:
    """True when the file at path starts with the .elsh magic."""
    try:
        with open(path, "rb") as f:
            return f.read(len(ELSH_MAGIC)) == ELSH_MAGIC
    except OSError:
        return False


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


def train_and_report(
    data: Dataset,
    net: Network,
    epochs: int,
    train: TrainConfig,
    *,
    label: str = "",
    quiet: bool = False,
    after_epoch: Callable[[], None] | None = None,
    threads: int = 1,
    thread_mode: str = "async",
    thread_batch: int = DEFAULT_THREAD_BATCH,
) -> dict[str, Any]:
    """Train net on data, then evaluate on the test split; the figures `--json` prints.
    after_epoch runs after every epoch (checkpoints). threads > 1 trains and evaluates on that
    many cores (Network.fit)."""
    bar = None if quiet else Progress(epochs, label)
    test_accuracy: list[float] = []

    def on_epoch(report: Any) -> None:  # accuracy on the test split after every epoch
        test_accuracy.append(
            float((net.predict(data.x_test, threads=threads) == data.y_test).mean())
        )
        if bar:
            bar.epoch_done(report, test_accuracy[-1])
        if after_epoch:
            after_epoch()

    reports = net.fit(
        data.x_train,
        data.y_train,
        epochs=epochs,
        train=train,
        progress=bar.update if bar else None,
        on_epoch=on_epoch,
        threads=threads,
        thread_mode=thread_mode,
        thread_batch=thread_batch,
    )
    train_seconds = sum(r.seconds for r in reports)
    ev = net.evaluate(data.x_test, data.y_test, threads=threads)
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
        "test_accuracy_per_epoch": test_accuracy,
    }
