"""Instructions per inference of the fixed-point kernel on ARM, counted under QEMU: the
evidence that NEON pays, without an ARM board.

Builds the standalone runner (native/runner) statically for aarch64 and armv7 in several
variants, runs it under qemu-user with ``-d in_asm,exec,nochain`` (every translated block is
logged once with its instructions, every execution of a block once), and sums block sizes over
executions. Instructions per inference = (count with N inputs - count with 1 input) / (N - 1),
so start-up and model loading cancel out (inputs come from a binary .npy, so no text parsing
is counted either; input quantization is). Variants:

  scalar   -DELSH_NO_SIMD -fno-tree-vectorize: plain C, no vector instructions at all
  autovec  -DELSH_NO_SIMD: the portable C as the compiler vectorizes it at -O2
  neon     the NEON intrinsics (dot_q_neon.c: vmlal_s16)
  sdot     aarch64 -mcpu=cortex-a76: the dot-product extension (sdot), run with -cpu max

Needs gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf and qemu-user (firmware_tests/install.sh).

    python tools/bench/count_instructions.py --model m.elsh

--pi-table instead reproduces the Pi-class table of GUIDE section 3 (issue 13) in one command:
instructions per batch-1 inference on Cortex-A72 (Pi 4) and Cortex-A76 (Pi 5) under
qemu-aarch64, counted by the insncount plugin (tools/bench/qemu/insncount.c, built here), for
  ours, fast        edge-lsh-run built with -mcpu=cortex-a72/-a76 (NEON; sdot on the A76),
                    elsh_model_attach_fast's arena (the runner's default), int8 inputs
                    (--quantized: quantized before the loop, as for LiteRT)
  ours, compact     the same with --compact (the model's own arena only)
  ours, fast, float inputs   quantization (and the model's preprocessing) counted too
  LiteRT int8       ai-edge-litert's Interpreter on the int8 .tflite of the model's dense
                    equivalent (written here, as edge-lsh bench writes it), every row
                    quantized before the loop (tools/bench/qemu/litert_loop.py)
Per inference = (count of 1 + C inferences - count of 1) / C over the same input rows, so start-up,
loading and input parsing cancel. LiteRT needs an arm64 root with Python 3.11 (--arm64-root) and
the aarch64 wheels of ai-edge-litert 1.4.0 and numpy unpacked into one folder (--wheels); when
either is missing its rows say so and the exact commands to make them are printed:

    python tools/bench/count_instructions.py --pi-table --model m.elsh \
        --arm64-root /work/arm64/root --wheels /work/arm64/wheels/site
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import common
import numpy as np
from common import REPO_ROOT, markdown_table, positive_int, progress

PROG = "count_instructions.py"
NATIVE = REPO_ROOT / "native"
CFLAGS = ["-std=c99", "-ffp-contract=off", "-O2", "-static", "-Wall", "-Wextra", "-Werror"]

# target -> (compiler, qemu, [(variant, flags, qemu cpu)])
TARGETS = {
    "aarch64": (
        "aarch64-linux-gnu-gcc",
        "qemu-aarch64",
        [
            ("scalar", ["-mcpu=cortex-a53", "-DELSH_NO_SIMD", "-fno-tree-vectorize"], "cortex-a53"),
            ("autovec", ["-mcpu=cortex-a53", "-DELSH_NO_SIMD"], "cortex-a53"),
            ("neon", ["-mcpu=cortex-a53"], "cortex-a53"),
            ("sdot", ["-mcpu=cortex-a76"], "max"),
        ],
    ),
    "armv7": (
        "arm-linux-gnueabihf-gcc",
        "qemu-arm",
        [
            (
                "scalar",
                ["-march=armv7-a", "-mfpu=neon-vfpv4", "-mfloat-abi=hard", "-DELSH_NO_SIMD"]
                + ["-fno-tree-vectorize"],
                "cortex-a15",
            ),
            (
                "autovec",
                ["-march=armv7-a", "-mfpu=neon-vfpv4", "-mfloat-abi=hard", "-DELSH_NO_SIMD"],
                "cortex-a15",
            ),
            ("neon", ["-march=armv7-a", "-mfpu=neon-vfpv4", "-mfloat-abi=hard"], "cortex-a15"),
        ],
    ),
}

_IN_LINE = re.compile(r"^0x([0-9a-f]+):\s")
_TRACE = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")


def count_log(path: Path) -> int:
    """Executed guest instructions in a qemu in_asm,exec,nochain log."""
    sizes: dict[int, int] = {}
    executed: dict[int, int] = {}
    block_start: int | None = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("IN:"):
                block_start = None
                continue
            m = _IN_LINE.match(line)
            if m:
                pc = int(m.group(1), 16)
                if block_start is None:
                    block_start = pc
                    sizes[pc] = 0
                sizes[block_start] += 1
                continue
            t = _TRACE.match(line)
            if t:
                pc = int(t.group(1), 16)
                executed[pc] = executed.get(pc, 0) + 1
    missing = [pc for pc in executed if pc not in sizes]
    if missing:
        raise RuntimeError(f"{len(missing)} executed blocks without a translation in {path}")
    return sum(sizes[pc] * n for pc, n in executed.items())


def build(cc: str, flags: list[str], out: Path) -> None:
    sources = sorted(str(p) for p in (NATIVE / "src").glob("*.c"))
    cmd = [cc, *CFLAGS, *flags, f"-I{NATIVE / 'include'}", f"-I{NATIVE / 'src'}"]
    runner = sorted(str(p) for p in (NATIVE / "runner").glob("*.c"))  # edge_lsh_run.c, its parts
    cmd += [*sources, *runner, "-lm", "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"build failed: {' '.join(cmd)}\n{res.stderr}")


def count(qemu: str, cpu: str, binary: Path, args: list[str], log: Path) -> int:
    cmd = [qemu, "-cpu", cpu, "-d", "in_asm,exec,nochain", "-D", str(log), str(binary), *args]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
    n = count_log(log)
    log.unlink()
    return n


def run(args: argparse.Namespace) -> int:
    if args.pi_table:
        return pi_table(args)
    model = Path(args.model)
    if not model.is_file():
        raise ValueError(f"{model}: no such model file")
    from edge_lsh.fixed import FixedPointModel

    n_in = FixedPointModel.load(model).n_in
    rows = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        rng = np.random.default_rng(0)
        for n in (1, args.inputs):  # .npy: binary input, so no text parsing is counted
            np.save(tmp / f"x{n}.npy", rng.random((n, n_in)).astype(np.float32))
        for target in args.targets:
            cc, qemu, variants = TARGETS[target]
            if shutil.which(cc) is None or shutil.which(qemu) is None:
                raise ValueError(f"{target} needs {cc} and {qemu}: run firmware_tests/install.sh")
            for variant, flags, cpu in variants:
                binary = tmp / f"run-{target}-{variant}"
                build(cc, flags, binary)
                for mode in ("lsh", "dense"):
                    extra = ["--quiet"] + (["--dense"] if mode == "dense" else [])
                    progress(f"{target} {variant} {mode}")
                    log = tmp / "q.log"
                    one = [str(model), str(tmp / "x1.npy"), *extra]
                    many = [str(model), str(tmp / f"x{args.inputs}.npy"), *extra]
                    c1 = count(qemu, cpu, binary, one, log)
                    cn = count(qemu, cpu, binary, many, log)
                    per = (cn - c1) / (args.inputs - 1)
                    rows.append([target, variant, mode, f"{per:,.0f}"])
    print(markdown_table(["target", "variant", "network", "instructions per inference"], rows))
    return 0


# ----------------------------------------------------------------------------- --pi-table

PI_CPUS = ("cortex-a72", "cortex-a76")
LITERT_WHEELS = "ai-edge-litert==1.4.0 numpy==2.2.6"
ARM64_HOWTO = f"""How to make the arm64 root and the aarch64 wheels (as done for the table;
a Debian bookworm host, as root, with the mirror apt uses):
  apt-get install debootstrap qemu-user
  debootstrap --foreign --arch=arm64 --variant=minbase --include=python3 bookworm ROOT \
      http://deb.debian.org/debian
  for d in ROOT/var/cache/apt/archives/*.deb; do dpkg-deb -x "$d" ROOT; done
      (--foreign needs no binfmt_misc: the unpacked python3.11 runs under qemu-aarch64 -L ROOT;
       with binfmt, GUIDE section 3's plain debootstrap after update-binfmts works too)
  mkdir -p WHEELS && cd WHEELS && pip download --platform manylinux_2_17_aarch64 \
      --only-binary=:all: --python-version 3.11 --no-deps {LITERT_WHEELS}
      (--platform manylinux2014_aarch64 finds no ai-edge-litert 1.4.0: its wheel is tagged
       manylinux_2_17 only)
  for w in *.whl; do python -m zipfile -e "$w" site/; done
then pass --arm64-root ROOT --wheels WHEELS/site"""


def plugin(tmp: Path) -> Path:
    """The insncount plugin, built from tools/bench/qemu/insncount.c."""
    out = tmp / "insncount.so"
    src = Path(__file__).resolve().parent / "qemu" / "insncount.c"
    res = subprocess.run(
        ["cc", "-shared", "-fPIC", "-O2", "-o", str(out), str(src)], text=True, capture_output=True
    )
    if res.returncode != 0:
        raise RuntimeError(f"building {src} failed:\n{res.stderr}")
    return out


def insns(cmd: list[str]) -> int:
    """Run cmd (a qemu-aarch64 command with the insncount plugin); the count it prints."""
    res = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"insncount: (\d+)", res.stderr)
    if res.returncode != 0 or not m:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return int(m.group(1))


def pi_table(args: argparse.Namespace) -> int:
    from edge_lsh import data as data_mod
    from edge_lsh.fixed import FixedPointModel
    from edge_lsh.format import read_elsh
    from edge_lsh.interop.convert import calibrate_output, mlp_from_qmodel

    model = Path(args.model)
    if not model.is_file():
        raise ValueError(f"{model}: no such model file")
    for tool in ("aarch64-linux-gnu-gcc", "qemu-aarch64", "cc"):
        if shutil.which(tool) is None:
            raise ValueError(f"--pi-table needs {tool}: run firmware_tests/install.sh")
    fixed = FixedPointModel.load(model)
    record = fixed.info.get("data") or {}
    spec = args.data or (record.get("source") or {}).get("spec") or record.get("spec") or "mnist5k"
    ds = data_mod.load(spec, seed=args.seed)
    x = np.ascontiguousarray(ds.x_test[: args.rows], dtype=np.float32)
    rows, calls = x.shape[0], args.calls
    repeat = -(-calls // rows)  # whole passes over the rows
    n = repeat * rows
    results: dict[str, dict[str, float | str]] = {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        so = plugin(tmp)
        np.save(tmp / "q.npy", fixed.quantize_input(x))
        # the runner divides raw inputs as the model's PREPROCESS section says: undo it here
        summary = fixed._summary
        divisor = float(summary.input_divisor) if summary.has_preprocess else 1.0
        np.save(tmp / "x.npy", (x * np.float32(divisor)).astype(np.float32))
        for cpu in PI_CPUS:
            binary = tmp / f"run-{cpu}"
            build("aarch64-linux-gnu-gcc", [f"-mcpu={cpu}"], binary)
            for key, inp, extra in (
                ("ours, fast", "q.npy", ["--quantized"]),
                ("ours, compact", "q.npy", ["--quantized", "--compact"]),
                ("ours, fast, float inputs", "x.npy", []),
            ):
                progress(f"{cpu}: {key}")
                base = ["qemu-aarch64", "-cpu", cpu, "-plugin", str(so), str(binary), str(model)]
                base += [str(tmp / inp), "--quiet", *extra]
                c1 = insns([*base, "--repeat", "1"])
                cn = insns([*base, "--repeat", str(repeat + 1)])
                results.setdefault(key, {})[cpu] = (cn - c1) / n
        have_root = args.arm64_root and (Path(args.arm64_root) / "usr/bin/python3.11").exists()
        have_wheels = args.wheels and (Path(args.wheels) / "ai_edge_litert").is_dir()
        if not (have_root and have_wheels):
            missing = [] if have_root else ["an arm64 root with python3.11 (--arm64-root)"]
            missing += [] if have_wheels else ["the aarch64 ai-edge-litert wheels (--wheels)"]
            why = "missing " + " and ".join(missing)
            results["LiteRT int8 (ai-edge-litert 1.4.0)"] = {cpu: why for cpu in PI_CPUS}
            print(ARM64_HOWTO, file=sys.stderr)
        else:
            from edge_lsh.interop.tflite_io import tflite_bytes

            mlp = mlp_from_qmodel(read_elsh(model.read_bytes()), str(model))
            calibrate_output(mlp, ds.x_train[:1000])
            (tmp / "m8.tflite").write_bytes(tflite_bytes(mlp, int8=True))
            np.save(tmp / "lx.npy", x)
            loop = Path(__file__).resolve().parent / "qemu" / "litert_loop.py"
            py = str(Path(args.arm64_root) / "usr/bin/python3.11")
            env = {**os.environ, "PYTHONPATH": str(args.wheels)}
            for cpu in PI_CPUS:
                progress(f"{cpu}: LiteRT int8 (slow under QEMU)")
                cmd = ["qemu-aarch64", "-cpu", cpu, "-L", str(args.arm64_root), "-plugin", str(so)]
                cmd += [py, str(loop), str(tmp / "m8.tflite"), str(tmp / "lx.npy")]
                c1 = insns_env([*cmd, "1"], env)
                cn = insns_env([*cmd, str(1 + calls)], env)
                key = "LiteRT int8 (ai-edge-litert 1.4.0)"
                results.setdefault(key, {})[cpu] = (cn - c1) / calls
    table = []
    for key, per_cpu in results.items():
        table.append([key, *[_cell(per_cpu[c]) for c in PI_CPUS]])
    lite = results.get("LiteRT int8 (ai-edge-litert 1.4.0)", {})
    fast = results["ours, fast"]
    if all(isinstance(lite.get(c), float) for c in PI_CPUS):
        ratios = [f"{float(lite[c]) / float(fast[c]):.2f}x" for c in PI_CPUS]
        table.append(["LiteRT int8 / ours, fast", *ratios])
    print(f"## instructions per inference under qemu-aarch64: {model.name}, {rows} {spec} rows\n")
    print(markdown_table(["runtime", "Cortex-A72 (Pi 4)", "Cortex-A76 (Pi 5)"], table))
    return 0


def insns_env(cmd: list[str], env: dict[str, str]) -> int:
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    m = re.search(r"insncount: (\d+)", res.stderr)
    if res.returncode != 0 or not m:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return int(m.group(1))


def _cell(v: float | str) -> str:
    return f"{v:,.0f}" if isinstance(v, float) else v


def at_least_two(text: str) -> int:
    """argparse type: a whole number >= 2."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 2")
    return value


def target_list(text: str) -> list[str]:
    """argparse type: comma-separated names of TARGETS."""
    targets = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in targets if t not in TARGETS]
    if not targets or bad:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected targets from {', '.join(TARGETS)}, comma-separated"
        )
    return targets


def build_parser() -> argparse.ArgumentParser:
    p = common.build_parser(PROG, __doc__.split("\n\n")[0], epilog=None)
    p.add_argument("--model", required=True, metavar="FILE.elsh", help="the exported model to run")
    p.add_argument(
        "--inputs",
        type=at_least_two,
        default=5,
        metavar="N",
        help="inputs of the long counted run (the short one has 1)",
    )
    p.add_argument(
        "--targets",
        type=target_list,
        default=",".join(TARGETS),
        metavar="LIST",
        help=f"comma-separated, from {', '.join(TARGETS)}",
    )
    p.add_argument(
        "--pi-table",
        action="store_true",
        help="the Pi-class table instead: ours and LiteRT int8 on Cortex-A72/A76 (see above)",
    )
    p.add_argument(
        "--data", metavar="SPEC", help="--pi-table: test rows from (default: the model's)"
    )
    p.add_argument("--seed", type=int, default=0, help="--pi-table: seed of the data split")
    p.add_argument("--rows", type=positive_int, default=100, help="--pi-table: input rows")
    p.add_argument(
        "--calls", type=positive_int, default=1000, help="--pi-table: inferences counted"
    )
    p.add_argument("--arm64-root", metavar="DIR", help="--pi-table: arm64 root with python3.11")
    p.add_argument("--wheels", metavar="DIR", help="--pi-table: folder of unpacked aarch64 wheels")
    return p


if __name__ == "__main__":
    sys.exit(common.main(PROG, build_parser(), run))
