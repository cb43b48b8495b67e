"""Cross-compilation targets for `edge-lsh deploy` (issue 4): data only, no logic.

Every entry was built and run bit-exact under QEMU by firmware_tests/ (its Makefile holds the
same flags; firmware_tests/README.md has the results). A Linux target builds the standalone
runner native/runner/edge_lsh_run.c with the kernel native/src/*.c; the firmware target builds
firmware_tests/fw (vector table, linker script, the model embedded as a const array in flash).

Compile with ``COMMON_CFLAGS + target.cflags``, link with ``target.ldflags``; run the result under
QEMU as ``target.qemu + (binary, args...)``. ``packages`` are the Debian packages that provide
the compiler and the emulator (what to tell a user whose cross-compiler is missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: flags every target gets (never -march=native: the binary runs on another machine)
COMMON_CFLAGS: tuple[str, ...] = ("-std=c99", "-ffp-contract=off", "-O2")

_AARCH64_PACKAGES = ("gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "qemu-user")
_ARMHF_PACKAGES = ("gcc-arm-linux-gnueabihf", "libc6-dev-armhf-cross", "qemu-user")
_ARMEL_PACKAGES = ("gcc-arm-linux-gnueabi", "libc6-dev-armel-cross", "qemu-user")
_M_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm")


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


def _aarch64(name: str, board: str, cpu: str, simd: str, notes: str) -> DeployTarget:
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
    ),
    "pi-zero2": _aarch64(
        "pi-zero2",
        "Raspberry Pi Zero 2 W (Cortex-A53), 64-bit OS",
        "cortex-a53",
        "NEON (Advanced SIMD), no sdot",
        "512 MB RAM. On a 32-bit OS use the armv7 target.",
    ),
    "pi3": _aarch64(
        "pi3",
        "Raspberry Pi 3 (Cortex-A53), 64-bit OS",
        "cortex-a53",
        "NEON (Advanced SIMD), no sdot",
        "On a 32-bit OS use the armv7 target.",
    ),
    "pi4": _aarch64(
        "pi4",
        "Raspberry Pi 4 / 400 (Cortex-A72), 64-bit OS",
        "cortex-a72",
        "NEON (Advanced SIMD), no sdot",
        "On a 32-bit OS use the armv7 target.",
    ),
    "pi5": _aarch64(
        "pi5",
        "Raspberry Pi 5 (Cortex-A76), 64-bit OS",
        "cortex-a76",
        "NEON with the Armv8.2 dot product (sdot)",
        "The only Pi core with sdot; a cortex-a76 binary is not for the A53/A72 boards.",
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
            "executed in place; the arena is static; no malloc. The QEMU check uses the "
            "mps2-an505 memory map (firmware_tests/fw/mps2_an505.ld: code at 0x10000000, RAM "
            "at 0x38000000 limited to 520 KB); a real RP2350 image needs its own linker script "
            "(flash 0x10000000, SRAM 0x20000000), the RP2350 boot block and an output other "
            "than semihosting (UART or USB, e.g. from the Pico SDK)."
        ),
    ),
}
