"""The Keras layers netc adds where Keras has none: small layers written with `keras.ops`,
registered as `netc>Name` so that `keras.models.load_model` rebuilds a `.keras` file netc wrote
once this module is imported (`netc.runtime.load` imports it).

Two kinds: subclasses of Keras' own convolution and pooling layers that pad explicitly
(netc's (before, after) pairs where Keras' "same" would pad other cells) or crop a transposed
convolution's output, keeping Keras' weights; and layers for ops Keras has no layer for
(elementwise functions, arithmetic with constants or weights, reductions, slices, casts...).
`NetcModel` is a functional `keras.Model` that also carries netc's signature, weight names and
training settings. Importing this module imports TensorFlow and Keras (quietly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from . import tensorflow

tensorflow("keras")

import keras  # noqa: E402  (after TensorFlow's quiet start-up)
from keras import ops  # noqa: E402

PACKAGE = "netc"


def _register(cls: Any) -> Any:
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def _pairs(pads: Sequence[Sequence[int]]) -> tuple[tuple[int, int], ...]:
    return tuple((int(b), int(a)) for b, a in pads)


def _grow(shape: Sequence[Any], pads: Sequence[tuple[int, int]], sign: int = 1) -> tuple:
    """`shape` [N, *spatial, C] with each spatial dim grown (or, sign -1, cut) by its pair."""
    out = list(shape)
    for i, (b, a) in enumerate(pads, start=1):
        out[i] = None if out[i] is None else out[i] + sign * (b + a)
    return tuple(out)


# --- the model -------------------------------------------------------------------------------


@_register
class NetcModel(keras.Model):
    """A functional Keras model that also records, in its config, what netc knows of it:
    input and output names, dtypes and symbolic shapes, each netc weight's variable path, and
    the train section's fit settings (`netc` is plain JSON data)."""

    def __init__(self, *args: Any, netc: dict | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.netc = dict(netc or {})

    def get_config(self) -> dict:
        return {**super().get_config(), "netc": self.netc}


# --- convolutions and pools with explicit padding ----------------------------------------------


class _ExplicitPadding:
    """A Keras convolution or pooling run "valid" on its input padded by explicit
    (before, after) pairs per spatial axis (`explicit_padding`), with Keras' own weights."""

    pad_value = 0.0

    def __init__(self, *args: Any, explicit_padding: Sequence[Sequence[int]], **kwargs: Any):
        kwargs["padding"] = "valid"
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.explicit_padding = _pairs(explicit_padding)

    def _padded(self, x: Any, value: float | None = None) -> Any:
        pads = [(0, 0), *self.explicit_padding, (0, 0)]
        return ops.pad(x, pads, constant_values=self.pad_value if value is None else value)

    def call(self, inputs: Any) -> Any:
        return super().call(self._padded(inputs))  # type: ignore[misc]

    def compute_output_shape(self, input_shape: Any) -> Any:
        grown = _grow(input_shape, self.explicit_padding)
        return super().compute_output_shape(grown)  # type: ignore[misc]

    def get_config(self) -> dict:
        config = super().get_config()  # type: ignore[misc]
        return {**config, "explicit_padding": [list(p) for p in self.explicit_padding]}


@_register
class PaddedConv1D(_ExplicitPadding, keras.layers.Conv1D):
    """Conv1D with explicit (before, after) padding."""


@_register
class PaddedConv2D(_ExplicitPadding, keras.layers.Conv2D):
    """Conv2D with explicit (before, after) padding per spatial axis."""


@_register
class PaddedConv3D(_ExplicitPadding, keras.layers.Conv3D):
    """Conv3D with explicit (before, after) padding per spatial axis."""


@_register
class PaddedDepthwiseConv1D(_ExplicitPadding, keras.layers.DepthwiseConv1D):
    """DepthwiseConv1D with explicit (before, after) padding."""


@_register
class PaddedDepthwiseConv2D(_ExplicitPadding, keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D with explicit (before, after) padding per spatial axis."""


@_register
class PaddedSeparableConv1D(_ExplicitPadding, keras.layers.SeparableConv1D):
    """SeparableConv1D with explicit (before, after) padding."""


@_register
class PaddedSeparableConv2D(_ExplicitPadding, keras.layers.SeparableConv2D):
    """SeparableConv2D with explicit (before, after) padding per spatial axis."""


class _MaxPadding(_ExplicitPadding):
    pad_value = -math.inf  # a padded cell never wins a max


@_register
class PaddedMaxPooling1D(_MaxPadding, keras.layers.MaxPooling1D):
    """MaxPooling1D with explicit padding (padded cells are -inf)."""


@_register
class PaddedMaxPooling2D(_MaxPadding, keras.layers.MaxPooling2D):
    """MaxPooling2D with explicit padding (padded cells are -inf)."""


@_register
class PaddedMaxPooling3D(_MaxPadding, keras.layers.MaxPooling3D):
    """MaxPooling3D with explicit padding (padded cells are -inf)."""


class _AveragePadding(_ExplicitPadding):
    """The mean over the real cells of each window: the padded sum over the padded count."""

    def call(self, inputs: Any) -> Any:
        # the pooling layer's own call (skipping _ExplicitPadding's, which pads with 0 too)
        total = super(_ExplicitPadding, self).call(self._padded(inputs))  # type: ignore[misc]
        ones = ops.ones_like(inputs[..., :1])
        count = super(_ExplicitPadding, self).call(self._padded(ones))  # type: ignore[misc]
        return total / count


@_register
class PaddedAveragePooling1D(_AveragePadding, keras.layers.AveragePooling1D):
    """AveragePooling1D with explicit padding; padded cells are not counted."""


@_register
class PaddedAveragePooling2D(_AveragePadding, keras.layers.AveragePooling2D):
    """AveragePooling2D with explicit padding; padded cells are not counted."""


@_register
class PaddedAveragePooling3D(_AveragePadding, keras.layers.AveragePooling3D):
    """AveragePooling3D with explicit padding; padded cells are not counted."""


class _Cropping:
    """A Keras transposed convolution run "valid" with `output_padding`, its output then cropped
    by (before, after) pairs per spatial axis (`crop`): netc's explicit padding.

    A dilated one (stride 1: netc and Keras refuse both) is computed as the convolution it is
    the gradient of, because TensorFlow has no dilated transposed convolution on the CPU: the
    input padded by the dilated kernel's size - 1 on both sides, convolved with the kernel
    flipped and its channel axes swapped."""

    def __init__(self, *args: Any, crop: Sequence[Sequence[int]], **kwargs: Any):
        kwargs["padding"] = "valid"
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.crop = _pairs(crop)

    def call(self, inputs: Any) -> Any:
        dilation = tuple(self.dilation_rate)  # type: ignore[attr-defined]
        if any(d > 1 for d in dilation):
            kernel = self.kernel  # type: ignore[attr-defined]  # [*k, filters, C]
            n = len(dilation)
            for axis in range(n):
                kernel = ops.flip(kernel, axis=axis)
            kernel = ops.swapaxes(kernel, -1, -2)  # [*k, C, filters]
            sizes = self.kernel_size  # type: ignore[attr-defined]
            pads = [(0, 0), *(((k - 1) * d,) * 2 for k, d in zip(sizes, dilation)), (0, 0)]
            y = ops.conv(ops.pad(inputs, pads), kernel, dilation_rate=dilation)
            if self.use_bias:  # type: ignore[attr-defined]
                y = y + self.bias  # type: ignore[attr-defined]
        else:
            y = super().call(inputs)  # type: ignore[misc]
        index = [slice(None)]
        for b, a in self.crop:
            index.append(slice(b, -a if a else None))
        return y[tuple(index)]

    def compute_output_shape(self, input_shape: Any) -> Any:
        full = super().compute_output_shape(input_shape)  # type: ignore[misc]
        return _grow(full, self.crop, -1)

    def get_config(self) -> dict:
        config = super().get_config()  # type: ignore[misc]
        return {**config, "crop": [list(p) for p in self.crop]}


@_register
class CroppedConv1DTranspose(_Cropping, keras.layers.Conv1DTranspose):
    """Conv1DTranspose with netc's explicit (before, after) cropping."""


@_register
class CroppedConv2DTranspose(_Cropping, keras.layers.Conv2DTranspose):
    """Conv2DTranspose with netc's explicit (before, after) cropping per spatial axis."""


@_register
class CroppedConv3DTranspose(_Cropping, keras.layers.Conv3DTranspose):
    """Conv3DTranspose with netc's explicit (before, after) cropping per spatial axis."""


# --- elementwise -----------------------------------------------------------------------------


class _Operands:
    """Operands of an op that are the layer's inputs (each "input" takes the next tensor it is
    called with), constants held in its config ({"constant": nested list, "dtype": name}) or
    weights it owns ({"weight": name, "shape": [...], "dtype": name, "trainable": bool})."""

    def _own(self, operands: Sequence[Any]) -> None:
        self.operands: list[Any] = [o if isinstance(o, str) else dict(o) for o in operands]
        self.owned: dict[str, Any] = {}
        for o in self.operands:
            if isinstance(o, dict) and "weight" in o:
                self.owned[o["weight"]] = self.add_weight(  # type: ignore[attr-defined]
                    name=o["weight"],
                    shape=tuple(o["shape"]),
                    dtype=o["dtype"],
                    initializer="zeros",  # netc sets the values
                    trainable=o.get("trainable", True),
                )

    def _values(self, inputs: Any) -> list[Any]:
        given = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        feed = iter(given)
        out = []
        for o in self.operands:
            if o == "input":
                out.append(next(feed))
            elif "constant" in o:
                out.append(ops.convert_to_tensor(o["constant"], dtype=o["dtype"]))
            else:
                out.append(self.owned[o["weight"]])
        return out


UNARY = {
    "log": ops.log,
    "sqrt": ops.sqrt,
    "abs": ops.absolute,
    "neg": ops.negative,
    "gelu_tanh": lambda x: ops.gelu(x, approximate=True),
}


def _unary(function: str) -> Any:
    return UNARY.get(function) or keras.activations.get(function)


@_register
class Unary(_Operands, keras.layers.Layer):
    """An elementwise function: one Keras has no layer or activation name for (log, sqrt,
    abs, neg, gelu_tanh), or any Keras activation (with `args`, e.g. leaky_relu's
    negative_slope) of a weight or constant the layer holds (`operand`, as `Binary`'s; the
    tensor it is called with then only places it in the model)."""

    def __init__(
        self, function: str, operand: Any = "input", args: dict | None = None, **kwargs: Any
    ):
        super().__init__(**kwargs)
        if function not in UNARY:
            keras.activations.get(function)  # a ValueError for an unknown name
        self.function, self.args = function, dict(args or {})
        self._own([operand])

    def call(self, x: Any) -> Any:
        (value,) = self._values(x) if self.operands[0] == "input" else self._values([])
        return _unary(self.function)(value, **self.args)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "function": self.function,
            "operand": self.operands[0],
            "args": self.args,
        }


def _broadcast_like(x: Any, like: Any) -> Any:
    """`x` repeated to the shape `x` and `like` broadcast to, in `x`'s dtype."""
    return ops.where(ops.ones_like(like, dtype="bool"), x, x)


BINARY = {
    "add": ops.add,
    "sub": ops.subtract,
    "mul": ops.multiply,
    "div": ops.divide,
    "maximum": ops.maximum,
    "minimum": ops.minimum,
    "matmul": ops.matmul,
    "broadcast_like": _broadcast_like,
}


@_register
class Binary(_Operands, keras.layers.Layer):
    """A binary op with numpy broadcasting (add, sub, mul, div, maximum, minimum, matmul,
    broadcast_like) whose operands are the layer's inputs, constants held in the config, or
    weights the layer owns (`operands`, see `_Operands`)."""

    def __init__(self, op: str, operands: Sequence[Any] = ("input", "input"), **kwargs: Any):
        super().__init__(**kwargs)
        if op not in BINARY:
            raise ValueError(f"unknown binary op `{op}`")
        self.op = op
        self._own(operands)

    def call(self, inputs: Any) -> Any:
        return BINARY[self.op](*self._values(inputs))

    def get_config(self) -> dict:
        return {**super().get_config(), "op": self.op, "operands": self.operands}


REDUCE = {
    "reduce_sum": ops.sum,
    "reduce_mean": ops.mean,
    "reduce_max": ops.max,
    "reduce_min": ops.min,
    "reduce_prod": ops.prod,
}


@_register
class Reduce(keras.layers.Layer):
    """A reduction over `axis` (a list of axes, the batch axis allowed; none: nothing
    reduced), keeping the reduced axes with `keepdims`."""

    def __init__(self, op: str, axis: Sequence[int], keepdims: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if op not in REDUCE:
            raise ValueError(f"unknown reduction `{op}`")
        self.op, self.axis, self.keepdims = op, [int(a) for a in axis], bool(keepdims)

    def call(self, x: Any) -> Any:
        if not self.axis:  # netc's empty axis list reduces nothing (numpy would reduce all)
            return ops.copy(x)
        narrow = keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16")
        wide = ops.cast(x, "float32") if narrow else x
        y = REDUCE[self.op](wide, axis=tuple(self.axis), keepdims=self.keepdims)
        # f16 sums accumulate in float32, as netc's; the mean of ints stays an int there
        return ops.cast(y, x.dtype) if y.dtype != x.dtype else y

    def get_config(self) -> dict:
        return {**super().get_config(), "op": self.op, "axis": self.axis, "keepdims": self.keepdims}


@_register
class ArgMax(keras.layers.Layer):
    """The index (int64) of the largest value along `axis`; ties go to the first."""

    def __init__(self, axis: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, x: Any) -> Any:
        return ops.cast(ops.argmax(x, axis=self.axis), "int64")

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


@_register
class Cast(keras.layers.Layer):
    """Convert to `to` (a Keras dtype name): floats to ints truncate toward zero."""

    def __init__(self, to: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.to = to

    def call(self, x: Any) -> Any:
        return ops.cast(x, self.to)

    def get_config(self) -> dict:
        return {**super().get_config(), "to": self.to}


# --- shape and layout ------------------------------------------------------------------------


@_register
class Transpose(keras.layers.Layer):
    """numpy's transpose, `perm` over every axis (the batch axis too; Keras' Permute fixes it)."""

    def __init__(self, perm: Sequence[int], **kwargs: Any):
        super().__init__(**kwargs)
        self.perm = [int(p) for p in perm]

    def call(self, x: Any) -> Any:
        return ops.transpose(x, self.perm)

    def get_config(self) -> dict:
        return {**super().get_config(), "perm": self.perm}


@_register
class Split(keras.layers.Layer):
    """Split along `axis` into parts of the given `sizes` (a list of tensors)."""

    def __init__(self, sizes: Sequence[int], axis: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.sizes, self.axis = [int(s) for s in sizes], int(axis)

    def call(self, x: Any) -> Any:
        bounds = [sum(self.sizes[: i + 1]) for i in range(len(self.sizes) - 1)]
        return list(ops.split(x, bounds, axis=self.axis))

    def get_config(self) -> dict:
        return {**super().get_config(), "sizes": self.sizes, "axis": self.axis}


@_register
class Slice(keras.layers.Layer):
    """Python's start:end:step along each of `axes` (ends may be None)."""

    def __init__(
        self,
        axes: Sequence[int],
        starts: Sequence[int],
        ends: Sequence[int | None],
        steps: Sequence[int],
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.axes = [int(a) for a in axes]
        self.starts = [int(s) for s in starts]
        self.ends = [None if e is None else int(e) for e in ends]
        self.steps = [int(s) for s in steps]

    def call(self, x: Any) -> Any:
        index = [slice(None)] * len(x.shape)
        for axis, start, end, step in zip(self.axes, self.starts, self.ends, self.steps):
            index[axis] = slice(start, end, step)
        return x[tuple(index)]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axes": self.axes,
            "starts": self.starts,
            "ends": self.ends,
            "steps": self.steps,
        }


@_register
class Squeeze(keras.layers.Layer):
    """Remove the listed axes, each of size 1."""

    def __init__(self, axes: Sequence[int], **kwargs: Any):
        super().__init__(**kwargs)
        self.axes = [int(a) for a in axes]

    def call(self, x: Any) -> Any:
        return ops.squeeze(x, axis=tuple(self.axes))

    def get_config(self) -> dict:
        return {**super().get_config(), "axes": self.axes}


@_register
class ExpandDims(keras.layers.Layer):
    """Insert an axis of size 1 at `axis` of the output."""

    def __init__(self, axis: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, x: Any) -> Any:
        return ops.expand_dims(x, self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


@_register
class Concat(keras.layers.Layer):
    """Concatenate along any axis, the batch axis included (Keras' Concatenate needs axis >= 1
    and two inputs or more)."""

    def __init__(self, axis: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs: Any) -> Any:
        return ops.concatenate(list(inputs), axis=self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


@_register
class Pad(keras.layers.Layer):
    """numpy's pad on every axis by (before, after) pairs: "constant" (with `value`),
    "reflect" (the edge not repeated) or "edge" (the edge repeated)."""

    def __init__(
        self, pads: Sequence[Sequence[int]], mode: str = "constant", value: float = 0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.pads, self.mode, self.value = _pairs(pads), mode, float(value)

    def call(self, x: Any) -> Any:
        if self.mode == "constant":
            return ops.pad(x, self.pads, constant_values=self.value)
        if self.mode == "reflect":
            return ops.pad(x, self.pads, mode="reflect")
        for axis, (b, a) in enumerate(self.pads):  # edge: gather with clamped indices
            if b or a:
                size = x.shape[axis]
                index = [min(max(i, 0), size - 1) for i in range(-b, size + a)]
                x = ops.take(x, ops.convert_to_tensor(index, "int32"), axis=axis)
        return x

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "pads": [list(p) for p in self.pads],
            "mode": self.mode,
            "value": self.value,
        }


# --- embeddings ------------------------------------------------------------------------------


@_register
class PositionalEmbedding(keras.layers.Layer):
    """`x + embeddings[:T]` for x [N, T, D]: one learned vector per position (`embeddings`
    [max_length, D], glorot_uniform as Keras-hub's PositionEmbedding, which returns the vectors
    alone; this layer adds them)."""

    def __init__(self, max_length: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_length = int(max_length)

    def build(self, input_shape: Any) -> None:
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.max_length, int(input_shape[-1])),
            initializer="glorot_uniform",
        )

    def call(self, x: Any) -> Any:
        steps = ops.shape(x)[1]
        return x + ops.expand_dims(self.embeddings[:steps], 0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "max_length": self.max_length}


CUSTOM_LAYERS = (
    NetcModel,
    PaddedConv1D,
    PaddedConv2D,
    PaddedConv3D,
    PaddedDepthwiseConv1D,
    PaddedDepthwiseConv2D,
    PaddedSeparableConv1D,
    PaddedSeparableConv2D,
    PaddedMaxPooling1D,
    PaddedMaxPooling2D,
    PaddedMaxPooling3D,
    PaddedAveragePooling1D,
    PaddedAveragePooling2D,
    PaddedAveragePooling3D,
    CroppedConv1DTranspose,
    CroppedConv2DTranspose,
    CroppedConv3DTranspose,
    Unary,
    Binary,
    Reduce,
    ArgMax,
    Cast,
    Transpose,
    Split,
    Slice,
    Squeeze,
    ExpandDims,
    Concat,
    Pad,
    PositionalEmbedding,
)
