"""Issue 10's Cortex-M33 acceptance run, from one command: fine-tuning on the device under QEMU
(mps2-an505), LSH against dense, with the static RAM, the instructions per training sample and
the accuracy before and after; every saved slot region checked byte for byte against the host.

Configurations (the upright bases of domain_shift.py, fine-tuned on rotate25 rows they never
saw, tested on the rotated test split):
  digits  64-1000-10, all layers trainable, SGD lr 0.01, half B of the training split (718 rows)
  mnist5k 784-1000-10, the hidden layer frozen in flash (--train-layers last), SGD lr 0.01, 500
          rows of half B (the flash holds the 905 KB model and 627 KB of samples)
Each is built by `make -C firmware_tests check-finetune` with its own FT folder (the firmware
fw_finetune.c, its data from make_finetune_data.py, the host's expected slot regions), once with
1 epoch and once with 2, LSH and dense (-DFW_DENSE, every neuron computed), and run under the
insncount QEMU plugin (/work/shared/tools/insncount.c, built here with cc). Instructions per
training sample = (count at 2 epochs - count at 1 epoch) / rows: loading, evaluation and the save
cancel out. Static RAM = .data + .bss (the two arenas) + the stack region, from the ELF; the stack
high-water mark is what startup.c's painting measured. make check-finetune fails unless both
boots' slot regions equal the host's, byte for byte.

    python tools/finetune/m33.py --work /tmp/ds --out tools/finetune/results/m33.md
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import domain_shift

from edge_lsh.fileio import atomic_write, write_text_output

ROOT = Path(__file__).resolve().parents[2]
FT = ROOT / "firmware_tests"
PLUGIN_SRC = Path("/work/shared/tools/insncount.c")

CONFIGS = {
    "digits": {"layers": "all", "train": 718, "test": 360, "opts": "--optimizer sgd --lr 0.01"},
    "mnist5k": {"layers": "last", "train": 500, "test": 300, "opts": "--optimizer sgd --lr 0.01"},
}


def build_plugin(work: Path, src: Path) -> Path:
    out = work / "insncount.so"
    if not out.exists():
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(out), str(src)], check=True)
    return out


def run(
    name: str, model: Path, half: int, epochs: int, dense: bool, plugin: Path, work: Path
) -> dict:
    cfg = CONFIGS[name]
    folder = work / f"ft-{name}-e{epochs}-{'dense' if dense else 'lsh'}"
    opts = (
        f"--data {name} --shift rotate25 --offset {half} --train {cfg['train']} --test "
        f"{cfg['test']} --epochs {epochs} --train-layers {cfg['layers']} {cfg['opts']}"
        + (" --dense" if dense else "")
    )
    cmd = [
        "make",
        "-s",
        "-C",
        str(FT),
        "check-finetune",
        f"FT={folder}",
        f"FT_MODEL={model}",
        f"FT_OPTS={opts}",
        f"FT_DEFS={'-DFW_DENSE' if dense else ''}",
        f"FT_PLUGIN={plugin}",
    ]
    t0 = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"m33.py: {' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    log = (folder / "boot1.log").read_text()
    host = json.loads((folder / "host.log").read_text())

    def grab(pattern: str) -> str:
        m = re.search(pattern, log, re.M)
        if not m:
            sys.exit(f"m33.py: {folder}/boot1.log: no match for {pattern!r}")
        return m.group(1)

    size = subprocess.run(
        ["arm-none-eabi-size", "-A", str(folder / "fw_finetune.elf")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sections = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\.(\w+)\s+(\d+)", size, re.M)}
    return {
        "config": name,
        "epochs": epochs,
        "dense": dense,
        "command": " ".join(f"'{c}'" if " " in c else c for c in cmd),
        "seconds": time.monotonic() - t0,
        "instructions": int(grab(r"^insncount: (\d+)")),
        "accuracy_before": float(grab(r"^accuracy before: ([\d.]+)%")) / 100,
        "accuracy_after": float(grab(r"^accuracy after: ([\d.]+)%")) / 100,
        "stack_high_water": int(grab(r"^stack high-water (\d+)")),
        "arena_model": host["model_arena_bytes"],
        "arena_train": host["train_arena_bytes"],
        "ram_static": sections.get("data", 0) + sections.get("bss", 0) + sections.get("stack", 0),
        "stack_region": sections.get("stack", 0),
        "flash": sections.get("text", 0) + sections.get("rodata", 0) + sections.get("data", 0),
        "host": host,
    }


def main() -> int:
    p = argparse.ArgumentParser(
        prog="m33.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--work", required=True, help="folder for the bases (shared with domain_shift)")
    p.add_argument("--out", default="-", help="markdown results (- for stdout)")
    p.add_argument("--json", help="also write the rows as JSON here")
    p.add_argument("--plugin-src", default=str(PLUGIN_SRC), help="insncount.c")
    p.add_argument("--configs", default="digits,mnist5k")
    args = p.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    plugin = build_plugin(work, Path(args.plugin_src))
    log: list[str] = []
    rows = []
    start = time.monotonic()
    for name in args.configs.split(","):
        _, model, _, half = domain_shift.make_base(name, 1000, 10, work, log)
        for dense in (False, True):
            for epochs in (1, 2):
                print(
                    f"{name} {'dense' if dense else 'lsh'} {epochs} epoch(s) ...", file=sys.stderr
                )
                rows.append(run(name, model, half, epochs, dense, plugin, work))
    text = markdown(rows, log, time.monotonic() - start)
    write_text_output(args.out, text)
    if args.json:
        with atomic_write(args.json) as f:
            f.write(json.dumps(rows, indent=1).encode())
    return 0


def markdown(rows: list[dict], log: list[str], seconds: float) -> str:
    out = [
        "# Fine-tuning on the Cortex-M33 under QEMU (issue 10)",
        "",
        f"Made by `python tools/finetune/m33.py {' '.join(sys.argv[1:])}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {seconds:.0f} s (QEMU "
        "mps2-an505, Cortex-M33; a shared 2-core machine: instruction counts do not depend on "
        "it). Every run below passed `make -C firmware_tests check-finetune`: the slot regions "
        "the firmware saved (boot 1 from erased flash, boot 2 from boot 1's) equal, byte for "
        "byte, the host's fine-tuning of the same rows written by the Python slot writer.",
        "",
        "| model | trained | mode | rows x epochs | accuracy before | after | instructions "
        "| arena (model + training) | static RAM (.data+.bss+stack) | stack used | flash |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        h = r["host"]
        out.append(
            f"| {'-'.join(map(str, h['layers']))} | {h['train_layers']} | "
            f"{'dense' if r['dense'] else 'LSH 5%'} | {h['train_samples']} x {r['epochs']} | "
            f"{r['accuracy_before'] * 100:.1f}% | {r['accuracy_after'] * 100:.1f}% | "
            f"{r['instructions']:,} | {r['arena_model']:,} + {r['arena_train']:,} | "
            f"{r['ram_static']:,} B | {r['stack_high_water']:,} of {r['stack_region']:,} | "
            f"{r['flash']:,} B |"
        )
    out += [
        "",
        "Instructions per training sample, (2 epochs - 1 epoch) / rows, LSH against dense:",
        "",
        "| model | trained | LSH | dense | dense / LSH |",
        "|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["config"] for r in rows):
        per = {}
        for dense in (False, True):
            one = [r for r in rows if r["config"] == name and r["dense"] == dense]
            e1 = next(r for r in one if r["epochs"] == 1)
            e2 = next(r for r in one if r["epochs"] == 2)
            per[dense] = (e2["instructions"] - e1["instructions"]) / e1["host"]["train_samples"]
        h = rows[[r["config"] for r in rows].index(name)]["host"]
        out.append(
            f"| {'-'.join(map(str, h['layers']))} | {h['train_layers']} | {per[False]:,.0f} | "
            f"{per[True]:,.0f} | {per[True] / per[False]:.1f}x |"
        )
    out += ["", "Commands (each run's make line):", "", "```"]
    out += [r["command"] for r in rows] + log
    out += ["```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
