"""The compiled kernel (``edge_lsh._native``): loading it, checking its status codes, and
giving it 64-byte aligned memory owned by numpy."""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_lsh.errors import NativeError

try:
    from edge_lsh._native import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "edge_lsh._native is not built: install the package with `pip install .` "
        "(it needs a C compiler)"
    ) from exc

__all__ = ["ffi", "lib", "NativeError", "check", "status_message", "aligned_empty", "ptr"]

ARENA_ALIGN = 64


def status_message(status: int) -> str:
    """The C kernel's description of a status code."""
    return str(ffi.string(lib.elsh_status_str(status)).decode())


def check(status: int, what: str) -> int:
    """Raise NativeError for a negative status; pass other values through."""
    if status < 0:
        raise NativeError(status, f"{what}: {status_message(status)} (status {status})")
    return status


def aligned_empty(nbytes: int) -> np.ndarray:
    """A uint8 array of nbytes whose data starts on a 64-byte boundary."""
    raw = np.zeros(nbytes + ARENA_ALIGN, dtype=np.uint8)
    offset = (-raw.ctypes.data) % ARENA_ALIGN
    return raw[offset : offset + nbytes]


def ptr(array: np.ndarray, ctype: str) -> Any:
    """A C pointer of ctype into a C-contiguous numpy array (no copy)."""
    if not array.flags.c_contiguous:
        raise ValueError("array must be C-contiguous")
    return ffi.cast(ctype, ffi.from_buffer(array))
