"""The fine-tuning entry points of issue 10: `edge-lsh finetune` (the CLI), `edge-lsh-run
--train` (the C runner, no Python) and the runner `deploy --target pi4` ships, run under
qemu-aarch64. All three take the same integer steps, so they write the same bytes as the
Python API (edge_lsh.finetune.FixedTrainer) for the same rows and settings; and bad input is
one line on stderr and exit status 2, before any training."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_lsh import finetune as ft
from edge_lsh.cli import main
from edge_lsh.data import load
from edge_lsh.fixed import FixedPointModel
from edge_lsh.native import ffi, lib
from edge_lsh.network import Network

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "export" / "golden"
MODEL = GOLDEN / "membership_tables.elsh"  # 64-96-10, digits-shaped
JSON_KEYS = {
    "accuracy_before",
    "accuracy",
    "train_seconds",
    "samples_per_second",
    "multiplications_per_sample",
    "dense_multiplications_per_sample",
    "arena_bytes",
}


def have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)


@pytest.fixture(scope="module")
def runner() -> Path:
    assert have("make", "cc"), "the C runner tests need make and cc (required test tools)"
    build = subprocess.run(
        ["make", "-s", "-C", str(ROOT / "native"), "runner"], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    return ROOT / "native" / "build" / "edge-lsh-run"


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """300 digits training rows as a CSV of features and labels (%.9g: strtof reads back the
    very float32 values)."""
    d = load("digits", seed=0, limit=300)
    path = tmp_path_factory.mktemp("ft_rows") / "train.csv"
    with open(path, "w") as f:
        for x, y in zip(d.x_train, d.y_train):
            f.write(",".join(f"{v:.9g}" for v in x) + f",{int(y)}\n")
    return path, d.x_train, d.y_train


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--optimizer", "sgd", "--lr", "0.05", "--seed", "3"],
        ["--train-layers", "last"],
        ["--optimizer", "sgd", "--momentum", "0.25"],
        ["--momentum", "0"],
        ["--lr", "0.02", "--last-lr", "0.01"],
        ["--optimizer", "sgd", "--lr", "0.03", "--last-lr", "0.007", "--train-layers", "last"],
    ],
)
def test_cli_json_and_the_same_bytes_as_the_api_and_the_runner(
    tmp_path, capsys, rows, runner, extra
):
    out = tmp_path / "cli.elsh"
    args = ["finetune", str(MODEL), "--data", "digits", "--limit", "300", "--epochs", "2"]
    assert main([*args, "--out", str(out), "--json", "--quiet", *extra]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert JSON_KEYS <= set(summary)
    assert summary["epochs"] == 2 and summary["model"] == str(out)
    assert summary["momentum"] == float(dict(zip(extra[::2], extra[1::2])).get("--momentum", 0.5))
    assert 0 < summary["multiplications_per_sample"] < summary["dense_multiplications_per_sample"]
    assert summary["samples_per_second"] > 0 and summary["train_seconds"] > 0
    # the file: a valid model whose accuracy is the one reported
    d = load("digits", seed=int(dict(zip(extra[::2], extra[1::2])).get("--seed", 0)), limit=300)
    model = FixedPointModel.load(out)
    assert model.evaluate(d.x_test, d.y_test)["accuracy"] == summary["accuracy"]
    assert model.arena_bytes + 0 <= summary["arena_bytes"]
    # the Python API, same settings: the same bytes
    opts = dict(zip(extra[::2], extra[1::2]))
    lr = float(opts.get("--lr", ft.DEFAULT_LR))
    last_lr = float(opts.get("--last-lr", lr * ft.DEFAULT_LAST_LR_FACTOR))
    assert summary["lr"] == lr and summary["last_lr"] == last_lr
    tr = ft.FixedTrainer(
        MODEL,
        train_layers=opts.get("--train-layers", "all"),
        optimizer=opts.get("--optimizer", "adagrad"),
        lr=lr,
        momentum=float(opts.get("--momentum", ft.DEFAULT_MOMENTUM)),
        seed=int(opts.get("--seed", 0)),
    )
    tr.fit(d.x_train, d.y_train, epochs=2, last_lr=last_lr)
    api = tr.save_bytes()
    assert out.read_bytes() == api
    assert api != MODEL.read_bytes()  # it did train
    # the C runner on the same rows (for --seed 0: the rows of the fixture's split)
    if opts.get("--seed", "0") == "0":
        csv, x, y = rows
        assert np.array_equal(x, d.x_train) and np.array_equal(y, d.y_train)
        c_out = tmp_path / "c.elsh"
        res = subprocess.run(
            [
                str(runner),
                str(MODEL),
                "--train",
                str(csv),
                "--epochs",
                "2",
                "--out",
                str(c_out),
                "--no-preprocess",
                *[a for a in extra if a != "--seed"],
            ],
            capture_output=True,
            text=True,
        )
        assert res.returncode == 0, res.stderr
        assert "# saved:" in res.stdout
        assert c_out.read_bytes() == api


def test_defaults_agree():
    """The CLI's, the runner's and the Python API's default optimizer, learning rate and
    momentum; the momentum is the float trainer's (what `train --from` fine-tunes with)."""
    sig = inspect.signature(ft.FixedTrainer).parameters
    parser = __import__("argparse").ArgumentParser()
    sub = parser.add_subparsers()
    from edge_lsh.cli import finetune as cli_ft

    p = cli_ft.add_parser(sub)
    assert p.get_default("lr") == sig["lr"].default
    assert p.get_default("optimizer") == sig["optimizer"].default
    src = (ROOT / "native" / "runner" / "edge_lsh_run.c").read_text()
    m = re.search(r"#define DEFAULT_LR ([0-9.e-]+)", src)
    assert m and float(m.group(1)) == sig["lr"].default
    # the last epoch's rate: half of --lr unless --last-lr says otherwise (fit: lr throughout)
    assert p.get_default("last_lr") is None
    assert inspect.signature(ft.FixedTrainer.fit).parameters["last_lr"].default is None
    m = re.search(r"#define DEFAULT_LAST_LR_FACTOR ([0-9.e-]+)", src)
    assert m and float(m.group(1)) == ft.DEFAULT_LAST_LR_FACTOR
    assert "o->has_last_lr ? o->last_lr : lr * DEFAULT_LAST_LR_FACTOR" in src
    assert "topt.adagrad = 1;" in src and sig["optimizer"].default == "adagrad"
    assert p.get_default("momentum") == sig["momentum"].default
    m = re.search(r"#define DEFAULT_MOMENTUM ([0-9.e-]+)", src)
    assert m and float(m.group(1)) == sig["momentum"].default
    assert "topt.momentum = DEFAULT_MOMENTUM;" in src
    from edge_lsh import defaults

    assert defaults.TRAIN.momentum_start == defaults.TRAIN.momentum_end == sig["momentum"].default


@pytest.mark.skipif(not have("aarch64-linux-gnu-gcc", "qemu-aarch64"), reason="no aarch64 tools")
def test_pi4_runner_under_qemu_writes_the_hosts_bytes(tmp_path, rows, runner):
    """deploy --target pi4 ships the runner; its --train under qemu-aarch64 (Cortex-A72, NEON)
    writes the file the host's runner and the Python API write."""
    from edge_lsh.deploy import deploy

    csv, x, y = rows
    deploy(MODEL, "pi4", tmp_path / "pi4")
    readme = (tmp_path / "pi4" / "README.md").read_text()
    assert "--train" in readme
    args = ["--train", str(csv), "--epochs", "3", "--no-preprocess", "--train-layers", "last"]
    host = subprocess.run(
        [str(runner), str(MODEL), *args, "--out", str(tmp_path / "host.elsh")],
        capture_output=True,
        text=True,
    )
    assert host.returncode == 0, host.stderr
    arm = subprocess.run(
        [
            "qemu-aarch64",
            "-cpu",
            "cortex-a72",
            str(tmp_path / "pi4" / "edge-lsh-run"),
            str(tmp_path / "pi4" / "model.elsh"),
            *args,
            "--out",
            str(tmp_path / "a72.elsh"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert arm.returncode == 0, arm.stderr
    tr = ft.FixedTrainer(MODEL, train_layers="last")
    tr.fit(x, y, epochs=3, last_lr=ft.DEFAULT_LR * ft.DEFAULT_LAST_LR_FACTOR)  # the runner's
    assert (tmp_path / "a72.elsh").read_bytes() == (tmp_path / "host.elsh").read_bytes()
    assert (tmp_path / "host.elsh").read_bytes() == tr.save_bytes()


def run_cli(args: list[str]) -> tuple[int, str]:
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from edge_lsh.cli import main; sys.exit(main())",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return res.returncode, res.stderr


@pytest.fixture(scope="module")
def float_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ft_float") / "m.npz"
    rc = main(
        [
            "train",
            "--data",
            "digits",
            "--hidden",
            "32",
            "--epochs",
            "1",
            "--tables",
            "4",
            "--limit",
            "100",
            "--out",
            str(path),
            "--quiet",
        ]
    )
    assert rc == 0
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["finetune", str(MODEL), "--out", "{tmp}/o.elsh"], "--data"),
        (["finetune", str(MODEL), "--data", "digits", "--out", "{tmp}/no/o.elsh"], "no"),
        (
            ["finetune", "{tmp}/missing.elsh", "--data", "digits", "--out", "{tmp}/o.elsh"],
            "missing.elsh",
        ),
        (["finetune", "{float}", "--data", "digits", "--out", "{tmp}/o.elsh"], "train --from"),
        (
            ["finetune", str(MODEL), "--data", "mnist5k", "--limit", "20", "--out", "{tmp}/o.elsh"],
            "784",
        ),
        (
            [
                "finetune",
                str(MODEL),
                "--data",
                "digits",
                "--train-layers",
                "5",
                "--out",
                "{tmp}/o.elsh",
            ],
            "train layers",
        ),
        (
            [
                "finetune",
                str(MODEL),
                "--data",
                "digits",
                "--train-layers",
                "0",
                "--out",
                "{tmp}/o.elsh",
            ],
            "--train-layers",
        ),
        (
            ["finetune", str(MODEL), "--data", "digits", "--lr", "-1", "--out", "{tmp}/o.elsh"],
            "--lr",
        ),
        (
            ["finetune", str(MODEL), "--data", "digits", "--last-lr", "0", "--out", "{tmp}/o.elsh"],
            "--last-lr",
        ),
        (
            [
                "finetune",
                str(MODEL),
                "--data",
                "digits",
                "--last-lr",
                "1e29",
                "--out",
                "{tmp}/o.elsh",
            ],
            "too large",
        ),
        (
            [
                "finetune",
                str(MODEL),
                "--data",
                "digits",
                "--optimizer",
                "adam",
                "--out",
                "{tmp}/o.elsh",
            ],
            "--optimizer",
        ),
        (
            ["finetune", str(MODEL), "--data", "digits", "--epochs", "0", "--out", "{tmp}/o.elsh"],
            "--epochs",
        ),
        (
            [
                "finetune",
                str(MODEL),
                "--data",
                "digits",
                "--momentum",
                "1",
                "--out",
                "{tmp}/o.elsh",
            ],
            "--momentum",
        ),
        (["finetune", str(MODEL), "--data", "digits"], "--out"),
        (
            [
                "finetune",
                str(MODEL),
                "--data",
                "digits",
                "--shuffle-seed",
                "-1",
                "--out",
                "{tmp}/o.elsh",
            ],
            "--shuffle-seed",
        ),
        (
            ["train", "--data", "digits", "--shuffle-seed", "1", "--out", "{tmp}/o.elsh"],
            "--shuffle-seed needs --from",
        ),
        (
            [
                "deploy",
                str(MODEL),
                "--target",
                "pico2",
                "--finetune",
                "--momentum",
                "1",
                "--out",
                "{tmp}/o.elsh",
            ],
            "--momentum",
        ),
    ],
)
def test_cli_bad_input_is_one_line_and_status_2(tmp_path, float_model, args, message):
    args = [a.format(tmp=tmp_path, float=float_model) for a in args]
    rc, err = run_cli(args)
    assert rc == 2, err
    assert "Traceback" not in err
    assert message in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 or lines[0].startswith("usage:"), err
    assert not (tmp_path / "o.elsh").exists()


def test_runner_bad_input_is_one_line_and_status_2(tmp_path, runner, rows):
    csv, _, _ = rows
    unlabelled = tmp_path / "x.csv"
    unlabelled.write_text("\n".join(",".join(["0.5"] * 64) for _ in range(3)) + "\n")
    out = str(tmp_path / "o.elsh")
    cases = [
        (["--train", str(csv)], "--out"),
        (["--out", out], "go with --train"),
        (["--epochs", "2"], "go with --train"),
        (["--train", str(csv), "--out", out, "--epochs", "0"], "--epochs"),
        (["--train", str(csv), "--out", out, "--train-layers", "x"], "--train-layers"),
        (["--train", str(csv), "--out", out, "--train-layers", "9"], "the model has 2 layers"),
        (["--train", str(csv), "--out", out, "--optimizer", "adam"], "--optimizer"),
        (["--train", str(csv), "--out", out, "--lr", "nan"], "--lr"),
        (["--train", str(csv), "--out", out, "--last-lr", "inf"], "--last-lr"),
        (["--train", str(csv), "--out", out, "--last-lr", "0"], "cannot fine-tune"),
        (["--train", str(csv), "--out", out, "--last-lr", "1e29"], "cannot fine-tune"),
        (["--last-lr", "0.01"], "go with --train"),
        (["--train", str(csv), "--out", out, "--momentum", "1"], "--momentum"),
        (["--train", str(csv), "--out", out, "--momentum", "-0.1"], "--momentum"),
        (["--train", str(csv), "--out", out, "--momentum", "nan"], "--momentum"),
        (["--momentum", "0.5"], "go with --train"),
        (["--train", str(csv), "--out", out, "--seed", "-1"], "--seed"),
        (["--train", str(csv), "--out", out, "--logits"], "--logits"),
        (["--train", str(csv), "--out", str(tmp_path / "nope" / "o.elsh")], "does not exist"),
        (["--train", str(csv), "--out", str(tmp_path)], "is a folder"),
        (["--train", str(unlabelled), "--out", out, "--no-preprocess"], "no label"),
        (["--train", str(tmp_path / "missing.csv"), "--out", out], "missing.csv"),
        (["--train"], "needs a value"),
    ]
    for args, message in cases:
        res = subprocess.run([str(runner), str(MODEL), *args], capture_output=True, text=True)
        assert res.returncode == 2, (args, res.stderr)
        assert message in res.stderr, (args, res.stderr)
        assert res.stderr.startswith("edge-lsh-run: "), (args, res.stderr)
        assert not Path(out).exists(), args


def test_shuffle_seed_orders_both_paths_and_is_deterministic(tmp_path, float_model, capsys):
    """finetune --shuffle-seed S: the bytes of FixedTrainer.fit(shuffle_seed=S), not those of
    the in-order run; train --from --shuffle-seed S: the same model for the same S, another for
    another S (domain_shift.py --seeds gives both paths the same kind of variation)."""
    d = load("digits", seed=0, limit=120)
    out = {}
    for tag, extra in (("in-order", []), ("s3", ["--shuffle-seed", "3"])):
        path = tmp_path / f"{tag}.elsh"
        args = ["finetune", str(MODEL), "--data", "digits", "--limit", "120", "--epochs", "2"]
        assert main([*args, *extra, "--out", str(path), "--quiet"]) == 0
        out[tag] = path.read_bytes()
    tr = ft.FixedTrainer(MODEL)
    last_lr = ft.DEFAULT_LR * ft.DEFAULT_LAST_LR_FACTOR  # finetune's default schedule
    tr.fit(d.x_train, d.y_train, epochs=2, shuffle_seed=3, last_lr=last_lr)
    assert out["s3"] == tr.save_bytes()
    assert out["s3"] != out["in-order"]
    capsys.readouterr()

    weights = {}
    for tag, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        path = tmp_path / f"{tag}.npz"
        args = ["train", "--from", str(float_model), "--data", "digits", "--limit", "100"]
        args += ["--epochs", "1", "--shuffle-seed", seed, "--out", str(path), "--quiet"]
        assert main(args) == 0
        net = Network.load(path)
        weights[tag] = [net.layer_arrays(i)["w"].copy() for i in range(net.n_layers)]
    assert weights["a"] and all(
        np.array_equal(x, y) for x, y in zip(weights["a"], weights["b"], strict=True)
    )
    assert not all(np.array_equal(x, y) for x, y in zip(weights["a"], weights["c"], strict=True))


def test_finetune_recovers_a_rotation_on_digits(tmp_path, capsys):
    """End to end: a digits model trained upright, then `edge-lsh finetune` on rotated
    digits it never saw (tools/finetune/shift.py's rotate25): the accuracy on the rotated
    test split rises by more than 15 points."""
    sys.path.insert(0, str(ROOT / "tools" / "finetune"))
    try:
        import shift
    finally:
        sys.path.pop(0)
    d = load("digits", seed=0)
    half = d.x_train.shape[0] // 2
    up, rot = tmp_path / "up.npz", tmp_path / "rot.npz"
    np.savez(
        up, x_train=d.x_train[:half], y_train=d.y_train[:half], x_test=d.x_test, y_test=d.y_test
    )
    np.savez(
        rot,
        x_train=shift.apply("rotate25", d.x_train[half:]),
        y_train=d.y_train[half:],
        x_test=shift.apply("rotate25", d.x_test),
        y_test=d.y_test,
    )
    base = tmp_path / "base.npz"
    assert (
        main(
            [
                "train",
                "--data",
                f"npz:{up}",
                "--hidden",
                "300",
                "--epochs",
                "8",
                "--out",
                str(base),
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["export", str(base), "--out", str(tmp_path / "base.elsh")]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "finetune",
                str(tmp_path / "base.elsh"),
                "--data",
                f"npz:{rot}",
                "--epochs",
                "3",
                "--out",
                str(tmp_path / "ft.elsh"),
                "--json",
                "--quiet",
            ]
        )
        == 0
    )
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["accuracy"] > s["accuracy_before"] + 0.15, s


@pytest.mark.skipif(not have("arm-none-eabi-gcc", "qemu-system-arm"), reason="no Cortex-M tools")
def test_deploy_pico2_finetune_trains_over_the_uart_and_saves_the_hosts_bytes(tmp_path, capsys):
    """deploy --target pico2 --finetune --check: the QEMU image trains on rows sent over its
    UART, answers each with the host's class and saves to a slot the host's bytes (the check
    raises otherwise); the bundle holds the board image as .uf2 and its README says what is not
    verified on a board here (the RP2350 flash driver)."""
    out = tmp_path / "p2"
    rc = main(
        [
            "deploy",
            str(MODEL),
            "--target",
            "pico2",
            "--finetune",
            "--train-layers",
            "all",
            "--check",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    from edge_lsh.deploy.finetune_fw import N_CHECK_ROWS

    assert summary["checked"] == N_CHECK_ROWS
    names = {Path(f).name for f in summary["files"]}
    assert {"firmware-finetune-rp2350.uf2", "firmware-finetune-qemu-an505.elf"} <= names
    assert (out / "model.elsh").read_bytes() == MODEL.read_bytes()
    readme = (out / "README.md").read_text()
    assert "flash_range_program" in readme and "trained on 24 rows" in readme
    uf2 = (out / "firmware-finetune-rp2350.uf2").read_bytes()
    assert len(uf2) % 512 == 0 and uf2[:4] == b"UF2\n"


def test_deploy_finetune_is_for_pico2_only(tmp_path):
    rc, err = run_cli(
        ["deploy", str(MODEL), "--target", "pi4", "--finetune", "--out", str(tmp_path / "x")]
    )
    assert rc == 2 and "edge-lsh-run --train" in err and "Traceback" not in err


@pytest.mark.parametrize("train_layers", ["all", "last"])
def test_save_in_parts_equals_the_whole_save(train_layers):
    """elsh_qtrain_save_crc + elsh_qtrain_save_part (what the firmware streams into a flash
    slot) give, in pieces of any size, exactly the bytes of elsh_qtrain_save."""
    d = load("digits", seed=0, limit=150)
    for path in sorted(GOLDEN.glob("*.elsh")):
        tr = ft.FixedTrainer(path, train_layers=train_layers)
        if tr.model.n_in != 64:
            continue
        tr.fit(d.x_train, d.y_train, epochs=1)
        whole = tr.save_bytes()
        crc = ffi.new("uint32_t *")
        assert lib.elsh_qtrain_save_crc(tr._tr, crc) == 0
        for piece in (1, 97, 4096):
            got = bytearray()
            for at in range(0, len(whole), piece):
                n = min(piece, len(whole) - at)
                buf = ffi.new("uint8_t[]", n)
                assert lib.elsh_qtrain_save_part(tr._tr, crc[0], at, buf, n) == 0
                got += ffi.buffer(buf, n)
            assert bytes(got) == whole, (path.name, piece)
        buf = ffi.new("uint8_t[]", 2)
        assert (
            lib.elsh_qtrain_save_part(tr._tr, crc[0], len(whole) - 1, buf, 2) == lib.ELSH_ERR_CONFIG
        )
