"""``edge-lsh deploy``: the model and a kernel built for a board, in a folder ready to copy.

targets.py    the boards: compiler, flags, memory, QEMU command, Debian packages (one source of
              truth: firmware_tests/Makefile includes what `python targets.py --make` prints)
toolchain.py  the C sources, finding a cross tool, running it with a clear error
bundle.py     a Raspberry Pi bundle (static edge-lsh-run + model + README) and deploy()
firmware.py   Pico 2 (RP2350) firmware embedding the model: the board image (.elf, .uf2), the
              same program for QEMU (--check), a Pico SDK project; flash and RAM checked first
uf2.py        a firmware ELF's flash bytes as a UF2 file (standalone, like targets.py)

deploy("m.elsh", "pi4", "out/")                 # out/edge-lsh-run, model.elsh, README.md
deploy("m.elsh", "pi4", "out/", check=True)     # and run it under QEMU against the host
"""

from edge_lsh.deploy.bundle import CHECK_INPUTS, DeployResult, check_inputs, deploy
from edge_lsh.deploy.targets import TARGETS, DeployTarget
from edge_lsh.deploy.toolchain import source_root
from edge_lsh.errors import DeployError

__all__ = [
    "CHECK_INPUTS",
    "TARGETS",
    "DeployError",
    "DeployResult",
    "DeployTarget",
    "check_inputs",
    "deploy",
    "source_root",
]
