"""Write the golden .elsh models and their expected outputs (export/golden/README.md).

    python export/golden/make_golden.py [OUTDIR]      (from the repository root)

Everything is deterministic (fixed seeds, the C kernel's bit-reproducible training, the
integer oracle edge_lsh.oracle.qreference), so running it again rewrites byte-identical files;
tests/test_elsh_format.py checks that the committed files are up to date.

For each case NAME it writes NAME.elsh and NAME.expect. The .expect file is plain text for
fscanf: a line "n_inputs n_in n_classes", then per input three lines: the n_in int8 input
values, the n_classes int32 logits (inactive classes -2147483648) and the predicted class.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_lsh.fileio import atomic_write
from edge_lsh.format import QModel, elsh_bytes
from edge_lsh.network import LSHConfig, Network, TrainConfig
from edge_lsh.oracle import qreference as Q
from edge_lsh.quantize import quantize

HERE = Path(__file__).resolve().parent
N_RANDOM = 11  # random int8 rows per case (plus 3 special rows and 6 data rows)
N_DATA = 6


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    build: Callable[[], tuple[QModel, np.ndarray]]  # the model and data rows (float)
    tables: bool


def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data[:n].astype(np.float32), d.target[:n].astype(np.int32)


def _blobs(
    n: int, d: int, classes: int, seed: int, signed: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs: non-negative with a fifth of the features zeroed (pixel-like), or
    signed (an input zero point inside the int8 range)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 1.0, (classes, d))
    y = rng.integers(0, classes, n)
    x = centers[y] + 0.4 * rng.normal(0.0, 1.0, (n, d))
    if not signed:
        x = np.abs(x) * (rng.random((n, d)) > 0.2)
    return x.astype(np.float32), y.astype(np.int32)


def _ternary() -> tuple[QModel, np.ndarray]:
    x, y = _digits(600)
    cfg = LSHConfig(active_fraction=0.25, family="ternary", bits=4, tables=16, select="topk")
    net = Network(64, [64], 10, cfg, seed=11)
    net.fit(x[:500], y[:500], epochs=2, train=TrainConfig(lr=0.02))
    return quantize(net, x[:500]), x[500:]


def _simhash_int16() -> tuple[QModel, np.ndarray]:
    x, y = _blobs(400, 20, 5, seed=21, signed=True)
    cfg = LSHConfig(active_fraction=0.2, family="simhash", bits=3, tables=8, pool=2, select="union")
    net = Network(20, [48, 32], 5, cfg, seed=22)
    net.fit(x[:300], y[:300], epochs=2)
    return quantize(net, x[:300], weight_bits=16), x[300:]


def _dwta_center_explicit() -> tuple[QModel, np.ndarray]:
    x, y = _blobs(400, 24, 4, seed=31)
    cfg = LSHConfig(
        active_fraction=0.15, family="dwta", bits=4, tables=10, pool=1, dwta_bin=4, center=True
    )
    net = Network(24, [64], 4, cfg, seed=32)
    net.fit(x[:300], y[:300], epochs=2)
    qm = quantize(net, x[:300])
    # force the explicit hash source (HASH_COEF and PAD_ORDER sections)
    qm.layers = [dataclasses.replace(L, hash_source=1) if L.use_lsh else L for L in qm.layers]
    return qm, x[300:]


def _dwta_sparse_union() -> tuple[QModel, np.ndarray]:
    x, y = _digits(600)
    cfg = LSHConfig(
        active_fraction=0.1, family="dwta", bits=6, tables=6, pool=1, dwta_bin=8, select="union"
    )
    net = Network(64, [96], 10, cfg, seed=51)
    net.fit(x[:500], y[:500], epochs=2)
    return quantize(net, x[:500]), x[500:]


def _membership() -> tuple[QModel, np.ndarray]:
    x, y = _digits(600)
    cfg = LSHConfig(
        active_fraction=0.1, family="ternary", bits=3, tables=10, bucket_capacity=6, pool=4
    )
    net = Network(64, [96], 10, cfg, seed=61)
    net.fit(x[:500], y[:500], epochs=2)
    return quantize(net, x[:500]), x[500:]


def _lsh_output() -> tuple[QModel, np.ndarray]:
    x, y = _blobs(500, 16, 12, seed=41)
    cfg = LSHConfig(active_fraction=0.3, family="simhash", bits=3, tables=12, pool=1, center=True)
    net = Network(16, [40], 12, cfg, output_lsh=True, seed=42)
    net.fit(x[:400], y[:400], epochs=2)
    return quantize(net, x[:400]), x[400:]


def _trained_state() -> tuple[QModel, np.ndarray]:
    """_ternary fine-tuned in fixed point by the C kernel (edge_lsh.finetune: Adagrad with
    momentum, all layers, 60 steps on its data rows with labels i mod 10), read back with its
    TRAIN_STATE and LAYER_STATE sections."""
    from edge_lsh.finetune import FixedTrainer, rates
    from edge_lsh.format.reader import parse
    from edge_lsh.oracle.qtrain import ADAGRAD, QTrainConfig

    qm, data = _ternary()
    blob = elsh_bytes(qm, tables=True)
    lw, lws, lb, lbs = rates(blob, ADAGRAD, 0.01)
    cfg = QTrainConfig(ADAGRAD, 0, 16384, lw, lws, lb, lbs, seed=5)
    ft = FixedTrainer(blob, config=cfg)
    ft.fit(data[:60], np.arange(60) % 10, epochs=1)
    return parse(ft.save_bytes()), data


CASES = [
    Case(
        "ternary_seed_tables",
        "digits 64-64-10; ternary LSH hidden layer (K=4, L=16, pool 8, top-k, 16 of 64 "
        "active), dense output; hash functions from the seed; tables stored",
        _ternary,
        True,
    ),
    Case(
        "ternary_seed_notables",
        "the same model as ternary_seed_tables without TABLES: the reader builds them",
        _ternary,
        False,
    ),
    Case(
        "simhash_int16_2hidden",
        "signed blobs 20-48-32-5 (input zero point inside the range); SimHash (K=3, L=8, "
        "pool 2, union select) on both hidden layers; "
        "int16 weights; seed hash source; tables stored",
        _simhash_int16,
        True,
    ),
    Case(
        "dwta_center_explicit",
        "blobs 24-64-4; centered DWTA (K=4, L=10, bin 4, pool 1); explicit HASH_COEF, "
        "PAD_ORDER and CENTER sections; tables stored",
        _dwta_center_explicit,
        True,
    ),
    Case(
        "dwta_sparse_union",
        "digits 64-96-10; uncentered DWTA (K=6 from 2 bins of 8 per table, L=6, pool 1) on "
        "sparse inputs, so all-zero bins borrow from probed bins; union select with padding; "
        "seed hash source; tables stored",
        _dwta_sparse_union,
        True,
    ),
    Case(
        "membership_notables",
        "digits 64-96-10; ternary (K=3, L=10, pool 4) trained with 6-slot buckets, so each "
        "table holds only some neurons: a MEMBERSHIP section, no stored tables",
        _membership,
        False,
    ),
    Case(
        "membership_tables",
        "the same model as membership_notables with stored TABLES holding only the members",
        _membership,
        True,
    ),
    Case(
        "lsh_output",
        "blobs 16-40-12; centered SimHash (K=3, L=12) on the hidden AND the output layer "
        "(4 of 12 classes active, the others -2^31); no stored tables",
        _lsh_output,
        False,
    ),
    Case(
        "trained_state",
        "ternary_seed_tables fine-tuned in fixed point (Adagrad + momentum, all layers, 60 "
        "steps): trained WEIGHTS, BIAS and TABLES, and the optional TRAIN_STATE and "
        "LAYER_STATE sections (FORMAT.md 4.2, 1.2)",
        _trained_state,
        True,
    ),
]


def golden_inputs(qm: QModel, data: np.ndarray, seed: int) -> np.ndarray:
    """The int8 input rows of a case: the real-zero input (all = the zero point), all 127,
    all -128, quantized data rows, dense random rows and sparse random rows."""
    rng = np.random.default_rng(seed)
    z0 = qm.input_zero_point
    rows = [np.full(qm.n_in, z0), np.full(qm.n_in, 127), np.full(qm.n_in, -128)]
    rows += list(Q.quantize_input(qm, data[:N_DATA]).astype(np.int64))
    for r in range(N_RANDOM):
        v = rng.integers(-128, 128, qm.n_in)
        if r % 2:  # sparse: mostly real zero, like pixels or ReLU outputs
            v = np.where(rng.random(qm.n_in) < 0.7, z0, v)
        rows.append(v)
    return np.array(rows, dtype=np.int8)


def expect_text(qm: QModel, xq: np.ndarray) -> str:
    logits = Q.logits_batch(qm, xq)
    preds = np.argmax(logits, axis=1)
    lines = [f"{xq.shape[0]} {qm.n_in} {qm.n_classes}"]
    for row, lg, p in zip(xq, logits, preds):
        lines.append(" ".join(str(int(v)) for v in row))
        lines.append(" ".join(str(int(v)) for v in lg))
        lines.append(str(int(p)))
    return "\n".join(lines) + "\n"


def write_case(case: Case, outdir: Path, built: dict[str, tuple[QModel, np.ndarray]]) -> None:
    key = case.build.__name__
    if key not in built:
        built[key] = case.build()
    qm, data = built[key]
    info = {"producer": "export/golden/make_golden.py", "case": case.name}
    blob = elsh_bytes(qm, tables=case.tables, info=info)
    seed = sum(case.name.encode())  # a fixed seed per case
    text = expect_text(qm, golden_inputs(qm, data, seed))
    with atomic_write(outdir / f"{case.name}.elsh") as f:
        f.write(blob)
    with atomic_write(outdir / f"{case.name}.expect") as f:
        f.write(text.encode())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    outdir = Path(args[0]) if args else HERE
    outdir.mkdir(parents=True, exist_ok=True)
    built: dict[str, tuple[QModel, np.ndarray]] = {}
    for case in CASES:
        write_case(case, outdir, built)
        size = (outdir / f"{case.name}.elsh").stat().st_size
        print(f"{case.name}.elsh  {size:6d} bytes  {case.description}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
