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
"""

from __future__ import annotations

import argparse
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
    return p


if __name__ == "__main__":
    sys.exit(common.main(PROG, build_parser(), run))
