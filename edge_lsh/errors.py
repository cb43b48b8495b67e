"""Every error edge-lsh raises for something a user can get wrong: one hierarchy, one root.

    EdgeLshError                 the root; the command line turns it into a message and exit 2
    ├── DataError                a data set or input file is unreadable, malformed or too large
    ├── ModelFileError           a model file is missing, truncated, corrupt or of another version
    │   └── ElshFormatError      an .elsh file breaks a rule of export/FORMAT.md; ``code`` names
    │                            the rule (the C reader's ELSH_FMT_* status), the same whichever
    │                            reader (Python or C) found it
    ├── OutputPathError          an output path cannot be written (checked before any work)
    ├── NativeError              the C kernel returned an error status (``status``)
    └── DeployError              a deploy step failed: a missing cross-compiler, a failed build,
                                 a QEMU mismatch

DataError and the model-file errors are also ValueErrors, NativeError and DeployError
RuntimeErrors, so code that caught the built-in kinds keeps working.
"""

from __future__ import annotations

__all__ = [
    "EdgeLshError",
    "DataError",
    "ModelFileError",
    "ElshFormatError",
    "OutputPathError",
    "NativeError",
    "DeployError",
]


class EdgeLshError(Exception):
    """The root of every edge-lsh error a user can cause."""


class DataError(EdgeLshError, ValueError):
    """Bad or unreadable data; the message says which file and what is wrong."""


class ModelFileError(EdgeLshError, ValueError):
    """A model file is missing, truncated, corrupt or of another version. ``code`` is the
    FORMAT.md rule an .elsh file broke, or None for other model files."""

    code: str | None = None


class ElshFormatError(ModelFileError):
    """An .elsh file breaks a rule of FORMAT.md. ``code`` is the rule's name there (for example
    "ELSH_FMT_CRC"), ``message`` says which field held what, and what was expected."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


class OutputPathError(EdgeLshError, ValueError):
    """An output path cannot be written: its folder is missing or read-only, or it names a
    folder where a file is expected. Raised before any long work starts."""


class NativeError(EdgeLshError, RuntimeError):
    """The C kernel returned an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DeployError(EdgeLshError, RuntimeError):
    """A deploy step failed: a missing cross-compiler, a failed build, a QEMU mismatch."""
