"""Calls during elaboration: ops (their arguments checked against the op's signature), block
calls (inlined under a naming scope), `weight(...)`, initializers and the compile-time builtins,
and the tensor types of block parameters and model inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import syntax as ast
from .ir import DTYPES, FLOAT_DTYPES, Node, TensorType
from .ops import convert_attr, lookup
from .ops.registry import LAYER_ACTIVATIONS, Init, describe_hint
from .source import CallSite, Span, did_you_mean, format_value
from .tensors import Builder
from .values import (
    BUILTIN_NEEDS,
    BUILTINS,
    CONSTANT_OPERANDS,
    INITIALIZER_BUILTINS,
    LANGUAGE_OPS,
    POISON,
    SCALAR_TYPES,
    TENSOR_BUILTINS,
    Abort,
    Binding,
    Frame,
    Scope,
    Stop,
    Tensor,
    assigned_names,
    describe,
    dim_names,
    is_constant,
    kind,
)
from .weights import (
    INITIALIZER_ARGS,
    USER_INITIALIZERS,
    Initializer,
    canonical_initializer,
    check_initializer,
    make_initializer,
)


class Calls(Builder):
    """The elaborator's part that calls things: ops, blocks, weights, builtins."""

    # the elaborator's, used here
    def exec_body(self, stmts: Sequence[ast.Stmt], scope: Scope, where: str = "block") -> Any:
        raise NotImplementedError

    def warn_unused(self, scope: Scope, keep: Sequence[str] = ()) -> None:
        raise NotImplementedError

    def eval_Call(self, e: ast.Call, scope: Scope) -> Any:
        if e.func in self.blocks:
            return self.call_block(e, scope)
        if e.func in BUILTINS and e.func in LANGUAGE_OPS:  # abs, sqrt: by their arguments
            evaluated = self._eval_args(e, scope)
            if any(isinstance(a, Tensor) for a in evaluated[0]):
                return self.call_op(e, scope, evaluated)
            return self.call_builtin(e, scope, evaluated[0])
        if e.func in LANGUAGE_OPS:
            return self.call_op(e, scope)
        if e.func == "bidirectional" and "bidirectional" not in self.blocks:
            return self.call_bidirectional(e, scope)
        if e.func == "weight":
            return self.call_weight(e, scope)
        if e.func in INITIALIZER_BUILTINS:
            return self.call_initializer(e, scope)
        if e.func in BUILTINS:
            return self.call_builtin(e, scope)
        b = scope.lookup(e.func)
        if b is not None:
            self.r.error(
                f"`{e.func}` is {describe(b.value)}, not something to call",
                e.span,
                calls=self.frame.calls,
            )
        elif self.import_failed:
            raise Stop
        else:
            what = "op or block" if e.piped else "op, block or function"
            ours = FRAMEWORK_LAYERS.get(e.func)
            self.r.error(
                f"unknown {what} `{e.func}`",
                e.span,
                calls=self.frame.calls,
                hint=f"netc's op is `{ours}`"
                if ours is not None
                else did_you_mean(
                    e.func, [*LANGUAGE_OPS, *self.blocks, *BUILTINS, "bidirectional"]
                ),
            )
        raise Stop

    def call_builtin(self, e: ast.Call, scope: Scope, args: list | None = None) -> Any:
        if args is None:
            args = [self.eval(a, scope) for a in e.args]
        if e.kwargs:
            self.r.error(f"`{e.func}` takes no keyword arguments", e.kwargs[0][1].span)
            raise Stop
        if e.func in TENSOR_BUILTINS:
            if len(args) != 1 or not isinstance(args[0], Tensor):
                self.r.error(f"`{e.func}` takes one tensor", e.span, calls=self.frame.calls)
                raise Stop
        elif any(isinstance(a, Tensor) for a in args):
            self.r.error(
                f"`{e.func}` works on compile-time values, not tensors",
                e.span,
                calls=self.frame.calls,
            )
            raise Stop
        if e.func == "range" and len(args) == 3 and args[2] == 0 and kind(args[2]) == "number":
            self.r.error(
                "the step of `range` cannot be 0",
                e.args[2].span,
                calls=self.frame.calls,
                hint="a step of 1 counts up, -1 counts down",
            )
            raise Stop
        try:
            if any(isinstance(a, str) for a in args) and e.func not in ("len", "str"):
                raise TypeError  # Python's int("3") or min("ab") are mistakes here
            if e.func == "range" and all(isinstance(a, int) for a in args) and 1 <= len(args):
                n = len(range(*args))  # before the list exists
                if n > self.limits.iterations:
                    raise OverflowError(
                        f"range of {n:,} items is more than the limit of {self.limits.iterations:,}"
                    )
            return BUILTINS[e.func](*args)
        except OverflowError as exc:
            self.r.error(
                f"`{e.func}`: {exc}" if str(exc) else f"`{e.func}`: the result is too large",
                e.span,
                calls=self.frame.calls,
            )
        except (TypeError, ValueError, IndexError):
            got = ", ".join(describe(a) for a in args) or "nothing"
            self.r.error(
                f"`{e.func}` needs {BUILTIN_NEEDS[e.func]}, got {got}",
                e.span,
                calls=self.frame.calls,
            )
        raise Stop

    def call_initializer(self, e: ast.Call, scope: Scope) -> Initializer:
        """`random_normal(stddev=0.02)`: an initializer, with Keras' arguments."""
        args = [self.eval(a, scope) for a in e.args]
        kwargs: dict[str, Any] = {}
        for k, v in e.kwargs:
            if k in kwargs:
                self.r.error(f"argument `{k}` is given twice", self._keyword_span(e, k))
                raise Stop
            kwargs[k] = self.eval(v, scope)
        if any(isinstance(a, Tensor) for a in [*args, *kwargs.values()]):
            self.r.error(
                f"`{e.func}` works on compile-time values, not tensors",
                e.span,
                calls=self.frame.calls,
            )
            raise Stop
        try:
            return make_initializer(e.func, *args, **kwargs)
        except ValueError as exc:
            # point at the argument the message names: its keyword, or its value
            span = e.span
            names = [k for k, _ in INITIALIZER_ARGS[e.func]]
            for i, arg in enumerate(e.args[: len(names)]):
                if f"`{names[i]}`" in str(exc):
                    span = arg.span
            for k in kwargs:
                if f"no argument `{k}`" in str(exc) or f"`{k}` is given twice" in str(exc):
                    span = self._keyword_span(e, k)
                elif f"`{k}`" in str(exc):
                    span = self._kwarg_span(e, k)
            self.r.error(str(exc), span, calls=self.frame.calls)
            raise Stop from None

    def call_weight(self, e: ast.Call, scope: Scope) -> Tensor:
        """`weight(shape, init=..., dtype="f32", trainable=true)`: a weight of the block (or
        model) itself, a `param` node named after the value it is assigned to."""
        target = (
            self.assign_target[1] if self.assign_target and self.assign_target[0] is e else None
        )
        args, kwargs, layer_name = self._eval_args(e, scope)
        params = ("shape", "init", "dtype", "trainable")
        if len(args) > 2:
            self.r.error(
                f"weight takes at most 2 arguments by position (shape, init), got {len(args)}",
                e.args[2].span,
                calls=self.frame.calls,
                hint="give `dtype` and `trainable` by name",
            )
            raise Stop
        given = dict(zip(params, args))
        spans = {p: a.span for p, a in zip(params, e.args)}
        for k, v in kwargs.items():
            if k not in params:
                self.r.error(
                    f"weight has no argument `{k}`",
                    self._keyword_span(e, k),
                    calls=self.frame.calls,
                    hint=_keras_name_hint(k, params)
                    or did_you_mean(k, params)
                    or "weight(shape, init, dtype, trainable)",
                )
                raise Stop
            if k in given:
                self.r.error(
                    f"weight: `{k}` is given twice (by position and by name)",
                    self._keyword_span(e, k),
                    calls=self.frame.calls,
                )
                raise Stop
            given[k] = v
            spans[k] = self._kwarg_span(e, k)
        if "shape" not in given:
            self.r.error(
                "weight needs a shape, e.g. `weight([64])`", e.span, calls=self.frame.calls
            )
            raise Stop
        shape = given["shape"]
        if isinstance(shape, int) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, tuple) or any(
            isinstance(d, bool) or not isinstance(d, (int, str)) for d in shape
        ):
            self.r.error(
                f"weight: the shape must be a list of ints, got {describe(shape)}",
                spans["shape"],
                calls=self.frame.calls,
            )
            raise Stop
        for d in shape:
            if isinstance(d, str):
                self.r.error(
                    f'weight: the shape must be known sizes, got the symbolic dim "{d}"',
                    spans["shape"],
                    calls=self.frame.calls,
                    hint="a weight is the same for every batch: give it size 1 there and "
                    "let broadcasting (or `concat` after a `+`) do the rest",
                )
                raise Stop
            if d < 1:
                self.r.error(
                    f"weight: every dim must be >= 1, got {format_value(shape)}",
                    spans["shape"],
                    calls=self.frame.calls,
                )
                raise Stop
        init_value = given.get("init", "glorot_uniform")  # Keras' add_weight default
        try:
            init = str(canonical_initializer(init_value))
        except ValueError as exc:
            if isinstance(init_value, (str, Initializer)):
                unknown = str(exc) == f'unknown initializer "{init_value}"'
                self.r.error(
                    f"weight: `init`: {exc}",
                    spans["init"],
                    calls=self.frame.calls,
                    hint=did_you_mean(str(init_value), USER_INITIALIZERS) if unknown else None,
                )
            else:
                self.r.error(
                    f"weight: `init` must be an initializer, got {describe(init_value)}",
                    spans["init"],
                    calls=self.frame.calls,
                )
            raise Stop from None
        dtype = given.get("dtype", "f32")
        if dtype not in FLOAT_DTYPES:
            self.r.error(
                f"weight: `dtype` must be a float dtype "
                f"({', '.join(map(format_value, FLOAT_DTYPES))}), got {describe(dtype)}",
                spans["dtype"],
                calls=self.frame.calls,
            )
            raise Stop
        trainable = given.get("trainable", True)
        if not isinstance(trainable, bool):
            self.r.error(
                f"weight: `trainable` must be a bool, got {describe(trainable)}",
                spans["trainable"],
                calls=self.frame.calls,
            )
            raise Stop
        why = check_initializer(init, shape)
        if why is not None:
            self.r.error(f"weight: {why}", e.span, calls=self.frame.calls)
            raise Stop
        explicit = layer_name is not None
        t = TensorType(dtype, shape)
        self.check_type(t, "weight", spans["shape"])
        name = self._unique(layer_name or target or "weight", explicit=explicit, span=e.span)
        self.count_weight(t, name, e.span)
        self.add_node(
            Node(
                name,
                "param",
                (),
                {"init": init, "trainable": trainable},
                t,
                e.span,
                self.frame.calls,
            )
        )
        return Tensor(name, t)

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

    def _assigned(self, block: ast.BlockDef) -> dict[str, Span]:
        """The names a block's body assigns (a frame reads them; computed once a block)."""
        found = self._assigned_in.get(block.name)
        if found is None or found[0] is not block:
            found = self._assigned_in[block.name] = (block, assigned_names(block.body, {}))
        return found[1]

    def call_block(self, e: ast.Call, scope: Scope) -> Any:
        block = self.blocks[e.func]
        args, kwargs, layer_name = self._eval_args(e, scope)
        if block.name in self.broken_blocks:
            raise Stop  # its parameter list's error says it all
        if len(self.frames) > self.limits.depth:
            self.r.error(
                f"block `{block.name}` calls itself {self.limits.depth} levels deep",
                e.span,
                calls=self.frame.calls,
                hint="block recursion must end through an `if` on a compile-time value",
            )
            # the whole model: each level would go on to its next call, which recurses again
            # (2 ** depth errors for a block that calls itself twice)
            raise Abort
        self.calls += 1
        if self.calls > self.limits.calls:
            self.r.error(
                f"the model makes more than {self.limits.calls:,} block calls, the limit",
                e.span,
                calls=self.frame.calls,
                hint="raise it with `--limit calls=N` if the model is meant to be this large",
            )
            raise Abort
        params = block.params
        if len(args) > len(params):
            self.r.error(
                f"block `{block.name}` takes {len(params)} argument"
                f"{'s' if len(params) != 1 else ''}, got {len(args)}",
                e.args[len(params)].span,
                calls=self.frame.calls,
            )
            raise Stop
        local = Scope(parent=self.globals)
        given: dict[str, tuple[Any, Span]] = {}
        for p, v, a in zip(params, args, e.args):
            given[p.name] = (v, a.span)
        names = [p.name for p in params]
        unknown = [k for k in kwargs if k not in names]
        for k in unknown:  # every misspelled keyword of the call at once
            self.r.error(
                f"block `{block.name}` has no parameter `{k}`",
                self._keyword_span(e, k),
                calls=self.frame.calls,
                hint=did_you_mean(k, names),
            )
        if unknown:
            raise Stop
        for k, v in kwargs.items():
            if k in given:
                self.r.error(
                    f"block `{block.name}`: `{k}` is given twice",
                    self._keyword_span(e, k),
                    calls=self.frame.calls,
                )
                raise Stop
            given[k] = (v, self._kwarg_span(e, k))
        symbols: dict[str, Any] = {}
        for p in params:
            if p.name in given:
                value, span = given[p.name]
            elif p.default is not None:
                value, span = self.eval(p.default, local), p.default.span
            else:
                self.r.error(
                    f"block `{block.name}` needs `{p.name}`", e.span, calls=self.frame.calls
                )
                raise Stop
            self.check_param(block, p, value, span, symbols)
            local.names[p.name] = Binding(value, p.span, "param")
        if layer_name is None:  # explicit names do not use up a number, as for ops
            number = self.frame.counters.get("block:" + block.name, 0)
            self.frame.counters["block:" + block.name] = number + 1
        segment = layer_name if layer_name is not None else f"{block.name}_{number}"
        prefix = self.frame.prefix + segment + "."
        if layer_name is not None and prefix in self.name_prefixes:
            self.r.error(
                f'the name "{layer_name}" is already used by another block call',
                e.span,
                calls=self.frame.calls,
            )
            raise Stop
        self.frames.append(
            Frame(
                prefix,
                (CallSite(block.name, e.span), *self.frame.calls),
                assigned=self._assigned(block),
                dims=dim_names(block.params),
            )
        )
        self.name_prefixes.add(prefix)
        try:
            result = self.exec_body(block.body, local)
            if result is not POISON:
                self.warn_unused(local)
        finally:
            self.frames.pop()
        if result is None:
            self.r.error(
                f"block `{block.name}` returns nothing",
                block.span,
                hint="end it with `return <value>`",
            )
            raise Stop
        if result is POISON:
            raise Stop
        return result

    def check_param(
        self, block: ast.BlockDef, p: ast.ParamDecl, value: Any, span: Span, symbols: dict[str, Any]
    ) -> None:
        """An argument against its parameter's declared type (tensor types bind symbols)."""
        if value is POISON:
            raise Stop
        t = p.type
        where = f"block `{block.name}`: `{p.name}`"
        if t is None and p.default is not None:  # `k = 3`: compile-time, typed by its use
            if isinstance(value, Tensor):
                self.r.error(
                    f"{where} must be a compile-time value, not a tensor",
                    span,
                    calls=self.frame.calls,
                )
                raise Stop
            return
        if _is_tensor_param(t):
            if not isinstance(value, Tensor):
                self.r.error(
                    f"{where} must be a tensor, got {describe(value)}",
                    span,
                    calls=self.frame.calls,
                    hint="give compile-time parameters a type, e.g. `units: int`"
                    if t is None and p is not block.params[0]
                    else None,
                )
                raise Stop
            if t is not None and t.dims is not None:
                self.check_tensor_type(value.type, t, symbols, f"{where} must be", span)
            elif t is not None and t.name != "tensor" and value.type.dtype != t.name:
                self.r.error(
                    f"{where} must be a {t.name} tensor, got {value}", span, calls=self.frame.calls
                )
                raise Stop
            return
        if t is None or t.name not in SCALAR_TYPES:  # reported where the block is defined
            raise Stop
        ok = SCALAR_TYPES[t.name]
        if (
            isinstance(value, Tensor)
            or not isinstance(value, ok)
            or (t.name in ("int", "float") and isinstance(value, bool))
        ):
            self.r.error(
                f"{where} must be {'a' if t.name != 'int' else 'an'} {t.name}, got "
                f"{describe(value)}",
                span,
                calls=self.frame.calls,
            )
            raise Stop

    def check_tensor_type(
        self, actual: TensorType, want: ast.TypeExpr, symbols: dict[str, Any], what: str, span: Span
    ) -> None:
        dims = self.type_dims(want)
        if any(isinstance(d, int) and d < 1 for d in dims):
            raise Stop  # said by type_dims
        ok = actual.dtype == want.name and len(dims) == actual.rank
        if ok:
            for d, a in zip(dims, actual.shape):
                if isinstance(d, int):
                    ok = ok and d == a
                elif d in symbols:
                    ok = ok and symbols[d] == a
                else:
                    symbols[d] = a
        if not ok:
            shown = f"{want.name}[{', '.join(str(d) for d in dims)}]"
            self.r.error(f"{what} {shown}, got {actual}", span, calls=self.frame.calls)
            raise Stop

    def type_dims(self, t: ast.TypeExpr) -> tuple:
        """Dims of a tensor type; a name bound to an int constant is that int."""
        out = []
        for d, span in zip(t.dims or (), t.dim_spans):
            notes: tuple[str, ...] = ()
            if isinstance(d, str):
                b = self.globals.lookup(d)
                if b is not None and isinstance(b.value, int) and not isinstance(b.value, bool):
                    b.used = True
                    notes = (f"`{d}` is {b.value}, defined at {b.span}",)
                    d = b.value
            if isinstance(d, int) and d < 1:
                self.r.error(f"a dim must be >= 1, got {d}", span, notes=notes)
            out.append(d)
        return tuple(out)

    def index_tensor(self, x: Tensor, e: ast.Index, subs: list, scope: Scope) -> Any:
        """`x[:, 1:3, 0]` -> slice (+ squeeze for integer subscripts)."""
        n_ellipsis = sum(isinstance(s, ast.EllipsisExpr) for s in subs)
        if n_ellipsis > 1:
            self.r.error("at most one `...` in a subscript", e.span)
            raise Stop
        explicit = len(subs) - n_ellipsis
        if explicit > x.type.rank:
            self.r.error(
                f"too many subscripts ({explicit}) for {x}", e.span, calls=self.frame.calls
            )
            raise Stop
        expanded: list = []
        for s in subs:
            if isinstance(s, ast.EllipsisExpr):
                expanded += [None] * (x.type.rank - explicit)
            else:
                expanded.append(s)
        expanded += [None] * (x.type.rank - len(expanded))
        axes, starts, ends, steps, squeeze = [], [], [], [], []
        for axis, s in enumerate(expanded):
            if s is None:
                continue
            if isinstance(s, ast.Slice):
                start, stop, step = (
                    self.eval(v, scope) if v else None for v in (s.start, s.stop, s.step)
                )
                for v, vs in ((start, s.start), (stop, s.stop), (step, s.step)):
                    if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                        self.r.error(
                            f"a slice bound must be a compile-time int, got {describe(v)}",
                            vs.span if vs else e.span,
                            calls=self.frame.calls,
                        )
                        raise Stop
                if (start, stop, step) in ((None, None, None), (0, None, None), (0, None, 1)):
                    continue
                axes.append(axis)
                starts.append(start if start is not None else (0 if (step or 1) > 0 else -1))
                ends.append(stop)
                steps.append(step if step is not None else 1)
            elif isinstance(s, int) and not isinstance(s, bool):
                axes.append(axis)
                starts.append(s)
                ends.append(s + 1 if s != -1 else None)
                steps.append(1)
                squeeze.append(axis)
            else:
                self.r.error(
                    f"a tensor subscript must be a compile-time int or slice, got {describe(s)}",
                    e.span,
                    calls=self.frame.calls,
                )
                raise Stop
        out = x
        if axes:
            out = self.apply_op(
                "slice",
                [x],
                {
                    "axes": tuple(axes),
                    "starts": tuple(starts),
                    "ends": tuple(ends),
                    "steps": tuple(steps),
                },
                e.span,
            )
        if squeeze:
            out = self.apply_op("squeeze", [out], {"axes": tuple(squeeze)}, e.span)
        return out


def _is_tensor_param(t: ast.TypeExpr | None) -> bool:
    """Untyped, `tensor`, a dtype (`f32`) or a tensor type (`f32[N, C]`); `bool` alone is the
    compile-time bool, `bool[N]` a tensor."""
    if t is None or t.name == "tensor" or t.dims is not None:
        return True
    return t.name in DTYPES and t.name not in SCALAR_TYPES


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


# Keras' and PyTorch's layer classes, by the name of netc's op
FRAMEWORK_LAYERS = {
    "Dense": "dense",
    "Linear": "dense",
    "Conv1D": "conv1d",
    "Conv2D": "conv2d",
    "Conv3D": "conv3d",
    "Conv1d": "conv1d",
    "Conv2d": "conv2d",
    "Conv3d": "conv3d",
    "Conv2DTranspose": "conv2d_transpose",
    "ConvTranspose2d": "conv2d_transpose",
    "DepthwiseConv2D": "depthwise_conv2d",
    "SeparableConv2D": "separable_conv2d",
    "BatchNormalization": "batchnorm",
    "BatchNorm1d": "batchnorm",
    "BatchNorm2d": "batchnorm",
    "LayerNormalization": "layernorm",
    "LayerNorm": "layernorm",
    "MaxPooling1D": "maxpool",
    "MaxPooling2D": "maxpool",
    "MaxPool2D": "maxpool",
    "MaxPool2d": "maxpool",
    "AveragePooling2D": "avgpool",
    "AvgPool2d": "avgpool",
    "GlobalAveragePooling1D": "global_avgpool",
    "GlobalAveragePooling2D": "global_avgpool",
    "AdaptiveAvgPool2d": "global_avgpool",
    "GlobalMaxPooling2D": "global_maxpool",
    "Flatten": "flatten",
    "Reshape": "reshape",
    "Dropout": "dropout",
    "ReLU": "relu",
    "LeakyReLU": "leaky_relu",
    "Softmax": "softmax",
    "Embedding": "embedding",
    "LSTM": "lstm",
    "GRU": "gru",
    "Bidirectional": "bidirectional",
    "MultiHeadAttention": "multi_head_attention",
    "MultiheadAttention": "multi_head_attention",
    "Concatenate": "concat",
    "concatenate": "concat",
    "cat": "concat",
    "Add": "add",
    "UpSampling2D": "upsample",
    "Upsample": "upsample",
    "ZeroPadding2D": "pad",
    "Permute": "transpose",
    "permute": "transpose",
    "view": "reshape",
    "mean": "reduce_mean",
}


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
