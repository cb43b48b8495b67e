"""Measured energy per inference, and per-operation costs fitted to measurements.

    measure(meter, work, ...)      idle power first, then the work for a while: a Measurement
                                   whose joules_per_inference excludes the idle power
    fit_costs(ops_rows, joules)    least-squares energy per op kind from several measurements
    SyntheticMeter                 a meter whose device costs known joules per counted op (for
                                   checking measure and fit end to end without hardware)

The idle baseline is measured on the same meter just before the work, so the result is the
energy the inferences added to an otherwise idle board: (energy during the work - idle watts x
its duration) / inferences.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge_lsh.energy.meters import Meter, MeterError
from edge_lsh.energy.model import OPS_KINDS, total_ops

__all__ = ["Measurement", "measure", "fit_costs", "SyntheticMeter"]


@dataclass
class Measurement:
    meter: str
    idle_seconds: float  # 0 when the idle power was given (--idle-watts), not measured
    idle_watts: float
    seconds: float
    joules: float
    watts: float
    inferences: int
    joules_per_inference: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    meter: Meter,
    work: Callable[[], int],
    *,
    idle_seconds: float = 2.0,
    seconds: float = 5.0,
    min_inferences: int = 1,
    idle_watts: float | None = None,
    warmup_seconds: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Measurement:
    """Measure idle watts for idle_seconds (or take idle_watts as given), warm up for
    warmup_seconds (caches, clocks, the first call's one-time work), then call work() (which
    runs some inferences and returns how many) until `seconds` have passed and at least
    min_inferences were run, while the meter samples in its own thread. Each window's power
    is its energy over the time between the meter's own readings (Meter.reading), not over
    `clock`, which only paces the loops. The meter is started here and stopped at the end."""
    if seconds <= 0 or (idle_watts is None and idle_seconds <= 0):
        raise ValueError("idle and measuring times must be > 0 seconds")
    if idle_watts is not None and not (idle_watts >= 0 and np.isfinite(idle_watts)):
        raise ValueError(f"idle power {idle_watts} W: must be a finite number >= 0")
    meter.start()
    try:
        if idle_watts is None:
            e0, t0 = meter.reading()
            sleep(idle_seconds)
            e1, t1 = meter.reading()
            idle_w = (e1 - e0) / (t1 - t0) if t1 > t0 else -1.0
        else:
            t0, t1, idle_w = 0.0, 1.0, float(idle_watts)
        t_warm = clock()
        while clock() - t_warm < warmup_seconds:
            work()
        e2, t2 = meter.reading()
        n, c2 = 0, clock()
        while n < min_inferences or clock() - c2 < seconds:
            done = int(work())
            if done < 1:
                raise ValueError("the measured work ran no inference")
            n += done
        e3, t3 = meter.reading()
    finally:
        meter.stop()
    if not (t1 > t0 and t3 > t2):
        raise MeterError(f"{meter.name}: the clock did not advance")
    joules, elapsed = e3 - e2, t3 - t2
    if joules < 0 or idle_w < 0:
        raise MeterError(f"{meter.name}: energy went backwards (a counter reset?)")
    if joules <= idle_w * elapsed:
        raise MeterError(
            f"{meter.name}: no energy above idle ({joules / elapsed:.4g} W working, "
            f"{idle_w:.4g} W idle): the meter does not see the work"
        )
    return Measurement(
        meter=meter.name,
        idle_seconds=0.0 if idle_watts is not None else t1 - t0,
        idle_watts=idle_w,
        seconds=elapsed,
        joules=joules,
        watts=joules / elapsed,
        inferences=n,
        joules_per_inference=(joules - idle_w * elapsed) / n,
    )


def fit_costs(
    ops_rows: Sequence[Mapping[str, Mapping[str, float]] | Mapping[str, float]],
    joules: Sequence[float],
    kinds: Sequence[str] = OPS_KINDS,
) -> dict[str, Any]:
    """Joules per operation of each kind in `kinds`, fitted by least squares to measured
    joules per inference: joules_i ~ sum_k cost_k x count_ik. Each row of ops_rows is the
    per-inference counts of one measured configuration (by phase, or summed). Needs at least
    as many configurations as kinds, differing enough to tell the kinds apart: the result says
    how well (condition number, relative residual) and, when there are more configurations
    than kinds, a 95% confidence interval of each cost (Student's t on the residual). The kind
    ``bytes`` is weight_bytes + table_bytes: the issue's fit of joules per multiplication and
    per byte is ``kinds=("mul", "bytes")``."""
    rows: list[list[float]] = []
    for r in ops_rows:
        flat: dict[str, float] = {}
        for key, value in r.items():
            if isinstance(value, Mapping):
                flat = total_ops(r)  # type: ignore[arg-type]
                break
            flat[key] = float(value)
        flat["bytes"] = flat.get("weight_bytes", 0.0) + flat.get("table_bytes", 0.0)
        rows.append([float(flat[k]) for k in kinds])
    A = np.asarray(rows, dtype=np.float64)
    b = np.asarray(joules, dtype=np.float64)
    if A.shape[0] != b.shape[0]:
        raise ValueError(f"{A.shape[0]} configurations but {b.shape[0]} measurements")
    if A.shape[0] < len(kinds):
        raise ValueError(
            f"fitting {len(kinds)} costs needs at least {len(kinds)} measured configurations, "
            f"got {A.shape[0]}"
        )
    scale = A.max(axis=0)
    scale[scale == 0] = 1.0
    As = A / scale  # columns of comparable size: the solve and its condition number mean more
    x, *_ = np.linalg.lstsq(As, b, rcond=None)
    costs = np.asarray(x, dtype=np.float64) / scale
    fitted = A @ costs
    resid = float(np.linalg.norm(fitted - b)) / max(float(np.linalg.norm(b)), 1e-300)
    dof = A.shape[0] - A.shape[1]
    ci: dict[str, list[float]] | None = None
    if dof > 0:  # standard errors from the residual, scaled back to joules per op
        sigma2 = float(np.sum((fitted - b) ** 2)) / dof
        cov = sigma2 * np.linalg.pinv(As.T @ As)
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None)) / scale
        t95 = _T95.get(dof, 1.96)
        ci = {k: [float(c - t95 * s), float(c + t95 * s)] for k, c, s in zip(kinds, costs, se)}
    return {
        "joules_per_op": {k: float(c) for k, c in zip(kinds, costs)},
        "confidence_95": ci,
        "condition_number": float(np.linalg.cond(As)),
        "relative_residual": resid,
        "configurations": int(A.shape[0]),
    }


# two-sided 95% quantiles of Student's t by degrees of freedom (normal beyond 10)
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228}  # fmt: skip


class SyntheticMeter(Meter):
    """A device that draws idle_watts plus `costs[kind]` joules per op the kernel counts: the
    energy of model.ops() (all phases) since start, plus idle_watts x elapsed time on `clock`.
    Optional multiplicative noise on every reading of the work (``noise``, e.g. 0.01) drawn
    from a seeded generator."""

    name = "synthetic"

    def __init__(
        self,
        model: Any,
        costs: Mapping[str, float],
        idle_watts: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        noise: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(interval=3600.0, clock=clock)
        self.model, self.costs, self.idle_watts = model, dict(costs), float(idle_watts)
        self.noise = float(noise)
        self._rng = np.random.default_rng(seed)

    def _work_joules(self) -> float:
        t = total_ops(self.model.ops())
        return sum(self.costs.get(k, 0.0) * t[k] for k in OPS_KINDS)

    def _begin(self) -> None:
        self._t0 = self.clock()
        self._w0 = self._work_joules()

    def _poll(self) -> None:
        work = self._work_joules() - self._w0
        if self.noise:
            work *= 1.0 + self.noise * float(self._rng.standard_normal())
        self._joules = self.idle_watts * (self.clock() - self._t0) + work
