"""Modelled energy: the kernel's op counters (or counted instructions, or a board's time per
inference) turned into joules by a profile (``edge_lsh.energy.profiles``).

    inference_ops(model, x)          per-inference counts of a FixedPointModel or a Network
    training_ops(net, x, y)          per-step counts of float training (Network)
    estimate(profile, ...)           an Estimate: joules (low, high) or None, and how
    OPS_KINDS, PHASES_INFERENCE, PHASES_TRAINING

The fixed-point kernel counts the phases ``hash`` and ``forward`` (inference only: there is no
fixed-point training yet); the float network also ``backward``, ``update`` and ``tables``, so
energy per training step comes from the float network's counters.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edge_lsh.energy.profiles import Profile
from edge_lsh.network import CENTER_SAMPLES, Network, TrainConfig
from edge_lsh.report import OPS_FIELDS

__all__ = [
    "OPS_KINDS",
    "PHASES_INFERENCE",
    "PHASES_TRAINING",
    "Estimate",
    "inference_ops",
    "training_ops",
    "total_ops",
    "estimate",
]

OPS_KINDS = OPS_FIELDS  # mul, add, cmp, weight_bytes, table_bytes
PHASES_INFERENCE = ("hash", "forward")
PHASES_TRAINING = ("hash", "forward", "backward", "update", "tables")
PJ = 1e-12

PerPhase = dict[str, dict[str, float]]


@dataclass
class Estimate:
    """Modelled joules of one inference (or training step) under one profile: ``low`` and
    ``high`` (equal unless a figure is a range), None when a figure it needs is not published.
    ``parts`` splits the low estimate by component: ``hashing`` (the hash phase's arithmetic:
    pooling, projections, collision counting), ``arithmetic`` (every other phase's), and the
    bytes read of ``weight_memory`` and ``table_memory`` (``*_high``: the high estimate of the
    memory parts); ``missing`` names the figures that were null."""

    profile: str
    kind: str
    low: float | None
    high: float | None
    parts: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["joules_low"] = d.pop("low")
        d["joules_high"] = d.pop("high")
        if not d["missing"]:
            d.pop("missing")
        if not d["note"]:
            d.pop("note")
        return d


def _delta(
    after: Mapping[str, Mapping[str, int]], before: Mapping[str, Mapping[str, int]]
) -> PerPhase:
    return {ph: {k: float(after[ph][k] - before[ph][k]) for k in OPS_KINDS} for ph in after}


def _scale(ops: PerPhase, factor: float) -> PerPhase:
    return {ph: {k: v * factor for k, v in d.items()} for ph, d in ops.items()}


def total_ops(ops: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Counts summed over phases."""
    return {k: float(sum(d.get(k, 0.0) for d in ops.values())) for k in OPS_KINDS}


def inference_ops(model: Any, x: Any) -> tuple[PerPhase, float]:
    """(counts per inference by phase, seconds per inference on this machine) of model (a
    FixedPointModel or a Network) over the rows of x, from its counters read before and
    after."""
    x = np.asarray(x)
    n = x.shape[0] if x.ndim == 2 else 1
    if n == 0:
        raise ValueError("no inputs to count operations on")
    before = model.ops()
    t0 = time.perf_counter()
    model.predict(x)
    seconds = time.perf_counter() - t0
    after = model.ops()
    ops = _scale(_delta(after, before), 1.0 / n)
    return {ph: ops[ph] for ph in PHASES_INFERENCE if ph in ops}, seconds / n


def training_ops(
    net: Network, x: Any, y: Any, train: TrainConfig | None = None
) -> tuple[PerPhase, float]:
    """(counts per training step by phase, seconds per step) of one epoch of float training of
    net over (x, y), one step per row. net is trained: pass a copy. The forward passes that
    fit() spends on fitting centers (LSHConfig.center) are measured separately and taken out."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    if n == 0:
        raise ValueError("no training samples to count operations on")
    c0 = net.ops()
    if net.lsh is not None and net.lsh.center:
        net.fit_centers(x[: min(n, CENTER_SAMPLES)])
    c1 = net.ops()
    reports = net.fit(x, y, epochs=1, train=train)
    c2 = net.ops()
    centers = _delta(c1, c0)
    fit = _delta(c2, c1)
    ops = {ph: {k: fit[ph][k] - centers[ph][k] for k in OPS_KINDS} for ph in fit}
    return _scale(ops, 1.0 / n), reports[-1].seconds / n


def estimate(
    profile: Profile,
    *,
    ops: Mapping[str, Mapping[str, float]] | None = None,
    arithmetic: str = "int8",
    instructions: float | None = None,
    seconds: float | None = None,
    overrides: Mapping[str, float] | None = None,
) -> Estimate:
    """The energy of one inference (or step) under profile.

    ops (counts per phase) for kind "ops", with arithmetic "int8" (the fixed-point kernel) or
    "fp32" (the float network); instructions for kind "instructions"; seconds (the board's own
    time per inference) for kind "board". overrides replace figures by name (a measured
    amps_per_mhz, cycles_per_instruction, ...): they are reported in ``inputs``."""
    overrides = dict(overrides or {})
    if profile.kind == "ops":
        if ops is None:
            raise ValueError(f"profile {profile.name} needs op counts")
        return _estimate_ops(profile, ops, arithmetic)
    if profile.kind == "instructions":
        return _estimate_instructions(profile, instructions, overrides)
    if profile.kind == "board":
        return _estimate_board(profile, seconds, overrides)
    raise ValueError(f"profile {profile.name}: unknown kind {profile.kind!r}")


def _estimate_ops(
    profile: Profile, ops: Mapping[str, Mapping[str, float]], arithmetic: str
) -> Estimate:
    if arithmetic not in ("int8", "fp32"):
        raise ValueError(f"arithmetic {arithmetic!r}: expected int8 or fp32")
    f = profile.figures
    if arithmetic == "int8":
        e_mul, e_add = f["int8_mult"], f["int32_add"]
    else:
        e_mul, e_add = f["fp32_mult"], f["fp32_add"]
    mem = f["dram_read_64bit"]
    t = total_ops(ops)

    def arith_pj(c: Mapping[str, float]) -> float:
        return c["mul"] * (e_mul.low or 0.0) + (c["add"] + c["cmp"]) * (e_add.low or 0.0)

    hash_ops = ops.get("hash", dict.fromkeys(OPS_KINDS, 0.0))
    hashing = arith_pj(hash_ops)
    arith = arith_pj(t) - hashing
    nbytes = t["weight_bytes"] + t["table_bytes"]
    per_byte_low, per_byte_high = (mem.low or 0.0) / 8.0, (mem.high or 0.0) / 8.0
    parts = {
        "arithmetic": arith * PJ,
        "hashing": hashing * PJ,
        "weight_memory": t["weight_bytes"] * per_byte_low * PJ,
        "table_memory": t["table_bytes"] * per_byte_low * PJ,
        "weight_memory_high": t["weight_bytes"] * per_byte_high * PJ,
        "table_memory_high": t["table_bytes"] * per_byte_high * PJ,
    }
    return Estimate(
        profile=profile.name,
        kind=profile.kind,
        low=(arith + hashing + nbytes * per_byte_low) * PJ,
        high=(arith + hashing + nbytes * per_byte_high) * PJ,
        parts=parts,
        inputs={"arithmetic": arithmetic, "ops": t, "bytes": nbytes},
    )


def _figure(profile: Profile, key: str, overrides: Mapping[str, float]) -> float | None:
    if key in overrides:
        return float(overrides[key])
    fig = profile.figures.get(key)
    return fig.low if fig is not None and fig.usable else None


def _estimate_instructions(
    profile: Profile, instructions: float | None, overrides: Mapping[str, float]
) -> Estimate:
    keys = ("amps_per_mhz", "core_volts", "cycles_per_instruction")
    vals = {k: _figure(profile, k, overrides) for k in keys}
    missing = [k for k, v in vals.items() if v is None]
    if instructions is None:
        missing.insert(0, "instructions")
    inputs: dict[str, Any] = {"instructions": instructions, **vals}
    inputs["overridden"] = sorted(k for k in overrides if k in keys)
    if missing:
        return _null(profile, inputs, missing)
    assert instructions is not None
    cycles = instructions * float(vals["cycles_per_instruction"] or 0.0)
    joules = cycles * float(vals["core_volts"] or 0.0) * float(vals["amps_per_mhz"] or 0.0) / 1e6
    inputs["cycles"] = cycles
    return Estimate(profile.name, profile.kind, joules, joules, inputs=inputs)


def _null(profile: Profile, inputs: dict[str, Any], missing: list[str]) -> Estimate:
    """The estimate a profile cannot give: figures it needs are not published or not given."""
    return Estimate(
        profile.name,
        profile.kind,
        None,
        None,
        inputs=inputs,
        missing=missing,
        note="null: " + ", ".join(missing) + " not published or not given",
    )


def _estimate_board(
    profile: Profile, seconds: float | None, overrides: Mapping[str, float]
) -> Estimate:
    keys = ("supply_volts", "idle_amps", "stress_amps", "cores")
    vals = {k: _figure(profile, k, overrides) for k in keys}
    missing = [k for k, v in vals.items() if v is None]
    if seconds is None:
        missing.insert(0, "seconds_per_inference (on the board)")
    inputs: dict[str, Any] = {"seconds_per_inference": seconds, **vals}
    if missing:
        return _null(profile, inputs, missing)
    assert seconds is not None
    watts = (
        (float(vals["stress_amps"] or 0.0) - float(vals["idle_amps"] or 0.0))
        * float(vals["supply_volts"] or 0.0)
        / float(vals["cores"] or 1.0)
    )
    inputs["marginal_watts_per_core"] = watts
    return Estimate(profile.name, profile.kind, watts * seconds, watts * seconds, inputs=inputs)
