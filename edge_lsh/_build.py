"""cffi build script: compiles native/src/*.c into the extension ``edge_lsh._native``.

It declares the public headers (edge_lsh.h: status codes, PRNG, .elsh models;
edge_lsh_train.h: the float network; edge_lsh_slots.h: A/B flash slots) and
native/tests/cffi_stages.h, the few internal stages the Python tests call. API (out-of-line)
mode: the C compiler checks every declaration against the real header, so the binding cannot
drift from the kernel. Flags are portable on purpose: no -march=native, so a wheel or an sdist
built on one machine runs on any machine of its architecture.
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
NATIVE = ROOT / "native"
HEADERS = [
    NATIVE / "include" / "edge_lsh.h",
    NATIVE / "include" / "edge_lsh_train.h",
    NATIVE / "include" / "edge_lsh_slots.h",
    NATIVE / "include" / "edge_lsh_finetune.h",
    NATIVE / "tests" / "cffi_stages.h",
]


def cdef_from_header(text: str) -> str:
    """The header as cffi's parser accepts it: no comments, no C++ guards, and of the
    preprocessor lines only the integer #defines."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    keep = []
    in_cplusplus = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#ifdef __cplusplus"):
            in_cplusplus = True
        elif in_cplusplus:
            in_cplusplus = not stripped.startswith("#endif")
        elif stripped.startswith("#"):
            m = re.match(r"#define\s+(ELSH_\w+)\s+(0x[0-9A-Fa-f]+|\d+)u?\s*$", stripped)
            if m:
                keep.append(f"#define {m.group(1)} {m.group(2)}")
        else:
            keep.append(line)
    return "\n".join(keep)


# The binding's own clock for elsh_qnet_forward_stats (the kernel reads none): nanoseconds of
# CLOCK_MONOTONIC, passed to the kernel as a C function pointer so timing costs no Python call.
CLOCK_PRELUDE = """#if !defined(_POSIX_C_SOURCE) && !defined(_WIN32)
#define _POSIX_C_SOURCE 199309L
#endif
#include <time.h>
"""
CLOCK_FUNCTION = """
static uint64_t elsh_py_clock_ns(void *ctx)
{
    (void)ctx;
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#else
    return (uint64_t)clock() * (1000000000u / CLOCKS_PER_SEC);
#endif
}
"""

ffibuilder = FFI()
ffibuilder.cdef("\n".join(cdef_from_header(h.read_text()) for h in HEADERS))
ffibuilder.cdef("static uint64_t elsh_py_clock_ns(void *ctx);")
ffibuilder.set_source(
    "edge_lsh._native",
    CLOCK_PRELUDE + "".join(f'#include "{h.name}"\n' for h in HEADERS) + CLOCK_FUNCTION,
    sources=[str(p.relative_to(ROOT)) for p in sorted((NATIVE / "src").glob("*.c"))],
    include_dirs=[
        str((NATIVE / "include").relative_to(ROOT)),
        str((NATIVE / "src").relative_to(ROOT)),
        str((NATIVE / "tests").relative_to(ROOT)),
    ],
    # -fno-wrapv: Python's own CFLAGS carry -fwrapv, which cost the kernel 5-15 % in the
    # runner's build (tools/bench/TUNING.md); the kernel has no signed overflow (UBSan: make -C
    # native test-asan) and every other build of it goes without
    extra_compile_args=["-std=c99", "-O2", "-fno-wrapv", "-ffp-contract=off"],
    libraries=["m", "pthread"],  # pthread: training threads (train_threads_f32.c)
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
