"""The RP2350 flash driver (native/firmware/flash_rp2350.c) on the host, against a simulated
bootrom and NOR flash (native/firmware/flash_rp2350_hosttest.c): the ROM table lookup (the five
codes, Secure Arm entries), each erase and program as the window connect, exit XIP, erase or
program, flush, XIP setup from the SRAM copy, with interrupts masked, the QSPI pads restored
and the flash unreadable (PROT_NONE) while XIP is off; the offset math (region offset + 2 MB,
nothing outside the region touched); the geometry checks; and slots.c's A/B saves through it.
Built with -Werror and, where the compiler has them, AddressSanitizer and UBSan. What the
linked board image looks like is checked in tests/test_pico2_image.py; a real RP2350 is not
available here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NATIVE = ROOT / "native"
CC = shutil.which("cc") or shutil.which("gcc")

pytestmark = pytest.mark.skipif(CC is None, reason="no host C compiler")


def build(out: Path, sanitize: bool) -> Path:
    exe = out / ("flash_host_san" if sanitize else "flash_host")
    cmd = [
        str(CC),
        "-std=c99",
        "-O1",
        "-g",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-DFW_FLASH_RP2350_HOST_TEST",
        f"-I{NATIVE / 'include'}",
        f"-I{NATIVE / 'src'}",
        f"-I{NATIVE / 'firmware'}",
        str(NATIVE / "firmware" / "flash_rp2350.c"),
        str(NATIVE / "firmware" / "flash_rp2350_hosttest.c"),
        str(NATIVE / "src" / "slots.c"),
        str(NATIVE / "src" / "crc32.c"),
        "-o",
        str(exe),
    ]
    if sanitize:
        cmd[1:1] = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def sanitizers_work(tmp: Path) -> bool:
    src = tmp / "probe.c"
    src.write_text("int main(void) { return 0; }\n")
    r = subprocess.run(
        [str(CC), "-fsanitize=address,undefined", str(src), "-o", str(tmp / "probe")],
        capture_output=True,
    )
    return r.returncode == 0 and subprocess.run([str(tmp / "probe")]).returncode == 0


@pytest.mark.parametrize("sanitize", [False, True], ids=["plain", "asan-ubsan"])
def test_driver_against_a_simulated_bootrom_and_nor_flash(tmp_path, sanitize):
    if sanitize and not sanitizers_work(tmp_path):
        pytest.skip("no AddressSanitizer/UBSan in this compiler")
    exe = build(tmp_path, sanitize)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "flash_rp2350 host test: PASS" in r.stdout and not r.stderr, r.stdout + r.stderr


def test_the_host_test_fails_when_the_driver_programs_straight_from_flash(tmp_path):
    """The simulation catches the mistake it exists for: a driver that hands the ROM a pointer
    into flash (read while XIP is off) instead of its SRAM copy fails the run."""
    src = (NATIVE / "firmware" / "flash_rp2350.c").read_text()
    good = "(const uint8_t *)page, FW_RP2350_PAGE)"
    assert src.count(good) == 1
    bad = tmp_path / "flash_rp2350.c"
    bad.write_text(src.replace(good, "data + done, FW_RP2350_PAGE)"))
    (tmp_path / "flash_rp2350.h").write_text((NATIVE / "firmware" / "flash_rp2350.h").read_text())
    exe = tmp_path / "bad"
    subprocess.run(
        [
            str(CC),
            "-std=c99",
            "-O1",
            "-DFW_FLASH_RP2350_HOST_TEST",
            f"-I{tmp_path}",
            f"-I{NATIVE / 'include'}",
            f"-I{NATIVE / 'src'}",
            str(bad),
            str(NATIVE / "firmware" / "flash_rp2350_hosttest.c"),
            str(NATIVE / "src" / "slots.c"),
            str(NATIVE / "src" / "crc32.c"),
            "-o",
            str(exe),
        ],
        check=True,
        capture_output=True,
    )
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "PASS" not in r.stdout
