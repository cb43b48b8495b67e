"""The fixed-point network in the C kernel: an ``.elsh`` file used in place (zero copy).

``FixedPointModel.load("m.elsh")`` reads the file into a 64-byte aligned buffer, lets the C
reader validate it (``elsh_model_open``) and attach a scratch arena (``elsh_model_attach``).
Everything after input quantization is integer arithmetic, bit-exact with
``edge_lsh.oracle.qreference`` and identical on every platform.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from edge_lsh.data import data_record, preprocess
from edge_lsh.errors import ElshFormatError, ModelFileError
from edge_lsh.fileio import MAX_JSON_BYTES, check_input_file, loads_json
from edge_lsh.native import aligned_empty, check, ffi, lib, ptr, status_message
from edge_lsh.report import evaluation, ops_dict

__all__ = ["FixedPointModel", "FORMAT_ERRORS", "STEPS"]

# C status -> the name FORMAT.md uses for it
FORMAT_ERRORS: dict[int, str] = {
    getattr(lib, name): name
    for name in dir(lib)
    if name.startswith("ELSH_FMT_") and isinstance(getattr(lib, name), int)
}

_PHASES = ("hash", "forward")
# the steps elsh_qnet_forward_stats times, in the order of elsh_step
STEPS = ("hash", "count", "select", "multiply")
_MAX_FILE_BYTES = 1 << 31


class FixedPointModel:
    """A quantized edge-lsh network read from an ``.elsh`` file."""

    def __init__(
        self,
        data: bytes | bytearray | memoryview | np.ndarray,
        name: str = "<bytes>",
        fast: bool = False,
    ):
        """fast=True attaches with elsh_model_attach_fast: bucket bitmaps, a dense hash matrix
        and row sums in a larger arena; the same outputs, cheaper selection (the op counters
        then count the work of that path)."""
        raw = np.frombuffer(data, dtype=np.uint8)
        self.name = name
        self._file = aligned_empty(max(raw.size, 1))
        self._file[: raw.size] = raw
        self._net = ffi.new("elsh_qnet *")
        need = ffi.new("size_t *")
        status = lib.elsh_model_open(self._net, ptr(self._file, "void *"), raw.size, need)
        if status != lib.ELSH_OK:
            raise _file_error(name, status)
        extra = ffi.new("size_t *")
        if fast:
            check(lib.elsh_model_fast_bytes(self._net, extra), "fast arena")
        self.fast = fast and int(extra[0]) > 0
        if self.fast:
            base = -(-int(need[0]) // 64) * 64  # the additions start at a 64-byte boundary
            self._arena = aligned_empty(base + int(extra[0]))
            attach = lib.elsh_model_attach_fast
        else:
            self._arena = aligned_empty(max(int(need[0]), 64))
            attach = lib.elsh_model_attach
        status = attach(self._net, ptr(self._arena, "void *"), self._arena.size)
        if status != lib.ELSH_OK:
            raise _file_error(name, status)
        self._summary = ffi.new("elsh_qnet_summary *")
        check(lib.elsh_qnet_info(self._net, self._summary), "model info")
        self.model_bytes = int(raw.size)
        self._active: tuple[float | None, bool] = (None, False)  # the last set_active
        # copies of this model that predict on other threads (threads=N): one arena each, the
        # same file bytes and settings; ops() adds up their counters
        self._replicas: list[FixedPointModel] = []

    def file_bytes(self) -> bytes:
        """The model file exactly as it was validated."""
        return self._file[: self.model_bytes].tobytes()

    @classmethod
    def load(cls, path: str | os.PathLike[str], fast: bool = False) -> FixedPointModel:
        """Read and validate an ``.elsh`` file. Raises ModelFileError naming what is wrong."""
        try:
            path = check_input_file(path, "model file")
        except OSError as exc:
            raise ModelFileError(str(exc)) from None
        size = path.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise ModelFileError(f"{path}: {size} bytes is too large for a model file")
        # Read into memory rather than mmap: the C reader would use a mapping in place, but a
        # file truncated by another program while mapped kills the process (SIGBUS); a copy
        # of a model costs a millisecond or two.
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{path}: cannot read ({exc})") from exc
        return cls(data, str(path), fast=fast)

    # ------------------------------------------------------------------ description
    @property
    def arena_bytes(self) -> int:
        """RAM the kernel needs beside the model file (scratch, drawn hash functions, tables
        built at load): what a microcontroller must reserve as its static arena."""
        return int(self._summary.arena_bytes)

    @property
    def n_in(self) -> int:
        return int(self._summary.n_in)

    @property
    def n_classes(self) -> int:
        return int(self._summary.n_classes)

    @property
    def n_layers(self) -> int:
        return int(self._summary.n_layers)

    @property
    def info(self) -> dict[str, Any]:
        """The file's INFO section (JSON), or {} when it has none or it does not parse (nor
        when it is nested too deeply, holds non-finite numbers or is over 4 MB)."""
        if self._summary.info == ffi.NULL:
            return {}
        n = int(self._summary.info_bytes)
        if n > MAX_JSON_BYTES:  # not even copied out of the file
            return {}
        raw = ffi.unpack(ffi.cast("char *", self._summary.info), n)
        try:
            value = loads_json(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def preprocess(self, x_raw: Any) -> np.ndarray:
        """Raw inputs scaled as the model was trained (the data record export stores in
        INFO); unchanged when the file records none."""
        record = data_record(self.info.get("data"), self.name)
        return preprocess(record, np.asarray(x_raw, dtype=np.float32))

    def layer_info(self, index: int) -> dict[str, Any]:
        L = self._layer(index)
        info: dict[str, Any] = {
            "n_in": int(L.n_in),
            "n_out": int(L.n_out),
            "k": int(L.k),
            "use_lsh": bool(L.use_lsh),
            "is_output": bool(L.is_output),
            "weight_bits": int(L.weight_bits),
            "in_zero_point": int(L.in_zero),
            "out_zero_point": int(L.out_zero),
            "in_scale": float(L.in_scale),
            "out_scale": float(L.out_scale),
        }
        if L.use_lsh:
            h = L.hash
            family = ["simhash", "ternary", "dwta"][int(h.family)]
            info.update(
                family=family,
                bits=int(h.bits),
                tables=int(h.tables),
                pool=int(h.pool),
                hash_dim=int(h.hash_dim),
                select=["topk", "union"][int(h.select_mode)],
                center=bool(h.center),
                hash_source=["seed", "explicit"][int(L.hash_source)],
                tables_in_file=bool(L.tables_in_file),
            )
        return info

    def dense_multiplications(self) -> int:
        layers = [self._layer(i) for i in range(self.n_layers)]
        return sum(int(L.n_in) * int(L.n_out) for L in layers)

    def _layer_index(self, index: int) -> int:
        if not -self.n_layers <= index < self.n_layers:
            raise IndexError(f"layer {index} out of range (the network has {self.n_layers})")
        return index % self.n_layers

    def _layer(self, index: int) -> Any:
        """The C kernel's elsh_qlayer_summary of layer `index` (negative: from the end)."""
        L = ffi.new("elsh_qlayer_summary *")
        check(lib.elsh_qnet_layer_info(self._net, self._layer_index(index), L), "layer info")
        return L

    # ------------------------------------------------------------------ inference
    def set_active(self, fraction: float | None = None, dense: bool = False) -> None:
        """k = round(fraction * n_out) in every LSH layer (None: the file's k); dense=True
        computes every neuron (the dense int8 baseline)."""
        f = 0.0 if fraction is None else float(fraction)
        if fraction is not None and not (0.0 < f <= 1.0):
            raise ValueError(f"active fraction must be in (0, 1], got {fraction}")
        check(lib.elsh_qnet_set_active(self._net, f, 1 if dense else 0), "set_active")
        self._active = (fraction, dense)
        for replica in self._replicas:
            replica.set_active(fraction, dense)

    def _workers(self, threads: int) -> list[FixedPointModel]:
        """This model and threads - 1 copies of it (made once, kept for later calls)."""
        if not (1 <= threads <= lib.ELSH_MAX_THREADS):
            raise ValueError(f"threads={threads}: must be in 1..{lib.ELSH_MAX_THREADS}")
        while len(self._replicas) < threads - 1:
            replica = FixedPointModel(self.file_bytes(), self.name, fast=self.fast)
            replica.set_active(*self._active)
            self._replicas.append(replica)
        return [self, *self._replicas[: threads - 1]]

    def _on_threads(
        self, n: int, threads: int, work: Callable[[FixedPointModel, int, int], None]
    ) -> None:
        """work(model, lo, hi) for contiguous row ranges, one model and thread each (the C
        calls release the GIL, so the ranges run on separate cores)."""
        workers = self._workers(threads)
        bounds = [n * w // len(workers) for w in range(len(workers) + 1)]
        if len(workers) == 1:
            work(self, 0, n)
            return
        with ThreadPoolExecutor(len(workers)) as pool:
            jobs = [pool.submit(work, m, bounds[w], bounds[w + 1]) for w, m in enumerate(workers)]
            for job in jobs:
                job.result()

    def _inputs(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"expected inputs of shape (n, {self.n_in}), got {x.shape}")
        if not np.issubdtype(x.dtype, np.number):
            raise ValueError(f"inputs must be numeric, got dtype {x.dtype}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        bad = ~np.isfinite(x)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ValueError(f"input row {r}, column {c} is not finite ({x[r, c]})")
        return x

    def quantize_input(self, x: Any) -> np.ndarray:
        """(n, n_in) int8: the inputs as the network sees them (FORMAT.md 6.1)."""
        x = self._inputs(x)
        out = np.empty(x.shape, dtype=np.int8)
        for r in range(x.shape[0]):
            check(
                lib.elsh_qnet_quantize_input(
                    self._net, ptr(x[r], "float *"), ptr(out[r], "int8_t *")
                ),
                "quantize input",
            )
        return out

    def forward_q(self, xq: Any) -> tuple[int, np.ndarray]:
        """One already-quantized input: (predicted class, int32 logits; inactive = -2^31)."""
        xq = np.ascontiguousarray(xq, dtype=np.int8).reshape(-1)
        if xq.size != self.n_in:
            raise ValueError(f"expected {self.n_in} int8 values, got {xq.size}")
        pred = check(lib.elsh_qnet_forward(self._net, ptr(xq, "int8_t *")), "forward")
        out = lib.elsh_qnet_logits(self._net)
        logits = np.frombuffer(ffi.buffer(out, 4 * self.n_classes), dtype=np.int32).copy()
        return pred, logits

    def last_active(self, index: int) -> np.ndarray:
        """Active neuron ids of layer `index` in the last forward pass."""
        n = ffi.new("int32_t *")
        active = lib.elsh_qnet_last_active(self._net, self._layer_index(index), n)
        return np.frombuffer(ffi.buffer(active, 4 * int(n[0])), dtype=np.int32).copy()

    def predict(self, x: Any, threads: int = 1) -> np.ndarray:
        return self.predict_logits(x, threads)[0]

    def predict_logits(self, x: Any, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(predictions, int32 logits of shape (n, n_classes)); the rows split among
        `threads` cores (the same results: the kernel is exact integer arithmetic)."""
        x = self._inputs(x)
        n = x.shape[0]
        pred = np.empty(n, dtype=np.int32)
        logits = np.empty((n, self.n_classes), dtype=np.int32)

        def rows(model: FixedPointModel, lo: int, hi: int) -> None:
            check(
                lib.elsh_qnet_predict(
                    model._net,
                    ptr(x[lo:hi], "float *"),
                    hi - lo,
                    ptr(pred[lo:hi], "int32_t *"),
                    ptr(logits[lo:hi], "int32_t *"),
                ),
                "predict",
            )

        self._on_threads(n, threads, rows)
        return pred, logits

    def predict_proba(self, x: Any, threads: int = 1) -> np.ndarray:
        """(n, n_classes) float32 class probabilities from the C kernel (elsh_qnet_probs after
        each row's forward pass): the softmax of the dequantized logits (the output layer's
        out_scale times each int32 logit) over the classes the output layer computed, 0 for
        a class an LSH output layer did not compute. The argmax is the prediction."""
        x = self._inputs(x)
        probs = np.zeros((x.shape[0], self.n_classes), dtype=np.float32)

        def rows(model: FixedPointModel, lo: int, hi: int) -> None:
            xq = np.empty(self.n_in, dtype=np.int8)
            for r in range(lo, hi):
                check(
                    lib.elsh_qnet_quantize_input(
                        model._net, ptr(x[r], "float *"), ptr(xq, "int8_t *")
                    ),
                    "quantize input",
                )
                check(lib.elsh_qnet_forward(model._net, ptr(xq, "int8_t *")), "forward")
                check(lib.elsh_qnet_probs(model._net, ptr(probs[r], "float *")), "probabilities")

        self._on_threads(x.shape[0], threads, rows)
        return probs

    def selection_stats(
        self, x: Any, timing: bool = True, recall: bool = True
    ) -> list[dict[str, Any]]:
        """Measure every layer's selection over the rows of x (floats, quantized here), with
        elsh_qnet_forward_stats: per layer and per input the bucket entries read, the distinct
        candidates, the active neurons, nanoseconds per step (hash, count, select, multiply;
        the binding's monotonic clock: the median over inputs, and the mean in
        ns_mean_per_input; None with timing=False) and the recall of the exact
        top-k (the k highest requantized pre-activations; LSH layers only, None elsewhere or
        with recall=False, which skips computing every neuron). With both, the steps are
        timed in a pass of their own, without the recall's work between them. The predictions
        and op counters are those of predict()."""
        return self.selection_stats_q(self.quantize_input(x), timing, recall)

    def selection_stats_q(
        self, xq: Any, timing: bool = True, recall: bool = True
    ) -> list[dict[str, Any]]:
        """selection_stats of already-quantized int8 rows (n, n_in)."""
        xq = np.ascontiguousarray(xq, dtype=np.int8)
        if xq.ndim != 2 or xq.shape[1] != self.n_in:
            raise ValueError(f"expected int8 rows of shape (n, {self.n_in}), got {xq.shape}")
        n_layers = self.n_layers
        stats = ffi.new("elsh_layer_stats[]", n_layers)
        widest = max(int(self._layer(i).n_out) for i in range(n_layers))
        pre = np.empty(widest, dtype=np.int32)
        pre_ptr = ptr(pre, "int32_t *") if recall else ffi.NULL
        clock = ffi.addressof(lib, "elsh_py_clock_ns") if timing else ffi.NULL
        # per input and step, for medians: a preempted input on a busy machine moves a mean
        ns = np.zeros((xq.shape[0], n_layers, len(STEPS)), dtype=np.int64)
        if timing and recall:
            # timed in a pass of its own: computing every pre-activation for the recall streams
            # all the weights through the caches after each layer, which would slow the next
            # steps (twice the count's time measured so) where a plain forward does not; the op
            # counters are put back, so that they count the recall pass alone, as predict()
            timed = ffi.new("elsh_layer_stats[]", n_layers)
            saved = ffi.new("elsh_counters *")
            ops = ffi.addressof(self._net, "ops")
            ffi.memmove(saved, ops, ffi.sizeof("elsh_counters"))
            self._forward_stats(xq, clock, ffi.NULL, timed, ns)
            ffi.memmove(ops, saved, ffi.sizeof("elsh_counters"))
            self._forward_stats(xq, ffi.NULL, pre_ptr, stats, None)
        else:
            timed = stats
            self._forward_stats(xq, clock, pre_ptr, stats, ns)
        out: list[dict[str, Any]] = []
        for i in range(n_layers):
            S = stats[i]
            n = max(int(S.inputs), 1)
            info = self._layer(i)
            row: dict[str, Any] = {
                "layer": i,
                "n_in": int(info.n_in),
                "n_out": int(info.n_out),
                "lsh": bool(info.use_lsh) and not bool(self._net.dense),
                "k": int(info.k),
                "inputs": int(S.inputs),
                "entries_per_input": int(S.entries) / n,
                "candidates_per_input": int(S.candidates) / n,
                "active_per_input": int(S.active) / n,
                "recall": (int(S.topk_found) / int(S.topk)) if int(S.topk) else None,
                "ns_per_input": (
                    {step: float(np.median(ns[:, i, j])) for j, step in enumerate(STEPS)}
                    if timing and xq.shape[0]
                    else None
                ),
                "ns_mean_per_input": (
                    {step: int(timed[i].ns[j]) / n for j, step in enumerate(STEPS)}
                    if timing
                    else None
                ),
            }
            out.append(row)
        return out

    def _forward_stats(
        self, xq: np.ndarray, clock: Any, pre_ptr: Any, stats: Any, ns: np.ndarray | None
    ) -> None:
        """elsh_qnet_forward_stats over the rows of xq into stats; ns[r] (if given) each row's
        nanoseconds per layer and step."""
        n_layers = self.n_layers
        before = np.zeros((n_layers, len(STEPS)), dtype=np.int64)
        for r in range(xq.shape[0]):
            check(
                lib.elsh_qnet_forward_stats(
                    self._net, ptr(xq[r], "int8_t *"), clock, ffi.NULL, pre_ptr, stats
                ),
                "forward",
            )
            if ns is not None:
                now = np.array([[int(v) for v in stats[i].ns] for i in range(n_layers)])
                ns[r] = now - before
                before = now

    def ops(self, total: bool = True) -> dict[str, dict[str, int]]:
        """Op counters (the sum over this model and its copies on other threads)."""
        counts = {
            phase: ops_dict(lib.elsh_qnet_ops(self._net, i, int(total)))
            for i, phase in enumerate(_PHASES)
        }
        for replica in self._replicas:
            for phase, more in replica.ops(total).items():
                counts[phase] = {key: counts[phase][key] + value for key, value in more.items()}
        return counts

    def evaluate(self, x: Any, y: Any, threads: int = 1) -> dict[str, float]:
        """Accuracy and per-sample cost, with the keys of ``Network.evaluate``."""
        x = self._inputs(x)
        y = np.asarray(y)
        if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"labels must be {x.shape[0]} integers, got {y.dtype} {y.shape}")
        dense = self.dense_multiplications()
        self._workers(threads)  # copies made (and a bad count refused) before the clock starts

        def predict(rows: np.ndarray) -> np.ndarray:
            return self.predict(rows, threads)

        ev = evaluation(predict, self.ops, dense, x, y, time.perf_counter)
        ev["model_bytes"] = float(self.model_bytes)
        return ev


def _file_error(name: str, status: int) -> ModelFileError:
    """The error for a file the C reader rejected: ElshFormatError with the FORMAT.md rule it
    broke (as the Python reader raises), or ModelFileError for any other status."""
    msg = status_message(status)
    code = FORMAT_ERRORS.get(status)
    if code is None:
        return ModelFileError(f"{name}: {msg} (status {status})")
    return ElshFormatError(code, f"{name}: {msg}")
