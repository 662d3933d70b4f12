"""A property: whatever `netc check` accepts, `netc` compiles for ONNX and ONNX Runtime loads
and runs. Programs are drawn from the op table itself (every op the language calls, with
attribute values drawn by their types), on inputs of every dtype ONNX lowers."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import netc
import netc.runtime
from netc import driver
from netc.ir import concrete_shape, numpy_dtype
from netc.ops import ALIASES, OPS
from netc.ops.registry import Init, LayerActivation
from netc.source import format_value
from netc.values import LANGUAGE_OPS

# What the ONNX backend refuses by design, with a located error (docs/onnx.md): bf16 values,
# max/min reductions of bool, and f64 values of ops ONNX Runtime has no float64 kernel for.
DOCUMENTED_REFUSALS = re.compile(
    r"the onnx backend cannot lower `\w+` on (bf16 values|bool values \(ONNX opset 18 has no"
    r"|f64 values \(ONNX Runtime has no float64 \w+ kernel\))"
)


def value_of(hint: Any, draw: Any) -> Any:
    """A value for an attribute of type `hint`, usually valid, sometimes not."""
    origin = typing.get_origin(hint)
    if hint is type(None):
        return None
    if origin is typing.Literal:
        return draw(st.sampled_from(typing.get_args(hint)))
    if origin in (typing.Union, types.UnionType):
        return value_of(draw(st.sampled_from(typing.get_args(hint))), draw)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(value_of(args[0], draw) for _ in range(draw(st.integers(0, 3))))
        return tuple(value_of(a, draw) for a in args)
    if hint is Init:
        return draw(st.sampled_from(["zeros", "glorot_uniform", "ones"]))
    if hint is LayerActivation:
        return draw(st.sampled_from(["relu", "linear", "softmax"]))
    if hint is bool:
        return draw(st.booleans())
    if hint is int:
        return draw(st.sampled_from([-1, 0, 1, 1, 2, 2, 3, 4]))
    if hint is float:
        return draw(st.sampled_from([0.0, 0.5, 1.0, 1e-3, 2.0]))
    if hint is str:
        return draw(st.sampled_from(["f32", "i32", "bool", "f16", "i64", "same", "valid"]))
    return draw(st.sampled_from([1, 2]))


@st.composite
def programs(draw: Any) -> str:
    """A model of one input and one to three steps: op calls, operators, indexing."""
    dtype = draw(st.sampled_from(["f32", "f32", "f16", "f64", "i32", "i64", "bool"]))
    dims = ["N"] + [str(draw(st.integers(1, 4))) for _ in range(draw(st.integers(0, 3)))]
    names = sorted(LANGUAGE_OPS)
    lines, cur = [], "x"
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["op", "op", "op", "op", "binary", "index", "neg"]))
        if kind == "binary":
            op = draw(st.sampled_from(["+", "-", "*", "/", "@"]))
            other = draw(st.sampled_from([cur, "x", "2", "1.5", "(1, 2)", "true"]))
            expr = f"{cur} {op} {other}"
        elif kind == "index":
            expr = f"{cur}[{draw(st.sampled_from(['0', ':, 0', '..., 1:', '-1', ':, ::2']))}]"
        elif kind == "neg":
            expr = f"-{cur}"
        else:
            name = draw(st.sampled_from(names))
            opdef = OPS[ALIASES.get(name, name)]
            args = [cur] + [draw(st.sampled_from([cur, "x"])) for _ in opdef.inputs[1:]]
            for a in opdef.attrs:
                if a.required or draw(st.booleans()):
                    args.append(f"{a.name}={format_value(value_of(a.hint, draw))}")
            expr = f"{name}({', '.join(args)})"
        lines.append(f"    v{i} = {expr}")
        cur = f"v{i}"
    return (
        f"model m(x: {dtype}[{', '.join(dims)}]) -> (y: tensor) {{\n"
        + "\n".join(lines)
        + f"\n    y = {cur}\n}}\n"
    )


def session(model: Any) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_what_check_accepts_compiles_and_onnx_runtime_runs(text: str):
    try:
        m = netc.compile_text(text)
    except netc.NetcError:
        event("refused by the check")
        return  # nothing more to hold
    try:
        model = driver.emit(m, "onnx")
    except netc.NetcError as e:
        assert DOCUMENTED_REFUSALS.search(e.diagnostics[0].message), e.render()
        event("refused by the ONNX backend, as documented")
        return
    sess = session(model)
    x = m.graph[m.graph.inputs[0]].tensor_type
    symbols = {d: 2 for d in x.shape if isinstance(d, str)}  # every symbol 2: N*2 is 4
    feed = np.zeros(concrete_shape(x, symbols), numpy_dtype(x.dtype))
    (y,) = sess.run(None, {sess.get_inputs()[0].name: feed})
    want = m.graph[m.graph.outputs[0][1]].tensor_type
    assert y.shape == concrete_shape(want, symbols)
    event("compiled, loaded and run")


IMAGE, SEQUENCE = "f64[N, 4, 4, 2]", "f64[N, 5, 2]"


@pytest.mark.parametrize(
    ("x", "expr", "op", "kernel"),
    [
        (IMAGE, "gelu({})", "gelu", "Erf"),
        (IMAGE, "upsample({})", "upsample", "Resize"),
        (IMAGE, "conv2d({}, 2, 1)", "conv2d", "Conv"),
        (IMAGE, "conv2d_transpose({}, 2, 1)", "conv2d_transpose", "ConvTranspose"),
        (IMAGE, "avgpool({})", "avgpool", "AveragePool"),
        # loaded by ONNX Runtime, then failing at the first run ("does not support double
        # yet"): found by the property test above
        (SEQUENCE, "lstm({}, 3)", "lstm", "LSTM"),
        (SEQUENCE, "gru({}, 3)", "gru", "GRU"),
        (SEQUENCE, "gru({}, 3, reset_after=false)", "gru", "GRU"),
    ],
)
def test_float64_ops_onnx_runtime_cannot_run_are_refused_at_their_line(x, expr, op, kernel):
    m = netc.compile_text(f"model m(x: {x}) -> (y: tensor) {{\n    y = {expr.format('x')}\n}}")
    with pytest.raises(netc.NetcError) as info:
        driver.emit(m, "onnx")
    (d,) = info.value.diagnostics
    assert d.message == (
        f"the onnx backend cannot lower `{op}` on f64 values (ONNX Runtime has no float64 "
        f'{kernel} kernel); compute it in f32 with `cast("f32")` before and `cast("f64")` after'
    )
    assert d.span is not None and d.span.line == 2
    # the hint: the op in f32 between the two casts, which ONNX Runtime runs
    in_f32 = 'cast(x, "f32")'
    hinted = f'cast({expr.format(in_f32)}, "f64")'
    m = netc.compile_text(f"model m(x: {x}) -> (y: tensor) {{\n    y = {hinted}\n}}")
    shape = [2 if d == "N" else int(d) for d in x[4:-1].split(", ")]
    y = netc.runtime.load(m, target="onnx").run({"x": np.ones(shape)})["y"]
    assert y.dtype == np.float64 and np.isfinite(y).all()


def test_a_float64_relu6_after_relu_loads_at_every_level():
    # ONNX Runtime's Relu+Clip fusion fails to load a float64 Clip: relu6 is Max and Min there
    m = netc.compile_text("model m(x: f64[N, 3]) -> (y: tensor) { y = x |> relu |> relu6 }")
    model = driver.emit(m, "onnx", level=0)
    x = np.array([[-1.0, 3.0, 9.0]])
    for level in ("disable", "basic", "extended", "all"):
        y = netc.runtime.load(model, graph_optimization=level).run({"x": x})["y"]
        np.testing.assert_array_equal(y, [[0.0, 3.0, 6.0]])
