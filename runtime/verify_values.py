"""Every IR value as a backend computes it: the model emitted with each value as an output
(ONNX Runtime here; the other runtimes' `run_values`), bisected for the longest prefix that
runs when the backend fails."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from netc.ir import Graph, TensorType, numpy_dtype
from netc.source import NetcError

SOURCES = ("input", "param", "constant", "item")  # nodes that compute nothing of their own


Key = tuple[str, int | None]  # (IR value, result index of a multi-result op)


@dataclass(frozen=True)
class Backend:
    """What one backend run gave: each exposed value (channels-last), the backend's name for
    it, the device; and when the backend failed, the first value it could not compute (the
    values before it come from the longest prefix that ran) and its error."""

    values: dict[Key, np.ndarray]
    tensors: dict[Key, str]
    device: str
    failed_at: Key | None = None
    failure: str | None = None


def run_values(
    target: str,
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    device: str,
    graph_optimization: str = "all",
) -> Backend:
    """Every computed IR value as `target` gives it: ONNX Runtime here (its optimizer at
    `graph_optimization`); the other targets' runtime modules (netc.runtime.keras,
    netc.runtime.tf) each have a `run_values(graph, weights, inputs, device) -> Backend`."""
    if target == "onnx":
        return _run_onnx(graph, weights, inputs, device, graph_optimization)
    module = importlib.import_module(f".{target}", __package__)
    return module.run_values(graph, weights, inputs, device)


def _run_onnx(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    device: str,
    graph_optimization: str = "all",
) -> Backend:
    """Every computed IR value as ONNX Runtime gives it. When the model does not load or run
    (a broken lowering), bisect for the longest prefix of values that does."""
    from netc.backends import to_onnx

    model, emitted = to_onnx.emit_with_values(graph, weights)
    exposed: dict[Key, to_onnx.Value] = {}
    for node in graph.nodes:
        if node.op in SOURCES:
            continue
        value = emitted[node.name]
        if isinstance(value, tuple):
            exposed.update({(node.name, i): v for i, v in enumerate(value)})
        else:
            exposed[(node.name, None)] = value
    keys = list(exposed)  # in topological order
    tensors = {k: v.name for k, v in exposed.items()}
    if not keys:  # nothing computed: the outputs are inputs or weights
        return Backend({}, tensors, device)

    def run(prefix: list[Key]) -> tuple[dict[Key, np.ndarray], str]:
        wanted = [exposed[k].name for k in prefix]
        results, ran_on = _run_session(
            _exposing(model, wanted, graph, exposed), inputs, device, graph_optimization
        )
        out = {}
        for k in prefix:
            a, cf = results[exposed[k].name], exposed[k].cf
            out[k] = a.transpose(to_onnx.to_cl(a.ndim)) if cf and a.ndim >= 3 else a
        return out, ran_on

    try:
        values, ran_on = run(keys)
        return Backend(values, tensors, ran_on)
    except NetcError as e:
        failure = e.diagnostics[0].message
    ok, bad = 0, len(keys)  # the first `ok` values compute; the first `bad` do not
    values, ran_on = {}, device
    while bad - ok > 1:
        mid = (ok + bad) // 2
        try:
            values, ran_on = run(keys[:mid])
            ok = mid
        except NetcError as e:
            bad, failure = mid, e.diagnostics[0].message
    return Backend(values, tensors, ran_on, keys[ok], failure)


def _run_session(
    model: Any, inputs: Mapping[str, np.ndarray], device: str, graph_optimization: str = "all"
) -> tuple[dict[str, np.ndarray], str]:
    """All outputs of `model` in ONNX Runtime, and the device it ran on; failures are
    NetcErrors (verify expects some while it bisects), and ONNX Runtime logs nothing."""
    from .onnx import OnnxSession

    session = OnnxSession(
        model, name=model.graph.name, device=device, graph_optimization=graph_optimization
    )
    return session.run(inputs), session.device


def _exposing(model: Any, tensors: list[str], graph: Graph, exposed: Mapping) -> Any:
    """A copy of `model` whose outputs are `tensors` (their value_info moves there), with only
    the nodes that compute them."""
    import onnx
    from onnx import helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    g = copy.graph
    inputs = {i.name for i in g.input}
    infos = {vi.name: vi for vi in g.value_info} | {o.name: o for o in g.output}
    types = {v.name: result_type(graph, key) for key, v in exposed.items()}
    outputs = []
    for name in dict.fromkeys(tensors):
        if name in inputs:
            continue
        if name in infos:
            vi = onnx.ValueInfoProto()
            vi.CopyFrom(infos[name])
        else:  # declared by its element type alone: ONNX Runtime infers the shape
            dtype = helper.np_dtype_to_tensor_dtype(numpy_dtype(types[name].dtype))
            vi = helper.make_tensor_value_info(name, dtype, None)
        outputs.append(vi)
    needed = {vi.name for vi in outputs}
    nodes = []
    for n in reversed(g.node):  # the nodes the outputs need, found backwards
        if needed.intersection(n.output):
            nodes.append(n)
            needed.update(n.input)
    declared = {vi.name for vi in outputs}
    value_info = [vi for vi in g.value_info if vi.name not in declared]
    initializers = [i for i in g.initializer if i.name in needed]
    del g.node[:], g.output[:], g.value_info[:], g.initializer[:]
    g.node.extend(reversed(nodes))
    g.output.extend(outputs)
    g.value_info.extend(value_info)
    g.initializer.extend(initializers)
    return copy


def result_type(graph: Graph, key: Key) -> TensorType:
    t = graph[key[0]].type
    if key[1] is None:
        assert isinstance(t, TensorType)
        return t
    assert isinstance(t, tuple)
    return t[key[1]]
