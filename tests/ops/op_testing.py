"""Helpers shared by the op tests: types, and shape rules run as the elaborator runs them."""

from __future__ import annotations

import pytest

from netc.ir import TensorType
from netc.ops import OPS, ShapeError


def t(*shape, dtype="f32"):
    return TensorType(dtype, tuple(shape))


def infer(name, *types, **attrs):
    """The op's (type, canonical attrs), defaults filled in as the elaborator does."""
    opdef = OPS[name]
    full = {a.name: a.default for a in opdef.attrs if not a.required} | attrs
    return opdef.infer(types, full)


def error(name, *types, **attrs):
    """The message of the ShapeError the op's rule raises for these inputs."""
    with pytest.raises(ShapeError) as info:
        infer(name, *types, **attrs)
    return info.value.message
