"""The ``aioface`` command: a thin layer over the library (``main`` is the console script)."""

from ._ops import main as main

__all__ = ["main"]
