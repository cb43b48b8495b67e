"""The energy campaign of issue 11: one model, LSH at its own active fraction against the same
file computed densely (int8), under every energy profile; and a float training step, LSH
against a dense network of the same shape. Writes a Markdown table, a PNG plot and the JSON of
every number to --out-dir.

    edge-lsh train --data mnist5k --hidden 1000,1000 --epochs 2 --out /tmp/m.npz
    edge-lsh export /tmp/m.npz --out /tmp/m.elsh
    python tools/energy/campaign.py --model /tmp/m.elsh --float /tmp/m.npz

The rp2350 column needs instructions per inference, counted under QEMU by m33_count.py (about
a minute for LSH, several for dense; --no-m33 skips it); the pi4/pi5 columns need the board's
own time per inference and stay null here (run `edge-lsh energy --on-board` on the Pi).
Modelled kernel energy (horowitz45) and board figures are never added together.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from edge_lsh.cli.common import load_model_data  # noqa: E402
from edge_lsh.energy.model import estimate, inference_ops, total_ops, training_ops  # noqa: E402
from edge_lsh.energy.profiles import PROFILES, REFERENCES  # noqa: E402
from edge_lsh.fileio import atomic_write, check_output_folder  # noqa: E402
from edge_lsh.fixed import FixedPointModel  # noqa: E402
from edge_lsh.network import Network, TrainConfig  # noqa: E402


def _memory_share(est: dict) -> float:
    """The share of the low estimate spent reading weights and tables."""
    parts = est["parts"]
    return (parts["weight_memory"] + parts["table_memory"]) / est["joules_low"]


def uj(v: float | None) -> str:
    return "null" if v is None else f"{v * 1e6:,.2f}"


def rng_uj(e: dict[str, Any]) -> str:
    lo, hi = e["joules_low"], e["joules_high"]
    if lo is None:
        return "null"
    return uj(lo) if lo == hi else f"{uj(lo)} - {uj(hi)}"


def inference_rows(args: argparse.Namespace) -> tuple[list[dict[str, Any]], Any]:
    model = FixedPointModel.load(args.model)
    data = load_model_data(None, None, None, None, model.info.get("data"), args.model)
    x = data.x_test[: args.samples]
    instr: dict[str, Any] = {}
    if args.m33:
        from m33_count import instructions_per_inference

        print("counting Cortex-M33 instructions under QEMU ...", file=sys.stderr)
        instr = instructions_per_inference(Path(args.model), rows=args.m33_rows)
    rows = []
    for name, dense in (("lsh", False), ("dense", True)):
        model.set_active(None, dense=dense)
        ops, seconds = inference_ops(model, x)
        acc = float((model.predict(data.x_test) == data.y_test).mean())
        est = {
            p.name: estimate(p, ops=ops, arithmetic="int8", instructions=instr.get(name)).as_dict()
            for p in PROFILES.values()
        }
        k = [model.layer_info(i)["k"] / model.layer_info(i)["n_out"] for i in range(2)]
        rows.append(
            {
                "network": name,
                "active_fraction": 1.0 if dense else float(np.mean(k)),
                "accuracy": acc,
                "ops": total_ops(ops),
                "ops_by_phase": ops,
                "seconds_on_this_machine": seconds,
                "m33_instructions": instr.get(name),
                "estimates": est,
            }
        )
    return rows, {"data": data.name, "test_rows": int(data.x_test.shape[0]), "m33": instr}


SWEEP = (0.05, 0.1, 0.25, 0.5, None)  # active fractions; None: every neuron


def sweep_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The same file at active fractions from 5% to dense: accuracy, counted operations and the
    horowitz45 estimate by component (what a measured --fit sweep would be compared with)."""
    model = FixedPointModel.load(args.model)
    data = load_model_data(None, None, None, None, model.info.get("data"), args.model)
    x = data.x_test[: args.samples]
    rows = []
    for frac in SWEEP:
        model.set_active(frac, dense=frac is None)
        ops, _ = inference_ops(model, x)
        est = estimate(PROFILES["horowitz45"], ops=ops, arithmetic="int8").as_dict()
        rows.append(
            {
                "active_fraction": 1.0 if frac is None else frac,
                "accuracy": float((model.predict(data.x_test) == data.y_test).mean()),
                "ops": total_ops(ops),
                "horowitz45": est,
            }
        )
    model.set_active(None)
    return rows


def training_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    lsh = Network.load(args.float)
    data = load_model_data(None, None, None, None, lsh.data, args.float)
    n = min(args.train_steps, data.x_train.shape[0])
    x, y = data.x_train[:n], data.y_train[:n]
    dense = Network(lsh.n_in, lsh.hidden, lsh.n_classes, lsh=None, seed=0)
    out = []
    for name, net in (("lsh", lsh), ("dense", dense)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ops, seconds = training_ops(net, x, y, TrainConfig())
        est = {
            p.name: estimate(p, ops=ops, arithmetic="fp32").as_dict()
            for p in PROFILES.values()
            if p.kind == "ops"
        }
        out.append(
            {
                "network": name,
                "steps": n,
                "ops": total_ops(ops),
                "ops_by_phase": ops,
                "seconds_on_this_machine": seconds,
                "estimates": est,
            }
        )
    return out


def markdown(result: dict[str, Any]) -> str:
    inf, tr = result["inference"], result["training"]
    layers = "-".join(str(v) for v in result["layers"])
    lines = [
        f"# Energy per inference and per training step: {layers} ({result['date']})",
        "",
        f"Model: `{result['model']}` ({result['model_bytes']:,} bytes), {result['data']} "
        f"held-out split ({result['test_rows']} rows); op counts are means over "
        f"{result['samples']} test rows, read from the C kernel's counters (checked equal to "
        "the numpy oracles' counts by tests/test_energy_counts.py).",
        f"Command: `{result['command']}`",
        "",
        "## Inference, fixed point (int8)",
        "",
        "| network | accuracy | multiplications | bytes read (weights + tables) "
        "| horowitz45, µJ (modelled kernel, 45 nm) | Cortex-M33 instructions (QEMU) "
        "| rp2350, µJ | pi4, µJ | pi5, µJ |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in inf:
        o, e = r["ops"], r["estimates"]
        name = "dense int8 (the same file, every neuron)" if r["network"] == "dense" else (
            f"LSH {r['active_fraction'] * 100:.0f}% active")  # fmt: skip
        instr = r["m33_instructions"]
        lines.append(
            f"| {name} | {r['accuracy'] * 100:.2f}% | {o['mul']:,.0f} | "
            f"{o['weight_bytes'] + o['table_bytes']:,.0f} | {rng_uj(e['horowitz45'])} | "
            f"{'not counted' if instr is None else f'{instr:,.0f}'} | {rng_uj(e['rp2350'])} | "
            f"{rng_uj(e['pi4'])} | {rng_uj(e['pi5'])} |"
        )
    lines += [
        "",
        "Components of the horowitz45 estimate per inference (low end, µJ): arithmetic outside "
        "hashing, hashing (pooling, projections, collision counting), weight bytes and table "
        "bytes read:",
        "",
        "| network | arithmetic | hashing | weight memory | table memory | total |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for r in inf:
        e = r["estimates"]["horowitz45"]
        p = e["parts"]
        name = "dense int8" if r["network"] == "dense" else "LSH"
        lines.append(
            f"| {name} | {p['arithmetic'] * 1e6:,.3f} | {p['hashing'] * 1e6:,.3f} | "
            f"{p['weight_memory'] * 1e6:,.3f} | {p['table_memory'] * 1e6:,.3f} | "
            f"{e['joules_low'] * 1e6:,.3f} |"
        )
    lsh, dense = inf
    ratio = (
        dense["estimates"]["horowitz45"]["joules_low"]
        / lsh["estimates"]["horowitz45"]["joules_low"]
    )
    lines += [
        "",
        f"Dense / LSH, modelled (horowitz45): {ratio:.1f}x; memory traffic is "
        f"{_memory_share(lsh['estimates']['horowitz45']) * 100:.1f}% "
        "of the LSH figure (low end).",
    ]
    if lsh["m33_instructions"] and dense["m33_instructions"]:
        lines.append(
            f"Cortex-M33 instructions, dense / LSH: "
            f"{dense['m33_instructions'] / lsh['m33_instructions']:.1f}x."
        )
    lines += [
        "",
        "The dense row is the same LSH-trained file with every neuron computed (what the same "
        "weights cost without hashing), not a network trained dense: its accuracy is not a dense "
        "baseline's (README: 94.00% for 784-1000-10 trained dense).",
        "",
        "## Active fractions from 5% to dense (the same file, horowitz45, low end, µJ)",
        "",
        "| active | accuracy | multiplications | bytes read | arithmetic | hashing | weight memory "
        "| table memory | total |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *[
            f"| {r['active_fraction'] * 100:g}% | {r['accuracy'] * 100:.2f}% | "
            f"{r['ops']['mul']:,.0f} | {r['ops']['weight_bytes'] + r['ops']['table_bytes']:,.0f} | "
            + " | ".join(
                f"{r['horowitz45']['parts'][k] * 1e6:,.3f}"
                for k in ("arithmetic", "hashing", "weight_memory", "table_memory")
            )
            + f" | {r['horowitz45']['joules_low'] * 1e6:,.3f} |"
            for r in result.get("sweep", [])
        ],
        "",
        "Joules per multiplication and per byte *measured* need a meter: `edge-lsh energy "
        "m.elsh --meter SPEC --fit` runs this sweep on the board and fits them by least squares "
        "with 95% intervals. None was measured here (no meter, no board).",
        "",
        "## Training step, float32 (the fixed-point kernel has no training yet)",
        "",
        "| network | steps counted | multiplications | bytes read | horowitz45, µJ |",
        "|---|--:|--:|--:|--:|",
    ]
    for r in tr:
        o = r["ops"]
        name = "dense float32, same shape" if r["network"] == "dense" else "LSH (the .npz model)"
        lines.append(
            f"| {name} | {r['steps']} | {o['mul']:,.0f} | "
            f"{o['weight_bytes'] + o['table_bytes']:,.0f} | "
            f"{rng_uj(r['estimates']['horowitz45'])} |"
        )
    lines += [
        "",
        "## What the columns are, and why some are null",
        "",
        "- **horowitz45**: the kernel's counted operations x Horowitz's 45 nm energies (ISSCC "
        "2014): int8 multiply 0.2 pJ, int32 add 0.1 pJ (additions and comparisons), fp32 "
        "multiply 3.7 pJ and add 0.9 pJ for training; every byte read as DRAM at 1.3-2.6 nJ "
        "per 64 bits (the low - high range). The 32 KB and 1 MB cache figures are marked "
        "'verify before citing' in the project notes and are not used.",
        "- **rp2350**: instructions x cycles per instruction x core volts x amps per MHz. No "
        "published current-per-MHz figure was found for the RP2350, nor a cycles-per-"
        "instruction figure for this code: null. Give measured ones with `edge-lsh energy "
        "--instructions N --cpi X --amps-per-mhz A --core-volts V`.",
        "- **pi4 / pi5**: (stress - idle board current) / 4 cores x 5.1 V x seconds per "
        "inference on the board itself (Raspberry Pi documentation, 'Power Supply': Pi 4 idle "
        "0.6 A, stress 1.2 A). This machine is not a Pi, so null; the Pi 5 has no published "
        "idle/stress currents at all.",
        "- Board-level measurements for scale only (MLPerf Tiny v1.1, never mixed with the "
        "modelled figures): "
        + "; ".join(
            f"{r['board']} {r['benchmark']} {r['microjoules_per_inference']:,.0f} µJ at "
            f"{r['milliwatts']} mW"
            for r in REFERENCES.values()
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print("campaign.py: matplotlib is not installed: no plot (pip install matplotlib)",
              file=sys.stderr)  # fmt: skip
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inf = result["inference"]
    colors = {"lsh": "#4477aa", "dense": "#cc6677"}
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.2), dpi=100)
    ax = axes[0]  # energy per inference, LSH against dense, stacked by component
    parts = [("arithmetic", "#4477aa"), ("hashing", "#ddaa33"), ("weight_memory", "#cc6677"),
             ("table_memory", "#999933")]  # fmt: skip
    names = ["LSH" if r["network"] == "lsh" else "dense int8" for r in inf]
    bottom = [0.0] * len(inf)
    for key, color in parts:
        vals = [r["estimates"]["horowitz45"]["parts"][key] * 1e6 for r in inf]
        ax.bar(names, vals, 0.5, bottom=bottom, color=color, label=key.replace("_", " "))
        bottom = [b + v for b, v in zip(bottom, vals)]
    for i, total in enumerate(bottom):
        ax.text(i, total * 1.02, f"{total:,.1f} µJ", ha="center", fontsize=8)
    ax.set_ylim(0, max(bottom) * 1.15)
    ax.set_ylabel("µJ per inference, modelled (low end)", fontsize=8)
    ax.set_title("horowitz45: int8 inference by component", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[1]
    counted = [r for r in inf if r["m33_instructions"]]
    if counted:
        names = [r["network"].upper() for r in counted]
        vals = [r["m33_instructions"] / 1e6 for r in counted]
        ax.bar(names, vals, color=[colors[r["network"]] for r in counted])
        for i, v in enumerate(vals):
            ax.text(i, v * 1.02, f"{v:.2f} M", ha="center", fontsize=8)
        ax.set_ylim(0, max(vals) * 1.18)
        ax.set_ylabel("million instructions per inference", fontsize=8)
        ax.set_title("Cortex-M33 (QEMU mps2-an505)\nrp2350 energy: null (no A/MHz)", fontsize=9)
    else:
        ax.text(0.5, 0.5, "M33 instructions not counted", ha="center", va="center")
        ax.set_axis_off()
    for a in axes:
        a.tick_params(labelsize=8)
    layers = "-".join(str(v) for v in result["layers"])
    fig.suptitle(f"{layers}: LSH vs dense ({result['date']})", fontsize=9)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="campaign.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, metavar="FILE.elsh", help="the exported model")
    p.add_argument("--float", metavar="FILE.npz", help="its float model (training steps)")
    p.add_argument("--samples", type=int, default=200, metavar="N", help="test rows counted")
    p.add_argument("--train-steps", type=int, default=200, metavar="N", help="steps counted")
    p.add_argument("--no-m33", dest="m33", action="store_false", help="skip the QEMU count")
    p.add_argument("--m33-rows", type=int, default=2, metavar="N", help="rows of the long run")
    p.add_argument("--out-dir", default=str(HERE / "results"), metavar="DIR", help="outputs")
    p.add_argument("--name", default=None, metavar="STEM", help="file stem (default: dated)")
    args = p.parse_args(argv)
    for path, what in ((args.model, "--model"), (args.float, "--float")):
        if path and not Path(path).is_file():
            p.error(f"{what} {path}: no such file")
    if args.samples < 1 or args.train_steps < 1 or args.m33_rows < 2:
        p.error("--samples and --train-steps must be >= 1, --m33-rows >= 2")
    out = check_output_folder(args.out_dir, "results folder")
    out.mkdir(exist_ok=True)
    date = datetime.date.today().isoformat()
    model = FixedPointModel.load(args.model)
    layers = [model.n_in] + [model.layer_info(i)["n_out"] for i in range(model.n_layers)]
    stem = args.name or f"{date}-energy-{'-'.join(map(str, layers))}"
    inf, meta = inference_rows(args)
    result: dict[str, Any] = {
        "date": date,
        "command": "python tools/energy/campaign.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "model": Path(args.model).name,
        "model_bytes": model.model_bytes,
        "layers": layers,
        "samples": args.samples,
        **meta,
        "inference": inf,
        "sweep": sweep_rows(args),
        "training": training_rows(args) if args.float else [],
        "profiles": {n: pr.as_dict() for n, pr in PROFILES.items()},
        "references": REFERENCES,
    }
    md = markdown(result) if result["training"] else markdown({**result, "training": []})
    with atomic_write(out / f"{stem}.md") as f:
        f.write(md.encode())
    with atomic_write(out / f"{stem}.json") as f:
        f.write((json.dumps(result, indent=1) + "\n").encode())
    plot(result, out / f"{stem}.png")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
