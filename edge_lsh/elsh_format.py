"""TEMPORARY alias during the package restructure (issue 8): use edge_lsh.format."""

from edge_lsh.format import *  # noqa: F403
from edge_lsh.format import __all__  # noqa: F401
from edge_lsh.format.layout import NO_LAYER  # noqa: F401
