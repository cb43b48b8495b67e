"""The two .elsh readers give the same verdict on every file (issue 15, item 4).

A structure-aware corpus: each file is a golden model (export/golden) laid out again by the
writer's helpers with one thing changed, sizes and offsets consistent and the CRC valid, so
that the change reaches the check behind it: a section dropped, repeated, resized, moved to
another layer or type; an unknown section (optional, required, twice); a field of NET or a
LAYER set to an edge value; a value inside REQUANT, HASH_COEF, PAD_ORDER, CENTER, TABLES or
MEMBERSHIP out of its range; a header or section-table field; a PREPROCESS section, valid or
with a bad value, size or place; an LSH layer given L tables of K bits, straddling the
per-file limits of FORMAT.md 5.8 (one table below the first L over a limit, and at it). For
every file the Python reader (read_elsh, and describe) and the C reader (FixedPointModel) must
agree: both accept (and then compute the same logits), or both raise ElshFormatError with the
same code. About 1100 files, drawn deterministically from every candidate edit of every golden
model; a few seconds."""

from __future__ import annotations

import dataclasses
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from edge_lsh.errors import ElshFormatError
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import describe, read_elsh
from edge_lsh.format import layout as LAY
from edge_lsh.format.layout import (
    BIAS,
    CENTER,
    ENTRY_STRUCT,
    HASH_COEF,
    HEADER_FLAG_TABLES,
    INFO,
    LAYER,
    LAYER_STRUCT,
    MEMBERSHIP,
    NET,
    NET_STRUCT,
    NO_LAYER,
    PAD_ORDER,
    PREPROCESS,
    PREPROCESS_STRUCT,
    REQUANT,
    TABLES,
    WEIGHTS,
)
from edge_lsh.format.writer import Section, assemble, model_sections
from edge_lsh.oracle import hashgen as H
from edge_lsh.oracle import qreference as Q
from edge_lsh.oracle.qmodel import QModel

GOLDEN = Path(__file__).resolve().parents[1] / "export" / "golden"

Layout = tuple[list[Section], int]  # sections in order, header flags


@cache
def bases() -> dict[str, tuple[QModel, Layout]]:
    """Each golden model and its sections as the writer lays them out."""
    out = {}
    for path in sorted(GOLDEN.glob("*.elsh")):
        data = path.read_bytes()
        qm = read_elsh(data)
        tables = bool(struct.unpack_from("<I", data, 44)[0] & HEADER_FLAG_TABLES)
        secs = model_sections(qm, tables=tables)
        flags = HEADER_FLAG_TABLES if tables and any(L.use_lsh for L in qm.layers) else 0
        out[path.stem] = (qm, (secs, flags))
    return out


def with_crc(b: bytearray) -> bytes:
    struct.pack_into("<I", b, 40, 0)
    n = min(struct.unpack_from("<Q", b, 32)[0], len(b))
    struct.pack_into("<I", b, 40, zlib.crc32(bytes(b[:n])))
    return bytes(b)


def patch(payload: bytes, at: int, fmt: str, value: object) -> bytes:
    b = bytearray(payload)
    struct.pack_into(fmt, b, at, value)
    return bytes(b)


# ----------------------------------------------------------------------------- mutations

Candidate = tuple[str, Callable[[], bytes]]


def section_edits(name: str, qm: QModel, layout: Layout) -> Iterator[Candidate]:
    secs, flags = layout
    n_layers = len(qm.layers)

    def file(new: list[Section], f: int = flags) -> Callable[[], bytes]:
        return lambda: assemble(new, flags=f)

    yield f"{name}: as written", file(secs)
    yield f"{name}: sections reversed", file(secs[::-1])
    yield f"{name}: header tables flag flipped", file(secs, flags ^ HEADER_FLAG_TABLES)
    yield f"{name}: header flag bit 1", file(secs, flags | 2)
    unknown = Section(40, 0, b"future", 0)
    yield f"{name}: unknown optional section", file([*secs, unknown])
    yield f"{name}: unknown optional twice, same layer", file([*secs, unknown, unknown])
    yield f"{name}: unknown optional twice, same layer, apart", file([unknown, *secs, unknown])
    yield f"{name}: unknown twice, other layers", file([*secs, unknown, unknown._replace(layer=1)])
    yield f"{name}: unknown required", file([*secs, unknown._replace(flags=1)])
    yield (
        f"{name}: unknown optional then required, same layer",
        file([*secs, unknown, unknown._replace(flags=1)]),
    )
    yield f"{name}: unknown type 0", file([*secs, unknown._replace(type=0)])
    yield f"{name}: unknown type 2^32-1", file([*secs, unknown._replace(type=0xFFFFFFFF)])
    yield f"{name}: empty unknown section", file([*secs, unknown._replace(payload=b"")])
    for i, s in enumerate(secs):
        what = f"{name}: section {i} (type {s.type}, layer {s.layer})"
        yield f"{what} dropped", file(secs[:i] + secs[i + 1 :])
        yield f"{what} twice", file(secs[: i + 1] + [s] + secs[i + 1 :])
        yield f"{what} twice, at the end", file([*secs, s])
        for delta in (-1, 1, 64):
            p = s.payload[:delta] if delta < 0 else s.payload + bytes(delta)
            yield (
                f"{what} size {delta:+d}",
                file(secs[:i] + [s._replace(payload=p)] + secs[i + 1 :]),
            )
        yield f"{what} emptied", file(secs[:i] + [s._replace(payload=b"")] + secs[i + 1 :])
        for layer in {0, n_layers - 1, n_layers, 7, 8, NO_LAYER} - {s.layer}:
            moved = secs[:i] + [s._replace(layer=layer)] + secs[i + 1 :]
            yield f"{what} to layer {layer:#x}", file(moved)
        for t in (12, 99):
            for fl in (0, 1):
                retyped = secs[:i] + [s._replace(type=t, flags=fl)] + secs[i + 1 :]
                yield f"{what} as type {t} flags {fl}", file(retyped)
        for t in {NET, LAYER, WEIGHTS, MEMBERSHIP, INFO} - {s.type}:
            yield f"{what} as type {t}", file(secs[:i] + [s._replace(type=t)] + secs[i + 1 :])
        yield f"{what} flags 2", file(secs[:i] + [s._replace(flags=s.flags | 2)] + secs[i + 1 :])


def _ranges(fmt: str) -> list[tuple[int, int] | str]:
    """The integer range of each field of a struct format (or 'f' / 's')."""
    out: list[tuple[int, int] | str] = []
    for ch in struct.Struct(fmt).format.lstrip("<"):
        if ch.isdigit():
            continue
        bits = {"B": 8, "H": 16, "I": 32, "Q": 64, "i": 32}.get(ch)
        if bits is None:
            out.append(ch)
        elif ch.islower():
            out.append((-(1 << (bits - 1)), (1 << (bits - 1)) - 1))
        else:
            out.append((0, (1 << bits) - 1))
    return out


def record_edits(name: str, layout: Layout) -> Iterator[Candidate]:
    """NET and LAYER fields set to edge values."""
    secs, flags = layout
    for i, s in enumerate(secs):
        if s.type not in (NET, LAYER):
            continue
        st = NET_STRUCT if s.type == NET else LAYER_STRUCT
        fields = list(st.unpack(s.payload))
        for f, rg in enumerate(_ranges(st.format)):
            orig = fields[f]
            if rg == "f":
                values: list[object] = [0.0, -1.0, float("inf"), float("nan"), orig * 2]
            elif rg == "s":
                values = [b"\x01" + bytes(len(orig) - 1)]
            else:
                assert isinstance(rg, tuple)
                lo, hi = rg
                cand = {lo, hi, 0, 1, 2, orig - 1, orig + 1, 3, 8, 16, 255, 256, 65535, 65536}
                values = sorted(v for v in cand if lo <= v <= hi and v != orig)
            for v in values:
                new = list(fields)
                new[f] = v
                payload = st.pack(*new)
                edited = secs[:i] + [s._replace(payload=payload)] + secs[i + 1 :]
                yield (
                    f"{name}: section {i} ({'NET' if s.type == NET else 'LAYER'} {s.layer}) "
                    f"field {f} {orig!r} -> {v!r}",
                    lambda e=edited: assemble(e, flags=flags),
                )


def value_edits(name: str, qm: QModel, layout: Layout) -> Iterator[Candidate]:
    """A value inside an array section out of its range (or a legal change)."""
    secs, flags = layout

    def put(i: int, at: int, fmt: str, v: object, label: str) -> Candidate:
        s = secs[i]
        edited = secs[:i] + [s._replace(payload=patch(s.payload, at, fmt, v))] + secs[i + 1 :]
        return f"{name}: {label}", lambda: assemble(edited, flags=flags)

    for i, s in enumerate(secs):
        if s.layer == NO_LAYER:
            if s.type == INFO:
                for text in (b"\xff\xfe not json", b"[" * 100_000, b'{"a": NaN}', b"[]"):
                    edited = secs[:i] + [s._replace(payload=text)] + secs[i + 1 :]
                    yield f"{name}: INFO {text[:12]!r}", lambda e=edited: assemble(e, flags=flags)
            continue
        L = qm.layers[s.layer]
        n = L.n_out
        w = f"layer {s.layer}"
        if s.type == WEIGHTS:
            yield put(i, 0, "b", -128, f"{w} weight -128 (legal)")
        elif s.type == BIAS:
            yield put(i, 0, "<i", -(2**31), f"{w} bias -2^31 (legal)")
        elif s.type == REQUANT:
            yield put(i, 4 * (n - 1), "<i", -1, f"{w} multiplier -1")
            yield put(i, 4 * n, "b", 31, f"{w} shift 31")
            yield put(i, 4 * n + n - 1, "b", -32, f"{w} shift -32")
            yield put(i, 4 * n, "b", 30, f"{w} shift 30 (legal)")
        elif s.type == PAD_ORDER:
            yield put(i, 0, "<H", n, f"{w} pad id n_out")
            yield put(i, 2, "<H", struct.unpack_from("<H", s.payload, 0)[0], f"{w} pad repeat")
        elif s.type == CENTER:
            yield put(i, 0, "<i", 2**24 + 1, f"{w} center 2^24 + 1")
            yield put(i, 0, "<i", -(2**24), f"{w} center -2^24 (legal)")
        elif s.type == HASH_COEF:
            m = L.n_tables * L.bits * L.ternary_nnz
            if L.family == H.SIMHASH:
                yield put(i, 0, "b", -128, f"{w} SimHash coefficient -128")
            elif L.family == H.TERNARY:
                yield put(i, 0, "<H", L.hash_dim, f"{w} ternary index hash_dim")
                yield put(i, 2 * m, "b", 0, f"{w} ternary sign 0")
                if L.ternary_nnz > 1:
                    first = struct.unpack_from("<H", s.payload, 0)[0]
                    yield put(i, 2, "<H", first, f"{w} ternary index repeated")
            else:
                yield put(i, 0, "<H", L.hash_dim, f"{w} DWTA index hash_dim")
                yield put(i, 2, "<H", struct.unpack_from("<H", s.payload, 0)[0], f"{w} DWTA repeat")
        elif s.type == TABLES:
            B = 1 << L.bits
            n_off = L.n_tables * B + 1
            n_ids = struct.unpack_from("<I", s.payload, 4 * (n_off - 1))[0]
            yield put(i, 0, "<I", 1, f"{w} offsets[0] = 1")
            yield put(i, 4, "<I", n_ids + 1, f"{w} offsets decrease")
            yield put(i, 4 * n_off, "<H", n, f"{w} table id n_out")
            if n_ids > 1:
                yield put(
                    i,
                    4 * n_off + 2,
                    "<H",
                    struct.unpack_from("<H", s.payload, 4 * n_off)[0],
                    f"{w} id twice",
                )
            if len(s.payload) > 4 * n_off + 2 * n_ids:
                yield put(i, len(s.payload) - 1, "B", 1, f"{w} tables padding not zero")
        elif s.type == MEMBERSHIP and n % 8:
            row = (n + 7) // 8
            yield put(i, row - 1, "B", 0xFF, f"{w} membership bit past n_out")


def raw_edits(name: str, layout: Layout, header: bool) -> Iterator[Candidate]:
    """Header (or else section-table) fields patched in the laid-out bytes, CRC recomputed."""
    secs, flags = layout
    data = assemble(secs, flags=flags)

    def at(off: int, fmt: str, v: object, label: str, crc: bool = True) -> Candidate:
        def make() -> bytes:
            b = bytearray(data)
            struct.pack_into(fmt, b, off, v)
            return with_crc(b) if crc else bytes(b)

        return f"{name}: {label}", make

    n = len(secs)
    if not header:
        for e in range(n):
            base = 64 + 32 * e
            off = ENTRY_STRUCT.unpack_from(data, base)[2]
            size = ENTRY_STRUCT.unpack_from(data, base)[3]
            yield at(base + 8, "<Q", off + 1, f"entry {e} offset + 1")
            yield at(base + 8, "<Q", off + 64, f"entry {e} offset + 64")
            yield at(base + 8, "<Q", max(64, off - 64), f"entry {e} offset - 64")
            yield at(base + 16, "<Q", size + 1, f"entry {e} size + 1")
            yield at(base + 16, "<Q", size + 64, f"entry {e} size + 64")
            yield at(base + 16, "<Q", 2**63, f"entry {e} size 2^63")
            yield at(base + 28, "<I", 1, f"entry {e} reserved")
        return
    yield at(0, "B", ord("e"), "magic")
    yield at(8, "<H", 2, "version 2.0")
    yield at(10, "<H", 7, "version 1.7 (legal)")
    yield at(12, "<I", 0x01020304, "byte order")
    yield at(16, "<I", 63, "header_bytes 63")
    for v in (0, n - 1, n + 1, 4097):
        yield at(20, "<I", v, f"n_sections {v}")
    for v in (0, 65, 72, len(data)):
        yield at(24, "<Q", v, f"section_table_offset {v}")
    for v in (63, len(data) - 1, len(data) + 1):
        yield at(32, "<Q", v, f"file_bytes {v}")
    yield at(40, "<I", 0, "CRC wrong", crc=False)
    yield at(50, "B", 1, "reserved header byte")
    yield f"{name}: one byte short", lambda: with_crc(bytearray(data[:-1]))
    yield f"{name}: a longer buffer (legal)", lambda: data + b"\x00" * 100


def preprocess_edits(name: str, layout: Layout) -> Iterator[Candidate]:
    """A PREPROCESS section (FORMAT.md 4.1): valid, each bad value, a bad size or place."""
    secs, flags = layout
    nan, inf = float("nan"), float("inf")
    bodies = {
        "valid": (255.0, 0.0, 1.0, 0),
        "min == max": (2.0, 3.0, 3.0, 0),
        "divisor 0": (0.0, 0.0, 1.0, 0),
        "divisor -1": (-1.0, 0.0, 1.0, 0),
        "divisor NaN": (nan, 0.0, 1.0, 0),
        "divisor inf": (inf, 0.0, 1.0, 0),
        "min NaN": (1.0, nan, 1.0, 0),
        "max -inf": (1.0, 0.0, -inf, 0),
        "min > max": (1.0, 1.0, 0.5, 0),
        "reserved": (1.0, 0.0, 1.0, 7),
    }
    for what, values in bodies.items():
        body = PREPROCESS_STRUCT.pack(*values)
        for where, at in (("last", len(secs)), ("first", 0)):
            new = [*secs[:at], Section(PREPROCESS, NO_LAYER, body, 0), *secs[at:]]
            yield f"{name}: PREPROCESS {what}, {where}", lambda n=new: assemble(n, flags=flags)
    good = Section(PREPROCESS, NO_LAYER, PREPROCESS_STRUCT.pack(16.0, 0.0, 1.0, 0), 0)
    for what, sec in (
        ("required", good._replace(flags=1)),
        ("15 bytes", good._replace(payload=good.payload[:15])),
        ("20 bytes", good._replace(payload=good.payload + bytes(4))),
        ("layer 0", good._replace(layer=0)),
    ):
        yield f"{name}: PREPROCESS {what}", lambda n=[*secs, sec]: assemble(n, flags=flags)
    twice = [*secs, good, good]
    yield f"{name}: PREPROCESS twice", lambda: assemble(twice, flags=flags)


def _totals_over(qm: QModel, file_bytes: int) -> bool:
    """Does a model (no tables stored) break a per-file limit (layout.py's arithmetic)?"""
    t = LAY.file_totals(qm.layers, qm.n_in, tables_stored=False)
    per_input, load = t["input"], t["load"]
    limit = LAY.file_limit
    return (
        t["arena"] > limit(LAY.LIMIT_ARENA_BASE, LAY.LIMIT_ARENA_PER_BYTE, file_bytes)
        or per_input > limit(LAY.LIMIT_INPUT_WORK_BASE, LAY.LIMIT_INPUT_WORK_PER_BYTE, file_bytes)
        or load > limit(LAY.LIMIT_LOAD_WORK_BASE, LAY.LIMIT_LOAD_WORK_PER_BYTE, file_bytes)
    )


def limit_edits(name: str, qm: QModel) -> Iterator[Candidate]:
    """An LSH layer given L tables of K bits, its hash functions drawn from the seed, no tables
    stored (the file's size then does not depend on L): L = 1024, and one below and at the
    first L over a per-file limit (FORMAT.md 5.8)."""
    for li, L in enumerate(qm.layers):
        if not L.use_lsh:
            continue
        for K in (8, 15):

            def edited(T: int, li: int = li, K: int = K) -> QModel:
                layers = list(qm.layers)
                old = layers[li]
                layers[li] = dataclasses.replace(
                    old,
                    n_tables=T,
                    bits=K,
                    hash_source=0,
                    membership=None,
                    table_offsets=None,
                    table_ids=None,
                    dwta_per_table=H.dwta_per_table(K, old.dwta_bin) if old.family == H.DWTA else 0,
                )
                return dataclasses.replace(qm, layers=layers)

            def file(T: int, edited=edited) -> bytes:
                return assemble(model_sections(edited(T), tables=False), flags=0)

            size = len(file(1))
            lo, hi = 1, 1024
            while lo < hi:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if _totals_over(edited(mid), size) else (mid + 1, hi)
            what = f"{name}: layer {li} K={K}"
            yield f"{what} L=1024", lambda file=file: file(1024)
            if lo < 1024 or _totals_over(edited(1024), size):
                yield f"{what} L={lo - 1}, under the limit", lambda f=file, t=lo - 1: f(t)
                yield f"{what} L={lo}, at the first L over", lambda f=file, t=lo: f(t)


QUOTA = {"section": 450, "record": 300, "value": 120, "header": 60, "entry": 150}
QUOTA |= {"preprocess": 80, "limits": 20}


@cache
def corpus() -> list[Candidate]:
    rng = np.random.default_rng(15)
    groups: dict[str, list[Candidate]] = {k: [] for k in QUOTA}
    for name, (qm, layout) in bases().items():
        groups["section"] += section_edits(name, qm, layout)
        groups["record"] += record_edits(name, layout)
        groups["value"] += value_edits(name, qm, layout)
        groups["header"] += raw_edits(name, layout, header=True)
        groups["entry"] += raw_edits(name, layout, header=False)
        groups["preprocess"] += preprocess_edits(name, layout)
        groups["limits"] += limit_edits(name, qm)
    out = []
    # every header edit of two models (the rest would repeat them), samples of the others
    groups["header"] = [
        c for c in groups["header"] if c[0].startswith(("dwta_c", "ternary_seed_t"))
    ]
    for kind, quota in QUOTA.items():
        cands = groups[kind]
        pick = rng.choice(len(cands), size=min(quota, len(cands)), replace=False)
        out += [cands[i] for i in sorted(pick)]
    return out


# ----------------------------------------------------------------------------- verdicts


def python_verdict(data: bytes) -> tuple[str | None, QModel | None]:
    try:
        return None, read_elsh(data)
    except ElshFormatError as exc:
        return exc.code, None


def c_verdict(data: bytes) -> tuple[str | None, FixedPointModel | None]:
    try:
        return None, FixedPointModel(data)
    except ElshFormatError as exc:
        return exc.code, None


def same_logits(qm: QModel, fm: FixedPointModel, seed: int) -> bool:
    rng = np.random.default_rng(seed)
    xq = rng.integers(-128, 128, size=(3, qm.n_in)).astype(np.int8)
    want = Q.logits_batch(qm, xq)
    return all(np.array_equal(fm.forward_q(xq[r])[1], want[r]) for r in range(3))


def test_the_corpus_is_what_it_claims() -> None:
    files = corpus()
    assert len(files) >= 1000
    assert len({label for label, _ in files}) == len(files)
    assert len(bases()) >= 8  # every golden model is a base


def test_both_readers_give_the_same_verdict_on_every_file() -> None:
    t0 = time.perf_counter()
    verdicts: Counter[str] = Counter()
    wrong = []
    for i, (label, make) in enumerate(corpus()):
        data = make()
        py, qm = python_verdict(data)
        c, fm = c_verdict(data)
        try:
            d: str | None = None
            describe(data)
        except ElshFormatError as exc:
            d = exc.code
        if py != c or d != py:
            wrong.append(f"{label}: Python {py}, describe {d}, C {c}")
        elif qm is not None and fm is not None and not same_logits(qm, fm, i):
            wrong.append(f"{label}: both accept, but the logits differ")
        verdicts[py or "accepted"] += 1
    seconds = time.perf_counter() - t0
    assert not wrong, f"{len(wrong)} of {len(corpus())} files:\n" + "\n".join(wrong[:40])
    print(f"{len(corpus())} files in {seconds:.1f} s: {dict(verdicts)}")
    # the corpus reaches every rule a structure-aware edit can break, and valid files too
    assert verdicts["accepted"] >= 20
    expected = {
        "ELSH_FMT_MAGIC",
        "ELSH_FMT_VERSION",
        "ELSH_FMT_BYTE_ORDER",
        "ELSH_FMT_HEADER",
        "ELSH_FMT_TRUNCATED",
        "ELSH_FMT_CRC",
        "ELSH_FMT_ALIGN",
        "ELSH_FMT_BOUNDS",
        "ELSH_FMT_DUPLICATE",
        "ELSH_FMT_UNKNOWN_REQUIRED",
        "ELSH_FMT_MISSING",
        "ELSH_FMT_UNEXPECTED",
        "ELSH_FMT_SIZE",
        "ELSH_FMT_NET",
        "ELSH_FMT_LAYER",
        "ELSH_FMT_QUANT",
        "ELSH_FMT_HASH",
        "ELSH_FMT_TABLES",
        "ELSH_FMT_LIMITS",
    }
    assert expected <= set(verdicts), expected - set(verdicts)


@pytest.mark.parametrize("apart", [False, True])
def test_two_unknown_optional_sections_of_one_type_and_layer_are_a_duplicate(apart: bool) -> None:
    """FORMAT.md 3: each (type, layer) at most once, known type or not. The Python reader used
    to track only known types and accepted this file; C rejects it."""
    qm, (secs, flags) = bases()["ternary_seed_tables"]
    unknown = Section(40, 0, b"future", 0)
    data = assemble([unknown, *secs, unknown] if apart else [*secs, unknown, unknown], flags=flags)
    assert c_verdict(data)[0] == "ELSH_FMT_DUPLICATE"
    with pytest.raises(ElshFormatError) as info:
        read_elsh(data)
    assert info.value.code == "ELSH_FMT_DUPLICATE"
    assert "known type or not" in info.value.message
    other = assemble([*secs, unknown, unknown._replace(layer=1)], flags=flags)
    assert c_verdict(other)[0] is None and python_verdict(other)[0] is None
