"""The fixed-point commands of the ``edge-lsh`` CLI: export, run, inspect (and eval of an
``.elsh`` file, which ``cli.cmd_eval`` hands over here)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edge_lsh import format as elsh_format
from edge_lsh.cli.argtypes import fraction, positive_int
from edge_lsh.data import DataError, load
from edge_lsh.fixed import FixedPointModel
from edge_lsh.network import ModelFileError, Network
from edge_lsh.report import SUMMARY_KEYS, print_summary

ELSH_MAGIC = b"ELSH\r\n\x1a\n"


def is_elsh(path: str) -> bool:
    """True when the file at path starts with the .elsh magic."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == ELSH_MAGIC
    except OSError:
        return False


def add_parsers(sub: Any, add_data_args: Any) -> None:
    x = sub.add_parser(
        "export",
        help="quantize a trained model to fixed point and write an .elsh file",
        description="Quantize MODEL (int8 or int16 weights, int8 activations calibrated on "
        "--calib) and write it as an .elsh file for the C kernel and edge-lsh-run. Prints the "
        "float and fixed-point accuracy on the calibration set's test split.",
    )
    x.add_argument("model", metavar="MODEL", help="a model saved by `edge-lsh train --out`")
    x.add_argument("--calib", default="digits", metavar="SPEC", help="calibration data set")
    x.add_argument("--out", required=True, metavar="PATH", help="the .elsh file to write")
    x.add_argument(
        "--calib-samples",
        type=positive_int,
        default=1000,
        help="training rows used to calibrate activation ranges (default 1000)",
    )
    x.add_argument("--weight-bits", type=int, choices=[8, 16], default=8)
    x.add_argument(
        "--percentile",
        type=float,
        help="calibrate hidden ranges on this percentile instead of the maximum (e.g. 99.99)",
    )
    x.add_argument(
        "--no-tables",
        action="store_true",
        help="store only the seeds: smaller file, tables rebuilt at load",
    )
    x.add_argument("--seed", type=int, default=0, help="seed of the data split")
    x.add_argument("--json", action="store_true", help="print a JSON summary as the last line")

    r = sub.add_parser(
        "run",
        help="classify inputs with an .elsh model (the fixed-point C kernel)",
        description="Prints one predicted class per input row. A CSV row of n_in + 1 values "
        "carries its label last; accuracy is then reported on stderr.",
    )
    r.add_argument("model", metavar="MODEL.elsh")
    r.add_argument("--input", required=True, metavar="FILE", help="FILE.npy (2-D) or FILE.csv")
    r.add_argument("--logits", action="store_true", help="print the int32 logits too")
    r.add_argument("--active", type=fraction, help="active fraction of every LSH layer")
    r.add_argument("--dense", action="store_true", help="compute every neuron (dense int8)")

    from edge_lsh.deploy_targets import TARGETS

    d = sub.add_parser(
        "deploy",
        help="cross-compile the runner (or Pico 2 firmware) for a board, with the model",
        description="Cross-compiles edge-lsh-run for the target (for pico2, a Cortex-M33 firmware "
        "image embedding the model) and writes DIR with the binary, the model, sample inputs "
        "and a README with the copy-and-run steps. --check runs the result under QEMU and "
        "compares every logit with this machine's.",
        epilog="targets:\n" + "\n".join(f"  {t.name:9s} {t.board}" for t in TARGETS.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("model", metavar="MODEL.elsh")
    d.add_argument("--target", required=True, choices=list(TARGETS), metavar="TARGET")
    d.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    d.add_argument("--check", action="store_true", help="run it under QEMU against the host")
    d.add_argument("--force", action="store_true", help="replace files in a non-empty DIR")

    i = sub.add_parser("inspect", help="show an .elsh file's layers, hashing and section sizes")
    i.add_argument("model", metavar="MODEL.elsh")
    i.add_argument("--json", action="store_true", help="print the description as JSON")


def cmd_export(args: argparse.Namespace) -> int:
    from edge_lsh.quantize import quantize

    net = Network.load(args.model)
    data = load(args.calib, seed=args.seed)
    if data.n_features != net.n_in:
        raise DataError(f"{data.name} has {data.n_features} features; the model takes {net.n_in}")
    calib = data.x_train[: args.calib_samples]
    qm = quantize(net, calib, weight_bits=args.weight_bits, percentile=args.percentile)
    float_acc = float((net.predict(data.x_test) == data.y_test).mean())
    info = {
        "producer": "edge-lsh export",
        "source_model": Path(args.model).name,
        "calibration": f"{data.name}, {calib.shape[0]} training rows",
        "float_accuracy": float_acc,
    }
    tables = not args.no_tables
    blob = elsh_format.elsh_bytes(qm, tables=tables, info=info)
    fixed = FixedPointModel(blob, args.out)
    fixed_acc = float((fixed.predict(data.x_test) == data.y_test).mean())
    elsh_format.write_elsh(args.out, qm, tables=tables, info=info)
    summary = {
        "model": args.out,
        "data": data.name,
        "float_accuracy": float_acc,
        "fixed_accuracy": fixed_acc,
        "accuracy_change_points": 100.0 * (fixed_acc - float_acc),
        "weight_bits": args.weight_bits,
        "tables_stored": tables,
        "model_bytes": len(blob),
    }
    print_summary(summary, args.json)
    return 0


def eval_elsh(args: argparse.Namespace) -> int:
    model = FixedPointModel.load(args.model)
    data = load(args.data, seed=args.seed, limit=args.limit)
    data.check_fits(model.n_in, model.n_classes)
    ev = model.evaluate(data.x_test, data.y_test)
    hidden = [model.layer_info(i) for i in range(model.n_layers - 1)]
    active = [h["k"] / h["n_out"] for h in hidden]
    layers = [model.n_in] + [model.layer_info(i)["n_out"] for i in range(model.n_layers)]
    summary: dict[str, Any] = {
        "model": args.model,
        "data": data.name,
        "layers": layers,
        "lsh": any(model.layer_info(i)["use_lsh"] for i in range(model.n_layers)),
        "active_fraction": float(np.mean(active)) if active else 1.0,
        **{key: ev[key] for key in SUMMARY_KEYS},
        # training figures do not apply to an exported model: kept as keys, null
        "train_seconds": None,
        "epochs": None,
        "samples_per_second": None,
        "inference_us_per_sample": ev["inference_us_per_sample"],
        "final_loss": None,
        "model_bytes": int(ev["model_bytes"]),
    }
    print_summary(summary, args.json)
    return 0


def read_inputs(path: str, n_in: int, n_classes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows of an .npy (2-D) or .csv file, and labels when each CSV row has one extra value."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: no such input file")
    if p.suffix.lower() == ".npy":
        try:
            x = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{path}: cannot read .npy ({exc})") from exc
        if x.ndim == 1 and x.size == n_in:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != n_in:
            raise DataError(f"{path}: shape {x.shape}; the model takes rows of {n_in} values")
        if not np.issubdtype(x.dtype, np.number):
            raise DataError(f"{path}: dtype {x.dtype} is not numeric")
        return x.astype(np.float32), None
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.replace(";", ",").split(",")
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            if lineno == 1:
                continue  # a header row
            raise DataError(f"{path}:{lineno}: not a row of numbers") from None
        if len(rows[-1]) not in (n_in, n_in + 1):
            raise DataError(
                f"{path}:{lineno}: {len(rows[-1])} values; the model takes {n_in} "
                "(plus an optional label)"
            )
    if not rows:
        raise DataError(f"{path}: no input rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise DataError(f"{path}: rows of different lengths {sorted(widths)}")
    arr = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: holds NaN or infinite values")
    if arr.shape[1] == n_in + 1:
        labels = arr[:, -1]
        if (labels != np.round(labels)).any() or labels.min() < 0 or labels.max() >= n_classes:
            raise DataError(f"{path}: the last column is not a class label 0..{n_classes - 1}")
        return arr[:, :-1].astype(np.float32), labels.astype(np.int64)
    return arr.astype(np.float32), None


def cmd_run(args: argparse.Namespace) -> int:
    model = FixedPointModel.load(args.model)
    x, labels = read_inputs(args.input, model.n_in, model.n_classes)
    model.set_active(args.active, dense=args.dense)
    pred, logits = model.predict_logits(x)
    out = sys.stdout
    for i in range(pred.shape[0]):
        if args.logits:
            out.write(f"{pred[i]} " + " ".join(str(int(v)) for v in logits[i]) + "\n")
        else:
            out.write(f"{pred[i]}\n")
    if labels is not None:
        acc = float((pred == labels).mean())
        print(
            f"accuracy {acc:.4f} ({int((pred == labels).sum())} of {len(labels)})", file=sys.stderr
        )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    if not Path(args.model).is_file():
        raise ModelFileError(f"{args.model}: no such model file")
    d = elsh_format.describe(args.model)
    if args.json:
        print(json.dumps(d))
        return 0
    print(
        f"{args.model}: {d['format']}, {d['file_bytes']} bytes, {d['n_in']} inputs, "
        f"{d['n_classes']} classes, tables {'stored' if d['tables_stored'] else 'rebuilt at load'}"
    )
    for i, L in enumerate(d["layers"]):
        kind = "output" if L["output"] else "hidden"
        line = f"  layer {i} ({kind}): {L['n_in']} -> {L['n_out']}, int{L['weight_bits']} weights, "
        if L["lsh"]:
            h = L["hash"]
            line += (
                f"LSH k={L['k']} ({100 * L['k'] / L['n_out']:.1f}%), {h['family']} K={h['bits']} "
                f"L={h['tables']} pool={h['pool']} {h['select']}, hash functions from "
                f"{h['source']}{', centered' if h['center'] else ''}"
            )
        else:
            line += "dense"
        print(line + f"; {L['bytes']} bytes")
    print("  sections:")
    for s in d["sections"]:
        where = "net" if s["layer"] is None else f"layer {s['layer']}"
        print(f"    {s['name']:10s} {where:8s} offset {s['offset']:>9d}  {s['size']:>9d} bytes")
    if d.get("info"):
        print(f"  info: {json.dumps(d['info'])}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from edge_lsh.deploy import deploy

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    r = deploy(args.model, args.target, args.out, check=args.check, force=args.force, progress=say)
    for f in r.files:
        print(f"{f}  {f.stat().st_size:,} bytes")
    if r.checked:
        print(f"checked under QEMU: {r.checked} inputs, predictions and logits bit-exact")
    print(f"next: see {r.out_dir / 'README.md'}")
    return 0
