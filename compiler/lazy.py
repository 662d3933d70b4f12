"""Modules imported on first use, so that `import netc`, `netc --help` and `netc check` start
fast: `from .lazy import numpy as np` reads like the plain import, and numpy loads the first
time one of its names is used (checking a model never needs it)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any


class LazyModule:
    """A stand-in for a module that imports it at the first attribute read, then keeps each
    name it hands out as its own attribute (later reads cost what a module's do)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):  # copy, pickle and inspect probe dunders: not numpy's
            raise AttributeError(attr)
        value = getattr(importlib.import_module(self._name), attr)
        setattr(self, attr, value)
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


if TYPE_CHECKING:
    import numpy
else:
    numpy = LazyModule("numpy")

__all__ = ["LazyModule", "numpy"]
