"""serial_feed: the UART input reaches the firmware only after it says `# ready` (QEMU's
CMSDK UART drops bytes that arrive before the guest enables its receiver)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge_lsh.deploy import serial_feed

# A stand-in for the board: it reports whether any input was waiting before it printed the
# marker, then echoes what it reads until `quit`.
BOARD = r"""
import select, sys, time
time.sleep(0.3)
early = bool(select.select([sys.stdin], [], [], 0.2)[0])
print("booting"); print("# ready", flush=True)
for line in sys.stdin:
    print("got", line.strip(), "early" if early else "late", flush=True)
    if line.strip() == "quit":
        sys.exit(3)
"""


def test_input_is_typed_only_after_the_marker() -> None:
    rc, out = serial_feed.run_after_marker([sys.executable, "-c", BOARD], "a\nquit\n", timeout=30)
    assert rc == 3
    assert out.splitlines() == ["booting", "# ready", "got a late", "got quit late"]


def test_without_the_marker_nothing_is_typed_and_nothing_hangs() -> None:
    rc, out = serial_feed.run_after_marker(
        [sys.executable, "-c", "import sys; print('crashed'); sys.exit(5)"], "a\n", timeout=30
    )
    assert (rc, out.strip()) == (5, "crashed")


def test_timeout_kills_it() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        serial_feed.run_after_marker([sys.executable, "-c", "import time; time.sleep(30)"], "", 1)


def test_command_line_passes_status_and_output() -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_lsh.deploy.serial_feed",
            "--timeout",
            "30",
            "--",
            sys.executable,
            "-c",
            BOARD,
        ],
        input="quit\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 3
    assert res.stdout.splitlines()[-1] == "got quit late"
    res = subprocess.run(
        [sys.executable, "-m", "edge_lsh.deploy.serial_feed", "--timeout", "0", "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and "--timeout" in res.stderr
