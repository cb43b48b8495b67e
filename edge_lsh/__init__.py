"""edge-lsh: hashing-based sparse neural networks for small devices."""

from edge_lsh._version import __version__
from edge_lsh.errors import (
    DataError,
    DeployError,
    EdgeLshError,
    ElshFormatError,
    ModelFileError,
    NativeError,
    OutputPathError,
)
from edge_lsh.finetune import FixedTrainer
from edge_lsh.fixed import FixedPointModel
from edge_lsh.network import EpochReport, LSHConfig, Network, TrainConfig

__all__ = [
    "Network",
    "LSHConfig",
    "TrainConfig",
    "EpochReport",
    "FixedPointModel",
    "FixedTrainer",
    "EdgeLshError",
    "DataError",
    "ModelFileError",
    "ElshFormatError",
    "OutputPathError",
    "NativeError",
    "DeployError",
    "__version__",
]
