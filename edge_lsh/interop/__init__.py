"""ONNX and TFLite in and out, and LiteRT as a baseline.

    read_model(path) -> DenseMLP          a dense MLP from .onnx or .tflite (InteropError else)
    DenseMLP, Int8Params                  the interchange form (edge_lsh.interop.mlp)
    onnx_bytes / write_onnx / read_onnx   edge_lsh.interop.onnx_io (needs onnx)
    tflite_bytes / write_tflite / read_tflite   edge_lsh.interop.tflite_io (needs tflite)
    find_runtime, LiteRTModel             edge_lsh.interop.litert (ai-edge-litert or tflite-runtime)
    network_from_mlp, mlp_from_network, mlp_from_qmodel, int8_for_network   edge_lsh.interop.convert
    export_dense                          edge_lsh.interop.exporter (what `edge-lsh export` runs)

The optional packages are imported only when a function needs them; a missing one is an
InteropError that says what to install (pip install ".[onnx]" / ".[tflite]").
"""

from __future__ import annotations

import os

from edge_lsh.interop.mlp import DenseLayer, DenseMLP, Int8Params, InteropError, QuantLayer

__all__ = [
    "DenseLayer",
    "DenseMLP",
    "Int8Params",
    "InteropError",
    "QuantLayer",
    "model_format",
    "read_model",
]

FORMATS = ("onnx", "tflite")


def model_format(path: str | os.PathLike[str]) -> str:
    """'tflite' or 'onnx' from the file's first bytes (the TFL3 identifier) or its suffix."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise InteropError(f"{p}: no such file") from None
    except OSError as exc:
        raise InteropError(f"{p}: cannot read ({exc})") from None
    if head[4:8] == b"TFL3" or p.lower().endswith(".tflite"):
        return "tflite"
    if p.lower().endswith(".onnx"):
        return "onnx"
    raise InteropError(f"{p}: neither a .tflite file (no TFL3 identifier) nor an .onnx file")


def read_model(path: str | os.PathLike[str]) -> DenseMLP:
    """A dense MLP from an ONNX or TFLite file."""
    if model_format(path) == "tflite":
        from edge_lsh.interop.tflite_io import read_tflite

        return read_tflite(path)
    from edge_lsh.interop.onnx_io import read_onnx

    return read_onnx(path)
