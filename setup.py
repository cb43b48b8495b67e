"""Only here for cffi's setuptools hook; all metadata lives in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["edge_lsh/_build.py:ffibuilder"])
