"""Writing files a user owns without ever leaving them half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

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
    """Open a temporary file beside `path` for binary writing; on success fsync it and rename
    it over `path`, on any error remove it and leave `path` as it was."""
    target = Path(path)
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


def _mode_for(target: Path) -> int:
    """The permissions a plain open() would give: the old file's, or 0666 less the umask."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
