"""The standalone runner's command line (issue 9, issue 15): --version, --help naming every
option, the CSV label column (last by default, --label-column first; a file that does not fit is
an error naming the flag, as in Python), the .npy header parsed as a dict (a 'shape': inside
another key's value is not the shape), --max-arena checked before the arena is allocated, and
the accuracy as a percentage. The hostile inputs run in the plain build and in an
AddressSanitizer + UndefinedBehaviorSanitizer build: exit 2 and a message, never a crash."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge_lsh import __version__
from edge_lsh.fixed import FixedPointModel

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "native" / "runner" / "edge_lsh_run.c"
HEADER = ROOT / "native" / "include" / "edge_lsh.h"
MODEL = ROOT / "export" / "golden" / "lsh_output.elsh"  # 16 inputs, 12 classes
N_IN, N_CLASSES = 16, 12
# native/Makefile's ASAN_FLAGS at -O0: the same checks, a third of the build time
ASAN_FLAGS = "-O0 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"


def _make(args: list[str]) -> None:
    missing = [tool for tool in ("make", "cc") if shutil.which(tool) is None]
    assert not missing, f"the C runner tests need {' and '.join(missing)} (required test tools)"
    build = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "native"), *args], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr


@pytest.fixture(scope="module")
def plain() -> Path:
    _make(["runner"])
    return ROOT / "native" / "build" / "edge-lsh-run"


@pytest.fixture(scope="module")
def asan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runner and the kernel under ASan + UBSan, built in a folder of its own (no race with
    a concurrent `make test-asan`)."""
    build = tmp_path_factory.mktemp("asan")
    _make(["-j4", f"BUILD={build}", f"CFLAGS={ASAN_FLAGS}", f"{build}/edge-lsh-run"])
    return build / "edge-lsh-run"


@pytest.fixture(params=["plain", "asan"])
def runner(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(request.param)


def run(
    runner: Path, *args: str | Path, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1")
    r = subprocess.run(
        [str(runner), *map(str, args)],
        input=None if stdin is None else stdin.decode("latin-1"),
        capture_output=True,
        text=True,
        errors="replace",
        env=env,
    )
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    assert r.returncode in (0, 1, 2), (r.returncode, r.stderr)
    return r


def assert_refused(r: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("edge-lsh-run: ") and r.stderr.count("\n") == 1, r.stderr
    for phrase in phrases:
        assert phrase in r.stderr, (phrase, r.stderr)


def predictions(r: subprocess.CompletedProcess[str]) -> list[int]:
    assert r.returncode == 0, r.stderr
    return [int(line.split()[0]) for line in r.stdout.splitlines() if not line.startswith("#")]


# ----------------------------------------------------------------------------- --version, --help


def header_define(name: str) -> int:
    m = re.search(rf"^#define {name} (\d+)", HEADER.read_text(), re.M)
    assert m, name
    return int(m.group(1))


def test_version(plain: Path) -> None:
    r = run(plain, "--version")
    assert r.returncode == 0 and r.stderr == ""
    major, minor = header_define("ELSH_VERSION_MAJOR"), header_define("ELSH_VERSION_MINOR")
    fmt = f"{header_define('ELSH_FORMAT_MAJOR')}.{header_define('ELSH_FORMAT_MINOR')}"
    assert r.stdout == (
        f"edge-lsh-run {major}.{minor} (.elsh format {fmt}: reads every "
        f"{header_define('ELSH_FORMAT_MAJOR')}.x file)\n"
    )
    # the kernel and the Python package are versioned together
    assert __version__.split(".")[:2] == [str(major), str(minor)]
    # wherever it stands on the command line, and before a model is needed
    assert run(plain, "no-such.elsh", "--version").stdout == r.stdout


def test_help_names_every_option(plain: Path) -> None:
    r = run(plain, "--help")
    assert r.returncode == 0 and r.stderr == ""
    accepted = set(re.findall(r'strcmp\(a, "(--[a-z-]+)"\)', SOURCE.read_text()))
    assert {"--probs", "--version", "--label-column", "--max-arena", "--logits"} <= accepted
    helped = set(re.findall(r"^\s+(--[a-z-]+)", r.stdout, re.M))
    assert accepted == helped, accepted ^ helped
    assert "default 256M" in r.stdout and "0: no limit" in r.stdout
    assert "exit status" in r.stdout
    # bad options: status 2, the usage on stderr
    for args in (
        ["--bogus"],
        ["-x"],
        [str(MODEL), "--label-column"],
        [str(MODEL), "--repeat", "0"],
    ):
        bad = run(plain, *args)
        assert bad.returncode == 2 and bad.stdout == "", (args, bad)


# ----------------------------------------------------------------------------- accuracy


def golden_rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n input rows for MODEL, the last input fixed at 0, and the model's predictions."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, N_IN)).astype(np.float32)
    x[:, -1] = 0.0
    return x, FixedPointModel.load(MODEL).predict(x)


def test_accuracy_is_a_percentage(plain: Path, tmp_path: Path) -> None:
    x, pred = golden_rows(40)
    y = pred.copy()
    y[:3] = (y[:3] + 1) % N_CLASSES  # 37 of 40 right
    csv = tmp_path / "x.csv"
    np.savetxt(csv, np.c_[x, y], delimiter=",", fmt="%.9g")
    r = run(plain, MODEL, csv, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "# accuracy: 92.50% (37 of 40 labelled rows)\n" in r.stdout


# ----------------------------------------------------------------------------- the label column


def test_label_column(runner: Path, tmp_path: Path) -> None:
    x, pred = golden_rows(30, seed=1)
    y = pred.copy()
    y[:6] = (y[:6] + 5) % N_CLASSES  # 24 of 30 right
    assert len(set(y.tolist())) >= 2
    first = tmp_path / "first.csv"
    np.savetxt(first, np.c_[y, x], delimiter=",", fmt="%.9g")
    last = tmp_path / "last.csv"
    np.savetxt(last, np.c_[x, y], delimiter=",", fmt="%.9g")
    # label first, read with the default: its last column (the last input, always 0) is not
    # labels, its first is: exit 2 naming the flag
    assert_refused(
        run(runner, MODEL, first),
        "first.csv: the last column should hold the class labels",
        "single value 0 (one class)",
        "pass --label-column first",
    )
    ok = run(runner, MODEL, first, "--label-column", "first", "--quiet")
    assert "# accuracy: 80.00% (24 of 30 labelled rows)" in ok.stdout, ok.stderr
    both = run(runner, MODEL, last, "--label-column", "last")
    assert predictions(both) == predictions(run(runner, MODEL, first, "--label-column", "first"))
    assert predictions(both) == pred.tolist()
    assert "# accuracy: 80.00% (24 of 30 labelled rows)" in both.stdout
    assert predictions(run(runner, MODEL, last)) == pred.tolist()  # last is the default
    # label last, read as first: the first column (inputs) cannot be labels
    assert_refused(
        run(runner, MODEL, last, "--label-column", "first"),
        "(the first column) is not a class 0..11",
        "its last column looks like labels: pass --label-column last",
    )
    # a label-first file whose last column varies: the bad label names the flag too
    x2 = x.copy()
    x2[:, -1] = np.arange(30) * 7 % 200
    varied = tmp_path / "varied.csv"
    np.savetxt(varied, np.c_[y, x2], delimiter=",", fmt="%.9g")
    assert_refused(run(runner, MODEL, varied), "label ", "pass --label-column first")
    assert_refused(run(runner, MODEL, last, "--label-column", "middle"), "first or last")


def test_label_column_leaves_fitting_files_alone(runner: Path, tmp_path: Path) -> None:
    x, pred = golden_rows(8, seed=2)
    csv = tmp_path / "x.csv"
    # every row of one class (a file of one class is fine to classify): the first column does
    # not look like labels (not integers)
    np.savetxt(csv, np.c_[x, np.full(8, 3)], delimiter=",", fmt="%.9g")
    assert run(runner, MODEL, csv).returncode == 0
    # one labelled row: nothing to compare
    np.savetxt(csv, np.c_[[[2]], x[:1, 1:], [[4]]], delimiter=",")  # 2 first, 4 last
    assert run(runner, MODEL, csv).returncode == 0
    # rows without a label take no label column at all
    np.savetxt(csv, x, delimiter=",", fmt="%.9g")
    for col in ("first", "last"):
        assert predictions(run(runner, MODEL, csv, "--label-column", col)) == pred.tolist()
    # on stdin too
    text = "\n".join(",".join(f"{v:.9g}" for v in [int(pred[i]), *x[i]]) for i in range(8))
    assert_refused(
        run(runner, MODEL, "-", stdin=text.encode() + b"\n"), "<stdin>", "--label-column first"
    )


# ----------------------------------------------------------------------------- .npy headers


def npy(header: str | bytes, data: bytes = b"", version: int = 1, hlen: int | None = None) -> bytes:
    h = header.encode("latin-1") if isinstance(header, str) else header
    size = len(h) if hlen is None else hlen
    fmt = "<H" if version == 1 else "<I"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(fmt, size) + h + data


ROWS3 = np.arange(3 * N_IN, dtype=np.float32).reshape(3, N_IN) / 8
GOOD = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 16), }"
BAD_HEADERS: dict[str, tuple[bytes, str]] = {
    "shape inside another key's value": (
        npy(
            "{'descr': '<f4', 'fortran_order': False, 'x': \"'shape': (1, 16)\", "
            "'shape': (3, 16), }",
            ROWS3.tobytes(),
        ),
        "a key other than 'descr', 'fortran_order' and 'shape'",
    ),
    "shape inside descr": (
        npy("{'descr': \"<f4', 'shape': (1, 16), '\", 'fortran_order': False, 'shape': (3, 16)}"),
        "dtype must be",
    ),
    "shape twice": (
        npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 16), 'shape': (3, 16)}",
            ROWS3.tobytes(),
        ),
        "'shape' twice",
    ),
    "descr twice": (
        npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3, 16)}"),
        "'descr' twice",
    ),
    "no shape": (npy("{'descr': '<f4', 'fortran_order': False}"), "missing"),
    "no dict": (npy("'descr': '<f4', 'fortran_order': False, 'shape': (3, 16)"), "not a dict"),
    "empty header": (npy(""), "not a dict"),
    "only a brace": (npy("{"), "a key is not a quoted string"),
    "unterminated string": (npy("{'descr': '<f4"), "unterminated string"),
    "unclosed dict": (
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 16)"),
        "no ',' or '}'",
    ),
    "text after the dict": (
        npy(GOOD + " 'shape': (1, 16)\n", ROWS3.tobytes()),
        "text after the dict",
    ),
    "a second dict": (npy(GOOD + "{}", ROWS3.tobytes()), "text after the dict"),
    "unquoted key": (
        npy("{descr: '<f4', 'fortran_order': False, 'shape': (3, 16)}"),
        "not a quoted string",
    ),
    "no colon": (npy("{'descr' '<f4', 'fortran_order': False, 'shape': (3, 16)}"), "no ':'"),
    "escape in a string": (
        npy("{'de\\scr': '<f4', 'fortran_order': False, 'shape': (3, 16)}"),
        "escape",
    ),
    "nul in the header": (
        npy("{'descr': '<f4',\0 'fortran_order': False, 'shape': (3, 16)}"),
        "not a quoted string",
    ),
    "nul in a key": (
        npy("{'descr\0': '<f4', 'fortran_order': False, 'shape': (3, 16)}"),
        "escape or line break",
    ),
    "shape (3) is a number": (
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (16)}"),
        "not a tuple",
    ),
    "shape a list": (
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': [3, 16]}"),
        "not a tuple",
    ),
    "negative dimension": (
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 16)}"),
        "other than integers",
    ),
    "float dimension": (
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3.0, 16)}"),
        "not a tuple of integers",
    ),
    "huge dimension": (
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 16)}"),
        "too large",
    ),
    "nine dimensions": (
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,16)}"),
        "too many",
    ),
    "product overflows": (
        npy(
            "{'descr': '<f4', 'fortran_order': False, "
            "'shape': (2, 1099511627776, 1099511627776, 16)}"
        ),
        "expected a 2-D array",
    ),
    "truncated data": (
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 16)}", ROWS3.tobytes()),
        "truncated",
    ),
    "hlen past the end": (npy(GOOD, hlen=5000), "truncated .npy header"),
    "hlen past the end, v2": (npy(GOOD, version=2, hlen=0xFFFFFFFF), "truncated .npy header"),
    "unknown version": (npy(GOOD, ROWS3.tobytes(), version=9), "version 9 is unknown"),
    "big-endian": (
        npy("{'descr': '>f4', 'fortran_order': False, 'shape': (3, 16)}"),
        "dtype must be",
    ),
    "structured dtype": (
        npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3, 16)}"),
        "not a simple dtype",
    ),
    "fortran order": (
        npy("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 16)}", ROWS3.tobytes()),
        "Fortran",
    ),
    "fortran_order not a bool": (
        npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (3, 16)}"),
        "True or False",
    ),
    "wrong row length": (
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 15)}"),
        "rows of 15 values",
    ),
    "a 0-D array": (
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': ()}"),
        "expected a 2-D array",
    ),
    "a 1-D array of another length": (
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (48,)}"),
        "2-D",
    ),
    "3-D not flattening to n_in": (
        npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 16, 2)}"),
        "2-D",
    ),
    "no rows": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 16)}"), "no input rows"),
    "not .npy": (b"PK\x03\x04" + b"\0" * 60, "not a .npy file"),
    "short": (b"\x93NUMPY\x01", "not a .npy file"),
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
def test_npy_header_refused(runner: Path, tmp_path: Path, case: str) -> None:
    data, phrase = BAD_HEADERS[case]
    path = tmp_path / "x.npy"
    path.write_bytes(data)
    assert_refused(run(runner, MODEL, path), phrase)


def test_npy_headers_accepted(runner: Path, tmp_path: Path) -> None:
    want = FixedPointModel.load(MODEL).predict(ROWS3).tolist()
    path = tmp_path / "x.npy"
    accepted = {
        "numpy's own": None,
        "no trailing comma, double quotes, no spaces": npy(
            '{"descr":"<f4","fortran_order":False,"shape":(3,16)}', ROWS3.tobytes()
        ),
        "keys in another order, tabs and newlines": npy(
            "{ 'shape' : ( 3 , 16 , ) ,\t'fortran_order': False,\n'descr': '<f4' }  \n",
            ROWS3.tobytes(),
        ),
        "version 2": npy(GOOD, ROWS3.tobytes(), version=2),
        "version 3": npy(GOOD, ROWS3.tobytes(), version=3),
        "float64": npy(GOOD.replace("<f4", "<f8"), ROWS3.astype(np.float64).tobytes()),
        "images that flatten to n_in": npy(GOOD.replace("(3, 16)", "(3, 4, 4)"), ROWS3.tobytes()),
    }
    for name, data in accepted.items():
        if data is None:
            np.save(path, ROWS3)
        else:
            path.write_bytes(data)
        assert predictions(run(runner, MODEL, path)) == want, name
    path.write_bytes(npy(GOOD.replace("(3, 16)", "(16,)"), ROWS3[:1].tobytes()))  # one row
    assert predictions(run(runner, MODEL, path)) == want[:1]
    u8 = np.arange(2 * N_IN, dtype=np.uint8).reshape(2, N_IN)
    np.save(path, u8)
    assert predictions(run(runner, MODEL, path)) == FixedPointModel.load(MODEL).predict(u8).tolist()


def test_npy_fuzzed_headers_never_crash(asan: Path, tmp_path: Path) -> None:
    """Random byte changes in a header: refused with a message or read, under the sanitizers."""
    rng = np.random.default_rng(15)
    base = bytearray(npy(GOOD, ROWS3.tobytes()))
    path = tmp_path / "x.npy"
    statuses = set()
    for _ in range(80):
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(6, 10 + len(GOOD)))] = int(rng.integers(0, 256))
        path.write_bytes(bytes(data))
        r = run(asan, MODEL, path)
        statuses.add(r.returncode)
        if r.returncode:
            assert r.returncode == 2 and r.stderr.startswith("edge-lsh-run: "), r.stderr
    assert 2 in statuses and statuses <= {0, 2}


# ----------------------------------------------------------------------------- --max-arena


def test_max_arena(runner: Path, tmp_path: Path) -> None:
    arena = FixedPointModel.load(MODEL).arena_bytes
    np.save(tmp_path / "x.npy", ROWS3)
    x = tmp_path / "x.npy"
    assert_refused(
        run(runner, MODEL, x, "--max-arena", str(arena - 1)),
        f"needs an arena of {arena} bytes, more than --max-arena {arena - 1}",
    )
    assert_refused(run(runner, MODEL, "--info", "--max-arena", "1K"), "more than --max-arena 1024")
    for ok in (str(arena), "0", "1M", "1g", "256M"):
        r = run(runner, MODEL, x, "--max-arena", ok)
        assert r.returncode == 0, (ok, r.stderr)
    for bad in ("-1", "", "1.5M", "12X", "1MB", "K", "99999999999999999999"):
        assert_refused(run(runner, MODEL, x, "--max-arena", bad), "--max-arena must be")
