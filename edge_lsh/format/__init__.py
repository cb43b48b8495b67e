"""The ``.elsh`` model format (export/FORMAT.md): layout, writer, validating reader and a
description for people.

    elsh_bytes(model, tables=True, info=None) -> bytes     the file's bytes
    write_elsh(path, model, tables=True, info=None)        written atomically
    read_elsh(path_or_bytes) -> QModel                      every "must" rule of FORMAT.md
                                                           checked; ElshFormatError(code, msg)
    section_sizes(model_or_file, tables=True)              the section table, for inspection
    describe(model_or_file, tables=True) -> dict           layers, hashing, bytes per section

The model itself (``QModel``, ``QLayer``) lives in ``edge_lsh.oracle.qmodel``.
"""

from edge_lsh.errors import ElshFormatError
from edge_lsh.format.describe import describe, section_sizes
from edge_lsh.format.layout import (
    MAGIC,
    SECTION_NAMES,
    VERSION_MAJOR,
    VERSION_MINOR,
    draw_work,
    hash_work,
)
from edge_lsh.format.reader import read_elsh
from edge_lsh.format.writer import Section, assemble, elsh_bytes, model_sections, write_elsh
from edge_lsh.oracle.qmodel import QLayer, QModel

__all__ = [
    "MAGIC",
    "VERSION_MAJOR",
    "VERSION_MINOR",
    "SECTION_NAMES",
    "ElshFormatError",
    "QLayer",
    "QModel",
    "Section",
    "assemble",
    "model_sections",
    "elsh_bytes",
    "write_elsh",
    "read_elsh",
    "section_sizes",
    "describe",
    "hash_work",
    "draw_work",
]
