"""TEMPORARY alias during the package restructure (issue 8): use edge_lsh.network."""

import sys

import edge_lsh.network as _target

sys.modules[__name__] = _target
