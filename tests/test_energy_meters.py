"""The meters against fakes (this machine has no RAPL and no sensors): a fake powercap tree
whose counter a background thread advances and wraps, a fake I2C bus for the INA219 and
INA260, Raspberry Pi 5 PMIC text, a growing CSV log. None needs smbus2 or joulescope."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_lsh.energy.measure import measure
from edge_lsh.energy.meters import (
    CsvMeter,
    INA219Meter,
    INA260Meter,
    MeterError,
    PmicMeter,
    PowercapMeter,
    PowerMeter,
    open_meter,
    parse_pmic,
)

RANGE_UJ = 1_000_000  # the counter wraps at 1 J: at 3 W about every 0.33 s


# The fake zone's writer, a process of its own: a thread of the test process shared the GIL with
# the measured loop and, on a loaded machine, fell tens of milliseconds behind (a 2% check of
# 1.5 s allows 30 ms), which failed the test now and then without any fault in the meter.
_RAPL_WRITER = r"""
import os, sys, time
zone, idle_w, busy_w, step, total = sys.argv[1], *map(float, sys.argv[2:6])
wrap = int(sys.argv[6])
busy_flag, stop_flag = os.path.join(zone, ".busy"), os.path.join(zone, ".stop")
wraps = 0
print("ready", flush=True)
last = time.monotonic()
while not os.path.exists(stop_flag):
    time.sleep(step)
    now = time.monotonic()
    watts = busy_w if os.path.exists(busy_flag) else idle_w
    before = int(total) // wrap
    total += watts * (now - last) * 1e6
    if int(total) // wrap != before:
        wraps += int(total) // wrap - before
        with open(os.path.join(zone, ".wraps"), "w") as f:
            f.write(str(wraps))
    last = now
    with open(os.path.join(zone, ".energy_uj.tmp"), "w") as f:
        f.write(f"{int(total) % wrap}\n")
    os.replace(os.path.join(zone, ".energy_uj.tmp"), os.path.join(zone, "energy_uj"))
"""


class _Flag:
    """set()/clear()/is_set() like threading.Event, kept as a file the writer process sees."""

    def __init__(self, path: Path):
        self.path, self._set = path, False

    def set(self) -> None:
        if not self._set:
            self.path.touch()
            self._set = True

    def clear(self) -> None:
        if self._set:
            self.path.unlink()
            self._set = False

    def is_set(self) -> bool:
        return self._set


class FakeRapl:
    """A powercap zone whose energy_uj a separate process advances at `watts` (idle or busy,
    as `busy` says), wrapping at max_energy_range_uj + 1, rewritten atomically every `step`
    seconds; `wraps` says how often the counter has wrapped so far."""

    def __init__(self, root: Path, idle_w: float, busy_w: float, step: float = 0.002):
        self.dir = root / "intel-rapl:0"
        self.dir.mkdir()
        (self.dir / "max_energy_range_uj").write_text(f"{RANGE_UJ - 1}\n")
        self.idle_w, self.busy_w, self.step = idle_w, busy_w, step
        self.busy = _Flag(self.dir / ".busy")
        self.total_uj = 900_000.0  # starts close to the wrap
        (self.dir / "energy_uj").write_text(f"{int(self.total_uj) % RANGE_UJ}\n")
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> FakeRapl:
        args = [self.idle_w, self.busy_w, self.step, self.total_uj, RANGE_UJ]
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _RAPL_WRITER, str(self.dir), *map(str, args)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None and self._proc.stdout.readline() == "ready\n"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        (self.dir / ".stop").touch()
        self._proc.wait(30)

    @property
    def wraps(self) -> int:
        f = self.dir / ".wraps"
        return int(f.read_text()) if f.exists() else 0


def test_powercap_joules_per_inference_across_wraparound(tmp_path):
    """3 W working, 1 W idle: joules per inference x inferences = 2 W x elapsed within 2%,
    with the counter wrapping during the measurement."""
    with FakeRapl(tmp_path, idle_w=1.0, busy_w=3.0) as rapl:
        meter = PowercapMeter(rapl.dir, interval=0.01)

        def work() -> int:
            rapl.busy.set()
            time.sleep(0.005)
            return 1

        m = measure(meter, work, idle_seconds=0.6, seconds=1.2)
        rapl.busy.clear()
        wraps = rapl.wraps
    assert wraps >= 3
    assert m.idle_watts == pytest.approx(1.0, rel=0.02)
    assert m.watts == pytest.approx(3.0, rel=0.02)
    assert m.joules_per_inference * m.inferences == pytest.approx(2.0 * m.seconds, rel=0.02)


def test_counter_wraps_are_added_back(tmp_path):
    zone = tmp_path / "z"
    zone.mkdir()
    (zone / "max_energy_range_uj").write_text("999\n")
    (zone / "energy_uj").write_text("900\n")
    meter = PowercapMeter(zone, interval=3600)
    meter.start()
    try:
        (zone / "energy_uj").write_text("100\n")  # 900 -> 999 -> 0 -> 100: 200 uJ
        assert meter.energy() == pytest.approx(200e-6)
        (zone / "energy_uj").write_text("150\n")
        assert meter.energy() == pytest.approx(250e-6)
    finally:
        meter.stop()


def test_powercap_errors_are_clear(tmp_path):
    with pytest.raises(MeterError, match="no powercap energy counter"):
        PowercapMeter(tmp_path / "missing")
    zone = tmp_path / "z"
    zone.mkdir()
    (zone / "energy_uj").write_text("abc\n")
    (zone / "max_energy_range_uj").write_text("999\n")
    with pytest.raises(MeterError, match="not a whole number"):
        PowercapMeter(zone).start()


class FakeBus:
    """read_i2c_block_data as smbus2.SMBus has it, over a dict of 16-bit registers."""

    def __init__(self, addr: int, regs: dict[int, int]):
        self.addr, self.regs = addr, regs
        self.closed = False

    def read_i2c_block_data(self, addr: int, reg: int, n: int) -> list[int]:
        if addr != self.addr:
            raise OSError(121, "Remote I/O error")
        v = self.regs[reg] & 0xFFFF
        return [v >> 8, v & 0xFF][:n]

    def close(self) -> None:
        self.closed = True


def test_ina260_reads_watts_from_current_and_voltage():
    bus = FakeBus(0x40, {0xFE: 0x5449, 0x01: 800, 0x02: 4000})  # 1.0 A, 5.0 V
    meter = INA260Meter(bus, 0x40)
    assert meter._watts() == pytest.approx(5.0)
    bus.regs[0x01] = 0x10000 - 800  # -1.0 A (two's complement)
    assert meter._watts() == pytest.approx(-5.0)


def test_ina260_wrong_chip_or_no_answer_is_a_meter_error():
    with pytest.raises(MeterError, match="manufacturer id"):
        INA260Meter(FakeBus(0x40, {0xFE: 0x1234}), 0x40)
    with pytest.raises(MeterError, match="no answer"):
        INA260Meter(FakeBus(0x41, {0xFE: 0x5449}), 0x40)


def test_ina219_watts_from_the_shunt():
    # shunt 0.05 V over 0.1 ohm = 0.5 A; bus 5.0 V = 1250 x 4 mV in bits 15..3
    bus = FakeBus(0x40, {0x01: 5000, 0x02: 1250 << 3})
    meter = INA219Meter(bus, 0x40, shunt_ohms=0.1)
    assert meter._watts() == pytest.approx(2.5)
    bus.regs[0x02] = (1250 << 3) | 1  # OVF
    with pytest.raises(MeterError, match="overflow"):
        meter._watts()


def test_ina260_measurement_with_a_fake_bus():
    """Idle 5 W, 7 W while working: the power meter integrates its readings."""
    regs = {0xFE: 0x5449, 0x01: 800, 0x02: 4000}
    meter = INA260Meter(FakeBus(0x40, regs), 0x40, interval=0.005)

    def work() -> int:
        regs[0x01] = 1120  # 1.4 A x 5 V = 7 W
        time.sleep(0.005)
        return 2

    m = measure(meter, work, idle_seconds=0.2, seconds=0.4)
    assert m.idle_watts == pytest.approx(5.0, rel=1e-3)
    assert m.joules_per_inference * m.inferences == pytest.approx(2.0 * m.seconds, rel=0.05)


def test_window_power_uses_the_meters_reading_times():
    """measure() divides a window's energy by the time between the meter's own readings. It
    used to read its own clock after each reading returned, so a thread switch in between (the
    meter's poller holding the GIL, on a loaded machine) shortened the idle window and gave
    5.05 W for a constant 5 W. Here 10 ms pass right after the idle window's first reading is
    taken, before measure() can look at any clock."""
    now = [0.0]
    working = [False]
    readings = [0]

    class Constant(PowerMeter):
        name = "constant"

        def _watts(self) -> float:
            readings[0] += 1
            if readings[0] == 2:  # the first reading after start(): a thread switch follows
                now[0] += 0.01
            return 7.0 if working[0] else 5.0

    def sleep(s: float) -> None:
        now[0] += s

    def work() -> int:
        working[0] = True
        now[0] += 0.01
        return 1

    meter = Constant(interval=3600.0, clock=lambda: now[0])
    m = measure(meter, work, idle_seconds=1.0, seconds=0.1, clock=lambda: now[0], sleep=sleep)
    assert m.idle_watts == pytest.approx(5.0, rel=1e-12)
    assert m.idle_seconds == pytest.approx(1.01, rel=1e-12)
    # two readings bound the working window (no poll between): 5 W and 7 W, the trapezoid 6 W
    assert m.joules == pytest.approx(6.0 * m.seconds, rel=1e-12)


PMIC = """\
     3V7_WL_SW_A current(0)=0.00000000A
       3V3_SYS_A current(1)=0.05000000A
      VDD_CORE_A current(7)=0.80000000A
     3V7_WL_SW_V volt(8)=3.60000000V
       3V3_SYS_V volt(9)=3.30000000V
      VDD_CORE_V volt(15)=0.75000000V
         EXT5V_V volt(24)=5.10000000V
"""


def test_pmic_sums_rails_with_current_and_voltage():
    """Lines in the format of `vcgencmd pmic_read_adc` (NAME_A current(n)=...A, NAME_V
    volt(n)=...V; written for this test, not recorded on a Pi 5): EXT5V has no current."""
    assert parse_pmic(PMIC) == pytest.approx(0.05 * 3.3 + 0.8 * 0.75)
    with pytest.raises(MeterError, match="no rail"):
        parse_pmic('error=1 error_msg="Command not registered"')
    meter = PmicMeter(run=lambda: PMIC, interval=0.01)
    assert meter._watts() == pytest.approx(0.765)


def test_csv_log_integrates_samples_in_the_window(tmp_path):
    log = tmp_path / "usb.csv"
    log.write_text("time,volts,amps\n" + "".join(f"{t},5.0,0.4\n" for t in range(100, 111)))
    now = [103.0]
    meter = CsvMeter(log, wall=lambda: now[0], interval=3600)
    meter.start()
    try:
        now[0] = 108.0
        assert meter.energy() == pytest.approx(2.0 * 5)  # 2 W from t=103 to 108
    finally:
        meter.stop()
    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n1,2\n")
    with pytest.raises(MeterError, match="needs a time column"):
        CsvMeter(bad)


@pytest.mark.parametrize(
    "spec,err",
    [
        ("ina260:1", ValueError),
        ("ina260:x:0x40", ValueError),
        ("ina219:1:0x90", ValueError),
        ("ina219:1:0x40:abc", ValueError),
        ("nosuch", ValueError),
        ("pmic:3", ValueError),
        ("powercap:/no/such/zone", MeterError),
        ("csv:/no/such.csv", MeterError),
    ],
)
def test_bad_meter_specs(spec, err):
    with pytest.raises(err):
        open_meter(spec)


def test_i2c_meters_without_smbus2_say_what_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_smbus(name, *a, **kw):
        if name == "smbus2":
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_smbus)
    with pytest.raises(MeterError, match="smbus2"):
        open_meter("ina260:1:0x40")
