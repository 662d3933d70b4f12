"""Calls during elaboration: what a call calls (an op, a block, `weight(...)`, an initializer
or a compile-time builtin), the last three themselves, and tensor subscripts. Op calls (argument
binding, `bidirectional`) are in op_calls.py; block calls and the tensor types of block
parameters and model inputs in block_calls.py. `Calls` joins them, a base of the elaborator."""

from __future__ import annotations

from typing import Any

from . import syntax as ast
from .block_calls import BlockCalls
from .ir import FLOAT_DTYPES, Node, TensorType
from .op_calls import (  # noqa: F401 - its constants, importable from here too
    BIDIRECTIONAL_LAYERS,
    KERAS_ATTR_NAMES,
    MERGE_MODES,
    _keras_name_hint,
)
from .source import did_you_mean, format_value
from .values import (
    BUILTIN_NEEDS,
    BUILTINS,
    INITIALIZER_BUILTINS,
    LANGUAGE_OPS,
    TENSOR_BUILTINS,
    Scope,
    Stop,
    Tensor,
    describe,
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


class Calls(BlockCalls):
    """The elaborator's part that calls things: ops, blocks, weights, builtins."""

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
