"""The dense MLP that every interchange format is read into and written from.

``DenseMLP`` holds float32 weights (n_out, n_in) and biases per layer, ReLU on every layer but
the last, and optionally the int8 quantization of the same network (``Int8Params``): the
weights as stored (int8, one symmetric scale per neuron), int32 biases, and the scale and zero
point of the input and of every layer's output, as TFLite keeps them. A model read from an
int8 ``.tflite`` file carries both: the float weights are the int8 ones dequantized.

    DenseMLP.forward(x)        float logits, numpy float32 (the dense float reference)
    DenseMLP.predict(x)        argmax of forward
    int8_logits(mlp, x)        the int8 arithmetic TFLite's reference kernels do, in numpy
    weights_crc(layers)        a checksum of float weights (has a model been fine-tuned?)
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_lsh.errors import ModelFileError

__all__ = [
    "InteropError",
    "DenseLayer",
    "QuantLayer",
    "Int8Params",
    "DenseMLP",
    "int8_logits",
    "weights_crc",
    "asymmetric_params",
]


class InteropError(ModelFileError):
    """An ONNX or TFLite file edge-lsh cannot read as a dense MLP (an unsupported op, a graph
    that is not a chain of fully connected layers, a missing input shape, a truncated file),
    or a model that cannot be written in the format asked for."""


@dataclass(eq=False)
class DenseLayer:
    """One fully connected layer: y = x @ w.T + b, then ReLU when relu."""

    w: np.ndarray  # float32 (n_out, n_in)
    b: np.ndarray  # float32 (n_out,)
    relu: bool

    @property
    def n_in(self) -> int:
        return int(self.w.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.w.shape[0])


@dataclass(eq=False)
class QuantLayer:
    """The int8 form of a layer: w_q int8 (n_out, n_in) with one scale per neuron (zero point
    0), b_q int32 in units of in_scale * w_scale[j], and the int8 output's scale and zero
    point (a ReLU layer clamps at its zero point)."""

    w_q: np.ndarray
    w_scale: np.ndarray  # float32 (n_out,)
    b_q: np.ndarray  # int32 (n_out,)
    out_scale: float
    out_zero: int


@dataclass(eq=False)
class Int8Params:
    """The int8 quantization of a DenseMLP: the input's scale and zero point, then each
    layer's (QuantLayer)."""

    in_scale: float
    in_zero: int
    layers: list[QuantLayer]

    def record(self) -> dict[str, Any]:
        """The activation parameters as JSON (what a model file can keep of them)."""
        return {
            "in_scale": float(self.in_scale),
            "in_zero": int(self.in_zero),
            "out": [[float(q.out_scale), int(q.out_zero)] for q in self.layers],
        }


@dataclass(eq=False)
class DenseMLP:
    """A chain of fully connected layers, ReLU between them, logits out (``softmax`` says
    whether the source graph ended in a softmax; the argmax is the same either way)."""

    layers: list[DenseLayer]
    softmax: bool = False
    int8: Int8Params | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.layers:
            raise InteropError(f"{self.source or 'model'}: no fully connected layer")
        for i, layer in enumerate(self.layers):
            layer.w = np.ascontiguousarray(layer.w, dtype=np.float32)
            layer.b = np.ascontiguousarray(layer.b, dtype=np.float32).reshape(-1)
            if layer.w.ndim != 2 or layer.b.shape != (layer.w.shape[0],):
                raise InteropError(
                    f"{self.source}: layer {i} has weights {layer.w.shape} and bias "
                    f"{layer.b.shape}; expected (n_out, n_in) and (n_out,)"
                )
            if not (np.isfinite(layer.w).all() and np.isfinite(layer.b).all()):
                raise InteropError(f"{self.source}: layer {i} holds NaN or infinite weights")
            if i and layer.n_in != self.layers[i - 1].n_out:
                raise InteropError(
                    f"{self.source}: layer {i} takes {layer.n_in} inputs but layer {i - 1} "
                    f"gives {self.layers[i - 1].n_out}"
                )

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_classes(self) -> int:
        return self.layers[-1].n_out

    @property
    def hidden(self) -> list[int]:
        return [layer.n_out for layer in self.layers[:-1]]

    @property
    def layer_sizes(self) -> list[int]:
        return [self.n_in, *(layer.n_out for layer in self.layers)]

    def forward(self, x: Any) -> np.ndarray:
        """Float32 logits of the rows of x."""
        h = np.asarray(x, dtype=np.float32)
        if h.ndim == 1:
            h = h[None, :]
        for layer in self.layers:
            h = h @ layer.w.T + layer.b
            if layer.relu:
                h = np.maximum(h, np.float32(0))
        return h

    def predict(self, x: Any) -> np.ndarray:
        return np.argmax(self.forward(x), axis=1).astype(np.int32)

    def check_mlp(self) -> None:
        """Raise InteropError unless every layer but the last has a ReLU and the last none:
        the shape edge-lsh's networks have."""
        name = self.source or "model"
        for i, layer in enumerate(self.layers[:-1]):
            if not layer.relu:
                raise InteropError(
                    f"{name}: layer {i} ({layer.n_in}->{layer.n_out}) has no ReLU before the "
                    "next layer; edge-lsh networks put a ReLU after every hidden layer"
                )
        if self.layers[-1].relu:
            raise InteropError(
                f"{name}: the output layer ends in a ReLU; edge-lsh's output layer gives "
                "logits (a softmax may follow)"
            )
        if self.n_classes < 2:
            raise InteropError(f"{name}: the output has {self.n_classes} value(s); need >= 2")


def weights_crc(layers: list[tuple[np.ndarray, np.ndarray]]) -> int:
    """CRC-32 of the float32 weights and biases, layer by layer."""
    crc = 0
    for w, b in layers:
        crc = zlib.crc32(np.ascontiguousarray(w, dtype=np.float32).tobytes(), crc)
        crc = zlib.crc32(np.ascontiguousarray(b, dtype=np.float32).tobytes(), crc)
    return crc


def asymmetric_params(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero point) of int8 over [min(lo, 0), max(hi, 0)], as TFLite's converter
    picks them for activations (float32 scale)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi == lo:
        hi = lo + 1.0
    scale = float(np.float32((hi - lo) / 255.0))
    zero = int(np.clip(np.round(-128.0 - lo / scale), -128, 127))
    return scale, zero


def _requantize(acc: np.ndarray, real: np.ndarray) -> np.ndarray:
    """acc * real rounded to the nearest integer (half away from zero), in float64: the
    effect of TFLite's MultiplyByQuantizedMultiplier to within one unit."""
    v = acc.astype(np.float64) * real
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def int8_logits(mlp: DenseMLP, x: Any) -> np.ndarray:
    """The dequantized float logits of mlp's int8 form for the float rows of x: the input
    quantized (round, clamp), each layer's int32 accumulator requantized to its int8 output,
    ReLU as a clamp at the zero point, the last layer's output dequantized. A numpy model of
    what the int8 .tflite file computes (to within one unit of a rounding)."""
    q = mlp.int8
    if q is None:
        raise InteropError(f"{mlp.source or 'model'}: has no int8 form")
    h = np.asarray(x, dtype=np.float32)
    a = np.clip(np.round(h / np.float32(q.in_scale)) + q.in_zero, -128, 127).astype(np.int64)
    in_scale, in_zero = q.in_scale, q.in_zero
    for layer, ql in zip(mlp.layers, q.layers):
        acc = (a - in_zero) @ ql.w_q.astype(np.int64).T + ql.b_q.astype(np.int64)[None, :]
        real = in_scale * ql.w_scale.astype(np.float64) / ql.out_scale
        y = _requantize(acc, real[None, :]) + ql.out_zero
        lo = ql.out_zero if layer.relu else -128
        a = np.clip(y, lo, 127).astype(np.int64)
        in_scale, in_zero = ql.out_scale, ql.out_zero
    return ((a - in_zero) * in_scale).astype(np.float32)
