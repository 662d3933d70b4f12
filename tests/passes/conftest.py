"""Fixtures for the pass tests: compile .net text to (graph, weights) with random weights, turn
inputs into weights or constants, print IR without locations, and compare numbers through the
reference runtime."""

from __future__ import annotations

import textwrap

import pytest
from pass_testing import freeze_inputs

import netc
from netc.ir import Graph, print_graph
from netc.passes.checking import Checker
from netc.weights import randomized_weights


@pytest.fixture
def net():
    """`net(text, weights=(), constants=())` -> (graph, weights) of dedented .net text."""

    def compile_(text: str, *, weights=(), constants=(), seed: int = 0):
        graph = netc.compile_text(textwrap.dedent(text), path="t.net").graph
        w = randomized_weights(graph, seed)
        return freeze_inputs(graph, w, as_weights=weights, as_constants=constants)

    return compile_


@pytest.fixture
def ir():
    """The IR as text without source locations, for golden comparisons."""

    def show(graph: Graph) -> str:
        return print_graph(graph, locations=False)

    return show


@pytest.fixture
def same_numbers():
    """Assert two (graph, weights) compute the same outputs on random inputs (float64, the
    tolerances of netc.passes.checking)."""

    def check(before: tuple[Graph, dict], after: tuple[Graph, dict], seed: int = 0) -> None:
        Checker(*before, seed=seed).check(
            "the pass under test", before[0], *after, weights_changed=after[1] is not before[1]
        )

    return check
