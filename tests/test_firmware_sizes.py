"""`make sizes` (firmware_tests/sizes.py): the tables it prints have the structure and sane values
that firmware_tests/README.md quotes, and the largest models it finds fit their boards.

These tests need the cross builds and the QEMU runs of `make -C firmware_tests check`, which
runs them as its last step (check-sizes) with EDGE_LSH_FIRMWARE_BUILD set to its build directory.
Without that variable this module defines no test: the top-level pytest run comes before any
cross build (and a skip would fail CI).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FW = ROOT / "firmware_tests"
BUILD_ENV = os.environ.get("EDGE_LSH_FIRMWARE_BUILD", "")

KB = 1024
BOARD_OF = {"m33": "Pico 2", "m0plus": "Pico"}  # the README's board names
FLASH = {"m33": 4096.0, "m0plus": 2048.0}  # KB
SRAM = {"m33": 520.0, "m0plus": 264.0}  # KB
FIRMWARE_HEADER = [
    "target",
    "flash total",
    "kernel",
    "libc+libgcc",
    "harness",
    "test models + expected",
    "RAM total",
    ".data",
    ".bss w/o arena",
    "arena",
    "stack reserve",
]
LINUX_HEADER = [
    "target",
    "libedge_lsh.a text/data/bss",
    "edge-lsh-run (static) text/data/bss",
    "file",
]
LINUX_TARGETS = ["host", "aarch64-a53", "aarch64-a72", "aarch64-a76", "armv7", "armv6"]
FIT_HEADER = ["board", "network", "tables in", "largest H", "flash used", "RAM used", "limit"]
# README's largest H against the one sizes.py finds now: the search is bracketed this tightly
FIT_TOLERANCE = 0.03


def load_sizes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fw_sizes", FW / "sizes.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fw_sizes"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


Table = tuple[str, list[str], list[list[str]]]  # heading above it, header, rows


def tables(markdown: str) -> list[Table]:
    """Every markdown table with the heading above it."""
    out: list[Table] = []
    heading = ""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.startswith("| ") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("| "):
                rows.append([c.strip() for c in lines[i].strip("|").split("|")])
                i += 1
            assert all(len(r) == len(header) for r in rows), f"ragged table under {heading!r}"
            out.append((heading, header, rows))
            continue
        i += 1
    return out


def kb(cell: str) -> float:
    """The first 'N.N KB' figure of a cell."""
    m = re.match(r"^(\d+\.\d) KB\b", cell)
    assert m, f"not a KB figure: {cell!r}"
    return float(m.group(1))


def table_under(found: list[Table], prefix: str, n: int = 0) -> tuple[list[str], list[list[str]]]:
    """The n-th table under a heading that starts with prefix."""
    matches = [(h, r) for heading, h, r in found if heading.startswith(prefix)]
    assert len(matches) > n, f"no table {n} under a heading {prefix!r}: {[t[0] for t in found]}"
    return matches[n]


def fits(sizer: Any, n_in: int, width: int, budget: tuple[int, int]) -> bool:
    """An n_in-width-10 model, tables built in RAM, within (flash, RAM) bytes."""
    f, a = sizer.measure(n_in, 10, width, False)
    return f <= budget[0] and a <= budget[1]


if BUILD_ENV:
    BUILD = Path(BUILD_ENV).resolve()

    @pytest.fixture(scope="module")
    def sizes() -> ModuleType:
        return load_sizes()

    @pytest.fixture(scope="module")
    def report() -> list[Table]:
        """sizes.py's own output (without the largest-model search, which takes minutes)."""
        out = subprocess.run(
            [sys.executable, str(FW / "sizes.py"), "--build", str(BUILD), "--no-fit"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return tables(out)

    @pytest.fixture(scope="module")
    def readme() -> list[Table]:
        text = (FW / "README.md").read_text()
        return tables(text[text.index("## Sizes") :])

    def test_firmware_table(report: list[Table]) -> None:
        header, rows = table_under(report, "Cortex-M firmware images")
        assert header == FIRMWARE_HEADER
        assert [r[0] for r in rows] == ["m33", "m0plus"]
        arena_bytes = int((BUILD / "arena_bytes").read_text())
        for row in rows:
            t = row[0]
            flash, kernel, libc, harness = (kb(c) for c in row[1:5])
            models, expect = (kb(c) for c in row[5].split(" + "))
            ram, data, bss, arena, stack = (kb(c) for c in row[6:11])
            for name, v in [("flash", flash), ("kernel", kernel), ("libc", libc)]:
                assert v > 0, f"{t}: {name} {v} KB"
            assert harness > 0 and models > 0 and expect > 0 and ram > 0 and stack > 0, row
            assert data >= 0 and bss > 0, row
            # flash total is the parts plus section alignment padding; RAM total the parts (each
            # figure rounded to 0.1 KB)
            parts = kernel + libc + harness + models + expect
            assert parts - 0.3 <= flash <= parts + 1.0, f"{t}: flash {flash} KB, parts {parts} KB"
            assert abs(ram - (data + bss + arena + stack)) <= 0.3, f"{t}: RAM {ram} KB"
            assert flash <= FLASH[t] and ram <= SRAM[t], f"{t}: {flash} / {ram} KB over the board"
            # the arena is the largest one the embedded models ask for (build/arena_bytes)
            assert abs(arena - arena_bytes / KB) <= 0.05, f"{t}: arena {arena} KB"
            # the inference kernel stays small on a microcontroller
            assert kernel < 64, f"{t}: kernel {kernel} KB"
            # the stack high-water mark from the firmware's QEMU run (make check-m33 / m0plus)
            m = re.search(r"\((\d+) B used", row[10])
            assert m, f"{t}: no stack high-water mark (run make -C firmware_tests check-{t})"
            assert 0 < int(m.group(1)) < stack * KB, row[10]

    def test_linux_table(report: list[Table]) -> None:
        header, rows = table_under(report, "Linux targets")
        assert header == LINUX_HEADER
        want = LINUX_TARGETS + (
            ["armv6-linux"] if (BUILD / "armv6-linux" / "edge-lsh-run").exists() else []
        )
        assert [r[0] for r in rows] == want
        for t, lib, runner, file in rows:
            lt, ld, lb = (int(v) for v in lib.split(" / "))
            rt, rd, rb = (int(v) for v in runner.split(" / "))
            # the kernel has no static state: no .data, no .bss (re-entrant, arena only)
            assert lt > 10_000 and ld == 0 and lb == 0, f"{t}: libedge_lsh.a {lib}"
            # the runner links the inference part of the archive only (no float training):
            # dynamically linked on the host, its text can be smaller than the whole archive's
            assert rt > 10_000 and rd >= 0 and rb >= 0, f"{t}: edge-lsh-run {runner}"
            assert kb(file) * KB >= rt + rd, f"{t}: file {file} smaller than its text + data"

    def test_readme_quotes_the_same_tables(report: list[Table], readme: list[Table]) -> None:
        """The README's firmware table has sizes.py's columns and targets, and its figures are
        not stale by more than 10% (they are quoted from an earlier commit)."""
        got_header, got = table_under(report, "Cortex-M firmware images")
        header, rows = table_under(readme, "Sizes")
        assert header == got_header
        assert [r[0] for r in rows] == [r[0] for r in got]
        for quoted, now in zip(rows, got):
            for col in ("flash total", "RAM total", "arena"):
                i = header.index(col)
                q, n = kb(quoted[i]), kb(now[i])
                assert abs(q - n) <= 0.1 * n, f"README {quoted[0]} {col}: {q} KB, now {n} KB"
        _, linux = table_under(readme, "Sizes", 1)
        assert {r[0].split()[0] for r in linux} <= set(LINUX_TARGETS + ["armv6-linux"])

    def test_largest_models_fit(sizes: ModuleType, readme: list[Table]) -> None:
        """The README's largest-model rows with tables built in RAM (the RAM-limited rows; the
        tables-in-flash rows take ~30 s more): sizes.py's search, bracketed around the quoted H,
        finds a width within 3% of it whose flash and RAM figures fit the board and whose next
        width exceeds the limit the README names."""
        header, rows = table_under(readme, "Largest model per board")
        assert header == FIT_HEADER
        assert len(rows) == 8
        fws = {t: sizes.firmware(BUILD, t) for t in BOARD_OF}
        sizer = sizes.ModelSizer(BUILD)
        try:
            checked = 0
            for board, network, tables_in, h, flash_used, ram_used, limit in rows:
                t = "m33" if board.startswith("Pico 2") else "m0plus"
                assert board.startswith(BOARD_OF[t])
                assert tables_in in ("RAM", "flash") and limit in ("RAM", "flash")
                assert kb(flash_used) <= FLASH[t] and kb(ram_used) <= SRAM[t], (board, network)
                if tables_in != "RAM":
                    continue
                n_in = int(re.match(r"\S+ (\d+)-H-10$", network).group(1))  # type: ignore[union-attr]
                fw = fws[t]
                flash_free = int(FLASH[t] * KB) - fw.flash_fixed
                ram_free = int(SRAM[t] * KB) - fw.ram_fixed
                quoted = int(h)
                lo, hi = int(quoted * (1 - FIT_TOLERANCE)), int(quoted * (1 + FIT_TOLERANCE)) + 1

                budget = (flash_free, ram_free)
                assert fits(sizer, n_in, lo, budget) and not fits(sizer, n_in, hi, budget), (
                    f"{board} {network}: the largest H is no longer within 3% of the README's "
                    f"{quoted} (run make -C firmware_tests sizes and update the README)"
                )
                w, f, a, binds = sizer.largest(n_in, 10, False, flash_free, ram_free, lo, hi)
                assert lo <= w < hi
                assert f <= flash_free and a <= ram_free
                assert fw.flash_fixed + f <= FLASH[t] * KB and fw.ram_fixed + a <= SRAM[t] * KB
                assert not fits(sizer, n_in, w + 1, budget)
                assert binds == limit == "RAM", (board, network, binds, limit)
                checked += 1
            assert checked == 4
        finally:
            shutil.rmtree(sizer.tmp, ignore_errors=True)
