"""A numpy model of the fixed-point training step (native/src/train_q.c, whose header comment
is the specification): the oracle the C step is checked against, bit for bit, in every weight
(int16 master and derived int8/int16), bias, optimizer state, PRNG state and table entry.

    QTrainConfig(...)                       optimizer, trainable layers, momentum, rates, seed
    QTrainer(qm, cfg)                       masters, state and mutable tables for a QModel
    QTrainer.step(xq, label) -> int         one sample; returns the prediction before the step

The arithmetic, in short (train_q.c says it exactly): the forward pass of inference (the
label forced into an LSH output layer's active set), an integer softmax (a fixed-point exp
with a degree-5 polynomial for 2^f in Q30), deltas with respect to each layer's int32
accumulator scaled by the layer's requantization multipliers in per-layer Q formats, SGD or
Adagrad (an integer rsqrt: floor((2^32 - 1) / (isqrt(acc) + 1)); rates per neuron, scaled by
the neuron's weight scale against the layer's mean) with optional momentum, all steps in
2^-16 units of the int16 master and rounded stochastically with the kernel's PRNG; the
inference weights re-derived, and the neurons whose rows changed moved between buckets of
CSR tables whose sizes never change. Every value is an int64 (or Python int): no float.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from edge_lsh.oracle.prng import Prng
from edge_lsh.oracle.qmodel import LayerState, QLayer, QModel, hash_codes, layer_tables, pool
from edge_lsh.oracle.qreference import requantize, select, wrap_int32

__all__ = ["SGD", "ADAGRAD", "EXP_COEFS", "QTrainConfig", "QTrainer", "exp_q", "isqrt_u32", "fs"]

SGD = 0
ADAGRAD = 1
EXP_COEFS = (1073741824, 744261118, 257941248, 59597083, 10327387, 1431680)
LOG2E_Q16 = 94548
MASTER_MAX = 32767
U_MIN = -(1 << 22)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MAX_LAYERS = 8


def fs(v: np.ndarray | int, r: int | np.ndarray) -> np.ndarray:
    """floor(v / 2^r) for r >= 0 (r >= 63: 0 or -1), elementwise on int64."""
    r = np.minimum(np.asarray(r, dtype=np.int64), 63)
    return np.right_shift(np.asarray(v, dtype=np.int64), r)


def sat32(v: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(v, dtype=np.int64), INT32_MIN, INT32_MAX)


def isqrt_u32(a: np.ndarray) -> np.ndarray:
    """floor(sqrt(a)) of integers 0 <= a < 2^32, exact."""
    a = np.asarray(a, dtype=np.int64)
    s = np.floor(np.sqrt(a.astype(np.float64))).astype(np.int64)
    s = np.where(s * s > a, s - 1, s)
    return np.where((s + 1) * (s + 1) <= a, s + 1, s)


def exp_q(u: np.ndarray) -> np.ndarray:
    """e^(u / 2^16) in Q30 for -2^22 <= u <= 0 (train_q.c step 2)."""
    v = fs(np.asarray(u, dtype=np.int64) * LOG2E_Q16, 16)
    n = fs(v, 16)
    f = v - n * 65536
    k = -n
    p = np.full(v.shape, EXP_COEFS[5], dtype=np.int64)
    for c in EXP_COEFS[4::-1]:
        p = c + fs(p * f, 16)
    return np.where(k > 30, 0, fs(p, np.minimum(k, 63)))


@dataclass
class QTrainConfig:
    """The elsh_qtrain_config of the C kernel. Rates are per layer (index = layer)."""

    optimizer: int = ADAGRAD
    train_layers: int = 0
    momentum_q15: int = 0
    lr_w: list[int] = field(default_factory=lambda: [0] * MAX_LAYERS)
    lr_w_shift: list[int] = field(default_factory=lambda: [16] * MAX_LAYERS)
    lr_b: list[int] = field(default_factory=lambda: [0] * MAX_LAYERS)
    lr_b_shift: list[int] = field(default_factory=lambda: [16] * MAX_LAYERS)
    seed: int = 0
    resume: int = 0  # 1: continue from the model's train_state (FORMAT.md 4.2)


@dataclass
class _State:
    master: np.ndarray  # int64 (n_out, n_in)
    bias: np.ndarray  # int64 (n_out,)
    vel_w: np.ndarray | None
    vel_b: np.ndarray | None
    acc_w: np.ndarray | None
    acc_b: np.ndarray | None
    member: np.ndarray | None  # bool (T, n_out)
    frac_bits: int
    max_shift: int
    grad_exp: int
    scale_ref: int  # Adagrad's ws_ref (train_q.c step 4)


class QTrainer:
    """The oracle trainer: a private copy of the model whose trainable layers' weights,
    biases and tables change with each step."""

    def __init__(self, qm: QModel, cfg: QTrainConfig) -> None:
        self.qm = copy.deepcopy(qm)
        self.cfg = cfg
        n = self.qm.n_layers
        if not 0 <= cfg.train_layers <= n:
            raise ValueError(f"train_layers={cfg.train_layers}: the model has {n} layers")
        self.first = 0 if cfg.train_layers == 0 else n - cfg.train_layers
        self.prng = Prng(cfg.seed)
        self.steps = 0
        ts = self.qm.train_state
        if cfg.resume:
            if (
                ts is None
                or ts.optimizer != cfg.optimizer
                or ts.train_layers != cfg.train_layers
                or (ts.momentum_q15 > 0) != (cfg.momentum_q15 > 0)
            ):
                raise ValueError("resume: the model has no trained state of this kind")
            self.prng.s = list(ts.prng)
            self.steps = ts.steps
        self.state: dict[int, _State] = {}
        for li in range(n - 1, self.first - 1, -1):
            L = self.qm.layers[li]
            ms = int(np.max(L.shift.astype(np.int64)))
            ge = 8 - ms if li == n - 1 else self.state[li + 1].grad_exp - ms - 4
            w = L.weights.astype(np.int64)
            if L.weight_bits == 8:
                w = np.maximum(w, -127)
                master = w * 256
                L.weights = w.astype(np.int8)
            else:
                master = np.maximum(w, -MASTER_MAX)
                L.weights = master.astype(np.int16)
            shape = master.shape
            mom = cfg.momentum_q15 > 0
            ada = cfg.optimizer == ADAGRAD
            member = None
            if L.use_lsh:
                offsets, ids = layer_tables(L)
                L.table_offsets = offsets.astype(np.uint32).copy()
                L.table_ids = ids.astype(np.uint16).copy()
                B = 1 << L.bits
                member = np.zeros((L.n_tables, L.n_out), dtype=bool)
                for t in range(L.n_tables):
                    member[t, L.table_ids[int(offsets[t * B]) : int(offsets[(t + 1) * B])]] = True
            saved = ts.layers[li] if cfg.resume and ts is not None else None

            def start(
                name: str, zeros: np.ndarray, on: bool, saved: LayerState | None = saved
            ) -> np.ndarray | None:
                if not on:
                    return None
                got = None if saved is None else getattr(saved, name)
                return zeros if got is None else np.asarray(got, np.int64).copy()

            if saved is not None:
                master = np.asarray(saved.master, np.int64).copy()
            mult = L.multiplier.astype(np.int64)
            pos = mult > 0
            scaled = fs(mult[pos], ms - L.shift.astype(np.int64)[pos])
            ref = int(scaled.sum()) // int(pos.sum()) if pos.any() else 0
            self.state[li] = _State(
                master=master,
                bias=L.bias.astype(np.int64),
                vel_w=start("vel_w", np.zeros(shape, np.int64), mom),
                vel_b=start("vel_b", np.zeros(L.n_out, np.int64), mom),
                acc_w=start("acc_w", np.zeros(shape, np.int64), ada),
                acc_b=start("acc_b", np.zeros(L.n_out, np.int64), ada),
                member=member,
                frac_bits=8 if L.weight_bits == 8 else 0,
                max_shift=ms,
                grad_exp=ge,
                scale_ref=ref if ref > 0 else 1,
            )

    # ------------------------------------------------------------------ forward
    def _forward(self, xq: np.ndarray) -> list[tuple[np.ndarray | None, np.ndarray, np.ndarray]]:
        """Per layer: (input positions or None for dense, x values at them, active ids); the
        hidden outputs at self._out[l], the logits at self._logits."""
        rows = []
        idx: np.ndarray | None = None
        vals = np.asarray(xq, dtype=np.int64)
        self._out: dict[int, np.ndarray] = {}
        for li, L in enumerate(self.qm.layers):
            x = vals - int(L.in_zero_point)
            dense_x = np.zeros(L.n_in, dtype=np.int64)
            if idx is None:
                dense_x[:] = x
            else:
                dense_x[idx] = x
            if L.use_lsh:
                h = pool(dense_x, L.pool, L.hash_dim)
                if L.center:
                    assert L.center_q is not None
                    h = h - L.center_q.astype(np.int64)
                active = select(L, hash_codes(L, h))
            else:
                active = np.arange(L.n_out, dtype=np.int64)
            acc = wrap_int32(
                L.bias.astype(np.int64)[active] + L.weights.astype(np.int64)[active] @ dense_x
            )
            y = requantize(acc, L.multiplier[active], L.shift[active])
            rows.append((idx, x, active))
            if L.is_output:
                self._logits = np.full(L.n_out, INT32_MIN, dtype=np.int64)
                self._logits[active] = y
                self._dense_x_out = dense_x
            else:
                zp = int(L.out_zero_point)
                out = np.clip(y + zp, zp, 127)
                self._out[li] = out
                vals = out
                idx = active if active.size < L.n_out else None
        return rows

    # ------------------------------------------------------------------ the step
    def step(self, xq: np.ndarray, label: int) -> int:
        pred, rows, delta = self._deltas(xq, label)
        for li in range(self.qm.n_layers - 1, self.first - 1, -1):
            self._update(li, rows[li], delta[li])
        self.steps += 1
        return pred

    def _deltas(
        self, xq: np.ndarray, label: int
    ) -> tuple[int, list[tuple[np.ndarray | None, np.ndarray, np.ndarray]], dict[int, np.ndarray]]:
        """Steps 1-3 (no parameter changes): the prediction, per layer (input positions, x,
        active ids) and the deltas of every trainable layer."""
        qm = self.qm
        top = qm.n_layers - 1
        rows = self._forward(np.asarray(xq).reshape(-1))
        OL = qm.layers[top]
        pred = int(np.argmax(self._logits))
        idx, x, active = rows[top]
        if label not in set(active.tolist()):
            acc = wrap_int32(
                np.int64(OL.bias[label]) + OL.weights[label].astype(np.int64) @ self._dense_x_out
            )
            self._logits[label] = requantize(acc, OL.multiplier[label], OL.shift[label])
            active = np.sort(np.append(active, label))
            rows[top] = (idx, x, active)
        delta = {top: self._output_deltas(OL, active, label)}
        for li in range(top, self.first, -1):
            back = self._backprop(li - 1, rows[li - 1][2], rows[li][2], delta[li])
            delta[li - 1] = self._hidden_deltas(li - 1, rows[li - 1][2], back)
        return pred, rows, delta

    def _output_deltas(
        self,
        OL: QLayer,
        active: np.ndarray,
        label: int,
    ) -> np.ndarray:
        bits = int(np.array([OL.out_scale], dtype=np.float32).view(np.uint32)[0])
        ex = (bits >> 23) & 0xFF
        s24 = (bits & 0x7FFFFF) | (0x800000 if ex else 0)
        e = ex - 150 if ex else -149
        y = self._logits[active]
        d = y - y.max()
        if e + 16 < 0:
            u = np.maximum(fs(d * s24, -(e + 16)), U_MIN)
        else:
            u = np.where(d == 0, 0, U_MIN).astype(np.int64)
        E = exp_q(u)
        S = int(E.sum())
        p = np.left_shift(E, 15) // S
        err = p - np.where(active == label, 32768, 0)
        ms = self.state[self.qm.n_layers - 1].max_shift
        sh = OL.shift.astype(np.int64)[active]
        return sat32(fs(err * OL.multiplier.astype(np.int64)[active], 23 + ms - sh))

    def _backprop(
        self, li: int, act_h: np.ndarray, act_u: np.ndarray, d_u: np.ndarray
    ) -> np.ndarray:
        H, U = self.qm.layers[li], self.qm.layers[li + 1]
        a = self._out[li]  # the outputs at the active positions
        w = U.weights.astype(np.int64)[np.ix_(act_u, act_h)]  # (|A_u|, |A_h|)
        back = (d_u[:, None] * w).sum(axis=0)
        # ReLU; at the int8 clamp (127) only a gradient that lowers the output passes
        ok = (a > int(H.out_zero_point)) & ((a < 127) | (back > 0))
        return np.where(ok, back, 0)

    def _hidden_deltas(self, li: int, act: np.ndarray, back: np.ndarray) -> np.ndarray:
        H = self.qm.layers[li]
        ms = self.state[li].max_shift
        b = np.clip(back, -INT32_MAX, INT32_MAX)
        sh = H.shift.astype(np.int64)[act]
        return sat32(fs(b * H.multiplier.astype(np.int64)[act], 35 + ms - sh))

    def _steps(
        self, g: np.ndarray, lr: int, shift: int, vel: np.ndarray | None, acc: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Step 4 before rounding, for a vector of gradients: (s, new vel, new acc)."""
        if acc is not None:
            r = np.clip(fs(g, 16), -32767, 32767)
            acc = np.minimum(acc + r * r, 2**32 - 1)
            rs = (2**32 - 1) // (isqrt_u32(acc) + 1)
            t = fs(g * rs, 32)
            s = -fs(t * lr, shift)
        else:
            s = -fs(g * lr, shift)
        if vel is not None:
            vel = sat32(fs(vel * self.cfg.momentum_q15, 15) + s)
            s = vel.copy()
        return s, vel, acc

    def _draws(self, li: int, j: int, cols: np.ndarray, n: int) -> np.ndarray:
        """The n stochastic-rounding draws of neuron j's step (cols: the input columns that
        draw, n_in for the bias): the trainer's PRNG, in order."""
        return np.array(self.prng.u32_array(n), dtype=np.int64)

    def _rate_factor(self, L: QLayer, st: _State, j: int) -> int:
        """Step 4's f_j: neuron j's Adagrad rate against the layer's, in Q16."""
        mult = int(L.multiplier[j])
        if mult <= 0:
            return 1 << 16
        e = 16 + st.max_shift - int(L.shift[j])
        if e > 32:
            return 1 << 20
        return min(1 << 20, (st.scale_ref << e) // mult)

    def _update(
        self,
        li: int,
        row: tuple[np.ndarray | None, np.ndarray, np.ndarray],
        delta: np.ndarray,
        tables: bool = True,
    ) -> None:
        """Step 4 of layer li for one sample, and step 5 if tables (else the caller moves)."""
        L = self.qm.layers[li]
        st = self.state[li]
        cfg = self.cfg
        idx, x, active = row
        cols = np.arange(L.n_in) if idx is None else idx
        for q, j in enumerate(active.tolist()):
            d = int(delta[q])
            lr_w, lr_b = cfg.lr_w[li], cfg.lr_b[li]
            if cfg.optimizer == ADAGRAD:  # the neuron's own rates
                f = self._rate_factor(L, st, j)
                lr_w, lr_b = (lr_w * f) >> 16, (lr_b * f) >> 16
            old_row = L.weights[j].astype(np.int64).copy()
            g = sat32(d * x)
            vel = None if st.vel_w is None else st.vel_w[j, cols]
            acc = None if st.acc_w is None else st.acc_w[j, cols]
            s, vel, acc = self._steps(g, lr_w, cfg.lr_w_shift[li], vel, acc)
            if vel is not None:
                assert st.vel_w is not None
                st.vel_w[j, cols] = vel
            if acc is not None:
                assert st.acc_w is not None
                st.acc_w[j, cols] = acc
            vb = None if st.vel_b is None else st.vel_b[j : j + 1]
            ab = None if st.acc_b is None else st.acc_b[j : j + 1]
            sb, vb, ab = self._steps(np.array([d], np.int64), lr_b, cfg.lr_b_shift[li], vb, ab)
            if vb is not None:
                assert st.vel_b is not None
                st.vel_b[j] = vb[0]
            if ab is not None:
                assert st.acc_b is not None
                st.acc_b[j] = ab[0]
            allsteps = np.concatenate([s, sb])
            h = fs(allsteps, 16)
            f = allsteps - h * 65536
            draw = f > 0
            all_cols = np.append(cols, L.n_in)
            u = self._draws(li, j, all_cols[draw], int(draw.sum())) >> 16
            up = np.zeros(h.shape, dtype=bool)
            up[draw] = u < f[draw]
            h = h + up
            m = np.clip(st.master[j, cols] + h[:-1], -MASTER_MAX, MASTER_MAX)
            st.master[j, cols] = m
            st.bias[j] = int(sat32(np.int64(st.bias[j]) + h[-1]))
            L.bias[j] = st.bias[j]
            if L.weight_bits == 8:
                L.weights[j, cols] = np.clip(fs(m + 128, 8), -127, 127)
            else:
                L.weights[j, cols] = m
            if tables and L.use_lsh and not np.array_equal(old_row, L.weights[j].astype(np.int64)):
                self._move(L, st, j)

    def _move(self, L: QLayer, st: _State, j: int) -> None:
        c_new = hash_codes(L, pool(L.weights[j].astype(np.int64), L.pool, L.hash_dim))
        offsets, ids = L.table_offsets, L.table_ids
        assert offsets is not None and ids is not None and st.member is not None
        B = 1 << L.bits
        for t in range(L.n_tables):
            if not st.member[t, j]:
                continue
            base = t * B
            lo, hi = int(offsets[base]), int(offsets[base + B])
            where = np.flatnonzero(ids[lo:hi] == j)
            p = lo + int(where[0])
            b_old = int(np.searchsorted(offsets[base : base + B + 1], p, side="right")) - 1
            c = int(c_new[t])
            if b_old == c:
                continue
            qs, qe = int(offsets[base + c]), int(offsets[base + c + 1])
            bucket = ids[qs:qe].astype(np.int64)
            q = qs + int(np.count_nonzero(np.cumprod(bucket < j)))
            lst = ids.tolist()
            del lst[p]
            lst.insert(q - 1 if p < q else q, j)
            ids[:] = lst
            if b_old < c:
                offsets[base + b_old + 1 : base + c + 1] -= 1
            else:
                offsets[base + c + 1 : base + b_old + 1] += 1

    # ------------------------------------------------------------------ reading
    def layer_arrays(self, li: int) -> dict[str, np.ndarray | None]:
        """What the C kernel's elsh_qtrain_layer_state shows for layer li."""
        L = self.qm.layers[li]
        st = self.state.get(li)
        out: dict[str, np.ndarray | None] = {
            "weights": L.weights.astype(np.int64),
            "bias": L.bias.astype(np.int64),
            "tab_offsets": None if not L.use_lsh else layer_tables(L)[0].astype(np.int64),
            "tab_ids": None if not L.use_lsh else layer_tables(L)[1].astype(np.int64),
        }
        if st is not None:
            out.update(
                master=st.master, vel_w=st.vel_w, vel_b=st.vel_b, acc_w=st.acc_w, acc_b=st.acc_b
            )
        return out
