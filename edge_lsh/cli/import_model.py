"""``edge-lsh import``: a dense MLP trained elsewhere (ONNX or TFLite) becomes an LSH-sparse
edge-lsh network. Its weights are copied in, the hash tables built over them, and the network
fine-tuned with LSH in the loop: LSH bolted onto a dense-trained network selects the wrong
neurons for many inputs and loses 10-30 points; a few epochs of training with the tables in
the loop recover most of it."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from edge_lsh import defaults
from edge_lsh.cli.argtypes import fraction, non_negative_int, positive_int
from edge_lsh.cli.common import HelpFormatter, add_data_args, train_and_report
from edge_lsh.data import SPEC_HELP, load
from edge_lsh.errors import DataError
from edge_lsh.fileio import check_output_file
from edge_lsh.network import FAMILIES, LSHConfig, TrainConfig
from edge_lsh.report import SUMMARY_KEYS, print_summary

# fine-tuning: the training defaults' step (on MNIST-5k, 784-1000-10 from scikit-learn at 10%
# active, lr 0.02 ended 1 point above lr 0.005 after 10 epochs); 8 epochs
FINETUNE_LR = defaults.TRAIN.lr
FINETUNE_EPOCHS = 8


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "import",
        formatter_class=HelpFormatter,
        help="import a dense MLP from ONNX or TFLite and fine-tune it with LSH",
        description="Read a dense MLP from MODEL (.onnx: Gemm or MatMul+Add, Relu, Softmax, "
        "Flatten, Reshape, Identity; .tflite: FULLY_CONNECTED with float or int8 weights, "
        "QUANTIZE/DEQUANTIZE, RELU, SOFTMAX, RESHAPE), copy its weights into an edge-lsh "
        "network, build the hash tables over them and fine-tune with LSH in the loop. Reports "
        "the accuracy of the dense network as imported, of LSH before fine-tuning and after.\n\n"
        "The data must be scaled as the model was trained (digits: /16, mnist5k and idx: "
        "/255); --epochs 0 keeps the imported weights as they are.",
        epilog=SPEC_HELP,
    )
    p.add_argument("model", metavar="MODEL", help="an .onnx or .tflite file")
    add_data_args(p, default=None)
    for action in p._actions:  # required here: an imported model records no data of its own
        if action.dest == "data":
            action.required = True
            action.help = "the data to evaluate and fine-tune on (see Data specs)"
    d = defaults.LSH
    p.add_argument(
        "--active", type=fraction, default=d.active_fraction, help="active fraction per LSH layer"
    )
    p.add_argument("--bits", type=positive_int, default=d.bits, help="K: bits per hash table")
    p.add_argument("--tables", type=positive_int, default=d.tables, help="L: number of hash tables")
    p.add_argument("--hash", choices=sorted(FAMILIES), default=d.family, help="hash family")
    p.add_argument(
        "--epochs",
        type=non_negative_int,
        default=FINETUNE_EPOCHS,
        help="epochs of fine-tuning with LSH in the loop (0: none)",
    )
    p.add_argument("--lr", type=float, default=FINETUNE_LR, help="learning rate of fine-tuning")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the data split, the hashing and the shuffle"
    )
    p.add_argument("--out", metavar="PATH", help="save the fine-tuned model here (.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from edge_lsh.interop import model_format, read_model
    from edge_lsh.interop.convert import import_record, network_from_mlp

    if args.out:
        check_output_file(args.out, "model")
    fmt = model_format(args.model)
    mlp = read_model(args.model)
    data = load(
        args.data, seed=args.seed, limit=args.limit, label_column=args.label_column or "last"
    )
    if data.n_features != mlp.n_in:
        raise DataError(
            f"{data.name} has {data.n_features} features; {args.model} takes {mlp.n_in}"
        )
    if data.n_classes > mlp.n_classes:
        raise DataError(
            f"{data.name} has {data.n_classes} classes; {args.model} gives {mlp.n_classes}"
        )
    lsh = LSHConfig(
        **{
            **defaults.LSH.__dict__,
            "active_fraction": args.active,
            "family": args.hash,
            "bits": args.bits,
            "tables": args.tables,
        }
    )
    say = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    int8 = " (int8 weights, dequantized)" if mlp.int8 is not None else ""
    say(
        f"imported {args.model}: {fmt}, {'-'.join(map(str, mlp.layer_sizes))}{int8}"
        f"{', softmax at the end' if mlp.softmax else ''}"
    )
    for note in mlp.notes:
        say(f"note: {note}")
    dense = network_from_mlp(mlp, None, seed=args.seed)
    acc_dense = dense.evaluate(data.x_test, data.y_test)["accuracy"]
    net = network_from_mlp(mlp, lsh, seed=args.seed)
    net.data = {**data.record(), "imported": import_record(mlp, fmt, args.model)}
    before = net.evaluate(data.x_test, data.y_test)
    say(
        f"dense as imported {acc_dense * 100:.2f}%, LSH at {args.active * 100:g}% active before "
        f"fine-tuning {before['accuracy'] * 100:.2f}%"
    )
    train = TrainConfig(**{**defaults.TRAIN.__dict__, "lr": args.lr})
    if args.epochs:
        summary = train_and_report(data, net, args.epochs, train, quiet=args.quiet)
    else:
        summary = {
            "data": data.name,
            "layers": net.layer_sizes,
            "lsh": True,
            "active_fraction": args.active,
            **{key: before[key] for key in SUMMARY_KEYS},
            "train_seconds": 0.0,
            "epochs": 0,
            "inference_us_per_sample": before["inference_us_per_sample"],
            "test_accuracy_per_epoch": [],
        }
    summary = {
        "source": args.model,
        "source_format": fmt,
        "source_int8": mlp.int8 is not None,
        "accuracy_dense": acc_dense,
        "accuracy_lsh_before": before["accuracy"],
        **summary,
        "accuracy_change_points": 100.0 * (summary["accuracy"] - acc_dense),
    }
    if args.out:
        t0 = time.perf_counter()
        net.save(args.out)
        summary["model"] = args.out
        say(f"saved the model to {args.out} ({time.perf_counter() - t0:.1f} s)")
    else:
        say("the fine-tuned model was not saved: pass --out PATH to keep it")
    print_summary(summary, args.json)
    return 0
