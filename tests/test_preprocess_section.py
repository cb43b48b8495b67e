"""The PREPROCESS section (issue 9 item 4; export/FORMAT.md 4.1): the preprocessing travels in
the model. Type 12, network-level, optional, 16 bytes: f32 input_divisor (> 0, finite; the
network input is raw / divisor in float32), f32 input_min, f32 input_max (finite, min <= max:
the training inputs' range after scaling), u32 reserved = 0. A file with it says version 1.1,
one without stays 1.0; the section changes no output; a reader that does not know type 12
skips it; every bad value gets the same code from both readers; edge-lsh export writes it from
the model's data record."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import edge_lsh.format.reader as reader_module
from edge_lsh.cli import main
from edge_lsh.errors import ElshFormatError
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import describe, elsh_bytes, read_elsh, section_sizes
from edge_lsh.format.layout import NO_LAYER, PREPROCESS, PREPROCESS_STRUCT, SECTION_NAMES
from edge_lsh.format.writer import Section, assemble, model_sections
from edge_lsh.oracle import qreference as Q
from edge_lsh.oracle.qmodel import QModel

GOLDEN = Path(__file__).resolve().parents[1] / "export" / "golden"
NAN = float("nan")
INF = float("inf")


def golden(name: str = "ternary_seed_notables") -> QModel:
    return read_elsh((GOLDEN / f"{name}.elsh").read_bytes())


def with_preprocess(qm: QModel, pre: tuple[float, float, float] | None) -> QModel:
    return dataclasses.replace(qm, preprocess=pre)


def verdicts(data: bytes) -> tuple[str | None, str | None, str | None]:
    """(C, read_elsh, describe): the code, or None when accepted."""
    out: list[str | None] = []
    for reader in (FixedPointModel, read_elsh, describe):
        try:
            reader(data)
            out.append(None)
        except ElshFormatError as exc:
            out.append(exc.code)
    return out[0], out[1], out[2]


def summary(data: bytes) -> tuple[int, float, float, float]:
    s = FixedPointModel(data)._summary
    return int(s.has_preprocess), float(s.input_divisor), float(s.input_min), float(s.input_max)


@pytest.mark.parametrize("name", ["ternary_seed_notables", "simhash_int16_2hidden"])
@pytest.mark.parametrize("tables", [True, False])
def test_round_trip_in_both_readers(name: str, tables: bool) -> None:
    qm = with_preprocess(golden(name), (255.0, -0.25, 1.0))
    data = elsh_bytes(qm, tables=tables)
    assert struct.unpack_from("<HH", data, 8) == (1, 1)  # version 1.1
    back = read_elsh(data)
    assert back.preprocess == (255.0, -0.25, 1.0)
    assert describe(data)["preprocess"] == {
        "input_divisor": 255.0,
        "input_min": -0.25,
        "input_max": 1.0,
    }
    assert summary(data) == (1, 255.0, -0.25, 1.0)
    (entry,) = [s for s in section_sizes(data) if s["type"] == PREPROCESS]
    assert entry["name"] == "PREPROCESS" and entry["size"] == 16
    assert entry["layer"] is None and not entry["required"]  # optional: 1.0 readers skip it
    # written again from what was read: the same bytes
    assert elsh_bytes(back, tables=tables) == data


def test_values_are_float32() -> None:
    qm = with_preprocess(golden(), (0.1, 1 / 3, 2 / 3))
    want = tuple(float(np.float32(v)) for v in (0.1, 1 / 3, 2 / 3))
    data = elsh_bytes(qm)
    assert read_elsh(data).preprocess == want
    assert summary(data)[1:] == want


def test_without_the_section_nothing_changes() -> None:
    qm = golden()
    assert qm.preprocess is None
    data = elsh_bytes(qm, tables=False)
    assert struct.unpack_from("<HH", data, 8) == (1, 0)  # still a 1.0 file
    assert data == (GOLDEN / "ternary_seed_notables.elsh").read_bytes()  # byte for byte
    assert describe(data)["preprocess"] is None
    assert summary(data) == (0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.elsh")))
def test_the_same_outputs_with_and_without(name: str) -> None:
    qm = golden(name)
    rng = np.random.default_rng(9)
    xq = rng.integers(-128, 128, size=(5, qm.n_in)).astype(np.int8)
    plain = FixedPointModel(elsh_bytes(qm))
    pre = FixedPointModel(elsh_bytes(with_preprocess(qm, (16.0, 0.0, 1.0))))
    for r in range(5):
        a, la = plain.forward_q(xq[r])
        b, lb = pre.forward_q(xq[r])
        assert a == b and np.array_equal(la, lb)
    want = Q.logits_batch(qm, xq)
    got = Q.logits_batch(read_elsh(elsh_bytes(with_preprocess(qm, (16.0, 0.0, 1.0)))), xq)
    assert np.array_equal(want, got)


def test_a_reader_that_does_not_know_type_12_skips_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python reader as a 1.0 reader was (no type 12 among the known sections) reads a file
    with the section as the same model; so does any reader with the section renumbered to a
    type it does not know (as type 12 is to a 1.0 reader)."""
    qm = with_preprocess(golden(), (255.0, 0.0, 1.0))
    data = elsh_bytes(qm)
    old_names = {t: n for t, n in SECTION_NAMES.items() if t != PREPROCESS}
    monkeypatch.setattr(reader_module, "SECTION_NAMES", old_names)
    old = read_elsh(data)
    assert old.preprocess is None and old.same_as(qm)
    monkeypatch.undo()
    secs = model_sections(qm, tables=True)
    renumbered = [s._replace(type=200) if s.type == PREPROCESS else s for s in secs]
    other = assemble(renumbered, flags=1)
    assert verdicts(other) == (None, None, None)
    assert read_elsh(other).preprocess is None and read_elsh(other).same_as(qm)


def payload(divisor: float, lo: float, hi: float, reserved: int = 0) -> bytes:
    return PREPROCESS_STRUCT.pack(divisor, lo, hi, reserved)


BAD = {
    "divisor 0": (payload(0.0, 0.0, 1.0), "ELSH_FMT_NET"),
    "divisor -0": (payload(-0.0, 0.0, 1.0), "ELSH_FMT_NET"),
    "divisor negative": (payload(-255.0, 0.0, 1.0), "ELSH_FMT_NET"),
    "divisor NaN": (payload(NAN, 0.0, 1.0), "ELSH_FMT_NET"),
    "divisor inf": (payload(INF, 0.0, 1.0), "ELSH_FMT_NET"),
    "min NaN": (payload(1.0, NAN, 1.0), "ELSH_FMT_NET"),
    "min -inf": (payload(1.0, -INF, 1.0), "ELSH_FMT_NET"),
    "max inf": (payload(1.0, 0.0, INF), "ELSH_FMT_NET"),
    "max NaN": (payload(1.0, 0.0, NAN), "ELSH_FMT_NET"),
    "min above max": (payload(1.0, 2.0, 1.0), "ELSH_FMT_NET"),
    "reserved": (payload(1.0, 0.0, 1.0, 1), "ELSH_FMT_NET"),
    "15 bytes": (payload(1.0, 0.0, 1.0)[:15], "ELSH_FMT_SIZE"),
    "17 bytes": (payload(1.0, 0.0, 1.0) + b"\0", "ELSH_FMT_SIZE"),
    "empty": (b"", "ELSH_FMT_SIZE"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_value_gets_the_same_code_from_both_readers(case: str) -> None:
    body, code = BAD[case]
    secs = model_sections(golden(), tables=True)
    data = assemble([*secs, Section(PREPROCESS, NO_LAYER, body, 0)], flags=1)
    assert verdicts(data) == (code, code, code)


def test_where_the_section_may_be() -> None:
    secs = model_sections(golden(), tables=True)
    good = Section(PREPROCESS, NO_LAYER, payload(2.0, 3.0, 3.0), 0)  # min == max is fine
    assert verdicts(assemble([*secs, good], flags=1)) == (None, None, None)
    required = good._replace(flags=1)  # a known type may be marked required
    assert verdicts(assemble([*secs, required], flags=1)) == (None, None, None)
    assert read_elsh(assemble([required, *secs], flags=1)).preprocess == (2.0, 3.0, 3.0)
    for layer in (0, 7):
        bad = assemble([*secs, good._replace(layer=layer)], flags=1)
        assert verdicts(bad) == ("ELSH_FMT_UNEXPECTED",) * 3
    twice = assemble([*secs, good, good], flags=1)
    assert verdicts(twice) == ("ELSH_FMT_DUPLICATE",) * 3
    # a bad NET is found first: PREPROCESS is checked right after NET
    net = struct.pack("<IIIfQ8s", 0, 1, 2, 1.0, 0, bytes(8))
    first = assemble([Section(1, NO_LAYER, net), good._replace(payload=b"")], flags=0)
    assert verdicts(first) == ("ELSH_FMT_NET",) * 3


def test_the_writer_refuses_bad_values() -> None:
    for pre in ((0.0, 0.0, 1.0), (1.0, 2.0, 1.0), (NAN, 0.0, 1.0)):
        with pytest.raises(ElshFormatError) as info:
            elsh_bytes(with_preprocess(golden(), pre))
        assert info.value.code == "ELSH_FMT_NET"


def test_export_writes_the_models_preprocessing(tmp_path: Path, capsys) -> None:
    """edge-lsh export takes the section from the model's data record (divisor and input
    range), as the INFO section already carried it."""
    model, out = tmp_path / "m.npz", tmp_path / "m.elsh"
    args = ["--data", "digits", "--hidden", "24", "--epochs", "1", "--quiet", "--json"]
    assert main(["train", *args, "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["export", str(model), "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    data = out.read_bytes()
    record = json.loads(json.dumps(read_elsh(data).info))["data"]
    lo, hi = record["input_range"]
    want = (float(record["preprocess"]["divisor"]), float(lo), float(hi))
    assert want[0] == 16.0 and lo <= hi
    assert read_elsh(data).preprocess == want
    assert summary(data) == (1, *want)
