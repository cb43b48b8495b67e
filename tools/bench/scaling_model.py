"""A scaling model for multi-core LSH training (issue 14), grounded in measured conflict rates.

The question: when T threads train one 784-1000-10 network at 5 % active at the same time,
each on its own samples against shared weights (Hogwild, or the deterministic mode's shards),
how much faster is it than one thread, and how many updates do the threads lose to each other?

What is measured (this script, one thread, the existing Python API)
-------------------------------------------------------------------
* The active set of every training sample: a network is trained with ``elsh_train_batch`` one
  sample per call (the exact trajectory of ``Network.fit``, table schedule included) and
  ``Network.last_active(0)`` is read after each sample. Layer 0 (784 -> 1000, LSH) updates the
  rows of its active neurons, every one of their 784 weights and the bias (the input is dense);
  the output layer (1000 -> 10, dense) updates all 10 rows, but in each row only the columns of
  the hidden layer's active neurons, and all 10 biases.
* p_r, the fraction of samples whose step writes row r of layer 0 (the same for column r of the
  output layer), from the last recorded epoch.
* The time of one training sample on one thread (``Network.fit``, median of epochs), the share
  spent in the forward pass (``elsh_net_forward`` alone on the same samples), the table
  maintenance per sample (while recording the trace each call is timed: the median call that
  updated the tables minus the median call that did not, times the updates per sample), a full
  rebuild for reference, the time of a shuffle, the bytes each sample touches (op counters),
  and the copy bandwidth of this machine with 1 and all threads (numpy, which releases the
  GIL).

The model
---------
1. Conflicts. T threads each run one sample "at the same time" (one step). Samples are drawn
   independently, so for a row written with probability p_r by one sample

       P(row r written by >= 2 threads) = 1 - (1 - p_r)^T - T p_r (1 - p_r)^(T - 1)

   and the expected number of conflicting rows per step is the sum over rows. The fraction of
   one thread's row writes that another thread also writes in the same step is

       f_shared(T) = sum_r p_r (1 - (1 - p_r)^(T - 1)) / sum_r p_r.

   Both are also estimated by Monte Carlo from the recorded active sets (T samples drawn from
   the trace per step); the two agree when the samples of one step are independent. The dense
   output layer's 10 rows and its biases are written by every thread in every step: at row
   granularity they conflict with probability 1 for T >= 2; element (c, j) of the output layer
   conflicts exactly when hidden row j does.
2. Lost updates (async mode). Shared values are read and written with relaxed atomic loads and
   stores, not atomic read-modify-writes, so a write is lost when another thread's write to the
   same element lands between its load and its store. With the steps' phases independent and
   uniform over a step of length t_step, and a read-modify-write window t_rmw, one concurrent
   writer of the same element in the same step destroys a write with probability about
   2 t_rmw / t_step. The expected lost fraction of writes is therefore

       lost(T) = (2 t_rmw / t_step) * (T - 1) * E_w[p]

   where E_w[p] = sum_r p_r^2 / sum_r p_r is the write-weighted mean frequency (the expected
   number of other writers per write is (T - 1) E_w[p]); for the output biases p = 1. t_rmw is
   bounded by the measured time per updated parameter (the whole step divided by the
   parameters it updates), so the figure is an upper estimate; f_shared is the bound when
   every concurrent write were lost.
3. Coherence. A cache line another core wrote since this core last touched it costs a
   coherence miss (t_coh) instead of a private-cache hit. For a line touched by a sample with
   probability q, this thread's next touch comes after G ~ Geometric(q) of its samples, during
   which the other T - 1 threads run (T - 1) G samples, so

       P(modified since last touch) = 1 - q x / (1 - (1 - q) x),   x = (1 - q)^(T - 1)

   (1 for q = 1, 1 - 1/T as q -> 0). This costs extra only for lines that one thread would
   have found in its own private cache. Which those are follows from the measured p_r: the
   written state is cut into pieces a sample touches all or nothing of (each layer-0 row with
   its bias and optimizer state, 150 lines; each 16-column line of the output layer's 10 rows
   x 3 arrays; the output biases), and an LRU cache keeps the hottest pieces, so the private
   cache is filled hottest first. Extra time per sample: sum over the pieces in it of
   q x lines x P(modified) x t_coh / mlp, mlp being how many misses a core overlaps.
4. Memory bandwidth. The pieces that do not fit in the last-level cache (filled hottest first
   too) come from DRAM and go back: q x lines x 64 B x 2 per sample. T threads need T times
   that bandwidth, so per-sample time >= DRAM bytes / total bandwidth. Because LSH keeps
   choosing the same neurons (see the measured concentration), the hot state is small.
5. Amdahl. Work that one thread does while the others wait: the per-epoch shuffle. Table
   maintenance runs between barriers but is split among the workers in both modes
   (native/src/train_threads_f32.c: each re-hashes the dirty neurons of its rows and moves
   them in its range of tables), so it counts as parallel work; what the leader still does
   alone there (statistics, clearing the dirty flags) is below a microsecond per sample
   (tools/bench/threads_split.c) and left out. Loading the data is once per run and reported
   apart.

   Asynchronous mode, time per sample with T threads and throughput speedup S(T):

       t_T = t_serial + max((t_par + t_coh_extra(T)) / T, dram_bytes / bandwidth)
       S(T) = (t_serial + t_par) / t_T

6. Deterministic mode. A mini-batch of B samples (Network.fit's thread_batch, 16): phase 1
   (forward, loss, deltas, nothing written; the measured forward time) split evenly, a
   barrier, phase 2 (the optimizer steps and the table maintenance, the rest of a sample's
   time) split by neuron ranges cut where the batch's steps are halved (thirded, ...), so
   phase 2 takes as long as its busiest range: with the measured p_r as the expected steps, the
   largest share of sum p_r (n_in + 1) over ranges cut that way (plus the output rows); about
   1 / T. No two threads write the same value; a worker re-reads in phase 1 the rows other
   workers wrote in the last phase 2 (coherence misses once a batch, not once a sample; t_coh
   is one worker's misses of a batch over B).

       t_T = t_serial + max(t_phase1 / T + t_phase2 * largest_share(T) + t_coh, floor)

   Every time is multiplied by `slow`, the target core's time per sample relative to this
   machine (an assumption, per target); the machine constants of the other targets are
   assumptions written in targets() and in the result, to be replaced by measurements on the
   boards.

Run (about a minute on a quiet machine):

    python tools/bench/scaling_model.py --epochs 2 --json tools/bench/results/scaling.json

When the installed edge_lsh has the threaded trainer (Network.fit threads=, thread_mode=),
the script also measures it here: fresh networks of the same seed at 1 and --threads threads in
each mode, one epoch each in round robin, medians, next to the prediction for this machine.

What the model leaves out: that a thread's work per sample (t_par) can differ between the
threaded code path and the one-thread trainer. Both vectorize the dense dot products and the
optimizer step (layer_f32_body.h, "Vectors"; the same bits), but the asynchronous workers
(layer_f32_shared.c) must move the shared parameters as relaxed atomic 64-bit pairs, where the
one-thread trainer (layer_f32.c) uses plain vector loads and stores: the shared optimizer step
takes about 1.7x as long (single-thread microbenchmark on this machine, 50 rows of 785:
80 us against 48 us, tools/bench/shared_step_micro.c). So async at T threads over one thread is
the model's scaling divided by that per-sample cost: tools/bench/bench_threads.py measures the
shared path alone on one thread ("async, 1 thread"), and async(T) / "async, 1 thread" is the
figure to hold against this model's
prediction.

Since 2026-11-30 (helper "async3") the asynchronous mode is not Hogwild: each row has one owner
thread, the other threads' deltas reach it through lock-free rings, and it applies them every
DRAIN_AT (8) records, a row's steps back to back (train_threads_f32.c). Item 2 is then what
relaxed-atomic Hogwild would lose (the mode loses nothing), and `predict` (items 3-5 as
written above) is kept as "hogwild": the design the measured conflicts ruled out. The
asynchronous mode is priced by item 7:

7. Asynchronous mode, rows owned (predict_owned). The samples' forward passes and deltas
   (t_forward) are split evenly: the workers take samples one at a time. The optimizer steps
   are split by ownership, rows dealt in blocks of 16 round robin (owner_max_share with the
   measured p_r; the 10-row output layer is one block, one worker's); because a worker with
   more steps to apply takes fewer samples, the step only costs wall time beyond the even
   share when one owner's steps alone exceed it. The owner's step costs `owner_step_cost`
   (1.1: 55 against 49 us for 50 x 785 in tools/bench/shared_step_micro.c; only the weight and
   bias stores are atomic). Table maintenance is split evenly (any worker hashes a finished
   owner's blocks, train_threads_f32.c hash_share). Coherence as in item 6 with the drain in
   place of the batch: a row is written by its owner about once per DRAIN_AT samples of all
   workers, so a reader misses a line of it at most once per drain (DRAIN_AT / T of its own
   samples):

       compute = max((t_forward + t_step x cost + t_tables) / T, t_step x cost x share)
       t_T = t_serial + max(compute + t_coh(drain), floor)

   Left out: the straggler at the end of each table-update step (about half a sample on one
   worker, partly overlapped with hashing since the step no longer waits for the others' last
   records) and the ring bookkeeping; threads_split.c measures both.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import common
import numpy as np
from common import (
    add_common_args,
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
from edge_lsh.data import load
from edge_lsh.native import check, ffi, lib, ptr
from edge_lsh.network import CENTER_SAMPLES, LSHConfig, Network, TrainConfig

PROG = "scaling_model.py"
LINE_FLOATS = 16  # a 64-byte cache line holds 16 float32
STATE_ARRAYS = 3  # w, Adagrad accumulator g2, momentum vel: each written per updated parameter
THREAD_COUNTS = (1, 2, 4, 8, 16, 56)


# ----------------------------------------------------------------------------- the arithmetic


def conflict_probability(p: Any, threads: int) -> np.ndarray:
    """P(a row is written by >= 2 of `threads` independent samples), for per-sample write
    probabilities p (array)."""
    p = np.asarray(p, dtype=np.float64)
    if threads < 2:
        return np.zeros_like(p)
    q = 1.0 - p
    return 1.0 - q**threads - threads * p * q ** (threads - 1)


def expected_conflicting_rows(p: Any, threads: int) -> float:
    """Expected number of rows written by >= 2 threads in one step."""
    return float(conflict_probability(p, threads).sum())


def shared_write_fraction(p: Any, threads: int) -> float:
    """Fraction of one thread's row writes that another thread also makes in the same step."""
    p = np.asarray(p, dtype=np.float64)
    total = p.sum()
    if threads < 2 or total == 0:
        return 0.0
    return float((p * (1.0 - (1.0 - p) ** (threads - 1))).sum() / total)


def write_weighted_frequency(p: Any) -> float:
    """E_w[p] = sum p^2 / sum p: the mean write probability of the row a write goes to."""
    p = np.asarray(p, dtype=np.float64)
    total = p.sum()
    return float((p * p).sum() / total) if total else 0.0


def lost_update_fraction(p: Any, threads: int, rmw_over_step: float) -> float:
    """Expected fraction of writes lost to a concurrent relaxed store (model item 2)."""
    if threads < 2:
        return 0.0
    return min(1.0, 2.0 * rmw_over_step) * (threads - 1) * write_weighted_frequency(p)


def modified_since_last_touch(q: Any, threads: int) -> np.ndarray:
    """P(another of `threads` threads wrote a line since this thread last touched it), for a
    line touched by a sample with probability q (model item 3)."""
    q = np.asarray(q, dtype=np.float64)
    if threads < 2:
        return np.zeros_like(q)
    x = (1.0 - q) ** (threads - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        stay = np.where(q > 0, q * x / (1.0 - (1.0 - q) * x), 1.0 / threads)
    return 1.0 - stay


def monte_carlo_conflicts(
    active: np.ndarray, threads: int, steps: int, rng: np.random.Generator
) -> dict[str, float]:
    """Conflicts of `steps` steps, each of `threads` rows of `active` (a boolean samples x rows
    matrix of written rows) drawn at random: mean rows written by >= 2 threads per step, the
    fraction of writes shared with another thread in the same step, P(a step has a conflict)."""
    n = active.shape[0]
    picks = rng.integers(0, n, size=(steps, threads))
    writers = active[picks].sum(axis=1, dtype=np.int64)  # steps x rows: threads writing a row
    writes = writers.sum()
    return {
        "conflicting_rows": float((writers >= 2).sum(axis=1).mean()),
        "shared_write_fraction": float(writers[writers >= 2].sum() / writes) if writes else 0.0,
        "p_step_has_conflict": float((writers >= 2).any(axis=1).mean()),
    }


def line_touch_probability(active: np.ndarray, line: int = LINE_FLOATS) -> np.ndarray:
    """Per cache line of a row over the hidden units: P(a sample touches it), from a boolean
    samples x units matrix."""
    n, units = active.shape
    lines = -(-units // line)
    padded = np.zeros((n, lines * line), dtype=bool)
    padded[:, :units] = active
    return padded.reshape(n, lines, line).any(axis=2).mean(axis=0)


LINE_BYTES = 64


@dataclass(frozen=True)
class StatePieces:
    """The written state cut into pieces that a sample touches all or nothing of: each layer-0
    row (its 784 weights and bias, with their Adagrad accumulators and momentum), each 16-column
    cache line of the output layer's rows (10 rows x 3 arrays) and the output biases (3 lines).
    touch[i] is P(a sample touches piece i), lines[i] its cache lines."""

    touch: np.ndarray
    lines: np.ndarray

    @classmethod
    def of(cls, p_rows: np.ndarray, p_out_lines: np.ndarray, n_in: int, n_out: int) -> StatePieces:
        row_lines = STATE_ARRAYS * -(-(n_in + 1) * 4 // LINE_BYTES)
        touch = np.concatenate([p_rows, p_out_lines, [1.0]])
        lines = np.concatenate(
            [
                np.full(len(p_rows), row_lines, dtype=np.float64),
                np.full(len(p_out_lines), n_out * STATE_ARRAYS, dtype=np.float64),
                [STATE_ARRAYS],
            ]
        )
        return cls(touch.astype(np.float64), lines)

    def cache_terms(self, threads: int, private_bytes: int, llc_bytes: int) -> dict[str, float]:
        """Fill the private cache and then the last-level cache with the pieces hottest first
        (what an LRU cache keeps). Per sample: lines that one thread would find in its private
        cache but another thread modified (model item 3), and DRAM bytes for the pieces that
        do not fit the last-level cache (read and written back, model item 4)."""
        order = np.argsort(-self.touch, kind="stable")
        touch, lines = self.touch[order], self.lines[order]
        upto = np.cumsum(lines * LINE_BYTES)
        private = upto <= private_bytes
        beyond_llc = upto > llc_bytes
        pm = modified_since_last_touch(touch, threads)
        return {
            "coherence_lines": float((touch * lines * pm)[private].sum()),
            "private_fraction_of_writes": float((touch * lines)[private].sum())
            / float((touch * lines).sum()),
            "dram_bytes": float((touch * lines)[beyond_llc].sum() * LINE_BYTES * 2),
        }


@dataclass(frozen=True)
class Target:
    """A machine the model predicts for. Only `this machine` has measured constants; the
    others are assumptions (in `note`) to be replaced by measurements on the board."""

    name: str
    cores: int
    slow: float  # time per sample relative to this machine, one core
    private_bytes: int  # one core's own cache (the level a coherence miss replaces)
    llc_bytes: int  # the last-level cache, shared
    dram_gb_s: float  # total sustained copy bandwidth, all cores
    coh_ns: float  # one coherence miss (a line another core wrote)
    mlp: float  # coherence misses one core overlaps
    note: str


def targets(here_bandwidth: float, here_private: int, here_llc: int) -> list[Target]:
    mb = 1 << 20
    return [
        Target("this machine", os.cpu_count() or 1, 1.0, here_private, here_llc, here_bandwidth,
               100.0, 4.0,
               "measured: copy bandwidth (numpy, all cores), caches from sysfs; coherence miss "
               "100 ns and 4 overlapped misses assumed"),
        Target("Pi 4 (4x Cortex-A72)", 4, 4.0, 32 << 10, 1 * mb, 4.0, 100.0, 2.0,
               "assumed: 32 KB L1D private, 1 MB L2 shared, LPDDR4 about 4 GB/s copy, a "
               "sample 4x slower than here"),
        Target("Pi 5 (4x Cortex-A76)", 4, 2.0, 512 << 10, 2 * mb, 8.0, 100.0, 4.0,
               "assumed: 512 KB L2 private, 2 MB L3, LPDDR4X about 8 GB/s copy, a sample 2x "
               "slower than here"),
        Target("56 cores, 2 sockets (seed)", 56, 1.0, 256 << 10, 35 * mb, 100.0, 250.0, 6.0,
               "assumed: 256 KB L2 private, 35 MB L3 a socket, about 100 GB/s, coherence "
               "across sockets about 250 ns, a sample as fast as here"),
    ]  # fmt: skip


@dataclass
class Measured:
    """What one-thread training measured (all times in seconds, per training sample)."""

    n_train: int
    k: int
    rows: int
    t_sample: float  # Network.fit, median over epochs
    t_forward: float  # elsh_net_forward alone
    t_tables: float  # table maintenance per sample (timed updates x updates per sample)
    t_shuffle: float  # one shuffle, per sample
    t_load: float  # loading the data set, once
    params_per_sample: int  # parameters one step updates
    bytes_touched: float  # op-counted weight and table bytes per sample
    bandwidth_1: float  # GB/s, numpy copy, one thread
    bandwidth_all: float  # GB/s, numpy copy, every core
    private_bytes: int
    llc_bytes: int


def predict(m: Measured, t: Target, threads: int, pieces: StatePieces) -> dict[str, float]:
    """Model item 5, Hogwild (every thread steps shared rows; the asynchronous mode before rows
    had owners, kept as the design the measured conflicts ruled out), for `threads` threads on
    target t: time per sample and its terms. Table maintenance split among the workers."""
    serial = m.t_shuffle * t.slow
    parallel = (m.t_sample * t.slow) - serial
    cache = pieces.cache_terms(threads, t.private_bytes, t.llc_bytes)
    coh = cache["coherence_lines"] * t.coh_ns * 1e-9 / t.mlp
    bw_floor = cache["dram_bytes"] / (t.dram_gb_s * 1e9)
    per_sample = serial + max((parallel + coh) / threads, bw_floor)
    one = serial + parallel
    return {
        "threads": threads,
        "seconds_per_sample": per_sample,
        "speedup": one / per_sample,
        "serial_share": serial / one,
        "coherence_lines_per_sample": cache["coherence_lines"],
        "coherence_seconds_per_sample": coh,
        "dram_bytes_per_sample": cache["dram_bytes"],
        "bandwidth_floor_seconds": bw_floor,
        "bandwidth_bound": float(bw_floor > (parallel + coh) / threads),
    }


def phase2_max_share(p_rows: np.ndarray, threads: int, n_in: int, n_out: int, k: int) -> float:
    """Deterministic mode, phase 2: worker w applies the optimizer steps to a range of neurons
    of each layer, the ranges cut where the batch's steps reach w / T of the layer's (rows_of
    in train_threads_f32.c; here the expected steps p_r stand for a batch's). Expected work of
    a row: p_r x (n_in + 1) parameters in layer 0, k + 1 for each output row (every sample).
    Returns the largest worker's share of the work (1 / T when balanced)."""
    work = np.zeros(threads)
    for steps, per_step in ((np.asarray(p_rows, dtype=float), n_in + 1), (np.ones(n_out), k + 1)):
        below = np.concatenate(([0.0], np.cumsum(steps)[:-1]))  # steps of the rows before each
        total = float(steps.sum())
        # cut c: the first row with (steps below it) * T >= total * c; cut T: the end
        cuts = []
        for c in range(threads):
            reached = below * threads >= total * c
            cuts.append(int(np.argmax(reached)) if reached.any() else len(steps))
        cuts.append(len(steps))
        for w in range(threads):
            work[w] += float(steps[cuts[w] : cuts[w + 1]].sum()) * per_step
    return float(work.max() / work.sum())


def interval_coherence(
    pieces: StatePieces, t: Target, threads: int, interval: int
) -> tuple[float, float]:
    """Coherence misses when every row is written (by one worker) once per `interval` samples
    of all workers together and read by every worker in its samples between (the deterministic
    mode's batch, the asynchronous mode's drain): a worker misses the lines of the private
    pieces its interval / T samples touch, (T - 1) / T of them written by another worker.
    Lines and seconds, per sample."""
    order = np.argsort(-pieces.touch, kind="stable")
    touch, lines = pieces.touch[order], pieces.lines[order]
    private = np.cumsum(lines * LINE_BYTES) <= t.private_bytes
    own = max(1.0, interval / threads)  # one worker's samples in an interval
    stale = (1.0 - (1.0 - touch) ** own) * lines * (threads - 1) / threads
    coh_lines = float(stale[private].sum()) / interval
    return coh_lines, coh_lines * t.coh_ns * 1e-9 / t.mlp


def timing_terms(
    threads: int,
    serial: float,
    one: float,
    compute: float,
    coh_lines: float,
    coh: float,
    cache: dict[str, float],
    bw_floor: float,
) -> dict[str, float]:
    """The result of a prediction: `compute` the parallel part's time per sample (coherence
    included), the DRAM floor under it, the serial part on top."""
    per_sample = serial + max(compute, bw_floor)
    return {
        "threads": threads,
        "seconds_per_sample": per_sample,
        "speedup": one / per_sample,
        "serial_share": serial / one,
        "coherence_lines_per_sample": coh_lines,
        "coherence_seconds_per_sample": coh,
        "dram_bytes_per_sample": cache["dram_bytes"],
        "bandwidth_floor_seconds": bw_floor,
        "bandwidth_bound": float(bw_floor > compute),
    }


def predict_deterministic(
    m: Measured,
    t: Target,
    threads: int,
    pieces: StatePieces,
    phase2_share: float,
    batch: int = 16,
) -> dict[str, float]:
    """The deterministic mode (train_threads_f32.c): per mini-batch of `batch` samples, phase
    1 (forward, loss, deltas; nothing written) split evenly over the workers, a barrier, phase
    2 (the optimizer steps) split by neuron ranges, so its time is that of the busiest range
    (phase2_share of the work). Coherence: in phase 1 a worker reads rows that other workers
    wrote in the last phase 2: (T - 1) / T of the private pieces a shard of batch / T samples
    touches, once a batch. Table maintenance in phase 2, split as the optimizer steps."""
    serial = m.t_shuffle * t.slow
    phase1 = m.t_forward * t.slow
    phase2 = (m.t_sample - m.t_forward - m.t_shuffle) * t.slow
    coh_lines, coh = interval_coherence(pieces, t, threads, batch)
    cache = pieces.cache_terms(threads, t.private_bytes, t.llc_bytes)
    bw_floor = cache["dram_bytes"] / (t.dram_gb_s * 1e9)
    compute = phase1 / threads + phase2 * (phase2_share if threads > 1 else 1.0) + coh
    one = serial + phase1 + phase2
    return {
        **timing_terms(threads, serial, one, compute, coh_lines, coh, cache, bw_floor),
        "phase2_largest_share": phase2_share if threads > 1 else 1.0,
    }


OWNED_BLOCK = 16  # rows per ownership block (train_threads_f32.c)
DRAIN_AT = 8  # records an owner lets wait before it applies them (train_threads_f32.c)
OWNER_STEP_COST = 1.1  # the owner's optimizer step over the plain one (shared_step_micro.c)


def owner_max_share(
    p_rows: np.ndarray, threads: int, n_in: int, n_out: int, k: int, block: int = OWNED_BLOCK
) -> float:
    """Asynchronous mode: the largest worker's share of the optimizer steps when each layer's
    rows are dealt in blocks of `block` round robin (owner_of in train_threads_f32.c). Expected
    work of a row per sample: p_r x (n_in + 1) in layer 0, k + 1 for each output row."""
    work = np.zeros(threads)
    for steps, per_step in ((np.asarray(p_rows, dtype=float), n_in + 1), (np.ones(n_out), k + 1)):
        owner = (np.arange(len(steps)) // block) % threads
        work += np.bincount(owner, weights=steps * per_step, minlength=threads)
    return float(work.max() / work.sum())


def predict_owned(
    m: Measured,
    t: Target,
    threads: int,
    pieces: StatePieces,
    owner_share: float,
    drain: int = DRAIN_AT,
    owner_step_cost: float = OWNER_STEP_COST,
) -> dict[str, float]:
    """Model item 7: the asynchronous mode as built, rows owned and deltas passed through
    rings. One thread is the plain trainer (the mode runs elsh_train_batch there)."""
    serial = m.t_shuffle * t.slow
    forward = m.t_forward * t.slow
    tables = m.t_tables * t.slow
    step = (m.t_sample - m.t_forward - m.t_shuffle - m.t_tables) * t.slow
    one = serial + forward + step + tables
    cache = pieces.cache_terms(threads, t.private_bytes, t.llc_bytes)
    bw_floor = cache["dram_bytes"] / (t.dram_gb_s * 1e9)
    if threads == 1:
        compute, coh_lines, coh = forward + step + tables, 0.0, 0.0
    else:
        owned = step * owner_step_cost
        coh_lines, coh = interval_coherence(pieces, t, threads, drain)
        compute = max((forward + owned + tables) / threads, owned * owner_share) + coh
    return {
        **timing_terms(threads, serial, one, compute, coh_lines, coh, cache, bw_floor),
        "owner_largest_share": owner_share if threads > 1 else 1.0,
    }


# ----------------------------------------------------------------------------- measuring


def copy_bandwidth(threads: int, mbytes: int = 64, reps: int = 5) -> float:
    """GB/s of numpy copies (read + write counted) by `threads` threads at once, median."""
    n = mbytes * (1 << 20) // 8
    src = [np.ones(n) for _ in range(threads)]
    dst = [np.empty(n) for _ in range(threads)]
    rates = []
    for _ in range(reps):
        barrier = threading.Barrier(threads + 1)

        def work(i: int, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            np.copyto(dst[i], src[i])

        pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for th in pool:
            th.start()
        t0 = time.perf_counter()
        barrier.wait()
        for th in pool:
            th.join()
        rates.append(2 * 8 * n * threads / (time.perf_counter() - t0) / 1e9)
    return median(rates)


def cache_bytes(private: bool) -> int:
    """cpu0's largest data cache that only it uses (private) or that it shares with other
    CPUs (sysfs shared_cpu_list; a machine with one CPU counts its largest as both); 0 if
    unknown."""
    best = 0
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    for name in names:
        try:
            with open(f"{base}/{name}/size") as f:
                text = f.read().strip()
            with open(f"{base}/{name}/type") as f:
                kind = f.read().strip()
            with open(f"{base}/{name}/shared_cpu_list") as f:
                shared = f.read().strip() not in ("0", "")
        except OSError:
            continue
        if kind == "Instruction" or (private and shared):
            continue
        scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
        digits = text.rstrip("KM")
        if digits.isdigit():
            best = max(best, int(digits) * scale)
    return best


def concentration(active: np.ndarray) -> dict[str, float]:
    """How concentrated the writes of a boolean samples x rows matrix are."""
    p = active.mean(axis=0)
    return {
        "rows_never_written": int((p == 0).sum()),
        "rows_written_by_half": int((p >= 0.5).sum()),
        "largest_p": float(p.max()),
        "write_weighted_p": write_weighted_frequency(p),
    }


def record_trace(
    net: Network, x: np.ndarray, y: np.ndarray, epochs: int, tc: Any
) -> tuple[np.ndarray, list[dict[str, float]], list[float], list[float]]:
    """Train `epochs` epochs one sample per elsh_train_batch call (Network.fit's trajectory).
    Returns the layer-0 active sets of the last epoch (boolean samples x rows), how
    concentrated each epoch's were, and the times of the calls of all epochs without and with
    a table update."""
    n = x.shape[0]
    rows = net.layer_sizes[1]
    order = np.empty(n, dtype=np.int32)
    stats = ffi.new("elsh_train_stats *")
    x_p, y_p = ptr(x, "float *"), ptr(y, "int32_t *")
    order_p = ffi.cast("int32_t *", ffi.from_buffer(order))
    active = np.zeros((n, rows), dtype=bool)
    per_epoch = []
    plain: list[float] = []
    with_tables: list[float] = []
    for e in range(epochs):
        epoch = net.epochs_trained
        if net.lsh is not None and net.lsh.center:  # as fit() does at the start of an epoch
            net.fit_centers(x[: min(n, CENTER_SAMPLES)])
        check(lib.elsh_shuffle(net._net, ptr(order, "int32_t *"), n), "shuffle")
        stats.samples = stats.correct = stats.rebuilds = stats.rehashes = 0
        stats.loss_sum = 0.0
        active[:] = False
        for s in range(n):
            updates = stats.rebuilds + stats.rehashes
            t0 = time.perf_counter_ns()
            status = lib.elsh_train_batch(net._net, tc, epoch, n, x_p, y_p, order_p + s, 1, stats)
            took = (time.perf_counter_ns() - t0) * 1e-9
            check(status, "training")
            (with_tables if stats.rebuilds + stats.rehashes > updates else plain).append(took)
            active[s, net.last_active(0)] = True
        net.epochs_trained += 1
        per_epoch.append({"epoch": e + 1, "train_accuracy": stats.correct / n,
                          **concentration(active)})  # fmt: skip
        progress(
            f"trace epoch {e + 1}/{epochs}: train acc {stats.correct / n * 100:.2f} %, "
            f"rows never written {per_epoch[-1]['rows_never_written']}, "
            f"E_w[p] {per_epoch[-1]['write_weighted_p']:.3f}"
        )
    return active, per_epoch, plain, with_tables


def measure(args: argparse.Namespace) -> tuple[Measured, np.ndarray, dict[str, Any]]:
    t0 = time.perf_counter()
    data = load("mnist5k", seed=args.seed, limit=args.limit)
    t_load = time.perf_counter() - t0
    x, y = data.x_train, data.y_train
    n = x.shape[0]
    lsh = replace(defaults.LSH, active_fraction=args.active / 100.0, center=args.center)
    train_cfg = defaults.TRAIN

    trace_net = Network(784, [args.hidden], 10, lsh, seed=args.seed)
    active, per_epoch, plain, with_tables = record_trace(
        trace_net, x, y, args.epochs, train_cfg.to_c()
    )
    # a table update's cost: the median call that did one minus the median call that did not
    t_update = max(0.0, median(with_tables) - median(plain)) if with_tables else 0.0
    updates_per_sample = len(with_tables) / (len(plain) + len(with_tables))

    # timing: a fresh network of the same seed trained with fit(), epoch by epoch, in round
    # robin with one that never updates its tables (a cross-check of the table share)
    net = Network(784, [args.hidden], 10, lsh, seed=args.seed)
    never = Network(784, [args.hidden], 10, lsh, seed=args.seed)
    never_cfg = replace(train_cfg, rebuild="never")
    epoch_seconds, never_seconds = [], []
    for e in range(args.epochs):
        net.reset_counters()
        rep = net.fit(x, y, epochs=1, train=train_cfg)[0]
        epoch_seconds.append(rep.seconds)
        never_seconds.append(never.fit(x, y, epochs=1, train=never_cfg)[0].seconds)
        progress(
            f"timed epoch {e + 1}/{args.epochs}: {rep.seconds:.2f} s "
            f"({never_seconds[-1]:.2f} s without table updates)"
        )
    ops = net.ops()
    bytes_touched = sum(ops[p]["weight_bytes"] + ops[p]["table_bytes"] for p in ops) / n

    threads_measured = []
    if args.threads > 1 and has_threads():
        threads_measured = measure_threads(args, x, y, lsh, train_cfg)
    elif args.threads > 1:
        progress(f"{PROG}: this edge_lsh has no threaded trainer; nothing measured on threads")

    forward_seconds = []
    x_p = ptr(x, "float *")
    for _ in range(3):
        t0 = time.perf_counter()
        for s in range(min(n, 1000)):
            status = lib.elsh_net_forward(net._net, x_p + s * 784, int(y[s]))
            if status < 0:
                check(status, "forward")
        forward_seconds.append((time.perf_counter() - t0) / min(n, 1000))

    rebuild_seconds = []
    for _ in range(3):
        t0 = time.perf_counter()
        net.rebuild_tables()
        rebuild_seconds.append(time.perf_counter() - t0)

    order = np.empty(n, dtype=np.int32)
    t0 = time.perf_counter()
    for _ in range(20):
        lib.elsh_shuffle(net._net, ptr(order, "int32_t *"), n)
    t_shuffle = (time.perf_counter() - t0) / 20 / n

    k = net.active_counts()[0]
    params = k * (784 + 1) + 10 * (k + 1)
    m = Measured(
        n_train=n,
        k=k,
        rows=args.hidden,
        t_sample=median(epoch_seconds) / n,
        t_forward=median(forward_seconds),
        t_tables=t_update * updates_per_sample,
        t_shuffle=t_shuffle,
        t_load=t_load,
        params_per_sample=params,
        bytes_touched=bytes_touched,
        bandwidth_1=copy_bandwidth(1),
        bandwidth_all=copy_bandwidth(os.cpu_count() or 1),
        private_bytes=cache_bytes(private=True),
        llc_bytes=cache_bytes(private=False),
    )
    extra = {
        "epoch_seconds": epoch_seconds,
        "trace_epochs": per_epoch,
        "threads_measured": threads_measured,
        "epoch_seconds_never_rebuild": never_seconds,
        "full_rebuild_seconds": median(rebuild_seconds),
        "table_update_seconds": t_update,
        "table_updates_per_sample": updates_per_sample,
        "call_median_seconds_without_update": median(plain),
        "lsh": asdict(lsh),
        "train_config": asdict(train_cfg),
    }
    return m, active, extra


def has_threads() -> bool:
    """Does this edge_lsh's Network.fit take threads= and thread_mode= (issue 14)?"""
    params = inspect.signature(Network.fit).parameters
    return "threads" in params and "thread_mode" in params


def thread_batch() -> int:
    """The deterministic mode's mini-batch: Network.fit's thread_batch default (16 when this
    edge_lsh has no threaded trainer, the value it landed with)."""
    param = inspect.signature(Network.fit).parameters.get("thread_batch")
    return int(param.default) if param is not None else 16


def measure_threads(
    args: argparse.Namespace, x: np.ndarray, y: np.ndarray, lsh: LSHConfig, tc: TrainConfig
) -> list[dict[str, Any]]:
    """Epoch times of the threaded trainer at 1 and args.threads threads in each mode: fresh
    networks of the same seed, one epoch each in round robin (who goes first rotates)."""
    T = args.threads
    configs = [(mode, n) for mode in ("async", "deterministic") for n in (1, T)]
    nets = [Network(784, [args.hidden], 10, lsh, seed=args.seed) for _ in configs]
    seconds: list[list[float]] = [[] for _ in configs]
    cpu: list[list[float]] = [[] for _ in configs]
    for e in range(args.epochs):
        for i in [*range(e % len(configs), len(configs)), *range(e % len(configs))]:
            mode, n = configs[i]
            fit: Any = nets[i].fit
            c0 = process_cpu_seconds()
            rep = fit(x, y, epochs=1, train=tc, threads=n, thread_mode=mode)[0]
            cpu[i].append(process_cpu_seconds() - c0)
            seconds[i].append(rep.seconds)
            progress(f"threads epoch {e + 1}/{args.epochs} {mode} x{n}: {rep.seconds:.2f} s "
                     f"({cpu[i][-1] / rep.seconds:.2f} CPUs busy), "
                     f"train acc {rep.train_accuracy * 100:.2f} %")  # fmt: skip
    return [
        {"mode": mode, "threads": n, "epoch_seconds": seconds[i], "median": median(seconds[i]),
         "epoch_cpu_seconds": cpu[i], "cpu_median": median(cpu[i]),
         "cpus_busy": median([c / w for c, w in zip(cpu[i], seconds[i])])}
        for i, (mode, n) in enumerate(configs)
    ]  # fmt: skip


def process_cpu_seconds() -> float:
    """CPU time of this process so far, every thread, user + system."""
    return time.process_time()


# ----------------------------------------------------------------------------- report


def fmt(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}g}"


def threads_table(
    measured: list[dict[str, Any]], predictions: list[dict[str, Any]], here: str
) -> list[list[str]]:
    """Rows comparing the measured epoch times with this machine's predicted speedups."""
    if not measured:
        return []
    one = next(r["median"] for r in measured if r["mode"] == "async" and r["threads"] == 1)
    rows = []
    for r in measured:
        same = next(q["median"] for q in measured if q["mode"] == r["mode"] and q["threads"] == 1)
        pred = [
            q["speedup"]
            for q in predictions
            if q["target"] == here and q["mode"] == r["mode"] and q["threads"] == r["threads"]
        ]
        same_cpu = next(
            q["cpu_median"] for q in measured if q["mode"] == r["mode"] and q["threads"] == 1
        )
        r["speedup"] = one / r["median"]
        r["speedup_same_mode"] = same / r["median"]
        r["cpu_vs_one"] = r["cpu_median"] / same_cpu
        r["predicted"] = pred[0] if pred else None
        rows.append([r["mode"], str(r["threads"]), f"{r['median']:.2f}", f"{r['speedup']:.2f}",
                     f"{r['speedup_same_mode']:.2f}", fmt(pred[0]) if pred else "not predicted",
                     f"{r['cpus_busy']:.2f}", f"{r['cpu_vs_one']:.2f}"])  # fmt: skip
    return rows


def run(args: argparse.Namespace) -> int:
    started = machine_info()
    m, active, extra = measure(args)
    p = active.mean(axis=0)
    rng = np.random.default_rng(args.seed)
    p_line = line_touch_probability(active)
    pieces = StatePieces.of(p, p_line, 784, 10)
    # t_rmw <= the step's time per parameter it updates, so t_rmw / t_step <= 1 / params
    rmw_over_step = 1.0 / m.params_per_sample

    conflict_rows = []
    conflicts: list[dict[str, Any]] = []
    for T in THREAD_COUNTS[1:]:
        mc = monte_carlo_conflicts(active, T, args.mc_steps, rng)
        entry = {
            "threads": T,
            "conflicting_rows_formula": expected_conflicting_rows(p, T),
            "conflicting_rows_mc": mc["conflicting_rows"],
            "shared_write_fraction_formula": shared_write_fraction(p, T),
            "shared_write_fraction_mc": mc["shared_write_fraction"],
            "p_step_has_conflict_mc": mc["p_step_has_conflict"],
            "lost_update_fraction_hidden": lost_update_fraction(p, T, rmw_over_step),
            "lost_update_fraction_output_bias": lost_update_fraction([1.0], T, rmw_over_step),
            "output_line_modified_since_last_touch": float(
                modified_since_last_touch(p_line, T).mean()
            ),
        }
        conflicts.append(entry)
        conflict_rows.append(
            [
                str(T),
                fmt(entry["conflicting_rows_formula"]),
                fmt(entry["conflicting_rows_mc"]),
                f"{entry['shared_write_fraction_formula'] * 100:.2f} %",
                f"{entry['shared_write_fraction_mc'] * 100:.2f} %",
                f"{entry['p_step_has_conflict_mc'] * 100:.1f} %",
                f"{entry['lost_update_fraction_hidden']:.2e}",
                f"{entry['lost_update_fraction_output_bias']:.2e}",
                f"{entry['output_line_modified_since_last_touch'] * 100:.0f} %",
            ]
        )

    all_targets = targets(m.bandwidth_all, m.private_bytes, m.llc_bytes)
    predictions: list[dict[str, Any]] = []
    pred_rows = []
    for t in all_targets:
        extra_t = {args.threads} if t is all_targets[0] else set()
        for T in sorted({1, 2, t.cores} | extra_t):
            share = phase2_max_share(p, T, 784, 10, m.k)
            owners = owner_max_share(p, T, 784, 10, m.k)
            for mode in ("async", "deterministic", "hogwild (not built)"):
                if mode == "async":
                    r = predict_owned(m, t, T, pieces, owners)
                elif mode == "deterministic":
                    r = predict_deterministic(m, t, T, pieces, share, thread_batch())
                else:
                    r = predict(m, t, T, pieces)
                predictions.append({"target": t.name, "mode": mode, **r})
                pred_rows.append(
                    [
                        t.name,
                        mode,
                        str(T),
                        fmt(r["speedup"]),
                        f"{r['serial_share'] * 100:.2f} %",
                        f"{r['coherence_lines_per_sample']:.0f}",
                        f"{r['coherence_seconds_per_sample'] * 1e6:.1f}",
                        f"{r['bandwidth_floor_seconds'] * 1e6:.1f}",
                        "yes" if r["bandwidth_bound"] else "no",
                    ]
                )

    info = machine_info(started)
    never_ratio = median(extra["epoch_seconds_never_rebuild"]) / median(extra["epoch_seconds"])
    print(
        f"# Scaling model, 784-{m.rows}-10 at {args.active:g} % active"
        f"{', centered hashing' if args.center else ''}, MNIST-5k "
        f"({m.n_train} train samples)\n"
    )
    print(f"{machine_line(info)}\n")
    print(
        f"k = {m.k} of {m.rows} rows per sample; rows never active in the last epoch: "
        f"{int((p == 0).sum())}; largest p_r {p.max():.3f}; mean p_r {p.mean():.4f}; "
        f"write-weighted E_w[p] {write_weighted_frequency(p):.4f} (uniform would be "
        f"{m.k / m.rows:.4f}).\n"
    )
    print(
        f"One thread: {m.t_sample * 1e6:.0f} us per sample (forward {m.t_forward * 1e6:.0f} "
        f"us), table maintenance {m.t_tables * 1e6:.1f} us/sample "
        f"({m.t_tables / m.t_sample * 100:.2f} %), shuffle {m.t_shuffle * 1e9:.0f} ns/sample, "
        f"data loading {m.t_load:.2f} s once (cross-check, noisy: an epoch of a network that "
        f"never updates its tables took {never_ratio:.2f}x the time); "
        f"{m.params_per_sample} parameters updated and "
        f"{m.bytes_touched / 1e3:.0f} kB touched per sample; copy bandwidth "
        f"{m.bandwidth_1:.1f} GB/s (1 thread), {m.bandwidth_all:.1f} GB/s (all cores).\n"
    )
    print("## How concentrated the layer-0 writes are, epoch by epoch (one thread)\n")
    print(
        markdown_table(
            ["epoch", "train acc", "rows never written", "rows written by >= 50 %",
             "largest p_r", "E_w[p]"],
            [
                [str(c["epoch"]), f"{c['train_accuracy'] * 100:.2f} %",
                 str(c["rows_never_written"]), str(c["rows_written_by_half"]),
                 f"{c['largest_p']:.3f}", f"{c['write_weighted_p']:.3f}"]
                for c in extra["trace_epochs"]
            ],
        )
    )  # fmt: skip
    print()
    print("## Conflicts per step (layer 0 rows = output-layer columns)\n")
    print(
        markdown_table(
            [
                "threads",
                "rows >= 2 writers (formula)",
                "(Monte Carlo)",
                "shared writes (formula)",
                "(Monte Carlo)",
                "P(step has a conflict)",
                "lost, hidden rows",
                "lost, output biases",
                "output line modified",
            ],
            conflict_rows,
        )
    )
    print("\n## Predicted training throughput speedup\n")
    print(
        markdown_table(
            [
                "target",
                "mode",
                "threads",
                "speedup",
                "serial share",
                "coherence misses/sample",
                "coherence us/sample",
                "DRAM floor us/sample",
                "bandwidth bound",
            ],
            pred_rows,
        )
    )
    print()
    for t in all_targets:
        print(f"- {t.name}: {t.note}")
    measured_rows = threads_table(extra["threads_measured"], predictions, all_targets[0].name)
    if measured_rows:
        print("\n## Measured here: the threaded trainer, one epoch each in round robin\n")
        print("CPUs busy: the process's CPU time over the epoch's wall time (how much of the "
              "machine the run got; a speedup needs as many free cores as threads). CPU s vs "
              "1 thread: the CPU time of an epoch over that of the same mode on one thread "
              "(threading overhead, 1.00 = none).\n")  # fmt: skip
        print(
            markdown_table(
                ["mode", "threads", "epoch s (median)", "x 1 thread", "x same mode, 1 thread",
                 "predicted", "CPUs busy", "CPU s vs same mode, 1 thread"],
                measured_rows,
            )
        )  # fmt: skip
    if args.json:
        write_json_atomic(
            args.json,
            record(
                PROG,
                {
                    "layers": [784, m.rows, 10],
                    "active_percent": args.active,
                    "epochs": args.epochs,
                    "measured": asdict(m),
                    "row_write_probability": p.tolist(),
                    "output_line_touch_probability": p_line.tolist(),
                    "conflicts": conflicts,
                    "targets": [asdict(t) for t in all_targets],
                    "predictions": predictions,
                    **extra,
                },
                info,
            ),
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(PROG, __doc__.split("\n\n")[0], epilog=None)
    add_common_args(p, epochs=2, seed=0, limit=True)
    p.add_argument(
        "--hidden",
        type=positive_int,
        default=1000,
        metavar="N",
        help="hidden layer width (784-N-10)",
    )
    p.add_argument(
        "--active",
        type=common.percent,
        default=5.0,
        metavar="PERCENT",
        help="active percentage of the hidden layer",
    )
    p.add_argument(
        "--center",
        action="store_true",
        help="hash centered inputs (LSHConfig.center): the active sets spread over more rows",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="measure the threaded trainer at 1 and N threads when edge_lsh has it (1: skip)",
    )
    p.add_argument(
        "--mc-steps",
        type=positive_int,
        default=2000,
        metavar="N",
        help="Monte Carlo steps per thread count",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return common.main(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
