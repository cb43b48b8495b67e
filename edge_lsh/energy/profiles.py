"""Energy profiles: what one operation, one instruction or one second of a board costs, with
the source of every number.

A profile never holds a number without its source. Where no published figure was found the
value is None and the note says so; an estimate that needs it is then None too (reported as
null), never filled in with a guess. Figures that the project's notes mark "verify before
citing" keep ``verified=False`` and are not used by any estimate.

    horowitz45   per-operation energies at 45 nm, 0.9 V (Horowitz, ISSCC 2014): the modelled
                 kernel energy from the op counters, memory traffic included
    rp2350       Pico 2 (RP2350, Cortex-M33): current per MHz x instructions per inference
                 (counted under QEMU, tools/energy/m33_count.py)
    pi4, pi5     board power from the Raspberry Pi documentation x time per inference measured
                 on the board itself

Board figures (pi4, pi5, MLPerf Tiny) and modelled kernel figures (horowitz45) answer
different questions and are reported separately, never added or mixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Figure", "Profile", "PROFILES", "REFERENCES", "get_profile", "load_profile"]

HOROWITZ = (
    "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, "
    "45 nm, 0.9 V (as tabled in the project notes, GUIDE.md section 5)"
)
RPI_POWER_DOC = (
    "Raspberry Pi documentation, computers/raspberry-pi, 'Power Supply' "
    "(raspberrypi/documentation: documentation/asciidoc/computers/raspberry-pi/"
    "power-supplies.adoc)"
)
MLPERF_TINY = (
    "MLPerf Tiny v1.1 results (EEMBC EnergyRunner; as tabled in the project notes, "
    "GUIDE.md section 5)"
)


@dataclass(frozen=True)
class Figure:
    """One number of a profile. ``low``/``high`` differ when the source gives a range;
    ``value`` is None when no published figure was found (``note`` says so)."""

    low: float | None
    unit: str
    source: str
    high: float | None = None
    verified: bool = True
    note: str = ""

    def __post_init__(self) -> None:
        if self.high is None:
            object.__setattr__(self, "high", self.low)

    @property
    def value(self) -> float | None:
        return self.low

    @property
    def usable(self) -> bool:
        """A figure an estimate may use: published, found and not marked unverified."""
        return self.low is not None and self.verified

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"value": self.low, "unit": self.unit, "source": self.source}
        if self.high != self.low:
            out["high"] = self.high
        if not self.verified:
            out["verified"] = False
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Profile:
    """A named set of figures and how they turn counts into joules (``kind``):

    ops           joules = sum over phases and op kinds of count x energy per op
    instructions  joules = instructions x cycles per instruction x supply volts x amps per MHz
                  / 1e6 (amps per MHz x volts = joules per million cycles)
    board         joules = (active - idle board current) x supply volts x seconds per inference
                  (the board's own time: measured on it)"""

    name: str
    title: str
    kind: str
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def figure(self, key: str) -> Figure:
        return self.figures[key]

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "figures": {k: f.as_dict() for k, f in self.figures.items()},
            "notes": list(self.notes),
        }


def _h(value: float, unit: str = "pJ", **kw: object) -> Figure:
    return Figure(value, unit, HOROWITZ, **kw)  # type: ignore[arg-type]


HOROWITZ45 = Profile(
    name="horowitz45",
    title="45 nm, 0.9 V per-operation energies (Horowitz, ISSCC 2014): modelled kernel energy",
    kind="ops",
    figures={
        "int8_mult": _h(0.2),
        "int32_add": _h(0.1),
        "int32_mult": _h(3.1),
        "fp32_add": _h(0.9),
        "fp32_mult": _h(3.7),
        "cache_8kb_read_64bit": _h(10.0),
        "cache_32kb_read_64bit": _h(
            20.0, verified=False, note="secondary sources; verify before citing (not used)"
        ),
        "cache_1mb_read_64bit": _h(
            100.0, verified=False, note="secondary sources; verify before citing (not used)"
        ),
        "dram_read_64bit": Figure(1300.0, "pJ", HOROWITZ, high=2600.0),
    },
    notes=(
        "Fixed-point inference: every counted multiplication is costed as an int8 multiply "
        "(the kernel's int8 x int16 products; the one int32 requantizing multiply per active "
        "neuron is costed the same, an undercount), additions and comparisons as int32 "
        "additions (a comparison is a subtraction: an assumption, Horowitz gives no compare).",
        "Float training and inference: multiplications as fp32 multiplies, additions and "
        "comparisons as fp32 additions.",
        "Memory: every weight and table byte the kernel reads is costed as a DRAM read (1.3-2.6 "
        "nJ per 64 bits, i.e. 162.5-325 pJ per byte): the 784-1000-1000-10 model (2 MB) does not "
        "fit any cache level Horowitz gives a verified figure for (8 KB). The low and high "
        "estimates use the two ends of his DRAM range.",
    ),
)

RP2350 = Profile(
    name="rp2350",
    title="Raspberry Pi Pico 2 (RP2350, Cortex-M33): current per MHz x counted instructions",
    kind="instructions",
    figures={
        "clock_mhz": Figure(
            150.0,
            "MHz",
            "Raspberry Pi's RP2350 announcement (8 August 2024: dual Cortex-M33 or Hazard3 at "
            "150 MHz), as summarised by Wikipedia's RP2350 article",
            note="informative: the energy formula does not use the clock",
        ),
        "core_volts": Figure(
            None,
            "V",
            "RP2350 datasheet (core supply DVDD)",
            note="not looked up here: no primary copy of the datasheet was available to check; "
            "left null",
        ),
        "amps_per_mhz": Figure(
            None,
            "A/MHz",
            "RP2350 datasheet, power consumption section",
            note="no published current-per-MHz figure was found (the RP2040/RP2350 datasheets "
            "tabulate whole use cases: media player, BOOTSEL, SLEEP, DORMANT); left null, so "
            "the energy per inference is null until a measured figure is given",
        ),
        "cycles_per_instruction": Figure(
            None,
            "cycles",
            "not published for this code",
            note="QEMU counts instructions, not cycles; the M33 at 150 MHz executes code in place "
            "from QSPI flash through a cache, so cycles per instruction depend on the model's "
            "layout; left null (set it from a measurement with --cpi)",
        ),
    },
    notes=(
        "Instructions per inference come from tools/energy/m33_count.py: the kernel built with "
        "-mcpu=cortex-m33 -mthumb -mfpu=fpv5-sp-d16 -O2 and run on QEMU's mps2-an505 board, "
        "counted as tools/bench/count_instructions.py does (in_asm,exec,nochain logs; count "
        "with N inputs minus count with 1, over N - 1).",
    ),
)


def _pi_amps(value: float | None, what: str, note: str = "", verified: bool = True) -> Figure:
    return Figure(value, "A", f"{RPI_POWER_DOC}: {what}", verified=verified, note=note)


PI_VOLTS = Figure(5.1, "V", f"{RPI_POWER_DOC}: 'All models require a 5.1V supply'")

PI4 = Profile(
    name="pi4",
    title="Raspberry Pi 4 Model B: published board currents x time per inference on the board",
    kind="board",
    figures={
        "supply_volts": PI_VOLTS,
        "idle_amps": _pi_amps(0.6, "Raspberry Pi 4B, Idle, Avg (measured June 2019)"),
        "active_amps": _pi_amps(0.6, "Raspberry Pi 4B, typical bare-board active current"),
        "stress_amps": _pi_amps(1.2, "Raspberry Pi 4B, Stress, Avg (all four cores loaded)"),
        "cores": Figure(
            4.0, "cores", "Raspberry Pi 4 Model B specifications (BCM2711, quad Cortex-A72)"
        ),
    },
    notes=(
        "Marginal board energy of one inference = (stress - idle) current / 4 cores x 5.1 V x "
        "seconds per inference: the documented all-core stress increment shared equally among "
        "the four cores (an assumption: one inference keeps one core busy). The seconds must be "
        "the board's own: run `edge-lsh energy` on the Pi with --on-board.",
    ),
)

PI5 = Profile(
    name="pi5",
    title="Raspberry Pi 5: published board currents x time per inference on the board",
    kind="board",
    figures={
        "supply_volts": PI_VOLTS,
        "idle_amps": _pi_amps(
            None,
            "Raspberry Pi 5, idle",
            note="the documentation's table of idle and stress currents stops at the Pi 4; "
            "no published Pi 5 figure found: null",
        ),
        "active_amps": _pi_amps(
            0.8,
            "Raspberry Pi 5, typical bare-board active current",
            verified=False,
            note="seen only in copies that quote the live page (the stored copy of "
            "power-supplies.adoc predates the Pi 5); verify before citing",
        ),
        "stress_amps": _pi_amps(
            None, "Raspberry Pi 5, stress", note="not published in the same table: null"
        ),
        "cores": Figure(4.0, "cores", "Raspberry Pi 5 specifications (BCM2712, quad Cortex-A76)"),
    },
    notes=(
        "Same formula as pi4; with no published idle or stress current for the Pi 5 the "
        "modelled energy is null. Measure it: `edge-lsh energy m.elsh --meter pmic` on the Pi 5 "
        "(vcgencmd pmic_read_adc).",
    ),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (HOROWITZ45, RP2350, PI4, PI5)}

# Board-level measurements for scale only (never added to a modelled figure).
REFERENCES: dict[str, dict[str, object]] = {
    "mlperf_tiny_stm32u575_kws": {
        "board": "STM32U575 (Cortex-M33)",
        "benchmark": "keyword spotting",
        "microjoules_per_inference": 1004.0,
        "milliwatts": 26.2,
        "source": MLPERF_TINY,
    },
    "mlperf_tiny_stm32l4r5_ad": {
        "board": "STM32L4R5 (Cortex-M4)",
        "benchmark": "anomaly detection (a fully connected autoencoder)",
        "microjoules_per_inference": 529.0,
        "milliwatts": 69.8,
        "source": MLPERF_TINY,
    },
}


def load_profile(path: str) -> Profile:
    """A profile from a JSON file a user wrote or edited: the shape `edge-lsh energy
    --list-profiles --json` prints for one profile ({"name", "title", "kind", "figures": {key:
    {"value", "unit", "source", ["high", "verified", "note"]}}, "notes"}). Every figure must
    name its source. ValueError saying what is wrong otherwise."""
    import json
    import math
    from pathlib import Path

    try:
        text = Path(path).read_text(encoding="utf-8")
        if len(text) > 1 << 20:
            raise ValueError("larger than 1 MB")
        raw = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"profile {path}: cannot read it as JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("kind") not in ("ops", "instructions", "board"):
        raise ValueError(f"profile {path}: needs a 'kind' of ops, instructions or board")
    base = PROFILES.get(str(raw.get("name", ""))) or next(
        p for p in PROFILES.values() if p.kind == raw["kind"]
    )
    figures: dict[str, Figure] = {}
    for key, f in (raw.get("figures") or {}).items():
        ok = isinstance(f, dict) and isinstance(f.get("source"), str) and f["source"].strip()
        value, high = (f.get("value"), f.get("high", f.get("value"))) if ok else (None, None)
        for v in (value, high):
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                ok = False
        if not ok:
            raise ValueError(
                f"profile {path}: figure {key!r} needs a finite value >= 0 (or null), a unit "
                "and a source"
            )
        figures[str(key)] = Figure(
            None if value is None else float(value),
            str(f.get("unit", "")),
            str(f["source"]),
            high=None if high is None else float(high),
            verified=bool(f.get("verified", True)),
            note=str(f.get("note", "")),
        )
    missing = sorted(set(base.figures) - set(figures))
    if missing:
        raise ValueError(f"profile {path}: a {raw['kind']} profile needs figures {missing}")
    return Profile(
        name=str(raw.get("name") or Path(path).stem),
        title=str(raw.get("title", "a user profile")),
        kind=str(raw["kind"]),
        figures=figures,
        notes=tuple(str(n) for n in raw.get("notes", ())),
    )


def get_profile(name: str) -> Profile:
    """The profile called name, or read from a JSON file when name ends in .json;
    ValueError naming the known ones otherwise."""
    if name.lower().endswith(".json"):
        return load_profile(name)
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown energy profile {name!r}: expected one of {', '.join(PROFILES)}"
        ) from None
