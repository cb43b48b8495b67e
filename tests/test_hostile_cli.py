"""No traceback, ever (issue 15, item 2): hostile model, data and input files end every
command line path in one error line and exit status 2, within bounded time and memory.

Each test builds its hostile file, runs ``edge-lsh`` in a subprocess whose address space is
capped with RLIMIT_AS (the old code asked for gigabytes), and checks the exit status, the
message and that stderr holds no traceback. The float-model cases are checked in process too
(Network.load raises ModelFileError), and a closed stdout pipe (``inspect m.elsh | head -1``)
ends quietly with 141."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_lsh.errors import ModelFileError
from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import describe
from edge_lsh.format.layout import INFO, NO_LAYER
from edge_lsh.format.writer import Section, assemble, model_sections
from edge_lsh.network import LSHConfig, Network

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "export" / "golden"
AS_LIMIT = 1 << 30  # address space of each command: the hostile files asked for far more


class Result:
    def __init__(self, status: int, out: str, err: str, max_rss: int, seconds: float):
        self.status, self.out, self.err = status, out, err
        self.max_rss, self.seconds = max_rss, seconds

    def __repr__(self) -> str:
        return f"status {self.status}, {self.seconds:.1f} s, stderr: {self.err[-800:]!r}"


def run_cli(
    args: list[str],
    tmp: Path,
    *,
    as_limit: int = AS_LIMIT,
    env: dict[str, str] | None = None,
    close_stdout: bool = False,
) -> Result:
    """edge-lsh ARGS in a subprocess under RLIMIT_AS; its status, output, peak RSS (bytes)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))

    environ = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    code = "import sys; from edge_lsh.cli import main; sys.exit(main(sys.argv[1:]))"
    out_path, err_path = tmp / "stdout.txt", tmp / "stderr.txt"
    t0 = time.perf_counter()
    with open(err_path, "wb") as err:
        if close_stdout:  # a reader that is gone before anything is written
            p = subprocess.Popen(
                [sys.executable, "-c", code, *args],
                stdout=subprocess.PIPE,
                stderr=err,
                preexec_fn=cap,
                env=environ,
            )
            assert p.stdout is not None
            p.stdout.close()
        else:
            with open(out_path, "wb") as out:
                p = subprocess.Popen(
                    [sys.executable, "-c", code, *args],
                    stdout=out,
                    stderr=err,
                    preexec_fn=cap,
                    env=environ,
                )
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    out_text = "" if close_stdout else out_path.read_text(errors="replace")
    return Result(
        p.returncode, out_text, err_path.read_text(errors="replace"), usage.ru_maxrss << 10, seconds
    )


def assert_clean_error(r: Result, *phrases: str) -> None:
    """Exit 2, one 'edge-lsh: error:' line naming the problem, no traceback."""
    assert r.status == 2, r
    assert "Traceback" not in r.err, r
    assert r.err.startswith("edge-lsh: error:"), r
    for phrase in phrases:
        assert phrase in r.err, r


# ----------------------------------------------------------------------------- float models


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    net = Network(8, [16], 3, LSHConfig(active_fraction=0.5, bits=2, tables=4), seed=1)
    path = tmp_path_factory.mktemp("model") / "good.npz"
    net.save(path)
    return path


def rewrite_model(
    good: Path,
    out: Path,
    edit: Callable[[dict[str, Any]], None] | None = None,
    *,
    config_text: bytes | None = None,
) -> Path:
    """good.npz with its config JSON edited (or replaced by config_text), arena kept."""
    with zipfile.ZipFile(good) as zf:
        meta = json.loads(np.load(io.BytesIO(zf.read("config.npy"))).tobytes())
        arena = np.load(io.BytesIO(zf.read("arena.npy")))
    if edit is not None:
        edit(meta)
    raw = config_text if config_text is not None else json.dumps(meta).encode()
    np.savez_compressed(out, config=np.frombuffer(raw, dtype=np.uint8), arena=arena)
    return out


def _huge(meta: dict[str, Any]) -> None:
    """A configuration whose arena the C planner puts at hundreds of GiB."""
    meta["hidden"] = [65535] * 6
    meta["lsh"].update(tables=1024, bits=15)


HOSTILE_MODELS: dict[str, tuple[dict[str, Any], str]] = {
    "infinity": ({"edit": lambda m: m.__setitem__("n_in", float("inf"))}, "Infinity"),
    "1e999": ({"config_text": b'{"format": "edge-lsh-arena", "n_in": 1e999}'}, "out of range"),
    "nested_200k": (
        {
            "config_text": b'{"format": "edge-lsh-arena", "x": '
            + b"[" * 200_000
            + b"]" * 200_000
            + b"}"
        },
        "nested 200001 levels deep",
    ),
    "arena_311_GB": ({"edit": _huge}, "configuration and state do not belong together"),
    "hidden_string": ({"edit": lambda m: m.__setitem__("hidden", "99")}, "hidden is '99'"),
    "hidden_float": ({"edit": lambda m: m.__setitem__("hidden", [16.5])}, "list of layer widths"),
    "nnz_2^40": ({"edit": lambda m: m["lsh"].__setitem__("ternary_nnz", 2**40)}, "invalid model"),
    "not_utf8": ({"config_text": b"\xff\xfe{}"}, "not UTF-8"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_MODELS))
def test_hostile_float_model_is_a_model_file_error(name: str, saved_model: Path, tmp_path) -> None:
    kwargs, phrase = HOSTILE_MODELS[name]
    path = rewrite_model(saved_model, tmp_path / f"{name}.npz", **kwargs)
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError) as info:
        Network.load(path)
    assert time.perf_counter() - t0 < 2.0
    assert phrase in str(info.value) and str(path) in str(info.value)


def test_the_arena_size_is_checked_before_it_is_allocated(saved_model: Path, tmp_path) -> None:
    """The planner's size is compared with the state the file holds before any allocation:
    the 311 GB configuration is refused without asking for the memory (RSS stays small)."""
    path = rewrite_model(saved_model, tmp_path / "huge.npz", _huge)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelFileError, match=r"needs a \d{12}-byte state, the file holds"):
        Network.load(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 << 10  # KB


def test_a_deflate_bomb_arena_is_refused_before_allocation(saved_model: Path, tmp_path) -> None:
    """An arena member stating far more bytes than DEFLATE can expand its data to."""
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(saved_model) as zf:
        config = zf.read("config.npy")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (1 << 40,)}
    )
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.npy", config)
        zf.writestr("arena.npy", header.getvalue() + bytes(1000))
    with pytest.raises(ModelFileError, match="states 1099511627776 bytes|header states"):
        Network.load(bomb)


@pytest.mark.parametrize("command", ["eval", "train_from", "export"])
def test_hostile_float_models_in_every_command(command: str, saved_model: Path, tmp_path) -> None:
    rng = np.random.default_rng(0)
    data = f"npz:{tmp_path / 'd.npz'}"  # what the model takes: 8 features, 3 classes
    np.savez(tmp_path / "d.npz", x=rng.random((60, 8)), y=rng.integers(0, 3, 60))
    for name in ("infinity", "nested_200k", "arena_311_GB", "hidden_string"):
        kwargs, phrase = HOSTILE_MODELS[name]
        model = rewrite_model(saved_model, tmp_path / f"{name}.npz", **kwargs)
        args = {
            "eval": ["eval", str(model), "--data", data],
            "train_from": ["train", "--from", str(model), "--data", data, "--epochs", "1"],
            "export": ["export", str(model), "--calib", data, "--out", str(tmp_path / "m.elsh")],
        }[command]
        r = run_cli(args, tmp_path)
        assert_clean_error(r, phrase)
        assert r.max_rss < 400 << 20, r


# ----------------------------------------------------------------------------- .elsh INFO


def deep_info_file() -> bytes:
    data = (GOLDEN / "ternary_seed_tables.elsh").read_bytes()
    from edge_lsh.format import read_elsh

    qm = read_elsh(data)
    secs = [s for s in model_sections(qm, tables=True) if s.type != INFO]
    deep = b"[" * 200_000 + b"]" * 200_000
    return assemble([*secs, Section(INFO, NO_LAYER, deep, 0)], flags=1)


def test_deeply_nested_info_is_ignored_by_both_readers() -> None:
    data = deep_info_file()
    assert describe(data)["info"] is None
    assert FixedPointModel(data).info == {}


def test_inspect_a_file_with_deeply_nested_info(tmp_path) -> None:
    path = tmp_path / "deep.elsh"
    path.write_bytes(deep_info_file())
    r = run_cli(["inspect", str(path)], tmp_path)
    assert r.status == 0 and "Traceback" not in r.err, r
    assert "info:" not in r.out and "layer 0" in r.out
    r = run_cli(["inspect", str(path), "--json"], tmp_path)
    assert r.status == 0 and json.loads(r.out)["info"] is None, r


def test_inspect_into_a_closed_pipe_exits_141_quietly(tmp_path) -> None:
    """`edge-lsh inspect m.elsh | head -1`: the reader is gone; no BrokenPipeError traceback,
    no message, and 141 (128 + SIGPIPE) as a C tool killed by SIGPIPE would give."""
    r = run_cli(
        ["inspect", str(GOLDEN / "simhash_int16_2hidden.elsh")], tmp_path, close_stdout=True
    )
    assert r.status == 141, r
    assert r.err == "", r


def test_inspect_piped_to_head(tmp_path) -> None:
    """The shell pipeline itself, with pipefail: head gets its line, edge-lsh exits 141."""
    if not Path("/bin/bash").exists():
        pytest.skip("needs bash for pipefail")
    code = "import sys; from edge_lsh.cli import main; sys.exit(main(sys.argv[1:]))"
    big = tmp_path / "many_sections.elsh"  # a long listing: more than a pipe buffer holds
    data = (GOLDEN / "ternary_seed_tables.elsh").read_bytes()
    from edge_lsh.format import read_elsh

    secs = model_sections(read_elsh(data), tables=True)
    extra = [Section(100 + i, NO_LAYER, b"x", 0) for i in range(3000)]
    big.write_bytes(assemble([*secs, *extra], flags=1))
    script = f'set -o pipefail; "{sys.executable}" -c "{code}" inspect "{big}" | head -1'
    r = subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True)
    assert r.stdout.count("\n") == 1 and "many_sections.elsh" in r.stdout
    assert r.returncode == 141, r.stderr
    assert "Traceback" not in r.stderr and r.stderr == ""
