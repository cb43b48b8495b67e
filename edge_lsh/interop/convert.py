"""Between the interchange form (``DenseMLP``) and edge-lsh's own models.

mlp_from_network(net)                 the float network's dense equivalent
mlp_from_qmodel(qm)                   an .elsh model's: int8 form as stored, float dequantized
network_from_mlp(mlp, lsh, seed)      a Network holding mlp's weights (tables built over them)
calibrate_int8(mlp, x)                int8 form as a TFLite converter makes it: per-channel
                                      symmetric weights, activations over their ranges on x
int8_for_network(net, x)              the int8 form export writes for a float model
import_record(mlp, fmt) / imported_int8(net)   what a model keeps of an imported int8 file
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edge_lsh.interop.mlp import (
    DenseLayer,
    DenseMLP,
    Int8Params,
    InteropError,
    QuantLayer,
    asymmetric_params,
    weights_crc,
)
from edge_lsh.network import LSHConfig, Network
from edge_lsh.oracle.qmodel import QModel
from edge_lsh.quantize import quantize

__all__ = [
    "mlp_from_network",
    "mlp_from_qmodel",
    "network_from_mlp",
    "calibrate_int8",
    "int8_for_network",
    "import_record",
    "imported_int8",
    "network_weights",
]


def network_weights(net: Network) -> list[tuple[np.ndarray, np.ndarray]]:
    """Copies of every layer's (w, b)."""
    out = []
    for i in range(net.n_layers):
        a = net.layer_arrays(i)
        out.append((np.array(a["w"], dtype=np.float32), np.array(a["b"], dtype=np.float32)))
    return out


def mlp_from_network(net: Network, source: str = "") -> DenseMLP:
    """The dense equivalent of a float network: its weights, every neuron computed."""
    weights = network_weights(net)
    last = len(weights) - 1
    layers = [DenseLayer(w, b, relu=i < last) for i, (w, b) in enumerate(weights)]
    return DenseMLP(layers, source=source or "network")


def _weight_scales(layer: Any) -> np.ndarray:
    """Per-neuron weight scales of a QLayer: stored by quantize(), else recovered from the
    requantization multipliers (multiplier * 2^(shift - 31) = in_scale * w_scale / out_scale)."""
    if layer.weight_scale is not None:
        return np.asarray(layer.weight_scale, dtype=np.float64)
    real = layer.multiplier.astype(np.float64) * np.exp2(layer.shift.astype(np.float64) - 31)
    scale = real * float(layer.out_scale) / float(layer.in_scale)
    return np.where(scale > 0, scale, 1e-30)


def mlp_from_qmodel(qm: QModel, source: str = "") -> DenseMLP:
    """An .elsh model's dense equivalent: the float weights are the stored integers times
    their scales; with 8-bit weights the int8 form is the stored one (the output layer's int8
    scale is set by calibrate_output)."""
    layers, qlayers = [], []
    for L in qm.layers:
        wscale = _weight_scales(L)
        w = (L.weights.astype(np.float64) * wscale[:, None]).astype(np.float32)
        b = (L.bias.astype(np.float64) * float(L.in_scale) * wscale).astype(np.float32)
        layers.append(DenseLayer(w, b, relu=not L.is_output))
        if L.weight_bits == 8:
            out_scale, out_zero = (
                (float(L.out_scale), int(L.out_zero_point)) if not L.is_output else (1.0, 0)
            )
            qlayers.append(
                QuantLayer(
                    L.weights.astype(np.int8),
                    wscale.astype(np.float32),
                    L.bias.astype(np.int32),
                    out_scale,
                    out_zero,
                )
            )
    int8 = None
    notes = []
    if len(qlayers) == len(layers):
        first = qm.layers[0]
        int8 = Int8Params(float(first.in_scale), int(first.in_zero_point), qlayers)
    else:
        notes.append("16-bit weights: no int8 form")
    return DenseMLP(layers, int8=int8, source=source or "elsh", notes=notes)


def calibrate_output(mlp: DenseMLP, calib_x: np.ndarray) -> None:
    """Set the int8 output layer's scale and zero point from the range of the float logits
    on the calibration rows (our kernel keeps int32 logits; TFLite's layer outputs int8)."""
    if mlp.int8 is None:
        return
    logits = mlp.forward(calib_x)
    scale, zero = asymmetric_params(float(logits.min()), float(logits.max()))
    mlp.int8.layers[-1].out_scale = scale
    mlp.int8.layers[-1].out_zero = zero


def _symmetric(w: np.ndarray, b: np.ndarray, in_scale: float) -> tuple[Any, Any, Any]:
    """Per-neuron symmetric int8 weights (scale max|w| / 127, float32) and int32 biases."""
    amax = np.abs(w.astype(np.float64)).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    s64 = scale.astype(np.float64)
    wq = np.clip(np.round(w.astype(np.float64) / s64[:, None]), -127, 127).astype(np.int8)
    bq = np.round(b.astype(np.float64) / (float(in_scale) * s64))
    bq = np.clip(bq, -(2**31) + 1, 2**31 - 1).astype(np.int32)
    return wq, scale, bq


def calibrate_int8(mlp: DenseMLP, calib_x: Any) -> Int8Params:
    """Post-training int8 quantization as TFLite's converter does it: weights symmetric per
    output channel, int32 biases, every activation asymmetric over its range on calib_x."""
    x = np.asarray(calib_x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != mlp.n_in:
        raise InteropError(f"calibration rows of shape {x.shape}; need (n >= 1, {mlp.n_in})")
    in_scale, in_zero = asymmetric_params(float(x.min()), float(x.max()))
    first_scale, first_zero = in_scale, in_zero
    qlayers = []
    h = x
    for layer in mlp.layers:
        h = h @ layer.w.T + layer.b
        if layer.relu:
            h = np.maximum(h, np.float32(0))
        out_scale, out_zero = asymmetric_params(float(h.min()), float(h.max()))
        wq, scale, bq = _symmetric(layer.w, layer.b, in_scale)
        qlayers.append(QuantLayer(wq, scale, bq, out_scale, out_zero))
        in_scale = out_scale
    return Int8Params(first_scale, first_zero, qlayers)


def import_record(mlp: DenseMLP, fmt: str, name: str) -> dict[str, Any]:
    """What a model made from mlp keeps of its source (in its data record, key 'imported'):
    the format and file, a checksum of the imported weights, and the int8 activation
    parameters of an int8 file, reused by export while the weights are unchanged."""
    rec: dict[str, Any] = {
        "format": fmt,
        "file": name,
        "layers": mlp.layer_sizes,
        "weights_crc": weights_crc([(la.w, la.b) for la in mlp.layers]),
    }
    if mlp.int8 is not None:
        rec["int8"] = mlp.int8.record()
    return rec


def imported_int8(net: Network) -> Int8Params | None:
    """The int8 parameters of the file net was imported from, when net still holds exactly
    the imported weights (not fine-tuned): the activations' scales and zero points as the file
    had them, weights and biases requantized symmetric per neuron (what a converter makes,
    so the integers come back as they were)."""
    rec = (net.data or {}).get("imported")
    if not isinstance(rec, dict) or not isinstance(rec.get("int8"), dict):
        return None
    weights = network_weights(net)
    if rec.get("weights_crc") != weights_crc(weights):
        return None
    try:
        q = rec["int8"]
        outs = [(float(s), int(z)) for s, z in q["out"]]
        in_scale, in_zero = float(q["in_scale"]), int(q["in_zero"])
    except (KeyError, TypeError, ValueError):
        return None
    if len(outs) != len(weights) or not all(math.isfinite(s) and s > 0 for s, _ in outs):
        return None
    qlayers = []
    scale = in_scale
    for (w, b), (out_scale, out_zero) in zip(weights, outs):
        wq, wscale, bq = _symmetric(w, b, scale)
        qlayers.append(QuantLayer(wq, wscale, bq, out_scale, out_zero))
        scale = out_scale
    return Int8Params(in_scale, in_zero, qlayers)


def int8_for_network(net: Network, calib_x: Any) -> tuple[DenseMLP, str, QModel | None]:
    """net's dense equivalent with its int8 form, and how the int8 form was made: the
    imported file's parameters while the weights are those imported, else edge-lsh's own
    quantization (``quantize``, as ``export`` writes the .elsh file, calibrated on calib_x)
    with the output layer's int8 range calibrated on the logits of calib_x. The QModel is
    that quantization (None for the imported parameters)."""
    mlp = mlp_from_network(net)
    q = imported_int8(net)
    if q is not None:
        mlp.int8 = q
        return mlp, "the imported file's int8 parameters (weights unchanged since import)", None
    x = np.asarray(calib_x, dtype=np.float32)
    qm = quantize(net, x)
    qmlp = mlp_from_qmodel(qm)
    calibrate_output(qmlp, x)
    mlp.int8 = qmlp.int8
    how = f"edge-lsh's int8 quantization (as in the .elsh), {x.shape[0]} calibration rows"
    return mlp, how, qm


def network_from_mlp(
    mlp: DenseMLP, lsh: LSHConfig | None, seed: int = 0, output_lsh: bool = False
) -> Network:
    """A Network with mlp's weights written into its arrays; with LSH, its hash tables are
    rebuilt over those weights."""
    mlp.check_mlp()
    net = Network(mlp.n_in, mlp.hidden, mlp.n_classes, lsh, output_lsh=output_lsh, seed=seed)
    for i, layer in enumerate(mlp.layers):
        a = net.layer_arrays(i)
        a["w"][...] = layer.w
        a["b"][...] = layer.b
    if lsh is not None:
        net.rebuild_tables()
    return net
