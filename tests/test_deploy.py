"""edge-lsh deploy: clear errors without a cross-compiler or with bad arguments, and, where the
toolchains are installed (CI installs them: firmware_tests/install.sh), real cross builds
checked bit-exact under QEMU."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_lsh.cli import main
from edge_lsh.deploy import DeployError, deploy, source_root
from edge_lsh.deploy_targets import TARGETS

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


@pytest.mark.skipif(not have("arm-none-eabi-gcc", "qemu-system-arm"), reason="no Cortex-M tools")
def test_deploy_pico2_firmware_checked_under_qemu(tmp_path):
    r = deploy(GOLDEN / "membership_notables.elsh", "pico2", tmp_path / "p2", check=True)
    assert r.checked == 16
    assert (tmp_path / "p2" / "firmware.elf").stat().st_size > 0
    assert "aligned(16)" in (tmp_path / "p2" / "model_data.c").read_text()


@pytest.mark.skipif(not have("arm-linux-gnueabi-gcc", "qemu-arm"), reason="no armel tools")
def test_deploy_pi_zero_runs_on_arm1176(tmp_path):
    # Debian's armel port: a static Linux binary that really runs on an ARMv6 core
    r = deploy(MODEL, "pi-zero", tmp_path / "zero", check=True)
    assert r.checked == 16
