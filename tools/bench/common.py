"""Helpers shared by the benchmark scripts in tools/bench: the command line (one parser shape,
the shared flags, argument types, the guarded main), training with progress, quantizing, timing
of the C prediction loop, machine information, Markdown tables and atomic JSON output.

Imported as ``common`` by scripts run as ``python tools/bench/<script>.py`` (Python puts the
script's folder first on sys.path).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_lsh import defaults
from edge_lsh.cli.argtypes import (  # noqa: F401  re-exported for the bench scripts
    hidden_sizes,
    non_negative_float,
    non_negative_int,
    positive_int,
)
from edge_lsh.cli.common import HelpFormatter
from edge_lsh.data import SPEC_HELP, DataError, Dataset, load
from edge_lsh.fileio import atomic_write
from edge_lsh.native import NativeError, check, ffi, lib, ptr
from edge_lsh.network import EpochReport, Network, TrainConfig
from edge_lsh.oracle.qmodel import QModel
from edge_lsh.quantize import quantize

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
STDOUT = "-"  # --json -: the JSON goes to stdout, as its last line


# ----------------------------------------------------------------------------- argument types


def percent(text: str) -> float:
    """argparse type: a percentage in (0, 100]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a percentage such as 5") from None
    if not (0.0 < value <= 100.0):
        raise argparse.ArgumentTypeError(f"{text}: must be a percentage in (0, 100]")
    return value


def percent_list(text: str) -> list[float]:
    """argparse type: comma-separated percentages such as ``5,10,25,50``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"{text!r}: expected percentages like 5,10,25,50")
    values = [percent(p) for p in parts]
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{text!r}: a percentage is repeated")
    return values


def seed_list(text: str) -> list[int]:
    """argparse type: comma-separated distinct seeds >= 0 such as ``0,1,2``."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seeds like 0,1,2") from None
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: expected seeds >= 0 like 0,1,2")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: a seed is repeated")
    return seeds


def format_percent(value: float) -> str:
    """5.0 -> '5', 12.5 -> '12.5'."""
    return f"{value:g}"


# ----------------------------------------------------------------------------- command line


def build_parser(
    prog: str, description: str, *, epilog: str | None = SPEC_HELP
) -> argparse.ArgumentParser:
    """A bench script's parser: every option's default shown in --help, the description's
    line breaks kept, the data specs as the epilog (for scripts with --data)."""
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog, formatter_class=HelpFormatter
    )


# The flags the bench scripts share: one spelling, type, metavar and help text for each.
COMMON_FLAGS: dict[str, dict[str, Any]] = {
    "data": {"metavar": "SPEC", "help": "data set, see Data specs below"},
    "hidden": {
        "type": hidden_sizes,
        "metavar": "SIZES",
        "help": "hidden layer sizes, e.g. 1000 or 1000,1000",
    },
    "epochs": {"type": positive_int, "metavar": "N", "help": "training epochs of every network"},
    "seed": {
        "type": non_negative_int,
        "metavar": "S",
        "help": "seed of the data split and of every network",
    },
    "seeds": {
        "type": seed_list,
        "metavar": "LIST",
        "help": "network seeds, comma-separated (one network of each kind per seed)",
    },
    "limit": {
        "type": positive_int,
        "metavar": "N",
        "help": "keep only the first N training and N test samples (quick runs)",
    },
    "json": {
        "metavar": "FILE",
        "help": f"also write every number to FILE as JSON ({STDOUT!r}: as the last line of stdout)",
    },
}


def add_common_args(
    p: argparse.ArgumentParser,
    *,
    data: str | None = None,
    hidden: str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    seeds: str | None = None,
    limit: bool = False,
    json: bool = True,
) -> None:
    """Add the shared flags (COMMON_FLAGS) a script has. Pass a flag's default to add it
    (None/False: the script has no such flag; --limit and --json have no default); sizes and
    seeds are given as the text a user would type ("1000,1000", "0,1,2")."""
    with_default = {"data": data, "hidden": hidden, "epochs": epochs, "seed": seed, "seeds": seeds}
    for name, default in with_default.items():
        if default is not None:
            p.add_argument(f"--{name}", default=default, **COMMON_FLAGS[name])
    for name, wanted in (("limit", limit), ("json", json)):
        if wanted:
            p.add_argument(f"--{name}", **COMMON_FLAGS[name])


def add_quantize_args(p: argparse.ArgumentParser) -> None:
    """How a float network becomes a fixed-point model (edge_lsh.quantize)."""
    p.add_argument(
        "--weight-bits", type=int, choices=[8, 16], default=8, help="bits per quantized weight"
    )
    p.add_argument(
        "--calib-samples",
        type=positive_int,
        default=1000,
        metavar="N",
        help="training rows that calibrate the activation ranges (the first N)",
    )


def main(
    prog: str,
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse argv (bad flags: exit 2 with argparse's message), check the --json target before
    any work, then run(args) with bad input and interrupts turned into an exit status."""
    args = parser.parse_args(argv)

    def checked(args: argparse.Namespace) -> int:
        if getattr(args, "json", None):
            check_json_target(args.json)
        return run(args)

    return run_guarded(prog, checked, args)


# ----------------------------------------------------------------------------- training


def load_data(args: argparse.Namespace, seed: int | None = None) -> Dataset:
    """The data of the shared flags: --data split with `seed` (default --seed), first --limit
    samples of each split when the script has --limit."""
    split = args.seed if seed is None else seed
    return load(args.data, seed=split, limit=getattr(args, "limit", None))


def layers_text(sizes: Sequence[int]) -> str:
    """[784, 1000, 10] -> '784-1000-10'."""
    return "-".join(str(s) for s in sizes)


def train(
    net: Network,
    data: Dataset,
    epochs: int,
    label: str,
    *,
    total: int | None = None,
    config: TrainConfig = defaults.TRAIN,
) -> list[EpochReport]:
    """net.fit on the training split for `epochs` epochs with a progress line per epoch
    (``total``: the epochs the whole run gives this network, when it is trained in parts)."""
    total = epochs if total is None else total

    def report(r: EpochReport) -> None:
        progress(
            f"train {label}: epoch {r.epoch}/{total} {r.seconds:.2f} s, loss {r.loss:.4f}, "
            f"train acc {r.train_accuracy * 100:.2f} %"
        )

    return net.fit(data.x_train, data.y_train, epochs=epochs, train=config, on_epoch=report)


def quantized(net: Network, data: Dataset, args: argparse.Namespace) -> QModel:
    """The fixed-point model of net: --weight-bits weights, activations calibrated on the
    first --calib-samples training rows."""
    return quantize(net, data.x_train[: args.calib_samples], weight_bits=args.weight_bits)


# ----------------------------------------------------------------------------- timing


class CPredictTimer:
    """Times ``lib.elsh_predict`` (the C loop: one sample after another, batch-1 semantics)
    over a fixed input matrix, with the pointers made once so that only the C call is timed."""

    def __init__(self, net: Network, x: np.ndarray) -> None:
        if x.dtype != np.float32 or not x.flags.c_contiguous or x.ndim != 2:
            raise ValueError("CPredictTimer needs a C-contiguous 2-D float32 array")
        if x.shape[1] != net.n_in or x.shape[0] < 1:
            raise ValueError(f"inputs of shape {x.shape} do not fit a network of {net.n_in} inputs")
        self.net = net
        self.x = x
        self.n = int(x.shape[0])
        self.pred = np.empty(self.n, dtype=np.int32)
        self._x_p = ptr(x, "float *")
        self._pred_p = ptr(self.pred, "int32_t *")

    def run(self) -> float:
        """One timed pass over every sample; returns the seconds it took."""
        t0 = time.perf_counter_ns()
        status = lib.elsh_predict(self.net._net, self._x_p, self.n, self._pred_p, ffi.NULL)
        t1 = time.perf_counter_ns()
        check(status, "predict")
        return (t1 - t0) * 1e-9


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (numpy's linear interpolation) of values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


# ----------------------------------------------------------------------------- machine info


def cpu_model() -> str | None:
    """The CPU model from /proc/cpuinfo (Linux), else platform.processor() or None."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("model name", "Processor", "cpu model", "Hardware"):
            return value.strip()
    return platform.processor() or None


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def git_revision() -> str | None:
    """The repository's HEAD commit, with '+dirty' when the work tree has changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "--no-optional-locks",
                "-C",
                str(REPO_ROOT),
                "status",
                "--porcelain",
                "--untracked-files=no",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def machine_info(started: dict[str, Any] | None = None) -> dict[str, Any]:
    """Where and when the benchmark ran; with `started` (machine_info() at the start of the
    run) also the load average then."""
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": load_average(),
        "numpy": np.__version__,
        "edge_lsh_git": git_revision(),
    }
    if started is not None:
        info["load_average_at_start"] = started["load_average_1_5_15"]
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One human line summarising machine_info()."""
    load = f"load avg (1, 5, 15 min) {info['load_average_1_5_15']}"
    if "load_average_at_start" in info:
        load = f"{load} at end, {info['load_average_at_start']} at start"
    return (
        f"{info['date']} | {info['cpu_model'] or 'unknown CPU'} x{info['cpu_count']} | "
        f"{info['platform']} | {info['python']} | numpy {info['numpy']} | {load}"
    )


# ----------------------------------------------------------------------------- output


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with padded columns; the first column left-aligned, others right."""
    widths = [len(h) for h in headers]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError("row and header lengths differ")
        widths = [max(w, len(cell)) for w, cell in zip(widths, row)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def data_info(spec: str, data: Dataset, limit: int | None) -> dict[str, Any]:
    """What a benchmark's JSON records about its data set."""
    return {
        "spec": spec,
        "name": data.name,
        "n_train": int(data.x_train.shape[0]),
        "n_test": int(data.x_test.shape[0]),
        "n_features": data.n_features,
        "n_classes": data.n_classes,
        "limit": limit,
    }


def record(
    prog: str, fields: dict[str, Any], machine: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A run's JSON: the script, its command line and the machine (machine_info() now unless
    given), then fields."""
    return {
        "benchmark": Path(prog).stem,
        "command": [prog, *sys.argv[1:]],
        "machine": machine or machine_info(),
        **fields,
    }


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write obj as JSON to path: temporary file in the same folder, fsync, os.replace;
    path '-': one line on stdout."""
    if str(path) == STDOUT:
        print(json.dumps(obj), flush=True)
        return
    with atomic_write(path) as f:
        f.write((json.dumps(obj, indent=2) + "\n").encode())
    progress(f"wrote {path}")


def check_json_target(path: str | os.PathLike[str]) -> None:
    """Fail early (before a long run) when the JSON file could not be written."""
    if str(path) == STDOUT:
        return
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise ValueError(f"--json {target}: is a directory")
    if not folder.is_dir():
        raise ValueError(f"--json {target}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"--json {target}: folder {folder} is not writable")


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def run_guarded(
    prog: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace
) -> int:
    """run(args), turning bad input and interrupts into a message and an exit status."""
    try:
        return run(args)
    except (DataError, ValueError, NativeError, FloatingPointError, OSError) as exc:
        return fail(prog, str(exc))
    except KeyboardInterrupt:
        return fail(prog, "interrupted", 130)


def fail(prog: str, message: str, code: int = 2) -> int:
    """Print ``prog: error: message`` on stderr and return the exit code."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return code
