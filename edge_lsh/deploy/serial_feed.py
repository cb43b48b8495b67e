"""Run a QEMU board and type into its UART only once the firmware says it listens.

QEMU's CMSDK APB UART (mps2-an505) accepts and *discards* every byte that arrives while the
guest has not yet enabled its receiver ("if RX is disabled then we accept any character and
throw it away", hw/char/cmsdk-apb-uart.c). Handing QEMU the whole input on stdin at start-up
therefore races the firmware's UART set-up, and now and then the first line was lost. The
firmware prints ``# ready`` after its receiver is on, so this waits for that line on the
board's output and only then writes the input.

    python -m edge_lsh.deploy.serial_feed [--marker '# ready'] [--timeout S] -- CMD ... < in > log

runs CMD with the same contract as ``CMD < in > log 2>&1`` (stdout and stderr merged, the exit
status passed on; 124 on timeout, as timeout(1)).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DEFAULT_MARKER", "run_after_marker"]

DEFAULT_MARKER = "# ready"


def run_after_marker(
    cmd: Sequence[str],
    feed: str,
    timeout: float,
    *,
    marker: str = DEFAULT_MARKER,
    cwd: str | Path | None = None,
) -> tuple[int, str]:
    """Start ``cmd``, wait until a line of its merged stdout/stderr starts with ``marker``,
    then write ``feed`` to its stdin and close it. Returns (exit status, output). If the
    program exits before the marker, the feed is not written. Raises
    subprocess.TimeoutExpired (after killing it) if it runs past ``timeout`` seconds."""
    proc = subprocess.Popen(
        list(cmd),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
    )
    assert proc.stdin is not None and proc.stdout is not None
    chunks: list[bytes] = []
    seen = threading.Event()
    want = marker.encode()

    def read() -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            chunks.append(line)
            if line.startswith(want):
                seen.set()
        seen.set()  # end of output: nothing more to wait for

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        if seen.wait(timeout) and proc.poll() is None:
            try:
                proc.stdin.write(feed.encode())
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass  # it exited meanwhile: its status and output say why
        rc = proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        reader.join(5)
        raise subprocess.TimeoutExpired(list(cmd), timeout, b"".join(chunks)) from None
    reader.join(5)
    return rc, b"".join(chunks).decode(errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m edge_lsh.deploy.serial_feed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--marker", default=DEFAULT_MARKER, help="default %(default)r")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds (default %(default)s)")
    p.add_argument("cmd", nargs="+", help="the program and its arguments (after --)")
    args = p.parse_args(argv)
    if args.timeout <= 0:
        p.error(f"--timeout {args.timeout}: must be > 0")
    try:
        rc, out = run_after_marker(args.cmd, sys.stdin.read(), args.timeout, marker=args.marker)
    except subprocess.TimeoutExpired as exc:
        sys.stdout.write((exc.output or b"").decode(errors="replace"))
        print(f"serial_feed: timed out after {args.timeout:g} s", file=sys.stderr)
        return 124
    except OSError as exc:
        print(f"serial_feed: cannot run {args.cmd[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    sys.stdout.write(out)
    return rc


if __name__ == "__main__":
    sys.exit(main())
