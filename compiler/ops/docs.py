"""docs/ops.md, generated from the op table (`python -m netc.ops.docs > docs/ops.md`).

One section per category, one entry per op: its signature as the language writes it, its
inputs and attributes, its weights (shapes found by probing the op's weight rule), and its
docstring. tests/test_docs.py checks that docs/ops.md is exactly what this renders.
"""

from __future__ import annotations

import re
import sys
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..ir import TensorType
from ..source import format_value
from . import OPS
from .registry import (
    ALIASES,
    Init,
    OpDef,
    Param,
    ShapeError,
    convert_attr,
    describe_hint,
)

CATEGORIES: dict[str, str] = {
    # category: section title, in the order of the page
    "core": "Core",
    "conv": "Convolution",
    "pool": "Pooling",
    "norm": "Normalization",
    "regularization": "Regularization",
    "activation": "Activations",
    "math": "Tensor arithmetic",
    "reduce": "Reductions",
    "shape": "Shape and layout",
    "recurrent": "Recurrent",
    "attention": "Attention",
    "embedding": "Embedding",
    "fused": "Fused (made by the optimizer, not written in models)",
}

# The ops the language also writes as an operator (see `_TENSOR_OPS` in elaborate.py).
OPERATORS: dict[str, str] = {
    "add": "a + b",
    "sub": "a - b",
    "mul": "a * b",
    "div": "a / b",
    "matmul": "a @ b",
    "neg": "-x",
}

HEADER = """\
# netc ops

<!-- Generated from the op table by `python -m netc.ops.docs > docs/ops.md`; do not edit by
     hand. tests/test_docs.py fails when this file and the op table disagree. -->

Every op netc knows, grouped by what it is for. Each entry gives the op's signature as the
language writes it, its tensor inputs, its attributes, the weights it creates, and its
meaning. The language itself is described in [language.md](language.md).

Conventions that hold for every op:

- **Calling.** Tensor inputs come first, then attributes, positionally in the order of the
  signature or by name: `conv2d(x, 64, 3, padding="same")`. `x |> op(...)` passes `x` as the
  first input, and an op with nothing else to pass needs no parentheses: `x |> relu`.
  `xs...` stands for any number of tensor inputs (`concat(a, b, c)`, or a list:
  `concat([a, b, c])`). Attributes are compile-time values; defaults are shown after `=`.
  Every op also takes `name="..."`, the explicit layer name (see language.md).
- **Layer attributes.** Ops with weights also take, by name only, an initializer per weight
  (`kernel_init`, `bias_init`, ...: Keras' `*_initializer`, defaults Keras') and, for dense
  and the convolutions, `activation` (a Keras activation name, applied after the op in the
  same layer). They are listed under each op; they set the weights' `init` and add the
  activation node, and are not attributes of the op's IR node (language.md).
- **Channels-last.** Images are `[N, H, W, C]`, sequences `[N, T, C]`, volumes
  `[N, D, H, W, C]`, as in Keras. Axis 0 is the batch axis; `axis` attributes count it.
  Backends that prefer channels-first get it from the compiler, not from the model.
- **Symbolic dims.** A dim written as a name (`N`, `T`) is unknown until run time and flows
  through the shape rules: `[N, T, 8] |> dense(4)` is `[N, T, 4]`. Ops that create weights
  need the sizes the weights depend on (usually the channels) to be literal.
- **Weights.** Names, shapes, order and initializers are Keras' (`kernel [in, units]` for
  `dense`, `[*kernel, in, filters]` for `conv2d`), so a Keras model's weights copy over
  unchanged (`netc weights --from-keras`, [keras-weights.md](keras-weights.md)) and parameter
  counts equal Keras'. Shapes below are written in terms of the attributes, for
  the defaults of the others (`batchnorm`'s `axis=-1`, say); `C` is the size of the first
  input's last axis. Weights that exist only for some attribute values say so. A weight is
  named `<layer>.<weight>`, e.g. `conv2d_1.kernel`.
- **Inference semantics.** netc's meaning of an op is its inference meaning: `dropout` is
  the identity and `batchnorm` uses its moving statistics. Only the Keras backend trains,
  and there they behave as in Keras.
- **Padding.** `padding` is `"valid"` (none), `"same"` (TensorFlow's rule: when the total
  padding of an axis is odd, the extra cell goes after) or explicit `(before, after)` pairs,
  one per spatial axis: `padding=((1, 2), (1, 2))`. Shape rules store padding as pairs, so
  every backend pads exactly the same cells.
"""


# --- values in the language's syntax ----------------------------------------------------------


def signature(opdef: OpDef) -> str:
    """`conv2d(x, filters, kernel, stride=1, padding="valid", ...)`."""
    parts = [
        f"{name}..." if opdef.variadic and i == len(opdef.inputs) - 1 else name
        for i, name in enumerate(opdef.inputs)
    ]
    parts += [
        a.name if a.required else f"{a.name}={format_value(a.default)}"
        for a in opdef.positional_attrs
    ]
    return f"{opdef.name}({', '.join(parts)})"


def initialized_by(opdef: OpDef) -> dict[str, str]:
    """For each weight, the layer attribute that sets its initializer (found by probing)."""
    probed = _probe(opdef)
    if probed is None:
        return {}
    base, _, attrs, inputs = probed
    out: dict[str, str] = {}
    for a in opdef.attrs:
        if a.hint is not Init:
            continue
        changed = _specs(opdef, inputs, {**attrs, a.name: "lecun_normal"}) or {}
        for name, p in changed.items():
            if name in base and p.init != base[name].init:
                out[name] = a.name
    return out


# --- weights, by probing the weight rule ------------------------------------------------------

_CHANNELS = 7  # the probe input's last dim, written `C`
_PRIMES = (11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53)  # one per attribute given a size
_MULTIPLES = (2, 3, 4, 5, 6, 8)  # `4 * units`; never 7, which is C


def _probe_inputs(opdef: OpDef) -> Iterator[list[TensorType]]:
    """Input types to try, simplest first: rank 2 to 5, literal or symbolic inner dims."""
    for rank in (2, 3, 4, 5):
        for inner in (97, "S"):
            for dtype in ("f32", "i32"):
                t = TensorType(dtype, ("N", *(inner,) * (rank - 2), _CHANNELS))
                yield [t] * len(opdef.inputs)


def _sized(hint: Any, size: int) -> Any:
    """A value of type `hint` that carries `size`: the int itself where an int is accepted."""
    for candidate in (size, (size,), (size, size), (size, size, size)):
        try:
            return convert_attr(candidate, hint)
        except ValueError:
            pass
    raise ValueError(describe_hint(hint))


def _accepts_int(hint: Any) -> bool:
    try:
        convert_attr(1, hint)
    except ValueError:
        return False
    return True


def _specs(
    opdef: OpDef, inputs: list[TensorType], attrs: Mapping[str, Any]
) -> dict[str, Param] | None:
    """The weights for these inputs and attributes, or None when the op refuses them."""
    full = {a.name: attrs.get(a.name, a.default) for a in opdef.attrs}
    try:
        _, canonical = opdef.infer(inputs, full)
        return opdef.param_specs(inputs, canonical)
    except (ShapeError, ValueError, TypeError, ArithmeticError):
        return None


def _probe(
    opdef: OpDef,
) -> tuple[dict[str, Param], dict[int, str], dict[str, Any], list[TensorType]] | None:
    """Weights of one probe instance, with the sizes that name the attributes."""
    primes = iter(_PRIMES)
    attrs: dict[str, Any] = {}
    symbols: dict[int, str] = {_CHANNELS: "C"}
    try:
        for a in opdef.attrs:
            if a.required:
                p = next(primes)
                attrs[a.name] = _sized(a.hint, p)
                symbols[p] = a.name
    except ValueError:
        return None
    for inputs in _probe_inputs(opdef):
        base = _specs(opdef, inputs, attrs)
        if base is None:
            continue
        # an optional size the weights depend on (depth_multiplier, value_dim) gets a prime too
        for a in opdef.attrs:
            if (
                a.required
                or isinstance(a.default, bool)
                or not (a.default is None or isinstance(a.default, int))
                or not _accepts_int(a.hint)
            ):
                continue
            size = next(primes, None)
            if size is None:
                break
            tried = _specs(opdef, inputs, {**attrs, a.name: size})
            if tried is not None and _shapes(tried) != _shapes(base):
                attrs[a.name], symbols[size], base = size, a.name, tried
        return base, symbols, attrs, inputs
    return None


def _shapes(specs: Mapping[str, Param]) -> dict[str, tuple[int, ...]]:
    return {k: v.shape for k, v in specs.items()}


def _dim_text(value: int, symbols: Mapping[int, str]) -> str | None:
    if value in symbols:
        return symbols[value]
    for k in _MULTIPLES:
        if value % k == 0 and value // k in symbols:
            return f"{k} * {symbols[value // k]}"
    for a, name_a in symbols.items():
        if value % a == 0 and value // a in symbols and value // a >= a:
            return f"{name_a} * {symbols[value // a]}"
    if value < _CHANNELS:
        return str(value)  # a literal of the layout, as gru's `[2, 3 * units]`
    return None


def _shape_text(
    shape: tuple[int, ...], symbols: Mapping[int, str], tuple_attrs: set[str]
) -> str | None:
    """`[*kernel, C, filters]`; None when a dim is not simply expressed."""
    dims = [_dim_text(d, symbols) for d in shape]
    if any(d is None for d in dims):
        return None
    out: list[str] = []
    i = 0
    while i < len(dims):
        j = i
        while j < len(dims) and dims[j] == dims[i]:
            j += 1
        if j - i > 1 and dims[i] in tuple_attrs:
            out.append(f"*{dims[i]}")  # one entry per spatial axis
        else:
            out.extend(typing.cast(list[str], dims[i:j]))
        i = j
    return "[" + ", ".join(out) + "]"


def weight_lines(opdef: OpDef) -> tuple[list[str], bool]:
    """One markdown line per weight (name, shape, initializer, when it exists), and whether
    a shape mentions `C`."""
    if opdef.params is None:
        return [], False
    probed = _probe(opdef)
    if probed is None:
        return ["- (the weights depend on the input; see below)"], False
    base, symbols, attrs, inputs = probed
    tuple_attrs = {a.name for a in opdef.attrs if "list" in describe_hint(a.hint)}
    uses_c = False

    def shape(p: Param) -> str:
        nonlocal uses_c
        text = _shape_text(p.shape, symbols, tuple_attrs)
        uses_c = uses_c or bool(text and re.search(r"\bC\b", text))
        return f" `{text}`" if text else ""

    notes: dict[str, list[str]] = {name: [] for name in base}
    extra: dict[str, tuple[Param, str]] = {}
    for a in opdef.attrs:
        if not isinstance(a.default, bool):
            continue
        flipped = _specs(opdef, inputs, {**attrs, a.name: not a.default})
        if flipped is None:
            continue
        for name, p in base.items():
            if name not in flipped:
                notes[name].append(f"only with `{a.name}={format_value(a.default)}`")
            elif flipped[name].shape != p.shape:
                notes[name].append(
                    f"{shape(flipped[name]).strip() or 'another shape'} with "
                    f"`{a.name}={format_value(not a.default)}`"
                )
        for name, p in flipped.items():
            if name not in base:
                extra[name] = (p, f"only with `{a.name}={format_value(not a.default)}`")
    lines = []
    init_attrs = initialized_by(opdef)
    for name, p in [*base.items(), *((n, p) for n, (p, _) in extra.items())]:
        init = f"{p.init} (`{init_attrs[name]}`)" if name in init_attrs else p.init
        facts = [init] + ([] if p.trainable else ["not trainable"])
        facts += notes.get(name, []) + ([extra[name][1]] if name in extra else [])
        lines.append(f"- `{name}`{shape(p)}: {', '.join(facts)}")
    return lines, uses_c


# --- the page ---------------------------------------------------------------------------------


def _attr_lines(opdef: OpDef) -> list[str]:
    lines: list[str] = []
    if opdef.positional_attrs:
        lines += ["Attributes:", ""]
        for a in opdef.positional_attrs:
            default = "" if a.required else f" = {format_value(a.default)}"
            lines.append(f"- `{a.name}{default}`: {describe_hint(a.hint)}")
        lines.append("")
    layer = [a for a in opdef.attrs if a.name in opdef.layer_attrs]
    if layer:
        lines += ["Layer attributes (by name only; see language.md):", ""]
        for a in layer:
            what = (
                "an activation name: the activation after the op, in the same layer"
                if a.hint is not Init
                else "an initializer"
            )
            lines.append(f"- `{a.name} = {format_value(a.default)}`: {what}")
        lines.append("")
    return lines


def _input_line(opdef: OpDef) -> str:
    names = [f"`{n}`" for n in opdef.inputs]
    if opdef.variadic:
        least = "one or more" if len(opdef.inputs) == 1 else "any number of"
        names[-1] += f" ({least} tensors)"
    return (
        ("Input: " if len(names) == 1 and not opdef.variadic else "Inputs: ")
        + ", ".join(names)
        + "."
    )


def render_op(opdef: OpDef) -> str:
    """The markdown entry of one op."""
    lines = [f"### {opdef.name}", "", f"`{signature(opdef)}`", ""]
    if opdef.name in OPERATORS:
        lines += [f"Also written `{OPERATORS[opdef.name]}`.", ""]
    aliases = sorted(a for a, name in ALIASES.items() if name == opdef.name)
    if aliases:
        lines += [f"Also called `{'`, `'.join(aliases)}` (the same op).", ""]
    lines += [_input_line(opdef), "", *_attr_lines(opdef)]
    weights, uses_c = weight_lines(opdef)
    if weights:
        intro = "Weights" + (" (`C`: the last dim of the first input)" if uses_c else "") + ":"
        lines += [intro, "", *weights, ""]
    if opdef.doc:
        lines += [opdef.doc, ""]
    return "\n".join(lines)


def _categories() -> list[tuple[str, list[OpDef]]]:
    groups: dict[str, list[OpDef]] = {}
    for opdef in OPS.values():
        groups.setdefault(opdef.category, []).append(opdef)
    order = [c for c in CATEGORIES if c in groups] + sorted(set(groups) - set(CATEGORIES))
    return [(c, groups[c]) for c in order]


def _title(category: str) -> str:
    return CATEGORIES.get(category, category.replace("_", " ").capitalize())


def render_markdown() -> str:
    """The whole of docs/ops.md."""
    groups = _categories()
    out = [HEADER, "## Contents", ""]
    for category, ops in groups:
        links = ", ".join(f"[{o.name}](#{o.name})" for o in ops)
        out.append(f"- **{_title(category)}**: {links}")
    out.append("")
    for category, ops in groups:
        out += [f"## {_title(category)}", ""]
        out += [render_op(o) for o in ops]
    return "\n".join(out).rstrip("\n") + "\n"


def main(write: Callable[[str], Any] = sys.stdout.write) -> None:
    """Print docs/ops.md."""
    write(render_markdown())


if __name__ == "__main__":
    main()
