"""`netc verify` (runtime/verify.py): every example agrees with the reference value by value,
and a deliberately broken ONNX lowering is reported at the `.net` line of the first node it
breaks, with the block call chain and the optimizer's fused origins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import netc
from netc import driver
from netc.backends import to_onnx
from netc.runtime.verify import INPUT_KINDS, verify

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.net"))
# over 3 GFLOPs per sample (a float64 reference of 5-60 s per run): verified at -O2 only
SLOW = {p.stem for p in EXAMPLES if netc.compile(p).flops > 3e9}
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
    # normal inputs for the deployed session here: every input kind at every ONNX Runtime
    # level is test_onnx_levels.py's
    report = verify(netc.compile(path), level=level, batch=1, kinds=("normal",))
    assert report.ok, report.render()
    assert report.first is None
    assert report.compared > 0
    assert [(o.kind, o.ok) for o in report.outputs] == [("normal", True)] * len(report.outputs)
    assert {o.output for o in report.outputs} == {o for o, _ in netc.compile(path).graph.outputs}
    sizes = ", ".join(f"{k}={v}" for k, v in report.symbols.items())
    if path.stem == "lstm_forecaster":  # its T was not given: the report says it took one
        assert report.assumed == ("T",)
        sizes += " (T assumed: --dim T=SIZE sets it)"
    else:
        assert report.assumed == ()
    assert report.symbols["N"] == 1
    assert report.render().startswith(
        f"{path}: the onnx backend agrees with the reference: all {report.compared} values of "
        f"`{report.model}` one by one, and the deployed session's outputs on standard normal "
        f"inputs, are within tolerance (-O{level}, ONNX Runtime optimizer all, randomized "
        f"weights (seed 0), {sizes}, {report.device}; closest: "
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
        f"{first.max_abs:.1e} at {list(first.index)}, tolerance {first.atol:.1e} + 1e-05 * |ref|)",
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
    with pytest.raises(netc.NetcError, match="unknown target `mxnet`"):
        verify(compile_net(RELU_TWICE), target="mxnet")


# --- the deployed session -------------------------------------------------------------------

# ResNet-50 v2's stem: a zero pad and a max pooling of values that can be negative (no relu
# between). ONNX Runtime's Pad->MaxPool fusion (ENABLE_BASIC and above) pads with -inf instead.
PAD_MAXPOOL = """\
model m(x: f32[N, 8, 8, 3]) -> (y: tensor) {
    y = x |> conv2d(4, 1) |> pad(((0, 0), (1, 1), (1, 1), (0, 0))) |> maxpool(3, stride=2)
}
"""


def fusable_pad(ctx, node):
    """The lowering of a pad before the fix: ONNX Runtime folds a zero one into the MaxPool
    after it."""
    x = ctx.get(node.inputs[0])
    r, a = node.tensor_type.rank, node.attrs
    pairs = [a["pads"][i] for i in (to_onnx.to_cf(r) if x.cf else range(r))]
    ins = [x.name, ctx.ints([p[0] for p in pairs] + [p[1] for p in pairs], "pads")]
    if a["mode"] == "constant":
        ins.append(ctx.scalar(a["value"], node.tensor_type.dtype, "value"))
    return to_onnx.Value(ctx.add("Pad", ins, mode=a["mode"]), x.cf)


def fold_pad_into_maxpool(model):
    """ONNX Runtime 1.31's PadFusion into MaxPool, as it ran at ENABLE_BASIC and above (1.32
    no longer does it): a constant-zero Pad without `axes`, read only by a MaxPool and not an
    output, becomes the MaxPool's own padding, which pads with -inf."""
    graph = model.graph
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = onnx.numpy_helper.to_array(n.attribute[0].t)
    readers: dict[str, list] = {}
    for n in graph.node:
        for name in n.input:
            readers.setdefault(name, []).append(n)
    outputs = {o.name for o in graph.output}
    for pad in [n for n in graph.node if n.op_type == "Pad"]:
        after = readers.get(pad.output[0], [])
        value = consts.get(pad.input[2], 0) if len(pad.input) > 2 and pad.input[2] else 0
        if (
            len(after) != 1
            or after[0].op_type != "MaxPool"
            or pad.output[0] in outputs
            or len(pad.input) > 3
            or np.any(value != 0)
            or any(a.name == "mode" and a.s != b"constant" for a in pad.attribute)
        ):
            continue
        pool, pads = after[0], [int(p) for p in consts[pad.input[1]]]
        rank = len(pads) // 2
        if pads[:2] != [0, 0] or pads[rank : rank + 2] != [0, 0]:
            continue
        spatial = pads[2:rank] + pads[rank + 2 :]
        own = [a for a in pool.attribute if a.name == "pads"]
        total = [p + q for p, q in zip(spatial, own[0].ints if own else [0] * len(spatial))]
        for a in own:
            pool.attribute.remove(a)
        pool.attribute.append(onnx.helper.make_attribute("pads", total))
        pool.input[0] = pad.input[0]
        graph.node.remove(pad)
    return model


@pytest.fixture
def fusing_runtime(monkeypatch):
    """ONNX Runtime as 1.31 was: its wrong Pad->MaxPool fusion at every level that fuses, so
    the deployed-session tests hold whichever version is installed."""
    import onnxruntime as ort

    real = ort.InferenceSession

    def session(model, options=None, *args, **kwargs):
        level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if isinstance(model, bytes) and options is not None:
            if options.graph_optimization_level != level:
                proto = fold_pad_into_maxpool(onnx.load_from_string(model))
                model = proto.SerializeToString()
        return real(model, options, *args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", session)


def test_the_stand_in_folds_the_pad_the_way_onnx_runtime_did(compile_net, monkeypatch):
    monkeypatch.setitem(to_onnx.RULES.table, "pad", fusable_pad)
    proto = driver.emit(compile_net(PAD_MAXPOOL), "onnx")
    ops = [n.op_type for n in proto.graph.node]
    folded = fold_pad_into_maxpool(proto)
    assert "Pad" in ops and [n.op_type for n in folded.graph.node] == [
        op for op in ops if op != "Pad"
    ]
    pool = next(n for n in folded.graph.node if n.op_type == "MaxPool")
    assert list(next(a for a in pool.attribute if a.name == "pads").ints) == [1, 1, 1, 1]
    onnx.checker.check_model(folded)


def test_a_zero_pad_before_a_maxpool_of_negative_values_verifies(compile_net, fusing_runtime):
    report = verify(compile_net(PAD_MAXPOOL))
    assert report.ok, report.render()


def test_a_fusion_of_the_deployed_session_that_changes_the_outputs_fails(
    compile_net, monkeypatch, fusing_runtime
):
    model = compile_net(PAD_MAXPOOL)
    monkeypatch.setitem(to_onnx.RULES.table, "pad", fusable_pad)
    report = verify(model)
    assert not report.ok
    first = report.first
    # every value exposed, each node agrees; the deployed session's fused maxpool does not
    at = column(PAD_MAXPOOL, 2, "maxpool")
    assert (first.op, first.span.line, first.span.col) == ("maxpool", 2, at)
    assert first.cause == "fused"
    assert ("negative", "y") in [(c.kind, c.output) for c in report.outputs if not c.ok]
    assert first.bad > 0 and first.got < first.want  # -inf padding lost the pad's zeros
    rendered = report.render().splitlines()
    assert rendered[0] == (
        f"{model.path}:2:{at}: error: the deployed onnx session differs from the reference here "
        f"(max abs error {first.max_abs:.1e} at {list(first.index)}, tolerance "
        f"{first.atol:.1e} + 1e-04 * |ref|)"
    )
    assert rendered[3:] == [
        "  = note: IR value `maxpool` (maxpool), emitted as onnx tensor `maxpool`",
        f"  = note: {first.bad} of 128 values differ on {INPUT_KINDS[first.kind]} inputs; at "
        f"{list(first.index)} the deployed session has {first.got:.6g}, the reference "
        f"{first.want:.6g}",
        "  = note: with every value an output it agrees with the reference; computed alone, as "
        "deployed, it differs while its inputs agree: ONNX Runtime's optimizer (level all) "
        "changes it when it fuses it with the ops before it",
        f"  = note: the deployed session (-O2, ONNX Runtime optimizer all, randomized weights "
        f"(seed 0), N=2, {report.device}) gives wrong outputs `y` on "
        + " and ".join(
            ", ".join(INPUT_KINDS[c.kind] for c in report.outputs if not c.ok).rsplit(", ", 1)
        )
        + " inputs",
        "  = help: `--ort-opt disable` checks the session without ONNX Runtime's optimizer",
    ]
    # the level a user may choose instead: without the optimizer the same lowering is right
    assert verify(model, graph_optimization="disable").ok


def test_a_runtime_fusion_is_caught_at_every_level_that_fuses(
    compile_net, monkeypatch, fusing_runtime
):
    model = compile_net(PAD_MAXPOOL)
    monkeypatch.setitem(to_onnx.RULES.table, "pad", fusable_pad)
    found = {
        level: verify(model, graph_optimization=level, kinds=("negative",)).ok
        for level in ("disable", "basic", "extended", "all")
    }
    assert found == {"disable": True, "basic": False, "extended": False, "all": False}


def test_a_pass_that_changes_the_outputs_is_named_as_the_passes(compile_net, monkeypatch):
    # netc's own fold_pad, wrongly folding a zero pad into a maxpool of negative values
    from netc.passes import pad

    model = compile_net(PAD_MAXPOOL)
    monkeypatch.setattr(pad, "_pad_is_neutral", lambda op, value, x: True)
    report = verify(model, level=2)
    first = report.first
    assert (first.cause, first.op, first.node) == ("passes", "maxpool", "maxpool")
    rendered = report.render().splitlines()
    assert rendered[0].startswith(
        f"{model.path}:2:{column(PAD_MAXPOOL, 2, 'maxpool')}: error: netc's -O2 passes change "
        "this output (max abs error "
    )
    assert rendered[-1] == "  = help: `netc MODEL.net --verify-passes` names the pass"
    assert verify(model, level=0).ok  # no passes, no fold


CONV_BN = """\
model m(x: f32[N, 6, 6, 3]) -> (y: tensor) {
    y = x |> conv2d(4, 3) |> batchnorm
}
"""


def without_bias(ctx, node):
    """A broken conv rule: the bias is dropped."""
    x = ctx.get(node.inputs[0], cf=True)
    kernel = ctx.array(node.inputs[1]).transpose(3, 2, 0, 1)
    w = ctx.weight(node.inputs[1], kernel, "oihw")
    return to_onnx.Value(ctx.add("Conv", [x.name, w], **to_onnx._window(node.attrs)), True)


def without_mean(ctx, node):
    """A broken batchnorm rule: the moving mean is taken as 0."""
    x = ctx.get(node.inputs[0], cf=True)
    gamma, beta, mean, var = (ctx.weight(w) for w in node.inputs[1:])
    zeros = ctx.const(np.zeros(node.tensor_type.shape[-1], np.float32), "zeros")
    y = ctx.add(
        "BatchNormalization", [x.name, gamma, beta, zeros, var], epsilon=node.attrs["epsilon"]
    )
    return to_onnx.Value(y, True)


@pytest.mark.parametrize(
    ("op", "rule"), [("conv2d", without_bias), ("batchnorm", without_mean)], ids=["bias", "mean"]
)
def test_randomized_weights_show_a_dropped_weight_that_initial_weights_hide(
    compile_net, monkeypatch, op, rule
):
    model = compile_net(CONV_BN)
    monkeypatch.setitem(to_onnx.RULES.table, op, rule)
    report = verify(model, level=0)
    assert report.weights == "randomized"
    assert (report.first.op, report.first.cause) == (op, "node")
    assert not report.deployed_ok
    # Keras' initial biases and moving means are zeros: dropping them changes nothing
    initial = verify(model, level=0, initial=True)
    assert initial.ok and initial.weights == "initial", initial.render()


def test_given_weights_are_the_ones_checked(compile_net, monkeypatch, tmp_path):
    from netc.weights import randomized_weights, save_weights

    model = compile_net(CONV_BN)
    path = tmp_path / "w.npz"
    save_weights(randomized_weights(model.graph, seed=7), path)
    monkeypatch.setitem(to_onnx.RULES.table, "conv2d", without_bias)
    report = verify(model, level=0, weights=path)
    assert report.weights == "given" and report.first.op == "conv2d"
    with pytest.raises(netc.NetcError, match="either weights or the initial weights"):
        verify(model, weights=path, initial=True)


def test_the_deployed_outputs_are_checked_on_every_input_kind(compile_net):
    report = verify(compile_net(PAD_MAXPOOL))
    assert [(o.kind, o.output, o.ok) for o in report.outputs] == [
        (kind, "y", True) for kind in INPUT_KINDS
    ]
    assert all(0 <= o.ratio <= 1 for o in report.outputs)
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert data["graph_optimization"] == "all" and data["weights"] == "randomized"
    assert [o["kind"] for o in data["outputs"]] == list(INPUT_KINDS)


def test_unknown_levels_and_kinds_are_diagnostics(compile_net):
    model = compile_net(PAD_MAXPOOL)
    with pytest.raises(netc.NetcError, match="unknown ONNX Runtime optimization level `fast`"):
        verify(model, graph_optimization="fast")
    with pytest.raises(netc.NetcError, match="unknown input kind `huge`"):
        verify(model, kinds=("huge",))
    with pytest.raises(netc.NetcError, match="the optimization level is ONNX Runtime's"):
        verify(model, target="keras", graph_optimization="basic")


def test_an_infinity_or_nan_in_the_reference_must_be_matched_exactly():
    from netc.runtime.tolerance import mismatch

    want = np.array([np.inf, -np.inf, np.nan, 1.0], np.float32)
    assert mismatch(want.copy(), want) is None
    for i, wrong in [(0, 3e38), (1, np.inf), (2, 0.0), (3, np.nan)]:
        got = want.copy()
        got[i] = wrong
        found = mismatch(got, want)
        assert found is not None and found.index == (i,) and found.bad == 1, (i, wrong)


def test_the_cli_checks_the_level_a_user_deploys_with(tmp_path, monkeypatch, fusing_runtime):
    from click.testing import CliRunner

    from netc.cli import cli

    (tmp_path / "m.net").write_text(PAD_MAXPOOL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(to_onnx.RULES.table, "pad", fusable_pad)
    runner = CliRunner()
    bad = runner.invoke(cli, ["verify", "m.net", "--device", "auto"])
    assert bad.exit_code == 1, bad.output
    assert bad.stderr.startswith(
        f"m.net:2:{column(PAD_MAXPOOL, 2, 'maxpool')}: error: the deployed onnx session differs"
    )
    ok = runner.invoke(cli, ["verify", "m.net", "--ort-opt", "disable", "--initial-weights"])
    assert ok.exit_code == 0, ok.output
    assert "ONNX Runtime optimizer disable, initial weights (seed 0)" in ok.stdout
    both = runner.invoke(cli, ["verify", "m.net", "--weights", "w.npz", "--initial-weights"])
    assert both.exit_code == 2 and "exclude each other" in both.output
    data = json.loads(runner.invoke(cli, ["verify", "m.net", "--json", "-q"]).stdout)
    assert data["ok"] is False and data["first"]["cause"] == "fused"
