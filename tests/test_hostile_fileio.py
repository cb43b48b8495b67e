"""Files left half-done and JSON built to hurt (issue 15): atomic_write cleans the temporary
files of saves that were killed and makes its rename durable; loads_json refuses deep nesting,
non-finite numbers and oversized text with a ValueError instead of recursing or overflowing."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge_lsh import fileio
from edge_lsh.fileio import atomic_write, json_depth, loads_json, write_text_output


def age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)


def test_a_killed_save_leaves_a_temporary_file_the_next_save_removes(tmp_path) -> None:
    """kill -9 in the middle of a save: the target is untouched, a hidden .tmp stays; once it
    is over a minute old, the next save to the same target removes it."""
    target = tmp_path / "m.npz"
    target.write_bytes(b"old model")
    code = (
        "import sys, time\n"
        "from edge_lsh.fileio import atomic_write\n"
        "with atomic_write(sys.argv[1]) as f:\n"
        "    f.write(b'half a model'); f.flush(); print('writing', flush=True); time.sleep(60)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline().strip() == b"writing"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    left = [q for q in tmp_path.iterdir() if q.name != target.name]
    assert len(left) == 1 and left[0].name.startswith(".m.npz.") and left[0].suffix == ".tmp"
    assert target.read_bytes() == b"old model"
    with atomic_write(target) as f:  # a minute has not passed: it may be a save in progress
        f.write(b"new model")
    assert left[0].exists()
    age(left[0], 120)
    with atomic_write(target) as f:
        f.write(b"newer model")
    assert sorted(q.name for q in tmp_path.iterdir()) == ["m.npz"]
    assert target.read_bytes() == b"newer model"


def test_only_the_targets_own_stale_temporaries_are_removed(tmp_path) -> None:
    target = tmp_path / "m.elsh"
    stale = tmp_path / ".m.elsh.ab_12xyz.tmp"
    keep = {
        "young": tmp_path / ".m.elsh.k3j2h1g0.tmp",  # under a minute: maybe a save running
        "other target": tmp_path / ".m.elsh2.ab_12xyz.tmp",
        "other prefix": tmp_path / ".m.elshab_12xyz.tmp",
        "not mkstemp's": tmp_path / ".m.elsh.ABCDEFGH.tmp",
        "too long": tmp_path / ".m.elsh.ab_12xyz9.tmp",
        "not hidden": tmp_path / "m.elsh.ab_12xyz.tmp",
        "user file": tmp_path / "notes.tmp",
    }
    for p in [stale, *keep.values()]:
        p.write_bytes(b"x")
    folder = tmp_path / ".m.elsh.aaaaaaaa.tmp"  # a folder of that name is not ours
    folder.mkdir()
    link = tmp_path / ".m.elsh.bbbbbbbb.tmp"  # nor a symbolic link
    link.symlink_to(tmp_path / "notes.tmp")
    for p in [stale, folder, link, *(v for k, v in keep.items() if k != "young")]:
        age(p, 3600)
    with atomic_write(target) as f:
        f.write(b"model")
    assert not stale.exists()
    for name, p in keep.items():
        assert p.exists(), name
    assert folder.is_dir() and link.is_symlink()
    assert target.read_bytes() == b"model"


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    with atomic_write(tmp_path / "x.bin") as f:
        f.write(b"data")
    assert synced == ["file", "folder"]


def test_a_folder_that_cannot_be_synced_is_not_an_error(tmp_path, monkeypatch) -> None:
    def fail(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")

    monkeypatch.setattr(fileio.os, "fsync", fail)
    with atomic_write(tmp_path / "x.bin") as f:
        f.write(b"data")
    assert (tmp_path / "x.bin").read_bytes() == b"data"


# ----------------------------------------------------------------------------- JSON


def nested(rng: np.random.Generator, depth: int) -> object:
    """A random JSON value nested up to `depth`, with strings full of brackets, quotes and
    backslashes."""
    kind = int(rng.integers(4 if depth else 2))
    if kind == 0:
        return float(rng.normal())
    if kind == 1:
        alphabet = list('[]{}"\\\\ ,:ab\\n')
        return "".join(rng.choice(alphabet, size=int(rng.integers(0, 12))))
    if kind == 2:
        return [nested(rng, depth - 1) for _ in range(int(rng.integers(0, 4)))]
    return {str(i) + "\\[": nested(rng, depth - 1) for i in range(int(rng.integers(0, 4)))}


def depth_of(v: object) -> int:
    if isinstance(v, list):
        return 1 + max((depth_of(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((depth_of(x) for x in v.values()), default=0)
    return 0


def test_json_depth_is_exact_on_valid_json() -> None:
    rng = np.random.default_rng(15)
    for _ in range(400):
        v = nested(rng, int(rng.integers(0, 8)))
        text = json.dumps(v, ensure_ascii=bool(rng.integers(2)))
        assert json_depth(text.encode()) == depth_of(v), text
        assert loads_json(text) == v


@pytest.mark.parametrize(
    "text,phrase",
    [
        ("[" * 200_000 + "]" * 200_000, "nested 200000 levels deep"),
        ('{"a": ' * 101 + "1" + "}" * 101, "nested 101 levels deep"),
        ('"' + "\\\\" * 10 + '"' + "[" * 500, "nested 500 levels deep"),
        ('{"n": Infinity}', "Infinity"),
        ('{"n": -Infinity}', "-Infinity"),
        ("[NaN]", "NaN"),
        ("[1e999]", "out of range"),
        ("[" + "9" * 5000 + "]", "digits"),
        (b"\xff[]", "not UTF-8"),
        ("x" * (fileio.MAX_JSON_BYTES + 1), "more than the"),
    ],
)
def test_loads_json_refuses_with_a_value_error(text: str | bytes, phrase: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=phrase):
        loads_json(text)
    assert time.perf_counter() - t0 < 2.0


def test_loads_json_limits_are_arguments() -> None:
    assert loads_json("[[[]]]", max_depth=3) == [[[]]]
    with pytest.raises(ValueError, match="nested 3 levels"):
        loads_json("[[[]]]", max_depth=2)
    with pytest.raises(ValueError, match="more than the 4 allowed"):
        loads_json("[1, 2]", max_bytes=4)


def test_a_raised_recursion_limit_cannot_crash_the_parser() -> None:
    """With the recursion limit raised, json.loads itself would recurse 200000 C frames deep
    (a crash, not an exception); the depth is checked before it runs."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        with pytest.raises(ValueError, match="levels deep"):
            loads_json("[" * 200_000 + "]" * 200_000)
    finally:
        sys.setrecursionlimit(old)


def test_write_text_output_to_a_file_or_stdout(tmp_path, capsys):
    """The tools' reports: '-' prints, a path is written whole through atomic_write."""
    out = tmp_path / "report.md"
    out.write_text("old\n")
    write_text_output(out, "# new\n| a |")
    assert out.read_text() == "# new\n| a |"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]  # no temporary left
    write_text_output("-", "to stdout")
    assert capsys.readouterr().out == "to stdout\n"
