"""Op counts derived independently of the kernel's counters: from the numpy oracles' active
sets, table codes and hashed vectors, the layer shapes and the counting rules the kernel
documents (what each stage reads and computes). The energy model multiplies the kernel's own
counters; these counts are what those counters are checked against (tests/test_energy_counts.py).

    qnet_counts(qm, xq, dense=False)      one fixed-point inference (edge_lsh.oracle.qreference)
    float_counts(net, x, label=-1)        one float inference, or the forward of a training step
                                          (edge_lsh.oracle.reference)
    backward_counts(actives, n_in)        backward and update phases of one training step
    neuron_hash_counts(net, layer, ids)   re-hashing updated neurons (the tables phase, without
                                          its table_bytes, which depend on the buckets' history)

The rules, per layer with n inputs given (the previous layer's active count, or n_in) and a
active neurons:

    forward  fixed point: mul a*n + a (requantizing multiplies), add n + a*n + 2a (zero point,
             bias, rounding), cmp 2a, weight bytes a*n*(weight_bits/8) + 9a (bias, multiplier,
             shift); float: mul a*n, add a*n + a, cmp a (ReLU, hidden layers only), weight
             bytes 4(a*n + a)
    hash     pooling add n (pool > 1), centering add hash_dim; per table and bit: SimHash
             mul/add d, cmp 1, coefficient bytes d (int8) or 4d (float); ternary add nnz, cmp 1,
             bytes 3 nnz; DWTA per bin examined cmp 2 bin, bytes 2 bin, with an empty bin
             probing others (densification) until one is not empty
    select   top-k: add (slots scanned), table bytes 2 per slot; more candidates than k: add
             (candidates); else padding cmp 1 per step; cmp n_out. union: cmp and 2 table bytes
             per slot scanned until k are chosen, padding, cmp n_out
    backward (float training) with P = a(n + 1) parameters: mul and add a*n into the previous
             layer's deltas (not for the first layer), weight bytes 4P; update mul 7P, add 5P,
             weight bytes 12P (weight, squared-gradient sum, momentum)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edge_lsh.oracle import qreference as Q
from edge_lsh.oracle import reference as R
from edge_lsh.oracle.hashgen import DWTA, SIMHASH, TERNARY
from edge_lsh.oracle.qmodel import QModel
from edge_lsh.report import OPS_FIELDS

__all__ = [
    "zero_counts",
    "qnet_counts",
    "float_counts",
    "backward_counts",
    "neuron_hash_counts",
    "STEP_MULS",
    "STEP_ADDS",
]

STEP_MULS = 7  # per parameter and step of Adagrad + momentum (layer_f32.c's documented count)
STEP_ADDS = 5
PROBE_MULT = 2654435761
MAX_PROBES = 16
SELECT_UNION = 1

Counts = dict[str, dict[str, int]]


def zero_counts(phases: Sequence[str]) -> Counts:
    return {ph: dict.fromkeys(OPS_FIELDS, 0) for ph in phases}


def _add(c: dict[str, int], **kw: int) -> None:
    for k, v in kw.items():
        c[k] += int(v)


# ----------------------------------------------------------------------------- hashing


def _family_counts(
    c: dict[str, int],
    family: str,
    v: np.ndarray,
    *,
    K: int,
    T: int,
    d: int,
    nnz: int,
    coef_bytes: int,
    dwta_idx: np.ndarray | None,
) -> None:
    """Counts of hashing vector v (hash_dim values) into T tables of K bits."""
    if family == "simhash":
        _add(c, mul=T * K * d, add=T * K * d, cmp=T * K, weight_bytes=T * K * d * coef_bytes)
    elif family == "ternary":
        _add(c, add=T * K * nnz, cmp=T * K, weight_bytes=T * K * nnz * 3)
    elif family == "dwta":
        assert dwta_idx is not None
        _, P, binw = dwta_idx.shape
        n_bins = T * P
        empty = ~(v[dwta_idx.reshape(n_bins, binw).astype(np.intp)] != 0).any(axis=1)
        calls = 0
        for g in range(n_bins):
            calls += 1
            a = 1
            found = not empty[g]
            while not found and a <= MAX_PROBES and a < n_bins:
                probe = ((g + a * PROBE_MULT) & 0xFFFFFFFF) % n_bins
                calls += 1
                found = not empty[probe]
                a += 1
        _add(c, cmp=calls * 2 * binw, weight_bytes=calls * 2 * binw)
    else:
        raise ValueError(f"unknown hash family {family!r}")


def _select_counts(
    c: dict[str, int],
    buckets: list[np.ndarray],
    codes: Sequence[int],
    *,
    n_out: int,
    k: int,
    union: bool,
    pad_order: np.ndarray,
) -> None:
    """Counts of choosing k of n_out neurons from the input's buckets (one per table)."""
    chosen: set[int] = set()
    if union:
        scanned = 0
        for b in buckets:
            for j in b.tolist():
                if len(chosen) >= k:
                    break
                scanned += 1
                chosen.add(int(j))
            if len(chosen) >= k:
                break
        _add(c, cmp=scanned, table_bytes=2 * scanned)
    else:
        scanned = sum(int(b.size) for b in buckets)
        touched = set(int(j) for b in buckets for j in b.tolist())
        _add(c, add=scanned, table_bytes=2 * scanned)
        if len(touched) > k:
            _add(c, add=len(touched), cmp=n_out)
            return
        chosen = touched
    steps = 0
    if len(chosen) < k:
        p = Q.pad_start([int(x) for x in codes], n_out)
        while len(chosen) < k:
            steps += 1
            chosen.add(int(pad_order[p]))
            p = 0 if p + 1 == n_out else p + 1
    _add(c, cmp=steps + n_out)


# ----------------------------------------------------------------------------- fixed point


def _family_name(code: int) -> str:
    return {SIMHASH: "simhash", TERNARY: "ternary", DWTA: "dwta"}[code]


def qnet_counts(qm: QModel, xq: Any, dense: bool = False) -> Counts:
    """Counts (phases hash and forward) of one fixed-point inference of int8 input row xq, as
    the C kernel runs it (dense=True: every neuron, no hashing)."""
    row = np.asarray(xq).reshape(1, -1)
    x = row.astype(np.int64) - int(qm.layers[0].in_zero_point)
    counts = zero_counts(("hash", "forward"))
    hc, fc = counts["hash"], counts["forward"]
    n = qm.n_in
    for li, L in enumerate(qm.layers):
        _add(fc, add=n)
        if L.use_lsh and not dense:
            h = Q.pool(x, L.pool, L.hash_dim)
            if L.pool > 1:
                _add(hc, add=n)
            if L.center:
                assert L.center_q is not None
                h = h - L.center_q.astype(np.int64)[None, :]
                _add(hc, add=L.hash_dim)
            fam = _family_name(L.family)
            _family_counts(
                hc,
                fam,
                h[0],
                K=L.bits,
                T=L.n_tables,
                d=L.hash_dim,
                nnz=L.ternary_nnz,
                coef_bytes=1,
                dwta_idx=L.dwta_idx,
            )
            codes = [int(v) for v in Q.hash_codes(L, h[0])]
            offsets, ids = Q.layer_tables(L)
            B = 1 << L.bits
            buckets = [
                ids[int(offsets[t * B + cd]) : int(offsets[t * B + cd + 1])]
                for t, cd in enumerate(codes)
            ]
            assert L.pad_order is not None
            _select_counts(
                hc,
                buckets,
                codes,
                n_out=L.n_out,
                k=L.k,
                union=L.select_mode == SELECT_UNION,
                pad_order=L.pad_order,
            )
            a = len(Q.select(L, codes))
        else:
            a = L.n_out
        wb = L.weight_bits // 8
        _add(fc, mul=a * n + a, add=a * n + 2 * a, cmp=2 * a, weight_bytes=a * n * wb + 9 * a)
        n = a
        if li + 1 < len(qm.layers):
            # the layer's outputs for the next layer: inactive neurons hold the zero point
            if dense:
                lsh, L.use_lsh = L.use_lsh, False
                try:
                    out = Q.layer_forward(L, x)
                finally:
                    L.use_lsh = lsh
            else:
                out = Q.layer_forward(L, x)
            x = out - int(qm.layers[li + 1].in_zero_point)
    return counts


# ----------------------------------------------------------------------------- float


def float_counts(net: Any, x: Any, label: int = -1) -> Counts:
    """Counts (phases hash and forward) of one float forward pass of net (a Network) on row x;
    label >= 0 is forced into an LSH output layer, as in a training step."""
    tr = R.trace(net, x, label)
    counts = zero_counts(("hash", "forward"))
    hc, fc = counts["hash"], counts["forward"]
    h = np.asarray(x, dtype=np.float32).astype(np.float64).reshape(-1)
    n = int(net.n_in)
    sparse_input = False
    for i in range(int(net.n_layers)):
        info, arrays = net.layer_info(i), net.layer_arrays(i)
        if info["lsh"]:
            if int(info["select"]) == 2:
                raise ValueError("select='exact' is an oracle mode: not counted here")
            pool_w, d = int(info["pool"]), int(info["hash_dim"])
            v = R.pool(h, pool_w, d)
            if pool_w > 1:
                _add(hc, add=n)
            if info.get("center"):
                v = v - arrays["center"].astype(np.float64)
                _add(hc, add=d)
            _family_counts(
                hc,
                info["family"],
                v,
                K=int(info["bits"]),
                T=int(info["tables"]),
                d=d,
                nnz=int(info["ternary_nnz"]),
                coef_bytes=4,
                dwta_idx=arrays.get("dwta_idx"),
            )
            codes = [int(cd) for cd in np.asarray(tr.codes[i])]
            ids, lens = arrays["bucket_ids"], arrays["bucket_len"]
            buckets = [ids[t, cd, : int(lens[t, cd])] for t, cd in enumerate(codes)]
            _select_counts(
                hc,
                buckets,
                codes,
                n_out=int(info["n_out"]),
                k=int(info["k"]),
                union=int(info["select"]) == SELECT_UNION,
                pad_order=arrays["pad_order"],
            )
        a = int(tr.active[i].size)
        _add(
            fc,
            mul=a * n,
            add=a * n + a,
            cmp=0 if info["output"] else a,
            weight_bytes=4 * (a * n + a),
        )
        h = np.zeros(int(info["n_out"]))
        h[tr.active[i]] = tr.outputs[i]
        n = a
        sparse_input = bool(info["lsh"])
    del sparse_input
    return counts


def backward_counts(actives: Sequence[int], n_in: int) -> Counts:
    """Counts (phases backward and update) of one training step whose layers had these active
    counts (the output's including a forced label), for a network with n_in inputs."""
    counts = zero_counts(("backward", "update"))
    bc, uc = counts["backward"], counts["update"]
    for i, a in enumerate(actives):
        n = n_in if i == 0 else int(actives[i - 1])
        p = int(a) * (n + 1)
        if i > 0:
            _add(bc, mul=int(a) * n, add=int(a) * n)
        _add(bc, weight_bytes=4 * p)
        _add(uc, mul=STEP_MULS * p, add=STEP_ADDS * p, weight_bytes=12 * p)
    return counts


def neuron_hash_counts(net: Any, index: int, ids: Sequence[int]) -> dict[str, int]:
    """mul, add, cmp and weight_bytes of re-hashing neurons `ids` of LSH layer `index` from
    their current weight rows (the tables phase of a table update; its table_bytes depend on
    the buckets' eviction history and are not derived here)."""
    info, arrays = net.layer_info(index), net.layer_arrays(index)
    c = dict.fromkeys(OPS_FIELDS, 0)
    pool_w, d, n_in = int(info["pool"]), int(info["hash_dim"]), int(info["n_in"])
    for j in ids:
        row = arrays["w"][int(j)].astype(np.float64)
        if pool_w > 1:
            _add(c, add=n_in)
        _add(c, weight_bytes=4 * n_in)
        _family_counts(
            c,
            info["family"],
            R.pool(row, pool_w, d),
            K=int(info["bits"]),
            T=int(info["tables"]),
            d=d,
            nnz=int(info["ternary_nnz"]),
            coef_bytes=4,
            dwta_idx=arrays.get("dwta_idx"),
        )
    c.pop("table_bytes")
    return c
