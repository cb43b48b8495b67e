"""`edge-lsh run --input FILE.csv` reads what the C runner reads (issue 15, item 5).

The Python reader used float() on str.splitlines(): it read `1_0` as 10 (digit separators),
split lines at \\x0b, \\x0c and other Unicode line breaks, took Unicode digits, skipped a first
line with any non-number as a header, and rounded decimal strings to float32 through a double
(off by one ulp where the double lands exactly halfway), and np.load took an .npz renamed .npy
(a traceback) or a header stating any shape. It now follows the grammar of
native/runner/edge_lsh_run.c (edge_lsh.data.read_c_csv). Checked against the runner itself on a
corpus of tricky files (same rows and logits, or both refuse), and value by value against the
C library's strtof."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from test_hostile_cli import assert_clean_error, run_cli

from edge_lsh import data as D
from edge_lsh.cli import main
from edge_lsh.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "export" / "golden" / "lsh_output.elsh"  # 16 inputs, 12 classes
N_IN = 16


@pytest.fixture(scope="module")
def runner() -> Path:
    missing = [tool for tool in ("make", "cc") if shutil.which(tool) is None]
    assert not missing, f"the C runner tests need {' and '.join(missing)} (required test tools)"
    build = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "native"), "runner"], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    return ROOT / "native" / "build" / "edge-lsh-run"


def row(*values: str) -> bytes:
    """A row of N_IN values: the given ones first, then 0.25, 0.5, ..."""
    rest = [f"{0.25 * (i + 1):g}" for i in range(N_IN - len(values))]
    return ",".join([*values, *rest]).encode()


R1, R2 = row("1", "2"), row("3", "-4.5")
CORPUS: dict[str, bytes] = {
    "plain": R1 + b"\n" + R2 + b"\n",
    "no final newline": R1 + b"\n" + R2,
    "crlf": R1 + b"\r\n" + R2 + b"\r\n",
    "digit separator 1_0": row("1_0") + b"\n",
    "vertical tab between rows": R1 + b"\x0b" + R2 + b"\n",
    "form feed between rows": R1 + b"\x0c" + R2 + b"\n",
    "unicode line separator": R1 + "\u2028".encode() + R2 + b"\n",
    "next line (0x85)": R1 + "\x85".encode() + R2 + b"\n",
    "a lone cr ends the row": R1 + b"\rthis is not read\n" + R2 + b"\n",
    "a nul ends the row": R1 + b"\x00this is not read\n" + R2 + b"\n",
    "hex float": row("0x1p-1", "-0X1.8P1") + b"\n",
    "0x alone": row("0x") + b"\n",
    "inf": row("inf") + b"\n",
    "infinity": row("-Infinity") + b"\n",
    "nan": row("nan") + b"\n",
    "nan(chars)": row("nan(123)") + b"\n",
    "overflow 1e39": row("1e39") + b"\n",
    "underflow 1e-50": row("1e-50") + b"\n",
    "float max": row("3.4028234e38") + b"\n",
    "unicode digits": R1 + b"\n" + row("\u0663") + b"\n",
    "header on line 1": b"a,b,c\n" + R1 + b"\n",
    "header after a number": b"1,abc\n" + R1 + b"\n",
    "header on line 2": R1 + b"\na,b\n",
    "comment lines": b"# hello\n" + R1 + b"\n   # indented\n" + R2 + b"\n",
    "comment after values": R1 + b" # no\n",
    "blank lines": b"\n   \n\t\n" + R1 + b"\n\n",
    "vertical tab line": R1 + b"\n\x0b\n" + R2 + b"\n",
    "form feed before a value": b"\x0c" + R1 + b"\n",
    "cr before a value": row("1", "\r2") + b"\n",
    "trailing comma": R1 + b",\n",
    "empty field": row("1", "", "2")[: -len(",1.75")] + b"\n",
    "spaces and tabs": row(" 1 ", "\t2\t") + b"\n",
    "semicolons": R1.replace(b",", b";") + b"\n",
    "signs and dots": row("+.5", "5.", "-0", "+0e-0") + b"\n",
    "exponent without digits": row("1e") + b"\n",
    "a suffix": row("1.5f") + b"\n",
    "byte order mark": b"\xef\xbb\xbf" + R1 + b"\n" + R2 + b"\n",
    "too few values": b"1,2,3\n",
    "too many values": R1 + b",1,2\n",
    "a label": R1 + b",3\n" + R2 + b",7\n",
    "a label out of range": R1 + b",12\n",
    "a negative label": R1 + b",-1\n",
    "a fractional label": R1 + b",1.5\n" + R2 + b",2\n",
    "a label just below an integer": R1 + b",2.0000001\n" + R2 + b",3\n",
    "many spaces": b" " * 5000 + R1 + b"\n",
}


def c_run(runner: Path, csv: Path) -> tuple[int, list[str], str]:
    r = subprocess.run(
        [str(runner), str(MODEL), str(csv), "--logits"],
        capture_output=True,
        text=True,
        errors="replace",
    )
    rows = [line for line in r.stdout.splitlines() if not line.startswith("#")]
    return r.returncode, rows, r.stderr


def py_run(csv: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    status = main(["run", str(MODEL), "--input", str(csv), "--logits", "--no-preprocess"])
    out, err = capsys.readouterr()
    return status, [line for line in out.splitlines() if line], err


def test_run_reads_what_the_c_runner_reads(runner: Path, tmp_path, capsys) -> None:
    disagree = []
    refused = 0
    for name, text in CORPUS.items():
        csv = tmp_path / "x.csv"
        csv.write_bytes(text)
        c_status, c_rows, c_err = c_run(runner, csv)
        py_status, py_rows, py_err = py_run(csv, capsys)
        assert "Traceback" not in py_err
        if (c_status == 0) != (py_status == 0):
            disagree.append(
                f"{name}: C status {c_status} ({c_err.strip()}), Python {py_status} "
                f"({py_err.strip()})"
            )
        elif c_status == 0 and c_rows != py_rows:
            disagree.append(f"{name}: C rows {c_rows}, Python rows {py_rows}")
        elif c_status != 0:
            refused += 1
            assert py_status == 2 and py_err.startswith("edge-lsh: error:"), (name, py_err)
    assert not disagree, "\n".join(disagree)
    assert 15 <= refused <= len(CORPUS) - 15  # both kinds of files are there


def test_what_the_old_reader_got_wrong(tmp_path) -> None:
    for name, phrase in (
        ("digit separator 1_0", "unexpected character '_' after value 1"),
        ("vertical tab between rows", "unexpected character '\\x0b'"),
        ("form feed between rows", "unexpected character '\\x0c'"),
        ("header after a number", "value 2 is not a number"),
        ("unicode digits", "value 1 is not a number"),
    ):
        csv = tmp_path / "x.csv"
        csv.write_bytes(CORPUS[name])
        with pytest.raises(DataError, match=phrase.replace("\\", "\\\\")):
            D.read_c_csv(csv, N_IN)


def test_rows_with_and_without_labels_are_not_mixed(tmp_path) -> None:
    """The C runner takes such a file (accuracy over the labelled rows); `edge-lsh run`
    refuses it with a clear message rather than guess which rows carry labels."""
    csv = tmp_path / "x.csv"
    csv.write_bytes(R1 + b"\n" + R2 + b",3\n")
    with pytest.raises(DataError, match="rows with and without a label cannot be mixed"):
        D.read_c_csv(csv, N_IN)


# ----------------------------------------------------------------------------- strtof


def _libc_strtof() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    libc = ctypes.CDLL(None)
    f = libc.strtof
    f.restype = ctypes.c_float
    f.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
    return f


def decimal(q: Fraction, digits: int = 60) -> str:
    """q as a decimal string of `digits` fraction digits, truncated toward zero (exact when q
    has fewer digits; otherwise off by less than 10^-digits, on the side of zero)."""
    sign, a = ("-" if q < 0 else ""), abs(q)
    scaled = a.numerator * 10**digits // a.denominator
    whole, frac = divmod(scaled, 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}".rstrip("0")


def tie_tokens(rng: np.random.Generator, n: int) -> list[str]:
    """Decimal strings exactly halfway between two float32, and a hair above and below."""
    out = []
    hair = Fraction(1, 10**45)
    for _ in range(n):
        f = np.float32(rng.uniform(-1e6, 1e6)) * np.float32(2.0) ** int(rng.integers(-60, 60))
        g = np.nextafter(f, np.float32(np.inf))
        mid = (Fraction(float(f)) + Fraction(float(g))) / 2
        scale = abs(mid) * hair  # far below a float32 ulp, far above the 10^-200 truncation
        out += [decimal(mid, 200), decimal(mid + scale, 200), decimal(mid - scale, 200)]
    return out


def test_values_are_rounded_as_strtof_rounds_them() -> None:
    strtof = _libc_strtof()
    rng = np.random.default_rng(15)
    tokens = tie_tokens(rng, 60)
    tokens += [f"{v:.17g}" for v in rng.normal(0, 1e3, 300)]
    tokens += [f"{v:.9e}" for v in rng.uniform(-3.4e38, 3.4e38, 100)]
    tokens += [float(v).hex() for v in rng.normal(0, 1, 100)]
    tokens += ["3.4028235677973366e38", "3.40282356779733661637539395458142568447e38"]
    tokens += ["3.4028235677973366163753939545814256844e38", "1e-45", "7e-46", "1.4e-45"]
    tokens += ["0x1.fffffefffffffffp127", "0x1.ffffffp127", "-0x1.000001p0", "0x.8", "0X1P-149"]
    differ = []
    for tok in tokens:
        got = D._c_row(tok.encode())
        assert isinstance(got, tuple), tok
        ours = D._float32_as_strtof(np.array(got[0]), got[1])[0]
        theirs = np.float32(strtof(tok.encode(), None))
        if ours.tobytes() != theirs.tobytes():
            differ.append(f"{tok}: ours {ours!r}, strtof {theirs!r}")
    assert not differ, "\n".join(differ[:20])
    assert len(tokens) >= 3 * 60 + 500


# ----------------------------------------------------------------------------- .npy inputs


def test_run_input_npz_renamed_npy(tmp_path) -> None:
    x = tmp_path / "x.npy"
    with open(x, "wb") as f:
        np.savez(f, x=np.zeros((2, 4), np.float32))
    r = run_cli(["run", str(MODEL), "--input", str(x)], tmp_path)
    assert_clean_error(r, "is an .npz archive", "not an .npy array")


def test_run_input_npy_stating_2_to_the_40_rows(tmp_path) -> None:
    x = tmp_path / "x.npy"
    with open(x, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (1 << 40, N_IN)}
        )
        f.write(bytes(64))
    r = run_cli(["run", str(MODEL), "--input", str(x)], tmp_path)
    assert_clean_error(r, "header states shape")
    assert r.max_rss < 400 << 20, r
