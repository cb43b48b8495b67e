"""The .elsh writer and reader (edge_lsh.format): round trips, the byte layout of
FORMAT.md, one corrupted file per validation rule (each must raise its FORMAT.md code, and
the C reader, when built, the same code), and the golden files in export/golden."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import struct
import sys
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from edge_lsh.fixed import FixedPointModel  # the C reader: each check runs both readers
from edge_lsh.format import (
    ElshFormatError,
    QModel,
    Section,
    assemble,
    describe,
    elsh_bytes,
    model_sections,
    read_elsh,
    section_sizes,
    write_elsh,
)
from edge_lsh.format.layout import NO_LAYER
from edge_lsh.network import LSHConfig, Network
from edge_lsh.oracle import qreference as Q
from edge_lsh.quantize import quantize

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "export" / "golden"
ENTRY = struct.Struct("<IIQQII")
NET, LAYER, WEIGHTS, BIAS, REQUANT, HASH_COEF, PAD_ORDER, CENTER, TABLES, INFO, MEMBERSHIP = range(
    1, 12
)


# ----------------------------------------------------------------------------- models


@cache
def base_model(kind: str) -> QModel:
    """Small quantized networks (18 inputs, 30 hidden, 4 classes) of a few kinds:
    tern_seed (ternary LSH hidden layer, dense output), tern_explicit, simhash_explicit,
    dwta_center_explicit (explicit hash sections and a CENTER), lsh_output (3 layers, the
    output selected by LSH)."""
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(120, 18))).astype(np.float32)
    y = rng.integers(0, 4, 120)
    family = {"tern": "ternary", "simhash": "simhash", "dwta": "dwta"}.get(
        kind.split("_")[0], "ternary"
    )
    cfg = LSHConfig(
        active_fraction=0.25,
        family=family,
        bits=3,
        tables=6,
        pool=1 if family != "ternary" else 2,
        dwta_bin=4,
        ternary_nnz=3,
        center="center" in kind,
    )
    hidden = [30, 20] if kind == "lsh_output" else [30]
    net = Network(18, hidden, 4, cfg, output_lsh=kind == "lsh_output", seed=3)
    net.fit(x, y, epochs=1)
    qm = quantize(net, x)
    if "explicit" in kind:
        qm.layers = [dataclasses.replace(L, hash_source=1) if L.use_lsh else L for L in qm.layers]
    return qm


def fresh(kind: str) -> QModel:
    """A copy of a base model the test may change."""
    qm = base_model(kind)
    return dataclasses.replace(qm, layers=[dataclasses.replace(L) for L in qm.layers])


@cache
def base_bytes(kind: str, tables: bool = True) -> bytes:
    return elsh_bytes(base_model(kind), tables=tables)


# ----------------------------------------------------------------------------- byte surgery


def with_crc(buf: bytes | bytearray) -> bytes:
    """The CRC field recomputed over the file's first file_bytes bytes."""
    b = bytearray(buf)
    struct.pack_into("<I", b, 40, 0)
    n = struct.unpack_from("<Q", b, 32)[0]
    struct.pack_into("<I", b, 40, zlib.crc32(bytes(b[:n])))
    return bytes(b)


def entries(data: bytes) -> list[tuple[int, int, int, int, int, int]]:
    n, sto = struct.unpack_from("<I", data, 20)[0], struct.unpack_from("<Q", data, 24)[0]
    return [ENTRY.unpack_from(data, sto + 32 * i) for i in range(n)]


def entry_index(data: bytes, stype: int, layer: int) -> int:
    for i, e in enumerate(entries(data)):
        if e[0] == stype and e[1] == layer:
            return i
    raise KeyError((stype, layer))


def set_header(data: bytes, off: int, fmt: str, value: object, crc: bool = True) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return with_crc(b) if crc else bytes(b)


def set_entry(data: bytes, index: int, field: int, value: int) -> bytes:
    """Entry field: 0 type, 1 layer, 2 offset, 3 size, 4 flags, 5 reserved."""
    b = bytearray(data)
    sto = struct.unpack_from("<Q", b, 24)[0]
    e = list(ENTRY.unpack_from(b, sto + 32 * index))
    e[field] = value
    ENTRY.pack_into(b, sto + 32 * index, *e)
    return with_crc(b)


def set_in_section(data: bytes, stype: int, layer: int, rel: int, fmt: str, value: object) -> bytes:
    off = entries(data)[entry_index(data, stype, layer)][2]
    b = bytearray(data)
    struct.pack_into(fmt, b, off + rel, value)
    return with_crc(b)


def section_payload(data: bytes, stype: int, layer: int) -> bytes:
    e = entries(data)[entry_index(data, stype, layer)]
    return data[e[2] : e[2] + e[3]]


def rebuilt(
    kind: str,
    edit: Callable[[list[Section]], list[Section]],
    *,
    tables: bool = True,
    flags: int | None = None,
) -> bytes:
    qm = base_model(kind)
    secs = edit(model_sections(qm, tables=tables))
    any_lsh = any(L.use_lsh for L in qm.layers)
    return assemble(secs, flags=(1 if tables and any_lsh else 0) if flags is None else flags)


def drop(stype: int, layer: int) -> Callable[[list[Section]], list[Section]]:
    return lambda secs: [s for s in secs if (s.type, s.layer) != (stype, layer)]


def resize(stype: int, layer: int, delta: int) -> Callable[[list[Section]], list[Section]]:
    def edit(secs: list[Section]) -> list[Section]:
        out = []
        for s in secs:
            if (s.type, s.layer) == (stype, layer):
                p = s.payload + bytes(delta) if delta > 0 else s.payload[:delta]
                s = s._replace(payload=p)
            out.append(s)
        return out

    return edit


def add(*new: Section) -> Callable[[list[Section]], list[Section]]:
    return lambda secs: [*secs, *new]


def retag(stype: int, where: int, **fields: object) -> Callable[[list[Section]], list[Section]]:
    return lambda secs: [
        s._replace(**fields) if (s.type, s.layer) == (stype, where) else s for s in secs
    ]


def c_code(data: bytes) -> str | None:
    """The C reader's verdict: None if it accepts, else its FORMAT.md code."""
    try:
        FixedPointModel(data)
    except ValueError as exc:
        return str(getattr(exc, "code", exc))
    return None


def expect_code(data: bytes, code: str) -> ElshFormatError:
    with pytest.raises(ElshFormatError) as info:
        read_elsh(data)
    assert info.value.code == code, info.value.message
    assert f"[{code}]" in str(info.value)
    assert c_code(data) == code, f"the C reader says {c_code(data)}, Python {code}"
    return info.value


# ----------------------------------------------------------------------------- round trips

KINDS = ["tern_seed", "tern_explicit", "simhash_explicit", "dwta_center_explicit", "lsh_output"]


@pytest.mark.parametrize("kind", KINDS)
def test_write_read_round_trip_with_and_without_tables(kind, tmp_path):
    qm = base_model(kind)
    path = tmp_path / "m.elsh"
    write_elsh(path, qm, tables=True, info={"note": "ü", "n": 3})
    with_tables = read_elsh(path)
    without = read_elsh(elsh_bytes(qm, tables=False))
    assert with_tables.same_as(qm) and without.same_as(qm)
    assert with_tables.same_as(without, tables=True)
    for a, b in zip(with_tables.layers, without.layers):
        if a.use_lsh:  # stored tables == tables the reader builds
            assert np.array_equal(a.table_offsets, b.table_offsets)
            assert np.array_equal(a.table_ids, b.table_ids)
        assert a.weight_scale is None  # not stored
    assert with_tables.info == {"note": "ü", "n": 3}
    assert read_elsh(path.read_bytes()).same_as(with_tables)
    assert path.read_bytes() == elsh_bytes(qm, tables=True, info={"note": "ü", "n": 3})
    # what is read writes the same bytes again
    assert elsh_bytes(with_tables, tables=True) == path.read_bytes()
    X = Q.quantize_input(qm, np.random.default_rng(0).random((15, 18)) * 3)
    assert np.array_equal(Q.logits_batch(without, X), Q.logits_batch(qm, X))


@pytest.mark.parametrize("kind", KINDS)
def test_layout_follows_the_format(kind):
    qm = base_model(kind)
    for tables in (True, False):
        data = elsh_bytes(qm, tables=tables)
        magic, vmaj, vmin, order, hbytes, nsec, sto, fbytes, crc, flags, res = struct.unpack_from(
            "<8sHHIIIQQII16s", data
        )
        assert (magic, vmaj, vmin, order, hbytes, sto) == (
            b"ELSH\r\n\x1a\n",
            1,
            0,
            0x04030201,
            64,
            64,
        )
        assert data[12:16] == b"\x01\x02\x03\x04" and res == bytes(16)
        assert fbytes == len(data) and crc == zlib.crc32(data[:40] + bytes(4) + data[44:])
        assert flags == (1 if tables else 0)
        es = entries(data)
        assert len(es) == nsec
        order_seen = [(e[0], e[1]) for e in es]
        n = qm.n_layers
        assert order_seen[: n + 1] == [(NET, NO_LAYER)] + [(LAYER, li) for li in range(n)]
        assert order_seen[-1] == (INFO, NO_LAYER)
        layers_seen = [layer for t, layer in order_seen[n + 1 : -1]]
        assert layers_seen == sorted(layers_seen)
        for li in range(n):
            types = [t for t, layer in order_seen[n + 1 : -1] if layer == li]
            assert types == sorted(types)
            L = qm.layers[li]
            want = [WEIGHTS, BIAS, REQUANT]
            if L.use_lsh and L.hash_source:
                want += [HASH_COEF, PAD_ORDER]
            if L.use_lsh and L.center:
                want.append(CENTER)
            if L.use_lsh and tables:
                want.append(TABLES)
            assert types == want
        prev_end = 64 + 32 * nsec
        for t, _layer, off, size, eflags, reserved in es:
            assert off % 64 == 0 and off >= prev_end and reserved == 0
            assert data[prev_end:off] == bytes(off - prev_end)  # zero padding
            assert eflags == (0 if t == INFO else 1)
            prev_end = off + size
        assert prev_end == len(data)
        assert json.loads(section_payload(data, INFO, NO_LAYER)) == qm.info


def test_section_contents_are_little_endian_arrays():
    qm = base_model("dwta_center_explicit")
    data = elsh_bytes(qm)
    L = qm.layers[0]
    n_in, n_layers, n_classes, inv, seed = struct.unpack_from(
        "<IIIfQ", section_payload(data, NET, NO_LAYER)
    )
    assert (n_in, n_layers, n_classes, seed) == (18, 2, 4, 3)
    assert inv == np.float32(qm.input_inv_scale)
    assert section_payload(data, WEIGHTS, 0) == L.weights.astype("i1").tobytes()
    assert section_payload(data, BIAS, 0) == L.bias.astype("<i4").tobytes()
    assert section_payload(data, REQUANT, 0) == (
        L.multiplier.astype("<i4").tobytes() + L.shift.astype("i1").tobytes()
    )
    assert section_payload(data, HASH_COEF, 0) == L.dwta_idx.astype("<u2").tobytes()
    assert section_payload(data, PAD_ORDER, 0) == L.pad_order.astype("<u2").tobytes()
    assert section_payload(data, CENTER, 0) == L.center_q.astype("<i4").tobytes()
    offsets, ids = Q.canonical_tables(L)
    raw = offsets.astype("<u4").tobytes() + ids.astype("<u2").tobytes()
    assert section_payload(data, TABLES, 0) == raw + bytes(-len(raw) % 4)
    layer = section_payload(data, LAYER, 0)
    assert struct.unpack_from("<III8B", layer) == (18, 30, L.k, 1, 0, 8, 2, 3, 0, 1, 1)
    assert struct.unpack_from("<6H", layer, 20) == (6, 1, 18, 0, 4, 2)
    assert struct.unpack_from("<iiff", layer, 32) == (
        L.in_zero_point,
        L.out_zero_point,
        np.float32(L.in_scale),
        np.float32(L.out_scale),
    )


def test_int16_weights_and_simhash_coefficients_are_stored_as_written():
    qm = fresh("simhash_explicit")
    data = elsh_bytes(qm)
    assert section_payload(data, HASH_COEF, 0) == qm.layers[0].proj.astype("i1").tobytes()
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(60, 18))).astype(np.float32)
    net = Network(18, [10], 4, None, seed=1)
    q16 = quantize(net, x, weight_bits=16)
    back = read_elsh(elsh_bytes(q16))
    assert back.same_as(q16) and back.layers[0].weights.dtype == np.int16
    assert (
        section_payload(elsh_bytes(q16), WEIGHTS, 0)
        == q16.layers[0].weights.astype("<i2").tobytes()
    )


def test_bytes_are_deterministic():
    a = elsh_bytes(base_model("tern_seed"))
    assert a == elsh_bytes(base_model("tern_seed")) == base_bytes("tern_seed")


def test_writer_refuses_models_that_would_not_read_back(tmp_path):
    qm = fresh("tern_seed")
    qm.layers[0].k = 0
    path = tmp_path / "m.elsh"
    path.write_bytes(b"old")
    with pytest.raises(ElshFormatError) as info:
        write_elsh(path, qm)
    assert info.value.code == "ELSH_FMT_LAYER"
    assert path.read_bytes() == b"old"  # untouched, and no temporary file left behind
    assert [p.name for p in tmp_path.iterdir()] == ["m.elsh"]
    # hash_source 0 stores only the seed: functions that differ from the seed's are refused
    qm = fresh("tern_seed")
    idx = qm.layers[0].tern_idx.copy()
    idx[0, 0] = np.roll(idx[0, 0], 1)
    qm.layers[0].tern_idx = idx
    with pytest.raises(ValueError, match="tern_idx.*seed"):
        elsh_bytes(qm)
    qm.layers[0].hash_source = 1
    assert read_elsh(elsh_bytes(qm)).same_as(qm)


def test_describe_and_section_sizes(tmp_path):
    qm = base_model("dwta_center_explicit")
    path = tmp_path / "m.elsh"
    write_elsh(path, qm, tables=True)
    d = describe(path)
    assert d == describe(path.read_bytes()) == describe(qm, tables=True)
    assert d["format"] == "elsh 1.0" and d["file_bytes"] == path.stat().st_size
    assert (d["n_in"], d["n_classes"], d["n_layers"], d["seed"]) == (18, 4, 2, 3)
    assert d["tables_stored"] is True and d["input_zero_point"] == qm.input_zero_point
    h = d["layers"][0]["hash"]
    assert h["family"] == "dwta" and h["source"] == "explicit" and h["center"] is True
    assert "hash" not in d["layers"][1]
    secs = section_sizes(path)
    assert secs == d["sections"] and secs[0]["name"] == "NET" and secs[0]["layer"] is None
    assert sum(s["size"] for s in secs if s["layer"] == 0) == d["layers"][0]["bytes"]
    assert d["bytes_by_section"]["TABLES"] == next(s["size"] for s in secs if s["name"] == "TABLES")
    assert not describe(qm, tables=False)["tables_stored"]
    json.dumps(d)  # JSON-ready


def test_dequantize_logits():
    qm = base_model("lsh_output")
    logits, _, _ = Q.forward(qm, np.zeros(18, np.int8))
    real = qm.dequantize_logits(logits)
    active = logits != Q.INACTIVE_LOGIT
    assert np.isneginf(real[~active]).all() and (~active).any()
    assert np.allclose(real[active], logits[active] * qm.layers[-1].out_scale)


# ----------------------------------------------------------------------------- header rules


def test_truncation_at_any_length_is_reported():
    data = base_bytes("dwta_center_explicit")
    lengths = sorted(
        {0, 1, 7, 8, 9, 40, 63, 64, 65, 95, 96, 97, len(data) - 1, *range(0, len(data), 89)}
    )
    for n in lengths:
        expect_code(data[:n], "ELSH_FMT_TRUNCATED")


def test_trailing_bytes_beyond_file_bytes_are_ignored():
    data = base_bytes("tern_seed")
    assert read_elsh(data + bytes(100)).same_as(base_model("tern_seed"))


HEADER_CASES = [
    ("magic", 0, "<B", ord("X"), "ELSH_FMT_MAGIC"),
    ("magic_last_byte", 7, "<B", 0, "ELSH_FMT_MAGIC"),
    ("version_major_2", 8, "<H", 2, "ELSH_FMT_VERSION"),
    ("version_major_0", 8, "<H", 0, "ELSH_FMT_VERSION"),
    ("byte_order", 12, "<I", 0x01020304, "ELSH_FMT_BYTE_ORDER"),
    ("header_bytes", 16, "<I", 128, "ELSH_FMT_HEADER"),
    ("n_sections_0", 20, "<I", 0, "ELSH_FMT_HEADER"),
    ("n_sections_4097", 20, "<I", 4097, "ELSH_FMT_HEADER"),
    ("table_offset_unaligned", 24, "<Q", 68, "ELSH_FMT_HEADER"),
    ("table_offset_in_header", 24, "<Q", 32, "ELSH_FMT_HEADER"),
    ("flags_bit_1", 44, "<I", 3, "ELSH_FMT_HEADER"),
    ("reserved", 50, "<B", 1, "ELSH_FMT_HEADER"),
    ("file_bytes_below_header", 32, "<Q", 63, "ELSH_FMT_TRUNCATED"),
    ("file_bytes_too_large", 32, "<Q", 10**6, "ELSH_FMT_TRUNCATED"),
    ("section_table_past_end", 24, "<Q", 2**40, "ELSH_FMT_TRUNCATED"),
]


@pytest.mark.parametrize("name,off,fmt,value,code", HEADER_CASES, ids=[c[0] for c in HEADER_CASES])
def test_header_rules(name, off, fmt, value, code):
    expect_code(set_header(base_bytes("tern_seed"), off, fmt, value), code)


def test_newer_minor_versions_are_read():
    data = set_header(base_bytes("tern_seed"), 10, "<H", 7)
    assert read_elsh(data).same_as(base_model("tern_seed"))


def test_crc_detects_any_changed_byte():
    data = base_bytes("tern_explicit")
    b = bytearray(data)
    b[-200] ^= 0x10
    expect_code(bytes(b), "ELSH_FMT_CRC")
    b = bytearray(data)
    b[41] ^= 1
    expect_code(bytes(b), "ELSH_FMT_CRC")
    b = bytearray(data)
    b[60] = 0  # reserved is checked before the CRC: an intact zero keeps the file valid
    assert read_elsh(bytes(b)).same_as(base_model("tern_explicit"))


def test_file_bytes_shorter_than_the_last_section():
    data = base_bytes("tern_seed")
    expect_code(set_header(data, 32, "<Q", len(data) - 1), "ELSH_FMT_BOUNDS")


# ----------------------------------------------------------------------------- section table


def test_section_table_rules():
    data = base_bytes("tern_seed")
    es = entries(data)
    expect_code(set_entry(data, 3, 2, es[3][2] + 8), "ELSH_FMT_ALIGN")
    expect_code(set_entry(data, 0, 2, 64), "ELSH_FMT_BOUNDS")  # inside the section table
    expect_code(set_entry(data, 3, 2, (len(data) + 64) // 64 * 64), "ELSH_FMT_BOUNDS")
    expect_code(set_entry(data, 3, 3, len(data)), "ELSH_FMT_BOUNDS")
    expect_code(set_entry(data, 3, 3, 2**64 - 1), "ELSH_FMT_BOUNDS")
    expect_code(set_entry(data, 2, 2, es[1][2]), "ELSH_FMT_BOUNDS")  # overlaps LAYER 0
    expect_code(set_entry(data, 4, 4, 3), "ELSH_FMT_HEADER")  # undefined flag bit
    expect_code(set_entry(data, 4, 5, 1), "ELSH_FMT_HEADER")  # reserved
    i_bias = entry_index(data, BIAS, 0)
    expect_code(set_entry(data, i_bias, 0, WEIGHTS), "ELSH_FMT_DUPLICATE")


def test_duplicate_network_sections():
    info = Section(INFO, NO_LAYER, b"{}", 0)
    expect_code(rebuilt("tern_seed", add(info, info)), "ELSH_FMT_DUPLICATE")


def test_unknown_sections_required_rejected_optional_skipped():
    qm = base_model("tern_seed")
    for t in (0, 15, 99, 2**32 - 1):  # 12 is PREPROCESS (1.1), 13-14 the trained state (1.2)
        expect_code(
            rebuilt("tern_seed", add(Section(t, NO_LAYER, b"abc", 1))),
            "ELSH_FMT_UNKNOWN_REQUIRED",
        )
        ok = rebuilt("tern_seed", add(Section(t, 5, b"future", 0)))
        assert read_elsh(ok).same_as(qm)
    # an empty optional section overlaps nothing, even at another section's offset
    data = rebuilt("tern_seed", add(Section(77, NO_LAYER, b"", 0)))
    data = set_entry(data, len(entries(data)) - 1, 2, entries(data)[0][2])
    assert read_elsh(data).same_as(qm)
    assert any(s["type"] == 77 for s in section_sizes(data))


def test_sections_belonging_to_the_wrong_layer():
    expect_code(rebuilt("tern_seed", retag(NET, NO_LAYER, layer=0)), "ELSH_FMT_UNEXPECTED")
    expect_code(
        rebuilt("tern_seed", add(Section(MEMBERSHIP, NO_LAYER, b""))), "ELSH_FMT_UNEXPECTED"
    )
    expect_code(rebuilt("tern_seed", retag(INFO, NO_LAYER, layer=1)), "ELSH_FMT_UNEXPECTED")
    w = Section(WEIGHTS, 2, b"", 1)  # the network has 2 layers
    expect_code(rebuilt("tern_seed", add(w)), "ELSH_FMT_UNEXPECTED")
    expect_code(rebuilt("tern_seed", add(w._replace(layer=8))), "ELSH_FMT_UNEXPECTED")
    expect_code(rebuilt("tern_seed", add(w._replace(layer=NO_LAYER))), "ELSH_FMT_UNEXPECTED")


MISSING_CASES = [
    ("tern_seed", NET, NO_LAYER),
    ("tern_seed", LAYER, 1),
    ("tern_seed", WEIGHTS, 0),
    ("tern_seed", BIAS, 1),
    ("tern_seed", REQUANT, 0),
    ("tern_seed", TABLES, 0),
    ("tern_explicit", HASH_COEF, 0),
    ("tern_explicit", PAD_ORDER, 0),
    ("dwta_center_explicit", CENTER, 0),
    ("lsh_output", TABLES, 2),
]


@pytest.mark.parametrize("kind,stype,layer", MISSING_CASES)
def test_missing_required_sections(kind, stype, layer):
    expect_code(rebuilt(kind, drop(stype, layer)), "ELSH_FMT_MISSING")


def test_sections_a_layer_must_not_have():
    tables0 = Section(TABLES, 0, section_payload(base_bytes("tern_seed"), TABLES, 0))
    expect_code(rebuilt("tern_seed", add(tables0), tables=False, flags=0), "ELSH_FMT_UNEXPECTED")
    expect_code(
        rebuilt("tern_seed", add(Section(TABLES, 1, bytes(8)))), "ELSH_FMT_UNEXPECTED"
    )  # dense layer
    coef = section_payload(base_bytes("tern_explicit"), HASH_COEF, 0)
    expect_code(rebuilt("tern_seed", add(Section(HASH_COEF, 0, coef))), "ELSH_FMT_UNEXPECTED")
    pad = section_payload(base_bytes("tern_explicit"), PAD_ORDER, 0)
    expect_code(rebuilt("tern_seed", add(Section(PAD_ORDER, 0, pad))), "ELSH_FMT_UNEXPECTED")
    expect_code(rebuilt("tern_seed", add(Section(CENTER, 0, bytes(4 * 9)))), "ELSH_FMT_UNEXPECTED")
    expect_code(rebuilt("tern_seed", add(Section(CENTER, 1, bytes(4)))), "ELSH_FMT_UNEXPECTED")


SIZE_CASES = [
    ("tern_seed", NET, NO_LAYER, -1),
    ("tern_seed", LAYER, 0, 4),
    ("tern_seed", WEIGHTS, 0, -1),
    ("tern_seed", WEIGHTS, 1, 1),
    ("tern_seed", BIAS, 0, 4),
    ("tern_seed", REQUANT, 1, -1),
    ("tern_seed", TABLES, 0, 2),
    ("tern_seed", TABLES, 0, -4),
    ("tern_explicit", HASH_COEF, 0, -3),
    ("simhash_explicit", HASH_COEF, 0, 1),
    ("dwta_center_explicit", HASH_COEF, 0, 2),
    ("tern_explicit", PAD_ORDER, 0, 2),
    ("dwta_center_explicit", CENTER, 0, -4),
]


@pytest.mark.parametrize("kind,stype,layer,delta", SIZE_CASES)
def test_wrong_section_sizes(kind, stype, layer, delta):
    expect_code(rebuilt(kind, resize(stype, layer, delta)), "ELSH_FMT_SIZE")


# ----------------------------------------------------------------------------- NET and LAYER

NET_CASES = [
    ("n_in_0", 0, "<I", 0),
    ("n_in_65536", 0, "<I", 65536),
    ("n_layers_0", 4, "<I", 0),
    ("n_layers_9", 4, "<I", 9),
    ("n_classes_1", 8, "<I", 1),
    ("inv_scale_0", 12, "<f", 0.0),
    ("inv_scale_negative", 12, "<f", -1.0),
    ("inv_scale_nan", 12, "<f", math.nan),
    ("inv_scale_inf", 12, "<f", math.inf),
    ("reserved", 27, "<B", 9),
]


@pytest.mark.parametrize("name,rel,fmt,value", NET_CASES, ids=[c[0] for c in NET_CASES])
def test_net_rules(name, rel, fmt, value):
    expect_code(
        set_in_section(base_bytes("tern_seed"), NET, NO_LAYER, rel, fmt, value), "ELSH_FMT_NET"
    )


def test_net_layer_count_and_classes_must_match_the_layers():
    data = base_bytes("tern_seed")
    expect_code(set_in_section(data, NET, NO_LAYER, 4, "<I", 1), "ELSH_FMT_UNEXPECTED")
    expect_code(set_in_section(data, NET, NO_LAYER, 4, "<I", 3), "ELSH_FMT_LAYER")  # is_output
    expect_code(set_in_section(data, NET, NO_LAYER, 8, "<I", 5), "ELSH_FMT_LAYER")
    expect_code(set_in_section(data, NET, NO_LAYER, 0, "<I", 17), "ELSH_FMT_LAYER")


# (kind, layer, offset in LAYER, struct format, value)
LAYER_CASES = [
    ("n_out_0", "tern_seed", 0, 4, "<I", 0),
    ("k_0", "tern_seed", 0, 8, "<I", 0),
    ("k_above_n_out", "tern_seed", 0, 8, "<I", 31),
    ("dense_k", "tern_seed", 1, 8, "<I", 3),
    ("use_lsh_2", "tern_seed", 0, 12, "<B", 2),
    ("is_output_hidden", "tern_seed", 0, 13, "<B", 1),
    ("is_output_last", "tern_seed", 1, 13, "<B", 0),
    ("weight_bits_4", "tern_seed", 0, 14, "<B", 4),
    ("family_3", "tern_seed", 0, 15, "<B", 3),
    ("bits_0", "tern_seed", 0, 16, "<B", 0),
    ("bits_16", "tern_seed", 0, 16, "<B", 16),
    ("select_2", "tern_seed", 0, 17, "<B", 2),
    ("hash_source_2", "tern_seed", 0, 18, "<B", 2),
    ("center_2", "tern_seed", 0, 19, "<B", 2),
    ("tables_0", "tern_seed", 0, 20, "<H", 0),
    ("tables_1025", "tern_seed", 0, 20, "<H", 1025),
    ("pool_0", "tern_seed", 0, 22, "<H", 0),
    ("pool_above_n_in", "tern_seed", 0, 22, "<H", 19),
    ("hash_dim", "tern_seed", 0, 24, "<H", 8),
    ("ternary_nnz_0", "tern_seed", 0, 26, "<H", 0),
    ("ternary_nnz_above_dim", "tern_seed", 0, 26, "<H", 10),
    ("ternary_with_dwta_bin", "tern_seed", 0, 28, "<H", 2),
    ("simhash_with_nnz", "simhash_explicit", 0, 26, "<H", 1),
    ("dwta_bin_3", "dwta_center_explicit", 0, 28, "<H", 3),
    ("dwta_bin_1", "dwta_center_explicit", 0, 28, "<H", 1),
    ("dwta_bin_above_dim", "dwta_center_explicit", 0, 28, "<H", 32),
    ("dwta_per_table", "dwta_center_explicit", 0, 30, "<H", 3),
    ("dwta_with_nnz", "dwta_center_explicit", 0, 26, "<H", 2),
    ("dense_with_bits", "tern_seed", 1, 16, "<B", 3),
    ("dense_with_pool", "tern_seed", 1, 22, "<H", 1),
    ("in_zero_point_128", "tern_seed", 0, 32, "<i", 128),
    ("out_zero_point_-129", "tern_seed", 0, 36, "<i", -129),
    ("output_zero_point", "tern_seed", 1, 36, "<i", -128),
    ("chain_zero_point", "tern_seed", 1, 32, "<i", 5),
    ("in_scale_0", "tern_seed", 0, 40, "<f", 0.0),
    ("in_scale_nan", "tern_seed", 0, 40, "<f", math.nan),
    ("out_scale_inf", "tern_seed", 1, 44, "<f", math.inf),
    ("out_scale_negative", "tern_seed", 1, 44, "<f", -0.5),
    ("chain_scale", "tern_seed", 1, 40, "<f", 0.123),
    ("reserved", "tern_seed", 0, 63, "<B", 1),
]


@pytest.mark.parametrize(
    "name,kind,layer,rel,fmt,value", LAYER_CASES, ids=[c[0] for c in LAYER_CASES]
)
def test_layer_rules(name, kind, layer, rel, fmt, value):
    err = expect_code(
        set_in_section(base_bytes(kind), LAYER, layer, rel, fmt, value), "ELSH_FMT_LAYER"
    )
    assert f"LAYER {layer}" in err.message


def test_layer_work_limits():
    """Hashing one vector may cost at most 2^24 operations, one input may scan at most 2^24
    table entries, building tables at load at most 2^28 (both passes), and drawing the hash
    functions from the seed at most 2^24 draws."""
    data = base_bytes("simhash_explicit")
    data = set_in_section(data, NET, NO_LAYER, 0, "<I", 1100)
    for rel, fmt, v in [(0, "<I", 1100), (16, "<B", 15), (22, "<H", 1), (24, "<H", 1100)]:
        data = set_in_section(data, LAYER, 0, rel, fmt, v)
    at_limit = set_in_section(data, LAYER, 0, 20, "<H", 1016)  # 1016 * 15 * 1100 < 2^24
    over = set_in_section(data, LAYER, 0, 20, "<H", 1017)  # > 2^24
    err = expect_code(over, "ELSH_FMT_LAYER")
    assert "2^24" in err.message
    expect_code(at_limit, "ELSH_FMT_SIZE")  # the layer passes; its WEIGHTS do not fit
    # 2 * n_out * (hash work + n_in) > 2^28 only matters when the reader must build the tables
    big = set_in_section(at_limit, LAYER, 0, 4, "<I", 300)
    expect_code(big, "ELSH_FMT_SIZE")
    err = expect_code(set_header(big, 44, "<I", 0), "ELSH_FMT_LAYER")
    assert "2^28" in err.message
    # L * n_out table entries scanned per input
    wide = set_in_section(big, LAYER, 0, 4, "<I", 16514)  # 1016 * 16514 > 2^24
    err = expect_code(wide, "ELSH_FMT_LAYER")
    assert "L * n_out" in err.message
    expect_code(set_in_section(big, LAYER, 0, 4, "<I", 16513), "ELSH_FMT_SIZE")


def test_seed_draw_work_limit():
    """Ternary functions drawn from the seed: L * K * draws(nnz) <= 2^24, with draws(m) = 2m
    while 2m <= hash_dim, else 12 * hash_dim."""
    data = base_bytes("tern_seed")
    data = set_in_section(data, NET, NO_LAYER, 0, "<I", 1100)
    for rel, fmt, v in [(0, "<I", 1100), (16, "<B", 2), (20, "<H", 1016), (22, "<H", 1)]:
        data = set_in_section(data, LAYER, 0, rel, fmt, v)
    data = set_in_section(data, LAYER, 0, 24, "<H", 1100)
    many = set_in_section(data, LAYER, 0, 26, "<H", 1100)  # 2032 * 12 * 1100 > 2^24
    err = expect_code(many, "ELSH_FMT_LAYER")
    assert "seed" in err.message
    half = set_in_section(data, LAYER, 0, 26, "<H", 550)  # 2032 * 1100 draws: fine
    assert expect_code(half, "ELSH_FMT_SIZE").code == "ELSH_FMT_SIZE"


# ----------------------------------------------------------------------------- values


def test_requant_rules():
    data = base_bytes("tern_seed")
    n_out = base_model("tern_seed").layers[0].n_out
    expect_code(set_in_section(data, REQUANT, 0, 4, "<i", -1), "ELSH_FMT_QUANT")
    expect_code(set_in_section(data, REQUANT, 1, 0, "<i", -(2**31)), "ELSH_FMT_QUANT")
    expect_code(set_in_section(data, REQUANT, 0, 4 * n_out + 3, "<b", 31), "ELSH_FMT_QUANT")
    expect_code(set_in_section(data, REQUANT, 0, 4 * n_out, "<b", -32), "ELSH_FMT_QUANT")
    for mult, shift in [(2**31 - 1, 30), (0, -31)]:  # the extremes are valid
        ok = set_in_section(data, REQUANT, 0, 4, "<i", mult)
        ok = set_in_section(ok, REQUANT, 0, 4 * n_out + 1, "<b", shift)
        read_elsh(ok)


def test_hash_rules():
    tern = base_bytes("tern_explicit")
    L = base_model("tern_explicit").layers[0]
    m = L.n_tables * L.bits * L.ternary_nnz
    expect_code(set_in_section(tern, HASH_COEF, 0, 2, "<H", L.hash_dim), "ELSH_FMT_HASH")
    expect_code(
        set_in_section(tern, HASH_COEF, 0, 2, "<H", int(L.tern_idx[0, 0, 0])), "ELSH_FMT_HASH"
    )  # an index repeated within one projection
    expect_code(set_in_section(tern, HASH_COEF, 0, 2 * m + 5, "<b", 0), "ELSH_FMT_HASH")
    expect_code(set_in_section(tern, HASH_COEF, 0, 2 * m, "<b", 2), "ELSH_FMT_HASH")
    pad = L.pad_order
    expect_code(set_in_section(tern, PAD_ORDER, 0, 2, "<H", int(pad[0])), "ELSH_FMT_HASH")
    expect_code(set_in_section(tern, PAD_ORDER, 0, 0, "<H", L.n_out), "ELSH_FMT_HASH")

    sim = base_bytes("simhash_explicit")
    expect_code(set_in_section(sim, HASH_COEF, 0, 7, "<b", -128), "ELSH_FMT_HASH")
    read_elsh(set_in_section(sim, HASH_COEF, 0, 7, "<b", -127))  # the full int8 range is fine

    dwta = base_bytes("dwta_center_explicit")
    D = base_model("dwta_center_explicit").layers[0]
    expect_code(set_in_section(dwta, HASH_COEF, 0, 6, "<H", D.hash_dim), "ELSH_FMT_HASH")
    expect_code(
        set_in_section(dwta, HASH_COEF, 0, 2, "<H", int(D.dwta_idx[0, 0, 0])), "ELSH_FMT_HASH"
    )
    expect_code(set_in_section(dwta, CENTER, 0, 8, "<i", 2**24 + 1), "ELSH_FMT_HASH")
    expect_code(set_in_section(dwta, CENTER, 0, 0, "<i", -(2**24) - 1), "ELSH_FMT_HASH")
    read_elsh(set_in_section(dwta, CENTER, 0, 8, "<i", -(2**24)))


def test_tables_rules():
    data = base_bytes("tern_seed")
    L = base_model("tern_seed").layers[0]
    B, T, n = 1 << L.bits, L.n_tables, L.n_out
    offsets, ids = Q.canonical_tables(L)
    ids_at = 4 * (T * B + 1)
    expect_code(set_in_section(data, TABLES, 0, 0, "<I", 1), "ELSH_FMT_TABLES")
    expect_code(set_in_section(data, TABLES, 0, 4, "<I", 2**31), "ELSH_FMT_TABLES")  # decrease
    expect_code(set_in_section(data, TABLES, 0, 4 * B, "<I", n + 1), "ELSH_FMT_TABLES")
    expect_code(set_in_section(data, TABLES, 0, 4 * T * B, "<I", T * n + 1), "ELSH_FMT_TABLES")
    expect_code(set_in_section(data, TABLES, 0, 4 * T * B, "<I", T * n - 2), "ELSH_FMT_SIZE")
    expect_code(rebuilt("tern_seed", resize(TABLES, 0, -(4 * T * n))), "ELSH_FMT_SIZE")
    expect_code(set_in_section(data, TABLES, 0, ids_at + 2 * 5, "<H", n), "ELSH_FMT_TABLES")
    expect_code(
        set_in_section(data, TABLES, 0, ids_at + 2, "<H", int(ids[0])), "ELSH_FMT_TABLES"
    )  # a neuron twice in table 0
    # a different partition is accepted: the reader checks structure, not canonicity
    swapped = set_in_section(data, TABLES, 0, ids_at + 2 * (n - 1), "<H", int(ids[n - 2]))
    swapped = set_in_section(swapped, TABLES, 0, ids_at + 2 * (n - 2), "<H", int(ids[n - 1]))
    read_elsh(swapped)
    # a table may hold a subset (5.7): here the last table drops its last id
    subset = set_in_section(data, TABLES, 0, 4 * T * B, "<I", T * n - 1)
    # the dropped id's two bytes become the (zero) padding to a multiple of 4
    stale = subset
    subset = set_in_section(subset, TABLES, 0, 4 * (T * B + 1) + 2 * (T * n - 1), "<H", 0)
    expect_code(stale, "ELSH_FMT_TABLES")  # padding must be zero
    assert c_code(subset) is None
    members = read_elsh(subset).layers[0].membership
    assert members is not None and members.sum() == T * n - 1
    assert not members[T - 1, int(ids[-1])]


def partial_member_model() -> QModel:
    """tern_seed with every third neuron left out of table 1 and neuron 0 out of table 0."""
    qm = fresh("tern_seed")
    L = qm.layers[0]
    members = np.ones((L.n_tables, L.n_out), dtype=bool)
    members[1, ::3] = False
    members[0, 0] = False
    qm.layers[0] = dataclasses.replace(L, membership=members, table_offsets=None, table_ids=None)
    return qm


def test_membership_round_trip_with_and_without_tables():
    qm = partial_member_model()
    with_tables, without = elsh_bytes(qm, tables=True), elsh_bytes(qm, tables=False)
    assert MEMBERSHIP not in [e[0] for e in entries(with_tables)]
    assert (
        section_payload(without, MEMBERSHIP, 0)
        == np.packbits(
            qm.layers[0].membership.astype(np.uint8), axis=1, bitorder="little"
        ).tobytes()
    )
    a, b = read_elsh(with_tables), read_elsh(without)
    assert a.same_as(qm) and b.same_as(qm) and a.same_as(b)
    offsets, ids = Q.layer_tables(b.layers[0])
    assert offsets[-1] == qm.layers[0].membership.sum()
    Bk = 1 << qm.layers[0].bits
    assert 0 not in ids[offsets[0] : offsets[Bk]].tolist()
    X = Q.quantize_input(qm, np.random.default_rng(1).random((20, 18)) * 3)
    assert np.array_equal(Q.logits_batch(a, X), Q.logits_batch(b, X))
    assert describe(qm, tables=False)["layers"][0]["hash"]["member_fraction"] < 1.0
    # all-ones membership bits mean every neuron: written as no section at all
    ones = dataclasses.replace(qm.layers[0], membership=np.ones_like(qm.layers[0].membership))
    assert elsh_bytes(dataclasses.replace(qm, layers=[ones, qm.layers[1]]), tables=False) == (
        elsh_bytes(base_model("tern_seed"), tables=False)
    )


def test_membership_rules():
    qm = partial_member_model()
    without = elsh_bytes(qm, tables=False)
    payload = section_payload(without, MEMBERSHIP, 0)
    row = (qm.layers[0].n_out + 7) // 8  # 30 neurons: 4 bytes, the top 2 bits spare
    with_flag = rebuilt("tern_seed", add(Section(MEMBERSHIP, 0, payload)))
    expect_code(with_flag, "ELSH_FMT_UNEXPECTED")  # the stored tables already say
    dense = rebuilt("tern_seed", add(Section(MEMBERSHIP, 1, bytes(1))), tables=False)
    expect_code(dense, "ELSH_FMT_UNEXPECTED")
    for where in (NO_LAYER, 2):
        expect_code(
            rebuilt("tern_seed", add(Section(MEMBERSHIP, where, payload)), tables=False),
            "ELSH_FMT_UNEXPECTED",
        )
    short = rebuilt("tern_seed", add(Section(MEMBERSHIP, 0, payload[:-1])), tables=False)
    expect_code(short, "ELSH_FMT_SIZE")
    expect_code(set_in_section(without, MEMBERSHIP, 0, row - 1, "<B", 0x40), "ELSH_FMT_TABLES")
    expect_code(set_in_section(without, MEMBERSHIP, 0, 3 * row - 1, "<B", 0xFF), "ELSH_FMT_TABLES")
    all_in = rebuilt(
        "tern_seed", add(Section(MEMBERSHIP, 0, b"\xff\xff\xff\x3f" * 6)), tables=False
    )
    assert read_elsh(all_in).layers[0].membership is None
    assert read_elsh(all_in).same_as(base_model("tern_seed"))


def test_a_bad_info_section_is_ignored():
    data = rebuilt("tern_seed", retag(INFO, NO_LAYER, payload=b"\xff not json"))
    assert read_elsh(data).info is None
    data = rebuilt("tern_seed", retag(INFO, NO_LAYER, payload=b"[1, 2]"))
    assert read_elsh(data).info == {"value": [1, 2]}


def test_every_fault_is_reported_not_crashed():
    """Random single-byte corruptions (with the CRC repaired) either read or raise an
    ElshFormatError; the C reader, if built, agrees on the verdict."""
    rng = np.random.default_rng(0)
    for kind in ("tern_seed", "dwta_center_explicit", "lsh_output"):
        data = base_bytes(kind)
        for _ in range(60):
            b = bytearray(data)
            pos = int(rng.integers(0, len(data)))
            b[pos] = int(rng.integers(0, 256))
            bad = with_crc(b)
            try:
                read_elsh(bad)
                code = None
            except ElshFormatError as exc:
                code = exc.code
            assert c_code(bad) == code, (kind, pos)


# ----------------------------------------------------------------------------- golden files


def load_make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_golden"] = mod  # its dataclasses look their module up
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules["make_golden"]
    return mod


def test_golden_files_are_up_to_date(tmp_path, capsys):
    mod = load_make_golden()
    assert mod.main([str(tmp_path)]) == 0
    made = sorted(p.name for p in tmp_path.iterdir())
    assert len(made) == 2 * len(mod.CASES)
    committed = sorted(p.name for p in GOLDEN.iterdir() if p.suffix in (".elsh", ".expect"))
    assert made == committed, "export/golden has files make_golden.py does not write"
    for name in made:
        assert (tmp_path / name).read_bytes() == (GOLDEN / name).read_bytes(), (
            f"{name} is out of date: run python export/golden/make_golden.py"
        )


def parse_expect(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lines = path.read_text().splitlines()
    n, n_in, n_classes = map(int, lines[0].split())
    assert len(lines) == 1 + 3 * n
    x = np.array([lines[1 + 3 * i].split() for i in range(n)], dtype=np.int64)
    logits = np.array([lines[2 + 3 * i].split() for i in range(n)], dtype=np.int64)
    pred = np.array([int(lines[3 + 3 * i]) for i in range(n)])
    assert x.shape == (n, n_in) and logits.shape == (n, n_classes)
    return x, logits, pred


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.elsh")), ids=lambda p: p.stem)
def test_golden_expectations_hold_for_the_files_as_read(path):
    qm = read_elsh(path)
    x, logits, pred = parse_expect(path.with_suffix(".expect"))
    assert x.shape[0] == 20 and path.stat().st_size < 100_000
    assert (x >= -128).all() and (x <= 127).all()
    assert (x[0] == qm.input_zero_point).all() and (x[1] == 127).all() and (x[2] == -128).all()
    xq = x.astype(np.int8)
    assert np.array_equal(Q.logits_batch(qm, xq), logits)
    assert np.array_equal(Q.predict(qm, xq), pred)
    assert np.array_equal(pred, np.argmax(logits, axis=1))
    assert qm.info is not None and qm.info["case"] == path.stem
    model = FixedPointModel.load(path)
    for row, want, p in zip(xq, logits, pred):
        got_p, got = model.forward_q(row)
        assert got.tolist() == want.tolist() and got_p == p


def test_golden_files_cover_the_format():
    models = {p.stem: read_elsh(p) for p in GOLDEN.glob("*.elsh")}
    layers = [L for qm in models.values() for L in qm.layers]
    lsh = [L for L in layers if L.use_lsh]
    assert {L.family for L in lsh} == {0, 1, 2}
    assert {L.select_mode for L in lsh} == {0, 1}
    assert {L.hash_source for L in lsh} == {0, 1}
    assert {L.weight_bits for L in layers} == {8, 16}
    assert any(L.center for L in lsh) and any(L.is_output for L in lsh)
    flags = {p.stem: struct.unpack_from("<I", p.read_bytes(), 44)[0] for p in GOLDEN.glob("*.elsh")}
    assert set(flags.values()) == {0, 1}
    assert any(qm.input_zero_point != -128 for qm in models.values())
    a, b = models["ternary_seed_tables"], models["ternary_seed_notables"]
    assert a.same_as(b)
    a, b = models["membership_tables"], models["membership_notables"]
    assert a.same_as(b) and a.layers[0].membership is not None
    assert 0.2 < a.layers[0].membership.mean() < 0.8
