"""Fixed-point fine-tuning on threads (issue 14 for `edge-lsh finetune`): samples per second of
the C kernel's fixed-point trainer at 1 and 2 threads, and accuracy at 1 and 2 threads on a
domain-shift case.

Throughput: an .elsh model of --hidden neurons at --active (784-1000-10 at 5% on MNIST-5k by
default: a float base trained for one epoch, exported), fine-tuned on --samples training rows,
all layers, the finetune defaults (Adagrad, lr 0.01, momentum 0.5). Three trainers, run round
robin --rounds times (a fresh trainer from the file each time; only the training calls are
timed, not the quantization of the rows), medians:
  serial      --threads 1: one sample per step (the device's trainer)
  batch x1    --threads 1 --thread-batch B: the mini-batch trainer on one thread
  batch x2    --threads 2 --thread-batch B: the same bytes as batch x1 (checked), on 2 threads
The speed-up of the threads is batch x2 against batch x1 (the same work), and against serial.

Accuracy: digits rotated 25 degrees (tools/finetune/domain_shift.py's case: an upright base on
half A of the training split, 1000 hidden; fine-tuned on half B rotated, tested on the rotated
test split), --epochs epochs, for --seeds seeds (6) of the stochastic rounding: serial (1 thread)
against the mini-batches on 2 threads; the mean accuracy of each and the difference in points.

    python tools/bench/bench_qtrain_threads.py --out tools/bench/results/qtrain_threads.md

Timings are only comparable within one run: print the load average with them (it is printed).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common
import numpy as np
from common import machine_info, machine_line, positive_int, write_json_atomic

from edge_lsh.cli.argtypes import fraction
from edge_lsh.data import load
from edge_lsh.fileio import write_text_output
from edge_lsh.finetune import FixedTrainer

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tools" / "finetune"))
import shift  # noqa: E402  (tools/finetune/shift.py)

PROG = "bench_qtrain_threads.py"
CLI = [sys.executable, "-c", "import sys; from edge_lsh.cli import main; sys.exit(main())"]


def cli(args: list[str]) -> None:
    proc = subprocess.run(CLI + args, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench_qtrain_threads.py: edge-lsh {' '.join(args)} failed: {proc.stderr}")


def base_model(work: Path, spec: str, hidden: int, active: float, epochs: int) -> Path:
    """A float model trained on spec and exported to .elsh (made once per work folder)."""
    name = spec.replace(":", "_").replace("/", "_")
    elsh = work / f"{name}-{hidden}-{active:g}.elsh"
    if not elsh.exists():
        npz = elsh.with_suffix(".npz")
        cli(
            ["train", "--data", spec, "--hidden", str(hidden), "--active", str(active)]
            + ["--epochs", str(epochs), "--seed", "0", "--out", str(npz), "--quiet"]
        )
        cli(["export", str(npz), "--out", str(elsh)])
    return elsh


def throughput(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    elsh = base_model(work, args.data, args.hidden, args.active, 1)
    data = load(args.data, seed=0, limit=args.samples)
    kinds = {"serial": (1, None), "batch x1": (1, args.batch), "batch x2": (2, args.batch)}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    saved: dict[str, bytes] = {}
    for _ in range(args.rounds):
        for kind, (threads, batch) in kinds.items():
            tr = FixedTrainer(elsh, threads=threads, thread_batch=batch)
            xq = tr.model.quantize_input(data.x_train)
            t0 = time.perf_counter()
            tr.steps_q(xq, data.y_train)
            times[kind].append(time.perf_counter() - t0)
            saved[kind] = tr.save_bytes()
    if saved["batch x1"] != saved["batch x2"]:
        sys.exit("bench_qtrain_threads.py: 1 and 2 threads gave different bytes")
    n = data.x_train.shape[0]
    rate = {k: n / statistics.median(v) for k, v in times.items()}
    return {
        "model": f"{elsh.name} ({args.data}, {n} samples, {args.hidden} hidden, "
        f"{args.active:g} active)",
        "samples_per_second": rate,
        "rounds": args.rounds,
        "speedup_2_threads_vs_batch_1_thread": rate["batch x2"] / rate["batch x1"],
        "speedup_2_threads_vs_serial": rate["batch x2"] / rate["serial"],
        "same_bytes_1_and_2_threads": True,
    }


def accuracy(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data = load("digits", seed=0)
    half = data.x_train.shape[0] // 2
    upright = work / "digits-upright.npz"
    np.savez(
        upright,
        x_train=data.x_train[:half],
        y_train=data.y_train[:half],
        x_test=data.x_test,
        y_test=data.y_test,
    )
    elsh = base_model(work, f"npz:{upright}", 1000, 0.05, 10)
    x_ft = shift.apply("rotate25", data.x_train[half:])
    y_ft = data.y_train[half:]
    x_test = shift.apply("rotate25", data.x_test)
    result: dict[str, Any] = {
        "case": f"digits rotate25, {x_ft.shape[0]} samples, {args.epochs} epochs"
    }
    for kind, threads in (("1 thread", 1), ("2 threads", 2)):
        accs = []
        for seed in range(args.seeds):
            tr = FixedTrainer(elsh, seed=seed, threads=threads, thread_batch=None)
            if seed == 0:
                result["before"] = tr.evaluate(x_test, data.y_test)["accuracy"]
            tr.fit(x_ft, y_ft, epochs=args.epochs)
            accs.append(tr.evaluate(x_test, data.y_test)["accuracy"])
        result[kind] = {"accuracy_per_seed": accs, "mean": float(np.mean(accs))}
    result["difference_points"] = 100 * (result["2 threads"]["mean"] - result["1 thread"]["mean"])
    return result


def report(res: dict[str, Any], args: argparse.Namespace) -> str:
    t, a = res["throughput"], res["accuracy"]
    lines = [
        "# Fixed-point fine-tuning on threads",
        "",
        f"`python tools/bench/bench_qtrain_threads.py {' '.join(args.argv)}`",
        "",
        machine_line(res["machine"]),
        "",
        f"Throughput: {t['model']}; medians of {t['rounds']} round-robin rounds, "
        f"batch {args.batch}.",
        "",
        "| trainer | samples/s |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:,.0f} |" for k, v in t["samples_per_second"].items()]
    lines += [
        "",
        f"2 threads against the same mini-batches on 1 thread: "
        f"{t['speedup_2_threads_vs_batch_1_thread']:.2f}x; against the one-sample trainer: "
        f"{t['speedup_2_threads_vs_serial']:.2f}x. 1 and 2 threads wrote the same bytes.",
        "",
    ]
    if a is None:
        return "\n".join(lines)
    lines += [
        f"Accuracy: {a['case']}; before fine-tuning {a['before'] * 100:.2f}%.",
        "",
        "| trainer | mean accuracy | per seed |",
        "|---|---:|---|",
    ]
    for k in ("1 thread", "2 threads"):
        per = ", ".join(f"{v * 100:.2f}" for v in a[k]["accuracy_per_seed"])
        lines.append(f"| {k} | {a[k]['mean'] * 100:.2f}% | {per} |")
    lines += ["", f"2 threads - 1 thread: {a['difference_points']:+.2f} points.", ""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(PROG, __doc__ or "")
    p.add_argument("--data", default="mnist5k", metavar="SPEC", help="throughput data set")
    p.add_argument("--hidden", type=positive_int, default=1000, help="hidden neurons")
    p.add_argument("--active", type=fraction, default=0.05, help="active fraction")
    p.add_argument(
        "--samples", type=positive_int, default=2000, help="training rows of each timed run"
    )
    p.add_argument("--batch", type=positive_int, default=16, help="--thread-batch")
    p.add_argument("--rounds", type=positive_int, default=5, help="round-robin rounds")
    p.add_argument(
        "--epochs", type=positive_int, default=5, help="fine-tuning epochs of the accuracy runs"
    )
    p.add_argument(
        "--seeds", type=positive_int, default=6, help="rounding seeds of the accuracy runs"
    )
    p.add_argument("--no-accuracy", action="store_true", help="the throughput only")
    p.add_argument("--work", help="folder for the base models (default: a temporary one)")
    p.add_argument("--out", default="-", help="markdown results (- for stdout)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    return p


def run(args: argparse.Namespace) -> int:
    started = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        res: dict[str, Any] = {"throughput": throughput(args, work)}
        res["accuracy"] = None if args.no_accuracy else accuracy(args, work)
    res["machine"] = machine_info(started)
    text = report(res, args)
    write_text_output(args.out, text)
    if args.json:
        write_json_atomic(args.json, res)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)

    def run_with_argv(args: argparse.Namespace) -> int:
        args.argv = args_list
        return run(args)

    return common.main(PROG, parser, run_with_argv, args_list)


if __name__ == "__main__":
    sys.exit(main())
