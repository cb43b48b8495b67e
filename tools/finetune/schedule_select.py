"""Choose fixed-point fine-tuning's learning-rate schedule on VALIDATION (issue 10).

The candidates, for each case (data x shift) and seed S, all scored on the last 20% of the
shifted half B after training on its first 80% (paired_curves.py's split; the test split is
not touched here unless --test, which trains on all of half B and scores the shifted test
split: diagnosis only, nothing is chosen with it):

- float   : float `train --from` at its default lr (defaults.TRAIN.lr), the reference;
- float   : also at that lr then each of --float-last in epoch N (a schedule `train` does not
  offer: the same schedule on both paths);
- fixed C : FixedTrainer at a constant lr (each of --const);
- fixed C : lr --high for epochs 1..N-1, then each of --last in epoch N. The run at --high is
  branched after epoch N-1 (its trained state saved, resumed, and given the last epoch's rate
  by FixedTrainer.set_lr), so one run gives "--high constant" and every "--high then L" over
  the same first N-1 epochs.

Seeds S shuffle the samples (and seed the fixed rounding) as domain_shift.py does. Prints one
line per (case, seed) as it ends and a table of means at the end (--out: also as markdown).

    python tools/finetune/schedule_select.py --work /tmp/ds --cases digits:rotate25,\\
        digits:scanner,mnist5k:rotate25,mnist5k:scanner --seeds 0,1,2,3,4 --jobs 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_lsh import defaults
from edge_lsh.finetune import DEFAULT_MOMENTUM, FixedTrainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired_curves import curve_fixed, curve_float  # noqa: E402


def split(work: Path, data: str, shift: str, test: bool) -> tuple[np.ndarray, ...]:
    d = np.load(work / f"{data}-{shift}.npz")
    x, y = d["x_train"], d["y_train"]
    if test:  # diagnosis only: all of half B, scored on the shifted test split
        return x, y, d["x_test"], d["y_test"]
    cut = int(x.shape[0] * 0.8)
    return x[:cut], y[:cut], x[cut:], y[cut:]


def branched(
    elsh: Path,
    x: np.ndarray,
    y: np.ndarray,
    xv: np.ndarray,
    yv: np.ndarray,
    high: float,
    lasts: list[float],
    seed: int,
    epochs: int,
) -> dict[float, float]:
    """Accuracy after epoch N for lr `high` in epochs 1..N-1 and each last-epoch lr."""
    tr = FixedTrainer(elsh, lr=high, momentum=DEFAULT_MOMENTUM, seed=seed)
    rng = np.random.default_rng(seed)  # FixedTrainer.fit(shuffle_seed=seed)'s orders
    for _ in range(epochs - 1):
        order = rng.permutation(x.shape[0])
        tr.fit(x[order], y[order], epochs=1)
    order = rng.permutation(x.shape[0])
    state = tr.save_bytes(state=True)
    out = {}
    for last in lasts:
        t2 = FixedTrainer(state, resume=True)  # the same run from here: a resume is bit-exact
        t2.set_lr(last)
        t2.fit(x[order], y[order], epochs=1)
        out[last] = t2.evaluate(xv, yv)["accuracy"]
    return out


def one(job: tuple[Any, ...]) -> dict:
    work_s, data, shift, seed, epochs, high, lasts, consts, float_lasts, test = job
    work = Path(work_s)
    xt, yt, xv, yv = split(work, data, shift, test)
    t0 = time.perf_counter()
    res: dict[str, float] = {}
    fbase, flr = work / f"{data}-base.npz", defaults.TRAIN.lr
    res["float"] = curve_float(fbase, xt, yt, xv, yv, flr, seed, epochs)[-1]
    for last in float_lasts:
        acc = curve_float(fbase, xt, yt, xv, yv, flr, seed, epochs, last_lr=last)[-1]
        res[f"float {flr:g} then {last:g}"] = acc
    elsh = work / f"{data}-base.elsh"
    for c in consts:
        if c == high and high in lasts:
            continue  # the branched run gives it
        res[f"const {c:g}"] = curve_fixed(elsh, xt, yt, xv, yv, c, DEFAULT_MOMENTUM, seed, epochs)[
            -1
        ]
    for last, acc in branched(elsh, xt, yt, xv, yv, high, lasts, seed, epochs).items():
        res[f"const {high:g}" if last == high else f"{high:g} then {last:g}"] = acc
    return {
        "data": data,
        "shift": shift,
        "seed": seed,
        "acc": res,
        "seconds": time.perf_counter() - t0,
        "n_val": int(xv.shape[0]),
    }


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def main() -> int:
    p = argparse.ArgumentParser(
        prog="schedule_select.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--work", required=True, help="domain_shift.py's --work folder")
    p.add_argument(
        "--cases", default="digits:rotate25,digits:scanner,mnist5k:rotate25,mnist5k:scanner"
    )
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--high", type=float, default=0.02, help="lr of epochs 1..N-1")
    p.add_argument("--last", default="0.02,0.01", help="last-epoch lrs after --high")
    p.add_argument("--const", default="0.01", help="constant lrs for the fixed path")
    p.add_argument(
        "--float-last", default="", help="float: also its lr then each of these in epoch N"
    )
    p.add_argument("--test", action="store_true", help="score the test split (diagnosis only)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", default=None, help="also write the table here (markdown)")
    args = p.parse_args()
    work = Path(args.work)
    cases = [tuple(c.split(":")) for c in args.cases.split(",")]
    for data, shift in cases:
        for f in (f"{data}-{shift}.npz", f"{data}-base.elsh", f"{data}-base.npz"):
            if not (work / f).exists():
                p.exit(2, f"schedule_select.py: {work / f} missing: run domain_shift.py\n")
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [
        (
            str(work),
            d,
            s,
            seed,
            args.epochs,
            args.high,
            floats(args.last),
            floats(args.const),
            floats(args.float_last),
            args.test,
        )
        for d, s in cases
        for seed in seeds
    ]
    t0 = time.perf_counter()
    results = []
    with multiprocessing.Pool(max(1, args.jobs)) as pool:
        for r in pool.imap_unordered(one, jobs):
            results.append(r)
            accs = " ".join(f"{k}: {100 * v:.2f}" for k, v in r["acc"].items())
            print(
                f"{r['data']} {r['shift']} seed {r['seed']}: {accs} ({r['seconds']:.0f} s)",
                flush=True,
            )
    names = list(results[0]["acc"])
    lines = [
        (
            "Test-split accuracy (diagnosis only: nothing is chosen with it)"
            if args.test
            else "Validation accuracy"
        )
        + f" after {args.epochs} epochs ("
        + ("trained on all of half B" if args.test else "last 20% of the shifted half B")
        + "; "
        f"seeds {args.seeds}), mean (sd) in %; fixed columns also as mean fixed - mean float. "
        f"`python {' '.join(sys.argv)}`, {time.perf_counter() - t0:.0f} s.",
        "",
        "| case | scored rows | " + " | ".join(names) + " |",
        "|---|--:|" + "--:|" * len(names),
    ]
    for data, shift in cases:
        rs = [r for r in results if r["data"] == data and r["shift"] == shift]
        mean = {k: 100 * float(np.mean([r["acc"][k] for r in rs])) for k in names}
        sd = {
            k: 100 * float(np.std([r["acc"][k] for r in rs], ddof=1)) if len(rs) > 1 else 0.0
            for k in names
        }
        cells = []
        for k in names:
            cell = f"{mean[k]:.2f} ({sd[k]:.2f})"
            if k != "float":
                cell += f" {mean[k] - mean['float']:+.2f}"
            cells.append(cell)
        lines.append(f"| {data} {shift} | {rs[0]['n_val']} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
