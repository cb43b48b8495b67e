"""TEMPORARY alias during the package restructure (issue 8): use edge_lsh.cli.demo."""

import sys

import edge_lsh.cli.demo as _target

sys.modules[__name__] = _target
