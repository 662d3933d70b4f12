"""The IR: verify's invariants, the printer, and rewrite identity."""

from __future__ import annotations

from dataclasses import replace

import pytest

from netc.ir import Const, Graph, IRError, Node, TensorType, print_graph, verify

F = TensorType("f32", ("N", 4))


def small() -> Graph:
    return Graph(
        "g",
        (
            Node("x", "input", type=F),
            Node("r", "relu", ("x",), type=F),
            Node("c", "constant", (), {"value": Const([1.0])}, TensorType("f32", (1,))),
            Node("y", "add", ("r", "c"), type=F),
        ),
        ("x",),
        (("out", "y"),),
    )


def test_a_well_formed_graph_verifies():
    g = small()
    assert verify(g) is g


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda g: replace(g, nodes=g.nodes[:1] + g.nodes[2:] + g.nodes[1:2]),
            "`y` reads `r` before it is defined",
        ),
        (
            lambda g: replace(g, nodes=g.nodes + (Node("r", "relu", ("x",), type=F),)),
            "value `r` is defined twice",
        ),
        (
            lambda g: replace(g, nodes=g.nodes + (Node("z", "frobnicate", ("x",), type=F),)),
            "`z` has unknown op `frobnicate`",
        ),
        (lambda g: replace(g, nodes=g.nodes + (Node("z", "relu", ("x",)),)), "`z` has no type"),
        (lambda g: replace(g, outputs=(("out", "nope"),)), "output `out` names undefined value"),
        (lambda g: replace(g, inputs=("r",)), "graph input `r` is not an input node"),
    ],
)
def test_verify_names_the_broken_invariant_and_the_stage(mutate, message):
    with pytest.raises(IRError) as info:
        verify(mutate(small()), after="fold_constants")
    assert "after fold_constants" in str(info.value) and message in str(info.value)


def test_with_nodes_returns_the_same_graph_when_nothing_changed():
    g = small()
    assert g.with_nodes(list(g.nodes)) is g
    assert g.with_nodes(g.nodes[:2] + g.nodes[2:]) is g
    assert g.with_nodes(g.nodes[:3] + (g.nodes[3].with_(op="sub"),)) is not g


def test_node_with_returns_itself_without_changes():
    n = small().nodes[1]
    assert n.with_(op="relu") is n and n.with_(op="tanh").op == "tanh"


def test_consts_compare_by_value():
    assert Const([1.0, 2.0]) == Const([1.0, 2.0])
    assert Const([1.0, 2.0]) != Const([1.0, 3.0])
    assert Const([1, 2]) != Const([1.0, 2.0])
    assert hash(Const([[1.0]])) == hash(Const([[1.0]]))


def test_readers_count_outputs():
    assert small().readers["y"] == ("<output>",) and small().readers["x"] == ("r",)


def test_printer_reads_like_code():
    assert print_graph(small()) == (
        "graph g(x: f32[N, 4]) -> (out: f32[N, 4]) {\n"
        "  r: f32[N, 4] = relu(x)\n"
        "  c: f32[1] = constant(value=Const([1.0]))\n"
        "  y: f32[N, 4] = add(r, c)\n"
        "  return out=y\n"
        "}"
    )
