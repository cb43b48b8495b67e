"""A numpy model of the integer arithmetic of an ``.elsh`` model (export/FORMAT.md section 6):
the oracle the C fixed-point kernel is checked against, bit for bit.

Every value after input quantization is an integer held in int64 (or a Python int), so no
step can round or overflow silently; the two places where the C kernel wraps or saturates are
emulated explicitly: the accumulator of step 3 is taken modulo 2^32, and the requantized value
of step 4 is saturated to int32.

    quantize_input(qm, x)                 float inputs -> int8 (float32 arithmetic, 6.1)
    pool(x, pool, hash_dim)               integer sum-pooling
    hash_codes(layer, h)                  bucket id per table of pooled (centered) vectors
    neuron_codes(layer)                   bucket ids of every neuron's pooled weight row
    canonical_tables(layer)               the CSR tables of 5.6 (offsets, ids)
    layer_tables(layer)                   the layer's tables: stored, or built and cached
    select(layer, codes)                  the active set of one input, ascending
    input_codes(layer, x)                 bucket ids of a batch of layer inputs
    selection_measures(qm, Xq)            entries, candidates and top-k recall per layer
    requantize(acc, multiplier, shift)    step 4 before the activation
    forward(qm, xq)                       logits, prediction, per-layer active sets
    logits_batch(qm, Xq), predict(qm, Xq) many inputs at once
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_lsh.oracle.prng import mix64
from edge_lsh.oracle.qmodel import (
    DWTA_MAX_PROBES,
    DWTA_PROBE_MULT,
    INACTIVE_LOGIT,
    SELECT_TOPK,
    SELECT_UNION,
    QLayer,
    QModel,
    canonical_tables,
    hash_codes,
    layer_tables,
    neuron_codes,
    pool,
)

__all__ = [
    "INACTIVE_LOGIT",
    "SELECT_TOPK",
    "SELECT_UNION",
    "DWTA_MAX_PROBES",
    "DWTA_PROBE_MULT",
    "quantize_input",
    "pool",
    "hash_codes",
    "neuron_codes",
    "canonical_tables",
    "layer_tables",
    "pad_start",
    "select",
    "wrap_int32",
    "requantize",
    "input_codes",
    "layer_forward",
    "selection_measures",
    "forward",
    "logits_batch",
    "predict",
]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


# ----------------------------------------------------------------------------- input


def quantize_input(qm: QModel, x: Any) -> np.ndarray:
    """Quantize float inputs (one row of n_in values, or rows) to int8 as FORMAT.md 6.1 says,
    in float32: t = x * input_inv_scale + 0.5, clamped to [-512, 512]; q = floor(t) + z0,
    clamped to [-128, 127]. Raises ValueError for a non-finite input (ELSH_ERR_INPUT)."""
    xf = np.asarray(x, dtype=np.float32)
    if xf.shape[-1:] != (qm.n_in,) or xf.ndim > 2:
        raise ValueError(f"inputs have shape {xf.shape}; this model takes ({qm.n_in},) rows")
    if not np.isfinite(xf).all():
        raise ValueError("inputs contain NaN or infinity (ELSH_ERR_INPUT)")
    inv = np.float32(qm.input_inv_scale)
    t = xf * inv + np.float32(0.5)  # two float32 roundings, as in C without contraction
    t = np.clip(t, np.float32(-512.0), np.float32(512.0))
    q = np.floor(t).astype(np.int64) + int(qm.layers[0].in_zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


# ----------------------------------------------------------------------------- selection


def pad_start(codes: Any, n_out: int) -> int:
    """Where padding starts in pad_order: h = 0; h = mix64(h ^ code_t) over the tables;
    h mod n_out."""
    h = 0
    for c in codes:
        h = mix64(h ^ int(c))
    return h % n_out


def select(layer: QLayer, codes: Any) -> np.ndarray:
    """The active set (ascending int64 ids) of one input whose table codes are `codes`.

    top-k: collision count of j = number of tables whose bucket codes[t] holds j; when more than
           k neurons collide, the k with the highest counts, ties to the lower id, else all.
    union: the first k distinct ids in table order, then bucket order.
    Then, while fewer than k are chosen, walk pad_order cyclically from pad_start(codes),
    adding neurons not chosen yet."""
    n_out, k = layer.n_out, layer.k
    offsets, ids = layer_tables(layer)
    B = 1 << layer.bits
    codes = [int(c) for c in codes]
    buckets = [
        ids[int(offsets[t * B + c]) : int(offsets[t * B + c + 1])] for t, c in enumerate(codes)
    ]
    chosen = np.zeros(n_out, dtype=bool)
    n_chosen = 0
    if layer.select_mode == SELECT_UNION:
        for b in buckets:
            for j in b.tolist():
                if n_chosen >= k:
                    break
                if not chosen[j]:
                    chosen[j] = True
                    n_chosen += 1
            if n_chosen >= k:
                break
    else:
        counts = np.bincount(
            np.concatenate(buckets).astype(np.int64) if buckets else np.zeros(0, np.int64),
            minlength=n_out,
        )
        hit = np.flatnonzero(counts)
        if hit.size > k:
            ranked = np.lexsort((np.arange(n_out), -counts))  # count desc, then id asc
            chosen[ranked[:k]] = True
            n_chosen = k
        else:
            chosen[hit] = True
            n_chosen = int(hit.size)
    if n_chosen < k:
        start = pad_start(codes, n_out)
        pad = layer.pad_order
        assert pad is not None
        i = 0
        while n_chosen < k:
            j = int(pad[(start + i) % n_out])
            if not chosen[j]:
                chosen[j] = True
                n_chosen += 1
            i += 1
    return np.flatnonzero(chosen).astype(np.int64)


# ----------------------------------------------------------------------------- arithmetic


def wrap_int32(v: np.ndarray) -> np.ndarray:
    """Integers modulo 2^32 as signed 32-bit values (int64 array)."""
    v = np.asarray(v, dtype=np.int64)
    return ((v + 2**31) & 0xFFFFFFFF) - 2**31


def requantize(acc: Any, multiplier: Any, shift: Any) -> np.ndarray:
    """y = (acc * multiplier + 2^(r-1)) >> r with r = 31 - shift, a flooring shift in 64-bit
    arithmetic, saturated to int32 (int64 array). acc must be int32 values."""
    a = np.asarray(acc, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    r = 31 - np.asarray(shift, dtype=np.int64)
    y = np.right_shift(a * m + np.left_shift(np.int64(1), r - 1), r)
    return np.clip(y, INT32_MIN, INT32_MAX)


def input_codes(layer: QLayer, x: np.ndarray) -> np.ndarray:
    """The bucket ids (n, L) of a batch of layer inputs x (a_i - in_zero_point, 0 at absent
    indices): sum-pooled, centered when the layer says so, hashed."""
    h = pool(np.asarray(x, dtype=np.int64), layer.pool, layer.hash_dim)
    if layer.center:
        assert layer.center_q is not None
        h = h - layer.center_q.astype(np.int64)[None, :]
    return hash_codes(layer, h)


def layer_forward(
    layer: QLayer, x: np.ndarray, active: list[np.ndarray] | None = None
) -> np.ndarray:
    """One layer for a batch: x (n, n_in) int64 holds a_i - in_zero_point at the present
    indices and 0 at absent ones. Returns the layer's dense outputs (n, n_out) int64: hidden
    layers give the int8 output at active neurons and out_zero_point elsewhere (callers use
    `active` to tell them apart), the output layer the int32 logits with INACTIVE_LOGIT at
    inactive classes. The active sets are appended to `active` if given."""
    x = np.asarray(x, dtype=np.int64)
    n = x.shape[0]
    mask = np.ones((n, layer.n_out), dtype=bool)
    if layer.use_lsh:
        codes = input_codes(layer, x)
        mask[:] = False
        for r in range(n):
            act = select(layer, codes[r])
            mask[r, act] = True
            if active is not None:
                active.append(act)
    elif active is not None:
        active.extend(np.arange(layer.n_out, dtype=np.int64) for _ in range(n))
    w = layer.weights.astype(np.int64)
    acc = wrap_int32(layer.bias.astype(np.int64)[None, :] + x @ w.T)
    y = requantize(acc, layer.multiplier[None, :], layer.shift[None, :])
    if layer.is_output:
        return np.where(mask, y, INACTIVE_LOGIT)
    zp = int(layer.out_zero_point)
    out = np.clip(y + zp, zp, 127)
    return np.where(mask, out, zp)


def _run(qm: QModel, Xq: Any, keep_active: bool) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    X = np.asarray(Xq)
    if X.ndim != 2 or X.shape[1] != qm.n_in:
        raise ValueError(f"inputs have shape {X.shape}; this model takes (n, {qm.n_in})")
    if X.dtype != np.int8:
        if not np.issubdtype(X.dtype, np.integer) or X.min() < -128 or X.max() > 127:
            raise ValueError("quantized inputs must be int8 values (see quantize_input)")
    x = X.astype(np.int64) - int(qm.layers[0].in_zero_point)
    actives: list[list[np.ndarray]] = []
    out = x
    for li, layer in enumerate(qm.layers):
        act: list[np.ndarray] | None = [] if keep_active else None
        out = layer_forward(layer, x, act)
        if act is not None:
            actives.append(act)
        if not layer.is_output:
            nxt = qm.layers[li + 1]
            x = out - int(nxt.in_zero_point)  # inactive neurons hold out_zero_point: x = 0
    return out, actives


def selection_measures(qm: QModel, Xq: Any) -> list[dict[str, int]]:
    """What elsh_qnet_forward_stats counts, summed over int8 input rows, per layer: inputs,
    bucket entries read (top-k: every entry of the input's L buckets; union: up to the k-th
    neuron taken), candidates (top-k: neurons that collided; union: neurons taken from the
    tables), active neurons, and for LSH layers topk (k per input) and topk_found: how many of
    the k highest requantized pre-activations (ties to the lower id) the active set holds."""
    X = np.asarray(Xq)
    x = X.astype(np.int64) - int(qm.layers[0].in_zero_point)
    out: list[dict[str, int]] = []
    for li, layer in enumerate(qm.layers):
        m = {"inputs": int(x.shape[0]), "entries": 0, "candidates": 0, "active": 0}
        m.update(topk=0, topk_found=0)
        active: list[np.ndarray] = []
        y = layer_forward(layer, x, active)
        if layer.use_lsh:
            offsets, ids = layer_tables(layer)
            B = 1 << layer.bits
            w = layer.weights.astype(np.int64)
            pre = requantize(
                wrap_int32(layer.bias.astype(np.int64)[None, :] + x @ w.T),
                layer.multiplier[None, :],
                layer.shift[None, :],
            )
            for r, codes in enumerate(input_codes(layer, x)):
                starts = [t * B + int(c) for t, c in enumerate(codes)]
                spans = [(int(offsets[i]), int(offsets[i + 1])) for i in starts]
                got = [ids[a:b] for a, b in spans]
                if layer.select_mode == SELECT_UNION:
                    seen: set[int] = set()
                    for j in np.concatenate(got).tolist() if got else []:
                        if len(seen) >= layer.k:
                            break
                        m["entries"] += 1
                        seen.add(j)
                    m["candidates"] += len(seen)
                else:
                    m["entries"] += sum(b - a for a, b in spans)
                    m["candidates"] += int(np.unique(np.concatenate(got)).size) if got else 0
                ranked = np.lexsort((np.arange(layer.n_out), -pre[r]))[: layer.k]
                m["topk"] += layer.k
                m["topk_found"] += int(np.isin(active[r], ranked).sum())
        else:
            m["candidates"] = layer.n_out * int(x.shape[0])
        m["active"] = sum(int(a.size) for a in active)
        out.append(m)
        if not layer.is_output:
            x = y - int(qm.layers[li + 1].in_zero_point)
    return out


def forward(qm: QModel, xq: Any) -> tuple[np.ndarray, int, list[np.ndarray]]:
    """One int8 input row: (logits int64[n_classes] with INACTIVE_LOGIT at inactive classes,
    the predicted class = first maximum of the logits, the ascending active ids per layer)."""
    row = np.asarray(xq).reshape(1, -1)
    logits, actives = _run(qm, row, keep_active=True)
    return logits[0], int(np.argmax(logits[0])), [a[0] for a in actives]


def logits_batch(qm: QModel, Xq: Any) -> np.ndarray:
    """(n, n_classes) int64 logits of int8 input rows."""
    logits, _ = _run(qm, Xq, keep_active=False)
    return logits


def predict(qm: QModel, Xq: Any) -> np.ndarray:
    """Predicted class of each int8 input row (first maximum of the logits)."""
    return np.argmax(logits_batch(qm, Xq), axis=1).astype(np.int64)
