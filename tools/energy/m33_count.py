"""Instructions per inference of the fixed-point kernel on a Cortex-M33 (the Pico 2's core),
counted under QEMU's mps2-an505 board: the instruction counts the rp2350 energy profile
multiplies (``edge-lsh energy --instructions N``).

Builds native/src with arm-none-eabi-gcc -mcpu=cortex-m33 -mthumb -mfpu=fpv5-sp-d16
-mfloat-abi=hard -O2 together with tools/energy/m33_count.c (model and inputs read through
semihosting before the first inference) and the firmware start-up (native/firmware/startup.c,
-DFW_UNIT_TESTS: newlib stdio over semihosting, heap in the board's PSRAM,
firmware_tests/ld/mps2_an505_unit.ld), runs it with 1 and with N input rows under
``qemu-system-arm -M mps2-an505 -d in_asm,exec,nochain`` and counts executed instructions with
tools/bench/count_instructions.py's count_log: (count(N) - count(1)) / (N - 1). The model runs
from the board's RAM here, not executed in place from flash: the instruction stream is the same,
the memory timing (which QEMU does not model) is not.

    python tools/energy/m33_count.py --model m.elsh              # LSH and dense, a table
    python tools/energy/m33_count.py --model m.elsh --json -     # JSON on stdout
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "bench"))
from count_instructions import count_log  # noqa: E402  (tools/bench: the same counting)

NATIVE = ROOT / "native"
FIRMWARE = NATIVE / "firmware"
LD = ROOT / "firmware_tests" / "ld" / "mps2_an505_unit.ld"
CC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"
MFLAGS = ["-mcpu=cortex-m33", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"]
CFLAGS = ["-std=c99", "-ffp-contract=off", "-O2", "-ffunction-sections", "-fdata-sections"]


def build(out: Path) -> None:
    """The counting image: kernel + m33_count.c + start-up, linked for mps2-an505."""
    if shutil.which(CC) is None or shutil.which(QEMU) is None:
        raise RuntimeError(f"needs {CC} and {QEMU}: sh firmware_tests/install.sh")
    sources = sorted(str(p) for p in (NATIVE / "src").glob("*.c"))
    sources += [str(Path(__file__).with_name("m33_count.c"))]
    platform = FIRMWARE / "platform_semihost.c"  # the start-up's I/O, where it is separate
    if platform.exists():
        sources.append(str(platform))
    obj = out.parent / "startup.o"
    inc = [f"-I{NATIVE / 'include'}", f"-I{NATIVE / 'src'}", f"-I{FIRMWARE}"]
    steps = [
        [CC, *CFLAGS, *MFLAGS, *inc, "-DFW_UNIT_TESTS", "-c", str(FIRMWARE / "startup.c"), "-o",
         str(obj)],
        [CC, *CFLAGS, *MFLAGS, *inc, "--specs=rdimon.specs", "-nostartfiles", "-Wl,--gc-sections",
         f"-L{FIRMWARE}", f"-L{LD.parent}", "-T", str(LD), str(obj), *sources, "-lm", "-o",
         str(out)],
    ]  # fmt: skip
    for cmd in steps:
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"build failed: {' '.join(cmd)}\n{res.stderr}")


def count_run(elf: Path, work: Path, rows: int, dense: bool, timeout: float) -> int:
    (work / "job.txt").write_text(f"{rows} {int(dense)}\n")
    log = work / "qemu.log"
    cmd = [QEMU, "-M", "mps2-an505", "-nographic", "-semihosting-config",
           "enable=on,target=native", "-d", "in_asm,exec,nochain", "-D", str(log),
           "-kernel", str(elf)]  # fmt: skip
    res = subprocess.run(
        cmd, cwd=work, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if res.returncode != 0 or "m33_count:" not in res.stdout or "checksum" not in res.stdout:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
    n = count_log(log)
    log.unlink()
    return n


def instructions_per_inference(
    model: Path, rows: int = 3, modes: tuple[str, ...] = ("lsh", "dense"), timeout: float = 1800
) -> dict[str, Any]:
    """{"lsh": N, "dense": N, ...} instructions per inference of model on the M33."""
    from edge_lsh.fixed import FixedPointModel

    n_in = FixedPointModel.load(model).n_in
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_s:
        work = Path(tmp_s)
        elf = work / "m33_count.elf"
        build(elf)
        shutil.copyfile(model, work / "model.elsh")
        x = np.random.default_rng(0).random((rows, n_in)).astype("<f4")
        (work / "inputs.f32").write_bytes(x.tobytes())
        for mode in modes:
            one = count_run(elf, work, 1, mode == "dense", timeout)
            many = count_run(elf, work, rows, mode == "dense", timeout)
            out[mode] = (many - one) / (rows - 1)
    out["method"] = (
        f"qemu-system-arm -M mps2-an505 (Cortex-M33), {CC} {' '.join(MFLAGS)} -O2; "
        f"(count with {rows} rows - count with 1) / {rows - 1}, in_asm,exec,nochain logs"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="m33_count.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--model", required=True, metavar="FILE.elsh", help="the exported model")
    p.add_argument(
        "--rows", type=int, default=3, metavar="N", help="input rows of the long run (>= 2)"
    )
    p.add_argument(
        "--modes", default="lsh,dense", metavar="LIST", help="lsh, dense or both, comma-separated"
    )
    p.add_argument("--json", metavar="FILE", help="also write the counts as JSON (- for stdout)")
    args = p.parse_args(argv)
    model = Path(args.model)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    if not model.is_file():
        p.error(f"{model}: no such model file")
    if args.rows < 2:
        p.error("--rows must be at least 2")
    if not modes or any(m not in ("lsh", "dense") for m in modes):
        p.error(f"--modes {args.modes!r}: expected lsh, dense or lsh,dense")
    try:
        res = instructions_per_inference(model, args.rows, modes)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
        print(f"m33_count.py: error: {exc}", file=sys.stderr)
        return 2
    if args.json == "-":
        print(json.dumps(res))
        return 0
    for mode in modes:
        print(f"{mode:6s} {res[mode]:,.0f} instructions per inference (Cortex-M33, QEMU)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
