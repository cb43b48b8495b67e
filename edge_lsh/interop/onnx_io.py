"""ONNX in and out, with the ``onnx`` package (``pip install ".[onnx]"``).

Reading walks the graph from its input: Gemm, or MatMul followed by Add, makes a fully
connected layer; Relu marks the layer before it; Softmax may end the graph; Flatten, Reshape
(to (batch, features)) and Identity pass the tensor on; Constant nodes may feed a Reshape's
shape. Any other op is an error that names it and its node. Every weight must be an
initializer (or a Constant): the graph is a single chain from the input to the output.

Writing gives the dense equivalent: ``input`` float32 (N, n_in) -> Gemm (transB=1) -> Relu ...
-> Gemm -> ``logits`` float32 (N, n_classes). No Softmax at the end: the argmax is the same,
and logits can be compared with the fixed-point kernel's (an importer accepts a trailing
Softmax either way). Opset 13, checked with ``onnx.checker``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edge_lsh.interop.mlp import DenseLayer, DenseMLP, InteropError

__all__ = ["read_onnx", "write_onnx", "onnx_bytes", "run_reference", "require_onnx", "OPSET"]

OPSET = 13
SUPPORTED = "Gemm, MatMul + Add, Relu, Softmax, Flatten, Reshape, Identity (and Constant)"


def require_onnx() -> Any:
    """The onnx module, or an InteropError that says how to get it."""
    try:
        import onnx
    except ImportError:
        raise InteropError(
            'reading and writing ONNX needs the onnx package: pip install ".[onnx]" '
            "(or pip install onnx)"
        ) from None
    return onnx


def _attrs(node: Any) -> dict[str, Any]:
    onnx = require_onnx()
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def read_onnx(source: str | os.PathLike[str] | bytes) -> DenseMLP:
    """Read a dense MLP from an ONNX file (or its bytes). Raises InteropError."""
    onnx = require_onnx()
    from onnx import numpy_helper

    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        if isinstance(source, bytes):
            model = onnx.load_from_string(source)
        else:
            model = onnx.load(os.fspath(source))
    except FileNotFoundError:
        raise InteropError(f"{name}: no such file") from None
    except Exception as exc:  # protobuf's DecodeError and friends: truncated or not ONNX
        raise InteropError(
            f"{name}: not a readable ONNX model, truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from None
    graph = model.graph
    if len(graph.node) == 0:
        raise InteropError(f"{name}: not an ONNX model with a graph (no nodes)")
    consts: dict[str, np.ndarray] = {}
    try:
        for init in graph.initializer:
            consts[init.name] = numpy_helper.to_array(init)
    except Exception as exc:
        raise InteropError(f"{name}: an initializer cannot be read ({exc})") from None
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise InteropError(
            f"{name}: has {len(inputs)} data inputs ({', '.join(i.name for i in inputs)}); a "
            "dense MLP has one"
        )
    inp = inputs[0]
    tt = inp.type.tensor_type
    if not tt.HasField("shape") or len(tt.shape.dim) < 2:
        raise InteropError(
            f"{name}: input '{inp.name}' has no shape (need (batch, features) or (batch, ...) "
            "with every feature dimension known)"
        )
    feat_dims = [d.dim_value if d.HasField("dim_value") else 0 for d in tt.shape.dim[1:]]
    if any(d <= 0 for d in feat_dims):
        raise InteropError(
            f"{name}: input '{inp.name}' has an unknown feature dimension "
            f"({[d.dim_param or d.dim_value for d in tt.shape.dim]}); every dimension after the "
            "batch must be known"
        )
    if tt.elem_type != onnx.TensorProto.FLOAT:
        raise InteropError(f"{name}: input '{inp.name}' is not float32")
    n_features = int(np.prod(feat_dims))
    flat = len(feat_dims) == 1
    current = inp.name
    layers: list[DenseLayer] = []
    pending_matmul = False  # a MatMul whose Add (bias) may follow
    softmax = False

    def where(i: int, node: Any) -> str:
        return f"node {i} '{node.name or node.output[0]}'"

    def const(tensor: str, i: int, node: Any) -> np.ndarray:
        if tensor not in consts:
            raise InteropError(
                f"{name}: {node.op_type} {where(i, node)} takes '{tensor}', which is not a "
                "constant (initializer): not a dense MLP"
            )
        return consts[tensor]

    for i, node in enumerate(graph.node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise InteropError(
                f"{name}: unsupported op '{node.domain}.{op}' at {where(i, node)}; edge-lsh "
                f"imports {SUPPORTED}"
            )
        if op == "Constant":
            a = _attrs(node)
            if "value" not in a:
                raise InteropError(f"{name}: Constant {where(i, node)} has no tensor value")
            consts[node.output[0]] = numpy_helper.to_array(a["value"])
            continue
        data_inputs = [t for t in node.input if t and t not in consts]
        if op not in ("Gemm", "MatMul", "Add", "Relu", "Softmax", "Flatten", "Reshape", "Identity"):
            raise InteropError(
                f"{name}: unsupported op '{op}' at {where(i, node)}; edge-lsh imports {SUPPORTED}"
            )
        if data_inputs != [current]:
            raise InteropError(
                f"{name}: {op} {where(i, node)} takes {list(node.input)}, not the output of the "
                f"layer before ('{current}'): not a chain of fully connected layers"
            )
        if len(node.output) != 1:
            raise InteropError(f"{name}: {op} {where(i, node)} has {len(node.output)} outputs")
        if softmax:
            raise InteropError(
                f"{name}: {op} {where(i, node)} follows the Softmax; it must end the graph"
            )
        if op != "Add":
            pending_matmul = False
        if op in ("Gemm", "MatMul") and not flat:
            raise InteropError(
                f"{name}: {op} {where(i, node)} gets a tensor of shape (batch, "
                f"{', '.join(map(str, feat_dims))}); Flatten or Reshape it to (batch, features)"
            )
        n_in = layers[-1].n_out if layers else n_features
        if op == "Gemm":
            a = _attrs(node)
            if a.get("transA", 0):
                raise InteropError(f"{name}: Gemm {where(i, node)} has transA=1")
            w = np.asarray(const(node.input[1], i, node), dtype=np.float32)
            if w.ndim != 2:
                raise InteropError(f"{name}: Gemm {where(i, node)} weights are {w.shape}")
            w = w if a.get("transB", 0) else w.T  # -> (n_out, n_in)
            w = w * np.float32(a.get("alpha", 1.0))
            if len(node.input) > 2 and node.input[2]:
                b = np.asarray(const(node.input[2], i, node), dtype=np.float32)
                b = np.broadcast_to(b * np.float32(a.get("beta", 1.0)), (w.shape[0],))
            else:
                b = np.zeros(w.shape[0], dtype=np.float32)
            if w.shape[1] != n_in:
                raise InteropError(
                    f"{name}: Gemm {where(i, node)} takes {w.shape[1]} inputs, gets {n_in}"
                )
            layers.append(DenseLayer(w, np.array(b), relu=False))
        elif op == "MatMul":
            w = np.asarray(const(node.input[1], i, node), dtype=np.float32)
            if w.ndim != 2 or w.shape[0] != n_in:
                raise InteropError(
                    f"{name}: MatMul {where(i, node)} weights {w.shape} do not take {n_in} inputs"
                )
            layers.append(DenseLayer(w.T, np.zeros(w.shape[1], dtype=np.float32), relu=False))
            pending_matmul = True
        elif op == "Add":
            if not pending_matmul:
                raise InteropError(
                    f"{name}: Add {where(i, node)} does not follow a MatMul: not a dense MLP"
                )
            other = [t for t in node.input if t != current]
            if len(other) != 1:
                raise InteropError(f"{name}: Add {where(i, node)} needs one constant operand")
            b = np.asarray(const(other[0], i, node), dtype=np.float32)
            n_out = layers[-1].n_out
            if b.size != n_out or (b.ndim == 2 and b.shape[0] != 1) or b.ndim > 2:
                raise InteropError(
                    f"{name}: Add {where(i, node)} adds shape {b.shape}, not a bias of {n_out}"
                )
            layers[-1].b = layers[-1].b + b.reshape(-1)
            pending_matmul = False
        elif op == "Relu":
            if not layers or layers[-1].relu:
                raise InteropError(
                    f"{name}: Relu {where(i, node)} does not follow a fully connected layer"
                )
            layers[-1].relu = True
        elif op == "Softmax":
            a = _attrs(node)
            axis = a.get("axis", -1)
            if not layers or axis not in (-1, 1):
                raise InteropError(
                    f"{name}: Softmax {where(i, node)} is not over the class axis of a layer"
                )
            softmax = True
        elif op == "Flatten":
            if _attrs(node).get("axis", 1) != 1:
                raise InteropError(f"{name}: Flatten {where(i, node)} must have axis=1")
            flat = True
        elif op == "Reshape":
            shape = [int(v) for v in const(node.input[1], i, node).reshape(-1)]
            features = layers[-1].n_out if layers else n_features
            if len(shape) != 2 or shape[1] not in (features, -1) or shape[0] not in (-1, 0, 1):
                raise InteropError(
                    f"{name}: Reshape {where(i, node)} to {shape}; only (batch, {features}) "
                    "keeps a dense MLP"
                )
            flat = True
        current = node.output[0]
    outputs = [o.name for o in graph.output]
    if outputs != [current]:
        raise InteropError(
            f"{name}: the graph's outputs {outputs} are not the end of the layer chain "
            f"('{current}'): not a dense MLP"
        )
    mlp = DenseMLP(layers, softmax=softmax, source=name)
    mlp.check_mlp()
    return mlp


def onnx_bytes(mlp: DenseMLP, producer: str = "edge-lsh") -> bytes:
    """The ONNX model of mlp's float form (logits out), checked with onnx.checker."""
    onnx = require_onnx()
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    current = "input"
    for i, layer in enumerate(mlp.layers):
        w, b = f"layer{i}.weight", f"layer{i}.bias"
        inits.append(numpy_helper.from_array(layer.w, w))
        inits.append(numpy_helper.from_array(layer.b, b))
        last = i == len(mlp.layers) - 1
        out = "logits" if last else f"layer{i}.linear"
        nodes.append(helper.make_node("Gemm", [current, w, b], [out], f"fc{i}", transB=1))
        current = out
        if layer.relu:
            nodes.append(helper.make_node("Relu", [out], [f"layer{i}.relu"], f"relu{i}"))
            current = f"layer{i}.relu"
    graph = helper.make_graph(
        nodes,
        "edge_lsh_dense_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", mlp.n_in])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", mlp.n_classes])],
        inits,
    )
    model = helper.make_model(
        graph,
        producer_name=producer,
        opset_imports=[helper.make_operatorsetid("", OPSET)],
        ir_version=8,
    )
    model.doc_string = (
        f"The dense equivalent of an edge-lsh network {'-'.join(map(str, mlp.layer_sizes))}: "
        "every neuron computed; outputs logits (no softmax)."
    )
    onnx.checker.check_model(model, full_check=True)
    return bytes(model.SerializeToString())


def write_onnx(mlp: DenseMLP, path: str | os.PathLike[str]) -> int:
    """Write onnx_bytes(mlp) to path atomically; returns its size."""
    from edge_lsh.fileio import atomic_write

    data = onnx_bytes(mlp)
    with atomic_write(path) as f:
        f.write(data)
    return len(data)


def run_reference(model: bytes | str | os.PathLike[str], x: np.ndarray) -> np.ndarray:
    """The model's output for the float rows of x, through onnx's reference evaluator."""
    require_onnx()
    from onnx.reference import ReferenceEvaluator

    if not isinstance(model, bytes):
        with open(model, "rb") as f:
            model = f.read()
    sess = ReferenceEvaluator(model)
    name = sess.input_names[0]
    outputs = sess.run(None, {name: np.asarray(x, dtype=np.float32)})
    return np.asarray(outputs[0])  # type: ignore[index]  # a list (the stubs say dict)
