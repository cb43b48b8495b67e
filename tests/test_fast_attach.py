"""elsh_model_attach_fast (bucket bitmaps counted bit-sliced, the dense hash matrix in int32,
row sums): the same logits, predictions and active sets as the compact kernel and the numpy
oracle, bit for bit, on the golden models, random valid models (extreme centers push the hash
matrix onto its int64 fallback) and trained models with many tables and wide layers (the
16-table adder tree, several bitmap words)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from test_qreference import random_qmodel, special_inputs

from edge_lsh.fixed import FixedPointModel
from edge_lsh.format import elsh_bytes, read_elsh
from edge_lsh.network import LSHConfig, Network
from edge_lsh.oracle import qreference as Q
from edge_lsh.quantize import quantize

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = sorted((ROOT / "export" / "golden").glob("*.elsh"))


def assert_same(data: bytes, X: np.ndarray) -> FixedPointModel:
    compact, fast = FixedPointModel(data), FixedPointModel(data, fast=True)
    want = Q.logits_batch(read_elsh(data), X)
    for r, row in enumerate(X):
        p0, l0 = compact.forward_q(row)
        p1, l1 = fast.forward_q(row)
        assert l1.tolist() == l0.tolist() == want[r].tolist()
        assert p1 == p0
        for layer in range(fast.n_layers):
            assert np.array_equal(fast.last_active(layer), compact.last_active(layer))
    return fast


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_models(path):
    data = path.read_bytes()
    rng = np.random.default_rng(1)
    assert_same(data, special_inputs(read_elsh(data), rng, 30))


@pytest.mark.parametrize("seed", range(12))
def test_random_valid_models(seed):
    qm = random_qmodel(np.random.default_rng(500 + seed))
    assert_same(
        elsh_bytes(qm, tables=bool(seed % 2)), special_inputs(qm, np.random.default_rng(seed), 20)
    )


@pytest.mark.parametrize(
    ("family", "tables", "bits", "width"),
    [
        ("ternary", 100, 3, 300),
        ("simhash", 37, 4, 200),
        ("ternary", 16, 5, 70),
        ("simhash", 33, 1, 129),
    ],
)
def test_trained_models_many_tables(family, tables, bits, width):
    rng = np.random.default_rng(tables)
    x = np.abs(rng.normal(size=(120, 40))).astype(np.float32)
    y = rng.integers(0, 4, 120)
    cfg = LSHConfig(active_fraction=0.1, family=family, bits=bits, tables=tables, pool=4)
    net = Network(40, [width, width // 2], 4, cfg, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(x, y, epochs=1)
    qm = quantize(net, x)
    data = elsh_bytes(qm)
    fast = assert_same(
        data, np.vstack([special_inputs(qm, rng, 20), FixedPointModel(data).quantize_input(x[:40])])
    )
    assert fast.fast
    # and at other active fractions (more candidates than k, and fewer: padding)
    for frac in (0.02, 0.5, 1.0):
        compact, quick = FixedPointModel(data), FixedPointModel(data, fast=True)
        compact.set_active(frac)
        quick.set_active(frac)
        assert np.array_equal(compact.predict_logits(x)[1], quick.predict_logits(x)[1])


def test_fast_is_only_taken_when_a_layer_qualifies():
    path = next(p for p in GOLDEN if p.stem == "dwta_sparse_union")  # DWTA, union: nothing to add
    m = FixedPointModel.load(path, fast=True)
    assert m.fast is False


class FastModel(FixedPointModel):
    """FixedPointModel attached with elsh_model_attach_fast whatever the caller asks."""

    def __init__(self, data, name="<bytes>", fast=False):  # noqa: ARG002
        super().__init__(data, name, fast=True)


def test_training_a_fast_attached_model_drops_the_stale_additions(monkeypatch):
    """elsh_qtrain_attach on a network attached with elsh_model_attach_fast: training changes
    weights and tables, so the bitmaps and row sums are dropped and every step and prediction
    is that of the compact network."""
    import edge_lsh.finetune as finetune

    qm = random_qmodel(np.random.default_rng(9), extreme=False)
    path = next(p for p in GOLDEN if p.stem == "ternary_seed_tables")
    rng = np.random.default_rng(2)
    for data in (path.read_bytes(), elsh_bytes(qm)):
        model = FixedPointModel(data)
        X = special_inputs(read_elsh(data), rng, 24)
        labels = rng.integers(0, model.n_classes, X.shape[0])
        compact = finetune.FixedTrainer(data, optimizer="sgd", lr=0.5)
        monkeypatch.setattr(finetune, "FixedPointModel", FastModel)
        quick = finetune.FixedTrainer(data, optimizer="sgd", lr=0.5)
        monkeypatch.undo()
        assert quick.model.fast or not FixedPointModel(data, fast=True).fast
        for row, label in zip(X, labels, strict=True):
            assert quick.step_q(row, int(label)) == compact.step_q(row, int(label))
            assert np.array_equal(quick.model.forward_q(row)[1], compact.model.forward_q(row)[1])
