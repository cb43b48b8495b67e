"""`edge-lsh energy`: help for every flag, pure JSON with --json, every profile's figures with a
source, and bad meters, addresses, files and output paths as one-line errors with exit status
2 (no traceback), before any measuring."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_lsh.cli import build_parser, main
from edge_lsh.energy.profiles import PROFILES

CLI = [sys.executable, "-c", "import sys; from edge_lsh.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("energy")
    npz, elsh = d / "m.npz", d / "m.elsh"
    assert main(["train", "--data", "digits", "--hidden", "60", "--epochs", "1",
                 "--out", str(npz), "--json"]) == 0  # fmt: skip
    assert main(["export", str(npz), "--out", str(elsh)]) == 0
    return {"npz": npz, "elsh": elsh, "dir": d}


def energy_parser():
    sub = build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    return sub.choices["energy"]


def test_every_flag_has_help():
    for action in energy_parser()._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 10, action.option_strings


def test_json_is_pure_and_complete(models, capsys):
    capsys.readouterr()
    assert main(["energy", str(models["elsh"]), "--samples", "20", "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)  # one JSON object, nothing else
    assert out.count("\n") == 1
    inf = summary["inference"]
    assert set(inf["estimates"]) == set(PROFILES)
    assert inf["estimates"]["horowitz45"]["joules_low"] > 0
    assert inf["estimates"]["rp2350"]["joules_low"] is None  # no published current per MHz
    assert "amps_per_mhz" in inf["estimates"]["rp2350"]["missing"]
    assert inf["estimates"]["pi4"]["joules_low"] is None  # not on the board
    assert summary["training"]["available"] is False


def test_float_model_gives_a_training_step(models, capsys):
    capsys.readouterr()
    args = ["energy", str(models["npz"]), "--samples", "20", "--train-steps", "30"]
    assert main([*args, "--profile", "horowitz45", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    t = s["training"]
    assert t["steps"] == 30 and t["ops_by_phase"]["update"]["mul"] > 0
    assert (
        t["estimates"]["horowitz45"]["joules_low"]
        > s["inference"]["estimates"]["horowitz45"]["joules_low"]
    )


def test_overrides_and_on_board_fill_in_the_nulls(models, capsys):
    capsys.readouterr()
    args = ["energy", str(models["elsh"]), "--samples", "10", "--json", "--on-board"]
    args += ["--instructions", "1e6", "--cpi", "1.5", "--amps-per-mhz", "1e-4"]
    args += ["--core-volts", "1.1", "--profile", "rp2350", "--profile", "pi4"]
    assert main(args) == 0
    est = json.loads(capsys.readouterr().out)["inference"]["estimates"]
    assert est["rp2350"]["joules_low"] == pytest.approx(1e6 * 1.5 * 1.1 * 1e-4 / 1e6)
    assert est["pi4"]["joules_low"] > 0


def test_every_profile_figure_names_its_source(capsys):
    assert main(["energy", "--list-profiles", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for prof in out["profiles"].values():
        for key, fig in prof["figures"].items():
            assert fig["source"], key
            if fig["value"] is None:
                assert fig["note"], key  # a null says why
    for prof in PROFILES.values():  # unverified figures are never used
        for fig in prof.figures.values():
            assert fig.verified or not fig.usable
    assert main(["energy", "--list-profiles"]) == 0
    assert "verify before citing" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--meter", "nosuch"], "expected one of"),
        (["--meter", "ina260:1:0x99"], "outside 0x03..0x77"),
        (["--meter", "ina219:one:0x40"], "I2C bus"),
        (["--meter", "powercap:/no/such/zone"], "no powercap energy counter"),
        (["--meter", "csv:/no/such.csv"], "no such power log"),
        (["--fit"], "needs --meter"),
        (["--plot", "/no/such/folder/e.png"], "does not exist"),
        (["--dense", "--active", "0.5"], "takes no --active"),
    ],
)
def test_bad_input_is_one_line_and_status_2(models, extra, message):
    cmd = [*CLI, "energy", str(models["elsh"]), *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""


@pytest.mark.parametrize(
    "args,message",
    [
        (["energy"], "give a MODEL"),
        (["energy", "/no/such/model.elsh"], "no such"),
        (["energy", "MODEL", "--profile", "nosuch"], "expected one of"),
        (["energy", "MODEL", "--samples", "0"], "positive"),
    ],
)
def test_bad_arguments(models, args, message):
    args = [str(models["elsh"]) if a == "MODEL" else a for a in args]
    res = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and message in res.stderr
    assert "Traceback" not in res.stderr


def test_plot_is_written(models, capsys):
    # matplotlib comes with the dev extra (a dependency of mlxtend): no skip
    png = models["dir"] / "e.png"
    assert main(["energy", str(models["elsh"]), "--samples", "10", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "horowitz45" in out and "never add them" in out


def test_plot_without_matplotlib_is_a_clear_error(models, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "matplotlib" else real(n, *a)
    )
    png = models["dir"] / "none.png"
    assert main(["energy", str(models["elsh"]), "--plot", str(png)]) == 2
    assert not png.exists()
