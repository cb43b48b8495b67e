"""Hostile .elsh files (issue 15): the Python reader keeps the C reader's work bounds.

A file of a few kilobytes may ask for up to 2^24 PRNG draws to regenerate its hash functions
and 2^28 operations to build its tables (FORMAT.md, work limits). The C reader does that in
well under a second; the Python reader used to take minutes (SimHash, 12 us per normal) or
hours (ternary, a quadratic search for repeats). Now the draws run in bulk at numpy speed,
bit-identical to the one-at-a-time transcription of FORMAT.md 5.4 kept here as the reference,
tables are built in bounded blocks, and ``describe`` / ``edge-lsh inspect`` draw nothing.
Each file is built here with the writer's helpers (``model_sections`` / ``assemble``)."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import numpy as np
import pytest

from edge_lsh.cli import main
from edge_lsh.errors import ElshFormatError
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import describe, read_elsh
from edge_lsh.format.layout import (
    INFO,
    MAX_BUILD_WORK,
    MAX_DRAW_WORK,
    MAX_HASH_WORK,
    MAX_SCAN_WORK,
    NET,
    NET_STRUCT,
    NO_LAYER,
    draw_work,
    hash_work,
)
from edge_lsh.format.writer import Section, assemble, model_sections
from edge_lsh.oracle import hashgen as H
from edge_lsh.oracle.prng import Prng
from edge_lsh.oracle.qmodel import QLayer, QModel

# ----------------------------------------------------------------------------- the reference


class CountingPrng(Prng):
    """A Prng that counts the values below() rejects."""

    rejected = 0

    def below(self, n: int) -> int:
        threshold = ((1 << 32) - n) % n
        while True:
            r = self.u32()
            if r >= threshold:
                return r % n
            self.rejected += 1


def ref_distinct(rng: Prng, n: int, k: int) -> list[int]:
    out: list[int] = []
    while len(out) < k:
        c = rng.below(n)
        if c not in out:
            out.append(c)
    return out


def ref_draw_hash(
    family: int, T: int, K: int, d: int, rng: Prng, nnz: int = 0, binw: int = 0
) -> dict[str, np.ndarray]:
    """FORMAT.md 5.4 one draw at a time, as hashgen did before the draws were made in bulk."""
    if family == H.SIMHASH:
        return {"proj": np.array([rng.normal() for _ in range(T * K * d)], np.float32)}
    if family == H.TERNARY:
        idx, sign = [], []
        for _ in range(T * K):
            idx += ref_distinct(rng, d, nnz)
            sign += [1 if rng.u32() >> 31 else -1 for _ in range(nnz)]
        return {"tern_idx": np.array(idx, np.uint16), "tern_sign": np.array(sign, np.int8)}
    idx = []
    for _ in range(T * H.dwta_per_table(K, binw)):
        idx += ref_distinct(rng, d, binw)
    return {"dwta_idx": np.array(idx, np.uint16)}


def ref_pad_order(n_out: int, rng: Prng) -> np.ndarray:
    pad = list(range(n_out))
    for j in range(n_out - 1, 0, -1):
        r = rng.below(j + 1)
        pad[j], pad[r] = pad[r], pad[j]
    return np.array(pad, np.uint16)


@pytest.mark.parametrize("seed", [0, 3, 2**64 - 1])
def test_bulk_u32_and_jump_equal_one_at_a_time(seed: int) -> None:
    for n in (0, 1, 63, 64, 4095, 4096, 4097, 70_001):
        bulk, one = Prng(seed), Prng(seed)
        got = bulk.u32_array(n)
        assert got.dtype == np.uint32
        assert got.tolist() == [one.u32() for _ in range(n)], n
        assert bulk.state == one.state, n
        jumped = Prng(seed)
        jumped.jump(n)
        assert jumped.state == one.state, n
    far = Prng(seed)
    far.jump(2**40 + 5)  # O(log n): a jump a loop could never make
    near = Prng(seed)
    near.jump(2**40)
    near.u32_array(5)
    assert far.state == near.state


CASES: list[tuple[int, int, int, int, int, int]] = [  # family, T, K, d, nnz, bin
    (H.SIMHASH, 3, 5, 300, 0, 0),  # 4500 normals: the lanes path
    (H.SIMHASH, 1, 1, 7, 0, 0),
    (H.TERNARY, 4, 3, 70, 70, 0),  # every index: rejection of repeats at its worst
    (H.TERNARY, 9, 4, 1000, 300, 0),  # the numpy search for first occurrences
    (H.TERNARY, 30, 3, 8, 3, 0),  # the plain loop
    (H.DWTA, 5, 15, 256, 0, 256),
    (H.DWTA, 7, 3, 16, 0, 2),
]


@pytest.mark.parametrize("family,T,K,d,nnz,binw", CASES)
def test_bulk_draws_equal_the_reference(
    family: int, T: int, K: int, d: int, nnz: int, binw: int
) -> None:
    for seed in (1, 2**63 + 7):
        fast, slow = Prng(seed), Prng(seed)
        got = H.draw_hash(family, T, K, d, fast, ternary_nnz=nnz, dwta_bin=binw)
        want = ref_draw_hash(family, T, K, d, slow, nnz, binw)
        for key, arr in want.items():
            assert np.array_equal(got[key].reshape(-1), arr), (key, seed)
        assert fast.state == slow.state  # the rng is left where the C leaves it
        if family == H.SIMHASH:
            q = H.draw_hash(family, T, K, d, Prng(seed), simhash_as_int8=True)["proj"]
            assert np.array_equal(q, H.simhash_int8(got["proj"]))


def test_bulk_pad_order_equals_the_reference_rejections_included() -> None:
    rejected = 0
    for seed in (4, 5):  # seeds whose 65534 draws include a rejected value
        slow = CountingPrng(seed)
        want = ref_pad_order(65535, slow)
        fast = Prng(seed)
        assert np.array_equal(H.draw_pad_order(65535, fast), want)
        assert fast.state == slow.state
        rejected += slow.rejected
    assert rejected >= 2
    assert H.draw_pad_order(1, Prng(0)).tolist() == [0]


# ----------------------------------------------------------------------------- hostile files


def _dense(n_in: int, n_out: int, is_output: bool) -> QLayer:
    rng = np.random.default_rng(n_in * 7 + n_out)
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


def lsh_file(
    family: int,
    n_in: int,
    T: int,
    K: int,
    *,
    nnz: int = 0,
    binw: int = 0,
    n_out: int = 1,
    pad: int = 0,
) -> bytes:
    """A two-layer network whose hidden layer (n_in -> n_out, k = 1, pool 1) hashes with
    functions drawn from the seed, and whose tables are built at load (none stored). pad > 0
    adds an INFO section of that many bytes (JSON too long to be read): a file must be large
    enough to pay for the arena and work it asks for (FORMAT.md 5.8 totals)."""
    L = _dense(n_in, n_out, False)
    L.use_lsh, L.family, L.bits, L.n_tables, L.k = True, family, K, T, 1
    L.pool, L.hash_dim, L.ternary_nnz, L.dwta_bin = 1, n_in, nnz, binw
    L.dwta_per_table = H.dwta_per_table(K, binw) if family == H.DWTA else 0
    qm = QModel(
        n_in=n_in, n_classes=2, input_inv_scale=1.0, seed=11, layers=[L, _dense(n_out, 2, True)]
    )
    sections = model_sections(qm, tables=False)
    if pad:
        sections.append(Section(INFO, NO_LAYER, b'{"pad":"' + b"x" * (pad - 10) + b'"}', 0))
    return assemble(sections, flags=0)


def c_verdict(data: bytes) -> tuple[str | None, int]:
    """The C reader's code (None: accepted) and the arena it asks for."""
    try:
        return None, FixedPointModel(data).arena_bytes
    except ElshFormatError as exc:
        return exc.code, 0


def work(family: int, n_in: int, T: int, K: int, nnz: int = 0, binw: int = 0) -> dict[str, int]:
    P = H.dwta_per_table(K, binw) if family == H.DWTA else 0
    return {
        "hash": hash_work(family, T, K, n_in, nnz, binw, P),
        "draw": draw_work(family, T, K, n_in, nnz, binw, P),
    }


# At the per-layer limits: the most a layer may ask for, in a few kilobytes of layers, padded
# to the size whose per-file totals allow it (L = 1024, K = 15: 128 MB of bucket offsets built
# at load need a file of 8 MB or more).
AT_LIMIT: dict[str, dict[str, Any]] = {
    "simhash_2^24_draws": {"family": H.SIMHASH, "n_in": 1092, "T": 1024, "K": 15, "pad": 9 << 20},
    "ternary_every_index": {"family": H.TERNARY, "n_in": 65535, "T": 2, "K": 10, "nnz": 65535},
    "ternary_15360_projections": {
        "family": H.TERNARY,
        "n_in": 64,
        "T": 1024,
        "K": 15,
        "nnz": 40,
        "pad": 9 << 20,
    },
    "dwta_bins_of_256": {
        "family": H.DWTA,
        "n_in": 4096,
        "T": 1024,
        "K": 15,
        "binw": 256,
        "pad": 9 << 20,
    },
    "simhash_2^28_build": {
        "family": H.SIMHASH,
        "n_in": 1092,
        "T": 1024,
        "K": 15,
        "n_out": 8,
        "pad": 9 << 20,
    },
}


def test_the_files_at_the_limits_are_at_the_limits() -> None:
    assert (
        work(**{k: v for k, v in AT_LIMIT["simhash_2^24_draws"].items() if k != "pad"})["draw"]
        > 0.99 * MAX_DRAW_WORK
    )
    assert work(H.TERNARY, 65535, 2, 10, nnz=65535)["draw"] > 0.9 * MAX_DRAW_WORK
    assert work(H.TERNARY, 64, 1024, 15, nnz=40)["draw"] > 0.7 * MAX_DRAW_WORK
    build = 2 * 8 * (work(H.SIMHASH, 1092, 1024, 15)["hash"] + 1092)
    assert 0.99 * MAX_BUILD_WORK < build <= MAX_BUILD_WORK


@pytest.mark.parametrize("name", sorted(AT_LIMIT))
def test_inspect_describes_a_file_at_the_limits_without_drawing(
    name: str, tmp_path, capsys
) -> None:
    data = lsh_file(**AT_LIMIT[name])
    assert len(data) - AT_LIMIT[name].get("pad", 0) < 70_000
    assert c_verdict(data)[0] is None  # a valid file: C accepts it
    t0 = time.perf_counter()
    d = describe(data)
    assert time.perf_counter() - t0 < 1.0
    assert d["layers"][0]["hash"]["source"] == "seed"
    path = tmp_path / f"{name}.elsh"
    path.write_bytes(data)
    t0 = time.perf_counter()
    assert main(["inspect", str(path)]) == 0
    assert time.perf_counter() - t0 < 2.0
    assert "layer 0 (hidden)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name", ["simhash_2^24_draws", "ternary_every_index", "simhash_2^28_build"]
)
def test_read_elsh_at_the_limits_is_bounded_like_c(name: str) -> None:
    """The whole read (hash functions drawn, tables built) in bounded time, and in memory
    about the arena the C reader asks for (the tables built at load dominate both)."""
    data = lsh_file(**AT_LIMIT[name])
    code, arena = c_verdict(data)
    assert code is None
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        qm = read_elsh(data)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 30, f"{seconds:.1f} s (the C reader takes under a second)"
    assert peak < 1.3 * arena + (64 << 20), f"peak {peak >> 20} MB, C arena {arena >> 20} MB"
    L = qm.layers[0]
    assert L.table_offsets is not None and L.table_ids is not None
    assert L.table_ids.size == L.n_tables * L.n_out  # every neuron in every table
    if L.family == H.TERNARY:
        assert L.tern_idx is not None
        assert (np.sort(L.tern_idx, axis=-1) == np.arange(65535)).all()


# One step over each limit: both readers refuse at once, with the same code (LAYER).
OVER_LIMIT: dict[str, tuple[dict[str, Any], str]] = {
    "draws": ({"family": H.TERNARY, "n_in": 65535, "T": 2, "K": 11, "nnz": 65535}, "draw"),
    "hash": ({"family": H.SIMHASH, "n_in": 1093, "T": 1024, "K": 15}, "hash"),
    "scan": ({"family": H.SIMHASH, "n_in": 2, "T": 1024, "K": 1, "n_out": 16385}, "scan"),
    "build": ({"family": H.SIMHASH, "n_in": 1092, "T": 1024, "K": 15, "n_out": 9}, "build"),
}


@pytest.mark.parametrize("name", sorted(OVER_LIMIT))
def test_one_step_over_a_limit_is_refused_at_once(name: str) -> None:
    fields, which = OVER_LIMIT[name]
    data = lsh_file(**fields)
    w = work(fields["family"], fields["n_in"], fields["T"], fields["K"], fields.get("nnz", 0))
    n_out = fields.get("n_out", 1)
    over = {
        "draw": w["draw"] > MAX_DRAW_WORK,
        "hash": w["hash"] > MAX_HASH_WORK,
        "scan": fields["T"] * n_out > MAX_SCAN_WORK,
        "build": 2 * n_out * (w["hash"] + fields["n_in"]) > MAX_BUILD_WORK,
    }
    assert over[which]
    assert c_verdict(data)[0] == "ELSH_FMT_LAYER"
    for reader in (read_elsh, describe):
        t0 = time.perf_counter()
        with pytest.raises(ElshFormatError) as info:
            reader(data)
        assert time.perf_counter() - t0 < 1.0
        assert info.value.code == "ELSH_FMT_LAYER"
        assert "limit" in info.value.message


def test_4096_sections_are_checked_fast_and_as_in_c() -> None:
    """The section table's pairwise rules (no overlap, no repeated type and layer) take
    linear-logarithmic time in Python (4096 entries: 8 million pairs the old loop compared),
    with the C reader's verdict for a repeat or an overlap found last."""
    net = NET_STRUCT.pack(4, 1, 2, 1.0, 0, bytes(8))
    extra = [Section(100 + i, NO_LAYER, bytes(8), 0) for i in range(4094)]
    base = [Section(NET, NO_LAYER, net), *extra]
    repeat = assemble([*base, Section(100, NO_LAYER, bytes(8), 0)])
    assert c_verdict(repeat)[0] == "ELSH_FMT_DUPLICATE"
    for reader in (read_elsh, describe):
        t0 = time.perf_counter()
        with pytest.raises(ElshFormatError) as info:
            reader(repeat)
        assert time.perf_counter() - t0 < 2.0
        assert info.value.code == "ELSH_FMT_DUPLICATE"
        assert "section 0 " not in info.value.message and "repeats section 1'" in info.value.message
    missing = assemble([*base, Section(99, NO_LAYER, bytes(8), 0)])  # no LAYER: fine until then
    assert c_verdict(missing)[0] == "ELSH_FMT_MISSING"
    t0 = time.perf_counter()
    with pytest.raises(ElshFormatError) as info:
        read_elsh(missing)
    assert time.perf_counter() - t0 < 2.0
    assert info.value.code == "ELSH_FMT_MISSING"
