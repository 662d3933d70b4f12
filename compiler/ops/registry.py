"""The op table's machinery: `OpDef`, the `@op` decorator, `Param`, attribute validation.

An op is defined once, by a shape rule whose Python signature *is* the op's signature:
positional parameters are tensor inputs (`*xs` for a variadic one), keyword-only parameters
are attributes, in the order the language accepts them positionally, with their defaults.
The decorator adds the weights (`params`), the numpy meaning (`evaluate`) and the FLOP count.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, NewType

from ..ir import Dim, TensorType, Type
from ..lazy import numpy as np
from ..weights import canonical_initializer

OPS: dict[str, OpDef] = {}
# Other names the language accepts for an op (Keras' aliases); the IR always uses the op's own.
ALIASES: dict[str, str] = {}


def lookup(name: str) -> OpDef:
    """The op a name in a .net file calls: an op's own name or an alias of it."""
    return OPS[ALIASES.get(name, name)]


class ShapeError(Exception):
    """A shape, dtype or attribute rule failed; the caller attaches the node's span."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


# Layer attributes: what a Keras layer holds beside its op, given by name only and kept off
# the op's IR node. An `Init` attribute (`kernel_init`, ...) sets the initializer of the
# weights its op's params rule gives it to; `activation` adds the activation after the op.
Init = NewType("Init", str)  # an initializer's canonical text (netc.weights.Initializer)
LayerActivation = NewType("LayerActivation", str)  # a Keras activation name, LAYER_ACTIVATIONS
# Keras' default initializers, as attribute defaults
ZEROS, ONES, GLOROT_UNIFORM, ORTHOGONAL, UNIFORM = (
    Init(name) for name in ("zeros", "ones", "glorot_uniform", "orthogonal", "uniform")
)

# Keras' activation strings (keras.activations.get) -> the op and attributes that compute
# exactly that activation; "linear" adds nothing.
LAYER_ACTIVATIONS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "linear": None,
    "relu": ("relu", {}),
    "relu6": ("relu6", {}),
    "sigmoid": ("sigmoid", {}),
    "tanh": ("tanh", {}),
    "softmax": ("softmax", {"axis": -1}),
    "softplus": ("softplus", {}),
    "silu": ("silu", {}),
    "swish": ("silu", {}),
    "gelu": ("gelu", {"approximate": False}),
    "elu": ("elu", {"alpha": 1.0}),
    "leaky_relu": ("leaky_relu", {"alpha": 0.2}),  # keras.activations.leaky_relu's slope
    "hard_sigmoid": ("hard_sigmoid", {}),
    "hard_silu": ("hard_swish", {}),
    "hard_swish": ("hard_swish", {}),
    "exponential": ("exp", {}),
}


@dataclass(frozen=True)
class Param:
    """A weight an op instance owns: its shape and its initializer (Keras' default unless the
    layer's `*_init` attribute says otherwise)."""

    shape: tuple[int, ...]
    init: str = "zeros"  # an initializer's canonical text, see netc.weights
    dtype: str | None = None  # None: the dtype of the op's first input
    trainable: bool = True


@dataclass(frozen=True)
class Infer:
    """A shape rule's result when it also canonicalizes attributes (stored in the IR)."""

    type: Type
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttrSpec:
    name: str
    hint: Any  # the resolved annotation
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


Evaluate = Callable[[Sequence["np.ndarray"], Mapping[str, Any]], Any]


@dataclass(frozen=True)
class OpDef:
    """Everything netc knows about one op, in one place."""

    name: str
    inputs: tuple[str, ...]  # tensor input names
    variadic: bool  # the last input takes any number (>= 1) of tensors
    attrs: tuple[AttrSpec, ...]
    rule: Callable[..., Type | Infer]
    evaluate: Evaluate
    params: Callable[..., dict[str, Param]] | None
    flops: Callable[[Sequence[TensorType], Type, Mapping[str, Any]], int] | None
    doc: str
    category: str

    @cached_property
    def attr_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attrs)

    @cached_property
    def layer_attrs(self) -> tuple[str, ...]:
        """The layer attributes (initializers, activation): by name only, not in the IR node."""
        return tuple(a.name for a in self.attrs if is_layer_attr(a.hint))

    @cached_property
    def positional_attrs(self) -> tuple[AttrSpec, ...]:
        """The attributes a call may give by position, in order."""
        return tuple(a for a in self.attrs if not is_layer_attr(a.hint))

    def infer(
        self, in_types: Sequence[TensorType], attrs: Mapping[str, Any]
    ) -> tuple[Type, dict[str, Any]]:
        """Run the shape rule: (output type, canonical attributes). Raises ShapeError."""
        result = self.rule(*in_types, **attrs)
        if isinstance(result, Infer):
            return result.type, {**attrs, **result.attrs}
        return result, dict(attrs)

    def param_specs(
        self, in_types: Sequence[TensorType], attrs: Mapping[str, Any]
    ) -> dict[str, Param]:
        """The weights of one instance, in input order, from its data inputs' types."""
        return self.params(*in_types, **attrs) if self.params else {}

    def count_flops(
        self, in_types: Sequence[TensorType], out: Type, attrs: Mapping[str, Any]
    ) -> int:
        """Floating-point operations per sample (symbolic dims count as 1)."""
        if self.flops is not None:
            return int(self.flops(in_types, out, attrs))
        return sum(t.numel() for t in (out if isinstance(out, tuple) else (out,)))


def op(
    name: str,
    *,
    evaluate: Evaluate,
    params: Callable[..., dict[str, Param]] | None = None,
    flops: Callable[..., int] | None = None,
    category: str = "core",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated shape rule as op `name` (see the module docstring)."""

    def register(rule: Callable[..., Any]) -> Callable[..., Any]:
        assert name not in OPS, f"op {name} defined twice"
        hints = typing.get_type_hints(rule)
        inputs, attrs, variadic = [], [], False
        for p in inspect.signature(rule).parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                inputs.append(p.name)
            elif p.kind == p.VAR_POSITIONAL:
                inputs.append(p.name)
                variadic = True
            elif p.kind == p.KEYWORD_ONLY:
                attrs.append(AttrSpec(p.name, hints[p.name], p.default))
        OPS[name] = OpDef(
            name,
            tuple(inputs),
            variadic,
            tuple(attrs),
            rule,
            evaluate,
            params,
            flops,
            inspect.cleandoc(rule.__doc__ or ""),
            category,
        )
        return rule

    return register


# --- attribute values -------------------------------------------------------------------------


def is_layer_attr(hint: Any) -> bool:
    """Whether an attribute of this type is a layer attribute (see `Init`)."""
    return hint is Init or LayerActivation in typing.get_args(hint) or hint is LayerActivation


_NAMES = {
    Init: ("an initializer", "initializer", "initializers"),
    LayerActivation: ("an activation name", "activation name", "activation names"),
    int: ("an int", "int", "ints"),
    float: ("a float", "float", "floats"),
    bool: ("a bool", "bool", "bools"),
    str: ("a string", "string", "strings"),
}


def describe_hint(hint: Any, form: int = 0) -> str:
    """An annotation in the user's words: `an int`, `"same" or "valid"`, `a list of ints`.
    `form` 0 is with an article, 1 bare (inside a tuple), 2 plural."""
    origin = typing.get_origin(hint)
    if hint is type(None):
        return "none"
    if origin is Literal:
        return " or ".join(
            f'"{a}"' if isinstance(a, str) else str(a) for a in typing.get_args(hint)
        )
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_hint(a, form) for a in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            inner = describe_hint(args[0], 2)
            return f"a list of {inner}" if form != 2 else f"lists of {inner}"
        text = "(" + ", ".join(describe_hint(a, 1) for a in args) + ")"
        return text + (" pairs" if len(args) == 2 else " tuples") if form == 2 else text
    return _NAMES[hint][form] if hint in _NAMES else str(hint)


def convert_attr(value: Any, hint: Any) -> Any:
    """`value` checked against `hint` and normalized (lists become tuples, ints floats);
    raises ValueError when it does not fit."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if hint is type(None):
        if value is None:
            return None
    elif origin is Literal:
        if value in typing.get_args(hint) and type(value) in {
            type(a) for a in typing.get_args(hint)
        }:
            return value
    elif origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(hint):
            try:
                return convert_attr(value, arm)
            except ValueError:
                pass
    elif origin is tuple:
        args = typing.get_args(hint)
        if isinstance(value, (list, tuple)):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(convert_attr(v, args[0]) for v in value)
            if len(args) == len(value):
                return tuple(convert_attr(v, a) for v, a in zip(value, args))
    elif hint is Init:
        return Init(str(canonical_initializer(value)))
    elif hint is LayerActivation:
        if isinstance(value, str) and value in LAYER_ACTIVATIONS:
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    raise ValueError(describe_hint(hint))


# --- helpers shared by shape rules -------------------------------------------------------------


def expect_float(op_name: str, x: TensorType) -> None:
    if not x.is_float:
        raise ShapeError(f"{op_name} needs a floating-point input, got {x}")


def expect_rank(op_name: str, x: TensorType, *ranks: int, what: str = "input") -> None:
    if x.rank not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ShapeError(f"{op_name} needs a rank-{want} {what}, got {x}")


def normalize_axis(op_name: str, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"{op_name}: axis {axis} is out of range for rank {rank}")
    return axis % rank


def broadcast_shapes(op_name: str, a: Sequence[Dim], b: Sequence[Dim]) -> tuple[Dim, ...]:
    """Numpy broadcasting over possibly symbolic dims; a symbol broadcasts only with 1 or itself."""
    out: list[Dim] = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ShapeError(
                f"{op_name} cannot broadcast shapes [{', '.join(map(str, a))}] and "
                f"[{', '.join(map(str, b))}]: dim {x} against {y}"
            )
    return tuple(reversed(out))


def matmul_last(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`x @ w` over x's last axis for a matrix `w`, as one 2-D product (BLAS): numpy runs a
    broadcast product of a 3-D or 4-D `x` in its own loops, 20 times slower."""
    return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1])


def elementwise_flops(per_element: int = 1) -> Callable[..., int]:
    return lambda ins, out, attrs: per_element * out.numel()
