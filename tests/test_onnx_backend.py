"""The ONNX backend's structure: versions, validity, shape inference, names and source
locations, layout (Transpose counts), determinism, atomic files, and its errors."""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import netc
from netc.backends import to_onnx
from netc.ir import Const, Graph, Node, TensorType
from netc.ops import OPS
from netc.runtime import reference
from netc.weights import initial_weights

CONV_STACK = """
model stack(x: f32[N, 16, 16, 3]) -> (y: tensor) {
    y = x |> conv2d(8, 3, padding="same") |> relu |> conv2d(8, 3, stride=2, padding="same")
          |> batchnorm |> relu |> maxpool(2) |> conv2d(4, 1)
}
"""

RESIDUAL = """
block residual(x, filters: int) {
    y = x |> conv2d(filters, 3, padding="same", bias=false) |> batchnorm |> relu
          |> conv2d(filters, 3, padding="same")
    return relu(y + x)
}

model net(image: f32[N, 12, 12, 4]) -> (logits: tensor) {
    logits = image |> residual(4) |> residual(4) |> global_avgpool |> dense(10)
}
"""

FLATTEN = """
model lenet(image: f32[N, 10, 10, 2]) -> (logits: tensor) {
    logits = image |> conv2d(3, 3) |> maxpool(2) |> flatten |> dense(5)
}
"""

UNET = """
model unet(x: f32[N, 8, 8, 3]) -> (y: tensor) {
    down = x |> conv2d(4, 3, padding="same") |> relu
    deep = down |> avgpool(2) |> conv2d(4, 3, padding="same") |> upsample(2)
    y = concat(down, deep) |> conv2d(2, 1) |> sigmoid
}
"""

SEQUENCE = """
model seq(x: f32[N, T, 6], ids: i32[N, T]) -> (a: tensor, b: tensor, c: tensor) {
    a = x |> multi_head_attention(heads=2, key_dim=3, causal=true) |> layernorm
    b, h, cell = x |> lstm(4, return_sequences=true, return_state=true, go_backwards=true)
    c = ids |> embedding(20, 6) |> gru(3)
}
"""

MODELS = {
    "stack": CONV_STACK,
    "residual": RESIDUAL,
    "flatten": FLATTEN,
    "unet": UNET,
    "sequence": SEQUENCE,
}
EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.net"))


def emit(text: str, io_layout: str = "channels-last", seed: int = 0):
    graph = netc.compile(text).graph
    return graph, to_onnx.emit(graph, initial_weights(graph, seed), io_layout=io_layout)


def op_counts(model) -> collections.Counter:
    return collections.Counter(n.op_type for n in model.graph.node)


def feed(
    graph: Graph, batch: int = 2, symbols: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    bound = {"N": batch, "T": 5, **(symbols or {})}
    out = {}
    for name in graph.inputs:
        t = graph[name].tensor_type
        shape = [d if isinstance(d, int) else bound[d] for d in t.shape]
        out[name] = (
            rng.integers(0, 20, shape).astype(np.int32)
            if t.dtype == "i32"
            else rng.normal(size=shape).astype(np.float32)
        )
    return out


def run_ort(model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=True))


# --- coverage --------------------------------------------------------------------------------


def test_every_op_has_a_rule():
    assert to_onnx.RULES.missing(OPS) == []


def test_a_missing_rule_is_a_located_error(monkeypatch):
    text = "model m(x: f32[N, T, 4]) -> (y: tensor) {\n    y = x |> gru(3)\n}\n"
    graph = netc.compile(text).graph
    monkeypatch.delitem(to_onnx.RULES.table, "gru")
    with pytest.raises(netc.NetcError) as info:
        to_onnx.emit(graph, initial_weights(graph))
    (d,) = info.value.diagnostics
    assert d.message == "the onnx backend cannot lower `gru`"
    assert (d.span.line, d.span.col) == (2, 14)


def test_bf16_values_are_refused_at_their_node():
    graph = netc.compile('model m(x: f32[N, 4]) -> (y: tensor) {\n  y = x |> cast("bf16")\n}').graph
    with pytest.raises(netc.NetcError, match="cannot lower `cast` on bf16") as info:
        to_onnx.emit(graph, {})
    assert info.value.diagnostics[0].span.line == 2


def test_an_unknown_io_layout_is_an_error():
    graph = netc.compile("model m(x: f32[N, 4]) -> (y: tensor) { y = x |> relu }").graph
    with pytest.raises(netc.NetcError, match="unknown io layout `nchw`"):
        to_onnx.emit(graph, {}, io_layout="nchw")


def test_weights_are_checked_by_name():
    graph = netc.compile("model m(x: f32[N, 4]) -> (y: tensor) { y = x |> dense(3) }").graph
    with pytest.raises(netc.NetcError, match="does not fit model") as info:
        to_onnx.emit(graph, {"dense.kernel": np.zeros((4, 3), np.float32), "extra": np.ones(2)})
    assert info.value.diagnostics[0].notes == (
        "missing: dense.bias f32[3]",
        "unexpected: extra [2]",
    )


# --- a valid model at the chosen versions -----------------------------------------------------


def test_opset_and_ir_version_are_pinned():
    _, model = emit(CONV_STACK)
    assert model.ir_version == to_onnx.IR_VERSION == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", to_onnx.OPSET)]
    assert to_onnx.OPSET == 18
    assert {n.domain for n in model.graph.node} == {""}  # the standard domain only
    assert model.producer_name == "netc"


@pytest.mark.parametrize("name", MODELS)
def test_the_model_is_valid_and_every_value_has_a_shape(name):
    graph, model = emit(MODELS[name])
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    values = {
        v.name: v.type.tensor_type
        for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)
    }
    for node in inferred.graph.node:
        for out in node.output:
            t = values[out]
            assert t.HasField("shape"), out
            assert all(d.HasField("dim_value") or d.HasField("dim_param") for d in t.shape.dim), out
    # a value netc knows keeps its IR dims, symbols as dim_param (permuted when channels-first)
    for node in graph.nodes:
        if node.name in values and isinstance(node.type, TensorType):
            dims = [d.dim_value or d.dim_param for d in values[node.name].shape.dim]
            assert sorted(map(str, dims)) == sorted(map(str, node.type.shape)), node.name


def test_symbolic_dims_stay_symbolic():
    _, model = emit(SEQUENCE)
    x = model.graph.input[0].type.tensor_type
    assert [d.dim_param or d.dim_value for d in x.shape.dim] == ["N", "T", 6]
    b = next(o for o in model.graph.output if o.name == "b").type.tensor_type
    assert [d.dim_param or d.dim_value for d in b.shape.dim] == ["N", "T", 4]


@pytest.mark.parametrize("name", MODELS)
def test_onnx_runtime_agrees_with_the_reference(name):
    graph, model = emit(MODELS[name])
    weights = initial_weights(graph)
    inputs = feed(graph)
    got, want = run_ort(model, inputs), reference.run(graph, inputs, weights)
    for out in want:
        np.testing.assert_allclose(got[out], want[out], rtol=1e-4, atol=1e-5, err_msg=out)


@pytest.mark.parametrize("name", MODELS)
def test_optimized_graphs_lower_and_agree_with_the_unoptimized_reference(name):
    from netc.passes import optimize

    graph = netc.compile(MODELS[name]).graph
    weights = initial_weights(graph)
    optimized, folded = optimize(graph, weights, 2)
    inputs = feed(graph)
    got, want = (
        run_ort(to_onnx.emit(optimized, folded), inputs),
        reference.run(graph, inputs, weights),
    )
    for out in want:
        np.testing.assert_allclose(got[out], want[out], rtol=1e-4, atol=1e-5, err_msg=out)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_lowers_to_a_valid_model(path):
    graph = netc.compile(path).graph
    model = to_onnx.emit(graph, initial_weights(graph))
    onnx.checker.check_model(model, full_check=True)
    ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    if path.stem.startswith("resnet"):
        assert op_counts(model)["Transpose"] == 1  # at the input only


# --- names, source locations, weights -------------------------------------------------------


def test_nodes_are_named_after_the_ir_and_carry_their_source_location():
    graph, model = emit(RESIDUAL)
    nodes = {n.name: n for n in model.graph.node}
    for node in graph.nodes:
        if node.op not in ("input", "param", "constant", "item"):
            assert node.name in nodes, node.name
    conv = nodes["residual_1.conv2d_1"]
    assert conv.op_type == "Conv"
    ir = graph["residual_1.conv2d_1"]
    assert conv.doc_string == (
        f"<string>:{ir.span.line}:{ir.span.col}; in block `residual`, called at {ir.calls[0].span}"
    )
    assert (ir.calls[0].span.line, ir.calls[0].span.col) == (9, 38)  # the second call
    assert len(nodes) == len(model.graph.node)  # node names are unique


def test_weights_become_initializers_named_by_weight_name():
    for text in MODELS.values():
        graph, model = emit(text)
        names = {i.name for i in model.graph.initializer}
        assert {p.name for p in graph.params} <= names


def test_conv_and_recurrent_weights_are_laid_out_for_onnx():
    graph, model = emit(SEQUENCE)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    w = initial_weights(graph)
    u = 4  # lstm: Keras i f c o -> ONNX i o f c, transposed, bias padded with the recurrent half
    kernel = w["lstm.kernel"]
    want = np.concatenate([kernel[:, :u], kernel[:, 3 * u :], kernel[:, u : 3 * u]], axis=1).T
    np.testing.assert_array_equal(inits["lstm.kernel"], want[None])
    assert inits["lstm.bias"].shape == (1, 8 * u)
    assert inits["gru.bias"].shape == (1, 6 * 3)  # reset_after: [b_in, b_rec]
    _, cnn = emit(CONV_STACK)
    inits = {i.name: i for i in cnn.graph.initializer}
    assert list(inits["conv2d.kernel"].dims) == [8, 3, 3, 3]  # Keras [3, 3, 3, 8] -> OIHW


# --- layout ----------------------------------------------------------------------------------


def test_a_conv_stack_has_one_transpose_in_and_one_out():
    _, model = emit(CONV_STACK)
    assert op_counts(model)["Transpose"] == 2
    assert op_counts(model)["Conv"] == 3
    assert model.graph.node[0].op_type == "Transpose"  # at the input, before the first conv


def test_channels_first_io_has_no_transpose_and_declares_nchw():
    graph, model = emit(CONV_STACK, io_layout="channels-first")
    assert op_counts(model)["Transpose"] == 0
    dims = [
        [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (model.graph.input[0], model.graph.output[0])
    ]
    assert dims == [["N", 3, 16, 16], ["N", 4, 4, 4]]
    x = feed(graph)["x"]
    got = run_ort(model, {"x": x.transpose(0, 3, 1, 2)})["y"]
    want = reference.run(graph, {"x": x}, initial_weights(graph))["y"]
    np.testing.assert_allclose(got, want.transpose(0, 3, 1, 2), rtol=1e-4, atol=1e-5)


def test_a_residual_network_transposes_only_its_input():
    _, model = emit(RESIDUAL)
    assert op_counts(model)["Transpose"] == 1
    assert op_counts(model)["GlobalAveragePool"] == 1


def test_flatten_after_a_conv_transposes_back_once_and_keeps_keras_order():
    graph, model = emit(FLATTEN)
    assert op_counts(model)["Transpose"] == 2  # the input, and back before flatten
    weights = initial_weights(graph)
    inputs = feed(graph)
    np.testing.assert_allclose(
        run_ort(model, inputs)["logits"],
        reference.run(graph, inputs, weights)["logits"],
        rtol=1e-4,
        atol=1e-5,
    )


def test_pools_upsample_and_concat_stay_channels_first():
    _, model = emit(UNET)
    assert op_counts(model)["Transpose"] == 2
    _, model = emit(UNET, io_layout="channels-first")
    assert op_counts(model)["Transpose"] == 0


def test_a_constant_vector_broadcasts_against_a_channels_first_value():
    # y = conv2d(x) + c with c: [C], as a pass would leave it: c is reshaped to [C, 1, 1] now
    graph = netc.compile(
        "model m(x: f32[N, 5, 5, 2]) -> (y: tensor) { y = x |> conv2d(3, 1) }"
    ).graph
    c = Node(
        "c",
        "constant",
        (),
        {"value": Const(np.array([1.0, -2.0, 3.0], np.float32))},
        TensorType("f32", (3,)),
    )
    add = Node("y", "add", ("conv2d", "c"), {}, graph["conv2d"].type)
    graph = graph.with_nodes([*graph.nodes, c, add], [("y", "y")])
    model = to_onnx.emit(graph, initial_weights(graph))
    assert op_counts(model)["Transpose"] == 2
    inits = {i.name: list(i.dims) for i in model.graph.initializer}
    assert inits["c"] == [1, 3, 1, 1]
    inputs = feed(graph)
    np.testing.assert_allclose(
        run_ort(model, inputs)["y"],
        reference.run(graph, inputs, initial_weights(graph))["y"],
        rtol=1e-5,
        atol=1e-6,
    )


def test_an_output_named_like_its_channels_first_value_is_transposed_back():
    graph = netc.compile(
        "model m(x: f32[N, 5, 5, 2]) -> (y: tensor) { y = x |> conv2d(3, 1) }"
    ).graph
    nodes = [n.with_(name="y") if n.name == "conv2d" else n for n in graph.nodes]
    graph = graph.with_nodes(nodes, [("y", "y")])
    model = to_onnx.emit(graph, initial_weights(graph))
    onnx.checker.check_model(model, full_check=True)
    assert [o.name for o in model.graph.output] == ["y"]
    inputs = feed(graph)
    assert run_ort(model, inputs)["y"].shape == (2, 5, 5, 3)


def test_one_value_as_two_outputs_and_an_input_as_an_output():
    text = (
        "model m(x: f32[N, 4]) -> (a: tensor, b: tensor, c: tensor) {\n"
        "  a = x |> relu\n  b = a\n  c = x\n}"
    )
    graph = netc.compile(text).graph
    model = to_onnx.emit(graph, {})
    onnx.checker.check_model(model, full_check=True)
    x = np.array([[-1, 2, -3, 4]], np.float32)
    got = run_ort(model, {"x": x})
    np.testing.assert_array_equal(got["a"], np.maximum(x, 0))
    np.testing.assert_array_equal(got["b"], np.maximum(x, 0))
    np.testing.assert_array_equal(got["c"], x)


# --- files -----------------------------------------------------------------------------------


def test_the_same_source_and_seed_give_byte_identical_files(tmp_path):
    paths = []
    for i in range(2):
        graph = netc.compile(SEQUENCE).graph  # compiled afresh each time
        paths.append(tmp_path / f"m{i}.onnx")
        to_onnx.write(graph, initial_weights(graph, seed=7), paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    graph = netc.compile(SEQUENCE).graph
    to_onnx.write(graph, initial_weights(graph, seed=8), tmp_path / "other.onnx")
    assert (tmp_path / "other.onnx").read_bytes() != paths[0].read_bytes()


def test_save_writes_a_model_onnx_reads_back(tmp_path):
    graph, model = emit(FLATTEN)
    to_onnx.save(model, tmp_path / "m.onnx")
    assert onnx.load(str(tmp_path / "m.onnx")) == model


def test_a_failure_while_writing_leaves_no_file(tmp_path, monkeypatch):
    graph = netc.compile(FLATTEN).graph
    weights = initial_weights(graph)

    def broken(ctx, node):
        raise RuntimeError("emission failed")

    monkeypatch.setitem(to_onnx.RULES.table, "dense", broken)
    target = tmp_path / "m.onnx"
    with pytest.raises(RuntimeError, match="emission failed"):
        to_onnx.write(graph, weights, target)
    assert list(tmp_path.iterdir()) == []  # no model, no temporary
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        to_onnx.write(graph, weights, target)
    assert target.read_bytes() == b"old"  # an existing file is left as it was
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_importing_netc_imports_neither_onnx_nor_onnxruntime():
    code = textwrap.dedent("""
        import sys
        import netc, netc.runtime, netc.backends.to_onnx, netc.runtime.onnx, netc.runtime.api
        netc.compile("model m(x: f32[N, 4]) -> (y: tensor) { y = x |> relu }")
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("onnx", "onnxruntime")))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
