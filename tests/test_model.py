"""Network API: training works, dense and LSH agree on the cost model, save/load round-trips,
bad inputs and corrupt files get clear errors."""

from __future__ import annotations

import json

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
    net.save(path, optimizer_state=True)  # the whole state: training continues exactly
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


def _corrupt_copy(net: Network, path, field: str, layer: int, index, value) -> None:
    """Save net, then overwrite one element of a field inside the saved arena bytes (the way a
    damaged or crafted file would look: the zip itself stays intact)."""
    net.save(path)
    with np.load(path) as z:
        config, arena = z["config"], z["arena"].copy()
    if field in ("rng", "train_rng", "samples_seen"):
        obj = net._net.layers[layer] if field == "rng" else net._net
        ptr_ = getattr(obj, "rng" if field == "rng" else field)
        dtype, count = (np.int64, 1) if field == "samples_seen" else (np.uint32, 4)
        view = net._view(ptr_, count, dtype)
    else:
        view = net.layer_arrays(layer)[field]
    offset = view.ctypes.data - net._arena.ctypes.data
    patched = view.copy()
    patched[index] = value
    arena[offset : offset + patched.nbytes] = np.frombuffer(patched.tobytes(), dtype=np.uint8)
    np.savez(path, config=config, arena=arena)


CORRUPTIONS = [
    ("bucket_ids", 0, (0, 0, 0), 5000),  # a neuron id beyond the layer
    ("bucket_len", 0, (0, 0), 999),  # longer than the bucket
    ("neuron_bucket", 0, (0, 0), 77),  # a bucket that does not exist
    ("pad_order", 0, 1, 0),  # not a permutation any more
    ("tern_idx", 0, (0, 0, 0), 60000),  # an input beyond the hashed vector
    ("tern_sign", 0, (0, 0, 0), 0),  # ternary signs are +-1
    ("w", 0, (0, 0), np.inf),
    ("center", 0, 0, np.nan),
    ("rng", 0, slice(None), 0),  # the all-zero PRNG state would hang rejection sampling
    ("train_rng", 0, slice(None), 0),
    ("samples_seen", 0, 0, np.iinfo(np.int64).max),  # would overflow when counting on
]


@pytest.mark.parametrize("field, layer, index, value", CORRUPTIONS)
def test_load_rejects_each_kind_of_corrupt_state(tmp_path, field, layer, index, value):
    """A file whose zip is intact but whose state breaks an invariant must not reach C."""
    cfg = LSHConfig(active_fraction=0.25, family="ternary", bits=2, tables=4, center=True)
    net = Network(16, [32], 3, cfg, seed=0)
    if field == "bucket_ids":  # make sure the first bucket is in use
        a = net.layer_arrays(0)
        t, b = np.argwhere(a["bucket_len"] > 0)[0]
        index = (int(t), int(b), 0)
    path = tmp_path / "bad.npz"
    _corrupt_copy(net, path, field, layer, index, value)
    with pytest.raises(ModelFileError, match="corrupt"):
        Network.load(path)


def test_negative_adagrad_accumulator_is_corrupt(tmp_path):
    net = Network(16, [32], 3, LSHConfig(active_fraction=0.25), seed=0)
    net.save(tmp_path / "ok.npz")
    Network.load(tmp_path / "ok.npz")  # the untouched file loads
    w_g2 = net._view(net._net.layers[0].w_g2, 16 * 32, np.float32)
    w_g2[3] = -1.0  # would become sqrt(-1) = NaN in the next step
    with pytest.raises(ValueError, match="not saved"):
        net.save(tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


def test_load_checks_sizes_before_reading(tmp_path):
    net = Network(16, [32], 3, LSHConfig(active_fraction=0.25), seed=0)
    path = tmp_path / "m.npz"
    net.save(path)
    with np.load(path) as z:
        config, arena = z["config"], z["arena"]
    np.savez(path, config=config, arena=arena[:-64])  # one cache line short
    with pytest.raises(ModelFileError, match="needs"):
        Network.load(path)
    meta = json.loads(config.tobytes())
    meta["epochs_trained"] = -5
    np.savez(path, config=np.frombuffer(json.dumps(meta).encode(), np.uint8), arena=arena)
    with pytest.raises(ModelFileError, match="epochs_trained"):
        Network.load(path)


def test_layer_accessors_check_the_index():
    net = Network(8, [16], 3, LSHConfig(active_fraction=0.25), seed=0)
    for accessor in (net.layer_info, net.last_active, net.layer_ops, net.layer_arrays):
        with pytest.raises(IndexError):
            accessor(5)


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


def test_warm_start_trains_the_first_epochs_with_more_neurons_then_the_configured_k():
    x, y = blobs(200)
    lsh = LSHConfig(active_fraction=0.05)
    warm = TrainConfig(lr=0.02, warm_fraction=0.45, warm_epochs=2)
    assert [warm.active_fraction_at(e, 0.05) for e in range(3)] == pytest.approx([0.45, 0.25, 0.05])
    net = Network(32, [100], 4, lsh, seed=3)
    net.fit(x, y, epochs=3, train=warm)
    assert net.active_counts() == [5, 4]  # inference: the configured k again
    # the same as setting the fractions by hand, epoch by epoch (bit for bit)
    by_hand = Network(32, [100], 4, lsh, seed=3)
    plain = TrainConfig(lr=0.02)
    for fraction in (0.45, 0.25, None):
        by_hand.set_active_fraction(fraction)
        by_hand.fit(x, y, epochs=1, train=plain)
    by_hand.set_active_fraction(None)
    for layer in range(2):
        assert np.array_equal(net.layer_arrays(layer)["w"], by_hand.layer_arrays(layer)["w"])
    # fit() again continues the schedule from the epochs already trained
    in_parts = Network(32, [100], 4, lsh, seed=3)
    in_parts.fit(x, y, epochs=1, train=warm)
    in_parts.fit(x, y, epochs=2, train=warm)
    assert np.array_equal(net.layer_arrays(0)["w"], in_parts.layer_arrays(0)["w"])


@pytest.mark.parametrize(
    "fields",
    [{"warm_epochs": -1}, {"warm_epochs": 1}, {"warm_epochs": 1, "warm_fraction": 1.5}],
)
def test_warm_start_settings_are_checked(fields):
    with pytest.raises(ValueError, match="warm_"):
        TrainConfig(**fields).validate()


def test_runaway_learning_rate_warns():
    x, y = blobs(200)
    net = Network(32, [32], 4, LSHConfig(active_fraction=0.25), seed=0)
    with pytest.warns(RuntimeWarning, match="learning rate may be too high"):
        net.fit(x, y, epochs=2, train=TrainConfig(lr=1e6))


def test_lsh_output_layer_for_many_classes():
    """With output_lsh the softmax layer is sampled too: training still learns 40 classes, and
    inference computes only a fraction of the output neurons."""
    x, y = blobs(n=3000, d=48, classes=40, seed=3)
    # ReLU outputs are non-negative: centering their hash is what lets the output layer find
    # the right class (0.99 here, against 0.54 uncentered with L=30)
    cfg = LSHConfig(active_fraction=0.25, bits=3, tables=100, pool=1, center=True)
    net = Network(48, [200], 40, cfg, output_lsh=True, seed=0)
    net.fit(x[:2400], y[:2400], epochs=4, train=TrainConfig(lr=0.02))
    ev = net.evaluate(x[2400:], y[2400:])
    assert ev["accuracy"] > 0.9
    assert net.active_counts() == [50, 10]
    # hidden: 50 of 200 neurons over 48 inputs; output: 10 of 40 classes over 50 active inputs
    assert ev["multiplications_per_sample"] == 50 * 48 + 10 * 50


def test_saved_file_gets_ordinary_permissions(tmp_path):
    import os
    import stat

    net = Network(4, [8], 2, LSHConfig(active_fraction=0.5), seed=0)
    path = tmp_path / "m.npz"
    net.save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o640)
    net.save(path)  # overwriting keeps the file's own permissions
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
