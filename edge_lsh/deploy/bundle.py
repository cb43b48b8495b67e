"""``edge-lsh deploy``: cross-compile the standalone runner (or, for a Pico 2, a firmware image
that embeds the model) for a Raspberry Pi target and write a folder ready to copy to the board.

    deploy("m.elsh", "pi4", "out/")                 # out/edge-lsh-run, model.elsh, README.md
    deploy("m.elsh", "pi4", "out/", check=True)     # and run it under QEMU against the host
    deploy("m.elsh", "pico2", "out/")               # out/firmware-rp2350.uf2, ... (firmware.py)

Before anything is built, the model is checked against the board's memory (targets.py): its
arena and file against a Pi's RAM less what the OS keeps, or model + firmware against the
Pico 2's flash and arena + firmware data + stack against its SRAM.

The targets, compilers and flags are the ones firmware_tests/ verifies bit-exact under QEMU
(edge_lsh/deploy/targets.py). The C sources come from the source tree (an editable install or
a checkout) or from the copy a regular install carries in ``edge_lsh/_csrc``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_lsh.deploy import toolchain
from edge_lsh.deploy.targets import COMMON_CFLAGS, TARGETS, DeployTarget
from edge_lsh.errors import DeployError, OutputPathError
from edge_lsh.fileio import check_output_folder
from edge_lsh.fixed import FixedPointModel

__all__ = ["CHECK_INPUTS", "DeployResult", "check_inputs", "deploy"]

CHECK_INPUTS = 16


@dataclass
class DeployResult:
    target: str
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    checked: int = 0  # inputs compared bit-exact under QEMU (0 = no --check)
    binary_bytes: int = 0  # what goes to the board: edge-lsh-run, or the firmware's .uf2
    flash_bytes: int = 0  # firmware: the board image's bytes in flash
    ram_bytes: int = 0  # firmware: .data + .bss + stack (arena included)


def check_ram(model: FixedPointModel, target: DeployTarget) -> None:
    """A Linux board: the arena and the model file (read whole, or mapped) against the
    board's RAM less what the OS keeps. Raises before anything is built."""
    need = model.arena_bytes + model.model_bytes
    free = target.ram_bytes - target.os_ram_bytes
    if need > free:
        mb = 1024 * 1024
        raise DeployError(
            f"--target {target.name}: the model needs {need:,} bytes of RAM (arena "
            f"{model.arena_bytes:,} + file {model.model_bytes:,}), {need - free:,} more than "
            f"the {free // mb} MB a {target.ram_bytes // mb} MB board leaves after "
            f"{target.os_ram_bytes // mb} MB for the OS ({target.board}). Models up to "
            f"{free:,} bytes of arena + file fit; use fewer hidden neurons or hash tables."
        )


def check_inputs(model: FixedPointModel, n: int, seed: int = 0) -> np.ndarray:
    """n float rows spread over the model's input range (whatever quantizes to -128..127)."""
    info = model.layer_info(0)
    scale, zero = info["in_scale"], info["in_zero_point"]
    rng = np.random.default_rng(seed)
    q = rng.integers(-128, 128, size=(n, model.n_in))
    q[0] = zero  # real zero everywhere
    return ((q - zero) * scale).astype(np.float32)


def _build_linux(target: DeployTarget, root: Path, out: Path) -> None:
    cc = toolchain.need(target.cc, target, "the cross-compiler")
    native = root / "native"
    sources = sorted(str(p) for p in (native / "src").glob("*.c"))
    cmd = [cc, *COMMON_CFLAGS, *target.cflags, f"-I{native / 'include'}", f"-I{native / 'src'}"]
    runner = sorted(str(p) for p in (native / "runner").glob("*.c"))  # edge_lsh_run.c and its parts
    cmd += [*sources, *runner, "-o", str(out), *target.ldflags]
    toolchain.run(cmd, f"building the runner for {target.name}")


def _compare(lines: list[str], pred: np.ndarray, logits: np.ndarray, where: str) -> None:
    rows = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    if len(rows) != len(pred):
        raise DeployError(f"{where}: {len(rows)} predictions for {len(pred)} inputs")
    for i, r in enumerate(rows):
        try:
            got = [int(v) for v in r]
        except ValueError:
            raise DeployError(f"{where}: unexpected output line {' '.join(r)!r}") from None
        want = [int(pred[i]), *(int(v) for v in logits[i])]
        if got != want:
            raise DeployError(
                f"{where}: input {i} differs from the host: {got[:6]}... vs {want[:6]}..."
            )


def deploy(
    model_path: str | os.PathLike[str],
    target_name: str,
    out_dir: str | os.PathLike[str],
    *,
    check: bool = False,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    finetune: dict[str, Any] | None = None,
) -> DeployResult:
    """Build for target_name and write out_dir (see the module docstring). finetune (pico2
    only): build the fine-tuning firmware instead, with these FixedTrainer settings
    (train_layers, optimizer, lr, momentum)."""
    say = progress or (lambda _msg: None)
    if target_name not in TARGETS:
        raise DeployError(f"unknown target {target_name!r}; choose from {', '.join(TARGETS)}")
    target = TARGETS[target_name]
    model_path = Path(model_path)
    model = FixedPointModel.load(model_path)  # a bad model fails here, before any build
    blob = model.file_bytes()  # ship exactly the bytes that were validated
    out = Path(out_dir).expanduser()
    if out.is_symlink() and not out.exists():
        raise DeployError(f"{out} is a broken symbolic link")
    try:  # before any build: the parent folder exists and is writable, out is no file
        check_output_folder(out, "deploy folder")
    except OutputPathError as exc:
        raise DeployError(str(exc)) from None
    if out.is_dir() and any(out.iterdir()) and not force:
        raise DeployError(f"{out} exists and is not empty (pass --force to replace its files)")
    if finetune is not None and target.firmware is None:
        raise DeployError(
            f"--finetune builds Pico 2 firmware; for --target {target.name} the runner "
            "fine-tunes already (edge-lsh-run --train)"
        )
    if finetune is not None:
        pass  # build_finetune_firmware checks the training arena against the board
    elif target.firmware is not None:
        from edge_lsh.deploy.firmware import check_fits

        check_fits(model, target, CHECK_INPUTS)
    else:
        check_ram(model, target)
    root = toolchain.source_root()
    x = check_inputs(model, CHECK_INPUTS)
    pred, logits = model.predict_logits(x)
    args = (blob, model, model_path.name, target, root, out, x, pred, logits, check, say)
    try:
        return _deploy_into(*args, finetune)
    except OSError as exc:
        raise DeployError(f"cannot write {out}: {exc}") from exc


def _deploy_into(
    blob: bytes,
    model: FixedPointModel,
    model_name: str,
    target: DeployTarget,
    root: Path,
    out: Path,
    x: np.ndarray,
    pred: np.ndarray,
    logits: np.ndarray,
    check: bool,
    say: Callable[[str], None],
    finetune: dict[str, Any] | None = None,
) -> DeployResult:
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp_s:
        tmp = Path(tmp_s)
        result = DeployResult(target=target.name, out_dir=out)
        if finetune is not None:
            from edge_lsh.deploy.finetune_fw import build_finetune_firmware

            ft = build_finetune_firmware(blob, target, root, tmp, finetune, check, say)
            (tmp / "model.elsh").write_bytes(blob)
            names = [*ft.files, "model.elsh", "README.md"]
            result.checked = ft.checked
            result.binary_bytes = (tmp / names[0]).stat().st_size
            result.flash_bytes, result.ram_bytes = ft.flash_bytes, ft.ram_bytes
            (tmp / "README.md").write_text(_readme_finetune(model, model_name, result, ft))
        elif target.kind == "linux":
            say(f"building edge-lsh-run for {target.name} with {target.cc}")
            binary = tmp / "edge-lsh-run"
            _build_linux(target, root, binary)
            (tmp / "model.elsh").write_bytes(blob)
            np.savetxt(tmp / "sample.csv", x, delimiter=",", fmt="%.9g")
            if check:
                qemu = toolchain.need(target.qemu[0], target, "QEMU, for --check")
                say(f"checking under {' '.join(target.qemu)} against the host")
                cmd = [qemu, *target.qemu[1:], str(binary), str(tmp / "model.elsh")]
                cmd += [str(tmp / "sample.csv"), "--logits"]
                res = toolchain.run(cmd, "the QEMU check", toolchain.QEMU_TIMEOUT_S)
                _compare(res.stdout.splitlines(), pred, logits, f"{target.name} under QEMU")
                result.checked = len(pred)
            result.binary_bytes = binary.stat().st_size
            names = ["edge-lsh-run", "model.elsh", "sample.csv", "README.md"]
        else:
            from edge_lsh.deploy.firmware import build_firmware

            np.savetxt(tmp / "sample.csv", x, delimiter=",", fmt="%.9g")
            fw = build_firmware(blob, model, target, root, tmp, x, pred, logits, check, say)
            if check:
                answers = [line for line in fw.serial_output if not line.startswith("#")]
                _compare(answers, pred, logits, f"{target.name} firmware under QEMU")
                result.checked = len(pred)
            names = [*fw.files, "sample.csv", "README.md"]
            result.binary_bytes = (tmp / names[0]).stat().st_size
            result.flash_bytes, result.ram_bytes = fw.flash_bytes, fw.ram_bytes
        if finetune is None:
            (tmp / "README.md").write_text(_readme(target, model, model_name, result))
        # Every file is complete in tmp; none of the bundle's files may be a folder in out, nor
        # its folders (pico2's pico-sdk/) a file (that would fail halfway through the renames
        # below), so check them all before the first one.
        blocked = [n for n in names if (out / n).is_dir() and not (tmp / n).is_dir()]
        if blocked:
            raise DeployError(
                f"{out}: {', '.join(blocked)} is a folder; remove it or pick a new --out"
            )
        blocked = [n for n in names if (tmp / n).is_dir() and (out / n).is_file()]
        if blocked:
            raise DeployError(
                f"{out}: {', '.join(blocked)} is a file where the bundle has a folder; remove "
                "it or pick a new --out"
            )
        out.mkdir(exist_ok=True)
        for name in names:  # each rename is atomic: a file is the old one or the new one
            old = out / name
            if (tmp / name).is_dir() and old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)  # the bundle's folder from an earlier deploy (--force)
            os.replace(tmp / name, old)
        result.files = [out / n for n in names]
    return result


def _readme(target: DeployTarget, model: FixedPointModel, model_name: str, r: DeployResult) -> str:
    """The bundle's README.md; its "What is here" list names every file the bundle ships
    (tests/test_deploy.py checks both ways)."""
    if target.kind == "firmware":
        return _readme_firmware(target, model, model_name, r)
    checked = (
        f"Checked before shipping: {r.checked} inputs gave the host's predictions and logits bit "
        f"for bit under `{' '.join(target.qemu)}`.\n"
        if r.checked
        else "Not checked under QEMU (run `edge-lsh deploy ... --check` for that).\n"
    )
    return (
        f"# edge-lsh for {target.name}: {target.board}\n\n"
        f"Model: `{model_name}` ({model.model_bytes:,} bytes, {model.n_in} inputs, "
        f"{model.n_classes} classes, arena {model.arena_bytes:,} bytes). SIMD: {target.simd}.\n\n"
        f"{checked}\n"
        "## What is here\n\n"
        f"- `edge-lsh-run`: the runner, a static {target.name} binary (no libraries or Python\n"
        "  needed on the board); `--help` lists its options\n"
        f"- `model.elsh`: the model (`{model_name}`), read once and used in place\n"
        f"- `sample.csv`: {CHECK_INPUTS} inputs spread over the model's input range (the ones\n"
        "  `--check` compares)\n"
        "- `README.md`: this file\n\n"
        "## Copy and run\n\n"
        "```sh\n"
        "scp -r THIS_FOLDER pi@raspberrypi.local:edge-lsh     # any copy will do\n"
        "ssh pi@raspberrypi.local\n"
        "cd edge-lsh\n"
        "./edge-lsh-run model.elsh sample.csv          # a class per line, then a summary\n"
        "./edge-lsh-run model.elsh mine.csv --logits   # n_in floats a row, label optional\n"
        "./edge-lsh-run model.elsh x.npy --repeat 100 --quiet   # latency on the board\n"
        "```\n\n"
        "## Fine-tune on the board\n\n"
        "The runner also fine-tunes the model in fixed point, on labelled rows (n_in numbers\n"
        "and the class a row), and writes the result atomically (temporary file, fsync, rename):\n"
        "the same integer trainer as `edge-lsh finetune` on a PC, the same bytes for the same\n"
        "rows and settings.\n\n"
        "```sh\n"
        "./edge-lsh-run model.elsh --train mine.csv --epochs 3 --out model2.elsh\n"
        "./edge-lsh-run model2.elsh test.csv           # the accuracy now\n"
        "```\n\n"
        f"Notes: {target.notes}\n"
    )


def _readme_finetune(model: FixedPointModel, model_name: str, r: DeployResult, ft: Any) -> str:
    checked = (
        f"Checked before shipping: `firmware-finetune-qemu-an505.elf` (the same program and\n"
        f"kernel, linked for QEMU's mps2-an505) trained on {r.checked} rows sent over the\n"
        "emulated UART, answered each with the host's class, and saved to a slot exactly the\n"
        "bytes the host's fine-tuning (edge_lsh.finetune) writes. The board image has not run on\n"
        "a board here.\n"
        if r.checked
        else "Not checked under QEMU (run `edge-lsh deploy ... --finetune --check` for that).\n"
    )
    return (
        "# edge-lsh fine-tuning firmware for pico2: Raspberry Pi Pico 2 (RP2350)\n\n"
        f"Model: `{model_name}` ({model.model_bytes:,} bytes, {model.n_in} inputs, "
        f"{model.n_classes} classes), in flash, executed in place. Training arena "
        f"{ft.arena_bytes:,} bytes (model and trainer), static; no malloc. Static RAM "
        f"{r.ram_bytes:,} bytes with the stack; the board image takes {r.flash_bytes:,} bytes "
        "of the lower 2 MB of flash; the upper 2 MB hold two model slots (A/B).\n\n"
        f"{checked}\n"
        "## What is here\n\n"
        "- `firmware-finetune-rp2350.uf2`: the image to flash (hold BOOTSEL, plug in, copy it)\n"
        "- `firmware-finetune-rp2350.elf`: the same image as an ELF (debuggers)\n"
        "- `firmware-finetune-qemu-an505.elf`: the program for QEMU's mps2-an505 (`--check`)\n"
        f"- `model.elsh`: the factory model (`{model_name}`) the images embed\n"
        "- `README.md`: this file\n\n"
        "## Use\n\n"
        "Wire UART0 (GPIO 0/1, 115200 8N1) as for the inference image. At boot the firmware\n"
        "takes the newest valid slot, else the factory model, then answers `# ready`. Send one\n"
        "labelled row a line (n_in numbers, then the class, commas or spaces): it trains on it\n"
        "at once (integer arithmetic, the host's `edge-lsh finetune` step) and answers the class\n"
        "it predicted before the step. `save` writes the model to the other slot; `quit` ends.\n\n"
        "On the board `save` writes the slot through the RP2350 bootrom's flash_range_erase and\n"
        "flash_range_program, run from SRAM with XIP off and interrupts masked\n"
        "(native/firmware/flash_rp2350.c). Not verified on a board here: that driver was checked\n"
        "on the linked image (it sits in SRAM and reads nothing from flash while XIP is off) and\n"
        "against a simulated bootrom and NOR flash on the host; the slot code and its power-cut\n"
        "safety under QEMU with a RAM flash that keeps NOR flash's rules. To check it on a\n"
        "board: train a few rows, `save` (answer `saved: slot A, sequence 1, ...`), power-cycle:\n"
        "the boot line must say `boot: slot A, sequence 1`. A second `save` in the same boot\n"
        "after booting from a slot is refused (it would erase the running model): reset first.\n"
    )


def _readme_firmware(
    target: DeployTarget, model: FixedPointModel, model_name: str, r: DeployResult
) -> str:
    fw = target.firmware
    assert fw is not None
    qemu = " ".join(target.qemu)
    checked = (
        f"Checked before shipping: `firmware-qemu-an505.elf` (the same objects as the board\n"
        f"image but the UART driver) passed its self-test under `{qemu}`, then answered the\n"
        f"{r.checked} lines of `sample.csv` sent over the emulated UART with the host's class\n"
        "and logits, bit for bit. The board image itself has not run on a board here: its\n"
        "layout (vector table, IMAGE_DEF block, memory map) and the .uf2 were checked.\n"
        if r.checked
        else "Not checked under QEMU (run `edge-lsh deploy ... --check` for that).\n"
    )
    b = fw.board
    return (
        f"# edge-lsh for {target.name}: {target.board}\n\n"
        f"Model: `{model_name}` ({model.model_bytes:,} bytes, {model.n_in} inputs, "
        f"{model.n_classes} classes), embedded in flash and executed in place; arena "
        f"{model.arena_bytes:,} bytes, static; no malloc. The board image takes "
        f"{r.flash_bytes:,} of the {b.flash_bytes:,} bytes of flash and {r.ram_bytes:,} of the "
        f"{b.ram_bytes:,} bytes of SRAM (stack {fw.stack_bytes:,} included).\n\n"
        f"{checked}\n"
        "## What is here\n\n"
        "- `firmware-rp2350.uf2`: the image to flash: hold BOOTSEL while plugging the Pico 2\n"
        "  into USB, then copy this file onto the RP2350 drive that appears\n"
        f"  (family {fw.uf2_family} 0x{fw.uf2_family_id:08x}, "
        f"written from 0x{b.flash_origin:08x})\n"
        "- `firmware-rp2350.elf`: the same image as an ELF, for a debug probe\n"
        "  (`openocd`/`gdb`, or `picotool load -x firmware-rp2350.elf`)\n"
        "- `firmware-qemu-an505.elf`: the same program for QEMU's mps2-an505 Cortex-M33 board,\n"
        "  talking over that board's UART (how `--check` ran it; see below)\n"
        "- `model_data.c`: the model as a 16-byte aligned const array (`fw_models[0].elsh`), with\n"
        "  the check inputs and the host's logits, for your own firmware\n"
        f"- `sample.csv`: {r.checked or CHECK_INPUTS} inputs to send over the UART, one a line\n"
        "- `pico-sdk/`: the same model as a Pico SDK project (`CMakeLists.txt`, `main.c` with\n"
        "  USB serial, the kernel in `edge_lsh/`; it uses `../model_data.c`): see below\n"
        "- `README.md`: this file\n\n"
        "A new Pico 2 takes the .uf2 as it is. One whose flash holds a partition table may\n"
        "ignore a dropped .uf2 (RP2350 erratum E10): load it with `picotool load -x\n"
        "firmware-rp2350.uf2`, or erase the flash first.\n\n"
        "## Wiring: UART0 on GPIO 0 and 1, 115200 baud, 8N1\n\n"
        "A 3.3 V USB-to-serial adapter (or a Raspberry Pi Debug Probe's UART):\n\n"
        "| Pico 2 | adapter |\n|---|---|\n"
        "| pin 1, GP0 (UART0 TX) | RX |\n"
        "| pin 2, GP1 (UART0 RX) | TX |\n"
        "| pin 3, GND | GND |\n\n"
        "Power the Pico 2 from USB as usual; never connect a 5 V adapter's TX to GP1.\n\n"
        "## What it does\n\n"
        "At boot the firmware sets up the crystal oscillator and UART0 (bare metal, no SDK),\n"
        "opens the model in flash, runs it on the embedded check inputs and prints `PASS` and\n"
        "`ALL PASS` if every logit equals the host's. Then it prints `# ready: ...` and answers\n"
        f"each line of {model.n_in} numbers (commas or spaces; an extra last column, a label,\n"
        "is ignored) with the class and the int32 logit of every class, as\n"
        "`edge-lsh-run --logits` does on a Pi. Lines starting with `#` and empty lines are\n"
        "skipped; anything else it prints starts with `# `; `quit` stops it (reset to restart).\n\n"
        "```sh\n"
        "picocom -b 115200 --echo /dev/ttyUSB0   # type or paste lines; or, from a script:\n"
        "stty -F /dev/ttyUSB0 115200 raw -echo && cat /dev/ttyUSB0 &\n"
        "cat sample.csv > /dev/ttyUSB0\n"
        "```\n\n"
        "The same program under QEMU (the `--check` run):\n\n"
        f"```sh\n{{ cat sample.csv; echo quit; }} | {qemu} firmware-qemu-an505.elf\n```\n\n"
        "## In your own firmware\n\n"
        "The calls the firmware makes (`native/firmware/fw_main.c` in edge-lsh), with the kernel\n"
        "(`pico-sdk/edge_lsh/src/*.c`, `pico-sdk/edge_lsh/include/edge_lsh.h`) and\n"
        "`model_data.c` in the build:\n\n"
        "```c\n"
        "static elsh_qnet net;\n"
        f"static uint8_t arena[{model.arena_bytes}] __attribute__((aligned(64)));\n"
        "size_t need;\n"
        "elsh_model_open(&net, model, model_bytes, &need);  /* the flash array, in place */\n"
        "elsh_model_attach(&net, arena, sizeof arena);       /* need <= sizeof arena */\n"
        f"float x[{model.n_in}];  /* one input */\n"
        f"int8_t xq[{model.n_in}];\n"
        "elsh_qnet_quantize_input(&net, x, xq);\n"
        "int cls = elsh_qnet_forward(&net, xq);\n"
        "const int32_t *logits = elsh_qnet_logits(&net);     /* n_classes of them */\n"
        "```\n\n"
        "Each call returns a negative `ELSH_*` status on failure (`elsh_status_str`).\n\n"
        "## With the Pico SDK instead\n\n"
        "`pico-sdk/` builds the same kernel and model with the Pico SDK, talking over USB\n"
        "serial (the Pico 2's own USB port, no adapter): the same self-test, `# ready` line and\n"
        "answers. edge-lsh writes it but cannot build it (no SDK where it is tested; its tests\n"
        "compile and link `main.c` and the kernel for the M33 against stand-in SDK headers):\n\n"
        "```sh\n"
        "export PICO_SDK_PATH=/path/to/pico-sdk\n"
        "cd pico-sdk && cmake -S . -B build && cmake --build build   # build/edge_lsh_pico2.uf2\n"
        "```\n\n"
        f"Notes: {target.notes}\n"
    )
