"""The firmware half of ``edge-lsh deploy`` (target ``pico2``): a Cortex-M33 image with the
model embedded in flash, built from native/firmware exactly as firmware_tests/Makefile builds
its conformance firmware, and checked under ``qemu-system-arm -M mps2-an505``.

The image runs the model on the check inputs (quantized on the host), compares every logit
with the host's and reports over semihosting; it is the proof that the model runs on an M33
with a static arena and no malloc. ``model_data.c`` is the model as a C array for the user's
own firmware (e.g. the Pico SDK).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge_lsh.deploy import toolchain
from edge_lsh.deploy.targets import COMMON_CFLAGS, DeployTarget
from edge_lsh.errors import DeployError
from edge_lsh.fixed import FixedPointModel

WARN = ("-Wall", "-Wextra")
HEAP_SYMBOLS = {"malloc", "free", "calloc", "realloc", "_malloc_r", "_free_r", "_sbrk", "_sbrk_r"}


def _write_expect(path: Path, xq: np.ndarray, pred: np.ndarray, logits: np.ndarray) -> None:
    lines = [f"{xq.shape[0]} {xq.shape[1]} {logits.shape[1]}"]
    for i in range(xq.shape[0]):
        lines.append(" ".join(str(int(v)) for v in xq[i]))
        lines.append(" ".join(str(int(v)) for v in logits[i]))
        lines.append(str(int(pred[i])))
    path.write_text("\n".join(lines) + "\n")


def build_firmware(
    blob: bytes,
    model: FixedPointModel,
    target: DeployTarget,
    root: Path,
    tmp: Path,
    x: np.ndarray,
    pred: np.ndarray,
    logits: np.ndarray,
    check: bool,
    say: Callable[[str], None],
) -> list[str]:
    """Build tmp/firmware.elf and tmp/model_data.c; returns the file names written."""
    cc = toolchain.need(target.cc, target, "the cross-compiler")
    native = root / "native"
    fw = native / "firmware"
    gen = fw / "gen_models_c.py"
    if not fw.is_dir() or not gen.is_file():
        raise DeployError(f"firmware sources missing under {fw}")
    xq = model.quantize_input(x)
    expect = tmp / "model.expect"
    _write_expect(expect, xq, pred, logits)
    models_c = tmp / "model_data.c"
    local_model = tmp / "model.elsh"
    local_model.write_bytes(blob)
    gen_cmd = [sys.executable, str(gen), str(models_c), str(local_model), str(expect)]
    toolchain.run(gen_cmd, "embedding the model")
    say(f"building the Cortex-M33 firmware with {target.cc} (arena {model.arena_bytes:,} bytes)")
    objs = []
    build = tmp / "obj"
    build.mkdir()
    flags = [*COMMON_CFLAGS, *WARN, *target.cflags, f"-I{native / 'include'}", f"-I{fw}"]
    units = [*sorted((native / "src").glob("*.c")), fw / "fw_main.c", fw / "startup.c", models_c]
    for i, src in enumerate(units):
        obj = build / f"{i}_{src.stem}.o"
        extra = [f"-DFW_ARENA_BYTES={model.arena_bytes}"] if src.name == "fw_main.c" else []
        toolchain.run([cc, *flags, *extra, "-c", str(src), "-o", str(obj)], f"compiling {src.name}")
        objs.append(str(obj))
    elf = tmp / "firmware.elf"
    link = [cc, *target.cflags, *target.ldflags, f"-L{fw}", "-T", str(fw / "mps2_an505.ld")]
    toolchain.run([*link, *objs, "-lm", "-o", str(elf)], "linking the firmware")
    nm_tool = str(Path(cc).with_name(Path(cc).name.removesuffix("gcc") + "nm"))
    nm = toolchain.run([nm_tool, str(elf)], "listing symbols").stdout.split()
    heap = sorted(HEAP_SYMBOLS & set(nm))
    if heap:
        raise DeployError(f"the firmware links a heap ({', '.join(heap)}): refusing to ship it")
    if check:
        qemu = toolchain.need(target.qemu[0], target, "QEMU, for --check")
        say(f"checking under {' '.join(target.qemu)}")
        try:
            res = subprocess.run(
                [qemu, *target.qemu[1:], str(elf)],
                capture_output=True,
                text=True,
                timeout=toolchain.QEMU_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            msg = f"the firmware did not finish under QEMU in {toolchain.QEMU_TIMEOUT_S} s"
            raise DeployError(msg) from exc
        output = res.stdout + res.stderr  # semihosting output may land on either stream
        if res.returncode != 0 or "ALL PASS" not in output:
            tail = "\n".join(output.strip().splitlines()[-10:])
            raise DeployError(f"the firmware check failed (exit {res.returncode}):\n{tail}")
    local_model.unlink()
    return ["firmware.elf", "model_data.c", "README.md"]
