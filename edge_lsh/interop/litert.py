"""Running .tflite files in LiteRT: ``ai-edge-litert`` where installed (the maintained
package), else ``tflite-runtime`` (2.14 needs numpy < 2). TensorFlow is never imported.

    find_runtime() -> Runtime | None      which runtime is installed (and works)
    LiteRTModel(runtime, model_bytes)     an interpreter on one thread; predict_logits(x),
                                          invoke_one(row), resize(batch)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_lsh.interop.mlp import InteropError

__all__ = ["Runtime", "find_runtime", "LiteRTModel", "INSTALL_HINT"]

INSTALL_HINT = 'pip install ".[tflite]" (ai-edge-litert; or tflite-runtime with numpy < 2)'

_CANDIDATES = (
    ("ai-edge-litert", "ai_edge_litert.interpreter", "ai_edge_litert"),
    ("tflite-runtime", "tflite_runtime.interpreter", "tflite_runtime"),
)


@dataclass(frozen=True)
class Runtime:
    """An installed LiteRT Python runtime: its package name and version, and its Interpreter."""

    package: str
    version: str
    interpreter: Any

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}"


def find_runtime(prefer: str | None = None) -> Runtime | None:
    """The first LiteRT runtime that imports (prefer: 'ai-edge-litert' or 'tflite-runtime'
    first); None when there is none."""
    order = sorted(_CANDIDATES, key=lambda c: c[0] != prefer)
    for package, module, top in order:
        try:
            mod = importlib.import_module(module)
        except Exception:  # ImportError, or a runtime built against another numpy
            continue
        try:
            version = str(getattr(importlib.import_module(top), "__version__", "?"))
        except Exception:
            version = "?"
        if version == "?":
            try:
                from importlib.metadata import version as dist_version

                version = dist_version(package)
            except Exception:
                pass
        return Runtime(package, version, mod.Interpreter)
    return None


class LiteRTModel:
    """A .tflite model in a LiteRT interpreter on one thread, float inputs and outputs
    (an int8 input or output tensor is quantized and dequantized here)."""

    def __init__(self, runtime: Runtime, model: bytes, threads: int = 1) -> None:
        self.runtime = runtime
        self.model_bytes = len(model)
        self._model = model  # the interpreter may keep pointers into these bytes
        try:
            self.interp = runtime.interpreter(model_content=model, num_threads=threads)
            self.interp.allocate_tensors()
        except Exception as exc:
            raise InteropError(f"{runtime.label} cannot load the model: {exc}") from None
        self._io()

    def _io(self) -> None:
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.batch = int(self.inp["shape"][0])
        self.in_index = int(self.inp["index"])
        self.out_index = int(self.out["index"])

    def resize(self, batch: int) -> None:
        if batch == self.batch:
            return
        shape = [batch, *[int(d) for d in self.inp["shape"][1:]]]
        self.interp.resize_tensor_input(self.in_index, shape, strict=False)
        self.interp.allocate_tensors()
        self._io()

    def _to_input(self, x: np.ndarray) -> np.ndarray:
        dtype = self.inp["dtype"]
        if dtype == np.float32:
            return np.ascontiguousarray(x, dtype=np.float32)
        scale, zero = self.inp["quantization"]
        q = np.round(np.asarray(x, np.float32) / scale) + zero
        info = np.iinfo(dtype)
        return np.clip(q, info.min, info.max).astype(dtype)

    def _from_output(self, y: np.ndarray) -> np.ndarray:
        if self.out["dtype"] == np.float32:
            return np.asarray(y, dtype=np.float32)
        scale, zero = self.out["quantization"]
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """The rows of x as the input tensor takes them (done once, before timing)."""
        return self._to_input(x)

    def invoke_one(self, row: np.ndarray) -> int:
        """One prepared row of shape (1, n_in): set, invoke, get; the predicted class."""
        self.interp.set_tensor(self.in_index, row)
        self.interp.invoke()
        return int(np.argmax(self.interp.get_tensor(self.out_index)[0]))

    def invoke_batch(self, rows: np.ndarray) -> np.ndarray:
        """Prepared rows, shape (batch, n_in) with batch the resized size: the raw outputs."""
        self.interp.set_tensor(self.in_index, rows)
        self.interp.invoke()
        return np.asarray(self.interp.get_tensor(self.out_index))

    def predict_logits(self, x: Any, batch: int = 64) -> np.ndarray:
        """Float logits (dequantized) of the float rows of x, in batches."""
        x = np.asarray(x, dtype=np.float32)
        n = x.shape[0]
        outs = []
        for start in range(0, n, batch):
            part = x[start : start + batch]
            self.resize(part.shape[0])
            outs.append(self._from_output(self.invoke_batch(self._to_input(part))).copy())
        return np.concatenate(outs) if outs else np.zeros((0, int(self.out["shape"][1])))
