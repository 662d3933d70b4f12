"""The op conformance cases every backend runs: each op and its attribute variants as a .net
snippet, with the weights and inputs they are run on. One list, so that adding an op adds it
to every backend's suite (test_<backend>_conformance.py), and one comparison
(netc.runtime.tolerance).

Weights are randomized (biases, statistics and gammas not zero or one). Inputs come in kinds
that hit the edges runtimes get wrong: standard normal, all negative (a window of a pool or a
padded conv sees no positive value), large magnitudes, and small ones with exact zeros.
"""

from __future__ import annotations

import numpy as np

import netc
from netc.ir import numpy_dtype
from netc.runtime.tolerance import assert_close
from netc.weights import randomized_weights

SYMBOLS = {"T": 5, "S": 4, "H": 6, "W": 5}  # the batch N is 1 or 3
CONV = "(x |> conv2d(4, 1))"  # an op after this reads a channels-first value
SAME_CONV = '(x |> conv2d(3, 3, padding="same"))'  # keeps the shape of x

# (op, case, inputs, body); every output is named y (or y1, y2, ...) and typed `tensor`
CASES: list[tuple[str, str, str, str]] = []


def case(op: str, name: str, inputs: str, body: str) -> None:
    CASES.append((op, name, inputs, body))


IMG = "x: f32[N, 6, 5, 3]"
SEQ = "x: f32[N, 4, 6]"

for unary in ("relu", "relu6", "sigmoid", "tanh", "silu", "softplus", "exp", "abs", "neg"):
    case(unary, "rank2", "x: f32[N, 7]", f"y = (x * 4.0) |> {unary}")
    case(unary, "after_conv", IMG, f"y = {CONV} |> {unary}")
for positive in ("log", "sqrt"):
    case(positive, "rank2", "x: f32[N, 7]", f"y = (abs(x) + 0.5) |> {positive}")
    case(positive, "after_conv", IMG, f"y = (abs({CONV}) + 0.5) |> {positive}")
case("leaky_relu", "default", "x: f32[N, 7]", "y = x |> leaky_relu")
case("leaky_relu", "alpha", IMG, f"y = {CONV} |> leaky_relu(alpha=0.1)")
case("elu", "default", "x: f32[N, 7]", "y = x |> elu")
case("elu", "alpha", IMG, f"y = {CONV} |> elu(alpha=0.5)")
case("gelu", "exact", "x: f32[N, 7]", "y = (x * 3.0) |> gelu")
case("gelu", "tanh", "x: f32[N, 7]", "y = (x * 3.0) |> gelu(approximate=true)")
case("gelu", "after_conv", IMG, f"y = {CONV} |> gelu")
case("softmax", "last", "x: f32[N, 7]", "y = x |> softmax")
case("softmax", "rank3_axis1", SEQ, "y = x |> softmax(axis=1)")
case("softmax", "after_conv_channels", IMG, f"y = {CONV} |> softmax")
case("softmax", "after_conv_axis1", IMG, f"y = {CONV} |> softmax(axis=1)")
case("dropout", "rank2", "x: f32[N, 7]", "y = x |> dropout(0.5)")
case("dropout", "after_conv", IMG, f"y = {CONV} |> dropout(0.2)")

for binary, sym in (
    ("add", "+"),
    ("sub", "-"),
    ("mul", "*"),
    ("div", "/"),
    ("maximum", None),
    ("minimum", None),
):

    def expr(a: str, b: str, sym: str | None = sym, binary: str = binary) -> str:
        b = f"(abs({b}) + 0.5)" if binary == "div" and b[0].isalpha() else b
        return f"{a} {sym} {b}" if sym else f"{binary}({a}, {b})"

    case(binary, "same_shape", "x: f32[N, 4, 5], z: f32[N, 4, 5]", f"y = {expr('x', 'z')}")
    case(binary, "broadcast", "x: f32[N, 4, 5], z: f32[5]", f"y = {expr('x', 'z')}")
    case(binary, "broadcast_left", "x: f32[N, 1, 5], z: f32[4, 1]", f"y = {expr('z', 'x')}")
    if sym:  # the language writes scalars only beside an operator
        case(binary, "scalar", "x: f32[N, 4]", f"y = {expr('x', '2.0')}")
        case(binary, "after_conv_scalar", IMG, f"y = {expr(CONV, '2.0')}")
    case(binary, "after_conv_residual", IMG, "y = " + expr(SAME_CONV, "x"))
    case(binary, "after_conv_vector", "x: f32[N, 6, 5, 3], z: f32[4]", f"y = {expr(CONV, 'z')}")

case("sub", "after_conv_minus_mean", IMG, f"y = {CONV} - ({CONV} |> reduce_mean)")
case(
    "mul",
    "squeeze_excite",
    IMG,
    f"y = {CONV} * ({CONV} |> global_avgpool(keepdims=true) |> sigmoid)",
)
case("add", "after_conv_rank2_broadcast", "x: f32[N, 6, 5, 3], z: f32[5, 4]", f"y = {CONV} + z")
case("matmul", "batched", "x: f32[N, 3, 4], z: f32[N, 4, 5]", "y = x @ z")
case("matmul", "broadcast", "x: f32[N, 3, 4], z: f32[4, 5]", "y = x @ z")
case("matmul", "rank2", "x: f32[N, 4], z: f32[4, 6]", "y = x @ z")

case("dense", "rank2", "x: f32[N, 7]", "y = x |> dense(5)")
case("dense", "no_bias", "x: f32[N, 7]", "y = x |> dense(5, bias=false)")
case("dense", "rank3", SEQ, "y = x |> dense(3)")
case("dense", "rank3_no_bias", SEQ, "y = x |> dense(3, bias=false)")
case("dense", "after_conv", IMG, f"y = {CONV} |> dense(2)")

case("conv1d", "valid", "x: f32[N, 9, 3]", "y = x |> conv1d(4, 3)")
case(
    "conv1d",
    "same_stride2_odd",
    "x: f32[N, 9, 3]",
    'y = x |> conv1d(4, 4, stride=2, padding="same")',
)
case("conv1d", "dilation", "x: f32[N, 11, 2]", 'y = x |> conv1d(3, 3, dilation=2, padding="same")')
case("conv1d", "groups", "x: f32[N, 8, 4]", "y = x |> conv1d(6, 3, groups=2)")
case("conv1d", "symbolic_length", "x: f32[N, T, 3]", 'y = x |> conv1d(2, 3, padding="same")')
case("conv2d", "valid", IMG, "y = x |> conv2d(4, 3)")
case(
    "conv2d",
    "same_stride2_odd",
    "x: f32[N, 9, 7, 3]",
    'y = x |> conv2d(4, 3, stride=2, padding="same")',
)
case(
    "conv2d", "same_even_kernel", "x: f32[N, 7, 6, 2]", 'y = x |> conv2d(3, (2, 4), padding="same")'
)
case("conv2d", "strides", "x: f32[N, 9, 8, 3]", "y = x |> conv2d(2, (3, 2), stride=(2, 3))")
case(
    "conv2d",
    "dilation",
    "x: f32[N, 9, 8, 3]",
    'y = x |> conv2d(2, 3, dilation=(2, 1), padding="same")',
)
case("conv2d", "groups", "x: f32[N, 6, 5, 4]", "y = x |> conv2d(6, 3, groups=2)")
case("conv2d", "explicit_pads", IMG, "y = x |> conv2d(2, 3, padding=((1, 2), (0, 1)))")
case("conv2d", "no_bias", IMG, "y = x |> conv2d(2, 3, bias=false)")
case("conv2d", "symbolic_spatial", "x: f32[N, H, W, 3]", 'y = x |> conv2d(4, 3, padding="same")')
case(
    "conv2d", "stack", IMG, 'y = x |> conv2d(4, 3, padding="same") |> relu |> conv2d(5, 3) |> relu'
)
case(
    "conv3d",
    "same_stride2",
    "x: f32[N, 5, 6, 4, 2]",
    'y = x |> conv3d(3, 3, stride=2, padding="same")',
)
case(
    "conv3d", "valid_dilation", "x: f32[N, 6, 6, 5, 2]", "y = x |> conv3d(2, (2, 3, 2), dilation=2)"
)
case(
    "depthwise_conv1d",
    "multiplier3",
    "x: f32[N, 9, 2]",
    'y = x |> depthwise_conv1d(3, depth_multiplier=3, padding="same")',
)
case(
    "depthwise_conv2d", "same", "x: f32[N, 7, 6, 3]", 'y = x |> depthwise_conv2d(3, padding="same")'
)
case(
    "depthwise_conv2d",
    "multiplier2_stride2",
    "x: f32[N, 9, 8, 3]",
    "y = x |> depthwise_conv2d(3, stride=2, depth_multiplier=2)",
)
case(
    "depthwise_conv2d",
    "dilation_no_bias",
    "x: f32[N, 9, 8, 2]",
    'y = x |> depthwise_conv2d(3, dilation=2, padding="same", bias=false)',
)
case(
    "conv1d_transpose",
    "same_stride2",
    "x: f32[N, 5, 3]",
    'y = x |> conv1d_transpose(2, 3, stride=2, padding="same")',
)
case(
    "conv1d_transpose",
    "valid_stride3",
    "x: f32[N, 5, 3]",
    "y = x |> conv1d_transpose(2, 4, stride=3)",
)
case(
    "conv2d_transpose",
    "same_stride2",
    IMG,
    'y = x |> conv2d_transpose(4, 3, stride=2, padding="same")',
)
case(
    "conv2d_transpose",
    "same_even_kernel",
    IMG,
    'y = x |> conv2d_transpose(2, 4, stride=2, padding="same")',
)
case("conv2d_transpose", "valid_stride2", IMG, "y = x |> conv2d_transpose(4, 3, stride=2)")
case("conv2d_transpose", "valid_kernel_lt_stride", IMG, "y = x |> conv2d_transpose(2, 2, stride=3)")
case(
    "conv2d_transpose",
    "output_padding",
    IMG,
    'y = x |> conv2d_transpose(2, 3, stride=2, padding="same", output_padding=1)',
)
case(
    "conv2d_transpose",
    "output_padding_valid",
    IMG,
    "y = x |> conv2d_transpose(2, 3, stride=(2, 3), output_padding=(1, 2))",
)
case("conv2d_transpose", "dilation", IMG, "y = x |> conv2d_transpose(2, 3, dilation=2)")
case(
    "conv2d_transpose",
    "explicit_pads",
    IMG,
    "y = x |> conv2d_transpose(2, 3, stride=2, padding=((1, 0), (0, 2)))",
)
case(
    "conv2d_transpose",
    "no_bias",
    IMG,
    'y = x |> conv2d_transpose(2, 3, padding="same", bias=false)',
)
case(
    "conv3d_transpose",
    "same_stride2",
    "x: f32[N, 3, 4, 2, 2]",
    'y = x |> conv3d_transpose(2, 3, stride=2, padding="same")',
)

case("maxpool", "default", IMG, "y = x |> maxpool")
case("maxpool", "same_stride1", IMG, 'y = x |> maxpool(3, stride=1, padding="same")')
case(
    "maxpool",
    "same_stride2_odd",
    "x: f32[N, 9, 7, 3]",
    'y = x |> maxpool(3, stride=2, padding="same")',
)
case("maxpool", "explicit_pads", IMG, "y = x |> maxpool(3, stride=2, padding=((1, 2), (2, 0)))")
case("maxpool", "rank1", "x: f32[N, 9, 3]", 'y = x |> maxpool(3, stride=2, padding="same")')
case("maxpool", "rank3", "x: f32[N, 5, 6, 4, 2]", "y = x |> maxpool(2)")
case("avgpool", "default", IMG, "y = x |> avgpool")
case(
    "avgpool",
    "same_excludes_padding",
    "x: f32[N, 9, 7, 3]",
    'y = x |> avgpool(3, stride=2, padding="same")',
)
case("avgpool", "valid_stride1", IMG, "y = x |> avgpool(3, stride=1)")
case("avgpool", "rank1", "x: f32[N, 9, 3]", 'y = x |> avgpool(2, padding="same")')
case("avgpool", "rank3", "x: f32[N, 5, 6, 4, 2]", 'y = x |> avgpool(3, stride=2, padding="same")')
for pool in ("global_avgpool", "global_maxpool"):
    case(pool, "after_conv", IMG, f"y = {CONV} |> {pool}")
    case(pool, "after_conv_keepdims", IMG, f"y = {CONV} |> {pool}(keepdims=true)")
    case(pool, "channels_last_input", IMG, f"y = x |> {pool}")
    case(pool, "rank3", SEQ, f"y = x |> {pool}")
    case(pool, "rank5_keepdims", "x: f32[N, 3, 4, 5, 2]", f"y = x |> {pool}(keepdims=true)")

case("batchnorm", "after_conv", IMG, f"y = {CONV} |> batchnorm")
case("batchnorm", "rank2", "x: f32[N, 7]", "y = x |> batchnorm(epsilon=1e-5)")
case("batchnorm", "rank3_axis1", SEQ, "y = x |> batchnorm(axis=1)")
case("batchnorm", "after_conv_axis1", IMG, f"y = {CONV} |> batchnorm(axis=1)")
case("batchnorm", "channels_last_input", IMG, "y = x |> batchnorm")
case("batchnorm", "no_scale_no_center", IMG, f"y = {CONV} |> batchnorm(scale=false, center=false)")
case("batchnorm", "decomposed_no_scale", SEQ, "y = x |> batchnorm(scale=false)")
case("layernorm", "last", SEQ, "y = x |> layernorm")
case("layernorm", "two_axes", SEQ, "y = x |> layernorm(axis=(1, 2))")
case("layernorm", "middle_axis", SEQ, "y = x |> layernorm(axis=1, epsilon=1e-5)")
case("layernorm", "after_conv_channels", IMG, f"y = {CONV} |> layernorm")
case("layernorm", "after_conv_all_axes", IMG, f"y = {CONV} |> layernorm(axis=(1, 2, 3))")
case("layernorm", "no_scale_no_center", SEQ, "y = x |> layernorm(scale=false, center=false)")
case("layernorm", "no_center_decomposed", SEQ, "y = x |> layernorm(axis=1, center=false)")

case("embedding", "i32", "x: i32[N, 5]", "y = x |> embedding(10, 4)")
case("embedding", "i64_rank3", "x: i64[N, 2, 3]", "y = x |> embedding(10, 3)")
case("positional_embedding", "static", SEQ, "y = x |> positional_embedding(8)")
case("positional_embedding", "symbolic", "x: f32[N, T, 3]", "y = x |> positional_embedding(9)")

case("lstm", "last", SEQ, "y = x |> lstm(5)")
case("lstm", "sequences", SEQ, "y = x |> lstm(5, return_sequences=true)")
case("lstm", "state", SEQ, "y1, y2, y3 = x |> lstm(3, return_state=true)")
case("lstm", "backwards", SEQ, "y = x |> lstm(4, go_backwards=true)")
case(
    "lstm", "backwards_sequences", SEQ, "y = x |> lstm(4, go_backwards=true, return_sequences=true)"
)
case(
    "lstm",
    "symbolic_steps_state",
    "x: f32[N, T, 3]",
    "y1, y2, y3 = x |> lstm(4, return_sequences=true, return_state=true)",
)
case("lstm", "after_conv1d", "x: f32[N, 7, 3]", "y = (x |> conv1d(4, 3)) |> lstm(3)")
# bidirectional(...) is these ops: both directions, the backward steps reversed, a merge (every
# merge mode is checked against Keras' Bidirectional in test_bidirectional.py)
case(
    "lstm",
    "bidirectional_concat",
    "x: f32[N, T, 3]",
    "y = x |> bidirectional(lstm(4, return_sequences=true))",
)
case(
    "gru",
    "bidirectional_none_states",
    "x: f32[N, T, 3]",
    "y1, y2, y3, y4 = x |> bidirectional(gru(2, return_sequences=true, return_state=true), "
    "merge_mode=none)",
)
case("gru", "last", SEQ, "y = x |> gru(5)")
case(
    "gru",
    "after_conv1d",
    "x: f32[N, 7, 3]",
    "y = (x |> conv1d(4, 3)) |> gru(3, return_sequences=true)",
)
case("gru", "sequences", SEQ, "y = x |> gru(5, return_sequences=true)")
case("gru", "reset_before", SEQ, "y = x |> gru(4, return_sequences=true, reset_after=false)")
case("gru", "state", SEQ, "y1, y2 = x |> gru(3, return_state=true)")
case(
    "gru",
    "backwards_sequences",
    "x: f32[N, T, 3]",
    "y = x |> gru(4, go_backwards=true, return_sequences=true)",
)
case("gru", "backwards_reset_before", SEQ, "y = x |> gru(4, go_backwards=true, reset_after=false)")

MHA = "multi_head_attention"
case(MHA, "self", SEQ, f"y = x |> {MHA}(heads=2, key_dim=3)")
case(MHA, "cross", "x: f32[N, T, 6], z: f32[N, S, 4]", f"y = {MHA}(x, z, heads=3, key_dim=2)")
case(
    MHA,
    "query_value_key",
    "x: f32[N, 3, 6], v: f32[N, 4, 5], k: f32[N, 4, 2]",
    f"y = {MHA}(x, v, k, heads=2, key_dim=4, value_dim=3, output_dim=7)",
)
case(MHA, "causal", SEQ, f"y = x |> {MHA}(heads=2, key_dim=3, causal=true)")
case(MHA, "causal_symbolic", "x: f32[N, T, 6]", f"y = x |> {MHA}(heads=3, key_dim=2, causal=true)")
case(MHA, "no_bias", SEQ, f"y = x |> {MHA}(heads=1, key_dim=5, bias=false)")

case("flatten", "rank3", SEQ, "y = x |> flatten")
case("flatten", "rank1", "x: f32[N]", "y = x |> flatten")
case("flatten", "after_conv", IMG, f"y = {CONV} |> flatten")
case("flatten", "after_conv_dense", IMG, f"y = {CONV} |> flatten |> dense(3)")
case("reshape", "rank2", "x: f32[N, 12]", "y = x |> reshape((3, 4))")
case("reshape", "infer", SEQ, "y = x |> reshape((-1, 2))")
case("reshape", "after_conv", IMG, f"y = {CONV} |> reshape((30, 4))")
case("transpose", "rank3", SEQ, "y = x |> transpose((0, 2, 1))")
case("transpose", "after_conv", IMG, f"y = {CONV} |> transpose((0, 3, 1, 2))")
case("transpose", "after_conv_swap", IMG, f"y = {CONV} |> transpose((0, 2, 1, 3))")
case("concat", "last", "x: f32[N, 4, 2], z: f32[N, 4, 3]", "y = concat(x, z)")
case("concat", "axis1_three", "x: f32[N, 2, 3], z: f32[N, 4, 3]", "y = concat(x, z, x, axis=1)")
case("concat", "after_conv_with_input", IMG, f"y = concat({CONV}, x)")
case("concat", "after_conv_spatial", IMG, f"y = concat({CONV}, {CONV}, axis=2)")
case("split", "equal", SEQ, "y1, y2 = x |> split(2)")
case("split", "sizes_axis1", SEQ, "y1, y2 = x |> split((1, 3), axis=1)")
case("split", "after_conv", IMG, f"y1, y2, y3 = {CONV} |> split((1, 2, 2), axis=2)")
case("slice", "steps", "x: f32[N, 7, 6]", "y = x[:, 1:6:2, ::3]")
case("slice", "negative", "x: f32[N, 7, 6]", "y = x[:, ::-2, -4:-1]")
case("slice", "after_conv", IMG, f"y = ({CONV})[:, 1:5, ::2, 1:3]")
case("slice", "reverse_symbolic", "x: f32[N, T, 3]", "y = x[:, ::-1]")
case("squeeze", "axis1", "x: f32[N, 1, 4]", "y = x |> squeeze(1)")
case("squeeze", "index", "x: f32[N, 7, 6]", "y = x[:, 2]")
case("squeeze", "after_conv", IMG, f"y = ({CONV})[:, :, 3]")
case("expand_dims", "axis1", SEQ, "y = x |> expand_dims(1)")
case("expand_dims", "last", SEQ, "y = x |> expand_dims(-1)")
case("pad", "constant_value", SEQ, "y = x |> pad(((0, 0), (1, 2), (0, 3)), value=1.5)")
case("pad", "reflect", SEQ, 'y = x |> pad(((0, 0), (2, 1), (1, 3)), mode="reflect")')
case("pad", "edge", SEQ, 'y = x |> pad(((0, 0), (2, 1), (1, 3)), mode="edge")')
case("pad", "after_conv", IMG, f"y = {CONV} |> pad(((0, 0), (1, 0), (2, 1), (0, 2)))")
case("upsample", "nearest2d", IMG, "y = x |> upsample((2, 3))")
case("upsample", "bilinear", IMG, 'y = x |> upsample(2, method="bilinear")')
case("upsample", "rank1", "x: f32[N, 5, 2]", "y = x |> upsample(3)")
case("upsample", "rank3", "x: f32[N, 2, 3, 2, 2]", "y = x |> upsample((2, 1, 2))")
case("upsample", "symbolic", "x: f32[N, H, W, 2]", "y = x |> upsample(2)")
case("resize", "bilinear_up", IMG, "y = x |> resize((11, 8))")
case("resize", "bilinear_down", "x: f32[N, 9, 8, 2]", "y = x |> resize((4, 3))")
case("resize", "nearest_up", IMG, 'y = x |> resize((13, 7), method="nearest")')
case("resize", "nearest_down", "x: f32[N, 9, 8, 2]", 'y = x |> resize((4, 5), method="nearest")')
case("cast", "to_i32", "x: f32[N, 7]", 'y = (x * 3.0) |> cast("i32")')
case("cast", "to_bool", "x: f32[N, 7]", 'y = (x |> relu) |> cast("bool")')
case("cast", "to_f16", "x: f32[N, 7]", 'y = x |> cast("f16")')
case("cast", "int_to_f32", "x: i32[N, 7]", 'y = x |> cast("f32")')
case("cast", "after_conv", IMG, f'y = {CONV} |> cast("f64")')

case("reduce_sum", "axis1", SEQ, "y = x |> reduce_sum(axis=1)")
case("reduce_sum", "after_conv_channels", IMG, f"y = {CONV} |> reduce_sum(axis=-1)")
case("reduce_sum", "int", "x: i32[N, 7]", "y = x |> reduce_sum(axis=1)")
case("reduce_mean", "all", SEQ, "y = x |> reduce_mean")
case("reduce_mean", "after_conv_spatial", IMG, f"y = {CONV} |> reduce_mean(axis=(1, 2))")
case("reduce_mean", "no_axes", SEQ, "y = x |> reduce_mean(axis=())")
case("reduce_max", "keepdims", SEQ, "y = x |> reduce_max(axis=2, keepdims=true)")
case("reduce_max", "after_conv_axis1", IMG, f"y = {CONV} |> reduce_max(axis=1)")
case(
    "reduce_max",
    "after_conv_keepdims",
    IMG,
    f"y = {CONV} |> reduce_max(axis=(1, 3), keepdims=true)",
)
case("reduce_min", "two_axes", SEQ, "y = x |> reduce_min(axis=(0, 2))")
case("reduce_min", "after_conv_height_width", IMG, f"y = {CONV} |> reduce_min(axis=(2, 3))")
case("reduce_prod", "last", SEQ, "y = x |> reduce_prod(axis=-1)")
case("argmax", "last", SEQ, "y = x |> argmax")
case("argmax", "axis1", SEQ, "y = x |> argmax(axis=1)")
case("argmax", "after_conv", IMG, f"y = {CONV} |> argmax")
case("argmax", "after_conv_axis1", IMG, f"y = {CONV} |> argmax(axis=1)")

# float16 end to end (ONNX Runtime computes most of these in float16 on the CPU)
F16 = "x: f16[N, 6, 5, 3]"
case("dense", "f16", "x: f16[N, 7]", "y = x |> dense(5) |> relu")
case("conv2d", "f16", F16, 'y = x |> conv2d(4, 3, padding="same")')
case("layernorm", "f16", "x: f16[N, 4, 6]", "y = x |> layernorm")
case("batchnorm", "f16", F16, "y = (x |> conv2d(4, 1)) |> batchnorm")
case("softmax", "f16", "x: f16[N, 4, 6]", "y = x |> softmax(axis=1)")
case("lstm", "f16", "x: f16[N, 4, 6]", "y = x |> lstm(3)")
case("global_avgpool", "f16", F16, "y = (x |> conv2d(4, 1)) |> global_avgpool")
case("cast", "f16_to_f32", "x: f16[N, 7]", 'y = x |> cast("f32")')

# fused ops come from the optimizer: these bodies are compiled, then its fusion pass runs
case("fused_conv", "relu", IMG, f"y = {CONV} |> relu")
case("fused_conv", "residual_leaky_relu", IMG, f"y = ({SAME_CONV} + x) |> leaky_relu(alpha=0.2)")
case("fused_conv", "residual_relu", IMG, f"y = relu(x + {SAME_CONV})")
case("fused_conv", "depthwise_gelu", IMG, 'y = x |> depthwise_conv2d(3, padding="same") |> gelu')
case(
    "fused_conv",
    "transpose_relu6",
    "x: f32[N, 5, 3]",
    "y = x |> conv1d_transpose(2, 3, stride=2) |> relu6",
)
case("fused_dense", "silu", "x: f32[N, 7]", "y = x |> dense(5) |> silu")
case("fused_dense", "residual_no_bias", SEQ, "y = ((x |> dense(6, bias=false)) + x) |> tanh")
case("fused_dense", "gelu_tanh", SEQ, "y = x |> dense(3) |> gelu(approximate=true)")


def source(inputs: str, body: str) -> str:
    """A model with `inputs` whose outputs are the y names the body assigns."""
    first = body.split("=")[0]
    outs = [o.strip() for o in first.split(",")]
    return f"model m({inputs}) -> ({', '.join(o + ': tensor' for o in outs)}) {{\n  {body}\n}}\n"


INPUT_KINDS = ("normal", "negative", "large", "small")


def build(op: str, inputs: str, body: str) -> tuple[netc.Graph, dict[str, np.ndarray]]:
    """The case's graph and randomized weights (every weight and statistic drawn). For a fused
    op, the optimizer's own fusion pass makes the fused node from the unfused body."""
    graph = netc.compile(source(inputs, body)).graph
    weights = randomized_weights(graph)
    if op.startswith("fused_"):
        from netc.passes import fuse_activation

        graph, weights = fuse_activation(graph, weights)
    assert op in {n.op for n in graph}, f"the case does not use {op}"
    return graph, dict(weights)


def inputs_for(
    graph: netc.Graph, batch: int, kind: str = "normal", seed: int = 1
) -> dict[str, np.ndarray]:
    """Inputs of `kind` (INPUT_KINDS) at `batch`, other symbols from SYMBOLS. Integer inputs are
    ids in [0, 10), below every vocabulary here, including 0 and 9."""
    rng = np.random.default_rng(seed)
    symbols = {"N": batch, **SYMBOLS}
    out = {}
    for name in graph.inputs:
        t = graph[name].tensor_type
        shape = [d if isinstance(d, int) else symbols[d] for d in t.shape]
        if t.dtype in ("i32", "i64"):
            ids = rng.integers(0, 10, shape)
            ids.flat[:2] = (0, 9)[: ids.size]
            out[name] = ids.astype(numpy_dtype(t.dtype))
            continue
        x = rng.normal(0.0, 1.0, shape)
        if kind == "negative":
            x = -np.abs(x) - 0.1
        elif kind == "large":
            x = x * 10.0
        elif kind == "small":
            x = np.where(rng.random(shape) < 0.3, 0.0, x * 1e-3)
        out[name] = x.astype(numpy_dtype(t.dtype))
    return out


def compare(got: dict[str, np.ndarray], want: dict[str, np.ndarray], device: str = "cpu") -> None:
    """Every output of `want` in `got`: same shape, dtype and values within the op tolerance."""
    assert set(got) == set(want), (sorted(got), sorted(want))
    for name, w in want.items():
        assert_close(got[name], w, device=device, err_msg=name)


# --- separable convolutions and hard activations (Keras' SeparableConv1D/2D, hard_sigmoid,
# hard_silu); appended here so that every backend's suite picks them up
for hard in ("hard_sigmoid", "hard_swish"):
    case(hard, "rank2", "x: f32[N, 7]", f"y = (x * 4.0) |> {hard}")
    case(hard, "after_conv", IMG, f"y = {CONV} |> {hard}")
    case(hard, "f16", "x: f16[N, 7]", f"y = (x * 4.0) |> {hard}")
case("hard_swish", "alias_hard_silu", "x: f32[N, 4, 6]", "y = (x * 4.0) |> hard_silu")
case(
    "separable_conv1d",
    "same_multiplier2",
    "x: f32[N, 9, 3]",
    'y = x |> separable_conv1d(4, 3, depth_multiplier=2, padding="same")',
)
case(
    "separable_conv1d",
    "dilation_no_bias",
    "x: f32[N, 11, 2]",
    "y = x |> separable_conv1d(3, 3, dilation=2, bias=false)",
)
case(
    "separable_conv1d",
    "symbolic_length",
    "x: f32[N, T, 3]",
    'y = x |> separable_conv1d(2, 3, padding="same")',
)
case("separable_conv2d", "valid", IMG, "y = x |> separable_conv2d(4, 3)")
case(
    "separable_conv2d",
    "same_stride2_odd",
    "x: f32[N, 9, 7, 3]",
    'y = x |> separable_conv2d(5, 3, stride=2, padding="same", depth_multiplier=2)',
)
case(
    "separable_conv2d",
    "dilation_explicit_pads",
    "x: f32[N, 9, 8, 2]",
    "y = x |> separable_conv2d(3, (3, 2), dilation=(2, 1), padding=((2, 2), (0, 1)))",
)
case("separable_conv2d", "no_bias", IMG, "y = x |> separable_conv2d(2, 3, bias=false)")
case(
    "separable_conv2d",
    "after_conv_relu",
    IMG,
    f'y = {CONV} |> separable_conv2d(6, 3, padding="same") |> relu',
)
case("separable_conv2d", "f16", F16, 'y = x |> separable_conv2d(4, 3, padding="same")')

# Runtime fusions at their edges: a runtime's optimizer must not change what these mean
# (ONNX Runtime folds a zero Pad into the Conv/MaxPool/AveragePool after it, BatchNorm into a
# Conv, activations and Clip into a Conv, Gelu/LayerNorm/bias patterns into fused kernels).
# The all-negative inputs make whole pooling windows negative.
PAD1 = "pad(((0, 0), (1, 1), (1, 1), (0, 0)))"
case("pad", "zero_then_maxpool_after_conv", IMG, f"y = {CONV} |> {PAD1} |> maxpool(3, stride=2)")
case("pad", "zero_then_maxpool_of_input", IMG, f"y = x |> {PAD1} |> maxpool(3, stride=2)")
case(
    "pad",
    "zero_then_maxpool_own_padding",
    "x: f32[N, 9, 7, 3]",
    f'y = {CONV} |> pad(((0, 0), (1, 0), (0, 2), (0, 0))) |> maxpool(3, stride=2, padding="same")',
)
case(
    "pad",
    "zero_then_maxpool_1d",
    "x: f32[N, 9, 3]",
    "y = (x |> conv1d(4, 1)) |> pad(((0, 0), (2, 1), (0, 0))) |> maxpool(3, stride=2)",
)
case(
    "pad",
    "zero_then_maxpool_3d",
    "x: f32[N, 4, 5, 4, 2]",
    "y = (x |> conv3d(3, 1)) |> pad(((0, 0), (1, 1), (0, 1), (1, 0), (0, 0))) |> maxpool(2)",
)
case(
    "pad",
    "value_then_maxpool",
    IMG,
    f"y = {CONV} |> pad(((0, 0), (1, 1), (1, 1), (0, 0)), value=-0.5) |> maxpool(3, stride=2)",
)
case("pad", "zero_cast_then_maxpool", IMG, f'y = {CONV} |> {PAD1} |> cast("f64") |> maxpool(3)')
case("pad", "zero_then_avgpool", IMG, f"y = {CONV} |> {PAD1} |> avgpool(3, stride=2)")
case(
    "pad",
    "zero_then_avgpool_own_padding",
    "x: f32[N, 9, 7, 3]",
    f'y = {CONV} |> pad(((0, 0), (1, 0), (0, 2), (0, 0))) |> avgpool(3, stride=2, padding="same")',
)
case(
    "pad",
    "zero_then_conv",
    IMG,
    f"y = {CONV} |> pad(((0, 0), (1, 2), (2, 0), (0, 0))) |> conv2d(3, 3, stride=2)",
)
case(
    "pad",
    "zero_then_conv_same",
    IMG,
    f'y = {CONV} |> {PAD1} |> conv2d(3, 3, padding="same", bias=false)',
)
case(
    "pad",
    "value_then_conv",
    IMG,
    f"y = {CONV} |> pad(((0, 0), (1, 1), (1, 1), (0, 0)), value=0.5) |> conv2d(3, 3)",
)
case(
    "pad",
    "zero_then_depthwise",
    IMG,
    f'y = {CONV} |> {PAD1} |> depthwise_conv2d(3, stride=2, padding="same")',
)
case(
    "pad",
    "edge_then_maxpool",
    IMG,
    f'y = {CONV} |> pad(((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge") |> maxpool(3, stride=2)',
)
case("maxpool", "negative_windows_same", IMG, f'y = {CONV} |> maxpool(3, stride=2, padding="same")')
case("batchnorm", "after_conv_no_bias", IMG, "y = (x |> conv2d(4, 3, bias=false)) |> batchnorm")
case(
    "batchnorm",
    "after_depthwise",
    IMG,
    'y = (x |> depthwise_conv2d(3, padding="same", depth_multiplier=2)) |> batchnorm',
)
case("batchnorm", "after_dense", "x: f32[N, 7]", "y = (x |> dense(5)) |> batchnorm")
case("relu6", "after_conv_batchnorm", IMG, f"y = ({CONV} * 4.0) |> batchnorm |> relu6")
case("relu6", "after_relu", "x: f32[N, 7]", "y = (x * 4.0) |> relu |> relu6")
case(
    "relu",
    "after_conv_batchnorm_then_maxpool",
    IMG,
    f"y = {CONV} |> batchnorm |> relu |> maxpool(3, stride=2)",
)
case("gelu", "after_dense", SEQ, "y = x |> dense(5) |> gelu")
case("gelu", "tanh_after_dense", SEQ, "y = x |> dense(5) |> gelu(approximate=true)")
case("silu", "after_dense", SEQ, "y = x |> dense(5) |> silu")
case("layernorm", "after_residual_add", SEQ, "y = (x + (x |> dense(6))) |> layernorm")
case(
    "layernorm",
    "decomposed_after_residual_add",
    SEQ,
    "y = (x + (x |> dense(6, bias=false))) |> layernorm(axis=1)",
)
case("add", "after_matmul", "x: f32[N, 3, 4], z: f32[4, 5], b: f32[5]", "y = x @ z + b")
case(
    "mul",
    "after_matmul_scale",
    "x: f32[N, 3, 4], z: f32[N, 5, 4]",
    "y = (x @ (z |> transpose((0, 2, 1)))) * 0.5 |> softmax",
)
case(
    "transpose",
    "twice_cancels",
    SEQ,
    "y = x |> transpose((0, 2, 1)) |> relu |> transpose((0, 2, 1))",
)
case(
    "transpose",
    "after_conv_then_reshape",
    IMG,
    f"y = {CONV} |> transpose((0, 2, 1, 3)) |> reshape((30, 4))",
)

# Explicit paddings Keras' "same" and "valid" cannot express, a transpose of the batch axis
# and a concatenation along it: the Keras backend's own layers (keras_layers.py) run these.
case("conv1d", "explicit_pads", "x: f32[N, 9, 3]", "y = x |> conv1d(4, 3, padding=[(2, 0)])")
case(
    "conv3d",
    "explicit_pads",
    "x: f32[N, 5, 6, 4, 2]",
    "y = x |> conv3d(3, 2, padding=((1, 0), (0, 2), (1, 1)))",
)
case(
    "depthwise_conv1d",
    "explicit_pads",
    "x: f32[N, 9, 3]",
    "y = x |> depthwise_conv1d(3, stride=2, padding=[(0, 2)])",
)
case(
    "depthwise_conv2d",
    "explicit_pads",
    IMG,
    "y = x |> depthwise_conv2d(3, depth_multiplier=2, padding=((2, 1), (0, 1)))",
)
case(
    "separable_conv1d",
    "explicit_pads",
    "x: f32[N, 9, 3]",
    "y = x |> separable_conv1d(4, 3, padding=[(1, 2)])",
)
case(
    "separable_conv2d",
    "explicit_pads",
    IMG,
    "y = x |> separable_conv2d(4, 3, stride=2, padding=((0, 2), (1, 1)))",
)
case(
    "maxpool",
    "rank1_explicit",
    "x: f32[N, 9, 3]",
    "y = x |> maxpool(3, stride=2, padding=[(2, 1)])",
)
case(
    "maxpool",
    "rank3_explicit",
    "x: f32[N, 5, 6, 4, 2]",
    "y = x |> maxpool(2, padding=((1, 0), (0, 1), (1, 1)))",
)
case("avgpool", "explicit_pads", IMG, "y = x |> avgpool(3, stride=2, padding=((1, 2), (2, 0)))")
case(
    "avgpool",
    "rank1_explicit",
    "x: f32[N, 9, 3]",
    "y = x |> avgpool(3, stride=2, padding=[(2, 1)])",
)
case(
    "avgpool",
    "rank3_explicit",
    "x: f32[N, 5, 6, 4, 2]",
    "y = x |> avgpool(2, padding=((1, 0), (0, 1), (1, 1)))",
)
case(
    "conv1d_transpose",
    "explicit_pads",
    "x: f32[N, 5, 3]",
    "y = x |> conv1d_transpose(2, 3, stride=2, padding=[(2, 0)], output_padding=1)",
)
case(
    "conv3d_transpose",
    "explicit_pads",
    "x: f32[N, 3, 4, 3, 2]",
    "y = x |> conv3d_transpose(2, 3, stride=2, padding=((1, 0), (0, 2), (2, 1)))",
)
case("sigmoid", "of_weight", SEQ, 'y = x * sigmoid(weight([6], init="zeros"))')
case("transpose", "batch_axis", SEQ, "y = x |> transpose((1, 0, 2))")
case("concat", "axis0", "x: f32[2, 3], z: f32[3, 3]", "y = concat(x, z, axis=0)")


# --- the language's Keras-application features: activation=, per-channel list constants,
# weights declared by a block (weight(...)), broadcast_like for class tokens
case("gelu", "dense_activation", "x: f32[N, 7]", 'y = x |> dense(5, activation="gelu")')
case("leaky_relu", "conv_activation", IMG, 'y = x |> conv2d(4, 3, activation="leaky_relu")')
case(
    "hard_swish",
    "separable_activation",
    IMG,
    'y = x |> separable_conv2d(4, 3, padding="same", activation="hard_swish")',
)
case("softmax", "dense_activation_rank3", SEQ, 'y = x |> dense(3, activation="softmax")')
case("sub", "per_channel_lists", IMG, "y = (x - [0.5, -1.0, 2.0]) / [0.25, 2.0, 4.0]")
case("mul", "per_channel_after_conv", IMG, f"y = {CONV} * [1.0, -2.0, 0.5, 3.0]")
case("add", "nested_list_after_conv", IMG, f"y = {CONV} + [[1.0], [2.0], [3.0], [4.0], [5.0]]")
case("maximum", "list", IMG, "y = maximum(x, [0.0, -0.5, 0.5])")
case("minimum", "scalar_after_conv", IMG, f"y = minimum({CONV}, 0.25)")
case("add", "int_list", "x: i32[N, 4]", "y = x + [1, -2, 3, 0]")
case("mul", "layer_scale_weight", SEQ, "y = x * weight([6], init=constant(1e-6))")
case("mul", "layer_scale_after_conv", IMG, f'y = {CONV} * weight([4], init="ones")')
case("add", "position_weight", SEQ, "y = x + weight([4, 6], init=random_normal(stddev=0.02))")
case(
    "broadcast_like",
    "class_token",
    SEQ,
    'y = concat(broadcast_like(weight([1, 1, 6], init="zeros"), x[:, :1]), x, axis=1)',
)
case("broadcast_like", "after_conv", IMG, f"y = broadcast_like(x[:, :1, :, :1], {CONV})")
case("broadcast_like", "both_ways", "x: f32[N, 4, 1], z: f32[5]", "y = broadcast_like(x, z)")
