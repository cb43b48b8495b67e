"""TEMPORARY alias during the package restructure (issue 8): use edge_lsh.cli.argtypes."""

import sys

import edge_lsh.cli.argtypes as _target

sys.modules[__name__] = _target
