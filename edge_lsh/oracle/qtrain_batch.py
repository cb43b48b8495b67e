"""A numpy model of the fixed-point trainer in mini-batches (native/src/train_q_threads.c,
elsh_qtrain_steps with a batch size B > 0): what the C kernel gives on any number of threads.

    QBatchTrainer(qm, cfg, batch=B)         as QTrainer (edge_lsh.oracle.qtrain)
    QBatchTrainer.train(xq, labels) -> preds   consecutive batches of B samples (the last shorter)

A batch, sample by sample (the arithmetic of every value is QTrainer's):
  1. key = two draws of the trainer's PRNG (the high word first).
  2. Every sample's forward pass and deltas (steps 1-3) against the weights and tables as they
     are at the batch's start; its prediction is what the batch returns for it.
  3. The updates (step 4) of every sample in sample order. The stochastic rounding of the step
     of neuron j of layer l, for sample s of the batch and input column c (n_in: the bias), uses
     the draw mix64(key ^ (l << 56 | j << 40 | s << 20 | c)) >> 32, not the PRNG.
  4. The tables (step 5) at the batch's end: each neuron (output layer first, ids ascending)
     whose inference row differs from the batch's start moves to the buckets of its new row.
"""

from __future__ import annotations

import numpy as np

from edge_lsh.oracle.prng import mix64
from edge_lsh.oracle.qmodel import QModel
from edge_lsh.oracle.qtrain import QTrainConfig, QTrainer

__all__ = ["QBatchTrainer", "keyed_draw"]


def keyed_draw(key: int, layer: int, neuron: int, sample: int, col: int) -> int:
    """The rounding draw of one parameter in a mini-batch (train_q_threads.c)."""
    return mix64(key ^ (layer << 56 | neuron << 40 | sample << 20 | col)) >> 32


class QBatchTrainer(QTrainer):
    """The oracle of elsh_qtrain_steps with cfg.batch = batch."""

    def __init__(self, qm: QModel, cfg: QTrainConfig, batch: int) -> None:
        super().__init__(qm, cfg)
        if batch < 1:
            raise ValueError(f"batch={batch} must be >= 1")
        self.batch = batch
        self._key = 0
        self._sample = 0

    def _draws(self, li: int, j: int, cols: np.ndarray, n: int) -> np.ndarray:
        return np.array(
            [keyed_draw(self._key, li, j, self._sample, int(c)) for c in cols], dtype=np.int64
        )

    def train(self, xq: np.ndarray, labels: np.ndarray) -> list[int]:
        """All rows of xq in consecutive batches; the predictions before each sample's batch."""
        preds: list[int] = []
        for b in range(0, len(xq), self.batch):
            preds += self.step_batch(xq[b : b + self.batch], labels[b : b + self.batch])
        return preds

    def step_batch(self, xq: np.ndarray, labels: np.ndarray) -> list[int]:
        self._key = self.prng.u32() << 32 | self.prng.u32()
        records = [self._deltas(np.asarray(x).reshape(-1), int(y)) for x, y in zip(xq, labels)]
        top = self.qm.n_layers - 1
        before = {li: self.qm.layers[li].weights.copy() for li in range(self.first, top + 1)}
        for li in range(top, self.first - 1, -1):
            for s, (_, rows, delta) in enumerate(records):
                self._sample = s
                self._update(li, rows[li], delta[li], tables=False)
        for li in range(top, self.first - 1, -1):
            L = self.qm.layers[li]
            if not L.use_lsh:
                continue
            for j in range(L.n_out):
                if not np.array_equal(L.weights[j], before[li][j]):
                    self._move(L, self.state[li], j)
        self.steps += len(records)
        return [pred for pred, _, _ in records]
