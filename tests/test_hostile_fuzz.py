"""Mutation fuzzing of the Python .elsh reader (issue 15), as native/fuzz/fuzz_model.c does
for the C reader, and against it.

Each mutant is a golden model (export/golden/*.elsh) with 1-4 byte mutations of the kinds
fuzz_model.c makes: bit flips, interesting bytes anywhere, interesting words and bytes at
targeted fields (header, a section-table entry, the start of a section: NET and LAYER fields),
two entries' offset and size swapped, a random word, truncation (the header sometimes made to
agree); three times in four the CRC is recomputed so the checks behind it are reached. The
mutants are deterministic (a fixed seed). Every one goes through read_elsh and describe, each
within a time budget, which may raise nothing but ElshFormatError, and whose verdict (accept,
or the code) must be the C reader's."""

from __future__ import annotations

import struct
import time
import traceback
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from edge_lsh.errors import ElshFormatError
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import describe, read_elsh

GOLDEN = Path(__file__).resolve().parents[1] / "export" / "golden"
N_MUTANTS = 8000
SEED = 15
BUDGET_S = 1.0  # per file and reader; the golden models read in milliseconds
INTERESTING8 = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x10, 0x40)
INTERESTING32 = (
    0,
    1,
    2,
    3,
    7,
    8,
    15,
    16,
    63,
    64,
    65,
    127,
    128,
    255,
    256,
    1023,
    1024,
    4096,
    65535,
    65536,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
)


def _u32(d: bytearray, at: int) -> int:
    return struct.unpack_from("<I", d, at)[0]


def _u64(d: bytearray, at: int) -> int:
    return struct.unpack_from("<Q", d, at)[0]


def _pick32(r: np.random.Generator, size: int) -> int:
    k = int(r.integers(len(INTERESTING32) + 3))
    if k == len(INTERESTING32):
        return size & 0xFFFFFFFF
    if k == len(INTERESTING32) + 1:
        return (size - int(r.integers(64))) & 0xFFFFFFFF
    if k == len(INTERESTING32) + 2:
        return int(r.integers(1 << 32))
    return INTERESTING32[k]


def _target(r: np.random.Generator, d: bytearray) -> int:
    """A field worth hitting: in the header, in a section-table entry, or at the start of a
    section (where NET and LAYER keep their fields)."""
    size = len(d)
    n_sec, table = _u32(d, 20), _u64(d, 24)
    what = int(r.integers(3))
    if what == 0 or n_sec == 0 or table + 32 * n_sec > size:
        return int(r.integers(60))
    entry = table + 32 * int(r.integers(n_sec))
    if what == 1:
        return entry + 4 * int(r.integers(7))
    off, sz = _u64(d, entry + 8), _u64(d, entry + 16)
    if off >= size or sz == 0:
        return entry
    return off + int(r.integers(min(sz, 64)))


def mutate(r: np.random.Generator, data: bytes) -> bytes:
    """1-4 mutations of fuzz_model.c's kinds, then (3 times in 4) the CRC recomputed."""
    d = bytearray(data)
    for _ in range(1 + int(r.integers(4))):
        if len(d) < 64:
            break
        kind = int(r.integers(8))
        if kind == 0:
            d[int(r.integers(len(d)))] ^= 1 << int(r.integers(8))
        elif kind == 1:
            d[int(r.integers(len(d)))] = INTERESTING8[int(r.integers(8))]
        elif kind in (2, 3):
            at = _target(r, d)
            if at + 4 <= len(d):
                struct.pack_into("<I", d, at, _pick32(r, len(d)))
        elif kind == 4:
            at = _target(r, d)
            if at < len(d):
                d[at] = _pick32(r, len(d)) & 0xFF
        elif kind == 5:
            n_sec, table = _u32(d, 20), _u64(d, 24)
            if n_sec >= 2 and table + 32 * n_sec <= len(d):
                a = table + 32 * int(r.integers(n_sec)) + 8
                b = table + 32 * int(r.integers(n_sec)) + 8
                d[a : a + 16], d[b : b + 16] = d[b : b + 16], d[a : a + 16]
        elif kind == 6:
            struct.pack_into("<I", d, int(r.integers(len(d) - 3)), int(r.integers(1 << 32)))
        else:
            del d[8 + int(r.integers(len(d) - 8)) :]
            if len(d) >= 64 and r.integers(2):
                struct.pack_into("<Q", d, 32, len(d))
    if r.integers(4) != 0 and len(d) >= 64:
        struct.pack_into("<I", d, 40, 0)
        n = _u64(d, 32)
        struct.pack_into("<I", d, 40, zlib.crc32(bytes(d[: n if n <= len(d) else len(d)])))
    return bytes(d)


def test_python_reader_survives_mutated_golden_files_and_agrees_with_c() -> None:
    bases = [p.read_bytes() for p in sorted(GOLDEN.glob("*.elsh"))]
    assert len(bases) >= 8
    r = np.random.default_rng(SEED)
    verdicts: Counter[str] = Counter()
    problems: list[str] = []
    slowest = 0.0
    t_all = time.perf_counter()
    for i in range(N_MUTANTS):
        data = mutate(r, bases[i % len(bases)])
        try:
            FixedPointModel(data)
            c: str | None = None
        except ElshFormatError as exc:
            c = exc.code
        for name, reader in (("read_elsh", read_elsh), ("describe", describe)):
            t0 = time.perf_counter()
            try:
                reader(data)
                py: str | None = None
            except ElshFormatError as exc:
                py = exc.code
            except Exception:  # anything else is a bug: keep the traceback's last line
                last = traceback.format_exc().strip().splitlines()[-1]
                problems.append(f"mutant {i}: {name} raised {last}")
                continue
            seconds = time.perf_counter() - t0
            slowest = max(slowest, seconds)
            if seconds > BUDGET_S:
                problems.append(f"mutant {i}: {name} took {seconds:.2f} s")
            if py != c:
                problems.append(f"mutant {i}: {name} says {py}, the C reader {c}")
            if name == "read_elsh":
                verdicts[py or "accepted"] += 1
    total = time.perf_counter() - t_all
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:30])
    print(
        f"{N_MUTANTS} mutants in {total:.1f} s (slowest read {slowest * 1000:.0f} ms): "
        f"{dict(verdicts)}"
    )
    # the mutants get past the header and the CRC, into the deep checks, and some are valid
    shallow = sum(verdicts[c] for c in ("ELSH_FMT_CRC", "ELSH_FMT_TRUNCATED", "ELSH_FMT_MAGIC"))
    assert shallow < 0.6 * N_MUTANTS
    assert verdicts["accepted"] > 0.02 * N_MUTANTS
    assert len(verdicts) >= 12
