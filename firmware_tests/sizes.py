"""Size report of the firmware_tests builds, and the largest model that fits a Pico 2 / a Pico.

    python firmware_tests/sizes.py [--build firmware_tests/build] [--no-fit] [--markdown]
    (or: make -C firmware_tests sizes)

1. Cortex-M firmware (build/m33/fw.elf, build/m0plus/fw.elf), from the linker map and the
   symbol table: flash = .text + .rodata + .data's initial values, split into the kernel
   (libedge_lsh.a), the C library and libgcc, the test harness, and the embedded models and
   expected outputs; RAM = .data + .bss (the static arena and the elsh_qnet struct are there) +
   the stack reserve, with the stack high-water mark the M33 run measured.
2. Linux targets: the kernel archive's text/data/bss and the static edge-lsh-run binary.
3. Largest model: the firmware's fixed cost (everything but the embedded test models and their
   expected outputs, and the arena) is taken from the M33 / M0+ images; the model goes to flash
   (the .elsh file, executed in place) and its arena to RAM (as elsh_model_open reports it,
   through build/host/arena_need). For n_in-H-10 networks with edge_lsh.defaults.LSH (int8,
   hash functions from the seed), the largest hidden width H that fits, found by bisection on
   real .elsh files (untrained weights: the sizes do not depend on the values, except stored
   tables, whose member count can move a little with training). "tables in RAM": the file omits
   TABLES and the reader builds them in the arena; "tables in flash": TABLES stored in the file.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

KB = 1024
BOARDS = {  # name: (firmware build, flash bytes, SRAM bytes)
    "Pico 2 (RP2350, M33)": ("m33", 4 * KB * KB, 520 * KB),
    "Pico (RP2040, M0+)": ("m0plus", 2 * KB * KB, 264 * KB),
}
LINUX = {  # name: size tool
    "host": "size",
    "aarch64-a53": "aarch64-linux-gnu-size",
    "aarch64-a72": "aarch64-linux-gnu-size",
    "aarch64-a76": "aarch64-linux-gnu-size",
    "armv7": "arm-linux-gnueabihf-size",
    "armv6": "arm-none-eabi-size",
    "armv6-linux": "arm-linux-gnueabi-size",
}
SHAPES = [(64, 10, "digits 64-H-10"), (784, 10, "MNIST 784-H-10")]
MAX_WIDTH = 65535  # ELSH_MAX_WIDTH


def run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


# ---------------------------------------------------------------- firmware images


@dataclass
class Firmware:
    target: str
    sections: dict[str, int]
    by_source: dict[str, int]  # flash bytes (text + rodata + data) by where they come from
    arena: int
    net_struct: int
    test_models: int  # embedded .elsh arrays
    test_expect: int  # embedded inputs / logits / predictions
    stack_reserve: int
    stack_used: int | None

    @property
    def flash(self) -> int:
        s = self.sections
        return s.get(".text", 0) + s.get(".rodata", 0) + s.get(".data", 0) + s.get(".ARM.exidx", 0)

    @property
    def ram(self) -> int:
        s = self.sections
        return s.get(".data", 0) + s.get(".bss", 0) + s.get(".stack", 0)

    @property
    def flash_fixed(self) -> int:
        """Flash without the test models and their expected outputs."""
        return self.flash - self.test_models - self.test_expect

    @property
    def ram_fixed(self) -> int:
        """RAM without the arena (its size follows the model)."""
        return self.ram - self.arena


def source_of(path: str) -> str:
    if "libedge_lsh.a" in path:
        return "kernel"
    if "fw_models.o" in path:
        return "test models + expected outputs"
    if "/fw/" in path:
        return "harness (startup, semihosting, checks)"
    return "libc + libgcc"


def map_sizes(map_path: Path) -> dict[str, int]:
    """Bytes of .text/.rodata/.data input sections per origin, from a GNU ld map file."""
    text = map_path.read_text()
    text = text[text.index("Linker script and memory map") :]
    out: dict[str, int] = {}
    pending = None
    for line in text.splitlines():
        m = re.match(
            r"^ (\.(?:text|rodata|data)\S*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line
        )
        if not m and pending:
            m2 = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
            if m2:
                m = (pending, m2.group(1), m2.group(2), m2.group(3))  # type: ignore[assignment]
        pending = None
        if m is None:
            m1 = re.match(r"^ (\.(?:text|rodata|data)\S*)$", line)
            pending = m1.group(1) if m1 else None
            continue
        groups = m if isinstance(m, tuple) else m.groups()
        _, addr, size, src = groups
        if int(addr, 16) == 0 or int(size, 16) == 0:
            continue
        key = source_of(src)
        out[key] = out.get(key, 0) + int(size, 16)
    return out


def firmware(build: Path, target: str) -> Firmware | None:
    elf = build / target / "fw.elf"
    if not elf.exists():
        return None
    sections = {}
    for line in run(["arm-none-eabi-size", "-A", str(elf)]).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    arena = net = models = expect = 0
    for line in run(["arm-none-eabi-nm", "-S", str(elf)]).splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        size, name = int(parts[1], 16), parts[3]
        if name == "arena":
            arena = size
        elif name == "net":
            net = size
        elif name.endswith("_elsh"):
            models += size
        elif re.search(r"_(inputs|logits|preds)$", name) or name == "fw_models":
            expect += size
    used = None
    # the M33 run, or the M0+ objects' run on mps2-an385's Cortex-M3
    log = build / target / "run.log"
    if not log.exists():
        log = build / target / "an385" / "run.log"
    if log.exists():
        m = re.search(r"stack high-water (\d+)", log.read_text())
        used = int(m.group(1)) if m else None
    return Firmware(
        target,
        sections,
        map_sizes(build / target / "fw.map"),
        arena,
        net,
        models,
        expect,
        sections.get(".stack", 0),
        used,
    )


# ---------------------------------------------------------------- Linux targets


def berkeley(tool: str, path: Path) -> tuple[int, int, int]:
    """Summed text, data, bss of a binary or of every member of an archive."""
    t = d = b = 0
    for line in run([tool, str(path)]).splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and all(p.isdigit() for p in parts[:3]):
            t, d, b = t + int(parts[0]), d + int(parts[1]), b + int(parts[2])
    return t, d, b


# ---------------------------------------------------------------- largest model


class ModelSizer:
    def __init__(self, build: Path) -> None:
        try:  # edge_lsh as installed, else this source tree (with its built _native)
            import edge_lsh.native  # noqa: F401
        except ImportError:
            sys.path.insert(0, str(ROOT))
        self.tool = build / "host" / "arena_need"
        self.tmp = Path(tempfile.mkdtemp(prefix="elsh-sizes-"))
        self.cache: dict[tuple[int, int, int, bool], tuple[int, int]] = {}

    def measure(self, n_in: int, n_classes: int, width: int, tables: bool) -> tuple[int, int]:
        """(file bytes, arena bytes) of an n_in-width-n_classes int8 model."""
        key = (n_in, n_classes, width, tables)
        if key not in self.cache:
            import numpy as np

            from edge_lsh import defaults
            from edge_lsh.format import elsh_bytes
            from edge_lsh.network import Network
            from edge_lsh.quantize import quantize

            net = Network(n_in, [width], n_classes, defaults.LSH, seed=1)
            calib = np.random.default_rng(0).uniform(0.0, 16.0, (64, n_in)).astype(np.float32)
            qm = quantize(net, calib)
            path = self.tmp / "m.elsh"
            path.write_bytes(elsh_bytes(qm, tables=tables))
            arena = int(run([str(self.tool), str(path)]).strip())
            self.cache[key] = (path.stat().st_size, arena)
        return self.cache[key]

    def largest(
        self,
        n_in: int,
        n_classes: int,
        tables: bool,
        flash_free: int,
        ram_free: int,
        lo: int = 0,
        hi: int = MAX_WIDTH + 1,
    ) -> tuple[int, int, int, str]:
        """Largest width that fits (bisection; both sizes grow with the width), its file and
        arena bytes, and which budget binds at width + 1. The search assumes width lo fits and
        width hi does not (0 and MAX_WIDTH + 1 unless told: a narrower bracket is quicker)."""

        def fits(w: int) -> bool:
            f, a = self.measure(n_in, n_classes, w, tables)
            return f <= flash_free and a <= ram_free

        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid
        if lo == 0:
            return 0, 0, 0, "nothing fits"
        f, a = self.measure(n_in, n_classes, lo, tables)
        if lo == MAX_WIDTH:
            return lo, f, a, "ELSH_MAX_WIDTH"
        f1, a1 = self.measure(n_in, n_classes, lo + 1, tables)
        binds = "flash" if f1 > flash_free else "RAM"
        return lo, f, a, binds


# ---------------------------------------------------------------- report


def kb(n: int) -> str:
    return f"{n / KB:.1f} KB"


def table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, default=HERE / "build")
    ap.add_argument("--no-fit", action="store_true", help="skip the largest-model search")
    ap.add_argument(
        "--largest-out",
        type=Path,
        default=None,
        help="write the largest H of a Pico 2 digits 64-H-10 model (tables in RAM) here",
    )
    args = ap.parse_args(argv)
    build = args.build.resolve()

    fws = {t: firmware(build, t) for t in ("m33", "m0plus")}
    print("## Cortex-M firmware images (golden models + the 64-1000-10 model embedded)\n")
    rows = []
    for t, fw in fws.items():
        if fw is None:
            print(f"(no {t} image: run make -C firmware_tests all)")
            continue
        src = fw.by_source
        rows.append(
            [
                t,
                kb(fw.flash),
                kb(src.get("kernel", 0)),
                kb(src.get("libc + libgcc", 0)),
                kb(src.get("harness (startup, semihosting, checks)", 0)),
                kb(fw.test_models) + " + " + kb(fw.test_expect),
                kb(fw.ram),
                kb(fw.sections.get(".data", 0)),
                kb(fw.sections.get(".bss", 0) - fw.arena),
                kb(fw.arena),
                kb(fw.stack_reserve) + (f" ({fw.stack_used} B used)" if fw.stack_used else ""),
            ]
        )
    print(
        table(
            rows,
            [
                "target",
                "flash total",
                "kernel",
                "libc+libgcc",
                "harness",
                "test models + expected",
                "RAM total",
                ".data",
                ".bss w/o arena",
                "arena",
                "stack reserve",
            ],
        )
    )
    print(
        "\nflash = .text + .rodata + .data init; RAM = .data + .bss + stack; the arena (in .bss) "
        "is the largest any embedded model needs (wide1000, its tables built in RAM).\n"
    )

    print("## Linux targets\n")
    rows = []
    for t, tool in LINUX.items():
        lib, runner = build / t / "libedge_lsh.a", build / t / "edge-lsh-run"
        if not lib.exists() or not runner.exists():
            continue
        lt, ld, lb = berkeley(tool, lib)
        rt, rd, rb = berkeley(tool, runner)
        rows.append([t, f"{lt} / {ld} / {lb}", f"{rt} / {rd} / {rb}", kb(runner.stat().st_size)])
    print(
        table(
            rows,
            [
                "target",
                "libedge_lsh.a text/data/bss",
                "edge-lsh-run (static) text/data/bss",
                "file",
            ],
        )
    )
    print(
        "\n(the kernel archive holds training too; armv6 is newlib + semihosting, the others "
        "glibc -static, so the runners' sizes are mostly the C library)\n"
    )

    if args.no_fit:
        return 0
    sizer = ModelSizer(build)
    print(
        "## Largest n_in-H-10 model (edge_lsh.defaults.LSH: ternary K=3 L=100, 5% active, int8)\n"
    )
    rows = []
    for board, (t, flash, sram) in BOARDS.items():
        fw = fws.get(t)
        if fw is None:
            continue
        flash_free = flash - fw.flash_fixed
        ram_free = sram - fw.ram_fixed
        for n_in, n_classes, shape in SHAPES:
            for tables in (False, True):
                w, f, a, binds = sizer.largest(n_in, n_classes, tables, flash_free, ram_free)
                if args.largest_out and t == "m33" and n_in == 64 and not tables:
                    args.largest_out.parent.mkdir(parents=True, exist_ok=True)
                    args.largest_out.write_text(f"{w}\n")
                rows.append(
                    [
                        board,
                        shape,
                        "flash" if tables else "RAM",
                        str(w),
                        kb(fw.flash_fixed + f) + f" of {kb(flash)}",
                        kb(fw.ram_fixed + a) + f" of {kb(sram)}",
                        binds,
                    ]
                )
    print(
        table(
            rows, ["board", "network", "tables in", "largest H", "flash used", "RAM used", "limit"]
        )
    )
    print(
        "\nflash used = firmware without its test data "
        + ", ".join(f"({t}: {kb(fw.flash_fixed)})" for t, fw in fws.items() if fw)
        + " + the .elsh file; RAM used = .data + .bss without the arena + the stack reserve "
        + ", ".join(f"({t}: {kb(fw.ram_fixed)})" for t, fw in fws.items() if fw)
        + " + the model's arena."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
