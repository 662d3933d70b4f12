"""The ONNX target at every ONNX Runtime optimization level: every example, and the runtime
fusions netc guards against, against the float64 reference on edge inputs.

ONNX Runtime's optimizer (ENABLE_BASIC and above) rewrites the graph it is given, and one of
its rewrites, PadFusion, is wrong for what netc means by a zero pad before a max pooling (its
MaxPool pads with -inf). The ONNX artifact is correct only if it is correct at every level a
user can pick: these tests run each model at DISABLE, BASIC, EXTENDED and ALL, with randomized
weights (every bias and batchnorm statistic drawn) and the input kinds of conformance.py
(normal, all-negative, large, small with zeros), and compare the full outputs with
netc.runtime.tolerance (the "model" scope for examples, "op" for the small fusion cases).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import onnx
import pytest
from conformance import INPUT_KINDS, inputs_for

import netc
from netc import driver
from netc.backends import to_onnx
from netc.runtime import load, reference
from netc.runtime.tolerance import assert_close
from netc.weights import randomized_weights

LEVELS = ("disable", "basic", "extended", "all")  # ONNX Runtime's graph optimization levels
EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.net"))
# The float64 reference of a model over 3 GFLOPs per sample takes 5-60 s per batch-1 run on a
# CI core: those run the all-negative inputs (where pooling fusions go wrong) at batch 1 only.
# ONNX Runtime's fusions do not depend on the batch; the conformance suite runs every op at
# batch 1 and 3 on every input kind.
HEAVY = {p.stem for p in EXAMPLES if netc.compile(p).flops > 3e9}
RUNS = [
    (path, kind)
    for path in EXAMPLES
    for kind in (("negative",) if path.stem in HEAVY else INPUT_KINDS)
]


@cache
def example(path: Path):
    """The example's model, randomized weights, and a session per ORT level of its -O2 (the
    deployment default) ONNX model; -O0 at level all is test_verify's."""
    model = netc.compile(path)
    weights = randomized_weights(model.graph, seed=3)
    proto = driver.emit(model, weights=weights, level=2)
    sessions = {level: load(proto, device="cpu", graph_optimization=level) for level in LEVELS}
    return model, weights, sessions


@pytest.mark.parametrize(("path", "kind"), RUNS, ids=[f"{p.stem}-{k}" for p, k in RUNS])
def test_every_example_matches_the_reference_at_every_level(path, kind):
    model, weights, sessions = example(path)
    # batch 3 on one kind: the examples are large, and batches are the conformance suite's
    for batch in (1, 3) if kind == "normal" else (1,):
        feed = inputs_for(model.graph, batch, kind)
        want = reference.run(model.graph, feed, weights, wide=True)
        for level, session in sessions.items():
            got = session.run(feed)
            assert set(got) == set(want)
            for name, w in want.items():
                assert_close(
                    got[name], w, scope="model", err_msg=f"{name}, level {level}, batch {batch}"
                )


# --- the fusions, one by one ------------------------------------------------------------------

PAD = "pad(((0, 0), (1, 1), (1, 1), (0, 0)))"


def run_everywhere(text: str, opt: int = 0) -> dict[str, object]:
    """Compile `text` at netc's -O`opt`, emit it with randomized weights, run it at every ONNX
    Runtime level on every input kind at batch 1 and 3 and check every output against the
    float64 reference of the source; returns the emitted model."""
    model = netc.compile(text)
    weights = randomized_weights(model.graph, seed=1)
    proto = driver.emit(model, weights=weights, level=opt)
    onnx.checker.check_model(proto, full_check=True)
    sessions = {level: load(proto, device="cpu", graph_optimization=level) for level in LEVELS}
    for batch in (1, 3):
        for kind in INPUT_KINDS:
            feed = inputs_for(model.graph, batch, kind)
            want = reference.run(model.graph, feed, weights, wide=True)
            for level, session in sessions.items():
                got = session.run(feed)
                for name, w in want.items():
                    assert_close(
                        got[name], w, err_msg=f"{name}, {kind}, batch {batch}, level {level}"
                    )
    return proto


def pads(proto) -> list:
    """The Pad nodes of an emitted model, with their number of inputs."""
    return [len(n.input) for n in proto.graph.node if n.op_type == "Pad"]


def optimized_ops(proto, level: str = "all", tmp: Path | None = None) -> list[str]:
    """The op types of the graph ONNX Runtime runs at `level` (its optimized model)."""
    import onnxruntime as ort

    assert tmp is not None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel,
        {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED"}[level],
    )
    options.optimized_model_filepath = str(tmp)
    ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(str(tmp)).graph.node]


def test_the_resnet50_v2_stem_pad_then_maxpool_is_not_folded(tmp_path):
    # conv, zero pad, maxpool with no relu between: a window of negative values must keep the
    # pad's 0, which ONNX Runtime's Pad->MaxPool fusion (-inf padding) would lose
    proto = run_everywhere(f"""
        model m(x: f32[N, 8, 8, 3]) -> (y: tensor) {{
            y = x |> conv2d(4, 1) |> {PAD} |> maxpool(3, stride=2)
        }}""")
    assert pads(proto) == [4]  # the axes input the fusion leaves alone
    assert optimized_ops(proto, "basic", tmp_path / "o.onnx").count("Pad") == 1


def test_a_zero_pad_before_a_convolution_is_left_for_onnx_runtime_to_fold(tmp_path):
    # exact: the conv multiplies padded cells by 0 either way
    proto = run_everywhere(f"""
        model m(x: f32[N, 8, 8, 3]) -> (y: tensor) {{
            y = x |> conv2d(4, 1) |> {PAD} |> conv2d(3, 3, stride=2)
        }}""")
    assert pads(proto) == [3]
    assert "Pad" not in optimized_ops(proto, "basic", tmp_path / "o.onnx")


@pytest.mark.parametrize(
    "readers",
    [
        "y1 = p |> conv2d(2, 3)\n    y2 = p |> maxpool(3)",
        "y1 = p |> depthwise_conv2d(3)\n    y2 = p |> relu",
        "y1 = p |> conv2d(2, 3)\n    y2 = p",
    ],
    ids=["conv-and-maxpool", "depthwise-and-relu", "conv-and-output"],
)
def test_a_zero_pad_read_by_a_convolution_and_something_else(readers):
    proto = run_everywhere(f"""
        model m(x: f32[N, 7, 6, 3]) -> (y1: tensor, y2: tensor) {{
            p = x |> conv2d(4, 1) |> {PAD}
            {readers}
        }}""")
    assert pads(proto) == [4]


@pytest.mark.parametrize(
    "body",
    [
        f'x |> conv2d(4, 1) |> {PAD} |> cast("f64") |> maxpool(3)',
        "x |> conv1d(4, 1) |> pad(((0, 0), (2, 1), (0, 0))) |> maxpool(3, stride=2)",
        f'x |> conv2d(4, 1) |> {PAD} |> maxpool(3, stride=2, padding="same")',
        f"x |> {PAD} |> maxpool(3, stride=2)",
        f"x |> conv2d(4, 1) |> {PAD} |> avgpool(3, stride=2)",
        f'x |> conv2d(4, 1) |> {PAD} |> avgpool(3, stride=2, padding="same")',
        "x |> conv2d(4, 1) |> pad(((0, 0), (1, 1), (1, 1), (0, 0)), value=-0.5) |> maxpool(3)",
    ],
    ids=["cast", "rank3", "own-padding", "channels-last", "avgpool", "avgpool-own", "value"],
)
def test_a_pad_before_a_pooling_keeps_its_meaning(body):
    x = "x: f32[N, 9, 3]" if "conv1d" in body else "x: f32[N, 9, 7, 3]"
    run_everywhere(f"""
        model m({x}) -> (y: tensor) {{
            y = {body}
        }}""")


def test_the_optimizer_keeps_the_pad_of_a_maxpool_of_negative_values_at_every_level():
    # netc's own fold_pad merges a zero pad into maxpool only after relu; -O2 must stay right
    for opt in (1, 2):
        run_everywhere(
            f"""
            model m(x: f32[N, 8, 8, 3]) -> (y: tensor, z: tensor) {{
                y = x |> conv2d(4, 1) |> {PAD} |> maxpool(3, stride=2)
                z = x |> conv2d(4, 1) |> relu |> {PAD} |> maxpool(3, stride=2)
            }}""",
            opt,
        )


@pytest.mark.parametrize(
    "body",
    [
        # BatchNormalization folded into a Conv (ConvBNFusion), with and without a bias
        "x |> conv2d(4, 3, bias=false) |> batchnorm",
        'x |> depthwise_conv2d(3, padding="same", depth_multiplier=2) |> batchnorm',
        # Conv + Add + activation (FusedConv), Clip bounds (relu6) and LeakyRelu's alpha
        'relu((x |> conv2d(3, 3, padding="same")) + x)',
        "(x |> conv2d(4, 3)) * 4.0 |> batchnorm |> relu6",
        "x |> conv2d(4, 3) |> leaky_relu(alpha=0.3)",
        "(x * 4.0) |> relu |> relu6",
        # elementwise Mul/Add by constants folded into a Conv (ConvMulFusion, ConvAddFusion)
        "(x |> conv2d(4, 3, bias=false)) * 1.5 + 0.25",
    ],
    ids=["conv-bn", "depthwise-bn", "residual-relu", "bn-clip", "leaky", "relu-clip", "mul-add"],
)
def test_convolution_fusions_keep_their_meaning(body):
    for opt in (0, 2):
        run_everywhere(
            f"""
            model m(x: f32[N, 7, 6, 3]) -> (y: tensor) {{
                y = {body}
            }}""",
            opt,
        )


@pytest.mark.parametrize(
    "body",
    [
        # Gelu and FastGelu (with the dense's bias: BiasGelu), QuickGelu (silu)
        "x |> dense(5) |> gelu",
        "x |> dense(5) |> gelu(approximate=true)",
        "x |> dense(5) |> silu",
        # LayerNormalization after a residual Add (SkipLayerNormalization); decomposed forms
        "(x + (x |> dense(6))) |> layernorm",
        "(x + (x |> dense(6, bias=false))) |> layernorm(axis=1)",
        "x |> layernorm(axis=(1, 2), center=false)",
        # MatMul + Add (Gemm, MatMulAdd), MatMul scaled (MatMulScale), transposes into MatMul
        "x |> dense(6) |> relu |> dense(3)",
        "(x @ (x |> transpose((0, 2, 1)))) * 0.5 |> softmax",
        "x |> multi_head_attention(heads=2, key_dim=3, causal=true) |> layernorm",
        # transposes that cancel, reshapes that merge
        "x |> transpose((0, 2, 1)) |> relu |> transpose((0, 2, 1)) |> reshape((3, 8))",
    ],
    ids=[
        "gelu",
        "fast-gelu",
        "quick-gelu",
        "skip-layernorm",
        "layernorm-axis1",
        "layernorm-two-axes",
        "gemm",
        "matmul-scale",
        "attention",
        "transposes",
    ],
)
def test_sequence_fusions_keep_their_meaning(body):
    for opt in (0, 2):
        run_everywhere(
            f"""
            model m(x: f32[N, 4, 6]) -> (y: tensor) {{
                y = {body}
            }}""",
            opt,
        )


def test_a_pad_with_the_axes_input_is_a_valid_model_onnx_reads_back(tmp_path):
    graph = netc.compile(f"""
        model m(x: f32[N, 8, 8, 3]) -> (y: tensor) {{
            y = x |> conv2d(4, 1) |> {PAD} |> maxpool(3, stride=2)
        }}""").graph
    path = tmp_path / "m.onnx"
    to_onnx.write(graph, randomized_weights(graph), path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    pad = next(n for n in model.graph.node if n.op_type == "Pad")
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    assert list(inits[pad.input[3]]) == [0, 1, 2, 3]  # every axis: the same meaning
    assert list(inits[pad.input[1]]) == [0, 0, 1, 1, 0, 0, 1, 1]  # channels-first
    value = inits[pad.input[2]].item()
    assert value == 0.0 and not np.signbit(value)
