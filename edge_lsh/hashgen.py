"""TEMPORARY alias during the package restructure (issue 8): use edge_lsh.oracle.hashgen."""

import sys

import edge_lsh.oracle.hashgen as _target

sys.modules[__name__] = _target
