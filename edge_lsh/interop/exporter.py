"""``edge-lsh export --format onnx|tflite``: a model's dense equivalent written as ONNX or
TFLite, then checked against edge-lsh's own kernels on test rows.

    dense_source(net | fixed, calib_x, int8)   what to write and what to compare it with
    export_dense(src, fmt, int8, out, x, y)    write, check, and the summary `--json` prints

Checks: ONNX with ``onnx.checker`` and onnx's reference evaluator (its logits against the
numpy float model, its predictions against our dense kernel); TFLite by running the written
bytes in LiteRT (ai-edge-litert or tflite-runtime, when installed) against our dense float
kernel (float files) or our dense int8 kernel (int8 files: the fixed-point kernel computing
every neuron).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_lsh.fileio import atomic_write
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import elsh_bytes, read_elsh
from edge_lsh.interop.convert import (
    calibrate_output,
    int8_for_network,
    mlp_from_network,
    mlp_from_qmodel,
    network_from_mlp,
)
from edge_lsh.interop.litert import INSTALL_HINT, LiteRTModel, find_runtime
from edge_lsh.interop.mlp import DenseMLP, InteropError, int8_logits
from edge_lsh.network import Network

__all__ = ["DenseSource", "dense_source", "export_dense", "dense_int8_kernel"]

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass
class DenseSource:
    """A model's dense equivalent and edge-lsh's kernels to check a written file against."""

    mlp: DenseMLP
    float_kernel: Predict  # our dense float kernel (Network, lsh=None) on the same weights
    int8_kernel: Predict | None = None  # our dense int8 kernel (fixed point, every neuron)
    quantization: str | None = None
    notes: list[str] = field(default_factory=list)


def dense_int8_kernel(blob: bytes, name: str = "<int8 dense>") -> FixedPointModel:
    """The fixed-point kernel on an .elsh model, computing every neuron."""
    fixed = FixedPointModel(blob, name)
    fixed.set_active(None, dense=True)
    return fixed


def dense_source(model: Network | FixedPointModel, calib_x: Any, int8: bool) -> DenseSource:
    """The dense equivalent of a float Network or an .elsh model (with its int8 form when int8
    is asked for: an .elsh model's own integers; a float model quantized as `export` would
    write its .elsh, on calib_x)."""
    calib = np.asarray(calib_x, dtype=np.float32) if calib_x is not None else None
    if isinstance(model, FixedPointModel):
        blob = model.file_bytes()
        qm = read_elsh(blob)
        mlp = mlp_from_qmodel(qm, model.name)
        if int8:
            if mlp.int8 is None:
                raise InteropError(
                    f"{model.name} has 16-bit weights: an int8 .tflite needs 8-bit weights "
                    "(export the float model with --weight-bits 8, or write a float .tflite)"
                )
            if calib is None:
                raise InteropError("an int8 .tflite needs calibration rows for its output range")
            calibrate_output(mlp, calib)
        dense = network_from_mlp(mlp, None)
        return DenseSource(
            mlp,
            dense.predict,
            dense_int8_kernel(blob, model.name).predict,
            "the .elsh file's own integers (weights, biases, activation scales); output "
            "range calibrated on the logits"
            if int8
            else None,
        )
    dense = network_from_mlp(mlp_from_network(model), None)
    if not int8:
        return DenseSource(mlp_from_network(model), dense.predict)
    if calib is None:
        raise InteropError("an int8 .tflite needs calibration rows")
    mlp, how, own = int8_for_network(model, calib)
    kernel = dense_int8_kernel(elsh_bytes(own)).predict if own is not None else None
    return DenseSource(mlp, dense.predict, kernel, how)


def export_dense(
    src: DenseSource,
    fmt: str,
    int8: bool,
    out: str | os.PathLike[str],
    x: np.ndarray,
    y: np.ndarray,
) -> dict[str, Any]:
    """Write src as fmt ('onnx' or 'tflite', int8 or float32) to out, check it on the rows
    x (labels y), and return the summary."""
    if fmt == "onnx" and int8:
        raise InteropError("--int8 is for --format tflite; ONNX is written in float32")
    x = np.ascontiguousarray(x, dtype=np.float32)
    summary: dict[str, Any] = {
        "model": os.fspath(out),
        "format": fmt,
        "precision": "int8" if int8 else "float32",
        "layers": src.mlp.layer_sizes,
        "outputs": "logits",
    }
    if src.quantization:
        summary["quantization"] = src.quantization
    ours = src.int8_kernel if int8 else src.float_kernel
    ours_name = "edge-lsh dense int8 kernel" if int8 else "edge-lsh dense float kernel"
    if fmt == "onnx":
        from edge_lsh.interop.onnx_io import onnx_bytes, run_reference

        data = onnx_bytes(src.mlp)  # onnx.checker.check_model(full_check=True) inside
        logits = run_reference(data, x)
        summary["checked_with"] = "onnx.checker + onnx.reference.ReferenceEvaluator"
        summary["max_abs_logit_diff_vs_numpy"] = float(np.abs(logits - src.mlp.forward(x)).max())
    else:
        from edge_lsh.interop.tflite_io import tflite_bytes

        data = tflite_bytes(src.mlp, int8)
        runtime = find_runtime()
        logits = None
        if runtime is None:
            summary["checked_with"] = None
            summary["note"] = f"not run: no LiteRT runtime installed ({INSTALL_HINT})"
        else:
            logits = LiteRTModel(runtime, data).predict_logits(x)
            summary["checked_with"] = runtime.label
            reference = int8_logits(src.mlp, x) if int8 else src.mlp.forward(x)
            summary["max_abs_logit_diff_vs_numpy"] = float(np.abs(logits - reference).max())
    if logits is not None and x.shape[0]:
        pred = np.argmax(logits, axis=1)
        summary["accuracy"] = float((pred == y).mean())
        summary["samples"] = int(x.shape[0])
        if ours is not None:
            mine = ours(x)
            summary["compared_with"] = ours_name
            summary["kernel_accuracy"] = float((mine == y).mean())
            summary["agreement_with_kernel"] = float((mine == pred).mean())
    with atomic_write(out) as f:
        f.write(data)
    summary["model_bytes"] = len(data)
    return summary
