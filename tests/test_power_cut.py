"""Saves that die (issue 10): kill -9 at random moments of a process that saves a model over
an existing one again and again, with the runner's C writer (native/runner/atomic_file.c,
through tests/power_cut/atomic_save_driver.c, built here) and with Python's
edge_lsh.fileio.atomic_write. After every kill the file is one of the two models whole (the
C reader opens it, CRC and all), never a part. The temporary files killed saves leave behind
are removed by the next save once they are a minute old. The C writer's order (fsync file,
rename, fsync folder) and its error paths are checked through a link-time shim.

Flash power cuts (A/B slots): native/tests/test_slots.c."""

from __future__ import annotations

import os
import random
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_lsh.fixed import FixedPointModel

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "native" / "runner"
HERE = ROOT / "tests" / "power_cut"
WARN = "-std=c99 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wconversion".split()
WARN.append("-Wno-sign-conversion")
SANITIZE = "-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all".split()
SHIM = ["-Wl,--wrap=write,--wrap=fsync,--wrap=rename", str(HERE / "fault_shim.c")]
GOLDEN = sorted((ROOT / "export" / "golden").glob("*.elsh"), key=lambda p: -p.stat().st_size)

KILLS_C = 200
KILLS_PYTHON = 150
KILL_WINDOW = 0.06  # seconds: a kill lands uniformly within this after the saver starts


def build(out: Path, extra: list[str]) -> Path:
    cc = os.environ.get("CC", "cc")
    sources = [str(RUNNER / "atomic_file.c"), str(HERE / "atomic_save_driver.c")]
    cmd = [cc, *WARN, f"-I{RUNNER}", *sources, *extra, "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("driver") / "atomic_save_driver", ["-O2"])


@pytest.fixture(scope="module")
def shim_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The driver under ASan + UBSan, with write, fsync and rename logged and failable."""
    return build(tmp_path_factory.mktemp("shim") / "atomic_save_driver", [*SANITIZE, *SHIM])


@pytest.fixture(scope="module")
def models() -> tuple[bytes, bytes]:
    """The two largest golden models: both open."""
    a, b = GOLDEN[0].read_bytes(), GOLDEN[1].read_bytes()
    assert a != b
    FixedPointModel(a)
    FixedPointModel(b)
    return a, b


def temporaries(target: Path) -> list[Path]:
    pattern = re.compile(re.escape(f".{target.name}.") + r"[a-z0-9_]{8}\.tmp")
    return [p for p in target.parent.iterdir() if pattern.fullmatch(p.name)]


def age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def check_whole(target: Path, models: tuple[bytes, bytes], counts: dict[str, int]) -> None:
    data = target.read_bytes()
    assert data in models, f"{len(data)} bytes: neither model whole"
    FixedPointModel.load(target)  # the C reader accepts it: header, sections, CRC
    counts["a" if data == models[0] else "b"] += 1


def finish(target: Path, kills: int, counts: dict[str, int], save_once) -> int:
    """After the kills: the temporaries left (at most one per kill), then aged past a minute,
    one more save removes them all. Returns how many there were."""
    left = temporaries(target)
    assert len(left) <= kills
    for p in left:
        age(p, 120)
    save_once()
    assert temporaries(target) == []
    assert sorted(p.name for p in target.parent.iterdir()) == sorted(["m.elsh", "a", "b"])
    return len(left)


def report(who: str, kills: int, seconds: float, counts: dict[str, int], left: int) -> None:
    print(
        f"\n{who}: {kills} kill -9 in {seconds:.1f} s; after each the file was one model whole "
        f"(A {counts['a']} times, B {counts['b']} times), never partial; {left} kills left a "
        "temporary file (killed mid-save), all removed by the next save once a minute old"
    )


def test_kill_9_during_c_saves(tmp_path: Path, driver: Path, models: tuple[bytes, bytes]) -> None:
    (tmp_path / "a").write_bytes(models[0])
    (tmp_path / "b").write_bytes(models[1])
    target = tmp_path / "m.elsh"
    target.write_bytes(models[0])
    rng = random.Random(10)
    counts = {"a": 0, "b": 0}
    t0 = time.monotonic()
    for _ in range(KILLS_C):
        # saves B, A, B, ...: the file is B once a first save has completed
        p = subprocess.Popen([driver, "loop", target, tmp_path / "b", tmp_path / "a"])
        time.sleep(rng.uniform(0.0, KILL_WINDOW))
        p.send_signal(signal.SIGKILL)
        assert p.wait() == -signal.SIGKILL
        check_whole(target, models, counts)

    def save_once() -> None:
        subprocess.run([driver, "once", target, tmp_path / "b"], check=True)

    left = finish(target, KILLS_C, counts, save_once)
    assert target.read_bytes() == models[1]
    report("C atomic writer", KILLS_C, time.monotonic() - t0, counts, left)
    assert counts["b"] > 0  # saves did complete between kills
    assert left > 0  # and kills did land in the middle of saves


ZYGOTE = """
import os, sys
from edge_lsh.fileio import atomic_write
target, a, b = sys.argv[1:4]
data = [open(b, "rb").read(), open(a, "rb").read()]  # B first
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        i = 0
        while True:
            with atomic_write(target) as f:
                d = data[i % 2]
                for k in range(0, len(d), 4096):
                    f.write(d[k : k + 4096])
            i += 1
    print(pid, flush=True)
    os.waitpid(pid, 0)
    print("reaped", flush=True)
"""


def test_kill_9_during_python_saves(tmp_path: Path, models: tuple[bytes, bytes]) -> None:
    """A process that imported edge_lsh once forks the saving processes (so a kill costs a
    fork, not a Python start-up)."""
    (tmp_path / "a").write_bytes(models[0])
    (tmp_path / "b").write_bytes(models[1])
    target = tmp_path / "m.elsh"
    target.write_bytes(models[0])
    rng = random.Random(11)
    counts = {"a": 0, "b": 0}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    zygote = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE, str(target), str(tmp_path / "a"), str(tmp_path / "b")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    t0 = time.monotonic()
    try:
        for _ in range(KILLS_PYTHON):
            zygote.stdin.write("go\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            time.sleep(rng.uniform(0.0, KILL_WINDOW))
            os.kill(pid, signal.SIGKILL)
            assert zygote.stdout.readline().strip() == "reaped"
            check_whole(target, models, counts)
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)

    from edge_lsh.fileio import atomic_write

    def save_once() -> None:
        with atomic_write(target) as f:
            f.write(models[1])

    left = finish(target, KILLS_PYTHON, counts, save_once)
    assert target.read_bytes() == models[1]
    report("Python atomic_write", KILLS_PYTHON, time.monotonic() - t0, counts, left)
    assert counts["b"] > 0
    assert left > 0


# ---------------------------------------------------------------- the C writer's steps and errors


def run_shim(shim_driver: Path, *args: object, fail: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "ELSH_FAIL": fail}
    return subprocess.run([shim_driver, *map(str, args)], capture_output=True, text=True, env=env)


def test_c_writer_fsyncs_file_then_renames_then_fsyncs_folder(
    tmp_path: Path, shim_driver: Path, models: tuple[bytes, bytes]
) -> None:
    src = tmp_path / "src"
    src.write_bytes(models[0])
    target = tmp_path / "m.elsh"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    r = run_shim(shim_driver, "once", target, src)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == ["fsync file", "rename", "fsync folder"]
    assert target.read_bytes() == models[0]
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the old file's permissions kept
    assert temporaries(target) == []
    # a new file: 0666 less the umask, as open() gives
    fresh = tmp_path / "new.elsh"
    r = subprocess.run(
        [shim_driver, "once", fresh, src],
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(0o027),
    )
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
    # no folder part: the current folder
    r = subprocess.run([shim_driver, "once", "rel.elsh", src], capture_output=True, cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "rel.elsh").read_bytes() == models[0]


@pytest.mark.parametrize(
    ("fail", "message"),
    [
        ("write", "m.elsh: cannot write (No space left on device)"),
        ("fsync", "m.elsh: cannot write (fsync) (Input/output error)"),
        ("rename", "m.elsh: cannot replace the file (Invalid cross-device link)"),
    ],
)
def test_c_writer_errors_leave_the_old_file_and_no_temporary(
    tmp_path: Path, shim_driver: Path, models: tuple[bytes, bytes], fail: str, message: str
) -> None:
    src = tmp_path / "src"
    src.write_bytes(models[0])
    target = tmp_path / "m.elsh"
    target.write_bytes(b"old model")
    r = run_shim(shim_driver, "once", target, src, fail=fail)
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("atomic_save_driver:")]
    assert len(errors) == 1 and errors[0].endswith(message), r.stderr
    assert target.read_bytes() == b"old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.elsh", "src"]


def test_c_writer_bad_paths_and_abort(tmp_path: Path, shim_driver: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"data")
    for path, message in [
        (f"{tmp_path}/nope/m.elsh", "the folder does not exist"),
        (str(tmp_path), "is a folder; give a file name"),
        (f"{tmp_path}/", "is a folder; give a file name"),
        (f"{tmp_path}/..", "is a folder; give a file name"),
        ("", "not a file name"),
    ]:
        r = run_shim(shim_driver, "once", path, src)
        assert r.returncode == 2 and message in r.stderr, (path, r.stderr)
    target = tmp_path / "m.elsh"
    target.write_bytes(b"old")
    r = run_shim(shim_driver, "abort", target, src)
    assert r.returncode == 0, r.stderr
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.elsh", "src"]


def test_c_writer_removes_only_its_targets_stale_temporaries(
    tmp_path: Path, shim_driver: Path
) -> None:
    """The rule of fileio.py's atomic_write, in C: .NAME.XXXXXXXX.tmp, regular, over a minute."""
    src = tmp_path / "src"
    src.write_bytes(b"model")
    target = tmp_path / "m.elsh"
    stale = tmp_path / ".m.elsh.ab_12xyz.tmp"
    keep = {
        "young": tmp_path / ".m.elsh.k3j2h1g0.tmp",
        "other target": tmp_path / ".m.elsh2.ab_12xyz.tmp",
        "other prefix": tmp_path / ".m.elshab_12xyz.tmp",
        "not mkstemp's": tmp_path / ".m.elsh.ABCDEFGH.tmp",
        "too long": tmp_path / ".m.elsh.ab_12xyz9.tmp",
        "not hidden": tmp_path / "m.elsh.ab_12xyz.tmp",
    }
    for p in [stale, *keep.values()]:
        p.write_bytes(b"x")
    folder = tmp_path / ".m.elsh.aaaaaaaa.tmp"
    folder.mkdir()
    link = tmp_path / ".m.elsh.bbbbbbbb.tmp"
    link.symlink_to(src)
    for p in [stale, folder, *(v for k, v in keep.items() if k != "young")]:
        age(p, 3600)
    os.utime(link, (time.time() - 3600,) * 2, follow_symlinks=False)
    r = run_shim(shim_driver, "once", target, src)
    assert r.returncode == 0, r.stderr
    assert not stale.exists()
    for name, p in keep.items():
        assert p.exists(), name
    assert folder.is_dir() and link.is_symlink()
    assert target.read_bytes() == b"model"
