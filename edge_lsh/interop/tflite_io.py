"""TFLite in and out, without TensorFlow: the flatbuffer is read and built with the ``tflite``
package (the TFLite schema's generated accessors and builders, on the ``flatbuffers``
runtime; ``pip install ".[tflite]"``).

Reading walks subgraph 0 from its input: FULLY_CONNECTED (float32, int8 or float16 weights,
fused ReLU or none), QUANTIZE and DEQUANTIZE (around the int8 layers, or dequantizing constant
weights), RELU, SOFTMAX (at the end) and RESHAPE (to (batch, features)). Any other op is an
error naming it and its operator. A fully int8 file (int8 activations, symmetric per-channel or
per-tensor int8 weights, int32 biases) keeps its quantization in ``DenseMLP.int8``; its float
weights are the int8 ones dequantized.

Writing gives the dense equivalent, logits out (no softmax: int8 probabilities in 1/256 steps
would tie the argmax):
- float: ``input`` float32 (1, n_in) -> FULLY_CONNECTED (+ReLU) ... -> ``logits`` float32;
- int8: ``input`` float32 -> QUANTIZE -> int8 FULLY_CONNECTED layers (per-channel symmetric
  int8 weights, int32 biases at in_scale * weight_scale, int8 activations, fused ReLU) ->
  DEQUANTIZE -> ``logits`` float32.
The batch dimension is 1 with shape_signature -1, so an interpreter can resize it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edge_lsh.fileio import atomic_write
from edge_lsh.interop.mlp import DenseLayer, DenseMLP, Int8Params, InteropError, QuantLayer

__all__ = ["read_tflite", "write_tflite", "tflite_bytes", "require_tflite", "IDENTIFIER"]

IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
SUPPORTED = "FULLY_CONNECTED, QUANTIZE, DEQUANTIZE, RELU, SOFTMAX, RESHAPE"


def require_tflite() -> Any:
    """The tflite schema module, or an InteropError that says how to get it."""
    try:
        import flatbuffers  # noqa: F401
        import tflite
    except ImportError:
        raise InteropError(
            "reading and writing .tflite files needs the tflite schema package: pip install "
            '".[tflite]" (or pip install tflite flatbuffers)'
        ) from None
    return tflite


# ----------------------------------------------------------------------------- reading

_NP_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 9: np.int8, 3: np.uint8, 4: np.int64}


class _Reader:
    def __init__(self, data: bytes, name: str) -> None:
        self.tfl = require_tflite()
        self.data = data
        self.name = name
        self.model = self.tfl.Model.GetRootAs(data, 0)
        if self.model.SubgraphsLength() < 1:
            raise InteropError(f"{name}: holds no subgraph")
        self.sg = self.model.Subgraphs(0)
        self.consts: dict[int, np.ndarray] = {}  # tensor index -> value (float after dequantize)

    def tensor(self, t: int) -> Any:
        if not (0 <= t < self.sg.TensorsLength()):
            raise InteropError(f"{self.name}: tensor index {t} out of range")
        return self.sg.Tensors(t)

    def tname(self, t: int) -> str:
        raw = self.tensor(t).Name()
        return raw.decode(errors="replace") if raw else f"#{t}"

    def shape(self, t: int) -> list[int]:
        s = self.tensor(t).ShapeAsNumpy()
        return [] if isinstance(s, int) else [int(v) for v in s]

    def quant(self, t: int) -> tuple[np.ndarray, np.ndarray, int] | None:
        q = self.tensor(t).Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float32)
        zp = q.ZeroPointAsNumpy()
        zero = np.zeros(scale.shape, np.int64) if isinstance(zp, int) else zp.astype(np.int64)
        return scale, zero, int(q.QuantizedDimension())

    def raw(self, t: int) -> np.ndarray | None:
        """The constant data of tensor t in its own type and shape, or None."""
        tensor = self.tensor(t)
        b = tensor.Buffer()
        if b <= 0 or b >= self.model.BuffersLength():
            return None
        buf = self.model.Buffers(b)
        dtype = _NP_TYPES.get(tensor.Type())
        if buf.Offset() > 1:  # data stored after the flatbuffer (models over 2 GB)
            start, size = int(buf.Offset()), int(buf.Size())
            if start + size > len(self.data):
                raise InteropError(f"{self.name}: tensor '{self.tname(t)}' lies past the file end")
            payload = np.frombuffer(self.data, np.uint8, size, start)
        elif buf.DataLength() == 0:
            return None
        else:
            payload = buf.DataAsNumpy()
        if dtype is None:
            raise InteropError(
                f"{self.name}: tensor '{self.tname(t)}' has type {tensor.Type()}, not one of "
                "float32, float16, int8, int32"
            )
        shape = self.shape(t)
        n = int(np.prod(shape)) if shape else 1
        if payload.size != n * np.dtype(dtype).itemsize:
            raise InteropError(
                f"{self.name}: tensor '{self.tname(t)}' holds {payload.size} bytes for shape "
                f"{shape}: truncated or corrupt"
            )
        return payload.view(dtype).reshape(shape)

    def is_const(self, t: int) -> bool:
        return t in self.consts or self.raw(t) is not None

    def value(self, t: int) -> np.ndarray:
        """A constant tensor as float (int8 dequantized with its scales)."""
        if t in self.consts:
            return self.consts[t]
        a = self.raw(t)
        if a is None:
            raise InteropError(f"{self.name}: tensor '{self.tname(t)}' is not a constant")
        q = self.quant(t)
        if a.dtype in (np.int8, np.int32, np.uint8) and q is not None:
            scale, zero, dim = q
            bshape = [1] * a.ndim
            if scale.size > 1:
                bshape[dim] = scale.size
            return ((a.astype(np.float64) - zero.reshape(bshape)) * scale.reshape(bshape)).astype(
                np.float32
            )
        return a.astype(np.float32)


def read_tflite(source: str | os.PathLike[str] | bytes) -> DenseMLP:
    """Read a dense MLP from a .tflite file (or its bytes). Raises InteropError."""
    require_tflite()
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes):
        data = source
    else:
        try:
            with open(source, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise InteropError(f"{name}: no such file") from None
        except OSError as exc:
            raise InteropError(f"{name}: cannot read ({exc})") from None
    if len(data) < 8 or data[4:8] != IDENTIFIER:
        raise InteropError(
            f"{name}: not a TFLite model (no {IDENTIFIER.decode()} identifier; {len(data)} bytes)"
        )
    if int.from_bytes(data[:4], "little") >= len(data):
        raise InteropError(f"{name}: truncated (its root table lies past the end)")
    try:
        return _read(_Reader(data, name))
    except InteropError:
        raise
    except Exception as exc:  # offsets past the end of a truncated or corrupt flatbuffer
        raise InteropError(
            f"{name}: truncated or corrupt TFLite flatbuffer ({type(exc).__name__}: {exc})"
        ) from None


def _read(r: _Reader) -> DenseMLP:
    tfl, name, sg = r.tfl, r.name, r.sg
    ops = tfl.BuiltinOperator
    inputs = [int(t) for t in np.atleast_1d(sg.InputsAsNumpy())]
    outputs = [int(t) for t in np.atleast_1d(sg.OutputsAsNumpy())]
    if len(inputs) != 1 or len(outputs) != 1:
        raise InteropError(f"{name}: has {len(inputs)} inputs and {len(outputs)} outputs; need 1")
    shape = r.shape(inputs[0])
    if len(shape) < 2 or any(d <= 0 for d in shape[1:]):
        raise InteropError(
            f"{name}: input '{r.tname(inputs[0])}' has no usable shape ({shape}); need (batch, "
            "features) with the features known"
        )
    features = int(np.prod(shape[1:]))
    flat = len(shape) == 2
    current = inputs[0]
    layers: list[DenseLayer] = []
    qlayers: list[QuantLayer | None] = []
    in_q: tuple[float, int] | None = None  # the int8 network input (scale, zero point)
    softmax = False
    int8_ok = True
    notes: list[str] = []

    def single_q(t: int) -> tuple[float, int] | None:
        q = r.quant(t)
        if q is None or q[0].size != 1:
            return None
        return float(q[0][0]), int(q[1][0])

    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        ocode = r.model.OperatorCodes(op.OpcodeIndex())
        code = max(int(ocode.BuiltinCode()), int(ocode.DeprecatedBuiltinCode()))
        opname = tfl.BUILTIN_OPCODE2NAME.get(code, f"builtin {code}")
        if code == ops.CUSTOM:
            raw = ocode.CustomCode()
            opname = f"CUSTOM {raw.decode(errors='replace') if raw else '?'}"
        ins = [int(t) for t in np.atleast_1d(op.InputsAsNumpy())] if op.InputsLength() else []
        outs = [int(t) for t in np.atleast_1d(op.OutputsAsNumpy())] if op.OutputsLength() else []
        where = f"operator {i} ({r.tname(outs[0]) if outs else 'no output'})"
        if code not in (
            ops.FULLY_CONNECTED,
            ops.QUANTIZE,
            ops.DEQUANTIZE,
            ops.RELU,
            ops.SOFTMAX,
            ops.RESHAPE,
        ):
            raise InteropError(
                f"{name}: unsupported op {opname} at {where}; edge-lsh imports {SUPPORTED}"
            )
        if len(outs) != 1:
            raise InteropError(f"{name}: {opname} at {where} has {len(outs)} outputs")
        out = outs[0]
        if code == ops.DEQUANTIZE and ins and r.is_const(ins[0]):
            r.consts[out] = r.value(ins[0])  # constant weights stored as int8 or float16
            continue
        data_ins = [t for t in ins if t >= 0 and not r.is_const(t)]
        if data_ins != [current]:
            raise InteropError(
                f"{name}: {opname} at {where} takes tensors {ins}, not the output of the layer "
                f"before (tensor {current}): not a chain of fully connected layers"
            )
        if softmax:
            raise InteropError(f"{name}: {opname} at {where} follows the SOFTMAX; it must end")
        if code == ops.FULLY_CONNECTED:
            if not flat:
                raise InteropError(
                    f"{name}: FULLY_CONNECTED at {where} gets a tensor of shape {shape}; "
                    "reshape it to (batch, features) first"
                )
            n_in = layers[-1].n_out if layers else features
            if len(ins) < 2 or ins[0] != current:
                raise InteropError(f"{name}: FULLY_CONNECTED at {where} has no weights")
            w = r.value(ins[1])
            if w.ndim != 2 or w.shape[1] != n_in:
                raise InteropError(
                    f"{name}: FULLY_CONNECTED at {where} has weights {w.shape}; the layer gets "
                    f"{n_in} inputs"
                )
            has_bias = len(ins) > 2 and ins[2] >= 0
            b = r.value(ins[2]).reshape(-1) if has_bias else np.zeros(w.shape[0], np.float32)
            relu = False
            if op.BuiltinOptionsType() == tfl.BuiltinOptions.FullyConnectedOptions:
                table = op.BuiltinOptions()
                opts = tfl.FullyConnectedOptions()
                opts.Init(table.Bytes, table.Pos)
                act = int(opts.FusedActivationFunction())
                if act not in (0, 1):
                    raise InteropError(
                        f"{name}: FULLY_CONNECTED at {where} has fused activation {act} "
                        "(only NONE and RELU)"
                    )
                relu = act == 1
                if int(opts.WeightsFormat()) != 0:
                    raise InteropError(f"{name}: FULLY_CONNECTED at {where} uses shuffled weights")
            if b.shape != (w.shape[0],):
                raise InteropError(f"{name}: FULLY_CONNECTED at {where} bias {b.shape}")
            layers.append(DenseLayer(w, b, relu))
            # its int8 form, when activations, weights and bias are all integers
            tw = r.tensor(ins[1])
            wq, wquant = r.raw(ins[1]), r.quant(ins[1])
            qin, qout = single_q(current), single_q(out)
            if (
                r.tensor(current).Type() == 9
                and r.tensor(out).Type() == 9
                and tw.Type() == 9
                and wq is not None
                and wquant is not None
                and not wquant[1].any()
                and qin is not None
                and qout is not None
                and (not has_bias or r.tensor(ins[2]).Type() == 2)
            ):
                n_out = w.shape[0]
                wscale = np.broadcast_to(wquant[0], (n_out,)).astype(np.float32)
                bq = r.raw(ins[2]) if has_bias else np.zeros(n_out, np.int32)
                assert bq is not None
                if in_q is None and not layers[:-1]:
                    in_q = qin
                qlayers.append(
                    QuantLayer(wq.copy(), wscale, bq.astype(np.int32).reshape(-1), qout[0], qout[1])
                )
            else:
                int8_ok = False
        elif code == ops.RELU:
            if not layers or layers[-1].relu:
                raise InteropError(f"{name}: RELU at {where} does not follow a layer")
            layers[-1].relu = True
            if qlayers and qlayers[-1] is not None and single_q(out) != single_q(current):
                int8_ok = False
                notes.append("a RELU op requantizes: the int8 form was not kept")
        elif code == ops.SOFTMAX:
            if not layers:
                raise InteropError(f"{name}: SOFTMAX at {where} before any layer")
            softmax = True
        elif code == ops.RESHAPE:
            s = r.shape(out)
            n = layers[-1].n_out if layers else features
            if len(s) != 2 or s[1] != n:
                raise InteropError(
                    f"{name}: RESHAPE at {where} to {s}; only (batch, {n}) keeps a dense MLP"
                )
            flat = True
            shape = s
        elif code == ops.QUANTIZE:
            if layers and r.tensor(current).Type() == 0:
                int8_ok = False  # float between layers, then int8 again: not one int8 network
        # DEQUANTIZE of activations: int8 -> float (the end of an int8 network)
        current = out
    if current != outputs[0]:
        raise InteropError(
            f"{name}: the output tensor {outputs[0]} is not the end of the layer chain "
            f"({current}): not a dense MLP"
        )
    int8 = None
    if int8_ok and in_q is not None and len(qlayers) == len(layers) and layers:
        int8 = Int8Params(in_q[0], in_q[1], [q for q in qlayers if q is not None])
    mlp = DenseMLP(layers, softmax=softmax, int8=int8, source=name, notes=notes)
    mlp.check_mlp()
    return mlp


# ----------------------------------------------------------------------------- writing


class _Writer:
    """Tensors, buffers and operators of one subgraph, then the Model table."""

    def __init__(self) -> None:
        import flatbuffers

        self.tfl = require_tflite()
        self.b = flatbuffers.Builder(1 << 20)
        self.buffers: list[bytes] = [b""]  # buffer 0: the empty sentinel
        self.tensors: list[int] = []
        self.ops: list[int] = []
        self.opcodes: list[tuple[int, int]] = []

    def _ints(self, start: Any, values: list[int]) -> int:
        start(self.b, len(values))
        for v in reversed(values):
            self.b.PrependInt32(int(v))
        return int(self.b.EndVector())

    def _np_vector(self, arr: np.ndarray) -> int:
        return int(self.b.CreateNumpyVector(np.ascontiguousarray(arr)))

    def buffer(self, arr: np.ndarray) -> int:
        self.buffers.append(np.ascontiguousarray(arr).tobytes())
        return len(self.buffers) - 1

    def tensor(
        self,
        name: str,
        ttype: int,
        shape: list[int],
        buffer: int = 0,
        scale: Any = None,
        zero: Any = None,
        qdim: int = 0,
    ) -> int:
        t, b = self.tfl, self.b
        quant = None
        if scale is not None:
            sv = self._np_vector(np.asarray(scale, dtype=np.float32).reshape(-1))
            zv = self._np_vector(np.asarray(zero, dtype=np.int64).reshape(-1))
            t.QuantizationParametersStart(b)
            t.QuantizationParametersAddScale(b, sv)
            t.QuantizationParametersAddZeroPoint(b, zv)
            t.QuantizationParametersAddQuantizedDimension(b, qdim)
            quant = t.QuantizationParametersEnd(b)
        nm = b.CreateString(name)
        sh = self._ints(t.TensorStartShapeVector, shape)
        sig = self._ints(t.TensorStartShapeSignatureVector, [-1, *shape[1:]]) if shape else None
        t.TensorStart(b)
        t.TensorAddShape(b, sh)
        if sig is not None and shape and shape[0] == 1 and buffer == 0:
            t.TensorAddShapeSignature(b, sig)
        t.TensorAddType(b, ttype)
        t.TensorAddBuffer(b, buffer)
        t.TensorAddName(b, nm)
        if quant is not None:
            t.TensorAddQuantization(b, quant)
        self.tensors.append(t.TensorEnd(b))
        return len(self.tensors) - 1

    def opcode(self, code: int, version: int) -> int:
        key = (code, version)
        if key not in self.opcodes:
            self.opcodes.append(key)
        return self.opcodes.index(key)

    def op(
        self, code: int, version: int, ins: list[int], outs: list[int], relu: bool | None = None
    ) -> None:
        t, b = self.tfl, self.b
        opts = None
        if relu is not None:  # FULLY_CONNECTED
            t.FullyConnectedOptionsStart(b)
            t.FullyConnectedOptionsAddFusedActivationFunction(b, 1 if relu else 0)
            opts = t.FullyConnectedOptionsEnd(b)
        iv = self._ints(t.OperatorStartInputsVector, ins)
        ov = self._ints(t.OperatorStartOutputsVector, outs)
        t.OperatorStart(b)
        t.OperatorAddOpcodeIndex(b, self.opcode(code, version))
        t.OperatorAddInputs(b, iv)
        t.OperatorAddOutputs(b, ov)
        if opts is not None:
            t.OperatorAddBuiltinOptionsType(b, t.BuiltinOptions.FullyConnectedOptions)
            t.OperatorAddBuiltinOptions(b, opts)
        self.ops.append(t.OperatorEnd(b))

    def _table_vector(self, start: Any, items: list[int]) -> int:
        start(self.b, len(items))
        for it in reversed(items):
            self.b.PrependUOffsetTRelative(it)
        return int(self.b.EndVector())

    def finish(self, inputs: list[int], outputs: list[int], description: str) -> bytes:
        t, b = self.tfl, self.b
        tv = self._table_vector(t.SubGraphStartTensorsVector, self.tensors)
        ov = self._table_vector(t.SubGraphStartOperatorsVector, self.ops)
        iv = self._ints(t.SubGraphStartInputsVector, inputs)
        outv = self._ints(t.SubGraphStartOutputsVector, outputs)
        sname = b.CreateString("main")
        t.SubGraphStart(b)
        t.SubGraphAddTensors(b, tv)
        t.SubGraphAddOperators(b, ov)
        t.SubGraphAddInputs(b, iv)
        t.SubGraphAddOutputs(b, outv)
        t.SubGraphAddName(b, sname)
        sg = t.SubGraphEnd(b)
        codes = []
        for code, version in self.opcodes:
            t.OperatorCodeStart(b)
            t.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            t.OperatorCodeAddBuiltinCode(b, code)
            t.OperatorCodeAddVersion(b, version)
            codes.append(t.OperatorCodeEnd(b))
        bufs = []
        for data in self.buffers:
            vec = None
            if data:
                b.StartVector(1, len(data), 16)  # 16-byte aligned weights
                b.head = b.head - len(data)
                b.Bytes[b.head : b.head + len(data)] = data
                vec = b.EndVector()
            t.BufferStart(b)
            if vec is not None:
                t.BufferAddData(b, vec)
            bufs.append(t.BufferEnd(b))
        bv = self._table_vector(t.ModelStartBuffersVector, bufs)
        cv = self._table_vector(t.ModelStartOperatorCodesVector, codes)
        sv = self._table_vector(t.ModelStartSubgraphsVector, [sg])
        desc = b.CreateString(description)
        t.ModelStart(b)
        t.ModelAddVersion(b, SCHEMA_VERSION)
        t.ModelAddOperatorCodes(b, cv)
        t.ModelAddSubgraphs(b, sv)
        t.ModelAddDescription(b, desc)
        t.ModelAddBuffers(b, bv)
        b.Finish(t.ModelEnd(b), file_identifier=IDENTIFIER)
        return bytes(b.Output())


def tflite_bytes(mlp: DenseMLP, int8: bool = False) -> bytes:
    """The .tflite model of mlp: float32, or int8 from mlp.int8 (which must be set)."""
    w = _Writer()
    ops, types = w.tfl.BuiltinOperator, w.tfl.TensorType
    sizes = "-".join(map(str, mlp.layer_sizes))
    x = w.tensor("input", types.FLOAT32, [1, mlp.n_in])
    current = x
    last = len(mlp.layers) - 1
    if not int8:
        for i, layer in enumerate(mlp.layers):
            wt = w.tensor(
                f"layer{i}/weights", types.FLOAT32, list(layer.w.shape), w.buffer(layer.w)
            )
            bt = w.tensor(f"layer{i}/bias", types.FLOAT32, [layer.n_out], w.buffer(layer.b))
            name = "logits" if i == last else f"layer{i}/relu"
            out = w.tensor(name, types.FLOAT32, [1, layer.n_out])
            w.op(ops.FULLY_CONNECTED, 1, [current, wt, bt], [out], relu=layer.relu)
            current = out
        return w.finish([x], [current], f"edge-lsh: dense {sizes}, float32, logits out")
    q = mlp.int8
    if q is None:
        raise InteropError(f"{mlp.source or 'model'}: has no int8 quantization to write")
    xq = w.tensor("input/int8", types.INT8, [1, mlp.n_in], 0, [q.in_scale], [q.in_zero])
    w.op(ops.QUANTIZE, 2, [x], [xq])
    current, in_scale = xq, q.in_scale
    for i, (layer, ql) in enumerate(zip(mlp.layers, q.layers)):
        n_out = layer.n_out
        wscale = np.asarray(ql.w_scale, dtype=np.float32)
        wt = w.tensor(
            f"layer{i}/weights",
            types.INT8,
            list(ql.w_q.shape),
            w.buffer(np.asarray(ql.w_q, dtype=np.int8)),
            wscale,
            np.zeros(n_out, np.int64),
            0,
        )
        bscale = (np.float64(in_scale) * wscale.astype(np.float64)).astype(np.float32)
        bt = w.tensor(
            f"layer{i}/bias",
            types.INT32,
            [n_out],
            w.buffer(np.asarray(ql.b_q, np.int32)),
            bscale,
            np.zeros(n_out, np.int64),
            0,
        )
        name = "logits/int8" if i == last else f"layer{i}/relu"
        out = w.tensor(name, types.INT8, [1, n_out], 0, [ql.out_scale], [ql.out_zero])
        w.op(ops.FULLY_CONNECTED, 4, [current, wt, bt], [out], relu=layer.relu)
        current, in_scale = out, ql.out_scale
    y = w.tensor("logits", types.FLOAT32, [1, mlp.n_classes])
    w.op(ops.DEQUANTIZE, 2, [current], [y])
    return w.finish([x], [y], f"edge-lsh: dense {sizes}, int8 (per-channel weights), logits out")


def write_tflite(mlp: DenseMLP, path: str | os.PathLike[str], int8: bool = False) -> int:
    """Write tflite_bytes(mlp, int8) to path atomically; returns its size."""
    data = tflite_bytes(mlp, int8)
    with atomic_write(path) as f:
        f.write(data)
    return len(data)
