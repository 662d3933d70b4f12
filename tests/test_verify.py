"""`netc verify` (runtime/verify.py): every example agrees with the reference value by value,
and a deliberately broken ONNX lowering is reported at the `.net` line of the first node it
breaks, with the block call chain and the optimizer's fused origins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import netc
from netc.backends import to_onnx
from netc.runtime.verify import verify

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.net"))
SLOW = {"video_classifier"}  # > 5 s at -O0: verified at -O2 only
CASES = [
    (path, level) for path in EXAMPLES for level in (0, 2) if level == 2 or path.stem not in SLOW
]


def leaky_relu(ctx, node):
    """A broken `relu` rule: LeakyRelu lets negative values through."""
    x = ctx.get(node.inputs[0])
    return to_onnx.Value(ctx.add("LeakyRelu", [x.name], alpha=0.1), x.cf)


def leaky_activation(ctx, x, dtype, attrs):
    """A broken `relu` epilogue (also what a plain relu's rule calls)."""
    return ctx.add("LeakyRelu", [x], alpha=0.1)


def subtract(ctx, node):
    """A broken `add` rule: Sub."""
    a, b = (ctx.get(i, cf=False).name for i in node.inputs)
    return to_onnx.Value(ctx.add("Sub", [a, b]))


def column(text: str, line: int, needle: str) -> int:
    """The 1-based column of `needle` on 1-based `line` of `text`."""
    return text.splitlines()[line - 1].index(needle) + 1


@pytest.mark.parametrize("path, level", CASES, ids=[f"{p.stem}-O{level}" for p, level in CASES])
def test_every_example_agrees_with_the_reference_value_by_value(path, level):
    report = verify(netc.compile(path), level=level, batch=1)
    assert report.ok, report.render()
    assert report.first is None
    assert report.compared > 0
    assert report.render().startswith(
        f"{path}: the onnx backend agrees with the reference: all {report.compared} values"
    )


RELU_TWICE = """\
model m(x: f32[N, 8]) -> (y: tensor) {
    h = x |> dense(16)
    r = relu(h)
    z = r |> dense(8)
    y = z |> relu
}
"""


def test_a_broken_rule_is_reported_at_the_first_node_it_breaks(compile_net, monkeypatch):
    model = compile_net(RELU_TWICE)
    monkeypatch.setitem(to_onnx.RULES.table, "relu", leaky_relu)
    report = verify(model, level=0)
    assert not report.ok
    first = report.first
    assert first.op == "relu" and first.node == "relu"
    assert (first.span.line, first.span.col) == (3, column(RELU_TWICE, 3, "relu(h)"))
    assert first.calls == () and first.origin == ()
    # the dense on line 4 reads the broken value but computes right from it: not blamed;
    # the second relu breaks on its own and is listed after the first
    assert [d.span.line for d in report.divergences] == [3, 5]
    assert first.bad > 0 and first.max_abs > 1e-3 and first.index is not None
    assert first.want == 0.0 and first.got < 0  # a negative value let through
    path = model.path
    rendered = report.render()
    assert rendered.splitlines()[:3] == [
        f"{path}:3:9: error: the onnx backend differs from the reference here (max abs error "
        f"{first.max_abs:.1e} at {list(first.index)}, tolerance {first.atol:.1e} + 1e-04 * |ref|)",
        "3 |     r = relu(h)",
        "  |         ^^^^^^^",
    ]
    assert "= note: its inputs agree with the reference: the difference starts here" in rendered
    assert f"= note: 1 later nodes also differ on their own: {path}:5:14" in rendered


def test_the_report_is_plain_json(compile_net, monkeypatch):
    model = compile_net(RELU_TWICE)
    monkeypatch.setitem(to_onnx.RULES.table, "relu", leaky_relu)
    data = json.loads(json.dumps(verify(model, level=0).to_json(), allow_nan=False))
    assert data["ok"] is False
    assert (data["first"]["line"], data["first"]["col"], data["first"]["op"]) == (3, 9, "relu")
    assert data["diverging"] == ["relu", "relu_1"]


def test_a_broken_add_is_caught_and_what_reads_it_is_not_blamed(compile_net, monkeypatch):
    text = """\
    model m(x: f32[N, 8]) -> (y: tensor) {
        a = x |> dense(8)
        b = x |> dense(8)
        s = a + b
        y = s |> dense(3) |> sigmoid
    }
    """
    model = compile_net(text)
    monkeypatch.setitem(to_onnx.RULES.table, "add", subtract)
    report = verify(model, level=0)
    assert [(d.op, d.span.line, d.span.col) for d in report.divergences] == [("add", 4, 9)]


NESTED = """\
block inner(x) {
    return x |> relu
}
block outer(x, units: int) {
    return x |> dense(units) |> inner
}
model m(x: f32[N, 8]) -> (y: tensor) {
    h = x |> dense(6)
    y = h |> outer(4)
}
"""


def test_a_break_inside_a_block_reports_the_call_chain(compile_net, monkeypatch):
    model = compile_net(NESTED)
    monkeypatch.setitem(to_onnx.RULES.table, "relu", leaky_relu)
    report = verify(model, level=0)
    first = report.first
    assert (first.span.line, first.span.col) == (2, column(NESTED, 2, "relu"))
    assert [(c.block, c.span.line) for c in first.calls] == [("inner", 5), ("outer", 9)]
    path = model.path
    rendered = report.render()
    assert f"= note: in block `inner`, called at {path}:5:{column(NESTED, 5, 'inner')}" in rendered
    assert f"= note: in block `outer`, called at {path}:9:{column(NESTED, 9, 'outer')}" in rendered


CONV_RELU = """\
model m(x: f32[N, 8, 8, 3]) -> (y: tensor) {
    c = x |> conv2d(4, 3)
    y = c |> relu
}
"""


def test_a_break_in_a_fused_node_reports_the_conv_and_what_was_fused(compile_net, monkeypatch):
    model = compile_net(CONV_RELU)
    monkeypatch.setitem(to_onnx.ACTIVATIONS, "relu", leaky_activation)
    path = model.path
    relu_at = f"{path}:3:{column(CONV_RELU, 3, 'relu')}"
    fused = verify(model, level=2).first
    assert fused.op == "fused_conv"
    assert (fused.span.line, fused.span.col) == (2, column(CONV_RELU, 2, "conv2d"))
    assert fused.origin == (relu_at,)
    assert f"= note: the optimizer fused {relu_at} into this node" in verify(model).render()
    # unoptimized, the same break is the relu's own line
    plain = verify(model, level=0).first
    assert (plain.op, str(plain.span)) == ("relu", relu_at)


def test_a_value_kept_channels_first_is_compared_channels_last(compile_net):
    text = """\
    model m(x: f32[N, 6, 7, 3]) -> (y: tensor) {
        y = x |> conv2d(5, 3) |> relu |> maxpool(2) |> conv2d(4, 1)
    }
    """
    report = verify(compile_net(text), level=0)
    assert report.ok, report.render()
    assert report.compared == 4


def test_a_wrong_shape_is_reported_and_ends_the_check(compile_net, monkeypatch):
    text = """\
    model m(x: f32[N, 4, 4, 3]) -> (y: tensor) {
        y = x |> flatten |> dense(2) |> relu
    }
    """

    def flatten_too_late(ctx, node):
        x = ctx.get(node.inputs[0], cf=False)
        return to_onnx.Value(ctx.add("Flatten", [x.name], axis=2))

    model = compile_net(text)
    monkeypatch.setitem(to_onnx.RULES.table, "flatten", flatten_too_late)
    report = verify(model, level=0, batch=2)
    assert len(report.divergences) == 1
    assert report.first.op == "flatten"
    assert report.first.what == "shape [8, 12] where the reference has [2, 48]"


def test_a_value_the_backend_cannot_compute_is_reported_where_it_fails(compile_net, monkeypatch):
    text = """\
    model m(x: f32[N, 6]) -> (y: tensor) {
        h = x |> dense(4) |> relu
        y = h |> dense(3)
    }
    """

    def transposed_kernel(ctx, node):  # MatMul of [N, 6] by a [4, 6] kernel: fails in ORT
        x = ctx.get(node.inputs[0], cf=False).name
        w = ctx.weight(node.inputs[1], ctx.array(node.inputs[1]).T, "transposed")
        return to_onnx.Value(ctx.add("MatMul", [x, w]))

    model = compile_net(text)
    monkeypatch.setitem(to_onnx.RULES.table, "dense", transposed_kernel)
    report = verify(model, level=0)
    first = report.first
    assert (first.op, first.span.line, first.span.col) == ("dense", 2, 14)
    assert first.failure is not None and "MatMul" in first.failure
    assert report.render().startswith(
        f"{model.path}:2:14: error: the onnx backend fails to compute this value (ONNX Runtime"
    )


def test_integer_values_must_match_exactly(compile_net, monkeypatch):
    text = """\
    model m(x: f32[N, 5]) -> (y: tensor) {
        y = x |> dense(7) |> argmax
    }
    """

    def argmin(ctx, node):
        x = ctx.get(node.inputs[0])
        return to_onnx.Value(ctx.add("ArgMin", [x.name], axis=node.attrs["axis"], keepdims=0))

    monkeypatch.setitem(to_onnx.RULES.table, "argmax", argmin)
    first = verify(compile_net(text), level=0).first
    assert first.op == "argmax" and first.span.line == 2
    assert first.rtol is None and "exact match required for i64" in first.what


def test_tolerances_can_be_widened(compile_net, monkeypatch):
    model = compile_net(RELU_TWICE)
    monkeypatch.setitem(to_onnx.RULES.table, "relu", leaky_relu)
    assert verify(model, level=0, atol=100.0).ok


def test_a_model_with_a_symbolic_time_axis_verifies():
    model = netc.compile(next(p for p in EXAMPLES if p.stem == "lstm_forecaster"))
    report = verify(model, batch=3, symbols={"T": 7})
    assert report.ok, report.render()
    assert report.symbols == {"N": 3, "T": 7}
    assert "N=3, T=7" in report.render()


def test_every_result_of_a_multi_result_op_is_compared(compile_net):
    text = """\
    model m(x: f32[N, T, 4]) -> (y: tensor, h: tensor, c: tensor, p: tensor) {
        y, h, c = lstm(x, 3, return_sequences=true, return_state=true)
        parts = split(y, 3, axis=2)
        p = parts[1] |> relu
    }
    """
    report = verify(compile_net(text), level=0)
    assert report.ok, report.render()
    results = {(c.node, c.result) for c in report.checks}
    assert {("lstm", 0), ("lstm", 1), ("lstm", 2)} <= results
    assert {("split", 0), ("split", 1), ("split", 2)} <= results


def test_the_same_seed_gives_the_same_report(compile_net, monkeypatch):
    model = compile_net(RELU_TWICE)
    monkeypatch.setitem(to_onnx.RULES.table, "relu", leaky_relu)
    a, b = verify(model, level=0, seed=4), verify(model, level=0, seed=4)
    assert a.render() == b.render()
    assert np.isfinite(a.first.max_abs)


def test_an_unknown_target_is_a_diagnostic(compile_net):
    with pytest.raises(netc.NetcError, match="unknown target `tvm`"):
        verify(compile_net(RELU_TWICE), target="tvm")
