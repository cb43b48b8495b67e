"""edge-lsh: hashing-based sparse neural networks for small devices."""

from edge_lsh.network import EpochReport, LSHConfig, ModelFileError, Network, TrainConfig

__all__ = ["Network", "LSHConfig", "TrainConfig", "EpochReport", "ModelFileError", "__version__"]
__version__ = "0.1.0"
