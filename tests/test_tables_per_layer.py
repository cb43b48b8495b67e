"""LSHConfig.tables per LSH layer (issue 13): an int gives every LSH layer the same L, a tuple
one L per LSH layer. The kernel's config and the .elsh LAYER section already hold L per layer;
these tests check the Python side: validation, the network built, save/load, the train CLI,
export (the fixed-point C kernel bit-exact with the oracle is in test_fixed_c) and
accuracy.py --set tables=A,B."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_lsh import LSHConfig, Network
from edge_lsh.cli import main
from edge_lsh.format import describe
from edge_lsh.native import lib

ROOT = Path(__file__).resolve().parent.parent


def blobs(n: int = 300, d: int = 24, classes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (classes, d))
    y = rng.integers(0, classes, n)
    x = centers[y] + 0.3 * rng.normal(0, 1, (n, d))
    return np.abs(x).astype(np.float32), y.astype(np.int32)


def tables_of(net: Network) -> list[int | None]:
    return [net.layer_info(i).get("tables") for i in range(net.n_layers)]


def test_a_list_is_kept_as_a_tuple_and_texts_as_the_cli_spells_it():
    cfg = LSHConfig(tables=[100, 25])
    assert cfg.tables == (100, 25) and cfg == LSHConfig(tables=(100, 25))
    assert hash(cfg) == hash(LSHConfig(tables=(100, 25)))
    assert cfg.tables_for(0) == 100 and cfg.tables_for(1) == 25
    assert cfg.tables_text() == "100,25" and LSHConfig(tables=7).tables_text() == "7"
    assert LSHConfig(tables=7).tables_for(3) == 7


@pytest.mark.parametrize(
    "tables, message",
    [
        ((), "at least one count"),
        ((10, 0), "must be in 1.."),
        (0, "must be in 1.."),
        (lib.ELSH_MAX_TABLES + 1, "must be in 1.."),
        ((10, True), "whole number"),
        ((10, 2.5), "whole number"),
        ("10", "whole number"),
    ],
)
def test_bad_tables_are_refused(tables, message):
    with pytest.raises(ValueError, match=message):
        LSHConfig(tables=tables).validate()


def test_each_lsh_layer_gets_its_own_l():
    net = Network(24, [40, 30], 4, LSHConfig(tables=(12, 3)), seed=1)
    assert tables_of(net) == [12, 3, None]
    out = Network(24, [40, 30], 4, LSHConfig(tables=(12, 3, 5)), output_lsh=True, seed=1)
    assert tables_of(out) == [12, 3, 5]
    assert out.layer_arrays(1)["bucket_len"].shape[0] == 3


@pytest.mark.parametrize(
    "tables, output_lsh", [((12,), False), ((12, 3, 5), False), ((1, 2), True)]
)
def test_a_count_per_layer_must_match_the_lsh_layers(tables, output_lsh):
    with pytest.raises(ValueError, match="one count per LSH layer"):
        Network(24, [40, 30], 4, LSHConfig(tables=tables), output_lsh=output_lsh, seed=1)


def test_the_same_l_per_layer_is_the_int_network_byte_for_byte():
    x, y = blobs()
    a = Network(24, [40, 30], 4, LSHConfig(tables=6), seed=2)
    b = Network(24, [40, 30], 4, LSHConfig(tables=(6, 6)), seed=2)
    for net in (a, b):
        net.fit(x, y, epochs=2)
    for i in range(a.n_layers):
        got, want = b.layer_arrays(i), a.layer_arrays(i)
        assert got.keys() == want.keys()
        for key in want:
            assert np.array_equal(got[key], want[key]), (i, key)


def test_save_load_keeps_the_per_layer_tables(tmp_path):
    x, y = blobs()
    net = Network(24, [40, 30], 4, LSHConfig(tables=(9, 2)), seed=3)
    net.fit(x, y, epochs=1)
    net.save(tmp_path / "m.npz")
    back = Network.load(tmp_path / "m.npz")
    assert back.lsh == net.lsh and back.lsh is not None and back.lsh.tables == (9, 2)
    assert tables_of(back) == [9, 2, None]
    assert np.array_equal(back.predict(x), net.predict(x))


def test_train_cli_and_export_carry_the_per_layer_tables(tmp_path, capsys):
    pytest.importorskip("sklearn")
    model, elsh = tmp_path / "m.npz", tmp_path / "m.elsh"
    args = ["train", "--data", "digits", "--hidden", "48,32", "--epochs", "1", "--quiet"]
    assert main([*args, "--tables", "10,4", "--out", str(model)]) == 0
    net = Network.load(model)
    assert net.lsh is not None and net.lsh.tables == (10, 4)
    assert tables_of(net) == [10, 4, None]
    capsys.readouterr()
    assert main(["export", str(model), "--out", str(elsh), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    layers = describe(elsh)["layers"]
    assert [layer["hash"]["tables"] for layer in layers[:2]] == [10, 4]
    # the .elsh file in the C kernel gives what export measured
    assert main(["eval", str(elsh), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["accuracy"] == exported["fixed_accuracy"]


@pytest.mark.parametrize(
    "value, message",
    [
        ("10,0", "every number of tables must be >= 1"),
        ("a,b", "expected a number of tables like 100"),
        ("10,", "expected a number of tables like 100"),
        ("10,4,2", "one count per LSH layer, and this network has 2 LSH layer(s)"),
        ("5000", "must be in 1..1024"),
    ],
)
def test_train_cli_bad_tables_exit_2(value, message, tmp_path, capsys):
    args = ["train", "--data", "digits", "--hidden", "16,16", "--epochs", "1", "--quiet"]
    try:  # argparse exits with 2 on a malformed word; main returns 2 on a refused config
        status = main([*args, "--tables", value, "--out", str(tmp_path / "m.npz")])
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "m.npz").exists()


def test_accuracy_script_takes_tables_per_layer(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "acc.json"
    args = ["--data", "digits", "--hidden", "32,16", "--epochs", "1", "--seeds", "0"]
    res = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench" / "accuracy.py"), *args]
        + ["--compare", "none", "--recall", "50", "--set", "tables=8,3", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(out.read_text())
    assert summary["lsh"]["tables"] == [8, 3]
    assert "L=8,3" in res.stdout
