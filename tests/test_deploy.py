"""edge-lsh deploy: clear errors without a cross-compiler or with bad arguments, and, where the
toolchains are installed (CI installs them: firmware_tests/install.sh), real cross builds
checked bit-exact under QEMU."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_lsh.cli import main
from edge_lsh.deploy import CHECK_INPUTS, DeployError, check_inputs, deploy, source_root, toolchain
from edge_lsh.deploy import firmware as deploy_fw
from edge_lsh.deploy.targets import TARGETS, DeployTarget
from edge_lsh.fixed import FixedPointModel

GOLDEN = Path(__file__).resolve().parent.parent / "export" / "golden"
MODEL = GOLDEN / "ternary_seed_tables.elsh"


def have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)


def test_targets_cover_the_issue():
    assert {"pi-zero", "pi-zero2", "pi3", "pi4", "pi5", "armv7", "pico2"} <= set(TARGETS)
    for t in TARGETS.values():
        assert t.packages and t.cc and t.qemu
        assert not any("native" in f for f in t.cflags)  # never -march=native


def test_sources_found():
    root = source_root()
    assert (root / "native" / "runner" / "edge_lsh_run.c").is_file()


def test_unknown_target_and_bad_model(tmp_path, capsys):
    with pytest.raises(DeployError, match="unknown target"):
        deploy(MODEL, "pi9", tmp_path / "out")
    with pytest.raises(SystemExit) as exc:  # argparse lists the valid targets
        main(["deploy", str(MODEL), "--target", "pi9", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "pi-zero" in capsys.readouterr().err
    bad = tmp_path / "bad.elsh"
    bad.write_bytes(b"nonsense")
    assert main(["deploy", str(bad), "--target", "pi4", "--out", str(tmp_path / "o")]) == 2
    assert "not an .elsh" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_cross_compiler_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no compilers at all
    with pytest.raises(DeployError, match="apt-get install gcc-aarch64-linux-gnu"):
        deploy(MODEL, "pi4", tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_refuses_non_empty_out_dir(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    with pytest.raises(DeployError, match="not empty"):
        deploy(MODEL, "pi4", out)
    assert (out / "precious.txt").read_text() == "mine"


@pytest.mark.skipif(not have("aarch64-linux-gnu-gcc", "qemu-aarch64"), reason="no aarch64 tools")
def test_deploy_pi5_checked_under_qemu(tmp_path, capsys):
    out = tmp_path / "pi5"
    assert main(["deploy", str(MODEL), "--target", "pi5", "--out", str(out), "--check"]) == 0
    text = capsys.readouterr().out
    assert "bit-exact" in text
    assert {p.name for p in out.iterdir()} == {
        "edge-lsh-run",
        "model.elsh",
        "sample.csv",
        "README.md",
    }
    assert (out / "model.elsh").read_bytes() == MODEL.read_bytes()
    assert "scp" in (out / "README.md").read_text()


@pytest.mark.skipif(not have("arm-linux-gnueabihf-gcc", "qemu-arm"), reason="no armhf tools")
def test_deploy_armv7_checked_under_qemu(tmp_path):
    r = deploy(MODEL, "armv7", tmp_path / "v7", check=True)
    assert r.checked == 16 and r.binary_bytes > 0


def readme_files(readme: str) -> set[str]:
    """The files (and folders, with a slash) the README's "What is here" list names."""
    part = readme.split("## What is here", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^- `([^`]+)`", part, re.M))


def bundle_files(out: Path) -> set[str]:
    return {p.name + ("/" if p.is_dir() else "") for p in out.iterdir()}


@pytest.mark.skipif(not have("arm-none-eabi-gcc", "qemu-system-arm"), reason="no Cortex-M tools")
def test_deploy_pico2_firmware_checked_under_qemu(tmp_path, capsys):
    out = tmp_path / "p2"
    model = GOLDEN / "membership_notables.elsh"
    assert main(["deploy", str(model), "--target", "pico2", "--out", str(out), "--check"]) == 0
    assert "bit-exact" in capsys.readouterr().out
    shipped = bundle_files(out)
    assert shipped == {
        "firmware-rp2350.uf2",
        "firmware-rp2350.elf",
        "firmware-qemu-an505.elf",
        "model_data.c",
        "sample.csv",
        "pico-sdk/",
        "README.md",
    }
    readme = (out / "README.md").read_text()
    assert readme_files(readme) == shipped  # every file named exists, every file is named
    assert "aligned(16)" in (out / "model_data.c").read_text()
    assert "GP0" in readme and "115200" in readme and "elsh_qnet_quantize_input" in readme
    assert "passed its self-test" in readme


@pytest.mark.skipif(not have("arm-linux-gnueabi-gcc", "qemu-arm"), reason="no armel tools")
def test_deploy_pi_zero_runs_on_arm1176(tmp_path):
    # Debian's armel port: a static Linux binary that really runs on an ARMv6 core
    r = deploy(MODEL, "pi-zero", tmp_path / "zero", check=True)
    assert r.checked == 16


# ----------------------------------------------------------------------------- --check catches
# The tests below need no toolchain: the compiler, nm and QEMU are replaced by fakes, and the
# fake QEMU runs the deployed model file on the deployed sample.csv with the host kernel, then
# lets a test damage that output the way a miscompiled or broken board build would.


class FakeTools:
    """Stands in for edge_lsh.deploy.toolchain's tool runners (and the firmware's QEMU run).

    The firmware under QEMU answers the lines it is sent (sample.csv) with the host kernel's
    class and logits, after its self-test's ALL PASS, unless `firmware` gives its exit code and
    output; `damage` alters the answer rows of the runner and of the firmware alike."""

    def __init__(self, monkeypatch, damage=lambda rows: rows, firmware=(0, None), symbols=""):
        self.symbols = symbols  # what nm lists in the firmware
        self.damage = damage  # rows of runner output (lists of str) -> what QEMU "prints"
        self.firmware = firmware  # (exit code, output or None: the honest answers)
        self.firmware_expect: Path | None = None
        self.firmware_model: FixedPointModel | None = None
        self.qemu_runs = 0
        self.tool_runs = 0
        monkeypatch.setattr(toolchain, "need", lambda tool, target, why: f"/fake/bin/{tool}")
        monkeypatch.setattr(toolchain, "run", self.run)
        # the fake ELF files have no layout to check and no bytes to put in a .uf2
        board = deploy_fw.FirmwareBuild(flash_bytes=30000, ram_bytes=20000)
        monkeypatch.setattr(deploy_fw, "_check_board_image", lambda elf, nm, target: board)
        monkeypatch.setattr(deploy_fw.uf2, "elf_to_uf2", lambda *args: b"UF2\n fake")
        # the firmware's QEMU run: its UART input is typed after `# ready` (serial_feed)
        monkeypatch.setattr(deploy_fw.serial_feed, "run_after_marker", self.run_serial)

    def run(self, cmd, what, timeout=None):
        out = ""
        self.tool_runs += 1
        if what == "the QEMU check":
            out = self.runner_output(cmd)
        elif what == "embedding the model":  # gen_models_c.py OUT.c MODEL.elsh MODEL.expect
            Path(cmd[2]).write_text("/* model */\n")
            self.firmware_model = FixedPointModel.load(cmd[3])
            self.firmware_expect = Path(cmd[4])
            self.firmware_expect_text = self.firmware_expect.read_text()
        elif what == "listing symbols":
            out = self.symbols
        elif "-o" in cmd:
            Path(cmd[cmd.index("-o") + 1]).write_bytes(b"\x7fELF fake binary")
        return subprocess.CompletedProcess(cmd, 0, out, "")

    def runner_output(self, cmd):
        """What edge-lsh-run MODEL CSV --logits prints, computed on the host from the files."""
        self.qemu_runs += 1
        assert cmd[0] == "/fake/bin/qemu-aarch64" and cmd[-1] == "--logits"
        model, csv = Path(cmd[-3]), Path(cmd[-2])
        fm = FixedPointModel.load(model)
        x = np.loadtxt(csv, delimiter=",", dtype=np.float32, ndmin=2)
        pred, logits = fm.predict_logits(x)
        rows = [[str(p), *(str(v) for v in row)] for p, row in zip(pred, logits)]
        body = [" ".join(r) for r in self.damage(rows)]
        return "\n".join(["# model: fake header", *body, f"# inputs: {len(x)}"]) + "\n"

    def run_serial(self, cmd, feed, timeout, **kwargs):
        res = self.run_firmware(cmd, input=feed, timeout=timeout)
        return res.returncode, res.stdout

    def run_firmware(self, cmd, input=None, **kwargs):
        self.qemu_runs += 1
        assert cmd[0] == "/fake/bin/qemu-system-arm" and cmd[-1].endswith("firmware-qemu-an505.elf")
        code, output = self.firmware
        if code == "timeout":
            raise subprocess.TimeoutExpired(cmd, kwargs.get("timeout"))
        if output is None:  # the firmware's self-test passes, then it answers every line
            lines = input.splitlines()
            assert lines[-1] == "quit"
            x = np.array([[float(v) for v in line.split(",")] for line in lines[:-1]], np.float32)
            pred, logits = self.firmware_model.predict_logits(x)
            rows = [[str(p), *(str(v) for v in row)] for p, row in zip(pred, logits)]
            body = [" ".join(r) for r in self.damage(rows)]
            head = ["cpu: CPUID 0x410fd213", "PASS model: 16 inputs bit-exact", "ALL PASS: 1"]
            output = "\n".join([*head, "# ready: model: send ...", *body]) + "\n"
        return subprocess.CompletedProcess(cmd, code, output, "")


def _host_check_outputs():
    fm = FixedPointModel.load(MODEL)
    x = check_inputs(fm, CHECK_INPUTS)
    return fm, x, *fm.predict_logits(x)


def test_fake_check_passes_when_the_board_agrees(tmp_path, monkeypatch):
    """The control for the mismatch tests: unchanged output passes, through the same fakes."""
    tools = FakeTools(monkeypatch)
    r = deploy(MODEL, "pi5", tmp_path / "out", check=True)
    assert tools.qemu_runs == 1 and r.checked == CHECK_INPUTS
    assert (tmp_path / "out" / "model.elsh").read_bytes() == MODEL.read_bytes()
    shipped = bundle_files(tmp_path / "out")
    assert readme_files((tmp_path / "out" / "README.md").read_text()) == shipped
    _, x, _, _ = _host_check_outputs()
    sample = np.loadtxt(tmp_path / "out" / "sample.csv", delimiter=",", dtype=np.float32)
    assert np.array_equal(sample, x)  # the check ran on what the board will get


def _bump_logit(rows):
    rows[5][-1] = str(int(rows[5][-1]) + 1)
    return rows


def _swap_prediction(rows):
    rows[2][0] = str((int(rows[2][0]) + 1) % (len(rows[2]) - 1))
    return rows


MISMATCHES = [
    ("one-logit-off-by-one", _bump_logit, "input 5 differs"),
    ("other-prediction", _swap_prediction, "input 2 differs"),
    ("missing-row", lambda rows: rows[:-1], "15 predictions for 16 inputs"),
    ("extra-row", lambda rows: rows + [rows[0]], "17 predictions for 16 inputs"),
    ("no-output", lambda rows: [], "0 predictions for 16 inputs"),
    ("missing-logits", lambda rows: [r[:1] for r in rows], "input 0 differs"),
    ("garbage-line", lambda rows: rows[:3] + [["Illegal", "instruction"]] + rows[4:], "unexpected"),
]


@pytest.mark.parametrize(
    "damage,message", [m[1:] for m in MISMATCHES], ids=[m[0] for m in MISMATCHES]
)
def test_check_catches_a_runner_mismatch(tmp_path, monkeypatch, damage, message):
    tools = FakeTools(monkeypatch, damage=damage)
    out = tmp_path / "out"
    with pytest.raises(DeployError, match=message):
        deploy(MODEL, "pi5", out, check=True)
    assert tools.qemu_runs == 1
    assert not out.exists() or not any(out.iterdir())  # nothing shipped after a failed check


def test_cli_check_mismatch_exits_2(tmp_path, monkeypatch, capsys):
    FakeTools(monkeypatch, damage=_bump_logit)
    args = ["deploy", str(MODEL), "--target", "pi5", "--out", str(tmp_path / "o"), "--check"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "input 5 differs" in captured.err and "bit-exact" not in captured.out


def test_without_check_qemu_is_not_run(tmp_path, monkeypatch):
    tools = FakeTools(monkeypatch, damage=_bump_logit)
    r = deploy(MODEL, "pi5", tmp_path / "out")
    assert tools.qemu_runs == 0 and r.checked == 0
    assert "Not checked under QEMU" in (tmp_path / "out" / "README.md").read_text()


def test_a_failing_command_raises_with_its_output():
    cmd = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    with pytest.raises(DeployError, match=r"(?s)the step failed \(exit 3\).*boom"):
        toolchain.run(cmd, "the step")
    slow = [sys.executable, "-c", "import time; time.sleep(5)"]
    with pytest.raises(DeployError, match="took over"):
        toolchain.run(slow, "the slow step", timeout=0.2)


PICO_PASS = "PASS model: 16 inputs bit-exact\narena: 4096 B static\nALL PASS: 1 models, 16 inputs\n"


def test_fake_firmware_check_passes_and_embeds_the_host_logits(tmp_path, monkeypatch):
    """The control for pico2: a passing self-test and the host's answers to sample.csv over the
    UART, exit 0, are accepted; the expectations built into the firmware are the host's inputs,
    logits and predictions."""
    tools = FakeTools(monkeypatch)
    r = deploy(MODEL, "pico2", tmp_path / "p2", check=True)
    assert tools.qemu_runs == 1 and r.checked == CHECK_INPUTS
    fm, x, pred, logits = _host_check_outputs()
    lines = tools.firmware_expect_text.splitlines()
    assert lines[0].split() == [str(CHECK_INPUTS), str(fm.n_in), str(fm.n_classes)]
    xq = fm.quantize_input(x)
    for s in range(CHECK_INPUTS):
        assert [int(v) for v in lines[1 + 3 * s].split()] == xq[s].tolist()
        assert [int(v) for v in lines[2 + 3 * s].split()] == logits[s].tolist()
        assert int(lines[3 + 3 * s]) == pred[s]
    sample = np.loadtxt(tmp_path / "p2" / "sample.csv", delimiter=",", dtype=np.float32)
    assert np.array_equal(sample, x)  # what the board is sent is what was checked
    shipped = bundle_files(tmp_path / "p2")
    assert readme_files((tmp_path / "p2" / "README.md").read_text()) == shipped


FIRMWARE_FAILURES = [
    (
        "self-test-mismatch",
        (1, "FAIL model input 3 class 1: logit 7, expected 8\nFAILED: 1 models, 16 inputs\n"),
    ),
    ("no-all-pass-line", (0, "PASS model: 16 inputs bit-exact\narena: 4096 B static\n")),
    ("silent", (0, "")),
    ("all-pass-but-exit-1", (1, None)),
    ("never-ready", (0, PICO_PASS)),
    ("timeout", ("timeout", "")),
]


@pytest.mark.parametrize(
    "firmware", [f[1] for f in FIRMWARE_FAILURES], ids=[f[0] for f in FIRMWARE_FAILURES]
)
def test_check_catches_a_firmware_failure(tmp_path, monkeypatch, firmware):
    tools = FakeTools(monkeypatch, firmware=firmware)
    out = tmp_path / "p2"
    with pytest.raises(DeployError, match="firmware"):
        deploy(MODEL, "pico2", out, check=True)
    assert tools.qemu_runs == 1
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    "damage,message", [m[1:] for m in MISMATCHES], ids=[m[0] for m in MISMATCHES]
)
def test_check_catches_a_wrong_answer_over_the_uart(tmp_path, monkeypatch, damage, message):
    """The firmware's self-test passes, but its answers to sample.csv differ from the host's."""
    tools = FakeTools(monkeypatch, damage=damage)
    out = tmp_path / "p2"
    with pytest.raises(DeployError, match=f"pico2 firmware under QEMU: .*{message}"):
        deploy(MODEL, "pico2", out, check=True)
    assert tools.qemu_runs == 1
    assert not out.exists() or not any(out.iterdir())


def test_firmware_that_links_a_heap_is_refused(tmp_path, monkeypatch):
    symbols = "00000010 T main\n00000100 T malloc\n00000200 T _sbrk\n"
    tools = FakeTools(monkeypatch, symbols=symbols)
    with pytest.raises(DeployError, match="links a heap \\(_sbrk, malloc\\)"):
        deploy(MODEL, "pico2", tmp_path / "p2", check=True)
    assert tools.qemu_runs == 0


# ----------------------------------------------------------------------------- board memory
# Checked before anything is built: a model too big for the board fails at once with what is
# over and what would fit, and no compiler, no QEMU, no output folder.


def _with_target(monkeypatch, name: str, **changes) -> DeployTarget:
    t = dataclasses.replace(TARGETS[name], **changes)
    monkeypatch.setitem(TARGETS, name, t)
    return t


def _with_board(monkeypatch, **changes) -> DeployTarget:
    fw = TARGETS["pico2"].firmware
    board = dataclasses.replace(fw.board, **changes)
    return _with_target(monkeypatch, "pico2", firmware=dataclasses.replace(fw, board=board))


def test_pico2_flash_checked_before_building(tmp_path, monkeypatch):
    tools = FakeTools(monkeypatch)
    fm = FixedPointModel.load(MODEL)
    need = deploy_fw.budget(fm, TARGETS["pico2"], CHECK_INPUTS).flash
    _with_board(monkeypatch, flash_bytes=need - 1)
    with pytest.raises(DeployError) as exc:
        deploy(MODEL, "pico2", tmp_path / "p2")
    msg = str(exc.value)
    assert "does not fit the board's flash" in msg and f"{fm.model_bytes:,} bytes of model" in msg
    assert "1 over" in msg and f"At most {fm.model_bytes - 1:,} bytes of model fit" in msg
    assert "--no-tables" in msg  # this model stores its tables
    assert tools.tool_runs == 0 and not (tmp_path / "p2").exists()
    _with_board(monkeypatch, flash_bytes=need)  # exactly enough: built
    deploy(MODEL, "pico2", tmp_path / "p2")
    assert tools.tool_runs > 0


def test_pico2_ram_checked_before_building(tmp_path, monkeypatch):
    tools = FakeTools(monkeypatch)
    model = GOLDEN / "membership_notables.elsh"  # tables built in RAM
    fm = FixedPointModel.load(model)
    need = deploy_fw.budget(fm, TARGETS["pico2"], CHECK_INPUTS).ram
    _with_board(monkeypatch, ram_bytes=need - 100)
    with pytest.raises(DeployError) as exc:
        deploy(model, "pico2", tmp_path / "p2")
    msg = str(exc.value)
    assert "does not fit the board's RAM" in msg and f"arena is {fm.arena_bytes:,} bytes" in msg
    assert "100 over" in msg and f"At most {fm.arena_bytes - 100:,} bytes of arena fit" in msg
    assert "without --no-tables" in msg  # its tables could be stored in flash instead
    assert tools.tool_runs == 0 and not (tmp_path / "p2").exists()


def test_pico2_real_board_refuses_a_model_over_520_kb_of_arena(tmp_path, monkeypatch):
    """A real model: 64-3000-10 with its tables built in RAM needs an arena over 520 KB."""
    from edge_lsh import defaults
    from edge_lsh.format import write_elsh
    from edge_lsh.network import Network
    from edge_lsh.quantize import quantize

    tools = FakeTools(monkeypatch)
    x = np.random.default_rng(0).uniform(0, 16, (64, 64)).astype(np.float32)
    path = tmp_path / "wide.elsh"
    write_elsh(path, quantize(Network(64, [3000], 10, defaults.LSH), x), tables=False)
    fm = FixedPointModel.load(path)
    assert fm.arena_bytes > 520 * 1024
    assert main(["deploy", str(path), "--target", "pico2", "--out", str(tmp_path / "o")]) == 2
    assert tools.tool_runs == 0


def test_pi_ram_checked_before_building(tmp_path, monkeypatch, capsys):
    tools = FakeTools(monkeypatch)
    fm = FixedPointModel.load(MODEL)
    need = fm.arena_bytes + fm.model_bytes
    mb = 1024 * 1024
    _with_target(monkeypatch, "pi-zero", ram_bytes=128 * mb + need - 1, os_ram_bytes=128 * mb)
    args = ["deploy", str(MODEL), "--target", "pi-zero", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"needs {need:,} bytes of RAM" in err and "1 more than" in err
    assert "128 MB for the OS" in err
    assert tools.tool_runs == 0 and not (tmp_path / "o").exists()
    _with_target(monkeypatch, "pi-zero", ram_bytes=128 * mb + need)
    assert main(args) == 0


def test_every_pi_target_states_its_ram():
    for t in TARGETS.values():
        assert t.ram_bytes >= (512 * 1024 if t.firmware else 256 * 1024 * 1024)
        assert t.os_ram_bytes < t.ram_bytes


def test_force_replaces_an_existing_bundle(tmp_path, monkeypatch, capsys):
    FakeTools(monkeypatch)
    other = GOLDEN / "membership_notables.elsh"
    assert other.read_bytes() != MODEL.read_bytes()
    out = tmp_path / "bundle"
    args = ["--target", "pi5", "--out", str(out)]
    assert main(["deploy", str(MODEL), *args]) == 0
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    # without --force an existing bundle is left alone
    assert main(["deploy", str(other), *args]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "model.elsh").read_bytes() == MODEL.read_bytes()
    assert MODEL.name in (out / "README.md").read_text()
    # with --force the bundle's files are replaced by the new model's, other files kept
    assert main(["deploy", str(other), *args, "--force", "--check"]) == 0
    assert "bit-exact" in capsys.readouterr().out
    assert (out / "model.elsh").read_bytes() == other.read_bytes()
    readme = (out / "README.md").read_text()
    assert other.name in readme and MODEL.name not in readme
    sample = np.loadtxt(out / "sample.csv", delimiter=",", dtype=np.float32)
    fm = FixedPointModel.load(other)
    assert np.array_equal(sample, check_inputs(fm, CHECK_INPUTS))
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["edge-lsh-run", "model.elsh", "sample.csv", "README.md", "notes.txt"]
    )
    # --force never replaces a file by a folder
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DeployError, match="is a file; the deploy folder must be a folder"):
        deploy(MODEL, "pi5", blocker, force=True)  # and no "pass --force" advice
    assert blocker.read_text() == "x"


def test_force_replaces_the_pico2_bundle_and_its_folder(tmp_path, monkeypatch):
    FakeTools(monkeypatch)
    out = tmp_path / "p2"
    deploy(MODEL, "pico2", out)
    (out / "pico-sdk" / "mine.txt").write_text("stale")  # a file of the old bundle's folder
    (out / "notes.txt").write_text("mine")
    deploy(GOLDEN / "membership_notables.elsh", "pico2", out, force=True)
    assert not (out / "pico-sdk" / "mine.txt").exists()  # the folder is the new bundle's
    fm = FixedPointModel.load(GOLDEN / "membership_notables.elsh")
    assert f"ARENA_BYTES={fm.arena_bytes} " in (out / "pico-sdk" / "CMakeLists.txt").read_text()
    assert (out / "notes.txt").read_text() == "mine"
    blocked = tmp_path / "b"
    blocked.mkdir()
    (blocked / "pico-sdk").write_text("a file")
    with pytest.raises(DeployError, match="pico-sdk is a file where the bundle has a folder"):
        deploy(MODEL, "pico2", blocked, force=True)
    assert sorted(p.name for p in blocked.iterdir()) == ["pico-sdk"]


def test_a_link_overflow_is_said_plainly(tmp_path, monkeypatch):
    """Should the estimate pass a model the linker then refuses, the error says so in words."""
    tools = FakeTools(monkeypatch)
    fake = tools.run

    def run(cmd, what, timeout=None):
        if what == "linking firmware-rp2350.elf":
            ld = "ld: region `RAM' overflowed by 200 bytes\ncollect2: error: ld returned 1"
            raise DeployError(f"{what} failed (exit 1): {' '.join(cmd)}\n{ld}")
        return fake(cmd, what, timeout)

    monkeypatch.setattr(toolchain, "run", run)
    with pytest.raises(DeployError, match="does not fit the board's SRAM: 200 bytes over"):
        deploy(MODEL, "pico2", tmp_path / "p2")
    assert not (tmp_path / "p2").exists()
