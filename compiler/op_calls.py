"""Op calls during elaboration: a call's arguments evaluated (`name=` apart), then bound to
the op's signature (tensor inputs, attributes by position and by name, each converted to its
declared type, with hints for Keras' spellings), and Keras' `bidirectional(...)` wrapper as the
ops it computes. Part of the elaborator (calls.py, elaborate.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import syntax as ast
from .ops import convert_attr, lookup
from .ops.registry import LAYER_ACTIVATIONS, Init, describe_hint
from .source import CallSite, Span, did_you_mean, format_value
from .tensors import Builder
from .values import (
    CONSTANT_OPERANDS,
    Frame,
    Scope,
    Stop,
    Tensor,
    describe,
    is_constant,
)
from .weights import (
    INITIALIZER_ARGS,
    USER_INITIALIZERS,
    Initializer,
)


class OpCalls(Builder):
    """The elaborator's part that evaluates call arguments and calls ops."""

    def _eval_args(
        self, e: ast.Call, scope: Scope, first: Any = None
    ) -> tuple[list, dict[str, Any], str | None]:
        """The call's arguments, keywords and `name=`; `first`: the first argument's value,
        already evaluated (bidirectional's sequence, for its two layers)."""
        args = [
            first if i == 0 and first is not None else self.eval(a, scope)
            for i, a in enumerate(e.args)
        ]
        kwargs: dict[str, Any] = {}
        for (k, v), kspan in zip(e.kwargs, e.kwarg_spans or [None] * len(e.kwargs)):
            if k in kwargs:
                self.r.error(
                    f"argument `{k}` is given twice", kspan or v.span, calls=self.frame.calls
                )
                raise Stop
            if (k == "activation" or k.endswith("_init")) and isinstance(v, ast.Name):
                self._bare_name(k, v, scope)
            kwargs[k] = self.eval(v, scope)
        name = kwargs.pop("name", None)
        if name is not None and (
            not isinstance(name, str) or not name.replace("_", "a").isalnum() or not name.isascii()
        ):
            self.r.error(
                f"`name` must be a string of letters, digits and `_`, got {describe(name)}",
                dict(e.kwargs)["name"].span,
                calls=self.frame.calls,
            )
            raise Stop
        return args, kwargs, name

    def _bare_name(self, key: str, v: ast.Name, scope: Scope) -> None:
        """`activation=relu`, `kernel_init=he_normal`: Keras' names, written without quotes."""
        if scope.lookup(v.id) is not None:
            return  # a constant or parameter holding one: fine
        if key == "activation" and v.id in LAYER_ACTIVATIONS:
            hint = f'an activation is named by a string: `activation="{v.id}"`'
        elif key.endswith("_init") and v.id in INITIALIZER_ARGS:
            hint = f'name the initializer in a string, `"{v.id}"`, or call it, `{v.id}()`'
        else:
            return
        self.r.error(f"`{v.id}` is not a value", v.span, calls=self.frame.calls, hint=hint)
        raise Stop

    def _kwarg_span(self, e: ast.Call, key: str) -> Span:
        """Where keyword `key` is written: its value's span."""
        return next((v.span for k, v in e.kwargs if k == key), e.span)

    def _keyword_span(self, e: ast.Call, key: str) -> Span:
        """Where keyword `key` is written: the name itself (for unknown or repeated keywords)."""
        spans = dict(zip((k for k, _ in e.kwargs), e.kwarg_spans))
        return spans.get(key, self._kwarg_span(e, key))

    def call_op(self, e: ast.Call, scope: Scope, evaluated: tuple | None = None) -> Any:
        opdef = lookup(e.func)
        args, kwargs, layer_name = evaluated or self._eval_args(e, scope)
        n_in = len(opdef.inputs)
        if opdef.variadic:  # the leading tensors are the inputs; the variadic part may be empty
            listed = len(args) == 1 and isinstance(args[0], tuple) and n_in == 1
            if listed:  # `concat([a, b])`: every item of the list is an input
                args = list(args[0])
            n_tensor = next((i for i, a in enumerate(args) if not isinstance(a, Tensor)), len(args))
            if listed:
                n_tensor = len(args)
            tensor_args, attr_args = args[:n_tensor], args[n_tensor:]
            need = max(n_in - 1, 1)
            if n_tensor < need:
                self.r.error(
                    f"{e.func} needs at least {need} tensor input{'s' if need > 1 else ''}",
                    e.span,
                    calls=self.frame.calls,
                )
                raise Stop
        else:
            tensor_args, attr_args = args[:n_in], args[n_in:]
            if len(tensor_args) < n_in:
                missing = opdef.inputs[len(tensor_args)]
                self.r.error(
                    f"{e.func} needs {n_in} tensor input{'s' if n_in > 1 else ''}, got "
                    f"{len(tensor_args)}",
                    e.span,
                    calls=self.frame.calls,
                    hint=f"pass `{missing}`"
                    if n_in > 1
                    else f"pipe a tensor into it: `x |> {e.func}`",
                )
                raise Stop
        if opdef.name in CONSTANT_OPERANDS and len(tensor_args) == 2:
            # `maximum(x, 0.0)`, `minimum(x, [1, 2, 3])`: a number or list beside one tensor
            tensors = [a for a in tensor_args if isinstance(a, Tensor)]
            if len(tensors) == 1:
                tensor_args = [
                    self.as_tensor(a, tensors[0], e.args[i].span) if is_constant(a) else a
                    for i, a in enumerate(tensor_args)
                ]
        for i, t in enumerate(tensor_args):
            if not isinstance(t, Tensor):
                label = opdef.inputs[min(i, n_in - 1)]
                self.r.error(
                    f"{e.func}: input `{label}` must be a tensor, got {describe(t)}",
                    _item_span(e.args[0], i)
                    if opdef.variadic and len(e.args) == 1
                    else e.args[i].span
                    if i < len(e.args)
                    else e.span,
                    calls=self.frame.calls,
                )
                raise Stop
        positional = opdef.positional_attrs  # layer attributes go by name only
        if len(attr_args) > len(positional):
            self.r.error(
                f"{e.func} takes at most {len(positional)} attribute"
                f"{'s' if len(positional) != 1 else ''} after its input"
                f"{'s' if n_in > 1 else ''}, got {len(attr_args)}",
                e.args[n_in + len(positional)].span
                if len(e.args) > n_in + len(positional)
                else e.span,
                calls=self.frame.calls,
                hint=f"give {', '.join(f'`{a}`' for a in opdef.layer_attrs)} by name"
                if opdef.layer_attrs
                else None,
            )
            raise Stop
        attrs: dict[str, Any] = {}
        arg_spans: dict[str, Span] = {}
        first_attr_arg = len(tensor_args)
        for i, (spec, value) in enumerate(zip(positional, attr_args)):
            attrs[spec.name] = value
            arg_spans[spec.name] = e.args[first_attr_arg + i].span
        unknown = [k for k in kwargs if k not in opdef.attr_names]
        for k in unknown:  # every misspelled keyword of the call at once, not one per run
            self.r.error(
                f"{e.func} has no attribute `{k}`",
                self._keyword_span(e, k),
                calls=self.frame.calls,
                hint=_activation_hint(e.func, k, kwargs[k])
                or _keras_name_hint(k, opdef.attr_names)
                or did_you_mean(k, opdef.attr_names)
                or _attr_list(opdef, by_name=True),
            )
        if unknown:
            raise Stop
        for k, v in kwargs.items():
            if k in attrs:
                self.r.error(
                    f"{e.func}: `{k}` is given twice (by position and by name)",
                    self._keyword_span(e, k),
                    calls=self.frame.calls,
                )
                raise Stop
            attrs[k] = v
            arg_spans[k] = self._kwarg_span(e, k)
        final: dict[str, Any] = {}
        for spec in opdef.attrs:
            if spec.name not in attrs:
                if spec.required:
                    self.r.error(
                        f"{e.func} needs `{spec.name}` ({describe_hint(spec.hint)})",
                        e.span,
                        calls=self.frame.calls,
                        hint=_attr_list(opdef),
                    )
                    raise Stop
                final[spec.name] = spec.default
                continue
            value = attrs[spec.name]
            if isinstance(value, Tensor):
                self.r.error(
                    f"{e.func}: `{spec.name}` must be a compile-time "
                    f"{describe_hint(spec.hint, 1)}, not a tensor",
                    arg_spans[spec.name],
                    calls=self.frame.calls,
                )
                raise Stop
            try:
                final[spec.name] = convert_attr(value, spec.hint)
            except ValueError as exc:
                message, hint = self._attr_error(e.func, spec, value, exc)
                self.r.error(message, arg_spans[spec.name], calls=self.frame.calls, hint=hint)
                raise Stop from None
        return self.apply_op(opdef.name, tensor_args, final, e.span, layer_name)

    def _attr_error(
        self, func: str, spec: Any, value: Any, exc: ValueError
    ) -> tuple[str, str | None]:
        """The message and hint for an attribute value its type refuses."""
        if spec.hint is Init and isinstance(value, (str, Initializer)):
            unknown = isinstance(value, str) and str(exc) == f'unknown initializer "{value}"'
            hint = did_you_mean(str(value), USER_INITIALIZERS) if unknown else None
            return f"{func}: `{spec.name}`: {exc}", hint
        message = f"{func}: `{spec.name}` must be {describe_hint(spec.hint)}, got {describe(value)}"
        if spec.name == "activation" and isinstance(value, str):
            listed = ", ".join(f'"{a}"' for a in LAYER_ACTIVATIONS)
            return message, did_you_mean(value, LAYER_ACTIVATIONS) or f"use one of {listed}"
        return message, None

    def call_bidirectional(self, e: ast.Call, scope: Scope) -> Any:
        """`x |> bidirectional(lstm(64), merge_mode="concat")`: Keras' Bidirectional wrapper,
        as the ops it computes. The layer runs forward (`forward_lstm`) and over the reversed
        sequence (`backward_lstm`, go_backwards flipped); with return_sequences the backward
        steps are put back in time order (`reverse`, a `::-1` slice), then the two are merged:
        "concat" on the last axis (the default), "sum", "mul", "ave", or `none` for both as a
        tuple. With return_state the merged output is followed by the forward then the
        backward states, as in Keras. The layers sit under one naming scope (`bidirectional`,
        `bidirectional_1`, or name=), which the summary folds into one row."""
        usage = '`x |> bidirectional(lstm(64), merge_mode="concat")` (or gru)'
        layer = e.args[1] if len(e.args) == 2 else None
        if not (isinstance(layer, ast.Call) and layer.func in BIDIRECTIONAL_LAYERS):
            where = layer.span if layer is not None else e.span
            self.r.error(
                "bidirectional wraps one recurrent layer call, lstm(...) or gru(...)",
                where,
                calls=self.frame.calls,
                hint=f"write {usage}",
            )
            raise Stop
        if layer.piped or (layer.args and layer.func in self.blocks):
            self.r.error(
                f"the {layer.func} inside bidirectional takes no input of its own",
                layer.span,
                calls=self.frame.calls,
                hint=f"bidirectional passes it the sequence: {usage}",
            )
            raise Stop
        x = self.eval(e.args[0], scope)
        if not isinstance(x, Tensor):
            self.r.error(
                f"bidirectional needs a sequence tensor, got {describe(x)}",
                e.args[0].span,
                calls=self.frame.calls,
                hint=f"pipe one into it: {usage}",
            )
            raise Stop
        merge_mode: Any = "concat"
        layer_name = None
        bad = False
        for (k, v), kspan in zip(e.kwargs, e.kwarg_spans or [e.span] * len(e.kwargs)):
            value = self.eval(v, scope)
            if k == "merge_mode" and (value is None or value in MERGE_MODES):
                merge_mode = value
            elif k == "merge_mode":
                modes = ", ".join(f'"{m}"' for m in MERGE_MODES)
                self.r.error(
                    f"bidirectional: `merge_mode` must be one of {modes} or none, "
                    f"got {describe(value)}",
                    v.span,
                    calls=self.frame.calls,
                    hint=did_you_mean(str(value), MERGE_MODES),
                )
                bad = True
            elif k == "name" and isinstance(value, str) and value.replace("_", "a").isalnum():
                layer_name = value
            else:
                self.r.error(
                    f"bidirectional has no attribute `{k}`"
                    if k != "name"
                    else f"`name` must be a string of letters, digits and `_`, got "
                    f"{describe(value)}",
                    kspan,
                    calls=self.frame.calls,
                    hint="bidirectional takes merge_mode and name; the layer's own settings go "
                    f"in its call: {usage}"
                    if k != "name"
                    else None,
                )
                bad = True
        inner = ast.Call(
            func=layer.func,
            args=(e.args[0], *layer.args),
            kwargs=layer.kwargs,
            piped=True,
            span=layer.span,
            kwarg_spans=layer.kwarg_spans,
        )
        args, kwargs, inner_name = self._eval_args(inner, scope, first=x)
        if inner_name is not None:
            self.r.error(
                "name the bidirectional wrapper, not the layer in it",
                self._kwarg_span(layer, "name"),
                calls=self.frame.calls,
                hint=f'`bidirectional({layer.func}(...), name="{inner_name}")`',
            )
            raise Stop
        if bad:
            raise Stop
        segment = layer_name
        while segment is None:  # Keras' layer names: bidirectional, bidirectional_1, ...
            number = self.frame.counters.get("bidirectional", 0)
            self.frame.counters["bidirectional"] = number + 1
            segment = "bidirectional" if number == 0 else f"bidirectional_{number}"
            if self.frame.prefix + segment + "." in self.name_prefixes:
                segment = None
        prefix = self.frame.prefix + segment + "."
        if prefix in self.name_prefixes:
            self.r.error(
                f'the name "{segment}" is already used by another layer',
                e.span,
                calls=self.frame.calls,
            )
            raise Stop
        self.name_prefixes.add(prefix)
        self.frames.append(
            Frame(
                prefix,
                (CallSite("bidirectional", e.span), *self.frame.calls),
                assigned=self.frame.assigned,
                dims=self.frame.dims,
            )
        )
        try:
            backwards = bool(kwargs.get("go_backwards", False))
            forward = self.call_op(inner, scope, (args, kwargs, f"forward_{layer.func}"))
            backward = self.call_op(
                inner,
                scope,
                (args, {**kwargs, "go_backwards": not backwards}, f"backward_{layer.func}"),
            )
            return self._merge(forward, backward, merge_mode, kwargs, e.span)
        finally:
            self.frames.pop()

    def _merge(
        self, forward: Any, backward: Any, merge_mode: str | None, kwargs: dict, span: Span
    ) -> Any:
        """Bidirectional's result from its two layers' (Keras' Bidirectional.call)."""
        states: tuple = ()
        if isinstance(forward, tuple):  # return_state: (y, *states) each
            (forward, *f_states), (backward, *b_states) = forward, backward
            states = (*f_states, *b_states)
        if kwargs.get("return_sequences", False):
            backward = self.apply_op(
                "slice",
                [backward],
                {"axes": (1,), "starts": (-1,), "ends": (None,), "steps": (-1,)},
                span,
                "reverse",
            )
        if merge_mode is None:
            return (forward, backward, *states)
        if merge_mode == "concat":
            y = self.apply_op("concat", [forward, backward], {"axis": -1}, span, "concat")
        elif merge_mode == "ave":
            total = self.apply_op("add", [forward, backward], {}, span, "sum")
            y = self.apply_op("mul", [total, self.as_tensor(0.5, total, span)], {}, span, "ave")
        else:
            op = {"sum": "add", "mul": "mul"}[merge_mode]
            y = self.apply_op(op, [forward, backward], {}, span, merge_mode)
        return (y, *states) if states else y


def _item_span(arg: ast.Expr, i: int) -> Span:
    """The span of item `i` of a list argument (`concat([a, "b"])`), or of the whole argument."""
    items = arg.items if isinstance(arg, (ast.ListExpr, ast.TupleExpr)) else ()
    return items[i].span if i < len(items) else arg.span


def _attr_list(opdef: Any, by_name: bool = False) -> str:
    """`dense(units, bias=true)`, with `by_name`: `..., and by name: activation, kernel_init,
    bias_init` (the layer attributes)."""
    parts = [
        a.name if a.required else f"{a.name}={format_value(a.default)}"
        for a in opdef.positional_attrs
    ]
    named = [a.name for a in opdef.attrs if a not in opdef.positional_attrs] if by_name else []
    more = f", and by name: {', '.join(named)}" if named else ""
    return f"{opdef.name}({', '.join(parts)}){more}"


# The layers `bidirectional(...)` wraps, and Keras' merge modes (None: both, as a tuple)
BIDIRECTIONAL_LAYERS = ("lstm", "gru")
MERGE_MODES = ("concat", "sum", "mul", "ave")


# Keras' argument names for what netc calls otherwise (its `*_initializer`s are `*_init`)
KERAS_ATTR_NAMES = {
    "use_bias": "bias",
    "out_features": "units",
    "out_channels": "filters",
    "kernel_size": "kernel",
    "strides": "stride",
    "dilation_rate": "dilation",
    "pool_size": "size",
    "num_heads": "heads",
    "initializer": "init",  # add_weight's
}


def _activation_hint(func: str, key: str, value: Any) -> str | None:
    """Keras' `activation="relu"` on an op that takes none: the activation is an op of its own."""
    if key != "activation" or not isinstance(value, str):
        return None
    if value in LAYER_ACTIVATIONS and value != "linear":
        return f"apply it after the op: `{func}(...) |> {value}`"
    return "apply the activation after the op: `|> relu`, `|> gelu`, ..."


def _keras_name_hint(name: str, attr_names: Sequence[str]) -> str | None:
    """ "did you mean `kernel_init`?" for Keras' `kernel_initializer` (and its other names)."""
    if name in ("input_shape", "input_dim", "batch_input_shape", "in_features", "in_channels"):
        return "a layer's input size is that of the value piped into it: none is given"
    ours = KERAS_ATTR_NAMES.get(name)
    if ours is None and name.endswith("_initializer"):
        ours = name.removesuffix("initializer") + "init"
    if ours in attr_names:
        return f"did you mean `{ours}`?"
    return None
