"""A plain numpy reference of the network's forward pass: the test oracle for the C kernel.

Written from the documented semantics (the headers, the comments of hash_families.h, select.c
and layer_f32.c), not from the kernel's loops, and reading the network only through its public
accessors ``Network.layer_info(i)`` and ``Network.layer_arrays(i)``. Dot products, pooled sums
and hash projections are computed in float64, so a disagreement with the float32 kernel is a
kernel bug unless a value sits within float32 rounding of a decision boundary (a hash sign, a
ReLU, a DWTA comparison or an argmax tie).

    pool(x, pool, hash_dim)                 sum-pool windows of `pool` values
    hash_codes(info, arrays, v)             bucket id per table for v (or per row of v)
    neuron_codes(info, arrays)              bucket ids of every neuron's weight row
    select(info, arrays, codes, force=-1)   the active set, ascending
    forward(net, x, label=-1)               active sets, output logits, predicted class
    trace(net, x, label=-1)                 the same plus codes and every layer's outputs
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_lsh.oracle.prng import mix64

__all__ = [
    "NO_BUCKET",
    "DWTA_MAX_PROBES",
    "DWTA_PROBE_MULT",
    "pool",
    "hash_codes",
    "neuron_codes",
    "pad_start",
    "select",
    "ForwardResult",
    "forward",
    "trace",
    "softmax",
]

NO_BUCKET = 0xFFFF
DWTA_MAX_PROBES = 16  # an empty DWTA bin probes at most this many other bins
DWTA_PROBE_MULT = 2654435761  # probe a: bin (g + a * 2654435761 mod 2^32) mod n_bins
SELECT_TOPK = 0
SELECT_UNION = 1

Info = Mapping[str, Any]
Arrays = Mapping[str, np.ndarray]


def pool(x: np.ndarray, pool: int, hash_dim: int) -> np.ndarray:
    """Sum-pool the last axis of x in windows of `pool` values (the last window may be short),
    giving hash_dim values, in float64. pool 1 returns x itself as float64."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    if pool < 1 or hash_dim != -(-n // pool):
        raise ValueError(f"pool={pool}, hash_dim={hash_dim} do not fit {n} values")
    if pool == 1:
        return x.copy()
    pad = hash_dim * pool - n
    if pad:
        x = np.concatenate([x, np.zeros((*x.shape[:-1], pad))], axis=-1)
    return x.reshape(*x.shape[:-1], hash_dim, pool).sum(axis=-1)


def _bits_to_codes(bits: np.ndarray) -> np.ndarray:
    """(..., T, K) booleans, bit b of table t -> (..., T) uint32 codes."""
    weights = np.left_shift(np.uint64(1), np.arange(bits.shape[-1], dtype=np.uint64))
    return (bits.astype(np.uint64) * weights).sum(axis=-1).astype(np.uint32)


def _dwta_probe_table(n_bins: int) -> np.ndarray:
    """(n_bins, A) the bins an empty bin g probes, in order (A = min(16, n_bins - 1))."""
    a = np.arange(1, min(DWTA_MAX_PROBES, n_bins - 1) + 1, dtype=np.uint64)
    g = np.arange(n_bins, dtype=np.uint64)[:, None]
    return (
        ((g + a * np.uint64(DWTA_PROBE_MULT)) & np.uint64(0xFFFFFFFF)) % np.uint64(n_bins)
    ).astype(np.int64)


def _dwta_codes(info: Info, arrays: Arrays, v: np.ndarray) -> np.ndarray:
    idx = arrays["dwta_idx"].astype(np.int64)  # (T, P, bin)
    T, P, _ = idx.shape
    bits_per, K = int(info["dwta_bits"]), int(info["bits"])
    vals = v[:, idx].reshape(v.shape[0], T * P, -1)  # (n, G, bin), bin g = t * P + p
    raw = np.where((vals != 0.0).any(axis=-1), vals.argmax(axis=-1), -1)  # first maximum
    n_bins = T * P
    probes = _dwta_probe_table(n_bins)
    pos = raw.copy()
    if probes.shape[1]:
        cand = raw[:, probes]  # (n, G, A): the probed bins' own (undensified) winners
        ok = cand >= 0
        first = ok.argmax(axis=-1)
        borrowed = np.take_along_axis(cand, first[..., None], axis=-1)[..., 0]
        pos = np.where(raw >= 0, raw, np.where(ok.any(axis=-1), borrowed, 0))
    else:
        pos = np.where(raw >= 0, raw, 0)
    pos = pos.reshape(-1, T, P).astype(np.uint64)
    shifts = (np.arange(P, dtype=np.uint64) * np.uint64(bits_per))[None, None, :]
    codes = np.bitwise_or.reduce(np.left_shift(pos, shifts), axis=-1)
    return (codes & np.uint64((1 << K) - 1)).astype(np.uint32)


def hash_codes(info: Info, arrays: Arrays, v: np.ndarray) -> np.ndarray:
    """Bucket id of every table for the (already pooled) vector v of length hash_dim: shape (L,)
    uint32. v may also be (n, hash_dim), giving (n, L).

    simhash:  bit b of table t = [proj[t, b] . v > 0]
    ternary:  bit b of table t = [sum_q sign[t, b, q] * v[idx[t, b, q]] > 0]
    dwta:     sub-hash p of table t = position of the first maximum of v[dwta_idx[t, p, :]];
              a bin whose values are all zero takes the winner of the first non-empty bin among
              (g + a * 2654435761 mod 2^32) mod n_bins, a = 1..16 (a < n_bins), else 0;
              code = sum_p pos_p << (p * dwta_bits), masked to K bits."""
    v = np.asarray(v, dtype=np.float64)
    single = v.ndim == 1
    v2 = v[None, :] if single else v
    if v2.shape[-1] != int(info["hash_dim"]):
        raise ValueError(f"vector of {v2.shape[-1]} values, layer hashes {info['hash_dim']}")
    family = info["family"]
    if family == "simhash":
        proj = arrays["proj"].astype(np.float64)  # (T, K, d)
        s = np.einsum("nd,tkd->ntk", v2, proj)
        codes = _bits_to_codes(s > 0.0)
    elif family == "ternary":
        idx = arrays["tern_idx"].astype(np.int64)  # (T, K, nnz)
        sign = arrays["tern_sign"].astype(np.float64)
        s = (v2[:, idx] * sign).sum(axis=-1)
        codes = _bits_to_codes(s > 0.0)
    elif family == "dwta":
        codes = _dwta_codes(info, arrays, v2)
    else:
        raise ValueError(f"unknown hash family {family!r}")
    return codes[0] if single else codes


def neuron_codes(info: Info, arrays: Arrays) -> np.ndarray:
    """(n_out, L) bucket ids of every neuron's weight row (pooled like the layer's input)."""
    w = arrays["w"].astype(np.float64)
    return hash_codes(info, arrays, pool(w, int(info["pool"]), int(info["hash_dim"])))


def pad_start(codes: Sequence[int] | np.ndarray, n_out: int) -> int:
    """Where padding starts in pad_order: h = 0; h = mix64(h ^ code_t) over the tables;
    h mod n_out."""
    h = 0
    for c in codes:
        h = mix64(h ^ int(c))
    return h % n_out


def select(info: Info, arrays: Arrays, codes: np.ndarray, force: int = -1) -> np.ndarray:
    """The active set (ascending int32 ids) for an input whose table codes are `codes`.

    topk:  each neuron's collision count = number of tables whose bucket codes[t] holds it;
           when more than k neurons collide, the k with the highest counts, ties to the lower
           id; otherwise all colliding neurons.
    union: neurons in table order, then slot order within the bucket, first occurrences, until
           k are gathered.
    Padding: when fewer than k were chosen, walk pad_order cyclically from pad_start(codes)
    adding neurons not yet chosen until there are k.
    force >= 0 adds that neuron if it is missing and room is left (k + 1 at the output)."""
    n_out, k = int(info["n_out"]), int(info["k"])
    ids, lens = arrays["bucket_ids"], arrays["bucket_len"]
    T = int(info["tables"])
    codes = np.asarray(codes)
    buckets = [ids[t, int(codes[t]), : int(lens[t, int(codes[t])])] for t in range(T)]
    chosen: set[int]
    if int(info["select"]) == SELECT_UNION:
        chosen = set()
        order: list[int] = []
        for b in buckets:
            for j in b.tolist():
                if len(order) >= k:
                    break
                if j not in chosen:
                    chosen.add(j)
                    order.append(j)
    else:
        counts = np.zeros(n_out, dtype=np.int64)
        for b in buckets:
            np.add.at(counts, b.astype(np.int64), 1)
        hit = np.flatnonzero(counts)
        if hit.size > k:
            ranked = np.lexsort((np.arange(n_out), -counts))  # count desc, then id asc
            chosen = set(ranked[:k].tolist())
        else:
            chosen = set(hit.tolist())
    if len(chosen) < k:
        pad_order = arrays["pad_order"]
        start = pad_start(codes, n_out)
        i = 0
        while len(chosen) < k:
            chosen.add(int(pad_order[(start + i) % n_out]))
            i += 1
    capacity = k + (1 if info.get("output") else 0)
    if 0 <= force < n_out and force not in chosen and len(chosen) < capacity:
        chosen.add(force)
    return np.array(sorted(chosen), dtype=np.int32)


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


@dataclass
class ForwardResult:
    """One input through the network.

    active[i]: ascending active ids of layer i; codes[i]: its table codes (None when dense);
    outputs[i]: layer i's values at active[i] (ReLU for hidden layers, logits at the output);
    logits: outputs[-1]; pred: the active class with the highest logit (ties to the lowest id)."""

    active: list[np.ndarray]
    codes: list[np.ndarray | None]
    outputs: list[np.ndarray]
    logits: np.ndarray
    pred: int

    def probs(self, n_classes: int) -> np.ndarray:
        """Softmax over the active classes, 0 elsewhere (what predict_proba returns)."""
        p = np.zeros(n_classes)
        p[self.active[-1]] = softmax(self.logits)
        return p


def forward(net: Any, x: np.ndarray, label: int = -1) -> tuple[list[np.ndarray], np.ndarray, int]:
    """(active ids of each layer, logits of the output's active classes, predicted class) for
    one input row x; see trace()."""
    r = trace(net, x, label)
    return r.active, r.logits, r.pred


def trace(net: Any, x: np.ndarray, label: int = -1) -> ForwardResult:
    """The float forward pass of `net` (an edge_lsh.network.Network) for one input row x.

    Layer 0 hashes the dense input (pooled); layer l > 0 hashes the previous layer's output as a
    dense vector (values at the previous active ids, zeros elsewhere), pooled. A layer without
    LSH computes every neuron. A centered layer hashes the pooled input minus its center.
    Hidden layers apply ReLU; the output keeps logits. label >= 0 is
    forced into an LSH output layer's active set (as during training)."""
    h = np.asarray(x, dtype=np.float32).astype(np.float64).reshape(-1)
    n_layers = int(net.n_layers)
    active: list[np.ndarray] = []
    codes_all: list[np.ndarray | None] = []
    outputs: list[np.ndarray] = []
    for i in range(n_layers):
        info, arrays = net.layer_info(i), net.layer_arrays(i)
        n_in, n_out = int(info["n_in"]), int(info["n_out"])
        if h.shape[0] != n_in:
            raise ValueError(f"layer {i} takes {n_in} inputs, got {h.shape[0]}")
        if info["lsh"]:
            v = pool(h, int(info["pool"]), int(info["hash_dim"]))
            if info.get("center"):
                v = v - arrays["center"].astype(np.float64)
            codes = hash_codes(info, arrays, v)
            act = select(info, arrays, codes, label if info["output"] else -1)
        else:
            codes = None
            act = np.arange(n_out, dtype=np.int32)
        w = arrays["w"][act].astype(np.float64)
        z = arrays["b"][act].astype(np.float64) + w @ h
        out = z if info["output"] else np.maximum(z, 0.0)
        active.append(act)
        codes_all.append(codes)
        outputs.append(out)
        h = np.zeros(n_out)
        h[act] = out
    logits = outputs[-1]
    pred = int(active[-1][int(np.argmax(logits))])  # argmax: first maximum = lowest id
    return ForwardResult(active, codes_all, outputs, logits, pred)
