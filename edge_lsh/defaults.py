"""Defaults shared by the CLI, the demo and the benchmarks.

Tuned on digits (10 network seeds) and MNIST-5k with LSH in the training loop; the sweeps and
their numbers are in tools/bench/TUNING.md. The width matters most: at 5% active, 2000 hidden
neurons give each input 100 of them, and the gap to dense closes; 1000 (the seed's) gives 50.
"""

from edge_lsh.network import DEFAULT_EPOCHS, LSHConfig, TrainConfig

HIDDEN = 2000
EPOCHS = DEFAULT_EPOCHS
LSH = LSHConfig()
TRAIN = TrainConfig()
