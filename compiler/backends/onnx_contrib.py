"""ONNX Runtime's contrib ops where they beat its own optimizer (`--ort-contrib`, docs/onnx.md):
a rewrite of the model `to_onnx` emitted, which names each op's ONNX nodes after its IR node,
so the nodes of one IR op are found by name, never by guessing at a pattern.

1. Self-attention (`multi_head_attention` of one input, f32) becomes one `com.microsoft`
   Attention node (the three projections packed into one [D, 3 * heads * key_dim] weight,
   scaling, the causal mask as `unidirectional`, the softmax and the mixing) followed by the
   output projection as emitted. ONNX Runtime's session optimizer never forms Attention from
   a generic graph (only its offline `onnxruntime.transformers` tool does), and the fused
   kernel is faster on the CPU (measured: docs/onnx.md).
2. Cross-attention (a query attending to another value, and key, f32) keeps its three
   projections' MatMuls and becomes one `com.microsoft` MultiHeadAttention node for the rest
   (the projections' biases, the heads split, scaling, softmax, mixing and the heads merged);
   a causal mask only where both lengths are known and equal (ONNX Runtime's
   `unidirectional` aligns a shorter query with the keys' end, Keras with their start).

What ONNX Runtime's optimizer already finds in netc's graphs (SkipLayerNormalization,
BiasGelu, FusedConv, FusedMatMul, FusedGemm at level extended) is left to it: emitting those
directly gains nothing at load or run time. The rewritten model needs an ONNX Runtime with its
contrib ops (every standard build); the runtime names that when a model does not load.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ir import Graph, Node
from ..ops.attention import attention_inputs, query_value_key

CONTRIB_DOMAIN = "com.microsoft"


def use_contrib_ops(model: Any, graph: Graph) -> Any:
    """A copy of `model` (emitted by to_onnx from a graph whose nodes keep `graph`'s names and
    attributes) with the forms above; `model` itself when none applies."""
    attention = [n for n in graph if n.op == "multi_head_attention" and _covered(graph, n)]
    if not attention:
        return model
    out = type(model)()
    out.CopyFrom(model)
    changed = False
    for node in attention:
        changed |= _attention(out, node)
    if not changed:
        return model
    _drop_unused_initializers(out)
    if not any(o.domain == CONTRIB_DOMAIN for o in out.opset_import):
        out.opset_import.add(domain=CONTRIB_DOMAIN, version=1)
    return out


def _covered(graph: Graph, node: Node) -> bool:
    """Whether attention `node` has a contrib form: f32, and for cross-attention with a causal
    mask, a query and keys of one known length."""
    if node.tensor_type.dtype != "f32":
        return False
    data, _ = attention_inputs(node.inputs, node.attrs)
    if len(data) == 1 or not node.attrs["causal"]:
        return True
    steps = node.tensor_type.shape[1]
    keys = graph[query_value_key(data)[2]].tensor_type.shape[1]
    return isinstance(steps, int) and steps == keys


def _attention(model: Any, node: Node) -> bool:
    """Replace the generic lowering of attention `node` by com.microsoft Attention (self-
    attention) or MultiHeadAttention (cross); False when its nodes are not found as emitted
    (the generic form then stays)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = list(model.graph.node)
    group = [
        i for i, n in enumerate(nodes) if n.name == node.name or n.name.startswith(node.name + "/")
    ]
    inits = {i.name: i for i in model.graph.initializer}
    matmuls = [i for i in group if nodes[i].op_type == "MatMul" and nodes[i].input[1] in inits]
    if len(matmuls) != 4:
        return False
    q, k, v, out_proj = (nodes[i] for i in matmuls)
    cross = len(attention_inputs(node.inputs, node.attrs)[0]) > 1
    if not cross and not (q.input[0] == k.input[0] == v.input[0]):
        return False
    merged = out_proj.input[0]  # the heads merged: [N, T, heads * value_dim]
    kernels = [numpy_helper.to_array(inits[m.input[1]]) for m in (q, k, v)]
    consumers = {i: nodes[i] for i in group}
    biases = []
    for m, kernel in zip((q, k, v), kernels, strict=True):
        add = next(
            (n for n in consumers.values() if n.op_type == "Add" and n.input[0] == m.output[0]),
            None,
        )
        if add is not None and add.input[1] in inits:
            biases.append(numpy_helper.to_array(inits[add.input[1]]).reshape(-1))
        else:
            biases.append(np.zeros(kernel.shape[1], kernel.dtype))
    a = node.attrs
    heads, key_dim, value_dim = a["heads"], a["key_dim"], a["value_dim"]
    bias = numpy_helper.from_array(np.concatenate(biases), f"{node.name}/qkv_bias")
    attrs: dict[str, Any] = dict(
        domain=CONTRIB_DOMAIN,
        num_heads=heads,
        scale=1 / math.sqrt(key_dim),  # as Keras: the query scaled by 1/sqrt(key_dim)
        unidirectional=int(a["causal"]),
    )
    if cross:  # the projections stay; MultiHeadAttention adds their biases
        added: list[Any] = [bias] if a["bias"] else []
        kept = {q.name, k.name, v.name}
        fused = helper.make_node(
            "MultiHeadAttention",
            [q.output[0], k.output[0], v.output[0]] + [b.name for b in added],
            [merged],
            f"{node.name}/MultiHeadAttention",
            **attrs,
        )
    else:
        weight = numpy_helper.from_array(np.concatenate(kernels, axis=1), f"{node.name}/qkv_kernel")
        added, kept = [weight, bias], set()
        if value_dim != key_dim:
            attrs["qkv_hidden_sizes"] = [heads * key_dim, heads * key_dim, heads * value_dim]
        fused = helper.make_node(
            "Attention",
            [q.input[0], weight.name, bias.name],
            [merged],
            f"{node.name}/Attention",
            **attrs,
        )
    fused.doc_string = q.doc_string
    # ONNX's shape inference does not know contrib ops: the result's type is written here, so
    # tools that infer shapes downstream (the int8 quantizer) still see every value's type
    batch, steps = node.tensor_type.shape[:2]
    model.graph.value_info.append(
        helper.make_tensor_value_info(merged, TensorProto.FLOAT, [batch, steps, heads * value_dim])
    )
    # everything of the group up to the merged heads goes (but the projections' MatMuls that
    # MultiHeadAttention reads); the output projection stays, and the fused node goes before it
    keep = kept | {out_proj.name}
    keep |= {n.name for n in consumers.values() if _after(n, out_proj, consumers)}
    rebuilt = [n for i, n in enumerate(nodes) if i not in consumers or nodes[i].name in keep]
    rebuilt.insert(rebuilt.index(out_proj), fused)
    del model.graph.node[:]
    model.graph.node.extend(rebuilt)
    model.graph.initializer.extend(added)
    return True


def _after(n: Any, out_proj: Any, group: dict[int, Any]) -> bool:
    """Whether `n` reads the output projection's result, directly or through the group."""
    reached = set(out_proj.output)
    for m in group.values():  # the group is in topological order
        if any(i in reached for i in m.input):
            reached.update(m.output)
    return any(o in reached for o in n.output)


def _drop_unused_initializers(model: Any) -> None:
    """Remove the initializers no node reads (the per-projection kernels, the per-head shapes)
    and the value_info of values no longer computed."""
    used = {i for n in model.graph.node for i in n.input}
    kept = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    names = {i.name for i in model.graph.initializer} | {
        o for n in model.graph.node for o in n.output
    }
    info = [v for v in model.graph.value_info if v.name in names]
    del model.graph.value_info[:]
    model.graph.value_info.extend(info)
