"""The quantized model in memory (``QModel`` of ``QLayer``: the fields and arrays of an .elsh
file, export/FORMAT.md) and how its hash tables are defined: the integer hashing of pooled
vectors and the canonical CSR tables of FORMAT.md 5.6.

    pool(x, pool, hash_dim)               integer sum-pooling
    hash_codes(layer, h)                  bucket id per table of pooled (centered) vectors
    neuron_codes(layer)                   bucket ids of every neuron's pooled weight row
    canonical_tables(layer)               the CSR tables of 5.6 (offsets, ids)
    layer_tables(layer)                   the layer's tables: stored, or built and cached

The arithmetic of a forward pass, the oracle the C kernel is checked against, is in
``edge_lsh.oracle.qreference``; reading and writing files in ``edge_lsh.format``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_lsh.oracle.hashgen import DWTA, SIMHASH, TERNARY, log2_bin

__all__ = [
    "INACTIVE_LOGIT",
    "SELECT_TOPK",
    "SELECT_UNION",
    "DWTA_MAX_PROBES",
    "DWTA_PROBE_MULT",
    "QLayer",
    "QModel",
    "LayerState",
    "TrainState",
    "pool",
    "hash_codes",
    "neuron_codes",
    "canonical_tables",
    "layer_tables",
]

INACTIVE_LOGIT = -(2**31)  # the logit of a class an LSH output layer did not compute
SELECT_TOPK = 0
SELECT_UNION = 1
DWTA_MAX_PROBES = 16
DWTA_PROBE_MULT = 2654435761


@dataclass(eq=False)
class QLayer:
    """One layer of a quantized model, with the fields of its LAYER section and its arrays.

    Hash fields are zero for a dense layer. The hash functions are always present for an LSH
    layer (hash_source only says whether a file stores them or derives them from the seed):
    ``proj`` int8 (T, K, hash_dim); ``tern_idx`` uint16 and ``tern_sign`` int8 (T, K, nnz);
    ``dwta_idx`` uint16 (T, P, bin); ``pad_order`` uint16 (n_out,); ``center_q`` int32
    (hash_dim,) when center. ``weight_scale`` (float64 per neuron) is informational and not
    stored in files. ``membership`` (bool (T, n_out), FORMAT.md 5.7) says which neurons each
    table holds; None means every neuron is in every table. ``table_offsets``/``table_ids``
    cache the CSR tables once known (``qreference.layer_tables``): set them to None after
    changing weights, hash functions or membership."""

    n_in: int
    n_out: int
    k: int
    is_output: bool
    weight_bits: int
    weights: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    in_zero_point: int
    out_zero_point: int
    in_scale: float
    out_scale: float
    use_lsh: bool = False
    family: int = 0
    bits: int = 0
    n_tables: int = 0
    select_mode: int = 0
    hash_source: int = 0
    center: bool = False
    pool: int = 0
    hash_dim: int = 0
    ternary_nnz: int = 0
    dwta_bin: int = 0
    dwta_per_table: int = 0
    proj: np.ndarray | None = None
    tern_idx: np.ndarray | None = None
    tern_sign: np.ndarray | None = None
    dwta_idx: np.ndarray | None = None
    pad_order: np.ndarray | None = None
    center_q: np.ndarray | None = None
    membership: np.ndarray | None = None
    weight_scale: np.ndarray | None = None
    table_offsets: np.ndarray | None = None
    table_ids: np.ndarray | None = None

    SCALARS = (
        "n_in",
        "n_out",
        "k",
        "is_output",
        "weight_bits",
        "in_zero_point",
        "out_zero_point",
        "in_scale",
        "out_scale",
        "use_lsh",
        "family",
        "bits",
        "n_tables",
        "select_mode",
        "hash_source",
        "center",
        "pool",
        "hash_dim",
        "ternary_nnz",
        "dwta_bin",
        "dwta_per_table",
    )
    ARRAYS = (
        "weights",
        "bias",
        "multiplier",
        "shift",
        "proj",
        "tern_idx",
        "tern_sign",
        "dwta_idx",
        "pad_order",
        "center_q",
    )

    def first_difference(self, other: QLayer, *, tables: bool = False) -> str | None:
        """The name of the first field in which the layers differ, or None. Scales compare as
        the float32 values a file stores; weight_scale is not compared; with tables, the
        stored or canonical tables are."""
        for name in self.SCALARS:
            a, b = getattr(self, name), getattr(other, name)
            if name in ("in_scale", "out_scale"):  # stored as float32
                a, b = np.float32(a), np.float32(b)
            if a != b:
                return name
        for name in self.ARRAYS:
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None):
                return name
            if a is not None and (
                a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b)
            ):
                return name
        if self.use_lsh and not np.array_equal(self.member_mask(), other.member_mask()):
            return "membership"
        if tables and self.use_lsh:
            (oa, ia), (ob, ib) = layer_tables(self), layer_tables(other)
            if not (np.array_equal(oa, ob) and np.array_equal(ia, ib)):
                return "tables"
        return None

    def member_mask(self) -> np.ndarray:
        """(T, n_out) bool: is neuron j in table t (all True without membership bits)."""
        if self.membership is None:
            return np.ones((self.n_tables, self.n_out), dtype=bool)
        return np.asarray(self.membership, dtype=bool)

    def partial_membership(self) -> np.ndarray | None:
        """The membership bits when some table leaves a neuron out, else None."""
        if self.membership is None or np.asarray(self.membership, dtype=bool).all():
            return None
        return np.asarray(self.membership, dtype=bool)

    def same_as(self, other: QLayer, *, tables: bool = True) -> bool:
        """Equal in everything a file stores (weight_scale is not compared); with tables, the
        (stored or canonical) tables too."""
        return self.first_difference(other, tables=tables) is None


@dataclass(eq=False)
class LayerState:
    """One trainable layer's LAYER_STATE (FORMAT.md 4.2): int16 masters, the delta Q format,
    the integer rates, and int64 copies of the optimizer state (None when absent)."""

    frac_bits: int
    grad_exp: int
    lr_w: int
    lr_w_shift: int
    lr_b: int
    lr_b_shift: int
    master: np.ndarray
    vel_w: np.ndarray | None = None
    vel_b: np.ndarray | None = None
    acc_w: np.ndarray | None = None
    acc_b: np.ndarray | None = None


@dataclass(eq=False)
class TrainState:
    """TRAIN_STATE (FORMAT.md 4.2) and the LAYER_STATE of each trainable layer (by index)."""

    optimizer: int
    train_layers: int
    momentum_q15: int
    steps: int
    prng: tuple[int, int, int, int]
    seed: int
    layers: dict[int, LayerState] = field(default_factory=dict)


@dataclass(eq=False)
class QModel:
    """A quantized network: NET fields, the layers, the optional INFO JSON and the optional
    PREPROCESS section: (input_divisor, input_min, input_max), inputs = raw / divisor."""

    n_in: int
    n_classes: int
    input_inv_scale: float
    seed: int
    layers: list[QLayer]
    info: dict[str, Any] | None = field(default=None)
    preprocess: tuple[float, float, float] | None = None
    train_state: TrainState | None = None  # optional; inference never reads it

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def input_zero_point(self) -> int:
        return int(self.layers[0].in_zero_point)

    @property
    def input_scale(self) -> float:
        return float(self.layers[0].in_scale)

    def same_as(self, other: QModel, *, tables: bool = True) -> bool:
        """Equal in everything a file stores except INFO (see QLayer.same_as)."""
        return (
            self.n_in == other.n_in
            and self.n_classes == other.n_classes
            and np.float32(self.input_inv_scale) == np.float32(other.input_inv_scale)
            and self.seed == other.seed
            and len(self.layers) == len(other.layers)
            and all(a.same_as(b, tables=tables) for a, b in zip(self.layers, other.layers))
        )

    def dequantize_logits(self, logits: Any) -> np.ndarray:
        """Real-valued logits (out_scale * y); inactive classes become -inf."""
        y = np.asarray(logits, dtype=np.int64)
        out = y.astype(np.float64) * float(self.layers[-1].out_scale)
        return np.where(y == INACTIVE_LOGIT, -np.inf, out)


# ----------------------------------------------------------------------------- hashing and tables


def pool(x: np.ndarray, pool: int, hash_dim: int) -> np.ndarray:
    """Sum-pool the last axis of the integer array x in windows of `pool` (the last window may
    be short) into hash_dim int64 values."""
    x = np.asarray(x, dtype=np.int64)
    n = x.shape[-1]
    if pool < 1 or hash_dim != -(-n // pool):
        raise ValueError(f"pool={pool}, hash_dim={hash_dim} do not fit {n} values")
    if pool == 1:
        return x.copy()
    pad = hash_dim * pool - n
    if pad:
        x = np.concatenate([x, np.zeros((*x.shape[:-1], pad), dtype=np.int64)], axis=-1)
    return x.reshape(*x.shape[:-1], hash_dim, pool).sum(axis=-1)


def _bits_to_codes(bits: np.ndarray) -> np.ndarray:
    """(..., T, K) booleans -> (..., T) codes, bit b of table t."""
    weights = np.left_shift(np.int64(1), np.arange(bits.shape[-1], dtype=np.int64))
    return (bits.astype(np.int64) * weights).sum(axis=-1)


def _dwta_probes(n_bins: int) -> np.ndarray:
    """(n_bins, A): the bins an all-zero bin g probes, in order; A = min(16, n_bins - 1)."""
    a = np.arange(1, min(DWTA_MAX_PROBES, n_bins - 1) + 1, dtype=np.uint64)
    g = np.arange(n_bins, dtype=np.uint64)[:, None]
    return (
        ((g + a * np.uint64(DWTA_PROBE_MULT)) & np.uint64(0xFFFFFFFF)) % np.uint64(n_bins)
    ).astype(np.int64)


def _dwta_codes(layer: QLayer, h: np.ndarray) -> np.ndarray:
    assert layer.dwta_idx is not None
    idx = layer.dwta_idx.astype(np.int64)  # (T, P, bin)
    T, P, binw = idx.shape
    n_bins = T * P
    vals = h[:, idx.reshape(n_bins, binw)]  # (n, G, bin)
    raw = np.where((vals != 0).any(axis=-1), vals.argmax(axis=-1), -1)  # first maximum
    probes = _dwta_probes(n_bins)
    if probes.shape[1]:
        cand = raw[:, probes]  # (n, G, A): the probed bins' own winners
        ok = cand >= 0
        borrowed = np.take_along_axis(cand, ok.argmax(axis=-1)[..., None], axis=-1)[..., 0]
        pos = np.where(raw >= 0, raw, np.where(ok.any(axis=-1), borrowed, 0))
    else:
        pos = np.where(raw >= 0, raw, 0)
    pos = pos.reshape(-1, T, P)
    shifts = np.arange(P, dtype=np.int64) * log2_bin(binw)
    codes = np.bitwise_or.reduce(np.left_shift(pos, shifts[None, None, :]), axis=-1)
    return codes & ((1 << layer.bits) - 1)


# Hashing many vectors at once works in blocks of at most this many int64 temporaries (16 MB), so
# that no layer a file may describe (FORMAT.md work limits) makes the oracle hold gigabytes.
_BLOCK = 1 << 21


def _row_blocks(n: int, per_row: int) -> list[tuple[int, int]]:
    """Row ranges [a, b) of at most _BLOCK // per_row rows each (at least one row)."""
    step = max(1, _BLOCK // max(1, per_row))
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def hash_codes(layer: QLayer, h: np.ndarray) -> np.ndarray:
    """Bucket ids (int64) of the pooled, already centered integer vector h (hash_dim values):
    shape (T,), or (n, T) for an (n, hash_dim) h. Sums are exact in int64.

    simhash: bit b of table t = [sum_g proj[t][b][g] * h[g] > 0]
    ternary: bit b of table t = [sum_q sign[t][b][q] * h[idx[t][b][q]] > 0]
    dwta:    see FORMAT.md 6.2 (first maximum, densification by probing, OR of positions)"""
    h = np.asarray(h, dtype=np.int64)
    single = h.ndim == 1
    h2 = h[None, :] if single else h
    if h2.shape[-1] != layer.hash_dim:
        raise ValueError(f"vector of {h2.shape[-1]} values, layer hashes {layer.hash_dim}")
    n, T = h2.shape[0], layer.n_tables
    codes = np.empty((n, T), dtype=np.int64)
    if layer.family in (SIMHASH, TERNARY):
        simhash = layer.family == SIMHASH
        if simhash:
            assert layer.proj is not None
        else:
            assert layer.tern_idx is not None and layer.tern_sign is not None
        per_table = layer.bits * (layer.hash_dim if simhash else layer.ternary_nnz)
        t_step = max(1, min(T, _BLOCK // max(1, per_table)))
        for t0 in range(0, T, t_step):  # blocks of tables, then of rows
            t1 = min(T, t0 + t_step)
            if simhash:
                assert layer.proj is not None
                proj = layer.proj[t0:t1].astype(np.int64)  # (t, K, d)
            else:
                assert layer.tern_idx is not None and layer.tern_sign is not None
                idx = layer.tern_idx[t0:t1].astype(np.intp)  # (t, K, nnz)
                sign = layer.tern_sign[t0:t1].astype(np.int64)
            for a, b in _row_blocks(n, (t1 - t0) * per_table):
                if simhash:
                    s = np.einsum("nd,tkd->ntk", h2[a:b], proj)
                else:
                    s = (h2[a:b][:, idx] * sign).sum(axis=-1)  # (rows, t, K)
                codes[a:b, t0:t1] = _bits_to_codes(s > 0)
    elif layer.family == DWTA:
        n_bins = T * layer.dwta_per_table
        per_row = n_bins * (layer.dwta_bin + DWTA_MAX_PROBES + 4)
        for a, b in _row_blocks(n, per_row):
            codes[a:b] = _dwta_codes(layer, h2[a:b])
    else:
        raise ValueError(f"unknown hash family {layer.family!r}")
    return codes[0] if single else codes


def _neuron_codes(layer: QLayer, dtype: type) -> np.ndarray:
    T = layer.n_tables
    codes: np.ndarray = np.empty((layer.n_out, T), dtype=dtype)
    per_row = max(layer.n_in, layer.hash_dim) + T
    for a, b in _row_blocks(layer.n_out, per_row):  # pooled rows a block at a time
        w = pool(layer.weights[a:b].astype(np.int64), layer.pool, layer.hash_dim)
        codes[a:b] = hash_codes(layer, w)
    return codes


def neuron_codes(layer: QLayer) -> np.ndarray:
    """(n_out, T) bucket ids of every neuron's integer weight row, pooled like the input (no
    zero point, no center): where the canonical tables put each neuron."""
    return _neuron_codes(layer, np.int64)


def canonical_tables(layer: QLayer) -> tuple[np.ndarray, np.ndarray]:
    """The canonical CSR tables of FORMAT.md 5.6: uint32 offsets[T * B + 1] and uint16 ids;
    bucket b of table t holds, ascending, the member neurons of table t (all neurons without
    membership bits) whose row hashes to b. Built a table at a time: besides the result, it
    holds the (n_out, T) codes as uint16 and one table's worth of temporaries."""
    T, B, n_out = layer.n_tables, 1 << layer.bits, layer.n_out
    codes = _neuron_codes(layer, np.uint16)  # codes < 2^15
    members = None if layer.membership is None else np.asarray(layer.membership, dtype=bool)
    everyone = np.arange(n_out, dtype=np.uint16)
    offsets = np.zeros(T * B + 1, dtype=np.uint32)
    ids = []
    total = 0
    for t in range(T):
        who = everyone if members is None else everyone[members[t]]
        c = codes[who, t]
        ids.append(who[np.argsort(c, kind="stable")])  # by bucket, ascending ids within
        offsets[t * B + 1 : (t + 1) * B + 1] = total + np.cumsum(np.bincount(c, minlength=B))
        total += c.size
    return offsets, np.concatenate(ids) if ids else np.zeros(0, dtype=np.uint16)


def layer_tables(layer: QLayer) -> tuple[np.ndarray, np.ndarray]:
    """The layer's tables: the stored ones, or the canonical ones (built once and cached)."""
    if layer.table_offsets is None or layer.table_ids is None:
        layer.table_offsets, layer.table_ids = canonical_tables(layer)
    return layer.table_offsets, layer.table_ids
