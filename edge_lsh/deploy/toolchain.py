"""What every deploy step needs from the machine: the C sources, a cross tool found on PATH
(or the apt-get line that installs it), and running a tool with its failure turned into a
DeployError that shows the tool's last lines of output."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from edge_lsh.deploy.targets import DeployTarget
from edge_lsh.errors import DeployError

__all__ = ["QEMU_TIMEOUT_S", "source_root", "need", "run"]

QEMU_TIMEOUT_S = 600


def source_root() -> Path:
    """The folder holding native/ (native/firmware for firmware targets)."""
    here = Path(__file__).resolve().parent.parent  # the edge_lsh package folder
    for root in (here / "_csrc", here.parent):
        if (root / "native" / "src").is_dir() and (root / "native" / "runner").is_dir():
            return root
    raise DeployError(
        "the C sources are not installed with this edge-lsh (no edge_lsh/_csrc and no source "
        "tree next to the package): install from the sdist or a checkout"
    )


def need(tool: str, target: DeployTarget, why: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pkgs = " ".join(target.packages)
        raise DeployError(
            f"--target {target.name} needs {tool} ({why}), which is not installed. "
            f"On Debian or Ubuntu: sudo apt-get install {pkgs}"
        )
    return path


def run(
    cmd: list[str], what: str, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise DeployError(f"{what} took over {timeout:.0f} s: {' '.join(cmd)}") from exc
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-15:]
        head = f"{what} failed (exit {res.returncode}): {' '.join(cmd)}\n"
        raise DeployError(head + "\n".join(tail))
    return res
