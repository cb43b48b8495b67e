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


def test_issue_acceptance_fake_powercap_at_3w_with_idle_watts_1(tmp_path, capsys):
    """The issue's check, through the command line: a powercap tree at a steady 3 W whose
    counter wraps, --idle-watts 1: joules_per_inference x inferences = 2 W x elapsed_seconds
    within 2%, with the keys the issue names."""
    from test_energy_meters import FakeRapl

    from edge_lsh.cli import main

    model = Path(__file__).resolve().parents[1] / "export" / "golden" / "ternary_seed_tables.elsh"
    with FakeRapl(tmp_path, idle_w=3.0, busy_w=3.0) as rapl:
        argv = ["energy", str(model), "--data", "digits", "--meter", "rapl"]
        argv += ["--powercap-root", str(tmp_path), "--idle-watts", "1", "--seconds", "1.5"]
        argv += ["--repeat", "1", "--warmup", "0", "--samples", "20", "--json"]
        assert main(argv) == 0
        wraps = rapl.wraps
    out = json.loads(capsys.readouterr().out)
    assert wraps >= 3  # at 3 W the 1 J counter wraps every third of a second
    for key in ("meter", "estimate", "joules_per_inference", "joules_per_multiplication",
                "watts_mean", "idle_watts", "inferences", "elapsed_seconds",
                "multiplications_per_inference"):  # fmt: skip
        assert key in out, key
    assert out["estimate"] is False and out["idle_watts"] == 1.0
    assert out["watts_mean"] == pytest.approx(3.0, rel=0.02)
    total = out["joules_per_inference"] * out["inferences"]
    assert total == pytest.approx(2.0 * out["elapsed_seconds"], rel=0.02)
    mults = out["multiplications_per_inference"]
    assert out["joules_per_multiplication"] == pytest.approx(out["joules_per_inference"] / mults)


def test_meter_model_gives_the_estimate_split_by_component(capsys):
    from edge_lsh.cli import main

    model = Path(__file__).resolve().parents[1] / "export" / "golden" / "ternary_seed_tables.elsh"
    argv = ["energy", str(model), "--data", "digits", "--meter", "model:horowitz45", "--json"]
    assert main([*argv, "--samples", "20"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["meter"] == "model:horowitz45" and out["estimate"] is True
    parts = out["components"]
    assert {"arithmetic", "hashing", "weight_memory", "table_memory"} <= set(parts)
    whole = parts["arithmetic"] + parts["hashing"] + parts["weight_memory"] + parts["table_memory"]
    assert whole == pytest.approx(out["joules_per_inference"])
    assert parts["hashing"] > 0  # an LSH model pays for hashing, and it shows


def test_a_profile_file_the_user_edits(tmp_path, capsys):
    from edge_lsh.cli import main
    from edge_lsh.energy.profiles import PROFILES

    prof = PROFILES["horowitz45"].as_dict()
    prof["name"] = "mine"
    prof["figures"]["int8_mult"]["value"] = 0.4  # twice Horowitz's
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(prof))
    model = Path(__file__).resolve().parents[1] / "export" / "golden" / "ternary_seed_tables.elsh"
    argv = ["energy", str(model), "--data", "digits", "--samples", "20", "--json"]
    assert main([*argv, "--meter", f"model:{path}"]) == 0
    mine = json.loads(capsys.readouterr().out)
    assert main([*argv, "--meter", "model:horowitz45"]) == 0
    base = json.loads(capsys.readouterr().out)
    extra = mine["components"]["arithmetic"] + mine["components"]["hashing"]
    extra -= base["components"]["arithmetic"] + base["components"]["hashing"]
    assert extra == pytest.approx(0.2e-12 * base["multiplications_per_inference"])
    del prof["figures"]["int8_mult"]["source"]
    path.write_text(json.dumps(prof))
    assert main([*argv, "--meter", f"model:{path}"]) == 2
    assert "needs a finite value" in capsys.readouterr().err
