"""Energy: modelled joules per inference and per training step from the kernel's op counters
(or counted instructions, or a board's time), and measured joules from real meters.

    profiles   named sets of published figures, each with its source (null where none is
               published): horowitz45, rp2350, pi4, pi5
    model      inference_ops / training_ops (the kernel's counters per inference or step) and
               estimate(profile, ...) -> Estimate
    opcount    the same counts derived independently from the numpy oracles (the check)
    meters     powercap (RAPL), INA219 / INA260 (I2C), Raspberry Pi 5 PMIC, CSV logs, Joulescope
    measure    measure(meter, work): joules per inference above idle; fit_costs: per-op costs
               fitted to measurements; SyntheticMeter

Modelled kernel energy and measured board energy answer different questions: they are
reported side by side, never added together.
"""

from edge_lsh.energy.measure import Measurement, SyntheticMeter, fit_costs, measure
from edge_lsh.energy.meters import MeterError, open_meter
from edge_lsh.energy.model import Estimate, estimate, inference_ops, training_ops
from edge_lsh.energy.profiles import PROFILES, Figure, Profile, get_profile

__all__ = [
    "PROFILES",
    "Figure",
    "Profile",
    "get_profile",
    "Estimate",
    "estimate",
    "inference_ops",
    "training_ops",
    "Measurement",
    "measure",
    "fit_costs",
    "SyntheticMeter",
    "MeterError",
    "open_meter",
]
