"""Only here for cffi's setuptools hook and one build step; all metadata lives in
pyproject.toml.

The build step copies the C sources `edge-lsh deploy` cross-compiles (the kernel, the runner and
the firmware of native/) into the package as edge_lsh/_csrc, so a regular (non-editable)
install can still build the runner and the firmware for a board.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DEPLOY_SOURCES = [
    "native/include",
    "native/src",
    "native/runner",
    "native/firmware",
]


class BuildPyWithSources(build_py):
    def run(self):
        super().run()
        dest = Path(self.build_lib) / "edge_lsh" / "_csrc"
        for rel in DEPLOY_SOURCES:
            src = ROOT / rel
            if not src.exists():
                continue  # an sdist without firmware files: deploy says what is missing
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True)
            else:
                shutil.copy2(src, target)


setup(cffi_modules=["edge_lsh/_build.py:ffibuilder"], cmdclass={"build_py": BuildPyWithSources})
