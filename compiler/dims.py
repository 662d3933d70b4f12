"""Sizes of symbolic dims: what a model bounds them by (a positional embedding's table has
max_length rows), checked before any runtime sees a sequence too long for it. The CLI's
`run` and `verify` and `netc.runtime.verify` share it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .source import NetcError, SourceMap, Span, error

if TYPE_CHECKING:
    from .ir import Graph


@dataclass(frozen=True)
class Bound:
    """A symbolic dim the model cannot run past: `symbol` at most `most` (`what` says why)."""

    symbol: str
    most: int
    what: str
    span: Span | None = None


def graph_bounds(graph: Graph) -> list[Bound]:
    """Symbols a positional embedding bounds: its table has max_length rows."""
    out = []
    for node in graph.nodes:
        if node.op != "positional_embedding":
            continue
        steps = graph[node.inputs[0]].tensor_type.shape[1]
        if isinstance(steps, str) and steps.isidentifier():
            most = node.attrs["max_length"]
            what = f"positional_embedding `{node.name}` has max_length={most}"
            out.append(Bound(steps, most, what, node.span))
    return out


def check_bounds(
    bounds: Sequence[Bound], symbols: Mapping[str, int], sources: SourceMap | None = None
) -> None:
    """A NetcError, located at the layer, for a symbol past a bound (before any runtime runs:
    ONNX Runtime would fail with a broadcast error of its own)."""
    for b in bounds:
        size = symbols.get(b.symbol)
        if size is not None and size > b.most:
            raise NetcError(
                [
                    error(
                        f"the inputs have {b.symbol} = {size}, but {b.what}: it cannot take "
                        f"more than {b.most} steps",
                        b.span,
                        hint=f"pass at most {b.most} steps, or raise max_length",
                    ).diagnostics[0]
                ],
                sources,
            )
