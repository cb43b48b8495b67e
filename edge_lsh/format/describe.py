"""Describing an ``.elsh`` file for people: its section table, layers, hashing and bytes."""

from __future__ import annotations

from typing import Any

from edge_lsh.format.layout import (
    FLAG_REQUIRED,
    HEADER_BYTES,
    HEADER_FLAG_TABLES,
    HEADER_STRUCT,
    NO_LAYER,
    section_name,
)
from edge_lsh.format.reader import Source, check_header, load_bytes, parse, section_table
from edge_lsh.format.writer import elsh_bytes
from edge_lsh.oracle import hashgen
from edge_lsh.oracle.qmodel import SELECT_UNION, QModel


def _file_bytes(source: QModel | Source, tables: bool) -> bytes:
    if isinstance(source, QModel):
        return elsh_bytes(source, tables=tables)
    return load_bytes(source)


def section_sizes(source: QModel | Source, tables: bool = True) -> list[dict[str, Any]]:
    """The section table of a file (or of the file `elsh_bytes(model, tables)` would write):
    one dict per section with name, type, layer (None for the network), offset, size, required.
    The header and the section table are checked first (ElshFormatError)."""
    data = _file_bytes(source, tables)
    nsec, sto, fbytes, _ = check_header(data)
    out = []
    for e in section_table(data, nsec, sto, fbytes):
        out.append(
            {
                "name": section_name(e.type),
                "type": e.type,
                "layer": None if e.layer == NO_LAYER else e.layer,
                "offset": e.offset,
                "size": e.size,
                "required": bool(e.flags & FLAG_REQUIRED),
            }
        )
    return out


def describe(source: QModel | Source, tables: bool = True) -> dict[str, Any]:
    """A JSON-ready summary of a model file (or of the file a QModel would make): network
    fields, the PREPROCESS section (None without one), per layer its shape, quantization and
    hash configuration, and bytes per section.
    Every rule of FORMAT.md is checked (ElshFormatError), but hash functions stored as a seed
    are not drawn and tables are not built: describing any file takes milliseconds."""
    data = _file_bytes(source, tables)
    qm = parse(data, hash_functions=False)  # no hash functions drawn, no tables built
    sections = section_sizes(data)
    _, vmaj, vmin, _, _, _, _, fbytes, _, hflags, _ = HEADER_STRUCT.unpack(data[:HEADER_BYTES])
    layers = []
    for li, L in enumerate(qm.layers):
        d: dict[str, Any] = {
            "n_in": L.n_in,
            "n_out": L.n_out,
            "k": L.k,
            "output": L.is_output,
            "lsh": L.use_lsh,
            "weight_bits": L.weight_bits,
            "in_zero_point": L.in_zero_point,
            "out_zero_point": L.out_zero_point,
            "in_scale": L.in_scale,
            "out_scale": L.out_scale,
            "bytes": sum(s["size"] for s in sections if s["layer"] == li),
        }
        if L.use_lsh:
            d["hash"] = {
                "family": hashgen.FAMILY_NAMES[L.family],
                "bits": L.bits,
                "tables": L.n_tables,
                "select": "union" if L.select_mode == SELECT_UNION else "topk",
                "source": "explicit" if L.hash_source else "seed",
                "center": L.center,
                "pool": L.pool,
                "hash_dim": L.hash_dim,
                "ternary_nnz": L.ternary_nnz,
                "dwta_bin": L.dwta_bin,
                "dwta_per_table": L.dwta_per_table,
                "member_fraction": float(L.member_mask().mean()),
            }
        layers.append(d)
    by_type: dict[str, int] = {}
    for s in sections:
        by_type[s["name"]] = by_type.get(s["name"], 0) + s["size"]
    return {
        "format": f"elsh {vmaj}.{vmin}",
        "file_bytes": fbytes,
        "n_in": qm.n_in,
        "n_classes": qm.n_classes,
        "n_layers": qm.n_layers,
        "seed": qm.seed,
        "input_inv_scale": qm.input_inv_scale,
        "input_zero_point": qm.input_zero_point,
        "tables_stored": bool(hflags & HEADER_FLAG_TABLES),
        "layers": layers,
        "sections": sections,
        "bytes_by_section": by_type,
        "preprocess": None
        if qm.preprocess is None
        else dict(zip(("input_divisor", "input_min", "input_max"), qm.preprocess)),
        "info": qm.info,
    }
