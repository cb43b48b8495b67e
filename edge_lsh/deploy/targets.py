"""Cross-compilation targets for `edge-lsh deploy` (issue 4): the one source of the boards'
compilers, flags, memory and QEMU commands.

Every entry is built and run bit-exact under QEMU by firmware_tests/, whose Makefile does not
repeat these flags: it includes build/targets.mk, generated from this file by

    python edge_lsh/deploy/targets.py --make      (no import of edge_lsh: this file alone)

(``make_variables``; ``MAKE_BUILDS`` names the Makefile build that checks each target). A Linux
target builds the standalone runner native/runner/edge_lsh_run.c with the kernel
native/src/*.c; the firmware target builds native/firmware (vector table, linker scripts, the
model embedded as a const array in flash).

Compile with ``COMMON_CFLAGS + target.cflags``, link with ``target.ldflags``; run the result under
QEMU as ``target.qemu + (binary, args...)``. ``packages`` are the Debian packages that provide
the compiler and the emulator (what to tell a user whose cross-compiler is missing).
``ram_bytes`` is the smallest RAM of the boards named; deploy checks the model against it (and,
for firmware, against ``flash``) before compiling anything.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

KiB = 1024
MiB = 1024 * KiB

#: flags every target gets (never -march=native: the binary runs on another machine)
COMMON_CFLAGS: tuple[str, ...] = ("-std=c99", "-ffp-contract=off", "-O2")

_AARCH64_PACKAGES = ("gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "qemu-user")
_ARMHF_PACKAGES = ("gcc-arm-linux-gnueabihf", "libc6-dev-armhf-cross", "qemu-user")
_ARMEL_PACKAGES = ("gcc-arm-linux-gnueabi", "libc6-dev-armel-cross", "qemu-user")
_M_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm")
#: RAM a Linux board keeps for the OS and its services (Raspberry Pi OS Lite uses about 100 MB)
_OS_RAM = 128 * MiB


@dataclass(frozen=True)
class MemoryMap:
    """A firmware image's memory: the FLASH and RAM regions of its linker script (in
    native/firmware; tests/test_firmware_targets.py checks the script says the same)."""

    linker_script: str
    flash_origin: int
    flash_bytes: int
    ram_origin: int
    ram_bytes: int


@dataclass(frozen=True)
class Firmware:
    """What a firmware target needs beyond the compiler: the board's memory map, the image
    --check runs under QEMU, the stack, and what the firmware itself takes of flash and RAM
    (an upper bound, measured: deploy checks model + these against the board before building)."""

    board: MemoryMap  # the real board's image
    qemu: MemoryMap  # the image --check runs (same flash and RAM limits)
    stack_bytes: int
    code_flash_bytes: int  # firmware code and constants without the model and check data
    static_ram_bytes: int  # .data + .bss without the arena and the input buffers
    uf2_family_id: int  # the UF2 family of the board's bootloader
    uf2_family: str


@dataclass(frozen=True)
class DeployTarget:
    name: str
    board: str
    kind: Literal["linux", "firmware"]
    cc: str  # the cross compiler
    cflags: tuple[str, ...]  # target flags, after COMMON_CFLAGS
    ldflags: tuple[str, ...]
    static: bool  # linked -static (copy one file, no libraries on the board)
    qemu: tuple[str, ...]  # emulator command prefix; the binary (or -kernel image) follows
    packages: tuple[str, ...]  # Debian packages for cc and qemu
    simd: str  # the SIMD the compiler may use for this target
    notes: str
    ram_bytes: int  # the smallest RAM of the boards named
    os_ram_bytes: int = 0  # Linux: RAM left to the OS and its services
    firmware: Firmware | None = None

    @property
    def tool_prefix(self) -> str:
        """aarch64-linux-gnu- for aarch64-linux-gnu-gcc: the binutils of the same toolchain."""
        return self.cc.removesuffix("gcc")


def _aarch64(
    name: str, board: str, cpu: str, simd: str, notes: str, ram_bytes: int
) -> DeployTarget:
    return DeployTarget(
        name=name,
        board=board,
        kind="linux",
        cc="aarch64-linux-gnu-gcc",
        cflags=(f"-mcpu={cpu}",),
        ldflags=("-static", "-lm"),
        static=True,
        qemu=("qemu-aarch64", "-cpu", cpu),
        packages=_AARCH64_PACKAGES,
        simd=simd,
        notes=notes,
        ram_bytes=ram_bytes,
        os_ram_bytes=_OS_RAM,
    )


TARGETS: dict[str, DeployTarget] = {
    "pi-zero": DeployTarget(
        name="pi-zero",
        board="Raspberry Pi Zero / Zero W / Pi 1 (ARM1176JZF-S, ARMv6KZ + VFPv2), 32-bit OS",
        kind="linux",
        cc="arm-linux-gnueabi-gcc",
        cflags=("-march=armv6zk", "-mfpu=vfp", "-mfloat-abi=softfp", "-marm"),
        ldflags=("-static", "-lm"),
        static=True,
        qemu=("qemu-arm", "-cpu", "arm1176"),
        packages=_ARMEL_PACKAGES,
        simd="none (VFPv2 scalar float)",
        notes=(
            "Debian's armhf libraries (crt1.o, libgcc, glibc) are ARMv7 Thumb-2 code, so an "
            "arm-linux-gnueabihf binary dies with SIGILL on an ARM1176 even when built with "
            "-march=armv6zk. Debian's armel port is ARMv5TE ARM code: a -static armel binary "
            "with -mfloat-abi=softfp (VFP instructions, arguments in core registers) runs on a "
            "Pi Zero under any Linux. firmware_tests also checks the hard-float ABI build "
            "(arm-none-eabi-gcc -mcpu=arm1176jzf-s -mfpu=vfp -mfloat-abi=hard, newlib over "
            "semihosting) under the same qemu-arm -cpu arm1176; that one is a test build only."
        ),
        ram_bytes=256 * MiB,  # the Pi 1 Model A/B; a Zero has 512 MB
        os_ram_bytes=_OS_RAM,
    ),
    "pi-zero2": _aarch64(
        "pi-zero2",
        "Raspberry Pi Zero 2 W (Cortex-A53), 64-bit OS",
        "cortex-a53",
        "NEON (Advanced SIMD), no sdot",
        "512 MB RAM. On a 32-bit OS use the armv7 target.",
        512 * MiB,
    ),
    "pi3": _aarch64(
        "pi3",
        "Raspberry Pi 3 (Cortex-A53), 64-bit OS",
        "cortex-a53",
        "NEON (Advanced SIMD), no sdot",
        "On a 32-bit OS use the armv7 target.",
        512 * MiB,  # the 3 Model A+; a 3 B / B+ has 1 GB
    ),
    "pi4": _aarch64(
        "pi4",
        "Raspberry Pi 4 / 400 (Cortex-A72), 64-bit OS",
        "cortex-a72",
        "NEON (Advanced SIMD), no sdot",
        "On a 32-bit OS use the armv7 target.",
        1 * 1024 * MiB,  # the 1 GB Pi 4
    ),
    "pi5": _aarch64(
        "pi5",
        "Raspberry Pi 5 (Cortex-A76), 64-bit OS",
        "cortex-a76",
        "NEON with the Armv8.2 dot product (sdot)",
        "The only Pi core with sdot; a cortex-a76 binary is not for the A53/A72 boards.",
        1 * 1024 * MiB,  # the 1 GB Pi 5
    ),
    "armv7": DeployTarget(
        name="armv7",
        board="Raspberry Pi 2 / 3 / 4 / Zero 2 on 32-bit Raspberry Pi OS (armhf)",
        kind="linux",
        cc="arm-linux-gnueabihf-gcc",
        cflags=("-march=armv7-a", "-mfpu=neon-vfpv4", "-mfloat-abi=hard"),
        ldflags=("-static", "-lm"),
        static=True,
        qemu=("qemu-arm", "-cpu", "cortex-a7"),
        packages=_ARMHF_PACKAGES,
        simd="NEON (VFPv4)",
        notes="Checked under -cpu cortex-a7 (the Pi 2's core); qemu-arm has no 32-bit Cortex-A53.",
        ram_bytes=512 * MiB,  # the Zero 2 W and the Pi 3 A+
        os_ram_bytes=_OS_RAM,
    ),
    "pico2": DeployTarget(
        name="pico2",
        board="Raspberry Pi Pico 2 (RP2350, Cortex-M33 with single-precision FPU)",
        kind="firmware",
        cc="arm-none-eabi-gcc",
        cflags=(
            "-mcpu=cortex-m33",
            "-mthumb",
            "-mfpu=fpv5-sp-d16",
            "-mfloat-abi=hard",
            "-ffunction-sections",
            "-fdata-sections",
        ),
        ldflags=("-nostartfiles", "-Wl,--gc-sections", "-lm"),
        static=True,
        qemu=(
            "qemu-system-arm",
            "-M",
            "mps2-an505",
            "-nographic",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ),
        packages=_M_PACKAGES,
        simd="none (DSP extension available, not used)",
        notes=(
            "520 KB SRAM, 4 MB flash. The model is a 16-byte aligned const array in flash, "
            "executed in place; the arena is static; no malloc. The board image "
            "(native/firmware/rp2350.ld: flash at 0x10000000, SRAM at 0x20000000) starts with the "
            "RP2350 IMAGE_DEF block and talks over UART0 (GPIO 0/1). The QEMU check runs the "
            "same objects linked for the mps2-an505 board (native/firmware/mps2_an505.ld: code "
            "at 0x10000000, RAM at 0x38000000 limited to the same 520 KB), output by "
            "semihosting and by the board's UART."
        ),
        ram_bytes=520 * KiB,
        firmware=Firmware(
            board=MemoryMap("rp2350.ld", 0x10000000, 4 * MiB, 0x20000000, 520 * KiB),
            qemu=MemoryMap("mps2_an505.ld", 0x10000000, 4 * MiB, 0x38000000, 520 * KiB),
            stack_bytes=16 * KiB,
            code_flash_bytes=32 * KiB,
            static_ram_bytes=4 * KiB,
            uf2_family_id=0xE48BFF59,
            uf2_family="RP2350-ARM-S",
        ),
    ),
}


#: the firmware_tests/Makefile build that checks each deploy target (its CC_, CFLAGS_, ...
#: variables come from make_variables); pi-zero2 is the same build as pi3 (one Cortex-A53)
MAKE_BUILDS: dict[str, str] = {
    "aarch64-a53": "pi3",
    "aarch64-a72": "pi4",
    "aarch64-a76": "pi5",
    "armv7": "armv7",
    "armv6-linux": "pi-zero",
    "m33": "pico2",
}


def make_variables() -> str:
    """firmware_tests/build/targets.mk: the Make variables of every MAKE_BUILDS build."""
    me = "edge_lsh/deploy/targets.py"
    lines = [
        f"# generated from {me} by: python {me} --make",
        "# do not edit: firmware_tests/Makefile regenerates it when targets.py changes",
        f"COMMON_CFLAGS := {' '.join(COMMON_CFLAGS)}",
        f"MAKE_BUILDS := {' '.join(MAKE_BUILDS)}",
    ]
    for build, name in MAKE_BUILDS.items():
        t = TARGETS[name]
        lines += [
            "",
            f"# {build}: deploy --target {name} ({t.board})",
            f"TARGET_{build} := {name}",
            f"CC_{build} := {t.cc}",
            f"AR_{build} := {t.tool_prefix}ar",
            f"CFLAGS_{build} := {' '.join(t.cflags)}",
            f"LDFLAGS_{build} := {' '.join(t.ldflags)}",
            f"RUN_{build} := {' '.join(t.qemu)}",
        ]
        if t.firmware is not None:
            fw = t.firmware
            lines += [
                f"LDS_{build} := {fw.qemu.linker_script}",
                f"LDS_BOARD_{build} := {fw.board.linker_script}",
                f"FLASH_BOARD_{build} := 0x{fw.board.flash_origin:08x}:{fw.board.flash_bytes}",
                f"STACK_BYTES_{build} := {fw.stack_bytes}",
                f"UF2_FAMILY_{build} := 0x{fw.uf2_family_id:08x}",
            ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv != ["--make"]:
        print("usage: python edge_lsh/deploy/targets.py --make   (Make variables on stdout)")
        return 2
    sys.stdout.write(make_variables())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
