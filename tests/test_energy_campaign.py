"""tools/energy/campaign.py end to end on a small model (without the QEMU count): the table,
the JSON and the plot, LSH against dense, with every profile's column."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge_lsh.cli import main as cli

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "energy"


def test_campaign_writes_table_json_and_plot(tmp_path, capsys):
    npz, elsh = tmp_path / "m.npz", tmp_path / "m.elsh"
    assert cli(["train", "--data", "digits", "--hidden", "80", "--epochs", "1",
                "--out", str(npz), "--json"]) == 0  # fmt: skip
    assert cli(["export", str(npz), "--out", str(elsh)]) == 0
    sys.path.insert(0, str(TOOLS))
    try:
        import campaign
    finally:
        sys.path.remove(str(TOOLS))
    out = tmp_path / "res"
    args = ["--model", str(elsh), "--float", str(npz), "--no-m33", "--samples", "30"]
    assert campaign.main([*args, "--train-steps", "20", "--out-dir", str(out), "--name", "t"]) == 0
    md = (out / "t.md").read_text()
    for needle in ("horowitz45", "rp2350", "pi4", "pi5", "dense int8", "LSH", "null"):
        assert needle in md
    res = json.loads((out / "t.json").read_text())
    lsh, dense = res["inference"]
    assert dense["ops"]["mul"] > lsh["ops"]["mul"]
    assert (
        dense["estimates"]["horowitz45"]["joules_low"]
        > lsh["estimates"]["horowitz45"]["joules_low"]
    )
    assert lsh["estimates"]["rp2350"]["joules_low"] is None
    assert [r["network"] for r in res["training"]] == ["lsh", "dense"]
    assert (out / "t.png").read_bytes()[:4] == b"\x89PNG"  # matplotlib: via the dev extra
