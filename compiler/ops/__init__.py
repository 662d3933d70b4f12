"""The op library: every op defined once (signature, shape rule, weights, FLOPs, numpy meaning).

`OPS` maps an op name to its `OpDef`; each family module registers its ops on import.
"""

from . import (  # noqa: F401  (registration)
    activations,
    attention,
    conv,
    core,
    embedding,
    fused,
    math,
    norm,
    pool,
    recurrent,
    reduce,
    shape,
)
from .registry import (
    ALIASES,
    OPS,
    AttrSpec,
    Infer,
    OpDef,
    Param,
    ShapeError,
    convert_attr,
    lookup,
)

__all__ = [
    "ALIASES",
    "OPS",
    "AttrSpec",
    "Infer",
    "OpDef",
    "Param",
    "ShapeError",
    "convert_attr",
    "lookup",
]
