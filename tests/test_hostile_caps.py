"""Per-file work limits of .elsh files (issue 15, export/FORMAT.md 5.8).

The per-layer limits of FORMAT.md 5.1 let a file of a few kilobytes ask for a gigabyte: 8
layers of L = 1024 tables of K = 15 bits, tables built at load, need 1.07 GB of bucket offsets
from 3,210 bytes; 8 layers alternating 1 and 1092 wide need 1.15 GB and 67 million
multiplications per input from 52 KB. A file's arena, its work per input and its work at load
are now bounded by its own size: max(2^25, 16 F), max(2^25, 16 F), max(2^25, 1024 F). Both
readers refuse more with ELSH_FMT_LIMITS, at open, before any of it is spent; the largest
real model (784-1000-1000-10 at 5%) loads, with or without stored tables, far inside them.
Files are built with the writer's helpers (model_sections / assemble)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest

from edge_lsh.errors import ElshFormatError
from edge_lsh.fixed import FORMAT_ERRORS, FixedPointModel
from edge_lsh.format import describe, elsh_bytes, read_elsh
from edge_lsh.format import layout as LAY
from edge_lsh.format.writer import Section, assemble, model_sections
from edge_lsh.native import lib
from edge_lsh.network import LSHConfig, Network
from edge_lsh.oracle import hashgen as H
from edge_lsh.oracle.qmodel import QLayer, QModel
from edge_lsh.quantize import quantize

LIMITS = ("ARENA_BASE", "ARENA_PER_BYTE", "INPUT_WORK_BASE", "INPUT_WORK_PER_BYTE")
LIMITS += ("LOAD_WORK_BASE", "LOAD_WORK_PER_BYTE")


def test_the_limits_are_the_same_in_c_and_python() -> None:
    for name in LIMITS:
        assert getattr(LAY, f"LIMIT_{name}") == getattr(lib, f"ELSH_LIMIT_{name}"), name
    assert FORMAT_ERRORS[lib.ELSH_FMT_LIMITS] == "ELSH_FMT_LIMITS"
    assert LAY.file_limit(2**25, 16, 10) == 2**25 and LAY.file_limit(2**25, 16, 2**22) == 2**26


# ----------------------------------------------------------------------------- files


def layer(n_in: int, n_out: int, is_output: bool, seed: int = 0) -> QLayer:
    rng = np.random.default_rng(seed)
    return QLayer(
        n_in=n_in,
        n_out=n_out,
        k=n_out,
        is_output=is_output,
        weight_bits=8,
        weights=rng.integers(-127, 128, size=(n_out, n_in), dtype=np.int8),
        bias=np.zeros(n_out, np.int32),
        multiplier=np.full(n_out, 1 << 30, np.int32),
        shift=np.zeros(n_out, np.int8),
        in_zero_point=0,
        out_zero_point=0,
        in_scale=1.0,
        out_scale=1.0,
    )


def make_lsh(
    L: QLayer, family: int, bits: int, tables: int, *, nnz: int = 0, binw: int = 0
) -> None:
    """Layer L hashes with functions drawn from the seed (hash_source 0), pool 1, k = 1."""
    L.use_lsh, L.family, L.bits, L.n_tables, L.k = True, family, bits, tables, 1
    L.pool, L.hash_dim, L.ternary_nnz, L.dwta_bin = 1, L.n_in, nnz, binw
    L.dwta_per_table = H.dwta_per_table(bits, binw) if family == H.DWTA else 0


def chain(widths: list[int], bits: int, tables: int, lsh: list[bool] | None = None) -> QModel:
    """Layers widths[0] -> widths[1] -> ...; every one (or those lsh marks) SimHash K, L."""
    layers = []
    for i in range(len(widths) - 1):
        L = layer(widths[i], widths[i + 1], i == len(widths) - 2, i)
        if lsh is None or lsh[i]:
            make_lsh(L, H.SIMHASH, bits, tables)
        layers.append(L)
    return QModel(n_in=widths[0], n_classes=widths[-1], input_inv_scale=1.0, seed=1, layers=layers)


def file_of(qm: QModel, tables: bool = False) -> bytes:
    """Laid out as the writer does (no check by reading: the file may break the limits)."""
    flags = LAY.HEADER_FLAG_TABLES if tables and any(L.use_lsh for L in qm.layers) else 0
    return assemble(model_sections(qm, tables=tables), flags=flags)


def totals(qm: QModel, tables: bool = False) -> dict[str, int]:
    """Arena, work per input and work at load, with layout.py's arithmetic."""
    return LAY.file_totals(qm.layers, qm.n_in, tables_stored=tables)


def verdicts(data: bytes, full: bool = True) -> dict[str, Any]:
    """The code each reader gives (None: accepted), the seconds each took, and the arena the
    C reader asked for (when it accepted). full=False leaves out read_elsh, which would draw
    the hash functions and build the tables of an accepted file in Python too (describe makes
    every check, the limits included, and then stops)."""
    out: dict[str, Any] = {"read_elsh": None}
    readers = (("C", FixedPointModel), ("read_elsh", read_elsh), ("describe", describe))
    for name, reader in readers if full else readers[::2]:
        t0 = time.perf_counter()
        try:
            got = reader(data)
            out[name] = None
            if isinstance(got, FixedPointModel):
                out["arena"] = got.arena_bytes
        except ElshFormatError as exc:
            out[name] = exc.code
        out[f"{name} seconds"] = time.perf_counter() - t0
    return out


TINY = [1, 2, 2, 2, 2, 2, 2, 2, 2]  # 8 layers at L = 1024, K = 15
WIDE = [1, 1092, 1, 1092, 1, 1092, 1, 1092, 2]  # 4 layers hash 1092 values 15360 times


@pytest.mark.parametrize("widths", [TINY, WIDE], ids=["tiny", "wide"])
def test_the_issue_files_are_refused_by_both_readers_at_once(widths: list[int]) -> None:
    qm = chain(widths, bits=15, tables=1024)
    data = file_of(qm)
    assert len(data) < 60_000
    t = totals(qm)
    assert t["arena"] > 2**30  # what the old readers allocated
    if widths is WIDE:
        assert t["input"] > 67_000_000
    v = verdicts(data)
    for name in ("C", "read_elsh", "describe"):
        assert v[name] == "ELSH_FMT_LIMITS", v
        assert v[f"{name} seconds"] < 0.25, v
    with pytest.raises(ElshFormatError) as info:
        read_elsh(data)
    assert "5.8" in info.value.message and f"{len(data)}-byte file" in info.value.message


RSS_SCRIPT = """
import resource, sys
from edge_lsh.errors import ElshFormatError
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import read_elsh
files = [open(p, "rb").read() for p in sys.argv[1:]]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
codes = []
for data in files:
    for reader in (FixedPointModel, read_elsh):
        try:
            reader(data)
            codes.append(None)
        except ElshFormatError as exc:
            codes.append(exc.code)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(__import__("json").dumps({"codes": codes, "grown_kb": after - before}))
"""


def test_refusing_the_issue_files_takes_no_memory(tmp_path) -> None:
    """Peak RSS of a fresh process grows by less than 16 MB over both readers of both files
    (the old readers: 1.05 GB and 1.15 GB)."""
    paths = []
    for name, widths in (("tiny", TINY), ("wide", WIDE)):
        p = tmp_path / f"{name}.elsh"
        p.write_bytes(file_of(chain(widths, bits=15, tables=1024)))
        paths.append(str(p))
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, *paths], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    assert result["codes"] == ["ELSH_FMT_LIMITS"] * 4
    assert result["grown_kb"] < 16 << 10, result


def first_over(
    qm: QModel, layers: list[QLayer], file_bytes: int, which: str, tables: bool = False
) -> int:
    """The first L (1..1024, every layer in `layers` alike) whose totals break a limit; the
    limit broken first must be `which`."""
    base = {"arena": LAY.LIMIT_ARENA_BASE, "input": LAY.LIMIT_INPUT_WORK_BASE}
    per = {"arena": LAY.LIMIT_ARENA_PER_BYTE, "input": LAY.LIMIT_INPUT_WORK_PER_BYTE}
    base["load"], per["load"] = LAY.LIMIT_LOAD_WORK_BASE, LAY.LIMIT_LOAD_WORK_PER_BYTE

    def over(n: int) -> list[str]:
        for L in layers:
            L.n_tables = n
        t = totals(qm, tables=tables)
        return [k for k in t if t[k] > LAY.file_limit(base[k], per[k], file_bytes)]

    lo, hi = 1, 1024
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if over(mid) else (mid + 1, hi)
    assert over(lo) == [which], (lo, over(lo))
    return lo


def straddle_cases() -> dict[str, tuple[QModel, list[QLayer]]]:
    arena = chain([64, 16, 2], bits=15, tables=1, lsh=[True, False])  # 128 KB of offsets a table
    load = chain([2048, 1, 2], bits=8, tables=1, lsh=[True, False])  # 2^24 normals at L = 1024
    return {"arena": (arena, arena.layers[:1]), "load": (load, load.layers[:1])}


@pytest.mark.parametrize("which", ["arena", "load"])
def test_each_limit_is_met_exactly_by_both_readers(which: str) -> None:
    """One table below the first L over the limit: both readers accept, and the arena C asks
    for is layout.py's; at it: both refuse with ELSH_FMT_LIMITS."""
    qm, knobs = straddle_cases()[which]
    size = len(file_of(qm))  # the same for every L: functions drawn, no tables stored
    n = first_over(qm, knobs, size, which)
    for L in knobs:
        L.n_tables = n - 1
    data = file_of(qm)
    assert len(data) == size
    cap = {"arena": LAY.LIMIT_ARENA_BASE, "load": LAY.LIMIT_LOAD_WORK_BASE}[which]
    assert totals(qm)[which] > 0.99 * cap
    v = verdicts(data, full=which == "arena")
    assert v["C"] is None and v["read_elsh"] is None and v["describe"] is None, v
    assert v["arena"] == totals(qm)["arena"]
    for L in knobs:
        L.n_tables = n
    v = verdicts(file_of(qm))
    assert v["C"] == v["read_elsh"] == v["describe"] == "ELSH_FMT_LIMITS", v


def test_work_per_input_is_met_exactly_by_both_readers() -> None:
    """8 layers 256 wide hashing with DWTA over bins of 256 (17 * 256 operations per table),
    K = 1 so that the stored tables are small: work per input meets its limit first."""
    layers = []
    for i in range(8):
        L = layer(256, 2 if i == 7 else 256, i == 7, i)
        make_lsh(L, H.DWTA, 1, 1, binw=256)
        layers.append(L)
    qm = QModel(n_in=256, n_classes=2, input_inv_scale=1.0, seed=5, layers=layers)
    n = first_over(qm, layers, 10**6, "input", tables=True)  # the base limit: files under 2 MB

    def with_tables(t: int) -> bytes:
        """Stored tables of 2 buckets, the last one of the last table holding neuron 0."""
        for L in layers:
            L.n_tables = t
        offsets = np.zeros(2 * t + 1, np.uint32)
        offsets[-1] = 1
        payload = LAY.le_bytes(offsets, "<u4") + LAY.le_bytes(np.zeros(1), "<u2")
        payload += bytes(-len(payload) % 4)
        sections = model_sections(qm, tables=False)
        sections += [Section(LAY.TABLES, li, payload) for li in range(len(layers))]
        return assemble(sections, flags=LAY.HEADER_FLAG_TABLES)

    under = with_tables(n - 1)
    assert len(under) < 2 << 20
    assert totals(qm, tables=True)["input"] > 0.99 * LAY.LIMIT_INPUT_WORK_BASE
    v = verdicts(under, full=False)
    assert v["C"] is None and v["read_elsh"] is None and v["describe"] is None, v
    assert v["arena"] == totals(qm, tables=True)["arena"]
    v = verdicts(with_tables(n))
    assert v["C"] == v["read_elsh"] == v["describe"] == "ELSH_FMT_LIMITS", v


# ----------------------------------------------------------------------------- real models


def real_shapes(family: int) -> QModel:
    """784-1000-1000-10 at 5% with no pooling, K = 3, L = 100, as Network(..., LSHConfig(
    family=..., pool=1)) makes it (ternary: a third of the inputs per projection; DWTA: bins
    of 8), hash functions drawn from the seed; random weights (the limits depend on shapes)."""
    widths = [784, 1000, 1000, 10]
    layers = [layer(widths[i], widths[i + 1], i == 2, i) for i in range(3)]
    for L in layers[:2]:
        ternary = family == H.TERNARY
        make_lsh(
            L, family, 3, 100, nnz=(L.n_in + 2) // 3 if ternary else 0, binw=0 if ternary else 8
        )
        L.k = 50
    return QModel(n_in=784, n_classes=10, input_inv_scale=1.0, seed=0, layers=layers)


def shares(t: dict[str, int], F: int) -> None:
    """At most the shares FORMAT.md 5.8 reports for real models: 0.6 F of arena, 1.2 F
    operations per input, 200 F at load; the limits are 16 F, 16 F and 1024 F."""
    assert t["arena"] <= 0.6 * F and t["input"] <= 1.2 * F and t["load"] <= 200 * F, (t, F)


def test_the_largest_real_model_loads_far_inside_the_limits() -> None:
    """784-1000-1000-10 at 5% active with the defaults (ternary K = 3, L = 100, pool auto),
    untrained, with and without stored tables: both readers load it, far inside the limits."""
    rng = np.random.default_rng(0)
    net = Network(784, [1000, 1000], 10, LSHConfig(), seed=0)
    qm = quantize(net, rng.random((64, 784), dtype=np.float32))
    for tables in (True, False):
        data = elsh_bytes(qm, tables=tables)
        t = totals(qm, tables=tables)
        shares(t, len(data))
        assert FixedPointModel(data).arena_bytes == t["arena"]
        assert read_elsh(data).n_layers == 3


@pytest.mark.parametrize("family", [H.TERNARY, H.DWTA], ids=["ternary", "dwta"])
def test_the_real_model_without_pooling_or_tables_is_inside_the_limits(family: int) -> None:
    """The costliest real exports to load: no pooling, no stored tables (ternary: 361 million
    operations to build the tables, 197 F). Every check of the reader passes (describe: it
    neither draws nor builds), with the shares of FORMAT.md 5.8."""
    qm = real_shapes(family)
    data = file_of(qm, tables=False)
    t = totals(qm, tables=False)
    shares(t, len(data))
    if family == H.TERNARY:
        assert t["load"] > 150 * len(data)  # the case the 1024 F limit is sized for
    assert describe(data)["n_layers"] == 3
