"""ONNX Runtime's contrib forms (`--ort-contrib`, netc.backends.onnx_contrib): self-attention
as one com.microsoft Attention node, cross-attention as one MultiHeadAttention. Each variant
is checked against the float64 reference at every ONNX Runtime optimizer level, batch 1 and
3, on every input kind; what the rewrite does not cover keeps netc's generic form; a model
whose contrib op does not load says why.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from conformance import INPUT_KINDS, compare, inputs_for

import netc
import netc.runtime
from netc.backends import to_onnx
from netc.backends.onnx_contrib import use_contrib_ops
from netc.cli import cli
from netc.runtime import reference
from netc.runtime.tolerance import assert_close
from netc.source import NetcError
from netc.weights import randomized_weights

LEVELS = ("disable", "basic", "extended", "all")

SELF_ATTENTION = {
    "plain": "y = x |> multi_head_attention(heads=2, key_dim=8)",
    "causal": "y = x |> multi_head_attention(heads=2, key_dim=8, causal=true)",
    "value_dim": "y = x |> multi_head_attention(heads=4, key_dim=3, value_dim=5)",
    "no_bias_output_dim": (
        "y = x |> multi_head_attention(heads=2, key_dim=4, bias=false, output_dim=6)"
    ),
    "in_a_block": "y = layernorm(x + (x |> multi_head_attention(heads=3, key_dim=4))) |> dense(5)",
}


CROSS_ATTENTION = {
    "value": "y = multi_head_attention(x, z, heads=2, key_dim=4)",
    "key_and_value": "y = multi_head_attention(x, z, w, heads=3, key_dim=2, value_dim=5)",
    "no_bias_output_dim": (
        "y = multi_head_attention(x, z, heads=2, key_dim=4, bias=false, output_dim=7)"
    ),
    "causal_same_length": (
        "y = multi_head_attention(x, x |> dense(8), heads=2, key_dim=4, causal=true)"
    ),
}
CROSS_INPUTS = "x: f32[N, 6, 12], z: f32[N, S, 8], w: f32[N, S, 10]"


def _model(body: str, inputs: str = "x: f32[N, T, 12]"):
    graph = netc.compile(f"model m({inputs}) -> (y: tensor) {{\n  {body}\n}}\n").graph
    weights = randomized_weights(graph)
    return graph, weights, to_onnx.emit(graph, weights)


@pytest.mark.parametrize("variant", SELF_ATTENTION)
def test_self_attention_as_one_attention_node_matches_the_reference(variant):
    graph, weights, model = _model(SELF_ATTENTION[variant])
    fused = use_contrib_ops(model, graph)
    onnx.checker.check_model(fused, full_check=True)
    ops = Counter(n.op_type for n in fused.graph.node)
    # one Attention; what is left of the op is the output projection (MatMul, and its Add)
    assert ops["Attention"] == 1 and ops["Softmax"] == 0 and ops["Transpose"] == 0
    assert {o.domain: o.version for o in fused.opset_import}["com.microsoft"] == 1
    _agrees_at_every_level(graph, weights, fused)


def _agrees_at_every_level(graph, weights, fused) -> None:
    sessions = {level: netc.runtime.load(fused, graph_optimization=level) for level in LEVELS}
    for batch in (1, 3):
        for kind in INPUT_KINDS:
            feed = inputs_for(graph, batch, kind)
            want = reference.run(graph, feed, weights, wide=True)
            for level, session in sessions.items():
                try:
                    compare(session.run(feed), want)
                except AssertionError as e:
                    raise AssertionError(f"{kind}, batch {batch}, level {level}: {e}") from None


@pytest.mark.parametrize("variant", CROSS_ATTENTION)
def test_cross_attention_as_one_multi_head_attention_node_matches_the_reference(variant):
    body = CROSS_ATTENTION[variant]
    inputs = CROSS_INPUTS if " w" in body or "z" in body else "x: f32[N, 6, 12]"
    graph, weights, model = _model(body, inputs)
    fused = use_contrib_ops(model, graph)
    onnx.checker.check_model(fused, full_check=True)
    ops = Counter(n.op_type for n in fused.graph.node)
    # the three projections and the output projection stay; the rest is one node
    assert ops["MultiHeadAttention"] == 1 and ops["Softmax"] == 0 and ops["Transpose"] == 0
    assert ops["MatMul"] == 4 + ("dense" in body) and ops["Attention"] == 0
    (node,) = [n for n in fused.graph.node if n.op_type == "MultiHeadAttention"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["unidirectional"] == ("causal" in body)
    assert len(node.input) == (3 if "bias=false" in body else 4)
    _agrees_at_every_level(graph, weights, fused)


def test_causal_cross_attention_of_two_lengths_keeps_the_generic_form():
    # ONNX Runtime aligns a shorter causal query with the keys' end; Keras with their start
    for inputs in ("x: f32[N, 6, 12], z: f32[N, 9, 8]", "x: f32[N, T, 12], z: f32[N, T, 8]"):
        body = "y = multi_head_attention(x, z, heads=2, key_dim=4, causal=true)"
        graph, _, model = _model(body, inputs)
        assert use_contrib_ops(model, graph) is model, inputs


def test_the_packed_weight_is_the_three_kernels_side_by_side():
    graph, weights, model = _model(SELF_ATTENTION["value_dim"])
    fused = use_contrib_ops(model, graph)
    (node,) = [n for n in fused.graph.node if n.op_type == "Attention"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["num_heads"] == 4 and attrs["unidirectional"] == 0
    assert attrs["qkv_hidden_sizes"] == [12, 12, 20]
    assert attrs["scale"] == pytest.approx(1 / np.sqrt(3))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in fused.graph.initializer}
    w = inits[node.input[1]]
    kernels = [weights[f"multi_head_attention.{k}_kernel"] for k in ("query", "key", "value")]
    np.testing.assert_array_equal(w, np.concatenate([k.reshape(12, -1) for k in kernels], 1))
    # the original per-projection weights are gone from the model
    assert "multi_head_attention.query_kernel" not in inits


def test_what_the_rewrite_does_not_cover_keeps_the_generic_form():
    for body, inputs in (
        ("y = multi_head_attention(x, z, heads=2, key_dim=4)", "x: f16[N, T, 12], z: f16[N, S, 8]"),
        ("y = x |> multi_head_attention(heads=2, key_dim=4)", "x: f16[N, T, 12]"),
        ("y = x |> dense(4) |> gelu", "x: f32[N, T, 12]"),
    ):
        graph, _, model = _model(body, inputs)
        assert use_contrib_ops(model, graph) is model


# the transformer example's encoder, small
ENCODER = """block encoder(x, heads: int) {
    x = layernorm(x + (x |> multi_head_attention(heads=heads, key_dim=channels(x) // heads)))
    return layernorm(x + (x |> dense(32) |> gelu |> dense(channels(x))))
}

model classifier(tokens: i32[N, T]) -> (logits: f32[N, 3]) {
    x = tokens |> embedding(10, 16) |> positional_embedding(max_length=8)
    for _ in range(2) {
        x = x |> encoder(4)
    }
    logits = x |> reduce_mean(axis=1) |> dense(3)
}
"""


def test_the_cli_option_on_a_transformer_classifier(tmp_path):
    source = tmp_path / "classifier.net"
    source.write_text(ENCODER)
    source = str(source)
    graph = netc.compile(source).graph
    weights = randomized_weights(graph)
    np.savez(tmp_path / "w.npz", **weights)
    out = tmp_path / "t.onnx"
    done = CliRunner().invoke(
        cli, [source, "--weights", str(tmp_path / "w.npz"), "--ort-contrib", "-o", str(out)]
    )
    assert done.exit_code == 0, done.output
    ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    assert ops["Attention"] == 2 and ops["Softmax"] == 0
    session = netc.runtime.load(out)
    for kind in INPUT_KINDS:
        feed = inputs_for(graph, 2, kind, seed=3)
        want = reference.run(graph, feed, weights, wide=True)
        for name, value in session.run(feed).items():
            assert_close(value, want[name], scope="model", err_msg=f"{kind}: {name}")
    refused = CliRunner().invoke(cli, [source, "-t", "tvm", "--ort-contrib"])
    assert refused.exit_code == 1
    assert "error: --ort-contrib applies to -t onnx, not to -t tvm" in refused.output


def test_a_contrib_op_that_does_not_load_names_the_runtime_needed():
    graph, _, model = _model(SELF_ATTENTION["plain"])
    fused = use_contrib_ops(model, graph)
    # a contrib op this ONNX Runtime lacks stands for a build without the contrib ops
    next(n for n in fused.graph.node if n.op_type == "Attention").op_type = "NoSuchAttention"
    with pytest.raises(NetcError) as e:
        netc.runtime.load(fused)
    d = e.value.diagnostics[0]
    assert d.message.startswith("ONNX Runtime cannot load model `m`: ")
    assert d.hint == (
        "the model uses ONNX Runtime's com.microsoft contrib ops (--ort-contrib): run it in an "
        "ONNX Runtime that has them, or compile it without --ort-contrib"
    )


def test_dynamic_int8_of_the_attention_form_is_qattention(tmp_path):
    from netc import quantize

    source = tmp_path / "classifier.net"
    source.write_text(ENCODER)
    graph = netc.compile(source).graph
    weights = randomized_weights(graph)
    fused = use_contrib_ops(to_onnx.emit(graph, weights), graph)
    options = quantize.QuantizeOptions(min_top1_agreement=0.0)
    int8, report = quantize.quantize(fused, graph, options)
    ops = Counter(n.op_type for n in int8.graph.node)
    assert ops["QAttention"] == 2 and ops["Attention"] == 0
    feed = quantize.random_inputs(graph, 64)
    float_session, int8_session = (netc.runtime.load(m) for m in (fused, int8))
    same = [
        np.argmax(int8_session.run({"tokens": t[None]})["logits"])
        == np.argmax(float_session.run({"tokens": t[None]})["logits"])
        for t in feed["tokens"]
    ]
    assert report.outputs[0].top1_agreement == pytest.approx(100 * np.mean(same))
