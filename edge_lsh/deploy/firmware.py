"""The firmware half of ``edge-lsh deploy`` (target ``pico2``): images of the Cortex-M33
firmware in native/firmware with the model embedded in flash, built as
firmware_tests/Makefile builds its Pico 2 images.

- ``firmware-rp2350.elf`` and ``firmware-rp2350.uf2``: the image for a real Pico 2 (rp2350.ld:
  flash 0x10000000, SRAM 0x20000000; the RP2350 IMAGE_DEF block after the vector table; I/O on
  UART0, GPIO 0/1). At boot it checks the model on the embedded check inputs, then answers
  lines of inputs sent over the UART (fw_main.c, FW_SERIAL).
- ``firmware-qemu-an505.elf``: the same objects but the UART driver, linked for QEMU's
  mps2-an505 board; --check runs it, sends sample.csv over the emulated UART, and the bundle
  compares every answer with the host's.
- ``model_data.c``: the model as a 16-byte aligned C array (with the check data), for one's own
  firmware.
- ``pico-sdk/``: a Pico SDK project (CMakeLists.txt, main.c with USB serial, the kernel) that
  builds the same model into an SDK image; text only, not built here (no SDK).

``check_fits`` compares the model with the board's flash and RAM before anything is compiled.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_lsh.deploy import serial_feed, toolchain, uf2
from edge_lsh.deploy.targets import COMMON_CFLAGS, DeployTarget
from edge_lsh.errors import DeployError
from edge_lsh.fixed import FixedPointModel

WARN = ("-Wall", "-Wextra")
HEAP_SYMBOLS = {"malloc", "free", "calloc", "realloc", "_malloc_r", "_free_r", "_sbrk", "_sbrk_r"}
SDK_DIR = "pico-sdk"
RP2350_ELF = "firmware-rp2350.elf"
RP2350_UF2 = "firmware-rp2350.uf2"
QEMU_ELF = "firmware-qemu-an505.elf"
ARENA_ALIGN = 64  # fw_main.c's arena alignment
IMAGE_DEF_WINDOW = 4096  # the bootrom looks for the IMAGE_DEF in the first 4 KB of flash


@dataclass
class FirmwareBuild:
    files: list[str] = field(default_factory=list)
    serial_output: list[str] = field(default_factory=list)  # --check: the QEMU run's lines
    flash_bytes: int = 0  # the board image's loadable bytes (what the .uf2 writes)
    ram_bytes: int = 0  # .data + .bss + stack of the board image
    image_def_address: int = 0


@dataclass(frozen=True)
class Budget:
    """What a model needs of a firmware board, estimated before building."""

    flash: int
    ram: int
    code: int  # firmware code and constants without the model
    check_data: int  # the embedded check inputs and expected outputs
    static_ram: int  # .data + .bss without the arena and the input buffers
    input_buffers: int
    stack: int


def serial_buffer_bytes(n_in: int) -> int:
    """fw_main.c's serial loop: n_in + 1 floats and n_in int8 values."""
    return 4 * (n_in + 1) + n_in


def check_data_bytes(model: FixedPointModel, n_check: int) -> int:
    """model_data.c besides the model: int8 inputs, int32 logits, int16 predictions."""
    return n_check * (model.n_in + 4 * model.n_classes + 2)


def budget(model: FixedPointModel, target: DeployTarget, n_check: int) -> Budget:
    fw = target.firmware
    assert fw is not None
    check_data = check_data_bytes(model, n_check)
    buffers = serial_buffer_bytes(model.n_in)
    code = fw.code_flash_bytes + 16  # and the model array's alignment
    static = fw.static_ram_bytes + ARENA_ALIGN  # and the arena's alignment
    return Budget(
        flash=code + model.model_bytes + check_data,
        ram=static + model.arena_bytes + buffers + fw.stack_bytes,
        code=code,
        check_data=check_data,
        static_ram=static,
        input_buffers=buffers,
        stack=fw.stack_bytes,
    )


def _size(n: int) -> str:
    """4194304 -> '4 MB', 532480 -> '520 KB'."""
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    return f"{n // 1024} KB" if n % 1024 == 0 else f"{n:,} bytes"


def _tables_in_file(model: FixedPointModel) -> bool:
    return any(model.layer_info(i).get("tables_in_file", False) for i in range(model.n_layers))


def check_fits(model: FixedPointModel, target: DeployTarget, n_check: int) -> Budget:
    """Raise a DeployError saying by how much the model misses the board's flash or RAM, and
    what would fit, before anything is built."""
    fw = target.firmware
    assert fw is not None
    b = budget(model, target, n_check)
    board = fw.board
    tables = _tables_in_file(model)
    if b.flash > board.flash_bytes:
        fits = board.flash_bytes - (b.flash - model.model_bytes)
        hint = (
            "export it with --no-tables (the hash tables are then rebuilt in RAM: a smaller "
            "file, a larger arena)"
            if tables
            else "use fewer hidden neurons (each costs n_in bytes of int8 weights)"
        )
        raise DeployError(
            f"--target {target.name}: the model does not fit the board's flash: "
            f"{model.model_bytes:,} bytes of model + {b.code:,} of firmware code + "
            f"{b.check_data:,} of check data = {b.flash:,} bytes, "
            f"{b.flash - board.flash_bytes:,} over the {_size(board.flash_bytes)} "
            f"({board.flash_bytes:,} bytes). At most {max(fits, 0):,} bytes of model fit; "
            f"{hint}."
        )
    if b.ram > board.ram_bytes:
        fits = board.ram_bytes - (b.ram - model.arena_bytes)
        hint = (
            "use fewer hidden neurons or hash tables"
            if tables
            else "export it with its tables (without --no-tables: they are then read from "
            "flash, not built in RAM), or use fewer hidden neurons or hash tables"
        )
        raise DeployError(
            f"--target {target.name}: the model does not fit the board's RAM: its arena is "
            f"{model.arena_bytes:,} bytes; with the firmware's {b.static_ram:,} bytes of static "
            f"data, {b.input_buffers:,} of input buffers and the {b.stack:,}-byte stack that is "
            f"{b.ram:,} bytes, {b.ram - board.ram_bytes:,} over the {_size(board.ram_bytes)} "
            f"({board.ram_bytes:,} bytes) of SRAM. At most {max(fits, 0):,} bytes of arena "
            f"fit; {hint}."
        )
    return b


def _write_expect(path: Path, xq: np.ndarray, pred: np.ndarray, logits: np.ndarray) -> None:
    lines = [f"{xq.shape[0]} {xq.shape[1]} {logits.shape[1]}"]
    for i in range(xq.shape[0]):
        lines.append(" ".join(str(int(v)) for v in xq[i]))
        lines.append(" ".join(str(int(v)) for v in logits[i]))
        lines.append(str(int(pred[i])))
    path.write_text("\n".join(lines) + "\n")


def _symbols(nm_out: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in nm_out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            try:
                out[parts[2]] = int(parts[0], 16)
            except ValueError:
                continue
    return out


def _check_board_image(elf: Path, nm_out: str, target: DeployTarget) -> FirmwareBuild:
    """The board image's layout, checked before shipping: vector table at the flash origin,
    IMAGE_DEF in the first 4 KB, RAM sections and the stack inside SRAM."""
    fw = target.firmware
    assert fw is not None
    mem = fw.board
    sym = _symbols(nm_out)
    need = ("fw_vectors", "rp2350_image_def", "_sdata", "_ebss", "_sstack", "_estack")
    missing = [s for s in need if s not in sym]
    if missing:
        raise DeployError(f"{elf.name}: symbols missing: {', '.join(missing)}")
    problems = []
    if sym["fw_vectors"] != mem.flash_origin:
        problems.append(f"the vector table is at 0x{sym['fw_vectors']:08x}")
    if not mem.flash_origin <= sym["rp2350_image_def"] < mem.flash_origin + IMAGE_DEF_WINDOW - 20:
        problems.append(f"the IMAGE_DEF block is at 0x{sym['rp2350_image_def']:08x}")
    ram_end = mem.ram_origin + mem.ram_bytes
    for s in ("_sdata", "_ebss", "_sstack", "_estack"):
        if not mem.ram_origin <= sym[s] <= ram_end:
            problems.append(f"{s} is at 0x{sym[s]:08x}, outside SRAM")
    if problems:
        raise DeployError(f"{elf.name} is not laid out for the board: " + "; ".join(problems))
    segments = uf2.elf_load_segments(elf.read_bytes())
    return FirmwareBuild(
        flash_bytes=sum(len(d) for _, d in segments),
        ram_bytes=sym["_estack"] - mem.ram_origin,
        image_def_address=sym["rp2350_image_def"],
    )


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
) -> FirmwareBuild:
    """Write the images and model_data.c into tmp (see the module docstring)."""
    fw = target.firmware
    assert fw is not None
    cc = toolchain.need(target.cc, target, "the cross-compiler")
    native = root / "native"
    src = native / "firmware"
    gen = src / "gen_models_c.py"
    if not src.is_dir() or not gen.is_file() or not (src / fw.board.linker_script).is_file():
        raise DeployError(f"firmware sources missing under {src}")
    tool = str(Path(cc).with_name(target.tool_prefix + "{}"))
    xq = model.quantize_input(x)
    expect = tmp / "model.expect"
    _write_expect(expect, xq, pred, logits)
    models_c = tmp / "model_data.c"
    local_model = tmp / "model.elsh"
    local_model.write_bytes(blob)
    gen_cmd = [sys.executable, str(gen), str(models_c), str(local_model), str(expect)]
    toolchain.run(gen_cmd, "embedding the model")
    say(f"building the Cortex-M33 firmware with {target.cc} (arena {model.arena_bytes:,} bytes)")
    build = tmp / "obj"
    build.mkdir()
    flags = [*COMMON_CFLAGS, *WARN, *target.cflags, f"-I{native / 'include'}", f"-I{src}"]

    def compile_c(source: Path, name: str, *defines: str) -> str:
        obj = build / f"{name}.o"
        cmd = [cc, *flags, *defines, "-c", str(source), "-o", str(obj)]
        toolchain.run(cmd, f"compiling {source.name}")
        return str(obj)

    kernel = [compile_c(s, f"k_{s.stem}") for s in sorted((native / "src").glob("*.c"))]
    lib = str(build / "libedge_lsh.a")
    toolchain.run([tool.format("ar"), "rcs", lib, *kernel], "archiving the kernel")
    serial = (
        f"-DFW_ARENA_BYTES={model.arena_bytes}",
        "-DFW_SERIAL",
        f"-DFW_SERIAL_MAX_IN={model.n_in}",
    )
    common = [
        compile_c(src / "startup.c", "startup"),
        compile_c(src / "fw_main.c", "fw_main_serial", *serial),
        compile_c(models_c, "model_data"),
    ]
    images = {
        RP2350_ELF: (
            fw.board.linker_script,
            [
                compile_c(src / "platform_rp2350.c", "platform_rp2350"),
                compile_c(src / "image_def_rp2350.c", "image_def_rp2350"),
            ],
        ),
        QEMU_ELF: (
            fw.qemu.linker_script,
            [compile_c(src / "platform_an505_uart.c", "platform_an505_uart")],
        ),
    }
    nm_out: dict[str, str] = {}
    for name, (script, platform) in images.items():
        elf = tmp / name
        link = [cc, *target.cflags, f"-L{src}", "-T", str(src / script), *common, *platform, lib]
        try:
            toolchain.run([*link, *target.ldflags, "-o", str(elf)], f"linking {name}")
        except DeployError as exc:  # the estimate of check_fits passed, the real image did not
            m = re.search(r"region `(\w+)' overflowed by (\d+) bytes", str(exc))
            if m is None:
                raise
            region = "SRAM" if m.group(1) == "RAM" else m.group(1).lower()
            raise DeployError(
                f"--target {target.name}: {name} does not fit the board's {region}: "
                f"{int(m.group(2)):,} bytes over (the model's arena is {model.arena_bytes:,} "
                f"bytes, its file {model.model_bytes:,}); use a smaller model"
            ) from None
        nm_out[name] = toolchain.run([tool.format("nm"), str(elf)], "listing symbols").stdout
        heap = sorted(HEAP_SYMBOLS & set(nm_out[name].split()))
        if heap:
            raise DeployError(f"{name} links a heap ({', '.join(heap)}): refusing to ship it")
    result = _check_board_image(tmp / RP2350_ELF, nm_out[RP2350_ELF], target)
    try:
        data = uf2.elf_to_uf2(
            (tmp / RP2350_ELF).read_bytes(),
            fw.board.flash_origin,
            fw.board.flash_bytes,
            fw.uf2_family_id,
        )
    except uf2.UF2Error as exc:
        raise DeployError(f"{RP2350_ELF}: {exc}") from None
    (tmp / RP2350_UF2).write_bytes(data)
    _write_sdk_project(tmp / SDK_DIR, src, native, model)
    if check:
        result.serial_output = _run_qemu(tmp / QEMU_ELF, tmp / "sample.csv", target, say)
    local_model.unlink()
    expect.unlink()
    result.files = [RP2350_UF2, RP2350_ELF, QEMU_ELF, "model_data.c", SDK_DIR]
    return result


def _write_sdk_project(dest: Path, src: Path, native: Path, model: FixedPointModel) -> None:
    """pico-sdk/: CMakeLists.txt, main.c, fw_models.h and the kernel (edge_lsh/include,
    edge_lsh/src), next to the bundle's model_data.c. Text only: no SDK is needed to write it."""
    template = (src / "pico-sdk" / "CMakeLists.txt.in").read_text()
    values = {"@ARENA_BYTES@": str(model.arena_bytes), "@N_IN@": str(model.n_in)}
    for key, value in values.items():
        template = template.replace(key, value)
    (dest / "edge_lsh").mkdir(parents=True)
    (dest / "CMakeLists.txt").write_text(template)
    shutil.copy2(src / "pico-sdk" / "main.c", dest / "main.c")
    shutil.copy2(src / "fw_models.h", dest / "fw_models.h")
    shutil.copytree(native / "include", dest / "edge_lsh" / "include")
    kernel = dest / "edge_lsh" / "src"
    kernel.mkdir()
    for f in sorted((native / "src").iterdir()):
        if f.suffix in (".c", ".h"):
            shutil.copy2(f, kernel / f.name)


def _run_qemu(
    elf: Path, sample: Path, target: DeployTarget, say: Callable[[str], None]
) -> list[str]:
    """Boot the QEMU image, send sample.csv then `quit` over its UART; the answer lines."""
    qemu = toolchain.need(target.qemu[0], target, "QEMU, for --check")
    say(f"checking under {' '.join(target.qemu)}: sample.csv over the emulated UART")
    feed = sample.read_text() + "quit\n"
    try:
        # typed only after `# ready`: the emulated UART drops what arrives before it listens
        rc, output = serial_feed.run_after_marker(
            [qemu, *target.qemu[1:], str(elf)], feed, toolchain.QEMU_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        msg = f"the firmware did not finish under QEMU in {toolchain.QEMU_TIMEOUT_S} s"
        raise DeployError(msg) from exc
    lines = output.splitlines()
    if rc != 0 or not any(line.startswith("ALL PASS") for line in lines):
        tail = "\n".join(output.strip().splitlines()[-10:])
        raise DeployError(f"the firmware check failed (exit {rc}):\n{tail}")
    ready = [i for i, line in enumerate(lines) if line.startswith("# ready")]
    if not ready:
        raise DeployError("the firmware check failed: the serial loop never said it was ready")
    return lines[ready[0] :]
