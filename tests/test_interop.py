"""ONNX and TFLite in and out (issue 12): the readers take the dense MLPs they should and
reject the rest with an error naming what is wrong; the writers' files run in onnx's reference
evaluator and in LiteRT with the logits of the numpy model; int8 files keep their integers;
import then export gives the original's predictions back."""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edge_lsh.cli import main
from edge_lsh.data import load
from edge_lsh.interop import InteropError, read_model
from edge_lsh.interop.convert import calibrate_int8, mlp_from_qmodel, network_from_mlp
from edge_lsh.interop.mlp import DenseLayer, DenseMLP, int8_logits

onnx = pytest.importorskip("onnx")
pytest.importorskip("tflite")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edge_lsh.interop.litert import LiteRTModel, find_runtime  # noqa: E402
from edge_lsh.interop.onnx_io import onnx_bytes, read_onnx, run_reference  # noqa: E402
from edge_lsh.interop.tflite_io import _Writer, read_tflite, tflite_bytes  # noqa: E402

RUNTIME = find_runtime()
needs_litert = pytest.mark.skipif(RUNTIME is None, reason='no LiteRT: pip install ".[tflite]"')


def small_mlp(seed: int = 0, sizes: tuple[int, ...] = (12, 20, 16, 5)) -> DenseMLP:
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = (rng.normal(size=(b, a)) / np.sqrt(a)).astype(np.float32)
        layers.append(
            DenseLayer(w, rng.normal(size=b).astype(np.float32) * 0.1, i < len(sizes) - 2)
        )
    return DenseMLP(layers, source="small")


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def sk_mlp(digits):
    """A scikit-learn MLP on digits: a dense model trained elsewhere."""
    import warnings

    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=60, random_state=0)
        clf.fit(digits.x_train, digits.y_train)
    layers = [
        DenseLayer(clf.coefs_[0].T, clf.intercepts_[0], True),
        DenseLayer(clf.coefs_[1].T, clf.intercepts_[1], False),
    ]
    return DenseMLP(layers, source="sklearn")


# ----------------------------------------------------------------------------- ONNX


def test_onnx_round_trip_and_reference_evaluator() -> None:
    mlp = small_mlp()
    x = np.random.default_rng(1).normal(size=(50, 12)).astype(np.float32)
    data = onnx_bytes(mlp)
    onnx.checker.check_model(onnx.load_from_string(data))
    np.testing.assert_allclose(run_reference(data, x), mlp.forward(x), rtol=1e-5, atol=1e-5)
    back = read_onnx(data)
    assert back.layer_sizes == mlp.layer_sizes and not back.softmax
    for a, b in zip(back.layers, mlp.layers):
        assert np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b) and a.relu == b.relu


def matmul_graph(nodes_extra: bool = True) -> bytes:
    """A converter-style graph: Flatten of (N, 3, 4), MatMul + Add, Relu, Identity, Reshape
    with a Constant shape, MatMul + Add, Softmax."""
    rng = np.random.default_rng(2)
    w1 = rng.normal(size=(12, 8)).astype(np.float32)
    w2 = rng.normal(size=(8, 3)).astype(np.float32)
    inits = [
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(np.ones(8, np.float32), "b1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(np.zeros((1, 3), np.float32), "b2"),
    ]
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 8])
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], "flatten", axis=1),
        helper.make_node("MatMul", ["f", "w1"], ["m1"], "mm1"),
        helper.make_node("Add", ["m1", "b1"], ["a1"], "add1"),
        helper.make_node("Relu", ["a1"], ["r1"], "relu1"),
        helper.make_node("Identity", ["r1"], ["i1"], "id"),
        helper.make_node("Constant", [], ["s"], "const", value=shape),
        helper.make_node("Reshape", ["i1", "s"], ["rs"], "reshape"),
        helper.make_node("MatMul", ["rs", "w2"], ["m2"], "mm2"),
        helper.make_node("Add", ["m2", "b2"], ["a2"], "add2"),
        helper.make_node("Softmax", ["a2"], ["y"], "softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_operatorsetid("", 13)])
    return bytes(model.SerializeToString())


def test_onnx_reads_matmul_add_flatten_reshape_softmax() -> None:
    data = matmul_graph()
    mlp = read_onnx(data)
    assert mlp.layer_sizes == [12, 8, 3] and mlp.softmax
    x = np.random.default_rng(3).normal(size=(20, 3, 4)).astype(np.float32)
    probs = run_reference(data, x)
    assert np.array_equal(np.argmax(probs, 1), mlp.predict(x.reshape(20, 12)))


def gemm_model(nodes: list, inputs: list | None = None, outputs: list | None = None) -> bytes:
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(4, 6)).astype(np.float32), "w"),
        numpy_helper.from_array(np.zeros(4, np.float32), "b"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        inits,
    )
    return bytes(helper.make_model(graph).SerializeToString())


def test_onnx_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    gemm = helper.make_node("Gemm", ["x", "w", "b"], ["g"], "fc", transB=1)
    # an unsupported op: the error names the op and its node
    with pytest.raises(InteropError, match=r"unsupported op 'Sigmoid' at node 1 'squash'"):
        read_onnx(gemm_model([gemm, helper.make_node("Sigmoid", ["g"], ["y"], "squash")]))
    # a graph that is not a chain: the second layer reads the input again (a skip connection)
    skip = [
        gemm,
        helper.make_node("Relu", ["g"], ["r"], "relu"),
        helper.make_node("Add", ["r", "x"], ["y"], "skip"),
    ]
    with pytest.raises(InteropError, match="not a chain|not a dense MLP|does not follow"):
        read_onnx(gemm_model(skip))
    # a missing input shape
    no_shape = [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)]
    with pytest.raises(InteropError, match="has no shape"):
        read_onnx(
            gemm_model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], no_shape)
        )
    # a truncated file
    whole = onnx_bytes(small_mlp())
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(whole[: len(whole) // 3])
    with pytest.raises(InteropError, match="truncated or corrupt"):
        read_model(cut)
    # a hidden layer without a ReLU
    mlp = small_mlp()
    mlp.layers[0].relu = False
    with pytest.raises(InteropError, match="no ReLU"):
        read_onnx(onnx_bytes(mlp))


# ----------------------------------------------------------------------------- TFLite


@needs_litert
def test_tflite_float_runs_in_litert_with_the_numpy_logits() -> None:
    mlp = small_mlp()
    x = np.random.default_rng(4).normal(size=(70, 12)).astype(np.float32)
    assert RUNTIME is not None
    got = LiteRTModel(RUNTIME, tflite_bytes(mlp)).predict_logits(x)
    np.testing.assert_allclose(got, mlp.forward(x), rtol=1e-4, atol=1e-4)
    back = read_tflite(tflite_bytes(mlp))
    assert back.int8 is None
    for a, b in zip(back.layers, mlp.layers):
        assert np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b) and a.relu == b.relu


@needs_litert
def test_tflite_int8_runs_in_litert_as_the_numpy_int8_model() -> None:
    mlp = small_mlp()
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 12)).astype(np.float32)
    mlp.int8 = calibrate_int8(mlp, x[:100])
    data = tflite_bytes(mlp, int8=True)
    assert RUNTIME is not None
    got = LiteRTModel(RUNTIME, data).predict_logits(x)
    want = int8_logits(mlp, x)
    step = mlp.int8.layers[-1].out_scale
    assert np.abs(got - want).max() <= 1.01 * step  # within one unit of the int8 output
    back = read_tflite(data)
    assert back.int8 is not None
    for a, b in zip(back.int8.layers, mlp.int8.layers):
        assert np.array_equal(a.w_q, b.w_q) and np.array_equal(a.b_q, b.b_q)
        assert (a.out_scale, a.out_zero) == (np.float32(b.out_scale), b.out_zero)
    assert tflite_bytes(back, int8=True) == data  # read then written: the same bytes


def test_tflite_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    whole = tflite_bytes(small_mlp())
    for cut in (len(whole) // 2, 40, 6):
        p = tmp_path / f"cut{cut}.tflite"
        p.write_bytes(whole[:cut])
        with pytest.raises(InteropError, match="truncated|corrupt|not a TFLite"):
            read_tflite(p)
    with pytest.raises(InteropError, match="not a TFLite model"):
        read_tflite(b"\x00" * 64)
    # an unsupported op (ADD) and a missing input shape, written with the same builders
    w = _Writer()
    ops, types = w.tfl.BuiltinOperator, w.tfl.TensorType
    x = w.tensor("x", types.FLOAT32, [1, 4])
    y = w.tensor("y", types.FLOAT32, [1, 4])
    w.op(ops.ADD, 1, [x, x], [y])
    with pytest.raises(InteropError, match=r"unsupported op ADD at operator 0 \(y\)"):
        read_tflite(w.finish([x], [y], "test"))
    w = _Writer()
    x = w.tensor("x", types.FLOAT32, [])
    wt = w.tensor("w", types.FLOAT32, [3, 4], w.buffer(np.ones((3, 4), np.float32)))
    y = w.tensor("y", types.FLOAT32, [1, 3])
    w.op(ops.FULLY_CONNECTED, 1, [x, wt, -1], [y], relu=False)
    with pytest.raises(InteropError, match="no usable shape"):
        read_tflite(w.finish([x], [y], "test"))


# ----------------------------------------------------------------------------- the CLI


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, cwd: Path) -> Run:
    """`edge-lsh ARGS` in this process, in the folder cwd. An exception escaping main (what
    would print a traceback) fails the test."""
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse
                code = int(exc.code or 0)
    finally:
        os.chdir(here)
    return Run(code, out.getvalue(), err.getvalue())


@needs_litert
def test_import_then_export_gives_the_original_predictions(tmp_path: Path, digits, sk_mlp) -> None:
    """Round trips through the command line for ONNX, float TFLite and int8 TFLite: import
    with no fine-tuning, export, and the written file predicts as the original does."""
    assert RUNTIME is not None
    x = digits.x_test
    sk = DenseMLP([DenseLayer(la.w, la.b, la.relu) for la in sk_mlp.layers])
    sk.int8 = calibrate_int8(sk, digits.x_train)
    originals = {
        "sk.onnx": onnx_bytes(sk),
        "sk.tflite": tflite_bytes(sk),
        "sk8.tflite": tflite_bytes(sk, int8=True),
    }

    def predictions(name: str, data: bytes) -> np.ndarray:
        if name.endswith(".onnx"):
            return np.argmax(run_reference(data, x), axis=1)
        assert RUNTIME is not None
        return np.argmax(LiteRTModel(RUNTIME, data).predict_logits(x), axis=1)

    for name, data in originals.items():
        (tmp_path / name).write_bytes(data)
        r = cli(
            "import",
            name,
            "--data",
            "digits",
            "--epochs",
            "0",
            "--out",
            "m.npz",
            "--json",
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        for key in ("accuracy_dense", "accuracy_lsh_before", "accuracy", "active_fraction"):
            assert key in summary
        out = "back" + Path(name).suffix
        extra = ["--int8"] if name == "sk8.tflite" else []
        r = cli("export", "m.npz", "--out", out, "--json", *extra, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        exported = json.loads(r.stdout)
        assert exported["format"] == Path(name).suffix[1:]
        back = (tmp_path / out).read_bytes()
        assert np.array_equal(predictions(name, data), predictions(out, back)), name
        if name == "sk8.tflite":
            assert "imported file's int8" in exported["quantization"]


@needs_litert
def test_export_elsh_to_tflite_int8_matches_the_dense_int8_kernel(tmp_path: Path) -> None:
    r = cli(
        "train",
        "--data",
        "digits",
        "--hidden",
        "128",
        "--epochs",
        "2",
        "--out",
        "m.npz",
        "--quiet",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert cli("export", "m.npz", "--out", "m.elsh", cwd=tmp_path).returncode == 0
    for fmt, extra in (("tflite", ["--int8"]), ("tflite", []), ("onnx", [])):
        r = cli(
            "export", "m.elsh", "--format", fmt, "--out", f"d.{fmt}", "--json", *extra, cwd=tmp_path
        )
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        assert s["max_abs_logit_diff_vs_numpy"] < 1e-3
        assert s["agreement_with_kernel"] >= 0.97, s


def test_cli_bad_files_exit_2_without_traceback(tmp_path: Path) -> None:
    whole = tflite_bytes(small_mlp())
    (tmp_path / "cut.tflite").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "cut.onnx").write_bytes(onnx_bytes(small_mlp())[:100])
    (tmp_path / "x.bin").write_bytes(b"hello")
    for name in ("cut.tflite", "cut.onnx", "x.bin", "missing.onnx"):
        r = cli("import", name, "--data", "digits", cwd=tmp_path)
        assert r.returncode == 2, (name, r.stderr)
        assert "Traceback" not in r.stderr and "edge-lsh: error:" in r.stderr
    r = cli("import", "cut.onnx", cwd=tmp_path)
    assert r.returncode == 2 and "--data" in r.stderr


def test_network_from_mlp_keeps_the_weights(digits, sk_mlp) -> None:
    net = network_from_mlp(sk_mlp, None)
    assert np.array_equal(net.predict(digits.x_test), sk_mlp.predict(digits.x_test))


def test_mlp_from_qmodel_dequantizes_what_the_kernel_computes(digits) -> None:
    from edge_lsh.format import elsh_bytes, read_elsh
    from edge_lsh.network import Network
    from edge_lsh.quantize import quantize

    net = Network(64, [50], 10, None, seed=0)
    net.fit(digits.x_train, digits.y_train, epochs=2)
    qm = quantize(net, digits.x_train[:300])
    a = mlp_from_qmodel(qm)
    b = mlp_from_qmodel(read_elsh(elsh_bytes(qm)))  # weight scales recovered from multipliers
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_allclose(la.w, lb.w, rtol=1e-6, atol=1e-6)
    agree = (a.predict(digits.x_test) == net.predict(digits.x_test)).mean()
    assert agree > 0.97


def test_tflite_reads_hybrid_and_dequantized_weights() -> None:
    """Int8 weights with float activations (dynamic-range quantization) and float16 weights
    behind a DEQUANTIZE op: both read as the float weights they stand for."""
    rng = np.random.default_rng(7)
    q = rng.integers(-127, 128, size=(3, 4)).astype(np.int8)
    half = rng.normal(size=(2, 3)).astype(np.float16)
    w = _Writer()
    ops, types = w.tfl.BuiltinOperator, w.tfl.TensorType
    x = w.tensor("x", types.FLOAT32, [1, 4])
    wq = w.tensor("wq", types.INT8, [3, 4], w.buffer(q), [0.5], [0])
    h = w.tensor("h", types.FLOAT32, [1, 3])
    w.op(ops.FULLY_CONNECTED, 1, [x, wq, -1], [h], relu=True)
    w16 = w.tensor("w16", types.FLOAT16, [2, 3], w.buffer(half))
    w32 = w.tensor("w32", types.FLOAT32, [2, 3])
    w.op(ops.DEQUANTIZE, 1, [w16], [w32])
    y = w.tensor("y", types.FLOAT32, [1, 2])
    w.op(ops.FULLY_CONNECTED, 1, [h, w32, -1], [y], relu=False)
    mlp = read_tflite(w.finish([x], [y], "hybrid"))
    assert mlp.layer_sizes == [4, 3, 2] and mlp.int8 is None
    np.testing.assert_array_equal(mlp.layers[0].w, q.astype(np.float32) * 0.5)
    np.testing.assert_array_equal(mlp.layers[1].w, half.astype(np.float32))
