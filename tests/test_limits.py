"""Nothing a source says crashes netc or makes it allocate without bound: long chains compile,
and every limit (netc.Limits, `--limit NAME=VALUE`) is a located error before the work or
memory it bounds. Sizes are checked by counting (elements, bytes), never by timing."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import netc
from netc import Limits
from netc.cli import cli
from netc.weights import initial_weights

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from frontend import generated_spec  # noqa: E402


def body(statements: str, inputs: str = "x: f32[N, 4]", outputs: str = "y: tensor") -> str:
    return f"model m({inputs}) -> ({outputs}) {{\n{statements}\n}}\n"


def first_error(text: str, **kw) -> tuple[int, int, str, str | None]:
    with pytest.raises(netc.NetcError) as info:
        netc.compile_text(text, path="m.net", **kw)
    d = info.value.errors[0]
    assert d.span is not None, d.message
    return (d.span.line, d.span.col, d.message, d.hint)


# --- chains: as long as a file can be, never Python's recursion limit ---------------------


@pytest.mark.parametrize(
    "expr, ops",
    [
        ("x" + " |> relu" * 10_000, {"relu": 10_000}),
        ("x" + " + x" * 10_000, {"add": 10_000}),
        ("-" * 10_000 + "x", {"neg": 10_000}),
        ("x" + "[0]" * 1, {"slice": 1, "squeeze": 1}),
    ],
)
def test_ten_thousand_step_chains_compile(expr: str, ops: dict[str, int]):
    m = netc.compile_text(body(f"    y = {expr}"))
    counts: dict[str, int] = {}
    for n in m.graph.nodes:
        counts[n.op] = counts.get(n.op, 0) + 1
    assert {k: counts.get(k, 0) for k in ops} == ops


def test_long_compile_time_chains_and_else_if_chains_compile():
    total = " + ".join(["1"] * 10_000)
    conditions = "".join(
        f"    {'else ' if i else ''}if K == {i} {{ y = x |> dense({i + 1}) }}\n"
        for i in range(3000)
    )
    m = netc.compile_text(
        body(
            f"    const S = {total}\n    const K = 2999\n{conditions}"
            "    z = if S == 1 { x } else if S == 2 { x } else { x |> relu }"
        )
    )
    assert m.graph["dense"].type.shape == ("N", 3000)


def test_a_pipe_chain_of_ten_thousand_steps_lowers_to_onnx(tmp_path: Path):
    path = tmp_path / "chain.net"
    path.write_text(body("    y = x" + " |> relu" * 10_000))
    r = CliRunner().invoke(cli, [str(path), "-o", str(tmp_path / "chain.onnx")])
    assert r.exit_code == 0, r.output
    import onnx

    nodes = onnx.load(str(tmp_path / "chain.onnx")).graph.node
    assert sum(n.op_type == "Relu" for n in nodes) == 10_000


# --- nesting and expression length ------------------------------------------------------------


def test_brackets_nested_past_the_limit_are_an_error_at_the_bracket():
    text = body("    y = " + "(" * 70 + "x" + ")" * 70)
    line, col, message, hint = first_error(text)
    # the model's `{` is the first level: the 64th `(` is the 65th
    assert (line, col, message) == (2, 72, "brackets nest deeper than the limit of 64 levels")
    assert hint and "--limit nesting=N" in hint
    assert netc.compile_text(text, limits=Limits(nesting=100)).graph.outputs == (("y", "x"),)


def test_an_expression_past_the_length_limit_is_an_error_at_its_start():
    text = body("    y = x" + " + x" * 30)
    assert first_error(text, limits=Limits(expression=50))[:3] == (
        2,
        9,
        "this expression is 61 tokens long, more than the limit of 50",
    )


def test_deep_block_recursion_inside_deep_brackets_is_an_error_not_a_crash():
    # 64 block calls deep, each inside 60 brackets: more than Python's own stack allows
    text = (
        "block deep(x, d: int) {\n"
        "    return if d == 0 { x } else {" + "(" * 60 + "deep(x, d - 1)" + ")" * 60 + "}\n"
        "}\n" + body("    y = deep(x, 200)")
    )
    with pytest.raises(netc.NetcError) as info:
        netc.compile_text(text, path="m.net")
    assert info.value.errors[0].message == "block `deep` calls itself 64 levels deep"


# --- the size of every value, the parameters, the weights' memory -----------------------------


def test_a_value_too_large_is_refused_before_it_exists():
    assert first_error(body("    y = x |> dense(10**12)"))[:3] == (
        2,
        14,
        "the result of dense would be f32[N, 1000000000000], 1,000,000,000,000 elements per "
        "sample, more than the limit of 2,147,483,648",
    )


def test_a_weight_too_large_is_refused_before_it_exists():
    text = body("    y = x |> dense(100000)", inputs="x: f32[N, 100000]")
    assert first_error(text)[2] == (
        "dense: weight `kernel` would be f32[100000, 100000], 10,000,000,000 elements, more "
        "than the limit of 2,147,483,648"
    )


def test_the_parameter_count_warns_past_a_billion_and_stops_at_its_limit():
    text = body("    y = x |> dense(40000)", inputs="x: f32[N, 30000]")
    m = netc.compile_text(text, path="m.net")  # 1.2e9 parameters: checked, not allocated
    assert [(w.span.line, w.message) for w in m.warnings] == [
        (2, "weight `dense.kernel` brings the model past 1,000,000,000 parameters")
    ]
    assert m.total_params == 1_200_040_000
    assert first_error(text, limits=Limits(params=10**9))[2] == (
        "weight `dense.kernel` brings the model to 1,200,000,000 parameters, more than the "
        "limit of 1,000,000,000"
    )


def test_the_weights_memory_counts_each_weight_in_its_own_dtype():
    text = body("    y = x |> dense(1024)", inputs="x: f16[N, 1024]")
    limits = Limits(weight_bytes=2 * 1024 * 1024)  # f16: 2 MiB + 2 KiB of weights
    assert first_error(text, limits=limits)[2] == (
        "weight `dense.bias` brings the model's weights to 2.0 MiB, more than the limit of 2.0 MiB"
    )
    m = netc.compile_text(text, limits=Limits(weight_bytes=3 * 1024 * 1024))
    with pytest.raises(netc.NetcError, match="weights need 2.0 MiB, more than the limit of 1.0"):
        initial_weights(m.graph, limits=Limits(weight_bytes=2**20))


@pytest.mark.parametrize("init", ["glorot_uniform", "he_normal"])
def test_initial_weights_never_hold_a_float64_copy_of_a_big_weight(init: str):
    text = body(f'    y = x |> dense(8192, kernel_init="{init}")', inputs="x: f32[N, 4096]")
    m = netc.compile_text(text)
    tracemalloc.start()
    weights = initial_weights(m.graph)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    kernel = weights["dense.kernel"]
    assert kernel.dtype == np.float32 and kernel.nbytes == 4096 * 8192 * 4
    assert peak < 1.6 * kernel.nbytes  # a float64 draw of it alone would be 2x, then the copy
    expected = (2 / (4096 + 8192)) ** 0.5 if init == "glorot_uniform" else (2 / 4096) ** 0.5
    assert float(kernel[::97].std()) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize(
    "inputs, message",
    [
        ("x: f32[N, D]", "a dim must be >= 1, got -60"),
        ("x: f32[N, 0]", "a dim must be >= 1, got 0"),
    ],
)
def test_negative_and_zero_dims_are_errors_at_the_dim(inputs: str, message: str):
    text = "const D = -60\n" + body("    y = x |> dense(4)", inputs=inputs)
    line, col, got, _ = first_error(text)
    assert (line, col, got) == (2, 19, message)


def test_every_value_is_checked_for_empty_dims_whatever_made_it():
    # the op rules refuse empty results themselves; this is the check behind them all
    from netc.elaborate import Elaborator
    from netc.ir import TensorType
    from netc.source import Reporter, Span
    from netc.values import Frame, Stop

    el = Elaborator(Reporter())
    el.frames.append(Frame("", ()))
    at = Span("m.net", 3, 5, 3, 9)
    with pytest.raises(Stop):
        el.check_type(TensorType("f32", ("N", 0, 3)), "the result of slice", at)
    el.check_type(TensorType("f32", ("N", 1, 3)), "the result of slice", at)
    assert [(d.span, d.message) for d in el.r.diagnostics] == [
        (at, "the result of slice would be f32[N, 0, 3]: every dim must be >= 1")
    ]


# --- repetition: loops, block calls, nodes, lists ---------------------------------------------


def test_loop_iterations_are_bounded_in_all():
    text = body(
        "    y = x\n    for i in range(100) {\n        for j in range(1000) {\n"
        "            const k = i + j\n        }\n    }"
    )
    assert first_error(text, limits=Limits(iterations=10_000))[:3] == (
        4,
        18,
        "`for` over 1,000 items brings the loops past the limit of 10,000 iterations in all",
    )


def test_a_range_past_the_limit_is_refused_before_it_exists():
    assert first_error(body("    const R = range(10**12)\n    y = x"))[2] == (
        "`range`: range of 1,000,000,000,000 items is more than the limit of 1,000,000"
    )


def test_exponential_block_recursion_stops_at_the_call_limit():
    text = (
        "block grow(x, d: int) {\n"
        "    if d > 0 {\n"
        "        a = grow(x, d - 1)\n"
        "        b = grow(x, d - 1)\n"
        "        return a\n"
        "    }\n"
        "    return x\n"
        "}\n" + body("    y = grow(x, 40)")
    )
    assert "block calls, the limit" in first_error(text, limits=Limits(calls=5000))[2]


def test_the_node_count_is_bounded():
    text = body("    y = x" + " |> relu" * 200)
    assert first_error(text, limits=Limits(nodes=100))[2] == (
        "the model has more than 100 nodes, the limit"
    )


@pytest.mark.parametrize(
    "statements, message",
    [
        (
            "    const L = [1]\n    for i in range(40) {\n        L = L + L\n    }",
            "`+`: the list would have 1,048,576 items, more than the limit of 1,000,000",
        ),
        (
            "    const B = 2\n    for i in range(20) {\n        B = B * B\n    }",
            "cannot apply `*` to an int of 155 digits and an int of 155 digits",
        ),
        ("    const C = (-8) ** 0.5", "cannot apply `**` to the int -8 and the float 0.5"),
    ],
)
def test_compile_time_values_cannot_run_away(statements: str, message: str):
    text = body(statements.replace("const L", "L").replace("const B", "B") + "\n    y = x")
    assert first_error(text)[2] == message


SHARED = "    const L = [0] * 1000\n    const M = [L] * 1000\n    const B = [M] * 100\n"


def test_a_list_repeated_into_a_hundred_million_numbers_is_refused_fast():
    # [M] * 100 shares its items: 100 lists of 1,000 lists of 1,000 zeros, all one list
    assert first_error(body(SHARED + "    y = x + B"))[2] == (
        "cannot combine a list of shape [100, 1000, 1000] with a tensor f32[N, 4]: its "
        "100,000,000 numbers are more than the limit of 1,000,000 for one list"
    )
    assert first_error(body(SHARED + '    y = x\n    const S = f"{B}"'))[2] == (
        "`str`: a list of more than 100,000 values is too long to write"
    )


@pytest.mark.parametrize(
    "inputs, expr, message",
    [
        (
            "x: i32[N, 4]",
            "x + 2**40",
            "cannot combine the number 1099511627776 with a tensor "
            "i32[N, 4]: i32 holds magnitudes up to 2147483647",
        ),
        (
            "x: f16[N, 4]",
            "x * 1e6",
            "cannot combine the number 1000000.0 with a tensor "
            "f16[N, 4]: f16 holds magnitudes up to 65504.0",
        ),
        (
            "x: f16[N, 4]",
            "x - [1e6, 0, 0, 0]",
            "cannot combine a list holding 1000000.0 with a "
            "tensor f16[N, 4]: f16 holds magnitudes up to 65504.0",
        ),
    ],
)
def test_numbers_beside_a_tensor_fit_its_dtype(inputs: str, expr: str, message: str):
    assert first_error(body(f"    y = {expr}", inputs=inputs))[2] == message


def test_bool_tensors_take_no_arithmetic():
    line, col, message, hint = first_error(body("    y = x + x", inputs="x: bool[N, 4]"))
    assert (line, col, message) == (
        2,
        9,
        "add needs numeric operands, got bool[N, 4] and bool[N, 4]",
    )
    assert hint == 'cast them first: `x |> cast("i32")`'


# --- sources ----------------------------------------------------------------------------------


def test_a_source_past_the_size_limit_is_refused(tmp_path: Path):
    path = tmp_path / "m.net"
    path.write_text(body("    y = x"))
    with pytest.raises(netc.NetcError, match="larger than the limit of 16 bytes"):
        netc.compile(path, limits=Limits(source_bytes=16))
    (tmp_path / "lib.net").write_text("# " + "x" * 100 + "\n")
    path.write_text('import "lib.net"\n' + body("    y = x"))
    with pytest.raises(netc.NetcError) as info:
        netc.compile(path, limits=Limits(source_bytes=90))
    assert info.value.diagnostics[0].message == (
        f'cannot import "lib.net": {tmp_path / "lib.net"} is larger than the limit of 90 bytes '
        "for a source file"
    )


def test_the_cli_sets_limits_and_refuses_unknown_ones(tmp_path: Path):
    path = tmp_path / "m.net"
    path.write_text(body("    y = x" + " |> relu" * 10))
    r = CliRunner().invoke(cli, ["check", str(path), "--limit", "nodes=5"])
    assert r.exit_code == 1 and "more than 5 nodes, the limit" in r.output
    r = CliRunner().invoke(cli, ["check", str(path), "--limit", "nodes=1_000"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["check", str(path), "--limit", "speed=9"])
    assert r.exit_code == 2 and "unknown limit `speed=9`" in r.output


# --- a big file stays linear ------------------------------------------------------------------


def peak_bytes(blocks: int) -> int:
    text = generated_spec(blocks)
    tracemalloc.start()
    m = netc.compile_text(text, path="big.net")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert m.layer_count == 4 * blocks
    return peak


def test_checking_a_big_file_takes_memory_in_proportion_to_it():
    small, large = peak_bytes(150), peak_bytes(600)
    assert large < 4.6 * small  # linear (4x the file), with room for the fixed costs
    assert large * 10_000 / 600 < 500 * 2**20  # extrapolated to 10,000 blocks: under 500 MB
