"""``edge-lsh inspect``: an .elsh file's layers, hashing and section sizes, read without
running it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from edge_lsh import format as elsh_format
from edge_lsh.cli.common import HelpFormatter
from edge_lsh.errors import ModelFileError
from edge_lsh.fileio import check_input_file


def add_parser(sub: Any) -> argparse.ArgumentParser:
    i: argparse.ArgumentParser = sub.add_parser(
        "inspect",
        formatter_class=HelpFormatter,
        help="show an .elsh file's layers, hashing and section sizes",
    )
    i.add_argument("model", metavar="MODEL.elsh", help="a model written by `edge-lsh export`")
    i.add_argument("--json", action="store_true", help="print the description as JSON")
    i.set_defaults(func=run)
    return i


def run(args: argparse.Namespace) -> int:
    try:
        check_input_file(args.model, "model file")
    except OSError as exc:
        raise ModelFileError(str(exc)) from None
    d = elsh_format.describe(args.model)
    if args.json:
        print(json.dumps(d))
        return 0
    print(
        f"{args.model}: {d['format']}, {d['file_bytes']} bytes, {d['n_in']} inputs, "
        f"{d['n_classes']} classes, tables {'stored' if d['tables_stored'] else 'rebuilt at load'}"
    )
    for i, L in enumerate(d["layers"]):
        kind = "output" if L["output"] else "hidden"
        line = f"  layer {i} ({kind}): {L['n_in']} -> {L['n_out']}, int{L['weight_bits']} weights, "
        if L["lsh"]:
            h = L["hash"]
            line += (
                f"LSH k={L['k']} ({100 * L['k'] / L['n_out']:.1f}%), {h['family']} K={h['bits']} "
                f"L={h['tables']} pool={h['pool']} {h['select']}, hash functions from "
                f"{h['source']}{', centered' if h['center'] else ''}"
            )
        else:
            line += "dense"
        print(line + f"; {L['bytes']} bytes")
    print("  sections:")
    for s in d["sections"]:
        where = "net" if s["layer"] is None else f"layer {s['layer']}"
        print(f"    {s['name']:10s} {where:8s} offset {s['offset']:>9d}  {s['size']:>9d} bytes")
    if d.get("info"):
        print(f"  info: {json.dumps(d['info'])}")
    return 0
