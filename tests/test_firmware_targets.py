"""The cross-compile flags have one source (issue 8): edge_lsh/deploy/targets.py. The
firmware_tests Makefile includes build/targets.mk, generated from it, and defines none of the
deploy targets' variables itself; the firmware linker scripts' memory regions are the ones
targets.py states. Needs only make and a Python (no cross toolchain)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_lsh.deploy.targets import COMMON_CFLAGS, MAKE_BUILDS, TARGETS, make_variables

ROOT = Path(__file__).resolve().parents[1]
FT = ROOT / "firmware_tests"
FIRMWARE = ROOT / "native" / "firmware"
VARS = ("CC", "AR", "CFLAGS", "LDFLAGS", "RUN")

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def print_targets(build: Path) -> dict[tuple[str, str], str]:
    """make print-targets with its build folder elsewhere (the repository's is left alone)."""
    res = subprocess.run(
        ["make", "-s", "-C", str(FT), f"B={build}", f"PYTHON={sys.executable}", "print-targets"],
        capture_output=True,
        text=True,
        check=True,
    )
    out: dict[tuple[str, str], str] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"^(\S+) (\w+)=(.*)$", line)
        if m:
            out[(m.group(1), m.group(2))] = m.group(3).strip()
    return out


@needs_make
def test_makefile_uses_the_flags_of_targets_py(tmp_path):
    got = print_targets(tmp_path)
    assert {b for b, _ in got} == set(MAKE_BUILDS)
    for build, name in MAKE_BUILDS.items():
        t = TARGETS[name]
        assert got[(build, "target")] == name
        assert got[(build, "CC")] == t.cc
        assert got[(build, "AR")] == t.tool_prefix + "ar"
        assert got[(build, "CFLAGS")] == " ".join(t.cflags)
        assert got[(build, "LDFLAGS")] == " ".join(t.ldflags)
        assert got[(build, "RUN")] == " ".join(t.qemu)
    assert (tmp_path / "targets.mk").read_text() == make_variables()


def test_makefile_defines_none_of_the_deploy_builds_itself():
    text = (FT / "Makefile").read_text()
    assert "include $(B)/targets.mk" in text
    assert re.search(r"^\$\(B\)/targets\.mk: \$\(TARGETS_PY\)$", text, re.M)
    assert "CSTD := $(COMMON_CFLAGS) " in text
    for build in MAKE_BUILDS:
        for var in (*VARS, "LDS"):
            assert not re.search(rf"^{var}_{re.escape(build)}\s*[:+?]?=", text, re.M), (
                f"firmware_tests/Makefile defines {var}_{build}: it belongs in targets.py"
            )
    # nor does it spell out a deploy target's CPU flags anywhere; the test-only builds excepted
    # (armv6 newlib, m0plus, and the ARMv7 control program of the armv6 check, all newlib)
    for name in MAKE_BUILDS.values():
        for flag in TARGETS[name].cflags:
            if flag.startswith(("-mcpu=", "-march=", "-mfpu=")):
                for line in text.splitlines():
                    if flag in line:
                        test_only = re.match(r"^CFLAGS_(armv6|m0plus) :=", line)
                        assert test_only or "--specs=rdimon.specs" in line, line


@needs_make
def test_targets_mk_is_remade_when_targets_py_is_newer(tmp_path):
    print_targets(tmp_path)
    mk = tmp_path / "targets.mk"
    mk.write_text("# stale\n")
    os.utime(mk, (0, 0))  # older than targets.py
    got = print_targets(tmp_path)
    assert mk.read_text() == make_variables()
    assert got[("m33", "CC")] == TARGETS["pico2"].cc


def test_one_build_per_cpu():
    """pi-zero2 and pi3 are the same Cortex-A53 build; every other target has its own."""
    assert set(MAKE_BUILDS.values()) | {"pi-zero2"} == set(TARGETS)
    a, b = TARGETS["pi-zero2"], TARGETS["pi3"]
    assert (a.cc, a.cflags, a.ldflags, a.qemu) == (b.cc, b.cflags, b.ldflags, b.qemu)
    assert COMMON_CFLAGS[0] == "-std=c99" and "-march=native" not in " ".join(COMMON_CFLAGS)


def test_targets_py_runs_alone():
    """The Makefile runs targets.py as a plain script: it must not import edge_lsh."""
    src = (ROOT / "edge_lsh" / "deploy" / "targets.py").read_text()
    assert not re.search(r"^\s*(from|import) edge_lsh", src, re.M)
    res = subprocess.run(
        [sys.executable, "-S", str(ROOT / "edge_lsh" / "deploy" / "targets.py"), "--make"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    assert res.stdout == make_variables()


def memory_regions(script: Path) -> dict[str, tuple[int, int]]:
    """{'FLASH': (origin, length), 'RAM': (...)} from a GNU ld MEMORY block."""
    sizes = {"": 1, "K": 1024, "M": 1024 * 1024}
    out = {}
    for m in re.finditer(
        r"^\s*(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9a-fA-F]+),\s*LENGTH\s*=\s*(\d+)([KM]?)",
        script.read_text(),
        re.M,
    ):
        out[m.group(1)] = (int(m.group(2), 16), int(m.group(3)) * sizes[m.group(4)])
    return out


def test_linker_scripts_say_what_targets_py_says():
    for t in TARGETS.values():
        if t.firmware is None:
            continue
        for mem in (t.firmware.board, t.firmware.qemu):
            regions = memory_regions(FIRMWARE / mem.linker_script)
            assert regions["FLASH"] == (mem.flash_origin, mem.flash_bytes), mem.linker_script
            assert regions["RAM"] == (mem.ram_origin, mem.ram_bytes), mem.linker_script
            assert mem.ram_bytes == t.ram_bytes
            text = (FIRMWARE / mem.linker_script).read_text()
            m = re.search(r"STACK_SIZE = DEFINED\(STACK_SIZE\) \? STACK_SIZE : (\d+)K;", text)
            assert m and int(m.group(1)) * 1024 == t.firmware.stack_bytes, mem.linker_script
