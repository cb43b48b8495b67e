"""argparse types shared by the ``edge-lsh`` command and the scripts in tools/: each turns a
command-line word into a checked value or raises ArgumentTypeError with what was expected."""

from __future__ import annotations

import argparse


def _whole_number(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{text}: must be {what}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _whole_number(text, 1, "a positive integer")


# the kernel's ELSH_MAX_THREADS (edge_lsh_train.h; tests/test_threads_cli.py checks they agree)
MAX_THREADS = 64


def thread_count(text: str) -> int:
    """A number of threads, 1..MAX_THREADS."""
    value = _whole_number(text, 1, "a positive integer")
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{text}: at most {MAX_THREADS} threads")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _whole_number(text, 0, ">= 0")


def seed_value(text: str) -> int:
    """A PRNG seed, 0..2**64-1."""
    value = _whole_number(text, 0, "in 0..2**64-1")
    if value >= 2**64:
        raise argparse.ArgumentTypeError(f"{text}: must be in 0..2**64-1")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number") from None


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text)
    if not (0.0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text}: must be a finite number >= 0")
    return value


def fraction(text: str) -> float:
    """A number in (0, 1]."""
    value = _number(text)
    if not (0.0 < value <= 1.0):
        raise argparse.ArgumentTypeError(f"{text}: must be in (0, 1]")
    return value


def hidden_sizes(text: str) -> list[int]:
    """Hidden layer sizes such as ``1000`` or ``1000,1000``."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected sizes like 1000 or 1000,1000"
        ) from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive sizes like 1000,1000")
    return sizes


def table_counts(text: str) -> int | tuple[int, ...]:
    """L, the number of hash tables: ``100`` for every LSH layer, or one count per LSH layer
    such as ``100,25`` (LSHConfig.tables; the network checks that the count of layers fits)."""
    parts = [part.strip() for part in text.split(",")]
    try:
        counts = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a number of tables like 100, or one per LSH layer like 100,25"
        ) from None
    if any(c < 1 for c in counts):
        raise argparse.ArgumentTypeError(f"{text!r}: every number of tables must be >= 1")
    return counts[0] if len(counts) == 1 else tuple(counts)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text)
    if not (0.0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text}: must be a finite number > 0")
    return value


def momentum(text: str) -> float:
    """A momentum: a number in [0, 1)."""
    value = _number(text)
    if not (0.0 <= value < 1.0):  # also NaN
        raise argparse.ArgumentTypeError(f"{text}: must be in [0, 1)")
    return value
