"""edge-lsh against what users train with today: the same 784-1000-1000-10 network and the
same MNIST-5k split trained with Keras/TensorFlow on the CPU (batch 64, Adam, every core) and
with edge-lsh at 5 % active (one thread, and N threads in each mode when the installed edge_lsh
has the threaded trainer), epoch time and time to accuracy side by side in one run.

TensorFlow is not a dependency of edge-lsh and is never imported by this process. The Keras
side runs in a child process of the interpreter given by --keras-python (default: this one),
which needs tensorflow (or tensorflow-cpu) and numpy, e.g. in a separate virtual environment:

    python -m venv /tmp/tf-venv && /tmp/tf-venv/bin/pip install tensorflow-cpu numpy
    python tools/bench/bench_keras.py --keras-python /tmp/tf-venv/bin/python --epochs 5

Without TensorFlow there the script says so and how to install it, and exits with status 2
before any training.

Epochs run in round robin: one epoch of each contender in turn (who goes first rotates), so
machine noise is spread over all of them. A contender's epoch time is the training alone
(Keras: model.fit of one epoch; edge-lsh: Network.fit of one epoch); the test accuracy is
measured after each epoch outside the timed part. The epoch time quoted is the median of the
epochs after the first (Keras traces and compiles its graph in its first epoch, which is
shown apart); time to accuracy is the training time summed up to the first epoch whose test
accuracy reaches the target, first epoch included.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import common
import numpy as np
from common import (
    add_common_args,
    data_info,
    layers_text,
    load_data,
    machine_info,
    machine_line,
    markdown_table,
    median,
    percent_list,
    positive_int,
    progress,
    record,
    write_json_atomic,
)

from edge_lsh import defaults
from edge_lsh.data import Dataset
from edge_lsh.network import Network

PROG = "bench_keras.py"
INSTALL_HINT = (
    "install TensorFlow in a separate environment and point --keras-python at it: "
    "python -m venv /tmp/tf-venv && /tmp/tf-venv/bin/pip install tensorflow-cpu numpy, then "
    "--keras-python /tmp/tf-venv/bin/python"
)
NO_TENSORFLOW = 3  # the worker's exit status when it cannot import tensorflow

# The Keras side, run as `KERAS_PYTHON -c KERAS_WORKER DATA.npz SETTINGS_JSON`. It prints one
# JSON line when ready, then one per "epoch" line read on stdin; "quit" ends it.
KERAS_WORKER = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
try:
    import numpy as np
    import tensorflow as tf
except Exception as exc:  # ImportError, or a broken installation
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
    sys.exit(3)
data = np.load(sys.argv[1])
cfg = json.loads(sys.argv[2])
keras = tf.keras
keras.utils.set_random_seed(cfg["seed"])
layers = [keras.Input(shape=(data["x_train"].shape[1],))]
layers += [keras.layers.Dense(h, activation="relu") for h in cfg["hidden"]]
layers += [keras.layers.Dense(cfg["classes"], activation="softmax")]
model = keras.Sequential(layers)
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=cfg["lr"]),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
print(json.dumps({
    "ready": True,
    "tensorflow": tf.__version__,
    "keras": getattr(keras, "__version__", None),
    "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
    "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    "cpus": os.cpu_count(),
    "parameters": int(model.count_params()),
}), flush=True)
for line in sys.stdin:
    if line.strip() != "epoch":
        break
    t0 = time.perf_counter()
    hist = model.fit(data["x_train"], data["y_train"], batch_size=cfg["batch"], epochs=1,
                     shuffle=True, verbose=0)
    seconds = time.perf_counter() - t0
    _, acc = model.evaluate(data["x_test"], data["y_test"], batch_size=1024, verbose=0)
    print(json.dumps({"seconds": seconds, "loss": float(hist.history["loss"][-1]),
                      "test_accuracy": float(acc)}), flush=True)
"""


@dataclass
class Contender:
    """One trainer of the table and its epochs: (training seconds, test accuracy)."""

    label: str
    seconds: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def steady_seconds(self) -> float:
        """Median epoch time without the first epoch (Keras traces and compiles its graph
        in the first), or the only epoch."""
        return median(self.seconds[1:] or self.seconds)

    def time_to(self, target: float) -> float | None:
        """Training seconds summed up to the first epoch at or above target (0-1)."""
        total = 0.0
        for s, a in zip(self.seconds, self.accuracy):
            total += s
            if a >= target:
                return total
        return None


class KerasWorker:
    """The Keras side in a child process (see KERAS_WORKER)."""

    def __init__(self, python: str, data: Dataset, hidden: list[int], args: argparse.Namespace):
        self.folder = tempfile.TemporaryDirectory(prefix="bench_keras_")
        npz = Path(self.folder.name) / "data.npz"
        np.savez(
            npz, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test
        )
        settings = {
            "seed": args.seed,
            "hidden": hidden,
            "classes": data.n_classes,
            "lr": args.keras_lr,
            "batch": args.batch,
        }
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        try:
            self.proc = subprocess.Popen(
                [python, "-c", KERAS_WORKER, str(npz), json.dumps(settings)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        except OSError as exc:
            self.folder.cleanup()
            raise ValueError(f"--keras-python {python}: cannot run it ({exc.strerror})") from None
        self.python = python
        self.info = self._reply("start")

    def _reply(self, what: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        reply: dict[str, Any] = {}
        if line:
            try:
                reply = json.loads(line)
            except json.JSONDecodeError:
                reply = {"error": f"unexpected output {line.strip()[:200]!r}"}
        if "error" in reply or not line:
            self.close()
            if self.proc.returncode == NO_TENSORFLOW:
                raise ValueError(
                    f"TensorFlow is not installed for {self.python} "
                    f"({reply.get('error', 'no reply')}); {INSTALL_HINT}"
                )
            err = self._stderr_tail()
            raise ValueError(
                f"the Keras worker ({self.python}) failed at {what}: "
                f"{reply.get('error') or err or 'no output'}"
            )
        return reply

    def _stderr_tail(self) -> str:
        stream: IO[str] | None = self.proc.stderr
        text = stream.read() if stream else ""
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def epoch(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("epoch\n")
        self.proc.stdin.flush()
        return self._reply("an epoch")

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.folder.cleanup()


def has_threads() -> bool:
    """Does this edge_lsh's Network.fit take threads= and thread_mode= (issue 14)?"""
    params = inspect.signature(Network.fit).parameters
    return "threads" in params and "thread_mode" in params


@dataclass
class LshRun:
    """An edge-lsh contender: its network and how fit() is called."""

    contender: Contender
    net: Network
    fit_kwargs: dict[str, Any]


def lsh_runs(data: Dataset, args: argparse.Namespace) -> list[LshRun]:
    runs = []
    configs: list[tuple[str, dict[str, Any]]] = [("1 thread", {})]
    if has_threads() and args.threads > 1:
        for mode in args.thread_modes:
            configs.append(
                (f"{args.threads} threads, {mode}", {"threads": args.threads, "thread_mode": mode})
            )
    for text, kwargs in configs:
        net = Network(data.n_features, args.hidden, data.n_classes, defaults.LSH, seed=args.seed)
        label = f"edge-lsh {defaults.LSH.active_fraction * 100:g} % active, {text}"
        runs.append(LshRun(Contender(label), net, kwargs))
    return runs


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = common.non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text}: must be > 0")
    return value


def thread_modes(text: str) -> list[str]:
    """argparse type: comma-separated thread modes of the threaded trainer."""
    modes = [m.strip() for m in text.split(",") if m.strip()]
    if not modes or any(m not in ("async", "deterministic") for m in modes):
        raise argparse.ArgumentTypeError(f"{text!r}: expected async, deterministic or both")
    return list(dict.fromkeys(modes))


def run(args: argparse.Namespace) -> int:
    info_start = machine_info()
    data = load_data(args)
    progress(f"{PROG}: starting the Keras worker ({args.keras_python})")
    worker = KerasWorker(args.keras_python, data, args.hidden, args)
    try:
        keras = Contender(
            f"Keras/TF-CPU {worker.info['tensorflow']} dense, batch {args.batch}, Adam, "
            f"{worker.info['cpus']} cores",
            info=worker.info,
        )
        runs = lsh_runs(data, args)
        if not has_threads():
            progress(
                f"{PROG}: this edge_lsh has no threaded trainer (Network.fit threads=): "
                "edge-lsh runs on one thread only"
            )
        steps: list[Any] = [*runs, worker]
        for epoch in range(args.epochs):
            start = epoch % len(steps)
            for step in [*steps[start:], *steps[:start]]:
                if isinstance(step, KerasWorker):
                    r = step.epoch()
                    keras.seconds.append(float(r["seconds"]))
                    keras.accuracy.append(float(r["test_accuracy"]))
                    c = keras
                else:
                    rep = step.net.fit(data.x_train, data.y_train, epochs=1, **step.fit_kwargs)[0]
                    step.contender.seconds.append(rep.seconds)
                    step.contender.accuracy.append(
                        step.net.evaluate(data.x_test, data.y_test)["accuracy"]
                    )
                    c = step.contender
                progress(
                    f"epoch {epoch + 1}/{args.epochs} {c.label}: {c.seconds[-1]:.2f} s, "
                    f"test acc {c.accuracy[-1] * 100:.2f} %"
                )
    finally:
        worker.close()
    contenders = [keras, *(r.contender for r in runs)]
    return report(args, data, contenders, info_start)


def report(
    args: argparse.Namespace, data: Dataset, contenders: list[Contender], info_start: dict
) -> int:
    info = machine_info(info_start)
    layers = layers_text([data.n_features, *args.hidden, data.n_classes])
    targets = [t / 100.0 for t in args.targets]
    base = contenders[0].steady_seconds()
    rows = []
    for c in contenders:
        cells = [
            c.label,
            f"{c.seconds[0]:.2f}",
            f"{c.steady_seconds():.2f}",
            f"{c.steady_seconds() / base:.2f}",
            f"{c.accuracy[-1] * 100:.2f}",
            f"{max(c.accuracy) * 100:.2f}",
        ]
        for t in targets:
            reached = c.time_to(t)
            cells.append("not reached" if reached is None else f"{reached:.1f}")
        rows.append(cells)
    print(
        f"# {layers} on {data.name} ({data.x_train.shape[0]} train / {data.x_test.shape[0]} "
        f"test), {args.epochs} epochs each, round robin\n"
    )
    print(f"{machine_line(info)}\n")
    print(
        markdown_table(
            [
                "trainer",
                "epoch 1 s",
                "epoch s (median)",
                "x Keras",
                "final acc %",
                "best acc %",
                *(f"s to {t * 100:g} %" for t in targets),
            ],
            rows,
        )
    )
    if args.json:
        write_json_atomic(
            args.json,
            record(
                PROG,
                {
                    "layers": [data.n_features, *args.hidden, data.n_classes],
                    "data": data_info(args.data, data, args.limit),
                    "epochs": args.epochs,
                    "batch": args.batch,
                    "keras_lr": args.keras_lr,
                    "lsh": asdict(defaults.LSH),
                    "train_config": asdict(defaults.TRAIN),
                    "targets": targets,
                    "contenders": [
                        {
                            **asdict(c),
                            "epoch_median_seconds": c.steady_seconds(),
                            "time_to_target": {str(t): c.time_to(t) for t in targets},
                        }
                        for c in contenders
                    ],
                },
                info,
            ),
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(PROG, __doc__.split("\n\n")[0])
    add_common_args(p, data="mnist5k", hidden="1000,1000", epochs=5, seed=0, limit=True)
    p.add_argument(
        "--keras-python",
        default=sys.executable,
        metavar="PYTHON",
        help="interpreter with tensorflow and numpy that runs the Keras side",
    )
    p.add_argument(
        "--batch", type=positive_int, default=64, metavar="N", help="Keras mini-batch size"
    )
    p.add_argument(
        "--keras-lr",
        type=positive_float,
        default=1e-3,
        metavar="LR",
        help="Keras Adam learning rate",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="edge-lsh threads of the threaded rows (when edge_lsh has them)",
    )
    p.add_argument(
        "--thread-modes",
        type=thread_modes,
        default="async,deterministic",
        metavar="MODES",
        help="thread modes of the threaded edge-lsh rows",
    )
    p.add_argument(
        "--targets",
        type=percent_list,
        default="90,93,95",
        metavar="PCTS",
        help="test accuracies (percent) for the time-to-accuracy columns",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return common.main(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
