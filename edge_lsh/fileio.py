"""Writing files a user owns without ever leaving them half-written."""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np

from edge_lsh.errors import OutputPathError


def check_input_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """The path of an existing regular file to read; a ModelFileError-free, kind-neutral check
    whose message says whether the path is missing or a folder. Raises FileNotFoundError or
    IsADirectoryError (callers turn them into their own error kind)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise IsADirectoryError(f"{p}: is a folder, not a {what}")
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such {what}")
    return p


def check_output_file(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """Check, before any work, that a file can be written at path: its folder exists and is
    writable, and path is not a folder. Returns the path; raises OutputPathError saying why
    not."""
    target = Path(path).expanduser()
    if str(path) == "" or target.name in ("", ".", ".."):
        raise OutputPathError(f"{path!r}: not a file name for the {what}")
    if target.is_dir():
        raise OutputPathError(f"{target}: is a folder; give a file name for the {what}")
    _check_folder(target.parent, target, what)
    return target


def check_output_folder(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Check, before any work, that a folder can be created (or filled) at path: its parent
    exists and is writable, and path is not a file."""
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise OutputPathError(f"{target}: is a file; the {what} must be a folder")
    _check_folder(target if target.is_dir() else target.parent, target, what)
    return target


def _check_folder(folder: Path, target: Path, what: str) -> None:
    folder = folder if str(folder) else Path(".")
    if not folder.exists():
        raise OutputPathError(
            f"{target}: the folder {folder} does not exist; create it first (for the {what})"
        )
    if not folder.is_dir():
        raise OutputPathError(f"{target}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{target}: the folder {folder} is not writable (for the {what})")


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for binary writing; on success fsync it, rename
    it over `path` and fsync the folder (so the rename survives a power cut), on any error
    remove it and leave `path` as it was. Temporary files of earlier writes to `path` that
    were killed (kill -9, a power cut) and left behind are removed once over a minute old."""
    target = Path(path)
    _remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, _mode_for(target))  # mkstemp makes 0600; keep the usual permissions
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)


def write_text_output(path: str | os.PathLike[str], text: str) -> None:
    """A report to `path` through atomic_write, or to standard output when `path` is "-"."""
    if str(path) == "-":
        print(text)
        return
    with atomic_write(path) as f:
        f.write(text.encode())


STALE_SECONDS = 60  # a temporary file untouched this long belongs to a write that died
_MKSTEMP_NAME = "[a-z0-9_]{8}"  # tempfile's random part of a name


def _remove_stale_temporaries(target: Path) -> None:
    """Remove the regular files .NAME.XXXXXXXX.tmp beside target (exactly the names
    atomic_write gives its temporaries for this target) not modified for STALE_SECONDS:
    left by a write that was killed. A write in progress touches its file as it goes."""
    pattern = re.compile(re.escape(f".{target.name}.") + _MKSTEMP_NAME + r"\.tmp")
    folder = target.parent if str(target.parent) else Path(".")
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > STALE_SECONDS:
                os.unlink(entry.path)
        except OSError:
            pass  # gone already, or not ours to remove


def _fsync_folder(folder: Path) -> None:
    """fsync a folder, so that a rename in it is on disk; where folders cannot be opened or
    synced (Windows, some file systems) there is nothing to do."""
    try:
        fd = os.open(folder if str(folder) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _mode_for(target: Path) -> int:
    """The permissions a plain open() would give: the old file's, or 0666 less the umask."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


# JSON from a file: metadata in a model file, an INFO section. Nesting deeper than this is
# refused before parsing (json.loads recurses once per level: a deep enough file raises
# RecursionError, or overflows the C stack where the recursion limit has been raised), and so
# is more text than MAX_JSON_BYTES (the check holds a few int32 per byte).
MAX_JSON_DEPTH = 100
MAX_JSON_BYTES = 4 << 20


def json_depth(raw: bytes) -> int:
    """The deepest nesting of [ and { outside strings in the UTF-8 JSON text raw, found in
    linear time (numpy). Exact for valid JSON; for invalid JSON, exact up to the first error,
    which is as far as a parser gets."""
    a = np.frombuffer(raw, dtype=np.uint8)
    if a.size == 0:
        return 0
    at = np.arange(a.size, dtype=np.int32)
    # a quote is escaped when an odd number of backslashes comes right before it
    not_backslash = np.maximum.accumulate(np.where(a == 0x5C, -1, at))
    quotes = np.flatnonzero(a == 0x22)
    before = np.maximum(quotes - 1, 0)
    run = np.where(quotes > 0, before - not_backslash[before], 0)
    toggles = np.zeros(a.size, dtype=np.int8)
    toggles[quotes[run % 2 == 0]] = 1
    outside = np.cumsum(toggles, dtype=np.int32) % 2 == 0
    step = (a == 0x5B).astype(np.int8) + (a == 0x7B) - (a == 0x5D) - (a == 0x7D)
    return int(max(0, np.cumsum(np.where(outside, step, 0), dtype=np.int32).max()))


def loads_json(
    text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES
) -> Any:
    """json.loads for text from a file nobody checked: ValueError (never RecursionError,
    OverflowError or a NaN) for invalid UTF-8 or JSON, more than max_bytes, nesting deeper than
    max_depth, and numbers that are not finite (NaN, Infinity, 1e999)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if len(raw) > max_bytes:
        raise ValueError(f"{len(raw)} bytes of JSON, more than the {max_bytes} allowed")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    depth = json_depth(raw)
    if depth > max_depth:
        raise ValueError(f"JSON nested {depth} levels deep, more than the {max_depth} allowed")

    def no_constant(name: str) -> Any:
        raise ValueError(f"JSON holds {name}; expected finite numbers only")

    def finite(s: str) -> float:
        v = float(s)
        if not math.isfinite(v):
            raise ValueError(f"JSON number {s[:40]} is out of range; expected finite numbers")
        return v

    try:
        return json.loads(decoded, parse_constant=no_constant, parse_float=finite)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def read_npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype] | None:
    """The (shape, fortran_order, dtype) of the .npy array whose file is open at f, leaving f
    at its first data byte; None for a .npy version numpy does not describe (1.0, 2.0 and 3.0
    are). numpy checks the header's syntax; the caller checks what it declares."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version in ((2, 0), (3, 0)):
        return np.lib.format.read_array_header_2_0(f)
    return None
