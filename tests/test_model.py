"""Network API: training works, dense and LSH agree on the cost model, save/load round-trips,
bad inputs and corrupt files get clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from edge_lsh import LSHConfig, ModelFileError, Network, TrainConfig


def blobs(n: int = 600, d: int = 32, classes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (classes, d))
    y = rng.integers(0, classes, n)
    x = centers[y] + 0.3 * rng.normal(0, 1, (n, d))
    return np.abs(x).astype(np.float32), y.astype(np.int32)


def test_lsh_network_learns_and_counts_fewer_multiplications():
    x, y = blobs()
    net = Network(32, [200], 4, LSHConfig(active_fraction=0.1, family="ternary", bits=3), seed=0)
    reports = net.fit(x[:500], y[:500], epochs=5, train=TrainConfig(lr=0.02))
    assert reports[-1].loss < reports[0].loss
    ev = net.evaluate(x[500:], y[500:])
    assert ev["accuracy"] > 0.9
    # 20 active of 200 hidden: 20*32 + 20*4 multiplications, ternary hashing adds none
    assert ev["multiplications_per_sample"] == 20 * 32 + 20 * 4
    assert ev["hash_multiplications_per_sample"] == 0
    assert ev["dense_multiplications_per_sample"] == 32 * 200 + 200 * 4


def test_dense_network_counts_every_multiplication():
    x, y = blobs(100)
    net = Network(32, [50, 20], 4, None, seed=0)
    ev = net.evaluate(x, y)
    assert ev["multiplications_per_sample"] == 32 * 50 + 50 * 20 + 20 * 4
    assert ev["multiplication_fraction"] == 1.0


def test_simhash_counts_its_projection_multiplies():
    net = Network(64, [100], 3, LSHConfig(family="simhash", bits=4, tables=10, pool=8), seed=0)
    x = np.random.default_rng(0).random((5, 64), dtype=np.float32)
    ev = net.evaluate(x, np.zeros(5, dtype=np.int32))
    assert ev["hash_multiplications_per_sample"] == 10 * 4 * 8  # L * K * hashed values


def test_same_seed_same_model_different_seed_different_model():
    x, y = blobs(200)
    nets = [Network(32, [64], 4, LSHConfig(), seed=s) for s in (3, 3, 4)]
    for n in nets:
        n.fit(x, y, epochs=2)
    a, b, c = (n.layer_arrays(0)["w"] for n in nets)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_save_load_round_trip_and_fine_tune(tmp_path):
    x, y = blobs(300)
    net = Network(32, [64], 4, LSHConfig(family="dwta", bits=6), seed=1)
    net.fit(x, y, epochs=2)
    path = tmp_path / "m.npz"
    net.save(path)
    back = Network.load(path)
    assert back.epochs_trained == 2
    assert np.array_equal(back.predict(x), net.predict(x))
    assert np.array_equal(back.layer_arrays(0)["bucket_ids"], net.layer_arrays(0)["bucket_ids"])
    # fine-tuning the loaded copy matches continuing the original exactly
    net.fit(x, y, epochs=1)
    back.fit(x, y, epochs=1)
    assert np.array_equal(back.layer_arrays(0)["w"], net.layer_arrays(0)["w"])
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary left behind


def test_bad_inputs_are_rejected_with_clear_messages():
    net = Network(8, [16], 3, LSHConfig(active_fraction=0.25), seed=0)
    good = np.zeros((4, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="shape"):
        net.predict(np.zeros((4, 7)))
    bad = good.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.predict(bad)
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        net.fit(good, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="labels have shape"):
        net.fit(good, np.array([0, 1]))
    with pytest.raises(ValueError, match="whole numbers"):
        net.fit(good, np.array([0, 1.5, 2, 1]))
    with pytest.raises(ValueError, match="lr"):
        net.fit(good, np.array([0, 1, 2, 1]), train=TrainConfig(lr=-1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"active_fraction": 0.0}, "active_fraction"),
        ({"family": "minhash"}, "family"),
        ({"bits": 16}, "bits"),
        ({"tables": 0}, "tables"),
        ({"dwta_bin": 6}, "dwta_bin"),
        ({"select": "best"}, "select"),
    ],
)
def test_bad_lsh_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Network(8, [16], 3, LSHConfig(**kwargs))


def test_load_rejects_missing_truncated_and_corrupt_files(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        Network.load(tmp_path / "none.npz")
    net = Network(16, [32], 3, LSHConfig(active_fraction=0.25), seed=0)
    path = tmp_path / "m.npz"
    net.save(path)
    raw = path.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError):
        Network.load(tmp_path / "trunc.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError):
        Network.load(tmp_path / "junk.npz")


def test_load_rejects_out_of_range_table_entries(tmp_path):
    """A file whose zip is intact but whose tables point outside the layer must not reach C."""
    net = Network(16, [32], 3, LSHConfig(active_fraction=0.25, bits=2, tables=4), seed=0)
    arrays = net.layer_arrays(0)
    t, b = np.argwhere(arrays["bucket_len"] > 0)[0]
    arrays["bucket_ids"][t, b, 0] = 5000  # neuron id beyond the 32 neurons
    path = tmp_path / "bad.npz"
    net.save(path)
    with pytest.raises(ModelFileError, match="corrupt"):
        Network.load(path)
    net2 = Network(16, [32], 3, LSHConfig(active_fraction=0.25, bits=2, tables=4), seed=0)
    net2.layer_arrays(0)["w"][0, 0] = np.inf
    net2.save(path)
    with pytest.raises(ModelFileError, match="corrupt"):
        Network.load(path)


def test_exact_selection_is_the_true_top_k():
    """select='exact' (the oracle LSH approximates) keeps the k largest pre-activations."""
    rng = np.random.default_rng(5)
    net = Network(12, [40], 3, LSHConfig(active_fraction=0.2, select="exact"), seed=2)
    w, b = net.layer_arrays(0)["w"], net.layer_arrays(0)["b"]
    b[:] = rng.normal(0, 0.1, 40).astype(np.float32)
    for x in rng.random((20, 12), dtype=np.float32):
        net.predict(x[None])
        z = w.astype(np.float64) @ x + b
        expected = np.sort(np.argsort(-z, kind="stable")[:8])
        assert np.array_equal(net.last_active(0), expected)
    ev = net.evaluate(rng.random((4, 12), dtype=np.float32), np.zeros(4, dtype=np.int32))
    assert ev["multiplications_per_sample"] == 40 * 12 + 8 * 12 + 8 * 3  # scoring costs all 40


def test_set_active_fraction_changes_k_until_restored():
    net = Network(10, [100], 3, LSHConfig(active_fraction=0.05), seed=0)
    x = np.ones((1, 10), dtype=np.float32)
    net.predict(x)
    assert len(net.last_active(0)) == 5
    net.set_active_fraction(0.2)
    net.predict(x)
    assert len(net.last_active(0)) == 20
    net.set_active_fraction(None)
    net.predict(x)
    assert len(net.last_active(0)) == 5
    with pytest.raises(ValueError):
        net.set_active_fraction(1.5)


def test_runaway_learning_rate_warns():
    x, y = blobs(200)
    net = Network(32, [32], 4, LSHConfig(active_fraction=0.25), seed=0)
    with pytest.warns(RuntimeWarning, match="learning rate may be too high"):
        net.fit(x, y, epochs=2, train=TrainConfig(lr=1e6))
