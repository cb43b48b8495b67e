"""ONNX and TFLite round trips and the import path (issue 12's acceptance), in one run.

A dense MLP is trained elsewhere: scikit-learn's MLPClassifier on --data. It is written
  - to ONNX as a converter writes it, with onnx.helper: MatMul + Add, Relu, ..., Softmax;
  - to a float32 .tflite and an int8 .tflite (TFLite-converter-style post-training
    quantization: per-channel symmetric int8 weights, int32 biases, int8 activations
    calibrated on 1000 training rows) with edge-lsh's own flatbuffer writer: there is no
    TensorFlow here, so "a .tflite from a converter" is ours.
Then, for each file, through the command line:
  round trip   `edge-lsh import FILE --epochs 0 --out m.npz` then `edge-lsh export m.npz
               --out back.EXT [--int8]`: the test-set predictions of back.EXT (onnx's
               reference evaluator, LiteRT) against those of FILE
  import path  `edge-lsh import FILE --active A --epochs N`: the accuracy of the dense network
               as imported, of LSH before fine-tuning and after

    python tools/bench/bench_interop.py                    # MNIST-5k, 784-1000-10, 10 % active
    python tools/bench/bench_interop.py --data digits --hidden 2000 --json -
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import common
import numpy as np
from common import (
    add_common_args,
    data_info,
    layers_text,
    load_data,
    machine_info,
    markdown_table,
    percent,
    positive_int,
    progress,
    record,
    write_json_atomic,
)

from edge_lsh.cli import main as edge_lsh
from edge_lsh.interop.convert import calibrate_int8
from edge_lsh.interop.mlp import DenseLayer, DenseMLP

PROG = "bench_interop.py"


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(
        PROG,
        "ONNX and TFLite round trips (import, export, same predictions) and the import path\n"
        "(a scikit-learn MLP imported and fine-tuned with LSH) through the command line.",
    )
    add_common_args(p, data="mnist5k", hidden="1000", epochs=8, seed=0, limit=True)
    p.add_argument(
        "--active",
        type=percent,
        default=10.0,
        metavar="PCT",
        help="active fraction of the imported network's hidden layers in percent",
    )
    p.add_argument(
        "--sk-iter",
        type=positive_int,
        default=50,
        metavar="N",
        help="max_iter of scikit-learn's MLPClassifier (the model trained elsewhere)",
    )
    return p


def cli(*args: str) -> dict[str, Any]:
    """`edge-lsh ARGS --json` in this process: its JSON."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = edge_lsh([*args, "--json"])
    if status != 0:
        raise ValueError(f"edge-lsh {' '.join(args)} failed ({status}): {err.getvalue()}")
    return dict(json.loads(out.getvalue()))


def converter_onnx(mlp: DenseMLP) -> bytes:
    """The MLP as a converter writes ONNX: MatMul + Add per layer, Relu, Softmax at the end."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, current = [], [], "float_input"
    for i, layer in enumerate(mlp.layers):
        inits += [
            numpy_helper.from_array(np.ascontiguousarray(layer.w.T), f"coefficient_{i}"),
            numpy_helper.from_array(layer.b, f"intercepts_{i}"),
        ]
        nodes.append(helper.make_node("MatMul", [current, f"coefficient_{i}"], [f"mul_{i}"]))
        nodes.append(helper.make_node("Add", [f"mul_{i}", f"intercepts_{i}"], [f"add_{i}"]))
        current = f"add_{i}"
        if layer.relu:
            nodes.append(helper.make_node("Relu", [current], [f"relu_{i}"]))
            current = f"relu_{i}"
    nodes.append(helper.make_node("Softmax", [current], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes,
        "mlp_classifier",
        [helper.make_tensor_value_info("float_input", TensorProto.FLOAT, [None, mlp.n_in])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, mlp.n_classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_operatorsetid("", 13)])
    return bytes(model.SerializeToString())


def predictions(path: Path, x: np.ndarray) -> np.ndarray:
    if path.suffix == ".onnx":
        from edge_lsh.interop.onnx_io import run_reference

        return np.argmax(run_reference(path, x), axis=1)
    from edge_lsh.interop.litert import LiteRTModel, find_runtime

    runtime = find_runtime()
    if runtime is None:
        raise ValueError('running .tflite files needs LiteRT: pip install ".[tflite]"')
    return np.argmax(LiteRTModel(runtime, path.read_bytes()).predict_logits(x), axis=1)


def run(args: argparse.Namespace) -> int:
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        raise ValueError(
            'the model trained elsewhere is scikit-learn\'s: pip install ".[data]"'
        ) from None
    data = load_data(args)
    started = machine_info()
    progress(f"{PROG}: scikit-learn MLP {args.hidden} on {data.name} ({args.sk_iter} iterations)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier(tuple(args.hidden), max_iter=args.sk_iter, random_state=args.seed)
        clf.fit(data.x_train, data.y_train)
    last = len(clf.coefs_) - 1
    mlp = DenseMLP(
        [DenseLayer(w.T, b, i < last) for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_))]
    )
    sk_accuracy = float(clf.score(data.x_test, data.y_test))
    mlp.int8 = calibrate_int8(mlp, data.x_train[:1000])
    from edge_lsh.interop.tflite_io import tflite_bytes

    spec = ["--data", args.data, "--seed", str(args.seed)]
    if args.limit:
        spec += ["--limit", str(args.limit)]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = {
            "onnx": (folder / "sk.onnx", converter_onnx(mlp), []),
            "tflite float32": (folder / "sk.tflite", tflite_bytes(mlp), []),
            "tflite int8": (folder / "sk_int8.tflite", tflite_bytes(mlp, int8=True), ["--int8"]),
        }
        for name, (path, blob, extra) in files.items():
            path.write_bytes(blob)
            original = predictions(path, data.x_test)
            npz = folder / f"{path.stem}.npz"
            imported = cli("import", str(path), *spec, "--epochs", "0", "--out", str(npz))
            back = folder / f"back_{path.name}"
            exported = cli("export", str(npz), "--out", str(back), *extra)
            again = predictions(back, data.x_test)
            progress(f"{name}: round trip done; fine-tuning at {args.active:g} % active")
            tuned = cli(
                "import",
                str(path),
                *spec,
                "--active",
                str(args.active / 100),
                "--epochs",
                str(args.epochs),
                "--quiet",
            )
            results[name] = {
                "file_bytes": len(blob),
                "original_accuracy": float((original == data.y_test).mean()),
                "round_trip": {
                    "same_predictions": int((original == again).sum()),
                    "test_rows": int(original.size),
                    "agreement": float((original == again).mean()),
                    "exported_bytes": exported["model_bytes"],
                    "imported_dense_accuracy": imported["accuracy_dense"],
                },
                "import": {
                    k: tuned[k]
                    for k in (
                        "accuracy_dense",
                        "accuracy_lsh_before",
                        "accuracy",
                        "active_fraction",
                        "multiplications_per_sample",
                        "dense_multiplications_per_sample",
                        "epochs",
                        "test_accuracy_per_epoch",
                    )
                },
            }
    rows = []
    for name, r in results.items():
        rt, im = r["round_trip"], r["import"]
        rows.append(
            [
                name,
                f"{rt['same_predictions']}/{rt['test_rows']}",
                f"{im['accuracy_dense'] * 100:.2f}",
                f"{im['accuracy_lsh_before'] * 100:.2f}",
                f"{im['accuracy'] * 100:.2f}",
                f"{(im['accuracy'] - im['accuracy_dense']) * 100:+.2f}",
            ]
        )
    layers = layers_text(mlp.layer_sizes)
    print(f"## Import and export: scikit-learn MLP {layers} on {data.name}\n")
    print(
        f"scikit-learn accuracy {sk_accuracy * 100:.2f} %; import at {args.active:g} % active, "
        f"{args.epochs} epochs of fine-tuning with LSH in the loop, seed {args.seed}.\n"
    )
    print(
        markdown_table(
            [
                "file",
                "round trip: same predictions",
                "dense as imported %",
                "LSH before fine-tuning %",
                "LSH after %",
                "after - dense (points)",
            ],
            rows,
        )
    )
    if args.json:
        write_json_atomic(
            args.json,
            record(
                PROG,
                {
                    "data": data_info(args.data, data, args.limit),
                    "layers": mlp.layer_sizes,
                    "sklearn_accuracy": sk_accuracy,
                    "sklearn_max_iter": args.sk_iter,
                    "active_percent": args.active,
                    "epochs": args.epochs,
                    "seed": args.seed,
                    "files": results,
                },
                machine=machine_info(started=started),
            ),
        )
    return 0


if __name__ == "__main__":
    sys.exit(common.main(PROG, build_parser(), run))
