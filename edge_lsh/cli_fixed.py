"""TEMPORARY alias during the package restructure (issue 8): use edge_lsh.cli._fixed."""

import sys

import edge_lsh.cli._fixed as _target

sys.modules[__name__] = _target
