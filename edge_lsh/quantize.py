"""Post-training quantization of a float ``Network`` into a ``QModel`` (export/FORMAT.md).

    quantize(net, calib_x, weight_bits=8, percentile=None) -> QModel

Scheme:
- network input: asymmetric int8 over [min(0, min x), max(0, max x)] of the calibration rows;
- hidden outputs (ReLU): zero point -128, scale = (max, or a percentile, of the active
  neurons' float outputs on the calibration rows) / 255;
- weights: symmetric per neuron, int8 (qmax 127) or int16 (qmax 32767); the scale is also
  large enough that 255 * sum_i |w_q[j][i]| stays below 2^31 - 2^28, so that the int32
  accumulator can never wrap; biases at in_scale * weight_scale, clipped to keep that bound;
- requantization: TFLite-style multiplier and shift (``quantize_multiplier``);
- output layer: zero point 0, out_scale = in_scale * max_j weight_scale[j] (multipliers <= 1).
The hash functions stay those of the float network: hash_source 0 when they are the ones
``edge_lsh.oracle.hashgen`` regenerates from the seed, else stored explicitly (SimHash as
int8 round(32 * r)). Centers become integers in units of the layer's in_scale. Each table
keeps the neurons the trained float table holds (its membership: buckets of fixed capacity
drop some neurons during training, and the trained network relies on which).
"""

from __future__ import annotations

import math
import struct
import warnings
from typing import Any

import numpy as np

from edge_lsh.format.layout import MAX_DRAW_WORK, draw_work
from edge_lsh.network import FAMILIES, Network
from edge_lsh.oracle import hashgen
from edge_lsh.oracle import qreference as Q
from edge_lsh.oracle.hashgen import round_half_away
from edge_lsh.oracle.qmodel import QLayer, QModel

__all__ = [
    "ACC_BOUND",
    "quantize",
    "quantize_multiplier",
    "input_params",
    "weight_scales",
    "quantize_weights",
    "quantize_bias",
    "float_activations",
    "f32",
]

ACC_BOUND = 2**31 - 2**28  # 255 * sum |w_q| stays below this (headroom for the bias)
QMAX = {8: 127, 16: 32767}
MAX_CENTER = 2**24
NO_BUCKET = 0xFFFF  # neuron_bucket value: the neuron is not in that table
_F32 = struct.Struct("<f")


def f32(x: float) -> float:
    """x rounded to the nearest float32, as a Python float."""
    return float(_F32.unpack(_F32.pack(float(x)))[0])


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier, shift) with multiplier * 2^(shift - 31) == real to 2^-31 relative
    (TFLite QuantizeMultiplier): 0 -> (0, 0); factors below 2^-32 flush to (0, 0)."""
    if not (math.isfinite(real) and real >= 0):
        raise ValueError(f"rescale factor {real!r}: must be a finite number >= 0")
    if real == 0:
        return 0, 0
    q, e = math.frexp(real)
    m = int(round_half_away(q * 2.0**31))
    if m == 2**31:
        m //= 2
        e += 1
    if e < -31:
        return 0, 0
    if e > 30:
        raise ValueError(f"rescale factor {real!r} is too large (>= 2^30) to requantize")
    return m, e


def input_params(calib_x: np.ndarray) -> tuple[float, int]:
    """(scale, zero point) of the asymmetric int8 network input: the range [min(0, min x),
    max(0, max x)] maps onto -128..127; scale is rounded to float32."""
    x = np.asarray(calib_x, dtype=np.float64)
    rmin = min(0.0, float(x.min())) if x.size else 0.0
    rmax = max(0.0, float(x.max())) if x.size else 0.0
    if rmax == rmin:
        rmax = rmin + 1.0
    scale = f32((rmax - rmin) / 255.0)
    zp = int(round_half_away(-128.0 - rmin / scale))
    return scale, int(np.clip(zp, -128, 127))


def weight_scales(w: np.ndarray, weight_bits: int) -> np.ndarray:
    """Per-row symmetric scales: max(max|w_j| / qmax, 255 * sum|w_j| / ACC_BOUND); 1 for an
    all-zero row."""
    qmax = QMAX[weight_bits]
    a = np.abs(np.asarray(w, dtype=np.float64))
    scale = np.maximum(a.max(axis=1) / qmax, 255.0 * a.sum(axis=1) / ACC_BOUND)
    return np.where(scale > 0, scale, 1.0)


def quantize_weights(w: np.ndarray, weight_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(int8/int16 weights, float64 scale per row): round half away from zero, clipped."""
    qmax = QMAX[weight_bits]
    scale = weight_scales(w, weight_bits)
    q = np.clip(round_half_away(np.asarray(w, dtype=np.float64) / scale[:, None]), -qmax, qmax)
    return q.astype(np.int16 if weight_bits == 16 else np.int8), scale


def quantize_bias(
    b: np.ndarray,
    in_scale: float,
    scale: np.ndarray,
    wq: np.ndarray,
    *,
    relu: bool = False,
    where: str = "layer",
) -> np.ndarray:
    """int32 biases round(b / (in_scale * scale_j)), clipped so that
    |b_q| + 255 * sum_i |w_q[j][i]| < 2^31. Warns when clipping can change a result: with
    relu (a hidden layer), a negative bias clipped so far down that the neuron can never
    fire anyway (a dead neuron whose weights are all but zero) is not worth a warning."""
    bq = round_half_away(np.asarray(b, dtype=np.float64) / (in_scale * scale))
    reach = 255 * np.abs(wq.astype(np.int64)).sum(axis=1)
    limit = (2**31 - 1) - reach
    clipped = np.clip(bq, -limit, limit)
    changed = clipped != bq
    if relu:
        changed &= ~((bq < 0) & (reach - limit < 0))  # acc <= -limit + reach < 0 either way
    if changed.any():
        warnings.warn(
            f"{where}: {int(changed.sum())} bias(es) clipped to keep the int32 accumulator "
            "from overflowing",
            RuntimeWarning,
            stacklevel=3,
        )
    return clipped.astype(np.int64).astype(np.int32)


def float_activations(net: Network, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(outputs, masks) of every layer for the rows of x, from the float network's own
    selection: the kernel's active sets (one predict per row), values recomputed in float64.
    outputs[l] is (n, n_out) with zeros at inactive neurons (ReLU for hidden layers, logits at
    the output); masks[l] says which neurons were active."""
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[0]
    masks = [np.zeros((n, w), dtype=bool) for w in [*net.hidden, net.n_classes]]
    for r in range(n):
        net.predict(x[r : r + 1])
        for li in range(net.n_layers):
            masks[li][r, net.last_active(li)] = True
    outs = []
    h = x.astype(np.float64)
    for li in range(net.n_layers):
        a = net.layer_arrays(li)
        z = h @ a["w"].astype(np.float64).T + a["b"].astype(np.float64)[None, :]
        if li < net.n_layers - 1:
            z = np.maximum(z, 0.0)
        z = np.where(masks[li], z, 0.0)
        outs.append(z)
        h = z
    return outs, masks


def _act_max(values: np.ndarray, percentile: float | None) -> float:
    pos = values[values > 0]
    if pos.size == 0:
        return 0.0
    if percentile is None:
        return float(pos.max())
    return float(np.percentile(pos, percentile))


def _hash_fields(net: Network, li: int, info: dict[str, Any]) -> dict[str, Any]:
    """The LSH fields and hash arrays of layer li, with hash_source decided."""
    arrays = net.layer_arrays(li)
    family = int(FAMILIES[info["family"]])
    if info["select"] not in (Q.SELECT_TOPK, Q.SELECT_UNION):
        raise ValueError(
            f"layer {li} uses select='exact', which .elsh files cannot express; "
            "quantize a network that selects by top-k or union"
        )
    nnz = int(info["ternary_nnz"]) if family == hashgen.TERNARY else 0
    dwta_bin = int(info["dwta_bin"]) if family == hashgen.DWTA else 0
    fields: dict[str, Any] = {
        "use_lsh": True,
        "family": family,
        "bits": int(info["bits"]),
        "n_tables": int(info["tables"]),
        "select_mode": int(info["select"]),
        "center": bool(info["center"]),
        "pool": int(info["pool"]),
        "hash_dim": int(info["hash_dim"]),
        "ternary_nnz": nnz,
        "dwta_bin": dwta_bin,
        "dwta_per_table": int(info["dwta_per_table"]) if family == hashgen.DWTA else 0,
        "pad_order": arrays["pad_order"].astype(np.uint16),
    }
    # the neurons each trained table holds (fixed-capacity buckets drop some): FORMAT.md 5.7
    members = arrays["neuron_bucket"].T != NO_BUCKET
    fields["membership"] = None if members.all() else members
    regen = hashgen.generate(
        net.seed,
        li,
        family,
        fields["n_tables"],
        fields["bits"],
        fields["hash_dim"],
        int(info["n_out"]),
        ternary_nnz=nnz,
        dwta_bin=dwta_bin,
    )
    keys = {
        hashgen.SIMHASH: ("proj",),
        hashgen.TERNARY: ("tern_idx", "tern_sign"),
        hashgen.DWTA: ("dwta_idx",),
    }[family]
    same = all(np.array_equal(arrays[k], regen[k]) for k in (*keys, "pad_order"))
    # the seed, when it reproduces the functions and drawing them stays within the work limit
    cheap = (
        draw_work(
            family,
            int(info["tables"]),
            int(info["bits"]),
            int(info["hash_dim"]),
            int(info["ternary_nnz"]) if family == hashgen.TERNARY else 0,
            int(info["dwta_bin"]) if family == hashgen.DWTA else 0,
            int(info["dwta_per_table"]) if family == hashgen.DWTA else 0,
        )
        <= MAX_DRAW_WORK
    )
    fields["hash_source"] = 0 if same and cheap else 1
    if family == hashgen.SIMHASH:
        fields["proj"] = hashgen.simhash_int8(arrays["proj"])
    elif family == hashgen.TERNARY:
        fields["tern_idx"] = arrays["tern_idx"].astype(np.uint16)
        fields["tern_sign"] = arrays["tern_sign"].astype(np.int8)
    else:
        fields["dwta_idx"] = arrays["dwta_idx"].astype(np.uint16)
    return fields


def quantize(
    net: Network,
    calib_x: Any,
    weight_bits: int = 8,
    percentile: float | None = None,
) -> QModel:
    """Quantize `net` using the calibration rows `calib_x` (a few hundred training inputs).

    weight_bits: 8 or 16. percentile: calibrate hidden ranges on this percentile of the active
    positive outputs instead of their maximum (e.g. 99.99 to ignore rare outliers)."""
    if weight_bits not in QMAX:
        raise ValueError(f"weight_bits={weight_bits}: must be 8 or 16")
    if percentile is not None and not (0 < percentile <= 100):
        raise ValueError(f"percentile={percentile}: must be in (0, 100]")
    x = np.asarray(calib_x)
    if x.ndim != 2 or x.shape[1] != net.n_in or x.shape[0] == 0:
        raise ValueError(f"calibration data has shape {x.shape}; expected (n >= 1, {net.n_in})")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ValueError("calibration data contain NaN or infinity")

    in_scale, in_zp = input_params(x)
    input_inv_scale = f32(1.0 / in_scale)
    outs, _ = float_activations(net, x)

    layers: list[QLayer] = []
    for li in range(net.n_layers):
        info = net.layer_info(li)
        arrays = net.layer_arrays(li)
        is_output = bool(info["output"])
        wq, wscale = quantize_weights(arrays["w"], weight_bits)
        if is_output:
            out_scale = f32(in_scale * float(wscale.max()))
            out_zp = 0
        else:
            amax = _act_max(outs[li], percentile)
            out_scale = f32(amax / 255.0) if amax > 0 and math.isfinite(amax) else f32(1.0 / 255)
            out_zp = -128
        bias = quantize_bias(
            arrays["b"], in_scale, wscale, wq, relu=not is_output, where=f"layer {li}"
        )
        mults, shifts = zip(*(quantize_multiplier(in_scale * s / out_scale) for s in wscale))
        fields: dict[str, Any] = {}
        if info["lsh"]:
            fields = _hash_fields(net, li, info)
            if fields["center"]:
                c = round_half_away(arrays["center"].astype(np.float64) / in_scale)
                if (np.abs(c) > MAX_CENTER).any():
                    warnings.warn(
                        f"layer {li}: hash center clipped to |center| <= 2^24",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                fields["center_q"] = np.clip(c, -MAX_CENTER, MAX_CENTER).astype(np.int32)
        layer = QLayer(
            n_in=int(info["n_in"]),
            n_out=int(info["n_out"]),
            k=int(info["k"]),
            is_output=is_output,
            weight_bits=weight_bits,
            weights=wq,
            bias=bias,
            multiplier=np.array(mults, dtype=np.int32),
            shift=np.array(shifts, dtype=np.int8),
            in_zero_point=in_zp,
            out_zero_point=out_zp,
            in_scale=in_scale,
            out_scale=out_scale,
            weight_scale=wscale,
            **fields,
        )
        if layer.use_lsh:
            Q.layer_tables(layer)
        layers.append(layer)
        in_scale, in_zp = out_scale, out_zp

    return QModel(
        n_in=net.n_in,
        n_classes=net.n_classes,
        input_inv_scale=input_inv_scale,
        seed=net.seed,
        layers=layers,
        info={
            "producer": "edge_lsh.quantize",
            "calibration_rows": int(x.shape[0]),
            "weight_bits": weight_bits,
            "percentile": percentile,
        },
    )
