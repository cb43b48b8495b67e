"""edge_lsh.oracle.qreference, the integer oracle of FORMAT.md section 6, against a literal
transcription of that section in plain Python integers (one input at a time, lists and
loops, nothing shared with the numpy code but the model's arrays), on quantized trained
networks and on random valid models whose values go to the format's extremes (saturating
requantization, wrapping accumulators, huge centers, every zero point)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import QLayer, QModel, elsh_bytes, read_elsh
from edge_lsh.network import LSHConfig, Network
from edge_lsh.oracle import hashgen as H
from edge_lsh.oracle import qreference as Q
from edge_lsh.oracle.prng import Prng, mix64
from edge_lsh.quantize import quantize

INT32_MIN = -(2**31)

# ----------------------------------------------------------------------------- literal model


def lit_code(L: QLayer, h: list[int], t: int) -> int:
    K = L.bits
    if L.family == H.SIMHASH:
        assert L.proj is not None
        code = 0
        for b in range(K):
            s = sum(int(L.proj[t][b][g]) * h[g] for g in range(L.hash_dim))
            code |= (s > 0) << b
        return code
    if L.family == H.TERNARY:
        assert L.tern_idx is not None and L.tern_sign is not None
        code = 0
        for b in range(K):
            s = 0
            for q in range(L.ternary_nnz):
                s += int(L.tern_sign[t][b][q]) * h[int(L.tern_idx[t][b][q])]
            code |= (s > 0) << b
        return code
    assert L.dwta_idx is not None
    P, binw = L.dwta_per_table, L.dwta_bin
    n_bins = L.n_tables * P
    flat = L.dwta_idx.reshape(n_bins, binw)

    def winner(g: int) -> int:
        vals = [h[int(i)] for i in flat[g]]
        if all(v == 0 for v in vals):
            return -1
        return vals.index(max(vals))

    code = 0
    for p in range(P):
        g = t * P + p
        pos = winner(g)
        a = 1
        while pos < 0 and a <= 16 and a < n_bins:
            pos = winner(((g + a * 2654435761) % 2**32) % n_bins)
            a += 1
        code |= max(pos, 0) << (p * int(math.log2(binw)))
    return code & ((1 << K) - 1)


def lit_pool(L: QLayer, x: dict[int, int]) -> list[int]:
    h = [0] * L.hash_dim
    for i, v in x.items():
        h[i // L.pool] += v
    return h


def lit_buckets(L: QLayer) -> list[list[list[int]]]:
    """buckets[t][b]: the member neurons of table t whose pooled weight row hashes to b,
    ascending (every neuron is a member without membership bits)."""
    B = 1 << L.bits
    buckets: list[list[list[int]]] = [[[] for _ in range(B)] for _ in range(L.n_tables)]
    for j in range(L.n_out):
        h = lit_pool(L, {i: int(w) for i, w in enumerate(L.weights[j])})
        for t in range(L.n_tables):
            if L.membership is None or L.membership[t][j]:
                buckets[t][lit_code(L, h, t)].append(j)
    return buckets


def lit_select(L: QLayer, codes: list[int]) -> list[int]:
    buckets = lit_buckets(L)
    chosen: list[int] = []
    if L.select_mode == Q.SELECT_UNION:
        for t, c in enumerate(codes):
            for j in buckets[t][c]:
                if len(chosen) < L.k and j not in chosen:
                    chosen.append(j)
    else:
        counts: dict[int, int] = {}
        for t, c in enumerate(codes):
            for j in buckets[t][c]:
                counts[j] = counts.get(j, 0) + 1
        ranked = sorted(counts, key=lambda j: (-counts[j], j))
        chosen = ranked[: L.k]
    if len(chosen) < L.k:
        h = 0
        for c in codes:
            h = mix64(h ^ c)
        i = h % L.n_out
        assert L.pad_order is not None
        while len(chosen) < L.k:
            j = int(L.pad_order[i % L.n_out])
            if j not in chosen:
                chosen.append(j)
            i += 1
    return sorted(chosen)


def lit_forward(qm: QModel, xq: Any) -> tuple[list[int], int, list[list[int]]]:
    pairs = [(i, int(v)) for i, v in enumerate(xq)]
    actives = []
    logits: list[int] = []
    for L in qm.layers:
        x = {i: a - L.in_zero_point for i, a in pairs}
        if L.use_lsh:
            h = lit_pool(L, x)
            if L.center:
                assert L.center_q is not None
                h = [v - int(c) for v, c in zip(h, L.center_q)]
            active = lit_select(L, [lit_code(L, h, t) for t in range(L.n_tables)])
        else:
            active = list(range(L.n_out))
        actives.append(active)
        outs = []
        for j in active:
            acc = int(L.bias[j]) + sum(int(L.weights[j][i]) * v for i, v in x.items())
            acc = (acc + 2**31) % 2**32 - 2**31
            r = 31 - int(L.shift[j])
            y = (acc * int(L.multiplier[j]) + (1 << (r - 1))) >> r
            y = min(max(y, INT32_MIN), 2**31 - 1)
            outs.append(y if L.is_output else min(max(y + L.out_zero_point, L.out_zero_point), 127))
        if L.is_output:
            logits = [INT32_MIN] * L.n_out
            for j, y in zip(active, outs):
                logits[j] = y
        pairs = list(zip(active, outs))
    return logits, logits.index(max(logits)), actives


# ----------------------------------------------------------------------------- models


def trained_qmodel(
    family: str,
    select: str = "topk",
    center: bool = False,
    weight_bits: int = 8,
    output_lsh: bool = False,
    pool: int = 1,
    seed: int = 0,
) -> tuple[QModel, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(150, 18)).astype(np.float32)
    x[:60] = np.abs(x[:60]) * (rng.random((60, 18)) > 0.5)  # sparse non-negative rows
    y = rng.integers(0, 5, 150)
    cfg = LSHConfig(
        active_fraction=0.25,
        family=family,
        bits=4,
        tables=5,
        pool=pool,
        select=select,
        center=center,
        dwta_bin=4,
    )
    net = Network(18, [30, 20], 5, cfg, output_lsh=output_lsh, seed=seed + 1)
    net.fit(x, y, epochs=1)
    return quantize(net, x, weight_bits=weight_bits), x


def random_qmodel(rng: np.random.Generator, *, extreme: bool = True) -> QModel:
    """A random valid model: any shapes, hash settings and zero points the format allows,
    random integer weights and requantization (extreme: biases and multipliers that make
    accumulators wrap and requantized values saturate)."""
    seed = int(rng.integers(0, 2**63))
    n_in = int(rng.integers(3, 25))
    n_layers = int(rng.integers(1, 4))
    widths = [int(rng.integers(3, 30)) for _ in range(n_layers - 1)] + [int(rng.integers(2, 9))]
    layers = []
    fan_in, in_zp, in_scale = n_in, int(rng.integers(-128, 128)), 0.05
    for li, n_out in enumerate(widths):
        last = li == n_layers - 1
        wb = int(rng.choice([8, 16]))
        qmax = 127 if wb == 8 else 32767
        w = rng.integers(-qmax, qmax + 1, (n_out, fan_in))
        w *= rng.random((n_out, fan_in)) < 0.8
        if extreme:
            bias = rng.integers(-(2**31), 2**31, n_out)
            bias = np.where(rng.random(n_out) < 0.5, bias // 2**12, bias)
        else:
            bias = rng.integers(-5000, 5000, n_out)
        mult = rng.integers(0, 2**31, n_out)
        shift = rng.integers(-12, 1, n_out) if not extreme else rng.integers(-31, 31, n_out)
        shift = np.where(rng.random(n_out) < 0.6, rng.integers(-20, -6, n_out), shift)
        out_zp = 0 if last else int(rng.integers(-128, 128))
        out_scale = float(np.float32(rng.random() + 0.01))
        fields: dict[str, Any] = {}
        if rng.random() < 0.8:
            pool = int(rng.integers(1, min(3, fan_in) + 1))
            d = -(-fan_in // pool)
            family = int(rng.integers(0, 3)) if d >= 2 else int(rng.integers(0, 2))
            bits = int(rng.integers(1, 7))
            T = int(rng.integers(1, 9))
            nnz = int(rng.integers(1, d + 1)) if family == H.TERNARY else 0
            dwta_bin = 2 ** int(rng.integers(1, int(math.log2(d)) + 1)) if family == H.DWTA else 0
            source = int(rng.integers(0, 2))
            prng = Prng(int(rng.integers(0, 2**63)))
            if source == 0:
                g = H.generate(
                    seed, li, family, T, bits, d, n_out, ternary_nnz=nnz, dwta_bin=dwta_bin
                )
            else:
                g = H.draw_hash(family, T, bits, d, prng, ternary_nnz=nnz, dwta_bin=dwta_bin)
                g["pad_order"] = H.draw_pad_order(n_out, prng)
            if family == H.SIMHASH:  # explicit coefficients may use the whole int8 range
                g["proj"] = H.simhash_int8(g["proj"] * (1.0 if source == 0 else 12.0))
            center = bool(rng.random() < 0.5)
            fields = dict(
                use_lsh=True,
                family=family,
                bits=bits,
                n_tables=T,
                select_mode=int(rng.integers(0, 2)),
                hash_source=source,
                center=center,
                pool=pool,
                hash_dim=d,
                ternary_nnz=nnz,
                dwta_bin=dwta_bin,
                dwta_per_table=H.dwta_per_table(bits, dwta_bin) if family == H.DWTA else 0,
                pad_order=g["pad_order"],
                **{k: v for k, v in g.items() if k != "pad_order"},
            )
            if center:
                scale = 2**24 if extreme and rng.random() < 0.3 else 300 * pool
                fields["center_q"] = rng.integers(-scale, scale + 1, d).astype(np.int32)
            if rng.random() < 0.4:  # tables that hold only some neurons (FORMAT.md 5.7)
                fields["membership"] = rng.random((T, n_out)) < rng.choice([0.2, 0.7])
            k = int(rng.integers(1, n_out + 1))
        else:
            k = n_out
        layers.append(
            QLayer(
                n_in=fan_in,
                n_out=n_out,
                k=k,
                is_output=last,
                weight_bits=wb,
                weights=w.astype(np.int16 if wb == 16 else np.int8),
                bias=bias.astype(np.int32),
                multiplier=mult.astype(np.int32),
                shift=shift.astype(np.int8),
                in_zero_point=in_zp,
                out_zero_point=out_zp,
                in_scale=in_scale,
                out_scale=out_scale,
                **fields,
            )
        )
        fan_in, in_zp, in_scale = n_out, out_zp, out_scale
    return QModel(n_in, widths[-1], float(np.float32(7.5)), seed, layers)


def special_inputs(qm: QModel, rng: np.random.Generator, n: int) -> np.ndarray:
    z = qm.input_zero_point
    rows = [np.full(qm.n_in, z), np.full(qm.n_in, 127), np.full(qm.n_in, -128)]
    for r in range(n):
        v = rng.integers(-128, 128, qm.n_in)
        rows.append(np.where(rng.random(qm.n_in) < 0.6, z, v) if r % 2 else v)
    return np.array(rows, dtype=np.int8)


def assert_matches_literal(qm: QModel, X: np.ndarray) -> None:
    batch = Q.logits_batch(qm, X)
    preds = Q.predict(qm, X)
    for r, row in enumerate(X):
        logits, pred, actives = Q.forward(qm, row)
        lit_logits, lit_pred, lit_actives = lit_forward(qm, row)
        assert logits.tolist() == lit_logits == batch[r].tolist(), r
        assert pred == lit_pred == preds[r], r
        assert [a.tolist() for a in actives] == lit_actives, r
        assert [len(a) for a in actives] == [L.k for L in qm.layers]


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    "family,select,center,weight_bits,output_lsh,pool",
    [
        ("simhash", "topk", False, 8, False, 1),
        ("simhash", "union", True, 16, True, 2),
        ("ternary", "topk", True, 8, True, 3),
        ("ternary", "union", False, 16, False, 1),
        ("dwta", "topk", False, 16, True, 1),
        ("dwta", "union", True, 8, False, 2),
    ],
)
def test_trained_models_match_the_literal_transcription(
    family, select, center, weight_bits, output_lsh, pool
):
    qm, x = trained_qmodel(family, select, center, weight_bits, output_lsh, pool)
    rng = np.random.default_rng(1)
    X = np.vstack([special_inputs(qm, rng, 8), Q.quantize_input(qm, x[:12])])
    assert_matches_literal(qm, X)


@pytest.mark.parametrize("seed", range(12))
def test_random_extreme_models_match_the_literal_transcription(seed):
    rng = np.random.default_rng(100 + seed)
    qm = random_qmodel(rng, extreme=seed % 3 != 0)
    qm = read_elsh(elsh_bytes(qm, tables=bool(seed % 2)))  # valid, and as a reader sees it
    assert_matches_literal(qm, special_inputs(qm, rng, 10))


def test_requantize_is_the_rounding_shift_with_saturation():
    rng = np.random.default_rng(0)
    acc = np.concatenate(
        [rng.integers(-(2**31), 2**31, 2000), [INT32_MIN, 2**31 - 1, 0, 1, -1, -(2**30)]]
    )
    mult = np.concatenate(
        [rng.integers(0, 2**31, 2000), [2**31 - 1, 2**31 - 1, 5, 2**30, 2**30, 0]]
    )
    shift = np.concatenate([rng.integers(-31, 31, 2000), [30, 30, -31, 0, 0, 3]])
    y = Q.requantize(acc, mult, shift)
    for a, m, s, got in zip(acc.tolist(), mult.tolist(), shift.tolist(), y.tolist()):
        r = 31 - s
        want = (a * m + 2 ** (r - 1)) // 2**r  # floor division is the flooring shift
        assert got == min(max(want, INT32_MIN), 2**31 - 1)
    assert Q.requantize(2**31 - 1, 2**31 - 1, 30) == 2**31 - 1  # saturates
    assert Q.requantize(INT32_MIN, 2**31 - 1, 30) == INT32_MIN
    assert Q.requantize(-3, 2**30, 0) == -1  # -1.5 rounds half up to -1
    assert Q.requantize(3, 2**30, 0) == 2  # 1.5 -> 2
    assert Q.requantize(123456, 0, 0) == 0


def test_wrap_int32():
    v = np.array([2**31, -(2**31) - 1, 2**32 + 5, 7, -7])
    assert Q.wrap_int32(v).tolist() == [-(2**31), 2**31 - 1, 5, 7, -7]


def test_quantize_input_is_float32_arithmetic_of_6_1():
    qm, _ = trained_qmodel("ternary")
    qm.input_inv_scale = float(np.float32(2.0))
    qm.layers[0].in_zero_point = -3
    x = np.array(
        [0.0, 0.25, -0.25, 0.75, -0.75, 1e-9, -1e-9, 63.0, 64.0, -65.0, 1e30, -1e30, 256.2]
        + [0.1] * 5,
        dtype=np.float32,
    )
    q = Q.quantize_input(qm, x)
    # t = 2x + 0.5, floor, -3, clamp: halves go up, so -0.25 -> 0 - 3; -0.75 -> -1 - 3
    assert q.tolist()[:13] == [-3, -2, -3, -1, -4, -3, -3, 123, 125, -128, 127, -128, 127]
    for v, got in zip(x.tolist(), q.tolist()):
        t = np.float32(np.float32(v) * np.float32(2.0)) + np.float32(0.5)
        t = min(max(float(t), -512.0), 512.0)
        assert got == min(max(math.floor(t) - 3, -128), 127)
    # float32, not float64: 0.1 * 3 + 0.5 in float32 differs from exact arithmetic at ties
    rows = Q.quantize_input(qm, np.tile(x, (2, 1)))
    assert rows.shape == (2, 18) and (rows == q).all()
    with pytest.raises(ValueError, match="NaN"):
        Q.quantize_input(qm, np.full(18, np.nan))
    with pytest.raises(ValueError, match="shape"):
        Q.quantize_input(qm, np.zeros(5))


def test_canonical_tables_partition_the_neurons_by_their_row_codes():
    qm, _ = trained_qmodel("simhash", pool=2)
    L = qm.layers[0]
    offsets, ids = Q.canonical_tables(L)
    B = 1 << L.bits
    codes = Q.neuron_codes(L)
    assert offsets.dtype == np.uint32 and ids.dtype == np.uint16
    assert offsets[0] == 0 and offsets[-1] == L.n_tables * L.n_out
    for t in range(L.n_tables):
        for b in range(B):
            got = ids[offsets[t * B + b] : offsets[t * B + b + 1]].tolist()
            assert got == [j for j in range(L.n_out) if codes[j, t] == b]
    assert lit_buckets(L) == [
        [ids[offsets[t * B + b] : offsets[t * B + b + 1]].tolist() for b in range(B)]
        for t in range(L.n_tables)
    ]


def test_dwta_densifies_all_zero_bins_and_codes_zero_when_everything_is_zero():
    qm, _ = trained_qmodel("dwta", pool=1)
    L = qm.layers[0]
    assert (Q.hash_codes(L, np.zeros(L.hash_dim, dtype=np.int64)) == 0).all()
    h = np.zeros(L.hash_dim, dtype=np.int64)
    h[3] = 5  # a single non-zero value: bins without it borrow from a probed bin
    want = [lit_code(L, h.tolist(), t) for t in range(L.n_tables)]
    assert Q.hash_codes(L, h).tolist() == want
    assert any(want)


def test_select_ties_go_to_the_lower_id_and_padding_follows_pad_order():
    qm, _ = trained_qmodel("ternary")
    L = dataclasses.replace(qm.layers[0], table_offsets=None, table_ids=None)
    n, T, B = L.n_out, L.n_tables, 1 << L.bits
    # hand-made tables: every neuron in bucket 0 of every table, the other buckets empty
    offs = [t * n if b == 0 else (t + 1) * n for t in range(T) for b in range(B)] + [T * n]
    L.table_offsets = np.array(offs, dtype=np.uint32)
    L.table_ids = np.tile(np.arange(n, dtype=np.uint16), T)
    zero = [0] * T
    assert Q.select(L, zero).tolist() == list(range(L.k))  # all tie: lowest ids
    empty = [1] * T  # every bucket empty: pure padding from pad_start
    got = Q.select(L, empty)
    start = Q.pad_start(empty, n)
    assert L.pad_order is not None
    want = sorted(int(L.pad_order[(start + i) % n]) for i in range(L.k))
    assert got.tolist() == want
    assert Q.pad_start(empty, n) == lit_pad_start(empty, n)


def lit_pad_start(codes: list[int], n: int) -> int:
    h = 0
    for c in codes:
        h = mix64(h ^ c)
    return h % n


def test_forward_checks_its_inputs():
    qm, _ = trained_qmodel("ternary")
    with pytest.raises(ValueError, match="int8"):
        Q.logits_batch(qm, np.full((1, 18), 300))
    with pytest.raises(ValueError, match="shape"):
        Q.logits_batch(qm, np.zeros((1, 17), np.int8))
    logits, pred, actives = Q.forward(qm, np.zeros(18, np.int8))
    assert logits.dtype == np.int64 and logits.shape == (5,) and 0 <= pred < 5
    assert len(actives) == 3


def test_the_c_kernel_agrees():
    """The C fixed-point kernel (edge_lsh.fixed) against this oracle."""
    rng = np.random.default_rng(7)
    for seed in range(4):
        qm = random_qmodel(np.random.default_rng(300 + seed))
        model = FixedPointModel(elsh_bytes(qm, tables=bool(seed % 2)))
        X = special_inputs(qm, rng, 12)
        want = Q.logits_batch(qm, X)
        for r, row in enumerate(X):
            pred, logits = model.forward_q(row)
            assert logits.tolist() == want[r].tolist()
            assert pred == int(np.argmax(want[r]))
