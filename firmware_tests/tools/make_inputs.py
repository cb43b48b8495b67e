"""Float CSV inputs for the runner comparison (edge-lsh-run on the target against the host).

    python make_inputs.py MODEL.expect OUT.csv

n_in is read from the .expect header. 48 rows, deterministic: pixel-like values 0..16, signed
Gaussians at several scales, exact integers, tiny and huge values (saturating the int8 input),
zeros, and rows that are mostly zero. Values are written with 9 significant digits, so each
parses to one float32 exactly on every C library.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    n_in = int(Path(argv[0]).read_text().split()[1])
    rng = np.random.default_rng(4242 + n_in)
    rows = [np.zeros(n_in), np.full(n_in, 16.0), np.full(n_in, -1e6), np.full(n_in, 1e6)]
    for r in range(44):
        kind = r % 6
        if kind == 0:
            v = rng.uniform(0.0, 16.0, n_in)
        elif kind == 1:
            v = rng.normal(0.0, 1.0, n_in)
        elif kind == 2:
            v = rng.normal(0.0, 8.0, n_in) * 10.0 ** rng.integers(-3, 3)
        elif kind == 3:
            v = rng.integers(-20, 20, n_in).astype(np.float64)
        elif kind == 4:
            v = np.where(rng.random(n_in) < 0.7, 0.0, rng.uniform(0.0, 16.0, n_in))
        else:
            v = rng.uniform(-1e-3, 1e-3, n_in) + rng.choice([0.0, 1e5], n_in, p=[0.9, 0.1])
        rows.append(v)
    x = np.array(rows, dtype=np.float32)
    text = "\n".join(",".join(f"{float(v):.9g}" for v in row) for row in x) + "\n"
    Path(argv[1]).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
