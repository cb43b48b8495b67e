"""tools/bench/bench_keras.py without TensorFlow: a clear message and exit status 2 before any
training (a stand-in `tensorflow` package that fails to import, a missing interpreter, a worker
that dies); and with a stand-in TensorFlow that answers the worker's calls, one real run of the
round robin, the table and the JSON (the Keras numbers are the stand-in's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "bench" / "bench_keras.py"
SMALL = ["--limit", "60", "--hidden", "16,16", "--epochs", "2", "--threads", "1"]

FAILING_TF = "raise ImportError(\"No module named 'tensorflow' (test stand-in)\")\n"

# just enough of tf.keras for the worker; accuracy 0.90 + 0.02 per epoch trained
FAKE_TF = """
__version__ = "0.0-stand-in"


class _Threading:
    @staticmethod
    def get_intra_op_parallelism_threads():
        return 0

    get_inter_op_parallelism_threads = get_intra_op_parallelism_threads


class config:
    threading = _Threading


class _History:
    history = {"loss": [0.5]}


class _Model:
    def __init__(self, layers):
        self.epochs = 0

    def compile(self, **kwargs):
        pass

    def count_params(self):
        return 123

    def fit(self, x, y, **kwargs):
        assert kwargs["batch_size"] == 64 and kwargs["epochs"] == 1
        self.epochs += 1
        return _History()

    def evaluate(self, x, y, **kwargs):
        return 0.5, 0.90 + 0.02 * self.epochs


class keras:
    __version__ = "stand-in"
    Sequential = _Model

    class utils:
        @staticmethod
        def set_random_seed(seed):
            pass

    @staticmethod
    def Input(shape):
        return None

    class layers:
        @staticmethod
        def Dense(units, activation=None):
            return None

    class optimizers:
        @staticmethod
        def Adam(learning_rate):
            return None
"""


def run(tmp_path: Path, fake_tf: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if fake_tf is not None:
        pkg = tmp_path / "stand_in" / "tensorflow"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(fake_tf)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(pkg.parent), env.get("PYTHONPATH", "")) if p
        )
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_without_tensorflow_says_how_to_install_and_exits_2(tmp_path):
    res = run(tmp_path, FAILING_TF, *SMALL, "--keras-python", sys.executable)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert "bench_keras.py: error: TensorFlow is not installed for" in res.stderr
    assert "pip install tensorflow-cpu numpy" in res.stderr
    assert "--keras-python /tmp/tf-venv/bin/python" in res.stderr
    assert "epoch 1/" not in res.stderr  # nothing was trained
    assert res.stdout == ""


def test_missing_interpreter_exits_2(tmp_path):
    res = run(tmp_path, None, *SMALL, "--keras-python", str(tmp_path / "no-such-python"))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert "--keras-python" in res.stderr and "cannot run it" in res.stderr


def test_worker_that_dies_exits_2(tmp_path):
    dies = tmp_path / "dies"
    dies.write_text("#!/bin/sh\necho broken >&2\nexit 1\n")
    dies.chmod(0o755)
    res = run(tmp_path, None, *SMALL, "--keras-python", str(dies))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert "the Keras worker" in res.stderr and "failed at start: broken" in res.stderr


def test_round_robin_table_and_json_with_a_stand_in(tmp_path):
    out = tmp_path / "keras.json"
    res = run(tmp_path, FAKE_TF, *SMALL, "--keras-python", sys.executable, "--json", str(out),
              "--targets", "91,93,99")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "Keras/TF-CPU 0.0-stand-in dense, batch 64, Adam" in res.stdout
    assert "edge-lsh 5 % active, 1 thread" in res.stdout
    doc = json.loads(out.read_text())
    keras, lsh = doc["contenders"][0], doc["contenders"][1]
    assert keras["accuracy"] == pytest.approx([0.92, 0.94])
    assert len(keras["seconds"]) == len(lsh["seconds"]) == 2
    assert keras["info"]["parameters"] == 123
    # 91 % reached after epoch 1, 93 % after epoch 2, 99 % never
    assert keras["time_to_target"]["0.91"] == keras["seconds"][0]
    assert keras["time_to_target"]["0.93"] == sum(keras["seconds"])
    assert keras["time_to_target"]["0.99"] is None
    assert keras["epoch_median_seconds"] == keras["seconds"][1]
    assert doc["layers"] == [784, 16, 16, 10] and doc["batch"] == 64
    assert all(0.0 <= a <= 1.0 for a in lsh["accuracy"])
