"""Training on several threads (issue 14): throughput at 1 and --threads threads in both modes,
accuracy at 1 and --threads threads over several seeds, and the deterministic mode's bytes
over repeated runs. Default: 784-1000-10 at 5 % active on MNIST-5k (4,000 train / 1,000 test).

1. Throughput. One epoch of a fresh network (seed --seed) per measurement, in round robin
   over the kinds (one thread; --threads async; --threads deterministic; one thread with
   table maintenance switched off, which says what share of an epoch maintenance is; and
   "async, 1 thread": the asynchronous mode's threaded code path (workers, ring, barriers,
   atomic layer passes, the owner's step) on one thread, bit for bit the one-thread result,
   which says what sharing costs apart from a second core), --rounds
   rounds; samples per second from the epoch's own clock (Network.fit), medians, and each
   threaded kind's speedup as the ratio of its median to the one-thread median. One more kind
   is the machine's ceiling: --threads independent networks, each trained one epoch on one
   thread, all at once (the one-thread trainer, no sharing at all): their total samples per
   second is what --threads cores give a perfectly parallel job in this run, and each threaded
   kind is also given as a share of it (a 2-vCPU VM does not always give two cores' worth:
   the one-thread rate itself moves by up to 1.4x between quiet minutes here). Also the
   process's CPU time per sample (all threads): the work a kind does per sample, whatever
   share of the cores the machine gives it (on a busy machine that is the telling figure).
2. Accuracy. For each seed, one network of each kind trained --epochs epochs; test accuracy,
   the mean over the seeds, and each threaded kind's difference from one thread.
3. Determinism. --repeats runs of --threads deterministic (1 epoch): the SHA-256 of the
   network's whole state after each, and whether they are all the same (and the same as the
   deterministic mode on one thread, which it must equal: the mode does not depend on the
   thread count). Also whether "async, 1 thread" leaves the one-thread trainer's weights,
   biases and tables, bit for bit.

The machine's load average is recorded: on a busy machine threads wait for cores, so the
speedups there are lower bounds. Progress to stderr, a Markdown summary to stdout.

    python tools/bench/bench_threads.py                       # about 2-3 minutes, quiet machine
    python tools/bench/bench_threads.py --json -              # JSON as the last stdout line
    python tools/bench/bench_threads.py --data digits --hidden 200 --rounds 2 --epochs 1
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import common
from common import (
    add_common_args,
    data_info,
    layers_text,
    load_data,
    machine_info,
    machine_line,
    markdown_table,
    median,
    positive_int,
    progress,
    record,
    write_json_atomic,
)

from edge_lsh import defaults
from edge_lsh.cli.argtypes import fraction, thread_count
from edge_lsh.data import Dataset
from edge_lsh.native import lib
from edge_lsh.network import DEFAULT_THREAD_BATCH, THREAD_MODES, LSHConfig, Network, TrainConfig

PROG = "bench_threads.py"

# ELSH_THREADS_ASYNC_SHARED: the asynchronous code path even on one thread. A measuring mode,
# not one of the package's THREAD_MODES (nor the CLI's): registered only while it trains.
SHARED_ONE = "async-shared"

# (name, threads is --threads?, thread_mode, table maintenance on)
KINDS = (
    ("1 thread", False, "async", True),
    ("async", True, "async", True),
    ("deterministic", True, "deterministic", True),
    ("1 thread, no table maintenance", False, "async", False),
    ("async, 1 thread", False, SHARED_ONE, True),
    ("independent 1-thread runs", True, "async", True),
)
CEILING = KINDS[5][0]
# the kinds whose accuracy is measured ("async, 1 thread" is the one-thread result bit for bit)
ACCURACY_KINDS = KINDS[:3]


@contextlib.contextmanager
def thread_mode_known(mode: str) -> Iterator[None]:
    """THREAD_MODES with SHARED_ONE in it while the block runs, when `mode` is it."""
    if mode != SHARED_ONE:
        yield
        return
    THREAD_MODES[SHARED_ONE] = lib.ELSH_THREADS_ASYNC_SHARED
    try:
        yield
    finally:
        del THREAD_MODES[SHARED_ONE]


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(PROG, __doc__ or "")
    add_common_args(p, data="mnist5k", hidden="1000", epochs=2, seed=0, seeds="0,1,2", limit=True)
    p.add_argument("--active", type=fraction, default=0.05, help="active fraction")
    p.add_argument("--threads", type=thread_count, default=2, help="threads of the threaded runs")
    p.add_argument(
        "--thread-batch",
        type=positive_int,
        default=DEFAULT_THREAD_BATCH,
        help="mini-batch of the deterministic mode",
    )
    p.add_argument(
        "--rounds", type=positive_int, default=3, help="round-robin rounds of the throughput"
    )
    p.add_argument(
        "--repeats", type=positive_int, default=3, help="deterministic runs compared byte for byte"
    )
    return p


def new_net(data: Dataset, args: argparse.Namespace, seed: int) -> Network:
    lsh = LSHConfig(**{**defaults.LSH.__dict__, "active_fraction": args.active})
    return Network(data.n_features, args.hidden, data.n_classes, lsh, seed=seed)


def fit(
    net: Network,
    data: Dataset,
    args: argparse.Namespace,
    kind: tuple[Any, ...],
    epochs: int,
    threads: int | None = None,
) -> tuple[float, float]:
    """Train `epochs` epochs as `kind` does (on `threads` threads when given); the seconds the
    epochs took (fit's own clock) and the CPU seconds of the process meanwhile."""
    _, threaded, mode, maintain = kind
    train = defaults.TRAIN
    if not maintain:
        train = TrainConfig(**{**defaults.TRAIN.__dict__, "rebuild": "never"})
    if threads is None:
        threads = args.threads if threaded else 1
    cpu = time.process_time()
    with warnings.catch_warnings(), thread_mode_known(mode):
        warnings.simplefilter("ignore", RuntimeWarning)  # early-epoch loss warnings
        reports = net.fit(
            data.x_train,
            data.y_train,
            epochs=epochs,
            train=train,
            threads=threads,
            thread_mode=mode,
            thread_batch=args.thread_batch,
        )
    return sum(r.seconds for r in reports), time.process_time() - cpu


def independent_runs(data: Dataset, args: argparse.Namespace) -> tuple[float, float]:
    """--threads fresh networks (seeds --seed, --seed + 1, ...) trained one epoch each on one
    thread, all at once from Python threads (the native call releases the GIL): the seconds
    from the common start to the last one's end, and the CPU seconds of the process."""
    nets = [new_net(data, args, args.seed + i) for i in range(args.threads)]
    start = threading.Barrier(args.threads + 1)

    def work(net: Network) -> None:
        start.wait()
        fit(net, data, args, KINDS[0], 1)

    pool = [threading.Thread(target=work, args=(net,)) for net in nets]
    for th in pool:
        th.start()
    cpu = time.process_time()
    t0 = time.perf_counter()
    start.wait()
    for th in pool:
        th.join()
    return time.perf_counter() - t0, time.process_time() - cpu


def throughput(data: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    n = data.x_train.shape[0]
    rates: dict[str, list[float]] = {k[0]: [] for k in KINDS}
    cpu_us: dict[str, list[float]] = {k[0]: [] for k in KINDS}
    for r in range(args.rounds):
        order = KINDS[r % len(KINDS) :] + KINDS[: r % len(KINDS)]  # rotate who goes first
        for kind in order:
            if kind[0] == CEILING:
                seconds, cpu = independent_runs(data, args)
                samples = n * args.threads
            else:
                seconds, cpu = fit(new_net(data, args, args.seed), data, args, kind, 1)
                samples = n
            rates[kind[0]].append(samples / seconds)
            cpu_us[kind[0]].append(1e6 * cpu / samples)
            progress(f"round {r + 1}/{args.rounds}: {kind[0]}: {samples / seconds:.0f} samples/s")
    med = {name: median(v) for name, v in rates.items()}
    one = med["1 thread"]
    return {
        "samples_per_second": rates,
        "median_samples_per_second": med,
        "speedup": {
            name: med[name] / one for name in ("async", "deterministic", "async, 1 thread", CEILING)
        },
        "share_of_ceiling": {name: med[name] / med[CEILING] for name in ("async", "deterministic")},
        "cpu_us_per_sample": cpu_us,
        "median_cpu_us_per_sample": {name: median(v) for name, v in cpu_us.items()},
        "table_maintenance_share": 1.0 - one / med["1 thread, no table maintenance"],
    }


def accuracy(data: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    acc: dict[str, list[float]] = {k[0]: [] for k in ACCURACY_KINDS}
    for seed in args.seeds:
        for kind in ACCURACY_KINDS:
            net = new_net(data, args, seed)
            fit(net, data, args, kind, args.epochs)
            a = float((net.predict(data.x_test, threads=args.threads) == data.y_test).mean())
            acc[kind[0]].append(a)
            progress(f"seed {seed}: {kind[0]}: test accuracy {a:.4f}")
    mean = {name: sum(v) / len(v) for name, v in acc.items()}
    return {
        "test_accuracy": acc,
        "mean_test_accuracy": mean,
        "difference_points": {
            name: 100.0 * (mean[name] - mean["1 thread"]) for name in ("async", "deterministic")
        },
    }


def state_bytes(net: Network) -> bytes:
    """Every layer's weights, biases and table placement (not the arena's scratch, which
    training on worker threads leaves as it was)."""
    keys = ("w", "b", "neuron_bucket", "bucket_len")
    arrays = [net.layer_arrays(i) for i in range(net.n_layers)]
    return b"".join(a[k].tobytes() for a in arrays for k in keys if k in a)


def determinism(data: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    kind = KINDS[2]
    digests = []
    for i in range(args.repeats):
        net = new_net(data, args, args.seed)
        fit(net, data, args, kind, 1)
        digests.append(hashlib.sha256(net._arena.tobytes()).hexdigest())
        progress(f"deterministic run {i + 1}/{args.repeats}: {digests[-1][:16]}")
    one = new_net(data, args, args.seed)
    fit(one, data, args, kind, 1, threads=1)
    digest_one = hashlib.sha256(one._arena.tobytes()).hexdigest()
    serial, shared = new_net(data, args, args.seed), new_net(data, args, args.seed)
    fit(serial, data, args, KINDS[0], 1)
    fit(shared, data, args, KINDS[4], 1)
    same_serial = state_bytes(serial) == state_bytes(shared)
    progress(f"async, 1 thread: {'the same' if same_serial else 'OTHER'} state as 1 thread")
    return {
        "sha256": digests,
        "identical": len(set(digests)) == 1,
        "sha256_on_one_thread": digest_one,
        "identical_to_one_thread": digests[0] == digest_one,
        "async_one_thread_identical_to_one_thread": same_serial,
    }


def summary(result: dict[str, Any], args: argparse.Namespace) -> str:
    tp, acc, det = result["throughput"], result["accuracy"], result["determinism"]
    rows = []
    for name, *_ in KINDS:
        threads = args.threads if name in ("async", "deterministic", CEILING) else 1
        speed = tp["median_samples_per_second"][name]
        ratio = speed / tp["median_samples_per_second"]["1 thread"]
        mean = acc["mean_test_accuracy"].get(name)
        rows.append(
            [
                name,
                str(threads),
                f"{speed:.0f}",
                f"{ratio:.2f}x",
                f"{tp['median_cpu_us_per_sample'][name]:.0f}",
                "" if mean is None else f"{100 * mean:.2f}%",
            ]
        )
    table = markdown_table(
        [
            "kind",
            "threads",
            "samples/s (median)",
            "vs 1 thread",
            "CPU us/sample (median)",
            "test accuracy (mean)",
        ],
        rows,
    )
    lines = [
        f"{layers_text(result['layers'])} at {100 * args.active:g}% active, "
        f"{result['data']['name']}; {args.rounds} rounds, seeds {args.seeds}, "
        f"{args.epochs} epochs for accuracy",
        machine_line(result["machine"]),
        "",
        table,
        "",
        f"table maintenance: {100 * tp['table_maintenance_share']:.1f}% of a one-thread epoch",
        f"share of the ceiling ({args.threads} independent 1-thread runs, "
        f"{tp['speedup'][CEILING]:.2f}x one thread): "
        + ", ".join(f"{name} {100 * v:.0f}%" for name, v in tp["share_of_ceiling"].items()),
        f"deterministic, {args.repeats} runs on {args.threads} threads: "
        f"{'identical' if det['identical'] else 'DIFFERENT'} bytes"
        f" ({'equal' if det['identical_to_one_thread'] else 'NOT equal'} to 1 thread)",
        "async, 1 thread: "
        f"{'the same' if det['async_one_thread_identical_to_one_thread'] else 'OTHER'}"
        " parameters and tables as 1 thread",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    started = machine_info()
    data = load_data(args)
    progress(f"{PROG}: {data.name}, {data.x_train.shape[0]} train / {data.x_test.shape[0]} test")
    result: dict[str, Any] = {
        "data": data_info(args.data, data, args.limit),
        "layers": [data.n_features, *args.hidden, data.n_classes],
        "active_fraction": args.active,
        "threads": args.threads,
        "thread_batch": args.thread_batch,
        "throughput": throughput(data, args),
        "accuracy": accuracy(data, args),
        "determinism": determinism(data, args),
    }
    full = record(PROG, result, machine_info(started))
    result["machine"] = full["machine"]
    print(summary(result, args))
    if args.json:
        write_json_atomic(args.json, full)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return common.main(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
