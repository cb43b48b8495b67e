"""TEMPORARY alias during the package restructure (issue 8): use edge_lsh.oracle.qreference."""

import sys

import edge_lsh.oracle.qreference as _target

sys.modules[__name__] = _target
