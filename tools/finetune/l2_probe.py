"""Research probe (issue 10): does an integer L2 decay close fixed-point fine-tuning's gap to
float at lr 0.02 on digits? Nothing here changes the C step, the oracle or the format.

The float trainer's step on an active row is g = delta * x + l2 * w (TrainConfig.l2 = 1e-4),
then Adagrad on g: the decay goes through the same 1 / sqrt(sum g^2) as the data gradient.
The fixed step (native/src/train_q.c, oracle edge_lsh/oracle/qtrain.py) has no L2 term. This
probe adds one to the ORACLE as an opt-in (``L2QTrainer``), the way float does: added to the
integer gradient before Adagrad, on the same weights (the active row's input columns; not
the bias). In train_q.c's units the real gradient of a weight of neuron j is
dL/dw = g u / ws_j (u = out_scale_top 2^(-15 - grad_exp_l), ws_j the neuron's weight scale:
train_q_rates.c), and w = ws_j master / 2^F, so l2 w in g's units is

    g_l2 = master * K_j,   K_j = l2 ws_j^2 / (u 2^F)

given to the step as integers per neuron (k_j = round(K_j 2^32), computed once on the host as
elsh_qtrain_rates computes the rates), applied as g = sat32(delta x + fs(master k_j + 2^31,
32)). No PRNG draw is added, so with the decay off (l2 = 0) the oracle runs unchanged, and it
equals ``edge-lsh finetune`` (the C step) bit for bit (checked by --check and
tests/test_l2_probe.py).

Also (--last-lr): decay off, the C trainer (FixedTrainer) with a lower lr in the last epoch,
by FixedTrainer.set_lr before epoch N (bit for bit a resume of the state at the lower rates).

    python tools/finetune/l2_probe.py --work /tmp/ftacc2-ds --data digits --shift rotate25 \\
        --lr 0.02 --seeds 0,1,2,3,4,5,6,7,8,9 --l2 0,1e-4,3e-4 [--test] [--last-lr 0.01]

--work is domain_shift.py's folder (its {data}-base.elsh and {data}-{shift}.npz). As
paired_curves.py: by default it trains on the first 80% of the shifted half B and scores the
last 20% (validation: choose with this); --test trains on all of half B and scores the
shifted test split (report only the chosen setting). --check N: step the oracle with the decay
off and the C trainer side by side on N samples and compare every weight, master, optimizer
sum and table entry.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from edge_lsh.finetune import DEFAULT_MOMENTUM, FixedTrainer
from edge_lsh.format.reader import parse
from edge_lsh.oracle import qreference
from edge_lsh.oracle.qmodel import QLayer, QModel, hash_codes, pool
from edge_lsh.oracle.qtrain import ADAGRAD, QTrainConfig, QTrainer, _State, fs, sat32

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired_curves import curve_fixed, curve_float  # noqa: E402

K_SHIFT = 32


def l2_multipliers(qm: QModel, trainer: QTrainer, l2: float) -> dict[int, np.ndarray]:
    """Per trainable layer, k_j = round(l2 ws_j^2 / (u 2^F) 2^32) (int64 per neuron): the
    integer the step multiplies a master by to get l2 * w in the gradient's units."""
    out: dict[int, np.ndarray] = {}
    top = qm.layers[qm.n_layers - 1]
    for li, st in trainer.state.items():
        L = qm.layers[li]
        ws = (
            L.multiplier.astype(np.float64)
            * np.exp2(L.shift.astype(np.float64) - 31)
            * (float(L.out_scale) / float(L.in_scale))
        )
        u = float(top.out_scale) * 2.0 ** (-15 - st.grad_exp)
        k = l2 * ws * ws / (u * 2.0**st.frac_bits) * 2.0**K_SHIFT
        if np.any(k >= 2.0**47):
            raise ValueError(f"layer {li}: l2 multiplier {k.max():.3g} too large for int64")
        out[li] = np.floor(np.maximum(k, 0.0) + 0.5).astype(np.int64)
    return out


class L2QTrainer(QTrainer):
    """The oracle trainer with an opt-in integer L2 term in the weights' gradient (Adagrad
    only). l2 = 0: exactly QTrainer (no hook changes a value)."""

    def __init__(self, qm: QModel, cfg: QTrainConfig, l2: float = 0.0) -> None:
        super().__init__(qm, cfg)
        if l2 and cfg.optimizer != ADAGRAD:
            raise ValueError("the L2 probe is for Adagrad (the float path's optimizer)")
        self.l2 = l2
        self.k = l2_multipliers(self.qm, self, l2) if l2 else {}
        self._li = -1
        self._cols = np.zeros(0, np.int64)
        self._j = -1
        self._weight_call = False

    def _update(
        self,
        li: int,
        row: tuple[np.ndarray | None, np.ndarray, np.ndarray],
        delta: np.ndarray,
        tables: bool = True,
    ) -> None:
        idx = row[0]
        self._li = li
        self._cols = np.arange(self.qm.layers[li].n_in) if idx is None else idx
        super()._update(li, row, delta, tables)

    def _rate_factor(self, L: QLayer, st: _State, j: int) -> int:
        # called once per active neuron, just before its weights' _steps (Adagrad)
        self._j = j
        self._weight_call = True
        return super()._rate_factor(L, st, j)

    def _move(self, L: QLayer, st: _State, j: int) -> None:
        """QTrainer._move (train_q.c step 5) without its Python list per table: the same
        moves, as slice shifts of the ids array (95% of the oracle's time on digits before);
        the decay-off check against the C step covers it."""
        c_new = hash_codes(L, pool(L.weights[j].astype(np.int64), L.pool, L.hash_dim))
        offsets, ids = L.table_offsets, L.table_ids
        assert offsets is not None and ids is not None and st.member is not None
        B = 1 << L.bits
        tables = np.flatnonzero(st.member[:, j])
        where = np.flatnonzero(ids == j)  # one per member table, in table order
        assert where.size == tables.size
        # a move stays inside its table, so every table's old bucket can be found at once
        olds = np.searchsorted(offsets, where, side="right") - 1 - tables * B
        moved = np.flatnonzero(olds != c_new[tables])
        for t, p, b_old in zip(tables[moved].tolist(), where[moved].tolist(), olds[moved].tolist()):
            base = t * B
            c = int(c_new[t])
            qs, qe = int(offsets[base + c]), int(offsets[base + c + 1])
            bucket = ids[qs:qe].astype(np.int64)
            q = qs + int(np.count_nonzero(np.cumprod(bucket < j)))
            if p < q:  # delete at p, insert before q (now q - 1)
                ids[p : q - 1] = ids[p + 1 : q].copy()
                ids[q - 1] = j
            else:
                ids[q + 1 : p + 1] = ids[q:p].copy()
                ids[q] = j
            if b_old < c:
                offsets[base + b_old + 1 : base + c + 1] -= 1
            else:
                offsets[base + c + 1 : base + b_old + 1] += 1

    def _steps(
        self, g: np.ndarray, lr: int, shift: int, vel: np.ndarray | None, acc: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        if self._weight_call:  # the row's weights (the next call is its bias)
            self._weight_call = False
            if self.k:
                m = self.state[self._li].master[self._j, self._cols]
                kj = int(self.k[self._li][self._j])
                g = sat32(np.asarray(g, np.int64) + fs(m * kj + (1 << (K_SHIFT - 1)), K_SHIFT))
        return super()._steps(g, lr, shift, vel, acc)


def fixed_config(elsh: bytes, lr: float, seed: int) -> QTrainConfig:
    """finetune's config (Adagrad, all layers, momentum 0.5) for lr and seed."""
    return FixedTrainer(elsh, lr=lr, momentum=DEFAULT_MOMENTUM, seed=seed).config


def curve_oracle(
    elsh: bytes,
    x: np.ndarray,
    y: np.ndarray,
    xv: np.ndarray,
    yv: np.ndarray,
    lr: float,
    l2: float,
    seed: int,
    epochs: int,
) -> list[float]:
    """The oracle with the L2 term, as `finetune --lr lr --seed S --shuffle-seed S`."""
    tr = L2QTrainer(parse(elsh), fixed_config(elsh, lr, seed), l2)
    xq = qreference.quantize_input(tr.qm, x)
    xvq = qreference.quantize_input(tr.qm, xv)
    rng = np.random.default_rng(seed)  # FixedTrainer.fit(shuffle_seed=seed)'s orders
    accs = []
    for _ in range(epochs):
        for r in rng.permutation(x.shape[0]):
            tr.step(xq[r], int(y[r]))
        accs.append(float(np.mean(qreference.predict(tr.qm, xvq) == yv)))
    return accs


def check_equivalence(elsh: bytes, x: np.ndarray, y: np.ndarray, lr: float, seed: int) -> str:
    """Decay off: the oracle wrapper and the C step on the same samples; the first difference
    or 'equal'."""
    ft = FixedTrainer(elsh, lr=lr, momentum=DEFAULT_MOMENTUM, seed=seed)
    orc = L2QTrainer(parse(elsh), ft.config, 0.0)
    xq = ft.model.quantize_input(x)
    for s in range(xq.shape[0]):
        if ft.step_q(xq[s], int(y[s])) != orc.step(xq[s], int(y[s])):
            return f"prediction differs at step {s}"
    for li in range(orc.qm.n_layers):
        c, o = ft.layer_state(li), orc.layer_arrays(li)
        for key in ("weights", "bias", "master", "vel_w", "vel_b", "acc_w", "acc_b", "tab_ids"):
            ov, cv = o.get(key), c[key]
            if (ov is None) != (cv is None):
                return f"layer {li} {key}: present on one side only"
            if ov is not None and not np.array_equal(
                np.asarray(cv, np.int64), np.asarray(ov, np.int64)
            ):
                return f"layer {li} {key} differs after {xq.shape[0]} steps"
    if ft.prng_state() != orc.prng.state:
        return "PRNG state differs"
    return "equal"


def main() -> int:
    p = argparse.ArgumentParser(
        prog="l2_probe.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--work", required=True, help="domain_shift.py's --work folder")
    p.add_argument("--data", default="digits")
    p.add_argument("--shift", default="rotate25")
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--l2", default="1e-4", help="comma-separated decays for the oracle runs")
    p.add_argument("--last-lr", type=float, default=None, help="C runs, decay off, last epoch")
    p.add_argument(
        "--float",
        dest="float_variant",
        default=None,
        metavar="L2:REBUILD",
        help="float runs instead, e.g. 0:every (no l2), 1e-4:never (no table rebuilds)",
    )
    p.add_argument("--test", action="store_true", help="score the test split (report only)")
    p.add_argument("--check", type=int, default=0, help="decay-off equivalence on N samples")
    args = p.parse_args()
    work = Path(args.work)
    shifted = work / f"{args.data}-{args.shift}.npz"
    base = work / f"{args.data}-base.elsh"
    if not shifted.exists() or not base.exists():
        p.exit(2, f"l2_probe.py: {shifted} or {base} missing: run domain_shift.py --work {work}\n")
    elsh = base.read_bytes()
    d = np.load(shifted)
    x, y = d["x_train"], d["y_train"]
    if args.test:
        xt, yt, xv, yv = x, y, d["x_test"], d["y_test"]
    else:
        cut = int(x.shape[0] * 0.8)
        xt, yt, xv, yv = x[:cut], y[:cut], x[cut:], y[cut:]
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.check:
        t0 = time.perf_counter()
        got = check_equivalence(elsh, xt[: args.check], yt[: args.check], args.lr, seeds[0])
        print(
            f"check: decay-off oracle wrapper vs C finetune step, {args.check} samples of "
            f"{args.data} {args.shift}, lr {args.lr:g}, seed {seeds[0]}: {got} "
            f"({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        return 0 if got == "equal" else 1
    scored = "test split" if args.test else f"validation (last {xv.shape[0]} rows of half B)"
    runs: list[tuple[str, float]] = []
    fl2, frebuild = 0.0, "every"
    if args.float_variant is not None:
        try:
            a, frebuild = args.float_variant.split(":")
            fl2 = float(a)
        except ValueError:
            p.exit(2, f"l2_probe.py: --float {args.float_variant!r}: expected L2:REBUILD\n")
        runs.append(("float", fl2))
    elif args.last_lr is not None:
        runs.append(("last-lr", args.last_lr))
    else:
        runs += [("l2", float(v)) for v in args.l2.split(",")]
    for kind, val in runs:
        curves = []
        t0 = time.perf_counter()
        for s in seeds:
            if kind == "l2":
                c = curve_oracle(elsh, xt, yt, xv, yv, args.lr, val, s, args.epochs)
            elif kind == "float":
                fbase = work / f"{args.data}-base.npz"
                # which of float's two extras carries its gain: l2 and rebuild replaced
                overrides = {"l2": fl2, "rebuild": frebuild}
                c = curve_float(fbase, xt, yt, xv, yv, args.lr, s, args.epochs, None, overrides)
            else:
                # the C trainer, no decay: lr, then val in the last epoch (set_lr)
                mom = DEFAULT_MOMENTUM
                c = curve_fixed(elsh, xt, yt, xv, yv, args.lr, mom, s, args.epochs, val)
            curves.append(c)
            per_epoch = " ".join(f"{100 * v:.1f}" for v in c)
            print(f"  {kind} {val:g} seed {s}: {per_epoch}", flush=True)
        secs = time.perf_counter() - t0
        a = np.asarray(curves) * 100
        last = a[:, -1]
        sd = float(last.std(ddof=1)) if last.size > 1 else 0.0
        label = {
            "l2": f"fixed oracle l2 {val:g}",
            "float": f"float l2 {fl2:g} rebuild {frebuild}",
        }.get(kind, f"fixed C, last epoch lr {val:g}")
        print(
            f"{label} {args.data} {args.shift} lr {args.lr:g} ({scored}, seeds "
            f"{args.seeds}): mean after each epoch "
            + " ".join(f"{v:.1f}" for v in a.mean(axis=0))
            + " | last epoch per seed "
            + " ".join(f"{v:.1f}" for v in last)
            + f" | mean {last.mean():.2f} sd {sd:.2f} | {secs:.0f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
