"""Decompression bombs and lying headers in data files (issue 15, items 2 and 3).

A few megabytes of gzip or zip can decompress to gigabytes; an .npy header can state any
shape. The readers now bound what they decompress: an IDX file by the size its own header
states (read first), a CSV or .amat text by max_data_bytes() ($EDGE_LSH_MAX_DATA_BYTES), the
arrays of an .npz by their headers, checked against the archive and the limit before anything
is allocated. Each test builds its bomb and runs ``edge-lsh train`` on it in a subprocess
capped at 1 GiB of address space: a clean DataError (exit 2) and a small peak RSS."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_hostile_cli import assert_clean_error, run_cli

from edge_lsh import data as D
from edge_lsh.errors import DataError

MB = 1 << 20


def gzip_of_zeros(n_mb: int, head: bytes = b"") -> bytes:
    """gzip members whose contents are head + n_mb MB of zeros, about 1 KB per MB: one 64 MB
    member compressed once and repeated (a multi-member .gz, as gzip -c a b > c writes)."""
    block = gzip.compress(bytes(64 * MB), compresslevel=9, mtime=0)
    first = gzip.compress(head + bytes(64 * MB), compresslevel=9, mtime=0)
    return first + block * (n_mb // 64 - 1)


def idx_header(magic: int, dims: tuple[int, ...]) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims)


def idx_dir(tmp: Path, train_images: bytes) -> Path:
    """An IDX folder with small valid labels and test files, and the given train images."""
    folder = tmp / "idx"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(train_images)
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_header(0x801, (2,)) + bytes(2))
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_header(0x803, (2, 2, 2)) + bytes(8))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_header(0x801, (2,)) + bytes(2))
    return folder


def test_a_4_gb_idx_bomb_reads_only_what_its_header_states(tmp_path) -> None:
    """4 MB of gzip holding 4 GB: the header says 60000 images of 28 x 28 (47 MB), so at most
    47 MB + 1 byte are decompressed, and the rest is an error (trailing bytes)."""
    head = idx_header(0x803, (60000, 28, 28))
    bomb = gzip_of_zeros(4096, head)
    assert len(bomb) < 6 * MB
    folder = idx_dir(tmp_path, bomb)
    r = run_cli(["train", "--data", f"idx:{folder}", "--epochs", "1"], tmp_path)
    assert_clean_error(r, "trailing bytes", "47040016 bytes")
    assert r.max_rss < 400 * MB, r  # the old reader reached 4.2 GB
    assert r.seconds < 30, r


def test_an_idx_header_stating_more_than_the_limit_is_refused_unread(tmp_path) -> None:
    head = idx_header(0x803, (2**31, 2**31, 2**31))
    folder = idx_dir(tmp_path, gzip.compress(head + bytes(100)))
    with pytest.raises(DataError, match=r"header states dims .* more than the .* bytes allowed"):
        D.load(f"idx:{folder}")


def test_a_csv_gzip_bomb_stops_at_the_limit(tmp_path, monkeypatch) -> None:
    """A .csv.gz of 256 MB, the limit lowered to 20 MB: refused once 20 MB are out (the
    default limit is what a 2 MB .csv.gz of 4 GB meets, at 2 GiB here)."""
    path = tmp_path / "bomb.csv"
    path.write_bytes(gzip.compress(b"0,1\n" + b"0" * (256 * MB), compresslevel=1))
    assert path.stat().st_size < 2 * MB
    r = run_cli(
        ["train", "--data", f"csv:{path}", "--epochs", "1"],
        tmp_path,
        env={"EDGE_LSH_MAX_DATA_BYTES": "20M"},
    )
    assert_clean_error(r, "decompress to more than the 20,971,520 bytes", "EDGE_LSH_MAX_DATA_BYTES")
    assert r.max_rss < 300 * MB, r
    monkeypatch.setenv("EDGE_LSH_MAX_DATA_BYTES", "20M")
    with pytest.raises(DataError, match="EDGE_LSH_MAX_DATA_BYTES"):
        D.load(f"amat:{path},{path}")  # .amat texts go through the same reader


def test_a_plain_file_over_the_limit_is_refused_unread(tmp_path, monkeypatch) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"0,1\n" * 1000)
    monkeypatch.setenv("EDGE_LSH_MAX_DATA_BYTES", "1000")
    with pytest.raises(DataError, match="4,000 bytes, more than the 1,000 bytes allowed"):
        D.load(f"csv:{path}")
    monkeypatch.setenv("EDGE_LSH_MAX_DATA_BYTES", "lots")
    with pytest.raises(DataError, match="expected a number of bytes"):
        D.load(f"csv:{path}")


def test_the_default_limit_fits_the_machine(monkeypatch) -> None:
    monkeypatch.delenv("EDGE_LSH_MAX_DATA_BYTES", raising=False)
    assert 64 * MB <= D.max_data_bytes() <= 2 << 30
    for text, value in (("123", 123), ("4G", 4 << 30), ("2m", 2 * MB), ("7K", 7 << 10)):
        monkeypatch.setenv("EDGE_LSH_MAX_DATA_BYTES", text)
        assert D.max_data_bytes() == value


# ----------------------------------------------------------------------------- .npz


def npz_with_header(path: Path, shape: tuple[int, ...], payload: bytes, descr: str = "<f4") -> None:
    """An .npz whose x.npy states `shape` but holds `payload`; y is a valid label array."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    y = io.BytesIO()
    np.save(y, np.zeros(4, np.int64))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", header.getvalue() + payload)
        zf.writestr("y.npy", y.getvalue())


@pytest.mark.parametrize(
    "shape,phrase",
    [
        ((1 << 40,), "states shape (1099511627776,)"),  # 2^40 elements: 4 TiB of float32
        ((1 << 70, 4), "states shape (1180591620717411303424, 4)"),  # beyond int64
        ((4, 2), "but the archive holds 1,000 bytes"),  # a header that does not match
    ],
)
def test_npz_members_stating_what_they_do_not_hold(tmp_path, shape, phrase) -> None:
    path = tmp_path / "lie.npz"
    npz_with_header(path, shape, bytes(1000))
    with pytest.raises(DataError, match="lie.npz") as info:
        D.load(f"npz:{path}")
    assert phrase in str(info.value)
    r = run_cli(["train", "--data", f"npz:{path}", "--epochs", "1"], tmp_path)
    assert_clean_error(r, phrase)
    assert r.max_rss < 400 * MB, r


def test_an_npz_member_whose_zip_size_lies_is_a_bomb(tmp_path) -> None:
    """The zip directory says x.npy is 2.4 GB, from 2 KB of DEFLATE data: impossible (DEFLATE
    expands at most ~1032 times), refused before reading; the old reader allocated 2.4 GB."""
    path = tmp_path / "bomb.npz"
    n = 600_000_000
    npz_with_header(path, (n,), bytes(1000))
    raw = bytearray(path.read_bytes())
    stated = 128 + 4 * n  # what the member's header says it holds
    cd = raw.find(b"PK\x01\x02")  # the central directory: the entry of x.npy
    while raw[cd + 46 : cd + 46 + struct.unpack_from("<H", raw, cd + 28)[0]] != b"x.npy":
        cd = raw.find(b"PK\x01\x02", cd + 4)
    struct.pack_into("<I", raw, cd + 24, stated)  # its uncompressed size
    struct.pack_into("<I", raw, 22, stated)  # and in the local header (x.npy is first)
    path.write_bytes(bytes(raw))
    assert zipfile.ZipFile(path).getinfo("x.npy").file_size == stated
    with pytest.raises(DataError, match="decompression bomb"):
        D.load(f"npz:{path}")
    r = run_cli(["train", "--data", f"npz:{path}", "--epochs", "1"], tmp_path)
    assert_clean_error(r, "decompression bomb")
    assert r.max_rss < 400 * MB, r


def test_an_npz_over_the_limit_is_refused_before_reading(tmp_path, monkeypatch) -> None:
    """100 MB of zeros in 100 KB: within DEFLATE's ratio, over a 50 MB limit."""
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, x=np.zeros((25 * MB // 4, 4), np.float32), y=np.zeros(25 * MB // 4))
    assert path.stat().st_size < MB
    r = run_cli(
        ["train", "--data", f"npz:{path}", "--epochs", "1"],
        tmp_path,
        env={"EDGE_LSH_MAX_DATA_BYTES": "50M"},
    )
    assert_clean_error(r, "its arrays take", "EDGE_LSH_MAX_DATA_BYTES")
    assert r.max_rss < 300 * MB, r


def test_npz_readers_keep_plain_arrays_as_numpy_does(tmp_path) -> None:
    """The checked reader returns what numpy.load returns: dtypes, Fortran order, stored and
    compressed members."""
    rng = np.random.default_rng(1)
    x = np.asfortranarray(rng.random((30, 5)).astype(np.float32))
    y = rng.integers(0, 3, 30).astype(np.uint8)
    for save in (np.savez, np.savez_compressed):
        path = tmp_path / "ok.npz"
        save(path, x=x, y=y, extra=np.arange(3))
        got = D._npz_arrays(path)
        with np.load(path) as want:
            for k in ("x", "y", "extra"):
                assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k])
        assert got["x"].flags.f_contiguous
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(DataError, match="dtype object; expected numbers"):
        D.load(f"npz:{tmp_path / 'obj.npz'}")
    with open(tmp_path / "single.npz", "wb") as f:
        np.save(f, x)
    with pytest.raises(DataError, match="holds a single array"):
        D.load(f"npz:{tmp_path / 'single.npz'}")


def test_idx_readers_unchanged_for_valid_files(tmp_path) -> None:
    """Plain and gzip IDX files read as before; a corrupt gzip stream is a clear error."""
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    blob = idx_header(0x803, (2, 3, 4)) + imgs.tobytes()
    for name, raw in (("a", blob), ("b.gz", gzip.compress(blob))):
        (tmp_path / name).write_bytes(raw)
        assert np.array_equal(D._read_idx(tmp_path / name, 0x803), imgs)
    (tmp_path / "c.gz").write_bytes(gzip.compress(blob)[:-12])
    with pytest.raises(DataError, match="gzip"):
        D._read_idx(tmp_path / "c.gz", 0x803)
    assert zlib.crc32(blob)  # (the blob is what the test wrote)
