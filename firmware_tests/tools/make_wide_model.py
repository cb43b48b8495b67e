"""Write the "1000-wide" model the Cortex-M33 firmware checks (issue 4: a network with at least
one 1000-wide hidden layer runs on the Pico 2 class target).

    python firmware_tests/tools/make_wide_model.py OUTDIR [--width H]   (from the repository root)

Trains edge_lsh.network.Network(64, [1000], 10, edge_lsh.defaults.LSH) on the sklearn digits for 2
epochs, quantizes it on 500 rows, writes OUTDIR/wide1000.elsh without stored tables (the reader
builds them in the arena) and OUTDIR/wide1000.expect in the export/golden format (a line
"n_inputs n_in n_classes", then per input: n_in int8 values, n_classes int32 logits, the
predicted class), with the logits of the numpy integer oracle edge_lsh.oracle.qreference on
the model as read back from the file. Inputs: the real-zero row, all 127, all -128, held-out
digits and random int8 rows (every other one sparse).

--width H writes OUTDIR/digits64_H_10.elsh / .expect instead: the same recipe with H hidden
neurons (sizes.py's largest model for the Pico 2, run on the M33 by `make sizes`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from edge_lsh import defaults
from edge_lsh.format import read_elsh, write_elsh
from edge_lsh.network import Network
from edge_lsh.oracle import qreference as Q
from edge_lsh.quantize import quantize

N_DATA = 12
N_RANDOM = 8


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--width", type=int, default=None)
    args = ap.parse_args(argv)
    width = 1000 if args.width is None else args.width
    name = "wide1000" if args.width is None else f"digits64_{width}_10"
    out = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]

    d = load_digits()
    x = d.data.astype(np.float32)
    y = d.target.astype(np.int32)
    net = Network(64, [width], 10, defaults.LSH)
    net.fit(x[:1500], y[:1500], epochs=2)
    qm = quantize(net, x[:500])
    path = out / f"{name}.elsh"
    write_elsh(path, qm, tables=False)

    qf = read_elsh(path)  # what the C reader sees
    rng = np.random.default_rng(1000)
    z0 = qf.input_zero_point
    rows = [np.full(qf.n_in, z0), np.full(qf.n_in, 127), np.full(qf.n_in, -128)]
    rows += list(Q.quantize_input(qf, x[1500 : 1500 + N_DATA]).astype(np.int64))
    for r in range(N_RANDOM):
        v = rng.integers(-128, 128, qf.n_in)
        if r % 2:
            v = np.where(rng.random(qf.n_in) < 0.7, z0, v)
        rows.append(v)
    xq = np.array(rows, dtype=np.int8)
    logits = Q.logits_batch(qf, xq)
    preds = np.argmax(logits, axis=1)
    lines = [f"{xq.shape[0]} {qf.n_in} {qf.n_classes}"]
    for row, lg, p in zip(xq, logits, preds):
        lines.append(" ".join(str(int(v)) for v in row))
        lines.append(" ".join(str(int(v)) for v in lg))
        lines.append(str(int(p)))
    (out / f"{name}.expect").write_text("\n".join(lines) + "\n")
    held = Q.predict(qf, Q.quantize_input(qf, x[1500:]))
    acc = float(np.mean(held == y[1500:]))
    widths = [L.n_out for L in qf.layers]
    print(
        f"{name}.elsh: {path.stat().st_size} bytes, layers 64-{'-'.join(map(str, widths))}, "
        f"int8 held-out digits accuracy {acc:.3f} ({len(y) - 1500} rows)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
