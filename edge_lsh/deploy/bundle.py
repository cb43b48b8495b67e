"""``edge-lsh deploy``: cross-compile the standalone runner (or, for a Pico 2, a firmware image
that embeds the model) for a Raspberry Pi target and write a folder ready to copy to the board.

    deploy("m.elsh", "pi4", "out/")                 # out/edge-lsh-run, model.elsh, README.md
    deploy("m.elsh", "pi4", "out/", check=True)     # and run it under QEMU against the host

The targets, compilers and flags are the ones firmware_tests/ verifies bit-exact under QEMU
(edge_lsh/deploy/targets.py). The C sources come from the source tree (an editable install or
a checkout) or from the copy a regular install carries in ``edge_lsh/_csrc``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
    binary_bytes: int = 0


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
    cmd += [*sources, str(native / "runner" / "edge_lsh_run.c"), "-o", str(out), *target.ldflags]
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
) -> DeployResult:
    """Build for target_name and write out_dir (see the module docstring)."""
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
    root = toolchain.source_root()
    x = check_inputs(model, CHECK_INPUTS)
    pred, logits = model.predict_logits(x)
    args = (blob, model, model_path.name, target, root, out, x, pred, logits, check, say)
    try:
        return _deploy_into(*args)
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
) -> DeployResult:
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp_s:
        tmp = Path(tmp_s)
        result = DeployResult(target=target.name, out_dir=out)
        if target.kind == "linux":
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

            names = build_firmware(blob, model, target, root, tmp, x, pred, logits, check, say)
            result.binary_bytes = (tmp / names[0]).stat().st_size
            if check:
                result.checked = len(pred)
        (tmp / "README.md").write_text(_readme(target, model, model_name, result))
        # Every file is complete in tmp; none of the names may be a folder in out (that would
        # fail halfway through the renames below), so check them all before the first one.
        blocked = [n for n in names if (out / n).is_dir()]
        if blocked:
            raise DeployError(
                f"{out}: {', '.join(blocked)} is a folder; remove it or pick a new --out"
            )
        out.mkdir(exist_ok=True)
        for name in names:  # each rename is atomic: a file is the old one or the new one
            os.replace(tmp / name, out / name)
        result.files = [out / n for n in names]
    return result


def _readme(target: DeployTarget, model: FixedPointModel, model_name: str, r: DeployResult) -> str:
    checked = (
        f"Checked before shipping: {r.checked} inputs gave the host's predictions and logits bit "
        f"for bit under `{' '.join(target.qemu)}`.\n"
        if r.checked
        else "Not checked under QEMU (run `edge-lsh deploy ... --check` for that).\n"
    )
    head = (
        f"# edge-lsh for {target.name}: {target.board}\n\n"
        f"Model: `{model_name}` ({model.model_bytes:,} bytes, {model.n_in} inputs, "
        f"{model.n_classes} classes). SIMD: {target.simd}.\n\n{checked}\n"
    )
    if target.kind == "linux":
        return head + (
            "## Copy and run\n\n"
            "```sh\n"
            "scp -r THIS_FOLDER pi@raspberrypi.local:edge-lsh     # any copy will do\n"
            "ssh pi@raspberrypi.local\n"
            "cd edge-lsh\n"
            "./edge-lsh-run model.elsh sample.csv          # a class per line, then a summary\n"
            "./edge-lsh-run model.elsh mine.csv --logits   # n_in floats a row, label optional\n"
            "./edge-lsh-run model.elsh x.npy --repeat 100 --quiet   # latency on the board\n"
            "```\n\n"
            "`edge-lsh-run` is statically linked: no libraries or Python are needed on the board. "
            "`--help` lists its options. The model is read once and used in place.\n\n"
            f"Notes: {target.notes}\n"
        )
    return head + (
        "## What is here\n\n"
        "- `firmware.elf`: the firmware image with the model embedded in flash (executed in\n"
        "  place, static arena, no malloc), built for the QEMU `mps2-an505` Cortex-M33 board;\n"
        "- `model_data.c`: the model as a 16-byte aligned const array, to build into your own\n"
        "  firmware (for example with the Pico SDK) next to `native/src/*.c`.\n\n"
        "Run it the way the check does:\n\n"
        f"```sh\n{' '.join(target.qemu)} firmware.elf\n```\n\n"
        f"Notes: {target.notes}\n"
    )
