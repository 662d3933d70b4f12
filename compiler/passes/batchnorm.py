"""Batchnorm folding: a convolution or dense followed by inference batchnorm becomes the
convolution alone, with a rescaled kernel and a new bias. Also the per-op output-channel
layout of kernels, which fold_scale_shift shares."""

from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .rewrite import (
    Names,
    Weights,
    folded_weight_name,
    known_value,
    new_param,
    only_reader,
    op_attrs,
    rebuild,
    with_origin,
    with_weights,
)

# Ops with one output channel per entry of their last output axis, and where in the kernel
# that channel lives: "last" ([*k, in, out]: conv, dense), "depthwise" ([*k, C, M], channel
# c * M + j at [..., c, j]), "transpose" ([*k, out, in]: axis -2).
CHANNEL_LAYOUT = {
    "dense": "last",
    "conv1d": "last",
    "conv2d": "last",
    "conv3d": "last",
    "depthwise_conv1d": "depthwise",
    "depthwise_conv2d": "depthwise",
    "conv1d_transpose": "transpose",
    "conv2d_transpose": "transpose",
    "conv3d_transpose": "transpose",
    # the pointwise kernel [*1, C*M, out] (its input 2) sets the output channels
    "separable_conv1d": "last",
    "separable_conv2d": "last",
}
# The input holding the kernel CHANNEL_LAYOUT describes, where it is not input 1; the bias (if
# any) is the input after it.
_KERNEL_INPUT = {"separable_conv1d": 2, "separable_conv2d": 2}


def kernel_index(op: str) -> int:
    """The input of `op` that holds the kernel its output channels scale (the bias follows)."""
    return _KERNEL_INPUT.get(op, 1)


def scale_kernel(op: str, kernel: np.ndarray, scale: np.ndarray, dtype: str = "f64") -> np.ndarray:
    """`kernel` with output channel c multiplied by `scale[c]`, computed in float64 and rounded
    once to `dtype`."""
    k = np.asarray(kernel)
    layout = CHANNEL_LAYOUT[op]
    if layout == "last":
        s = scale
    elif layout == "depthwise":
        s = scale.reshape(k.shape[-2], k.shape[-1])
    else:
        s = scale[:, None]
    if dtype == "f32":  # the float64 products rounded as they are made: no float64 kernel
        out = np.empty(k.shape, np.float32)
        return np.multiply(k, s, out=out, dtype=np.float64, casting="unsafe")
    return k.astype(np.float64) * s


def channels(node: Node) -> int:
    """The channel count (last dim) of an op with weights, always a literal size."""
    c = node.tensor_type.shape[-1]
    assert isinstance(c, int), f"{node.name} has symbolic channels {c}"
    return c


def fold_batchnorm(
    graph: Graph, weights: Weights, *, keep_training: bool = False
) -> tuple[Graph, Weights]:
    """`batchnorm(conv(x, W, b))` -> `conv(x, W * s, (b - mean) * s + beta)`,
    `s = gamma / sqrt(moving_variance + epsilon)`.

    1. conv1d/2d/3d (grouped too) and dense: kernel `[*k, in, out]`, s along the last axis.
    2. depthwise_conv1d/2d: kernel `[*k, C, M]`, output channel `c * M + j` scaled at `[.., c, j]`.
    3. conv1d/2d/3d_transpose: kernel `[*k, out, in]`, s along axis -2.
    4. separable_conv1d/2d: the pointwise kernel `[*1, C*M, out]`, s along the last axis (the
       depthwise kernel stays).
    5. Without `scale`, gamma is 1; without `center`, beta is 0; a conv without bias gets one.
    The folded kernel and bias are new weights named after the old ones
    (`conv2d.kernel` -> `conv2d.kernel_folded`, `conv2d.bias_folded`; see
    `rewrite.folded_weight_name`): the originals keep their values for any other reader, and
    dead-node elimination drops them otherwise. The conv keeps its name and span; the
    batchnorm's span joins its `origin`.
    Refused, leaving both nodes: `keep_training` (batchnorm still learns); a conv output that
    has other readers or is a graph output; a batchnorm over an axis other than the last (the
    channels); a kernel, bias or statistic whose value is not known (not a weight in
    `weights` or a constant); a non-float type; a scale that is not finite
    (moving_variance + epsilon <= 0).
    """
    if keep_training:
        return graph, weights
    names = Names(graph)
    replace: dict[str, tuple[Node, ...]] = {}
    rename: dict[str, str] = {}
    added: dict[str, np.ndarray] = {}
    for bn in graph.nodes:
        if bn.op != "batchnorm":
            continue
        conv = graph[bn.inputs[0]]
        if conv.op not in CHANNEL_LAYOUT or only_reader(graph, conv.name) != bn.name:
            continue
        if conv.name in replace or bn.attrs["axis"] != bn.tensor_type.rank - 1:
            continue
        if not bn.tensor_type.is_float:
            continue
        stats = [known_value(graph, weights, i) for i in bn.inputs[1:]]
        ki = kernel_index(conv.op)
        kernel = known_value(graph, weights, conv.inputs[ki])
        bias = known_value(graph, weights, conv.inputs[ki + 1]) if conv.attrs["bias"] else 0.0
        if kernel is None or bias is None or any(v is None for v in stats):
            continue
        w = [np.asarray(v, np.float64) for v in stats]
        gamma = w.pop(0) if bn.attrs["scale"] else 1.0
        beta = w.pop(0) if bn.attrs["center"] else 0.0
        mean, var = w
        with np.errstate(all="ignore"):
            s = gamma / np.sqrt(var + bn.attrs["epsilon"])
        s = np.broadcast_to(s, (channels(bn),))
        if not np.all(np.isfinite(s)):
            continue
        new_bias = (np.asarray(bias, np.float64) - mean) * s + beta
        dtype = conv.tensor_type.dtype
        old_kernel = graph[conv.inputs[ki]]
        old_bias = graph[conv.inputs[ki + 1]] if conv.attrs["bias"] else conv
        k_name = folded_weight_name(graph, names, old_kernel.name, conv.name, replace)
        b_name = folded_weight_name(
            graph,
            names,
            old_bias.name if conv.attrs["bias"] else f"{conv.name}.bias",
            conv.name,
            replace,
        )
        k_node, k_value = new_param(
            k_name,
            scale_kernel(conv.op, kernel, s, old_kernel.tensor_type.dtype),
            old_kernel.tensor_type.dtype,
            old_kernel,
        )
        b_node, b_value = new_param(b_name, new_bias, dtype, old_bias)
        attrs = with_origin({**op_attrs(conv), "bias": True}, conv, [bn])
        fused = conv.with_(inputs=(*conv.inputs[:ki], k_node.name, b_node.name), attrs=attrs)
        replace[conv.name] = (k_node, b_node, fused)
        replace[bn.name] = ()
        rename[bn.name] = conv.name
        added[k_node.name], added[b_node.name] = k_value, b_value
    if not replace:
        return graph, weights
    return rebuild(graph, replace, rename), with_weights(weights, added)
