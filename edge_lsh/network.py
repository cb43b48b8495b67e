"""The ``Network`` API: build an LSH-sparse network, train it, evaluate it, save and load it.

All arithmetic runs in the C kernel; this module owns the memory (one numpy arena), checks
inputs, and turns the kernel's op counters into per-sample figures.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import time
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_lsh.data import data_record, preprocess
from edge_lsh.errors import ModelFileError, NativeError
from edge_lsh.fileio import atomic_write, check_input_file, loads_json, read_npy_header
from edge_lsh.native import aligned_empty, check, ffi, lib, ptr
from edge_lsh.report import evaluation, ops_dict

__all__ = [
    "LSHConfig",
    "TrainConfig",
    "Network",
    "ModelFileError",
    "EpochReport",
    "FAMILIES",
]

FAMILIES = {
    "simhash": lib.ELSH_HASH_SIMHASH,
    "ternary": lib.ELSH_HASH_TERNARY,
    "dwta": lib.ELSH_HASH_DWTA,
}
INSERT_POLICIES = {"fifo": lib.ELSH_INSERT_FIFO, "reservoir": lib.ELSH_INSERT_RESERVOIR}
SELECT_MODES = {
    "topk": lib.ELSH_SELECT_TOPK,
    "union": lib.ELSH_SELECT_UNION,
    "exact": lib.ELSH_SELECT_EXACT,
}
REBUILD = {
    "seed": lib.ELSH_REBUILD_SEED,
    "every": lib.ELSH_REBUILD_EVERY,
    "never": lib.ELSH_REBUILD_NEVER,
}
PHASES = ("hash", "forward", "backward", "update", "tables")
SAVE_FORMAT = "edge-lsh-arena"
SAVE_VERSION = 1
CENTER_SAMPLES = 2000  # rows used to estimate the centers each epoch
AUTO_HASHED_VALUES = 8  # pool=0: sum-pool the input down to about this many values (the seed's)


@dataclass(frozen=True)
class LSHConfig:
    """How the LSH layers choose their active neurons."""

    active_fraction: float = 0.05
    family: str = "ternary"  # simhash | ternary | dwta
    bits: int = 3  # K: bits per table
    # L: number of tables; a tuple gives each LSH layer its own L, in layer order (its length
    # must equal the network's number of LSH layers), e.g. (100, 25) for 784-1000-1000-10
    tables: int | tuple[int, ...] = 100
    pool: int = 0  # inputs summed per hashed value; 0 = auto (about 8 hashed values), 1 = none
    bucket_capacity: int = 0  # 0 = min(128, layer width)
    insert: str = "fifo"  # fifo | reservoir, when a bucket is full
    select: str = "topk"  # topk | union | exact (the oracle: computes every neuron)
    ternary_nnz: int = 0  # ternary: non-zeros per projection; 0 = a third of the inputs
    dwta_bin: int = 8  # DWTA: inputs per winner-take-all bin (power of two)
    center: bool = False  # hash (input - its mean over the training data): see fit_centers

    def __post_init__(self) -> None:
        # a list (a saved model's JSON, or a caller's) is kept as a tuple: the config stays
        # hashable and compares equal whichever was given
        if isinstance(self.tables, list):
            object.__setattr__(self, "tables", tuple(self.tables))

    def tables_for(self, lsh_layer: int) -> int:
        """L of the `lsh_layer`-th LSH layer (counted from 0 over the LSH layers only)."""
        if isinstance(self.tables, tuple):
            return self.tables[lsh_layer]
        return self.tables

    def tables_text(self) -> str:
        """L as the command line spells it: ``100``, or ``100,25`` per layer."""
        if isinstance(self.tables, tuple):
            return ",".join(str(t) for t in self.tables)
        return str(self.tables)

    def validate(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"LSHConfig.{name}={getattr(self, name)!r}: {why}")

        if not (0.0 < self.active_fraction <= 1.0):
            raise bad("active_fraction", "must be in (0, 1]")
        if self.family not in FAMILIES:
            raise bad("family", f"must be one of {', '.join(FAMILIES)}")
        if not (1 <= self.bits <= lib.ELSH_MAX_BITS):
            raise bad("bits", f"must be in 1..{lib.ELSH_MAX_BITS}")
        per_layer = self.tables if isinstance(self.tables, tuple) else (self.tables,)
        if not per_layer:
            raise bad("tables", "needs at least one count")
        for t in per_layer:
            if isinstance(t, bool) or not isinstance(t, numbers.Integral):
                raise bad("tables", "each count must be a whole number")
            if not (1 <= t <= lib.ELSH_MAX_TABLES):
                raise bad("tables", f"each count must be in 1..{lib.ELSH_MAX_TABLES}")
        if self.pool < 0:
            raise bad("pool", "must be >= 0 (0 = auto)")
        if not (0 <= self.bucket_capacity <= lib.ELSH_MAX_WIDTH):
            raise bad("bucket_capacity", f"must be in 0..{lib.ELSH_MAX_WIDTH}")
        if self.insert not in INSERT_POLICIES:
            raise bad("insert", f"must be one of {', '.join(INSERT_POLICIES)}")
        if self.select not in SELECT_MODES:
            raise bad("select", f"must be one of {', '.join(SELECT_MODES)}")
        if self.ternary_nnz < 0:
            raise bad("ternary_nnz", "must be >= 0 (0 = auto)")
        if self.dwta_bin < 2 or self.dwta_bin > 256 or self.dwta_bin & (self.dwta_bin - 1):
            raise bad("dwta_bin", "must be a power of two in 2..256")

    def pool_for(self, n_in: int) -> int:
        """The pooling window used for a layer with n_in inputs."""
        if self.pool:
            return min(self.pool, n_in)
        if self.family == "dwta":
            return 1  # DWTA compares individual inputs; pooling would blur its bins
        return max(1, n_in // AUTO_HASHED_VALUES)


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer and table-maintenance settings. The defaults were tuned on digits and
    MNIST-5k; the seed's schedule is rebuild="seed", momentum 0.5 rising to 0.9, lr 0.01."""

    lr: float = 0.02
    momentum_start: float = 0.5
    momentum_end: float = 0.5
    momentum_epochs: int = 10
    l2: float = 1e-4
    rebuild: str = "every"  # seed | every | never
    rebuild_every: int = 20  # samples between table updates, for rebuild="every"
    rehash_every: int = 0  # samples between drawing new hash functions; 0 = never
    # warm start (training only): the LSH layers' active fraction starts at warm_fraction and
    # falls linearly to LSHConfig.active_fraction over the first warm_epochs epochs of the
    # network's life; 0 epochs = no warm start. Inference always uses the configured fraction.
    warm_fraction: float = 0.0
    warm_epochs: int = 0

    def active_fraction_at(self, epoch: int, fraction: float) -> float:
        """The LSH layers' active fraction in training epoch `epoch` (from 0) of a network
        configured with `fraction`."""
        if epoch >= self.warm_epochs:
            return fraction
        return self.warm_fraction + (fraction - self.warm_fraction) * epoch / self.warm_epochs

    def validate(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig.lr={self.lr!r}: must be a positive number")
        for name in ("momentum_start", "momentum_end"):
            v = getattr(self, name)
            if not (0.0 <= v < 1.0):
                raise ValueError(f"TrainConfig.{name}={v!r}: must be in [0, 1)")
        if self.l2 < 0 or not math.isfinite(self.l2):
            raise ValueError(f"TrainConfig.l2={self.l2!r}: must be >= 0")
        if self.rebuild not in REBUILD:
            raise ValueError(f"TrainConfig.rebuild={self.rebuild!r}: one of {', '.join(REBUILD)}")
        if self.rebuild == "every" and self.rebuild_every < 1:
            raise ValueError("TrainConfig.rebuild='every' needs rebuild_every >= 1")
        if self.rehash_every < 0 or self.rebuild_every < 0 or self.momentum_epochs < 0:
            raise ValueError("TrainConfig: counts must be >= 0")
        if self.warm_epochs < 0:
            raise ValueError(f"TrainConfig.warm_epochs={self.warm_epochs!r}: must be >= 0")
        if self.warm_epochs and not (0.0 < self.warm_fraction <= 1.0):
            raise ValueError(
                f"TrainConfig.warm_fraction={self.warm_fraction!r}: must be in (0, 1] when "
                "warm_epochs > 0"
            )

    def to_c(self) -> Any:
        tc = ffi.new("elsh_train_config *")
        lib.elsh_train_config_default(tc)
        tc.lr = self.lr
        tc.momentum_start = self.momentum_start
        tc.momentum_end = self.momentum_end
        tc.momentum_epochs = self.momentum_epochs
        tc.l2 = self.l2
        tc.rebuild = REBUILD[self.rebuild]
        tc.rebuild_every = self.rebuild_every
        tc.rehash_every = self.rehash_every
        return tc


# epochs of training when nobody says how many: the CLI's --epochs default too
DEFAULT_EPOCHS = 16

# training on several threads (native/src/train_threads_f32.c): "async" is lock-free per-sample
# training against shared weights, each neuron stepped by its owner thread (no update lost, a
# few samples stale; results vary run to run; threads=1 is the one-thread trainer bit for
# bit); "deterministic" trains mini-batches of thread_batch samples against one
# snapshot and applies the per-sample steps in sample order: the same bytes on every run
# whatever the thread count, but not the one-thread optimizer
THREAD_MODES = {"async": lib.ELSH_THREADS_ASYNC, "deterministic": lib.ELSH_THREADS_DETERMINISTIC}
DEFAULT_THREAD_BATCH = 16


def thread_config(threads: int = 1, mode: str = "async", batch: int = DEFAULT_THREAD_BATCH) -> Any:
    """The C elsh_thread_config for these settings (ValueError when one is out of range)."""
    if not (1 <= threads <= lib.ELSH_MAX_THREADS):
        raise ValueError(f"threads={threads}: must be in 1..{lib.ELSH_MAX_THREADS}")
    if mode not in THREAD_MODES:
        raise ValueError(f"thread_mode={mode!r}: one of {', '.join(THREAD_MODES)}")
    if not (1 <= batch <= lib.ELSH_MAX_BATCH):
        raise ValueError(f"thread_batch={batch}: must be in 1..{lib.ELSH_MAX_BATCH}")
    th = ffi.new("elsh_thread_config *")
    th.threads = threads
    th.mode = THREAD_MODES[mode]
    th.batch = batch
    return th


@dataclass
class EpochReport:
    """What one training epoch did. ``epoch`` counts from 1 over the network's life: the
    first epoch of a model trained further with fit() again continues the count."""

    epoch: int
    loss: float
    train_accuracy: float
    seconds: float
    samples: int
    table_updates: int


ProgressFn = Callable[[int, int, int, float, float], None]  # epoch, done, total, loss, acc


class Network:
    """A fully connected ReLU network with a softmax output, whose hidden layers (and, with
    ``output_lsh``, the output layer) compute only the neurons their hash tables select.

    ``lsh=None`` gives the dense baseline: the same kernel with every neuron active.
    """

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_classes: int,
        lsh: LSHConfig | None = LSHConfig(),
        *,
        output_lsh: bool = False,
        seed: int = 0,
        _fill: Callable[[np.ndarray], None] | None = None,
        _arena_bytes: int | None = None,
    ) -> None:
        hidden = [int(h) for h in hidden]
        if n_in < 1 or n_in > lib.ELSH_MAX_WIDTH:
            raise ValueError(f"n_in={n_in}: must be in 1..{lib.ELSH_MAX_WIDTH}")
        if n_classes < 2 or n_classes > lib.ELSH_MAX_WIDTH:
            raise ValueError(f"n_classes={n_classes}: must be in 2..{lib.ELSH_MAX_WIDTH}")
        if len(hidden) + 1 > lib.ELSH_MAX_LAYERS:
            raise ValueError(f"at most {lib.ELSH_MAX_LAYERS - 1} hidden layers")
        if any(h < 1 or h > lib.ELSH_MAX_WIDTH for h in hidden):
            raise ValueError(f"hidden sizes {hidden}: each must be in 1..{lib.ELSH_MAX_WIDTH}")
        if output_lsh and lsh is None:
            raise ValueError("output_lsh needs an LSHConfig")
        if not (0 <= seed < 2**64):
            raise ValueError(f"seed={seed}: must be in 0..2**64-1")
        if lsh is not None:
            lsh.validate()
        self.n_in = int(n_in)
        self.hidden = hidden
        self.n_classes = int(n_classes)
        self.lsh = lsh
        self.output_lsh = bool(output_lsh)
        self.seed = int(seed)

        self._cfg = ffi.new("elsh_net_config *")
        self._cfg.n_in = self.n_in
        self._cfg.n_layers = len(hidden) + 1
        self._cfg.seed = self.seed
        n_lsh_layers = 0 if lsh is None else len(hidden) + int(self.output_lsh)
        if lsh is not None and isinstance(lsh.tables, tuple) and len(lsh.tables) != n_lsh_layers:
            raise ValueError(
                f"tables={lsh.tables_text()}: one count per LSH layer, and this network has "
                f"{n_lsh_layers} LSH layer(s)"
            )
        fan_in = self.n_in
        lsh_index = 0
        for idx, width in enumerate([*hidden, self.n_classes]):
            lc = self._cfg.layers[idx]
            lc.n_out = width
            is_output = idx == len(hidden)
            lc.use_lsh = int(lsh is not None and (not is_output or self.output_lsh))
            if lc.use_lsh:
                assert lsh is not None
                lc.active_fraction = lsh.active_fraction
                h = lc.hash
                h.family = FAMILIES[lsh.family]
                h.bits = lsh.bits
                h.tables = lsh.tables_for(lsh_index)
                lsh_index += 1
                h.pool = lsh.pool_for(fan_in)
                h.bucket_capacity = lsh.bucket_capacity
                h.insert_policy = INSERT_POLICIES[lsh.insert]
                h.select_mode = SELECT_MODES[lsh.select]
                h.ternary_nnz = lsh.ternary_nnz
                h.dwta_bin = lsh.dwta_bin
                h.center = int(lsh.center)
                hash_dim = -(-fan_in // h.pool)
                if lsh.family == "dwta" and lsh.dwta_bin > hash_dim:
                    raise ValueError(
                        f"dwta_bin={lsh.dwta_bin} is larger than the {hash_dim} hashed values "
                        f"of layer {idx}: lower dwta_bin or pool"
                    )
                if lsh.family == "ternary" and lsh.ternary_nnz > hash_dim:
                    raise ValueError(f"ternary_nnz={lsh.ternary_nnz} > {hash_dim} hashed values")
            fan_in = width

        size = ffi.new("size_t *")
        check(lib.elsh_net_plan(self._cfg, size), "network configuration")
        self.arena_bytes = int(size[0])
        if _arena_bytes is not None and self.arena_bytes != _arena_bytes:  # before allocating
            raise ModelFileError(
                f"the configuration needs a {self.arena_bytes}-byte state, the file holds "
                f"{_arena_bytes} bytes: configuration and state do not belong together"
            )
        self._arena = aligned_empty(self.arena_bytes)
        if _fill is not None:
            _fill(self._arena)  # a saved state, read straight into place (see load)
        self._net = ffi.new("elsh_net *")
        check(
            lib.elsh_net_init(self._net, self._cfg, ptr(self._arena, "void *"), self.arena_bytes),
            "network init",
        )
        if _fill is None:
            check(lib.elsh_net_randomize(self._net), "network randomize")
        elif lib.elsh_net_check(self._net) != lib.ELSH_OK:
            raise ModelFileError("model state is corrupt (index, length or value out of range)")
        self.epochs_trained = 0
        # what the network was trained on (edge_lsh.data.Dataset.record()): the data spec and
        # split to evaluate on by default, and the preprocessing of raw inputs; None if unknown
        self.data: dict[str, Any] | None = None
        self.history: list[EpochReport] = []

    # ------------------------------------------------------------------ shape and inspection
    @property
    def layer_sizes(self) -> list[int]:
        return [self.n_in, *self.hidden, self.n_classes]

    @property
    def n_layers(self) -> int:
        return len(self.hidden) + 1

    def active_counts(self) -> list[int]:
        """k of each layer: how many neurons it computes per input."""
        return [int(self._summary(i).k) for i in range(self.n_layers)]

    def dense_multiplications(self) -> int:
        """Multiplications of the same network computed densely, per sample."""
        sizes = self.layer_sizes
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    def _view(self, p: Any, count: int, dtype: Any) -> np.ndarray:
        """A numpy view of count elements at arena pointer p (no copy)."""
        if p == ffi.NULL:
            return np.empty(0, dtype=dtype)
        offset = int(ffi.cast("uintptr_t", p)) - self._arena.ctypes.data
        nbytes = count * np.dtype(dtype).itemsize
        return self._arena[offset : offset + nbytes].view(dtype)

    def layer_arrays(self, index: int) -> dict[str, np.ndarray]:
        """Views (no copies) of one layer's parameters, hash functions and tables."""
        L = self._summary(index)
        a = ffi.new("elsh_layer_arrays *")
        check(lib.elsh_net_layer_arrays(self._net, index, a), "layer arrays")
        n_in, n_out = int(L.n_in), int(L.n_out)
        out: dict[str, np.ndarray] = {
            "w": self._view(a.w, n_in * n_out, np.float32).reshape(n_out, n_in),
            "b": self._view(a.b, n_out, np.float32),
        }
        if not L.use_lsh:
            return out
        h = L.hash
        T, K, B, cap = int(h.tables), int(h.bits), int(h.n_buckets), int(L.capacity)
        d = int(h.hash_dim)
        fam = int(h.family)
        if fam == lib.ELSH_HASH_SIMHASH:
            out["proj"] = self._view(a.proj, T * K * d, np.float32).reshape(T, K, d)
        elif fam == lib.ELSH_HASH_TERNARY:
            nnz = int(h.ternary_nnz)
            out["tern_idx"] = self._view(a.tern_idx, T * K * nnz, np.uint16).reshape(T, K, nnz)
            out["tern_sign"] = self._view(a.tern_sign, T * K * nnz, np.int8).reshape(T, K, nnz)
        else:
            P, binw = int(h.dwta_per_table), int(h.dwta_bin)
            out["dwta_idx"] = self._view(a.dwta_idx, T * P * binw, np.uint16).reshape(T, P, binw)
        out["bucket_ids"] = self._view(a.bucket_ids, T * B * cap, np.uint16).reshape(T, B, cap)
        out["bucket_len"] = self._view(a.bucket_len, T * B, np.uint16).reshape(T, B)
        out["neuron_bucket"] = self._view(a.neuron_bucket, n_out * T, np.uint16).reshape(n_out, T)
        out["pad_order"] = self._view(a.pad_order, n_out, np.uint16)
        out["center"] = self._view(a.center, d, np.float32)
        return out

    def _layer_index(self, index: int) -> int:
        if not (0 <= index < self.n_layers):
            raise IndexError(f"layer {index} of a network with {self.n_layers} layers")
        return index

    def _summary(self, index: int) -> Any:
        """The C kernel's elsh_layer_summary of layer `index`."""
        self._layer_index(index)
        L = ffi.new("elsh_layer_summary *")
        check(lib.elsh_net_layer_info(self._net, index, L), "layer info")
        return L

    def layer_info(self, index: int) -> dict[str, Any]:
        """The derived settings of one layer (k, pooling, table shape)."""
        L = self._summary(index)
        info: dict[str, Any] = {
            "n_in": int(L.n_in),
            "n_out": int(L.n_out),
            "k": int(L.k),
            "lsh": bool(L.use_lsh),
            "output": bool(L.is_output),
        }
        if L.use_lsh:
            h = L.hash
            fam = {v: k for k, v in FAMILIES.items()}[int(h.family)]
            info.update(
                family=fam,
                bits=int(h.bits),
                tables=int(h.tables),
                pool=int(h.pool),
                hash_dim=int(h.hash_dim),
                buckets=int(h.n_buckets),
                capacity=int(L.capacity),
                select=int(h.select_mode),
                ternary_nnz=int(h.ternary_nnz),
                dwta_bin=int(h.dwta_bin),
                dwta_per_table=int(h.dwta_per_table),
                dwta_bits=int(h.dwta_bits),
                center=bool(h.center),
            )
        return info

    def set_active_fraction(self, fraction: float | None) -> None:
        """Run the LSH layers at another active fraction from now on (e.g. more neurons for
        more accuracy at inference); None restores the configured one. Not saved."""
        if fraction is not None and not (0.0 < fraction <= 1.0):
            raise ValueError(f"active fraction {fraction!r}: must be in (0, 1]")
        check(lib.elsh_net_set_active(self._net, fraction or 0.0), "set active fraction")

    def reseed_shuffle(self, seed: int) -> None:
        """Seed the PRNG that shuffles the training samples before each epoch (fit()) afresh
        with `seed`, 0..2**64-1: a loaded model otherwise continues the stream it was saved
        with. Weights, tables and the other PRNGs stay as they are."""
        if not (0 <= seed < 2**64):
            raise ValueError(f"seed={seed}: must be in 0..2**64-1")
        lib.elsh_prng_seed(self._net.train_rng, seed)

    def fit_centers(self, x: Any) -> None:
        """Set each centered LSH layer's center to the mean of its input over x (fit() does this
        at the start of every epoch when LSHConfig.center is set)."""
        x = self._inputs(x)
        if x.shape[0] == 0:
            raise ValueError("no samples to fit centers on")
        check(lib.elsh_net_fit_centers(self._net, ptr(x, "float *"), x.shape[0]), "fit centers")

    def last_active(self, index: int) -> np.ndarray:
        """The active neuron ids of layer `index` for the most recent forward pass."""
        self._layer_index(index)
        n = ffi.new("int32_t *")
        active = lib.elsh_net_last_active(self._net, index, n)
        return self._view(active, int(n[0]), np.int32).copy()

    def rebuild_tables(self) -> None:
        """Empty every table and re-insert every neuron (e.g. after editing weights)."""
        check(lib.elsh_net_rebuild_tables(self._net), "rebuild tables")

    # ------------------------------------------------------------------ op counters
    def reset_counters(self) -> None:
        lib.elsh_net_reset_counters(self._net)

    def ops(self, total: bool = True) -> dict[str, dict[str, int]]:
        """Op counters summed over layers, per phase: mul, add, cmp, weight_bytes, table_bytes."""
        return {
            name: ops_dict(lib.elsh_net_ops(self._net, p, int(total)))
            for p, name in enumerate(PHASES)
        }

    def layer_ops(self, index: int, total: bool = True) -> dict[str, dict[str, int]]:
        """Op counters of one layer, per phase."""
        self._layer_index(index)
        return {
            name: ops_dict(lib.elsh_net_layer_ops(self._net, index, p, int(total)))
            for p, name in enumerate(PHASES)
        }

    # ------------------------------------------------------------------ data checks
    def _inputs(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"inputs have shape {x.shape}; this network takes (n, {self.n_in})")
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise ValueError(f"inputs must be real numbers, not {x.dtype}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(x).all():
            bad = int(np.argwhere(~np.isfinite(x))[0][0])
            raise ValueError(f"inputs contain NaN or infinity (first in row {bad})")
        return x

    def _labels(self, y: Any, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"labels have shape {y.shape}; expected ({n},) to match the inputs")
        if y.dtype.kind == "f":
            if not np.isfinite(y).all() or (y != np.round(y)).any():
                raise ValueError("labels must be whole numbers")
        elif y.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers, not {y.dtype}")
        if n and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(
                f"labels must be in 0..{self.n_classes - 1}; found {y.min()}..{y.max()}"
            )
        return np.ascontiguousarray(y, dtype=np.int32)

    # ------------------------------------------------------------------ training
    def fit(
        self,
        x: Any,
        y: Any,
        epochs: int = DEFAULT_EPOCHS,
        train: TrainConfig | None = None,
        *,
        progress: ProgressFn | None = None,
        on_epoch: Callable[[EpochReport], None] | None = None,
        chunk: int = 256,
        threads: int = 1,
        thread_mode: str = "async",
        thread_batch: int = DEFAULT_THREAD_BATCH,
    ) -> list[EpochReport]:
        """Train with per-sample Adagrad + momentum, LSH in the loop. Returns one report per
        epoch. Calling fit again continues training (fine-tuning) from the current state.
        threads > 1 trains on that many cores (THREAD_MODES says how each mode behaves)."""
        train = train or TrainConfig()
        train.validate()
        th = thread_config(threads, thread_mode, thread_batch)
        if epochs < 0:
            raise ValueError(f"epochs={epochs}: must be >= 0")
        if chunk < 1:
            raise ValueError(f"chunk={chunk}: must be >= 1")
        x = self._inputs(x)
        y = self._labels(y, x.shape[0])
        n = x.shape[0]
        if n == 0:
            raise ValueError("no training samples")
        tc = train.to_c()
        order = np.empty(n, dtype=np.int32)
        stats = ffi.new("elsh_train_stats *")
        x_p, y_p = ptr(x, "float *"), ptr(y, "int32_t *")
        work = self._thread_work(th) if threads > 1 or thread_mode != "async" else None
        reports = []
        for _ in range(epochs):
            if self.lsh is not None and self.lsh.center:
                self.fit_centers(x[: min(n, CENTER_SAMPLES)])
            warm = self.lsh is not None and self.epochs_trained < train.warm_epochs
            if warm:
                assert self.lsh is not None
                base = self.lsh.active_fraction
                self.set_active_fraction(train.active_fraction_at(self.epochs_trained, base))
            threading = (th, work) if work is not None else None
            try:
                reports.append(
                    self._fit_epoch(x_p, y_p, n, order, tc, stats, progress, chunk, threading)
                )
            finally:
                if warm:
                    self.set_active_fraction(None)
            if on_epoch:
                on_epoch(reports[-1])
        return reports

    def _fit_epoch(
        self,
        x_p: Any,
        y_p: Any,
        n: int,
        order: np.ndarray,
        tc: Any,
        stats: Any,
        progress: ProgressFn | None,
        chunk: int,
        threading: tuple[Any, np.ndarray] | None = None,
    ) -> EpochReport:
        epoch = self.epochs_trained
        check(lib.elsh_shuffle(self._net, ptr(order, "int32_t *"), n), "shuffle")
        stats.loss_sum = 0.0
        stats.correct = stats.samples = stats.rebuilds = stats.rehashes = 0
        t0 = time.perf_counter()
        for start in range(0, n, chunk):
            count = min(chunk, n - start)
            order_p = ffi.cast("int32_t *", ffi.from_buffer(order)) + start
            if threading is None:
                rc = lib.elsh_train_batch(self._net, tc, epoch, n, x_p, y_p, order_p, count, stats)
            else:
                th, work = threading
                rc = lib.elsh_train_batch_threads(
                    self._net,
                    tc,
                    th,
                    ptr(work, "void *"),
                    work.size,
                    epoch,
                    n,
                    x_p,
                    y_p,
                    order_p,
                    count,
                    stats,
                )
            check(rc, "training")
            if progress:
                done = int(stats.samples)
                progress(epoch + 1, done, n, stats.loss_sum / done, stats.correct / done)
        seconds = time.perf_counter() - t0
        loss = float(stats.loss_sum / n)
        if not math.isfinite(loss) or lib.elsh_net_check(self._net) != lib.ELSH_OK:
            raise FloatingPointError(
                f"training diverged in epoch {epoch} (loss {loss}, or a parameter is no longer "
                "finite); lower the learning rate"
            )
        if loss > 3.0 * math.log(self.n_classes):
            warnings.warn(
                f"epoch {epoch}: mean loss {loss:.3g} is far above chance level "
                f"({math.log(self.n_classes):.3g}); the learning rate may be too high",
                RuntimeWarning,
                stacklevel=3,
            )
        report = EpochReport(
            epoch=epoch + 1,
            loss=loss,
            train_accuracy=float(stats.correct / n),
            seconds=seconds,
            samples=n,
            table_updates=int(stats.rebuilds + stats.rehashes),
        )
        self.epochs_trained += 1
        self.history.append(report)
        return report

    def _thread_work(self, th: Any) -> np.ndarray:
        """The work memory a threaded call with settings th needs (64-byte aligned)."""
        size = ffi.new("size_t *")
        check(lib.elsh_threads_plan(self._net, th, size), "thread settings")
        return aligned_empty(int(size[0]))

    def _predict_into(self, x: np.ndarray, pred: np.ndarray, probs: Any, threads: int) -> None:
        """elsh_predict (threads 1) or elsh_predict_threads over x's rows."""
        x_p, pred_p = ptr(x, "float *"), ptr(pred, "int32_t *")
        if threads == 1:
            rc = lib.elsh_predict(self._net, x_p, x.shape[0], pred_p, probs)
        else:
            th = thread_config(threads)
            work = self._thread_work(th)
            rc = lib.elsh_predict_threads(
                self._net, th, ptr(work, "void *"), work.size, x_p, x.shape[0], pred_p, probs
            )
        check(rc, "predict")

    # ------------------------------------------------------------------ inference
    def preprocess(self, x_raw: Any) -> np.ndarray:
        """Raw inputs (the numbers in the training data's files, e.g. pixels 0..255) scaled as
        the network was trained (its data record); unchanged when it records none."""
        return preprocess(self.data, np.asarray(x_raw, dtype=np.float32))

    def predict(self, x: Any, threads: int = 1) -> np.ndarray:
        """Predicted class of each row of x (the rows split among `threads` cores: the same
        predictions)."""
        x = self._inputs(x)
        pred = np.empty(x.shape[0], dtype=np.int32)
        self._predict_into(x, pred, ffi.NULL, threads)
        return pred

    def predict_proba(self, x: Any, threads: int = 1) -> np.ndarray:
        """Softmax probabilities over the classes (0 for classes the output layer skipped)."""
        x = self._inputs(x)
        pred = np.empty(x.shape[0], dtype=np.int32)
        probs = np.empty((x.shape[0], self.n_classes), dtype=np.float32)
        self._predict_into(x, pred, ptr(probs, "float *"), threads)
        return probs

    def evaluate(self, x: Any, y: Any, threads: int = 1) -> dict[str, float]:
        """Accuracy and per-sample inference cost (hashing included) on (x, y)."""
        x = self._inputs(x)
        y = self._labels(y, x.shape[0])
        thread_config(threads)  # a bad count fails here, before any work

        def predict(rows: np.ndarray) -> np.ndarray:
            return self.predict(rows, threads=threads)

        return evaluation(predict, self.ops, self.dense_multiplications(), x, y, time.perf_counter)

    # ------------------------------------------------------------------ persistence
    def config_dict(self) -> dict[str, Any]:
        return {
            "format": SAVE_FORMAT,
            "version": SAVE_VERSION,
            "n_in": self.n_in,
            "hidden": self.hidden,
            "n_classes": self.n_classes,
            "lsh": asdict(self.lsh) if self.lsh is not None else None,
            "output_lsh": self.output_lsh,
            "seed": self.seed,
            "epochs_trained": self.epochs_trained,
            "data": self.data,
            "optimizer_state": True,
            "byteorder": "little",
        }

    def save(self, path: str | os.PathLike[str], *, optimizer_state: bool = False) -> None:
        """Write the network atomically: a temporary file in the same folder, fsync, then
        rename over `path`.

        By default the file is compact: the optimizer state (Adagrad accumulators and
        momentum, twice the weights) is left out (stored as zeros, compressed), which is all
        inference and fine-tuning need; fine-tuning then starts its optimizer afresh. With
        optimizer_state the whole training state is kept, so that training resumed from the
        file continues exactly as if it had not stopped (what checkpoints use)."""
        path = Path(path)
        if lib.elsh_net_check(self._net) != lib.ELSH_OK:
            raise ValueError("the network state is not valid (diverged training?): not saved")
        config = {**self.config_dict(), "optimizer_state": optimizer_state}
        meta = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
        arena = self._arena if optimizer_state else self._without_optimizer_state()
        with atomic_write(path) as f:
            if optimizer_state:  # checkpoints: written every epoch, so not compressed
                np.savez(f, config=meta, arena=arena)
            else:
                np.savez_compressed(f, config=meta, arena=arena)

    def _without_optimizer_state(self) -> np.ndarray:
        """A copy of the arena with every layer's optimizer state zeroed (its fresh value)."""
        arena = self._arena.copy()
        base = self._arena.ctypes.data
        for i in range(self.n_layers):
            L = self._summary(i)
            a = ffi.new("elsh_layer_arrays *")
            check(lib.elsh_net_layer_arrays(self._net, i, a), "layer arrays")
            for p, count in (
                (a.w_g2, L.n_in * L.n_out),
                (a.w_vel, L.n_in * L.n_out),
                (a.b_g2, L.n_out),
                (a.b_vel, L.n_out),
            ):
                start = int(ffi.cast("uintptr_t", p)) - base
                arena[start : start + 4 * int(count)] = 0
        return arena

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Network:
        """Read a file written by save(). Raises ModelFileError for anything wrong with it."""
        try:
            path = check_input_file(path, "model file")
        except OSError as exc:
            raise ModelFileError(str(exc)) from None
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                if not {"config.npy", "arena.npy"} <= names:
                    raise ModelFileError(f"{path}: not an edge-lsh model (missing config/arena)")
                try:
                    meta = loads_json(_read_npy_bytes(zf, "config.npy", limit=_MAX_CONFIG_BYTES))
                except ValueError as exc:
                    raise ModelFileError(f"config.npy: not a model configuration ({exc})") from None
                _check_meta(meta)
                state_bytes = _npy_payload_bytes(zf, "arena.npy")  # from its header: no read
                try:
                    lsh = LSHConfig(**meta["lsh"]) if meta["lsh"] is not None else None
                    epochs_trained = int(meta.get("epochs_trained", 0))
                    if not (0 <= epochs_trained < 2**31):
                        raise ValueError(f"epochs_trained {epochs_trained} out of range")

                    def fill(arena: np.ndarray) -> None:
                        _read_npy_bytes(zf, "arena.npy", into=arena)

                    net = cls(
                        meta["n_in"],
                        meta["hidden"],
                        meta["n_classes"],
                        lsh,
                        output_lsh=meta["output_lsh"],
                        seed=meta["seed"],
                        _fill=fill,
                        _arena_bytes=state_bytes,  # the planned size checked before allocating
                    )
                except ModelFileError:
                    raise
                except (KeyError, TypeError, ValueError, OverflowError, NativeError) as exc:
                    raise ModelFileError(f"invalid model configuration ({exc})") from exc
                except MemoryError:
                    raise ModelFileError(
                        f"its {state_bytes}-byte state does not fit in this machine's memory"
                    ) from None
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from exc
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{path}: cannot read model file ({exc})") from exc
        net.epochs_trained = epochs_trained
        net.data = data_record(meta.get("data"), str(path))
        return net


def _check_meta(meta: Any) -> None:
    if not isinstance(meta, dict) or meta.get("format") != SAVE_FORMAT:
        raise ModelFileError("not an edge-lsh model file")
    if meta.get("version") != SAVE_VERSION:
        raise ModelFileError(
            f"model file version {meta.get('version')}, this edge-lsh reads version {SAVE_VERSION}"
        )
    if meta.get("byteorder") != "little" or not np.little_endian:
        raise ModelFileError("byte order does not match this machine")

    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def bad(key: str, want: str) -> ModelFileError:
        shown = repr(meta.get(key))
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return ModelFileError(f"invalid model configuration: {key} is {shown}, {want}")

    for key in ("n_in", "n_classes", "seed"):
        if not whole(meta.get(key)):
            raise bad(key, "expected a whole number")
    hidden = meta.get("hidden")
    if not isinstance(hidden, list) or not all(whole(h) for h in hidden):
        raise bad("hidden", "expected a list of layer widths")
    if len(hidden) + 1 > lib.ELSH_MAX_LAYERS:
        raise bad("hidden", f"expected at most {lib.ELSH_MAX_LAYERS - 1} hidden layers")
    if not isinstance(meta.get("output_lsh"), bool):
        raise bad("output_lsh", "expected true or false")
    if meta.get("lsh") is not None and not isinstance(meta.get("lsh"), dict):
        raise bad("lsh", "expected the LSH settings or null")
    if not whole(meta.get("epochs_trained", 0)):
        raise bad("epochs_trained", "expected a whole number")


_MAX_CONFIG_BYTES = 1 << 20
# DEFLATE expands at most about 1032 times (258-byte matches in 2 bits): a member whose stated
# size goes beyond that (and a little slack) does not hold what it says
_MAX_DEFLATE_RATIO = 1032
_DEFLATE_SLACK = 1 << 16


def _npy_header(f: Any, name: str) -> int:
    """Read the .npy header of a member open at f: the byte count of its 1-D uint8 payload."""
    header = read_npy_header(f)
    if header is None:
        raise ModelFileError(f"{name}: unsupported .npy version")
    shape, fortran, dtype = header
    if dtype != np.uint8 or len(shape) != 1:
        raise ModelFileError(f"{name}: expected a 1-D uint8 array, got {dtype} {shape}")
    return int(shape[0])


def _npy_payload_bytes(zf: zipfile.ZipFile, name: str) -> int:
    """The payload size a 1-D uint8 .npy member states in its header, checked against the
    member's size in the archive (and, compressed, the most DEFLATE can expand) before
    anything of that size is allocated."""
    info = zf.getinfo(name)
    with zf.open(info) as f:
        size = _npy_header(f, name)
        header = f.tell()
    if size + header != info.file_size:
        raise ModelFileError(
            f"{name}: its header states {size} bytes, the archive holds {info.file_size - header}"
        )
    stored = info.compress_type == zipfile.ZIP_STORED
    if not stored and info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + _DEFLATE_SLACK:
        raise ModelFileError(
            f"{name}: {info.file_size} bytes cannot come from {info.compress_size} compressed "
            "bytes (a decompression bomb)"
        )
    return size


def _read_npy_bytes(
    zf: zipfile.ZipFile, name: str, *, limit: int = 0, into: np.ndarray | None = None
) -> bytes:
    """The payload of a 1-D uint8 .npy member, checked against its header before any large
    read: at most `limit` bytes, or exactly into.nbytes bytes read into `into`."""
    with zf.open(name) as f:
        size = _npy_header(f, name)
        if into is not None:
            if size != into.nbytes:
                raise ModelFileError(
                    f"{name} holds {size} bytes; this configuration needs {into.nbytes}"
                )
            if f.readinto(into.data) != size:  # type: ignore[attr-defined]  # ZipExtFile has it
                raise ModelFileError(f"{name}: truncated")
            return b""
        if size > limit:
            raise ModelFileError(f"{name}: {size} bytes is too large")
        data = f.read(size)
        if len(data) != size:
            raise ModelFileError(f"{name}: truncated")
        return bytes(data)
