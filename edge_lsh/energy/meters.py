"""Energy meters: read what a board really draws, as joules since the meter started.

    powercap[:DIR]          Linux powercap / RAPL: DIR/energy_uj, a counter in microjoules that
                            wraps around at DIR/max_energy_range_uj (x86 hosts; often root-only).
                            Default DIR /sys/class/powercap/intel-rapl:0
    ina219:BUS:ADDR[:OHMS]  TI INA219 on I2C bus BUS (/dev/i2c-BUS) at ADDR: shunt voltage
                            (register 1, 10 uV per bit) / OHMS (default 0.1, the shunt of common
                            breakout boards: give yours) x bus voltage (register 2, bits 15-3,
                            4 mV per bit)
    ina260:BUS:ADDR         TI INA260 (integrated shunt): current (register 1, 1.25 mA per bit,
                            signed) x bus voltage (register 2, 1.25 mV per bit); its
                            manufacturer id (register 0xFE) must read 0x5449
    pmic                    Raspberry Pi 5: `vcgencmd pmic_read_adc`, the sum of V x I over the
                            rails it reports (this undercounts the whole board)
    csv:FILE                a USB power meter's log, read as it grows: a header row, then a time
                            column (`time`, `timestamp` or `t`, Unix seconds) and either `watts`
                            (`power`, `w`) or `volts` and `amps` (`voltage`/`v`, `current`/`a`)
    joulescope              a Joulescope over USB (the optional `joulescope` package)

Every meter reports joules accumulated since start(). Counter meters (powercap) and power
meters (the rest) are polled by a background thread, so a counter's wrap-around between two
reads of the caller is still seen (a counter must be polled at least once per wrap period) and
a power reading is integrated over time (trapezoids). Reading a meter is the only thing they do:
no meter writes to a device.

smbus2 and joulescope are imported only when such a meter is opened; a bus object with
``read_i2c_block_data(addr, reg, n)`` (smbus2.SMBus's method) can be passed instead (tests use
a fake bus).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_lsh.errors import EdgeLshError

__all__ = [
    "MeterError",
    "Meter",
    "CounterMeter",
    "PowerMeter",
    "PowercapMeter",
    "INA219Meter",
    "INA260Meter",
    "PmicMeter",
    "CsvMeter",
    "JoulescopeMeter",
    "parse_pmic",
    "open_meter",
    "METER_HELP",
    "POWERCAP_DEFAULT",
]

POWERCAP_DEFAULT = "/sys/class/powercap/intel-rapl:0"
METER_HELP = (
    "powercap[:DIR] (Linux RAPL), ina219:BUS:ADDR[:SHUNT_OHMS], ina260:BUS:ADDR (I2C current "
    "sensors), pmic (Raspberry Pi 5 vcgencmd pmic_read_adc), csv:FILE (a USB power meter's "
    "log), joulescope"
)
INA260_MANUFACTURER = 0x5449  # "TI"


class MeterError(EdgeLshError):
    """A meter cannot be opened or read: a missing sensor, device or file, or a reading that
    makes no sense. The command line turns it into a message and exit status 2."""


Clock = Callable[[], float]


class Meter:
    """Joules since start(), read at any time from any thread; a background thread polls
    every ``interval`` seconds."""

    name = "meter"

    def __init__(self, interval: float = 0.02, clock: Clock = time.monotonic) -> None:
        if not interval > 0:
            raise ValueError(f"meter poll interval {interval!r}: must be > 0")
        self.interval = float(interval)
        self.clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._joules = 0.0
        self._error: BaseException | None = None

    # subclasses: _begin() takes the first reading, _poll() accumulates into self._joules
    def _begin(self) -> None:
        raise NotImplementedError

    def _poll(self) -> None:
        raise NotImplementedError

    def start(self) -> Meter:
        with self._lock:
            self._joules = 0.0
            self._begin()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-poll", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self._lock:
                    self._poll()
            except BaseException as exc:  # reported by the next energy() call
                self._error = exc
                return

    def energy(self) -> float:
        """Joules since start(), including a fresh reading."""
        return self.reading()[0]

    def reading(self) -> tuple[float, float]:
        """Joules since start() with a fresh reading, and the time of that reading on the
        meter's clock: what a window's power is computed from (the caller's own clock, read
        after this returns, can be late by a thread switch)."""
        if self._error is not None:
            raise MeterError(f"{self.name}: {self._error}") from self._error
        with self._lock:
            self._poll()
            return self._joules, self._reading_time()

    def _reading_time(self) -> float:
        """When the last reading was taken (subclasses that keep it say so exactly)."""
        return self.clock()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.close()

    def close(self) -> None:
        """Release the device (subclasses)."""

    def __enter__(self) -> Meter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CounterMeter(Meter):
    """A meter that reads a cumulative counter of `unit` joules that wraps at `wrap()`."""

    unit = 1.0

    def _read(self) -> int:
        raise NotImplementedError

    def _wrap(self) -> int:
        raise NotImplementedError

    def _begin(self) -> None:
        self._range = self._wrap()
        if self._range <= 0:
            raise MeterError(f"{self.name}: counter range {self._range} is not positive")
        self._last = self._read()

    def _poll(self) -> None:
        now = self._read()
        delta = now - self._last
        if delta < 0:  # wrapped around (once: poll more often than the wrap period)
            delta += self._range
        self._joules += delta * self.unit
        self._last = now


class PowerMeter(Meter):
    """A meter that reads instantaneous watts; energy is their integral over time."""

    def _watts(self) -> float:
        raise NotImplementedError

    def _begin(self) -> None:
        self._t = self.clock()
        self._w = self._watts()

    def _poll(self) -> None:
        t, w = self.clock(), self._watts()
        self._joules += 0.5 * (w + self._w) * (t - self._t)
        self._t, self._w = t, w

    def _reading_time(self) -> float:
        return self._t  # the integral ends exactly here


# ----------------------------------------------------------------------------- powercap


class PowercapMeter(CounterMeter):
    """Linux powercap (Intel RAPL): DIR/energy_uj in microjoules, wrapping at
    DIR/max_energy_range_uj."""

    unit = 1e-6

    def __init__(self, path: str | os.PathLike[str] = POWERCAP_DEFAULT, **kw: Any) -> None:
        super().__init__(**kw)
        self.path = Path(path)
        self.name = f"powercap:{self.path}"
        energy = self.path / "energy_uj"
        if not energy.exists():
            raise MeterError(
                f"{self.path}: no powercap energy counter (energy_uj) there; this machine has no "
                "RAPL zone at that path (list them with: ls /sys/class/powercap). Virtual "
                "machines usually expose none, and AMD CPUs need the amd_energy or a recent "
                "intel_rapl driver"
            )
        if not os.access(energy, os.R_OK):
            raise MeterError(
                f"{energy}: not readable: RAPL counters are root-only on most kernels; run as "
                f"root, or grant read access (sudo chmod a+r {energy})"
            )

    def _int(self, name: str) -> int:
        p = self.path / name
        for _ in range(5):  # a value being rewritten can read empty: read again
            try:
                text = p.read_text().strip()
            except OSError as exc:
                raise MeterError(f"{p}: cannot read ({exc.strerror or exc})") from None
            if text:
                try:
                    return int(text)
                except ValueError:
                    raise MeterError(f"{p}: {text[:40]!r} is not a whole number") from None
        raise MeterError(f"{p}: reads empty")

    def _read(self) -> int:
        return self._int("energy_uj")

    def _wrap(self) -> int:
        return self._int("max_energy_range_uj") + 1


# ----------------------------------------------------------------------------- I2C sensors


def _parse_int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected a number such as 1 or 0x40") from None


class _I2CMeter(PowerMeter):
    chip = "I2C sensor"

    def __init__(self, bus: Any, addr: int, **kw: Any) -> None:
        super().__init__(**kw)
        if not 0x03 <= addr <= 0x77:
            raise ValueError(f"I2C address {addr:#x}: must be in 0x03..0x77")
        self.addr = addr
        self._own_bus = False
        if isinstance(bus, int):
            bus = self._open_bus(bus)
            self._own_bus = True
        self.bus = bus
        self.name = f"{self.chip.lower()}@{addr:#04x}"

    def _open_bus(self, number: int) -> Any:
        if number < 0:
            raise ValueError(f"I2C bus {number}: must be >= 0")
        try:
            from smbus2 import SMBus
        except ImportError:
            raise MeterError(
                f"{self.chip} meters need the smbus2 package: pip install 'edge-lsh[energy]'"
            ) from None
        dev = f"/dev/i2c-{number}"
        if not os.path.exists(dev):
            raise MeterError(f"{dev}: no such I2C bus (enable I2C, e.g. raspi-config)")
        try:
            return SMBus(number)
        except OSError as exc:
            raise MeterError(f"{dev}: cannot open ({exc.strerror or exc})") from None

    def _reg(self, reg: int) -> int:
        """A 16-bit register, most significant byte first (as the INA2xx send it)."""
        try:
            hi, lo = self.bus.read_i2c_block_data(self.addr, reg, 2)
        except OSError as exc:
            raise MeterError(
                f"{self.chip} at {self.addr:#04x}: no answer reading register {reg:#04x} "
                f"({exc.strerror or exc}); is the sensor wired and the address right?"
            ) from None
        return ((int(hi) & 0xFF) << 8) | (int(lo) & 0xFF)

    @staticmethod
    def _signed(v: int) -> int:
        return v - 0x10000 if v & 0x8000 else v

    def close(self) -> None:
        if self._own_bus:
            try:
                self.bus.close()
            except OSError:
                pass


class INA219Meter(_I2CMeter):
    """TI INA219: watts = shunt voltage / shunt ohms x bus voltage (no calibration register
    is written: nothing is ever written to the sensor)."""

    chip = "INA219"

    def __init__(self, bus: Any, addr: int = 0x40, shunt_ohms: float = 0.1, **kw: Any) -> None:
        if not (shunt_ohms > 0 and shunt_ohms < 1e6):
            raise ValueError(f"shunt resistance {shunt_ohms!r} ohms: must be > 0")
        self.shunt_ohms = float(shunt_ohms)
        super().__init__(bus, addr, **kw)

    def _watts(self) -> float:
        shunt_v = self._signed(self._reg(0x01)) * 10e-6
        bus = self._reg(0x02)
        if bus & 0x1:
            raise MeterError(f"INA219 at {self.addr:#04x}: math overflow flag set (OVF)")
        bus_v = (bus >> 3) * 4e-3
        return bus_v * shunt_v / self.shunt_ohms


class INA260Meter(_I2CMeter):
    """TI INA260: watts = current register x bus voltage register."""

    chip = "INA260"

    def __init__(self, bus: Any, addr: int = 0x40, **kw: Any) -> None:
        super().__init__(bus, addr, **kw)
        maker = self._reg(0xFE)
        if maker != INA260_MANUFACTURER:
            raise MeterError(
                f"INA260 at {self.addr:#04x}: manufacturer id reads {maker:#06x}, expected "
                f"{INA260_MANUFACTURER:#06x} (TI): another chip at that address?"
            )

    def _watts(self) -> float:
        amps = self._signed(self._reg(0x01)) * 1.25e-3
        volts = self._reg(0x02) * 1.25e-3
        return amps * volts


# ----------------------------------------------------------------------------- Pi 5 PMIC

_PMIC_LINE = re.compile(r"^\s*(\S+?)_([AV])\s+(?:current|volt)\(\d+\)=([-+0-9.eE]+)[AV]\s*$")


def parse_pmic(text: str) -> float:
    """Watts from `vcgencmd pmic_read_adc` output: the sum over rails of V x I, matching
    NAME_A current(n)=...A with NAME_V volt(n)=...V. MeterError when no rail pairs up."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _PMIC_LINE.match(line)
        if m:
            (amps if m.group(2) == "A" else volts)[m.group(1)] = float(m.group(3))
    rails = sorted(set(amps) & set(volts))
    if not rails:
        raise MeterError(
            "vcgencmd pmic_read_adc printed no rail with both a current and a voltage "
            "(not a Raspberry Pi 5?)"
        )
    return sum(amps[r] * volts[r] for r in rails)


class PmicMeter(PowerMeter):
    """Raspberry Pi 5 PMIC rails through `vcgencmd pmic_read_adc` (each reading runs the
    command: poll every 0.1 s or slower)."""

    name = "pmic"

    def __init__(
        self, run: Callable[[], str] | None = None, interval: float = 0.1, **kw: Any
    ) -> None:
        super().__init__(interval=interval, **kw)
        if run is None:
            exe = shutil.which("vcgencmd")
            if exe is None:
                raise MeterError(
                    "pmic: vcgencmd not found (the pmic meter is for a Raspberry Pi 5)"
                )

            def run() -> str:
                res = subprocess.run(
                    [exe, "pmic_read_adc"], capture_output=True, text=True, timeout=5
                )
                if res.returncode != 0:
                    raise MeterError(f"vcgencmd pmic_read_adc failed: {res.stderr.strip()}")
                return res.stdout

        self._run_cmd = run

    def _watts(self) -> float:
        return parse_pmic(self._run_cmd())


# ----------------------------------------------------------------------------- CSV logs

_TIME = ("time", "timestamp", "t", "unix_time")
_WATTS = ("watts", "power", "w", "power_w")
_VOLTS = ("volts", "voltage", "v", "voltage_v")
_AMPS = ("amps", "current", "a", "current_a")


class CsvMeter(Meter):
    """A USB power meter's CSV log (Unix-time samples of watts, or volts and amps), read as it
    grows: joules = the trapezoid integral of the samples between start() and the reading,
    by the wall clock (``wall``)."""

    def __init__(self, path: str | os.PathLike[str], wall: Clock = time.time, **kw: Any) -> None:
        kw.setdefault("interval", 0.5)
        super().__init__(**kw)
        self.path = Path(path)
        self.name = f"csv:{self.path}"
        self.wall = wall
        if not self.path.is_file():
            raise MeterError(f"{self.path}: no such power log")
        self._samples()  # the header must make sense now

    def _samples(self) -> list[tuple[float, float]]:
        try:
            with open(self.path, newline="") as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError) as exc:
            raise MeterError(f"{self.path}: cannot read ({exc})") from None
        if not rows:
            raise MeterError(f"{self.path}: empty power log (expected a header row)")
        head = [h.strip().lower() for h in rows[0]]

        def col(names: tuple[str, ...]) -> int | None:
            return next((head.index(n) for n in names if n in head), None)

        ti, wi, vi, ai = col(_TIME), col(_WATTS), col(_VOLTS), col(_AMPS)
        if ti is None or (wi is None and (vi is None or ai is None)):
            raise MeterError(
                f"{self.path}: header {rows[0]} needs a time column and watts, or volts and amps"
            )
        out = []
        for n, row in enumerate(rows[1:], start=2):
            if not row or all(not c.strip() for c in row):
                continue
            try:
                t = float(row[ti])
                w = float(row[wi]) if wi is not None else float(row[vi]) * float(row[ai])  # type: ignore[index]
            except (ValueError, IndexError):
                if n == len(rows):  # the last line may be half written
                    continue
                raise MeterError(f"{self.path}, line {n}: not numbers: {row}") from None
            out.append((t, w))
        return out

    def _begin(self) -> None:
        self._t0 = self.wall()

    def _poll(self) -> None:
        t1 = self.wall()
        pts = [(t, w) for t, w in self._samples() if self._t0 <= t <= t1]
        self._joules = sum(
            0.5 * (w0 + w1) * (t1_ - t0_) for (t0_, w0), (t1_, w1) in zip(pts, pts[1:])
        )
        self._t1 = t1

    def _reading_time(self) -> float:
        return self._t1  # on the log's (wall) clock, like its samples


# ----------------------------------------------------------------------------- Joulescope


class JoulescopeMeter(PowerMeter):
    """A Joulescope (JS110/JS220) through the `joulescope` package's v1 API: the mean of
    current x voltage over a short read each poll. Not tested against hardware here."""

    name = "joulescope"

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("interval", 0.05)
        super().__init__(**kw)
        try:
            import joulescope
        except ImportError:
            raise MeterError(
                "the joulescope meter needs the joulescope package: pip install joulescope"
            ) from None
        try:
            self._dev = joulescope.scan_require_one(config="auto")
            self._dev.open()
        except Exception as exc:  # the package raises its own kinds
            raise MeterError(f"joulescope: no device could be opened ({exc})") from None

    def _watts(self) -> float:
        data = self._dev.read(contiguous_duration=0.01)
        return float((data[:, 0] * data[:, 1]).mean())

    def close(self) -> None:
        try:
            self._dev.close()
        except Exception:
            pass


# ----------------------------------------------------------------------------- specs


def open_meter(spec: str) -> Meter:
    """The meter a --meter SPEC names (see the module docstring). ValueError for a malformed
    spec, MeterError for a device or file that is not there."""
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    kind = {"rapl": "powercap", "pi5-pmic": "pmic"}.get(kind, kind)  # the names the docs use
    parts = rest.split(":") if rest else []
    if kind == "powercap":
        return PowercapMeter(rest or POWERCAP_DEFAULT)
    if kind in ("ina219", "ina260"):
        want = "BUS:ADDR[:SHUNT_OHMS]" if kind == "ina219" else "BUS:ADDR"
        if len(parts) < 2 or len(parts) > (3 if kind == "ina219" else 2):
            raise ValueError(f"meter {spec!r}: expected {kind}:{want}, e.g. {kind}:1:0x40")
        bus = _parse_int(parts[0], "I2C bus")
        addr = _parse_int(parts[1], "I2C address")
        if not 0x03 <= addr <= 0x77:
            raise ValueError(f"meter {spec!r}: I2C address {addr:#x} is outside 0x03..0x77")
        if bus < 0:
            raise ValueError(f"meter {spec!r}: I2C bus {bus} must be >= 0")
        if kind == "ina260":
            return INA260Meter(bus, addr)
        ohms = 0.1
        if len(parts) == 3:
            try:
                ohms = float(parts[2])
            except ValueError:
                raise ValueError(f"meter {spec!r}: shunt {parts[2]!r} is not a number") from None
        return INA219Meter(bus, addr, shunt_ohms=ohms)
    if kind == "pmic" and not rest:
        return PmicMeter()
    if kind == "csv" and rest:
        return CsvMeter(rest)
    if kind == "joulescope" and not rest:
        return JoulescopeMeter()
    raise ValueError(f"meter {spec!r}: expected one of {METER_HELP}")
