"""Defaults shared by the CLI, the demo and the benchmarks (tuned on digits and MNIST-5k;
see tools/bench/README.md for the sweeps behind them)."""

from edge_lsh.model import LSHConfig, TrainConfig

HIDDEN = 1000
EPOCHS = 16
LSH = LSHConfig()
TRAIN = TrainConfig()
